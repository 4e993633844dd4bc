package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"github.com/zocker-reconcile/zocker-reconcile/engine/hostcheck"
	"github.com/zocker-reconcile/zocker-reconcile/engine/jail"
	"github.com/zocker-reconcile/zocker-reconcile/engine/runner"
	"github.com/zocker-reconcile/zocker-reconcile/engine/zfs"
	"github.com/zocker-reconcile/zocker-reconcile/metrics/httpapi"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var (
			output, listen, loopIface, loopPool string
			insecure                            bool
		)
		cmd := &cobra.Command{
			Use:   "doctor",
			Short: "Check this host for what the service needs, changing nothing",
			Long: `doctor checks the host without changing it and prints one line per check,
ok, warn or fail, with the fix under each warn and fail.

On FreeBSD: the release; zfs, jail, jexec, jls, rctl, mount_nullfs (by
absolute path); kern.racct.enable; devfs ruleset 4; the loopback interface and
the loopback pool free of foreign addresses; the rc.d script installed and
enabled. On Linux (the test substrate): zfs-fuse running, the zfs adapter on
PATH, namespaces, cgroups. Everywhere: the root dataset (ours, or empty, or
missing in an existing pool) and free space; the manifest directory's
ownership and modes; every Image's source reachable; the listen address free
or answered by a running zocker-reconcile.

Exit status: 0 when nothing failed (warnings allowed), 1 otherwise.`,
			Example: `  zocker-reconcile doctor
  zocker-reconcile doctor -o json --root tank/zocker`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if output != "text" && output != "json" {
					return fmt.Errorf("-o %q: want text or json", output)
				}
				pool, err := netip.ParsePrefix(loopPool)
				if err != nil {
					return fmt.Errorf("--loopback-pool %q: %w", loopPool, err)
				}
				log, err := g.logger()
				if err != nil {
					return err
				}
				o := hostcheck.Options{Root: g.root, Manifests: g.manifests, Listen: listen,
					LoopbackInterface: loopIface, LoopbackPool: pool, InsecureManifests: insecure, ZFS: zfs.Bin()}
				h := hostcheck.NewHost(&runner.Exec{Logger: log})
				checks := append(hostcheck.OSChecks(o, h), hostcheck.Common(o, h)...)
				results := hostcheck.Run(cmd.Context(), checks)
				if output == "json" {
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					if err := enc.Encode(map[string]any{"failed": hostcheck.Failed(results), "checks": results}); err != nil {
						return err
					}
				} else {
					hostcheck.Format(g.stdout, results)
				}
				if hostcheck.Failed(results) {
					return withCode(1, nil)
				}
				return nil
			},
		}
		fl := cmd.Flags()
		fl.StringVarP(&output, "output", "o", "text", "text or json")
		fl.StringVar(&listen, "listen", envOr("ZOCKER_LISTEN", httpapi.DefaultListen), "the service's --listen address (env ZOCKER_LISTEN)")
		fl.StringVar(&loopIface, "loopback-interface", "lo0", "FreeBSD: the interface that carries loopback addresses")
		fl.StringVar(&loopPool, "loopback-pool", jail.DefaultLoopbackPool.String(), "the addresses given to loopback-networked containers")
		fl.BoolVar(&insecure, "insecure-manifests", os.Getenv("ZOCKER_INSECURE_MANIFESTS") != "", "skip the manifest ownership checks, as serve --insecure-manifests")
		return cmd
	})
}
