#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The kprim demo (make demo), run inside the test VM: short narrated scenes
# of the primitives at work across processes. Stops at the first failure.
set -e
scene() { printf '\n=== %s\n' "$*"; }
note() { printf -- '--- %s\n' "$*"; }
now() { cut -d' ' -f1 /proc/uptime; }

scene "1. The module is loaded: /dev/kprim answers, nothing exists yet"
ls -l /dev/kprim
kprimctl list

scene "2. One rate limit for every process on the host"
note "payments-api: 5 calls/s, burst 2, shared by 3 worker processes"
kprimctl create limiter payments-api 5 1000000000 2
t0=$(now)
for w in 1 2 3; do
	(
		for call in 1 2 3 4; do
			kprimctl take payments-api 1 10000 >/dev/null
			echo "  worker $w call $call admitted at +$(echo "$(now) $t0" | awk '{printf "%.2f", $1-$2}')s"
		done
	) &
done
wait
note "12 calls, 2 from the burst, 10 at 5/s: the last one near +2.0s, never earlier"
kprimctl list | grep -E 'ID|payments'

scene "3. Semaphore permits come back when a holder dies"
kprimctl create sem db-conns 2
kprimctl acquire db-conns 2 60000 &
holder=$!
sleep 1
note "a worker (pid $holder) holds both database connections:"
kprimctl list | grep -E 'ID|db-conns'
note "it is killed with SIGKILL, no cleanup code runs..."
kill -9 $holder
wait $holder 2>/dev/null || true
kprimctl list | grep -E 'ID|db-conns'
note "...and the permits are back: the next worker gets them at once"
kprimctl acquire db-conns 2 0

scene "4. A cache every process reads, with expiry and atomic counters"
kprimctl create cache sessions 1048576
kprimctl put sessions user:42 '{"name":"ada","plan":"pro"}' 1500
note "another process reads it:"
kprimctl get sessions user:42
note "three processes count page views at once:"
kprimctl put sessions views 0
for p in 1 2 3; do
	( i=0; while [ $i -lt 20 ]; do kprimctl incr sessions views 1 >/dev/null; i=$((i+1)); done ) &
done
wait
printf '  views = '; kprimctl get sessions views
note "1.5 s later the session has expired:"
sleep 2
kprimctl get sessions user:42 || true
kprimctl list | grep -E 'ID|sessions'

scene "5. Pipelines: generator -> square -> filter, and fan-out/fan-in"
pipeline_square
fanout

if [ -x /demo/pipeline_limited ]; then
	scene "6. A pipeline stage throttled host-wide by a kprim limiter"
	pipeline_limited
fi
if [ -x /demo/breaker_demo ]; then
	scene "7. A circuit breaker shared by every process"
	breaker_demo
fi

scene "Prometheus view of everything (kprimctl stats)"
kprimctl stats | head -20
scene "Cleaning up"
kprimctl rm limiter payments-api
kprimctl rm sem db-conns
kprimctl rm cache sessions
kprimctl list
