package build

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// maxSmallFile bounds a Zockerfile and a .zockerignore.
const maxSmallFile = 1 << 20

// readSmallFile reads a regular file of at most max bytes: opened
// non-blocking and checked by descriptor, so a FIFO, /dev/zero or a socket
// named as a Zockerfile or .zockerignore is an error, not a hang or an
// endless read (review L8). It follows symlinks: build inputs are the
// manifest author's, who is trusted.
func readSmallFile(p string, max int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", p, max)
	}
	return data, nil
}
