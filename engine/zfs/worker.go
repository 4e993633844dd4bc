package zfs

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// PropWorker records on a work dataset in ROOT/tmp which process makes it:
// PID@HOSTNAME. A shared open (apply, import, pull by hand) removes work
// whose process no longer exists on this host, so that a killed import or
// pull leaves no orphan; the service's own start removes all of ROOT/tmp.
const PropWorker = "zocker:worker"

func worker() string {
	host, _ := os.Hostname()
	return strconv.Itoa(os.Getpid()) + "@" + host
}

// workerGone says whether the process that made a work dataset is gone. An
// unreadable record, another host, or a pid that exists (even reused by
// another program) count as alive: when in doubt, work is left for the
// service's sweep.
func workerGone(rec string) bool {
	pidText, host, ok := strings.Cut(rec, "@")
	me, _ := os.Hostname()
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || host != me || pid == os.Getpid() {
		return false
	}
	err = syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
