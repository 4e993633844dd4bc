//go:build linux

package build

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestSecurityH1RunStepSwapsEtc runs a real Zockerfile whose RUN step
// replaces the directory holding a host file (standing for /etc, here a
// scratch "host" directory so the real /etc is never at stake) with a
// symlink to that directory's host path. After the step the build used to
// restore the file through the symlink: the host's file was removed and
// replaced by the image's copy. Now the host file stays byte-identical and a
// regular file. Fails on 67d2aef.
func TestSecurityH1RunStepSwapsEtc(t *testing.T) {
	e := newZFSEnv(t)
	hostEtc := filepath.Join(t.TempDir(), "host", "etc")
	if err := os.MkdirAll(hostEtc, 0o755); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(hostEtc, "resolv.conf")
	want := []byte("nameserver 192.0.2.53 # the host's own, must not change\n")
	if err := os.WriteFile(hostFile, want, 0o644); err != nil {
		t.Fatal(err)
	}
	old := hostFiles
	hostFiles = []string{hostFile}
	t.Cleanup(func() { hostFiles = old })

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "planted"), []byte("nameserver 203.0.113.66 # the image planted this\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zf := "FROM busybox\n" +
		"COPY planted " + hostFile + "\n" +
		"RUN rm -rf " + hostEtc + " && ln -s " + hostEtc + " " + hostEtc + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Zockerfile"), []byte(zf), 0o644); err != nil {
		t.Fatal(err)
	}
	res, out, err := e.build(t, dir, "swap", nil)
	t.Logf("build: %+v %v\n%s", res, err, out)
	fi, lerr := os.Lstat(hostFile)
	if lerr != nil || !fi.Mode().IsRegular() {
		t.Fatalf("host file after the build: %v, mode %v", lerr, fi.Mode())
	}
	got, _ := os.ReadFile(hostFile)
	if !bytes.Equal(got, want) {
		t.Fatalf("host file changed by the build:\n%s", got)
	}
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	// The step's own result stays in the image: its symlink.
	st := e.observe(t)
	im, ok := st.Image(res.ID)
	if !ok {
		t.Fatal("image not published")
	}
	if l, err := os.Readlink(filepath.Join(im.Mountpoint, hostEtc)); err != nil || l != hostEtc {
		t.Errorf("image's %s: %q %v", hostEtc, l, err)
	}
	e.assertClean(t)
}
