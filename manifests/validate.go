package manifests

import (
	"fmt"
	"net/url"
	"path"
	"runtime"
	"sort"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/image"
	"github.com/zocker-reconcile/zocker-reconcile/manifests/jailparam"
)

// validator checks one decoded, defaulted object, reporting each problem
// with the line of the field it concerns.
type validator struct {
	doc *Document
	fd  *fileDecoder
}

func (v *validator) errf(field, format string, args ...any) {
	v.fd.add(v.doc.lineOf(field), v.doc, field, SeverityError, format, args...)
}

func (v *validator) check(field string, err error) {
	if err != nil {
		v.errf(field, "%s", err.Error())
	}
}

func (v *validator) meta(m *ObjectMeta) {
	v.check("metadata.name", image.ValidName("", m.Name))
	keys := sortedKeys(m.Labels)
	for _, k := range keys {
		if k == "" || len(k) > 253 || plainText("label", k, true) != nil {
			v.errf("metadata.labels."+k, "label key %q is invalid: 1 to 253 characters, no white space or control characters", k)
		}
		v.check("metadata.labels."+k, plainText("label value", m.Labels[k], false))
	}
}

func (v *validator) image(o *Image) {
	v.meta(&o.Metadata)
	s := &o.Spec
	n := 0
	for _, set := range []bool{s.Tarball != nil, s.Build != nil, s.Pull != nil, s.OCI != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		v.errf("spec", "an image needs exactly one source: tarball, build, pull or oci")
		return
	case n > 1:
		v.errf("spec", "an image needs exactly one source, got %d of tarball, build, pull and oci", n)
		return
	}
	if t := s.Tarball; t != nil {
		switch {
		case t.Path != "" && t.URL != "":
			v.errf("spec.tarball", "give path or url, not both")
		case t.Path == "" && t.URL == "":
			v.errf("spec.tarball", "path or url is required")
		case t.URL != "":
			u, err := url.Parse(t.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				v.errf("spec.tarball.url", "url %q must be an https:// address", t.URL)
			}
			if t.SHA256 == "" {
				v.errf("spec.tarball.url", "sha256 is required with url")
			}
		default:
			v.check("spec.tarball.path", plainText("path", t.Path, false))
		}
		if t.SHA256 != "" && !sha256Regexp.MatchString(t.SHA256) {
			v.errf("spec.tarball.sha256", "sha256 %q must be 64 hexadecimal digits", t.SHA256)
		}
	}
	if b := s.Build; b != nil {
		if b.Context == "" {
			v.errf("spec.build", "context is required")
		} else {
			v.check("spec.build.context", plainText("context", b.Context, false))
		}
		if path.IsAbs(b.File) || path.Clean(b.File) != b.File || strings.HasPrefix(b.File, "../") || b.File == ".." {
			v.errf("spec.build.file", "file %q must be a clean path inside the context", b.File)
		}
		for _, k := range sortedKeys(b.Args) {
			if !envKeyRegexp.MatchString(k) {
				v.errf("spec.build.args."+k, "build argument name %q is invalid: want letters, digits and '_', not starting with a digit", k)
			}
		}
	}
	if o := s.OCI; o != nil {
		v.oci(o)
	}
	if p := s.Pull; p != nil {
		u, err := url.Parse(p.Repository)
		switch {
		case p.Repository == "":
			v.errf("spec.pull", "repository is required")
		case err != nil || !(u.Scheme == "ssh" && u.Host != "" || u.Scheme == "file" && u.Host == "" && path.IsAbs(u.Path)):
			v.errf("spec.pull.repository", "repository %q must be ssh://[user@]host[:port]/path or file:///path", p.Repository)
		}
		if err := image.ValidName("", p.Tag); err != nil {
			v.errf("spec.pull.tag", "tag: %s", err)
		}
	}
}

// reservedProperties are ZFS properties a Volume may not set through
// properties: the quota has its own field and the rest are zocker's.
var reservedProperties = map[string]string{
	"quota":      "use spec.quota",
	"mountpoint": "zocker-reconcile mounts volumes itself",
	"canmount":   "zocker-reconcile mounts volumes itself",
}

// volumeProperties are the ZFS properties a Volume may set: how data is
// stored and cached. Everything else is refused (review L3): exporting it
// (sharenfs, sharesmb), what runs from it (setuid, exec, devices), pool
// space it takes from every other dataset (reservation, refreservation),
// jailing, swap, and user properties, whose meaning belongs to other tools.
var volumeProperties = map[string]bool{
	"aclinherit": true, "aclmode": true, "acltype": true, "atime": true, "casesensitivity": true,
	"checksum": true, "compression": true, "copies": true, "dnodesize": true, "logbias": true,
	"normalization": true, "primarycache": true, "readonly": true, "recordsize": true,
	"redundant_metadata": true, "relatime": true, "secondarycache": true, "snapdir": true,
	"sync": true, "utf8only": true, "xattr": true,
}

// VolumePropertyAllowed reports whether a Volume may set the ZFS property
// name (the engine checks again before it reaches zfs).
func VolumePropertyAllowed(name string) bool { return volumeProperties[name] }

func (v *validator) volume(o *Volume) {
	v.meta(&o.Metadata)
	s := &o.Spec
	if s.Quota != "" {
		if q, err := ParseQuantity(s.Quota); err != nil {
			v.check("spec.quota", err)
		} else if q == 0 {
			v.errf("spec.quota", "quota must be positive (leave it out for none)")
		}
	}
	for _, k := range sortedKeys(s.Properties) {
		f := "spec.properties." + k
		switch {
		case !zfsPropRegexp.MatchString(k):
			v.errf(f, "ZFS property name %q is invalid", k)
		case strings.HasPrefix(k, "zocker:"):
			v.errf(f, "properties under zocker: are reserved for zocker-reconcile's own records")
		case reservedProperties[k] != "":
			v.errf(f, "property %s cannot be set here: %s", k, reservedProperties[k])
		case !volumeProperties[k]:
			v.errf(f, "property %s is not one a Volume may set: allowed are %s", k, strings.Join(sortedKeys(volumeProperties), ", "))
		}
		if s.Properties[k] == "" {
			v.errf(f, "property %s has an empty value", k)
		}
		v.check(f, plainText("property value", s.Properties[k], false))
	}
	if s.ReclaimPolicy != ReclaimRetain && s.ReclaimPolicy != ReclaimDelete {
		v.errf("spec.reclaimPolicy", "reclaimPolicy %q is invalid: want Retain or Delete", s.ReclaimPolicy)
	}
}

func (v *validator) container(o *Container) {
	v.meta(&o.Metadata)
	s := &o.Spec
	if s.Image == "" {
		v.errf("spec.image", "image is required")
	} else if err := image.ValidName("", s.Image); err != nil {
		v.errf("spec.image", "image: %s", err)
	}
	v.command("spec.command", s.Command, false)
	for _, k := range sortedKeys(s.Env) {
		if !envKeyRegexp.MatchString(k) {
			v.errf("spec.env."+k, "environment variable name %q is invalid: want letters, digits and '_', not starting with a digit", k)
		}
		if strings.ContainsRune(s.Env[k], 0) {
			v.errf("spec.env."+k, "value contains a NUL byte")
		}
	}
	if s.User != "" && !userRegexp.MatchString(s.User) {
		v.errf("spec.user", "user %q is invalid: want a user name or a numeric uid (no ':' or '/')", s.User)
	}
	if s.Workdir != "" {
		v.check("spec.workdir", cleanAbs(s.Workdir))
	}
	// A hostname defaulted from a bad name would only repeat the name's error.
	if s.Hostname != o.Metadata.Name || image.ValidName("", o.Metadata.Name) == nil {
		v.check("spec.hostname", ValidHostname(s.Hostname))
	}
	v.network(&s.Network)
	mounts := map[string]int{}
	for i, m := range s.Volumes {
		f := fmt.Sprintf("spec.volumes[%d]", i)
		switch {
		case m.Volume != "" && m.HostPath != "":
			v.errf(f, "give volume or hostPath, not both")
		case m.Volume == "" && m.HostPath == "":
			v.errf(f, "volume or hostPath is required")
		case m.Volume != "":
			if err := image.ValidName("", m.Volume); err != nil {
				v.errf(f+".volume", "volume: %s", err)
			}
		default:
			if !path.IsAbs(m.HostPath) {
				v.errf(f+".hostPath", "hostPath %q must be absolute, or start with ./ to be relative to the manifest's directory", m.HostPath)
			} else {
				v.check(f+".hostPath", plainText("hostPath", m.HostPath, true))
			}
		}
		if m.Path == "" {
			v.errf(f+".path", "path is required")
			continue
		}
		if err := cleanAbs(m.Path); err != nil {
			v.errf(f+".path", "%s", err)
		} else if m.Path == "/" {
			v.errf(f+".path", "a volume cannot be mounted on /")
		} else if j, dup := mounts[m.Path]; dup {
			v.errf(f+".path", "path %s is already mounted by spec.volumes[%d]", m.Path, j)
		}
		mounts[m.Path] = i
	}
	if s.RestartPolicy != RestartAlways && s.RestartPolicy != RestartOnFailure && s.RestartPolicy != RestartNever {
		v.errf("spec.restartPolicy", "restartPolicy %q is invalid: want Always, OnFailure or Never", s.RestartPolicy)
	}
	if s.State != StateRunning && s.State != StateStopped {
		v.errf("spec.state", "state %q is invalid: want Running or Stopped", s.State)
	}
	seen := map[string]bool{}
	for i, d := range s.DependsOn {
		f := fmt.Sprintf("spec.dependsOn[%d]", i)
		switch {
		case image.ValidName("", d) != nil:
			v.errf(f, "dependsOn: %s", image.ValidName("", d))
		case d == o.Metadata.Name:
			v.errf(f, "a container cannot depend on itself")
		case seen[d]:
			v.errf(f, "%s is listed twice", d)
		}
		seen[d] = true
	}
	if h := s.Healthcheck; h != nil {
		v.command("spec.healthcheck.command", h.Command, true)
		iv, err1 := ParseDuration(h.Interval)
		v.check("spec.healthcheck.interval", err1)
		to, err2 := ParseDuration(h.Timeout)
		v.check("spec.healthcheck.timeout", err2)
		if err1 == nil && err2 == nil && to > iv {
			v.errf("spec.healthcheck.timeout", "timeout %s is longer than the interval %s", h.Timeout, h.Interval)
		}
		if h.Retries < 0 {
			v.errf("spec.healthcheck.retries", "retries must not be negative")
		}
	}
	if u := s.Update; u != nil {
		_, err := ParseDuration(u.HealthTimeout)
		v.check("spec.update.healthTimeout", err)
		if k := u.KeepPrevious; k != nil && (*k < 0 || *k > MaxUpdateKeepPrevious) {
			v.errf("spec.update.keepPrevious", "keepPrevious %d is invalid: want 0 to %d", *k, MaxUpdateKeepPrevious)
		}
	}
	v.resources(&s.Resources)
	if _, err := SignalNumber(s.StopSignal); err != nil {
		v.check("spec.stopSignal", err)
	}
	_, err := ParseDuration(s.StopTimeout)
	v.check("spec.stopTimeout", err)
	if l := s.Securelevel; l != nil && (*l < -1 || *l > 3) {
		v.errf("spec.securelevel", "securelevel %d is invalid: want -1 to 3", *l)
	}
	for _, k := range sortedKeys(s.JailParams) {
		f := "spec.jailParams." + k
		val := s.JailParams[k]
		if strings.ContainsAny(val, "\"\\;{}\n\r\x00") {
			v.errf(f, "value %q must not contain quotes, backslashes, ';', '{', '}' or line breaks (it is written into jail.conf)", val)
			continue
		}
		// jailparam reads the name as jail(8) does ("noexec.prestart" is
		// exec.prestart) and accepts only its allow-list.
		v.check(f, jailparam.Check(k, val))
	}
}

func (v *validator) command(field string, c Command, required bool) {
	switch {
	case c.Argv != nil && len(c.Argv) == 0:
		v.errf(field, "command is an empty list")
	case c.Argv != nil && c.Argv[0] == "":
		v.errf(field+"[0]", "the program to run is empty")
	case c.Argv == nil && c.Shell == "" && required:
		v.errf(field, "command is required")
	}
	for i, a := range c.Argv {
		if strings.ContainsRune(a, 0) {
			v.errf(fmt.Sprintf("%s[%d]", field, i), "argument contains a NUL byte")
		}
	}
	if strings.ContainsRune(c.Shell, 0) {
		v.errf(field, "command contains a NUL byte")
	}
}

func (v *validator) network(n *Network) {
	switch n.Mode {
	case NetInherit, NetNone, NetLoopback:
		if n.Interface != "" {
			v.errf("spec.network.interface", "interface is only used with mode alias")
		}
		if len(n.Addresses) > 0 {
			v.errf("spec.network.addresses", "addresses are only used with mode alias")
		}
	case NetAlias:
		switch {
		case n.Interface == "":
			v.errf("spec.network", "mode alias needs interface (the host interface that carries the addresses)")
		case !ifaceRegexp.MatchString(n.Interface):
			v.errf("spec.network.interface", "interface %q is not an interface name", n.Interface)
		}
		if len(n.Addresses) == 0 {
			v.errf("spec.network", "mode alias needs at least one address in CIDR form")
		}
		for i, a := range n.Addresses {
			v.check(fmt.Sprintf("spec.network.addresses[%d]", i), checkCIDR(a))
		}
	default:
		v.errf("spec.network.mode", "network mode %q is invalid: want inherit, none, loopback or alias", n.Mode)
	}
}

func (v *validator) resources(r *Resources) {
	if r.Memory != "" {
		if q, err := ParseQuantity(r.Memory); err != nil {
			v.check("spec.resources.memory", err)
		} else if q == 0 {
			v.errf("spec.resources.memory", "memory must be positive (leave it out for no limit)")
		}
	}
	ncpu := v.fd.opts.NumCPU
	if ncpu <= 0 {
		ncpu = runtime.NumCPU()
	}
	if r.CPU != 0 && (r.CPU < 1 || r.CPU > ncpu*100) {
		v.errf("spec.resources.cpu", "cpu %d is out of range: want 1 to %d (percent of one CPU, %d CPUs)", r.CPU, ncpu*100, ncpu)
	}
	if r.MaxProcesses < 0 {
		v.errf("spec.resources.maxProcesses", "maxProcesses must not be negative")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
