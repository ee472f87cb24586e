#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# man-check.sh: the manual pages render cleanly and document the interface.
#
#  - every page under man/ renders with groff's man macros and all warnings
#    on (groff -man -ww -z), with nothing on stderr; a page that is only a
#    ".so" link must point at a page that exists; NAME sections parse
#    (lexgrog, when man-db is installed);
#  - every public function of libkprim (the prototypes of the public
#    headers, found as tools/check-symbols.sh finds them, the names of
#    libuser/libkprim.map and the exports of a built libkprim.so) has
#    man/man3/<function>.3, and the page it is or links to names it;
#  - every ioctl/io_uring command (KPRIM_IOC_*) and feature bit
#    (KPRIM_FEAT_*) of kmod/uapi/kprim.h appears in kprim_ioctl(2), every
#    module parameter of kmod/*.c in kprim(7), and every kprimctl command
#    in kprimctl(8).
#
# Usage: man-check.sh [libkprim.so] (its exports are checked too).
# Run from the top of the tree (make man-check). Needs groff (groff-base)
# and a C compiler; tools/vm/deps.sh installs them.
set -u
so=${1:-}
CC=${CC:-gcc}
man=man
fail=0
bad() { printf 'man-check: %s\n' "$*" >&2; fail=1; }

command -v groff >/dev/null || { echo "man-check: groff is not installed (apt-get install groff-base)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The page a man3 name resolves to: itself, or the target of its .so line.
resolve() {
	local f=$1 first
	first=$(head -n 1 "$f")
	case $first in
	.so\ *) printf '%s/%s\n' "$man" "${first#.so }" ;;
	*) printf '%s\n' "$f" ;;
	esac
}

# 1. Render every page; groff resolves .so relative to the man/ directory.
pages=0
for f in "$man"/man[1-8]/*.[1-8]; do
	[ -e "$f" ] || continue
	pages=$((pages + 1))
	rel=${f#"$man"/}
	first=$(head -n 1 "$f")
	if [ "${first#.so }" != "$first" ]; then
		[ "$(wc -l <"$f")" = 1 ] || bad "$rel: a .so link must be one line"
		[ -f "$man/${first#.so }" ] || { bad "$rel: links to missing ${first#.so }"; continue; }
	fi
	if ! (cd "$man" && groff -man -ww -z "$rel") >"$tmp/out" 2>&1 || [ -s "$tmp/out" ]; then
		bad "$rel: groff -man -ww reports:"
		sed 's/^/    /' "$tmp/out" >&2
	fi
	# mandb indexes the NAME section (whatis, apropos): it must parse.
	if command -v lexgrog >/dev/null && [ "${first#.so }" = "$first" ] &&
	   ! lexgrog "$f" >/dev/null 2>&1; then
		bad "$rel: lexgrog cannot parse its NAME section"
	fi
done
[ "$pages" -gt 0 ] || bad "no page found under $man/"

# 2. Public functions: the prototypes the public headers declare (as
# tools/check-symbols.sh reads them) and the exports of the version script.
{
	echo '#include <kprim.h>'
	for h in libuser/include/kprim/*.h; do
		echo "#include <kprim/${h##*/}>"
	done
} >"$tmp/all.c"
if "$CC" -std=gnu11 -Ilibuser/include -aux-info "$tmp/aux" -c -o /dev/null \
	"$tmp/all.c"; then
	grep '^/\* libuser/include/' "$tmp/aux" | sed 's|^/\*[^*]*\*/ *||' |
		grep -oE '^[^(]*[A-Za-z_][A-Za-z0-9_]* \(' |
		grep -oE '[A-Za-z_][A-Za-z0-9_]* \($' | tr -d ' (' >"$tmp/funcs"
else
	bad "the public headers do not compile"
	: >"$tmp/funcs"
fi
grep -oE '^[[:space:]]+kprim_[A-Za-z0-9_]+;' libuser/libkprim.map |
	tr -d ' \t;' >>"$tmp/funcs"
# And what a built libkprim.so really exports, when given one.
if [ -n "$so" ]; then
	nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "W" { print $3 }' |
		sed 's/@.*//' >>"$tmp/funcs" || bad "nm -D $so failed"
fi
sort -u -o "$tmp/funcs" "$tmp/funcs"
[ -s "$tmp/funcs" ] || bad "no public function found"
while read -r fn; do
	f=$man/man3/$fn.3
	if [ ! -f "$f" ]; then
		bad "$fn: no man/man3/$fn.3 (a page or a .so link)"
		continue
	fi
	page=$(resolve "$f")
	[ -f "$page" ] || continue	# reported above
	grep -qw -- "$fn" "$page" || bad "$fn: ${page#"$man"/} does not name it"
done <"$tmp/funcs"

# 3. The uapi's commands and feature bits in kprim_ioctl(2).
ioctl_page=$man/man2/kprim_ioctl.2
if [ -f "$ioctl_page" ]; then
	for sym in $(grep -oE '^#define[[:space:]]+KPRIM_(IOC|FEAT)_[A-Z0-9_]+' kmod/uapi/kprim.h |
		     awk '{ print $2 }' | grep -v '^KPRIM_IOC_MAGIC$'); do
		grep -qw -- "$sym" "$ioctl_page" || bad "$sym (kmod/uapi/kprim.h) is not in kprim_ioctl(2)"
	done
else
	bad "man/man2/kprim_ioctl.2 is missing"
fi

# 4. Module parameters in kprim(7); kprimctl commands in kprimctl(8).
if [ -f "$man/man7/kprim.7" ]; then
	for p in $(grep -ohE 'module_param\([a-z_0-9]+' kmod/*.c | sed 's/.*(//'); do
		grep -qw -- "$p" "$man/man7/kprim.7" || bad "module parameter $p is not in kprim(7)"
	done
else
	bad "man/man7/kprim.7 is missing"
fi
if [ -f "$man/man8/kprimctl.8" ]; then
	for c in $(grep -oE 'strcmp\(argv\[1\], "[a-z-]+"\)' tools/kprimctl.c |
		   sed 's/.*"\(.*\)".*/\1/' | sort -u); do
		grep -q -- "^\.B[IR]* \"\\?kprimctl ${c//-/\\\\-}\b" "$man/man8/kprimctl.8" ||
			bad "kprimctl $c is not in the synopsis of kprimctl(8)"
	done
else
	bad "man/man8/kprimctl.8 is missing"
fi

if [ $fail = 0 ]; then
	echo "man-check: $pages pages render without warnings; $(wc -l <"$tmp/funcs") functions, every KPRIM_IOC_/KPRIM_FEAT_, module parameter and kprimctl command documented"
fi
exit $fail
