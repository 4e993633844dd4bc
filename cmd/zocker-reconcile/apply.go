package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
	"github.com/zocker-reconcile/zocker-reconcile/service"
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
		var initRoot bool
		var timeout string
		cmd := &cobra.Command{
			Use:   "apply [DIR|FILE]",
			Short: "Converge once on the manifests, then exit",
			Long: `apply loads the manifests (DIR, else --manifests) and runs converging passes
(observe, plan, act) until nothing is left to do, then exits: 0 when the host
matches the manifests, 1 otherwise. A manifest file that does not load
makes the exit status 1 too: the valid objects are converged, the objects of
the invalid file are left as they are. The same guards as serve apply:
--allow-empty, --max-prune.

Given a FILE, apply acts only on the objects that file declares and prunes
nothing (as kubectl apply -f does); objects of other files it needs must
exist already. Pruning happens only when the argument is the whole manifest
directory. The first line of the output says which mode ran.

While a service (serve) holds the root, apply refuses: use plan to see what
the service will do, or stop it first.`,
			Example: `  zocker-reconcile apply
  zocker-reconcile apply ./examples/demo --root tank/zocker
  zocker-reconcile apply /usr/local/etc/zocker.d/web.yaml`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				if workers < 1 {
					return fmt.Errorf("--workers %d: want at least 1", workers)
				}
				deadlines, err := service.ParseDeadlines(timeout)
				if err != nil {
					return err
				}
				ctx := cmd.Context()
				lock, err := claimRoot(ctx, g, initRoot, "apply", "")
				if err != nil {
					return err
				}
				defer lock.Release(context.WithoutCancel(ctx))
				eng, err := newEngine(ctx, g, &f, log, shared)
				if err != nil {
					return err
				}
				sel, err := selectManifests(g, args)
				if err != nil {
					return err
				}
				loader := newLoader(&f, log, eng)
				d, _, err := controller.LoadSettled(ctx, log, sel.load, loader.LoadResolved)
				if err != nil {
					return err
				}
				if hasBuilds(d.Set) {
					// A build's inputs include its base image's ID: observe
					// once, then load again with the tags known.
					if _, err := eng.Observe(ctx); err != nil {
						return err
					}
					if d, _, err = controller.LoadSettled(ctx, log, sel.load, loader.LoadResolved); err != nil {
						return err
					}
				}
				for _, pr := range d.Set.Problems {
					fmt.Fprintln(g.stderr, pr.String())
				}
				opts := f.options()
				opts.Only = sel.only(d.Set)
				fmt.Fprintln(g.stdout, sel.describe(opts.Only))
				start := time.Now()
				// The first pass reads the whole tree, the later ones what the
				// actions before them touched (issue 15).
				tr := &engine.Tracking{Engine: eng}
				p, err := controller.ConvergeWorkers(ctx, d, tr, service.WithDeadlines(tr, deadlines), opts, applyPasses, workers, func(r controller.PassResult) {
					if r.Err != nil {
						fmt.Fprintf(g.stdout, "%s: FAILED after %s: %v\n", r.Action.Line(), r.Took.Round(time.Millisecond), r.Err)
						return
					}
					fmt.Fprintf(g.stdout, "%s (%s)\n", r.Action.Line(), r.Took.Round(time.Millisecond))
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
		cmd.Flags().IntVar(&workers, "workers", controller.DefaultWorkers, "actions run at once (image builds and pulls run one at a time)")
		cmd.Flags().BoolVar(&initRoot, "init", false, "create --root when it does not exist (its parent must)")
		cmd.Flags().StringVar(&timeout, "action-timeout", service.DefaultDeadlines, "deadline of each action: DURATION for all, OP=DURATION for one (import, build, pull, create, start, ...)")
		return cmd
	})
}
