// SPDX-License-Identifier: GPL-2.0
/*
 * kprim over io_uring: IORING_OP_URING_CMD on object fds runs the same
 * operations as the ioctls, in batches, with the same errnos; blocking ones
 * are queued at issue, complete later and can be cancelled with
 * KPRIM_IOC_WAIT_CANCEL (uring_async_test.c tests that in depth).
 */
#include <dirent.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define NSEC	1000000000ull
#define MSEC	1000000ull

static int open_obj(int sess, struct kprim_open *a)
{
	a->flags |= KPRIM_OPEN_CREATE;
	return kt_open(sess, a);
}

FIXTURE(uring) {
	int sess;
	struct io_uring ring;
	bool have_ring;
};

FIXTURE_SETUP(uring)
{
	struct kprim_api api = { .size = sizeof(api) };
	int ret;

	self->have_ring = false;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, kt_ioctl(self->sess, KPRIM_IOC_API, &api));
	ASSERT_NE(0, api.features & KPRIM_FEAT_URING_CMD);
	ret = io_uring_queue_init(128, &self->ring, 0);
	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "io_uring not available: %s", strerror(-ret));
	ASSERT_EQ(0, ret);
	self->have_ring = true;
}

FIXTURE_TEARDOWN(uring)
{
	if (self->have_ring)
		io_uring_queue_exit(&self->ring);
	if (self->sess >= 0)
		close(self->sess);
}

/* Submit what is queued and reap @n completions into res[tag]. */
static int reap(struct io_uring *ring, int n, int *res, int max)
{
	struct io_uring_cqe *cqe;
	int i, ret;

	ret = io_uring_submit(ring);
	if (ret < 0)
		return ret;
	for (i = 0; i < n; i++) {
		ret = io_uring_wait_cqe(ring, &cqe);
		if (ret)
			return ret;
		if (cqe->user_data < (__u64)max)
			res[cqe->user_data] = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
	return 0;
}

TEST_F(uring, batch_of_cache_sets_and_gets)
{
	enum { N = 64 };
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL, 0);
	struct kprim_cache_store st[N];
	struct kprim_cache_get g[N];
	char keys[N][16], vals[N][16], out[N][16];
	int res[2 * N], fd, i;

	fd = open_obj(self->sess, &a);
	ASSERT_LE(0, fd);
	for (i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		snprintf(vals[i], sizeof(vals[i]), "value-%d", i * 7);
		st[i] = (struct kprim_cache_store){
			.size = sizeof(st[i]), .key = (uintptr_t)keys[i],
			.key_len = strlen(keys[i]), .op = KPRIM_CACHE_SET,
			.value = (uintptr_t)vals[i], .value_len = strlen(vals[i]),
		};
		prep_kprim(io_uring_get_sqe(&self->ring), fd,
			   KPRIM_IOC_CACHE_STORE, &st[i], i);
	}
	memset(res, 0x7f, sizeof(res));
	ASSERT_EQ(0, reap(&self->ring, N, res, 2 * N));
	for (i = 0; i < N; i++)
		ASSERT_EQ(0, res[i]) TH_LOG("set %d", i);

	for (i = 0; i < N; i++) {
		g[i] = (struct kprim_cache_get){
			.size = sizeof(g[i]), .key = (uintptr_t)keys[i],
			.key_len = strlen(keys[i]), .value = (uintptr_t)out[i],
			.value_len = sizeof(out[i]),
		};
		prep_kprim(io_uring_get_sqe(&self->ring), fd,
			   KPRIM_IOC_CACHE_GET, &g[i], N + i);
	}
	ASSERT_EQ(0, reap(&self->ring, N, res, 2 * N));
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, res[N + i]);
		ASSERT_EQ(strlen(vals[i]), g[i].value_len);
		EXPECT_EQ(0, memcmp(vals[i], out[i], g[i].value_len));
	}
	close(fd);
}

TEST_F(uring, errors_are_the_ioctl_errors)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL, 0);
	struct kprim_limiter_take t0 = { .size = sizeof(t0), .n = 0,
					 .wait = kt_wait(0, -1) };
	struct kprim_limiter_take small = { .size = 8, .n = 1 };
	int res[4], fd;

	a.limiter.rate = 1;
	a.limiter.period_ns = 3600 * NSEC;
	a.limiter.burst = 1;
	fd = open_obj(self->sess, &a);
	ASSERT_LE(0, fd);
	prep_kprim(io_uring_get_sqe(&self->ring), fd, KPRIM_IOC_LIMITER_TAKE,
		   &t0, 0);
	prep_kprim(io_uring_get_sqe(&self->ring), fd, KPRIM_IOC_LIMITER_TAKE,
		   &small, 1);
	prep_kprim(io_uring_get_sqe(&self->ring), fd,
		   _IOWR(KPRIM_IOC_MAGIC, 0x7e, struct kprim_hdr), &t0, 2);
	prep_kprim(io_uring_get_sqe(&self->ring), fd, KPRIM_IOC_LIMITER_INFO,
		   (void *)8, 3);
	ASSERT_EQ(0, reap(&self->ring, 4, res, 4));
	EXPECT_EQ(-EINVAL, res[0]);
	EXPECT_EQ(-EINVAL, res[1]);
	EXPECT_EQ(-ENOTTY, res[2]);
	EXPECT_EQ(-EFAULT, res[3]);
	close(fd);
}

TEST_F(uring, limiter_takes_in_a_batch_obey_the_bucket)
{
	enum { N = 8 };
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL, 0);
	struct kprim_limiter_take t[N];
	struct kprim_limiter_info info = { .size = sizeof(info) };
	int res[N], fd, i, ok = 0, again = 0;

	a.limiter.rate = 1;
	a.limiter.period_ns = 3600 * NSEC;
	a.limiter.burst = 5;
	fd = open_obj(self->sess, &a);
	ASSERT_LE(0, fd);
	for (i = 0; i < N; i++) {
		t[i] = (struct kprim_limiter_take){
			.size = sizeof(t[i]), .n = 1, .wait = kt_wait(0, -1),
		};
		prep_kprim(io_uring_get_sqe(&self->ring), fd,
			   KPRIM_IOC_LIMITER_TAKE, &t[i], i);
	}
	ASSERT_EQ(0, reap(&self->ring, N, res, N));
	for (i = 0; i < N; i++) {
		ok += res[i] == 0;
		again += res[i] == -EAGAIN;
	}
	/* Exactly the burst is admitted, the rest told to come back. */
	EXPECT_EQ(5, ok);
	EXPECT_EQ(N - 5, again);
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &info));
	EXPECT_EQ(5, info.admitted);
	close(fd);
}

/*
 * Takes that cannot wait (timeout 0) run inline in io_uring_enter(): no
 * worker thread is ever started for them. (The fixture's ring is fresh:
 * the harness runs each test in its own process.)
 */
TEST_F(uring, non_blocking_takes_run_inline)
{
	enum { N = 16 };
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL, 0);
	struct kprim_limiter_take t[N];
	int res[N], fd, i;

	a.limiter.rate = 1000000;
	a.limiter.period_ns = NSEC;
	a.limiter.burst = 1000;
	fd = open_obj(self->sess, &a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, count_io_workers());
	for (i = 0; i < N; i++) {
		t[i] = (struct kprim_limiter_take){
			.size = sizeof(t[i]), .n = 1, .wait = kt_wait(0, -1),
		};
		prep_kprim(io_uring_get_sqe(&self->ring), fd,
			   KPRIM_IOC_LIMITER_TAKE, &t[i], i);
	}
	ASSERT_EQ(0, reap(&self->ring, N, res, N));
	for (i = 0; i < N; i++)
		EXPECT_EQ(0, res[i]);
	EXPECT_EQ(0, count_io_workers());
	close(fd);
}

TEST_F(uring, blocking_acquire_completes_after_release)
{
	struct kprim_sem_acquire acq = { .size = sizeof(acq), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1) };
	struct kprim_sem_release rel = { .size = sizeof(rel), .n = 1 };
	struct kprim_sem_info si = { .size = sizeof(si) };
	struct __kernel_timespec ts = { .tv_nsec = 200 * MSEC };
	struct io_uring_cqe *cqe;
	struct kprim_open n;
	int holder, waiter, i;
	char name[64];

	/* Two opens of one semaphore: holding is per open fd. */
	KT_NAME(name, "uring-sem");
	n = kt_open_args(KPRIM_KIND_SEM, name, KPRIM_OPEN_TRANSIENT);
	n.sem.permits = 1;
	holder = open_obj(self->sess, &n);
	ASSERT_LE(0, holder);
	n = kt_open_args(KPRIM_KIND_SEM, name, 0);
	waiter = kt_open(self->sess, &n);
	ASSERT_LE(0, waiter);
	ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_ACQUIRE, &acq));
	prep_kprim(io_uring_get_sqe(&self->ring), waiter, KPRIM_IOC_SEM_ACQUIRE,
		   &acq, 1);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	/* It waits: no completion while the permit is held. */
	EXPECT_EQ(-ETIME, io_uring_wait_cqe_timeout(&self->ring, &cqe, &ts));
	for (i = 0; i < 400; i++) {
		ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_INFO, &si));
		if (si.waiters == 1)
			break;
		usleep(5000);
	}
	EXPECT_EQ(1, si.waiters);
	ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_RELEASE, &rel));
	ASSERT_EQ(0, io_uring_wait_cqe(&self->ring, &cqe));
	EXPECT_EQ(1, cqe->user_data);
	EXPECT_EQ(0, cqe->res);
	io_uring_cqe_seen(&self->ring, cqe);
	/* The permit is held by the waiter's fd, as with the ioctl. */
	ASSERT_EQ(0, kt_ioctl(waiter, KPRIM_IOC_SEM_INFO, &si));
	EXPECT_EQ(1, si.held_by_me);
	/*
	 * Closing the fd returns the permit once its last reference goes.
	 * The completed request may still hold one: io_uring posts the CQE
	 * before it frees the request and drops the file. Allow it 2 s (VM
	 * slack).
	 */
	close(waiter);
	for (i = 0; i < 400; i++) {
		ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_INFO, &si));
		if (si.available == 1)
			break;
		usleep(5000);
	}
	EXPECT_EQ(1, si.available);
	close(holder);
}

/* KPRIM_IOC_WAIT_CANCEL through the ring, for the wait @ud on @fd. */
static void prep_wait_cancel(struct io_uring *ring, int fd,
			     struct kprim_wait_cancel *c, __u64 ud, __u64 tag)
{
	*c = (struct kprim_wait_cancel){ .size = sizeof(*c), .user_data = ud };
	prep_kprim(io_uring_get_sqe(ring), fd, KPRIM_IOC_WAIT_CANCEL, c, tag);
}

/*
 * A blocked take is cancelled promptly, leaves the queue and takes
 * nothing. IORING_OP_ASYNC_CANCEL does not reach it (io_uring does not
 * pass cancellations on to uring_cmd requests): that is -ENOENT and the
 * take waits on; KPRIM_IOC_WAIT_CANCEL ends it with -ECANCELED.
 */
TEST_F(uring, cancel_ends_a_blocked_take)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL, 0);
	struct kprim_limiter_take t = { .size = sizeof(t), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1) };
	struct kprim_limiter_info info = { .size = sizeof(info) };
	struct __kernel_timespec ts = { .tv_nsec = 100 * MSEC };
	struct kprim_wait_cancel wc;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int res[3] = { 1, 1, 1 }, fd, i;
	__u64 t0, dt;

	a.limiter.rate = 1;
	a.limiter.period_ns = 3600 * NSEC;
	a.limiter.burst = 1;
	a.limiter.initial = 0;
	a.flags = KPRIM_OPEN_INITIAL;
	fd = open_obj(self->sess, &a);
	ASSERT_LE(0, fd);
	prep_kprim(io_uring_get_sqe(&self->ring), fd, KPRIM_IOC_LIMITER_TAKE,
		   &t, 1);
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	for (i = 0; i < 400; i++) {
		ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &info));
		if (info.waiters == 1)
			break;
		usleep(5000);
	}
	ASSERT_EQ(1, info.waiters);
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	sqe->user_data = 2;
	ASSERT_EQ(0, reap(&self->ring, 1, res, 3));
	EXPECT_EQ(-ENOENT, res[2]);
	EXPECT_EQ(-ETIME, io_uring_wait_cqe_timeout(&self->ring, &cqe, &ts));
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &info));
	EXPECT_EQ(1, info.waiters);

	t0 = kt_now_ns();
	prep_wait_cancel(&self->ring, fd, &wc, 1, 2);
	ASSERT_EQ(0, reap(&self->ring, 2, res, 3));
	dt = kt_now_ns() - t0;
	/* The take left the queue. */
	EXPECT_EQ(-ECANCELED, res[1]);
	EXPECT_EQ(1, res[2]);	/* one wait ended */
	EXPECT_LT(dt, 2 * NSEC);	/* prompt, with VM slack */
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &info));
	EXPECT_EQ(0, info.waiters);
	EXPECT_EQ(0, info.admitted);
	close(fd);
}

/* --- one SQ slot: recycled requests, re-issue and the argument --------- */

/*
 * A ring with one SQ entry: every SQE of a test comes from the same slot,
 * and io_uring recycles the same few requests for them.
 */
static int one_slot_ring(struct io_uring *ring)
{
	return io_uring_queue_init(1, ring, 0);
}

/* Submit one kprim command from the slot and wait for its completion. */
static int run1(struct io_uring *ring, int fd, unsigned int cmd, void *arg,
		unsigned int sqe_flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	prep_kprim(sqe, fd, cmd, arg, 77);
	sqe->flags |= sqe_flags;
	ret = io_uring_submit(ring);
	if (ret != 1)
		return ret < 0 ? ret : -EIO;
	ret = io_uring_wait_cqe(ring, &cqe);
	if (ret)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return ret;
}

/* Two fds (two holders) of one new semaphore of @permits. */
static void two_sem_fds(struct __test_metadata *_metadata, int sess,
			__u64 permits, int *a, int *b)
{
	struct kprim_open n;
	char name[64];

	KT_NAME(name, "uring-sem2");
	n = kt_open_args(KPRIM_KIND_SEM, name,
			 KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	n.sem.permits = permits;
	*a = kt_open(sess, &n);
	ASSERT_LE(0, *a);
	n = kt_open_args(KPRIM_KIND_SEM, name, 0);
	*b = kt_open(sess, &n);
	ASSERT_LE(0, *b);
}

static struct kprim_sem_info sem_info_of(int fd)
{
	struct kprim_sem_info si = { .size = sizeof(si) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &si))
		memset(&si, 0xff, sizeof(si));
	return si;
}

static bool wait_sem_waiters(int fd, __u64 n)
{
	for (int i = 0; i < 2000; i++) {
		if (sem_info_of(fd).waiters == n)
			return true;
		usleep(5000);
	}
	return false;
}

/*
 * An acquire that waits (queued, completed later by the grant), then a
 * release from the same slot: the release must parse its own argument,
 * not the acquire's (which a recycled request's leftover state would give
 * it).
 */
TEST(one_slot_queued_acquire_then_release)
{
	struct kprim_sem_acquire acq = { .size = sizeof(acq), .n = 1,
		.wait = kt_wait(10 * NSEC, -1) };
	struct kprim_sem_acquire try1 = { .size = sizeof(try1), .n = 1,
		.wait = kt_wait(0, -1) };
	struct kprim_sem_release rel = { .size = sizeof(rel), .n = 1 };
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	int sess, holder, waiter, round, i;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, one_slot_ring(&ring));
	two_sem_fds(_metadata, sess, 1, &holder, &waiter);
	/*
	 * 6.1 recycles a request completed off the submit path only once
	 * more than 32 such completions have piled up: run well past that.
	 */
	for (round = 0; round < 48; round++) {
		ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_ACQUIRE, &try1));
		prep_kprim(io_uring_get_sqe(&ring), waiter,
			   KPRIM_IOC_SEM_ACQUIRE, &acq, 1);
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_TRUE(wait_sem_waiters(holder, 1));
		ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_RELEASE, &rel));
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		ASSERT_EQ(0, cqe->res);
		io_uring_cqe_seen(&ring, cqe);
		ASSERT_EQ(1, sem_info_of(waiter).held_by_me);
		/* Same slot, on requests io_uring recycles in turn. */
		for (i = 0; i < 8; i++) {
			struct kprim_sem_info si = { .size = sizeof(si) };

			ASSERT_EQ(0, run1(&ring, waiter, KPRIM_IOC_SEM_INFO,
					  &si, 0))
				TH_LOG("round %d info %d", round, i);
			ASSERT_EQ(1, si.held_by_me);
		}
		ASSERT_EQ(0, run1(&ring, waiter, KPRIM_IOC_SEM_RELEASE, &rel, 0))
			TH_LOG("round %d", round);
		ASSERT_EQ(0, sem_info_of(waiter).held_by_me);
		ASSERT_EQ(1, sem_info_of(holder).available);
	}
	io_uring_queue_exit(&ring);
	close(waiter);
	close(holder);
	close(sess);
}

/*
 * A blocking acquire queued behind another is cancelled while queued.
 * Later commands from the same slot, on recycled requests, must each run
 * with their own argument.
 */
TEST(cancelled_queued_request_leaves_no_argument_behind)
{
	struct kprim_sem_acquire a_inf = { .size = sizeof(a_inf), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1) };
	struct kprim_sem_acquire a_tmo = { .size = sizeof(a_tmo), .n = 1,
		.wait = kt_wait(10 * NSEC, -1) };
	struct kprim_sem_acquire try1 = { .size = sizeof(try1), .n = 1,
		.wait = kt_wait(0, -1) };
	struct kprim_wait_cancel wc;
	struct io_uring ring;
	int res[4], sess, holder, waiter, i;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, one_slot_ring(&ring));
	two_sem_fds(_metadata, sess, 1, &holder, &waiter);
	ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_ACQUIRE, &try1));

	/* 1 waits at the head of the queue, 2 behind it. */
	prep_kprim(io_uring_get_sqe(&ring), waiter, KPRIM_IOC_SEM_ACQUIRE,
		   &a_inf, 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_TRUE(wait_sem_waiters(holder, 1));
	prep_kprim(io_uring_get_sqe(&ring), waiter, KPRIM_IOC_SEM_ACQUIRE,
		   &a_tmo, 2);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_TRUE(wait_sem_waiters(holder, 2));
	/* 2 is cancelled before it could ever be granted. */
	prep_wait_cancel(&ring, waiter, &wc, 2, 3);
	memset(res, 0x7f, sizeof(res));
	ASSERT_EQ(0, reap(&ring, 2, res, 4));
	EXPECT_EQ(-ECANCELED, res[2]);
	EXPECT_EQ(1, res[3]);

	/*
	 * The next requests from the slot: on 6.12 the first of them reuses
	 * the cancelled one (freed last), leftover pdu and all.
	 */
	for (i = 0; i < 8; i++) {
		struct kprim_sem_info si = { .size = sizeof(si) };

		ASSERT_EQ(0, run1(&ring, waiter, KPRIM_IOC_SEM_INFO, &si, 0))
			TH_LOG("info %d", i);
		EXPECT_EQ(1, si.permits);
		EXPECT_EQ(1, si.waiters);
	}

	/* 1 is cancelled in its wait and leaves nothing queued. */
	prep_wait_cancel(&ring, waiter, &wc, 1, 3);
	ASSERT_EQ(0, reap(&ring, 2, res, 4));
	EXPECT_EQ(-ECANCELED, res[1]);
	EXPECT_EQ(1, res[3]);
	EXPECT_EQ(0, sem_info_of(holder).waiters);

	/*
	 * More, every other one forced to a worker (IOSQE_ASYNC): on 6.1 that
	 * is what gets a request completed off the submit path recycled.
	 */
	for (i = 0; i < 80; i++) {
		struct kprim_sem_info si = { .size = sizeof(si) };

		ASSERT_EQ(0, run1(&ring, waiter, KPRIM_IOC_SEM_INFO, &si,
				  i % 2 ? IOSQE_ASYNC : 0))
			TH_LOG("info %d", i);
		EXPECT_EQ(1, si.permits);
		EXPECT_EQ(0, si.held_by_me);
	}
	EXPECT_EQ(0, sem_info_of(holder).waiters);
	io_uring_queue_exit(&ring);
	close(waiter);
	close(holder);
	close(sess);
}

/*
 * A try (timeout 0) that fails completes once, inline, with -EAGAIN: it
 * is counted once and no io_uring worker is started to run it again.
 */
TEST_F(uring, failed_try_completes_once_inline)
{
	enum { N = 4 };
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL, 0);
	struct kprim_limiter_take t[N];
	struct kprim_limiter_info info = { .size = sizeof(info) };
	struct kprim_sem_acquire acq[N];
	struct kprim_sem_acquire one = { .size = sizeof(one), .n = 1,
		.wait = kt_wait(0, -1) };
	struct kprim_sem_info si;
	int res[2 * N], fd, holder, waiter, i;

	a.limiter.rate = 1;
	a.limiter.period_ns = 3600 * NSEC;
	a.limiter.burst = 1;
	fd = open_obj(self->sess, &a);
	ASSERT_LE(0, fd);
	two_sem_fds(_metadata, self->sess, 1, &holder, &waiter);
	ASSERT_EQ(0, kt_ioctl(holder, KPRIM_IOC_SEM_ACQUIRE, &one));
	t[0] = (struct kprim_limiter_take){
		.size = sizeof(t[0]), .n = 1, .wait = kt_wait(0, -1),
	};
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t[0]));
	ASSERT_EQ(0, count_io_workers());

	for (i = 0; i < N; i++) {
		t[i] = (struct kprim_limiter_take){
			.size = sizeof(t[i]), .n = 1, .wait = kt_wait(0, -1),
		};
		prep_kprim(io_uring_get_sqe(&self->ring), fd,
			   KPRIM_IOC_LIMITER_TAKE, &t[i], i);
		acq[i] = (struct kprim_sem_acquire){
			.size = sizeof(acq[i]), .n = 1, .wait = kt_wait(0, -1),
		};
		prep_kprim(io_uring_get_sqe(&self->ring), waiter,
			   KPRIM_IOC_SEM_ACQUIRE, &acq[i], N + i);
	}
	memset(res, 0x7f, sizeof(res));
	ASSERT_EQ(0, reap(&self->ring, 2 * N, res, 2 * N));
	for (i = 0; i < 2 * N; i++)
		EXPECT_EQ(-EAGAIN, res[i]) TH_LOG("request %d", i);
	for (i = 0; i < N; i++)
		EXPECT_LT(0, t[i].retry_after_ns);
	/* Nothing runs them again later either. */
	usleep(200000);
	EXPECT_EQ(0, count_io_workers());
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &info));
	EXPECT_EQ(N, info.throttled);
	EXPECT_EQ(1, info.admitted);
	EXPECT_EQ(0, info.waiters);
	si = sem_info_of(waiter);
	EXPECT_EQ(0, si.held_by_me);
	EXPECT_EQ(1, si.acquired);
	EXPECT_EQ(0, si.waiters);
	close(waiter);
	close(holder);
	close(fd);
}

/* The permit holder of the race below: grabs and returns the permit. */
struct churn {
	int fd;
	volatile bool stop;
	unsigned int seed;
	long errors;
};

static void *churn_permit(void *arg)
{
	struct churn *c = arg;
	struct kprim_sem_acquire acq = { .size = sizeof(acq), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1) };
	struct kprim_sem_release rel = { .size = sizeof(rel), .n = 1 };

	while (!c->stop) {
		if (kt_ioctl(c->fd, KPRIM_IOC_SEM_ACQUIRE, &acq)) {
			c->errors++;
			break;
		}
		usleep(rand_r(&c->seed) % 2000);
		if (kt_ioctl(c->fd, KPRIM_IOC_SEM_RELEASE, &rel))
			c->errors++;
		usleep(rand_r(&c->seed) % 1000);
	}
	return NULL;
}

/*
 * The recycle window under load: blocking acquires are queued, granted,
 * time out or are cancelled (KPRIM_IOC_WAIT_CANCEL) at random while the
 * submitter reuses the one SQ slot at once for other commands, some
 * forced to the (single) worker for their issue (IOSQE_ASYNC). A thread
 * takes and returns the permit meanwhile. Every command must act on its
 * own argument: any -E2BIG/-EINVAL/-EFAULT, wrong counts or a lost permit
 * fail.
 */
TEST(reissue_and_recycle_race)
{
	unsigned int workers[2] = { 1, 1 };
	struct kprim_sem_release rel = { .size = sizeof(rel), .n = 1 };
	struct churn c = { .seed = 1 };
	struct io_uring ring;
	pthread_t th;
	__u64 end, rounds = 0, granted = 0;
	int sess, holder, waiter;
	unsigned int seed = 7;

	sess = kt_session();
	if (sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, one_slot_ring(&ring));
	ASSERT_EQ(0, io_uring_register_iowq_max_workers(&ring, workers));
	two_sem_fds(_metadata, sess, 1, &holder, &waiter);
	c.fd = holder;
	ASSERT_EQ(0, pthread_create(&th, NULL, churn_permit, &c));

	end = kt_now_ns() + 3 * NSEC;
	while (kt_now_ns() < end && !_metadata->exit_code) {
		struct kprim_sem_acquire acq = { .size = sizeof(acq), .n = 1,
			.wait = kt_wait((1 + rand_r(&seed) % 5) * MSEC, -1) };
		struct kprim_sem_info si = { .size = sizeof(si) };
		struct io_uring_sqe *sqe;
		int res[4] = { 1, 1, 1, 1 }, n = 2;
		bool cancel = rand_r(&seed) % 3 == 0;
		struct kprim_wait_cancel wc;

		sqe = io_uring_get_sqe(&ring);
		prep_kprim(sqe, waiter, KPRIM_IOC_SEM_ACQUIRE, &acq, 1);
		if (rand_r(&seed) % 4 == 0)
			sqe->flags |= IOSQE_ASYNC;
		ASSERT_EQ(1, io_uring_submit(&ring));
		/* The slot is free again: reuse it at once. */
		sqe = io_uring_get_sqe(&ring);
		prep_kprim(sqe, waiter, KPRIM_IOC_SEM_INFO, &si, 2);
		if (rand_r(&seed) % 4 == 0)
			sqe->flags |= IOSQE_ASYNC;
		ASSERT_EQ(1, io_uring_submit(&ring));
		if (cancel) {
			prep_wait_cancel(&ring, waiter, &wc, 1, 3);
			n++;
		}
		ASSERT_EQ(0, reap(&ring, n, res, 4));
		ASSERT_EQ(0, res[2]) TH_LOG("info: %d", res[2]);
		ASSERT_EQ(1, si.permits);
		ASSERT_TRUE(res[1] == 0 || res[1] == -ETIMEDOUT ||
			    (cancel && res[1] == -ECANCELED))
			TH_LOG("acquire: %d", res[1]);
		if (cancel)
			ASSERT_TRUE(res[3] == 1 ? res[1] == -ECANCELED :
				    res[3] == -ENOENT && res[1] != -ECANCELED)
				TH_LOG("cancel: %d, acquire %d", res[3], res[1]);
		if (res[1] == 0) {
			granted++;
			ASSERT_EQ(1, sem_info_of(waiter).held_by_me);
			ASSERT_EQ(0, run1(&ring, waiter, KPRIM_IOC_SEM_RELEASE,
					  &rel, rand_r(&seed) % 2 ?
					  IOSQE_ASYNC : 0));
		}
		ASSERT_EQ(0, sem_info_of(waiter).held_by_me);
		rounds++;
	}
	c.stop = true;
	pthread_join(th, NULL);
	EXPECT_EQ(0, c.errors);
	TH_LOG("%llu rounds, %llu granted through the ring",
	       (unsigned long long)rounds, (unsigned long long)granted);
	EXPECT_LT(10, rounds);
	EXPECT_EQ(0, sem_info_of(holder).held);
	EXPECT_EQ(0, sem_info_of(holder).waiters);
	io_uring_queue_exit(&ring);
	close(waiter);
	close(holder);
	close(sess);
}

TEST_HARNESS_MAIN
