// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the limiter's shared state page (KPRIM_FEAT_LIMITER_PAGE), as
 * an unprivileged user and as a malicious co-user of a limiter: the page
 * as the argument struct of takes on its own limiter (ioctl and a 1-entry
 * io_uring ring), pinned by io_uring and a pipe past the limiter's end,
 * written by process_vm_writev(), mapped in a race by many processes,
 * mapped by a dying process and a user namespace, mremap()/mprotect(),
 * SLOW kept while async and sync waiters remain after one leaves, nasty
 * stamps (future LAST, GEN bits, SLOW toggled) against waiters and
 * pollers, the pages' memcg charge, rmmod and unlink while mapped; and the
 * library's time-namespace check in a process without /proc.
 *
 * The kernel must stay safe and keep its own parameters whatever the page
 * says; only who gets the tokens may change.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_limiter.h"
#include "kt_uring.h"
#include "kt_cgroup.h"
#include "kprim.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define HOUR_NS		(3600 * NSEC)
#define NOBODY		65534
#define PG		4096

static void drop_privileges(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) ||
	    setresuid(NOBODY, NOBODY, NOBODY))
		_exit(90);
}

/* Mode 0666: the tests drop their privileges, or share with nobody. */
static int open_named(int sess, const char *name, __u64 rate, __u64 period,
		      __u64 burst, long initial)
{
	struct kprim_open a = kt_lim_args(name, rate, period, burst, initial);

	a.mode = 0666;
	return kt_open(sess, &a);
}

static int open_limiter(int sess, __u64 rate, __u64 period, __u64 burst,
			long initial)
{
	return open_named(sess, NULL, rate, period, burst, initial);
}

static bool slow(struct kprim_limiter_page *pg)
{
	return kt_lim_stamp(pg) & KPRIM_LIMITER_PAGE_SLOW;
}

static bool have_feature(int sess, __u64 bit)
{
	struct kprim_api api = { .size = sizeof(api) };

	return !kt_ioctl(sess, KPRIM_IOC_API, &api) && (api.features & bit);
}

/* Skip the test when the module has no limiter page. */
#define REQUIRE_PAGE(sess) do {						\
	if (!have_feature(sess, KPRIM_FEAT_LIMITER_PAGE))		\
		SKIP(return, "no KPRIM_FEAT_LIMITER_PAGE");		\
} while (0)

static int wait_waiters(int fd, __u64 n, unsigned int ms)
{
	for (unsigned int i = 0; i < ms; i++) {
		if (kt_lim_info(fd).waiters == n)
			return 0;
		usleep(1000);
	}
	return -1;
}

/* Parameters the kernel must keep whatever the page says. */
#define EXPECT_PARAMS(fd, r, p, b) do {					\
	struct kprim_limiter_info _i = kt_lim_info(fd);			\
	EXPECT_EQ((r), _i.params.rate);					\
	EXPECT_EQ((p), _i.params.period_ns);				\
	EXPECT_EQ((b), _i.params.burst);				\
	EXPECT_LE(_i.tokens, (b));					\
} while (0)

/*
 * mmap() shapes and later changes of the mapping: only one shared,
 * non-executable page at offset 0, never grown, never made executable,
 * never duplicated by mremap(old_size 0); a moved mapping is the page.
 */
TEST(mapping_shapes)
{
	int sess = kt_session(), fd, sem;
	struct kprim_limiter_page *pg;
	struct kprim_open a;
	void *p, *q;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 1, HOUR_NS, 7, -1);
	ASSERT_LE(0, fd);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_PRIVATE, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED, fd, PG));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ | PROT_EXEC,
				   MAP_SHARED, fd, 0));
	pg = kt_lim_map(fd);
	ASSERT_NE(NULL, pg);
	/* Never executable, never larger. */
	EXPECT_EQ(-1, mprotect(pg, PG, PROT_READ | PROT_EXEC));
	EXPECT_EQ(MAP_FAILED, mremap(pg, PG, 2 * PG, MREMAP_MAYMOVE));
	/* No second mapping made out of the first. */
	EXPECT_EQ(MAP_FAILED, mremap(pg, 0, PG, MREMAP_MAYMOVE));
	/* Read-only and back: the same page. */
	EXPECT_EQ(0, mprotect(pg, PG, PROT_READ));
	EXPECT_EQ(7, pg->burst);
	EXPECT_EQ(0, mprotect(pg, PG, PROT_READ | PROT_WRITE));
	/* Moved elsewhere: still the limiter's page. */
	q = mmap(NULL, 2 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, q);
	p = mremap(pg, PG, PG, MREMAP_MAYMOVE | MREMAP_FIXED,
		   (char *)q + PG);
	ASSERT_EQ((char *)q + PG, p);
	pg = p;
	EXPECT_EQ(0, kt_lim_take(fd, 2, 0));
	EXPECT_EQ(5, pg->fill / HOUR_NS);
	pg->reserved[0] = 0x1234;
	/* Another mapping in this process: the same page. */
	p = kt_lim_map(fd);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(0x1234, ((struct kprim_limiter_page *)p)->reserved[0]);
	munmap(p, PG);
	munmap(q, 2 * PG);
	/* A cache has no page (a semaphore fd has its slot: sem_slot_test). */
	a = kt_open_args(KPRIM_KIND_CACHE, NULL, KPRIM_OPEN_CREATE);
	a.cache.max_entries = 4;
	a.cache.max_bytes = 4096;
	a.cache.max_value = 64;
	sem = kt_open(sess, &a);
	ASSERT_LE(0, sem);
	EXPECT_EQ(MAP_FAILED, mmap(NULL, PG, PROT_READ, MAP_SHARED, sem, 0));
	EXPECT_EQ(ENODEV, errno);
	EXPECT_PARAMS(fd, 1, HOUR_NS, 7);
	close(sem);
	close(fd);
	close(sess);
}

struct argpage {
	int fd;
	struct kprim_limiter_page *pg;
	atomic_bool stop;
	atomic_long bad;
	atomic_long calls;
};

static bool allowed_errno(long r)
{
	return r == 0 || r == -EAGAIN || r == -ETIMEDOUT || r == -EINVAL ||
	       r == -E2BIG || r == -EFAULT || r == -EBADF || r == -ENOSPC;
}

/* Takes whose argument struct lies in the page, at @off. */
static void *take_from_page(void *arg, size_t off)
{
	struct argpage *a = arg;
	struct kprim_limiter_take *t = (void *)((char *)a->pg + off);

	while (!atomic_load(&a->stop)) {
		long r;

		t->size = sizeof(*t);
		t->flags = 0;
		t->n = 1;
		t->wait = kt_wait(atomic_load(&a->calls) & 1 ? 2 * MSEC : 0,
				  KPRIM_NO_CANCEL_FD);
		r = kt_ioctl(a->fd, KPRIM_IOC_LIMITER_TAKE, t);
		if (!allowed_errno(r))
			atomic_fetch_add(&a->bad, 1);
		atomic_fetch_add(&a->calls, 1);
	}
	return NULL;
}

static void *take_at_0(void *arg)
{
	return take_from_page(arg, 0);
}

static void *take_at_64(void *arg)
{
	return take_from_page(arg, 64);
}

static void *take_at_2048(void *arg)
{
	return take_from_page(arg, 2048);
}

/*
 * The page as the argument of takes on its own limiter: at offset 0 the
 * struct is the fill and the stamp the kernel rewrites under the call; at
 * 64 its n is the page's admitted; at 2048 a plain struct the kernel
 * writes retry_after_ns into. Plus SET, and INFO whose answer is written
 * over the fill and stamp (offsets 0 and 8). Only errnos of bad
 * arguments and of the bucket come back; the parameters are the SET's.
 */
TEST(page_is_the_take_argument)
{
	int sess = kt_session(), fd;
	struct argpage a = { 0 };
	pthread_t th[3];
	uint64_t end;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 1000, NSEC, 4, -1);
	ASSERT_LE(0, fd);
	a.fd = fd;
	a.pg = kt_lim_map(fd);
	ASSERT_NE(NULL, a.pg);
	ASSERT_EQ(0, pthread_create(&th[0], NULL, take_at_0, &a));
	ASSERT_EQ(0, pthread_create(&th[1], NULL, take_at_64, &a));
	ASSERT_EQ(0, pthread_create(&th[2], NULL, take_at_2048, &a));
	end = kt_now_ns() + 2 * NSEC;
	for (unsigned int i = 0; kt_now_ns() < end; i++) {
		struct kprim_limiter_info *in = (void *)((char *)a.pg +
							 (i & 1 ? 0 : 8));

		EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_RATE |
					KPRIM_LIMITER_SET_BURST,
					1000 + (i & 1), NSEC, 4 + (i & 3)));
		/* INFO's answer written over the page's own words. */
		in->size = sizeof(*in);
		in->flags = 0;
		EXPECT_TRUE(allowed_errno(kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO,
						   in)));
		usleep(1000);
	}
	atomic_store(&a.stop, true);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	EXPECT_EQ(0, atomic_load(&a.bad));
	EXPECT_LT(100, atomic_load(&a.calls));
	EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_RATE |
				KPRIM_LIMITER_SET_BURST, 5, NSEC, 9));
	EXPECT_PARAMS(fd, 5, NSEC, 9);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	close(fd);
	close(sess);
}

/*
 * The same through a 1-entry io_uring ring: async takes (they queue) whose
 * argument is in the page, at the fill/stamp words and in the middle; the
 * results are written back into the page by the completion. Then the
 * ring is torn down with a take queued.
 */
TEST(page_is_the_async_take_argument)
{
	int sess = kt_session(), fd, res, ok = 0;
	struct kprim_limiter_page *pg;
	struct kprim_limiter_take *t;
	struct io_uring ring;
	__u64 ud;

	ASSERT_LE(0, sess);
	if (!have_feature(sess, KPRIM_FEAT_LIMITER_PAGE) ||
	    !have_feature(sess, KPRIM_FEAT_URING_ASYNC))
		SKIP(return, "no KPRIM_FEAT_LIMITER_PAGE or URING_ASYNC");
	drop_privileges();
	fd = open_limiter(sess, 200, NSEC, 2, 0);
	pg = kt_lim_mapped(_metadata, fd);
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));
	for (int i = 0; i < 200; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
		size_t off = (i % 3 == 0) ? 0 : (i % 3 == 1) ? 64 : 1024;

		t = (void *)((char *)pg + off);
		t->size = sizeof(*t);
		t->flags = 0;
		t->n = 1;
		t->wait = kt_wait(i & 1 ? 3 * MSEC : 50 * MSEC,
				  KPRIM_NO_CANCEL_FD);
		t->retry_after_ns = 0;
		ASSERT_NE(NULL, sqe);
		prep_kprim(sqe, fd, KPRIM_IOC_LIMITER_TAKE, t, i);
		if (i & 4)
			sqe->flags |= IOSQE_ASYNC;
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, kt_cqe_wait(&ring, 5000, &ud, &res));
		EXPECT_EQ((__u64)i, ud);
		EXPECT_TRUE(allowed_errno(res)) TH_LOG("res %d", res);
		ok += !res;
	}
	EXPECT_LT(0, ok);
	/* One left queued when the ring goes. */
	t = (void *)((char *)pg + 1024);
	t->size = sizeof(*t);
	t->flags = 0;
	t->n = 2;
	t->wait = kt_wait(60 * NSEC, KPRIM_NO_CANCEL_FD);
	prep_kprim(io_uring_get_sqe(&ring), fd, KPRIM_IOC_LIMITER_TAKE, t, 999);
	ASSERT_EQ(1, io_uring_submit(&ring));
	munmap(pg, PG);
	io_uring_queue_exit(&ring);
	EXPECT_EQ(0, wait_waiters(fd, 0, 5000));
	EXPECT_PARAMS(fd, 200, NSEC, 2);
	close(fd);
	close(sess);
}

/*
 * The page pinned past the limiter's end: as an io_uring fixed buffer and
 * inside a pipe (vmsplice), with every fd closed and the mapping gone.
 * The pins keep the page; using it is harmless; unpinning frees it.
 */
TEST(page_pinned_past_the_limiter)
{
	int sess = kt_session(), fd, pfd[2], qfd[2], res;
	struct kprim_limiter_page *pg;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	char buf[PG];
	struct iovec iov;
	__u64 ud;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 3, NSEC, 3, -1);
	pg = kt_lim_mapped(_metadata, fd);
	ASSERT_EQ(0, io_uring_queue_init(1, &ring, 0));
	iov.iov_base = pg;
	iov.iov_len = PG;
	res = io_uring_register_buffers(&ring, &iov, 1);
	if (res)
		TH_LOG("register_buffers: %d (%s)", res, strerror(-res));
	ASSERT_EQ(0, pipe(pfd));
	ASSERT_EQ(0, pipe(qfd));
	/* The page's bytes into a pipe, by reference. */
	EXPECT_EQ(PG, vmsplice(pfd[1], &iov, 1, 0));
	/* The limiter goes: no fd, no mapping. */
	EXPECT_EQ(0, munmap(pg, PG));
	close(fd);
	close(sess);
	if (!res) {
		/* Write through the fixed buffer, then read it back out. */
		memset(buf, 0x5a, sizeof(buf));
		EXPECT_EQ(PG, write(qfd[1], buf, PG));
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_read_fixed(sqe, qfd[0], pg, PG, 0, 0);
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, kt_cqe_wait(&ring, 5000, &ud, &res));
		EXPECT_EQ(PG, res);
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_write_fixed(sqe, qfd[1], pg, PG, 0, 0);
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, kt_cqe_wait(&ring, 5000, &ud, &res));
		EXPECT_EQ(PG, res);
		EXPECT_EQ(PG, read(qfd[0], buf, PG));
		EXPECT_EQ(0x5a, (unsigned char)buf[100]);
	}
	/* The pipe's reference reads the page as it is now. */
	EXPECT_EQ(PG, read(pfd[0], buf, PG));
	if (!res)
		EXPECT_EQ(0x5a, (unsigned char)buf[100]);
	io_uring_queue_exit(&ring);
	close(pfd[0]);
	close(pfd[1]);
	close(qfd[0]);
	close(qfd[1]);
}

/*
 * Another process of the same user writes garbage into a process's page
 * with process_vm_writev() (and through /proc/self/mem into the same
 * page) while it takes: the kernel keeps its parameters; only errnos of
 * the bucket come back.
 */
TEST(process_vm_writev_into_the_page)
{
	int sess = kt_session(), fd, sync_fd[2], st;
	struct kprim_limiter_page *pg;
	pid_t pid;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	fd = open_limiter(sess, 1000, NSEC, 10, -1);
	pg = kt_lim_mapped(_metadata, fd);
	ASSERT_EQ(0, pipe(sync_fd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		uint64_t end = kt_now_ns() + 2 * NSEC;
		int bad = 0;
		char c = 0;

		/* The taker is unprivileged; the writer may be anyone. */
		drop_privileges();
		EXPECT_EQ(1, write(sync_fd[1], &c, 1));
		while (kt_now_ns() < end) {
			long r = kt_lim_take(fd, 1 + (kt_now_ns() & 3),
					     kt_now_ns() & 1 ? MSEC : 0);

			bad += !allowed_errno(r);
		}
		_exit(bad ? 1 : 0);
	}
	{
		uint64_t junk[8], end = kt_now_ns() + 2 * NSEC;
		struct iovec l = { junk, sizeof(junk) };
		struct iovec r = { pg, sizeof(junk) };
		char c, path[64];
		int n = 0, m = 0, err = 0, merr = 0, mem;

		/*
		 * Where there is no process_vm_writev() (the debug kernel),
		 * /proc/self/mem: the same remote-access path (FOLL_FORCE)
		 * into the page the child shares.
		 */
		snprintf(path, sizeof(path), "/proc/self/mem");
		mem = open(path, O_RDWR | O_CLOEXEC);
		if (mem < 0)
			merr = errno;
		ASSERT_EQ(1, read(sync_fd[0], &c, 1));
		while (kt_now_ns() < end) {
			junk[0] = ~0ull >> (n & 63);
			junk[1] = (n & 1 ? KPRIM_LIMITER_PAGE_SLOW : 0) |
				  (n & 2 ? KPRIM_LIMITER_PAGE_GEN : 0) |
				  (n & 4 ? KPRIM_LIMITER_PAGE_LAST :
				   kt_now_ns() + (n & 8 ? NSEC : 0));
			for (int i = 2; i < 8; i++)
				junk[i] = ~0ull;
			if (process_vm_writev(pid, &l, 1, &r, 1, 0) ==
			    sizeof(junk))
				n++;
			else
				err = errno;
			/* The same through /proc/<pid>/mem (FOLL_FORCE). */
			if (mem >= 0 && pwrite(mem, junk, sizeof(junk),
					       (off_t)(uintptr_t)pg) ==
			    sizeof(junk))
				m++;
			else if (mem >= 0)
				merr = errno;
		}
		TH_LOG("%d process_vm_writev (errno %d), %d /proc/self/mem writes (errno %d)",
		       n, err, m, merr);
		EXPECT_LT(0, n + m);
		if (mem >= 0)
			close(mem);
	}
	st = kt_reap(pid);
	EXPECT_EQ(0, st);
	EXPECT_PARAMS(fd, 1000, NSEC, 10);
	EXPECT_EQ(0, kt_lim_take(fd, 10, NSEC));
	close(fd);
	close(sess);
}

/*
 * The first mapping of a named limiter raced by 8 processes (opening it
 * by name), against SET, takes and closes: all of them get one page.
 */
TEST(first_map_raced_by_processes)
{
	enum { N = 8 };
	int sess = kt_session(), fd, go[2];
	struct kprim_limiter_page *pg;
	char name[64];
	pid_t pid[N];

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	for (int round = 0; round < 10; round++) {
		char c = 0;

		KT_NAME(name, "race8");
		fd = open_named(sess, name, 10, NSEC, 100, -1);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, pipe(go));
		for (int i = 0; i < N; i++) {
			pid[i] = fork();
			ASSERT_LE(0, pid[i]);
			if (!pid[i]) {
				struct kprim_limiter_page *p;
				int f = open_named(sess, name, 10, NSEC, 100,
						   -1);

				close(go[1]);
				if (f < 0 || read(go[0], &c, 1) != 0)
					_exit(2);
				if (i == 0) {
					/* A closer and a taker, no mapping. */
					_exit(kt_lim_take(f, 1, 0) ? 3 : 0);
				}
				p = kt_lim_map(f);
				if (!p)
					_exit(4);
				__atomic_fetch_add(&p->reserved[1], 1,
						   __ATOMIC_SEQ_CST);
				if (i == 1)
					kt_lim_set(f, KPRIM_LIMITER_SET_BURST,
						   0, 0, 90);
				close(f);
				_exit(0);
			}
		}
		close(go[0]);
		close(go[1]);	/* go */
		for (int i = 0; i < N; i++)
			EXPECT_EQ(0, kt_reap(pid[i]));
		pg = kt_lim_map(fd);
		ASSERT_NE(NULL, pg);
		EXPECT_EQ(N - 1, pg->reserved[1]);
		EXPECT_EQ(90, pg->burst);
		EXPECT_PARAMS(fd, 10, NSEC, 90);
		munmap(pg, PG);
		close(fd);
		EXPECT_EQ(0, kt_unlink(sess, KPRIM_KIND_LIMITER, name));
	}
	close(sess);
}

struct waiter_arg {
	int fd;
	__u64 n, timeout;
	long ret;
};

static void *sync_waiter(void *arg)
{
	struct waiter_arg *w = arg;

	w->ret = kt_lim_take(w->fd, w->n, w->timeout);
	return NULL;
}

/*
 * SLOW stays set while any taker is queued, whoever leaves: a sync waiter
 * that times out ahead of another, an async one that times out, one
 * cancelled; and goes when the last one leaves.
 */
TEST(slow_kept_while_waiters_remain)
{
	int sess = kt_session(), fd, res;
	struct kprim_limiter_page *pg;
	static struct kprim_limiter_take t1, t2;
	struct waiter_arg wa = { 0 }, wb = { 0 };
	struct io_uring ring1, ring2;
	pthread_t ta, tb;
	__u64 ud;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 1, HOUR_NS, 5, 0);
	pg = kt_lim_mapped(_metadata, fd);
	EXPECT_FALSE(slow(pg));

	/* Sync: the head times out, the second stays. */
	wa = (struct waiter_arg){ fd, 1, 200 * MSEC, 1 };
	wb = (struct waiter_arg){ fd, 1, 30 * NSEC, 1 };
	ASSERT_EQ(0, pthread_create(&ta, NULL, sync_waiter, &wa));
	ASSERT_EQ(0, wait_waiters(fd, 1, 5000));
	ASSERT_EQ(0, pthread_create(&tb, NULL, sync_waiter, &wb));
	ASSERT_EQ(0, wait_waiters(fd, 2, 5000));
	EXPECT_TRUE(slow(pg));
	pthread_join(ta, NULL);
	EXPECT_EQ(-ETIMEDOUT, wa.ret);
	EXPECT_EQ(1, kt_lim_info(fd).waiters);
	EXPECT_TRUE(slow(pg));
	EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_RATE, 1, MSEC, 0));
	pthread_join(tb, NULL);
	EXPECT_EQ(0, wb.ret);
	EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_RATE, 1, HOUR_NS, 0));
	/* Empty again; the queue too: SLOW goes. */
	while (kt_lim_take(fd, 1, 0) == 0)
		;
	EXPECT_FALSE(slow(pg));

	if (!have_feature(sess, KPRIM_FEAT_URING_ASYNC)) {
		TH_LOG("no KPRIM_FEAT_URING_ASYNC: async part not run");
		goto out;
	}
	/* Async: two 1-entry rings; the head times out, then a cancel. */
	ASSERT_EQ(0, io_uring_queue_init(1, &ring1, 0));
	ASSERT_EQ(0, io_uring_queue_init(1, &ring2, 0));
	t1 = (struct kprim_limiter_take){ .size = sizeof(t1), .n = 1,
		.wait = kt_wait(200 * MSEC, KPRIM_NO_CANCEL_FD) };
	t2 = (struct kprim_limiter_take){ .size = sizeof(t2), .n = 1,
		.wait = kt_wait(30 * NSEC, KPRIM_NO_CANCEL_FD) };
	prep_kprim(io_uring_get_sqe(&ring1), fd, KPRIM_IOC_LIMITER_TAKE, &t1, 1);
	ASSERT_EQ(1, io_uring_submit(&ring1));
	ASSERT_EQ(0, wait_waiters(fd, 1, 5000));
	prep_kprim(io_uring_get_sqe(&ring2), fd, KPRIM_IOC_LIMITER_TAKE, &t2, 2);
	ASSERT_EQ(1, io_uring_submit(&ring2));
	ASSERT_EQ(0, wait_waiters(fd, 2, 5000));
	EXPECT_TRUE(slow(pg));
	ASSERT_EQ(0, kt_cqe_wait(&ring1, 5000, &ud, &res));
	EXPECT_EQ(-ETIMEDOUT, res);
	EXPECT_EQ(1, kt_lim_info(fd).waiters);
	EXPECT_TRUE(slow(pg));
	/* A sync waiter behind it, then the async one is cancelled. */
	wa = (struct waiter_arg){ fd, 1, 300 * MSEC, 1 };
	ASSERT_EQ(0, pthread_create(&ta, NULL, sync_waiter, &wa));
	ASSERT_EQ(0, wait_waiters(fd, 2, 5000));
	io_uring_queue_exit(&ring2);
	EXPECT_EQ(0, wait_waiters(fd, 1, 5000));
	EXPECT_TRUE(slow(pg));
	pthread_join(ta, NULL);
	EXPECT_EQ(-ETIMEDOUT, wa.ret);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	/* The last one left: the next kernel pass clears SLOW. */
	EXPECT_EQ(-EAGAIN, kt_lim_take(fd, 1, 0));
	EXPECT_FALSE(slow(pg));
	io_uring_queue_exit(&ring1);
out:
	EXPECT_PARAMS(fd, 1, HOUR_NS, 5);
	close(fd);
	close(sess);
}

struct nasty {
	struct kprim_limiter_page *pg;
	atomic_bool stop;
	atomic_long writes;
};

/* Stamps and fills chosen to hurt: future, maximal, GEN, SLOW flips. */
static void *nasty_writer(void *arg)
{
	struct nasty *s = arg;
	static const __u64 fills[] = { 0, 1, ~0ull, 1ull << 63, ~0ull - 1 };
	unsigned int i = 0;

	while (!atomic_load(&s->stop)) {
		__u64 now = kt_now_ns(), st;

		switch (i % 6) {
		case 0: st = KPRIM_LIMITER_PAGE_LAST; break;
		case 1: st = now + HOUR_NS; break;
		case 2: st = KPRIM_LIMITER_PAGE_GEN | now; break;
		case 3: st = ~0ull; break;
		case 4: st = 0; break;
		default: st = now; break;
		}
		__atomic_store_n(&s->pg->fill, fills[i % 5], __ATOMIC_RELAXED);
		__atomic_store_n(&s->pg->stamp, st, __ATOMIC_RELEASE);
		s->pg->admitted = ~0ull - i;
		atomic_fetch_add(&s->writes, 1);
		if ((i++ & 63) == 0)
			sched_yield();
	}
	return NULL;
}

/*
 * Nasty stamps against a waiter, pollers and epoll: every wait ends by its
 * timeout at the latest (no stall), poll() returns, nothing loops; the
 * kernel keeps its parameters and INFO stays sane.
 */
TEST(nasty_stamps_against_waiters_and_pollers)
{
	int sess = kt_session(), fd;
	struct nasty s = { 0 };
	pthread_t th;
	uint64_t end, t0, worst = 0;
	int takes = 0;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 1000, NSEC, 3, 0);
	ASSERT_LE(0, fd);
	s.pg = kt_lim_map(fd);
	ASSERT_NE(NULL, s.pg);
	ASSERT_EQ(0, pthread_create(&th, NULL, nasty_writer, &s));
	end = kt_now_ns() + 3 * NSEC;
	while (kt_now_ns() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long r;

		t0 = kt_now_ns();
		r = kt_lim_take(fd, 1 + (takes % 3), 20 * MSEC);
		EXPECT_TRUE(r == 0 || r == -ETIMEDOUT) TH_LOG("take %ld", r);
		EXPECT_GE(1, poll(&p, 1, 5));
		if (kt_now_ns() - t0 > worst)
			worst = kt_now_ns() - t0;
		if (!(takes % 50))
			EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_BURST,
						0, 0, 3 + (takes & 1)));
		takes++;
	}
	atomic_store(&s.stop, true);
	pthread_join(th, NULL);
	EXPECT_EQ(0, kt_lim_set(fd, KPRIM_LIMITER_SET_BURST, 0, 0, 3));
	TH_LOG("%d takes, %ld writes, worst %llu ms", takes,
	       atomic_load(&s.writes), (unsigned long long)(worst / MSEC));
	/* 20 ms wait + 5 ms poll, generous for TCG. */
	EXPECT_GT(2 * NSEC, worst);
	EXPECT_PARAMS(fd, 1000, NSEC, 3);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	close(fd);
	close(sess);
}

/*
 * A process that mapped the page and waits is killed: its wait leaves the
 * queue and SLOW goes; the page lives on in a forked child that outlives
 * both the killed process and the parent's fd.
 */
TEST(dying_mapper)
{
	int sess = kt_session(), fd, p2c[2];
	struct kprim_limiter_page *pg;
	pid_t victim, heir;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 1, HOUR_NS, 2, 0);
	pg = kt_lim_mapped(_metadata, fd);
	victim = fork();
	ASSERT_LE(0, victim);
	if (!victim) {
		struct kprim_limiter_page *p = kt_lim_map(fd);

		if (!p)
			_exit(1);
		p->reserved[0] = 77;
		kt_lim_take(fd, 1, 60 * NSEC);
		_exit(2);
	}
	ASSERT_EQ(0, wait_waiters(fd, 1, 5000));
	EXPECT_TRUE(slow(pg));
	kill(victim, SIGKILL);
	EXPECT_EQ(255 + SIGKILL, kt_reap(victim));
	EXPECT_EQ(0, wait_waiters(fd, 0, 5000));
	EXPECT_EQ(-EAGAIN, kt_lim_take(fd, 1, 0));
	EXPECT_FALSE(slow(pg));
	EXPECT_EQ(77, pg->reserved[0]);
	ASSERT_EQ(0, pipe(p2c));
	heir = fork();
	ASSERT_LE(0, heir);
	if (!heir) {
		char c;

		close(fd);
		close(p2c[1]);
		if (read(p2c[0], &c, 1) != 0)
			_exit(3);
		/* Parent's fd and mapping gone: the page is still ours. */
		pg->fill = ~0ull;
		_exit(pg->reserved[0] == 77 ? 0 : 4);
	}
	close(p2c[0]);
	EXPECT_EQ(0, munmap(pg, PG));
	close(fd);
	close(p2c[1]);
	EXPECT_EQ(0, kt_reap(heir));
	close(sess);
}

/*
 * A co-user in its own user namespace (root there, nobody here) maps the
 * page of a limiter it got by fd: it can scribble on the page, not change
 * the parameters.
 */
TEST(user_namespace_co_user)
{
	int sess = kt_session(), fd, st;
	struct kprim_limiter_page *pg;
	pid_t pid;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	fd = open_limiter(sess, 1, NSEC, 4, -1);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kprim_limiter_page *p;

		drop_privileges();
		if (unshare(CLONE_NEWUSER))
			_exit(100);
		p = kt_lim_map(fd);
		if (!p)
			_exit(1);
		if (kt_lim_set(fd, KPRIM_LIMITER_SET_BURST, 0, 0, 1000) !=
		    -EPERM)
			_exit(2);
		for (int i = 0; i < 100000; i++) {
			p->fill = ~0ull;
			p->stamp = i & 1 ? 0 : ~0ull;
			p->cap = p->burst = p->rate = ~0ull;
		}
		_exit(kt_lim_take(fd, 4, 0) == 0 ? 0 : 3);
	}
	st = kt_reap(pid);
	if (st == 100)
		SKIP(return, "no unprivileged user namespaces");
	EXPECT_EQ(0, st);
	EXPECT_PARAMS(fd, 1, NSEC, 4);
	pg = kt_lim_map(fd);
	ASSERT_NE(NULL, pg);
	/*
	 * The next kernel pass clamps the fill to what it holds (the copies
	 * of the parameters are the co-user's to spoil: SET republishes).
	 */
	EXPECT_GE(0, kt_lim_take(fd, 1, 0));
	EXPECT_LE(pg->fill, 4 * NSEC);
	EXPECT_PARAMS(fd, 1, NSEC, 4);
	munmap(pg, PG);
	close(fd);
	close(sess);
}

/*
 * Unlink a named limiter while only a mapping holds it: the mapping is
 * the old limiter's page; a new limiter by that name has its own page.
 * rmmod is refused while the mapping exists.
 */
TEST(unlink_and_rmmod_while_mapped)
{
	int sess = kt_session(), fd, fd2, err;
	struct kprim_limiter_page *pg, *pg2;
	char name[64];

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	KT_NAME(name, "unl8");
	fd = open_named(sess, name, 1, NSEC, 6, -1);
	pg = kt_lim_mapped(_metadata, fd);
	pg->reserved[0] = 0xabc;
	close(fd);
	EXPECT_EQ(0, kt_unlink(sess, KPRIM_KIND_LIMITER, name));
	fd2 = open_named(sess, name, 2, NSEC, 8, -1);
	pg2 = kt_lim_mapped(_metadata, fd2);
	EXPECT_EQ(0, pg2->reserved[0]);
	EXPECT_EQ(8, pg2->burst);
	EXPECT_EQ(6, pg->burst);
	EXPECT_EQ(0xabc, pg->reserved[0]);
	munmap(pg2, PG);
	close(fd2);
	EXPECT_EQ(0, kt_unlink(sess, KPRIM_KIND_LIMITER, name));
	close(sess);
	/* Only the mapping holds kprim now. */
	if (geteuid() == 0) {
		err = kt_try_rmmod();
		EXPECT_TRUE(err == -EWOULDBLOCK || err == -EBUSY)
			TH_LOG("errno %d", -err);
	}
	pg->fill = 1;
	EXPECT_EQ(6, pg->burst);
	EXPECT_EQ(0, munmap(pg, PG));
}

/* memory.current through an fd opened before the privileges went. */
static long memcg_current(int cfd)
{
	char buf[64];
	ssize_t n = pread(cfd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return atol(buf);
}

/*
 * 800 mapped limiters in a memory cgroup: the pages are charged to it
 * (at least a page each, on top of the objects) and uncharged when the
 * fds are closed and the pages unmapped.
 */
TEST(memcg_charges_the_pages)
{
	enum { N = 800 };
	const char *why = cg_setup(), *cg = CG_ROOT "/kprim-a8";
	int sess, st;
	pid_t pid;

	if (why)
		SKIP(return, "%s", why);
	rmdir(cg);
	ASSERT_EQ(0, mkdir(cg, 0755));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		static int fds[N];
		static void *pages[N];
		long base, objs, mapped, after;
		char path[256];
		int cfd;

		snprintf(path, sizeof(path), "%s/memory.current", cg);
		cfd = open(path, O_RDONLY | O_CLOEXEC);
		if (cfd < 0 || cg_enter(cg))
			_exit(1);
		sess = kt_session();
		if (sess < 0 || !have_feature(sess, KPRIM_FEAT_LIMITER_PAGE))
			_exit(100);
		drop_privileges();
		base = memcg_current(cfd);
		for (int i = 0; i < N; i++) {
			fds[i] = open_limiter(sess, 1, NSEC, 1, -1);
			if (fds[i] < 0)
				_exit(2);
		}
		objs = memcg_current(cfd);
		for (int i = 0; i < N; i++) {
			pages[i] = kt_lim_map(fds[i]);
			if (!pages[i])
				_exit(3);
		}
		mapped = memcg_current(cfd);
		for (int i = 0; i < N; i++) {
			munmap(pages[i], PG);
			close(fds[i]);
		}
		/* Objects go with their last reference; give it time. */
		for (int i = 0; i < 200; i++) {
			after = memcg_current(cfd);
			if (mapped - after >= (long)N * PG * 9 / 10)
				break;
			usleep(10000);
		}
		fprintf(stderr, "# memcg: base %ld, %d objects %ld, mapped %ld, after %ld\n",
			base, N, objs, mapped, after);
		/*
		 * The pages: N * 4096 (the page tables come too), less
		 * the per-CPU charge batches that may have been precharged.
		 */
		if (mapped - objs < (long)N * PG * 9 / 10)
			_exit(4);
		/* Back below what the pages alone weighed. */
		if (mapped - after < (long)N * PG * 9 / 10)
			_exit(5);
		_exit(0);
	}
	st = kt_reap(pid);
	rmdir(cg);
	if (st == 100)
		SKIP(return, "no KPRIM_FEAT_LIMITER_PAGE");
	EXPECT_EQ(0, st);
}

/*
 * INFO's admitted adds the page's count, which any co-user writes: it may
 * be inflated, but never hide what the kernel itself admitted (a sum
 * that wraps past 2^64 would).
 */
TEST(info_admitted_never_below_the_kernels)
{
	int sess = kt_session(), fd;
	struct kprim_limiter_page *pg;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	drop_privileges();
	fd = open_limiter(sess, 1, HOUR_NS, 5, -1);
	pg = kt_lim_mapped(_metadata, fd);
	EXPECT_EQ(0, kt_lim_take(fd, 2, 0));
	EXPECT_EQ(2, kt_lim_info(fd).admitted);
	pg->admitted = ~0ull;
	EXPECT_LE(2, kt_lim_info(fd).admitted);
	pg->admitted = ~0ull - 1;
	EXPECT_LE(2, kt_lim_info(fd).admitted);
	pg->admitted = 7;
	EXPECT_EQ(9, kt_lim_info(fd).admitted);
	munmap(pg, PG);
	close(fd);
	close(sess);
}

/*
 * The library in a time namespace with a monotonic offset, in a process
 * that cannot see /proc (a sandbox without it): it must not publish its
 * shifted clock in the page. A limiter of 1 token an hour, empty: every
 * take of the shifted process must fail, none be admitted.
 */
TEST(library_timens_without_proc)
{
	int sess = kt_session(), fd, st;
	pid_t pid;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	if (geteuid() != 0)
		SKIP(return, "needs root for the mount namespace");
	fd = open_limiter(sess, 1, HOUR_NS, 10, 0);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		pid_t g;

		if (unshare(CLONE_NEWTIME | CLONE_NEWNS))
			_exit(100);
		if (kt_timens_day_ahead())
			_exit(101);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    umount2("/proc", MNT_DETACH))
			_exit(102);
		g = fork();
		if (g < 0)
			_exit(103);
		if (!g) {
			struct kprim_limiter *l;
			int ok = 0;

			drop_privileges();
			if (access("/proc/self", F_OK) == 0)
				_exit(104);
			if (kprim_limiter_from_fd(dup(fd), &l))
				_exit(105);
			for (int i = 0; i < 3; i++)
				ok += !kprim_limiter_try_take(l, 1, NULL);
			_exit(ok);
		}
		_exit(kt_reap(g));
	}
	st = kt_reap(pid);
	if (st == 100)
		SKIP(return, "no time or mount namespaces");
	EXPECT_EQ(0, st);
	EXPECT_EQ(0, kt_lim_info(fd).admitted);
	EXPECT_EQ(0, kt_lim_info(fd).tokens);
	close(fd);
	close(sess);
}

/*
 * The library in a process that enters a time namespace with a monotonic
 * offset (setns()) after its clock was checked: its takes must go to the
 * kernel from then on. A limiter of 1 token an hour with 1 token: the
 * take before the setns() succeeds, none after it.
 */
TEST(library_setns_into_time_namespace)
{
	int sess = kt_session(), fd, st;
	pid_t pid;

	ASSERT_LE(0, sess);
	REQUIRE_PAGE(sess);
	fd = open_limiter(sess, 1, HOUR_NS, 10, 1);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct kprim_limiter *l;
		int ok = 0, ns;

		if (kprim_limiter_from_fd(dup(fd), &l))
			_exit(105);
		/* The clock is checked here, and found shared. */
		ok += !kprim_limiter_try_take(l, 1, NULL);
		if (unshare(CLONE_NEWUSER | CLONE_NEWTIME) &&
		    unshare(CLONE_NEWTIME))
			_exit(100);
		if (kt_timens_day_ahead())
			_exit(101);
		ns = open("/proc/self/ns/time_for_children", O_RDONLY);
		if (ns < 0 || setns(ns, CLONE_NEWTIME))
			_exit(102);
		for (int i = 0; i < 3; i++)
			ok += !kprim_limiter_try_take(l, 1, NULL);
		_exit(ok);
	}
	st = kt_reap(pid);
	if (st == 100)
		SKIP(return, "no time namespaces");
	EXPECT_EQ(1, st);
	EXPECT_EQ(1, kt_lim_info(fd).admitted);
	EXPECT_EQ(0, kt_lim_info(fd).tokens);
	close(fd);
	close(sess);
}

TEST_HARNESS_MAIN
