//go:build linux || freebsd

package jail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"strings"

	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
)

// jailRecord is what a jail created by the driver put on the host outside
// its root dataset: the nullfs mount points of its fstab, its devfs, and
// the interface aliases jail(8) added. It is written beside the conf at
// create, so that the driver can take these down itself when jail(8) did
// not: a jail removed from outside (`service jail restart` with an empty
// jail_list runs `jail -f /etc/jail.conf -r` on every jail, an admin's
// `jail -r NAME`) leaves them behind, and then our own `jail -f CONF -r`
// only says "not found" and runs none of its stop commands (jail.c main,
// JF_STOP on a jail that is not running).
type jailRecord struct {
	Root string `json:"root"`
	// MountPoints are the fstab targets on the host, in fstab order.
	MountPoints []string     `json:"mountPoints"`
	Addrs       []recordAddr `json:"addrs"`
}

type recordAddr struct {
	Iface  string `json:"iface"`
	Family string `json:"family"` // inet or inet6
	Addr   string `json:"addr"`
}

func (d *FreeBSD) recordPath(name string) string { return path.Join(d.jailsDir(), name+".json") }

// newJailRecord describes what creating s puts on the host.
func newJailRecord(s Spec, loopback string) (jailRecord, error) {
	r := jailRecord{Root: path.Clean(s.Root), MountPoints: []string{}, Addrs: []recordAddr{}}
	for _, m := range s.Mounts {
		r.MountPoints = append(r.MountPoints, MountPoint(s.Root, m.Target))
	}
	iface, host := s.Network.Interface, false
	switch s.Network.Mode {
	case NetLoopback:
		host = true
		if iface == "" {
			iface = loopback
		}
		if iface == "" {
			iface = DefaultLoopbackInterface
		}
	case NetAlias:
	default:
		return r, nil
	}
	for _, a := range s.Network.Addresses {
		p, err := parseAddr(a, host)
		if err != nil {
			return r, err
		}
		fam := "inet"
		if p.Addr().Is6() {
			fam = "inet6"
		}
		r.Addrs = append(r.Addrs, recordAddr{Iface: iface, Family: fam, Addr: p.Addr().String()})
	}
	return r, nil
}

func (d *FreeBSD) readRecord(name string) (jailRecord, bool, error) {
	var r jailRecord
	data, err := os.ReadFile(d.recordPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &r)
	}
	if err != nil {
		return r, false, fmt.Errorf("read record of jail %s: %w", name, err)
	}
	return r, true, nil
}

// jailRunning asks `jls -j NAME jid`: false when jls answers "not found".
func (d *FreeBSD) jailRunning(ctx context.Context, name string) (bool, error) {
	_, err := d.run.Run(ctx, runner.Cmd{Argv: JLSOneArgv(name)})
	if err == nil {
		return true, nil
	}
	var ce *runner.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "not found") {
		return false, nil
	}
	return false, fmt.Errorf("look up jail %s: %w", name, err)
}

// sweep takes down what the record of a jail that is no longer running
// describes and is still there: its nullfs mounts (deepest first, as
// jail(8) does), its devfs, its address aliases. Until they are gone the
// container's dataset cannot be unmounted or destroyed ("a filesystem with
// another filesystem mounted below it"), and a new jail would mount a
// second layer over the leaked one. Only mounts of the expected type
// exactly at the recorded paths are touched.
func (d *FreeBSD) sweep(ctx context.Context, name string) error {
	r, ok, err := d.readRecord(name)
	if err != nil || !ok {
		return err
	}
	log := d.log.With("container", name, "action", "sweep")
	type mnt struct{ at, fstype string }
	var mounts []mnt
	for i := len(r.MountPoints) - 1; i >= 0; i-- {
		mounts = append(mounts, mnt{r.MountPoints[i], "nullfs"})
	}
	mounts = append(mounts, mnt{path.Join(r.Root, "dev"), "devfs"})
	var errs []error
	for _, m := range mounts {
		fstype, on, err := d.mounted(m.at)
		if err == nil && on && fstype == m.fstype {
			log.Warn("unmounting what the vanished jail left", "path", m.at)
			if _, err = d.run.Run(ctx, runner.Cmd{Argv: []string{UmountPath, m.at}}); err == nil {
				// Success only when it is really gone (a busy file system
				// stays, and blocks zfs destroy of the container).
				if fstype, on, err = d.mounted(m.at); err == nil && on && fstype == m.fstype {
					err = errors.New("still mounted")
				}
			}
			if err != nil {
				err = fmt.Errorf("unmount %s: %w", m.at, err)
			}
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, a := range r.Addrs {
		have, err := d.hasAddr(a.Iface, a.Addr)
		if err != nil || !have {
			// An interface that is gone took its aliases with it.
			continue
		}
		log.Warn("removing the address alias the vanished jail left", "address", a.Iface+" "+a.Addr)
		if _, err := d.run.Run(ctx, runner.Cmd{Argv: []string{IfconfigPath, a.Iface, a.Family, a.Addr, "-alias"}}); err != nil {
			errs = append(errs, fmt.Errorf("remove address %s from %s: %w", a.Addr, a.Iface, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep jail %s: %w", name, err)
	}
	return nil
}

// ifaceHasAddr reports whether iface carries addr (getifaddrs through the
// net package; no command). A missing interface has no address.
func ifaceHasAddr(iface, addr string) (bool, error) {
	want, err := netip.ParseAddr(addr)
	if err != nil {
		return false, err
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return false, nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", iface, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if got, ok := netip.AddrFromSlice(n.IP); ok && got.Unmap() == want {
				return true, nil
			}
		}
	}
	return false, nil
}
