package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/service"
)

// adhocRow is what the ad-hoc tests read of `ps -a -o json`.
type adhocRow struct {
	Name     string   `json:"name"`
	State    string   `json:"state"`
	Origin   string   `json:"origin"`
	ExitCode *int     `json:"exitCode"`
	PID      int      `json:"pid"`
	Command  []string `json:"command"`
}

func (h *host) adhocPS() map[string]adhocRow {
	h.t.Helper()
	var rows []adhocRow
	if err := json.Unmarshal([]byte(h.must("ps", "-a", "-o", "json")), &rows); err != nil {
		h.t.Fatal(err)
	}
	m := map[string]adhocRow{}
	for _, r := range rows {
		m[r.Name] = r
	}
	return m
}

// adhocHost is a host with the busybox image tagged base, as the seed's
// tutorial has it, whose containers made with run are removed (rm -f)
// before the host's own teardown: the reconciler's final prune never
// touches them.
func adhocHost(t *testing.T) *host {
	h := newHost(t)
	h.must("import", "-t", "bb", h.tarball)
	h.must("tag", "bb", "base")
	t.Cleanup(func() {
		var rows []adhocRow
		res := h.run("ps", "-a", "-o", "json")
		if json.Unmarshal([]byte(res.stdout), &rows) != nil {
			return
		}
		for _, r := range rows {
			if r.Origin == "cli" {
				h.run("rm", "-f", r.Name)
			}
		}
	})
	return h
}

// processesWith returns the pids whose command line holds s.
func processesWith(s string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(b), s) {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// lines counts the lines of a file (0 when it does not exist).
func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// TestAdHocTutorial follows the seed's tutorial (Zocker's own commands) on
// the busybox image: a foreground run with its output and exit code, ps -a,
// rm; a detached run writing into a host directory, stop, start, rm -f,
// after which no dataset, jail, cgroup, mount or process is left.
func TestAdHocTutorial(t *testing.T) {
	t.Parallel()
	h := adhocHost(t)

	res := h.run("run", "-n", "test", "base", "echo hello; exit 3")
	if res.stdout != "hello\n" || res.code != 3 {
		t.Fatalf("run -n test: stdout %q, exit %d (want hello, 3); stderr: %s", res.stdout, res.code, res.stderr)
	}
	row := h.adhocPS()["test"]
	if row.State != "exited (3)" || row.ExitCode == nil || *row.ExitCode != 3 || row.Origin != "cli" {
		t.Errorf("ps -a: test is %+v, want exited (3) from cli", row)
	}
	if !strings.Contains(h.must("ps", "-a"), "exited (3)") {
		t.Errorf("ps -a table lacks exited (3)")
	}
	if _, listed := h.adhocPS()["test"]; !listed {
		t.Fatal("test is not listed by ps -a")
	}
	if strings.Contains(h.must("ps"), "test") {
		t.Errorf("ps without -a lists the exited container")
	}
	h.must("rm", "test")
	if ds := datasets(t, h.root+"/containers/test"); ds != nil {
		t.Errorf("after rm: datasets %v", ds)
	}

	hostdir := t.TempDir()
	out := filepath.Join(hostdir, "out")
	script := "while true; do date >> /logs/out; sleep 1; done"
	if got := strings.TrimSpace(h.must("run", "-d", "-n", "web", "-v", hostdir+":/logs:rw", "base", script)); got != "web" {
		t.Errorf("run -d printed %q, want the name", got)
	}
	poll(t, 30*time.Second, "web to write into the host directory", func() (bool, string) {
		return lines(out) >= 2, fmt.Sprintf("%d lines", lines(out))
	})
	if r := h.adhocPS()["web"]; r.State != "running" || r.Origin != "cli" {
		t.Errorf("ps: web is %+v", r)
	}
	h.must("stop", "web")
	if pids := processesWith(script); len(pids) > 0 {
		t.Errorf("after stop: processes %v still run the script", pids)
	}
	// The supervisor releases its lock after removing the jail, then exits.
	poll(t, 10*time.Second, "web's supervisor to exit", func() (bool, string) {
		pids := supervisors(h.state, "web")
		return len(pids) == 0, fmt.Sprintf("supervisor %v still runs", pids)
	})
	if r := h.adhocPS()["web"]; r.State != "stopped" {
		t.Errorf("after stop: web is %+v", r)
	}
	stopped := lines(out)
	h.must("start", "web")
	poll(t, 30*time.Second, "web to write again after start", func() (bool, string) {
		return lines(out) > stopped, fmt.Sprintf("%d lines, %d at stop", lines(out), stopped)
	})
	if res := h.run("rm", "web"); res.code == 0 || !strings.Contains(res.stderr, "running") {
		t.Errorf("rm of a running container: exit %d, %s", res.code, res.stderr)
	}
	h.must("rm", "-f", "web")
	if ds := datasets(t, h.root+"/containers/web"); ds != nil {
		t.Errorf("after rm -f: datasets %v", ds)
	}
	if pids := processesWith(script); len(pids) > 0 {
		t.Errorf("after rm -f: processes %v", pids)
	}
	if _, err := os.Stat(filepath.Join(h.state, "jails", "web.pid")); !os.IsNotExist(err) {
		t.Errorf("after rm -f: the jail's pid file is there (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(h.state, "containers", "web")); !os.IsNotExist(err) {
		t.Errorf("after rm -f: the container's state directory is there (%v)", err)
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*/web.*")
	more, _ := filepath.Glob("/sys/fs/cgroup/web.*")
	for _, cg := range append(cgroups, more...) {
		t.Errorf("after rm -f: cgroup %s is left", cg)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, hostdir) || strings.Contains(l, h.root+"/containers/web") {
			t.Errorf("after rm -f: mount left: %s", l)
		}
	}
}

// TestAdHocExitCodes: run exits with its command's code (128+N for signal
// N), and run --rm leaves nothing behind.
func TestAdHocExitCodes(t *testing.T) {
	t.Parallel()
	h := adhocHost(t)
	for _, c := range []struct {
		cmd  string
		code int
	}{{"true", 0}, {"exit 1", 1}, {"exit 3", 3}, {"no-such-command", 127}, {"kill -9 $$", 137}} {
		res := h.run("run", "--rm", "base", c.cmd)
		if res.code != c.code {
			t.Errorf("run --rm base %q: exit %d, want %d; stderr: %s", c.cmd, res.code, c.code, res.stderr)
		}
	}
	if ds := datasets(t, h.root+"/containers"); len(ds) != 1 {
		t.Errorf("run --rm left datasets: %v", ds)
	}
	if rows := h.adhocPS(); len(rows) != 0 {
		t.Errorf("run --rm left containers: %+v", rows)
	}
	ents, _ := os.ReadDir(filepath.Join(h.state, "containers"))
	if len(ents) != 0 {
		t.Errorf("run --rm left state directories: %v", ents)
	}
	if pids, _ := filepath.Glob(filepath.Join(h.state, "jails", "*.pid")); len(pids) != 0 {
		t.Errorf("run --rm left jails: %v", pids)
	}
	// create, then start -a: in the foreground with the command's code.
	h.must("create", "-n", "job", "base", "echo job; exit 6")
	if r := h.adhocPS()["job"]; r.State != "created" {
		t.Errorf("created: %+v", r)
	}
	if res := h.run("start", "-a", "job"); res.stdout != "job\n" || res.code != 6 {
		t.Errorf("start -a job: %q exit %d: %s", res.stdout, res.code, res.stderr)
	}
	h.must("rm", "job")
	// stop -t: a command that ignores SIGTERM is killed after 1 s, not
	// after the default 10 s.
	h.must("run", "-d", "-n", "stubborn", "base", "trap '' TERM; while :; do sleep 1; done")
	start := time.Now()
	h.must("stop", "-t", "1", "stubborn")
	if took := time.Since(start); took > 9*time.Second {
		t.Errorf("stop -t 1 took %s", took)
	}
	if r := h.adhocPS()["stubborn"]; r.State != "stopped" {
		t.Errorf("stubborn after stop -t 1: %+v", r)
	}
	h.must("rm", "stubborn")
	// run -d --rm: removed once its command is done.
	h.must("run", "-d", "--rm", "-n", "gone", "base", "sleep 1; exit 2")
	poll(t, 30*time.Second, "run -d --rm to remove its container", func() (bool, string) {
		if ds := datasets(t, h.root+"/containers/gone"); ds != nil {
			return false, fmt.Sprintf("datasets %v", ds)
		}
		if _, err := os.Stat(filepath.Join(h.state, "containers", "gone")); !os.IsNotExist(err) {
			return false, "state directory still there"
		}
		return len(supervisors(h.state, "gone")) == 0, "supervisor still runs"
	})
	// One argument is a shell command line; several are the argv; none is the image's CMD.
	if res := h.run("run", "--rm", "base", "/bin/echo", "a  b", "$HOME"); res.stdout != "a  b $HOME\n" {
		t.Errorf("argv form: %q %s", res.stdout, res.stderr)
	}
}

// TestAdHocBesideServe: serve on a manifest directory while containers made
// with run exist never lists, stops or prunes them, also with --allow-empty
// and an empty directory; a manifest declaring one of their names is
// Stalled, and rm, stop and start refuse a declared container naming its file.
func TestAdHocBesideServe(t *testing.T) {
	t.Parallel()
	h := adhocHost(t)
	h.must("run", "-d", "-n", "keep", "base", "sleep 100031")
	h.must("create", "-n", "idle", "base", "true")
	if res := h.run("run", "-n", "done", "base", "exit 4"); res.code != 4 {
		t.Fatalf("run -n done: exit %d: %s", res.code, res.stderr)
	}
	keep := h.adhocPS()["keep"]
	if keep.State != "running" || keep.PID <= 0 {
		t.Fatalf("keep: %+v", keep)
	}
	h.write("images.yaml", h.imageYAML())
	argv := []string{"/bin/sleep", "100032"}
	h.write("d1.yaml", containerYAML("d1", argv...))
	srv := h.start()
	h.waitRunning("d1", argv, converge)
	srv.sighupPass(t)

	// plan and status do not know them.
	plan := h.run("plan")
	for _, name := range []string{"keep", "idle", "done"} {
		if strings.Contains(plan.stdout, name) {
			t.Errorf("plan lists %s: %s", name, plan.stdout)
		}
	}
	st, err := srv.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Objects {
		if o.Name == "keep" || o.Name == "idle" || o.Name == "done" {
			t.Errorf("status lists %s/%s", o.Kind, o.Name)
		}
	}

	// A declared name in use by run: Stalled, never taken over.
	h.write("keep.yaml", containerYAML("keep", "/bin/sleep", "100033"))
	poll(t, converge, "Container/keep Stalled", func() (bool, string) {
		st, err := srv.status()
		if err != nil {
			return false, err.Error()
		}
		i := slices.IndexFunc(st.Objects, func(o service.ObjectStatus) bool { return o.Kind == "Container" && o.Name == "keep" })
		if i < 0 {
			return false, "no status"
		}
		c, _ := st.Objects[i].Condition(service.ConditionStalled)
		if !c.Status || !strings.Contains(c.Message, "name in use by a container made with run") {
			return false, fmt.Sprintf("%+v", c)
		}
		return true, ""
	})
	h.remove("keep.yaml")

	// The ad-hoc commands refuse a declared container, naming its file.
	for _, args := range [][]string{{"rm", "-f", "d1"}, {"stop", "d1"}, {"start", "d1"}} {
		if res := h.run(args...); res.code == 0 || !strings.Contains(res.stderr, "d1.yaml") {
			t.Errorf("%v on a declared container: exit %d, %s", args, res.code, res.stderr)
		}
	}

	// An empty directory with --allow-empty prunes d1, and nothing of run's.
	if err := srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	h.start("--manifests", h.empty, "--allow-empty")
	h.waitGone("d1", converge)
	h.srv.sighupPass(t)
	rows := h.adhocPS()
	if r := rows["keep"]; r.State != "running" || r.PID != keep.PID {
		t.Errorf("keep after serve with an empty directory: %+v (pid was %d)", r, keep.PID)
	}
	if r := rows["idle"]; r.State != "created" {
		t.Errorf("idle: %+v", r)
	}
	if r := rows["done"]; r.State != "exited (4)" {
		t.Errorf("done: %+v", r)
	}
	for _, name := range []string{"keep", "idle", "done"} {
		if ds := datasets(t, h.root+"/containers/"+name); len(ds) != 1 {
			t.Errorf("%s: datasets %v", name, ds)
		}
	}
	if err := h.srv.stop(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
}

// TestAdHocCommitDiff: diff shows a file added, changed and removed, the
// same on every call; commit makes an image whose containers see the file.
func TestAdHocCommitDiff(t *testing.T) {
	t.Parallel()
	h := adhocHost(t)
	h.must("run", "-n", "c1", "base", "echo written-by-c1 > /file; echo x >> /etc/passwd; rm /bin/vi")
	diff := h.must("diff", "c1")
	for _, want := range []string{"A /file\n", "C /etc/passwd\n", "D /bin/vi\n", "C /bin\n"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	if again := h.must("diff", "c1"); again != diff {
		t.Errorf("diff differs on a second call:\n%s\n---\n%s", diff, again)
	}
	var js []struct{ Kind, Path string }
	if err := json.Unmarshal([]byte(h.must("diff", "-o", "json", "c1")), &js); err != nil || len(js) != strings.Count(diff, "\n") {
		t.Errorf("diff -o json: %v %+v", err, js)
	}
	id := strings.TrimSpace(h.must("commit", "--change", "ENV GREETING=hi", "c1", "newtag"))
	if len(id) != 64 {
		t.Fatalf("commit printed %q", id)
	}
	if res := h.run("run", "--rm", "newtag", "cat", "/file"); res.stdout != "written-by-c1\n" || res.code != 0 {
		t.Errorf("run --rm newtag cat /file: %q exit %d: %s", res.stdout, res.code, res.stderr)
	}
	if res := h.run("run", "--rm", "newtag", "echo $GREETING"); res.stdout != "hi\n" {
		t.Errorf("the --change ENV: %q %s", res.stdout, res.stderr)
	}
	// The commit owes nothing to its container: rm works, the image stays.
	h.must("rm", "c1")
	if got, why := h.imageID("newtag"); got != id {
		t.Errorf("newtag after rm c1: %q %s", got, why)
	}
	// A running container can be committed too.
	h.must("run", "-d", "-n", "live", "base", "echo live > /live; sleep 100041")
	poll(t, 30*time.Second, "live to write /live", func() (bool, string) {
		return strings.Contains(h.must("diff", "live"), "A /live\n"), "no A /live yet"
	})
	h.must("commit", "live", "livetag")
	if res := h.run("run", "--rm", "livetag", "cat", "/live"); res.stdout != "live\n" {
		t.Errorf("commit of a running container: %q %s", res.stdout, res.stderr)
	}
	if r := h.adhocPS()["live"]; r.State != "running" {
		t.Errorf("live after commit: %+v", r)
	}
}

// TestAdHocSaveLoad: save on one root and load on another pool give the
// same image IDs and identical trees; a truncated or tampered archive is
// refused and leaves nothing.
func TestAdHocSaveLoad(t *testing.T) {
	t.Parallel()
	h := adhocHost(t)
	h.must("run", "-n", "c1", "base", "echo saved > /file")
	h.must("commit", "c1", "child")
	archive := filepath.Join(t.TempDir(), "images.tar")
	h.must("save", "-o", archive, "child", "base")
	if res := h.run("save", "child"); res.code != 0 || len(res.stdout) == 0 {
		t.Errorf("save to a pipe: exit %d, %d bytes", res.code, len(res.stdout))
	}

	other := secondPoolHost(t, h)
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.tar")
	// One byte in the middle of the base image's stream (tar: a 512-byte
	// header, then the data).
	baseID, why := h.imageID("base")
	if baseID == "" {
		t.Fatal(why)
	}
	i := strings.Index(string(data), "images/"+baseID+"/stream") + 512 + 1<<20
	if i < 1<<20 || i >= len(data) {
		t.Fatalf("no base stream of more than 1 MiB in the archive")
	}
	for name, b := range map[string][]byte{
		"truncated": data[:len(data)/2],
		"tampered":  append(append(append([]byte{}, data[:i]...), data[i]^0xff), data[i+1:]...),
	} {
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if res := other.run("load", "-i", bad); res.code == 0 {
			t.Errorf("load of a %s archive succeeded", name)
		}
		if ds := datasets(t, other.root+"/images"); len(ds) > 1 {
			t.Errorf("load of a %s archive left %v", name, ds)
		}
		if out := other.must("images"); strings.Contains(out, "base") || strings.Contains(out, "child") {
			t.Errorf("load of a %s archive left tags:\n%s", name, out)
		}
	}

	if got := strings.Fields(other.must("load", "-i", archive)); !slices.Equal(got, []string{"base", "child"}) {
		t.Errorf("load printed %v", got)
	}
	for _, tag := range []string{"base", "child"} {
		a, why := h.imageID(tag)
		b, why2 := other.imageID(tag)
		if a == "" || a != b {
			t.Errorf("%s: IDs %q (%s) and %q (%s)", tag, a, why, b, why2)
		}
		ma := treeDigest(t, mountpointOf(t, h.root+"/images/"+a))
		mb := treeDigest(t, mountpointOf(t, other.root+"/images/"+b))
		if ma != mb {
			t.Errorf("%s: trees differ", tag)
		}
	}
	if res := other.run("run", "--rm", "child", "cat", "/file"); res.stdout != "saved\n" {
		t.Errorf("the loaded image: %q %s", res.stdout, res.stderr)
	}
}

func mountpointOf(t *testing.T, ds string) string {
	t.Helper()
	out, err := exec.Command("zfs", "get", "-H", "-o", "value", "mountpoint", ds).CombinedOutput()
	if err != nil {
		t.Fatalf("mountpoint of %s: %v: %s", ds, err, out)
	}
	return strings.TrimSpace(string(out))
}

// treeDigest describes a tree: every path with its type, mode, owner, size,
// link target and content, sorted.
func treeDigest(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Fprintf(&b, "%s %v %d:%d %d", rel, fi.Mode(), st.Uid, st.Gid, fi.Size())
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", l)
		case fi.Mode().IsRegular():
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", c)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
