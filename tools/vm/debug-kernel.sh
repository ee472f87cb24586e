#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build (once) the 6.12 debug kernel the test VM boots: Debian's
# linux-source-6.12, tinyconfig + tools/vm/debug-kernel.config (KUnit, KASAN,
# lockdep, kmemleak, UBSAN). The tree lives in a cache outside the work tree,
# keyed by the source package version and the config fragment, and is rebuilt
# only when one of them changes. Prints the tree's path on stdout.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "$tarball missing (apt-get install linux-source-6.12)"
dir=$(debug_kernel_dir) || die "cannot read linux-source-6.12 version"

# One build of a tree at a time: a second caller for the same tree waits
# for the first, then uses it; callers for other trees (another config) do
# not wait.
mkdir -p "$KPRIM_CACHE"
exec 9>"$dir.lock"
if ! flock -n 9; then
	say "another debug kernel build is running; waiting for it" >&2
	flock 9
fi

if [ -f "$dir/.kprim-built" ]; then
	echo "$dir"
	exit 0
fi

say "debug kernel not cached: building it in $dir (about 10 minutes on 2 cores)" >&2
rm -rf "$dir" "$dir.tmp"
mkdir -p "$dir.tmp"
{
	run_logged "$dir.log/extract.log" "extract linux-source-6.12" \
		tar -C "$dir.tmp" --strip-components=1 -xJf "$tarball"
	cd "$dir.tmp"
	run_logged "$dir.log/config.log" "configure debug kernel" sh -c "
		make -s tinyconfig &&
		scripts/kconfig/merge_config.sh -m .config '$here/debug-kernel.config' &&
		make -s olddefconfig"
	# Every option we asked for must have survived olddefconfig.
	missing=$(grep -E '^CONFIG_[A-Z0-9_]+=y$' "$here/debug-kernel.config" | while read -r opt; do
		grep -qx "$opt" .config || echo "$opt"; done)
	[ -z "$missing" ] || die "debug kernel config dropped: $missing"
	run_logged "$dir.log/build.log" "build debug kernel (bzImage + modules)" \
		make -j"$(nproc)" bzImage modules
} >&2
cd /
mv "$dir.tmp" "$dir"
rm -rf "$dir/.log-moved"
mv "$dir.log" "$dir/build-logs" 2>/dev/null || true
touch "$dir/.kprim-built"
echo "$dir"
