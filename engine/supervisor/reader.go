package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sys/unix"
)

// Reader is List for a caller that lists every second (the service, between
// passes): a status file whose stat (inode, size, modification and change
// time) is the one of the last reading is not read or decoded again.
// Supervisors replace the file by rename at every write, so any write gives
// a new inode. Alive is tested on the lock at every listing: a supervisor
// killed outright leaves its file unchanged.
type Reader struct {
	StateDir string

	mu      sync.Mutex
	seen    map[string]readerEntry
	decoded int // status files read and decoded, for tests
}

type readerEntry struct {
	sig    statSig
	status Status
}

// statSig is what tells two versions of a status file apart.
type statSig struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func sigOf(st *unix.Stat_t) statSig {
	return statSig{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

// List returns what supervisor.List returns.
func (r *Reader) List() ([]Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	entries, err := os.ReadDir(filepath.Join(r.StateDir, "containers"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			r.seen = nil
			return nil, nil
		}
		return nil, fmt.Errorf("list containers in %s: %w", r.StateDir, err)
	}
	next := make(map[string]readerEntry, len(entries))
	var out []Status
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		var st unix.Stat_t
		if err := unix.Stat(statusPath(r.StateDir, name), &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // a Start in progress, or a removal
			}
			return nil, fmt.Errorf("read status of container %s: %w", name, err)
		}
		ent, ok := r.seen[name]
		if !ok || ent.sig != sigOf(&st) {
			s, err := readStatus(r.StateDir, name)
			r.decoded++
			if errors.Is(err, ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			// A write between the stat and the read leaves this content
			// under the older signature: the next List reads again.
			ent = readerEntry{sig: sigOf(&st), status: s}
		}
		next[name] = ent
		s := ent.status
		if s.Alive, err = locked(r.StateDir, name); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	r.seen = next
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
