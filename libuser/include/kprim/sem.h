/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim semaphore: a host-wide counting semaphore in the kernel. Permits
 * are held by the handle that acquired them and come back when it is
 * closed, including when its process dies.
 */
#ifndef KPRIM_SEM_H
#define KPRIM_SEM_H

#include <stddef.h>
#include <stdint.h>
#include "kprim/ctx.h"
#include "kprim/session.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kprim_sem;

/** struct kprim_sem_stats - a semaphore's state (kprim_sem_stats()). */
struct kprim_sem_stats {
	uint64_t permits;	/* configured */
	uint64_t available;	/* free now */
	uint64_t held;		/* by all handles */
	uint64_t held_by_me;	/* by this handle */
	uint64_t waiters;
	uint64_t acquired;	/* acquisitions since creation */
};

/** struct kprim_sem_holder_info - one holder (kprim_sem_holders()). */
struct kprim_sem_holder_info {
	int pid;
	uint64_t held;
};

/**
 * kprim_sem_open() - create or open a semaphore with @permits permits.
 * @flags:	as for kprim_limiter_open(): a named CREATE refuses another
 *		user's semaphore (-EPERM) unless KPRIM_ANY_OWNER; the fd is
 *		close-on-exec unless KPRIM_INHERIT (session.h: fork and exec)
 * Return: 0; -EINVAL (flags, permits 0 or above 2^32-1), -ENOENT, -EEXIST,
 * -EPERM, -EACCES, -EDQUOT, -ENOSPC, -ENOMEM, -EMFILE, -ENFILE,
 * -EOPNOTSUPP.
 */
int kprim_sem_open(struct kprim *k, const char *name, unsigned int flags,
		   unsigned int mode, uint64_t permits, struct kprim_sem **out);

/** kprim_sem_close() - close the handle, returning every permit it holds. */
void kprim_sem_close(struct kprim_sem *s);

/**
 * kprim_sem_acquire() - acquire @n permits, FIFO: a large request at the
 * head is not overtaken by later small ones.
 * @timeout_ns:	0 = try only; KPRIM_TIMEOUT_INFINITE = no own timeout
 * Return: 0, -EAGAIN, -ETIMEDOUT, -ECANCELED, -EINTR, -EINVAL (@n is 0 or
 * above the permit count).
 */
int kprim_sem_acquire(struct kprim_sem *s, uint64_t n, struct kprim_ctx *ctx,
		      uint64_t timeout_ns);

/** kprim_sem_try_acquire() - acquire without waiting (-EAGAIN). */
int kprim_sem_try_acquire(struct kprim_sem *s, uint64_t n);

/** kprim_sem_release() - give back @n permits this handle holds
 * (-EINVAL for more than it holds). */
int kprim_sem_release(struct kprim_sem *s, uint64_t n);

/** kprim_sem_resize() - set the permit count (owner only: -EPERM). */
int kprim_sem_resize(struct kprim_sem *s, uint64_t permits);

/** kprim_sem_stats() - read the state. Return: 0 or a negative errno. */
int kprim_sem_stats(struct kprim_sem *s, struct kprim_sem_stats *st);

/**
 * kprim_sem_holders() - list who holds permits.
 * @h:		array of @cap entries
 * Return: the number of holders (may exceed @cap: only @cap are written),
 * or a negative errno.
 */
int kprim_sem_holders(struct kprim_sem *s, struct kprim_sem_holder_info *h,
		      size_t cap);

/** kprim_sem_fd() - the object fd (poll: readable when the head request
 * could be granted). */
int kprim_sem_fd(struct kprim_sem *s);

#ifdef __cplusplus
}
#endif
#endif /* KPRIM_SEM_H */
