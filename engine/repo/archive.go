package repo

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// An archive (save and load) is a file:// repository's directory in a tar:
// images/<id>/{stream,meta.json[.sig]} and tags/<tag>[.sig]. Loading one
// unpacks it into a private directory and pulls from it, so an archive gets
// every check a pull does and is nothing new to trust.

// archiveEntry matches the files an archive may hold; anything else refuses
// the archive.
var archiveEntry = regexp.MustCompile(`^(images/[0-9a-f]{64}/(stream|meta\.json|meta\.json\.sig)|tags/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.sig)?)$`)

// archiveDir matches the directories an archive may hold.
var archiveDir = regexp.MustCompile(`^(images|tags|images/[0-9a-f]{64})$`)

// Limits on the small files of an archive (streams are bounded by the pull).
const (
	maxArchiveSmallFile = 1 << 20
	maxArchiveEntries   = 100000
)

// ErrBadArchive is returned (wrapped) for an archive that is not one.
var ErrBadArchive = errors.New("not a zocker image archive")

// WriteArchive writes the repository directory dir as a tar to w, files
// sorted, with fixed times and modes, so the same images give the same bytes.
func WriteArchive(dir string, w io.Writer) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("write archive: %s is not a regular file", rel)
		}
		if isTmp(path.Base(rel)) {
			return nil
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("write archive of %s: %w", dir, err)
	}
	slices.Sort(names)
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0).UTC()
	for _, name := range names {
		p := filepath.Join(dir, filepath.FromSlash(name))
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		h := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
		if fi.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return fmt.Errorf("write archive: %w", err)
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, fi.Size()
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("write archive: %w", err)
		}
		_, err = io.Copy(tw, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("write archive %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return nil
}

// ReadArchive unpacks an archive from r into dir (an empty directory of the
// caller's). Only the repository layout's directories and regular files are
// accepted, each once; the archive must end properly (a truncated one is
// refused); nothing outside dir is ever written. Streams are checked later,
// by the pull.
func ReadArchive(r io.Reader, dir string) error {
	er := &eofReader{r: r}
	tr := tar.NewReader(er)
	seen := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF && er.eof {
			// archive/tar takes an input that stops between two entries for
			// the end; an archive ends with its end-of-archive blocks.
			return fmt.Errorf("read archive: it stops without its end-of-archive marker (truncated): %w", ErrBadArchive)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read archive: %w (truncated or damaged): %w", err, ErrBadArchive)
		}
		if n >= maxArchiveEntries {
			return fmt.Errorf("read archive: more than %d entries: %w", maxArchiveEntries, ErrBadArchive)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch h.Typeflag {
		case tar.TypeDir:
			name = strings.TrimSuffix(name, "/")
			if !archiveDir.MatchString(name) {
				return fmt.Errorf("read archive: unexpected directory %q: %w", h.Name, ErrBadArchive)
			}
			if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(name)), 0o700); err != nil {
				return fmt.Errorf("read archive: %w", err)
			}
			continue
		case tar.TypeReg:
		default:
			return fmt.Errorf("read archive: entry %q is not a regular file or directory: %w", h.Name, ErrBadArchive)
		}
		if !archiveEntry.MatchString(name) {
			return fmt.Errorf("read archive: unexpected file %q: %w", h.Name, ErrBadArchive)
		}
		if seen[name] {
			return fmt.Errorf("read archive: %s appears twice: %w", name, ErrBadArchive)
		}
		seen[name] = true
		if path.Base(name) != "stream" && h.Size > maxArchiveSmallFile {
			return fmt.Errorf("read archive: %s is larger than %d bytes: %w", name, maxArchiveSmallFile, ErrBadArchive)
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("read archive: %w", err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("read archive %s: %w (truncated or damaged): %w", name, err, ErrBadArchive)
		}
	}
	if len(seen) == 0 {
		return fmt.Errorf("read archive: no files: %w", ErrBadArchive)
	}
	return nil
}

// ArchiveTags lists the tags of an unpacked archive, sorted.
func ArchiveTags(dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "tags"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("archive holds no tags: %w", ErrBadArchive)
		}
		return nil, err
	}
	var tags []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".sig") && e.Type().IsRegular() {
			tags = append(tags, e.Name())
		}
	}
	if len(tags) == 0 {
		return nil, fmt.Errorf("archive holds no tags: %w", ErrBadArchive)
	}
	slices.Sort(tags)
	return tags, nil
}

// eofReader notes whether its reader ran dry (a read of nothing at EOF).
type eofReader struct {
	r   io.Reader
	eof bool
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && n == 0 {
		e.eof = true
	}
	return n, err
}
