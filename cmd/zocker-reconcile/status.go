package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/metrics/httpapi"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
	"github.com/zocker-reconcile/zocker-reconcile/service"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var f reconcileFlags
		var listen string
		var output *format
		var local bool
		cmd := &cobra.Command{
			Use:   "status",
			Short: "Show every object's conditions (Ready, Reconciling, Stalled)",
			Long: `status asks the running service (GET /status on --listen) for the conditions of
every object, the manifest files that failed to load (with file:line), and the
applied revision. When no service answers, or with --local, it computes them
itself from --manifests and the host. Exit status 0 when every object is
Ready and every file loaded, 1 otherwise.`,
			Example: `  zocker-reconcile status
  zocker-reconcile status -o json --listen 127.0.0.1:9847`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				var st service.Status
				source := "service at " + listen
				if local || fetchStatus(listen, &st) != nil {
					source = "computed locally"
					eng, err := newEngine(cmd.Context(), g, &f, log, readOnly)
					if err != nil {
						return err
					}
					o, err := eng.Observe(cmd.Context())
					if err != nil {
						return err
					}
					loader := newLoader(&f, log, eng)
					d, err := loader.Load(cmd.Context(), g.manifests)
					if err != nil {
						return err
					}
					book := service.NewStatusBook(time.Now)
					book.LoadedManifests(d.Set)
					book.Planned(reconcile.Diff(d, o, f.options()), d, o)
					service.ReportRemoteErrors(book, d, loader.RemoteErrors())
					st = book.Snapshot()
				}
				if *output == formatJSON {
					if err := printJSON(g.stdout, st); err != nil {
						return err
					}
				} else {
					printStatus(g, st, source)
				}
				if !st.AllReady() {
					return withCode(1, nil)
				}
				return nil
			},
		}
		f.add(cmd)
		output = addOutput(cmd)
		cmd.Flags().StringVar(&listen, "listen", envOr("ZOCKER_LISTEN", httpapi.DefaultListen), "the service's address (env ZOCKER_LISTEN)")
		cmd.Flags().BoolVar(&local, "local", false, "do not ask the service; compute the status here")
		return cmd
	})
}

func fetchStatus(listen string, st *service.Status) error {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + listen + "/status")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /status: %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(st)
}

func printStatus(g *globals, st service.Status, source string) {
	fmt.Fprintf(g.stdout, "Revision %s (applied: %s), %s\n", dash(st.Revision), dash(st.AppliedRevision), source)
	if st.Missing {
		fmt.Fprintln(g.stdout, "The manifest directory does not exist.")
	}
	for _, f := range st.Files {
		for _, p := range f.Problems {
			fmt.Fprintln(g.stdout, p.String())
		}
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tREADY\tREASON\tMESSAGE\tSINCE")
	for _, o := range st.Objects {
		ready, _ := o.Condition(service.ConditionReady)
		lead := ready
		for _, t := range []service.ConditionType{service.ConditionStalled, service.ConditionReconciling} {
			if c, ok := o.Condition(t); ok && c.Status {
				lead = c
				break
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", o.Kind, o.Name, ready.Status, dash(lead.Reason), dash(lead.Message),
			lead.LastTransitionTime.Local().Format(time.DateTime))
	}
	tw.Flush()
	if st.AllReady() {
		fmt.Fprintln(g.stdout, "All objects are Ready.")
	} else {
		fmt.Fprintln(os.Stderr, "Not all objects are Ready.")
	}
}
