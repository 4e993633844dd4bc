//go:build !linux && !freebsd

package hostcheck

import (
	"context"
	"runtime"
)

// OSChecks: zocker-reconcile runs on FreeBSD (and on Linux for tests).
func OSChecks(o Options, h *Host) []Check {
	return []Check{{"os", func(context.Context) Result {
		return fail("run it on FreeBSD", "%s is not supported", runtime.GOOS)
	}}}
}
