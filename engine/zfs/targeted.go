package zfs

import (
	"context"
	"fmt"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Objects names the objects a targeted observation reads.
type Objects struct {
	Containers []string
	Images     []string // image IDs
	Volumes    []string
}

// ObserveObjects reads only the named objects (each with its snapshots)
// with ONE command, `zfs get -H -p -r -o name,property,value,source all
// DS...`, whatever the number of datasets under the root: what creating or
// starting one container needs, where Observe would read the whole tree.
// The State holds the objects found; tags and foreign datasets are not read.
// A named dataset that does not exist makes the whole call ErrNotFound.
func (s *Store) ObserveObjects(ctx context.Context, o Objects) (*State, error) {
	ds, err := s.objectDatasets(o)
	if err != nil {
		return nil, err
	}
	if len(ds) == 0 {
		return &State{Tags: map[string]string{}}, nil
	}
	argv := append([]string{Bin(), "get", "-H", "-p", "-r", "-o", "name,property,value,source", "all"}, ds...)
	out, err := s.r.Run(ctx, runner.Cmd{Argv: argv, Timeout: CommandTimeout})
	if err != nil {
		return nil, fmt.Errorf("observe %s: %w", strings.Join(ds, " "), classify(err))
	}
	recs, err := parseGet(out)
	if err != nil {
		return nil, err
	}
	return s.state(recs), nil
}

// objectDatasets is the datasets of o, each name validated first.
func (s *Store) objectDatasets(o Objects) ([]string, error) {
	var ds []string
	for _, n := range o.Containers {
		if err := image.ValidName("container", n); err != nil {
			return nil, err
		}
		ds = append(ds, s.containerDS(n))
	}
	for _, id := range o.Images {
		if err := image.ValidID(id); err != nil {
			return nil, err
		}
		ds = append(ds, s.imageDS(id))
	}
	for _, n := range o.Volumes {
		if err := image.ValidName("volume", n); err != nil {
			return nil, err
		}
		ds = append(ds, s.volumeDS(n))
	}
	return ds, nil
}

// ContainerValues returns the own (local or received) value of the property
// prop of every container, by container name, with ONE command over the
// containers only (`zfs get -r PROP ROOT/containers`): the loopback
// addresses in use, without a whole observation.
func (s *Store) ContainerValues(ctx context.Context, prop string) (map[string]string, error) {
	if !strings.HasPrefix(prop, "zocker:") {
		return nil, fmt.Errorf("container values: %q is not a zocker: property", prop)
	}
	recs, err := s.get(ctx, prop, s.root+"/containers", true)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	prefix := s.root + "/containers/"
	for n, rec := range recs {
		leaf, ok := strings.CutPrefix(n, prefix)
		if !ok || strings.ContainsAny(leaf, "/@") {
			continue
		}
		if v, ok := rec.own[prop]; ok {
			out[leaf] = v
		}
	}
	return out, nil
}

// ResolveRef is Resolve without reading the whole tree, for the ad-hoc
// commands (run, create), whose cost must not grow with the number of
// containers: a tag is one property of ROOT/images, a full ID one read of
// that image. Only an ID prefix, or a reference that names nothing (the
// error then), goes through Observe.
func (s *Store) ResolveRef(ctx context.Context, ref string) (string, error) {
	id := ""
	if image.ValidName("tag", ref) == nil {
		prop := PropTagPrefix + ref
		recs, err := s.get(ctx, prop, s.imagesDS(), false)
		if err != nil {
			return "", err
		}
		if rec, ok := recs[s.imagesDS()]; ok {
			id = rec.own[prop]
		}
		if id != "" && image.ValidID(id) != nil {
			return "", fmt.Errorf("tag %s points to %q, not an image ID", ref, id)
		}
	}
	if id == "" && image.ValidID(ref) == nil {
		id = ref
	}
	if id == "" {
		return s.Resolve(ctx, ref)
	}
	ok, err := s.imageExists(ctx, id)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	return id, nil
}
