package reconcile

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// specField is one field of ContainerSpec that the reason of a replacement
// can name, with how to read it.
type specField struct {
	path string
	get  func(*manifests.ContainerSpec) any
}

// notReplacing are the ContainerSpec fields (JSON names) whose change never
// needs a new clone: spec.state is converged by start and stop, spec.update
// only says how the next replacement is made. They are not hashed.
var notReplacing = map[string]bool{"state": true, "update": true}

// specFields lists every ContainerSpec field except state (which start and
// stop converge) in manifest order. A test checks that it covers the struct,
// so a new field cannot silently escape the reasons.
var specFields = []specField{
	{"spec.image", func(s *manifests.ContainerSpec) any { return s.Image }},
	{"spec.command", func(s *manifests.ContainerSpec) any { return s.Command }},
	{"spec.env", func(s *manifests.ContainerSpec) any { return s.Env }},
	{"spec.user", func(s *manifests.ContainerSpec) any { return s.User }},
	{"spec.workdir", func(s *manifests.ContainerSpec) any { return s.Workdir }},
	{"spec.hostname", func(s *manifests.ContainerSpec) any { return s.Hostname }},
	{"spec.network", func(s *manifests.ContainerSpec) any { return s.Network }},
	{"spec.volumes", func(s *manifests.ContainerSpec) any { return s.Volumes }},
	{"spec.restartPolicy", func(s *manifests.ContainerSpec) any { return s.RestartPolicy }},
	{"spec.dependsOn", func(s *manifests.ContainerSpec) any { return s.DependsOn }},
	{"spec.healthcheck", func(s *manifests.ContainerSpec) any { return s.Healthcheck }},
	{"spec.resources", func(s *manifests.ContainerSpec) any { return s.Resources }},
	{"spec.stopSignal", func(s *manifests.ContainerSpec) any { return s.StopSignal }},
	{"spec.stopTimeout", func(s *manifests.ContainerSpec) any { return s.StopTimeout }},
	{"spec.securelevel", func(s *manifests.ContainerSpec) any { return s.Securelevel }},
	{"spec.jailParams", func(s *manifests.ContainerSpec) any { return s.JailParams }},
}

// SpecChanges names the fields that differ between two normalized specs
// ("spec.command", "spec.env", ...), in manifest order; spec.state is not
// compared.
func SpecChanges(applied, desired manifests.ContainerSpec) []string {
	var out []string
	for _, f := range specFields {
		if !reflect.DeepEqual(f.get(&applied), f.get(&desired)) {
			out = append(out, f.path)
		}
	}
	return out
}

// replaceReason says why a container whose spec hash differs is replaced:
// the fields that changed against its applied spec, and the image move.
func replaceReason(oc ObservedContainer, desired *manifests.Container, desiredSpec manifests.ContainerSpec, imageID string) string {
	var parts []string
	if applied, err := DecodeAppliedSpec(oc.Name, oc.Spec); err == nil {
		if ch := SpecChanges(applied.Spec, RedactEnv(desiredSpec)); len(ch) > 0 {
			parts = append(parts, strings.Join(ch, ", ")+" changed")
		}
	} else {
		parts = append(parts, "spec hash changed (no readable applied spec)")
	}
	if oc.ImageID != imageID {
		parts = append(parts, fmt.Sprintf("image changed: %s -> %s", image.Short(oc.ImageID), image.Short(imageID)))
	}
	if len(parts) == 0 {
		// The hash differs but no field does: the hash scheme itself changed.
		parts = append(parts, "spec hash changed")
	}
	return strings.Join(parts, "; ")
}

// volumeChanges names what differs between a declared Volume and its dataset.
func volumeChanges(v *manifests.Volume, ov ObservedVolume) []string {
	var out []string
	want, err := quota(v)
	if err != nil || want != ov.Quota {
		// An unparsable quota is left to validation; it shows as a change so
		// that it is noticed rather than silently ignored.
		out = append(out, "spec.quota")
	}
	keys := make([]string, 0, len(v.Spec.Properties))
	for k := range v.Spec.Properties {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if ov.Properties[k] != v.Spec.Properties[k] {
			out = append(out, "spec.properties."+k)
		}
	}
	if manifests.ReclaimPolicyOrDefault(v.Spec.ReclaimPolicy) != manifests.ReclaimPolicyOrDefault(ov.ReclaimPolicy) {
		out = append(out, "spec.reclaimPolicy")
	}
	return out
}

// quota is v's quota in bytes, 0 for none (the grammar of
// manifests.ParseQuantity, which validation already applied).
func quota(v *manifests.Volume) (int64, error) {
	if v.Spec.Quota == "" {
		return 0, nil
	}
	return manifests.ParseQuantity(v.Spec.Quota)
}
