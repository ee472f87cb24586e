// SPDX-License-Identifier: GPL-2.0
/* kprim_ctx: cancellation, deadlines, the cancel eventfd, bad input. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim/ctx.h"

#define MS	1000000ull

static int fd_readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

TEST(new_null_out)
{
	ASSERT_EQ(-EINVAL, kprim_ctx_new(NULL, NULL));
	ASSERT_EQ(-EINVAL, kprim_ctx_with_timeout(NULL, MS, NULL));
	ASSERT_EQ(-EINVAL, kprim_ctx_with_deadline(NULL, 0, NULL));
}

TEST(null_handles)
{
	ASSERT_EQ(-EINVAL, kprim_ctx_cancel(NULL));
	ASSERT_EQ(-EINVAL, kprim_ctx_err(NULL));
	ASSERT_EQ(-EINVAL, kprim_ctx_done(NULL));
	ASSERT_EQ(-EINVAL, kprim_ctx_cancel_fd(NULL));
	ASSERT_EQ(KPRIM_NO_DEADLINE, kprim_ctx_remaining_ns(NULL));
	kprim_ctx_free(NULL);	/* must not crash */
}

TEST(watch_bad_args)
{
	struct kprim_ctx *c;
	struct kprim_ctx_waiter w = { 0 };

	ASSERT_EQ(0, kprim_ctx_new(NULL, &c));
	ASSERT_EQ(-EINVAL, kprim_ctx_watch(NULL, &w));
	ASSERT_EQ(-EINVAL, kprim_ctx_watch(c, NULL));
	ASSERT_EQ(-EINVAL, kprim_ctx_watch(c, &w));	/* no wake() */
	kprim_ctx_free(c);
}

TEST(cancel)
{
	struct kprim_ctx *c;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &c));
	EXPECT_EQ(0, kprim_ctx_err(c));
	EXPECT_EQ(0, kprim_ctx_done(c));
	EXPECT_EQ(KPRIM_NO_DEADLINE, kprim_ctx_remaining_ns(c));
	ASSERT_EQ(0, kprim_ctx_cancel(c));
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c));
	EXPECT_EQ(1, kprim_ctx_done(c));
	ASSERT_EQ(0, kprim_ctx_cancel(c));	/* idempotent */
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c));
	kprim_ctx_free(c);
}

TEST(children_follow_parent)
{
	struct kprim_ctx *p, *a, *b, *gc;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &p));
	ASSERT_EQ(0, kprim_ctx_new(p, &a));
	ASSERT_EQ(0, kprim_ctx_new(p, &b));
	ASSERT_EQ(0, kprim_ctx_new(a, &gc));
	ASSERT_EQ(0, kprim_ctx_cancel(b));
	EXPECT_EQ(0, kprim_ctx_err(p));		/* not upwards */
	EXPECT_EQ(0, kprim_ctx_err(a));		/* not sideways */
	ASSERT_EQ(0, kprim_ctx_cancel(p));
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(a));
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(gc));
	kprim_ctx_free(gc);
	kprim_ctx_free(a);
	kprim_ctx_free(b);
	kprim_ctx_free(p);
}

TEST(child_of_cancelled_parent_born_cancelled)
{
	struct kprim_ctx *p, *c;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &p));
	kprim_ctx_cancel(p);
	ASSERT_EQ(0, kprim_ctx_new(p, &c));
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c));
	kprim_ctx_free(c);
	kprim_ctx_free(p);
}

TEST(free_parent_first_cancels_child)
{
	struct kprim_ctx *p, *c;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &p));
	ASSERT_EQ(0, kprim_ctx_new(p, &c));
	kprim_ctx_free(p);
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c));
	kprim_ctx_free(c);
}

TEST(timeout_expires)
{
	struct kprim_ctx *c;
	uint64_t rem;

	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, 50 * MS, &c));
	rem = kprim_ctx_remaining_ns(c);
	EXPECT_LE(rem, 50 * MS);
	EXPECT_LT(0ull, rem);
	EXPECT_EQ(0, kprim_ctx_err(c));
	usleep(60 * 1000);
	EXPECT_EQ(0ull, kprim_ctx_remaining_ns(c));
	EXPECT_EQ(-ETIMEDOUT, kprim_ctx_err(c));
	kprim_ctx_cancel(c);			/* first reason sticks */
	EXPECT_EQ(-ETIMEDOUT, kprim_ctx_err(c));
	kprim_ctx_free(c);
}

TEST(child_inherits_earlier_deadline)
{
	struct kprim_ctx *p, *c, *late;
	uint64_t d = kprim_now_ns() + 1000 * MS;

	ASSERT_EQ(0, kprim_ctx_with_deadline(NULL, d, &p));
	ASSERT_EQ(0, kprim_ctx_new(p, &c));
	ASSERT_EQ(0, kprim_ctx_with_deadline(p, d + 5000 * MS, &late));
	EXPECT_EQ(d, kprim_ctx_deadline_ns(c));
	EXPECT_EQ(d, kprim_ctx_deadline_ns(late));
	kprim_ctx_free(late);
	kprim_ctx_free(c);
	kprim_ctx_free(p);
}

TEST(infinite_timeout_has_no_deadline)
{
	struct kprim_ctx *c;

	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, KPRIM_TIMEOUT_INFINITE, &c));
	EXPECT_EQ(KPRIM_NO_DEADLINE, kprim_ctx_deadline_ns(c));
	kprim_ctx_free(c);
}

TEST(cancel_fd_on_cancel)
{
	struct kprim_ctx *c;
	int fd;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &c));
	fd = kprim_ctx_cancel_fd(c);
	ASSERT_LE(0, fd);
	EXPECT_EQ(fd, kprim_ctx_cancel_fd(c));	/* one fd per ctx */
	EXPECT_EQ(0, fd_readable(fd));
	kprim_ctx_cancel(c);
	EXPECT_EQ(1, fd_readable(fd));
	kprim_ctx_free(c);
}

TEST(cancel_fd_on_parent_cancel)
{
	struct kprim_ctx *p, *c;
	int fd;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &p));
	ASSERT_EQ(0, kprim_ctx_new(p, &c));
	fd = kprim_ctx_cancel_fd(c);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fd_readable(fd));
	kprim_ctx_cancel(p);
	EXPECT_EQ(1, fd_readable(fd));
	kprim_ctx_free(c);
	kprim_ctx_free(p);
}

TEST(cancel_fd_after_cancel_is_readable)
{
	struct kprim_ctx *c;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &c));
	kprim_ctx_cancel(c);
	EXPECT_EQ(1, fd_readable(kprim_ctx_cancel_fd(c)));
	kprim_ctx_free(c);
}

TEST(cancel_fd_on_deadline)
{
	struct kprim_ctx *c;
	int fd;

	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, 20 * MS, &c));
	fd = kprim_ctx_cancel_fd(c);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fd_readable(fd));
	usleep(30 * 1000);
	EXPECT_EQ(-ETIMEDOUT, kprim_ctx_err(c));	/* observes expiry */
	EXPECT_EQ(1, fd_readable(fd));
	kprim_ctx_free(c);
}

static int woken;
static void wake_cb(struct kprim_ctx_waiter *w)
{
	(void)w;
	woken++;
}

TEST(watch_wakes_once_and_unwatch)
{
	struct kprim_ctx *c;
	struct kprim_ctx_waiter w1 = { .wake = wake_cb }, w2 = { .wake = wake_cb };

	woken = 0;
	ASSERT_EQ(0, kprim_ctx_new(NULL, &c));
	ASSERT_EQ(0, kprim_ctx_watch(c, &w1));
	ASSERT_EQ(0, kprim_ctx_watch(c, &w2));
	kprim_ctx_unwatch(c, &w2);
	kprim_ctx_cancel(c);
	kprim_ctx_cancel(c);
	EXPECT_EQ(1, woken);
	kprim_ctx_unwatch(c, &w1);		/* already detached: no-op */
	EXPECT_EQ(-ECANCELED, kprim_ctx_watch(c, &w2));
	kprim_ctx_free(c);
}

static void *cancel_later(void *arg)
{
	usleep(50 * 1000);
	kprim_ctx_cancel(arg);
	return NULL;
}

TEST(cancel_from_other_thread_wakes_poll)
{
	struct kprim_ctx *c;
	struct pollfd p;
	pthread_t t;
	uint64_t t0;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &c));
	p.fd = kprim_ctx_cancel_fd(c);
	p.events = POLLIN;
	ASSERT_LE(0, p.fd);
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&t, NULL, cancel_later, c));
	/* Upper bound 5 s: generous for a slow emulated VM. */
	EXPECT_EQ(1, poll(&p, 1, 5000));
	EXPECT_LE(50 * MS, kprim_now_ns() - t0);
	pthread_join(t, NULL);
	kprim_ctx_free(c);
}

/*
 * A chain deeper than any stack could recurse through: cancelling the
 * root, a deadline observed at the root, and freeing the root first all
 * end every link (and the leaf's cancel fd).
 */
#define DEEP	350000

static struct kprim_ctx **deep_chain(struct kprim_ctx *root)
{
	struct kprim_ctx **c = calloc(DEEP, sizeof(*c));

	if (!c)
		return NULL;
	c[0] = root;
	for (int i = 1; i < DEEP; i++)
		if (kprim_ctx_new(c[i - 1], &c[i])) {
			free(c);
			return NULL;
		}
	return c;
}

static void free_chain(struct kprim_ctx **c, int from)
{
	for (int i = DEEP - 1; i >= from; i--)
		kprim_ctx_free(c[i]);
	free(c);
}

TEST(cancel_deep_chain)
{
	struct kprim_ctx *root, **c;
	int fd;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &root));
	c = deep_chain(root);
	ASSERT_NE(NULL, c);
	fd = kprim_ctx_cancel_fd(c[DEEP - 1]);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kprim_ctx_cancel(root));
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c[DEEP / 2]));
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c[DEEP - 1]));
	EXPECT_TRUE(fd_readable(fd));
	free_chain(c, 0);
}

TEST(deadline_deep_chain)
{
	struct kprim_ctx *root, **c;

	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, 1, &root));
	c = deep_chain(root);
	ASSERT_NE(NULL, c);
	/* Whichever link observes the deadline: here the root, for all. */
	ASSERT_EQ(-ETIMEDOUT, kprim_ctx_err(root));
	EXPECT_EQ(-ETIMEDOUT, kprim_ctx_err(c[DEEP - 1]));
	free_chain(c, 0);
}

TEST(free_root_of_deep_chain)
{
	struct kprim_ctx *root, **c;

	ASSERT_EQ(0, kprim_ctx_new(NULL, &root));
	c = deep_chain(root);
	ASSERT_NE(NULL, c);
	kprim_ctx_free(root);
	EXPECT_EQ(-ECANCELED, kprim_ctx_err(c[DEEP - 1]));
	free_chain(c, 1);
}

/*
 * Two threads cancel the same tree at once (one the root, one a middle
 * link): when either call returns, the whole subtree below its context
 * has ended, not just the context itself.
 */
struct both {
	struct kprim_ctx *start, *leaf;
	pthread_barrier_t *go;
	int leaf_err;
};

static void *cancel_and_look(void *arg)
{
	struct both *b = arg;

	pthread_barrier_wait(b->go);
	kprim_ctx_cancel(b->start);
	b->leaf_err = kprim_ctx_err(b->leaf);
	return NULL;
}

TEST(concurrent_cancels_both_see_subtree_ended)
{
	enum { LEN = 2000, ROUNDS = 200 };
	static struct kprim_ctx *c[LEN];
	pthread_barrier_t go;

	pthread_barrier_init(&go, NULL, 2);
	for (int r = 0; r < ROUNDS; r++) {
		struct both a, b;
		pthread_t ta, tb;

		ASSERT_EQ(0, kprim_ctx_new(NULL, &c[0]));
		for (int i = 1; i < LEN; i++)
			ASSERT_EQ(0, kprim_ctx_new(c[i - 1], &c[i]));
		a = (struct both){ c[0], c[LEN - 1], &go, 0 };
		b = (struct both){ c[LEN / 4], c[LEN - 1], &go, 0 };
		ASSERT_EQ(0, pthread_create(&ta, NULL, cancel_and_look, &a));
		ASSERT_EQ(0, pthread_create(&tb, NULL, cancel_and_look, &b));
		pthread_join(ta, NULL);
		pthread_join(tb, NULL);
		ASSERT_EQ(-ECANCELED, a.leaf_err) TH_LOG("round %d", r);
		ASSERT_EQ(-ECANCELED, b.leaf_err) TH_LOG("round %d", r);
		for (int i = LEN - 1; i >= 0; i--)
			kprim_ctx_free(c[i]);
	}
	pthread_barrier_destroy(&go);
}

TEST_HARNESS_MAIN
