// SPDX-License-Identifier: GPL-2.0
/*
 * Attack tests for KPRIM_IOC_CACHE_MGET: an unprivileged user (uid 65534)
 * with a shared io_uring ring, a process killed in the middle of a huge
 * multi-get, and entry arrays mapped in odd ways. Every test is bounded to
 * a few seconds.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <grp.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <liburing.h>

#include "kselftest_harness.h"
#include "kprim_test.h"

#define NOBODY	65534
#define MS	1000000ull
#define BIG	(4u << 20)

typedef struct kprim_cache_mget_entry ment_t;

static void drop_to_nobody(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		_exit(90);
}

/* An anonymous cache able to hold one BIG value; exits the child on error. */
static int big_cache(int sess)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);

	a.cache.max_bytes = 2 * BIG;
	a.cache.max_entries = 64;
	a.cache.max_value = BIG;
	return kt_open(sess, &a);
}

static long c_store(int fd, const char *key, const void *val, __u64 len)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .key = (uintptr_t)key,
		.key_len = strlen(key), .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = len,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

static long c_delete(int fd, const char *key)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key,
		.key_len = strlen(key),
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_DELETE, &k);
}

static long c_info(int fd, struct kprim_cache_info *info)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	return kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, info);
}

/* @n entries all asking for @key into the one buffer @buf of @cap bytes. */
static ment_t *same_key_entries(unsigned int n, const char *key, void *buf,
				__u64 cap)
{
	ment_t *ents = calloc(n, sizeof(*ents));
	unsigned int i;

	if (!ents)
		return NULL;
	for (i = 0; i < n; i++) {
		ents[i].key = (uintptr_t)key;
		ents[i].key_len = strlen(key);
		ents[i].value = (uintptr_t)buf;
		ents[i].value_len = cap;
	}
	return ents;
}

/* Wait up to @ms for a byte on @fd; true if one came. */
static bool byte_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&p, 1, ms) == 1 && read(fd, &c, 1) == 1;
}

/* Reap @pid within @ms; true if it was. */
static bool reaped_within(pid_t pid, int ms, int *status)
{
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return true;
		usleep(10000);
	}
	return false;
}

/*
 * A batch of multi-gets submitted to a ring runs inline in
 * io_uring_enter() under the ring's uring_lock unless the driver asks
 * for a worker. Anything else that takes that mutex (a forked process
 * sharing the ring, io_uring_register()) then sleeps uninterruptibly,
 * unkillable, for as long as the batch lasts: up to SQ size x 1024 x
 * max_value bytes of copying, far past the hung-task timeout.
 */
#define GETS	4096

/* The owner submits 8 MGETs of 1024 x BIG, or GETS GETs of BIG each. */
static void ring_sharer_case(struct __test_metadata *_metadata, bool multi)
{
	int go[2], done[2], status, i;
	pid_t owner;
	uint64_t t0;
	bool got;

	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	owner = fork();
	ASSERT_LE(0, owner);
	if (!owner) {
		struct io_uring ring;
		char *val, *buf;
		ment_t *ents;
		int sess, fd;
		struct kprim_cache_mget m[8];
		struct kprim_cache_get *g;
		unsigned int nsqe = multi ? 8 : GETS;
		pid_t sharer;

		/* /dev/kprim is root's: open it, then drop to nobody. */
		sess = kt_session();
		fd = sess < 0 ? -1 : big_cache(sess);
		drop_to_nobody();
		val = malloc(BIG);
		buf = malloc(BIG);
		if (fd < 0 || !val || !buf)
			_exit(91);
		memset(val, 'v', BIG);
		memset(buf, 0, BIG);
		if (c_store(fd, "big", val, BIG))
			_exit(92);
		ents = same_key_entries(KPRIM_CACHE_MGET_MAX, "big", buf, BIG);
		g = calloc(GETS, sizeof(*g));
		if (!ents || !g || io_uring_queue_init(nsqe, &ring, 0))
			_exit(93);
		sharer = fork();
		if (sharer < 0)
			_exit(94);
		if (!sharer) {
			struct io_uring_probe *p;

			if (!byte_within(go[0], 10000))
				_exit(95);
			usleep(300000);
			if (write(done[1], "a", 1) != 1)
				_exit(96);
			/* Takes ctx->uring_lock, like any sharer's submit. */
			p = io_uring_get_probe_ring(&ring);
			free(p);
			_exit(write(done[1], "b", 1) == 1 ? 0 : 96);
		}
		for (i = 0; i < (int)nsqe; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0,
					 0);
			if (!multi) {
				g[i] = (struct kprim_cache_get){
					.size = sizeof(g[i]),
					.key = (uintptr_t)"big", .key_len = 3,
					.value = (uintptr_t)buf,
					.value_len = BIG,
				};
				sqe->cmd_op = KPRIM_IOC_CACHE_GET;
				sqe->addr3 = (uintptr_t)&g[i];
				continue;
			}
			m[i] = (struct kprim_cache_mget){
				.size = sizeof(m[i]),
				.entries = (uintptr_t)ents,
				.count = KPRIM_CACHE_MGET_MAX,
				.entry_size = sizeof(*ents),
			};
			sqe->cmd_op = KPRIM_IOC_CACHE_MGET;
			sqe->addr3 = (uintptr_t)&m[i];
		}
		if (write(go[1], "g", 1) != 1)
			_exit(98);
		io_uring_submit(&ring);
		pause();
		_exit(0);
	}
	if (!byte_within(done[0], 20000)) {
		kill(owner, SIGKILL);
		ASSERT_EQ(owner, waitpid(owner, &status, 0));
		ASSERT_EQ(0, status) TH_LOG("the owner's setup failed");
	}
	t0 = kt_now_ns();
	got = byte_within(done[0], 5000);
	TH_LOG("sharer's io_uring_register(): %s after %llu ms",
	       got ? "returned" : "still blocked",
	       (unsigned long long)(kt_now_ns() - t0) / MS);
	kill(owner, SIGKILL);
	ASSERT_TRUE(reaped_within(owner, 20000, &status));
	EXPECT_TRUE(WIFSIGNALED(status)) TH_LOG("owner exit status %d", status);
	/* The sharer, now an orphan, ends once the ring's lock is free. */
	EXPECT_TRUE(got) TH_LOG("a ring sharer's io_uring_register() waited "
				"> 5 s for the owner's inline %s batch",
				multi ? "MGET" : "GET");
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

static long mget(int fd, void *ents, __u32 count, __u32 entry_size)
{
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entries = (uintptr_t)ents,
		.count = count, .entry_size = entry_size,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_MGET, &m);
}

/*
 * Known open defect (attack round 2): io_uring_enter() issues a batch inline
 * under the ring's uring_lock, and a batch of MGETs or of big GETs keeps a
 * ring sharer in an unkillable sleep for as long as it copies. The fix that
 * sent them to io-wq (commits 7e5713a, 1a68134) made fuzz_test leave object
 * references behind on 6.1 (rmmod refused) and was reverted; the right fix
 * belongs with the asynchronous io_uring path. Run with
 * KPRIM_ATTACK_KNOWN=1 to reproduce (it can trip the hung-task panic).
 */
static bool known_defect_skipped(void)
{
	const char *v = getenv("KPRIM_ATTACK_KNOWN");

	return !v || strcmp(v, "1");
}

TEST(uring_mget_batch_does_not_block_a_ring_sharer)
{
	if (known_defect_skipped())
		SKIP(return, "known open defect, fix reverted (see comment)");
	ring_sharer_case(_metadata, true);
}

/* The same with single GETs of big values: 4096 x 4 MiB per enter. */
TEST(uring_big_get_batch_does_not_block_a_ring_sharer)
{
	if (known_defect_skipped())
		SKIP(return, "known open defect, fix reverted (see comment)");
	ring_sharer_case(_metadata, false);
}

/*
 * SIGKILL while an MGET of 1024 x 4 MiB runs: the task dies promptly, and
 * the references the call took are all dropped (the entry's bytes go
 * away with DELETE; a leaked one would show at rmmod/kmemleak).
 */
TEST(killed_huge_mget_dies_promptly_and_leaks_nothing)
{
	struct kprim_cache_info info;
	int sess, fd, status, ready[2];
	pid_t pid;
	char *val;

	sess = kt_session();
	ASSERT_LE(0, sess);
	fd = big_cache(sess);
	ASSERT_LE(0, fd);
	val = malloc(BIG);
	ASSERT_NE(NULL, val);
	memset(val, 'v', BIG);
	ASSERT_EQ(0, c_store(fd, "big", val, BIG));
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		ment_t *ents;

		drop_to_nobody();
		ents = same_key_entries(KPRIM_CACHE_MGET_MAX, "big", val, BIG);
		if (!ents || write(ready[1], "r", 1) != 1)
			_exit(91);
		for (;;)
			mget(fd, ents, KPRIM_CACHE_MGET_MAX, sizeof(*ents));
	}
	ASSERT_TRUE(byte_within(ready[0], 10000));
	usleep(700000);
	ASSERT_EQ(0, kill(pid, SIGKILL));
	EXPECT_TRUE(reaped_within(pid, 3000, &status))
		TH_LOG("a SIGKILLed MGET ran on for > 3 s");
	if (!WIFSIGNALED(status))
		ASSERT_EQ(0, waitpid(pid, &status, 0) == pid ? 0 : -1);
	ASSERT_EQ(0, c_info(fd, &info));
	EXPECT_EQ(1, info.entries);
	EXPECT_LT(1, info.hits);
	ASSERT_EQ(0, c_delete(fd, "big"));
	ASSERT_EQ(0, c_info(fd, &info));
	EXPECT_EQ(0, info.entries);
	EXPECT_EQ(0, info.bytes);
	free(val);
	close(ready[0]);
	close(ready[1]);
	close(fd);
	close(sess);
}

/*
 * Entry arrays in odd places: straddling an unmapped page, overwritten by
 * their own value, read-only. Precise results, no splat, nothing leaked.
 */
TEST(mget_entry_array_in_odd_memory)
{
	long pg = sysconf(_SC_PAGESIZE);
	struct kprim_cache_info info;
	char val[2 * sizeof(ment_t)];
	char out[16] = { 0 };
	ment_t *ents;
	char *map;
	int sess, fd;

	sess = kt_session();
	ASSERT_LE(0, sess);
	fd = big_cache(sess);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, c_store(fd, "k", "hello", 5));
	map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mprotect(map + pg, pg, PROT_NONE));

	/* Entry 1 straddles into the unmapped page: -EFAULT, 0 filled. */
	ents = (ment_t *)(map + pg - sizeof(ment_t) - 24);
	memset(ents, 0, sizeof(ment_t) + 24);
	ents[0].key = (uintptr_t)"k";
	ents[0].key_len = 1;
	ents[0].value = (uintptr_t)out;
	ents[0].value_len = sizeof(out);
	EXPECT_EQ(-EFAULT, mget(fd, ents, 2, sizeof(ment_t)));
	EXPECT_EQ(0, ents[0].result);
	EXPECT_EQ(5, ents[0].value_len);
	EXPECT_EQ(0, memcmp(out, "hello", 5));

	/* The value lands on the array itself: entry 1 becomes garbage. */
	memset(val, 0xff, sizeof(val));
	ASSERT_EQ(0, c_store(fd, "self", val, sizeof(val)));
	ents = (ment_t *)map;
	memset(ents, 0, 2 * sizeof(ment_t));
	ents[0].key = (uintptr_t)"self";
	ents[0].key_len = 4;
	ents[0].value = (uintptr_t)ents;
	ents[0].value_len = 2 * sizeof(ment_t);
	ents[1].key = (uintptr_t)"k";
	ents[1].key_len = 1;
	EXPECT_EQ(1, mget(fd, ents, 2, sizeof(ment_t)));
	EXPECT_EQ(0, ents[0].result);
	EXPECT_EQ(2 * sizeof(ment_t), ents[0].value_len);
	EXPECT_EQ(-EINVAL, ents[1].result);

	/* A read-only array: the call fails at the first write-back. */
	ents[0].key = (uintptr_t)"k";
	ents[0].key_len = 1;
	ents[0].value = (uintptr_t)out;
	ents[0].value_len = sizeof(out);
	ents[0].result = 12345;
	ASSERT_EQ(0, mprotect(map, pg, PROT_READ));
	EXPECT_EQ(-EFAULT, mget(fd, ents, 1, sizeof(ment_t)));
	EXPECT_EQ(12345, ents[0].result);

	ASSERT_EQ(0, c_delete(fd, "k"));
	ASSERT_EQ(0, c_delete(fd, "self"));
	ASSERT_EQ(0, c_info(fd, &info));
	EXPECT_EQ(0, info.entries);
	EXPECT_EQ(0, info.bytes);
	munmap(map, 2 * pg);
	close(fd);
	close(sess);
}

#define RK	48	/* evictable keys */
#define RP	8	/* pinned keys */
#define RV	3000	/* largest value */

struct race {
	int fd;
	atomic_bool stop;
	atomic_long bad, hits;
};

static void rkey(char *buf, unsigned int i)
{
	if (i < RK)
		sprintf(buf, "k%u", i);
	else
		sprintf(buf, "p%u", i - RK);
}

/* Every byte of a value is its length's low byte xor its key's index. */
static long rstore(int fd, unsigned int i, unsigned int len, __u32 flags,
		   __u64 ttl)
{
	static __thread char val[RV];
	char key[16];
	struct kprim_cache_store s = {
		.size = sizeof(s), .flags = flags, .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = len, .ttl_ns = ttl,
	};

	rkey(key, i);
	memset(val, (len & 0xff) ^ i, len);
	s.key = (uintptr_t)key;
	s.key_len = strlen(key);
	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

static void *race_mget(void *arg)
{
	struct race *r = arg;
	static __thread char keys[RK + RP][16];
	static __thread char vals[RK + RP][RV];
	ment_t ents[RK + RP];
	unsigned int i, j;

	for (i = 0; i < RK + RP; i++)
		rkey(keys[i], i);
	while (!atomic_load(&r->stop)) {
		memset(ents, 0, sizeof(ents));
		for (i = 0; i < RK + RP; i++) {
			ents[i].key = (uintptr_t)keys[i];
			ents[i].key_len = strlen(keys[i]);
			ents[i].value = (uintptr_t)vals[i];
			ents[i].value_len = RV;
		}
		if (mget(r->fd, ents, RK + RP, sizeof(ment_t)) < 0) {
			atomic_fetch_add(&r->bad, 1);
			continue;
		}
		for (i = 0; i < RK + RP; i++) {
			if (ents[i].result == -ENOENT)
				continue;
			if (ents[i].result || ents[i].value_len > RV) {
				atomic_fetch_add(&r->bad, 1);
				continue;
			}
			atomic_fetch_add(&r->hits, 1);
			for (j = 0; j < ents[i].value_len; j++)
				if ((unsigned char)vals[i][j] !=
				    ((ents[i].value_len & 0xff) ^ i)) {
					atomic_fetch_add(&r->bad, 1);
					break;
				}
		}
	}
	return NULL;
}

static void *race_shrink(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

		if (fd < 0)
			return NULL;
		if (write(fd, "2", 1) != 1)
			atomic_fetch_add(&r->bad, 1);
		close(fd);
		usleep(20000);
	}
	return NULL;
}

/*
 * Two multi-getters against a writer (stores of every size with short
 * TTLs, deletes, flushes, re-pins), the shrinker and the sweep, on a cache
 * kept full: every value read back is whole, pinned entries outlive the
 * shrinker, and the cache empties to 0.
 */
TEST(mget_races_writer_shrinker_expiry_and_pins)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);
	struct kprim_cache_info info;
	struct kprim_hdr h = { .size = sizeof(h) };
	struct race r = { 0 };
	pthread_t t[3];
	unsigned int i, n = 0;
	uint64_t end;
	int sess;

	sess = kt_session();
	ASSERT_LE(0, sess);
	a.cache.max_bytes = 32 * RV;
	a.cache.max_entries = 32;
	a.cache.max_value = RV;
	r.fd = kt_open(sess, &a);
	ASSERT_LE(0, r.fd);
	for (i = 0; i < RP; i++)
		ASSERT_EQ(0, rstore(r.fd, RK + i, 100 + i, KPRIM_CACHE_PIN, 0));
	ASSERT_EQ(0, pthread_create(&t[0], NULL, race_mget, &r));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, race_mget, &r));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, race_shrink, &r));
	end = kt_now_ns() + 2500 * MS;
	while (kt_now_ns() < end) {
		long ret;

		i = rand() % RK;
		switch (n++ % 64) {
		case 0:
			ret = kt_ioctl(r.fd, KPRIM_IOC_CACHE_FLUSH, &h);
			for (i = 0; !ret && i < RP; i++)
				ret = rstore(r.fd, RK + i, 100 + i,
					     KPRIM_CACHE_PIN, 0);
			break;
		case 1 ... 8:
			ret = c_delete(r.fd, "k1");
			ret = ret == -ENOENT ? 0 : ret;
			break;
		default:
			ret = rstore(r.fd, i, 1 + rand() % RV,
				     n & 1 ? KPRIM_CACHE_TTL : 0,
				     1 + rand() % (2 * MS));
			break;
		}
		if (ret && ret != -ENOSPC)
			atomic_fetch_add(&r.bad, 1);
	}
	atomic_store(&r.stop, true);
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(0, atomic_load(&r.bad));
	EXPECT_LT(0, atomic_load(&r.hits));
	for (i = 0; i < RP; i++) {
		char key[16], out[RV];
		ment_t e = { .value = (uintptr_t)out, .value_len = RV };

		rkey(key, RK + i);
		e.key = (uintptr_t)key;
		e.key_len = strlen(key);
		EXPECT_EQ(1, mget(r.fd, &e, 1, sizeof(e)));
		EXPECT_EQ(100 + i, e.value_len);
	}
	ASSERT_EQ(0, kt_ioctl(r.fd, KPRIM_IOC_CACHE_FLUSH, &h));
	ASSERT_EQ(0, c_info(r.fd, &info));
	EXPECT_EQ(0, info.entries);
	EXPECT_EQ(0, info.bytes);
	close(r.fd);
	close(sess);
}

TEST_HARNESS_MAIN
