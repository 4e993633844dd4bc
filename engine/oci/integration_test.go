package oci

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ulikunitz/xz"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// killEnv makes the re-executed test binary pull the reference it names, to
// be killed by its parent in the middle of a layer (TestIntegrationKilledPull).
const killEnv = "ZOCKER_OCI_TEST_KILL_PULL"

func TestMain(m *testing.M) {
	if ref := os.Getenv(killEnv); ref != "" {
		ctx := context.Background()
		s, err := zfs.OpenShared(ctx, os.Getenv(killEnv+"_ROOT"), &runner.Exec{}, nil)
		if err == nil {
			_, err = (&Puller{Store: s}).Pull(ctx, Source{Ref: ref, Insecure: true})
		}
		fmt.Fprintln(os.Stderr, "pull finished before the kill:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func testLog() *slog.Logger {
	var w io.Writer = io.Discard
	if os.Getenv("ZOCKER_TEST_DEBUG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openStore(t testing.TB) *zfs.Store {
	t.Helper()
	root := testenv.Dataset(t)
	s, err := zfs.Open(context.Background(), root, &runner.Exec{}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ggcrRegistry starts go-containerregistry's in-process registry; wrap, when
// set, sits in front of it.
func ggcrRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(logDiscard()))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// dockerRegistry starts Debian's docker-registry on 127.0.0.1.
func dockerRegistry(t testing.TB) (host, storage string) { return testenv.DockerRegistry(t) }

// writeLayout writes img into a new OCI layout directory under ref.name tag.
func writeLayout(t testing.TB, img v1.Image, tag string, platform *v1.Platform) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	opts := []layout.Option{layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})}
	if platform != nil {
		opts = append(opts, layout.WithPlatform(*platform))
	}
	if err := p.AppendImage(img, opts...); err != nil {
		t.Fatal(err)
	}
	return dir
}

// skopeoCopy puts an OCI layout's image into a registry with skopeo.
func skopeoCopy(t testing.TB, dir, tag, dest string) {
	t.Helper()
	bin := testenv.Tool(t, "skopeo", "skopeo")
	out, err := exec.Command(bin, "copy", "--quiet", "--dest-tls-verify=false", "oci:"+dir+":"+tag, "docker://"+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy to %s: %v: %s", dest, err, out)
	}
}

func mustDigest(t testing.TB, img v1.Image) (config, manifest string) {
	t.Helper()
	cn, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	md, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return cn.Hex, md.String()
}

// ociDatasets lists the image datasets of origin oci.
func ociDatasets(t testing.TB, s *zfs.Store) map[string]zfs.Image {
	t.Helper()
	st, err := s.Observe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]zfs.Image{}
	for _, im := range st.Images {
		if im.Props[PropOrigin] == Origin {
			out[im.ID] = im
		}
	}
	if len(st.Tmp) != 0 {
		t.Errorf("ROOT/tmp is not empty: %v", st.Tmp)
	}
	return out
}

// TestIntegrationPullSpecImage pulls the 3-layer spec image from both
// loopback registries into a fresh root and compares the published tree
// with mutate.Extract; then a second image sharing two layers adds one
// layer dataset and its image clone.
func TestIntegrationPullSpecImage(t *testing.T) {
	testenv.Pool(t)
	base := testenv.BusyboxRootfs(t)
	var layers []v1.Layer
	for _, tb := range specLayers(t, base) {
		layers = append(layers, layerOf(t, tb))
	}
	cfg := v1.Config{Cmd: []string{"/bin/cat", "/data/a.txt"}, Env: []string{"PATH=/bin", "GREETING=hello"},
		WorkingDir: "/data", ExposedPorts: map[string]struct{}{"80/tcp": {}}, Labels: map[string]string{"org.example": "spec"}}
	img := imageOf(t, "linux", "amd64", cfg, layers...)
	want := treeOfExtract(t, img)
	id, manifest := mustDigest(t, img)

	for _, reg := range []string{"ggcr", "docker-registry"} {
		t.Run(reg, func(t *testing.T) {
			var ref string
			switch reg {
			case "ggcr":
				ref = ggcrRegistry(t, nil) + "/spec/image:v1"
				r, _ := name.ParseReference(ref, name.Insecure)
				if err := remote.Write(r, img); err != nil {
					t.Fatal(err)
				}
			default:
				host, _ := dockerRegistry(t)
				ref = host + "/spec/image:v1"
				skopeoCopy(t, writeLayout(t, img, "v1", nil), "v1", ref)
			}
			s := openStore(t)
			p := &Puller{Store: s, Log: testLog()}
			ctx := context.Background()
			res, err := p.Pull(ctx, Source{Ref: ref, Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.ID != id || res.Fetched != 3 || res.Layers != 3 {
				t.Fatalf("pull = %+v, want ID %s with 3 layers fetched", res, id)
			}
			if reg == "ggcr" && res.Manifest != manifest {
				t.Errorf("manifest digest %s, want %s", res.Manifest, manifest)
			}
			rid, _, err := p.Resolve(ctx, Source{Ref: ref, Insecure: true})
			if err != nil || rid != id {
				t.Errorf("Resolve = %s, %v; want %s", rid, err, id)
			}
			ds := ociDatasets(t, s)
			if len(ds) != 4 {
				t.Fatalf("%d oci datasets, want 3 layers and the image: %v", len(ds), ds)
			}
			im := ds[id]
			compareTrees(t, treeOfDir(t, im.Mountpoint), want)
			// evil -> ../../.. was dropped; evil/pwned stayed inside.
			for _, p := range []string{filepath.Join(im.Mountpoint, "../../..", "pwned"), filepath.Join(im.Mountpoint, "..", "pwned"), "/pwned"} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("written outside the dataset: %s", p)
				}
			}
			if im.Config.Workdir != "/data" || im.Config.Env["GREETING"] != "hello" || len(im.Config.Cmd) != 2 ||
				im.Config.Labels["org.example"] != "spec" || len(im.Config.ExposedPorts) != 1 || im.Config.Parent == "" {
				t.Errorf("image config = %+v", im.Config)
			}
			if !strings.HasPrefix(im.Props[PropSource], "docker://"+ref+"@sha256:") {
				t.Errorf("source = %q", im.Props[PropSource])
			}
			// Pulling again fetches nothing.
			if res, err := p.Pull(ctx, Source{Ref: ref, Insecure: true}); err != nil || res.Fetched != 0 {
				t.Errorf("second pull = %+v, %v; want nothing fetched", res, err)
			}
			if reg != "ggcr" {
				return
			}
			// A second image sharing the first two layers.
			l4 := layerOf(t, tarOf(t, "", []entry{fileE("data/fourth.txt", "layer four\n")}))
			img2 := imageOf(t, "linux", "amd64", v1.Config{Cmd: []string{"/bin/true"}}, layers[0], layers[1], l4)
			ref2 := strings.TrimSuffix(ref, ":v1") + ":v2"
			r2, _ := name.ParseReference(ref2, name.Insecure)
			if err := remote.Write(r2, img2); err != nil {
				t.Fatal(err)
			}
			res2, err := p.Pull(ctx, Source{Ref: ref2, Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			if res2.Fetched != 1 {
				t.Errorf("second image fetched %d layers, want 1", res2.Fetched)
			}
			after := ociDatasets(t, s)
			var added []string
			for k, v := range after {
				if _, ok := ds[k]; !ok {
					added = append(added, k+" parent="+v.Parent)
				}
			}
			// One layer dataset (ChainID of the new layer, a clone of the
			// shared second layer) and the image's own O(1) clone of it.
			if len(added) != 2 {
				t.Errorf("second image added %d datasets, want the one new layer and the image: %v", len(added), added)
			}
			im2 := after[res2.ID]
			if l3 := after[im2.Parent]; l3.Parent != ds[ds[im.Parent].Parent].ID {
				t.Errorf("the new layer %s is not a clone of the shared second layer", im2.Parent)
			}
			// An image made of exactly the first two layers (another
			// config) fetches nothing and adds exactly one dataset.
			img3 := imageOf(t, "linux", "amd64", v1.Config{Cmd: []string{"/bin/ls"}}, layers[0], layers[1])
			ref3 := strings.TrimSuffix(ref, ":v1") + ":v3"
			r3, _ := name.ParseReference(ref3, name.Insecure)
			if err := remote.Write(r3, img3); err != nil {
				t.Fatal(err)
			}
			res3, err := p.Pull(ctx, Source{Ref: ref3, Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			if n := len(ociDatasets(t, s)) - len(after); res3.Fetched != 0 || n != 1 {
				t.Errorf("two shared layers: fetched %d, added %d datasets; want 0 and exactly 1", res3.Fetched, n)
			}
		})
	}
}

// TestIntegrationCorruptBlob: a registry serving a corrupted layer is
// refused with a digest error and leaves ROOT/tmp empty.
func TestIntegrationCorruptBlob(t *testing.T) {
	testenv.Pool(t)
	var layers []v1.Layer
	for _, tb := range specLayers(t, "") {
		layers = append(layers, layerOf(t, tb))
	}
	img := imageOf(t, "linux", "amd64", v1.Config{}, layers...)
	host, storage := dockerRegistry(t)
	ref := host + "/spec/corrupt:v1"
	skopeoCopy(t, writeLayout(t, img, "v1", nil), "v1", ref)
	d, err := layers[2].Digest()
	if err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(storage, "docker/registry/v2/blobs/sha256", d.Hex[:2], d.Hex, "data")
	b, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	_, err = (&Puller{Store: s, Log: testLog()}).Pull(context.Background(), Source{Ref: ref, Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("pull of a corrupted blob: err = %v, want a digest error", err)
	}
	t.Logf("refused: %v", err)
	ds := ociDatasets(t, s) // also asserts ROOT/tmp is empty
	if len(ds) != 2 {
		t.Errorf("%d datasets, want the two good layers only", len(ds))
	}
}

// TestIntegrationKilledPull: SIGKILL while a layer streams, then a fresh
// start (which sweeps ROOT/tmp) and pull converge with no orphan dataset.
func TestIntegrationKilledPull(t *testing.T) {
	testenv.Pool(t)
	var layers []v1.Layer
	for _, tb := range specLayers(t, "") {
		layers = append(layers, layerOf(t, tb))
	}
	big := make([]byte, 4<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	slow := layerOf(t, tarOf(t, "", []entry{fileE("big", string(big))}))
	img := imageOf(t, "linux", "amd64", v1.Config{}, layers[0], slow, layers[1])
	sd, _ := slow.Digest()
	var stall sync.Once
	stalled := make(chan struct{})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	host := ggcrRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+sd.String()) && os.Getenv("NO_STALL") == "" {
				stalling := false
				stall.Do(func() { stalling = true })
				if stalling {
					rc, _ := slow.Compressed()
					defer rc.Close()
					w.Header().Set("Content-Length", fmt.Sprint(must(slow.Size())))
					io.CopyN(w, rc, 64<<10)
					w.(http.Flusher).Flush()
					close(stalled)
					select {
					case <-release:
					case <-r.Context().Done():
					}
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := host + "/spec/killed:v1"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	s := openStore(t)
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), killEnv+"="+ref, killEnv+"_ROOT="+s.Root())
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
		t.Fatalf("the pull never reached the second layer: %s", out.String())
	}
	// The second layer is streaming into a work dataset in ROOT/tmp.
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := s.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Tmp) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no work dataset appeared in ROOT/tmp")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	// What apply (or `import docker://` by hand) does: a shared open, which
	// removes the work of the killed process only, then the pull.
	s2, err := zfs.OpenShared(context.Background(), s.Root(), &runner.Exec{}, testLog())
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&Puller{Store: s2, Log: testLog()}).Pull(context.Background(), Source{Ref: ref, Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Fetched != 2 {
		t.Errorf("fetched %d layers after the kill, want 2 (the first was published before it)", res.Fetched)
	}
	ds := ociDatasets(t, s2)
	if len(ds) != 4 {
		t.Errorf("%d datasets after convergence, want 3 layers and the image (no orphan): %v", len(ds), ds)
	}
	st, _ := s2.Observe(context.Background())
	if len(st.Images) != 4 {
		t.Errorf("%d images in the root, want 4", len(st.Images))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestIntegrationFreeBSDArchive: an archive shaped like FreeBSD's OCI
// releases (one gzip layer, os freebsd, a ref.name annotation, a .txz of
// the layout) imports with --platform freebsd/amd64 and its sha256.
func TestIntegrationFreeBSDArchive(t *testing.T) {
	testenv.Pool(t)
	l := layerOf(t, tarOf(t, "", []entry{
		dirE("bin", 0o755), withMode(fileE("bin/freebsd-version", "#!/bin/sh\necho 15.0-RELEASE\n"), 0o555),
		dirE("etc", 0o755), fileE("etc/os-release", "NAME=FreeBSD\nVERSION=15.0\n"),
		{Name: "sbin/init", Type: '0', Mode: 0o555, Body: "elf", PAX: map[string]string{"SCHILY.fflags": "schg"}},
	}))
	img := imageOf(t, "freebsd", "amd64", v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/sbin:/bin:/usr/sbin:/usr/bin"}}, l)
	dir := writeLayout(t, img, "freebsd-runtime:15.0", nil)
	txz := filepath.Join(t.TempDir(), "FreeBSD-15.0-runtime.txz")
	writeTxz(t, dir, txz)
	sha := sum(must(os.ReadFile(txz)))
	id, _ := mustDigest(t, img)
	s := openStore(t)
	p := &Puller{Store: s, Log: testLog()}
	ctx := context.Background()

	_, err := p.Pull(ctx, Source{Archive: txz, SHA256: strings.Repeat("0", 64), Platform: "freebsd/amd64"})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") {
		t.Errorf("wrong sha256: err = %v", err)
	}
	_, err = p.Pull(ctx, Source{Archive: txz, SHA256: sha})
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/amd64 (it is freebsd/amd64)") {
		t.Errorf("default platform here: err = %v", err)
	}
	_, err = p.Pull(ctx, Source{Archive: txz, SHA256: sha, Name: "freebsd-static:15.0", Platform: "freebsd/amd64"})
	if err == nil || !strings.Contains(err.Error(), `no image named "freebsd-static:15.0" (it has freebsd-runtime:15.0)`) {
		t.Errorf("wrong name: err = %v", err)
	}
	res, err := p.Pull(ctx, Source{Archive: txz, SHA256: sha, Name: "freebsd-runtime:15.0", Platform: "freebsd/amd64"})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != id {
		t.Errorf("ID %s, want the config digest %s", res.ID, id)
	}
	ds := ociDatasets(t, s)
	im := ds[id]
	if b, err := os.ReadFile(filepath.Join(im.Mountpoint, "etc/os-release")); err != nil || !strings.Contains(string(b), "FreeBSD") {
		t.Errorf("etc/os-release = %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(im.Mountpoint, "bin/freebsd-version")); err != nil || fi.Mode().Perm() != 0o555 {
		t.Errorf("bin/freebsd-version: %v %v", fi, err)
	}
	if im.Config.Env["PATH"] == "" || im.Props[PropOrigin] != Origin {
		t.Errorf("config %+v, props %v", im.Config, im.Props)
	}
}

// TestIntegrationIndexPlatforms: an index without the wanted platform is an
// error naming the platforms it has.
func TestIntegrationIndexPlatforms(t *testing.T) {
	testenv.Pool(t)
	l := layerOf(t, tarOf(t, "", []entry{fileE("f", "x")}))
	arm := imageOf(t, "linux", "arm64", v1.Config{}, l)
	ppc := imageOf(t, "linux", "ppc64le", v1.Config{}, l)
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: ppc, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "ppc64le"}}})
	ref := ggcrRegistry(t, nil) + "/multi/image:v1"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	p := &Puller{Store: openStore(t), Log: testLog()}
	_, err := p.Pull(context.Background(), Source{Ref: ref, Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "no image for platform linux/amd64 (it has linux/arm64, linux/ppc64le)") {
		t.Fatalf("err = %v", err)
	}
	res, err := p.Pull(context.Background(), Source{Ref: ref, Insecure: true, Platform: "linux/arm64"})
	if err != nil || res.ID != must(arm.ConfigName()).Hex {
		t.Fatalf("pull linux/arm64 = %+v, %v", res, err)
	}
}

// writeTxz writes an xz-compressed tar of dir.
func writeTxz(t testing.TB, dir, dst string) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	xw, err := xz.NewWriter(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := xw.Write(tarOf(t, dir, nil)); err != nil {
		t.Fatal(err)
	}
	if err := xw.Close(); err != nil {
		t.Fatal(err)
	}
}

func logDiscard() *log.Logger { return log.New(io.Discard, "", 0) }

// TestIntegrationRegistryAuth: credentials come from the Docker config
// ($DOCKER_CONFIG/config.json); without them the registry's 401 is the error.
func TestIntegrationRegistryAuth(t *testing.T) {
	testenv.Pool(t)
	img := imageOf(t, "linux", "amd64", v1.Config{}, layerOf(t, tarOf(t, "", []entry{fileE("f", "secret\n")})))
	host := ggcrRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "zocker" || p != "s3cret" {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	ref := host + "/private/app:v1"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img, remote.WithAuth(&authn.Basic{Username: "zocker", Password: "s3cret"})); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("HOME", t.TempDir())
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("DOCKER_CONFIG", dir)
	p := &Puller{Store: openStore(t), Log: testLog()}
	_, err := p.Pull(context.Background(), Source{Ref: ref, Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("without credentials: err = %v, want 401", err)
	}
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, base64.StdEncoding.EncodeToString([]byte("zocker:s3cret")))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := p.Pull(context.Background(), Source{Ref: ref, Insecure: true})
	if err != nil || res.Fetched != 1 {
		t.Fatalf("with $DOCKER_CONFIG/config.json: %+v, %v", res, err)
	}
}
