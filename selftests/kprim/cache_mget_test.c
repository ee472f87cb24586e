// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for KPRIM_IOC_CACHE_MGET, the cache's multi-get, through raw
 * ioctls: results per key, every bad-input path (each its own test, each
 * checking that nothing changed: no entry result written, no statistic
 * counted), and a race of two multi-getters against a writer that stores,
 * deletes and flushes the same keys (values carry a self-checking pattern,
 * so a torn or stale-freed value is caught). Then the library's
 * kprim_cache_mget(): results equal to kprim_cache_get()'s for mixed
 * hits, misses, short buffers and bad keys; one ioctl per
 * KPRIM_CACHE_MGET_MAX keys; from threads and after fork(); and on a module
 * without the multi-get, which this program simulates at the system-call
 * boundary (its own ioctl(), below).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>

#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kprim/cache.h"

#define CACHE_BYTES	(8ull << 20)
#define CACHE_ENTRIES	4096ull
#define CACHE_VALUE	(64ull << 10)
#define MS		1000000ull
/* The race runs this long. */
#define RACE_NS		(3000 * MS)
/* Result sentinel: the kernel did not write this entry's result. */
#define UNTOUCHED	0x5a5a5a5a

typedef struct kprim_cache_mget_entry ment_t;

/*
 * The ioctl() every call in this program makes, libkprim's included (a
 * program's own definition wins over libc's): it counts multi-get calls
 * and, with old_module set, answers as a module without the multi-get
 * does (the handshake lacks KPRIM_FEAT_CACHE_MGET, the ioctl is -ENOTTY).
 * The harness runs each test in its own process, so each starts at zero.
 */
static atomic_int mget_calls;
static atomic_bool old_module;

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;
	long ret;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == KPRIM_IOC_CACHE_MGET) {
		atomic_fetch_add(&mget_calls, 1);
		if (atomic_load(&old_module)) {
			errno = ENOTTY;
			return -1;
		}
	}
	ret = syscall(SYS_ioctl, fd, req, arg);
	if (!ret && req == KPRIM_IOC_API && atomic_load(&old_module))
		((struct kprim_api *)arg)->features &= ~KPRIM_FEAT_CACHE_MGET;
	return (int)ret;
}

static int cache_create(int sess, const char *name)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, name,
					   KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
					   KPRIM_OPEN_TRANSIENT |
					   KPRIM_OPEN_CLOEXEC);

	a.cache.max_bytes = CACHE_BYTES;
	a.cache.max_entries = CACHE_ENTRIES;
	a.cache.max_value = CACHE_VALUE;
	return kt_open(sess, &a);
}

static long m_store(int fd, const char *key, const void *val, __u64 len,
		    __u32 flags, __u64 ttl, __u64 *cas)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .flags = flags,
		.key = (uintptr_t)key, .key_len = strlen(key),
		.op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = len, .ttl_ns = ttl,
	};
	long ret = kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);

	if (!ret && cas)
		*cas = s.cas;
	return ret;
}

static long m_set(int fd, const char *key, const char *val)
{
	return m_store(fd, key, val, strlen(val), 0, 0, NULL);
}

static long m_delete(int fd, const char *key)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key,
		.key_len = strlen(key),
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_DELETE, &k);
}

static long m_flush(int fd)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	return kt_ioctl(fd, KPRIM_IOC_CACHE_FLUSH, &h);
}

static struct kprim_cache_info m_info(int fd)
{
	struct kprim_cache_info info = { .size = sizeof(info) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &info))
		memset(&info, 0xff, sizeof(info));
	return info;
}

/* A request for @key into @buf of @cap bytes; result preset to UNTOUCHED. */
static ment_t ment(const char *key, void *buf, __u64 cap)
{
	ment_t e = {
		.key = (uintptr_t)key, .key_len = key ? strlen(key) : 0,
		.value = (uintptr_t)buf, .value_len = cap,
		.result = UNTOUCHED,
	};

	return e;
}

static long mget_sized(int fd, void *ents, __u32 count, __u32 entry_size)
{
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entries = (uintptr_t)ents,
		.count = count, .entry_size = entry_size,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_MGET, &m);
}

static long mget(int fd, ment_t *ents, __u32 count)
{
	return mget_sized(fd, ents, count, sizeof(*ents));
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

FIXTURE(mget) {
	int sess;
	int fd;
	char name[64];
	char b[4][64];
	ment_t e[4];
	struct kprim_cache_info before;
};

/* Keys k0 and k2 hold "v0" and "v2"; e[] asks for k0..k3. */
FIXTURE_SETUP(mget)
{
	static const char *keys[] = { "k0", "k1", "k2", "k3" };
	int i;

	self->fd = -1;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "%s: %s (is kprim.ko loaded?)", KT_DEV,
		     strerror(errno));
	KT_NAME(self->name, "mget");
	self->fd = cache_create(self->sess, self->name);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
	ASSERT_EQ(0, m_set(self->fd, "k0", "v0"));
	ASSERT_EQ(0, m_set(self->fd, "k2", "v2"));
	for (i = 0; i < 4; i++) {
		memset(self->b[i], '#', sizeof(self->b[i]));
		self->e[i] = ment(keys[i], self->b[i], sizeof(self->b[i]));
	}
	self->before = m_info(self->fd);
}

FIXTURE_TEARDOWN(mget)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->sess >= 0)
		close(self->sess);
}

/* Nothing was done: no result written, no get counted. */
static void expect_untouched(struct __test_metadata *_metadata,
			     FIXTURE_DATA(mget) *self)
{
	struct kprim_cache_info now = m_info(self->fd);
	int i;

	for (i = 0; i < 4; i++) {
		EXPECT_EQ(UNTOUCHED, self->e[i].result);
		EXPECT_EQ(64, self->e[i].value_len);
		EXPECT_EQ('#', self->b[i][0]);
	}
	EXPECT_EQ(self->before.hits, now.hits);
	EXPECT_EQ(self->before.misses, now.misses);
}

TEST_F(mget, api_reports_the_feature)
{
	struct kprim_api a = { .size = sizeof(a) };

	ASSERT_EQ(0, kt_ioctl(self->sess, KPRIM_IOC_API, &a));
	EXPECT_NE(0, a.features & KPRIM_FEAT_CACHE_MGET);
}

/*
 * Results.
 */

TEST_F(mget, mixed_hits_and_misses)
{
	__u64 cas0 = 0, cas2 = 0;
	struct kprim_cache_info now;

	ASSERT_EQ(0, m_store(self->fd, "k0", "v0", 2, 0, 0, &cas0));
	ASSERT_EQ(0, m_store(self->fd, "k2", "v2", 2, 0, 0, &cas2));
	self->before = m_info(self->fd);
	self->e[1].cas = 123;
	ASSERT_EQ(2, mget(self->fd, self->e, 4));
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(-ENOENT, self->e[1].result);
	EXPECT_EQ(0, self->e[2].result);
	EXPECT_EQ(-ENOENT, self->e[3].result);
	EXPECT_EQ(2, self->e[0].value_len);
	EXPECT_EQ(0, memcmp(self->b[0], "v0#", 3));
	EXPECT_EQ(2, self->e[2].value_len);
	EXPECT_EQ(0, memcmp(self->b[2], "v2#", 3));
	EXPECT_EQ(cas0, self->e[0].cas);
	EXPECT_EQ(cas2, self->e[2].cas);
	EXPECT_EQ(0, self->e[0].ttl_ns);
	/* A miss leaves the caller's other fields alone. */
	EXPECT_EQ(64, self->e[1].value_len);
	EXPECT_EQ(123, self->e[1].cas);
	EXPECT_EQ('#', self->b[1][0]);
	now = m_info(self->fd);
	EXPECT_EQ(self->before.hits + 2, now.hits);
	EXPECT_EQ(self->before.misses + 2, now.misses);
}

TEST_F(mget, one_key)
{
	ASSERT_EQ(1, mget(self->fd, &self->e[2], 1));
	EXPECT_EQ(0, self->e[2].result);
	EXPECT_EQ(0, memcmp(self->b[2], "v2", 2));
	ASSERT_EQ(0, mget(self->fd, &self->e[3], 1));
	EXPECT_EQ(-ENOENT, self->e[3].result);
}

TEST_F(mget, max_keys_in_one_call)
{
	enum { N = KPRIM_CACHE_MGET_MAX };
	static char keys[N][16], vals[N][16], bufs[N][16];
	static ment_t ents[N];
	struct kprim_cache_info now;
	int i;

	for (i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "max%d", i);
		snprintf(vals[i], sizeof(vals[i]), "val%d", i * 7);
		ASSERT_EQ(0, m_set(self->fd, keys[i], vals[i]));
		ents[i] = ment(keys[i], bufs[i], sizeof(bufs[i]));
	}
	self->before = m_info(self->fd);
	ASSERT_EQ(N, mget(self->fd, ents, N));
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, ents[i].result) TH_LOG("entry %d", i);
		ASSERT_EQ(strlen(vals[i]), ents[i].value_len);
		ASSERT_EQ(0, memcmp(bufs[i], vals[i], strlen(vals[i])));
	}
	now = m_info(self->fd);
	EXPECT_EQ(self->before.hits + N, now.hits);
	EXPECT_EQ(self->before.misses, now.misses);
}

TEST_F(mget, short_buffer_is_emsgsize_with_needed_size)
{
	ASSERT_EQ(0, m_set(self->fd, "k0", "a-longer-value"));
	self->e[0].value_len = 5;
	ASSERT_EQ(1, mget(self->fd, self->e, 3));
	EXPECT_EQ(-EMSGSIZE, self->e[0].result);
	EXPECT_EQ(strlen("a-longer-value"), self->e[0].value_len);
	EXPECT_EQ('#', self->b[0][0]);
	EXPECT_EQ(0, self->e[2].result);
	/* Exactly the needed size fits. */
	ASSERT_EQ(1, mget(self->fd, self->e, 1));
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(0, memcmp(self->b[0], "a-longer-value", 14));
}

TEST_F(mget, zero_length_value_is_a_hit)
{
	ASSERT_EQ(0, m_store(self->fd, "k1", "", 0, 0, 0, NULL));
	self->e[1].value_len = 0;
	ASSERT_EQ(1, mget(self->fd, &self->e[1], 1));
	EXPECT_EQ(0, self->e[1].result);
	EXPECT_EQ(0, self->e[1].value_len);
}

TEST_F(mget, ttl_is_reported)
{
	__u64 t0 = kt_now_ns(), t1;

	ASSERT_EQ(0, m_store(self->fd, "k1", "v1", 2, KPRIM_CACHE_TTL,
			     3600000 * MS, NULL));
	ASSERT_EQ(2, mget(self->fd, self->e, 2));
	EXPECT_EQ(0, self->e[1].result);
	t1 = kt_now_ns();
	EXPECT_GE(3600000 * MS, self->e[1].ttl_ns);
	EXPECT_LE(3600000 * MS - (t1 - t0), self->e[1].ttl_ns);
	EXPECT_EQ(0, self->e[0].ttl_ns);
}

/*
 * An entry that expires is never returned once its time ran out: every
 * call that starts after the latest possible deadline must miss, and
 * every call that ends before the earliest one must hit.
 */
TEST_F(mget, expired_keys_are_never_returned)
{
	const __u64 ttl = 30 * MS;
	__u64 s0, s1, t0, t1;
	int round, late = 0;

	for (round = 0; round < 5; round++) {
		s0 = kt_now_ns();
		ASSERT_EQ(0, m_store(self->fd, "k3", "v3", 2, KPRIM_CACHE_TTL,
				     ttl, NULL));
		s1 = kt_now_ns();
		do {
			self->e[3] = ment("k3", self->b[3], 64);
			t0 = kt_now_ns();
			ASSERT_LE(0, mget(self->fd, self->e, 4));
			t1 = kt_now_ns();
			if (t0 >= s1 + ttl) {
				ASSERT_EQ(-ENOENT, self->e[3].result)
					TH_LOG("returned %llu ns after expiry",
					       t0 - s1 - ttl);
				late++;
			} else if (t1 < s0 + ttl) {
				ASSERT_EQ(0, self->e[3].result);
			}
		} while (t0 < s1 + ttl + 10 * MS);
	}
	EXPECT_LE(5, late);
}

TEST_F(mget, stats_count_like_single_gets)
{
	struct kprim_cache_info now;
	char small[1];

	/* 2 hits, 2 misses, 1 short buffer (a hit), 1 bad key (nothing). */
	ment_t e[6] = {
		ment("k0", self->b[0], 64), ment("k1", self->b[1], 64),
		ment("k2", self->b[2], 64), ment("k3", self->b[3], 64),
		ment("k0", small, sizeof(small)), ment("", self->b[0], 64),
	};

	ASSERT_EQ(2, mget(self->fd, e, 6));
	EXPECT_EQ(-EMSGSIZE, e[4].result);
	EXPECT_EQ(-EINVAL, e[5].result);
	now = m_info(self->fd);
	EXPECT_EQ(self->before.hits + 3, now.hits);
	EXPECT_EQ(self->before.misses + 2, now.misses);
}

TEST_F(mget, duplicate_keys_each_get_a_result)
{
	ment_t e[2] = { ment("k2", self->b[0], 64), ment("k2", self->b[1], 64) };

	ASSERT_EQ(2, mget(self->fd, e, 2));
	EXPECT_EQ(0, memcmp(self->b[0], "v2", 2));
	EXPECT_EQ(0, memcmp(self->b[1], "v2", 2));
}

/*
 * Entry sizes: any size from the first version up to a page; the kernel
 * reads and writes only its own struct, a non-zero unknown tail is that
 * entry's -E2BIG.
 */
TEST_F(mget, larger_entries_work_and_keep_their_tail)
{
	struct big {
		ment_t e;
		__u64 tail[3];
	} b[2];

	memset(b, 0, sizeof(b));
	b[0].e = ment("k0", self->b[0], 64);
	b[1].e = ment("k2", self->b[2], 64);
	ASSERT_EQ(2, mget_sized(self->fd, b, 2, sizeof(b[0])));
	EXPECT_EQ(0, b[0].e.result);
	EXPECT_EQ(0, b[1].e.result);
	EXPECT_EQ(0, memcmp(self->b[2], "v2", 2));
	EXPECT_EQ(0, b[1].tail[0] | b[1].tail[1] | b[1].tail[2]);
}

TEST_F(mget, nonzero_entry_tail_is_e2big_for_that_entry)
{
	struct big {
		ment_t e;
		__u64 tail;
	} b[2];
	struct kprim_cache_info now;

	memset(b, 0, sizeof(b));
	b[0].e = ment("k0", self->b[0], 64);
	b[0].tail = 1;
	b[1].e = ment("k2", self->b[2], 64);
	ASSERT_EQ(1, mget_sized(self->fd, b, 2, sizeof(b[0])));
	EXPECT_EQ(-E2BIG, b[0].e.result);
	EXPECT_EQ(64, b[0].e.value_len);
	EXPECT_EQ('#', self->b[0][0]);
	EXPECT_EQ(0, b[1].e.result);
	now = m_info(self->fd);
	EXPECT_EQ(self->before.hits + 1, now.hits);
	EXPECT_EQ(self->before.misses, now.misses);
}

/*
 * Bad input on the whole call: a precise errno, nothing written, nothing
 * counted.
 */

TEST_F(mget, size_below_first_version_is_einval)
{
	struct kprim_cache_mget m = {
		.size = KPRIM_SIZE_CACHE_MGET_VER0 - 1,
		.entries = (uintptr_t)self->e, .count = 4,
		.entry_size = sizeof(ment_t),
	};

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &m));
	expect_untouched(_metadata, self);
}

TEST_F(mget, size_with_nonzero_tail_is_e2big)
{
	struct {
		struct kprim_cache_mget m;
		__u64 tail;
	} big = {
		.m = {
			.size = sizeof(big), .entries = (uintptr_t)self->e,
			.count = 4, .entry_size = sizeof(ment_t),
		},
		.tail = 1,
	};

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &big));
	expect_untouched(_metadata, self);
	/* The same with a zero tail is fine. */
	big.tail = 0;
	EXPECT_EQ(2, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &big));
}

TEST_F(mget, size_above_a_page_is_e2big)
{
	static char page[8192];
	struct kprim_cache_mget *m = (void *)page;

	m->size = 4097;
	m->entries = (uintptr_t)self->e;
	m->count = 4;
	m->entry_size = sizeof(ment_t);
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, m));
	expect_untouched(_metadata, self);
}

TEST_F(mget, unknown_flags_are_einval)
{
	struct kprim_cache_mget m = {
		.size = sizeof(m), .flags = 1, .entries = (uintptr_t)self->e,
		.count = 4, .entry_size = sizeof(ment_t),
	};

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &m));
	m.flags = 1u << 31;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &m));
	expect_untouched(_metadata, self);
}

TEST_F(mget, nonzero_reserved_is_einval)
{
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entries = (uintptr_t)self->e,
		.count = 4, .entry_size = sizeof(ment_t), .reserved = 1,
	};

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &m));
	expect_untouched(_metadata, self);
}

TEST_F(mget, count_zero_is_einval)
{
	EXPECT_EQ(-EINVAL, mget(self->fd, self->e, 0));
	expect_untouched(_metadata, self);
}

TEST_F(mget, count_over_the_bound_is_e2big)
{
	/* Checked before any entry is read: 4 valid entries suffice. */
	EXPECT_EQ(-E2BIG, mget(self->fd, self->e, KPRIM_CACHE_MGET_MAX + 1));
	EXPECT_EQ(-E2BIG, mget(self->fd, self->e, UINT32_MAX));
	expect_untouched(_metadata, self);
}

TEST_F(mget, entry_size_below_first_version_is_einval)
{
	EXPECT_EQ(-EINVAL, mget_sized(self->fd, self->e, 4,
				      KPRIM_SIZE_CACHE_MGET_ENTRY_VER0 - 8));
	EXPECT_EQ(-EINVAL, mget_sized(self->fd, self->e, 4, 0));
	expect_untouched(_metadata, self);
}

TEST_F(mget, entry_size_above_a_page_is_e2big)
{
	EXPECT_EQ(-E2BIG, mget_sized(self->fd, self->e, 1, 4097));
	expect_untouched(_metadata, self);
}

TEST_F(mget, bad_argument_pointer_is_efault)
{
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, bad_ptr()));
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, NULL));
	expect_untouched(_metadata, self);
}

TEST_F(mget, null_entries_is_efault)
{
	EXPECT_EQ(-EFAULT, mget(self->fd, NULL, 4));
	expect_untouched(_metadata, self);
}

TEST_F(mget, unmapped_entries_is_efault)
{
	EXPECT_EQ(-EFAULT, mget(self->fd, bad_ptr(), 4));
	expect_untouched(_metadata, self);
}

/* An array whose second entry lies on an unmapped page. */
TEST_F(mget, entry_array_running_into_a_hole_is_efault)
{
	char *map = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ment_t *e;

	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, munmap(map + 4096, 4096));
	e = (ment_t *)(map + 4096 - sizeof(*e));
	*e = ment("k0", self->b[0], 64);
	EXPECT_EQ(-EFAULT, mget(self->fd, e, 2));
	munmap(map, 4096);
}

/* An entry's own bad pointers are its result; the others are answered. */
TEST_F(mget, unmapped_key_in_one_entry_is_that_entrys_efault)
{
	struct kprim_cache_info now;

	self->e[1].key = (uintptr_t)bad_ptr();
	ASSERT_EQ(2, mget(self->fd, self->e, 4));
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(-EFAULT, self->e[1].result);
	EXPECT_EQ(0, self->e[2].result);
	EXPECT_EQ(-ENOENT, self->e[3].result);
	now = m_info(self->fd);
	/* The bad key was never looked up. */
	EXPECT_EQ(self->before.hits + 2, now.hits);
	EXPECT_EQ(self->before.misses + 1, now.misses);
}

TEST_F(mget, unmapped_buffer_in_one_entry_is_that_entrys_efault)
{
	ment_t e[3] = {
		ment("k0", bad_ptr(), 64), ment("k2", self->b[2], 64),
		ment("k0", (void *)1, 64),
	};

	ASSERT_EQ(1, mget(self->fd, e, 3));
	EXPECT_EQ(-EFAULT, e[0].result);
	EXPECT_EQ(0, e[1].result);
	EXPECT_EQ(0, memcmp(self->b[2], "v2", 2));
	EXPECT_EQ(-EFAULT, e[2].result);
}

TEST_F(mget, read_only_buffer_is_that_entrys_efault)
{
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);

	ASSERT_NE(MAP_FAILED, ro);
	self->e[2].value = (uintptr_t)ro;
	ASSERT_EQ(1, mget(self->fd, self->e, 3));
	EXPECT_EQ(-EFAULT, self->e[2].result);
	EXPECT_EQ(0, self->e[0].result);
	munmap(ro, 4096);
}

TEST_F(mget, bad_key_length_is_that_entrys_einval)
{
	char long_key[KPRIM_KEY_MAX + 2];

	memset(long_key, 'x', sizeof(long_key) - 1);
	long_key[sizeof(long_key) - 1] = 0;
	self->e[1].key_len = 0;
	self->e[3] = ment(long_key, self->b[3], 64);
	ASSERT_EQ(2, mget(self->fd, self->e, 4));
	EXPECT_EQ(-EINVAL, self->e[1].result);
	EXPECT_EQ(-EINVAL, self->e[3].result);
	EXPECT_EQ(0, self->e[0].result);
	EXPECT_EQ(0, self->e[2].result);
	self->e[3].key_len = KPRIM_KEY_MAX;
	ASSERT_EQ(0, mget(self->fd, &self->e[3], 1));
	EXPECT_EQ(-ENOENT, self->e[3].result);
}

/*
 * The race: two threads multi-get the same keys while a third stores,
 * deletes and flushes them. A value is [u32 key][u32 seq][u32 len] and
 * then len - 12 bytes of a pattern of (key, seq): a reader that gets
 * anything but a whole value some store wrote sees it.
 */
#define R_KEYS		32
#define R_MAXLEN	3000	/* some inline, most out of line */

struct race {
	int fd;
	atomic_bool stop;
	atomic_ulong hits, misses, bad;
	char keys[R_KEYS][16];
};

static __u8 pat(__u32 key, __u32 seq, __u32 i)
{
	return (__u8)(key * 31 + seq * 7 + i);
}

static __u32 make_value(__u8 *buf, __u32 key, __u32 seq)
{
	__u32 len = 12 + (seq * 131 + key * 17) % (R_MAXLEN - 12), i;

	memcpy(buf, &key, 4);
	memcpy(buf + 4, &seq, 4);
	memcpy(buf + 8, &len, 4);
	for (i = 12; i < len; i++)
		buf[i] = pat(key, seq, i);
	return len;
}

static bool value_ok(const __u8 *buf, __u64 vlen, __u32 key)
{
	__u32 k, seq, len, i;

	if (vlen < 12 || vlen > R_MAXLEN)
		return false;
	memcpy(&k, buf, 4);
	memcpy(&seq, buf + 4, 4);
	memcpy(&len, buf + 8, 4);
	if (k != key || len != vlen)
		return false;
	for (i = 12; i < len; i++)
		if (buf[i] != pat(key, seq, i))
			return false;
	return true;
}

static void *race_reader(void *arg)
{
	struct race *r = arg;
	static __thread __u8 bufs[R_KEYS][R_MAXLEN];
	ment_t e[R_KEYS];
	long n;
	int i;

	while (!atomic_load(&r->stop)) {
		for (i = 0; i < R_KEYS; i++)
			e[i] = ment(r->keys[i], bufs[i], R_MAXLEN);
		n = mget(r->fd, e, R_KEYS);
		if (n < 0) {
			atomic_fetch_add(&r->bad, 1);
			fprintf(stderr, "mget: %s\n", strerror(-n));
			continue;
		}
		for (i = 0; i < R_KEYS; i++) {
			if (e[i].result == -ENOENT) {
				atomic_fetch_add(&r->misses, 1);
			} else if (e[i].result == 0 &&
				   value_ok(bufs[i], e[i].value_len, i)) {
				atomic_fetch_add(&r->hits, 1);
			} else {
				atomic_fetch_add(&r->bad, 1);
				fprintf(stderr, "key %d: result %d len %llu\n",
					i, e[i].result,
					(unsigned long long)e[i].value_len);
			}
		}
	}
	return NULL;
}

TEST(mget_races_stores_deletes_and_flushes)
{
	static __u8 val[R_MAXLEN];
	struct race r = { 0 };
	pthread_t rd[2];
	__u64 end, stores = 0, deletes = 0, flushes = 0;
	__u32 seq = 0, k, len;
	char name[64];
	int sess, i;
	long ret;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "%s: %s", KT_DEV, strerror(errno));
	KT_NAME(name, "mget-race");
	r.fd = cache_create(sess, name);
	ASSERT_LE(0, r.fd);
	for (i = 0; i < R_KEYS; i++)
		snprintf(r.keys[i], sizeof(r.keys[i]), "race-%d", i);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&rd[i], NULL, race_reader, &r));

	end = kt_now_ns() + RACE_NS;
	while (kt_now_ns() < end) {
		seq++;
		k = seq % R_KEYS;
		if (seq % 97 == 0) {
			ASSERT_EQ(0, m_flush(r.fd));
			flushes++;
		} else if (seq % 5 == 0) {
			ret = m_delete(r.fd, r.keys[k]);
			ASSERT_TRUE(ret == 0 || ret == -ENOENT);
			deletes++;
		} else {
			len = make_value(val, k, seq);
			ASSERT_EQ(0, m_store(r.fd, r.keys[k], val, len, 0, 0,
					     NULL));
			stores++;
		}
	}
	atomic_store(&r.stop, true);
	for (i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	TH_LOG("%llu stores, %llu deletes, %llu flushes; %lu hits, %lu misses",
	       (unsigned long long)stores, (unsigned long long)deletes,
	       (unsigned long long)flushes, atomic_load(&r.hits),
	       atomic_load(&r.misses));
	EXPECT_EQ(0, atomic_load(&r.bad));
	/* The race really ran both ways. */
	EXPECT_LT(0, atomic_load(&r.hits));
	EXPECT_LT(0, atomic_load(&r.misses));
	EXPECT_LT(0, flushes);
	close(r.fd);
	close(sess);
}

/*
 * The same race made deterministic where userfaultfd exists (the stock
 * kernel; the debug kernel is built without it, and skips): the reader's
 * copy-out blocks on a missing page while the key is deleted, the cache
 * flushed, a grace period passes and same-sized values are stored and
 * freed. The value the reader then copies must still be whole: it holds a
 * reference, not just an RCU section it has long left.
 */
struct uf_reader {
	int fd;
	ment_t e;
	long ret;
};

static void *uf_read(void *arg)
{
	struct uf_reader *r = arg;

	r->ret = mget(r->fd, &r->e, 1);
	return NULL;
}

TEST(mget_value_outlives_delete_while_its_copy_is_blocked)
{
	static __u8 val[R_MAXLEN];
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	struct uffdio_zeropage zp = { 0 };
	struct uffd_msg msg;
	struct uf_reader r = { 0 };
	struct pollfd pfd;
	pthread_t th;
	char name[64], key[16];
	__u32 len, other;
	__u8 *page;
	int sess, uffd, i;

	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	sess = kt_session();
	if (sess < 0)
		SKIP(return, "%s: %s", KT_DEV, strerror(errno));
	KT_NAME(name, "mget-uffd");
	r.fd = cache_create(sess, name);
	ASSERT_LE(0, r.fd);
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page);
	reg.range.start = (uintptr_t)page;
	reg.range.len = 4096;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));

	/* Out of line (a kmalloc'ed buffer), like the churn values below. */
	len = make_value(val, 7, 1);
	ASSERT_EQ(0, m_store(r.fd, "uf", val, len, 0, 0, NULL));
	r.e = ment("uf", page, 4096);
	ASSERT_EQ(0, pthread_create(&th, NULL, uf_read, &r));

	pfd = (struct pollfd){ .fd = uffd, .events = POLLIN };
	ASSERT_EQ(1, poll(&pfd, 1, 20000));
	ASSERT_EQ(sizeof(msg), read(uffd, &msg, sizeof(msg)));
	ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);

	/* The reader is inside its copy-out now. */
	ASSERT_EQ(0, m_delete(r.fd, "uf"));
	for (i = 0; i < 256; i++) {
		snprintf(key, sizeof(key), "churn%d", i);
		other = make_value(val, 8, 1);
		ASSERT_EQ(0, m_store(r.fd, key, val, other, 0, 0, NULL));
	}
	ASSERT_EQ(0, m_flush(r.fd));
	usleep(500000);		/* grace periods pass, RCU callbacks run */
	for (i = 0; i < 256; i++) {
		snprintf(key, sizeof(key), "churn%d", i);
		ASSERT_EQ(0, m_store(r.fd, key, val, other, 0, 0, NULL));
	}

	zp.range.start = (uintptr_t)page;
	zp.range.len = 4096;
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zp));
	pthread_join(th, NULL);
	ASSERT_EQ(1, r.ret);
	EXPECT_EQ(0, r.e.result);
	EXPECT_EQ(len, r.e.value_len);
	EXPECT_TRUE(value_ok(page, r.e.value_len, 7));
	munmap(page, 4096);
	close(uffd);
	close(r.fd);
	close(sess);
}

/*
 * The library wrapper: any number of items (it splits them into calls),
 * each with its own result and out fields.
 */
TEST(lib_mget_many_items_each_answered)
{
	enum { N = 2 * KPRIM_CACHE_MGET_MAX + 3 };
	static char keys[N][16], bufs[N][16];
	static struct kprim_cache_mget_item it[N];
	struct kprim_cache_config cfg = { .max_entries = 2 * N };
	struct kprim_cache_stats st;
	struct kprim_cache *c;
	struct kprim *k;
	uint64_t cas = 0;
	int i, rc;

	rc = kprim_open(&k);
	if (rc)
		SKIP(return, "kprim_open: %s", strerror(-rc));
	ASSERT_EQ(0, kprim_cache_open(k, NULL, KPRIM_CREATE, 0600, &cfg, &c));
	for (i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "lib%d", i);
		/* Every third key absent, every fifth value too long. */
		if (i % 3 && i % 5) {
			ASSERT_EQ(0, kprim_cache_set(c, keys[i], strlen(keys[i]),
						     keys[i], strlen(keys[i]),
						     0, i == 1 ? &cas : NULL));
		} else if (i % 3) {
			ASSERT_EQ(0, kprim_cache_set(c, keys[i], strlen(keys[i]),
						     "0123456789abcdefXYZ", 19,
						     0, NULL));
		}
		it[i] = (struct kprim_cache_mget_item){
			.key = keys[i], .klen = strlen(keys[i]),
			.buf = bufs[i], .len = sizeof(bufs[i]), .cas = 42,
		};
	}
	it[N - 1].klen = 0;
	rc = kprim_cache_mget(c, it, N);
	ASSERT_LT(0, rc);
	for (i = 0; i < N - 1; i++) {
		if (i % 3 == 0) {
			ASSERT_EQ(-ENOENT, it[i].result) TH_LOG("item %d", i);
			ASSERT_EQ(42, it[i].cas);
		} else if (i % 5 == 0) {
			ASSERT_EQ(-EMSGSIZE, it[i].result) TH_LOG("item %d", i);
			ASSERT_EQ(19, it[i].len);
		} else {
			ASSERT_EQ(0, it[i].result) TH_LOG("item %d", i);
			ASSERT_EQ(strlen(keys[i]), it[i].len);
			ASSERT_EQ(0, memcmp(bufs[i], keys[i], it[i].len));
			rc--;
		}
	}
	EXPECT_EQ(-EINVAL, it[N - 1].result);
	EXPECT_EQ(0, rc);	/* the return value counted exactly the hits */
	EXPECT_EQ(cas, it[1].cas);
	ASSERT_EQ(0, kprim_cache_stats(c, &st));
	EXPECT_EQ(N - 1, st.hits + st.misses);

	EXPECT_EQ(0, kprim_cache_mget(c, NULL, 0));
	EXPECT_EQ(-EINVAL, kprim_cache_mget(c, NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_cache_mget(NULL, it, 1));
	kprim_cache_close(c);
	kprim_close(k);
}

/*
 * kprim_cache_mget() against kprim_cache_get(), on MANY_KEYS items: key i
 * holds "<tag>-i" when i % 3 != 2 (else a miss); item i's buffer is 3
 * bytes when i % 5 == 0 (short for a hit), else 32; item i % 7 == 6 has
 * an empty key (-EINVAL).
 */
#define MANY_KEYS	(KPRIM_CACHE_MGET_MAX + 200)
/* Out fields' value before the call: must stay when not written. */
#define UNSET		0x5a5a5a5a5a5a5a5aull

struct many {
	char keys[MANY_KEYS][24];
	char bufs[MANY_KEYS][32];
	struct kprim_cache_mget_item items[MANY_KEYS];
};

static int many_want(size_t i)
{
	return i % 7 == 6 ? -EINVAL : i % 3 == 2 ? -ENOENT :
	       i % 5 == 0 ? -EMSGSIZE : 0;
}

static void many_fill_tag(struct kprim_cache *c, struct many *m, size_t n,
			  bool store, const char *tag)
{
	for (size_t i = 0; i < n; i++) {
		char val[32];

		snprintf(m->keys[i], sizeof(m->keys[i]), "key-%zu", i);
		if (store && i % 3 != 2) {
			snprintf(val, sizeof(val), "%s-%zu", tag, i);
			kprim_cache_set(c, m->keys[i], strlen(m->keys[i]), val,
					strlen(val), 0, NULL);
		}
		memset(m->bufs[i], '#', sizeof(m->bufs[i]));
		m->items[i] = (struct kprim_cache_mget_item){
			.key = m->keys[i],
			.klen = i % 7 == 6 ? 0 : strlen(m->keys[i]),
			.buf = m->bufs[i],
			.len = i % 5 == 0 ? 3 : sizeof(m->bufs[i]),
			.ttl_ns = UNSET, .cas = UNSET, .result = 1,
		};
	}
}

static void many_fill(struct kprim_cache *c, struct many *m, size_t n,
		      bool store)
{
	many_fill_tag(c, m, n, store, "value");
}

/* The items hold what many_fill_tag(..., @tag) stored (no kernel call). */
static bool many_ok(struct many *m, size_t n, const char *tag)
{
	for (size_t i = 0; i < n; i++) {
		struct kprim_cache_mget_item *it = &m->items[i];
		int want = many_want(i);
		char val[32];
		size_t vlen = (size_t)snprintf(val, sizeof(val), "%s-%zu",
					       tag, i);

		if (it->result != want)
			return false;
		if ((want == 0 || want == -EMSGSIZE) && it->len != vlen)
			return false;
		if (want == 0 && memcmp(it->buf, val, vlen))
			return false;
	}
	return true;
}

/* Each item as kprim_cache_get() gives it; returns the hits, or -1. */
static int many_check(struct __test_metadata *_metadata,
		      struct kprim_cache *c, struct many *m, size_t n)
{
	int hits = 0, failed = _metadata->exit_code;

	for (size_t i = 0; i < n; i++) {
		struct kprim_cache_mget_item *it = &m->items[i];
		char buf[32];
		size_t len = i % 5 == 0 ? 3 : sizeof(buf);
		uint64_t cas = UNSET;
		int want = kprim_cache_get(c, it->key, it->klen, buf, &len,
					   NULL, &cas);

		EXPECT_EQ(want, it->result) TH_LOG("item %zu", i);
		EXPECT_EQ(len, it->len) TH_LOG("item %zu", i);
		if (want == 0) {
			hits++;
			EXPECT_EQ(0, memcmp(buf, it->buf, len));
			EXPECT_EQ(cas, it->cas);
			EXPECT_EQ(0, it->ttl_ns);
		} else {
			EXPECT_EQ(UNSET, it->cas);
			EXPECT_EQ(UNSET, it->ttl_ns);
			EXPECT_EQ('#', m->bufs[i][0]);
		}
		EXPECT_EQ(many_want(i), it->result) TH_LOG("item %zu", i);
		if (_metadata->exit_code != failed)
			return -1;
	}
	return hits;
}

FIXTURE(lib) {
	struct kprim *k;
	struct kprim_cache *c;
	struct many *m;
};

FIXTURE_SETUP(lib)
{
	struct kprim_cache_config cfg = { .max_entries = 2 * MANY_KEYS };
	int rc;

	self->c = NULL;
	self->m = NULL;
	rc = kprim_open(&self->k);
	if (rc)
		SKIP(return, "kprim_open: %s", strerror(-rc));
	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600,
				      &cfg, &self->c));
	self->m = calloc(1, sizeof(*self->m));
	ASSERT_NE(NULL, self->m);
}

FIXTURE_TEARDOWN(lib)
{
	free(self->m);
	kprim_cache_close(self->c);
	kprim_close(self->k);
}

TEST_F(lib, mixed_hits_misses_short_buffers_bad_keys)
{
	int hits;

	many_fill(self->c, self->m, 20, true);
	hits = kprim_cache_mget(self->c, self->m->items, 20);
	EXPECT_LT(0, hits);
	EXPECT_EQ(many_check(_metadata, self->c, self->m, 20), hits);
	EXPECT_EQ(1, atomic_load(&mget_calls));
}

/*
 * As many keys per system call as the kernel takes: 1024 items are one
 * ioctl, 1025 two, MANY_KEYS (1224) two.
 */
TEST_F(lib, one_ioctl_per_kernel_maximum)
{
	static const size_t n[] = {
		KPRIM_CACHE_MGET_MAX, KPRIM_CACHE_MGET_MAX + 1, MANY_KEYS,
	};
	static const int calls[] = { 1, 2, 2 };

	many_fill(self->c, self->m, MANY_KEYS, true);
	for (size_t t = 0; t < sizeof(n) / sizeof(n[0]); t++) {
		int hits;

		many_fill(self->c, self->m, n[t], false);
		atomic_store(&mget_calls, 0);
		hits = kprim_cache_mget(self->c, self->m->items, n[t]);
		EXPECT_EQ(calls[t], atomic_load(&mget_calls))
			TH_LOG("%zu items", n[t]);
		EXPECT_EQ(many_check(_metadata, self->c, self->m, n[t]), hits);
	}
}

TEST_F(lib, no_items_is_zero_and_no_call)
{
	EXPECT_EQ(0, kprim_cache_mget(self->c, NULL, 0));
	EXPECT_EQ(0, atomic_load(&mget_calls));
}

TEST_F(lib, bad_arguments_are_einval_and_look_up_nothing)
{
	struct kprim_cache_mget_item it = { .key = "k", .klen = 1, .result = 1 };
	struct kprim_cache_stats st;

	EXPECT_EQ(-EINVAL, kprim_cache_mget(NULL, &it, 1));
	EXPECT_EQ(-EINVAL, kprim_cache_mget(self->c, NULL, 1));
	EXPECT_EQ(-EINVAL, kprim_cache_mget(self->c, &it, (size_t)INT_MAX + 1));
	EXPECT_EQ(1, it.result);
	EXPECT_EQ(0, atomic_load(&mget_calls));
	ASSERT_EQ(0, kprim_cache_stats(self->c, &st));
	EXPECT_EQ(0, st.hits + st.misses);
}

/*
 * A module without the multi-get (simulated by ioctl() above: the
 * handshake of a session opened now lacks KPRIM_FEAT_CACHE_MGET): the
 * library never tries the ioctl and gives every item what a single get
 * gives it, for more items than one multi-get takes.
 */
TEST_F(lib, module_without_multi_get_gets_each_key)
{
	struct kprim_cache_config cfg = { .max_entries = 2 * MANY_KEYS };
	struct kprim_cache *c;
	struct kprim *k;
	uint64_t feat = 0;
	int hits;

	atomic_store(&old_module, true);
	ASSERT_EQ(0, kprim_open(&k));
	ASSERT_LE(0, kprim_api_version(k, &feat));
	ASSERT_EQ(0, feat & KPRIM_FEAT_CACHE_MGET);
	ASSERT_EQ(0, kprim_cache_open(k, NULL, KPRIM_CREATE, 0600, &cfg, &c));
	many_fill(c, self->m, MANY_KEYS, true);
	hits = kprim_cache_mget(c, self->m->items, MANY_KEYS);
	EXPECT_LT(0, hits);
	EXPECT_EQ(0, atomic_load(&mget_calls));
	EXPECT_EQ(many_check(_metadata, c, self->m, MANY_KEYS), hits);
	EXPECT_TRUE(many_ok(self->m, MANY_KEYS, "value"));
	kprim_cache_close(c);
	kprim_close(k);
}

struct many_thread {
	struct kprim_cache *c;
	struct many m;
	int bad;
};

static void *many_thread_fn(void *arg)
{
	struct many_thread *t = arg;

	for (int r = 0; r < 50; r++) {
		many_fill(t->c, &t->m, 100, false);
		if (kprim_cache_mget(t->c, t->m.items, 100) < 0)
			t->bad++;
		if (!many_ok(&t->m, 100, "value"))
			t->bad++;
	}
	return NULL;
}

/* Threads batch at once on one cache: no state shared between calls. */
TEST_F(lib, from_threads)
{
	enum { T = 4 };
	struct many_thread *t = calloc(T, sizeof(*t));
	pthread_t th[T];
	int i;

	ASSERT_NE(NULL, t);
	many_fill(self->c, self->m, 100, true);
	for (i = 0; i < T; i++) {
		t[i].c = self->c;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, many_thread_fn,
					    &t[i]));
	}
	for (i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, t[i].bad) TH_LOG("thread %d", i);
	}
	free(t);
}

/*
 * Parent and forked child batch at the same time, on two caches holding
 * different values: each gets its own cache's values, nothing mixed.
 */
TEST_F(lib, after_fork)
{
	enum { ROUNDS = 300 };
	struct kprim_cache_config cfg = { .max_entries = 2 * MANY_KEYS };
	struct kprim_cache *cc;
	int hits, status, go[2], r, bad = 0;
	char b = 'g';
	pid_t pid;

	ASSERT_EQ(0, kprim_cache_open(self->k, NULL, KPRIM_CREATE, 0600,
				      &cfg, &cc));
	many_fill_tag(cc, self->m, 100, true, "child-value");
	many_fill_tag(self->c, self->m, 100, true, "value");
	hits = kprim_cache_mget(self->c, self->m->items, 100);
	ASSERT_TRUE(many_ok(self->m, 100, "value"));
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (read(go[0], &b, 1) != 1)
			_exit(3);
		for (r = 0; r < ROUNDS; r++) {
			many_fill_tag(cc, self->m, 100, false, "child-value");
			if (kprim_cache_mget(cc, self->m->items, 100) != hits)
				_exit(1);
			if (!many_ok(self->m, 100, "child-value"))
				_exit(2);
		}
		_exit(0);
	}
	ASSERT_EQ(1, write(go[1], &b, 1));
	for (r = 0; r < ROUNDS; r++) {
		many_fill(self->c, self->m, 100, false);
		bad += kprim_cache_mget(self->c, self->m->items, 100) != hits;
		bad += !many_ok(self->m, 100, "value");
	}
	EXPECT_EQ(0, bad);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(go[0]);
	close(go[1]);
	kprim_cache_close(cc);
}

TEST_HARNESS_MAIN
