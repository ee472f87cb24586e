/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - token-bucket arithmetic, separate from locking and time so that
 * KUnit can drive it with a fake clock.
 */
#ifndef _KPRIM_BUCKET_H
#define _KPRIM_BUCKET_H

#include <linux/overflow.h>
#include <linux/types.h>
#include "uapi/kprim.h"

/**
 * struct kprim_bucket - a token bucket in exact integer arithmetic.
 * @rate:	tokens added every @period_ns
 * @period_ns:	refill period
 * @burst:	bucket size in tokens
 * @cap:	@burst * @period_ns: the bucket size in fill units
 * @fill:	fill units available at @last
 * @last:	time of the last refill, ns
 *
 * One token is @period_ns fill units and every nanosecond adds @rate fill
 * units, so a bucket of 1 token/hour and one of 10^9 tokens/s are both
 * exact: no rounding ever accumulates. The caller serialises access.
 */
struct kprim_bucket {
	u64 rate;
	u64 period_ns;
	u64 burst;
	u64 cap;
	u64 fill;
	u64 last;
};

int kprim_bucket_check(const struct kprim_limiter_params *p, bool initial);
void kprim_bucket_init(struct kprim_bucket *b,
		       const struct kprim_limiter_params *p, bool initial,
		       u64 now);
u64 kprim_bucket_wait_ns(struct kprim_bucket *b, u64 n, u64 now);
u64 kprim_bucket_tokens(struct kprim_bucket *b, u64 now);
void kprim_bucket_set(struct kprim_bucket *b, u64 rate, u64 period_ns,
		      u64 burst, u64 now);

/*
 * Inline: they are the limiter's hot path (a try-take), and a call there
 * costs about as much as the arithmetic.
 */

/* Bring @b up to @now. Time never runs backwards for a bucket. */
static inline void kprim_bucket_refill(struct kprim_bucket *b, u64 now)
{
	u64 add;

	if (now <= b->last)
		return;
	if (check_mul_overflow(now - b->last, b->rate, &add) ||
	    add >= b->cap - b->fill)
		b->fill = b->cap;
	else
		b->fill += add;
	b->last = now;
}

/**
 * kprim_bucket_take() - take @n tokens if they are there.
 * @b:		the bucket
 * @n:		tokens, 1..burst
 * @now:	current time, ns
 *
 * Return: true when the tokens were taken.
 */
static inline bool kprim_bucket_take(struct kprim_bucket *b, u64 n, u64 now)
{
	u64 cost;

	kprim_bucket_refill(b, now);
	if (check_mul_overflow(n, b->period_ns, &cost) || cost > b->fill)
		return false;
	b->fill -= cost;
	return true;
}

#endif /* _KPRIM_BUCKET_H */
