// Package testenv gives integration tests their substrate: a private dataset
// on the zfs-fuse (or OpenZFS) pool named by ZOCKER_TEST_POOL, root checks,
// and a busybox root filesystem tarball. Only tests import it.
//
// Locally a missing prerequisite skips the test with a message; under CI=true
// it fails the test, because an integration suite that skips in CI is not a pass.
package testenv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// PoolEnv names the pool the integration tests may use.
const PoolEnv = "ZOCKER_TEST_POOL"

// missing skips the test, or fails it under CI.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("prerequisite missing under CI=true: "+format, args...)
	}
	t.Skipf("skipping integration test: "+format, args...)
}

// RequireRoot skips (fails in CI) unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root")
	}
}

// Require skips the test (fails it under CI=true) unless ok: the one way a
// test says a prerequisite of the host is missing.
func Require(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		missing(t, format, args...)
	}
}

// RequireTool returns the path of the command name, skipping (failing in CI)
// when it is not installed; debianPackage says what provides it.
func RequireTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s not found (apt-get install %s)", name, debianPackage)
	}
	return p
}

// RequireFile skips (fails in CI) unless path exists; why says what provides it.
func RequireFile(t testing.TB, path, why string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, "%s missing (%s)", path, why)
	}
}

// Pool returns the test pool's name, skipping (failing in CI) when it is unset.
func Pool(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	pool := os.Getenv(PoolEnv)
	if pool == "" {
		missing(t, "%s is unset (make test and .ci/run set it up)", PoolEnv)
	}
	return pool
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9-]+`)

// Dataset returns a fresh dataset name, POOL/zt-<test>-<random>, unique across
// parallel test processes. The dataset is not created (callers that need a
// root create it); at cleanup it is destroyed recursively with everything
// below it, retrying while zfs-fuse says it is busy.
func Dataset(t testing.TB) string {
	t.Helper()
	pool := Pool(t)
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	name := pool + "/zt-" + base + "-" + RandomHex(4)
	t.Cleanup(func() { DestroyAll(t, name) })
	return name
}

// DestroyAll destroys a dataset and everything below it, if it exists.
func DestroyAll(t testing.TB, name string) {
	t.Helper()
	if exec.Command("zfs", "get", "-H", "-o", "value", "type", name).Run() != nil {
		return
	}
	var out []byte
	var err error
	// zfs-fuse stays "busy" for a while after heavy use (seen: tens of
	// seconds for 100 clones on a loaded machine): try for up to a minute.
	for i := 0; i < 300; i++ {
		out, err = exec.Command("zfs", "destroy", "-R", "-f", name).CombinedOutput()
		if err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("cleanup: zfs destroy -R %s: %v: %s", name, err, out)
}

// RandomHex returns n random bytes as hex.
func RandomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

var (
	busyboxOnce sync.Once
	busyboxDir  string
	busyboxErr  error
)

// BusyboxRootfs returns a directory holding a busybox root filesystem
// (/bin/busybox from Debian's busybox-static with its applet links, /etc/passwd
// with root, nobody and www (uid 80), /etc/group, /tmp, /proc, /dev), built
// once per test process. Callers must not modify it.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	busyboxOnce.Do(func() { busyboxDir, busyboxErr = buildBusyboxRootfs() })
	if busyboxErr != nil {
		missing(t, "busybox root filesystem: %v (apt-get install busybox-static)", busyboxErr)
	}
	return busyboxDir
}

// BusyboxTarball returns the path of a tar archive of BusyboxRootfs.
func BusyboxTarball(t testing.TB) string {
	t.Helper()
	dir := BusyboxRootfs(t)
	tarball := dir + ".tar"
	if _, err := os.Stat(tarball); err == nil {
		return tarball
	}
	tmp := tarball + "." + RandomHex(4)
	if out, err := exec.Command("tar", "-C", dir, "-cf", tmp, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar busybox rootfs: %v: %s", err, out)
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

func buildBusyboxRootfs() (string, error) {
	// One recipe for the tests and the demo: scripts/busybox-rootfs.sh.
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the repository")
	}
	script := filepath.Join(filepath.Dir(self), "..", "..", "scripts", "busybox-rootfs.sh")
	// Built once per recipe and busybox binary, in a directory named after
	// both, and shared by every test process after that: tests copy it or
	// read it, never change it. (One directory per test process, never
	// removed, filled /tmp with 4 MB per package and run.)
	key := sha256.New()
	for _, p := range []string{script, busyboxBinary()} {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("busybox root filesystem: %w (apt-get install busybox-static)", err)
		}
		key.Write(b)
	}
	final := filepath.Join(os.TempDir(), "zocker-busybox-"+hex.EncodeToString(key.Sum(nil))[:16])
	dir := filepath.Join(final, "rootfs")
	if _, err := os.Stat(dir); err == nil {
		return dir, nil // only a finished build is renamed into place
	}
	parent, err := os.MkdirTemp("", "zocker-busybox-build-")
	if err != nil {
		return "", err
	}
	if out, err := exec.Command(script, filepath.Join(parent, "rootfs")).CombinedOutput(); err != nil {
		os.RemoveAll(parent)
		return "", fmt.Errorf("%s: %v: %s", script, err, out)
	}
	if err := os.Rename(parent, final); err != nil {
		// Another test process published it first.
		os.RemoveAll(parent)
		if _, serr := os.Stat(dir); serr != nil {
			return "", fmt.Errorf("publish busybox root filesystem: %w", err)
		}
	}
	return dir, nil
}

// busyboxBinary is the busybox the recipe copies (its own search order).
func busyboxBinary() string {
	if p, err := exec.LookPath("busybox"); err == nil {
		return p
	}
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "busybox"
}

// ExtraPool creates a second pool, named prefix<random>, on a 768 MiB sparse
// file in the test's temporary directory, and destroys it at cleanup (which,
// being registered now, runs after cleanups registered later). Tests that
// pull need it: a received clone stream must find its origin in the pulling
// root, and zfs-fuse looks origins up by GUID in the whole pool, where the
// pushing root's copy would be found too.
func ExtraPool(t testing.TB, prefix string) string {
	t.Helper()
	Pool(t)
	pool := prefix + RandomHex(4)
	img := filepath.Join(t.TempDir(), "pool.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 768<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("zpool", "create", "-f", pool, img).CombinedOutput(); err != nil {
		t.Fatalf("zpool create %s: %v: %s", pool, err, out)
	}
	t.Cleanup(func() {
		var out []byte
		var err error
		for i := 0; i < 50; i++ {
			if out, err = exec.Command("zpool", "destroy", "-f", pool).CombinedOutput(); err == nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Errorf("cleanup: zpool destroy %s: %v: %s", pool, err, out)
	})
	return pool
}
