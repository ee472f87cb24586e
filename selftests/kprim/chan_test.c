// SPDX-License-Identifier: GPL-2.0
/* kprim_chan: semantics, timeouts, select fairness, MPMC stress, bad input. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim/chan.h"

#define MS	1000000ull
/* Timeout upper bound: generous, tests also run in a slow TCG VM. */
#define SLACK	(1000 * MS)

/* ---- bad input: one test per path ---- */

TEST(new_null_out)
{
	ASSERT_EQ(-EINVAL, kprim_chan_new(4, 1, NULL));
}

TEST(new_zero_elem_size)
{
	struct kprim_chan *c = (void *)1;

	ASSERT_EQ(-EINVAL, kprim_chan_new(0, 1, &c));
	ASSERT_EQ(NULL, c);
}

TEST(new_capacity_over_max)
{
	struct kprim_chan *c;

	ASSERT_EQ(-EOVERFLOW, kprim_chan_new(1, KPRIM_CHAN_CAP_MAX + 1, &c));
}

TEST(new_size_times_capacity_overflows)
{
	struct kprim_chan *c;

	ASSERT_EQ(-EOVERFLOW, kprim_chan_new(SIZE_MAX / 2, 4, &c));
}

TEST(ops_null_channel)
{
	int v = 0;

	EXPECT_EQ(-EINVAL, kprim_chan_send(NULL, &v, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_chan_recv(NULL, &v, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_chan_try_send(NULL, &v));
	EXPECT_EQ(-EINVAL, kprim_chan_try_recv(NULL, &v));
	EXPECT_EQ(-EINVAL, kprim_chan_close(NULL));
	EXPECT_EQ(-EINVAL, kprim_chan_len(NULL));
	EXPECT_EQ(-EINVAL, kprim_chan_cap(NULL));
	kprim_chan_free(NULL);
}

TEST(ops_null_element)
{
	struct kprim_chan *c;

	ASSERT_EQ(0, kprim_chan_new(4, 1, &c));
	EXPECT_EQ(-EINVAL, kprim_chan_send(c, NULL, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_chan_recv(c, NULL, NULL, 0));
	kprim_chan_free(c);
}

TEST(close_twice)
{
	struct kprim_chan *c;

	ASSERT_EQ(0, kprim_chan_new(4, 1, &c));
	ASSERT_EQ(0, kprim_chan_close(c));
	EXPECT_EQ(-EPIPE, kprim_chan_close(c));
	kprim_chan_free(c);
}

TEST(select_null_cases)
{
	EXPECT_EQ(-EINVAL, kprim_chan_select(NULL, 1, NULL, 0));
}

TEST(select_too_many_cases)
{
	struct kprim_chan_case cs[KPRIM_CHAN_SELECT_MAX + 1] = { 0 };

	EXPECT_EQ(-E2BIG, kprim_chan_select(cs, KPRIM_CHAN_SELECT_MAX + 1,
					    NULL, 0));
}

TEST(select_bad_direction)
{
	struct kprim_chan *c;
	int v;
	struct kprim_chan_case cs = { .dir = 7, .elem = &v };

	ASSERT_EQ(0, kprim_chan_new(4, 1, &c));
	cs.ch = c;
	EXPECT_EQ(-EINVAL, kprim_chan_select(&cs, 1, NULL, 0));
	kprim_chan_free(c);
}

TEST(select_case_null_elem)
{
	struct kprim_chan *c;
	struct kprim_chan_case cs = { .dir = KPRIM_CHAN_RECV };

	ASSERT_EQ(0, kprim_chan_new(4, 1, &c));
	cs.ch = c;
	EXPECT_EQ(-EINVAL, kprim_chan_select(&cs, 1, NULL, 0));
	kprim_chan_free(c);
}

TEST(select_nothing_forever)
{
	struct kprim_chan_case cs = { 0 };	/* disabled case */

	EXPECT_EQ(-EDEADLK, kprim_chan_select(&cs, 1, NULL,
					      KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(-EAGAIN, kprim_chan_select(&cs, 1, NULL, 0));
}

/* ---- semantics ---- */

TEST(buffered_fifo_full_empty)
{
	struct kprim_chan *c;
	int v;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 3, &c));
	EXPECT_EQ(3, kprim_chan_cap(c));
	EXPECT_EQ(-EAGAIN, kprim_chan_try_recv(c, &v));
	for (int i = 1; i <= 3; i++)
		ASSERT_EQ(0, kprim_chan_try_send(c, &i));
	EXPECT_EQ(3, kprim_chan_len(c));
	v = 4;
	EXPECT_EQ(-EAGAIN, kprim_chan_try_send(c, &v));
	for (int i = 1; i <= 3; i++) {
		ASSERT_EQ(0, kprim_chan_try_recv(c, &v));
		EXPECT_EQ(i, v);
		ASSERT_EQ(0, kprim_chan_try_send(c, &i));	/* wrap */
	}
	for (int i = 1; i <= 3; i++) {
		ASSERT_EQ(0, kprim_chan_try_recv(c, &v));
		EXPECT_EQ(i, v);
	}
	kprim_chan_free(c);
}

TEST(close_drains_then_epipe)
{
	struct kprim_chan *c;
	int v;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 4, &c));
	for (int i = 10; i < 13; i++)
		ASSERT_EQ(0, kprim_chan_try_send(c, &i));
	ASSERT_EQ(0, kprim_chan_close(c));
	EXPECT_EQ(-EPIPE, kprim_chan_try_send(c, &v));
	for (int i = 10; i < 13; i++) {
		ASSERT_EQ(0, kprim_chan_recv(c, &v, NULL,
					     KPRIM_TIMEOUT_INFINITE));
		EXPECT_EQ(i, v);
	}
	EXPECT_EQ(-EPIPE, kprim_chan_recv(c, &v, NULL, KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(-EPIPE, kprim_chan_try_recv(c, &v));
	kprim_chan_free(c);
}

/*
 * A receive that completes because the channel is closed and drained gives
 * the zero value (Go), whichever way it completes: at once, through a
 * select case, or woken while blocked (close_wakes_blocked_receiver).
 */
TEST(recv_closed_gives_zero_value)
{
	struct kprim_chan *c;
	struct { uint64_t a, b; } v = { 7, 7 }, zero = { 0 };
	struct kprim_chan_case cs = { .dir = KPRIM_CHAN_RECV, .elem = &v };

	ASSERT_EQ(0, kprim_chan_new(sizeof(v), 2, &c));
	ASSERT_EQ(0, kprim_chan_close(c));
	EXPECT_EQ(-EPIPE, kprim_chan_recv(c, &v, NULL, KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(0, memcmp(&v, &zero, sizeof(v)));
	v.a = v.b = 7;
	EXPECT_EQ(-EPIPE, kprim_chan_try_recv(c, &v));
	EXPECT_EQ(0, memcmp(&v, &zero, sizeof(v)));
	v.a = v.b = 7;
	cs.ch = c;
	EXPECT_EQ(0, kprim_chan_select(&cs, 1, NULL, 0));
	EXPECT_EQ(-EPIPE, cs.err);
	EXPECT_EQ(0, memcmp(&v, &zero, sizeof(v)));
	kprim_chan_free(c);
}

/* A receive that does not complete (timeout, empty) leaves *elem alone. */
TEST(recv_timeout_leaves_elem)
{
	struct kprim_chan *c;
	int v = 7;

	ASSERT_EQ(0, kprim_chan_new(sizeof(v), 1, &c));
	EXPECT_EQ(-EAGAIN, kprim_chan_try_recv(c, &v));
	EXPECT_EQ(7, v);
	EXPECT_EQ(-ETIMEDOUT, kprim_chan_recv(c, &v, NULL, 1000000));
	EXPECT_EQ(7, v);
	kprim_chan_free(c);
}

struct op_arg {
	struct kprim_chan *c;
	struct kprim_ctx *ctx;
	int val;
	int rc;
	atomic_int finished;
};

static void *recv_thread(void *p)
{
	struct op_arg *a = p;

	a->rc = kprim_chan_recv(a->c, &a->val, a->ctx, KPRIM_TIMEOUT_INFINITE);
	atomic_store(&a->finished, 1);
	return NULL;
}

static void *send_thread(void *p)
{
	struct op_arg *a = p;

	a->rc = kprim_chan_send(a->c, &a->val, a->ctx, KPRIM_TIMEOUT_INFINITE);
	atomic_store(&a->finished, 1);
	return NULL;
}

TEST(close_wakes_blocked_receiver)
{
	struct op_arg a = { .val = 7 };
	pthread_t t;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &a.c));
	ASSERT_EQ(0, pthread_create(&t, NULL, recv_thread, &a));
	usleep(20 * 1000);
	EXPECT_EQ(0, atomic_load(&a.finished));
	kprim_chan_close(a.c);
	pthread_join(t, NULL);
	EXPECT_EQ(-EPIPE, a.rc);
	EXPECT_EQ(0, a.val);	/* the zero value, as in Go */
	kprim_chan_free(a.c);
}

TEST(close_wakes_blocked_sender)
{
	struct op_arg a = { .val = 5 };
	pthread_t t;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &a.c));
	ASSERT_EQ(0, pthread_create(&t, NULL, send_thread, &a));
	usleep(20 * 1000);
	EXPECT_EQ(0, atomic_load(&a.finished));
	kprim_chan_close(a.c);
	pthread_join(t, NULL);
	EXPECT_EQ(-EPIPE, a.rc);
	EXPECT_EQ(5, a.val);	/* a sender's element is never written */
	kprim_chan_free(a.c);
}

TEST(unbuffered_rendezvous)
{
	struct op_arg a = { .val = 42 };
	pthread_t t;
	int v = 0;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &a.c));
	EXPECT_EQ(0, kprim_chan_cap(a.c));
	EXPECT_EQ(-EAGAIN, kprim_chan_try_send(a.c, &v));   /* no receiver */
	ASSERT_EQ(0, pthread_create(&t, NULL, send_thread, &a));
	usleep(50 * 1000);
	/* The send cannot complete without a receiver. */
	EXPECT_EQ(0, atomic_load(&a.finished));
	ASSERT_EQ(0, kprim_chan_recv(a.c, &v, NULL, KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(42, v);
	pthread_join(t, NULL);
	EXPECT_EQ(0, a.rc);
	EXPECT_EQ(-EAGAIN, kprim_chan_try_recv(a.c, &v));   /* nothing kept */
	kprim_chan_free(a.c);
}

TEST(recv_timeout_bounds)
{
	struct kprim_chan *c;
	uint64_t t0, dt;
	int v;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &c));
	t0 = kprim_now_ns();
	EXPECT_EQ(-ETIMEDOUT, kprim_chan_recv(c, &v, NULL, 50 * MS));
	dt = kprim_now_ns() - t0;
	EXPECT_LE(50 * MS, dt);
	EXPECT_GT(50 * MS + SLACK, dt);
	kprim_chan_free(c);
}

TEST(send_timeout_when_full)
{
	struct kprim_chan *c;
	uint64_t t0, dt;
	int v = 1;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &c));
	ASSERT_EQ(0, kprim_chan_try_send(c, &v));
	t0 = kprim_now_ns();
	EXPECT_EQ(-ETIMEDOUT, kprim_chan_send(c, &v, NULL, 50 * MS));
	dt = kprim_now_ns() - t0;
	EXPECT_LE(50 * MS, dt);
	EXPECT_GT(50 * MS + SLACK, dt);
	EXPECT_EQ(1, kprim_chan_len(c));
	kprim_chan_free(c);
}

TEST(ctx_deadline_ends_recv)
{
	struct kprim_chan *c;
	struct kprim_ctx *ctx;
	uint64_t t0, dt;
	int v;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &c));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, 50 * MS, &ctx));
	EXPECT_EQ(-ETIMEDOUT, kprim_chan_recv(c, &v, ctx,
					      KPRIM_TIMEOUT_INFINITE));
	dt = kprim_now_ns() - t0;
	EXPECT_LE(50 * MS, dt);
	EXPECT_GT(50 * MS + SLACK, dt);
	kprim_ctx_free(ctx);
	kprim_chan_free(c);
}

TEST(ctx_cancel_wakes_blocked_recv)
{
	struct op_arg a = { 0 };
	pthread_t t;
	uint64_t t0;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &a.c));
	ASSERT_EQ(0, kprim_ctx_new(NULL, &a.ctx));
	ASSERT_EQ(0, pthread_create(&t, NULL, recv_thread, &a));
	usleep(30 * 1000);
	EXPECT_EQ(0, atomic_load(&a.finished));
	t0 = kprim_now_ns();
	kprim_ctx_cancel(a.ctx);
	pthread_join(t, NULL);
	EXPECT_EQ(-ECANCELED, a.rc);
	EXPECT_GT(SLACK, kprim_now_ns() - t0);
	kprim_ctx_free(a.ctx);
	kprim_chan_free(a.c);
}

TEST(cancelled_ctx_fails_at_once)
{
	struct kprim_chan *c;
	struct kprim_ctx *ctx;
	int v = 1;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &c));
	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	kprim_ctx_cancel(ctx);
	EXPECT_EQ(-ECANCELED, kprim_chan_send(c, &v, ctx, 0));
	EXPECT_EQ(0, kprim_chan_len(c));
	kprim_ctx_free(ctx);
	kprim_chan_free(c);
}

/* ---- select ---- */

TEST(select_default_and_ready_case)
{
	struct kprim_chan *a, *b;
	int x = 0, y = 0, v = 7;
	struct kprim_chan_case cs[2] = {
		{ .dir = KPRIM_CHAN_RECV, .elem = &x },
		{ .dir = KPRIM_CHAN_RECV, .elem = &y },
	};

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &a));
	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &b));
	cs[0].ch = a;
	cs[1].ch = b;
	EXPECT_EQ(-EAGAIN, kprim_chan_select(cs, 2, NULL, 0));
	ASSERT_EQ(0, kprim_chan_try_send(b, &v));
	EXPECT_EQ(1, kprim_chan_select(cs, 2, NULL, 0));
	EXPECT_EQ(0, cs[1].err);
	EXPECT_EQ(7, y);
	EXPECT_EQ(0, x);
	kprim_chan_close(a);
	EXPECT_EQ(0, kprim_chan_select(cs, 2, NULL, 0));
	EXPECT_EQ(-EPIPE, cs[0].err);
	kprim_chan_free(a);
	kprim_chan_free(b);
}

TEST(select_send_and_recv_mixed)
{
	struct kprim_chan *full, *space;
	int v = 3, out = 0;
	struct kprim_chan_case cs[2] = {
		{ .dir = KPRIM_CHAN_SEND, .elem = &v },
		{ .dir = KPRIM_CHAN_SEND, .elem = &v },
	};

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &full));
	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &space));
	ASSERT_EQ(0, kprim_chan_try_send(full, &v));
	cs[0].ch = full;
	cs[1].ch = space;
	EXPECT_EQ(1, kprim_chan_select(cs, 2, NULL, 0));
	ASSERT_EQ(0, kprim_chan_try_recv(space, &out));
	EXPECT_EQ(3, out);
	EXPECT_EQ(1, kprim_chan_len(full));
	kprim_chan_free(full);
	kprim_chan_free(space);
}

struct delayed_send {
	struct kprim_chan *c;
	int val;
};

static void *send_later(void *p)
{
	struct delayed_send *d = p;

	usleep(30 * 1000);
	kprim_chan_send(d->c, &d->val, NULL, KPRIM_TIMEOUT_INFINITE);
	return NULL;
}

TEST(select_blocks_until_one_ready)
{
	struct kprim_chan *a, *b;
	int x = 0, y = 0;
	struct delayed_send d = { .val = 99 };
	struct kprim_chan_case cs[2] = {
		{ .dir = KPRIM_CHAN_RECV, .elem = &x },
		{ .dir = KPRIM_CHAN_RECV, .elem = &y },
	};
	pthread_t t;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &a));
	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &b));
	cs[0].ch = a;
	cs[1].ch = b;
	d.c = b;
	ASSERT_EQ(0, pthread_create(&t, NULL, send_later, &d));
	EXPECT_EQ(1, kprim_chan_select(cs, 2, NULL, KPRIM_TIMEOUT_INFINITE));
	EXPECT_EQ(99, y);
	EXPECT_EQ(0, x);
	pthread_join(t, NULL);
	/* The stale node on @a must be gone: a try_send finds no receiver. */
	EXPECT_EQ(-EAGAIN, kprim_chan_try_send(a, &x));
	kprim_chan_free(a);
	kprim_chan_free(b);
}

TEST(select_timeout_bounds)
{
	struct kprim_chan *a;
	int x;
	struct kprim_chan_case cs = { .dir = KPRIM_CHAN_RECV, .elem = &x };
	uint64_t t0, dt;

	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &a));
	cs.ch = a;
	t0 = kprim_now_ns();
	EXPECT_EQ(-ETIMEDOUT, kprim_chan_select(&cs, 1, NULL, 50 * MS));
	dt = kprim_now_ns() - t0;
	EXPECT_LE(50 * MS, dt);
	EXPECT_GT(50 * MS + SLACK, dt);
	kprim_chan_free(a);
}

/*
 * Fairness: three always-ready channels, 10^5 selects. The fair share is
 * 1/3 each; we require >= 40% of it (13333), far below what a uniform
 * choice gives yet impossible for a fixed or starving order.
 */
TEST(select_fairness)
{
	enum { N = 3, ROUNDS = 100000 };
	struct kprim_chan *c[N];
	struct kprim_chan_case cs[N];
	int val[N], one = 1, hits[N] = { 0 };

	for (int i = 0; i < N; i++) {
		ASSERT_EQ(0, kprim_chan_new(sizeof(int), 1, &c[i]));
		ASSERT_EQ(0, kprim_chan_try_send(c[i], &one));
		cs[i] = (struct kprim_chan_case){ .ch = c[i],
			.dir = KPRIM_CHAN_RECV, .elem = &val[i] };
	}
	for (int r = 0; r < ROUNDS; r++) {
		int k = kprim_chan_select(cs, N, NULL, 0);

		ASSERT_LE(0, k);
		ASSERT_GT(N, k);
		hits[k]++;
		ASSERT_EQ(0, kprim_chan_try_send(c[k], &one));
	}
	for (int i = 0; i < N; i++) {
		TH_LOG("case %d chosen %d times", i, hits[i]);
		EXPECT_LE(ROUNDS / N * 4 / 10, hits[i]);
		kprim_chan_free(c[i]);
	}
}

/* ---- MPMC stress with checksums ---- */

#define PRODUCERS	4
#define CONSUMERS	4
#define PER_PRODUCER	20000

struct stress {
	struct kprim_chan *c;
	atomic_uint_fast64_t sum;
	atomic_uint_fast64_t count;
	atomic_int producers_left;
	int use_select;
	int id;
};

struct stress_thread {
	struct stress *s;
	int id;
};

static void *producer(void *p)
{
	struct stress_thread *t = p;
	struct stress *s = t->s;

	for (uint64_t i = 0; i < PER_PRODUCER; i++) {
		uint64_t v = (uint64_t)t->id * PER_PRODUCER + i + 1;

		if (s->use_select) {
			struct kprim_chan_case cs = { .ch = s->c,
				.dir = KPRIM_CHAN_SEND, .elem = &v };

			if (kprim_chan_select(&cs, 1, NULL,
					      KPRIM_TIMEOUT_INFINITE) != 0)
				break;
		} else if (kprim_chan_send(s->c, &v, NULL,
					   KPRIM_TIMEOUT_INFINITE)) {
			break;
		}
	}
	if (atomic_fetch_sub(&s->producers_left, 1) == 1)
		kprim_chan_close(s->c);
	return NULL;
}

static void *consumer(void *p)
{
	struct stress *s = p;
	uint64_t v, sum = 0, n = 0;

	while (!kprim_chan_recv(s->c, &v, NULL, KPRIM_TIMEOUT_INFINITE)) {
		sum += v;
		n++;
	}
	atomic_fetch_add(&s->sum, sum);
	atomic_fetch_add(&s->count, n);
	return NULL;
}

static void run_stress(struct __test_metadata *_metadata, size_t cap,
		       int use_select)
{
	struct stress s = { .use_select = use_select };
	struct stress_thread pt[PRODUCERS];
	pthread_t th[PRODUCERS + CONSUMERS];
	uint64_t n = (uint64_t)PRODUCERS * PER_PRODUCER;

	atomic_init(&s.producers_left, PRODUCERS);
	ASSERT_EQ(0, kprim_chan_new(sizeof(uint64_t), cap, &s.c));
	for (int i = 0; i < CONSUMERS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, consumer, &s));
	for (int i = 0; i < PRODUCERS; i++) {
		pt[i] = (struct stress_thread){ .s = &s, .id = i };
		ASSERT_EQ(0, pthread_create(&th[CONSUMERS + i], NULL,
					    producer, &pt[i]));
	}
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ(n, atomic_load(&s.count));
	EXPECT_EQ(n * (n + 1) / 2, atomic_load(&s.sum));
	kprim_chan_free(s.c);
}

TEST(mpmc_buffered)
{
	run_stress(_metadata, 16, 0);
}

TEST(mpmc_unbuffered)
{
	run_stress(_metadata, 0, 0);
}

TEST(mpmc_select_unbuffered)
{
	run_stress(_metadata, 0, 1);
}

/* Two receivers selecting over two channels: every value arrives once. */
struct sel_rx {
	struct kprim_chan *a, *b;
	uint64_t sum, n;
};

static void *select_consumer(void *p)
{
	struct sel_rx *r = p;
	uint64_t x, y;
	struct kprim_chan_case cs[2] = {
		{ .ch = r->a, .dir = KPRIM_CHAN_RECV, .elem = &x },
		{ .ch = r->b, .dir = KPRIM_CHAN_RECV, .elem = &y },
	};
	int open = 2;

	while (open) {
		int k = kprim_chan_select(cs, 2, NULL, KPRIM_TIMEOUT_INFINITE);

		if (k < 0)
			break;
		if (cs[k].err) {
			cs[k].ch = NULL;	/* closed: disable the case */
			open--;
			continue;
		}
		r->sum += k ? y : x;
		r->n++;
	}
	return NULL;
}

TEST(mpmc_select_two_channels)
{
	struct kprim_chan *a, *b;
	struct stress sa = { 0 }, sb = { 0 };
	struct stress_thread ta = { &sa, 0 }, tb = { &sb, 1 };
	struct sel_rx rx[2];
	pthread_t th[4];
	uint64_t n = 2 * PER_PRODUCER;

	ASSERT_EQ(0, kprim_chan_new(sizeof(uint64_t), 0, &a));
	ASSERT_EQ(0, kprim_chan_new(sizeof(uint64_t), 2, &b));
	sa.c = a;
	sb.c = b;
	atomic_init(&sa.producers_left, 1);
	atomic_init(&sb.producers_left, 1);
	for (int i = 0; i < 2; i++) {
		rx[i] = (struct sel_rx){ .a = a, .b = b };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, select_consumer,
					    &rx[i]));
	}
	ASSERT_EQ(0, pthread_create(&th[2], NULL, producer, &ta));
	ASSERT_EQ(0, pthread_create(&th[3], NULL, producer, &tb));
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ(n, rx[0].n + rx[1].n);
	EXPECT_EQ(n * (n + 1) / 2, rx[0].sum + rx[1].sum);
	kprim_chan_free(a);
	kprim_chan_free(b);
}

/*
 * The reply-channel pattern: a client makes a private unbuffered reply
 * channel, sends a request carrying it, receives the answer and frees the
 * channel at once. A completed exchange means both sides are done with the
 * channel (Go), so the server's send must not touch it after the client's
 * receive took the answer. Servers answer through a plain send, through a
 * select that names the reply channel twice, and through a select that
 * also waits on a channel never ready; the client sometimes pauses before
 * its receive so the server is parked in the send when the answer is taken.
 * Run under ASan and TSan (make host-test-asan / host-test-tsan).
 */
#define REPLY_CLIENTS	4
#define REPLY_ROUNDS	3000

struct reply_req {
	struct kprim_chan *reply;
	int v;
};

struct reply_srv {
	struct kprim_chan *reqs, *never;
	atomic_int bad;
};

static int reply_send(struct reply_srv *s, struct kprim_chan *reply, int ans,
		      unsigned int how)
{
	int dummy;
	struct kprim_chan_case cs[2] = {
		{ .ch = reply, .dir = KPRIM_CHAN_SEND, .elem = &ans },
		{ .ch = reply, .dir = KPRIM_CHAN_SEND, .elem = &ans },
	};

	switch (how % 3) {
	case 0:
		return kprim_chan_send(reply, &ans, NULL,
				       KPRIM_TIMEOUT_INFINITE);
	case 1:		/* the same channel in both cases */
		return kprim_chan_select(cs, 2, NULL, KPRIM_TIMEOUT_INFINITE)
			< 0 ? -1 : 0;
	default:	/* plus a channel that is never ready */
		cs[1] = (struct kprim_chan_case){ .ch = s->never,
			.dir = KPRIM_CHAN_RECV, .elem = &dummy };
		return kprim_chan_select(cs, 2, NULL,
					 KPRIM_TIMEOUT_INFINITE) == 0 ? 0 : -1;
	}
}

static void *reply_server(void *p)
{
	struct reply_srv *s = p;
	struct reply_req r;
	unsigned int n = 0;

	while (!kprim_chan_recv(s->reqs, &r, NULL, KPRIM_TIMEOUT_INFINITE))
		if (reply_send(s, r.reply, r.v + 1, n++))
			atomic_fetch_add(&s->bad, 1);
	return NULL;
}

static void *reply_client(void *p)
{
	struct reply_srv *s = p;
	struct reply_req r;
	int ans;

	for (int i = 0; i < REPLY_ROUNDS; i++) {
		if (kprim_chan_new(sizeof(int), 0, &r.reply))
			goto bad;
		r.v = i;
		if (kprim_chan_send(s->reqs, &r, NULL, KPRIM_TIMEOUT_INFINITE))
			goto bad;
		if (i % 4 == 0)
			usleep(20);	/* let the server park in its send */
		if (kprim_chan_recv(r.reply, &ans, NULL,
				    KPRIM_TIMEOUT_INFINITE) || ans != i + 1)
			atomic_fetch_add(&s->bad, 1);
		kprim_chan_free(r.reply);
	}
	return NULL;
bad:
	atomic_fetch_add(&s->bad, 1);
	return NULL;
}

TEST(reply_channel_freed_after_exchange)
{
	struct reply_srv s = { 0 };
	pthread_t srv[2], cli[REPLY_CLIENTS];

	ASSERT_EQ(0, kprim_chan_new(sizeof(struct reply_req), 0, &s.reqs));
	ASSERT_EQ(0, kprim_chan_new(sizeof(int), 0, &s.never));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&srv[i], NULL, reply_server, &s));
	for (int i = 0; i < REPLY_CLIENTS; i++)
		ASSERT_EQ(0, pthread_create(&cli[i], NULL, reply_client, &s));
	for (int i = 0; i < REPLY_CLIENTS; i++)
		pthread_join(cli[i], NULL);
	kprim_chan_close(s.reqs);
	for (int i = 0; i < 2; i++)
		pthread_join(srv[i], NULL);
	EXPECT_EQ(0, atomic_load(&s.bad));
	kprim_chan_free(s.reqs);
	kprim_chan_free(s.never);
}

/*
 * A select naming one channel twice: the sender that completes one case
 * must unlink the other case's node too (the woken receiver no longer
 * locks a channel whose exchange completed). A node left behind would
 * point into a dead stack frame when the next value comes.
 */
#define TWICE_ROUNDS	20000

static void *twice_sender(void *p)
{
	struct kprim_chan *c = p;

	for (uint64_t v = 1; v <= TWICE_ROUNDS; v++)
		if (kprim_chan_send(c, &v, NULL, KPRIM_TIMEOUT_INFINITE))
			break;
	return NULL;
}

static int recv_twice(struct kprim_chan *c, uint64_t *v)
{
	uint64_t a = 0, b = 0;
	struct kprim_chan_case cs[2] = {
		{ .ch = c, .dir = KPRIM_CHAN_RECV, .elem = &a },
		{ .ch = c, .dir = KPRIM_CHAN_RECV, .elem = &b },
	};
	int k = kprim_chan_select(cs, 2, NULL, KPRIM_TIMEOUT_INFINITE);

	if (k < 0 || cs[k].err)
		return -1;
	*v = k ? b : a;
	return 0;
}

TEST(select_same_channel_twice)
{
	struct kprim_chan *c;
	uint64_t v, sum = 0, n = 0;
	pthread_t t;

	ASSERT_EQ(0, kprim_chan_new(sizeof(v), 0, &c));
	ASSERT_EQ(0, pthread_create(&t, NULL, twice_sender, c));
	for (uint64_t i = 1; i <= TWICE_ROUNDS; i++) {
		/* Alternate call depths so stale nodes would be garbage. */
		if (i % 2 ? recv_twice(c, &v) :
			    kprim_chan_recv(c, &v, NULL, KPRIM_TIMEOUT_INFINITE))
			break;
		sum += v;
		n++;
	}
	pthread_join(t, NULL);
	EXPECT_EQ(TWICE_ROUNDS, n);
	EXPECT_EQ((uint64_t)TWICE_ROUNDS * (TWICE_ROUNDS + 1) / 2, sum);
	kprim_chan_free(c);
}

/*
 * A select on no channel at all is a cancellable sleep; it may come before
 * any channel exists (the harness runs each test in a fresh child).
 * Bound: >= 200 ms, < 200 ms + 1 s of slack for a slow VM.
 */
TEST(select_without_channels_sleeps_its_timeout)
{
	uint64_t t0 = kprim_now_ns(), dt;

	EXPECT_EQ(-ETIMEDOUT, kprim_chan_select(NULL, 0, NULL, 200000000ull));
	dt = kprim_now_ns() - t0;
	EXPECT_GE(dt, 200000000ull);
	EXPECT_LT(dt, 1200000000ull);
}

TEST_HARNESS_MAIN
