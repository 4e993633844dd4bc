//go:build linux

package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
)

// The Linux jail driver re-executes this binary as "__jail-init init" for a
// jail's pid 1 and as "__jail-init run ..." for the shim that asks a jail's
// init to run a command (zocker-reconcile exec, build steps).
// It is hidden: people never type it.
func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:                linuxns.InitCommand + " init|run ...",
			Hidden:             true,
			DisableFlagParsing: true,
			// The helpers must not depend on the global flags or their
			// environment variables (they run with a fixed environment).
			PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
			Run: func(_ *cobra.Command, args []string) {
				os.Exit(linuxns.HelperMain(args))
			},
		}
	})
}
