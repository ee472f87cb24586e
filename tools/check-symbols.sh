#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check-symbols.sh SO A: libkprim exports exactly its public API.
#
#  - the dynamic symbols of SO (nm -D) are the functions declared in the
#    public headers (libuser/include), no more and no fewer, all in the
#    version node KPRIM_1.0;
#  - every global symbol defined in the static library A starts with
#    "kprim_" (no stray names in the user's namespace), and each one that
#    is not public API is hidden (internal to the library).
#
# Run from the top of the tree (make check-api, make host-test, make check).
set -u
so=${1:?usage: check-symbols.sh libkprim.so libkprim.a}
ar=${2:?usage: check-symbols.sh libkprim.so libkprim.a}
CC=${CC:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { printf 'check-symbols: %s\n' "$*" >&2; fail=1; }

# The public functions: what the compiler sees declared in the installed
# headers (-aux-info lists every prototype with the file it came from):
# <kprim.h> and the headers it leaves out (kprim/uring.h needs liburing).
{
	echo '#include <kprim.h>'
	for h in libuser/include/kprim/*.h; do
		echo "#include <kprim/${h##*/}>"
	done
} >"$tmp/all.c"
"$CC" -std=gnu11 -Ilibuser/include -aux-info "$tmp/aux" -c -o /dev/null \
	"$tmp/all.c" || { echo "check-symbols: the public headers do not compile" >&2; exit 1; }
grep '^/\* libuser/include/' "$tmp/aux" | sed 's|^/\*[^*]*\*/ *||' |
	grep -oE '^[^(]*[A-Za-z_][A-Za-z0-9_]* \(' |
	grep -oE '[A-Za-z_][A-Za-z0-9_]* \($' | tr -d ' (' | sort -u >"$tmp/headers"
[ -s "$tmp/headers" ] || bad "no public function found in libuser/include"

# What the shared library exports (the version node itself is an ABS
# symbol, not an export).
nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' >"$tmp/dyn" ||
	bad "nm -D $so failed"
while read -r s; do
	bad "$so exports $s outside the version node KPRIM_1.0"
done < <(grep -v '@@KPRIM_1\.0$' "$tmp/dyn")
sed 's/@.*//' "$tmp/dyn" | sort -u >"$tmp/exports"
while read -r s; do
	bad "$so exports $s, which no public header declares"
done < <(comm -13 "$tmp/headers" "$tmp/exports")
while read -r s; do
	bad "$s is declared in a public header but $so does not export it"
done < <(comm -23 "$tmp/headers" "$tmp/exports")

# The static library: defined globals (Bind GLOBAL/WEAK, Ndx not UND).
readelf -sW "$ar" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $7 != "UND" {
	print $8, $6 }' | sort -u >"$tmp/static"
[ -s "$tmp/static" ] || bad "no global symbol found in $ar"
while read -r s vis; do
	case $s in
	kprim_*) ;;
	*) bad "$ar defines global $s: not in the kprim_ namespace"; continue ;;
	esac
	if ! grep -qx "$s" "$tmp/headers" && [ "$vis" != HIDDEN ]; then
		bad "$ar defines internal $s with visibility $vis, not HIDDEN"
	fi
done <"$tmp/static"

if [ $fail = 0 ]; then
	echo "check-symbols: $(wc -l <"$tmp/exports") exports = the public headers; $ar clean"
fi
exit $fail
