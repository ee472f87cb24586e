#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# deps.sh [PACKAGE...]: make sure the Debian packages the build and the test
# VM need, and any PACKAGEs named (make bench adds Go's), are present. As
# root, install what is missing (saying what); otherwise name the packages
# and the command, and fail.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

packages=(
	build-essential bc bison flex cpio xz-utils rsync kmod python3
	libelf-dev libssl-dev dwarves sparse
	qemu-system-x86 busybox-static
	linux-image-amd64 linux-headers-amd64 linux-source-6.12
	liburing-dev pkg-config spin groff-base man-db
	"$@"
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	die "missing packages: ${missing[*]}
    install them with: sudo apt-get install ${missing[*]}"
fi
say "installing missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log="$KPRIM_LOGDIR/apt.log"
run_logged "$log" "apt-get update" apt-get update
run_logged "$log.install" "apt-get install ${#missing[@]} packages" \
	apt-get install -y --no-install-recommends "${missing[@]}"
