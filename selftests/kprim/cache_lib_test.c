// SPDX-License-Identifier: GPL-2.0
/*
 * The cache through libkprim: what the library passes to the kernel for
 * its special values (KPRIM_TTL_DEFAULT on touch), pinned stores, and the
 * shared breaker's state surviving memory pressure on its cache.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim.h"

#define MS	1000000ull
#define SEC	(1000 * MS)

FIXTURE(lib) {
	struct kprim *k;
	char name[64];
};

FIXTURE_SETUP(lib)
{
	int rc = kprim_open(&self->k);

	if (rc)
		SKIP(return, "kprim_open: %s (is kprim.ko loaded?)",
		     strerror(-rc));
	snprintf(self->name, sizeof(self->name), "cache-lib-%d", getpid());
}

FIXTURE_TEARDOWN(lib)
{
	if (self->k)
		kprim_close(self->k);
}

/* touch(KPRIM_TTL_DEFAULT) gives the entry the cache's default TTL. */
TEST_F(lib, touch_with_ttl_default_uses_the_default)
{
	const struct kprim_cache_config cfg = { .default_ttl_ns = 100 * SEC };
	struct kprim_cache *c;
	uint64_t ttl = 0;
	size_t len;
	char buf[8];

	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600, &cfg,
				      &c));
	/* Stored to never expire, then touched to the default. */
	ASSERT_EQ(0, kprim_cache_set(c, "k", 1, "v", 1, 0, NULL));
	len = sizeof(buf);
	ASSERT_EQ(0, kprim_cache_get(c, "k", 1, buf, &len, &ttl, NULL));
	EXPECT_EQ(0ull, ttl);
	EXPECT_EQ(0, kprim_cache_touch(c, "k", 1, KPRIM_TTL_DEFAULT));
	len = sizeof(buf);
	ASSERT_EQ(0, kprim_cache_get(c, "k", 1, buf, &len, &ttl, NULL));
	EXPECT_LT(0ull, ttl);
	EXPECT_GE(100 * SEC, ttl);
	/* An explicit TTL still works, and 0 still means never. */
	EXPECT_EQ(0, kprim_cache_touch(c, "k", 1, 0));
	len = sizeof(buf);
	ASSERT_EQ(0, kprim_cache_get(c, "k", 1, buf, &len, &ttl, NULL));
	EXPECT_EQ(0ull, ttl);
	kprim_cache_close(c);
}

/* Pinned entries outlive any number of stores; half the cache at most. */
TEST_F(lib, pinned_entries_are_never_evicted)
{
	const struct kprim_cache_config cfg = { .max_entries = 8 };
	struct kprim_cache_stats st;
	struct kprim_cache *c;
	char key[16];
	size_t len;
	char buf[8];

	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600, &cfg,
				      &c));
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		ASSERT_EQ(0, kprim_cache_store(c, KPRIM_STORE_SET,
					       KPRIM_STORE_PINNED, key,
					       strlen(key), "v", 1, 0, NULL));
	}
	/* A fifth would pin more than half of max_entries. */
	EXPECT_EQ(-ENOSPC, kprim_cache_store(c, KPRIM_STORE_SET,
					     KPRIM_STORE_PINNED, "p4", 2, "v",
					     1, 0, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_store(c, KPRIM_STORE_SET, 1u << 7,
					     "x", 1, "v", 1, 0, NULL));
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, kprim_cache_set(c, key, strlen(key), "v", 1, 0,
					     NULL));
	}
	ASSERT_EQ(0, kprim_cache_stats(c, &st));
	EXPECT_EQ(8ull, st.entries);
	EXPECT_EQ(96ull, st.evictions);
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		len = sizeof(buf);
		EXPECT_EQ(0, kprim_cache_get(c, key, strlen(key), buf, &len,
					     NULL, NULL));
	}
	/* Stored again without the flag: unpinned, evictable. */
	ASSERT_EQ(0, kprim_cache_set(c, "p0", 2, "w", 1, 0, NULL));
	for (int i = 100; i < 110; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, kprim_cache_set(c, key, strlen(key), "v", 1, 0,
					     NULL));
	}
	len = sizeof(buf);
	EXPECT_EQ(-ENOENT, kprim_cache_get(c, "p0", 2, buf, &len, NULL, NULL));
	len = sizeof(buf);
	EXPECT_EQ(0, kprim_cache_get(c, "p1", 2, buf, &len, NULL, NULL));
	kprim_cache_close(c);
}

/*
 * A shared breaker forced open stays open while other users of the host
 * fill its cache (8 entries) far beyond its limits: its state entry is
 * pinned. It used to be evicted, and the breaker silently restarted
 * closed.
 */
TEST_F(lib, shared_breaker_state_survives_cache_pressure)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 3,
		.open_timeout_ns = 3600 * SEC,
		.half_open_probes = 1,
		.success_threshold = 1,
	};
	struct kprim_breaker *b;
	struct kprim_cache *c;
	char obj[128], key[16];

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, kprim_breaker_force_open(b));
	ASSERT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	snprintf(obj, sizeof(obj), "kprim-breaker.%s", self->name);
	ASSERT_EQ(0, kprim_cache_open(self->k, obj, 0, 0, NULL, &c));
	for (int i = 0; i < 64; i++) {
		snprintf(key, sizeof(key), "junk%d", i);
		ASSERT_EQ(0, kprim_cache_set(c, key, strlen(key), "x", 1, 0,
					     NULL));
	}
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	kprim_cache_close(c);
	kprim_breaker_free(b);
	kprim_unlink(self->k, KPRIM_CACHE_KIND, obj);
	kprim_unlink(self->k, KPRIM_SEM_KIND, obj);
}

TEST_HARNESS_MAIN
