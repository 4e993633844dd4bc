package jail

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/manifests/jailparam"
)

// DefaultLoopbackInterface carries loopback-mode addresses when neither the
// spec nor ConfOptions names another interface (e.g. a cloned lo1 for pf NAT).
const DefaultLoopbackInterface = "lo0"

// DefaultDevfsRuleset is devfsrules_jail from /etc/defaults/devfs.rules: the
// ruleset jail(8) itself recommends for a jail's /dev.
const DefaultDevfsRuleset = 4

// ConfOptions are the host-side settings a jail.conf needs beyond the Spec.
type ConfOptions struct {
	// FstabPath is the absolute path of the file RenderFstab's output is
	// written to; required when the spec has mounts.
	FstabPath string
	// LoopbackInterface carries the address in loopback mode when
	// Spec.Network.Interface is empty; "" means DefaultLoopbackInterface.
	LoopbackInterface string
}

// The names below are checked by hand rather than by regexp: a counted
// repetition such as {0,253} compiles into a program of hundreds of
// instructions, and the hostname one alone made every process importing
// this package (each container's supervisor and jail init) 1 MB larger.
// The patterns are kept as text for the error messages (names_test.go
// checks the functions against them).
const (
	// jailNamePattern: a jail name may not contain '.', which jail(8) reads
	// as hierarchy, and it is written unquoted as the block name.
	jailNamePattern = `^[a-z0-9]([a-z0-9_-]{0,62})$`
	// ifacePattern is a FreeBSD interface name (em0, lo1, vlan10, bridge0, wg0).
	ifacePattern    = `^[a-zA-Z][a-zA-Z0-9_.]{0,14}$`
	hostnamePattern = `^[A-Za-z0-9]([A-Za-z0-9.-]{0,253}[A-Za-z0-9])?$`
)

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isLower(c) || isUpper(c) || isDigit(c) }

// allBytes tells whether every byte of s satisfies ok.
func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// matchesJailName matches jailNamePattern.
func matchesJailName(s string) bool {
	return len(s) >= 1 && len(s) <= 63 && (isLower(s[0]) || isDigit(s[0])) &&
		allBytes(s[1:], func(c byte) bool { return isLower(c) || isDigit(c) || c == '_' || c == '-' })
}

// validIface matches ifacePattern.
func validIface(s string) bool {
	return len(s) >= 1 && len(s) <= 15 && (isLower(s[0]) || isUpper(s[0])) &&
		allBytes(s[1:], func(c byte) bool { return isAlnum(c) || c == '_' || c == '.' })
}

// validHostname matches hostnamePattern.
func validHostname(s string) bool {
	switch {
	case len(s) == 0 || len(s) > 255 || !isAlnum(s[0]):
		return false
	case len(s) == 1:
		return true
	}
	return isAlnum(s[len(s)-1]) && allBytes(s[1:len(s)-1], func(c byte) bool { return isAlnum(c) || c == '.' || c == '-' })
}

// validJailName: jailNamePattern, and not all digits, which jail(8), jexec,
// jls and libjail's jail_getid() read as a jail ID (config.c load_config
// turns a numeric block name into jid=).
func validJailName(name string) error {
	if !matchesJailName(name) {
		return fmt.Errorf("jail name %q must match %s", name, jailNamePattern)
	}
	if strings.Trim(name, "0123456789") == "" {
		return fmt.Errorf("jail name %q is all digits: jail(8) would read it as a jail ID", name)
	}
	return nil
}

// ValidateParam checks one extra jail parameter (a manifest's jailParams
// entry) against the allow-list of package jailparam, which reads the name
// as jail(8) does: "noexec.prestart" is exec.prestart, run on the host.
// Values may contain no control characters (a newline could otherwise end
// the statement).
func ValidateParam(name, value string) error {
	if err := jailparam.Check(name, value); err != nil {
		return err
	}
	if err := checkText(value); err != nil {
		return fmt.Errorf("jail parameter %q: value %w", name, err)
	}
	return nil
}

// checkText refuses control characters: jail.conf would accept an escaped
// newline, but nothing legitimate needs one and refusing keeps the file
// one statement per line.
func checkText(s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("contains control character %q", r)
		}
	}
	return nil
}

// quote renders s as a jail.conf single-quoted string. Single quotes, unlike
// double quotes, are not subject to $variable substitution (jail.conf(5)),
// so a '$' in a path or value stays literal; backslash and quote are the
// only characters the lexer treats specially inside them.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' || s[i] == '\'' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}

// RenderConf renders the per-container jail.conf that `jail -f FILE -c NAME`
// creates the jail from. The defaults are those of a single-service jail:
// persist (the jail exists with no process; the supervisor jexecs into it),
// devfs with ruleset 4, exec.clean, enforce_statfs = 2, and no allow.*
// beyond what Params declares.
func RenderConf(s Spec, opts ConfOptions) ([]byte, error) {
	if err := validJailName(s.Name); err != nil {
		return nil, fmt.Errorf("render jail.conf: %w", err)
	}
	if err := checkAbs("root", s.Root); err != nil {
		return nil, fmt.Errorf("render jail.conf for %s: %w", s.Name, err)
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = s.Name
	}
	if !validHostname(hostname) {
		return nil, fmt.Errorf("render jail.conf for %s: hostname %q is not a valid host name", s.Name, hostname)
	}
	net, err := networkParams(s.Network, opts.LoopbackInterface)
	if err != nil {
		return nil, fmt.Errorf("render jail.conf for %s: %w", s.Name, err)
	}
	names := make([]string, 0, len(s.Params))
	for k, v := range s.Params {
		if err := ValidateParam(k, v); err != nil {
			return nil, fmt.Errorf("render jail.conf for %s: %w", s.Name, err)
		}
		names = append(names, k)
	}
	sort.Strings(names)

	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by zocker-reconcile for container %s. Do not edit: it is rewritten on every start.\n", s.Name)
	fmt.Fprintf(&b, "%s {\n", s.Name)
	line := func(format string, a ...any) { fmt.Fprintf(&b, "\t"+format+";\n", a...) }
	line("path = %s", quote(path.Clean(s.Root)))
	line("host.hostname = %s", quote(hostname))
	line("persist")
	line("mount.devfs")
	// devfs_ruleset and enforce_statfs may be given in jailParams (the
	// allow-list keeps enforce_statfs at 1 or 2); the rest are defaults.
	if _, ok := s.Params["devfs_ruleset"]; !ok {
		line("devfs_ruleset = %d", DefaultDevfsRuleset)
	}
	line("exec.clean")
	if _, ok := s.Params["enforce_statfs"]; !ok {
		line("enforce_statfs = 2")
	}
	// kern_jail.c starts a jail with JAIL_DEFAULT_ALLOW; of those, a
	// service jail needs reserved_ports and suser, not changing its host
	// name or debugging its other processes' unprivileged peers.
	for _, a := range defaultDenied {
		if !hasParam(s.Params, a) {
			line("allow.no%s", strings.TrimPrefix(a, "allow."))
		}
	}
	if s.Securelevel != nil {
		if *s.Securelevel < -1 || *s.Securelevel > 3 {
			return nil, fmt.Errorf("render jail.conf for %s: securelevel %d is outside -1..3", s.Name, *s.Securelevel)
		}
		line("securelevel = %d", *s.Securelevel)
	}
	for _, p := range net {
		line("%s", p)
	}
	if len(s.Mounts) > 0 {
		for _, m := range s.Mounts {
			if err := ValidateMount(m); err != nil {
				return nil, fmt.Errorf("render jail.conf for %s: %w", s.Name, err)
			}
		}
		if err := checkAbs("fstab path", opts.FstabPath); err != nil {
			return nil, fmt.Errorf("render jail.conf for %s: %w", s.Name, err)
		}
		// jail(8) mounts these before creating the jail and unmounts them
		// after removing it, so `jail -r` leaves no nullfs mount behind.
		line("mount.fstab = %s", quote(opts.FstabPath))
	}
	for _, k := range names {
		if v := s.Params[k]; v == "" {
			// A valueless statement is jail.conf's boolean shorthand.
			line("%s", k)
		} else {
			line("%s = %s", k, quote(v))
		}
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// defaultDenied are kernel default permissions RenderConf turns off unless
// jailParams names them (in either spelling).
var defaultDenied = []string{"allow.set_hostname", "allow.unprivileged_proc_debug"}

// hasParam reports whether params sets the boolean name, as name or as its
// "no" form.
func hasParam(params map[string]string, name string) bool {
	i := strings.LastIndexByte(name, '.') + 1
	_, a := params[name]
	_, b := params[name[:i]+"no"+name[i:]]
	return a || b
}

// checkAbs refuses relative paths and control characters in a path written
// into jail.conf or fstab.
func checkAbs(what, p string) error {
	if p == "" || !path.IsAbs(p) {
		return fmt.Errorf("%s %q is not an absolute path", what, p)
	}
	if err := checkText(p); err != nil {
		return fmt.Errorf("%s %q: %w", what, p, err)
	}
	return nil
}

// networkParams turns a Network into jail.conf statements (without the
// trailing semicolon).
func networkParams(n Network, defaultLoopback string) ([]string, error) {
	switch n.Mode {
	case NetInherit:
		return []string{"ip4 = inherit", "ip6 = inherit"}, nil
	case NetNone:
		return []string{"ip4 = disable", "ip6 = disable"}, nil
	case NetLoopback:
		iface := n.Interface
		if iface == "" {
			iface = defaultLoopback
		}
		if iface == "" {
			iface = DefaultLoopbackInterface
		}
		if len(n.Addresses) != 1 {
			return nil, fmt.Errorf("loopback network needs exactly one allocated address, have %d", len(n.Addresses))
		}
		return addrParams(iface, n.Addresses, true)
	case NetAlias:
		if n.Interface == "" {
			return nil, errors.New("alias network needs an interface")
		}
		if len(n.Addresses) == 0 {
			return nil, errors.New("alias network needs at least one address")
		}
		return addrParams(n.Interface, n.Addresses, false)
	default:
		return nil, fmt.Errorf("unknown network mode %q", n.Mode)
	}
}

// addrParams renders "IFACE|ADDR/PREFIX" lists split by family. jail(8) adds
// each address as an alias on IFACE before the jail is created and removes
// it after the jail is removed. A family with no address is disabled
// explicitly rather than left to the kernel's default.
func addrParams(iface string, addrs []string, hostRoute bool) ([]string, error) {
	if !validIface(iface) {
		return nil, fmt.Errorf("interface %q is not a valid interface name", iface)
	}
	var v4, v6 []string
	for _, a := range addrs {
		p, err := parseAddr(a, hostRoute)
		if err != nil {
			return nil, err
		}
		v := quote(iface + "|" + p.String())
		if p.Addr().Is4() {
			v4 = append(v4, v)
		} else {
			v6 = append(v6, v)
		}
	}
	var out []string
	if len(v4) > 0 {
		out = append(out, "ip4.addr = "+strings.Join(v4, ", "))
	} else {
		out = append(out, "ip4 = disable")
	}
	if len(v6) > 0 {
		out = append(out, "ip6.addr = "+strings.Join(v6, ", "))
	} else {
		out = append(out, "ip6 = disable")
	}
	return out, nil
}

// parseAddr accepts ADDR or ADDR/PREFIX. A loopback alias is a host route
// (/32 or /128) whatever was given; an alias without a prefix gets one too.
func parseAddr(s string, hostRoute bool) (netip.Prefix, error) {
	var (
		a    netip.Addr
		bits = -1
	)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("address %q: %w", s, err)
		}
		a, bits = p.Addr(), p.Bits()
	} else {
		var err error
		if a, err = netip.ParseAddr(s); err != nil {
			return netip.Prefix{}, fmt.Errorf("address %q: %w", s, err)
		}
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q: zones are not supported", s)
	}
	a = a.Unmap()
	if hostRoute || bits < 0 {
		bits = a.BitLen()
	}
	return netip.PrefixFrom(a, bits), nil
}

// fstabEscape encodes a space, which would split a mount.fstab field, as
// \040, and '#', at which jail(8) cuts every mount.fstab line before
// splitting it (config.c check_intparams), as \043. jail(8) decodes both
// itself: command.c run_command (IP__MOUNT_FROM_FSTAB) splits the line on
// blanks and runs strunvis(3) on the first two fields. Tabs and other
// control characters never get here: checkAbs refuses them.
func fstabEscape(s string) string {
	return strings.NewReplacer(" ", `\040`, "#", `\043`).Replace(s)
}

// MountPoint returns where on the host a mount's target lies: the jail root
// joined with the cleaned target, which can never climb above the root.
func MountPoint(root, target string) string {
	return path.Join(root, path.Clean("/"+target))
}

// ValidateMount checks one mount for RenderFstab: absolute source and
// target, not the jail root itself, no control characters or backslashes
// (strunvis(3) in jail(8) would read a backslash as the start of an escape).
func ValidateMount(m Mount) error {
	if err := checkAbs("mount source", m.Source); err != nil {
		return err
	}
	if err := checkAbs("mount target", m.Target); err != nil {
		return err
	}
	if path.Clean(m.Target) == "/" {
		return fmt.Errorf("mount target %q: cannot mount over the jail root", m.Target)
	}
	if strings.ContainsRune(m.Source, '\\') || strings.ContainsRune(m.Target, '\\') {
		return fmt.Errorf("mount %s on %s: backslash in path is not supported", m.Source, m.Target)
	}
	return nil
}

// RenderFstab renders the fstab(5) file named by the jail.conf's
// mount.fstab: one nullfs line per mount, the target being the absolute
// path on the host (jail root + path), ro or rw. Mounts are written in the
// given order, so a parent directory must come before what is mounted
// inside it. Callers must have validated the mounts with ValidateMount
// (RenderFstab skips none and reports the first invalid one).
func RenderFstab(s Spec) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by zocker-reconcile for container %s: nullfs volumes.\n", s.Name)
	for _, m := range s.Mounts {
		if err := ValidateMount(m); err != nil {
			return nil, fmt.Errorf("render fstab for %s: %w", s.Name, err)
		}
		mode := "rw"
		if m.ReadOnly {
			mode = "ro"
		}
		fmt.Fprintf(&b, "%s\t%s\tnullfs\t%s\t0\t0\n",
			fstabEscape(path.Clean(m.Source)), fstabEscape(MountPoint(s.Root, m.Target)), mode)
	}
	return b.Bytes(), nil
}

// JailCreateArgv is `jail -f CONF -c NAME`: create the jail NAME as the
// generated file describes it (mount.fstab, devfs, addresses included).
func JailCreateArgv(confPath, name string) []string {
	return []string{JailPath, "-f", confPath, "-c", name}
}

// JailRemoveArgv is `jail -f CONF -r NAME`. Given the same file, jail -r
// also unmounts devfs and the fstab mounts and removes the address aliases.
// Without one ("" when the file is lost) it is `jail -R NAME`: `jail -r`
// would read /etc/jail.conf (jail.c main: -f defaults to it), fail on any
// syntax error there and run the exec.* and mounts of a same-named entry;
// -R removes the running jail reading no configuration at all. Whatever
// our file described is then swept by the driver (Sweep).
func JailRemoveArgv(confPath, name string) []string {
	if confPath == "" {
		return []string{JailPath, "-R", name}
	}
	return []string{JailPath, "-f", confPath, "-r", name}
}

// DefaultPath is given to a command whose environment has no PATH.
const DefaultPath = "/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin"

// ErrWorkdirUnsupported is returned by JexecArgv for a working directory
// other than / when jexec(8) has no -d option (releases before it was
// added): there is no other way to set it without a shell in the jail.
var ErrWorkdirUnsupported = errors.New("this jexec(8) has no -d option to set the working directory")

// JexecSupportsWorkdir tells from jexec's usage message (what it prints on
// stderr when run without arguments) whether it has -d working-directory.
func JexecSupportsWorkdir(usage []byte) bool {
	return bytes.Contains(usage, []byte("[-d "))
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// JexecArgv builds the command that runs p inside the jail name:
//
//	/usr/sbin/jexec [-d WORKDIR] [-U USER] NAME /usr/bin/env -i K=V... ARGV...
//
// jexec attaches to the jail, switches to USER looked up in the jail's own
// passwd (-U) and execs env, which clears the environment and execs ARGV:
// the process is the command itself, so signals reach it. -l is not used:
// the environment is set completely by env -i, and -l would also move a
// command without -d into the user's home directory. With withWorkdir false
// (a jexec without -d) jexec runs the command from "/", so only "" or "/"
// is accepted. A numeric User other than 0 is refused: jexec -U looks users
// up by name (the FreeBSD driver resolves uids with LookupUID first); root
// gets no -U at all.
func JexecArgv(name string, p Process, withWorkdir bool) ([]string, error) {
	if err := validJailName(name); err != nil {
		return nil, fmt.Errorf("jexec: %w", err)
	}
	if len(p.Argv) == 0 || p.Argv[0] == "" {
		return nil, fmt.Errorf("jexec in %s: empty command", name)
	}
	// env(1) would read a leading "-" as an option and a "=" as one more
	// variable instead of the program to run.
	if strings.HasPrefix(p.Argv[0], "-") || strings.Contains(p.Argv[0], "=") {
		return nil, fmt.Errorf("jexec in %s: program name %q may not start with '-' or contain '='", name, p.Argv[0])
	}
	wd := p.Workdir
	if wd == "" {
		wd = "/"
	}
	if !path.IsAbs(wd) {
		return nil, fmt.Errorf("jexec in %s: workdir %q is not absolute", name, wd)
	}
	argv := []string{JexecPath}
	if withWorkdir {
		argv = append(argv, "-d", path.Clean(wd))
	} else if path.Clean(wd) != "/" {
		return nil, fmt.Errorf("jexec in %s with workdir %s: %w", name, wd, ErrWorkdirUnsupported)
	}
	switch {
	case p.User == "" || p.User == "root" || p.User == "0":
		// jexec runs as root by default; -U root would need the image's
		// /etc/pwd.db for nothing.
	case strings.Trim(p.User, "0123456789") == "":
		return nil, fmt.Errorf("jexec in %s: numeric user %s: jexec -U needs a user name (resolve it with LookupUID)", name, p.User)
	case strings.HasPrefix(p.User, "-"):
		return nil, fmt.Errorf("jexec in %s: user %q may not start with '-'", name, p.User)
	default:
		argv = append(argv, "-U", p.User)
	}
	argv = append(argv, name, EnvPath, "-i")
	hasPath := false
	for _, kv := range p.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || !envKeyRE.MatchString(k) {
			return nil, fmt.Errorf("jexec in %s: environment entry %q is not NAME=value", name, kv)
		}
		if k == "PATH" {
			hasPath = true
		}
	}
	if !hasPath {
		argv = append(argv, "PATH="+DefaultPath)
	}
	argv = append(argv, p.Env...)
	return append(argv, p.Argv...), nil
}
