/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raw limiter ioctls shared by the kprim selftests of the limiter and its
 * shared state page (KPRIM_FEAT_LIMITER_PAGE): open, take, info, set, and
 * the page's mapping. kt_lim_mapped() is for kselftest_harness tests (include
 * the harness first).
 */
#ifndef KPRIM_KT_LIMITER_H
#define KPRIM_KT_LIMITER_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include "kprim_test.h"

/*
 * Arguments to create a limiter named @name (NULL: anonymous) of @rate
 * tokens a @period ns, bucket @burst; @initial tokens when >= 0
 * (KPRIM_OPEN_INITIAL), else the kernel's default (a full bucket).
 */
static inline struct kprim_open kt_lim_args(const char *name, __u64 rate,
					    __u64 period, __u64 burst,
					    long initial)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, name,
					   KPRIM_OPEN_CREATE);

	a.limiter.rate = rate;
	a.limiter.period_ns = period;
	a.limiter.burst = burst;
	if (initial >= 0) {
		a.flags |= KPRIM_OPEN_INITIAL;
		a.limiter.initial = initial;
	}
	return a;
}

/* A new anonymous limiter (see kt_lim_args()): its fd or a negative errno. */
static inline int kt_lim_open(int sess, __u64 rate, __u64 period,
			      __u64 burst, long initial)
{
	struct kprim_open a = kt_lim_args(NULL, rate, period, burst, initial);

	return kt_open(sess, &a);
}

/* Take @n tokens, waiting up to @timeout_ns: 0 or a negative errno. */
static inline long kt_lim_take(int fd, __u64 n, __u64 timeout_ns)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = n,
		.wait = kt_wait(timeout_ns, KPRIM_NO_CANCEL_FD),
	};

	return kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t);
}

/* The limiter's INFO; every byte 0xff when the ioctl fails. */
static inline struct kprim_limiter_info kt_lim_info(int fd)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

/* LIMITER_SET of the parameters flagged in @what. */
static inline long kt_lim_set(int fd, __u32 what, __u64 rate, __u64 period,
			      __u64 burst)
{
	struct kprim_limiter_set s = {
		.size = sizeof(s), .flags = what,
		.params = { .rate = rate, .period_ns = period, .burst = burst },
	};

	return kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s);
}

/* The limiter's shared state page, mapped read-write; NULL on failure. */
static inline struct kprim_limiter_page *kt_lim_map(int fd)
{
	void *p = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* The page's stamp word (LAST, GEN, SLOW), read with acquire order. */
static inline __u64 kt_lim_stamp(struct kprim_limiter_page *pg)
{
	return __atomic_load_n(&pg->stamp, __ATOMIC_ACQUIRE);
}

/*
 * After unshare(CLONE_NEWTIME): CLOCK_MONOTONIC a day ahead in the new
 * time namespace (this process's children, or itself after setns()): a
 * taker whose times the limiter page must not take. Return: 0, or -1.
 */
static inline int kt_timens_day_ahead(void)
{
	FILE *f = fopen("/proc/self/timens_offsets", "w");
	bool ok = f && fprintf(f, "monotonic 86400 0\n") >= 0;

	if (f && fclose(f))
		ok = false;
	return ok ? 0 : -1;
}

#ifdef __KSELFTEST_HARNESS_H
/*
 * The page of @fd (a limiter just opened, or a negative errno): the test
 * fails here when the open failed or the page cannot be mapped.
 */
static inline struct kprim_limiter_page *
kt_lim_mapped(struct __test_metadata *_metadata, int fd)
{
	struct kprim_limiter_page *pg;

	ASSERT_LE(0, fd);
	pg = kt_lim_map(fd);
	ASSERT_NE(NULL, pg);
	return pg;
}
#endif

#endif /* KPRIM_KT_LIMITER_H */
