package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/metrics"
	"github.com/zocker-reconcile/zocker-reconcile/metrics/httpapi"
	"github.com/zocker-reconcile/zocker-reconcile/service"
)

type serveFlags struct {
	reconcileFlags
	listen  string
	init    bool
	timeout string
	workers int
	resync  time.Duration
	// verifyCommits is the allowed_signers file of --verify-commits.
	verifyCommits string
}

func init() {
	register(func(g *globals) *cobra.Command {
		var f serveFlags
		cmd := &cobra.Command{
			Use:   "serve",
			Short: "Run the service: watch the manifests and converge",
			Long: `serve watches --manifests (a directory, possibly a symlink that git-sync swaps),
and converges the host on it: at start-up, on every change (debounced), on
SIGHUP, and every --resync (jittered) to repair drift. It serves /metrics,
/healthz, /readyz and /status on --listen (127.0.0.1:9847 by default; a
non-loopback address must be given explicitly, and /status then exposes the
container specs to that network).

With --allowed-signers, pulled images must be signed (see pull). With
--verify-commits FILE, the manifest directory must be a git worktree (as
git-sync makes them) whose HEAD commit is signed with an SSH key listed in
FILE (git -c gpg.format=ssh commit -S); an unsigned or wrongly signed
revision changes nothing: /status shows revisionUnverified with the commit
and the reason, zocker_manifest_revision_verified is 0, and the last
verified revision stays in force until a verified one arrives.

SIGTERM and SIGINT stop the service after the actions in flight finish;
containers keep running, and the next start adopts them.`,
			Example: `  zocker-reconcile serve --root zroot/zocker --manifests /usr/local/etc/zocker.d
  zocker-reconcile serve --listen 127.0.0.1:9847 --resync 1m --log-format json`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				explicit := cmd.Flags().Changed("listen") || os.Getenv("ZOCKER_LISTEN") != ""
				return runServe(cmd.Context(), g, &f, explicit)
			},
		}
		f.add(cmd)
		fl := cmd.Flags()
		fl.StringVar(&f.listen, "listen", envOr("ZOCKER_LISTEN", httpapi.DefaultListen), "address of /metrics, /healthz, /readyz and /status (env ZOCKER_LISTEN)")
		fl.BoolVar(&f.init, "init", false, "create --root when it does not exist (its parent must)")
		fl.StringVar(&f.timeout, "action-timeout", service.DefaultDeadlines, "deadline of each action: DURATION for all, OP=DURATION for one (import, build, pull, create, start, stop, replace, prune, ...); /healthz fails while an action runs past it")
		fl.IntVar(&f.workers, "workers", controller.DefaultWorkers, "actions run at once (image builds and pulls run one at a time)")
		fl.DurationVar(&f.resync, "resync", 30*time.Second, "period of the full passes that also repair drift (±10% jitter)")
		fl.StringVar(&f.verifyCommits, "verify-commits", envOr("ZOCKER_VERIFY_COMMITS", ""),
			"OpenSSH allowed_signers file: a new manifest revision (git worktree) is applied only when its HEAD commit is SSH-signed (gpg.format=ssh) by a key it lists; otherwise the last verified one stays in force (env ZOCKER_VERIFY_COMMITS)")
		return cmd
	})
}

func runServe(ctx context.Context, g *globals, f *serveFlags, explicitListen bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	if f.workers < 1 {
		return fmt.Errorf("--workers %d: want at least 1", f.workers)
	}
	if f.resync < time.Second {
		return fmt.Errorf("--resync %s: want at least 1s", f.resync)
	}
	if err := httpapi.CheckListen(f.listen, explicitListen, log); err != nil {
		return err
	}
	deadlines, err := service.ParseDeadlines(f.timeout)
	if err != nil {
		return err
	}
	// A policy file that cannot be read stops the start, not a later pull.
	if files := f.trust.files(); files.Enabled() {
		if _, err := files.Load(); err != nil {
			return fmt.Errorf("--allowed-signers: %w", err)
		}
	}
	var commits *service.CommitVerifier
	if f.verifyCommits != "" {
		commits = &service.CommitVerifier{Files: sign.Files{AllowedSigners: f.verifyCommits, RevokedKeys: f.trust.revokedKeys},
			Runner: &runner.Exec{Logger: log}}
		if _, err := commits.Files.Load(); err != nil {
			return fmt.Errorf("--verify-commits: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.BuildInfo(version, runtime.Version())
	// One writer per root: taken before the engine sweeps ROOT/tmp, which
	// would otherwise destroy another service's work in progress.
	lock, err := claimRoot(ctx, g, f.init, "serve", f.listen)
	if err != nil {
		return err
	}
	defer func() {
		if err := lock.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn("release the root", "err", err)
		}
	}()
	eng, err := newEngine(ctx, g, &f.reconcileFlags, log, owner)
	if err != nil {
		return err
	}
	if cleaned, err := cleanupSelftests(ctx, g, log); err != nil {
		log.Warn("clean up interrupted selftests", "err", err)
	} else if len(cleaned) > 0 {
		log.Info("removed the leftovers of interrupted selftests", "ids", cleaned)
	}
	usage, _ := eng.Driver.(service.UsageReader)
	svc := service.New(service.Config{
		Manifests:   g.manifests,
		Engine:      eng,
		Usage:       usage,
		Loader:      newLoader(&f.reconcileFlags, log, eng),
		Options:     f.options(),
		Metrics:     m,
		Registry:    reg,
		Workers:     f.workers,
		Resync:      f.resync,
		Deadlines:   deadlines,
		Log:         log,
		Supervisors: (&supervisor.Reader{StateDir: g.stateDir}).List,
		Commits:     commits,
	})
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.listen, err)
	}
	go retrySweep(ctx, eng.Store, f.resync, log)

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				log.Info("SIGHUP: reloading the manifests")
				svc.Reload(metrics.TriggerSIGHUP)
			case <-ctx.Done():
				return
			}
		}
	}()

	log.Info("serving", "listen", ln.Addr().String(), "root", g.root, "manifests", g.manifests, "state_dir", g.stateDir, "version", version)
	err = svc.Run(ctx, ln)
	log.Info("stopped; containers keep running")
	return err
}
