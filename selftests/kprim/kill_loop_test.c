// SPDX-License-Identifier: GPL-2.0
/*
 * Kill loop: worker processes hammer one semaphore, one limiter and one
 * cache while the parent SIGKILLs them at random instants and respawns
 * them, for KPRIM_KILL_SECS seconds (default 10; a soak runs it longer).
 *
 * Each of WORKERS workers opens the three objects by name (its own fds, so
 * what they hold is its own) and runs a random mix in a tight loop:
 *   - a blocking acquire of 1..PERMITS permits with a short timeout, then
 *     a release;
 *   - an acquire of one permit kept until the worker dies;
 *   - semaphore acquires and limiter takes queued in its io_uring ring
 *     (up to RING_SLOTS at a time, long or infinite timeouts), half the
 *     workers on a DEFER_TASKRUN ring; granted permits are released, or
 *     kept (at most one); now and then KPRIM_IOC_WAIT_CANCEL (all);
 *   - a blocking limiter take with a short wait;
 *   - cache get/set/incr/cas/delete on a small key set with random values
 *     in a cache small enough to evict all the time;
 *   - a blocking acquire or take with no timeout, interrupted by a
 *     periodic SIGALRM installed without SA_RESTART (-EINTR).
 *
 * The parent kills one worker 0..20 ms after the previous kill, sometimes
 * several at once, sometimes all of them, reaps each with waitpid() and
 * respawns it (workers run at nice 10 so that they do not starve the
 * parent; a victim is reniced to 0 just before its SIGKILL). Every
 * KILLS_PER_CHECK kills (or CHECK_EVERY_NS, where forks and exits are
 * slow: the debug kernel under TCG), and at the end, it kills them all,
 * reaps them and checks, polling up to 2 s (on Debian's 6.1 a watcher
 * ends the io_uring waits of a dead ring every 100 ms):
 *   - semaphore: available == permits, held 0, no holder, no waiter;
 *   - limiter: no waiter and, within burst/rate + 1 s, tokens == burst
 *     (no token stays reserved by a dead waiter);
 *   - cache: INFO's entries and bytes equal what a multi-get of every key
 *     the workers use finds, bytes <= max_bytes, every value intact;
 * then respawns the workers and goes on. Also judged: every worker died
 * of the parent's SIGKILL, no call returned an errno outside its
 * documented set, every kind of operation ran. The kernel log must stay
 * clean (make check judges KASAN, lockdep, kmemleak, hung tasks).
 *
 * KPRIM_KILL_SEED=N repeats the random choices (timing still varies).
 */
#include <liburing.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull
#define INF		KPRIM_TIMEOUT_INFINITE
#define NOFD		KPRIM_NO_CANCEL_FD

#define WORKERS		6
#define PERMITS		8
#define LIM_RATE	200		/* tokens per second */
#define LIM_BURST	20
#define CACHE_BYTES	4096		/* max_bytes: ~25 of our entries */
#define DATA_KEYS	48		/* "dNN": patterned values */
#define CTR_KEYS	16		/* "nNN": decimal counters */
#define NKEYS		(DATA_KEYS + CTR_KEYS)
#define MAX_VALUE	300
#define RING_SLOTS	8		/* io_uring waits a worker keeps */
#define KILLS_PER_CHECK	100
#define CHECK_EVERY_NS	(3 * NSEC)	/* or this, where kills are slow */
#define SETTLE_NS	(2 * NSEC)
#define TOKEN_MARGIN_NS	NSEC
#define MAX_UNEXPECTED	8
#define WORKER_NICE	10
#define TAG_CTL		(1ull << 62)	/* user_data of a WAIT_CANCEL */
/* The harness's limit must not cut a soak short; the run checks it fits. */
#define KILL_TIMEOUT_S	21600

/* --- what the workers do, counted in shared memory ------------------------ */

enum op {
	OP_SEM_ACQ,	/* blocking acquire with a timeout, then release */
	OP_SEM_HOLD,	/* acquire kept until death */
	OP_URING_ACQ,	/* acquire queued in the ring */
	OP_URING_TAKE,	/* take queued in the ring */
	OP_URING_CQE,	/* their completions reaped (ok: granted) */
	OP_URING_CANCEL,	/* WAIT_CANCEL_ALL through the ring */
	OP_LIM_TAKE,	/* blocking take with a wait */
	OP_CACHE_GET,
	OP_CACHE_SET,
	OP_CACHE_INCR,
	OP_CACHE_CAS,
	OP_CACHE_DEL,
	OP_INTR,	/* blocking call under SIGALRM (ok: -EINTR seen) */
	NR_OPS
};

static const char *const op_names[NR_OPS] = {
	[OP_SEM_ACQ] = "sem-acquire", [OP_SEM_HOLD] = "sem-hold",
	[OP_URING_ACQ] = "uring-acquire", [OP_URING_TAKE] = "uring-take",
	[OP_URING_CQE] = "uring-cqe", [OP_URING_CANCEL] = "uring-cancel",
	[OP_LIM_TAKE] = "limiter-take", [OP_CACHE_GET] = "get",
	[OP_CACHE_SET] = "set", [OP_CACHE_INCR] = "incr",
	[OP_CACHE_CAS] = "cas", [OP_CACHE_DEL] = "delete",
	[OP_INTR] = "interrupted",
};

struct kl_shared {
	_Atomic unsigned long ops[NR_OPS];	/* attempts */
	_Atomic unsigned long ok[NR_OPS];	/* successes */
	_Atomic unsigned long corrupt;		/* values a get found torn */
	_Atomic unsigned int unexpected;
	struct {
		int op, err;
	} first[MAX_UNEXPECTED];
};

static struct kl_shared *sh;

/* xorshift64*: cheap, and a seed repeats the choices. */
static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void count(enum op op, bool ok)
{
	atomic_fetch_add(&sh->ops[op], 1);
	if (ok)
		atomic_fetch_add(&sh->ok[op], 1);
}

static void unexpected(enum op op, long err)
{
	unsigned int i = atomic_fetch_add(&sh->unexpected, 1);

	if (i < MAX_UNEXPECTED) {
		sh->first[i].op = op;
		sh->first[i].err = (int)-err;
	}
}

/* "dNN" for the data keys, "nNN" for the counters: 3 bytes each. */
static void key_of(unsigned int i, char key[4])
{
	snprintf(key, 4, "%c%02u", i < DATA_KEYS ? 'd' : 'n',
		 i < DATA_KEYS ? i : i - DATA_KEYS);
}

/* A data value: byte i is seed + 7 i, so a torn value shows. */
static void fill(unsigned char *v, size_t len, unsigned char seed)
{
	for (size_t i = 0; i < len; i++)
		v[i] = (unsigned char)(seed + 7 * i);
}

static bool intact(unsigned int key, const unsigned char *v, size_t len)
{
	if (key >= DATA_KEYS) {		/* a decimal u64 */
		if (!len || len > 20)
			return false;
		for (size_t i = 0; i < len; i++)
			if (v[i] < '0' || v[i] > '9')
				return false;
		return true;
	}
	for (size_t i = 0; i < len; i++)
		if (v[i] != (unsigned char)(v[0] + 7 * i))
			return false;
	return len > 0;
}

/* --- helpers on raw ioctls ----------------------------------------------- */

static char sem_name[64], lim_name[64], cache_name[64];

static int open_named(int sess, __u32 kind, const char *name, bool create)
{
	struct kprim_open a = kt_open_args(kind, name,
					   create ? KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_EXCL |
					   KPRIM_OPEN_TRANSIENT : 0);

	if (kind == KPRIM_KIND_SEM) {
		a.sem.permits = PERMITS;
	} else if (kind == KPRIM_KIND_LIMITER) {
		a.limiter.rate = LIM_RATE;
		a.limiter.period_ns = NSEC;
		a.limiter.burst = LIM_BURST;
	} else {
		a.cache.max_bytes = CACHE_BYTES;
	}
	return kt_open(sess, &a);
}

static struct kprim_sem_acquire acq_arg(__u64 n, __u64 timeout)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = n, .wait = kt_wait(timeout, NOFD),
	};

	return a;
}

static struct kprim_limiter_take take_arg(__u64 n, __u64 timeout)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = n, .wait = kt_wait(timeout, NOFD),
	};

	return t;
}

static long sem_rel(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

static bool timed_out(long ret)
{
	return ret == -ETIMEDOUT || ret == -EAGAIN || ret == -EINTR;
}

/* --- the worker --------------------------------------------------------- */

struct slot {
	bool busy, sem;
	union {
		struct kprim_sem_acquire acq;
		struct kprim_limiter_take take;
	};
};

struct worker {
	int a, h, u, l, c;	/* sem: cycles, hold, ring; limiter; cache */
	struct io_uring ring;
	bool defer;
	struct slot slot[RING_SLOTS];
	struct kprim_wait_cancel wc;
	__u64 u_held, h_held;	/* permits kept on u and h */
	unsigned char buf[CACHE_BYTES];
	unsigned char val[MAX_VALUE];
};

static void on_alarm(int sig)
{
	(void)sig;	/* only to interrupt blocking calls (-EINTR) */
}

static void w_sem_acq(struct worker *w)
{
	struct kprim_sem_acquire a = acq_arg(1 + below(PERMITS),
					     below(6) * MSEC);
	long ret = kt_ioctl(w->a, KPRIM_IOC_SEM_ACQUIRE, &a);

	count(OP_SEM_ACQ, !ret);
	if (!ret) {
		ret = sem_rel(w->a, a.n);
		if (ret)
			unexpected(OP_SEM_ACQ, ret);
	} else if (!timed_out(ret)) {
		unexpected(OP_SEM_ACQ, ret);
	}
}

static void w_sem_hold(struct worker *w)
{
	struct kprim_sem_acquire a = acq_arg(1, below(3) * MSEC);
	long ret;

	if (w->h_held)
		return;
	ret = kt_ioctl(w->h, KPRIM_IOC_SEM_ACQUIRE, &a);
	count(OP_SEM_HOLD, !ret);
	if (!ret)
		w->h_held++;
	else if (!timed_out(ret))
		unexpected(OP_SEM_HOLD, ret);
}

/* Queue an acquire (@sem) or a take in a free slot of the ring. */
static void w_uring_wait(struct worker *w, bool sem)
{
	__u64 timeout = below(3) ? INF : (50 + below(2000)) * MSEC;
	enum op op = sem ? OP_URING_ACQ : OP_URING_TAKE;
	struct io_uring_sqe *sqe;
	struct slot *s = NULL;
	unsigned int i;
	int ret;

	for (i = 0; i < RING_SLOTS; i++) {
		if (!w->slot[i].busy) {
			s = &w->slot[i];
			break;
		}
	}
	if (!s || !(sqe = io_uring_get_sqe(&w->ring)))
		return;
	s->busy = true;
	s->sem = sem;
	if (sem) {
		s->acq = acq_arg(1 + below(2), timeout);
		prep_kprim(sqe, w->u, KPRIM_IOC_SEM_ACQUIRE, &s->acq, i);
	} else {
		s->take = take_arg(1 + below(3), timeout);
		prep_kprim(sqe, w->l, KPRIM_IOC_LIMITER_TAKE, &s->take, i);
	}
	ret = io_uring_submit(&w->ring);
	count(op, ret == 1);
	if (ret != 1)
		unexpected(op, ret < 0 ? ret : -EIO);
}

static void w_uring_cancel(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	int ret;

	if (!sqe)
		return;
	w->wc = (struct kprim_wait_cancel){
		.size = sizeof(w->wc), .flags = KPRIM_WAIT_CANCEL_ALL,
	};
	prep_kprim(sqe, below(2) ? w->u : w->l, KPRIM_IOC_WAIT_CANCEL, &w->wc,
		   TAG_CTL);
	ret = io_uring_submit(&w->ring);
	count(OP_URING_CANCEL, ret == 1);
	if (ret != 1)
		unexpected(OP_URING_CANCEL, ret < 0 ? ret : -EIO);
}

/* Reap what completed; release granted permits, or keep one. */
static void w_reap(struct worker *w)
{
	struct io_uring_cqe *cqe;

	if (w->defer)
		io_uring_get_events(&w->ring);
	while (!io_uring_peek_cqe(&w->ring, &cqe)) {
		__u64 ud = cqe->user_data;
		long res = cqe->res;
		struct slot *s;

		io_uring_cqe_seen(&w->ring, cqe);
		if (ud == TAG_CTL) {
			if (res < 0 && res != -ENOENT)
				unexpected(OP_URING_CANCEL, res);
			continue;
		}
		if (ud >= RING_SLOTS || !w->slot[ud].busy) {
			unexpected(OP_URING_CQE, -EBADMSG);
			continue;
		}
		s = &w->slot[ud];
		s->busy = false;
		count(OP_URING_CQE, !res);
		if (res && res != -ETIMEDOUT && res != -ECANCELED) {
			unexpected(OP_URING_CQE, res);
			continue;
		}
		if (res || !s->sem)
			continue;
		w->u_held += s->acq.n;
		if (w->u_held > 1 || below(2)) {
			res = sem_rel(w->u, w->u_held);
			if (res)
				unexpected(OP_URING_CQE, res);
			w->u_held = 0;
		}
	}
}

static void w_lim_take(struct worker *w)
{
	struct kprim_limiter_take t = take_arg(1 + below(LIM_BURST / 2),
					       below(21) * MSEC);
	long ret = kt_ioctl(w->l, KPRIM_IOC_LIMITER_TAKE, &t);

	count(OP_LIM_TAKE, !ret);
	if (ret && !timed_out(ret))
		unexpected(OP_LIM_TAKE, ret);
}

static long w_get(struct worker *w, unsigned int k, __u64 *cas)
{
	char key[4];
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)key, .key_len = 3,
		.value = (uintptr_t)w->buf, .value_len = sizeof(w->buf),
	};
	long ret;

	key_of(k, key);
	ret = kt_ioctl(w->c, KPRIM_IOC_CACHE_GET, &g);
	if (!ret && !intact(k, w->buf, g.value_len))
		atomic_fetch_add(&sh->corrupt, 1);
	if (cas)
		*cas = g.cas;
	return ret;
}

/* A data value stored with @op (SET or CAS). */
static long w_store(struct worker *w, unsigned int k, __u32 op, __u64 cas)
{
	char key[4];
	struct kprim_cache_store st = {
		.size = sizeof(st), .key = (uintptr_t)key, .key_len = 3,
		.op = op, .value = (uintptr_t)w->val,
		.value_len = 1 + below(MAX_VALUE), .cas = cas,
	};

	key_of(k, key);
	fill(w->val, st.value_len, (unsigned char)rnd());
	return kt_ioctl(w->c, KPRIM_IOC_CACHE_STORE, &st);
}

static void w_cache(struct worker *w)
{
	unsigned int k = (unsigned int)below(DATA_KEYS);
	char key[4];
	__u64 cas;
	long ret;

	switch (below(5)) {
	case 0:
		k = (unsigned int)below(NKEYS);
		ret = w_get(w, k, NULL);
		count(OP_CACHE_GET, !ret);
		if (ret && ret != -ENOENT)
			unexpected(OP_CACHE_GET, ret);
		break;
	case 1:
		ret = w_store(w, k, KPRIM_CACHE_SET, 0);
		count(OP_CACHE_SET, !ret);
		if (ret && ret != -ENOSPC)
			unexpected(OP_CACHE_SET, ret);
		break;
	case 2: {
		struct kprim_cache_incr in = {
			.size = sizeof(in), .key = (uintptr_t)key, .key_len = 3,
			.flags = KPRIM_CACHE_INCR_CREATE |
				 (below(4) ? 0 : KPRIM_CACHE_DECR),
			.delta = below(1000), .initial = below(100),
		};

		key_of(DATA_KEYS + (unsigned int)below(CTR_KEYS), key);
		ret = kt_ioctl(w->c, KPRIM_IOC_CACHE_INCR, &in);
		count(OP_CACHE_INCR, !ret);
		if (ret && ret != -ENOSPC && ret != -EINTR)
			unexpected(OP_CACHE_INCR, ret);
		break;
	}
	case 3:
		ret = w_get(w, k, &cas);
		if (ret == -ENOENT)
			break;
		if (ret) {
			unexpected(OP_CACHE_GET, ret);
			break;
		}
		ret = w_store(w, k, KPRIM_CACHE_CAS, cas);
		count(OP_CACHE_CAS, !ret);
		if (ret && ret != -ESTALE && ret != -ENOENT && ret != -ENOSPC)
			unexpected(OP_CACHE_CAS, ret);
		break;
	default: {
		struct kprim_cache_key d = {
			.size = sizeof(d), .key = (uintptr_t)key, .key_len = 3,
		};

		key_of((unsigned int)below(NKEYS), key);
		ret = kt_ioctl(w->c, KPRIM_IOC_CACHE_DELETE, &d);
		count(OP_CACHE_DEL, !ret);
		if (ret && ret != -ENOENT)
			unexpected(OP_CACHE_DEL, ret);
		break;
	}
	}
}

/*
 * A wait with no timeout that only a signal ends (or a grant): SIGALRM
 * every 0.5..5 ms until it returns, so an alarm that fires before the
 * call starts is followed by another.
 */
static void w_intr(struct worker *w)
{
	long us = 500 + (long)below(4500);
	struct itimerval it = {
		.it_interval = { .tv_usec = us }, .it_value = { .tv_usec = us },
	};
	struct itimerval off = { 0 };
	bool sem = below(2);
	long ret;

	setitimer(ITIMER_REAL, &it, NULL);
	if (sem) {
		struct kprim_sem_acquire a = acq_arg(PERMITS, INF);

		ret = kt_ioctl(w->a, KPRIM_IOC_SEM_ACQUIRE, &a);
		if (!ret && (ret = sem_rel(w->a, PERMITS)))
			unexpected(OP_INTR, ret);
	} else {
		struct kprim_limiter_take t = take_arg(LIM_BURST, INF);

		ret = kt_ioctl(w->l, KPRIM_IOC_LIMITER_TAKE, &t);
	}
	setitimer(ITIMER_REAL, &off, NULL);
	count(OP_INTR, ret == -EINTR);
	if (ret && ret != -EINTR)
		unexpected(OP_INTR, ret);
}

/* Runs until the parent kills it. */
static void __attribute__((noreturn)) worker(pid_t parent, int *inherited,
					     int n_inherited, uint64_t seed)
{
	static struct worker w;
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	struct io_uring_params p;
	int sess;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(3);
	/*
	 * Six spinning workers on the VM's 2 CPUs must not starve the
	 * parent's kill timing; a victim is reniced to 0 to die quickly.
	 */
	if (nice(WORKER_NICE) < 0)
		_exit(8);
	/* The parent's fds hold nothing; what the worker holds is its own. */
	for (int i = 0; i < n_inherited; i++)
		close(inherited[i]);
	rng = seed | 1;
	sess = kt_session();
	if (sess < 0)
		_exit(4);
	w.a = open_named(sess, KPRIM_KIND_SEM, sem_name, false);
	w.h = open_named(sess, KPRIM_KIND_SEM, sem_name, false);
	w.u = open_named(sess, KPRIM_KIND_SEM, sem_name, false);
	w.l = open_named(sess, KPRIM_KIND_LIMITER, lim_name, false);
	w.c = open_named(sess, KPRIM_KIND_CACHE, cache_name, false);
	if (w.a < 0 || w.h < 0 || w.u < 0 || w.l < 0 || w.c < 0)
		_exit(5);
	memset(&p, 0, sizeof(p));
	w.defer = below(2);
	if (w.defer)
		p.flags = IORING_SETUP_SINGLE_ISSUER |
			  IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params(4 * RING_SLOTS, &w.ring, &p)) {
		memset(&p, 0, sizeof(p));
		w.defer = false;
		if (io_uring_queue_init_params(4 * RING_SLOTS, &w.ring, &p))
			_exit(6);
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL))
		_exit(7);

	for (;;) {
		uint64_t r = below(100);

		if (r < 14)
			w_sem_acq(&w);
		else if (r < 20)
			w_sem_hold(&w);
		else if (r < 32)
			w_uring_wait(&w, true);
		else if (r < 44)
			w_uring_wait(&w, false);
		else if (r < 46)
			w_uring_cancel(&w);
		else if (r < 56)
			w_lim_take(&w);
		else if (r < 94)
			w_cache(&w);
		else
			w_intr(&w);
		w_reap(&w);
	}
}

/* --- the parent --------------------------------------------------------- */

/* What one checkpoint found, with every worker dead. */
struct check {
	struct kprim_sem_info si;
	struct kprim_limiter_info li;
	struct kprim_cache_info ci;
	__u64 found_entries, found_bytes, torn;
	__u64 settle_ms, refill_ms;
	int mget_ret;
};

FIXTURE(kill_loop) {
	int sess, sem, lim, cache;
	pid_t pids[WORKERS];
	unsigned long kills, spawned;
	unsigned int bad_exits;
	int first_bad_status;
	uint64_t seed;
};

FIXTURE_SETUP(kill_loop)
{
	struct kprim_api api = { .size = sizeof(api) };

	self->sem = self->lim = self->cache = -1;
	for (int i = 0; i < WORKERS; i++)
		self->pids[i] = -1;
	self->sess = kt_session();
	if (self->sess < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	ASSERT_EQ(0, kt_ioctl(self->sess, KPRIM_IOC_API, &api));
	if (!(api.features & KPRIM_FEAT_URING_ASYNC))
		SKIP(return, "module without KPRIM_FEAT_URING_ASYNC");
	KT_NAME(sem_name, "kl-sem");
	KT_NAME(lim_name, "kl-lim");
	KT_NAME(cache_name, "kl-cache");
	self->sem = open_named(self->sess, KPRIM_KIND_SEM, sem_name, true);
	self->lim = open_named(self->sess, KPRIM_KIND_LIMITER, lim_name, true);
	self->cache = open_named(self->sess, KPRIM_KIND_CACHE, cache_name, true);
	ASSERT_LE(0, self->sem);
	ASSERT_LE(0, self->lim);
	ASSERT_LE(0, self->cache);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, sh);
	memset(sh, 0, sizeof(*sh));
}

FIXTURE_TEARDOWN(kill_loop)
{
	for (int i = 0; i < WORKERS; i++) {
		if (self->pids[i] > 0) {
			kill(self->pids[i], SIGKILL);
			waitpid(self->pids[i], NULL, 0);
		}
	}
	if (self->cache >= 0)
		close(self->cache);
	if (self->lim >= 0)
		close(self->lim);
	if (self->sem >= 0)
		close(self->sem);
	if (self->sess >= 0)
		close(self->sess);
}

static pid_t spawn(FIXTURE_DATA(kill_loop) *self)
{
	int inherited[] = { self->sess, self->sem, self->lim, self->cache };
	uint64_t seed = self->seed ^
			((uint64_t)++self->spawned * 0x9E3779B97F4A7C15ull);
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid == 0)
		worker(parent, inherited, 4, seed);
	return pid;
}

/* Reap worker @i, which was sent SIGKILL. */
static bool reap(FIXTURE_DATA(kill_loop) *self, int i)
{
	int status;

	if (waitpid(self->pids[i], &status, 0) != self->pids[i])
		return false;
	self->pids[i] = -1;
	self->kills++;
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		if (!self->bad_exits++)
			self->first_bad_status = status;
	}
	return true;
}

static struct kprim_sem_info sem_info(int fd)
{
	struct kprim_sem_info si = { .size = sizeof(si) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &si))
		memset(&si, 0xff, sizeof(si));
	return si;
}

static struct kprim_limiter_info lim_info(int fd)
{
	struct kprim_limiter_info li = { .size = sizeof(li) };

	if (kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &li))
		memset(&li, 0xff, sizeof(li));
	return li;
}

static struct kprim_cache_info cache_info(int fd)
{
	struct kprim_cache_info ci = { .size = sizeof(ci) };

	if (kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, &ci))
		memset(&ci, 0xff, sizeof(ci));
	return ci;
}

static bool sem_settled(const struct kprim_sem_info *si)
{
	return si->available == PERMITS && si->held == 0 &&
	       si->waiters == 0 && si->nr_holders == 0;
}

/*
 * Every known key in one multi-get: entries found, their key + value
 * bytes, values not intact. Retried while an eviction or expiry slips in
 * between (the shrinker may run): INFO before and after must agree.
 */
static void cache_walk(int fd, struct check *c)
{
	static unsigned char bufs[NKEYS][CACHE_BYTES];
	static char keys[NKEYS][4];
	struct kprim_cache_mget_entry e[NKEYS];
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entries = (uintptr_t)e, .count = NKEYS,
		.entry_size = sizeof(e[0]),
	};

	for (int tries = 0; tries < 5; tries++) {
		struct kprim_cache_info after;

		c->found_entries = c->found_bytes = c->torn = 0;
		memset(e, 0, sizeof(e));
		for (unsigned int i = 0; i < NKEYS; i++) {
			key_of(i, keys[i]);
			e[i].key = (uintptr_t)keys[i];
			e[i].key_len = 3;
			e[i].value = (uintptr_t)bufs[i];
			e[i].value_len = CACHE_BYTES;
		}
		c->ci = cache_info(fd);
		c->mget_ret = (int)kt_ioctl(fd, KPRIM_IOC_CACHE_MGET, &m);
		after = cache_info(fd);
		for (unsigned int i = 0; i < NKEYS; i++) {
			if (e[i].result)
				continue;
			c->found_entries++;
			c->found_bytes += e[i].key_len + e[i].value_len;
			if (!intact(i, bufs[i], e[i].value_len))
				c->torn++;
		}
		if (after.evictions == c->ci.evictions &&
		    after.expirations == c->ci.expirations)
			return;
	}
}

/* Kill and reap every worker, then look at the objects. */
static bool checkpoint(struct __test_metadata *_metadata,
		       FIXTURE_DATA(kill_loop) *self, struct check *c)
{
	uint64_t t0, t1;

	for (int i = 0; i < WORKERS; i++) {
		setpriority(PRIO_PROCESS, self->pids[i], 0);
		kill(self->pids[i], SIGKILL);
	}
	for (int i = 0; i < WORKERS; i++)
		EXPECT_TRUE(reap(self, i));

	/* Nothing held, nothing waiting: the dead gave everything back. */
	t0 = kt_now_ns();
	for (;;) {
		c->si = sem_info(self->sem);
		c->li = lim_info(self->lim);
		if ((sem_settled(&c->si) && c->li.waiters == 0) ||
		    kt_now_ns() - t0 > SETTLE_NS)
			break;
		usleep(5000);
	}
	t1 = kt_now_ns();
	c->settle_ms = (t1 - t0) / MSEC;

	/* Refilled to the burst: no token stays reserved by the dead. */
	for (;;) {
		c->li = lim_info(self->lim);
		if (c->li.tokens == LIM_BURST ||
		    kt_now_ns() - t1 > LIM_BURST * NSEC / LIM_RATE +
				       TOKEN_MARGIN_NS)
			break;
		usleep(5000);
	}
	c->refill_ms = (kt_now_ns() - t1) / MSEC;

	cache_walk(self->cache, c);
	return sem_settled(&c->si) && c->li.waiters == 0 &&
	       c->li.tokens == LIM_BURST &&
	       c->found_entries == c->ci.entries &&
	       c->found_bytes == c->ci.bytes &&
	       c->ci.bytes <= CACHE_BYTES && c->torn == 0 &&
	       c->mget_ret == (int)c->found_entries;
}

TEST_F_TIMEOUT(kill_loop, sigkill_workers_loses_nothing, KILL_TIMEOUT_S)
{
	const char *env_secs = getenv("KPRIM_KILL_SECS");
	const char *env_seed = getenv("KPRIM_KILL_SEED");
	int secs = env_secs ? atoi(env_secs) : 10;
	unsigned long next_check = KILLS_PER_CHECK;
	unsigned int checkpoints = 0, max_settle = 0, max_refill = 0;
	struct check c;
	bool ok = true;
	uint64_t end, check_at, t, sleep_ns = 0, reap_ns = 0, spawn_ns = 0;
	char line[512];
	size_t len;

	ASSERT_LT(0, secs);
	ASSERT_GT(KILL_TIMEOUT_S - 120, secs);
	self->seed = env_seed ? strtoull(env_seed, NULL, 0) : kt_now_ns();
	rng = self->seed | 1;
	TH_LOG("seed %llu (KPRIM_KILL_SEED to repeat), %d s, %d workers",
	       (unsigned long long)self->seed, secs, WORKERS);

	for (int i = 0; i < WORKERS; i++) {
		self->pids[i] = spawn(self);
		ASSERT_LT(0, self->pids[i]);
	}
	end = kt_now_ns() + (uint64_t)secs * NSEC;
	check_at = kt_now_ns() + CHECK_EVERY_NS;
	while (kt_now_ns() < end) {
		bool victim[WORKERS] = { false };
		uint64_t r;

		t = kt_now_ns();
		usleep((useconds_t)below(20001));
		sleep_ns += kt_now_ns() - t;
		r = below(100);
		if (r < 5) {			/* the whole group */
			for (int i = 0; i < WORKERS; i++)
				victim[i] = true;
		} else if (r < 20) {		/* several at once */
			for (int n = 2 + (int)below(WORKERS / 2); n > 0; n--)
				victim[below(WORKERS)] = true;
		} else {
			victim[below(WORKERS)] = true;
		}
		t = kt_now_ns();
		for (int i = 0; i < WORKERS; i++) {
			if (!victim[i])
				continue;
			setpriority(PRIO_PROCESS, self->pids[i], 0);
			kill(self->pids[i], SIGKILL);
		}
		for (int i = 0; i < WORKERS; i++) {
			if (!victim[i])
				continue;
			ASSERT_TRUE(reap(self, i));
		}
		reap_ns += kt_now_ns() - t;
		t = kt_now_ns();
		for (int i = 0; i < WORKERS; i++) {
			if (!victim[i])
				continue;
			self->pids[i] = spawn(self);
			ASSERT_LT(0, self->pids[i]);
		}
		spawn_ns += kt_now_ns() - t;
		if (self->kills < next_check && kt_now_ns() < check_at)
			continue;
		ok = checkpoint(_metadata, self, &c);
		checkpoints++;
		max_settle = c.settle_ms > max_settle ? c.settle_ms : max_settle;
		max_refill = c.refill_ms > max_refill ? c.refill_ms : max_refill;
		if (!ok)
			break;
		next_check = self->kills + KILLS_PER_CHECK;
		check_at = kt_now_ns() + CHECK_EVERY_NS;
		for (int i = 0; i < WORKERS; i++) {
			self->pids[i] = spawn(self);
			ASSERT_LT(0, self->pids[i]);
		}
	}
	if (ok) {
		ok = checkpoint(_metadata, self, &c);
		checkpoints++;
		max_settle = c.settle_ms > max_settle ? c.settle_ms : max_settle;
		max_refill = c.refill_ms > max_refill ? c.refill_ms : max_refill;
	}

	/* What the workers did, per operation: attempts/successes. */
	len = 0;
	for (int i = 0; i < NR_OPS; i++) {
		unsigned long n = atomic_load(&sh->ops[i]);

		len += snprintf(line + len, sizeof(line) - len, "%s%s %lu/%lu",
				i ? ", " : "", op_names[i], n,
				(unsigned long)atomic_load(&sh->ok[i]));
		if (len >= sizeof(line))
			len = sizeof(line) - 1;
	}
	TH_LOG("operations (attempts/succeeded): %s", line);
	TH_LOG("parent: %llu ms asleep, %llu ms killing and reaping, %llu ms forking",
	       (unsigned long long)(sleep_ns / MSEC),
	       (unsigned long long)(reap_ns / MSEC),
	       (unsigned long long)(spawn_ns / MSEC));
	TH_LOG("%lu workers spawned; objects settled within %u ms of the last kill, tokens refilled within %u ms; cache at the end: %llu entries, %llu bytes, %llu evictions",
	       self->spawned, max_settle, max_refill,
	       (unsigned long long)c.ci.entries, (unsigned long long)c.ci.bytes,
	       (unsigned long long)c.ci.evictions);
	TH_LOG("kills survived: %lu (%d workers, %u checkpoints), permits lost %llu, tokens lost %llu",
	       self->kills, WORKERS, checkpoints,
	       (unsigned long long)(c.si.available < PERMITS ?
				    PERMITS - c.si.available : 0),
	       (unsigned long long)(c.li.tokens < LIM_BURST ?
				    LIM_BURST - c.li.tokens : 0));

	for (unsigned int i = 0; i < sh->unexpected && i < MAX_UNEXPECTED; i++)
		TH_LOG("unexpected errno %d (%s) in %s", sh->first[i].err,
		       strerror(sh->first[i].err), op_names[sh->first[i].op]);
	ASSERT_EQ(0, atomic_load(&sh->unexpected));
	ASSERT_EQ(0, self->bad_exits)
		TH_LOG("%u workers did not die of SIGKILL, the first with status %#x",
		       self->bad_exits, self->first_bad_status);
	ASSERT_EQ(0, atomic_load(&sh->corrupt))
		TH_LOG("workers' gets found %lu torn values",
		       (unsigned long)sh->corrupt);

	ASSERT_EQ(PERMITS, c.si.available)
		TH_LOG("checkpoint %u: semaphore available %llu of %d permits (held %llu, holders %u, waiters %llu) %llu ms after the last kill",
		       checkpoints, (unsigned long long)c.si.available, PERMITS,
		       (unsigned long long)c.si.held, c.si.nr_holders,
		       (unsigned long long)c.si.waiters,
		       (unsigned long long)c.settle_ms);
	ASSERT_EQ(0, c.si.held)
		TH_LOG("checkpoint %u: semaphore held %llu", checkpoints,
		       (unsigned long long)c.si.held);
	ASSERT_EQ(0, c.si.nr_holders)
		TH_LOG("checkpoint %u: semaphore holders %u", checkpoints,
		       c.si.nr_holders);
	ASSERT_EQ(0, c.si.waiters)
		TH_LOG("checkpoint %u: semaphore waiters %llu", checkpoints,
		       (unsigned long long)c.si.waiters);
	ASSERT_EQ(0, c.li.waiters)
		TH_LOG("checkpoint %u: limiter waiters %llu", checkpoints,
		       (unsigned long long)c.li.waiters);
	ASSERT_EQ(LIM_BURST, c.li.tokens)
		TH_LOG("checkpoint %u: limiter tokens %llu of burst %d, %llu ms after its waiters were gone (rate %d/s)",
		       checkpoints, (unsigned long long)c.li.tokens, LIM_BURST,
		       (unsigned long long)c.refill_ms, LIM_RATE);
	ASSERT_EQ(c.found_entries, c.ci.entries)
		TH_LOG("checkpoint %u: cache INFO entries %llu, multi-get found %llu",
		       checkpoints, (unsigned long long)c.ci.entries,
		       (unsigned long long)c.found_entries);
	ASSERT_EQ(c.found_bytes, c.ci.bytes)
		TH_LOG("checkpoint %u: cache INFO bytes %llu, multi-get found %llu",
		       checkpoints, (unsigned long long)c.ci.bytes,
		       (unsigned long long)c.found_bytes);
	ASSERT_GE(CACHE_BYTES, c.ci.bytes)
		TH_LOG("checkpoint %u: cache bytes %llu over max_bytes %d",
		       checkpoints, (unsigned long long)c.ci.bytes, CACHE_BYTES);
	ASSERT_EQ(0, c.torn)
		TH_LOG("checkpoint %u: %llu cached values torn", checkpoints,
		       (unsigned long long)c.torn);
	ASSERT_EQ((int)c.found_entries, c.mget_ret)
		TH_LOG("checkpoint %u: MGET returned %d", checkpoints,
		       c.mget_ret);

	/* It really ran: every operation was tried, kills kept coming. */
	for (int i = 0; i < NR_OPS; i++) {
		EXPECT_LT(0, atomic_load(&sh->ops[i]))
			TH_LOG("no %s at all", op_names[i]);
	}
	EXPECT_LT(WORKERS, self->kills);
}

TEST_HARNESS_MAIN
