package reconcile

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/image"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Health-gated updates (Container.spec.update). A replacement with an update
// policy keeps the old clone aside as a "previous" clone and marks the new one
// as pending (ObservedContainer.UpdateStarted). Each later pass looks at the
// pending version: once it is good the update is confirmed (previous clones
// beyond keepPrevious are pruned); when it fails the previous clone is brought
// back and the failed spec is remembered (ObservedContainer.RolledBack) so that
// it is not tried again until the manifest or the image changes.

// Update operations a plan may contain.
const (
	// OpRollback stops and destroys a Container's current clone (a failed
	// new version, or nothing after an interrupted update), renames its
	// newest previous clone back and starts it with its previous spec.
	OpRollback Op = "rollback"
	// OpConfirm ends a good update: the new version is no longer pending and
	// previous clones beyond keepPrevious are destroyed.
	OpConfirm Op = "confirm"
)

// Blocked reasons of updates.
const (
	// BlockedUpdating: a new version runs and has not proven itself yet.
	BlockedUpdating = "update-in-progress"
	// BlockedRolledBack: the declared version failed and was rolled back; it
	// is not tried again until the manifest or the image changes.
	BlockedRolledBack = "rolled-back"
	// BlockedUpdateFailed: a new version failed with rollback off.
	BlockedUpdateFailed = "update-failed"
	// BlockedProtectWrites: a replacement would discard what the container
	// wrote outside its volumes and spec.update.protectWrites is on.
	BlockedProtectWrites = "protect-writes"
)

// WrittenThreshold is the amount of data written into a clone below which a
// replacement does not mention it: a clone that only ran holds a few KiB of
// metadata and copied host files (resolv.conf, localtime).
const WrittenThreshold = 1 << 20

// ObservedPrevious is a kept previous clone of a container.
type ObservedPrevious struct {
	// ID names the clone among the container's previous clones (the last
	// element of its dataset name); IDs sort oldest first.
	ID string
	// SpecHash, Spec and ImageID are what the clone was made for.
	SpecHash string
	Spec     string
	ImageID  string
}

// UpdatePolicy is a container's spec.update with its defaults applied.
type UpdatePolicy struct {
	HealthTimeout time.Duration
	Rollback      bool
	KeepPrevious  int
	ProtectWrites bool
}

// PolicyOf returns the update policy of a container, and false when it has
// none (a plain replace).
func PolicyOf(s *manifests.ContainerSpec) (UpdatePolicy, bool) {
	u := s.Update
	if u == nil {
		return UpdatePolicy{}, false
	}
	p := UpdatePolicy{Rollback: true, KeepPrevious: manifests.DefaultUpdateKeepPrevious, ProtectWrites: u.ProtectWrites}
	p.HealthTimeout, _ = time.ParseDuration(manifests.DefaultUpdateHealthTimeout)
	if d, err := time.ParseDuration(u.HealthTimeout); err == nil && d > 0 {
		p.HealthTimeout = d
	}
	if u.Rollback != nil {
		p.Rollback = *u.Rollback
	}
	if u.KeepPrevious != nil {
		p.KeepPrevious = *u.KeepPrevious
	}
	return p, true
}

// gate is the verdict on a pending new version.
type gate int

const (
	gateWait gate = iota
	gateGood
	gateFailed
	// gateInterrupted: the new version never ran (the service stopped
	// between making and starting it).
	gateInterrupted
)

// judge decides whether the pending version of oc is good, failed or still
// on trial at now, with the evidence for people.
func judge(oc ObservedContainer, spec *manifests.ContainerSpec, pol UpdatePolicy, now time.Time) (gate, string) {
	age := now.Sub(oc.UpdateStarted)
	switch {
	case oc.Health == HealthUnhealthy:
		msg := "new version unhealthy"
		if out := strings.TrimSpace(oc.HealthOutput); out != "" {
			msg += ": " + firstLine(out)
		}
		return gateFailed, msg
	case oc.Restarts > 0 || oc.Exited:
		return gateFailed, fmt.Sprintf("new version exited with code %d", oc.LastExitCode)
	case !oc.Running && !oc.Exited:
		return gateInterrupted, "update interrupted before the new version started"
	case !oc.Running:
		return gateFailed, "new version is not running"
	case spec.Healthcheck != nil && oc.Health == HealthHealthy:
		return gateGood, "new version healthy"
	case spec.Healthcheck != nil && age >= pol.HealthTimeout:
		return gateFailed, fmt.Sprintf("new version unhealthy after %s", pol.HealthTimeout)
	case spec.Healthcheck == nil && age >= pol.HealthTimeout:
		return gateGood, fmt.Sprintf("new version ran %s without exiting", pol.HealthTimeout)
	}
	left := (pol.HealthTimeout - age).Round(time.Second)
	return gateWait, fmt.Sprintf("new version on trial, %s left of %s", left, pol.HealthTimeout)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	if len(line) > 200 {
		line = line[:200] + "..."
	}
	return line
}

// planPending handles a container whose current clone is a pending update
// made for the declared spec: confirm it, roll it back, or wait. gated is
// false when the declared spec no longer has an update policy.
func (p *planner) planPending(c *manifests.Container, spec *manifests.ContainerSpec, oc ObservedContainer, pol UpdatePolicy, gated bool) {
	prev := p.o.Previous[oc.Name]
	verdict, why := judge(oc, spec, pol, p.opts.Now)
	if !gated {
		// The policy was removed during the trial: end it as a plain
		// replace would have, keeping no previous clone.
		verdict, why = gateGood, "spec.update removed during the trial"
	}
	switch verdict {
	case gateWait:
		p.block(Blocked{Kind: manifests.KindContainer, Name: oc.Name, Reason: BlockedUpdating, Message: why})
	case gateGood:
		a := &Action{Kind: manifests.KindContainer, Name: oc.Name, Op: OpConfirm, Reason: why,
			Container: c, Manifest: p.manifestRef(manifests.KindContainer, oc.Name), SpecHash: oc.SpecHash}
		if n := len(prev) - pol.KeepPrevious; n > 0 {
			for _, pc := range prev[:n] {
				a.Previous = append(a.Previous, pc.ID)
			}
			a.Reason += fmt.Sprintf("; prunes %d previous clone(s)", n)
		}
		p.add(a)
	case gateInterrupted:
		if len(prev) == 0 {
			p.block(Blocked{Kind: manifests.KindContainer, Name: oc.Name, Reason: BlockedUpdateFailed,
				Message: why + " and no previous clone is kept"})
			return
		}
		// Not a verdict on the new version: the old one comes back and the
		// update is tried again by the next pass.
		p.addRollback(oc.Name, prev[len(prev)-1], "", why, "")
	case gateFailed:
		if !pol.Rollback || len(prev) == 0 {
			p.block(Blocked{Kind: manifests.KindContainer, Name: oc.Name, Reason: BlockedUpdateFailed,
				Message: why + " (rollback is off or no previous clone is kept)"})
			return
		}
		p.addRollback(oc.Name, prev[len(prev)-1], oc.SpecHash, why, p.changedSince(prev[len(prev)-1], oc))
	}
}

// addRollback plans bringing back the previous clone pc of container name;
// failed is the spec hash of the version given up ("" when there was none).
func (p *planner) addRollback(name string, pc ObservedPrevious, failed, why, changed string) {
	applied, err := DecodeAppliedSpec(name, pc.Spec)
	if err != nil {
		p.block(Blocked{Kind: manifests.KindContainer, Name: name, Reason: BlockedUpdateFailed,
			Message: fmt.Sprintf("%s, and previous clone %s cannot be restored: %v", why, pc.ID, err)})
		return
	}
	if c, ok := p.set.Containers[name]; ok {
		// Env values are stored as digests only (secret.go): the declared
		// values give back those that did not change; the engine recovers
		// the others from its root-only copy.
		RecoverEnv(applied.Spec.Env, c.Spec.Env)
	}
	reason := why
	if changed != "" {
		reason += " (" + changed + ")"
	}
	p.specs[name] = infoOf(&applied.Spec)
	p.add(&Action{Kind: manifests.KindContainer, Name: name, Op: OpRollback, Reason: reason,
		Container: applied, SpecHash: pc.SpecHash, ImageID: pc.ImageID, Previous: []string{pc.ID},
		Failed: failed, Manifest: p.manifestRef(manifests.KindContainer, name)})
}

// changedSince names what differs between a previous clone and the current
// one: the spec fields, or the image.
func (p *planner) changedSince(pc ObservedPrevious, oc ObservedContainer) string {
	var parts []string
	if before, err := DecodeAppliedSpec(oc.Name, pc.Spec); err == nil {
		if after, err := DecodeAppliedSpec(oc.Name, oc.Spec); err == nil {
			for _, f := range SpecChanges(before.Spec, after.Spec) {
				parts = append(parts, f+" changed")
			}
		}
	}
	if pc.ImageID != oc.ImageID && len(parts) == 0 {
		parts = append(parts, "new image "+image.Short(oc.ImageID))
	}
	return strings.Join(parts, ", ")
}

// writesNote is the part of a replacement's reason that says what it
// discards, or "".
func writesNote(oc ObservedContainer) string {
	if oc.Written < WrittenThreshold {
		return ""
	}
	return fmt.Sprintf("discards %s written outside volumes", image.Size(oc.Written))
}

// holdRolledBack reports a container whose declared version was rolled back,
// and keeps the restored version running (or stopped) as its spec says.
func (p *planner) holdRolledBack(oc ObservedContainer) {
	p.block(Blocked{Kind: manifests.KindContainer, Name: oc.Name, Reason: BlockedRolledBack,
		Message: "rolled back container " + oc.Name + ": " + oc.RollbackReason})
	applied, err := DecodeAppliedSpec(oc.Name, oc.Spec)
	if err != nil {
		return
	}
	p.specs[oc.Name] = infoOf(&applied.Spec)
	if op, reason := driftOp(applied.Spec.State, oc); op != "" {
		p.add(&Action{Kind: manifests.KindContainer, Name: oc.Name, Op: op, Reason: reason + " (rolled-back version)",
			Container: applied, Manifest: oc.Manifest, SpecHash: oc.SpecHash})
	}
}

// RecoverEnv replaces, in env (an applied spec's, whose values are digests),
// every digest that one of known's values matches by that value, and returns
// the names whose values are still digests, sorted.
func RecoverEnv(env, known map[string]string) (missing []string) {
	for k, v := range env {
		if !IsEnvDigest(v) {
			continue
		}
		if kv, ok := known[k]; ok && EnvDigest(k, kv) == v {
			env[k] = kv
			continue
		}
		missing = append(missing, k)
	}
	slices.Sort(missing)
	return missing
}
