package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// openStore opens the ZFS engine on --root for the commands people run
// beside a running service: it does not sweep ROOT/tmp, which may hold the
// service's work in progress.
func openStore(ctx context.Context, g *globals) (*zfs.Store, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	if _, err := checkRoot(ctx, g); err != nil {
		return nil, err
	}
	maxSize, err := g.imageSizeLimit()
	if err != nil {
		return nil, err
	}
	s, err := zfs.OpenShared(ctx, g.root, &runner.Exec{Logger: log}, log)
	if err != nil {
		return nil, err
	}
	s.MaxImageSize = maxSize
	return s, nil
}

func init() {
	register(newImportCmd)
	register(newImagesCmd)
	register(newTagCmd)
	register(newRmiCmd)
}

func newImportCmd(g *globals) *cobra.Command {
	var tag, sum string
	var of ociFlags
	cmd := &cobra.Command{
		Use:   "import -t TAG PATH|URL|docker://REF|oci-archive:PATH",
		Short: "Import a root filesystem archive or an OCI image as an image and tag it",
		Long: `Import extracts a root filesystem archive (FreeBSD base.txz, a busybox
rootfs tar) into a new image whose ID is the archive's content address, and
points TAG at it. Importing the same archive again changes nothing. A URL must
be https and needs --sha256; for a path, --sha256 is checked when given.

docker://REGISTRY/REPO:TAG (or @sha256:DIGEST) pulls an OCI image from a
registry, oci-archive:PATH reads an OCI image layout (a directory, .tar,
.tar.gz or .txz, --sha256 checked when given, --name picking one image of its
index); each layer becomes a dataset shared with other images, and the image
ID is the config digest. Credentials come from the Docker config
($DOCKER_CONFIG, ~/.docker/config.json, $REGISTRY_AUTH_FILE).`,
		Example: `  zocker-reconcile import -t base /var/cache/zocker/base-14.3.txz
  zocker-reconcile import -t base https://download.freebsd.org/.../base.txz --sha256 9f2c...
  zocker-reconcile import -t runtime docker://docker.io/freebsd/freebsd-runtime:15.0
  zocker-reconcile import -t runtime oci-archive:FreeBSD-15.0-RELEASE-amd64-container-image-runtime.txz --platform freebsd/amd64 --sha256 0c1d...`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := image.ValidName("tag", tag); err != nil {
				return err
			}
			if isOCI(args[0]) {
				id, err := importOCI(cmd.Context(), g, tag, args[0], sum, of)
				if err == nil {
					fmt.Fprintln(g.stdout, id)
				}
				return err
			}
			src := zfs.ImportSource{Path: args[0], SHA256: sum}
			if strings.Contains(args[0], "://") {
				src = zfs.ImportSource{URL: args[0], SHA256: sum}
			}
			s, err := openStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			id, err := s.ImportTarball(cmd.Context(), src, zfs.Config{})
			if err != nil {
				return err
			}
			if err := s.Tag(cmd.Context(), tag, id); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
	cmd.Flags().StringVarP(&tag, "tag", "t", "", "the tag to point at the image (required)")
	cmd.Flags().StringVar(&sum, "sha256", "", "the archive's expected sha256 (required for a URL)")
	of.add(cmd, true)
	_ = cmd.MarkFlagRequired("tag")
	return cmd
}

// imageRow is one line of `images` (and one object of -o json).
type imageRow struct {
	Tags       []string  `json:"tags"`
	ID         string    `json:"id"`
	Created    time.Time `json:"created"`
	Referenced uint64    `json:"referencedBytes"`
	Used       uint64    `json:"usedBytes"`
	Parent     string    `json:"parent,omitempty"`
	Dataset    string    `json:"dataset"`
}

func newImagesCmd(g *globals) *cobra.Command {
	var quiet bool
	var output *format
	cmd := &cobra.Command{
		Use:   "images [TAG]",
		Short: "List images (TAG, IMAGE ID, CREATED, SIZE, PARENT)",
		Long: `Images lists the images under --root with their tags; SIZE is the space the
image references and, in brackets, what it uses itself. Datasets under the
images directory that zocker-reconcile did not make are reported as foreign.`,
		Example: `  zocker-reconcile images
  zocker-reconcile images base
  zocker-reconcile images -q
  zocker-reconcile images -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := observeRoot(cmd.Context(), g) // listing only: change nothing
			if err != nil {
				return err
			}
			rows := imageRows(st)
			if len(args) == 1 {
				id, err := st.Resolve(args[0])
				if err != nil {
					return err
				}
				var keep []imageRow
				for _, r := range rows {
					if r.ID == id {
						keep = append(keep, r)
					}
				}
				rows = keep
			}
			switch {
			case quiet:
				for _, r := range rows {
					fmt.Fprintln(g.stdout, r.ID)
				}
			case *output == formatJSON:
				return printJSON(g.stdout, struct {
					Images  []imageRow `json:"images"`
					Foreign []string   `json:"foreign"`
				}{rows, foreignUnder(st, strings.TrimSuffix(g.root, "/")+"/images/")})
			default:
				printImages(g.stdout, rows)
				for _, f := range foreignUnder(st, strings.TrimSuffix(g.root, "/")+"/images/") {
					fmt.Fprintf(g.stderr, "foreign dataset (not managed, left alone): %s\n", f)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print full image IDs only")
	output = addOutput(cmd)
	return cmd
}

func imageRows(st *zfs.State) []imageRow {
	tags := map[string][]string{}
	for t, id := range st.Tags {
		tags[id] = append(tags[id], t)
	}
	rows := make([]imageRow, 0, len(st.Images))
	for _, im := range st.Images {
		t := tags[im.ID]
		sort.Strings(t)
		if t == nil {
			t = []string{}
		}
		rows = append(rows, imageRow{Tags: t, ID: im.ID, Created: im.Created, Referenced: im.Referenced, Used: im.Used, Parent: im.Parent, Dataset: im.Name})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Created.After(rows[j].Created) })
	return rows
}

func foreignUnder(st *zfs.State, prefix string) []string {
	out := []string{}
	for _, f := range st.Foreign {
		if strings.HasPrefix(f, prefix) {
			out = append(out, f)
		}
	}
	return out
}

func printImages(w io.Writer, rows []imageRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "TAG\tIMAGE ID\tCREATED\tSIZE\tPARENT")
	for _, r := range rows {
		tag := "<none>"
		if len(r.Tags) > 0 {
			tag = strings.Join(r.Tags, ",")
		}
		parent := "-"
		if r.Parent != "" {
			parent = image.Short(r.Parent)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s (%s)\t%s\n", tag, image.Short(r.ID), r.Created.Local().Format("2006-01-02 15:04"), image.Size(r.Referenced), image.Size(r.Used), parent)
	}
	tw.Flush()
}

func newTagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Point tag TARGET at the image SOURCE (a tag or an ID)",
		Long: `Tag points TARGET at the image named by SOURCE (a tag, a full ID or an ID
prefix of at least 12 digits). Moving an existing tag is one atomic change.`,
		Example: "  zocker-reconcile tag base base-2026-11",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := image.ValidName("tag", args[1]); err != nil {
				return err
			}
			s, err := openStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			id, err := s.Resolve(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return s.Tag(cmd.Context(), args[1], id)
		},
	}
}

func newRmiCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi NAME|ID",
		Short: "Remove a tag, and the image when no tag is left",
		Long: `Rmi removes the tag NAME, or image ID with all its tags. Removing one tag of
several is always allowed. Removing the last tag, or an ID, destroys the
image: that is refused while a container or a child image uses it (naming
them), and a refusal changes nothing.`,
		Example: "  zocker-reconcile rmi base",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openStore(cmd.Context(), g)
			if err != nil {
				return err
			}
			removed, err := s.RemoveImage(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if removed {
				fmt.Fprintf(g.stdout, "removed %s\n", args[0])
			} else {
				fmt.Fprintf(g.stdout, "untagged %s\n", args[0])
			}
			return nil
		},
	}
}
