package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
)

// ttySession is a pseudo-terminal given to a foreground container (run -t):
// the command gets its slave side; this process relays the caller's
// terminal (raw, so ^C and the like reach the command) to the master side.
type ttySession struct {
	stdio   supervisor.Stdio
	master  *os.File
	slave   *os.File
	restore func()
	out     chan struct{}
	winch   chan os.Signal
}

// openTTY opens the pseudo-terminal; with stdin the caller's input is
// relayed to it.
func openTTY(stdin bool) (*ttySession, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	t := &ttySession{master: master, slave: slave, restore: func() {}, out: make(chan struct{})}
	t.stdio = supervisor.Stdio{Stdin: slave, Stdout: slave, Stderr: slave, TTY: true}
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		_ = pty.InheritSize(os.Stdin, master)
		t.winch = make(chan os.Signal, 1)
		signal.Notify(t.winch, syscall.SIGWINCH)
		go func() {
			for range t.winch {
				_ = pty.InheritSize(os.Stdin, master)
			}
		}()
		if stdin {
			if old, err := term.MakeRaw(in); err == nil {
				t.restore = func() { _ = term.Restore(in, old) }
			}
		}
	}
	if stdin {
		go func() { _, _ = io.Copy(master, os.Stdin) }()
	}
	go func() {
		defer close(t.out)
		_, _ = io.Copy(os.Stdout, master)
	}()
	return t, nil
}

// close gives the output relay a moment to drain what the command wrote
// and puts the caller's terminal back as it was.
func (t *ttySession) close() {
	t.slave.Close()
	select {
	case <-t.out:
	case <-time.After(500 * time.Millisecond):
	}
	t.master.Close()
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	t.restore()
}
