package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer lets a test read what a running command writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runLogsCmd(ctx context.Context, out *lockedBuffer, args ...string) error {
	root := newRootCmd()
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(append([]string{"logs"}, args...))
	return root.ExecuteContext(ctx)
}

func TestLogsCommand(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, "containers", "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var old, cur strings.Builder
	for i := 0; i < 4; i++ {
		fmt.Fprintf(&old, "2026-11-28T03:00:0%d.000000Z stdout old-%d\n", i, i)
	}
	for i := 0; i < 3; i++ {
		fmt.Fprintf(&cur, "2026-11-28T03:01:0%d.000000Z stdout cur-%d\n", i, i)
	}
	os.WriteFile(filepath.Join(dir, "log.1"), []byte(old.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "log"), []byte(cur.String()), 0o644)

	var out lockedBuffer
	if err := runLogsCmd(context.Background(), &out, "--state-dir", state, "--tail", "5", "web"); err != nil {
		t.Fatal(err)
	}
	want := strings.Join(strings.Split(old.String()+cur.String(), "\n")[2:], "\n")
	if out.String() != want {
		t.Errorf("logs --tail 5:\n%s\nwant\n%s", out.String(), want)
	}
	out = lockedBuffer{}
	if err := runLogsCmd(context.Background(), &out, "web", "--state-dir", state); err != nil {
		t.Fatal(err)
	}
	if out.String() != old.String()+cur.String() {
		t.Errorf("logs (all):\n%s", out.String())
	}
	out = lockedBuffer{}
	err := runLogsCmd(context.Background(), &out, "--state-dir", state, "nope")
	if err == nil || !strings.Contains(err.Error(), "logs of container nope: no such container in "+state) {
		t.Errorf("logs of a missing container: %v", err)
	}

	// -f prints the tail, then what is appended, until interrupted.
	out = lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runLogsCmd(ctx, &out, "--state-dir", state, "-f", "--tail", "1", "web") }()
	f, err := os.OpenFile(filepath.Join(dir, "log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tailF := "2026-11-28T03:01:02.000000Z stdout cur-2\n"
	wantF := tailF + "2026-11-28T03:02:00.000000Z stderr new\n"
	waitFor := func(want string) {
		deadline := time.Now().Add(5 * time.Second)
		for out.String() != want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // polling step under the deadline
		}
	}
	// Append only once the tail is printed: follow reads on from there.
	waitFor(tailF)
	f.WriteString("2026-11-28T03:02:00.000000Z stderr new\n")
	waitFor(wantF)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if out.String() != wantF {
		t.Errorf("logs -f --tail 1 = %q, want %q", out.String(), wantF)
	}
}
