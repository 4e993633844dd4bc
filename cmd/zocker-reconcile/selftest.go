package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/reconcile"
	"github.com/zocker-reconcile/zocker-reconcile/service"
	"github.com/zocker-reconcile/zocker-reconcile/smoke"
)

// selftestPool is where selftest containers get loopback addresses: apart
// from the service's pool, so that a selftest never takes (and, removing
// its jail, never drops) an address a service container holds.
const selftestPool = "127.0.254.0/24"

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			keep          bool
			image, report string
			output        string
			loopbackIface string
			aliasIface    string
			aliasAddr     string
		)
		cmd := &cobra.Command{
			Use:   "selftest",
			Short: "Prove this host runs containers: a throwaway root, every feature, a report",
			Long: `selftest makes a throwaway root (ROOT/selftest-ID) and state directory
(STATE/selftest-ID), imports a tiny image and runs the real reconcile path —
the same engine, supervisors and jail driver as serve — through: a container
in each network mode (inherit, none, loopback; alias with --alias-interface and
--alias-address), exec, a hostPath and a
managed volume, a memory and process limit, a health check, a restart after
SIGKILL, stop, prune; then it destroys everything it made and checks that
nothing is left.

The image: on FreeBSD, by default, /rescue (statically linked, on every host)
copied into the image; --image PATH|URL takes a base.txz or any root
filesystem tarball instead. On Linux, the static busybox.

It prints a report: each step with its duration, and the raw material it
parsed or generated (the jail configuration, jls and rctl output, statuses).
Attach it to a bug report (--report FILE writes it to a file too).

A selftest killed half-way is cleaned up by the next selftest or serve start.
--keep leaves the containers running after the restart step for a look.

Exit status: 0 when every step passed, 1 otherwise.`,
			Example: `  zocker-reconcile selftest
  zocker-reconcile selftest --image /var/cache/zocker/base.txz --report /tmp/selftest.txt`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if output != "text" && output != "json" {
					return fmt.Errorf("-o %q: want text or json", output)
				}
				log, err := g.logger()
				if err != nil {
					return err
				}
				var alias *smoke.Alias
				if (aliasIface == "") != (aliasAddr == "") {
					return fmt.Errorf("--alias-interface and --alias-address go together")
				}
				if aliasIface != "" {
					alias = &smoke.Alias{Interface: aliasIface, Address: aliasAddr}
				}
				rep, err := runSelftest(cmd.Context(), g, log, keep, image, loopbackIface, alias)
				if err != nil {
					return err
				}
				var w io.Writer = g.stdout
				if report != "" {
					f, err := os.OpenFile(report, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
					if err != nil {
						return err
					}
					defer f.Close()
					w = io.MultiWriter(g.stdout, f)
				}
				if output == "json" {
					enc := json.NewEncoder(w)
					enc.SetIndent("", "  ")
					err = enc.Encode(rep)
				} else {
					smoke.Format(w, rep, fmt.Sprintf("zocker-reconcile selftest %s (%s), %s/%s, %s",
						version, commit, runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339)))
				}
				if err != nil {
					return err
				}
				if !rep.Passed {
					return withCode(1, nil)
				}
				return nil
			},
		}
		fl := cmd.Flags()
		fl.BoolVar(&keep, "keep", false, "leave the containers running after the restart step (the next selftest or serve start removes them)")
		fl.StringVar(&image, "image", "", "a root filesystem tarball (path or https URL) instead of the built-in image")
		fl.StringVar(&report, "report", "", "also write the report to this file")
		fl.StringVarP(&output, "output", "o", "text", "text or json")
		fl.StringVar(&loopbackIface, "loopback-interface", "lo0", "FreeBSD: the interface that carries loopback addresses")
		fl.StringVar(&aliasIface, "alias-interface", "", "also test alias mode: a container with --alias-address on this host interface (e.g. em0)")
		fl.StringVar(&aliasAddr, "alias-address", "", "the alias-mode container's address, ADDR/PREFIX, free on that network")
		return cmd
	})
}

// runSelftest prepares a run (lock, leftovers of killed runs, the image, an
// engine on the throwaway root) and runs it; progress goes to stderr.
func runSelftest(ctx context.Context, g *globals, log *slog.Logger, keep bool, image, loopbackIface string, alias *smoke.Alias) (*smoke.Report, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if newSupervisorDriver == nil {
		return nil, fmt.Errorf("no jail driver on this system")
	}
	r := &runner.Exec{Logger: log}
	// The parent root is what serve would create; the run's root goes below.
	if err := os.MkdirAll(g.stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	if _, err := zfs.OpenShared(ctx, g.root, r, log); err != nil {
		return nil, err
	}
	if cleaned, err := cleanupSelftests(ctx, g, log); err != nil {
		log.Warn("clean up interrupted selftests", "err", err)
	} else if len(cleaned) > 0 {
		fmt.Fprintf(g.stderr, "removed the leftovers of interrupted selftests %s\n", strings.Join(cleaned, ", "))
	}
	id := smoke.NewID()
	release, err := smoke.Lock(g.stateDir, id)
	if err != nil {
		return nil, err
	}
	defer release()
	stateDir := filepath.Join(g.stateDir, smoke.Prefix+id)
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, err
	}
	tarball, err := selftestImage(ctx, stateDir, image)
	if err != nil {
		os.RemoveAll(stateDir)
		return nil, err
	}
	sg := *g
	sg.root, sg.stateDir = g.root+"/"+smoke.Prefix+id, stateDir
	f := reconcileFlags{loopbackPool: selftestPool, loopbackInterface: loopbackIface, pullInterval: service.DefaultPullInterval}
	eng, err := newEngine(ctx, &sg, &f, log, shared)
	if err != nil {
		os.RemoveAll(stateDir)
		return nil, err
	}
	loader := newLoader(&f, log, eng)
	limits := false
	if lr, ok := eng.Driver.(interface{ LimitsEnforced() (bool, string) }); ok {
		limits, _ = lr.LimitsEnforced()
	}
	var raw func(context.Context, []string) []smoke.Artifact
	if runtime.GOOS == "freebsd" {
		raw = smoke.FreeBSDRaw(r)
	}
	fmt.Fprintf(g.stderr, "selftest %s: root %s, state %s\n", id, sg.root, stateDir)
	return smoke.Run(ctx, smoke.Config{
		ID: id, Root: sg.root, StateDir: stateDir, Image: tarball, Engine: eng,
		Load: func(ctx context.Context, dir string) (reconcile.Desired, error) {
			if _, err := eng.Observe(ctx); err != nil {
				return reconcile.Desired{}, err
			}
			return loader.Load(ctx, dir)
		},
		Run: r, ZFS: zfs.Bin(), Raw: raw, Limits: limits, Keep: keep, Progress: g.stderr, Log: log, Alias: alias,
	}), nil
}

// cleanupSelftests removes what interrupted selftests left (serve start and
// every selftest run it).
func cleanupSelftests(ctx context.Context, g *globals, log *slog.Logger) ([]string, error) {
	if newSupervisorDriver == nil {
		return nil, nil
	}
	return smoke.Cleanup(ctx, g.root, g.stateDir, func(stateDir string) (jail.Driver, error) {
		return newSupervisorDriver(stateDir, superviseOptions{}, log)
	}, &runner.Exec{Logger: log}, zfs.Bin(), log)
}

// selftestImage writes the tiny image's tarball into dir, or fetches
// --image when it is a URL; a path is used as it is.
func selftestImage(ctx context.Context, dir, image string) (string, error) {
	switch {
	case strings.HasPrefix(image, "https://"):
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, image, nil)
		if err != nil {
			return "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", fmt.Errorf("fetch --image: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("fetch --image %s: %s", image, resp.Status)
		}
		p := filepath.Join(dir, "image.tar")
		return p, writeFile(p, func(w io.Writer) error { _, err := io.Copy(w, resp.Body); return err })
	case image != "":
		if !filepath.IsAbs(image) {
			return "", fmt.Errorf("--image %q: want an absolute path or an https URL", image)
		}
		return image, nil
	}
	files, err := builtinImage()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "image.tar")
	return p, writeFile(p, func(w io.Writer) error { return smoke.WriteImageTar(w, files) })
}

func builtinImage() ([]smoke.ImageFile, error) {
	if runtime.GOOS == "freebsd" {
		return smoke.FreeBSDImage()
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		bb = "/bin/busybox"
	}
	if _, err := os.Stat(bb); err != nil {
		return nil, fmt.Errorf("selftest image: no busybox (apt-get install busybox-static): %w", err)
	}
	return smoke.BusyboxImage(bb), nil
}

func writeFile(p string, fill func(io.Writer) error) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	return f.Close()
}
