package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
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
}

// logger builds the slog logger the flags ask for, writing to stderr.
func (g *globals) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", g.logFormat)
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
ZOCKER_MAX_IMAGE_SIZE.`,
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
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		g.stdout = cmd.OutOrStdout()
		g.stderr = cmd.ErrOrStderr()
		if _, err := g.logger(); err != nil {
			return err
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
