// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for the cache's lockless get: gets of a few hot keys from
 * several threads race every writer of the same keys from others (set of
 * a new value of another length, delete, touch to a short TTL, expiry on
 * access, flush, eviction by stores of other keys). A get copies values of
 * up to a page out under RCU without a reference, and larger values (or a
 * copy that would fault: a fresh, never touched buffer) with one.
 *
 * Every value stored is self-describing (a header with its own length and
 * a seed, then bytes derived from the seed), so each hit checks that the
 * bytes are one value that was stored, never a mix of two or of freed
 * memory; -EMSGSIZE reports a length some value had. The cache's hit and
 * miss counters must equal what the readers saw. KASAN (debug kernel)
 * catches a copy from a freed entry.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/userfaultfd.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim_test.h"

#define MS		1000000ull
#define NHOT		2
#define MAGIC		0x6b70726dU	/* "kprm" */
#define BUF_LEN		(4 * 4096)
#define NREADERS	2

/* Value lengths: <= a page (under RCU) and above (with a reference). */
static const __u32 lens[] = { 16, 17, 40, 255, 1000, 4095, 4096, 4097, 9000 };
#define NLENS	(sizeof(lens) / sizeof(lens[0]))

struct vhdr {
	__u32 magic;
	__u32 len;
	__u64 seed;
};

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) % n;
}

static __u8 vbyte(__u64 seed, __u32 i)
{
	return (__u8)((seed * 2654435761u) >> 13 ^ i * 131u ^ i >> 8);
}

static void make_value(__u8 *v, __u32 len, __u64 seed)
{
	struct vhdr h = { .magic = MAGIC, .len = len, .seed = seed };

	memcpy(v, &h, sizeof(h));
	for (__u32 i = sizeof(h); i < len; i++)
		v[i] = vbyte(seed, i);
}

/* NULL if @v (of @len bytes, as the get reported) is a stored value. */
static const char *bad_value(const __u8 *v, __u64 len)
{
	struct vhdr h;

	if (len < sizeof(h))
		return "shorter than any value stored";
	memcpy(&h, v, sizeof(h));
	if (h.magic != MAGIC)
		return "bad magic";
	if (h.len != len)
		return "length differs from the value's own";
	for (__u32 i = sizeof(h); i < len; i++)
		if (v[i] != vbyte(h.seed, i))
			return "torn or foreign bytes";
	return NULL;
}

static bool known_len(__u64 len)
{
	for (unsigned int i = 0; i < NLENS; i++)
		if (lens[i] == len)
			return true;
	return false;
}

static const char *const hot[NHOT] = { "hot:key:0", "hot:key:1" };

struct shared {
	int fd;
	atomic_bool stop;
	atomic_ulong hits, misses, checked, faulted, emsgsize;
	atomic_ulong sets, deletes, touches, flushes, evicts;
	pthread_mutex_t lock;
	char failure[160];
};

static void fail(struct shared *s, const char *fmt, unsigned long a,
		 unsigned long b)
{
	pthread_mutex_lock(&s->lock);
	if (!s->failure[0])
		snprintf(s->failure, sizeof(s->failure), fmt, a, b);
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->stop, true);
}

static long c_store(int fd, const char *key, const void *v, __u64 len,
		    __u64 ttl_ns)
{
	struct kprim_cache_store st = {
		.size = sizeof(st), .flags = ttl_ns ? KPRIM_CACHE_TTL : 0,
		.key = (uintptr_t)key, .key_len = strlen(key),
		.op = KPRIM_CACHE_SET,
		.value = (uintptr_t)v, .value_len = len, .ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &st);
}

static long c_key(int fd, unsigned long cmd, const char *key, __u64 ttl_ns)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key,
		.key_len = strlen(key), .ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, cmd, &k);
}

static void *reader(void *arg)
{
	struct shared *s = arg;
	unsigned int seed = (unsigned int)gettid() * 7919u;
	__u8 *buf = malloc(BUF_LEN);
	unsigned long n = 0;

	if (!buf) {
		fail(s, "malloc (%lu %lu)", 0, 0);
		return NULL;
	}
	memset(buf, 0, BUF_LEN);
	while (!atomic_load(&s->stop)) {
		struct kprim_cache_get g = { .size = sizeof(g) };
		const char *key = hot[rnd(&seed, NHOT)];
		unsigned int how = rnd(&seed, 16);
		__u8 *dst = buf, *fresh = NULL;
		const char *why;
		long ret;

		g.key = (uintptr_t)key;
		g.key_len = strlen(key);
		g.value_len = BUF_LEN;
		if (how == 0) {
			/* Never touched: the copy under RCU would fault. */
			fresh = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (fresh == MAP_FAILED) {
				fail(s, "mmap (%lu %lu)", 0, 0);
				break;
			}
			dst = fresh;
		} else if (how == 1) {
			/* A short buffer: -EMSGSIZE for the longer values. */
			g.value_len = 16 + rnd(&seed, 5000);
		}
		g.value = (uintptr_t)dst;
		ret = kt_ioctl(s->fd, KPRIM_IOC_CACHE_GET, &g);
		if (ret == -ENOENT) {
			atomic_fetch_add(&s->misses, 1);
		} else if (ret == -EMSGSIZE) {
			atomic_fetch_add(&s->hits, 1);
			atomic_fetch_add(&s->emsgsize, 1);
			if (how != 1 || !known_len(g.value_len))
				fail(s, "-EMSGSIZE with value_len %lu (how %lu)",
				     (unsigned long)g.value_len, how);
		} else if (ret) {
			fail(s, "get: %ld (how %lu)", (unsigned long)ret, how);
		} else {
			atomic_fetch_add(&s->hits, 1);
			why = bad_value(dst, g.value_len);
			if (why || !known_len(g.value_len) || !g.cas ||
			    g.ttl_ns > 200 * MS) {
				pthread_mutex_lock(&s->lock);
				if (!s->failure[0])
					snprintf(s->failure,
						 sizeof(s->failure),
						 "get of %s: %s, len %llu cas %llu ttl %llu",
						 key, why ? why : "fields",
						 (unsigned long long)g.value_len,
						 (unsigned long long)g.cas,
						 (unsigned long long)g.ttl_ns);
				pthread_mutex_unlock(&s->lock);
				atomic_store(&s->stop, true);
			}
			atomic_fetch_add(&s->checked, 1);
			if (fresh)
				atomic_fetch_add(&s->faulted, 1);
		}
		if (fresh)
			munmap(fresh, BUF_LEN);
		/* Dirty bytes left from the last value must not pass. */
		if (!(++n & 63))
			memset(buf, 0xa5, BUF_LEN);
	}
	free(buf);
	return NULL;
}

/* Sets of the hot keys, a new value each time, some with a short TTL. */
static void *setter(void *arg)
{
	struct shared *s = arg;
	unsigned int seed = (unsigned int)gettid() * 104729u;
	static __thread __u8 v[9000];
	__u64 vseed = seed;
	long ret;

	while (!atomic_load(&s->stop)) {
		__u32 len = lens[rnd(&seed, NLENS)];
		__u64 ttl = rnd(&seed, 4) ? 0 : (5 + rnd(&seed, 16)) * MS;

		make_value(v, len, ++vseed);
		ret = c_store(s->fd, hot[rnd(&seed, NHOT)], v, len, ttl);
		/* -ENOSPC: other writers filled the cache meanwhile. */
		if (ret && ret != -ENOSPC)
			fail(s, "set: %ld (len %lu)", (unsigned long)ret, len);
		atomic_fetch_add(&s->sets, 1);
	}
	return NULL;
}

/* Delete, touch to a short TTL, flush now and then, evict by churn. */
static void *writer(void *arg)
{
	struct shared *s = arg;
	unsigned int seed = (unsigned int)gettid() * 15485863u;
	__u8 v[64];
	char key[32];
	unsigned long n = 0;
	long ret;

	make_value(v, 16, 1);
	while (!atomic_load(&s->stop)) {
		const char *k = hot[rnd(&seed, NHOT)];

		/* Mostly yield, so that most gets hit. */
		switch (rnd(&seed, 32)) {
		case 0:
			ret = c_key(s->fd, KPRIM_IOC_CACHE_DELETE, k, 0);
			if (ret && ret != -ENOENT)
				fail(s, "delete: %ld (%lu)",
				     (unsigned long)ret, 0);
			atomic_fetch_add(&s->deletes, 1);
			break;
		case 2:
			ret = c_key(s->fd, KPRIM_IOC_CACHE_TOUCH, k,
				    (5 + rnd(&seed, 16)) * MS);
			if (ret && ret != -ENOENT)
				fail(s, "touch: %ld (%lu)",
				     (unsigned long)ret, 0);
			atomic_fetch_add(&s->touches, 1);
			break;
		case 3:
			if (rnd(&seed, 8))
				break;
			{
				struct kprim_hdr h = { .size = sizeof(h) };

				ret = kt_ioctl(s->fd, KPRIM_IOC_CACHE_FLUSH,
					       &h);
				if (ret)
					fail(s, "flush: %ld (%lu)",
					     (unsigned long)ret, 0);
			}
			atomic_fetch_add(&s->flushes, 1);
			break;
		case 4:
		case 5:
			/* The cache holds 8 entries: this evicts. */
			snprintf(key, sizeof(key), "churn:%lu", n++ % 64);
			ret = c_store(s->fd, key, v, 16, 0);
			if (ret && ret != -ENOSPC)
				fail(s, "churn set: %ld (%lu)",
				     (unsigned long)ret, 0);
			atomic_fetch_add(&s->evicts, 1);
			break;
		default:
			sched_yield();
			break;
		}
	}
	return NULL;
}

static struct kprim_cache_info info(int fd)
{
	struct kprim_cache_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

static unsigned int race_secs(void)
{
	const char *e = getenv("KPRIM_RACE_SECS");
	int v = e ? atoi(e) : 0;

	return v > 0 ? (unsigned int)v : 6;
}

FIXTURE(getrace) {
	int sess;
	struct shared s;
};

FIXTURE_SETUP(getrace)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);

	memset(&self->s, 0, sizeof(self->s));
	pthread_mutex_init(&self->s.lock, NULL);
	self->sess = kt_session();
	ASSERT_LE(0, self->sess);
	a.cache.max_entries = 8;
	a.cache.max_bytes = 1 << 20;
	a.cache.max_value = 16384;
	self->s.fd = kt_open(self->sess, &a);
	ASSERT_LE(0, self->s.fd);
}

FIXTURE_TEARDOWN(getrace)
{
	close(self->s.fd);
	close(self->sess);
}

/*
 * Gets of two hot keys from two threads against a setter and a writer
 * (delete, touch, flush, eviction) on the same keys, for race_secs().
 */
TEST_F_TIMEOUT(getrace, get_vs_set_delete_touch_flush_evict, 120)
{
	struct shared *s = &self->s;
	struct kprim_cache_info before, after;
	pthread_t rd[NREADERS], st, wr;
	__u64 end = kt_now_ns() + race_secs() * 1000 * MS;

	before = info(s->fd);
	ASSERT_EQ(0, pthread_create(&st, NULL, setter, s));
	ASSERT_EQ(0, pthread_create(&wr, NULL, writer, s));
	for (int i = 0; i < NREADERS; i++)
		ASSERT_EQ(0, pthread_create(&rd[i], NULL, reader, s));
	while (!atomic_load(&s->stop) && kt_now_ns() < end)
		usleep(20000);
	atomic_store(&s->stop, true);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(rd[i], NULL);
	pthread_join(st, NULL);
	pthread_join(wr, NULL);
	after = info(s->fd);

	TH_LOG("gets: %lu hits (%lu checked, %lu into fresh pages, %lu -EMSGSIZE), %lu misses; sets %lu deletes %lu touches %lu flushes %lu churn %lu; evictions %llu expirations %llu",
	       atomic_load(&s->hits), atomic_load(&s->checked),
	       atomic_load(&s->faulted), atomic_load(&s->emsgsize),
	       atomic_load(&s->misses), atomic_load(&s->sets),
	       atomic_load(&s->deletes), atomic_load(&s->touches),
	       atomic_load(&s->flushes), atomic_load(&s->evicts),
	       (unsigned long long)(after.evictions - before.evictions),
	       (unsigned long long)(after.expirations - before.expirations));
	EXPECT_STREQ("", s->failure);
	/* Both outcomes and both copy paths were exercised. */
	EXPECT_LT(0, atomic_load(&s->checked));
	EXPECT_LT(0, atomic_load(&s->misses));
	EXPECT_LT(0, atomic_load(&s->faulted));
	EXPECT_LT(0, atomic_load(&s->emsgsize));
	/* Every get counted once, as what it returned. */
	EXPECT_EQ(atomic_load(&s->hits), after.hits - before.hits);
	EXPECT_EQ(atomic_load(&s->misses), after.misses - before.misses);
}

/*
 * A key that is only ever replaced, never deleted, expired or evicted, is
 * never a miss: a get that finds an entry a store has just replaced (and
 * released) looks again. Values of 100 B (copied under RCU) and 9000 B
 * (over a page: copied with a reference, the path that once reported
 * such an entry as a miss) alternate; two setters, two readers.
 */
struct replace_arg {
	struct shared *s;
	unsigned int seed;
};

static void *replacer(void *arg)
{
	struct replace_arg *r = arg;
	static __thread __u8 v[9000];

	while (!atomic_load(&r->s->stop)) {
		__u32 len = rnd(&r->seed, 2) ? 9000 : 100;

		make_value(v, len, r->seed);
		if (c_store(r->s->fd, "only:replaced", v, len, 0)) {
			fail(r->s, "store failed: errno %lu (%lu)", errno, 0);
			break;
		}
		atomic_fetch_add(&r->s->sets, 1);
	}
	return NULL;
}

static void *replaced_reader(void *arg)
{
	struct shared *s = arg;
	static __thread __u8 buf[BUF_LEN];
	const char *key = "only:replaced";

	while (!atomic_load(&s->stop)) {
		struct kprim_cache_get g = {
			.size = sizeof(g), .key = (uintptr_t)key,
			.key_len = strlen(key), .value = (uintptr_t)buf,
			.value_len = sizeof(buf),
		};
		const char *why;

		if (kt_ioctl(s->fd, KPRIM_IOC_CACHE_GET, &g)) {
			fail(s, "get of a key that is always present: errno %lu after %lu hits",
			     errno, atomic_load(&s->hits));
			break;
		}
		why = bad_value(buf, g.value_len);
		if (why) {
			fail(s, "torn value, len %lu (%lu)", g.value_len, 0);
			break;
		}
		atomic_fetch_add(&s->hits, 1);
	}
	return NULL;
}

TEST_F_TIMEOUT(getrace, replaced_key_is_never_a_miss, 120)
{
	struct shared *s = &self->s;
	struct replace_arg ra[2] = { { s, 1 }, { s, 2 } };
	pthread_t st[2], rd[NREADERS];
	__u64 end = kt_now_ns() + race_secs() * 1000 * MS;
	__u8 v[100];

	make_value(v, sizeof(v), 7);
	ASSERT_EQ(0, c_store(s->fd, "only:replaced", v, sizeof(v), 0));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&st[i], NULL, replacer, &ra[i]));
	for (int i = 0; i < NREADERS; i++)
		ASSERT_EQ(0, pthread_create(&rd[i], NULL, replaced_reader, s));
	while (!atomic_load(&s->stop) && kt_now_ns() < end)
		usleep(20000);
	atomic_store(&s->stop, true);
	for (int i = 0; i < NREADERS; i++)
		pthread_join(rd[i], NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(st[i], NULL);
	TH_LOG("%lu gets, %lu replacing stores", atomic_load(&s->hits),
	       atomic_load(&s->sets));
	EXPECT_STREQ("", s->failure);
	EXPECT_LT(0, atomic_load(&s->hits));
	EXPECT_LT(0, atomic_load(&s->sets));
}

/*
 * The fallback made deterministic where userfaultfd exists (the stock
 * kernel; the debug kernel is built without it, and skips): the value's
 * copy under RCU cannot fault in a missing page, so the get takes a
 * reference and copies again outside RCU, where it blocks on the page
 * while the key is deleted, the cache flushed, grace periods pass and
 * other values are stored in the freed memory. The value the get then
 * copies must still be the one it found, for an inline value (copied
 * under RCU when it can be) and one in its own buffer (over a page).
 */
struct uf_get {
	int fd;
	struct kprim_cache_get g;
	long ret;
};

static void *uf_get(void *arg)
{
	struct uf_get *r = arg;

	r->ret = kt_ioctl(r->fd, KPRIM_IOC_CACHE_GET, &r->g);
	return NULL;
}

TEST_F_TIMEOUT(getrace, get_value_outlives_delete_while_its_copy_blocks, 120)
{
	static const __u32 uf_lens[] = { 100, 9000 };
	static __u8 val[9000], other[9000];
	struct uffdio_api api = { .api = UFFD_API };
	int uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	const size_t pg = 4096, len3 = 3 * pg;

	if (uffd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	ASSERT_EQ(0, ioctl(uffd, UFFDIO_API, &api));
	for (unsigned int l = 0; l < 2; l++) {
		struct uffdio_register reg = { 0 };
		struct uffdio_zeropage zp = { 0 };
		struct uf_get r = { .fd = self->s.fd };
		struct uffd_msg msg;
		struct pollfd pfd = { .fd = uffd, .events = POLLIN };
		const char *why;
		char key[16];
		pthread_t th;
		__u8 *buf;

		buf = mmap(NULL, len3, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, buf);
		/* Only the first page is missing. */
		memset(buf + pg, 0, len3 - pg);
		reg.range.start = (uintptr_t)buf;
		reg.range.len = len3;
		reg.mode = UFFDIO_REGISTER_MODE_MISSING;
		ASSERT_EQ(0, ioctl(uffd, UFFDIO_REGISTER, &reg));

		make_value(val, uf_lens[l], 4242 + l);
		ASSERT_EQ(0, c_store(self->s.fd, "uf", val, uf_lens[l], 0));
		r.g = (struct kprim_cache_get){
			.size = sizeof(r.g), .key = (uintptr_t)"uf",
			.key_len = 2, .value = (uintptr_t)buf,
			.value_len = len3,
		};
		ASSERT_EQ(0, pthread_create(&th, NULL, uf_get, &r));
		ASSERT_EQ(1, poll(&pfd, 1, 20000));
		ASSERT_EQ(sizeof(msg), read(uffd, &msg, sizeof(msg)));
		ASSERT_EQ(UFFD_EVENT_PAGEFAULT, msg.event);

		/* The get is inside its copy-out now. */
		ASSERT_EQ(0, c_key(self->s.fd, KPRIM_IOC_CACHE_DELETE, "uf",
				   0));
		{
			struct kprim_hdr h = { .size = sizeof(h) };

			ASSERT_EQ(0, kt_ioctl(self->s.fd,
					      KPRIM_IOC_CACHE_FLUSH, &h));
		}
		usleep(500000);	/* grace periods pass, RCU callbacks run */
		for (int i = 0; i < 64; i++) {
			snprintf(key, sizeof(key), "o%d", i);
			make_value(other, uf_lens[l], 7 + i);
			ASSERT_EQ(0, c_store(self->s.fd, key, other,
					     uf_lens[l], 0));
		}

		zp.range.start = (uintptr_t)buf;
		zp.range.len = pg;
		ASSERT_EQ(0, ioctl(uffd, UFFDIO_ZEROPAGE, &zp));
		pthread_join(th, NULL);
		ASSERT_EQ(0, r.ret);
		ASSERT_EQ(uf_lens[l], r.g.value_len);
		why = bad_value(buf, r.g.value_len);
		EXPECT_EQ(NULL, why) TH_LOG("value of %u bytes: %s",
					    uf_lens[l], why);
		EXPECT_EQ(0, memcmp(buf, val, uf_lens[l]));
		munmap(buf, len3);
	}
	close(uffd);
}

TEST_HARNESS_MAIN
