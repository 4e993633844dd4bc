package zfs

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	gozfs "github.com/mistifyio/go-zfs/v4"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// Config is an image's metadata, stored as JSON in zocker:config.
type Config struct {
	Cmd          []string          `json:"cmd,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	User         string            `json:"user,omitempty"`
	Workdir      string            `json:"workdir,omitempty"`
	Volumes      []string          `json:"volumes,omitempty"`
	ExposedPorts []string          `json:"exposedPorts,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Parent       string            `json:"parent,omitempty"`
	// Inputs is a digest the reconciler sets to know what the image was made from.
	Inputs string `json:"inputs,omitempty"`
}

func decodeConfig(s string) (Config, error) {
	var c Config
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("decode image config: %w", err)
	}
	return c, nil
}

// tarballIDPrefix makes tarball IDs a different space from build step IDs.
const tarballIDPrefix = "zocker/v1 tarball sha256:"

// TarballID is the content address of an image imported from an archive with
// the given sha256 (hex): sha256 over a fixed prefix and that digest.
func TarballID(archiveSHA256 string) string {
	sum := sha256.Sum256([]byte(tarballIDPrefix + strings.ToLower(archiveSHA256)))
	return hex.EncodeToString(sum[:])
}

// ImportSource is a root filesystem archive: a local Path, or an https URL
// (then SHA256 is required).
type ImportSource struct {
	Path   string
	URL    string
	SHA256 string
}

// tarBin is the system tar: bsdtar on FreeBSD, which keeps file flags such as
// schg found on base.txz.
func tarBin() string {
	if runtime.GOOS == "freebsd" {
		return "/usr/bin/tar"
	}
	return "tar"
}

// ImportTarball imports an archive as an image and returns its ID. Importing
// the same archive again is a no-op returning the same ID. A declared sha256
// that does not match is refused before any dataset is created. Extraction
// happens in ROOT/tmp/<random>; the image appears under ROOT/images only
// complete, by one rename.
func (s *Store) ImportTarball(ctx context.Context, src ImportSource, cfg Config) (id string, err error) {
	if (src.Path == "") == (src.URL == "") {
		return "", errors.New("import tarball: give exactly one of path and url")
	}
	want := strings.ToLower(src.SHA256)
	if want != "" && image.ValidID(want) != nil {
		return "", fmt.Errorf("import tarball: sha256 %q is not 64 hex digits", src.SHA256)
	}
	path := src.Path
	if src.URL != "" {
		if !strings.HasPrefix(src.URL, "https://") {
			return "", fmt.Errorf("import tarball %s: only https URLs are accepted", src.URL)
		}
		if want == "" {
			return "", fmt.Errorf("import tarball %s: a sha256 is required for a URL", src.URL)
		}
		// The declared digest gives the ID: an image already present is
		// not downloaded again.
		if ok, err := s.requireOrigin(ctx, TarballID(want), OriginImport); err != nil || ok {
			if err != nil {
				return "", fmt.Errorf("import tarball %s: %w", src.URL, err)
			}
			return TarballID(want), nil
		}
		f, err := s.download(ctx, src.URL, want)
		if err != nil {
			return "", err
		}
		defer os.Remove(f)
		path = f
	}
	digest, err := fileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("import tarball %s: %w", path, err)
	}
	if want != "" && digest != want {
		return "", fmt.Errorf("import tarball %s: %w: the file has %s, %s was declared", path, ErrDigestMismatch, digest, want)
	}
	id = TarballID(digest)
	log := s.log.With("image", id, "action", "import")
	if ok, err := s.requireOrigin(ctx, id, OriginImport); err != nil || ok {
		if err != nil {
			return "", fmt.Errorf("import tarball %s: %w", path, err)
		}
		log.Debug("image already imported")
		return id, nil
	}
	w, err := s.NewWork(ctx, "")
	if err != nil {
		return "", fmt.Errorf("import tarball %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			s.Discard(context.WithoutCancel(ctx), w)
		}
	}()
	start := time.Now()
	// --numeric-owner: the archive's uids and gids as they are; owner names
	// would be mapped through the host's passwd, which is not the image's
	// (bsdtar and GNU tar both have the option).
	if _, err = s.r.Run(ctx, runner.Cmd{Argv: []string{tarBin(), "--numeric-owner", "-xpf", path, "-C", w.Mountpoint}, Timeout: 2 * time.Hour}); err != nil {
		return "", fmt.Errorf("import tarball %s: extract into %s: %w", path, w.Dataset, err)
	}
	log.Info("extracted tarball", "dataset", w.Dataset, "seconds", time.Since(start).Seconds())
	cfg.Parent = ""
	if err = s.Publish(ctx, w, id, cfg, map[string]string{PropSource: "sha256:" + digest, PropOrigin: OriginImport}); err != nil {
		if errors.Is(err, ErrExists) {
			return id, nil // imported concurrently: same content, same ID
		}
		return "", fmt.Errorf("import tarball %s: %w", path, err)
	}
	log.Info("imported image", "dataset", s.imageDS(id))
	return id, nil
}

func (s *Store) imageExists(ctx context.Context, id string) (bool, error) {
	recs, err := s.get(ctx, "type,"+PropManaged, s.imageDS(id)+"@"+ImageSnapshot, false)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(recs) > 0, nil
}

func fileSHA256(path string) (string, error) {
	// Non-blocking and checked by descriptor: a FIFO or device named as
	// the tarball is an error, not a hang or an endless read (review L8).
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DownloadDir is where URL imports are spooled and checked before anything
// is created; "" means os.TempDir().
var DownloadDir = ""

// download streams url into a temporary file, hashing as it goes and logging
// progress every few seconds, and refuses a digest other than want.
func (s *Store) download(ctx context.Context, url, want string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	client := s.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s: %s", url, resp.Status)
	}
	f, err := os.CreateTemp(DownloadDir, "zocker-download-*")
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(f.Name())
		}
	}()
	limit := s.ImageSizeLimit()
	if resp.ContentLength > limit {
		return "", fmt.Errorf("download %s: %d bytes is more than the limit of %d (--max-image-size)", url, resp.ContentLength, limit)
	}
	h := sha256.New()
	pw := &progress{log: s.log, url: url, total: resp.ContentLength, last: time.Now()}
	n, err := io.Copy(io.MultiWriter(f, h, pw), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	if n > limit {
		return "", fmt.Errorf("download %s: more than the limit of %d bytes (--max-image-size)", url, limit)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "", fmt.Errorf("download %s: %w: got %s, %s was declared", url, ErrDigestMismatch, got, want)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("download %s: %w", url, err)
	}
	ok = true
	return f.Name(), nil
}

type progress struct {
	log   interface{ Info(string, ...any) }
	url   string
	total int64
	n     int64
	last  time.Time
}

func (p *progress) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if time.Since(p.last) >= 5*time.Second {
		p.last = time.Now()
		p.log.Info("downloading", "url", p.url, "bytes", p.n, "total", p.total, "action", "import")
	}
	return len(b), nil
}

// Work is a temporary dataset in ROOT/tmp where an image is being made.
type Work struct {
	Dataset    string
	Mountpoint string
}

// NewWork creates a temporary dataset ROOT/tmp/<random>: empty when fromID is
// "" (an import, a build FROM scratch), else a clone of that image.
func (s *Store) NewWork(ctx context.Context, fromID string) (*Work, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := s.tmpDS() + "/" + hex.EncodeToString(b[:])
	props := marks(KindTmp, "")
	// Whatever an archive or a build step writes is bounded; Publish lifts
	// the quota once the image is complete (M8).
	props["quota"] = strconv.FormatInt(s.ImageSizeLimit(), 10)
	props[PropWorker] = worker()
	var ds *gozfs.Dataset
	var err error
	if fromID == "" {
		ds, err = gozfs.CreateFilesystem(name, props)
	} else {
		if err := image.ValidID(fromID); err != nil {
			return nil, err
		}
		snap := &gozfs.Dataset{Name: s.imageDS(fromID) + "@" + ImageSnapshot, Type: gozfs.DatasetSnapshot}
		ds, err = snap.Clone(name, props)
	}
	if err != nil {
		return nil, fmt.Errorf("create work dataset %s: %w", name, classify(err))
	}
	return &Work{Dataset: name, Mountpoint: ds.Mountpoint}, nil
}

// Discard destroys a work dataset; failures are logged, not returned (it runs
// on the error path; the next Open cleans up what is left).
func (s *Store) Discard(ctx context.Context, w *Work) {
	if err := s.destroy(ctx, w.Dataset, true, true); err != nil {
		s.log.Warn("discard work dataset", "dataset", w.Dataset, "err", err)
	}
}

// Publish turns a work dataset into image id: snapshot @image, readonly, the
// image properties, then one rename to ROOT/images/<id>. The parent is
// cfg.Parent (the builder's FROM). extra are more zocker:* properties.
// extra must name the image's PropOrigin (a build when it does not).
// When the image already exists with the same origin the work is discarded
// and ErrExists returned; with another origin, ErrOriginConflict.
func (s *Store) Publish(ctx context.Context, w *Work, id string, cfg Config, extra map[string]string) error {
	if err := image.ValidID(id); err != nil {
		return err
	}
	if cfg.Parent != "" {
		if err := image.ValidID(cfg.Parent); err != nil {
			return fmt.Errorf("publish image %s: parent: %w", id, err)
		}
	}
	if err := checkProps(extra); err != nil {
		return fmt.Errorf("publish image %s: %w", id, err)
	}
	cj, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("publish image %s: %w", id, err)
	}
	props := map[string]string{PropKind: KindImage, PropConfig: string(cj), PropName: id, PropOrigin: OriginBuild}
	if cfg.Parent != "" {
		props[PropParent] = cfg.Parent
	}
	for k, v := range extra {
		props[k] = v
	}
	if err := checkProps(props); err != nil {
		return fmt.Errorf("publish image %s: %w", id, err)
	}
	if _, err := (&gozfs.Dataset{Name: w.Dataset}).Snapshot(ImageSnapshot, false); err != nil {
		return fmt.Errorf("publish image %s: snapshot %s: %w", id, w.Dataset, classify(err))
	}
	if err := s.setProp(ctx, w.Dataset, "readonly", "on"); err != nil {
		return fmt.Errorf("publish image %s: %w", id, err)
	}
	if err := s.setProp(ctx, w.Dataset, "quota", "none"); err != nil {
		return fmt.Errorf("publish image %s: %w", id, err)
	}
	for k, v := range props {
		if err := s.setProp(ctx, w.Dataset, k, v); err != nil {
			return fmt.Errorf("publish image %s: %w", id, err)
		}
	}
	if err := s.rename(ctx, w.Dataset, s.imageDS(id)); err != nil {
		if errors.Is(err, ErrExists) {
			s.Discard(context.WithoutCancel(ctx), w)
			if _, oerr := s.requireOrigin(ctx, id, props[PropOrigin]); oerr != nil {
				return fmt.Errorf("publish image %s: %w", id, oerr)
			}
		}
		return fmt.Errorf("publish image %s: %w", id, err)
	}
	return nil
}
