/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim_ctx - cancellation and deadline for blocking calls, like Go's
 * context.Context.
 *
 * A context is cancelled explicitly (kprim_ctx_cancel), when its parent is
 * cancelled, or when its deadline (absolute CLOCK_MONOTONIC) passes. Every
 * blocking kprim call takes an optional context (NULL = none) and returns
 * kprim_ctx_err() when the context ends the wait.
 *
 * Errno conventions: functions return 0 or a negative errno, never -1 with
 * errno set. A NULL handle where one is required gives -EINVAL.
 *
 * fork(): the child gets a copy of every context, in the state it had at
 * the fork (live or ended with its reason, the deadline, parents and
 * children). From then on the copies are independent: cancelling or
 * freeing a context in one process, or a deadline observed there, ends
 * only that process's copy. Each process has its own cancel fd: in the
 * child, kprim_ctx_cancel_fd() returns a new eventfd; do not use the
 * number obtained before the fork. The library never closes, signals or
 * otherwise touches the inherited descriptor in the child (the child may
 * have closed it and reused its number for a file of its own): it stays
 * open in the child, one descriptor per inherited context that had a
 * cancel fd, until the child closes it itself (closefrom() is fine),
 * execs (it is close-on-exec) or exits.
 * Threads of the parent waiting on a context do not exist in the child and
 * are not woken there. As for anything after fork() in a multi-threaded
 * process, a context that another thread was inside a kprim_ctx_* call on
 * at the moment of the fork may be inconsistent in the child.
 */
#ifndef KPRIM_CTX_H
#define KPRIM_CTX_H

#include <linux/types.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Token for token the definition of the uapi header <linux/kprim.h>, so a
 * program may include both, in either order, without a redefinition
 * warning (tools/check-headers.sh). A 64-bit all-ones value either way.
 */
#define KPRIM_TIMEOUT_INFINITE	(~(__u64)0)
/* kprim_ctx_remaining_ns() value meaning "no deadline". */
#define KPRIM_NO_DEADLINE	(~(uint64_t)0)

struct kprim_ctx;

/**
 * kprim_ctx_new() - create a context without its own deadline.
 * @parent:	parent context or NULL; the child is cancelled with it and
 *		inherits its deadline
 * @out:	the new context
 *
 * Return: 0, -EINVAL (@out NULL), -ENOMEM.
 */
int kprim_ctx_new(struct kprim_ctx *parent, struct kprim_ctx **out);

/**
 * kprim_ctx_with_deadline() - create a context with an absolute deadline.
 * @deadline_ns: CLOCK_MONOTONIC time in ns; the effective deadline is the
 *		earlier of this and the parent's
 *
 * Return: 0, -EINVAL, -ENOMEM.
 */
int kprim_ctx_with_deadline(struct kprim_ctx *parent, uint64_t deadline_ns,
			    struct kprim_ctx **out);

/**
 * kprim_ctx_with_timeout() - as kprim_ctx_with_deadline(), now + @timeout_ns.
 * KPRIM_TIMEOUT_INFINITE (or an overflowing sum) means no own deadline.
 */
int kprim_ctx_with_timeout(struct kprim_ctx *parent, uint64_t timeout_ns,
			   struct kprim_ctx **out);

/**
 * kprim_ctx_cancel() - cancel @ctx and all its descendants.
 *
 * Idempotent; the first reason (cancel or deadline) sticks. Wakes every
 * userspace waiter at once and makes the cancel fd readable. On return
 * @ctx and every descendant have ended, also when another thread was
 * cancelling them at the same time. Any depth of descendants: the tree
 * is walked without recursion.
 * Return: 0, -EINVAL (@ctx NULL).
 */
int kprim_ctx_cancel(struct kprim_ctx *ctx);

/**
 * kprim_ctx_free() - cancel @ctx and drop the caller's reference.
 *
 * Children stay valid (cancelled) until they are freed themselves. @ctx
 * must not be used afterwards, nor be in use by a blocking call. NULL: no-op.
 */
void kprim_ctx_free(struct kprim_ctx *ctx);

/**
 * kprim_ctx_err() - why the context ended.
 * Return: 0 (still live), -ECANCELED, -ETIMEDOUT (deadline passed),
 * -EINVAL (@ctx NULL).
 */
int kprim_ctx_err(struct kprim_ctx *ctx);

/** kprim_ctx_done() - 1 if ended, 0 if live, -EINVAL if @ctx is NULL. */
int kprim_ctx_done(struct kprim_ctx *ctx);

/**
 * kprim_ctx_cancel_fd() - the context's eventfd, created on first use.
 *
 * The fd becomes readable when the context is cancelled (directly or via
 * its parent), or when its deadline is observed to have passed by any
 * kprim_ctx_* call. A blocked kernel wait does not observe the deadline
 * through the fd: pass kprim_ctx_remaining_ns() as its timeout as well.
 * The fd is owned by the context (closed by its last free); do not read it.
 * Return: the fd (>= 0), -EINVAL, or the eventfd() errno (-EMFILE...).
 */
int kprim_ctx_cancel_fd(struct kprim_ctx *ctx);

/**
 * kprim_ctx_remaining_ns() - ns until the deadline, 0 if it has passed,
 * KPRIM_NO_DEADLINE if there is none (also for a NULL @ctx).
 */
uint64_t kprim_ctx_remaining_ns(struct kprim_ctx *ctx);

/** kprim_ctx_deadline_ns() - absolute deadline or KPRIM_NO_DEADLINE. */
uint64_t kprim_ctx_deadline_ns(struct kprim_ctx *ctx);

/** kprim_now_ns() - CLOCK_MONOTONIC now, in ns (the clock of deadlines). */
uint64_t kprim_now_ns(void);

/*
 * For implementers of blocking calls: a waiter registered on a context has
 * its wake() called once when the context is cancelled (also via a parent
 * or an observed deadline). wake() runs with the context's lock held, and
 * during the cancellation of a subtree with a process-wide lock that
 * serialises such cancellations: it must only flag and signal (taking at
 * most a lock of its own that is never held across a kprim_ctx_* call),
 * not call back into kprim_ctx_*.
 */
struct kprim_ctx_waiter {
	struct kprim_ctx_waiter *prev, *next;
	void (*wake)(struct kprim_ctx_waiter *w);
};

/**
 * kprim_ctx_watch() - register @w on @ctx.
 * Return: 0 (registered), or kprim_ctx_err() when the context has already
 * ended (then @w is not registered and wake() is not called).
 */
int kprim_ctx_watch(struct kprim_ctx *ctx, struct kprim_ctx_waiter *w);

/** kprim_ctx_unwatch() - unregister @w (no-op if no longer registered). */
void kprim_ctx_unwatch(struct kprim_ctx *ctx, struct kprim_ctx_waiter *w);

#ifdef __cplusplus
}
#endif

#endif /* KPRIM_CTX_H */
