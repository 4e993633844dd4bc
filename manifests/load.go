package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/image"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Insecure skips the ownership and permission checks (--insecure-manifests).
	Insecure bool
	// NumCPU bounds resources.cpu; 0 means this machine's count.
	NumCPU int
	// MaxAttempts bounds the reloads when the root's symlink target changes
	// during a load; 0 means 5.
	MaxAttempts int

	// Cache, when set, keeps decoded files from one load to the next: an
	// unchanged file is not decoded again (see Cache). The service keeps one.
	Cache *Cache

	// afterFile, when set, runs after each file is read (tests swap the root there).
	afterFile func(path string)
}

// ErrRootChanging is returned when the manifest root kept changing during
// every one of the load's attempts.
var ErrRootChanging = errors.New("manifest root kept changing during the load")

// Load reads the manifest directory root (or a single manifest file) and
// returns the valid objects with every problem found. A root that is a
// symlink is resolved once per attempt and read only through the resolved
// path; if it points elsewhere once the attempt is done, the attempt is
// thrown away and made again, so the Set never mixes two revisions. A
// missing root gives a Set with Missing set and no error. Files with errors
// contribute no objects but never stop the others from loading.
func Load(root string, opts LoadOptions) (*Set, error) {
	attempts := opts.MaxAttempts
	if attempts <= 0 {
		attempts = 5
	}
	for range attempts {
		resolved, err := filepath.EvalSymlinks(root)
		if errors.Is(err, fs.ErrNotExist) {
			return &Set{Root: root, Missing: true, Images: map[string]*Image{}, Containers: map[string]*Container{},
				Volumes: map[string]*Volume{}, Sources: map[string]Source{}}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("resolve manifest root %s: %w", root, err)
		}
		if resolved, err = filepath.Abs(resolved); err != nil {
			return nil, fmt.Errorf("resolve manifest root %s: %w", root, err)
		}
		set, err := loadOnce(root, resolved, opts)
		again, _ := filepath.EvalSymlinks(root)
		if again, _ = filepath.Abs(again); again != resolved {
			continue
		}
		return set, err
	}
	return nil, fmt.Errorf("load manifests from %s: %w (%d attempts)", root, ErrRootChanging, attempts)
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
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, fmt.Errorf("read manifest root %s: %w", root, err)
	}
	if !opts.Insecure {
		if err := checkAncestors(root, resolved); err != nil {
			return nil, err
		}
	}
	var files []*loaded
	digest := sha256.New()
	rd := &fileReader{opts: opts}
	if opts.Cache != nil {
		var next map[string]*cachedFile
		rd.prev, next = opts.Cache.begin()
		rd.next = next
		defer func() { opts.Cache.end(next, rd.stats) }()
	}
	if !fi.IsDir() {
		l := &loaded{display: root, res: FileResult{Path: resolved, Rel: filepath.Base(resolved)}}
		sum := rd.read(l, resolved, fi)
		digest.Write(sum[:])
		files = append(files, l)
	} else {
		// badDirs are directories failing the permission check: their files
		// are listed (so their objects are kept, not pruned) but not read.
		var badDirs []string
		ignore, err := readIgnore(resolved)
		if err != nil {
			return nil, fmt.Errorf("read manifest root %s: %w", root, err)
		}
		err = filepath.WalkDir(resolved, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(resolved, p)
			display := filepath.Join(root, rel)
			if err != nil {
				if p == resolved {
					return err
				}
				l := &loaded{display: display, res: FileResult{Path: p, Rel: rel}}
				l.fail(0, "", "cannot read: %s", errors.Unwrap(err))
				files = append(files, l)
				return nil
			}
			if p != resolved && (skipName(d.Name(), d.IsDir()) || ignored(ignore, rel)) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() {
				if !opts.Insecure {
					if info, err := d.Info(); err == nil {
						if why := insecure(display, info); why != "" {
							badDirs = append(badDirs, p+string(filepath.Separator))
							files = append(files, &loaded{display: display, res: FileResult{Path: p, Rel: rel},
								problems: []Problem{{File: display, Severity: SeverityError, Message: why}}})
						}
					}
				}
				return nil
			}
			l := &loaded{display: display, res: FileResult{Path: p, Rel: rel}}
			files = append(files, l)
			for _, b := range badDirs {
				if strings.HasPrefix(p, b) {
					l.fail(0, "", "not read: directory %s is not secure", filepath.Join(root, strings.TrimSuffix(b[len(resolved):], "/")))
					return nil
				}
			}
			if !d.Type().IsRegular() {
				l.fail(0, "", "not a regular file (symbolic links inside the manifest directory are not followed)")
				return nil
			}
			info, err := d.Info()
			if err != nil {
				l.fail(0, "", "cannot read: %s", err)
				return nil
			}
			sum := rd.read(l, p, info)
			digest.Write([]byte(rel))
			digest.Write([]byte{0})
			digest.Write(sum[:])
			if opts.afterFile != nil {
				opts.afterFile(p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read manifest root %s: %w", root, err)
		}
	}
	set := assemble(files)
	set.Root, set.Resolved = root, resolved
	set.Revision = revision(resolved)
	if set.Revision == "" {
		set.Revision = "sha256:" + hex.EncodeToString(digest.Sum(nil))
	}
	return set, nil
}

// IgnoreFile names the file, at the top of a manifest directory, that lists
// paths to leave out of loading: one glob pattern (path.Match syntax) per line,
// matched against the slash-separated path relative to the root; a pattern
// matching a directory leaves out everything below it; # starts a comment.
// GitOps repositories keep other YAML beside the manifests (CI
// configuration, Prometheus rules) and this keeps it from being read as
// broken manifests.
const IgnoreFile = ".zockerignore"

func readIgnore(dir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
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

// read reads and decodes one file into l, returning the sha256 of its
// content (zero when it could not be read). A file whose stat (or content)
// is that of the last load is not decoded again.
func (rd *fileReader) read(l *loaded, p string, info fs.FileInfo) [sha256.Size]byte {
	var sum [sha256.Size]byte
	if !rd.opts.Insecure {
		if why := insecure(l.display, info); why != "" {
			l.fail(0, "", "%s", why)
			return sum
		}
	}
	if info.Size() > MaxFileSize {
		l.fail(0, "", "file is %d bytes, larger than the 1 MiB limit", info.Size())
		return sum
	}
	key := statKeyOf(info)
	cached := rd.prev[p]
	if cached != nil && (cached.display != l.display || cached.numCPU != rd.opts.NumCPU) {
		cached = nil
	}
	if cached != nil && key.valid && cached.stat == key {
		rd.stats.Unchanged++
		rd.use(l, p, cached)
		return cached.sum
	}
	f, err := os.Open(p)
	if err != nil {
		l.fail(0, "", "cannot read: %s", err)
		return sum
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		l.fail(0, "", "cannot read: %s", err)
		return sum
	}
	if len(data) > MaxFileSize {
		l.fail(0, "", "file is larger than the 1 MiB limit")
		return sum
	}
	sum = sha256.Sum256(data)
	if time.Since(info.ModTime()) < racyWindow || time.Since(time.Unix(0, key.ctimeNs)) < racyWindow {
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
		// The key is the stat taken before the read: a write during the
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
	rd.next[p] = c
	l.docs = docsCopy(c.docs)
	l.problems = append(l.problems, c.problems...)
}

// insecure says why a manifest file or directory may not be trusted, and how
// to fix it, or returns "". Whoever can write a manifest can run anything as
// root on this host, so, like sshd's StrictModes, only root (or the user the
// service runs as) may be able to write one.
func insecure(display string, info fs.FileInfo) string {
	what := "file"
	if info.IsDir() {
		what = "directory"
	}
	if info.Mode().Perm()&0o022 != 0 {
		return fmt.Sprintf("insecure %s: writable by group or others, who could then run anything as root (fix: chmod go-w %s, or --insecure-manifests)", what, display)
	}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
			return fmt.Sprintf("insecure %s: owned by uid %d, neither root nor this service's user (fix: chown root %s, or --insecure-manifests)", what, uid, display)
		}
	}
	return ""
}

// checkAncestors refuses a root below a directory that others may write
// without the sticky bit: they could rename the manifest directory (or the
// symlink to it) away and put their own in its place. It checks both the
// path as given (where a symlink lives) and the resolved one.
func checkAncestors(root, resolved string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		abs = root
	}
	seen := map[string]bool{}
	for _, start := range []string{filepath.Dir(abs), filepath.Dir(resolved)} {
		for dir := start; !seen[dir]; dir = filepath.Dir(dir) {
			seen[dir] = true
			fi, err := os.Stat(dir)
			if err != nil {
				return fmt.Errorf("check manifest root %s: %w", root, err)
			}
			if m := fi.Mode(); m.Perm()&0o002 != 0 && m&fs.ModeSticky == 0 {
				return fmt.Errorf("insecure manifest root %s: its ancestor %s is writable by others without the sticky bit, so they could replace it (fix: chmod o-w %s, or --insecure-manifests)", root, dir, dir)
			}
		}
	}
	return nil
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
		set.Problems = append(set.Problems, f.problems...)
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
