#!/usr/bin/env bash
# make demo / make demo-clean: the Linux demo on a fresh Debian machine, as root.
#
# demo: installs zfs-fuse and busybox-static, starts zfs-fuse, makes a
# file-backed pool "zockerdemo", builds the busybox image tarball, and runs
# the service in the foreground on examples/demo. Ctrl-C stops the service;
# the containers keep running (as they would under rc.d).
# demo clean: stops the containers and removes the pool, the daemon it started
# and the runtime state.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
pool=zockerdemo
root=$pool/zocker
state=/var/run/zocker-demo
listen=127.0.0.1:9847
bin=$top/bin/zocker-reconcile

[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates a ZFS pool and containers)" >&2; exit 1; }

if [ "${1:-}" = clean ]; then
	# A demo service still running (in another terminal) goes first.
	if [ -f "$state/serve.pid" ] && kill -0 "$(cat "$state/serve.pid")" 2>/dev/null; then
		kill -TERM "$(cat "$state/serve.pid")"
		for _ in $(seq 1 100); do kill -0 "$(cat "$state/serve.pid")" 2>/dev/null || break; sleep 0.1; done
	fi
	if zpool list -H -o name "$pool" >/dev/null 2>&1; then
		eval "$(scripts/substrate.sh up "$pool" 3G)"
		# An empty manifest directory with --allow-empty prunes every container
		# and Volume the demo declared (its Volume is reclaimPolicy Delete).
		empty=$(mktemp -d)
		"$bin" apply "$empty" --allow-empty --max-prune 100 --root "$root" --state-dir "$state" || true
		rmdir "$empty"
	fi
	scripts/substrate.sh down "$pool"
	rm -rf "$state" examples/demo/busybox.tar
	echo "demo: cleaned"
	exit 0
fi

eval "$(scripts/substrate.sh up "$pool" 3G)"
if [ ! -e examples/demo/busybox.tar ]; then
	tmp=$(mktemp -d)
	scripts/busybox-rootfs.sh "$tmp/rootfs" examples/demo/busybox.tar
	rm -rf "$tmp"
fi
cat <<MSG
demo: starting zocker-reconcile on examples/demo (pool $pool, root $root)
  the demo page:   http://127.0.0.1:8080/ (busybox httpd)
  a built image:   http://127.0.0.1:8081/ (examples/demo/hello, built from its Zockerfile)
  metrics:         http://$listen/metrics
  status:          http://$listen/status
  in another shell (export ZOCKER_ROOT=$root ZOCKER_STATE_DIR=$state first):
                   $bin ps
                   $bin plan $top/examples/demo
                   $bin logs web
  Ctrl-C stops the service; containers keep running. make demo-clean removes it all.
MSG
mkdir -p "$state"
echo $$ >"$state/serve.pid" # exec keeps the pid: demo-clean stops this service
exec "$bin" serve --init --root "$root" --manifests "$top/examples/demo" --state-dir "$state" --listen "$listen"
