package zfs

import (
	"context"
	"errors"
	"fmt"
	"github.com/zocker-reconcile/zocker-reconcile/image"
	"os/exec"
	"sort"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// Root properties that tie a root to the host processes using it.
const (
	// PropStateDir records the --state-dir of the last service or apply
	// that ran containers under the root: a command given another one
	// would see them as not running (F10 of the UX review).
	PropStateDir = "zocker:state-dir"
	// PropOwner names the service holding the root: "HOST PID ADDR".
	PropOwner = "zocker:owner"
)

// RootInfo is what CheckRoot learnt about an existing root.
type RootInfo struct {
	// Props are the root's own zocker:* properties.
	Props map[string]string
}

// MissingRootError says that the root dataset does not exist, with the
// dataset the user probably meant.
type MissingRootError struct {
	Root string
	// Parent is the dataset the root would be created in, and ParentExists
	// whether it exists (a root is created only in an existing parent).
	Parent       string
	ParentExists bool
	// Suggestion is an existing dataset whose name is close to Root.
	Suggestion string
}

func (e *MissingRootError) Error() string {
	msg := "root " + e.Root + " does not exist"
	if e.Suggestion != "" {
		msg += " (did you mean " + e.Suggestion + "?)"
	}
	return msg
}

// ErrZFSUnusable is returned (wrapped) when the zfs command is missing or is
// not one this program can drive.
var ErrZFSUnusable = errors.New("zfs is not usable")

// CheckRoot checks with one command that zfs works and that root exists,
// returning the root's own properties. A missing root is a
// *MissingRootError that names a close existing dataset, if any.
func CheckRoot(ctx context.Context, r runner.Runner, root string) (RootInfo, error) {
	root = strings.TrimSuffix(root, "/")
	if !datasetRe.MatchString(root) || strings.Contains(root, "@") {
		return RootInfo{}, fmt.Errorf("root %q: not a valid dataset name", root)
	}
	s := &Store{root: root, r: r}
	recs, err := s.get(ctx, "type,"+PropStateDir+","+PropOwner+","+PropManaged+","+PropKind, root, false)
	if err == nil {
		return RootInfo{Props: recs[root].ownOrNil()}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return RootInfo{}, usable(err)
	}
	e := &MissingRootError{Root: root}
	if i := strings.LastIndexByte(root, '/'); i > 0 {
		e.Parent = root[:i]
		_, perr := s.get(ctx, "type", e.Parent, false)
		e.ParentExists = perr == nil
	}
	e.Suggestion = s.closest(ctx, root)
	return RootInfo{}, e
}

// usable turns the errors of a missing or foreign zfs into one line.
func usable(err error) error {
	var ce *runner.CommandError
	if !errors.As(err, &ce) {
		return err
	}
	switch {
	case errors.Is(ce.Err, exec.ErrNotFound):
		return fmt.Errorf("%w: %s not found (on FreeBSD it is /sbin/zfs; on Linux install OpenZFS, or zfs-fuse with the adapter of internal/zfsfuse first on PATH)", ErrZFSUnusable, ce.Argv[0])
	case strings.Contains(strings.ToLower(ce.Stderr), "usage:"):
		return fmt.Errorf("%w: %s rejected %q (a zfs without -p, such as zfs-fuse without the adapter of internal/zfsfuse first on PATH?)", ErrZFSUnusable, ce.Argv[0], strings.Join(ce.Argv[1:], " "))
	case strings.Contains(ce.Stderr, "ermission denied") || strings.Contains(ce.Stderr, "must be root"):
		return fmt.Errorf("%w: %s: permission denied: zocker-reconcile must run as root", ErrZFSUnusable, ce.Argv[0])
	}
	return err
}

// closest returns the existing dataset nearest to root by name: a sibling
// under the deepest existing ancestor, or a pool when the pool is missing.
// It returns "" when nothing is close enough to be a typo.
func (s *Store) closest(ctx context.Context, root string) string {
	parts := strings.Split(root, "/")
	var names []string
	// The deepest existing ancestor, then its descendants as deep as root.
	for depth := len(parts) - 1; depth >= 1; depth-- {
		anc := strings.Join(parts[:depth], "/")
		out, err := s.r.Run(ctx, runner.Cmd{Argv: []string{Bin(), "get", "-H", "-r", "-d", fmt.Sprint(len(parts) - depth), "-o", "name", "type", anc}, Timeout: CommandTimeout})
		if err != nil {
			continue
		}
		for _, n := range strings.Fields(string(out)) {
			if strings.Count(n, "/") == len(parts)-1 && !strings.Contains(n, "@") {
				names = append(names, n)
			}
		}
		break
	}
	if len(names) == 0 {
		// The pool itself is missing: compare with the pools.
		out, err := s.r.Run(ctx, runner.Cmd{Argv: []string{zpoolBin(), "list", "-H", "-o", "name"}, Timeout: CommandTimeout})
		if err != nil {
			return ""
		}
		rest := strings.Join(parts[1:], "/")
		for _, p := range strings.Fields(string(out)) {
			if rest != "" {
				p += "/" + rest
			}
			names = append(names, p)
		}
	}
	sort.Strings(names)
	best, bestD := "", 0
	for _, n := range names {
		d := image.EditDistance(n, root)
		if n != root && (best == "" || d < bestD) {
			best, bestD = n, d
		}
	}
	// A typo, not any other dataset: at most a third of the last
	// component's letters changed, and at least 1 allowed.
	last := parts[len(parts)-1]
	if best == "" || bestD > max(1, len(last)/3) {
		return ""
	}
	return best
}

func zpoolBin() string {
	if Bin() == "zfs" {
		return "zpool"
	}
	return "/sbin/zpool"
}

// SetRootProp sets one of the root's zocker:* properties (PropStateDir,
// PropOwner).
func (s *Store) SetRootProp(ctx context.Context, key, value string) error {
	return s.setProp(ctx, s.root, key, value)
}

// ClearRootProp removes one of the root's zocker:* properties.
func (s *Store) ClearRootProp(ctx context.Context, key string) error {
	return s.inheritProp(ctx, s.root, key)
}
