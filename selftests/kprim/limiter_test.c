// SPDX-License-Identifier: GPL-2.0
/*
 * kprim token-bucket limiter: every operation and error path, blocking
 * behaviour (timeout, signal, cancel eventfd, FIFO, death of a waiter) and
 * the admission bound under competing processes.
 *
 * Timing bounds: the tests run in an emulated (TCG) VM under KASAN, where
 * scheduling can lag by hundreds of milliseconds. Lower bounds are exact
 * (a wait never ends early); upper bounds allow a stated slack.
 */
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_limiter.h"
#include "signal_child.h"

#define NSEC	1000000000ull
#define MSEC	1000000ull
/* Slack for wake-ups in a slow emulated VM; stated in every bound. */
#define SLACK_NS	(1500 * MSEC)

static long take(int fd, __u64 n, __u64 timeout_ns, int cancel_fd,
		 __u64 *retry_after)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = n,
		.wait = kt_wait(timeout_ns, cancel_fd),
	};
	long ret = kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t);

	if (retry_after)
		*retry_after = t.retry_after_ns;
	return ret;
}

/* Wait (bounded) until @fd has @n waiters; returns the count seen. */
static __u64 wait_waiters(int fd, __u64 n)
{
	for (int i = 0; i < 1000; i++) {
		__u64 w = kt_lim_info(fd).waiters;

		if (w == n)
			return w;
		usleep(5000);
	}
	return kt_lim_info(fd).waiters;
}

FIXTURE(lim) {
	int sess;
};

FIXTURE_SETUP(lim)
{
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
}

FIXTURE_TEARDOWN(lim)
{
	if (self->sess >= 0)
		close(self->sess);
}

TEST_F(lim, take_until_empty_then_eagain)
{
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, take(fd, 2, 0, -1, NULL));
	EXPECT_EQ(0, take(fd, 1, 0, -1, NULL));
	EXPECT_EQ(-EAGAIN, take(fd, 1, 0, -1, NULL));
	EXPECT_EQ(3, kt_lim_info(fd).admitted);
	EXPECT_EQ(1, kt_lim_info(fd).throttled);
	EXPECT_EQ(0, kt_lim_info(fd).tokens);
	close(fd);
}

TEST_F(lim, retry_after_is_exact)
{
	/* 1 token per 10 s: after draining, 2 tokens need 20 s minus elapsed. */
	__u64 t0, t1, retry;
	int fd;

	t0 = kt_now_ns();
	fd = kt_lim_open(self->sess, 1, 10 * NSEC, 2, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(-EAGAIN, take(fd, 2, 0, -1, &retry));
	t1 = kt_now_ns();
	EXPECT_LE(retry, 20 * NSEC);
	EXPECT_GE(retry, 20 * NSEC - (t1 - t0));
	close(fd);
}

TEST_F(lim, initial_fill_is_honoured)
{
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 10, 4);

	ASSERT_LE(0, fd);
	EXPECT_EQ(4, kt_lim_info(fd).tokens);
	EXPECT_EQ(4, kt_lim_info(fd).params.initial);
	close(fd);
}

TEST_F(lim, more_than_burst_einval)
{
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, take(fd, 4, KPRIM_TIMEOUT_INFINITE, -1, NULL));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	close(fd);
}

TEST_F(lim, take_zero_einval)
{
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, take(fd, 0, 0, -1, NULL));
	close(fd);
}

TEST_F(lim, take_unknown_flags_einval)
{
	struct kprim_limiter_take t = { .size = sizeof(t), .flags = 1, .n = 1,
					.wait = kt_wait(0, -1) };
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	close(fd);
}

TEST_F(lim, take_wait_reserved_einval)
{
	struct kprim_limiter_take t = { .size = sizeof(t), .n = 1,
					.wait = kt_wait(0, -1) };
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	t.wait.reserved = 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	close(fd);
}

TEST_F(lim, take_small_struct_einval)
{
	struct kprim_limiter_take t = { .size = 16, .n = 1 };
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t));
	close(fd);
}

TEST_F(lim, take_large_struct_nonzero_tail_e2big)
{
	struct { struct kprim_limiter_take t; __u64 x; } big;
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	memset(&big, 0, sizeof(big));
	big.t.size = sizeof(big);
	big.t.n = 1;
	big.t.wait.cancel_fd = -1;
	big.x = 1;
	EXPECT_EQ(-E2BIG, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &big));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	close(fd);
}

/*
 * The argument copy reads the size word and the struct in one go when the
 * size is this module's: what it does at the edge of a mapping must be
 * what a word-by-word copy does. A size word in a page's last 4 bytes is
 * read (-EINVAL: too small); a struct whose tail is unmapped is -EFAULT; a
 * struct ending exactly at the edge is taken. Nothing changes on a refusal.
 */
TEST_F(lim, take_struct_at_page_edge)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct kprim_limiter_take t = { .size = sizeof(t), .n = 1,
					.wait = kt_wait(0, -1) };
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);
	char *map;
	__u32 small = 4;

	ASSERT_LE(0, fd);
	map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mprotect(map + pg, pg, PROT_NONE));

	memcpy(map + pg - sizeof(small), &small, sizeof(small));
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE,
				    map + pg - sizeof(small)));
	memcpy(map + pg - 32, &t, 32);
	EXPECT_EQ(-EFAULT, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, map + pg - 32));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	EXPECT_EQ(0, kt_lim_info(fd).admitted);

	memcpy(map + pg - sizeof(t), &t, sizeof(t));
	EXPECT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, map + pg - sizeof(t)));
	EXPECT_EQ(2, kt_lim_info(fd).tokens);
	munmap(map, 2 * pg);
	close(fd);
}

TEST_F(lim, take_bad_pointer_efault)
{
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, (void *)64));
	close(fd);
}

TEST_F(lim, cancel_fd_not_open_ebadf)
{
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EBADF, take(fd, 1, 0, 9999, NULL));
	EXPECT_EQ(-EBADF, take(fd, 1, 0, -7, NULL));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	close(fd);
}

TEST_F(lim, cancel_fd_not_eventfd_einval)
{
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, take(fd, 1, 0, self->sess, NULL));
	EXPECT_EQ(3, kt_lim_info(fd).tokens);
	close(fd);
}

TEST_F(lim, unknown_ioctl_enotty)
{
	struct kprim_sem_info si = { .size = sizeof(si) };
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOTTY, kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &si));
	EXPECT_EQ(-ENOTTY, kt_ioctl(fd, KPRIM_IOC_OPEN, &si));
	close(fd);
}

TEST_F(lim, info_bad_input)
{
	struct kprim_limiter_info i = { .size = sizeof(i), .flags = 1 };
	int fd = kt_lim_open(self->sess, 1, NSEC, 3, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i));
	i.flags = 0;
	i.size = 8;
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i));
	EXPECT_EQ(-EFAULT, kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, (void *)8));
	close(fd);
}

TEST_F(lim, blocking_take_admitted_at_due_time)
{
	/* 10/s, empty: a token is due 100 ms after creation. */
	__u64 t0, dt;
	int fd;

	t0 = kt_now_ns();
	fd = kt_lim_open(self->sess, 10, NSEC, 1, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, take(fd, 1, 10 * NSEC, -1, NULL));
	dt = kt_now_ns() - t0;
	EXPECT_GE(dt, 100 * MSEC);
	EXPECT_LT(dt, 100 * MSEC + SLACK_NS);
	close(fd);
}

TEST_F(lim, blocking_take_times_out)
{
	__u64 t0, dt, retry = 0;
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);

	ASSERT_LE(0, fd);
	t0 = kt_now_ns();
	EXPECT_EQ(-ETIMEDOUT, take(fd, 1, 200 * MSEC, -1, &retry));
	dt = kt_now_ns() - t0;
	EXPECT_GE(dt, 200 * MSEC);
	EXPECT_LT(dt, 200 * MSEC + SLACK_NS);
	/* Nearly an hour still to go, reported on timeout. */
	EXPECT_GT(retry, 3500 * NSEC);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	close(fd);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(lim, signal_interrupts_wait)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	__u64 t0, dt;
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	t0 = kt_now_ns();
	alarm(1);
	EXPECT_EQ(-EINTR, take(fd, 1, KPRIM_TIMEOUT_INFINITE, -1, NULL));
	dt = kt_now_ns() - t0;
	EXPECT_GE(dt, 900 * MSEC);	/* alarm(1) may fire up to 1 s early */
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	close(fd);
}

/* Child: one take on @fd, reported; exits 0 if it returned @want. */
static void child_take(int fd, __u64 timeout_ns, long want)
{
	uint64_t t0 = kt_now_ns();

	kt_report->ret = take(fd, 1, timeout_ns, -1, NULL);
	kt_report->elapsed_ns = kt_now_ns() - t0;
	_exit(kt_report->ret != want);
}

/*
 * Stops and SA_RESTART handlers restart a waiting take instead of ending
 * it: after three SIGSTOP/SIGCONT rounds and a burst of handled signals,
 * the take is still waiting and is admitted when tokens come.
 */
TEST_F(lim, stopped_and_signalled_take_is_admitted)
{
	struct kprim_limiter_set s = { .size = sizeof(s),
				       .flags = KPRIM_LIMITER_SET_RATE };
	struct kt_child_report *r = kt_report_map();
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	int status, i;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_LE(0, fd);
	/* Caught before the fork: the child must never die of it. */
	ASSERT_EQ(0, kt_catch_signal(SIGUSR1, true));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_take(fd, KPRIM_TIMEOUT_INFINITE, 0);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, wait_waiters(fd, 1));
		ASSERT_TRUE(kt_stop(pid));
		/* stopped: not queued */
		EXPECT_EQ(0, kt_lim_info(fd).waiters);
		ASSERT_EQ(0, kill(pid, SIGCONT));
	}
	for (i = 0; i < 30; i++) {
		kill(pid, SIGUSR1);
		usleep(10000);
	}
	ASSERT_EQ(1, wait_waiters(fd, 1));
	EXPECT_EQ(1, r->ret);	/* still in its call */
	s.params.rate = 1000;
	s.params.period_ns = NSEC;
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(kt_child_ok(status)) TH_LOG("take: %ld", r->ret);
	EXPECT_LT(0, r->signals);
	EXPECT_EQ(1, kt_lim_info(fd).admitted);
	close(fd);
}

/*
 * With SA_RESTART signals every 10 ms, a take with a 500 ms timeout ends
 * with -ETIMEDOUT after ~500 ms: each restart waits only what was left.
 */
TEST_F(lim, restarted_take_keeps_its_deadline)
{
	struct kt_child_report *r = kt_report_map();
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	__u64 timeout = 500 * MSEC;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_LE(0, fd);
	/* Caught before the fork: the child must never die of it. */
	ASSERT_EQ(0, kt_catch_signal(SIGUSR1, true));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_take(fd, timeout, -ETIMEDOUT);
	status = kt_pester(pid, SIGUSR1, 10000, 5 * NSEC);
	EXPECT_TRUE(kt_child_ok(status)) TH_LOG("take: %ld", r->ret);
	EXPECT_LE(timeout, r->elapsed_ns);
	EXPECT_GT(timeout + SLACK_NS, r->elapsed_ns);
	EXPECT_LT(5, r->signals);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	EXPECT_EQ(0, kt_lim_info(fd).admitted);
	close(fd);
}

static void *signal_eventfd(void *arg)
{
	__u64 one = 1;

	usleep(200 * 1000);
	if (write(*(int *)arg, &one, sizeof(one)) != sizeof(one))
		return (void *)1;
	return NULL;
}

TEST_F(lim, cancel_eventfd_ends_wait)
{
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	int efd = eventfd(0, EFD_CLOEXEC);
	pthread_t th;
	__u64 t0, dt;

	ASSERT_LE(0, fd);
	ASSERT_LE(0, efd);
	t0 = kt_now_ns();
	ASSERT_EQ(0, pthread_create(&th, NULL, signal_eventfd, &efd));
	EXPECT_EQ(-ECANCELED, take(fd, 1, KPRIM_TIMEOUT_INFINITE, efd, NULL));
	dt = kt_now_ns() - t0;
	pthread_join(th, NULL);
	EXPECT_GE(dt, 200 * MSEC);
	EXPECT_LT(dt, 200 * MSEC + SLACK_NS);
	EXPECT_EQ(0, kt_lim_info(fd).waiters);
	close(efd);
	close(fd);
}

TEST_F(lim, cancel_eventfd_already_signalled)
{
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	int efd = eventfd(1, EFD_CLOEXEC);

	ASSERT_LE(0, fd);
	ASSERT_LE(0, efd);
	EXPECT_EQ(-ECANCELED, take(fd, 1, KPRIM_TIMEOUT_INFINITE, efd, NULL));
	close(efd);
	close(fd);
}

static long set_rate(int fd, __u64 rate, __u64 period_ns)
{
	struct kprim_limiter_set s = { .size = sizeof(s),
				       .flags = KPRIM_LIMITER_SET_RATE };

	s.params.rate = rate;
	s.params.period_ns = period_ns;
	return kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s);
}

/* Shared memory log of the order in which children were admitted. */
struct order_log {
	int next;
	int who[8];
};

static void child_take_and_log(int fd, __u64 n, int id, struct order_log *log)
{
	long ret = take(fd, n, 30 * NSEC, -1, NULL);

	if (ret == 0)
		log->who[__atomic_fetch_add(&log->next, 1, __ATOMIC_SEQ_CST)] = id;
	_exit(ret ? 1 : 0);
}

TEST_F(lim, fifo_order_of_three_waiters)
{
	struct order_log *log = mmap(NULL, sizeof(*log), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	/*
	 * 1/hour, empty: nobody is admitted while the children queue, one at
	 * a time so their order is known (however slow fork is); then 20/s
	 * admits them every 50 ms.
	 */
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	pid_t pids[3];
	int i, status;

	ASSERT_NE(MAP_FAILED, log);
	ASSERT_LE(0, fd);
	memset(log, 0, sizeof(*log));
	for (i = 0; i < 3; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			child_take_and_log(fd, 1, i, log);
		ASSERT_EQ(i + 1, wait_waiters(fd, i + 1));
	}
	ASSERT_EQ(0, set_rate(fd, 20, NSEC));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
	ASSERT_EQ(3, log->next);
	EXPECT_EQ(0, log->who[0]);
	EXPECT_EQ(1, log->who[1]);
	EXPECT_EQ(2, log->who[2]);
	munmap(log, sizeof(*log));
	close(fd);
}

TEST_F(lim, large_head_not_overtaken_by_small_takes)
{
	struct order_log *log = mmap(NULL, sizeof(*log), PROT_READ | PROT_WRITE,
				     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	/* 1/hour while they queue (1 token in the bucket), then 20/s. */
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 4, 1);
	pid_t big, small;
	int status;

	ASSERT_NE(MAP_FAILED, log);
	ASSERT_LE(0, fd);
	memset(log, 0, sizeof(*log));
	big = fork();
	ASSERT_LE(0, big);
	if (big == 0)
		child_take_and_log(fd, 4, 0, log);
	ASSERT_EQ(1, wait_waiters(fd, 1));
	small = fork();
	ASSERT_LE(0, small);
	if (small == 0)
		child_take_and_log(fd, 1, 1, log);
	/* The small take would fit in the 1 token there, yet it queues. */
	ASSERT_EQ(2, wait_waiters(fd, 2));
	/* A non-blocking taker may not jump the queue either. */
	EXPECT_EQ(-EAGAIN, take(fd, 1, 0, -1, NULL));
	ASSERT_EQ(0, set_rate(fd, 20, NSEC));
	ASSERT_EQ(big, waitpid(big, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(small, waitpid(small, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, log->who[0]);
	EXPECT_EQ(1, log->who[1]);
	munmap(log, sizeof(*log));
	close(fd);
}

TEST_F(lim, killed_waiter_leaves_nothing_behind)
{
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	int status, i;

	ASSERT_LE(0, fd);
	for (i = 0; i < 20; i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(take(fd, 1, KPRIM_TIMEOUT_INFINITE, -1, NULL) ? 1 : 0);
		ASSERT_EQ(1, wait_waiters(fd, 1));
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status));
		EXPECT_EQ(0, wait_waiters(fd, 0));
	}
	EXPECT_EQ(0, kt_lim_info(fd).admitted);
	close(fd);
}

TEST_F(lim, set_rate_reevaluates_waiter_at_once)
{
	struct kprim_limiter_set s = { .size = sizeof(s),
				       .flags = KPRIM_LIMITER_SET_RATE };
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 1, 0);
	__u64 t0, dt;
	int status;
	pid_t pid;

	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(take(fd, 1, 60 * NSEC, -1, NULL) ? 1 : 0);
	ASSERT_EQ(1, wait_waiters(fd, 1));
	t0 = kt_now_ns();
	s.params.rate = 1000;
	s.params.period_ns = NSEC;
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	dt = kt_now_ns() - t0;
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_LT(dt, 1 * MSEC + SLACK_NS);	/* due 1 ms after the change */
	EXPECT_EQ(1000, kt_lim_info(fd).params.rate);
	close(fd);
}

TEST_F(lim, lowering_burst_fails_waiter_that_cannot_fit)
{
	struct kprim_limiter_set s = { .size = sizeof(s),
				       .flags = KPRIM_LIMITER_SET_BURST };
	int fd = kt_lim_open(self->sess, 1, 3600 * NSEC, 5, 0);
	int status;
	pid_t pid;

	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(take(fd, 5, 60 * NSEC, -1, NULL) == -EINVAL ? 0 : 1);
	ASSERT_EQ(1, wait_waiters(fd, 1));
	s.params.burst = 2;
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(2, kt_lim_info(fd).params.burst);
	close(fd);
}

TEST_F(lim, set_bad_input)
{
	struct kprim_limiter_set s = { .size = sizeof(s) };
	int fd = kt_lim_open(self->sess, 7, NSEC, 5, -1);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s)); /* no field */
	s.flags = 1u << 7;
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	s.flags = KPRIM_LIMITER_SET_RATE;
	s.params.rate = 0;
	s.params.period_ns = NSEC;
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	s.params.rate = 1;
	s.params.period_ns = 0;
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	s.flags = KPRIM_LIMITER_SET_BURST;
	s.params.burst = 0;
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	s.params.burst = ~0ull;
	EXPECT_EQ(-EOVERFLOW, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	s.params.burst = 3;
	s.params.initial = 1;	/* initial cannot be set */
	EXPECT_EQ(-EINVAL, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	/* Nothing changed. */
	EXPECT_EQ(7, kt_lim_info(fd).params.rate);
	EXPECT_EQ(5, kt_lim_info(fd).params.burst);
	close(fd);
}

TEST_F(lim, poll_readable_when_a_token_is_there)
{
	/* 1/s: a stall of a second would be needed to see a token early. */
	int fd = kt_lim_open(self->sess, 1, NSEC, 1, -1);
	struct pollfd p = { .events = POLLIN };
	__u64 t0, dt;

	ASSERT_LE(0, fd);
	p.fd = fd;
	EXPECT_EQ(1, poll(&p, 1, 0));
	ASSERT_EQ(0, take(fd, 1, 0, -1, NULL));
	EXPECT_EQ(0, poll(&p, 1, 0));
	t0 = kt_now_ns();
	/* The next token is due within 1 s: poll must wake for it. */
	EXPECT_EQ(1, poll(&p, 1, 5000));
	dt = kt_now_ns() - t0;
	EXPECT_LT(dt, NSEC + SLACK_NS);
	EXPECT_EQ(0, take(fd, 1, 0, -1, NULL));
	close(fd);
}

/*
 * Accuracy: NPROC processes hammer one named limiter with non-blocking
 * takes; the tokens admitted over the run may never exceed
 * burst + rate * t / period, t measured from creation to the last take.
 */
#define NPROC	4
TEST_F(lim, competing_processes_obey_the_bound)
{
	const __u64 rate = 2000, burst = 50, run_ns = 2 * NSEC;
	__u64 *counts = mmap(NULL, NPROC * sizeof(__u64), PROT_READ | PROT_WRITE,
			     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct kprim_open a;
	char name[64];
	__u64 t0, t_end, admitted = 0, bound;
	int fd, i, status;

	ASSERT_NE(MAP_FAILED, counts);
	KT_NAME(name, "bound");
	a = kt_open_args(KPRIM_KIND_LIMITER, name,
			 KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
			 KPRIM_OPEN_TRANSIENT);
	a.limiter.rate = rate;
	a.limiter.period_ns = NSEC;
	a.limiter.burst = burst;
	t0 = kt_now_ns();
	fd = kt_open(self->sess, &a);
	ASSERT_LE(0, fd);
	for (i = 0; i < NPROC; i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			/* Each child opens the limiter by name itself. */
			struct kprim_open o = kt_open_args(KPRIM_KIND_LIMITER,
							   name, 0);
			int s = kt_session(), cfd = kt_open(s, &o);
			__u64 n = 0;

			if (cfd < 0)
				_exit(1);
			while (kt_now_ns() - t0 < run_ns)
				if (take(cfd, 1, 0, -1, NULL) == 0)
					n++;
			counts[i] = n;
			_exit(0);
		}
	}
	for (i = 0; i < NPROC; i++) {
		ASSERT_LT(0, wait(&status));
		EXPECT_EQ(0, WEXITSTATUS(status));
	}
	t_end = kt_now_ns();
	for (i = 0; i < NPROC; i++)
		admitted += counts[i];
	bound = burst + rate * (t_end - t0) / NSEC;
	TH_LOG("admitted %llu tokens in %.3f s, bound %llu (kernel says %llu)",
	       (unsigned long long)admitted, (t_end - t0) / 1e9,
	       (unsigned long long)bound,
	       (unsigned long long)kt_lim_info(fd).admitted);
	EXPECT_EQ(admitted, kt_lim_info(fd).admitted);
	EXPECT_LE(admitted, bound);
	/* And the limiter did admit: at least half the rate. */
	EXPECT_GE(admitted, rate * run_ns / NSEC / 2);
	munmap(counts, NPROC * sizeof(__u64));
	close(fd);
}

TEST_HARNESS_MAIN
