package zfs

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

func TestWorkerGone(t *testing.T) {
	host, _ := os.Hostname()
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	dead := strconv.Itoa(cmd.Process.Pid) + "@" + host
	for _, c := range []struct {
		rec  string
		gone bool
	}{
		{worker(), false}, // this process
		{strconv.Itoa(os.Getppid()) + "@" + host, false}, // alive
		{dead, true},
		{strconv.Itoa(cmd.Process.Pid) + "@other-host", false},
		{"", false},
		{"garbage", false},
		{"-1@" + host, false},
	} {
		if got := workerGone(c.rec); got != c.gone {
			t.Errorf("workerGone(%q) = %v, want %v", c.rec, got, c.gone)
		}
	}
}
