// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - token-bucket arithmetic in integer nanoseconds.
 *
 * The state is the fill level at the last access; refill is computed from
 * the elapsed time on the next access, so an idle bucket costs nothing and
 * needs no timer. Every product is checked for overflow: a bucket that has
 * been idle for years simply reads as full.
 */
#include <linux/math64.h>
#include <linux/overflow.h>
#include <linux/limits.h>
#include "bucket.h"
#include "compat.h"

/**
 * kprim_bucket_check() - validate limiter parameters.
 * @p:		rate, period_ns, burst and (with @initial) initial
 * @initial:	whether @p->initial is meaningful
 *
 * Return: 0; -EINVAL for a zero rate, period or burst, or initial > burst;
 * -EOVERFLOW when burst * period_ns does not fit in 64 bits.
 */
int kprim_bucket_check(const struct kprim_limiter_params *p, bool initial)
{
	u64 cap;

	if (!p->rate || !p->period_ns || !p->burst)
		return -EINVAL;
	if (initial && p->initial > p->burst)
		return -EINVAL;
	if (check_mul_overflow(p->burst, p->period_ns, &cap))
		return -EOVERFLOW;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_bucket_check);

/**
 * kprim_bucket_init() - set up a bucket from checked parameters.
 * @b:		the bucket
 * @p:		parameters accepted by kprim_bucket_check()
 * @initial:	start with @p->initial tokens instead of a full bucket
 * @now:	current time, ns
 */
void kprim_bucket_init(struct kprim_bucket *b,
		       const struct kprim_limiter_params *p, bool initial,
		       u64 now)
{
	b->rate = p->rate;
	b->period_ns = p->period_ns;
	b->burst = p->burst;
	b->cap = p->burst * p->period_ns;
	b->fill = initial ? p->initial * p->period_ns : b->cap;
	b->last = now;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_bucket_init);

/**
 * kprim_bucket_wait_ns() - time until @n tokens will have accumulated.
 * @b:		the bucket
 * @n:		tokens; may exceed burst when it sums queued requests that
 *		will be admitted one after the other
 * @now:	current time, ns
 *
 * Exact: after the returned time a take of @n succeeds (if nothing else
 * takes first), one nanosecond earlier it would not.
 *
 * Return: nanoseconds, 0 when the tokens are there now, U64_MAX when the
 * wait does not fit in 64 bits.
 */
u64 kprim_bucket_wait_ns(struct kprim_bucket *b, u64 n, u64 now)
{
	u64 cost, wait;

	kprim_bucket_refill(b, now);
	if (check_mul_overflow(n, b->period_ns, &cost))
		return U64_MAX;
	if (cost <= b->fill)
		return 0;
	/* Round up without the overflow of (x + rate - 1) / rate. */
	cost -= b->fill;
	wait = div64_u64(cost, b->rate);
	if (wait * b->rate < cost)
		wait++;
	return wait;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_bucket_wait_ns);

/**
 * kprim_bucket_tokens() - whole tokens available now.
 * @b:		the bucket
 * @now:	current time, ns
 *
 * Return: the number of tokens a take could have at @now.
 */
u64 kprim_bucket_tokens(struct kprim_bucket *b, u64 now)
{
	kprim_bucket_refill(b, now);
	return div64_u64(b->fill, b->period_ns);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_bucket_tokens);

/**
 * kprim_bucket_set() - change rate and burst, keeping the tokens.
 * @b:		the bucket
 * @rate:	new rate (checked with kprim_bucket_check())
 * @period_ns:	new period
 * @burst:	new burst
 * @now:	current time, ns
 *
 * Time up to @now is refilled at the old rate. The tokens in the bucket
 * (fractions included) carry over, clamped to the new burst.
 */
void kprim_bucket_set(struct kprim_bucket *b, u64 rate, u64 period_ns,
		      u64 burst, u64 now)
{
	u64 cap = burst * period_ns;
	u64 fill;

	kprim_bucket_refill(b, now);
	/*
	 * fill / old period = tokens = new fill / new period. Clamp first:
	 * below burst tokens the quotient is below the new cap, so the 128-bit
	 * division cannot overflow 64 bits.
	 */
	if (period_ns == b->period_ns)
		fill = b->fill;
	else if (div64_u64(b->fill, b->period_ns) >= burst)
		fill = cap;
	else
		fill = mul_u64_u64_div_u64(b->fill, period_ns, b->period_ns);
	b->rate = rate;
	b->period_ns = period_ns;
	b->burst = burst;
	b->cap = cap;
	b->fill = min(fill, cap);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_bucket_set);
