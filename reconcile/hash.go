package reconcile

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"slices"
	"sync"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// hashVersion is mixed into every spec hash; bump it when normalization
// changes meaning, which replaces every container once.
const hashVersion = "zocker-spec-v1"

// NormalizeSpec returns a copy of c's spec with the manifests defaults
// applied (so that writing a default out, "restartPolicy: Always", is not a
// change), empty maps and lists made nil, dependsOn sorted and durations in
// Go's canonical form. The input is not modified.
func NormalizeSpec(c *manifests.Container) manifests.ContainerSpec {
	s := c.Spec
	if s.Network.Mode == "" {
		s.Network.Mode = manifests.DefaultNetworkMode
	}
	if s.RestartPolicy == "" {
		s.RestartPolicy = manifests.DefaultRestartPolicy
	}
	if s.State == "" {
		s.State = manifests.DefaultState
	}
	if s.Hostname == "" {
		s.Hostname = c.Metadata.Name
	}
	if s.StopSignal == "" {
		s.StopSignal = manifests.DefaultStopSignal
	}
	s.StopTimeout = canonicalDuration(s.StopTimeout, manifests.DefaultStopTimeout)
	if len(s.Command.Argv) == 0 {
		s.Command.Argv = nil
	}
	if len(s.Env) == 0 {
		s.Env = nil
	}
	if len(s.Network.Addresses) == 0 {
		s.Network.Addresses = nil
	}
	if len(s.Volumes) == 0 {
		s.Volumes = nil
	}
	if len(s.DependsOn) == 0 {
		s.DependsOn = nil
	} else {
		// Order of dependsOn carries no meaning; sorting keeps a reordering
		// from replacing the container.
		s.DependsOn = slices.Clone(s.DependsOn)
		slices.Sort(s.DependsOn)
	}
	if len(s.JailParams) == 0 {
		s.JailParams = nil
	}
	if s.Healthcheck != nil {
		hc := *s.Healthcheck
		hc.Interval = canonicalDuration(hc.Interval, manifests.DefaultHealthcheckInterval)
		hc.Timeout = canonicalDuration(hc.Timeout, manifests.DefaultHealthcheckTimeout)
		if hc.Retries == 0 {
			hc.Retries = manifests.DefaultHealthcheckRetries
		}
		if len(hc.Command.Argv) == 0 {
			hc.Command.Argv = nil
		}
		s.Healthcheck = &hc
	}
	return s
}

// canonicalDuration writes a duration the way time.Duration prints it, so
// "10s" and "10000ms" compare equal; an unparsable value is kept verbatim
// (validation reports it, the hash still notices edits to it).
func canonicalDuration(v, def string) string {
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return v
	}
	return d.String()
}

// SpecHash is the hex sha256 over c's normalized spec and the resolved image
// ID. Any edit that needs a new clone (command, env, user, volumes, network,
// limits, health check, jail parameters, ...) or a new image gives a new hash;
// spec.state does not (it is converged by start/stop), nor do labels. Diff
// computes the same digest through specSum without allocating; SpecHash is
// its definition for the callers that hold a Container (the tests that build
// observed state).
func SpecHash(c *manifests.Container, imageID string) string {
	sum := specSum(c.Metadata.Name, NormalizeSpec(c), imageID)
	return hex.EncodeToString(sum[:])
}

// sameHash reports whether hexHash is the hex form of sum, without
// allocating (the no-op pass compares every container's hash).
func sameHash(sum [sha256.Size]byte, hexHash string) bool {
	var buf [2 * sha256.Size]byte
	hex.Encode(buf[:], sum[:])
	return string(buf[:]) == hexHash
}

// specSum digests an already normalized spec. It writes a private binary
// encoding instead of JSON because it runs for every container on every
// pass (1,000 containers must plan in well under 5 ms): every string is
// length-prefixed and every list and map counted, so distinct specs cannot
// encode alike; maps are written in sorted key order.
func specSum(name string, s manifests.ContainerSpec, imageID string) [sha256.Size]byte {
	e := encoders.Get().(*hashEncoder)
	defer encoders.Put(e)
	e.buf = e.buf[:0]
	e.str(hashVersion)
	e.str(name)
	e.str(imageID)
	e.str(s.Image)
	e.command(s.Command)
	e.env(s.Env)
	e.str(s.User)
	e.str(s.Workdir)
	e.str(s.Hostname)
	e.str(s.Network.Mode)
	e.str(s.Network.Interface)
	e.strs(s.Network.Addresses)
	e.num(len(s.Volumes))
	for _, m := range s.Volumes {
		e.str(m.Volume)
		e.str(m.HostPath)
		e.str(m.Path)
		e.flag(m.ReadOnly)
	}
	e.str(s.RestartPolicy)
	e.strs(s.DependsOn)
	e.flag(s.Healthcheck != nil)
	if hc := s.Healthcheck; hc != nil {
		e.command(hc.Command)
		e.str(hc.Interval)
		e.str(hc.Timeout)
		e.num(hc.Retries)
	}
	e.str(s.Resources.Memory)
	e.num(s.Resources.CPU)
	e.num(s.Resources.MaxProcesses)
	e.str(s.StopSignal)
	e.str(s.StopTimeout)
	e.flag(s.Securelevel != nil)
	if s.Securelevel != nil {
		e.num(*s.Securelevel)
	}
	e.strMap(s.JailParams)
	return sha256.Sum256(e.buf)
}

// hashEncoder appends an unambiguous binary form of values to buf.
type hashEncoder struct {
	buf  []byte
	keys []string
	// env digests the env map under the env key (see secret.go); kept
	// with the key it was made for, reset per use.
	mac    hash.Hash
	macKey []byte
	envBuf []byte
}

// env writes the env map as one keyed digest: a spec hash must not let
// anyone test guesses of a value against it (review M3). One HMAC per
// container keeps the no-op pass within its budget.
func (e *hashEncoder) env(m map[string]string) {
	e.num(len(m))
	if len(m) == 0 {
		return
	}
	key := currentEnvKey()
	if e.mac == nil || !bytes.Equal(e.macKey, key) {
		e.mac, e.macKey = hmac.New(sha256.New, key), append([]byte(nil), key...)
	}
	saved := e.buf
	e.buf = e.envBuf[:0]
	e.strMap(m)
	e.envBuf = e.buf
	e.buf = saved
	e.mac.Reset()
	e.mac.Write(e.envBuf)
	e.buf = e.mac.Sum(e.buf)
}

// encoders recycles hash buffers: Diff hashes every container of every pass.
var encoders = sync.Pool{New: func() any { return &hashEncoder{buf: make([]byte, 0, 1024)} }}

func (e *hashEncoder) num(n int) { e.buf = binary.AppendVarint(e.buf, int64(n)) }

func (e *hashEncoder) flag(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

func (e *hashEncoder) str(s string) {
	e.buf = binary.AppendUvarint(e.buf, uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *hashEncoder) strs(l []string) {
	e.num(len(l))
	for _, s := range l {
		e.str(s)
	}
}

// command distinguishes an argv from a shell string and from neither.
func (e *hashEncoder) command(c manifests.Command) {
	switch {
	case c.Argv != nil:
		e.buf = append(e.buf, 'a')
		e.strs(c.Argv)
	case c.Shell != "":
		e.buf = append(e.buf, 's')
		e.str(c.Shell)
	default:
		e.buf = append(e.buf, '-')
	}
}

func (e *hashEncoder) strMap(m map[string]string) {
	e.num(len(m))
	if len(m) == 0 {
		return
	}
	keys := e.keys[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.keys = keys
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// AppliedSpec is the JSON to store in zocker:spec when c is created or
// replaced: its normalized spec, env values replaced by their digests
// (RedactEnv: no secret in a world-readable property). DecodeAppliedSpec
// reads it back.
func AppliedSpec(c *manifests.Container) (string, error) {
	b, err := json.Marshal(RedactEnv(NormalizeSpec(c)))
	if err != nil {
		return "", fmt.Errorf("marshal applied spec of container %s: %w", c.Metadata.Name, err)
	}
	return string(b), nil
}

// DecodeAppliedSpec turns a zocker:spec value back into a Container named
// name, normalized, so that it can be compared with a manifest or kept
// running while its manifest file is broken.
func DecodeAppliedSpec(name, spec string) (*manifests.Container, error) {
	if spec == "" {
		return nil, fmt.Errorf("decode applied spec of container %s: no zocker:spec recorded", name)
	}
	c := &manifests.Container{
		TypeMeta: manifests.TypeMeta{APIVersion: manifests.APIVersion, Kind: manifests.KindContainer},
		Metadata: manifests.ObjectMeta{Name: name},
	}
	if err := json.Unmarshal([]byte(spec), &c.Spec); err != nil {
		return nil, fmt.Errorf("decode applied spec of container %s: %w", name, err)
	}
	c.Spec = NormalizeSpec(c)
	return c, nil
}
