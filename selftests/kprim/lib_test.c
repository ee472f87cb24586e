// SPDX-License-Identifier: GPL-2.0
/*
 * libkprim wrappers against the module: the kprim_open() handshake, every
 * kprim_limiter_*, kprim_sem_* and kprim_cache_* wrapper, list and unlink,
 * each bad input on its own, and kernel waits ended by a kprim_ctx
 * (cancelled from another thread, or by its deadline).
 *
 * Timing bounds: the VM is emulated (TCG, maybe KASAN), so a wake-up can
 * lag by a second. Lower bounds are exact (a wait never ends before its
 * cause); upper bounds add SLACK_NS, stated in each test.
 */
#include <grp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "cancel_later.h"
#include "exec_probe.h"
#include "kprim.h"
#include "lib_objects.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
/* The VM's wake-up lag allowance on every upper bound. */
#define SLACK_NS	(2000 * MSEC)
#define HOUR_NS		(3600 * NSEC)

/* A name unique to this process and call site. */
#define LIB_NAME(buf, tag) \
	snprintf(buf, sizeof(buf), "lt-%s-%d-%d", tag, getpid(), __LINE__)

FIXTURE(lib) {
	struct kprim *k;
};

FIXTURE_SETUP(lib)
{
	int rc = kprim_open(&self->k);

	if (rc == -ENODEV)
		SKIP(return, "no /dev/kprim: kprim.ko not loaded");
	ASSERT_EQ(0, rc);
}

FIXTURE_TEARDOWN(lib)
{
	kprim_close(self->k);
}

static struct kprim_cache *new_cache(struct __test_metadata *_metadata,
				     struct kprim *k)
{
	struct kprim_cache_config cfg = { .max_entries = 16 };

	return new_cache_cfg(_metadata, k, &cfg);
}

/* ---- session ---- */

TEST_F(lib, open_handshake_reports_version_and_features)
{
	uint64_t features = 0;

	EXPECT_EQ(KPRIM_LIB_API_VERSION, kprim_api_version(self->k, &features));
	EXPECT_NE(0, features);
	EXPECT_EQ(KPRIM_LIB_API_VERSION, kprim_api_version(self->k, NULL));
}

TEST(open_null_out_einval)
{
	EXPECT_EQ(-EINVAL, kprim_open(NULL));
}

TEST(api_version_null_session_einval)
{
	EXPECT_EQ(-EINVAL, kprim_api_version(NULL, NULL));
}

TEST(close_null_is_noop)
{
	kprim_close(NULL);
	kprim_limiter_close(NULL);
	kprim_sem_close(NULL);
	kprim_cache_close(NULL);
}

/* ---- limiter ---- */

TEST_F(lib, limiter_take_stats_and_retry_after)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS,
					      3, -1);
	struct kprim_limiter_stats st;
	uint64_t retry = 0;

	ASSERT_NE(NULL, l);
	EXPECT_EQ(0, kprim_limiter_take(l, 2, NULL, 0, &retry));
	EXPECT_EQ(0, retry);
	EXPECT_EQ(0, kprim_limiter_try_take(l, 1, NULL));
	EXPECT_EQ(-EAGAIN, kprim_limiter_try_take(l, 1, &retry));
	/* One token per hour: the next one is at most an hour away. */
	EXPECT_LT(0, retry);
	EXPECT_GE(HOUR_NS, retry);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(1, st.rate);
	EXPECT_EQ(HOUR_NS, st.period_ns);
	EXPECT_EQ(3, st.burst);
	EXPECT_EQ(0, st.tokens);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(3, st.admitted);
	EXPECT_EQ(1, st.throttled);
	kprim_limiter_close(l);
}

TEST_F(lib, limiter_initial_fill)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS,
					      10, 4);
	struct kprim_limiter_stats st;

	ASSERT_NE(NULL, l);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(4, st.tokens);
	EXPECT_EQ(4, st.initial);
	kprim_limiter_close(l);
}

TEST_F(lib, limiter_set_rate_and_burst)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, NSEC, 5,
					      -1);
	struct kprim_limiter_stats st;

	ASSERT_NE(NULL, l);
	EXPECT_EQ(0, kprim_limiter_set_rate(l, 7, 2 * NSEC));
	EXPECT_EQ(0, kprim_limiter_set_burst(l, 9));
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(7, st.rate);
	EXPECT_EQ(2 * NSEC, st.period_ns);
	EXPECT_EQ(9, st.burst);
	kprim_limiter_close(l);
}

TEST_F(lib, limiter_from_fd_shares_the_bucket)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS,
					      2, -1);
	struct kprim_limiter *l2 = NULL;
	struct kprim_limiter_stats st;
	int fd;

	ASSERT_NE(NULL, l);
	fd = kprim_limiter_fd(l);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kprim_limiter_from_fd(dup(fd), &l2));
	EXPECT_EQ(0, kprim_limiter_try_take(l2, 2, NULL));
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.tokens);
	EXPECT_EQ(2, st.admitted);
	kprim_limiter_close(l2);
	kprim_limiter_close(l);
}

TEST_F(lib, limiter_from_fd_of_a_sem_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_limiter *l = NULL;

	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, kprim_limiter_from_fd(kprim_sem_fd(s), &l));
	EXPECT_EQ(NULL, l);
	kprim_sem_close(s);
}

TEST(limiter_from_fd_negative_einval)
{
	struct kprim_limiter *l = NULL;

	EXPECT_EQ(-EINVAL, kprim_limiter_from_fd(-1, &l));
}

TEST(limiter_from_fd_null_out_einval)
{
	EXPECT_EQ(-EINVAL, kprim_limiter_from_fd(0, NULL));
}

TEST_F(lib, limiter_take_zero_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, NSEC, 3,
					      -1);

	ASSERT_NE(NULL, l);
	EXPECT_EQ(-EINVAL, kprim_limiter_try_take(l, 0, NULL));
	kprim_limiter_close(l);
}

TEST_F(lib, limiter_take_above_burst_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, NSEC, 3,
					      -1);

	ASSERT_NE(NULL, l);
	EXPECT_EQ(-EINVAL, kprim_limiter_take(l, 4, NULL,
					      KPRIM_TIMEOUT_INFINITE, NULL));
	kprim_limiter_close(l);
}

TEST_F(lib, limiter_create_without_config_einval)
{
	struct kprim_limiter *l = NULL;

	EXPECT_EQ(-EINVAL, kprim_limiter_open(self->k, NULL, KPRIM_CREATE,
					      0600, NULL, &l));
}

TEST_F(lib, limiter_zero_rate_einval)
{
	struct kprim_limiter_config cfg = { .rate = 0, .period_ns = NSEC,
					    .burst = 1 };
	struct kprim_limiter *l = NULL;

	EXPECT_EQ(-EINVAL, kprim_limiter_open(self->k, NULL, KPRIM_CREATE,
					      0600, &cfg, &l));
}

TEST_F(lib, limiter_unknown_open_flag_einval)
{
	struct kprim_limiter_config cfg = { .rate = 1, .period_ns = NSEC,
					    .burst = 1 };
	struct kprim_limiter *l = NULL;

	EXPECT_EQ(-EINVAL, kprim_limiter_open(self->k, NULL,
					      KPRIM_CREATE | (1U << 20), 0600,
					      &cfg, &l));
}

TEST(limiter_open_null_session_einval)
{
	struct kprim_limiter_config cfg = { .rate = 1, .period_ns = NSEC,
					    .burst = 1 };
	struct kprim_limiter *l = NULL;

	EXPECT_EQ(-EINVAL, kprim_limiter_open(NULL, NULL, KPRIM_CREATE, 0600,
					      &cfg, &l));
}

TEST(limiter_null_handle_einval)
{
	struct kprim_limiter_stats st;

	EXPECT_EQ(-EINVAL, kprim_limiter_take(NULL, 1, NULL, 0, NULL));
	EXPECT_EQ(-EINVAL, kprim_limiter_try_take(NULL, 1, NULL));
	EXPECT_EQ(-EINVAL, kprim_limiter_set_rate(NULL, 1, 1));
	EXPECT_EQ(-EINVAL, kprim_limiter_set_burst(NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_limiter_stats(NULL, &st));
	EXPECT_EQ(-EINVAL, kprim_limiter_fd(NULL));
}

TEST_F(lib, limiter_stats_null_out_einval)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, NSEC, 1,
					      -1);

	ASSERT_NE(NULL, l);
	EXPECT_EQ(-EINVAL, kprim_limiter_stats(l, NULL));
	kprim_limiter_close(l);
}

/* ---- semaphore ---- */

TEST_F(lib, sem_acquire_release_stats_holders)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 3);
	struct kprim_sem_holder_info h[4];
	struct kprim_sem_stats st;

	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, kprim_sem_acquire(s, 2, NULL, KPRIM_TIMEOUT_INFINITE));
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(3, st.permits);
	EXPECT_EQ(1, st.available);
	EXPECT_EQ(2, st.held);
	EXPECT_EQ(2, st.held_by_me);
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.acquired);
	ASSERT_EQ(1, kprim_sem_holders(s, h, 4));
	EXPECT_EQ(getpid(), h[0].pid);
	EXPECT_EQ(2, h[0].held);
	/* cap 0: just the count. */
	EXPECT_EQ(1, kprim_sem_holders(s, NULL, 0));
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(s, 2));
	EXPECT_EQ(0, kprim_sem_release(s, 2));
	EXPECT_EQ(0, kprim_sem_holders(s, h, 4));
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(3, st.available);
	kprim_sem_close(s);
}

TEST_F(lib, sem_resize)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_sem_stats st;

	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, kprim_sem_resize(s, 5));
	EXPECT_EQ(0, kprim_sem_try_acquire(s, 5));
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(5, st.permits);
	EXPECT_EQ(0, st.available);
	kprim_sem_close(s);
}

TEST_F(lib, sem_close_returns_permits)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);
	struct kprim_sem *s2 = NULL;
	struct kprim_sem_stats st;
	char name[64];

	ASSERT_NE(NULL, s);
	kprim_sem_close(s);
	LIB_NAME(name, "sem");
	ASSERT_EQ(0, kprim_sem_open(self->k, name, KPRIM_CREATE |
				    KPRIM_TRANSIENT, 0600, 2, &s));
	ASSERT_EQ(0, kprim_sem_open(self->k, name, 0, 0, 0, &s2));
	EXPECT_EQ(0, kprim_sem_try_acquire(s2, 2));
	kprim_sem_close(s2);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(2, st.available);
	kprim_sem_close(s);
}

TEST_F(lib, sem_zero_permits_einval)
{
	struct kprim_sem *s = NULL;

	EXPECT_EQ(-EINVAL, kprim_sem_open(self->k, NULL, KPRIM_CREATE, 0600, 0,
					  &s));
}

TEST_F(lib, sem_acquire_zero_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);

	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, kprim_sem_try_acquire(s, 0));
	kprim_sem_close(s);
}

TEST_F(lib, sem_acquire_above_permits_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);

	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, kprim_sem_acquire(s, 3, NULL,
					     KPRIM_TIMEOUT_INFINITE));
	kprim_sem_close(s);
}

TEST_F(lib, sem_release_not_held_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);

	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, kprim_sem_release(s, 1));
	kprim_sem_close(s);
}

TEST_F(lib, sem_holders_null_array_with_cap_einval)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 2);

	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, kprim_sem_holders(s, NULL, 4));
	kprim_sem_close(s);
}

TEST_F(lib, sem_open_missing_enoent)
{
	struct kprim_sem *s = NULL;
	char name[64];

	LIB_NAME(name, "missing");
	EXPECT_EQ(-ENOENT, kprim_sem_open(self->k, name, 0, 0, 1, &s));
}

TEST(sem_null_handle_einval)
{
	struct kprim_sem_stats st;

	EXPECT_EQ(-EINVAL, kprim_sem_acquire(NULL, 1, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_sem_try_acquire(NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_sem_release(NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_sem_resize(NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_sem_stats(NULL, &st));
	EXPECT_EQ(-EINVAL, kprim_sem_holders(NULL, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_sem_fd(NULL));
}

TEST(sem_open_null_out_einval)
{
	EXPECT_EQ(-EINVAL, kprim_sem_open(NULL, NULL, KPRIM_CREATE, 0600, 1,
					  NULL));
}

/* ---- cache ---- */

#define KEY(s)	s, strlen(s)

TEST_F(lib, cache_set_get_add_replace)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	char buf[32];
	size_t len = sizeof(buf);
	uint64_t ttl = 1, cas = 0, cas2 = 0;

	ASSERT_NE(NULL, c);
	EXPECT_EQ(-ENOENT, kprim_cache_get(c, KEY("a"), buf, &len, NULL, NULL));
	EXPECT_EQ(0, kprim_cache_set(c, KEY("a"), "one", 3, 0, &cas));
	EXPECT_NE(0, cas);
	len = sizeof(buf);
	EXPECT_EQ(0, kprim_cache_get(c, KEY("a"), buf, &len, &ttl, &cas2));
	EXPECT_EQ(3, len);
	EXPECT_EQ(0, memcmp("one", buf, 3));
	EXPECT_EQ(0, ttl);		/* stored with ttl 0: never expires */
	EXPECT_EQ(cas, cas2);
	EXPECT_EQ(-EEXIST, kprim_cache_add(c, KEY("a"), "x", 1, 0, NULL));
	EXPECT_EQ(0, kprim_cache_add(c, KEY("b"), "bee", 3, 0, NULL));
	EXPECT_EQ(-ENOENT, kprim_cache_replace(c, KEY("zz"), "x", 1, 0, NULL));
	EXPECT_EQ(0, kprim_cache_replace(c, KEY("a"), "uno", 3, 0, NULL));
	len = sizeof(buf);
	EXPECT_EQ(0, kprim_cache_get(c, KEY("a"), buf, &len, NULL, NULL));
	EXPECT_EQ(0, memcmp("uno", buf, 3));
	kprim_cache_close(c);
}

TEST_F(lib, cache_cas_detects_change)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	uint64_t v1 = 0, v2, mine;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, kprim_cache_set(c, KEY("k"), "1", 1, 0, &v1));
	v2 = v1;
	EXPECT_EQ(0, kprim_cache_cas(c, KEY("k"), "2", 1, 0, &v2));
	EXPECT_NE(v1, v2);
	mine = v1;		/* an old version: someone stored since */
	EXPECT_EQ(-ESTALE, kprim_cache_cas(c, KEY("k"), "3", 1, 0, &mine));
	mine = v2;
	EXPECT_EQ(-ENOENT, kprim_cache_cas(c, KEY("absent"), "3", 1, 0, &mine));
	kprim_cache_close(c);
}

TEST_F(lib, cache_cas_null_version_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);

	ASSERT_NE(NULL, c);
	EXPECT_EQ(-EINVAL, kprim_cache_cas(c, KEY("k"), "1", 1, 0, NULL));
	kprim_cache_close(c);
}

TEST_F(lib, cache_get_small_buffer_emsgsize)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	char buf[2];
	size_t len = sizeof(buf);

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, kprim_cache_set(c, KEY("k"), "12345", 5, 0, NULL));
	EXPECT_EQ(-EMSGSIZE, kprim_cache_get(c, KEY("k"), buf, &len, NULL,
					     NULL));
	EXPECT_EQ(5, len);
	kprim_cache_close(c);
}

TEST_F(lib, cache_get_null_len_einval)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	char buf[8];

	ASSERT_NE(NULL, c);
	EXPECT_EQ(-EINVAL, kprim_cache_get(c, KEY("k"), buf, NULL, NULL, NULL));
	kprim_cache_close(c);
}

TEST_F(lib, cache_delete_touch)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	char buf[8];
	size_t len = sizeof(buf);
	uint64_t ttl = 0;

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, kprim_cache_set(c, KEY("k"), "v", 1, 0, NULL));
	EXPECT_EQ(0, kprim_cache_touch(c, KEY("k"), HOUR_NS));
	EXPECT_EQ(0, kprim_cache_get(c, KEY("k"), buf, &len, &ttl, NULL));
	EXPECT_LT(0, ttl);
	EXPECT_GE(HOUR_NS, ttl);
	EXPECT_EQ(-ENOENT, kprim_cache_touch(c, KEY("nope"), HOUR_NS));
	EXPECT_EQ(0, kprim_cache_delete(c, KEY("k")));
	EXPECT_EQ(-ENOENT, kprim_cache_delete(c, KEY("k")));
	kprim_cache_close(c);
}

TEST_F(lib, cache_incr_decr)
{
	struct kprim_cache *c = new_cache(_metadata, self->k);
	uint64_t v = 0;

	ASSERT_NE(NULL, c);
	EXPECT_EQ(-ENOENT, kprim_cache_incr(c, KEY("n"), 1, &v));
	ASSERT_EQ(0, kprim_cache_set(c, KEY("n"), "40", 2, 0, NULL));
	EXPECT_EQ(0, kprim_cache_incr(c, KEY("n"), 2, &v));
	EXPECT_EQ(42, v);
	EXPECT_EQ(0, kprim_cache_decr(c, KEY("n"), 50, &v));
	EXPECT_EQ(0, v);		/* saturates at 0 */
	ASSERT_EQ(0, kprim_cache_set(c, KEY("s"), "abc", 3, 0, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_incr(c, KEY("s"), 1, NULL));
	kprim_cache_close(c);
}

TEST_F(lib, cache_flush_and_stats)
{
	struct kprim_cache_config cfg = { .max_bytes = 1 << 20,
					  .max_entries = 8, .max_value = 64 };
	struct kprim_cache *c = NULL;
	struct kprim_cache_stats st;
	char buf[8];
	size_t len = sizeof(buf);

	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600, &cfg,
				      &c));
	ASSERT_EQ(0, kprim_cache_set(c, KEY("a"), "1", 1, 0, NULL));
	ASSERT_EQ(0, kprim_cache_set(c, KEY("b"), "2", 1, 0, NULL));
	EXPECT_EQ(0, kprim_cache_get(c, KEY("a"), buf, &len, NULL, NULL));
	len = sizeof(buf);
	EXPECT_EQ(-ENOENT, kprim_cache_get(c, KEY("x"), buf, &len, NULL, NULL));
	ASSERT_EQ(0, kprim_cache_stats(c, &st));
	EXPECT_EQ(1 << 20, st.config.max_bytes);
	EXPECT_EQ(8, st.config.max_entries);
	EXPECT_EQ(64, st.config.max_value);
	EXPECT_EQ(2, st.entries);
	EXPECT_LT(0, st.bytes);
	EXPECT_EQ(1, st.hits);
	EXPECT_EQ(1, st.misses);
	EXPECT_EQ(0, kprim_cache_flush(c));
	ASSERT_EQ(0, kprim_cache_stats(c, &st));
	EXPECT_EQ(0, st.entries);
	EXPECT_LE(0, kprim_cache_fd(c));
	kprim_cache_close(c);
}

TEST_F(lib, cache_value_above_max_e2big)
{
	struct kprim_cache_config cfg = { .max_value = 4 };
	struct kprim_cache *c = NULL;

	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600, &cfg,
				      &c));
	EXPECT_EQ(-E2BIG, kprim_cache_set(c, KEY("k"), "12345", 5, 0, NULL));
	kprim_cache_close(c);
}

TEST(cache_null_handle_einval)
{
	struct kprim_cache_stats st;
	uint64_t cas = 0;
	char buf[4];
	size_t len = sizeof(buf);

	EXPECT_EQ(-EINVAL, kprim_cache_get(NULL, KEY("k"), buf, &len, NULL,
					   NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_set(NULL, KEY("k"), "v", 1, 0, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_add(NULL, KEY("k"), "v", 1, 0, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_replace(NULL, KEY("k"), "v", 1, 0,
					       NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_cas(NULL, KEY("k"), "v", 1, 0, &cas));
	EXPECT_EQ(-EINVAL, kprim_cache_delete(NULL, KEY("k")));
	EXPECT_EQ(-EINVAL, kprim_cache_touch(NULL, KEY("k"), 0));
	EXPECT_EQ(-EINVAL, kprim_cache_incr(NULL, KEY("k"), 1, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_decr(NULL, KEY("k"), 1, NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_flush(NULL));
	EXPECT_EQ(-EINVAL, kprim_cache_stats(NULL, &st));
	EXPECT_EQ(-EINVAL, kprim_cache_fd(NULL));
}

TEST(cache_open_null_out_einval)
{
	EXPECT_EQ(-EINVAL, kprim_cache_open(NULL, NULL, KPRIM_CREATE, 0600,
					    NULL, NULL));
}

/* ---- list and unlink ---- */

struct find {
	const char *name;
	int kind;
	uint64_t v0;
	int seen;
};

static int find_fn(const struct kprim_object_info *info, void *arg)
{
	struct find *f = arg;

	if (strcmp(info->name, f->name))
		return 0;
	f->seen++;
	f->kind = info->kind;
	f->v0 = info->nv ? info->v[0] : 0;
	return 0;
}

static int stop_fn(const struct kprim_object_info *info, void *arg)
{
	(void)info;
	(*(int *)arg)++;
	return 7;
}

TEST_F(lib, list_sees_created_object)
{
	struct kprim_limiter_config cfg = { .rate = 5, .period_ns = NSEC,
					    .burst = 1 };
	struct kprim_limiter *l = NULL;
	struct find f = { 0 };
	char name[64];

	LIB_NAME(name, "list");
	ASSERT_EQ(0, kprim_limiter_open(self->k, name, KPRIM_CREATE |
					KPRIM_TRANSIENT, 0600, &cfg, &l));
	f.name = name;
	EXPECT_EQ(0, kprim_list(self->k, find_fn, &f));
	EXPECT_EQ(1, f.seen);
	EXPECT_EQ(KPRIM_LIMITER_KIND, f.kind);
	EXPECT_EQ(5, f.v0);		/* limiter v[0] is the rate */
	kprim_limiter_close(l);
}

TEST_F(lib, list_callback_return_stops_the_walk)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	int calls = 0;

	ASSERT_NE(NULL, s);
	EXPECT_EQ(7, kprim_list(self->k, stop_fn, &calls));
	EXPECT_EQ(1, calls);
	kprim_sem_close(s);
}

TEST_F(lib, list_null_callback_einval)
{
	EXPECT_EQ(-EINVAL, kprim_list(self->k, NULL, NULL));
}

TEST(list_null_session_einval)
{
	int calls = 0;

	EXPECT_EQ(-EINVAL, kprim_list(NULL, stop_fn, &calls));
}

TEST_F(lib, unlink_removes_the_name)
{
	struct kprim_cache *c = NULL, *c2 = NULL;
	char name[64];

	LIB_NAME(name, "unlink");
	ASSERT_EQ(0, kprim_cache_open(self->k, name, KPRIM_CREATE, 0600, NULL,
				      &c));
	EXPECT_EQ(0, kprim_unlink(self->k, KPRIM_CACHE_KIND, name));
	EXPECT_EQ(-ENOENT, kprim_cache_open(self->k, name, 0, 0, NULL, &c2));
	EXPECT_EQ(-ENOENT, kprim_unlink(self->k, KPRIM_CACHE_KIND, name));
	/* The open handle keeps the object. */
	EXPECT_EQ(0, kprim_cache_set(c, KEY("k"), "v", 1, 0, NULL));
	kprim_cache_close(c);
}

TEST_F(lib, unlink_null_name_einval)
{
	EXPECT_EQ(-EINVAL, kprim_unlink(self->k, KPRIM_SEM_KIND, NULL));
}

TEST(unlink_null_session_einval)
{
	EXPECT_EQ(-EINVAL, kprim_unlink(NULL, KPRIM_SEM_KIND, "x"));
}

TEST_F(lib, open_empty_name_einval)
{
	struct kprim_sem *s = NULL;

	EXPECT_EQ(-EINVAL, kprim_sem_open(self->k, "", KPRIM_CREATE, 0600, 1,
					  &s));
}

/* ---- ownership: the wrappers' CREATE opens "mine or fail" ---- */

/* As uid 65534: create @name of each kind first, mode 0666; exit 0. */
static int squat_all_kinds(const char *name)
{
	struct kprim_limiter_config lcfg = { .rate = 1, .period_ns = NSEC,
					     .burst = 1 };
	struct kprim_limiter *l;
	struct kprim_cache *c;
	struct kprim_sem *s;
	struct kprim *k;
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (kprim_open(&k))
			_exit(100);
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(101);
		if (kprim_limiter_open(k, name, KPRIM_CREATE | KPRIM_EXCL,
				       0666, &lcfg, &l) ||
		    kprim_sem_open(k, name, KPRIM_CREATE | KPRIM_EXCL, 0666, 1,
				   &s) ||
		    kprim_cache_open(k, name, KPRIM_CREATE | KPRIM_EXCL, 0666,
				     NULL, &c))
			_exit(102);
		_exit(0);	/* persistent: the names stay */
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static void unlink_all_kinds(struct kprim *k, const char *name)
{
	kprim_unlink(k, KPRIM_LIMITER_KIND, name);
	kprim_unlink(k, KPRIM_SEM_KIND, name);
	kprim_unlink(k, KPRIM_CACHE_KIND, name);
}

TEST_F(lib, create_refuses_an_object_another_user_owns)
{
	struct kprim_limiter_config lcfg = { .rate = 1, .period_ns = NSEC,
					     .burst = 1 };
	struct kprim_limiter *l = NULL;
	struct kprim_cache *c = NULL;
	struct kprim_sem *s = NULL;
	char name[64];

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	LIB_NAME(name, "squat");
	ASSERT_EQ(0, squat_all_kinds(name));
	EXPECT_EQ(-EPERM, kprim_limiter_open(self->k, name, KPRIM_CREATE, 0600,
					     &lcfg, &l));
	EXPECT_EQ(-EPERM, kprim_sem_open(self->k, name, KPRIM_CREATE, 0600, 1,
					 &s));
	EXPECT_EQ(-EPERM, kprim_cache_open(self->k, name, KPRIM_CREATE, 0600,
					   NULL, &c));
	EXPECT_EQ(NULL, l);
	EXPECT_EQ(NULL, s);
	EXPECT_EQ(NULL, c);
	unlink_all_kinds(self->k, name);
}

TEST_F(lib, any_owner_joins_an_object_another_user_owns)
{
	struct kprim_sem *s = NULL;
	char name[64];

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	LIB_NAME(name, "anyowner");
	ASSERT_EQ(0, squat_all_kinds(name));
	EXPECT_EQ(0, kprim_sem_open(self->k, name,
				    KPRIM_CREATE | KPRIM_ANY_OWNER, 0600, 1,
				    &s));
	kprim_sem_close(s);
	s = NULL;
	/* A plain open (no CREATE) opens whoever owns it... */
	EXPECT_EQ(0, kprim_sem_open(self->k, name, 0, 0, 0, &s));
	kprim_sem_close(s);
	s = NULL;
	/* ...unless OWNED is asked for. */
	EXPECT_EQ(-EPERM, kprim_sem_open(self->k, name, KPRIM_OWNED, 0, 0, &s));
	unlink_all_kinds(self->k, name);
}

TEST_F(lib, create_reopens_own_object)
{
	struct kprim_sem *s = NULL, *s2 = NULL;
	char name[64];

	LIB_NAME(name, "own");
	ASSERT_EQ(0, kprim_sem_open(self->k, name, KPRIM_CREATE |
				    KPRIM_TRANSIENT, 0600, 1, &s));
	EXPECT_EQ(0, kprim_sem_open(self->k, name, KPRIM_CREATE, 0600, 1, &s2));
	kprim_sem_close(s2);
	kprim_sem_close(s);
}

TEST_F(lib, owned_with_any_owner_einval)
{
	struct kprim_sem *s = NULL;

	EXPECT_EQ(-EINVAL, kprim_sem_open(self->k, NULL, KPRIM_CREATE |
					  KPRIM_OWNED | KPRIM_ANY_OWNER, 0600,
					  1, &s));
}

TEST_F(lib, inherit_with_cloexec_einval)
{
	struct kprim_sem *s = NULL;

	EXPECT_EQ(-EINVAL, kprim_sem_open(self->k, NULL, KPRIM_CREATE |
					  KPRIM_INHERIT | KPRIM_CLOEXEC, 0600,
					  1, &s));
}

/* ---- fork and exec ---- */

/* A named semaphore (1 permit) held by *@s, watched through *@w. */
static void held_sem(struct __test_metadata *_metadata, struct kprim *k,
		     unsigned int flags, struct kprim_sem **s,
		     struct kprim_sem **w)
{
	char name[64];

	LIB_NAME(name, "exec");
	ASSERT_EQ(0, kprim_sem_open(k, name, KPRIM_CREATE | KPRIM_TRANSIENT |
				    flags, 0600, 1, s));
	ASSERT_EQ(0, kprim_sem_open(k, name, 0, 0, 0, w));
	ASSERT_EQ(0, kprim_sem_try_acquire(*s, 1));
}

static uint64_t sem_avail(struct kprim_sem *s)
{
	struct kprim_sem_stats st = { 0 };

	return kprim_sem_stats(s, &st) ? ~0ull : st.available;
}

TEST_F(lib, exec_drops_handles_and_session)
{
	struct kprim_sem *s = NULL, *w = NULL;
	char seen = '?';
	int hold;
	pid_t pid;

	held_sem(_metadata, self->k, 0, &s, &w);
	pid = exec_probe_start(kprim_sem_fd(s), &seen, &hold);
	ASSERT_LT(0, pid);
	EXPECT_EQ('C', seen);
	kprim_sem_close(s);
	EXPECT_EQ(1, sem_avail(w));	/* the probe still runs */
	EXPECT_EQ(0, exec_probe_end(pid, hold));
	kprim_sem_close(w);
}

TEST_F(lib, exec_keeps_inherit_handle_and_its_permits)
{
	struct kprim_sem *s = NULL, *w = NULL;
	char seen = '?';
	int hold;
	pid_t pid;

	held_sem(_metadata, self->k, KPRIM_INHERIT, &s, &w);
	pid = exec_probe_start(kprim_sem_fd(s), &seen, &hold);
	ASSERT_LT(0, pid);
	EXPECT_EQ('O', seen);
	kprim_sem_close(s);
	EXPECT_EQ(0, sem_avail(w));	/* held through the probe's copy */
	EXPECT_EQ(0, exec_probe_end(pid, hold));
	EXPECT_EQ(1, sem_avail(w));
	kprim_sem_close(w);
}

/* The session fd is close-on-exec too. */
TEST_F(lib, session_fd_is_cloexec)
{
	char path[64], link[64];
	int fd, found = 0;
	ssize_t n;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "/dev/kprim"))
			continue;
		found++;
		EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	}
	EXPECT_LT(0, found);
}

/*
 * Fork: the child's copy of a handle is the same open file. Closing the
 * parent's handle does not return the permit while the child's copy is
 * open; the child's exit does.
 */
TEST_F(lib, fork_shares_permits_until_last_copy_closes)
{
	struct kprim_sem *s = NULL, *w = NULL;
	int p[2], status;
	char c;
	pid_t pid;

	held_sem(_metadata, self->k, 0, &s, &w);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(p[1]);
		while (read(p[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(p[0]);
	kprim_sem_close(s);
	EXPECT_EQ(0, sem_avail(w));	/* the child's copy still holds it */
	close(p[1]);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(1, sem_avail(w));
	kprim_sem_close(w);
}

/* ---- kernel waits ended by a context ---- */


#define CANCEL_AFTER_NS	(200 * MSEC)

TEST_F(lib, ctx_cancel_ends_sem_acquire)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct canceller c = { .delay_ns = CANCEL_AFTER_NS };
	struct kprim_sem_stats st;
	uint64_t t0, dt;
	pthread_t th;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, kprim_sem_try_acquire(s, 1));
	ASSERT_EQ(0, kprim_ctx_new(NULL, &c.ctx));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, kprim_sem_acquire(s, 1, c.ctx,
						KPRIM_TIMEOUT_INFINITE));
	dt = kprim_now_ns() - t0;
	pthread_join(th, NULL);
	/* Not before the cancel; within 2 s (SLACK_NS) after it. */
	EXPECT_LE(CANCEL_AFTER_NS, dt);
	EXPECT_GT(CANCEL_AFTER_NS + SLACK_NS, dt);
	ASSERT_EQ(0, kprim_sem_stats(s, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(1, st.held_by_me);	/* the cancelled wait got nothing */
	kprim_ctx_free(c.ctx);
	kprim_sem_close(s);
}

TEST_F(lib, ctx_cancel_ends_limiter_take)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS,
					      1, 0);
	struct canceller c = { .delay_ns = CANCEL_AFTER_NS };
	struct kprim_limiter_stats st;
	uint64_t t0, dt;
	pthread_t th;

	ASSERT_NE(NULL, l);
	ASSERT_EQ(0, kprim_ctx_new(NULL, &c.ctx));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, kprim_limiter_take(l, 1, c.ctx,
						 KPRIM_TIMEOUT_INFINITE, NULL));
	dt = kprim_now_ns() - t0;
	pthread_join(th, NULL);
	/* Not before the cancel; within 2 s (SLACK_NS) after it. */
	EXPECT_LE(CANCEL_AFTER_NS, dt);
	EXPECT_GT(CANCEL_AFTER_NS + SLACK_NS, dt);
	ASSERT_EQ(0, kprim_limiter_stats(l, &st));
	EXPECT_EQ(0, st.waiters);
	EXPECT_EQ(0, st.admitted);
	kprim_ctx_free(c.ctx);
	kprim_limiter_close(l);
}

TEST_F(lib, ctx_cancelled_parent_ends_child_wait)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct canceller c = { .delay_ns = CANCEL_AFTER_NS };
	struct kprim_ctx *child = NULL;
	uint64_t t0, dt;
	pthread_t th;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, kprim_sem_try_acquire(s, 1));
	ASSERT_EQ(0, kprim_ctx_new(NULL, &c.ctx));
	ASSERT_EQ(0, kprim_ctx_new(c.ctx, &child));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, cancel_later, &c));
	EXPECT_EQ(-ECANCELED, kprim_sem_acquire(s, 1, child,
						KPRIM_TIMEOUT_INFINITE));
	dt = kprim_now_ns() - t0;
	pthread_join(th, NULL);
	/* Not before the cancel; within 2 s (SLACK_NS) after it. */
	EXPECT_LE(CANCEL_AFTER_NS, dt);
	EXPECT_GT(CANCEL_AFTER_NS + SLACK_NS, dt);
	kprim_ctx_free(child);
	kprim_ctx_free(c.ctx);
	kprim_sem_close(s);
}

#define DEADLINE_NS	(300 * MSEC)

TEST_F(lib, ctx_deadline_ends_sem_acquire)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_ctx *ctx = NULL;
	uint64_t t0, dt;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, kprim_sem_try_acquire(s, 1));
	t0 = kprim_now_ns();
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, DEADLINE_NS, &ctx));
	EXPECT_EQ(-ETIMEDOUT, kprim_sem_acquire(s, 1, ctx,
						KPRIM_TIMEOUT_INFINITE));
	dt = kprim_now_ns() - t0;
	/* Not before the deadline; within 2 s (SLACK_NS) after it. */
	EXPECT_LE(DEADLINE_NS, dt);
	EXPECT_GT(DEADLINE_NS + SLACK_NS, dt);
	EXPECT_EQ(-ETIMEDOUT, kprim_ctx_err(ctx));
	kprim_ctx_free(ctx);
	kprim_sem_close(s);
}

TEST_F(lib, ctx_deadline_ends_limiter_take)
{
	struct kprim_limiter *l = new_limiter(_metadata, self->k, 1, HOUR_NS,
					      1, 0);
	struct kprim_ctx *ctx = NULL;
	uint64_t t0, dt;

	ASSERT_NE(NULL, l);
	t0 = kprim_now_ns();
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, DEADLINE_NS, &ctx));
	EXPECT_EQ(-ETIMEDOUT, kprim_limiter_take(l, 1, ctx,
						 KPRIM_TIMEOUT_INFINITE, NULL));
	dt = kprim_now_ns() - t0;
	/* Not before the deadline; within 2 s (SLACK_NS) after it. */
	EXPECT_LE(DEADLINE_NS, dt);
	EXPECT_GT(DEADLINE_NS + SLACK_NS, dt);
	kprim_ctx_free(ctx);
	kprim_limiter_close(l);
}

TEST_F(lib, ctx_own_timeout_shorter_than_deadline_is_etimedout)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_ctx *ctx = NULL;
	uint64_t t0, dt;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, kprim_sem_try_acquire(s, 1));
	ASSERT_EQ(0, kprim_ctx_with_timeout(NULL, HOUR_NS, &ctx));
	t0 = kprim_now_ns();
	EXPECT_EQ(-ETIMEDOUT, kprim_sem_acquire(s, 1, ctx, DEADLINE_NS));
	dt = kprim_now_ns() - t0;
	/* The call's own timeout: not before it, within SLACK_NS after. */
	EXPECT_LE(DEADLINE_NS, dt);
	EXPECT_GT(DEADLINE_NS + SLACK_NS, dt);
	EXPECT_EQ(0, kprim_ctx_err(ctx));	/* the context lives on */
	kprim_ctx_free(ctx);
	kprim_sem_close(s);
}

TEST_F(lib, ctx_already_cancelled_fails_without_waiting)
{
	struct kprim_sem *s = new_sem(_metadata, self->k, 1);
	struct kprim_ctx *ctx = NULL;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, kprim_ctx_new(NULL, &ctx));
	kprim_ctx_cancel(ctx);
	/* Even with a permit free: a cancelled context admits nothing. */
	EXPECT_EQ(-ECANCELED, kprim_sem_acquire(s, 1, ctx,
						KPRIM_TIMEOUT_INFINITE));
	/* A try (timeout 0) too, as a channel select would. */
	EXPECT_EQ(-ECANCELED, kprim_sem_acquire(s, 1, ctx, 0));
	kprim_ctx_free(ctx);
	kprim_sem_close(s);
}

TEST_HARNESS_MAIN
