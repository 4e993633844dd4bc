package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "init",
			Short: "Create the root dataset and bind the state directory to it",
			Long: `init creates --root (its parent must exist) with the datasets below it, and
records that --state-dir belongs to it. Nothing else creates a root: the other
commands refuse a root that does not exist, so that a misspelt --root is an
error, not an empty host. serve --init and apply --init do the same first.
Running init on an existing root only records the state directory.`,
			Example: `  zocker-reconcile init --root zroot/zocker`,
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				created, err := initRoot(cmd.Context(), g)
				if err != nil {
					return err
				}
				if created {
					fmt.Fprintf(g.stdout, "created root %s (state directory %s)\n", g.root, g.stateDir)
				} else {
					fmt.Fprintf(g.stdout, "root %s exists (state directory %s)\n", g.root, g.stateDir)
				}
				return nil
			},
		}
	})
}
