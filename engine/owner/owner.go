// Package owner keeps one writer per root: the service (or an apply) holds an
// exclusive lock file in its state directory and names itself in the root's
// zocker:owner property, so that a second service or an apply on the same
// root refuses to act, whichever state directory it was given. It also ties
// a state directory to its root (zocker:state-dir and STATE/root), so that a
// command given the wrong one fails instead of reading running containers as
// stopped.
package owner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Property names on the root (the same as engine/zfs's PropOwner and
// PropStateDir; repeated here so that this package needs no ZFS).
const (
	propOwner    = "zocker:owner"
	propStateDir = "zocker:state-dir"
)

// lockFile and rootFile live in the state directory.
const (
	lockFile = "owner.lock"
	rootFile = "root"
)

// Holder is a process that holds a root.
type Holder struct {
	Host string
	PID  int
	// What is "serve" or "apply"; Addr is serve's --listen address.
	What string
	Addr string
}

// String is the property and lock file form: "HOST PID WHAT [ADDR]".
func (h Holder) String() string {
	return strings.TrimSpace(fmt.Sprintf("%s %d %s %s", h.Host, h.PID, h.What, h.Addr))
}

// Describe says who the holder is, for people.
func (h Holder) Describe() string {
	s := fmt.Sprintf("zocker-reconcile %s (pid %d on %s", h.What, h.PID, h.Host)
	if h.Addr != "" {
		s += ", listening on " + h.Addr
	}
	return s + ")"
}

func parseHolder(s string) (Holder, bool) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return Holder{}, false
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		return Holder{}, false
	}
	h := Holder{Host: f[0], PID: pid, What: f[2]}
	if len(f) > 3 {
		h.Addr = f[3]
	}
	return h, true
}

// HeldError says that another process holds the root.
type HeldError struct {
	Root   string
	Holder Holder
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("root %s is held by %s", e.Root, e.Holder.Describe())
}

// Props is what the lock needs of the store: the root's own properties.
type Props interface {
	SetRootProp(ctx context.Context, key, value string) error
	ClearRootProp(ctx context.Context, key string) error
}

// Lock is a held root.
type Lock struct {
	f     *os.File
	me    Holder
	root  string
	props Props
}

// Self returns the holder record of this process.
func Self(what, addr string) Holder {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	return Holder{Host: host, PID: os.Getpid(), What: what, Addr: addr}
}

// Acquire takes root for me: the lock file in stateDir first (exclusive,
// never waiting), then the root's zocker:owner property, which catches a
// holder using another state directory. rootProps are the root's properties
// as read just before. A recorded holder that is gone (same host, no such
// process) is taken over.
func Acquire(ctx context.Context, stateDir, root string, rootProps map[string]string, props Props, me Holder) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("lock root %s: state directory: %w", root, err)
	}
	f, err := os.OpenFile(filepath.Join(stateDir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock root %s: %w", root, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(f.Name())
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h, ok := parseHolder(string(b))
			if !ok {
				h = Holder{Host: "this host", What: "process", PID: -1}
			}
			return nil, &HeldError{Root: root, Holder: h}
		}
		return nil, fmt.Errorf("lock root %s: %w", root, err)
	}
	if h, ok := parseHolder(rootProps[propOwner]); ok && h.PID != me.PID && Alive(h, me.Host) {
		f.Close()
		return nil, &HeldError{Root: root, Holder: h}
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(me.String()+"\n"), 0)
	}
	if err := props.SetRootProp(ctx, propOwner, me.String()); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock root %s: %w", root, err)
	}
	return &Lock{f: f, me: me, root: root, props: props}, nil
}

// Alive reports whether the holder may still run: a process of this host
// that exists, or any process of another host (which cannot be checked).
func Alive(h Holder, host string) bool {
	if h.Host != host {
		return true
	}
	err := syscall.Kill(h.PID, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Release gives the root up: the property first, then the lock file.
func (l *Lock) Release(ctx context.Context) error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.props.ClearRootProp(ctx, propOwner)
	l.f.Truncate(0)
	l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock root %s: %w", l.root, err)
	}
	return nil
}

// MismatchError says that a state directory and a root do not belong
// together.
type MismatchError struct{ msg string }

func (e *MismatchError) Error() string { return e.msg }

// CheckStateDir refuses a state directory that belongs to another root, and
// a root whose containers run with another state directory that still
// exists: either way the command would see running containers as stopped.
func CheckStateDir(stateDir, root string, rootProps map[string]string) error {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(abs, rootFile)); err == nil {
		if got := strings.TrimSpace(string(b)); got != "" && got != root {
			return &MismatchError{fmt.Sprintf("state directory %s belongs to root %s, not %s: give the --state-dir (or ZOCKER_STATE_DIR) that root %s's service uses", abs, got, root, root)}
		}
	}
	rec := rootProps[propStateDir]
	if rec == "" || rec == abs {
		return nil
	}
	// The recorded one counts only while it exists and still belongs to
	// this root (a reboot empties /var/run; a test removes its temp dir).
	if b, err := os.ReadFile(filepath.Join(rec, rootFile)); err == nil && strings.TrimSpace(string(b)) == root {
		return &MismatchError{fmt.Sprintf("containers under root %s run with state directory %s, not %s: give --state-dir %s (or ZOCKER_STATE_DIR)", root, rec, abs, rec)}
	}
	return nil
}

// BindStateDir records that stateDir belongs to root, in both places, for
// the commands that start containers (serve, apply, init).
func BindStateDir(ctx context.Context, stateDir, root string, rootProps map[string]string, props Props) error {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(abs, rootFile)); err != nil || strings.TrimSpace(string(b)) != root {
		if err := os.WriteFile(filepath.Join(abs, rootFile), []byte(root+"\n"), 0o640); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	if rootProps[propStateDir] != abs {
		if err := props.SetRootProp(ctx, propStateDir, abs); err != nil {
			return err
		}
	}
	return nil
}
