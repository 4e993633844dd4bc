package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var dryRun bool
		cmd := &cobra.Command{
			Use:   "gc [--dry-run]",
			Short: "Remove images that no container, tag or child image uses",
			Long: `gc destroys every image used by no container, no tag and no child image,
children before parents. Declared Images keep their tag (the Image's name), so
they are kept. Volumes are never touched. --dry-run lists what would go.`,
			Example: `  zocker-reconcile gc --dry-run
  zocker-reconcile gc`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, err := openStore(cmd.Context(), g)
				if err != nil {
					return err
				}
				ids, err := s.GC(cmd.Context(), nil, dryRun)
				verb := "removed"
				if dryRun {
					verb = "would remove"
				}
				for _, id := range ids {
					fmt.Fprintf(g.stdout, "%s %s\n", verb, id)
				}
				if err == nil && len(ids) == 0 {
					fmt.Fprintln(g.stdout, "nothing to remove")
				}
				return err
			},
		}
		cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list what would be removed")
		return cmd
	})
}
