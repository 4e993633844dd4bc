package oci

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/zocker-reconcile/zocker-reconcile/engine/oci/layer"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
)

// Pusher sends local images to registries.
type Pusher struct {
	Store interface {
		Observe(ctx context.Context) (*zfs.State, error)
	}
	Log *slog.Logger
	// TmpDir holds the layer files while they are sent ("" = os.TempDir()).
	TmpDir string
	// Remote are extra options for registry calls.
	Remote []remote.Option
}

// PushResult says what a push did.
type PushResult struct {
	// Manifest is the pushed manifest's digest; Config the config digest.
	Manifest, Config string
	// Layers is the image's layer count, Sent how many the registry lacked.
	Layers, Sent int
	// Bytes is the compressed size sent.
	Bytes int64
}

// Push sends image id to ref: each image of its local chain (imported,
// built, committed, pulled) becomes one layer, the difference between it
// and its parent (whiteouts for deletions), gzip-compressed; the config is
// made from the image's config, for platform ("" = the host's). Layers the
// registry has already are not sent again.
func (p *Pusher) Push(ctx context.Context, id, ref, platform string, insecure bool) (res PushResult, err error) {
	log := p.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("image", id, "action", "push")
	plat, err := ParsePlatform(platform)
	if err != nil {
		return res, err
	}
	r, err := ParseRef(ref, insecure)
	if err != nil {
		return res, err
	}
	st, err := p.Store.Observe(ctx)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", id, err)
	}
	var chain []zfs.Image
	for cur := id; cur != ""; {
		im, ok := st.Image(cur)
		if !ok {
			return res, fmt.Errorf("push %s: image %s: %w", id, cur, zfs.ErrNotFound)
		}
		chain = append([]zfs.Image{im}, chain...)
		cur = im.Parent
		if len(chain) > 1000 {
			return res, fmt.Errorf("push %s: parent chain longer than 1000 images", id)
		}
	}
	tmp, err := os.MkdirTemp(p.TmpDir, "zocker-push-")
	if err != nil {
		return res, fmt.Errorf("push %s: %w", id, err)
	}
	defer os.RemoveAll(tmp)
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var adds []mutate.Addendum
	lower := ""
	for i, im := range chain {
		f, err := os.CreateTemp(tmp, "layer-*.tar.gz")
		if err != nil {
			return res, fmt.Errorf("push %s: %w", id, err)
		}
		_, n, err := layer.Diff(lower, im.Mountpoint, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return res, fmt.Errorf("push %s: layer of image %s: %w", id, im.ID, err)
		}
		l, err := tarball.LayerFromFile(f.Name(), tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return res, fmt.Errorf("push %s: layer of image %s: %w", id, im.ID, err)
		}
		log.Debug("layer made", "layer", fmt.Sprintf("%d/%d", i+1, len(chain)), "from", im.ID, "entries", n)
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: im.Created}, CreatedBy: "zocker image " + im.ID,
		}})
		lower = im.Mountpoint
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", id, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return res, fmt.Errorf("push %s: %w", id, err)
	}
	cf = cf.DeepCopy()
	top := chain[len(chain)-1]
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config = ociConfig(top.Config)
	cf.Created = v1.Time{Time: top.Created}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return res, fmt.Errorf("push %s: %w", id, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return res, fmt.Errorf("push %s: %w", id, err)
	}
	res.Layers = len(layers)
	uploads := &uploadCounter{base: http.DefaultTransport}
	start := time.Now()
	for i, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		before := uploads.n.Load()
		lstart := time.Now()
		updates := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			last := time.Now()
			for u := range updates {
				if time.Since(last) >= 2*time.Second {
					last = time.Now()
					log.Info("sending layer", "layer", fmt.Sprintf("%d/%d", i+1, len(layers)), "bytes", u.Complete, "total", u.Total,
						"mbps", rate(u.Complete, time.Since(lstart).Seconds()))
				}
			}
		}()
		opts := remoteOptions(ctx, plat, append([]remote.Option{remote.WithTransport(uploads), remote.WithProgress(updates)}, p.Remote...)...)
		err := remote.WriteLayer(r.Context(), l, opts...)
		<-done
		if err != nil {
			return res, fmt.Errorf("push %s: layer %d/%d %s: %w", id, i+1, len(layers), d, err)
		}
		if uploads.n.Load() == before {
			log.Info("layer already in the registry", "layer", fmt.Sprintf("%d/%d", i+1, len(layers)), "digest", d.String())
			continue
		}
		res.Sent++
		res.Bytes += size
		secs := time.Since(lstart).Seconds()
		log.Info("layer sent", "layer", fmt.Sprintf("%d/%d", i+1, len(layers)), "digest", d.String(), "bytes", size,
			"seconds", secs, "mbps", rate(size, secs))
	}
	if err := remote.Write(r, img, remoteOptions(ctx, plat, p.Remote...)...); err != nil {
		return res, fmt.Errorf("push %s to %s: %w", id, ref, err)
	}
	md, _ := img.Digest()
	cn, _ := img.ConfigName()
	res.Manifest, res.Config = md.String(), cn.String()
	log.Info("pushed image", "ref", ref, "manifest", res.Manifest, "layers", res.Layers, "sent", res.Sent,
		"bytes", res.Bytes, "seconds", time.Since(start).Seconds())
	return res, nil
}

// uploadCounter counts blob upload starts (POST .../blobs/uploads/): a
// layer written without one was in the registry already.
type uploadCounter struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (u *uploadCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && strings.Contains(req.URL.Path, "/blobs/uploads/") {
		u.n.Add(1)
	}
	return u.base.RoundTrip(req)
}
