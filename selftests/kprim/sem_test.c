// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for kprim counting semaphores, through raw ioctls.
 *
 * Every test gets a fresh named, transient semaphore of SEM_PERMITS permits
 * (gone with its last fd). Timing assertions allow a generous margin
 * (WAIT_MARGIN_NS) because the tests also run in a slow TCG VM.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kprim_test.h"
#include "signal_child.h"

#define SEM_PERMITS	4u
#define MS		1000000ull
#define INF		KPRIM_TIMEOUT_INFINITE
#define NOCANCEL	KPRIM_NO_CANCEL_FD
/* A blocked wait may overshoot its timeout by this much (slow VMs). */
#define WAIT_MARGIN_NS	(2000 * MS)
/* Each stress test runs this long. */
#define STRESS_NS	(1500 * MS)

static int sem_create(int sess, const char *name, __u64 permits, __u32 mode)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
					   KPRIM_OPEN_TRANSIENT |
					   KPRIM_OPEN_CLOEXEC);

	a.mode = mode;
	a.sem.permits = permits;
	return kt_open(sess, &a);
}

/* Another fd (another holder) on an existing named semaphore. */
static int sem_reopen(int sess, const char *name)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CLOEXEC);

	return kt_open(sess, &a);
}

static long sem_acquire(int fd, __u64 n, __u64 timeout_ns, int cancel_fd)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = n,
		.wait = kt_wait(timeout_ns, cancel_fd),
	};

	return kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &a);
}

static long sem_release(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

static long sem_resize(int fd, __u64 permits)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .permits = permits };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RESIZE, &r);
}

static long sem_info(int fd, struct kprim_sem_info *info,
		     struct kprim_sem_holder *holders, __u32 cap)
{
	memset(info, 0, sizeof(*info));
	info->size = sizeof(*info);
	info->holders = (uintptr_t)holders;
	info->nr_holders = cap;
	return kt_ioctl(fd, KPRIM_IOC_SEM_INFO, info);
}

/* Wait (up to 10 s) until at least @n acquirers are blocked. */
static bool wait_waiters(int fd, __u64 n)
{
	struct kprim_sem_info info;
	uint64_t end = kt_now_ns() + 10000 * MS;

	while (kt_now_ns() < end) {
		if (sem_info(fd, &info, NULL, 0) == 0 && info.waiters >= n)
			return true;
		usleep(1000);
	}
	return false;
}

static void *shared_map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

FIXTURE(sem) {
	int sess;
	int fd;
	char name[64];
};

FIXTURE_SETUP(sem)
{
	self->fd = -1;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "%s: %s (is kprim.ko loaded?)", KT_DEV,
		     strerror(errno));
	KT_NAME(self->name, "sem");
	self->fd = sem_create(self->sess, self->name, SEM_PERMITS, 0600);
	ASSERT_LE(0, self->fd) TH_LOG("create: %s", strerror(-self->fd));
}

FIXTURE_TEARDOWN(sem)
{
	if (self->fd >= 0)
		close(self->fd);
	if (self->sess >= 0)
		close(self->sess);
}

/* --- every operation ---------------------------------------------------- */

TEST_F(sem, acquire_release_and_info)
{
	struct kprim_sem_info info;

	ASSERT_EQ(0, sem_acquire(self->fd, 3, INF, NOCANCEL));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(sizeof(info), info.size);
	EXPECT_EQ(SEM_PERMITS, info.permits);
	EXPECT_EQ(1ULL, info.available);
	EXPECT_EQ(3ULL, info.held);
	EXPECT_EQ(3ULL, info.held_by_me);
	EXPECT_EQ(0ULL, info.waiters);
	EXPECT_EQ(1ULL, info.acquired);
	EXPECT_EQ(1ULL, info.nr_holders);

	ASSERT_EQ(0, sem_release(self->fd, 2));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(3ULL, info.available);
	EXPECT_EQ(1ULL, info.held_by_me);
	ASSERT_EQ(0, sem_release(self->fd, 1));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(SEM_PERMITS, info.available);
	EXPECT_EQ(0ULL, info.held);
	EXPECT_EQ(0ULL, info.nr_holders);
}

TEST_F(sem, try_acquire_when_exhausted_is_eagain)
{
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	EXPECT_EQ(-EAGAIN, sem_acquire(self->fd, 1, 0, NOCANCEL));
}

TEST_F(sem, try_acquire_behind_waiter_is_eagain)
{
	int other = sem_reopen(self->sess, self->name);
	pid_t pid;

	ASSERT_LE(0, other);
	ASSERT_EQ(0, sem_acquire(self->fd, 1, INF, NOCANCEL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)	/* queued: wants all, 3 are free */
		_exit(sem_acquire(other, SEM_PERMITS, INF, NOCANCEL) ? 1 : 0);
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	/* Permits are free, but a request is queued first: FIFO. */
	EXPECT_EQ(-EAGAIN, sem_acquire(self->fd, 1, 0, NOCANCEL));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(other);
}

TEST_F(sem, release_on_close)
{
	struct kprim_sem_info info;
	int other = sem_reopen(self->sess, self->name);

	ASSERT_LE(0, other);
	ASSERT_EQ(0, sem_acquire(other, 3, INF, NOCANCEL));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1ULL, info.available);
	EXPECT_EQ(0ULL, info.held_by_me);
	close(other);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(SEM_PERMITS, info.available);
	EXPECT_EQ(0ULL, info.held);
}

TEST_F(sem, close_wakes_waiter)
{
	int other = sem_reopen(self->sess, self->name);
	int pipefd[2];
	pid_t pid;
	char c;

	ASSERT_LE(0, other);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (sem_acquire(other, SEM_PERMITS, INF, NOCANCEL))
			_exit(1);
		write(pipefd[1], "x", 1);
		usleep(100000);
		_exit(0);	/* exit closes the fd and returns the permits */
	}
	close(other);
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	EXPECT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 10000 * MS, NOCANCEL));
	waitpid(pid, NULL, 0);
}

TEST_F(sem, resize_grow_and_shrink)
{
	struct kprim_sem_info info;

	ASSERT_EQ(0, sem_resize(self->fd, 10));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(10ULL, info.permits);
	EXPECT_EQ(10ULL, info.available);
	ASSERT_EQ(0, sem_acquire(self->fd, 10, 0, NOCANCEL));
	ASSERT_EQ(0, sem_release(self->fd, 10));
	ASSERT_EQ(0, sem_resize(self->fd, 2));
	EXPECT_EQ(-EINVAL, sem_acquire(self->fd, 3, 0, NOCANCEL));
	ASSERT_EQ(0, sem_resize(self->fd, UINT32_MAX));
	EXPECT_EQ(0, sem_acquire(self->fd, UINT32_MAX, 0, NOCANCEL));
}

TEST_F(sem, resize_below_held_lets_holders_finish)
{
	struct kprim_sem_info info;

	ASSERT_EQ(0, sem_acquire(self->fd, 4, 0, NOCANCEL));
	ASSERT_EQ(0, sem_resize(self->fd, 2));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(2ULL, info.permits);
	EXPECT_EQ(0ULL, info.available);
	EXPECT_EQ(4ULL, info.held_by_me);
	EXPECT_EQ(-EAGAIN, sem_acquire(self->fd, 1, 0, NOCANCEL));
	ASSERT_EQ(0, sem_release(self->fd, 2));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0ULL, info.available);
	ASSERT_EQ(0, sem_release(self->fd, 1));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1ULL, info.available);
	EXPECT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
}

TEST_F(sem, resize_grow_wakes_waiter)
{
	pid_t pid;
	int status;

	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = sem_reopen(self->sess, self->name);

		_exit(fd < 0 || sem_acquire(fd, 2, 10000 * MS, NOCANCEL));
	}
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	ASSERT_EQ(0, sem_resize(self->fd, SEM_PERMITS + 2));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/*
 * Documented choice: a queued request for more than the new permit count
 * fails with -EINVAL, as it would had it been made after the shrink.
 */
TEST_F(sem, resize_shrink_fails_oversize_waiter)
{
	int pipefd[2];
	pid_t pid;
	long ret;

	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = sem_reopen(self->sess, self->name);

		ret = fd < 0 ? fd : sem_acquire(fd, 4, 10000 * MS, NOCANCEL);
		write(pipefd[1], &ret, sizeof(ret));
		_exit(0);
	}
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	ASSERT_EQ(0, sem_resize(self->fd, 3));
	ASSERT_EQ((ssize_t)sizeof(ret), read(pipefd[0], &ret, sizeof(ret)));
	EXPECT_EQ(-EINVAL, ret);
	waitpid(pid, NULL, 0);
}

TEST_F(sem, fdinfo_lines)
{
	char path[64], buf[1024];
	ssize_t len;
	int fd;

	ASSERT_EQ(0, sem_acquire(self->fd, 3, 0, NOCANCEL));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", self->fd);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		SKIP(return, "%s: %s (no /proc?)", path, strerror(errno));
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	ASSERT_LT(0, len);
	buf[len] = '\0';
	EXPECT_NE(NULL, strstr(buf, "kprim-kind:\tsem\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "kprim-permits:\t4\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "kprim-available:\t1\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "kprim-held-by-fd:\t3\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "kprim-waiters:\t0\n")) TH_LOG("%s", buf);
	EXPECT_NE(NULL, strstr(buf, "kprim-holders:\t1\n")) TH_LOG("%s", buf);
	snprintf(path, sizeof(path), "kprim-holder:\tpid %d held 3\n", getpid());
	EXPECT_NE(NULL, strstr(buf, path)) TH_LOG("%s", buf);
}

TEST_F(sem, list_reports_sem_stats)
{
	struct kprim_obj_info *infos;
	struct kprim_list l;
	bool found = false;
	unsigned int i;

	infos = calloc(64, sizeof(*infos));
	ASSERT_NE(NULL, infos);
	ASSERT_EQ(0, sem_acquire(self->fd, 3, 0, NOCANCEL));
	memset(&l, 0, sizeof(l));
	l.size = sizeof(l);
	do {
		l.buf = (uintptr_t)infos;
		l.count = 64;
		l.entry_size = sizeof(*infos);
		ASSERT_EQ(0, kt_ioctl(self->sess, KPRIM_IOC_LIST, &l));
		for (i = 0; i < l.count; i++) {
			if (infos[i].kind != KPRIM_KIND_SEM ||
			    strcmp(infos[i].name, self->name))
				continue;
			found = true;
			EXPECT_EQ(SEM_PERMITS, infos[i].sem.permits);
			EXPECT_EQ(1ULL, infos[i].sem.available);
			EXPECT_EQ(3ULL, infos[i].sem.held);
			EXPECT_EQ(1ULL, infos[i].sem.holders);
			EXPECT_EQ(1ULL, infos[i].sem.acquired);
		}
		l.start_id = l.next_id;
	} while (l.next_id);
	EXPECT_TRUE(found);
	free(infos);
}

/* --- bad input: each case its own test ---------------------------------- */

TEST_F(sem, acquire_zero_is_einval)
{
	EXPECT_EQ(-EINVAL, sem_acquire(self->fd, 0, 0, NOCANCEL));
}

TEST_F(sem, acquire_more_than_permits_is_einval)
{
	EXPECT_EQ(-EINVAL, sem_acquire(self->fd, SEM_PERMITS + 1, INF, NOCANCEL));
}

TEST_F(sem, acquire_huge_is_einval)
{
	EXPECT_EQ(-EINVAL, sem_acquire(self->fd, UINT64_MAX, INF, NOCANCEL));
}

TEST_F(sem, release_without_holding_is_einval)
{
	EXPECT_EQ(-EINVAL, sem_release(self->fd, 1));
}

TEST_F(sem, release_more_than_held_is_einval)
{
	struct kprim_sem_info info;

	ASSERT_EQ(0, sem_acquire(self->fd, 2, 0, NOCANCEL));
	EXPECT_EQ(-EINVAL, sem_release(self->fd, 3));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(2ULL, info.held_by_me);
}

TEST_F(sem, release_zero_is_einval)
{
	ASSERT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
	EXPECT_EQ(-EINVAL, sem_release(self->fd, 0));
}

TEST_F(sem, release_through_other_fd_is_einval)
{
	int other = sem_reopen(self->sess, self->name);

	ASSERT_LE(0, other);
	ASSERT_EQ(0, sem_acquire(self->fd, 2, 0, NOCANCEL));
	EXPECT_EQ(-EINVAL, sem_release(other, 1));
	close(other);
}

TEST_F(sem, acquire_size_too_small_is_einval)
{
	struct kprim_sem_acquire a = { .size = KPRIM_SIZE_SEM_ACQUIRE_VER0 - 8,
				       .n = 1,
				       .wait = kt_wait(0, NOCANCEL) };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &a));
}

TEST_F(sem, acquire_size_larger_nonzero_tail_is_e2big)
{
	struct {
		struct kprim_sem_acquire a;
		__u64 tail;
	} big = { .a = { .size = sizeof(big), .n = 1,
			 .wait = kt_wait(0, NOCANCEL) },
		  .tail = 1 };

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &big));
}

TEST_F(sem, acquire_size_larger_zero_tail_is_accepted)
{
	struct {
		struct kprim_sem_acquire a;
		__u64 tail;
	} big = { .a = { .size = sizeof(big), .n = 1,
			 .wait = kt_wait(0, NOCANCEL) } };

	EXPECT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &big));
}

TEST_F(sem, acquire_size_above_page_is_e2big)
{
	struct kprim_sem_acquire a = { .size = 65536, .n = 1 };

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &a));
}

TEST_F(sem, release_size_too_small_is_einval)
{
	struct kprim_sem_release r = { .size = 8, .n = 1 };

	ASSERT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_RELEASE, &r));
}

TEST_F(sem, info_size_larger_nonzero_tail_is_e2big)
{
	struct {
		struct kprim_sem_info i;
		__u64 tail;
	} big = { .i = { .size = sizeof(big) }, .tail = 7 };

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_SEM_INFO, &big));
}

TEST_F(sem, acquire_unknown_flags_is_einval)
{
	struct kprim_sem_acquire a = { .size = sizeof(a), .flags = 1, .n = 1,
				       .wait = kt_wait(0, NOCANCEL) };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &a));
}

TEST_F(sem, acquire_wait_reserved_is_einval)
{
	struct kprim_sem_acquire a = { .size = sizeof(a), .n = 1,
				       .wait = kt_wait(0, NOCANCEL) };

	a.wait.reserved = 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &a));
}

/*
 * The argument copy at the edge of a mapping (see limiter_test's
 * take_struct_at_page_edge): a size word in a page's last 4 bytes is read,
 * an acquire whose tail is unmapped is -EFAULT and takes nothing, one
 * ending at the edge is granted.
 */
TEST_F(sem, acquire_struct_at_page_edge)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	struct kprim_sem_acquire a = { .size = sizeof(a), .n = 1,
				       .wait = kt_wait(0, NOCANCEL) };
	struct kprim_sem_info info;
	__u32 small = 4;
	char *map;

	map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mprotect(map + pg, pg, PROT_NONE));

	memcpy(map + pg - sizeof(small), &small, sizeof(small));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE,
				    map + pg - sizeof(small)));
	memcpy(map + pg - 24, &a, 24);
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE,
				    map + pg - 24));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0ULL, info.held);

	memcpy(map + pg - sizeof(a), &a, sizeof(a));
	EXPECT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE,
			      map + pg - sizeof(a)));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1ULL, info.held);
	munmap(map, 2 * pg);
}

TEST_F(sem, release_unknown_flags_is_einval)
{
	struct kprim_sem_release r = { .size = sizeof(r), .flags = 1, .n = 1 };

	ASSERT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_RELEASE, &r));
}

TEST_F(sem, resize_unknown_flags_is_einval)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .flags = 1,
				      .permits = 5 };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_RESIZE, &r));
}

TEST_F(sem, info_unknown_flags_is_einval)
{
	struct kprim_sem_info i = { .size = sizeof(i), .flags = 1 };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_INFO, &i));
}

TEST_F(sem, info_reserved_is_einval)
{
	struct kprim_sem_info i = { .size = sizeof(i), .reserved = 1 };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_SEM_INFO, &i));
}

TEST_F(sem, acquire_bad_pointer_is_efault)
{
	void *bad = mmap(NULL, 4096, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	ASSERT_NE(MAP_FAILED, bad);
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, bad));
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, NULL));
	munmap(bad, 4096);
}

TEST_F(sem, info_bad_holders_pointer_is_efault)
{
	void *bad = mmap(NULL, 4096, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kprim_sem_info info;

	ASSERT_NE(MAP_FAILED, bad);
	ASSERT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
	EXPECT_EQ(-EFAULT, sem_info(self->fd, &info, bad, 4));
	munmap(bad, 4096);
}

TEST_F(sem, cancel_fd_not_eventfd_is_einval)
{
	int pipefd[2];

	ASSERT_EQ(0, pipe(pipefd));
	EXPECT_EQ(-EINVAL, sem_acquire(self->fd, 1, INF, pipefd[0]));
}

TEST_F(sem, cancel_fd_closed_is_ebadf)
{
	EXPECT_EQ(-EBADF, sem_acquire(self->fd, 1, INF, 1000000));
}

TEST_F(sem, unknown_command_is_enotty)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOW(KPRIM_IOC_MAGIC, 0x2f,
						   struct kprim_hdr), &h));
	/* Another kind's command on a semaphore fd. */
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, KPRIM_IOC_CACHE_FLUSH, &h));
	/* Another magic. */
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOW('x', 0x20,
						   struct kprim_hdr), &h));
}

TEST_F(sem, resize_to_zero_is_einval)
{
	EXPECT_EQ(-EINVAL, sem_resize(self->fd, 0));
}

TEST_F(sem, resize_above_u32_is_einval)
{
	EXPECT_EQ(-EINVAL, sem_resize(self->fd, 1ull << 32));
}

TEST_F(sem, create_zero_permits_is_einval)
{
	char name[64];

	KT_NAME(name, "sem0");
	EXPECT_EQ(-EINVAL, sem_create(self->sess, name, 0, 0600));
}

TEST_F(sem, create_permits_above_u32_is_einval)
{
	char name[64];

	KT_NAME(name, "sembig");
	EXPECT_EQ(-EINVAL, sem_create(self->sess, name, 1ull << 32, 0600));
}

TEST_F(sem, create_reserved_params_is_einval)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, NULL,
					   KPRIM_OPEN_CREATE);

	a.sem.permits = 1;
	a.sem.reserved[2] = 1;
	EXPECT_EQ(-EINVAL, kt_open(self->sess, &a));
}

TEST_F(sem, create_u32_max_permits)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, NULL,
					   KPRIM_OPEN_CREATE);
	struct kprim_sem_info info;
	int fd;

	a.sem.permits = UINT32_MAX;
	fd = kt_open(self->sess, &a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sem_info(fd, &info, NULL, 0));
	EXPECT_EQ(UINT32_MAX, info.available);
	close(fd);
}

/* --- permissions -------------------------------------------------------- */

TEST_F(sem, resize_by_non_owner_is_eperm)
{
	char name[64];
	int fd, status;
	pid_t pid;

	if (geteuid() != 0)
		SKIP(return, "needs root to switch to uid 65534");
	KT_NAME(name, "semperm");
	fd = sem_create(self->sess, name, 2, 0666);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int nfd;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		nfd = sem_reopen(self->sess, name);
		if (nfd < 0)
			_exit(11);
		if (sem_resize(nfd, 5) != -EPERM)
			_exit(12);
		if (sem_acquire(nfd, 1, 0, NOCANCEL) != 0)
			_exit(13);	/* mode 0666: others may use it */
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The owner may resize. */
	EXPECT_EQ(0, sem_resize(fd, 5));
	close(fd);
}

/* --- wait endings: timeout, signal, cancel ------------------------------ */

/* The wait must last >= the timeout and < timeout + WAIT_MARGIN_NS (2 s). */
TEST_F(sem, timeout_is_etimedout)
{
	uint64_t t0, dt, timeout = 100 * MS;

	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	t0 = kt_now_ns();
	EXPECT_EQ(-ETIMEDOUT, sem_acquire(self->fd, 1, timeout, NOCANCEL));
	dt = kt_now_ns() - t0;
	EXPECT_LE(timeout, dt);
	EXPECT_GT(timeout + WAIT_MARGIN_NS, dt);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST_F(sem, signal_is_eintr)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { .it_value = { .tv_usec = 100000 } };
	struct kprim_sem_info info;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	EXPECT_EQ(-EINTR, sem_acquire(self->fd, 1, INF, NOCANCEL));
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0ULL, info.waiters);
}

/*
 * Restarts. A stop (SIGSTOP/SIGCONT) or a handler installed with
 * SA_RESTART must not end a wait: the call restarts and is granted. A
 * restarted call queues again at the tail, with the time it had left.
 */

/* Child: acquire @n through its own fd, report, exit 0 if it got @want. */
static void child_acquire(int sess, const char *name, __u64 n,
			  __u64 timeout_ns, long want)
{
	int fd = sem_reopen(sess, name);
	uint64_t t0 = kt_now_ns();

	kt_report->ret = sem_acquire(fd, n, timeout_ns, NOCANCEL);
	kt_report->elapsed_ns = kt_now_ns() - t0;
	_exit(kt_report->ret != want);
}

TEST_F(sem, stopped_and_continued_waiter_is_granted)
{
	struct kt_child_report *r = kt_report_map();
	struct kprim_sem_info info;
	int status, i;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_acquire(self->sess, self->name, 1, INF, 0);
	for (i = 0; i < 3; i++) {
		ASSERT_TRUE(wait_waiters(self->fd, 1));
		ASSERT_TRUE(kt_stop(pid));
		usleep(50000);
		EXPECT_EQ(1, r->ret);	/* still in its call... */
		/* ...but a stopped task holds no place in the queue. */
		ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
		EXPECT_EQ(0ULL, info.waiters);
		ASSERT_EQ(0, kill(pid, SIGCONT));
	}
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	ASSERT_EQ(0, sem_release(self->fd, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(kt_child_ok(status)) TH_LOG("acquire: %ld", r->ret);
}

/* A debugger attaching to and leaving a waiter does not end its wait. */
TEST_F(sem, ptrace_attach_does_not_end_the_wait)
{
	struct kt_child_report *r = kt_report_map();
	int status;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_acquire(self->sess, self->name, 1, INF, 0);
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	ASSERT_EQ(0, ptrace(PTRACE_SEIZE, pid, NULL, NULL));
	ASSERT_EQ(0, ptrace(PTRACE_INTERRUPT, pid, NULL, NULL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFSTOPPED(status));
	ASSERT_EQ(0, ptrace(PTRACE_DETACH, pid, NULL, NULL));
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	EXPECT_EQ(1, r->ret);	/* still in its call */
	ASSERT_EQ(0, sem_release(self->fd, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(kt_child_ok(status)) TH_LOG("acquire: %ld", r->ret);
}

TEST_F(sem, sa_restart_handler_does_not_end_the_wait)
{
	struct kt_child_report *r = kt_report_map();
	int status;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	/* Caught before the fork: the child must never die of it. */
	ASSERT_EQ(0, kt_catch_signal(SIGUSR1, true));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_acquire(self->sess, self->name, 1, INF, 0);
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	/* 300 ms of signals, then the permit. */
	for (int i = 0; i < 30; i++) {
		kill(pid, SIGUSR1);
		usleep(10000);
	}
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	ASSERT_EQ(0, sem_release(self->fd, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(kt_child_ok(status)) TH_LOG("acquire: %ld", r->ret);
	EXPECT_LT(0, r->signals);
}

/*
 * A timeout survives restarts: with SA_RESTART signals every 10 ms, a
 * 500 ms acquire still times out after ~500 ms, not later (restarting
 * with the whole timeout would never end while the signals go on).
 */
TEST_F(sem, restarted_wait_keeps_its_deadline)
{
	struct kt_child_report *r = kt_report_map();
	uint64_t timeout = 500 * MS;
	struct kprim_sem_info info;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	/* Caught before the fork: the child must never die of it. */
	ASSERT_EQ(0, kt_catch_signal(SIGUSR1, true));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		child_acquire(self->sess, self->name, 1, timeout, -ETIMEDOUT);
	status = kt_pester(pid, SIGUSR1, 10000, 5000 * MS);
	EXPECT_TRUE(kt_child_ok(status)) TH_LOG("acquire: %ld", r->ret);
	EXPECT_LE(timeout, r->elapsed_ns);
	EXPECT_GT(timeout + WAIT_MARGIN_NS, r->elapsed_ns);
	EXPECT_LT(5, r->signals);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0ULL, info.waiters);
}

/* Without SA_RESTART a handler still ends the wait, with the time left. */
TEST_F(sem, eintr_reports_the_time_left)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct itimerval it = { .it_value = { .tv_usec = 100000 } };
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = 1,
		.wait = kt_wait(20000 * MS, NOCANCEL),
	};
	struct kprim_sem_info info;

	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	EXPECT_EQ(-EINTR, kt_ioctl(self->fd, KPRIM_IOC_SEM_ACQUIRE, &a));
	EXPECT_GT(20000 * MS, a.wait.timeout_ns);
	EXPECT_LT(20000 * MS - WAIT_MARGIN_NS - 100 * MS, a.wait.timeout_ns);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0ULL, info.waiters);
}

static void *write_eventfd_later(void *arg)
{
	usleep(100000);
	eventfd_write(*(int *)arg, 1);
	return NULL;
}

TEST_F(sem, cancel_eventfd_is_ecanceled)
{
	struct kprim_sem_info info;
	int efd = eventfd(0, EFD_CLOEXEC);
	pthread_t t;

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	ASSERT_EQ(0, pthread_create(&t, NULL, write_eventfd_later, &efd));
	EXPECT_EQ(-ECANCELED, sem_acquire(self->fd, 1, INF, efd));
	pthread_join(t, NULL);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(0ULL, info.waiters);
	close(efd);
}

TEST_F(sem, cancel_eventfd_already_readable_is_ecanceled)
{
	int efd = eventfd(1, EFD_CLOEXEC);

	ASSERT_LE(0, efd);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	EXPECT_EQ(-ECANCELED, sem_acquire(self->fd, 1, INF, efd));
	close(efd);
}

TEST_F(sem, cancel_eventfd_unused_when_granted)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_LE(0, efd);
	EXPECT_EQ(0, sem_acquire(self->fd, 1, INF, efd));
	close(efd);
}

/* A waiter that times out at the head lets the smaller one behind it in. */
TEST_F(sem, abandoned_head_unblocks_next)
{
	int other = sem_reopen(self->sess, self->name);
	int status;
	pid_t pid;

	ASSERT_LE(0, other);
	ASSERT_EQ(0, sem_acquire(self->fd, 2, 0, NOCANCEL));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)	/* head: wants all, gives up after 200 ms */
		_exit(sem_acquire(other, SEM_PERMITS, 200 * MS, NOCANCEL) !=
		      -ETIMEDOUT);
	ASSERT_TRUE(wait_waiters(self->fd, 1));
	/* Behind it: 2 are free, but it must wait for the head to go. */
	EXPECT_EQ(0, sem_acquire(self->fd, 2, 10000 * MS, NOCANCEL));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(other);
}

/* --- poll ---------------------------------------------------------------- */

static void *release_later(void *arg)
{
	usleep(100000);
	sem_release(*(int *)arg, 1);
	return NULL;
}

TEST_F(sem, poll_wakes_after_release)
{
	struct pollfd p = { .fd = self->fd, .events = POLLIN };
	pthread_t t;

	ASSERT_EQ(1, poll(&p, 1, 0));
	EXPECT_TRUE(p.revents & POLLIN);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	ASSERT_EQ(0, poll(&p, 1, 0));
	ASSERT_EQ(0, pthread_create(&t, NULL, release_later, &self->fd));
	EXPECT_EQ(1, poll(&p, 1, 10000));
	EXPECT_TRUE(p.revents & POLLIN);
	pthread_join(t, NULL);
}

TEST_F(sem, epoll_wakes_after_release)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	pthread_t t;

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &ev));
	ASSERT_EQ(0, epoll_wait(ep, &out, 1, 0));
	ASSERT_EQ(0, pthread_create(&t, NULL, release_later, &self->fd));
	EXPECT_EQ(1, epoll_wait(ep, &out, 1, 10000));
	EXPECT_NE(0u, out.events & EPOLLIN);
	pthread_join(t, NULL);
	close(ep);
}

TEST_F(sem, poll_wakes_after_holder_dies)
{
	struct pollfd p = { .fd = self->fd, .events = POLLIN };
	int pipefd[2];
	pid_t pid;
	char c;

	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		int fd = sem_reopen(self->sess, self->name);

		if (fd < 0 || sem_acquire(fd, SEM_PERMITS, 0, NOCANCEL))
			_exit(1);
		write(pipefd[1], "x", 1);
		for (;;)
			pause();
	}
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	ASSERT_EQ(0, poll(&p, 1, 0));
	kill(pid, SIGKILL);
	EXPECT_EQ(1, poll(&p, 1, 10000));
	EXPECT_TRUE(p.revents & POLLIN);
	waitpid(pid, NULL, 0);
}

/* --- FIFO ---------------------------------------------------------------- */

struct fifo_waiter {
	int fd;
	__u64 n;
	int *seq;
	int order;
	long ret;
	pthread_t thread;
};

static void *fifo_wait(void *arg)
{
	struct fifo_waiter *w = arg;

	w->ret = sem_acquire(w->fd, w->n, 10000 * MS, NOCANCEL);
	if (w->ret)
		return NULL;
	w->order = __atomic_fetch_add(w->seq, 1, __ATOMIC_SEQ_CST);
	usleep(20000);
	sem_release(w->fd, w->n);
	return NULL;
}

/* Start waiters one by one, each queued before the next starts. */
static bool fifo_start(struct fifo_waiter *w, int nr, int sess,
		       const char *name, int *seq, const __u64 *n, int obs)
{
	int i;

	for (i = 0; i < nr; i++) {
		w[i].fd = sem_reopen(sess, name);
		if (w[i].fd < 0)
			return false;
		w[i].n = n[i];
		w[i].seq = seq;
		w[i].order = -1;
		if (pthread_create(&w[i].thread, NULL, fifo_wait, &w[i]))
			return false;
		if (!wait_waiters(obs, i + 1))
			return false;
	}
	return true;
}

TEST_F(sem, fifo_order_of_three_waiters)
{
	static const __u64 n[3] = { 1, 1, 1 };
	struct fifo_waiter w[3];
	int seq = 0, i;

	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS, 0, NOCANCEL));
	ASSERT_TRUE(fifo_start(w, 3, self->sess, self->name, &seq, n,
			       self->fd));
	ASSERT_EQ(0, sem_resize(self->fd, 1));		/* one at a time */
	ASSERT_EQ(0, sem_release(self->fd, SEM_PERMITS));
	for (i = 0; i < 3; i++) {
		pthread_join(w[i].thread, NULL);
		EXPECT_EQ(0, w[i].ret);
		EXPECT_EQ(i, w[i].order);
		close(w[i].fd);
	}
}

/* x/sync/semaphore semantics: a big head request is not starved. */
TEST_F(sem, weighted_fifo_big_head_not_starved)
{
	static const __u64 n[2] = { SEM_PERMITS, 1 };
	struct kprim_sem_info info;
	struct fifo_waiter w[2];
	int seq = 0, i;

	ASSERT_EQ(0, sem_acquire(self->fd, SEM_PERMITS - 1, 0, NOCANCEL));
	ASSERT_TRUE(fifo_start(w, 2, self->sess, self->name, &seq, n,
			       self->fd));
	/* One permit is free, the small request would fit: it must wait. */
	usleep(100000);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(1ULL, info.available);
	EXPECT_EQ(2ULL, info.waiters);
	EXPECT_EQ(-1, w[1].order);
	EXPECT_EQ(-EAGAIN, sem_acquire(self->fd, 1, 0, NOCANCEL));

	ASSERT_EQ(0, sem_release(self->fd, SEM_PERMITS - 1));
	for (i = 0; i < 2; i++) {
		pthread_join(w[i].thread, NULL);
		EXPECT_EQ(0, w[i].ret);
		EXPECT_EQ(i, w[i].order);
		close(w[i].fd);
	}
}

/* --- holders ------------------------------------------------------------- */

TEST_F(sem, info_reports_holder_pids)
{
	struct kprim_sem_holder h[8];
	struct kprim_sem_info info;
	pid_t pid[2];
	int pipefd[2], i, j, found;
	char c;

	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, sem_acquire(self->fd, 1, 0, NOCANCEL));
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		ASSERT_LE(0, pid[i]);
		if (pid[i] == 0) {
			int fd = sem_reopen(self->sess, self->name);

			if (fd < 0 || sem_acquire(fd, i + 1, 0, NOCANCEL))
				_exit(1);
			write(pipefd[1], "x", 1);
			for (;;)
				pause();
		}
		ASSERT_EQ(1, read(pipefd[0], &c, 1));
	}

	memset(h, 0xff, sizeof(h));
	ASSERT_EQ(0, sem_info(self->fd, &info, h, 8));
	EXPECT_EQ(3ULL, info.nr_holders);
	EXPECT_EQ(4ULL, info.held);
	found = 0;
	for (j = 0; j < 3; j++) {
		if (h[j].pid == getpid() && h[j].held == 1)
			found |= 1;
		for (i = 0; i < 2; i++)
			if (h[j].pid == pid[i] && h[j].held == (__u64)i + 1)
				found |= 2 << i;
	}
	EXPECT_EQ(7, found);
	EXPECT_EQ(-1, h[3].pid);		/* nothing past the holders */

	/* A short buffer: the total, and only what fits. */
	memset(h, 0xff, sizeof(h));
	ASSERT_EQ(0, sem_info(self->fd, &info, h, 1));
	EXPECT_EQ(3ULL, info.nr_holders);
	EXPECT_NE(-1, h[0].pid);
	EXPECT_EQ(-1, h[1].pid);

	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGKILL);
		waitpid(pid[i], NULL, 0);
	}
	ASSERT_EQ(0, sem_info(self->fd, &info, h, 8));
	EXPECT_EQ(1ULL, info.nr_holders);
	EXPECT_EQ(getpid(), h[0].pid);
}

/* --- crash safety -------------------------------------------------------- */

struct kill_child {
	int fd;
};

static void *block_forever(void *arg)
{
	struct kill_child *k = arg;

	sem_acquire(k->fd, SEM_PERMITS, INF, NOCANCEL);
	return NULL;
}

/*
 * 200 times: a child opens its own fd, takes permits and is SIGKILLed;
 * every fourth child also has a thread blocked in an acquire at the time.
 * Afterwards every permit is back and nobody waits. (200 forks and kills
 * take longer than the harness's default 30 s on a busy debug VM.)
 */
TEST_F_TIMEOUT(sem, sigkill_of_holders_returns_permits, 180)
{
	struct kprim_sem_info info;
	int pipefd[2], i;
	char c;

	ASSERT_EQ(0, pipe(pipefd));
	for (i = 0; i < 200; i++) {
		bool with_waiter = (i % 4) == 0;
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct kill_child k;
			pthread_t t;

			k.fd = sem_reopen(self->sess, self->name);
			if (k.fd < 0 ||
			    sem_acquire(k.fd, 1 + i % SEM_PERMITS, 0, NOCANCEL))
				_exit(1);
			if (with_waiter &&
			    pthread_create(&t, NULL, block_forever, &k))
				_exit(1);
			write(pipefd[1], "x", 1);
			for (;;)
				pause();
		}
		ASSERT_EQ(1, read(pipefd[0], &c, 1)) TH_LOG("iteration %d", i);
		if (with_waiter)
			ASSERT_TRUE(wait_waiters(self->fd, 1));
		ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
		ASSERT_EQ(1 + i % SEM_PERMITS, info.held);
		kill(pid, SIGKILL);
		ASSERT_EQ(pid, waitpid(pid, NULL, 0));
		ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
		ASSERT_EQ(SEM_PERMITS, info.available) TH_LOG("iteration %d", i);
		ASSERT_EQ(0ULL, info.held);
		ASSERT_EQ(0ULL, info.waiters);
		ASSERT_EQ(0ULL, info.nr_holders);
	}
}

/* --- stress -------------------------------------------------------------- */

struct stress_shared {
	int inside;		/* permits held, as counted by the holders */
	int max_inside;
	int violations;
	long acquired;
	long observations;
	char what[128];
};

static void stress_violation(struct stress_shared *s, const char *fmt,
			     unsigned long long a, unsigned long long b)
{
	if (__atomic_fetch_add(&s->violations, 1, __ATOMIC_SEQ_CST) == 0)
		snprintf(s->what, sizeof(s->what), fmt, a, b);
}

static void stress_observe(struct stress_shared *s, int fd, __u64 permits)
{
	struct kprim_sem_info info;
	long ret = sem_info(fd, &info, NULL, 0);

	if (ret) {
		stress_violation(s, "info: %lld %llu", ret, 0);
		return;
	}
	if (info.available + info.held != permits)
		stress_violation(s, "available %llu + held %llu != permits",
				 info.available, info.held);
	__atomic_fetch_add(&s->observations, 1, __ATOMIC_RELAXED);
}

/* Acquire, count ourselves in, check the count, count out, release. */
static void stress_round(struct stress_shared *s, int fd, __u64 n,
			 __u64 timeout, bool observe)
{
	long ret = sem_acquire(fd, n, timeout, NOCANCEL);
	int in, max;

	if (ret == -EAGAIN || ret == -ETIMEDOUT)
		return;
	if (ret) {
		stress_violation(s, "acquire: %lld (n %llu)", ret, n);
		return;
	}
	in = __atomic_add_fetch(&s->inside, n, __ATOMIC_SEQ_CST);
	if (in > (int)SEM_PERMITS)
		stress_violation(s, "%llu holders inside, permits %llu", in,
				 SEM_PERMITS);
	max = __atomic_load_n(&s->max_inside, __ATOMIC_RELAXED);
	while (in > max &&
	       !__atomic_compare_exchange_n(&s->max_inside, &max, in, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (observe)
		stress_observe(s, fd, SEM_PERMITS);
	sched_yield();
	__atomic_sub_fetch(&s->inside, n, __ATOMIC_SEQ_CST);
	ret = sem_release(fd, n);
	if (ret)
		stress_violation(s, "release: %lld (n %llu)", ret, n);
	__atomic_fetch_add(&s->acquired, 1, __ATOMIC_RELAXED);
}

struct stress_thread {
	struct stress_shared *s;
	int fd;
	uint64_t end;
	unsigned int seed;
	bool observe;
};

/* Mutual exclusion: weighted blocking acquires only. */
static void *mutex_worker(void *arg)
{
	struct stress_thread *t = arg;

	while (kt_now_ns() < t->end)
		stress_round(t->s, t->fd, 1 + rand_r(&t->seed) % 2,
			     1000 * MS, false);
	return NULL;
}

/* Invariant: every kind of acquire, and INFO at every step. */
static void *invariant_worker(void *arg)
{
	static const __u64 timeouts[] = { 0, 1 * MS, 20 * MS, 200 * MS };
	struct stress_thread *t = arg;

	while (kt_now_ns() < t->end) {
		unsigned int r = rand_r(&t->seed);

		stress_observe(t->s, t->fd, SEM_PERMITS);
		stress_round(t->s, t->fd, 1 + r % 3, timeouts[(r >> 4) % 4],
			     true);
	}
	return NULL;
}

/*
 * A child process with @nthreads threads running @fn until @end. Even
 * threads share the process's fd, odd ones open their own.
 */
static pid_t stress_fork(const char *name, int sess, uint64_t end,
			 struct stress_shared *s, int nthreads,
			 void *(*fn)(void *))
{
	struct stress_thread t[8];
	pthread_t th[8];
	int i, fd;
	pid_t pid;

	pid = fork();
	if (pid)
		return pid;
	fd = sem_reopen(sess, name);
	if (fd < 0)
		_exit(1);
	for (i = 0; i < nthreads; i++) {
		t[i].s = s;
		t[i].fd = i % 2 ? sem_reopen(sess, name) : fd;
		t[i].end = end;
		t[i].seed = getpid() * 31 + i;
		if (t[i].fd < 0 || pthread_create(&th[i], NULL, fn, &t[i]))
			_exit(1);
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	_exit(0);
}

static int stress_run(int sess, int obs_fd, const char *name,
		      struct stress_shared *s, int nproc, int nthreads,
		      void *(*fn)(void *))
{
	uint64_t end = kt_now_ns() + STRESS_NS;
	pid_t pid[8];
	int i, status, failed = 0;

	for (i = 0; i < nproc; i++) {
		pid[i] = stress_fork(name, sess, end, s, nthreads, fn);
		if (pid[i] < 0)
			return -1;
	}
	/* The parent observes too, from outside any holder. */
	while (kt_now_ns() < end)
		stress_observe(s, obs_fd, SEM_PERMITS);
	for (i = 0; i < nproc; i++) {
		if (waitpid(pid[i], &status, 0) != pid[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status))
			failed++;
	}
	return failed;
}

TEST_F(sem, stress_mutual_exclusion_across_processes)
{
	struct stress_shared *s = shared_map(sizeof(*s));
	struct kprim_sem_info info;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, stress_run(self->sess, self->fd, self->name, s, 6, 1,
				mutex_worker));
	EXPECT_EQ(0, s->violations) TH_LOG("%s", s->what);
	EXPECT_GE((int)SEM_PERMITS, s->max_inside);
	EXPECT_LT(0L, s->acquired);
	TH_LOG("%ld acquisitions, at most %d permits held at once",
	       s->acquired, s->max_inside);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(SEM_PERMITS, info.available);
	EXPECT_EQ(0ULL, info.waiters);
}

TEST_F(sem, stress_invariant_processes_and_threads)
{
	struct stress_shared *s = shared_map(sizeof(*s));
	struct kprim_sem_info info;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, stress_run(self->sess, self->fd, self->name, s, 3, 4,
				invariant_worker));
	EXPECT_EQ(0, s->violations) TH_LOG("%s", s->what);
	EXPECT_LT(0L, s->acquired);
	EXPECT_LT(0L, s->observations);
	TH_LOG("%ld acquisitions, %ld observations", s->acquired,
	       s->observations);
	ASSERT_EQ(0, sem_info(self->fd, &info, NULL, 0));
	EXPECT_EQ(SEM_PERMITS, info.available);
	EXPECT_EQ(0ULL, info.held);
	EXPECT_EQ(0ULL, info.waiters);
	EXPECT_EQ(0ULL, info.nr_holders);
}

TEST_HARNESS_MAIN
