#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The judge is tested too: parse-log.py must pass a clean guest log and fail
# each kind of bad one (failed test, crash, hang, silence, splat, leak,
# missing KUnit suite, module that will not unload). Runs on the host in a
# second; make check runs it before booting anything.
set -u
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

clean_log() {
	cat <<'LOG'
SeaBIOS noise
[    0.100000] Linux version 6.12.117
\x1bc\x1b[2JKPRIM-GUEST-START kernel=6.12.117 mode=check
KPRIM-INSMOD rc=0
KPRIM-KUNIT-INSMOD rc=0
KPRIM-TEST-BEGIN a_test
TAP version 13
1..2
ok 1 fix.one
ok 2 fix.two # SKIP no reason
# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0
KPRIM-TEST-END a_test rc=0 start=1 end=2
KPRIM-RMMOD kprim_kunit rc=0
KPRIM-RMMOD kprim rc=0
KPRIM-KMEMLEAK-BEGIN
KPRIM-KMEMLEAK-END
KPRIM-DMESG-BEGIN
[    5.000000] KTAP version 1
[    5.000001]     # Subtest: kprim_x
[    5.000002]     1..2
[    5.000003]         # Subtest: case_p
[    5.000004]         ok 1 row a
[    5.000005]     ok 1 case_p
[    5.000006]     ok 2 case_q
[    5.000007] ok 1 kprim_x
KPRIM-DMESG-END
KPRIM-GUEST-DONE
LOG
}

# expect STATUS NAME SED-SCRIPT: judge the clean log edited by SED-SCRIPT.
expect() {
	local want=$1 name=$2 script=$3 got
	clean_log | printf '%b' "$(cat)" | sed -e "$script" > "$tmp/$name.log"
	python3 "$here/parse-log.py" --kunit kprim_x "debug=$tmp/$name.log" \
		> "$tmp/$name.out" 2>&1
	got=$?
	if [ "$got" != "$want" ]; then
		echo "parse-log: case '$name' exited $got, expected $want:"
		sed 's/^/    /' "$tmp/$name.out"
		fails=$((fails + 1))
	fi
}

expect 0 clean ''
expect 1 failed_test 's/^ok 1 fix.one/not ok 1 fix.one/'
expect 1 crash_no_end '/KPRIM-TEST-END a_test/d'
expect 1 killed_timeout 's/KPRIM-TEST-END a_test rc=0/KPRIM-TEST-END a_test rc=137/'
expect 1 nonzero_exit 's/KPRIM-TEST-END a_test rc=0/KPRIM-TEST-END a_test rc=1/'
expect 1 silent_program '/^ok [12] fix/d'
expect 1 no_guest_done '/KPRIM-GUEST-DONE/d'
expect 1 never_booted '/KPRIM-/d'
expect 1 kasan '/KPRIM-DMESG-BEGIN/a [    6.0] BUG: KASAN: slab-use-after-free in x'
expect 1 lockdep '/KPRIM-DMESG-BEGIN/a [    6.0] WARNING: possible circular locking dependency detected'
expect 1 rcu_stall '/KPRIM-DMESG-BEGIN/a [    6.0] rcu: INFO: rcu_preempt self-detected stall on CPU'
expect 1 ubsan '/KPRIM-DMESG-BEGIN/a [    6.0] UBSAN: shift-out-of-bounds in x'
expect 1 leak '/KPRIM-KMEMLEAK-BEGIN/a unreferenced object 0xffff8880 (size 64):'
expect 1 kunit_case_failed 's/    ok 2 case_q/    not ok 2 case_q/'
expect 1 kunit_suite_missing '/# Subtest: kprim_x/d'
expect 1 rmmod_busy 's/KPRIM-RMMOD kprim rc=0/KPRIM-RMMOD kprim rc=1/'
expect 1 insmod_failed 's/KPRIM-INSMOD rc=0/KPRIM-INSMOD rc=1/'
expect 1 boot_hang '/KPRIM-/d;$a KPRIM-BOOT-HANG: no KPRIM-GUEST-START after 300s; vCPU state:'
# A KCSAN report with a kprim frame in a stack fails; one wholly in the
# core kernel is a note.
expect 1 kcsan_in_kprim '/KPRIM-DMESG-BEGIN/a [    6.0] ==================\n[    6.0] BUG: KCSAN: data-race in kprim_a / kprim_b\n[    6.0] \n[    6.0] write to 0x1 of 8 bytes by task 1 on cpu 0:\n[    6.0]  kprim_a+0x1/0x2 [kprim]\n[    6.0] \n[    6.0] read to 0x1 of 8 bytes by task 2 on cpu 1:\n[    6.0]  kprim_b+0x1/0x2 [kprim]\n[    6.0] =================='
if ! grep -q 'FAIL: KCSAN: data-race in kprim_a / kprim_b' "$tmp/kcsan_in_kprim.out"; then
	echo "parse-log: case 'kcsan_in_kprim' did not fail for the KCSAN report"
	fails=$((fails + 1))
fi
expect 0 kcsan_core_only '/KPRIM-DMESG-BEGIN/a [    6.0] ==================\n[    6.0] BUG: KCSAN: data-race in mm_x / mm_y\n[    6.0] \n[    6.0] write to 0x1 of 8 bytes by task 1 on cpu 0:\n[    6.0]  mm_x+0x1/0x2\n[    6.0] ==================\n[    6.1] BUG: KCSAN: data-race in a / b\n[    6.1]  a+0x1/0x2\n[    6.1] =================='
if ! grep -q 'note: KCSAN reports: 0 in kprim, 2 in the core kernel' "$tmp/kcsan_core_only.out"; then
	echo "parse-log: case 'kcsan_core_only' did not count the core-kernel reports"
	fails=$((fails + 1))
fi
# A boot that hung before /init and was booted again passes, and says so.
expect 0 boot_retried '1i KPRIM-BOOT-RETRIES 1 (earlier logs: x.boot-hang-*)'
if ! grep -q 'note: booted again after a hang before /init: 1' "$tmp/boot_retried.out"; then
	echo "parse-log: case 'boot_retried' did not report the re-boot"
	fails=$((fails + 1))
fi

if [ $fails != 0 ]; then
	echo "parse-log: $fails case(s) judged wrongly"
	exit 1
fi
echo "parse-log: 21 cases judged as expected"
