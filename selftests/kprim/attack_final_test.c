// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks on the latest kmod changes:
 *  - WAIT_CANCEL ALL ending waits in batches of 64 (lock dropped, restart
 *    from the head) while another thread keeps queueing IOSQE_ASYNC waits;
 *  - the max_uring_waits cap lowered under queued waits, ioctl + io_uring
 *    waiters at the cap, -ENOSPC changing nothing;
 *  - cache INCR retries ending on signals: counter exact, never -512;
 *  - fixed-size argument copies straddling an unmapped page.
 */
#include <liburing.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define MS	1000000ull
#define SEC	1000000000ull
#define UD_CANCEL	(1ull << 62)
#define MAXW	"/sys/module/kprim/parameters/max_uring_waits"

static int obj_new(int sess, __u32 kind, const char *name, __u64 p0)
{
	struct kprim_open a = kt_open_args(kind, name, KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_EXCL | KPRIM_OPEN_TRANSIENT);

	a.mode = 0666;
	if (kind == KPRIM_KIND_SEM) {
		a.sem.permits = p0;
	} else if (kind == KPRIM_KIND_LIMITER) {
		a.flags |= KPRIM_OPEN_INITIAL;
		a.limiter.rate = 1;
		a.limiter.period_ns = 1000 * SEC;
		a.limiter.burst = p0;
		a.limiter.initial = 0;
	}
	return kt_open(sess, &a);
}

static struct kprim_sem_info sem_state(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i))
		i.permits = ~0ull;
	return i;
}

static struct kprim_limiter_info lim_state(int fd)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i))
		i.waiters = ~0ull;
	return i;
}

static bool sem_waiters_reach(int fd, __u64 n, uint64_t max_ns)
{
	uint64_t end = kt_now_ns() + max_ns;

	while (kt_now_ns() < end) {
		if (sem_state(fd).waiters == n)
			return true;
		usleep(1000);
	}
	return false;
}

static int reap(struct io_uring *ring, unsigned int ms, __u64 *ud, int *res)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000ll,
	};
	struct io_uring_cqe *cqe;
	int ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);

	if (ret)
		return ret;
	*ud = cqe->user_data;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

static bool have_async(int sess)
{
	struct kprim_api api = { .size = sizeof(api) };

	return !kt_ioctl(sess, KPRIM_IOC_API, &api) &&
	       (api.features & KPRIM_FEAT_URING_ASYNC);
}

FIXTURE(f) {
	int unused;
};

FIXTURE_SETUP(f)
{
	self->unused = 0;
}

FIXTURE_TEARDOWN(f)
{
}

/* ---- 1. WAIT_CANCEL ALL against a concurrent IOSQE_ASYNC submitter ---- */

#define C_WAITS	3000

struct cctx {
	struct io_uring ring;
	pthread_mutex_t sq_lock;
	int fd;
	atomic_int submitted;
	atomic_bool stop;
	struct kprim_sem_acquire acq;	/* shared: copied at issue */
	struct kprim_wait_cancel wc;
	int cancels;
};

static int csubmit(struct cctx *c, unsigned int cmd, void *arg, __u64 ud,
		   unsigned int flags)
{
	struct io_uring_sqe *sqe;
	int ret;

	pthread_mutex_lock(&c->sq_lock);
	sqe = io_uring_get_sqe(&c->ring);
	if (!sqe) {
		pthread_mutex_unlock(&c->sq_lock);
		return -EBUSY;
	}
	prep_kprim(sqe, c->fd, cmd, arg, ud);
	io_uring_sqe_set_flags(sqe, flags);
	ret = io_uring_submit(&c->ring);
	pthread_mutex_unlock(&c->sq_lock);
	return ret == 1 ? 0 : (ret < 0 ? ret : -EIO);
}

static void *c_submitter(void *arg)
{
	struct cctx *c = arg;
	int i;

	for (i = 0; i < C_WAITS; i++) {
		if (csubmit(c, KPRIM_IOC_SEM_ACQUIRE, &c->acq, i + 1,
			    IOSQE_ASYNC))
			break;
		atomic_fetch_add(&c->submitted, 1);
		if (i % 200 == 199)
			usleep(500);
	}
	atomic_store(&c->stop, true);
	return NULL;
}

static void *c_canceller(void *arg)
{
	struct cctx *c = arg;

	while (!atomic_load(&c->stop)) {
		if (csubmit(c, KPRIM_IOC_WAIT_CANCEL, &c->wc,
			    UD_CANCEL + c->cancels, 0) == 0)
			c->cancels++;
		usleep(300);
	}
	return NULL;
}

TEST_F_TIMEOUT(f, wait_cancel_all_races_async_submitter, 60)
{
	static unsigned char seen[C_WAITS + 1];
	struct cctx c = { .sq_lock = PTHREAD_MUTEX_INITIALIZER };
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE,
				     .cq_entries = 16384 };
	long cancelled_by_cmd = 0, ecanceled = 0, other = 0;
	int max_batch = 0;
	int sess = kt_session(), cancel_cqes = 0, got = 0;
	pthread_t a, b;
	char name[64];
	__u64 ud;
	int res;

	ASSERT_LE(0, sess);
	if (!have_async(sess))
		SKIP(return, "no KPRIM_FEAT_URING_ASYNC");
	KT_NAME(name, "fc");
	c.fd = obj_new(sess, KPRIM_KIND_SEM, name, 1);
	ASSERT_LE(0, c.fd);
	c.acq = (struct kprim_sem_acquire){ .size = sizeof(c.acq), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, KPRIM_NO_CANCEL_FD) };
	/* hold the only permit: every acquire queues */
	{
		struct kprim_sem_acquire h = c.acq;

		h.wait.timeout_ns = 0;
		ASSERT_EQ(0, kt_ioctl(c.fd, KPRIM_IOC_SEM_ACQUIRE, &h));
	}
	c.wc = (struct kprim_wait_cancel){ .size = sizeof(c.wc),
					   .flags = KPRIM_WAIT_CANCEL_ALL };
	ASSERT_EQ(0, io_uring_queue_init_params(4096, &c.ring, &p));
	ASSERT_EQ(0, pthread_create(&a, NULL, c_submitter, &c));
	ASSERT_EQ(0, pthread_create(&b, NULL, c_canceller, &c));

	/* reap while both run; then a final cancel to end the rest */
	for (;;) {
		bool done = atomic_load(&c.stop);

		if (reap(&c.ring, 50, &ud, &res)) {
			if (done)
				break;
			continue;
		}
		if (ud >= UD_CANCEL) {
			cancel_cqes++;
			if (res > max_batch)
				max_batch = res;
			if (res > 0)
				cancelled_by_cmd += res;
			else if (res != -ENOENT) {
				other++;
				TH_LOG("cancel cqe %d", res);
			}
		} else {
			ASSERT_LE(ud, C_WAITS);
			if (seen[ud]++)
				TH_LOG("wait %llu: second CQE %d",
				       (unsigned long long)ud, res);
			ASSERT_EQ(1, seen[ud]);
			got++;
			if (res == -ECANCELED)
				ecanceled++;
			else {
				other++;
				TH_LOG("wait %llu res %d",
				       (unsigned long long)ud, res);
			}
		}
	}
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	ASSERT_EQ(0, csubmit(&c, KPRIM_IOC_WAIT_CANCEL, &c.wc, UD_CANCEL - 1, 0));
	c.cancels++;
	while (!reap(&c.ring, 2000, &ud, &res)) {
		if (ud >= UD_CANCEL - 1) {
			cancel_cqes++;
			if (res > 0)
				cancelled_by_cmd += res;
			else if (res != -ENOENT)
				other++;
			continue;
		}
		ASSERT_EQ(0, seen[ud]++);
		got++;
		if (res == -ECANCELED)
			ecanceled++;
		else
			other++;
	}
	TH_LOG("submitted %d waits, %d cancels (%ld ended by them, at most %d by one), %d wait CQEs",
	       atomic_load(&c.submitted), c.cancels, cancelled_by_cmd,
	       max_batch, got);
	EXPECT_EQ(c.cancels, cancel_cqes);
	EXPECT_EQ(atomic_load(&c.submitted), got);
	EXPECT_EQ(cancelled_by_cmd, ecanceled);
	EXPECT_EQ(0, other);
	EXPECT_EQ(0, sem_state(c.fd).waiters);
	EXPECT_EQ(1, sem_state(c.fd).held);
	io_uring_queue_exit(&c.ring);
	close(c.fd);
	close(sess);
}

/* ---- 2. max_uring_waits lowered under queued waits ---- */

static long param_rw(long val)
{
	char buf[32];
	long old;
	int fd = open(MAXW, O_RDWR);

	if (fd < 0)
		return -errno;
	if (read(fd, buf, sizeof(buf) - 1) <= 0) {
		close(fd);
		return -EIO;
	}
	old = atol(buf);
	if (val >= 0) {
		int n = snprintf(buf, sizeof(buf), "%ld", val);

		if (pwrite(fd, buf, n, 0) != n)
			old = -errno;
	}
	close(fd);
	return old;
}

struct blk { int fd; long ret; };

static void *blocking_acq(void *arg)
{
	struct blk *b = arg;
	struct kprim_sem_acquire a = { .size = sizeof(a), .n = 1,
		.wait = kt_wait(20 * SEC, KPRIM_NO_CANCEL_FD) };

	b->ret = kt_ioctl(b->fd, KPRIM_IOC_SEM_ACQUIRE, &a);
	return NULL;
}

TEST_F_TIMEOUT(f, max_uring_waits_lowered_under_queued_waits, 60)
{
	struct kprim_sem_acquire acq = { .size = sizeof(acq), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, KPRIM_NO_CANCEL_FD) };
	struct kprim_limiter_take take = { .size = sizeof(take), .n = 1,
		.wait = kt_wait(KPRIM_TIMEOUT_INFINITE, KPRIM_NO_CANCEL_FD) };
	struct kprim_wait_cancel wc = { .size = sizeof(wc),
					.flags = KPRIM_WAIT_CANCEL_ALL };
	struct kprim_sem_info s0, s1;
	struct kprim_limiter_info l0, l1;
	int sess = kt_session(), fd, lfd, i, pipefd[2], status;
	struct blk blk[4];
	pthread_t th[4];
	struct io_uring ring;
	char name[64], lname[64], c;
	long old;
	pid_t child;
	__u64 ud;
	int res;

	ASSERT_LE(0, sess);
	if (!have_async(sess))
		SKIP(return, "no KPRIM_FEAT_URING_ASYNC");
	old = param_rw(-1);
	if (old < 0 || geteuid() != 0)
		SKIP(return, "max_uring_waits not writable");
	KT_NAME(name, "fm");
	KT_NAME(lname, "fml");
	fd = obj_new(sess, KPRIM_KIND_SEM, name, 1);
	lfd = obj_new(sess, KPRIM_KIND_LIMITER, lname, 1);
	ASSERT_LE(0, fd);
	ASSERT_LE(0, lfd);
	acq.wait.timeout_ns = 0;
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &acq));
	acq.wait.timeout_ns = KPRIM_TIMEOUT_INFINITE;
	ASSERT_EQ(0, pipe(pipefd));

	/* another process queues 40 io_uring waits and keeps its ring */
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		struct io_uring r;

		if (setresuid(65534, 65534, 65534) ||
		    io_uring_queue_init(64, &r, 0))
			_exit(2);
		for (i = 0; i < 40; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&r);

			prep_kprim(sqe, fd, KPRIM_IOC_SEM_ACQUIRE, &acq, i + 1);
		}
		if (io_uring_submit(&r) != 40)
			_exit(3);
		if (read(pipefd[0], &c, 1) != 1)
			_exit(4);
		for (i = 0; i < 40; i++) {
			struct io_uring_cqe *cqe;

			if (io_uring_wait_cqe(&r, &cqe) || cqe->res != 0)
				_exit(5);
			io_uring_cqe_seen(&r, cqe);
		}
		_exit(0);
	}
	ASSERT_TRUE(sem_waiters_reach(fd, 40, 10 * SEC));

	/* lower the cap below what is queued */
	ASSERT_EQ(old, param_rw(10));
	ASSERT_EQ(0, io_uring_queue_init(64, &ring, 0));

	/* blocking ioctl waiters are not io_uring waits: they still queue */
	for (i = 0; i < 4; i++) {
		blk[i].fd = fd;
		blk[i].ret = 1;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, blocking_acq, &blk[i]));
	}
	EXPECT_TRUE(sem_waiters_reach(fd, 44, 10 * SEC));

	/* an io_uring wait at/over the cap: -ENOSPC and nothing changed */
	s0 = sem_state(fd);
	for (i = 0; i < 3; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		prep_kprim(sqe, fd, KPRIM_IOC_SEM_ACQUIRE, &acq, 100 + i);
		io_uring_sqe_set_flags(sqe, i == 1 ? IOSQE_ASYNC : 0);
	}
	ASSERT_EQ(3, io_uring_submit(&ring));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, reap(&ring, 5000, &ud, &res));
		EXPECT_EQ(-ENOSPC, res);
	}
	s1 = sem_state(fd);
	EXPECT_EQ(s0.waiters, s1.waiters);
	EXPECT_EQ(s0.held, s1.held);
	EXPECT_EQ(s0.acquired, s1.acquired);
	EXPECT_EQ(s0.available, s1.available);

	/* limiter at a cap of 1: one queued take, the second -ENOSPC */
	ASSERT_EQ(10, param_rw(1));
	{
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		prep_kprim(sqe, lfd, KPRIM_IOC_LIMITER_TAKE, &take, 200);
		ASSERT_EQ(1, io_uring_submit(&ring));
	}
	for (i = 0; i < 100 && lim_state(lfd).waiters != 1; i++)
		usleep(2000);
	l0 = lim_state(lfd);
	EXPECT_EQ(1, l0.waiters);
	{
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		prep_kprim(sqe, lfd, KPRIM_IOC_LIMITER_TAKE, &take, 201);
		ASSERT_EQ(1, io_uring_submit(&ring));
	}
	ASSERT_EQ(0, reap(&ring, 5000, &ud, &res));
	EXPECT_EQ(201, ud);
	EXPECT_EQ(-ENOSPC, res);
	l1 = lim_state(lfd);
	EXPECT_EQ(l0.waiters, l1.waiters);
	EXPECT_EQ(l0.throttled, l1.throttled);
	EXPECT_EQ(l0.tokens, l1.tokens);
	EXPECT_EQ(l0.admitted, l1.admitted);
	{
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		prep_kprim(sqe, lfd, KPRIM_IOC_WAIT_CANCEL, &wc, UD_CANCEL);
		ASSERT_EQ(1, io_uring_submit(&ring));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, reap(&ring, 5000, &ud, &res));
		EXPECT_EQ(ud == UD_CANCEL ? 1 : -ECANCELED, res);
	}
	EXPECT_EQ(1, param_rw(old));

	/* the child's waits survived the lowering; releasing grants them */
	{
		struct kprim_sem_resize rz = { .size = sizeof(rz), .permits = 100 };

		EXPECT_EQ(0, kt_ioctl(fd, KPRIM_IOC_SEM_RESIZE, &rz));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, blk[i].ret);
	}
	EXPECT_EQ(1, write(pipefd[1], "x", 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	/* the child saw its 40 waits granted, each once */
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, sem_state(fd).waiters);
	io_uring_queue_exit(&ring);
	close(fd);
	close(lfd);
	close(sess);
}

/* ---- 3. INCR under SET with signals every ms ---- */

#define KEY	"ctr"

struct ictx {
	int fd;
	atomic_bool stop_set, stop;
	atomic_int phase;		/* 0: race with SET, 1: count */
	pthread_barrier_t bar;
	atomic_long ok[2];		/* successful INCRs in phase 1 */
	atomic_long eintr[2], bad, restart512;
	pthread_t incr[2];
};

static void on_alrm(int sig) { (void)sig; }

static long do_set(int fd, const char *v)
{
	struct kprim_cache_store st = { .size = sizeof(st),
		.key = (uintptr_t)KEY, .key_len = 3, .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)v, .value_len = strlen(v) };

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &st);
}

static void *i_setter(void *arg)
{
	struct ictx *c = arg;

	while (!atomic_load(&c->stop_set))
		if (do_set(c->fd, "0"))
			atomic_fetch_add(&c->bad, 1);
	return NULL;
}

struct iarg { struct ictx *c; int idx; };

static void *i_incr(void *arg)
{
	struct iarg *ia = arg;
	struct ictx *c = ia->c;
	struct io_uring ring;
	bool uring = ia->idx == 1;
	int phase = 0;

	if (uring && io_uring_queue_init(8, &ring, 0)) {
		atomic_fetch_add(&c->bad, 1);
		uring = false;
	}
	for (;;) {
		struct kprim_cache_incr in = { .size = sizeof(in),
			.key = (uintptr_t)KEY, .key_len = 3, .delta = 1 };
		long ret;

		if (atomic_load(&c->phase) != phase) {
			pthread_barrier_wait(&c->bar);	/* main resets */
			pthread_barrier_wait(&c->bar);
			phase = 1;
		}
		if (atomic_load(&c->stop))
			break;
		if (uring) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			struct io_uring_cqe *cqe;

			prep_kprim(sqe, c->fd, KPRIM_IOC_CACHE_INCR, &in, 1);
			ret = io_uring_submit(&ring);
			if (ret != 1) {
				atomic_fetch_add(&c->bad, 1);
				continue;
			}
			do
				ret = io_uring_wait_cqe(&ring, &cqe);
			while (ret == -EINTR);
			if (ret) {
				atomic_fetch_add(&c->bad, 1);
				continue;
			}
			ret = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
		} else {
			ret = kt_ioctl(c->fd, KPRIM_IOC_CACHE_INCR, &in);
		}
		if (ret == 0) {
			if (phase)
				atomic_fetch_add(&c->ok[ia->idx], 1);
		} else if (ret == -EINTR) {
			atomic_fetch_add(&c->eintr[ia->idx], 1);
		} else if (ret == -512) {
			atomic_fetch_add(&c->restart512, 1);
		} else {
			atomic_fetch_add(&c->bad, 1);
		}
	}
	if (uring)
		io_uring_queue_exit(&ring);
	return NULL;
}

static void incr_round(struct __test_metadata *_metadata, int sa_flags)
{
	struct sigaction sa = { .sa_handler = on_alrm, .sa_flags = sa_flags };
	struct ictx c = { 0 };
	struct iarg ia[2] = { { &c, 0 }, { &c, 1 } };
	struct kprim_cache_get g = { .size = sizeof(g) };
	char name[64], val[32];
	int sess = kt_session(), i;
	pthread_t setter;
	uint64_t end;

	ASSERT_LE(0, sess);
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	KT_NAME(name, "fi");
	c.fd = obj_new(sess, KPRIM_KIND_CACHE, name, 0);
	ASSERT_LE(0, c.fd);
	ASSERT_EQ(0, do_set(c.fd, "0"));
	ASSERT_EQ(0, pthread_barrier_init(&c.bar, NULL, 3));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&c.incr[i], NULL, i_incr, &ia[i]));
	ASSERT_EQ(0, pthread_create(&setter, NULL, i_setter, &c));

	/* phase 0: INCR vs SET, SIGALRM to the INCR threads every ms */
	end = kt_now_ns() + 3 * SEC;
	while (kt_now_ns() < end) {
		pthread_kill(c.incr[0], SIGALRM);
		pthread_kill(c.incr[1], SIGALRM);
		usleep(1000);
	}
	atomic_store(&c.stop_set, true);
	pthread_join(setter, NULL);
	/* phase 1: SET a known value with the INCR threads parked, count */
	atomic_store(&c.phase, 1);
	pthread_barrier_wait(&c.bar);
	ASSERT_EQ(0, do_set(c.fd, "1000"));
	pthread_barrier_wait(&c.bar);
	end = kt_now_ns() + 3 * SEC;
	while (kt_now_ns() < end) {
		pthread_kill(c.incr[0], SIGALRM);
		pthread_kill(c.incr[1], SIGALRM);
		usleep(1000);
	}
	atomic_store(&c.stop, true);
	for (i = 0; i < 2; i++)
		pthread_join(c.incr[i], NULL);

	memset(val, 0, sizeof(val));
	g.key = (uintptr_t)KEY;
	g.key_len = 3;
	g.value = (uintptr_t)val;
	g.value_len = sizeof(val) - 1;
	ASSERT_EQ(0, kt_ioctl(c.fd, KPRIM_IOC_CACHE_GET, &g));
	TH_LOG("sa_flags %#x: ok %ld+%ld after the last SET, -EINTR ioctl %ld io_uring %ld, final %s",
	       sa_flags, atomic_load(&c.ok[0]), atomic_load(&c.ok[1]),
	       atomic_load(&c.eintr[0]), atomic_load(&c.eintr[1]), val);
	/* with SA_RESTART the ioctl restarts: it never reports -EINTR */
	if (sa_flags & SA_RESTART)
		EXPECT_EQ(0, atomic_load(&c.eintr[0]));
	EXPECT_EQ(0, atomic_load(&c.restart512));
	EXPECT_EQ(0, atomic_load(&c.bad));
	EXPECT_EQ(1000 + atomic_load(&c.ok[0]) + atomic_load(&c.ok[1]),
		  strtoull(val, NULL, 10));
	EXPECT_LT(0, atomic_load(&c.ok[0]));
	EXPECT_LT(0, atomic_load(&c.ok[1]));
	pthread_barrier_destroy(&c.bar);
	close(c.fd);
	close(sess);
	signal(SIGALRM, SIG_DFL);
}

TEST_F_TIMEOUT(f, incr_signals_counter_exact, 40)
{
	incr_round(_metadata, 0);
	incr_round(_metadata, SA_RESTART);
}

/* ---- 4. argument structs straddling an unmapped page ---- */

TEST_F_TIMEOUT(f, fast_copy_straddles_unmapped_page, 30)
{
	long pg = sysconf(_SC_PAGESIZE);
	int sess = kt_session(), sfd, lfd, i;
	struct kprim_sem_info s0, s1;
	struct kprim_limiter_info l0, l1;
	struct io_uring ring;
	char name[64], lname[64];
	unsigned char *m;
	__u64 ud;
	int res;

	ASSERT_LE(0, sess);
	KT_NAME(name, "fu");
	KT_NAME(lname, "ful");
	sfd = obj_new(sess, KPRIM_KIND_SEM, name, 4);
	lfd = obj_new(sess, KPRIM_KIND_LIMITER, lname, 5);
	ASSERT_LE(0, sfd);
	ASSERT_LE(0, lfd);
	/* the ring first: its mmap() must not land in the hole */
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	/* PROT_NONE keeps the hole reserved: nothing else maps there */
	ASSERT_EQ(0, mprotect(m + pg, pg, PROT_NONE));

	for (i = 0; i < 2; i++) {
		/* the first 8 bytes (size, flags) mapped, the rest not */
		struct kprim_sem_acquire *a = (void *)(m + pg - 8);
		struct kprim_limiter_info *li = (void *)(m + pg - 8);
		long r1, r2;

		s0 = sem_state(sfd);
		l0 = lim_state(lfd);
		a->size = sizeof(struct kprim_sem_acquire);
		a->flags = 0;
		if (!i) {
			r1 = kt_ioctl(sfd, KPRIM_IOC_SEM_ACQUIRE, a);
		} else {
			prep_kprim(io_uring_get_sqe(&ring), sfd,
				   KPRIM_IOC_SEM_ACQUIRE, a, 1);
			ASSERT_EQ(1, io_uring_submit(&ring));
			ASSERT_EQ(0, reap(&ring, 5000, &ud, &res));
			r1 = res;
		}
		EXPECT_EQ(-EFAULT, r1);
		li->size = sizeof(struct kprim_limiter_info);
		li->flags = 0;
		if (!i) {
			r2 = kt_ioctl(lfd, KPRIM_IOC_LIMITER_INFO, li);
		} else {
			prep_kprim(io_uring_get_sqe(&ring), lfd,
				   KPRIM_IOC_LIMITER_INFO, li, 2);
			ASSERT_EQ(1, io_uring_submit(&ring));
			ASSERT_EQ(0, reap(&ring, 5000, &ud, &res));
			r2 = res;
		}
		EXPECT_EQ(-EFAULT, r2);
		/* the mapped head is left as written */
		EXPECT_EQ(sizeof(struct kprim_limiter_info), li->size);
		EXPECT_EQ(0, li->flags);
		s1 = sem_state(sfd);
		l1 = lim_state(lfd);
		TH_LOG("%s: acquire %ld, info %ld; held %llu->%llu",
		       i ? "io_uring" : "ioctl", r1, r2,
		       (unsigned long long)s0.held, (unsigned long long)s1.held);
		EXPECT_EQ(s0.held, s1.held);
		EXPECT_EQ(s0.acquired, s1.acquired);
		EXPECT_EQ(s0.waiters, s1.waiters);
		EXPECT_EQ(l0.throttled, l1.throttled);
		EXPECT_EQ(l0.admitted, l1.admitted);
	}
	io_uring_queue_exit(&ring);
	munmap(m, 2 * pg);
	close(sfd);
	close(lfd);
	close(sess);
}

TEST_HARNESS_MAIN
