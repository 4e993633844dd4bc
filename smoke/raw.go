package smoke

import (
	"context"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// FreeBSDRaw attaches what the FreeBSD driver parses, exactly as the tools
// printed it: `jls --libxo json -v` and `rctl -u jail:NAME` per container.
func FreeBSDRaw(r runner.Runner) func(ctx context.Context, names []string) []Artifact {
	return func(ctx context.Context, names []string) []Artifact {
		cmds := [][]string{jail.JLSArgv()}
		for _, n := range names {
			cmds = append(cmds, jail.RctlUsageArgv(n))
		}
		var out []Artifact
		for _, argv := range cmds {
			b, err := r.Run(ctx, runner.Cmd{Argv: argv})
			text := string(b)
			if err != nil {
				text += err.Error()
			}
			out = append(out, Artifact{strings.Join(argv, " "), text})
		}
		return out
	}
}

// FreeBSDImage is RescueImage with the host's paths.
func FreeBSDImage() ([]ImageFile, error) {
	return RescueImage("/rescue", "/usr/bin/env", []string{"/libexec/ld-elf.so.1", "/lib/libc.so.7", "/lib/libsys.so.7"})
}
