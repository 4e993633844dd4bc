package layer

import (
	"archive/tar"
	"compress/gzip"
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
	"syscall"
	"time"
)

// fileID is what tells an unchanged file of a ZFS clone from a changed one:
// a clone keeps its origin's object numbers and ctimes, and any write,
// chmod, chown, link or rename changes the ctime.
type fileID struct {
	ino, ctime, mtime int64
	mode              fs.FileMode
	uid, gid          uint32
	size              int64
	link              string
}

func statID(p string, fi fs.FileInfo) fileID {
	st := fi.Sys().(*syscall.Stat_t)
	id := fileID{ino: int64(st.Ino), mode: fi.Mode(), uid: st.Uid, gid: st.Gid, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	id.ctime = ctimeOf(st)
	if fi.Mode()&fs.ModeSymlink != 0 {
		id.link, _ = os.Readlink(p)
	}
	return id
}

// Diff writes, as a gzip-compressed tar to w, the difference between
// the trees lower ("" for none) and upper: new and changed entries, and a
// `.wh.NAME` whiteout for each topmost entry upper no longer has. It
// returns the diff ID (the uncompressed tar's digest). Device nodes,
// FIFOs and sockets are left out (devfs provides them).
func Diff(lower, upper string, w io.Writer) (diffID string, entries int, err error) {
	zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	links := map[uint64]string{}
	var walk func(rel string) error
	walk = func(rel string) error {
		up := filepath.Join(upper, rel)
		names, err := readNames(up)
		if err != nil {
			return err
		}
		var lowerNames []string
		if lower != "" {
			if fi, err := os.Lstat(filepath.Join(lower, rel)); err == nil && fi.IsDir() {
				if lowerNames, err = readNames(filepath.Join(lower, rel)); err != nil {
					return err
				}
			}
		}
		have := map[string]bool{}
		for _, n := range names {
			have[n] = true
		}
		// Whiteouts first, as the spec recommends.
		for _, n := range lowerNames {
			if !have[n] {
				hdr := &tar.Header{Name: path.Join(rel, whiteoutPrefix+n), Typeflag: tar.TypeReg, Mode: 0o600, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				entries++
			}
		}
		for _, n := range names {
			r := path.Join(rel, n)
			p := filepath.Join(upper, r)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			changed := true
			if lower != "" {
				if lfi, err := os.Lstat(filepath.Join(lower, r)); err == nil {
					changed = statID(p, fi) != statID(filepath.Join(lower, r), lfi)
				}
			}
			if changed {
				n, err := writeEntry(tw, p, r, fi, links)
				if err != nil {
					return fmt.Errorf("%s: %w", r, err)
				}
				entries += n
			}
			if fi.IsDir() {
				if err := walk(r); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("."); err != nil {
		return "", 0, fmt.Errorf("diff %s against %s: %w", upper, lower, err)
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), entries, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names) // a deterministic tar: the same image gives the same blob
	return names, err
}

// writeEntry writes one changed entry; a second name of a file already in
// this layer becomes a hard link to it.
func writeEntry(tw *tar.Writer, p, rel string, fi fs.FileInfo, links map[uint64]string) (int, error) {
	mode := fi.Mode()
	if mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0 {
		return 0, nil
	}
	var target string
	if mode&fs.ModeSymlink != 0 {
		var err error
		if target, err = os.Readlink(p); err != nil {
			return 0, err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return 0, err
	}
	hdr.Name, hdr.Uname, hdr.Gname = rel, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	if fi.IsDir() {
		hdr.Name += "/"
	}
	st := fi.Sys().(*syscall.Stat_t)
	if flags := statFlags(st); flags != 0 {
		hdr.PAXRecords = map[string]string{paxFflags: formatFileFlags(flags)}
	}
	if mode.IsRegular() && st.Nlink > 1 {
		if first, ok := links[uint64(st.Ino)]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			return 1, tw.WriteHeader(hdr)
		}
		links[uint64(st.Ino)] = rel
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, err
	}
	if mode.IsRegular() {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		if err != nil {
			return 0, err
		}
		if n != hdr.Size {
			return 0, errors.New("file changed while it was read")
		}
	}
	return 1, nil
}
