package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func init() {
	register(newStartCmd)
	register(newStopCmd)
	register(newRmCmd)
}

func newStartCmd(g *globals) *cobra.Command {
	var attach bool
	cmd := &cobra.Command{
		Use:   "start [-a] NAME...",
		Short: "Start ad-hoc containers (Zocker's start)",
		Long: `start runs containers made with run or create again, each under its own
supervisor with its restart policy, and prints their names. With -a (one
NAME) it runs in the foreground as run does: output to the terminal, the
command's exit code, Ctrl-C stops it.

A container declared in the manifests is refused: the service starts it.`,
		Example: `  zocker-reconcile start web
  zocker-reconcile start -a job`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach && len(args) != 1 {
				return errors.New("start -a takes one container")
			}
			ctx := cmd.Context()
			eng, _, err := adHocEngine(ctx, cmd, g, adHoc)
			if err != nil {
				return err
			}
			if attach {
				code, err := runAttached(ctx, eng, args[0], false, false)
				if err != nil {
					return withCode(max(code, 1), err)
				}
				if code != 0 {
					return withCode(code, nil)
				}
				return nil
			}
			var errs []error
			for _, name := range args {
				if _, err := eng.StartAdHoc(ctx, name, false); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(g.stdout, name)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "run in the foreground: output to the terminal, exit with the command's code")
	return cmd
}

func newStopCmd(g *globals) *cobra.Command {
	var seconds int
	cmd := &cobra.Command{
		Use:   "stop [-t SECONDS] NAME...",
		Short: "Stop ad-hoc containers (Zocker's stop)",
		Long: `stop sends each container's stop signal (SIGTERM unless it was given
another), kills it after its stop timeout (10 s, or -t), removes its jail and
prints its name. The clone stays: start runs it again, rm removes it.

A container declared in the manifests is refused: declare spec.state:
Stopped in its manifest instead.`,
		Example: `  zocker-reconcile stop web
  zocker-reconcile stop -t 30 web db`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if seconds < 0 {
				return errors.New("-t: want seconds, 0 or more")
			}
			ctx := cmd.Context()
			eng, _, err := adHocEngine(ctx, cmd, g, adHoc)
			if err != nil {
				return err
			}
			timeout := time.Duration(seconds) * time.Second
			if cmd.Flags().Changed("time") && seconds == 0 {
				timeout = time.Millisecond // kill at once
			}
			var errs []error
			for _, name := range args {
				if err := eng.StopAdHoc(ctx, name, timeout); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(g.stdout, name)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().IntVarP(&seconds, "time", "t", 0, "seconds to wait after the stop signal before killing (default: the container's stop timeout, 10)")
	return cmd
}

func newRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "Remove ad-hoc containers (Zocker's rm)",
		Long: `rm destroys containers made with run or create: their clone (with every
change made inside), jail and runtime files, and prints their names. A
running container is refused unless -f, which stops it first. Mounted host
directories and Volumes are not touched.

A container declared in the manifests is refused: remove it from its
manifest and the service prunes it.`,
		Example: `  zocker-reconcile rm test
  zocker-reconcile rm -f web`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			eng, _, err := adHocEngine(ctx, cmd, g, adHoc)
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if err := eng.RemoveAdHoc(ctx, name, force); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(g.stdout, name)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running container first")
	return cmd
}
