// Package jailparam knows FreeBSD's jail parameters: their names, value
// types and which ones take the "no" prefix, and decides which of them a
// manifest's jailParams may set.
//
// The table was written from jail(8) and jail.conf(5), sys/kern/kern_jail.c
// (the SYSCTL_JAIL_PARAM declarations, FreeBSD 13-15), lib/libjail/jail.c
// (jailparam_init: a boolean named with a "no" prefix on its last component)
// and usr.sbin/jail/config.c (the intparams table of jail(8)'s own
// pseudo-parameters, and equalopts(), which makes "noX" and "foo.noX" the
// same parameter as "X" and "foo.X").
package jailparam

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Type is a parameter's value type as jail(8) and libjail read it.
type Type int

const (
	// Bool is a kernel boolean (CTLTYPE_INT with the "B" format): valueless,
	// true/false (any case) or an integer; it takes the "no" prefix.
	Bool Type = iota
	// Int is an integer (strtol).
	Int
	// String is free text.
	String
	// JailSys is a jailsys value: "disable", "new" or "inherit".
	JailSys
	// Addrs is a comma-separated list of addresses (ip4.addr, ip6.addr).
	Addrs
	// Internal is one of jail(8)'s own pseudo-parameters (exec.*, mount.*,
	// command, interface, ...): jail(8) acts on it on the host itself.
	Internal
	// ReadOnly is reported by the kernel but cannot be set.
	ReadOnly
)

func (t Type) String() string {
	switch t {
	case Bool:
		return "boolean"
	case Int:
		return "integer"
	case String:
		return "string"
	case JailSys:
		return "disable|new|inherit"
	case Addrs:
		return "address list"
	case Internal:
		return "jail(8) pseudo-parameter"
	case ReadOnly:
		return "read-only"
	}
	return "unknown"
}

// Param describes one parameter.
type Param struct {
	Name string
	Type Type
	// Allowed: a manifest's jailParams may set it.
	Allowed bool
	// Min and Max bound an allowed Int (when Max > Min).
	Min, Max int64
}

// TakesNo reports whether the parameter may be written with a "no" prefix
// on its last component (allow.noraw_sockets): booleans only, the kernel's
// and jail(8)'s own (exec.clean, mount.devfs, ...).
func (p Param) TakesNo() bool { return p.Type == Bool || p.Name == "persist" || internalBools[p.Name] }

// internalBools are jail(8)'s boolean pseudo-parameters (PF_BOOL in
// config.c's intparams).
var internalBools = map[string]bool{
	"allow.dying": true, "exec.clean": true, "exec.system_jail_user": true,
	"ip_hostname": true, "mount.devfs": true, "mount.fdescfs": true, "mount.procfs": true,
}

// table lists every parameter name jail(8) knows on a FreeBSD 13-15 GENERIC
// kernel with the modules a jail host commonly loads (linux, sysvipc, vmm).
var table = func() map[string]Param {
	m := map[string]Param{}
	add := func(t Type, allowed bool, names ...string) {
		for _, n := range names {
			m[n] = Param{Name: n, Type: t, Allowed: allowed}
		}
	}
	// Kernel booleans a manifest may grant (allow.*: jail.8 "allow.*").
	add(Bool, true,
		"allow.set_hostname", "allow.sysvipc", "allow.raw_sockets", "allow.chflags",
		"allow.mount", "allow.mount.devfs", "allow.mount.fdescfs", "allow.mount.fusefs",
		"allow.mount.linprocfs", "allow.mount.linsysfs", "allow.mount.lindebugfs",
		"allow.mount.nullfs", "allow.mount.procfs", "allow.mount.tmpfs", "allow.mount.zfs",
		"allow.quotas", "allow.socket_af", "allow.mlock", "allow.reserved_ports",
		"allow.read_msgbuf", "allow.unprivileged_proc_debug", "allow.suser", "allow.nfsd",
		"allow.vmm", "allow.extattr", "allow.adjtime", "allow.settime", "allow.routing",
		"allow.unprivileged_parent_tampering",
		"ip4.saddrsel", "ip6.saddrsel")
	// Kernel parameters the renderer sets from the spec, or that would
	// break the container's isolation or our bookkeeping.
	add(Bool, false, "persist", "zfs.mount_snapshot")
	add(Int, false, "jid", "securelevel", "host.hostid")
	add(String, false, "name", "path", "host.hostname", "host.domainname", "host.hostuuid", "meta", "env")
	add(JailSys, false, "ip4", "ip6", "vnet", "host")
	add(Addrs, false, "ip4.addr", "ip6.addr")
	add(ReadOnly, false, "parent", "dying", "children.cur", "cpuset.id")
	// Kernel parameters a manifest may set.
	add(Int, true, "children.max", "osreldate", "devfs_ruleset", "enforce_statfs")
	add(String, true, "osrelease", "linux.osname", "linux.osrelease", "linux.oss_version")
	add(JailSys, true, "sysvmsg", "sysvsem", "sysvshm", "linux")
	// jail(8)'s pseudo-parameters (config.c intparams): commands, mounts and
	// interface changes it performs on the host.
	add(Internal, false,
		"allow.dying", "command", "depend", "exec.clean", "exec.consolelog", "exec.fib",
		"exec.jail_user", "exec.poststart", "exec.poststop", "exec.prepare", "exec.prestart",
		"exec.prestop", "exec.release", "exec.created", "exec.start", "exec.stop",
		"exec.system_jail_user", "exec.system_user", "exec.timeout", "interface",
		"ip_hostname", "mount", "mount.devfs", "mount.fdescfs", "mount.procfs", "mount.fstab",
		"stop.timeout", "vnet.interface")
	bound := func(n string, lo, hi int64) { p := m[n]; p.Min, p.Max = lo, hi; m[n] = p }
	// enforce_statfs 0 lets the jail see every mount point of the host.
	bound("enforce_statfs", 1, 2)
	bound("devfs_ruleset", 0, 65535)
	bound("children.max", 0, 1<<31-1)
	bound("osreldate", 1, 1<<31-1)
	return m
}()

// Lookup returns the parameter named exactly name. Only tests call it (the
// jail.conf reader of engine/jail's conformance tests checks values against
// the same table the manifests are checked with): kept exported for them.
func Lookup(name string) (Param, bool) {
	p, ok := table[name]
	return p, ok
}

// Aliases returns every name jail(8) treats as the same parameter as name:
// name itself and, for each dot-separated component starting with "no",
// name with that "no" removed (config.c equalopts). "noexec.prestart" is
// exec.prestart; "allow.noraw_sockets" is allow.raw_sockets; "nomount" is mount.
func Aliases(name string) []string {
	out := []string{name}
	parts := strings.Split(name, ".")
	for i, c := range parts {
		if strings.HasPrefix(c, "no") {
			q := append([]string(nil), parts...)
			q[i] = strings.TrimPrefix(c, "no")
			out = append(out, strings.Join(q, "."))
		}
	}
	return out
}

// nameRE is what a parameter name looks like.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// Check decides whether a manifest may set name to value. The name is read
// as jail(8) and libjail read it: any "no" spelling of one of jail(8)'s own
// pseudo-parameters is that parameter (config.c equalopts, so
// "noexec.prestart" runs as exec.prestart on the host); a kernel boolean
// may carry "no" on its last component (libjail). The parameter must be on
// the allow-list and the value of its type; value "" is the valueless
// statement (true, for a boolean).
func Check(name, value string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("jail parameter name %q is invalid: want lower-case letters, digits and '_' in dot-separated words", name)
	}
	for _, a := range Aliases(name) {
		if p, ok := table[a]; ok && p.Type == Internal {
			return refuse(name, p)
		}
	}
	p, ok := table[name]
	negated := false
	if !ok {
		i := strings.LastIndexByte(name, '.') + 1
		q, found := table[name[:i]+strings.TrimPrefix(name[i:], "no")]
		if !strings.HasPrefix(name[i:], "no") || !found {
			return fmt.Errorf("jail parameter %s is unknown to jail(8)", name)
		}
		if !q.TakesNo() {
			return fmt.Errorf("jail parameter %s: %s is %s, only booleans take the \"no\" prefix", name, q.Name, q.Type)
		}
		p, negated = q, true
	}
	if !p.Allowed {
		return refuse(name, p)
	}
	if negated && value != "" {
		return fmt.Errorf("jail parameter %s: a \"no\" boolean takes no value (write %s: %q instead)", name, p.Name, "false")
	}
	return checkValue(p, value)
}

func refuse(name string, p Param) error {
	why := "it is not on the jailParams allow-list"
	switch {
	case p.Type == Internal:
		why = "jail(8) runs it as a command, mounts or changes interfaces on the host"
	case p.Type == ReadOnly:
		why = "it is read-only"
	case managed[p.Name] != "":
		why = "it is set from " + managed[p.Name]
	}
	if p.Name != name {
		return fmt.Errorf("jail parameter %s means %s to jail(8): not allowed in jailParams (%s)", name, p.Name, why)
	}
	return fmt.Errorf("jail parameter %s is not allowed in jailParams (%s)", name, why)
}

// managed names what sets the parameters the renderer owns.
var managed = map[string]string{
	"name": "metadata.name", "jid": "zocker-reconcile", "path": "the container's dataset",
	"host.hostname": "spec.hostname", "securelevel": "spec.securelevel",
	"ip4": "spec.network", "ip4.addr": "spec.network", "ip6": "spec.network", "ip6.addr": "spec.network",
	"vnet": "spec.network", "vnet.interface": "spec.network", "persist": "zocker-reconcile",
}

func checkValue(p Param, v string) error {
	switch p.Type {
	case Bool:
		if v == "" || strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
			return nil
		}
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			return nil
		}
		return fmt.Errorf("jail parameter %s: %q is not a boolean (true, false or an integer)", p.Name, v)
	case Int:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("jail parameter %s: %q is not an integer", p.Name, v)
		}
		if p.Max > p.Min && (n < p.Min || n > p.Max) {
			return fmt.Errorf("jail parameter %s: %d is outside %d..%d", p.Name, n, p.Min, p.Max)
		}
	case JailSys:
		switch v {
		case "disable", "new", "inherit":
		default:
			return fmt.Errorf("jail parameter %s: %q is not one of disable, new, inherit", p.Name, v)
		}
	case String:
		if v == "" {
			return fmt.Errorf("jail parameter %s: needs a value", p.Name)
		}
		// kern_jail.c: osrelease fits OSRELEASELEN (32) with its NUL.
		if p.Name == "osrelease" && len(v) > 31 {
			return fmt.Errorf("jail parameter %s: %q is longer than 31 bytes", p.Name, v)
		}
	}
	return nil
}
