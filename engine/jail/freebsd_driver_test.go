//go:build linux || freebsd

package jail

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// bsdRecorder is a runner that records every argv and answers from a script
// keyed by the command's first two words.
type bsdRecorder struct {
	mu    sync.Mutex
	calls []string
	out   map[string]string
	fail  map[string]*runner.CommandError
}

func (r *bsdRecorder) Run(_ context.Context, c runner.Cmd) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := strings.Join(c.Argv, " ")
	r.calls = append(r.calls, line)
	key := c.Argv[0]
	if len(c.Argv) > 1 {
		key += " " + c.Argv[1]
	}
	for _, k := range []string{line, key} {
		if e, ok := r.fail[k]; ok {
			ce := *e
			ce.Argv = c.Argv
			return nil, &ce
		}
		if o, ok := r.out[k]; ok {
			return []byte(o), nil
		}
	}
	return nil, nil
}

func newFreeBSDTestDriver(t *testing.T, racct string) (*FreeBSD, *bsdRecorder, Spec) {
	t.Helper()
	host, root, vol := t.TempDir(), t.TempDir(), t.TempDir()
	resolv := filepath.Join(host, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &bsdRecorder{out: map[string]string{"/sbin/sysctl -n": racct}, fail: map[string]*runner.CommandError{
		// What rctl -r says when no rule matches (the kernel's ESRCH).
		"/usr/bin/rctl -r": {Stderr: "rctl: failed to remove rule 'jail:web': No such process", ExitCode: 1},
	}}
	d := NewFreeBSD(filepath.Join(t.TempDir(), "state"), rec, nil, FreeBSDOptions{HostFiles: []string{resolv}})
	s := Spec{
		Name: "web", Root: root,
		Network: Network{Mode: NetLoopback, Addresses: []string{"127.0.1.2"}},
		Mounts:  []Mount{{Source: vol, Target: "/var/log/httpd"}},
		Limits:  Limits{MemoryBytes: 1 << 20, MaxProcesses: 10},
	}
	return d, rec, s
}

func TestFreeBSDDriverCreateWithLimits(t *testing.T) {
	d, rec, s := newFreeBSDTestDriver(t, "1\n")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	conf := d.confPath("web")
	want := []string{
		"/usr/sbin/jail -f " + conf + " -c web",
		"/sbin/sysctl -n kern.racct.enable",
		"/usr/bin/rctl -r jail:web",
		"/usr/bin/rctl -a jail:web:memoryuse:deny=1048576 jail:web:maxproc:deny=10",
	}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(rec.calls, "\n"), strings.Join(want, "\n"))
	}
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "mount.fstab = '"+d.fstabPath("web")+"';") {
		t.Errorf("conf does not point at the fstab:\n%s", data)
	}
	fstab, err := os.ReadFile(d.fstabPath("web"))
	if err != nil || !strings.Contains(string(fstab), filepath.Join(s.Root, "var/log/httpd")+"\tnullfs\trw") {
		t.Errorf("fstab: %q, %v", fstab, err)
	}
	if fi, err := os.Stat(filepath.Join(s.Root, "var/log/httpd")); err != nil || !fi.IsDir() {
		t.Errorf("mount point not created: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.Root, d.opts.HostFiles[0])); err != nil || string(b) != "nameserver 192.0.2.1\n" {
		t.Errorf("host file not copied: %q, %v", b, err)
	}
	if enforced, ok := d.JailLimitsEnforced("web"); !enforced || !ok {
		t.Errorf("JailLimitsEnforced = %v, %v", enforced, ok)
	}
}

func TestFreeBSDDriverCreateRacctOff(t *testing.T) {
	d, rec, s := newFreeBSDTestDriver(t, "0\n")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, RctlPath) {
			t.Errorf("rctl run although racct is off: %s", c)
		}
	}
	if enforced, ok := d.JailLimitsEnforced("web"); enforced || !ok {
		t.Errorf("JailLimitsEnforced = %v, %v; want false, true", enforced, ok)
	}
	if on, why := d.LimitsEnforced(); on || !strings.Contains(why, "kern.racct.enable is 0") {
		t.Errorf("LimitsEnforced = %v, %q", on, why)
	}
}

func TestFreeBSDDriverCreateUndo(t *testing.T) {
	t.Run("rctl fails", func(t *testing.T) {
		d, rec, s := newFreeBSDTestDriver(t, "1\n")
		delete(rec.fail, "/usr/bin/rctl -r")
		rec.fail["/usr/bin/rctl -a"] = &runner.CommandError{Stderr: "rctl: failed to add rule", ExitCode: 1}
		err := d.Create(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), "set rctl limits of jail web") {
			t.Fatalf("got %v", err)
		}
		conf := d.confPath("web")
		tail := rec.calls[len(rec.calls)-2:]
		if want := []string{"/usr/bin/rctl -r jail:web", "/usr/sbin/jail -f " + conf + " -r web"}; !reflect.DeepEqual(tail, want) {
			t.Errorf("undo commands %q, want %q", tail, want)
		}
		assertNoBSDFiles(t, d)
	})
	t.Run("jail -c fails", func(t *testing.T) {
		d, rec, s := newFreeBSDTestDriver(t, "1\n")
		rec.fail["/usr/sbin/jail -f"] = &runner.CommandError{Stderr: "jail: web: mount.fstab: nullfs: No such file", ExitCode: 1}
		if err := d.Create(context.Background(), s); err == nil || !strings.Contains(err.Error(), "create jail web") {
			t.Fatalf("got %v", err)
		}
		if len(rec.calls) != 1 {
			t.Errorf("commands after a failed jail -c: %q", rec.calls)
		}
		assertNoBSDFiles(t, d)
	})
	t.Run("already running", func(t *testing.T) {
		d, rec, s := newFreeBSDTestDriver(t, "1\n")
		if err := d.Create(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(d.confPath("web"))
		rec.calls = nil
		s.Hostname = "changed"
		err := d.Create(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("got %v", err)
		}
		if want := []string{"/usr/sbin/jls -j web jid"}; !reflect.DeepEqual(rec.calls, want) {
			t.Errorf("commands %q, want %q", rec.calls, want)
		}
		// The running jail's files, which jail -r needs, are untouched.
		if after, _ := os.ReadFile(d.confPath("web")); !bytes.Equal(before, after) {
			t.Errorf("conf of the running jail changed:\n%s", after)
		}
		// A stale conf (jls says not found) does not block a new jail.
		rec.fail["/usr/sbin/jls -j"] = &runner.CommandError{Stderr: `jls: jail "web" not found`, ExitCode: 1}
		if err := d.Create(context.Background(), s); err != nil {
			t.Fatalf("create over a stale conf: %v", err)
		}
	})
	t.Run("missing hostPath", func(t *testing.T) {
		d, rec, s := newFreeBSDTestDriver(t, "1\n")
		s.Mounts = []Mount{{Source: "/nonexistent/zocker-test", Target: "/data"}}
		err := d.Create(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), "volume source") || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
		if len(rec.calls) != 0 {
			t.Errorf("commands run for an invalid spec: %q", rec.calls)
		}
		assertNoBSDFiles(t, d)
	})
}

func assertNoBSDFiles(t *testing.T, d *FreeBSD) {
	t.Helper()
	for _, p := range []string{d.confPath("web"), d.fstabPath("web")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", p, err)
		}
	}
}

func TestFreeBSDDriverRemove(t *testing.T) {
	d, rec, s := newFreeBSDTestDriver(t, "1\n")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	conf := d.confPath("web")
	rec.calls = nil
	if err := d.Remove(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/sbin/jail -f " + conf + " -r web", "/usr/bin/rctl -r jail:web"}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("commands %q, want %q", rec.calls, want)
	}
	assertNoBSDFiles(t, d)

	// Not running and no conf left: jail -R (no /etc/jail.conf); "not found" is success.
	rec.calls = nil
	rec.fail["/usr/sbin/jail -R"] = &runner.CommandError{Stderr: `jail: "web" not found`, ExitCode: 1}
	if err := d.Remove(context.Background(), "web"); err != nil {
		t.Fatalf("removing a missing jail: %v", err)
	}
	if rec.calls[0] != "/usr/sbin/jail -R web" {
		t.Errorf("commands %q", rec.calls)
	}
	rec.fail["/usr/bin/rctl -r"] = &runner.CommandError{Stderr: "rctl: failed to remove rule 'jail:web': Operation not permitted", ExitCode: 1}
	if err := d.Remove(context.Background(), "web"); err == nil || !strings.Contains(err.Error(), "remove rctl rules of jail web") {
		t.Errorf("a real rctl failure: got %v", err)
	}
	rec.fail["/usr/sbin/jail -R"] = &runner.CommandError{Stderr: "jail: web: Device busy", ExitCode: 1}
	if err := d.Remove(context.Background(), "web"); err == nil {
		t.Error("a failing jail -r was ignored")
	}
}

func TestFreeBSDDriverListAndCommand(t *testing.T) {
	d, rec, _ := newFreeBSDTestDriver(t, "1\n")
	sample, err := os.ReadFile("testdata/jls-two.json")
	if err != nil {
		t.Fatal(err)
	}
	rec.out["/usr/sbin/jls --libxo"] = string(sample)
	infos, err := d.List(context.Background())
	if err != nil || len(infos) != 2 || infos[0].Name != "web" {
		t.Fatalf("List = %+v, %v", infos, err)
	}
	rec.fail["/usr/sbin/jexec"] = &runner.CommandError{ExitCode: 1,
		Stderr: "usage: jexec [-l] [-d working-directory] [-u username | -U username] jail [command ...]\n"}
	cmd, err := d.Command("web", Process{Argv: []string{"pwd"}, Workdir: "/tmp", User: "www"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/sbin/jexec", "-d", "/tmp", "-U", "www", "web", "/usr/bin/env", "-i", "PATH=" + DefaultPath, "pwd"}
	if !reflect.DeepEqual(cmd.Args, want) || cmd.Path != "/usr/sbin/jexec" {
		t.Errorf("Command = %q (%s)", cmd.Args, cmd.Path)
	}
	// The probe runs once.
	d.Command("web", Process{Argv: []string{"true"}})
	n := 0
	for _, c := range rec.calls {
		if c == "/usr/sbin/jexec" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("jexec probed %d times", n)
	}
}
