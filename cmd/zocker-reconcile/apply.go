package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/zocker-reconcile/zocker-reconcile/controller"
)

// applyPasses bounds apply: an import in one pass lets the containers
// waiting for it be created in the next; more passes than this means
// something keeps changing.
const applyPasses = 5

func init() {
	register(func(g *globals) *cobra.Command {
		var f reconcileFlags
		cmd := &cobra.Command{
			Use:   "apply [DIR]",
			Short: "Converge once on the manifests, then exit",
			Long: `apply loads the manifests (DIR, else --manifests) and runs converging passes
(observe, plan, act) until nothing is left to do, then exits: 0 when the host
matches the manifests, 1 otherwise. A manifest file that does not load
makes the exit status 1 too: the valid objects are converged, the objects of
the invalid file are left as they are. The same guards as serve apply:
--allow-empty, --max-prune.`,
			Example: `  zocker-reconcile apply
  zocker-reconcile apply ./examples/demo --root tank/zocker`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				ctx := cmd.Context()
				eng, err := newEngine(ctx, g, &f, log, shared)
				if err != nil {
					return err
				}
				// One observation first: a build's inputs include its base image's ID.
				if _, err := eng.Observe(ctx); err != nil {
					return err
				}
				d, err := newLoader(&f, log, eng).Load(ctx, manifestsArg(g, args))
				if err != nil {
					return err
				}
				for _, pr := range d.Set.Problems {
					fmt.Fprintln(g.stderr, pr.String())
				}
				start := time.Now()
				p, err := controller.Converge(ctx, d, eng, eng, f.options(), applyPasses, func(r controller.PassResult) {
					sign := r.Action.Op.Sign()
					if r.Err != nil {
						fmt.Fprintf(g.stdout, "%s %s: FAILED after %s: %v\n", sign, r.Action, r.Took.Round(time.Millisecond), r.Err)
						return
					}
					fmt.Fprintf(g.stdout, "%s %s (%s)\n", sign, r.Action, r.Took.Round(time.Millisecond))
				})
				invalid := invalidFiles(d.Set)
				if err != nil {
					return withCode(1, errors.Join(fmt.Errorf("not converged: %w", err), invalid))
				}
				what := "Converged"
				if invalid != nil {
					what = "Converged the valid objects"
				}
				fmt.Fprintf(g.stdout, "%s on revision %s in %s.\n", what, p.Revision, time.Since(start).Round(time.Millisecond))
				if invalid != nil {
					return withCode(1, invalid)
				}
				return nil
			},
		}
		f.add(cmd)
		return cmd
	})
}
