package zfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Holders names the processes whose root or working directory is at or
// below mountpoint ("pid 123 (zocker-reconcile __jail-init init)"): what keeps
// a leftover dataset busy. On Linux it reads /proc; a jail's init is
// chrooted into its dataset, so its root is the mountpoint.
func Holders(mountpoint string) []string {
	if mountpoint == "" || mountpoint == "-" || mountpoint == "none" {
		return nil
	}
	mp := filepath.Clean(mountpoint)
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		for _, link := range []string{"root", "cwd"} {
			p, err := os.Readlink(filepath.Join("/proc", e.Name(), link))
			if err != nil || (p != mp && !strings.HasPrefix(p, mp+"/")) {
				continue
			}
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			name := strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
			if len(name) > 60 {
				name = name[:57] + "..."
			}
			out = append(out, fmt.Sprintf("pid %d (%s)", pid, name))
			break
		}
	}
	return out
}
