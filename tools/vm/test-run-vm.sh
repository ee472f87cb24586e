#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test-run-vm.sh KERNEL: the boot watchdog of run-vm.sh must catch a guest
# that never reaches /init. The guest is started paused (QEMU -S), so it
# hangs for certain; with a 1 s boot limit and two tries run-vm.sh must:
# exit 125, keep both logs as LOG.boot-hang-1 and -2, each with the vCPU
# registers read through the QEMU monitor, say that it booted again, and
# leave a final log that parse-log.py fails. About 5 s; make check runs it.
set -u
here=$(cd "$(dirname "$0")" && pwd)
kernel=$1
tmp=$(mktemp -d)
fails=0
bad() { echo "run-vm watchdog: $*"; fails=$((fails + 1)); }

: > "$tmp/initrd"
KPRIM_QEMU_ARGS=-S KPRIM_BOOT_TIMEOUT=1 KPRIM_BOOT_TRIES=2 \
	bash "$here/run-vm.sh" "$kernel" "$tmp/initrd" "$tmp/vm.log" check 60 \
	2> "$tmp/stderr" &
pid=$!
wait $pid
rc=$?
[ $rc = 125 ] || bad "exit status $rc, expected 125"
for n in 1 2; do
	f="$tmp/vm.log.boot-hang-$n"
	if [ ! -f "$f" ]; then
		bad "no $f"
		continue
	fi
	grep -q '^KPRIM-BOOT-HANG: no KPRIM-GUEST-START after 1s' "$f" ||
		bad "boot $n: no KPRIM-BOOT-HANG line"
	# A paused x86 guest sits at the reset vector: real mode, EIP=0000fff0
	# (the dump stops it first; it was never started).
	grep -q 'EIP=0000fff0' "$f" || bad "boot $n: no register dump"
done
grep -q 'boot 1 hung before /init' "$tmp/stderr" ||
	bad "did not say it booted again"
grep -q '^KPRIM-BOOT-RETRIES 1 ' "$tmp/vm.log" ||
	bad "final log does not count the re-boot"
if python3 "$here/parse-log.py" "stock=$tmp/vm.log" > "$tmp/judge" 2>&1; then
	bad "parse-log.py passed a guest that never booted"
elif ! grep -q 'BOOT-HANG' "$tmp/judge"; then
	bad "parse-log.py did not name the hang"
fi
# The monitor sockets go with their QEMU (run-vm.sh names them after its
# own pid; other VMs running meanwhile have theirs).
ls /tmp/kprim-mon.$pid.* >/dev/null 2>&1 &&
	bad "a QEMU monitor socket was left in /tmp"
if [ $fails != 0 ]; then
	sed 's/^/    /' "$tmp/stderr"
	echo "run-vm watchdog: logs kept in $tmp"
	exit 1
fi
rm -rf "$tmp"
echo "run-vm watchdog: a guest hung before /init was caught, dumped and booted again"
