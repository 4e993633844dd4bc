package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// tarLayer makes an OCI layer of the files (name -> body) as root-owned tar.
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-cf", "-", "--owner=0", "--group=0"}
	for name, body := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), body)
		args = append(args, name)
	}
	var buf bytes.Buffer
	cmd := exec.Command("tar", args...)
	cmd.Dir, cmd.Stdout = dir, &buf
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ociImage is an OCI image of layers for osName/amd64 running cmd.
func ociImage(t *testing.T, osName string, cmd []string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = osName, "amd64"
	cf.Config.Cmd = cmd
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// helloImage is busybox, the three layers of the OCI spec test image
// (whiteouts, an opaque directory, a hard link, `evil -> ../../..` and
// `evil/pwned`) and a layer holding /hello.txt with body.
func helloImage(t *testing.T, busybox, body string) v1.Image {
	t.Helper()
	base, err := tarball.LayerFromFile(busybox, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	layers := []v1.Layer{base}
	for _, tb := range testenv.SpecLayers(t, "") {
		l, err := tarball.LayerFromReader(bytes.NewReader(tb), tarball.WithMediaType(types.OCILayer))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	layers = append(layers, tarLayer(t, map[string]string{"hello.txt": body}))
	return ociImage(t, "linux", []string{"/bin/cat", "/hello.txt"}, layers...)
}

func ggcrRegistry(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return srv
}

// TestOCIImportFreeBSDArchive: an archive shaped like FreeBSD's OCI
// releases (one gzip layer, os freebsd, a ref.name annotation, a .txz of
// the layout, written here by skopeo and tar) imports with --platform
// freebsd/amd64 and its sha256; the host's default platform is refused
// with the platform the archive has.
func TestOCIImportFreeBSDArchive(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	img := ociImage(t, "freebsd", []string{"/bin/sh"}, tarLayer(t, map[string]string{
		"etc/os-release": "NAME=FreeBSD\nVERSION=15.0-RELEASE\n", "bin/freebsd-version": "#!/bin/sh\necho 15.0-RELEASE\n",
	}))
	ref := strings.TrimPrefix(ggcrRegistry(t).URL, "http://") + "/freebsd/runtime:15.0"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false", "--override-os", "freebsd", "docker://"+ref, "oci:"+dir+":freebsd-runtime:15.0").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	txz := filepath.Join(t.TempDir(), "FreeBSD-15.0-RELEASE-amd64-runtime.txz")
	if out, err := exec.Command("tar", "-cJf", txz, "-C", dir, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar -cJf: %v: %s", err, out)
	}
	b, err := os.ReadFile(txz)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	res := h.run("import", "-t", "fbsd", "oci-archive:"+txz, "--sha256", sum)
	if res.code != 1 || !strings.Contains(res.stderr, "no image for platform linux/amd64") || !strings.Contains(res.stderr, "freebsd/amd64") {
		t.Errorf("import with the host's platform: exit %d, want 1 naming freebsd/amd64: %s", res.code, res.stderr)
	}
	res = h.run("import", "-t", "fbsd", "oci-archive:"+txz, "--platform", "freebsd/amd64", "--sha256", strings.Repeat("0", 64))
	if res.code != 1 || !strings.Contains(res.stderr, "sha256 mismatch") {
		t.Errorf("import with a wrong sha256: exit %d: %s", res.code, res.stderr)
	}
	res = h.run("import", "-t", "fbsd", "oci-archive:"+txz, "--platform", "freebsd/amd64", "--sha256", sum)
	cn, _ := img.ConfigName()
	if res.code != 0 || strings.TrimSpace(res.stdout) != cn.Hex {
		t.Fatalf("import: exit %d, stdout %q (want the config digest %s): %s", res.code, res.stdout, cn.Hex, res.stderr)
	}
	out, err := exec.Command("zfs", "get", "-H", "-o", "value", "mountpoint", h.root+"/images/"+cn.Hex).Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "etc/os-release"))
	if err != nil || !strings.Contains(string(got), "VERSION=15.0-RELEASE") {
		t.Errorf("etc/os-release of the imported image: %q, %v", got, err)
	}
}

// TestOCIImageInTheLoop: an Image declared with oci: is pulled by apply and
// a Container from it runs; re-tagging in the registry makes plan exit 2
// with "registry tag moved"; apply replaces the container; a registry that
// went away leaves image and container as they are.
func TestOCIImageInTheLoop(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	srv := ggcrRegistry(t)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/e2e/hello:stable"
	push := func(body string) string {
		t.Helper()
		img := helloImage(t, h.tarball, body)
		r, _ := name.ParseReference(ref, name.Insecure)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
		cn, _ := img.ConfigName()
		return cn.Hex
	}
	id1 := push("version 1\n")
	h.write("bb.yaml", fmt.Sprintf(`apiVersion: zocker/v1
kind: Image
metadata:
  name: bb
spec:
  oci:
    ref: %s
    insecure: true
`, ref))
	argv := []string{"/bin/sleep", "100071"}
	h.write("web.yaml", containerYAML("web", argv...))
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	h.waitRunning("web", argv, time.Minute)
	if id, why := h.imageID("bb"); id != id1 {
		t.Fatalf("bb is %q (%s), want the config digest %s", id, why, id1)
	}
	if res := h.run("exec", "web", "--", "/bin/cat", "/hello.txt"); res.stdout != "version 1\n" {
		t.Errorf("exec cat /hello.txt: %q %q", res.stdout, res.stderr)
	}
	// The spec layers as the container sees them.
	for _, c := range []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/cat", "/data/hardlink", "/data/mod.txt", "/evil/pwned"}, "alpha\nversion 2, modified\nmust stay inside\n"},
		{[]string{"/bin/ls", "/data/sub"}, "new.txt\nnewdir\n"},
		{[]string{"/bin/ls", "/data"}, "a.txt\nhardlink\nlink\nmod.txt\nowned\nreplace\nsgid\nsub\nsuid\n"},
	} {
		if res := h.run(append([]string{"exec", "web", "--"}, c.argv...)...); res.stdout != c.want {
			t.Errorf("exec %v: %q (stderr %q), want %q", c.argv, res.stdout, res.stderr, c.want)
		}
	}
	if res := h.run("plan"); res.code != 0 {
		t.Errorf("plan after apply: exit %d\n%s", res.code, res.stdout)
	}

	id2 := push("version 2\n")
	res := h.run("plan")
	if res.code != 2 || !strings.Contains(res.stdout, "registry tag moved to sha256:"+id2[:12]) {
		t.Fatalf("plan after the tag moved: exit %d, want 2 and 'registry tag moved to sha256:%s'\n%s\n%s", res.code, id2[:12], res.stdout, res.stderr)
	}
	t.Logf("plan:\n%s", res.stdout)
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	h.waitRunning("web", argv, time.Minute)
	if res := h.run("exec", "web", "--", "/bin/cat", "/hello.txt"); res.stdout != "version 2\n" {
		t.Errorf("after the update, exec cat /hello.txt: %q %q", res.stdout, res.stderr)
	}

	srv.Close()
	res = h.run("plan")
	if res.code != 0 || !strings.Contains(res.stderr, "connection refused") {
		t.Errorf("plan with the registry gone: exit %d, want 0 and the error logged\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if res := h.run("apply"); res.code != 0 {
		t.Errorf("apply with the registry gone: exit %d\n%s", res.code, res.stderr)
	}
	if res := h.run("status", "--local"); res.code != 1 || !strings.Contains(res.stdout, "RegistryUnreachable") {
		t.Errorf("status with the registry gone: exit %d, want 1 and bb not Ready (RegistryUnreachable)\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	h.waitRunning("web", argv, time.Minute)
}

// TestOCIPushInterop: an image built here from a Zockerfile, pushed to
// Debian's docker-registry, is read by skopeo with one layer per step, and
// podman runs it, printing the file the Zockerfile copied.
func TestOCIPushInterop(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	skopeo := testenv.Tool(t, "skopeo", "skopeo")
	podman := testenv.Tool(t, "podman", "podman")
	host, _ := testenv.DockerRegistry(t)
	if res := h.run("import", "-t", "busybox", h.tarball); res.code != 0 {
		t.Fatalf("import: %s", res.stderr)
	}
	ctxDir := t.TempDir()
	writeFile(t, filepath.Join(ctxDir, "greeting.txt"), "hello from a Zockerfile\n")
	writeFile(t, filepath.Join(ctxDir, "Zockerfile"), "FROM busybox\nCOPY greeting.txt /srv/greeting.txt\nRUN rm /bin/ls\nCMD [\"/bin/cat\", \"/srv/greeting.txt\"]\n")
	if res := h.run("build", "-t", "app", ctxDir); res.code != 0 {
		t.Fatalf("build: exit %d\n%s", res.code, res.stderr)
	}
	ref := host + "/zocker/app:v1"
	res := h.run("push", "app", "docker://"+ref, "--insecure")
	if res.code != 0 {
		t.Fatalf("push: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	t.Logf("push: %s", res.stdout)
	if !strings.Contains(res.stdout, "4 layer(s), 4 sent") {
		t.Errorf("push summary %q, want 4 layers (busybox, COPY, RUN, CMD) sent", res.stdout)
	}
	if res := h.run("push", "app", "docker://"+ref, "--insecure"); !strings.Contains(res.stdout, "0 sent") {
		t.Errorf("second push: %q %q, want nothing sent", res.stdout, res.stderr)
	}
	out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v: %s", err, out)
	}
	var info struct {
		Layers       []string
		Os           string
		Architecture string
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("skopeo inspect: %v: %s", err, out)
	}
	if len(info.Layers) != 4 || info.Os != "linux" || info.Architecture != "amd64" {
		t.Errorf("skopeo inspect: %d layers on %s/%s, want 4 (one per step) on linux/amd64: %s", len(info.Layers), info.Os, info.Architecture, out)
	}
	// podman on this machine: runc (crun refuses the hybrid cgroup layout)
	// and no default ulimits (no CAP_SYS_RESOURCE); its own storage.
	pdir := t.TempDir()
	conf := filepath.Join(pdir, "containers.conf")
	writeFile(t, conf, "[containers]\ndefault_ulimits = []\n")
	cmd := exec.Command(podman, "--root", filepath.Join(pdir, "root"), "--runroot", filepath.Join(pdir, "run"),
		"--storage-driver", "vfs", "--runtime", "/usr/sbin/runc", "--cgroup-manager", "cgroupfs",
		"run", "--rm", "--tls-verify=false", "--network", "none", ref)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	out, err = cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "hello from a Zockerfile") {
		t.Fatalf("podman run %s: %v: %s", ref, err, out)
	}
	if err := exec.Command(podman, "--root", filepath.Join(pdir, "root"), "--runroot", filepath.Join(pdir, "run"), "--storage-driver", "vfs", "rmi", "-a", "-f").Run(); err != nil {
		t.Logf("podman rmi: %v", err)
	}
}

// TestOCIKilledApply: apply is SIGKILLed while a layer streams (the
// registry holds the blob half sent); the next apply removes the killed
// work from ROOT/tmp, fetches what is missing and leaves no orphan dataset.
func TestOCIKilledApply(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	img := helloImage(t, h.tarball, "killed\n")
	layers, _ := img.Layers()
	stallDigest, _ := layers[2].Digest()
	stalled := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	var once sync.Once
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+stallDigest.String()) {
			once.Do(func() { first = true })
		}
		if !first {
			reg.ServeHTTP(w, r)
			return
		}
		rc, _ := layers[2].Compressed()
		defer rc.Close()
		size, _ := layers[2].Size()
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.CopyN(w, rc, size/2)
		w.(http.Flusher).Flush()
		close(stalled)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/e2e/killed:v1"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	h.write("bb.yaml", fmt.Sprintf("apiVersion: zocker/v1\nkind: Image\nmetadata: {name: bb}\nspec:\n  oci: {ref: '%s', insecure: true}\n", ref))
	cmd := exec.Command(h.bin, append(h.globals(), "apply")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("apply never reached the third layer: %s", out.String())
	}
	poll(t, time.Minute, "a work dataset in ROOT/tmp", func() (bool, string) {
		ds := datasets(t, h.root+"/tmp")
		return len(ds) > 1, fmt.Sprint(ds)
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if res := h.run("apply"); res.code != 0 {
		t.Fatalf("apply after the kill: exit %d\n%s", res.code, res.stderr)
	}
	if ds := datasets(t, h.root+"/tmp"); len(ds) != 1 {
		t.Errorf("ROOT/tmp after apply: %v, want it empty", ds)
	}
	// busybox, three spec layers, hello: five layers and the image.
	if ds := datasets(t, h.root+"/images"); len(ds) != 1+6 {
		t.Errorf("%d image datasets, want 6 (five layers and the image, no orphan): %v", len(ds)-1, ds)
	}
	cn, _ := img.ConfigName()
	if id, why := h.imageID("bb"); id != cn.Hex {
		t.Errorf("bb = %q (%s), want %s", id, why, cn.Hex)
	}
}
