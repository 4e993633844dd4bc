package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Defaults of the global flags (ARCHITECTURE section 7).
const (
	defaultRoot      = "zroot/zocker"
	defaultManifests = "/usr/local/etc/zocker.d"
	defaultStateDir  = "/var/run/zocker"
)

// globals are the flags every command accepts, before or after its name, each
// also read from a ZOCKER_* environment variable so rc.d and shells set them once.
type globals struct {
	root      string
	manifests string
	stateDir  string
	logLevel  string
	logFormat string
	// maxImageSize bounds pulled streams, downloads and work datasets.
	maxImageSize string

	stdout io.Writer
	stderr io.Writer
	// flags are the persistent flags, to tell a flag from its environment variable.
	flags *pflag.FlagSet
}

// logger builds the slog logger the flags ask for, writing to stderr.
func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("%s %q: want debug, info, warn or error", g.source("log-level", "ZOCKER_LOG_LEVEL"), g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, fmt.Errorf("%s %q: want text or json", g.source("log-format", "ZOCKER_LOG_FORMAT"), g.logFormat)
}

// source names where a global's value came from, for its error: the flag,
// else the environment variable when that is set.
func (g *globals) source(flag, env string) string {
	if g.flags != nil && !g.flags.Changed(flag) && os.Getenv(env) != "" {
		return env
	}
	return "--" + flag
}

// noRootNeeded are the commands a non-root user may run: they touch no ZFS
// dataset and no jail (status asks the service first, and checks for
// itself when it must compute the status locally).
var noRootNeeded = map[string]bool{"version": true, "validate": true, "help": true, "completion": true,
	"status": true, cobra.ShellCompRequestCmd: true, cobra.ShellCompNoDescRequestCmd: true}

// quietByDefault lowers the log level of the commands people run by hand to
// warn: their result is on stdout, and INFO lines would repeat it on stderr.
// serve (and the hidden helpers it starts) log at info.
func (g *globals) quietByDefault(cmd *cobra.Command) {
	if cmd.Name() == "serve" || cmd.Hidden || g.flags.Changed("log-level") || os.Getenv("ZOCKER_LOG_LEVEL") != "" {
		return
	}
	g.logLevel = "warn"
}

// commands holds the constructors of the subcommands; each command's file
// appends to it in an init function, so that commands live in their own files.
var commands []func(*globals) *cobra.Command

func register(f func(*globals) *cobra.Command) { commands = append(commands, f) }

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func newRootCmd() *cobra.Command {
	g := &globals{stdout: os.Stdout, stderr: os.Stderr}
	root := &cobra.Command{
		Use:   "zocker-reconcile",
		Short: "Declarative containers on FreeBSD jails and ZFS",
		Long: `zocker-reconcile watches a directory of YAML manifests declaring Images,
Containers and Volumes, compares them with the ZFS datasets and jails it
manages, and converges: importing, building or pulling images and creating,
starting, replacing, stopping or pruning containers.

Every global flag can also be set through its environment variable:
ZOCKER_ROOT, ZOCKER_MANIFESTS, ZOCKER_STATE_DIR, ZOCKER_LOG_LEVEL, ZOCKER_LOG_FORMAT,
ZOCKER_MAX_IMAGE_SIZE; and for some commands: ZOCKER_LISTEN (serve, status),
ZOCKER_REPOSITORY (push, pull, search, del).

Commands other than serve log only warnings and errors (their result is on
stdout) unless --log-level is given. Everything but version, validate and
status must run as root.`,
		Example: `  zocker-reconcile validate /usr/local/etc/zocker.d
  zocker-reconcile --root tank/zocker plan
  zocker-reconcile serve --listen 127.0.0.1:9847`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", envOr("ZOCKER_ROOT", defaultRoot), "the ZFS dataset under which everything lives (env ZOCKER_ROOT)")
	pf.StringVar(&g.manifests, "manifests", envOr("ZOCKER_MANIFESTS", defaultManifests), "the manifest directory (env ZOCKER_MANIFESTS)")
	pf.StringVar(&g.stateDir, "state-dir", envOr("ZOCKER_STATE_DIR", defaultStateDir), "runtime state: generated jail.conf, supervisor status, logs of the current boot (env ZOCKER_STATE_DIR)")
	pf.StringVar(&g.logLevel, "log-level", envOr("ZOCKER_LOG_LEVEL", "info"), "debug, info, warn or error (env ZOCKER_LOG_LEVEL)")
	pf.StringVar(&g.logFormat, "log-format", envOr("ZOCKER_LOG_FORMAT", "text"), "text or json (env ZOCKER_LOG_FORMAT)")
	pf.StringVar(&g.maxImageSize, "max-image-size", envOr("ZOCKER_MAX_IMAGE_SIZE", "20G"), "largest image stream, download or work dataset, e.g. 20G (env ZOCKER_MAX_IMAGE_SIZE)")
	g.flags = pf
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		g.stdout = cmd.OutOrStdout()
		g.stderr = cmd.ErrOrStderr()
		if _, err := g.logger(); err != nil {
			return err
		}
		g.quietByDefault(cmd)
		if !noRootNeeded[cmd.Name()] && !cmd.Hidden {
			if err := requireRoot(); err != nil {
				return err
			}
		}
		if _, err := g.imageSizeLimit(); err != nil {
			return err
		}
		if strings.TrimSpace(g.root) == "" {
			return fmt.Errorf("--root is empty")
		}
		return nil
	}
	for _, f := range commands {
		root.AddCommand(f(g))
	}
	return root
}
