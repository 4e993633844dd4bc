package jailparam

import (
	"sort"
	"strings"
	"testing"
)

// TestSecurityH3NoPrefixReachesInternal: every "no" spelling jail(8)'s
// equalopts() binds to one of its host-side pseudo-parameters is refused,
// with the parameter it would have become named in the message.
func TestSecurityH3NoPrefixReachesInternal(t *testing.T) {
	for _, tc := range []struct{ name, means string }{
		{"noexec.prestart", "exec.prestart"},
		{"exec.noprestart", "exec.prestart"},
		{"noexec.created", "exec.created"},
		{"exec.created", "exec.created"},
		{"noexec.poststop", "exec.poststop"},
		{"nomount", "mount"},
		{"mount.nofstab", "mount.fstab"},
		{"nomount.fstab", "mount.fstab"},
		{"mount.nodevfs", "mount.devfs"},
		{"nointerface", "interface"},
		{"novnet.interface", "vnet.interface"},
		{"nocommand", "command"},
		{"noexec.consolelog", "exec.consolelog"},
		{"exec.noclean", "exec.clean"},
		{"noip_hostname", "ip_hostname"},
	} {
		err := Check(tc.name, "touch /tmp/pwned")
		if err == nil {
			t.Errorf("Check(%q) accepted it; jail(8) reads it as %s", tc.name, tc.means)
			continue
		}
		if !strings.Contains(err.Error(), tc.means) || !strings.Contains(err.Error(), "on the host") {
			t.Errorf("Check(%q) = %v, want it to name %s and the host", tc.name, err, tc.means)
		}
	}
}

func TestCheck(t *testing.T) {
	ok := []struct{ name, value string }{
		{"allow.raw_sockets", "true"},
		{"allow.raw_sockets", ""},
		{"allow.noraw_sockets", ""},
		{"allow.mount.nullfs", "1"},
		{"allow.mount.nonullfs", ""},
		{"allow.sysvipc", "FALSE"},
		{"children.max", "4"},
		{"sysvmsg", "new"},
		{"sysvsem", "inherit"},
		{"sysvshm", "disable"},
		{"osrelease", "13.2-RELEASE"},
		{"osreldate", "1302001"},
		{"devfs_ruleset", "5"},
		{"enforce_statfs", "1"},
		{"enforce_statfs", "2"},
		{"ip4.saddrsel", "0"},
		{"ip6.nosaddrsel", ""},
		{"linux", "new"},
		{"linux.osrelease", "5.15.0"},
	}
	for _, c := range ok {
		if err := Check(c.name, c.value); err != nil {
			t.Errorf("Check(%q, %q) = %v, want nil", c.name, c.value, err)
		}
	}
	bad := []struct{ name, value, want string }{
		{"enforce_statfs", "0", "outside 1..2"},
		{"enforce_statfs", "two", "not an integer"},
		{"devfs_ruleset", "70000", "outside"},
		{"children.max", "-1", "outside"},
		{"sysvmsg", "yes", "disable, new, inherit"},
		{"allow.raw_sockets", "yes", "not a boolean"},
		{"allow.noraw_sockets", "true", "takes no value"},
		{"nochildren.max", "1", "unknown"},
		{"children.nomax", "1", "only booleans"},
		{"allow.bogus", "1", "unknown to jail(8)"},
		{"noallow.mount", "", "unknown"},
		{"persist", "", "zocker-reconcile"},
		{"nopersist", "", "zocker-reconcile"},
		{"path", "/", "container's dataset"},
		{"ip4.addr", "10.0.0.1", "spec.network"},
		{"vnet", "new", "spec.network"},
		{"host", "inherit", "allow-list"},
		{"host.domainname", "x", "allow-list"},
		{"securelevel", "-1", "spec.securelevel"},
		{"name", "other", "metadata.name"},
		{"dying", "1", "read-only"},
		{"osrelease", strings.Repeat("x", 32), "longer than 31"},
		{"Allow-Mount", "1", "invalid"},
		{"allow..mount", "1", "invalid"},
		{"allow.", "1", "invalid"},
	}
	for _, c := range bad {
		err := Check(c.name, c.value)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%q, %q) = %v, want an error containing %q", c.name, c.value, err, c.want)
		}
	}
}

// TestEveryAllowedNameExists: whatever Check accepts names a parameter of
// the table (itself, or its "no" form), and every allowed entry is a
// kernel parameter, never one of jail(8)'s own.
func TestEveryAllowedNameExists(t *testing.T) {
	n := 0
	for _, name := range Names() {
		p, _ := Lookup(name)
		if !p.Allowed {
			continue
		}
		n++
		if p.Type == Internal || p.Type == ReadOnly {
			t.Errorf("%s is allowed but is %s", name, p.Type)
		}
		for _, a := range Aliases(name) {
			if q, ok := Lookup(a); ok && q.Type == Internal {
				t.Errorf("allowed %s is also jail(8)'s %s", name, a)
			}
		}
	}
	if n < 30 {
		t.Errorf("only %d allowed parameters", n)
	}
}

func TestAliases(t *testing.T) {
	got := strings.Join(Aliases("noexec.noprestart"), " ")
	if want := "noexec.noprestart exec.noprestart noexec.prestart"; got != want {
		t.Errorf("Aliases = %q, want %q", got, want)
	}
}

// Names lists every parameter name in the table, sorted.
func Names() []string {
	out := make([]string, 0, len(table))
	for n := range table {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
