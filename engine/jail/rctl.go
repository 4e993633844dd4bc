package jail

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Absolute paths of the FreeBSD tools the driver runs (the service's PATH is
// not trusted, and rc.d gives a minimal one).
const (
	JailPath   = "/usr/sbin/jail"
	JexecPath  = "/usr/sbin/jexec"
	JlsPath    = "/usr/sbin/jls"
	RctlPath   = "/usr/bin/rctl"
	SysctlPath = "/sbin/sysctl"
	EnvPath    = "/usr/bin/env"
	// UmountPath and IfconfigPath take down what a vanished jail left.
	UmountPath   = "/sbin/umount"
	IfconfigPath = "/sbin/ifconfig"
)

// RacctSysctl is the loader tunable that turns resource accounting on; rctl
// rules are refused (or ignored) while it is 0.
const RacctSysctl = "kern.racct.enable"

// RctlRules returns the rctl(8) rules for a jail's limits, in a fixed order
// (memoryuse, pcpu, maxproc); zero limits have no rule. The subject is the
// jail name, so the rules follow the jail rather than a jid.
func RctlRules(name string, l Limits) []string {
	var rules []string
	if l.MemoryBytes > 0 {
		rules = append(rules, fmt.Sprintf("jail:%s:memoryuse:deny=%d", name, l.MemoryBytes))
	}
	if l.CPUPercent > 0 {
		// pcpu is a percentage of one core; deny is its only throttling action.
		rules = append(rules, fmt.Sprintf("jail:%s:pcpu:deny=%d", name, l.CPUPercent))
	}
	if l.MaxProcesses > 0 {
		rules = append(rules, fmt.Sprintf("jail:%s:maxproc:deny=%d", name, l.MaxProcesses))
	}
	return rules
}

// RctlAddArgv is `rctl -a RULE...` (rctl(8) takes several rules at once).
func RctlAddArgv(rules []string) []string {
	return append([]string{RctlPath, "-a"}, rules...)
}

// RctlRemoveArgv is `rctl -r jail:NAME`: the filter removes every rule
// whose subject is the jail.
func RctlRemoveArgv(name string) []string {
	return []string{RctlPath, "-r", "jail:" + name}
}

// RctlUsageArgv is `rctl -u jail:NAME`, the jail's current resource usage
// (without -h, so amounts are plain numbers).
func RctlUsageArgv(name string) []string {
	return []string{RctlPath, "-u", "jail:" + name}
}

// RacctArgv reads kern.racct.enable.
func RacctArgv() []string {
	return []string{SysctlPath, "-n", RacctSysctl}
}

// ParseRacct reads `sysctl -n kern.racct.enable` output: true when 1.
func ParseRacct(out []byte) (bool, error) {
	s := strings.TrimSpace(string(out))
	n, err := strconv.Atoi(s)
	if err != nil {
		return false, fmt.Errorf("parse %s value %q: %w", RacctSysctl, s, err)
	}
	return n != 0, nil
}

// Usage is a jail's resource usage as `rctl -u` reports it.
type Usage struct {
	// MemoryBytes is the resident set size of the jail's processes.
	MemoryBytes int64
	// CPUPercent is the CPU use in percent of one core.
	CPUPercent int64
	// Resources holds every resource=amount pair of the output.
	Resources map[string]int64
}

// ParseRctlUsage parses `rctl -u jail:NAME` output: one resource=amount per
// line (cputime=..., memoryuse=..., pcpu=...). Unknown resources are kept
// in Resources; a malformed line is an error.
func ParseRctlUsage(out []byte) (Usage, error) {
	u := Usage{Resources: map[string]int64{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return Usage{}, fmt.Errorf("parse rctl usage line %q: want resource=amount", line)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Usage{}, fmt.Errorf("parse rctl usage line %q: %w", line, err)
		}
		u.Resources[k] = n
	}
	if err := sc.Err(); err != nil {
		return Usage{}, fmt.Errorf("parse rctl usage: %w", err)
	}
	u.MemoryBytes = u.Resources["memoryuse"]
	u.CPUPercent = u.Resources["pcpu"]
	return u, nil
}
