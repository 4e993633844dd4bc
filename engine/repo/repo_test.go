package repo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fakeLocal is an in-memory local store. A "stream" is a text naming the
// image and its parent followed by the image's content, so that a receive can
// check it got the stream it expects.
type fakeLocal struct {
	images  map[string]Image
	content map[string]string
	tags    map[string]string
	works   map[string][]byte // received, not yet published or discarded
	sends   []string
	nwork   int
	// failSend, if set, makes Send of that ID write half its stream and fail.
	failSend string
	// guids overrides an image's snapshot guid (default guidOf(id)).
	guids map[string]uint64
}

func newFake() *fakeLocal {
	return &fakeLocal{images: map[string]Image{}, content: map[string]string{}, tags: map[string]string{}, works: map[string][]byte{}}
}

func id(n int) string { s := sha256.Sum256([]byte(fmt.Sprint(n))); return hex.EncodeToString(s[:]) }

func (f *fakeLocal) add(n, parent int, content string) string {
	img := Image{ID: id(n), Config: json.RawMessage(`{"cmd":["/bin/sh"]}`), Created: time.Date(2026, 1, n, 0, 0, 0, 0, time.UTC)}
	if parent != 0 {
		img.Parent = id(parent)
	}
	f.images[img.ID] = img
	f.content[img.ID] = content
	return img.ID
}

func (f *fakeLocal) stream(id, parent string) string {
	return "STREAM " + id + " ON " + parent + "\n" + f.content[id]
}

// wire is the stream Send writes: f.stream in a zfs send record frame.
func (f *fakeLocal) wire(id, parent string) string {
	var from uint64
	if parent != "" {
		from = guidOf(parent)
	}
	return string(fakeStream(guidOf(id), from, f.stream(id, parent)))
}

func (f *fakeLocal) LookupTag(_ context.Context, tag string) (string, error) {
	if id, ok := f.tags[tag]; ok {
		return id, nil
	}
	return "", fmt.Errorf("local tag %s: %w", tag, ErrNotFound)
}

func (f *fakeLocal) Image(_ context.Context, id string) (Image, bool, error) {
	img, ok := f.images[id]
	if ok {
		img.GUID = guidOf(id)
		if g, set := f.guids[id]; set {
			img.GUID = g
		}
	}
	return img, ok, nil
}

func (f *fakeLocal) Send(_ context.Context, id, parent string, w io.Writer) error {
	f.sends = append(f.sends, id)
	s := f.wire(id, parent)
	if id == f.failSend {
		_, _ = io.WriteString(w, s[:len(s)/2])
		return errors.New("zfs send: killed")
	}
	_, err := io.WriteString(w, s)
	return err
}

func (f *fakeLocal) Receive(_ context.Context, parent string, r io.Reader) (string, error) {
	if parent != "" {
		if _, ok := f.images[parent]; !ok {
			return "", fmt.Errorf("receive: parent %s missing", parent)
		}
	}
	f.nwork++
	work := fmt.Sprintf("work%d", f.nwork)
	b, err := io.ReadAll(r)
	f.works[work] = b
	if err != nil {
		return work, err
	}
	return work, nil
}

func (f *fakeLocal) Publish(_ context.Context, work string, img Image) error {
	b, ok := f.works[work]
	if !ok {
		return fmt.Errorf("no work %s", work)
	}
	head, content, _ := strings.Cut(fakePayload(b), "\n")
	if head != "STREAM "+img.ID+" ON "+img.Parent {
		return fmt.Errorf("stream %q is not image %s on %q", head, img.ID, img.Parent)
	}
	delete(f.works, work)
	f.images[img.ID] = img
	f.content[img.ID] = content
	return nil
}

func (f *fakeLocal) Discard(_ context.Context, work string) error {
	delete(f.works, work)
	return nil
}

func (f *fakeLocal) Tag(_ context.Context, tag, id string) error {
	if _, ok := f.images[id]; !ok {
		return fmt.Errorf("tag %s: image %s: %w", tag, id, ErrNotFound)
	}
	f.tags[tag] = id
	return nil
}

// countFS counts every operation on the repository storage.
type countFS struct {
	fsys
	n int
}

func (c *countFS) Open(name string) (io.ReadCloser, error)    { c.n++; return c.fsys.Open(name) }
func (c *countFS) Create(name string) (syncWriter, error)     { c.n++; return c.fsys.Create(name) }
func (c *countFS) Rename(a, b string) error                   { c.n++; return c.fsys.Rename(a, b) }
func (c *countFS) Remove(name string) error                   { c.n++; return c.fsys.Remove(name) }
func (c *countFS) MkdirAll(name string) error                 { c.n++; return c.fsys.MkdirAll(name) }
func (c *countFS) ReadDir(name string) ([]fs.FileInfo, error) { c.n++; return c.fsys.ReadDir(name) }
func (c *countFS) Stat(name string) (fs.FileInfo, error)      { c.n++; return c.fsys.Stat(name) }

func openDir(t *testing.T) (*Repository, string, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	var out bytes.Buffer
	r, err := Open(context.Background(), "file://"+dir, Options{Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir, &out
}

// chain makes images 1 <- 2 <- 3 tagged "app" (3) and "base" (1).
func chain(f *fakeLocal) (a, b, c string) {
	a = f.add(1, 0, strings.Repeat("root filesystem ", 100))
	b = f.add(2, 1, "layer two")
	c = f.add(3, 2, "layer three")
	f.tags["app"] = c
	f.tags["base"] = a
	return
}

func tmpFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			found = append(found, p)
		}
		return nil
	})
	return found
}

func TestPushLayout(t *testing.T) {
	ctx := context.Background()
	r, dir, out := openDir(t)
	f := newFake()
	a, b, c := chain(f)
	res, err := r.Push(ctx, f, "app")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.sends, []string{a, b, c}) {
		t.Fatalf("sent %v, want oldest first %v", f.sends, []string{a, b, c})
	}
	if len(res.Sent) != 3 || res.ID != c {
		t.Fatalf("result %+v", res)
	}
	for _, x := range []struct{ id, parent string }{{a, ""}, {b, a}, {c, b}} {
		stream, err := os.ReadFile(filepath.Join(dir, "images", x.id, "stream"))
		if err != nil {
			t.Fatal(err)
		}
		if string(stream) != f.wire(x.id, x.parent) {
			t.Errorf("stream of %s = %q", x.id, stream)
		}
		var m Meta
		mb, err := os.ReadFile(filepath.Join(dir, "images", x.id, "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(mb, &m); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(stream)
		if m.ID != x.id || m.Parent != x.parent || m.Size != int64(len(stream)) || m.SHA256 != hex.EncodeToString(sum[:]) ||
			string(m.Config) != `{"cmd":["/bin/sh"]}` || m.Created.IsZero() {
			t.Errorf("meta of %s = %+v", x.id, m)
		}
	}
	tag, err := os.ReadFile(filepath.Join(dir, "tags", "app"))
	if err != nil || string(tag) != c+"\n" {
		t.Fatalf("tag file = %q, %v", tag, err)
	}
	if tf := tmpFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
	want := fmt.Sprintf("pushed %s (", a[:12])
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "incremental on "+b[:12]) {
		t.Errorf("summary lines:\n%s", out)
	}

	// Again: nothing to send, tag rewritten to the same ID.
	f.sends = nil
	res, err = r.Push(ctx, f, "app")
	if err != nil || len(res.Sent) != 0 || len(f.sends) != 0 {
		t.Fatalf("second push sent %v (%v)", f.sends, err)
	}
	// A child pushed after its parent: only the child goes.
	d := f.add(4, 3, "layer four")
	f.tags["app"] = d
	res, err = r.Push(ctx, f, "app")
	if err != nil || !reflect.DeepEqual(f.sends, []string{d}) || len(res.Sent) != 1 || res.Sent[0].Parent != c {
		t.Fatalf("child push sent %v, %+v (%v)", f.sends, res, err)
	}
	if got, _ := r.Resolve(ctx, "app"); got != d {
		t.Fatalf("tag app -> %s, want %s", got, d)
	}
}

func TestInterruptedPushLeavesRepositoryValid(t *testing.T) {
	ctx := context.Background()
	r, dir, _ := openDir(t)
	f := newFake()
	a, b, c := chain(f)
	f.failSend = b
	if _, err := r.Push(ctx, f, "app"); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("push with failing send: %v", err)
	}
	if _, err := r.Resolve(ctx, "app"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("tag after interrupted push: %v, want not found", err)
	}
	if _, err := r.Meta(ctx, a); err != nil {
		t.Fatalf("completed ancestor: %v", err)
	}
	if _, err := r.Meta(ctx, b); !errors.Is(err, ErrNotFound) {
		t.Fatalf("interrupted image is present: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "images", b, "stream")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("half stream under its final name: %v", err)
	}
	if tf := tmpFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
	// A temporary file left by a killed process is cleaned by the next push.
	if err := os.WriteFile(filepath.Join(dir, "images", b, ".tmp-stream-dead"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.failSend, f.sends = "", nil
	if _, err := r.Push(ctx, f, "app"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.sends, []string{b, c}) {
		t.Fatalf("resumed push sent %v, want %v", f.sends, []string{b, c})
	}
	if tf := tmpFiles(t, dir); len(tf) != 0 {
		t.Errorf("temporary files left: %v", tf)
	}
	// A pull of the completed repository works.
	g := newFake()
	if _, err := r.Pull(ctx, g, "app"); err != nil {
		t.Fatal(err)
	}
}

func TestPull(t *testing.T) {
	ctx := context.Background()
	r, _, out := openDir(t)
	f := newFake()
	a, b, c := chain(f)
	if _, err := r.Push(ctx, f, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, f, "base"); err != nil {
		t.Fatal(err)
	}
	g := newFake()
	// g already has the root: only 2 and 3 come.
	g.images[a], g.content[a] = f.images[a], f.content[a]
	res, err := r.Pull(ctx, g, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Received) != 2 || res.Received[0].ID != b || res.Received[1].ID != c {
		t.Fatalf("received %+v", res.Received)
	}
	if g.tags["app"] != c || g.content[c] != "layer three" || g.images[c].Parent != b || string(g.images[c].Config) != `{"cmd":["/bin/sh"]}` {
		t.Fatalf("local after pull: tags %v image %+v content %q", g.tags, g.images[c], g.content[c])
	}
	if !strings.Contains(out.String(), "pulled "+c[:12]) {
		t.Errorf("summary lines:\n%s", out)
	}
	res, err = r.Pull(ctx, g, "app")
	if err != nil || len(res.Received) != 0 {
		t.Fatalf("second pull received %+v (%v)", res.Received, err)
	}
	if _, err := r.Pull(ctx, g, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pull of a missing tag: %v", err)
	}
}

func TestPullCorruptStream(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)-2] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"appended", func(b []byte) []byte { return append(b, "more"...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, dir, _ := openDir(t)
			f := newFake()
			a, b, _ := chain(f)
			if _, err := r.Push(ctx, f, "app"); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "images", b, "stream")
			s, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.edit(s), 0o644); err != nil {
				t.Fatal(err)
			}
			g := newFake()
			_, err = r.Pull(ctx, g, "app")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), b) {
				t.Fatalf("pull of corrupt stream: %v", err)
			}
			if _, ok := g.images[b]; ok {
				t.Fatal("corrupt image was published")
			}
			if len(g.works) != 0 {
				t.Fatalf("received work left: %v", g.works)
			}
			if _, ok := g.images[a]; !ok {
				t.Fatal("the intact parent should have been pulled")
			}
			if len(g.tags) != 0 {
				t.Fatalf("tag set despite failure: %v", g.tags)
			}
		})
	}
}

func TestInvalidNamesRefusedBeforeRemoteOperations(t *testing.T) {
	ctx := context.Background()
	r, _, _ := openDir(t)
	cf := &countFS{fsys: r.f}
	r.f = cf
	f := newFake()
	chain(f)
	f.tags["Bad_Tag"] = id(3)
	for _, tag := range []string{"Bad_Tag", "../x", "", "a/b", "-x", strings.Repeat("a", 64)} {
		if _, err := r.Push(ctx, f, tag); err == nil {
			t.Errorf("push %q accepted", tag)
		}
		if _, err := r.Pull(ctx, f, tag); err == nil {
			t.Errorf("pull %q accepted", tag)
		}
		if _, err := r.Del(ctx, tag); err == nil {
			t.Errorf("del %q accepted", tag)
		}
		if _, err := r.Resolve(ctx, tag); err == nil {
			t.Errorf("resolve %q accepted", tag)
		}
	}
	for _, bad := range []string{"abc", strings.ToUpper(id(1)), id(1) + "0", "../" + id(1)[3:]} {
		if _, err := r.Meta(ctx, bad); err == nil {
			t.Errorf("meta %q accepted", bad)
		}
	}
	// A local image whose parent is not an ID is refused before sending.
	bad := f.add(9, 0, "x")
	img := f.images[bad]
	img.Parent = "../../etc"
	f.images[bad] = img
	f.tags["bad"] = bad
	n := cf.n
	if _, err := r.Push(ctx, f, "bad"); err == nil || !strings.Contains(err.Error(), "invalid image ID") {
		t.Errorf("push of image with bad parent: %v", err)
	}
	if cf.n != n+1 { // only the Meta lookup of the image itself
		t.Errorf("%d storage operations for a refused push", cf.n-n)
	}
	if n != 0 {
		t.Errorf("%d storage operations for invalid names, want 0", n)
	}
}

func TestDelCollectsOnlyUnreferenced(t *testing.T) {
	ctx := context.Background()
	r, dir, _ := openDir(t)
	f := newFake()
	a, b, c := chain(f)
	d := f.add(4, 1, "other branch")
	f.tags["other"] = d
	for _, tag := range []string{"app", "other"} {
		if _, err := r.Push(ctx, f, tag); err != nil {
			t.Fatal(err)
		}
	}
	// A partial image (no record): a fresh one may be a push in progress, an
	// old one is garbage.
	fresh, old := id(5), id(6)
	for _, p := range []string{fresh, old} {
		if err := os.MkdirAll(filepath.Join(dir, "images", p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "images", p, "stream"), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "images", old), past, past); err != nil {
		t.Fatal(err)
	}
	removed, err := r.Del(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{b: true, c: true, old: true}
	if len(removed) != len(want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, x := range removed {
		if !want[x] {
			t.Fatalf("removed %s, want only %v", x, want)
		}
	}
	for _, keep := range []string{a, d, fresh} {
		if _, err := os.Stat(filepath.Join(dir, "images", keep)); err != nil {
			t.Errorf("image %s removed: %v", keep, err)
		}
	}
	for _, gone := range []string{b, c, old} {
		if _, err := os.Stat(filepath.Join(dir, "images", gone)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("image %s kept: %v", gone, err)
		}
	}
	if _, err := r.Resolve(ctx, "app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("tag app after del: %v", err)
	}
	if _, err := r.Del(ctx, "app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second del: %v", err)
	}
	// other still pulls.
	if _, err := r.Pull(ctx, newFake(), "other"); err != nil {
		t.Fatal(err)
	}
	// Deleting the last tag empties the repository.
	if _, err := r.Del(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "images"))
	if len(ents) != 1 || ents[0].Name() != fresh {
		t.Errorf("images left: %v", ents)
	}
}

func TestDelRefusesToCollectOnBrokenChain(t *testing.T) {
	ctx := context.Background()
	r, dir, _ := openDir(t)
	f := newFake()
	a, b, _ := chain(f)
	if _, err := r.Push(ctx, f, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(ctx, f, "base"); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "images", b, "meta.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Del(ctx, "base"); err == nil {
		t.Fatal("del collected although tag app's chain is unreadable")
	}
	if _, err := os.Stat(filepath.Join(dir, "images", a, "meta.json")); err != nil {
		t.Fatalf("root image removed: %v", err)
	}
}

func TestSearch(t *testing.T) {
	ctx := context.Background()
	r, dir, _ := openDir(t)
	f := newFake()
	a, _, c := chain(f)
	for _, tag := range []string{"app", "base"} {
		if _, err := r.Push(ctx, f, tag); err != nil {
			t.Fatal(err)
		}
	}
	all, err := r.Search(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Tag != "app" || all[0].ID != c || all[1].Tag != "base" || all[1].ID != a {
		t.Fatalf("search: %+v", all)
	}
	var total int64
	for _, x := range []string{a, id(2), c} {
		fi, err := os.Stat(filepath.Join(dir, "images", x, "stream"))
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if all[0].Size != total || all[0].Created != f.images[c].Created || all[0].Err != nil {
		t.Errorf("app: %+v, want size %d created %s", all[0], total, f.images[c].Created)
	}
	some, err := r.Search(ctx, "ba*")
	if err != nil || len(some) != 1 || some[0].Tag != "base" {
		t.Fatalf("search ba*: %+v %v", some, err)
	}
	if _, err := r.Search(ctx, "[x"); err == nil {
		t.Error("bad pattern accepted")
	}
	empty, _, _ := openDir(t)
	if got, err := empty.Search(ctx, ""); err != nil || len(got) != 0 {
		t.Errorf("empty repository: %+v %v", got, err)
	}
}

func TestParseLocation(t *testing.T) {
	good := map[string]Location{
		"file:///srv/images":                     {Scheme: "file", Path: "/srv/images"},
		"file:///srv//images/":                   {Scheme: "file", Path: "/srv/images"},
		"ssh://repo.example.com/zocker":          {Scheme: "ssh", Host: "repo.example.com", Path: "/zocker"},
		"ssh://zocker@repo.example.com:2222/z/i": {Scheme: "ssh", User: "zocker", Host: "repo.example.com", Port: 2222, Path: "/z/i"},
		"ssh://u@[::1]:22/x":                     {Scheme: "ssh", User: "u", Host: "::1", Port: 22, Path: "/x"},
		"ssh://u@host/~/images":                  {Scheme: "ssh", User: "u", Host: "host", Path: "images"},
	}
	for raw, want := range good {
		got, err := ParseLocation(raw)
		if err != nil || got != want {
			t.Errorf("ParseLocation(%q) = %+v, %v; want %+v", raw, got, err, want)
			continue
		}
		again, err := ParseLocation(got.String())
		if err != nil || again != got {
			t.Errorf("round trip of %q via %q = %+v, %v", raw, got.String(), again, err)
		}
	}
	bad := map[string]string{
		"":                            "empty",
		"/srv/images":                 "want ssh",
		"file:///srv/../etc":          `".."`,
		"file:///srv/images/..":       `".."`,
		"ssh://host/a/../../etc":      `".."`,
		"ssh://host/~/..":             `".."`,
		"file:///":                    "absolute directory",
		"file://otherhost/srv":        "local path",
		"ssh://host":                  "want a directory",
		"ssh://-oProxyCommand=x/path": "invalid host",
		"ssh://-x@host/path":          "invalid user",
		"ssh://u:pw@host/path":        "passwords",
		"ssh://host:0/path":           "invalid port",
		"ssh://host/path?x=1":         "query",
		"http://host/path":            "unsupported scheme",
	}
	for raw, want := range bad {
		_, err := ParseLocation(raw)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLocation(%q) = %v, want error containing %q", raw, err, want)
		}
	}
	if _, err := Open(context.Background(), "ssh://host/a/../b", Options{SSHCommand: []string{"/nonexistent"}}); err == nil || !strings.Contains(err.Error(), "..") {
		t.Errorf("Open with .. : %v", err)
	}
}

func TestSSHArgv(t *testing.T) {
	loc, err := ParseLocation("ssh://zocker@repo.example.com:2222/srv/images")
	if err != nil {
		t.Fatal(err)
	}
	got := loc.sshArgv([]string{"ssh", "-F", "/tmp/cfg"})
	want := []string{"ssh", "-F", "/tmp/cfg", "-s", "-p", "2222", "-l", "zocker", "--", "repo.example.com", "sftp"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("argv %q, want %q", got, want)
	}
	loc, _ = ParseLocation("ssh://h/x")
	if got := loc.sshArgv(nil); !reflect.DeepEqual(got, []string{"ssh", "-s", "--", "h", "sftp"}) {
		t.Errorf("argv %q", got)
	}
}

func TestResolveFunc(t *testing.T) {
	ctx := context.Background()
	r, dir, _ := openDir(t)
	f := newFake()
	_, _, c := chain(f)
	if _, err := r.Push(ctx, f, "app"); err != nil {
		t.Fatal(err)
	}
	if got, _, err := ResolveSigned(ctx, "file://"+dir, "app", Options{}); err != nil || got != c {
		t.Fatalf("Resolve = %s, %v; want %s", got, err, c)
	}
	if _, _, err := ResolveSigned(ctx, "file://"+dir, "nope", Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve of a missing tag: %v", err)
	}
	// Refused before ssh is even started (the command does not exist).
	_, _, err := ResolveSigned(ctx, "ssh://host/x", "Bad", Options{SSHCommand: []string{"/nonexistent/ssh"}})
	if err == nil || !strings.Contains(err.Error(), "invalid tag") {
		t.Fatalf("bad tag: %v", err)
	}
	_, _, err = ResolveSigned(ctx, "ssh://host/x", "ok", Options{SSHCommand: []string{"/nonexistent/ssh"}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/ssh") {
		t.Fatalf("ssh start failure not reported: %v", err)
	}
}

func TestProgressLines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var out bytes.Buffer
	r, err := Open(ctx, "file://"+dir, Options{Out: &out, ProgressEvery: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	f := newFake()
	a, _, _ := chain(f)
	if _, err := r.Push(ctx, f, "base"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "push "+a[:12]+": ") || !strings.Contains(out.String(), "/s\n") {
		t.Errorf("no progress line:\n%s", out.String())
	}
	out.Reset()
	if _, err := r.Pull(ctx, newFake(), "base"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "pull "+a[:12]+": ") || !strings.Contains(out.String(), "pulled "+a[:12]+" (2.6K, full)") {
		t.Errorf("pull lines:\n%s", out.String())
	}
}
