/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim over io_uring: queue limiter, semaphore and cache operations on a
 * ring the caller owns (liburing), and decode each completion into exactly
 * what the synchronous call returns.
 *
 * This header needs liburing's headers and its users link with -luring
 * (pkg-config kprim lists it: Requires.private: liburing). <kprim.h> does
 * not include it, so programs that do not use io_uring build without
 * liburing.
 *
 * Pattern, one operation:
 *
 *	struct kprim_uring_op op;	   // lives until its CQE is decoded
 *	uint64_t retry;
 *
 *	kprim_uring_prep_limiter_take(io_uring_get_sqe(&ring), &op, lim, 1,
 *				      NULL, KPRIM_TIMEOUT_INFINITE, &retry);
 *	io_uring_submit(&ring);
 *	...
 *	io_uring_wait_cqe(&ring, &cqe);
 *	ret = kprim_uring_complete(cqe);  // == kprim_limiter_take()'s result
 *	io_uring_cqe_seen(&ring, cqe);
 *
 * The op (struct kprim_uring_op) holds the kernel's argument struct and the
 * out-pointers the prep helper was given; the prep helper sets the SQE's
 * user_data to the op's address. Everything the prep helper is given by
 * address (the op, keys, value buffers, out-pointers, a context) must stay
 * valid until the CQE is decoded: the kernel reads and writes them when it
 * runs the operation, which may be after io_uring_submit() returns.
 *
 * Results. Each prep helper mirrors a synchronous call of limiter.h,
 * sem.h or cache.h, with the same arguments after (sqe, op);
 * kprim_uring_complete() returns what that call would have returned for
 * the same state of the object, and writes the same out-pointers in the
 * same cases (e.g. a cache get's length on 0 and on -EMSGSIZE, a take's
 * retry-after on failure). Argument errors the synchronous call detects
 * in the library (a NULL handle, a context that has already ended, a key
 * length beyond 32 bits) are not reported by the prep helper: it queues a
 * no-op instead, and the error comes out of kprim_uring_complete(), so
 * every prepared SQE yields exactly one CQE and one result.
 *
 * Beyond the synchronous call's errnos, a completion may carry io_uring's
 * own: -ECANCELED (a failed link predecessor, or IORING_OP_ASYNC_CANCEL
 * before the request was issued), -EOPNOTSUPP or -EINVAL (a kernel or
 * module without IORING_OP_URING_CMD on object fds; KPRIM_FEAT_URING_CMD
 * tells).
 *
 * Waiting. A take or acquire with a timeout that cannot be granted at once
 * is queued on the object when the kernel issues the SQE (normally
 * within io_uring_submit()), in the same FIFO as the threads blocked in the
 * synchronous calls, and completes when a release, a refill, a resize or
 * a set grants it. It holds no thread meanwhile, neither the caller's nor
 * one of io_uring's workers, and the ring goes on serving other requests.
 * Its timeout runs from that issue; the timeout, or the context's
 * remaining time, is converted to a relative one when the op is prepared,
 * so prepare shortly before submitting. Signals do not end it. It ends
 * (CQE) when it is:
 *   - granted: 0;
 *   - timed out: -ETIMEDOUT (a take's retry-after is written);
 *   - cancelled: -ECANCELED, by its context (its cancel eventfd; the
 *     decode then returns the context's error, as the synchronous call
 *     does), by kprim_uring_prep_cancel() or a ..._cancel_all() below, by
 *     the ring's teardown (its process gone) or an exec() of the thread
 *     that submitted it. The exit of that thread alone does not end it:
 *     it belongs to the ring, whose other threads reap its CQE;
 *   - made impossible: -EINVAL (a resize or set left fewer permits or a
 *     smaller burst than it asks for).
 * IORING_OP_ASYNC_CANCEL cannot end such a wait: io_uring does not pass
 * it on to IORING_OP_URING_CMD requests, so it completes with -ENOENT and
 * the wait stays queued. The permits an acquire gets belong to the object
 * fd the SQE named (the handle's), as with the synchronous call: closing
 * that fd, or the death of the process, gives them back. Each queued wait
 * costs the kernel one small allocation, charged to the submitter's
 * memory cgroup. With a module without KPRIM_FEAT_URING_ASYNC (older
 * than this header) a wait instead occupies one of io_uring's worker
 * threads, its timeout starts when a worker picks it up, a cancelled wait
 * completes with -EINTR, and the cancels below decode -EOPNOTSUPP.
 *
 * Rules: one op per SQE in flight; an op may be reused for another prep
 * once its CQE is decoded. Flags such as IOSQE_IO_LINK may be set on the
 * SQE after the prep helper (which clears them); IOSQE_CQE_SKIP_SUCCESS
 * must not be (the out-pointers are written only when the CQE is decoded).
 * Ops are not tied to a ring, but a queued wait is tied to the thread
 * that submitted it: submit waits from a thread that outlives them.
 *
 * Batched gets without a ring of one's own: kprim_cache_mget()
 * (<kprim/cache.h>), one system call for up to 1024 keys. On a ring, queue
 * one kprim_uring_prep_cache_get() per key and submit them together.
 */
#ifndef KPRIM_URING_H
#define KPRIM_URING_H

#include <stddef.h>
#include <stdint.h>
#include <liburing.h>
#include "kprim/ctx.h"
#include "kprim/limiter.h"
#include "kprim/sem.h"
#include "kprim/cache.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 64-bit words of struct kprim_uring_op's private area. */
#define KPRIM_URING_OP_WORDS	24

/**
 * struct kprim_uring_op - one queued kprim operation, owned by the caller.
 * @data:	the caller's (e.g. its request); the library never touches it
 * @priv:	the library's: the kernel's argument and the out-pointers,
 *		filled by a prep helper and read by the decode
 *
 * Needs no initialisation; must not move or be freed between the prep
 * helper and the decode of its CQE.
 */
struct kprim_uring_op {
	void *data;
	uint64_t priv[KPRIM_URING_OP_WORDS];
};

/*
 * Every prep helper below: @sqe is an SQE from io_uring_get_sqe() and @op
 * the caller's op. Return: 0 (the SQE is prepared: a kprim command, or a
 * no-op whose decode gives the synchronous call's argument error);
 * -EINVAL when @sqe or @op is NULL (a non-NULL @sqe is then prepared as a
 * no-op with user_data 0, whose decode is -EINVAL).
 */

/*
 * Limiter.
 */

/**
 * kprim_uring_prep_limiter_take() - queue kprim_limiter_take().
 * @timeout_ns:	0 = do not wait; KPRIM_TIMEOUT_INFINITE = no own timeout
 * @ctx:	cancellation and deadline, or NULL; must outlive the CQE
 * @retry_after_ns: out at decode (may be NULL): on an error, how long
 *		until @n tokens would be there for a new request; 0 on success
 *
 * Decode: 0; -EAGAIN (timeout 0, not enough tokens); -ETIMEDOUT;
 * -ECANCELED (@ctx cancelled, also when it has already ended at prep
 * time; -ETIMEDOUT for its deadline; or the wait was cancelled, see
 * "Waiting"); -EINVAL (@l NULL, @n 0 or above burst, also when a set
 * lowers the burst below @n while it waits).
 */
int kprim_uring_prep_limiter_take(struct io_uring_sqe *sqe,
				  struct kprim_uring_op *op,
				  struct kprim_limiter *l, uint64_t n,
				  struct kprim_ctx *ctx, uint64_t timeout_ns,
				  uint64_t *retry_after_ns);

/** kprim_uring_prep_limiter_try_take() - queue kprim_limiter_try_take().
 * Decode: 0, -EAGAIN (with @retry_after_ns), -EINVAL. */
int kprim_uring_prep_limiter_try_take(struct io_uring_sqe *sqe,
				      struct kprim_uring_op *op,
				      struct kprim_limiter *l, uint64_t n,
				      uint64_t *retry_after_ns);

/** kprim_uring_prep_limiter_set_rate() - queue kprim_limiter_set_rate().
 * Decode: 0, -EINVAL (@l NULL, rate or period 0), -EOVERFLOW, -EPERM (not
 * the owner). */
int kprim_uring_prep_limiter_set_rate(struct io_uring_sqe *sqe,
				      struct kprim_uring_op *op,
				      struct kprim_limiter *l, uint64_t rate,
				      uint64_t period_ns);

/** kprim_uring_prep_limiter_set_burst() - queue kprim_limiter_set_burst().
 * Decode: 0, -EINVAL (@l NULL, burst 0), -EOVERFLOW, -EPERM. */
int kprim_uring_prep_limiter_set_burst(struct io_uring_sqe *sqe,
				       struct kprim_uring_op *op,
				       struct kprim_limiter *l, uint64_t burst);

/** kprim_uring_prep_limiter_stats() - queue kprim_limiter_stats().
 * @st:		out at decode, on success
 * Decode: 0, -EINVAL (@l or @st NULL). */
int kprim_uring_prep_limiter_stats(struct io_uring_sqe *sqe,
				   struct kprim_uring_op *op,
				   struct kprim_limiter *l,
				   struct kprim_limiter_stats *st);

/*
 * Semaphore.
 */

/**
 * kprim_uring_prep_sem_acquire() - queue kprim_sem_acquire().
 *
 * The permits are held by @s's object fd, as with the synchronous call.
 * Decode: 0; -EAGAIN (timeout 0); -ETIMEDOUT; -ECANCELED (@ctx; its
 * deadline gives -ETIMEDOUT; or the wait was cancelled, see "Waiting");
 * -EINVAL (@s NULL, @n 0 or above the permit count, also when a resize
 * lowers the count below @n while it waits).
 */
int kprim_uring_prep_sem_acquire(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_sem *s, uint64_t n,
				 struct kprim_ctx *ctx, uint64_t timeout_ns);

/** kprim_uring_prep_sem_try_acquire() - queue kprim_sem_try_acquire().
 * Decode: 0, -EAGAIN, -EINVAL. */
int kprim_uring_prep_sem_try_acquire(struct io_uring_sqe *sqe,
				     struct kprim_uring_op *op,
				     struct kprim_sem *s, uint64_t n);

/** kprim_uring_prep_sem_release() - queue kprim_sem_release().
 * Decode: 0, -EINVAL (@s NULL, @n 0 or more than @s holds). */
int kprim_uring_prep_sem_release(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_sem *s, uint64_t n);

/** kprim_uring_prep_sem_resize() - queue kprim_sem_resize().
 * Decode: 0, -EINVAL (@s NULL, 0 or above 2^32-1 permits), -EPERM (not
 * the owner). */
int kprim_uring_prep_sem_resize(struct io_uring_sqe *sqe,
				struct kprim_uring_op *op,
				struct kprim_sem *s, uint64_t permits);

/** kprim_uring_prep_sem_stats() - queue kprim_sem_stats().
 * Decode: 0, -EINVAL (@s or @st NULL). */
int kprim_uring_prep_sem_stats(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op, struct kprim_sem *s,
			       struct kprim_sem_stats *st);

/** kprim_uring_prep_sem_holders() - queue kprim_sem_holders().
 * @h:		array of @cap entries, written by the kernel
 * Decode: the number of holders (may exceed @cap: only @cap are written),
 * -EINVAL (@s NULL, @cap but no @h), -EFAULT. */
int kprim_uring_prep_sem_holders(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_sem *s,
				 struct kprim_sem_holder_info *h, size_t cap);

/*
 * Cache.
 */

/**
 * kprim_uring_prep_cache_get() - queue kprim_cache_get().
 * @buf:	value buffer, written by the kernel
 * @len:	in (read now): capacity of @buf; out at decode: the value's
 *		length, on 0 and on -EMSGSIZE (then the size @buf needs)
 * @ttl_ns:	out at decode, on 0 (may be NULL): time left, 0 = no expiry
 * @cas:	out at decode, on 0 (may be NULL): the version
 *
 * Decode: 0; -ENOENT (miss or expired); -EMSGSIZE (@buf too short,
 * nothing copied); -EINVAL (@c or @len NULL, @klen 0 or above
 * KPRIM_KEY_MAX); -EFAULT.
 */
int kprim_uring_prep_cache_get(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, void *buf, size_t *len,
			       uint64_t *ttl_ns, uint64_t *cas);

/**
 * kprim_uring_prep_cache_set() - queue kprim_cache_set().
 * @ttl_ns:	relative expiry, 0 = never, KPRIM_TTL_DEFAULT = the cache's
 * @cas:	out at decode, on 0 (may be NULL): the new version
 *
 * Decode: 0; -EINVAL (@c NULL, key length); -E2BIG (value above
 * max_value); -ENOMEM; -EFAULT.
 */
int kprim_uring_prep_cache_set(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, const void *val, size_t vlen,
			       uint64_t ttl_ns, uint64_t *cas);

/** kprim_uring_prep_cache_add() - queue kprim_cache_add(). Decode: as
 * kprim_uring_prep_cache_set(), and -EEXIST (present). */
int kprim_uring_prep_cache_add(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, const void *val, size_t vlen,
			       uint64_t ttl_ns, uint64_t *cas);

/** kprim_uring_prep_cache_replace() - queue kprim_cache_replace(). Decode:
 * as kprim_uring_prep_cache_set(), and -ENOENT (absent). */
int kprim_uring_prep_cache_replace(struct io_uring_sqe *sqe,
				   struct kprim_uring_op *op,
				   struct kprim_cache *c, const void *key,
				   size_t klen, const void *val, size_t vlen,
				   uint64_t ttl_ns, uint64_t *cas);

/**
 * kprim_uring_prep_cache_cas() - queue kprim_cache_cas().
 * @cas:	in (read now): the expected version; out at decode, on 0: the
 *		new version. Required.
 *
 * Decode: as kprim_uring_prep_cache_set(); -ESTALE (the version changed);
 * -ENOENT (absent); -EINVAL also for a NULL @cas.
 */
int kprim_uring_prep_cache_cas(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, const void *val, size_t vlen,
			       uint64_t ttl_ns, uint64_t *cas);

/**
 * kprim_uring_prep_cache_store() - queue kprim_cache_store().
 * @how:	enum kprim_cache_store_op
 * @flags:	KPRIM_STORE_PINNED or 0
 * @cas:	as for kprim_uring_prep_cache_cas() with KPRIM_STORE_CAS, else
 *		as for kprim_uring_prep_cache_set()
 *
 * Decode: as the call @how names; -EINVAL also for an unknown @how or
 * flag; -ENOSPC (pinned: over half a limit).
 */
int kprim_uring_prep_cache_store(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c,
				 enum kprim_cache_store_op how,
				 unsigned int flags, const void *key,
				 size_t klen, const void *val, size_t vlen,
				 uint64_t ttl_ns, uint64_t *cas);

/** kprim_uring_prep_cache_delete() - queue kprim_cache_delete().
 * Decode: 0, -ENOENT, -EINVAL (@c NULL, key length), -EFAULT. */
int kprim_uring_prep_cache_delete(struct io_uring_sqe *sqe,
				  struct kprim_uring_op *op,
				  struct kprim_cache *c, const void *key,
				  size_t klen);

/** kprim_uring_prep_cache_touch() - queue kprim_cache_touch().
 * @ttl_ns:	the new TTL: 0 = never expires, KPRIM_TTL_DEFAULT = the
 *		cache's default
 * Decode: 0, -ENOENT, -EINVAL, -EFAULT. */
int kprim_uring_prep_cache_touch(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c, const void *key,
				 size_t klen, uint64_t ttl_ns);

/**
 * kprim_uring_prep_cache_incr() - queue kprim_cache_incr().
 * @value:	out at decode, on 0 (may be NULL): the new value
 *
 * Decode: 0, -ENOENT, -EINVAL (@c NULL, key length, the value is not a
 * decimal u64), -EFAULT.
 */
int kprim_uring_prep_cache_incr(struct io_uring_sqe *sqe,
				struct kprim_uring_op *op,
				struct kprim_cache *c, const void *key,
				size_t klen, uint64_t delta, uint64_t *value);

/** kprim_uring_prep_cache_decr() - queue kprim_cache_decr() (saturates at
 * 0). Decode: as kprim_uring_prep_cache_incr(). */
int kprim_uring_prep_cache_decr(struct io_uring_sqe *sqe,
				struct kprim_uring_op *op,
				struct kprim_cache *c, const void *key,
				size_t klen, uint64_t delta, uint64_t *value);

/** kprim_uring_prep_cache_flush() - queue kprim_cache_flush().
 * Decode: 0, -EINVAL (@c NULL), -EPERM (not the owner). */
int kprim_uring_prep_cache_flush(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c);

/** kprim_uring_prep_cache_stats() - queue kprim_cache_stats().
 * Decode: 0, -EINVAL (@c or @st NULL). */
int kprim_uring_prep_cache_stats(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c,
				 struct kprim_cache_stats *st);

/*
 * Ending queued waits (KPRIM_IOC_WAIT_CANCEL). The SQE must be submitted
 * through the ring that queued the waits; the ended waits complete with
 * -ECANCELED (their decode: the context's error if their context has
 * ended too), the cancel with its own CQE. Decode of a cancel: how many
 * waits it ended (>= 1); -ENOENT (none: granted, timed out or cancelled
 * already, or never queued); -EOPNOTSUPP (a module without
 * KPRIM_FEAT_URING_ASYNC); -EINVAL (a NULL @target or handle, or @target
 * == @op).
 */

/**
 * kprim_uring_prep_cancel() - end the wait of one take or acquire.
 * @target:	an op prepared by kprim_uring_prep_limiter_take() or
 *		kprim_uring_prep_sem_acquire() (or their try variants), whose
 *		SQE still has the user_data the prep helper set (@target's
 *		address). It is read now, so it must not be decoded by another
 *		thread at the same time; an op already decoded, or prepared
 *		for anything else, gives -ENOENT without a kernel command.
 *
 * The cancel goes to the object fd @target's SQE named. Like
 * io_uring_prep_cancel(): the target completes on its own CQE, -ECANCELED
 * if the cancel reached it, else with whatever ended it first.
 */
int kprim_uring_prep_cancel(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
			    const struct kprim_uring_op *target);

/** kprim_uring_prep_limiter_cancel_all() - end every take this ring has
 * queued on @l's limiter (through any of its fds). Decode: as above. */
int kprim_uring_prep_limiter_cancel_all(struct io_uring_sqe *sqe,
					struct kprim_uring_op *op,
					struct kprim_limiter *l);

/** kprim_uring_prep_sem_cancel_all() - end every acquire this ring has
 * queued on @s's semaphore (through any of its fds). Decode: as above. */
int kprim_uring_prep_sem_cancel_all(struct io_uring_sqe *sqe,
				    struct kprim_uring_op *op,
				    struct kprim_sem *s);

/*
 * Decoding.
 */

/**
 * kprim_uring_complete() - decode the CQE of an SQE a prep helper made.
 * @cqe:	its completion; its user_data is the op's address
 *
 * Writes the out-pointers the prep helper was given and ends the op (it
 * may be reused). Call it once per CQE, before io_uring_cqe_seen().
 *
 * Return: what the synchronous call returns (see each prep helper), or
 * io_uring's own error (see the top of this header); -EINVAL when @cqe is
 * NULL or its user_data is not an op waiting to be decoded (0, or an op
 * already decoded: nothing is written then).
 */
int kprim_uring_complete(const struct io_uring_cqe *cqe);

/**
 * kprim_uring_op_result() - kprim_uring_complete() for a caller that put
 * its own user_data on the SQE after the prep helper.
 * @op:		the op given to the prep helper
 * @res:	the CQE's res
 *
 * Return: as kprim_uring_complete(); -EINVAL for a NULL @op or one not
 * waiting to be decoded.
 */
int kprim_uring_op_result(struct kprim_uring_op *op, int res);

#ifdef __cplusplus
}
#endif
#endif /* KPRIM_URING_H */
