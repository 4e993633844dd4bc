package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/supervisor"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// ImageConfig is the part of an image's recorded config that decides how a
// container of it runs (what a Zockerfile's CMD, ENTRYPOINT, ENV, USER and
// WORKDIR set).
type ImageConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // KEY=VALUE
	User       string
	Workdir    string
}

// RuntimeInputs is what a container needs besides its manifest and image to
// run: where its clone is mounted, where its Volumes are, and its address.
type RuntimeInputs struct {
	// Root is the mountpoint of the container's clone.
	Root string
	// VolumePaths maps a managed Volume's name to its dataset's mountpoint.
	VolumePaths map[string]string
	// Address is the loopback address allocated to the container (loopback mode).
	Address string
	// LoopbackInterface carries loopback addresses (lo0 by default).
	LoopbackInterface string
	// Nameservers replace the host's loopback nameservers in loopback and
	// alias jails (--jail-nameserver, FreeBSD).
	Nameservers []string
}

// SupervisorConfig turns a declared container and its image's config into
// the supervisor's config: the jail to create and the process to run in it,
// with Docker's rules for ENTRYPOINT and CMD (the container's command replaces
// the image's CMD; the entrypoint stays in front) and ENV (the container's env
// is merged over the image's).
func SupervisorConfig(c *manifests.Container, img ImageConfig, in RuntimeInputs) (supervisor.Config, error) {
	s := &c.Spec
	name := c.Metadata.Name
	cfg := supervisor.Config{
		Name:          name,
		RestartPolicy: s.RestartPolicy,
		StopSignal:    s.StopSignal,
	}
	argv := img.Cmd
	if !s.Command.IsZero() {
		argv = s.Command.Args()
	}
	argv = append(slices.Clone(img.Entrypoint), argv...)
	if len(argv) == 0 {
		return cfg, fmt.Errorf("container %s: no command: the manifest has no spec.command and image %s has no CMD or ENTRYPOINT", name, s.Image)
	}
	user := firstNonEmpty(s.User, img.User, "root")
	workdir := firstNonEmpty(s.Workdir, img.Workdir, "/")
	cfg.Process = jail.Process{Argv: argv, Env: mergeEnv(img.Env, s.Env), User: user, Workdir: workdir}

	if s.StopTimeout != "" {
		d, err := manifests.ParseDuration(s.StopTimeout)
		if err != nil {
			return cfg, fmt.Errorf("container %s: spec.stopTimeout: %w", name, err)
		}
		cfg.StopTimeout = supervisor.Duration(d)
	}
	if hc := s.Healthcheck; hc != nil {
		h := &supervisor.Healthcheck{Argv: hc.Command.Args(), Retries: hc.Retries}
		for _, f := range []struct {
			field, value string
			dst          *supervisor.Duration
		}{{"interval", hc.Interval, &h.Interval}, {"timeout", hc.Timeout, &h.Timeout}} {
			if f.value == "" {
				continue
			}
			d, err := manifests.ParseDuration(f.value)
			if err != nil {
				return cfg, fmt.Errorf("container %s: spec.healthcheck.%s: %w", name, f.field, err)
			}
			*f.dst = supervisor.Duration(d)
		}
		cfg.Healthcheck = h
	}

	spec := jail.Spec{
		Name:        name,
		Root:        in.Root,
		Hostname:    firstNonEmpty(s.Hostname, name),
		Securelevel: s.Securelevel,
		Params:      s.JailParams,
		Network:     jail.Network{Mode: s.Network.Mode},
		Limits:      jail.Limits{CPUPercent: s.Resources.CPU, MaxProcesses: s.Resources.MaxProcesses},
		Nameservers: in.Nameservers,
	}
	switch s.Network.Mode {
	case jail.NetLoopback:
		if in.Address == "" {
			return cfg, fmt.Errorf("container %s: loopback network without an allocated address", name)
		}
		spec.Network.Interface = firstNonEmpty(in.LoopbackInterface, "lo0")
		spec.Network.Addresses = []string{in.Address}
	case jail.NetAlias:
		spec.Network.Interface = s.Network.Interface
		spec.Network.Addresses = s.Network.Addresses
	}
	if s.Resources.Memory != "" {
		n, err := manifests.ParseQuantity(s.Resources.Memory)
		if err != nil {
			return cfg, fmt.Errorf("container %s: spec.resources.memory: %w", name, err)
		}
		spec.Limits.MemoryBytes = n
	}
	for i, v := range s.Volumes {
		m := jail.Mount{Source: v.HostPath, Target: v.Path, ReadOnly: v.ReadOnly}
		if v.Volume != "" {
			p, ok := in.VolumePaths[v.Volume]
			if !ok || p == "" {
				return cfg, fmt.Errorf("container %s: spec.volumes[%d]: volume %s does not exist", name, i, v.Volume)
			}
			m.Source = p
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	cfg.Jail = spec
	return cfg, nil
}

// mergeEnv lays the container's env over the image's, keeping the image's
// order and appending new keys sorted, so the result is deterministic.
func mergeEnv(image []string, over map[string]string) []string {
	out := make([]string, 0, len(image)+len(over))
	seen := map[string]bool{}
	for _, kv := range image {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := over[k]; ok {
			kv = k + "=" + v
		}
		seen[k] = true
		out = append(out, kv)
	}
	keys := make([]string, 0, len(over))
	for k := range over {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, k+"="+over[k])
	}
	return out
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
