package main

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var f reconcileFlags
		var output *format
		cmd := &cobra.Command{
			Use:   "plan [DIR|FILE]",
			Short: "Show what a pass would do, without doing it",
			Long: `plan loads the manifests (DIR, else --manifests), observes the ZFS datasets and
jails under --root, and prints the actions a pass would take, each with its
reason, like terraform plan:

  +  create         ~  replace, update, build, pull
  -  prune          >  start     .  stop     !  blocked (and why)

Given a FILE, only the objects it declares are planned and nothing is pruned
(what apply FILE would do); the first line says which mode ran, and -o json
has "partial": true.

Exit status: 0 in sync, 2 changes pending (or held back), 1 error or a
manifest file that does not load (the plan of the valid objects is printed).`,
			Example: `  zocker-reconcile plan
  zocker-reconcile plan ./staging -o json`,
			Args: cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				ctx := cmd.Context()
				eng, err := newEngine(ctx, g, &f, log, readOnly)
				if err != nil {
					return err
				}
				// Observe first: a build's inputs include its base image's ID.
				o, err := eng.Observe(ctx)
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
				// A pull Image whose repository or signature is refused stays
				// as it is; say why beside the plan.
				for _, name := range slices.Sorted(maps.Keys(loader.RemoteErrors())) {
					fmt.Fprintf(g.stderr, "Image/%s: stays as it is: %v\n", name, loader.RemoteErrors()[name])
				}
				opts := f.options()
				opts.Only = sel.only(d.Set)
				if *output != formatJSON {
					fmt.Fprintln(g.stdout, sel.describe(opts.Only))
				}
				start := time.Now()
				p := reconcile.Diff(d, o, opts)
				log.Debug("planned", "took", time.Since(start), "actions", len(p.Actions))
				p.Revision = d.Set.Revision
				for _, pr := range d.Set.Problems {
					fmt.Fprintln(g.stderr, pr.String())
				}
				if *output == formatJSON {
					err = reconcile.RenderJSON(g.stdout, p)
				} else {
					err = reconcile.RenderText(g.stdout, p)
				}
				if err != nil {
					return err
				}
				if err := invalidFiles(d.Set); err != nil {
					return withCode(1, err)
				}
				if code := p.ExitCode(); code != 0 {
					return withCode(code, nil)
				}
				return nil
			},
		}
		f.add(cmd)
		output = addOutput(cmd)
		return cmd
	})
}
