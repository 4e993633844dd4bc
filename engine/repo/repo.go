// Package repo is the image repository: push, pull, search and del of images
// as ZFS send streams in a directory or on an SSH server (spoken to over the
// system ssh client's SFTP subsystem, so the remote side needs nothing but an
// account and no remote command line is ever built from names).
//
// Layout of a repository directory:
//
//	images/<id>/stream     zfs send stream: full for a root image, incremental on the parent otherwise
//	images/<id>/meta.json  Meta: ID, parent, config, stream size and sha256, created
//	tags/<tag>             an image ID and a newline
//	images/<id>/meta.json.sig, tags/<tag>.sig: SSH signatures (signatures.go)
//
// Every file is written under a temporary name (.tmp-*) and renamed into
// place. An image is present once its meta.json is (written after its
// stream), and a tag moves only after its image and all its ancestors are
// present, so a reader never sees a tag pointing at a missing or partial
// image, whenever a push is interrupted. It is over the house's 1,500
// lines because it holds both transports (SFTP over ssh, file://) and the
// local ZFS adapter; the adapter (zfslocal.go) could move to engine.
package repo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/sign"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// ErrNotFound is returned (wrapped) for a tag or image the repository does
// not have. Compare with errors.Is.
var ErrNotFound = errors.New("not found")

// ErrCorrupt is returned (wrapped) when a stream's size or sha256 differs
// from its record, or a record cannot be read.
var ErrCorrupt = errors.New("corrupt repository content")

// Meta is an image's record in the repository (images/<id>/meta.json).
type Meta struct {
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
	// Config is the image configuration as the local store keeps it (JSON).
	Config json.RawMessage `json:"config,omitempty"`
	// GUID is the guid of the image's snapshot, as its stream's BEGIN
	// record carries it (toguid); ParentGUID is the parent's, the snapshot
	// an incremental stream is based on (fromguid). A pull refuses a stream
	// whose header says otherwise, and a parent whose local snapshot is not
	// the one the stream was made on.
	GUID       uint64 `json:"guid,string,omitempty"`
	ParentGUID uint64 `json:"parentGuid,string,omitempty"`
	// Size and SHA256 describe the stream file.
	Size    int64     `json:"size"`
	SHA256  string    `json:"sha256"`
	Created time.Time `json:"created"`
}

func (m Meta) check(id string) error {
	if m.ID != id {
		return fmt.Errorf("record of image %s names another image: %w", id, ErrCorrupt)
	}
	if m.Parent != "" && image.ValidID(m.Parent) != nil {
		return fmt.Errorf("record of image %s: invalid parent ID: %w", id, ErrCorrupt)
	}
	if m.Parent == id {
		return fmt.Errorf("record of image %s: its own parent: %w", id, ErrCorrupt)
	}
	if len(m.SHA256) != 64 || image.ValidID(m.SHA256) != nil || m.Size < 0 {
		return fmt.Errorf("record of image %s: bad size or sha256: %w", id, ErrCorrupt)
	}
	return nil
}

// checkGUIDs is what a pull needs of a record beyond check: the snapshot
// GUIDs its stream is checked against.
func (m Meta) checkGUIDs() error {
	if m.GUID == 0 {
		return fmt.Errorf("record of image %s has no stream guid (pushed by an older zocker-reconcile: push it again): %w", m.ID, ErrCorrupt)
	}
	if (m.Parent == "") != (m.ParentGUID == 0) {
		return fmt.Errorf("record of image %s: parent and parent guid must be given together: %w", m.ID, ErrCorrupt)
	}
	return nil
}

// Image is what the local store says about one of its images.
type Image struct {
	ID     string
	Parent string
	// GUID is the guid of the image's snapshot (0: unknown).
	GUID uint64
	// Config is the image configuration (JSON), carried as is.
	Config  json.RawMessage
	Created time.Time
}

// Local is what the repository needs from the local image store (the ZFS
// engine; ZFSLocal adapts *zfs.Store).
type Local interface {
	// LookupTag returns the ID a local tag points at (ErrNotFound wrapped
	// when there is no such tag).
	LookupTag(ctx context.Context, tag string) (string, error)
	// Image returns a local image; ok is false when it is absent.
	Image(ctx context.Context, id string) (img Image, ok bool, err error)
	// Send writes image id's stream to w: incremental on parent when parent
	// is not "", else full.
	Send(ctx context.Context, id, parent string, w io.Writer) error
	// Receive reads a stream (incremental on parent when parent is not "")
	// into a temporary dataset and returns a handle to publish or discard.
	Receive(ctx context.Context, parent string, r io.Reader) (work string, err error)
	// Publish makes received work the image img, atomically.
	Publish(ctx context.Context, work string, img Image) error
	// Discard destroys received work and everything in it.
	Discard(ctx context.Context, work string) error
	// Tag points a local tag at an image.
	Tag(ctx context.Context, tag, id string) error
}

// Options tune a repository handle.
type Options struct {
	// SSHCommand replaces "ssh" as the start of the ssh argv (for example
	// {"ssh", "-F", "/path/config", "-i", "key"}); the repository code adds
	// -s, -p, -l, "--", the host and "sftp".
	SSHCommand []string
	// Out receives one human line per image pushed or pulled (nil: none).
	Out io.Writer
	// Log receives progress and debug records (nil: discarded).
	Log *slog.Logger
	// ProgressEvery is the interval of progress records on long transfers
	// (0: 5 s).
	ProgressEvery time.Duration
	// Now is the clock for Created fields (nil: time.Now).
	Now func() time.Time
	// SignKey, when set, signs every image record a push writes and the
	// tag it moves (see signatures.go).
	SignKey *sign.Key
	// Policy, when set, is what a pull (and Resolve) requires: a tag and
	// image records signed by an allowed signer, checked before anything
	// is received.
	Policy *sign.Policy
	// MaxImageSize bounds one image's stream (0: DefaultMaxImageSize): a
	// record saying more is refused before any byte is read.
	MaxImageSize int64
}

// DefaultMaxImageSize is the stream size bound when Options do not give one
// (the CLI's --max-image-size default, 20G).
const DefaultMaxImageSize = 20 << 30

// Repository is an open repository.
type Repository struct {
	loc  Location
	f    fsys
	opts Options
	log  *slog.Logger
}

// Open parses url and connects: a file:// directory is used as is (created
// on first push), an ssh:// one over a new ssh process that Close ends.
func Open(ctx context.Context, url string, opts Options) (*Repository, error) {
	loc, err := ParseLocation(url)
	if err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxImageSize <= 0 {
		opts.MaxImageSize = DefaultMaxImageSize
	}
	r := &Repository{loc: loc, opts: opts, log: opts.Log.With("repository", loc.String())}
	switch loc.Scheme {
	case "file":
		r.f = dirFS{root: loc.Path}
	case "ssh":
		s, err := dialSFTP(ctx, loc, opts.SSHCommand, opts.Log)
		if err != nil {
			return nil, err
		}
		r.f = s
	}
	return r, nil
}

// Close ends the connection.
func (r *Repository) Close() error { return r.f.Close() }

func imageDir(id string) string   { return "images/" + id }
func streamPath(id string) string { return "images/" + id + "/stream" }
func metaPath(id string) string   { return "images/" + id + "/meta.json" }
func tagPath(tag string) string   { return "tags/" + tag }

// Resolve returns the ID the repository's tag points at; the reconciler
// compares it with the local images to decide a pull. With a policy, it is
// the ID of the signed tag statement (ResolveSigned).
func (r *Repository) Resolve(ctx context.Context, tag string) (string, error) {
	id, _, err := r.ResolveSigned(ctx, tag)
	return id, err
}

func (r *Repository) resolveUnsigned(ctx context.Context, tag string) (string, error) {
	if err := image.ValidName("tag", tag); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	b, err := r.readAll(tagPath(tag), 256)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("tag %s in repository %s: %w", tag, r.loc, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("read tag %s in repository %s: %w", tag, r.loc, err)
	}
	id := strings.TrimSpace(string(b))
	if image.ValidID(id) != nil {
		// Never the content: a file:// tag may be a link to any host file
		// (refused now, but the message goes to logs and /status).
		return "", fmt.Errorf("tag %s in repository %s: not an image ID (%d bytes): %w", tag, r.loc, len(b), ErrCorrupt)
	}
	return id, nil
}

// readAll reads a small file, refusing more than limit bytes.
func (r *Repository) readAll(name string, limit int64) ([]byte, error) {
	rc, err := r.f.Open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w", name, limit, ErrCorrupt)
	}
	return b, nil
}

// Meta returns an image's record (ErrNotFound wrapped when the image is not,
// or not completely, in the repository).
func (r *Repository) Meta(ctx context.Context, id string) (Meta, error) {
	b, err := r.metaBytes(ctx, id)
	if err != nil {
		return Meta{}, err
	}
	return r.decodeMeta(id, b)
}

// maxChain bounds parent walks, so a cycle written by hand cannot loop forever.
const maxChain = 4096

// PushResult says what a push did.
type PushResult struct {
	ID string
	// Sent are the images whose streams were sent, oldest first.
	Sent []Meta
}

// Push sends the local image tag points at, with the ancestors the
// repository lacks (oldest first), then moves the repository's tag.
func (r *Repository) Push(ctx context.Context, local Local, tag string) (PushResult, error) {
	if err := image.ValidName("tag", tag); err != nil {
		return PushResult{}, err
	}
	id, err := local.LookupTag(ctx, tag)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: %w", tag, err)
	}
	if err := image.ValidID(id); err != nil {
		return PushResult{}, fmt.Errorf("push %s: local tag: %w", tag, err)
	}
	res := PushResult{ID: id}
	// Walk back to the first ancestor the repository has, or to the root.
	var missing []Image
	for cur := id; cur != ""; {
		if len(missing) > maxChain {
			return res, fmt.Errorf("push %s: parent chain longer than %d: a cycle?", tag, maxChain)
		}
		_, err := r.Meta(ctx, cur)
		if err == nil && (r.opts.SignKey == nil || r.signedInRepo(cur)) {
			break
		}
		if err == nil {
			err = ErrNotFound // present but unsigned: send it again, signed
		}
		if !errors.Is(err, ErrNotFound) {
			return res, fmt.Errorf("push %s: %w", tag, err)
		}
		img, ok, err := local.Image(ctx, cur)
		if err != nil {
			return res, fmt.Errorf("push %s: image %s: %w", tag, cur, err)
		}
		if !ok {
			return res, fmt.Errorf("push %s: image %s is not local and not in the repository", tag, cur)
		}
		if img.Parent != "" && image.ValidID(img.Parent) != nil {
			return res, fmt.Errorf("push %s: image %s: parent: %w", tag, cur, image.ValidID(img.Parent))
		}
		missing = append(missing, img)
		cur = img.Parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		m, err := r.pushImage(ctx, local, missing[i])
		if err != nil {
			return res, fmt.Errorf("push %s: %w", tag, err)
		}
		res.Sent = append(res.Sent, m)
	}
	if err := r.f.MkdirAll("tags"); err != nil {
		return res, fmt.Errorf("push %s: create tags directory in %s: %w", tag, r.loc, err)
	}
	if err := r.pushTagSignature(tag, id); err != nil {
		return res, fmt.Errorf("push %s: %w", tag, err)
	}
	if err := writeAtomic(r.f, tagPath(tag), func(w io.Writer) error {
		_, err := io.WriteString(w, id+"\n")
		return err
	}); err != nil {
		return res, fmt.Errorf("push %s: move tag in %s: %w", tag, r.loc, err)
	}
	r.log.Info("moved tag", "tag", tag, "image", id, "action", "push")
	r.say("tagged %s as %s in %s", image.Short(id), tag, r.loc)
	return res, nil
}

// pushImage writes one image: its stream, then its record.
func (r *Repository) pushImage(ctx context.Context, local Local, img Image) (Meta, error) {
	dir := imageDir(img.ID)
	if err := r.f.MkdirAll(dir); err != nil {
		return Meta{}, fmt.Errorf("create %s in %s: %w", dir, r.loc, err)
	}
	r.removeTmp(dir)
	var parentGUID uint64
	if img.Parent != "" {
		p, ok, err := local.Image(ctx, img.Parent)
		if err != nil || !ok {
			return Meta{}, fmt.Errorf("push image %s: parent %s: not local (%v)", img.ID, img.Parent, err)
		}
		parentGUID = p.GUID
	}
	h := sha256.New()
	pr := r.progress("push", img.ID)
	head := &headTap{}
	start := time.Now()
	err := writeAtomic(r.f, streamPath(img.ID), func(w io.Writer) error {
		// Large writes let the SFTP client keep many requests in flight.
		bw := bufio.NewWriterSize(io.MultiWriter(w, h, pr, head), 1<<20)
		if err := local.Send(ctx, img.ID, img.Parent, bw); err != nil {
			return fmt.Errorf("send image %s: %w", img.ID, err)
		}
		return bw.Flush()
	})
	if err != nil {
		return Meta{}, fmt.Errorf("push image %s to %s: %w", img.ID, r.loc, err)
	}
	// Record what the stream says it is, after checking it is what a pull
	// will accept: our own stream passes the same checks.
	sh, err := zfs.ReadStreamHeader(bytes.NewReader(head.b), zfs.StreamWant{ToGUID: img.GUID, FromGUID: parentGUID, Snapshot: zfs.ImageSnapshot})
	if err != nil {
		return Meta{}, fmt.Errorf("push image %s to %s: own stream: %w", img.ID, r.loc, err)
	}
	m := Meta{ID: img.ID, Parent: img.Parent, Config: img.Config, GUID: sh.ToGUID, ParentGUID: sh.FromGUID, Size: pr.n, SHA256: hex.EncodeToString(h.Sum(nil)), Created: r.opts.Now().UTC()}
	if !img.Created.IsZero() {
		m.Created = img.Created.UTC()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return Meta{}, err
	}
	b = append(b, '\n')
	if r.opts.SignKey != nil {
		// The signature goes first: the record makes the image present.
		sig, err := r.opts.SignKey.Sign(sign.NamespaceImage, b)
		if err != nil {
			return Meta{}, fmt.Errorf("sign record of image %s: %w", img.ID, err)
		}
		if err := r.writeSig(metaSigPath(img.ID), sig); err != nil {
			return Meta{}, fmt.Errorf("push signature of image %s to %s: %w", img.ID, r.loc, err)
		}
	}
	if err := writeAtomic(r.f, metaPath(img.ID), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return Meta{}, fmt.Errorf("push record of image %s to %s: %w", img.ID, r.loc, err)
	}
	r.log.Info("pushed image", "image", img.ID, "parent", img.Parent, "bytes", m.Size, "seconds", time.Since(start).Seconds(), "action", "push")
	r.say("pushed %s (%s, %s)", image.Short(img.ID), image.Size(m.Size), kind(img.Parent))
	return m, nil
}

// headTap keeps the first record of a stream written through it.
type headTap struct{ b []byte }

func (t *headTap) Write(p []byte) (int, error) {
	if n := zfs.StreamRecordSize - len(t.b); n > 0 {
		t.b = append(t.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func kind(parent string) string {
	if parent == "" {
		return "full"
	}
	return "incremental on " + image.Short(parent)
}

// removeTmp removes temporary files an interrupted write left in dir.
func (r *Repository) removeTmp(dir string) {
	ents, err := r.f.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if isTmp(e.Name()) {
			if err := r.f.Remove(path.Join(dir, e.Name())); err == nil {
				r.log.Debug("removed leftover temporary file", "file", path.Join(dir, e.Name()))
			}
		}
	}
}

func (r *Repository) say(format string, args ...any) {
	if r.opts.Out != nil {
		fmt.Fprintf(r.opts.Out, format+"\n", args...)
	}
}

// PullResult says what a pull did.
type PullResult struct {
	ID string
	// Received are the images received, oldest first.
	Received []Meta
	// Signer signed the tag (zero without a policy).
	Signer sign.Signer
}

// Pull resolves tag in the repository, walks parents back to an image the
// local store has (or to a root image), receives each missing stream oldest
// first while checking its size and sha256, publishes it, and finally points
// the local tag at the image.
func (r *Repository) Pull(ctx context.Context, local Local, tag string) (PullResult, error) {
	if err := image.ValidName("tag", tag); err != nil {
		return PullResult{}, err
	}
	id, signer, err := r.ResolveSigned(ctx, tag)
	if err != nil {
		return PullResult{}, fmt.Errorf("pull %s: %w", tag, err)
	}
	res := PullResult{ID: id, Signer: signer}
	var missing []Meta
	for cur := id; cur != ""; {
		if len(missing) > maxChain {
			return res, fmt.Errorf("pull %s: parent chain longer than %d: a cycle?", tag, maxChain)
		}
		have, ok, err := local.Image(ctx, cur)
		if err != nil {
			return res, fmt.Errorf("pull %s: image %s: %w", tag, cur, err)
		}
		if ok && cur != id {
			break // a parent: pullImage checks its snapshot is the stream's base
		}
		var m Meta
		if r.opts.Policy != nil && !ok {
			m, err = r.verifiedMeta(ctx, cur)
		} else {
			m, err = r.Meta(ctx, cur)
		}
		if err != nil {
			return res, fmt.Errorf("pull %s: %w", tag, err)
		}
		if ok {
			// The same ID is only the same image when it is the same
			// snapshot (pushed from here, or pulled before): a local build
			// or import is never replaced by nor taken for the
			// repository's image (H2).
			if have.GUID != m.GUID {
				return res, fmt.Errorf("pull %s: image %s exists locally but is not the repository's (snapshot guid %d, the repository's %d): %w", tag, cur, have.GUID, m.GUID, zfs.ErrOriginConflict)
			}
			break
		}
		missing = append(missing, m)
		cur = m.Parent
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := r.pullImage(ctx, local, missing[i]); err != nil {
			return res, fmt.Errorf("pull %s: %w", tag, err)
		}
		res.Received = append(res.Received, missing[i])
	}
	if err := local.Tag(ctx, tag, id); err != nil {
		return res, fmt.Errorf("pull %s: %w", tag, err)
	}
	r.say("tagged %s as %s", image.Short(id), tag)
	return res, nil
}

// pullImage receives one stream into a temporary dataset, checks it and
// publishes it; whatever fails, nothing of it stays.
func (r *Repository) pullImage(ctx context.Context, local Local, m Meta) (err error) {
	if err := m.checkGUIDs(); err != nil {
		return fmt.Errorf("repository %s: %w", r.loc, err)
	}
	if m.Size > r.opts.MaxImageSize {
		return fmt.Errorf("image %s: stream of %d bytes is larger than the limit of %d bytes (--max-image-size)", m.ID, m.Size, r.opts.MaxImageSize)
	}
	if m.Parent != "" {
		// The stream must be based on OUR parent snapshot: a local image of
		// the same ID built here (another snapshot) is not it.
		p, ok, err := local.Image(ctx, m.Parent)
		if err != nil {
			return fmt.Errorf("image %s: parent %s: %w", m.ID, m.Parent, err)
		}
		if !ok || p.GUID != m.ParentGUID {
			return fmt.Errorf("image %s: the local parent image %s (snapshot guid %d) is not the one its stream was made on (guid %d): remove the local image or pull into another root: %w", m.ID, m.Parent, p.GUID, m.ParentGUID, ErrCorrupt)
		}
	}
	rc, err := r.f.Open(streamPath(m.ID))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image %s: stream missing in %s: %w", m.ID, r.loc, ErrCorrupt)
		}
		return fmt.Errorf("image %s: open stream in %s: %w", m.ID, r.loc, err)
	}
	defer rc.Close()
	h := sha256.New()
	pr := r.progress("pull", m.ID)
	// The checker fails the read at the end when the stream is not the one
	// recorded, so that zfs receive sees a broken stream where it can; the
	// check after receive catches the rest.
	chk := &checkReader{r: io.TeeReader(io.LimitReader(bufio.NewReaderSize(rc, 1<<20), m.Size+1), io.MultiWriter(h, pr)), h: h, m: m, n: &pr.n}
	// Every record header is checked before its bytes reach zfs receive:
	// no properties, no second dataset, the recorded snapshot (C1).
	sc := zfs.NewStreamChecker(chk, zfs.StreamWant{ToGUID: m.GUID, FromGUID: m.ParentGUID, Snapshot: zfs.ImageSnapshot})
	start := time.Now()
	work, err := local.Receive(ctx, m.Parent, sc)
	if err != nil {
		if work != "" {
			r.discard(ctx, local, work, m.ID)
		}
		if chk.bad != nil {
			return fmt.Errorf("image %s: %w", m.ID, chk.bad)
		}
		if sc.Err() != nil {
			return fmt.Errorf("image %s in %s: %w", m.ID, r.loc, sc.Err())
		}
		return fmt.Errorf("image %s: receive: %w", m.ID, err)
	}
	defer func() {
		if err != nil {
			r.discard(ctx, local, work, m.ID)
		}
	}()
	// zfs receive may stop reading at the stream's end record: drain, so
	// that trailing bytes count against the checksum too.
	if _, err := io.Copy(io.Discard, sc); err != nil && chk.bad == nil && sc.Err() == nil {
		return fmt.Errorf("image %s: read stream: %w", m.ID, err)
	}
	if chk.bad != nil {
		return fmt.Errorf("image %s: %w", m.ID, chk.bad)
	}
	if sc.Err() != nil {
		return fmt.Errorf("image %s in %s: %w", m.ID, r.loc, sc.Err())
	}
	if err := local.Publish(ctx, work, Image{ID: m.ID, Parent: m.Parent, GUID: m.GUID, Config: m.Config, Created: m.Created}); err != nil {
		return fmt.Errorf("image %s: %w", m.ID, err)
	}
	r.log.Info("pulled image", "image", m.ID, "parent", m.Parent, "bytes", m.Size, "seconds", time.Since(start).Seconds(), "action", "pull")
	r.say("pulled %s (%s, %s)", image.Short(m.ID), image.Size(m.Size), kind(m.Parent))
	return nil
}

func (r *Repository) discard(ctx context.Context, local Local, work, id string) {
	if err := local.Discard(context.WithoutCancel(ctx), work); err != nil {
		r.log.Warn("discard received stream", "image", id, "dataset", work, "err", err)
	}
}

// checkReader hashes what it passes on and, at the end, compares size and
// sha256 with the record: a mismatch is returned instead of io.EOF.
type checkReader struct {
	r   io.Reader
	h   interface{ Sum([]byte) []byte }
	m   Meta
	n   *int64
	bad error
	eof bool
}

func (c *checkReader) Read(p []byte) (int, error) {
	if c.bad != nil {
		return 0, c.bad
	}
	if c.eof {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if *c.n > c.m.Size {
		c.bad = fmt.Errorf("stream is longer than its recorded %d bytes: %w", c.m.Size, ErrCorrupt)
		return 0, c.bad
	}
	if err == io.EOF {
		got := hex.EncodeToString(c.h.Sum(nil))
		switch {
		case *c.n != c.m.Size:
			c.bad = fmt.Errorf("stream has %d bytes, its record says %d: %w", *c.n, c.m.Size, ErrCorrupt)
		case got != c.m.SHA256:
			c.bad = fmt.Errorf("stream sha256 %s does not match its record %s: %w", got, c.m.SHA256, ErrCorrupt)
		}
		if c.bad != nil {
			return n, c.bad
		}
		c.eof = true
	}
	return n, err
}

// TagInfo is one line of Search.
type TagInfo struct {
	Tag string
	ID  string
	// Size is the sum of the stream sizes of the image and its ancestors
	// (what a pull into an empty store transfers).
	Size    int64
	Created time.Time
	// Err is set when the tag's image cannot be read.
	Err error
}

// Search lists the tags matching pattern (path.Match syntax; "" matches all)
// with their image IDs, sizes and dates, sorted by tag.
func (r *Repository) Search(ctx context.Context, pattern string) ([]TagInfo, error) {
	if pattern != "" {
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, fmt.Errorf("search pattern %q: %w", pattern, err)
		}
	}
	tags, err := r.tags()
	if err != nil {
		return nil, err
	}
	var out []TagInfo
	metas := map[string]Meta{}
	for _, tag := range tags {
		if pattern != "" {
			if ok, _ := path.Match(pattern, tag); !ok {
				continue
			}
		}
		ti := TagInfo{Tag: tag}
		ti.ID, ti.Err = r.Resolve(ctx, tag)
		for cur, n := ti.ID, 0; ti.Err == nil && cur != "" && n < maxChain; n++ {
			m, ok := metas[cur]
			if !ok {
				if m, ti.Err = r.Meta(ctx, cur); ti.Err != nil {
					break
				}
				metas[cur] = m
			}
			if cur == ti.ID {
				ti.Created = m.Created
			}
			ti.Size += m.Size
			cur = m.Parent
		}
		out = append(out, ti)
	}
	return out, nil
}

// tags lists the tag names present, sorted.
func (r *Repository) tags() ([]string, error) {
	ents, err := r.f.ReadDir("tags")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list tags in %s: %w", r.loc, err)
	}
	var tags []string
	for _, e := range ents {
		if !e.IsDir() && image.ValidName("tag", e.Name()) == nil {
			tags = append(tags, e.Name())
		}
	}
	sort.Strings(tags)
	return tags, nil
}

// staleAfter is how old a partial image (stream without record) must be
// before del removes it: younger ones may be a push in progress.
const staleAfter = time.Hour

// Del removes a tag, then every image in the repository that no tag and no
// other kept image's parent link still needs, and partial images older than
// an hour. It returns the IDs removed.
func (r *Repository) Del(ctx context.Context, tag string) ([]string, error) {
	if err := image.ValidName("tag", tag); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := r.f.Remove(tagPath(tag)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("del %s: tag in %s: %w", tag, r.loc, ErrNotFound)
		}
		return nil, fmt.Errorf("del %s: remove tag in %s: %w", tag, r.loc, err)
	}
	if err := r.f.Remove(tagSigPath(tag)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("del %s: remove tag signature in %s: %w", tag, r.loc, err)
	}
	r.log.Info("removed tag", "tag", tag, "action", "del")
	removed, err := r.collect(ctx)
	if err != nil {
		return removed, fmt.Errorf("del %s: %w", tag, err)
	}
	return removed, nil
}

// collect removes the images nothing needs: kept are those reachable from a
// tag through parent links. A tag whose chain cannot be read stops the
// collection (removing on partial knowledge could break it further).
func (r *Repository) collect(ctx context.Context) ([]string, error) {
	tags, err := r.tags()
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, tag := range tags {
		id, err := r.Resolve(ctx, tag)
		if err != nil {
			return nil, fmt.Errorf("collect unused images: %w", err)
		}
		for cur, n := id, 0; cur != "" && !keep[cur]; n++ {
			if n > maxChain {
				return nil, fmt.Errorf("collect unused images: tag %s: parent chain longer than %d", tag, maxChain)
			}
			keep[cur] = true
			m, err := r.Meta(ctx, cur)
			if err != nil {
				return nil, fmt.Errorf("collect unused images: tag %s: %w", tag, err)
			}
			cur = m.Parent
		}
	}
	ents, err := r.f.ReadDir("images")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list images in %s: %w", r.loc, err)
	}
	var removed []string
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || image.ValidID(id) != nil || keep[id] {
			continue
		}
		if _, err := r.f.Stat(metaPath(id)); errors.Is(err, fs.ErrNotExist) {
			if r.opts.Now().Sub(e.ModTime()) < staleAfter {
				continue // perhaps a push in progress
			}
		}
		if err := r.removeImage(id); err != nil {
			return removed, err
		}
		removed = append(removed, id)
		r.log.Info("removed unused image", "image", id, "action", "del")
		r.say("deleted %s", image.Short(id))
	}
	return removed, nil
}

// removeImage removes the record first, so that the image stops being
// present before its stream goes.
func (r *Repository) removeImage(id string) error {
	dir := imageDir(id)
	for _, name := range []string{metaPath(id), metaSigPath(id), streamPath(id)} {
		if err := r.f.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s in %s: %w", name, r.loc, err)
		}
	}
	r.removeTmp(dir)
	if err := r.f.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s in %s: %w", dir, r.loc, err)
	}
	return nil
}

// progressWriter counts bytes and logs bytes and rate at most every interval.
type progressWriter struct {
	log    *slog.Logger
	out    io.Writer
	action string
	id     string
	every  time.Duration
	n      int64
	start  time.Time
	last   time.Time
}

func (r *Repository) progress(action, id string) *progressWriter {
	now := time.Now()
	return &progressWriter{log: r.log, out: r.opts.Out, action: action, id: id, every: r.opts.ProgressEvery, start: now, last: now}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		rate := float64(p.n) / now.Sub(p.start).Seconds()
		p.log.Info("transfer progress", "image", p.id, "action", p.action, "bytes", p.n, "bytes_per_second", int64(rate))
		if p.out != nil {
			fmt.Fprintf(p.out, "%s %s: %s at %s/s\n", p.action, image.Short(p.id), image.Size(p.n), image.Size(int64(rate)))
		}
	}
	return len(b), nil
}
