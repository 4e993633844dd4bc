#!/usr/bin/env bash
# The README's test command (make test): static checks, the FreeBSD
# cross-build, and every test, the integration suites included, on a
# file-backed zfs-fuse pool made for the run and removed after it.
#
# As root with no ZOCKER_TEST_POOL, it brings the substrate up itself. Under
# CI=true a missing prerequisite fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

pool_made=""
if [ -z "${ZOCKER_TEST_POOL:-}" ] && [ "$(id -u)" = 0 ]; then
	pool=zockertest$$
	eval "$(scripts/substrate.sh up "$pool" 4G)"
	pool_made=$pool
	trap 'scripts/substrate.sh down "$pool_made"' EXIT
fi
if [ "${CI:-}" = true ] && [ -z "${ZOCKER_TEST_POOL:-}" ]; then
	echo "test: CI=true but ZOCKER_TEST_POOL is unset: the integration tests would not run" >&2
	exit 1
fi

echo "== go vet"
go vet ./...
echo "== GOOS=freebsd go build / go vet"
GOOS=freebsd go build ./...
GOOS=freebsd go vet ./...
echo "== go test"
# One package at a time: the integration suites share one zfs-fuse daemon,
# which was seen to wedge under many concurrent destroys and renames.
go test -p 1 -timeout 45m -count=1 ./...
echo "== go test -race (the pure packages and the loop: no ZFS, no jails)"
go test -race -p 2 -timeout 10m -count=1 ./reconcile/... ./manifests/... ./controller/... ./service/... ./metrics/... ./image/...
echo "== fuzz (short)"
go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 20s ./manifests
if ls engine/build/*_test.go >/dev/null 2>&1 && grep -q 'func FuzzParse' engine/build/*_test.go; then
	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 15s ./engine/build
fi
