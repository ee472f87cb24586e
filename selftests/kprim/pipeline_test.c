// SPDX-License-Identifier: GPL-2.0
/* kprim_pipeline: order, errors, early stop, cancellation, no thread leak. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim/chan.h"
#include "kprim/pipeline.h"

static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/*
 * pthread_join() returns once the kernel has cleared the thread's tid,
 * which is before the task leaves /proc/self/task. Give joined threads up
 * to 2 s to disappear; a leaked thread (never joined, still blocked)
 * stays and fails the check.
 */
static int settled_tasks(int baseline)
{
	int n = count_tasks();

	for (int i = 0; i < 200 && n > baseline; i++) {
		usleep(10000);
		n = count_tasks();
	}
	return n;
}

/* Source of 1..limit (limit 0 = endless), failing at @fail_at if set. */
struct gen {
	long next, limit, fail_at;
};

static int gen_fn(void *arg, struct kprim_ctx *ctx, void *out)
{
	struct gen *g = arg;

	if (!ctx)
		return -EFAULT;	/* every callback gets the pipeline's ctx */
	if (g->limit && g->next > g->limit)
		return KPRIM_PIPE_END;
	if (g->fail_at && g->next == g->fail_at)
		return -ENODATA;
	*(long *)out = g->next++;
	return 0;
}

static int square_fn(void *arg, struct kprim_ctx *ctx, const void *in,
		     void *out)
{
	long v = *(const long *)in;

	if (!ctx)
		return -EFAULT;
	/* Jitter so that workers finish out of order. */
	if (arg && v % 7 == 0)
		usleep(200);
	*(long *)out = v * v;
	return 0;
}

static int even_fn(void *arg, struct kprim_ctx *ctx, const void *in,
		   void *out)
{
	(void)arg;
	(void)ctx;
	*(long *)out = *(const long *)in;
	return *(const long *)in % 2 ? KPRIM_PIPE_SKIP : 0;
}

static int fail_on_fn(void *arg, struct kprim_ctx *ctx, const void *in,
		      void *out)
{
	long bad = *(long *)arg;

	(void)ctx;
	*(long *)out = *(const long *)in;
	return *(const long *)in == bad ? -EIO : 0;
}

struct collect {
	long items[4096];
	size_t n;
	size_t stop_after;	/* 0 = never */
};

static int collect_fn(void *arg, struct kprim_ctx *ctx, const void *item)
{
	struct collect *c = arg;

	if (!ctx)
		return -EFAULT;
	if (c->n < 4096)
		c->items[c->n] = *(const long *)item;
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? KPRIM_PIPE_STOP : 0;
}

FIXTURE(pipe)
{
	int tasks;
	struct gen g;
	struct collect *c;
	struct kprim_stage st[3];
	struct kprim_pipeline p;
	struct kprim_pipeline_result res;
};

static void *tid_thread(void *arg)
{
	*(pid_t *)arg = (pid_t)syscall(SYS_gettid);
	return NULL;
}

FIXTURE_SETUP(pipe)
{
	char path[64];
	pthread_t t;
	pid_t tid;

	/*
	 * A sanitizer runtime starts its own helper thread at the first
	 * pthread_create(): let that happen before the baseline is taken,
	 * and let the joined thread leave /proc/self/task (up to 2 s).
	 */
	ASSERT_EQ(0, pthread_create(&t, NULL, tid_thread, &tid));
	pthread_join(t, NULL);
	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	for (int i = 0; i < 200 && access(path, F_OK) == 0; i++)
		usleep(10000);
	self->tasks = count_tasks();
	ASSERT_LT(0, self->tasks);
	self->g = (struct gen){ .next = 1, .limit = 1000 };
	self->c = calloc(1, sizeof(*self->c));
	ASSERT_NE(NULL, self->c);
	self->st[0] = (struct kprim_stage){ .fn = square_fn, .arg = (void *)1,
		.out_size = sizeof(long), .workers = 4 };
	self->p = (struct kprim_pipeline){
		.source = gen_fn, .source_arg = &self->g,
		.item_size = sizeof(long), .stages = self->st, .nstages = 1,
		.sink = collect_fn, .sink_arg = self->c, .buffer = 4,
	};
}

FIXTURE_TEARDOWN(pipe)
{
	/* Every run joins all its threads: back to the baseline. */
	EXPECT_EQ(self->tasks, settled_tasks(self->tasks));
	free(self->c);
}

/* ---- bad input ---- */

TEST_F(pipe, null_pipeline)
{
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(NULL, NULL, &self->res));
	EXPECT_EQ(-EINVAL, self->res.err);
}

TEST_F(pipe, no_source)
{
	self->p.source = NULL;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, no_sink)
{
	self->p.sink = NULL;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, zero_item_size)
{
	self->p.item_size = 0;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, stages_null_with_count)
{
	self->p.stages = NULL;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, stage_zero_workers)
{
	self->st[0].workers = 0;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, stage_no_function)
{
	self->st[0].fn = NULL;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, stage_zero_out_size)
{
	self->st[0].out_size = 0;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

TEST_F(pipe, gate_without_acquire)
{
	struct kprim_stage_gate g = { 0 };

	self->st[0].gate = &g;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
}

/* A buffer over the limit is a bad description like any other: -EINVAL. */
TEST_F(pipe, buffer_over_max)
{
	self->p.buffer = KPRIM_CHAN_CAP_MAX + 1;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(-EINVAL, self->res.err);
	EXPECT_EQ(1, self->g.next);	/* nothing ran */
	self->p.buffer = SIZE_MAX;
	EXPECT_EQ(-EINVAL, kprim_pipeline_run(&self->p, NULL, NULL));
	EXPECT_EQ(1, self->g.next);
}

/* ---- results ---- */

TEST_F(pipe, ordered_squares)
{
	self->p.ordered = 1;
	ASSERT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	ASSERT_EQ(1000, self->c->n);
	for (long i = 1; i <= 1000; i++)
		ASSERT_EQ(i * i, self->c->items[i - 1]);
	EXPECT_EQ(1000, self->res.produced);
	EXPECT_EQ(1000, self->res.delivered);
	EXPECT_EQ(0, self->res.nerrors);
}

TEST_F(pipe, ordered_with_filter_and_fanout)
{
	self->st[1] = (struct kprim_stage){ .fn = even_fn,
		.out_size = sizeof(long), .workers = 3 };
	self->p.nstages = 2;
	self->p.ordered = 1;
	self->p.buffer = 0;	/* unbuffered channels work too */
	ASSERT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	ASSERT_EQ(500, self->c->n);
	for (long i = 1; i <= 500; i++)
		ASSERT_EQ(4 * i * i, self->c->items[i - 1]);
}

TEST_F(pipe, unordered_all_items_once)
{
	long sum = 0, want = 0;

	ASSERT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	ASSERT_EQ(1000, self->c->n);
	for (long i = 1; i <= 1000; i++) {
		sum += self->c->items[i - 1];
		want += i * i;
	}
	EXPECT_EQ(want, sum);
}

TEST_F(pipe, no_stages)
{
	self->p.nstages = 0;
	self->p.ordered = 1;
	ASSERT_EQ(0, kprim_pipeline_run(&self->p, NULL, NULL));
	ASSERT_EQ(1000, self->c->n);
	EXPECT_EQ(1000, self->c->items[999]);
}

/* ---- errors and cancellation ---- */

TEST_F(pipe, stage_error_cancels_and_is_returned)
{
	long bad = 10;

	self->g.limit = 0;	/* endless: only the error can end it */
	self->st[0] = (struct kprim_stage){ .fn = fail_on_fn, .arg = &bad,
		.out_size = sizeof(long), .workers = 1 };
	EXPECT_EQ(-EIO, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(-EIO, self->res.err);
	EXPECT_EQ(1, self->res.nerrors);
	EXPECT_GT(10, self->c->n);
}

TEST_F(pipe, errors_are_counted)
{
	long bad = 10;

	/* Two stages fail on the same item: either may be first. */
	self->g.limit = 0;
	self->st[0] = (struct kprim_stage){ .fn = fail_on_fn, .arg = &bad,
		.out_size = sizeof(long), .workers = 1 };
	self->st[1] = self->st[0];
	self->p.nstages = 2;
	bad = 10;
	EXPECT_EQ(-EIO, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_LE(1, self->res.nerrors);
	EXPECT_GE(2, self->res.nerrors);
}

TEST_F(pipe, source_error)
{
	self->g.fail_at = 5;
	self->p.ordered = 1;
	EXPECT_EQ(-ENODATA, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(1, self->res.nerrors);
	EXPECT_GE(4, self->c->n);
}

static int sink_fail(void *arg, struct kprim_ctx *ctx, const void *item)
{
	(void)arg;
	(void)ctx;
	return *(const long *)item == 9 ? -ENOSPC : 0;
}

TEST_F(pipe, sink_error)
{
	self->g.limit = 0;
	self->p.sink = sink_fail;
	self->p.ordered = 1;
	EXPECT_EQ(-ENOSPC, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(1, self->res.nerrors);
}

TEST_F(pipe, consumer_stops_early)
{
	self->g.limit = 0;
	self->c->stop_after = 10;
	self->p.ordered = 1;
	EXPECT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(1, self->res.stopped);
	EXPECT_EQ(10, self->res.delivered);
	EXPECT_EQ(0, self->res.nerrors);
	for (long i = 1; i <= 10; i++)
		EXPECT_EQ(i * i, self->c->items[i - 1]);
}

TEST_F(pipe, consumer_stops_early_unordered_unbuffered)
{
	self->g.limit = 0;
	self->c->stop_after = 3;
	self->p.buffer = 0;
	EXPECT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(3, self->res.delivered);
}

static void *cancel_soon(void *arg)
{
	usleep(30 * 1000);
	kprim_ctx_cancel(arg);
	return NULL;
}

TEST_F(pipe, ctx_cancel_ends_run)
{
	struct kprim_ctx *ctx;
	pthread_t t;

	self->g.limit = 0;
	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	ASSERT_EQ(0, pthread_create(&t, NULL, cancel_soon, ctx));
	EXPECT_EQ(-ECANCELED, kprim_pipeline_run(&self->p, ctx, &self->res));
	EXPECT_EQ(0, self->res.nerrors);
	pthread_join(t, NULL);
	kprim_ctx_free(ctx);
}

/*
 * Callbacks see the pipeline's context. A stage that waits on it up to
 * 3 s must not hold a 100 ms deadline: run() returns the deadline error in
 * about 100 ms. Bound: < 100 ms + 1 s of slack for a slow VM, far below
 * the 3 s the stage would take. The stage's own -ETIMEDOUT comes after the
 * ctx ended: not counted as an error.
 */
static int slow_stage_fn(void *arg, struct kprim_ctx *ctx, const void *in,
			 void *out)
{
	int rc;

	(void)arg;
	*(long *)out = *(const long *)in;
	/* A cancellable 3 s sleep: a select on no channel. */
	rc = kprim_chan_select(NULL, 0, ctx, 3000 * 1000000ull);
	return rc == -ETIMEDOUT && !kprim_ctx_done(ctx) ? 0 : rc;
}

TEST_F(pipe, deadline_reaches_a_running_stage)
{
	struct kprim_ctx *ctx;
	uint64_t t0, dt;

	self->st[0] = (struct kprim_stage){ .fn = slow_stage_fn,
		.out_size = sizeof(long), .workers = 2 };
	/*
	 * t0 before the context: the deadline is counted from its creation,
	 * so a preemption between the two must not make dt look short.
	 */
	t0 = kprim_now_ns();
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, 100 * 1000000ull, &ctx));
	EXPECT_EQ(-ETIMEDOUT, kprim_pipeline_run(&self->p, ctx, &self->res));
	dt = kprim_now_ns() - t0;
	EXPECT_LE(100 * 1000000ull, dt);
	EXPECT_GT(1100 * 1000000ull, dt);
	EXPECT_EQ(0, self->res.nerrors);
	kprim_ctx_free(ctx);
}

/* A source blocked waiting for input is ended by a cancel (< 1 s). */
static int blocking_source_fn(void *arg, struct kprim_ctx *ctx, void *out)
{
	(void)arg;
	(void)out;
	return kprim_chan_select(NULL, 0, ctx, KPRIM_TIMEOUT_INFINITE);
}

TEST_F(pipe, cancel_reaches_a_blocked_source)
{
	struct kprim_ctx *ctx;
	uint64_t t0, dt;
	pthread_t t;

	self->p.source = blocking_source_fn;
	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&t, NULL, cancel_soon, ctx));
	EXPECT_EQ(-ECANCELED, kprim_pipeline_run(&self->p, ctx, &self->res));
	dt = kprim_now_ns() - t0;
	EXPECT_GT(1000 * 1000000ull, dt);
	EXPECT_EQ(0, self->res.nerrors);
	EXPECT_EQ(0, self->res.produced);
	pthread_join(t, NULL);
	kprim_ctx_free(ctx);
}

/*
 * The first error reaches a stage call in progress: one worker fails on
 * item 3 while the others wait on the ctx (3 s each); run() returns the
 * error well before 3 s, and only that one error is counted.
 */
static int fail_or_wait_fn(void *arg, struct kprim_ctx *ctx, const void *in,
			   void *out)
{
	if (*(const long *)in == 3)
		return -EIO;
	return slow_stage_fn(arg, ctx, in, out);
}

TEST_F(pipe, first_error_reaches_running_stages)
{
	uint64_t t0, dt;

	self->g.limit = 0;
	self->st[0] = (struct kprim_stage){ .fn = fail_or_wait_fn,
		.out_size = sizeof(long), .workers = 4 };
	t0 = kprim_now_ns();
	EXPECT_EQ(-EIO, kprim_pipeline_run(&self->p, NULL, &self->res));
	dt = kprim_now_ns() - t0;
	EXPECT_GT(1000 * 1000000ull, dt);
	EXPECT_EQ(1, self->res.nerrors);
	EXPECT_EQ(0, self->c->n);
}

/*
 * The sink runs in the caller's thread and gets the ctx too: a sink
 * waiting on it is ended by the caller's cancel (< 1 s after the cancel),
 * not counted. The cancel comes once the sink is waiting.
 */
struct sink_wait {
	struct kprim_ctx *ctx;
	atomic_int calls;
	uint64_t cancelled_at;
};

static int waiting_sink_fn(void *arg, struct kprim_ctx *ctx, const void *item)
{
	struct sink_wait *w = arg;

	(void)item;
	atomic_fetch_add(&w->calls, 1);
	return kprim_chan_select(NULL, 0, ctx, KPRIM_TIMEOUT_INFINITE);
}

static void *cancel_when_sink_waits(void *arg)
{
	struct sink_wait *w = arg;

	while (!atomic_load(&w->calls))
		usleep(1000);
	usleep(20 * 1000);
	w->cancelled_at = kprim_now_ns();
	kprim_ctx_cancel(w->ctx);
	return NULL;
}

TEST_F(pipe, cancel_reaches_a_waiting_sink)
{
	struct sink_wait w = { 0 };
	pthread_t t;

	self->p.sink = waiting_sink_fn;
	self->p.sink_arg = &w;
	ASSERT_EQ(0, kprim_ctx_new(NULL, &w.ctx));
	ASSERT_EQ(0, pthread_create(&t, NULL, cancel_when_sink_waits, &w));
	EXPECT_EQ(-ECANCELED, kprim_pipeline_run(&self->p, w.ctx, &self->res));
	pthread_join(t, NULL);
	EXPECT_GT(1000 * 1000000ull, kprim_now_ns() - w.cancelled_at);
	EXPECT_EQ(1, atomic_load(&w.calls));
	EXPECT_EQ(0, self->res.nerrors);
	kprim_ctx_free(w.ctx);
}

/* An early stop by the sink ends a source that waits on the ctx. */
static int one_then_block_fn(void *arg, struct kprim_ctx *ctx, void *out)
{
	long *n = arg;

	if (*n == 0) {
		*(long *)out = ++*n;
		return 0;
	}
	return kprim_chan_select(NULL, 0, ctx, KPRIM_TIMEOUT_INFINITE);
}

TEST_F(pipe, early_stop_reaches_a_blocked_source)
{
	long n = 0;

	self->p.source = one_then_block_fn;
	self->p.source_arg = &n;
	self->c->stop_after = 1;
	EXPECT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(1, self->res.stopped);
	EXPECT_EQ(1, self->res.delivered);
	EXPECT_EQ(0, self->res.nerrors);
}

/* ---- gates: a token channel acting as a semaphore of 2 ---- */

struct sem {
	struct kprim_chan *tokens;
	atomic_int in, max_in, acquired;
	int fail;
};

static int sem_acquire(void *arg, struct kprim_ctx *ctx)
{
	struct sem *s = arg;
	char t;
	int rc, now;

	if (s->fail)
		return -EDQUOT;
	rc = kprim_chan_recv(s->tokens, &t, ctx, KPRIM_TIMEOUT_INFINITE);
	if (rc)
		return rc;
	atomic_fetch_add(&s->acquired, 1);
	now = atomic_fetch_add(&s->in, 1) + 1;
	for (int m = atomic_load(&s->max_in); now > m &&
	     !atomic_compare_exchange_weak(&s->max_in, &m, now);)
		;
	return 0;
}

static void sem_release(void *arg)
{
	struct sem *s = arg;
	char t = 0;

	atomic_fetch_sub(&s->in, 1);
	kprim_chan_try_send(s->tokens, &t);
}

TEST_F(pipe, gate_bounds_concurrency)
{
	struct sem s = { 0 };
	struct kprim_stage_gate g = { sem_acquire, sem_release, &s };
	char t = 0;

	ASSERT_EQ(0, kprim_chan_new(1, 2, &s.tokens));
	kprim_chan_try_send(s.tokens, &t);
	kprim_chan_try_send(s.tokens, &t);
	self->st[0].workers = 6;
	self->st[0].gate = &g;
	self->g.limit = 200;
	ASSERT_EQ(0, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_EQ(200, self->c->n);
	EXPECT_EQ(200, atomic_load(&s.acquired));
	EXPECT_GE(2, atomic_load(&s.max_in));
	EXPECT_EQ(0, atomic_load(&s.in));
	kprim_chan_free(s.tokens);
}

TEST_F(pipe, gate_error_fails_pipeline)
{
	struct sem s = { .fail = 1 };
	struct kprim_stage_gate g = { sem_acquire, sem_release, &s };

	self->st[0].gate = &g;
	EXPECT_EQ(-EDQUOT, kprim_pipeline_run(&self->p, NULL, &self->res));
	EXPECT_LE(1, self->res.nerrors);
	EXPECT_EQ(0, self->c->n);
}

TEST_HARNESS_MAIN
