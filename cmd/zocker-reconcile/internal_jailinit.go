//go:build linux

package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail/linuxns"
)

// The Linux jail driver re-executes this binary as "__jail-init init" for a
// jail's pid 1 and as "__jail-init exec ..." for the shim that enters a jail.
// It is hidden: people never type it.
func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:                linuxns.InitCommand + " init|exec ...",
			Hidden:             true,
			DisableFlagParsing: true,
			// The helpers must not depend on the global flags or their
			// environment variables: the exec shim's environment is the
			// container command's.
			PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
			Run: func(_ *cobra.Command, args []string) {
				os.Exit(linuxns.HelperMain(args))
			},
		}
	})
}
