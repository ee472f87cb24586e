// SPDX-License-Identifier: GPL-2.0
/* kprim_breaker: table-driven state machine on a fake clock, probes,
 * callbacks, forcing, bad settings. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kprim/breaker.h"
#include "kprim/ctx.h"
/* Internal: kprim__breaker_create() over a test backend (racy_ops below). */
#include "../../libuser/breaker_internal.h"

enum { CLOSED = KPRIM_BREAKER_CLOSED, OPEN = KPRIM_BREAKER_OPEN,
       HALF = KPRIM_BREAKER_HALF_OPEN };

static uint64_t fake_now;
static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

struct transitions {
	int n;
	int from[16], to[16];
};

static void on_change(void *arg, int from, int to)
{
	struct transitions *t = arg;

	if (t->n < 16) {
		t->from[t->n] = from;
		t->to[t->n] = to;
	}
	t->n++;
}

static struct kprim_breaker_settings base(void)
{
	return (struct kprim_breaker_settings){
		.consecutive_failures = 3,
		.open_timeout_ns = 1000,
		.half_open_probes = 2,
		.success_threshold = 2,
		.clock = fake_clock,
	};
}

/* ---- bad input: one variant per invalid setting ---- */

FIXTURE(bad) { };
FIXTURE_SETUP(bad) { }
FIXTURE_TEARDOWN(bad) { }
FIXTURE_VARIANT(bad) { int field; uint64_t value; };

enum { F_TRIP, F_WINDOW, F_WSIZE0, F_WSIZEBIG, F_MINCALLS, F_RATE0,
       F_RATE101, F_WNS, F_TIMEOUT, F_PROBES, F_THRESH, F_MINCALLS_BIG,
       F_SHARED_MODE };

FIXTURE_VARIANT_ADD(bad, no_trip_condition) { F_TRIP, 0 };
FIXTURE_VARIANT_ADD(bad, unknown_window) { F_WINDOW, 9 };
FIXTURE_VARIANT_ADD(bad, window_size_zero) { F_WSIZE0, 0 };
FIXTURE_VARIANT_ADD(bad, window_size_too_big) { F_WSIZEBIG, 0 };
FIXTURE_VARIANT_ADD(bad, min_calls_zero) { F_MINCALLS, 0 };
FIXTURE_VARIANT_ADD(bad, rate_zero) { F_RATE0, 0 };
FIXTURE_VARIANT_ADD(bad, rate_over_100) { F_RATE101, 0 };
FIXTURE_VARIANT_ADD(bad, time_window_shorter_than_buckets) { F_WNS, 0 };
FIXTURE_VARIANT_ADD(bad, open_timeout_zero) { F_TIMEOUT, 0 };
FIXTURE_VARIANT_ADD(bad, probes_zero) { F_PROBES, 0 };
FIXTURE_VARIANT_ADD(bad, success_threshold_zero) { F_THRESH, 0 };
FIXTURE_VARIANT_ADD(bad, min_calls_above_count_window) { F_MINCALLS_BIG, 0 };
FIXTURE_VARIANT_ADD(bad, shared_mode_on_a_local_breaker) { F_SHARED_MODE, 0 };

TEST_F(bad, settings_rejected)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker *b = (void *)1;

	s.window = KPRIM_BREAKER_WINDOW_COUNT;
	s.window_size = 10;
	s.min_calls = 5;
	s.failure_rate_pct = 50;
	switch (variant->field) {
	case F_TRIP:
		s.consecutive_failures = 0;
		s.window = KPRIM_BREAKER_WINDOW_NONE;
		break;
	case F_WINDOW: s.window = (uint32_t)variant->value; break;
	case F_WSIZE0: s.window_size = 0; break;
	case F_WSIZEBIG: s.window_size = KPRIM_BREAKER_WINDOW_MAX + 1; break;
	case F_MINCALLS: s.min_calls = 0; break;
	case F_RATE0: s.failure_rate_pct = 0; break;
	case F_RATE101: s.failure_rate_pct = 101; break;
	case F_WNS:
		s.window = KPRIM_BREAKER_WINDOW_TIME;
		s.window_ns = 5;
		break;
	case F_TIMEOUT: s.open_timeout_ns = 0; break;
	case F_PROBES: s.half_open_probes = 0; break;
	case F_THRESH: s.success_threshold = 0; break;
	case F_MINCALLS_BIG: s.min_calls = s.window_size + 1; break;
	case F_SHARED_MODE: s.shared_mode = 0660; break;
	}
	EXPECT_EQ(-EINVAL, kprim_breaker_new(&s, &b));
	EXPECT_EQ(NULL, b);
}

TEST(new_null_args)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker *b;

	EXPECT_EQ(-EINVAL, kprim_breaker_new(NULL, &b));
	EXPECT_EQ(-EINVAL, kprim_breaker_new(&s, NULL));
}

TEST(null_handles)
{
	struct kprim_breaker_ticket t = { 0 };
	struct kprim_breaker_counts c;

	EXPECT_EQ(-EINVAL, kprim_breaker_allow(NULL, &t));
	EXPECT_EQ(-EINVAL, kprim_breaker_done(NULL, &t, true));
	EXPECT_EQ(-EINVAL, kprim_breaker_state(NULL));
	EXPECT_EQ(-EINVAL, kprim_breaker_counts(NULL, &c));
	EXPECT_EQ(-EINVAL, kprim_breaker_force_open(NULL));
	EXPECT_EQ(-EINVAL, kprim_breaker_force_close(NULL));
	kprim_breaker_free(NULL);
}

TEST(null_ticket_and_counts)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker *b;

	ASSERT_EQ(0, kprim_breaker_new(&s, &b));
	EXPECT_EQ(-EINVAL, kprim_breaker_allow(b, NULL));
	EXPECT_EQ(-EINVAL, kprim_breaker_done(b, NULL, true));
	EXPECT_EQ(-EINVAL, kprim_breaker_counts(b, NULL));
	kprim_breaker_free(b);
}

/* ---- table-driven state machine ---- */

/*
 * Steps: A = allow expecting 0 (ticket pushed), R = allow expecting
 * -EBUSY, S/F = report success/failure on the oldest pending ticket
 * (expected rc in @rc), T = advance the fake clock by @arg ns.
 * After each step the state must be @state.
 */
struct step {
	char op;
	uint64_t arg;
	int rc;
	int state;
};

#define END	{ 0, 0, 0, 0 }

static void run_steps(struct __test_metadata *_metadata,
		      const struct kprim_breaker_settings *s,
		      const struct step *steps)
{
	struct kprim_breaker_ticket q[64];
	struct kprim_breaker *b;
	int head = 0, tail = 0;

	fake_now = 1000000;
	ASSERT_EQ(0, kprim_breaker_new(s, &b));
	for (int i = 0; steps[i].op; i++) {
		const struct step *st = &steps[i];

		switch (st->op) {
		case 'A':
			ASSERT_EQ(0, kprim_breaker_allow(b, &q[tail++]))
				TH_LOG("step %d", i);
			break;
		case 'R': {
			struct kprim_breaker_ticket t;

			ASSERT_EQ(-EBUSY, kprim_breaker_allow(b, &t))
				TH_LOG("step %d", i);
			break;
		}
		case 'S':
		case 'F':
			ASSERT_LT(head, tail);
			ASSERT_EQ(st->rc, kprim_breaker_done(b, &q[head++],
							     st->op == 'S'))
				TH_LOG("step %d", i);
			break;
		case 'T':
			fake_now += st->arg;
			break;
		}
		ASSERT_EQ(st->state, kprim_breaker_state(b))
			TH_LOG("step %d (%c)", i, st->op);
	}
	kprim_breaker_free(b);
}

TEST(consecutive_failures_trip)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'S', 0, 0, CLOSED },	/* resets */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },
		{ 'R', 0, 0, OPEN },
		{ 'T', 999, 0, OPEN }, { 'R', 0, 0, OPEN },
		{ 'T', 1, 0, OPEN }, { 'A', 0, 0, HALF },
		END
	};

	run_steps(_metadata, &s, steps);
}

TEST(half_open_probes_and_close)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },
		{ 'T', 1000, 0, OPEN },
		{ 'A', 0, 0, HALF }, { 'A', 0, 0, HALF },	/* M = 2 */
		{ 'R', 0, 0, HALF },				/* no slot */
		{ 'S', 0, 0, HALF },				/* 1 of 2 */
		{ 'A', 0, 0, HALF },				/* slot freed */
		{ 'S', 0, 0, CLOSED },				/* threshold */
		{ 'S', 0, -ESTALE, CLOSED },	/* old generation: ignored */
		/* Failures were reset on the transition: 3 more needed. */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		END
	};

	run_steps(_metadata, &s, steps);
}

TEST(half_open_failure_reopens)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },
		{ 'T', 5000, 0, OPEN },
		{ 'A', 0, 0, HALF }, { 'A', 0, 0, HALF },
		{ 'F', 0, 0, OPEN },
		{ 'S', 0, -ESTALE, OPEN },	/* the other probe: stale */
		{ 'R', 0, 0, OPEN },		/* open timeout restarts */
		{ 'T', 999, 0, OPEN }, { 'R', 0, 0, OPEN },
		{ 'T', 1, 0, OPEN }, { 'A', 0, 0, HALF },
		END
	};

	run_steps(_metadata, &s, steps);
}

/*
 * A slow probe of a past half-open period still holds its slot: the next
 * half-open admits only M minus the probes still out, never more than M
 * probe calls in flight at once.
 */
TEST(slow_probe_keeps_its_slot_across_periods)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },
		{ 'T', 1000, 0, OPEN },
		{ 'A', 0, 0, HALF }, { 'A', 0, 0, HALF },	/* P1, P2 */
		{ 'F', 0, 0, OPEN },				/* P1 fails */
		{ 'T', 1000, 0, OPEN },
		{ 'A', 0, 0, HALF },		/* P3: P2 still holds a slot */
		{ 'R', 0, 0, HALF },		/* P2 + P3 = M */
		{ 'S', 0, -ESTALE, HALF },	/* P2 reports: slot freed */
		{ 'A', 0, 0, HALF },		/* P4 */
		{ 'R', 0, 0, HALF },
		END
	};

	run_steps(_metadata, &s, steps);
}

TEST(stale_closed_results_ignored_after_trip)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'A', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'A', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED },
		{ 'F', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'F', 0, 0, OPEN },
		/* Admitted before the trip: must not touch the open state. */
		{ 'S', 0, -ESTALE, OPEN }, { 'F', 0, -ESTALE, OPEN },
		END
	};

	run_steps(_metadata, &s, steps);
}

TEST(count_window_rate_with_min_calls)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		/* 3 failures of 3 calls: below min_calls (4), stays closed */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'S', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		/* 4th call: 3/4 = 75% >= 50%: trips */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },
		END
	};

	s.consecutive_failures = 0;
	s.window = KPRIM_BREAKER_WINDOW_COUNT;
	s.window_size = 4;
	s.min_calls = 4;
	s.failure_rate_pct = 50;
	run_steps(_metadata, &s, steps);
}

TEST(count_window_slides)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'S', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'S', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'S', 0, 0, CLOSED },	/* 1/4 */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },	/* 1/4: first F slid out */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },	/* 2/4 = 50% */
		END
	};

	s.consecutive_failures = 0;
	s.window = KPRIM_BREAKER_WINDOW_COUNT;
	s.window_size = 4;
	s.min_calls = 4;
	s.failure_rate_pct = 50;
	run_steps(_metadata, &s, steps);
}

TEST(time_window_forgets_old_failures)
{
	struct kprim_breaker_settings s = base();
	const struct step steps[] = {
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },
		{ 'T', 2000, 0, CLOSED },	/* both out of the 1000 ns window */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, CLOSED },	/* 1 call */
		{ 'A', 0, 0, CLOSED }, { 'S', 0, 0, CLOSED },	/* 1/2 */
		{ 'A', 0, 0, CLOSED }, { 'F', 0, 0, OPEN },	/* 2/3 */
		END
	};

	s.consecutive_failures = 0;
	s.window = KPRIM_BREAKER_WINDOW_TIME;
	s.window_size = 10;
	s.window_ns = 1000;
	s.min_calls = 3;
	s.failure_rate_pct = 60;
	run_steps(_metadata, &s, steps);
}

/* ---- callbacks, counts, forcing ---- */

TEST(callbacks_report_transitions)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker_ticket t;
	struct transitions tr = { 0 };
	struct kprim_breaker *b;
	const int want_from[] = { CLOSED, OPEN, HALF, CLOSED, OPEN };
	const int want_to[] = { OPEN, HALF, CLOSED, OPEN, CLOSED };

	fake_now = 0;
	s.consecutive_failures = 1;
	s.success_threshold = 1;
	s.on_state_change = on_change;
	s.cb_arg = &tr;
	ASSERT_EQ(0, kprim_breaker_new(&s, &b));
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));
	ASSERT_EQ(0, kprim_breaker_done(b, &t, false));		/* -> open */
	fake_now += 1000;
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));		/* -> half */
	ASSERT_EQ(0, kprim_breaker_done(b, &t, true));		/* -> closed */
	ASSERT_EQ(0, kprim_breaker_force_open(b));		/* -> open */
	ASSERT_EQ(0, kprim_breaker_force_close(b));		/* -> closed */
	ASSERT_EQ(5, tr.n);
	for (int i = 0; i < 5; i++) {
		EXPECT_EQ(want_from[i], tr.from[i]) TH_LOG("transition %d", i);
		EXPECT_EQ(want_to[i], tr.to[i]) TH_LOG("transition %d", i);
	}
	kprim_breaker_free(b);
}

/*
 * Transitions made by several threads at once reach on_state_change in
 * the order they were made: each notification's @from is the previous
 * one's @to, and the callback never runs twice at once. The breaker
 * changes state on almost every call (trip on one failure, 1 ns open,
 * close on one success), so the threads race on every transition.
 */
#define ORDER_THREADS	4
#define ORDER_NS	(1500 * 1000 * 1000ull)

struct order {
	struct kprim_breaker *b;
	pthread_mutex_t lock;
	int last_to;
	uint64_t notes, out_of_order;
	atomic_int inside, overlapped;
	atomic_bool stop;
};

static void order_cb(void *arg, int from, int to)
{
	struct order *o = arg;

	if (atomic_fetch_add(&o->inside, 1))
		atomic_store(&o->overlapped, 1);
	pthread_mutex_lock(&o->lock);
	if (from != o->last_to)
		o->out_of_order++;
	o->last_to = to;
	o->notes++;
	pthread_mutex_unlock(&o->lock);
	/* The callback may call back into the breaker. */
	(void)kprim_breaker_state(o->b);
	atomic_fetch_sub(&o->inside, 1);
}

static void *order_hammer(void *arg)
{
	struct order *o = arg;
	struct kprim_breaker_ticket t;
	unsigned int seed = (unsigned int)(uintptr_t)&t;

	while (!atomic_load(&o->stop))
		if (kprim_breaker_allow(o->b, &t) == 0)
			kprim_breaker_done(o->b, &t, rand_r(&seed) & 1);
	return NULL;
}

TEST(callbacks_in_order_under_concurrency)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 1,
		.open_timeout_ns = 1,
		.half_open_probes = 1000,
		.success_threshold = 1,
	};
	pthread_t th[ORDER_THREADS];
	struct kprim_breaker_counts c;
	struct order o = { .last_to = CLOSED };
	uint64_t end;

	pthread_mutex_init(&o.lock, NULL);
	s.on_state_change = order_cb;
	s.cb_arg = &o;
	ASSERT_EQ(0, kprim_breaker_new(&s, &o.b));
	for (int i = 0; i < ORDER_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, order_hammer, &o));
	end = kprim_now_ns() + ORDER_NS;
	while (kprim_now_ns() < end)
		usleep(10000);
	atomic_store(&o.stop, true);
	for (int i = 0; i < ORDER_THREADS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(0, kprim_breaker_counts(o.b, &c));
	/* Every transition was notified once by the time the calls returned. */
	EXPECT_EQ(c.transitions, o.notes);
	EXPECT_LT(1000, o.notes);
	EXPECT_EQ(0, o.out_of_order)
		TH_LOG("%llu of %llu notifications out of order",
		       (unsigned long long)o.out_of_order,
		       (unsigned long long)o.notes);
	EXPECT_EQ(0, atomic_load(&o.overlapped));
	EXPECT_EQ(kprim_breaker_state(o.b), o.last_to);
	kprim_breaker_free(o.b);
	pthread_mutex_destroy(&o.lock);
}

/* A transition made from inside the callback is notified after the one
 * being delivered, not inside it. */
struct reenter {
	struct kprim_breaker *b;
	int n, depth, max_depth;
	int from[4], to[4];
};

static void reenter_cb(void *arg, int from, int to)
{
	struct reenter *r = arg;

	if (++r->depth > r->max_depth)
		r->max_depth = r->depth;
	if (r->n < 4) {
		r->from[r->n] = from;
		r->to[r->n] = to;
	}
	r->n++;
	if (to == OPEN)
		kprim_breaker_force_close(r->b);
	r->depth--;
}

TEST(callback_reentry_transition_follows)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker_ticket t;
	struct reenter r = { 0 };

	fake_now = 0;
	s.consecutive_failures = 1;
	s.on_state_change = reenter_cb;
	s.cb_arg = &r;
	ASSERT_EQ(0, kprim_breaker_new(&s, &r.b));
	ASSERT_EQ(0, kprim_breaker_allow(r.b, &t));
	ASSERT_EQ(0, kprim_breaker_done(r.b, &t, false));	/* -> open -> closed */
	ASSERT_EQ(2, r.n);
	EXPECT_EQ(CLOSED, r.from[0]);
	EXPECT_EQ(OPEN, r.to[0]);
	EXPECT_EQ(OPEN, r.from[1]);
	EXPECT_EQ(CLOSED, r.to[1]);
	EXPECT_EQ(1, r.max_depth);
	EXPECT_EQ(CLOSED, kprim_breaker_state(r.b));
	kprim_breaker_free(r.b);
}

/*
 * A call that made a transition returns once it has been notified, and
 * delivers nothing queued after its own: the backlog never exceeds the
 * calls in progress (one transition each here), however slow the
 * callback. Measured from inside the callback: transitions made so far
 * minus those notified before this one.
 */
#define BACKLOG_THREADS	4

struct backlog {
	struct kprim_breaker *b;
	atomic_ulong notified;
	uint64_t worst;		/* the callback runs one at a time */
	atomic_bool stop;
};

static void backlog_cb(void *arg, int from, int to)
{
	struct backlog *bl = arg;
	struct kprim_breaker_counts c;
	uint64_t lag;

	(void)from;
	(void)to;
	if (!kprim_breaker_counts(bl->b, &c)) {
		lag = c.transitions - atomic_load(&bl->notified);
		if (lag > bl->worst)
			bl->worst = lag;
	}
	usleep(100);		/* slower than the threads' transitions */
	atomic_fetch_add(&bl->notified, 1);
}

static void *backlog_flip(void *arg)
{
	struct backlog *bl = arg;

	/* Bounded: unthrottled flips would leave minutes of backlog. */
	for (int i = 0; i < 500 && !atomic_load(&bl->stop); i++) {
		kprim_breaker_force_open(bl->b);
		kprim_breaker_force_close(bl->b);
	}
	return NULL;
}

TEST(notes_backlog_bounded_by_calls_in_progress)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 1, .open_timeout_ns = 1,
		.half_open_probes = 1, .success_threshold = 1,
	};
	pthread_t th[BACKLOG_THREADS];
	struct kprim_breaker_counts c;
	struct backlog bl = { 0 };

	atomic_init(&bl.notified, 0);
	atomic_init(&bl.stop, false);
	s.on_state_change = backlog_cb;
	s.cb_arg = &bl;
	ASSERT_EQ(0, kprim_breaker_new(&s, &bl.b));
	for (int i = 0; i < BACKLOG_THREADS; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, backlog_flip, &bl));
	usleep(500 * 1000);
	atomic_store(&bl.stop, true);
	for (int i = 0; i < BACKLOG_THREADS; i++)
		pthread_join(th[i], NULL);
	ASSERT_EQ(0, kprim_breaker_counts(bl.b, &c));
	EXPECT_EQ(c.transitions, atomic_load(&bl.notified));
	EXPECT_LT(100, c.transitions);
	/* This note and at most one per other thread's call in progress. */
	EXPECT_GE(BACKLOG_THREADS, bl.worst)
		TH_LOG("backlog reached %llu notes",
		       (unsigned long long)bl.worst);
	kprim_breaker_free(bl.b);
}

/*
 * Two breakers whose callbacks call into each other, each driven by its
 * own thread: a call made inside one breaker's callback must not wait for
 * the other breaker's delivering thread (which may be waiting for it),
 * and nothing is left undelivered once the calls have returned.
 */
struct pair_side {
	struct kprim_breaker *b;
	struct pair_side *other;
	atomic_int inside;
	int last_to, bad;
	unsigned long notes;
	atomic_bool *stop;
};

static __thread unsigned int pair_seed;

static void pair_cb(void *arg, int from, int to)
{
	struct pair_side *p = arg;
	unsigned int r;

	if (atomic_fetch_add(&p->inside, 1))
		p->bad++;
	if (from != p->last_to)
		p->bad++;
	p->last_to = to;
	p->notes++;
	r = rand_r(&pair_seed);
	usleep(20);		/* widen the window for the other thread */
	/* Call into the other breaker half of the time (chains end). */
	if (r & 1) {
		if (r & 2)
			kprim_breaker_force_open(p->other->b);
		else
			kprim_breaker_force_close(p->other->b);
	}
	atomic_fetch_sub(&p->inside, 1);
}

static void *pair_drive(void *arg)
{
	struct pair_side *p = arg;

	pair_seed = (unsigned int)(uintptr_t)arg;
	while (!atomic_load(p->stop)) {
		kprim_breaker_force_open(p->b);
		kprim_breaker_force_close(p->b);
	}
	return NULL;
}

TEST(callbacks_of_two_breakers_call_each_other)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 1, .open_timeout_ns = 1,
		.half_open_probes = 1, .success_threshold = 1,
		.on_state_change = pair_cb,
	};
	struct pair_side side[2];
	struct kprim_breaker_counts c;
	atomic_bool stop;
	pthread_t th[2];

	atomic_init(&stop, false);
	for (int i = 0; i < 2; i++) {
		side[i] = (struct pair_side){
			.other = &side[!i], .last_to = CLOSED, .stop = &stop,
		};
		atomic_init(&side[i].inside, 0);
		s.cb_arg = &side[i];
		ASSERT_EQ(0, kprim_breaker_new(&s, &side[i].b));
	}
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, pair_drive, &side[i]));
	usleep(500 * 1000);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, kprim_breaker_counts(side[i].b, &c));
		EXPECT_EQ(c.transitions, side[i].notes) TH_LOG("breaker %d", i);
		EXPECT_EQ(0, side[i].bad) TH_LOG("breaker %d", i);
		EXPECT_EQ(kprim_breaker_state(side[i].b), side[i].last_to);
		EXPECT_LT(100, side[i].notes);
	}
	for (int i = 0; i < 2; i++)
		kprim_breaker_free(side[i].b);
}

/*
 * The deterministic case of the above: a call made inside breaker 1's
 * callback into breaker 2 while another thread is running breaker 2's
 * callback returns without waiting for it, and that thread notifies the
 * inner call's transition before its own call returns, though nobody
 * calls breaker 2 again.
 */
struct busy {
	struct kprim_breaker *b1, *b2;
	atomic_int armed, in_cb2, inner_returned;
	int notes2, from2[2], to2[2];
	int inner_rc;
	bool timed_out;
};

static void busy_cb1(void *arg, int from, int to)
{
	struct busy *x = arg;

	(void)from;
	(void)to;
	/* b2's callback is running in the other thread: b2 is busy. */
	x->inner_rc = kprim_breaker_force_open(x->b2);
	atomic_store(&x->inner_returned, 1);
}

static void busy_cb2(void *arg, int from, int to)
{
	struct busy *x = arg;

	if (x->notes2 < 2) {
		x->from2[x->notes2] = from;
		x->to2[x->notes2] = to;
	}
	x->notes2++;
	if (!atomic_exchange(&x->armed, 0))
		return;
	atomic_store(&x->in_cb2, 1);
	/* Held until the inner call has returned (5 s: it waited). */
	for (int i = 0; i < 5000 && !atomic_load(&x->inner_returned); i++)
		usleep(1000);
	x->timed_out = !atomic_load(&x->inner_returned);
}

static void *busy_b2(void *arg)
{
	struct busy *x = arg;

	kprim_breaker_force_close(x->b2);	/* open -> closed: notified */
	return NULL;
}

TEST(nested_call_notified_by_the_thread_delivering)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 1, .open_timeout_ns = 1,
		.half_open_probes = 1, .success_threshold = 1,
	};
	struct busy x = { 0 };
	struct kprim_breaker_counts c;
	pthread_t th;

	atomic_init(&x.armed, 0);
	atomic_init(&x.in_cb2, 0);
	atomic_init(&x.inner_returned, 0);
	s.cb_arg = &x;
	s.on_state_change = busy_cb1;
	ASSERT_EQ(0, kprim_breaker_new(&s, &x.b1));
	s.on_state_change = busy_cb2;
	ASSERT_EQ(0, kprim_breaker_new(&s, &x.b2));
	ASSERT_EQ(0, kprim_breaker_force_open(x.b2));
	/* That one was notified: count from here, the next one blocks. */
	ASSERT_EQ(1, x.notes2);
	x.notes2 = 0;
	atomic_store(&x.armed, 1);
	ASSERT_EQ(0, pthread_create(&th, NULL, busy_b2, &x));
	while (!atomic_load(&x.in_cb2))
		usleep(100);
	ASSERT_EQ(0, kprim_breaker_force_open(x.b1));	/* cb1 -> b2 */
	pthread_join(th, NULL);
	EXPECT_FALSE(x.timed_out) TH_LOG("the inner call waited");
	EXPECT_EQ(0, x.inner_rc);
	ASSERT_EQ(0, kprim_breaker_counts(x.b2, &c));
	EXPECT_EQ(3, c.transitions);
	/* Both notified by the time busy_b2's call returned, in order. */
	ASSERT_EQ(2, x.notes2);
	EXPECT_EQ(OPEN, x.from2[0]);
	EXPECT_EQ(CLOSED, x.to2[0]);
	EXPECT_EQ(CLOSED, x.from2[1]);
	EXPECT_EQ(OPEN, x.to2[1]);
	kprim_breaker_free(x.b1);
	kprim_breaker_free(x.b2);
}

TEST(force_open_pins_until_force_close)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker_ticket t, old;
	struct kprim_breaker *b;

	fake_now = 0;
	ASSERT_EQ(0, kprim_breaker_new(&s, &b));
	ASSERT_EQ(0, kprim_breaker_allow(b, &old));
	ASSERT_EQ(0, kprim_breaker_force_open(b));
	fake_now += 1000000;		/* way past the open timeout */
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));
	EXPECT_EQ(OPEN, kprim_breaker_state(b));
	ASSERT_EQ(0, kprim_breaker_force_close(b));
	EXPECT_EQ(-ESTALE, kprim_breaker_done(b, &old, false));
	EXPECT_EQ(0, kprim_breaker_allow(b, &t));
	EXPECT_EQ(CLOSED, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

TEST(counts)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker_ticket t, stale;
	struct kprim_breaker_counts c;
	struct kprim_breaker *b;

	fake_now = 0;
	ASSERT_EQ(0, kprim_breaker_new(&s, &b));
	ASSERT_EQ(0, kprim_breaker_allow(b, &stale));
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));
	ASSERT_EQ(0, kprim_breaker_done(b, &t, true));
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(0, kprim_breaker_allow(b, &t));
		ASSERT_EQ(0, kprim_breaker_done(b, &t, false));
	}
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));
	EXPECT_EQ(-ESTALE, kprim_breaker_done(b, &stale, true));
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(5, c.allowed);
	EXPECT_EQ(1, c.rejected);
	EXPECT_EQ(1, c.successes);
	EXPECT_EQ(3, c.failures);
	EXPECT_EQ(1, c.ignored);
	EXPECT_EQ(1, c.transitions);
	EXPECT_EQ(0, c.consecutive_failures);	/* reset by the trip */
	kprim_breaker_free(b);
}

/* ---- exactly M probes under concurrent callers ---- */

#define CALLERS	16
#define PROBES	3

struct race {
	struct kprim_breaker *b;
	pthread_barrier_t go;
	atomic_int admitted;
};

static void *prober(void *arg)
{
	struct race *r = arg;
	struct kprim_breaker_ticket t;

	pthread_barrier_wait(&r->go);
	if (kprim_breaker_allow(r->b, &t) == 0)
		atomic_fetch_add(&r->admitted, 1);
	return NULL;
}

TEST(exactly_m_probes_concurrently)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker_ticket t;
	struct kprim_breaker_counts c;
	pthread_t th[CALLERS];
	struct race r;

	for (int round = 0; round < 20; round++) {
		fake_now = 0;
		s.half_open_probes = PROBES;
		ASSERT_EQ(0, kprim_breaker_new(&s, &r.b));
		for (int i = 0; i < 3; i++) {
			ASSERT_EQ(0, kprim_breaker_allow(r.b, &t));
			ASSERT_EQ(0, kprim_breaker_done(r.b, &t, false));
		}
		ASSERT_EQ(OPEN, kprim_breaker_state(r.b));
		fake_now += 1000;
		atomic_init(&r.admitted, 0);
		pthread_barrier_init(&r.go, NULL, CALLERS);
		for (int i = 0; i < CALLERS; i++)
			ASSERT_EQ(0, pthread_create(&th[i], NULL, prober, &r));
		for (int i = 0; i < CALLERS; i++)
			pthread_join(th[i], NULL);
		pthread_barrier_destroy(&r.go);
		EXPECT_EQ(PROBES, atomic_load(&r.admitted));
		ASSERT_EQ(0, kprim_breaker_counts(r.b, &c));
		EXPECT_EQ(PROBES, c.probes_in_flight);
		EXPECT_EQ(CALLERS - PROBES, c.rejected);
		kprim_breaker_free(r.b);
	}
}

/*
 * The state machine over a backend whose compare-and-swap loses races on
 * demand, as the shared one does when another process stores first: the
 * fake applies "the other process's" change to the word and fails the CAS,
 * and the machine must decide again from the new word.
 */
struct racy_backend {
	struct breaker_word word;
	int races;		/* CASes left to lose */
	bool other_failed;	/* the other process reports a failure (else a success) */
	uint32_t in_flight;
};

static int racy_load(void *be, struct breaker_word *w)
{
	*w = ((struct racy_backend *)be)->word;
	return 0;
}

static int racy_cas(void *be, const struct breaker_word *old,
		    const struct breaker_word *new)
{
	struct racy_backend *r = be;

	if (r->races > 0) {
		r->races--;
		if (r->other_failed)
			r->word.consecutive_failures++;
		else
			r->word.consecutive_failures = 0;
	}
	if (memcmp(&r->word, old, sizeof(*old)))
		return -EAGAIN;
	r->word = *new;
	return 0;
}

static int racy_probe_acquire(void *be)
{
	((struct racy_backend *)be)->in_flight++;
	return 0;
}

static void racy_probe_release(void *be, uint64_t gen)
{
	(void)gen;
	((struct racy_backend *)be)->in_flight--;
}

static void racy_probe_reset(void *be, uint64_t gen, uint32_t permits)
{
	(void)be;
	(void)gen;
	(void)permits;
}

static uint32_t racy_in_flight(void *be)
{
	return ((struct racy_backend *)be)->in_flight;
}

static const struct breaker_backend_ops racy_ops = {
	.load = racy_load,
	.cas = racy_cas,
	.probe_acquire = racy_probe_acquire,
	.probe_release = racy_probe_release,
	.probe_reset = racy_probe_reset,
	.probes_in_flight = racy_in_flight,
};

/* Report one closed-state result through the racy backend. */
static int racy_report(struct kprim_breaker *b, bool success)
{
	struct kprim_breaker_ticket t;
	int rc = kprim_breaker_allow(b, &t);

	return rc ? rc : kprim_breaker_done(b, &t, success);
}

/* The third failure would trip, but a success elsewhere lands first: the
 * row is then 1, and the breaker must stay closed. */
TEST(cas_lost_to_a_success_redecides_the_trip)
{
	struct kprim_breaker_settings s = base();	/* trips at 3 */
	struct racy_backend r = { .word.state = CLOSED };
	struct kprim_breaker *b;

	s.consecutive_failures = 3;
	ASSERT_EQ(0, kprim__breaker_create(&s, &racy_ops, &r, &b));
	ASSERT_EQ(0, racy_report(b, false));
	ASSERT_EQ(0, racy_report(b, false));
	ASSERT_EQ(2, r.word.consecutive_failures);
	r.races = 1;
	r.other_failed = false;
	EXPECT_EQ(0, racy_report(b, false));
	EXPECT_EQ(0, r.races);		/* the race happened */
	EXPECT_EQ(CLOSED, (int)r.word.state);
	EXPECT_EQ(1, r.word.consecutive_failures);
	kprim_breaker_free(b);
}

/* A failure elsewhere lands first: both count, and the second one that
 * makes the row reach the threshold trips it (no lost update). */
TEST(cas_lost_to_a_failure_counts_both)
{
	struct kprim_breaker_settings s = base();
	struct racy_backend r = { .word.state = CLOSED };
	struct kprim_breaker *b;

	s.consecutive_failures = 3;
	ASSERT_EQ(0, kprim__breaker_create(&s, &racy_ops, &r, &b));
	ASSERT_EQ(0, racy_report(b, false));
	r.races = 1;
	r.other_failed = true;
	EXPECT_EQ(0, racy_report(b, false));
	EXPECT_EQ(0, r.races);
	EXPECT_EQ(OPEN, (int)r.word.state);
	kprim_breaker_free(b);
}

/*
 * fork(): a local breaker is process memory, the child's copy is its own
 * breaker, starting from the state at the fork.
 */
static int child_forces(struct kprim_breaker *b)
{
	if (kprim_breaker_state(b) != OPEN)
		return 1;		/* the parent's state at the fork */
	if (kprim_breaker_force_close(b))
		return 2;
	if (kprim_breaker_state(b) != CLOSED)
		return 3;
	kprim_breaker_free(b);
	return 0;
}

TEST(fork_local_breaker_is_a_copy)
{
	struct kprim_breaker_settings s = base();
	struct kprim_breaker_counts c;
	struct kprim_breaker *b;
	int status;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new(&s, &b));
	ASSERT_EQ(0, kprim_breaker_force_open(b));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_forces(b));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(OPEN, kprim_breaker_state(b));	/* still pinned here */
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(1, c.transitions);
	kprim_breaker_free(b);
}

TEST(state_names)
{
	EXPECT_STREQ("closed", kprim_breaker_state_name(CLOSED));
	EXPECT_STREQ("open", kprim_breaker_state_name(OPEN));
	EXPECT_STREQ("half-open", kprim_breaker_state_name(HALF));
	EXPECT_STREQ("?", kprim_breaker_state_name(42));
}

TEST_HARNESS_MAIN
