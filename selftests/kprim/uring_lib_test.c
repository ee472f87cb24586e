// SPDX-License-Identifier: GPL-2.0
/*
 * libkprim's io_uring API (<kprim/uring.h>): every prep helper, decoded
 * with kprim_uring_complete(), gives what the synchronous call gives on an
 * object in the same state, out-pointers included, errors included (each
 * bad input its own test); the uring_server example serving clients
 * under a limiter and a semaphore from one thread. (Batched gets without
 * a ring, kprim_cache_mget(), are tested in cache_mget_test.)
 *
 * Timing bounds: the VM is emulated (TCG, maybe KASAN); upper bounds add
 * SLACK_NS.
 */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "cancel_later.h"
#include "kprim.h"
#include "kprim/uring.h"
#include "lib_objects.h"
#include "kt_uring.h"
#include "../../kmod/uapi/kprim.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define SLACK_NS	(2000 * MSEC)
#define HOUR_NS		(3600 * NSEC)
/* A decode that never happened (submit or wait failed). */
#define NO_CQE		12345
/* An out-pointer's value before the call: must stay when not written. */
#define UNTOUCHED	0x5a5a5a5a5a5a5a5aull

FIXTURE(ul) {
	struct kprim *k;
	struct io_uring ring;
	bool have_ring;
};

FIXTURE_SETUP(ul)
{
	uint64_t feat = 0;
	int rc = kprim_open(&self->k);

	self->have_ring = false;
	if (rc == -ENODEV)
		SKIP(return, "no /dev/kprim: kprim.ko not loaded");
	ASSERT_EQ(0, rc);
	ASSERT_LE(0, kprim_api_version(self->k, &feat));
	ASSERT_NE(0, feat & KPRIM_FEAT_URING_CMD);
	rc = io_uring_queue_init(64, &self->ring, 0);
	if (rc == -ENOSYS || rc == -EPERM)
		SKIP(return, "io_uring not available: %s", strerror(-rc));
	ASSERT_EQ(0, rc);
	self->have_ring = true;
}

FIXTURE_TEARDOWN(ul)
{
	if (self->have_ring)
		io_uring_queue_exit(&self->ring);
	kprim_close(self->k);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + ts.tv_nsec;
}

/* Submit what is queued (one SQE) and decode its completion. */
static int run1(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;
	int ret;

	if (io_uring_submit(ring) != 1)
		return NO_CQE;
	do
		ret = io_uring_wait_cqe(ring, &cqe);
	while (ret == -EINTR);
	if (ret)
		return NO_CQE;
	ret = kprim_uring_complete(cqe);
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

#define SQE()	io_uring_get_sqe(&self->ring)
#define RUN()	run1(&self->ring)

static struct kprim_cache *new_cache(struct __test_metadata *_metadata,
				     struct kprim *k)
{
	struct kprim_cache_config cfg = { .max_value = 1024 };

	return new_cache_cfg(_metadata, k, &cfg);
}

static uint64_t absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/*
 * Limiter: two limiters in the same state, one driven by the synchronous
 * call, one through the ring.
 */

/* A take that gets its token: 0, retry-after written as 0. */
TEST_F(ul, limiter_take_ok_equals_sync)
{
	struct kprim_limiter *a = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter *b = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter_stats sa, sb;
	struct kprim_uring_op op;
	uint64_t ra = UNTOUCHED, rb = UNTOUCHED;

	ASSERT_EQ(0, kprim_limiter_take(a, 1, NULL, KPRIM_TIMEOUT_INFINITE, &ra));
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &op, b, 1, NULL,
						   KPRIM_TIMEOUT_INFINITE, &rb));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(ra, rb);
	EXPECT_EQ(0, rb);
	ASSERT_EQ(0, kprim_limiter_stats(a, &sa));
	ASSERT_EQ(0, kprim_uring_prep_limiter_stats(SQE(), &op, b, &sb));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(0, memcmp(&sa, &sb, sizeof(sa)));
	EXPECT_EQ(1, sb.tokens);
	EXPECT_EQ(1, sb.admitted);
	kprim_limiter_close(a);
	kprim_limiter_close(b);
}

/* An empty bucket: -EAGAIN with the same retry-after (about an hour). */
TEST_F(ul, limiter_try_take_eagain_retry_after)
{
	struct kprim_limiter *a = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_limiter *b = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_uring_op op;
	uint64_t ra = 0, rb = 0;

	ASSERT_EQ(-EAGAIN, kprim_limiter_try_take(a, 1, &ra));
	ASSERT_EQ(0, kprim_uring_prep_limiter_try_take(SQE(), &op, b, 1, &rb));
	EXPECT_EQ(-EAGAIN, RUN());
	EXPECT_LT(HOUR_NS - SLACK_NS, rb);
	EXPECT_GE(HOUR_NS, rb);
	EXPECT_GT(SLACK_NS, absdiff(ra, rb));
	kprim_limiter_close(a);
	kprim_limiter_close(b);
}

/* A take whose own timeout ends it: -ETIMEDOUT with a retry-after. */
TEST_F(ul, limiter_take_timeout_etimedout_retry_after)
{
	struct kprim_limiter *a = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_limiter *b = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_uring_op op;
	uint64_t ra = 0, rb = 0, t0, dt;

	ASSERT_EQ(-ETIMEDOUT, kprim_limiter_take(a, 1, NULL, 50 * MSEC, &ra));
	t0 = now_ns();
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &op, b, 1, NULL,
						   50 * MSEC, &rb));
	EXPECT_EQ(-ETIMEDOUT, RUN());
	dt = now_ns() - t0;
	EXPECT_LE(50 * MSEC, dt);
	EXPECT_GT(50 * MSEC + SLACK_NS, dt);
	EXPECT_LT(HOUR_NS - SLACK_NS, rb);
	EXPECT_GT(SLACK_NS, absdiff(ra, rb));
	kprim_limiter_close(a);
	kprim_limiter_close(b);
}

static void take_bad(struct __test_metadata *_metadata, FIXTURE_DATA(ul) *self,
		     struct kprim_limiter *l, uint64_t n, int want)
{
	struct kprim_uring_op op;
	uint64_t ra = UNTOUCHED, rb = UNTOUCHED;

	EXPECT_EQ(want, kprim_limiter_take(l, n, NULL, 0, &ra));
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &op, l, n, NULL, 0,
						   &rb));
	EXPECT_EQ(want, RUN());
	EXPECT_EQ(ra, rb);
}

TEST_F(ul, limiter_take_zero_tokens_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter_stats st;

	take_bad(_metadata, self, l, 0, -EINVAL);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(2, st.tokens);	/* nothing changed */
	kprim_limiter_close(l);
}

TEST_F(ul, limiter_take_above_burst_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter_stats st;

	take_bad(_metadata, self, l, 3, -EINVAL);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(2, st.tokens);
	kprim_limiter_close(l);
}

/* A library-side error: a no-op SQE, the error at decode, nothing written. */
TEST_F(ul, limiter_take_null_handle_einval)
{
	take_bad(_metadata, self, NULL, 1, -EINVAL);
}

TEST_F(ul, limiter_take_cancelled_ctx_ecanceled)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 1);
	struct kprim_limiter_stats st;
	struct kprim_uring_op op;
	struct kprim_ctx *ctx;
	uint64_t ra = UNTOUCHED, rb = UNTOUCHED;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	kprim_ctx_cancel(ctx);
	EXPECT_EQ(-ECANCELED, kprim_limiter_take(l, 1, ctx, 0, &ra));
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &op, l, 1, ctx, 0, &rb));
	EXPECT_EQ(-ECANCELED, RUN());
	EXPECT_EQ(ra, rb);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(1, st.tokens);	/* a dead context takes nothing */
	kprim_ctx_free(ctx);
	kprim_limiter_close(l);
}

TEST_F(ul, limiter_take_expired_ctx_etimedout)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_uring_op op;
	struct kprim_ctx *ctx;
	uint64_t rb = UNTOUCHED;

	ASSERT_EQ(0, kprim_ctx_with_deadline(NULL, now_ns() - 1, &ctx));
	EXPECT_EQ(-ETIMEDOUT, kprim_limiter_take(l, 1, ctx, KPRIM_TIMEOUT_INFINITE,
						 NULL));
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &op, l, 1, ctx,
						   KPRIM_TIMEOUT_INFINITE, &rb));
	EXPECT_EQ(-ETIMEDOUT, RUN());
	EXPECT_EQ(UNTOUCHED, rb);
	kprim_ctx_free(ctx);
	kprim_limiter_close(l);
}

/* The context's cancellation ends a take waiting in the kernel. */
TEST_F(ul, limiter_take_ctx_cancelled_while_waiting)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_limiter_stats st;
	struct kprim_uring_op op;
	struct canceller c;
	struct kprim_ctx *ctx;
	pthread_t th;
	uint64_t ra = UNTOUCHED, rb = UNTOUCHED, t0, dt;

	/* The synchronous call, for the out-pointer's value. */
	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	c.ctx = ctx;
	c.delay_ns = 100 * MSEC;
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, kprim_limiter_take(l, 1, ctx,
						 KPRIM_TIMEOUT_INFINITE, &ra));
	pthread_join(th, NULL);
	kprim_ctx_free(ctx);

	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	c.ctx = ctx;
	c.delay_ns = 200 * MSEC;
	t0 = now_ns();
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &op, l, 1, ctx,
						   KPRIM_TIMEOUT_INFINITE, &rb));
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, RUN());
	dt = now_ns() - t0;
	pthread_join(th, NULL);
	EXPECT_LE(200 * MSEC, dt);
	EXPECT_GT(200 * MSEC + SLACK_NS, dt);
	/* Written as the call writes it (the kernel reports none here). */
	EXPECT_EQ(ra, rb);
	EXPECT_NE(UNTOUCHED, rb);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.admitted);
	kprim_ctx_free(ctx);
	kprim_limiter_close(l);
}

/*
 * A take waiting for its token does not hold up the ring: a cache get
 * queued after it completes first.
 */
TEST_F(ul, limiter_take_waits_while_the_ring_serves_others)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 5, NSEC, 1, 0);
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op take, get;
	struct io_uring_cqe *cqe;
	char buf[8];
	size_t len = sizeof(buf);
	uint64_t rb = UNTOUCHED;
	int first, ret;

	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &take, l, 1, NULL,
						   KPRIM_TIMEOUT_INFINITE, &rb));
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &get, c, "k", 1, buf,
						&len, NULL, NULL));
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	first = io_uring_cqe_get_data(cqe) == &get;
	ret = kprim_uring_complete(cqe);
	io_uring_cqe_seen(&self->ring, cqe);
	EXPECT_TRUE(first);
	EXPECT_EQ(-ENOENT, ret);
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(&take, io_uring_cqe_get_data(cqe));
	EXPECT_EQ(0, kprim_uring_complete(cqe));
	io_uring_cqe_seen(&self->ring, cqe);
	EXPECT_EQ(0, rb);
	kprim_cache_close(c);
	kprim_limiter_close(l);
}

TEST_F(ul, limiter_set_rate_and_burst)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter_stats st;
	struct kprim_uring_op op;

	ASSERT_EQ(0, kprim_uring_prep_limiter_set_rate(SQE(), &op, l, 7, NSEC));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_uring_prep_limiter_set_burst(SQE(), &op, l, 9));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(7, st.rate);
	EXPECT_EQ(NSEC, st.period_ns);
	EXPECT_EQ(9, st.burst);
	kprim_limiter_close(l);
}

TEST_F(ul, limiter_set_rate_zero_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter_stats st;
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_limiter_set_rate(l, 0, NSEC));
	ASSERT_EQ(0, kprim_uring_prep_limiter_set_rate(SQE(), &op, l, 0, NSEC));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(1, st.rate);
	kprim_limiter_close(l);
}

TEST_F(ul, limiter_set_burst_zero_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_limiter_stats st;
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_limiter_set_burst(l, 0));
	ASSERT_EQ(0, kprim_uring_prep_limiter_set_burst(SQE(), &op, l, 0));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(2, st.burst);
	kprim_limiter_close(l);
}

TEST_F(ul, limiter_stats_null_out_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 2, -1);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_limiter_stats(l, NULL));
	ASSERT_EQ(0, kprim_uring_prep_limiter_stats(SQE(), &op, l, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_limiter_close(l);
}

/*
 * Semaphore.
 */

TEST_F(ul, sem_acquire_release_equals_sync)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 3);
	struct kprim_sem_stats sa, sb;
	struct kprim_uring_op op;

	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &op, s, 2, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_uring_prep_sem_stats(SQE(), &op, s, &sb));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_sem_stats(s, &sa));
	EXPECT_EQ(0, memcmp(&sa, &sb, sizeof(sa)));
	EXPECT_EQ(2, sb.held_by_me);
	EXPECT_EQ(1, sb.available);
	/* One left: a try for two fails alike both ways. */
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(s, 2));
	ASSERT_EQ(0, kprim_uring_prep_sem_try_acquire(SQE(), &op, s, 2));
	EXPECT_EQ(-EAGAIN, RUN());
	ASSERT_EQ(0, kprim_uring_prep_sem_try_acquire(SQE(), &op, s, 1));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_uring_prep_sem_release(SQE(), &op, s, 3));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_sem_stats(s, &sa));
	EXPECT_EQ(3, sa.available);
	EXPECT_EQ(0, sa.held_by_me);
	kprim_sem_close(s);
}

TEST_F(ul, sem_acquire_timeout_etimedout)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op op;
	uint64_t t0, dt;

	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	EXPECT_EQ(-ETIMEDOUT, kprim_sem_acquire(s, 1, NULL, 50 * MSEC));
	t0 = now_ns();
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &op, s, 1, NULL,
						  50 * MSEC));
	EXPECT_EQ(-ETIMEDOUT, RUN());
	dt = now_ns() - t0;
	EXPECT_LE(50 * MSEC, dt);
	EXPECT_GT(50 * MSEC + SLACK_NS, dt);
	kprim_sem_close(s);
}

TEST_F(ul, sem_acquire_zero_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_sem_acquire(s, 0, NULL, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &op, s, 0, NULL, 0));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_sem_close(s);
}

TEST_F(ul, sem_acquire_above_permits_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_sem_acquire(s, 3, NULL, KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &op, s, 3, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_sem_close(s);
}

TEST_F(ul, sem_acquire_null_handle_einval)
{
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_sem_acquire(NULL, 1, NULL, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &op, NULL, 1, NULL, 0));
	EXPECT_EQ(-EINVAL, RUN());
}

TEST_F(ul, sem_release_more_than_held_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);
	struct kprim_sem_stats st;
	struct kprim_uring_op op;

	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_sem_release(s, 2));
	ASSERT_EQ(0, kprim_uring_prep_sem_release(SQE(), &op, s, 2));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(1, st.held_by_me);
	kprim_sem_close(s);
}

TEST_F(ul, sem_resize)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);
	struct kprim_sem_stats st;
	struct kprim_uring_op op;

	ASSERT_EQ(0, kprim_uring_prep_sem_resize(SQE(), &op, s, 5));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(5, st.permits);
	kprim_sem_close(s);
}

TEST_F(ul, sem_resize_zero_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);
	struct kprim_sem_stats st;
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_sem_resize(s, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_resize(SQE(), &op, s, 0));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(2, st.permits);
	kprim_sem_close(s);
}

TEST_F(ul, sem_holders_equals_sync)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 4);
	struct kprim_sem_holder_info ha[2], hb[2];
	struct kprim_uring_op op;

	ASSERT_EQ(0, kprim_sem_acquire(s, 3, NULL, 0));
	memset(ha, 0, sizeof(ha));
	memset(hb, 0, sizeof(hb));
	EXPECT_EQ(1, kprim_sem_holders(s, ha, 2));
	ASSERT_EQ(0, kprim_uring_prep_sem_holders(SQE(), &op, s, hb, 2));
	EXPECT_EQ(1, RUN());
	EXPECT_EQ(getpid(), hb[0].pid);
	EXPECT_EQ(3, hb[0].held);
	EXPECT_EQ(ha[0].pid, hb[0].pid);
	EXPECT_EQ(ha[0].held, hb[0].held);
	/* Capacity 0: just the count. */
	ASSERT_EQ(0, kprim_uring_prep_sem_holders(SQE(), &op, s, NULL, 0));
	EXPECT_EQ(1, RUN());
	kprim_sem_close(s);
}

TEST_F(ul, sem_holders_null_array_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 4);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_sem_holders(s, NULL, 2));
	ASSERT_EQ(0, kprim_uring_prep_sem_holders(SQE(), &op, s, NULL, 2));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_sem_close(s);
}

TEST_F(ul, sem_stats_null_out_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 4);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_sem_stats(s, NULL));
	ASSERT_EQ(0, kprim_uring_prep_sem_stats(SQE(), &op, s, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_sem_close(s);
}

/*
 * Cache.
 */

TEST_F(ul, cache_get_hit_equals_sync)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	char ba[16] = "", bb[16] = "";
	size_t la = sizeof(ba), lb = sizeof(bb);
	uint64_t ta, tb, ca, cb, cas_set = 0;

	ASSERT_EQ(0, kprim_uring_prep_cache_set(SQE(), &op, c, "key", 3,
						"value", 5, HOUR_NS, &cas_set));
	EXPECT_EQ(0, RUN());
	EXPECT_NE(0, cas_set);
	ASSERT_EQ(0, kprim_cache_get(c, "key", 3, ba, &la, &ta, &ca));
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &op, c, "key", 3, bb,
						&lb, &tb, &cb));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(5, lb);
	EXPECT_EQ(la, lb);
	EXPECT_EQ(0, memcmp(bb, "value", 5));
	EXPECT_EQ(cas_set, cb);
	EXPECT_EQ(ca, cb);
	EXPECT_LT(HOUR_NS - SLACK_NS, tb);
	EXPECT_GT(SLACK_NS, absdiff(ta, tb));
	kprim_cache_close(c);
}

TEST_F(ul, cache_get_miss_enoent)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	char buf[16];
	size_t la = sizeof(buf), lb = sizeof(buf);
	uint64_t tb = UNTOUCHED, cb = UNTOUCHED;

	EXPECT_EQ(-ENOENT, kprim_cache_get(c, "nope", 4, buf, &la, NULL, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &op, c, "nope", 4, buf,
						&lb, &tb, &cb));
	EXPECT_EQ(-ENOENT, RUN());
	EXPECT_EQ(la, lb);
	EXPECT_EQ(sizeof(buf), lb);
	EXPECT_EQ(UNTOUCHED, tb);
	EXPECT_EQ(UNTOUCHED, cb);
	kprim_cache_close(c);
}

/* A short buffer: -EMSGSIZE, the needed size, nothing copied. */
TEST_F(ul, cache_get_short_buffer_emsgsize)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	char buf[4] = "xxx";
	size_t la = 2, lb = 2;
	uint64_t cb = UNTOUCHED;

	ASSERT_EQ(0, kprim_cache_set(c, "k", 1, "abcdefgh", 8, 0, NULL));
	EXPECT_EQ(-EMSGSIZE, kprim_cache_get(c, "k", 1, buf, &la, NULL, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &op, c, "k", 1, buf,
						&lb, NULL, &cb));
	EXPECT_EQ(-EMSGSIZE, RUN());
	EXPECT_EQ(8, lb);
	EXPECT_EQ(la, lb);
	EXPECT_EQ(UNTOUCHED, cb);
	EXPECT_EQ(0, memcmp(buf, "xxx", 4));
	kprim_cache_close(c);
}

static void get_bad(struct __test_metadata *_metadata, FIXTURE_DATA(ul) *self,
		    struct kprim_cache *c, size_t klen, size_t *len, int want)
{
	struct kprim_uring_op op;
	char buf[8];
	size_t before = len ? *len : 0;

	EXPECT_EQ(want, kprim_cache_get(c, "key", klen, buf, len, NULL, NULL));
	if (len)
		EXPECT_EQ(before, *len);
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &op, c, "key", klen,
						buf, len, NULL, NULL));
	EXPECT_EQ(want, RUN());
	if (len)
		EXPECT_EQ(before, *len);
}

TEST_F(ul, cache_get_empty_key_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	size_t len = 8;

	get_bad(_metadata, self, c, 0, &len, -EINVAL);
	kprim_cache_close(c);
}

TEST_F(ul, cache_get_long_key_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	size_t len = 8;

	get_bad(_metadata, self, c, KPRIM_KEY_MAX + 1, &len, -EINVAL);
	kprim_cache_close(c);
}

/* Beyond 32 bits: caught by the library, not truncated. */
TEST_F(ul, cache_get_key_len_beyond_32_bits_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	size_t len = 8;

	get_bad(_metadata, self, c, (1ull << 32) + 3, &len, -EINVAL);
	kprim_cache_close(c);
}

TEST_F(ul, cache_get_null_len_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);

	get_bad(_metadata, self, c, 3, NULL, -EINVAL);
	kprim_cache_close(c);
}

TEST_F(ul, cache_get_null_handle_einval)
{
	size_t len = 8;

	get_bad(_metadata, self, NULL, 3, &len, -EINVAL);
}

TEST_F(ul, cache_store_ops_equal_sync)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	uint64_t cas = 0, old, ca = UNTOUCHED, cb = UNTOUCHED;

	ASSERT_EQ(0, kprim_uring_prep_cache_add(SQE(), &op, c, "a", 1, "1", 1,
						0, &cas));
	EXPECT_EQ(0, RUN());
	/* Present: add fails alike. */
	EXPECT_EQ(-EEXIST, kprim_cache_add(c, "a", 1, "2", 1, 0, &ca));
	ASSERT_EQ(0, kprim_uring_prep_cache_add(SQE(), &op, c, "a", 1, "2", 1,
						0, &cb));
	EXPECT_EQ(-EEXIST, RUN());
	EXPECT_EQ(UNTOUCHED, ca);
	EXPECT_EQ(UNTOUCHED, cb);
	/* Absent: replace fails alike. */
	EXPECT_EQ(-ENOENT, kprim_cache_replace(c, "b", 1, "2", 1, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_replace(SQE(), &op, c, "b", 1, "2",
						    1, 0, NULL));
	EXPECT_EQ(-ENOENT, RUN());
	ASSERT_EQ(0, kprim_uring_prep_cache_replace(SQE(), &op, c, "a", 1, "3",
						    1, KPRIM_TTL_DEFAULT, NULL));
	EXPECT_EQ(0, RUN());
	/* The version moved on: a CAS with the old one is stale. */
	old = cas;
	EXPECT_EQ(-ESTALE, kprim_cache_cas(c, "a", 1, "4", 1, 0, &old));
	EXPECT_EQ(cas, old);
	ASSERT_EQ(0, kprim_uring_prep_cache_cas(SQE(), &op, c, "a", 1, "4", 1,
						0, &old));
	EXPECT_EQ(-ESTALE, RUN());
	EXPECT_EQ(cas, old);
	/* With the current version it stores and returns the new one. */
	{
		char buf[4];
		size_t len = sizeof(buf);

		ASSERT_EQ(0, kprim_cache_get(c, "a", 1, buf, &len, NULL, &old));
		cas = old;
		ASSERT_EQ(0, kprim_uring_prep_cache_cas(SQE(), &op, c, "a", 1,
							"5", 1, 0, &cas));
		EXPECT_EQ(0, RUN());
		EXPECT_NE(old, cas);
		ASSERT_EQ(0, kprim_cache_get(c, "a", 1, buf, &len, NULL, &old));
		EXPECT_EQ(cas, old);
		EXPECT_EQ('5', buf[0]);
	}
	kprim_cache_close(c);
}

/* kprim_cache_store(): a pinned store, through the ring as directly. */
TEST_F(ul, cache_store_pinned_equals_sync)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	char buf[4];
	size_t len = sizeof(buf);
	uint64_t ca = 0, cb = 0, v = 0;

	ASSERT_EQ(0, kprim_cache_store(c, KPRIM_STORE_SET, KPRIM_STORE_PINNED,
				       "a", 1, "1", 1, 0, &ca));
	ASSERT_EQ(0, kprim_uring_prep_cache_store(SQE(), &op, c, KPRIM_STORE_ADD,
						  KPRIM_STORE_PINNED, "b", 1,
						  "2", 1, 0, &cb));
	EXPECT_EQ(0, RUN());
	EXPECT_NE(0, cb);
	EXPECT_NE(ca, cb);
	ASSERT_EQ(0, kprim_cache_get(c, "b", 1, buf, &len, NULL, &v));
	EXPECT_EQ(cb, v);
	EXPECT_EQ('2', buf[0]);
	kprim_cache_close(c);
}

TEST_F(ul, cache_store_unknown_flag_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	char buf[4];
	size_t len = sizeof(buf);

	EXPECT_EQ(-EINVAL, kprim_cache_store(c, KPRIM_STORE_SET, 1u << 7, "a",
					     1, "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_store(SQE(), &op, c, KPRIM_STORE_SET,
						  1u << 7, "a", 1, "1", 1, 0,
						  NULL));
	EXPECT_EQ(-EINVAL, RUN());
	EXPECT_EQ(-ENOENT, kprim_cache_get(c, "a", 1, buf, &len, NULL, NULL));
	kprim_cache_close(c);
}

TEST_F(ul, cache_store_unknown_op_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	char buf[4];
	size_t len = sizeof(buf);

	EXPECT_EQ(-EINVAL, kprim_cache_store(c, (enum kprim_cache_store_op)9,
					     0, "a", 1, "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_store(SQE(), &op, c,
						  (enum kprim_cache_store_op)9,
						  0, "a", 1, "1", 1, 0, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	EXPECT_EQ(-ENOENT, kprim_cache_get(c, "a", 1, buf, &len, NULL, NULL));
	kprim_cache_close(c);
}

/* KPRIM_TTL_DEFAULT on a touch: the cache's default TTL, both ways. */
TEST_F(ul, cache_touch_default_ttl)
{
	struct kprim_cache_config cfg = { .default_ttl_ns = HOUR_NS };
	struct kprim_cache *c = NULL;
	struct kprim_uring_op op;
	char buf[4];
	size_t len = sizeof(buf);
	uint64_t ta = 0, tb = 0;

	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600, &cfg, &c));
	ASSERT_EQ(0, kprim_cache_set(c, "a", 1, "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_cache_set(c, "b", 1, "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_cache_touch(c, "a", 1, KPRIM_TTL_DEFAULT));
	ASSERT_EQ(0, kprim_uring_prep_cache_touch(SQE(), &op, c, "b", 1,
						  KPRIM_TTL_DEFAULT));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_cache_get(c, "a", 1, buf, &len, &ta, NULL));
	ASSERT_EQ(0, kprim_cache_get(c, "b", 1, buf, &len, &tb, NULL));
	EXPECT_LT(HOUR_NS - SLACK_NS, tb);
	EXPECT_GE(HOUR_NS, tb);
	EXPECT_GT(SLACK_NS, absdiff(ta, tb));
	kprim_cache_close(c);
}

TEST_F(ul, cache_cas_null_version_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_cache_cas(c, "a", 1, "4", 1, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_cas(SQE(), &op, c, "a", 1, "4", 1,
						0, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_cache_close(c);
}

TEST_F(ul, cache_set_value_too_big_e2big)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	static char big[2048];
	char buf[4];
	size_t len = sizeof(buf);

	EXPECT_EQ(-E2BIG, kprim_cache_set(c, "a", 1, big, sizeof(big), 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_set(SQE(), &op, c, "a", 1, big,
						sizeof(big), 0, NULL));
	EXPECT_EQ(-E2BIG, RUN());
	EXPECT_EQ(-ENOENT, kprim_cache_get(c, "a", 1, buf, &len, NULL, NULL));
	kprim_cache_close(c);
}

TEST_F(ul, cache_delete_touch_flush)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_cache_stats sa, sb;
	struct kprim_uring_op op;
	char buf[4];
	size_t len = sizeof(buf);
	uint64_t ttl = 0;

	ASSERT_EQ(0, kprim_cache_set(c, "a", 1, "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_cache_set(c, "b", 1, "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_touch(SQE(), &op, c, "a", 1, HOUR_NS));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_cache_get(c, "a", 1, buf, &len, &ttl, NULL));
	EXPECT_LT(HOUR_NS - SLACK_NS, ttl);
	ASSERT_EQ(0, kprim_uring_prep_cache_delete(SQE(), &op, c, "a", 1));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(-ENOENT, kprim_cache_delete(c, "a", 1));
	ASSERT_EQ(0, kprim_uring_prep_cache_delete(SQE(), &op, c, "a", 1));
	EXPECT_EQ(-ENOENT, RUN());
	EXPECT_EQ(-ENOENT, kprim_cache_touch(c, "a", 1, 0));
	ASSERT_EQ(0, kprim_uring_prep_cache_touch(SQE(), &op, c, "a", 1, 0));
	EXPECT_EQ(-ENOENT, RUN());
	ASSERT_EQ(0, kprim_uring_prep_cache_flush(SQE(), &op, c));
	EXPECT_EQ(0, RUN());
	ASSERT_EQ(0, kprim_cache_stats(c, &sa));
	ASSERT_EQ(0, kprim_uring_prep_cache_stats(SQE(), &op, c, &sb));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(0, memcmp(&sa, &sb, sizeof(sa)));
	EXPECT_EQ(0, sb.entries);
	EXPECT_EQ(1024, sb.config.max_value);
	kprim_cache_close(c);
}

TEST_F(ul, cache_delete_empty_key_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;

	EXPECT_EQ(-EINVAL, kprim_cache_delete(c, "a", 0));
	ASSERT_EQ(0, kprim_uring_prep_cache_delete(SQE(), &op, c, "a", 0));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_cache_close(c);
}

TEST_F(ul, cache_incr_decr_equal_sync)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	uint64_t v = UNTOUCHED;

	ASSERT_EQ(0, kprim_cache_set(c, "n", 1, "10", 2, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_incr(SQE(), &op, c, "n", 1, 5, &v));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(15, v);
	ASSERT_EQ(0, kprim_uring_prep_cache_decr(SQE(), &op, c, "n", 1, 100, &v));
	EXPECT_EQ(0, RUN());
	EXPECT_EQ(0, v);	/* saturates */
	ASSERT_EQ(0, kprim_cache_incr(c, "n", 1, 3, &v));
	EXPECT_EQ(3, v);
	v = UNTOUCHED;
	EXPECT_EQ(-ENOENT, kprim_cache_incr(c, "m", 1, 1, &v));
	ASSERT_EQ(0, kprim_uring_prep_cache_incr(SQE(), &op, c, "m", 1, 1, &v));
	EXPECT_EQ(-ENOENT, RUN());
	EXPECT_EQ(UNTOUCHED, v);
	kprim_cache_close(c);
}

TEST_F(ul, cache_incr_not_a_number_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op;
	uint64_t v = UNTOUCHED;

	ASSERT_EQ(0, kprim_cache_set(c, "n", 1, "ten", 3, 0, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_incr(c, "n", 1, 1, &v));
	ASSERT_EQ(0, kprim_uring_prep_cache_incr(SQE(), &op, c, "n", 1, 1, &v));
	EXPECT_EQ(-EINVAL, RUN());
	EXPECT_EQ(UNTOUCHED, v);
	kprim_cache_close(c);
}

/*
 * The decode itself.
 */

TEST_F(ul, prep_null_sqe_einval)
{
	struct kprim_uring_op op;
	size_t len = 4;

	EXPECT_EQ(-EINVAL, kprim_uring_prep_sem_release(NULL, &op, NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_uring_prep_cache_get(NULL, &op, NULL, "k", 1,
						      NULL, &len, NULL, NULL));
	/* Nothing was queued. */
	EXPECT_EQ(0, io_uring_submit(&self->ring));
}

/* A NULL op: the SQE still completes (a no-op) and decodes to -EINVAL. */
TEST_F(ul, prep_null_op_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_sem_stats st;

	EXPECT_EQ(-EINVAL, kprim_uring_prep_sem_acquire(SQE(), NULL, s, 1, NULL, 0));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.held);
	kprim_sem_close(s);
}

TEST_F(ul, complete_null_cqe_einval)
{
	EXPECT_EQ(-EINVAL, kprim_uring_complete(NULL));
	EXPECT_EQ(-EINVAL, kprim_uring_op_result(NULL, 0));
}

/* A second decode of the same op is refused and writes nothing. */
TEST_F(ul, complete_twice_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct io_uring_cqe *cqe;
	struct kprim_uring_op op;
	char buf[8];
	size_t len = sizeof(buf);

	ASSERT_EQ(0, kprim_cache_set(c, "k", 1, "abc", 3, 0, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &op, c, "k", 1, buf,
						&len, NULL, NULL));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(0, kprim_uring_complete(cqe));
	EXPECT_EQ(3, len);
	len = 99;
	EXPECT_EQ(-EINVAL, kprim_uring_complete(cqe));
	EXPECT_EQ(99, len);
	io_uring_cqe_seen(&self->ring, cqe);
	kprim_cache_close(c);
}

/* The caller's own user_data, decoded with kprim_uring_op_result(). */
TEST_F(ul, op_result_with_own_user_data)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct io_uring_sqe *sqe = SQE();
	struct io_uring_cqe *cqe;
	struct kprim_uring_op op;
	uint64_t rb = 0;

	op.data = (void *)0x1234;
	ASSERT_EQ(0, kprim_uring_prep_limiter_try_take(sqe, &op, l, 1, &rb));
	EXPECT_EQ((uintptr_t)&op, sqe->user_data);
	sqe->user_data = 77;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(77, cqe->user_data);
	EXPECT_EQ(-EAGAIN, kprim_uring_op_result(&op, cqe->res));
	io_uring_cqe_seen(&self->ring, cqe);
	EXPECT_LT(HOUR_NS - SLACK_NS, rb);
	EXPECT_EQ((void *)0x1234, op.data);	/* the caller's, untouched */
	kprim_limiter_close(l);
}

/* Linked: acquire, then get; a failed acquire cancels the get. */
TEST_F(ul, linked_acquire_then_get)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op acq, get;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	char buf[8];
	size_t len = sizeof(buf);
	int i, res[2];

	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	sqe = SQE();
	ASSERT_EQ(0, kprim_uring_prep_sem_try_acquire(sqe, &acq, s, 1));
	sqe->flags |= IOSQE_IO_LINK;
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &get, c, "k", 1, buf,
						&len, NULL, NULL));
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
		res[io_uring_cqe_get_data(cqe) == &get] = kprim_uring_complete(cqe);
		io_uring_cqe_seen(&self->ring, cqe);
	}
	EXPECT_EQ(-EAGAIN, res[0]);
	EXPECT_EQ(-ECANCELED, res[1]);
	EXPECT_EQ(sizeof(buf), len);
	kprim_cache_close(c);
	kprim_sem_close(s);
}

/*
 * Queued waits (KPRIM_FEAT_URING_ASYNC): a take or acquire that must wait
 * is queued when the SQE is issued and holds no thread; the library's
 * cancel helpers end it through KPRIM_IOC_WAIT_CANCEL.
 */

/* Poll @s's waiter count until it is @want or 20 s pass; the last count. */
static uint64_t sem_waiters_reach(struct kprim_sem *s, uint64_t want)
{
	struct kprim_sem_stats st = { 0 };
	uint64_t end = now_ns() + 20 * NSEC;

	do {
		if (kprim_sem_stats(s, &st))
			return ~0ull;
		if (st.waiters == want)
			break;
		usleep(1000);
	} while (now_ns() < end);
	return st.waiters;
}

static uint64_t limiter_waiters_reach(struct kprim_limiter *l, uint64_t want)
{
	struct kprim_limiter_stats st = { 0 };
	uint64_t end = now_ns() + 20 * NSEC;

	do {
		if (kprim_limiter_stats(l, &st))
			return ~0ull;
		if (st.waiters == want)
			break;
		usleep(1000);
	} while (now_ns() < end);
	return st.waiters;
}

/*
 * Wait for @n CQEs, at most 10 s each, and decode each: the result of op
 * ops[i] goes to res[i], that of @other to *other_res. Return: how many
 * were decoded (it stops at a CQE of neither).
 */
static int reap(struct io_uring *ring, int n, struct kprim_uring_op *ops,
		int nops, int *res, struct kprim_uring_op *other, int *other_res)
{
	struct __kernel_timespec ts = { .tv_sec = 10 };
	struct io_uring_cqe *cqe;
	int i, ret;

	for (i = 0; i < n; i++) {
		struct kprim_uring_op *op;

		do
			ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
		while (ret == -EINTR);
		if (ret)
			return i;
		op = io_uring_cqe_get_data(cqe);
		ret = kprim_uring_complete(cqe);
		io_uring_cqe_seen(ring, cqe);
		if (op >= ops && op < ops + nops)
			res[op - ops] = ret;
		else if (op == other)
			*other_res = ret;
		else
			return i;
	}
	return i;
}

/*
 * One acquire queued behind a held permit, ended by the helper: the
 * acquire decodes -ECANCELED, the cancel 1, and nothing waits any more.
 * A second cancel of the decoded op is -ENOENT.
 */
TEST_F(ul, cancel_ends_queued_acquire_ecanceled)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op acq, cancel;
	struct kprim_sem_stats st;
	int res = NO_CQE, cres = NO_CQE;

	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &acq, s, 1, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(1, sem_waiters_reach(s, 1));
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &cancel, &acq));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &acq, 1, &res, &cancel, &cres));
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(1, cres);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.held);		/* the synchronous acquire's only */
	EXPECT_EQ(1, st.acquired);
	/* Its wait is over: the library answers without the kernel. */
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &cancel, &acq));
	EXPECT_EQ(-ENOENT, RUN());
	kprim_sem_close(s);
}

/* The same for a take; its retry-after is written as on any failure. */
TEST_F(ul, cancel_ends_queued_take_ecanceled)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_uring_op take, cancel;
	struct kprim_limiter_stats st;
	uint64_t rb = UNTOUCHED;
	int res = NO_CQE, cres = NO_CQE;

	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &take, l, 1, NULL,
						   KPRIM_TIMEOUT_INFINITE, &rb));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(1, limiter_waiters_reach(l, 1));
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &cancel, &take));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &take, 1, &res, &cancel, &cres));
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(1, cres);
	EXPECT_NE(UNTOUCHED, rb);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.admitted);
	kprim_limiter_close(l);
}

/*
 * Queued and cancelled in the same submission: the acquire is queued when
 * it is issued, before the cancel that follows it is.
 */
TEST_F(ul, cancel_in_same_submission_finds_the_wait)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op acq, cancel;
	struct kprim_sem_stats st;
	int res = NO_CQE, cres = NO_CQE;

	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &acq, s, 1, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &cancel, &acq));
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &acq, 1, &res, &cancel, &cres));
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(1, cres);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	kprim_sem_close(s);
}

/* A wait that was granted before the cancel came: -ENOENT, still granted. */
TEST_F(ul, cancel_after_grant_enoent)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op acq, cancel;
	struct io_uring_cqe *cqe;
	struct kprim_sem_stats st;
	int res = NO_CQE, cres = NO_CQE;

	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &acq, s, 1, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	/* Completed but not decoded yet: the kernel answers. */
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &cancel, &acq));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &acq, 1, &res, &cancel, &cres));
	EXPECT_EQ(0, res);
	EXPECT_EQ(-ENOENT, cres);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(1, st.held_by_me);
	kprim_sem_close(s);
}

/* Bad targets: a NULL one, the cancel itself, an op that never waits. */
TEST_F(ul, cancel_bad_target)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	struct kprim_uring_op op, get;
	char buf[8];
	size_t len = sizeof(buf);
	int gres = NO_CQE, cres = NO_CQE;

	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &op, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &op, &op));
	EXPECT_EQ(-EINVAL, RUN());
	EXPECT_EQ(-EINVAL, kprim_uring_prep_cancel(NULL, &op, &get));
	ASSERT_EQ(0, kprim_uring_prep_cache_get(SQE(), &get, c, "k", 1, buf,
						&len, NULL, NULL));
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &op, &get));
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &get, 1, &gres, &op, &cres));
	EXPECT_EQ(-ENOENT, cres);	/* a get never waits */
	EXPECT_EQ(-ENOENT, gres);	/* its own miss */
	EXPECT_EQ(-EINVAL, kprim_uring_prep_sem_cancel_all(NULL, &op, NULL));
	ASSERT_EQ(0, kprim_uring_prep_sem_cancel_all(SQE(), &op, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	ASSERT_EQ(0, kprim_uring_prep_limiter_cancel_all(SQE(), &op, NULL));
	EXPECT_EQ(-EINVAL, RUN());
	kprim_cache_close(c);
}

/*
 * IORING_OP_ASYNC_CANCEL does not reach a queued kprim wait (io_uring
 * does not pass it on to uring_cmd requests): -ENOENT, and the wait stays
 * until the library's cancel ends it.
 */
TEST_F(ul, async_cancel_does_not_end_queued_wait)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op acq, cancel;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int res = NO_CQE, cres = NO_CQE;

	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &acq, s, 1, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(1, sem_waiters_reach(s, 1));
	sqe = SQE();
	io_uring_prep_cancel(sqe, &acq, 0);
	io_uring_sqe_set_data64(sqe, 1);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(1, cqe->user_data);
	EXPECT_EQ(-ENOENT, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
	EXPECT_EQ(1, sem_waiters_reach(s, 1));
	ASSERT_EQ(0, kprim_uring_prep_cancel(SQE(), &cancel, &acq));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &acq, 1, &res, &cancel, &cres));
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(1, cres);
	kprim_sem_close(s);
}

/*
 * cancel_all ends every wait this ring queued on the object, and only
 * those: another ring's wait on the same semaphore stays.
 */
TEST_F(ul, cancel_all_ends_this_rings_waits_only)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op acq[3], other, cancel;
	struct io_uring ring2;
	int res[3] = { NO_CQE, NO_CQE, NO_CQE }, ores = NO_CQE, cres = NO_CQE;
	int i;

	ASSERT_EQ(0, io_uring_queue_init(8, &ring2, 0));
	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	ASSERT_EQ(0, kprim_uring_prep_sem_acquire(io_uring_get_sqe(&ring2),
						  &other, s, 1, NULL,
						  KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(1, io_uring_submit(&ring2));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, kprim_uring_prep_sem_acquire(SQE(), &acq[i], s, 1,
							  NULL,
							  KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(3, io_uring_submit(&self->ring));
	ASSERT_EQ(4, sem_waiters_reach(s, 4));
	ASSERT_EQ(0, kprim_uring_prep_sem_cancel_all(SQE(), &cancel, s));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(4, reap(&self->ring, 4, acq, 3, res, &cancel, &cres));
	EXPECT_EQ(3, cres);
	for (i = 0; i < 3; i++)
		EXPECT_EQ(-ECANCELED, res[i]) TH_LOG("acquire %d", i);
	EXPECT_EQ(1, sem_waiters_reach(s, 1));
	/* Nothing of this ring is left. */
	ASSERT_EQ(0, kprim_uring_prep_sem_cancel_all(SQE(), &cancel, s));
	EXPECT_EQ(-ENOENT, RUN());
	/* The other ring's wait is granted by the release. */
	ASSERT_EQ(0, kprim_sem_release(s, 1));
	ASSERT_EQ(1, reap(&ring2, 1, &other, 1, &ores, NULL, NULL));
	EXPECT_EQ(0, ores);
	io_uring_queue_exit(&ring2);
	kprim_sem_close(s);
}

/*
 * A handle made from a bare fd (nothing known of the module's features):
 * the cancel is sent, through another fd of the same object, and works.
 */
TEST_F(ul, cancel_all_through_handle_from_other_fd)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_uring_op take, cancel;
	struct kprim_limiter *l2 = NULL;
	int fd2, res = NO_CQE, cres = NO_CQE;

	fd2 = dup(kprim_limiter_fd(l));
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, kprim_limiter_from_fd(fd2, &l2));
	ASSERT_EQ(0, kprim_uring_prep_limiter_take(SQE(), &take, l, 1, NULL,
						   KPRIM_TIMEOUT_INFINITE, NULL));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(1, limiter_waiters_reach(l, 1));
	ASSERT_EQ(0, kprim_uring_prep_limiter_cancel_all(SQE(), &cancel, l2));
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(2, reap(&self->ring, 2, &take, 1, &res, &cancel, &cres));
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(1, cres);
	EXPECT_EQ(0, limiter_waiters_reach(l, 0));
	kprim_limiter_close(l2);
	kprim_limiter_close(l);
}

struct submitter {
	struct io_uring *ring;
	struct kprim_uring_op *op;
	struct kprim_sem *s;
	int ret;
};

/* Queue one acquire on the shared ring, then exit. */
static void *submit_and_exit(void *arg)
{
	struct submitter *sb = arg;

	sb->ret = kprim_uring_prep_sem_acquire(io_uring_get_sqe(sb->ring),
					       sb->op, sb->s, 1, NULL,
					       KPRIM_TIMEOUT_INFINITE);
	if (!sb->ret)
		sb->ret = io_uring_submit(sb->ring);
	return NULL;
}

/*
 * A wait belongs to the ring, not to the thread that submitted it: that
 * thread exits, the wait stays queued (also past 6.1's 100 ms watch), and
 * when the permit comes back it is granted and another thread reaping the
 * ring decodes 0; the permit is then held through the semaphore's fd.
 */
TEST_F(ul, submitter_exit_leaves_its_wait_to_the_ring)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct submitter sb = { .ring = &self->ring, .s = s, .ret = -1 };
	struct kprim_uring_op acq;
	struct kprim_sem_stats st;
	pthread_t th;
	int res = NO_CQE;

	sb.op = &acq;
	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	ASSERT_EQ(0, pthread_create(&th, NULL, submit_and_exit, &sb));
	pthread_join(th, NULL);
	ASSERT_EQ(1, sb.ret);
	usleep(300 * 1000);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(1, st.waiters);
	ASSERT_EQ(0, kprim_sem_release(s, 1));
	ASSERT_EQ(1, reap(&self->ring, 1, &acq, 1, &res, NULL, NULL));
	EXPECT_EQ(0, res);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.held);
	kprim_sem_close(s);
}

#define NPEND	100

/*
 * A context cancelled (from another thread) while 100 acquires made with
 * it wait on one ring: each decodes the context's error, as the
 * synchronous call would, and nothing waits or is held afterwards.
 */
TEST_F(ul, ctx_cancel_ends_100_pending_acquires)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op *ops = calloc(NPEND, sizeof(*ops));
	int *res = calloc(NPEND, sizeof(*res));
	struct kprim_sem_stats st;
	struct canceller c;
	struct kprim_ctx *ctx;
	struct io_uring ring;
	pthread_t th;
	int i;

	ASSERT_NE(NULL, ops);
	ASSERT_NE(NULL, res);
	ASSERT_EQ(0, io_uring_queue_init(2 * NPEND, &ring, 0));
	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	for (i = 0; i < NPEND; i++) {
		res[i] = NO_CQE;
		ASSERT_EQ(0, kprim_uring_prep_sem_acquire(io_uring_get_sqe(&ring),
							  &ops[i], s, 1, ctx,
							  KPRIM_TIMEOUT_INFINITE));
	}
	ASSERT_EQ(NPEND, io_uring_submit(&ring));
	ASSERT_EQ(NPEND, sem_waiters_reach(s, NPEND));
	EXPECT_EQ(0, count_io_workers());
	c.ctx = ctx;
	c.delay_ns = 50 * MSEC;
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(NPEND, reap(&ring, NPEND, ops, NPEND, res, NULL, NULL));
	pthread_join(th, NULL);
	ASSERT_EQ(-ECANCELED, kprim_ctx_err(ctx));
	for (i = 0; i < NPEND; i++)
		EXPECT_EQ(kprim_ctx_err(ctx), res[i]) TH_LOG("acquire %d", i);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.held);
	EXPECT_EQ(1, st.acquired);
	kprim_ctx_free(ctx);
	io_uring_queue_exit(&ring);
	free(res);
	free(ops);
	kprim_sem_close(s);
}

/* The same with the context's deadline: every one decodes -ETIMEDOUT. */
TEST_F(ul, ctx_deadline_ends_100_pending_takes)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS, 1, 0);
	struct kprim_uring_op *ops = calloc(NPEND, sizeof(*ops));
	int *res = calloc(NPEND, sizeof(*res));
	struct kprim_limiter_stats st;
	struct kprim_ctx *ctx;
	struct io_uring ring;
	int i;

	ASSERT_NE(NULL, ops);
	ASSERT_NE(NULL, res);
	ASSERT_EQ(0, io_uring_queue_init(2 * NPEND, &ring, 0));
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, 2 * NSEC, &ctx));
	for (i = 0; i < NPEND; i++) {
		res[i] = NO_CQE;
		ASSERT_EQ(0, kprim_uring_prep_limiter_take(io_uring_get_sqe(&ring),
							   &ops[i], l, 1, ctx,
							   KPRIM_TIMEOUT_INFINITE,
							   NULL));
	}
	ASSERT_EQ(NPEND, io_uring_submit(&ring));
	EXPECT_EQ(NPEND, limiter_waiters_reach(l, NPEND));
	EXPECT_EQ(NPEND, reap(&ring, NPEND, ops, NPEND, res, NULL, NULL));
	EXPECT_EQ(-ETIMEDOUT, kprim_ctx_err(ctx));
	for (i = 0; i < NPEND; i++)
		EXPECT_EQ(-ETIMEDOUT, res[i]) TH_LOG("take %d", i);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.admitted);
	kprim_ctx_free(ctx);
	io_uring_queue_exit(&ring);
	free(res);
	free(ops);
	kprim_limiter_close(l);
}

#define NMANY	200

/*
 * 200 acquires waiting at once on one ring and no io_uring worker thread
 * in the process; they are granted in submission order (FIFO: a resize
 * that frees 100 permits grants exactly the first 100), and the rest are
 * ended by one cancel_all.
 */
TEST_F(ul, many_pending_acquires_hold_no_thread)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_uring_op *ops = calloc(NMANY, sizeof(*ops));
	int *res = calloc(NMANY, sizeof(*res));
	struct kprim_uring_op cancel;
	struct kprim_sem_stats st;
	struct io_uring ring;
	int i, cres = NO_CQE;

	ASSERT_NE(NULL, ops);
	ASSERT_NE(NULL, res);
	ASSERT_EQ(0, io_uring_queue_init(NMANY + 8, &ring, 0));
	ASSERT_EQ(0, kprim_sem_acquire(s, 1, NULL, 0));
	for (i = 0; i < NMANY; i++) {
		res[i] = NO_CQE;
		ASSERT_EQ(0, kprim_uring_prep_sem_acquire(io_uring_get_sqe(&ring),
							  &ops[i], s, 1, NULL,
							  KPRIM_TIMEOUT_INFINITE));
	}
	ASSERT_EQ(NMANY, io_uring_submit(&ring));
	EXPECT_EQ(NMANY, sem_waiters_reach(s, NMANY));
	EXPECT_EQ(0, count_io_workers());
	ASSERT_EQ(0, kprim_sem_resize(s, 1 + NMANY / 2));
	EXPECT_EQ(NMANY / 2, reap(&ring, NMANY / 2, ops, NMANY, res, NULL, NULL));
	for (i = 0; i < NMANY; i++)
		EXPECT_EQ(i < NMANY / 2 ? 0 : NO_CQE, res[i]) TH_LOG("acquire %d", i);
	EXPECT_EQ(NMANY / 2, sem_waiters_reach(s, NMANY / 2));
	ASSERT_EQ(0, kprim_uring_prep_sem_cancel_all(io_uring_get_sqe(&ring),
						     &cancel, s));
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_EQ(NMANY / 2 + 1, reap(&ring, NMANY / 2 + 1, ops, NMANY, res,
				      &cancel, &cres));
	EXPECT_EQ(NMANY / 2, cres);
	for (i = NMANY / 2; i < NMANY; i++)
		EXPECT_EQ(-ECANCELED, res[i]) TH_LOG("acquire %d", i);
	EXPECT_EQ(0, count_io_workers());
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1 + NMANY / 2, st.held_by_me);
	io_uring_queue_exit(&ring);
	free(res);
	free(ops);
	kprim_sem_close(s);
}

/*
 * The uring_server example: one thread serves concurrent clients through
 * a limiter (burst 2, 20/s) and a semaphore (2 permits) with 200 ms of
 * work per request: requests wait in the kernel side by side, at most two
 * work at once, no thread (the server's or an io_uring worker) waits for
 * any of them, and every client gets its answer in time (the last take
 * waits ~1.1 s of its 2 s, the last acquire ~2.4 s of its 5 s).
 */
#define SRV_CLIENTS	24

static const char *example_path(char *buf, size_t len)
{
	const char *dir = getenv("KPRIM_EXAMPLES_DIR");
	char self_exe[256];
	ssize_t n;

	if (dir) {
		snprintf(buf, len, "%s/uring_server", dir);
		return buf;
	}
	if (!access("/demo/uring_server", X_OK))
		return "/demo/uring_server";
	/* build/tests/<test> -> build/examples/uring_server */
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0)
		return NULL;
	self_exe[n] = '\0';
	*strrchr(self_exe, '/') = '\0';
	snprintf(buf, len, "%s/../examples/uring_server", self_exe);
	return buf;
}

struct client {
	const char *path;
	char key[32];
	char reply[128];
	int err;
};

static void *client_fn(void *arg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct client *cl = arg;
	char req[64];
	size_t got = 0;
	ssize_t n;
	int fd;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", cl->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		cl->err = errno;
		return NULL;
	}
	n = snprintf(req, sizeof(req), "GET %s\n", cl->key);
	if (write(fd, req, n) != n) {
		cl->err = errno;
		close(fd);
		return NULL;
	}
	while (got < sizeof(cl->reply) - 1 &&
	       (n = read(fd, cl->reply + got, sizeof(cl->reply) - 1 - got)) > 0)
		got += n;
	cl->reply[got] = '\0';
	close(fd);
	return NULL;
}

TEST_F(ul, example_server_loop_under_limiter_and_sem)
{
	struct kprim_limiter_config lc = { .rate = 20, .period_ns = NSEC,
					   .burst = 2 };
	struct kprim_limiter_stats ls;
	struct kprim_sem_stats ss;
	struct kprim_limiter *lim;
	struct kprim_cache *cache;
	struct kprim_sem *sem;
	struct client cl[SRV_CLIENTS];
	pthread_t th[SRV_CLIENTS];
	char prefix[64], name[96], sock[108], exe[300], nreq[16], out[512];
	const char *path = example_path(exe, sizeof(exe));
	int pipefd[2], status, i, served = -1, misses = -1, busy = -1;
	int errors = -1, inflight = -1, waiting = -1, threads = -1, hits = -1;
	int workers = -1;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	ASSERT_NE(NULL, path);
	ASSERT_EQ(0, access(path, X_OK)) TH_LOG("no example at %s", path);
	snprintf(prefix, sizeof(prefix), "ul-srv-%d", getpid());
	snprintf(sock, sizeof(sock), "/tmp/%s.sock", prefix);
	snprintf(name, sizeof(name), "%s-limiter", prefix);
	ASSERT_EQ(0, kprim_limiter_open(self->k, name, KPRIM_CREATE |
					KPRIM_TRANSIENT, 0600, &lc, &lim));
	snprintf(name, sizeof(name), "%s-sem", prefix);
	ASSERT_EQ(0, kprim_sem_open(self->k, name, KPRIM_CREATE | KPRIM_TRANSIENT,
				    0600, 2, &sem));
	snprintf(name, sizeof(name), "%s-cache", prefix);
	ASSERT_EQ(0, kprim_cache_open(self->k, name, KPRIM_CREATE |
				      KPRIM_TRANSIENT, 0600, NULL, &cache));
	for (i = 0; i < SRV_CLIENTS; i += 2) {
		char k[16], v[16];

		snprintf(k, sizeof(k), "k%d", i);
		snprintf(v, sizeof(v), "v%d", i * 11);
		ASSERT_EQ(0, kprim_cache_set(cache, k, strlen(k), v, strlen(v),
					     0, NULL));
	}

	ASSERT_EQ(0, pipe(pipefd));
	snprintf(nreq, sizeof(nreq), "%d", SRV_CLIENTS);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		dup2(pipefd[1], 1);
		execl(path, path, "-s", sock, "-p", prefix, "-n", nreq,
		      "-w", "200", (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	/* Wait for "ready SOCKET\n": it listens. */
	while (got < sizeof(out) - 1 && (n = read(pipefd[0], out + got, 1)) == 1)
		if (out[got++] == '\n')
			break;
	out[got] = '\0';
	if (strncmp(out, "ready ", 6))
		kill(pid, SIGKILL);
	ASSERT_EQ(0, strncmp(out, "ready ", 6)) TH_LOG("server said: %s", out);
	got = 0;

	for (i = 0; i < SRV_CLIENTS; i++) {
		cl[i] = (struct client){ .path = sock };
		snprintf(cl[i].key, sizeof(cl[i].key), "k%d", i);
		ASSERT_EQ(0, pthread_create(&th[i], NULL, client_fn, &cl[i]));
	}
	for (i = 0; i < SRV_CLIENTS; i++) {
		char want[32];

		pthread_join(th[i], NULL);
		EXPECT_EQ(0, cl[i].err) TH_LOG("client %d", i);
		/* A client that never asked leaves the server waiting. */
		if (cl[i].err)
			kill(pid, SIGKILL);
		if (i % 2 == 0)
			snprintf(want, sizeof(want), "VALUE v%d\n", i * 11);
		else
			snprintf(want, sizeof(want), "MISS\n");
		EXPECT_STREQ(want, cl[i].reply) TH_LOG("client %d", i);
	}
	while (got < sizeof(out) - 1 &&
	       (n = read(pipefd[0], out + got, sizeof(out) - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	close(pipefd[0]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	TH_LOG("server: %s", out);
	ASSERT_EQ(9, sscanf(out, "served=%d hits=%d misses=%d busy=%d errors=%d "
			    "max_inflight=%d max_waiting=%d threads=%d "
			    "workers=%d", &served, &hits, &misses, &busy,
			    &errors, &inflight, &waiting, &threads, &workers));
	EXPECT_EQ(SRV_CLIENTS, served);
	EXPECT_EQ(SRV_CLIENTS / 2, hits);
	EXPECT_EQ(SRV_CLIENTS / 2, misses);
	EXPECT_EQ(0, busy);
	EXPECT_EQ(0, errors);
	/* Two at work at once (the bound, reached), most waiting at once. */
	EXPECT_EQ(2, inflight);
	EXPECT_LE(SRV_CLIENTS / 2, waiting);
	/* ...and no thread for any of them. */
	EXPECT_EQ(1, threads);
	EXPECT_EQ(0, workers);
	ASSERT_EQ(0, kprim_limiter_stats(lim, &ls));
	EXPECT_EQ(SRV_CLIENTS, ls.admitted);
	ASSERT_EQ(0, kprim_sem_stats(sem, &ss));
	EXPECT_EQ(SRV_CLIENTS, ss.acquired);
	EXPECT_EQ(0, ss.held);
	kprim_limiter_close(lim);
	kprim_sem_close(sem);
	kprim_cache_close(cache);
}

TEST_HARNESS_MAIN
