// SPDX-License-Identifier: GPL-2.0
/*
 * Pipeline stage gates over kernel objects (kprim/gates.h): a stage
 * throttled by a kprim limiter keeps to its rate, a stage bounded by a
 * kprim semaphore never runs more calls at once than there are permits
 * (also when another process holds some), and cancelling the pipeline
 * ends a kernel wait at once.
 *
 * Timing bounds: lower bounds are exact (the kernel limiter keeps integer
 * time and never hands a token out early); upper bounds add SLACK_NS for
 * the emulated VM, stated in each test.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "cancel_later.h"
#include "kprim.h"
#include "kprim/gates.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define SLACK_NS	(3000 * MSEC)

struct gen {
	long next, limit;	/* limit 0: endless */
};

static int gen_fn(void *arg, struct kprim_ctx *ctx, void *out)
{
	struct gen *g = arg;

	(void)ctx;
	if (g->limit && g->next >= g->limit)
		return KPRIM_PIPE_END;
	*(long *)out = g->next++;
	return 0;
}

static int copy_fn(void *arg, struct kprim_ctx *ctx, const void *in,
		   void *out)
{
	(void)arg;
	(void)ctx;
	*(long *)out = *(const long *)in;
	return 0;
}

/* Tracks how many calls run at once. */
struct conc {
	atomic_int cur, max;
	unsigned int sleep_us;
};

static int busy_fn(void *arg, struct kprim_ctx *ctx, const void *in,
		   void *out)
{
	struct conc *c = arg;
	int now = atomic_fetch_add(&c->cur, 1) + 1;
	int m = atomic_load(&c->max);

	(void)ctx;
	while (now > m && !atomic_compare_exchange_weak(&c->max, &m, now))
		;
	usleep(c->sleep_us);
	atomic_fetch_sub(&c->cur, 1);
	*(long *)out = *(const long *)in;
	return 0;
}

static int count_sink(void *arg, struct kprim_ctx *ctx, const void *item)
{
	(void)ctx;
	(void)item;
	(*(long *)arg)++;
	return 0;
}

FIXTURE(gate) {
	struct kprim *k;
};

FIXTURE_SETUP(gate)
{
	int rc = kprim_open(&self->k);

	if (rc == -ENODEV)
		SKIP(return, "no /dev/kprim: kprim.ko not loaded");
	ASSERT_EQ(0, rc);
}

FIXTURE_TEARDOWN(gate)
{
	kprim_close(self->k);
}

#define RATE		50	/* tokens per second */
#define ITEMS		26

TEST_F(gate, limiter_throttles_the_stage)
{
	struct kprim_limiter_config cfg = { .rate = RATE, .period_ns = NSEC,
					    .burst = 1 };
	struct kprim_limiter *l = NULL;
	struct kprim_limiter_stats st;
	struct kprim_stage_gate g;
	struct gen src = { .limit = ITEMS };
	struct kprim_stage stage = { .fn = copy_fn, .out_size = sizeof(long),
				     .workers = 4, .gate = &g };
	struct kprim_pipeline p = {
		.source = gen_fn, .source_arg = &src,
		.item_size = sizeof(long), .stages = &stage, .nstages = 1,
		.sink = count_sink, .buffer = 4,
	};
	const uint64_t bound = (ITEMS - 1) * NSEC / RATE;
	uint64_t t0, dt;
	long got = 0;

	p.sink_arg = &got;
	/* Clock starts before the limiter exists: every refill after t0. */
	t0 = kprim_now_ns();
	ASSERT_EQ(0, kprim_limiter_open(self->k, NULL, KPRIM_CREATE, 0600,
					&cfg, &l));
	g = kprim_stage_gate_limiter(l);
	EXPECT_EQ(0, kprim_pipeline_run(&p, NULL, NULL));
	dt = kprim_now_ns() - t0;
	EXPECT_EQ(ITEMS, got);
	/*
	 * A full bucket of 1, then one token per 20 ms: ITEMS calls need
	 * (ITEMS - 1) / RATE s = 500 ms at least (exact); at most that plus
	 * SLACK_NS (3 s).
	 */
	EXPECT_LE(bound, dt);
	EXPECT_GT(bound + SLACK_NS, dt);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(ITEMS, st.admitted);
	kprim_limiter_close(l);
}

#define PERMITS		2
#define WORKERS		4

TEST_F(gate, sem_bounds_concurrent_calls)
{
	struct kprim_sem *s = NULL;
	struct kprim_sem_stats st;
	struct kprim_stage_gate g;
	struct conc c = { .sleep_us = 20000 };
	struct gen src = { .limit = 40 };
	struct kprim_stage stage = { .fn = busy_fn, .arg = &c,
				     .out_size = sizeof(long),
				     .workers = WORKERS, .gate = &g };
	struct kprim_pipeline p = {
		.source = gen_fn, .source_arg = &src,
		.item_size = sizeof(long), .stages = &stage, .nstages = 1,
		.sink = count_sink, .buffer = 8,
	};
	long got = 0;

	p.sink_arg = &got;
	ASSERT_EQ(0, kprim_sem_open(self->k, NULL, KPRIM_CREATE, 0600, PERMITS,
				    &s));
	g = kprim_stage_gate_sem(s);
	EXPECT_EQ(0, kprim_pipeline_run(&p, NULL, NULL));
	EXPECT_EQ(40, got);
	/* Never above the permits; with 4 workers and 20 ms calls, the
	 * bound is reached. */
	EXPECT_EQ(PERMITS, atomic_load(&c.max));
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.held);		/* every permit released */
	EXPECT_EQ(40, st.acquired);
	kprim_sem_close(s);
}

TEST_F(gate, sem_bound_is_host_wide)
{
	struct kprim_sem *s = NULL, *cs;
	struct kprim_sem_stats st;
	struct kprim_stage_gate g;
	struct conc c = { .sleep_us = 10000 };
	struct gen src = { .limit = 20 };
	struct kprim_stage stage = { .fn = busy_fn, .arg = &c,
				     .out_size = sizeof(long),
				     .workers = WORKERS, .gate = &g };
	struct kprim_pipeline p = {
		.source = gen_fn, .source_arg = &src,
		.item_size = sizeof(long), .stages = &stage, .nstages = 1,
		.sink = count_sink, .buffer = 8,
	};
	struct kprim *ck;
	char name[64];
	long got = 0;
	int pfd[2];
	char x = 0;
	pid_t pid;

	p.sink_arg = &got;
	snprintf(name, sizeof(name), "pgt-%d", getpid());
	ASSERT_EQ(0, kprim_sem_open(self->k, name, KPRIM_CREATE |
				    KPRIM_TRANSIENT, 0600, PERMITS, &s));
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* Another process takes one permit and keeps it. */
		if (kprim_open(&ck) || kprim_sem_open(ck, name, 0, 0, 0, &cs) ||
		    kprim_sem_try_acquire(cs, 1))
			_exit(1);
		if (write(pfd[1], &x, 1) != 1)
			_exit(2);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &x, 1));
	g = kprim_stage_gate_sem(s);
	EXPECT_EQ(0, kprim_pipeline_run(&p, NULL, NULL));
	EXPECT_EQ(20, got);
	/* One permit of two is the other process's: one call at a time. */
	EXPECT_EQ(1, atomic_load(&c.max));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.held);
	close(pfd[0]);
	kprim_sem_close(s);
}


#define CANCEL_AFTER_NS	(300 * MSEC)

TEST_F(gate, cancel_ends_a_kernel_limiter_wait)
{
	/* One token per hour, none at the start: every worker waits in
	 * the kernel until the pipeline is cancelled. */
	struct kprim_limiter_config cfg = { .rate = 1,
					    .period_ns = 3600 * NSEC,
					    .burst = 1, .has_initial = 1 };
	struct kprim_limiter *l = NULL;
	struct kprim_limiter_stats st;
	struct kprim_stage_gate g;
	struct canceller c = { .delay_ns = CANCEL_AFTER_NS };
	struct gen src = { .limit = 0 };
	struct kprim_stage stage = { .fn = copy_fn, .out_size = sizeof(long),
				     .workers = 3, .gate = &g };
	struct kprim_pipeline p = {
		.source = gen_fn, .source_arg = &src,
		.item_size = sizeof(long), .stages = &stage, .nstages = 1,
		.sink = count_sink, .buffer = 2,
	};
	struct kprim_pipeline_result res;
	uint64_t t0, dt;
	pthread_t th;
	long got = 0;

	p.sink_arg = &got;
	ASSERT_EQ(0, kprim_limiter_open(self->k, NULL, KPRIM_CREATE, 0600,
					&cfg, &l));
	g = kprim_stage_gate_limiter(l);
	ASSERT_EQ(0, kprim_ctx_new(NULL, &c.ctx));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, kprim_pipeline_run(&p, c.ctx, &res));
	dt = kprim_now_ns() - t0;
	pthread_join(th, NULL);
	/* Not before the cancel; within SLACK_NS (3 s) after it. */
	EXPECT_LE(CANCEL_AFTER_NS, dt);
	EXPECT_GT(CANCEL_AFTER_NS + SLACK_NS, dt);
	EXPECT_EQ(0, got);
	/* The cancellation is not counted as the gates' errors. */
	EXPECT_EQ(0, res.nerrors);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.waiters);	/* every kernel wait ended */
	EXPECT_EQ(0, st.admitted);
	kprim_ctx_free(c.ctx);
	kprim_limiter_close(l);
}

TEST_F(gate, cancel_ends_a_kernel_sem_wait)
{
	struct kprim_sem *s = NULL;
	struct kprim_sem_stats st;
	struct kprim_stage_gate g;
	struct canceller c = { .delay_ns = CANCEL_AFTER_NS };
	struct gen src = { .limit = 0 };
	struct kprim_stage stage = { .fn = copy_fn, .out_size = sizeof(long),
				     .workers = 2, .gate = &g };
	struct kprim_pipeline p = {
		.source = gen_fn, .source_arg = &src,
		.item_size = sizeof(long), .stages = &stage, .nstages = 1,
		.sink = count_sink, .buffer = 2,
	};
	uint64_t t0, dt;
	pthread_t th;
	long got = 0;

	p.sink_arg = &got;
	ASSERT_EQ(0, kprim_sem_open(self->k, NULL, KPRIM_CREATE, 0600, 1, &s));
	ASSERT_EQ(0, kprim_sem_try_acquire(s, 1));	/* none left */
	g = kprim_stage_gate_sem(s);
	ASSERT_EQ(0, kprim_ctx_new(NULL, &c.ctx));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, kprim_pipeline_run(&p, c.ctx, NULL));
	dt = kprim_now_ns() - t0;
	pthread_join(th, NULL);
	/* Not before the cancel; within SLACK_NS (3 s) after it. */
	EXPECT_LE(CANCEL_AFTER_NS, dt);
	EXPECT_GT(CANCEL_AFTER_NS + SLACK_NS, dt);
	EXPECT_EQ(0, got);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.held);		/* only the test's own permit */
	kprim_ctx_free(c.ctx);
	kprim_sem_close(s);
}

/*
 * A signal storm against a gated wait bounded by its context's deadline
 * (300 ms): every signal interrupts the kernel wait, the gate waits again,
 * and the wait must still end near the deadline - each retry waits for
 * the time left, not a fresh full timeout. With a handler without
 * SA_RESTART the kernel returns -EINTR to the gate; with SA_RESTART the
 * kernel may restart the call itself: the deadline must hold both ways.
 */
#define STORM_DEADLINE_NS	(300 * MSEC)
#define STORM_EVERY_US		500

static atomic_int storm_hits;

static void storm_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&storm_hits, 1);
}

struct storm {
	pid_t tid;		/* the waiting thread */
	atomic_int stop;
};

static void *storm_main(void *arg)
{
	struct storm *st = arg;

	while (!atomic_load(&st->stop)) {
		syscall(SYS_tgkill, getpid(), st->tid, SIGUSR1);
		usleep(STORM_EVERY_US);
	}
	return NULL;
}

static void gated_wait_in_a_storm(struct __test_metadata *_metadata,
				  const struct kprim_stage_gate *g,
				  int sa_flags)
{
	struct sigaction sa = { .sa_handler = storm_handler,
				.sa_flags = sa_flags }, old;
	struct storm st = { .tid = (pid_t)syscall(SYS_gettid) };
	struct kprim_ctx *ctx;
	uint64_t t0, dt;
	int rc, hits0, hits;
	pthread_t th;

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, &old));
	atomic_store(&storm_hits, 0);
	ASSERT_EQ(0, pthread_create(&th, NULL, storm_main, &st));
	/* The storm is on before the wait starts (the VM may be slow). */
	while (atomic_load(&storm_hits) == 0)
		usleep(1000);
	hits0 = atomic_load(&storm_hits);
	t0 = kprim_now_ns();	/* before the deadline is set: dt >= it */
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, STORM_DEADLINE_NS, &ctx));
	rc = g->acquire(g->arg, ctx);
	dt = kprim_now_ns() - t0;
	hits = atomic_load(&storm_hits) - hits0;
	atomic_store(&st.stop, 1);
	pthread_join(th, NULL);
	sigaction(SIGUSR1, &old, NULL);
	TH_LOG("%d signals in %llu ms", hits, (unsigned long long)(dt / MSEC));
	EXPECT_EQ(-ETIMEDOUT, rc);
	/* Not before the deadline; within SLACK_NS (3 s) after it. */
	EXPECT_LE(STORM_DEADLINE_NS, dt);
	EXPECT_GT(STORM_DEADLINE_NS + SLACK_NS, dt);
	/*
	 * The wait was interrupted again and again: one signal per 0.5 ms
	 * asked, 16 seen in 300 ms on the emulated debug kernel at worst.
	 */
	EXPECT_LE(3, hits);
	kprim_ctx_free(ctx);
}

static void sem_gate_in_a_storm(struct __test_metadata *_metadata,
				struct kprim *k, int sa_flags)
{
	struct kprim_sem *s = NULL;
	struct kprim_sem_stats st;
	struct kprim_stage_gate g;

	ASSERT_EQ(0, kprim_sem_open(k, NULL, KPRIM_CREATE, 0600, 1, &s));
	ASSERT_EQ(0, kprim_sem_try_acquire(s, 1));	/* none left */
	g = kprim_stage_gate_sem(s);
	gated_wait_in_a_storm(_metadata, &g, sa_flags);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.held);
	kprim_sem_close(s);
}

static void limiter_gate_in_a_storm(struct __test_metadata *_metadata,
				    struct kprim *k, int sa_flags)
{
	/* One token per hour, none at the start. */
	struct kprim_limiter_config cfg = { .rate = 1,
					    .period_ns = 3600 * NSEC,
					    .burst = 1, .has_initial = 1 };
	struct kprim_limiter *l = NULL;
	struct kprim_limiter_stats st;
	struct kprim_stage_gate g;

	ASSERT_EQ(0, kprim_limiter_open(k, NULL, KPRIM_CREATE, 0600, &cfg,
					&l));
	g = kprim_stage_gate_limiter(l);
	gated_wait_in_a_storm(_metadata, &g, sa_flags);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.admitted);
	kprim_limiter_close(l);
}

TEST_F(gate, signal_storm_sem_wait_keeps_its_deadline)
{
	sem_gate_in_a_storm(_metadata, self->k, 0);
}

TEST_F(gate, signal_storm_sem_wait_keeps_its_deadline_sa_restart)
{
	sem_gate_in_a_storm(_metadata, self->k, SA_RESTART);
}

TEST_F(gate, signal_storm_limiter_wait_keeps_its_deadline)
{
	limiter_gate_in_a_storm(_metadata, self->k, 0);
}

TEST_F(gate, signal_storm_limiter_wait_keeps_its_deadline_sa_restart)
{
	limiter_gate_in_a_storm(_metadata, self->k, SA_RESTART);
}

/* A gate made from a NULL handle has no acquire: the pipeline refuses it. */
static void expect_gate_refused(struct __test_metadata *_metadata,
				const struct kprim_stage_gate *g)
{
	struct gen src = { .limit = 1 };
	struct kprim_stage stage = { .fn = copy_fn, .out_size = sizeof(long),
				     .workers = 1, .gate = g };
	struct kprim_pipeline p = {
		.source = gen_fn, .source_arg = &src,
		.item_size = sizeof(long), .stages = &stage, .nstages = 1,
		.sink = count_sink,
	};
	long got = 0;

	p.sink_arg = &got;
	EXPECT_EQ(NULL, g->acquire);
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&p, NULL, NULL));
}

TEST(null_limiter_gate_is_refused_by_the_pipeline)
{
	struct kprim_stage_gate g = kprim_stage_gate_limiter(NULL);

	expect_gate_refused(_metadata, &g);
}

TEST(null_sem_gate_is_refused_by_the_pipeline)
{
	struct kprim_stage_gate g = kprim_stage_gate_sem(NULL);

	expect_gate_refused(_metadata, &g);
}

TEST_HARNESS_MAIN
