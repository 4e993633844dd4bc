package reconcile

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Container env values are secrets (passwords, tokens), and everything this
// package makes of a spec ends up world-readable: zocker:spec and
// zocker:spec-hash are ZFS user properties any local user reads with
// `zfs get`, and both appear in zfs argv and errors (review M3). So env
// values enter them only as HMAC-SHA256 digests under a host key that no
// unprivileged user can read (the engine keeps it in a root-only file in the
// root dataset, so it moves with the pool and survives reboots): a plain
// hash of a short password would be brute-forced offline.

// envDigestPrefix marks an env value that is a digest, not the value.
const envDigestPrefix = "hmac-sha256:"

var (
	envKeyMu sync.RWMutex
	envKey   []byte
)

// SetEnvKey sets the key env values are digested with. The service and the
// CLI set it once, before planning, from the store's key; tests may leave it
// unset (an empty key: digests are still not the values).
func SetEnvKey(key []byte) {
	envKeyMu.Lock()
	envKey = append([]byte(nil), key...)
	envKeyMu.Unlock()
}

func currentEnvKey() []byte {
	envKeyMu.RLock()
	defer envKeyMu.RUnlock()
	return envKey
}

// EnvDigest is what zocker:spec records for env variable name's value.
func EnvDigest(name, value string) string {
	m := hmac.New(sha256.New, currentEnvKey())
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return envDigestPrefix + hex.EncodeToString(m.Sum(nil))
}

// IsEnvDigest reports whether an applied env value is a digest (the value
// itself is not recorded anywhere in ZFS).
func IsEnvDigest(v string) bool { return strings.HasPrefix(v, envDigestPrefix) }

// RedactEnv returns s with every env value replaced by its digest: the form
// stored in zocker:spec and compared with it.
func RedactEnv(s manifests.ContainerSpec) manifests.ContainerSpec {
	if len(s.Env) == 0 {
		return s
	}
	env := make(map[string]string, len(s.Env))
	for k, v := range s.Env {
		env[k] = EnvDigest(k, v)
	}
	s.Env = env
	return s
}

// hasEnvDigests reports whether a decoded applied spec's env holds digests:
// such a spec can be compared with, but not run.
func hasEnvDigests(s manifests.ContainerSpec) bool {
	for _, v := range s.Env {
		if IsEnvDigest(v) {
			return true
		}
	}
	return false
}
