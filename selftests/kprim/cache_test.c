// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for the kprim expiring key-value cache, through raw ioctls.
 *
 * Every test gets a fresh named, transient cache (gone with its last fd) of
 * CACHE_BYTES / CACHE_ENTRIES / CACHE_VALUE. Time-dependent assertions are
 * made only where the clock readings around a call prove the outcome, so
 * they hold in a slow TCG VM too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kprim_test.h"

#define CACHE_BYTES	(4ull << 20)
#define CACHE_ENTRIES	4096ull
#define CACHE_VALUE	(1ull << 20)
#define MS		1000000ull
/* Each stress test runs this long. */
#define STRESS_NS	(2000 * MS)

static int cache_create(int sess, const char *name, __u32 flags,
			const struct kprim_cache_params *p)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, name,
					   KPRIM_OPEN_CREATE | KPRIM_OPEN_CLOEXEC |
					   flags);

	a.cache = *p;
	return kt_open(sess, &a);
}

static long c_store(int fd, const char *key, const void *val, __u64 len,
		    __u32 op, __u32 flags, __u64 ttl, __u64 *cas)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .flags = flags,
		.key = (uintptr_t)key, .key_len = strlen(key), .op = op,
		.value = (uintptr_t)val, .value_len = len, .ttl_ns = ttl,
		.cas = cas ? *cas : 0,
	};
	long ret = kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);

	if (!ret && cas)
		*cas = s.cas;
	return ret;
}

static long c_set(int fd, const char *key, const char *val)
{
	return c_store(fd, key, val, strlen(val), KPRIM_CACHE_SET, 0, 0, NULL);
}

static long c_set_ttl(int fd, const char *key, const char *val, __u64 ttl)
{
	return c_store(fd, key, val, strlen(val), KPRIM_CACHE_SET,
		       KPRIM_CACHE_TTL, ttl, NULL);
}

/* Get into @buf (capacity *@len); *@len becomes the value's length. */
static long c_get(int fd, const char *key, void *buf, __u64 *len,
		  __u64 *ttl, __u64 *cas)
{
	struct kprim_cache_get g = {
		.size = sizeof(g),
		.key = (uintptr_t)key, .key_len = strlen(key),
		.value = (uintptr_t)buf, .value_len = *len,
	};
	long ret = kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);

	if (!ret || ret == -EMSGSIZE)
		*len = g.value_len;
	if (!ret && ttl)
		*ttl = g.ttl_ns;
	if (!ret && cas)
		*cas = g.cas;
	return ret;
}

/* The value of @key as a string in @buf, or a negative errno. */
static long c_gets(int fd, const char *key, char *buf, size_t size)
{
	__u64 len = size - 1;
	long ret = c_get(fd, key, buf, &len, NULL, NULL);

	if (!ret)
		buf[len] = '\0';
	return ret;
}

static long c_key(int fd, unsigned long cmd, const char *key, __u64 ttl)
{
	struct kprim_cache_key k = {
		.size = sizeof(k),
		.key = (uintptr_t)key, .key_len = strlen(key), .ttl_ns = ttl,
	};

	return kt_ioctl(fd, cmd, &k);
}

static long c_incr(int fd, const char *key, __u32 flags, __u64 delta,
		   __u64 initial, __u64 *value)
{
	struct kprim_cache_incr i = {
		.size = sizeof(i), .flags = flags,
		.key = (uintptr_t)key, .key_len = strlen(key),
		.delta = delta, .initial = initial,
	};
	long ret = kt_ioctl(fd, KPRIM_IOC_CACHE_INCR, &i);

	if (!ret && value)
		*value = i.value;
	return ret;
}

static long c_flush(int fd)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	return kt_ioctl(fd, KPRIM_IOC_CACHE_FLUSH, &h);
}

static struct kprim_cache_info c_info(int fd)
{
	struct kprim_cache_info info = { .size = sizeof(info) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &info))
		memset(&info, 0xff, sizeof(info));
	return info;
}

/* An address that is never mapped. */
static void *bad_ptr(void)
{
	static void *p;

	if (!p) {
		p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
		munmap(p, 4096);
	}
	return p;
}

FIXTURE(cache) {
	int sess;
	int fd;
	char name[64];
};

FIXTURE_SETUP(cache)
{
	struct kprim_cache_params p = {
		.max_bytes = CACHE_BYTES, .max_entries = CACHE_ENTRIES,
		.max_value = CACHE_VALUE,
	};

	self->fd = -1;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "%s: %s (is kprim.ko loaded?)", KT_DEV,
		     strerror(errno));
	KT_NAME(self->name, "cache");
	self->fd = cache_create(self->sess, self->name,
				KPRIM_OPEN_EXCL | KPRIM_OPEN_TRANSIENT, &p);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
}

FIXTURE_TEARDOWN(cache)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->sess >= 0)
		close(self->sess);
}

/*
 * Every operation.
 */

TEST_F(cache, set_then_get_returns_value_cas_and_no_ttl)
{
	char buf[64] = { 0 };
	__u64 len = sizeof(buf), ttl = 99, cas = 0, cas2 = 0;

	ASSERT_EQ(0, c_store(self->fd, "k", "hello", 5, KPRIM_CACHE_SET, 0, 0,
			     &cas));
	EXPECT_NE(0ull, cas);
	ASSERT_EQ(0, c_get(self->fd, "k", buf, &len, &ttl, &cas2));
	EXPECT_EQ(5ull, len);
	EXPECT_EQ(0, memcmp("hello", buf, 5));
	EXPECT_EQ(0ull, ttl);
	EXPECT_EQ(cas, cas2);
}

TEST_F(cache, get_missing_key_is_enoent)
{
	char buf[8];
	__u64 len = sizeof(buf);

	EXPECT_EQ(-ENOENT, c_get(self->fd, "nope", buf, &len, NULL, NULL));
}

TEST_F(cache, get_short_buffer_is_emsgsize_with_needed_size)
{
	char buf[4] = "abc";
	__u64 len = 3;

	ASSERT_EQ(0, c_set(self->fd, "k", "0123456789"));
	EXPECT_EQ(-EMSGSIZE, c_get(self->fd, "k", buf, &len, NULL, NULL));
	EXPECT_EQ(10ull, len);
	EXPECT_EQ(0, strcmp("abc", buf));
}

TEST_F(cache, set_overwrites)
{
	char buf[16];

	ASSERT_EQ(0, c_set(self->fd, "k", "one"));
	ASSERT_EQ(0, c_set(self->fd, "k", "two"));
	ASSERT_EQ(0, c_gets(self->fd, "k", buf, sizeof(buf)));
	EXPECT_STREQ("two", buf);
	EXPECT_EQ(1ull, c_info(self->fd).entries);
}

TEST_F(cache, add_only_when_absent)
{
	char buf[16];

	EXPECT_EQ(0, c_store(self->fd, "k", "a", 1, KPRIM_CACHE_ADD, 0, 0,
			     NULL));
	EXPECT_EQ(-EEXIST, c_store(self->fd, "k", "b", 1, KPRIM_CACHE_ADD, 0,
				   0, NULL));
	ASSERT_EQ(0, c_gets(self->fd, "k", buf, sizeof(buf)));
	EXPECT_STREQ("a", buf);
}

TEST_F(cache, replace_only_when_present)
{
	char buf[16];

	EXPECT_EQ(-ENOENT, c_store(self->fd, "k", "a", 1, KPRIM_CACHE_REPLACE,
				   0, 0, NULL));
	EXPECT_EQ(-ENOENT, c_gets(self->fd, "k", buf, sizeof(buf)));
	ASSERT_EQ(0, c_set(self->fd, "k", "a"));
	EXPECT_EQ(0, c_store(self->fd, "k", "b", 1, KPRIM_CACHE_REPLACE, 0, 0,
			     NULL));
	ASSERT_EQ(0, c_gets(self->fd, "k", buf, sizeof(buf)));
	EXPECT_STREQ("b", buf);
}

TEST_F(cache, cas_needs_the_current_version)
{
	__u64 cas = 0, old, stale = 12345, len = 0, got = 0;
	char buf[16];

	EXPECT_EQ(-ENOENT, c_store(self->fd, "k", "a", 1, KPRIM_CACHE_CAS, 0,
				   0, &stale));
	ASSERT_EQ(0, c_store(self->fd, "k", "a", 1, KPRIM_CACHE_SET, 0, 0,
			     &cas));
	old = cas;
	EXPECT_EQ(0, c_store(self->fd, "k", "b", 1, KPRIM_CACHE_CAS, 0, 0,
			     &cas));
	EXPECT_NE(old, cas);
	EXPECT_EQ(-ESTALE, c_store(self->fd, "k", "c", 1, KPRIM_CACHE_CAS, 0,
				   0, &old));
	ASSERT_EQ(0, c_gets(self->fd, "k", buf, sizeof(buf)));
	EXPECT_STREQ("b", buf);
	len = sizeof(buf);
	ASSERT_EQ(0, c_get(self->fd, "k", buf, &len, NULL, &got));
	EXPECT_EQ(cas, got);
}

TEST_F(cache, delete_removes_and_then_is_enoent)
{
	char buf[16];

	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	EXPECT_EQ(0, c_key(self->fd, KPRIM_IOC_CACHE_DELETE, "k", 0));
	EXPECT_EQ(-ENOENT, c_gets(self->fd, "k", buf, sizeof(buf)));
	EXPECT_EQ(-ENOENT, c_key(self->fd, KPRIM_IOC_CACHE_DELETE, "k", 0));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
	EXPECT_EQ(0ull, c_info(self->fd).bytes);
}

TEST_F(cache, touch_sets_a_new_ttl)
{
	__u64 len = 8, ttl = 0, cas1 = 0, cas2 = 0;
	char buf[8];

	EXPECT_EQ(-ENOENT, c_key(self->fd, KPRIM_IOC_CACHE_TOUCH, "k",
				 1000 * MS));
	ASSERT_EQ(0, c_store(self->fd, "k", "v", 1, KPRIM_CACHE_SET, 0, 0,
			     &cas1));
	ASSERT_EQ(0, c_key(self->fd, KPRIM_IOC_CACHE_TOUCH, "k", 3600000 * MS));
	ASSERT_EQ(0, c_get(self->fd, "k", buf, &len, &ttl, &cas2));
	EXPECT_LT(0ull, ttl);
	EXPECT_GE(3600000 * MS, ttl);
	EXPECT_LT(3500000 * MS, ttl);
	EXPECT_EQ(cas1, cas2);
	/* ttl 0: never expires again. */
	ASSERT_EQ(0, c_key(self->fd, KPRIM_IOC_CACHE_TOUCH, "k", 0));
	ASSERT_EQ(0, c_get(self->fd, "k", buf, &len, &ttl, NULL));
	EXPECT_EQ(0ull, ttl);
}

TEST_F(cache, incr_and_decr_follow_memcached)
{
	__u64 v = 0;
	char buf[32];

	EXPECT_EQ(-ENOENT, c_incr(self->fd, "n", 0, 1, 0, &v));
	EXPECT_EQ(0, c_incr(self->fd, "n", KPRIM_CACHE_INCR_CREATE, 5, 10, &v));
	EXPECT_EQ(10ull, v);
	EXPECT_EQ(0, c_incr(self->fd, "n", 0, 5, 0, &v));
	EXPECT_EQ(15ull, v);
	EXPECT_EQ(0, c_incr(self->fd, "n", KPRIM_CACHE_DECR, 20, 0, &v));
	EXPECT_EQ(0ull, v);
	ASSERT_EQ(0, c_gets(self->fd, "n", buf, sizeof(buf)));
	EXPECT_STREQ("0", buf);
	ASSERT_EQ(0, c_set(self->fd, "n", "18446744073709551615"));
	EXPECT_EQ(0, c_incr(self->fd, "n", 0, 2, 0, &v));
	EXPECT_EQ(1ull, v);
	ASSERT_EQ(0, c_gets(self->fd, "n", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
}

TEST_F(cache, flush_empties_the_cache)
{
	char key[16];
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, c_set(self->fd, key, "value"));
	}
	EXPECT_EQ(100ull, c_info(self->fd).entries);
	EXPECT_EQ(0, c_flush(self->fd));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
	EXPECT_EQ(0ull, c_info(self->fd).bytes);
	EXPECT_EQ(-ENOENT, c_gets(self->fd, "k5", key, sizeof(key)));
}

TEST_F(cache, info_reports_params_and_stats)
{
	struct kprim_cache_info info;
	char buf[8];

	ASSERT_EQ(0, c_set(self->fd, "key", "value"));
	ASSERT_EQ(0, c_gets(self->fd, "key", buf, sizeof(buf)));
	ASSERT_EQ(-ENOENT, c_gets(self->fd, "other", buf, sizeof(buf)));
	info = c_info(self->fd);
	EXPECT_EQ(sizeof(info), info.size);
	EXPECT_EQ(CACHE_BYTES, info.params.max_bytes);
	EXPECT_EQ(CACHE_ENTRIES, info.params.max_entries);
	EXPECT_EQ(CACHE_VALUE, info.params.max_value);
	EXPECT_EQ(0ull, info.params.default_ttl_ns);
	EXPECT_EQ(1ull, info.entries);
	EXPECT_EQ(8ull, info.bytes);
	EXPECT_EQ(1ull, info.hits);
	EXPECT_EQ(1ull, info.misses);
	EXPECT_EQ(0ull, info.evictions);
	EXPECT_EQ(0ull, info.expirations);
}

TEST_F(cache, values_from_zero_bytes_to_max_value)
{
	static const __u64 sizes[] = {
		0, 1, 100, 167, 168, 169, 4095, 4096, 65536, 300000,
		CACHE_VALUE - 1, CACHE_VALUE,
	};
	unsigned char *in = malloc(CACHE_VALUE), *out = malloc(CACHE_VALUE);
	unsigned int i;
	__u64 j, len;

	ASSERT_NE(NULL, in);
	ASSERT_NE(NULL, out);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (j = 0; j < sizes[i]; j++)
			in[j] = (unsigned char)(j * 13 + i);
		ASSERT_EQ(0, c_store(self->fd, "v", in, sizes[i],
				     KPRIM_CACHE_SET, 0, 0, NULL));
		len = CACHE_VALUE;
		memset(out, 0, CACHE_VALUE);
		ASSERT_EQ(0, c_get(self->fd, "v", out, &len, NULL, NULL));
		ASSERT_EQ(sizes[i], len);
		ASSERT_EQ(0, memcmp(in, out, len)) TH_LOG("size %llu",
							  (unsigned long long)sizes[i]);
	}
	free(in);
	free(out);
}

TEST_F(cache, key_of_250_bytes_is_fine)
{
	char key[251], buf[8];

	memset(key, 'k', 250);
	key[250] = '\0';
	ASSERT_EQ(0, c_set(self->fd, key, "v"));
	ASSERT_EQ(0, c_gets(self->fd, key, buf, sizeof(buf)));
	EXPECT_STREQ("v", buf);
	key[249] = '\0';
	EXPECT_EQ(-ENOENT, c_gets(self->fd, key, buf, sizeof(buf)));
}

TEST_F(cache, poll_reports_nothing)
{
	struct pollfd p = { .fd = self->fd, .events = POLLIN | POLLOUT };

	EXPECT_EQ(0, poll(&p, 1, 0));
}

TEST_F(cache, fdinfo_shows_stats)
{
	char path[64], text[2048];
	ssize_t n;
	int f;

	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", self->fd);
	f = open(path, O_RDONLY);
	ASSERT_LE(0, f);
	n = read(f, text, sizeof(text) - 1);
	close(f);
	ASSERT_LT(0, n);
	text[n] = '\0';
	EXPECT_NE(NULL, strstr(text, "kprim-kind:\tcache\n"));
	EXPECT_NE(NULL, strstr(text, "kprim-entries:\t1\n"));
	EXPECT_NE(NULL, strstr(text, "kprim-bytes:\t2\n"));
}

/*
 * Bad input: each its own test; nothing may change.
 */

TEST_F(cache, key_of_0_bytes_is_einval)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .key = (uintptr_t)"k", .key_len = 0,
		.value = (uintptr_t)"v", .value_len = 1,
	};

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_STORE, &s));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
}

TEST_F(cache, key_of_251_bytes_is_einval)
{
	char key[252], buf[8];
	__u64 len = sizeof(buf);

	memset(key, 'k', 251);
	key[251] = '\0';
	EXPECT_EQ(-EINVAL, c_set(self->fd, key, "v"));
	EXPECT_EQ(-EINVAL, c_get(self->fd, key, buf, &len, NULL, NULL));
	EXPECT_EQ(-EINVAL, c_key(self->fd, KPRIM_IOC_CACHE_DELETE, key, 0));
	EXPECT_EQ(-EINVAL, c_key(self->fd, KPRIM_IOC_CACHE_TOUCH, key, 0));
	EXPECT_EQ(-EINVAL, c_incr(self->fd, key, KPRIM_CACHE_INCR_CREATE, 1,
				  0, NULL));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
}

TEST_F(cache, value_over_max_value_is_e2big)
{
	char *v = calloc(1, CACHE_VALUE + 1);

	ASSERT_NE(NULL, v);
	ASSERT_EQ(0, c_set(self->fd, "k", "old"));
	EXPECT_EQ(-E2BIG, c_store(self->fd, "k", v, CACHE_VALUE + 1,
				  KPRIM_CACHE_SET, 0, 0, NULL));
	EXPECT_EQ(-E2BIG, c_store(self->fd, "k", v, ~0ull, KPRIM_CACHE_SET, 0,
				  0, NULL));
	EXPECT_EQ(0, c_gets(self->fd, "k", v, 16));
	EXPECT_STREQ("old", v);
	free(v);
}

TEST_F(cache, ttl_overflow_is_eoverflow)
{
	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	EXPECT_EQ(-EOVERFLOW, c_set_ttl(self->fd, "k", "w", ~0ull));
	EXPECT_EQ(-EOVERFLOW, c_set_ttl(self->fd, "k", "w", 1ull << 63));
	EXPECT_EQ(-EOVERFLOW, c_key(self->fd, KPRIM_IOC_CACHE_TOUCH, "k",
				    ~0ull));
	EXPECT_EQ(0ull, c_info(self->fd).expirations);
}

TEST_F(cache, struct_smaller_than_first_version_is_einval)
{
	struct kprim_cache_get g = {
		.size = KPRIM_SIZE_CACHE_GET_VER0 - 8,
		.key = (uintptr_t)"k", .key_len = 1,
	};
	struct kprim_cache_info info = { .size = KPRIM_SIZE_CACHE_INFO_VER0 - 1 };
	struct kprim_hdr h = { .size = 4 };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, &g));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_INFO, &info));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_FLUSH, &h));
}

TEST_F(cache, store_struct_smaller_than_first_version_is_einval)
{
	struct kprim_cache_store s = {
		.size = KPRIM_SIZE_CACHE_STORE_VER0 - 8,
		.key = (uintptr_t)"k", .key_len = 1,
		.value = (uintptr_t)"v", .value_len = 1,
	};

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_STORE, &s));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
}

TEST_F(cache, larger_struct_with_nonzero_tail_is_e2big)
{
	struct {
		struct kprim_cache_store s;
		__u64 tail;
	} big = {
		.s = {
			.size = sizeof(big),
			.key = (uintptr_t)"k", .key_len = 1,
			.value = (uintptr_t)"v", .value_len = 1,
		},
		.tail = 1,
	};

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_CACHE_STORE, &big));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
	/* A zero tail is fine, and is left alone. */
	big.tail = 0;
	EXPECT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_CACHE_STORE, &big));
	EXPECT_EQ(0ull, big.tail);
	EXPECT_EQ(1ull, c_info(self->fd).entries);
}

TEST_F(cache, struct_larger_than_a_page_is_e2big)
{
	char *page = calloc(1, 8192);
	struct kprim_cache_info *info = (void *)page;

	ASSERT_NE(NULL, page);
	info->size = 4097;
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_CACHE_INFO, info));
	free(page);
}

TEST_F(cache, unknown_store_flags_are_einval)
{
	EXPECT_EQ(-EINVAL, c_store(self->fd, "k", "v", 1, KPRIM_CACHE_SET,
				   1u << 5, 0, NULL));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
}

TEST_F(cache, unknown_store_op_is_einval)
{
	EXPECT_EQ(-EINVAL, c_store(self->fd, "k", "v", 1, KPRIM_CACHE_CAS + 1,
				   0, 0, NULL));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
}

TEST_F(cache, get_flags_or_reserved_are_einval)
{
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)"k", .key_len = 1,
		.reserved = 1,
	};

	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, &g));
	g.reserved = 0;
	g.flags = 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, &g));
	EXPECT_EQ(0ull, c_info(self->fd).hits);
}

TEST_F(cache, key_request_flags_or_reserved_are_einval)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)"k", .key_len = 1,
		.reserved = 1,
	};

	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_DELETE, &k));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_TOUCH, &k));
	k.reserved = 0;
	k.flags = 1u << 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_DELETE, &k));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_TOUCH, &k));
	/* DELETE takes no TTL, nor the default one. */
	k.flags = KPRIM_CACHE_DEFAULT_TTL;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_DELETE, &k));
	/* TOUCH takes the default TTL or a TTL, not both. */
	k.ttl_ns = 5;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_TOUCH, &k));
	k.flags = 0;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_DELETE, &k));
	EXPECT_EQ(1ull, c_info(self->fd).entries);
}

TEST_F(cache, incr_flags_or_reserved_are_einval)
{
	struct kprim_cache_incr i = {
		.size = sizeof(i), .key = (uintptr_t)"n", .key_len = 1,
		.delta = 1, .reserved = 1,
	};
	char buf[8];

	ASSERT_EQ(0, c_set(self->fd, "n", "1"));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_INCR, &i));
	i.reserved = 0;
	i.flags = 1u << 9;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_INCR, &i));
	ASSERT_EQ(0, c_gets(self->fd, "n", buf, sizeof(buf)));
	EXPECT_STREQ("1", buf);
}

TEST_F(cache, flush_and_info_flags_are_einval)
{
	struct kprim_cache_info info = { .size = sizeof(info), .flags = 1 };
	struct kprim_hdr h = { .size = sizeof(h), .flags = 1 };

	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_FLUSH, &h));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_INFO, &info));
	EXPECT_EQ(1ull, c_info(self->fd).entries);
}

TEST_F(cache, incr_on_a_non_number_is_einval)
{
	char buf[32];

	ASSERT_EQ(0, c_set(self->fd, "n", "12abc"));
	EXPECT_EQ(-EINVAL, c_incr(self->fd, "n", 0, 1, 0, NULL));
	ASSERT_EQ(0, c_set(self->fd, "n", "-1"));
	EXPECT_EQ(-EINVAL, c_incr(self->fd, "n", KPRIM_CACHE_DECR, 1, 0, NULL));
	ASSERT_EQ(0, c_set(self->fd, "n", ""));
	EXPECT_EQ(-EINVAL, c_incr(self->fd, "n", 0, 1, 0, NULL));
	ASSERT_EQ(0, c_gets(self->fd, "n", buf, sizeof(buf)));
	EXPECT_STREQ("", buf);
}

TEST_F(cache, incr_on_21_digits_is_einval)
{
	char buf[32];

	ASSERT_EQ(0, c_set(self->fd, "n", "000000000000000000001"));
	EXPECT_EQ(-EINVAL, c_incr(self->fd, "n", 0, 1, 0, NULL));
	ASSERT_EQ(0, c_set(self->fd, "n", "18446744073709551616"));
	EXPECT_EQ(-EINVAL, c_incr(self->fd, "n", 0, 1, 0, NULL));
	ASSERT_EQ(0, c_gets(self->fd, "n", buf, sizeof(buf)));
	EXPECT_STREQ("18446744073709551616", buf);
}

TEST_F(cache, bad_argument_pointer_is_efault)
{
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, bad_ptr()));
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_CACHE_STORE,
				    bad_ptr()));
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_CACHE_INFO, NULL));
}

TEST_F(cache, bad_key_pointer_is_efault)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .key = (uintptr_t)bad_ptr(), .key_len = 4,
		.value = (uintptr_t)"v", .value_len = 1,
	};

	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_CACHE_STORE, &s));
	EXPECT_EQ(0ull, c_info(self->fd).entries);
}

TEST_F(cache, bad_value_pointer_on_store_is_efault)
{
	char buf[8];

	ASSERT_EQ(0, c_set(self->fd, "k", "old"));
	EXPECT_EQ(-EFAULT, c_store(self->fd, "k", bad_ptr(), 100,
				   KPRIM_CACHE_SET, 0, 0, NULL));
	ASSERT_EQ(0, c_gets(self->fd, "k", buf, sizeof(buf)));
	EXPECT_STREQ("old", buf);
}

TEST_F(cache, bad_value_pointer_on_get_is_efault)
{
	__u64 len = 100;

	ASSERT_EQ(0, c_set(self->fd, "k", "value"));
	EXPECT_EQ(-EFAULT, c_get(self->fd, "k", bad_ptr(), &len, NULL, NULL));
	EXPECT_EQ(1ull, c_info(self->fd).entries);
}

TEST_F(cache, unknown_command_is_enotty)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOW(KPRIM_IOC_MAGIC, 0x3f,
						   struct kprim_hdr), &h));
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, KPRIM_IOC_SEM_INFO, &h));
}

TEST_F(cache, open_with_bad_params_is_einval)
{
	struct kprim_cache_params p = { .max_bytes = 100, .max_value = 101 };
	struct kprim_open a;

	EXPECT_EQ(-EINVAL, cache_create(self->sess, NULL, 0, &p));
	p = (struct kprim_cache_params){ .max_bytes = (1ull << 30) + 1 };
	EXPECT_EQ(-EINVAL, cache_create(self->sess, NULL, 0, &p));
	p = (struct kprim_cache_params){ .max_entries = (1ull << 20) + 1 };
	EXPECT_EQ(-EINVAL, cache_create(self->sess, NULL, 0, &p));
	p = (struct kprim_cache_params){ .max_value = (64ull << 20) + 1 };
	EXPECT_EQ(-EINVAL, cache_create(self->sess, NULL, 0, &p));
	p = (struct kprim_cache_params){ .default_ttl_ns = ~0ull };
	EXPECT_EQ(-EINVAL, cache_create(self->sess, NULL, 0, &p));
	a = kt_open_args(KPRIM_KIND_CACHE, NULL, KPRIM_OPEN_CREATE);
	a.params_raw[6] = 1;
	EXPECT_EQ(-EINVAL, kt_open(self->sess, &a));
}

TEST_F(cache, flush_needs_ownership)
{
	struct kprim_open a;
	char buf[8];
	pid_t pid;
	int status;

	if (geteuid() != 0)
		SKIP(return, "needs root to switch to another uid");
	ASSERT_EQ(0, c_set(self->fd, "k", "v"));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		/* Not the owner: the 0600 cache cannot even be opened. */
		a = kt_open_args(KPRIM_KIND_CACHE, self->name, 0);
		if (kt_open(self->sess, &a) != -EACCES)
			_exit(11);
		/* An fd from the owner works, but flush is the owner's. */
		fd = self->fd;
		if (c_flush(fd) != -EPERM)
			_exit(12);
		if (c_gets(fd, "k", buf, sizeof(buf)))
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(1ull, c_info(self->fd).entries);
}

/*
 * Expiry seen from userspace.
 */

TEST_F(cache, ttl_expiry_is_observed)
{
	const __u64 ttl = 200 * MS;
	__u64 before, after, t2, len, left = 0;
	char buf[8];
	long ret;

	before = kt_now_ns();
	ASSERT_EQ(0, c_set_ttl(self->fd, "k", "v", ttl));
	after = kt_now_ns();
	/* The kernel stamped the entry between before and after. */
	len = sizeof(buf);
	ret = c_get(self->fd, "k", buf, &len, &left, NULL);
	t2 = kt_now_ns();
	if (t2 < before + ttl) {
		ASSERT_EQ(0, ret);
		EXPECT_GE(ttl, left);
		EXPECT_LE(before + ttl - t2, left);
	}
	/* Wait until it must be gone. */
	while (kt_now_ns() < after + ttl)
		usleep(10000);
	len = sizeof(buf);
	EXPECT_EQ(-ENOENT, c_get(self->fd, "k", buf, &len, NULL, NULL));
	EXPECT_EQ(-ENOENT, c_key(self->fd, KPRIM_IOC_CACHE_TOUCH, "k", 0));
	EXPECT_EQ(0, c_store(self->fd, "k", "w", 1, KPRIM_CACHE_ADD, 0, 0,
			     NULL));
}

TEST_F(cache, default_ttl_applies_without_the_ttl_flag)
{
	struct kprim_cache_params p = { .default_ttl_ns = 3600000 * MS };
	__u64 len = 8, left = 0;
	char buf[8];
	int fd;

	fd = cache_create(self->sess, NULL, 0, &p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, c_set(fd, "k", "v"));
	ASSERT_EQ(0, c_get(fd, "k", buf, &len, &left, NULL));
	EXPECT_LT(3500000 * MS, left);
	ASSERT_EQ(0, c_set_ttl(fd, "k", "v", 0));
	ASSERT_EQ(0, c_get(fd, "k", buf, &len, &left, NULL));
	EXPECT_EQ(0ull, left);
	close(fd);
}

TEST_F(cache, background_sweep_frees_expired_entries)
{
	struct kprim_cache_info info;
	char key[16];
	__u64 deadline;
	int i;

	for (i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, c_set_ttl(self->fd, key, "v", 50 * MS));
	}
	ASSERT_EQ(0, c_set(self->fd, "stays", "v"));
	/* The sweep runs once a second; give a slow VM some slack. */
	deadline = kt_now_ns() + 5000 * MS;
	do {
		usleep(100000);
		info = c_info(self->fd);
	} while (info.entries > 1 && kt_now_ns() < deadline);
	EXPECT_EQ(1ull, info.entries);
	EXPECT_EQ(200ull, info.expirations);
	EXPECT_EQ(0ull, info.misses);	/* nobody looked: the sweep did it */
}

/*
 * Limits.
 */

/* A number from this fd's fdinfo line "@name:\t<n>", or -1. */
static long long fdinfo_num(int fd, const char *name)
{
	char path[64], text[2048];
	const char *m;
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY);
	if (f < 0)
		return -1;
	n = read(f, text, sizeof(text) - 1);
	close(f);
	if (n <= 0)
		return -1;
	text[n] = '\0';
	m = strstr(text, name);
	if (!m || m[strlen(name)] != ':')
		return -1;
	return strtoll(m + strlen(name) + 1, NULL, 10);
}

/*
 * The background sweep costs what expires: 2000 entries that never expire,
 * one that expires in 300 ms and one in a minute. Over three seconds the
 * sweep frees the first and looks at a handful of entries (the old sweep
 * walked all 2002 every second).
 */
TEST_F(cache, background_sweep_looks_only_at_what_expires)
{
	struct kprim_cache_info info;
	__u64 deadline;
	long long seen;
	char key[16];
	int i;

	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "f%d", i);
		ASSERT_EQ(0, c_set(self->fd, key, "12345678"));
	}
	ASSERT_EQ(0, c_set_ttl(self->fd, "soon", "v", 300 * MS));
	ASSERT_EQ(0, c_set_ttl(self->fd, "later", "v", 60000 * MS));
	deadline = kt_now_ns() + 5000 * MS;
	do {
		usleep(100000);
		info = c_info(self->fd);
	} while (!info.expirations && kt_now_ns() < deadline);
	EXPECT_EQ(1ull, info.expirations);
	usleep(3000000);
	seen = fdinfo_num(self->fd, "kprim-sweep-seen");
	TH_LOG("the sweep looked at %lld entries", seen);
	ASSERT_LE(0, seen);
	EXPECT_GE(10, seen);
	EXPECT_EQ(2001ull, c_info(self->fd).entries);
}

/* TOUCH with KPRIM_CACHE_DEFAULT_TTL applies the cache's default TTL. */
TEST_F(cache, touch_with_the_default_ttl_flag)
{
	struct kprim_cache_params p = { .default_ttl_ns = 100000 * MS };
	struct kprim_cache_key k = {
		.size = sizeof(k), .flags = KPRIM_CACHE_DEFAULT_TTL,
		.key = (uintptr_t)"k", .key_len = 1,
	};
	char buf[8];
	__u64 len = sizeof(buf), ttl = 0;
	int fd = cache_create(self->sess, NULL, 0, &p);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, c_set_ttl(fd, "k", "v", 0));
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_CACHE_TOUCH, &k));
	ASSERT_EQ(0, c_get(fd, "k", buf, &len, &ttl, NULL));
	EXPECT_LT(0ull, ttl);
	EXPECT_GE(100000 * MS, ttl);
	close(fd);
}

/*
 * Pinned entries (KPRIM_CACHE_PIN) survive eviction for room and the
 * shrinker; at most half of max_entries may be pinned; FLUSH and DELETE
 * still remove them.
 */
TEST_F(cache, pinned_entries_survive_eviction_and_the_shrinker)
{
	struct kprim_cache_params p = { .max_entries = 8 };
	char key[16], buf[8];
	int fd = cache_create(self->sess, NULL, 0, &p), i, dc;

	ASSERT_LE(0, fd);
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		ASSERT_EQ(0, c_store(fd, key, "v", 1, KPRIM_CACHE_SET,
				     KPRIM_CACHE_PIN, 0, NULL));
	}
	EXPECT_EQ(-ENOSPC, c_store(fd, "p4", "v", 1, KPRIM_CACHE_SET,
				   KPRIM_CACHE_PIN, 0, NULL));
	for (i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, c_set(fd, key, "v"));
	}
	EXPECT_EQ(8ull, c_info(fd).entries);
	dc = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (dc >= 0) {
		EXPECT_EQ(2, write(dc, "2\n", 2));
		close(dc);
	}
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "p%d", i);
		EXPECT_EQ(0, c_gets(fd, key, buf, sizeof(buf)));
	}
	EXPECT_EQ(0, c_key(fd, KPRIM_IOC_CACHE_DELETE, "p3", 0));
	EXPECT_EQ(0, c_flush(fd));
	EXPECT_EQ(0ull, c_info(fd).entries);
	close(fd);
}

TEST_F(cache, eviction_keeps_bytes_within_max_bytes)
{
	struct kprim_cache_params p = { .max_bytes = 64 << 10,
					.max_value = 8 << 10 };
	struct kprim_cache_info info;
	char key[16], *v = malloc(8 << 10);
	__u64 glen;
	int fd, i;

	ASSERT_NE(NULL, v);
	memset(v, 'x', 8 << 10);
	fd = cache_create(self->sess, NULL, 0, &p);
	ASSERT_LE(0, fd);
	for (i = 0; i < 500; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, c_store(fd, key, v, 1 + (i * 977) % (8 << 10),
				     KPRIM_CACHE_SET, 0, 0, NULL));
		info = c_info(fd);
		ASSERT_GE(64ull << 10, info.bytes);
	}
	EXPECT_LT(0ull, info.evictions);
	EXPECT_EQ(500ull, info.entries + info.evictions);
	/* The latest is always there. */
	glen = 8 << 10;
	EXPECT_EQ(0, c_get(fd, "k499", v, &glen, NULL, NULL));
	EXPECT_EQ(1ull + (499 * 977) % (8 << 10), glen);
	close(fd);
	free(v);
}

TEST_F(cache, eviction_keeps_entries_within_max_entries)
{
	struct kprim_cache_params p = { .max_entries = 10 };
	struct kprim_cache_info info;
	char key[16];
	int fd, i;

	fd = cache_create(self->sess, NULL, 0, &p);
	ASSERT_LE(0, fd);
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, c_set(fd, key, "v"));
		ASSERT_GE(10ull, c_info(fd).entries);
	}
	info = c_info(fd);
	EXPECT_EQ(10ull, info.entries);
	EXPECT_EQ(90ull, info.evictions);
	/* The 10 newest survive, in a cache nobody reads. */
	for (i = 90; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		EXPECT_EQ(0, c_gets(fd, key, key, sizeof(key)));
	}
	close(fd);
}

TEST_F(cache, shrinker_frees_entries_on_drop_caches)
{
	struct kprim_cache_info info;
	char key[16];
	int f, i;

	if (geteuid() != 0)
		SKIP(return, "needs root to write /proc/sys/vm/drop_caches");
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		ASSERT_EQ(0, c_set(self->fd, key, "value"));
	}
	f = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (f < 0)
		SKIP(return, "/proc/sys/vm/drop_caches: %s", strerror(errno));
	ASSERT_EQ(1, write(f, "2", 1));
	close(f);
	info = c_info(self->fd);
	EXPECT_GT(1000ull, info.entries);
	EXPECT_EQ(1000ull, info.entries + info.evictions);
	/* Keys "k0".."k999" with "value": at most 9 bytes each. */
	EXPECT_GE(info.entries * 9, info.bytes);
}

/*
 * Sharing and concurrency.
 */

TEST_F(cache, two_processes_share_one_named_cache)
{
	char buf[32];
	pid_t pid;
	int status, i;
	__u64 v = 0;

	ASSERT_EQ(0, c_incr(self->fd, "count", KPRIM_CACHE_INCR_CREATE, 0, 0,
			    NULL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE,
						   self->name, 0);
		int sess = kt_session(), fd;

		fd = kt_open(sess, &a);
		if (fd < 0)
			_exit(10);
		if (c_set(fd, "from-child", "hello"))
			_exit(11);
		for (i = 0; i < 1000; i++)
			if (c_incr(fd, "count", 0, 1, 0, NULL))
				_exit(12);
		_exit(0);
	}
	for (i = 0; i < 1000; i++)
		ASSERT_EQ(0, c_incr(self->fd, "count", 0, 1, 0, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(0, c_gets(self->fd, "from-child", buf, sizeof(buf)));
	EXPECT_STREQ("hello", buf);
	ASSERT_EQ(0, c_incr(self->fd, "count", 0, 0, 0, &v));
	EXPECT_EQ(2000ull, v);
}

#define STRESS_THREADS	8
#define STRESS_KEYS	16u
#define STRESS_MAXLEN	6000

struct stress {
	int fd;
	unsigned int id;
	__u64 end;
	unsigned long gets, hits, sets, dels, bad;
};

/*
 * A value says which key and which writer it was made for, its length and
 * a seed; every byte after the header follows from them. A torn value (a
 * mix of two writes) or a value of another key fails the check.
 */
struct stress_hdr {
	__u32 key;
	__u32 len;
	__u32 seed;
	__u32 sum;
};

static unsigned char stress_byte(__u32 seed, __u32 i)
{
	return (unsigned char)((seed * 2654435761u + i * 40503u) >> 11);
}

static __u32 stress_fill(unsigned char *v, __u32 key, __u32 len, __u32 seed)
{
	struct stress_hdr h = { .key = key, .len = len, .seed = seed };
	__u32 i;

	for (i = sizeof(h); i < len; i++) {
		v[i] = stress_byte(seed, i);
		h.sum = h.sum * 31 + v[i];
	}
	memcpy(v, &h, sizeof(h));
	return len;
}

static bool stress_check(const unsigned char *v, __u64 len, __u32 key)
{
	struct stress_hdr h;
	__u32 sum = 0, i;

	if (len < sizeof(h))
		return false;
	memcpy(&h, v, sizeof(h));
	if (h.key != key || h.len != len)
		return false;
	for (i = sizeof(h); i < len; i++) {
		if (v[i] != stress_byte(h.seed, i))
			return false;
		sum = sum * 31 + v[i];
	}
	return sum == h.sum;
}

static void *stress_thread(void *arg)
{
	struct stress *st = arg;
	unsigned char *v = malloc(STRESS_MAXLEN);
	unsigned int r = st->id * 7919 + 1;
	char key[16];
	__u32 k, len;
	__u64 glen;
	long ret;

	if (!v)
		return NULL;
	while (kt_now_ns() < st->end) {
		r = r * 1103515245u + 12345u;
		k = (r >> 8) % STRESS_KEYS;
		snprintf(key, sizeof(key), "key%u", k);
		switch ((r >> 20) % 8) {
		case 0 ... 2:
			len = sizeof(struct stress_hdr) +
			      (r >> 4) % (STRESS_MAXLEN - 16);
			stress_fill(v, k, len, r);
			ret = c_store(st->fd, key, v, len, KPRIM_CACHE_SET, 0,
				      0, NULL);
			if (ret)
				st->bad++;
			st->sets++;
			break;
		case 3:
			ret = c_key(st->fd, KPRIM_IOC_CACHE_DELETE, key, 0);
			if (ret && ret != -ENOENT)
				st->bad++;
			st->dels++;
			break;
		default:
			glen = STRESS_MAXLEN;
			ret = c_get(st->fd, key, v, &glen, NULL, NULL);
			st->gets++;
			if (ret == -ENOENT)
				break;
			if (ret || !stress_check(v, glen, k))
				st->bad++;
			else
				st->hits++;
			break;
		}
	}
	free(v);
	return NULL;
}

TEST_F(cache, concurrent_set_get_delete_never_tears)
{
	struct stress st[STRESS_THREADS];
	pthread_t th[STRESS_THREADS];
	unsigned long gets = 0, hits = 0, sets = 0, bad = 0;
	struct kprim_cache_info info;
	int i;

	for (i = 0; i < STRESS_THREADS; i++) {
		st[i] = (struct stress){ .fd = self->fd, .id = i,
					 .end = kt_now_ns() + STRESS_NS };
		ASSERT_EQ(0, pthread_create(&th[i], NULL, stress_thread,
					    &st[i]));
	}
	for (i = 0; i < STRESS_THREADS; i++) {
		pthread_join(th[i], NULL);
		gets += st[i].gets;
		hits += st[i].hits;
		sets += st[i].sets;
		bad += st[i].bad;
	}
	TH_LOG("%lu sets, %lu gets (%lu hits)", sets, gets, hits);
	EXPECT_EQ(0ull, bad);
	EXPECT_LT(0ull, hits);
	info = c_info(self->fd);
	EXPECT_GE((__u64)STRESS_KEYS, info.entries);
	EXPECT_GE(CACHE_BYTES, info.bytes);
}

/*
 * Left for the VM run: a full persistent cache, never unlinked, so rmmod
 * must free it (and kmemleak then checks that it did).
 */
TEST_F(cache, full_cache_is_left_for_rmmod)
{
	struct kprim_cache_params p = { .max_bytes = 2 << 20,
					.max_entries = 2000 };
	char name[64], key[16], *v = malloc(64 << 10);
	int fd, i;

	ASSERT_NE(NULL, v);
	memset(v, 'x', 64 << 10);
	KT_NAME(name, "cache-left-full");
	fd = cache_create(self->sess, name, KPRIM_OPEN_EXCL, &p);
	ASSERT_LE(0, fd);
	for (i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		/* Mostly small (inline), some large (out of line). */
		ASSERT_EQ(0, c_store(fd, key, v, i % 50 ? 10 : 64 << 10,
				     KPRIM_CACHE_SET, i % 3 ? 0 : KPRIM_CACHE_TTL,
				     3600000 * MS, NULL));
	}
	EXPECT_LT(0ull, c_info(fd).evictions);
	close(fd);
	free(v);
}

/*
 * Across caches, a user's caches reserve what they may come to use
 * (max_bytes plus a header's worth per max_entries) against the
 * max_bytes_per_user module parameter: run as a fresh uid with a 3 MiB
 * quota, two 2 MiB caches of 256 entries cannot coexist, one after the
 * other can; a 1 MiB cache of 2^20 entries (~330 MiB of headers) cannot
 * be created at all.
 */
static int write_param(const char *name, const char *val)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), "/sys/module/kprim/parameters/%s", name);
	fd = open(path, O_RDWR);
	if (fd < 0)
		return -1;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	close(fd);
	return ok ? 0 : -1;
}

static int quota_child(void)
{
	struct kprim_cache_params p = { .max_bytes = 2 << 20,
					.max_entries = 256 };
	struct kprim_cache_params many = { .max_bytes = 1 << 20,
					   .max_entries = 1 << 20 };
	int sess = kt_session(), a, b;

	if (setgroups(0, NULL) || setgid(23456) || setuid(23456))
		return 10;
	a = cache_create(sess, NULL, 0, &many);
	if (a != -EDQUOT)
		return 14;
	a = cache_create(sess, NULL, 0, &p);
	if (a < 0)
		return 11;
	b = cache_create(sess, NULL, 0, &p);
	if (b != -EDQUOT)
		return 12;
	close(a);	/* anonymous: gone, and so is its reservation */
	b = cache_create(sess, NULL, 0, &p);
	return b >= 0 ? 0 : 13;
}

/*
 * Entry memory is limited, not just key + value bytes: three 2102-byte
 * entries fit max_bytes 8192 and max_entries 4, but each takes a 4 KiB
 * buffer and a header, beyond what the cache reserved: one is evicted.
 */
TEST(entry_memory_counts_against_the_cache)
{
	struct kprim_cache_params p = { .max_bytes = 8192, .max_entries = 4 };
	int sess = kt_session(), fd;
	char v[2100], text[1024];
	unsigned long long mem = 0;
	char path[64];
	const char *m;
	ssize_t n;

	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	fd = cache_create(sess, NULL, 0, &p);
	ASSERT_LE(0, fd);
	memset(v, 'v', sizeof(v));
	ASSERT_EQ(0, c_store(fd, "k1", v, sizeof(v), KPRIM_CACHE_SET, 0, 0,
			     NULL));
	ASSERT_EQ(0, c_store(fd, "k2", v, sizeof(v), KPRIM_CACHE_SET, 0, 0,
			     NULL));
	ASSERT_EQ(0, c_store(fd, "k3", v, sizeof(v), KPRIM_CACHE_SET, 0, 0,
			     NULL));
	EXPECT_EQ(2ull, c_info(fd).entries);
	EXPECT_EQ(1ull, c_info(fd).evictions);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	{
		int f = open(path, O_RDONLY);

		ASSERT_LE(0, f);
		n = read(f, text, sizeof(text) - 1);
		close(f);
	}
	ASSERT_LT(0, n);
	text[n] = '\0';
	m = strstr(text, "kprim-memory:\t");
	ASSERT_NE(NULL, m);
	mem = strtoull(m + strlen("kprim-memory:\t"), NULL, 10);
	/* Two 4 KiB buffers and two headers of at least 256 bytes. */
	EXPECT_LE(2ull * (4096 + 256), mem);
	EXPECT_GE(8192ull + 4 * 320, mem);
	close(fd);
	close(sess);
}

TEST(per_user_byte_quota_across_caches)
{
	char saved[32] = "";
	int fd, status, n;
	pid_t pid;

	if (getuid() != 0)
		SKIP(return, "needs root to set the quota and switch uid");
	fd = open("/sys/module/kprim/parameters/max_bytes_per_user", O_RDONLY);
	if (fd < 0)
		SKIP(return, "kprim.ko not loaded");
	n = read(fd, saved, sizeof(saved) - 1);
	close(fd);
	ASSERT_LT(0, n);
	saved[n] = 0;
	ASSERT_EQ(0, write_param("max_bytes_per_user", "3145728"));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(quota_child());
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, write_param("max_bytes_per_user", saved));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST_HARNESS_MAIN
