// Command fakebsd stands in for FreeBSD programs the rc.d script starts,
// in the rc.d tests on Linux. Named "daemon" it is a small daemon(8):
// -P (its pidfile), -p (the child's), -r/-R (restart), -H, -o (output
// file), -t (title); it detaches, writes the pidfiles, runs the child,
// forwards SIGTERM to it, waits for it and removes the pidfiles, as
// daemon.c does. Named "zocker-reconcile" it is the service: `validate`
// exits 0; `serve ...` records its argv, records each SIGHUP, and exits 0
// on SIGTERM.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "daemon":
		daemon()
	case "zocker-reconcile":
		service()
	default:
		fmt.Fprintln(os.Stderr, "fakebsd: run me as daemon or zocker-reconcile")
		os.Exit(2)
	}
}

func daemon() {
	fs := flag.NewFlagSet("daemon", flag.ExitOnError)
	ppid := fs.String("P", "", "supervisor pidfile")
	cpid := fs.String("p", "", "child pidfile")
	_ = fs.Bool("r", false, "restart")
	_ = fs.Int("R", 0, "restart delay")
	_ = fs.Bool("H", false, "reopen on SIGHUP")
	out := fs.String("o", "", "output file")
	title := fs.String("t", "", "title")
	fs.Parse(os.Args[1:])
	if os.Getenv("FAKEBSD_DETACHED") == "" {
		// daemon(3): the caller returns at once, the daemon runs on in
		// its own session.
		c := exec.Command(os.Args[0], os.Args[1:]...)
		c.Env = append(os.Environ(), "FAKEBSD_DETACHED=1")
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "daemon:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	_ = title
	write(*ppid, os.Getpid())
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		os.Exit(1)
	}
	args := fs.Args()
	child := exec.Command(args[0], args[1:]...)
	child.Stdout, child.Stderr = f, f
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	if err := child.Start(); err != nil {
		fmt.Fprintln(f, "daemon:", err)
		os.Exit(1)
	}
	write(*cpid, child.Process.Pid)
	fmt.Fprintf(f, "daemon: %s\n", strings.Join(os.Args, " "))
	done := make(chan struct{})
	go func() { child.Wait(); close(done) }()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGTERM {
				child.Process.Signal(syscall.SIGTERM)
				<-done
				os.Remove(*cpid)
				os.Remove(*ppid)
				os.Exit(0)
			}
		case <-done:
			os.Remove(*cpid)
			os.Remove(*ppid)
			os.Exit(0)
		}
	}
}

func write(p string, pid int) {
	if p != "" {
		os.WriteFile(p, []byte(strconv.Itoa(pid)+"\n"), 0o600)
	}
}

func service() {
	if len(os.Args) > 1 && os.Args[1] == "validate" {
		os.Exit(0)
	}
	rec := os.Getenv("FAKEBSD_RECORD")
	os.WriteFile(rec+".argv", []byte(strings.Join(os.Args[1:], "\n")+"\n"), 0o600)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	for s := range sigs {
		if s == syscall.SIGTERM {
			os.Exit(0)
		}
		f, _ := os.OpenFile(rec+".hup", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		fmt.Fprintln(f, "HUP")
		f.Close()
	}
}
