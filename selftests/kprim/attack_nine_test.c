// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the semaphore slot page (KPRIM_FEAT_SEM_SLOT), as an
 * unprivileged user and as a malicious co-user of a semaphore: pollers
 * (poll(), epoll edge-triggered) asleep while an fd re-lends its slot and
 * parks a permit in userspace, garbage in the slot's acquired tally, a
 * release ioctl racing a fast release of the same fd, a forked child that
 * keeps only the mapping, an fd kept across exec (KPRIM_OPEN_INHERIT)
 * without its mapping, the slot page pinned in a pipe past the fd's end,
 * garbage from an unprivileged co-user in a user namespace, rmmod while a
 * slot is mapped, a resize storm against fast acquires and
 * releases, a 1-entry io_uring ring whose async acquire
 * recalls a parked permit and is cancelled, and thousands of mapped fds
 * recalled by one call.
 *
 * The slot is driven with raw compare-and-swaps here (the protocol of
 * libuser/sem_slot.h), so that the test sees the kernel's side only.
 * Timing bounds allow a stated slack for the emulated (TCG) VM.
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
#include <sys/epoll.h>
#include <grp.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_sem.h"
#include "kt_uring.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define PG		4096
#define NOBODY		65534

/*
 * The new semaphore @name of @permits, on two fds: *@a with its slot
 * mapped (returned), and *@b.
 */
static struct kprim_sem_slot *open_two(struct __test_metadata *_metadata,
				       int sess, const char *name,
				       __u64 permits, int *a, int *b)
{
	struct kprim_sem_slot *sl;

	*a = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, permits);
	ASSERT_LE(0, *a);
	*b = kt_sem_open(sess, name, 0, 0);
	ASSERT_LE(0, *b);
	sl = kt_sem_map(*a);
	ASSERT_NE(NULL, sl);
	return sl;
}

/*
 * What a co-user does while a poller sleeps: after @delay_ms, a failing
 * try-acquire on its fd (or the fd's first mmap(), if @map_late), then a
 * library-style release of the one permit it holds.
 */
struct releaser {
	int fd;
	bool map_late;
	int delay_ms;
	struct kprim_sem_slot *slot;
	long try_ret, rel_ret;
	int parked;	/* the release was parked in userspace */
};

static void *releaser_main(void *arg)
{
	struct releaser *r = arg;

	usleep(r->delay_ms * 1000);
	if (r->map_late) {
		r->slot = kt_sem_map(r->fd);
		if (!r->slot) {
			r->rel_ret = -ENOMEM;
			return NULL;
		}
	} else {
		r->try_ret = kt_sem_acquire(r->fd, 1, 0);
	}
	r->parked = kt_slot_release(r->slot, 1) > 0;
	r->rel_ret = r->parked ? 0 : kt_sem_release(r->fd, 1);
	return NULL;
}

enum poller { BY_POLL, BY_EPOLL_ET };

/*
 * A one-permit semaphore whose permit @a holds; a poller on another fd
 * goes to sleep (it finds nothing free), then @a's holder releases the
 * permit as libkprim does. The poller must wake up: a permit is free.
 * Return: what the poll returned (1: woke with POLLIN; 0: timed out).
 */
static int poller_sees_release(struct __test_metadata *_metadata,
			       enum poller how, bool map_late)
{
	struct releaser r = { .delay_ms = 400, .map_late = map_late };
	int sess = kt_session(), b, ep = -1, ret;
	struct kprim_sem_info i;
	char name[64];
	pthread_t t;
	uint64_t t0, ms;

	KT_NAME(name, "poll-park");
	r.fd = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 1);
	b = kt_sem_open(sess, name, 0, 0);
	if (r.fd < 0 || b < 0)
		return -2;
	if (!map_late) {
		r.slot = kt_sem_map(r.fd);
		if (!r.slot)
			return -3;
	}
	/* Held by a, in use (a lent slot with nothing parked, if mapped). */
	if (kt_sem_acquire(r.fd, 1, 0))
		return -4;
	if (how == BY_EPOLL_ET) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET };

		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, b, &ev))
			return -5;
	}
	if (pthread_create(&t, NULL, releaser_main, &r))
		return -6;
	t0 = kt_now_ns();
	if (how == BY_POLL) {
		struct pollfd p = { .fd = b, .events = POLLIN };

		ret = poll(&p, 1, 4000);
		if (ret == 1 && !(p.revents & POLLIN))
			ret = -7;
	} else {
		struct epoll_event ev;

		ret = epoll_wait(ep, &ev, 1, 4000);
		if (ret == 1 && !(ev.events & EPOLLIN))
			ret = -7;
	}
	ms = (kt_now_ns() - t0) / MSEC;
	pthread_join(t, NULL);
	TH_LOG("%s%s: poll %d after %llu ms; try %ld, release %ld (%s)",
	       how == BY_POLL ? "poll" : "epoll ET",
	       map_late ? ", mapped late" : "", ret, (unsigned long long)ms,
	       r.try_ret, r.rel_ret,
	       r.parked ? "parked in userspace" : "ioctl");
	/*
	 * poll() looks once more when its timeout ends, and finds the
	 * permit then: woken only by the timeout is not woken (the release
	 * comes at 400 ms; 2.6 s of slack for TCG).
	 */
	if (ret == 1 && ms >= 3000)
		ret = 0;
	EXPECT_EQ(0, r.rel_ret);
	if (!map_late)
		EXPECT_EQ(-EAGAIN, r.try_ret);
	/* The permit is free indeed (INFO recalls). */
	i = kt_sem_info(b);
	EXPECT_EQ(1, i.available);
	EXPECT_EQ(0, i.held);
	if (r.slot)
		munmap(r.slot, PG);
	if (ep >= 0)
		close(ep);
	close(r.fd);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
	return ret;
}

/*
 * A poller asleep on a busy semaphore left every slot recalled. An fd's
 * next system call (here a failing try-acquire, or its first mmap()) must
 * not lend its slot again while the poller sleeps: a release parked there
 * would free a permit without waking anyone.
 */
TEST(poller_wakes_when_a_permit_is_parked)
{
	EXPECT_EQ(1, poller_sees_release(_metadata, BY_POLL, false));
	EXPECT_EQ(1, poller_sees_release(_metadata, BY_POLL, true));
	EXPECT_EQ(1, poller_sees_release(_metadata, BY_EPOLL_ET, false));
	EXPECT_EQ(1, poller_sees_release(_metadata, BY_EPOLL_ET, true));
}

/*
 * The slot's acquired tally is the userspace's to write: garbage there
 * must not wrap INFO's acquired (a count since creation), neither when
 * the fd's next call collects it nor at close; nor may later
 * acquisitions wrap it once it is saturated.
 */
TEST(acquired_tally_garbage_saturates)
{
	int sess = kt_session(), a, b;
	struct kprim_sem_slot *sl;
	struct kprim_sem_info i;
	char name[64];

	ASSERT_LE(0, sess);
	KT_NAME(name, "acq-garbage");
	sl = open_two(_metadata, sess, name, 2, &a, &b);
	ASSERT_EQ(0, kt_sem_acquire(a, 1, 0));
	ASSERT_EQ(0, kt_sem_release(a, 1));
	EXPECT_EQ(1, kt_sem_info(b).acquired);

	/* Collected by a's next call. */
	__atomic_store_n(&sl->acquired, UINT64_MAX, __ATOMIC_RELAXED);
	ASSERT_EQ(0, kt_sem_acquire(a, 1, 0));
	i = kt_sem_info(b);
	TH_LOG("acquired after UINT64_MAX in the tally: %llu",
	       (unsigned long long)i.acquired);
	EXPECT_EQ(UINT64_MAX, i.acquired);
	/* Saturated: another grant does not wrap it. */
	ASSERT_EQ(0, kt_sem_acquire(b, 1, 0));
	EXPECT_EQ(UINT64_MAX, kt_sem_info(b).acquired);
	ASSERT_EQ(0, kt_sem_release(b, 1));

	/* Collected at close (the munmap drops the last reference). */
	__atomic_store_n(&sl->acquired, UINT64_MAX - 5, __ATOMIC_RELAXED);
	munmap(sl, PG);
	close(a);
	i = kt_sem_info(b);
	EXPECT_EQ(UINT64_MAX, i.acquired);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(2, i.available);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * Exec probe: re-executed with EXEC_MARK, the new program reports what its
 * inherited fd holds (INFO recalls the permit the old image parked), maps
 * the fd again, releases the permit the old image had in use, and exits.
 */
#define EXEC_MARK "--attack-nine-exec"

struct exec_report {
	__u64 held_by_me, word;
	long release, again;
	__u64 held_after;
};

__attribute__((constructor))
static void exec_probe(int argc, char **argv)
{
	struct exec_report rep = { 0 };
	struct kprim_sem_slot *sl;
	int fd, out;

	if (argc != 4 || strcmp(argv[1], EXEC_MARK))
		return;
	fd = atoi(argv[2]);
	out = atoi(argv[3]);
	rep.held_by_me = kt_sem_info(fd).held_by_me;
	sl = kt_sem_map(fd);
	rep.word = sl ? __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE) : 0;
	rep.release = kt_slot_release_one(fd, sl);
	rep.again = kt_slot_release_one(fd, sl);
	rep.held_after = kt_sem_info(fd).held_by_me;
	_exit(write(out, &rep, sizeof(rep)) == sizeof(rep) ? 0 : 1);
}

/*
 * KPRIM_OPEN_INHERIT keeps the fd across exec, not the mapping: what the
 * old image parked and had in use stays held by the fd; the new image
 * sees it exactly, its new mapping starts recalled, and it can release
 * what the old image had in use, once.
 */
TEST(inherited_fd_across_exec)
{
	int sess = kt_session(), a, b, pfd[2], st;
	struct kprim_sem_slot *sl;
	struct exec_report rep;
	struct kprim_sem_info i;
	char name[64];
	pid_t pid;

	ASSERT_LE(0, sess);
	KT_NAME(name, "exec-slot");
	b = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 3);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char fdarg[16], outarg[16];

		a = kt_sem_open(sess, name, KPRIM_OPEN_INHERIT, 0);
		sl = a < 0 ? NULL : kt_sem_map(a);
		if (!sl || kt_sem_acquire(a, 2, 0) || kt_slot_release(sl, 1) != 1)
			_exit(2);
		snprintf(fdarg, sizeof(fdarg), "%d", a);
		snprintf(outarg, sizeof(outarg), "%d", pfd[1]);
		execl("/proc/self/exe", "attack_nine_test", EXEC_MARK, fdarg,
		      outarg, (char *)NULL);
		_exit(3);
	}
	close(pfd[1]);
	ASSERT_EQ(sizeof(rep), read(pfd[0], &rep, sizeof(rep)));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	TH_LOG("after exec: held %llu, word %#llx, release %ld then %ld, held %llu",
	       (unsigned long long)rep.held_by_me,
	       (unsigned long long)rep.word, rep.release, rep.again,
	       (unsigned long long)rep.held_after);
	EXPECT_EQ(1, rep.held_by_me);
	EXPECT_TRUE(rep.word & KPRIM_SEM_SLOT_SLOW);
	EXPECT_EQ(0, rep.release);
	EXPECT_EQ(-EINVAL, rep.again);
	EXPECT_EQ(0, rep.held_after);
	i = kt_sem_info(b);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(3, i.available);
	close(pfd[0]);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * The slot page spliced into a pipe (vmsplice() takes a reference to the
 * page) outlives the fd: the kernel frees only its own reference, reads
 * through the pipe see the last word, and the permits come back at close.
 */
TEST(slot_page_pinned_in_a_pipe)
{
	int sess = kt_session(), a, b, pfd[2];
	struct kprim_sem_slot *sl, copy;
	struct kprim_sem_info i;
	struct iovec iov;
	char name[64];

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-pipe");
	sl = open_two(_metadata, sess, name, 2, &a, &b);
	ASSERT_EQ(0, kt_sem_acquire(a, 2, 0));
	ASSERT_EQ(1, kt_slot_release(sl, 2));
	ASSERT_EQ(0, pipe(pfd));
	iov = (struct iovec){ .iov_base = sl, .iov_len = sizeof(*sl) };
	ASSERT_EQ((ssize_t)sizeof(*sl), vmsplice(pfd[1], &iov, 1, 0));
	munmap(sl, PG);
	close(a);
	i = kt_sem_info(b);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(2, i.available);
	/* Let the freed page be reused, then read the pinned one. */
	for (int k = 0; k < 64; k++) {
		int c = kt_sem_open(sess, name, 0, 0);
		void *p = c < 0 ? MAP_FAILED : mmap(NULL, PG, PROT_READ |
						    PROT_WRITE, MAP_SHARED,
						    c, 0);

		if (p != MAP_FAILED)
			munmap(p, PG);
		if (c >= 0)
			close(c);
	}
	ASSERT_EQ((ssize_t)sizeof(copy), read(pfd[0], &copy, sizeof(copy)));
	TH_LOG("pinned slot word %#llx", (unsigned long long)copy.word);
	EXPECT_EQ(2ull | 2ull << KPRIM_SEM_SLOT_HELD_SHIFT, copy.word);
	close(pfd[0]);
	close(pfd[1]);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * An unprivileged co-user in a user namespace, on its own mapped fd,
 * writes garbage into its slot (word and tally) and makes calls, while an
 * honest fd acquires and releases: the honest fd's accounting stays
 * exact, nothing is minted, and everything comes back when it exits.
 */
TEST(userns_co_user_garbage)
{
	int sess = kt_session(), h, evil, st, bad = 0;
	struct kprim_sem_info i;
	char name[64];
	pid_t pid;

	ASSERT_LE(0, sess);
	KT_NAME(name, "userns-garbage");
	h = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 4);
	ASSERT_LE(0, h);
	evil = kt_sem_open(sess, name, 0, 0);
	ASSERT_LE(0, evil);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kprim_sem_slot *sl;
		unsigned int seed = 7;

		close(h);
		if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
		    setresuid(NOBODY, NOBODY, NOBODY))
			_exit(90);
		if (unshare(CLONE_NEWUSER))
			_exit(100);
		sl = kt_sem_map(evil);
		if (!sl)
			_exit(1);
		for (int k = 0; k < 20000; k++) {
			__u64 g = (__u64)rand_r(&seed) << 33 ^
				  (__u64)rand_r(&seed) << 2 ^ rand_r(&seed);

			__atomic_store_n(&sl->word, g, __ATOMIC_RELAXED);
			__atomic_store_n(&sl->acquired, ~0ull - k,
					 __ATOMIC_RELAXED);
			if (k % 8 == 0)
				kt_sem_acquire(evil, 1 + k % 5, 0);
			else if (k % 8 == 4)
				kt_sem_release(evil, 1 + k % 3);
			else if (k % 8 == 6)
				kt_sem_info(evil);
		}
		_exit(0);
	}
	close(evil);
	for (int k = 0; k < 2000; k++) {
		long ret = kt_sem_acquire(h, 1, 0);

		if (ret == -EAGAIN)
			continue;
		if (ret) {
			bad++;
			continue;
		}
		i = kt_sem_info(h);
		if (i.held_by_me != 1 || i.held > 4)
			bad++;
		if (kt_sem_release(h, 1))
			bad++;
	}
	st = 0;
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 100)
		SKIP(return, "no unprivileged user namespaces");
	EXPECT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	EXPECT_EQ(0, bad);
	i = kt_sem_info(h);
	TH_LOG("after the co-user: held %llu, available %llu, acquired %llu",
	       (unsigned long long)i.held, (unsigned long long)i.available,
	       (unsigned long long)i.acquired);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(4, i.available);
	EXPECT_EQ(0, i.waiters);
	EXPECT_EQ(0, i.nr_holders);
	EXPECT_EQ(UINT64_MAX, i.acquired);
	EXPECT_EQ(0, kt_sem_acquire(h, 4, 0));
	EXPECT_EQ(-EAGAIN, kt_sem_acquire(h, 1, 0));
	EXPECT_EQ(0, kt_sem_release(h, 4));
	close(h);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * Only a slot mapping holds the module: rmmod is refused, and the parked
 * permit is still usable from the mapping; the munmap ends it all.
 */
TEST(rmmod_refused_while_a_slot_is_mapped)
{
	int sess = kt_session(), a, err;
	struct kprim_sem_slot *sl;

	ASSERT_LE(0, sess);
	a = kt_sem_open(sess, NULL, KPRIM_OPEN_CREATE, 1);
	ASSERT_LE(0, a);
	sl = kt_sem_map(a);
	ASSERT_NE(NULL, sl);
	ASSERT_EQ(0, kt_sem_acquire(a, 1, 0));
	ASSERT_EQ(1, kt_slot_release(sl, 1));
	close(a);
	close(sess);
	if (geteuid() == 0) {
		err = kt_try_rmmod();
		EXPECT_TRUE(err == -EWOULDBLOCK || err == -EBUSY)
			TH_LOG("errno %d", -err);
	}
	EXPECT_EQ(1, kt_slot_acquire(sl, 1));
	EXPECT_EQ(1, kt_slot_release(sl, 1));
	EXPECT_EQ(0, munmap(sl, PG));
}

/*
 * One fd, two threads: a release ioctl and a library-style fast release
 * of the same single permit, at once. Exactly one of them may succeed;
 * the other gets -EINVAL; the kernel's held stays exact.
 */
struct rel_race {
	int fd;
	struct kprim_sem_slot *sl;
	pthread_barrier_t *go;
	atomic_bool *stop;
	int wins, einval, other;
	bool fast;
};

static void *rel_racer(void *arg)
{
	struct rel_race *r = arg;

	for (;;) {
		long ret;

		pthread_barrier_wait(r->go);
		if (atomic_load(r->stop))
			return NULL;
		ret = r->fast ? kt_slot_release_one(r->fd, r->sl) :
				 kt_sem_release(r->fd, 1);
		if (!ret)
			r->wins++;
		else if (ret == -EINVAL)
			r->einval++;
		else
			r->other++;
		pthread_barrier_wait(r->go);
	}
}

TEST(release_ioctl_races_fast_release)
{
	const int rounds = 1500;
	int sess = kt_session(), a, b, bad = 0;
	struct rel_race r[2];
	pthread_barrier_t go;
	atomic_bool stop = false;
	pthread_t t[2];
	struct kprim_sem_slot *sl;
	struct kprim_sem_info i;
	char name[64];

	ASSERT_LE(0, sess);
	KT_NAME(name, "rel-race");
	sl = open_two(_metadata, sess, name, 3, &a, &b);
	ASSERT_EQ(0, pthread_barrier_init(&go, NULL, 3));
	for (int k = 0; k < 2; k++) {
		r[k] = (struct rel_race){ .fd = a, .sl = sl, .go = &go,
					  .stop = &stop, .fast = k };
		ASSERT_EQ(0, pthread_create(&t[k], NULL, rel_racer, &r[k]));
	}
	for (int n = 0; n < rounds; n++) {
		int before = r[0].wins + r[1].wins;

		/* One in use (an INFO every few rounds parks nothing). */
		ASSERT_EQ(0, kt_sem_acquire(a, 1, 0));
		if (n % 7 == 0)
			kt_sem_info(b);
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&go);
		if (r[0].wins + r[1].wins != before + 1)
			bad++;
	}
	atomic_store(&stop, true);
	pthread_barrier_wait(&go);
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	TH_LOG("%d rounds: ioctl won %d, fast won %d, einval %d+%d",
	       rounds, r[0].wins, r[1].wins, r[0].einval, r[1].einval);
	EXPECT_EQ(0, bad);
	EXPECT_EQ(0, r[0].other + r[1].other);
	EXPECT_EQ(rounds, r[0].einval + r[1].einval);
	i = kt_sem_info(b);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(3, i.available);
	EXPECT_EQ(0, i.nr_holders);
	/* Nothing in use is left: a cannot release again. */
	EXPECT_EQ(-EINVAL, kt_sem_release(a, 1));
	pthread_barrier_destroy(&go);
	munmap(sl, PG);
	close(a);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * A forked child that keeps only the mapping (it closed its copy of the
 * fd, and the parent closed and unmapped its own) keeps the fd's permits
 * held; they come back when the child dies, and a waiter gets them.
 */
TEST(child_with_only_the_mapping)
{
	int sess = kt_session(), a, b, st;
	struct kprim_sem_slot *sl;
	struct kprim_sem_info i;
	int pfd[2];
	char name[64], c;
	pid_t pid;

	ASSERT_LE(0, sess);
	KT_NAME(name, "map-child");
	sl = open_two(_metadata, sess, name, 2, &a, &b);
	ASSERT_EQ(0, kt_sem_acquire(a, 2, 0));
	ASSERT_EQ(1, kt_slot_release(sl, 1));	/* 1 parked, 1 in use */
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		close(a);
		close(b);
		close(sess);
		close(pfd[0]);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &c, 1));
	munmap(sl, PG);
	close(a);
	/* The child's mapping pins the fd: the permit in use stays held. */
	i = kt_sem_info(b);
	EXPECT_EQ(1, i.held);
	EXPECT_EQ(1, i.available);
	EXPECT_EQ(1, i.nr_holders);
	/* A waiter for both queues; the child's death grants it. */
	kill(pid, SIGKILL);
	EXPECT_EQ(0, kt_sem_acquire(b, 2, 10 * NSEC));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	i = kt_sem_info(b);
	EXPECT_EQ(2, i.held);
	EXPECT_EQ(2, i.held_by_me);
	EXPECT_EQ(0, kt_sem_release(b, 2));
	EXPECT_EQ(0, kt_sem_info(b).held);
	close(pfd[0]);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * Resize storm: six workers on their own mapped fds acquire and release one
 * permit (from the slot when they can, else a short timed wait) while the
 * owner resizes between 1 and 4. No more than 4 may ever be in use; no
 * release of a permit a worker has may fail; at the end all come back.
 */
struct storm {
	int fd;
	struct kprim_sem_slot *sl;
	atomic_int *inuse;
	atomic_bool *stop;
	int max_seen, fast, slow, bad;
	long err;
};

static void *storm_worker(void *arg)
{
	struct storm *w = arg;

	while (!atomic_load(w->stop)) {
		int r = kt_slot_acquire(w->sl, 1), now;
		long ret = 0;

		if (r < 0)
			continue;
		if (r)
			w->fast++;
		else
			ret = kt_sem_acquire(w->fd, 1, 20 * MSEC);
		if (ret == -ETIMEDOUT || ret == -EINTR)
			continue;
		if (ret) {
			w->err = ret;
			w->bad++;
			break;
		}
		w->slow += !r;
		now = atomic_fetch_add(w->inuse, 1) + 1;
		if (now > w->max_seen)
			w->max_seen = now;
		atomic_fetch_sub(w->inuse, 1);
		ret = kt_slot_release_one(w->fd, w->sl);
		if (ret) {
			w->err = ret;
			w->bad++;
			break;
		}
	}
	return NULL;
}

TEST(resize_storm_against_slots)
{
	struct kprim_sem_resize rs = { .size = sizeof(rs) };
	int sess = kt_session(), own, resizes = 0;
	atomic_int inuse = 0;
	atomic_bool stop = false;
	struct storm w[6];
	pthread_t t[6];
	struct kprim_sem_info i;
	char name[64];
	uint64_t end;

	ASSERT_LE(0, sess);
	KT_NAME(name, "resize-storm");
	own = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, 2);
	ASSERT_LE(0, own);
	for (int k = 0; k < 6; k++) {
		w[k] = (struct storm){ .inuse = &inuse, .stop = &stop };
		w[k].fd = kt_sem_open(sess, name, 0, 0);
		ASSERT_LE(0, w[k].fd);
		w[k].sl = kt_sem_map(w[k].fd);
		ASSERT_NE(NULL, w[k].sl);
		ASSERT_EQ(0, pthread_create(&t[k], NULL, storm_worker, &w[k]));
	}
	end = kt_now_ns() + 3 * NSEC;
	while (kt_now_ns() < end) {
		rs.permits = 1 + resizes % 4;
		ASSERT_EQ(0, kt_ioctl(own, KPRIM_IOC_SEM_RESIZE, &rs));
		resizes++;
		if (resizes % 5 == 0) {
			i = kt_sem_info(own);
			EXPECT_GE(4, i.held);
		}
		usleep(1000);
	}
	atomic_store(&stop, true);
	for (int k = 0; k < 6; k++) {
		pthread_join(t[k], NULL);
		TH_LOG("worker %d: %d fast, %d ioctl, max in use %d, err %ld",
		       k, w[k].fast, w[k].slow, w[k].max_seen, w[k].err);
		EXPECT_EQ(0, w[k].bad);
		EXPECT_GE(4, w[k].max_seen);
		EXPECT_LT(0, w[k].fast + w[k].slow);
	}
	TH_LOG("%d resizes", resizes);
	i = kt_sem_info(own);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(0, i.waiters);
	EXPECT_EQ(i.permits, i.available);
	for (int k = 0; k < 6; k++) {
		munmap(w[k].sl, PG);
		close(w[k].fd);
	}
	close(own);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * Reap one CQE, waiting 10 s at most; its result in *res.
 * Return: its user_data, or 0.
 */
static __u64 reap_cqe(struct io_uring *ring, int *res)
{
	__u64 ud;

	return kt_cqe_wait(ring, 10 * 1000, &ud, res) ? 0 : ud;
}

/*
 * A 1-entry ring: an async acquire on b recalls what a parked, then
 * queues for the permit a still uses; a's slot stays SLOW meanwhile (no
 * fast acquire jumps the queued request), a's release goes to the kernel
 * and grants it. A second one is cancelled with WAIT_CANCEL.
 */
TEST(uring_async_acquire_against_a_slot)
{
	struct kprim_sem_acquire acq1 = {
		.size = sizeof(acq1), .n = 2,
		.wait = kt_wait(20 * NSEC, KPRIM_NO_CANCEL_FD),
	}, acq2 = acq1;
	struct kprim_wait_cancel wc = { .size = sizeof(wc), .user_data = 2 };
	int sess = kt_session(), a, b, res = 0, got = 0;
	struct kprim_sem_slot *sl;
	struct kprim_sem_info i;
	struct io_uring ring;
	char name[64];
	__u64 w, ud;

	ASSERT_LE(0, sess);
	KT_NAME(name, "uring-slot");
	sl = open_two(_metadata, sess, name, 2, &a, &b);
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));
	ASSERT_EQ(0, kt_sem_acquire(a, 2, 0));
	ASSERT_EQ(1, kt_slot_release(sl, 1));	/* 1 parked, 1 in use */

	prep_kprim(io_uring_get_sqe(&ring), b, KPRIM_IOC_SEM_ACQUIRE, &acq1, 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	/* Queued: the parked one was recalled, a's slot is SLOW. */
	w = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
	EXPECT_TRUE(w & KPRIM_SEM_SLOT_SLOW) TH_LOG("word %#llx",
						    (unsigned long long)w);
	EXPECT_EQ(-EAGAIN, kt_sem_acquire(a, 1, 0));
	w = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
	EXPECT_TRUE(w & KPRIM_SEM_SLOT_SLOW);
	i = kt_sem_info(a);
	EXPECT_EQ(1, i.held);
	EXPECT_EQ(1, i.held_by_me);
	EXPECT_EQ(1, i.waiters);
	/* a releases as the library would: SLOW, so the ioctl. */
	EXPECT_EQ(0, kt_slot_release_one(a, sl));
	ud = reap_cqe(&ring, &res);
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	i = kt_sem_info(b);
	EXPECT_EQ(2, i.held);
	EXPECT_EQ(2, i.held_by_me);
	EXPECT_EQ(0, i.waiters);

	/* A second one queues behind nothing but the permits; cancel it. */
	acq2.n = 1;
	prep_kprim(io_uring_get_sqe(&ring), b, KPRIM_IOC_SEM_ACQUIRE, &acq2, 2);
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_EQ(1, kt_sem_info(a).waiters);
	prep_kprim(io_uring_get_sqe(&ring), a, KPRIM_IOC_WAIT_CANCEL, &wc, 3);
	ASSERT_EQ(1, io_uring_submit(&ring));
	for (int k = 0; k < 2; k++) {
		ud = reap_cqe(&ring, &res);
		if (ud == 2 && res == -ECANCELED)
			got |= 1;
		else if (ud == 3 && res == 1)
			got |= 2;
		else
			TH_LOG("cqe %llu: %d", (unsigned long long)ud, res);
	}
	EXPECT_EQ(3, got);
	i = kt_sem_info(a);
	EXPECT_EQ(0, i.waiters);
	EXPECT_EQ(2, i.held);
	EXPECT_EQ(0, i.held_by_me);
	EXPECT_EQ(0, kt_sem_release(b, 2));
	/* a's next call lends its slot again: a fast pair works. */
	EXPECT_EQ(0, kt_sem_acquire(a, 1, 0));
	EXPECT_EQ(1, kt_slot_release(sl, 1));
	i = kt_sem_info(b);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(2, i.available);
	EXPECT_EQ(0, i.nr_holders);
	io_uring_queue_exit(&ring);
	munmap(sl, PG);
	close(a);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * Thousands of mapped fds each holding a permit: at most
 * KPRIM_SEM_SLOT_MAX_LENDERS of them get their slot lent (and park the
 * permit there), the others stay SLOW and release through the kernel, so
 * that one INFO from another fd, which recalls every lent slot under the
 * semaphore's spinlock with interrupts off, visits a bounded number.
 * Measure it; the accounting must come out exact.
 */
/*
 * Opening, mapping and closing 4000 fds takes minutes on the debug kernel
 * when other guests share the host: more than the harness's default 30 s.
 */
FIXTURE(lenders) {};
FIXTURE_SETUP(lenders) {}
FIXTURE_TEARDOWN(lenders) {}

TEST_F_TIMEOUT(lenders, many_lenders_one_recall, 300)
{
	struct rlimit rl;
	int sess = kt_session(), b, n = 0, want = 8192, lent = 0, r;
	struct kprim_sem_slot **sl;
	struct kprim_sem_info i;
	uint64_t t0, t1, t2;
	char name[64];
	int *fds;

	ASSERT_LE(0, sess);
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)want + 64)
		want = rl.rlim_cur - 64;
	KT_NAME(name, "many-lenders");
	b = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, want);
	ASSERT_LE(0, b);
	fds = calloc(want, sizeof(*fds));
	sl = calloc(want, sizeof(*sl));
	ASSERT_NE(NULL, fds);
	ASSERT_NE(NULL, sl);
	for (n = 0; n < want; n++) {
		fds[n] = kt_sem_open(sess, name, 0, 0);
		if (fds[n] < 0)
			break;
		sl[n] = kt_sem_map(fds[n]);
		if (!sl[n]) {
			close(fds[n]);
			break;
		}
		ASSERT_EQ(0, kt_sem_acquire(fds[n], 1, 0));
		r = kt_slot_release(sl[n], 1);
		ASSERT_LE(0, r);
		if (r)
			lent++;
		else
			ASSERT_EQ(0, kt_sem_release(fds[n], 1));
	}
	ASSERT_LE(1024, n);
	/* The first ones, up to the bound, were lent; no more. */
	EXPECT_EQ(KPRIM_SEM_SLOT_MAX_LENDERS, lent);
	t0 = kt_now_ns();
	i = kt_sem_info(b);	/* recalls all n */
	t1 = kt_now_ns();
	kt_sem_info(b);		/* nothing to recall */
	t2 = kt_now_ns();
	TH_LOG("%d fds, %d lent (nofile %llu): recalling INFO %llu us, next %llu us",
	       n, lent, (unsigned long long)rl.rlim_cur,
	       (unsigned long long)((t1 - t0) / 1000),
	       (unsigned long long)((t2 - t1) / 1000));
	EXPECT_EQ(0, i.held);
	EXPECT_EQ((__u64)want, i.available);
	EXPECT_EQ(0, i.nr_holders);
	/* Every slot is SLOW now, and its fd holds nothing. */
	for (int k = 0; k < n; k++) {
		if (!(__atomic_load_n(&sl[k]->word, __ATOMIC_RELAXED) &
		      KPRIM_SEM_SLOT_SLOW)) {
			EXPECT_EQ(-1, k) TH_LOG("slot %d not recalled", k);
			break;
		}
	}
	/*
	 * Generous for TCG on a shared host (the bound on the walk is the
	 * lent count above; this catches a recall gone quadratic).
	 */
	EXPECT_GT(NSEC, t1 - t0);

	/*
	 * Without a permit: a failing release is a system call of the fd.
	 * A slot that holds nothing has nothing to lend: it must stay SLOW,
	 * off the list a recall walks, so that fds holding nothing (which
	 * cost an attacker no permit) cannot lengthen every recall.
	 */
	for (int k = 0; k < n; k++)
		ASSERT_EQ(-EINVAL, kt_sem_release(fds[k], 1));
	for (int k = 0; k < n; k++) {
		if (!(__atomic_load_n(&sl[k]->word, __ATOMIC_RELAXED) &
		      KPRIM_SEM_SLOT_SLOW)) {
			EXPECT_EQ(-1, k) TH_LOG("slot %d holds nothing, lent: %#llx",
						k, (unsigned long long)sl[k]->word);
			break;
		}
	}
	t0 = kt_now_ns();
	i = kt_sem_info(b);
	t1 = kt_now_ns();
	TH_LOG("%d fds holding nothing, called: INFO %llu us", n,
	       (unsigned long long)((t1 - t0) / 1000));
	EXPECT_EQ((__u64)want, i.available);
	EXPECT_GT(NSEC, t1 - t0);
	for (int k = 0; k < n; k++) {
		munmap(sl[k], PG);
		close(fds[k]);
	}
	free(sl);
	free(fds);
	close(b);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

TEST_HARNESS_MAIN
