package jail

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// update regenerates the golden files: go test ./engine/jail/ -run 'Conf|Fstab' -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", p, got, want)
	}
}

func intp(n int) *int { return &n }

const stateJails = "/var/run/zocker/jails"

func baseSpec(name string, n Network) Spec {
	return Spec{Name: name, Root: "/zroot/zocker/containers/" + name, Network: n}
}

func TestConfGolden(t *testing.T) {
	full := baseSpec("web", Network{Mode: NetLoopback, Interface: "lo1", Addresses: []string{"127.0.1.7"}})
	full.Hostname = "web.example.org"
	full.Securelevel = intp(3)
	full.Mounts = []Mount{
		{Source: "/zroot/zocker/volumes/weblogs", Target: "/var/log/httpd"},
		{Source: "/srv/www", Target: "/usr/local/www", ReadOnly: true},
		// jail(8) cuts a mount.fstab line at '#' (config.c check_intparams).
		{Source: "/srv/site #2", Target: "/srv/b#c"},
	}
	full.Params = map[string]string{"allow.raw_sockets": "true", "allow.sysvipc": "", "osrelease": "14.3-RELEASE",
		"allow.noset_hostname": "", "enforce_statfs": "1", "devfs_ruleset": "5"}
	full.Limits = Limits{MemoryBytes: 512 << 20, CPUPercent: 50, MaxProcesses: 256}

	cases := []struct {
		file string
		spec Spec
	}{
		{"inherit.conf", baseSpec("inh", Network{Mode: NetInherit})},
		{"none.conf", baseSpec("isolated", Network{Mode: NetNone})},
		{"loopback.conf", baseSpec("db", Network{Mode: NetLoopback, Addresses: []string{"127.0.1.2"}})},
		{"alias.conf", baseSpec("mail", Network{Mode: NetAlias, Interface: "em0",
			Addresses: []string{"192.168.0.241/24", "2001:db8::241/64", "192.168.0.242"}})},
		{"full.conf", full},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got, err := RenderConf(c.spec, ConfOptions{FstabPath: stateJails + "/" + c.spec.Name + ".fstab"})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, c.file, got)
		})
	}
	t.Run("full.fstab", func(t *testing.T) {
		got, err := RenderFstab(full)
		if err != nil {
			t.Fatal(err)
		}
		golden(t, "full.fstab", got)
	})
}

func TestConfDefaults(t *testing.T) {
	got, err := RenderConf(baseSpec("a", Network{Mode: NetNone}), ConfOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"\tpersist;\n", "\tmount.devfs;\n", "\tdevfs_ruleset = 4;\n",
		"\texec.clean;\n", "\tenforce_statfs = 2;\n", "\thost.hostname = 'a';\n",
		// kern_jail.c's JAIL_DEFAULT_ALLOW minus what a service needs.
		"\tallow.noset_hostname;\n", "\tallow.nounprivileged_proc_debug;\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("conf lacks %q:\n%s", want, s)
		}
	}
	for _, absent := range []string{"allow.raw", "allow.sysvipc", "allow.mount", "securelevel", "mount.fstab"} {
		if strings.Contains(s, absent) {
			t.Errorf("conf has %q though the spec does not ask for it:\n%s", absent, s)
		}
	}
}

func TestConfLoopbackInterfaceOption(t *testing.T) {
	got, err := RenderConf(baseSpec("a", Network{Mode: NetLoopback, Addresses: []string{"127.0.1.9/24"}}),
		ConfOptions{LoopbackInterface: "lo1"})
	if err != nil {
		t.Fatal(err)
	}
	// The option names the interface; a loopback alias is always a /32.
	if !strings.Contains(string(got), "\tip4.addr = 'lo1|127.0.1.9/32';\n\tip6 = disable;\n") {
		t.Errorf("unexpected network lines:\n%s", got)
	}
}

func TestConfQuotingCannotInject(t *testing.T) {
	s := baseSpec("a", Network{Mode: NetNone})
	s.Root = `/jails/it's $name\x`
	s.Params = map[string]string{"linux.osname": `13'; exec.start = "/bin/sh"; x = '`}
	got, err := RenderConf(s, ConfOptions{})
	if err != nil {
		t.Fatal(err)
	}
	str := string(got)
	if !strings.Contains(str, `path = '/jails/it\'s $name\\x';`) {
		t.Errorf("path not escaped as expected:\n%s", str)
	}
	if !strings.Contains(str, `linux.osname = '13\'; exec.start = "/bin/sh"; x = \'';`) {
		t.Errorf("value not escaped as expected:\n%s", str)
	}
	// Every statement stays on its own line: one line per parameter.
	if n := strings.Count(str, "\n"); n != 15 {
		t.Errorf("got %d lines, want 15:\n%s", n, str)
	}
	// Read back as jail(8) would: the same two values, and no exec.start.
	ps, err := readConf(str, "a", readerOptions{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.name] = strings.Join(p.values, ",")
	}
	if m["path"] != s.Root || m["linux.osname"] != s.Params["linux.osname"] {
		t.Errorf("read back path %q, linux.osname %q", m["path"], m["linux.osname"])
	}
	if _, ok := m["exec.start"]; ok {
		t.Errorf("the value injected exec.start: %q", confMap(ps))
	}
}

func TestConfRejects(t *testing.T) {
	ok := func() Spec { return baseSpec("a", Network{Mode: NetInherit}) }
	cases := []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"bad name", func(s *Spec) { s.Name = "a.b" }, `jail name "a.b" must match`},
		{"relative root", func(s *Spec) { s.Root = "jails/a" }, `root "jails/a" is not an absolute path`},
		{"bad hostname", func(s *Spec) { s.Hostname = "a b" }, `hostname "a b" is not a valid host name`},
		{"unknown mode", func(s *Spec) { s.Network.Mode = "vnet" }, `unknown network mode "vnet"`},
		{"loopback without address", func(s *Spec) { s.Network = Network{Mode: NetLoopback} }, "exactly one allocated address, have 0"},
		{"alias without interface", func(s *Spec) { s.Network = Network{Mode: NetAlias, Addresses: []string{"10.0.0.1/24"}} }, "alias network needs an interface"},
		{"alias bad interface", func(s *Spec) {
			s.Network = Network{Mode: NetAlias, Interface: "em0|x", Addresses: []string{"10.0.0.1"}}
		}, `interface "em0|x" is not a valid`},
		{"alias bad address", func(s *Spec) {
			s.Network = Network{Mode: NetAlias, Interface: "em0", Addresses: []string{"10.0.0.300"}}
		}, `address "10.0.0.300"`},
		{"param name", func(s *Spec) { s.Params = map[string]string{"Allow.x": "1"} }, `jail parameter name "Allow.x" is invalid`},
		{"param injection name", func(s *Spec) { s.Params = map[string]string{"a = 1; b": "1"} }, `name "a = 1; b" is invalid`},
		{"param digit name", func(s *Spec) { s.Name = "42" }, `jail name "42" is all digits`},
		{"param no-prefixed exec", func(s *Spec) { s.Params = map[string]string{"noexec.prestart": "id"} }, "means exec.prestart to jail(8)"},
		{"param newline", func(s *Spec) { s.Params = map[string]string{"osrelease": "1\n}"} }, `value contains control character '\n'`},
		{"param reserved", func(s *Spec) { s.Params = map[string]string{"persist": ""} }, "set from zocker-reconcile"},
		{"param statfs", func(s *Spec) { s.Params = map[string]string{"enforce_statfs": "0"} }, "outside 1..2"},
		{"param exec", func(s *Spec) { s.Params = map[string]string{"exec.prestart": "rm -rf /"} }, "runs it as a command, mounts or changes interfaces on the host"},
		{"securelevel", func(s *Spec) { s.Securelevel = intp(4) }, "securelevel 4 is outside -1..3"},
		{"mount relative", func(s *Spec) { s.Mounts = []Mount{{Source: "srv", Target: "/srv"}} }, `mount source "srv" is not an absolute path`},
		{"mount on root", func(s *Spec) { s.Mounts = []Mount{{Source: "/srv", Target: "/"}} }, "cannot mount over the jail root"},
		{"mount without fstab path", func(s *Spec) { s.Mounts = []Mount{{Source: "/srv", Target: "/srv"}} }, `fstab path "" is not an absolute path`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := ok()
			c.mod(&s)
			_, err := RenderConf(s, ConfOptions{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestFstabEscapesAndConfines(t *testing.T) {
	s := Spec{Name: "a", Root: "/jails/a", Mounts: []Mount{
		{Source: "/srv/my site", Target: "/usr/local/www/my site", ReadOnly: true},
		{Source: "/data", Target: "/../../etc"},
	}}
	got, err := RenderFstab(s)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")[1:]
	want := []string{
		"/srv/my\\040site\t/jails/a/usr/local/www/my\\040site\tnullfs\tro\t0\t0",
		"/data\t/jails/a/etc\tnullfs\trw\t0\t0",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("got %q\nwant %q", lines, want)
	}
	if _, err := RenderFstab(Spec{Name: "a", Root: "/j", Mounts: []Mount{{Source: `/a\b`, Target: "/x"}}}); err == nil {
		t.Error("a backslash in a mount path was accepted")
	}
	if _, err := RenderFstab(Spec{Name: "a", Root: "/j", Mounts: []Mount{{Source: "/a", Target: "/x\ty"}}}); err == nil {
		t.Error("a tab in a mount path was accepted")
	}
}

func TestConfJexecArgv(t *testing.T) {
	p := Process{Argv: []string{"httpd", "-D", "FOREGROUND"}, Env: []string{"TZ=UTC"}, User: "www", Workdir: "/usr/local/www"}
	got, err := JexecArgv("web", p, true)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/usr/sbin/jexec", "-d", "/usr/local/www", "-U", "www", "web", "/usr/bin/env", "-i",
		"PATH=" + DefaultPath, "TZ=UTC", "httpd", "-D", "FOREGROUND"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	// Root, / and an explicit PATH: no -U, no added PATH; without -d support
	// "/" still works.
	got, err = JexecArgv("web", Process{Argv: []string{"/bin/true"}, Env: []string{"PATH=/bin"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"/usr/sbin/jexec", "web", "/usr/bin/env", "-i", "PATH=/bin", "/bin/true"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	for _, c := range []struct {
		p    Process
		want string
	}{
		{Process{Argv: []string{"ls"}, Workdir: "/tmp"}, "no -d option"},
		{Process{Argv: nil}, "empty command"},
		{Process{Argv: []string{"A=B"}}, "may not start with '-' or contain '='"},
		{Process{Argv: []string{"-x"}}, "may not start with '-'"},
		{Process{Argv: []string{"ls"}, User: "1000"}, "numeric user 1000"},
		{Process{Argv: []string{"ls"}, Env: []string{"-u=x"}}, `environment entry "-u=x"`},
		{Process{Argv: []string{"ls"}, Env: []string{"NOVALUE"}}, `environment entry "NOVALUE"`},
	} {
		if _, err := JexecArgv("web", c.p, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want error containing %q", c.p, err, c.want)
		}
	}
}

func TestConfJailArgv(t *testing.T) {
	if got, want := JailCreateArgv("/s/web.conf", "web"), []string{"/usr/sbin/jail", "-f", "/s/web.conf", "-c", "web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("create: %q", got)
	}
	if got, want := JailRemoveArgv("/s/web.conf", "web"), []string{"/usr/sbin/jail", "-f", "/s/web.conf", "-r", "web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("remove: %q", got)
	}
	if got, want := JailRemoveArgv("", "web"), []string{"/usr/sbin/jail", "-R", "web"}; !reflect.DeepEqual(got, want) {
		t.Errorf("remove without conf: %q", got)
	}
	// Usage texts of jexec(8) before and after -d was added.
	if JexecSupportsWorkdir([]byte("usage: jexec [-l] [-u username | -U username] jail [command ...]\n")) {
		t.Error("old jexec usage taken for one with -d")
	}
	if !JexecSupportsWorkdir([]byte("usage: jexec [-l] [-d working-directory] [-u username | -U username] jail [command ...]\n")) {
		t.Error("new jexec usage not recognised")
	}
}
