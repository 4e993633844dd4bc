package smoke

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// ImageFile is one entry of the tiny image: a directory, a copy of a host
// file, or a symlink.
type ImageFile struct {
	Path   string // absolute path in the image
	Source string // host file to copy (regular files)
	Link   string // symlink target
	Dir    bool   // a directory
	Mode   int64  // tar mode bits (0o1777 keeps the sticky bit); 0: 0755 dirs, the source's for copies, 0644 data
	Data   string // literal content (when Source is empty and not Dir/Link)
}

// WriteImageTar writes files as a tar archive (paths relative, "./bin/sh"),
// in a stable order: parents before children.
func WriteImageTar(w io.Writer, files []ImageFile) error {
	files = append([]ImageFile(nil), files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	for _, f := range files {
		name := "." + path.Clean(f.Path)
		mode := f.Mode
		hdr := &tar.Header{Name: name, ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case f.Dir:
			if mode == 0 {
				mode = 0o755
			}
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", mode
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case f.Link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Link, 0o777
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
		case f.Source != "":
			if err := copyInto(tw, hdr, f.Source, mode); err != nil {
				return err
			}
		default:
			if mode == 0 {
				mode = 0o644
			}
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, mode, int64(len(f.Data))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, f.Data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func copyInto(tw *tar.Writer, hdr *tar.Header, src string, mode int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("image file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("image file %s is not a regular file", src)
	}
	if mode == 0 {
		mode = int64(fi.Mode().Perm())
	}
	hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, mode, fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("image file %s: %w", src, err)
	}
	return nil
}

// baseDirs are the directories every selftest image has: mount points of
// the volumes, and what jail(8) and the Linux driver expect.
var baseDirs = []string{"/bin", "/usr", "/usr/bin", "/etc", "/tmp", "/dev", "/proc", "/root", "/data", "/hostdata"}

func dirs() []ImageFile {
	var out []ImageFile
	for _, d := range baseDirs {
		mode := int64(0o755)
		if d == "/tmp" {
			mode = 0o1777
		}
		out = append(out, ImageFile{Path: d, Dir: true, Mode: mode})
	}
	return append(out, ImageFile{Path: "/etc/passwd", Data: "root:x:0:0:root:/root:/bin/sh\n"})
}

// Applets are the commands the selftest runs inside its containers.
var Applets = []string{"sh", "sleep", "echo", "cat", "true", "test", "env"}

// BusyboxImage is the Linux selftest image: a static busybox with links for
// the applets (the internal form of scripts/busybox-rootfs.sh).
func BusyboxImage(busybox string) []ImageFile {
	files := append(dirs(), ImageFile{Path: "/bin/busybox", Source: busybox, Mode: 0o755})
	for _, a := range Applets {
		p := "/bin/" + a
		if a == "env" {
			p = "/usr/bin/env"
		}
		files = append(files, ImageFile{Path: p, Link: "/bin/busybox"})
	}
	return files
}

// RescueImage is the FreeBSD selftest image, made from what every FreeBSD
// host has: /rescue, one statically linked crunched binary that acts as
// the program its argv[0] names. Its sh is copied once and every name it
// answers to is a symlink to it; /bin/sh etc. point there. jexec runs
// commands through /usr/bin/env: /rescue's env when there is one, else the
// host's /usr/bin/env with the libraries it needs (libs, absolute paths).
func RescueImage(rescueDir, hostEnv string, libs []string) ([]ImageFile, error) {
	entries, err := os.ReadDir(rescueDir)
	if err != nil {
		return nil, fmt.Errorf("rescue image: %w", err)
	}
	files := append(dirs(), ImageFile{Path: "/rescue", Dir: true},
		ImageFile{Path: "/rescue/sh", Source: path.Join(rescueDir, "sh"), Mode: 0o555})
	have := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		have[n] = true
		if n == "sh" || strings.HasPrefix(n, ".") {
			continue
		}
		files = append(files, ImageFile{Path: "/rescue/" + n, Link: "sh"})
	}
	if !have["sh"] {
		return nil, fmt.Errorf("rescue image: %s has no sh", rescueDir)
	}
	for _, a := range Applets {
		if a == "env" {
			continue
		}
		if !have[a] {
			return nil, fmt.Errorf("rescue image: %s has no %s", rescueDir, a)
		}
		files = append(files, ImageFile{Path: "/bin/" + a, Link: "/rescue/" + a})
	}
	if have["env"] {
		return append(files, ImageFile{Path: "/usr/bin/env", Link: "/rescue/env"}), nil
	}
	files = append(files, ImageFile{Path: "/usr/bin/env", Source: hostEnv, Mode: 0o555},
		ImageFile{Path: "/lib", Dir: true}, ImageFile{Path: "/libexec", Dir: true})
	for _, l := range libs {
		if _, err := os.Stat(l); err != nil {
			continue // libsys.so.7 exists from FreeBSD 15 on
		}
		files = append(files, ImageFile{Path: l, Source: l, Mode: 0o444})
	}
	return files, nil
}
