package zfs

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// secureMode is the mode of the mountpoint directories of ROOT and its four
// directories: only root may traverse them. A container's root may make a
// setuid shell in its clone, and an image may ship one; with the default
// 0755 any local user could run it from <mountpoint>/containers/<name>/...
// (review H5). setuid=off is no answer: jails see the same mount. Jails do
// not need the ancestors: their root is entered by root (jail(8) chroots,
// the Linux driver pivots), and paths inside resolve from there.
const secureMode = 0o700

// secureTree sets mode 0700 on the mountpoint directory of ROOT and of
// ROOT/{images,containers,volumes,tmp}, each where it is mounted, and checks
// the result; it runs at every Open, so a mode changed by hand is put back.
// A dataset that is not mounted has no directory to protect.
func (s *Store) secureTree(ctx context.Context) error {
	names := []string{s.root, s.imagesDS(), s.containerDS(""), s.volumeDS(""), s.tmpDS()}
	for i := range names {
		names[i] = strings.TrimSuffix(names[i], "/")
	}
	mps, err := s.mountpoints(ctx, names...)
	if err != nil {
		return err
	}
	for _, ds := range names {
		mp := mps[ds]
		if mp == "" {
			continue
		}
		if err := chmodDir(mp, secureMode); err != nil {
			return fmt.Errorf("protect the mountpoint of %s: %w", ds, err)
		}
	}
	return nil
}

// TmpMountpoint is where ROOT/tmp (every work dataset, every build clone)
// is mounted.
func (s *Store) TmpMountpoint(ctx context.Context) (string, error) {
	mps, err := s.mountpoints(ctx, s.tmpDS())
	if err != nil {
		return "", err
	}
	if mps[s.tmpDS()] == "" {
		return "", fmt.Errorf("%s is not mounted", s.tmpDS())
	}
	return mps[s.tmpDS()], nil
}

// mountpoints returns the mountpoint of each mounted dataset among names
// (one zfs get).
func (s *Store) mountpoints(ctx context.Context, names ...string) (map[string]string, error) {
	argv := append([]string{Bin(), "get", "-H", "-o", "name,property,value", "mountpoint,mounted"}, names...)
	out, err := s.r.Run(ctx, runner.Cmd{Argv: argv, Timeout: CommandTimeout})
	if err != nil {
		return nil, fmt.Errorf("mountpoints under %s: %w", s.root, classify(err))
	}
	mp, mounted := map[string]string{}, map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			continue
		}
		switch f[1] {
		case "mountpoint":
			if strings.HasPrefix(f[2], "/") {
				mp[f[0]] = f[2]
			}
		case "mounted":
			mounted[f[0]] = f[2] == "yes"
		}
	}
	for n := range mp {
		if !mounted[n] {
			delete(mp, n)
		}
	}
	return mp, sc.Err()
}

// chmodDir sets mode on the directory dir itself (never through a symlink)
// and verifies it.
func chmodDir(dir string, mode os.FileMode) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm() != mode {
		if err := os.Chmod(dir, mode); err != nil {
			return err
		}
		if fi, err = os.Lstat(dir); err != nil {
			return err
		}
		if fi.Mode().Perm() != mode {
			return fmt.Errorf("%s: mode is %v after chmod %v", dir, fi.Mode().Perm(), mode)
		}
	}
	return nil
}

// envKeyFile is the name of the env digest key in ROOT's mountpoint.
const envKeyFile = ".zocker-env-key"

// EnvKey returns the host key env values are digested with before they go
// into world-readable properties (reconcile.SetEnvKey). It is 32 random
// bytes in a root-only file in ROOT's own file system (mode 0600 in the
// 0700 root), made on first use with create set: it lives and moves with the
// pool like the rest of the state, and survives reboots (the state
// directory does not). Without create, a missing key is nil.
func (s *Store) EnvKey(ctx context.Context, create bool) ([]byte, error) {
	mp := s.rootMount
	if !s.rootMountRead {
		mps, err := s.mountpoints(ctx, s.root)
		if errors.Is(err, ErrNotFound) && !create {
			return nil, nil // no root yet: nothing was digested with a key
		}
		if err != nil {
			return nil, err
		}
		mp = mps[s.root]
	}
	if mp == "" && !create {
		return nil, nil
	}
	if mp == "" {
		return nil, fmt.Errorf("env key: root dataset %s is not mounted (its file system keeps the key)", s.root)
	}
	p := filepath.Join(mp, envKeyFile)
	key, err := readKey(p)
	if err == nil || !errors.Is(err, os.ErrNotExist) || !create {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return key, err
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if errors.Is(err, os.ErrExist) {
		return readKey(p) // made meanwhile by another command
	}
	if err != nil {
		return nil, fmt.Errorf("env key: %w", err)
	}
	_, werr := f.Write(key)
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(p)
		return nil, fmt.Errorf("env key: %w", werr)
	}
	s.log.Info("created the env digest key", "dataset", s.root, "file", p)
	return key, nil
}

// readKey reads a key file: a regular root-owned file of mode 0600, opened
// without following symlinks.
func readKey(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 || !ok || st.Uid != 0 {
		return nil, fmt.Errorf("env key %s: want a regular file owned by root with mode 0600", p)
	}
	key, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("env key %s: want 32 bytes, has %d", p, len(key))
	}
	return key, nil
}
