#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the kprim test VM (busybox). What it does is chosen on the kernel
# command line: kprim.mode=check (load, test, unload, leak scan, power off),
# kprim.mode=demo (load, run /demo/run.sh, power off), kprim.mode=bench
# (load, run /demo/kprim-bench, power off), kprim.mode=soak (the
# concurrency tests over and over for kprim.soak_secs, then as check) or
# kprim.mode=shell.
# Everything the host parses is framed by KPRIM-* marker lines.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/tests:/usr/local/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/shm /tmp /run
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
hostname kprim-vm

arg() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
mode=$(arg kprim.mode)
test_timeout=$(arg kprim.test_timeout)
[ -n "$test_timeout" ] || test_timeout=300
only=$(arg kprim.only | tr , ' ')
# kprim.env=A=1,B=2 (run-vm.sh's KPRIM_GUEST_ENV): for the test programs.
for kv in $(arg kprim.env | tr , ' '); do
	export "$kv"
done

# The boot was printed in full (loglevel=7) so a hang shows where it
# stopped; from here on the console carries warnings and worse only.
echo 4 > /proc/sys/kernel/printk
echo "KPRIM-GUEST-START kernel=$(uname -r) mode=$mode"
[ -w /sys/kernel/debug/kmemleak ] && echo clear > /sys/kernel/debug/kmemleak

insmod /lib/kprim/kprim.ko
echo "KPRIM-INSMOD rc=$?"

finish() {
	if [ "$mode" = check ]; then
		if [ -f /lib/kprim/kprim_kunit.ko ]; then
			rmmod kprim_kunit
			echo "KPRIM-RMMOD kprim_kunit rc=$?"
		fi
		rmmod kprim
		echo "KPRIM-RMMOD kprim rc=$?"
		if [ -w /sys/kernel/debug/kmemleak ]; then
			# Two scans: kmemleak reports an object only once it has
			# looked unreferenced on consecutive scans.
			echo scan > /sys/kernel/debug/kmemleak
			sleep 6
			echo scan > /sys/kernel/debug/kmemleak
			echo "KPRIM-KMEMLEAK-BEGIN"
			cat /sys/kernel/debug/kmemleak
			echo "KPRIM-KMEMLEAK-END"
		fi
	fi
	echo "KPRIM-DMESG-BEGIN"
	dmesg
	echo "KPRIM-DMESG-END"
	echo "KPRIM-GUEST-DONE"
	sync
	poweroff -f
}

# memcached and Redis for kprim-bench's daemon rows: unix sockets only, no
# persistence, memcached with one worker thread per CPU. Waits (up to 10 s)
# until both sockets exist.
start_daemons() {
	memcached -u root -s /tmp/kprim-memcached.sock -a 0600 -m 64 \
		-t "$(nproc)" &
	redis-server --port 0 --unixsocket /tmp/kprim-redis.sock \
		--unixsocketperm 600 --save '' --appendonly no \
		--logfile /tmp/redis.log &
	for i in $(seq 100); do
		[ -S /tmp/kprim-memcached.sock ] && [ -S /tmp/kprim-redis.sock ] &&
			return 0
		sleep 0.1
	done
	echo "kprim-bench: memcached or redis-server did not start" >&2
}

stop_daemons() {
	killall memcached redis-server 2>/dev/null
}

case "$mode" in
shell)
	echo "kprim test VM: module loaded, tests in /tests; 'poweroff -f' to leave"
	setsid cttyhack sh
	poweroff -f
	;;
demo)
	sh /demo/run.sh
	echo "KPRIM-DEMO rc=$?"
	finish
	;;
bench)
	echo "KPRIM-BENCH-BEGIN"
	# The Go and daemon peers join the tables when make bench built them.
	x=
	[ -x /demo/gobench ] && x="-x /demo/gobench"
	if [ -x /usr/bin/daemonbench ]; then
		start_daemons
		x="$x -x /usr/bin/daemonbench"
	fi
	(cd /tmp && /demo/kprim-bench $x 2>&1)
	echo "KPRIM-BENCH rc=$?"
	stop_daemons
	finish
	;;
esac

if [ -f /lib/kprim/kprim_kunit.ko ]; then
	# The suites run inside insmod; their KTAP goes to the kernel log.
	insmod /lib/kprim/kprim_kunit.ko
	echo "KPRIM-KUNIT-INSMOD rc=$?"
fi

run_test() {
	echo "KPRIM-TEST-BEGIN $1"
	start=$(cut -d' ' -f1 /proc/uptime)
	(cd /tmp && timeout -s KILL "$test_timeout" "/tests/$1" 2>&1)
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	echo "KPRIM-TEST-END $1 rc=$rc start=$start end=$end"
}

if [ "$mode" = soak ]; then
	# Rounds of the tests in kprim.only (every test when empty), each run
	# judged like a check run, until kprim.soak_secs have passed; the
	# tests' own knobs (KPRIM_FUZZ_SECS, ...) come in through kprim.env.
	soak_secs=$(arg kprim.soak_secs)
	soak_start=$(date +%s)
	round=0
	while [ $(( $(date +%s) - soak_start )) -lt "${soak_secs:-1800}" ]; do
		round=$((round + 1))
		echo "KPRIM-SOAK-ROUND $round elapsed=$(( $(date +%s) - soak_start ))"
		for t in /tests/*; do
			name=${t##*/}
			if [ -n "$only" ] && ! echo " $only " | grep -q " $name "; then
				continue
			fi
			run_test "$name"
			[ $(( $(date +%s) - soak_start )) -lt "${soak_secs:-1800}" ] ||
				break
		done
	done
	echo "KPRIM-SOAK-END rounds=$round secs=$(( $(date +%s) - soak_start ))"
	mode=check	# unload, leak scan and kernel log as after a check
	finish
fi

for t in /tests/*; do
	name=${t##*/}
	if [ -n "$only" ] && ! echo " $only " | grep -q " $name "; then
		continue
	fi
	run_test "$name"
done
finish
