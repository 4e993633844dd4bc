package jail

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestGoldenConfsReadBack: every golden jail.conf, read as jail(8) reads
// it, sets exactly the parameters we meant, in order, and nothing else.
func TestGoldenConfsReadBack(t *testing.T) {
	defaults := []string{"path=/zroot/zocker/containers/%s", "host.hostname=%s", "persist", "mount.devfs",
		"devfs_ruleset=4", "exec.clean", "enforce_statfs=2", "allow.noset_hostname", "allow.nounprivileged_proc_debug"}
	std := func(name string, net ...string) []string {
		out := []string{"name=" + name}
		for _, d := range defaults {
			out = append(out, strings.ReplaceAll(d, "%s", name))
		}
		return append(out, net...)
	}
	cases := map[string]struct {
		jail string
		want []string
	}{
		"inherit.conf":  {"inh", std("inh", "ip4=inherit", "ip6=inherit")},
		"none.conf":     {"isolated", std("isolated", "ip4=disable", "ip6=disable")},
		"loopback.conf": {"db", std("db", "ip4.addr=lo0|127.0.1.2/32", "ip6=disable")},
		"alias.conf": {"mail", std("mail", "ip4.addr=em0|192.168.0.241/24,em0|192.168.0.242/32",
			"ip6.addr=em0|2001:db8::241/64")},
		"full.conf": {"web", []string{"name=web", "path=/zroot/zocker/containers/web", "host.hostname=web.example.org",
			"persist", "mount.devfs", "exec.clean", "allow.nounprivileged_proc_debug", "securelevel=3",
			"ip4.addr=lo1|127.0.1.7/32", "ip6=disable", "mount.fstab=/var/run/zocker/jails/web.fstab",
			"allow.noset_hostname", "allow.raw_sockets=true", "allow.sysvipc", "devfs_ruleset=5",
			"enforce_statfs=1", "osrelease=14.3-RELEASE"}},
	}
	files, _ := os.ReadDir("testdata")
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".conf") {
			continue
		}
		n++
		c, ok := cases[f.Name()]
		if !ok {
			t.Errorf("golden %s has no expected parameters in this test", f.Name())
			continue
		}
		src, err := os.ReadFile("testdata/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		ps, err := readConf(string(src), c.jail, readerOptions{Strict: true})
		if err != nil {
			t.Errorf("%s: %v", f.Name(), err)
			continue
		}
		if got := confMap(ps); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s reads back as\n%q\nwant\n%q", f.Name(), got, c.want)
		}
	}
	if n != len(cases) {
		t.Errorf("%d golden confs, %d expected", n, len(cases))
	}
}

// TestGoldenFstabReadsBack: full.fstab's lines, cut and decoded as jail(8)
// does, are the mounts of the spec, '#' and spaces included.
func TestGoldenFstabReadsBack(t *testing.T) {
	src, err := os.ReadFile("testdata/full.fstab")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readFstabLines(string(src))
	if err != nil {
		t.Fatal(err)
	}
	want := [][4]string{
		{"/zroot/zocker/volumes/weblogs", "/zroot/zocker/containers/web/var/log/httpd", "nullfs", "rw"},
		{"/srv/www", "/zroot/zocker/containers/web/usr/local/www", "nullfs", "ro"},
		{"/srv/site #2", "/zroot/zocker/containers/web/srv/b#c", "nullfs", "rw"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fstab reads back as %q, want %q", got, want)
	}
	// Without the \043 escape jail(8) would have cut the line at '#'.
	if _, err := readFstabLines("/srv/a#b /j/x nullfs rw 0 0\n"); err == nil {
		t.Error("a raw '#' in a path was not cut off")
	}
}

// TestConfReaderFollowsJail8: the reader's rules, each from jaillex.l,
// jailparse.y or config.c.
func TestConfReaderFollowsJail8(t *testing.T) {
	cases := []struct {
		name, src string
		want      []string
	}{
		{"quotes and escapes", `j { path = '/a\'b\\c'; host.hostname = "x\ty"; osrelease = \x41B\101; }`,
			[]string{"name=j", "path=/a'b\\c", "host.hostname=x\ty", "osrelease=ABA"}},
		{"single quotes do not expand", `j { path = '/j/$name'; }`, []string{"name=j", "path=/j/$name"}},
		{"double quotes expand", `j { path = "/j/$name/${name}x"; }`, []string{"name=j", "path=/j/j/jx"}},
		{"bare variable and glued pieces", `$base = /jails; j { path = $base/'sub'"dir"; }`,
			[]string{"name=j", "path=/jails/subdir"}},
		{"plus-equals appends", `j { ip4.addr = 'lo0|127.0.1.2'; ip4.addr += 'lo0|127.0.1.3'; }`,
			[]string{"name=j", "ip4.addr=lo0|127.0.1.2,lo0|127.0.1.3"}},
		{"equals replaces", `j { osrelease = 1; osrelease = 2; }`, []string{"name=j", "osrelease=2"}},
		{"no prefix is the same parameter", `j { persist; nopersist; allow.raw_sockets; allow.noraw_sockets; }`,
			[]string{"name=j", "nopersist", "allow.noraw_sockets"}},
		{"globals before and after", "osrelease = a; securelevel = 1;\nj { osrelease = b; securelevel = 2; }\nsecurelevel = 3;",
			[]string{"name=j", "osrelease=b", "securelevel=3"}},
		{"comments", "# one\n// two\n/* three\n*/ j { persist; } # after", []string{"name=j", "persist"}},
		{"value without equals", `j { osrelease 13.2; }`, []string{"name=j", "osrelease=13.2"}},
		{"numeric block name is a jid", `7 { persist; }`, []string{"jid=7", "persist"}},
		{"empty statements", `; j { ; persist; ; }`, []string{"name=j", "persist"}},
		{"line continuation in quotes", "j { path = '/a\\\n/b'; }", []string{"name=j", "path=/a/b"}},
		{"lone dollar is text", `j { host.hostname = "a$ b"; }`, []string{"name=j", "host.hostname=a$ b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := "j"
			if strings.HasPrefix(c.src, "7") {
				name = "7"
			}
			ps, err := readConf(c.src, name, readerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := confMap(ps); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
	// jail(8)'s text2lval takes an unknown escape literally; Strict refuses it.
	ps, err := readConf(`j { osrelease = '\q'; }`, "j", readerOptions{})
	if err != nil || confMap(ps)[1] != "osrelease=q" {
		t.Errorf(`'\q' read as %q, %v; jail(8) reads it as "q"`, confMap(ps), err)
	}
}

// TestConfReaderRejects: what jail(8) refuses, the reader refuses.
func TestConfReaderRejects(t *testing.T) {
	cases := []struct {
		name, src, want string
		strict          bool
	}{
		{"unbalanced single quote", "j { path = '/a; }\n", "unterminated string", false},
		{"unbalanced double quote", "j { path = \"/a; }\n", "unterminated string", false},
		{"missing semicolon", "j { path = '/a' persist; }", "syntax error", false},
		{"missing semicolon at the end", "j { persist }", "missing ';'", false},
		{"missing brace", "j { persist;", "missing '}'", false},
		{"unterminated comment", "/* j { persist; }", "unterminated comment", false},
		{"unterminated variable", "j { path = ${x\n}; }", "unterminated variable", false},
		{"unknown escape", `j { osrelease = '\q'; }`, `unknown escape \q`, true},
		{"stray character", "j { path = /a\"; }", "unterminated string", false},
		{"unknown variable", `j { path = "$nope"; }`, `variable "nope" not found`, false},
		{"variable loop", `j { $a = "$b"; $b = "$a"; path = "$a"; }`, "variable loop", false},
		{"array inline", `j { ip4.addr = a, b; host.hostname = "x$ip4.addr"; }`, "not found", false},
		{"array inline 2", `$l = a, b; j { host.hostname = "x$l"; }`, "array cannot be substituted inline", false},
		{"unknown parameter", `j { allow.bogus; }`, "unknown parameter: allow.bogus", false},
		{"no prefix on an integer", `j { nosecurelevel = 1; }`, "unknown parameter", false},
		{"bad boolean", `j { persist = maybe; }`, `unknown boolean value "maybe"`, false},
		{"bad integer", `j { securelevel = high; }`, `non-integer value "high"`, false},
		{"bad jailsys", `j { ip4 = sometimes; }`, `unknown value "sometimes"`, false},
		{"redefine name", `j { name = k; }`, `cannot redefine parameter "name"`, false},
		{"variable named as parameter", `j { path = /a; $path = /b; }`, "cannot have the same name", false},
		{"name glued to a string", `j { path'x' = 1; }`, "syntax error", false},
		{"nested block", `j { k { persist; }; }`, "nested jail blocks", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readConf(c.src, "j", readerOptions{Strict: c.strict})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}
