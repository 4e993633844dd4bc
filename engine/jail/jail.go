// Package jail is the jail vocabulary (Spec, Driver, Process) and the
// FreeBSD driver: jail(8), jexec(8) and jls(8) with a generated
// per-container jail.conf. What builds parameters, jail.conf text, argv and
// rctl rules is portable and tested as data; only the exec layer is per OS.
// The Linux driver, the test substrate, is engine/jail/linuxns. It is
// over the house's 1,500 lines: the jail.conf, fstab, rctl and jls builders
// and the FreeBSD driver that runs them belong together.
package jail

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// ErrNotFound is returned when a jail does not exist.
var ErrNotFound = errors.New("jail not found")

// Network modes (the same words as the manifests').
const (
	NetInherit  = "inherit"
	NetNone     = "none"
	NetLoopback = "loopback"
	NetAlias    = "alias"
)

// Spec is everything needed to create a container's jail.
type Spec struct {
	// Name is the jail name (the container name, already validated).
	Name string
	// Root is the jail's root directory: the mountpoint of the container's clone.
	Root     string
	Hostname string
	Network  Network
	// Mounts are mounted into the jail before it starts (nullfs on FreeBSD, bind mounts on Linux).
	Mounts []Mount
	// Securelevel is the jail's securelevel (FreeBSD); nil leaves the system default.
	Securelevel *int
	// Params are extra jail(8) parameters (FreeBSD only), validated as name = value.
	Params map[string]string
	Limits Limits
	// Nameservers replace the host's loopback nameservers in the
	// resolv.conf of a loopback or alias jail (FreeBSD; see JailResolvConf).
	Nameservers []string
}

// Network is the resolved network of a jail.
type Network struct {
	Mode string
	// Interface carries the addresses: the host interface for alias, the
	// loopback interface (lo0, or a cloned lo1) for loopback.
	Interface string
	// Addresses are CIDR (alias) or plain (loopback) addresses; for loopback
	// the one address allocated to the container.
	Addresses []string
}

// Mount is a host directory mounted inside the jail.
type Mount struct {
	// Source is the absolute host path (a directory, or a Volume's mountpoint).
	Source string
	// Target is the absolute path inside the jail.
	Target   string
	ReadOnly bool
}

// Limits are resource limits; zero means unlimited.
type Limits struct {
	MemoryBytes  int64
	CPUPercent   int
	MaxProcesses int
}

// Process is a command to run inside a jail.
type Process struct {
	Argv []string
	// Env is KEY=VALUE pairs; the process gets exactly these (plus what the
	// driver must set, such as PATH when it is missing).
	Env     []string
	User    string // a name or a numeric uid; "" means root
	Workdir string // "" means /
}

// Info is what a listing reports about one running jail.
type Info struct {
	Name     string
	JID      int    // FreeBSD jid; on Linux the init process's pid
	Path     string // root directory
	Hostname string
	Addrs    []string
}

// Driver creates, enters, lists and removes jails.
type Driver interface {
	// Create creates and starts the jail (persisting with no process in it).
	// It fails if a jail of that name already runs. Nothing is left behind
	// on failure.
	Create(ctx context.Context, s Spec) error
	// Command prepares (does not start) a command that runs p inside the
	// running jail name. Signals sent to the returned process reach the
	// command: on FreeBSD jexec execs into it; on Linux it is a small shim
	// (started with a fixed, minimal environment: p.Env reaches only the
	// command, inside the jail) that asks the jail's init to start the
	// command and relays every catchable signal (a SIGKILL of the shim
	// does not reach the command, so callers kill the shim's process group).
	Command(name string, p Process) (*exec.Cmd, error)
	// Remove stops every process in the jail and removes it with its mounts.
	// Removing a jail that does not exist returns nil.
	Remove(ctx context.Context, name string) error
	// List returns the running jails with one command (or none).
	List(ctx context.Context) ([]Info, error)
}

// Starter is implemented by drivers that can start a command in a jail
// without any helper process on the host (the Linux driver: the jail's init
// starts it as its own child). A supervisor prefers it to Command for the
// container's main command: the container is then the supervisor and the
// jail, nothing else.
type Starter interface {
	// Start runs p in the running jail name with the given standard input,
	// output and error (nil: /dev/null). When the command exits, what is
	// left of its process group is killed. A jail that does not run is
	// ErrNotFound.
	Start(name string, p Process, stdin, stdout, stderr *os.File) (Proc, error)
}

// Proc is a command started by a Starter.
type Proc interface {
	// Pid is the command's pid as the host sees it (0 if unknown).
	Pid() int
	// Signal sends sig to the command.
	Signal(sig syscall.Signal) error
	// Wait waits for the command to exit and returns its wait status.
	Wait() (syscall.WaitStatus, error)
}
