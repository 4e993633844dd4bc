package reconcile

import (
	"container/heap"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// planner holds one Diff computation.
type planner struct {
	d    Desired
	o    Observed
	set  *manifests.Set
	opts Options

	actions map[string]*Action
	blocked []Blocked
	// imageIDs maps image names that are ready to their resolved ID.
	imageIDs map[string]string
	// imageWait maps image names that are not ready to why.
	imageWait map[string]string
	// specs are the normalized desired specs of declared containers, and the
	// applied specs of containers kept for a broken manifest.
	specs map[string]specInfo
}

// specInfo is the part of a container's spec that ordering and the volume
// guard need after the container itself was planned.
type specInfo struct {
	state     string
	dependsOn []string
	volumes   []manifests.VolumeMount
}

func infoOf(s *manifests.ContainerSpec) specInfo {
	return specInfo{state: s.State, dependsOn: s.DependsOn, volumes: s.Volumes}
}

var emptySet = &manifests.Set{}

// Diff computes the plan that converges the observed state on the desired
// one, under the safety rules of ARCHITECTURE section 6. It does no I/O and
// its output is deterministic.
func Diff(d Desired, o Observed, opts Options) Plan {
	set := d.Set
	if set == nil {
		set = emptySet
	}
	p := &planner{
		d: d, o: o, set: set, opts: opts,
		actions:   make(map[string]*Action),
		imageIDs:  make(map[string]string, len(set.Images)+len(o.Tags)),
		imageWait: make(map[string]string),
		specs:     make(map[string]specInfo, len(set.Containers)),
	}
	dup := make(map[string]bool, len(set.Blocked))
	for _, k := range set.Blocked {
		dup[k] = true
	}
	kept := p.keptObjects()

	p.planImages()
	p.planVolumes()
	p.planContainers()
	pruneC, pruneV := p.planUndeclared(dup, kept)
	p.guardPrunes(pruneC, pruneV)
	p.blockDuplicates()
	p.blockMissingDependencies()
	p.linkStops()

	plan := Plan{Actions: p.order(), Blocked: p.blocked, Revision: set.Revision}
	if opts.Only != nil {
		plan = plan.restrict(opts.Only)
	}
	slices.SortFunc(plan.Blocked, func(a, b Blocked) int {
		if c := KindRank(a.Kind) - KindRank(b.Kind); c != 0 {
			return c
		}
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	plan.InSync = len(plan.Actions) == 0 && !slices.ContainsFunc(plan.Blocked, func(b Blocked) bool { return !b.Settled() })
	return plan
}

// restrict keeps the actions and holds of the objects in only. An action
// that depends on an action left out is held instead (it would fail
// without it), and so are the ones depending on it in turn.
func (plan Plan) restrict(only map[string]bool) Plan {
	out := Plan{Revision: plan.Revision, Partial: true}
	dropped := map[string]bool{}
	for _, a := range plan.Actions {
		if !only[a.Key()] {
			dropped[a.Key()] = true
			continue
		}
		if dep := slices.IndexFunc(a.DependsOn, func(k string) bool { return dropped[k] }); dep >= 0 {
			dropped[a.Key()] = true
			out.Blocked = append(out.Blocked, Blocked{Kind: a.Kind, Name: a.Name, Op: a.Op, Reason: BlockedOutsideSelection,
				Message: fmt.Sprintf("needs %s, which is not among the objects given (apply the whole directory, or that object's file first)", a.DependsOn[dep])})
			continue
		}
		out.Actions = append(out.Actions, a)
	}
	for _, b := range plan.Blocked {
		if only[b.Key()] && b.Reason != BlockedEmptyManifests && b.Reason != BlockedMaxPrune {
			out.Blocked = append(out.Blocked, b)
		}
	}
	return out
}

// keptObjects lists the keys whose declaring file failed to load: the
// observed objects whose zocker:manifest names a failed file, and the keys a
// failed file still declared (a partly valid file, or one an object was
// just moved into).
func (p *planner) keptObjects() map[string]string {
	failed := make(map[string]string)
	kept := make(map[string]string)
	for _, f := range p.set.Files {
		if !f.Failed {
			continue
		}
		ref := ManifestRef(p.set, f.Path)
		failed[ref] = ref
		failed[f.Path] = ref
		for _, k := range f.Objects {
			kept[k] = ref
		}
	}
	if len(failed) == 0 {
		return kept
	}
	for name, oc := range p.o.Containers {
		if ref, ok := failed[oc.Manifest]; ok && oc.Managed {
			kept[Key(manifests.KindContainer, name)] = ref
		}
	}
	for name, ov := range p.o.Volumes {
		if ref, ok := failed[ov.Manifest]; ok && ov.Managed {
			kept[Key(manifests.KindVolume, name)] = ref
		}
	}
	return kept
}

func (p *planner) add(a *Action)   { p.actions[a.Key()] = a }
func (p *planner) block(b Blocked) { p.blocked = append(p.blocked, b) }

func (p *planner) manifestRef(kind, name string) string {
	return ManifestRef(p.set, p.set.Sources[Key(kind, name)].File)
}

// planImages decides, for every declared Image, whether it is ready (its tag
// points at an image made from the current inputs) or must be made.
func (p *planner) planImages() {
	for tag, id := range p.o.Tags {
		p.imageIDs[tag] = id
	}
	for _, name := range sortedKeys(p.set.Images) {
		img := p.set.Images[name]
		tagID, tagged := p.o.Tags[name]
		a := &Action{Kind: manifests.KindImage, Name: name, Image: img, Manifest: p.manifestRef(manifests.KindImage, name)}
		switch {
		case img.Spec.Pull != nil || img.Spec.OCI != nil:
			a.Op = OpPull
			remote := p.d.RemoteIDs[name]
			a.Inputs = remote
			switch {
			case !tagged:
				a.Reason = "not present"
			case remote != "" && tagID != remote && img.Spec.OCI != nil && img.Spec.OCI.Archive != "":
				a.Reason = fmt.Sprintf("archive holds sha256:%s (from sha256:%s)", image.Short(remote), image.Short(tagID))
			case remote != "" && tagID != remote && img.Spec.OCI != nil:
				a.Reason = fmt.Sprintf("registry tag moved to sha256:%s (from sha256:%s)", image.Short(remote), image.Short(tagID))
			case remote != "" && tagID != remote:
				a.Reason = fmt.Sprintf("repository tag moved to %s (from %s)", image.Short(remote), image.Short(tagID))
			default:
				continue
			}
		default:
			a.Op = OpImport
			if img.Spec.Build != nil {
				a.Op = OpBuild
			}
			inputs := p.d.ImageInputs[name]
			if inputs == "" && img.Spec.Tarball != nil && img.Spec.Tarball.SHA256 != "" {
				inputs = "sha256:" + img.Spec.Tarball.SHA256 // the form the store records
			}
			a.Inputs = inputs
			have := p.o.Images[tagID].Inputs
			switch {
			case !tagged:
				a.Reason = "not present"
			case inputs != "" && have != inputs:
				a.Reason = fmt.Sprintf("inputs changed: %s -> %s", image.Short(have), image.Short(inputs))
			default:
				continue
			}
		}
		if base := p.d.BuildBases[name]; a.Op == OpBuild && base != "" && base != name {
			if _, declared := p.set.Images[base]; declared {
				a.DependsOn = append(a.DependsOn, Key(manifests.KindImage, base))
			}
		}
		delete(p.imageIDs, name)
		p.imageWait[name] = fmt.Sprintf("waiting for image %s (%s: %s)", name, a.Op, a.Reason)
		p.add(a)
	}
}

// planVolumes creates and updates the declared Volumes.
func (p *planner) planVolumes() {
	for _, name := range sortedKeys(p.set.Volumes) {
		v := p.set.Volumes[name]
		ov, ok := p.o.Volumes[name]
		switch {
		case ok && !ov.Managed:
			p.block(Blocked{Kind: manifests.KindVolume, Name: name, Reason: BlockedNameConflict,
				Message: fmt.Sprintf("volume %s exists and is not managed by zocker: it is never taken over", name)})
		case !ok:
			p.add(&Action{Kind: manifests.KindVolume, Name: name, Op: OpCreateVolume, Reason: "not present",
				Volume: v, Manifest: p.manifestRef(manifests.KindVolume, name)})
		default:
			if ch := volumeChanges(v, ov); len(ch) > 0 {
				p.add(&Action{Kind: manifests.KindVolume, Name: name, Op: OpUpdateVolume,
					Reason: strings.Join(ch, ", ") + " changed", Volume: v, Manifest: p.manifestRef(manifests.KindVolume, name)})
			}
		}
	}
}

// planContainers converges every declared Container.
func (p *planner) planContainers() {
	for _, name := range sortedKeys(p.set.Containers) {
		c := p.set.Containers[name]
		oc, ok := p.o.Containers[name]
		if holder, foreign := p.o.Foreign[name]; foreign {
			msg := fmt.Sprintf("name %s is held by %s, not managed by zocker: it is never taken over", name, holder)
			if holder == HolderRun {
				msg = fmt.Sprintf("name in use by %s: it is never taken over (zocker-reconcile rm %s frees it)", HolderRun, name)
			}
			p.block(Blocked{Kind: manifests.KindContainer, Name: name, Reason: BlockedNameConflict, Message: msg})
			continue
		}
		if ok && !oc.Managed {
			p.block(Blocked{Kind: manifests.KindContainer, Name: name, Reason: BlockedNameConflict,
				Message: fmt.Sprintf("container %s exists and is not managed by zocker: it is never taken over", name)})
			continue
		}
		spec := NormalizeSpec(c)
		p.specs[name] = infoOf(&spec)
		imageID, ready := p.imageIDs[spec.Image]
		if !ready {
			msg, making := p.imageWait[spec.Image]
			if !making {
				msg = fmt.Sprintf("image %s is neither declared nor present", spec.Image)
			}
			p.block(Blocked{Kind: manifests.KindContainer, Name: name, Reason: BlockedWaitingForImage, Message: msg})
			continue
		}
		sum := specSum(name, spec, imageID)
		pol, gated := PolicyOf(&spec)
		var op Op
		var reason string
		switch {
		case (!ok || !oc.Exists) && len(p.o.Previous[name]) > 0:
			// An update was interrupted between keeping the old clone and
			// making the new one: the old version comes back first.
			prev := p.o.Previous[name]
			p.addRollback(name, prev[len(prev)-1], "", "update interrupted before the new version was made", "")
			continue
		case !ok || !oc.Exists:
			op, reason = OpCreate, "not present"
		case oc.RolledBack != "" && sameHash(sum, oc.RolledBack):
			p.holdRolledBack(oc)
			continue
		case !oc.UpdateStarted.IsZero() && sameHash(sum, oc.SpecHash) && oc.ImageID == imageID:
			p.planPending(c, &spec, oc, pol, gated)
			continue
		case !sameHash(sum, oc.SpecHash) || oc.ImageID != imageID:
			op, reason = OpReplace, replaceReason(oc, c, spec, imageID)
			if note := writesNote(oc); note != "" {
				reason += "; " + note
				if gated && pol.ProtectWrites {
					p.block(Blocked{Kind: manifests.KindContainer, Name: name, Op: OpReplace, Reason: BlockedProtectWrites,
						Message: reason + ": move that data to a volume, or remove spec.update.protectWrites"})
					continue
				}
			}
		default:
			op, reason = driftOp(spec.State, oc)
			if op == "" {
				continue // in sync: the common case, kept free of allocations
			}
		}
		deps, missing := p.volumeDeps(spec)
		if missing != "" {
			p.block(Blocked{Kind: manifests.KindContainer, Name: name, Op: op, Reason: BlockedMissingVolume, Message: missing})
			continue
		}
		a := &Action{Kind: manifests.KindContainer, Name: name, Op: op, Reason: reason, Container: c,
			Manifest: p.manifestRef(manifests.KindContainer, name)}
		a.SpecHash = hex.EncodeToString(sum[:])
		if op == OpCreate || op == OpReplace {
			a.ImageID, a.DependsOn = imageID, deps
		}
		p.add(a)
	}
}

// driftOp is the start or stop for a container that exists with the right
// spec but whose running state differs from the wanted one, or "".
func driftOp(state string, oc ObservedContainer) (Op, string) {
	switch {
	case state == manifests.StateRunning && !oc.Running:
		return OpStart, "not running"
	case state == manifests.StateStopped && oc.Running:
		return OpStop, "running, spec.state is Stopped"
	}
	return "", ""
}

// volumeDeps returns the keys of the volume actions a container must follow,
// or why a mounted Volume is missing.
func (p *planner) volumeDeps(spec manifests.ContainerSpec) (deps []string, missing string) {
	for _, m := range spec.Volumes {
		if m.Volume == "" {
			continue
		}
		key := Key(manifests.KindVolume, m.Volume)
		if _, ok := p.actions[key]; ok {
			deps = append(deps, key)
			continue
		}
		if _, declared := p.set.Volumes[m.Volume]; declared {
			if ov, ok := p.o.Volumes[m.Volume]; ok && !ov.Managed {
				return nil, fmt.Sprintf("volume %s is not managed by zocker", m.Volume)
			}
			continue
		}
		ov, ok := p.o.Volumes[m.Volume]
		switch {
		case !ok:
			return nil, fmt.Sprintf("volume %s is neither declared nor present", m.Volume)
		case !ov.Managed:
			return nil, fmt.Sprintf("volume %s is not managed by zocker", m.Volume)
		}
	}
	slices.Sort(deps)
	return slices.Compact(deps), ""
}

// planUndeclared handles managed objects no manifest declares: kept ones
// (broken file) hold their applied spec, duplicates are left alone, the rest
// are prune candidates, returned for the guards.
func (p *planner) planUndeclared(dup map[string]bool, kept map[string]string) (pruneC, pruneV []*Action) {
	for _, name := range sortedKeys(p.o.Containers) {
		oc := p.o.Containers[name]
		if _, declared := p.set.Containers[name]; declared || !oc.Managed {
			continue
		}
		key := Key(manifests.KindContainer, name)
		if dup[key] {
			continue
		}
		if ref, ok := kept[key]; ok {
			p.keepContainer(oc, ref)
			continue
		}
		a := &Action{Kind: manifests.KindContainer, Name: name, Op: OpPrune, Reason: "removed from manifests", Manifest: oc.Manifest}
		pruneC = append(pruneC, a)
	}
	for _, name := range sortedKeys(p.o.Previous) {
		// Previous clones whose container is gone and not declared (pruned
		// while an update was interrupted) go the way of their container.
		_, declared := p.set.Containers[name]
		_, current := p.o.Containers[name]
		if declared || current || dup[Key(manifests.KindContainer, name)] {
			continue
		}
		if _, ok := kept[Key(manifests.KindContainer, name)]; ok {
			continue
		}
		pruneC = append(pruneC, &Action{Kind: manifests.KindContainer, Name: name, Op: OpPrune,
			Reason: "removed from manifests (previous clones only)"})
	}
	for _, name := range sortedKeys(p.o.Volumes) {
		ov := p.o.Volumes[name]
		if _, declared := p.set.Volumes[name]; declared || !ov.Managed {
			continue
		}
		key := Key(manifests.KindVolume, name)
		if dup[key] {
			continue
		}
		if ref, ok := kept[key]; ok {
			p.block(Blocked{Kind: manifests.KindVolume, Name: name, Reason: BlockedInvalidManifest,
				Message: fmt.Sprintf("%s failed to load: volume %s is kept as it is", ref, name)})
			continue
		}
		if manifests.ReclaimPolicyOrDefault(ov.ReclaimPolicy) != manifests.ReclaimDelete {
			// Retain: removing the manifest never destroys data.
			continue
		}
		pruneV = append(pruneV, &Action{Kind: manifests.KindVolume, Name: name, Op: OpDestroyVolume,
			Reason: "removed from manifests, reclaimPolicy Delete", Manifest: ov.Manifest})
	}
	return pruneC, pruneV
}

// keepContainer holds a container whose manifest file is broken at its
// applied spec: no replace, no prune, but it is still kept running (or
// stopped) as that spec says.
func (p *planner) keepContainer(oc ObservedContainer, ref string) {
	p.block(Blocked{Kind: manifests.KindContainer, Name: oc.Name, Reason: BlockedInvalidManifest,
		Message: fmt.Sprintf("%s failed to load: container %s keeps its last applied spec", ref, oc.Name)})
	applied, err := DecodeAppliedSpec(oc.Name, oc.Spec)
	if err != nil || !oc.Exists {
		return
	}
	p.specs[oc.Name] = infoOf(&applied.Spec)
	if op, reason := driftOp(applied.Spec.State, oc); op != "" {
		if op == OpStart && hasEnvDigests(applied.Spec) {
			// The applied spec records env values as digests only (no
			// secret in ZFS): it cannot start the container again.
			p.block(Blocked{Kind: manifests.KindContainer, Name: oc.Name, Reason: BlockedInvalidManifest,
				Message: fmt.Sprintf("container %s is not running and cannot be started from its last applied spec (its env values are not stored): fix %s", oc.Name, ref)})
			return
		}
		p.add(&Action{Kind: manifests.KindContainer, Name: oc.Name, Op: op, Reason: reason + " (last applied spec kept)",
			Container: applied, Manifest: oc.Manifest, SpecHash: oc.SpecHash})
	}
}

// guardPrunes applies the empty-manifests and max-prune guards, then adds
// the prunes that pass them, and holds back the destruction of volumes that
// remaining containers still mount.
func (p *planner) guardPrunes(pruneC, pruneV []*Action) {
	all := append(slices.Clip(pruneC), pruneV...)
	if len(all) == 0 {
		return
	}
	empty := p.set.Missing || len(p.set.Images)+len(p.set.Containers)+len(p.set.Volumes)+len(p.set.Blocked) == 0
	maxPrune := p.opts.MaxPrune
	if maxPrune == 0 {
		maxPrune = DefaultMaxPrune
	}
	var reason, msg string
	switch {
	case empty && !p.opts.AllowEmpty:
		what := "empty"
		if p.set.Missing {
			what = "missing"
		}
		reason = BlockedEmptyManifests
		msg = fmt.Sprintf("the manifest directory is %s while managed objects exist: nothing is pruned without --allow-empty", what)
	case maxPrune > 0 && len(all) > maxPrune:
		// Volume destructions count: they lose data, containers do not (M8).
		reason = BlockedMaxPrune
		msg = fmt.Sprintf("%d prunes (%d containers, %d volumes destroyed) exceed --max-prune %d: nothing is pruned", len(all), len(pruneC), len(pruneV), maxPrune)
	}
	if reason != "" {
		for _, a := range all {
			p.block(Blocked{Kind: a.Kind, Name: a.Name, Op: a.Op, Reason: reason, Message: msg})
		}
		return
	}
	for _, a := range pruneC {
		p.add(a)
	}
	for _, a := range pruneV {
		users := p.volumeUsers(a.Name)
		if len(users) > 0 {
			p.block(Blocked{Kind: a.Kind, Name: a.Name, Op: a.Op, Reason: BlockedVolumeInUse,
				Message: fmt.Sprintf("still mounted by container %s", strings.Join(users, ", "))})
			continue
		}
		// Destroy after every container that mounted it is gone or re-cloned.
		for _, name := range sortedKeys(p.o.Containers) {
			ca, ok := p.actions[Key(manifests.KindContainer, name)]
			if !ok || (ca.Op != OpPrune && ca.Op != OpReplace) {
				continue
			}
			if spec := p.appliedSpec(name); spec != nil && mounts(spec.Volumes, a.Name) {
				a.DependsOn = append(a.DependsOn, ca.Key())
			}
		}
		p.add(a)
	}
}

// volumeUsers names the containers that stay (declared, kept, or unmanaged
// leftovers are not counted) and mount volume.
func (p *planner) volumeUsers(volume string) []string {
	var users []string
	for _, name := range sortedKeys(p.specs) {
		if a, ok := p.actions[Key(manifests.KindContainer, name)]; ok && a.Op == OpPrune {
			continue
		}
		if mounts(p.specs[name].volumes, volume) {
			users = append(users, name)
		}
	}
	return users
}

func mounts(volumes []manifests.VolumeMount, volume string) bool {
	for _, m := range volumes {
		if m.Volume == volume {
			return true
		}
	}
	return false
}

// appliedSpec decodes an observed container's zocker:spec, nil when unreadable.
func (p *planner) appliedSpec(name string) *manifests.ContainerSpec {
	c, err := DecodeAppliedSpec(name, p.o.Containers[name].Spec)
	if err != nil {
		return nil
	}
	return &c.Spec
}

// blockDuplicates reports every key declared more than once: it is neither
// changed nor pruned this pass.
func (p *planner) blockDuplicates() {
	for _, key := range p.set.Blocked {
		kind, name, _ := strings.Cut(key, "/")
		var files []string
		for _, pr := range p.set.Problems {
			if pr.Object == key && pr.Severity != manifests.SeverityWarning {
				files = append(files, ManifestRef(p.set, pr.File))
			}
		}
		slices.Sort(files)
		msg := "declared more than once: neither changed nor pruned until one declaration is removed"
		if files = slices.Compact(files); len(files) > 0 {
			msg = fmt.Sprintf("declared more than once (%s): neither changed nor pruned until one declaration is removed", strings.Join(files, ", "))
		}
		p.block(Blocked{Kind: kind, Name: name, Reason: BlockedDuplicate, Message: msg})
	}
}

// isStartOp says whether an action leaves a container running (when its
// state says so): these follow their dependencies.
func isStartOp(op Op) bool {
	return op == OpCreate || op == OpReplace || op == OpStart || op == OpRollback
}

// isStopOp says whether an action stops a container: these go before the
// stops of the containers they depend on.
func isStopOp(op Op) bool { return op == OpStop || op == OpPrune }

// blockMissingDependencies orders container starts after the starts of
// their dependsOn containers, and holds back a start whose dependency
// neither runs (healthy, when it has a health check) nor is being started.
// Holding one back can hold back its dependents in turn, so it repeats until
// nothing changes.
func (p *planner) blockMissingDependencies() {
	names := sortedKeys(p.specs)
	for changed := true; changed; {
		changed = false
		for _, name := range names {
			key := Key(manifests.KindContainer, name)
			a, ok := p.actions[key]
			spec := p.specs[name]
			if !ok || !isStartOp(a.Op) || spec.state != manifests.StateRunning {
				continue
			}
			var waiting []string
			for _, dep := range spec.dependsOn {
				if !p.dependencyReady(dep) {
					waiting = append(waiting, dep)
				}
			}
			if len(waiting) > 0 {
				delete(p.actions, key)
				p.block(Blocked{Kind: manifests.KindContainer, Name: name, Op: a.Op, Reason: BlockedWaitingForDependency,
					Message: fmt.Sprintf("%s: dependsOn %s is not running and not being started", a.Reason, strings.Join(waiting, ", "))})
				changed = true
			}
		}
	}
	for _, name := range names {
		a, ok := p.actions[Key(manifests.KindContainer, name)]
		if !ok || !isStartOp(a.Op) || p.specs[name].state != manifests.StateRunning {
			continue
		}
		for _, dep := range p.specs[name].dependsOn {
			dkey := Key(manifests.KindContainer, dep)
			if da, ok := p.actions[dkey]; ok && isStartOp(da.Op) {
				a.DependsOn = append(a.DependsOn, dkey)
			}
		}
		slices.Sort(a.DependsOn)
	}
}

// dependencyReady says whether a container that another one depends on is
// being started by this plan, or runs (and is not unhealthy or still
// starting its health checks) and is not being stopped.
func (p *planner) dependencyReady(dep string) bool {
	da, planned := p.actions[Key(manifests.KindContainer, dep)]
	if planned && isStartOp(da.Op) {
		return true
	}
	if planned && isStopOp(da.Op) {
		return false
	}
	oc, ok := p.o.Containers[dep]
	return ok && oc.Exists && oc.Running && oc.Health != HealthUnhealthy && oc.Health != HealthStarting
}

// linkStops orders container stops and prunes before those of the
// containers they depend on (the reverse of the start order). Prunes use the
// dependsOn of the applied spec.
func (p *planner) linkStops() {
	for _, key := range sortedKeys(p.actions) {
		a := p.actions[key]
		if a.Kind != manifests.KindContainer || !isStopOp(a.Op) {
			continue
		}
		var deps []string
		if spec, ok := p.specs[a.Name]; ok {
			deps = spec.dependsOn
		} else if spec := p.appliedSpec(a.Name); spec != nil {
			deps = spec.DependsOn
		}
		for _, dep := range deps {
			dkey := Key(manifests.KindContainer, dep)
			if da, ok := p.actions[dkey]; ok && isStopOp(da.Op) {
				da.DependsOn = append(da.DependsOn, key)
			}
		}
	}
	for _, a := range p.actions {
		if len(a.DependsOn) > 1 {
			slices.Sort(a.DependsOn)
			a.DependsOn = slices.Compact(a.DependsOn)
		}
	}
}

// phase ranks actions for the execution order: images, then volume creation
// and updates, then container stops and prunes, then container starts, then
// volume destruction.
func phase(a *Action) int {
	switch {
	case a.Kind == manifests.KindImage:
		return 0
	case a.Op == OpCreateVolume || a.Op == OpUpdateVolume:
		return 1
	case isStopOp(a.Op):
		return 2
	case a.Kind == manifests.KindContainer:
		return 3
	default:
		return 4
	}
}

// KindRank orders kinds as plans and the status list them: Image, Volume,
// then Container.
func KindRank(kind string) int {
	switch kind {
	case manifests.KindImage:
		return 0
	case manifests.KindVolume:
		return 1
	default:
		return 2
	}
}

// readyQueue is a heap of actions ready to run, lowest phase and name first.
type readyQueue []*Action

func (q readyQueue) Len() int { return len(q) }
func (q readyQueue) Less(i, j int) bool {
	if pi, pj := phase(q[i]), phase(q[j]); pi != pj {
		return pi < pj
	}
	if q[i].Kind != q[j].Kind {
		return KindRank(q[i].Kind) < KindRank(q[j].Kind)
	}
	return q[i].Name < q[j].Name
}
func (q readyQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *readyQueue) Push(x any)   { *q = append(*q, x.(*Action)) }
func (q *readyQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// order sorts the actions topologically over DependsOn, breaking ties by
// phase, kind and name, so that the output is deterministic. A cycle (which
// validation rejects) is broken by appending what remains in the same order.
func (p *planner) order() []Action {
	if len(p.actions) == 0 {
		return nil
	}
	indeg := make(map[string]int, len(p.actions))
	next := make(map[string][]*Action)
	for key, a := range p.actions {
		for _, dep := range a.DependsOn {
			if _, ok := p.actions[dep]; ok {
				indeg[key]++
				next[dep] = append(next[dep], a)
			}
		}
	}
	q := make(readyQueue, 0, len(p.actions))
	for key, a := range p.actions {
		if indeg[key] == 0 {
			q = append(q, a)
		}
	}
	heap.Init(&q)
	out := make([]Action, 0, len(p.actions))
	for q.Len() > 0 {
		a := heap.Pop(&q).(*Action)
		out = append(out, *a)
		for _, n := range next[a.Key()] {
			if indeg[n.Key()]--; indeg[n.Key()] == 0 {
				heap.Push(&q, n)
			}
		}
	}
	if len(out) < len(p.actions) {
		var rest readyQueue
		for key, a := range p.actions {
			if indeg[key] > 0 {
				rest = append(rest, a)
			}
		}
		slices.SortFunc(rest, cmpActions)
		for _, a := range rest {
			out = append(out, *a)
		}
	}
	return out
}

func cmpActions(a, b *Action) int {
	q := readyQueue{a, b}
	switch {
	case q.Less(0, 1):
		return -1
	case q.Less(1, 0):
		return 1
	}
	return 0
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
