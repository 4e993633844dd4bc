package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/build"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/repo"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// reconcileFlags are the flags of the commands that plan or converge
// (serve, plan, apply, status).
type reconcileFlags struct {
	allowEmpty        bool
	maxPrune          int
	insecure          bool
	loopbackPool      string
	loopbackInterface string
	jailNameservers   []string
	pullInterval      time.Duration
	supervisor        string
	trust             trustFlags
}

func (f *reconcileFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.allowEmpty, "allow-empty", false, "let an empty or missing manifest directory prune the managed objects")
	fl.IntVar(&f.maxPrune, "max-prune", reconcile.DefaultMaxPrune, "refuse a pass that would remove more containers and destroy more volumes, together, than this (negative: no limit)")
	fl.BoolVar(&f.insecure, "insecure-manifests", false, "accept manifest files and directories writable by group or others or owned by another user")
	fl.StringVar(&f.loopbackPool, "loopback-pool", jail.DefaultLoopbackPool.String(), "the addresses given to loopback-networked containers")
	fl.StringVar(&f.loopbackInterface, "loopback-interface", "lo0", "FreeBSD: the interface that carries loopback addresses (e.g. a cloned lo1 for pf NAT)")
	fl.StringSliceVar(&f.jailNameservers, "jail-nameserver", nil, "FreeBSD: nameservers for loopback and alias containers when the host's resolv.conf names 127.0.0.1 or ::1 (unreachable from such a jail); repeatable")
	fl.StringVar(&f.supervisor, "supervisor", "", "the supervisor binary started for each container (default: "+SupervisorBinary+" beside this binary, else on PATH)")
	f.trust.add(cmd)
	fl.DurationVar(&f.pullInterval, "pull-interval", service.DefaultPullInterval, "how often the repository tags of pull Images and the registry tags of oci Images are checked (and on every manifest change)")
}

func (f *reconcileFlags) options() reconcile.Options {
	return reconcile.Options{AllowEmpty: f.allowEmpty, MaxPrune: f.maxPrune, Now: time.Now()}
}

// How a command opens the store.
type storeMode int

const (
	// readOnly attaches to the root and changes nothing (plan, status).
	readOnly storeMode = iota
	// shared creates the tree if needed but leaves ROOT/tmp alone: it may
	// hold a running service's work (apply).
	shared
	// owner also removes the leftovers of interrupted work in ROOT/tmp: the
	// service at its start.
	owner
	// adHoc is shared without reading ROOT/tmp (zfs.OpenAdHoc): run,
	// create and start, whose time a user waits on.
	adHoc
)

// newEngine opens the store under --root as mode says and builds the driver
// and the engine.
func newEngine(ctx context.Context, g *globals, f *reconcileFlags, log *slog.Logger, mode storeMode) (*engine.Engine, error) {
	pool, err := netip.ParsePrefix(f.loopbackPool)
	if err != nil {
		return nil, fmt.Errorf("--loopback-pool %q: %w", f.loopbackPool, err)
	}
	for _, n := range f.jailNameservers {
		if _, err := netip.ParseAddr(n); err != nil {
			return nil, fmt.Errorf("--jail-nameserver %q: %w", n, err)
		}
	}
	r := &runner.Exec{Logger: log}
	driver, err := supervisor.NewDriver(g.stateDir, supervisor.DriverOptions{LoopbackInterface: f.loopbackInterface}, log)
	if err != nil {
		return nil, err
	}
	var store *zfs.Store
	switch mode {
	case readOnly:
		if _, err := checkRoot(ctx, g); err != nil {
			return nil, err
		}
		store, err = zfs.Attach(g.root, r, log)
	default:
		if err := os.MkdirAll(g.stateDir, 0o750); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		switch mode {
		case owner:
			store, err = zfs.Open(ctx, g.root, r, log)
		case adHoc:
			store, err = zfs.OpenAdHoc(ctx, g.root, r, log)
		default:
			store, err = zfs.OpenShared(ctx, g.root, r, log)
		}
	}
	if err != nil {
		return nil, err
	}
	maxSize, err := g.imageSizeLimit()
	if err != nil {
		return nil, err
	}
	store.MaxImageSize = maxSize
	// Env values reach zocker:spec and zocker:spec-hash only as digests
	// under this key (review M3); a read-only command does not make it.
	key, err := store.EnvKey(ctx, mode != readOnly)
	if err != nil {
		return nil, err
	}
	reconcile.SetEnvKey(key)
	self, err := supervisorArgv(f.supervisor)
	if err != nil {
		return nil, err
	}
	log.Debug("supervisor binary", "argv", self)
	eng := &engine.Engine{
		Pull:              engine.Pullers(engine.RepoPuller(store, r, repo.Options{Log: log, MaxImageSize: maxSize}, f.trust.policy()), engine.OCIPuller(store, log)),
		Store:             store,
		Driver:            driver,
		StateDir:          g.stateDir,
		Self:              self,
		LoopbackPool:      pool,
		LoopbackInterface: f.loopbackInterface,
		JailNameservers:   f.jailNameservers,
		Log:               log,
	}
	eng.Build = eng.ZockerfileBuilder()
	if step := os.Getenv(pauseUpdateEnv); step != "" {
		eng.UpdateStep = pauseAt(step, log)
	}
	if mode == owner {
		// Build jails of a build the process did not finish.
		tmp, err := store.TmpMountpoint(ctx)
		if err != nil {
			return nil, err
		}
		if removed, err := build.RemoveLeftoverJails(ctx, driver, tmp); err != nil {
			log.Warn("remove leftover build jails", "err", err)
		} else if len(removed) > 0 {
			log.Info("removed leftover build jails", "jails", removed)
			// What their inits held busy can go now.
			store.SweepTmp(ctx)
		}
	}
	return eng, nil
}

// newLoader makes the desired-state loader; eng (may be nil) lets build
// inputs use the base image IDs it last observed.
func newLoader(f *reconcileFlags, log *slog.Logger, eng *engine.Engine) *service.Loader {
	pol := f.trust.policy()
	opts := service.LoaderOptions{Insecure: f.insecure, PullInterval: f.pullInterval, Resolve: pol.Resolver(repo.Options{Log: log}),
		Verified: pol.Verified, ResolveOCI: engine.OCIResolver(log), Log: log}
	if eng != nil {
		opts.Tags = eng.Tags()
	}
	return service.NewLoader(opts)
}

// manifestsArg is DIR when given, else --manifests.
func manifestsArg(g *globals, args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return g.manifests
}

// pauseUpdateEnv names a step of a health-gated replacement ("stopped",
// "kept", "created") at which the process stops working until it is killed:
// the crash-safety tests (e2e/update_test.go) kill the service there. It is
// a test hook; nothing sets it in production.
const pauseUpdateEnv = "ZOCKER_TEST_PAUSE_UPDATE"

func pauseAt(step string, log *slog.Logger) func(ctx context.Context, container, at string) {
	return func(ctx context.Context, container, at string) {
		if at != step {
			return
		}
		log.Warn("paused at update step (test hook)", "container", container, "step", at, "env", pauseUpdateEnv)
		<-ctx.Done()
	}
}
