// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for the cache under memory pressure and the per-user quota,
 * with cgroup v2's memory controller.
 *
 * - A task in a cgroup with memory.max fills a cache whose max_bytes is
 *   far above that limit: the cgroup's reclaim must shrink its entries
 *   (memcg-aware shrinker) instead of OOM-killing the task or failing its
 *   stores.
 * - Reclaim in one cgroup must not evict the entries charged to another,
 *   in another cache or in the same one.
 * - What a user with a 1 MiB max_bytes_per_user quota can pin in kernel
 *   memory, measured in its own cgroup (memory.stat "kernel"), is at most
 *   the quota plus the overhead SECURITY.md documents.
 *
 * The tests mount cgroup2 on /sys/fs/cgroup if nothing is mounted there and
 * skip (saying why) where cgroup2 or its memory controller is missing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_cgroup.h"

#define MIB		(1ull << 20)
/* Values fill a 64 KiB kmalloc buffer with their key: no rounding waste. */
#define BIG_VALUE	(65536 - 256)
#define QUOTA_PARAM	"/sys/module/kprim/parameters/max_bytes_per_user"
#define OBJS_PARAM	"/sys/module/kprim/parameters/max_objects_per_user"
#define QUOTA_UID	23461

/*
 * The overhead beyond max_bytes_per_user that a user's objects may pin,
 * per object it may own (max_objects_per_user), as SECURITY.md documents:
 * the kprim object, its kind's state, its struct file, dentry and fd slot.
 * A debugging kernel (lockdep: a map in every lock; KASAN: redzones
 * around every slab object) makes each of those bigger.
 */
#define OBJ_OVERHEAD		2048ull
#define OBJ_OVERHEAD_DEBUG	4096ull

/* The number after "@key " in a flat-keyed cgroup file, or -1. */
static long long cg_key(const char *cg, const char *file, const char *key)
{
	char path[256], text[8192], *p;
	size_t kl = strlen(key);

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	if (read_str(path, text, sizeof(text)))
		return -1;
	for (p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return strtoll(p + kl + 1, NULL, 10);
	return -1;
}

static long long cg_num(const char *cg, const char *file)
{
	char path[256], text[64];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	if (read_str(path, text, sizeof(text)))
		return -1;
	if (!strncmp(text, "max", 3))
		return LLONG_MAX;
	return strtoll(text, NULL, 10);
}

/* Create cgroup @name under CG_ROOT into @path with memory.max @max. */
static int cg_create(char *path, size_t size, const char *name,
		     unsigned long long max)
{
	char val[32];

	snprintf(path, size, CG_ROOT "/%s-%d", name, getpid());
	rmdir(path);
	if (mkdir(path, 0755))
		return -errno;
	if (max) {
		snprintf(val, sizeof(val), "%llu", max);
		if (cg_write(path, "memory.max", val))
			return -EIO;
		/* No swap to escape to (absent without swap accounting). */
		cg_write(path, "memory.swap.max", "0");
	}
	return 0;
}

static void cg_destroy(const char *cg)
{
	int i;

	/* The last exit's charges may take a moment to go. */
	for (i = 0; i < 50 && rmdir(cg) && errno == EBUSY; i++)
		usleep(100000);
}

static const char *kernel_name(void)
{
	static struct utsname u;

	uname(&u);
	return u.release;
}

static int cache_create(int sess, const char *name,
			unsigned long long max_bytes,
			unsigned long long max_entries,
			unsigned long long max_value)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, name,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);

	a.cache.max_bytes = max_bytes;
	a.cache.max_entries = max_entries;
	a.cache.max_value = max_value;
	return kt_open(sess, &a);
}

static long c_set(int fd, const char *key, const void *val, __u64 len)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .key = (uintptr_t)key,
		.key_len = strlen(key), .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = len,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

/* 0 if @key is there with @len bytes, else a negative errno. */
static long c_has(int fd, const char *key, void *buf, __u64 len)
{
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)key,
		.key_len = strlen(key), .value = (uintptr_t)buf,
		.value_len = len,
	};
	long ret = kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);

	return ret ? ret : g.value_len == len ? 0 : -EBADMSG;
}

static struct kprim_cache_info c_info(int fd)
{
	struct kprim_cache_info info = { .size = sizeof(info) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &info))
		memset(&info, 0xff, sizeof(info));
	return info;
}

/* A number from this fd's fdinfo line "@name:\t<n>", or -1. */
static long long fdinfo_num(int fd, const char *name)
{
	char path[64], text[2048], *m;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_str(path, text, sizeof(text)))
		return -1;
	m = strstr(text, name);
	return m ? strtoll(m + strlen(name) + 2, NULL, 10) : -1;
}

/* What a filling child saw, shared with the parent. */
struct fill_report {
	int stage;		/* where it stopped: 0 = done */
	long err;		/* the failing call's errno */
	int stored;		/* stores that succeeded */
	int present;		/* of those keys, how many a get finds */
	unsigned long long present_bytes;	/* their key + value bytes */
	struct kprim_cache_info info;
	long long shrunk;	/* fdinfo kprim-shrunk */
	long long over_max;	/* memory.current above memory.max seen */
	long long peak;		/* highest memory.current seen */
};

static void *shared_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : memset(p, 0, size);
}

/*
 * In @cg: store @n values of BIG_VALUE under "<tag>-<i>" into @fd, then
 * count what is still there. Reports into @r; exits 0 unless a step
 * failed.
 */
static int fill(const char *cg, int fd, const char *tag, int n,
		struct fill_report *r)
{
	static char val[BIG_VALUE];
	long long cur, max = cg_num(cg, "memory.max");
	char key[64];
	long ret;
	int i;

	memset(val, 'v', sizeof(val));
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s-%d", tag, i);
		ret = c_set(fd, key, val, sizeof(val));
		if (ret) {
			r->stage = 1;
			r->err = ret;
			return 1;
		}
		r->stored++;
		cur = cg_num(cg, "memory.current");
		if (cur > r->peak)
			r->peak = cur;
		if (cur > max)
			r->over_max++;
	}
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%s-%d", tag, i);
		ret = c_has(fd, key, val, sizeof(val));
		if (!ret) {
			r->present++;
			r->present_bytes += strlen(key) + sizeof(val);
		} else if (ret != -ENOENT) {
			r->stage = 2;
			r->err = ret;
			return 1;
		}
	}
	r->info = c_info(fd);
	r->shrunk = fdinfo_num(fd, "kprim-shrunk");
	return 0;
}

FIXTURE(memcg) {
	char cg[128];
	char cg2[128];
	struct fill_report *r;
	struct fill_report *r2;
};

FIXTURE_SETUP(memcg)
{
	const char *why;
	int sess = kt_session();

	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	close(sess);
	why = cg_setup();
	if (why)
		SKIP(return, "%s (kernel %s)", why, kernel_name());
	self->r = shared_map(sizeof(*self->r));
	self->r2 = shared_map(sizeof(*self->r2));
	ASSERT_NE(NULL, self->r);
	ASSERT_NE(NULL, self->r2);
}

FIXTURE_TEARDOWN(memcg)
{
	if (self->cg[0])
		cg_destroy(self->cg);
	if (self->cg2[0])
		cg_destroy(self->cg2);
}

static int wait_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

/*
 * A task in a cgroup with memory.max 32 MiB stores 64 MiB of 64 KiB values
 * into a cache allowed 256 MiB: the cgroup's reclaim shrinks the cache.
 * Before, the one shrinker was not memcg aware, so reclaim in the cgroup
 * could not free an entry: the stores hit the limit and the task was
 * OOM-killed (or a store failed with -ENOMEM).
 */
TEST_F_TIMEOUT(memcg, full_cgroup_shrinks_its_cache, 300)
{
	const int n = 1024;	/* 64 MiB */
	struct fill_report *r = self->r;
	long long ooms;
	int status, fd, sess;
	pid_t pid;

	ASSERT_EQ(0, cg_create(self->cg, sizeof(self->cg), "kt-memcg-full",
			       32 * MIB));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (cg_enter(self->cg))
			_exit(20);
		sess = kt_session();
		fd = cache_create(sess, NULL, 256 * MIB, 8192, MIB);
		if (fd < 0) {
			r->stage = 3;
			r->err = fd;
			_exit(21);
		}
		_exit(fill(self->cg, fd, "k", n, r));
	}
	status = wait_status(pid);
	ooms = cg_key(self->cg, "memory.events", "oom_kill");
	TH_LOG("%s: status %#x, stored %d/%d, stage %d err %ld, present %d, entries %llu, evictions %llu, shrunk %lld, peak %lld, max events %lld, oom_kill %lld",
	       kernel_name(), status, r->stored, n, r->stage, r->err,
	       r->present, (unsigned long long)r->info.entries,
	       (unsigned long long)r->info.evictions, r->shrunk, r->peak,
	       cg_key(self->cg, "memory.events", "max"), ooms);
	EXPECT_FALSE(WIFSIGNALED(status));
	EXPECT_EQ(0, ooms);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(n, r->stored);
	/* The limit was reached, and the cache gave way. */
	EXPECT_LT(0, cg_key(self->cg, "memory.events", "max"));
	EXPECT_LT(0ull, r->info.evictions);
	EXPECT_LT(0, r->shrunk);
	/* Only the shrinker evicted (max_bytes is far away). */
	EXPECT_EQ((unsigned long long)r->shrunk, r->info.evictions);
	/* The counters say what a get finds. */
	EXPECT_EQ((unsigned long long)r->present, r->info.entries);
	EXPECT_EQ(r->present_bytes, r->info.bytes);
	EXPECT_EQ((unsigned long long)n,
		  r->info.entries + r->info.evictions + r->info.expirations);
	EXPECT_LT(0, r->present);
	EXPECT_EQ(0, r->over_max);
	EXPECT_GE(32ll * (long long)MIB, r->peak);
}

/*
 * Two cgroups: B (no limit) stores 8 MiB into its own cache and 8 MiB
 * into a cache shared with A; then A (memory.max 16 MiB) stores 48 MiB
 * into the shared cache. A's reclaim evicts A's entries only: every one
 * of B's entries is still there, in both caches.
 */
TEST_F_TIMEOUT(memcg, reclaim_spares_other_cgroups_entries, 300)
{
	const int nb = 128, na = 768;
	struct fill_report *ra = self->r, *rb = self->r2;
	int sess, shared, own, status, go[2], ready[2];
	char name[64], c;
	pid_t a, b;

	KT_NAME(name, "memcg-shared");
	ASSERT_EQ(0, cg_create(self->cg, sizeof(self->cg), "kt-memcg-a",
			       16 * MIB));
	ASSERT_EQ(0, cg_create(self->cg2, sizeof(self->cg2), "kt-memcg-b",
			       0));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(ready));
	sess = kt_session();
	ASSERT_LE(0, sess);
	/* Root creates the shared cache, charged to no limited cgroup. */
	shared = cache_create(sess, name, 256 * MIB, 8192, MIB);
	ASSERT_LE(0, shared);

	b = fork();
	ASSERT_LE(0, b);
	if (!b) {
		struct fill_report own_r = { 0 };

		if (cg_enter(self->cg2))
			_exit(20);
		own = cache_create(sess, NULL, 256 * MIB, 8192, MIB);
		if (own < 0)
			_exit(21);
		if (fill(self->cg2, own, "b-own", nb, &own_r) ||
		    fill(self->cg2, shared, "b", nb, rb))
			_exit(22);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &c, 1) != 1)
			_exit(23);
		/* After A's fill: B's entries, again. */
		memset(&own_r, 0, sizeof(own_r));
		if (fill(self->cg2, own, "b-own", 0, &own_r))
			_exit(24);
		rb->stored = 0;
		rb->present = 0;
		rb->present_bytes = 0;
		{
			static char val[BIG_VALUE];
			char key[64];
			int i;

			for (i = 0; i < nb; i++) {
				snprintf(key, sizeof(key), "b-own-%d", i);
				if (!c_has(own, key, val, sizeof(val)))
					rb->stored++;
				snprintf(key, sizeof(key), "b-%d", i);
				if (!c_has(shared, key, val, sizeof(val)))
					rb->present++;
			}
		}
		rb->info = c_info(own);
		rb->shrunk = fdinfo_num(own, "kprim-shrunk");
		_exit(0);
	}
	ASSERT_EQ(1, read(ready[0], &c, 1));

	a = fork();
	ASSERT_LE(0, a);
	if (!a) {
		if (cg_enter(self->cg))
			_exit(20);
		_exit(fill(self->cg, shared, "a", na, ra));
	}
	status = wait_status(a);
	TH_LOG("%s: A status %#x, stored %d/%d, stage %d err %ld, present %d, shared cache entries %llu, evictions %llu, shrunk %lld, A oom_kill %lld",
	       kernel_name(), status, ra->stored, na, ra->stage, ra->err,
	       ra->present, (unsigned long long)ra->info.entries,
	       (unsigned long long)ra->info.evictions, ra->shrunk,
	       cg_key(self->cg, "memory.events", "oom_kill"));
	EXPECT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status));
	EXPECT_EQ(0, cg_key(self->cg, "memory.events", "oom_kill"));
	EXPECT_EQ(na, ra->stored);
	EXPECT_LT(0, ra->shrunk);

	ASSERT_EQ(1, write(go[1], "g", 1));
	status = wait_status(b);
	TH_LOG("B: status %#x, own cache %d/%d present (evictions %llu, shrunk %lld), shared %d/%d present",
	       status, rb->stored, nb, (unsigned long long)rb->info.evictions,
	       rb->shrunk, rb->present, nb);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(nb, rb->stored);
	EXPECT_EQ(0ull, rb->info.evictions);
	EXPECT_EQ(0, rb->shrunk);
	EXPECT_EQ(nb, rb->present);
	/* A's evictions in the shared cache were all A's entries. */
	EXPECT_EQ((unsigned long long)(na + nb),
		  c_info(shared).entries + c_info(shared).evictions);
	close(shared);
	kt_unlink(sess, KPRIM_KIND_CACHE, name);
	close(sess);
}

/*
 * The measured figure: bytes a user with a 1 MiB max_bytes_per_user quota
 * can pin. As an unprivileged uid in a cgroup of its own, fill the quota
 * with caches filled to capacity (entries whose buffers round up badly),
 * then create limiters and semaphores up to max_objects_per_user; the
 * kernel memory charged to the cgroup meanwhile (memory.stat "kernel",
 * memory.current) must stay within the quota plus OBJ_OVERHEAD per
 * object.
 */
struct pin_report {
	int stage;
	long err;
	int caches, limiters, sems, entries;
	long long kernel0, kernel1, cur0, cur1;
};

/* One byte each way between the parent and pin_child(). */
static int pin_to[2], pin_from[2];

static int pin_sync(void)
{
	char c = 's';

	return write(pin_from[1], &c, 1) == 1 && read(pin_to[0], &c, 1) == 1 ?
	       0 : -1;
}

static int pin_child(const char *cg, struct pin_report *r, long max_objs)
{
	static char val[2049];
	struct rlimit rl = { .rlim_cur = max_objs + 64,
			     .rlim_max = max_objs + 64 };
	int sess, fd, i, k, fds = 0;
	char key[64];
	long ret;

	memset(val, 'p', sizeof(val));
	if (cg_enter(cg) || setrlimit(RLIMIT_NOFILE, &rl))
		return 30;
	/* /dev/kprim is root's: open the session, then drop to the uid. */
	sess = kt_session();
	if (sess < 0)
		return 32;
	if (setgroups(0, NULL) || setgid(QUOTA_UID) || setuid(QUOTA_UID))
		return 31;
	/* The parent (root) reads the cgroup's figures now. */
	if (pin_sync())
		return 33;
	/* Caches of 64 KiB and 32 entries until the quota says no. */
	for (;;) {
		fd = cache_create(sess, NULL, 64 << 10, 32, 4096);
		if (fd == -EDQUOT)
			break;
		if (fd < 0) {
			r->stage = 1;
			r->err = fd;
			return 1;
		}
		fds++;
		r->caches++;
		/* 2049 + key: a 4 KiB buffer each; max_mem evicts. */
		for (i = 0; i < 64; i++) {
			snprintf(key, sizeof(key), "pin-%d", i);
			ret = c_set(fd, key, val, sizeof(val));
			if (ret) {
				r->stage = 2;
				r->err = ret;
				return 1;
			}
		}
		r->entries += c_info(fd).entries;
	}
	/* Then objects of the other kinds up to max_objects_per_user. */
	for (k = 0; fds < max_objs; k++) {
		struct kprim_open a = kt_open_args(k & 1 ? KPRIM_KIND_SEM :
						   KPRIM_KIND_LIMITER, NULL,
						   KPRIM_OPEN_CREATE |
						   KPRIM_OPEN_CLOEXEC);

		if (k & 1) {
			a.sem.permits = 4;
		} else {
			a.limiter.rate = 10;
			a.limiter.period_ns = 1000000000ull;
			a.limiter.burst = 10;
		}
		fd = kt_open(sess, &a);
		if (fd == -EDQUOT)
			break;
		if (fd < 0) {
			r->stage = 3;
			r->err = fd;
			return 1;
		}
		fds++;
		if (k & 1)
			r->sems++;
		else
			r->limiters++;
	}
	/* And again, with everything still held. */
	if (pin_sync())
		return 34;
	return 0;
}

static char saved_quota[32], saved_objs[32];

FIXTURE(quota) {
	char cg[128];
	struct pin_report *r;
};

FIXTURE_SETUP(quota)
{
	const char *why;
	int sess = kt_session();

	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	close(sess);
	why = cg_setup();
	if (why)
		SKIP(return, "%s (kernel %s)", why, kernel_name());
	ASSERT_EQ(0, read_str(QUOTA_PARAM, saved_quota, sizeof(saved_quota)));
	ASSERT_EQ(0, read_str(OBJS_PARAM, saved_objs, sizeof(saved_objs)));
	self->r = shared_map(sizeof(*self->r));
	ASSERT_NE(NULL, self->r);
}

/* Runs even when the test failed: the module parameters come back. */
FIXTURE_TEARDOWN(quota)
{
	if (saved_quota[0])
		write_str(QUOTA_PARAM, saved_quota);
	if (saved_objs[0])
		write_str(OBJS_PARAM, saved_objs);
	if (self->cg[0])
		cg_destroy(self->cg);
}

TEST_F_TIMEOUT(quota, pinned_by_a_1mib_user, 300)
{
	struct pin_report *r = self->r;
	unsigned long long bound, objs, per_obj;
	long long kernel, cur;
	int status;
	pid_t pid;
	char c;

	ASSERT_EQ(0, write_str(QUOTA_PARAM, "1048576"));
	objs = strtoull(saved_objs, NULL, 10);
	ASSERT_LT(0ull, objs);
	ASSERT_EQ(0, cg_create(self->cg, sizeof(self->cg), "kt-memcg-quota",
			       0));
	ASSERT_EQ(0, pipe(pin_to));
	ASSERT_EQ(0, pipe(pin_from));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(pin_child(self->cg, r, objs));
	close(pin_from[1]);
	/* Before and after: the child holds what it made until told. */
	if (read(pin_from[0], &c, 1) == 1) {
		r->kernel0 = cg_key(self->cg, "memory.stat", "kernel");
		r->cur0 = cg_num(self->cg, "memory.current");
		ASSERT_EQ(1, write(pin_to[1], "g", 1));
		if (read(pin_from[0], &c, 1) == 1) {
			r->kernel1 = cg_key(self->cg, "memory.stat", "kernel");
			r->cur1 = cg_num(self->cg, "memory.current");
		}
		ASSERT_EQ(1, write(pin_to[1], "g", 1));
	}
	status = wait_status(pid);
	kernel = r->kernel1 - r->kernel0;
	cur = r->cur1 - r->cur0;
	per_obj = access("/proc/lockdep", F_OK) ? OBJ_OVERHEAD :
		  OBJ_OVERHEAD_DEBUG;
	bound = MIB + objs * per_obj;
	TH_LOG("%s: status %#x stage %d err %ld: %d caches (%d entries), %d limiters, %d sems; pinned: memory.stat kernel +%lld, memory.current +%lld bytes; bound 1 MiB + %llu objects * %llu = %llu",
	       kernel_name(), status, r->stage, r->err, r->caches,
	       r->entries, r->limiters, r->sems, kernel, cur, objs,
	       per_obj, bound);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	/* The quota was what stopped the caches. */
	EXPECT_LT(0, r->caches);
	EXPECT_EQ(objs, (unsigned long long)(r->caches + r->limiters +
					     r->sems));
	ASSERT_LE(0, r->kernel0);
	EXPECT_GE((long long)bound, kernel);
	EXPECT_GE((long long)bound, cur);
}

TEST_HARNESS_MAIN
