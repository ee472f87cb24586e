/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The timing that kprim-bench and its peer programs share, so that their
 * rows are measured the same way: the threads of a case start together,
 * run their operation through a warm-up, count it while measured and stop
 * together. Each thread keeps its own clock window; callers sum the
 * per-thread rates.
 */
#ifndef KPRIM_BENCH_PHASES_H
#define KPRIM_BENCH_PHASES_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { BENCH_WARM, BENCH_MEASURE, BENCH_STOP };

static _Atomic int bench_phase;
static pthread_barrier_t bench_start_line;

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s };

	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * bench_measure - the measured part of one thread, after its own set-up:
 * wait at the start line, run @step(@arg) through the warm-up, then count
 * what it returns (operations done) until the phase is BENCH_STOP. A
 * negative return ends the thread's run and is returned. With @step NULL
 * (the thread's set-up failed) the thread only takes its place at the
 * start line, so that the others are not kept waiting.
 */
static inline int bench_measure(int (*step)(void *arg), void *arg,
				uint64_t *ops, uint64_t *ns)
{
	uint64_t t0, n = 0;
	int ret = 0;

	*ops = 0;
	*ns = 0;
	pthread_barrier_wait(&bench_start_line);
	if (!step)
		return 0;
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) ==
	       BENCH_WARM) {
		ret = step(arg);
		if (ret < 0)
			return ret;
	}
	t0 = bench_now_ns();
	while (atomic_load_explicit(&bench_phase, memory_order_relaxed) ==
	       BENCH_MEASURE) {
		ret = step(arg);
		if (ret < 0)
			break;
		n += (uint64_t)ret;
	}
	*ns = bench_now_ns() - t0;
	*ops = n;
	return ret < 0 ? ret : 0;
}

/*
 * bench_run - run one case: start @nthreads threads, thread i running
 * @fn on the element of @args at i * @stride (each calls bench_measure()),
 * hold the warm-up for @warm seconds and the measurement for @secs, then
 * join them all. A thread that cannot be started ends the program.
 */
static inline void bench_run(int nthreads, void *(*fn)(void *), void *args,
			     size_t stride, double warm, double secs)
{
	pthread_t tids[256];
	int i, ret;

	if (nthreads < 1 || nthreads > 256) {
		fprintf(stderr, "bench_run: %d threads (1 to 256)\n", nthreads);
		exit(1);
	}
	atomic_store(&bench_phase, BENCH_WARM);
	pthread_barrier_init(&bench_start_line, NULL,
			     (unsigned int)nthreads + 1);
	for (i = 0; i < nthreads; i++) {
		ret = pthread_create(&tids[i], NULL, fn,
				     (char *)args + (size_t)i * stride);
		if (ret) {
			fprintf(stderr, "pthread_create: %s\n", strerror(ret));
			exit(1);
		}
	}
	pthread_barrier_wait(&bench_start_line);
	bench_sleep(warm);
	atomic_store(&bench_phase, BENCH_MEASURE);
	bench_sleep(secs);
	atomic_store(&bench_phase, BENCH_STOP);
	for (i = 0; i < nthreads; i++)
		pthread_join(tids[i], NULL);
	pthread_barrier_destroy(&bench_start_line);
}

#endif /* KPRIM_BENCH_PHASES_H */
