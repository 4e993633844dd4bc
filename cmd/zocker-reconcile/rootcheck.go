package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	rootowner "github.com/zocker-reconcile/zocker-reconcile/engine/owner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// errNotRoot is what every command that touches ZFS or jails says to a
// non-root user, instead of the ZFS library's errors.
var errNotRoot = errors.New("zocker-reconcile must run as root")

func requireRoot() error {
	if os.Geteuid() != 0 {
		return errNotRoot
	}
	return nil
}

// checkRoot is the start of every command that reads or changes the root
// without owning it: it runs as root, zfs works, the root exists, and the
// state directory belongs to it.
func checkRoot(ctx context.Context, g *globals) (zfs.RootInfo, error) {
	if err := requireRoot(); err != nil {
		return zfs.RootInfo{}, err
	}
	log, err := g.logger()
	if err != nil {
		return zfs.RootInfo{}, err
	}
	info, err := zfs.CheckRoot(ctx, &runner.Exec{Logger: log}, g.root)
	if err != nil {
		var me *zfs.MissingRootError
		if errors.As(err, &me) {
			return info, fmt.Errorf("%w: %s", err, missingHint(me))
		}
		return info, err
	}
	if err := rootowner.CheckStateDir(g.stateDir, g.root, info.Props); err != nil {
		return info, err
	}
	return info, nil
}

func missingHint(me *zfs.MissingRootError) string {
	if !me.ParentExists && me.Parent != "" {
		return fmt.Sprintf("its parent %s does not exist either; check --root (or ZOCKER_ROOT)", me.Parent)
	}
	return fmt.Sprintf("check --root (or ZOCKER_ROOT), or create it with zocker-reconcile init --root %s (or --init on serve and apply)", me.Root)
}

// initRoot creates a missing root when its parent exists (init, and serve
// or apply with --init), and records the state directory it belongs to.
// It reports whether the root was created.
func initRoot(ctx context.Context, g *globals) (bool, error) {
	info, err := checkRoot(ctx, g)
	var me *zfs.MissingRootError
	if errors.As(err, &me) {
		if !me.ParentExists {
			return false, err
		}
		// A state directory of another root stays that root's.
		if err := rootowner.CheckStateDir(g.stateDir, g.root, nil); err != nil {
			return false, err
		}
		log, lerr := g.logger()
		if lerr != nil {
			return false, lerr
		}
		s, oerr := zfs.OpenShared(ctx, g.root, &runner.Exec{Logger: log}, log)
		if oerr != nil {
			return false, oerr
		}
		return true, rootowner.BindStateDir(ctx, g.stateDir, g.root, nil, s)
	}
	if err != nil {
		return false, err
	}
	s, err := attachStore(g)
	if err != nil {
		return false, err
	}
	return false, rootowner.BindStateDir(ctx, g.stateDir, g.root, info.Props, s)
}

// claimRoot is the start of serve and apply, the two writers: the root
// exists (or is created with --init), no other writer holds it, and the
// state directory is bound to it. The lock is released by the caller.
func claimRoot(ctx context.Context, g *globals, create bool, what, addr string) (*rootowner.Lock, error) {
	if create {
		if _, err := initRoot(ctx, g); err != nil {
			return nil, err
		}
	}
	info, err := checkRoot(ctx, g)
	if err != nil {
		return nil, err
	}
	s, err := attachStore(g)
	if err != nil {
		return nil, err
	}
	lock, err := rootowner.Acquire(ctx, g.stateDir, g.root, info.Props, s, rootowner.Self(what, addr))
	if err != nil {
		var he *rootowner.HeldError
		if errors.As(err, &he) && what == "apply" {
			return nil, fmt.Errorf("%w: apply would race it; use plan to see what it will do, or stop the service first", err)
		}
		return nil, err
	}
	if err := rootowner.BindStateDir(ctx, g.stateDir, g.root, info.Props, s); err != nil {
		lock.Release(ctx)
		return nil, err
	}
	return lock, nil
}

func attachStore(g *globals) (*zfs.Store, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	return zfs.Attach(g.root, &runner.Exec{Logger: log}, log)
}
