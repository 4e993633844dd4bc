package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
)

func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	writeLines(t, path+".2", "a1", "a2")
	writeLines(t, path+".1", "b1", "b2", "b3")
	writeLines(t, path, "c1", "c2")
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{1, []string{"c2"}},
		{2, []string{"c1", "c2"}},
		{5, []string{"b1", "b2", "b3", "c1", "c2"}},
		{0, []string{"a1", "a2", "b1", "b2", "b3", "c1", "c2"}},
		{100, []string{"a1", "a2", "b1", "b2", "b3", "c1", "c2"}},
	} {
		got, err := Tail(path, tc.n)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Tail(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}

	// A line being written (no newline yet) is not returned.
	if err := os.WriteFile(path, []byte("c1\nc2\nhalf"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := Tail(path, 1); !reflect.DeepEqual(got, []string{"c2"}) {
		t.Errorf("Tail with a partial line = %q", got)
	}
	if _, err := Tail(filepath.Join(dir, "nope"), 5); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tail of a missing log = %v, want ErrNotFound", err)
	}
}

func TestTailReadsBackAcrossBlocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	var lines []string
	for i := 0; i < 20000; i++ {
		lines = append(lines, fmt.Sprintf("line %05d %s", i, strings.Repeat("x", i%50)))
	}
	writeLines(t, path, lines...)
	got, err := Tail(path, 3000)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, lines[len(lines)-3000:]) {
		t.Errorf("Tail(3000) over %d blocks differs: first %q", 20000*60/(32<<10), got[0])
	}
}

func TestLogWriterRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := openLog(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 40; i++ {
		if err := w.writeLine([]byte(fmt.Sprintf("line-%02d------------\n", i))); err != nil { // 20 bytes
			t.Fatal(err)
		}
	}
	// 5 lines per file: log has 35..39, log.1 30..34, log.2 25..29; no log.3.
	for i, first := range []int{35, 30, 25} {
		b, err := os.ReadFile(rotatedPath(path, i))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 100 || !bytes.HasPrefix(b, []byte(fmt.Sprintf("line-%02d", first))) {
			t.Errorf("%s = %q", rotatedPath(path, i), b)
		}
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log.3: %v", err)
	}
	// Reopening continues the current file's size count.
	w.Close()
	w2, err := openLog(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if err := w2.writeLine([]byte("next\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "next\n" {
		t.Errorf("after reopen at the cap, log = %q, want a rotation first", b)
	}
}

func TestPumpSplitsAndStamps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := openLog(path, 1<<30, 1)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("y", maxLine+10)
	in := strings.NewReader("one\n\n" + long + "\nlast-without-newline")
	at := time.Date(2026, 11, 28, 3, 4, 5, 123456000, time.UTC)
	if err := pump(in, w, "stderr", func() time.Time { return at }); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, err := Tail(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	const stamp = "2026-11-28T03:04:05.123456Z stderr "
	want := []string{stamp + "one", stamp, stamp + long[:maxLine], stamp + long[maxLine:], stamp + "last-without-newline"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pump wrote %d lines %.200q", len(got), got)
	}
}

// TestPumpLongLines: with its small read buffer, pump splits lines exactly
// where a read buffer of maxLine did (every maxLine bytes), whatever sizes
// the reads come in.
func TestPumpLongLines(t *testing.T) {
	var in strings.Builder
	for _, n := range []int{pumpBuffer - 1, pumpBuffer, pumpBuffer + 1, maxLine - 1, maxLine, maxLine + 1, 2*maxLine + pumpBuffer/2, 3} {
		in.WriteString(strings.Repeat(string(rune('a'+n%26)), n) + "\n")
	}
	in.WriteString(strings.Repeat("z", maxLine+5)) // and no newline at the end
	var want []string
	br := bufio.NewReaderSize(strings.NewReader(in.String()), maxLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			want = append(want, string(bytes.TrimSuffix(line, []byte("\n"))))
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			break
		}
	}
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(in.String()),
		"one byte": iotest.OneByteReader(strings.NewReader(in.String())),
		"halves":   iotest.HalfReader(strings.NewReader(in.String())),
	} {
		w, err := openLog(filepath.Join(t.TempDir(), "log"), 1<<30, 1)
		if err != nil {
			t.Fatal(err)
		}
		if err := pump(r, w, "stdout", func() time.Time { return time.Time{} }); err != nil {
			t.Fatal(err)
		}
		w.Close()
		got, err := Tail(w.path, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			got[i] = strings.TrimPrefix(got[i], "0001-01-01T00:00:00.000000Z stdout ")
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: pump wrote %d lines of lengths %v, want %d of %v", name, len(got), lengths(got), len(want), lengths(want))
		}
	}
}

func lengths(lines []string) []int {
	var n []int
	for _, l := range lines {
		n = append(n, len(l))
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	w, err := openLog(path, 60, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 3; i++ {
		w.writeLine([]byte(fmt.Sprintf("old-%d\n", i)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- follow(ctx, path, 2, &out, 10*time.Millisecond) }()

	want := "old-1\nold-2\n"
	waitOutput(t, &out, want)
	for i := 0; i < 30; i++ { // 30 lines of 10 bytes: several rotations
		line := fmt.Sprintf("new-%05d\n", i)
		if err := w.writeLine([]byte(line)); err != nil {
			t.Fatal(err)
		}
		want += line
		time.Sleep(3 * time.Millisecond)
	}
	waitOutput(t, &out, want)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestFollowWaitsForTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	waiting := make(chan struct{}, 1)
	logMissing = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { logMissing = nil })
	go func() { _ = follow(ctx, path, -1, &out, 10*time.Millisecond) }()
	select { // follow found no log and waits for it
	case <-waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not look for the log")
	}
	writeLines(t, path, "first")
	waitOutput(t, &out, "first\n")
}

func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if out.String() == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("followed output = %q, want %q", out.String(), want)
}

func TestConfigJSONAndDefaults(t *testing.T) {
	cfg := testConfig("/bin/true")
	cfg.Healthcheck = &Healthcheck{Argv: []string{"/bin/true"}}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"stopTimeout":"1s"`) {
		t.Errorf("durations are not readable text: %s", b)
	}
	var back Config
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Errorf("round trip: %+v != %+v", back, cfg)
	}
	d := Config{Name: "x", Process: cfg.Process, Healthcheck: &Healthcheck{Argv: []string{"true"}}}.withDefaults()
	if d.RestartPolicy != RestartAlways || d.StopTimeout.D() != 10*time.Second || d.Log.MaxBytes != 10<<20 || d.Log.Keep != 3 ||
		d.Backoff.Initial.D() != time.Second || d.Backoff.Max.D() != 5*time.Minute || d.Backoff.Reset.D() != 10*time.Minute ||
		d.Healthcheck.Interval.D() != 30*time.Second || d.Healthcheck.Timeout.D() != 5*time.Second || d.Healthcheck.Retries != 3 {
		t.Errorf("defaults: %+v %+v", d, d.Healthcheck)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Name = "../x" }, `container name "../x" is not a valid name`},
		{func(c *Config) { c.Process.Argv = nil }, "container c1: empty command"},
		{func(c *Config) { c.RestartPolicy = "Sometimes" }, `container c1: restart policy "Sometimes": want Always, OnFailure or Never`},
		{func(c *Config) { c.StopSignal = "SIGFOO" }, `container c1: stop signal "SIGFOO": unknown signal`},
		{func(c *Config) { c.Healthcheck = &Healthcheck{} }, "container c1: empty health check command"},
	} {
		cfg := testConfig("/bin/true")
		tc.mod(&cfg)
		if err := cfg.Validate(); err == nil || err.Error() != tc.want {
			t.Errorf("Validate = %v, want %q", err, tc.want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"": syscall.SIGTERM, "SIGTERM": syscall.SIGTERM, "int": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
		"9": syscall.SIGKILL, "USR1": syscall.SIGUSR1,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "200", "9x"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
		}
	}
}

// limitsDriver is a driver that reports whether it can enforce limits.
type limitsDriver struct {
	hostDriver
	enforced bool
	why      string
}

func (d limitsDriver) LimitsEnforced() (bool, string) { return d.enforced, d.why }

func TestLimitsWarning(t *testing.T) {
	lim := jail.Limits{MemoryBytes: 1 << 20}
	for _, tc := range []struct {
		driver jail.Driver
		lim    jail.Limits
		want   string
	}{
		{limitsDriver{why: "no cgroup controller for memory"}, lim, "limits not enforced: no cgroup controller for memory"},
		{limitsDriver{why: "limits not enforced: kern.racct.enable is 0"}, lim, "limits not enforced: kern.racct.enable is 0"},
		{limitsDriver{why: "no cgroup controller for memory"}, jail.Limits{}, ""},
		{limitsDriver{enforced: true}, lim, ""},
		{hostDriver{}, lim, ""},
	} {
		if got := limitsWarning(tc.driver, tc.lim); got != tc.want {
			t.Errorf("limitsWarning(%T %+v) = %q, want %q", tc.driver, tc.lim, got, tc.want)
		}
	}
}
