package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// TestSecurityM7PumpDrainsAFullLog reproduces review M7 in-process: a log
// on /dev/full (every write fails with ENOSPC). Before the fix pump
// returned on the first failed write and the pipe's reader closed, so the
// command got EPIPE/SIGPIPE and died. Now every line is read, dropped and
// counted, and the writer never sees the pipe close.
func TestSecurityM7PumpDrainsAFullLog(t *testing.T) {
	w, err := openLog("/dev/full", 1<<20, 1)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer w.Close()
	var reports []int64
	w.onDrop = func(n int64, err error) {
		if err == nil || !errors.Is(err, syscall.ENOSPC) {
			t.Errorf("onDrop(%d, %v), want ENOSPC", n, err)
		}
		reports = append(reports, n)
	}
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	const lines = 5000 // far more than a pipe buffer holds
	wrote := make(chan error, 1)
	go func() {
		bw := bufio.NewWriter(pw)
		for i := 0; i < lines; i++ {
			if _, err := fmt.Fprintf(bw, "line %d\n", i); err != nil {
				wrote <- err
				return
			}
		}
		err := bw.Flush()
		pw.Close()
		wrote <- err
	}()
	if err := pump(r, w, "stdout", time.Now); err != nil {
		t.Fatalf("pump: %v", err)
	}
	r.Close()
	if err := <-wrote; err != nil {
		t.Fatalf("the command's writes failed: %v (the log stopped draining the pipe)", err)
	}
	if got := w.Dropped(); got != lines {
		t.Errorf("dropped %d lines, want %d", got, lines)
	}
	if len(reports) != lines || reports[len(reports)-1] != lines {
		t.Errorf("onDrop called %d times, last %v; want %d calls", len(reports), reports[len(reports)-1:], lines)
	}
}

// TestSecurityM7FullLogDiskKeepsTheContainer runs a real supervisor whose
// state directory (logs, status) is a 1 MiB tmpfs, fills that file system
// while the command prints, then frees it: the command is never killed or
// restarted, the lines printed while the disk was full are dropped and
// counted in the status, and the log resumes by itself.
func TestSecurityM7FullLogDiskKeepsTheContainer(t *testing.T) {
	testenv.RequireRoot(t)
	stateDir := t.TempDir()
	if err := unix.Mount("tmpfs", stateDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0700"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(stateDir, unix.MNT_DETACH) })
	// The command counts its lines in a file outside the full disk, so the
	// test can see it progress while its output is being dropped. Its lines
	// are 2 KB: the log's last partly filled page takes at most two.
	counter := filepath.Join(t.TempDir(), "counter")
	cfg := testConfig("/bin/sh", "-c", `pad=$(printf '%02000d' 0); i=0; while :; do i=$((i+1)); echo "tick $i $pad"; echo $i >"$CTR"; sleep 0.02; done`)
	cfg.Process.Env = append(cfg.Process.Env, "CTR="+counter)
	cfg.Log.MaxBytes = 64 << 20 // no rotation: the disk fills first

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid, err := Start(ctx, stateDir, cfg.Name, selfArgv(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { cleanupSupervisor(t, stateDir, cfg.Name, pid) })
	before := waitStatus(t, stateDir, cfg.Name, 10*time.Second, "running", func(s Status) bool {
		return s.State == StateRunning && s.PID > 0
	})
	waitCount(t, counter, 3)

	// Fill the file system to the last byte.
	filler := filepath.Join(stateDir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			break
		}
	}
	for {
		if _, err := f.Write(chunk[:1]); err != nil {
			break
		}
	}
	f.Close()
	full := readCount(t, counter)
	// At least 20 lines printed on the full disk.
	waitCount(t, counter, full+20)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := waitStatus(t, stateDir, cfg.Name, 10*time.Second, "dropped lines recorded after the disk was freed", func(s Status) bool {
		return s.LogDroppedLines >= 15 && !strings.Contains(s.Message, "dropped")
	})
	if after.State != StateRunning || after.PID != before.PID || after.Restarts != 0 {
		t.Errorf("after a full log disk: state %s pid %d (was %d) restarts %d; want the same command running",
			after.State, after.PID, before.PID, after.Restarts)
	}
	// The log goes on after the gap.
	resumed := readCount(t, counter)
	waitCount(t, counter, resumed+3)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(LogPath(stateDir, cfg.Name))
		if strings.Contains(string(b), fmt.Sprintf("tick %d 0000", resumed+1)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log did not resume after the disk was freed: it ends %q", lastN(string(b), 100))
		}
		time.Sleep(20 * time.Millisecond) // polling step under the deadline
	}
}

func readCount(t *testing.T, path string) int {
	t.Helper()
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// waitCount waits until the command's counter reaches n.
func waitCount(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for readCount(t, path) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the command's counter stayed at %d, want %d", readCount(t, path), n)
		}
		time.Sleep(10 * time.Millisecond) // polling step under the deadline
	}
}

func lastN(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Dropped returns how many lines were dropped since the writer was opened.
func (w *logWriter) Dropped() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}
