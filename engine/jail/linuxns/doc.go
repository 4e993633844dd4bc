// Package linuxns is the Linux jail driver, the test substrate of the
// FreeBSD design: a jail is a long-lived init process (this binary
// re-executed as InitCommand) holding private mount, pid, uts, ipc and
// network namespaces, pivoted into the container's root, with cgroup v2 or
// v1 limits. It implements jail.Driver; engine/jail keeps the portable
// vocabulary and the FreeBSD driver.
package linuxns
