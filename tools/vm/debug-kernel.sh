#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# debug-kernel.sh [FLAVOUR]: build (once) a 6.12 test kernel the VM boots,
# from Debian's linux-source-6.12: tinyconfig + kernel-common.config +
# FLAVOUR-kernel.config. FLAVOUR is debug (the default: KUnit, KASAN,
# lockdep, kmemleak, UBSAN, fault injection) or kcsan (the data-race
# detector, which excludes KASAN). The tree lives in a cache outside the
# work tree, keyed by the source package version and the fragments, and is
# rebuilt only when one of them changes. Prints the tree's path on stdout.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

tarball=/usr/src/linux-source-6.12.tar.xz
[ -f "$tarball" ] || die "$tarball missing (apt-get install linux-source-6.12)"
flavour=${1:-debug}
dir=$(kernel_dir "$flavour") ||
	die "no $flavour kernel config, or cannot read linux-source-6.12 version"

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

say "$flavour kernel not cached: building it in $dir (20-40 minutes on 2 cores)" >&2
rm -rf "$dir" "$dir.tmp"
mkdir -p "$dir.tmp"
{
	run_logged "$dir.log/extract.log" "extract linux-source-6.12" \
		tar -C "$dir.tmp" --strip-components=1 -xJf "$tarball"
	cd "$dir.tmp"
	run_logged "$dir.log/config.log" "configure $flavour kernel" sh -c "
		make -s tinyconfig &&
		scripts/kconfig/merge_config.sh -m .config \
			'$here/kernel-common.config' '$here/$flavour-kernel.config' &&
		make -s olddefconfig"
	# Every option we asked for must have survived olddefconfig.
	missing=$(cat "$here/kernel-common.config" "$here/$flavour-kernel.config" |
		grep -E '^CONFIG_[A-Z0-9_]+=y$' | while read -r opt; do
		grep -qx "$opt" .config || echo "$opt"; done)
	[ -z "$missing" ] || die "$flavour kernel config dropped: $missing"
	run_logged "$dir.log/build.log" "build $flavour kernel (bzImage + modules)" \
		make -j"$(nproc)" bzImage modules
} >&2
cd /
mv "$dir.tmp" "$dir"
rm -rf "$dir/.log-moved"
mv "$dir.log" "$dir/build-logs" 2>/dev/null || true
touch "$dir/.kprim-built"
echo "$dir"
