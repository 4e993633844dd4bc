package zfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// Tree is the raw records of one observation, kept so that the next one can
// read again only what changed (ObserveTouched). It is never modified.
type Tree struct {
	recs map[string]*record
}

// Touched names what actions may have changed since a Tree was read: the
// subtrees a targeted observation reads again.
type Touched struct {
	// Images: an import, build or pull (ROOT/images with its tags, and
	// ROOT/tmp where the work happens).
	Images bool
	// Previous: a replace, rollback, confirm or prune (ROOT/previous).
	Previous   bool
	Containers []string
	Volumes    []string
	// All: anything may have changed; the whole tree is read.
	All bool
}

// Empty reports whether nothing changed.
func (c Touched) Empty() bool {
	return !c.All && !c.Images && !c.Previous && len(c.Containers) == 0 && len(c.Volumes) == 0
}

// Merge adds what o names to c.
func (c *Touched) Merge(o Touched) {
	c.All = c.All || o.All
	c.Images = c.Images || o.Images
	c.Previous = c.Previous || o.Previous
	c.Containers = append(c.Containers, o.Containers...)
	c.Volumes = append(c.Volumes, o.Volumes...)
}

// ObserveTree is Observe, also returning the records for ObserveTouched.
func (s *Store) ObserveTree(ctx context.Context) (*State, *Tree, error) {
	recs, err := s.get(ctx, "all", s.root, true)
	if err != nil {
		return nil, nil, err
	}
	return s.state(recs), &Tree{recs: recs}, nil
}

// notExistRe is how zfs(8) reports a named dataset that is not there (the
// same words in zfs-fuse's and OpenZFS's libzfs); it goes on with the
// others and exits 1.
var notExistRe = regexp.MustCompile(`^cannot open '([^']+)': dataset does not exist$`)

// ObserveTouched reads again, with ONE command (`zfs get -H -p -r -o
// name,property,value,source all DS...`), only the subtrees ch names, and
// returns the state of base with those subtrees replaced, and the new tree.
// The command's cost grows with what changed, not with the number of
// datasets: what a pass that follows actions needs (issue 15); a whole
// observation is still made at every resync, for what changed by other
// hands. A named dataset that is gone (a pruned container) is dropped with
// everything below it; any other failure is returned, and the caller
// observes the whole tree instead.
func (s *Store) ObserveTouched(ctx context.Context, base *Tree, ch Touched) (*State, *Tree, error) {
	if base == nil {
		return nil, nil, errors.New("observe changes: no earlier observation to start from")
	}
	if ch.All {
		return s.ObserveTree(ctx)
	}
	ds, err := s.touchedDatasets(ch)
	if err != nil {
		return nil, nil, err
	}
	recs := maps.Clone(base.recs)
	if len(ds) == 0 {
		return s.state(recs), &Tree{recs: recs}, nil
	}
	var out bytes.Buffer
	argv := append([]string{Bin(), "get", "-H", "-p", "-r", "-o", "name,property,value,source", "all"}, ds...)
	_, runErr := s.r.Run(ctx, runner.Cmd{Argv: argv, Stdout: &out, Timeout: CommandTimeout})
	gone, err := missingOnly(runErr, ds)
	if err != nil {
		return nil, nil, fmt.Errorf("observe changes in %s: %w", strings.Join(ds, " "), classify(err))
	}
	fresh, err := parseGet(out.Bytes())
	if err != nil {
		return nil, nil, err
	}
	for name := range recs {
		for _, d := range ds {
			if name == d || strings.HasPrefix(name, d+"/") || strings.HasPrefix(name, d+"@") {
				delete(recs, name)
				break
			}
		}
	}
	for name, rec := range fresh {
		recs[name] = rec
	}
	if len(gone) > 0 {
		s.log.Debug("observe changes: gone", "datasets", gone)
	}
	return s.state(recs), &Tree{recs: recs}, nil
}

// touchedDatasets is the datasets ch names, validated, without duplicates
// and without one inside another (zfs get would print it twice).
func (s *Store) touchedDatasets(ch Touched) ([]string, error) {
	ds, err := s.objectDatasets(Objects{Containers: ch.Containers, Volumes: ch.Volumes})
	if err != nil {
		return nil, err
	}
	if ch.Images {
		ds = append(ds, s.imagesDS(), s.tmpDS())
	}
	if ch.Previous {
		ds = append(ds, s.previousDir())
	}
	slices.Sort(ds)
	return slices.Compact(ds), nil
}

// missingOnly returns the datasets of ds that err reports gone, and nil,
// when that is all err reports; otherwise err itself.
func missingOnly(err error, ds []string) ([]string, error) {
	if err == nil {
		return nil, nil
	}
	var ce *runner.CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 {
		return nil, err
	}
	var gone []string
	for line := range strings.Lines(strings.TrimSpace(ce.Stderr)) {
		m := notExistRe.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || !slices.Contains(ds, m[1]) {
			return nil, err
		}
		gone = append(gone, m[1])
	}
	if len(gone) == 0 {
		return nil, err
	}
	return gone, nil
}
