/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim_chan - in-process MPMC channels with Go semantics.
 *
 * Elements are copied by value (size fixed at creation). Capacity 0 is an
 * unbuffered rendezvous: a send completes only when a receiver takes the
 * element. All functions are thread-safe.
 *
 * Waits: @timeout_ns is relative; 0 = do not block (-EAGAIN when the
 * operation cannot complete now), KPRIM_TIMEOUT_INFINITE = no timeout.
 * @ctx is optional (NULL = none); when it ends, the wait returns its
 * kprim_ctx_err() (-ECANCELED or -ETIMEDOUT) at once.
 *
 * Errno conventions (all returns are 0/index or a negative errno):
 *   -EINVAL	NULL handle/buffer, zero element size, bad select case
 *   -EOVERFLOW	capacity * element size does not fit in memory
 *   -ENOMEM	allocation failed (only in kprim_chan_new)
 *   -EAGAIN	would block and @timeout_ns was 0
 *   -ETIMEDOUT	@timeout_ns passed (or @ctx deadline passed)
 *   -ECANCELED	@ctx was cancelled
 *   -EPIPE	send: the channel is closed;
 *		recv: the channel is closed AND drained (buffered elements are
 *		always delivered first) - the "closed" indication
 *   -E2BIG	more than KPRIM_CHAN_SELECT_MAX select cases
 *   -EDEADLK	select with no enabled case, no ctx and no timeout
 *
 * fork(): a channel is process memory, not shared: the child gets a copy
 * holding the elements buffered at the fork (each process then receives
 * them from its own copy), and the processes do not see each other's
 * sends or close. To pass data between processes use a pipe or a socket.
 * The copy is usable in the child only if no thread was blocked on the
 * channel (send, recv or select) or inside a call on it at the moment of
 * the fork: those threads do not exist in the child, and an element handed
 * to one of them there would be lost. A context passed to a channel call
 * in the child follows kprim/ctx.h: the child's copy, cancelled only by
 * the child.
 */
#ifndef KPRIM_CHAN_H
#define KPRIM_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "kprim/ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kprim_chan;

/* Largest capacity accepted by kprim_chan_new(). */
#define KPRIM_CHAN_CAP_MAX	((size_t)1 << 30)
/* Most cases one kprim_chan_select() call accepts. */
#define KPRIM_CHAN_SELECT_MAX	64

/**
 * kprim_chan_new() - create a channel.
 * @elem_size:	bytes per element, >= 1
 * @capacity:	0 (unbuffered) .. KPRIM_CHAN_CAP_MAX
 * Return: 0, -EINVAL, -EOVERFLOW, -ENOMEM.
 */
int kprim_chan_new(size_t elem_size, size_t capacity, struct kprim_chan **out);

/**
 * kprim_chan_free() - free a channel nobody uses any more (NULL: no-op).
 * Freeing a channel with blocked waiters is a caller bug; close it first
 * and join the users. A completed exchange leaves both sides done with
 * the channel, as in Go: a client that has received its answer on a
 * private reply channel may free it at once, while the server's send is
 * still returning.
 */
void kprim_chan_free(struct kprim_chan *ch);

/** kprim_chan_send() - copy *@elem into the channel. */
int kprim_chan_send(struct kprim_chan *ch, const void *elem,
		    struct kprim_ctx *ctx, uint64_t timeout_ns);

/**
 * kprim_chan_recv() - move the oldest element into *@elem. On a closed,
 * drained channel store the zero value (all bytes 0, as in Go) and return
 * -EPIPE. A receive that fails otherwise (-EAGAIN, -ETIMEDOUT, -ECANCELED,
 * -EINVAL) leaves *@elem as it was.
 */
int kprim_chan_recv(struct kprim_chan *ch, void *elem,
		    struct kprim_ctx *ctx, uint64_t timeout_ns);

/** kprim_chan_try_send() - send without blocking (-EAGAIN if full). */
int kprim_chan_try_send(struct kprim_chan *ch, const void *elem);

/** kprim_chan_try_recv() - receive without blocking (-EAGAIN if empty). */
int kprim_chan_try_recv(struct kprim_chan *ch, void *elem);

/**
 * kprim_chan_close() - no more sends. Blocked senders get -EPIPE; blocked
 * receivers get -EPIPE (nothing is buffered when receivers are blocked).
 * Return: 0, -EINVAL, -EPIPE (already closed).
 */
int kprim_chan_close(struct kprim_chan *ch);

/** kprim_chan_len() - buffered elements now (>= 0), or -EINVAL. */
long kprim_chan_len(struct kprim_chan *ch);

/** kprim_chan_cap() - capacity (>= 0), or -EINVAL. */
long kprim_chan_cap(struct kprim_chan *ch);

enum kprim_chan_dir {
	KPRIM_CHAN_SEND = 1,
	KPRIM_CHAN_RECV = 2,
};

/**
 * struct kprim_chan_case - one select case.
 * @ch:		channel; NULL disables the case (like a nil channel in Go)
 * @dir:	KPRIM_CHAN_SEND or KPRIM_CHAN_RECV
 * @elem:	send: the element to send; recv: where to store it
 * @err:	out, for the chosen case only: 0, or -EPIPE if it was chosen
 *		because the channel is closed (recv: closed and drained, and
 *		*@elem is set to the zero value)
 */
struct kprim_chan_case {
	struct kprim_chan *ch;
	int dir;
	void *elem;
	int err;
};

/**
 * kprim_chan_select() - complete exactly one of several cases.
 *
 * When several cases are ready one is picked uniformly at random, so no
 * case starves. @timeout_ns 0 gives the non-blocking "default" behaviour.
 * Return: the index of the completed case (>= 0; see its @err), or
 * -EAGAIN, -ETIMEDOUT, -ECANCELED, -EINVAL, -E2BIG.
 */
int kprim_chan_select(struct kprim_chan_case *cases, size_t n,
		      struct kprim_ctx *ctx, uint64_t timeout_ns);

#ifdef __cplusplus
}
#endif

#endif /* KPRIM_CHAN_H */
