package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

// inspectRecord is everything known about one object.
type inspectRecord struct {
	Kind       string             `json:"kind"`
	Name       string             `json:"name"`
	Dataset    any                `json:"dataset"`
	Supervisor *supervisor.Status `json:"supervisor,omitempty"`
	Config     *supervisor.Config `json:"runtimeConfig,omitempty"`
}

func init() {
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:   "inspect NAME",
			Short: "Print a container's, volume's or image's full record as JSON",
			Long: `inspect prints everything known about a container (its dataset and zocker:*
properties, its supervisor's status and runtime config), a volume, or an image
(by tag or ID). Exit status 1 when nothing has that name.`,
			Example: "  zocker-reconcile inspect web\n  zocker-reconcile inspect busybox",
			Args:    needs(1, "an object NAME (a container, volume, image tag or ID)"),
			RunE: func(cmd *cobra.Command, args []string) error {
				name := args[0]
				st, err := observeRoot(cmd.Context(), g)
				if err != nil {
					return err
				}
				var recs []inspectRecord
				for _, c := range st.Containers {
					if c.ContainerName != name {
						continue
					}
					r := inspectRecord{Kind: "Container", Name: name, Dataset: c}
					if s, err := supervisor.Get(g.stateDir, name); err == nil {
						r.Supervisor = &s
					}
					if cfg, err := supervisor.ReadConfig(g.stateDir, name); err == nil {
						r.Config = &cfg
					}
					recs = append(recs, r)
				}
				for _, v := range st.Volumes {
					if v.VolumeName == name {
						recs = append(recs, inspectRecord{Kind: "Volume", Name: name, Dataset: v})
					}
				}
				if id, err := st.Resolve(name); err == nil {
					if im, ok := st.Image(id); ok {
						recs = append(recs, inspectRecord{Kind: "Image", Name: name, Dataset: im})
					}
				}
				if len(recs) == 0 {
					return withCode(1, fmt.Errorf("%s: no container, volume or image of that name under %s", name, g.root))
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if len(recs) == 1 {
					return enc.Encode(recs[0])
				}
				fmt.Fprintf(os.Stderr, "%s names %d objects; printing all\n", name, len(recs))
				return enc.Encode(recs)
			},
		}
	})
}
