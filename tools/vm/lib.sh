# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the kprim test-VM scripts. Source, do not execute.

KPRIM_CACHE=${KPRIM_CACHE:-$( [ "$(id -u)" = 0 ] && echo /var/cache/kprim || echo "${XDG_CACHE_HOME:-$HOME/.cache}/kprim")}
KPRIM_LOGDIR=${KPRIM_LOGDIR:-$KPRIM_CACHE/logs}

say() { printf '[kprim] %s\n' "$*"; }
die() { printf '[kprim] error: %s\n' "$*" >&2; exit 1; }

# run_logged LOG LABEL CMD...: run CMD with output in LOG, print elapsed time
# every 20 s so a long step never looks hung; on failure name the step and log.
run_logged() {
	local log=$1 label=$2 start last now pid rc
	shift 2
	mkdir -p "$(dirname "$log")"
	start=$(date +%s)
	last=$start
	say "$label (log: $log)"
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		now=$(date +%s)
		if [ $((now - last)) -ge 20 ] && kill -0 "$pid" 2>/dev/null; then
			say "  ... $label: $((now - start))s"
			last=$now
		fi
	done
	wait "$pid"
	rc=$?
	if [ "$rc" != 0 ]; then
		tail -n 25 "$log" >&2
		die "$label failed (exit $rc); full log: $log"
	fi
	say "  $label done in $(( $(date +%s) - start ))s"
}

# The stock Debian kernel the test VM boots (newest installed 6.1 image).
stock_kver() {
	local v
	v=$(ls /lib/modules 2>/dev/null | grep -E '^6\.1\.[0-9]+-[0-9]+-amd64$' | sort -V | tail -n 1)
	[ -n "$v" ] || v=$(ls /usr/src 2>/dev/null | sed -n 's/^linux-headers-\(6\.1\..*-amd64\)$/\1/p' | sort -V | tail -n 1)
	echo "$v"
}

# kernel_dir FLAVOUR: directory of the cached test kernel build of FLAVOUR
# (debug or kcsan) for the current inputs: the linux-source-6.12 version and
# the config fragments (kernel-common.config, FLAVOUR-kernel.config).
kernel_dir() {
	local here ver key flavour=$1 name
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	[ -f "$here/$flavour-kernel.config" ] || return 1
	ver=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null)
	[ -n "$ver" ] || return 1
	key=$( (echo "$ver"; cat "$here/kernel-common.config" \
		"$here/$flavour-kernel.config") | sha256sum | cut -c1-12)
	name=linux-6.12
	[ "$flavour" = debug ] || name="$name-$flavour"
	echo "$KPRIM_CACHE/$name-$key"
}
