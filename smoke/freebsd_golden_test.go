package smoke

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

var update = flag.Bool("update", false, "rewrite testdata/selftest-freebsd.golden")

// recorder records argv and answers like a FreeBSD host where every jail
// runs and racct is on; jls -j says "not found" once a jail was removed.
type recorder struct {
	mu      sync.Mutex
	calls   []string
	removed map[string]bool
}

func (r *recorder) Run(_ context.Context, c runner.Cmd) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, strings.Join(c.Argv, " "))
	switch {
	case c.Argv[0] == jail.SysctlPath:
		return []byte("1\n"), nil
	case c.Argv[0] == jail.JexecPath && len(c.Argv) == 1:
		return nil, &runner.CommandError{Argv: c.Argv, ExitCode: 1,
			Stderr: "usage: jexec [-l] [-d working-directory] [-u username | -U username] jail [command ...]\n"}
	case c.Argv[0] == jail.JlsPath && len(c.Argv) > 2 && c.Argv[1] == "-j" && r.removed[c.Argv[2]]:
		return nil, &runner.CommandError{Argv: c.Argv, ExitCode: 1, Stderr: `jls: jail "` + c.Argv[2] + `" not found`}
	case c.Argv[0] == jail.RctlPath && c.Argv[1] == "-r":
		return nil, &runner.CommandError{Argv: c.Argv, ExitCode: 1, Stderr: "rctl: failed to remove rule: No such process"}
	case c.Argv[0] == jail.RctlPath && c.Argv[1] == "-u":
		return []byte("memoryuse=1048576\npcpu=0\nmaxproc=1\n"), nil
	case c.Argv[0] == jail.JlsPath:
		return []byte(`{"__version": "2", "jail-information": {"jail": []}}`), nil
	}
	return nil, nil
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// noMounts: nothing left mounted, no alias left (jail -r did its job).
type noMounts struct{}

func (noMounts) MountedAt(string) (string, bool, error) { return "", false, nil }
func (noMounts) HasAddr(string, string) (bool, error)   { return false, nil }

// TestSelftestFreeBSDGolden runs the FreeBSD side of every selftest step
// that reaches jail(8), jexec, jls or rctl — with the jail specs the engine
// derives from the selftest's own manifests — against a recording runner,
// and compares the argv of each step and the files generated with
// testdata/selftest-freebsd.golden. It is as far as the FreeBSD path can
// be tested without FreeBSD.
func TestSelftestFreeBSDGolden(t *testing.T) {
	const id = "0123abcd"
	base := t.TempDir()
	host := filepath.Join(base, "hostdata")
	mdir := filepath.Join(base, "manifests")
	for _, d := range []string{host, mdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(base, 0o755)
	if err := os.WriteFile(filepath.Join(mdir, "selftest.yaml"), []byte(Manifests(id, "/var/run/zocker/selftest-"+id+"/image.tar", host, true)+
		AliasManifest(id, Alias{Interface: "em0", Address: "192.0.2.50/24"})), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := manifests.Load(mdir, manifests.LoadOptions{NumCPU: 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Problems {
		if p.IsError() {
			t.Fatalf("selftest manifests: %s", p)
		}
	}
	inh, none, loop, vol, _ := Names(id)
	alias := "st" + id + "-alias"
	roots := filepath.Join(base, "containers")
	volPath := filepath.Join(base, "volumes", vol)
	if err := os.MkdirAll(volPath, 0o755); err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(base, "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644)
	rec := &recorder{removed: map[string]bool{}}
	state := filepath.Join(base, "state")
	d := jail.NewFreeBSD(state, rec, nil, jail.FreeBSDOptions{HostFiles: []string{resolv}, Probe: noMounts{}})
	img := engine.ImageConfig{Cmd: []string{"/bin/sh"}}

	var golden bytes.Buffer
	norm := func(s string) string { return strings.ReplaceAll(s, base, "/BASE") }
	step := func(name string, lines ...string) {
		fmt.Fprintf(&golden, "== %s\n", name)
		for _, l := range lines {
			fmt.Fprintln(&golden, norm(l))
		}
	}
	files := func() {
		ents, _ := os.ReadDir(filepath.Join(state, "jails"))
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		for _, n := range names {
			b, _ := os.ReadFile(filepath.Join(state, "jails", n))
			fmt.Fprintf(&golden, "-- file jails/%s\n%s", n, norm(string(b)))
			if !bytes.HasSuffix(b, []byte("\n")) {
				golden.WriteString("\n")
			}
		}
	}
	ctx := context.Background()
	procs := map[string]jail.Process{}
	for i, name := range []string{inh, none, loop, alias} {
		root := filepath.Join(roots, name)
		os.MkdirAll(root, 0o755)
		cfg, err := engine.SupervisorConfig(set.Containers[name], img, engine.RuntimeInputs{
			Root: root, VolumePaths: map[string]string{vol: volPath}, Address: fmt.Sprintf("127.0.254.%d", i+2),
			LoopbackInterface: "lo0",
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Create(ctx, cfg.Jail); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		cmd, err := d.Command(name, cfg.Process)
		if err != nil {
			t.Fatal(err)
		}
		procs[name] = cfg.Process
		step("apply: create and start "+name, append(rec.take(), "start: "+strings.Join(cmd.Args, " "))...)
	}
	files()
	var lines []string
	for _, name := range []string{inh, none, loop} {
		p := procs[name]
		p.Argv = []string{"/bin/echo", "exec-ok"}
		cmd, err := d.Command(name, p)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, append(rec.take(), "exec: "+strings.Join(cmd.Args, " "))...)
	}
	step("exec", lines...)
	arts := FreeBSDRaw(rec)(ctx, []string{inh})
	var raw []string
	for _, a := range arts {
		raw = append(raw, "raw: "+a.Name)
	}
	step("limits", append(rec.take(), raw...)...)
	cmd, err := d.Command(inh, procs[inh])
	if err != nil {
		t.Fatal(err)
	}
	step("restart after SIGKILL", append(rec.take(), "start: "+strings.Join(cmd.Args, " "))...)
	if err := d.Remove(ctx, inh); err != nil {
		t.Fatal(err)
	}
	rec.removed[inh] = true
	step("stop", rec.take()...)
	for _, n := range []string{none, loop, alias} {
		if err := d.Remove(ctx, n); err != nil {
			t.Fatal(err)
		}
		rec.removed[n] = true
	}
	step("prune", rec.take()...)
	files()

	const path = "testdata/selftest-freebsd.golden"
	if *update {
		if err := os.WriteFile(path, golden.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./smoke/ -run FreeBSDGolden -update)", err)
	}
	if golden.String() != string(want) {
		t.Errorf("FreeBSD selftest steps differ from %s:\n%s", path, golden.String())
	}
}
