#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-vm.sh KERNEL INITRD LOG MODE [TIMEOUT_S]: boot the test VM under QEMU
# (TCG; KPRIM_ACCEL=kvm to try KVM) and keep its serial console in LOG.
# MODE is check, demo, bench or shell (interactive, console on this terminal).
# Exit status: QEMU's, or 124 when the guest ran out of time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel=$1 initrd=$2 log=$3 mode=$4 limit=${5:-1800}
accel=${KPRIM_ACCEL:-tcg}
[ "$accel" = tcg ] && accel="tcg,thread=multi"
append="console=ttyS0 loglevel=4 panic=-1 log_buf_len=8M kprim.mode=$mode"
append="$append kprim.test_timeout=${KPRIM_TEST_TIMEOUT:-400}"
[ -n "${KPRIM_ONLY:-}" ] && append="$append kprim.only=$KPRIM_ONLY"

qemu=(qemu-system-x86_64 -accel "$accel" -m "${KPRIM_VM_MEM:-2048}"
      -smp "${KPRIM_VM_CPUS:-2}" -nographic -no-reboot
      -kernel "$kernel" -initrd "$initrd" -append "$append")

mkdir -p "$(dirname "$log")"
if [ "$mode" = shell ]; then
	exec "${qemu[@]}"
fi
timeout -s KILL "$limit" "${qemu[@]}" </dev/null >"$log" 2>&1
rc=$?
[ $rc = 137 ] && rc=124
exit $rc
