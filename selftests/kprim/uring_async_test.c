// SPDX-License-Identifier: GPL-2.0
/*
 * Asynchronous io_uring waits (KPRIM_FEAT_URING_ASYNC): a take or acquire
 * sent as IORING_OP_URING_CMD with a non-zero timeout that cannot be
 * granted at once is queued in the object's FIFO when the SQE is issued
 * and completed later by whoever grants it, without an io_uring worker
 * thread. Its CQE: 0 on a grant, -ETIMEDOUT when its timeout (from
 * submission) runs out, -ECANCELED for its cancel eventfd,
 * KPRIM_IOC_WAIT_CANCEL, the exit of the thread that submitted it or the
 * ring's teardown, -EINVAL when a resize or set makes it impossible.
 * Signals do not end it, and neither IORING_OP_ASYNC_CANCEL nor a linked
 * IORING_OP_LINK_TIMEOUT reaches it (io_uring does not pass cancellations
 * on to uring_cmd requests): KPRIM_IOC_WAIT_CANCEL is the way.
 *
 * Also here: FIFO with ioctl waiters (10,000 through one ring), grants
 * racing WAIT_CANCEL and cancel eventfds (invariants after every batch),
 * SIGKILL, exit and execve() with waits pending, DEFER_TASKRUN and SQPOLL
 * rings, IOSQE_ASYNC, links, and the argument read once at issue.
 */
#include <dirent.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define NSEC	1000000000ull
#define MSEC	1000000ull
#define INF	KPRIM_TIMEOUT_INFINITE
#define NOFD	KPRIM_NO_CANCEL_FD

/* user_data of commands that are not waits (cancels, infos). */
#define TAG_CTL	(1ull << 62)

/* --- helpers ------------------------------------------------------------- */

/* Queue and submit one kprim command: 0 or a negative errno. */
static int submit1(struct io_uring *ring, int fd, unsigned int cmd, void *arg,
		   __u64 ud)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	int ret;

	if (!sqe)
		return -EBUSY;
	prep_kprim(sqe, fd, cmd, arg, ud);
	ret = io_uring_submit(ring);
	return ret == 1 ? 0 : ret < 0 ? ret : -EIO;
}

/* The next CQE within @ms: 0 and its user_data and res, or -ETIME. */
static int next_cqe(struct io_uring *ring, unsigned int ms, __u64 *ud, int *res)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * MSEC,
	};
	struct io_uring_cqe *cqe;
	int ret;

	do {
		ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	} while (ret == -EINTR);
	if (ret)
		return ret;
	*ud = cqe->user_data;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/* True if a CQE is ready now (without waiting for one). */
static bool cqe_ready(struct io_uring *ring)
{
	struct io_uring_cqe *cqe;

	return io_uring_peek_cqe(ring, &cqe) == 0;
}

static struct kprim_wait_cancel wc_arg(__u64 ud, __u32 flags)
{
	struct kprim_wait_cancel c = {
		.size = sizeof(c), .flags = flags, .user_data = ud,
	};

	return c;
}

/*
 * KPRIM_IOC_WAIT_CANCEL through @ring on @fd for @ud: returns its CQE
 * result. CQEs of other requests that arrive meanwhile are stored in
 * other_ud/other_res (up to @max_other, counted in *n_other).
 */
static int wait_cancel(struct io_uring *ring, int fd, __u64 ud, __u32 flags,
		       __u64 *other_ud, int *other_res, int max_other,
		       int *n_other)
{
	struct kprim_wait_cancel c = wc_arg(ud, flags);
	__u64 got;
	int res, ret;

	ret = submit1(ring, fd, KPRIM_IOC_WAIT_CANCEL, &c, TAG_CTL | 0xca);
	if (ret)
		return ret == -EBUSY ? -EBUSY : -EIO;
	for (;;) {
		if (next_cqe(ring, 5000, &got, &res))
			return -EPIPE;	/* no CQE for the cancel itself */
		if (got == (TAG_CTL | 0xca))
			return res;
		if (n_other && *n_other < max_other) {
			other_ud[*n_other] = got;
			other_res[*n_other] = res;
		}
		if (n_other)
			(*n_other)++;
	}
}

static struct kprim_open sem_args(const char *name, __u64 permits)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_TRANSIENT);

	a.sem.permits = permits;
	return a;
}

static int sem_new(int sess, const char *name, __u64 permits)
{
	struct kprim_open a = sem_args(name, permits);

	return kt_open(sess, &a);
}

static int sem_again(int sess, const char *name)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name, 0);

	return kt_open(sess, &a);
}

static struct kprim_sem_acquire acq_arg(__u64 n, __u64 timeout, int cfd)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = n, .wait = kt_wait(timeout, cfd),
	};

	return a;
}

static long sem_acq(int fd, __u64 n, __u64 timeout)
{
	struct kprim_sem_acquire a = acq_arg(n, timeout, NOFD);

	return kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &a);
}

static long sem_rel(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

static long sem_resize(int fd, __u64 permits)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .permits = permits };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RESIZE, &r);
}

static struct kprim_sem_info sem_info(int fd)
{
	struct kprim_sem_info si = { .size = sizeof(si) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &si))
		memset(&si, 0xff, sizeof(si));
	return si;
}

/* Poll INFO until waiters == @w (and available == @avail unless ~0). */
static bool sem_settle(int fd, __u64 w, __u64 avail, unsigned int ms)
{
	uint64_t end = kt_now_ns() + ms * MSEC;

	for (;;) {
		struct kprim_sem_info si = sem_info(fd);

		if (si.waiters == w && (avail == ~0ull || si.available == avail))
			return true;
		if (kt_now_ns() > end)
			return false;
		usleep(2000);
	}
}

static int lim_new(int sess, __u64 rate, __u64 period, __u64 burst,
		   __u64 initial)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_INITIAL);

	a.limiter.rate = rate;
	a.limiter.period_ns = period;
	a.limiter.burst = burst;
	a.limiter.initial = initial;
	return kt_open(sess, &a);
}

static struct kprim_limiter_info lim_info(int fd)
{
	struct kprim_limiter_info li = { .size = sizeof(li) };

	if (kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &li))
		memset(&li, 0xff, sizeof(li));
	return li;
}

static struct kprim_limiter_take take_arg(__u64 n, __u64 timeout, int cfd)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = n, .wait = kt_wait(timeout, cfd),
	};

	return t;
}

/* A ring of @sq SQ entries and @cq CQ entries. */
static int big_ring(struct io_uring *ring, unsigned int sq, unsigned int cq,
		    unsigned int flags)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	p.flags = flags | IORING_SETUP_CQSIZE;
	p.cq_entries = cq;
	return io_uring_queue_init_params(sq, ring, &p);
}

/* --- fixture ------------------------------------------------------------- */

FIXTURE(async) {
	int sess;
	struct io_uring ring;
	bool have_ring;
	char name[64];
	int holder, w;	/* two fds of one semaphore, when a test makes one */
};

FIXTURE_SETUP(async)
{
	struct kprim_api api = { .size = sizeof(api) };
	int ret;

	self->have_ring = false;
	self->holder = self->w = -1;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, kt_ioctl(self->sess, KPRIM_IOC_API, &api));
	if (!(api.features & KPRIM_FEAT_URING_ASYNC))
		SKIP(return, "module without KPRIM_FEAT_URING_ASYNC (features %#llx)",
		     (unsigned long long)api.features);
	ret = io_uring_queue_init(256, &self->ring, 0);
	if (ret == -ENOSYS || ret == -EPERM)
		SKIP(return, "io_uring not available: %s", strerror(-ret));
	ASSERT_EQ(0, ret);
	self->have_ring = true;
}

FIXTURE_TEARDOWN(async)
{
	if (self->have_ring)
		io_uring_queue_exit(&self->ring);
	if (self->w >= 0)
		close(self->w);
	if (self->holder >= 0)
		close(self->holder);
	if (self->sess >= 0)
		close(self->sess);
}

/* self->holder and self->w: two fds of a new semaphore of @permits. */
#define SEM2(permits) do {						\
	KT_NAME(self->name, "async");					\
	self->holder = sem_new(self->sess, self->name, (permits));	\
	ASSERT_LE(0, self->holder);					\
	self->w = sem_again(self->sess, self->name);			\
	ASSERT_LE(0, self->w);						\
} while (0)

/* --- granted at once, queued otherwise ----------------------------------- */

TEST_F(async, grant_at_once_completes_in_the_submit_call)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	__u64 ud;
	int res;

	SEM2(1);
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	/* The CQE was posted by io_uring_enter() itself. */
	ASSERT_TRUE(cqe_ready(&self->ring));
	ASSERT_EQ(0, next_cqe(&self->ring, 0, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
	EXPECT_EQ(0, sem_info(self->w).waiters);
	EXPECT_EQ(0, count_io_workers());
}

/*
 * A wait is queued by io_uring_enter() itself (INFO sees it as soon as the
 * submit returns), holds no worker, and is granted by a release from
 * another thread (completion from a task that is not the submitter).
 */
struct delayed_release {
	int fd;
	__u64 n;
	unsigned int delay_ms;
	long ret;
};

static void *delayed_release_fn(void *arg)
{
	struct delayed_release *d = arg;

	usleep(d->delay_ms * 1000);
	d->ret = sem_rel(d->fd, d->n);
	return NULL;
}

TEST_F(async, queued_at_issue_granted_by_another_thread)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct delayed_release d = { .n = 1, .delay_ms = 100 };
	struct kprim_sem_info si;
	pthread_t th;
	__u64 ud;
	int res;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 7));
	si = sem_info(self->holder);
	EXPECT_EQ(1, si.waiters);
	EXPECT_EQ(0, si.available);
	EXPECT_FALSE(cqe_ready(&self->ring));
	EXPECT_EQ(0, count_io_workers());
	d.fd = self->holder;
	ASSERT_EQ(0, pthread_create(&th, NULL, delayed_release_fn, &d));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	pthread_join(th, NULL);
	EXPECT_EQ(0, d.ret);
	EXPECT_EQ(7, ud);
	EXPECT_EQ(0, res);
	si = sem_info(self->w);
	EXPECT_EQ(1, si.held_by_me);
	EXPECT_EQ(0, si.waiters);
	EXPECT_EQ(0, si.available);
	EXPECT_EQ(0, count_io_workers());
}

/* --- 10,000 waits through one ring, FIFO with ioctl waiters -------------- */

#define NA	10000
/* Blocking ioctl acquires join the FIFO after this many io_uring ones. */
static const int ioctl_pos[] = { 0, 1, 4096, 5000, 9999, NA };
#define NT	((int)(sizeof(ioctl_pos) / sizeof(ioctl_pos[0])))

struct grant_log {
	_Atomic int idx;
	int seq[NA + NT];
};

struct ioctl_waiter {
	pthread_t th;
	int fd, id;
	struct grant_log *log;
	long err;
};

static void *ioctl_waiter_fn(void *arg)
{
	struct ioctl_waiter *w = arg;
	long r = sem_acq(w->fd, 1, INF);

	if (r) {
		w->err = r;
		return NULL;
	}
	/* Logged before the release: the log is the grant order. */
	w->log->seq[atomic_fetch_add(&w->log->idx, 1)] = -1 - w->id;
	w->err = sem_rel(w->fd, 1);
	return NULL;
}

TEST_F_TIMEOUT(async, ten_thousand_waits_one_ring_fifo_with_ioctl_waiters, 300)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct ioctl_waiter th[NT];
	struct grant_log *log;
	struct kprim_sem_info si;
	struct io_uring ring;
	int next = 0, k = 0, i, got, res, e, bad = -1;
	int expect[NA + NT];
	__u64 ud, t0;

	SEM2(1);
	ASSERT_EQ(0, big_ring(&ring, 256, 16384, 0));
	log = calloc(1, sizeof(*log));
	ASSERT_NE(NULL, log);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	memset(th, 0, sizeof(th));

	t0 = kt_now_ns();
	while (next < NA || k < NT) {
		int end;

		while (k < NT && ioctl_pos[k] == next) {
			th[k].fd = sem_again(self->sess, self->name);
			ASSERT_LE(0, th[k].fd);
			th[k].id = k;
			th[k].log = log;
			ASSERT_EQ(0, pthread_create(&th[k].th, NULL,
						    ioctl_waiter_fn, &th[k]));
			k++;
			ASSERT_TRUE(sem_settle(self->holder, next + k, ~0ull,
					       10000))
				TH_LOG("ioctl waiter %d did not queue", k - 1);
		}
		if (next == NA)
			break;
		end = next + 256;
		if (k < NT && ioctl_pos[k] < end)
			end = ioctl_pos[k];
		if (end > NA)
			end = NA;
		for (i = next; i < end; i++)
			prep_kprim(io_uring_get_sqe(&ring), self->w,
				   KPRIM_IOC_SEM_ACQUIRE, &a, i);
		ASSERT_EQ(end - next, io_uring_submit(&ring));
		next = end;
		/* Queued by the submitting call itself, on no worker. */
		ASSERT_EQ(next + k, sem_info(self->holder).waiters)
			TH_LOG("after submitting %d", next);
		ASSERT_EQ(0, count_io_workers()) TH_LOG("after %d", next);
	}
	TH_LOG("%d io_uring + %d ioctl waiters queued in %llu ms", NA, NT,
	       (unsigned long long)((kt_now_ns() - t0) / MSEC));
	si = sem_info(self->holder);
	ASSERT_EQ(NA + NT, si.waiters);
	EXPECT_EQ(0, si.available);
	EXPECT_FALSE(cqe_ready(&ring));

	/* One permit, passed along the queue: each holder releases it. */
	t0 = kt_now_ns();
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	for (got = 0; got < NA; got++) {
		ASSERT_EQ(0, next_cqe(&ring, 20000, &ud, &res))
			TH_LOG("no CQE after %d grants (waiters %llu)", got,
			       (unsigned long long)sem_info(self->holder).waiters);
		ASSERT_EQ(0, res) TH_LOG("user_data %llu", (unsigned long long)ud);
		ASSERT_LT(ud, NA);
		log->seq[atomic_fetch_add(&log->idx, 1)] = (int)ud;
		ASSERT_EQ(0, sem_rel(self->w, 1)) TH_LOG("after %llu",
							 (unsigned long long)ud);
	}
	for (i = 0; i < NT; i++) {
		pthread_join(th[i].th, NULL);
		EXPECT_EQ(0, th[i].err) TH_LOG("ioctl waiter %d", i);
		close(th[i].fd);
	}
	TH_LOG("%d grants in %llu ms", NA + NT,
	       (unsigned long long)((kt_now_ns() - t0) / MSEC));

	/* The expected order: submission order, ioctl waiters in place. */
	for (next = 0, e = 0, k = 0; next <= NA; next++) {
		while (k < NT && ioctl_pos[k] == next)
			expect[e++] = -1 - k++;
		if (next < NA)
			expect[e++] = next;
	}
	ASSERT_EQ(NA + NT, e);
	ASSERT_EQ(NA + NT, atomic_load(&log->idx));
	for (i = 0; i < NA + NT; i++)
		if (log->seq[i] != expect[i]) {
			bad = i;
			break;
		}
	EXPECT_EQ(-1, bad) TH_LOG("grant %d went to %d, expected %d (negative: ioctl waiter -1-k)",
				  bad, bad >= 0 ? log->seq[bad] : 0,
				  bad >= 0 ? expect[bad] : 0);
	si = sem_info(self->holder);
	EXPECT_EQ(0, si.waiters);
	EXPECT_EQ(1, si.available);
	EXPECT_EQ(0, si.held);
	EXPECT_EQ(1 + NA + NT, si.acquired);
	EXPECT_FALSE(cqe_ready(&ring));
	EXPECT_EQ(0, count_io_workers());
	io_uring_queue_exit(&ring);
	free(log);
}

/* --- limiter: FIFO and rate; timeouts run from submission ---------------- */

/*
 * Takes of 1..3 tokens queued at once on an empty bucket are granted in
 * FIFO order at the rate. The order is judged by the grants, not by the
 * order of the CQEs: requests granted by one pass may have their CQEs
 * posted in any order (6.1 runs io_uring task work LIFO). When take k
 * completes, every take before it must have been admitted already.
 */
TEST_F_TIMEOUT(async, limiter_takes_fifo_at_the_rate, 60)
{
	static const __u64 ns[] = { 1, 3, 1, 2, 1, 1, 3, 1 };
	enum { N = sizeof(ns) / sizeof(ns[0]) };
	const __u64 period = 100 * MSEC;
	struct kprim_limiter_take t[N];
	struct kprim_limiter_info li;
	__u64 t_create, t_sub, t_done[N], admitted_at[N], ud, cum = 0;
	int fd, i, res, inversions = 0, last = -1;

	t_create = kt_now_ns();
	fd = lim_new(self->sess, 1, period, 3, 0);
	ASSERT_LE(0, fd);
	for (i = 0; i < N; i++) {
		t[i] = take_arg(ns[i], INF, NOFD);
		prep_kprim(io_uring_get_sqe(&self->ring), fd,
			   KPRIM_IOC_LIMITER_TAKE, &t[i], i);
	}
	ASSERT_EQ(N, io_uring_submit(&self->ring));
	t_sub = kt_now_ns();
	li = lim_info(fd);
	if (t_sub - t_create < period)	/* no token can have come yet */
		EXPECT_EQ(N, li.waiters);
	EXPECT_EQ(0, count_io_workers());
	memset(t_done, 0, sizeof(t_done));
	for (i = 0; i < N; i++) {
		ASSERT_EQ(0, next_cqe(&self->ring, 10000, &ud, &res))
			TH_LOG("completion %d", i);
		ASSERT_LT(ud, N);
		ASSERT_EQ(0, t_done[ud]) TH_LOG("take %llu twice",
						(unsigned long long)ud);
		t_done[ud] = kt_now_ns();
		admitted_at[ud] = lim_info(fd).admitted;
		EXPECT_EQ(0, res) TH_LOG("take %llu", (unsigned long long)ud);
		inversions += (int)ud < last;
		last = (int)ud;
	}
	for (i = 0; i < N; i++) {
		cum += ns[i];
		/* FIFO: a large request at the head holds back small ones. */
		EXPECT_LE(cum, admitted_at[i])
			TH_LOG("take %d done with %llu admitted, before those queued ahead of it",
			       i, (unsigned long long)admitted_at[i]);
		/* Never faster than the rate (tokens accrue from creation)... */
		EXPECT_LE(cum * period, t_done[i] - t_create + MSEC)
			TH_LOG("take %d: %llu tokens after %llu ms", i,
			       (unsigned long long)cum,
			       (unsigned long long)((t_done[i] - t_create) / MSEC));
		/* ...and granted by the refill itself, not much later. */
		EXPECT_GE(cum * period + NSEC, t_done[i] - t_create)
			TH_LOG("take %d: %llu tokens after %llu ms", i,
			       (unsigned long long)cum,
			       (unsigned long long)((t_done[i] - t_create) / MSEC));
	}
	if (inversions)
		TH_LOG("%d CQEs out of submission order (one grant pass)",
		       inversions);
	li = lim_info(fd);
	EXPECT_EQ(0, li.waiters);
	EXPECT_EQ(cum, li.admitted);
	EXPECT_EQ(0, count_io_workers());
	close(fd);
}

TEST_F(async, take_timeout_runs_from_submission)
{
	struct kprim_limiter_take t = take_arg(1, 200 * MSEC, NOFD);
	struct kprim_limiter_info li;
	__u64 ud, t0;
	int fd, res;

	fd = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, fd);
	t.retry_after_ns = 0;
	t0 = kt_now_ns();
	ASSERT_EQ(0, submit1(&self->ring, fd, KPRIM_IOC_LIMITER_TAKE, &t, 5));
	EXPECT_EQ(1, lim_info(fd).waiters);
	/* Not reaped, not waited for: the ring is not entered for 300 ms. */
	usleep(300 * 1000);
	ASSERT_EQ(0, next_cqe(&self->ring, 30, &ud, &res))
		TH_LOG("no CQE 300 ms after a 200 ms take was submitted");
	TH_LOG("reaped %llu ms after submission",
	       (unsigned long long)((kt_now_ns() - t0) / MSEC));
	EXPECT_EQ(5, ud);
	EXPECT_EQ(-ETIMEDOUT, res);
	/* As the ioctl: how long until a new take of 1 could succeed. */
	EXPECT_LT(3000 * NSEC, t.retry_after_ns);
	EXPECT_GE(3600 * NSEC, t.retry_after_ns);
	li = lim_info(fd);
	EXPECT_EQ(0, li.waiters);
	EXPECT_EQ(0, li.admitted);
	EXPECT_LE(1, li.throttled);
	close(fd);
}

TEST_F(async, acquire_timeout_leaves_the_queue)
{
	struct kprim_sem_acquire a = acq_arg(1, 150 * MSEC, NOFD);
	__u64 ud, t0, dt;
	int res;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	t0 = kt_now_ns();
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 3));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	dt = kt_now_ns() - t0;
	EXPECT_EQ(3, ud);
	EXPECT_EQ(-ETIMEDOUT, res);
	EXPECT_LE(150 * MSEC, dt);
	EXPECT_GT(2 * NSEC, dt);
	EXPECT_EQ(0, sem_info(self->holder).waiters);
	/* A later release is not handed to the timed-out wait. */
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	EXPECT_EQ(1, sem_info(self->holder).available);
	EXPECT_EQ(0, sem_info(self->w).held_by_me);
	EXPECT_FALSE(cqe_ready(&self->ring));
}

/* --- cancellation ---------------------------------------------------------- */

TEST_F(async, cancel_eventfd_ends_a_queued_wait)
{
	struct kprim_sem_acquire a1, a2 = acq_arg(1, INF, NOFD);
	struct kprim_limiter_take t;
	eventfd_t v = 0;
	__u64 ud, t0;
	int efd, lim, res;

	SEM2(1);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ASSERT_LE(0, efd);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	a1 = acq_arg(1, INF, efd);
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a1, 1));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a2, 2));
	ASSERT_EQ(2, sem_info(self->holder).waiters);
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	t0 = kt_now_ns();
	ASSERT_EQ(0, eventfd_write(efd, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_GT(NSEC, kt_now_ns() - t0);
	EXPECT_EQ(1, ud);
	EXPECT_EQ(-ECANCELED, res);
	/* It left the queue; the one behind it did not. */
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	/* The counter is not read. */
	EXPECT_EQ(0, eventfd_read(efd, &v));
	EXPECT_EQ(1, v);
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(2, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
	EXPECT_EQ(0, sem_info(self->w).waiters);

	/* The same for a limiter take. */
	lim = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, lim);
	t = take_arg(1, INF, efd);
	ASSERT_EQ(0, submit1(&self->ring, lim, KPRIM_IOC_LIMITER_TAKE, &t, 4));
	EXPECT_EQ(1, lim_info(lim).waiters);
	ASSERT_EQ(0, eventfd_write(efd, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(4, ud);
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(0, lim_info(lim).waiters);
	EXPECT_EQ(0, lim_info(lim).admitted);
	close(lim);
	close(efd);
}

TEST_F(async, wait_cancel_by_user_data_and_all)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	__u64 oud[8], ud;
	int ores[8], no = 0, res, r;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	for (ud = 10; ud < 14; ud++)
		ASSERT_EQ(0, submit1(&self->ring, self->w,
				     KPRIM_IOC_SEM_ACQUIRE, &a, ud));
	ASSERT_EQ(4, sem_info(self->holder).waiters);

	/* By user_data, sent on the fd the waits are queued on. */
	r = wait_cancel(&self->ring, self->w, 11, 0, oud, ores, 8, &no);
	EXPECT_EQ(1, r);
	/* On another fd of the same object. */
	r = wait_cancel(&self->ring, self->holder, 10, 0, oud, ores, 8, &no);
	EXPECT_EQ(1, r);
	/* Gone already, and never queued. */
	EXPECT_EQ(-ENOENT, wait_cancel(&self->ring, self->w, 11, 0, oud, ores, 8, &no));
	EXPECT_EQ(-ENOENT, wait_cancel(&self->ring, self->w, 999, 0, oud, ores, 8, &no));
	while (no < 2 && !next_cqe(&self->ring, 5000, &ud, &res)) {
		oud[no] = ud;
		ores[no++] = res;
	}
	ASSERT_EQ(2, no);
	/* In either order: a cancelled wait may complete after its cancel. */
	EXPECT_TRUE((oud[0] == 11 && oud[1] == 10) ||
		    (oud[0] == 10 && oud[1] == 11))
		TH_LOG("cancelled: %llu %llu", (unsigned long long)oud[0],
		       (unsigned long long)oud[1]);
	EXPECT_EQ(-ECANCELED, ores[0]);
	EXPECT_EQ(-ECANCELED, ores[1]);
	EXPECT_EQ(2, sem_info(self->holder).waiters);

	/* ALL: whatever the user_data. */
	no = 0;
	r = wait_cancel(&self->ring, self->w, 12345, KPRIM_WAIT_CANCEL_ALL,
			oud, ores, 8, &no);
	EXPECT_EQ(2, r);
	while (no < 2 && !next_cqe(&self->ring, 5000, &ud, &res)) {
		oud[no] = ud;
		ores[no++] = res;
	}
	ASSERT_EQ(2, no);
	EXPECT_TRUE((oud[0] == 12 && oud[1] == 13) ||
		    (oud[0] == 13 && oud[1] == 12))
		TH_LOG("cancelled: %llu %llu", (unsigned long long)oud[0],
		       (unsigned long long)oud[1]);
	EXPECT_EQ(-ECANCELED, ores[0]);
	EXPECT_EQ(-ECANCELED, ores[1]);
	EXPECT_EQ(0, sem_info(self->holder).waiters);
	EXPECT_EQ(-ENOENT, wait_cancel(&self->ring, self->w, 0,
				       KPRIM_WAIT_CANCEL_ALL, NULL, NULL, 0, NULL));
	/* Nothing was held on the way. */
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	EXPECT_EQ(1, sem_info(self->holder).available);
	EXPECT_EQ(0, sem_info(self->w).held_by_me);
	EXPECT_FALSE(cqe_ready(&self->ring));
}

TEST_F(async, wait_cancel_leaves_other_rings_and_objects_alone)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct kprim_limiter_take t = take_arg(1, INF, NOFD);
	struct io_uring r2;
	__u64 ud;
	int res, other, lim;
	char name2[64];

	SEM2(1);
	KT_NAME(name2, "async-other");
	other = sem_new(self->sess, name2, 1);
	ASSERT_LE(0, other);
	ASSERT_EQ(0, sem_acq(other, 1, 0));
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	ASSERT_EQ(0, io_uring_queue_init(8, &r2, 0));

	/* Same user_data 10 on both rings. */
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 10));
	ASSERT_EQ(0, submit1(&r2, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 10));
	ASSERT_EQ(2, sem_info(self->holder).waiters);

	/* Another ring: not its wait, whatever the user_data. */
	EXPECT_EQ(-ENOENT, wait_cancel(&r2, self->w, 77, 0, NULL, NULL, 0, NULL));
	/* Another object: -ENOENT, both waits stay. */
	EXPECT_EQ(-ENOENT, wait_cancel(&self->ring, other, 10, 0, NULL, NULL, 0, NULL));
	EXPECT_EQ(-ENOENT, wait_cancel(&self->ring, other, 0,
				       KPRIM_WAIT_CANCEL_ALL, NULL, NULL, 0, NULL));
	lim = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, lim);
	EXPECT_EQ(-ENOENT, wait_cancel(&self->ring, lim, 10, 0, NULL, NULL, 0, NULL));
	EXPECT_EQ(2, sem_info(self->holder).waiters);

	/* r2 cancels its own: the first ring's wait with user_data 10 stays. */
	EXPECT_EQ(1, wait_cancel(&r2, self->w, 10, 0, NULL, NULL, 0, NULL));
	ASSERT_EQ(0, next_cqe(&r2, 5000, &ud, &res));
	EXPECT_EQ(10, ud);
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	EXPECT_FALSE(cqe_ready(&self->ring));

	/* A limiter take is cancelled through the limiter's fd. */
	ASSERT_EQ(0, submit1(&r2, lim, KPRIM_IOC_LIMITER_TAKE, &t, 20));
	EXPECT_EQ(1, lim_info(lim).waiters);
	EXPECT_EQ(-ENOENT, wait_cancel(&r2, self->w, 20, 0, NULL, NULL, 0, NULL));
	EXPECT_EQ(1, wait_cancel(&r2, lim, 20, 0, NULL, NULL, 0, NULL));
	ASSERT_EQ(0, next_cqe(&r2, 5000, &ud, &res));
	EXPECT_EQ(20, ud);
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(0, lim_info(lim).waiters);

	/* The survivor is granted normally. */
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(10, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
	io_uring_queue_exit(&r2);
	close(lim);
	close(other);
}

TEST_F(async, wait_cancel_bad_arguments)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct kprim_wait_cancel c = wc_arg(1, 0);
	struct {
		struct kprim_wait_cancel c;
		__u64 tail;
	} big;
	__u64 ud;
	int res;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	ASSERT_EQ(1, sem_info(self->holder).waiters);

	/* Not an ioctl; and not a command of the session fd. */
	EXPECT_EQ(-EOPNOTSUPP, kt_ioctl(self->w, KPRIM_IOC_WAIT_CANCEL, &c));
	EXPECT_EQ(-EOPNOTSUPP, kt_ioctl(self->holder, KPRIM_IOC_WAIT_CANCEL, &c));
	EXPECT_EQ(-ENOTTY, kt_ioctl(self->sess, KPRIM_IOC_WAIT_CANCEL, &c));
	/* Unknown flags. */
	for (int bit = 1; bit < 32; bit += 5) {
		c = wc_arg(1, KPRIM_WAIT_CANCEL_ALL | (1u << bit));
		ASSERT_EQ(0, submit1(&self->ring, self->w,
				     KPRIM_IOC_WAIT_CANCEL, &c, TAG_CTL));
		ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
		EXPECT_EQ(TAG_CTL, ud);
		EXPECT_EQ(-EINVAL, res) TH_LOG("flag bit %d", bit);
	}
	/* Short. */
	c = wc_arg(1, 0);
	c.size = 8;
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_WAIT_CANCEL, &c, TAG_CTL));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(-EINVAL, res);
	c.size = KPRIM_SIZE_WAIT_CANCEL_VER0 - 1;
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_WAIT_CANCEL, &c, TAG_CTL));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(-EINVAL, res);
	/* Longer with a non-zero tail. */
	big.c = wc_arg(1, 0);
	big.c.size = sizeof(big);
	big.tail = 1;
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_WAIT_CANCEL, &big, TAG_CTL));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(-E2BIG, res);
	/* Bad pointer. */
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_WAIT_CANCEL,
			     (void *)8, TAG_CTL));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(-EFAULT, res);
	/* On the session fd, which takes no io_uring commands at all. */
	c = wc_arg(1, 0);
	ASSERT_EQ(0, submit1(&self->ring, self->sess, KPRIM_IOC_WAIT_CANCEL, &c, TAG_CTL));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(-EOPNOTSUPP, res);
	/* None of them touched the wait. */
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	EXPECT_FALSE(cqe_ready(&self->ring));
	/* A longer struct with a zero tail is fine. */
	big.tail = 0;
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_WAIT_CANCEL, &big, TAG_CTL));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	if (ud == TAG_CTL) {
		EXPECT_EQ(1, res);
		ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
		EXPECT_EQ(1, ud);
	} else {
		EXPECT_EQ(1, ud);
		EXPECT_EQ(-ECANCELED, res);
		ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
		EXPECT_EQ(TAG_CTL, ud);
		EXPECT_EQ(1, res);
		res = -ECANCELED;
	}
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(0, sem_info(self->holder).waiters);
}

/*
 * io_uring does not pass IORING_OP_ASYNC_CANCEL on to uring_cmd requests
 * (io_uring/cancel.c looks only at its own poll, timeout, futex/waitid
 * lists and io-wq): a kprim wait is not found and stays queued. This is
 * a kernel limitation, documented in the uapi; KPRIM_IOC_WAIT_CANCEL is
 * the way.
 */
TEST_F(async, io_uring_async_cancel_does_not_reach_the_wait)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct io_uring_sqe *sqe;
	__u64 ud;
	int res;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	ASSERT_EQ(1, sem_info(self->holder).waiters);

	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	sqe->user_data = TAG_CTL | 1;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(TAG_CTL | 1, ud);
	EXPECT_EQ(-ENOENT, res);

	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_cancel_fd(sqe, self->w, IORING_ASYNC_CANCEL_ALL);
	sqe->user_data = TAG_CTL | 2;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(TAG_CTL | 2, ud);
	EXPECT_TRUE(res == -ENOENT || res == 0) TH_LOG("cancel by fd: %d", res);

	/* Still queued: no CQE, still counted, granted on release. */
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
}

static volatile int sigs_seen;

static void on_usr1(int sig)
{
	(void)sig;
	sigs_seen++;
}

struct pinger {
	pthread_t target;
	volatile bool stop;
};

/* SIGUSR1 to the main thread every 5 ms, while it waits on its ring. */
static void *pinger_fn(void *arg)
{
	struct pinger *p = arg;

	while (!p->stop) {
		pthread_kill(p->target, SIGUSR1);
		usleep(5000);
	}
	return NULL;
}

TEST_F(async, signals_do_not_end_the_wait)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	struct kprim_sem_acquire a = acq_arg(1, 10 * NSEC, NOFD);
	struct pinger p = { .target = pthread_self() };
	struct io_uring_cqe *cqe;
	pthread_t th;
	__u64 ud, end;
	int res, eintr = 0;

	SEM2(1);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	ASSERT_EQ(0, pthread_create(&th, NULL, pinger_fn, &p));
	/* Waiting on the ring and interrupted, again and again. */
	end = kt_now_ns() + 300 * MSEC;
	while (kt_now_ns() < end) {
		struct __kernel_timespec ts = { .tv_nsec = 20 * MSEC };

		res = io_uring_wait_cqe_timeout(&self->ring, &cqe, &ts);
		ASSERT_TRUE(res == -EINTR || res == -ETIME)
			TH_LOG("wait: %d (user_data %llu res %d)", res,
			       res ? 0ull : (unsigned long long)cqe->user_data,
			       res ? 0 : cqe->res);
		eintr += res == -EINTR;
	}
	p.stop = true;
	pthread_join(th, NULL);
	TH_LOG("%d signals, %d interrupted ring waits", sigs_seen, eintr);
	EXPECT_LE(10, sigs_seen);
	EXPECT_FALSE(cqe_ready(&self->ring));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
}

/* --- grants racing cancels ------------------------------------------------- */

#define RB	64		/* acquires per batch */
#define RBATCHES 1563		/* 100,032 acquires */
#define RPERMITS 8
/*
 * Wall-clock budget of each race test: the 100,032 acquires take ~3 s on
 * the stock kernel and ~70 s on the debug kernel on an idle host; on a
 * loaded host the budget ends the run earlier (logged), before the
 * harness's timeout would.
 */
#define RACE_BUDGET_NS	(120 * NSEC)

struct releaser {
	int fd;
	pthread_barrier_t go, done;
	volatile bool stop;
	unsigned int seed;
	unsigned int max_spin;	/* between releases; set between batches */
	unsigned int max_sleep_us;	/* or sleep between them, if set */
	long errors;
};

/*
 * Aim the releases at the cancels: slower when they were all over before
 * the cancels came (@early), faster when the cancels came first (@late).
 */
static void aim(struct releaser *r, bool early, bool late)
{
	if (early && r->max_spin < 100000)
		r->max_spin += r->max_spin / 4 + 1;
	else if (late && r->max_spin > 16)
		r->max_spin -= r->max_spin / 5;
}

static void spin(unsigned int n)
{
	for (volatile unsigned int i = 0; i < n; i++)
		;
}

static void *releaser_fn(void *arg)
{
	struct releaser *r = arg;

	for (;;) {
		pthread_barrier_wait(&r->go);
		if (r->stop)
			break;
		for (int i = 0; i < RPERMITS; i++) {
			if (r->max_sleep_us)
				usleep(rand_r(&r->seed) % r->max_sleep_us);
			else
				spin(rand_r(&r->seed) % r->max_spin);
			if (sem_rel(r->fd, 1))
				r->errors++;
		}
		pthread_barrier_wait(&r->done);
	}
	return NULL;
}

TEST_F_TIMEOUT(async, grants_race_cancels, 300)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct releaser rel = { .seed = 1, .max_spin = 3000 };
	unsigned char *seen;
	unsigned int seed = 42;
	__u64 granted_total = 0, released_total = 0, cancelled_total = 0;
	__u64 t0 = kt_now_ns(), interleaved = 0;
	struct kprim_sem_info si;
	struct io_uring ring;
	pthread_t th;
	int b;

	SEM2(RPERMITS);
	ASSERT_EQ(0, big_ring(&ring, 256, 1024, 0));
	seen = calloc(RB * RBATCHES, 1);
	ASSERT_NE(NULL, seen);
	rel.fd = self->holder;
	ASSERT_EQ(0, pthread_barrier_init(&rel.go, NULL, 2));
	ASSERT_EQ(0, pthread_barrier_init(&rel.done, NULL, 2));
	ASSERT_EQ(0, pthread_create(&th, NULL, releaser_fn, &rel));

	for (b = 0; b < RBATCHES && !_metadata->exit_code &&
	     kt_now_ns() - t0 < RACE_BUDGET_NS; b++) {
		struct kprim_wait_cancel wc[RB + 1];
		int order[RB], res_of[RB], cancel_res[RB + 1];
		int i, j, nc = 0, expect, granted = 0, cancelled = 0;
		int ended_by_cancels = 0, all_at = -1;
		bool release_first = b & 1, ascending = rand_r(&seed) % 2;
		__u64 base = (__u64)b * RB, ud;
		int res;

		ASSERT_EQ(0, sem_acq(self->holder, RPERMITS, 0)) TH_LOG("batch %d", b);
		if (release_first)	/* grants race the issue itself */
			pthread_barrier_wait(&rel.go);
		for (i = 0; i < RB; i++)
			prep_kprim(io_uring_get_sqe(&ring), self->w,
				   KPRIM_IOC_SEM_ACQUIRE, &a, base + i);
		ASSERT_EQ(RB, io_uring_submit(&ring));
		if (!release_first) {
			ASSERT_EQ(RB, sem_info(self->holder).waiters);
			pthread_barrier_wait(&rel.go);
		}
		spin(rand_r(&seed) % 5000);

		/* Cancel every one: in queue order or at random, maybe ALL. */
		for (i = 0; i < RB; i++)
			order[i] = i;
		if (!ascending)
			for (i = RB - 1; i > 0; i--) {
				j = rand_r(&seed) % (i + 1);
				int tmp = order[i];

				order[i] = order[j];
				order[j] = tmp;
			}
		if (rand_r(&seed) % 4 == 0)
			all_at = rand_r(&seed) % RB;
		for (i = 0; i < RB; i++) {
			if (i == all_at) {
				wc[nc] = wc_arg(0, KPRIM_WAIT_CANCEL_ALL);
				prep_kprim(io_uring_get_sqe(&ring), self->w,
					   KPRIM_IOC_WAIT_CANCEL, &wc[nc],
					   TAG_CTL | nc);
				nc++;
			}
			wc[nc] = wc_arg(base + order[i], 0);
			prep_kprim(io_uring_get_sqe(&ring), self->w,
				   KPRIM_IOC_WAIT_CANCEL, &wc[nc], TAG_CTL | nc);
			nc++;
			if (nc % 8 == 0)
				ASSERT_LE(1, io_uring_submit(&ring));
		}
		io_uring_submit(&ring);

		for (i = 0; i < RB; i++)
			res_of[i] = 1;
		for (i = 0; i < nc; i++)
			cancel_res[i] = 1;
		for (expect = RB + nc; expect > 0; expect--) {
			ASSERT_EQ(0, next_cqe(&ring, 10000, &ud, &res))
				TH_LOG("batch %d: %d CQEs missing", b, expect);
			if (ud & TAG_CTL) {
				j = (int)(ud & ~TAG_CTL);
				ASSERT_LT(j, nc);
				ASSERT_EQ(1, cancel_res[j]) TH_LOG("cancel %d twice", j);
				cancel_res[j] = res;
				continue;
			}
			ASSERT_LT(ud, (__u64)RB * RBATCHES);
			ASSERT_EQ(0, seen[ud]) TH_LOG("second CQE for %llu (%d)",
						      (unsigned long long)ud, res);
			seen[ud] = 1;
			ASSERT_LE(base, ud) TH_LOG("CQE of an earlier batch");
			res_of[ud - base] = res;
		}
		pthread_barrier_wait(&rel.done);

		for (i = 0; i < RB; i++) {
			ASSERT_TRUE(res_of[i] == 0 || res_of[i] == -ECANCELED)
				TH_LOG("batch %d acquire %d: %d", b, i, res_of[i]);
			granted += res_of[i] == 0;
			cancelled += res_of[i] == -ECANCELED;
		}
		for (i = 0; i < nc; i++) {
			ASSERT_TRUE(cancel_res[i] >= 0 || cancel_res[i] == -ENOENT)
				TH_LOG("batch %d cancel %d: %d", b, i, cancel_res[i]);
			if (cancel_res[i] > 0)
				ended_by_cancels += cancel_res[i];
		}
		/* Every wait ended once, by exactly one cancel or a grant. */
		ASSERT_EQ(cancelled, ended_by_cancels) TH_LOG("batch %d", b);
		ASSERT_LE(granted, RPERMITS);
		si = sem_info(self->w);
		ASSERT_EQ(granted, si.held_by_me) TH_LOG("batch %d", b);
		ASSERT_EQ(0, si.waiters) TH_LOG("batch %d", b);
		ASSERT_EQ(granted, si.held);
		ASSERT_EQ(RPERMITS, si.available + si.held);
		/*
		 * Did grants and cancels interleave? Not if the permits went to
		 * the first RPERMITS waits (all released before any cancel)
		 * or to none (all cancelled first).
		 */
		for (i = 0, j = 0; i < RPERMITS; i++)
			j += res_of[i] == 0;
		interleaved += granted && j < RPERMITS;
		aim(&rel, j == RPERMITS, granted == 0);
		granted_total += granted;
		cancelled_total += cancelled;
		if (granted) {
			ASSERT_EQ(0, sem_rel(self->w, granted));
			released_total += granted;
		}
	}
	rel.stop = true;
	pthread_barrier_wait(&rel.go);
	pthread_join(th, NULL);
	EXPECT_EQ(0, rel.errors);
	TH_LOG("%d batches of %d in %llu ms: %llu granted, %llu cancelled, %llu batches interleaved (spin %u)",
	       b, RB, (unsigned long long)((kt_now_ns() - t0) / MSEC),
	       (unsigned long long)granted_total,
	       (unsigned long long)cancelled_total,
	       (unsigned long long)interleaved, rel.max_spin);
	/* The window was hit, or the race was not run. */
	EXPECT_LT(0, interleaved);
	if (b < RBATCHES)
		TH_LOG("time budget used up after %d of %d batches", b, RBATCHES);
	EXPECT_EQ((__u64)RB * b, granted_total + cancelled_total);
	/* Some of each, or the race was not run. */
	EXPECT_LT(0, granted_total);
	EXPECT_LT(0, cancelled_total);
	si = sem_info(self->w);
	EXPECT_EQ(granted_total - released_total, si.held_by_me);
	EXPECT_EQ(RPERMITS, si.available + si.held);
	EXPECT_EQ(0, si.waiters);
	for (__u64 i = 0; i < (__u64)RB * b; i++)
		if (!seen[i]) {
			EXPECT_EQ(1, seen[i]) TH_LOG("no CQE for %llu",
						     (unsigned long long)i);
			break;
		}
	EXPECT_FALSE(cqe_ready(&ring));
	EXPECT_EQ(0, count_io_workers());
	io_uring_queue_exit(&ring);
	free(seen);
}

/*
 * Cancel eventfds fired from a third thread race the grants: waits whose
 * eventfd fires end with -ECANCELED (soon after the eventfd's wake-up: the
 * module ends them from a worker, not under the eventfd's lock), the
 * others are granted or cancelled by WAIT_CANCEL; nothing is lost or
 * doubled.
 */
struct firer {
	int efd;
	pthread_barrier_t *go, *done;
	volatile bool stop;
	unsigned int seed, max_sleep_us;
	long errors;
};

static void *firer_fn(void *arg)
{
	struct firer *f = arg;

	for (;;) {
		pthread_barrier_wait(f->go);
		if (f->stop)
			break;
		usleep(rand_r(&f->seed) % f->max_sleep_us);
		if (eventfd_write(f->efd, 1))
			f->errors++;
		pthread_barrier_wait(f->done);
	}
	return NULL;
}

#define EBATCHES 300

TEST_F_TIMEOUT(async, cancel_eventfds_race_grants, 200)
{
	struct kprim_sem_acquire with_efd, plain = acq_arg(1, INF, NOFD);
	/*
	 * Sleeps, not spins: the releases of a batch spread over about 1 ms
	 * and the eventfd fires somewhere in 0..2 ms, whatever the host's
	 * scheduling of the VM's CPUs.
	 */
	struct releaser rel = { .seed = 3, .max_sleep_us = 250 };
	struct firer f = { .seed = 5, .max_sleep_us = 2000 };
	__u64 granted_total = 0, cancelled_total = 0, t0 = kt_now_ns();
	struct kprim_sem_info si;
	struct io_uring ring;
	pthread_t th[2];
	int b, mixed = 0;

	SEM2(RPERMITS);
	ASSERT_EQ(0, big_ring(&ring, 256, 1024, 0));
	rel.fd = self->holder;
	f.efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, f.efd);
	with_efd = acq_arg(1, INF, f.efd);
	ASSERT_EQ(0, pthread_barrier_init(&rel.go, NULL, 3));
	ASSERT_EQ(0, pthread_barrier_init(&rel.done, NULL, 3));
	f.go = &rel.go;
	f.done = &rel.done;
	ASSERT_EQ(0, pthread_create(&th[0], NULL, releaser_fn, &rel));
	ASSERT_EQ(0, pthread_create(&th[1], NULL, firer_fn, &f));

	for (b = 0; b < EBATCHES && !_metadata->exit_code &&
	     kt_now_ns() - t0 < RACE_BUDGET_NS / 2; b++) {
		int res_of[RB], i, granted = 0, cancelled = 0;
		int even_cancelled = 0, odd_granted = 0, all = -2, expect;
		struct kprim_wait_cancel c = wc_arg(0, KPRIM_WAIT_CANCEL_ALL);
		eventfd_t v;
		__u64 ud;
		int res;

		ASSERT_EQ(0, sem_acq(self->holder, RPERMITS, 0));
		/* Odd ones carry the eventfd; even ones do not. */
		for (i = 0; i < RB; i++)
			prep_kprim(io_uring_get_sqe(&ring), self->w,
				   KPRIM_IOC_SEM_ACQUIRE,
				   i & 1 ? &with_efd : &plain, i);
		ASSERT_EQ(RB, io_uring_submit(&ring));
		/* The releaser grants while the firer fires the eventfd. */
		pthread_barrier_wait(&rel.go);
		pthread_barrier_wait(&rel.done);
		/*
		 * The eventfd has fired: every odd one ends (granted, or
		 * cancelled by the module's worker). Reap until they all
		 * have; then the even ones left end with ALL.
		 */
		for (i = 0; i < RB; i++)
			res_of[i] = 1;
		expect = RB + 1;
		for (int odd_left = RB / 2; odd_left > 0; expect--) {
			ASSERT_EQ(0, next_cqe(&ring, 10000, &ud, &res))
				TH_LOG("batch %d: %d odd CQEs missing", b,
				       odd_left);
			ASSERT_LT(ud, RB);
			ASSERT_EQ(1, res_of[ud]) TH_LOG("second CQE for %llu",
							(unsigned long long)ud);
			res_of[ud] = res;
			odd_left -= ud & 1;
		}
		ASSERT_EQ(0, submit1(&ring, self->w, KPRIM_IOC_WAIT_CANCEL, &c,
				     TAG_CTL));
		for (; expect > 0; expect--) {
			ASSERT_EQ(0, next_cqe(&ring, 10000, &ud, &res))
				TH_LOG("batch %d: %d CQEs missing", b, expect);
			if (ud == TAG_CTL) {
				ASSERT_EQ(-2, all);
				all = res;
				continue;
			}
			ASSERT_LT(ud, RB);
			ASSERT_EQ(1, res_of[ud]) TH_LOG("second CQE for %llu",
							(unsigned long long)ud);
			res_of[ud] = res;
		}
		for (i = 0; i < RB; i++) {
			ASSERT_TRUE(res_of[i] == 0 || res_of[i] == -ECANCELED)
				TH_LOG("batch %d acquire %d: %d", b, i, res_of[i]);
			granted += res_of[i] == 0;
			cancelled += res_of[i] == -ECANCELED;
			even_cancelled += !(i & 1) && res_of[i] == -ECANCELED;
			odd_granted += (i & 1) && res_of[i] == 0;
		}
		/* The eventfd fired between two grants of the batch. */
		mixed += odd_granted > 0 && odd_granted < RPERMITS / 2;
		/* ALL ended exactly the even ones not granted. */
		ASSERT_EQ(even_cancelled ? even_cancelled : -ENOENT, all)
			TH_LOG("batch %d", b);
		si = sem_info(self->w);
		ASSERT_EQ(granted, si.held_by_me) TH_LOG("batch %d", b);
		ASSERT_EQ(0, si.waiters);
		ASSERT_EQ(RPERMITS, si.available + si.held);
		ASSERT_EQ(0, eventfd_read(f.efd, &v));	/* reset it */
		if (granted)
			ASSERT_EQ(0, sem_rel(self->w, granted));
		granted_total += granted;
		cancelled_total += cancelled;
	}
	rel.stop = f.stop = true;
	pthread_barrier_wait(&rel.go);
	pthread_join(th[0], NULL);
	pthread_join(th[1], NULL);
	EXPECT_EQ(0, rel.errors);
	EXPECT_EQ(0, f.errors);
	TH_LOG("%d batches in %llu ms: %llu granted, %llu cancelled, %d with the eventfd fired amid the grants",
	       b, (unsigned long long)((kt_now_ns() - t0) / MSEC),
	       (unsigned long long)granted_total,
	       (unsigned long long)cancelled_total, mixed);
	/* The window was hit, or the race was not run. */
	EXPECT_LT(0, mixed);
	if (b < EBATCHES)
		TH_LOG("time budget used up after %d of %d batches", b, EBATCHES);
	EXPECT_EQ((__u64)RB * b, granted_total + cancelled_total);
	EXPECT_LT(0, granted_total);
	EXPECT_LT(0, cancelled_total);
	si = sem_info(self->w);
	EXPECT_EQ(0, si.held_by_me);
	EXPECT_EQ(RPERMITS, si.available);
	EXPECT_FALSE(cqe_ready(&ring));
	io_uring_queue_exit(&ring);
	close(f.efd);
}

/*
 * Permits granted to a wait whose object fd was closed meanwhile are held
 * by that fd's file while the request keeps it open, and come back when
 * the completed request lets it go.
 */
TEST_F(async, grant_to_a_closed_fd_comes_back)
{
	struct kprim_sem_acquire a = acq_arg(2, INF, NOFD);
	__u64 ud;
	int res, fd2;

	SEM2(2);
	fd2 = sem_again(self->sess, self->name);
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, sem_acq(self->holder, 2, 0));
	ASSERT_EQ(0, submit1(&self->ring, fd2, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	ASSERT_EQ(0, close(fd2));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->holder, 2));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_TRUE(sem_settle(self->holder, 0, 2, 2000))
		TH_LOG("available %llu, held %llu",
		       (unsigned long long)sem_info(self->holder).available,
		       (unsigned long long)sem_info(self->holder).held);
	EXPECT_EQ(0, sem_info(self->holder).holders);
}

/* --- resize and set make a queued request impossible -------------------- */

TEST_F(async, resize_below_a_queued_n_is_einval)
{
	struct kprim_sem_acquire a3 = acq_arg(3, INF, NOFD);
	struct kprim_sem_acquire a1 = acq_arg(1, INF, NOFD);
	__u64 ud;
	int res;

	SEM2(4);
	ASSERT_EQ(0, sem_acq(self->holder, 4, 0));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a3, 1));
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a1, 2));
	ASSERT_EQ(2, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_resize(self->holder, 2));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(-EINVAL, res);
	/* n = 1 still fits in 2 permits: it waits on. */
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	ASSERT_EQ(0, sem_rel(self->holder, 4));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(2, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
	EXPECT_EQ(1, sem_info(self->w).available);
}

TEST_F(async, limiter_burst_below_a_queued_n_is_einval)
{
	struct kprim_limiter_take t3 = take_arg(3, INF, NOFD);
	struct kprim_limiter_take t1 = take_arg(1, INF, NOFD);
	struct kprim_limiter_set s = { .size = sizeof(s) };
	__u64 ud;
	int fd, res;

	fd = lim_new(self->sess, 1, 3600 * NSEC, 4, 0);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, submit1(&self->ring, fd, KPRIM_IOC_LIMITER_TAKE, &t3, 1));
	ASSERT_EQ(0, submit1(&self->ring, fd, KPRIM_IOC_LIMITER_TAKE, &t1, 2));
	ASSERT_EQ(2, lim_info(fd).waiters);
	s.flags = KPRIM_LIMITER_SET_BURST;
	s.params.burst = 2;
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(-EINVAL, res);
	EXPECT_EQ(1, lim_info(fd).waiters);
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	/* A faster rate lets the survivor through. */
	s.flags = KPRIM_LIMITER_SET_RATE;
	s.params.rate = 1000;
	s.params.period_ns = NSEC;
	s.params.burst = 0;
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(2, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(0, lim_info(fd).waiters);
	EXPECT_EQ(1, lim_info(fd).admitted);
	close(fd);
}

/* --- the submitter goes away ---------------------------------------------- */

struct submitter {
	struct io_uring *ring;
	int fd, n;
	struct kprim_sem_acquire a;
	int err;
};

static void *submit_and_exit(void *arg)
{
	struct submitter *s = arg;

	for (int i = 0; i < s->n; i++)
		if (submit1(s->ring, s->fd, KPRIM_IOC_SEM_ACQUIRE, &s->a, 100 + i))
			s->err++;
	pthread_exit(NULL);
}

/*
 * A wait belongs to its ring, not to the thread that submitted it (as
 * io_uring's other untracked requests): the thread exits, its waits stay
 * queued in their FIFO places (also past 6.1's 100 ms watcher), and are
 * granted in order later, their CQEs reaped by the thread that remains.
 */
TEST_F(async, submitting_thread_exit_leaves_its_waits_queued)
{
	struct kprim_sem_acquire mine = acq_arg(1, INF, NOFD);
	struct submitter s = { .n = 3 };
	__u64 ud;
	pthread_t th;
	int i, r;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	/* The main thread's own wait on the same ring, first in line. */
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &mine, 1));
	s.ring = &self->ring;
	s.fd = self->w;
	s.a = acq_arg(1, INF, NOFD);
	ASSERT_EQ(0, pthread_create(&th, NULL, submit_and_exit, &s));
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, s.err);
	usleep(300 * 1000);
	EXPECT_EQ(4, sem_info(self->holder).waiters);
	EXPECT_FALSE(cqe_ready(&self->ring));

	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &r));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, r);
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, sem_rel(self->w, 1));
		ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &r))
			TH_LOG("wait %d of the exited thread not granted", i);
		EXPECT_EQ(100 + i, ud);
		EXPECT_EQ(0, r);
	}
	EXPECT_EQ(0, sem_info(self->holder).waiters);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
}

TEST_F(async, ring_teardown_ends_the_waits)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct kprim_limiter_take t = take_arg(1, INF, NOFD);
	struct io_uring r2;
	int lim, i;

	SEM2(2);
	lim = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, lim);
	ASSERT_EQ(0, sem_acq(self->holder, 2, 0));
	ASSERT_EQ(0, io_uring_queue_init(16, &r2, 0));
	for (i = 0; i < 5; i++)
		ASSERT_EQ(0, submit1(&r2, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, i));
	ASSERT_EQ(0, submit1(&r2, lim, KPRIM_IOC_LIMITER_TAKE, &t, 9));
	ASSERT_EQ(5, sem_info(self->holder).waiters);
	ASSERT_EQ(1, lim_info(lim).waiters);
	/* The head is granted; its CQE is never reaped. */
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(4, sem_info(self->holder).waiters);
	io_uring_queue_exit(&r2);
	EXPECT_TRUE(sem_settle(self->holder, 0, ~0ull, 2000))
		TH_LOG("waiters %llu after the ring's teardown",
		       (unsigned long long)sem_info(self->holder).waiters);
	for (i = 0; i < 1000 && lim_info(lim).waiters; i++)
		usleep(2000);
	EXPECT_EQ(0, lim_info(lim).waiters);
	EXPECT_EQ(0, lim_info(lim).admitted);
	/* The granted permit is held by w, as if acquired by ioctl. */
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
	ASSERT_EQ(0, sem_rel(self->w, 1));
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	EXPECT_EQ(2, sem_info(self->holder).available);
	close(lim);
}

/* --- SIGKILL with 1000 waits pending ----------------------------------- */

FIXTURE(killed) {
	int sess, holder;
	char name[64];
};

FIXTURE_VARIANT(killed) {
	/*
	 * 0: as is, 1: ring fd closed first, 2: object fd closed first,
	 * 3: not killed: it exits by itself (exit_group) once told to
	 */
	int mode;
};

FIXTURE_VARIANT_ADD(killed, pending) { .mode = 0 };
FIXTURE_VARIANT_ADD(killed, ring_closed_first) { .mode = 1 };
FIXTURE_VARIANT_ADD(killed, object_fd_closed_first) { .mode = 2 };
FIXTURE_VARIANT_ADD(killed, exits_by_itself) { .mode = 3 };

FIXTURE_SETUP(killed)
{
	struct kprim_api api = { .size = sizeof(api) };

	self->holder = -1;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, kt_ioctl(self->sess, KPRIM_IOC_API, &api));
	if (!(api.features & KPRIM_FEAT_URING_ASYNC))
		SKIP(return, "module without KPRIM_FEAT_URING_ASYNC");
}

FIXTURE_TEARDOWN(killed)
{
	if (self->holder >= 0)
		close(self->holder);
	if (self->sess >= 0)
		close(self->sess);
}

#define KILL_N		1000
#define KILL_PERMITS	3

/* The child: holds 2 permits on one fd, queues KILL_N waits on another. */
static void killed_child(const char *name, int mode, int ready, int go)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct io_uring ring;
	int s, c1, c2, i, n;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		_exit(10);
	s = kt_session();
	c1 = sem_again(s, name);
	c2 = sem_again(s, name);
	if (s < 0 || c1 < 0 || c2 < 0)
		_exit(11);
	if (sem_acq(c1, KILL_PERMITS - 1, 0))
		_exit(12);
	if (big_ring(&ring, 256, 2048, 0))
		_exit(13);
	for (i = 0; i < KILL_N; i += n) {
		n = KILL_N - i < 256 ? KILL_N - i : 256;
		for (int j = 0; j < n; j++)
			prep_kprim(io_uring_get_sqe(&ring), c2,
				   KPRIM_IOC_SEM_ACQUIRE, &a, i + j);
		if (io_uring_submit(&ring) != n)
			_exit(14);
	}
	if (mode == 1)
		io_uring_queue_exit(&ring);
	if (mode == 2)
		close(c2);
	if (write(ready, "r", 1) != 1)
		_exit(15);
	if (mode == 3) {
		char c;

		if (read(go, &c, 1) == 1)
			exit(0);
		_exit(16);
	}
	for (;;)
		pause();
}

TEST_F_TIMEOUT(killed, sigkill_with_pending_waits, 60)
{
	struct kprim_sem_info si;
	struct pollfd p;
	int pipefd[2], gofd[2], status;
	__u64 t0, dt, end;
	char c;
	pid_t pid;

	KT_NAME(self->name, "killed");
	self->holder = sem_new(self->sess, self->name, KILL_PERMITS);
	ASSERT_LE(0, self->holder);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	ASSERT_EQ(0, pipe(pipefd));
	ASSERT_EQ(0, pipe(gofd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipefd[0]);
		close(gofd[1]);
		killed_child(self->name, variant->mode, pipefd[1], gofd[0]);
	}
	close(pipefd[1]);
	close(gofd[0]);
	p = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	if (poll(&p, 1, 60000) != 1 || read(pipefd[0], &c, 1) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		ASSERT_TRUE(false) TH_LOG("child not ready, status %#x", status);
	}
	close(pipefd[0]);
	si = sem_info(self->holder);
	if (variant->mode != 1)
		EXPECT_EQ(KILL_N, si.waiters);
	EXPECT_EQ(0, si.available);
	/* A grant racing the kill: the head wait gets our permit. */
	ASSERT_EQ(0, sem_rel(self->holder, 1));

	t0 = kt_now_ns();
	if (variant->mode == 3) {
		ASSERT_EQ(1, write(gofd[1], "g", 1));
	} else {
		ASSERT_EQ(0, kill(pid, SIGKILL));
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	dt = kt_now_ns() - t0;
	close(gofd[1]);
	if (variant->mode == 3) {
		EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
			TH_LOG("status %#x", status);
	} else {
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			TH_LOG("status %#x", status);
	}
	TH_LOG("exited %llu ms after SIGKILL (or being told to exit)",
	       (unsigned long long)(dt / MSEC));
	EXPECT_GT(NSEC, dt);

	/* Everything comes back (6.1: a watcher notices within ~100 ms). */
	end = kt_now_ns() + 2 * NSEC;
	do {
		si = sem_info(self->holder);
		if (si.waiters == 0 && si.available == KILL_PERMITS)
			break;
		usleep(5000);
	} while (kt_now_ns() < end);
	TH_LOG("settled %llu ms after SIGKILL",
	       (unsigned long long)((kt_now_ns() - t0) / MSEC));
	EXPECT_EQ(0, si.waiters);
	EXPECT_EQ(KILL_PERMITS, si.available);
	EXPECT_EQ(0, si.held);
	EXPECT_EQ(0, si.holders);
}

/*
 * execve() with io_uring waits pending: exec cancels the task's io_uring
 * requests (io_uring_task_cancel()) and waits for them to finish, then
 * closes the ring (io_uring fds are close-on-exec). The waits must end so
 * that exec goes on; the new image exits at once (exec_exit_early()).
 */
#define EXEC_ENV	"KPRIM_ASYNC_TEST_EXEC_EXIT"

__attribute__((constructor)) static void exec_exit_early(void)
{
	if (getenv(EXEC_ENV))
		_exit(42);
}

TEST_F_TIMEOUT(async, exec_with_pending_waits, 60)
{
	struct kprim_sem_info si;
	struct pollfd p;
	int pipefd[2], status = 0;
	__u64 t0, end;
	pid_t pid, r;
	char c;

	SEM2(2);
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
		char *argv[] = { "uring_async_test", NULL };
		struct io_uring ring;
		int i;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(pipefd[0]);
		if (sem_acq(self->w, 2, 0) || io_uring_queue_init(128, &ring, 0))
			_exit(10);
		for (i = 0; i < 100; i++)
			prep_kprim(io_uring_get_sqe(&ring), self->holder,
				   KPRIM_IOC_SEM_ACQUIRE, &a, i);
		if (io_uring_submit(&ring) != 100)
			_exit(11);
		if (write(pipefd[1], "r", 1) != 1)
			_exit(12);
		setenv(EXEC_ENV, "1", 1);
		execv("/proc/self/exe", argv);
		_exit(13);
	}
	close(pipefd[1]);
	p = (struct pollfd){ .fd = pipefd[0], .events = POLLIN };
	ASSERT_EQ(1, poll(&p, 1, 30000));
	ASSERT_EQ(1, read(pipefd[0], &c, 1));
	close(pipefd[0]);
	t0 = kt_now_ns();
	end = t0 + 3 * NSEC;
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 && kt_now_ns() < end)
		usleep(5000);
	if (r == 0) {
		si = sem_info(self->holder);
		TH_LOG("execve() still blocked 3 s later, waiters %llu",
		       (unsigned long long)si.waiters);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	ASSERT_EQ(pid, r) TH_LOG("exec with pending io_uring waits did not complete");
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 42)
		TH_LOG("status %#x", status);
	TH_LOG("exec done %llu ms after the waits were queued",
	       (unsigned long long)((kt_now_ns() - t0) / MSEC));
	/* The child held 2 on its copy of w: that fd is shared with us. */
	EXPECT_TRUE(sem_settle(self->holder, 0, ~0ull, 2000))
		TH_LOG("waiters %llu", (unsigned long long)sem_info(self->holder).waiters);
	si = sem_info(self->w);
	EXPECT_EQ(2, si.held_by_me);
	EXPECT_EQ(0, sem_info(self->holder).held_by_me);
}

/* --- ring flavours ------------------------------------------------------- */

TEST_F(async, defer_taskrun_ring)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct kprim_sem_acquire at = acq_arg(1, 100 * MSEC, NOFD);
	struct delayed_release d = { .n = 1, .delay_ms = 50 };
	struct io_uring r;
	pthread_t th;
	__u64 ud;
	int ret, res;

	SEM2(1);
	ret = io_uring_queue_init(8, &r, IORING_SETUP_SINGLE_ISSUER |
				  IORING_SETUP_DEFER_TASKRUN);
	if (ret == -EINVAL)
		SKIP(return, "no IORING_SETUP_DEFER_TASKRUN");
	ASSERT_EQ(0, ret);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));

	/* Granted by another thread: completion deferred to our wait. */
	ASSERT_EQ(0, submit1(&r, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	d.fd = self->holder;
	ASSERT_EQ(0, pthread_create(&th, NULL, delayed_release_fn, &d));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	pthread_join(th, NULL);
	EXPECT_EQ(0, d.ret);
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);

	/* Granted by our own release. */
	ASSERT_EQ(0, submit1(&r, self->holder, KPRIM_IOC_SEM_ACQUIRE, &a, 2));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->w, 1));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	EXPECT_EQ(2, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->holder).held_by_me);

	/* Timed out, and cancelled. */
	ASSERT_EQ(0, submit1(&r, self->w, KPRIM_IOC_SEM_ACQUIRE, &at, 3));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	EXPECT_EQ(3, ud);
	EXPECT_EQ(-ETIMEDOUT, res);
	ASSERT_EQ(0, submit1(&r, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 4));
	EXPECT_EQ(1, wait_cancel(&r, self->w, 4, 0, NULL, NULL, 0, NULL));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	EXPECT_EQ(4, ud);
	EXPECT_EQ(-ECANCELED, res);
	EXPECT_EQ(0, sem_info(self->holder).waiters);
	EXPECT_EQ(0, sem_info(self->w).held_by_me);
	EXPECT_EQ(0, count_io_workers());
	io_uring_queue_exit(&r);
}

/* Forced to a worker for its issue (IOSQE_ASYNC): it still queues, and
 * the worker is not the thread whose exit would cancel it. */
TEST_F(async, iosqe_async_wait_is_queued_too)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct io_uring_sqe *sqe;
	__u64 ud;
	int res;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	sqe = io_uring_get_sqe(&self->ring);
	prep_kprim(sqe, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1);
	sqe->flags |= IOSQE_ASYNC;
	ASSERT_EQ(1, io_uring_submit(&self->ring));
	ASSERT_TRUE(sem_settle(self->holder, 1, ~0ull, 2000));
	usleep(100 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
}

/* A request linked after a wait runs when the wait is granted. */
TEST_F(async, linked_request_runs_after_the_grant)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct kprim_sem_acquire at = acq_arg(1, 100 * MSEC, NOFD);
	struct kprim_sem_info si = { .size = sizeof(si) };
	struct io_uring_sqe *sqe;
	int res[3], i, r;
	__u64 ud;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	sqe = io_uring_get_sqe(&self->ring);
	prep_kprim(sqe, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1);
	sqe->flags |= IOSQE_IO_LINK;
	prep_kprim(io_uring_get_sqe(&self->ring), self->w, KPRIM_IOC_SEM_INFO,
		   &si, 2);
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &r));
		ASSERT_LT(0, ud);
		ASSERT_GT(3, ud);
		res[ud] = r;
	}
	EXPECT_EQ(0, res[1]);
	EXPECT_EQ(0, res[2]);
	/* INFO ran after the grant: the permit was held by then. */
	EXPECT_EQ(1, si.held_by_me);
	EXPECT_EQ(0, si.waiters);

	/* A wait that fails (times out) cancels what is linked to it. */
	si.held_by_me = 77;
	sqe = io_uring_get_sqe(&self->ring);
	prep_kprim(sqe, self->holder, KPRIM_IOC_SEM_ACQUIRE, &at, 1);
	sqe->flags |= IOSQE_IO_LINK;
	prep_kprim(io_uring_get_sqe(&self->ring), self->w, KPRIM_IOC_SEM_INFO,
		   &si, 2);
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &r));
		ASSERT_LT(0, ud);
		ASSERT_GT(3, ud);
		res[ud] = r;
	}
	EXPECT_EQ(-ETIMEDOUT, res[1]);
	EXPECT_EQ(-ECANCELED, res[2]);
	EXPECT_EQ(77, si.held_by_me);
	EXPECT_EQ(0, sem_info(self->holder).waiters);
}

/*
 * IORING_OP_LINK_TIMEOUT cannot cut a kprim wait short either: it cancels
 * the way ASYNC_CANCEL does, which does not reach uring_cmd requests. The
 * wait stays queued and is granted later; its own timeout is the way.
 */
TEST_F(async, link_timeout_does_not_reach_the_wait)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct __kernel_timespec ts = { .tv_nsec = 50 * MSEC };
	struct io_uring_sqe *sqe;
	__u64 ud;
	int res;

	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	sqe = io_uring_get_sqe(&self->ring);
	prep_kprim(sqe, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1);
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(&self->ring);
	io_uring_prep_link_timeout(sqe, &ts, 0);
	sqe->user_data = 2;
	ASSERT_EQ(2, io_uring_submit(&self->ring));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(2, ud);
	EXPECT_TRUE(res == -ETIME || res == -ENOENT || res == -EALREADY)
		TH_LOG("link timeout: %d", res);
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));
	EXPECT_EQ(1, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);
}

/*
 * An SQPOLL ring: the kernel's submission thread issues the requests, so
 * it is their submitter. Grants, timeouts (with the limiter's output
 * written into the submitting process's memory), WAIT_CANCEL and the
 * ring's teardown work as for a normal ring.
 */
TEST_F(async, sqpoll_ring)
{
	struct kprim_sem_acquire a = acq_arg(1, INF, NOFD);
	struct kprim_limiter_take t = take_arg(1, 100 * MSEC, NOFD);
	struct io_uring r;
	__u64 ud;
	int ret, res, lim;

	SEM2(1);
	ret = io_uring_queue_init(16, &r, IORING_SETUP_SQPOLL);
	if (ret == -EPERM || ret == -EINVAL)
		SKIP(return, "no SQPOLL ring: %s", strerror(-ret));
	ASSERT_EQ(0, ret);
	lim = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, lim);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));

	ASSERT_EQ(0, submit1(&r, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	ASSERT_TRUE(sem_settle(self->holder, 1, ~0ull, 2000));
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(0, res);
	EXPECT_EQ(1, sem_info(self->w).held_by_me);

	t.retry_after_ns = 0;
	ASSERT_EQ(0, submit1(&r, lim, KPRIM_IOC_LIMITER_TAKE, &t, 2));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	EXPECT_EQ(2, ud);
	EXPECT_EQ(-ETIMEDOUT, res);
	EXPECT_LT(3000 * NSEC, t.retry_after_ns);

	ASSERT_EQ(0, submit1(&r, self->holder, KPRIM_IOC_SEM_ACQUIRE, &a, 3));
	ASSERT_TRUE(sem_settle(self->holder, 1, ~0ull, 2000));
	EXPECT_EQ(1, wait_cancel(&r, self->holder, 3, 0, NULL, NULL, 0, NULL));
	ASSERT_EQ(0, next_cqe(&r, 5000, &ud, &res));
	EXPECT_EQ(3, ud);
	EXPECT_EQ(-ECANCELED, res);

	ASSERT_EQ(0, submit1(&r, self->holder, KPRIM_IOC_SEM_ACQUIRE, &a, 4));
	ASSERT_TRUE(sem_settle(self->holder, 1, ~0ull, 2000));
	io_uring_queue_exit(&r);
	EXPECT_TRUE(sem_settle(self->holder, 0, ~0ull, 2000))
		TH_LOG("waiters %llu after the SQPOLL ring's teardown",
		       (unsigned long long)sem_info(self->holder).waiters);
	EXPECT_EQ(0, sem_info(self->holder).held_by_me);
	close(lim);
}

/* --- the argument is read once, at issue ------------------------------- */

TEST_F(async, argument_read_once_at_issue)
{
	struct kprim_sem_acquire a = acq_arg(2, INF, NOFD), *m;
	struct kprim_limiter_take t = take_arg(1, 100 * MSEC, NOFD);
	__u64 ud, ud2;
	int res, lim;

	SEM2(3);
	ASSERT_EQ(0, sem_acq(self->holder, 3, 0));
	/* Overwritten after the submit: the wait is for 2 permits. */
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, &a, 1));
	memset(&a, 0xff, sizeof(a));
	/* Unmapped after the submit: nothing is read or written later. */
	m = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	*m = acq_arg(1, INF, NOFD);
	ASSERT_EQ(0, submit1(&self->ring, self->w, KPRIM_IOC_SEM_ACQUIRE, m, 2));
	ASSERT_EQ(0, munmap(m, 4096));
	ASSERT_EQ(2, sem_info(self->holder).waiters);
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	usleep(50 * 1000);
	EXPECT_FALSE(cqe_ready(&self->ring));	/* 1 free, the head wants 2 */
	/* Both granted by one pass: their CQEs come in either order. */
	ASSERT_EQ(0, sem_rel(self->holder, 2));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_TRUE(ud == 1 || ud == 2);
	EXPECT_EQ(0, res);
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud2, &res));
	EXPECT_EQ(3, ud + ud2);
	EXPECT_EQ(0, res);
	EXPECT_EQ(3, sem_info(self->w).held_by_me);

	/* retry_after_ns goes where the take was, whatever it holds now. */
	lim = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, lim);
	ASSERT_EQ(0, submit1(&self->ring, lim, KPRIM_IOC_LIMITER_TAKE, &t, 3));
	memset(&t, 0, sizeof(t));
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(3, ud);
	EXPECT_EQ(-ETIMEDOUT, res);
	EXPECT_LT(3000 * NSEC, t.retry_after_ns);
	EXPECT_GE(3600 * NSEC, t.retry_after_ns);
	close(lim);
}

/*
 * A take whose struct is read-only by the time it times out: its
 * retry_after_ns cannot be written, so the CQE is -EFAULT, as the ioctl
 * returns; the take leaves the queue all the same.
 */
TEST_F(async, timed_out_take_with_read_only_struct_is_efault)
{
	struct kprim_limiter_take *t;
	__u64 ud;
	int fd, res;

	fd = lim_new(self->sess, 1, 3600 * NSEC, 1, 0);
	ASSERT_LE(0, fd);
	t = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, t);
	*t = take_arg(1, 100 * MSEC, NOFD);
	ASSERT_EQ(0, mprotect(t, 4096, PROT_READ));
	ASSERT_EQ(0, submit1(&self->ring, fd, KPRIM_IOC_LIMITER_TAKE, t, 1));
	EXPECT_EQ(1, lim_info(fd).waiters);
	ASSERT_EQ(0, next_cqe(&self->ring, 5000, &ud, &res));
	EXPECT_EQ(1, ud);
	EXPECT_EQ(-EFAULT, res);
	EXPECT_EQ(0, t->retry_after_ns);
	EXPECT_EQ(0, lim_info(fd).waiters);
	EXPECT_EQ(0, lim_info(fd).admitted);
	munmap(t, 4096);
	close(fd);
}

#define MAX_WAITS_PARAM	"/sys/module/kprim/parameters/max_uring_waits"

static long param_read(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY), n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -EIO;
}

static int param_write(const char *path, long v)
{
	char buf[32];
	int fd = open(path, O_WRONLY), n, r = 0;

	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof(buf), "%ld\n", v);
	if (write(fd, buf, n) != n)
		r = -errno;
	close(fd);
	return r;
}

/*
 * An object takes io_uring waits only while it has fewer waiters than
 * max_uring_waits: beyond, a wait completes at once with -ENOSPC and
 * changes nothing; the queued ones are untouched and granted as before.
 * An ioctl waiter counts as a waiter too.
 */
TEST_F(async, queue_full_of_waiters_refuses_io_uring_waits)
{
	struct kprim_sem_acquire a[8];
	long old = param_read(MAX_WAITS_PARAM);
	__u64 ud;
	int i, r;

	if (old < 0)
		SKIP(return, "no %s: %s", MAX_WAITS_PARAM, strerror(-old));
	SEM2(1);
	ASSERT_EQ(0, sem_acq(self->holder, 1, 0));
	/* No ASSERT until the parameter is back: later tests need it. */
	EXPECT_EQ(0, param_write(MAX_WAITS_PARAM, 4));
	for (i = 0; i < 6; i++) {
		a[i] = acq_arg(1, INF, NOFD);
		EXPECT_EQ(0, submit1(&self->ring, self->w,
				     KPRIM_IOC_SEM_ACQUIRE, &a[i], 10 + i));
	}
	/* Waits 4 and 5 found 4 waiters queued. */
	for (i = 0; i < 2; i++) {
		r = 0;
		EXPECT_EQ(0, next_cqe(&self->ring, 2000, &ud, &r));
		EXPECT_EQ(14 + i, ud);
		EXPECT_EQ(-ENOSPC, r);
	}
	EXPECT_FALSE(cqe_ready(&self->ring));
	EXPECT_EQ(4, sem_info(self->holder).waiters);
	ASSERT_EQ(0, param_write(MAX_WAITS_PARAM, old));

	/* The four queued ones are granted in order as permits come back. */
	ASSERT_EQ(0, sem_rel(self->holder, 1));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, next_cqe(&self->ring, 2000, &ud, &r));
		EXPECT_EQ(10 + i, ud);
		EXPECT_EQ(0, r);
		ASSERT_EQ(0, sem_rel(self->w, 1));
	}
	EXPECT_EQ(0, sem_info(self->holder).waiters);
	EXPECT_EQ(0, sem_info(self->holder).held);
}

TEST_HARNESS_MAIN
