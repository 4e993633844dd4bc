package zfs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Dataset is what Observe reports about any dataset of the tree.
type Dataset struct {
	// Name is the full dataset name.
	Name       string
	Mountpoint string
	// Origin is the snapshot a clone was made from ("" when none).
	Origin     string
	Used       uint64
	Referenced uint64
	Quota      uint64
	Created    time.Time
	// Props are the dataset's OWN zocker:* properties (source local), never
	// ones inherited from a parent nor ones a received stream brought: a
	// stream is not ours to believe (review C1).
	Props map[string]string
}

// Image is a published image: ROOT/images/<id> with its @image snapshot.
type Image struct {
	Dataset
	ID     string
	Parent string
	// GUID is the guid of the @image snapshot: what a zfs send stream of the
	// image carries as toguid and what a child's incremental stream is
	// based on (fromguid).
	GUID   uint64
	Config Config
	// ConfigErr is set when the stored config could not be decoded.
	ConfigErr error
}

// Container is a container's clone: ROOT/containers/<name>.
type Container struct {
	Dataset
	ContainerName string
	ImageID       string
	Manifest      string
	SpecHash      string
	// Spec is the applied spec as JSON, as the caller stored it.
	Spec string
	// Snapshots are the container's snapshot names (after the @).
	Snapshots []string
	// PreviousID is set on previous clones (State.Previous): the ID that
	// RestorePrevious and DestroyPrevious take.
	PreviousID string
}

// Volume is a managed volume: ROOT/volumes/<name>.
type Volume struct {
	Dataset
	VolumeName string
}

// State is the whole actual state under the root, from one command.
type State struct {
	Images []Image
	// Tags maps each tag to the image ID it points at.
	Tags       map[string]string
	Containers []Container
	// Previous are the previous clones kept by updates (ContainerName is
	// the container they belong to, PreviousID their ID), sorted by name.
	Previous []Container
	Volumes  []Volume
	// Foreign are datasets under the root without our marks: reported, never touched.
	Foreign []string
	// Tmp are the datasets in ROOT/tmp (work in progress or leftovers).
	Tmp []string
}

// Image returns the image with id, if present.
func (st *State) Image(id string) (Image, bool) {
	for _, im := range st.Images {
		if im.ID == id {
			return im, true
		}
	}
	return Image{}, false
}

// record is one dataset's lines of `zfs get`.
type record struct {
	typ  string
	vals map[string]string // standard properties
	own  map[string]string // zocker:* with source local
}

// get runs `zfs get -H -p [-r] -o name,property,value,source PROPS DS` and
// groups the lines by dataset.
func (s *Store) get(ctx context.Context, props, ds string, recursive bool) (map[string]*record, error) {
	argv := []string{Bin(), "get", "-H", "-p"}
	if recursive {
		argv = append(argv, "-r")
	}
	argv = append(argv, "-o", "name,property,value,source", props, ds)
	out, err := s.r.Run(ctx, runner.Cmd{Argv: argv, Timeout: CommandTimeout})
	if err != nil {
		return nil, fmt.Errorf("observe dataset %s: %w", ds, classify(err))
	}
	return parseGet(out)
}

// parseGet groups `zfs get -H -o name,property,value,source` output by dataset.
func parseGet(out []byte) (map[string]*record, error) {
	recs := map[string]*record{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var last string
	var rec *record
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		if len(f) != 4 {
			return nil, fmt.Errorf("parse zfs get output: unexpected line %q", line)
		}
		if f[0] != last || rec == nil {
			last = f[0]
			if rec = recs[f[0]]; rec == nil {
				rec = &record{vals: map[string]string{}, own: map[string]string{}}
				recs[f[0]] = rec
			}
		}
		prop, val, src := f[1], f[2], f[3]
		switch {
		case prop == "type":
			rec.typ = val
		case strings.HasPrefix(prop, "zocker:"):
			// Only the dataset's own values: children inherit user
			// properties (the tags on ROOT/images, zocker:managed on ROOT).
			if src == "local" {
				rec.own[prop] = val
			}
		default:
			rec.vals[prop] = val
		}
	}
	return recs, sc.Err()
}

func (rec *record) dataset(name string) Dataset {
	num := func(k string) uint64 {
		n, _ := strconv.ParseUint(rec.vals[k], 10, 64)
		return n
	}
	d := Dataset{Name: name, Used: num("used"), Referenced: num("referenced"), Quota: num("quota"), Props: rec.own}
	if v := rec.vals["mountpoint"]; v != "-" {
		d.Mountpoint = v
	}
	if v := rec.vals["origin"]; v != "-" {
		d.Origin = v
	}
	if c := num("creation"); c > 0 {
		d.Created = time.Unix(int64(c), 0).UTC()
	}
	return d
}

// Observe reads the whole state under the root with ONE command:
// `zfs get -H -p -r -o name,property,value,source all ROOT`. "all" because
// tags and caller properties (zocker:ip, ...) have names not known in advance.
func (s *Store) Observe(ctx context.Context) (*State, error) {
	recs, err := s.get(ctx, "all", s.root, true)
	if err != nil {
		return nil, err
	}
	return s.state(recs), nil
}

// state classifies the datasets of one observation.
func (s *Store) state(recs map[string]*record) *State {
	st := &State{Tags: map[string]string{}}
	names := make([]string, 0, len(recs))
	for n := range recs {
		names = append(names, n)
	}
	sort.Strings(names)
	snaps := map[string][]string{}
	for _, n := range names {
		if i := strings.IndexByte(n, '@'); i >= 0 {
			snaps[n[:i]] = append(snaps[n[:i]], n[i+1:])
		}
	}
	hasImageSnap := func(ds string) bool {
		for _, sn := range snaps[ds] {
			if sn == ImageSnapshot {
				return true
			}
		}
		return false
	}
	for k, v := range recs[s.imagesDS()].ownOrNil() {
		if tag, ok := strings.CutPrefix(k, PropTagPrefix); ok {
			st.Tags[tag] = v
		}
	}
	for _, n := range names {
		rec := recs[n]
		if n == s.root || rec.typ == "snapshot" || !strings.HasPrefix(n, s.root+"/") {
			continue
		}
		rel := n[len(s.root)+1:]
		managed := rec.own[PropManaged] == "true"
		kind := rec.own[PropKind]
		dir, leaf, nested := strings.Cut(rel, "/")
		switch {
		case !nested && managed && kind == KindDir && (dir == "images" || dir == "containers" || dir == "volumes" || dir == "tmp" || dir == "previous"):
			continue
		case nested && dir == "previous" && managed && kind == KindContainer && previousRe.MatchString(leaf):
			owner, _ := previousOwner(leaf)
			st.Previous = append(st.Previous, Container{
				Dataset: rec.dataset(n), ContainerName: owner, PreviousID: leaf,
				ImageID: rec.own[PropImage], Manifest: rec.own[PropManifest],
				SpecHash: rec.own[PropSpecHash], Spec: rec.own[PropSpec],
			})
			continue
		case nested && dir == "tmp" && !strings.Contains(leaf, "/"):
			st.Tmp = append(st.Tmp, n)
			continue
		case nested && dir == "images" && managed && kind == KindImage && image.ValidID(leaf) == nil && hasImageSnap(n):
			im := Image{Dataset: rec.dataset(n), ID: leaf, Parent: rec.own[PropParent]}
			if snap := recs[n+"@"+ImageSnapshot]; snap != nil {
				im.GUID, _ = strconv.ParseUint(snap.vals["guid"], 10, 64)
			}
			im.Config, im.ConfigErr = decodeConfig(rec.own[PropConfig])
			st.Images = append(st.Images, im)
			continue
		case nested && dir == "containers" && managed && kind == KindContainer && image.NameRegexp.MatchString(leaf):
			st.Containers = append(st.Containers, Container{
				Dataset: rec.dataset(n), ContainerName: leaf,
				ImageID: rec.own[PropImage], Manifest: rec.own[PropManifest],
				SpecHash: rec.own[PropSpecHash], Spec: rec.own[PropSpec],
				Snapshots: snaps[n],
			})
			continue
		case nested && dir == "volumes" && managed && kind == KindVolume && image.NameRegexp.MatchString(leaf):
			st.Volumes = append(st.Volumes, Volume{Dataset: rec.dataset(n), VolumeName: leaf})
			continue
		}
		if strings.HasPrefix(rel, "tmp/") {
			continue // below a tmp dataset: part of work in progress
		}
		st.Foreign = append(st.Foreign, n)
	}
	return st
}

func (rec *record) ownOrNil() map[string]string {
	if rec == nil {
		return nil
	}
	return rec.own
}
