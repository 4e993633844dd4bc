package build

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
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// IgnoreFile names the file at the top of a build context that lists paths
// left out of the context: one glob pattern (path.Match syntax) per line,
// matched against the slash-separated path relative to the context; a
// pattern matching a directory leaves out everything below it; # starts a
// comment. It has the same syntax as the manifest directory's.
const IgnoreFile = ".zockerignore"

// maxLinks bounds symlink resolution so that a loop of links fails instead
// of spinning.
const maxLinks = 40

// ErrOutsideContext is returned for a COPY source that leaves the build
// context: "..", an absolute path, or a symlink pointing out of it.
var ErrOutsideContext = errors.New("is outside the build context")

// buildContext is a build context directory with its ignore patterns.
type buildContext struct {
	dir    string
	ignore []string
}

func openContext(dir string) (*buildContext, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", dir)
	}
	ign, err := readIgnore(abs)
	if err != nil {
		return nil, err
	}
	return &buildContext{dir: abs, ignore: ign}, nil
}

func readIgnore(dir string) ([]string, error) {
	data, err := readSmallFile(filepath.Join(dir, IgnoreFile), maxSmallFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", IgnoreFile, err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.Trim(path.Clean("/"+line), "/")
		if _, err := path.Match(line, ""); err != nil {
			return nil, fmt.Errorf("%s: bad pattern %q: %w", IgnoreFile, line, err)
		}
		patterns = append(patterns, line)
	}
	return patterns, nil
}

// ignored reports whether rel (slash-separated, relative to the context) or
// one of its parent directories matches an ignore pattern.
func (c *buildContext) ignored(rel string) bool {
	if rel == "" || rel == "." {
		return false
	}
	for _, p := range c.ignore {
		for q := rel; q != "." && q != ""; q = path.Dir(q) {
			if ok, _ := path.Match(p, q); ok {
				return true
			}
		}
	}
	return false
}

// resolve turns a slash-separated path relative to the context into the host
// path it designates, following symlinks only while they stay inside the
// context. It returns the resolved path relative to the context too.
func (c *buildContext) resolve(rel string) (host, clean string, err error) {
	if path.IsAbs(rel) {
		return "", "", fmt.Errorf("%s %w (absolute paths are not allowed)", rel, ErrOutsideContext)
	}
	var done []string
	todo := splitRel(rel)
	links := 0
	for len(todo) > 0 {
		comp := todo[0]
		todo = todo[1:]
		switch comp {
		case ".", "":
			continue
		case "..":
			if len(done) == 0 {
				return "", "", fmt.Errorf("%s %w", rel, ErrOutsideContext)
			}
			done = done[:len(done)-1]
			continue
		}
		cur := filepath.Join(c.dir, filepath.FromSlash(path.Join(append(done, comp)...)))
		fi, err := os.Lstat(cur)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", "", fmt.Errorf("%s: no such file or directory in the build context", rel)
			}
			return "", "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, comp)
			continue
		}
		links++
		if links > maxLinks {
			return "", "", fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", "", err
		}
		if filepath.IsAbs(target) {
			// An absolute link points at the host's tree, wherever the
			// context is: never inside it by construction.
			return "", "", fmt.Errorf("%s: symlink to %s %w", rel, target, ErrOutsideContext)
		}
		todo = append(splitRel(filepath.ToSlash(target)), todo...)
	}
	clean = path.Join(done...)
	if clean == "" {
		clean = "."
	}
	return filepath.Join(c.dir, filepath.FromSlash(clean)), clean, nil
}

func splitRel(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// glob expands a COPY source pattern (path.Match per component) to the
// matching context paths, sorted, leaving out ignored ones. A source without
// wildcards is returned as it is, after checking that it stays inside.
func (c *buildContext) glob(pattern string) ([]string, error) {
	if path.IsAbs(pattern) {
		return nil, fmt.Errorf("%s %w (absolute paths are not allowed)", pattern, ErrOutsideContext)
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("%s: bad pattern: %w", pattern, err)
	}
	matches := []string{"."}
	for _, comp := range splitRel(pattern) {
		var next []string
		for _, m := range matches {
			if !strings.ContainsAny(comp, `*?[\`) {
				next = append(next, path.Join(m, comp))
				continue
			}
			host, clean, err := c.resolve(m)
			if err != nil {
				return nil, err
			}
			ents, err := os.ReadDir(host)
			if err != nil {
				continue // not a directory: nothing matches below it
			}
			for _, e := range ents {
				if ok, _ := path.Match(comp, e.Name()); ok {
					next = append(next, path.Join(clean, e.Name()))
				}
			}
		}
		matches = next
	}
	var out []string
	for _, m := range matches {
		_, clean, err := c.resolve(m)
		if err != nil {
			return nil, err
		}
		if c.ignored(clean) {
			continue
		}
		out = append(out, clean)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no such file or directory in the build context", pattern)
	}
	sort.Strings(out)
	return out, nil
}

// entry is one file system object a COPY reads.
type entry struct {
	// rel is the path below the copied source ("" for the source itself).
	rel  string
	host string
	mode fs.FileMode
	// link is the target of a symlink found inside a copied directory: it is
	// copied as a link, never followed.
	link string
	// sum is the content digest of a regular file.
	sum string
}

// collect lists what copying the context path src reads: the file, or the
// directory and everything below it that is not ignored, in a stable order.
func (c *buildContext) collect(src string) ([]entry, error) {
	host, clean, err := c.resolve(src)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(host)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		e, err := c.entryOf(host, "", fi)
		return []entry{e}, err
	}
	var out []entry
	err = filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(host, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			rel = ""
		}
		if c.ignored(path.Join(clean, rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e, err := c.entryOf(p, rel, info)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s in the build context: %w", src, err)
	}
	return out, nil
}

func (c *buildContext) entryOf(host, rel string, fi fs.FileInfo) (entry, error) {
	e := entry{rel: rel, host: host, mode: fi.Mode()}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(host)
		if err != nil {
			return e, err
		}
		e.link = t
	case fi.Mode().IsRegular():
		sum, err := fileDigest(host, fi)
		if err != nil {
			return e, err
		}
		e.sum = sum
	}
	// Other types (sockets, fifos, devices) are recorded by type only:
	// InputsHash must not fail on them; COPY refuses them.
	return e, nil
}

// digestEntries is the content address of what a COPY reads: paths, modes,
// link targets and contents.
func digestEntries(groups [][]entry) string {
	h := sha256.New()
	for i, g := range groups {
		fmt.Fprintf(h, "source %d\n", i)
		for _, e := range g {
			fmt.Fprintf(h, "%q %o %q %s\n", e.rel, uint32(e.mode), e.link, e.sum)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// statKey identifies a file version cheaply: if none of these changed, its
// content is taken as unchanged (as git's index does).
type statKey struct {
	size  int64
	mtime int64
	ino   uint64
	mode  fs.FileMode
}

var digestCache = struct {
	sync.Mutex
	m map[string]cachedDigest
}{m: map[string]cachedDigest{}}

type cachedDigest struct {
	key statKey
	sum string
}

// racyWindow: a file modified this recently may change again within the
// same mtime tick without its size changing, so its digest is not cached.
const racyWindow = 2 * time.Second

func keyOf(fi fs.FileInfo) statKey {
	k := statKey{size: fi.Size(), mtime: fi.ModTime().UnixNano(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ino = uint64(st.Ino)
	}
	return k
}

// fileDigest returns the sha256 of a regular file, from the stat cache when
// its path, size, mtime, inode and mode are unchanged.
func fileDigest(p string, fi fs.FileInfo) (string, error) {
	k := keyOf(fi)
	digestCache.Lock()
	c, ok := digestCache.m[p]
	digestCache.Unlock()
	if ok && c.key == k {
		return c.sum, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if time.Since(fi.ModTime()) > racyWindow {
		digestCache.Lock()
		if len(digestCache.m) > 100000 {
			digestCache.m = map[string]cachedDigest{} // bound memory on huge contexts
		}
		digestCache.m[p] = cachedDigest{key: k, sum: sum}
		digestCache.Unlock()
	}
	return sum, nil
}

// InputsHash is the digest of everything a build reads: the Zockerfile's
// bytes, every context file not excluded by .zockerignore (path, mode,
// contents, link targets), the build args and the base image ID. The
// reconciler records it on the image and rebuilds when it changes. File
// contents are hashed again only when a file's size, mtime, inode or mode
// changed, so that a resync over a small unchanged context costs a walk.
// file is relative to contextDir unless absolute ("" means Zockerfile).
func InputsHash(contextDir, file string, args map[string]string, baseID string) (string, error) {
	c, err := openContext(contextDir)
	if err != nil {
		return "", err
	}
	zf, err := readSmallFile(zockerfilePath(c.dir, file), maxSmallFile)
	if err != nil {
		return "", fmt.Errorf("inputs of build %s: %w", contextDir, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "zocker/v1 build inputs\nbase %s\nzockerfile %x\n", baseID, sha256.Sum256(zf))
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "arg %q=%q\n", k, args[k])
	}
	all, err := c.collect(".")
	if err != nil {
		return "", fmt.Errorf("inputs of build %s: %w", contextDir, err)
	}
	h.Write([]byte(digestEntries([][]entry{all})))
	return hex.EncodeToString(h.Sum(nil)), nil
}

func zockerfilePath(dir, file string) string {
	if file == "" {
		file = "Zockerfile"
	}
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(dir, file)
}
