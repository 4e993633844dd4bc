package zfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// scriptRunner answers every command with fixed output, standard error and
// exit code, recording the argv.
type scriptRunner struct {
	stdout, stderr string
	code           int
	argvs          [][]string
}

func (r *scriptRunner) Run(_ context.Context, c runner.Cmd) ([]byte, error) {
	r.argvs = append(r.argvs, c.Argv)
	out := []byte(r.stdout)
	if c.Stdout != nil {
		if _, err := io.WriteString(c.Stdout, r.stdout); err != nil {
			return nil, err
		}
		out = nil
	}
	if r.code != 0 {
		return nil, &runner.CommandError{Argv: c.Argv, Stderr: r.stderr, ExitCode: r.code, Err: fmt.Errorf("exit status %d", r.code)}
	}
	return out, nil
}

// linesOf is the lines of a `zfs get -r` output about ds and below it.
func linesOf(out []byte, ds string) string {
	var b strings.Builder
	for line := range strings.Lines(string(out)) {
		name, _, _ := strings.Cut(line, "\t")
		if name == ds || strings.HasPrefix(name, ds+"/") || strings.HasPrefix(name, ds+"@") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func baseTree(t *testing.T, n int) (*Store, *Tree) {
	t.Helper()
	s := &Store{root: "tank/zocker", r: &scriptRunner{stdout: string(cannedState("tank/zocker", n))}, log: slog.New(slog.DiscardHandler)}
	_, tree, err := s.ObserveTree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s, tree
}

func containerNames(st *State) string {
	var names []string
	for _, c := range st.Containers {
		names = append(names, c.ContainerName+"="+c.SpecHash)
	}
	return strings.Join(names, " ")
}

// A pass after actions reads only what they touched, with one command,
// and keeps the rest of the last observation.
func TestObserveTouchedReadsOnlyWhatChanged(t *testing.T) {
	s, base := baseTree(t, 5)
	// c1 was replaced (new spec hash), c9 created; the volume was updated.
	big := cannedState("tank/zocker", 10)
	fresh := strings.ReplaceAll(linesOf(big, "tank/zocker/containers/c1"), "zocker:spec-hash\th\t", "zocker:spec-hash\th2\t") +
		linesOf(big, "tank/zocker/containers/c9") + linesOf(big, "tank/zocker/volumes/data")
	r := &scriptRunner{stdout: fresh}
	s.r = r
	st, tree, err := s.ObserveTouched(context.Background(), base, Touched{Containers: []string{"c9", "c1", "c1"}, Volumes: []string{"data"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "all tank/zocker/containers/c1 tank/zocker/containers/c9 tank/zocker/volumes/data"
	if len(r.argvs) != 1 || !strings.HasSuffix(strings.Join(r.argvs[0], " "), want) || !strings.Contains(strings.Join(r.argvs[0], " "), " -r ") {
		t.Fatalf("commands %q, want one recursive get ending %q", r.argvs, want)
	}
	if got, want := containerNames(st), "c0=h c1=h2 c2=h c3=h c4=h c9=h"; got != want {
		t.Errorf("containers %s, want %s", got, want)
	}
	if len(st.Images) != 1 || len(st.Volumes) != 1 || st.Tags["base"] == "" || len(st.Foreign) != 1 {
		t.Errorf("the untouched part changed: images %d volumes %d tags %v foreign %v", len(st.Images), len(st.Volumes), st.Tags, st.Foreign)
	}
	// The base is not modified: a failed pass can start from it again.
	if got := containerNames(s.state(base.recs)); got != "c0=h c1=h c2=h c3=h c4=h" {
		t.Errorf("base changed: %s", got)
	}
	// Nothing changed: no command, the same state.
	r.argvs = nil
	st2, _, err := s.ObserveTouched(context.Background(), tree, Touched{})
	if err != nil || len(r.argvs) != 0 || containerNames(st2) != containerNames(st) {
		t.Errorf("empty change: %v, commands %q, containers %s", err, r.argvs, containerNames(st2))
	}
}

// A pruned container is reported gone by zfs (exit 1, the others still
// printed): it leaves the state, with its snapshots.
func TestObserveTouchedDropsWhatIsGone(t *testing.T) {
	s, base := baseTree(t, 4)
	base.recs["tank/zocker/containers/c2@keep"] = &record{typ: "snapshot", vals: map[string]string{}, own: map[string]string{}}
	r := &scriptRunner{
		stdout: linesOf(cannedState("tank/zocker", 4), "tank/zocker/containers/c3"),
		stderr: "cannot open 'tank/zocker/containers/c2': dataset does not exist\n",
		code:   1,
	}
	s.r = r
	st, tree, err := s.ObserveTouched(context.Background(), base, Touched{Containers: []string{"c2", "c3"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := containerNames(st); got != "c0=h c1=h c3=h" {
		t.Errorf("containers %s, want c2 gone", got)
	}
	for name := range tree.recs {
		if strings.HasPrefix(name, "tank/zocker/containers/c2") {
			t.Errorf("%s kept", name)
		}
	}
}

// Any other failure is an error (the caller then reads the whole tree):
// a message about a dataset not named, another message, another exit code.
func TestObserveTouchedFailures(t *testing.T) {
	for _, r := range []*scriptRunner{
		{stderr: "cannot open 'tank/zocker/containers/other': dataset does not exist\n", code: 1},
		{stderr: "cannot open 'tank/zocker/containers/c2': dataset does not exist\ninternal error: out of memory\n", code: 1},
		{stderr: "internal error: failed to initialize ZFS library\n", code: 1},
		{stderr: "cannot open 'tank/zocker/containers/c2': dataset does not exist\n", code: 2},
		{stderr: "", code: 1},
	} {
		s, base := baseTree(t, 3)
		s.r = r
		if _, _, err := s.ObserveTouched(context.Background(), base, Touched{Containers: []string{"c2"}}); err == nil {
			t.Errorf("stderr %q exit %d: no error", r.stderr, r.code)
		}
	}
	s, base := baseTree(t, 1)
	r := &scriptRunner{}
	s.r = r
	if _, _, err := s.ObserveTouched(context.Background(), base, Touched{Containers: []string{"../x"}}); err == nil || len(r.argvs) != 0 {
		t.Errorf("bad name: %v after %d commands", err, len(r.argvs))
	}
	if _, _, err := s.ObserveTouched(context.Background(), nil, Touched{Containers: []string{"c1"}}); err == nil {
		t.Error("no base: no error")
	}
}

// An image action re-reads ROOT/images (tags are its properties) and
// ROOT/tmp; Previous re-reads ROOT/previous, which may not exist yet.
func TestObserveTouchedImagesAndPrevious(t *testing.T) {
	s, base := baseTree(t, 2)
	big := cannedState("tank/zocker", 2)
	images := strings.ReplaceAll(linesOf(big, "tank/zocker/images"), "zocker:tag.base\t", "zocker:tag.moved\t")
	r := &scriptRunner{stdout: images + linesOf(big, "tank/zocker/tmp"),
		stderr: "cannot open 'tank/zocker/previous': dataset does not exist\n", code: 1}
	s.r = r
	st, _, err := s.ObserveTouched(context.Background(), base, Touched{Images: true, Previous: true})
	if err != nil {
		t.Fatal(err)
	}
	want := "all tank/zocker/images tank/zocker/previous tank/zocker/tmp"
	if !strings.HasSuffix(strings.Join(r.argvs[0], " "), want) {
		t.Errorf("argv %q, want it to end %q", r.argvs[0], want)
	}
	if st.Tags["moved"] == "" || st.Tags["base"] != "" || len(st.Images) != 1 {
		t.Errorf("tags %v images %d: want the tag moved", st.Tags, len(st.Images))
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("a missing ROOT/previous is not an error")
	}
}
