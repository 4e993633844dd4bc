package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// applyPasses bounds apply: an import in one pass lets the containers
// waiting for it be created in the next; more passes than this means
// something keeps changing.
const applyPasses = 5

// hasBuilds tells whether the set declares an Image built from a Zockerfile.
func hasBuilds(set *manifests.Set) bool {
	for _, img := range set.Images {
		if img.Spec.Build != nil {
			return true
		}
	}
	return false
}

func init() {
	register(func(g *globals) *cobra.Command {
		var f reconcileFlags
		var workers int
		cmd := &cobra.Command{
			Use:   "apply [DIR]",
			Short: "Converge once on the manifests, then exit",
			Long: `apply loads the manifests (DIR, else --manifests) and runs converging passes
(observe, plan, act) until nothing is left to do, then exits: 0 when the host
matches the manifests, 1 otherwise. The same guards as serve apply:
--allow-empty, --max-prune.`,
			Example: `  zocker-reconcile apply
  zocker-reconcile apply ./examples/demo --root tank/zocker`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				if workers < 1 {
					return fmt.Errorf("--workers %d: want at least 1", workers)
				}
				ctx := cmd.Context()
				eng, err := newEngine(ctx, g, &f, log, shared)
				if err != nil {
					return err
				}
				loader := newLoader(&f, log, eng)
				d, err := loader.Load(ctx, manifestsArg(g, args))
				if err != nil {
					return err
				}
				if hasBuilds(d.Set) {
					// A build's inputs include its base image's ID: observe
					// once, then load again with the tags known.
					if _, err := eng.Observe(ctx); err != nil {
						return err
					}
					if d, err = loader.Load(ctx, manifestsArg(g, args)); err != nil {
						return err
					}
				}
				for _, pr := range d.Set.Problems {
					fmt.Fprintln(g.stderr, pr.String())
				}
				start := time.Now()
				p, err := controller.ConvergeWorkers(ctx, d, eng, eng, f.options(), applyPasses, workers, func(r controller.PassResult) {
					sign := r.Action.Op.Sign()
					if r.Err != nil {
						fmt.Fprintf(g.stdout, "%s %s: FAILED after %s: %v\n", sign, r.Action, r.Took.Round(time.Millisecond), r.Err)
						return
					}
					fmt.Fprintf(g.stdout, "%s %s (%s)\n", sign, r.Action, r.Took.Round(time.Millisecond))
				})
				if err != nil {
					return withCode(1, fmt.Errorf("not converged: %w", err))
				}
				fmt.Fprintf(g.stdout, "Converged on revision %s in %s.\n", p.Revision, time.Since(start).Round(time.Millisecond))
				return nil
			},
		}
		f.add(cmd)
		cmd.Flags().IntVar(&workers, "workers", controller.DefaultWorkers, "actions run at once (image builds and pulls run one at a time)")
		return cmd
	})
}
