/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - tracepoints (events/kprim/ in tracefs; perf, bpftrace).
 *
 * Every event names its object by id (struct kprim_object's, the
 * "kprim-id:" line of fdinfo and the id of KPRIM_IOC_LIST), never by name
 * or key: fields are fixed-size numbers. Objects made outside an fd (the
 * KUnit suites) report id 0.
 *
 * A take or an acquire reports what happened at the call (granted,
 * queued, refused, ...); a queued request reports its end separately,
 * from whichever context ends it: kprim_wait_grant when the owner's grant
 * pass hands it what it asked for (or refuses it: result != 0), and
 * kprim_wait_end when it leaves the queue by itself (timeout, cancel,
 * signal). Both carry how long it was queued.
 *
 * Disabled, each call site costs a static branch (a nop).
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kprim

#if !defined(_KPRIM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _KPRIM_TRACE_H

#include <linux/errno.h>
#include <linux/ktime.h>
#include <linux/tracepoint.h>
#include "kprim.h"
#include "cache.h"

#ifndef _KPRIM_TRACE_HELPERS
#define _KPRIM_TRACE_HELPERS

/* Why a cache entry went (kprim_cache_evict's reason). */
#define KPRIM_EVICT_CAPACITY	0	/* a store made room */
#define KPRIM_EVICT_SHRINKER	1	/* memory pressure */
#define KPRIM_EVICT_EXPIRED	2	/* its TTL ran out */
#define KPRIM_EVICT_FLUSHED	3	/* KPRIM_IOC_CACHE_FLUSH */

static inline u64 kprim_trace_id(const struct kprim_object *obj)
{
	return obj ? obj->id : 0;
}

static inline u32 kprim_trace_kind(const struct kprim_object *obj)
{
	return obj ? obj->ops->kind : 0;
}

#endif /* _KPRIM_TRACE_HELPERS */

/* So that perf and trace-cmd can read the kind names in the format. */
TRACE_DEFINE_ENUM(KPRIM_KIND_LIMITER);
TRACE_DEFINE_ENUM(KPRIM_KIND_SEM);
TRACE_DEFINE_ENUM(KPRIM_KIND_CACHE);

/* result: 0 or a negative errno; -EIOCBQUEUED means "queued". */
#define kprim_trace_result(r)						\
	__print_symbolic(r,						\
			 { 0, "granted" },				\
			 { -EIOCBQUEUED, "queued" },			\
			 { -EAGAIN, "refused" },			\
			 { -ENOSPC, "queue_full" },			\
			 { -ETIMEDOUT, "timed_out" },			\
			 { -ECANCELED, "cancelled" },			\
			 { -ERESTARTSYS, "interrupted" },		\
			 { -EINTR, "interrupted" },			\
			 { -EINVAL, "invalid" })

#define kprim_trace_kind_name(k)					\
	__print_symbolic(k,						\
			 { KPRIM_KIND_LIMITER, "limiter" },		\
			 { KPRIM_KIND_SEM, "sem" },			\
			 { KPRIM_KIND_CACHE, "cache" })

/*
 * A take or acquire as decided at the call: granted at once (0), queued
 * (-EIOCBQUEUED), refused without waiting (-EAGAIN), refused by a full
 * queue (-ENOSPC, io_uring), cancelled before it queued (-ECANCELED,
 * io_uring) or invalid (-EINVAL: more than the burst or the permits).
 * @async: sent through io_uring.
 */
DECLARE_EVENT_CLASS(kprim_request,
	TP_PROTO(const struct kprim_waitq *q, u64 n, int result, bool async),
	TP_ARGS(q, n, result, async),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, n)
		__field(int, result)
		__field(bool, async)
	),
	TP_fast_assign(
		__entry->id = kprim_trace_id(q->obj);
		__entry->n = n;
		__entry->result = result;
		__entry->async = async;
	),
	TP_printk("id=%llu n=%llu result=%s async=%d",
		  __entry->id, __entry->n, kprim_trace_result(__entry->result),
		  __entry->async)
);

DEFINE_EVENT(kprim_request, kprim_limiter_take,
	TP_PROTO(const struct kprim_waitq *q, u64 n, int result, bool async),
	TP_ARGS(q, n, result, async)
);

DEFINE_EVENT(kprim_request, kprim_sem_acquire,
	TP_PROTO(const struct kprim_waitq *q, u64 n, int result, bool async),
	TP_ARGS(q, n, result, async)
);

/*
 * @n permits given back: a release, all an fd held when it closes, or
 * permits parked in a slot that the kernel takes back (a recall).
 */
TRACE_EVENT(kprim_sem_release,
	TP_PROTO(const struct kprim_waitq *q, u64 n, u64 held),
	TP_ARGS(q, n, held),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, n)
		__field(u64, held)
	),
	TP_fast_assign(
		__entry->id = kprim_trace_id(q->obj);
		__entry->n = n;
		__entry->held = held;
	),
	TP_printk("id=%llu n=%llu held=%llu",
		  __entry->id, __entry->n, __entry->held)
);

/*
 * A queued request ends. kprim_wait_grant: the grant pass granted it
 * (result 0) or refused it (-EINVAL: the burst or permit count was
 * lowered under it). kprim_wait_end: it timed out, was cancelled (its
 * eventfd, KPRIM_IOC_WAIT_CANCEL, its ring's teardown) or a signal ended
 * the wait (-ERESTARTSYS). @waited_ns: how long it was queued.
 */
DECLARE_EVENT_CLASS(kprim_wait,
	TP_PROTO(const struct kprim_waitq *q, const struct kprim_waiter *w,
		 int result),
	TP_ARGS(q, w, result),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u64, n)
		__field(u64, waited_ns)
		__field(u32, kind)
		__field(int, result)
		__field(bool, async)
	),
	TP_fast_assign(
		__entry->id = kprim_trace_id(q->obj);
		__entry->n = w->n;
		__entry->waited_ns = ktime_get_ns() - w->queued_at;
		__entry->kind = kprim_trace_kind(q->obj);
		__entry->result = result;
		__entry->async = w->async;
	),
	TP_printk("id=%llu kind=%s n=%llu waited_ns=%llu result=%s async=%d",
		  __entry->id, kprim_trace_kind_name(__entry->kind),
		  __entry->n, __entry->waited_ns,
		  kprim_trace_result(__entry->result), __entry->async)
);

DEFINE_EVENT(kprim_wait, kprim_wait_grant,
	TP_PROTO(const struct kprim_waitq *q, const struct kprim_waiter *w,
		 int result),
	TP_ARGS(q, w, result)
);

DEFINE_EVENT(kprim_wait, kprim_wait_end,
	TP_PROTO(const struct kprim_waitq *q, const struct kprim_waiter *w,
		 int result),
	TP_ARGS(q, w, result)
);

/* A lookup (GET, each key of MGET): @e is the live entry, NULL a miss. */
TRACE_EVENT(kprim_cache_access,
	TP_PROTO(const struct kprim_cache *cache,
		 const struct kprim_cache_entry *e, u32 key_len),
	TP_ARGS(cache, e, key_len),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, key_len)
		__field(u32, value_len)
		__field(bool, hit)
	),
	TP_fast_assign(
		__entry->id = kprim_trace_id(cache->obj);
		__entry->key_len = key_len;
		__entry->value_len = e ? e->value_len : 0;
		__entry->hit = e;
	),
	TP_printk("id=%llu hit=%d key_len=%u value_len=%u",
		  __entry->id, __entry->hit, __entry->key_len,
		  __entry->value_len)
);

/* An entry leaves the cache for KPRIM_EVICT_* @reason. */
TRACE_EVENT(kprim_cache_evict,
	TP_PROTO(const struct kprim_cache *cache,
		 const struct kprim_cache_entry *e, int reason),
	TP_ARGS(cache, e, reason),
	TP_STRUCT__entry(
		__field(u64, id)
		__field(u32, key_len)
		__field(u32, value_len)
		__field(int, reason)
	),
	TP_fast_assign(
		__entry->id = kprim_trace_id(cache->obj);
		__entry->key_len = e->key_len;
		__entry->value_len = e->value_len;
		__entry->reason = reason;
	),
	TP_printk("id=%llu reason=%s key_len=%u value_len=%u",
		  __entry->id,
		  __print_symbolic(__entry->reason,
				   { KPRIM_EVICT_CAPACITY, "capacity" },
				   { KPRIM_EVICT_SHRINKER, "shrinker" },
				   { KPRIM_EVICT_EXPIRED, "expired" },
				   { KPRIM_EVICT_FLUSHED, "flushed" }),
		  __entry->key_len, __entry->value_len)
);

#endif /* _KPRIM_TRACE_H */

/* An out-of-tree module: define_trace.h finds us through -I$(src). */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE kprim_trace
#include <trace/define_trace.h>
