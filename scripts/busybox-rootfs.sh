#!/usr/bin/env bash
# Builds a minimal busybox root filesystem in DIR (and, with a second argument,
# a tar archive of it): Debian's static busybox with its applet links, an
# /etc/passwd with root, www (uid 80) and nobody, and the usual directories.
# It is the test base image and the Linux demo's image.
#
#   scripts/busybox-rootfs.sh DIR [TARBALL]
set -euo pipefail
dir=${1:?usage: busybox-rootfs.sh DIR [TARBALL]}
tarball=${2:-}
src=$(command -v busybox || true)
for p in /bin/busybox /usr/bin/busybox; do [ -n "$src" ] || { [ -x "$p" ] && src=$p; }; done
[ -n "$src" ] || { echo "busybox-rootfs: no busybox (apt-get install busybox-static)" >&2; exit 1; }
if ! file -L "$src" 2>/dev/null | grep -q 'statically linked' && ldd "$src" >/dev/null 2>&1; then
	echo "busybox-rootfs: $src is dynamically linked; install busybox-static" >&2
	exit 1
fi
mkdir -p "$dir"
for d in bin sbin usr/bin usr/sbin etc tmp proc dev root var/log var/www; do mkdir -p "$dir/$d"; done
chmod 1777 "$dir/tmp"
cp "$src" "$dir/bin/busybox"
chmod 0755 "$dir/bin/busybox"
chroot "$dir" /bin/busybox --install -s
printf 'root:x:0:0:root:/root:/bin/sh\nwww:x:80:80:www:/var/www:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nwww:x:80:\nnogroup:x:65534:\n' >"$dir/etc/group"
if [ -n "$tarball" ]; then
	tar -C "$dir" -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
fi
