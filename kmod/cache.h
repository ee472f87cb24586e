/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - the expiring key-value cache: the parts KUnit and main.c see.
 */
#ifndef _KPRIM_CACHE_H
#define _KPRIM_CACHE_H

#include <linux/list.h>
#include <linux/list_lru.h>
#include <linux/percpu.h>
#include <linux/rbtree.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/rhashtable-types.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include "uapi/kprim.h"

struct kprim_object;

/* Parameter defaults (a 0 field picks them) and hard caps (-EINVAL). */
#define KPRIM_CACHE_DEF_BYTES		(64ULL << 20)
#define KPRIM_CACHE_DEF_ENTRIES		65536ULL
#define KPRIM_CACHE_DEF_VALUE		(1ULL << 20)
#define KPRIM_CACHE_MAX_BYTES		(1ULL << 30)
#define KPRIM_CACHE_MAX_ENTRIES		(1ULL << 20)
#define KPRIM_CACHE_MAX_VALUE		(64ULL << 20)

/* expires value of an entry that does not expire. */
#define KPRIM_CACHE_NEVER		S64_MAX

/* Size of an entry header object in the entry kmem_cache. */
#define KPRIM_CACHE_ENTRY_SIZE		256
/*
 * What an entry costs besides its out-of-line key + value buffer: its
 * header, and its share of the hash table (one bucket pointer per entry at
 * up to ~3.3 buckets per entry before automatic shrinking, twice during a
 * resize).
 */
#define KPRIM_CACHE_TABLE_COST		64
#define KPRIM_CACHE_ENTRY_COST	(KPRIM_CACHE_ENTRY_SIZE + KPRIM_CACHE_TABLE_COST)

/* kprim_cache_alloc() flags. */
#define KPRIM_CACHE_F_MANUAL	(1U << 0)	/* no sweep work, no shrinker:
						 * a KUnit cache on a fake clock
						 */

/**
 * struct kprim_cache_entry - one key and its value.
 * @node:	in cache->ht; changed under cache->lock
 * @lru:	in cache->lru (most recent first), cache->pinned or
 *		cache->doomed (being flushed); cache->lock. Once unlinked,
 *		the shrinker may reuse it for its list of entries to free
 * @mlru:	in the shrinker's list_lru, on the list of the memory cgroup
 *		the entry is charged to (and its NUMA node), while @on_lru.
 *		Lock order: cache->lock, then the list_lru's lock: linking
 *		adds and unlinking removes it under cache->lock; the
 *		shrinker's walk holds the list_lru's lock and only
 *		spin_trylock()s cache->lock (kprim_cache_lru_isolate())
 * @cache:	the cache the entry was stored in (for the shrinker);
 *		immutable once published
 * @ref:	one reference for the table while @linked, one per reader
 *		copying the value out outside RCU (a multi-get; a get of a
 *		value over a page); the last put frees after an RCU grace
 *		period (lookups do refcount_inc_not_zero() under RCU)
 * @referenced:	set by lockless gets, cleared under cache->lock by eviction
 *		(second chance / CLOCK approximation of LRU)
 * @linked:	in the table and accounted; cache->lock
 * @pinned:	never evicted: on cache->pinned, not cache->lru; set before
 *		publishing, immutable
 * @on_lru:	on the shrinker's list_lru (@mlru): linked, not pinned, in
 *		a shrinkable cache; cache->lock
 * @key_len:	1..KPRIM_KEY_MAX; immutable
 * @value_len:	immutable
 * @mem:	memory the entry costs (KPRIM_CACHE_ENTRY_COST plus its
 *		out-of-line buffer as allocated); immutable
 * @cas:	version; immutable once published
 * @expires:	absolute CLOCK_MONOTONIC ns, KPRIM_CACHE_NEVER if it does not
 *		expire; written under cache->lock (touch), read locklessly
 * @exp_node:	in cache->expiry while linked and expiring; cache->lock
 * @key:	the key bytes; immutable (in @data or a kvmalloc'ed buffer)
 * @value:	the value bytes, right after the key; immutable
 * @rcu:	for the deferred free
 * @data:	inline storage for key + value when they fit
 *
 * The value of a published entry never changes: a set publishes a new
 * entry in place of the old one (rhashtable_replace_fast()).
 */
struct kprim_cache_entry {
	struct rhash_head node;
	struct list_head lru;
	struct list_head mlru;
	struct kprim_cache *cache;
	refcount_t ref;
	bool referenced;
	bool linked;
	bool pinned;
	bool on_lru;
	u8 key_len;
	u32 value_len;
	u32 mem;
	u64 cas;
	s64 expires;
	struct rb_node exp_node;
	u8 *key;
	u8 *value;
	struct rcu_head rcu;
	u8 data[];
};

#define KPRIM_CACHE_INLINE \
	(KPRIM_CACHE_ENTRY_SIZE - sizeof(struct kprim_cache_entry))

/* Per-CPU counters bumped by lockless gets. */
struct kprim_cache_pcpu {
	u64 hits;
	u64 misses;
};

/**
 * struct kprim_cache - the state of one cache object.
 * @ht:		entries by key; lookups under RCU, changes under @lock
 * @lock:	the writer lock: serializes every change to @ht and guards
 *		all fields below marked "@lock"
 * @lru:	linked entries, most recently stored/promoted first; @lock
 * @pinned:	linked pinned entries (never evicted); @lock
 * @nr_pinned:	how many; @lock
 * @pinned_bytes: their key + value bytes; @lock
 * @pinned_mem:	their memory; @lock
 * @doomed:	linked entries a flush took off @lru and is unlinking in
 *		batches; still counted in @bytes and @entries, so eviction
 *		takes them first; @lock
 * @bytes:	sum of key_len + value_len of linked entries; @lock
 * @entries:	linked entries; @lock
 * @mem:	sum of the linked entries' mem: what they really cost; @lock
 * @max_mem:	limit of @mem: max_bytes + max_entries *
 *		KPRIM_CACHE_ENTRY_COST, what the cache reserves against its
 *		owner's quota; immutable
 * @expiry:	linked entries with an expiry, soonest first (the sweep
 *		pops what expired and re-arms for the first left); @lock
 * @sweep_at:	when the armed sweep runs (CLOCK_MONOTONIC ns); @lock
 * @sweep_seen:	entries the sweep has looked at, in all (its cost); @lock
 * @next_cas:	last version handed out (kprim_cache_new_cas())
 * @evictions:	entries dropped for space (limits or shrinker); @lock
 * @shrunk:	of those, the ones the shrinker dropped (memory pressure
 *		in the memory cgroup they are charged to, or globally); @lock
 * @expirations: expired entries freed (sweep or access); @lock
 * @params:	effective parameters; immutable
 * @flags:	KPRIM_CACHE_F_*; immutable
 * @stats:	hits and misses, per CPU, lockless
 * @sweep:	self-rearming expiry sweep; armed under @lock
 * @dying:	set by kprim_cache_free() before it frees the entries: the
 *		shrinker leaves the cache alone from then on; @lock
 * @obj:	the object, for the tracepoints (NULL for a KUnit cache);
 *		set by ->create, immutable
 */
struct kprim_cache {
	struct rhashtable ht;
	spinlock_t lock;
	struct list_head lru;
	struct list_head pinned;
	u64 nr_pinned;
	u64 pinned_bytes;
	u64 pinned_mem;
	struct list_head doomed;
	u64 bytes;
	u64 entries;
	u64 mem;
	u64 max_mem;
	struct rb_root_cached expiry;
	s64 sweep_at;
	u64 sweep_seen;
	atomic64_t next_cas;
	u64 evictions;
	u64 shrunk;
	u64 expirations;
	struct kprim_cache_params params;
	u32 flags;
	struct kprim_cache_pcpu __percpu *stats;
	struct delayed_work sweep;
	bool dying;
	const struct kprim_object *obj;
};

int kprim_cache_module_init(void);
void kprim_cache_module_exit(void);

/* The core, with time as a parameter (exported to KUnit). */
struct kprim_cache *kprim_cache_alloc(const struct kprim_cache_params *p,
				      u32 flags);
void kprim_cache_free(struct kprim_cache *cache);
struct kprim_cache_entry *kprim_cache_entry_alloc(const u8 *key, u32 key_len,
						  u32 value_len);
void kprim_cache_entry_put(struct kprim_cache_entry *e);
int kprim_cache_expiry(const struct kprim_cache *cache, bool has_ttl,
		       u64 ttl_ns, s64 now, s64 *expires);
struct kprim_cache_entry *kprim_cache_lookup(struct kprim_cache *cache,
					     const u8 *key, u32 key_len,
					     s64 now);
int kprim_cache_mget_check(const struct kprim_cache_mget *args);
struct kprim_cache_entry *
kprim_cache_mget_lookup(struct kprim_cache *cache,
			struct kprim_cache_mget_entry *ent, const u8 *key,
			s64 now);
int kprim_cache_store_entry(struct kprim_cache *cache,
			    struct kprim_cache_entry *e, u32 op, s64 expires,
			    u64 *cas, s64 now);
int kprim_cache_delete(struct kprim_cache *cache, const u8 *key, u32 key_len,
		       s64 now);
int kprim_cache_touch(struct kprim_cache *cache, const u8 *key, u32 key_len,
		      s64 expires, s64 now);
int kprim_cache_parse_u64(const u8 *s, u32 len, u64 *val);
int kprim_cache_incr(struct kprim_cache *cache, const u8 *key, u32 key_len,
		     u32 flags, u64 delta, u64 initial, s64 now, u64 *value,
		     u64 *cas);
int kprim_cache_incr_report(struct kprim_cache *cache, const u8 *key,
			    u32 key_len, u32 flags, u64 delta, u64 initial,
			    s64 now, u64 *value, u64 *cas,
			    int (*report)(void *arg, u64 value, u64 cas),
			    void *arg);
void kprim_cache_flush(struct kprim_cache *cache);
unsigned long kprim_cache_sweep(struct kprim_cache *cache, s64 now);
unsigned long kprim_cache_shrink(struct kprim_cache *cache,
				 unsigned long nr, s64 now);
void kprim_cache_get_info(struct kprim_cache *cache,
			  struct kprim_cache_info *info);
u64 kprim_cache_reservation(const struct kprim_cache_params *p);

#endif /* _KPRIM_CACHE_H */
