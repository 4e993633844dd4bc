//go:build linux

package linuxns

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseCgroupMounts(t *testing.T) {
	const mountinfo = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
25 22 0:23 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 /user.slice /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
28 25 0:26 / /sys/fs/cgroup/my\040pids rw,nosuid shared:12 - cgroup cgroup rw,pids
40 22 0:30 / /mnt/cgroup-lookalike rw shared:20 - tmpfs cgroupfs rw
41 22 0:31 / /mnt/a\040-\040cgroup rw shared:21 - ext4 /dev/vdb rw
`
	want := []cgroupMount{
		{point: "/sys/fs/cgroup/unified", root: "/", v2: true},
		{point: "/sys/fs/cgroup/cpu,cpuacct", root: "/user.slice", opts: []string{"rw", "cpu", "cpuacct"}},
		{point: "/sys/fs/cgroup/my pids", root: "/", opts: []string{"rw", "pids"}},
	}
	if got := parseCgroupMounts(strings.NewReader(mountinfo)); !reflect.DeepEqual(got, want) {
		t.Errorf("parseCgroupMounts = %+v, want %+v", got, want)
	}
}
