// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libkprim: io_uring prep helpers and completion decode.
 *
 * An op's private area holds a struct kprim_uring_state: the kernel's
 * argument struct (the SQE's command area points at it), the out-pointers
 * and the context the prep helper was given, and which operation it is.
 * The decode translates the CQE's res exactly as the synchronous wrappers
 * (limiter.c, sem.c, cache.c) translate the ioctl's return value.
 */
#include <string.h>
#include "internal.h"
#include "kprim/uring.h"

/* Which decode an op needs. */
enum kprim_uop {
	KPRIM_UOP_NONE = 0,
	KPRIM_UOP_FAILED,	/* a no-op carrying an argument error */
	KPRIM_UOP_PLAIN,	/* res as is */
	KPRIM_UOP_TAKE,
	KPRIM_UOP_ACQUIRE,
	KPRIM_UOP_LIMITER_STATS,
	KPRIM_UOP_SEM_STATS,
	KPRIM_UOP_SEM_HOLDERS,
	KPRIM_UOP_CACHE_GET,
	KPRIM_UOP_CACHE_STORE,
	KPRIM_UOP_CACHE_INCR,
	KPRIM_UOP_CACHE_STATS,
	KPRIM_UOP_WAIT_CANCEL,
};

/* Marks an op prepared and not yet decoded. */
#define KPRIM_UOP_MAGIC	0x6b75726eU	/* "kurn" */

struct kprim_uring_state {
	uint32_t magic;
	uint32_t code;		/* enum kprim_uop */
	int32_t err;		/* KPRIM_UOP_FAILED: the result */
	int32_t fd;		/* the object fd the SQE names (a cancel's) */
	uint32_t caps;		/* that handle's KPRIM_OBJ_* */
	uint32_t pad;
	struct kprim_ctx *ctx;	/* TAKE, ACQUIRE: maps the wait's end */
	void *out[3];		/* the caller's out-pointers */
	union {
		struct kprim_limiter_take take;
		struct kprim_limiter_set lset;
		struct kprim_limiter_info linfo;
		struct kprim_sem_acquire acq;
		struct kprim_sem_release rel;
		struct kprim_sem_resize resize;
		struct kprim_sem_info sinfo;
		struct kprim_cache_get get;
		struct kprim_cache_store store;
		struct kprim_cache_key key;
		struct kprim_cache_incr incr;
		struct kprim_hdr hdr;
		struct kprim_cache_info cinfo;
		struct kprim_wait_cancel wcancel;
	} arg;
};

_Static_assert(sizeof(struct kprim_uring_state) <=
	       sizeof(((struct kprim_uring_op *)0)->priv), "op too small");
_Static_assert(_Alignof(struct kprim_uring_state) <= _Alignof(uint64_t),
	       "op alignment");
/* kprim_uring_prep_sem_holders() lets the kernel fill the caller's array. */
_Static_assert(sizeof(struct kprim_sem_holder_info) ==
	       sizeof(struct kprim_sem_holder), "holder layout");
_Static_assert(offsetof(struct kprim_sem_holder_info, pid) ==
	       offsetof(struct kprim_sem_holder, pid), "holder layout");
_Static_assert(offsetof(struct kprim_sem_holder_info, held) ==
	       offsetof(struct kprim_sem_holder, held), "holder layout");
_Static_assert(sizeof(((struct kprim_sem_holder_info *)0)->pid) ==
	       sizeof(((struct kprim_sem_holder *)0)->pid), "holder layout");

static struct kprim_uring_state *uop_state(struct kprim_uring_op *op)
{
	return (struct kprim_uring_state *)(void *)op->priv;
}

/* Start an op: everything zero, nothing to decode yet. */
static struct kprim_uring_state *uop_begin(struct kprim_uring_op *op,
					   uint32_t code)
{
	struct kprim_uring_state *u = uop_state(op);

	memset(u, 0, sizeof(*u));
	u->code = code;
	return u;
}

/* An argument error: a no-op whose decode is @err. */
static int uop_fail(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
		    int err)
{
	struct kprim_uring_state *u = uop_begin(op, KPRIM_UOP_FAILED);

	u->err = err;
	u->magic = KPRIM_UOP_MAGIC;
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, op);
	return 0;
}

/* The object command on @o's fd with the op's argument. */
static int uop_cmd(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
		   const struct kprim_obj *o, uint32_t cmd)
{
	struct kprim_uring_state *u = uop_state(op);

	/* Kept for a cancel of this op, which goes to the same object. */
	u->fd = o->fd;
	u->caps = o->caps;
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, o->fd, NULL, 0, 0);
	sqe->cmd_op = cmd;
	/* The first 8 bytes of the command area: the argument pointer. */
	sqe->addr3 = (uintptr_t)&u->arg;
	io_uring_sqe_set_data(sqe, op);
	u->magic = KPRIM_UOP_MAGIC;
	return 0;
}

/* NULL sqe or op: nothing to attach a result to. */
static int uop_bad(struct io_uring_sqe *sqe, struct kprim_uring_op *op)
{
	if (sqe && op)
		return 0;
	if (sqe) {
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, 0);
	}
	return -EINVAL;
}

/*
 * Limiter.
 */

int kprim_uring_prep_limiter_take(struct io_uring_sqe *sqe,
				  struct kprim_uring_op *op,
				  struct kprim_limiter *l, uint64_t n,
				  struct kprim_ctx *ctx, uint64_t timeout_ns,
				  uint64_t *retry_after_ns)
{
	struct kprim_uring_state *u;
	int ret;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!l)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_TAKE);
	u->arg.take.size = sizeof(u->arg.take);
	u->arg.take.n = n;
	ret = kprim_wait_prepare(&u->arg.take.wait, ctx, timeout_ns);
	if (ret)
		return uop_fail(sqe, op, ret);
	u->ctx = ctx;
	u->out[0] = retry_after_ns;
	return uop_cmd(sqe, op, &l->o, KPRIM_IOC_LIMITER_TAKE);
}

int kprim_uring_prep_limiter_try_take(struct io_uring_sqe *sqe,
				      struct kprim_uring_op *op,
				      struct kprim_limiter *l, uint64_t n,
				      uint64_t *retry_after_ns)
{
	return kprim_uring_prep_limiter_take(sqe, op, l, n, NULL, 0,
					     retry_after_ns);
}

static int uop_limiter_set(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
			   struct kprim_limiter *l, uint32_t what,
			   uint64_t rate, uint64_t period_ns, uint64_t burst)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!l)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_PLAIN);
	u->arg.lset.size = sizeof(u->arg.lset);
	u->arg.lset.flags = what;
	u->arg.lset.params.rate = rate;
	u->arg.lset.params.period_ns = period_ns;
	u->arg.lset.params.burst = burst;
	return uop_cmd(sqe, op, &l->o, KPRIM_IOC_LIMITER_SET);
}

int kprim_uring_prep_limiter_set_rate(struct io_uring_sqe *sqe,
				      struct kprim_uring_op *op,
				      struct kprim_limiter *l, uint64_t rate,
				      uint64_t period_ns)
{
	return uop_limiter_set(sqe, op, l, KPRIM_LIMITER_SET_RATE, rate,
			       period_ns, 0);
}

int kprim_uring_prep_limiter_set_burst(struct io_uring_sqe *sqe,
				       struct kprim_uring_op *op,
				       struct kprim_limiter *l, uint64_t burst)
{
	return uop_limiter_set(sqe, op, l, KPRIM_LIMITER_SET_BURST, 0, 0,
			       burst);
}

int kprim_uring_prep_limiter_stats(struct io_uring_sqe *sqe,
				   struct kprim_uring_op *op,
				   struct kprim_limiter *l,
				   struct kprim_limiter_stats *st)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!l || !st)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_LIMITER_STATS);
	u->arg.linfo.size = sizeof(u->arg.linfo);
	u->out[0] = st;
	return uop_cmd(sqe, op, &l->o, KPRIM_IOC_LIMITER_INFO);
}

/*
 * Semaphore.
 */

int kprim_uring_prep_sem_acquire(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_sem *s, uint64_t n,
				 struct kprim_ctx *ctx, uint64_t timeout_ns)
{
	struct kprim_uring_state *u;
	int ret;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!s)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_ACQUIRE);
	u->arg.acq.size = sizeof(u->arg.acq);
	u->arg.acq.n = n;
	ret = kprim_wait_prepare(&u->arg.acq.wait, ctx, timeout_ns);
	if (ret)
		return uop_fail(sqe, op, ret);
	u->ctx = ctx;
	return uop_cmd(sqe, op, &s->o, KPRIM_IOC_SEM_ACQUIRE);
}

int kprim_uring_prep_sem_try_acquire(struct io_uring_sqe *sqe,
				     struct kprim_uring_op *op,
				     struct kprim_sem *s, uint64_t n)
{
	return kprim_uring_prep_sem_acquire(sqe, op, s, n, NULL, 0);
}

int kprim_uring_prep_sem_release(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_sem *s, uint64_t n)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!s)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_PLAIN);
	u->arg.rel.size = sizeof(u->arg.rel);
	u->arg.rel.n = n;
	return uop_cmd(sqe, op, &s->o, KPRIM_IOC_SEM_RELEASE);
}

int kprim_uring_prep_sem_resize(struct io_uring_sqe *sqe,
				struct kprim_uring_op *op,
				struct kprim_sem *s, uint64_t permits)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!s)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_PLAIN);
	u->arg.resize.size = sizeof(u->arg.resize);
	u->arg.resize.permits = permits;
	return uop_cmd(sqe, op, &s->o, KPRIM_IOC_SEM_RESIZE);
}

int kprim_uring_prep_sem_stats(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op, struct kprim_sem *s,
			       struct kprim_sem_stats *st)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!s || !st)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_SEM_STATS);
	u->arg.sinfo.size = sizeof(u->arg.sinfo);
	u->out[0] = st;
	return uop_cmd(sqe, op, &s->o, KPRIM_IOC_SEM_INFO);
}

int kprim_uring_prep_sem_holders(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_sem *s,
				 struct kprim_sem_holder_info *h, size_t cap)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!s || (cap && !h))
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_SEM_HOLDERS);
	u->arg.sinfo.size = sizeof(u->arg.sinfo);
	/* Same layout (asserted above): the kernel fills @h directly. */
	u->arg.sinfo.holders = cap ? (uintptr_t)h : 0;
	u->arg.sinfo.nr_holders = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	return uop_cmd(sqe, op, &s->o, KPRIM_IOC_SEM_INFO);
}

/*
 * Cache.
 */

int kprim_uring_prep_cache_get(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, void *buf, size_t *len,
			       uint64_t *ttl_ns, uint64_t *cas)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!c || !len || klen > UINT32_MAX)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_CACHE_GET);
	u->arg.get.size = sizeof(u->arg.get);
	u->arg.get.key = (uintptr_t)key;
	u->arg.get.key_len = (uint32_t)klen;
	u->arg.get.value = (uintptr_t)buf;
	u->arg.get.value_len = *len;
	u->out[0] = len;
	u->out[1] = ttl_ns;
	u->out[2] = cas;
	return uop_cmd(sqe, op, &c->o, KPRIM_IOC_CACHE_GET);
}

int kprim_uring_prep_cache_store(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c,
				 enum kprim_cache_store_op how,
				 unsigned int flags, const void *key,
				 size_t klen, const void *val, size_t vlen,
				 uint64_t ttl_ns, uint64_t *cas)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!c || klen > UINT32_MAX || (unsigned int)how > KPRIM_STORE_CAS ||
	    (flags & ~KPRIM_STORE_PINNED) || (how == KPRIM_STORE_CAS && !cas))
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_CACHE_STORE);
	u->arg.store.size = sizeof(u->arg.store);
	u->arg.store.op = how;
	if (flags & KPRIM_STORE_PINNED)
		u->arg.store.flags |= KPRIM_CACHE_PIN;
	u->arg.store.key = (uintptr_t)key;
	u->arg.store.key_len = (uint32_t)klen;
	u->arg.store.value = (uintptr_t)val;
	u->arg.store.value_len = vlen;
	if (ttl_ns != KPRIM_TTL_DEFAULT) {
		u->arg.store.flags |= KPRIM_CACHE_TTL;
		u->arg.store.ttl_ns = ttl_ns;
	}
	if (cas)
		u->arg.store.cas = *cas;
	u->out[0] = cas;
	return uop_cmd(sqe, op, &c->o, KPRIM_IOC_CACHE_STORE);
}

int kprim_uring_prep_cache_set(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, const void *val, size_t vlen,
			       uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_uring_prep_cache_store(sqe, op, c, KPRIM_STORE_SET, 0,
					    key, klen, val, vlen, ttl_ns, cas);
}

int kprim_uring_prep_cache_add(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, const void *val, size_t vlen,
			       uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_uring_prep_cache_store(sqe, op, c, KPRIM_STORE_ADD, 0,
					    key, klen, val, vlen, ttl_ns, cas);
}

int kprim_uring_prep_cache_replace(struct io_uring_sqe *sqe,
				   struct kprim_uring_op *op,
				   struct kprim_cache *c, const void *key,
				   size_t klen, const void *val, size_t vlen,
				   uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_uring_prep_cache_store(sqe, op, c, KPRIM_STORE_REPLACE, 0,
					    key, klen, val, vlen, ttl_ns, cas);
}

int kprim_uring_prep_cache_cas(struct io_uring_sqe *sqe,
			       struct kprim_uring_op *op,
			       struct kprim_cache *c, const void *key,
			       size_t klen, const void *val, size_t vlen,
			       uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_uring_prep_cache_store(sqe, op, c, KPRIM_STORE_CAS, 0,
					    key, klen, val, vlen, ttl_ns, cas);
}

static int uop_cache_key(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
			 struct kprim_cache *c, uint32_t cmd, const void *key,
			 size_t klen, uint64_t ttl_ns)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!c || klen > UINT32_MAX)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_PLAIN);
	u->arg.key.size = sizeof(u->arg.key);
	u->arg.key.key = (uintptr_t)key;
	u->arg.key.key_len = (uint32_t)klen;
	u->arg.key.ttl_ns = ttl_ns;
	/* As kprim_cache_touch(): the cache's default, not ~585 years. */
	if (cmd == KPRIM_IOC_CACHE_TOUCH && ttl_ns == KPRIM_TTL_DEFAULT) {
		u->arg.key.flags = KPRIM_CACHE_DEFAULT_TTL;
		u->arg.key.ttl_ns = 0;
	}
	return uop_cmd(sqe, op, &c->o, cmd);
}

int kprim_uring_prep_cache_delete(struct io_uring_sqe *sqe,
				  struct kprim_uring_op *op,
				  struct kprim_cache *c, const void *key,
				  size_t klen)
{
	return uop_cache_key(sqe, op, c, KPRIM_IOC_CACHE_DELETE, key, klen, 0);
}

int kprim_uring_prep_cache_touch(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c, const void *key,
				 size_t klen, uint64_t ttl_ns)
{
	return uop_cache_key(sqe, op, c, KPRIM_IOC_CACHE_TOUCH, key, klen,
			     ttl_ns);
}

static int uop_cache_count(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
			   struct kprim_cache *c, uint32_t flags,
			   const void *key, size_t klen, uint64_t delta,
			   uint64_t *value)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!c || klen > UINT32_MAX)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_CACHE_INCR);
	u->arg.incr.size = sizeof(u->arg.incr);
	u->arg.incr.flags = flags;
	u->arg.incr.key = (uintptr_t)key;
	u->arg.incr.key_len = (uint32_t)klen;
	u->arg.incr.delta = delta;
	u->out[0] = value;
	return uop_cmd(sqe, op, &c->o, KPRIM_IOC_CACHE_INCR);
}

int kprim_uring_prep_cache_incr(struct io_uring_sqe *sqe,
				struct kprim_uring_op *op,
				struct kprim_cache *c, const void *key,
				size_t klen, uint64_t delta, uint64_t *value)
{
	return uop_cache_count(sqe, op, c, 0, key, klen, delta, value);
}

int kprim_uring_prep_cache_decr(struct io_uring_sqe *sqe,
				struct kprim_uring_op *op,
				struct kprim_cache *c, const void *key,
				size_t klen, uint64_t delta, uint64_t *value)
{
	return uop_cache_count(sqe, op, c, KPRIM_CACHE_DECR, key, klen, delta,
			       value);
}

int kprim_uring_prep_cache_flush(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!c)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_PLAIN);
	u->arg.hdr.size = sizeof(u->arg.hdr);
	return uop_cmd(sqe, op, &c->o, KPRIM_IOC_CACHE_FLUSH);
}

int kprim_uring_prep_cache_stats(struct io_uring_sqe *sqe,
				 struct kprim_uring_op *op,
				 struct kprim_cache *c,
				 struct kprim_cache_stats *st)
{
	struct kprim_uring_state *u;

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!c || !st)
		return uop_fail(sqe, op, -EINVAL);
	u = uop_begin(op, KPRIM_UOP_CACHE_STATS);
	u->arg.cinfo.size = sizeof(u->arg.cinfo);
	u->out[0] = st;
	return uop_cmd(sqe, op, &c->o, KPRIM_IOC_CACHE_INFO);
}

/*
 * Ending queued waits: KPRIM_IOC_WAIT_CANCEL, sent on an fd of the
 * object the wait is queued on, names it by the user_data of its SQE.
 */

static int uop_wait_cancel(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
			   const struct kprim_obj *o, uint32_t flags,
			   uint64_t user_data)
{
	struct kprim_uring_state *u;

	/* The handshake said the module has no such command: send none. */
	if ((o->caps & KPRIM_OBJ_FEATURES_KNOWN) &&
	    !(o->caps & KPRIM_OBJ_URING_ASYNC))
		return uop_fail(sqe, op, -EOPNOTSUPP);
	u = uop_begin(op, KPRIM_UOP_WAIT_CANCEL);
	u->arg.wcancel.size = sizeof(u->arg.wcancel);
	u->arg.wcancel.flags = flags;
	u->arg.wcancel.user_data = user_data;
	return uop_cmd(sqe, op, o, KPRIM_IOC_WAIT_CANCEL);
}

int kprim_uring_prep_cancel(struct io_uring_sqe *sqe, struct kprim_uring_op *op,
			    const struct kprim_uring_op *target)
{
	const struct kprim_uring_state *t;
	struct kprim_obj o = { 0 };

	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!target || target == op)
		return uop_fail(sqe, op, -EINVAL);
	t = (const struct kprim_uring_state *)(const void *)target->priv;
	/* Only a take or an acquire waits; TAKE/ACQUIRE went through uop_cmd. */
	if (t->code != KPRIM_UOP_TAKE && t->code != KPRIM_UOP_ACQUIRE)
		return uop_fail(sqe, op, -ENOENT);
	o.fd = t->fd;
	o.caps = t->caps;
	if ((o.caps & KPRIM_OBJ_FEATURES_KNOWN) &&
	    !(o.caps & KPRIM_OBJ_URING_ASYNC))
		return uop_fail(sqe, op, -EOPNOTSUPP);
	/* Already decoded: its wait is over. */
	if (t->magic != KPRIM_UOP_MAGIC)
		return uop_fail(sqe, op, -ENOENT);
	return uop_wait_cancel(sqe, op, &o, 0, (uintptr_t)target);
}

int kprim_uring_prep_limiter_cancel_all(struct io_uring_sqe *sqe,
					struct kprim_uring_op *op,
					struct kprim_limiter *l)
{
	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!l)
		return uop_fail(sqe, op, -EINVAL);
	return uop_wait_cancel(sqe, op, &l->o, KPRIM_WAIT_CANCEL_ALL, 0);
}

int kprim_uring_prep_sem_cancel_all(struct io_uring_sqe *sqe,
				    struct kprim_uring_op *op,
				    struct kprim_sem *s)
{
	if (uop_bad(sqe, op))
		return -EINVAL;
	if (!s)
		return uop_fail(sqe, op, -EINVAL);
	return uop_wait_cancel(sqe, op, &s->o, KPRIM_WAIT_CANCEL_ALL, 0);
}

/*
 * Decoding: what limiter.c, sem.c and cache.c do with the ioctl's result.
 */

static void decode_limiter_stats(const struct kprim_limiter_info *i,
				 struct kprim_limiter_stats *st)
{
	st->rate = i->params.rate;
	st->period_ns = i->params.period_ns;
	st->burst = i->params.burst;
	st->initial = i->params.initial;
	st->tokens = i->tokens;
	st->waiters = i->waiters;
	st->admitted = i->admitted;
	st->throttled = i->throttled;
}

static void decode_sem_stats(const struct kprim_sem_info *i,
			     struct kprim_sem_stats *st)
{
	st->permits = i->permits;
	st->available = i->available;
	st->held = i->held;
	st->held_by_me = i->held_by_me;
	st->waiters = i->waiters;
	st->acquired = i->acquired;
}

static void decode_cache_stats(const struct kprim_cache_info *i,
			       struct kprim_cache_stats *st)
{
	st->config.max_bytes = i->params.max_bytes;
	st->config.max_entries = i->params.max_entries;
	st->config.max_value = i->params.max_value;
	st->config.default_ttl_ns = i->params.default_ttl_ns;
	st->bytes = i->bytes;
	st->entries = i->entries;
	st->hits = i->hits;
	st->misses = i->misses;
	st->evictions = i->evictions;
	st->expirations = i->expirations;
}

int kprim_uring_op_result(struct kprim_uring_op *op, int res)
{
	struct kprim_uring_state *u;

	if (!op)
		return -EINVAL;
	u = uop_state(op);
	if (u->magic != KPRIM_UOP_MAGIC)
		return -EINVAL;
	u->magic = 0;

	switch (u->code) {
	case KPRIM_UOP_FAILED:
		return u->err;
	case KPRIM_UOP_TAKE:
		if (u->out[0])
			*(uint64_t *)u->out[0] = res ? u->arg.take.retry_after_ns : 0;
		return kprim_wait_result(res, u->ctx);
	case KPRIM_UOP_ACQUIRE:
		return kprim_wait_result(res, u->ctx);
	case KPRIM_UOP_LIMITER_STATS:
		if (!res)
			decode_limiter_stats(&u->arg.linfo, u->out[0]);
		return res;
	case KPRIM_UOP_SEM_STATS:
		if (!res)
			decode_sem_stats(&u->arg.sinfo, u->out[0]);
		return res;
	case KPRIM_UOP_SEM_HOLDERS:
		return res ? res : (int)u->arg.sinfo.nr_holders;
	case KPRIM_UOP_CACHE_GET:
		if (!res || res == -EMSGSIZE)
			*(size_t *)u->out[0] = u->arg.get.value_len;
		if (!res && u->out[1])
			*(uint64_t *)u->out[1] = u->arg.get.ttl_ns;
		if (!res && u->out[2])
			*(uint64_t *)u->out[2] = u->arg.get.cas;
		return res;
	case KPRIM_UOP_CACHE_STORE:
		if (!res && u->out[0])
			*(uint64_t *)u->out[0] = u->arg.store.cas;
		return res;
	case KPRIM_UOP_CACHE_INCR:
		if (!res && u->out[0])
			*(uint64_t *)u->out[0] = u->arg.incr.value;
		return res;
	case KPRIM_UOP_CACHE_STATS:
		if (!res)
			decode_cache_stats(&u->arg.cinfo, u->out[0]);
		return res;
	case KPRIM_UOP_WAIT_CANCEL:
		/* A module without the command (a handle from a bare fd). */
		return res == -ENOTTY ? -EOPNOTSUPP : res;
	default:
		return res;
	}
}

int kprim_uring_complete(const struct io_uring_cqe *cqe)
{
	if (!cqe)
		return -EINVAL;
	return kprim_uring_op_result((struct kprim_uring_op *)
				     (uintptr_t)cqe->user_data, cqe->res);
}
