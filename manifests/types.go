// Package manifests holds the zocker/v1 API types (Image, Container, Volume),
// their strict decoding, defaults and validation, and the loading of a
// manifest directory. Nothing in this package touches the host beyond reading
// the manifest files themselves. It is over the house's 1,500 lines
// because the API, its decoder with line numbers and its validation are one
// concern that splits badly.
package manifests

// APIVersion is the only apiVersion this release understands.
const APIVersion = "zocker/v1"

// Kinds of objects a manifest may declare.
const (
	KindImage     = "Image"
	KindContainer = "Container"
	KindVolume    = "Volume"
)

// TypeMeta is the apiVersion/kind header every document carries.
type TypeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

// ObjectMeta names an object. The name becomes a ZFS dataset name and a jail
// name, so it is restricted to image.NameRegexp.
type ObjectMeta struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Image declares an image: a tag and exactly one source.
type Image struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     ImageSpec  `json:"spec"`
}

// ImageSpec holds the image source; exactly one of its fields is set.
type ImageSpec struct {
	// Tarball imports a root filesystem archive (FreeBSD base.txz, a busybox rootfs tar).
	Tarball *TarballSource `json:"tarball,omitempty"`
	// Build builds the image from a Zockerfile.
	Build *BuildSource `json:"build,omitempty"`
	// Pull fetches the image from a Zocker image repository.
	Pull *PullSource `json:"pull,omitempty"`
	// OCI fetches an OCI image from a registry or an OCI image layout archive.
	OCI *OCISource `json:"oci,omitempty"`
}

// OCISource is an OCI image: exactly one of Ref and Archive.
type OCISource struct {
	// Ref is REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST.
	Ref string `json:"ref,omitempty"`
	// Archive is an OCI image layout: a directory, .tar, .tar.gz or .txz;
	// relative to the manifest's directory.
	Archive string `json:"archive,omitempty"`
	// SHA256 is the archive file's digest as 64 hex digits (optional).
	SHA256 string `json:"sha256,omitempty"`
	// Name picks one image of the archive's index by its
	// org.opencontainers.image.ref.name annotation.
	Name string `json:"name,omitempty"`
	// Platform is OS/ARCH[/VARIANT]; default the host's (freebsd/amd64 on FreeBSD).
	Platform string `json:"platform,omitempty"`
	// Insecure allows plain HTTP to the registry (one on loopback).
	Insecure bool `json:"insecure,omitempty"`
}

// TarballSource is a root filesystem archive on disk or behind an https URL.
type TarballSource struct {
	// Path is a local archive; a relative path resolves against the manifest's directory.
	Path string `json:"path,omitempty"`
	// URL is an https address; SHA256 is then required.
	URL string `json:"url,omitempty"`
	// SHA256 is the archive's digest as 64 hex digits: optional for Path, required for URL.
	SHA256 string `json:"sha256,omitempty"`
}

// BuildSource builds an image from a Zockerfile in a context directory.
type BuildSource struct {
	// Context is the build context directory; relative to the manifest's directory.
	Context string `json:"context"`
	// File is the Zockerfile's path inside Context (default "Zockerfile").
	File string `json:"file,omitempty"`
	// Args are the build arguments (ARG) passed to the build.
	Args map[string]string `json:"args,omitempty"`
}

// PullSource names a tag in an image repository.
type PullSource struct {
	// Repository is ssh://[user@]host[:port]/path or file:///path.
	Repository string `json:"repository"`
	// Tag is the tag to pull (default: the Image's name).
	Tag string `json:"tag,omitempty"`
	// AllowedSigners is an OpenSSH allowed_signers file (relative to the
	// manifest's directory) that the tag and every image record must be
	// signed under; it replaces the service's --allowed-signers for this
	// Image.
	AllowedSigners string `json:"allowedSigners,omitempty"`
}

// Volume declares a managed ZFS dataset that containers mount.
type Volume struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     VolumeSpec `json:"spec"`
}

// Reclaim policies for Volumes.
const (
	ReclaimRetain = "Retain"
	ReclaimDelete = "Delete"
)

// VolumeSpec is a Volume's desired state.
type VolumeSpec struct {
	// Quota is the ZFS quota as a binary quantity (512M, 10G); empty means none.
	Quota string `json:"quota,omitempty"`
	// Properties are extra ZFS properties (compression: lz4, ...).
	Properties map[string]string `json:"properties,omitempty"`
	// ReclaimPolicy says what removing the manifest does: Retain (default) keeps the data, Delete destroys it.
	ReclaimPolicy string `json:"reclaimPolicy,omitempty"`
}

// Container declares one supervised command running in its own jail on a
// clone of an image.
type Container struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ContainerSpec `json:"spec"`
}

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// Container states.
const (
	StateRunning = "Running"
	StateStopped = "Stopped"
)

// Network modes.
const (
	NetInherit  = "inherit"
	NetNone     = "none"
	NetLoopback = "loopback"
	NetAlias    = "alias"
)

// ContainerSpec is a Container's desired state.
type ContainerSpec struct {
	// Image is an Image declared in the manifests, or an existing local tag.
	Image string `json:"image"`
	// Command is the argv to run (a YAML list), or a string run by /bin/sh -c.
	// Empty means the image's CMD.
	Command Command `json:"command,omitempty"`
	// Env is merged over the image's ENV.
	Env map[string]string `json:"env,omitempty"`
	// User runs the command (default: the image's USER, else root).
	User string `json:"user,omitempty"`
	// Workdir is the working directory (default: the image's WORKDIR, else /).
	Workdir string `json:"workdir,omitempty"`
	// Hostname defaults to metadata.name.
	Hostname string `json:"hostname,omitempty"`
	// Network selects the jail's network.
	Network Network `json:"network,omitempty"`
	// Volumes are mounted into the jail.
	Volumes []VolumeMount `json:"volumes,omitempty"`
	// RestartPolicy is Always (default), OnFailure or Never.
	RestartPolicy string `json:"restartPolicy,omitempty"`
	// State is Running (default) or Stopped.
	State string `json:"state,omitempty"`
	// DependsOn names Containers that must run (and be healthy) before this one starts.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Healthcheck runs a command in the container periodically.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`
	// Resources are limits: rctl on FreeBSD, cgroups on Linux.
	Resources Resources `json:"resources,omitempty"`
	// StopSignal is sent first on stop (default SIGTERM).
	StopSignal string `json:"stopSignal,omitempty"`
	// StopTimeout is how long to wait before SIGKILL (default 10s).
	StopTimeout string `json:"stopTimeout,omitempty"`
	// Securelevel is the jail's securelevel (FreeBSD only); nil leaves the default.
	Securelevel *int `json:"securelevel,omitempty"`
	// JailParams are extra jail(8) parameters (FreeBSD only).
	JailParams map[string]string `json:"jailParams,omitempty"`
	// Update makes a replacement health-gated: the previous clone is kept
	// until the new one is good and brought back when it is not. Nil keeps
	// the plain replace (stop, destroy, re-clone, start).
	Update *Update `json:"update,omitempty"`
}

// Update is how a Container is replaced when its spec or image changes.
type Update struct {
	// HealthTimeout is how long the new version must run without exiting
	// (or, with a health check, the longest it may take to become healthy)
	// before it counts as good. Default 60s.
	HealthTimeout string `json:"healthTimeout,omitempty"`
	// Rollback brings the previous clone back when the new version fails
	// within HealthTimeout. Default true.
	Rollback *bool `json:"rollback,omitempty"`
	// KeepPrevious is how many previous clones are kept once the new
	// version is good (0..10). Default 1.
	KeepPrevious *int `json:"keepPrevious,omitempty"`
	// ProtectWrites blocks a replacement that would discard data the
	// container wrote outside its volumes, until it is moved to a volume or
	// this flag is removed.
	ProtectWrites bool `json:"protectWrites,omitempty"`
}

// Command is an argv, or a shell string. In YAML it is a list or a string.
type Command struct {
	// Argv is set when the command was a list.
	Argv []string
	// Shell is set when the command was a string; it runs as /bin/sh -c Shell.
	Shell string
}

// Network is the container's network configuration.
type Network struct {
	// Mode is inherit, none, loopback (default) or alias.
	Mode string `json:"mode,omitempty"`
	// Interface is the host interface carrying the addresses (alias only).
	Interface string `json:"interface,omitempty"`
	// Addresses are CIDR addresses (alias only).
	Addresses []string `json:"addresses,omitempty"`
}

// VolumeMount mounts a managed Volume or a host directory into the jail.
type VolumeMount struct {
	// Volume names a managed Volume.
	Volume string `json:"volume,omitempty"`
	// HostPath is an absolute host directory (nullfs on FreeBSD, bind mount on Linux).
	HostPath string `json:"hostPath,omitempty"`
	// Path is the absolute mount point inside the jail.
	Path string `json:"path"`
	// ReadOnly mounts read-only.
	ReadOnly bool `json:"readOnly,omitempty"`
}

// Healthcheck is a command run in the container on an interval.
type Healthcheck struct {
	Command  Command `json:"command"`
	Interval string  `json:"interval,omitempty"` // default 30s
	Timeout  string  `json:"timeout,omitempty"`  // default 5s
	Retries  int     `json:"retries,omitempty"`  // default 3
}

// Resources are per-container limits.
type Resources struct {
	// Memory is a binary quantity (512M).
	Memory string `json:"memory,omitempty"`
	// CPU is a percentage of one CPU (1..ncpu*100).
	CPU int `json:"cpu,omitempty"`
	// MaxProcesses caps the number of processes.
	MaxProcesses int `json:"maxProcesses,omitempty"`
}
