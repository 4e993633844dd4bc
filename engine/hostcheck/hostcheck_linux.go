//go:build linux

package hostcheck

import (
	"context"
	"os"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
)

// OSChecks are the Linux substrate's checks: zfs-fuse, the adapter,
// namespaces, cgroups.
func OSChecks(o Options, h *Host) []Check {
	return []Check{
		{"zfs-fuse", func(ctx context.Context) Result { return ZFSFuse(h) }},
		{"zfs adapter", func(ctx context.Context) Result { return Adapter(ctx, o, h) }},
		{"namespaces", func(ctx context.Context) Result { return Namespaces(ctx, h) }},
		{"cgroups", func(ctx context.Context) Result {
			// The driver's own detection: what `status` would report.
			return Cgroups(linuxns.New(os.TempDir(), []string{"/bin/false"}, h.Run, nil).LimitsEnforced())
		}},
	}
}
