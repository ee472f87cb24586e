// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kprim_ctx: a tree of cancellation scopes. Each node has one short mutex,
 * never held while taking another node's. A node lives while the user, any
 * child, or a cancellation walking the tree holds a reference.
 *
 * Ending a node with children walks its subtree with an explicit stack (a
 * chain may be far deeper than a thread's stack could recurse), under the
 * process-wide end_lock: the walks never interleave, so a cancel that finds
 * its node already ended knows the walk that ended it is over once it can
 * take end_lock, and returns with the whole subtree ended, as a cancel
 * that did the walk itself does. Ending a node without children, the
 * common case of a deadline observed by its only user, takes no end_lock:
 * a node that has ended gets no new children (they are born ended).
 *
 * fork(): the child's contexts are copies, independent of the parent's
 * from then on. The only thing a copy shares with its original is the
 * cancel eventfd (fork duplicates the descriptor, not the eventfd), and
 * its waiter list names threads of the parent. So the first use of a
 * node in a child "adopts" it (ctx_own()): the inherited descriptor
 * number is forgotten, not closed (the child may have reused it; the
 * child gets a fresh eventfd on demand), the waiters are
 * forgotten, the lock is re-initialised (a parent thread may have held
 * it). A fork generation counter, bumped in every child by an atfork
 * handler, tells an inherited node from one of this process at the cost
 * of one load.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kprim/ctx.h"
#include "internal.h"

struct kprim_ctx {
	pthread_mutex_t lock;
	struct kprim_ctx *parent;	/* holds a reference while linked */
	struct kprim_ctx *children;	/* list through sib_prev/sib_next */
	struct kprim_ctx *sib_prev, *sib_next;
	struct kprim_ctx_waiter waiters;	/* circular list sentinel */
	uint64_t deadline;		/* effective, KPRIM_NO_DEADLINE if none */
	atomic_int err;			/* 0 until ended; never changes after */
	int efd;			/* -1 until kprim_ctx_cancel_fd() */
	atomic_int refs;
	struct kprim_ctx *end_next;	/* stack of the walk; end_lock */
	atomic_uint fork_gen;		/* fork_gen of the process it is in */
};

/*
 * Lock order: end_lock, then adopt_lock, then one node's lock. Both
 * global locks are held across fork() (atfork), so no walk or adoption
 * is half done in a child.
 */
/* Serialises the walks of ctx_end(). */
static pthread_mutex_t end_lock = PTHREAD_MUTEX_INITIALIZER;
/* Serialises adoptions of inherited nodes by a child's threads. */
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;
/* Forks between the first process and this one (atfork child: +1). */
static atomic_uint fork_gen;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&end_lock);
	pthread_mutex_lock(&adopt_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&adopt_lock);
	pthread_mutex_unlock(&end_lock);
}

static void atfork_child(void)
{
	/* Taken by this very thread before the fork. */
	pthread_mutex_unlock(&adopt_lock);
	pthread_mutex_unlock(&end_lock);
	atomic_fetch_add_explicit(&fork_gen, 1, memory_order_release);
}

/* Before main(): a fork before the first context must count too. */
__attribute__((constructor)) static void ctx_atfork_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

unsigned int kprim__fork_gen(void)
{
	return atomic_load_explicit(&fork_gen, memory_order_acquire);
}

/* Slow path of ctx_own(): take over a node inherited through fork(). */
static void ctx_adopt(struct kprim_ctx *ctx, unsigned int gen)
{
	struct kprim_ctx_waiter *w, *next;

	pthread_mutex_lock(&adopt_lock);
	if (atomic_load_explicit(&ctx->fork_gen, memory_order_relaxed) != gen) {
		pthread_mutex_init(&ctx->lock, NULL);
		/* Parent threads: not here to wake; unwatch becomes a no-op. */
		for (w = ctx->waiters.next; w != &ctx->waiters; w = next) {
			next = w->next;
			w->next = w->prev = NULL;
		}
		ctx->waiters.next = ctx->waiters.prev = &ctx->waiters;
		/*
		 * The parent's eventfd: never signal it from here, and do
		 * not close the number either. The child may have closed
		 * it already and reused it for a file of its own; it is
		 * close-on-exec, so at worst it stays open until exec or
		 * exit. From here on the library does not touch it.
		 */
		ctx->efd = -1;
		atomic_store_explicit(&ctx->fork_gen, gen, memory_order_release);
	}
	pthread_mutex_unlock(&adopt_lock);
}

/* Make sure @ctx belongs to this process before touching its lock or fd. */
static inline void ctx_own(struct kprim_ctx *ctx)
{
	unsigned int gen = atomic_load_explicit(&fork_gen, memory_order_acquire);

	if (atomic_load_explicit(&ctx->fork_gen, memory_order_acquire) != gen)
		ctx_adopt(ctx, gen);
}

static void ctx_put(struct kprim_ctx *ctx);

uint64_t kprim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void signal_efd(int efd)
{
	uint64_t one = 1;

	/* Only fails with EAGAIN on counter overflow: readable anyway. */
	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0)
		return;
}

/* Mark @ctx ended and wake its waiters; @ctx->lock held, err was 0. */
static void ctx_end_one(struct kprim_ctx *ctx, int reason)
{
	struct kprim_ctx_waiter *w;

	atomic_store(&ctx->err, reason);
	signal_efd(ctx->efd);
	while ((w = ctx->waiters.next) != &ctx->waiters) {
		/* Detach first so wake() runs once and unwatch is a no-op. */
		w->prev->next = w->next;
		w->next->prev = w->prev;
		w->next = w->prev = NULL;
		w->wake(w);
	}
}

/*
 * End @ctx and its subtree with @reason; the first reason sticks. On
 * return every node of the subtree has ended (with this or an earlier
 * reason).
 */
static void ctx_end(struct kprim_ctx *ctx, int reason)
{
	struct kprim_ctx *stack = NULL, *c;
	bool walked;

	ctx_own(ctx);
	pthread_mutex_lock(&ctx->lock);
	if (atomic_load(&ctx->err)) {
		walked = ctx->children;
		pthread_mutex_unlock(&ctx->lock);
		/* Ended by a walk that may still be going: wait it out. */
		if (walked) {
			pthread_mutex_lock(&end_lock);
			pthread_mutex_unlock(&end_lock);
		}
		return;
	}
	if (!ctx->children) {
		ctx_end_one(ctx, reason);
		pthread_mutex_unlock(&ctx->lock);
		return;
	}
	pthread_mutex_unlock(&ctx->lock);

	pthread_mutex_lock(&end_lock);
	atomic_fetch_add(&ctx->refs, 1);
	ctx->end_next = NULL;
	stack = ctx;
	while ((c = stack)) {
		struct kprim_ctx *child;

		stack = c->end_next;
		ctx_own(c);
		pthread_mutex_lock(&c->lock);
		/* Already ended: by an earlier walk (over, we hold end_lock)
		 * or without children then, so none since. */
		if (!atomic_load(&c->err)) {
			ctx_end_one(c, reason);
			/* The walk's reference keeps a child alive if its
			 * user frees it meanwhile. */
			for (child = c->children; child; child = child->sib_next) {
				atomic_fetch_add(&child->refs, 1);
				child->end_next = stack;
				stack = child;
			}
		}
		pthread_mutex_unlock(&c->lock);
		ctx_put(c);
	}
	pthread_mutex_unlock(&end_lock);
}

/* Deadlines are observed lazily: whoever notices expiry ends the ctx. */
static int ctx_check(struct kprim_ctx *ctx)
{
	int err = atomic_load(&ctx->err);

	if (err)
		return err;
	if (ctx->deadline != KPRIM_NO_DEADLINE &&
	    kprim_now_ns() >= ctx->deadline)
		ctx_end(ctx, -ETIMEDOUT);
	return atomic_load(&ctx->err);
}

static void ctx_put(struct kprim_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	ctx_own(ctx);
	if (ctx->efd >= 0)
		close(ctx->efd);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
}

int kprim_ctx_with_deadline(struct kprim_ctx *parent, uint64_t deadline_ns,
			    struct kprim_ctx **out)
{
	struct kprim_ctx *ctx;
	int perr;

	if (!out)
		return -EINVAL;
	*out = NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->waiters.next = ctx->waiters.prev = &ctx->waiters;
	ctx->efd = -1;
	atomic_init(&ctx->refs, 1);
	atomic_init(&ctx->fork_gen, atomic_load(&fork_gen));
	ctx->deadline = deadline_ns;

	if (parent) {
		ctx_own(parent);
		if (parent->deadline < ctx->deadline)
			ctx->deadline = parent->deadline;
		pthread_mutex_lock(&parent->lock);
		perr = atomic_load(&parent->err);
		if (perr) {
			/* Born ended: not linked, no parent reference. */
			atomic_init(&ctx->err, perr);
		} else {
			atomic_fetch_add(&parent->refs, 1);
			ctx->parent = parent;
			ctx->sib_next = parent->children;
			if (parent->children)
				parent->children->sib_prev = ctx;
			parent->children = ctx;
		}
		pthread_mutex_unlock(&parent->lock);
	}
	*out = ctx;
	return 0;
}

int kprim_ctx_new(struct kprim_ctx *parent, struct kprim_ctx **out)
{
	return kprim_ctx_with_deadline(parent, KPRIM_NO_DEADLINE, out);
}

int kprim_ctx_with_timeout(struct kprim_ctx *parent, uint64_t timeout_ns,
			   struct kprim_ctx **out)
{
	uint64_t now = kprim_now_ns(), deadline = KPRIM_NO_DEADLINE;

	if (timeout_ns != KPRIM_TIMEOUT_INFINITE &&
	    timeout_ns < KPRIM_NO_DEADLINE - now)
		deadline = now + timeout_ns;
	return kprim_ctx_with_deadline(parent, deadline, out);
}

int kprim_ctx_cancel(struct kprim_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	ctx_end(ctx, -ECANCELED);
	return 0;
}

void kprim_ctx_free(struct kprim_ctx *ctx)
{
	struct kprim_ctx *parent;

	if (!ctx)
		return;
	ctx_end(ctx, -ECANCELED);
	parent = ctx->parent;
	if (parent) {
		ctx_own(parent);
		pthread_mutex_lock(&parent->lock);
		if (ctx->sib_prev)
			ctx->sib_prev->sib_next = ctx->sib_next;
		else
			parent->children = ctx->sib_next;
		if (ctx->sib_next)
			ctx->sib_next->sib_prev = ctx->sib_prev;
		pthread_mutex_unlock(&parent->lock);
		ctx->parent = NULL;
		ctx_put(parent);
	}
	ctx_put(ctx);
}

int kprim_ctx_err(struct kprim_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	return ctx_check(ctx);
}

int kprim_ctx_done(struct kprim_ctx *ctx)
{
	if (!ctx)
		return -EINVAL;
	return ctx_check(ctx) != 0;
}

int kprim_ctx_cancel_fd(struct kprim_ctx *ctx)
{
	int fd;

	if (!ctx)
		return -EINVAL;
	ctx_check(ctx);
	ctx_own(ctx);
	pthread_mutex_lock(&ctx->lock);
	if (ctx->efd < 0) {
		ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctx->efd < 0) {
			fd = -errno;
			pthread_mutex_unlock(&ctx->lock);
			return fd;
		}
		if (atomic_load(&ctx->err))
			signal_efd(ctx->efd);
	}
	fd = ctx->efd;
	pthread_mutex_unlock(&ctx->lock);
	return fd;
}

uint64_t kprim_ctx_deadline_ns(struct kprim_ctx *ctx)
{
	return ctx ? ctx->deadline : KPRIM_NO_DEADLINE;
}

uint64_t kprim_ctx_remaining_ns(struct kprim_ctx *ctx)
{
	uint64_t now;

	if (!ctx || ctx->deadline == KPRIM_NO_DEADLINE)
		return KPRIM_NO_DEADLINE;
	now = kprim_now_ns();
	if (now >= ctx->deadline) {
		ctx_end(ctx, -ETIMEDOUT);
		return 0;
	}
	return ctx->deadline - now;
}

int kprim_ctx_watch(struct kprim_ctx *ctx, struct kprim_ctx_waiter *w)
{
	int err;

	if (!ctx || !w || !w->wake)
		return -EINVAL;
	err = ctx_check(ctx);
	if (err)
		return err;
	ctx_own(ctx);
	pthread_mutex_lock(&ctx->lock);
	err = atomic_load(&ctx->err);
	if (!err) {
		w->next = &ctx->waiters;
		w->prev = ctx->waiters.prev;
		ctx->waiters.prev->next = w;
		ctx->waiters.prev = w;
	}
	pthread_mutex_unlock(&ctx->lock);
	return err;
}

void kprim_ctx_unwatch(struct kprim_ctx *ctx, struct kprim_ctx_waiter *w)
{
	if (!ctx || !w)
		return;
	ctx_own(ctx);
	pthread_mutex_lock(&ctx->lock);
	if (w->next) {
		w->prev->next = w->next;
		w->next->prev = w->prev;
		w->next = w->prev = NULL;
	}
	pthread_mutex_unlock(&ctx->lock);
}
