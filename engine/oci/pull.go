package oci

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"

	"github.com/zocker-reconcile/zocker-reconcile/engine/oci/layer"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Properties the puller records on what it publishes.
const (
	// PropOrigin records how an image was made (import, build, pull, commit,
	// load, oci); shared with the rest of the store.
	PropOrigin = "zocker:origin"
	// PropSource is where an OCI image came from: docker://REF or
	// oci-archive:PATH, with the manifest digest.
	PropSource = "zocker:source"
	// PropLayer is the layer digest (as sent) a layer dataset was made from.
	PropLayer = "zocker:oci-layer"
)

// Store is what pulling and pushing need of the ZFS engine.
type Store interface {
	Observe(ctx context.Context) (*zfs.State, error)
	NewWork(ctx context.Context, fromID string) (*zfs.Work, error)
	Discard(ctx context.Context, w *zfs.Work)
	Publish(ctx context.Context, w *zfs.Work, id string, cfg zfs.Config, extra map[string]string) error
}

// Puller brings OCI images into a store.
type Puller struct {
	Store Store
	Log   *slog.Logger
	// TmpDir is where archives are unpacked ("" = os.TempDir()).
	TmpDir string
	// Remote are extra options for registry calls (tests: a transport).
	Remote []remote.Option
}

// Result says what a pull did.
type Result struct {
	// ID is the image's ID: its config digest (hex).
	ID string
	// Manifest is the manifest digest that was pulled.
	Manifest string
	// Layers is the image's layer count; Fetched how many were applied
	// (the others were already present as datasets).
	Layers, Fetched int
	// Bytes is the compressed size fetched.
	Bytes int64
}

func (p *Puller) log() *slog.Logger {
	if p.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return p.Log
}

// Resolve returns the image ID (config digest, hex) and manifest digest a
// source names now, reading only manifests (and, for an archive, unpacking
// it): what the reconciler compares with the local tag.
func (p *Puller) Resolve(ctx context.Context, src Source) (id, manifest string, err error) {
	img, done, err := p.open(ctx, src)
	if err != nil {
		return "", "", err
	}
	defer done()
	cn, err := img.ConfigName()
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", src, err)
	}
	md, err := img.Digest()
	if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", src, err)
	}
	return cn.Hex, md.String(), nil
}

// open resolves a source to one image of the wanted platform. done releases
// what it holds (an unpacked archive).
func (p *Puller) open(ctx context.Context, src Source) (img v1.Image, done func(), err error) {
	plat, err := ParsePlatform(src.Platform)
	if err != nil {
		return nil, nil, err
	}
	done = func() {}
	if (src.Ref == "") == (src.Archive == "") {
		return nil, nil, errors.New("oci source: give exactly one of ref and archive")
	}
	if src.Ref != "" {
		ref, err := ParseRef(src.Ref, src.Insecure)
		if err != nil {
			return nil, nil, err
		}
		opts := remoteOptions(ctx, plat, p.Remote...)
		desc, err := remote.Get(ref, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("fetch manifest %s: %w", src, err)
		}
		if !isIndex(desc.MediaType) {
			img, err = desc.Image()
			if err != nil {
				return nil, nil, fmt.Errorf("read image %s: %w", src, err)
			}
			return img, done, nil
		}
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, nil, fmt.Errorf("read index %s: %w", src, err)
		}
		img, err = imageFromIndex(idx, plat, "", src.String())
		return img, done, err
	}
	dir := src.Archive
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", src, err)
	}
	if !fi.IsDir() {
		tmp, err := unpackArchive(src.Archive, src.SHA256, p.TmpDir, p.log())
		if err != nil {
			return nil, nil, err
		}
		dir, done = tmp, func() { os.RemoveAll(tmp) }
	} else if src.SHA256 != "" {
		return nil, nil, fmt.Errorf("open %s: sha256 is for archive files, this is a directory", src)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		done()
		return nil, nil, fmt.Errorf("open %s: not an OCI image layout: %w", src, err)
	}
	img, err = imageFromIndex(idx, plat, src.Name, src.String())
	if err != nil {
		done()
		return nil, nil, err
	}
	return img, done, nil
}

// imageFromIndex picks the image for plat (and refName) from an index,
// following one nested index (an archive whose index points at a
// multi-platform index).
func imageFromIndex(idx v1.ImageIndex, plat v1.Platform, refName, what string) (v1.Image, error) {
	for depth := 0; depth < 2; depth++ {
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("read index %s: %w", what, err)
		}
		d, err := pickManifest(im, plat, refName, what)
		if err != nil {
			return nil, err
		}
		if !isIndex(d.MediaType) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read image %s: %w", what, err)
			}
			return img, nil
		}
		if idx, err = idx.ImageIndex(d.Digest); err != nil {
			return nil, fmt.Errorf("read index %s: %w", what, err)
		}
		refName = ""
	}
	return nil, fmt.Errorf("read index %s: indexes nested too deep", what)
}

// chainIDs computes the ChainIDs of the OCI image spec:
// ChainID(L0) = DiffID(L0), ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " + DiffID(Ln)).
func chainIDs(diffIDs []v1.Hash) []v1.Hash {
	out := make([]v1.Hash, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1].String() + " " + d.String()))
		out[i] = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return out
}

// Pull brings the image src names into the store: every missing layer is
// fetched, verified and applied on a clone of the layer below it in
// ROOT/tmp, then published as ROOT/images/<ChainID>; the image itself is a
// clone of its top layer published as ROOT/images/<config digest>. Layers
// already present are not fetched. A digest that does not match fails the
// pull and discards the work in progress.
func (p *Puller) Pull(ctx context.Context, src Source) (res Result, err error) {
	start := time.Now()
	img, done, err := p.open(ctx, src)
	if err != nil {
		return res, err
	}
	defer done()
	plat, _ := ParsePlatform(src.Platform)
	md, err := img.Digest()
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", src, err)
	}
	res.Manifest = md.String()
	m, err := img.Manifest()
	if err != nil {
		return res, fmt.Errorf("pull %s: read manifest: %w", src, err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return res, fmt.Errorf("pull %s: read config: %w", src, err)
	}
	if got := sha256.Sum256(raw); m.Config.Digest.Algorithm != "sha256" || hex.EncodeToString(got[:]) != m.Config.Digest.Hex {
		return res, fmt.Errorf("pull %s: config digest mismatch: got sha256:%x, the manifest says %s", src, got, m.Config.Digest)
	}
	cf, err := v1.ParseConfigFile(bytesReader(raw))
	if err != nil {
		return res, fmt.Errorf("pull %s: parse config: %w", src, err)
	}
	if err := checkConfigPlatform(cf, plat, "pull "+src.String()); err != nil {
		return res, err
	}
	res.ID = m.Config.Digest.Hex
	log := p.log().With("image", res.ID, "action", "pull")
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return res, fmt.Errorf("pull %s: the config lists %d layers, the manifest %d", src, len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	res.Layers = len(m.Layers)
	st, err := p.Store.Observe(ctx)
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", src, err)
	}
	if _, ok := st.Image(res.ID); ok {
		log.Debug("image already present")
		return res, nil
	}
	layers, err := img.Layers()
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", src, err)
	}
	chain := chainIDs(cf.RootFS.DiffIDs)
	parent := ""
	for i, l := range layers {
		cid := chain[i].Hex
		if chain[i].Algorithm != "sha256" || image.ValidID(cid) != nil {
			return res, fmt.Errorf("pull %s: layer %d: diff ID %s is not a sha256 digest", src, i+1, cf.RootFS.DiffIDs[i])
		}
		if _, ok := st.Image(cid); ok {
			parent = cid
			continue
		}
		n, err := p.layer(ctx, l, m.Layers[i], cf.RootFS.DiffIDs[i], parent, cid, src, i+1, len(layers))
		if err != nil {
			return res, fmt.Errorf("pull %s: layer %d/%d %s: %w", src, i+1, len(layers), m.Layers[i].Digest, err)
		}
		res.Fetched++
		res.Bytes += n
		parent = cid
	}
	cfg := imageConfig(cf)
	cfg.Parent = parent
	if err := p.publish(ctx, parent, res.ID, cfg, map[string]string{
		PropOrigin: Origin, PropSource: src.String() + "@" + res.Manifest,
	}); err != nil {
		return res, fmt.Errorf("pull %s: %w", src, err)
	}
	secs := time.Since(start).Seconds()
	log.Info("pulled image", "source", src.String(), "manifest", res.Manifest, "layers", res.Layers,
		"fetched", res.Fetched, "bytes", res.Bytes, "seconds", secs)
	return res, nil
}

// publish clones fromID (or starts empty) and publishes it unchanged as id:
// an O(1) clone of the top layer carrying the image's config.
func (p *Puller) publish(ctx context.Context, fromID, id string, cfg zfs.Config, props map[string]string) (err error) {
	w, err := p.Store.NewWork(ctx, fromID)
	if err != nil {
		return err
	}
	if err := p.Store.Publish(ctx, w, id, cfg, props); err != nil {
		if errors.Is(err, zfs.ErrExists) {
			return nil // made concurrently: same digest, same content
		}
		p.Store.Discard(context.WithoutCancel(ctx), w)
		return err
	}
	return nil
}

// layer fetches one layer, verifying its digest and diff ID as it streams,
// applies it onto a clone of parent and publishes it as chainID.
func (p *Puller) layer(ctx context.Context, l v1.Layer, desc v1.Descriptor, diffID v1.Hash, parent, chainID string, src Source, n, total int) (size int64, err error) {
	log := p.log().With("dataset", chainID, "action", "pull", "layer", fmt.Sprintf("%d/%d", n, total))
	if desc.Digest.Algorithm != "sha256" || diffID.Algorithm != "sha256" {
		return 0, fmt.Errorf("only sha256 digests are supported (have %s, %s)", desc.Digest, diffID)
	}
	w, err := p.Store.NewWork(ctx, parent)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			p.Store.Discard(context.WithoutCancel(ctx), w)
		}
	}()
	rc, err := l.Compressed()
	if err != nil {
		return 0, fmt.Errorf("fetch: %w", err)
	}
	defer rc.Close()
	compressed := sha256.New()
	prog := &progress{log: log, total: desc.Size, start: time.Now(), last: time.Now()}
	// The blob is read through a counter and a hash of what was sent; the
	// registry's own verifying reader (remote layers) checks the digest too.
	br := bufio.NewReaderSize(io.TeeReader(io.TeeReader(rc, compressed), prog), 1<<20)
	ur, err := decompress(br)
	if err != nil {
		return 0, err
	}
	uncompressed := sha256.New()
	tee := io.TeeReader(ur, uncompressed)
	stats, err := layer.Apply(w.Mountpoint, tee, p.log().With("dataset", chainID))
	if err != nil {
		if derr := checkDigests(br, tee, compressed, uncompressed, desc.Digest, diffID); derr != nil {
			return 0, derr // a corrupt blob shows as a tar error first: say what it is
		}
		return 0, err
	}
	if err := checkDigests(br, tee, compressed, uncompressed, desc.Digest, diffID); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err = p.Store.Publish(ctx, w, chainID, zfs.Config{Parent: parent}, map[string]string{
		PropOrigin: Origin, PropLayer: desc.Digest.String(),
	}); err != nil {
		if errors.Is(err, zfs.ErrExists) {
			return prog.n, nil
		}
		return 0, err
	}
	secs := time.Since(prog.start).Seconds()
	log.Info("layer applied", "digest", desc.Digest.String(), "bytes", prog.n, "seconds", secs,
		"mbps", rate(prog.n, secs), "entries", stats.Entries, "whiteouts", stats.Whiteouts, "skipped", stats.Skipped)
	return prog.n, nil
}

// checkDigests drains both streams to their end and compares what was read
// with the manifest's layer digest and the config's diff ID.
func checkDigests(compressedR, uncompressedR io.Reader, ch, uh hash.Hash, digest, diffID v1.Hash) error {
	if _, err := io.Copy(io.Discard, uncompressedR); err != nil {
		// Drain the blob anyway: a digest mismatch is the better message.
		_, _ = io.Copy(io.Discard, compressedR)
		if got := hex.EncodeToString(ch.Sum(nil)); got != digest.Hex {
			return fmt.Errorf("layer digest mismatch: got sha256:%s, want %s", got, digest)
		}
		return fmt.Errorf("decompress: %w", err)
	}
	if _, err := io.Copy(io.Discard, compressedR); err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	if got := hex.EncodeToString(ch.Sum(nil)); got != digest.Hex {
		return fmt.Errorf("layer digest mismatch: got sha256:%s, want %s", got, digest)
	}
	if got := hex.EncodeToString(uh.Sum(nil)); got != diffID.Hex {
		return fmt.Errorf("layer diff ID mismatch: got sha256:%s, the config says %s", got, diffID)
	}
	return nil
}

// decompress recognises gzip, zstd or a plain tar by its first bytes.
func decompress(br *bufio.Reader) (io.Reader, error) {
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(true)
		return zr, nil
	case len(magic) == 4 && string(magic) == "\x28\xb5\x2f\xfd":
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return br, nil
}

// progress logs a long transfer every few seconds: bytes, total and rate.
type progress struct {
	log         *slog.Logger
	total, n    int64
	start, last time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		secs := time.Since(p.start).Seconds()
		p.log.Info("transferring layer", "bytes", p.n, "total", p.total, "mbps", rate(p.n, secs))
	}
	return len(b), nil
}

// rate is MB/s with two decimals.
func rate(n int64, secs float64) float64 {
	if secs <= 0 {
		return 0
	}
	return float64(int64(float64(n)/secs/1e6*100)) / 100
}
