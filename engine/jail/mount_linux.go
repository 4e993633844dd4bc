//go:build linux

package jail

import "errors"

// mountedAt is FreeBSD's statfs(2) mount-point check. The FreeBSD driver is
// compiled on Linux only so that its command sequences can be tested with a
// recording runner; those tests set FreeBSD.mounted themselves.
func mountedAt(string) (string, bool, error) {
	return "", false, errors.New("mount points are read with FreeBSD's statfs(2); the FreeBSD driver does not run on Linux")
}
