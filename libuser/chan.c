// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Channels, after Go's runtime/chan.go: a ring buffer plus queues of
 * blocked senders and receivers under one mutex per channel.
 *
 * A blocked operation (a select with one or more cases) owns a "parker"
 * on its stack and puts one queue node per case on the channels. The
 * thread that completes it claims the parker with a CAS on parker.done,
 * copies the element straight to/from the waiter's buffer, then wakes it.
 * The CAS is what makes a select complete exactly one case: nodes of an
 * already-claimed parker are stale and simply dropped by whoever meets
 * them. No allocation happens after kprim_chan_new().
 *
 * A completed exchange means both sides are done with the channel, as in
 * Go: the client of a reply channel may free it as soon as its receive
 * returns. So neither side touches the channel afterwards. The claimer
 * unlinks the waiter's other nodes on that channel while it holds the
 * lock, and wakes the waiter only after unlocking it; the woken waiter
 * re-locks only the other channels of its select, to unlink its nodes.
 *
 * Lock order: channel locks (ascending address) -> parker.m;
 * ctx lock -> parker.m. A waiter holds only parker.m while sleeping.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kprim/chan.h"

#define PARK_PENDING	(-1)
#define PARK_ABORTED	(-2)

struct parker {
	pthread_mutex_t m;
	pthread_cond_t c;
	atomic_int done;	/* PARK_PENDING, PARK_ABORTED or case index */
	bool woken;		/* a peer finished the claimed case */
	bool kicked;		/* the ctx ended */
	struct kprim_ctx_waiter cw;
	struct wnode *nodes;	/* one per case (unused for a NULL channel) */
	size_t n;
};

struct wq {
	struct wnode *head, *tail;
};

/* Queue links and @queued are guarded by the lock of @ch. */
struct wnode {
	struct wnode *prev, *next;
	struct parker *p;
	struct kprim_chan *ch;
	struct wq *q;
	void *elem;
	int idx;
	int err;
	bool queued;
};

struct kprim_chan {
	pthread_mutex_t lock;
	size_t esize, cap;
	size_t head, count;	/* ring buffer state */
	bool closed;
	unsigned char *buf;
	struct wq sendq, recvq;
};

static pthread_condattr_t mono_attr;
static pthread_once_t mono_once = PTHREAD_ONCE_INIT;

/*
 * The channel lock is held for a few dozen instructions, so a contended
 * locker that sleeps in futex() at once (glibc's default mutex) pays two
 * syscalls and a context switch for what a short spin would have got: at
 * 2 and 4 threads that made a send+recv cost twice a Go channel's, whose
 * runtime lock spins before it sleeps. An adaptive mutex spins (reading,
 * then trying) for a bounded count before it parks.
 */
static pthread_mutexattr_t chan_lock_attr;

static void mono_init(void)
{
	pthread_condattr_init(&mono_attr);
	pthread_condattr_setclock(&mono_attr, CLOCK_MONOTONIC);
	pthread_mutexattr_init(&chan_lock_attr);
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
	pthread_mutexattr_settype(&chan_lock_attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
}

static void wq_push(struct wq *q, struct wnode *n)
{
	n->next = NULL;
	n->prev = q->tail;
	if (q->tail)
		q->tail->next = n;
	else
		q->head = n;
	q->tail = n;
	n->queued = true;
}

static void wq_remove(struct wnode *n)
{
	struct wq *q = n->q;

	if (n->prev)
		n->prev->next = n->next;
	else
		q->head = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		q->tail = n->prev;
	n->queued = false;
}

/*
 * Dequeue the first waiter we manage to claim; drop stale ones. The
 * claimed waiter's other nodes on this channel (a select may name it more
 * than once) are unlinked here too: once woken it never locks it again.
 * Called with the channel lock held.
 */
static struct wnode *wq_claim_first(struct wq *q)
{
	struct wnode *n;
	struct parker *p;
	int pending;

	while ((n = q->head)) {
		wq_remove(n);
		p = n->p;
		pending = PARK_PENDING;
		if (!atomic_compare_exchange_strong(&p->done, &pending, n->idx))
			continue;
		/* ->ch first: ->queued of a node elsewhere is not ours. */
		for (size_t i = 0; i < p->n; i++)
			if (p->nodes[i].ch == n->ch && p->nodes[i].queued)
				wq_remove(&p->nodes[i]);
		return n;
	}
	return NULL;
}

/* The common case, nobody queued, without a call. */
static inline struct wnode *wq_claim(struct wq *q)
{
	return q->head ? wq_claim_first(q) : NULL;
}

/*
 * Finish a claimed node, with the channel already unlocked: from the
 * moment it is woken the waiter may return and free the channel (and its
 * own stack, where @n lives). @n->err was set under the channel lock.
 */
static void wake_node(struct wnode *n)
{
	struct parker *p = n->p;

	pthread_mutex_lock(&p->m);
	p->woken = true;
	pthread_cond_signal(&p->c);
	pthread_mutex_unlock(&p->m);
}

static void ctx_kick(struct kprim_ctx_waiter *w)
{
	struct parker *p = (struct parker *)((char *)w -
					     offsetof(struct parker, cw));

	pthread_mutex_lock(&p->m);
	p->kicked = true;
	pthread_cond_signal(&p->c);
	pthread_mutex_unlock(&p->m);
}

/*
 * Ring index @i < 2 * cap (head < cap, count <= cap): a subtraction, not a
 * division, which costs tens of cycles on the hot path.
 */
static unsigned char *slot(struct kprim_chan *ch, size_t i)
{
	return ch->buf + (i >= ch->cap ? i - ch->cap : i) * ch->esize;
}

/*
 * Copy one element. Most channels carry a word or a pointer: a copy of a
 * size the compiler knows is a move or two, where memcpy() of a run-time
 * size is a call.
 */
static inline void elem_copy(void *dst, const void *src, size_t size)
{
	switch (size) {
	case 8:
		memcpy(dst, src, 8);
		break;
	case 4:
		memcpy(dst, src, 4);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	default:
		memcpy(dst, src, size);
	}
}

/*
 * try_send_locked(), try_recv_locked(): complete the operation now if it
 * can be (true, with *@err set), else false. A waiter claimed on the way
 * is returned in *@wake, for wake_node() once the channel is unlocked.
 */
static inline __attribute__((always_inline)) bool
try_send_locked(struct kprim_chan *ch, const void *elem, int *err,
		struct wnode **wake)
{
	struct wnode *r;

	if (ch->closed) {
		*err = -EPIPE;
		return true;
	}
	r = wq_claim(&ch->recvq);
	if (r) {
		elem_copy(r->elem, elem, ch->esize);
		r->err = 0;
		*wake = r;
		*err = 0;
		return true;
	}
	if (ch->count < ch->cap) {
		elem_copy(slot(ch, ch->head + ch->count), elem, ch->esize);
		ch->count++;
		*err = 0;
		return true;
	}
	return false;
}

static inline __attribute__((always_inline)) bool
try_recv_locked(struct kprim_chan *ch, void *elem, int *err,
		struct wnode **wake)
{
	struct wnode *s;

	*err = 0;
	if (ch->count) {
		elem_copy(elem, slot(ch, ch->head), ch->esize);
		ch->head = ch->head + 1 == ch->cap ? 0 : ch->head + 1;
		ch->count--;
		/* A slot just freed: move one blocked sender in, FIFO kept. */
		s = wq_claim(&ch->sendq);
		if (s) {
			elem_copy(slot(ch, ch->head + ch->count), s->elem,
				  ch->esize);
			ch->count++;
			s->err = 0;
			*wake = s;
		}
		return true;
	}
	s = wq_claim(&ch->sendq);
	if (s) {
		elem_copy(elem, s->elem, ch->esize);
		s->err = 0;
		*wake = s;
		return true;
	}
	if (ch->closed) {
		memset(elem, 0, ch->esize);	/* Go's zero value */
		*err = -EPIPE;
		return true;
	}
	return false;
}

int kprim_chan_new(size_t elem_size, size_t capacity, struct kprim_chan **out)
{
	struct kprim_chan *ch;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!elem_size)
		return -EINVAL;
	if (capacity > KPRIM_CHAN_CAP_MAX ||
	    (capacity && elem_size > SIZE_MAX / capacity))
		return -EOVERFLOW;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	if (capacity) {
		ch->buf = malloc(capacity * elem_size);
		if (!ch->buf) {
			free(ch);
			return -ENOMEM;
		}
	}
	pthread_once(&mono_once, mono_init);
	pthread_mutex_init(&ch->lock, &chan_lock_attr);
	ch->esize = elem_size;
	ch->cap = capacity;
	*out = ch;
	return 0;
}

void kprim_chan_free(struct kprim_chan *ch)
{
	if (!ch)
		return;
	pthread_mutex_destroy(&ch->lock);
	free(ch->buf);
	free(ch);
}

int kprim_chan_close(struct kprim_chan *ch)
{
	struct wnode *n, *wake = NULL;

	if (!ch)
		return -EINVAL;
	pthread_mutex_lock(&ch->lock);
	if (ch->closed) {
		pthread_mutex_unlock(&ch->lock);
		return -EPIPE;
	}
	ch->closed = true;
	/* Claimed nodes are off their queue: chain them through ->next. */
	while ((n = wq_claim(&ch->recvq)) || (n = wq_claim(&ch->sendq))) {
		if (n->q == &ch->recvq)
			memset(n->elem, 0, ch->esize);	/* the zero value */
		n->err = -EPIPE;
		n->next = wake;
		wake = n;
	}
	pthread_mutex_unlock(&ch->lock);
	while ((n = wake)) {
		wake = n->next;	/* read before the owner may return */
		wake_node(n);
	}
	return 0;
}

long kprim_chan_len(struct kprim_chan *ch)
{
	long len;

	if (!ch)
		return -EINVAL;
	pthread_mutex_lock(&ch->lock);
	len = (long)ch->count;
	pthread_mutex_unlock(&ch->lock);
	return len;
}

long kprim_chan_cap(struct kprim_chan *ch)
{
	return ch ? (long)ch->cap : -EINVAL;
}

/* Per-thread xorshift: cheap, and good enough to shuffle select cases. */
static uint32_t rand32(void)
{
	static _Thread_local uint64_t s;

	if (!s)
		s = ((uint64_t)(uintptr_t)&s ^ kprim_now_ns()) | 1;
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (uint32_t)(s >> 32);
}

static void lock_all(struct kprim_chan **locks, size_t nl)
{
	for (size_t i = 0; i < nl; i++)
		pthread_mutex_lock(&locks[i]->lock);
}

static void unlock_all(struct kprim_chan **locks, size_t nl)
{
	for (size_t i = nl; i-- > 0;)
		pthread_mutex_unlock(&locks[i]->lock);
}

/* Distinct channels of the select, sorted by address (the lock order). */
static size_t lock_order(const struct kprim_chan_case *cases, size_t n,
			 struct kprim_chan **locks)
{
	size_t nl = 0, i, j;

	for (i = 0; i < n; i++) {
		struct kprim_chan *ch = cases[i].ch;

		if (!ch)
			continue;
		for (j = nl; j > 0 && (uintptr_t)locks[j - 1] >= (uintptr_t)ch;
		     j--)
			;
		if (j > 0 && locks[j - 1] == ch)
			continue;
		if (j < nl && locks[j] == ch)
			continue;
		memmove(&locks[j + 1], &locks[j], (nl - j) * sizeof(*locks));
		locks[j] = ch;
		nl++;
	}
	return nl;
}

static void to_timespec(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* Sleep until claimed, kicked by the ctx, or @deadline passes. */
static void park_wait(struct parker *p, uint64_t deadline)
{
	struct timespec ts;

	to_timespec(deadline, &ts);
	pthread_mutex_lock(&p->m);
	while (!p->woken && !p->kicked) {
		if (deadline == KPRIM_NO_DEADLINE) {
			pthread_cond_wait(&p->c, &p->m);
		} else if (pthread_cond_timedwait(&p->c, &p->m, &ts) ==
			   ETIMEDOUT) {
			break;
		}
	}
	pthread_mutex_unlock(&p->m);
}

static int select_validate(const struct kprim_chan_case *cases, size_t n)
{
	if (!cases && n)
		return -EINVAL;
	if (n > KPRIM_CHAN_SELECT_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++) {
		if (!cases[i].ch)
			continue;
		if (!cases[i].elem)
			return -EINVAL;
		if (cases[i].dir != KPRIM_CHAN_SEND &&
		    cases[i].dir != KPRIM_CHAN_RECV)
			return -EINVAL;
	}
	return 0;
}

static bool try_case_locked(struct kprim_chan_case *c, struct wnode **wake)
{
	if (c->dir == KPRIM_CHAN_SEND)
		return try_send_locked(c->ch, c->elem, &c->err, wake);
	return try_recv_locked(c->ch, c->elem, &c->err, wake);
}

int kprim_chan_select(struct kprim_chan_case *cases, size_t n,
		      struct kprim_ctx *ctx, uint64_t timeout_ns)
{
	struct kprim_chan *locks[KPRIM_CHAN_SELECT_MAX];
	struct wnode nodes[KPRIM_CHAN_SELECT_MAX];
	uint8_t order[KPRIM_CHAN_SELECT_MAX];
	struct wnode *wake = NULL;
	struct kprim_chan *done_ch = NULL;
	struct parker p;
	uint64_t deadline = KPRIM_NO_DEADLINE, now;
	size_t nl, i;
	int err, ret;

	err = select_validate(cases, n);
	if (err)
		return err;
	if (ctx) {
		err = kprim_ctx_err(ctx);
		if (err)
			return err;
	}

	/* Random permutation: every ready case is equally likely to win. */
	for (i = 0; i < n; i++) {
		size_t j = rand32() % (i + 1);

		if (j != i)
			order[i] = order[j];
		order[j] = (uint8_t)i;
	}

	nl = lock_order(cases, n, locks);
	lock_all(locks, nl);
	for (i = 0; i < n; i++) {
		struct kprim_chan_case *c = &cases[order[i]];

		if (c->ch && try_case_locked(c, &wake)) {
			unlock_all(locks, nl);
			if (wake)
				wake_node(wake);
			return order[i];
		}
	}
	if (timeout_ns == 0) {
		unlock_all(locks, nl);
		return -EAGAIN;
	}
	if (timeout_ns != KPRIM_TIMEOUT_INFINITE) {
		now = kprim_now_ns();
		if (timeout_ns < KPRIM_NO_DEADLINE - now)
			deadline = now + timeout_ns;
	}
	if (kprim_ctx_deadline_ns(ctx) < deadline)
		deadline = kprim_ctx_deadline_ns(ctx);
	if (!nl && !ctx && deadline == KPRIM_NO_DEADLINE) {
		unlock_all(locks, nl);
		return -EDEADLK;	/* nothing could ever end this wait */
	}

	/* A select on no channel may come before any kprim_chan_new(). */
	pthread_once(&mono_once, mono_init);
	pthread_mutex_init(&p.m, NULL);
	pthread_cond_init(&p.c, &mono_attr);
	atomic_init(&p.done, PARK_PENDING);
	p.woken = p.kicked = false;
	p.cw.next = p.cw.prev = NULL;
	p.cw.wake = ctx_kick;
	p.nodes = nodes;
	p.n = n;
	for (i = 0; i < n; i++) {
		struct kprim_chan_case *c = &cases[i];

		nodes[i].queued = false;
		nodes[i].ch = c->ch;
		if (!c->ch)
			continue;
		nodes[i].p = &p;
		nodes[i].q = c->dir == KPRIM_CHAN_SEND ? &c->ch->sendq :
							  &c->ch->recvq;
		nodes[i].elem = c->elem;
		nodes[i].idx = (int)i;
		nodes[i].err = 0;
		wq_push(nodes[i].q, &nodes[i]);
	}
	unlock_all(locks, nl);

	/* A ctx that has already ended makes watch fail: abort at once. */
	if (!ctx || !kprim_ctx_watch(ctx, &p.cw)) {
		park_wait(&p, deadline);
		kprim_ctx_unwatch(ctx, &p.cw);
	}

	err = PARK_PENDING;
	if (atomic_compare_exchange_strong(&p.done, &err, PARK_ABORTED)) {
		ret = ctx ? kprim_ctx_err(ctx) : 0;
		if (!ret)
			ret = -ETIMEDOUT;
	} else {
		/* A peer claimed us: wait until it has copied the element. */
		pthread_mutex_lock(&p.m);
		while (!p.woken)
			pthread_cond_wait(&p.c, &p.m);
		pthread_mutex_unlock(&p.m);
		ret = atomic_load(&p.done);
		cases[ret].err = nodes[ret].err;
		/* Done with it: the claimer unlinked our nodes there. */
		done_ch = cases[ret].ch;
	}

	/* Unlink the nodes that nobody consumed. */
	for (i = 0; i < n; i++) {
		struct kprim_chan *ch = cases[i].ch;

		if (!ch || ch == done_ch)
			continue;
		pthread_mutex_lock(&ch->lock);
		if (nodes[i].queued)
			wq_remove(&nodes[i]);
		pthread_mutex_unlock(&ch->lock);
	}
	pthread_cond_destroy(&p.c);
	pthread_mutex_destroy(&p.m);
	return ret;
}

/* The slow path of a send or receive: a select of one case. */
static __attribute__((noinline)) int chan_wait(struct kprim_chan *ch, int dir,
					       void *elem,
					       struct kprim_ctx *ctx,
					       uint64_t timeout_ns)
{
	struct kprim_chan_case c = { .ch = ch, .dir = dir, .elem = elem };
	int ret;

	ret = kprim_chan_select(&c, 1, ctx, timeout_ns);
	return ret < 0 ? ret : c.err;
}

/*
 * Fast path: an operation that can complete now needs none of select's
 * machinery (shuffle, lock ordering, parker). Inlined into send and recv
 * with @dir a constant, so each keeps only its own direction's code.
 */
static inline __attribute__((always_inline)) int
chan_op(struct kprim_chan *ch, int dir, void *elem, struct kprim_ctx *ctx,
	uint64_t timeout_ns)
{
	struct wnode *wake = NULL;
	bool done;
	int err;

	if (!ch || !elem)
		return -EINVAL;
	if (ctx) {
		err = kprim_ctx_err(ctx);
		if (err)
			return err;
	}
	pthread_mutex_lock(&ch->lock);
	if (dir == KPRIM_CHAN_SEND)
		done = try_send_locked(ch, elem, &err, &wake);
	else
		done = try_recv_locked(ch, elem, &err, &wake);
	pthread_mutex_unlock(&ch->lock);
	if (wake)
		wake_node(wake);
	if (done)
		return err;
	return chan_wait(ch, dir, elem, ctx, timeout_ns);
}

int kprim_chan_send(struct kprim_chan *ch, const void *elem,
		    struct kprim_ctx *ctx, uint64_t timeout_ns)
{
	/* The select case type is shared by both directions; no write. */
	return chan_op(ch, KPRIM_CHAN_SEND, (void *)elem, ctx, timeout_ns);
}

int kprim_chan_recv(struct kprim_chan *ch, void *elem,
		    struct kprim_ctx *ctx, uint64_t timeout_ns)
{
	return chan_op(ch, KPRIM_CHAN_RECV, elem, ctx, timeout_ns);
}

int kprim_chan_try_send(struct kprim_chan *ch, const void *elem)
{
	return kprim_chan_send(ch, elem, NULL, 0);
}

int kprim_chan_try_recv(struct kprim_chan *ch, void *elem)
{
	return kprim_chan_recv(ch, elem, NULL, 0);
}
