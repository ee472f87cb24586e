// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - the expiring key-value cache (memcached-like, one host).
 *
 * Storage. An entry is a 256-byte header from a dedicated kmem_cache
 * (SLAB_RECLAIM_ACCOUNT: a shrinker can free it; the inline data area is
 * whitelisted for hardened usercopy). Key and value live inline
 * in the header when together they fit (KPRIM_CACHE_INLINE bytes: the
 * common case of counters, flags and breaker states costs one allocation);
 * otherwise they share one kvmalloc'ed buffer, so a 1 MiB value needs no
 * high-order pages. Everything is charged to the storing task's memory
 * cgroup (GFP_KERNEL_ACCOUNT).
 *
 * Reads. Entries are immutable once published: a set builds a new entry
 * and swaps it in with rhashtable_replace_fast(); the last reference
 * frees an entry after an RCU grace period, so an entry found under
 * rcu_read_lock() stays readable until rcu_read_unlock(). A get looks the
 * key up under rcu_read_lock() and, for a value of up to a page, copies it
 * to userspace right there with page faults disabled (no sleeping under
 * RCU), taking no reference: it writes no shared cache line, so gets of
 * one hot key scale across CPUs. A larger value, or a copy that would
 * fault, takes a reference with refcount_inc_not_zero() (an entry already
 * released was replaced or deleted meanwhile: the key is looked up again,
 * at most KPRIM_CACHE_LOOKUP_RETRIES times, then it is a miss), leaves RCU
 * and copies with copy_to_user(). The
 * clock is read only for an entry that expires. Gets take no lock.
 * A multi-get (KPRIM_IOC_CACHE_MGET) takes a reference for each of its
 * keys in turn, one at a time, rescheduling between keys.
 *
 * Writes (set/add/replace/cas/delete/touch/incr/flush, eviction, sweep)
 * serialize on the per-cache spinlock. No allocation happens under it but
 * the GFP_ATOMIC ones inside rhashtable.
 *
 * LRU. Exact LRU would need the writer lock on every get. Instead a get
 * sets entry->referenced (one store, skipped if already set) and eviction
 * runs CLOCK / second chance from the tail of the list of stores: a
 * referenced tail entry is moved to the head with the bit cleared, the
 * first unreferenced one is evicted (as fs/mbcache.c does). An expired tail
 * entry is freed first. Second chances stop after two passes' worth of
 * moves so a storm of gets cannot stall a writer.
 *
 * Eviction is bounded work under the spinlock: a store makes room before
 * it publishes, freeing or moving at most KPRIM_CACHE_EVICT_BATCH entries
 * per lock hold, then drops the lock, reschedules and decides afresh (the
 * key may have changed meanwhile). Its whole budget is four steps per
 * entry the cache held; a store that cannot make room within it (other
 * writers filling the cache as fast as it empties it) fails with -ENOSPC
 * and publishes nothing. The shrinker frees at most
 * 2 * KPRIM_CACHE_SHRINK_BATCH entries per lock hold.
 *
 * Pinned entries (KPRIM_CACHE_PIN, e.g. a shared breaker's state) sit on
 * their own list, never on the LRU: neither a store nor the shrinker
 * evicts them. They count against every limit like other entries, and
 * together may take at most half of max_bytes, max_entries and max_mem
 * (-ENOSPC beyond), so pinning cannot crowd the evictable entries out nor
 * hold more than the cache reserved.
 *
 * Limits. bytes = sum of key_len + value_len of the live entries; mem =
 * what they really cost: each entry's header and table share
 * (KPRIM_CACHE_ENTRY_COST) plus its out-of-line buffer as allocated
 * (kmalloc rounding, vmalloc pages). A store that would exceed max_bytes,
 * max_entries or max_mem = max_bytes + max_entries * KPRIM_CACHE_ENTRY_COST
 * evicts until it fits; a single entry larger than max_bytes (or whose
 * memory exceeds max_mem), or a value larger than max_value, is -E2BIG.
 * Hard caps: max_bytes <= 1 GiB, max_entries <= 2^20, max_value <= 64 MiB.
 * Across caches, a cache reserves max_mem plus its fixed cost
 * (kprim_cache_reservation()) against its owner's max_bytes_per_user quota
 * when it is created (-EDQUOT beyond), so what one user's caches can pin
 * is bounded up front by what they really use; the entries are also
 * charged to the storing task's memory cgroup.
 *
 * Expiry. expires is an absolute CLOCK_MONOTONIC time in ns; an entry is
 * live while now < expires, checked on every access (lazy expiry). The
 * expiring entries are also kept in an rbtree by expiry time, and a
 * delayed work item per cache is armed for the soonest one (at most once a
 * second): it pops what has expired, in batches of KPRIM_CACHE_SWEEP_BATCH
 * with cond_resched(), so the sweep costs O(log n) per expired entry and
 * nothing for the entries that do not expire.
 *
 * Shrinker. Memory pressure is answered where the memory is charged:
 * every evictable entry of every shrinkable cache is also on one
 * memcg-aware, per-node list_lru (entry->mlru), on the list of the memory
 * cgroup its header was charged to (the storing task's: the entry is
 * allocated with kmem_cache_alloc_lru(), which also allocates that
 * cgroup's lists). The shrinker is SHRINKER_MEMCG_AWARE |
 * SHRINKER_NUMA_AWARE: reclaim in a cgroup at its memory.max counts and
 * scans that cgroup's entries on that node (list_lru_shrink_count() /
 * list_lru_shrink_walk()), whatever caches they are in, and never touches
 * another cgroup's; global reclaim walks every cgroup's lists. The walk
 * holds the list_lru's lock and calls kprim_cache_lru_isolate() per entry,
 * which may not sleep and only spin_trylock()s the entry's cache->lock
 * (the opposite order to linking, which adds to the list_lru under
 * cache->lock): a busy cache is skipped (LRU_SKIP). A referenced entry
 * gets its second chance (bit cleared, LRU_ROTATE to the tail of its
 * list), an expired one is freed as an expiration, any other is evicted
 * (counted in evictions and in shrunk) and unlinked from its cache, all
 * under both locks: one entry per cache->lock hold, at most nr_to_scan
 * (KPRIM_CACHE_SHRINK_WALK) per walk. Pinned entries and the entries of
 * KPRIM_CACHE_F_MANUAL caches are never on the list_lru. A direct
 * reclaimer frees the entries whose last reference it dropped itself,
 * after one synchronize_rcu() per walk, rather than by call_rcu(): the
 * cgroup's charge is released before the reclaim that is waiting for it
 * gives up and calls the OOM killer. kswapd waits for nobody, so it
 * does not wait for grace periods either (call_rcu): a user with many
 * small entries must not slow the machine's background reclaim.
 *
 * Teardown of a cache (kprim_cache_free(), from ->destroy with no fd left):
 * 1. set cache->dying under cache->lock, so the shrinker leaves the
 *    cache's entries alone (it checks under the same lock);
 * 2. cancel_delayed_work_sync() the sweep (nothing re-arms it: no fd);
 * 3. rhashtable_free_and_destroy() frees the linked entries at once (no
 *    reader can exist), taking each off the list_lru first: once the last
 *    is off (under the list_lru's lock), no walk can reach the cache;
 *    unlinked ones wait in call_rcu;
 * 4. free the per-CPU stats and the cache.
 * Module exit: unregister the shrinker, destroy the list_lru,
 * rcu_barrier() for the pending frees, destroy the kmem_cache.
 */
#include <linux/jhash.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/rhashtable.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/uaccess.h>
#include "kprim.h"
#include "cache.h"
#include "kprim_trace.h"

#define KPRIM_CACHE_SWEEP_MIN_NS	NSEC_PER_SEC
#define KPRIM_CACHE_SWEEP_MAX_DELAY	(3600 * HZ)
#define KPRIM_CACHE_SWEEP_BATCH		256
#define KPRIM_CACHE_FLUSH_BATCH		256
#define KPRIM_CACHE_SHRINK_BATCH	128
/* Entries a shrinker walk looks at (shrinker->batch): one grace period each. */
#define KPRIM_CACHE_SHRINK_WALK		512
#define KPRIM_CACHE_EVICT_BATCH		64
#define KPRIM_CACHE_U64_DIGITS		20
#define KPRIM_CACHE_LOOKUP_RETRIES	8
/* Waits for the hash table to grow before a store gives up (-ENOMEM). */
#define KPRIM_CACHE_GROW_TRIES		2

static struct kmem_cache *kprim_cache_entry_slab;
static struct shrinker *kprim_cache_shrinker;
/*
 * The evictable entries of all shrinkable caches, per memory cgroup and
 * node (entry->mlru); its per-node lock nests inside cache->lock.
 */
static struct list_lru kprim_cache_lru;
/*
 * kprim_cache_lru is bound to the shrinker: set (release) once it is, as
 * the shrinker must be registered before (compat.h) and may run before.
 */
static bool kprim_cache_lru_ready;

/* What a lookup hashes: the key bytes and their length. */
struct kprim_cache_lkey {
	const u8 *data;
	u32 len;
};

static u32 kprim_cache_hashfn(const void *data, u32 len, u32 seed)
{
	const struct kprim_cache_lkey *k = data;

	return jhash(k->data, k->len, seed ^ k->len);
}

static u32 kprim_cache_obj_hashfn(const void *data, u32 len, u32 seed)
{
	const struct kprim_cache_entry *e = data;

	return jhash(e->key, e->key_len, seed ^ e->key_len);
}

static int kprim_cache_obj_cmpfn(struct rhashtable_compare_arg *arg,
				 const void *obj)
{
	const struct kprim_cache_lkey *k = arg->key;
	const struct kprim_cache_entry *e = obj;

	return e->key_len != k->len || memcmp(e->key, k->data, k->len);
}

static const struct rhashtable_params kprim_cache_rht_params = {
	.head_offset		= offsetof(struct kprim_cache_entry, node),
	.hashfn			= kprim_cache_hashfn,
	.obj_hashfn		= kprim_cache_obj_hashfn,
	.obj_cmpfn		= kprim_cache_obj_cmpfn,
	.automatic_shrinking	= true,
};

static inline struct kprim_cache *kprim_cache_of(struct kprim_object *obj)
{
	return obj->priv;
}

static inline s64 kprim_cache_now(void)
{
	return ktime_get_ns();
}

static inline bool kprim_cache_expired(const struct kprim_cache_entry *e,
				       s64 now)
{
	return now >= READ_ONCE(e->expires);
}

static inline u64 kprim_cache_charge(const struct kprim_cache_entry *e)
{
	return (u64)e->key_len + e->value_len;
}

/* The memory behind a kvmalloc()ed buffer of @len bytes at @buf. */
static u32 kprim_cache_buf_mem(const void *buf, size_t len)
{
	if (is_vmalloc_addr(buf))
		return PAGE_ALIGN(len) +
		       DIV_ROUND_UP(len, PAGE_SIZE) * sizeof(struct page *);
	return kmalloc_size_roundup(len);
}

/*
 * Entries
 */

static void kprim_cache_entry_free_now(struct kprim_cache_entry *e)
{
	if (e->key != e->data)
		kvfree(e->key);
	kmem_cache_free(kprim_cache_entry_slab, e);
}

static void kprim_cache_entry_free_rcu(struct rcu_head *rcu)
{
	kprim_cache_entry_free_now(container_of(rcu, struct kprim_cache_entry,
						rcu));
}

/**
 * kprim_cache_entry_alloc() - allocate an unpublished entry.
 * @key:	the key, 1..KPRIM_KEY_MAX bytes (copied)
 * @key_len:	its length
 * @value_len:	room for the value; the caller fills entry->value
 *
 * The entry holds one reference and does not expire until the caller sets
 * ->expires. Free an entry that was never published with
 * kprim_cache_entry_put().
 *
 * Return: the entry, or NULL when out of memory.
 */
struct kprim_cache_entry *kprim_cache_entry_alloc(const u8 *key, u32 key_len,
						  u32 value_len)
{
	struct kprim_cache_entry *e;
	size_t len = (size_t)key_len + value_len;
	u8 *buf;

	/* Also allocates the storing task's cgroup's lists in the list_lru. */
	e = kmem_cache_alloc_lru(kprim_cache_entry_slab, &kprim_cache_lru,
				 GFP_KERNEL_ACCOUNT);
	if (!e)
		return NULL;
	if (len <= KPRIM_CACHE_INLINE) {
		buf = e->data;
	} else {
		buf = kvmalloc(len, GFP_KERNEL_ACCOUNT);
		if (!buf) {
			kmem_cache_free(kprim_cache_entry_slab, e);
			return NULL;
		}
	}
	INIT_LIST_HEAD(&e->lru);
	INIT_LIST_HEAD(&e->mlru);
	e->cache = NULL;
	refcount_set(&e->ref, 1);
	e->referenced = false;
	e->linked = false;
	e->pinned = false;
	e->on_lru = false;
	e->key_len = key_len;
	e->value_len = value_len;
	e->mem = KPRIM_CACHE_ENTRY_COST;
	if (buf != e->data)
		e->mem += kprim_cache_buf_mem(buf, len);
	e->cas = 0;
	e->expires = KPRIM_CACHE_NEVER;
	e->key = buf;
	e->value = buf + key_len;
	memcpy(e->key, key, key_len);
	return e;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_entry_alloc);

/**
 * kprim_cache_entry_put() - drop a reference to an entry.
 * @e: the entry
 *
 * The last reference frees the entry after an RCU grace period, since a
 * lockless lookup may still be looking at it.
 */
void kprim_cache_entry_put(struct kprim_cache_entry *e)
{
	if (refcount_dec_and_test(&e->ref))
		call_rcu(&e->rcu, kprim_cache_entry_free_rcu);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_entry_put);

/*
 * Linking and unlinking, all under cache->lock.
 */

static inline struct kprim_cache_entry *
kprim_cache_exp_entry(const struct rb_node *node)
{
	return rb_entry(node, struct kprim_cache_entry, exp_node);
}

static bool kprim_cache_expires_less(struct rb_node *a,
				     const struct rb_node *b)
{
	return kprim_cache_exp_entry(a)->expires <
	       kprim_cache_exp_entry(b)->expires;
}

/* Account @e as live (it is already in the table). */
static void kprim_cache_account_locked(struct kprim_cache *cache,
				       struct kprim_cache_entry *e)
{
	lockdep_assert_held(&cache->lock);
	e->linked = true;
	e->cache = cache;
	if (!e->pinned && !(cache->flags & KPRIM_CACHE_F_MANUAL))
		e->on_lru = kprim_list_lru_add_obj(&kprim_cache_lru, &e->mlru);
	if (e->pinned) {
		list_add(&e->lru, &cache->pinned);
		cache->nr_pinned++;
		cache->pinned_bytes += kprim_cache_charge(e);
		cache->pinned_mem += e->mem;
	} else {
		list_add(&e->lru, &cache->lru);
	}
	cache->bytes += kprim_cache_charge(e);
	cache->entries++;
	cache->mem += e->mem;
	if (e->expires != KPRIM_CACHE_NEVER)
		rb_add_cached(&e->exp_node, &cache->expiry,
			      kprim_cache_expires_less);
}

/*
 * Forget @e (already out of the table), keeping the table's reference for
 * the caller to drop. The shrinker's walk takes @e off the list_lru itself
 * (it holds the list_lru's lock) before it calls this.
 */
static void kprim_cache_drop_locked(struct kprim_cache *cache,
				    struct kprim_cache_entry *e)
{
	lockdep_assert_held(&cache->lock);
	e->linked = false;
	if (e->on_lru) {
		kprim_list_lru_del_obj(&kprim_cache_lru, &e->mlru);
		e->on_lru = false;
	}
	list_del_init(&e->lru);
	if (e->pinned) {
		cache->nr_pinned--;
		cache->pinned_bytes -= kprim_cache_charge(e);
		cache->pinned_mem -= e->mem;
	}
	cache->bytes -= kprim_cache_charge(e);
	cache->entries--;
	cache->mem -= e->mem;
	if (e->expires != KPRIM_CACHE_NEVER)
		rb_erase_cached(&e->exp_node, &cache->expiry);
}

/* Forget @e (already out of the table) and drop the table's reference. */
static void kprim_cache_forget_locked(struct kprim_cache *cache,
				      struct kprim_cache_entry *e)
{
	kprim_cache_drop_locked(cache, e);
	kprim_cache_entry_put(e);
}

static void kprim_cache_unlink_locked(struct kprim_cache *cache,
				      struct kprim_cache_entry *e)
{
	WARN_ON_ONCE(rhashtable_remove_fast(&cache->ht, &e->node,
					    kprim_cache_rht_params));
	kprim_cache_forget_locked(cache, e);
}

/*
 * The live entry for @k, or NULL. An expired entry found on the way is
 * freed (and counted) here, so writers never act on one.
 */
static struct kprim_cache_entry *
kprim_cache_find_locked(struct kprim_cache *cache,
			const struct kprim_cache_lkey *k, s64 now)
{
	struct kprim_cache_entry *e;

	lockdep_assert_held(&cache->lock);
	e = rhashtable_lookup_fast(&cache->ht, k, kprim_cache_rht_params);
	if (e && kprim_cache_expired(e, now)) {
		trace_kprim_cache_evict(cache, e, KPRIM_EVICT_EXPIRED);
		kprim_cache_unlink_locked(cache, e);
		cache->expirations++;
		e = NULL;
	}
	return e;
}

/**
 * struct kprim_cache_evict - one eviction's targets and budget.
 * @max_bytes:	evict while cache->bytes is above this
 * @max_entries: or cache->entries is above this
 * @max_mem:	or cache->mem is above this
 * @steps:	entries freed or moved left in this lock hold
 * @chances:	second-chance moves left in the whole operation; past them
 *		referenced entries are evicted too, so gets cannot stall it
 * @keep:	never evicted (the entry a store replaces), or NULL
 * @freed:	entries freed so far
 * @reason:	KPRIM_EVICT_* of what it evicts (0: a store's room)
 */
struct kprim_cache_evict {
	u64 max_bytes;
	u64 max_entries;
	u64 max_mem;
	unsigned long steps;
	u64 chances;
	const struct kprim_cache_entry *keep;
	unsigned long freed;
	int reason;
};

static bool kprim_cache_over(const struct kprim_cache *cache,
			     const struct kprim_cache_evict *ev)
{
	return cache->bytes > ev->max_bytes ||
	       cache->entries > ev->max_entries || cache->mem > ev->max_mem;
}

/*
 * Evict from the LRU tail until the cache is within @ev's targets or
 * @ev->steps entries have been freed or moved: the work under the lock is
 * bounded by the caller's budget, never by the size of the cache.
 * Returns false when nothing evictable is left.
 */
static bool kprim_cache_evict_locked(struct kprim_cache *cache,
				     struct kprim_cache_evict *ev, s64 now)
{
	struct kprim_cache_entry *e;

	lockdep_assert_held(&cache->lock);
	for (; ev->steps && kprim_cache_over(cache, ev); ev->steps--) {
		/*
		 * Entries a flush is unlinking still count: they go first
		 * (a flush would free them anyway), else a store could find
		 * only @keep on the LRU while over the limits.
		 */
		if (!list_empty(&cache->doomed)) {
			e = list_last_entry(&cache->doomed,
					    struct kprim_cache_entry, lru);
			if (e != ev->keep) {
				trace_kprim_cache_evict(cache, e,
							KPRIM_EVICT_FLUSHED);
				kprim_cache_unlink_locked(cache, e);
				ev->freed++;
				continue;
			}
			if (!list_is_singular(&cache->doomed)) {
				list_move(&e->lru, &cache->doomed);
				continue;
			}
			/* Only @keep is doomed: on to the LRU. */
		}
		if (list_empty(&cache->lru))
			return false;
		e = list_last_entry(&cache->lru, struct kprim_cache_entry, lru);
		if (kprim_cache_expired(e, now)) {
			trace_kprim_cache_evict(cache, e, KPRIM_EVICT_EXPIRED);
			kprim_cache_unlink_locked(cache, e);
			cache->expirations++;
			ev->freed++;
			continue;
		}
		if (e == ev->keep || (ev->chances && READ_ONCE(e->referenced))) {
			/* Nothing but @keep is left to evict. */
			if (e == ev->keep && list_is_singular(&cache->lru))
				return false;
			WRITE_ONCE(e->referenced, false);
			list_move(&e->lru, &cache->lru);
			if (ev->chances)
				ev->chances--;
			continue;
		}
		trace_kprim_cache_evict(cache, e, ev->reason);
		kprim_cache_unlink_locked(cache, e);
		cache->evictions++;
		ev->freed++;
	}
	return true;
}

/*
 * Make room under the lock for @e, which is to replace @old (or be added
 * when @old is NULL), evicting at most KPRIM_CACHE_EVICT_BATCH entries in
 * this lock hold. @ev->chances and *@budget start at 0 and carry the
 * operation's budget across lock holds. @old is never evicted: the
 * caller's decision rests on it.
 *
 * Returns 0 when @e fits now; -EAGAIN when the caller should drop the
 * lock, reschedule and try again; -ENOSPC when no room can be made: the
 * budget of the whole operation (four steps per entry: its eviction, two
 * second chances, a pass of @old) is spent, or nothing evictable is left.
 */
static int kprim_cache_room_locked(struct kprim_cache *cache,
				   const struct kprim_cache_entry *old,
				   const struct kprim_cache_entry *e,
				   struct kprim_cache_evict *ev,
				   unsigned long *budget, s64 now)
{
	u64 ob = old ? kprim_cache_charge(old) : 0;
	u64 eb = kprim_cache_charge(e);
	unsigned long before;
	bool more;

	lockdep_assert_held(&cache->lock);
	/* The caller checked eb <= max_bytes; the rounding of a big buffer
	 * may still not fit the memory limit.
	 */
	if (e->mem > cache->max_mem)
		return -E2BIG;
	/*
	 * Pinned entries may take half of each limit, so they can never
	 * crowd out the evictable half of the cache.
	 */
	if (e->pinned &&
	    (cache->nr_pinned + 1 - (old && old->pinned) >
	     cache->params.max_entries / 2 ||
	     cache->pinned_bytes + eb - (old && old->pinned ? ob : 0) >
	     cache->params.max_bytes / 2 ||
	     cache->pinned_mem + e->mem - (old && old->pinned ? old->mem : 0) >
	     cache->max_mem / 2))
		return -ENOSPC;
	/*
	 * Eviction can free everything but the pinned entries (and @old,
	 * which @e replaces). A store that would not fit even then fails
	 * before it evicts anything: a failed store changes nothing.
	 */
	if (cache->pinned_bytes - (old && old->pinned ? ob : 0) + eb >
	    cache->params.max_bytes ||
	    cache->pinned_mem - (old && old->pinned ? old->mem : 0) + e->mem >
	    cache->max_mem)
		return -ENOSPC;
	ev->max_bytes = cache->params.max_bytes - eb + ob;
	ev->max_entries = cache->params.max_entries - (old ? 0 : 1);
	ev->max_mem = cache->max_mem - e->mem + (old ? old->mem : 0);
	ev->keep = old;
	if (!kprim_cache_over(cache, ev))
		return 0;
	if (!*budget) {
		/* First time over the limits: the whole operation's budget. */
		ev->chances = 2 * cache->entries + 2;
		*budget = 4 * cache->entries + 4 + KPRIM_CACHE_EVICT_BATCH;
	}
	ev->steps = min_t(unsigned long, *budget, KPRIM_CACHE_EVICT_BATCH);
	before = ev->steps;
	more = kprim_cache_evict_locked(cache, ev, now);
	*budget -= before - ev->steps;
	if (!kprim_cache_over(cache, ev))
		return 0;
	return more && *budget ? -EAGAIN : -ENOSPC;
}

/*
 * Arm the sweep for the first expiry, or KPRIM_CACHE_SWEEP_MIN_NS from
 * @now if that is sooner (expiries closer than that are freed together),
 * unless it is armed for earlier already.
 */
static void kprim_cache_arm_sweep_locked(struct kprim_cache *cache, s64 now)
{
	struct rb_node *first = rb_first_cached(&cache->expiry);
	s64 at;

	lockdep_assert_held(&cache->lock);
	if (!first || (cache->flags & KPRIM_CACHE_F_MANUAL))
		return;
	at = max(kprim_cache_exp_entry(first)->expires,
		 now + KPRIM_CACHE_SWEEP_MIN_NS);
	if (delayed_work_pending(&cache->sweep) && at >= cache->sweep_at)
		return;
	cache->sweep_at = at;
	mod_delayed_work(system_unbound_wq, &cache->sweep,
			 min_t(u64, nsecs_to_jiffies(at - now) + 1,
			       KPRIM_CACHE_SWEEP_MAX_DELAY));
}

/* A version no entry of @cache has had. */
static u64 kprim_cache_new_cas(struct kprim_cache *cache)
{
	return atomic64_inc_return(&cache->next_cas);
}

/*
 * Publish @e in place of @old (or as new when @old is NULL); the caller
 * made room (kprim_cache_room_locked()). On error @e is not published and
 * still owned by the caller: -ENOMEM when the table must grow first and
 * could not without sleeping (rhashtable's GFP_ATOMIC table: -ENOMEM, or
 * -EBUSY while a resize is already under way); the caller may wait for
 * the table's own resize (kprim_cache_wait_grow()) and try again.
 */
static int kprim_cache_publish_locked(struct kprim_cache *cache,
				      struct kprim_cache_entry *old,
				      struct kprim_cache_entry *e, s64 now)
{
	struct kprim_cache_lkey k = { .data = e->key, .len = e->key_len };
	int ret;

	lockdep_assert_held(&cache->lock);
	/* A version already reported to the caller is kept. */
	if (!e->cas)
		e->cas = kprim_cache_new_cas(cache);
	if (old) {
		ret = rhashtable_replace_fast(&cache->ht, &old->node, &e->node,
					      kprim_cache_rht_params);
		if (WARN_ON_ONCE(ret))
			return ret;
		kprim_cache_forget_locked(cache, old);
	} else {
		ret = rhashtable_lookup_insert_key(&cache->ht, &k, &e->node,
						   kprim_cache_rht_params);
		if (ret == -EBUSY)
			ret = -ENOMEM;
		if (ret)
			return ret;
	}
	kprim_cache_account_locked(cache, e);
	if (e->expires != KPRIM_CACHE_NEVER)
		kprim_cache_arm_sweep_locked(cache, now);
	return 0;
}

/*
 * After a publish failed with -ENOMEM (the table could not grow without
 * sleeping): wait, unlocked, for the table's deferred resize, which
 * allocates with GFP_KERNEL. Returns whether to try once more.
 */
static bool kprim_cache_wait_grow(struct kprim_cache *cache, int *tries)
{
	if ((*tries)++ >= KPRIM_CACHE_GROW_TRIES)
		return false;
	flush_work(&cache->ht.run_work);
	return true;
}

/*
 * The core operations: time is a parameter.
 */

/**
 * kprim_cache_expiry() - the absolute expiry of an entry stored at @now.
 * @cache:	the cache (for its default TTL)
 * @has_ttl:	use @ttl_ns rather than the cache's default
 * @ttl_ns:	relative TTL; 0 = never expires
 * @now:	the current CLOCK_MONOTONIC time in ns
 * @expires:	out: absolute expiry or KPRIM_CACHE_NEVER
 *
 * Return: 0, or -EOVERFLOW when @now + TTL does not fit in an s64.
 */
int kprim_cache_expiry(const struct kprim_cache *cache, bool has_ttl,
		       u64 ttl_ns, s64 now, s64 *expires)
{
	if (!has_ttl)
		ttl_ns = cache->params.default_ttl_ns;
	if (!ttl_ns) {
		*expires = KPRIM_CACHE_NEVER;
		return 0;
	}
	if (now < 0 || ttl_ns >= (u64)(S64_MAX - now))
		return -EOVERFLOW;
	*expires = now + (s64)ttl_ns;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_expiry);

/**
 * kprim_cache_lookup() - find a live entry without taking a lock.
 * @cache:	the cache
 * @key:	the key
 * @key_len:	its length
 * @now:	the current time; an entry with expires <= @now is a miss
 *
 * Counts a hit or a miss and marks the entry referenced for eviction.
 *
 * Return: the entry with a reference (drop it with
 * kprim_cache_entry_put()), or ERR_PTR(-ENOENT).
 */
struct kprim_cache_entry *kprim_cache_lookup(struct kprim_cache *cache,
					     const u8 *key, u32 key_len,
					     s64 now)
{
	struct kprim_cache_lkey k = { .data = key, .len = key_len };
	struct kprim_cache_entry *e;
	unsigned int tries = 0;

	rcu_read_lock();
	for (;;) {
		e = rhashtable_lookup(&cache->ht, &k, kprim_cache_rht_params);
		if (!e || kprim_cache_expired(e, now)) {
			e = NULL;
			break;
		}
		if (refcount_inc_not_zero(&e->ref))
			break;
		/*
		 * Its last reference is gone: a store replaced it (or a
		 * delete removed it) after we found it. The key may still
		 * be there in a new entry: look again rather than report a
		 * miss for a key that never went away. Each retry needs
		 * another store to finish inside this window, so a few
		 * suffice; the bound keeps a store storm from holding us in
		 * the RCU read section (then: a miss, as for a delete).
		 */
		if (++tries > KPRIM_CACHE_LOOKUP_RETRIES) {
			e = NULL;
			break;
		}
	}
	rcu_read_unlock();
	trace_kprim_cache_access(cache, e, key_len);
	if (!e) {
		this_cpu_inc(cache->stats->misses);
		return ERR_PTR(-ENOENT);
	}
	this_cpu_inc(cache->stats->hits);
	if (!READ_ONCE(e->referenced))
		WRITE_ONCE(e->referenced, true);
	return e;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_lookup);

/**
 * kprim_cache_mget_check() - validate a KPRIM_IOC_CACHE_MGET argument.
 * @args:	the argument as copied in
 *
 * Return: 0; -EINVAL for flags, reserved, a count of 0 or an entry size
 * below the first version; -E2BIG for more than KPRIM_CACHE_MGET_MAX
 * entries or an entry size above a page.
 */
int kprim_cache_mget_check(const struct kprim_cache_mget *args)
{
	if (args->flags || args->reserved || !args->count ||
	    args->entry_size < KPRIM_SIZE_CACHE_MGET_ENTRY_VER0)
		return -EINVAL;
	if (args->count > KPRIM_CACHE_MGET_MAX || args->entry_size > PAGE_SIZE)
		return -E2BIG;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_mget_check);

/**
 * kprim_cache_mget_lookup() - one key of a multi-get, up to the copy-out.
 * @cache:	the cache
 * @ent:	the request: key_len and value_len (the capacity) in; result,
 *		and on a hit value_len, ttl_ns and cas out
 * @key:	the key bytes, already copied in
 * @now:	the current time
 *
 * Looks up like a single get (kprim_cache_lookup(): counted as a hit or
 * a miss). The value cannot be copied to userspace under RCU, so a hit
 * that fits the buffer returns the entry with a reference for the caller
 * to copy from outside any lock.
 *
 * Return: the entry, with a reference (drop it with
 * kprim_cache_entry_put()), when its value is to be copied out; NULL when
 * there is nothing to copy: @ent->result is then -ENOENT or -EMSGSIZE
 * (with the needed size in @ent->value_len).
 */
struct kprim_cache_entry *
kprim_cache_mget_lookup(struct kprim_cache *cache,
			struct kprim_cache_mget_entry *ent, const u8 *key,
			s64 now)
{
	struct kprim_cache_entry *e;
	s64 expires;

	e = kprim_cache_lookup(cache, key, ent->key_len, now);
	if (IS_ERR(e)) {
		ent->result = PTR_ERR(e);
		return NULL;
	}
	if (ent->value_len < e->value_len) {
		ent->value_len = e->value_len;
		ent->result = -EMSGSIZE;
		kprim_cache_entry_put(e);
		return NULL;
	}
	ent->result = 0;
	ent->value_len = e->value_len;
	ent->cas = e->cas;
	expires = READ_ONCE(e->expires);
	/* As for a single get: the entry was live at now. */
	ent->ttl_ns = expires == KPRIM_CACHE_NEVER ? 0 :
		      expires > now ? expires - now : 1;
	return e;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_mget_lookup);

/**
 * kprim_cache_store_entry() - publish a filled entry.
 * @cache:	the cache
 * @e:		from kprim_cache_entry_alloc(), value filled in; consumed
 *		whatever the outcome
 * @op:		enum kprim_cache_op
 * @expires:	absolute expiry (kprim_cache_expiry())
 * @cas:	in: the expected version for KPRIM_CACHE_CAS; out: the new one
 * @now:	the current time
 *
 * Return: 0; -EINVAL for an unknown @op; -E2BIG when the entry alone is
 * beyond the cache's limits; -EEXIST (ADD, key live); -ENOENT (REPLACE,
 * CAS: no live key); -ESTALE (CAS: version mismatch); -ENOSPC when no room
 * could be made within the eviction budget (concurrent writers); -ENOMEM
 * when the hash table cannot grow to take the entry, even after waiting
 * for its resize (entries evicted to make room for it stay evicted: a
 * cache never promises to keep an entry).
 */
int kprim_cache_store_entry(struct kprim_cache *cache,
			    struct kprim_cache_entry *e, u32 op, s64 expires,
			    u64 *cas, s64 now)
{
	struct kprim_cache_lkey k = { .data = e->key, .len = e->key_len };
	struct kprim_cache_evict ev = { };
	struct kprim_cache_entry *old;
	unsigned long budget = 0;
	int ret = 0, grow = 0;

	if (op > KPRIM_CACHE_CAS) {
		ret = -EINVAL;
		goto put;
	}
	if (e->value_len > cache->params.max_value ||
	    kprim_cache_charge(e) > cache->params.max_bytes) {
		ret = -E2BIG;
		goto put;
	}
	e->expires = expires;

	/*
	 * Make room first, at most KPRIM_CACHE_EVICT_BATCH entries per lock
	 * hold; between holds anything may change, so decide afresh.
	 */
	for (;;) {
		spin_lock(&cache->lock);
		old = kprim_cache_find_locked(cache, &k, now);
		switch (op) {
		case KPRIM_CACHE_ADD:
			if (old)
				ret = -EEXIST;
			break;
		case KPRIM_CACHE_REPLACE:
			if (!old)
				ret = -ENOENT;
			break;
		case KPRIM_CACHE_CAS:
			if (!old)
				ret = -ENOENT;
			else if (old->cas != *cas)
				ret = -ESTALE;
			break;
		}
		if (!ret)
			ret = kprim_cache_room_locked(cache, old, e, &ev,
						      &budget, now);
		if (!ret)
			ret = kprim_cache_publish_locked(cache, old, e, now);
		if (!ret)
			*cas = e->cas;
		spin_unlock(&cache->lock);
		if (ret == -ENOMEM && kprim_cache_wait_grow(cache, &grow)) {
			ret = 0;
			continue;
		}
		if (ret != -EAGAIN)
			break;
		ret = 0;
		cond_resched();
	}
	if (!ret)
		return 0;
put:
	kprim_cache_entry_put(e);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_store_entry);

/**
 * kprim_cache_delete() - remove a key.
 * @cache:	the cache
 * @key:	the key
 * @key_len:	its length
 * @now:	the current time
 *
 * Return: 0, or -ENOENT when the key is absent or expired.
 */
int kprim_cache_delete(struct kprim_cache *cache, const u8 *key, u32 key_len,
		       s64 now)
{
	struct kprim_cache_lkey k = { .data = key, .len = key_len };
	struct kprim_cache_entry *e;

	spin_lock(&cache->lock);
	e = kprim_cache_find_locked(cache, &k, now);
	if (e)
		kprim_cache_unlink_locked(cache, e);
	spin_unlock(&cache->lock);
	return e ? 0 : -ENOENT;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_delete);

/**
 * kprim_cache_touch() - give a live key a new expiry.
 * @cache:	the cache
 * @key:	the key
 * @key_len:	its length
 * @expires:	new absolute expiry (kprim_cache_expiry())
 * @now:	the current time
 *
 * The value and the version are unchanged.
 *
 * Return: 0, or -ENOENT when the key is absent or expired.
 */
int kprim_cache_touch(struct kprim_cache *cache, const u8 *key, u32 key_len,
		      s64 expires, s64 now)
{
	struct kprim_cache_lkey k = { .data = key, .len = key_len };
	struct kprim_cache_entry *e;

	spin_lock(&cache->lock);
	e = kprim_cache_find_locked(cache, &k, now);
	if (e) {
		if (e->expires != KPRIM_CACHE_NEVER)
			rb_erase_cached(&e->exp_node, &cache->expiry);
		WRITE_ONCE(e->expires, expires);
		if (expires != KPRIM_CACHE_NEVER)
			rb_add_cached(&e->exp_node, &cache->expiry,
				      kprim_cache_expires_less);
		WRITE_ONCE(e->referenced, true);
		kprim_cache_arm_sweep_locked(cache, now);
	}
	spin_unlock(&cache->lock);
	return e ? 0 : -ENOENT;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_touch);

/**
 * kprim_cache_parse_u64() - parse a counter value, memcached style.
 * @s:		the bytes
 * @len:	1..20 ASCII decimal digits (leading zeros allowed), nothing else
 * @val:	out: the number
 *
 * Return: 0, or -EINVAL when @s is empty, longer than 20 bytes, holds a
 * non-digit or does not fit in a u64.
 */
int kprim_cache_parse_u64(const u8 *s, u32 len, u64 *val)
{
	u64 v = 0;
	u32 i;

	if (!len || len > KPRIM_CACHE_U64_DIGITS)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (check_mul_overflow(v, 10ULL, &v) ||
		    check_add_overflow(v, (u64)(s[i] - '0'), &v))
			return -EINVAL;
	}
	*val = v;
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_parse_u64);

/**
 * kprim_cache_incr_report() - add to or subtract from a decimal counter,
 *	reporting the result before it is published.
 * @cache:	the cache
 * @key:	the key
 * @key_len:	its length
 * @flags:	KPRIM_CACHE_DECR, KPRIM_CACHE_INCR_CREATE
 * @delta:	the amount; incr wraps modulo 2^64, decr stops at 0
 * @initial:	with KPRIM_CACHE_INCR_CREATE, stored (as is, @delta not
 *		applied) when the key is absent, with the default TTL
 * @now:	the current time
 * @value:	out: the new value
 * @cas:	out: the new version
 * @report:	NULL, or called without the lock with the new value and
 *		version before they are published (to copy them out): if it
 *		fails, the counter is left alone and its error returned. If
 *		the counter changes before the result is published, the new
 *		result is computed and reported again.
 * @arg:	argument of @report
 *
 * The entry keeps its expiry; it gets a new version.
 *
 * Return: 0; -EINVAL for unknown @flags or a value that is not a decimal
 * u64 of at most 20 digits; -ENOENT when absent without
 * KPRIM_CACHE_INCR_CREATE; -EOVERFLOW when the default TTL overflows;
 * -E2BIG when the number does not fit max_value/max_bytes; -ENOSPC as for
 * kprim_cache_store_entry(); -ENOMEM; @report's error; -ERESTARTSYS
 * when a signal is pending while the counter keeps changing under it
 * (nothing was published: the call is restarted or fails with -EINTR).
 */
int kprim_cache_incr_report(struct kprim_cache *cache, const u8 *key,
			    u32 key_len, u32 flags, u64 delta, u64 initial,
			    s64 now, u64 *value, u64 *cas,
			    int (*report)(void *arg, u64 value, u64 cas),
			    void *arg)
{
	struct kprim_cache_lkey k = { .data = key, .len = key_len };
	char digits[KPRIM_CACHE_U64_DIGITS + 1];
	struct kprim_cache_entry *e, *old;
	const struct kprim_cache_entry *seen = NULL;
	struct kprim_cache_evict ev = { };
	unsigned long budget = 0;
	bool reported = false;
	u64 seen_cas = 0;
	int ret, n, grow = 0;
	s64 expires;
	u64 v;

	if (flags & ~(KPRIM_CACHE_DECR | KPRIM_CACHE_INCR_CREATE))
		return -EINVAL;
	e = kprim_cache_entry_alloc(key, key_len, KPRIM_CACHE_U64_DIGITS);
	if (!e)
		return -ENOMEM;

	/* Like a store: room first, in bounded lock holds, decided afresh. */
again:
	spin_lock(&cache->lock);
	old = kprim_cache_find_locked(cache, &k, now);
	/* Versions are never reused: same entry and version, same counter. */
	if (reported && (old != seen || (old && old->cas != seen_cas)))
		reported = false;
	if (!old) {
		ret = -ENOENT;
		if (!(flags & KPRIM_CACHE_INCR_CREATE))
			goto unlock;
		ret = kprim_cache_expiry(cache, false, 0, now, &expires);
		if (ret)
			goto unlock;
		v = initial;
	} else {
		ret = kprim_cache_parse_u64(old->value, old->value_len, &v);
		if (ret)
			goto unlock;
		if (flags & KPRIM_CACHE_DECR)
			v = v > delta ? v - delta : 0;
		else
			v += delta;	/* wraps, like memcached */
		expires = old->expires;
	}
	n = snprintf(digits, sizeof(digits), "%llu", v);
	memcpy(e->value, digits, n);
	e->value_len = n;
	e->expires = expires;
	/* A counter stays pinned if it was. */
	e->pinned = old && old->pinned;
	ret = -E2BIG;
	if (e->value_len > cache->params.max_value ||
	    kprim_cache_charge(e) > cache->params.max_bytes)
		goto unlock;
	if (report && !reported) {
		/*
		 * The caller learns the result before anyone else can see
		 * it: a result that cannot be reported is not published.
		 */
		seen = old;
		seen_cas = old ? old->cas : 0;
		if (!e->cas)
			e->cas = kprim_cache_new_cas(cache);
		spin_unlock(&cache->lock);
		ret = report(arg, v, e->cas);
		if (ret)
			goto put;
		reported = true;
		/* Nothing is published yet: a signal may end or restart it. */
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			goto put;
		}
		cond_resched();
		goto again;
	}
	ret = kprim_cache_room_locked(cache, old, e, &ev, &budget, now);
	if (ret == -EAGAIN) {
		spin_unlock(&cache->lock);
		cond_resched();
		goto again;
	}
	if (!ret)
		ret = kprim_cache_publish_locked(cache, old, e, now);
	if (ret == -ENOMEM) {
		spin_unlock(&cache->lock);
		if (kprim_cache_wait_grow(cache, &grow))
			goto again;
		goto put;
	}
	if (ret)
		goto unlock;
	*value = v;
	*cas = e->cas;
	spin_unlock(&cache->lock);
	return 0;

unlock:
	spin_unlock(&cache->lock);
put:
	kprim_cache_entry_put(e);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_incr_report);

/**
 * kprim_cache_incr() - add to or subtract from a decimal counter.
 * @cache:	the cache
 * @key:	the key
 * @key_len:	its length
 * @flags:	KPRIM_CACHE_DECR, KPRIM_CACHE_INCR_CREATE
 * @delta:	the amount; incr wraps modulo 2^64, decr stops at 0
 * @initial:	with KPRIM_CACHE_INCR_CREATE, stored when the key is absent
 * @now:	the current time
 * @value:	out: the new value
 * @cas:	out: the new version
 *
 * kprim_cache_incr_report() with nothing to report to.
 *
 * Return: as kprim_cache_incr_report().
 */
int kprim_cache_incr(struct kprim_cache *cache, const u8 *key, u32 key_len,
		     u32 flags, u64 delta, u64 initial, s64 now, u64 *value,
		     u64 *cas)
{
	return kprim_cache_incr_report(cache, key, key_len, flags, delta,
				       initial, now, value, cas, NULL, NULL);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_incr);

/**
 * kprim_cache_flush() - remove every entry.
 * @cache: the cache
 *
 * Entries present when the flush starts move to cache->doomed and are
 * removed in batches, dropping the lock and rescheduling between batches;
 * entries stored meanwhile may survive. Writers may unlink doomed entries
 * too (replace, delete, eviction), so several flushes and writers share
 * the work: each flush unlinks at most as many entries as the cache held
 * when it started, and together the flushes empty cache->doomed. Flushed
 * entries count neither as evictions nor expirations.
 */
void kprim_cache_flush(struct kprim_cache *cache)
{
	struct kprim_cache_entry *e;
	u64 left;
	bool more;
	int i;

	spin_lock(&cache->lock);
	list_splice_init(&cache->lru, &cache->doomed);
	list_splice_init(&cache->pinned, &cache->doomed);
	left = cache->entries;
	spin_unlock(&cache->lock);
	do {
		spin_lock(&cache->lock);
		for (i = 0; i < KPRIM_CACHE_FLUSH_BATCH && left &&
		     !list_empty(&cache->doomed); i++, left--) {
			e = list_first_entry(&cache->doomed,
					     struct kprim_cache_entry, lru);
			trace_kprim_cache_evict(cache, e, KPRIM_EVICT_FLUSHED);
			kprim_cache_unlink_locked(cache, e);
		}
		more = left && !list_empty(&cache->doomed);
		spin_unlock(&cache->lock);
		cond_resched();
	} while (more);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_flush);

/**
 * kprim_cache_sweep() - free the entries expired at @now.
 * @cache:	the cache
 * @now:	the current time
 *
 * Pops the soonest expiries off cache->expiry while they are due, at most
 * KPRIM_CACHE_SWEEP_BATCH per lock hold, rescheduling between batches: the
 * cost is proportional to what expires, not to the size of the cache.
 * Entries stored meanwhile expire after @now, so it ends. Must be called
 * from process context.
 *
 * Return: the number of entries freed.
 */
unsigned long kprim_cache_sweep(struct kprim_cache *cache, s64 now)
{
	struct kprim_cache_entry *e;
	unsigned long freed = 0;
	struct rb_node *first;
	bool more = true;
	int i;

	while (more) {
		spin_lock(&cache->lock);
		for (i = 0; i < KPRIM_CACHE_SWEEP_BATCH; i++) {
			first = rb_first_cached(&cache->expiry);
			if (first)
				cache->sweep_seen++;
			e = first ? kprim_cache_exp_entry(first) : NULL;
			if (!e || !kprim_cache_expired(e, now))
				break;
			trace_kprim_cache_evict(cache, e, KPRIM_EVICT_EXPIRED);
			kprim_cache_unlink_locked(cache, e);
			cache->expirations++;
			freed++;
		}
		more = i == KPRIM_CACHE_SWEEP_BATCH;
		spin_unlock(&cache->lock);
		if (more)
			cond_resched();
	}
	return freed;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_sweep);

static void kprim_cache_sweep_work(struct work_struct *work)
{
	struct kprim_cache *cache = container_of(to_delayed_work(work),
						 struct kprim_cache, sweep);
	s64 now = kprim_cache_now();

	kprim_cache_sweep(cache, now);
	spin_lock(&cache->lock);
	kprim_cache_arm_sweep_locked(cache, now);
	spin_unlock(&cache->lock);
}

/**
 * kprim_cache_shrink() - evict up to @nr least recently used entries.
 * @cache:	the cache
 * @nr:		how many at most; one call frees or moves at most
 *		2 * KPRIM_CACHE_SHRINK_BATCH entries under the lock
 * @now:	the current time (expired entries go first)
 *
 * Return: the number of entries freed.
 */
unsigned long kprim_cache_shrink(struct kprim_cache *cache, unsigned long nr,
				 s64 now)
{
	struct kprim_cache_evict ev = {
		.max_bytes = U64_MAX,
		.max_mem = U64_MAX,
		.chances = nr,
		.reason = KPRIM_EVICT_SHRINKER,
		/* Bounded like a store's eviction, whatever @nr is. */
		.steps = min_t(unsigned long, nr, KPRIM_CACHE_SHRINK_BATCH) * 2,
	};

	spin_lock(&cache->lock);
	ev.max_entries = cache->entries > nr ? cache->entries - nr : 0;
	kprim_cache_evict_locked(cache, &ev, now);
	spin_unlock(&cache->lock);
	return ev.freed;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_shrink);

/**
 * kprim_cache_get_info() - parameters and statistics.
 * @cache:	the cache
 * @info:	out: everything but the size/flags header
 */
void kprim_cache_get_info(struct kprim_cache *cache,
			  struct kprim_cache_info *info)
{
	u64 hits = 0, misses = 0;
	int cpu;

	for_each_possible_cpu(cpu) {
		const struct kprim_cache_pcpu *s = per_cpu_ptr(cache->stats, cpu);

		hits += READ_ONCE(s->hits);
		misses += READ_ONCE(s->misses);
	}
	info->params = cache->params;
	info->hits = hits;
	info->misses = misses;
	spin_lock(&cache->lock);
	info->bytes = cache->bytes;
	info->entries = cache->entries;
	info->evictions = cache->evictions;
	info->expirations = cache->expirations;
	spin_unlock(&cache->lock);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_get_info);

/*
 * Creation and teardown.
 */

/**
 * kprim_cache_reservation() - the memory a cache may come to use.
 * @p:	its effective parameters (defaults filled in)
 *
 * Its entries' memory is held to max_bytes + max_entries *
 * KPRIM_CACHE_ENTRY_COST (cache->max_mem); the cache itself, its per-CPU
 * counters and its smallest hash table come on top.
 *
 * Return: the bytes to reserve against the owner's quota.
 */
u64 kprim_cache_reservation(const struct kprim_cache_params *p)
{
	return p->max_bytes + p->max_entries * KPRIM_CACHE_ENTRY_COST +
	       sizeof(struct kprim_cache) +
	       nr_cpu_ids * sizeof(struct kprim_cache_pcpu) + PAGE_SIZE;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_reservation);

static int kprim_cache_check_params(struct kprim_cache_params *p)
{
	if (!p->max_bytes)
		p->max_bytes = KPRIM_CACHE_DEF_BYTES;
	if (!p->max_entries)
		p->max_entries = KPRIM_CACHE_DEF_ENTRIES;
	if (!p->max_value)
		p->max_value = min(KPRIM_CACHE_DEF_VALUE, p->max_bytes);
	if (p->max_bytes > KPRIM_CACHE_MAX_BYTES ||
	    p->max_entries > KPRIM_CACHE_MAX_ENTRIES ||
	    p->max_value > KPRIM_CACHE_MAX_VALUE ||
	    p->max_value > p->max_bytes ||
	    p->default_ttl_ns > (u64)S64_MAX)
		return -EINVAL;
	return 0;
}

/**
 * kprim_cache_alloc() - create an empty cache.
 * @p:		parameters; a 0 size field picks its default
 *		(max_value: min(1 MiB, max_bytes))
 * @flags:	KPRIM_CACHE_F_MANUAL: no background sweep and not shrinkable
 *		(for tests on a fake clock)
 *
 * Return: the cache, ERR_PTR(-EINVAL) for parameters beyond the caps
 * (max_bytes 1 GiB, max_entries 2^20, max_value 64 MiB, max_value >
 * max_bytes, default_ttl_ns > S64_MAX), ERR_PTR(-ENOMEM).
 */
struct kprim_cache *kprim_cache_alloc(const struct kprim_cache_params *p,
				      u32 flags)
{
	struct kprim_cache *cache;
	int ret;

	if (flags & ~KPRIM_CACHE_F_MANUAL)
		return ERR_PTR(-EINVAL);
	cache = kzalloc(sizeof(*cache), GFP_KERNEL_ACCOUNT);
	if (!cache)
		return ERR_PTR(-ENOMEM);
	cache->params = *p;
	ret = kprim_cache_check_params(&cache->params);
	if (ret)
		goto free_cache;
	cache->flags = flags;
	cache->max_mem = cache->params.max_bytes +
			 cache->params.max_entries * KPRIM_CACHE_ENTRY_COST;
	spin_lock_init(&cache->lock);
	INIT_LIST_HEAD(&cache->lru);
	INIT_LIST_HEAD(&cache->pinned);
	INIT_LIST_HEAD(&cache->doomed);
	cache->expiry = RB_ROOT_CACHED;
	INIT_DELAYED_WORK(&cache->sweep, kprim_cache_sweep_work);
	ret = -ENOMEM;
	cache->stats = alloc_percpu_gfp(struct kprim_cache_pcpu,
					GFP_KERNEL_ACCOUNT);
	if (!cache->stats)
		goto free_cache;
	ret = rhashtable_init(&cache->ht, &kprim_cache_rht_params);
	if (ret)
		goto free_stats;
	return cache;

free_stats:
	free_percpu(cache->stats);
free_cache:
	kfree(cache);
	return ERR_PTR(ret);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_alloc);

/*
 * rhashtable_free_and_destroy() callback: no reader can exist any more,
 * and the shrinker skips the entries of a dying cache (@on_lru cannot
 * change): take @e off the list_lru, under its lock, before freeing it.
 */
static void kprim_cache_free_entry(void *ptr, void *arg)
{
	struct kprim_cache_entry *e = ptr;

	if (e->on_lru)
		kprim_list_lru_del_obj(&kprim_cache_lru, &e->mlru);
	kprim_cache_entry_free_now(e);
}

/**
 * kprim_cache_free() - free a cache and all its entries.
 * @cache: the cache; nobody may use it any more
 *
 * Teardown order: mark it dying (the shrinker leaves it alone), stop the
 * sweep, free the entries (each off the shrinker's list_lru first), free
 * the cache.
 */
void kprim_cache_free(struct kprim_cache *cache)
{
	spin_lock(&cache->lock);
	cache->dying = true;
	spin_unlock(&cache->lock);
	cancel_delayed_work_sync(&cache->sweep);
	rhashtable_free_and_destroy(&cache->ht, kprim_cache_free_entry, NULL);
	free_percpu(cache->stats);
	kfree(cache);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_cache_free);

/*
 * The shrinker.
 */

/**
 * struct kprim_cache_reap - one walk of the shrinker.
 * @now:	the current time (expired entries are expirations)
 * @dispose:	entries whose last reference the walk dropped, on their
 *		->lru, to free after a grace period
 */
struct kprim_cache_reap {
	s64 now;
	struct list_head dispose;
};

/*
 * list_lru walk callback, called with the list_lru's lock held for @item,
 * an entry of the memory cgroup and node being shrunk: may not sleep nor
 * drop that lock. cache->lock nests outside it, so it is only tried.
 */
static enum lru_status kprim_cache_lru_isolate(struct list_head *item,
					       struct list_lru_one *list,
					       spinlock_t *lru_lock, void *arg)
{
	struct kprim_cache_entry *e = container_of(item,
						   struct kprim_cache_entry,
						   mlru);
	struct kprim_cache *cache = e->cache;
	struct kprim_cache_reap *r = arg;
	bool expired;

	/*
	 * On the list_lru, @e is linked in @cache, which kprim_cache_free()
	 * cannot free before it took @e off under the lock we hold.
	 */
	if (!spin_trylock(&cache->lock))
		return LRU_SKIP;
	if (cache->dying) {
		spin_unlock(&cache->lock);
		return LRU_SKIP;
	}
	expired = kprim_cache_expired(e, r->now);
	if (!expired && READ_ONCE(e->referenced)) {
		/* Second chance, as for a store's eviction. */
		WRITE_ONCE(e->referenced, false);
		spin_unlock(&cache->lock);
		return LRU_ROTATE;
	}
	if (expired) {
		cache->expirations++;
	} else {
		cache->evictions++;
		cache->shrunk++;
	}
	list_lru_isolate(list, item);
	e->on_lru = false;
	WARN_ON_ONCE(rhashtable_remove_fast(&cache->ht, &e->node,
					    kprim_cache_rht_params));
	trace_kprim_cache_evict(cache, e, expired ? KPRIM_EVICT_EXPIRED :
				KPRIM_EVICT_SHRINKER);
	kprim_cache_drop_locked(cache, e);
	spin_unlock(&cache->lock);
	/* A reader copying the value out frees it (call_rcu) when done. */
	if (refcount_dec_and_test(&e->ref))
		list_add(&e->lru, &r->dispose);
	return LRU_REMOVED;
}

static unsigned long kprim_cache_shrink_count(struct shrinker *s,
					      struct shrink_control *sc)
{
	unsigned long n;

	/* Pairs with the release in kprim_cache_module_init(). */
	if (!smp_load_acquire(&kprim_cache_lru_ready))
		return 0;
	n = list_lru_shrink_count(&kprim_cache_lru, sc);
	return n ? n : SHRINK_EMPTY;
}

static unsigned long kprim_cache_shrink_scan(struct shrinker *s,
					     struct shrink_control *sc)
{
	struct kprim_cache_reap r = { .now = kprim_cache_now() };
	struct kprim_cache_entry *e, *tmp;
	unsigned long freed;

	/* Pairs with the release in kprim_cache_module_init(). */
	if (!smp_load_acquire(&kprim_cache_lru_ready))
		return SHRINK_STOP;
	INIT_LIST_HEAD(&r.dispose);
	freed = list_lru_shrink_walk(&kprim_cache_lru, sc,
				     kprim_cache_lru_isolate, &r);
	if (list_empty(&r.dispose))
		return freed;
	/* Lockless lookups may still be looking at them. */
	if (current_is_kswapd()) {
		list_for_each_entry_safe(e, tmp, &r.dispose, lru)
			call_rcu(&e->rcu, kprim_cache_entry_free_rcu);
		return freed;
	}
	synchronize_rcu();
	list_for_each_entry_safe(e, tmp, &r.dispose, lru)
		kprim_cache_entry_free_now(e);
	return freed;
}

/*
 * The object kind.
 */

static int kprim_cache_copy_key(u8 *dst, u64 uptr, u32 len)
{
	if (!len || len > KPRIM_KEY_MAX)
		return -EINVAL;
	if (copy_from_user(dst, u64_to_user_ptr(uptr), len))
		return -EFAULT;
	return 0;
}

/*
 * A get copies the key with its own user access loop, not copy_from_user():
 * a variable-size copy onto the stack pays hardened usercopy's object
 * check per call, and the key buffer is not zero-filled (the kernel may
 * be built with INIT_STACK_ALL_ZERO) as only its first @len bytes are read.
 */
static __always_inline int kprim_cache_get_key(u64 *dst, u64 uptr, u32 len)
{
	const u8 __user *src = u64_to_user_ptr(uptr);
	u32 i;

	if (!len || len > KPRIM_KEY_MAX)
		return -EINVAL;
	might_fault();
	if (should_fail_usercopy() || !user_read_access_begin(src, len))
		return -EFAULT;
	for (i = 0; i + sizeof(u64) <= len; i += sizeof(u64))
		unsafe_get_user(dst[i / sizeof(u64)],
				(const u64 __user *)(src + i), efault);
	for (; i < len; i++)
		unsafe_get_user(((u8 *)dst)[i], src + i, efault);
	user_read_access_end();
	return 0;
efault:
	user_read_access_end();
	return -EFAULT;
}

/*
 * Copy @e's value to @dst under RCU, without a reference: the entry's
 * memory stays valid until a grace period after it leaves the table, and
 * its value never changes. Page faults are off (no sleeping under RCU).
 * Return: 0; -EFAULT for a range access_ok() refuses (or an injected
 * fault); 1 for a copy that would have faulted (to be done again with a
 * reference, outside RCU).
 */
static __always_inline int
kprim_cache_copy_value_rcu(void __user *dst, const struct kprim_cache_entry *e)
{
	int ret = 1;

	/* Nothing to copy: as copy_to_user() of 0 bytes, whatever @dst is. */
	if (!e->value_len)
		return 0;
	if (should_fail_usercopy())
		return -EFAULT;
	pagefault_disable();
	if (!user_write_access_begin(dst, e->value_len)) {
		ret = -EFAULT;
		goto out;
	}
	unsafe_copy_to_user(dst, e->value, e->value_len, efault);
	ret = 0;
efault:
	user_write_access_end();
out:
	pagefault_enable();
	return ret;
}

/* The out fields of a get that found an entry: value_len, ttl_ns, cas. */
static __always_inline int
kprim_cache_get_out(struct kprim_cache_get __user *u, u64 value_len,
		    u64 ttl_ns, u64 cas)
{
	might_fault();
	if (should_fail_usercopy() ||
	    !user_write_access_begin(&u->value_len,
				     sizeof(*u) -
				     offsetof(struct kprim_cache_get,
					      value_len)))
		return -EFAULT;
	unsafe_put_user(value_len, &u->value_len, efault);
	unsafe_put_user(ttl_ns, &u->ttl_ns, efault);
	unsafe_put_user(cas, &u->cas, efault);
	user_write_access_end();
	return 0;
efault:
	user_write_access_end();
	return -EFAULT;
}

/*
 * A live entry's remaining TTL for a get at @now (0: it does not expire;
 * @now is only read otherwise).
 */
static inline u64 kprim_cache_ttl_left(s64 expires, s64 now)
{
	return expires == KPRIM_CACHE_NEVER ? 0 :
	       expires > now ? expires - now : 1;
}

/*
 * KPRIM_IOC_CACHE_GET. As kprim_cache_lookup() (a hit or a miss counted,
 * the entry marked referenced, kprim_cache_access traced), with the clock
 * read only for an entry that expires, and no reference taken for a value
 * of up to a page that can be copied out under RCU: a get then writes no
 * shared cache line (the counters are per CPU, referenced is stored only
 * when clear), so gets of one hot key scale. Larger values and copies
 * that would fault take a reference and copy outside RCU, as before.
 */
static long kprim_cache_ioc_get(struct kprim_cache *cache, void __user *uarg)
{
	u64 key[DIV_ROUND_UP(KPRIM_KEY_MAX, sizeof(u64))] __uninitialized;
	struct kprim_cache_lkey k = { .data = (u8 *)key };
	struct kprim_cache_get args __uninitialized;	/* all copied in */
	struct kprim_cache_entry *e;
	s64 now = 0, expires;
	u64 value_len, cas;
	unsigned int tries = 0;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_CACHE_GET_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags || args.reserved)
		return -EINVAL;
	ret = kprim_cache_get_key(key, args.key, args.key_len);
	if (ret)
		return ret;
	k.len = args.key_len;

	rcu_read_lock();
lookup:
	e = rhashtable_lookup(&cache->ht, &k, kprim_cache_rht_params);
	if (e) {
		expires = READ_ONCE(e->expires);
		if (expires != KPRIM_CACHE_NEVER) {
			now = kprim_cache_now();
			if (now >= expires)
				e = NULL;
		}
	}
	if (!e)
		goto miss;
	value_len = e->value_len;
	cas = e->cas;
	if (args.value_len < value_len)
		ret = -EMSGSIZE;
	else if (value_len <= PAGE_SIZE)
		ret = kprim_cache_copy_value_rcu(u64_to_user_ptr(args.value), e);
	else
		ret = 1;
	if (ret > 0) {
		/* A large value, or a copy that would fault: with a reference. */
		if (!refcount_inc_not_zero(&e->ref)) {
			/*
			 * Released since we found it: replaced by a store,
			 * whose entry may hold the key; look again, as
			 * kprim_cache_lookup() does (bounded likewise).
			 */
			if (++tries <= KPRIM_CACHE_LOOKUP_RETRIES)
				goto lookup;
			goto miss;
		}
	}
	trace_kprim_cache_access(cache, e, k.len);
	if (!READ_ONCE(e->referenced))
		WRITE_ONCE(e->referenced, true);
	rcu_read_unlock();
	this_cpu_inc(cache->stats->hits);
	if (ret > 0) {
		ret = copy_to_user(u64_to_user_ptr(args.value), e->value,
				   value_len) ? -EFAULT : 0;
		kprim_cache_entry_put(e);
	}
	if (ret == -EMSGSIZE) {
		ret = kprim_cache_get_out(uarg, value_len, args.ttl_ns,
					  args.cas);
		return ret ? ret : -EMSGSIZE;
	}
	if (ret)
		return ret;
	/* The expiry as found: the entry was live at now. */
	return kprim_cache_get_out(uarg, value_len,
				   kprim_cache_ttl_left(expires, now), cas);

miss:
	rcu_read_unlock();
	trace_kprim_cache_access(cache, NULL, k.len);
	this_cpu_inc(cache->stats->misses);
	return -ENOENT;
}

/*
 * A key's own faults are its result (one bad buffer does not cost the
 * caller the other keys' answers); only an entry array that cannot be read
 * or written back fails the call, as nothing could report it otherwise.
 */
static long kprim_cache_ioc_mget(struct kprim_cache *cache, void __user *uarg)
{
	struct kprim_cache_mget_entry ent;
	struct kprim_cache_mget args;
	struct kprim_cache_entry *e;
	u8 key[KPRIM_KEY_MAX];
	char __user *src;
	long found = 0;
	size_t len;
	u32 i;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_CACHE_MGET_VER0,
			      uarg);
	if (ret)
		return ret;
	ret = kprim_cache_mget_check(&args);
	if (ret)
		return ret;

	src = u64_to_user_ptr(args.entries);
	len = min_t(size_t, args.entry_size, sizeof(ent));
	for (i = 0; i < args.count; i++, src += args.entry_size) {
		if (i) {
			/* Up to 1024 copies of up to max_value each. */
			cond_resched();
			if (fatal_signal_pending(current))
				return -EINTR;
		}
		/*
		 * A caller of this module's own entry size (the common
		 * case) is copied with a constant size, which hardened
		 * usercopy checks at build time, not twice per key.
		 */
		if (args.entry_size == sizeof(ent))
			ret = copy_from_user(&ent, src, sizeof(ent)) ?
			      -EFAULT : 0;
		else
			ret = copy_struct_from_user(&ent, sizeof(ent), src,
						    args.entry_size);
		if (ret == -EFAULT)
			return ret;
		if (ret) {
			/* A non-zero tail this module does not know. */
			if (put_user(ret, (s32 __user *)(src +
				     offsetof(struct kprim_cache_mget_entry,
					      result))))
				return -EFAULT;
			continue;
		}
		ent.result = kprim_cache_copy_key(key, ent.key, ent.key_len);
		if (!ent.result) {
			e = kprim_cache_mget_lookup(cache, &ent, key,
						    kprim_cache_now());
			if (e) {
				if (copy_to_user(u64_to_user_ptr(ent.value),
						 e->value, e->value_len))
					ent.result = -EFAULT;
				kprim_cache_entry_put(e);
			}
		}
		if (len == sizeof(ent) ? copy_to_user(src, &ent, sizeof(ent)) :
					 copy_to_user(src, &ent, len))
			return -EFAULT;
		if (!ent.result)
			found++;
	}
	return found;
}

static long kprim_cache_ioc_store(struct kprim_cache *cache, void __user *uarg)
{
	struct kprim_cache_store args;
	struct kprim_cache_entry *e;
	u8 key[KPRIM_KEY_MAX];
	s64 now, expires;
	u64 expect;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_CACHE_STORE_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags & ~(KPRIM_CACHE_TTL | KPRIM_CACHE_PIN) ||
	    args.op > KPRIM_CACHE_CAS)
		return -EINVAL;
	if (!args.key_len || args.key_len > KPRIM_KEY_MAX)
		return -EINVAL;
	if (args.value_len > cache->params.max_value ||
	    args.key_len + args.value_len > cache->params.max_bytes)
		return -E2BIG;
	now = kprim_cache_now();
	ret = kprim_cache_expiry(cache, args.flags & KPRIM_CACHE_TTL,
				 args.ttl_ns, now, &expires);
	if (ret)
		return ret;
	ret = kprim_cache_copy_key(key, args.key, args.key_len);
	if (ret)
		return ret;

	e = kprim_cache_entry_alloc(key, args.key_len, args.value_len);
	if (!e)
		return -ENOMEM;
	if (copy_from_user(e->value, u64_to_user_ptr(args.value),
			   args.value_len)) {
		kprim_cache_entry_put(e);
		return -EFAULT;
	}
	e->pinned = args.flags & KPRIM_CACHE_PIN;
	/*
	 * The new version goes to the caller before the entry is published:
	 * a store whose version cannot be reported does not happen. A store
	 * that fails gives the caller back its own cas.
	 */
	expect = args.cas;
	e->cas = kprim_cache_new_cas(cache);
	args.cas = e->cas;
	if (kprim_copy_args_out(uarg, &args, sizeof(args))) {
		kprim_cache_entry_put(e);
		ret = -EFAULT;
		goto restore;
	}
	ret = kprim_cache_store_entry(cache, e, args.op, expires, &expect, now);
	if (!ret)
		return 0;
restore:
	args.cas = expect;
	if (kprim_copy_args_out(uarg, &args, sizeof(args)))
		return -EFAULT;
	return ret;
}

static long kprim_cache_ioc_key(struct kprim_cache *cache, unsigned int cmd,
				void __user *uarg)
{
	struct kprim_cache_key args;
	u8 key[KPRIM_KEY_MAX];
	s64 now, expires;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_CACHE_KEY_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags & ~KPRIM_CACHE_DEFAULT_TTL || args.reserved)
		return -EINVAL;
	/* DELETE has no TTL: a non-zero one is a caller bug. */
	if (cmd == KPRIM_CMD(KPRIM_IOC_CACHE_DELETE) &&
	    (args.ttl_ns || args.flags))
		return -EINVAL;
	/* The default TTL or an explicit one, not both. */
	if (args.flags && args.ttl_ns)
		return -EINVAL;
	ret = kprim_cache_copy_key(key, args.key, args.key_len);
	if (ret)
		return ret;
	now = kprim_cache_now();
	if (cmd == KPRIM_CMD(KPRIM_IOC_CACHE_DELETE))
		return kprim_cache_delete(cache, key, args.key_len, now);
	ret = kprim_cache_expiry(cache, !(args.flags & KPRIM_CACHE_DEFAULT_TTL),
				 args.ttl_ns, now, &expires);
	if (ret)
		return ret;
	return kprim_cache_touch(cache, key, args.key_len, expires, now);
}

/* Where KPRIM_IOC_CACHE_INCR reports its result, before it is published. */
struct kprim_cache_incr_out {
	void __user *uarg;
	struct kprim_cache_incr args;
	bool written;
};

static int kprim_cache_incr_copy_out(void *arg, u64 value, u64 cas)
{
	struct kprim_cache_incr_out *out = arg;

	out->written = true;
	out->args.value = value;
	out->args.cas = cas;
	return kprim_copy_args_out(out->uarg, &out->args, sizeof(out->args));
}

static long kprim_cache_ioc_incr(struct kprim_cache *cache, void __user *uarg)
{
	struct kprim_cache_incr_out out = { .uarg = uarg };
	struct kprim_cache_incr args;
	u8 key[KPRIM_KEY_MAX];
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_CACHE_INCR_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags & ~(KPRIM_CACHE_DECR | KPRIM_CACHE_INCR_CREATE) ||
	    args.reserved)
		return -EINVAL;
	ret = kprim_cache_copy_key(key, args.key, args.key_len);
	if (ret)
		return ret;
	/*
	 * The result is copied out before it is published (an increment
	 * that cannot be reported does not happen); a failed one gives the
	 * caller back its value and cas fields.
	 */
	out.args = args;
	ret = kprim_cache_incr_report(cache, key, args.key_len, args.flags,
				      args.delta, args.initial,
				      kprim_cache_now(), &out.args.value,
				      &out.args.cas, kprim_cache_incr_copy_out,
				      &out);
	if (ret && out.written &&
	    kprim_copy_args_out(uarg, &args, sizeof(args)))
		return -EFAULT;
	return ret;
}

static long kprim_cache_ioc_flush(struct kprim_object *obj, void __user *uarg)
{
	struct kprim_hdr args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_HDR_VER0, uarg);
	if (ret)
		return ret;
	if (args.flags)
		return -EINVAL;
	/* Wiping everybody's entries is an owner's act, like unlink. */
	if (!kprim_obj_owner_or_admin(obj))
		return -EPERM;
	kprim_cache_flush(kprim_cache_of(obj));
	return 0;
}

static long kprim_cache_ioc_info(struct kprim_cache *cache, void __user *uarg)
{
	struct kprim_cache_info args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_CACHE_INFO_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags)
		return -EINVAL;
	kprim_cache_get_info(cache, &args);
	return kprim_copy_args_out(uarg, &args, sizeof(args));
}

/*
 * The cache ioctls but GET. Errnos of the cache ioctls (beyond
 * kprim_copy_args()'s -EFAULT, -EINVAL for a size below the first version
 * and -E2BIG for a non-zero unknown tail): -EINVAL for flags, reserved fields, op, or a key of 0 or more
 * than 250 bytes; -E2BIG for a value over max_value (or an entry over
 * max_bytes); -EOVERFLOW when now + TTL overflows; -EFAULT for bad key or
 * value pointers; -ENOSPC when a store or INCR could not make room within
 * its eviction budget, or a pinned store would take the pinned entries
 * past half a limit; -EINVAL for TOUCH with both KPRIM_CACHE_DEFAULT_TTL
 * and a TTL; and the per-operation ones of the core functions above.
 * FLUSH needs ownership or CAP_SYS_ADMIN (-EPERM). MGET: see struct
 * kprim_cache_mget (per-key errnos in each entry's result). STORE and
 * INCR write their results back before they take effect: one that cannot
 * (-EFAULT) changes nothing, and one that fails otherwise leaves the
 * caller's out fields as they were.
 */
static noinline long kprim_cache_ioctl_other(struct kprim_handle *h,
					     unsigned int cmd,
					     void __user *uarg)
{
	struct kprim_cache *cache = kprim_cache_of(h->obj);

	switch (KPRIM_CMD(cmd)) {
	case KPRIM_CMD(KPRIM_IOC_CACHE_STORE):
		return kprim_cache_ioc_store(cache, uarg);
	case KPRIM_CMD(KPRIM_IOC_CACHE_DELETE):
	case KPRIM_CMD(KPRIM_IOC_CACHE_TOUCH):
		return kprim_cache_ioc_key(cache, KPRIM_CMD(cmd), uarg);
	case KPRIM_CMD(KPRIM_IOC_CACHE_INCR):
		return kprim_cache_ioc_incr(cache, uarg);
	case KPRIM_CMD(KPRIM_IOC_CACHE_FLUSH):
		return kprim_cache_ioc_flush(h->obj, uarg);
	case KPRIM_CMD(KPRIM_IOC_CACHE_INFO):
		return kprim_cache_ioc_info(cache, uarg);
	case KPRIM_CMD(KPRIM_IOC_CACHE_MGET):
		return kprim_cache_ioc_mget(cache, uarg);
	default:
		return -ENOTTY;
	}
}

/**
 * kprim_cache_ioctl() - the ioctls of a cache fd.
 * @h:		the fd's handle
 * @cmd:	the ioctl command
 * @uarg:	its user argument
 *
 * A get, the hot command, goes straight to its handler; the others'
 * frame (INFO's struct on the stack) is not set up for it.
 *
 * Return: the command's result (see kprim_cache_ioctl_other() for the
 * errnos); -ENOTTY for a command of another kind.
 */
long kprim_cache_ioctl(struct kprim_handle *h, unsigned int cmd,
		       void __user *uarg)
{
	if (likely(KPRIM_CMD(cmd) == KPRIM_CMD(KPRIM_IOC_CACHE_GET)))
		return kprim_cache_ioc_get(kprim_cache_of(h->obj), uarg);
	return kprim_cache_ioctl_other(h, cmd, uarg);
}

static int kprim_cache_check(const struct kprim_open *args)
{
	struct kprim_cache_params p = args->cache;
	unsigned int i;

	if (args->flags & KPRIM_OPEN_INITIAL)
		return -EINVAL;
	/* The union's words past struct kprim_cache_params are reserved. */
	for (i = sizeof(args->cache) / sizeof(u64);
	     i < ARRAY_SIZE(args->params_raw); i++)
		if (args->params_raw[i])
			return -EINVAL;
	return kprim_cache_check_params(&p);
}

static int kprim_cache_create(struct kprim_object *obj,
			      const struct kprim_open *args)
{
	struct kprim_cache *cache;
	int ret;

	cache = kprim_cache_alloc(&args->cache, 0);
	if (IS_ERR(cache))
		return PTR_ERR(cache);
	cache->obj = obj;
	/* Reserve all the cache may come to hold against its owner. */
	ret = kprim_obj_reserve_bytes(obj,
				      kprim_cache_reservation(&cache->params));
	if (ret) {
		kprim_cache_free(cache);
		return ret;
	}
	obj->priv = cache;
	return 0;
}

static void kprim_cache_destroy(struct kprim_object *obj)
{
	kprim_cache_free(kprim_cache_of(obj));
}

/* No cache operation ever waits, so there is never an event to report. */
static __poll_t kprim_cache_poll(struct kprim_handle *h, struct file *file,
				 poll_table *pt)
{
	return 0;
}

static void kprim_cache_show_fdinfo(struct kprim_handle *h, struct seq_file *m)
{
	struct kprim_cache_info info;

	kprim_cache_get_info(kprim_cache_of(h->obj), &info);
	seq_printf(m, "kprim-max-bytes:\t%llu\n", info.params.max_bytes);
	seq_printf(m, "kprim-max-entries:\t%llu\n", info.params.max_entries);
	seq_printf(m, "kprim-max-value:\t%llu\n", info.params.max_value);
	seq_printf(m, "kprim-default-ttl-ns:\t%llu\n",
		   info.params.default_ttl_ns);
	seq_printf(m, "kprim-bytes:\t%llu\n", info.bytes);
	seq_printf(m, "kprim-entries:\t%llu\n", info.entries);
	seq_printf(m, "kprim-memory:\t%llu\n",
		   READ_ONCE(kprim_cache_of(h->obj)->mem));
	seq_printf(m, "kprim-pinned:\t%llu\n",
		   READ_ONCE(kprim_cache_of(h->obj)->nr_pinned));
	seq_printf(m, "kprim-sweep-seen:\t%llu\n",
		   READ_ONCE(kprim_cache_of(h->obj)->sweep_seen));
	seq_printf(m, "kprim-hits:\t%llu\n", info.hits);
	seq_printf(m, "kprim-misses:\t%llu\n", info.misses);
	seq_printf(m, "kprim-evictions:\t%llu\n", info.evictions);
	seq_printf(m, "kprim-shrunk:\t%llu\n",
		   READ_ONCE(kprim_cache_of(h->obj)->shrunk));
	seq_printf(m, "kprim-expirations:\t%llu\n", info.expirations);
}

static void kprim_cache_fill_info(struct kprim_object *obj,
				  struct kprim_obj_info *oi)
{
	struct kprim_cache_info info;

	kprim_cache_get_info(kprim_cache_of(obj), &info);
	oi->cache.params = info.params;
	oi->cache.bytes = info.bytes;
	oi->cache.entries = info.entries;
	oi->cache.hits = info.hits;
	oi->cache.misses = info.misses;
	oi->cache.evictions = info.evictions;
	oi->cache.expirations = info.expirations;
}

const struct kprim_kind_ops kprim_cache_ops = {
	.kind		= KPRIM_KIND_CACHE,
	.name		= "cache",
	.fd_name	= "[kprim-cache]",
	.check		= kprim_cache_check,
	.create		= kprim_cache_create,
	.destroy	= kprim_cache_destroy,
	.ioctl		= kprim_cache_ioctl,
	.poll		= kprim_cache_poll,
	.show_fdinfo	= kprim_cache_show_fdinfo,
	.fill_info	= kprim_cache_fill_info,
};

/**
 * kprim_cache_module_init() - create the entry kmem_cache and the shrinker.
 *
 * Return: 0 or -ENOMEM.
 */
int kprim_cache_module_init(void)
{
	/* Values are copied to and from userspace in place: whitelist them. */
	kprim_cache_entry_slab =
		kmem_cache_create_usercopy("kprim_cache_entry",
					   KPRIM_CACHE_ENTRY_SIZE, 0,
					   SLAB_ACCOUNT | SLAB_RECLAIM_ACCOUNT,
					   offsetof(struct kprim_cache_entry,
						    data),
					   KPRIM_CACHE_INLINE, NULL);
	if (!kprim_cache_entry_slab)
		return -ENOMEM;
	kprim_cache_shrinker = kprim_shrinker_create(kprim_cache_shrink_count,
						     kprim_cache_shrink_scan,
						     SHRINKER_MEMCG_AWARE |
						     SHRINKER_NUMA_AWARE,
						     KPRIM_CACHE_SHRINK_WALK,
						     "kprim-cache");
	if (!kprim_cache_shrinker)
		goto destroy_slab;
	/* After registering: 6.1 gives the shrinker its id there. */
	if (list_lru_init_memcg(&kprim_cache_lru, kprim_cache_shrinker))
		goto destroy_shrinker;
	/* The shrinker sees an initialised list_lru once it sees this. */
	smp_store_release(&kprim_cache_lru_ready, true);
	return 0;

destroy_shrinker:
	kprim_shrinker_destroy(kprim_cache_shrinker);
destroy_slab:
	kmem_cache_destroy(kprim_cache_entry_slab);
	return -ENOMEM;
}

/**
 * kprim_cache_module_exit() - undo kprim_cache_module_init().
 *
 * Every cache is gone (kprim_registry_exit() ran): unregister the shrinker,
 * destroy its (empty) list_lru, wait for the RCU frees still pending,
 * destroy the kmem_cache.
 */
void kprim_cache_module_exit(void)
{
	kprim_shrinker_destroy(kprim_cache_shrinker);
	list_lru_destroy(&kprim_cache_lru);
	rcu_barrier();
	kmem_cache_destroy(kprim_cache_entry_slab);
}
