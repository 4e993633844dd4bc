package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeRow is one row of the README's command table: the commands its
// first cell names and the exit statuses its last cell documents (nil for
// "the command's").
type readmeRow struct {
	commands []string
	codes    []int
	text     string
	// commandsOwn is set when the command passes its command's status on.
	commandsOwn bool
}

// readmeCommandTable parses the table under "## Command line".
func readmeCommandTable(t *testing.T) []readmeRow {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tick := regexp.MustCompile("`([a-z]+)[^`]*`")
	num := regexp.MustCompile(`\b\d+\b`)
	var rows []readmeRow
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Command line"
		case in && len(rows) > 0 && !strings.HasPrefix(line, "|"):
			in = false // the end of the first table (the Zocker one follows)
		case in && strings.HasPrefix(line, "| `"):
			cells := strings.Split(strings.ReplaceAll(line, `\|`, "/"), "|")
			first, last := cells[1], cells[len(cells)-2]
			var r readmeRow
			r.text = strings.TrimSpace(last)
			for _, m := range tick.FindAllStringSubmatch(first, -1) {
				r.commands = append(r.commands, m[1])
			}
			// "2 changes pending" and "130/143": every number is a status,
			// except sizes and durations in the text ("10 MiB").
			r.commandsOwn = strings.Contains(last, "the command's")
			for _, n := range num.FindAllString(last, -1) {
				code, _ := strconv.Atoi(n)
				if code == 128 { // "128+N for signal N"
					continue
				}
				if !slices.Contains(r.codes, code) {
					r.codes = append(r.codes, code)
				}
			}
			rows = append(rows, r)
		}
	}
	if len(rows) < 10 {
		t.Fatalf("found %d rows in the README's command table", len(rows))
	}
	return rows
}

// TestReadmeCommandTable runs a case for every exit status the README's
// command table documents, for every command it names, and checks the
// command exits with it: the table and the binary cannot drift apart.
func TestReadmeCommandTable(t *testing.T) {
	t.Parallel()
	rows := readmeCommandTable(t)
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	h.write("c.yaml", containerYAML("c", "/bin/sleep", "101201"))
	missing := []string{"--root", h.root + "-missing", "--state-dir", filepath.Join(t.TempDir(), "s"), "--manifests", h.man}
	badDir := mkdir(t, t.TempDir(), "bad")
	writeFile(t, filepath.Join(badDir, "x.yaml"), "apiVersion: zocker/v1\nkind: Container\nmetadata: {name: x}\nspec: {image: bb, bogus: 1}\n")
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM bb\nRUN echo built\n")
	slowDir := t.TempDir()
	writeFile(t, filepath.Join(slowDir, "Zockerfile"), "FROM bb\nRUN /bin/sleep 101299\n")
	outside := mkdir(t, t.TempDir(), "outside")
	writeFile(t, filepath.Join(outside, "slow.yaml"), fmt.Sprintf("apiVersion: zocker/v1\nkind: Image\nmetadata: {name: slow}\nspec:\n  build: {context: %s}\n", slowDir))

	type tc struct {
		cmd  string
		code int
		run  func() result
	}
	run := func(args ...string) func() result { return func() result { return h.run(args...) } }
	runMissing := func(args ...string) func() result { return func() result { return h.runWith(missing, args...) } }
	cases := []tc{
		{"version", 0, run("version")},
		{"init", 0, run("init")},
		{"init", 1, func() result {
			return h.runWith([]string{"--root", h.root + "-missing/x", "--state-dir", filepath.Join(t.TempDir(), "s")}, "init")
		}},
		{"validate", 0, run("validate")},
		{"validate", 1, run("validate", badDir)},
		{"plan", 2, run("plan")},
		{"plan", 1, runMissing("plan")},
		{"apply", 0, run("apply")},
		{"apply", 1, runMissing("apply")},
		{"plan", 0, run("plan")},
		{"status", 0, func() result {
			var res result
			poll(t, converge, "status --local 0", func() (bool, string) {
				res = h.run("status", "--local")
				return res.code == 0, res.stdout + res.stderr
			})
			return res
		}},
		{"status", 1, runMissing("status", "--local")},
		{"ps", 0, run("ps")},
		{"ps", 1, runMissing("ps")},
		{"images", 0, run("images")},
		{"images", 1, run("images", "nosuchtag")},
		{"volumes", 0, run("volumes")},
		{"volumes", 1, runMissing("volumes")},
		{"logs", 0, run("logs", "c")},
		{"logs", 1, run("logs", "nosuch")},
		{"exec", 7, run("exec", "c", "--", "/bin/sh", "-c", "exit 7")},
		{"inspect", 0, run("inspect", "bb")},
		{"inspect", 1, run("inspect", "nosuch")},
		{"import", 0, run("import", "-t", "bbcopy", h.tarball)},
		{"import", 1, run("import", "-t", "nothing", "/nonexistent.tar")},
		{"build", 0, run("build", "-t", "built", ctxDir)},
		{"build", 1, run("build", "-t", "built", "/nonexistent")},
		{"tag", 0, run("tag", "bb", "bb2")},
		{"tag", 1, run("tag", "nosuch", "bb3")},
		{"rmi", 0, run("rmi", "bb2")},
		{"rmi", 1, run("rmi", "nosuch")},
		{"gc", 0, run("gc", "--dry-run")},
		{"gc", 1, runMissing("gc")},
		{"build", 143, func() result {
			return h.interrupt(syscall.SIGTERM, []string{"/bin/sleep", "101299"}, "build", "-t", "slow", slowDir)
		}},
		{"build", 130, func() result {
			return h.interrupt(syscall.SIGINT, []string{"/bin/sleep", "101299"}, "build", "-t", "slow", slowDir)
		}},
		{"apply", 130, func() result {
			return h.interrupt(syscall.SIGINT, []string{"/bin/sleep", "101299"}, "apply", filepath.Join(outside, "slow.yaml"))
		}},
		{"apply", 143, func() result {
			return h.interrupt(syscall.SIGTERM, []string{"/bin/sleep", "101299"}, "apply", filepath.Join(outside, "slow.yaml"))
		}},
		{"run", 7, run("run", "-n", "r1", "bb", "/bin/sh", "-c", "exit 7")},
		{"run", 0, run("run", "-d", "-n", "r2", "bb", "/bin/sleep", "101202")},
		{"run", 1, run("run", "-n", "r3", "nosuchimage", "/bin/true")},
		{"create", 0, run("create", "-n", "cr1", "bb", "/bin/sleep", "101203")},
		{"create", 1, run("create", "-n", "cr9", "nosuchimage")},
		{"start", 0, run("start", "cr1")},
		{"start", 1, run("start", "nosuch")},
		{"start", 7, func() result {
			if res := h.run("create", "-n", "cr2", "bb", "/bin/sh", "-c", "exit 7"); res.code != 0 {
				return res
			}
			return h.run("start", "-a", "cr2")
		}},
		{"stop", 0, run("stop", "r2")},
		{"stop", 1, run("stop", "nosuch")},
		{"commit", 0, run("commit", "cr1", "committed")},
		{"commit", 1, run("commit", "nosuch", "x")},
		{"diff", 0, run("diff", "cr1")},
		{"diff", 1, run("diff", "nosuch")},
		{"save", 0, run("save", "-o", filepath.Join(t.TempDir(), "bb.zar"), "bb")},
		{"save", 1, run("save", "-o", filepath.Join(t.TempDir(), "none.zar"), "nosuch")},
		{"load", 0, func() result {
			f := filepath.Join(t.TempDir(), "bb2.zar")
			if res := h.run("save", "-o", f, "bb"); res.code != 0 {
				return res
			}
			return h.run("load", "-i", f)
		}},
		{"load", 1, run("load", "-i", "/nonexistent.zar")},
		{"rm", 0, run("rm", "-f", "r1", "r2", "cr1", "cr2")},
		{"rm", 1, run("rm", "nosuch")},
		{"push", 0, run("push", "bb", "--repository", "file://"+filepath.Join(t.TempDir(), "repo"))},
		{"push", 1, run("push", "nosuch", "--repository", "file://"+filepath.Join(t.TempDir(), "repo"))},
		{"serve", 1, runMissing("serve", "--listen", freeAddr(t))},
		{"serve", 0, func() result {
			srv := h.start()
			srv.waitReady(t, converge)
			if err := srv.stop(syscall.SIGTERM); err != nil {
				return result{code: -1, stderr: err.Error()}
			}
			return result{code: 0}
		}},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		res := c.run()
		if res.code != c.code {
			t.Errorf("%s case: exit %d, want %d\nstdout: %.2000s\nstderr: %.2000s", c.cmd, res.code, c.code, res.stdout, res.stderr)
		}
		covered[fmt.Sprintf("%s %d", c.cmd, c.code)] = true
	}
	for _, r := range rows {
		for _, cmd := range r.commands {
			if r.commandsOwn && !covered[cmd+" 7"] {
				// "the command's": a case whose command exits 7.
				t.Errorf("README row %q (%s): no case of the command's own status", cmd, r.text)
			}
			for _, code := range r.codes {
				if (cmd == "import" || cmd == "tag" || cmd == "rmi" || cmd == "gc") && (code == 130 || code == 143) {
					// One row for the image commands: build and apply carry
					// the interrupt cases (an import of the test tarball is
					// over before a signal can be aimed at it).
					continue
				}
				if !covered[fmt.Sprintf("%s %d", cmd, code)] {
					t.Errorf("README documents exit %d for %s (%q): no case checks it", code, cmd, r.text)
				}
			}
		}
	}
}

// interrupt starts the command, waits for argv to run (a RUN step), sends
// sig, and returns how the command exited.
func (h *host) interrupt(sig syscall.Signal, argv []string, args ...string) result {
	h.t.Helper()
	cmd := exec.Command(h.bin, append(h.globals(), args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	poll(h.t, converge, fmt.Sprintf("%q running", argv), func() (bool, string) {
		return len(commandProcs(argv, 0)) > 0, ""
	})
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(converge):
		cmd.Process.Kill()
		<-done
		return result{code: -1, stderr: "did not exit within a minute of " + sig.String()}
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if p := commandProcs(argv, 0); len(p) > 0 {
		h.t.Errorf("%v survived %s: %v", argv, sig, p)
	}
	return result{code: code, stdout: out.String()}
}
