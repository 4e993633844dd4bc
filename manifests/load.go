package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Insecure skips the ownership and permission checks (--insecure-manifests).
	Insecure bool
	// NumCPU bounds resources.cpu; 0 means this machine's count.
	NumCPU int
	// Cache, when set, keeps decoded files from one load to the next: an
	// unchanged file is not read or decoded again (see Cache). The service
	// keeps one.
	Cache *Cache

	// afterFile, when set, runs after each file is read (tests swap the root there).
	afterFile func(path string)
	// beforeOpen, when set, runs between the look at an entry and its open
	// (tests swap the entry there).
	beforeOpen func(name string)
}

// ErrRootChanging is returned when the manifest root pointed somewhere else
// at the end of a load than at its start (git-sync swapped the link): the
// set read is thrown away, never returned half old, half new. Reading again
// is the caller's decision; controller.LoadSettled is the one loop that does.
var ErrRootChanging = errors.New("manifest root changed during the load")

// ResolveRoot returns root with every symlink resolved, absolute: the
// directory (git-sync worktree) one load reads. A missing root is an error
// satisfying errors.Is(err, fs.ErrNotExist).
func ResolveRoot(root string) (string, error) {
	resolved, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	return filepath.Abs(resolved)
}

// Load reads the manifest directory root (or a single manifest file) once
// and returns the valid objects with every problem found. A root that is a
// symlink is resolved once and read only through the resolved path; if it
// points elsewhere once the read is done, the set is thrown away and the
// error wraps ErrRootChanging. A missing root gives a Set with Missing set
// and no error. Files with errors contribute no objects but never stop the
// others from loading.
func Load(root string, opts LoadOptions) (*Set, error) {
	resolved, err := ResolveRoot(root)
	if errors.Is(err, fs.ErrNotExist) {
		return missingSet(root), nil
	}
	if err != nil {
		return nil, fmt.Errorf("resolve manifest root %s: %w", root, err)
	}
	set, err := loadOnce(root, resolved, opts)
	if again, _ := ResolveRoot(root); again != resolved {
		return nil, fmt.Errorf("load manifests from %s: %w (it pointed to %s, then to %s)", root, ErrRootChanging, resolved, again)
	}
	return set, err
}

// LoadResolved is Load for a caller that resolved root itself (the
// controller, once per pass, so that the revision check and the read see
// the same worktree): it reads resolved, names the set and its files after
// root, and checks root's own ancestors, where the link lives, as well as
// resolved's. Whether root still points to resolved afterwards is the
// caller's to check.
func LoadResolved(root, resolved string, opts LoadOptions) (*Set, error) {
	if _, err := os.Lstat(resolved); errors.Is(err, fs.ErrNotExist) {
		return missingSet(root), nil
	}
	return loadOnce(root, resolved, opts)
}

func missingSet(root string) *Set {
	return &Set{Root: root, Missing: true, Images: map[string]*Image{}, Containers: map[string]*Container{},
		Volumes: map[string]*Volume{}, Sources: map[string]Source{}}
}

// loaded is one manifest file on its way into the Set.
type loaded struct {
	res      FileResult
	display  string
	docs     []*Document
	problems []Problem
}

func (l *loaded) fail(line int, object, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: l.display, Line: line, Object: object, Severity: SeverityError, Message: fmt.Sprintf(format, args...)})
}

func loadOnce(root, resolved string, opts LoadOptions) (*Set, error) {
	if resolved == string(filepath.Separator) {
		return nil, fmt.Errorf("manifest root %s: / itself cannot be the manifest directory", root)
	}
	if !opts.Insecure {
		if err := checkLinkAncestors(root); err != nil {
			return nil, err
		}
	}
	parent, err := openDirPath(filepath.Dir(resolved))
	if err != nil {
		return nil, fmt.Errorf("read manifest root %s: %w", root, err)
	}
	defer parent.close()
	if !opts.Insecure {
		if err := checkOpenedAncestors(root, filepath.Dir(resolved), parent); err != nil {
			return nil, err
		}
	}
	top, err := openEntry(parent.fd, filepath.Base(resolved), nil)
	if err != nil {
		return nil, fmt.Errorf("read manifest root %s: %w", root, err)
	}
	defer top.close()
	w := &treeReader{root: root, resolved: resolved, opts: opts, digest: sha256.New(), rd: &fileReader{opts: opts}}
	if opts.Cache != nil {
		var next map[string]*cachedFile
		w.rd.prev, next = opts.Cache.begin()
		w.rd.next = next
		defer func() { opts.Cache.end(next, w.rd.stats) }()
	}
	if !top.isDir() {
		l := &loaded{display: root, res: FileResult{Path: resolved, Rel: filepath.Base(resolved)}}
		sum := w.rd.read(l, resolved, top)
		w.digest.Write(sum[:])
		w.files = append(w.files, l)
	} else {
		if w.ignore, err = readIgnore(root, top, opts); err != nil {
			return nil, err
		}
		w.dir(top, "", "")
	}
	set := assemble(w.files)
	set.Root, set.Resolved = root, resolved
	set.Revision = revision(resolved)
	if set.Revision == "" {
		set.Revision = "sha256:" + hex.EncodeToString(w.digest.Sum(nil))
	}
	return set, nil
}

// treeReader reads a manifest directory tree through descriptors.
type treeReader struct {
	root, resolved string
	opts           LoadOptions
	ignore         []string
	files          []*loaded
	digest         hash.Hash
	rd             *fileReader
}

// dir reads the directory d (rel below the root); bad, when set, names an
// insecure directory above: its files are listed (their objects are kept,
// not pruned) but not read.
func (w *treeReader) dir(d entry, rel, bad string) {
	display := filepath.Join(w.root, rel)
	if !w.opts.Insecure && bad == "" {
		if why := insecureStat(display, &d.st); why != "" {
			bad = display
			w.files = append(w.files, &loaded{display: display, res: FileResult{Path: filepath.Join(w.resolved, rel), Rel: rel},
				problems: []Problem{{File: display, Severity: SeverityError, Message: why}}})
		}
	}
	names, err := readNames(d)
	if err != nil {
		l := &loaded{display: display, res: FileResult{Path: filepath.Join(w.resolved, rel), Rel: rel}}
		l.fail(0, "", "cannot read: %s", err)
		w.files = append(w.files, l)
		return
	}
	sort.Strings(names)
	for _, name := range names {
		crel := filepath.Join(rel, name)
		p := filepath.Join(w.resolved, crel)
		cdisplay := filepath.Join(w.root, crel)
		var st unix.Stat_t
		if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
			continue // removed meanwhile
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if skipName(name, isDir) || ignored(w.ignore, crel) {
			continue
		}
		if isDir {
			sub, err := openEntry(d.fd, name, w.opts.beforeOpen)
			if err != nil {
				l := &loaded{display: cdisplay, res: FileResult{Path: p, Rel: crel}}
				l.fail(0, "", "cannot read: %s", err)
				w.files = append(w.files, l)
				continue
			}
			if !sub.isDir() {
				// Replaced by a file between the look and the open: read it
				// on the next pass, not as a directory now.
				sub.close()
				l := &loaded{display: cdisplay, res: FileResult{Path: p, Rel: crel}}
				l.fail(0, "", "cannot read: replaced while being opened")
				w.files = append(w.files, l)
				continue
			}
			w.dir(sub, crel, bad)
			sub.close()
			continue
		}
		l := &loaded{display: cdisplay, res: FileResult{Path: p, Rel: crel}}
		w.files = append(w.files, l)
		if bad != "" {
			l.fail(0, "", "not read: directory %s is not secure", bad)
			continue
		}
		f, err := openEntry(d.fd, name, w.opts.beforeOpen)
		if err == nil && f.isDir() {
			f.close()
			err = errors.New("replaced while being opened")
		}
		if err != nil {
			if errors.Is(err, errSymlink) || errors.Is(err, errNotRegular) {
				l.fail(0, "", "%s", err)
			} else {
				l.fail(0, "", "cannot read: %s", err)
			}
			continue
		}
		sum := w.rd.read(l, p, f)
		f.close()
		w.digest.Write([]byte(crel))
		w.digest.Write([]byte{0})
		w.digest.Write(sum[:])
		if w.opts.afterFile != nil {
			w.opts.afterFile(p)
		}
	}
}

// IgnoreFile names the file, at the top of a manifest directory, that lists
// paths to leave out of loading: one glob pattern (path.Match syntax) per line,
// matched against the slash-separated path relative to the root; a pattern
// matching a directory leaves out everything below it; # starts a comment.
// GitOps repositories keep other YAML beside the manifests (CI
// configuration, Prometheus rules) and this keeps it from being read as
// broken manifests.
const IgnoreFile = ".zockerignore"

// maxIgnoreFile bounds the .zockerignore file.
const maxIgnoreFile = 64 << 10

// readIgnore reads the ignore file of the root directory top. It gets the
// manifests' own checks (security review M2): whoever can write it can hide
// a manifest, and a hidden Volume with reclaimPolicy Delete is destroyed.
// An insecure, oversized or non-regular one fails the whole load.
func readIgnore(root string, top entry, opts LoadOptions) ([]string, error) {
	display := filepath.Join(root, IgnoreFile)
	e, err := openEntry(top.fd, IgnoreFile, opts.beforeOpen)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err == nil && e.isDir() {
		e.close()
		err = errNotRegular
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", display, err)
	}
	defer e.close()
	if !opts.Insecure {
		if why := insecureStat(display, &e.st); why != "" {
			return nil, fmt.Errorf("%s: %s", display, why)
		}
	}
	data, err := readAllFD(e, maxIgnoreFile)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", display, err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.Trim(line, "/")
		if _, err := path.Match(line, ""); err != nil {
			return nil, fmt.Errorf("%s: bad pattern %q: %w", IgnoreFile, line, err)
		}
		patterns = append(patterns, line)
	}
	return patterns, nil
}

// readAllFD reads an opened file, refusing more than limit bytes.
func readAllFD(e entry, limit int64) ([]byte, error) {
	if e.st.Size > limit {
		return nil, fmt.Errorf("file is %d bytes, larger than the %d byte limit", e.st.Size, limit)
	}
	fd, err := unix.Dup(e.fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file is larger than the %d byte limit", limit)
	}
	return data, nil
}

func ignored(patterns []string, rel string) bool {
	rel = filepath.ToSlash(rel)
	for _, p := range patterns {
		if ok, _ := path.Match(p, rel); ok {
			return true
		}
	}
	return false
}

// skipName reports whether a directory entry is not a manifest: hidden
// files and directories (.git, editors' state), editor backups and swap
// files, and anything not ending in .yaml or .yml.
func skipName(name string, dir bool) bool {
	if strings.HasPrefix(name, ".") {
		return true
	}
	if dir {
		return false
	}
	for _, suffix := range []string{"~", ".swp", ".bak", ".tmp"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	if strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#") {
		return true
	}
	return !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml")
}

// racyWindow: a file changed less than this ago is not trusted by its stat
// alone at the next load; file system timestamps can be as coarse as a tick.
var racyWindow = 2 * time.Second

// fileReader reads and decodes the files of one load, through the cache
// when there is one (prev: the last load's files; next: this one's).
type fileReader struct {
	opts       LoadOptions
	prev, next map[string]*cachedFile
	stats      CacheStats
}

// read checks, reads and decodes the opened file e into l, returning the
// sha256 of its content (zero when it could not be read). The checks are on
// the descriptor's fstat: what is checked is what is read. A file whose
// fstat (or content) is that of the last load is not decoded again.
func (rd *fileReader) read(l *loaded, p string, e entry) [sha256.Size]byte {
	var sum [sha256.Size]byte
	if !rd.opts.Insecure {
		if why := insecureStat(l.display, &e.st); why != "" {
			l.fail(0, "", "%s", why)
			return sum
		}
	}
	if e.st.Size > MaxFileSize {
		l.fail(0, "", "file is %d bytes, larger than the 1 MiB limit", e.st.Size)
		return sum
	}
	key := statKeyOf(&e.st)
	cached := rd.prev[p]
	if cached != nil && (cached.display != l.display || cached.numCPU != rd.opts.NumCPU) {
		cached = nil
	}
	if cached != nil && cached.stat == key {
		rd.stats.Unchanged++
		rd.use(l, p, cached)
		return cached.sum
	}
	data, err := readAllFD(e, MaxFileSize)
	if err != nil {
		if strings.Contains(err.Error(), "limit") {
			l.fail(0, "", "file is larger than the 1 MiB limit")
		} else {
			l.fail(0, "", "cannot read: %s", err)
		}
		return sum
	}
	sum = sha256.Sum256(data)
	if time.Since(time.Unix(0, key.mtimeNs)) < racyWindow || time.Since(time.Unix(0, key.ctimeNs)) < racyWindow {
		// Changed just now: a second write within the file system's
		// timestamp granularity would leave the stat as it is. Compare the
		// content next time (as git does with racily clean index entries).
		key.valid = false
	}
	if cached != nil && cached.sum == sum {
		rd.stats.Rehashed++
		c := *cached
		c.stat = key
		rd.use(l, p, &c)
		return sum
	}
	rd.stats.Decoded++
	docs, problems := decodeFile(l.display, filepath.Dir(p), data, DecodeOptions{NumCPU: rd.opts.NumCPU})
	if rd.next != nil {
		// The key is the fstat taken before the read: a write during the
		// read changes ctime, so the next load reads the file again.
		rd.next[p] = &cachedFile{stat: key, sum: sum, display: l.display, numCPU: rd.opts.NumCPU,
			docs: docsCopy(docs), problems: slices.Clone(problems)}
	}
	l.docs = docs
	l.problems = append(l.problems, problems...)
	return sum
}

// use fills l from a cached decode and keeps it for the next load.
func (rd *fileReader) use(l *loaded, p string, c *cachedFile) {
	if rd.next != nil {
		rd.next[p] = c
	}
	l.docs = docsCopy(c.docs)
	l.problems = append(l.problems, c.problems...)
}

// gitRevision matches the names git-sync gives its worktrees: the commit
// hash (v4: .worktrees/<sha>), or rev-<sha> (v3).
var gitRevision = regexp.MustCompile(`^(rev-)?([0-9a-f]{40}|[0-9a-f]{64})$`)

// revision returns the commit hash in the resolved root's path, if any.
func revision(resolved string) string {
	parts := strings.Split(filepath.ToSlash(resolved), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if m := gitRevision.FindStringSubmatch(parts[i]); m != nil {
			return m[2]
		}
	}
	return ""
}

// declared is one document that names a valid object, with its file.
type declared struct {
	file *loaded
	doc  *Document
}

// assemble runs the checks across files (duplicates, references, dependsOn
// cycles) and builds the Set from the files without errors.
func assemble(files []*loaded) *Set {
	set := &Set{Images: map[string]*Image{}, Containers: map[string]*Container{}, Volumes: map[string]*Volume{}, Sources: map[string]Source{}}
	byKey := map[string][]declared{}
	var keys []string
	for _, f := range files {
		for _, d := range f.docs {
			if d.Kind == "" || image.ValidName("", d.Name) != nil {
				continue
			}
			if _, ok := byKey[d.Key()]; !ok {
				keys = append(keys, d.Key())
			}
			byKey[d.Key()] = append(byKey[d.Key()], declared{f, d})
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		ds := byKey[k]
		if len(ds) < 2 {
			continue
		}
		set.Blocked = append(set.Blocked, k)
		for i, d := range ds {
			var others []string
			for j, o := range ds {
				if j != i {
					others = append(others, fmt.Sprintf("%s:%d", o.file.display, o.doc.Line))
				}
			}
			d.file.fail(d.doc.Line, d.doc.label(), "duplicate: also declared at %s", strings.Join(others, ", "))
		}
	}
	has := func(kind, name string) bool { return len(byKey[kind+"/"+name]) > 0 }
	deps := map[string][]string{}
	where := map[string]declared{}
	for _, k := range keys {
		d := byKey[k][0]
		c, ok := d.doc.Object.(*Container)
		if !ok {
			continue
		}
		warn := func(field, format string, args ...any) {
			d.file.problems = append(d.file.problems, Problem{File: d.file.display, Line: d.doc.lineOf(field), Object: d.doc.label(),
				Field: field, Severity: SeverityWarning, Message: fmt.Sprintf(format, args...)})
		}
		if !has(KindImage, c.Spec.Image) {
			warn("spec.image", "image %s is not declared in the manifests: it must exist locally", c.Spec.Image)
		}
		for i, m := range c.Spec.Volumes {
			if m.Volume != "" && !has(KindVolume, m.Volume) {
				warn(fmt.Sprintf("spec.volumes[%d].volume", i), "volume %s is not declared in the manifests: it must exist locally", m.Volume)
			}
		}
		for i, dep := range c.Spec.DependsOn {
			if !has(KindContainer, dep) {
				f := fmt.Sprintf("spec.dependsOn[%d]", i)
				d.file.problems = append(d.file.problems, Problem{File: d.file.display, Line: d.doc.lineOf(f), Object: d.doc.label(),
					Field: f, Severity: SeverityError, Message: fmt.Sprintf("no Container named %s is declared", dep)})
				d.doc.Failed = true
				continue
			}
			deps[c.Metadata.Name] = append(deps[c.Metadata.Name], dep)
		}
		where[c.Metadata.Name] = d
	}
	for _, cycle := range findCycles(deps) {
		d := where[cycle[0]]
		d.file.problems = append(d.file.problems, Problem{File: d.file.display, Line: d.doc.lineOf("spec.dependsOn"), Object: d.doc.label(),
			Field: "spec.dependsOn", Severity: SeverityError, Message: "dependency cycle: " + strings.Join(cycle, " -> ")})
	}
	for _, f := range files {
		for _, p := range f.problems {
			if p.IsError() {
				f.res.Failed = true
			}
		}
		for _, d := range f.docs {
			if d.Kind != "" && d.Name != "" {
				f.res.Objects = append(f.res.Objects, d.Key())
			}
		}
		set.Files = append(set.Files, f.res)
		set.Problems = append(set.Problems, capProblems(f.problems, f.display)...)
		if f.res.Failed {
			continue
		}
		for _, d := range f.docs {
			k := d.Key()
			if slices.Contains(set.Blocked, k) {
				continue
			}
			set.Sources[k] = Source{File: f.res.Path, Rel: f.res.Rel, Line: d.Line}
			switch o := d.Object.(type) {
			case *Image:
				set.Images[o.Metadata.Name] = o
			case *Container:
				set.Containers[o.Metadata.Name] = o
			case *Volume:
				set.Volumes[o.Metadata.Name] = o
			}
		}
	}
	sort.Slice(set.Files, func(i, j int) bool { return set.Files[i].Path < set.Files[j].Path })
	SortProblems(set.Problems)
	return set
}

// findCycles returns each dependsOn cycle once, as a path that starts and
// ends at its smallest name: [a b a].
func findCycles(deps map[string][]string) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	seen := map[string]bool{}
	var cycles [][]string
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, m := range deps[n] {
			switch color[m] {
			case white:
				visit(m)
			case grey:
				i := slices.Index(stack, m)
				cyc := slices.Clone(stack[i:])
				min := slices.Index(cyc, slices.Min(cyc))
				cyc = append(cyc[min:], cyc[:min]...)
				cyc = append(cyc, cyc[0])
				if key := strings.Join(cyc, " "); !seen[key] {
					seen[key] = true
					cycles = append(cycles, cyc)
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if color[n] == white {
			visit(n)
		}
	}
	return cycles
}
