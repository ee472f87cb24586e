// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the memcg-aware cache shrinker, the tracepoints and the
 * inline argument copy of the try-take/try-acquire path:
 *  1. a cache filled from two memory cgroups, memory.reclaim written to
 *     both (and to the root) while stores, gets, deletes, reopens and
 *     closes run, one cgroup removed (its list_lru lists reparented) with
 *     its entries still in the cache; pinned entries must all survive,
 *     the entry count must match what a get finds, and the last close
 *     must free the reparented entries;
 *  2. tracing (events/kprim) on while objects with queued waiters go:
 *     a dying process with an ioctl waiter and an io_uring wait, io_uring
 *     waits that end (grant, timeout) after the object's last fd closed,
 *     a cache shrunk by memory.reclaim and closed;
 *  3. the inline argument copy racing mprotect()/munmap() of the page an
 *     argument struct straddles (ioctl and io_uring): every call returns
 *     0, -EAGAIN or -EFAULT, and only the calls that returned 0 took
 *     tokens or permits; the size word alone in the last bytes of a page
 *     before an inaccessible one is -EFAULT;
 *  4. userfaultfd stalls (where the kernel has it): a try-acquire whose
 *     struct's tail is on a missing page (nothing held while it sleeps,
 *     its fd closed under it), a get whose value copy-out stalls while
 *     the entry is deleted, the cache flushed, reclaimed and closed;
 *  5. how long one memory.reclaim takes on 30000 small entries (the
 *     shrinker's synchronize_rcu() per walk of 128), loosely bounded.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <linux/userfaultfd.h>
#include <liburing.h>
#include <poll.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_cgroup.h"
#include "kt_uring.h"

#define MS		1000000ull
#define SEC		1000000000ull

/* ---- small helpers ---------------------------------------------------- */

static int cg_create(char *path, size_t size, const char *name)
{
	snprintf(path, size, CG_ROOT "/%s-%d", name, getpid());
	rmdir(path);
	return mkdir(path, 0755) ? -errno : 0;
}

static int cg_rmdir(const char *cg)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (!rmdir(cg) || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		usleep(50000);
	}
	return -EBUSY;
}

static void *shared_map(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : memset(p, 0, size);
}

static int obj_new(int sess, __u32 kind, const char *name, __u64 p0,
		   __u32 extra)
{
	struct kprim_open a = kt_open_args(kind, name, KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_TRANSIENT | extra);

	a.mode = 0666;
	if (kind == KPRIM_KIND_SEM) {
		a.sem.permits = p0;
	} else if (kind == KPRIM_KIND_LIMITER) {
		a.flags |= KPRIM_OPEN_INITIAL;
		a.limiter.rate = 1;
		a.limiter.period_ns = 1000 * SEC;
		a.limiter.burst = p0;
		a.limiter.initial = p0;
	} else {
		a.cache.max_entries = p0;
	}
	return kt_open(sess, &a);
}

static int obj_reopen(int sess, __u32 kind, const char *name)
{
	struct kprim_open a = kt_open_args(kind, name, 0);

	return kt_open(sess, &a);
}

static struct kprim_sem_info sem_state(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i))
		i.permits = ~0ull;
	return i;
}

static struct kprim_limiter_info lim_state(int fd)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i))
		i.waiters = ~0ull;
	return i;
}

static struct kprim_cache_info c_info(int fd)
{
	struct kprim_cache_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

static long c_set(int fd, const char *key, const void *val, __u64 len,
		  __u32 flags)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .flags = flags, .key = (uintptr_t)key,
		.key_len = strlen(key), .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = len,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

static long c_get(int fd, const char *key, void *buf, __u64 len)
{
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)key,
		.key_len = strlen(key), .value = (uintptr_t)buf,
		.value_len = len,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);
}

static long c_del(int fd, const char *key)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key,
		.key_len = strlen(key),
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_DELETE, &k);
}

static long long fdinfo_num(int fd, const char *name)
{
	char path[64], text[2048], *m;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (read_str(path, text, sizeof(text)))
		return -1;
	m = strstr(text, name);
	return m ? strtoll(m + strlen(name) + 2, NULL, 10) : -1;
}

static int wait_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

FIXTURE(six) {
	int unused;
};

FIXTURE_SETUP(six)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(six)
{
}

/* ---- 1. two cgroups, reclaim, rmdir with entries in the cache ---------- */

#define M_KEYS		1500
#define M_PINS		64
#define M_VAL		2048
#define M_SECS		12
/* Fewer than the keys stored: the stores evict too. */
#define M_FULL		2000

struct mshared {
	atomic_int stop_a;
	atomic_int stop;
	atomic_long stores[3];
	atomic_long errs;
	long last_err;
	int where;
	atomic_long reclaims;
	long long max_reclaim_ns;	/* longest memory.reclaim write */
	char max_reclaim_cg;		/* 'a', 'b' or 'r'(oot) */
	atomic_int a_gone;
};

/* Child: in @cg, store (and get, delete) keys "<tag>-<i>" until told. */
static int m_child(const char *cg, int fd, int fd2, char tag,
		   struct mshared *m, atomic_int *stop, int idx)
{
	static char val[M_VAL], buf[M_VAL];
	char key[32];
	unsigned int i = 0;
	long ret;

	if (cg && cg_enter(cg))
		return 10;
	memset(val, tag, sizeof(val));
	if (tag == 'a')
		for (i = 0; i < M_PINS; i++) {
			snprintf(key, sizeof(key), "pin-%u", i);
			if (c_set(fd, key, val, 100, KPRIM_CACHE_PIN))
				return 11;
		}
	for (i = 0; !atomic_load(stop); i++) {
		snprintf(key, sizeof(key), "%c-%u", tag, i % M_KEYS);
		ret = c_set(fd, key, val, sizeof(val), 0);
		if (ret) {
			atomic_fetch_add(&m->errs, 1);
			m->last_err = ret;
			m->where = 1;
			continue;
		}
		atomic_fetch_add(&m->stores[idx], 1);
		if (fd2 >= 0) {
			/* The other cache is flushed under it: no check. */
			snprintf(key, sizeof(key), "f-%u", i % M_KEYS);
			c_set(fd2, key, val, 512, i & 1 ? KPRIM_CACHE_PIN : 0);
		}
		snprintf(key, sizeof(key), "%c-%u", tag, (i * 7) % M_KEYS);
		ret = c_get(fd, key, buf, sizeof(buf));
		if (ret && ret != -ENOENT) {
			atomic_fetch_add(&m->errs, 1);
			m->last_err = ret;
			m->where = 2;
		}
		if (!(i % 13)) {
			snprintf(key, sizeof(key), "%c-%u", tag,
				 (i * 5) % M_KEYS);
			ret = c_del(fd, key);
			if (ret && ret != -ENOENT) {
				atomic_fetch_add(&m->errs, 1);
				m->last_err = ret;
				m->where = 3;
			}
		}
	}
	return 0;
}

/* Child: reopen and close the cache by name, get from it, until told. */
static int m_reopener(int sess, const char *name, int fd2,
		      struct mshared *m)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	char key[32], buf[M_VAL];
	unsigned int i;
	long ret;
	int fd;

	for (i = 0; !atomic_load(&m->stop); i++) {
		fd = obj_reopen(sess, KPRIM_KIND_CACHE, name);
		if (fd < 0) {
			atomic_fetch_add(&m->errs, 1);
			m->last_err = fd;
			m->where = 4;
			continue;
		}
		snprintf(key, sizeof(key), "%c-%u", i & 1 ? 'a' : 'b',
			 i % M_KEYS);
		ret = c_get(fd, key, buf, sizeof(buf));
		if (ret && ret != -ENOENT) {
			atomic_fetch_add(&m->errs, 1);
			m->last_err = ret;
			m->where = 5;
		}
		close(fd);
		if (!(i % 16) && kt_ioctl(fd2, KPRIM_IOC_CACHE_FLUSH, &h)) {
			atomic_fetch_add(&m->errs, 1);
			m->where = 6;
		}
	}
	return 0;
}

/* Child: memory.reclaim on a, b and the root in turn, timing each. */
static int m_reclaimer(const char *cga, const char *cgb, struct mshared *m)
{
	const char *cg;
	char which;
	uint64_t t0, dt;
	unsigned int i;

	for (i = 0; !atomic_load(&m->stop); i++) {
		switch (i % 5) {
		case 0: case 2:
			if (atomic_load(&m->a_gone))
				continue;
			cg = cga, which = 'a';
			break;
		case 1: case 3:
			cg = cgb, which = 'b';
			break;
		default:
			cg = CG_ROOT, which = 'r';
			break;
		}
		t0 = kt_now_ns();
		/* -EAGAIN when less could be reclaimed: not an error. */
		cg_write(cg, "memory.reclaim", which == 'r' ? "1M" : "2M");
		dt = kt_now_ns() - t0;
		if ((long long)dt > m->max_reclaim_ns) {
			m->max_reclaim_ns = dt;
			m->max_reclaim_cg = which;
		}
		atomic_fetch_add(&m->reclaims, 1);
		usleep(5000);
	}
	return 0;
}

TEST_F_TIMEOUT(six, memcg_rmdir_reclaim_two_cgroups, 300)
{
	char cga[128], cgb[128], name[64], name2[64], key[32];
	static char buf[M_VAL];
	struct kprim_cache_info info;
	struct mshared *m;
	pid_t pa, pb, pc, pr;
	int sess, fd, fd2, i, present = 0, pins = 0, ret;
	long long shrunk;
	const char *why;
	uint64_t t0;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	why = cg_setup();
	if (why)
		SKIP(return, "%s", why);
	m = shared_map(sizeof(*m));
	ASSERT_NE(NULL, m);
	ASSERT_EQ(0, cg_create(cga, sizeof(cga), "kt-six-a"));
	ASSERT_EQ(0, cg_create(cgb, sizeof(cgb), "kt-six-b"));
	KT_NAME(name, "six-memcg");
	KT_NAME(name2, "six-memcg2");
	/* Full: stores evict too, under cache->lock, against the walks. */
	fd = obj_new(sess, KPRIM_KIND_CACHE, name, M_FULL, 0);
	ASSERT_LE(0, fd) TH_LOG("create cache: %s", strerror(-fd));
	fd2 = obj_new(sess, KPRIM_KIND_CACHE, name2, M_FULL, 0);
	ASSERT_LE(0, fd2) TH_LOG("create cache: %s", strerror(-fd2));

	pa = fork();
	ASSERT_LE(0, pa);
	if (!pa)
		_exit(m_child(cga, fd, -1, 'a', m, &m->stop_a, 0));
	pb = fork();
	ASSERT_LE(0, pb);
	if (!pb)
		_exit(m_child(cgb, fd, fd2, 'b', m, &m->stop, 1));
	pc = fork();
	ASSERT_LE(0, pc);
	if (!pc)
		_exit(m_reopener(sess, name, fd2, m));
	pr = fork();
	ASSERT_LE(0, pr);
	if (!pr)
		_exit(m_reclaimer(cga, cgb, m));

	usleep(M_SECS * 1000000 / 2);
	/*
	 * a dies in the middle of its stores; its entries stay in the
	 * cache, and its cgroup goes at once: its lists get reparented.
	 */
	kill(pa, SIGKILL);
	EXPECT_EQ(SIGKILL, WTERMSIG(wait_status(pa)));
	atomic_store(&m->a_gone, 1);
	ret = cg_rmdir(cga);
	EXPECT_EQ(0, ret) TH_LOG("rmdir %s: %s", cga, strerror(-ret));
	usleep(M_SECS * 1000000 / 2);
	atomic_store(&m->stop, 1);
	EXPECT_EQ(0, wait_status(pb));
	EXPECT_EQ(0, wait_status(pc));
	EXPECT_EQ(0, wait_status(pr));
	EXPECT_EQ(0, atomic_load(&m->errs))
		TH_LOG("%ld unexpected errors, last %s at step %d",
		       atomic_load(&m->errs), strerror(-m->last_err),
		       m->where);
	TH_LOG("stores a=%ld b=%ld, %ld memory.reclaim writes, longest %lld ms (%c)",
	       atomic_load(&m->stores[0]), atomic_load(&m->stores[1]),
	       atomic_load(&m->reclaims), m->max_reclaim_ns / 1000000,
	       m->max_reclaim_cg);

	info = c_info(fd);
	TH_LOG("before the last reclaim: %llu entries",
	       (unsigned long long)info.entries);
	/* Walk the reparented lists too. */
	t0 = kt_now_ns();
	cg_write(CG_ROOT, "memory.reclaim", "8M");
	TH_LOG("root memory.reclaim 8M: %llu ms",
	       (unsigned long long)(kt_now_ns() - t0) / 1000000);

	for (i = 0; i < M_PINS; i++) {
		snprintf(key, sizeof(key), "pin-%d", i);
		if (!c_get(fd, key, buf, sizeof(buf)))
			pins++;
	}
	EXPECT_EQ(M_PINS, pins) TH_LOG("the shrinker dropped pinned entries");
	for (i = 0; i < M_KEYS; i++) {
		snprintf(key, sizeof(key), "a-%d", i);
		present += !c_get(fd, key, buf, sizeof(buf));
		snprintf(key, sizeof(key), "b-%d", i);
		present += !c_get(fd, key, buf, sizeof(buf));
	}
	info = c_info(fd);
	shrunk = fdinfo_num(fd, "kprim-shrunk");
	TH_LOG("entries %llu, found %d + %d pinned, evictions %llu, shrunk %lld",
	       (unsigned long long)info.entries, present, pins,
	       (unsigned long long)info.evictions, shrunk);
	EXPECT_EQ((__u64)(present + pins), info.entries);
	EXPECT_LT(0, shrunk) TH_LOG("memory.reclaim never reached the cache");
	EXPECT_GE(info.evictions, (__u64)shrunk);
	/* Entries charged to the removed cgroup are freed here. */
	close(fd);
	close(fd2);
	EXPECT_EQ(0, cg_rmdir(cgb));
	close(sess);
	munmap(m, sizeof(*m));
}

/*
 * How long one memory.reclaim takes on a cgroup whose kernel memory is
 * mostly small cache entries: the shrinker waits one synchronize_rcu()
 * per walk of at most 128 entries. Logged, and bounded loosely: a write
 * that takes a minute is a reclaim stall.
 */
#define S_ENTRIES	30000

TEST_F_TIMEOUT(six, reclaim_many_small_entries_time, 300)
{
	char cg[128], key[32];
	long long shrunk;
	const char *why;
	uint64_t t0, dt;
	int sess, fd, i, p[2], ret;
	struct kprim_cache_info info;
	char c;
	pid_t pid;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	why = cg_setup();
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, cg_create(cg, sizeof(cg), "kt-six-small"));
	fd = obj_new(sess, KPRIM_KIND_CACHE, NULL, 1 << 20, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		if (cg_enter(cg))
			_exit(40);
		for (i = 0; i < S_ENTRIES; i++) {
			snprintf(key, sizeof(key), "s-%d", i);
			if (c_set(fd, key, "v", 1, 0))
				_exit(41);
		}
		_exit(write(p[1], "d", 1) == 1 ? 0 : 42);
	}
	ASSERT_EQ(1, read(p[0], &c, 1));
	EXPECT_EQ(0, wait_status(pid));
	t0 = kt_now_ns();
	ret = cg_write(cg, "memory.reclaim", "64M");
	dt = kt_now_ns() - t0;
	info = c_info(fd);
	shrunk = fdinfo_num(fd, "kprim-shrunk");
	TH_LOG("memory.reclaim 64M: %s after %llu ms; %lld of %d entries shrunk, %llu left",
	       ret ? strerror(-ret) : "done",
	       (unsigned long long)dt / 1000000, shrunk, S_ENTRIES,
	       (unsigned long long)info.entries);
	EXPECT_LT(0, shrunk);
	EXPECT_GT(60 * SEC, dt) TH_LOG("one memory.reclaim write stalled");
	close(fd);
	close(p[0]);
	close(p[1]);
	EXPECT_EQ(0, cg_rmdir(cg));
	close(sess);
}

/* ---- 2. tracing on while objects with queued waiters go ---------------- */

static const char *tracing_dir(void)
{
	static const char *const dirs[] = {
		"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
	};
	char path[128];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/events/kprim", dirs[i]);
		if (!access(path, F_OK))
			return dirs[i];
	}
	mount("tracefs", dirs[0], "tracefs", 0, NULL);
	snprintf(path, sizeof(path), "%s/events/kprim", dirs[0]);
	return access(path, F_OK) ? NULL : dirs[0];
}

static int tr_write(const char *dir, const char *file, const char *s,
		    int flags)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	if (s[0] && write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

/* How many lines of the trace buffer contain @what. */
static int tr_count(const char *dir, const char *what)
{
	char path[256], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/trace", dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += !!strstr(line, what);
	fclose(f);
	return n;
}

struct tw {
	int fd;
	long ret;
};

static void *tr_waiter(void *arg)
{
	struct tw *t = arg;
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = 1,
		.wait = kt_wait(~0ull, KPRIM_NO_CANCEL_FD),
	};

	t->ret = kt_ioctl(t->fd, KPRIM_IOC_SEM_ACQUIRE, &a);
	return NULL;
}

/*
 * A process with an ioctl waiter and an io_uring wait on a semaphore and
 * an io_uring wait on a limiter, SIGKILLed; the parent closes its fds at
 * the same time, so the objects go with the dying process's waits.
 */
static int tr_dying_child(int sem, int lim, int ready)
{
	static struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = 1,
		.wait = { .timeout_ns = ~0ull, .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	static struct kprim_limiter_take t = {
		.size = sizeof(t), .n = 1,
		.wait = { .timeout_ns = ~0ull, .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct tw w = { .fd = sem };
	pthread_t th;

	if (io_uring_queue_init(1, &ring, 0))
		return 20;
	sqe = io_uring_get_sqe(&ring);
	prep_kprim(sqe, sem, KPRIM_IOC_SEM_ACQUIRE, &a, 1);
	if (io_uring_submit(&ring) != 1)
		return 21;
	sqe = io_uring_get_sqe(&ring);
	prep_kprim(sqe, lim, KPRIM_IOC_LIMITER_TAKE, &t, 2);
	if (io_uring_submit(&ring) != 1)
		return 22;
	if (pthread_create(&th, NULL, tr_waiter, &w))
		return 23;
	if (write(ready, "r", 1) != 1)
		return 24;
	pause();
	return 0;
}

#define T_ROUNDS	40

TEST_F_TIMEOUT(six, trace_objects_go_with_queued_waits, 300)
{
	const char *dir = tracing_dir();
	int sess, i, sem, lim, sem2, p[2], res, ends, grants;
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = 1,
		.wait = kt_wait(~0ull, KPRIM_NO_CANCEL_FD),
	};
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = 1,
		.wait = kt_wait(2 * MS, KPRIM_NO_CANCEL_FD),
	};
	char c, name[64];
	pid_t pid;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	if (!dir)
		SKIP(return, "no tracefs with events/kprim");
	ASSERT_EQ(0, tr_write(dir, "trace", "", O_TRUNC));
	ASSERT_EQ(0, tr_write(dir, "tracing_on", "1", 0));
	ASSERT_EQ(0, tr_write(dir, "events/kprim/enable", "1", 0));
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));

	for (i = 0; i < T_ROUNDS; i++) {
		/* (a) a dying process's waits, objects closed meanwhile. */
		sem = obj_new(sess, KPRIM_KIND_SEM, NULL, 1, 0);
		lim = obj_new(sess, KPRIM_KIND_LIMITER, NULL, 1, 0);
		ASSERT_LE(0, sem);
		ASSERT_LE(0, lim);
		ASSERT_EQ(0, kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, &a));
		t.wait.timeout_ns = 0;
		ASSERT_EQ(0, kt_ioctl(lim, KPRIM_IOC_LIMITER_TAKE, &t));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid)
			_exit(tr_dying_child(sem, lim, p[1]));
		ASSERT_EQ(1, read(p[0], &c, 1));
		usleep(i % 5 * 1000);
		kill(pid, SIGKILL);
		close(sem);
		close(lim);
		ASSERT_EQ(SIGKILL, WTERMSIG(wait_status(pid)));

		/*
		 * (b) an io_uring wait granted by the close of the object's
		 * last fd (its holder's): the grant and the completion come
		 * after that close.
		 */
		KT_NAME(name, "six-tr");
		sem = obj_new(sess, KPRIM_KIND_SEM, name, 1, 0);
		ASSERT_LE(0, sem);
		sem2 = obj_reopen(sess, KPRIM_KIND_SEM, name);
		ASSERT_LE(0, sem2);
		ASSERT_EQ(0, kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, &a));
		sqe = io_uring_get_sqe(&ring);
		ASSERT_NE(NULL, sqe);
		prep_kprim(sqe, sem2, KPRIM_IOC_SEM_ACQUIRE, &a, 10);
		ASSERT_EQ(1, io_uring_submit(&ring));
		close(sem2);
		close(sem);
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		EXPECT_EQ(0, res) TH_LOG("round %d: granted wait: %s", i,
					 strerror(-res));

		/* (c) an io_uring wait timing out after the last close. */
		lim = obj_new(sess, KPRIM_KIND_LIMITER, NULL, 1, 0);
		ASSERT_LE(0, lim);
		t.wait.timeout_ns = 0;
		ASSERT_EQ(0, kt_ioctl(lim, KPRIM_IOC_LIMITER_TAKE, &t));
		t.wait.timeout_ns = 1 * MS + i * 100000;
		sqe = io_uring_get_sqe(&ring);
		ASSERT_NE(NULL, sqe);
		prep_kprim(sqe, lim, KPRIM_IOC_LIMITER_TAKE, &t, 11);
		ASSERT_EQ(1, io_uring_submit(&ring));
		close(lim);
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		EXPECT_EQ(-ETIMEDOUT, res) TH_LOG("round %d: %s", i,
						  strerror(-res));
	}
	io_uring_queue_exit(&ring);
	ends = tr_count(dir, "kprim_wait_end");
	grants = tr_count(dir, "kprim_wait_grant");
	EXPECT_EQ(0, tr_write(dir, "events/kprim/enable", "0", 0));
	TH_LOG("trace: %d wait_end, %d wait_grant lines", ends, grants);
	/* The buffer may have wrapped; some of each must be there. */
	EXPECT_LT(0, ends);
	EXPECT_LT(0, grants);
	close(p[0]);
	close(p[1]);
	close(sess);
}

/* A cache shrunk by memory.reclaim and closed, with tracing on. */
TEST_F_TIMEOUT(six, trace_shrinker_evicts_while_closing, 300)
{
	const char *dir = tracing_dir();
	const char *why;
	static char val[4096];
	char cg[128], key[32];
	int sess, fd, round, i, evicts;
	pid_t pid;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	if (!dir)
		SKIP(return, "no tracefs with events/kprim");
	why = cg_setup();
	if (why)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, cg_create(cg, sizeof(cg), "kt-six-tr"));
	ASSERT_EQ(0, tr_write(dir, "trace", "", O_TRUNC));
	ASSERT_EQ(0, tr_write(dir, "events/kprim/enable", "1", 0));
	memset(val, 'x', sizeof(val));
	for (round = 0; round < 10; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			if (cg_enter(cg))
				_exit(30);
			fd = obj_new(sess, KPRIM_KIND_CACHE, NULL, 1 << 20, 0);
			if (fd < 0)
				_exit(31);
			for (i = 0; i < 2000; i++) {
				snprintf(key, sizeof(key), "k-%d", i);
				if (c_set(fd, key, val, sizeof(val), 0))
					_exit(32);
			}
			/* The parent reclaims while this one closes. */
			usleep(round * 2000);
			close(fd);
			_exit(0);
		}
		for (i = 0; i < 20; i++) {
			cg_write(cg, "memory.reclaim", "1M");
			usleep(1000);
		}
		EXPECT_EQ(0, wait_status(pid));
	}
	evicts = tr_count(dir, "kprim_cache_evict");
	EXPECT_EQ(0, tr_write(dir, "events/kprim/enable", "0", 0));
	TH_LOG("%d kprim_cache_evict lines", evicts);
	EXPECT_LT(0, evicts);
	EXPECT_EQ(0, cg_rmdir(cg));
	close(sess);
}

/* ---- 3. the inline argument copy against mprotect/munmap --------------- */

struct race {
	char *base;		/* two pages: the struct straddles them */
	int memfd;
	long page;
	atomic_bool stop;
	atomic_long flips;
};

static void *flipper(void *arg)
{
	struct race *r = arg;
	char *p2 = r->base + r->page;
	unsigned int i;

	for (i = 0; !atomic_load(&r->stop); i++) {
		switch (i % 3) {
		case 0:
			mprotect(p2, r->page, PROT_NONE);
			sched_yield();
			mprotect(p2, r->page, PROT_READ | PROT_WRITE);
			break;
		case 1:
			mprotect(p2, r->page, PROT_READ);
			sched_yield();
			mprotect(p2, r->page, PROT_READ | PROT_WRITE);
			break;
		default:
			/* Same memfd page back: the struct's tail survives. */
			munmap(p2, r->page);
			sched_yield();
			if (mmap(p2, r->page, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_FIXED, r->memfd, r->page) !=
			    p2)
				return (void *)1;
			break;
		}
		atomic_fetch_add(&r->flips, 1);
	}
	return NULL;
}

static int race_setup(struct race *r)
{
	r->page = sysconf(_SC_PAGESIZE);
	r->memfd = memfd_create("kt-six", MFD_CLOEXEC);
	if (r->memfd < 0 || ftruncate(r->memfd, 2 * r->page))
		return -1;
	r->base = mmap(NULL, 2 * r->page, PROT_READ | PROT_WRITE, MAP_SHARED,
		       r->memfd, 0);
	return r->base == MAP_FAILED ? -1 : 0;
}

/*
 * Write the struct through the memfd, not the mapping: the flipper may
 * have made the page inaccessible.
 */
static void put_args(struct race *r, int off, const void *args, size_t len)
{
	if (pwrite(r->memfd, args, len, r->page - off) != (ssize_t)len)
		abort();
}

#define R_SECS	6

TEST_F_TIMEOUT(six, copy_args_vs_mprotect, 120)
{
	struct race r = { 0 };
	struct kprim_limiter_take *t;
	struct kprim_sem_acquire *a;
	long ok_t = 0, ok_a = 0, fault = 0, again = 0, ret;
	const struct kprim_limiter_take t0 = {
		.size = sizeof(t0), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	const struct kprim_sem_acquire a0 = {
		.size = sizeof(a0), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	int sess, lim, sem, off;
	pthread_t th;
	uint64_t end;
	void *thr;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	ASSERT_EQ(0, race_setup(&r));
	lim = obj_new(sess, KPRIM_KIND_LIMITER, NULL, 1ull << 22, 0);
	sem = obj_new(sess, KPRIM_KIND_SEM, NULL, 1u << 30, 0);
	ASSERT_LE(0, lim);
	ASSERT_LE(0, sem);
	ASSERT_EQ(0, pthread_create(&th, NULL, flipper, &r));
	end = kt_now_ns() + R_SECS * SEC;
	for (off = 4; kt_now_ns() < end; off = off == 36 ? 4 : off + 4) {
		/* The page boundary falls @off bytes into the struct. */
		t = (void *)(r.base + r.page - off);
		a = (void *)(r.base + r.page - off);
		put_args(&r, off, &t0, sizeof(t0));
		ret = kt_ioctl(lim, KPRIM_IOC_LIMITER_TAKE, t);
		if (!ret)
			ok_t++;
		else if (ret == -EFAULT)
			fault++;
		else if (ret == -EAGAIN)
			again++;
		else
			ASSERT_EQ(0, ret) TH_LOG("take at -%d: %s", off,
						 strerror(-ret));
		put_args(&r, off, &a0, sizeof(a0));
		ret = kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, a);
		if (!ret)
			ok_a++;
		else if (ret == -EFAULT)
			fault++;
		else
			ASSERT_EQ(0, ret) TH_LOG("acquire at -%d: %s", off,
						 strerror(-ret));
	}
	atomic_store(&r.stop, true);
	ASSERT_EQ(0, pthread_join(th, &thr));
	ASSERT_EQ(NULL, thr);
	TH_LOG("%ld takes, %ld acquires, %ld -EFAULT, %ld -EAGAIN, %ld flips",
	       ok_t, ok_a, fault, again, atomic_load(&r.flips));
	EXPECT_EQ((__u64)ok_t, lim_state(lim).admitted);
	EXPECT_EQ((__u64)ok_a, sem_state(sem).held);
	EXPECT_LT(0, fault) TH_LOG("the race never hit a fault");
	close(lim);
	close(sem);
	close(sess);
}

TEST_F_TIMEOUT(six, copy_args_vs_mprotect_uring, 120)
{
	struct race r = { 0 };
	struct io_uring ring;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct kprim_limiter_take *t;
	struct kprim_sem_acquire *a;
	long ok_t = 0, ok_a = 0, fault = 0, again = 0;
	const struct kprim_limiter_take t0 = {
		.size = sizeof(t0), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	const struct kprim_sem_acquire a0 = {
		.size = sizeof(a0), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	int sess, lim, sem, off, res, n;
	pthread_t th;
	uint64_t end;
	void *thr;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	ASSERT_EQ(0, race_setup(&r));
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));
	lim = obj_new(sess, KPRIM_KIND_LIMITER, NULL, 1ull << 22, 0);
	sem = obj_new(sess, KPRIM_KIND_SEM, NULL, 1u << 30, 0);
	ASSERT_LE(0, lim);
	ASSERT_LE(0, sem);
	ASSERT_EQ(0, pthread_create(&th, NULL, flipper, &r));
	end = kt_now_ns() + R_SECS * SEC;
	for (n = 0, off = 4; kt_now_ns() < end; n++,
	     off = off == 36 ? 4 : off + 4) {
		bool is_t = n & 1;

		t = (void *)(r.base + r.page - off);
		a = (void *)(r.base + r.page - off);
		if (is_t)
			put_args(&r, off, &t0, sizeof(t0));
		else
			put_args(&r, off, &a0, sizeof(a0));
		sqe = io_uring_get_sqe(&ring);
		ASSERT_NE(NULL, sqe);
		if (is_t)
			prep_kprim(sqe, lim, KPRIM_IOC_LIMITER_TAKE, t, n);
		else
			prep_kprim(sqe, sem, KPRIM_IOC_SEM_ACQUIRE, a, n);
		if (n & 2)
			io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (!res)
			*(is_t ? &ok_t : &ok_a) += 1;
		else if (res == -EFAULT)
			fault++;
		else if (res == -EAGAIN && is_t)
			again++;
		else
			ASSERT_EQ(0, res) TH_LOG("%s at -%d: %s",
						 is_t ? "take" : "acquire",
						 off, strerror(-res));
	}
	atomic_store(&r.stop, true);
	ASSERT_EQ(0, pthread_join(th, &thr));
	ASSERT_EQ(NULL, thr);
	TH_LOG("%ld takes, %ld acquires, %ld -EFAULT, %ld -EAGAIN, %ld flips",
	       ok_t, ok_a, fault, again, atomic_load(&r.flips));
	EXPECT_EQ((__u64)ok_t, lim_state(lim).admitted);
	EXPECT_EQ((__u64)ok_a, sem_state(sem).held);
	io_uring_queue_exit(&ring);
	close(lim);
	close(sem);
	close(sess);
}

/*
 * The size word alone in the last 4 bytes of a page, the rest of the
 * struct on an inaccessible page: the inline copy's first u64 read
 * faults there, and the general path must say -EFAULT (not read the size
 * and go on, not take anything).
 */
TEST(size_word_at_page_end)
{
	long page = sysconf(_SC_PAGESIZE);
	char *base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int sess, lim, sem;
	__u32 *w;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	ASSERT_NE(MAP_FAILED, base);
	lim = obj_new(sess, KPRIM_KIND_LIMITER, NULL, 1000, 0);
	sem = obj_new(sess, KPRIM_KIND_SEM, NULL, 1000, 0);
	ASSERT_LE(0, lim);
	ASSERT_LE(0, sem);
	ASSERT_EQ(0, mprotect(base + page, page, PROT_NONE));
	w = (__u32 *)(base + page - 4);
	*w = sizeof(struct kprim_limiter_take);
	EXPECT_EQ(-EFAULT, kt_ioctl(lim, KPRIM_IOC_LIMITER_TAKE, w));
	*w = sizeof(struct kprim_sem_acquire);
	EXPECT_EQ(-EFAULT, kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, w));
	/* A bigger (newer) size is the general path: -EFAULT too. */
	*w = 40;
	EXPECT_EQ(-EFAULT, kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, w));
	EXPECT_EQ(0, lim_state(lim).admitted);
	EXPECT_EQ(0, sem_state(sem).held);
	munmap(base, 2 * page);
	close(lim);
	close(sem);
	close(sess);
}

/* ---- 4. argument and value pages stalled by userfaultfd ---------------- */

/* A userfaultfd on a fresh 2-page mapping, page 2 missing; -1: skip. */
static int uffd_setup(char **base, long page)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };
	int uffd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (uffd < 0)
		return -1;
	if (ioctl(uffd, UFFDIO_API, &api)) {
		close(uffd);
		return -1;
	}
	*base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (*base == MAP_FAILED) {
		close(uffd);
		return -1;
	}
	memset(*base, 0, page);		/* page 1 present */
	reg.range.start = (uintptr_t)*base + page;
	reg.range.len = page;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg)) {
		close(uffd);
		return -1;
	}
	return uffd;
}

/* Wait (up to 10 s) for the kernel to stall on a fault at @addr's page. */
static bool uffd_stalled(int uffd)
{
	struct pollfd pfd = { .fd = uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&pfd, 1, 10000) != 1)
		return false;
	return read(uffd, &msg, sizeof(msg)) == sizeof(msg) &&
	       msg.event == UFFD_EVENT_PAGEFAULT;
}

static int uffd_fill(int uffd, char *dst, const char *src, long page)
{
	struct uffdio_copy c = {
		.dst = (uintptr_t)dst, .src = (uintptr_t)src, .len = page,
	};

	return ioctl(uffd, UFFDIO_COPY, &c) ? -errno : 0;
}

struct stall {
	int fd;
	unsigned long cmd;
	void *arg;
	long ret;
};

static void *stall_fn(void *arg)
{
	struct stall *st = arg;

	st->ret = kt_ioctl(st->fd, st->cmd, st->arg);
	return NULL;
}

/*
 * A try-acquire whose struct's tail is on a page userfaultfd stalls: the
 * inline copy sleeps in the fault with nothing held, so the semaphore
 * works for others meanwhile; the fd is closed under it; once the page
 * comes the acquire succeeds and its permit goes back with the fd.
 */
TEST_F_TIMEOUT(six, uffd_stalled_try_acquire, 60)
{
	long page = sysconf(_SC_PAGESIZE);
	struct kprim_sem_acquire a0 = {
		.size = sizeof(a0), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};
	struct stall st;
	char *base, *src, name[64];
	int sess, uffd, sem, sem2, off = 12;
	pthread_t th;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	uffd = uffd_setup(&base, page);
	if (uffd < 0)
		SKIP(return, "no userfaultfd (CONFIG_USERFAULTFD off?)");
	src = aligned_alloc(page, page);
	ASSERT_NE(NULL, src);
	memset(src, 0, page);
	KT_NAME(name, "six-uffd");
	sem = obj_new(sess, KPRIM_KIND_SEM, name, 2, 0);
	ASSERT_LE(0, sem);
	sem2 = obj_reopen(sess, KPRIM_KIND_SEM, name);
	ASSERT_LE(0, sem2);
	/* The first @off bytes on page 1, the rest on the missing page. */
	memcpy(base + page - off, &a0, off);
	memcpy(src, (char *)&a0 + off, sizeof(a0) - off);
	st = (struct stall){ .fd = sem, .cmd = KPRIM_IOC_SEM_ACQUIRE,
			     .arg = base + page - off, .ret = 1 };
	ASSERT_EQ(0, pthread_create(&th, NULL, stall_fn, &st));
	ASSERT_TRUE(uffd_stalled(uffd));
	/* Nothing is held while it sleeps: the others go on. */
	EXPECT_EQ(0, kt_ioctl(sem2, KPRIM_IOC_SEM_ACQUIRE, &a0));
	EXPECT_EQ(1, sem_state(sem2).held);
	close(sem);
	ASSERT_EQ(0, uffd_fill(uffd, base + page, src, page));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, st.ret) TH_LOG("stalled acquire: %s", strerror(-st.ret));
	/* Its fd is gone, so is its permit. */
	EXPECT_EQ(1, sem_state(sem2).held);
	close(sem2);
	close(uffd);
	munmap(base, 2 * page);
	free(src);
	close(sess);
}

/*
 * A get whose value copy-out stalls on a missing page while the entry is
 * deleted, the cache flushed, memory reclaimed and the cache fd closed:
 * the get holds its own reference; no use-after-free when it resumes.
 */
TEST_F_TIMEOUT(six, uffd_stalled_get_vs_evict, 60)
{
	long page = sysconf(_SC_PAGESIZE);
	struct kprim_hdr h = { .size = sizeof(h) };
	struct kprim_cache_get g;
	struct stall st;
	char *base, *src, *val;
	int sess, uffd, fd;
	pthread_t th;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "kprim.ko not loaded");
	uffd = uffd_setup(&base, page);
	if (uffd < 0)
		SKIP(return, "no userfaultfd (CONFIG_USERFAULTFD off?)");
	src = aligned_alloc(page, page);
	val = malloc(3000);
	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, val);
	memset(src, 0, page);
	memset(val, 'q', 3000);
	fd = obj_new(sess, KPRIM_KIND_CACHE, NULL, 100, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, c_set(fd, "k", val, 3000, 0));
	/* The value straddles into the missing page. */
	g = (struct kprim_cache_get){
		.size = sizeof(g), .key = (uintptr_t)"k", .key_len = 1,
		.value = (uintptr_t)(base + page - 1000), .value_len = 3000,
	};
	st = (struct stall){ .fd = fd, .cmd = KPRIM_IOC_CACHE_GET,
			     .arg = &g, .ret = 1 };
	ASSERT_EQ(0, pthread_create(&th, NULL, stall_fn, &st));
	ASSERT_TRUE(uffd_stalled(uffd));
	EXPECT_EQ(0, c_del(fd, "k"));
	EXPECT_EQ(0, c_set(fd, "k", "new", 3, 0));
	EXPECT_EQ(0, kt_ioctl(fd, KPRIM_IOC_CACHE_FLUSH, &h));
	cg_write(CG_ROOT, "memory.reclaim", "1M");
	close(fd);
	ASSERT_EQ(0, uffd_fill(uffd, base + page, src, page));
	ASSERT_EQ(0, pthread_join(th, NULL));
	EXPECT_EQ(0, st.ret) TH_LOG("stalled get: %s", strerror(-st.ret));
	EXPECT_EQ(3000, g.value_len);
	EXPECT_EQ(0, memcmp(base + page - 1000, val, 3000));
	close(uffd);
	munmap(base, 2 * page);
	free(src);
	free(val);
	close(sess);
}

TEST_HARNESS_MAIN
