#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Print a directory holding the kselftest harness headers (kselftest.h,
# kselftest_harness.h), extracted once from Debian's linux-source-6.12.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

if dk=$(kernel_dir debug 2>/dev/null) && [ -f "$dk/.kprim-built" ]; then
	echo "$dk/tools/testing/selftests"
	exit 0
fi
tarball=/usr/src/linux-source-6.12.tar.xz
ver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null) ||
	die "linux-source-6.12 is not installed (make check installs it)"
dir="$KPRIM_CACHE/ksft-$ver"
if [ ! -f "$dir/kselftest_harness.h" ]; then
	mkdir -p "$dir.tmp"
	tar -C "$dir.tmp" --strip-components=4 -xJf "$tarball" --wildcards \
		'*/tools/testing/selftests/kselftest.h' \
		'*/tools/testing/selftests/kselftest_harness.h' >&2
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
fi
echo "$dir"
