package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var insecure bool
		cmd := &cobra.Command{
			Use:   "validate [DIR|FILE]",
			Short: "Check the manifests and print every problem",
			Long: `validate loads the manifest directory (default: --manifests) or a single
manifest file the way the service does, and prints every problem, sorted, as

  FILE:LINE: KIND/NAME: FIELD: message

with "warning: " after the location for warnings. It exits 0 when the
manifests are valid (warnings allowed) and 1 otherwise. Nothing on the host
is changed or even looked at beyond the manifest files.`,
			Example: `  zocker-reconcile validate
  zocker-reconcile validate ./zocker.d
  zocker-reconcile validate --insecure-manifests examples/`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				dir := g.manifests
				if len(args) == 1 {
					dir = args[0]
				}
				set, err := manifests.Load(dir, manifests.LoadOptions{Insecure: insecure})
				if err != nil {
					return withCode(1, err)
				}
				if set.Missing {
					return withCode(1, fmt.Errorf("manifest directory %s does not exist", dir))
				}
				for _, p := range set.Problems {
					fmt.Fprintln(g.stdout, p.String())
				}
				if n := set.Errors(); n > 0 {
					return withCode(1, fmt.Errorf("%s: %d error(s) in %d file(s)", dir, n, failedFiles(set)))
				}
				fmt.Fprintf(g.stdout, "%s: %d object(s) in %d file(s): valid\n", dir, len(set.Images)+len(set.Volumes)+len(set.Containers), len(set.Files))
				return nil
			},
		}
		cmd.Flags().BoolVar(&insecure, "insecure-manifests", false, "accept manifest files and directories writable by group or others or owned by another user")
		return cmd
	})
}

func failedFiles(set *manifests.Set) int {
	n := 0
	for _, f := range set.Files {
		if f.Failed {
			n++
		}
	}
	return n
}
