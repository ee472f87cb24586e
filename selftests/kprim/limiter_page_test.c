// SPDX-License-Identifier: GPL-2.0
/*
 * kprim limiter shared state page (KPRIM_FEAT_LIMITER_PAGE): the mmap()
 * ABI and its refusals, takes without a system call (a seccomp filter
 * fails every ioctl of the taking process), no barging past a queued
 * taker, exact admission with takers in userspace and in the kernel
 * together, the first mapping racing takes, a page full of garbage while
 * everyone uses the limiter, and the page's lifetime (close, fork,
 * madvise, a time namespace).
 *
 * Timing bounds allow a stated slack for the emulated (TCG) VM.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_limiter.h"
#include "kt_ptrace.h"
#include "kprim.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define SLACK_NS	(1500 * MSEC)
#define HOUR_NS		(3600 * NSEC)

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/* A library try-take of one token, @tries times, in a traced child. */
struct takes {
	int fd;
	int tries;
	struct kprim_limiter *l;
};

static int takes_setup(void *arg)
{
	struct takes *t = arg;

	return kprim_limiter_from_fd(dup(t->fd), &t->l) ? 254 : 0;
}

static int takes_body(void *arg)
{
	struct takes *t = arg;
	int ok = 0;

	for (int i = 0; i < t->tries; i++)
		if (!kprim_limiter_try_take(t->l, 1, NULL))
			ok++;
	return ok;
}

/*
 * Count the system calls of @tries library try-takes of one token on @fd;
 * status: the takes that succeeded.
 */
static struct kt_syscalls count_syscalls_of_takes(int fd, int tries)
{
	struct takes t = { .fd = fd, .tries = tries };

	return kt_count_syscalls(takes_setup, takes_body, &t);
}

TEST(feature_bit)
{
	struct kprim_api a = { .size = sizeof(a) };
	int sess = kt_session();

	ASSERT_LE(0, sess);
	ASSERT_EQ(0, kt_ioctl(sess, KPRIM_IOC_API, &a));
	EXPECT_TRUE(a.features & KPRIM_FEAT_LIMITER_PAGE);
	close(sess);
}

/* Every refused mapping: its own errno, and the limiter is untouched. */
TEST(map_refusals)
{
	int sess = kt_session(), fd, other;
	struct kprim_limiter_info before, after;
	struct kprim_open a;
	long ps = page_size();
	void *p;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1, HOUR_NS, 7, 5);
	ASSERT_LE(0, fd);
	before = kt_lim_info(fd);

	p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, ps);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, ps, PROT_READ, MAP_PRIVATE, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, ps, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);

	/* A cache fd and the session fd have no page. */
	a = kt_open_args(KPRIM_KIND_CACHE, NULL, KPRIM_OPEN_CREATE);
	a.cache.max_entries = 4;
	a.cache.max_bytes = 4096;
	a.cache.max_value = 64;
	other = kt_open(sess, &a);
	ASSERT_LE(0, other);
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, other, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);
	close(other);
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, sess, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(ENODEV, errno);

	after = kt_lim_info(fd);
	EXPECT_EQ(before.tokens, after.tokens);
	EXPECT_EQ(before.admitted, after.admitted);
	EXPECT_EQ(before.params.burst, after.params.burst);

	/* A good mapping cannot be made executable nor grown. */
	p = mmap(NULL, ps, PROT_READ, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	EXPECT_EQ(-1, mprotect(p, ps, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(MAP_FAILED, mremap(p, ps, 2 * ps, 0));
	EXPECT_EQ(EFAULT, errno);
	/* Read-only is allowed (a monitor), and upgradable: it is shared. */
	EXPECT_EQ(0, mprotect(p, ps, PROT_READ | PROT_WRITE));
	munmap(p, ps);
	close(fd);
	close(sess);
}

/* The page shows the kernel's state, and follows a SET. */
TEST(page_mirrors_state)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;
	__u64 stamp, period = HOUR_NS;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1, period, 7, 5);
	pg = kt_lim_mapped(_metadata, fd);
	EXPECT_EQ(1, pg->rate);
	EXPECT_EQ(period, pg->period_ns);
	EXPECT_EQ(7, pg->burst);
	EXPECT_EQ(7 * period, pg->cap);
	/* 1 token an hour: the refill since creation is below one token. */
	EXPECT_EQ(5, pg->fill / period);
	stamp = kt_lim_stamp(pg);
	EXPECT_FALSE(stamp & KPRIM_LIMITER_PAGE_SLOW);
	EXPECT_GE(kt_now_ns(), stamp & KPRIM_LIMITER_PAGE_LAST);
	EXPECT_EQ(0, pg->admitted);

	/* An ioctl take is seen in the page. */
	EXPECT_EQ(0, kt_lim_take(fd, 2, 0));
	EXPECT_EQ(3, pg->fill / period);
	EXPECT_EQ(3, kt_lim_info(fd).tokens);

	/* A SET: new copies and a new generation. */
	EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_BURST, 0, 0, 20));
	EXPECT_EQ(20, pg->burst);
	EXPECT_EQ(20 * period, pg->cap);
	EXPECT_NE(stamp & KPRIM_LIMITER_PAGE_GEN,
		  kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_GEN);
	/* A refused SET changes nothing. */
	stamp = kt_lim_stamp(pg);
	EXPECT_EQ(-EINVAL, kt_lim_set(fd, KPRIM_LIMITER_SET_BURST, 0, 0, 0));
	EXPECT_EQ(20, pg->burst);
	EXPECT_EQ(stamp & KPRIM_LIMITER_PAGE_GEN,
		  kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_GEN);

	/* A second mapping is the same page. */
	{
		struct kprim_limiter_page *pg2 = kt_lim_map(fd);

		ASSERT_NE(NULL, pg2);
		pg2->reserved[0] = 0x5a5a;
		EXPECT_EQ(0x5a5a, pg->reserved[0]);
		pg2->reserved[0] = 0;
		munmap(pg2, page_size());
	}
	munmap(pg, page_size());
	close(fd);
	close(sess);
}

/*
 * The point of the page: a take that finds tokens makes no system call
 * (ptrace() counts them); the take that finds the bucket empty goes to the
 * kernel. The kernel's INFO counts what the page admitted.
 */
TEST(takes_without_a_syscall)
{
	int sess = kt_session(), fd;
	struct kt_syscalls c;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1, HOUR_NS, 10, -1);
	ASSERT_LE(0, fd);
	/* 10 tokens: 10 takes in userspace, the 11th needs the kernel. */
	c = count_syscalls_of_takes(fd, 11);
	EXPECT_EQ(10, c.status);
	EXPECT_EQ(1, c.ioctls);
	/*
	 * Others: the library's one-time read of /proc/self/timens_offsets,
	 * and clock_gettime() where the clocksource has no vDSO reading.
	 */
	TH_LOG("11 takes: %d ioctl, %d other system calls", c.ioctls,
	       c.others);
	EXPECT_EQ(10, kt_lim_info(fd).admitted);
	EXPECT_EQ(0, kt_lim_info(fd).tokens);
	/* The kernel counted the 11th, which found the bucket empty. */
	EXPECT_EQ(1, kt_lim_info(fd).throttled);
	close(fd);

	/* With the page switched off, every take is an ioctl. */
	fd = kt_lim_open(sess, 1, HOUR_NS, 10, -1);
	ASSERT_LE(0, fd);
	setenv("KPRIM_NO_LIMITER_PAGE", "1", 1);
	c = count_syscalls_of_takes(fd, 3);
	unsetenv("KPRIM_NO_LIMITER_PAGE");
	EXPECT_EQ(3, c.status);
	EXPECT_EQ(3, c.ioctls);
	EXPECT_EQ(3, kt_lim_info(fd).admitted);
	close(fd);
	close(sess);
}

struct blocker {
	int fd;
	__u64 n;
	__u64 timeout_ns;
	long ret;
	__u64 took_ns;
};

static void *blocking_take(void *arg)
{
	struct blocker *b = arg;
	__u64 t0 = kt_now_ns();

	b->ret = kt_lim_take(b->fd, b->n, b->timeout_ns);
	b->took_ns = kt_now_ns() - t0;
	return NULL;
}

static int wait_waiters(int fd, __u64 n)
{
	for (int i = 0; i < 2000; i++) {
		if (kt_lim_info(fd).waiters == n)
			return 0;
		usleep(2000);
	}
	return -1;
}

/*
 * While a taker is queued the page says SLOW, and a take in userspace goes
 * to the kernel even when tokens are there: nobody overtakes the queue.
 */
TEST(queued_taker_sends_everyone_to_the_kernel)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;
	struct blocker b;
	struct kt_syscalls c;
	pthread_t t;

	ASSERT_LE(0, sess);
	/* 10 tokens/s, burst 10, empty. */
	fd = kt_lim_open(sess, 10, NSEC, 10, 0);
	pg = kt_lim_mapped(_metadata, fd);
	b = (struct blocker){ .fd = fd, .n = 10, .timeout_ns = 30 * NSEC };
	ASSERT_EQ(0, pthread_create(&t, NULL, blocking_take, &b));
	ASSERT_EQ(0, wait_waiters(fd, 1));
	EXPECT_TRUE(kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_SLOW);
	/* Tokens are accumulating (about 1 per 100 ms), but not for us. */
	usleep(300 * 1000);
	c = count_syscalls_of_takes(fd, 3);
	EXPECT_EQ(0, c.status);
	EXPECT_EQ(3, c.ioctls);
	pthread_join(t, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	EXPECT_FALSE(kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_SLOW);
	munmap(pg, page_size());
	close(fd);
	close(sess);
}

struct hammer {
	struct kprim_limiter *l;
	atomic_bool *stop;
	__u64 ok;
};

static void *hammer_take(void *arg)
{
	struct hammer *h = arg;

	while (!atomic_load(h->stop))
		if (!kprim_limiter_try_take(h->l, 1, NULL))
			h->ok++;
	return NULL;
}

/*
 * A whole-bucket take queued behind a stream of one-token takes in
 * userspace: without SLOW it would never see a full bucket.
 */
TEST(whole_bucket_waiter_is_not_starved)
{
	int sess = kt_session(), fd;
	struct hammer h[3];
	pthread_t ht[3], bt;
	struct blocker b;
	atomic_bool stop = false;
	__u64 total = 0;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1000, NSEC, 100, 0);
	ASSERT_LE(0, fd);
	for (int i = 0; i < 3; i++) {
		h[i] = (struct hammer){ .stop = &stop };
		ASSERT_EQ(0, kprim_limiter_from_fd(dup(fd), &h[i].l));
		ASSERT_EQ(0, pthread_create(&ht[i], NULL, hammer_take, &h[i]));
	}
	usleep(200 * 1000);
	b = (struct blocker){ .fd = fd, .n = 100, .timeout_ns = 20 * NSEC };
	ASSERT_EQ(0, pthread_create(&bt, NULL, blocking_take, &b));
	pthread_join(bt, NULL);
	atomic_store(&stop, true);
	for (int i = 0; i < 3; i++) {
		pthread_join(ht[i], NULL);
		total += h[i].ok;
		kprim_limiter_close(h[i].l);
	}
	EXPECT_EQ(0, b.ret);
	/* 100 tokens at 1000/s: 100 ms once queued, plus slack. */
	EXPECT_GT(100 * MSEC + SLACK_NS, b.took_ns);
	EXPECT_LT(0, total);
	EXPECT_EQ(total + 100, kt_lim_info(fd).admitted);
	close(fd);
	close(sess);
}

struct mixed {
	int fd;
	struct kprim_limiter *l;	/* NULL: ioctl takes */
	atomic_bool *stop;
	__u64 ok;
};

static void *mixed_take(void *arg)
{
	struct mixed *m = arg;

	while (!atomic_load(m->stop)) {
		if (m->l) {
			if (!kprim_limiter_try_take(m->l, 1, NULL))
				m->ok++;
		} else if (!kt_lim_take(m->fd, 1, 20 * MSEC)) {
			m->ok++;
		}
	}
	return NULL;
}

/*
 * Takers in userspace (threads here and in a child) and in the kernel
 * (try-takes and waits) on one limiter: never more than burst + rate *
 * elapsed, and INFO's admitted is exactly what everyone counted.
 */
TEST(exact_admission_in_userspace_and_kernel)
{
	const __u64 rate = 20000, burst = 50, run_ns = 2 * NSEC;
	int sess = kt_session(), fd, pipefd[2];
	struct mixed m[4];
	pthread_t t[4];
	atomic_bool stop = false;
	__u64 t0, elapsed, total = 0, child_ok = 0;
	pid_t pid;

	ASSERT_LE(0, sess);
	t0 = kt_now_ns();
	fd = kt_lim_open(sess, rate, NSEC, burst, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kprim_limiter *l;
		__u64 ok = 0;

		if (kprim_limiter_from_fd(dup(fd), &l))
			_exit(1);
		while (kt_now_ns() - t0 < run_ns)
			if (!kprim_limiter_try_take(l, 1, NULL))
				ok++;
		if (write(pipefd[1], &ok, sizeof(ok)) != sizeof(ok))
			_exit(1);
		_exit(0);
	}
	for (int i = 0; i < 4; i++) {
		m[i] = (struct mixed){ .fd = fd, .stop = &stop };
		if (i < 2)
			ASSERT_EQ(0, kprim_limiter_from_fd(dup(fd), &m[i].l));
		ASSERT_EQ(0, pthread_create(&t[i], NULL, mixed_take, &m[i]));
	}
	while (kt_now_ns() - t0 < run_ns)
		usleep(10 * 1000);
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		total += m[i].ok;
		if (m[i].l)
			kprim_limiter_close(m[i].l);
	}
	ASSERT_EQ(sizeof(child_ok), read(pipefd[0], &child_ok,
					  sizeof(child_ok)));
	EXPECT_EQ(0, kt_reap(pid));
	elapsed = kt_now_ns() - t0;
	total += child_ok;
	EXPECT_EQ(total, kt_lim_info(fd).admitted);
	/* Created empty after t0: at most rate * elapsed tokens exist. */
	EXPECT_GE(rate * elapsed / NSEC + 1, total);
	/* And the takers did take most of them (not starved). */
	EXPECT_LE(rate * run_ns / NSEC / 4, total);
	TH_LOG("%llu tokens admitted in %llu ms (%llu by the child)",
	       (unsigned long long)total,
	       (unsigned long long)(elapsed / MSEC),
	       (unsigned long long)child_ok);
	close(pipefd[0]);
	close(pipefd[1]);
	close(fd);
	close(sess);
}

struct first_map {
	int fd;
	atomic_int *go;
	__u64 ok;
};

static void *ioctl_drain(void *arg)
{
	struct first_map *f = arg;

	while (!atomic_load(f->go))
		;
	for (int i = 0; i < 200; i++)
		if (!kt_lim_take(f->fd, 1, 0))
			f->ok++;
	return NULL;
}

static void *map_and_drain(void *arg)
{
	struct first_map *f = arg;
	struct kprim_limiter *l;

	while (!atomic_load(f->go))
		;
	if (kprim_limiter_from_fd(dup(f->fd), &l))
		return NULL;
	for (int i = 0; i < 200; i++)
		if (!kprim_limiter_try_take(l, 1, NULL))
			f->ok++;
	kprim_limiter_close(l);
	return NULL;
}

/*
 * The first mmap() moves the state into the page while ioctl takes run:
 * over many fresh limiters, exactly burst tokens are handed out each time.
 */
TEST(first_map_races_ioctl_takes)
{
	int sess = kt_session();
	int rounds = 300;

	ASSERT_LE(0, sess);
	for (int r = 0; r < rounds; r++) {
		struct first_map f[4];
		pthread_t t[4];
		atomic_int go = 0;
		__u64 total = 0;
		int fd = kt_lim_open(sess, 1, HOUR_NS, 64, -1);

		ASSERT_LE(0, fd);
		for (int i = 0; i < 4; i++) {
			f[i] = (struct first_map){ .fd = fd, .go = &go };
			ASSERT_EQ(0, pthread_create(&t[i], NULL,
						    i & 1 ? map_and_drain :
							    ioctl_drain,
						    &f[i]));
		}
		atomic_store(&go, 1);
		for (int i = 0; i < 4; i++) {
			pthread_join(t[i], NULL);
			total += f[i].ok;
		}
		ASSERT_EQ(64, total);
		ASSERT_EQ(64, kt_lim_info(fd).admitted);
		close(fd);
	}
	close(sess);
}

struct garbage {
	struct kprim_limiter_page *pg;
	atomic_bool *stop;
	unsigned int seed;
};

static void *spray(void *arg)
{
	struct garbage *g = arg;
	__u64 *w = (__u64 *)g->pg;
	const __u64 picks[] = {
		0, 1, ~0ull, KPRIM_LIMITER_PAGE_SLOW,
		KPRIM_LIMITER_PAGE_LAST, KPRIM_LIMITER_PAGE_GEN,
		1ull << 62, 1ull << 57,
	};

	while (!atomic_load(g->stop)) {
		unsigned int r = rand_r(&g->seed);
		__u64 v = r & 1 ? picks[(r >> 1) % 8] :
			  ((__u64)rand_r(&g->seed) << 32) ^ rand_r(&g->seed);

		/* Any of the first 16 words: the state, the copies, beyond. */
		__atomic_store_n(&w[(r >> 4) % 16], v, __ATOMIC_RELAXED);
		if (r % 64 == 0)
			usleep(100);
	}
	return NULL;
}

static void *garbage_users(void *arg)
{
	struct mixed *m = arg;
	unsigned int seed = (unsigned int)(uintptr_t)m;
	struct pollfd p = { .fd = m->fd, .events = POLLIN };

	while (!atomic_load(m->stop)) {
		long ret;

		switch (rand_r(&seed) % 6) {
		case 0:
			ret = m->l ? kprim_limiter_try_take(m->l, 1, NULL) :
				     kt_lim_take(m->fd, 1, 0);
			break;
		case 1:
			ret = kt_lim_take(m->fd, 1 + rand_r(&seed) % 8,
					  5 * MSEC);
			if (ret == -ETIMEDOUT)
				ret = 0;
			break;
		case 2:
			ret = kt_lim_set(m->fd, KPRIM_LIMITER_SET_RATE |
					 KPRIM_LIMITER_SET_BURST,
					 1 + rand_r(&seed) % 100000, NSEC,
					 8 + rand_r(&seed) % 100);
			break;
		case 3:
			ret = poll(&p, 1, 1) < 0 ? -errno : 0;
			break;
		case 4:
			ret = kt_lim_info(m->fd).params.burst > 107 ?
			      -ERANGE : 0;
			break;
		default:
			ret = m->l ? kprim_limiter_try_take(m->l, 3, NULL) :
				     kt_lim_take(m->fd, 3, 0);
			break;
		}
		if (ret && ret != -EAGAIN) {
			m->ok = (__u64)-ret;	/* the first unexpected error */
			return NULL;
		}
	}
	return NULL;
}

/*
 * Garbage in every word of the page while threads take (in userspace and
 * the kernel), wait, set, poll and read the limiter: the kernel keeps its
 * own parameters, answers only 0/-EAGAIN/-ETIMEDOUT, and once the garbage
 * stops, the limiter works exactly again.
 */
TEST(garbage_in_the_page)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;
	struct garbage g[2];
	struct mixed m[4];
	pthread_t gt[2], mt[4];
	atomic_bool stop = false, stop_users = false;
	struct kprim_limiter_info i;
	struct blocker b;
	pthread_t bt;
	__u64 drained;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1000, NSEC, 50, -1);
	pg = kt_lim_mapped(_metadata, fd);
	for (int k = 0; k < 4; k++) {
		m[k] = (struct mixed){ .fd = fd, .stop = &stop_users };
		if (k & 1)
			ASSERT_EQ(0, kprim_limiter_from_fd(dup(fd), &m[k].l));
		ASSERT_EQ(0, pthread_create(&mt[k], NULL, garbage_users,
					    &m[k]));
	}
	for (int k = 0; k < 2; k++) {
		g[k] = (struct garbage){ .pg = pg, .stop = &stop,
					 .seed = 7u + k };
		ASSERT_EQ(0, pthread_create(&gt[k], NULL, spray, &g[k]));
	}
	sleep(3);
	atomic_store(&stop, true);
	for (int k = 0; k < 2; k++)
		pthread_join(gt[k], NULL);
	atomic_store(&stop_users, true);
	for (int k = 0; k < 4; k++) {
		pthread_join(mt[k], NULL);
		EXPECT_EQ(0, m[k].ok);
		if (m[k].l)
			kprim_limiter_close(m[k].l);
	}

	/* The kernel's parameters are the last SET's, whatever the page says. */
	i = kt_lim_info(fd);
	EXPECT_EQ(NSEC, i.params.period_ns);
	EXPECT_LE(8, i.params.burst);
	EXPECT_GE(107, i.params.burst);
	EXPECT_GE(i.params.burst, i.tokens);
	EXPECT_EQ(0, i.waiters);

	/* Back to a known limiter: 1000/s, burst 50; drain it. */
	ASSERT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_RATE |
				KPRIM_LIMITER_SET_BURST, 1000, NSEC, 50));
	while (!kt_lim_take(fd, 1, 0))
		;
	drained = kt_now_ns();
	/*
	 * A whole bucket comes within 50 ms (+ slack), and no earlier than
	 * 49 ms after the drain (less than a token was left): counted from
	 * the drain, not from the thread's start, which may come later.
	 */
	b = (struct blocker){ .fd = fd, .n = 50, .timeout_ns = 20 * NSEC };
	ASSERT_EQ(0, pthread_create(&bt, NULL, blocking_take, &b));
	pthread_join(bt, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_GT(50 * MSEC + SLACK_NS, b.took_ns);
	EXPECT_LE(49 * MSEC, kt_now_ns() - drained);
	munmap(pg, page_size());
	close(fd);
	close(sess);
}

/*
 * Each kind of garbage alone, with what the kernel makes of it: a time in
 * the future does not stall waiters; a fill above the bucket reads as a
 * full bucket; a cleared SLOW under a waiter is set again; wrong copies of
 * the parameters change none of the kernel's.
 */
TEST(garbage_each_kind)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;
	struct blocker b;
	pthread_t bt;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 100, NSEC, 10, 0);
	pg = kt_lim_mapped(_metadata, fd);

	/* Last refill "in 100 years": a wait for 5 tokens still takes 50 ms. */
	__atomic_store_n(&pg->stamp, (kt_now_ns() + 100 * 365 * 24 * HOUR_NS) &
			 KPRIM_LIMITER_PAGE_LAST, __ATOMIC_RELEASE);
	b = (struct blocker){ .fd = fd, .n = 5, .timeout_ns = 10 * NSEC };
	ASSERT_EQ(0, pthread_create(&bt, NULL, blocking_take, &b));
	pthread_join(bt, NULL);
	EXPECT_EQ(0, b.ret);
	EXPECT_GT(50 * MSEC + SLACK_NS, b.took_ns);
	/* The kernel put its own clock back. */
	EXPECT_GE(kt_now_ns(), kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_LAST);

	/* A fill of 2^64 - 1: ten tokens, not 2^64 / period. */
	__atomic_store_n(&pg->fill, ~0ull, __ATOMIC_RELAXED);
	EXPECT_EQ(10, kt_lim_info(fd).tokens);
	EXPECT_EQ(0, kt_lim_take(fd, 10, 0));
	EXPECT_EQ(-EAGAIN, kt_lim_take(fd, 10, 0));

	/* Wrong copies: the kernel's own parameters are unchanged. */
	pg->rate = 0;
	pg->period_ns = 1;
	pg->burst = ~0ull;
	pg->cap = ~0ull;
	EXPECT_EQ(100, kt_lim_info(fd).params.rate);
	EXPECT_EQ(NSEC, kt_lim_info(fd).params.period_ns);
	EXPECT_EQ(10, kt_lim_info(fd).params.burst);
	EXPECT_EQ(-EINVAL, kt_lim_take(fd, 11, 0));

	/*
	 * SLOW cleared under a waiter: the next kernel pass sets it again
	 * (5 tokens/s: the waiter is there for 2 s).
	 */
	ASSERT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_RATE, 5, NSEC, 0));
	b = (struct blocker){ .fd = fd, .n = 10, .timeout_ns = 20 * NSEC };
	while (!kt_lim_take(fd, 1, 0))
		;
	ASSERT_EQ(0, pthread_create(&bt, NULL, blocking_take, &b));
	ASSERT_EQ(0, wait_waiters(fd, 1));
	__atomic_and_fetch(&pg->stamp, ~KPRIM_LIMITER_PAGE_SLOW,
			   __ATOMIC_RELEASE);
	EXPECT_EQ(-EAGAIN, kt_lim_take(fd, 1, 0));	/* a kernel pass... */
	/* ...fixed it */
	EXPECT_TRUE(kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_SLOW);
	pthread_join(bt, NULL);
	EXPECT_EQ(0, b.ret);
	munmap(pg, page_size());
	close(fd);
	close(sess);
}

/* The mapping keeps the limiter alive after its fd is closed. */
TEST(mapping_outlives_the_fd)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;
	char name[64];
	struct kprim_open a;

	ASSERT_LE(0, sess);
	KT_NAME(name, "pgfd");
	a = kt_open_args(KPRIM_KIND_LIMITER, name,
			 KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	a.limiter.rate = 1;
	a.limiter.period_ns = HOUR_NS;
	a.limiter.burst = 4;
	fd = kt_open(sess, &a);
	pg = kt_lim_mapped(_metadata, fd);
	close(fd);
	/* Still the live limiter: a new open by name finds it. */
	a = kt_open_args(KPRIM_KIND_LIMITER, name, 0);
	fd = kt_open(sess, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(4, pg->fill / HOUR_NS);
	EXPECT_EQ(0, kt_lim_take(fd, 3, 0));
	EXPECT_EQ(1, pg->fill / HOUR_NS);
	close(fd);
	/* The page is usable (and harmless) to the last munmap. */
	pg->fill = 12345;
	EXPECT_EQ(0, munmap(pg, page_size()));
	/* Then the transient limiter is gone. */
	a = kt_open_args(KPRIM_KIND_LIMITER, name, 0);
	EXPECT_EQ(-ENOENT, kt_open(sess, &a));
	close(sess);
}

/* A zapped page comes back; a forked child shares it. */
TEST(madvise_and_fork)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;
	pid_t pid;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1, HOUR_NS, 9, -1);
	pg = kt_lim_mapped(_metadata, fd);
	/* The debug kernel is built without madvise() (ADVISE_SYSCALLS). */
	if (madvise(pg, page_size(), MADV_DONTNEED) == 0) {
		EXPECT_EQ(9, pg->fill / HOUR_NS);
		EXPECT_EQ(9, pg->burst);
	} else {
		EXPECT_EQ(ENOSYS, errno);
		TH_LOG("no madvise() in this kernel: refault not tried");
	}
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The child's take (through the kernel) shows in our page. */
		_exit(kt_lim_take(fd, 4, 0) ? 1 : 0);
	}
	EXPECT_EQ(0, kt_reap(pid));
	EXPECT_EQ(5, pg->fill / HOUR_NS);
	EXPECT_EQ(5, kt_lim_info(fd).tokens);
	munmap(pg, page_size());
	close(fd);
	close(sess);
}

/*
 * A process whose CLOCK_MONOTONIC is shifted by a time namespace must not
 * publish its times: the library sends its takes to the kernel.
 */
TEST(time_namespace_uses_the_kernel)
{
	int sess = kt_session(), fd, st;
	struct kt_syscalls c;
	pid_t pid;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, 1, HOUR_NS, 10, -1);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		pid_t g;

		if (unshare(CLONE_NEWTIME))
			_exit(100);	/* no time namespaces here: skip */
		if (kt_timens_day_ahead())
			_exit(101);
		g = fork();
		if (g < 0)
			_exit(102);
		if (!g) {
			struct kt_syscalls c = count_syscalls_of_takes(fd, 3);

			/* 3 takes in the kernel, none in userspace: 3. */
			_exit(c.status == 3 ? c.ioctls : 50 + c.status);
		}
		_exit(kt_reap(g));
	}
	st = kt_reap(pid);
	if (st == 100)
		SKIP(return, "no time namespaces (unshare(CLONE_NEWTIME) failed)");
	/* Three takes, all sent to the kernel. */
	EXPECT_EQ(3, st);
	EXPECT_EQ(3, kt_lim_info(fd).admitted);
	/* Here, without the offset, the page is used. */
	c = count_syscalls_of_takes(fd, 3);
	EXPECT_EQ(3, c.status);
	EXPECT_EQ(0, c.ioctls);
	close(fd);
	close(sess);
}

TEST_HARNESS_MAIN
