// Package linuxns is the Linux jail driver, the test substrate of the
// FreeBSD design: a jail is a long-lived init process (this binary
// re-executed as InitCommand) holding private mount, pid, uts, ipc and
// network namespaces, pivoted into the container's root, with cgroup v2 or
// v1 limits. It implements jail.Driver; engine/jail keeps the portable
// vocabulary and the FreeBSD driver. It is over the house's 1,500 lines
// since the init became the parent of every jail process (issue 15): the
// init, its control protocol (requests, stdio passed as descriptors, signal
// relay, exit status) and the cgroup v1/v2 limits it applies to each child
// are one private contract, which a split would have to export.
package linuxns
