#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kernel reviewer's gates on kmod/: checkpatch.pl and kernel-doc (from
# the 6.12 tree), sparse (make C=1) and W=1 against both kernels. Any
# finding fails.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tools/vm"
. "$here/lib.sh"
cd "$top"

dk=$(bash "$here/debug-kernel.sh") || exit 1
run="$KPRIM_LOGDIR/lint"
mkdir -p "$run"
rc=0

say "checkpatch.pl on kmod/"
if ! "$dk/scripts/checkpatch.pl" --no-tree --terse --show-types \
	--ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG \
	-f kmod/*.c kmod/*.h kmod/uapi/*.h kmod/tests/*.c >"$run/checkpatch.log" 2>&1; then
	grep -E 'ERROR|WARNING|CHECK' "$run/checkpatch.log" | head -30
	say "checkpatch found problems ($run/checkpatch.log)"
	rc=1
fi

say "kernel-doc on kmod/"
if "$dk/scripts/kernel-doc" -none -Wall kmod/*.c kmod/*.h kmod/uapi/*.h \
	2>&1 | tee "$run/kernel-doc.log" | grep -q .; then
	head -20 "$run/kernel-doc.log"
	say "kernel-doc found problems ($run/kernel-doc.log)"
	rc=1
fi

for k in debug stock; do
	case $k in
	debug) kdir=$dk ;;
	stock) kdir=/lib/modules/$(stock_kver)/build ;;
	esac
	out="$top/build/lint-$k"
	rm -rf "$out"
	mkdir -p "$out"
	cp -r "$top/kmod" "$out/kmod"
	cp "$top/Kbuild" "$out/Kbuild"
	say "sparse (C=1) and W=1 against the $k kernel"
	make -C "$kdir" M="$out" W=1 C=1 modules >"$run/sparse-$k.log" 2>&1 || {
		tail -20 "$run/sparse-$k.log"; rc=1; }
	if grep -E 'warning:|error:' "$run/sparse-$k.log"; then
		say "sparse/W=1 findings for $k ($run/sparse-$k.log)"
		rc=1
	fi
done
[ $rc = 0 ] && say "lint clean: checkpatch, kernel-doc, sparse, W=1 on both kernels"
exit $rc
