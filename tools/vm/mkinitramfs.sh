#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# mkinitramfs.sh OUT MODDIR TESTDIR [DEMODIR [DYNAMIC]]: pack the test VM's
# initramfs: busybox, our /init, the modules in MODDIR, the (static)
# programs in TESTDIR and, when given, the demo scripts and programs in
# DEMODIR. DYNAMIC is a space-separated list of dynamically linked programs
# (make bench: memcached, redis-server, daemonbench): each goes to
# /usr/bin, with the shared libraries and loader ldd names for it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

out=$1 moddir=$2 testdir=$3 demodir=${4:-} dynamic=${5:-}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,lib/kprim,tests,demo,usr/local/bin,etc}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
file "$root/bin/busybox" 2>/dev/null | grep -q 'statically linked' ||
	ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' ||
	die "/bin/busybox is not static (apt-get install busybox-static)"
cp "$here/guest-init.sh" "$root/init"
chmod 755 "$root/init"
echo 'root:x:0:0:root:/:/bin/sh' > "$root/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/false' >> "$root/etc/passwd"
echo 'root:x:0:' > "$root/etc/group"
cp "$moddir"/*.ko "$root/lib/kprim/"
cp "$testdir"/* "$root/tests/"
if [ -n "$demodir" ] && [ -d "$demodir" ]; then
	cp -r "$demodir"/. "$root/demo/"
	for f in "$root"/demo/*; do
		[ -x "$f" ] && [ ! -d "$f" ] && ln -sf "/demo/${f##*/}" "$root/usr/local/bin/${f##*/}"
	done
fi
for prog in $dynamic; do
	[ -x "$prog" ] || die "mkinitramfs: $prog is not an executable"
	mkdir -p "$root/usr/bin"
	cp "$prog" "$root/usr/bin/"
	# "libx.so => /path (addr)" and "/lib64/ld-linux-x86-64.so.2 (addr)"
	for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
done
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
