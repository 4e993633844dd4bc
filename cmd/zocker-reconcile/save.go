package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
)

func init() {
	register(newSaveCmd)
	register(newLoadCmd)
}

func newSaveCmd(g *globals) *cobra.Command {
	var output, signKey string
	cmd := &cobra.Command{
		Use:   "save [-o FILE] TAG...",
		Short: "Write images and their ancestors to an archive (Zocker's save)",
		Long: `save writes the images the TAGs point at, with every ancestor, as one tar
archive to FILE or to standard output (never to a terminal). The archive is
a file:// repository's directory (images/<id>/stream and meta.json, tags/),
so load checks it exactly as pull checks a repository.`,
		Example: `  zocker-reconcile save -o apache.tar apache
  zocker-reconcile save base apache | ssh otherhost zocker-reconcile load`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			ctx := cmd.Context()
			var w io.Writer = g.stdout
			var f *os.File
			if output == "" || output == "-" {
				if out, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(out.Fd())) {
					return errors.New("save: refusing to write an archive to a terminal: give -o FILE or redirect standard output")
				}
			} else {
				// Written beside FILE and renamed at the end: FILE is never half an archive.
				f, err = os.CreateTemp(filepath.Dir(output), "."+filepath.Base(output)+".tmp*")
				if err != nil {
					return fmt.Errorf("save: %w", err)
				}
				defer func() {
					if err != nil {
						f.Close()
						os.Remove(f.Name())
					}
				}()
				w = f
			}
			eng, log, err := adHocEngine(ctx, cmd, g, shared)
			if err != nil {
				return err
			}
			var key *sign.Key
			if signKey != "" {
				if key, err = sign.LoadKey(signKey); err != nil {
					return err
				}
				defer key.Close()
			}
			if err := eng.Save(ctx, &runner.Exec{Logger: log}, args, w, "", key); err != nil {
				return err
			}
			if f != nil {
				if err := f.Chmod(0o600); err != nil {
					return fmt.Errorf("save: %w", err)
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("save: %w", err)
				}
				if err := os.Rename(f.Name(), output); err != nil {
					return fmt.Errorf("save: %w", err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "the archive file (default: standard output)")
	cmd.Flags().StringVar(&signKey, "sign-key", envOr("ZOCKER_SIGN_KEY", ""), "SSH private key (or, with KEY.pub, an ssh-agent key) that signs the image records and tags in the archive, as push --sign-key does (env ZOCKER_SIGN_KEY)")
	return cmd
}

func newLoadCmd(g *globals) *cobra.Command {
	var input string
	var trust trustFlags
	cmd := &cobra.Command{
		Use:   "load [-i FILE]",
		Short: "Read images from an archive made by save (Zocker's load)",
		Long: `load reads an archive made by save from FILE or standard input, receives the
images it lacks, oldest first, and sets the archive's tags, printing them.
Every check of pull applies (stream sizes and sha256, names, the stream
checks of the repository code); the archive may hold nothing but the
repository layout. All or nothing: when anything fails, no image and no tag
of the archive stays. With --allowed-signers, every tag of the archive and
every image record to receive must be signed by an allowed signer (save
--sign-key signs them) before anything is received.`,
		Example: `  zocker-reconcile load -i apache.tar
  ssh otherhost zocker-reconcile save apache | zocker-reconcile load`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var r io.Reader = cmd.InOrStdin()
			if input != "" && input != "-" {
				f, err := os.Open(input)
				if err != nil {
					return fmt.Errorf("load: %w", err)
				}
				defer f.Close()
				r = f
			}
			eng, log, err := adHocEngine(ctx, cmd, g, shared)
			if err != nil {
				return err
			}
			pol, err := trust.policy().For(nil)
			if err != nil {
				return err
			}
			tags, err := eng.Load(ctx, &runner.Exec{Logger: log}, r, "", pol)
			if err != nil {
				return err
			}
			for _, t := range tags {
				fmt.Fprintln(g.stdout, t)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "the archive file (default: standard input)")
	trust.add(cmd)
	return cmd
}
