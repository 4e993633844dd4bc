// Package smoke is what `zocker-reconcile selftest` runs, a smoke test of
// the host: on a throwaway root (ROOT/selftest-ID) and state directory
// (STATE/selftest-ID) it imports a
// tiny image and runs the real reconcile path (the same engine, supervisors
// and jail driver as serve) through every feature a first host should
// prove: a container in each network mode, exec, a hostPath and a managed
// volume, a limit, a health check, a restart after SIGKILL, stop, prune,
// then destroys everything it made. Each step's duration and the raw
// material it produced (the generated jail configuration, statuses, jls and
// rctl output) go into a report meant to be attached to a bug report.
package smoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/controller"
	"github.com/zocker-reconcile/zocker-reconcile/engine"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
)

// Prefix starts the names of everything a selftest makes: datasets
// ROOT/selftest-ID and state directories STATE/selftest-ID.
const Prefix = "selftest-"

// Config is one selftest run.
type Config struct {
	// ID names this run: datasets under Root, STATE/selftest-ID, and the
	// container names "stID-inherit", ... (unique across runs and unlikely
	// to collide with declared names).
	ID string
	// Root is the throwaway root dataset (ROOT/selftest-ID); StateDir the
	// throwaway state directory (STATE/selftest-ID). Engine works on both.
	Root, StateDir string
	// Image is the tiny image's tarball.
	Image  string
	Engine *engine.Engine
	// Load loads a manifest directory as serve would.
	Load func(ctx context.Context, dir string) (reconcile.Desired, error)
	// Run and ZFS destroy the root at the end.
	Run runner.Runner
	ZFS string
	// Raw returns OS-specific raw outputs for a step (jls, rctl -u).
	Raw func(ctx context.Context, containers []string) []Artifact
	// Limits: the driver enforces limits (else the limit step says so).
	Limits bool
	// Keep leaves the containers running after the restart step.
	Keep bool
	// Progress gets one line per finished step.
	Progress io.Writer
	Log      *slog.Logger
	// Deadline bounds each wait (running, healthy, restarted).
	Deadline time.Duration
	// Alias, when set, adds a container in alias mode on this interface
	// and address (ADDR/PREFIX): the one mode needing a host's own network.
	Alias *Alias
}

// Alias is the interface and address of the alias-mode container.
type Alias struct {
	Interface, Address string
}

// Artifact is a named piece of raw output attached to a step.
type Artifact struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// Step is one step of the report.
type Step struct {
	Name      string     `json:"name"`
	Status    string     `json:"status"` // ok, fail, skipped
	Seconds   float64    `json:"seconds"`
	Error     string     `json:"error,omitempty"`
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Report is what a run produced.
type Report struct {
	ID       string `json:"id"`
	Root     string `json:"root"`
	StateDir string `json:"stateDir"`
	Passed   bool   `json:"passed"`
	Steps    []Step `json:"steps"`
	Kept     bool   `json:"kept,omitempty"`
	// Pids are the supervisor and command pids the run saw: all gone
	// after a run that was not kept.
	Pids []int `json:"pids,omitempty"`
}

// Names are the containers of a run.
func Names(id string) (inherit, none, loopback, volume, image string) {
	p := "st" + id
	return p + "-inherit", p + "-none", p + "-loopback", p + "-data", p + "-img"
}

type run struct {
	cfg    Config
	rep    *Report
	failed bool
	dir    string // manifests
	host   string // hostPath volume source
	pids   []int  // supervisor and command pids seen, checked gone at the end
	// failedBefore keeps a failure across the final steps, which run anyway.
	failedBefore bool
}

// Run runs the selftest. The report is complete whatever happens; Passed
// says whether every step passed.
func Run(ctx context.Context, cfg Config) *Report {
	if cfg.Deadline == 0 {
		cfg.Deadline = 60 * time.Second
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	r := &run{cfg: cfg, rep: &Report{ID: cfg.ID, Root: cfg.Root, StateDir: cfg.StateDir},
		dir: filepath.Join(cfg.StateDir, "manifests"), host: filepath.Join(cfg.StateDir, "hostdata")}
	inh, none, loop, _, _ := Names(cfg.ID)
	all := []string{inh, none, loop}
	if cfg.Alias != nil {
		all = append(all, "st"+cfg.ID+"-alias")
	}

	r.step("prepare", func(ctx context.Context) ([]Artifact, error) {
		for _, d := range []string{r.dir, r.host} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, err
			}
			if err := os.Chmod(d, 0o755); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})(ctx)
	r.step("apply: image, volume, a container per network mode", func(ctx context.Context) ([]Artifact, error) {
		return r.apply(ctx, r.manifests(true), false)
	})(ctx)
	r.step("running", func(ctx context.Context) ([]Artifact, error) {
		if err := r.waitAll(ctx, all, func(s supervisor.Status) bool { return s.Alive && s.State == supervisor.StateRunning }); err != nil {
			return r.statuses(all), err
		}
		return append(append(r.statuses(all), r.generated()...), r.raw(ctx, all)...), nil
	})(ctx)
	r.step("health check", func(ctx context.Context) ([]Artifact, error) {
		err := r.waitAll(ctx, []string{inh}, func(s supervisor.Status) bool { return s.Health.Status == supervisor.HealthHealthy })
		return r.statuses([]string{inh}), err
	})(ctx)
	r.step("exec", func(ctx context.Context) ([]Artifact, error) {
		var arts []Artifact
		for _, n := range all {
			out, err := r.exec(ctx, n, "/bin/echo", "exec-ok")
			arts = append(arts, Artifact{n, out})
			if err != nil {
				return arts, err
			}
			if out != "exec-ok\n" {
				return arts, fmt.Errorf("exec in %s printed %q", n, out)
			}
		}
		return arts, nil
	})(ctx)
	r.step("volumes: hostPath and managed", func(ctx context.Context) ([]Artifact, error) {
		out, err := r.exec(ctx, loop, "/bin/sh", "-c", "echo host > /hostdata/probe && echo managed > /data/probe && cat /data/probe")
		arts := []Artifact{{"exec", out}}
		if err != nil {
			return arts, err
		}
		if out != "managed\n" {
			return arts, fmt.Errorf("managed volume: read back %q", out)
		}
		b, err := os.ReadFile(filepath.Join(r.host, "probe"))
		if err != nil || string(b) != "host\n" {
			return arts, fmt.Errorf("hostPath volume: host reads %q, %v", b, err)
		}
		return arts, nil
	})(ctx)
	r.step("limits", func(ctx context.Context) ([]Artifact, error) {
		st, err := supervisor.Get(cfg.StateDir, inh)
		if err != nil {
			return nil, err
		}
		arts := append([]Artifact{{"status message", st.Message}}, r.raw(ctx, []string{inh})...)
		if !cfg.Limits {
			return arts, errSkipped("limits are not enforced on this host: " + st.Message)
		}
		if strings.Contains(st.Message, "not enforced") {
			return arts, errors.New(st.Message)
		}
		return arts, nil
	})(ctx)
	r.step("restart after SIGKILL", func(ctx context.Context) ([]Artifact, error) {
		before, err := supervisor.Get(cfg.StateDir, inh)
		if err != nil {
			return nil, err
		}
		if before.PID <= 0 {
			return r.statuses([]string{inh}), errors.New("no command pid")
		}
		if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
			return nil, fmt.Errorf("kill %d: %w", before.PID, err)
		}
		err = r.waitAll(ctx, []string{inh}, func(s supervisor.Status) bool {
			return s.Alive && s.State == supervisor.StateRunning && s.Restarts > before.Restarts && s.PID != before.PID
		})
		return r.statuses([]string{inh}), err
	})(ctx)
	if cfg.Keep && !r.failed {
		r.rep.Kept, r.rep.Passed = true, true
		return r.rep
	}
	r.step("stop", func(ctx context.Context) ([]Artifact, error) {
		arts, err := r.apply(ctx, r.manifests(false), false)
		if err != nil {
			return arts, err
		}
		err = r.waitAll(ctx, []string{inh}, func(s supervisor.Status) bool { return !s.Alive || s.State == supervisor.StateStopped })
		if err == nil {
			err = r.noJail(ctx, inh)
		}
		return append(arts, r.statuses([]string{inh})...), err
	})(ctx)
	r.step("prune", func(ctx context.Context) ([]Artifact, error) {
		if err := os.Remove(filepath.Join(r.dir, "selftest.yaml")); err != nil {
			return nil, err
		}
		arts, err := r.apply(ctx, "", true)
		if err != nil {
			return arts, err
		}
		o, err := cfg.Engine.Observe(ctx)
		if err != nil {
			return arts, err
		}
		if len(o.Containers) != 0 || len(o.Volumes) != 0 {
			return arts, fmt.Errorf("after prune: %d containers, %d volumes left", len(o.Containers), len(o.Volumes))
		}
		for _, n := range all {
			if err := r.noJail(ctx, n); err != nil {
				return arts, err
			}
		}
		return arts, nil
	})(ctx)
	// Whatever failed before, everything made is destroyed.
	r.failedBefore, r.failed = r.failed, false
	r.step("destroy: root dataset, state directory", func(ctx context.Context) ([]Artifact, error) {
		return nil, Destroy(ctx, cfg.ID, cfg.Root, cfg.StateDir, cfg.Engine.Driver, cfg.Run, cfg.ZFS, cfg.Log)
	})(ctx)
	r.step("nothing left", func(ctx context.Context) ([]Artifact, error) {
		return nil, r.nothingLeft(ctx)
	})(ctx)
	r.failed = r.failed || r.failedBefore
	r.rep.Passed = !r.failed
	r.rep.Pids = r.pids
	return r.rep
}

// nothingLeft checks what a run could leave: the dataset, a jail, a
// supervisor or command process, the state directory.
func (r *run) nothingLeft(ctx context.Context) error {
	var left []string
	if _, err := r.cfg.Run.Run(ctx, runner.Cmd{Argv: []string{r.cfg.ZFS, "get", "-H", "-o", "name", "type", r.cfg.Root}}); err == nil {
		left = append(left, "dataset "+r.cfg.Root)
	}
	infos, err := r.cfg.Engine.Driver.List(ctx)
	if err != nil {
		return err
	}
	for _, i := range infos {
		if strings.HasPrefix(i.Name, "st"+r.cfg.ID+"-") {
			left = append(left, "jail "+i.Name)
		}
	}
	for _, p := range r.pids {
		if syscall.Kill(p, 0) == nil {
			left = append(left, fmt.Sprintf("process %d", p))
		}
	}
	if _, err := os.Stat(r.cfg.StateDir); err == nil {
		left = append(left, "directory "+r.cfg.StateDir)
	}
	if len(left) > 0 {
		return fmt.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	return nil
}

type skipped string

func (s skipped) Error() string { return string(s) }

func errSkipped(why string) error { return skipped(why) }

// step wraps f: a step after a failure is skipped; its time and result go
// into the report.
func (r *run) step(name string, f func(ctx context.Context) ([]Artifact, error)) func(context.Context) {
	return func(ctx context.Context) {
		s := Step{Name: name}
		if r.failed {
			s.Status = "skipped"
			s.Error = "an earlier step failed"
		} else {
			start := time.Now()
			arts, err := f(ctx)
			s.Seconds = time.Since(start).Seconds()
			s.Artifacts = arts
			var sk skipped
			switch {
			case errors.As(err, &sk):
				s.Status, s.Error = "skipped", err.Error()
			case err != nil:
				s.Status, s.Error = "fail", err.Error()
				r.failed = true
			default:
				s.Status = "ok"
			}
		}
		r.rep.Steps = append(r.rep.Steps, s)
		fmt.Fprintf(r.cfg.Progress, "%-6s %-50s %6.2fs %s\n", s.Status, s.Name, s.Seconds, s.Error)
	}
}

// manifests writes the run's manifests and returns them.
func (r *run) manifests(running bool) string {
	doc := Manifests(r.cfg.ID, r.cfg.Image, r.host, running)
	if a := r.cfg.Alias; a != nil {
		doc += AliasManifest(r.cfg.ID, *a)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "selftest.yaml"), []byte(doc), 0o644); err != nil {
		r.cfg.Log.Error("write selftest manifests", "err", err)
	}
	return doc
}

// AliasManifest is the alias-mode container of a run.
func AliasManifest(id string, a Alias) string {
	_, _, _, _, img := Names(id)
	return fmt.Sprintf(`---
apiVersion: zocker/v1
kind: Container
metadata: {name: st%s-alias}
spec:
  image: %s
  command: ["/bin/sh", "-c", "echo started; exec sleep 3600"]
  network: {mode: alias, interface: %s, addresses: [%q]}
  stopTimeout: 2s
`, id, img, a.Interface, a.Address)
}

// Manifests are a run's manifests: the image from the tarball image, a
// managed volume, and a container per network mode; running says whether
// the inherit container runs or is stopped.
func Manifests(id, image, hostDir string, running bool) string {
	inh, none, loop, vol, img := Names(id)
	state := "Running"
	if !running {
		state = "Stopped"
	}
	const cmd = `command: ["/bin/sh", "-c", "echo started; exec sleep 3600"]`
	return fmt.Sprintf(`# Written by zocker-reconcile selftest %[1]s.
apiVersion: zocker/v1
kind: Image
metadata: {name: %[2]s}
spec:
  tarball: {path: %[3]q}
---
apiVersion: zocker/v1
kind: Volume
metadata: {name: %[4]s}
spec: {reclaimPolicy: Delete}
---
apiVersion: zocker/v1
kind: Container
metadata: {name: %[5]s}
spec:
  image: %[2]s
  %[9]s
  network: {mode: inherit}
  state: %[10]s
  stopTimeout: 2s
  resources: {memory: 256M, maxProcesses: 64}
  healthcheck: {command: ["/bin/sh", "-c", "test -d /tmp"], interval: 1s, timeout: 1s, retries: 2}
---
apiVersion: zocker/v1
kind: Container
metadata: {name: %[6]s}
spec:
  image: %[2]s
  %[9]s
  network: {mode: none}
  stopTimeout: 2s
---
apiVersion: zocker/v1
kind: Container
metadata: {name: %[7]s}
spec:
  image: %[2]s
  %[9]s
  network: {mode: loopback}
  stopTimeout: 2s
  volumes:
    - {volume: %[4]s, path: /data}
    - {hostPath: %[8]q, path: /hostdata}
`, id, img, image, vol, inh, none, loop, hostDir, cmd, state)
}

// apply converges on the manifest directory like `apply` does; the
// manifests and every action taken are the step's artifacts.
func (r *run) apply(ctx context.Context, doc string, allowEmpty bool) ([]Artifact, error) {
	arts := []Artifact{}
	if doc != "" {
		arts = append(arts, Artifact{"manifests", doc})
	}
	d, err := r.cfg.Load(ctx, r.dir)
	if err != nil {
		return arts, err
	}
	if d.Set != nil {
		var probs []string
		for _, p := range d.Set.Problems {
			probs = append(probs, p.String())
		}
		if len(probs) > 0 {
			arts = append(arts, Artifact{"problems", strings.Join(probs, "\n")})
		}
	}
	var log strings.Builder
	_, err = controller.Converge(ctx, d, r.cfg.Engine, r.cfg.Engine,
		reconcile.Options{AllowEmpty: allowEmpty, MaxPrune: -1}, 5, func(p controller.PassResult) {
			fmt.Fprintf(&log, "%s %s (%s)", p.Action.Op.Sign(), p.Action, p.Took.Round(time.Millisecond))
			if p.Err != nil {
				fmt.Fprintf(&log, ": %v", p.Err)
			}
			log.WriteString("\n")
		})
	arts = append(arts, Artifact{"actions", log.String()})
	return arts, err
}

// waitAll polls the containers' statuses until ok holds for all of them or
// the deadline passes (the statuses are written by the supervisors).
func (r *run) waitAll(ctx context.Context, names []string, ok func(supervisor.Status) bool) error {
	deadline := time.Now().Add(r.cfg.Deadline)
	for {
		var pending []string
		for _, n := range names {
			st, err := supervisor.Get(r.cfg.StateDir, n)
			if err == nil {
				r.note(st)
			}
			if err != nil || !ok(st) {
				desc := "no status"
				if err == nil {
					desc = fmt.Sprintf("state %s, health %s %s", st.State, st.Health.Status, st.Message)
				}
				pending = append(pending, n+" ("+strings.TrimSpace(desc)+")")
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s still waiting for %s", r.cfg.Deadline, strings.Join(pending, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *run) note(st supervisor.Status) {
	for _, p := range []int{st.SupervisorPID, st.PID} {
		if p > 0 && !containsInt(r.pids, p) {
			r.pids = append(r.pids, p)
		}
	}
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// exec runs argv in a container the way `zocker-reconcile exec` does.
func (r *run) exec(ctx context.Context, name string, argv ...string) (string, error) {
	cfg, err := supervisor.ReadConfig(r.cfg.StateDir, name)
	if err != nil {
		return "", err
	}
	p := jail.Process{Argv: argv, Env: cfg.Process.Env, User: cfg.Process.User, Workdir: cfg.Process.Workdir}
	c, err := r.cfg.Engine.Driver.Command(name, p)
	if err != nil {
		return "", err
	}
	out, err := c.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("exec in %s: %w", name, err)
	}
	return string(out), nil
}

func (r *run) noJail(ctx context.Context, name string) error {
	infos, err := r.cfg.Engine.Driver.List(ctx)
	if err != nil {
		return err
	}
	for _, i := range infos {
		if i.Name == name {
			return fmt.Errorf("jail %s still exists", name)
		}
	}
	return nil
}

func (r *run) statuses(names []string) []Artifact {
	var out []Artifact
	for _, n := range names {
		st, err := supervisor.Get(r.cfg.StateDir, n)
		if err != nil {
			out = append(out, Artifact{"status " + n, err.Error()})
			continue
		}
		b, _ := json.MarshalIndent(st, "", "  ")
		out = append(out, Artifact{"status " + n, string(b)})
	}
	return out
}

// generated attaches every file the driver generated under STATE/jails
// (FreeBSD: NAME.conf, NAME.fstab, NAME.json; Linux: the init's state).
func (r *run) generated() []Artifact {
	dir := filepath.Join(r.cfg.StateDir, "jails")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []Artifact{{"generated files", err.Error()}}
	}
	var out []Artifact
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".pid") || strings.HasSuffix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || len(b) > 64<<10 {
			continue
		}
		out = append(out, Artifact{"jails/" + e.Name(), string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (r *run) raw(ctx context.Context, names []string) []Artifact {
	if r.cfg.Raw == nil {
		return nil
	}
	return r.cfg.Raw(ctx, names)
}

// Format writes the report as text: a summary line per step, then every
// artifact, for a person and a bug report alike.
func Format(w io.Writer, rep *Report, header string) {
	fmt.Fprintf(w, "%s\nroot %s, state %s\n\n", header, rep.Root, rep.StateDir)
	for i, s := range rep.Steps {
		fmt.Fprintf(w, "%2d. %-6s %-50s %6.2fs %s\n", i+1, s.Status, s.Name, s.Seconds, s.Error)
	}
	verdict := "FAIL"
	if rep.Passed {
		verdict = "PASS"
	}
	fmt.Fprintf(w, "\nresult: %s\n", verdict)
	if rep.Kept {
		fmt.Fprintf(w, "kept: %s and %s with its containers running; the next selftest or serve start removes them\n", rep.Root, rep.StateDir)
	}
	for i, s := range rep.Steps {
		for _, a := range s.Artifacts {
			fmt.Fprintf(w, "\n--- %d. %s: %s\n%s", i+1, s.Name, a.Name, a.Content)
			if !strings.HasSuffix(a.Content, "\n") {
				fmt.Fprintln(w)
			}
		}
	}
}
