// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite kprim_cache: the cache core driven on a fake clock. Every
 * cache here is KPRIM_CACHE_F_MANUAL (no background sweep, not seen by the
 * shrinker), so only the test decides what time it is and what gets freed.
 */
#include <kunit/test.h>
#include <linux/slab.h>
#include <linux/string.h>
#include "../cache.h"

#define T0	1000000LL	/* the fake clock's start */

static void t_cache_free(void *cache)
{
	kprim_cache_free(cache);
}

static struct kprim_cache *t_cache(struct kunit *test, u64 max_bytes,
				   u64 max_entries, u64 default_ttl)
{
	struct kprim_cache_params p = {
		.max_bytes = max_bytes,
		.max_entries = max_entries,
		.default_ttl_ns = default_ttl,
	};
	struct kprim_cache *cache;

	cache = kprim_cache_alloc(&p, KPRIM_CACHE_F_MANUAL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(cache));
	KUNIT_ASSERT_EQ(test, 0,
			kunit_add_action_or_reset(test, t_cache_free, cache));
	return cache;
}

static int t_store(struct kprim_cache *cache, const char *key,
		   const char *val, u32 op, s64 expires, u64 *cas, s64 now)
{
	struct kprim_cache_entry *e;
	u64 dummy = 0;

	e = kprim_cache_entry_alloc(key, strlen(key), strlen(val));
	if (!e)
		return -ENOMEM;
	memcpy(e->value, val, strlen(val));
	return kprim_cache_store_entry(cache, e, op, expires, cas ?: &dummy,
				       now);
}

static int t_set(struct kprim_cache *cache, const char *key, const char *val,
		 s64 now)
{
	return t_store(cache, key, val, KPRIM_CACHE_SET, KPRIM_CACHE_NEVER,
		       NULL, now);
}

/* Is @key live at @now (with the value @val when @val is not NULL)? */
static bool t_has(struct kunit *test, struct kprim_cache *cache,
		  const char *key, const char *val, s64 now)
{
	struct kprim_cache_entry *e;

	e = kprim_cache_lookup(cache, key, strlen(key), now);
	if (IS_ERR(e))
		return false;
	if (val) {
		KUNIT_EXPECT_EQ(test, (u32)strlen(val), e->value_len);
		KUNIT_EXPECT_EQ(test, 0, memcmp(val, e->value,
						min_t(u32, e->value_len,
						      strlen(val))));
	}
	kprim_cache_entry_put(e);
	return true;
}

static void t_info(struct kprim_cache *cache, struct kprim_cache_info *info)
{
	memset(info, 0, sizeof(*info));
	kprim_cache_get_info(cache, info);
}

/* Store @n entries "f<i>" = "12345678" at T0. */
static void t_fill(struct kunit *test, struct kprim_cache *cache,
		   unsigned int n)
{
	char key[16];
	unsigned int i;

	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "f%u", i);
		KUNIT_ASSERT_EQ(test, 0, t_set(cache, key, "12345678", T0));
	}
}

/* A value of @len bytes of 'v' (kunit-managed). */
static char *t_big(struct kunit *test, size_t len)
{
	char *v = kunit_kmalloc(test, len + 1, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, v);
	memset(v, 'v', len);
	v[len] = '\0';
	return v;
}

/* Expiry at exact boundaries, for a table of TTLs. */
struct t_ttl_case {
	const char *name;
	u64 ttl;
};

static const struct t_ttl_case t_ttl_cases[] = {
	{ "1ns", 1 },
	{ "1us", 1000 },
	{ "1s", 1000000000ULL },
	{ "1day", 86400ULL * 1000000000ULL },
	{ "huge", (u64)S64_MAX - T0 - 1 },
};

static void t_ttl_desc(const struct t_ttl_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(t_ttl, t_ttl_cases, t_ttl_desc);

static void expiry_boundary_is_exact(struct kunit *test)
{
	const struct t_ttl_case *c = test->param_value;
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	s64 expires;

	KUNIT_ASSERT_EQ(test, 0, kprim_cache_expiry(cache, true, c->ttl, T0,
						    &expires));
	KUNIT_EXPECT_EQ(test, T0 + (s64)c->ttl, expires);
	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "k", "v", KPRIM_CACHE_SET,
					 expires, NULL, T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "k", "v", T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "k", "v", expires - 1));
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "k", NULL, expires));
	/* Writers see it gone too: ADD succeeds, REPLACE does not. */
	KUNIT_EXPECT_EQ(test, -ENOENT, t_store(cache, "k", "w",
					       KPRIM_CACHE_REPLACE,
					       KPRIM_CACHE_NEVER, NULL,
					       expires));
	KUNIT_EXPECT_EQ(test, 0, t_store(cache, "k", "w", KPRIM_CACHE_ADD,
					 KPRIM_CACHE_NEVER, NULL, expires));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "k", "w", S64_MAX - 1));
}

static void expiry_default_ttl_and_overflow(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 500);
	s64 expires;

	KUNIT_EXPECT_EQ(test, 0, kprim_cache_expiry(cache, false, 7, T0,
						    &expires));
	KUNIT_EXPECT_EQ(test, T0 + 500, expires);
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_expiry(cache, true, 0, T0,
						    &expires));
	KUNIT_EXPECT_EQ(test, KPRIM_CACHE_NEVER, expires);
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_expiry(cache, true,
						    (u64)S64_MAX - T0 - 1, T0,
						    &expires));
	KUNIT_EXPECT_EQ(test, -EOVERFLOW,
			kprim_cache_expiry(cache, true, (u64)S64_MAX - T0, T0,
					   &expires));
	KUNIT_EXPECT_EQ(test, -EOVERFLOW,
			kprim_cache_expiry(cache, true, U64_MAX, T0, &expires));
}

static void touch_moves_expiry_keeps_cas(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_entry *e;
	u64 cas = 0;

	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "k", "v", KPRIM_CACHE_SET,
					 T0 + 10, &cas, T0));
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_touch(cache, "k", 1, T0 + 100,
						   T0 + 5));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "k", "v", T0 + 99));
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "k", NULL, T0 + 100));
	KUNIT_EXPECT_EQ(test, -ENOENT, kprim_cache_touch(cache, "k", 1,
							 T0 + 1000, T0 + 100));
	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "n", "v", KPRIM_CACHE_SET,
					 T0 + 10, &cas, T0));
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_touch(cache, "n", 1,
						   KPRIM_CACHE_NEVER, T0));
	e = kprim_cache_lookup(cache, "n", 1, S64_MAX - 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_EXPECT_EQ(test, cas, e->cas);
	kprim_cache_entry_put(e);
	KUNIT_EXPECT_EQ(test, -ENOENT, kprim_cache_touch(cache, "x", 1, T0,
							 T0));
}

static void sweep_frees_only_expired(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_info info;
	char key[16];
	int i;

	/* Key i expires at T0 + i; every 10th never. */
	for (i = 1; i <= 100; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		KUNIT_ASSERT_EQ(test, 0, t_store(cache, key, "v",
						 KPRIM_CACHE_SET,
						 i % 10 ? T0 + i :
						 KPRIM_CACHE_NEVER,
						 NULL, T0));
	}
	KUNIT_EXPECT_EQ(test, 0UL, kprim_cache_sweep(cache, T0));
	/* Expired at T0 + 50: 1..50 minus the 5 that never expire. */
	KUNIT_EXPECT_EQ(test, 45UL, kprim_cache_sweep(cache, T0 + 50));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 55ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 45ULL, info.expirations);
	KUNIT_EXPECT_EQ(test, 0UL, kprim_cache_sweep(cache, T0 + 50));
	KUNIT_EXPECT_EQ(test, 45UL, kprim_cache_sweep(cache, S64_MAX - 1));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 10ULL, info.entries);
	/* "key10".."key90" and "key100", each with "v" */
	KUNIT_EXPECT_EQ(test, 9ULL * 6 + 7, info.bytes);
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "key100", "v", S64_MAX - 1));
}

/*
 * The sweep's cost is what expires: with 1000 entries that never expire
 * and 10 that do, a sweep looks at one entry when none is due and at the
 * due ones (plus one) when they are; touch moves an entry in the order.
 */
static void sweep_cost_is_what_expires(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	char key[16];
	u64 seen;
	int i;

	t_fill(test, cache, 1000);
	/* t<i> expires at T0 + 5 + 10 i. */
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "t%d", i);
		KUNIT_ASSERT_EQ(test, 0, t_store(cache, key, "v",
						 KPRIM_CACHE_SET,
						 T0 + 5 + 10 * i, NULL, T0));
	}
	seen = cache->sweep_seen;
	KUNIT_EXPECT_EQ(test, 0UL, kprim_cache_sweep(cache, T0 + 1));
	KUNIT_EXPECT_GE(test, seen + 1, cache->sweep_seen);
	seen = cache->sweep_seen;
	KUNIT_EXPECT_EQ(test, 5UL, kprim_cache_sweep(cache, T0 + 45));
	KUNIT_EXPECT_GE(test, seen + 6, cache->sweep_seen);
	/* t5 now never expires; f7 expires before t6. */
	KUNIT_ASSERT_EQ(test, 0, kprim_cache_touch(cache, "t5", 2,
						   KPRIM_CACHE_NEVER, T0));
	KUNIT_ASSERT_EQ(test, 0, kprim_cache_touch(cache, "f7", 2, T0 + 50,
						   T0));
	seen = cache->sweep_seen;
	KUNIT_EXPECT_EQ(test, 1UL, kprim_cache_sweep(cache, T0 + 52));
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "f7", NULL, T0));
	KUNIT_EXPECT_GE(test, seen + 2, cache->sweep_seen);
	KUNIT_EXPECT_EQ(test, 4UL, kprim_cache_sweep(cache, S64_MAX - 1));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "t5", "v", S64_MAX - 1));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "f8", NULL, S64_MAX - 1));
}

/* LRU: a referenced entry survives, the others go oldest first. */
static void lru_evicts_least_recently_used(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 3, 0);
	struct kprim_cache_info info;

	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "a", "1", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "b", "2", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "c", "3", T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "a", "1", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "d", "4", T0));
	/* b was the oldest not used since: gone; a survived. */
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "b", NULL, T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "e", "5", T0));
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "c", NULL, T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "a", "1", T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "d", "4", T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "e", "5", T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 3ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 2ULL, info.evictions);
}

static void lru_frees_expired_tail_as_expiration(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 2, 0);
	struct kprim_cache_info info;

	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "b", "2", KPRIM_CACHE_SET,
					 T0 + 1, NULL, T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "a", "1", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "c", "3", T0 + 1));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 2ULL, info.entries);
	/* The LRU victim b was dead already: an expiration, no eviction. */
	KUNIT_EXPECT_EQ(test, 0ULL, info.evictions);
	KUNIT_EXPECT_EQ(test, 1ULL, info.expirations);
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "a", "1", T0 + 1));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "c", "3", T0 + 1));
}

static void shrink_evicts_from_tail(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_info info;

	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "a", "1", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "b", "2", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "c", "3", T0));
	KUNIT_EXPECT_EQ(test, 2UL, kprim_cache_shrink(cache, 2, T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "c", "3", T0));
	KUNIT_EXPECT_EQ(test, 1UL, kprim_cache_shrink(cache, 5, T0));
	KUNIT_EXPECT_EQ(test, 0UL, kprim_cache_shrink(cache, 5, T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 0ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 0ULL, info.bytes);
	KUNIT_EXPECT_EQ(test, 3ULL, info.evictions);
}

/*
 * One shrink call frees a bounded number of entries, whatever it is asked
 * for: the shrinker's work under the cache lock is bounded (the old code
 * freed the whole cache in one lock hold).
 */
static void shrink_work_is_bounded_per_call(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_info info;
	unsigned long n, total = 0;
	int calls = 0;

	t_fill(test, cache, 1000);
	n = kprim_cache_shrink(cache, ULONG_MAX, T0);
	KUNIT_EXPECT_LT(test, 0UL, n);
	KUNIT_EXPECT_GE(test, 256UL, n);
	total = n;
	while ((n = kprim_cache_shrink(cache, ULONG_MAX, T0)) && calls++ < 100)
		total += n;
	KUNIT_EXPECT_EQ(test, 1000UL, total);
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 0ULL, info.entries);
}

/*
 * A store that needs thousands of evictions (made room for in many lock
 * holds) lands within the limits, having evicted no more than it needed,
 * even when every entry is referenced (second chances run out).
 */
static void big_store_evicts_in_batches_to_the_limits(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 64 << 10, 1 << 20, 0);
	struct kprim_cache_info info, before;
	char key[16];
	unsigned int i;
	char *big = t_big(test, (64 << 10) - 4096);

	/* "f0".."f3999" with 8 bytes: 10..13 bytes each, ~48 KiB. */
	t_fill(test, cache, 4000);
	for (i = 0; i < 4000; i++) {
		snprintf(key, sizeof(key), "f%u", i);
		KUNIT_EXPECT_TRUE(test, t_has(test, cache, key, NULL, T0));
	}
	t_info(cache, &before);
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "big", big, T0));
	t_info(cache, &info);
	KUNIT_EXPECT_GE(test, 64ULL << 10, info.bytes);
	/* Only as many went as the big value needed. */
	KUNIT_EXPECT_LT(test, (64ULL << 10) - 14, info.bytes);
	KUNIT_EXPECT_EQ(test, before.entries + 1 - info.entries,
			info.evictions);
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "big", NULL, T0));
	/* Replacing it by a small value needs no eviction. */
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "big", "small", T0));
	t_info(cache, &before);
	KUNIT_EXPECT_EQ(test, info.evictions, before.evictions);
}

static int t_pin(struct kprim_cache *cache, const char *key, const char *val)
{
	struct kprim_cache_entry *e;
	u64 cas = 0;

	e = kprim_cache_entry_alloc(key, strlen(key), strlen(val));
	if (!e)
		return -ENOMEM;
	memcpy(e->value, val, strlen(val));
	e->pinned = true;
	return kprim_cache_store_entry(cache, e, KPRIM_CACHE_SET,
				       KPRIM_CACHE_NEVER, &cas, T0);
}

/*
 * Pinned entries are neither evicted for room nor shrunk; they count
 * against the limits and may take half of each; a store with no room left
 * but pinned entries is -ENOSPC; an unpinned store over a pinned key
 * makes it evictable again.
 */
static void pinned_entries_are_not_evicted(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 100, 4, 0);
	struct kprim_cache_info info;
	char v40[41];

	memset(v40, 'x', 40);
	v40[40] = '\0';
	KUNIT_ASSERT_EQ(test, 0, t_pin(cache, "p1", "a"));
	KUNIT_ASSERT_EQ(test, 0, t_pin(cache, "p2", "b"));
	/* Half of max_entries (4) is pinned already. */
	KUNIT_EXPECT_EQ(test, -ENOSPC, t_pin(cache, "p3", "c"));
	/* Re-pinning a pinned key replaces it within the same share. */
	KUNIT_EXPECT_EQ(test, 0, t_pin(cache, "p2", "bb"));
	t_fill(test, cache, 20);
	/* f18 and f19 are left beside them; only they can be shrunk. */
	KUNIT_EXPECT_EQ(test, 2UL, kprim_cache_shrink(cache, 100, T0));
	KUNIT_EXPECT_EQ(test, 0UL, kprim_cache_shrink(cache, 100, T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "p1", "a", T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "p2", "bb", T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 2ULL, info.entries);
	/* Still half of max_entries pinned. */
	KUNIT_EXPECT_EQ(test, -ENOSPC, t_pin(cache, "p3", v40));
	/*
	 * A 94-byte entry fits max_bytes (100) alone, but not beside the 7
	 * pinned bytes: no room can be made.
	 */
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k", v40, T0));
	KUNIT_EXPECT_EQ(test, -ENOSPC, t_set(cache,
		"0123456789012345678901234567890123456789",
		"012345678901234567890123456789012345678901234567890123", T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "p1", "a", T0));
	/* Stored without the flag: evictable like any other. */
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "p1", "a", T0));
	KUNIT_EXPECT_LT(test, 0UL, kprim_cache_shrink(cache, 100, T0));
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "p1", NULL, T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "p2", "bb", T0));
	kprim_cache_flush(cache);
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 0ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 0ULL, cache->nr_pinned);
	KUNIT_EXPECT_EQ(test, 0ULL, cache->pinned_bytes);
	KUNIT_EXPECT_EQ(test, 0ULL, cache->pinned_mem);
}

static void accounting_tracks_bytes_and_entries(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 100, 0, 0);
	struct kprim_cache_info info;
	char v40[41];

	memset(v40, 'x', 40);
	v40[40] = '\0';
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k1", "abc", T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 5ULL, info.bytes);
	KUNIT_EXPECT_EQ(test, 1ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 100ULL, info.params.max_value);	/* min(1M, max_bytes) */
	/* Replacing charges the difference. */
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k1", v40, T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 42ULL, info.bytes);
	KUNIT_EXPECT_EQ(test, 1ULL, info.entries);
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k2", v40, T0));
	/* A third 42-byte entry does not fit in 100: k1 goes. */
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k3", v40, T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 84ULL, info.bytes);
	KUNIT_EXPECT_EQ(test, 2ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 1ULL, info.evictions);
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "k1", NULL, T0));
	/* An entry bigger than the cache is refused, nothing changes. */
	KUNIT_EXPECT_EQ(test, -E2BIG, t_set(cache,
					    "0123456789012345678901234567890123456789",
					    "0123456789012345678901234567890123456789012345678901234567890",
					    T0));
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_delete(cache, "k2", 2, T0));
	KUNIT_EXPECT_EQ(test, -ENOENT, kprim_cache_delete(cache, "k2", 2, T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 42ULL, info.bytes);
	KUNIT_EXPECT_EQ(test, 1ULL, info.entries);
	kprim_cache_flush(cache);
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 0ULL, info.bytes);
	KUNIT_EXPECT_EQ(test, 0ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 1ULL, info.evictions);
}

/*
 * Memory: every entry is charged its header and table share, plus its
 * out-of-line buffer as allocated, and the cache is held to max_mem: three
 * 2102-byte entries fit max_bytes (8192) and max_entries (4), but each
 * takes a 4 KiB kmalloc buffer, so together they do not fit max_mem.
 */
static void memory_counts_headers_and_rounding(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 8192, 4, 0);
	struct kprim_cache_info info;
	char *v = t_big(test, 2100);
	u64 big = KPRIM_CACHE_ENTRY_COST + kmalloc_size_roundup(2102);

	KUNIT_EXPECT_EQ(test, 8192ULL + 4 * KPRIM_CACHE_ENTRY_COST,
			cache->max_mem);
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k1", "abc", T0));
	KUNIT_EXPECT_EQ(test, (u64)KPRIM_CACHE_ENTRY_COST, cache->mem);
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k1", v, T0));
	KUNIT_EXPECT_EQ(test, big, cache->mem);
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k2", v, T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "k3", v, T0));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 2ULL, info.entries);
	KUNIT_EXPECT_EQ(test, 1ULL, info.evictions);
	KUNIT_EXPECT_EQ(test, 2 * big, cache->mem);
	KUNIT_EXPECT_GE(test, cache->max_mem, cache->mem);
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "k1", NULL, T0));
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_delete(cache, "k2", 2, T0));
	KUNIT_EXPECT_EQ(test, big, cache->mem);
	kprim_cache_flush(cache);
	KUNIT_EXPECT_EQ(test, 0ULL, cache->mem);
}

/* What a cache reserves covers the memory of max_entries entries. */
static void reservation_covers_max_entries(struct kunit *test)
{
	struct kprim_cache_params p = {
		.max_bytes = 3 << 20, .max_entries = 1 << 20, .max_value = 1,
	};
	struct kprim_cache *cache = t_cache(test, 3 << 20, 1 << 20, 0);

	/* 2^20 three-byte entries: each a header and a table share. */
	KUNIT_EXPECT_LE(test, (3ULL << 20) + (1ULL << 20) *
			(KPRIM_CACHE_ENTRY_SIZE + 3 * sizeof(void *)),
			kprim_cache_reservation(&p));
	KUNIT_EXPECT_LE(test, cache->max_mem, kprim_cache_reservation(&p));
}

static void big_values_and_keys_live_out_of_line(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_entry *e;
	u8 key[KPRIM_KEY_MAX];
	u64 cas = 0;
	u32 i, len = 100000;

	memset(key, 'k', sizeof(key));
	e = kprim_cache_entry_alloc(key, sizeof(key), len);
	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_PTR_NE(test, (void *)e->key, (void *)e->data);
	for (i = 0; i < len; i++)
		e->value[i] = i * 7;
	KUNIT_ASSERT_EQ(test, 0, kprim_cache_store_entry(cache, e,
							 KPRIM_CACHE_SET,
							 KPRIM_CACHE_NEVER,
							 &cas, T0));
	e = kprim_cache_lookup(cache, key, sizeof(key), T0);
	KUNIT_ASSERT_FALSE(test, IS_ERR(e));
	KUNIT_EXPECT_EQ(test, len, e->value_len);
	KUNIT_EXPECT_EQ(test, (77777 * 7) & 0xff, e->value[77777]);
	kprim_cache_entry_put(e);
	/* A key one byte shorter is another key. */
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "kk", NULL, T0));
	e = kprim_cache_lookup(cache, key, sizeof(key) - 1, T0);
	KUNIT_EXPECT_TRUE(test, IS_ERR(e));
	/* An empty value is inline. */
	e = kprim_cache_entry_alloc("z", 1, 0);
	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_PTR_EQ(test, (void *)e->key, (void *)e->data);
	kprim_cache_entry_put(e);
}

static void cas_versions_order_stores(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	u64 cas1 = 0, cas2, cas3, stale;

	KUNIT_EXPECT_EQ(test, -ENOENT, t_store(cache, "k", "v",
					       KPRIM_CACHE_CAS,
					       KPRIM_CACHE_NEVER, &cas1, T0));
	KUNIT_EXPECT_EQ(test, -ENOENT, t_store(cache, "k", "v",
					       KPRIM_CACHE_REPLACE,
					       KPRIM_CACHE_NEVER, &cas1, T0));
	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "k", "v1", KPRIM_CACHE_ADD,
					 KPRIM_CACHE_NEVER, &cas1, T0));
	KUNIT_EXPECT_NE(test, 0ULL, cas1);
	KUNIT_EXPECT_EQ(test, -EEXIST, t_store(cache, "k", "x",
					       KPRIM_CACHE_ADD,
					       KPRIM_CACHE_NEVER, NULL, T0));
	cas2 = cas1;
	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "k", "v2", KPRIM_CACHE_CAS,
					 KPRIM_CACHE_NEVER, &cas2, T0));
	KUNIT_EXPECT_GT(test, cas2, cas1);
	stale = cas1;
	KUNIT_EXPECT_EQ(test, -ESTALE, t_store(cache, "k", "v3",
					       KPRIM_CACHE_CAS,
					       KPRIM_CACHE_NEVER, &stale, T0));
	KUNIT_EXPECT_EQ(test, cas1, stale);
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "k", "v2", T0));
	cas3 = 0;
	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "k", "v3",
					 KPRIM_CACHE_REPLACE,
					 KPRIM_CACHE_NEVER, &cas3, T0));
	KUNIT_EXPECT_GT(test, cas3, cas2);
	KUNIT_EXPECT_EQ(test, -EINVAL, t_store(cache, "k", "v",
					       KPRIM_CACHE_CAS + 1,
					       KPRIM_CACHE_NEVER, NULL, T0));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "k", "v3", T0));
}

/* Counter parsing: memcached's decimal u64, strictly. */
struct t_parse_case {
	const char *s;
	int ret;
	u64 val;
};

static const struct t_parse_case t_parse_cases[] = {
	{ "0", 0, 0 },
	{ "42", 0, 42 },
	{ "007", 0, 7 },
	{ "18446744073709551615", 0, U64_MAX },
	{ "00000000000000000001", 0, 1 },
	{ "18446744073709551616", -EINVAL, 0 },
	{ "99999999999999999999", -EINVAL, 0 },
	{ "000000000000000000001", -EINVAL, 0 },	/* 21 digits */
	{ "", -EINVAL, 0 },
	{ "-1", -EINVAL, 0 },
	{ "+1", -EINVAL, 0 },
	{ " 1", -EINVAL, 0 },
	{ "1\n", -EINVAL, 0 },
	{ "12a", -EINVAL, 0 },
	{ "abc", -EINVAL, 0 },
};

static void t_parse_desc(const struct t_parse_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "\"%s\"", c->s);
}

KUNIT_ARRAY_PARAM(t_parse, t_parse_cases, t_parse_desc);

static void counter_parse(struct kunit *test)
{
	const struct t_parse_case *c = test->param_value;
	u64 v = 12345;

	KUNIT_EXPECT_EQ(test, c->ret, kprim_cache_parse_u64(c->s, strlen(c->s),
							    &v));
	KUNIT_EXPECT_EQ(test, c->ret ? 12345 : c->val, v);
}

/* incr/decr: from a stored value, a flag set and a delta to a result. */
struct t_incr_case {
	const char *name;
	const char *start;	/* NULL: key absent */
	u32 flags;
	u64 delta;
	u64 initial;
	int ret;
	u64 val;
};

static const struct t_incr_case t_incr_cases[] = {
	{ "incr", "10", 0, 5, 0, 0, 15 },
	{ "incr-wraps", "18446744073709551615", 0, 1, 0, 0, 0 },
	{ "incr-wraps-far", "18446744073709551610", 0, 10, 0, 0, 4 },
	{ "decr", "10", KPRIM_CACHE_DECR, 3, 0, 0, 7 },
	{ "decr-to-zero", "10", KPRIM_CACHE_DECR, 10, 0, 0, 0 },
	{ "decr-saturates", "5", KPRIM_CACHE_DECR, 10, 0, 0, 0 },
	{ "decr-max", "3", KPRIM_CACHE_DECR, U64_MAX, 0, 0, 0 },
	{ "not-a-number", "abc", 0, 1, 0, -EINVAL, 0 },
	{ "empty", "", 0, 1, 0, -EINVAL, 0 },
	{ "21-digits", "000000000000000000001", 0, 1, 0, -EINVAL, 0 },
	{ "20-digits-overflow", "99999999999999999999", 0, 1, 0, -EINVAL, 0 },
	{ "absent", NULL, 0, 1, 0, -ENOENT, 0 },
	{ "absent-decr", NULL, KPRIM_CACHE_DECR, 1, 0, -ENOENT, 0 },
	{ "create", NULL, KPRIM_CACHE_INCR_CREATE, 5, 100, 0, 100 },
	{ "create-present", "1", KPRIM_CACHE_INCR_CREATE, 5, 100, 0, 6 },
	{ "bad-flags", "1", 1U << 7, 1, 0, -EINVAL, 0 },
};

static void t_incr_desc(const struct t_incr_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(t_incr, t_incr_cases, t_incr_desc);

static void counter_incr_decr(struct kunit *test)
{
	const struct t_incr_case *c = test->param_value;
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	u64 val = 0, cas = 0, cas0 = 0;
	char digits[24];

	if (c->start)
		KUNIT_ASSERT_EQ(test, 0, t_store(cache, "n", c->start,
						 KPRIM_CACHE_SET, T0 + 100,
						 &cas0, T0));
	KUNIT_ASSERT_EQ(test, c->ret, kprim_cache_incr(cache, "n", 1, c->flags,
						       c->delta, c->initial,
						       T0, &val, &cas));
	if (c->ret) {
		/* Nothing changed. */
		if (c->start)
			KUNIT_EXPECT_TRUE(test, t_has(test, cache, "n",
						      c->start, T0));
		else
			KUNIT_EXPECT_FALSE(test, t_has(test, cache, "n", NULL,
						       T0));
		return;
	}
	KUNIT_EXPECT_EQ(test, c->val, val);
	KUNIT_EXPECT_GT(test, cas, cas0);
	snprintf(digits, sizeof(digits), "%llu", c->val);
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "n", digits, T0));
	/* The counter keeps the expiry it had. */
	if (c->start)
		KUNIT_EXPECT_FALSE(test, t_has(test, cache, "n", NULL,
					       T0 + 100));
}

static void counter_is_bounded_by_max_value(struct kunit *test)
{
	struct kprim_cache_params p = { .max_bytes = 64, .max_value = 2 };
	struct kprim_cache *cache;
	u64 val, cas;

	cache = kprim_cache_alloc(&p, KPRIM_CACHE_F_MANUAL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(cache));
	KUNIT_ASSERT_EQ(test, 0,
			kunit_add_action_or_reset(test, t_cache_free, cache));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "n", "98", T0));
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_incr(cache, "n", 1, 0, 1, 0, T0,
						  &val, &cas));
	KUNIT_EXPECT_EQ(test, -E2BIG, kprim_cache_incr(cache, "n", 1, 0, 1, 0,
						       T0, &val, &cas));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "n", "99", T0));
}

static int t_report_fail(void *arg, u64 value, u64 cas)
{
	return -EFAULT;
}

struct t_report {
	struct kprim_cache *cache;
	unsigned int calls;
	u64 value[2];
};

/* The first report races a writer: the counter changes under it. */
static int t_report_race(void *arg, u64 value, u64 cas)
{
	struct t_report *r = arg;

	if (r->calls < ARRAY_SIZE(r->value))
		r->value[r->calls] = value;
	if (r->calls++ == 0)
		return t_set(r->cache, "n", "100", T0);
	return 0;
}

/*
 * INCR reports its result before publishing it: a result that cannot be
 * reported is not published, and one the counter moved away from is
 * computed and reported anew.
 */
static void counter_reports_before_publishing(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct t_report r = { .cache = cache };
	u64 val = 0, cas = 0;

	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "n", "41", T0));
	KUNIT_EXPECT_EQ(test, -EFAULT,
			kprim_cache_incr_report(cache, "n", 1, 0, 1, 0, T0,
						&val, &cas, t_report_fail,
						NULL));
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "n", "41", T0));
	KUNIT_EXPECT_EQ(test, -EFAULT,
			kprim_cache_incr_report(cache, "m", 1,
						KPRIM_CACHE_INCR_CREATE, 1, 7,
						T0, &val, &cas, t_report_fail,
						NULL));
	KUNIT_EXPECT_FALSE(test, t_has(test, cache, "m", NULL, T0));

	KUNIT_EXPECT_EQ(test, 0,
			kprim_cache_incr_report(cache, "n", 1, 0, 1, 0, T0,
						&val, &cas, t_report_race, &r));
	KUNIT_EXPECT_EQ(test, 2U, r.calls);
	KUNIT_EXPECT_EQ(test, 42ULL, r.value[0]);
	KUNIT_EXPECT_EQ(test, 101ULL, r.value[1]);
	KUNIT_EXPECT_EQ(test, 101ULL, val);
	KUNIT_EXPECT_TRUE(test, t_has(test, cache, "n", "101", T0));
}

/* Parameter validation. */
struct t_param_case {
	const char *name;
	struct kprim_cache_params p;
	int ret;
};

static const struct t_param_case t_param_cases[] = {
	{ "defaults", { 0, 0, 0, 0 }, 0 },
	{ "caps", { 1ULL << 30, 1ULL << 20, 64ULL << 20, 0 }, 0 },
	{ "bytes-over-cap", { (1ULL << 30) + 1, 0, 0, 0 }, -EINVAL },
	{ "entries-over-cap", { 0, (1ULL << 20) + 1, 0, 0 }, -EINVAL },
	{ "value-over-cap", { 1ULL << 30, 0, (64ULL << 20) + 1, 0 }, -EINVAL },
	{ "value-over-bytes", { 100, 0, 101, 0 }, -EINVAL },
	{ "ttl-over-s64", { 0, 0, 0, (u64)S64_MAX + 1 }, -EINVAL },
	{ "ttl-s64", { 0, 0, 0, (u64)S64_MAX }, 0 },
};

static void t_param_desc(const struct t_param_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(t_param, t_param_cases, t_param_desc);

static void params_are_validated(struct kunit *test)
{
	const struct t_param_case *c = test->param_value;
	struct kprim_cache_info info;
	struct kprim_cache *cache;

	cache = kprim_cache_alloc(&c->p, KPRIM_CACHE_F_MANUAL);
	if (c->ret) {
		KUNIT_EXPECT_EQ(test, (long)c->ret, PTR_ERR(cache));
		return;
	}
	KUNIT_ASSERT_FALSE(test, IS_ERR(cache));
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, c->p.max_bytes ?: KPRIM_CACHE_DEF_BYTES,
			info.params.max_bytes);
	KUNIT_EXPECT_EQ(test, c->p.max_entries ?: KPRIM_CACHE_DEF_ENTRIES,
			info.params.max_entries);
	KUNIT_EXPECT_EQ(test, c->p.max_value ?: KPRIM_CACHE_DEF_VALUE,
			info.params.max_value);
	kprim_cache_free(cache);
}

static void free_releases_full_cache(struct kunit *test)
{
	struct kprim_cache_params p = { 0 };
	struct kprim_cache *cache;
	char key[16];
	int i;

	cache = kprim_cache_alloc(&p, KPRIM_CACHE_F_MANUAL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(cache));
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		KUNIT_EXPECT_EQ(test, 0, t_set(cache, key, "value", T0));
	}
	/* Some out-of-line, some still referenced by nobody. */
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_delete(cache, "k7", 2, T0));
	kprim_cache_free(cache);
}

/* One multi-get key through the core, as the ioctl does it. */
static struct kprim_cache_mget_entry t_mget(struct kprim_cache *cache,
					    const char *key, u64 cap, s64 now,
					    struct kprim_cache_entry **ep)
{
	struct kprim_cache_mget_entry ent = {
		.key_len = strlen(key), .value_len = cap, .result = 1,
		.ttl_ns = 77, .cas = 77,
	};

	*ep = kprim_cache_mget_lookup(cache, &ent, key, now);
	return ent;
}

static void mget_check_bounds_and_sizes(struct kunit *test)
{
	struct kprim_cache_mget a = {
		.size = sizeof(a), .count = 1,
		.entry_size = KPRIM_SIZE_CACHE_MGET_ENTRY_VER0,
	};
	struct kprim_cache_mget b;

	BUILD_BUG_ON(sizeof(struct kprim_cache_mget_entry) !=
		     KPRIM_SIZE_CACHE_MGET_ENTRY_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_cache_mget) !=
		     KPRIM_SIZE_CACHE_MGET_VER0);
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_mget_check(&a));
	b = a;
	b.count = KPRIM_CACHE_MGET_MAX;
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_mget_check(&b));
	b.count = KPRIM_CACHE_MGET_MAX + 1;
	KUNIT_EXPECT_EQ(test, -E2BIG, kprim_cache_mget_check(&b));
	b.count = 0;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_cache_mget_check(&b));
	b = a;
	b.entry_size = KPRIM_SIZE_CACHE_MGET_ENTRY_VER0 - 1;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_cache_mget_check(&b));
	b.entry_size = PAGE_SIZE;
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_mget_check(&b));
	b.entry_size = PAGE_SIZE + 1;
	KUNIT_EXPECT_EQ(test, -E2BIG, kprim_cache_mget_check(&b));
	b = a;
	b.flags = 1;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_cache_mget_check(&b));
	b = a;
	b.reserved = 1;
	KUNIT_EXPECT_EQ(test, -EINVAL, kprim_cache_mget_check(&b));
}

static void mget_lookup_hit_miss_short_expired(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_mget_entry ent;
	struct kprim_cache_info info;
	struct kprim_cache_entry *e;
	u64 cas = 0;

	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "a", "hello", KPRIM_CACHE_SET,
					 KPRIM_CACHE_NEVER, &cas, T0));
	KUNIT_ASSERT_EQ(test, 0, t_store(cache, "t", "xy", KPRIM_CACHE_SET,
					 T0 + 100, NULL, T0));

	/* Hit: the entry comes back referenced, with the out fields. */
	ent = t_mget(cache, "a", 5, T0, &e);
	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, 0, ent.result);
	KUNIT_EXPECT_EQ(test, 5ULL, ent.value_len);
	KUNIT_EXPECT_EQ(test, 0ULL, ent.ttl_ns);
	KUNIT_EXPECT_EQ(test, cas, ent.cas);
	KUNIT_EXPECT_EQ(test, 0, memcmp(e->value, "hello", 5));
	KUNIT_EXPECT_EQ(test, 2U, refcount_read(&e->ref));
	kprim_cache_entry_put(e);

	/* Short buffer: nothing to copy, the needed size, no cas/ttl. */
	ent = t_mget(cache, "a", 4, T0, &e);
	KUNIT_EXPECT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, -EMSGSIZE, ent.result);
	KUNIT_EXPECT_EQ(test, 5ULL, ent.value_len);
	KUNIT_EXPECT_EQ(test, 77ULL, ent.cas);

	/* Expiring key: ttl left while live, a miss at the deadline. */
	ent = t_mget(cache, "t", 2, T0 + 40, &e);
	KUNIT_ASSERT_NOT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, 60ULL, ent.ttl_ns);
	kprim_cache_entry_put(e);
	ent = t_mget(cache, "t", 2, T0 + 100, &e);
	KUNIT_EXPECT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, -ENOENT, ent.result);
	KUNIT_EXPECT_EQ(test, 2ULL, ent.value_len);

	ent = t_mget(cache, "nope", 8, T0, &e);
	KUNIT_EXPECT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, -ENOENT, ent.result);

	/* Counted like single gets: hit, hit (short), hit, miss, miss. */
	t_info(cache, &info);
	KUNIT_EXPECT_EQ(test, 3ULL, info.hits);
	KUNIT_EXPECT_EQ(test, 2ULL, info.misses);
}

/* A reader's reference keeps the value whole while the key goes away. */
static void mget_reference_outlives_delete_and_flush(struct kunit *test)
{
	struct kprim_cache *cache = t_cache(test, 0, 0, 0);
	struct kprim_cache_mget_entry ent;
	struct kprim_cache_entry *e, *f;

	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "a", "first", T0));
	KUNIT_ASSERT_EQ(test, 0, t_set(cache, "b", "second", T0));
	ent = t_mget(cache, "a", 16, T0, &e);
	KUNIT_ASSERT_NOT_NULL(test, e);
	ent = t_mget(cache, "b", 16, T0, &f);
	KUNIT_ASSERT_NOT_NULL(test, f);
	KUNIT_EXPECT_EQ(test, 0, kprim_cache_delete(cache, "a", 1, T0));
	KUNIT_EXPECT_EQ(test, 0, t_set(cache, "b", "other", T0));
	kprim_cache_flush(cache);
	KUNIT_EXPECT_EQ(test, 0, memcmp(e->value, "first", 5));
	KUNIT_EXPECT_EQ(test, 0, memcmp(f->value, "second", 6));
	kprim_cache_entry_put(e);
	kprim_cache_entry_put(f);
	ent = t_mget(cache, "b", 16, T0, &e);
	KUNIT_EXPECT_NULL(test, e);
	KUNIT_EXPECT_EQ(test, -ENOENT, ent.result);
}

static struct kunit_case kprim_cache_cases[] = {
	KUNIT_CASE(mget_check_bounds_and_sizes),
	KUNIT_CASE(mget_lookup_hit_miss_short_expired),
	KUNIT_CASE(mget_reference_outlives_delete_and_flush),
	KUNIT_CASE_PARAM(expiry_boundary_is_exact, t_ttl_gen_params),
	KUNIT_CASE(expiry_default_ttl_and_overflow),
	KUNIT_CASE(touch_moves_expiry_keeps_cas),
	KUNIT_CASE(sweep_frees_only_expired),
	KUNIT_CASE(sweep_cost_is_what_expires),
	KUNIT_CASE(lru_evicts_least_recently_used),
	KUNIT_CASE(lru_frees_expired_tail_as_expiration),
	KUNIT_CASE(shrink_evicts_from_tail),
	KUNIT_CASE(shrink_work_is_bounded_per_call),
	KUNIT_CASE(big_store_evicts_in_batches_to_the_limits),
	KUNIT_CASE(accounting_tracks_bytes_and_entries),
	KUNIT_CASE(big_values_and_keys_live_out_of_line),
	KUNIT_CASE(memory_counts_headers_and_rounding),
	KUNIT_CASE(pinned_entries_are_not_evicted),
	KUNIT_CASE(reservation_covers_max_entries),
	KUNIT_CASE(cas_versions_order_stores),
	KUNIT_CASE_PARAM(counter_parse, t_parse_gen_params),
	KUNIT_CASE_PARAM(counter_incr_decr, t_incr_gen_params),
	KUNIT_CASE(counter_is_bounded_by_max_value),
	KUNIT_CASE(counter_reports_before_publishing),
	KUNIT_CASE_PARAM(params_are_validated, t_param_gen_params),
	KUNIT_CASE(free_releases_full_cache),
	{}
};

static struct kunit_suite kprim_cache_suite = {
	.name = "kprim_cache",
	.test_cases = kprim_cache_cases,
};

kunit_test_suite(kprim_cache_suite);
