package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/sftp"
)

// fsys is the little a repository needs from where it is stored: a local
// directory or an SFTP server. Paths are slash-separated and relative to the
// repository directory.
type fsys interface {
	Open(name string) (io.ReadCloser, error)
	// Create creates (truncating) a file to be written, for temporary names only.
	Create(name string) (syncWriter, error)
	// Rename replaces to with from in one step.
	Rename(from, to string) error
	Remove(name string) error
	MkdirAll(name string) error
	ReadDir(name string) ([]fs.FileInfo, error)
	Stat(name string) (fs.FileInfo, error)
	Close() error
}

// syncWriter is a file being written: Sync makes it durable before the rename
// that publishes it.
type syncWriter interface {
	io.WriteCloser
	Sync() error
}

// dirFS is a repository in a local (or NFS-mounted) directory. Whoever
// can write into it is as untrusted as a remote repository (review M5):
// every access goes through an os.Root opened on the directory, so no path
// (a symlinked tags/<tag>, images/<id>, a symlinked directory) leads out of
// it, for reading or for writing; files are opened without following a
// final symlink and non-blocking, and only regular files are read (a FIFO
// would hang the caller, a device or /proc file would be read as root).
type dirFS struct{ root string }

func (d dirFS) open() (*os.Root, error) { return os.OpenRoot(d.root) }

// ErrNotRegular is returned (wrapped) for a repository file that is not a
// regular file. Compare with errors.Is.
var ErrNotRegular = errors.New("not a regular file")

func (d dirFS) Open(name string) (io.ReadCloser, error) {
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (d dirFS) Create(name string) (syncWriter, error) {
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	// Only temporary names are created: a new file, never one planted.
	return r.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
}

func (d dirFS) Rename(from, to string) error {
	r, err := d.open()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Rename(filepath.FromSlash(from), filepath.FromSlash(to))
}

func (d dirFS) Remove(name string) error {
	r, err := d.open()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Remove(filepath.FromSlash(name))
}

func (d dirFS) MkdirAll(name string) error {
	// The repository directory itself is the administrator's (a URL given
	// to the command or in a manifest): made as named.
	if err := os.MkdirAll(d.root, 0o755); err != nil {
		return err
	}
	r, err := d.open()
	if err != nil {
		return err
	}
	defer r.Close()
	return r.MkdirAll(filepath.FromSlash(name), 0o755)
}

func (d dirFS) Stat(name string) (fs.FileInfo, error) {
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Lstat(filepath.FromSlash(name))
}

func (d dirFS) ReadDir(name string) ([]fs.FileInfo, error) {
	r, err := d.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	ents, err := fs.ReadDir(r.FS(), name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	return out, nil
}
func (d dirFS) Close() error { return nil }

// sftpFS is a repository on an SSH server, spoken to over the system ssh
// client's SFTP subsystem.
type sftpFS struct {
	c    *sftp.Client
	root string
	cmd  *exec.Cmd
	// posixRename is true when the server offers posix-rename@openssh.com,
	// the atomic replacing rename.
	posixRename bool
	stderr      *tailBuffer
}

// dialSFTP starts `ssh -s [-p PORT] [-l USER] -- HOST sftp` and runs an SFTP
// client on its pipes.
func dialSFTP(ctx context.Context, loc Location, sshCommand []string, log *slog.Logger) (*sftpFS, error) {
	argv := loc.sshArgv(sshCommand)
	log.Debug("exec", "argv", argv)
	// The connection lives as long as the repository handle, not the
	// context of one call: Close ends it.
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	tb := &tailBuffer{max: 4096}
	cmd.Stderr = tb
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("connect to repository %s: start %s: %w", loc, argv[0], err)
	}
	type result struct {
		c   *sftp.Client
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := sftp.NewClientPipe(stdout, stdin, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
		done <- result{c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("connect to repository %s: %w", loc, ctx.Err())
	}
	if r.err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("connect to repository %s: %s: %w", loc, strings.TrimSpace(tb.String()), r.err)
	}
	_, ok := r.c.HasExtension("posix-rename@openssh.com")
	return &sftpFS{c: r.c, root: loc.Path, cmd: cmd, posixRename: ok, stderr: tb}, nil
}

func (s *sftpFS) p(name string) string {
	if s.root == "" {
		return name
	}
	return path.Join(s.root, name)
}

func (s *sftpFS) Open(name string) (io.ReadCloser, error) {
	f, err := s.c.Open(s.p(name))
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (s *sftpFS) Create(name string) (syncWriter, error) {
	f, err := s.c.OpenFile(s.p(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, err
	}
	return sftpFile{f}, nil
}

// sftpFile syncs through fsync@openssh.com where the server has it; a server
// without it gives what its close gives.
type sftpFile struct{ *sftp.File }

func (f sftpFile) Sync() error {
	err := f.File.Sync()
	var se *sftp.StatusError
	if errors.As(err, &se) && se.FxCode() == sftp.ErrSSHFxOpUnsupported {
		return nil
	}
	return err
}

func (s *sftpFS) Rename(from, to string) error {
	if s.posixRename {
		return s.c.PosixRename(s.p(from), s.p(to))
	}
	// Plain SFTP rename refuses an existing target: remove it first. A reader
	// may then briefly see no file, never half of one.
	if err := s.c.Remove(s.p(to)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.c.Rename(s.p(from), s.p(to))
}

func (s *sftpFS) Remove(name string) error {
	err := s.c.Remove(s.p(name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Remove of a directory needs rmdir on some servers.
		if fi, serr := s.c.Stat(s.p(name)); serr == nil && fi.IsDir() {
			return s.c.RemoveDirectory(s.p(name))
		}
	}
	return err
}

func (s *sftpFS) MkdirAll(name string) error                 { return s.c.MkdirAll(s.p(name)) }
func (s *sftpFS) ReadDir(name string) ([]fs.FileInfo, error) { return s.c.ReadDir(s.p(name)) }
func (s *sftpFS) Stat(name string) (fs.FileInfo, error)      { return s.c.Stat(s.p(name)) }

func (s *sftpFS) Close() error {
	err := s.c.Close()
	// Closing the client closes ssh's stdin; ssh then exits.
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	return err
}

// tailBuffer keeps the last max bytes of ssh's stderr for error messages.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// tmpName returns a temporary name beside name: same directory, so the
// rename stays within one directory (atomic on every filesystem).
func tmpName(name string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	dir, base := path.Split(name)
	return dir + ".tmp-" + base + "-" + hex.EncodeToString(b[:])
}

// isTmp reports whether a directory entry is a temporary file of a write in
// progress or an interrupted one.
func isTmp(base string) bool { return strings.HasPrefix(base, ".tmp-") }

// writeAtomic writes name under a temporary name, syncs it and renames it
// into place: a reader sees the old file or the whole new one, never a part.
// The temporary file is removed on failure.
func writeAtomic(f fsys, name string, fill func(io.Writer) error) (err error) {
	tmp := tmpName(name)
	w, err := f.Create(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			_ = w.Close()
			_ = f.Remove(tmp)
		}
	}()
	if err = fill(w); err != nil {
		return err
	}
	if err = w.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = w.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = f.Rename(tmp, name); err != nil {
		return fmt.Errorf("rename %s to %s: %w", tmp, name, err)
	}
	return nil
}
