package manifests

import (
	"fmt"
	"math"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var (
	envKeyRegexp = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// user is a login name or a numeric uid; ':' and '/' would let it reach
	// into other fields of jexec -U or a passwd lookup.
	userRegexp = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)
	// interface names on FreeBSD are at most 15 bytes (IFNAMSIZ-1).
	ifaceRegexp   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,14}$`)
	zfsPropRegexp = regexp.MustCompile(`^[a-z][a-z0-9_.:-]*$`)
	sha256Regexp  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	hostLabel     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// ValidHostname reports whether s is an RFC 1123 host name.
func ValidHostname(s string) error {
	if s == "" || len(s) > 253 {
		return fmt.Errorf("hostname %q must be 1 to 253 characters long", s)
	}
	for _, l := range strings.Split(s, ".") {
		if !hostLabel.MatchString(l) {
			return fmt.Errorf("hostname %q is not an RFC 1123 host name: each dot-separated label is 1 to 63 letters, digits or '-', not starting or ending with '-'", s)
		}
	}
	return nil
}

// Binary units of quantities: 1K = 1024 bytes, 1M = 1024K, 1G = 1024M, 1T = 1024G.
var quantityUnits = map[byte]int64{'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}

// ParseQuantity parses a byte quantity: decimal digits with an optional
// binary unit K, M, G or T (powers of 1024, as ZFS and rctl read them), so
// "512M" is 536870912. A bare number is bytes.
func ParseQuantity(s string) (int64, error) {
	num, mult := s, int64(1)
	if n := len(s); n > 0 {
		if m, ok := quantityUnits[s[n-1]]; ok {
			num, mult = s[:n-1], m
		}
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("quantity %q is invalid: want digits with an optional binary unit K, M, G or T (1K = 1024), e.g. 512M", s)
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mult {
		return 0, fmt.Errorf("quantity %q is too large", s)
	}
	return v * mult, nil
}

// ParseDuration parses a positive Go duration such as "10s", "1m30s" or "500ms".
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("duration %q is invalid: want a number with a unit (ms, s, m, h), e.g. 10s", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

// signals are the names accepted for stopSignal: those FreeBSD and Linux
// both have, with each system's own number.
var signals = map[string]syscall.Signal{
	"SIGHUP": syscall.SIGHUP, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGILL": syscall.SIGILL, "SIGTRAP": syscall.SIGTRAP, "SIGABRT": syscall.SIGABRT,
	"SIGBUS": syscall.SIGBUS, "SIGFPE": syscall.SIGFPE, "SIGKILL": syscall.SIGKILL,
	"SIGUSR1": syscall.SIGUSR1, "SIGSEGV": syscall.SIGSEGV, "SIGUSR2": syscall.SIGUSR2,
	"SIGPIPE": syscall.SIGPIPE, "SIGALRM": syscall.SIGALRM, "SIGTERM": syscall.SIGTERM,
	"SIGCHLD": syscall.SIGCHLD, "SIGCONT": syscall.SIGCONT, "SIGSTOP": syscall.SIGSTOP,
	"SIGTSTP": syscall.SIGTSTP, "SIGTTIN": syscall.SIGTTIN, "SIGTTOU": syscall.SIGTTOU,
	"SIGURG": syscall.SIGURG, "SIGXCPU": syscall.SIGXCPU, "SIGXFSZ": syscall.SIGXFSZ,
	"SIGVTALRM": syscall.SIGVTALRM, "SIGPROF": syscall.SIGPROF, "SIGWINCH": syscall.SIGWINCH,
	"SIGIO": syscall.SIGIO, "SIGSYS": syscall.SIGSYS,
}

// SignalNumber returns the signal named name ("SIGTERM") on the running system.
func SignalNumber(name string) (syscall.Signal, error) {
	if s, ok := signals[name]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("signal %q is unknown: want a name such as SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1", name)
}

// cleanAbs checks a path that is used inside the jail or on the host: absolute,
// already clean (so no "..", "//" or trailing "/"), and free of whitespace and
// control characters, which fstab(5) and jail.conf cannot carry verbatim.
func cleanAbs(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q must be absolute", p)
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return fmt.Errorf("path %q must not contain '..'", p)
		}
	}
	if path.Clean(p) != p {
		return fmt.Errorf("path %q is not clean, write %q", p, path.Clean(p))
	}
	return plainText("path", p, true)
}

// plainText rejects control characters (and, when noSpace, white space) in a value.
func plainText(what, s string, noSpace bool) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (noSpace && r == ' ') {
			return fmt.Errorf("%s %q must not contain white space or control characters", what, s)
		}
	}
	return nil
}

// checkCIDR parses an interface address in CIDR form (192.168.0.241/24).
func checkCIDR(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("address %q is not in CIDR form (e.g. 192.168.0.241/24 or 2001:db8::1/64)", s)
	}
	if p.Addr().Zone() != "" {
		return fmt.Errorf("address %q must not carry a zone", s)
	}
	return nil
}
