// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit: the token-bucket arithmetic, driven by a fake clock.
 */
#include <kunit/test.h>
#include <linux/limits.h>
#include <linux/math64.h>
#include "../bucket.h"

#define NSEC_PER_HOUR	(3600ULL * NSEC_PER_SEC)

struct bucket_case {
	const char *desc;
	u64 rate;
	u64 period_ns;
	u64 burst;
};

static const struct bucket_case bucket_cases[] = {
	{ "1 per hour, burst 1",	1, NSEC_PER_HOUR, 1 },
	{ "1 per hour, burst 1e6",	1, NSEC_PER_HOUR, 1000000 },
	{ "3 per second, burst 2",	3, NSEC_PER_SEC, 2 },
	{ "7 per 3 ms, burst 10",	7, 3 * NSEC_PER_MSEC, 10 },
	{ "1000 per second, burst 100",	1000, NSEC_PER_SEC, 100 },
	{ "1e9 per second, burst 1",	1000000000, NSEC_PER_SEC, 1 },
	{ "1e9 per second, burst 1e6",	1000000000, NSEC_PER_SEC, 1000000 },
	{ "1 per ns, burst 1e6",	1, 1, 1000000 },
};

static void bucket_case_desc(const struct bucket_case *c, char *desc)
{
	strscpy(desc, c->desc, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(bucket, bucket_cases, bucket_case_desc);

static struct kprim_bucket make_bucket(const struct bucket_case *c,
				       bool empty, u64 now)
{
	struct kprim_limiter_params p = {
		.rate = c->rate, .period_ns = c->period_ns, .burst = c->burst,
		.initial = 0,
	};
	struct kprim_bucket b;

	kprim_bucket_init(&b, &p, empty, now);
	return b;
}

/* A full bucket admits exactly burst tokens at one instant. */
static void kprim_bucket_full_admits_exactly_burst(struct kunit *test)
{
	const struct bucket_case *c = test->param_value;
	u64 now = 1000;
	struct kprim_bucket b = make_bucket(c, false, now);
	u64 taken = 0, chunk = max_t(u64, 1, c->burst / 4);

	KUNIT_ASSERT_EQ(test, 0, kprim_bucket_check(&(struct kprim_limiter_params){
		.rate = c->rate, .period_ns = c->period_ns, .burst = c->burst },
		false));
	while (taken + chunk <= c->burst && kprim_bucket_take(&b, chunk, now))
		taken += chunk;
	while (kprim_bucket_take(&b, 1, now))
		taken++;
	KUNIT_EXPECT_EQ(test, c->burst, taken);
	KUNIT_EXPECT_EQ(test, 0ULL, kprim_bucket_tokens(&b, now));
}

/* The retry-after is exact: one ns early fails, on time succeeds. */
static void kprim_bucket_wait_is_exact(struct kunit *test)
{
	const struct bucket_case *c = test->param_value;
	u64 now = 5, wait;
	struct kprim_bucket b = make_bucket(c, true, now);
	struct kprim_bucket early;

	wait = kprim_bucket_wait_ns(&b, c->burst, now);
	KUNIT_ASSERT_GT(test, wait, 0ULL);
	early = b;
	KUNIT_EXPECT_FALSE(test, kprim_bucket_take(&early, c->burst,
						   now + wait - 1));
	KUNIT_EXPECT_TRUE(test, kprim_bucket_take(&b, c->burst, now + wait));
	KUNIT_EXPECT_EQ(test, 0ULL, kprim_bucket_tokens(&b, now + wait));
}

/*
 * Taking everything every step for 8 periods admits exactly
 * burst + rate * t / period tokens when the bucket never overflows between
 * steps, and never more than that when it does (burst 1: fractions lost).
 */
static void kprim_bucket_steady_rate_admission_count(struct kunit *test)
{
	const struct bucket_case *c = test->param_value;
	struct kprim_bucket b = make_bucket(c, false, 0);
	u64 step = c->period_ns / 8, now = 0, admitted = 0, limit, i;
	bool exact = c->burst >= 2;

	/* At most one token of refill per step (burst - 1 when exact). */
	if (exact)
		step = min(step, div64_u64((c->burst - 1) * c->period_ns,
					   c->rate));
	else
		step = min(step, div64_u64(c->period_ns, c->rate));
	step = max_t(u64, step, 1);
	exact = exact && step * c->rate <= (c->burst - 1) * c->period_ns;

	for (i = 0; i < 64; i++, now += step) {
		u64 n = kprim_bucket_tokens(&b, now);

		if (n)
			KUNIT_ASSERT_TRUE(test, kprim_bucket_take(&b, n, now));
		admitted += n;
	}
	now -= step;
	limit = c->burst + mul_u64_u64_div_u64(now, c->rate, c->period_ns);
	if (exact)
		KUNIT_EXPECT_EQ(test, limit, admitted);
	KUNIT_EXPECT_LE(test, admitted, limit);
	KUNIT_EXPECT_GE(test, admitted + 64, limit);
}

/* Idle for a very long time: full, never overflowed past the cap. */
static void kprim_bucket_long_idle_saturates(struct kunit *test)
{
	const struct bucket_case *c = test->param_value;
	struct kprim_bucket b = make_bucket(c, true, 0);

	KUNIT_EXPECT_EQ(test, c->burst, kprim_bucket_tokens(&b, U64_MAX));
	KUNIT_EXPECT_EQ(test, 0ULL, kprim_bucket_wait_ns(&b, c->burst,
							 U64_MAX));
}

static void kprim_bucket_rejects_bad_params(struct kunit *test)
{
	struct kprim_limiter_params p = { .rate = 1, .period_ns = 1, .burst = 1 };

	KUNIT_EXPECT_EQ(test, 0, kprim_bucket_check(&p, false));
	p.rate = 0;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_bucket_check(&p, false));
	p.rate = 1;
	p.period_ns = 0;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_bucket_check(&p, false));
	p.period_ns = 1;
	p.burst = 0;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_bucket_check(&p, false));
	p.burst = 2;
	p.initial = 3;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_bucket_check(&p, true));
	KUNIT_EXPECT_EQ(test, 0, kprim_bucket_check(&p, false));
	p.burst = U64_MAX / 2;
	p.period_ns = 3;
	KUNIT_EXPECT_EQ(test, -EOVERFLOW, kprim_bucket_check(&p, false));
}

/* Extreme values: no overflow in refill, wait or token counts. */
static void kprim_bucket_extremes_do_not_overflow(struct kunit *test)
{
	struct kprim_limiter_params p = {
		.rate = U64_MAX, .period_ns = 1, .burst = U64_MAX,
	};
	struct kprim_bucket b;

	KUNIT_ASSERT_EQ(test, 0, kprim_bucket_check(&p, false));
	kprim_bucket_init(&b, &p, true, 0);
	KUNIT_EXPECT_EQ(test, 0ULL, kprim_bucket_tokens(&b, 0));
	/* One ns refills U64_MAX units: the whole bucket. */
	KUNIT_EXPECT_EQ(test, U64_MAX, kprim_bucket_tokens(&b, 1));
	KUNIT_EXPECT_TRUE(test, kprim_bucket_take(&b, U64_MAX, 1));
	KUNIT_EXPECT_EQ(test, 1ULL, kprim_bucket_wait_ns(&b, U64_MAX, 1));

	/* A request whose cost does not fit: wait saturates. */
	p.rate = 1;
	p.period_ns = NSEC_PER_HOUR;
	p.burst = 1;
	kprim_bucket_init(&b, &p, true, 0);
	KUNIT_EXPECT_EQ(test, U64_MAX, kprim_bucket_wait_ns(&b, U64_MAX, 0));
	KUNIT_EXPECT_FALSE(test, kprim_bucket_take(&b, U64_MAX, 0));

	/* Time running backwards is ignored, not wrapped. */
	kprim_bucket_init(&b, &p, true, 1000);
	KUNIT_EXPECT_EQ(test, 0ULL, kprim_bucket_tokens(&b, 10));
}

/* Rate change mid-stream: refill up to now at the old rate, then the new. */
static void kprim_bucket_rate_change_mid_stream(struct kunit *test)
{
	struct kprim_limiter_params p = {
		.rate = 10, .period_ns = NSEC_PER_SEC, .burst = 100,
	};
	struct kprim_bucket b;
	u64 t = 0;

	kprim_bucket_init(&b, &p, true, t);
	t += NSEC_PER_SEC / 2;		/* 5 tokens at 10/s */
	kprim_bucket_set(&b, 1000, NSEC_PER_SEC, 100, t);
	KUNIT_EXPECT_EQ(test, 5ULL, kprim_bucket_tokens(&b, t));
	t += 10 * NSEC_PER_MSEC;	/* +10 at 1000/s */
	KUNIT_EXPECT_EQ(test, 15ULL, kprim_bucket_tokens(&b, t));

	/* Same rate, other units: 1 per ms == 1e6 per 1e9 ns keeps tokens. */
	kprim_bucket_set(&b, 1, NSEC_PER_MSEC, 100, t);
	KUNIT_EXPECT_EQ(test, 15ULL, kprim_bucket_tokens(&b, t));
	KUNIT_EXPECT_EQ(test, 16ULL, kprim_bucket_tokens(&b, t + NSEC_PER_MSEC));

	/* Lowering the burst clamps the tokens. */
	kprim_bucket_set(&b, 1, NSEC_PER_MSEC, 4, t + NSEC_PER_MSEC);
	KUNIT_EXPECT_EQ(test, 4ULL, kprim_bucket_tokens(&b, t + NSEC_PER_MSEC));

	/* A huge new period with a full bucket must not overflow. */
	kprim_bucket_set(&b, 1, U64_MAX / 8, 4, t + NSEC_PER_MSEC);
	KUNIT_EXPECT_EQ(test, 4ULL, kprim_bucket_tokens(&b, t + NSEC_PER_MSEC));
}

/*
 * Fractions carry: 3 tokens/s admits at 333333334 ns, 666666667 ns, 1 s.
 * (Burst 2: with burst 1 the fraction above one token would overflow the
 * bucket and be lost, as it must.)
 */
static void kprim_bucket_fractional_rate_is_exact(struct kunit *test)
{
	struct kprim_limiter_params p = {
		.rate = 3, .period_ns = NSEC_PER_SEC, .burst = 2,
	};
	struct kprim_bucket b;

	kprim_bucket_init(&b, &p, true, 0);
	KUNIT_EXPECT_EQ(test, 333333334ULL, kprim_bucket_wait_ns(&b, 1, 0));
	KUNIT_EXPECT_TRUE(test, kprim_bucket_take(&b, 1, 333333334));
	KUNIT_EXPECT_FALSE(test, kprim_bucket_take(&b, 1, 666666666));
	KUNIT_EXPECT_TRUE(test, kprim_bucket_take(&b, 1, 666666667));
	KUNIT_EXPECT_TRUE(test, kprim_bucket_take(&b, 1, NSEC_PER_SEC));
	KUNIT_EXPECT_FALSE(test, kprim_bucket_take(&b, 1, NSEC_PER_SEC));
}

/* A full burst-1 bucket drops what overflows: no credit beyond one token. */
static void kprim_bucket_overflow_is_dropped(struct kunit *test)
{
	struct kprim_limiter_params p = {
		.rate = 3, .period_ns = NSEC_PER_SEC, .burst = 1,
	};
	struct kprim_bucket b;

	kprim_bucket_init(&b, &p, true, 0);
	/* 1.000000002 tokens accrued; the bucket holds 1. */
	KUNIT_EXPECT_TRUE(test, kprim_bucket_take(&b, 1, 333333334));
	KUNIT_EXPECT_EQ(test, 333333334ULL,
			kprim_bucket_wait_ns(&b, 1, 333333334));
}

static struct kunit_case kprim_limiter_cases[] = {
	KUNIT_CASE_PARAM(kprim_bucket_full_admits_exactly_burst,
			 bucket_gen_params),
	KUNIT_CASE_PARAM(kprim_bucket_wait_is_exact, bucket_gen_params),
	KUNIT_CASE_PARAM(kprim_bucket_steady_rate_admission_count,
			 bucket_gen_params),
	KUNIT_CASE_PARAM(kprim_bucket_long_idle_saturates, bucket_gen_params),
	KUNIT_CASE(kprim_bucket_rejects_bad_params),
	KUNIT_CASE(kprim_bucket_extremes_do_not_overflow),
	KUNIT_CASE(kprim_bucket_rate_change_mid_stream),
	KUNIT_CASE(kprim_bucket_fractional_rate_is_exact),
	KUNIT_CASE(kprim_bucket_overflow_is_dropped),
	{}
};

static struct kunit_suite kprim_limiter_suite = {
	.name = "kprim_limiter",
	.test_cases = kprim_limiter_cases,
};

kunit_test_suite(kprim_limiter_suite);
