// Command zocker-reconcile runs containers on FreeBSD jails and ZFS from a
// directory of declarative manifests. This package only parses flags, wires
// the parts together and formats output; the logic lives in the packages.
// It is over the house's 1,500 lines because it has one small file per
// command (about twenty) with their help text; none holds policy.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

func main() {
	// Nothing this process starts (zfs, supervisors, jexec, a foreground
	// container) may inherit a descriptor its own starter left open. The
	// internal commands ("__jail-init", "__supervise", ...) are started by
	// this program itself with the descriptors they need (a jail init's
	// config pipe, the exec shim's request, a supervisor's ready pipe); a
	// supervisor closes the rest itself (supervisor.Run).
	if len(os.Args) < 2 || !strings.HasPrefix(os.Args[1], "__") {
		supervisor.CloseInherited()
	}
	os.Exit(run(os.Args[1:]))
}

// run executes the CLI and returns the process exit code.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	sub, _, _ := root.Find(args)
	ctx, signalled, stop := interruptible(sub)
	defer stop()
	err := root.ExecuteContext(ctx)
	if sig := signalled(); sig != 0 {
		// The command saw its context cancelled and undid its work; its
		// error is that cancellation, not news.
		fmt.Fprintf(os.Stderr, "zocker-reconcile: interrupted by %s; the work in progress was undone\n", signalName(sig))
		return 128 + int(sig)
	}
	if err == nil {
		return 0
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintln(os.Stderr, "zocker-reconcile:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(os.Stderr, "zocker-reconcile:", err)
	return 1
}

// exitCode carries a specific exit status (plan's 2, status's 1) out of a command.
type exitCode struct {
	code int
	err  error // printed when set
}

func (e *exitCode) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// withCode returns an error that makes the process exit with code, printing err if non-nil.
func withCode(code int, err error) error { return &exitCode{code: code, err: err} }
