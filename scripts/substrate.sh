#!/usr/bin/env bash
# The test and demo substrate on a Debian machine (ARCHITECTURE section 9):
# the Debian packages, a running zfs-fuse, a file-backed pool, and the
# zfs-fuse adapter first on PATH.
#
#   scripts/substrate.sh up POOL [SIZE]   # prints shell assignments to eval
#   scripts/substrate.sh down POOL
#
# "up" starts zfs-fuse only when no ZFS is running, and records what it made
# in $STATE so that "down" removes exactly that and nothing else.
set -euo pipefail

cmd=${1:?usage: substrate.sh up|down POOL [SIZE]}
pool=${2:?pool name}
size=${3:-4G}
top=$(cd "$(dirname "$0")/.." && pwd)
state=/var/tmp/zocker-substrate/$pool
mkdir -p "$state"

log() { echo "substrate: $*" >&2; }

install_packages() {
	local need=()
	command -v zfs >/dev/null 2>&1 || need+=(zfs-fuse)
	[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
	command -v unshare >/dev/null 2>&1 || need+=(util-linux)
	command -v tar >/dev/null 2>&1 || need+=(tar)
	if [ ${#need[@]} -gt 0 ]; then
		log "installing ${need[*]}"
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
	fi
}

# A daemon that is starting or stopping can make zpool hang: bounded.
zfs_ready() { timeout 10 zpool list -H -o name >/dev/null 2>&1; }

# start_zfs waits for a working zfs-fuse, starting one when none runs. A
# daemon still shutting down (the "down" of a previous run) is waited out,
# then replaced: back-to-back runs must not find it half gone.
start_zfs() {
	local deadline=$((SECONDS + 60))
	while [ "$SECONDS" -lt "$deadline" ]; do
		zfs_ready && return
		if ! pgrep -x zfs-fuse >/dev/null 2>&1; then
			[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
			log "starting zfs-fuse"
			zfs-fuse --pidfile "$state/zfs-fuse.pid"
			touch "$state/started-zfs-fuse"
		fi
		sleep 0.1
	done
	log "zfs-fuse did not become ready in 60 s"
	exit 1
}

case $cmd in
up)
	install_packages
	start_zfs
	if ! zpool list -H -o name "$pool" >/dev/null 2>&1; then
		truncate -s "$size" "$state/pool.img"
		log "creating pool $pool on $state/pool.img ($size)"
		zpool create -f "$pool" "$state/pool.img" >&2
		touch "$state/created-pool"
	fi
	bin=$PATH
	# zfs-fuse refuses `zfs list -p`, which go-zfs needs: put the adapter first.
	if ! zfs list -H -p -o name "$pool" >/dev/null 2>&1; then
		mkdir -p "$state/bin"
		(cd "$top" && go build -o "$state/bin/zfs" ./internal/zfsfuse/cmd/zfs)
		echo "export ZOCKER_REAL_ZFS=$(command -v zfs)"
		bin=$state/bin:$PATH
	fi
	echo "export PATH=$bin"
	echo "export ZOCKER_TEST_POOL=$pool"
	;;
down)
	if [ -e "$state/created-pool" ]; then
		for _ in $(seq 1 50); do zpool destroy -f "$pool" 2>/dev/null && break; sleep 0.2; done
		rm -f "$state/pool.img" "$state/created-pool"
	fi
	if [ -e "$state/started-zfs-fuse" ]; then
		pid=$(cat "$state/zfs-fuse.pid" 2>/dev/null || true)
		if [ -n "$pid" ]; then
			kill "$pid" 2>/dev/null || true
			# Gone before we return, so that the next "up" starts afresh.
			for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
		rm -f "$state/started-zfs-fuse" "$state/zfs-fuse.pid"
	fi
	# The adapter "up" built; the directory goes when nothing else is left.
	rm -rf "${state:?}/bin"
	rmdir "$state" 2>/dev/null || true
	;;
*) echo "usage: substrate.sh up|down POOL [SIZE]" >&2; exit 2 ;;
esac
