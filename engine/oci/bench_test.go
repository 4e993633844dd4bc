package oci

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math/rand"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/internal/testenv"
)

// BenchmarkPullVsSkopeo pulls a 200 MB 3-layer image (incompressible
// files, gzip layers) from docker-registry on loopback into a fresh root of
// the zfs-fuse pool, and times `skopeo copy` of the same image to an OCI
// directory beside it: pull-s, skopeo-s and their ratio are the figures.
func BenchmarkPullVsSkopeo(b *testing.B) {
	testenv.Pool(b)
	skopeo := testenv.Tool(b, "skopeo", "skopeo")
	host, _ := testenv.DockerRegistry(b)
	rng := rand.New(rand.NewSource(1))
	var layers []v1.Layer
	for i := 0; i < 3; i++ {
		var files []entry
		for j := 0; j < 8; j++ {
			data := make([]byte, (200<<20)/24)
			rng.Read(data)
			files = append(files, fileE("data/l"+strconv.Itoa(i)+"/f"+strconv.Itoa(j), string(data)))
		}
		tb := tarOf(b, "", files)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil },
			tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestSpeed))
		if err != nil {
			b.Fatal(err)
		}
		layers = append(layers, l)
	}
	img := imageOf(b, "linux", "amd64", v1.Config{}, layers...)
	ref := host + "/bench/big:v1"
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var pull, sk time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := testenv.Dataset(b)
		s, err := zfs.Open(ctx, root, &runner.Exec{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		dir := filepath.Join(b.TempDir(), "oci")
		b.StartTimer()
		start := time.Now()
		res, err := (&Puller{Store: s, Log: testLog()}).Pull(ctx, Source{Ref: ref, Insecure: true})
		if err != nil || res.Fetched != 3 {
			b.Fatalf("pull: %+v %v", res, err)
		}
		pull += time.Since(start)
		b.StopTimer()
		start = time.Now()
		if out, err := exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":v1").CombinedOutput(); err != nil {
			b.Fatalf("skopeo copy: %v: %s", err, out)
		}
		sk += time.Since(start)
		testenv.DestroyAll(b, root)
		b.StartTimer()
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(pull.Seconds()/n, "pull-s")
	b.ReportMetric(sk.Seconds()/n, "skopeo-s")
	b.ReportMetric(pull.Seconds()/sk.Seconds(), "pull/skopeo")
	b.ReportMetric(200/(pull.Seconds()/n), "pull-MB/s")
}
