package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/repo"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

func init() {
	register(newPushCmd)
	register(newPullCmd)
	register(newSearchCmd)
	register(newDelCmd)
}

const repoLocations = `A repository is ssh://[user@]host[:port]/path (the system ssh client
speaks SFTP to it, so ~/.ssh/config, agents and known_hosts apply and the
remote account needs nothing but SFTP; /~/path is relative to its home) or
file:///path (a local or NFS directory).`

// repoFlag adds --repository, defaulting to ZOCKER_REPOSITORY.
func repoFlag(cmd *cobra.Command, url *string) {
	cmd.Flags().StringVar(url, "repository", os.Getenv("ZOCKER_REPOSITORY"), "the image repository URL (env ZOCKER_REPOSITORY)")
}

// openRepo checks the tag and the location before anything is opened or
// connected, then opens the repository.
func openRepo(ctx context.Context, g *globals, url, tag string) (*repo.Repository, error) {
	if tag != "" {
		if err := image.ValidName("tag", tag); err != nil {
			return nil, err
		}
	}
	if _, err := repo.ParseLocation(url); err != nil {
		return nil, err
	}
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	maxSize, err := g.imageSizeLimit()
	if err != nil {
		return nil, err
	}
	return repo.Open(ctx, url, repo.Options{Out: g.stdout, Log: log, MaxImageSize: maxSize})
}

// openLocal opens the ZFS engine on --root as the repository's local side.
func openLocal(ctx context.Context, g *globals) (repo.Local, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	ex := &runner.Exec{Logger: log}
	s, err := openStore(ctx, g)
	if err != nil {
		return nil, err
	}
	return repo.NewZFSLocal(s, ex, log), nil
}

func newPushCmd(g *globals) *cobra.Command {
	var url string
	var of ociFlags
	cmd := &cobra.Command{
		Use:   "push TAG [docker://REGISTRY/REPO:TAG]",
		Short: "Send an image and the ancestors the repository lacks, then move the tag there",
		Long: `Push sends the image TAG points at to the repository: every ancestor the
repository does not have yet, oldest first, each as a ZFS stream incremental
on its parent (full for a root image), then moves the repository's TAG.
Files appear under their final names only complete, and the tag moves last:
an interrupted push leaves the repository valid, and pushing again completes it.

With docker://REGISTRY/REPO:TAG the image goes to an OCI registry instead:
each image of its local chain becomes one gzip layer (the difference to its
parent, whiteouts for deletions) with an OCI config made from the image's;
layers the registry has are not sent again.

` + repoLocations,
		Example: `  zocker-reconcile push apache --repository ssh://zocker@repo.example.com/zocker_images
  ZOCKER_REPOSITORY=file:///mnt/nfs/images zocker-reconcile push base
  zocker-reconcile push apache docker://registry.example.com/web/apache:2.4`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return pushOCI(cmd.Context(), g, args[0], args[1], of)
			}
			r, err := openRepo(cmd.Context(), g, url, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			local, err := openLocal(cmd.Context(), g)
			if err != nil {
				return err
			}
			res, err := r.Push(cmd.Context(), local, args[0])
			if err != nil {
				return err
			}
			if len(res.Sent) == 0 {
				fmt.Fprintf(g.stdout, "%s: the repository has every image already\n", args[0])
			}
			return nil
		},
	}
	repoFlag(cmd, &url)
	of.add(cmd, false)
	return cmd
}

func newPullCmd(g *globals) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "pull TAG",
		Short: "Receive an image and the ancestors missing here, then tag it locally",
		Long: `Pull resolves TAG in the repository, walks the image's parents back to one
present locally (or to a root image), receives each missing stream into
ROOT/tmp while checking its size and sha256, publishes it, and finally points
the local TAG at the image. A stream that does not match its record is
destroyed and reported; nothing half-received remains.

` + repoLocations,
		Example: `  zocker-reconcile pull apache --repository ssh://zocker@repo.example.com/zocker_images
  zocker-reconcile --root tank/zocker pull base --repository file:///mnt/nfs/images`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openRepo(cmd.Context(), g, url, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			local, err := openLocal(cmd.Context(), g)
			if err != nil {
				return err
			}
			res, err := r.Pull(cmd.Context(), local, args[0])
			if err != nil {
				return err
			}
			if len(res.Received) == 0 {
				fmt.Fprintf(g.stdout, "%s: image %s is here already\n", args[0], image.Short(res.ID))
			}
			return nil
		},
	}
	repoFlag(cmd, &url)
	return cmd
}

func newSearchCmd(g *globals) *cobra.Command {
	var url string
	var output *format
	cmd := &cobra.Command{
		Use:   "search [PATTERN]",
		Short: "List the repository's tags (TAG, IMAGE ID, SIZE, CREATED)",
		Long: `Search lists the tags in the repository that match PATTERN (shell-style:
*, ?, [...]; all when absent) with their image IDs, the size a pull into an
empty store transfers (the image and its ancestors), and when the image was
made.

` + repoLocations,
		Example: `  zocker-reconcile search --repository ssh://zocker@repo.example.com/zocker_images
  zocker-reconcile search 'apache*'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pattern := ""
			if len(args) == 1 {
				pattern = args[0]
			}
			r, err := openRepo(cmd.Context(), g, url, "")
			if err != nil {
				return err
			}
			defer r.Close()
			tags, err := r.Search(cmd.Context(), pattern)
			if err != nil {
				return err
			}
			if *output == formatJSON {
				rows := []searchRow{}
				for _, t := range tags {
					row := searchRow{Tag: t.Tag, ID: t.ID, Size: t.Size, Created: &t.Created}
					if t.Err != nil {
						row = searchRow{Tag: t.Tag, Error: t.Err.Error()}
					}
					rows = append(rows, row)
				}
				return printJSON(g.stdout, rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "TAG\tIMAGE ID\tSIZE\tCREATED")
			for _, t := range tags {
				if t.Err != nil {
					fmt.Fprintf(tw, "%s\t-\t-\t%v\n", t.Tag, t.Err)
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Tag, image.Short(t.ID), image.Size(t.Size), t.Created.Local().Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
	repoFlag(cmd, &url)
	output = addOutput(cmd)
	return cmd
}

// searchRow is one tag as search -o json prints it.
type searchRow struct {
	Tag     string     `json:"tag"`
	ID      string     `json:"id,omitempty"`
	Size    int64      `json:"sizeBytes,omitempty"`
	Created *time.Time `json:"created,omitempty"`
	Error   string     `json:"error,omitempty"`
}

func newDelCmd(g *globals) *cobra.Command {
	var url string
	cmd := &cobra.Command{
		Use:   "del TAG",
		Short: "Remove a tag from the repository, and the images nothing needs any more",
		Long: `Del removes TAG from the repository, then every image there that no tag
and no kept image's parent link still needs. Local images are not touched.

` + repoLocations,
		Example: `  zocker-reconcile del apache-old --repository ssh://zocker@repo.example.com/zocker_images`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openRepo(cmd.Context(), g, url, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			removed, err := r.Del(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deleted tag %s; %d unused image(s) removed\n", args[0], len(removed))
			return nil
		},
	}
	repoFlag(cmd, &url)
	return cmd
}
