#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# check-headers.sh: the public headers compile cleanly (-Wall -Wextra
# -Werror) on their own, and together with the uapi header in both orders,
# installed as they are by make install: <kprim.h>, <kprim/*.h> and
# <linux/kprim.h>. The constants both define must agree.
#
# Run from the top of the tree (make check-api, make host-test, make check).
set -u
CC=${CC:-gcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/inc/linux"
cp kmod/uapi/kprim.h "$tmp/inc/linux/kprim.h"
fail=0
try_cc() {
	local name=$1
	shift
	printf '%s\n' "$@" >"$tmp/$name.c"
	if ! "$CC" -std=gnu11 -Wall -Wextra -Werror -Ilibuser/include \
		-I"$tmp/inc" -c -o "$tmp/$name.o" "$tmp/$name.c" \
		2>"$tmp/$name.err"; then
		echo "check-headers: $name: $(grep -v '^\s*$' "$tmp/$name.err" | head -n 1)" >&2
		cat "$tmp/$name.err" >&2
		fail=1
	fi
}
agree='_Static_assert(KPRIM_TIMEOUT_INFINITE == UINT64_MAX, "infinite");'

for h in libuser/include/kprim.h libuser/include/kprim/*.h; do
	h=${h#libuser/include/}
	try_cc "alone-$(basename "$h" .h)" "#include <$h>"
done
try_cc lib-then-uapi '#include <stdint.h>' '#include <kprim.h>' \
	'#include <linux/kprim.h>' "$agree"
try_cc uapi-then-lib '#include <stdint.h>' '#include <linux/kprim.h>' \
	'#include <kprim.h>' "$agree"
try_cc ctx-then-uapi '#include <stdint.h>' '#include <kprim/ctx.h>' \
	'#include <linux/kprim.h>' "$agree"
try_cc uapi-then-uring '#include <stdint.h>' '#include <linux/kprim.h>' \
	'#include <kprim/uring.h>' "$agree"
try_cc uapi-then-chan '#include <stdint.h>' '#include <linux/kprim.h>' \
	'#include <kprim/chan.h>' "$agree"

[ $fail = 0 ] && echo "check-headers: public headers compile alone and with <linux/kprim.h> in both orders"
exit $fail
