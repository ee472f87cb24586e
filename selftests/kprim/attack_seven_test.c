// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the cache get fast path (value copied out under RCU with page
 * faults off, without a reference; fallback with one): buffers overlapping
 * the argument struct or the key, read-only / PROT_NONE / vanishing value
 * pages, key lengths and keys straddling an unmapped page, value lengths
 * around a page, -EMSGSIZE with a read-only out field, TTL expiry racing a
 * get, a get through a 1-entry io_uring with IOSQE_ASYNC, and get/delete of
 * 4096- and 4097-byte values racing a flush. Only 0, -ENOENT, -EMSGSIZE,
 * -EFAULT, -EINVAL may come back; every value returned is one stored
 * (self-describing); the hit/miss counters equal what callers saw.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define PG	4096
#define MAGIC	0x37374b41U

struct vhdr {
	__u32 magic;
	__u32 len;
	__u64 seed;
};

static __u8 vbyte(__u64 seed, __u32 i)
{
	return (__u8)((seed * 2654435761u) >> 11 ^ i * 167u ^ i >> 8);
}

static void make_value(__u8 *v, __u32 len, __u64 seed)
{
	struct vhdr h = { .magic = MAGIC, .len = len, .seed = seed };

	if (len >= sizeof(h))
		memcpy(v, &h, sizeof(h));
	for (__u32 i = sizeof(h); i < len; i++)
		v[i] = vbyte(seed, i);
}

/* NULL if the @len bytes at @v are a value that was stored. */
static const char *bad_value(const __u8 *v, __u64 len)
{
	struct vhdr h;

	if (len < sizeof(h))
		return "short";
	memcpy(&h, v, sizeof(h));
	if (h.magic != MAGIC)
		return "bad magic";
	if (h.len != len)
		return "length differs from its own";
	for (__u32 i = sizeof(h); i < len; i++)
		if (v[i] != vbyte(h.seed, i))
			return "torn or foreign bytes";
	return NULL;
}

static bool documented(long r)
{
	return r == 0 || r == -ENOENT || r == -EMSGSIZE || r == -EFAULT ||
	       r == -EINVAL;
}

static long c_store(int fd, const void *key, __u32 klen, const void *v,
		    __u64 len, __u64 ttl_ns, bool ttl)
{
	struct kprim_cache_store st = {
		.size = sizeof(st), .flags = ttl ? KPRIM_CACHE_TTL : 0,
		.key = (uintptr_t)key, .key_len = klen, .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)v, .value_len = len, .ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &st);
}

static long c_key(int fd, unsigned long cmd, const void *key, __u32 klen,
		  __u64 ttl_ns)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key, .key_len = klen,
		.ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, cmd, &k);
}

static long c_get(int fd, const void *key, __u32 klen, void *buf,
		  __u64 cap, struct kprim_cache_get *out)
{
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)key, .key_len = klen,
		.value = (uintptr_t)buf, .value_len = cap,
	};
	long r = kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);

	if (out)
		*out = g;
	return r;
}

static struct kprim_cache_info info(int fd)
{
	struct kprim_cache_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

static void *map(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

FIXTURE(a7) {
	int sess, fd;
};

FIXTURE_SETUP(a7)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);

	self->sess = kt_session();
	ASSERT_LE(0, self->sess);
	a.cache.max_entries = 64;
	a.cache.max_bytes = 1 << 20;
	a.cache.max_value = 65536;
	self->fd = kt_open(self->sess, &a);
	ASSERT_LE(0, self->fd);
}

FIXTURE_TEARDOWN(a7)
{
	close(self->fd);
	close(self->sess);
}

/* The value buffer is the argument struct itself, then the key. */
TEST_F(a7, value_overlaps_args_and_key)
{
	__u8 v[64], *area = map(PG, PROT_READ | PROT_WRITE);
	struct kprim_cache_get *g = (void *)area;
	struct kprim_cache_info i0, i1;
	const char *key = "ovl";

	ASSERT_NE(NULL, area);
	make_value(v, 56, 1);
	ASSERT_EQ(0, c_store(self->fd, key, 3, v, 56, 0, false));
	i0 = info(self->fd);
	/* The copy-out overwrites the struct; the out fields then land. */
	memset(g, 0, sizeof(*g));
	g->size = sizeof(*g);
	g->key = (uintptr_t)key;
	g->key_len = 3;
	g->value = (uintptr_t)g;
	g->value_len = 56;
	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, g));
	EXPECT_EQ(0, memcmp(area, v, 24));	/* value bytes before value_len */
	EXPECT_EQ(56, g->value_len);
	EXPECT_EQ(0, g->ttl_ns);
	EXPECT_NE(0, g->cas);

	/* The value buffer is the key buffer (key read first). */
	memcpy(area + 1024, key, 3);
	memset(area + 2048, 0, 64);
	g = (void *)(area + 2048);
	g->size = sizeof(*g);
	g->key = (uintptr_t)(area + 1024);
	g->key_len = 3;
	g->value = (uintptr_t)(area + 1024);
	g->value_len = 56;
	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, g));
	EXPECT_EQ(NULL, bad_value(area + 1024, g->value_len));

	/* The value buffer starts inside the struct and runs past it. */
	g = (void *)(area + 3000);
	memset(g, 0, sizeof(*g));
	g->size = sizeof(*g);
	g->key = (uintptr_t)key;
	g->key_len = 3;
	g->value = (uintptr_t)g + 8;
	g->value_len = 56;
	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, g));
	EXPECT_EQ(56, g->value_len);
	i1 = info(self->fd);
	EXPECT_EQ(i0.hits + 3, i1.hits);
	EXPECT_EQ(i0.misses, i1.misses);
	munmap(area, PG);
}

/* Read-only and PROT_NONE value buffers, small and large values. */
TEST_F(a7, value_buffer_ro_and_none)
{
	static const __u32 lens[] = { 16, 4096, 4097, 20000 };
	__u8 *v = malloc(20000);
	__u8 *ro = map(8 * PG, PROT_READ), *none = map(8 * PG, PROT_NONE);

	/* ro + PG: one writable page, then PROT_NONE. */
	if (ro)
		mprotect(ro + PG, PG, PROT_READ | PROT_WRITE);
	struct kprim_cache_info i0, i1;
	struct kprim_cache_get g;
	unsigned int k, calls = 0;

	ASSERT_NE(NULL, v);
	ASSERT_NE(NULL, ro);
	ASSERT_NE(NULL, none);
	for (k = 0; k < 4; k++) {
		make_value(v, lens[k], k + 10);
		ASSERT_EQ(0, c_store(self->fd, "rk", 2, v, lens[k], 0, false));
		i0 = info(self->fd);
		EXPECT_EQ(-EFAULT, c_get(self->fd, "rk", 2, ro, 8 * PG, &g));
		EXPECT_EQ(8 * PG, g.value_len);	/* out fields untouched */
		EXPECT_EQ(-EFAULT, c_get(self->fd, "rk", 2, none, 8 * PG, &g));
		/* Runs from a good page into PROT_NONE: only a longer
		 * value than the page faults. */
		EXPECT_EQ(lens[k] > PG ? -EFAULT : 0,
			  c_get(self->fd, "rk", 2, ro + PG, 8 * PG, &g));
		if (lens[k] <= PG)
			EXPECT_EQ(NULL, bad_value(ro + PG, g.value_len));
		i1 = info(self->fd);
		calls = 3;
		TH_LOG("len %u: 3 -EFAULT gets counted hits +%llu misses +%llu",
		       lens[k], (unsigned long long)(i1.hits - i0.hits),
		       (unsigned long long)(i1.misses - i0.misses));
		EXPECT_EQ(i0.hits + i0.misses + calls, i1.hits + i1.misses);
	}
	free(v);
	munmap(ro, 8 * PG);
	munmap(none, 8 * PG);
}

struct flip {
	__u8 *page;
	size_t len;
	atomic_bool stop;
	unsigned long flips;
};

static void *flipper(void *arg)
{
	struct flip *f = arg;

	while (!atomic_load(&f->stop)) {
		switch (f->flips++ % 4) {
		case 0:
			mprotect(f->page, f->len, PROT_NONE);
			break;
		case 1:
			mprotect(f->page, f->len, PROT_READ);
			break;
		case 2:
			munmap(f->page, f->len);
			break;
		default:
			mmap(f->page, f->len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		}
	}
	mmap(f->page, f->len, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	return NULL;
}

/* Another thread mprotects/munmaps the value page during the gets. */
TEST_F_TIMEOUT(a7, value_page_vanishes_during_get, 120)
{
	static const __u32 lens[] = { 100, 4096, 4097, 12000 };
	__u8 v[12000], *page = map(4 * PG, PROT_READ | PROT_WRITE);
	struct flip f = { .page = page, .len = 4 * PG };
	unsigned long n = 0, ok = 0, fault = 0, other = 0;
	struct kprim_cache_info i0, i1;
	__u64 end = kt_now_ns() + 5000000000ull;
	pthread_t t;

	ASSERT_NE(NULL, page);
	make_value(v, 4097, 77);
	ASSERT_EQ(0, c_store(self->fd, "vk", 2, v, 4097, 0, false));
	i0 = info(self->fd);
	ASSERT_EQ(0, pthread_create(&t, NULL, flipper, &f));
	while (kt_now_ns() < end) {
		struct kprim_cache_get g;
		long r;

		if (n % 64 == 0) {
			__u32 len = lens[(n / 64) % 4];

			/* Stores are not gets: counters unaffected. */
			make_value(v, len, n);
			if (c_store(self->fd, "vk", 2, v, len, 0, false))
				other++;
		}
		r = c_get(self->fd, "vk", 2, page, 4 * PG, &g);
		n++;
		if (r == 0) {
			ok++;
			/* The page may vanish again before we read it. */
		} else if (r == -EFAULT) {
			fault++;
		} else {
			other++;
			TH_LOG("get: %ld", r);
		}
	}
	atomic_store(&f.stop, true);
	pthread_join(t, NULL);
	i1 = info(self->fd);
	TH_LOG("%lu gets: %lu ok, %lu -EFAULT, %lu flips; hits +%llu misses +%llu",
	       n, ok, fault, f.flips,
	       (unsigned long long)(i1.hits - i0.hits),
	       (unsigned long long)(i1.misses - i0.misses));
	EXPECT_EQ(0, other);
	EXPECT_EQ(n, i1.hits - i0.hits);	/* key always present */
	EXPECT_EQ(0, i1.misses - i0.misses);
	/* A final clean get returns a stored value. */
	{
		struct kprim_cache_get g;

		ASSERT_EQ(0, c_get(self->fd, "vk", 2, page, 4 * PG, &g));
		EXPECT_EQ(NULL, bad_value(page, g.value_len));
	}
	munmap(page, 4 * PG);
}

/* Key lengths 0, 1, KPRIM_KEY_MAX, KPRIM_KEY_MAX + 1. */
TEST_F(a7, key_lengths)
{
	__u8 key[KPRIM_KEY_MAX + 8], v[32], buf[64];
	struct kprim_cache_info i0, i1;
	struct kprim_cache_get g;

	memset(key, 'k', sizeof(key));
	make_value(v, 32, 5);
	ASSERT_EQ(0, c_store(self->fd, key, 1, v, 32, 0, false));
	ASSERT_EQ(0, c_store(self->fd, key, KPRIM_KEY_MAX, v, 32, 0, false));
	i0 = info(self->fd);
	EXPECT_EQ(-EINVAL, c_get(self->fd, key, 0, buf, 64, &g));
	EXPECT_EQ(-EINVAL, c_get(self->fd, key, KPRIM_KEY_MAX + 1, buf, 64,
				 &g));
	EXPECT_EQ(-EINVAL, c_get(self->fd, key, 0xffffffffu, buf, 64, &g));
	EXPECT_EQ(-EINVAL, c_get(self->fd, NULL, 0, buf, 64, &g));
	i1 = info(self->fd);
	EXPECT_EQ(i0.hits, i1.hits);
	EXPECT_EQ(i0.misses, i1.misses);
	EXPECT_EQ(0, c_get(self->fd, key, 1, buf, 64, &g));
	EXPECT_EQ(NULL, bad_value(buf, g.value_len));
	EXPECT_EQ(0, c_get(self->fd, key, KPRIM_KEY_MAX, buf, 64, &g));
	EXPECT_EQ(NULL, bad_value(buf, g.value_len));
	EXPECT_EQ(-ENOENT, c_get(self->fd, key, KPRIM_KEY_MAX - 1, buf, 64,
				 &g));
	EXPECT_EQ(-ENOENT, c_get(self->fd, key, 2, buf, 64, &g));
	/* Key at NULL / kernel address. */
	EXPECT_EQ(-EFAULT, c_get(self->fd, NULL, 5, buf, 64, &g));
	EXPECT_EQ(-EFAULT, c_get(self->fd, (void *)0xffff888000000000ull, 5,
				 buf, 64, &g));
	EXPECT_EQ(-EFAULT, c_get(self->fd, (void *)-8l, 16, buf, 64, &g));
	i1 = info(self->fd);
	EXPECT_EQ(i0.hits + 2, i1.hits);
	EXPECT_EQ(i0.misses + 2, i1.misses);
}

/* A key ending at every offset before an unmapped page. */
TEST_F(a7, key_straddles_unmapped_page)
{
	__u8 *area = map(2 * PG, PROT_READ | PROT_WRITE), v[32], buf[64];
	struct kprim_cache_info i0, i1;
	struct kprim_cache_get g;
	unsigned long expect_hit = 0, expect_miss = 0;
	__u32 len, off;

	ASSERT_NE(NULL, area);
	ASSERT_EQ(0, munmap(area + PG, PG));
	memset(area, 'q', PG);
	make_value(v, 32, 9);
	i0 = info(self->fd);
	/* @off bytes of the key mapped, the rest past the page end. */
	for (len = 1; len <= KPRIM_KEY_MAX; len++) {
		/* One key at a time: the cache holds 64 entries. */
		ASSERT_EQ(0, c_store(self->fd, area, len, v, 32, 0, false));
		for (off = 0; off <= len; off++) {
			long r = c_get(self->fd, area + PG - off, len, buf,
				       64, &g);
			long want = off < len ? -EFAULT :
				    (len <= 64 ? 0 : 0);

			if (off == len)
				expect_hit++;
			if (r != want) {
				TH_LOG("len %u off %u: %ld", len, off, r);
				EXPECT_EQ(want, r);
				goto out;
			}
			if (!r && bad_value(buf, g.value_len)) {
				TH_LOG("len %u: bad value", len);
				EXPECT_EQ(NULL, bad_value(buf, g.value_len));
			}
		}
		ASSERT_EQ(0, c_key(self->fd, KPRIM_IOC_CACHE_DELETE, area, len,
				   0));
	}
out:
	i1 = info(self->fd);
	EXPECT_EQ(i0.hits + expect_hit, i1.hits);
	EXPECT_EQ(i0.misses + expect_miss, i1.misses);
	munmap(area, PG);
}

/* value_len exactly PAGE_SIZE, PAGE_SIZE + 1, 0, with values present. */
TEST_F(a7, value_len_edges)
{
	__u8 *v = malloc(3 * PG), *buf = map(3 * PG, PROT_READ | PROT_WRITE);
	struct kprim_cache_get g;

	ASSERT_NE(NULL, v);
	ASSERT_NE(NULL, buf);
	make_value(v, PG, 1);
	ASSERT_EQ(0, c_store(self->fd, "p", 1, v, PG, 0, false));
	make_value(v, PG + 1, 2);
	ASSERT_EQ(0, c_store(self->fd, "p1", 2, v, PG + 1, 0, false));
	ASSERT_EQ(0, c_store(self->fd, "z", 1, v, 0, 0, false));

	EXPECT_EQ(0, c_get(self->fd, "p", 1, buf, PG, &g));
	EXPECT_EQ(PG, g.value_len);
	EXPECT_EQ(NULL, bad_value(buf, g.value_len));
	EXPECT_EQ(-EMSGSIZE, c_get(self->fd, "p", 1, buf, PG - 1, &g));
	EXPECT_EQ(PG, g.value_len);
	EXPECT_EQ(0, g.cas);	/* not written on -EMSGSIZE: as passed */
	EXPECT_EQ(-EMSGSIZE, c_get(self->fd, "p", 1, buf, 0, &g));
	EXPECT_EQ(PG, g.value_len);

	EXPECT_EQ(-EMSGSIZE, c_get(self->fd, "p1", 2, buf, PG, &g));
	EXPECT_EQ(PG + 1, g.value_len);
	memset(buf, 0, 3 * PG);
	EXPECT_EQ(0, c_get(self->fd, "p1", 2, buf, PG + 1, &g));
	EXPECT_EQ(PG + 1, g.value_len);
	EXPECT_EQ(NULL, bad_value(buf, g.value_len));
	EXPECT_EQ(0, buf[PG + 1]);	/* nothing past the value */
	/* Ends exactly at the last byte of the mapping. */
	EXPECT_EQ(0, c_get(self->fd, "p1", 2, buf + 3 * PG - (PG + 1),
			   PG + 1, &g));
	EXPECT_EQ(NULL, bad_value(buf + 3 * PG - (PG + 1), g.value_len));
	EXPECT_EQ(0, c_get(self->fd, "p", 1, buf + 2 * PG, PG, &g));
	EXPECT_EQ(NULL, bad_value(buf + 2 * PG, g.value_len));

	/* An empty value: NULL or unmapped buffer. */
	EXPECT_EQ(0, c_get(self->fd, "z", 1, NULL, 0, &g));
	EXPECT_EQ(0, g.value_len);
	EXPECT_EQ(0, c_get(self->fd, "z", 1, buf + 5 * PG, 0, &g));
	EXPECT_EQ(0, g.value_len);
	/* A huge capacity is fine when the value fits. */
	EXPECT_EQ(0, c_get(self->fd, "p", 1, buf, ~0ull, &g));
	free(v);
	munmap(buf, 3 * PG);
}

/*
 * An empty value with a buffer pointer access_ok() refuses: GET before the
 * fast path (copy_to_user() of 0 bytes) and MGET today succeed; a GET
 * should agree with them.
 */
TEST_F(a7, empty_value_non_user_buffer_get_agrees_with_mget)
{
	struct kprim_cache_mget_entry ent = {
		.key = (uintptr_t)"z", .key_len = 1,
		.value = (uintptr_t)-1l, .value_len = 0,
	};
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entries = (uintptr_t)&ent, .count = 1,
		.entry_size = sizeof(ent),
	};
	struct kprim_cache_get g;
	long rm, rg;

	ASSERT_EQ(0, c_store(self->fd, "z", 1, "", 0, 0, false));
	rm = kt_ioctl(self->fd, KPRIM_IOC_CACHE_MGET, &m);
	rg = c_get(self->fd, "z", 1, (void *)-1l, 0, &g);
	TH_LOG("mget: %ld (entry result %d); get: %ld", rm, (int)ent.result,
	       rg);
	EXPECT_EQ(0, rg);
}

/* -EMSGSIZE (and success) with the out fields in a read-only page. */
TEST_F(a7, emsgsize_out_fields_read_only)
{
	__u8 *area = map(2 * PG, PROT_READ | PROT_WRITE), v[200], buf[300];
	struct kprim_cache_get *g;
	struct kprim_cache_info i0, i1;
	long r;

	ASSERT_NE(NULL, area);
	make_value(v, 200, 3);
	ASSERT_EQ(0, c_store(self->fd, "e", 1, v, 200, 0, false));
	/* value_len (offset 32) is the first field on the read-only page. */
	g = (void *)(area + PG - 32);
	memset(g, 0, 32);
	g->size = sizeof(*g);
	g->key = (uintptr_t)"e";
	g->key_len = 1;
	g->value = (uintptr_t)buf;
	((__u64 *)(area + PG))[0] = 100;	/* value_len: too small */
	ASSERT_EQ(0, mprotect(area + PG, PG, PROT_READ));
	i0 = info(self->fd);
	r = kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, g);
	EXPECT_EQ(-EFAULT, r);
	ASSERT_EQ(0, mprotect(area + PG, PG, PROT_READ | PROT_WRITE));
	((__u64 *)(area + PG))[0] = 300;
	ASSERT_EQ(0, mprotect(area + PG, PG, PROT_READ));
	r = kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, g);
	EXPECT_EQ(-EFAULT, r);
	/* The whole struct read-only. */
	ASSERT_EQ(0, mprotect(area, 2 * PG, PROT_READ));
	r = kt_ioctl(self->fd, KPRIM_IOC_CACHE_GET, g);
	EXPECT_EQ(-EFAULT, r);
	i1 = info(self->fd);
	TH_LOG("3 -EFAULT gets (entry present): hits +%llu misses +%llu",
	       (unsigned long long)(i1.hits - i0.hits),
	       (unsigned long long)(i1.misses - i0.misses));
	EXPECT_EQ(3, (i1.hits - i0.hits) + (i1.misses - i0.misses));
	munmap(area, 2 * PG);
}

/* TTL 1 ns: expired by the time of any get. */
TEST_F(a7, ttl_one_ns)
{
	__u8 v[64], buf[64];
	struct kprim_cache_info i0, i1;
	struct kprim_cache_get g;
	int k, hits = 0, miss = 0;

	make_value(v, 64, 4);
	i0 = info(self->fd);
	for (k = 0; k < 200; k++) {
		long r;

		ASSERT_EQ(0, c_store(self->fd, "t", 1, v, 64, 1, true));
		r = c_get(self->fd, "t", 1, buf, 64, &g);
		if (r == 0)
			hits++;
		else if (r == -ENOENT)
			miss++;
		else
			EXPECT_EQ(0, r);
	}
	i1 = info(self->fd);
	EXPECT_EQ(0, hits);
	EXPECT_EQ(200, miss);
	EXPECT_EQ(i0.hits + hits, i1.hits);
	EXPECT_EQ(i0.misses + miss, i1.misses);
}

struct toucher {
	int fd;
	atomic_bool stop;
	unsigned long n;
};

static void *touch_loop(void *arg)
{
	struct toucher *t = arg;
	__u8 v[4097];

	make_value(v, 4097, 11);
	while (!atomic_load(&t->stop)) {
		/* 1 ns, 5 µs, never; re-stores (1 ms, 200 µs TTL). */
		switch (t->n++ % 5) {
		case 0:
			c_key(t->fd, KPRIM_IOC_CACHE_TOUCH, "tt", 2, 1);
			break;
		case 1:
			c_key(t->fd, KPRIM_IOC_CACHE_TOUCH, "tt", 2, 5000);
			break;
		case 2:
			c_key(t->fd, KPRIM_IOC_CACHE_TOUCH, "tt", 2, 0);
			break;
		case 3:
			c_store(t->fd, "tt", 2, v, 100 + t->n % 3, 1000000,
				true);
			break;
		default:
			make_value(v, 4097, t->n);
			c_store(t->fd, "tt", 2, v, 4097, 200000, true);
			make_value(v, 100, t->n);
			break;
		}
	}
	return NULL;
}

/* Touch to 1 ns (and stores with tiny TTLs) racing gets. */
TEST_F_TIMEOUT(a7, touch_expiry_races_get, 120)
{
	struct toucher t = { .fd = self->fd };
	__u8 buf[8192];
	unsigned long hits = 0, misses = 0, n = 0;
	struct kprim_cache_info i0, i1;
	__u64 end = kt_now_ns() + 5000000000ull;
	pthread_t th;
	__u8 v[64];

	make_value(v, 64, 1);
	ASSERT_EQ(0, c_store(self->fd, "tt", 2, v, 64, 0, false));
	i0 = info(self->fd);
	ASSERT_EQ(0, pthread_create(&th, NULL, touch_loop, &t));
	while (kt_now_ns() < end) {
		struct kprim_cache_get g;
		long r = c_get(self->fd, "tt", 2, buf, sizeof(buf), &g);

		n++;
		if (r == 0) {
			hits++;
			if (bad_value(buf, g.value_len) && g.value_len != 100 &&
			    g.value_len != 101 && g.value_len != 102) {
				TH_LOG("bad value len %llu",
				       (unsigned long long)g.value_len);
				EXPECT_EQ(NULL, bad_value(buf, g.value_len));
				break;
			}
			if (g.ttl_ns > 1000000) {
				TH_LOG("ttl_ns %llu > any set",
				       (unsigned long long)g.ttl_ns);
				EXPECT_GE(1000000, g.ttl_ns);
				break;
			}
		} else if (r == -ENOENT) {
			misses++;
		} else {
			EXPECT_EQ(0, r);
			break;
		}
	}
	atomic_store(&t.stop, true);
	pthread_join(th, NULL);
	i1 = info(self->fd);
	TH_LOG("%lu gets: %lu hits, %lu misses; %lu touches/stores",
	       n, hits, misses, t.n);
	EXPECT_EQ(i0.hits + hits, i1.hits);
	EXPECT_EQ(i0.misses + misses, i1.misses);
	EXPECT_LT(0, hits);	/* the race was run against live entries */
	EXPECT_LT(0, misses);
}

/* Gets through a 1-entry ring, IOSQE_ASYNC (io-wq worker, its own mm use). */
TEST_F_TIMEOUT(a7, uring_async_get, 120)
{
	__u8 *v = malloc(9000), *none = map(PG, PROT_NONE), *ro = map(PG, PROT_READ);
	static const __u32 lens[] = { 64, 4096, 4097, 9000 };
	struct kprim_cache_info i0, i1;
	unsigned long hits = 0, misses = 0, faults = 0;
	struct io_uring ring;
	unsigned int k, round;
	bool stopnow = false;

	ASSERT_NE(NULL, v);
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));
	i0 = info(self->fd);
	for (round = 0; round < 200; round++) {
		for (k = 0; k < 4; k++) {
			/* A fresh mapping each time: the RCU copy faults. */
			__u8 *fresh = map(3 * PG, PROT_READ | PROT_WRITE);
			struct kprim_cache_get g = {
				.size = sizeof(g), .key = (uintptr_t)"u",
				.key_len = 1, .value_len = 3 * PG,
			};
			struct io_uring_sqe *sqe;
			struct io_uring_cqe *cqe;
			int res, w = round % 4;

			ASSERT_NE(NULL, fresh);
			make_value(v, lens[k], round * 4 + k);
			ASSERT_EQ(0, c_store(self->fd, "u", 1, v, lens[k], 0,
					     false));
			g.value = (uintptr_t)(w == 0 ? fresh :
					      w == 1 ? none :
					      w == 2 ? ro : fresh + 100);
			if (round % 7 == 6) {
				c_key(self->fd, KPRIM_IOC_CACHE_DELETE, "u", 1, 0);
			}
			sqe = io_uring_get_sqe(&ring);
			ASSERT_NE(NULL, sqe);
			prep_kprim(sqe, self->fd, KPRIM_IOC_CACHE_GET, &g, k);
			sqe->flags |= IOSQE_ASYNC;
			ASSERT_EQ(1, io_uring_submit(&ring));
			ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
			res = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			if (!documented(res))
				stopnow = true;
			if (round % 7 == 6) {
				EXPECT_EQ(-ENOENT, res);
				misses++;
			} else if (w == 1 || w == 2) {
				EXPECT_EQ(-EFAULT, res);
				faults++;
			} else {
				EXPECT_EQ(0, res) {
					TH_LOG("round %u len %u: %d", round,
					       lens[k], res);
				}
				if (res)
					stopnow = true;
				if (res == 0) {
					EXPECT_EQ(lens[k], g.value_len);
					EXPECT_EQ(NULL, bad_value((void *)(uintptr_t)g.value,
								  g.value_len));
				}
				hits++;
			}
			munmap(fresh, 3 * PG);
			if (stopnow) {	/* stop at the first */
				round = 1000;
				break;
			}
		}
	}
	io_uring_queue_exit(&ring);
	i1 = info(self->fd);
	TH_LOG("uring gets: %lu hits %lu misses %lu -EFAULT; counters +%llu/+%llu",
	       hits, misses, faults,
	       (unsigned long long)(i1.hits - i0.hits),
	       (unsigned long long)(i1.misses - i0.misses));
	EXPECT_EQ(i0.misses + misses, i1.misses);
	EXPECT_EQ(i0.hits + hits + faults, i1.hits);
	free(v);
}

struct gd {
	int fd;
	atomic_bool *stop;
	__u32 len;
	unsigned long hits, misses, emsg, bad, other, flushes;
	char why[120];
};

static void *get_delete(void *arg)
{
	struct gd *d = arg;
	__u8 *buf = malloc(8192), *v = malloc(4097);
	unsigned long n = 0;

	make_value(v, d->len, d->len);
	while (!atomic_load(d->stop)) {
		struct kprim_cache_get g;
		long r;

		switch (n++ % 4) {
		case 0:
			c_store(d->fd, "gd", 2, v, d->len, 0, false);
			break;
		case 3:
			c_key(d->fd, KPRIM_IOC_CACHE_DELETE, "gd", 2, 0);
			break;
		default:
			/* 4096 capacity: the other thread's 4097 is -EMSGSIZE. */
			r = c_get(d->fd, "gd", 2, buf, n % 8 == 2 ? 4096 : 8192,
				  &g);
			if (r == 0) {
				d->hits++;
				if (bad_value(buf, g.value_len) ||
				    (g.value_len != 4096 && g.value_len != 4097)) {
					d->bad++;
					snprintf(d->why, sizeof(d->why),
						 "len %llu: %s",
						 (unsigned long long)g.value_len,
						 bad_value(buf, g.value_len));
				}
			} else if (r == -ENOENT) {
				d->misses++;
			} else if (r == -EMSGSIZE) {
				d->hits++;
				d->emsg++;
				if (g.value_len != 4097)
					d->bad++;
			} else {
				d->other++;
				snprintf(d->why, sizeof(d->why), "get %ld", r);
			}
		}
	}
	free(buf);
	free(v);
	return NULL;
}

static void *flusher(void *arg)
{
	struct gd *d = arg;
	struct kprim_hdr h = { .size = sizeof(h) };

	while (!atomic_load(d->stop)) {
		if (kt_ioctl(d->fd, KPRIM_IOC_CACHE_FLUSH, &h))
			d->other++;
		d->flushes++;
		usleep(50);
	}
	return NULL;
}

/* Get/delete of a 4096- and a 4097-byte value racing a flush. */
TEST_F_TIMEOUT(a7, page_and_page_plus_one_vs_flush, 120)
{
	atomic_bool stop = false;
	struct gd d[3] = {
		{ .fd = self->fd, .stop = &stop, .len = 4096 },
		{ .fd = self->fd, .stop = &stop, .len = 4097 },
		{ .fd = self->fd, .stop = &stop },
	};
	struct kprim_cache_info i0, i1;
	pthread_t t[3];
	int k;

	i0 = info(self->fd);
	ASSERT_EQ(0, pthread_create(&t[0], NULL, get_delete, &d[0]));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, get_delete, &d[1]));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, flusher, &d[2]));
	sleep(8);
	atomic_store(&stop, true);
	for (k = 0; k < 3; k++)
		pthread_join(t[k], NULL);
	i1 = info(self->fd);
	for (k = 0; k < 2; k++) {
		TH_LOG("len %u: %lu hits (%lu -EMSGSIZE), %lu misses, %lu bad, %lu other %s",
		       d[k].len, d[k].hits, d[k].emsg, d[k].misses, d[k].bad,
		       d[k].other, d[k].why);
		EXPECT_EQ(0, d[k].bad);
		EXPECT_EQ(0, d[k].other);
	}
	TH_LOG("%lu flushes", d[2].flushes);
	EXPECT_EQ(0, d[2].other);
	EXPECT_EQ(i0.hits + d[0].hits + d[1].hits, i1.hits);
	EXPECT_EQ(i0.misses + d[0].misses + d[1].misses, i1.misses);
}

TEST_HARNESS_MAIN
