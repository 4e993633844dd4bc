package oci

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPullUnit runs the puller against the in-process registry and a store
// of plain directories: the spec image's tree equals mutate.Extract, layers
// are reused, a corrupted blob and images over the size limit are refused
// with nothing left in tmp.
func TestPullUnit(t *testing.T) {
	requireRootUser(t)
	var layers []v1.Layer
	for _, tb := range specLayers(t, "") {
		layers = append(layers, layerOf(t, tb))
	}
	img := imageOf(t, "linux", "amd64", v1.Config{Cmd: []string{"/bin/true"}}, layers...)
	bad, _ := layers[1].Digest()
	host := ggcrRegistry(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v2/corrupt/") && strings.HasSuffix(r.URL.Path, "/blobs/"+bad.String()) && r.Method == http.MethodGet {
				h.ServeHTTP(&flipWriter{ResponseWriter: w}, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	for _, repo := range []string{"spec", "corrupt"} {
		r, _ := name.ParseReference(host+"/"+repo+":v1", name.Insecure)
		if err := remote.Write(r, img); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()

	s := newFakeStore(t)
	_, err := (&Puller{Store: s}).Pull(ctx, Source{Ref: host + "/corrupt:v1", Insecure: true})
	if err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Errorf("corrupted blob: err = %v, want a digest mismatch", err)
	}
	st, _ := s.Observe(ctx)
	if len(st.Tmp) != 0 || len(st.Images) != 1 {
		t.Errorf("after the corrupted blob: tmp %v, %d images (want the first layer only)", st.Tmp, len(st.Images))
	}

	for _, max := range []int64{100, 5000} {
		s := newFakeStore(t)
		_, err := (&Puller{Store: s, MaxSize: max}).Pull(ctx, Source{Ref: host + "/spec:v1", Insecure: true})
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("limit %d: err = %v, want ErrTooLarge", max, err)
		}
		if st, _ := s.Observe(ctx); len(st.Tmp) != 0 {
			t.Errorf("limit %d: tmp %v", max, st.Tmp)
		}
	}

	s = newFakeStore(t)
	p := &Puller{Store: s}
	res, err := p.Pull(ctx, Source{Ref: host + "/spec:v1", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	st, _ = s.Observe(ctx)
	im, _ := st.Image(res.ID)
	compareTrees(t, treeOfDir(t, im.Mountpoint), treeOfExtract(t, img))
	if res.Fetched != 3 || len(st.Images) != 4 {
		t.Errorf("pull = %+v with %d images, want 3 layers fetched and 4 images", res, len(st.Images))
	}
	// A layer or image ID held by a local build is never reused.
	s2 := newFakeStore(t)
	s2.imgs = append(s2.imgs, im)
	s2.imgs[0].Props = map[string]string{"zocker:origin": "build"}
	if _, err := (&Puller{Store: s2}).Pull(ctx, Source{Ref: host + "/spec:v1", Insecure: true}); err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Errorf("image ID of a build: err = %v, want an origin conflict", err)
	}
}

// flipWriter corrupts one byte in the middle of what it writes.
type flipWriter struct {
	http.ResponseWriter
	n int
}

func (f *flipWriter) Write(b []byte) (int, error) {
	c := append([]byte(nil), b...)
	if f.n <= 100 && f.n+len(c) > 100 {
		c[100-f.n] ^= 0xff
	}
	f.n += len(c)
	return f.ResponseWriter.Write(c)
}
