// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifecycle: 50 cycles of insmod, use from several processes at
 * once (named and anonymous objects, a sleeping acquire, io_uring waits
 * queued without a thread), rmmod while they are busy (refused), the
 * processes killed, and rmmod (clean). kmemleak runs after the last
 * cycle, with the rest of the suite (guest-init.sh).
 *
 * Needs root and the module file the VM loaded (/lib/kprim/kprim.ko); the
 * KUnit module, which imports symbols from kprim, is unloaded first and
 * loaded again at the end.
 */
#include <fcntl.h>
#include <liburing.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define KO		"/lib/kprim/kprim.ko"
#define KUNIT_KO	"/lib/kprim/kprim_kunit.ko"
#define CYCLES		50
#define USERS		3
#define MSEC		1000000ull

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

/*
 * One user of the module: a named persistent limiter, sem and cache
 * shared by all users, an anonymous cache of its own, stores and gets,
 * then user 0 holds the semaphore's only permit while the others wait
 * for it: user 1 in the ioctl, user 2 through io_uring (8 waits queued).
 * Reports "ready" on @ready and waits to be killed.
 */
static void user_main(int i, int cycle, int ready)
{
	struct kprim_sem_acquire acq[8];
	struct kprim_cache_store st;
	struct kprim_open a;
	struct io_uring ring;
	char name[64], key[16] = "k", val[64];
	int s, lim, sem, cache, anon, j;

	s = kt_session();
	if (s < 0)
		_exit(10);
	snprintf(name, sizeof(name), "kt-life-%d-lim", cycle);
	a = kt_open_args(KPRIM_KIND_LIMITER, name, KPRIM_OPEN_CREATE);
	a.limiter.rate = 1000;
	a.limiter.period_ns = 1000 * MSEC;
	a.limiter.burst = 100;
	lim = kt_open(s, &a);
	snprintf(name, sizeof(name), "kt-life-%d-sem", cycle);
	a = kt_open_args(KPRIM_KIND_SEM, name, KPRIM_OPEN_CREATE);
	a.sem.permits = 1;
	sem = kt_open(s, &a);
	snprintf(name, sizeof(name), "kt-life-%d-cache", cycle);
	a = kt_open_args(KPRIM_KIND_CACHE, name, KPRIM_OPEN_CREATE);
	a.cache.max_entries = 64;
	a.cache.max_bytes = 1 << 16;
	cache = kt_open(s, &a);
	a = kt_open_args(KPRIM_KIND_CACHE, NULL, KPRIM_OPEN_CREATE);
	a.cache.max_entries = 64;
	a.cache.max_bytes = 1 << 16;
	anon = kt_open(s, &a);
	if (lim < 0 || sem < 0 || cache < 0 || anon < 0)
		_exit(11);

	for (j = 0; j < 32; j++) {
		struct kprim_limiter_take t = {
			.size = sizeof(t), .n = 1, .wait = kt_wait(0, -1),
		};

		snprintf(key, sizeof(key), "k%d-%d", i, j);
		memset(val, 'a' + j % 26, sizeof(val));
		memset(&st, 0, sizeof(st));
		st.size = sizeof(st);
		st.key = (uintptr_t)key;
		st.key_len = strlen(key);
		st.value = (uintptr_t)val;
		st.value_len = sizeof(val);
		if (kt_ioctl(cache, KPRIM_IOC_CACHE_STORE, &st) ||
		    kt_ioctl(anon, KPRIM_IOC_CACHE_STORE, &st))
			_exit(12);
		kt_ioctl(lim, KPRIM_IOC_LIMITER_TAKE, &t);
	}

	if (i == 0) {
		struct kprim_sem_acquire one = {
			.size = sizeof(one), .n = 1,
			.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1),
		};

		/* First to the permit, or wait for it like the others. */
		if (kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, &one))
			_exit(13);
		if (write(ready, "h", 1) != 1)
			_exit(14);
	} else if (i == 1) {
		struct kprim_sem_acquire one = {
			.size = sizeof(one), .n = 1,
			.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1),
		};

		if (write(ready, "w", 1) != 1)
			_exit(14);
		kt_ioctl(sem, KPRIM_IOC_SEM_ACQUIRE, &one);
	} else {
		if (io_uring_queue_init(8, &ring, 0))
			_exit(15);
		for (j = 0; j < 8; j++) {
			acq[j] = (struct kprim_sem_acquire) {
				.size = sizeof(acq[j]), .n = 1,
				.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1),
			};
			prep_kprim(io_uring_get_sqe(&ring), sem,
				   KPRIM_IOC_SEM_ACQUIRE, &acq[j], j);
		}
		if (io_uring_submit(&ring) != 8)
			_exit(16);
		if (write(ready, "u", 1) != 1)
			_exit(14);
	}
	for (;;)
		pause();
}

/* Semaphore waiters of this cycle's sem, from a fresh session. */
static long sem_waiters(int cycle)
{
	struct kprim_sem_info si = { .size = sizeof(si) };
	struct kprim_open a;
	char name[64];
	int s, fd;
	long r;

	snprintf(name, sizeof(name), "kt-life-%d-sem", cycle);
	s = kt_session();
	if (s < 0)
		return -errno;
	a = kt_open_args(KPRIM_KIND_SEM, name, 0);
	fd = kt_open(s, &a);
	close(s);
	if (fd < 0)
		return fd;
	r = kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &si);
	close(fd);
	return r ? r : (long)si.waiters;
}

FIXTURE(life) {
	bool kunit;
};

FIXTURE_SETUP(life)
{
	self->kunit = loaded("kprim_kunit");
}

/* Leave the modules as the suite expects them, whatever happened. */
FIXTURE_TEARDOWN(life)
{
	if (!loaded("kprim") && !access(KO, R_OK))
		EXPECT_EQ(0, load(KO));
	if (self->kunit && !loaded("kprim_kunit"))
		EXPECT_EQ(0, load(KUNIT_KO));
}

/* The debug kernel (KASAN, kmemleak) needs a few seconds per cycle. */
TEST_F_TIMEOUT(life, fifty_cycles_of_insmod_use_rmmod, 900)
{
	int cycle, i, refused = 0, r;
	uint64_t t0, start = kt_now_ns(), worst = 0;

	if (geteuid())
		SKIP(return, "needs root");
	if (access(KO, R_OK))
		SKIP(return, "no %s (not in the test VM)", KO);
	if (self->kunit)
		ASSERT_EQ(0, unload("kprim_kunit"));

	for (cycle = 0; cycle < CYCLES; cycle++) {
		pid_t pid[USERS];
		int p[2];
		char c;

		if (cycle || !loaded("kprim"))
			ASSERT_EQ(0, load(KO)) TH_LOG("cycle %d insmod", cycle);
		ASSERT_EQ(0, pipe(p));
		for (i = 0; i < USERS; i++) {
			pid[i] = fork();
			ASSERT_GE(pid[i], 0);
			if (!pid[i]) {
				close(p[0]);
				user_main(i, cycle, p[1]);
			}
			/* User 0 holds the permit before the others queue. */
			ASSERT_EQ(1, read(p[0], &c, 1));
		}
		close(p[0]);
		close(p[1]);
		/* 1 ioctl waiter + 8 io_uring waits, all queued. */
		for (i = 0; i < 200 && sem_waiters(cycle) != 9; i++)
			usleep(5000);
		ASSERT_EQ(9, sem_waiters(cycle)) TH_LOG("cycle %d", cycle);

		/* Busy: every open fd holds the module. */
		r = unload("kprim");
		ASSERT_TRUE(r == -EWOULDBLOCK || r == -EBUSY)
			TH_LOG("cycle %d: rmmod while busy: %d", cycle, r);
		refused++;

		for (i = 0; i < USERS; i++)
			kill(pid[i], SIGKILL);
		for (i = 0; i < USERS; i++)
			ASSERT_EQ(pid[i], waitpid(pid[i], NULL, 0));

		/*
		 * The persistent names stay until rmmod frees them. The
		 * io_uring waits' files go when their cancellation has run
		 * (6.1: the module's watcher, every 100 ms).
		 */
		t0 = kt_now_ns();
		while ((r = unload("kprim")) == -EWOULDBLOCK &&
		       kt_now_ns() - t0 < 5000 * MSEC)
			usleep(10000);
		ASSERT_EQ(0, r) TH_LOG("cycle %d: rmmod after exit: %d", cycle,
				       r);
		if (kt_now_ns() - t0 > worst)
			worst = kt_now_ns() - t0;
		ASSERT_FALSE(loaded("kprim"));
		if (cycle % 10 == 9)
			TH_LOG("%d cycles in %llu s", cycle + 1,
			       (unsigned long long)((kt_now_ns() - start) /
						    (1000 * MSEC)));
	}
	TH_LOG("%d cycles, %d busy rmmods refused, slowest clean rmmod %llu ms after the kill",
	       CYCLES, refused, (unsigned long long)(worst / MSEC));
}

TEST_HARNESS_MAIN
