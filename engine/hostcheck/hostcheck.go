// Package hostcheck is what `zocker-reconcile doctor` runs: checks of the
// host that change nothing, each giving ok, warn or fail with the fix. The
// checks common to every OS are here and tested everywhere; the FreeBSD and
// Linux ones are in hostcheck_freebsd.go and hostcheck_linux.go, built from
// the portable pieces below so that their logic is tested on Linux too.
package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/manifests"
)

// Status is a check's verdict: fail makes doctor exit 1, warn does not.
type Status string

// The three verdicts.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Result is one check's line.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Seconds is how long the check took.
	Seconds float64 `json:"seconds"`
}

// Options say what the service would use: the same flags as serve.
type Options struct {
	Root              string
	Manifests         string
	Listen            string
	LoopbackInterface string
	LoopbackPool      netip.Prefix
	InsecureManifests bool
	// ZFS is the zfs command (/sbin/zfs on FreeBSD, zfs from PATH on Linux).
	ZFS string
}

// Host is what the checks read the machine through; tests replace parts.
type Host struct {
	Run  runner.Runner
	Stat func(string) (fs.FileInfo, error)
	// Listen tries to bind an address (then closes it).
	Listen func(network, addr string) (net.Listener, error)
	// Dial tests TCP reachability (ssh repositories).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	HTTP *http.Client
	// IfaceAddrs lists an interface's addresses; an error means it does not exist.
	IfaceAddrs func(iface string) ([]netip.Addr, error)
	// ReadFile reads small host files (/proc, sysctl-like files on Linux).
	ReadFile func(string) ([]byte, error)
	// Glob lists paths (process scans on Linux).
	Glob func(string) ([]string, error)
}

// NewHost returns the real host.
func NewHost(r runner.Runner) *Host {
	d := &net.Dialer{}
	return &Host{
		Run:    r,
		Stat:   os.Stat,
		Listen: net.Listen,
		Dial:   d.DialContext,
		HTTP:   &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		IfaceAddrs: func(name string) ([]netip.Addr, error) {
			ifi, err := net.InterfaceByName(name)
			if err != nil {
				return nil, err
			}
			addrs, err := ifi.Addrs()
			if err != nil {
				return nil, err
			}
			var out []netip.Addr
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok {
						out = append(out, ip.Unmap())
					}
				}
			}
			return out, nil
		},
		ReadFile: os.ReadFile,
		Glob:     filepath.Glob,
	}
}

// Check is one named check.
type Check struct {
	Name string
	Run  func(ctx context.Context) Result
}

// Run runs the checks in order, each with its own deadline.
func Run(ctx context.Context, checks []Check) []Result {
	out := make([]Result, 0, len(checks))
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		r := c.Run(cctx)
		cancel()
		r.Check = c.Name
		r.Seconds = time.Since(start).Seconds()
		out = append(out, r)
	}
	return out
}

// Failed reports whether any result failed.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// Format renders results one line each: "ok   check: detail" and, for warn
// and fail, "     fix: ..." below.
func Format(w io.Writer, rs []Result) {
	for _, r := range rs {
		fmt.Fprintf(w, "%-4s %s: %s\n", r.Status, r.Check, r.Detail)
		if r.Fix != "" && r.Status != OK {
			fmt.Fprintf(w, "     fix: %s\n", r.Fix)
		}
	}
}

func ok(format string, a ...any) Result { return Result{Status: OK, Detail: fmt.Sprintf(format, a...)} }
func warn(fix, format string, a ...any) Result {
	return Result{Status: Warn, Detail: fmt.Sprintf(format, a...), Fix: fix}
}
func fail(fix, format string, a ...any) Result {
	return Result{Status: Fail, Detail: fmt.Sprintf(format, a...), Fix: fix}
}

// hungZFS is the fix when zfs does not answer in time.
const hungZFS = "zfs is hung or overloaded: see whether `zpool list` answers; on the Linux substrate, zfs-fuse may need a restart"

// timedOut reports whether a command ran out of time.
func timedOut(err error) bool { return errors.Is(err, context.DeadlineExceeded) }

// stderrOf is the first line of a failed command's stderr (doctor prints
// one line per check), else the error text.
func stderrOf(err error) string {
	var ce *runner.CommandError
	if errors.As(err, &ce) && strings.TrimSpace(ce.Stderr) != "" {
		first, _, _ := strings.Cut(strings.TrimSpace(ce.Stderr), "\n")
		return first
	}
	return err.Error()
}

// Common returns the checks every OS runs, in the order doctor prints them
// after the OS-specific ones: the root dataset, the manifests and their
// image sources, the listen address.
func Common(o Options, h *Host) []Check {
	return []Check{
		{"root dataset " + o.Root, func(ctx context.Context) Result { return RootDataset(ctx, o, h) }},
		{"manifests " + o.Manifests, func(ctx context.Context) Result { return ManifestDir(o) }},
		{"image sources", func(ctx context.Context) Result { return ImageSources(ctx, o, h) }},
		{"listen address " + o.Listen, func(ctx context.Context) Result { return ListenAddress(o.Listen, h) }},
	}
}

// minFree is below what doctor warns about free space in the pool.
const minFree = 1 << 30

// RootDataset: the root exists and is ours (zocker:managed, kind root), or
// is empty, or is missing in an existing pool (the service creates it);
// and the pool has space.
func RootDataset(ctx context.Context, o Options, h *Host) Result {
	pool := strings.SplitN(o.Root, "/", 2)[0]
	out, err := h.Run.Run(ctx, runner.Cmd{Argv: []string{o.ZFS, "get", "-H", "-p", "-o", "name,property,value",
		"type,available,zocker:managed,zocker:kind", pool}})
	if timedOut(err) {
		return fail(hungZFS, "pool %s: zfs did not answer: %v", pool, err)
	}
	if err != nil {
		return fail("create the pool, or give --root a dataset in an existing pool (zpool list)",
			"pool %s: %s", pool, stderrOf(err))
	}
	avail := parseGet(out)[pool]["available"]
	out, err = h.Run.Run(ctx, runner.Cmd{Argv: []string{o.ZFS, "get", "-H", "-p", "-r", "-o", "name,property,value",
		"type,available,zocker:managed,zocker:kind", o.Root}})
	if err != nil {
		if strings.Contains(stderrOf(err), "does not exist") {
			return spaceVerdict(avail, ok("%s does not exist yet: the service creates it in pool %s", o.Root, pool))
		}
		return fail("check that zfs works: zfs list "+o.Root, "%s: %s", o.Root, stderrOf(err))
	}
	recs := parseGet(out)
	root := recs[o.Root]
	if v := root["available"]; v != "" {
		avail = v
	}
	if root["zocker:managed"] == "true" && root["zocker:kind"] == "root" {
		n := 0
		for name, r := range recs {
			if strings.Count(name, "/") > strings.Count(o.Root, "/")+1 && r["type"] == "filesystem" {
				n++
			}
		}
		return spaceVerdict(avail, ok("zocker-reconcile's root, %d images/containers/volumes", n))
	}
	for name, r := range recs {
		if name != o.Root && r["type"] != "snapshot" {
			return fail("choose another --root, or empty "+o.Root,
				"%s exists, is not zocker-reconcile's (no zocker:managed) and is not empty (%s)", o.Root, name)
		}
	}
	return spaceVerdict(avail, ok("%s exists and is empty: the service adopts it", o.Root))
}

func spaceVerdict(avail string, r Result) Result {
	n, err := strconv.ParseInt(avail, 10, 64)
	if err != nil || n >= minFree {
		if err == nil {
			r.Detail += fmt.Sprintf("; %s free", human(n))
		}
		return r
	}
	return warn("free space in the pool (images and containers are datasets in it)",
		"%s; only %s free", r.Detail, human(n))
}

// human prints a free-space figure in GiB, the unit pools are sized in.
func human(n int64) string { return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30)) }

// parseGet reads `zfs get -H -p -o name,property,value` output.
func parseGet(out []byte) map[string]map[string]string {
	recs := map[string]map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		if recs[f[0]] == nil {
			recs[f[0]] = map[string]string{}
		}
		if f[2] != "-" {
			recs[f[0]][f[1]] = f[2]
		}
	}
	return recs
}

// ManifestDir loads the manifests as the service would: a directory (or a
// file or ancestor) others may write is a failure (the StrictModes rule:
// whoever writes a manifest runs anything as root); invalid files are a
// warning (the service isolates them).
func ManifestDir(o Options) Result {
	set, err := manifests.Load(o.Manifests, manifests.LoadOptions{Insecure: o.InsecureManifests})
	if err != nil {
		return fail("see the message; --insecure-manifests skips the ownership checks", "%v", err)
	}
	if set.Missing {
		return warn("mkdir -m 0755 "+o.Manifests+" and put manifests in it",
			"%s does not exist: the service would declare nothing (and prune nothing)", o.Manifests)
	}
	var insecure, other []string
	for _, p := range set.Problems {
		if !p.IsError() {
			continue
		}
		if strings.Contains(p.Message, "insecure") {
			insecure = append(insecure, p.String())
		} else {
			other = append(other, p.String())
		}
	}
	if len(insecure) > 0 {
		return fail("chmod go-w and chown root the files and directories named (whoever can write a manifest can run anything as root)",
			"%d insecure: %s", len(insecure), strings.Join(insecure, "; "))
	}
	n := len(set.Images) + len(set.Containers) + len(set.Volumes)
	if len(other) > 0 {
		return warn("zocker-reconcile validate "+o.Manifests,
			"%d objects, %d files with errors (their objects keep their last applied spec): %s", n, len(other), other[0])
	}
	return ok("%d files, %d objects, owned by root and not writable by others", len(set.Files), n)
}

// ImageSources checks that every declared Image's source can be reached:
// the tarball file exists, the URL answers, the build context is a
// directory, the repository's host answers (ssh) or its directory exists.
func ImageSources(ctx context.Context, o Options, h *Host) Result {
	set, err := manifests.Load(o.Manifests, manifests.LoadOptions{Insecure: true})
	if err != nil || set.Missing {
		return warn("", "no manifests to check")
	}
	names := make([]string, 0, len(set.Images))
	for n := range set.Images {
		names = append(names, n)
	}
	sort.Strings(names)
	var bad []string
	for _, n := range names {
		if err := imageSource(ctx, set.Images[n].Spec, h); err != nil {
			bad = append(bad, fmt.Sprintf("Image/%s: %v", n, err))
		}
	}
	if len(bad) > 0 {
		return fail("fetch or create the sources named (see the README for base.txz), or fix the manifests", "%s", strings.Join(bad, "; "))
	}
	return ok("%d images, every source reachable", len(names))
}

func imageSource(ctx context.Context, s manifests.ImageSpec, h *Host) error {
	switch {
	case s.Tarball != nil && s.Tarball.Path != "":
		fi, err := h.Stat(s.Tarball.Path)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", s.Tarball.Path)
		}
	case s.Tarball != nil:
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.Tarball.URL, nil)
		if err != nil {
			return err
		}
		resp, err := h.HTTP.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 400 {
			return fmt.Errorf("%s: %s", s.Tarball.URL, resp.Status)
		}
	case s.Build != nil:
		fi, err := h.Stat(s.Build.Context)
		if err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("build context %s is not a directory", s.Build.Context)
		}
	case s.OCI != nil && s.OCI.Archive != "":
		if _, err := h.Stat(s.OCI.Archive); err != nil {
			return err
		}
	case s.OCI != nil:
		c, err := h.Dial(ctx, "tcp", registryAddr(s.OCI.Ref, s.OCI.Insecure))
		if err != nil {
			return err
		}
		c.Close()
	case s.Pull != nil:
		u, err := url.Parse(s.Pull.Repository)
		if err != nil {
			return err
		}
		switch u.Scheme {
		case "file":
			if _, err := h.Stat(u.Path); err != nil {
				return err
			}
		case "ssh":
			port := u.Port()
			if port == "" {
				port = "22"
			}
			c, err := h.Dial(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
			if err != nil {
				return err
			}
			c.Close()
		}
	}
	return nil
}

// registryAddr is host:port of an OCI reference's registry: the first
// path element when it looks like a host (a dot, a port, localhost), else
// Docker Hub's.
func registryAddr(ref string, insecure bool) string {
	host, _, found := strings.Cut(ref, "/")
	if !found || !strings.ContainsAny(host, ".:") && host != "localhost" {
		host = "registry-1.docker.io"
	}
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if insecure {
		return net.JoinHostPort(host, "80")
	}
	return net.JoinHostPort(host, "443")
}

// ListenAddress: the service's address is free, or answered by a running
// zocker-reconcile (its / page starts with its name).
func ListenAddress(addr string, h *Host) Result {
	l, err := h.Listen("tcp", addr)
	if err == nil {
		l.Close()
		return ok("free")
	}
	resp, herr := h.HTTP.Get("http://" + addr + "/")
	if herr == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
		resp.Body.Close()
		if strings.HasPrefix(string(body), "zocker-reconcile\n") {
			return ok("in use by a running zocker-reconcile")
		}
	}
	return fail("stop what listens there, or give serve another --listen (rc.conf: zocker_reconcile_listen)",
		"in use by another program: %v", err)
}

// LoopbackPool: the interface exists and carries no address of the pool
// that is not a running jail's (a foreign address would collide with one
// the service allocates).
func LoopbackPool(iface string, pool netip.Prefix, jails []jail.Info, h *Host) Result {
	addrs, err := h.IfaceAddrs(iface)
	if err != nil {
		return fail("create it (ifconfig "+iface+" create; cloned_interfaces in rc.conf) or give --loopback-interface",
			"interface %s: %v", iface, err)
	}
	ours := map[netip.Addr]bool{}
	for _, j := range jails {
		for _, a := range j.Addrs {
			if p, err := netip.ParseAddr(a); err == nil {
				ours[p.Unmap()] = true
			}
		}
	}
	var foreign []string
	for _, a := range addrs {
		if pool.Contains(a) && !ours[a] {
			foreign = append(foreign, a.String())
		}
	}
	if len(foreign) > 0 {
		return warn("remove them (ifconfig "+iface+" inet ADDR -alias) or choose another --loopback-pool",
			"%s carries %s from the pool %s, used by no running jail", iface, strings.Join(foreign, ", "), pool)
	}
	return ok("%s exists; no foreign address in %s", iface, pool)
}

// Tools: each absolute path exists and is executable.
func Tools(paths []string, h *Host) Result {
	var missing []string
	for _, p := range paths {
		fi, err := h.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fail("install the FreeBSD base system pieces named (they come with a standard install)",
			"missing or not executable: %s", strings.Join(missing, ", "))
	}
	return ok("%s", strings.Join(paths, " "))
}
