package manifests

import (
	"path/filepath"
	"strings"
)

// Default values applied by Default (and by reconcile's normalisation
// before hashing, so that writing a default out is not a change).
const (
	DefaultNetworkMode         = NetLoopback
	DefaultRestartPolicy       = RestartAlways
	DefaultState               = StateRunning
	DefaultReclaimPolicy       = ReclaimRetain
	DefaultStopSignal          = "SIGTERM"
	DefaultStopTimeout         = "10s"
	DefaultHealthcheckInterval = "30s"
	DefaultHealthcheckTimeout  = "5s"
	DefaultHealthcheckRetries  = 3
	DefaultUpdateHealthTimeout = "60s"
	DefaultUpdateKeepPrevious  = 1
	// MaxUpdateKeepPrevious bounds spec.update.keepPrevious: each kept
	// clone holds the data its container wrote.
	MaxUpdateKeepPrevious = 10
	DefaultZockerfile     = "Zockerfile"
)

// ReclaimPolicyOrDefault is p, or DefaultReclaimPolicy when p is empty (a
// Volume not defaulted yet, or a dataset that records no policy).
func ReclaimPolicyOrDefault(p string) string {
	if p == "" {
		return DefaultReclaimPolicy
	}
	return p
}

// Default fills in the defaults of an *Image, *Container or *Volume, in this
// one place, and makes relative paths (tarball.path, build.context, and
// hostPath when it starts with ./ or ../) absolute against dir, the
// directory of the manifest file. Other values are left alone.
func Default(obj any, dir string) {
	switch o := obj.(type) {
	case *Image:
		s := &o.Spec
		if t := s.Tarball; t != nil {
			t.Path = absolute(t.Path, dir)
			t.SHA256 = strings.ToLower(t.SHA256)
		}
		if b := s.Build; b != nil {
			b.Context = absolute(b.Context, dir)
			if b.File == "" {
				b.File = DefaultZockerfile
			}
		}
		if o := s.OCI; o != nil && o.Archive != "" {
			o.Archive = absolute(o.Archive, dir)
			o.SHA256 = strings.ToLower(o.SHA256)
		}
		if p := s.Pull; p != nil && p.Tag == "" {
			p.Tag = o.Metadata.Name
		}
	case *Volume:
		o.Spec.ReclaimPolicy = ReclaimPolicyOrDefault(o.Spec.ReclaimPolicy)
	case *Container:
		s := &o.Spec
		if s.Hostname == "" {
			s.Hostname = o.Metadata.Name
		}
		if s.Network.Mode == "" {
			s.Network.Mode = DefaultNetworkMode
		}
		for i := range s.Volumes {
			if h := s.Volumes[i].HostPath; strings.HasPrefix(h, "./") || strings.HasPrefix(h, "../") || h == "." || h == ".." {
				s.Volumes[i].HostPath = absolute(h, dir)
			}
		}
		if s.RestartPolicy == "" {
			s.RestartPolicy = DefaultRestartPolicy
		}
		if s.State == "" {
			s.State = DefaultState
		}
		if s.StopSignal == "" {
			s.StopSignal = DefaultStopSignal
		}
		if s.StopTimeout == "" {
			s.StopTimeout = DefaultStopTimeout
		}
		if h := s.Healthcheck; h != nil {
			if h.Interval == "" {
				h.Interval = DefaultHealthcheckInterval
			}
			if h.Timeout == "" {
				h.Timeout = DefaultHealthcheckTimeout
			}
			if h.Retries == 0 {
				h.Retries = DefaultHealthcheckRetries
			}
		}
		if u := s.Update; u != nil {
			if u.HealthTimeout == "" {
				u.HealthTimeout = DefaultUpdateHealthTimeout
			}
			if u.Rollback == nil {
				yes := true
				u.Rollback = &yes
			}
			if u.KeepPrevious == nil {
				n := DefaultUpdateKeepPrevious
				u.KeepPrevious = &n
			}
		}
	}
}

// absolute resolves a relative, non-empty path p against dir.
func absolute(p, dir string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}
