/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkprim: a limiter take in userspace, through the limiter's shared
 * state page (KPRIM_FEAT_LIMITER_PAGE; the protocol is described with
 * struct kprim_limiter_page in the uapi header and modelled in
 * models/limiter_page.pml). Inline: it is the limiter's hot path, and
 * limiter.c is its only caller.
 *
 * A take that finds tokens and no queued taker is a clock read and one
 * 16-byte compare-and-swap; everything else (waits, takes that find the
 * bucket short and must be counted and told when to retry, bad arguments)
 * goes to the kernel as before.
 */
#ifndef KPRIM_LIMITER_PAGE_H
#define KPRIM_LIMITER_PAGE_H

#include <time.h>
#include "internal.h"

#if defined(__x86_64__)
#define KPRIM_HAVE_CAS16 1

/* {p[0], p[1]} == {o0, o1} ? {p[0], p[1]} = {n0, n1}, true : false */
static inline bool kprim_cas16(__u64 *p, uint64_t o0, uint64_t o1,
			       uint64_t n0, uint64_t n1)
{
	bool ok;

	__asm__ __volatile__("lock cmpxchg16b %1"
			     : "=@ccz"(ok), "+m"(*(unsigned __int128 *)p),
			       "+a"(o0), "+d"(o1)
			     : "b"(n0), "c"(n1)
			     : "memory");
	return ok;
}
#else
#define KPRIM_HAVE_CAS16 0

static inline bool kprim_cas16(__u64 *p, uint64_t o0, uint64_t o1,
			       uint64_t n0, uint64_t n1)
{
	(void)p; (void)o0; (void)o1; (void)n0; (void)n1;
	return false;
}
#endif

/* Retries of a swap that lost a race before the ioctl decides. */
#define KPRIM_PAGE_TRIES	4

/* limiter_page.c: whether CLOCK_MONOTONIC here is the kernel's. */
KPRIM_INTERNAL extern int kprim_clock_shared;
KPRIM_INTERNAL int kprim_clock_check(void);
KPRIM_INTERNAL bool kprim_clock_recheck(void);

/*
 * A refill longer than this checks that CLOCK_MONOTONIC has not moved
 * against CLOCK_REALTIME (which time namespaces do not shift) by more than
 * as much since the check: a setns() into a time namespace. A shift below
 * it can go unseen; it is worth at most this much refill.
 */
#define KPRIM_CLOCK_RECHECK_NS	10000000ull

static inline bool kprim_clock_ok(void)
{
	int v = __atomic_load_n(&kprim_clock_shared, __ATOMIC_RELAXED);

	return v > 0 || (v < 0 && kprim_clock_check());
}

/* CLOCK_MONOTONIC-based @id in ns; 0 if it cannot be read. */
static inline uint64_t kprim_page_clock(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * The bucket {*fill, *last} brought up to @now, as kprim_bucket_refill()
 * does it in the kernel. False when @now does not fit the page's time, or
 * a long refill finds this process's clock shifted (kprim_clock_recheck()).
 */
static inline bool kprim_page_refill(uint64_t *fill, uint64_t *last,
				     uint64_t now, uint64_t rate, uint64_t cap)
{
	uint64_t add;

	if (now <= *last)
		return true;
	if (now > KPRIM_LIMITER_PAGE_LAST ||
	    (now - *last > KPRIM_CLOCK_RECHECK_NS && !kprim_clock_recheck()))
		return false;
	if (__builtin_mul_overflow(now - *last, rate, &add) ||
	    add >= cap - *fill)
		*fill = cap;
	else
		*fill += add;
	*last = now;
	return true;
}

/*
 * Take @n tokens in userspace. Return: 0, or -EAGAIN when the ioctl must
 * decide (the page says SLOW, the bucket is short, the swap kept losing).
 *
 * The clock is first read coarse (the time of the last tick: a vDSO read
 * of a few instructions, whatever the clocksource); only a bucket that
 * looks short then is looked at again with the precise clock. Both are
 * CLOCK_MONOTONIC, never ahead of the kernel's own reading, so a take at
 * the coarse time is simply a take a little earlier.
 */
static inline int kprim_limiter_page_take(struct kprim_limiter_page *pg,
					  uint64_t n)
{
	uint64_t stamp, seen, fill, last, now, cost, rate, cap;
	int tries;

	if (!kprim_clock_ok())
		return -EAGAIN;
	now = kprim_page_clock(CLOCK_MONOTONIC_COARSE);
	for (tries = 0; tries < KPRIM_PAGE_TRIES; tries++) {
		/* The kernel stores fill before it releases the stamp. */
		stamp = __atomic_load_n(&pg->stamp, __ATOMIC_ACQUIRE);
		if (stamp & KPRIM_LIMITER_PAGE_SLOW)
			return -EAGAIN;
		seen = __atomic_load_n(&pg->fill, __ATOMIC_RELAXED);
		rate = __atomic_load_n(&pg->rate, __ATOMIC_RELAXED);
		cap = __atomic_load_n(&pg->cap, __ATOMIC_RELAXED);
		if (seen > cap ||
		    __builtin_mul_overflow(n, __atomic_load_n(&pg->period_ns,
							       __ATOMIC_RELAXED),
					   &cost))
			return -EAGAIN;
		fill = seen;
		last = stamp & KPRIM_LIMITER_PAGE_LAST;
		if (!kprim_page_refill(&fill, &last, now, rate, cap))
			return -EAGAIN;
		if (cost > fill) {
			/* Short at the last tick: perhaps not now. */
			now = kprim_page_clock(CLOCK_MONOTONIC);
			fill = seen;
			last = stamp & KPRIM_LIMITER_PAGE_LAST;
			if (!kprim_page_refill(&fill, &last, now, rate, cap))
				return -EAGAIN;
			/* Short: the kernel counts it, says when to retry. */
			if (cost > fill)
				return -EAGAIN;
		}
		/* Fails if anyone, the kernel included, changed either word. */
		if (kprim_cas16(&pg->fill, seen, stamp, fill - cost,
				last | (stamp & KPRIM_LIMITER_PAGE_GEN))) {
			__atomic_fetch_add(&pg->admitted, n, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return -EAGAIN;
}

#endif /* KPRIM_LIMITER_PAGE_H */
