// SPDX-License-Identifier: GPL-2.0
/*
 * Race tests by construction (docs/races.md): every pair of kprim paths
 * that meet runs its two sides at once, side A from threads of the test
 * process and side B from threads of a forked child, for a time budget
 * (KPRIM_RACE_SECS, default 10 s per pair), then checks what must hold
 * afterwards: permits conserved, no waiter left, the cache's counters equal
 * to a walk of its keys, every waiter returned (a side still blocked 30 s
 * after the stop is a lost wakeup). Each case prints
 * "race <pair>: N rounds (a A, b B)" so the rounds run per pair can be
 * quoted. A kernel that spins, sleeps forever or stalls RCU meanwhile
 * panics the guest (softlockup_panic, hung_task_panic, panic_on_rcu_stall
 * in tools/vm/run-vm.sh) and fails the run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kprim_test.h"

#define MS		1000000ull
#define SEC		(1000 * MS)
#define MAX_THREADS	4
/* After the stop, how long a side may take to return. */
#define RETURN_NS	(30 * SEC)
#define KO		"/lib/kprim/kprim.ko"
#define KUNIT_KO	"/lib/kprim/kprim_kunit.ko"

/* What both processes of a race see. */
struct shared {
	atomic_int stop;
	atomic_ulong rounds[2];
	atomic_ulong bad;
	atomic_long inside;
	atomic_long max_inside;
	atomic_ulong aux[4];
	/* Thread ids of the waiters a signal is aimed at. */
	atomic_int tid[MAX_THREADS];
	char why[512];
};

static struct shared *sh;

static unsigned int race_secs(void)
{
	const char *s = getenv("KPRIM_RACE_SECS");
	int v = s ? atoi(s) : 0;

	return v > 0 ? v : 10;
}

/* Record a broken invariant; the first one is reported. */
static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&sh->bad, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(sh->why, sizeof(sh->why), fmt, ap);
		va_end(ap);
	}
}

static unsigned int rnd(unsigned int *seed, unsigned int n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 8) % n;
}

struct side {
	const char *name;
	/* One round; @who: 0..threads-1, @seed: the thread's own. */
	void (*round)(void *ctx, int who, unsigned int *seed);
	int threads;
};

struct runner {
	const struct side *s;
	void *ctx;
	int who, idx;
	atomic_int done;
};

static void *runner_main(void *arg)
{
	struct runner *r = arg;
	unsigned int seed = (unsigned int)getpid() * 7919u + r->who * 104729u;

	while (!atomic_load(&sh->stop) && !atomic_load(&sh->bad)) {
		r->s->round(r->ctx, r->who, &seed);
		atomic_fetch_add(&sh->rounds[r->idx], 1);
	}
	atomic_store(&r->done, 1);
	return NULL;
}

/* Start @s's threads; 0 or -1. */
static int start_side(const struct side *s, void *ctx, int idx,
		      pthread_t *t, struct runner *r)
{
	for (int i = 0; i < s->threads; i++) {
		r[i] = (struct runner){ .s = s, .ctx = ctx, .who = i, .idx = idx };
		if (pthread_create(&t[i], NULL, runner_main, &r[i]))
			return -1;
	}
	return 0;
}

/* Wait for @s's threads until @until; false if one is still blocked. */
static bool join_side(const struct side *s, pthread_t *t, struct runner *r,
		      uint64_t until)
{
	for (int i = 0; i < s->threads; i++) {
		while (!atomic_load(&r[i].done) && kt_now_ns() < until)
			usleep(1000);
		if (!atomic_load(&r[i].done))
			return false;
		pthread_join(t[i], NULL);
	}
	return true;
}

/*
 * Run @a in this process and @b in a forked child for the budget; print
 * the rounds. Returns the rounds of both sides, or 0 after a failure.
 */
static unsigned long run_pair(const char *pair, void *ctx,
			      const struct side *a, const struct side *b)
{
	pthread_t ta[MAX_THREADS];
	struct runner ra[MAX_THREADS];
	uint64_t end, until;
	unsigned long na, nb;
	int status;
	pid_t pid;

	atomic_store(&sh->stop, 0);
	atomic_store(&sh->rounds[0], 0);
	atomic_store(&sh->rounds[1], 0);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return 0;
	}
	if (!pid) {
		pthread_t tb[MAX_THREADS];
		struct runner rb[MAX_THREADS];

		if (start_side(b, ctx, 1, tb, rb))
			_exit(2);
		while (!atomic_load(&sh->stop))
			usleep(10000);
		if (!join_side(b, tb, rb, kt_now_ns() + RETURN_NS)) {
			fail("%s: side %s (child) still blocked %llu s after the stop",
			     pair, b->name, RETURN_NS / SEC);
			_exit(3);
		}
		_exit(0);
	}
	if (start_side(a, ctx, 0, ta, ra)) {
		fail("pthread_create");
		atomic_store(&sh->stop, 1);
	}
	end = kt_now_ns() + race_secs() * SEC;
	while (kt_now_ns() < end && !atomic_load(&sh->bad))
		usleep(20000);
	atomic_store(&sh->stop, 1);
	until = kt_now_ns() + RETURN_NS;
	if (!join_side(a, ta, ra, until))
		fail("%s: side %s (parent) still blocked %llu s after the stop",
		     pair, a->name, RETURN_NS / SEC);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (kt_now_ns() > until + SEC) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail("%s: child did not return", pair);
			break;
		}
		usleep(10000);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fail("%s: child ended with status %#x", pair, status);
	na = atomic_load(&sh->rounds[0]);
	nb = atomic_load(&sh->rounds[1]);
	printf("# race %s: %lu rounds (%s %lu, %s %lu) in %u s\n", pair,
	       na + nb, a->name, na, b->name, nb, race_secs());
	fflush(stdout);
	return na + nb;
}

/* ---- helpers ------------------------------------------------------------ */

static int open_obj(__u32 kind, const char *name, __u32 flags,
		    struct kprim_open *tmpl)
{
	struct kprim_open a = tmpl ? *tmpl :
			      kt_open_args(kind, name, flags);
	int s = kt_session(), fd;

	if (s < 0)
		return -errno;
	if (tmpl) {
		a.kind = kind;
		a.flags = flags;
		a.mode = 0600;
		a.name = (uintptr_t)name;
		a.name_len = name ? strlen(name) : 0;
		a.size = sizeof(a);
	}
	fd = kt_open(s, &a);
	close(s);
	return fd;
}

static int new_sem(const char *name, __u64 permits, __u32 flags)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name, flags);

	a.sem.permits = permits;
	return open_obj(KPRIM_KIND_SEM, name, flags, &a);
}

static long sem_acquire(int fd, __u64 n, __u64 timeout_ns, int cancel_fd)
{
	struct kprim_sem_acquire q = {
		.size = sizeof(q), .n = n,
		.wait = kt_wait(timeout_ns, cancel_fd),
	};

	return kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &q);
}

static long sem_release(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

static struct kprim_sem_info sem_info(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

static long sem_resize(int fd, __u64 permits)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .permits = permits };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RESIZE, &r);
}

static void enter(long n, long permits_max)
{
	long now = atomic_fetch_add(&sh->inside, n) + n;

	if (now > permits_max)
		fail("%ld permits held at once, at most %ld exist", now,
		     permits_max);
}

static void leave(long n)
{
	atomic_fetch_sub(&sh->inside, n);
}

/* Cache keys k0..k(NKEYS-1); the value of k<i> is a pattern of i. */
#define NKEYS		1024

static unsigned int key_of(char *buf, size_t len, unsigned int i)
{
	return snprintf(buf, len, "k%u", i);
}

static unsigned int val_of(char *buf, unsigned int i, unsigned int gen)
{
	unsigned int len = 8 + i % 40;

	for (unsigned int j = 0; j < len; j++)
		buf[j] = (char)('a' + (i * 31 + j + gen * 0) % 26);
	return len;
}

static int new_cache(__u64 max_entries, __u64 ttl_ns)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE);

	a.cache.max_bytes = 4ull << 20;
	a.cache.max_entries = max_entries;
	a.cache.max_value = 4096;
	a.cache.default_ttl_ns = ttl_ns;
	return open_obj(KPRIM_KIND_CACHE, NULL, KPRIM_OPEN_CREATE, &a);
}

static long c_store(int fd, unsigned int i, __u64 ttl_ns)
{
	char key[16], val[64];
	unsigned int kl = key_of(key, sizeof(key), i);
	unsigned int vl = val_of(val, i, 0);
	struct kprim_cache_store s = {
		.size = sizeof(s), .flags = ttl_ns ? KPRIM_CACHE_TTL : 0,
		.key = (uintptr_t)key, .key_len = kl, .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = vl, .ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

/* GET k<i> and check its value; 1 hit, 0 miss, -1 broken. */
static int c_get(int fd, unsigned int i, __u64 *bytes)
{
	char key[16], val[64], want[64];
	unsigned int kl = key_of(key, sizeof(key), i);
	unsigned int wl = val_of(want, i, 0);
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)key, .key_len = kl,
		.value = (uintptr_t)val, .value_len = sizeof(val),
	};
	long r = kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);

	if (r == -ENOENT)
		return 0;
	if (r) {
		fail("GET %s: %ld", key, r);
		return -1;
	}
	if (g.value_len != wl || memcmp(val, want, wl)) {
		fail("GET %s: value of %llu bytes is not the one stored", key,
		     (unsigned long long)g.value_len);
		return -1;
	}
	if (bytes)
		*bytes += kl + wl;
	return 1;
}

static long c_key_op(int fd, unsigned long cmd, unsigned int i, __u64 ttl)
{
	char key[16];
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key,
		.key_len = key_of(key, sizeof(key), i), .ttl_ns = ttl,
	};

	return kt_ioctl(fd, cmd, &k);
}

static struct kprim_cache_info c_info(int fd)
{
	struct kprim_cache_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

/* The cache's counters against a walk of k0..k(NKEYS-1). */
static void c_check_walk(int fd, const char *pair)
{
	struct kprim_cache_info info = c_info(fd);
	__u64 bytes = 0, hits = 0;

	for (unsigned int i = 0; i < NKEYS; i++)
		if (c_get(fd, i, &bytes) == 1)
			hits++;
	if (info.entries != hits || info.bytes != bytes)
		fail("%s: INFO says %llu entries, %llu bytes; a walk finds %llu, %llu",
		     pair, (unsigned long long)info.entries,
		     (unsigned long long)info.bytes,
		     (unsigned long long)hits, (unsigned long long)bytes);
}

FIXTURE(race) {
	int unused;
};

FIXTURE_SETUP(race)
{
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
	if (access(KT_DEV, R_OK | W_OK))
		SKIP(return, "no %s", KT_DEV);
}

FIXTURE_TEARDOWN(race)
{
	munmap(sh, sizeof(*sh));
}

#define CHECK_SHARED() \
	ASSERT_EQ(0, atomic_load(&sh->bad)) TH_LOG("%s", sh->why)

/* ---- the detectors --------------------------------------------------------- */

static long read_long(const char *path)
{
	char buf[32] = "";
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return buf[0] ? atol(buf) : -1;
}

/*
 * What turns a hang into a failed run, as this kernel has it: the
 * soft-lockup detector fires after 2 * watchdog_thresh s, the hung-task
 * detector after hung_task_timeout_secs, the RCU stall warning after
 * rcu_cpu_stall_timeout; each panics the guest.
 */
TEST_F(race, detectors_fail_the_run_within_a_minute)
{
	long thresh = read_long("/proc/sys/kernel/watchdog_thresh");
	long softp = read_long("/proc/sys/kernel/softlockup_panic");
	long hung = read_long("/proc/sys/kernel/hung_task_timeout_secs");
	long hungp = read_long("/proc/sys/kernel/hung_task_panic");
	long rcu = read_long("/sys/module/rcupdate/parameters/rcu_cpu_stall_timeout");
	long rcup = read_long("/proc/sys/kernel/panic_on_rcu_stall");

	printf("# detectors: soft lockup after %ld s (watchdog_thresh %ld, panic %ld), hung task after %ld s (panic %ld), RCU stall after %ld s (panic %ld)\n",
	       2 * thresh, thresh, softp, hung, hungp, rcu, rcup);
	if (access(KO, R_OK))
		SKIP(return, "not in the test VM (no %s)", KO);
	EXPECT_EQ(1, softp);
	EXPECT_EQ(1, hungp);
	EXPECT_EQ(1, rcup);
	EXPECT_GT(thresh, 0);
	EXPECT_LE(2 * thresh, 60);
	/* 0 disables the hung-task check; run-vm.sh sets 60 s. */
	EXPECT_GT(hung, 0);
	EXPECT_LE(hung, 60);
	EXPECT_GT(rcu, 0);
	EXPECT_LE(rcu, 60);
}

/* ---- cache: flush vs store / incr --------------------------------------- */

struct cache_ctx {
	int fd;
	/* Last INCR result of each counter, per process and thread. */
	__u64 last[2][MAX_THREADS];
};

static void flush_round(void *p, int who, unsigned int *seed)
{
	struct cache_ctx *c = p;
	struct kprim_hdr h = { .size = sizeof(h) };
	long r;

	if (who) {
		/* A filler, so the flush always has a batch to drop. */
		for (int i = 0; i < 300; i++)
			c_store(c->fd, rnd(seed, NKEYS), 0);
		return;
	}
	r = kt_ioctl(c->fd, KPRIM_IOC_CACHE_FLUSH, &h);
	if (r)
		fail("FLUSH: %ld", r);
	atomic_fetch_add(&sh->aux[0], 1);
}

static void store_incr_round(void *p, int who, unsigned int *seed)
{
	struct cache_ctx *c = p;
	char key[16];
	struct kprim_cache_incr in = {
		.size = sizeof(in), .flags = KPRIM_CACHE_INCR_CREATE,
		.key = (uintptr_t)key, .delta = 1, .initial = 1,
	};
	long r;

	if (who == 0) {
		r = c_store(c->fd, rnd(seed, NKEYS), 0);
		if (r)
			fail("SET: %ld", r);
		return;
	}
	/* k<NKEYS + who> is this thread's counter: +1, or 1 after a flush. */
	in.key_len = key_of(key, sizeof(key), NKEYS + who);
	r = kt_ioctl(c->fd, KPRIM_IOC_CACHE_INCR, &in);
	if (r) {
		fail("INCR: %ld", r);
		return;
	}
	if (in.value != 1 && in.value != c->last[1][who] + 1)
		fail("INCR %s gave %llu after %llu", key,
		     (unsigned long long)in.value,
		     (unsigned long long)c->last[1][who]);
	c->last[1][who] = in.value;
}

TEST_F_TIMEOUT(race, cache_flush_vs_store_incr, 120)
{
	struct cache_ctx c = { .fd = new_cache(4096, 0) };
	const struct side a = { "flush+fill", flush_round, 2 };
	const struct side b = { "store+incr", store_incr_round, 3 };
	char key[16];

	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("cache flush vs store/incr", &c, &a, &b));
	CHECK_SHARED();
	printf("# flush vs store/incr: %lu flushes\n", atomic_load(&sh->aux[0]));
	/* Take the counters out of the walk's way, then walk. */
	for (int i = 1; i < 3; i++) {
		struct kprim_cache_key k = {
			.size = sizeof(k), .key = (uintptr_t)key,
			.key_len = key_of(key, sizeof(key), NKEYS + i),
		};
		kt_ioctl(c.fd, KPRIM_IOC_CACHE_DELETE, &k);
	}
	c_check_walk(c.fd, "flush vs store");
	CHECK_SHARED();
	close(c.fd);
}

/* ---- cache: expiry sweep vs touch / get ---------------------------------- */

static void expire_store_round(void *p, int who, unsigned int *seed)
{
	struct cache_ctx *c = p;
	long r;

	if (who == 2) {
		/*
		 * A cache closed about when its first sweep runs (1 s after
		 * the first store): destroy vs the sweep work.
		 */
		int fd = new_cache(4096, 0);

		if (fd < 0) {
			fail("cache: %d", fd);
			return;
		}
		for (unsigned int i = 0; i < NKEYS; i++)
			c_store(fd, i, (1 + rnd(seed, 5)) * MS);
		usleep(800000 + rnd(seed, 400000));
		close(fd);
		atomic_fetch_add(&sh->aux[1], 1);
		return;
	}
	/* Expiries spread over 1..300 ms: every sweep has a batch to pop. */
	r = c_store(c->fd, rnd(seed, NKEYS), (1 + rnd(seed, 300)) * MS);
	if (r)
		fail("SET with TTL: %ld", r);
}

static void touch_get_round(void *p, int who, unsigned int *seed)
{
	struct cache_ctx *c = p;
	unsigned int i = rnd(seed, NKEYS);
	long r;

	if (who == 0) {
		r = c_key_op(c->fd, KPRIM_IOC_CACHE_TOUCH, i,
			     (1 + rnd(seed, 300)) * MS);
		if (r && r != -ENOENT)
			fail("TOUCH: %ld", r);
		return;
	}
	c_get(c->fd, i, NULL);
}

TEST_F_TIMEOUT(race, cache_sweep_vs_touch_get, 120)
{
	struct cache_ctx c = { .fd = new_cache(4096, 0) };
	const struct side a = { "store-ttl", expire_store_round, 3 };
	const struct side b = { "touch+get", touch_get_round, 2 };
	struct kprim_cache_info info;
	uint64_t t0;

	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("cache sweep vs touch/get", &c, &a, &b));
	CHECK_SHARED();
	/* Everything expires within 300 ms; the sweep frees it within ~1 s. */
	t0 = kt_now_ns();
	do {
		usleep(100000);
		info = c_info(c.fd);
	} while (info.entries && kt_now_ns() - t0 < 10 * SEC);
	EXPECT_EQ(0, info.entries);
	EXPECT_EQ(0, info.bytes);
	EXPECT_GT(info.expirations, 0);
	printf("# sweep: %llu expirations; %lu caches closed about their sweep\n",
	       (unsigned long long)info.expirations, atomic_load(&sh->aux[1]));
	c_check_walk(c.fd, "sweep vs touch");
	CHECK_SHARED();
	close(c.fd);
}

/* ---- cache: shrinker vs get ------------------------------------------------ */

struct shrink_ctx {
	struct cache_ctx c;
	char scan[300];
	/* The memcg inode to write: 0 unless the shrinker is memcg aware. */
	unsigned long ino, alt_ino;
	bool drop_caches;
};

/* The kprim shrinker's debugfs directory; false if there is none. */
static bool find_shrinker(struct shrink_ctx *s)
{
	const char *base = "/sys/kernel/debug/shrinker";
	char path[300];
	struct dirent *d;
	DIR *dir = opendir(base);
	FILE *f;
	bool found = false;

	if (!dir)
		return false;
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, "kprim", 5))
			continue;
		snprintf(s->scan, sizeof(s->scan), "%s/%s/scan", base,
			 d->d_name);
		snprintf(path, sizeof(path), "%s/%s/count", base, d->d_name);
		found = true;
		break;
	}
	closedir(dir);
	if (!found)
		return false;
	/*
	 * "<memcg inode> <count>" lines. A memcg-aware shrinker is scanned
	 * for one memcg (the first listed: the test's), any other with
	 * inode 0; which one this is shows when a write is refused.
	 */
	s->ino = 0;
	s->alt_ino = 0;
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%lu", &s->alt_ino) != 1)
			s->alt_ino = 0;
		fclose(f);
	}
	return true;
}

static void shrink_round(void *p, int who, unsigned int *seed)
{
	struct shrink_ctx *s = p;
	char buf[64];
	int fd, n;

	if (who) {
		for (int i = 0; i < 200; i++)
			c_store(s->c.fd, rnd(seed, NKEYS), 0);
		return;
	}
	for (int tries = 0; ; tries++) {
		if (s->drop_caches) {
			fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
			n = snprintf(buf, sizeof(buf), "2\n");
		} else {
			fd = open(s->scan, O_WRONLY);
			n = snprintf(buf, sizeof(buf), "%lu 0 %u\n", s->ino,
				     64 + rnd(seed, 512));
		}
		if (fd < 0) {
			fail("open shrinker: %s", strerror(errno));
			return;
		}
		if (write(fd, buf, n) == n)
			break;
		if (tries || s->drop_caches ||
		    (errno != EINVAL && errno != ENOENT)) {
			fail("write %.*s: %s", n - 1, buf, strerror(errno));
			close(fd);
			return;
		}
		/* The other kind of shrinker: the other inode. */
		s->ino = s->ino ? 0 : s->alt_ino;
		close(fd);
	}
	close(fd);
	atomic_fetch_add(&sh->aux[0], 1);
}

static void get_round(void *p, int who, unsigned int *seed)
{
	struct shrink_ctx *s = p;

	if (who == 3) {
		/* Caches joining and leaving the shrinker's list. */
		int fd = new_cache(4096, 0);

		if (fd < 0) {
			fail("cache: %d", fd);
			return;
		}
		for (unsigned int i = 0; i < 64; i++)
			c_store(fd, rnd(seed, NKEYS), 0);
		close(fd);
		atomic_fetch_add(&sh->aux[1], 1);
		return;
	}
	c_get(s->c.fd, rnd(seed, NKEYS), NULL);
}

TEST_F_TIMEOUT(race, cache_shrinker_vs_get, 120)
{
	struct shrink_ctx s = { .c.fd = new_cache(4096, 0) };
	const struct side a = { "shrink+fill", shrink_round, 2 };
	const struct side b = { "get+cache-churn", get_round, 4 };
	struct kprim_cache_info info;

	if (geteuid())
		SKIP(return, "needs root");
	ASSERT_GE(s.c.fd, 0);
	for (unsigned int i = 0; i < NKEYS; i++)
		ASSERT_EQ(0, c_store(s.c.fd, i, 0));
	if (!find_shrinker(&s)) {
		/* No CONFIG_SHRINKER_DEBUG: drive it through reclaim. */
		TH_LOG("no /sys/kernel/debug/shrinker/kprim*: using drop_caches");
		s.drop_caches = true;
	}
	EXPECT_NE(0, run_pair("cache shrinker vs get", &s, &a, &b));
	CHECK_SHARED();
	info = c_info(s.c.fd);
	printf("# shrinker: %lu scans through %s, %llu evictions, %lu caches created and closed\n",
	       atomic_load(&sh->aux[0]),
	       s.drop_caches ? "drop_caches" : s.scan,
	       (unsigned long long)info.evictions, atomic_load(&sh->aux[1]));
	EXPECT_GT(info.evictions, 0);
	c_check_walk(s.c.fd, "shrinker vs get");
	CHECK_SHARED();
	close(s.c.fd);
}

/* ---- cache: mget vs delete ------------------------------------------------- */

static void mget_round(void *p, int who, unsigned int *seed)
{
	struct cache_ctx *c = p;
	struct kprim_cache_mget_entry e[32];
	char keys[32][16], vals[32][64], want[64];
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entries = (uintptr_t)e, .count = 32,
		.entry_size = sizeof(e[0]),
	};
	unsigned int idx[32];
	long r;

	(void)who;
	for (int j = 0; j < 32; j++) {
		idx[j] = rnd(seed, NKEYS);
		e[j] = (struct kprim_cache_mget_entry){
			.key = (uintptr_t)keys[j],
			.key_len = key_of(keys[j], sizeof(keys[j]), idx[j]),
			.value = (uintptr_t)vals[j], .value_len = sizeof(vals[j]),
		};
	}
	r = kt_ioctl(c->fd, KPRIM_IOC_CACHE_MGET, &m);
	if (r < 0) {
		fail("MGET: %ld", r);
		return;
	}
	for (int j = 0; j < 32; j++) {
		unsigned int wl = val_of(want, idx[j], 0);

		if (e[j].result == -ENOENT)
			continue;
		if (e[j].result) {
			fail("MGET %s: %d", keys[j], e[j].result);
			return;
		}
		if (e[j].value_len != wl || memcmp(vals[j], want, wl)) {
			fail("MGET %s: value is not the one stored", keys[j]);
			return;
		}
	}
}

static void delete_round(void *p, int who, unsigned int *seed)
{
	struct cache_ctx *c = p;
	unsigned int i = rnd(seed, NKEYS);
	long r;

	if (who) {
		r = c_store(c->fd, i, 0);
		if (r)
			fail("SET: %ld", r);
		return;
	}
	r = c_key_op(c->fd, KPRIM_IOC_CACHE_DELETE, i, 0);
	if (r && r != -ENOENT)
		fail("DELETE: %ld", r);
}

TEST_F_TIMEOUT(race, cache_mget_vs_delete, 120)
{
	struct cache_ctx c = { .fd = new_cache(4096, 0) };
	const struct side a = { "mget", mget_round, 2 };
	const struct side b = { "delete+set", delete_round, 2 };

	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("cache mget vs delete", &c, &a, &b));
	CHECK_SHARED();
	c_check_walk(c.fd, "mget vs delete");
	CHECK_SHARED();
	close(c.fd);
}

/* ---- objects: unlink vs open by name --------------------------------------- */

struct name_ctx {
	char name[64];
};

static const __u32 kinds[3] = {
	KPRIM_KIND_LIMITER, KPRIM_KIND_SEM, KPRIM_KIND_CACHE,
};

static int open_kind(__u32 kind, const char *name, __u32 flags)
{
	struct kprim_open a = kt_open_args(kind, name, flags);

	if (kind == KPRIM_KIND_LIMITER) {
		a.limiter.rate = 1000;
		a.limiter.period_ns = SEC;
		a.limiter.burst = 10;
	} else if (kind == KPRIM_KIND_SEM) {
		a.sem.permits = 2;
	} else {
		a.cache.max_bytes = 1 << 20;
		a.cache.max_entries = 64;
		a.cache.max_value = 64;
	}
	return open_obj(kind, name, flags, &a);
}

static void opener_round(void *p, int who, unsigned int *seed)
{
	struct name_ctx *n = p;
	__u32 kind = kinds[who % 3];
	__u32 flags = KPRIM_OPEN_CREATE;
	int fd;

	if (rnd(seed, 4) == 0)
		flags |= KPRIM_OPEN_TRANSIENT;
	fd = open_kind(kind, n->name, flags);
	if (fd < 0) {
		fail("open %s with CREATE: %d", n->name, fd);
		return;
	}
	/* One use of the object through the fd. */
	if (kind == KPRIM_KIND_SEM) {
		if (sem_acquire(fd, 1, 0, -1) == 0 && sem_release(fd, 1))
			fail("release of a permit just taken failed");
	} else if (kind == KPRIM_KIND_CACHE) {
		c_store(fd, 1, 0);
	}
	close(fd);
}

static void unlinker_round(void *p, int who, unsigned int *seed)
{
	struct name_ctx *n = p;
	int s, r, fd;

	if (who) {
		/* Open without CREATE: found, or gone. */
		fd = open_kind(kinds[rnd(seed, 3)], n->name, 0);
		if (fd >= 0)
			close(fd);
		else if (fd != -ENOENT)
			fail("open %s: %d", n->name, fd);
		return;
	}
	s = kt_session();
	if (s < 0) {
		fail("session: %s", strerror(errno));
		return;
	}
	r = kt_unlink(s, kinds[rnd(seed, 3)], n->name);
	if (r && r != -ENOENT)
		fail("unlink %s: %d", n->name, r);
	close(s);
}

/* Objects of the live registry whose name is @name. */
static long count_named(const char *name)
{
	struct kprim_obj_info info[16];
	struct kprim_list l = { .size = sizeof(l) };
	long n = 0, r;
	int s = kt_session();

	if (s < 0)
		return -errno;
	l.entry_size = sizeof(info[0]);
	do {
		l.buf = (uintptr_t)info;
		l.count = 16;
		r = kt_ioctl(s, KPRIM_IOC_LIST, &l);
		if (r) {
			close(s);
			return r;
		}
		for (unsigned int i = 0; i < l.count; i++)
			if (info[i].name_len == strlen(name) &&
			    !memcmp(info[i].name, name, info[i].name_len))
				n++;
		l.start_id = l.next_id;
	} while (l.next_id);
	close(s);
	return n;
}

TEST_F_TIMEOUT(race, unlink_vs_open, 120)
{
	struct name_ctx n;
	const struct side a = { "open-create", opener_round, 3 };
	const struct side b = { "unlink+open", unlinker_round, 2 };
	int s;

	KT_NAME(n.name, "unl");
	EXPECT_NE(0, run_pair("unlink vs open", &n, &a, &b));
	CHECK_SHARED();
	/* Take every name away: nothing of that name may be left. */
	s = kt_session();
	ASSERT_GE(s, 0);
	for (int i = 0; i < 3; i++)
		kt_unlink(s, kinds[i], n.name);
	close(s);
	EXPECT_EQ(0, count_named(n.name));
}

/* ---- sem: close of the holder fd vs grant to a waiter ---------------------- */

#define CLOSE_PERMITS	2

struct sem_ctx {
	char name[64];
	int fd;
	__u64 permits_max;
};

static void close_grant_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	__u64 n = 1 + rnd(seed, CLOSE_PERMITS);
	int fd = new_sem(c->name, CLOSE_PERMITS, 0);
	long r;

	(void)who;
	if (fd < 0) {
		fail("open %s: %d", c->name, fd);
		return;
	}
	/* A wait this long that ends without a grant lost its wakeup. */
	r = sem_acquire(fd, n, 20 * SEC, -1);
	if (r) {
		fail("acquire %llu: %ld", (unsigned long long)n, r);
		close(fd);
		return;
	}
	enter(n, CLOSE_PERMITS);
	if (rnd(seed, 2))
		usleep(rnd(seed, 200));
	leave(n);
	/* The close gives the permits back and grants the head waiter. */
	close(fd);
}

/*
 * SEM_INFO with a holder list drops the lock to allocate the buffer, then
 * looks again: against holders coming and going, what it reports must
 * still be one moment's state.
 */
static void info_or_close_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	struct kprim_sem_holder h[8];
	struct kprim_sem_info i = {
		.size = sizeof(i), .holders = (uintptr_t)h, .nr_holders = 8,
	};
	__u64 sum = 0;
	long r;

	if (who < 2) {
		close_grant_round(p, who, seed);
		return;
	}
	/* Leave the CPU to the acquirers now and then. */
	usleep(rnd(seed, 300));
	r = kt_ioctl(c->fd, KPRIM_IOC_SEM_INFO, &i);
	if (r) {
		fail("SEM_INFO: %ld", r);
		return;
	}
	for (unsigned int j = 0; j < i.nr_holders && j < 8; j++) {
		if (h[j].pid <= 0 || !h[j].held || h[j].held > CLOSE_PERMITS)
			fail("SEM_INFO holder %u: pid %d holds %llu", j,
			     h[j].pid, (unsigned long long)h[j].held);
		sum += h[j].held;
	}
	if (i.held > CLOSE_PERMITS || i.held + i.available != CLOSE_PERMITS ||
	    (i.nr_holders <= 8 && sum != i.held))
		fail("SEM_INFO: held %llu, available %llu, holders hold %llu",
		     (unsigned long long)i.held,
		     (unsigned long long)i.available,
		     (unsigned long long)sum);
}

static void check_sem_idle(struct __test_metadata *_metadata, int fd,
			   __u64 permits)
{
	struct kprim_sem_info i = sem_info(fd);

	EXPECT_EQ(permits, i.permits);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(0, i.waiters);
	EXPECT_EQ(permits, i.available);
}

TEST_F_TIMEOUT(race, close_vs_grant, 120)
{
	struct sem_ctx c;
	const struct side a = { "acquire+close", close_grant_round, 2 };
	const struct side b = { "acquire+close+info", info_or_close_round, 3 };
	struct kprim_sem_info i;

	KT_NAME(c.name, "close");
	c.fd = new_sem(c.name, CLOSE_PERMITS, KPRIM_OPEN_CREATE |
		       KPRIM_OPEN_TRANSIENT);
	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("close vs grant", &c, &a, &b));
	CHECK_SHARED();
	check_sem_idle(_metadata, c.fd, CLOSE_PERMITS);
	i = sem_info(c.fd);
	printf("# close vs grant: %llu acquires granted\n",
	       (unsigned long long)i.acquired);
	close(c.fd);
}

/* ---- sem resize / limiter set vs waiters ----------------------------------- */

#define RESIZE_MAX	4

static void resizer_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	long r;

	(void)who;
	r = sem_resize(c->fd, 1 + rnd(seed, RESIZE_MAX));
	if (r)
		fail("RESIZE: %ld", r);
	usleep(rnd(seed, 300));
}

static void resize_waiter_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	__u64 n = 1 + rnd(seed, 2);
	long r;

	(void)who;
	r = sem_acquire(c->fd, n, 20 * SEC, -1);
	if (r == -EINVAL)	/* resized below n while it waited */
		return;
	if (r) {
		fail("acquire %llu under resizes: %ld",
		     (unsigned long long)n, r);
		return;
	}
	enter(n, RESIZE_MAX);
	leave(n);
	r = sem_release(c->fd, n);
	if (r)
		fail("release %llu: %ld", (unsigned long long)n, r);
}

TEST_F_TIMEOUT(race, sem_resize_vs_waiters, 120)
{
	struct sem_ctx c;
	const struct side a = { "resize", resizer_round, 1 };
	const struct side b = { "acquire+release", resize_waiter_round, 3 };

	c.fd = new_sem(NULL, 2, KPRIM_OPEN_CREATE);
	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("sem resize vs waiters", &c, &a, &b));
	CHECK_SHARED();
	ASSERT_EQ(0, sem_resize(c.fd, RESIZE_MAX));
	check_sem_idle(_metadata, c.fd, RESIZE_MAX);
	close(c.fd);
}

/*
 * A limiter closed while its refill timer is due: a take that waits arms
 * the timer for 1 ms; the take gives up about then and the fd is closed.
 */
static void lim_timer_close_round(unsigned int *seed)
{
	struct kprim_open o = kt_open_args(KPRIM_KIND_LIMITER, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_INITIAL);
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = 1,
		.wait = kt_wait((1 + rnd(seed, 1500)) * 1000, -1),
	};
	int fd;
	long r;

	o.limiter.rate = 1000;
	o.limiter.period_ns = SEC;
	o.limiter.burst = 1;
	fd = open_obj(KPRIM_KIND_LIMITER, NULL, o.flags, &o);
	if (fd < 0) {
		fail("limiter: %d", fd);
		return;
	}
	r = kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t);
	if (r && r != -ETIMEDOUT)
		fail("TAKE on a new limiter: %ld", r);
	close(fd);
	atomic_fetch_add(&sh->aux[0], 1);
}

static void lim_set_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	struct kprim_limiter_set s = {
		.size = sizeof(s),
		.flags = KPRIM_LIMITER_SET_RATE | KPRIM_LIMITER_SET_BURST,
		.params = {
			.rate = 1000 + rnd(seed, 20000), .period_ns = SEC,
			.burst = 1 + rnd(seed, 4),
		},
	};
	long r;

	if (who) {
		lim_timer_close_round(seed);
		return;
	}
	r = kt_ioctl(c->fd, KPRIM_IOC_LIMITER_SET, &s);
	if (r)
		fail("LIMITER_SET: %ld", r);
	usleep(rnd(seed, 300));
}

static void lim_take_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = 1 + rnd(seed, 2),
		.wait = kt_wait(20 * SEC, -1),
	};
	long r;

	(void)who;
	r = kt_ioctl(c->fd, KPRIM_IOC_LIMITER_TAKE, &t);
	if (r && r != -EINVAL)	/* -EINVAL: the burst went below n */
		fail("TAKE %llu under SETs: %ld", (unsigned long long)t.n, r);
}

TEST_F_TIMEOUT(race, limiter_set_vs_waiters, 120)
{
	struct sem_ctx c;
	const struct side a = { "set+timer-close", lim_set_round, 2 };
	const struct side b = { "take", lim_take_round, 3 };
	struct kprim_open o = kt_open_args(KPRIM_KIND_LIMITER, NULL,
					   KPRIM_OPEN_CREATE);
	struct kprim_limiter_info i = { .size = sizeof(i) };

	o.limiter.rate = 5000;
	o.limiter.period_ns = SEC;
	o.limiter.burst = 2;
	c.fd = open_obj(KPRIM_KIND_LIMITER, NULL, KPRIM_OPEN_CREATE, &o);
	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("limiter set vs waiters", &c, &a, &b));
	CHECK_SHARED();
	ASSERT_EQ(0, kt_ioctl(c.fd, KPRIM_IOC_LIMITER_INFO, &i));
	EXPECT_EQ(0, i.waiters);
	printf("# limiter: %llu admitted, %llu throttled; %lu limiters closed with the timer due\n",
	       (unsigned long long)i.admitted,
	       (unsigned long long)i.throttled, atomic_load(&sh->aux[0]));
	close(c.fd);
}

/* ---- cancel (eventfd / timeout / signal) vs grant -------------------------- */

struct cancel_ctx {
	int fd;
	/* Each waiter thread's own fd, so held_by_me is its own. */
	int wfd[MAX_THREADS];
	int efd[MAX_THREADS];
	pid_t victim;
};

static void on_usr1(int sig)
{
	(void)sig;
}

/*
 * Waiters in this process end by a grant or by one of: their eventfd
 * (written by a sibling thread), a short timeout, a signal (from the
 * other process). Whatever ended the wait, the permit is held exactly
 * when the call returned 0.
 */
static void cancel_waiter_round(void *p, int who, unsigned int *seed)
{
	struct cancel_ctx *c = p;
	unsigned int how = rnd(seed, 3);
	__u64 timeout = how == 1 ? (1 + rnd(seed, 2000)) * 1000 : 20 * SEC;
	int cfd = how == 0 ? c->efd[who] : -1;
	struct kprim_sem_info i;
	eventfd_t v;
	long r;

	atomic_store(&sh->tid[who], gettid());
	if (cfd >= 0)
		eventfd_read(cfd, &v);	/* left over from the last round */
	r = sem_acquire(c->wfd[who], 1, timeout, cfd);
	i = sem_info(c->wfd[who]);
	if (r == 0) {
		if (i.held_by_me != 1)
			fail("granted, yet this fd holds %llu",
			     (unsigned long long)i.held_by_me);
		enter(1, 1);
		leave(1);
		if (sem_release(c->wfd[who], 1))
			fail("release after a grant failed");
		return;
	}
	if (r != -ECANCELED && r != -ETIMEDOUT && r != -EINTR)
		fail("acquire ended with %ld (cancel by %u)", r, how);
	else if (r == -ETIMEDOUT && how != 1)
		fail("a 20 s wait timed out: lost wakeup");
	if (i.held_by_me)
		fail("acquire failed with %ld, yet this fd holds %llu", r,
		     (unsigned long long)i.held_by_me);
	atomic_fetch_add(&sh->aux[how], 1);
}

static void canceller_round(void *p, int who, unsigned int *seed)
{
	struct cancel_ctx *c = p;

	if (who == 0) {
		/* A holder: the grants the cancels race with. */
		if (sem_acquire(c->fd, 1, 20 * SEC, -1) == 0) {
			enter(1, 1);
			usleep(rnd(seed, 100));
			leave(1);
			sem_release(c->fd, 1);
		}
		return;
	}
	for (int i = 0; i < 2; i++)
		eventfd_write(c->efd[rnd(seed, 2)], 1);
	{
		int tid = atomic_load(&sh->tid[rnd(seed, 2)]);

		/* SIGUSR2's handler has SA_RESTART: the wait restarts. */
		if (tid)
			syscall(SYS_tgkill, c->victim, tid,
				rnd(seed, 2) ? SIGUSR1 : SIGUSR2);
	}
	usleep(rnd(seed, 200));
}

TEST_F_TIMEOUT(race, cancel_vs_grant, 120)
{
	struct cancel_ctx c;
	const struct side a = { "acquire", cancel_waiter_round, 2 };
	const struct side b = { "hold+cancel", canceller_round, 2 };
	struct sigaction sa = { .sa_handler = on_usr1 };
	char name[64];

	/* No SA_RESTART: a signal ends the wait with -EINTR. */
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	sa.sa_flags = SA_RESTART;
	ASSERT_EQ(0, sigaction(SIGUSR2, &sa, NULL));
	KT_NAME(name, "cancel");
	c.fd = new_sem(name, 1, KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	ASSERT_GE(c.fd, 0);
	for (int i = 0; i < MAX_THREADS; i++) {
		c.wfd[i] = new_sem(name, 1, 0);
		ASSERT_GE(c.wfd[i], 0);
		c.efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ASSERT_GE(c.efd[i], 0);
	}
	c.victim = getpid();
	EXPECT_NE(0, run_pair("cancel vs grant", &c, &a, &b));
	CHECK_SHARED();
	printf("# cancel vs grant: %lu by eventfd, %lu by timeout, %lu by signal\n",
	       atomic_load(&sh->aux[0]), atomic_load(&sh->aux[1]),
	       atomic_load(&sh->aux[2]));
	check_sem_idle(_metadata, c.fd, 1);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	for (int i = 0; i < MAX_THREADS; i++) {
		close(c.efd[i]);
		close(c.wfd[i]);
	}
	close(c.fd);
}

/* ---- exit of a holder vs release ------------------------------------------- */

#define EXIT_PERMITS	2

/* A short-lived process: take, maybe wait, then exit or be killed. */
static void exiter_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	unsigned int how = rnd(seed, 3);
	int status;
	pid_t pid;

	(void)who;
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return;
	}
	if (!pid) {
		int fd = new_sem(c->name, EXIT_PERMITS, 0);

		if (fd < 0)
			_exit(1);
		if (sem_acquire(fd, 1, 20 * SEC, -1))
			_exit(2);
		if (how == 0)
			_exit(0);	/* exits holding it */
		/* Holds it until killed (how 1) or exits after a while. */
		usleep(200 + rnd(seed, 500));
		_exit(0);
	}
	if (how == 1)
		usleep(rnd(seed, 800));
	if (how != 2)
		kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		fail("waitpid: %s", strerror(errno));
	else if (WIFEXITED(status) && WEXITSTATUS(status))
		fail("holder process failed with %d", WEXITSTATUS(status));
}

static void releaser_round(void *p, int who, unsigned int *seed)
{
	struct sem_ctx *c = p;
	long r;

	(void)who;
	r = sem_acquire(c->fd, 1, 20 * SEC, -1);
	if (r) {
		fail("acquire beside exiting holders: %ld", r);
		return;
	}
	usleep(rnd(seed, 100));
	r = sem_release(c->fd, 1);
	if (r)
		fail("release: %ld", r);
}

TEST_F_TIMEOUT(race, holder_exit_vs_release, 120)
{
	struct sem_ctx c;
	const struct side a = { "fork+hold+exit", exiter_round, 2 };
	const struct side b = { "acquire+release", releaser_round, 2 };
	struct kprim_sem_info i;

	KT_NAME(c.name, "exit");
	c.fd = new_sem(c.name, EXIT_PERMITS, KPRIM_OPEN_CREATE |
		       KPRIM_OPEN_TRANSIENT);
	ASSERT_GE(c.fd, 0);
	EXPECT_NE(0, run_pair("holder exit vs release", &c, &a, &b));
	CHECK_SHARED();
	check_sem_idle(_metadata, c.fd, EXIT_PERMITS);
	i = sem_info(c.fd);
	EXPECT_EQ(0, i.nr_holders);
	close(c.fd);
}

/* ---- rmmod vs open of /dev/kprim ------------------------------------------- */

static int load(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = syscall(SYS_finit_module, fd, "", 0);
	r = r ? -errno : 0;
	close(fd);
	return r;
}

static int unload(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static bool loaded(const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
	return access(path, F_OK) == 0;
}

static void modcycle_round(void *p, int who, unsigned int *seed)
{
	int r;

	(void)p;
	(void)who;
	r = unload("kprim");
	if (!r)
		atomic_fetch_add(&sh->aux[0], 1);
	else if (r != -EBUSY && r != -EWOULDBLOCK && r != -ENOENT)
		fail("rmmod: %d", r);
	else
		atomic_fetch_add(&sh->aux[1], 1);
	usleep(rnd(seed, 2000));
	r = load(KO);
	if (r && r != -EEXIST && r != -EBUSY)
		fail("insmod: %d", r);
}

static void devopen_round(void *p, int who, unsigned int *seed)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = 1, .wait = kt_wait(0, -1),
	};
	struct kprim_open a;
	int s, fd;
	long r;

	(void)p;
	(void)who;
	s = open(KT_DEV, O_RDWR | O_CLOEXEC);
	if (s < 0) {
		/* The device is going or gone. */
		if (errno != ENOENT && errno != ENODEV && errno != ENXIO)
			fail("open %s: %s", KT_DEV, strerror(errno));
		usleep(rnd(seed, 500));
		return;
	}
	atomic_fetch_add(&sh->aux[2], 1);
	a = kt_open_args(KPRIM_KIND_LIMITER, NULL, KPRIM_OPEN_CREATE);
	a.limiter.rate = 10;
	a.limiter.period_ns = SEC;
	a.limiter.burst = 5;
	fd = kt_open(s, &a);
	close(s);
	if (fd < 0) {
		fail("a session that opened cannot create: %d", fd);
		return;
	}
	r = kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t);
	if (r)
		fail("TAKE: %ld", r);
	close(fd);
	/* Gaps without a session, for an rmmod to get through. */
	usleep(rnd(seed, 1000));
}

TEST_F_TIMEOUT(race, rmmod_vs_open, 150)
{
	const struct side a = { "rmmod+insmod", modcycle_round, 1 };
	const struct side b = { "open+use", devopen_round, 2 };
	bool kunit = loaded("kprim_kunit");
	uint64_t t0;

	if (geteuid())
		SKIP(return, "needs root");
	if (access(KO, R_OK))
		SKIP(return, "no %s (not in the test VM)", KO);
	if (kunit)
		ASSERT_EQ(0, unload("kprim_kunit"));
	EXPECT_NE(0, run_pair("rmmod vs open", NULL, &a, &b));
	printf("# rmmod vs open: %lu rmmods done, %lu refused, %lu sessions opened\n",
	       atomic_load(&sh->aux[0]), atomic_load(&sh->aux[1]),
	       atomic_load(&sh->aux[2]));
	/* Loaded again whatever happened, and working. */
	if (!loaded("kprim"))
		EXPECT_EQ(0, load(KO));
	t0 = kt_now_ns();
	while (access(KT_DEV, R_OK | W_OK) && kt_now_ns() - t0 < 5 * SEC)
		usleep(10000);
	if (kunit && !loaded("kprim_kunit"))
		EXPECT_EQ(0, load(KUNIT_KO));
	CHECK_SHARED();
	EXPECT_GT(atomic_load(&sh->aux[0]), 0);
	EXPECT_GT(atomic_load(&sh->aux[2]), 0);
	{
		int fd = new_sem(NULL, 1, KPRIM_OPEN_CREATE);

		EXPECT_GE(fd, 0);
		if (fd >= 0)
			close(fd);
	}
}

TEST_HARNESS_MAIN
