package supervisor

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReaderMatchesList: the cached Reader returns what List returns after
// every change (a new status written, the supervisor's lock taken and
// dropped, a container removed, a status file not written yet), and reads
// an unchanged status file once.
func TestReaderMatchesList(t *testing.T) {
	state := t.TempDir()
	put := func(s Status) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(state, "containers", s.Name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := writeStatus(state, &s); err != nil {
			t.Fatal(err)
		}
	}
	r := &Reader{StateDir: state}
	same := func(step string) []Status {
		t.Helper()
		want, err := List(state)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.List()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Reader %+v\nList %+v", step, got, want)
		}
		return got
	}
	if got := same("no containers directory"); len(got) != 0 {
		t.Fatalf("listed %v", got)
	}
	put(Status{Name: "a", State: StateRunning, PID: 10})
	put(Status{Name: "b", State: StateBackoff, Restarts: 3})
	if err := os.MkdirAll(filepath.Join(state, "containers", "starting"), 0o755); err != nil {
		t.Fatal(err)
	}
	same("two containers and one without a status yet")

	// Unchanged files are not read again.
	before := r.decoded
	same("nothing changed")
	if r.decoded != before {
		t.Fatalf("%d status files decoded again, none changed", r.decoded-before)
	}

	// A real write (the supervisors' rename) is read at once.
	put(Status{Name: "a", State: StateRunning, PID: 11})
	before = r.decoded
	if got := same("a restarted"); got[0].PID != 11 {
		t.Fatalf("a after a write: %+v", got[0])
	}
	if r.decoded != before+1 {
		t.Fatalf("%d status files decoded after one write", r.decoded-before)
	}

	// Alive follows the lock at every listing, the file unchanged.
	lock, err := os.OpenFile(lockPath(state, "b"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if got := same("b's supervisor holds its lock"); !got[1].Alive {
		t.Fatalf("b: %+v", got[1])
	}
	lock.Close()
	if got := same("b's supervisor gone"); got[1].Alive {
		t.Fatalf("b: %+v", got[1])
	}

	if err := os.RemoveAll(filepath.Join(state, "containers", "a")); err != nil {
		t.Fatal(err)
	}
	if got := same("a removed"); len(got) != 1 || got[0].Name != "b" {
		t.Fatalf("listed %+v", got)
	}
}

// BenchmarkList200 is one reading of 200 unchanged supervisors' reports,
// what the service does every second between passes: List decodes every
// file, Reader only stats it (and tests the lock, as List does).
func BenchmarkList200(b *testing.B) {
	state := b.TempDir()
	for i := range 200 {
		s := Status{Name: "c" + string(rune('a'+i/26)) + string(rune('a'+i%26)), State: StateRunning, PID: 100 + i}
		if err := os.MkdirAll(filepath.Join(state, "containers", s.Name), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := writeStatus(state, &s); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("List", func(b *testing.B) {
		for b.Loop() {
			if _, err := List(state); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Reader", func(b *testing.B) {
		r := &Reader{StateDir: state}
		for b.Loop() {
			if _, err := r.List(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCloseInheritedKeepsTheReadyPipe: the main binary closes what it
// inherited before its hidden supervise command runs; the ready descriptor
// Start passes (readyEnv) must survive that, and closing it is what wakes
// Start.
func TestCloseInheritedKeepsTheReadyPipe(t *testing.T) {
	// Raw descriptors as a starter leaves them (inheritable), so that no
	// *os.File of the test closes a number CloseInherited already closed.
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(p[0]), "ready-read")
	defer r.Close()
	stray, err := unix.Open(os.DevNull, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(readyEnv, strconv.Itoa(p[1]))
	CloseInherited()
	if _, err := unix.FcntlInt(uintptr(stray), unix.F_GETFD, 0); err == nil {
		unix.Close(stray)
		t.Errorf("an inherited descriptor (%d) stayed open", stray)
	}
	ready := takeReady()
	if ready == nil || int(ready.Fd()) != p[1] {
		t.Fatalf("takeReady = %v, want fd %d", ready, p[1])
	}
	if flags, err := unix.FcntlInt(ready.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("ready descriptor: flags %d, %v; want close-on-exec", flags, err)
	}
	if _, ok := os.LookupEnv(readyEnv); ok {
		t.Errorf("%s left in the environment for the jail's processes", readyEnv)
	}
	ready.Close()
	if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("read after the supervisor closed its end: %d, %v; want EOF", n, err)
	}
}
