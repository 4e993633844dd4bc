package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:     "volumes",
			Short:   "List managed volumes (NAME, USED, QUOTA, CREATED, MOUNTPOINT)",
			Long:    "Volumes lists the volumes under --root; datasets there that zocker-reconcile did not make are reported as foreign and left alone.",
			Example: "  zocker-reconcile volumes",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, err := observeRoot(cmd.Context(), g) // listing only: change nothing
				if err != nil {
					return err
				}
				vols := st.Volumes
				sort.Slice(vols, func(i, j int) bool { return vols[i].VolumeName < vols[j].VolumeName })
				tw := tabwriter.NewWriter(g.stdout, 0, 0, 3, ' ', 0)
				fmt.Fprintln(tw, "NAME\tUSED\tQUOTA\tCREATED\tMOUNTPOINT")
				for _, v := range vols {
					quota := "none"
					if v.Quota > 0 {
						quota = image.Size(v.Quota)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.VolumeName, image.Size(v.Used), quota, v.Created.Local().Format("2006-01-02 15:04"), v.Mountpoint)
				}
				tw.Flush()
				for _, f := range foreignUnder(st, strings.TrimSuffix(g.root, "/")+"/volumes/") {
					fmt.Fprintf(g.stderr, "foreign dataset (not managed, left alone): %s\n", f)
				}
				return nil
			},
		}
	})
}
