package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var user, workdir string
		var env []string
		cmd := &cobra.Command{
			Use:   "exec NAME -- CMD [ARG...]",
			Short: "Run a command in a running container",
			Long: `exec runs CMD inside the running container NAME, as the container's user and
in its working directory unless -u or -w say otherwise, with the container's
environment plus any -e KEY=VALUE. Standard input, output and error (a
terminal too) are passed through. The exit status is the command's.

"Running" means its jail exists: exec also works while the container's
command is in backoff between restarts, which helps to find why it crashes
(ps shows "backoff (exit N)"); a stopped container has no jail.`,
			Example: `  zocker-reconcile exec web -- /bin/sh
  zocker-reconcile exec -u root web -- cat /etc/passwd`,
			Args: cobra.MinimumNArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				if cmd.ArgsLenAtDash() != 1 {
					return fmt.Errorf("usage: exec NAME -- CMD [ARG...]")
				}
				name, argv := args[0], args[1:]
				// The name becomes a path under the state directory.
				if err := image.ValidName("container", name); err != nil {
					return err
				}
				log, err := g.logger()
				if err != nil {
					return err
				}
				st, err := supervisor.Get(g.stateDir, name)
				if err != nil {
					return fmt.Errorf("container %s: %w", name, err)
				}
				if !st.Alive {
					return fmt.Errorf("container %s is not running (state %s)", name, st.State)
				}
				cfg, err := supervisor.ReadConfig(g.stateDir, name)
				if err != nil {
					return err
				}
				p := jail.Process{Argv: argv, Env: append(cfg.Process.Env, env...), User: cfg.Process.User, Workdir: cfg.Process.Workdir}
				if user != "" {
					p.User = user
				}
				if workdir != "" {
					p.Workdir = workdir
				}
				driver, err := supervisor.NewDriver(g.stateDir, supervisor.DriverOptions{}, log)
				if err != nil {
					return err
				}
				c, err := driver.Command(name, p)
				if err != nil {
					return err
				}
				c.Stdin, c.Stdout, c.Stderr = os.Stdin, g.stdout, g.stderr
				err = c.Run()
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					return withCode(ee.ExitCode(), nil)
				}
				return err
			},
		}
		cmd.Flags().StringVarP(&user, "user", "u", "", "run as this user (a name or uid from the container's /etc/passwd)")
		cmd.Flags().StringVarP(&workdir, "workdir", "w", "", "the working directory inside the container")
		cmd.Flags().StringArrayVarP(&env, "env", "e", nil, "add KEY=VALUE to the environment (repeatable)")
		return cmd
	})
}
