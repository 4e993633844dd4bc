// Package atomicfile writes local files so that a reader sees either the
// old content or the new, never a half-written file: the state, pid, status
// and config files the supervisors and jail drivers share with other
// processes, and the jail.conf and fstab jail(8) reads.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write writes data to path with mode through a temporary file in the same
// directory (a unique name, so concurrent writers cannot clobber each
// other's temporary file), synced, then renamed over path. The temporary
// file is removed on failure.
func Write(path string, data []byte, mode os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	// CreateTemp makes the file 0600 whatever the umask: set the mode asked.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
