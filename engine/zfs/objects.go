package zfs

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	gozfs "github.com/mistifyio/go-zfs/v4"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Tag points tag at image id: one `zfs set zocker:tag.<tag>=<id>` on
// ROOT/images, so moving a tag is atomic and a tag can never name two images.
func (s *Store) Tag(ctx context.Context, tag, id string) error {
	if err := image.ValidName("tag", tag); err != nil {
		return err
	}
	if err := image.ValidID(id); err != nil {
		return err
	}
	ok, err := s.imageExists(ctx, id)
	if err != nil {
		return fmt.Errorf("tag %s: %w", tag, err)
	}
	if !ok {
		return fmt.Errorf("tag %s: image %s: %w", tag, id, ErrNotFound)
	}
	if err := s.setProp(ctx, s.imagesDS(), PropTagPrefix+tag, id); err != nil {
		return fmt.Errorf("tag %s as image %s: %w", tag, id, err)
	}
	s.log.Info("tagged image", "image", id, "tag", tag, "action", "tag")
	return nil
}

// Untag removes a tag; the image stays.
func (s *Store) Untag(ctx context.Context, tag string) error {
	if err := image.ValidName("tag", tag); err != nil {
		return err
	}
	if err := s.inheritProp(ctx, s.imagesDS(), PropTagPrefix+tag); err != nil {
		return fmt.Errorf("untag %s: %w", tag, err)
	}
	return nil
}

// Resolve finds an image by tag, full ID or unique ID prefix (at least 12
// hex digits) in an observed state.
func (st *State) Resolve(ref string) (string, error) {
	if id, ok := st.Tags[ref]; ok {
		return id, nil
	}
	if image.ValidID(ref) == nil {
		if _, ok := st.Image(ref); ok {
			return ref, nil
		}
		return "", fmt.Errorf("image %s: %w", ref, ErrNotFound)
	}
	if len(ref) >= 12 && strings.Trim(ref, "0123456789abcdef") == "" {
		var found []string
		for _, im := range st.Images {
			if strings.HasPrefix(im.ID, ref) {
				found = append(found, im.ID)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return "", fmt.Errorf("image %s: ambiguous ID prefix", ref)
		}
	}
	return "", fmt.Errorf("image %s: %w", ref, ErrNotFound)
}

// Resolve observes and resolves a tag or ID to an image ID.
func (s *Store) Resolve(ctx context.Context, ref string) (string, error) {
	st, err := s.Observe(ctx)
	if err != nil {
		return "", err
	}
	return st.Resolve(ref)
}

// CreateContainer clones ROOT/images/<imageID>@image to ROOT/containers/<name>
// (writable), with the ownership marks and the caller's zocker:* properties
// (manifest, spec-hash, spec, ip, ...) set atomically by the clone itself.
func (s *Store) CreateContainer(ctx context.Context, name, imageID string, props map[string]string) (*Container, error) {
	if err := image.ValidName("container", name); err != nil {
		return nil, err
	}
	if err := image.ValidID(imageID); err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	if err := checkProps(props); err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	all := marks(KindContainer, name)
	for k, v := range props {
		if k == PropManaged || k == PropKind || k == PropName {
			continue
		}
		all[k] = v
	}
	all[PropImage] = imageID
	all["readonly"] = "off"
	// `zfs clone -p` succeeds on an existing target on some platforms
	// (zfs-fuse): check first so that a name is never silently reused.
	if _, err := s.get(ctx, "type", s.containerDS(name), false); err == nil {
		return nil, fmt.Errorf("create container %s: dataset %s: %w", name, s.containerDS(name), ErrExists)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	snap := &gozfs.Dataset{Name: s.imageDS(imageID) + "@" + ImageSnapshot, Type: gozfs.DatasetSnapshot}
	ds, err := snap.Clone(s.containerDS(name), all)
	if err != nil {
		return nil, fmt.Errorf("create container %s: clone image %s: %w", name, imageID, redactValues(classify(err), all, PropSpec))
	}
	// The engine logs "created container" once the clone has its properties;
	// this is the store-level detail.
	s.log.Debug("cloned image", "container", name, "image", imageID, "dataset", ds.Name)
	delete(all, "readonly")
	return &Container{
		Dataset:       Dataset{Name: ds.Name, Mountpoint: ds.Mountpoint, Origin: ds.Origin, Used: ds.Used, Referenced: ds.Referenced, Props: all},
		ContainerName: name, ImageID: imageID,
		Manifest: all[PropManifest], SpecHash: all[PropSpecHash], Spec: all[PropSpec],
	}, nil
}

// SetContainerProps sets zocker:* properties on a managed container, one
// atomic zfs set each.
func (s *Store) SetContainerProps(ctx context.Context, name string, props map[string]string) error {
	if err := image.ValidName("container", name); err != nil {
		return err
	}
	return s.setOwnProps(ctx, s.containerDS(name), KindContainer, "container "+name, props)
}

// DestroyContainer destroys a managed container's clone with its snapshots.
func (s *Store) DestroyContainer(ctx context.Context, name string) error {
	if err := image.ValidName("container", name); err != nil {
		return err
	}
	ds := s.containerDS(name)
	if err := s.requireManaged(ctx, ds, KindContainer); err != nil {
		return fmt.Errorf("destroy container %s: %w", name, err)
	}
	if err := s.destroy(ctx, ds, true, true); err != nil {
		return fmt.Errorf("destroy container %s: %w", name, err)
	}
	s.log.Info("destroyed container", "container", name, "dataset", ds, "action", "destroy")
	return nil
}

// requireManaged refuses a dataset that does not carry its own
// zocker:managed=true and the expected kind.
func (s *Store) requireManaged(ctx context.Context, ds, kind string) error {
	recs, err := s.get(ctx, PropManaged+","+PropKind, ds, false)
	if err != nil {
		return err
	}
	rec := recs[ds]
	if rec == nil || rec.own[PropManaged] != "true" || rec.own[PropKind] != kind {
		return fmt.Errorf("dataset %s is not a %s managed by zocker-reconcile: refusing to touch it", ds, kind)
	}
	return nil
}

// VolumeSpec is the desired configuration of a volume.
type VolumeSpec struct {
	// QuotaBytes is the ZFS quota; 0 means none.
	QuotaBytes uint64
	// Properties are extra native ZFS properties (compression, atime, ...).
	Properties map[string]string
}

// EnsureVolume creates ROOT/volumes/<name>, or brings an existing managed one
// in line with spec in place (a changed quota or property is set; data is
// kept). props are extra zocker:* properties.
func (s *Store) EnsureVolume(ctx context.Context, name string, spec VolumeSpec, props map[string]string) error {
	if err := image.ValidName("volume", name); err != nil {
		return err
	}
	if err := checkProps(props); err != nil {
		return fmt.Errorf("ensure volume %s: %w", name, err)
	}
	want := map[string]string{}
	for k, v := range spec.Properties {
		if strings.Contains(k, ":") || k == "" || strings.ContainsAny(k+v, "=\n\t") {
			return fmt.Errorf("ensure volume %s: invalid ZFS property %q=%q", name, k, v)
		}
		want[k] = v
	}
	want["quota"] = "none"
	if spec.QuotaBytes > 0 {
		want["quota"] = strconv.FormatUint(spec.QuotaBytes, 10)
	}
	for k, v := range props {
		want[k] = v
	}
	ds := s.volumeDS(name)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	recs, err := s.get(ctx, strings.Join(append([]string{PropManaged, PropKind}, keys...), ","), ds, false)
	if errors.Is(err, ErrNotFound) {
		all := marks(KindVolume, name)
		for k, v := range want {
			all[k] = v
		}
		if err := s.create(ctx, ds, all); err != nil {
			return fmt.Errorf("ensure volume %s: %w", name, err)
		}
		s.log.Info("created volume", "volume", name, "dataset", ds, "action", "create")
		return nil
	}
	if err != nil {
		return fmt.Errorf("ensure volume %s: %w", name, err)
	}
	rec := recs[ds]
	if rec == nil || rec.own[PropManaged] != "true" || rec.own[PropKind] != KindVolume {
		return fmt.Errorf("ensure volume %s: dataset %s exists but is not a volume managed by zocker-reconcile", name, ds)
	}
	for _, k := range keys {
		cur, ok := rec.vals[k]
		if strings.HasPrefix(k, "zocker:") {
			cur, ok = rec.own[k]
		}
		if ok && (cur == want[k] || (k == "quota" && cur == "0" && want[k] == "none")) {
			continue
		}
		if err := s.setProp(ctx, ds, k, want[k]); err != nil {
			return fmt.Errorf("ensure volume %s: %w", name, err)
		}
		s.log.Info("updated volume", "volume", name, "dataset", ds, "action", "update", "property", k, "value", want[k])
	}
	return nil
}

// DestroyVolume destroys a managed volume and its data. Only called when asked
// explicitly (reclaimPolicy Delete, or by hand): nothing else destroys volumes.
func (s *Store) DestroyVolume(ctx context.Context, name string) error {
	if err := image.ValidName("volume", name); err != nil {
		return err
	}
	ds := s.volumeDS(name)
	if err := s.requireManaged(ctx, ds, KindVolume); err != nil {
		return fmt.Errorf("destroy volume %s: %w", name, err)
	}
	if err := s.destroy(ctx, ds, true, false); err != nil {
		return fmt.Errorf("destroy volume %s: %w", name, err)
	}
	s.log.Info("destroyed volume", "volume", name, "dataset", ds, "action", "destroy")
	return nil
}

// users returns, for image id, who prevents its removal: containers cloned
// from it and child images.
func (st *State) users(id string, imagesDS string) (containers, children []string) {
	origin := imagesDS + "/" + id + "@" + ImageSnapshot
	for _, c := range st.Containers {
		if c.ImageID == id || c.Origin == origin {
			containers = append(containers, c.ContainerName)
		}
	}
	for _, im := range st.Images {
		if im.ID != id && (im.Parent == id || im.Origin == origin) {
			children = append(children, im.ID)
		}
	}
	return containers, children
}

// RemoveImage removes a tag (when ref is a tag) or an image with all its
// tags (when ref is an ID). Removing one tag of several is always allowed;
// removing the last tag, or an ID, destroys the image, so it is refused while
// a container or a child image uses it. Every refusal comes before any change.
func (s *Store) RemoveImage(ctx context.Context, ref string) (removed bool, err error) {
	st, err := s.Observe(ctx)
	if err != nil {
		return false, fmt.Errorf("remove image %s: %w", ref, err)
	}
	id, err := st.Resolve(ref)
	if err != nil {
		return false, fmt.Errorf("remove image: %w", err)
	}
	var tags []string
	for t, tid := range st.Tags {
		if tid == id {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	if _, isTag := st.Tags[ref]; isTag && len(tags) > 1 {
		// The image keeps its other tags: nothing that uses it is affected.
		if err := s.Untag(ctx, ref); err != nil {
			return false, fmt.Errorf("remove image %s: %w", ref, err)
		}
		return false, nil
	}
	containers, children := st.users(id, s.imagesDS())
	if len(containers) > 0 {
		return false, fmt.Errorf("remove image %s: in use by container %s", ref, strings.Join(containers, ", "))
	}
	if len(children) > 0 {
		return false, fmt.Errorf("remove image %s: image %s is the parent of image %s", ref, image.Short(id), strings.Join(shortIDs(children), ", "))
	}
	for _, t := range tags {
		if err := s.Untag(ctx, t); err != nil {
			return false, fmt.Errorf("remove image %s: %w", ref, err)
		}
	}
	if err := s.destroy(ctx, s.imageDS(id), true, true); err != nil {
		return false, fmt.Errorf("remove image %s: %w", ref, err)
	}
	s.log.Info("removed image", "image", id, "action", "destroy")
	return true, nil
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = image.Short(id)
	}
	return out
}

// GC removes every image used by no container, no tag, no kept (declared)
// image and no child image, children before parents (a parent's @image
// snapshot cannot go while a clone of it exists: never `destroy -R`). With
// dryRun it only returns what would go, in the same order.
func (s *Store) GC(ctx context.Context, keep func(id string) bool, dryRun bool) ([]string, error) {
	st, err := s.Observe(ctx)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	return s.gcPlan(ctx, st, keep, dryRun)
}

func (s *Store) gcPlan(ctx context.Context, st *State, keep func(string) bool, dryRun bool) ([]string, error) {
	needed := map[string]bool{}
	for _, id := range st.Tags {
		needed[id] = true
	}
	for _, im := range st.Images {
		if keep != nil && keep(im.ID) {
			needed[im.ID] = true
		}
	}
	prefix := s.imagesDS() + "/"
	for _, c := range st.Containers {
		needed[c.ImageID] = true
		if id, ok := strings.CutSuffix(strings.TrimPrefix(c.Origin, prefix), "@"+ImageSnapshot); ok {
			needed[id] = true
		}
	}
	// Tmp work cloned from an image (a build in progress) keeps it too.
	// Their origins are not observed per tmp dataset here; zfs refuses the
	// destroy of a snapshot with clones, which GC reports as an error.
	remaining := map[string]Image{}
	for _, im := range st.Images {
		remaining[im.ID] = im
	}
	var removed []string
	for {
		// Leaves: images no remaining image is cloned from or names as parent.
		hasChild := map[string]bool{}
		for _, im := range remaining {
			if im.Parent != "" {
				hasChild[im.Parent] = true
			}
			if id, ok := strings.CutSuffix(strings.TrimPrefix(im.Origin, prefix), "@"+ImageSnapshot); ok {
				hasChild[id] = true
			}
		}
		var round []string
		for id := range remaining {
			if !needed[id] && !hasChild[id] {
				round = append(round, id)
			}
		}
		if len(round) == 0 {
			return removed, nil
		}
		sort.Strings(round)
		for _, id := range round {
			if !dryRun {
				if err := s.destroy(ctx, s.imageDS(id), true, true); err != nil {
					return removed, fmt.Errorf("gc image %s: %w", id, err)
				}
				s.log.Info("removed unreferenced image", "image", id, "action", "prune")
			}
			removed = append(removed, id)
			delete(remaining, id)
		}
	}
}
