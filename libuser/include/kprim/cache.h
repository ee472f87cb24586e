/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim cache: a host-wide expiring key-value cache in the kernel with
 * memcached semantics (get/set/add/replace/cas/delete/touch/incr/decr).
 * Gets run under RCU in the kernel: no daemon, no socket, no global lock.
 */
#ifndef KPRIM_CACHE_H
#define KPRIM_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include "kprim/session.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kprim_cache;

/* ttl_ns value: use the cache's default TTL. 0 means "never expires". */
#define KPRIM_TTL_DEFAULT	(~(uint64_t)0)

/** struct kprim_cache_config - a new cache's limits (0 = default). */
struct kprim_cache_config {
	uint64_t max_bytes;		/* default 64 MiB */
	uint64_t max_entries;		/* default 65536 */
	uint64_t max_value;		/* default 1 MiB */
	uint64_t default_ttl_ns;	/* 0 = entries do not expire */
};

/** struct kprim_cache_stats - kprim_cache_stats(). */
struct kprim_cache_stats {
	struct kprim_cache_config config;
	uint64_t bytes, entries;
	uint64_t hits, misses, evictions, expirations;
};

/**
 * kprim_cache_open() - create or open a cache.
 * @flags:	as for kprim_limiter_open(): a named CREATE refuses another
 *		user's cache (-EPERM) unless KPRIM_ANY_OWNER, so no other
 *		user owns what the caller stores; the fd is close-on-exec
 *		unless KPRIM_INHERIT
 * Return: 0 or -errno, as kprim_limiter_open().
 */
int kprim_cache_open(struct kprim *k, const char *name, unsigned int flags,
		     unsigned int mode, const struct kprim_cache_config *cfg,
		     struct kprim_cache **out);

/** kprim_cache_close() - close the handle (the cache may live on). */
void kprim_cache_close(struct kprim_cache *c);

/**
 * kprim_cache_get() - copy out the value of @key.
 * @len:	in: capacity of @buf; out: the value's length (also on
 *		-EMSGSIZE, when @buf is too small and nothing was copied)
 * @ttl_ns:	out (may be NULL): time left, 0 = no expiry
 * @cas:	out (may be NULL): version for kprim_cache_cas()
 * Return: 0, -ENOENT (miss or expired), -EMSGSIZE, -EINVAL (key length).
 */
int kprim_cache_get(struct kprim_cache *c, const void *key, size_t klen,
		    void *buf, size_t *len, uint64_t *ttl_ns, uint64_t *cas);

/** kprim_cache_set() - store unconditionally. @cas (may be NULL): out,
 * the new version. Return: 0, -EINVAL, -E2BIG (value above max_value). */
int kprim_cache_set(struct kprim_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t ttl_ns,
		    uint64_t *cas);
/** kprim_cache_add() - store only if absent (-EEXIST). */
int kprim_cache_add(struct kprim_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t ttl_ns,
		    uint64_t *cas);
/** kprim_cache_replace() - store only if present (-ENOENT). */
int kprim_cache_replace(struct kprim_cache *c, const void *key, size_t klen,
			const void *val, size_t vlen, uint64_t ttl_ns,
			uint64_t *cas);
/**
 * kprim_cache_cas() - store only if the version is still @*cas; on success
 * @*cas is the new version. Return: 0, -ESTALE (changed), -ENOENT.
 */
int kprim_cache_cas(struct kprim_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t ttl_ns,
		    uint64_t *cas);
/**
 * struct kprim_cache_mget_item - one key of kprim_cache_mget().
 * @key:	the key
 * @klen:	its length, 1..250 (else this item's -EINVAL)
 * @buf:	buffer for the value
 * @len:	in: capacity of @buf; out: the value's length (on 0 and
 *		-EMSGSIZE, when @buf is too small and nothing was copied)
 * @ttl_ns:	out, on 0: time left, 0 = no expiry
 * @cas:	out, on 0: version for kprim_cache_cas()
 * @result:	out: 0, -ENOENT (miss or expired), -EMSGSIZE, -EINVAL
 *		(@klen), -EFAULT (@key or @buf not accessible)
 *
 * Out fields are written only in the cases stated; otherwise they keep
 * what the caller put there.
 */
struct kprim_cache_mget_item {
	const void *key;
	size_t klen;
	void *buf;
	size_t len;
	uint64_t ttl_ns;
	uint64_t cas;
	int result;
};

/**
 * kprim_cache_mget() - look up many keys in one system call (memcached's
 * multi-get); the library's only batched get.
 * @c:		cache
 * @items:	@n keys with their buffers; results written in place
 * @n:		number of items (0 is allowed)
 *
 * Each item gets exactly what kprim_cache_get() would give it (result,
 * length, TTL, version, and the cache counts it as a hit or a miss like
 * one), at its own instant: the batch is not a snapshot. The keys go to
 * the kernel in one KPRIM_IOC_CACHE_MGET per KPRIM_CACHE_MGET_MAX (1024)
 * items; no ring or other hidden state is involved, so it is safe from any
 * number of threads and after fork(). With a module that lacks the
 * multi-get (no KPRIM_FEAT_CACHE_MGET at kprim_open()'s handshake) the
 * items are looked up with one get each, with the same results.
 * (io_uring users batch gets on their own ring with
 * kprim_uring_prep_cache_get(), <kprim/uring.h>.)
 *
 * Return: the number of items whose @result is 0, or a negative errno:
 * -EINVAL (@c NULL, @items NULL with @n > 0, @n above INT_MAX; no item
 * looked up), or the kernel's error for a call as a whole (-EINTR when the
 * process is being killed; items of earlier calls are filled in).
 */
int kprim_cache_mget(struct kprim_cache *c,
		     struct kprim_cache_mget_item *items, size_t n);

/* kprim_cache_store() operations (the same values as the kernel's). */
enum kprim_cache_store_op {
	KPRIM_STORE_SET = 0,		/* always */
	KPRIM_STORE_ADD = 1,		/* only if absent, else -EEXIST */
	KPRIM_STORE_REPLACE = 2,	/* only if present, else -ENOENT */
	KPRIM_STORE_CAS = 3,		/* only at version @*cas, else -ESTALE */
};

/*
 * kprim_cache_store() flags. KPRIM_STORE_PINNED: the entry is never
 * evicted to make room nor by memory pressure (delete, flush, expiry and a
 * store without the flag still remove or unpin it). Pinned entries count
 * against the cache's limits and may take at most half of max_bytes and of
 * max_entries together: -ENOSPC beyond.
 */
#define KPRIM_STORE_PINNED	(1u << 0)

/**
 * kprim_cache_store() - store with an explicit operation and flags.
 * @op:		enum kprim_cache_store_op
 * @flags:	KPRIM_STORE_PINNED or 0
 * Return: as kprim_cache_set() and friends; -EINVAL for an unknown @op or
 * flag; -ENOSPC (pinned: over half a limit).
 */
int kprim_cache_store(struct kprim_cache *c, enum kprim_cache_store_op op,
		      unsigned int flags, const void *key, size_t klen,
		      const void *val, size_t vlen, uint64_t ttl_ns,
		      uint64_t *cas);
/** kprim_cache_delete() - remove @key (-ENOENT if absent). */
int kprim_cache_delete(struct kprim_cache *c, const void *key, size_t klen);
/** kprim_cache_touch() - set a new TTL (0 = never expires,
 * KPRIM_TTL_DEFAULT = the cache's default TTL). */
int kprim_cache_touch(struct kprim_cache *c, const void *key, size_t klen,
		      uint64_t ttl_ns);
/**
 * kprim_cache_incr() - add @delta to a decimal counter (wraps at 2^64).
 * @value:	out (may be NULL): the new value
 * Return: 0, -ENOENT, -EINVAL (not a decimal u64).
 */
int kprim_cache_incr(struct kprim_cache *c, const void *key, size_t klen,
		     uint64_t delta, uint64_t *value);
/** kprim_cache_decr() - subtract, saturating at 0. */
int kprim_cache_decr(struct kprim_cache *c, const void *key, size_t klen,
		     uint64_t delta, uint64_t *value);
/** kprim_cache_flush() - drop every entry (owner only: -EPERM). */
int kprim_cache_flush(struct kprim_cache *c);
/** kprim_cache_stats() - limits and counters. */
int kprim_cache_stats(struct kprim_cache *c, struct kprim_cache_stats *st);
/** kprim_cache_fd() - the object fd. */
int kprim_cache_fd(struct kprim_cache *c);

#ifdef __cplusplus
}
#endif
#endif /* KPRIM_CACHE_H */
