// SPDX-License-Identifier: GPL-2.0
/*
 * kprim over io_uring: IORING_OP_URING_CMD on object fds runs the same
 * operations as the ioctls, in batches, with the same errnos; blocking ones
 * complete later and can be cancelled.
 */
#include <dirent.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "kselftest_harness.h"
#include "kprim_test.h"

#define NSEC	1000000000ull
#define MSEC	1000000ull

/* Queue one kprim command: @cmd is the ioctl, @arg its argument. */
static void prep_kprim(struct io_uring_sqe *sqe, int fd, unsigned int cmd,
		       void *arg, __u64 tag)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = cmd;
	sqe->addr3 = (uintptr_t)arg;	/* first 8 bytes of the command area */
	sqe->user_data = tag;
}

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

/* Threads of this process named like io_uring's workers ("iou-wrk-N"). */
static int count_io_workers(void)
{
	char path[300], comm[32];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/proc/self/task");

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "iou-wrk", 7))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
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
	 * before its worker drops the file. Allow it 2 s (VM slack).
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

TEST_F(uring, cancel_ends_a_blocked_take)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL, 0);
	struct kprim_limiter_take t = { .size = sizeof(t), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, -1) };
	struct kprim_limiter_info info = { .size = sizeof(info) };
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
	t0 = kt_now_ns();
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	sqe->user_data = 2;
	ASSERT_EQ(0, reap(&self->ring, 2, res, 3));
	dt = kt_now_ns() - t0;
	/* The waiter saw a signal and left the queue. */
	EXPECT_EQ(-EINTR, res[1]);
	EXPECT_LT(dt, 2 * NSEC);	/* prompt, with VM slack */
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &info));
	EXPECT_EQ(0, info.waiters);
	EXPECT_EQ(0, info.admitted);
	close(fd);
}

TEST_HARNESS_MAIN
