package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

// SuperviseCommand is the hidden subcommand that runs one container's
// supervisor in this (large) binary: `zocker-reconcile __supervise STATE_DIR
// NAME`. The service prefers the lean zocker-supervise binary (see
// supervisorArgv) and uses this only when that binary cannot be found.
const SuperviseCommand = "__supervise"

// SupervisorBinary is the name of the lean supervisor binary, installed
// beside zocker-reconcile.
const SupervisorBinary = "zocker-supervise"

func init() {
	register(func(g *globals) *cobra.Command {
		var opts supervisor.DriverOptions
		cmd := &cobra.Command{
			Use:    SuperviseCommand + " STATE_DIR NAME",
			Short:  "Run one container's supervisor (started by the service, not by people)",
			Hidden: true,
			Args:   cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				if err := supervisor.Main(args[0], args[1], opts, log); err != nil {
					return withCode(1, err)
				}
				return removeWhenDone(g, args[0], args[1], log)
			},
		}
		cmd.Flags().StringVar(&opts.LoopbackInterface, "loopback-interface", "", "FreeBSD: the interface of loopback addresses when the jail spec names none")
		return cmd
	})
	// What zocker-supervise runs when a run -d --rm container is done: the
	// removal needs the ZFS code the lean supervisor leaves out.
	register(func(g *globals) *cobra.Command {
		return &cobra.Command{
			Use:    RemoveWhenDoneCommand + " STATE_DIR NAME",
			Short:  "Remove a run --rm container whose command is done (run by its supervisor, not by people)",
			Hidden: true,
			Args:   cobra.ExactArgs(2),
			RunE: func(_ *cobra.Command, args []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				return removeWhenDone(g, args[0], args[1], log)
			},
		}
	})
}

// RemoveWhenDoneCommand is the hidden command zocker-supervise runs (given
// as --remove-with this binary) once a run --rm container is done.
const RemoveWhenDoneCommand = "__remove-when-done"

// supervisorArgv is the argv prefix that starts a supervisor, for
// supervisor.Start: the binary given with --supervisor, else zocker-supervise
// beside this binary, else zocker-supervise on PATH, else this binary's
// hidden __supervise command (a development build run with go run).
func supervisorArgv(flag string) ([]string, error) {
	if flag != "" {
		abs, err := filepath.Abs(flag)
		if err != nil {
			return nil, fmt.Errorf("--supervisor %s: %w", flag, err)
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("--supervisor: %w", err)
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("locate the zocker-reconcile binary: %w", err)
		}
		return []string{abs, "--remove-with", exe}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("locate the zocker-reconcile binary: %w", err)
	}
	lean := func(path string) []string { return []string{path, "--remove-with", exe} }
	beside := filepath.Join(filepath.Dir(exe), SupervisorBinary)
	if fi, err := os.Stat(beside); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return lean(beside), nil
	}
	if p, err := exec.LookPath(SupervisorBinary); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return lean(abs), nil
		}
	}
	return []string{exe, SuperviseCommand}, nil
}
