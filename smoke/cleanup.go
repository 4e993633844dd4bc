package smoke

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

var idRE = regexp.MustCompile(`^[0-9a-f]{8,32}$`)

// LockPath is the lock a running selftest holds: beside, not inside, its
// state directory, which Destroy removes.
func LockPath(stateParent, id string) string {
	return filepath.Join(stateParent, Prefix+id+".lock")
}

// Lock takes the run's lock (flock, released when the process dies, so a
// killed selftest is recognisably dead). release drops and removes it.
func Lock(stateParent, id string) (release func(), err error) {
	if err := os.MkdirAll(stateParent, 0o750); err != nil {
		return nil, err
	}
	p := LockPath(stateParent, id)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("selftest %s is running: %w", id, err)
	}
	return func() { os.Remove(p); f.Close() }, nil
}

// held reports whether a live selftest holds id's lock.
func held(stateParent, id string) bool {
	f, err := os.OpenFile(LockPath(stateParent, id), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// Destroy removes everything a run made: its supervisors (stopped, which
// removes their jails), any jail left with its names, the root dataset and
// the state directory. Each part is tried even when one fails.
func Destroy(ctx context.Context, id, root, stateDir string, driver jail.Driver, r runner.Runner, zfsBin string, log *slog.Logger) error {
	var errs []error
	if sts, err := supervisor.List(stateDir); err == nil {
		for _, st := range sts {
			if err := supervisor.Stop(ctx, stateDir, st.Name, driver); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if infos, err := driver.List(ctx); err == nil {
		for _, i := range infos {
			if strings.HasPrefix(i.Name, "st"+id+"-") {
				if err := driver.Remove(ctx, i.Name); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := destroyDataset(ctx, r, zfsBin, root); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("destroy selftest %s: %w", id, err)
	}
	return nil
}

// destroyDataset runs `zfs destroy -r`, retrying while the dataset is busy
// (zfs-fuse for a moment after use; FreeBSD while a jail's processes die).
func destroyDataset(ctx context.Context, r runner.Runner, zfsBin, ds string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := r.Run(ctx, runner.Cmd{Argv: []string{zfsBin, "destroy", "-r", ds}})
		var ce *runner.CommandError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &ce) && strings.Contains(ce.Stderr, "does not exist"):
			return nil
		case errors.As(err, &ce) && strings.Contains(ce.Stderr, "busy") && time.Now().Before(deadline):
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(200 * time.Millisecond):
			}
		default:
			return fmt.Errorf("destroy %s: %w", ds, err)
		}
	}
}

// Cleanup removes what selftests killed half-way left under root and
// stateParent: every ROOT/selftest-ID dataset and STATE/selftest-ID
// directory whose run no longer holds its lock. newDriver gives a driver
// working on a run's state directory. It returns the IDs cleaned.
func Cleanup(ctx context.Context, root, stateParent string, newDriver func(stateDir string) (jail.Driver, error), r runner.Runner, zfsBin string, log *slog.Logger) ([]string, error) {
	ids := map[string]bool{}
	if entries, err := os.ReadDir(stateParent); err == nil {
		for _, e := range entries {
			if id, ok := strings.CutPrefix(e.Name(), Prefix); ok && e.IsDir() && idRE.MatchString(id) {
				ids[id] = true
			}
		}
	}
	out, err := r.Run(ctx, runner.Cmd{Argv: []string{zfsBin, "list", "-H", "-o", "name", "-r", root}})
	if err == nil {
		for _, n := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			rest, ok := strings.CutPrefix(n, root+"/"+Prefix)
			if ok && idRE.MatchString(rest) {
				ids[rest] = true
			}
		}
	}
	var cleaned []string
	var errs []error
	for id := range ids {
		if held(stateParent, id) {
			continue
		}
		stateDir := filepath.Join(stateParent, Prefix+id)
		driver, err := newDriver(stateDir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := Destroy(ctx, id, root+"/"+Prefix+id, stateDir, driver, r, zfsBin, log); err != nil {
			errs = append(errs, err)
			continue
		}
		os.Remove(LockPath(stateParent, id))
		log.Warn("removed the leftovers of an interrupted selftest", "dataset", root+"/"+Prefix+id)
		cleaned = append(cleaned, id)
	}
	return cleaned, errors.Join(errs...)
}

// NewID returns a fresh run ID: 8 hex digits.
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
