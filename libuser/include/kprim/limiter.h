/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim limiter: a host-wide token bucket living in the kernel. Every
 * process that opens the same name shares it; the kernel keeps exact
 * integer time, wakes waiters in FIFO order and never needs a daemon.
 */
#ifndef KPRIM_LIMITER_H
#define KPRIM_LIMITER_H

#include <stdint.h>
#include "kprim/ctx.h"
#include "kprim/session.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kprim_limiter;

/**
 * struct kprim_limiter_config - parameters of a new limiter.
 * @rate:	tokens added every @period_ns (>= 1)
 * @period_ns:	refill period (>= 1): rate 1, period 3600e9 = 1/hour
 * @burst:	bucket size (>= 1)
 * @initial:	tokens at creation when @has_initial, else a full bucket
 * @has_initial: use @initial
 */
struct kprim_limiter_config {
	uint64_t rate;
	uint64_t period_ns;
	uint64_t burst;
	uint64_t initial;
	int has_initial;
};

/** struct kprim_limiter_stats - a limiter's state (kprim_limiter_stats()). */
struct kprim_limiter_stats {
	uint64_t rate, period_ns, burst, initial;
	uint64_t tokens;	/* whole tokens available now */
	uint64_t waiters;	/* blocked takers */
	uint64_t admitted;	/* tokens handed out since creation */
	uint64_t throttled;	/* takes that failed or had to wait */
};

/**
 * kprim_limiter_open() - create or open a limiter.
 * @k:		session
 * @name:	name shared host-wide, or NULL for an anonymous limiter
 * @flags:	KPRIM_CREATE, KPRIM_EXCL, KPRIM_TRANSIENT, KPRIM_OWNED,
 *		KPRIM_ANY_OWNER, KPRIM_INHERIT, KPRIM_CLOEXEC (see session.h:
 *		a named CREATE refuses another user's limiter unless
 *		KPRIM_ANY_OWNER; the fd is close-on-exec unless KPRIM_INHERIT)
 * @mode:	permission bits for a new limiter (e.g. 0600)
 * @cfg:	parameters for a new limiter (ignored when it exists)
 * @out:	the handle
 *
 * Return: 0; -EINVAL (bad flags or parameters, KPRIM_OWNED with
 * KPRIM_ANY_OWNER, KPRIM_INHERIT with KPRIM_CLOEXEC), -EOVERFLOW (burst *
 * period_ns beyond 64 bits), -ENOENT, -EEXIST, -EPERM (the limiter is
 * another user's), -EACCES, -EDQUOT, -ENOSPC, -ENOMEM, -EMFILE, -ENFILE,
 * -EOPNOTSUPP (ownership check asked of a module without it).
 */
int kprim_limiter_open(struct kprim *k, const char *name, unsigned int flags,
		       unsigned int mode, const struct kprim_limiter_config *cfg,
		       struct kprim_limiter **out);

/** kprim_limiter_close() - close the handle (the limiter may live on). */
void kprim_limiter_close(struct kprim_limiter *l);

/**
 * kprim_limiter_take() - take @n tokens, waiting for them if need be.
 * @l:		limiter
 * @n:		tokens (1..burst)
 * @ctx:	cancellation and deadline, or NULL
 * @timeout_ns:	0 = do not wait; KPRIM_TIMEOUT_INFINITE = no own timeout
 * @retry_after_ns: out (may be NULL): on -EAGAIN/-ETIMEDOUT, how long until
 *		@n tokens would be there for a new request
 *
 * Waiters are served in FIFO order: a later taker never overtakes.
 * Return: 0; -EAGAIN (timeout 0, not enough tokens); -ETIMEDOUT;
 * -ECANCELED (@ctx cancelled; -ETIMEDOUT for its deadline); -EINTR
 * (signal); -EINVAL (@n is 0 or above burst).
 */
int kprim_limiter_take(struct kprim_limiter *l, uint64_t n,
		       struct kprim_ctx *ctx, uint64_t timeout_ns,
		       uint64_t *retry_after_ns);

/** kprim_limiter_try_take() - kprim_limiter_take() without waiting. */
int kprim_limiter_try_take(struct kprim_limiter *l, uint64_t n,
			   uint64_t *retry_after_ns);

/**
 * kprim_limiter_set_rate() - change the rate (owner only); waiters are
 * re-evaluated at once.
 * Return: 0, -EINVAL, -EOVERFLOW, -EPERM.
 */
int kprim_limiter_set_rate(struct kprim_limiter *l, uint64_t rate,
			   uint64_t period_ns);

/**
 * kprim_limiter_set_burst() - change the bucket size (owner only). Waiters
 * asking for more than the new burst fail with -EINVAL.
 * Return: 0, -EINVAL, -EOVERFLOW, -EPERM.
 */
int kprim_limiter_set_burst(struct kprim_limiter *l, uint64_t burst);

/** kprim_limiter_stats() - read the state. Return: 0 or -EINVAL. */
int kprim_limiter_stats(struct kprim_limiter *l,
			struct kprim_limiter_stats *st);

/** kprim_limiter_fd() - the object fd, for poll()/epoll (readable when a
 * take of one token would succeed) and for passing to another process. */
int kprim_limiter_fd(struct kprim_limiter *l);

/**
 * kprim_limiter_from_fd() - wrap an object fd received from elsewhere.
 * @fd:		a limiter fd; the handle owns it from now on
 * Return: 0, -EINVAL (not a kprim limiter fd), -ENOMEM.
 */
int kprim_limiter_from_fd(int fd, struct kprim_limiter **out);

#ifdef __cplusplus
}
#endif
#endif /* KPRIM_LIMITER_H */
