package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// converge is how long a change may take to show: the debounce, a pass, and
// on the first pass an image import on a loaded 2-core machine.
const converge = 60 * time.Second

// TestServeLifecycle follows one container through serve: created from a
// new file, replaced on a command edit, kept through an invalid file that
// status names by file and line, pruned when its file is deleted.
func TestServeLifecycle(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	srv := h.start()

	argv1 := []string{"/bin/sleep", "100001"}
	h.write("c1.yaml", containerYAML("c1", argv1...))
	first := h.waitRunning("c1", argv1, converge)
	cmd1 := commandProcs(argv1, first.PID)
	t.Logf("created: ps pid %d, command pid %v", first.PID, cmd1)

	// Editing the command replaces the container: a new command, a new
	// process, and the old one gone.
	argv2 := []string{"/bin/sleep", "100002"}
	h.write("c1.yaml", containerYAML("c1", argv2...))
	second := h.waitRunning("c1", argv2, converge)
	if second.PID == first.PID {
		t.Errorf("replaced container kept pid %d", first.PID)
	}
	poll(t, 20*time.Second, "the old command to exit", func() (bool, string) {
		for _, p := range cmd1 {
			if alive(p) {
				return false, fmt.Sprintf("pid %d still alive", p)
			}
		}
		return true, ""
	})

	// Invalid YAML (a tab in the indentation of line 5) keeps the container
	// as it is, and the status names the file and the line.
	invalid := "apiVersion: zocker/v1\nkind: Container\nmetadata:\n  name: c1\n\tspec: {}\n"
	mark := srv.mark()
	h.write("c1.yaml", invalid)
	checkProblem := func(st service.Status) (bool, string) {
		f, ok := fileProblem(st, "c1.yaml")
		if !ok {
			return false, fmt.Sprintf("no c1.yaml among the files: %+v", st.Files)
		}
		if !f.Failed || len(f.Problems) == 0 {
			return false, fmt.Sprintf("c1.yaml not failed: %+v", f)
		}
		p := f.Problems[0]
		if !strings.HasSuffix(p.File, "/c1.yaml") || p.Line != 5 {
			return false, fmt.Sprintf("problem names %s:%d, want .../c1.yaml:5 (%s)", p.File, p.Line, p.Message)
		}
		return true, ""
	}
	poll(t, converge, "GET /status to name c1.yaml:5", func() (bool, string) {
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		return checkProblem(st)
	})
	// The pass that loaded the invalid file planned nothing for c1.
	planned := srv.waitLog(t, mark, converge, `msg="pass planned"`)
	if !strings.Contains(planned, "items=0") {
		t.Errorf("the pass after the invalid file planned work: %s", planned)
	}
	res := h.run("status", "-o", "json", "--listen", srv.addr)
	if res.code != 1 {
		t.Errorf("status with an invalid file: exit %d, want 1", res.code)
	}
	var st service.Status
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status -o json: %v: %s", err, res.stdout)
	}
	if ok, why := checkProblem(st); !ok {
		t.Errorf("status -o json: %s", why)
	}
	if p := srv.sighupPass(t); !strings.Contains(p, "items=0") {
		t.Errorf("a pass with the invalid file planned work: %s", p)
	}
	if kept := h.waitRunning("c1", argv2, 5*time.Second); kept.PID != second.PID {
		t.Errorf("invalid file: pid %d became %d", second.PID, kept.PID)
	}

	// Valid again (same spec: nothing to do), then deleted: pruned.
	h.write("c1.yaml", containerYAML("c1", argv2...))
	poll(t, converge, "c1.yaml to load again", func() (bool, string) {
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		if f, ok := fileProblem(st, "c1.yaml"); !ok || f.Failed {
			return false, fmt.Sprintf("%+v", f)
		}
		return true, ""
	})
	cmd2 := commandProcs(argv2, second.PID)
	h.remove("c1.yaml")
	h.waitGone("c1", converge)
	if ds := datasets(t, h.root+"/containers/c1"); ds != nil {
		t.Errorf("pruned container's dataset remains: %v", ds)
	}
	poll(t, 20*time.Second, "the pruned container's processes to exit", func() (bool, string) {
		for _, p := range append(cmd2, second.PID) {
			if alive(p) {
				return false, fmt.Sprintf("pid %d still alive", p)
			}
		}
		if s := supervisors(h.state, "c1"); len(s) > 0 {
			return false, fmt.Sprintf("supervisor %v still alive", s)
		}
		return true, ""
	})
}

// TestServeGitSyncSwap points serve at a current symlink that git-sync
// renames over to a new worktree: the new revision is applied and /status
// shows its hash.
func TestServeGitSyncSwap(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	base := filepath.Dir(h.man)
	revA, revB := testenv.RandomHex(20), testenv.RandomHex(20)
	worktree := func(rev string, argv ...string) {
		dir := mkdir(t, base, "sync", "worktrees", rev)
		writeFile(t, filepath.Join(dir, "images.yaml"), h.imageYAML())
		writeFile(t, filepath.Join(dir, "web.yaml"), containerYAML("web", argv...))
	}
	swap := func(rev string) {
		sync := filepath.Join(base, "sync")
		tmp := filepath.Join(sync, "current.tmp")
		if err := os.Symlink(filepath.Join("worktrees", rev), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(sync, "current")); err != nil {
			t.Fatal(err)
		}
	}
	argvA, argvB := []string{"/bin/sleep", "100011"}, []string{"/bin/sleep", "100012"}
	worktree(revA, argvA...)
	swap(revA)
	h.man = filepath.Join(base, "sync", "current")
	srv := h.start()
	a := h.waitRunning("web", argvA, converge)
	waitRevision := func(rev string) {
		poll(t, converge, "/status revision "+rev, func() (bool, string) {
			st, err := srv.status()
			if err != nil {
				return false, err.Error()
			}
			if st.Revision != rev || st.AppliedRevision != rev {
				return false, fmt.Sprintf("revision %q, applied %q", st.Revision, st.AppliedRevision)
			}
			return true, ""
		})
	}
	waitRevision(revA)

	worktree(revB, argvB...)
	swap(revB)
	b := h.waitRunning("web", argvB, converge)
	if a.PID == b.PID {
		t.Errorf("revision B's command change kept pid %d", a.PID)
	}
	waitRevision(revB)
}

// TestServeEmptyDirectoryPrunesNothing empties the watched directory: the
// containers keep running, the status shows the guard, and the guard is
// counted in zocker_prune_blocked_total.
func TestServeEmptyDirectoryPrunesNothing(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	argv := map[string][]string{"e1": {"/bin/sleep", "100021"}, "e2": {"/bin/sleep", "100022"}}
	for name, a := range argv {
		h.write(name+".yaml", containerYAML(name, a...))
	}
	srv := h.start()
	before := map[string]psRow{}
	for name, a := range argv {
		before[name] = h.waitRunning(name, a, converge)
	}
	for _, f := range []string{"images.yaml", "e1.yaml", "e2.yaml"} {
		h.remove(f)
	}
	poll(t, converge, "the empty-manifests guard in /status and /metrics", func() (bool, string) {
		fams, err := srv.metrics()
		if err != nil {
			return false, err.Error()
		}
		if v, why := value(fams, "zocker_prune_blocked_total", map[string]string{"reason": "empty-manifests"}); v <= 0 {
			return false, fmt.Sprintf("zocker_prune_blocked_total{reason=empty-manifests} = %v %s", v, why)
		}
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		for name := range argv {
			i := slices.IndexFunc(st.Objects, func(o service.ObjectStatus) bool { return o.Kind == "Container" && o.Name == name })
			if i < 0 {
				return false, "no status for container " + name
			}
			c, _ := st.Objects[i].Condition(service.ConditionStalled)
			if !c.Status || c.Reason != service.ReasonPruneBlocked || !strings.Contains(c.Message, "empty") {
				return false, fmt.Sprintf("container %s Stalled condition: %+v", name, c)
			}
		}
		return true, ""
	})
	// One more full pass, then everything is still there, untouched.
	srv.sighupPass(t)
	for name, a := range argv {
		if r := h.waitRunning(name, a, 5*time.Second); r.PID != before[name].PID {
			t.Errorf("container %s: pid %d became %d with an empty directory", name, before[name].PID, r.PID)
		}
		if ds := datasets(t, h.root+"/containers/"+name); len(ds) != 1 {
			t.Errorf("container %s: datasets %v", name, ds)
		}
	}
}

// TestServeKillMidPass kills serve with SIGKILL during an image import and
// again right after the first of three creates, and checks that a new serve
// converges: all containers running, one dataset and one supervisor each,
// one image, nothing left under ROOT/tmp.
func TestServeKillMidPass(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	argv := func(name string) []string { return []string{"/bin/sleep", "1000" + name[1:] + "3"} }
	h.write("k0.yaml", containerYAML("k0", argv("k0")...))

	srv := h.start()
	srv.waitLog(t, 0, converge, `msg="extracted tarball"`)
	if err := srv.stop(syscall.SIGKILL); err == nil {
		t.Fatal("serve exited 0 on SIGKILL")
	}
	t.Logf("killed during the import; ROOT/tmp then: %v", datasets(t, h.root+"/tmp"))

	srv = h.start()
	h.waitRunning("k0", argv("k0"), converge)
	mark := srv.mark()
	names := []string{"k0", "k1", "k2", "k3"}
	for _, n := range names[1:] {
		h.write(n+".yaml", containerYAML(n, argv(n)...))
	}
	line := srv.waitLog(t, mark, converge, `msg="created container"`)
	if err := srv.stop(syscall.SIGKILL); err == nil {
		t.Fatal("serve exited 0 on SIGKILL")
	}
	t.Logf("killed after: %s", line)

	h.start()
	for _, n := range names {
		h.waitRunning(n, argv(n), converge)
	}
	if got := datasets(t, h.root+"/tmp"); !slices.Equal(got, []string{h.root + "/tmp"}) {
		t.Errorf("ROOT/tmp holds %v, want only itself", got)
	}
	var want []string
	for _, n := range names {
		want = append(want, h.root+"/containers/"+n)
	}
	if got := datasets(t, h.root+"/containers"); len(got) == 0 || !slices.Equal(got[1:], want) {
		t.Errorf("containers: %v, want %v below ROOT/containers", got, want)
	}
	if got := datasets(t, h.root+"/images"); len(got) != 2 {
		t.Errorf("images: %v, want ROOT/images and exactly one image", got)
	}
	for _, n := range names {
		if s := supervisors(h.state, n); len(s) != 1 {
			t.Errorf("container %s has %d supervisors: %v", n, len(s), s)
		}
		if p := commandProcs(argv(n), 0); len(p) != 1 {
			t.Errorf("container %s's command runs %d times: %v", n, len(p), p)
		}
	}
}

// supStatus is the part of a supervisor's status.json the tests read.
type supStatus struct {
	SupervisorPID int `json:"supervisorPid"`
	PID           int `json:"pid"`
}

func readSupStatus(t *testing.T, stateDir, name string) supStatus {
	t.Helper()
	var s supStatus
	b, err := os.ReadFile(filepath.Join(stateDir, "containers", name, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("status.json of %s: %v", name, err)
	}
	return s
}

// TestServeRestartKeepsPIDs stops serve with SIGTERM (exit 0, containers
// keep running) and starts it again: it adopts the containers, whose
// supervisor and command pids do not change.
func TestServeRestartKeepsPIDs(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	names := []string{"r1", "r2"}
	argv := map[string][]string{"r1": {"/bin/sleep", "100031"}, "r2": {"/bin/sleep", "100032"}}
	for _, n := range names {
		h.write(n+".yaml", containerYAML(n, argv[n]...))
	}
	srv := h.start()
	before := map[string]psRow{}
	sup := map[string]supStatus{}
	cmds := map[string][]int{}
	for _, n := range names {
		before[n] = h.waitRunning(n, argv[n], converge)
		sup[n] = readSupStatus(t, h.state, n)
		cmds[n] = commandProcs(argv[n], before[n].PID)
	}
	srv.waitReady(t, converge)
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("serve on SIGTERM: %v (want exit 0)", err)
	}
	for _, n := range names {
		for _, p := range append([]int{sup[n].SupervisorPID, before[n].PID}, cmds[n]...) {
			if !alive(p) {
				t.Errorf("container %s: pid %d died with serve", n, p)
			}
		}
	}

	srv = h.start()
	srv.waitReady(t, converge)
	srv.sighupPass(t)
	for _, n := range names {
		r := h.waitRunning(n, argv[n], 10*time.Second)
		s := readSupStatus(t, h.state, n)
		if r.PID != before[n].PID || s.PID != sup[n].PID || s.SupervisorPID != sup[n].SupervisorPID {
			t.Errorf("container %s: pid %d, supervisor %d after the restart; before %d, %d", n, r.PID, s.SupervisorPID, before[n].PID, sup[n].SupervisorPID)
		}
		if got := commandProcs(argv[n], r.PID); !slices.Equal(got, cmds[n]) {
			t.Errorf("container %s: command pids %v, before %v", n, got, cmds[n])
		}
	}
	st, err := srv.status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.AllReady() {
		t.Errorf("not all Ready after the restart: %+v", st.Objects)
	}
}

// TestServeStartsContainerOnceItsImageIsImported declares an image and a
// container together and gives serve a long resync: the container must
// start once the import is done, not at the next periodic resync.
func TestServeStartsContainerOnceItsImageIsImported(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	h.write("images.yaml", h.imageYAML())
	argv := []string{"/bin/sleep", "100051"}
	h.write("w1.yaml", containerYAML("w1", argv...))
	srv := h.start("--resync", "5m")
	srv.waitLog(t, 0, converge, `msg="action done"`, "image=bb")
	h.waitRunning("w1", argv, 20*time.Second)
}
