// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the newest slot and limiter page rules: the per-semaphore
 * bound on lent slots (sem->nr_lenders) driven through every path that
 * lends or takes a slot back (close while lent, a dying process, recall by
 * resize, INFO and poll, an io_uring async acquire granted by the grant
 * pass and one cancelled with WAIT_CANCEL, garbage in lent and unlent
 * slots), the shrink rule (no permit taken above a shrunk count) with
 * threads of two processes, garbage in a recalled slot against its own fd
 * and a poller, 64 lent slots of one user against another's fast path,
 * and the limiter page's stamp hammered by a writer thread while the
 * kernel takes, waits, sets and polls.
 *
 * Slots are driven with raw compare-and-swaps (libuser/sem_slot.h's
 * protocol), so the tests see the kernel's side only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_sem.h"
#include "kt_limiter.h"
#include "kt_uring.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define PG		4096
#define MAXL		KPRIM_SEM_SLOT_MAX_LENDERS

static bool slow(struct kprim_sem_slot *sl)
{
	return __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE) &
	       KPRIM_SEM_SLOT_SLOW;
}

/* A new fd of @name with its slot mapped: the fd, or -1. */
static int open_mapped(int sess, const char *name,
		       struct kprim_sem_slot **sl)
{
	int fd = kt_sem_open(sess, name, 0, 0);

	if (fd < 0)
		return -1;
	*sl = kt_sem_map(fd);
	if (!*sl) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_mapped(int fd, struct kprim_sem_slot *sl)
{
	munmap(sl, PG);
	close(fd);
}

#define PROBE	(MAXL + 8)

/*
 * How many slots the semaphore lends now: PROBE fresh mapped fds each take
 * a permit and try to park it. Everything is given back (an INFO recalls
 * the parked ones) before returning. With nothing else lent, exactly
 * KPRIM_SEM_SLOT_MAX_LENDERS; a count that drifted from the list shows as
 * fewer (leaked up) or more (leaked down, or wrapped).
 * Return: the count, or a negative step number on a failure.
 */
static int lendable(int sess, const char *name, int own)
{
	struct kprim_sem_slot *sl[PROBE];
	int fds[PROBE], lent = 0, ret = 0;
	bool parked[PROBE] = { 0 };
	struct kprim_sem_info i;

	for (int k = 0; k < PROBE; k++) {
		fds[k] = open_mapped(sess, name, &sl[k]);
		if (fds[k] < 0)
			return -1;
		if (kt_sem_acquire(fds[k], 1, 0))
			return -2;
		ret = kt_slot_release(sl[k], 1);
		if (ret < 0)
			return -3;
		parked[k] = ret;
		lent += ret;
	}
	i = kt_sem_info(own);	/* recalls every parked permit */
	for (int k = 0; k < PROBE; k++) {
		if (!parked[k] && kt_sem_release(fds[k], 1))
			lent = -4;
		close_mapped(fds[k], sl[k]);
	}
	if (i.held != (__u64)(PROBE - lent))
		return -5;
	i = kt_sem_info(own);
	return i.held ? -6 : lent;
}

/* One fd that is lent and parks @park of @take permits, then is closed. */
static int close_while_lent(int sess, const char *name, int take, int park)
{
	struct kprim_sem_slot *sl;
	int fd = open_mapped(sess, name, &sl);

	if (fd < 0 || kt_sem_acquire(fd, take, 0))
		return -1;
	for (int k = 0; k < park; k++)
		if (kt_slot_release(sl, 1) != 1)
			return -2;
	close_mapped(fd, sl);
	return 0;
}

/*
 * Every path by which an fd joins or leaves the lenders, many times, on
 * one semaphore; between them a probe counts how many slots the semaphore
 * lends: exactly KPRIM_SEM_SLOT_MAX_LENDERS each time, or nr_lenders has
 * drifted from the list (a leak up ends the fast path for everyone, a
 * wrap below zero lifts the bound on a recall walked with interrupts off).
 */
TEST(lenders_count_survives_every_path)
{
	struct kprim_sem_resize rs = { .size = sizeof(rs), .permits = 200 };
	int sess = kt_session(), own, x, y, res = 0, n;
	struct kprim_sem_slot *sx, *sy;
	struct io_uring ring;
	struct kprim_sem_info i;
	char name[64];
	__u64 ud;

	ASSERT_LE(0, sess);
	KT_NAME(name, "nr-lenders");
	own = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 200);
	ASSERT_LE(0, own);
	ASSERT_EQ(MAXL, lendable(sess, name, own));

	/* 1. Closed while lent: parked some, none, or all it holds. */
	for (int r = 0; r < 20; r++) {
		ASSERT_EQ(0, close_while_lent(sess, name, 1 + r % 3, r % 3));
		ASSERT_EQ(0, close_while_lent(sess, name, 2, 2));
	}
	EXPECT_EQ(MAXL, lendable(sess, name, own)) TH_LOG("after closes");

	/* 2. A process dies with its slot lent (and one mid-recall). */
	for (int r = 0; r < 8; r++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (!pid)
			_exit(close_while_lent(sess, name, 3, 1) ? 1 : 0);
		ASSERT_EQ(0, kt_reap(pid));
		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			struct kprim_sem_slot *s;
			int f = open_mapped(sess, name, &s);

			if (f < 0 || kt_sem_acquire(f, 2, 0) ||
			    kt_slot_release(s, 1) != 1)
				_exit(1);
			raise(SIGKILL);
		}
		ASSERT_EQ(255 + SIGKILL, kt_reap(pid));
	}
	EXPECT_EQ(MAXL, lendable(sess, name, own)) TH_LOG("after deaths");

	/* 3. Recalled by resizes, INFO and poll(), then lent again. */
	x = open_mapped(sess, name, &sx);
	y = open_mapped(sess, name, &sy);
	ASSERT_LE(0, x);
	ASSERT_LE(0, y);
	for (int r = 0; r < 20; r++) {
		struct pollfd p = { .fd = own, .events = POLLIN };

		ASSERT_EQ(0, kt_sem_acquire(x, 2, 0));
		ASSERT_EQ(1, kt_slot_release(sx, 1));
		ASSERT_EQ(0, kt_ioctl(own, KPRIM_IOC_SEM_RESIZE, &rs));
		EXPECT_TRUE(slow(sx));
		ASSERT_EQ(0, kt_sem_acquire(x, 1, 0));
		ASSERT_EQ(1, kt_slot_release(sx, 1));
		ASSERT_EQ(1, poll(&p, 1, 0));
		EXPECT_TRUE(slow(sx));
		ASSERT_EQ(0, kt_sem_release(x, 1));
		i = kt_sem_info(own);
		EXPECT_EQ(0, i.held);
	}
	EXPECT_EQ(MAXL, lendable(sess, name, own)) TH_LOG("after recalls");

	/*
	 * 4. A 1-entry ring: y's async acquire recalls x's parked permit,
	 * queues, and is granted by the grant pass of own's release; another
	 * is cancelled with WAIT_CANCEL; x tries (and fails) while they wait.
	 */
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));
	for (int r = 0; r < 10; r++) {
		struct kprim_sem_acquire acq = {
			.size = sizeof(acq), .n = 2,
			.wait = kt_wait(20 * NSEC, KPRIM_NO_CANCEL_FD),
		};
		struct kprim_wait_cancel wc = {
			.size = sizeof(wc), .user_data = 2,
		};

		ASSERT_EQ(0, kt_sem_acquire(own, 198, 0));
		ASSERT_EQ(0, kt_sem_acquire(x, 2, 0));
		ASSERT_EQ(1, kt_slot_release(sx, 1));
		prep_kprim(io_uring_get_sqe(&ring), y, KPRIM_IOC_SEM_ACQUIRE,
			   &acq, 1);
		ASSERT_EQ(1, io_uring_submit(&ring));
		EXPECT_TRUE(slow(sx));
		EXPECT_EQ(-EAGAIN, kt_sem_acquire(x, 1, 0));
		EXPECT_TRUE(slow(sx));
		ASSERT_EQ(0, kt_sem_release(own, 198));
		ASSERT_EQ(0, kt_cqe_wait(&ring, 10000, &ud, &res));
		EXPECT_EQ(1, ud);
		EXPECT_EQ(0, res);
		/* y holds 2 (lent at its next call); x 1; queue another. */
		ASSERT_EQ(0, kt_sem_acquire(own, 197, 0));
		acq.n = 1;
		prep_kprim(io_uring_get_sqe(&ring), y, KPRIM_IOC_SEM_ACQUIRE,
			   &acq, 2);
		ASSERT_EQ(1, io_uring_submit(&ring));
		prep_kprim(io_uring_get_sqe(&ring), x, KPRIM_IOC_WAIT_CANCEL,
			   &wc, 3);
		ASSERT_EQ(1, io_uring_submit(&ring));
		for (int k = 0; k < 2; k++)
			ASSERT_EQ(0, kt_cqe_wait(&ring, 10000, &ud, &res));
		ASSERT_EQ(0, kt_sem_release(own, 197));
		ASSERT_EQ(0, kt_sem_release(y, 2));
		ASSERT_EQ(0, kt_sem_release(x, 1));
		i = kt_sem_info(own);
		ASSERT_EQ(0, i.held);
		ASSERT_EQ(0, i.waiters);
	}
	io_uring_queue_exit(&ring);
	EXPECT_EQ(MAXL, lendable(sess, name, own)) TH_LOG("after io_uring");

	/*
	 * 5. Garbage: a lent slot told it is SLOW, an unlent one told it
	 * is lent with everything parked, before their fds' calls.
	 */
	for (int r = 0; r < 20; r++) {
		ASSERT_EQ(0, kt_sem_acquire(x, 2, 0));
		EXPECT_FALSE(slow(sx));
		__atomic_store_n(&sx->word, KPRIM_SEM_SLOT_SLOW,
				 __ATOMIC_RELEASE);
		ASSERT_EQ(0, kt_sem_release(x, 1));
		kt_sem_info(own);
		__atomic_store_n(&sx->word, 5 | 5ull << KPRIM_SEM_SLOT_HELD_SHIFT,
				 __ATOMIC_RELEASE);
		ASSERT_EQ(0, kt_sem_release(x, 1));
		i = kt_sem_info(own);
		ASSERT_EQ(0, i.held);
	}
	EXPECT_EQ(MAXL, lendable(sess, name, own)) TH_LOG("after garbage");

	/* 6. Many lent at once, all closed together while lent. */
	for (int r = 0; r < 3; r++) {
		struct kprim_sem_slot *sl[PROBE];
		int fds[PROBE];

		for (n = 0; n < PROBE; n++) {
			fds[n] = open_mapped(sess, name, &sl[n]);
			ASSERT_LE(0, fds[n]);
			ASSERT_EQ(0, kt_sem_acquire(fds[n], 1, 0));
			kt_slot_release(sl[n], 1);
		}
		for (n = 0; n < PROBE; n++)
			close_mapped(fds[n], sl[n]);
	}
	EXPECT_EQ(MAXL, lendable(sess, name, own)) TH_LOG("after mass close");
	i = kt_sem_info(own);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(200, i.available);
	close_mapped(x, sx);
	close_mapped(y, sy);
	close(own);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * Shared by the processes of shrink_never_exceeded: permits in use (a
 * worker counts after its acquire and uncounts before its release), the
 * count the resizer last set and a generation it bumps around each resize.
 */
struct shrink_shared {
	atomic_int inuse;
	atomic_int limit;
	atomic_uint gen;
	atomic_bool stop;
	atomic_int bad, worst, acquires, fast;
};

/* The threads of one process share one fd and its slot. */
struct shrink_worker {
	struct shrink_shared *sh;
	struct kprim_sem_slot *sl;
	int fd;
};

static void *shrink_worker_main(void *arg)
{
	struct shrink_worker *w = arg;
	struct shrink_shared *sh = w->sh;
	struct kprim_sem_slot *sl = w->sl;
	int fd = w->fd;

	while (!atomic_load(&sh->stop)) {
		unsigned int g1 = atomic_load(&sh->gen), g2;
		int lim = atomic_load(&sh->limit), r, now;
		long ret = 0;

		r = kt_slot_acquire(sl, 1);
		if (r < 0)
			continue;
		/*
		 * A try, not a wait: a queued waiter keeps every slot SLOW
		 * and would hide a slot lent while the count is shrunk.
		 */
		if (!r)
			ret = kt_sem_acquire(fd, 1, 0);
		if (ret == -EAGAIN) {
			usleep(50);
			continue;
		}
		if (ret) {
			atomic_fetch_add(&sh->bad, 1000);
			break;
		}
		now = atomic_fetch_add(&sh->inuse, 1) + 1;
		g2 = atomic_load(&sh->gen);
		/*
		 * No resize between the two looks: this acquire began
		 * after the count became @lim, and was granted under it, so
		 * whatever others still hold from before a shrink, it must
		 * not put more than @lim in use.
		 */
		if (g1 == g2 && now > lim) {
			atomic_fetch_add(&sh->bad, 1);
			if (now > atomic_load(&sh->worst))
				atomic_store(&sh->worst, now);
		}
		atomic_fetch_add(&sh->acquires, 1);
		atomic_fetch_add(&sh->fast, r);
		/* Hold it a while: a shrink must find fds holding several. */
		for (volatile int k = 0; k < 20000; k++)
			;
		atomic_fetch_sub(&sh->inuse, 1);
		if (kt_slot_release_one(fd, sl)) {
			atomic_fetch_add(&sh->bad, 1000);
			break;
		}
	}
	return NULL;
}

/* @n threads on one new fd of @name: 0, or -1. */
static int shrink_workers(struct shrink_shared *sh, int sess,
			  const char *name, int n)
{
	struct shrink_worker w = { .sh = sh };
	pthread_t t[4];

	w.fd = open_mapped(sess, name, &w.sl);
	if (w.fd < 0)
		return -1;
	for (int k = 0; k < n; k++)
		if (pthread_create(&t[k], NULL, shrink_worker_main, &w))
			return -1;
	for (int k = 0; k < n; k++)
		pthread_join(t[k], NULL);
	close_mapped(w.fd, w.sl);
	return 0;
}

struct shrink_proc {
	struct shrink_shared *sh;
	const char *name;
	int sess;
};

/* The parent's workers, from a thread while the parent resizes. */
static void *shrink_workers_main(void *arg)
{
	struct shrink_proc *p = arg;

	if (shrink_workers(p->sh, p->sess, p->name, 2))
		atomic_fetch_add(&p->sh->bad, 1000);
	return NULL;
}

/*
 * Threads of two processes (three on one fd, two on another, so that an
 * fd holds several permits) acquire and release one permit (the slot first, as libkprim does) while the owner
 * resizes between 4 and 1. After a shrink, no acquire that starts under
 * the new count may put more than it in use: not from a slot lent again
 * while held > permits (the fd's releases parked there and taken back),
 * not from the kernel. And once held has drained to the count, in use
 * stays within it.
 */
FIXTURE(slow_ones) {};
FIXTURE_SETUP(slow_ones) {}
FIXTURE_TEARDOWN(slow_ones) {}

TEST_F_TIMEOUT(slow_ones, shrink_never_exceeded, 120)
{
	struct kprim_sem_resize rs = { .size = sizeof(rs) };
	int sess = kt_session(), own, shrinks = 0, drained = 0;
	struct shrink_shared *sh;
	struct kprim_sem_info i;
	char name[64];
	uint64_t end;
	pid_t pid;

	ASSERT_LE(0, sess);
	KT_NAME(name, "shrink");
	own = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 4);
	ASSERT_LE(0, own);
	sh = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		  -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	atomic_store(&sh->limit, 4);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		_exit(shrink_workers(sh, sess, name, 3) ? 1 : 0);
	}
	pthread_t t;
	struct shrink_proc w = { .sh = sh, .name = name, .sess = sess };

	ASSERT_EQ(0, pthread_create(&t, NULL, shrink_workers_main, &w));
	end = kt_now_ns() + 4 * NSEC;
	while (kt_now_ns() < end) {
		/* Grow: the generation moves before the count does. */
		atomic_fetch_add(&sh->gen, 1);
		atomic_store(&sh->limit, 4);
		rs.permits = 4;
		ASSERT_EQ(0, kt_ioctl(own, KPRIM_IOC_SEM_RESIZE, &rs));
		atomic_fetch_add(&sh->gen, 1);
		usleep(3000);
		/* Shrink: the count moves first, then the limit. */
		rs.permits = 1;
		ASSERT_EQ(0, kt_ioctl(own, KPRIM_IOC_SEM_RESIZE, &rs));
		atomic_store(&sh->limit, 1);
		atomic_fetch_add(&sh->gen, 1);
		shrinks++;
		usleep(3000);
		i = kt_sem_info(own);
		if (i.held <= 1) {
			drained++;
			/* Drained: in use stays within 1 now. */
			for (int k = 0; k < 50; k++) {
				int now = atomic_load(&sh->inuse);

				if (now > 1) {
					atomic_fetch_add(&sh->bad, 1);
					atomic_store(&sh->worst, now);
				}
				usleep(20);
			}
		}
	}
	atomic_store(&sh->stop, true);
	pthread_join(t, NULL);
	EXPECT_EQ(0, kt_reap(pid));
	TH_LOG("%d shrinks (%d drained), %d acquires (%d from a slot), %d over the count (worst %d in use)",
	       shrinks, drained, atomic_load(&sh->acquires),
	       atomic_load(&sh->fast), atomic_load(&sh->bad),
	       atomic_load(&sh->worst));
	EXPECT_EQ(0, atomic_load(&sh->bad));
	EXPECT_LT(100, atomic_load(&sh->acquires));
	i = kt_sem_info(own);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(0, i.waiters);
	munmap(sh, PG);
	close(own);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

struct garbler {
	struct kprim_sem_slot *sl;
	atomic_bool stop;
	unsigned long writes;
};

/* Tell a recalled slot, over and over, that it is lent with all parked. */
static void *garbler_main(void *arg)
{
	struct garbler *g = arg;
	__u64 lie = 1 | 1ull << KPRIM_SEM_SLOT_HELD_SHIFT;

	while (!atomic_load_explicit(&g->stop, memory_order_relaxed)) {
		__atomic_store_n(&g->sl->word, lie, __ATOMIC_RELAXED);
		__atomic_store_n(&g->sl->acquired, g->writes, __ATOMIC_RELAXED);
		g->writes++;
	}
	return NULL;
}

struct poller {
	int fd, ret;
	uint64_t ms;
};

static void *poller_main(void *arg)
{
	struct poller *p = arg;
	struct pollfd pf = { .fd = p->fd, .events = POLLIN };
	uint64_t t0 = kt_now_ns();

	p->ret = poll(&pf, 1, 5000);
	if (p->ret == 1 && !(pf.revents & POLLIN))
		p->ret = -1;
	__atomic_store_n(&p->ms, (kt_now_ns() - t0) / MSEC, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * a holds the one permit; its slot was recalled (SLOW, unlent). A writer
 * keeps telling the slot it is lent with that permit parked, while a
 * poller sleeps on b. a's own try must not count the lie as a parked
 * permit (it is in use: -EAGAIN, and the kernel must not give it back
 * without a wake), nor a failed release refuse what a holds; a's release
 * through the kernel must wake the poller, and b then gets the permit.
 */
TEST(garbage_in_recalled_slot_vs_poller)
{
	int sess = kt_session(), a, b;
	struct garbler g = { 0 };
	struct poller p = { 0 };
	struct kprim_sem_info i;
	pthread_t tg, tp;
	char name[64];

	ASSERT_LE(0, sess);
	KT_NAME(name, "garbage-poll");
	a = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 1);
	ASSERT_LE(0, a);
	b = kt_sem_open(sess, name, 0, 0);
	ASSERT_LE(0, b);
	g.sl = kt_sem_map(a);
	ASSERT_NE(NULL, g.sl);
	ASSERT_EQ(0, kt_sem_acquire(a, 1, 0));
	EXPECT_FALSE(slow(g.sl));	/* lent, nothing parked */
	i = kt_sem_info(b);		/* recalled: SLOW, unlent */
	EXPECT_EQ(1, i.held);
	EXPECT_TRUE(slow(g.sl));
	ASSERT_EQ(0, pthread_create(&tg, NULL, garbler_main, &g));
	p.fd = b;
	ASSERT_EQ(0, pthread_create(&tp, NULL, poller_main, &p));
	usleep(300 * 1000);
	/* The lie is no parked permit: a's own try finds none. */
	EXPECT_EQ(-EAGAIN, kt_sem_acquire(a, 1, 0));
	EXPECT_EQ(-EAGAIN, kt_sem_acquire(a, 1, 0));
	/* A release of 2 is refused; the permit a holds is still its own. */
	EXPECT_EQ(-EINVAL, kt_sem_release(a, 2));
	usleep(100 * 1000);
	EXPECT_EQ(0, __atomic_load_n(&p.ms, __ATOMIC_ACQUIRE))
		TH_LOG("the poller woke with nothing free");
	EXPECT_EQ(0, kt_sem_release(a, 1));
	pthread_join(tp, NULL);
	atomic_store(&g.stop, true);
	pthread_join(tg, NULL);
	TH_LOG("poll %d after %llu ms (release at ~400 ms); %lu garbage writes",
	       p.ret, (unsigned long long)p.ms, g.writes);
	EXPECT_EQ(1, p.ret);
	EXPECT_GT(3000, p.ms);
	EXPECT_LT(300, p.ms);
	EXPECT_EQ(0, kt_sem_acquire(b, 1, 0));
	i = kt_sem_info(b);
	EXPECT_EQ(1, i.held);
	EXPECT_EQ(1, i.held_by_me);
	EXPECT_EQ(0, i.available);
	EXPECT_EQ(-EINVAL, kt_sem_release(a, 1));
	EXPECT_EQ(0, kt_sem_release(b, 1));
	munmap(g.sl, PG);
	close(a);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * One user's 64 fds each park a permit: every lent slot of the semaphore.
 * Another fd is refused a lend (its slot stays SLOW) - a cost in speed
 * only: its acquires and releases through the kernel are exact, a request
 * the free permits cannot cover recalls the hog's parked ones, and a
 * slot holding nothing is never lent, so once the hog's permits are
 * recalled they stay recalled until it calls again and the other fd is
 * lent at its next call.
 */
TEST(lent_cap_hog_costs_speed_only)
{
	struct kprim_sem_slot *sl[MAXL], *bs;
	int sess = kt_session(), own, b, fds[MAXL];
	struct kprim_sem_info i;
	char name[64];

	ASSERT_LE(0, sess);
	KT_NAME(name, "cap-hog");
	own = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, MAXL + 10);
	ASSERT_LE(0, own);
	for (int k = 0; k < MAXL; k++) {
		fds[k] = open_mapped(sess, name, &sl[k]);
		ASSERT_LE(0, fds[k]);
		ASSERT_EQ(0, kt_sem_acquire(fds[k], 1, 0));
		ASSERT_EQ(1, kt_slot_release(sl[k], 1));
	}
	b = open_mapped(sess, name, &bs);
	ASSERT_LE(0, b);
	/* b: refused a lend, exact through the kernel. */
	for (int r = 0; r < 50; r++) {
		ASSERT_EQ(0, kt_sem_acquire(b, 1 + r % 10, 0));
		EXPECT_TRUE(slow(bs));
		EXPECT_EQ(0, kt_slot_release(bs, 1));
		EXPECT_EQ(-EINVAL, kt_sem_release(b, 2 + r % 10));
		ASSERT_EQ(0, kt_sem_release(b, 1 + r % 10));
	}
	EXPECT_EQ(0, kt_slot_acquire(bs, 1));
	/* Eleven: one more than is free; the hog's parked ones come back. */
	ASSERT_EQ(0, kt_sem_acquire(b, 11, 0));
	for (int k = 0; k < MAXL; k++) {
		EXPECT_TRUE(slow(sl[k])) TH_LOG("hog slot %d still lent", k);
	}
	/* b holds 11: it was lent now (the bound has room again). */
	EXPECT_FALSE(slow(bs));
	EXPECT_EQ(1, kt_slot_release(bs, 1));
	EXPECT_EQ(1, kt_slot_acquire(bs, 1));
	/* The hog's fds hold nothing: their calls do not lend them. */
	for (int k = 0; k < MAXL; k++) {
		EXPECT_EQ(-EINVAL, kt_sem_release(fds[k], 1));
		EXPECT_TRUE(slow(sl[k]));
	}
	i = kt_sem_info(own);
	EXPECT_EQ(11, i.held);
	EXPECT_EQ(1, i.nr_holders);
	EXPECT_EQ(MAXL - 1, i.available);
	ASSERT_EQ(0, kt_sem_release(b, 11));
	for (int k = 0; k < MAXL; k++)
		close_mapped(fds[k], sl[k]);
	i = kt_sem_info(own);
	EXPECT_EQ(0, i.held);
	close_mapped(b, bs);
	close(own);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

enum stamp_abuse { STAMP_INC, STAMP_XOR };

struct stamper {
	struct kprim_limiter_page *pg;
	enum stamp_abuse how;
	atomic_bool stop;
	unsigned long writes;
};

/*
 * A writer that never stops writing the stamp: STAMP_INC pushes LAST
 * forward one nanosecond at a time with locked adds (it never shows the
 * kernel an earlier time, so it cannot mint tokens); STAMP_XOR flips LAST,
 * GEN and SLOW bits with plain stores.
 */
static void *stamper_main(void *arg)
{
	struct stamper *s = arg;
	__u64 x = 0x9e3779b97f4a7c15ull;

	while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
		if (s->how == STAMP_INC) {
			__atomic_fetch_add(&s->pg->stamp, 1, __ATOMIC_RELAXED);
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			__atomic_store_n(&s->pg->stamp,
					 __atomic_load_n(&s->pg->stamp,
							 __ATOMIC_RELAXED) ^
					 (x & (KPRIM_LIMITER_PAGE_SLOW | 0xffff)),
					 __ATOMIC_RELAXED);
		}
		s->writes++;
	}
	return NULL;
}

struct lim_taker {
	int fd;
	atomic_bool *stop;
	long got, timeouts, bad;
	uint64_t worst_ns;
};

static void *lim_taker_main(void *arg)
{
	struct lim_taker *t = arg;

	while (!atomic_load(t->stop)) {
		uint64_t t0 = kt_now_ns(), d;
		long ret = kt_lim_take(t->fd, 1, 200 * MSEC);

		d = kt_now_ns() - t0;
		if (d > t->worst_ns)
			t->worst_ns = d;
		if (!ret)
			t->got++;
		else if (ret == -ETIMEDOUT)
			t->timeouts++;
		else
			t->bad++;
	}
	return NULL;
}

/*
 * The state page's stamp written without pause by one thread while two
 * take through the kernel (timed waits, granted by the hrtimer) and the
 * main thread sets the parameters, reads INFO and polls. The kernel must
 * make progress (every call back within its timeout plus slack; the
 * debug kernel's lockup detectors are armed), and with a writer that
 * only moves time forward, what the kernel hands out stays within the
 * rate: tokens taken <= burst + rate * elapsed.
 */
static void stamp_hammer(struct __test_metadata *_metadata,
			 enum stamp_abuse how)
{
	const __u64 rate = 100, burst = 5;
	struct stamper s = { .how = how };
	struct lim_taker tk[2];
	atomic_bool stop = false;
	struct kprim_limiter_info i;
	int sess = kt_session(), fd, sets = 0;
	pthread_t ts, tt[2];
	uint64_t t0, el, end;
	long got = 0, timeouts = 0;

	ASSERT_LE(0, sess);
	fd = kt_lim_open(sess, rate, NSEC, burst, 0);
	s.pg = kt_lim_mapped(_metadata, fd);
	t0 = kt_now_ns();
	ASSERT_EQ(0, pthread_create(&ts, NULL, stamper_main, &s));
	for (int k = 0; k < 2; k++) {
		tk[k] = (struct lim_taker){ .fd = fd, .stop = &stop };
		ASSERT_EQ(0, pthread_create(&tt[k], NULL, lim_taker_main,
					    &tk[k]));
	}
	end = t0 + 3 * NSEC;
	while (kt_now_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		ASSERT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_BURST, 0, 0,
					burst));
		sets++;
		i = kt_lim_info(fd);
		ASSERT_EQ(rate, i.params.rate);
		ASSERT_LE(0, poll(&p, 1, 10));
	}
	atomic_store(&stop, true);
	for (int k = 0; k < 2; k++) {
		pthread_join(tt[k], NULL);
		got += tk[k].got;
		timeouts += tk[k].timeouts;
		EXPECT_EQ(0, tk[k].bad);
		/* 200 ms timeout; TCG slack. */
		EXPECT_GT(3 * NSEC, tk[k].worst_ns)
			TH_LOG("a take took %llu ms",
			       (unsigned long long)(tk[k].worst_ns / MSEC));
	}
	el = kt_now_ns() - t0;
	atomic_store(&s.stop, true);
	pthread_join(ts, NULL);
	i = kt_lim_info(fd);
	TH_LOG("%s: %lu stamp writes, %d sets; %ld taken (%ld timeouts) in %llu ms (rate allows %llu)",
	       how == STAMP_INC ? "inc" : "xor", s.writes, sets, got, timeouts,
	       (unsigned long long)(el / MSEC),
	       (unsigned long long)(burst + rate * el / NSEC));
	EXPECT_LT(1000, s.writes);
	/* Progress: at least a tenth of the rate reached the takers. */
	EXPECT_LT((long)(rate * el / NSEC / 10), got);
	if (how == STAMP_INC)
		EXPECT_GE((long)(burst + rate * el / NSEC + 1), got);
	close(fd);
	close(sess);
}

TEST_F_TIMEOUT(slow_ones, limiter_stamp_inc_writer, 60)
{
	stamp_hammer(_metadata, STAMP_INC);
}

TEST_F_TIMEOUT(slow_ones, limiter_stamp_xor_writer, 60)
{
	stamp_hammer(_metadata, STAMP_XOR);
}

TEST_HARNESS_MAIN
