package oci

import (
	"bytes"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// imageConfig maps an OCI image config onto the config containers use:
// Entrypoint, Cmd, Env, User, WorkingDir, ExposedPorts, Volumes, Labels.
func imageConfig(cf *v1.ConfigFile) zfs.Config {
	c := cf.Config
	out := zfs.Config{
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		User:       c.User,
		Workdir:    c.WorkingDir,
		Labels:     c.Labels,
	}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue // "K" alone means nothing in an OCI config
		}
		if out.Env == nil {
			out.Env = map[string]string{}
		}
		out.Env[k] = v
	}
	for p := range c.ExposedPorts {
		out.ExposedPorts = append(out.ExposedPorts, p)
	}
	sort.Strings(out.ExposedPorts)
	for v := range c.Volumes {
		out.Volumes = append(out.Volumes, v)
	}
	sort.Strings(out.Volumes)
	return out
}

// ociConfig is the reverse, for push: the image config as an OCI config.
func ociConfig(c zfs.Config) v1.Config {
	out := v1.Config{
		Entrypoint: c.Entrypoint,
		Cmd:        c.Cmd,
		User:       c.User,
		WorkingDir: c.Workdir,
		Labels:     c.Labels,
	}
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out.Env = append(out.Env, k+"="+c.Env[k])
	}
	if len(c.ExposedPorts) > 0 {
		out.ExposedPorts = map[string]struct{}{}
		for _, p := range c.ExposedPorts {
			out.ExposedPorts[p] = struct{}{}
		}
	}
	if len(c.Volumes) > 0 {
		out.Volumes = map[string]struct{}{}
		for _, v := range c.Volumes {
			out.Volumes[v] = struct{}{}
		}
	}
	return out
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
