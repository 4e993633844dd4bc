package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// runFlags are the flags of run and create: Zocker's and Docker's words for
// the fields of a Container manifest.
type runFlags struct {
	name, network, iface, user, workdir, hostname, restart, memory, cpus string
	addresses, volumes, env                                              []string
	detach, rm, stdin, tty                                               bool
}

func (f *runFlags) add(cmd *cobra.Command, run bool) {
	fl := cmd.Flags()
	// Flags after IMAGE belong to the command run in the container.
	fl.SetInterspersed(false)
	fl.StringVarP(&f.name, "name", "n", "", "the container's name (default run-<8 hex digits>)")
	fl.StringArrayVarP(&f.volumes, "volume", "v", nil, "HOSTDIR:PATH[:ro|rw] or VOLUME:PATH[:ro|rw]: mount a host directory or a managed Volume (repeatable)")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "KEY=VALUE added to the image's environment (repeatable)")
	fl.StringVar(&f.network, "network", manifests.NetLoopback, "inherit, none, loopback or alias")
	fl.StringVar(&f.iface, "interface", "", "alias network: the host interface carrying --address")
	fl.StringArrayVar(&f.addresses, "address", nil, "alias network: an address in CIDR form (repeatable)")
	fl.StringVarP(&f.user, "user", "u", "", "run as this user of the image (default: the image's USER, else root)")
	fl.StringVarP(&f.workdir, "workdir", "w", "", "the working directory (default: the image's WORKDIR, else /)")
	fl.StringVar(&f.hostname, "hostname", "", "the jail's host name (default: the container's name)")
	fl.StringVar(&f.restart, "restart", "no", "no, on-failure or always: what its supervisor does when the command exits (detached or started)")
	fl.StringVar(&f.memory, "memory", "", "memory limit, e.g. 512M")
	fl.StringVar(&f.cpus, "cpus", "", "CPU limit in CPUs, e.g. 0.5 or 2")
	if run {
		fl.BoolVarP(&f.detach, "detach", "d", false, "run under a supervisor in the background and print the name")
		fl.BoolVar(&f.rm, "rm", false, "remove the container when its command is done (detached: when the restart policy gives up)")
		fl.BoolVarP(&f.stdin, "interactive", "i", false, "pass standard input to the command")
		fl.BoolVarP(&f.tty, "tty", "t", false, "give the command a terminal (with -i: an interactive shell)")
	}
}

// restartPolicies maps run's --restart words to the manifests' policies.
var restartPolicies = map[string]string{
	"no":         manifests.RestartNever,
	"on-failure": manifests.RestartOnFailure,
	"always":     manifests.RestartAlways,
}

// container turns the flags and IMAGE [COMMAND [ARG...]] into a checked
// Container. One COMMAND argument runs as /bin/sh -c ARG (as Zocker did),
// several are the argv, none is the image's CMD.
func (f *runFlags) container(args []string) (*manifests.Container, error) {
	c := &manifests.Container{Metadata: manifests.ObjectMeta{Name: f.name}}
	if c.Metadata.Name == "" {
		c.Metadata.Name = engine.NewAdHocName()
	}
	s := &c.Spec
	s.Image = args[0]
	switch len(args) {
	case 1:
	case 2:
		s.Command.Shell = args[1]
	default:
		s.Command.Argv = args[1:]
	}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("-e %q: want KEY=VALUE", kv)
		}
		if s.Env == nil {
			s.Env = map[string]string{}
		}
		s.Env[k] = v
	}
	for _, spec := range f.volumes {
		m, err := parseVolume(spec)
		if err != nil {
			return nil, err
		}
		s.Volumes = append(s.Volumes, m)
	}
	s.User, s.Workdir, s.Hostname = f.user, f.workdir, f.hostname
	s.Network = manifests.Network{Mode: f.network, Interface: f.iface, Addresses: f.addresses}
	policy, ok := restartPolicies[f.restart]
	if !ok {
		return nil, fmt.Errorf("--restart %q: want no, on-failure or always", f.restart)
	}
	s.RestartPolicy = policy
	s.Resources.Memory = f.memory
	if f.cpus != "" {
		n, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil || n <= 0 || n > 1024 {
			return nil, fmt.Errorf("--cpus %q: want a positive number of CPUs, e.g. 0.5", f.cpus)
		}
		s.Resources.CPU = max(1, int(n*100+0.5))
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	if probs := manifests.CheckContainer("run", cwd, c); len(probs) > 0 {
		msgs := make([]string, 0, len(probs))
		for _, p := range probs {
			if p.IsError() {
				msgs = append(msgs, p.String())
			}
		}
		if len(msgs) > 0 {
			return nil, errors.New(strings.Join(msgs, "\n"))
		}
	}
	// Checked here too, so that a typo makes no container that cannot start.
	for _, v := range s.Volumes {
		if v.HostPath == "" {
			continue
		}
		if fi, err := os.Stat(v.HostPath); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("-v %s:%s: the host directory %s does not exist", v.HostPath, v.Path, v.HostPath)
		}
	}
	return c, nil
}

// create makes the container the flags and args describe and returns the
// engine and the container's name.
func (f *runFlags) create(cmd *cobra.Command, g *globals, args []string) (*engine.Engine, string, error) {
	c, err := f.container(args)
	if err != nil {
		return nil, "", err
	}
	if file := declaredIn(g.manifests, c.Metadata.Name); file != "" {
		return nil, "", fmt.Errorf("container %s is declared in %s: choose another name (-n), or let the service run it", c.Metadata.Name, file)
	}
	eng, _, err := adHocEngine(cmd.Context(), cmd, g, adHoc)
	if err != nil {
		return nil, "", err
	}
	if _, err := eng.CreateAdHoc(cmd.Context(), c); err != nil {
		return nil, "", err
	}
	return eng, c.Metadata.Name, nil
}

// declaredIn returns the manifest file under dir that declares Container
// name, or "". A name taken by run before the service made its declared
// container would hold that container Stalled. Best effort: a directory that
// cannot be loaded declares nothing here (the service reports it).
func declaredIn(dir, name string) string {
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	set, err := manifests.Load(dir, manifests.LoadOptions{})
	if err != nil || set == nil {
		return ""
	}
	if _, ok := set.Containers[name]; !ok {
		return ""
	}
	return set.Sources[manifests.KindContainer+"/"+name].File
}

// parseVolume reads HOST:PATH[:ro|rw]; HOST is a host directory when it is
// a path (absolute, or ./ and ../ relative to the current directory), else
// the name of a managed Volume.
func parseVolume(spec string) (manifests.VolumeMount, error) {
	parts := strings.Split(spec, ":")
	var m manifests.VolumeMount
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		m.ReadOnly = parts[2] == "ro"
	case len(parts) != 2:
		return m, fmt.Errorf("-v %q: want HOSTDIR:PATH[:ro|rw] or VOLUME:PATH[:ro|rw]", spec)
	}
	src := parts[0]
	m.Path = parts[1]
	if strings.HasPrefix(src, "/") || strings.HasPrefix(src, "./") || strings.HasPrefix(src, "../") || src == "." || src == ".." {
		m.HostPath = src
	} else {
		m.Volume = src
	}
	return m, nil
}

// adHocEngine opens the store as mode says, shared or adHoc (never sweeping
// the service's work in ROOT/tmp, never taking the service's lock: ad-hoc
// work is allowed beside a running service), and builds the engine with
// the default loopback pool, the one serve uses.
func adHocEngine(ctx context.Context, cmd *cobra.Command, g *globals, mode storeMode) (*engine.Engine, *slog.Logger, error) {
	log, err := adHocLogger(cmd, g)
	if err != nil {
		return nil, nil, err
	}
	// The root must exist and the state directory be its own (issue 19);
	// ad-hoc commands take no lock: they work beside the service.
	if _, err := checkRoot(ctx, g); err != nil {
		return nil, nil, err
	}
	f := &reconcileFlags{loopbackPool: jail.DefaultLoopbackPool.String(), loopbackInterface: "lo0"}
	eng, err := newEngine(ctx, g, f, log, mode)
	return eng, log, err
}

// adHocLogger logs warnings and errors only unless --log-level (or its
// variable) asks for more: the output of run is the container's.
func adHocLogger(cmd *cobra.Command, g *globals) (*slog.Logger, error) {
	if !cmd.Flags().Changed("log-level") && os.Getenv("ZOCKER_LOG_LEVEL") == "" {
		q := *g
		q.logLevel = "warn"
		return q.logger()
	}
	return g.logger()
}

func init() {
	register(newRunCmd)
	register(newCreateCmd)
}

func newRunCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new ad-hoc container (Zocker's run)",
		Long: `run clones IMAGE (a tag or an ID) into a new container and runs COMMAND in
its jail. One COMMAND argument runs as /bin/sh -c COMMAND, as in Zocker;
several are the argv; none runs the image's CMD.

In the foreground (the default) the command's output goes to the terminal and
run exits with the command's exit code (128+N when it died of signal N);
Ctrl-C stops the container. The container stays, exited with its code, until
rm (or --rm). With -d it runs under its own supervisor in the background,
with the --restart policy, and run prints its name.

Containers made with run or create carry zocker:origin=cli: the service never
changes, restarts, stops or prunes them, and a manifest declaring the same
name is Stalled until the name is free. A name the manifests in --manifests
declare is refused.`,
		Example: `  zocker-reconcile run -n test base 'echo hello; exit 3'
  zocker-reconcile run -d -n web -v /tmp/apachelogs:/var/log/httpd:rw apache
  zocker-reconcile run --rm -it base /bin/sh`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.detach && (f.stdin || f.tty) {
				return errors.New("-i and -t need the foreground: leave out -d")
			}
			ctx := cmd.Context()
			eng, name, err := f.create(cmd, g, args)
			if err != nil {
				return err
			}
			if f.detach {
				if _, err := eng.StartAdHoc(ctx, name, f.rm); err != nil {
					return err
				}
				fmt.Fprintln(g.stdout, name)
				return nil
			}
			code, err := runAttached(ctx, eng, name, f.stdin, f.tty)
			if f.rm {
				if rerr := eng.RemoveAdHoc(context.WithoutCancel(ctx), name, true); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
			if err != nil {
				return withCode(max(code, 1), err)
			}
			if code != 0 {
				return withCode(code, nil)
			}
			return nil
		},
	}
	f.add(cmd, true)
	return cmd
}

// runAttached runs the container in the foreground until its command exits
// or a signal asks this process to stop (Ctrl-C, a hang-up, or `stop` from
// another terminal, which signals this process), and returns the exit code.
func runAttached(ctx context.Context, eng *engine.Engine, name string, stdin, tty bool) (int, error) {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	stdio := supervisor.Stdio{Stdout: os.Stdout, Stderr: os.Stderr}
	if stdin {
		// Through a pipe, not the terminal itself: the command runs in a
		// process group of its own, which the terminal would stop (SIGTTIN)
		// on a read.
		stdio.Stdin = struct{ io.Reader }{os.Stdin}
	}
	if tty {
		t, err := openTTY(stdin)
		if err != nil {
			return 1, err
		}
		defer t.close()
		stdio = t.stdio
	}
	return eng.RunAdHoc(ctx, name, stdio)
}

func newCreateCmd(g *globals) *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "create [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Make an ad-hoc container without starting it (Zocker's create)",
		Long: `create makes the container run would make (same flags, without -d, --rm, -i
and -t) and prints its name; start runs it.`,
		Example: `  zocker-reconcile create -n job base 'date; uname -a'
  zocker-reconcile start -a job`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, name, err := f.create(cmd, g, args)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, name)
			return nil
		},
	}
	f.add(cmd, false)
	return cmd
}

// removeWhenDone is what the hidden supervise command does after its
// supervisor ended: the container of `run -d --rm` whose command is done
// for good is removed, as `rm` would (its supervisor, having exited,
// holds nothing any more).
func removeWhenDone(g *globals, stateDir, name string, log *slog.Logger) error {
	if !supervisor.RemoveWanted(stateDir, name) {
		return nil // not --rm, or stopped by hand: rm is theirs to run
	}
	cfg, err := supervisor.ReadConfig(stateDir, name)
	if err != nil {
		return nil
	}
	ctx := context.Background()
	gg := *g
	gg.root, gg.stateDir = cfg.Annotations[engine.AnnotationRoot], stateDir
	f := &reconcileFlags{loopbackPool: jail.DefaultLoopbackPool.String(), loopbackInterface: "lo0"}
	eng, err := newEngine(ctx, &gg, f, log, shared)
	if err != nil {
		return fmt.Errorf("remove container %s when done: %w", name, err)
	}
	if err := eng.RemoveAdHoc(ctx, name, true); err != nil {
		return fmt.Errorf("remove container %s when done: %w", name, err)
	}
	log.Info("removed container when done (--rm)", "container", name, "action", "destroy")
	return nil
}
