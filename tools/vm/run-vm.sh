#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# run-vm.sh KERNEL INITRD LOG MODE [TIMEOUT_S]: boot the test VM under QEMU
# (TCG; KPRIM_ACCEL=kvm to try KVM) and keep its serial console in LOG.
# MODE is check, demo, bench or shell (interactive, console on this terminal).
# Exit status: QEMU's; 124 when the guest ran out of time; 125 when it hung
# before /init on every boot (below).
#
# Boot watchdog: a guest whose /init has not printed KPRIM-GUEST-START within
# KPRIM_BOOT_TIMEOUT seconds (default 300; a boot takes 6-40 s under TCG) hung
# before any kprim code ran. Its vCPU registers are dumped into its log
# through the QEMU monitor (the kernel boots with nokaslr, so RIP reads
# against System.map), the log is kept as LOG.boot-hang-N, and the guest is
# booted again, at most KPRIM_BOOT_TRIES times in all (default 2). Every
# re-boot is said on stderr and counted in LOG's first line.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

kernel=$1 initrd=$2 log=$3 mode=$4 limit=${5:-1800}
boot_limit=${KPRIM_BOOT_TIMEOUT:-300}
boot_tries=${KPRIM_BOOT_TRIES:-2}
accel=${KPRIM_ACCEL:-tcg}
[ "$accel" = tcg ] && accel="tcg,thread=multi"
# The whole boot is printed (loglevel=7) so a hang shows where it stopped;
# /init lowers the console level before the tests start.
append="console=ttyS0 loglevel=7 nokaslr panic=-1 log_buf_len=8M"
# A stuck CPU (soft lockup), an RCU stall or a task blocked in D state
# panics the guest, which then exits (panic=-1, -no-reboot) and fails the
# run at once instead of sitting until the VM time limit.
append="$append softlockup_panic=1 hung_task_panic=1"
append="$append sysctl.kernel.panic_on_rcu_stall=1"
# Debian's 6.1 waits 120 s for a blocked task; the debug config says 60 s.
append="$append sysctl.kernel.hung_task_timeout_secs=60"
append="$append kprim.mode=$mode kprim.test_timeout=${KPRIM_TEST_TIMEOUT:-400}"
[ -n "${KPRIM_ONLY:-}" ] && append="$append kprim.only=$KPRIM_ONLY"
[ -n "${KPRIM_SOAK_SECS:-}" ] && append="$append kprim.soak_secs=$KPRIM_SOAK_SECS"
# KPRIM_GUEST_ENV="A=1,B=2": environment for the guest's test programs
# (e.g. KPRIM_FUZZ_SEED, KPRIM_FUZZ_SECS for fuzz_test).
[ -n "${KPRIM_GUEST_ENV:-}" ] && append="$append kprim.env=$KPRIM_GUEST_ENV"
# Each of these is one word of the kernel command line.
case "${KPRIM_ONLY:-}${KPRIM_GUEST_ENV:-}" in
*[[:space:]]*) die "KPRIM_ONLY and KPRIM_GUEST_ENV take no spaces (use commas)" ;;
esac

# KPRIM_QEMU_ARGS: more QEMU options, for debugging (and for
# test-run-vm.sh, which starts the guest paused with -S).
qemu=(qemu-system-x86_64 -accel "$accel" -m "${KPRIM_VM_MEM:-2048}"
      -smp "${KPRIM_VM_CPUS:-2}" -nographic -no-reboot
      -kernel "$kernel" -initrd "$initrd" -append "$append"
      ${KPRIM_QEMU_ARGS:-})

mkdir -p "$(dirname "$log")"
if [ "$mode" = shell ]; then
	exec "${qemu[@]}"
fi

# monitor_cmd SOCKET CMD...: send each CMD to the QEMU human monitor, print
# the replies.
monitor_cmd() {
	python3 - "$@" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    # A QEMU that is slow to start (a busy host) may not have made its
    # socket yet: wait for it rather than report no answer.
    deadline = time.time() + 10
    while True:
        try:
            s.connect(sys.argv[1])
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    cmds = sys.argv[2:]
    s.sendall(b''.join(c.encode() + b'\n' for c in cmds))
    out, end = b'', time.time() + 5
    # The monitor greets with a prompt, then prompts after each answer.
    while time.time() < end and out.count(b'(qemu)') < 1 + len(cmds):
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    sys.stdout.write(out.decode(errors='replace'))
except OSError as e:
    print('QEMU monitor did not answer: %s' % e)
EOF
}

# The QEMU of the current boot and its monitor socket; whatever ends this
# script ends that QEMU too.
qpid= mon=
cleanup() {
	[ -n "$qpid" ] && kill -KILL "$qpid" 2>/dev/null
	[ -n "$mon" ] && rm -f "$mon"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# dump_and_kill LINE: stop the guest, append LINE and the vCPU registers
# (read through the QEMU monitor) to the log, then kill QEMU.
dump_and_kill() {
	{
		echo
		echo "$1; vCPU state:"
		monitor_cmd "$mon" stop "info registers -a"
	} >>"$log" 2>&1
	kill -KILL "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
}

# boot_once: one boot; returns 0-255 from QEMU, 124 on time-out, 200 when
# the guest never reached /init within boot_limit.
boot_once() {
	local t=0 started=0 rc=
	# One socket per boot of this script (its pid and the try number).
	mon="/tmp/kprim-mon.$$.$try"
	rm -f "$mon"
	# Appending (O_APPEND) as the dump does, so neither overwrites the
	# other while QEMU still writes.
	: >"$log"
	"${qemu[@]}" -monitor "unix:$mon,server,nowait" </dev/null >>"$log" 2>&1 &
	qpid=$!
	# jobs, not kill -0: once reaped, the pid may belong to another process.
	while [ -z "$rc" ] && [ -n "$(jobs -rp)" ]; do
		if [ $started = 0 ] && grep -q '^KPRIM-GUEST-START' "$log" 2>/dev/null; then
			started=1
		fi
		if [ $started = 0 ] && [ $t -ge "$boot_limit" ]; then
			dump_and_kill "KPRIM-BOOT-HANG: no KPRIM-GUEST-START after ${boot_limit}s"
			rc=200
		elif [ $t -ge "$limit" ]; then
			dump_and_kill "KPRIM-VM-TIMEOUT: guest still running after ${limit}s"
			rc=124
		else
			sleep 1
			t=$((t + 1))
		fi
	done
	if [ -z "$rc" ]; then
		wait "$qpid"
		rc=$?
	fi
	qpid=
	rm -f "$mon"
	return $rc
}

try=1
while :; do
	boot_once
	rc=$?
	[ $rc = 200 ] || break
	mv "$log" "$log.boot-hang-$try"
	if [ $try -ge "$boot_tries" ]; then
		say "$(basename "$kernel"): the guest hung before /init on all $try boots; logs: $log.boot-hang-*" >&2
		cp "$log.boot-hang-$try" "$log"
		rc=125
		break
	fi
	say "$(basename "$kernel"): boot $try hung before /init (no kprim code had run); log kept in $log.boot-hang-$try; booting again" >&2
	try=$((try + 1))
done
if [ $try -gt 1 ] && [ -f "$log" ]; then
	sed -i "1i KPRIM-BOOT-RETRIES $((try - 1)) (earlier logs: $log.boot-hang-*)" "$log"
fi
exit $rc
