// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the kprim module from an unprivileged user's point of view:
 * restartable waits whose argument cannot take the time left, io_uring
 * task work ending waits without any signal, uring_cmd flag bits, a 1-entry
 * ring whose owner dies mid-wait, and a cache hammered by unprivileged
 * threads (pinned entries, INCR, TOUCH, DELETE, expiry) while its owner
 * flushes and the shrinker runs, which must account back to zero.
 */
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <grp.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"

#define MS	1000000ull
#define NOBODY	65534

static int sem_new(int sess, const char *name, __u64 permits, __u32 mode)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
					   KPRIM_OPEN_TRANSIENT);

	a.mode = mode;
	a.sem.permits = permits;
	return kt_open(sess, &a);
}

static int sem_again(int sess, const char *name)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name, 0);

	return kt_open(sess, &a);
}

static long sem_acq(int fd, __u64 n, __u64 timeout_ns)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = n,
		.wait = kt_wait(timeout_ns, KPRIM_NO_CANCEL_FD),
	};

	return kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &a);
}

static long sem_rel(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

static struct kprim_sem_info sem_state(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i))
		i.permits = ~0ull;
	return i;
}

static bool wait_for_waiters(int fd, __u64 n, uint64_t max_ns)
{
	uint64_t end = kt_now_ns() + max_ns;

	while (kt_now_ns() < end) {
		if (sem_state(fd).waiters == n)
			return true;
		usleep(1000);
	}
	return false;
}

/* A struct kprim_sem_acquire alone on a page, then made read-only. */
static struct kprim_sem_acquire *ro_acquire(__u64 n, __u64 timeout_ns)
{
	struct kprim_sem_acquire *a = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (a == MAP_FAILED)
		return NULL;
	a->size = sizeof(*a);
	a->n = n;
	a->wait = kt_wait(timeout_ns, KPRIM_NO_CANCEL_FD);
	if (mprotect(a, 4096, PROT_READ))
		return NULL;
	return a;
}

static volatile int alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/*
 * A restartable wait whose argument is read-only (say a const struct in
 * .rodata) cannot take the time left. A signal with SA_RESTART must then
 * end it as select() does in that case (-EINTR) or let it run on; it must
 * not report -EFAULT for an argument the kernel read fine, and it must not
 * lose or leak a permit.
 */
TEST(restart_with_read_only_argument_is_not_efault)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct itimerval it = { .it_value = { .tv_usec = 200000 } };
	struct kprim_sem_acquire *a;
	char name[64];
	int sess, holder, fd;
	long ret;

	sess = kt_session();
	ASSERT_LE(0, sess);
	KT_NAME(name, "ro");
	holder = sem_new(sess, name, 1, 0600);
	ASSERT_LE(0, holder);
	fd = sem_again(sess, name);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sem_acq(holder, 1, 0));
	a = ro_acquire(1, 1500 * MS);
	ASSERT_NE(NULL, a);

	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	alarms = 0;
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	ret = kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, a);
	EXPECT_EQ(1, alarms);
	EXPECT_NE(-EFAULT, ret) TH_LOG("a signal turned a valid wait into -EFAULT");
	EXPECT_TRUE(ret == -ETIMEDOUT || ret == -EINTR) TH_LOG("ret %ld", ret);
	/* Nothing lost: the holder's permit, no waiter left behind. */
	EXPECT_EQ(0ull, sem_state(fd).waiters);
	EXPECT_EQ(0ull, sem_state(fd).available);
	EXPECT_EQ(0ull, sem_state(fd).held_by_me);
	EXPECT_EQ(0, sem_rel(holder, 1));
	EXPECT_EQ(1ull, sem_state(fd).available);
	munmap(a, 4096);
	close(fd);
	close(holder);
	close(sess);
}

struct unmap_ctx {
	void *page;
	pid_t tid;
};

static void *unmap_then_signal(void *arg)
{
	struct unmap_ctx *c = arg;

	usleep(200000);
	munmap(c->page, 4096);
	syscall(SYS_tgkill, getpid(), c->tid, SIGALRM);
	return NULL;
}

/*
 * The argument vanishes while its call waits (another thread unmaps it),
 * then a signal arrives: whatever the call returns, the permit it did not
 * get is neither granted to nobody nor lost, and no waiter is stranded.
 */
TEST(unmapped_argument_loses_no_grant)
{
	struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
	struct kprim_sem_acquire *a;
	struct unmap_ctx c;
	pthread_t t;
	char name[64];
	int sess, holder, fd;
	long ret;

	sess = kt_session();
	ASSERT_LE(0, sess);
	KT_NAME(name, "unmap");
	holder = sem_new(sess, name, 2, 0600);
	ASSERT_LE(0, holder);
	fd = sem_again(sess, name);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sem_acq(holder, 2, 0));
	a = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, a);
	a->size = sizeof(*a);
	a->n = 1;
	a->wait = kt_wait(3000 * MS, KPRIM_NO_CANCEL_FD);
	sigemptyset(&sa.sa_mask);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	c.page = a;
	c.tid = gettid();
	ASSERT_EQ(0, pthread_create(&t, NULL, unmap_then_signal, &c));
	ret = kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, a);
	pthread_join(t, NULL);
	/* Nothing can be written back: -EINTR as select() does, or -EFAULT. */
	EXPECT_TRUE(ret == -EFAULT || ret == -EINTR) TH_LOG("ret %ld", ret);
	EXPECT_EQ(0ull, sem_state(fd).waiters);
	EXPECT_EQ(0ull, sem_state(fd).held_by_me);
	EXPECT_EQ(0, sem_rel(holder, 2));
	EXPECT_EQ(2ull, sem_state(fd).available);
	close(fd);
	close(holder);
	close(sess);
}

/*
 * No signal at all: the waiting thread's own io_uring timeout completes
 * by task work, which sets TIF_NOTIFY_SIGNAL and ends the wait with
 * -ERESTARTSYS. With a read-only argument the write-back fails and a
 * program that handles no signal whatsoever sees -EFAULT.
 */
TEST(io_uring_task_work_does_not_fail_a_read_only_wait)
{
	struct __kernel_timespec ts = { .tv_nsec = 200 * MS };
	struct kprim_sem_acquire *a;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	char name[64];
	int sess, holder, fd, r;
	long ret;

	sess = kt_session();
	ASSERT_LE(0, sess);
	r = io_uring_queue_init(4, &ring, 0);
	if (r == -ENOSYS || r == -EPERM)
		SKIP(return, "no io_uring");
	ASSERT_EQ(0, r);
	KT_NAME(name, "tw");
	holder = sem_new(sess, name, 1, 0600);
	ASSERT_LE(0, holder);
	fd = sem_again(sess, name);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sem_acq(holder, 1, 0));
	a = ro_acquire(1, 1500 * MS);
	ASSERT_NE(NULL, a);

	io_uring_prep_timeout(io_uring_get_sqe(&ring), &ts, 0, 0);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ret = kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, a);
	/*
	 * The task work makes the wait restart; the time left cannot be
	 * written, so the call ends as select() would: -EINTR, not -EFAULT.
	 */
	EXPECT_EQ(-EINTR, ret) TH_LOG("no signal was sent; got %ld", ret);
	ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
	EXPECT_EQ(-ETIME, cqe->res);
	io_uring_cqe_seen(&ring, cqe);
	EXPECT_EQ(0ull, sem_state(fd).waiters);
	EXPECT_EQ(0, sem_rel(holder, 1));
	EXPECT_EQ(1ull, sem_state(fd).available);
	io_uring_queue_exit(&ring);
	munmap(a, 4096);
	close(fd);
	close(holder);
	close(sess);
}

struct fifo_ctx {
	int fd;
	bool with_timer;
	unsigned int ring_flags;
	volatile long ret;
	volatile uint64_t done_ns;
};

static void *fifo_waiter(void *arg)
{
	struct __kernel_timespec ts = { .tv_nsec = 300 * MS };
	struct fifo_ctx *c = arg;
	struct io_uring ring;
	bool ring_ok = false;

	if (c->with_timer &&
	    io_uring_queue_init(4, &ring, c->ring_flags) == 0) {
		ring_ok = true;
		io_uring_prep_timeout(io_uring_get_sqe(&ring), &ts, 0, 0);
		io_uring_submit(&ring);
	}
	c->ret = sem_acq(c->fd, 1, 5000 * MS);
	c->done_ns = kt_now_ns();
	if (ring_ok)
		io_uring_queue_exit(&ring);
	return NULL;
}

/*
 * FIFO: A queues first, B second; A's own io_uring timeout completes while
 * A waits (task work: no signal, no handler, no stop). Returns what A and
 * B got from the first release: 0 = granted, 1 = still waiting. Both are
 * admitted in the end and nothing is lost either way.
 */
static void fifo_with_own_completion(struct __test_metadata *_metadata,
				     unsigned int ring_flags,
				     long *a_first, long *b_first)
{
	struct fifo_ctx ca = { 0 }, cb = { 0 };
	pthread_t ta, tb;
	char name[64];
	int sess, holder;

	sess = kt_session();
	ASSERT_LE(0, sess);
	KT_NAME(name, "fifo");
	holder = sem_new(sess, name, 1, 0600);
	ASSERT_LE(0, holder);
	ASSERT_EQ(0, sem_acq(holder, 1, 0));
	ca.fd = sem_again(sess, name);
	cb.fd = sem_again(sess, name);
	ASSERT_LE(0, ca.fd);
	ASSERT_LE(0, cb.fd);
	ca.with_timer = true;
	ca.ring_flags = ring_flags;
	ca.ret = cb.ret = 1;	/* still waiting */
	ASSERT_EQ(0, pthread_create(&ta, NULL, fifo_waiter, &ca));
	ASSERT_TRUE(wait_for_waiters(holder, 1, 3000 * MS));
	ASSERT_EQ(0, pthread_create(&tb, NULL, fifo_waiter, &cb));
	ASSERT_TRUE(wait_for_waiters(holder, 2, 3000 * MS));
	usleep(600000);		/* A's timeout has fired */
	ASSERT_EQ(2ull, sem_state(holder).waiters) TH_LOG("a wait was lost");
	ASSERT_EQ(0, sem_rel(holder, 1));
	usleep(300000);
	*a_first = ca.ret;
	*b_first = cb.ret;
	/* Let the other one go too. */
	if (ca.ret == 0)
		sem_rel(ca.fd, 1);
	else
		sem_rel(cb.fd, 1);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	EXPECT_EQ(0, ca.ret);
	EXPECT_EQ(0, cb.ret);
	EXPECT_EQ(0ull, sem_state(holder).waiters);
	close(ca.fd);
	close(cb.fd);
	close(holder);
	close(sess);
}

/*
 * With a default ring the completion's task work makes A leave the kernel:
 * its wait is restarted (documented: at the tail), never failed or lost.
 */
TEST(own_io_uring_completion_restarts_the_wait)
{
	struct io_uring probe;
	long a, b;

	if (io_uring_queue_init(1, &probe, 0))
		SKIP(return, "no io_uring");
	io_uring_queue_exit(&probe);
	fifo_with_own_completion(_metadata, 0, &a, &b);
	/* One of them was granted by the first release, not both. */
	EXPECT_EQ(1, a + b) TH_LOG("A %ld B %ld", a, b);
}

/*
 * With IORING_SETUP_DEFER_TASKRUN (what the uapi header recommends for
 * threads that block in kprim) the completion waits for the thread, and
 * A keeps its place: the first release goes to A.
 */
TEST(fifo_place_kept_with_defer_taskrun_ring)
{
	unsigned int flags = IORING_SETUP_SINGLE_ISSUER |
			     IORING_SETUP_DEFER_TASKRUN;
	struct io_uring probe;
	long a, b;

	if (io_uring_queue_init(1, &probe, flags))
		SKIP(return, "no IORING_SETUP_DEFER_TASKRUN");
	io_uring_queue_exit(&probe);
	fifo_with_own_completion(_metadata, flags, &a, &b);
	EXPECT_EQ(0, a) TH_LOG("A (queued first) did not get the permit");
	EXPECT_EQ(1, b) TH_LOG("B (queued second) got %ld", b);
}

/*
 * Through io_uring a wait is queued at issue and its argument read then,
 * once: a read-only argument is fine. Cancelled (KPRIM_IOC_WAIT_CANCEL),
 * it ends with -ECANCELED, the documented result, which nothing written
 * back (or failing to be) may replace.
 */
TEST(uring_cancel_of_read_only_wait_is_ecanceled)
{
	struct kprim_wait_cancel c = { .size = sizeof(c), .user_data = 1 };
	struct kprim_sem_acquire *a;
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	int sess, holder, fd, r, i, res = 1, cres = 1;
	char name[64];

	sess = kt_session();
	ASSERT_LE(0, sess);
	r = io_uring_queue_init(2, &ring, 0);
	if (r == -ENOSYS || r == -EPERM)
		SKIP(return, "no io_uring");
	ASSERT_EQ(0, r);
	KT_NAME(name, "ucancel");
	holder = sem_new(sess, name, 1, 0600);
	ASSERT_LE(0, holder);
	fd = sem_again(sess, name);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sem_acq(holder, 1, 0));
	a = ro_acquire(1, 5000 * MS);
	ASSERT_NE(NULL, a);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = KPRIM_IOC_SEM_ACQUIRE;
	sqe->addr3 = (uintptr_t)a;
	sqe->user_data = 1;
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_TRUE(wait_for_waiters(holder, 1, 3000 * MS));
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = KPRIM_IOC_WAIT_CANCEL;
	sqe->addr3 = (uintptr_t)&c;
	sqe->user_data = 2;
	ASSERT_EQ(1, io_uring_submit(&ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		if (cqe->user_data == 1)
			res = cqe->res;
		else
			cres = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
	}
	EXPECT_EQ(-ECANCELED, res) TH_LOG("cancelled wait completed with %d", res);
	EXPECT_EQ(1, cres);
	EXPECT_EQ(0ull, sem_state(fd).waiters);
	EXPECT_EQ(0, sem_rel(holder, 1));
	EXPECT_EQ(1ull, sem_state(fd).available);
	io_uring_queue_exit(&ring);
	munmap(a, 4096);
	close(fd);
	close(holder);
	close(sess);
}

/* The driver's re-issue bit (and io_uring's internal ones) are not SQE input. */
TEST(uring_cmd_flags_high_bits_are_einval)
{
	static const __u32 bits[] = { 1u << 31, 1u << 30, 1u << 24 };
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = 1,
		.wait = kt_wait(0, KPRIM_NO_CANCEL_FD),
	};
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	struct io_uring ring;
	char name[64];
	int sess, fd, r;

	sess = kt_session();
	ASSERT_LE(0, sess);
	r = io_uring_queue_init(1, &ring, 0);
	if (r == -ENOSYS || r == -EPERM)
		SKIP(return, "no io_uring");
	ASSERT_EQ(0, r);
	KT_NAME(name, "bits");
	fd = sem_new(sess, name, 1, 0600);
	ASSERT_LE(0, fd);
	for (unsigned int i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
		sqe->cmd_op = KPRIM_IOC_SEM_ACQUIRE;
		sqe->addr3 = (uintptr_t)&a;
		sqe->uring_cmd_flags = bits[i];
		ASSERT_EQ(1, io_uring_submit(&ring));
		ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
		EXPECT_EQ(-EINVAL, cqe->res) TH_LOG("flag %#x", bits[i]);
		io_uring_cqe_seen(&ring, cqe);
		EXPECT_EQ(1ull, sem_state(fd).available);
	}
	io_uring_queue_exit(&ring);
	close(fd);
	close(sess);
}

/* Unprivileged from here on (fds opened before stay usable). */
static void drop_privileges(void)
{
	if (setgroups(0, NULL) || setresgid(NOBODY, NOBODY, NOBODY) || setresuid(NOBODY, NOBODY, NOBODY))
		_exit(90);
}

/*
 * An unprivileged process with a 1-entry ring queues a blocking acquire
 * (queued at issue, no worker) whose argument is read-only, and is
 * SIGKILLed mid-wait. Its wait ends, nothing stays queued, its fd's
 * permits (none) and the holder's come back, and the kernel stays quiet.
 */
TEST(one_slot_ring_owner_killed_mid_wait)
{
	char name[64];
	int sess, holder, status, round;
	pid_t pid;

	sess = kt_session();
	ASSERT_LE(0, sess);
	KT_NAME(name, "kill");
	holder = sem_new(sess, name, 3, 0666);
	ASSERT_LE(0, holder);
	ASSERT_EQ(0, sem_acq(holder, 3, 0));
	for (round = 0; round < 4; round++) {
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct kprim_sem_acquire *a;
			struct io_uring ring;
			struct io_uring_sqe *sqe;
			int s, fd;

			s = kt_session();
			drop_privileges();
			fd = sem_again(s, name);
			if (s < 0 || fd < 0)
				_exit(91);
			if (io_uring_queue_init(1, &ring, 0))
				_exit(0);	/* nothing to test here */
			a = round & 1 ? ro_acquire(1, 10000 * MS) :
					ro_acquire(1, KPRIM_TIMEOUT_INFINITE);
			sqe = io_uring_get_sqe(&ring);
			io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
			sqe->cmd_op = KPRIM_IOC_SEM_ACQUIRE;
			sqe->addr3 = (uintptr_t)a;
			io_uring_submit(&ring);
			pause();
			_exit(92);
		}
		if (!wait_for_waiters(holder, 1, 3000 * MS)) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
				TH_LOG("child status %#x", status);
			SKIP(goto out, "no waiter appeared (io_uring off?)");
		}
		if (round == 2) {
			/* A grant racing the kill. */
			ASSERT_EQ(0, sem_rel(holder, 1));
		}
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFSIGNALED(status));
		EXPECT_TRUE(wait_for_waiters(holder, 0, 5000 * MS));
		if (round == 2) {
			/* The permit came back with the dead fd (or was never granted). */
			usleep(100000);
			EXPECT_EQ(1ull, sem_state(holder).available);
			ASSERT_EQ(0, sem_acq(holder, 1, 2000 * MS));
		}
		EXPECT_EQ(0ull, sem_state(holder).available);
		EXPECT_EQ(3ull, sem_state(holder).held);
	}
out:
	sem_rel(holder, 3);
	close(holder);
	close(sess);
}

/* --- the cache ---------------------------------------------------------- */

#define C_ENTRIES	128ull
#define C_BYTES		(48ull << 10)
#define C_KEYS		300
#define C_RUN_NS	(3000 * MS)

static long long fdinfo_val(int fd, const char *field)
{
	char path[64], line[256];
	long long v = -1;
	size_t n = strlen(field);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = atoll(line + n + 1);
	fclose(f);
	return v;
}

static long cache_info(int fd, struct kprim_cache_info *i)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	return kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, i);
}

static long cache_flush(int fd)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	return kt_ioctl(fd, KPRIM_IOC_CACHE_FLUSH, &h);
}

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static volatile int chaos_stop;
static char chaos_val[8192];

/* One random cache operation by an unprivileged user. */
static void chaos_op(int fd, uint32_t *seed)
{
	char key[32];
	uint32_t r = rnd(seed), k = rnd(seed) % C_KEYS;
	__u64 ttls[] = { 0, 1 * MS, 3 * MS, 20 * MS, 1000 * MS };
	int klen = snprintf(key, sizeof(key), "k%u", k);

	switch (r % 8) {
	case 0: case 1: case 2: {
		struct kprim_cache_store s = {
			.size = sizeof(s), .key = (uintptr_t)key,
			.key_len = klen, .op = rnd(seed) % 3,
			.value = (uintptr_t)chaos_val,
			.value_len = rnd(seed) % (rnd(seed) % 4 ? 200 : 6000),
		};

		if (rnd(seed) % 3 == 0)
			s.flags |= KPRIM_CACHE_PIN;
		if (rnd(seed) % 2) {
			s.flags |= KPRIM_CACHE_TTL;
			s.ttl_ns = ttls[rnd(seed) % 5];
		}
		kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
		break;
	}
	case 3: {
		struct kprim_cache_incr in = {
			.size = sizeof(in), .key = (uintptr_t)key,
			.key_len = klen, .delta = rnd(seed),
			.flags = KPRIM_CACHE_INCR_CREATE |
				 (rnd(seed) % 2 ? KPRIM_CACHE_DECR : 0),
			.initial = 7,
		};

		kt_ioctl(fd, KPRIM_IOC_CACHE_INCR, &in);
		break;
	}
	case 4: {
		struct kprim_cache_key t = {
			.size = sizeof(t), .key = (uintptr_t)key, .key_len = klen,
		};

		if (rnd(seed) % 2)
			t.flags = KPRIM_CACHE_DEFAULT_TTL;
		else
			t.ttl_ns = ttls[rnd(seed) % 5];
		kt_ioctl(fd, KPRIM_IOC_CACHE_TOUCH, &t);
		break;
	}
	case 5: {
		struct kprim_cache_key d = {
			.size = sizeof(d), .key = (uintptr_t)key, .key_len = klen,
		};

		kt_ioctl(fd, KPRIM_IOC_CACHE_DELETE, &d);
		break;
	}
	default: {
		static __thread char buf[8192];
		struct kprim_cache_get g = {
			.size = sizeof(g), .key = (uintptr_t)key, .key_len = klen,
			.value = (uintptr_t)buf, .value_len = sizeof(buf),
		};

		kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);
		break;
	}
	}
}

static void *chaos_thread(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint32_t seed = (uint32_t)(kt_now_ns() ^ (uintptr_t)&seed) | 1;

	while (!chaos_stop)
		chaos_op(fd, &seed);
	return NULL;
}

/* Child: unprivileged, 3 threads of chaos until killed or @ns passed. */
static void chaos_child(const char *name, uint64_t ns)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, name, 0);
	pthread_t t[3];
	int s, fd, i;

	s = kt_session();
	drop_privileges();
	fd = s < 0 ? -1 : kt_open(s, &a);
	if (fd < 0)
		_exit(93);
	/* Not the owner: no flush. */
	if (cache_flush(fd) != -EPERM)
		_exit(94);
	for (i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, chaos_thread, (void *)(intptr_t)fd);
	usleep(ns / 1000);
	chaos_stop = 1;
	for (i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	_exit(0);
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	if (fd >= 0) {
		ssize_t n = write(fd, "2\n", 2);

		(void)n;	/* best effort */
		close(fd);
	}
}

/*
 * Unprivileged chaos on a small cache (stores with and without PIN, ADD,
 * REPLACE, TTLs of 1 ms to 1 s, INCR, TOUCH with the default TTL, DELETE,
 * GET), one chaos process SIGKILLed mid-run, while the owner flushes and
 * the shrinker runs. Throughout: every limit and the pinned half hold.
 * After a final flush: bytes, entries, memory and pinned are all 0.
 */
TEST(cache_chaos_accounts_back_to_zero)
{
	struct kprim_open a;
	struct kprim_cache_info info;
	long long mem, pinned, max_mem = C_BYTES + C_ENTRIES * 320;
	long long worst_pinned = 0, worst_mem = 0;
	uint64_t end, next_drop = 0;
	pid_t kids[3];
	char name[64];
	int sess, fd, i, status, flushes = 0;
	uint32_t pseed = 12345;

	memset(chaos_val, '7', sizeof(chaos_val));
	sess = kt_session();
	ASSERT_LE(0, sess);
	KT_NAME(name, "chaos");
	a = kt_open_args(KPRIM_KIND_CACHE, name,
			 KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL | KPRIM_OPEN_TRANSIENT);
	a.mode = 0666;
	a.cache.max_entries = C_ENTRIES;
	a.cache.max_bytes = C_BYTES;
	a.cache.max_value = 6000;
	a.cache.default_ttl_ns = 5 * MS;
	fd = kt_open(sess, &a);
	ASSERT_LE(0, fd);

	for (i = 0; i < 3; i++) {
		kids[i] = fork();
		ASSERT_LE(0, kids[i]);
		if (kids[i] == 0)
			chaos_child(name, i == 2 ? C_RUN_NS / 3 * 10 : C_RUN_NS);
	}
	end = kt_now_ns() + C_RUN_NS;
	while (kt_now_ns() < end) {
		ASSERT_EQ(0, cache_info(fd, &info));
		EXPECT_GE(C_ENTRIES, info.entries);
		EXPECT_GE(C_BYTES, info.bytes);
		mem = fdinfo_val(fd, "kprim-memory");
		pinned = fdinfo_val(fd, "kprim-pinned");
		if (mem > worst_mem)
			worst_mem = mem;
		if (pinned > worst_pinned)
			worst_pinned = pinned;
		if (kt_now_ns() > next_drop) {
			drop_caches();
			next_drop = kt_now_ns() + 300 * MS;
		}
		if (rnd(&pseed) % 4 == 0) {
			EXPECT_EQ(0, cache_flush(fd));
			flushes++;
		}
		usleep(20000);
		if (kids[2] > 0 && kt_now_ns() > end - C_RUN_NS / 2) {
			/* Dies mid-operation. */
			kill(kids[2], SIGKILL);
			waitpid(kids[2], &status, 0);
			kids[2] = -1;
		}
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(kids[i], waitpid(kids[i], &status, 0));
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("chaos child %d: status %#x", i, status);
	}
	TH_LOG("flushes %d, worst pinned %lld, worst memory %lld of %lld",
	       flushes, worst_pinned, worst_mem, max_mem);
	EXPECT_GE((long long)C_ENTRIES / 2, worst_pinned);
	EXPECT_GE(max_mem, worst_mem);

	ASSERT_EQ(0, cache_flush(fd));
	ASSERT_EQ(0, cache_info(fd, &info));
	EXPECT_EQ(0ull, info.entries);
	EXPECT_EQ(0ull, info.bytes);
	EXPECT_EQ(0, fdinfo_val(fd, "kprim-memory"));
	EXPECT_EQ(0, fdinfo_val(fd, "kprim-pinned"));
	close(fd);
	close(sess);
}

static long cstore(int fd, const char *key, size_t len, __u32 flags)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .flags = flags, .key = (uintptr_t)key,
		.key_len = strlen(key), .value = (uintptr_t)chaos_val,
		.value_len = len,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

/*
 * Pinned entries hold half of max_bytes. A store that cannot fit even in
 * an otherwise empty cache (value > max_bytes - pinned bytes) fails; a
 * failed store must not have evicted every unpinned entry on its way to
 * -ENOSPC (an unprivileged writer could wipe the cache with stores that
 * never succeed).
 */
TEST(store_that_cannot_fit_evicts_nothing)
{
	struct kprim_cache_info info;
	struct kprim_open a;
	char key[32];
	int sess, fd, i;
	long ret;

	memset(chaos_val, 'v', sizeof(chaos_val));
	sess = kt_session();
	ASSERT_LE(0, sess);
	a = kt_open_args(KPRIM_KIND_CACHE, NULL, 0);
	a.cache.max_entries = 64;
	a.cache.max_bytes = 16384;
	a.cache.max_value = 16000;
	fd = kt_open(sess, &a);
	ASSERT_LE(0, fd);
	/* 8000 pinned bytes (of the 8192 allowed). */
	for (i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "pin%d", i);
		ASSERT_EQ(0, cstore(fd, key, 1996, KPRIM_CACHE_PIN));
	}
	/* Ten small evictable entries. */
	for (i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "lru%d", i);
		ASSERT_EQ(0, cstore(fd, key, 100, 0));
	}
	ASSERT_EQ(0, cache_info(fd, &info));
	ASSERT_EQ(14ull, info.entries);
	/* 9000 + 8000 pinned > 16384: can never fit. */
	ret = cstore(fd, "big", 9000, 0);
	EXPECT_TRUE(ret == -ENOSPC || ret == -E2BIG) TH_LOG("ret %ld", ret);
	ASSERT_EQ(0, cache_info(fd, &info));
	EXPECT_EQ(14ull, info.entries) TH_LOG("a failed store evicted %llu entries",
					     14 - info.entries);
	EXPECT_EQ(0ull, info.evictions);
	close(fd);
	close(sess);
}

TEST_HARNESS_MAIN
