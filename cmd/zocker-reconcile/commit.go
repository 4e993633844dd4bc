package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

func init() {
	register(newCommitCmd)
	register(newDiffCmd)
}

func newCommitCmd(g *globals) *cobra.Command {
	var changes []string
	cmd := &cobra.Command{
		Use:   "commit [--change INSTRUCTION]... NAME TAG",
		Short: "Make an image of a container's files (Zocker's commit)",
		Long: `commit snapshots container NAME's clone (it may be running) and publishes it
as a new image tagged TAG, a child of the container's image, and prints its
ID. The image's config is its parent's, with the container's command, env,
user and workdir, then each --change: a config-only Zockerfile instruction
(CMD, ENTRYPOINT, ENV, USER, WORKDIR, LABEL, VOLUME, EXPOSE).`,
		Example: `  zocker-reconcile commit test mybase
  zocker-reconcile commit --change 'CMD ["/usr/local/sbin/httpd", "-D", "FOREGROUND"]' --change 'ENV TZ=UTC' web apache-configured`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			eng, _, err := adHocEngine(ctx, cmd, g, shared)
			if err != nil {
				return err
			}
			id, err := eng.Commit(ctx, args[0], args[1], changes)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, id)
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "a config-only Zockerfile instruction to apply (repeatable)")
	return cmd
}

func newDiffCmd(g *globals) *cobra.Command {
	var output *format
	cmd := &cobra.Command{
		Use:   "diff NAME",
		Short: "List the files a container changed (Zocker's diff)",
		Long: `diff lists what changed in container NAME relative to its image, one path a
line, sorted: A added, C changed, D deleted (Docker's format). It uses
zfs diff where ZFS has it (OpenZFS, FreeBSD); on zfs-fuse, which lacks it,
the two trees are compared: type, mode, owner, size, link target, and the
content's sha256 for a file whose modification time alone differs.`,
		Example: `  zocker-reconcile diff test
  zocker-reconcile diff -o json web`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := adHocLogger(cmd, g)
			if err != nil {
				return err
			}
			if _, err := checkRoot(cmd.Context(), g); err != nil {
				return err
			}
			store, err := zfs.Attach(g.root, &runner.Exec{Logger: log}, log)
			if err != nil {
				return err
			}
			changes, err := store.Diff(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if *output == formatJSON {
				if changes == nil {
					changes = []zfs.Change{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(changes)
			}
			for _, c := range changes {
				fmt.Fprintf(g.stdout, "%s %s\n", c.Kind, escapePath(c.Path))
			}
			return nil
		},
	}
	output = addOutput(cmd)
	return cmd
}

// escapePath writes control bytes and backslashes as \ooo, as zfs diff
// does, so that a file name made inside a container cannot forge lines.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			fmt.Fprintf(&b, "\\%03o", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
