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
	// host is the fake mount table and interface addresses the driver
	// sees; umount and ifconfig -alias act on it.
	host *fakeBSDHost
}

// fakeBSDHost stands for statfs(2) and getifaddrs(3) in tests.
type fakeBSDHost struct {
	mounts map[string]string // path -> fstype
	addrs  map[string]bool   // "iface addr"
	// stuck mounts survive umount (a busy file system).
	stuck map[string]bool
}

func (h *fakeBSDHost) MountedAt(p string) (string, bool, error) {
	t, ok := h.mounts[p]
	return t, ok, nil
}

func (h *fakeBSDHost) HasAddr(iface, addr string) (bool, error) { return h.addrs[iface+" "+addr], nil }

func (r *bsdRecorder) Run(_ context.Context, c runner.Cmd) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := strings.Join(c.Argv, " ")
	r.calls = append(r.calls, line)
	if r.host != nil {
		switch {
		case c.Argv[0] == UmountPath && !r.host.stuck[c.Argv[1]]:
			delete(r.host.mounts, c.Argv[1])
		case c.Argv[0] == IfconfigPath:
			delete(r.host.addrs, c.Argv[1]+" "+c.Argv[3])
		}
	}
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
	rec.host = &fakeBSDHost{mounts: map[string]string{}, addrs: map[string]bool{}, stuck: map[string]bool{}}
	d := NewFreeBSD(filepath.Join(t.TempDir(), "state"), rec, nil, FreeBSDOptions{HostFiles: []string{resolv}, Probe: rec.host})
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
	for _, p := range []string{d.confPath("web"), d.fstabPath("web"), d.recordPath("web")} {
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
	if rec.calls[1] != "/usr/sbin/jls -j web jid" {
		t.Errorf("Command did not check the jail exists first: %q", rec.calls)
	}
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

// TestFreeBSDDriverJailRemovedFromOutside: review finding 3. A jail removed
// by `jail -f /etc/jail.conf -r` (rc.d/jail) or by hand leaves our nullfs
// mounts, its devfs and its alias; Command reports ErrNotFound (so the
// supervisor re-creates it), and both Create and Remove sweep what is left.
func TestFreeBSDDriverJailRemovedFromOutside(t *testing.T) {
	d, rec, s := newFreeBSDTestDriver(t, "1\n")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	mp, dev := filepath.Join(s.Root, "var/log/httpd"), filepath.Join(s.Root, "dev")
	gone := func() {
		rec.host.mounts[mp], rec.host.mounts[dev] = "nullfs", "devfs"
		rec.host.addrs["lo0 127.0.1.2"] = true
		rec.fail["/usr/sbin/jls -j"] = &runner.CommandError{Stderr: `jls: jail "web" not found`, ExitCode: 1}
		rec.fail["/usr/sbin/jail -f"] = &runner.CommandError{Stderr: `jail: "web" not found`, ExitCode: 1}
	}
	gone()
	// Something not ours mounted elsewhere is never touched.
	rec.host.mounts["/usr/home"] = "nullfs"

	if _, err := d.Command("web", Process{Argv: []string{"true"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Command on a vanished jail: %v, want ErrNotFound", err)
	}

	// Re-creation (what the supervisor does on ErrNotFound) sweeps first.
	rec.calls = nil
	delete(rec.fail, "/usr/sbin/jail -f")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	conf := d.confPath("web")
	want := []string{
		"/usr/sbin/jls -j web jid",
		"/sbin/umount " + mp,
		"/sbin/umount " + dev,
		"/sbin/ifconfig lo0 inet 127.0.1.2 -alias",
		"/usr/sbin/jail -f " + conf + " -c web",
	}
	if got := rec.calls[:len(want)]; !reflect.DeepEqual(got, want) {
		t.Errorf("re-create:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Removal after it vanished again: jail -r says "not found", the
	// sweep takes the rest down, and only then are the files deleted.
	gone()
	rec.calls = nil
	if err := d.Remove(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"/usr/sbin/jail -f " + conf + " -r web",
		"/sbin/umount " + mp,
		"/sbin/umount " + dev,
		"/sbin/ifconfig lo0 inet 127.0.1.2 -alias",
		"/usr/bin/rctl -r jail:web",
	}
	if !reflect.DeepEqual(rec.calls, want) {
		t.Errorf("remove:\n%s\nwant:\n%s", strings.Join(rec.calls, "\n"), strings.Join(want, "\n"))
	}
	if len(rec.host.mounts) != 1 || len(rec.host.addrs) != 0 {
		t.Errorf("left: mounts %v, addrs %v", rec.host.mounts, rec.host.addrs)
	}
	assertNoBSDFiles(t, d)
}

// TestFreeBSDDriverPartialRemove: jail -r exits 1 when an unmount failed
// although the jail is gone (review 3c); a mount that stays busy is an
// error and the files stay for the retry, which finishes the job.
func TestFreeBSDDriverPartialRemove(t *testing.T) {
	d, rec, s := newFreeBSDTestDriver(t, "1\n")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(s.Root, "var/log/httpd")
	rec.host.mounts[mp] = "nullfs"
	rec.host.stuck[mp] = true
	rec.fail["/usr/sbin/jail -f"] = &runner.CommandError{Stderr: "jail: web: /sbin/umount " + mp + ": Device busy", ExitCode: 1}
	rec.fail["/usr/sbin/jls -j"] = &runner.CommandError{Stderr: `jls: jail "web" not found`, ExitCode: 1}
	err := d.Remove(context.Background(), "web")
	if err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Fatalf("Remove with a busy mount: %v", err)
	}
	if _, err := os.Stat(d.recordPath("web")); err != nil {
		t.Errorf("record removed although the sweep failed: %v", err)
	}
	delete(rec.host.stuck, mp)
	if err := d.Remove(context.Background(), "web"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if len(rec.host.mounts) != 0 {
		t.Errorf("left mounted: %v", rec.host.mounts)
	}
	assertNoBSDFiles(t, d)

	// jail -r failing while the jail still runs is an error, no sweep.
	delete(rec.fail, "/usr/sbin/jail -f")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	rec.fail["/usr/sbin/jail -f"] = &runner.CommandError{Stderr: "jail: web: Device busy", ExitCode: 1}
	delete(rec.fail, "/usr/sbin/jls -j")
	rec.host.mounts[mp] = "nullfs"
	rec.calls = nil
	if err := d.Remove(context.Background(), "web"); err == nil || !strings.Contains(err.Error(), "Device busy") {
		t.Errorf("Remove of a jail still running: %v", err)
	}
	for _, c := range rec.calls {
		if strings.HasPrefix(c, UmountPath) {
			t.Errorf("swept a running jail: %s", c)
		}
	}
}

// TestFreeBSDDriverNumericUser: review finding 5. A numeric USER is looked
// up in the image's master.passwd and passed to jexec -U by name; root
// gets no -U; an unknown uid is an error naming the file.
func TestFreeBSDDriverNumericUser(t *testing.T) {
	d, rec, s := newFreeBSDTestDriver(t, "1\n")
	if err := os.MkdirAll(filepath.Join(s.Root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	pw := "# comment\nroot:*:0:0::0:0:Charlie &:/root:/bin/sh\nwww:*:80:80::0:0:World Wide Web Owner:/nonexistent:/usr/sbin/nologin\napp:*:1000:1000::0:0:app:/home/app:/bin/sh\n"
	if err := os.WriteFile(filepath.Join(s.Root, "etc/master.passwd"), []byte(pw), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	rec.fail["/usr/sbin/jexec"] = &runner.CommandError{ExitCode: 1, Stderr: "usage: jexec [-l] [-d working-directory] [-u username | -U username] jail [command ...]\n"}
	for user, want := range map[string]string{"1000": "-U app", "80": "-U www", "www": "-U www", "0": "", "root": ""} {
		cmd, err := d.Command("web", Process{Argv: []string{"id"}, User: user})
		if err != nil {
			t.Fatalf("user %s: %v", user, err)
		}
		got := strings.Join(cmd.Args, " ")
		if want == "" && strings.Contains(got, "-U") || want != "" && !strings.Contains(got, want+" web ") {
			t.Errorf("user %s: %s, want %q", user, got, want)
		}
	}
	if _, err := d.Command("web", Process{Argv: []string{"id"}, User: "4242"}); err == nil || !strings.Contains(err.Error(), "no entry with that uid in the image's /etc/master.passwd") {
		t.Errorf("unknown uid: %v", err)
	}
	// A master.passwd planted as a symlink to the host's is not followed.
	os.Remove(filepath.Join(s.Root, "etc/master.passwd"))
	if err := os.Symlink("/etc/passwd", filepath.Join(s.Root, "etc/master.passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Command("web", Process{Argv: []string{"id"}, User: "0"}); err != nil {
		t.Errorf("uid 0 needs no lookup: %v", err)
	}
	if _, err := d.Command("web", Process{Argv: []string{"id"}, User: "1"}); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("symlinked master.passwd: %v", err)
	}
}

// TestFreeBSDDriverCreatesDev: review finding 8. jail(8) creates no mount
// point; an image without /dev gets one before jail -c.
func TestFreeBSDDriverCreatesDev(t *testing.T) {
	d, _, s := newFreeBSDTestDriver(t, "1\n")
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(s.Root, "dev")); err != nil || !fi.IsDir() {
		t.Errorf("/dev not created: %v", err)
	}
}

// TestFreeBSDDriverResolvConf: a loopback jail on a local_unbound host gets
// the --jail-nameserver servers instead of the unreachable 127.0.0.1.
func TestFreeBSDDriverResolvConf(t *testing.T) {
	d, _, s := newFreeBSDTestDriver(t, "1\n")
	if err := os.WriteFile(d.opts.HostFiles[0], []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Nameservers = []string{"192.0.2.53"}
	if err := d.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Root, d.opts.HostFiles[0]))
	if err != nil || string(got) != "nameserver 192.0.2.53\n" {
		t.Errorf("jail resolv.conf %q, %v", got, err)
	}
}
