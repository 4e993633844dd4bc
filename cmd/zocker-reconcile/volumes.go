package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var quiet bool
		var output *format
		cmd := &cobra.Command{
			Use:     "volumes",
			Short:   "List managed volumes (NAME, USED, QUOTA, CREATED, MOUNTPOINT)",
			Long:    "Volumes lists the volumes under --root; datasets there that zocker-reconcile did not make are reported as foreign and left alone.",
			Example: "  zocker-reconcile volumes\n  zocker-reconcile volumes -o json",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				st, err := observeRoot(cmd.Context(), g) // listing only: change nothing
				if err != nil {
					return err
				}
				vols := st.Volumes
				sort.Slice(vols, func(i, j int) bool { return vols[i].VolumeName < vols[j].VolumeName })
				foreign := foreignUnder(st, strings.TrimSuffix(g.root, "/")+"/volumes/")
				switch {
				case quiet:
					for _, v := range vols {
						fmt.Fprintln(g.stdout, v.VolumeName)
					}
					return nil
				case *output == formatJSON:
					rows := []volumeRow{}
					for _, v := range vols {
						rows = append(rows, volumeRow{Name: v.VolumeName, Used: v.Used, Quota: v.Quota, Created: v.Created, Mountpoint: v.Mountpoint})
					}
					return printJSON(g.stdout, struct {
						Volumes []volumeRow `json:"volumes"`
						Foreign []string    `json:"foreign"`
					}{rows, append([]string{}, foreign...)})
				}
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
				for _, f := range foreign {
					fmt.Fprintf(g.stderr, "foreign dataset (not managed, left alone): %s\n", f)
				}
				return nil
			},
		}
		cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the names only")
		output = addOutput(cmd)
		return cmd
	})
}

// volumeRow is one volume as volumes -o json prints it.
type volumeRow struct {
	Name       string    `json:"name"`
	Used       uint64    `json:"usedBytes"`
	Quota      uint64    `json:"quotaBytes,omitempty"`
	Created    time.Time `json:"created"`
	Mountpoint string    `json:"mountpoint"`
}
