//go:build linux

package linuxns

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

// cgroupParent is the cgroup, below the creating process's own, that holds
// the per-container cgroups (zocker/NAME). Nesting under our own cgroup
// keeps the containers accounted to the service that runs them (as with a
// delegated systemd unit) instead of escaping to the hierarchy's root.
const cgroupParent = "zocker"

// controller is one resource controller on this host.
type controller struct {
	name string
	// dir is the cgroup directory of this process in a hierarchy that has
	// the controller; "" when the host has none.
	dir string
	v2  bool
}

// cgroupHost is what detectCgroups found: memory, cpu and pids controllers.
type cgroupHost struct {
	ctrls []controller
}

var limitControllers = []string{"memory", "cpu", "pids"}

// detectCgroups finds, for each limit controller, a v1 hierarchy that has
// it or else the v2 (unified) hierarchy when that one offers it.
func detectCgroups() cgroupHost {
	var h cgroupHost
	own := ownCgroups()
	mounts := cgroupMounts()
	for _, name := range limitControllers {
		c := controller{name: name}
		for _, m := range mounts {
			if m.v2 {
				continue
			}
			if hasWord(m.opts, name) {
				for key, p := range own {
					if hasWord(strings.Split(key, ","), name) {
						c.dir = filepath.Join(m.point, strings.TrimPrefix(p, m.root))
					}
				}
				break
			}
		}
		if c.dir == "" {
			for _, m := range mounts {
				if !m.v2 {
					continue
				}
				b, err := os.ReadFile(filepath.Join(m.point, "cgroup.controllers"))
				if err == nil && hasWord(strings.Fields(string(b)), name) {
					if p, ok := own[""]; ok {
						c.dir, c.v2 = filepath.Join(m.point, strings.TrimPrefix(p, m.root)), true
					}
				}
				break
			}
		}
		h.ctrls = append(h.ctrls, c)
	}
	return h
}

func hasWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

type cgroupMount struct {
	point, root string
	opts        []string
	v2          bool
}

// cgroupMounts reads the cgroup mounts from /proc/self/mountinfo.
func cgroupMounts() []cgroupMount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	return parseCgroupMounts(f)
}

// parseCgroupMounts returns the cgroup mounts of a mountinfo file. Only
// their lines become strings: every supervisor reads the host's mount
// table once, and in one that never needs a collection (issue 15) what it
// allocates for the other mounts, hundreds on a busy host, would stay
// resident for the container's life.
func parseCgroupMounts(r io.Reader) []cgroupMount {
	var out []cgroupMount
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// Fields escape their spaces (\040): " - " only separates.
		if !bytes.Contains(sc.Bytes(), []byte(" - cgroup")) {
			continue
		}
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		a, b := strings.Fields(pre), strings.Fields(post)
		if len(a) < 5 || len(b) < 3 {
			continue
		}
		switch b[0] {
		case "cgroup2":
			out = append(out, cgroupMount{point: unescapeMount(a[4]), root: a[3], v2: true})
		case "cgroup":
			out = append(out, cgroupMount{point: unescapeMount(a[4]), root: a[3], opts: strings.Split(b[2], ",")})
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups maps the controllers field of /proc/self/cgroup ("memory",
// "cpu,cpuacct", "" for v2) to this process's cgroup path.
func ownCgroups() map[string]string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out
}

// enforced says whether every limit controller is available.
func (h cgroupHost) enforced() (bool, string) {
	var missing []string
	for _, c := range h.ctrls {
		if c.dir == "" {
			missing = append(missing, c.name)
		}
	}
	if len(missing) > 0 {
		return false, "no cgroup controller for " + strings.Join(missing, ", ")
	}
	return true, ""
}

// create makes the container's cgroups (PARENT/zocker/NAME in each
// hierarchy that has a limit controller) and writes its limits. It returns
// the directories made, and the limits that could not be set because the
// controller is not delegated there (a cgroup v2 host whose service cgroup
// does not hand it down); on error it removes the directories.
func (h cgroupHost) create(name string, lim jail.Limits) (dirs, unenforced []string, err error) {
	defer func() {
		if err != nil {
			removeCgroups(dirs, nil)
			dirs = nil
		}
	}()
	seen := map[string]bool{}
	for _, c := range h.ctrls {
		if c.dir == "" {
			continue
		}
		dir := filepath.Join(c.dir, cgroupParent, name)
		if !seen[dir] {
			if c.v2 {
				// v2 delegates a controller to children only when every
				// ancestor enables it in cgroup.subtree_control.
				for _, d := range []string{c.dir, filepath.Join(c.dir, cgroupParent)} {
					if err := os.MkdirAll(d, 0o755); err != nil {
						return dirs, nil, fmt.Errorf("cgroup %s: %w", d, err)
					}
					_ = os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+"+c.name), 0o644)
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return dirs, nil, fmt.Errorf("cgroup %s: %w", dir, err)
			}
			seen[dir] = true
			dirs = append(dirs, dir)
		}
		if err := writeLimit(dir, c, lim); errors.Is(err, os.ErrNotExist) {
			unenforced = append(unenforced, c.name)
		} else if err != nil {
			return dirs, nil, err
		}
	}
	return dirs, unenforced, nil
}

func writeLimit(dir string, c controller, lim jail.Limits) error {
	var file, value string
	switch {
	case c.name == "memory" && lim.MemoryBytes > 0:
		file, value = "memory.limit_in_bytes", strconv.FormatInt(lim.MemoryBytes, 10)
		if c.v2 {
			file = "memory.max"
		}
	case c.name == "pids" && lim.MaxProcesses > 0:
		file, value = "pids.max", strconv.Itoa(lim.MaxProcesses)
	case c.name == "cpu" && lim.CPUPercent > 0:
		// Percent of one CPU over a 100 ms period, as rctl's pcpu.
		quota := strconv.Itoa(lim.CPUPercent * 1000)
		if c.v2 {
			file, value = "cpu.max", quota+" 100000"
		} else {
			if err := os.WriteFile(filepath.Join(dir, "cpu.cfs_period_us"), []byte("100000"), 0o644); err != nil {
				return fmt.Errorf("cgroup %s: set cpu.cfs_period_us: %w", dir, err)
			}
			file, value = "cpu.cfs_quota_us", quota
		}
	default:
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0o644); err != nil {
		return fmt.Errorf("cgroup %s: set %s to %s: %w", dir, file, value, err)
	}
	return nil
}

// joinCgroups moves process pid into each cgroup directory.
func joinCgroups(dirs []string, pid int) error {
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// removeCgroups kills what is still in the cgroups (exec shims of the jail,
// which live outside its pid namespace) and removes the directories,
// retrying while the kernel still counts dying processes.
func removeCgroups(dirs []string, log *slog.Logger) {
	for _, d := range dirs {
		var err error
		for i := 0; i < 500; i++ {
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			if b, rerr := os.ReadFile(filepath.Join(d, "cgroup.procs")); rerr == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, perr := strconv.Atoi(f); perr == nil && pid > 0 {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil && log != nil {
			log.Warn("remove cgroup", "dataset", d, "err", err)
		}
	}
}
