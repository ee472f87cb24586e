#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The kprim test pipeline (make check): install what is missing, build the
# debug kernel once, build kprim for both kernels, boot each in QEMU with the
# tests, judge the logs.
#
#   check.sh            everything (make check): the debug, stock and kcsan
#                       kernels (the kcsan one runs the concurrency tests,
#                       KPRIM_KCSAN_TESTS, only)
#   check.sh --fast     skip the package check; rebuild module + tests only
#                       (make vm-test); KPRIM_KERNELS="debug", "stock" or
#                       "kcsan" to pick kernels (default "debug stock"),
#                       KPRIM_ONLY=a_test,b_test for tests
#   check.sh --demo     boot the stock kernel and run the demo (make demo)
#   check.sh --bench    boot the stock kernel and run kprim-bench (make bench)
#   check.sh --soak     KPRIM_SOAK_MIN minutes (default 30) of the concurrency
#                       tests in rounds on the debug kernel (make soak),
#                       then the judge and tools/vm/soak-report.py's figures
#   check.sh --bench-insn  the same counting instructions (make bench-insn):
#                       one vCPU, single-threaded TCG, -icount shift=0, so a
#                       guest ns is one instruction; 1 thread, with the
#                       breakdown probes (kprim-bench -I)
#   check.sh --shell    interactive shell in the VM (make vm-shell);
#                       KPRIM_KERNELS=debug for the debug kernel
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
here="$top/tools/vm"
. "$here/lib.sh"
cd "$top"

mode=check
case "${1:-}" in
--fast) mode=fast ;;
--demo) mode=demo ;;
--bench) mode=bench ;;
--bench-insn)
	mode=bench
	# One vCPU and one TCG thread: the instruction counter is exact and
	# nothing runs beside the measured thread but what it wakes.
	export KPRIM_ACCEL="tcg,thread=single" KPRIM_VM_CPUS=1
	export KPRIM_QEMU_ARGS="-icount shift=0,sleep=off ${KPRIM_QEMU_ARGS:-}"
	export KPRIM_GUEST_ENV="KPRIM_BENCH_INSN=1,KPRIM_BENCH_THREADS=1${KPRIM_GUEST_ENV:+,$KPRIM_GUEST_ENV}"
	;;
--shell) mode=shell ;;
--soak) mode=soak ;;
"") ;;
*) die "usage: check.sh [--fast|--demo|--bench|--bench-insn|--soak|--shell]" ;;
esac

case $mode in
check) kernels=${KPRIM_KERNELS:-debug stock kcsan} ;;
fast) kernels=${KPRIM_KERNELS:-debug stock} ;;
soak) kernels=${KPRIM_KERNELS:-debug} ;;
*) kernels=${KPRIM_KERNELS:-stock} ;;
esac
kernels=$(echo $kernels)
start=$(date +%s)
run="$KPRIM_LOGDIR/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$run"
ln -sfn "$run" "$KPRIM_LOGDIR/latest"
say "logs: $run"

# 1. Packages (a fresh Debian 12 machine has none of them); the benchmark
# also builds the Go peers (tools/gobench: Go and x/time, x/sync) and the
# daemon peers (tools/daemonbench: memcached and Redis, their client libs).
extra_pkgs=()
[ $mode = bench ] && extra_pkgs=(golang-go golang-golang-x-time-dev
	golang-golang-x-sync-dev memcached redis-server libmemcached-dev
	libhiredis-dev)
[ $mode = fast ] || [ $mode = soak ] ||
	bash "$here/deps.sh" "${extra_pkgs[@]}" || exit 1
# The judge of the guest logs must itself judge right.
bash "$here/test-parse-log.sh" || exit 1
# The library's interface (exports, headers), on the host: seconds, and
# before the long kernel build.
if [ $mode = check ]; then
	run_logged "$run/check-api.log" "libkprim exports and headers (make check-api)" \
		make check-api || exit 1
fi

# 1a'. The manual pages: they render without a warning and document every
# exported function, ioctl, feature bit, module parameter and kprimctl
# command (make man-check).
if [ $mode = check ]; then
	run_logged "$run/man-check.log" "manual pages (make man-check)" \
		make man-check || exit 1
fi

# 1a. The protocol models under spin (models/check.sh): seconds to a
# minute, host only.
if [ $mode = check ]; then
	run_logged "$run/model-check.log" "protocol models under spin (make model-check)" \
		make model-check || exit 1
fi

# 1b. The library's host tests under ThreadSanitizer and under Address +
# UndefinedBehaviorSanitizer (their own build dirs, build/tsan and
# build/asan), before any VM: a race or a use-after-free fails here.
if [ $mode = check ]; then
	run_logged "$run/host-test-tsan.log" "host tests under TSan" \
		make host-test-tsan || exit 1
	run_logged "$run/host-test-asan.log" "host tests under ASan+UBSan" \
		make host-test-asan || exit 1
fi

# 2. Kernels.
kernel_image() {
	case $1 in
	debug) echo "$dk/arch/x86/boot/bzImage" ;;
	kcsan) echo "$kk/arch/x86/boot/bzImage" ;;
	stock) echo "/boot/vmlinuz-$(stock_kver)" ;;
	esac
}
kernel_kdir() {
	case $1 in
	debug) echo "$dk" ;;
	kcsan) echo "$kk" ;;
	stock) echo "/lib/modules/$(stock_kver)/build" ;;
	esac
}
for k in $kernels; do
	case $k in
	debug|stock|kcsan) ;;
	*) die "unknown kernel '$k' in KPRIM_KERNELS (debug, stock, kcsan)" ;;
	esac
done
dk= kk=
if [[ " $kernels " == *" debug "* ]]; then
	dk=$(bash "$here/debug-kernel.sh" debug) || exit 1
fi
# The KCSAN flavour: the same 6.12 source with the data-race detector
# instead of KASAN (they exclude each other); built once like the debug one.
if [[ " $kernels " == *" kcsan "* ]]; then
	kk=$(bash "$here/debug-kernel.sh" kcsan) || exit 1
fi
for k in $kernels; do
	[ -r "$(kernel_image "$k")" ] || die "kernel image for '$k' missing: $(kernel_image "$k")"
	[ -d "$(kernel_kdir "$k")" ] || die "kernel build dir for '$k' missing: $(kernel_kdir "$k")"
done

# The boot watchdog must catch a guest that hangs before /init (a paused
# guest of the stock kernel; 3 s).
if [ $mode = check ] || [ $mode = fast ]; then
	bash "$here/test-run-vm.sh" "/boot/vmlinuz-$(stock_kver)" || exit 1
fi

# 3. The module, once per kernel, each in its own copy of the sources.
for k in $kernels; do
	out="$top/build/kmod-$k"
	# Objects built against another kernel tree (a changed debug config)
	# must not be linked in: kbuild would keep them, as the old tree's
	# headers are still there, and the module would then see another
	# layout of the kernel's structs (task_struct: a write of
	# task_state_change landed on objcg).
	if [ "$(cat "$out/.kdir" 2>/dev/null)" != "$(kernel_kdir "$k")" ]; then
		rm -rf "$out"
	fi
	mkdir -p "$out"
	kernel_kdir "$k" > "$out/.kdir"
	rsync -a --delete --exclude='*.o' --exclude='*.ko' --exclude='.*.cmd' \
		--exclude='*.mod*' "$top/kmod/" "$out/kmod/"
	cp "$top/Kbuild" "$out/Kbuild"
	run_logged "$run/build-kmod-$k.log" "build kprim.ko for the $k kernel" \
		make -C "$(kernel_kdir "$k")" M="$out" W=1 modules || exit 1
	if grep -E 'warning:|error:' "$run/build-kmod-$k.log"; then
		die "the module build for $k has warnings (W=1): $run/build-kmod-$k.log"
	fi
	mkdir -p "$out/modules"
	rm -f "$out/modules"/*.ko
	cp "$out/kmod/kprim.ko" "$out/modules/"
	[ -f "$out/kmod/kprim_kunit.ko" ] && cp "$out/kmod/kprim_kunit.ko" "$out/modules/"
done

# 3b. The reviewer's gates on kmod/ (checkpatch, sparse, W=1), full runs only.
if [ $mode = check ]; then
	run_logged "$run/lint.log" "lint kmod/ (checkpatch, sparse, W=1)" \
		bash "$here/lint.sh" || exit 1
fi

# 4. Library, tests, tools (static, for the busybox guest).
run_logged "$run/build-user.log" "build libkprim, selftests, tools" \
	make -j"$(nproc)" lib selftests tools examples || exit 1
if [ $mode = bench ]; then
	run_logged "$run/build-peers.log" \
		"build the Go and daemon peers (tools/gobench, tools/daemonbench)" \
		make gobench daemonbench || exit 1
fi

demo_dir="$top/build/demo"
rm -rf "$demo_dir"
mkdir -p "$demo_dir"
cp "$top"/tools/demo/*.sh "$demo_dir/" 2>/dev/null
cp "$top"/build/tools/* "$top"/build/examples/* "$demo_dir/" 2>/dev/null
[ $mode = bench ] || rm -f "$demo_dir/gobench"	# kprim-bench -x only
rm -f "$demo_dir/daemonbench"	# dynamic: goes in with its libraries below
dynamic=
[ $mode = bench ] && dynamic="/usr/bin/memcached /usr/bin/redis-server $top/build/tools/daemonbench"

# show_guest_run KERNEL INITRD MODE WHAT FIRST LAST: boot for the demo or
# the benchmark, print the guest's output from the FIRST marker to the LAST
# (kernel lines and markers left out), exit 0 only if LAST says rc=0.
show_guest_run() {
	local k=$1 initrd=$2 mode=$3 what=$4 first=$5 last=$6 rc

	say "booting the $k kernel for $what (log: $run/$k.log)"
	bash "$here/run-vm.sh" "$(kernel_image "$k")" "$initrd" \
		"$run/$k.log" "$mode" 900
	rc=$?
	sed -n "/^$first/,/^$last rc=/p" "$run/$k.log" |
		grep -v '^KPRIM-' | grep -v '^\[ *[0-9.]*\]'
	grep -q "^$last rc=0" "$run/$k.log" ||
		die "$what failed (vm exit $rc); log: $run/$k.log"
	say "$what done in $(( $(date +%s) - start ))s"
	exit 0
}

# 5. Boot.
# The debug guest's full run took 1140 s beside the two others on the
# 2-core machine before the shared-page tests, and ran out of 1200 s after:
# 2400 s leaves room without letting a stuck guest hold CI for long.
vm_timeout=${KPRIM_VM_TIMEOUT:-2400}
# What the KCSAN guest runs: the tests where threads and processes meet in
# kmod/ (the detector samples accesses, so it needs many of them); the
# single-threaded semantics are the other guests' job.
kcsan_tests=${KPRIM_KCSAN_TESTS:-fuzz_test,cache_race_test,race_pairs_test,kill_loop_test,uring_async_test,attack_async_test,attack_final_test,attack_test,sem_test,limiter_test,limiter_page_test,sem_slot_test,cache_mget_test,memcg_test,go_test,attack_ten_test}
# What a soak repeats, and for how long each run of it goes on.
soak_tests=fuzz_test,kill_loop_test,race_pairs_test,cache_race_test,uring_async_test,attack_async_test,attack_final_test
soak_env=KPRIM_FUZZ_SECS=60,KPRIM_KILL_SECS=60,KPRIM_RACE_SECS=20
lists=
[[ " $kernels " == *" kcsan "* ]] && [ $mode = check ] && lists=$kcsan_tests
[ $mode = soak ] && lists=${KPRIM_ONLY:-$soak_tests}
for t in ${lists//,/ }; do
	[ -x "$top/build/tests/$t" ] ||
		die "a test list names $t, which was not built (build/tests/$t)"
done
pids=()
for k in $kernels; do
	initrd="$top/build/vm/initramfs-$k.cpio.gz"
	mkdir -p "$top/build/vm"
	bash "$here/mkinitramfs.sh" "$initrd" "$top/build/kmod-$k/modules" \
		"$top/build/tests" "$demo_dir" "$dynamic" || exit 1
	case $mode in
	shell)
		say "interactive VM ($k kernel); leave with 'poweroff -f'"
		exec bash "$here/run-vm.sh" "$(kernel_image "$k")" "$initrd" \
			"$run/$k.log" shell
		;;
	demo)
		show_guest_run "$k" "$initrd" demo "the demo" KPRIM-INSMOD KPRIM-DEMO
		;;
	bench)
		show_guest_run "$k" "$initrd" bench "the benchmark" \
			KPRIM-BENCH-BEGIN KPRIM-BENCH
		;;
	esac
	if [ $mode = soak ]; then
		soak_secs=$(( ${KPRIM_SOAK_MIN:-30} * 60 ))
		say "booting the $k kernel for a $((soak_secs / 60))-minute soak (log: $run/$k.log)"
		KPRIM_ONLY=${KPRIM_ONLY:-$soak_tests} KPRIM_SOAK_SECS=$soak_secs \
			KPRIM_TEST_TIMEOUT=${KPRIM_TEST_TIMEOUT:-900} \
			KPRIM_GUEST_ENV=${KPRIM_GUEST_ENV:-$soak_env} \
			bash "$here/run-vm.sh" "$(kernel_image "$k")" "$initrd" \
			"$run/$k.log" soak $((soak_secs + vm_timeout)) &
		pids+=("$k:$!")
		continue
	fi
	say "booting the $k kernel with the tests (log: $run/$k.log)"
	only=${KPRIM_ONLY:-}
	[ $k = kcsan ] && [ -z "$only" ] && only=$kcsan_tests
	KPRIM_ONLY=$only bash "$here/run-vm.sh" "$(kernel_image "$k")" \
		"$initrd" "$run/$k.log" check "$vm_timeout" &
	pids+=("$k:$!")
done

# Progress while the guests run: tests finished so far, per kernel.
while :; do
	alive=0
	for p in "${pids[@]}"; do
		kill -0 "${p#*:}" 2>/dev/null && alive=1
	done
	[ $alive = 0 ] && break
	sleep 20
	status=
	for k in $kernels; do
		n=$(grep -c '^KPRIM-TEST-END' "$run/$k.log" 2>/dev/null)
		status="$status $k:${n:-0} tests done"
	done
	say "  ... VMs running $(( $(date +%s) - start ))s:$status"
done
logs=()
for p in "${pids[@]}"; do
	k=${p%%:*}
	wait "${p#*:}"
	rc=$?
	[ $rc = 124 ] && say "the $k VM ran out of time (${vm_timeout}s)"
	[ $rc = 125 ] && say "the $k VM hung before /init on every boot"
	logs+=("$k=$run/$k.log")
done

# 6. Judge. The counts come last: "N passed, N failed" closes the output.
python3 "$here/parse-log.py" --kunit kprim_limiter,kprim_sem,kprim_cache \
	"${logs[@]}" > "$run/summary.txt"
rc=$?
say "total time $(( $(date +%s) - start ))s"
[ "$rc" = 0 ] || say "FAILED: full guest logs in $run"
if [ $mode = soak ]; then
	for k in $kernels; do
		python3 "$here/soak-report.py" "$run/$k.log" | tee "$run/soak-$k.txt"
	done
fi
cat "$run/summary.txt"
exit $(( rc != 0 ))
