package jail

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// JailResolvConf decides the resolv.conf of a jail from the host's. A jail
// whose IPv4 is restricted to its own addresses (loopback and alias modes)
// cannot reach a nameserver on 127.0.0.0/8: the kernel rewrites its
// connections to 127.0.0.1 to the jail's own primary address
// (sys/netinet/in_jail.c prison_remote_ip4), where nothing listens, and ::1
// is unreachable with IPv6 disabled. That is exactly the host of a
// local_unbound setup (`nameserver 127.0.0.1`). For such a jail the
// loopback nameservers are replaced by nameservers (--jail-nameserver);
// without them the file is kept and warning says what to do. Other jails
// get the host's file unchanged.
func JailResolvConf(host []byte, mode string, nameservers []string) (out []byte, warning string) {
	if mode != NetLoopback && mode != NetAlias {
		return host, ""
	}
	var b bytes.Buffer
	var loop []string
	replaced := false
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Unmap().IsLoopback() {
				loop = append(loop, f[1])
				if len(nameservers) > 0 && !replaced {
					for _, n := range nameservers {
						fmt.Fprintf(&b, "nameserver %s\n", n)
					}
					replaced = true
				}
				if len(nameservers) > 0 {
					continue
				}
			}
		}
		b.WriteString(line + "\n")
	}
	if len(loop) == 0 {
		return host, ""
	}
	if len(nameservers) > 0 {
		return b.Bytes(), ""
	}
	return host, fmt.Sprintf("the host resolves through %s, which a %s-network jail cannot reach "+
		"(the kernel sends its 127.0.0.1 to the jail's own address): name resolution will fail in it; "+
		"give --jail-nameserver ADDR (a resolver the jail can reach, e.g. local_unbound also listening on the loopback pool's host address)",
		strings.Join(loop, ", "), mode)
}
