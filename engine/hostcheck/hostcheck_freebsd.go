//go:build freebsd

package hostcheck

import "context"

// OSChecks are FreeBSD's checks: release, tools, racct, devfs, the loopback
// interface and pool, the rc.d service.
func OSChecks(o Options, h *Host) []Check {
	return []Check{
		{"os", func(ctx context.Context) Result { return FreeBSDRelease(ctx, h) }},
		{"tools", func(ctx context.Context) Result { return Tools(FreeBSDTools, h) }},
		{"racct", func(ctx context.Context) Result { return Racct(ctx, h) }},
		{"devfs ruleset", func(ctx context.Context) Result { return DevfsRuleset(ctx, h) }},
		{"loopback " + o.LoopbackInterface, func(ctx context.Context) Result {
			jails, err := Jails(ctx, h)
			if err != nil {
				return fail("", "%v", err)
			}
			return LoopbackPool(o.LoopbackInterface, o.LoopbackPool, jails, h)
		}},
		{"rc.d service", func(ctx context.Context) Result { return RCService(ctx, h) }},
	}
}
