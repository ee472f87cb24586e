// SPDX-License-Identifier: GPL-2.0
/*
 * kprim-bench - what a kprim operation costs next to what a user would pick
 * instead, measured side by side in one run.
 *
 *   kprim-bench [-t SECONDS] [-w SECONDS] [-T THREADS,...] [-b BATCH]
 *               [-o CASES] [-x PROG]...
 *
 * Every case runs for a fixed time (-t, default 0.3 s) after a warm-up (-w,
 * default 0.05 s), at 1 thread, at one thread per online CPU and at 4
 * threads (-T overrides). All threads of a case share one object, as the
 * processes of a host share a kprim object. Absolute times depend on the
 * machine (and mean little under an emulator), so the table also gives
 * each row as a multiple of an empty syscall measured in the same run, and
 * kprim's rows as ratios to their peers.
 *
 * -x PROG (up to four times) runs PROG -t SECONDS -w SECONDS -b BATCH
 * -T THREADS,... after the cases here and adds the rows it reports, one
 * "CASE THREADS NS_PER_OP" line each, for the cases marked external below
 * with PROG's file name: tools/gobench/gobench.go measures Go's peers that
 * way, tools/daemonbench/daemonbench.c memcached and Redis. When PROG is not
 * there, its rows are left out.
 *
 * -o (or $KPRIM_BENCH_ONLY) runs only the cases named, by id or fnmatch()
 * pattern ("cache-*:mc-mget"), and the floor; $KPRIM_BENCH_THREADS stands
 * for -T. Both can reach the test VM through make bench's KPRIM_GUEST_ENV.
 *
 * The io_uring rows come with the ring's options: "+fix" the object's fd
 * registered, "+rfd" the ring's fd registered, "+dt" SINGLE_ISSUER |
 * DEFER_TASKRUN | COOP_TASKRUN, "+128" 128-byte SQEs. The "empty" rows
 * take io_uring's own cost apart from kprim's: NOPs, and a uring_cmd and
 * an ioctl() that kprim refuses at its first line.
 *
 * Exit status: 0 when every case could be set up (an operation failing
 * while measured is reported in its row), 1 otherwise, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <liburing.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include "uapi/kprim.h"		/* before kprim.h: it defines the constants */
#include <kprim.h>
#include "bench-phases.h"

#define NSEC		1000000000ull
#define MAX_THREADS	256
#define MAX_COUNTS	8
#define MAX_BATCH	256
#define VALUE		"0123456789abcdef"	/* the 16-byte cache value */
#define VALUE_LEN	(sizeof(VALUE) - 1)

static const char *prog = "kprim-bench";

/* Options. */
static double opt_secs = 0.3, opt_warm = 0.05;
static int opt_batch = 32;
#define MAX_EXTERN	4
static const char *opt_extern[MAX_EXTERN];
static int n_extern;
static const char *opt_only;	/* -o: the cases to run, all when NULL */
/* -I: the guest counts instructions (QEMU -icount shift=0, one vCPU): a
 * guest ns is one instruction, so the rows read as instructions per op. */
static bool opt_insn;

/* ------------------------------------------------------------------------
 * Peers that live in the process: the obvious C a user would write instead
 * of a kernel object, when host-wide sharing is not needed.
 */

/*
 * A token bucket with the module's integer math (kmod/bucket.c): one token
 * is period_ns fill units and every nanosecond adds rate units, so the
 * comparison is about where the bucket lives, not about the arithmetic.
 */
struct tbucket {
	pthread_mutex_t mu;
	uint64_t rate, period_ns, cap, fill, last;
};

static bool tbucket_take(struct tbucket *b, uint64_t n)
{
	uint64_t now = bench_now_ns(), add, cost;
	bool ok;

	pthread_mutex_lock(&b->mu);
	if (now > b->last) {
		if (__builtin_mul_overflow(now - b->last, b->rate, &add) ||
		    add >= b->cap - b->fill)
			b->fill = b->cap;
		else
			b->fill += add;
		b->last = now;
	}
	ok = !__builtin_mul_overflow(n, b->period_ns, &cost) && cost <= b->fill;
	if (ok)
		b->fill -= cost;
	pthread_mutex_unlock(&b->mu);
	return ok;
}

/* The textbook counting semaphore: a count under a mutex, a condvar. */
struct csem {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	long count;
	int waiters;
};

static void csem_acquire(struct csem *s)
{
	pthread_mutex_lock(&s->mu);
	while (s->count == 0) {
		s->waiters++;
		pthread_cond_wait(&s->cv, &s->mu);
		s->waiters--;
	}
	s->count--;
	pthread_mutex_unlock(&s->mu);
}

static void csem_release(struct csem *s)
{
	pthread_mutex_lock(&s->mu);
	s->count++;
	/* Only signal when someone sleeps: the cheap path stays cheap. */
	if (s->waiters)
		pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------------
 * The cases. One runs at a time, so the objects they share between their
 * threads are plain globals, set up for the thread count of the run.
 */

static struct kprim *ksess;
static struct kprim_limiter *klim;
static struct kprim_sem *ksem;
static struct kprim_cache *kcache;
static struct tbucket tbucket;
static struct csem csem;
static int sysv_id = -1;
static sem_t *posix_sem = SEM_FAILED;
static char lock_path[64];

/* Per-thread state. */
struct worker {
	int idx;
	int fd;				/* flock: its own open file */
	char key[32];			/* cache: its own key */
	size_t klen;
	bool have_ring;
	struct io_uring ring;		/* batched cases */
	int sqe_fd;			/* the object's fd, or its fixed index */
	unsigned char sqe_flags;	/* IOSQE_FIXED_FILE with a fixed file */
	struct kprim_cache_get *gets;
	struct kprim_limiter_take *takes;
	struct kprim_cache_mget_item *items;	/* cache multi-get */
	struct kprim_cache_mget_entry *ents;	/* multi-get via io_uring */
	struct kprim_cache_mget mget;
	char (*bufs)[64];
	/* results */
	uint64_t ops, ns;
	int err;
	const char *err_what;
	bool init_failed;
};

struct bench_case {
	const char *id;		/* for the ratio table and -o */
	const char *label;
	const char *batched;	/* label gets ", <batched> xBATCH" */
	const char *external;	/* measured by the -x program of this name */
	unsigned int ring;	/* io_uring cases: RING_* */
	bool probe;		/* a breakdown probe: with -I or -o only */
	int (*setup)(int nthreads);		/* 0 or -errno */
	void (*teardown)(void);
	int (*thread_init)(struct worker *w);	/* 0 or -errno */
	void (*thread_fini)(struct worker *w);
	/* One step: the number of operations done (>= 1), or -errno. */
	int (*op)(struct worker *w);
};

/* Where a case's setup failed, for the message (set by the main thread). */
static const char *setup_what;

/* The case being run. */
static const struct bench_case *cur;

static int fail_at(const char *what, int err)
{
	setup_what = what;
	return err < 0 ? err : -err;
}

/* The same for a thread's own setup: each thread reports in its worker. */
static int wfail_at(struct worker *w, const char *what, int err)
{
	w->err_what = what;
	return err < 0 ? err : -err;
}

/* --- the syscall floor --- */

static int op_getppid(struct worker *w)
{
	(void)w;
	/* syscall(): glibc might cache or inline what its wrapper returns. */
	syscall(SYS_getppid);
	return 1;
}

/* --- limiters --- */

/*
 * 10^9 tokens/s and a bucket of 10^9: no run here comes near that, so
 * every take succeeds and the rows measure the cost of asking.
 */
static int setup_klim(int nthreads)
{
	struct kprim_limiter_config cfg = {
		.rate = NSEC, .period_ns = NSEC, .burst = NSEC,
	};
	int ret;

	(void)nthreads;
	ret = kprim_limiter_open(ksess, NULL, KPRIM_CREATE, 0600, &cfg, &klim);
	return ret ? fail_at("kprim_limiter_open", ret) : 0;
}

/* The same limiter without its state page: every take is an ioctl. */
static int setup_klim_ioctl(int nthreads)
{
	int ret;

	setenv("KPRIM_NO_LIMITER_PAGE", "1", 1);
	ret = setup_klim(nthreads);
	unsetenv("KPRIM_NO_LIMITER_PAGE");
	return ret;
}

static void teardown_klim(void)
{
	kprim_limiter_close(klim);
	klim = NULL;
}

static int op_klim(struct worker *w)
{
	int ret = kprim_limiter_try_take(klim, 1, NULL);

	if (ret)
		w->err_what = "kprim_limiter_try_take";
	return ret ? ret : 1;
}

static int setup_tbucket(int nthreads)
{
	(void)nthreads;
	pthread_mutex_init(&tbucket.mu, NULL);
	tbucket.rate = NSEC;
	tbucket.period_ns = NSEC;
	tbucket.cap = NSEC * NSEC;
	tbucket.fill = tbucket.cap;
	tbucket.last = bench_now_ns();
	return 0;
}

static void teardown_tbucket(void)
{
	pthread_mutex_destroy(&tbucket.mu);
}

static int op_tbucket(struct worker *w)
{
	if (tbucket_take(&tbucket, 1))
		return 1;
	w->err_what = "token bucket take";
	return -EAGAIN;
}

/* --- semaphores and locks: one acquire + one release is one operation --- */

/*
 * As many permits as threads: nobody ever waits for a permit, so the rows
 * compare the cost of the pair (and of sharing the object), not how each
 * scheduler hands over a contended permit. flock has no permit count: it is
 * the exclusive lock people reach for, contended from 2 threads on.
 */
static int setup_ksem(int nthreads)
{
	int ret = kprim_sem_open(ksess, NULL, KPRIM_CREATE, 0600,
				 (uint64_t)nthreads, &ksem);

	return ret ? fail_at("kprim_sem_open", ret) : 0;
}

/* The same semaphore without its fd's slot: every call is an ioctl. */
static int setup_ksem_ioctl(int nthreads)
{
	int ret;

	setenv("KPRIM_NO_SEM_SLOT", "1", 1);
	ret = setup_ksem(nthreads);
	unsetenv("KPRIM_NO_SEM_SLOT");
	return ret;
}

static void teardown_ksem(void)
{
	kprim_sem_close(ksem);
	ksem = NULL;
}

static int op_ksem(struct worker *w)
{
	int ret = kprim_sem_try_acquire(ksem, 1);

	if (ret) {
		w->err_what = "kprim_sem_try_acquire";
		return ret;
	}
	ret = kprim_sem_release(ksem, 1);
	if (ret) {
		w->err_what = "kprim_sem_release";
		return ret;
	}
	return 1;
}

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static int setup_sysv(int nthreads)
{
	union semun arg = { .val = nthreads };

	sysv_id = semget(IPC_PRIVATE, 1, IPC_CREAT | 0600);
	if (sysv_id < 0)
		return fail_at("semget", errno);
	if (semctl(sysv_id, 0, SETVAL, arg) < 0)
		return fail_at("semctl SETVAL", errno);
	return 0;
}

static void teardown_sysv(void)
{
	if (sysv_id >= 0)
		semctl(sysv_id, 0, IPC_RMID);
	sysv_id = -1;
}

static int op_sysv(struct worker *w)
{
	/* SEM_UNDO: the crash safety kprim gives, so the fair comparison. */
	struct sembuf down = { .sem_num = 0, .sem_op = -1, .sem_flg = SEM_UNDO };
	struct sembuf up = { .sem_num = 0, .sem_op = 1, .sem_flg = SEM_UNDO };

	if (semop(sysv_id, &down, 1) || semop(sysv_id, &up, 1)) {
		w->err_what = "semop";
		return -errno;
	}
	return 1;
}

static int setup_posix(int nthreads)
{
	char name[64];

	snprintf(name, sizeof(name), "/kprim-bench-%d", (int)getpid());
	posix_sem = sem_open(name, O_CREAT | O_EXCL, 0600, (unsigned int)nthreads);
	if (posix_sem == SEM_FAILED)
		return fail_at("sem_open (is /dev/shm mounted?)", errno);
	/* The mapping stays usable; nothing is left behind on a crash. */
	sem_unlink(name);
	return 0;
}

static void teardown_posix(void)
{
	if (posix_sem != SEM_FAILED)
		sem_close(posix_sem);
	posix_sem = SEM_FAILED;
}

static int op_posix(struct worker *w)
{
	while (sem_wait(posix_sem)) {
		if (errno != EINTR) {
			w->err_what = "sem_wait";
			return -errno;
		}
	}
	if (sem_post(posix_sem)) {
		w->err_what = "sem_post";
		return -errno;
	}
	return 1;
}

static int setup_flock(int nthreads)
{
	int fd;

	(void)nthreads;
	snprintf(lock_path, sizeof(lock_path), "/dev/shm/kprim-bench-%d.lock",
		 (int)getpid());
	fd = open(lock_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail_at("create the lock file in /dev/shm", errno);
	close(fd);
	return 0;
}

static void teardown_flock(void)
{
	unlink(lock_path);
}

/* flock locks belong to the open file: one open per thread, as per process. */
static int init_flock(struct worker *w)
{
	w->fd = open(lock_path, O_RDWR | O_CLOEXEC);
	return w->fd < 0 ? wfail_at(w, "open the lock file", errno) : 0;
}

static void fini_flock(struct worker *w)
{
	close(w->fd);
}

static int op_flock(struct worker *w)
{
	if (flock(w->fd, LOCK_EX) || flock(w->fd, LOCK_UN)) {
		w->err_what = "flock";
		return -errno;
	}
	return 1;
}

static int setup_csem(int nthreads)
{
	pthread_mutex_init(&csem.mu, NULL);
	pthread_cond_init(&csem.cv, NULL);
	csem.count = nthreads;
	csem.waiters = 0;
	return 0;
}

static void teardown_csem(void)
{
	pthread_cond_destroy(&csem.cv);
	pthread_mutex_destroy(&csem.mu);
}

static int op_csem(struct worker *w)
{
	(void)w;
	csem_acquire(&csem);
	csem_release(&csem);
	return 1;
}

/*
 * --- channels: each step sends one element and receives one, all threads
 * on one buffered channel (capacity >= threads, so a step never blocks for
 * good), next to the same over a mutex+condvar ring queue ---
 */

#define QCAP	64

static struct kprim_chan *kchan;

static struct cvqueue {
	pthread_mutex_t mu;
	pthread_cond_t not_empty, not_full;
	long ring[QCAP];
	unsigned int head, count;
} cvq;

static int setup_chan(int nthreads)
{
	if (nthreads > QCAP)
		return fail_at("kprim_chan_new (too many threads)", EINVAL);
	return kprim_chan_new(sizeof(long), QCAP, &kchan) ?
	       fail_at("kprim_chan_new", ENOMEM) : 0;
}

static void teardown_chan(void)
{
	kprim_chan_free(kchan);
	kchan = NULL;
}

static int op_chan(struct worker *w)
{
	long v = w->idx;
	int ret;

	ret = kprim_chan_send(kchan, &v, NULL, KPRIM_TIMEOUT_INFINITE);
	if (!ret)
		ret = kprim_chan_recv(kchan, &v, NULL, KPRIM_TIMEOUT_INFINITE);
	return ret ? wfail_at(w, "kprim_chan send/recv", ret) : 1;
}

static int setup_cvq(int nthreads)
{
	if (nthreads > QCAP)
		return fail_at("queue (too many threads)", EINVAL);
	pthread_mutex_init(&cvq.mu, NULL);
	pthread_cond_init(&cvq.not_empty, NULL);
	pthread_cond_init(&cvq.not_full, NULL);
	cvq.head = cvq.count = 0;
	return 0;
}

static void teardown_cvq(void)
{
	pthread_cond_destroy(&cvq.not_full);
	pthread_cond_destroy(&cvq.not_empty);
	pthread_mutex_destroy(&cvq.mu);
}

/* Push and pop are separate calls, as they are on a channel. */
static void cvq_push(long v)
{
	pthread_mutex_lock(&cvq.mu);
	while (cvq.count == QCAP)
		pthread_cond_wait(&cvq.not_full, &cvq.mu);
	cvq.ring[(cvq.head + cvq.count++) % QCAP] = v;
	pthread_cond_signal(&cvq.not_empty);
	pthread_mutex_unlock(&cvq.mu);
}

static long cvq_pop(void)
{
	long v;

	pthread_mutex_lock(&cvq.mu);
	while (!cvq.count)
		pthread_cond_wait(&cvq.not_empty, &cvq.mu);
	v = cvq.ring[cvq.head];
	cvq.head = (cvq.head + 1) % QCAP;
	cvq.count--;
	pthread_cond_signal(&cvq.not_full);
	pthread_mutex_unlock(&cvq.mu);
	return v;
}

static int op_cvq(struct worker *w)
{
	cvq_push(w->idx);
	(void)cvq_pop();
	return 1;
}

/* --- the cache: each thread gets and sets its own key in one cache --- */

static int setup_kcache(int nthreads)
{
	struct kprim_cache_config cfg = { 0 };	/* defaults, no expiry */
	int ret;

	(void)nthreads;
	ret = kprim_cache_open(ksess, NULL, KPRIM_CREATE, 0600, &cfg, &kcache);
	return ret ? fail_at("kprim_cache_open", ret) : 0;
}

static void teardown_kcache(void)
{
	kprim_cache_close(kcache);
	kcache = NULL;
}

static int init_kcache(struct worker *w)
{
	int ret;

	w->klen = (size_t)snprintf(w->key, sizeof(w->key), "bench:key:%d",
				   w->idx);
	/* Stored before the clock starts, so that every get is a hit. */
	ret = kprim_cache_set(kcache, w->key, w->klen, VALUE, VALUE_LEN, 0,
			      NULL);
	return ret ? wfail_at(w, "kprim_cache_set", ret) : 0;
}

static int op_kcache_get(struct worker *w)
{
	char buf[64];
	size_t len = sizeof(buf);
	int ret = kprim_cache_get(kcache, w->key, w->klen, buf, &len, NULL,
				  NULL);

	if (ret || len != VALUE_LEN) {
		w->err_what = "kprim_cache_get (expected a 16-byte hit)";
		return ret ? ret : -EBADMSG;
	}
	return 1;
}

static int op_kcache_set(struct worker *w)
{
	int ret = kprim_cache_set(kcache, w->key, w->klen, VALUE, VALUE_LEN, 0,
				  NULL);

	if (ret)
		w->err_what = "kprim_cache_set";
	return ret ? ret : 1;
}

/* --- a batch of gets in one KPRIM_IOC_CACHE_MGET call --- */

static int init_kcache_mget(struct worker *w)
{
	int ret = init_kcache(w);

	if (ret)
		return ret;
	w->items = calloc((size_t)opt_batch, sizeof(*w->items));
	w->bufs = calloc((size_t)opt_batch, sizeof(*w->bufs));
	return w->items && w->bufs ? 0 : wfail_at(w, "calloc", ENOMEM);
}

static void fini_kcache_mget(struct worker *w)
{
	free(w->items);
	free(w->bufs);
	w->items = NULL;
	w->bufs = NULL;
}

static int op_kcache_mget(struct worker *w)
{
	int i, ret;

	for (i = 0; i < opt_batch; i++) {
		/* len is in/out: reset it for every get. */
		w->items[i] = (struct kprim_cache_mget_item){
			.key = w->key, .klen = w->klen,
			.buf = w->bufs[i], .len = sizeof(w->bufs[i]),
		};
	}
	ret = kprim_cache_mget(kcache, w->items, (size_t)opt_batch);
	if (ret != opt_batch) {
		w->err_what = "kprim_cache_mget (expected all hits)";
		return ret < 0 ? ret : -EBADMSG;
	}
	return ret;
}

/*
 * --- batches through io_uring: IORING_OP_URING_CMD, one enter per batch ---
 *
 * How a case sets up its ring. The kprim rows use what a liburing user
 * after speed would: the object's fd registered (IOSQE_FIXED_FILE: no
 * fget/fput per command), the ring fd registered (no fdget per enter) and
 * a single-issuer ring with deferred task work. The "io_uring cost" rows
 * add these one at a time to an empty command, to show what each is worth.
 */
#define RING_FIXED	(1U << 0)	/* the object's fd as a fixed file */
#define RING_REGFD	(1U << 1)	/* io_uring_register_ring_fd() */
#define RING_DEFER	(1U << 2)	/* SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN */
#define RING_SQE128	(1U << 3)	/* 128-byte SQEs */
#define RING_FAST	(RING_FIXED | RING_REGFD | RING_DEFER)

/* One kprim command: cmd_op is the ioctl, addr3 (the first 8 bytes of the
 * command area) the pointer the ioctl would take. */
static void prep_kprim(struct worker *w, unsigned int cmd, void *arg)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, w->sqe_fd, NULL, 0, 0);
	sqe->flags = w->sqe_flags;
	sqe->cmd_op = cmd;
	sqe->addr3 = (uintptr_t)arg;
}

/* A ring for @fd (-1: commands that take no file) as cur->ring says. */
static int init_ring_fd(struct worker *w, int fd)
{
	struct io_uring_params p = { 0 };
	unsigned int how = cur->ring;
	int ret;

	if (how & RING_DEFER)
		p.flags |= IORING_SETUP_SINGLE_ISSUER |
			   IORING_SETUP_DEFER_TASKRUN |
			   IORING_SETUP_COOP_TASKRUN;
	if (how & RING_SQE128)
		p.flags |= IORING_SETUP_SQE128;
	ret = io_uring_queue_init_params((unsigned int)opt_batch, &w->ring, &p);
	if (ret)
		return wfail_at(w, "io_uring_queue_init_params", ret);
	w->have_ring = true;
	w->sqe_fd = fd;
	w->sqe_flags = 0;
	if ((how & RING_FIXED) && fd >= 0) {
		ret = io_uring_register_files(&w->ring, &fd, 1);
		if (ret)
			return wfail_at(w, "io_uring_register_files", ret);
		w->sqe_fd = 0;
		w->sqe_flags = IOSQE_FIXED_FILE;
	}
	if (how & RING_REGFD) {
		/* Returns how many were registered: 1. */
		ret = io_uring_register_ring_fd(&w->ring);
		if (ret != 1)
			return wfail_at(w, "io_uring_register_ring_fd",
					ret < 0 ? ret : -EIO);
	}
	return 0;
}

static void fini_ring(struct worker *w)
{
	if (w->have_ring)
		io_uring_queue_exit(&w->ring);
	w->have_ring = false;
	free(w->gets);
	free(w->takes);
	free(w->bufs);
	free(w->ents);
	w->gets = NULL;
	w->takes = NULL;
	w->bufs = NULL;
	w->ents = NULL;
}

/*
 * Submit the queued batch and reap it with the same io_uring_enter(): the
 * cost of the batch is one syscall plus the commands themselves. Every
 * command must complete with @want (0, or the errno an empty command is
 * expected to fail with).
 */
static int submit_batch_want(struct worker *w, const char *what, int want)
{
	struct io_uring_cqe *cqe;
	unsigned int head, seen = 0;
	int ret, err = 0;

	ret = io_uring_submit_and_wait(&w->ring, (unsigned int)opt_batch);
	if (ret < 0) {
		w->err_what = "io_uring_submit_and_wait";
		return ret;
	}
	io_uring_for_each_cqe(&w->ring, head, cqe) {
		if (cqe->res != want && !err)
			err = cqe->res < 0 ? cqe->res : -EBADMSG;
		seen++;
	}
	io_uring_cq_advance(&w->ring, seen);
	if (err) {
		w->err_what = what;
		return err;
	}
	return (int)seen;
}

static int submit_batch(struct worker *w, const char *what)
{
	return submit_batch_want(w, what, 0);
}

/* --- what io_uring itself costs: commands that do nothing --- */

static int init_nop_uring(struct worker *w)
{
	return init_ring_fd(w, -1);
}

static int op_nop_uring(struct worker *w)
{
	int i;

	for (i = 0; i < opt_batch; i++)
		io_uring_prep_nop(io_uring_get_sqe(&w->ring));
	return submit_batch(w, "IORING_OP_NOP");
}

/*
 * A uring_cmd that kprim refuses at its first line: cmd_op 0 is not a
 * kprim ioctl, so kprim_obj_uring_cmd() returns -ENOTTY before it reads
 * anything. On the cache's fd, which every case here has open.
 */
static int init_enotty_uring(struct worker *w)
{
	return init_ring_fd(w, kprim_cache_fd(kcache));
}

static int op_enotty_uring(struct worker *w)
{
	int i;

	for (i = 0; i < opt_batch; i++)
		prep_kprim(w, 0, NULL);
	return submit_batch_want(w, "uring_cmd 0 (expected -ENOTTY)",
				 -ENOTTY);
}

/* The same refusal through ioctl(): the syscall, fdget and the dispatch. */
static int op_enotty_ioctl(struct worker *w)
{
	if (ioctl(kprim_cache_fd(kcache), 0, NULL) == -1 && errno == ENOTTY)
		return 1;
	w->err_what = "ioctl 0 (expected ENOTTY)";
	return errno ? -errno : -EBADMSG;
}

static int init_kcache_uring(struct worker *w)
{
	int ret = init_kcache(w);

	if (!ret)
		ret = init_ring_fd(w, kprim_cache_fd(kcache));
	if (ret)
		return ret;
	w->gets = calloc((size_t)opt_batch, sizeof(*w->gets));
	w->bufs = calloc((size_t)opt_batch, sizeof(*w->bufs));
	return w->gets && w->bufs ? 0 : wfail_at(w, "calloc", ENOMEM);
}

static int op_kcache_get_uring(struct worker *w)
{
	int i;

	for (i = 0; i < opt_batch; i++) {
		/* value_len is in/out: reset it for every get. */
		w->gets[i] = (struct kprim_cache_get){
			.size = sizeof(w->gets[i]),
			.key = (uintptr_t)w->key, .key_len = (__u32)w->klen,
			.value = (uintptr_t)w->bufs[i],
			.value_len = sizeof(w->bufs[i]),
		};
		prep_kprim(w, KPRIM_IOC_CACHE_GET, &w->gets[i]);
	}
	return submit_batch(w, "cache get via io_uring");
}

/*
 * The whole batch in one command: a KPRIM_IOC_CACHE_MGET of BATCH keys as
 * a single uring_cmd, so io_uring's cost per request is paid once per
 * batch, not once per key. Counted per key.
 */
static int init_kcache_mget_uring(struct worker *w)
{
	int ret = init_kcache(w);

	if (!ret)
		ret = init_ring_fd(w, kprim_cache_fd(kcache));
	if (ret)
		return ret;
	w->ents = calloc((size_t)opt_batch, sizeof(*w->ents));
	w->bufs = calloc((size_t)opt_batch, sizeof(*w->bufs));
	return w->ents && w->bufs ? 0 : wfail_at(w, "calloc", ENOMEM);
}

static int op_kcache_mget_uring(struct worker *w)
{
	struct io_uring_cqe *cqe;
	int i, ret;

	for (i = 0; i < opt_batch; i++) {
		/* value_len is in/out: reset it for every get. */
		w->ents[i] = (struct kprim_cache_mget_entry){
			.key = (uintptr_t)w->key, .key_len = (__u32)w->klen,
			.value = (uintptr_t)w->bufs[i],
			.value_len = sizeof(w->bufs[i]),
		};
	}
	w->mget = (struct kprim_cache_mget){
		.size = sizeof(w->mget), .entries = (uintptr_t)w->ents,
		.count = (__u32)opt_batch, .entry_size = sizeof(w->ents[0]),
	};
	prep_kprim(w, KPRIM_IOC_CACHE_MGET, &w->mget);
	ret = io_uring_submit_and_wait(&w->ring, 1);
	if (ret < 0) {
		w->err_what = "io_uring_submit_and_wait";
		return ret;
	}
	ret = io_uring_peek_cqe(&w->ring, &cqe);
	if (ret) {
		w->err_what = "io_uring_peek_cqe";
		return ret;
	}
	ret = cqe->res;
	io_uring_cqe_seen(&w->ring, cqe);
	if (ret != opt_batch) {
		w->err_what = "multi-get via io_uring (expected all hits)";
		return ret < 0 ? ret : -EBADMSG;
	}
	return ret;
}

static int init_klim_uring(struct worker *w)
{
	int ret = init_ring_fd(w, kprim_limiter_fd(klim));

	if (ret)
		return ret;
	w->takes = calloc((size_t)opt_batch, sizeof(*w->takes));
	return w->takes ? 0 : wfail_at(w, "calloc", ENOMEM);
}

static int op_klim_uring(struct worker *w)
{
	int i;

	for (i = 0; i < opt_batch; i++) {
		/* Timeout 0: a try-take, the same request as op_klim(). */
		w->takes[i] = (struct kprim_limiter_take){
			.size = sizeof(w->takes[i]), .n = 1,
			.wait = { .timeout_ns = 0,
				  .cancel_fd = KPRIM_NO_CANCEL_FD },
		};
		prep_kprim(w, KPRIM_IOC_LIMITER_TAKE, &w->takes[i]);
	}
	return submit_batch(w, "limiter take via io_uring");
}

/*
 * --- probes: where an operation's instructions go ---
 *
 * Each probe is the operation cut short at a known stage: the kernel
 * refuses it there with a known errno, so the difference between two
 * probes is what the stage between their exits costs (read in
 * instructions, -I: in time they drown in noise). The raw probes make the
 * same call as the library without the library, so their difference to
 * the library row is libkprim's own share. Probes run with -I or when -o
 * names them; make bench-insn prints them as the breakdown table.
 */

/* Call ioctl(@fd, @cmd, @arg) and count it as one operation if it fails
 * with @want (0: succeeds). */
static int probe_ioctl(struct worker *w, int fd, unsigned long cmd, void *arg,
		       int want, const char *what)
{
	int ret = ioctl(fd, cmd, arg) < 0 ? errno : 0;

	if (ret == want)
		return 1;
	w->err_what = what;
	return ret ? -ret : -EBADMSG;
}

/* clock_gettime() as a syscall, not the vDSO: entry, one clock read, a
 * 16-byte copy out. Minus the floor: an upper bound of a clock read. */
static int op_clock_syscall(struct worker *w)
{
	struct timespec ts;

	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts)) {
		w->err_what = "clock_gettime syscall";
		return -errno;
	}
	return 1;
}

static int op_lim_enotty(struct worker *w)
{
	return probe_ioctl(w, kprim_limiter_fd(klim), 0, NULL, ENOTTY,
			   "ioctl 0 (expected ENOTTY)");
}

static int op_lim_unknown(struct worker *w)
{
	return probe_ioctl(w, kprim_limiter_fd(klim),
			   _IO(KPRIM_IOC_MAGIC, 0x1f), NULL, ENOTTY,
			   "unknown kprim ioctl (expected ENOTTY)");
}

/* A take the kernel refuses at @stage: 0 none (a try-take), 2 the flags
 * (after the whole copy), 4 n above the burst (under the lock, after the
 * clock read). */
static int lim_take_probe(struct worker *w, int stage)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};

	switch (stage) {
	case 2: t.flags = 1; break;
	case 4: t.n = NSEC + 1; break;
	}
	return probe_ioctl(w, kprim_limiter_fd(klim), KPRIM_IOC_LIMITER_TAKE,
			   &t, stage ? EINVAL : 0, "limiter take probe");
}

static int op_lim_raw(struct worker *w) { return lim_take_probe(w, 0); }
static int op_lim_flags(struct worker *w) { return lim_take_probe(w, 2); }
static int op_lim_big(struct worker *w) { return lim_take_probe(w, 4); }

static int op_lim_info(struct worker *w)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };

	return probe_ioctl(w, kprim_limiter_fd(klim), KPRIM_IOC_LIMITER_INFO,
			   &i, 0, "limiter info");
}

/* One semaphore: 1 permit per thread (setup_ksem). */
static int sem_acquire_probe(struct worker *w, int stage)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = 1,
		.wait = { .cancel_fd = KPRIM_NO_CANCEL_FD },
	};

	switch (stage) {
	case 2: a.flags = 1; break;
	case 4: a.n = (uint64_t)UINT32_MAX + 1; break;	/* > permits */
	}
	return probe_ioctl(w, kprim_sem_fd(ksem), KPRIM_IOC_SEM_ACQUIRE, &a,
			   stage ? EINVAL : 0, "sem acquire probe");
}

static int sem_release_probe(struct worker *w, uint64_t n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return probe_ioctl(w, kprim_sem_fd(ksem), KPRIM_IOC_SEM_RELEASE, &r,
			   n ? 0 : EINVAL, "sem release probe");
}

static int op_sem_raw(struct worker *w)
{
	int ret = sem_acquire_probe(w, 0);

	return ret < 0 ? ret : sem_release_probe(w, 1);
}

static int op_sem_flags(struct worker *w) { return sem_acquire_probe(w, 2); }
static int op_sem_big(struct worker *w) { return sem_acquire_probe(w, 4); }
static int op_sem_rel0(struct worker *w) { return sem_release_probe(w, 0); }

/* A get refused at @stage: 0 none (a hit), 2 the flags (after the copy),
 * 5 an absent key (key copied, clock read, looked up), 6 a hit with a
 * 1-byte buffer (looked up, referenced, the header copied back). */
static int cache_get_probe(struct worker *w, int stage)
{
	static const char absent[] = "bench:absent:key";
	char buf[64];
	struct kprim_cache_get g = {
		.size = sizeof(g),
		.key = (uintptr_t)w->key, .key_len = (uint32_t)w->klen,
		.value = (uintptr_t)buf, .value_len = sizeof(buf),
	};
	int want = 0;

	switch (stage) {
	case 2: g.flags = 1; want = EINVAL; break;
	case 5:
		/* The same length as the bench keys: the same key copy. */
		g.key = (uintptr_t)absent;
		g.key_len = (uint32_t)(w->klen < sizeof(absent) - 1 ?
				       w->klen : sizeof(absent) - 1);
		want = ENOENT;
		break;
	case 6: g.value_len = 1; want = EMSGSIZE; break;
	}
	return probe_ioctl(w, kprim_cache_fd(kcache), KPRIM_IOC_CACHE_GET, &g,
			   want, "cache get probe");
}

static int op_cache_raw(struct worker *w) { return cache_get_probe(w, 0); }
static int op_cache_flags(struct worker *w) { return cache_get_probe(w, 2); }
static int op_cache_miss(struct worker *w) { return cache_get_probe(w, 5); }
static int op_cache_small(struct worker *w) { return cache_get_probe(w, 6); }

/*
 * CASE(id, label, setup, teardown, thread_init, thread_fini, op); the
 * batched rows set .batched on top.
 */
#define CASE(i, l, s, td, ti, tf, o) \
	.id = (i), .label = (l), .setup = (s), .teardown = (td), \
	.thread_init = (ti), .thread_fini = (tf), .op = (o)
#define EXTERNAL(i, l, p)	.id = (i), .label = (l), .external = (p)
#define GO_PEER(i, l)		EXTERNAL(i, l, "gobench")
#define DAEMON_PEER(i, l)	EXTERNAL(i, l, "daemonbench")

static const struct bench_case cases[] = {
	{ CASE("floor", "syscall floor: getppid()",
	       NULL, NULL, NULL, NULL, op_getppid) },
	{ CASE("lim-kprim", "limiter: kprim try-take, state page",
	       setup_klim, teardown_klim, NULL, NULL, op_klim) },
	{ CASE("lim-ioctl", "limiter: kprim try-take, ioctl",
	       setup_klim_ioctl, teardown_klim, NULL, NULL, op_klim) },
	{ CASE("lim-uring", "limiter: kprim try-take",
	       setup_klim, teardown_klim, init_klim_uring, fini_ring,
	       op_klim_uring), .batched = "io_uring", .ring = RING_FAST },
	{ CASE("lim-uring-fd", "limiter: kprim try-take",
	       setup_klim, teardown_klim, init_klim_uring, fini_ring,
	       op_klim_uring), .batched = "io_uring" },
	{ CASE("lim-pthread", "limiter: pthread mutex token bucket",
	       setup_tbucket, teardown_tbucket, NULL, NULL, op_tbucket) },
	{ GO_PEER("go-lim", "limiter: Go x/time/rate Allow()") },
	{ GO_PEER("go-kprim-lim", "limiter: kprim via Go, Allow()") },
	{ DAEMON_PEER("redis-incr", "limiter: Redis INCR (fixed window), unix") },
	{ CASE("sem-kprim", "sem pair: kprim try-acquire+release, slot",
	       setup_ksem, teardown_ksem, NULL, NULL, op_ksem) },
	{ CASE("sem-ioctl", "sem pair: kprim try-acquire+release, ioctls",
	       setup_ksem_ioctl, teardown_ksem, NULL, NULL, op_ksem) },
	{ CASE("sem-sysv", "sem pair: SysV semop, SEM_UNDO",
	       setup_sysv, teardown_sysv, NULL, NULL, op_sysv) },
	{ CASE("sem-posix", "sem pair: POSIX named sem_wait+post",
	       setup_posix, teardown_posix, NULL, NULL, op_posix) },
	{ CASE("sem-flock", "lock pair: flock EX+UN, tmpfs file",
	       setup_flock, teardown_flock, init_flock, fini_flock, op_flock) },
	{ CASE("sem-pthread", "sem pair: pthread mutex+condvar",
	       setup_csem, teardown_csem, NULL, NULL, op_csem) },
	{ GO_PEER("go-sem", "sem pair: Go x/sync/semaphore") },
	{ GO_PEER("go-kprim-sem", "sem pair: kprim via Go, TryAcquire") },
	{ CASE("cache-get", "cache: kprim get, hit, 16 B",
	       setup_kcache, teardown_kcache, init_kcache, NULL,
	       op_kcache_get) },
	{ DAEMON_PEER("mc-get", "cache: memcached get, hit, 16 B, unix") },
	{ DAEMON_PEER("redis-get", "cache: Redis GET, hit, 16 B, unix") },
	{ CASE("cache-set", "cache: kprim set, 16 B",
	       setup_kcache, teardown_kcache, init_kcache, NULL,
	       op_kcache_set) },
	{ DAEMON_PEER("mc-set", "cache: memcached set, 16 B, unix") },
	{ DAEMON_PEER("redis-set", "cache: Redis SET, 16 B, unix") },
	{ CASE("cache-uring", "cache: kprim get, hit, 16 B",
	       setup_kcache, teardown_kcache, init_kcache_uring, fini_ring,
	       op_kcache_get_uring), .batched = "io_uring", .ring = RING_FAST },
	{ CASE("cache-uring-fd", "cache: kprim get, hit, 16 B",
	       setup_kcache, teardown_kcache, init_kcache_uring, fini_ring,
	       op_kcache_get_uring), .batched = "io_uring" },
	{ CASE("cache-mget", "cache: kprim get, hit, 16 B",
	       setup_kcache, teardown_kcache, init_kcache_mget,
	       fini_kcache_mget, op_kcache_mget), .batched = "multi-get" },
	{ CASE("cache-uring-mget", "cache: kprim get, hit, 16 B",
	       setup_kcache, teardown_kcache, init_kcache_mget_uring, fini_ring,
	       op_kcache_mget_uring), .batched = "uring MGET",
	  .ring = RING_FAST },
	{ DAEMON_PEER("mc-mget", "cache: memcached get, hit, 16 B, unix"),
	  .batched = "multi-get" },
	{ DAEMON_PEER("redis-pipe", "cache: Redis GET, hit, 16 B, unix"),
	  .batched = "pipelined" },
	{ CASE("chan-kprim", "chan pair: kprim_chan send+recv, cap 64",
	       setup_chan, teardown_chan, NULL, NULL, op_chan) },
	{ CASE("chan-cvq", "chan pair: mutex+condvar queue, cap 64",
	       setup_cvq, teardown_cvq, NULL, NULL, op_cvq) },
	{ GO_PEER("go-chan", "chan pair: Go chan send+recv, cap 64") },
	/*
	 * What the io_uring rows pay before kprim does anything: commands
	 * that do nothing, the ring's options added one at a time.
	 */
	{ CASE("uring-nop", "empty: IORING_OP_NOP",
	       NULL, NULL, init_nop_uring, fini_ring, op_nop_uring),
	  .batched = "io_uring" },
	{ CASE("uring-nop-fast", "empty: IORING_OP_NOP",
	       NULL, NULL, init_nop_uring, fini_ring, op_nop_uring),
	  .batched = "io_uring", .ring = RING_REGFD | RING_DEFER },
	{ CASE("ioctl-enotty", "empty: ioctl(), -ENOTTY",
	       setup_kcache, teardown_kcache, NULL, NULL, op_enotty_ioctl) },
	{ CASE("uring-enotty", "empty: uring_cmd, -ENOTTY",
	       setup_kcache, teardown_kcache, init_enotty_uring, fini_ring,
	       op_enotty_uring), .batched = "io_uring" },
	{ CASE("uring-enotty-fix", "empty: uring_cmd, -ENOTTY",
	       setup_kcache, teardown_kcache, init_enotty_uring, fini_ring,
	       op_enotty_uring), .batched = "io_uring", .ring = RING_FIXED },
	{ CASE("uring-enotty-rfd", "empty: uring_cmd, -ENOTTY",
	       setup_kcache, teardown_kcache, init_enotty_uring, fini_ring,
	       op_enotty_uring), .batched = "io_uring",
	  .ring = RING_FIXED | RING_REGFD },
	{ CASE("uring-enotty-fast", "empty: uring_cmd, -ENOTTY",
	       setup_kcache, teardown_kcache, init_enotty_uring, fini_ring,
	       op_enotty_uring), .batched = "io_uring", .ring = RING_FAST },
	{ CASE("uring-enotty-128", "empty: uring_cmd, -ENOTTY",
	       setup_kcache, teardown_kcache, init_enotty_uring, fini_ring,
	       op_enotty_uring), .batched = "io_uring",
	  .ring = RING_FAST | RING_SQE128 },
	/* The breakdown probes (above): -I or -o only. */
#define PROBE(i, l, s, td, ti, o) { CASE(i, l, s, td, ti, NULL, o), .probe = true }
	PROBE("p-clock", "probe: clock_gettime() syscall",
	      NULL, NULL, NULL, op_clock_syscall),
	PROBE("p-lim-enotty", "probe: limiter fd, ioctl 0, -ENOTTY",
	      setup_klim_ioctl, teardown_klim, NULL, op_lim_enotty),
	PROBE("p-lim-unknown", "probe: limiter fd, unknown kprim ioctl",
	      setup_klim_ioctl, teardown_klim, NULL, op_lim_unknown),
	PROBE("p-lim-flags", "probe: take, flags 1, -EINVAL",
	      setup_klim_ioctl, teardown_klim, NULL, op_lim_flags),
	PROBE("p-lim-big", "probe: take, n > burst, -EINVAL",
	      setup_klim_ioctl, teardown_klim, NULL, op_lim_big),
	PROBE("p-lim-raw", "probe: try-take, raw ioctl",
	      setup_klim_ioctl, teardown_klim, NULL, op_lim_raw),
	PROBE("p-lim-info", "probe: limiter info, raw ioctl",
	      setup_klim_ioctl, teardown_klim, NULL, op_lim_info),
	PROBE("p-sem-flags", "probe: acquire, flags 1, -EINVAL",
	      setup_ksem_ioctl, teardown_ksem, NULL, op_sem_flags),
	PROBE("p-sem-big", "probe: acquire, n > permits, -EINVAL",
	      setup_ksem_ioctl, teardown_ksem, NULL, op_sem_big),
	PROBE("p-sem-rel0", "probe: release, n 0, -EINVAL",
	      setup_ksem_ioctl, teardown_ksem, NULL, op_sem_rel0),
	PROBE("p-sem-raw", "probe: try-acquire+release, raw ioctls",
	      setup_ksem_ioctl, teardown_ksem, NULL, op_sem_raw),
	PROBE("p-cache-flags", "probe: get, flags 1, -EINVAL",
	      setup_kcache, teardown_kcache, init_kcache, op_cache_flags),
	PROBE("p-cache-miss", "probe: get, absent key, -ENOENT",
	      setup_kcache, teardown_kcache, init_kcache, op_cache_miss),
	PROBE("p-cache-small", "probe: get, hit, 1-byte buffer, -EMSGSIZE",
	      setup_kcache, teardown_kcache, init_kcache, op_cache_small),
	PROBE("p-cache-raw", "probe: get, hit, 16 B, raw ioctl",
	      setup_kcache, teardown_kcache, init_kcache, op_cache_raw),
#undef PROBE
};
#define NCASES	((int)(sizeof(cases) / sizeof(cases[0])))
#define MAX_CASES	64
_Static_assert(NCASES <= MAX_CASES, "results[] holds MAX_CASES rows");

/* Rows compared in the ratio table: a / b, below 1 = a is cheaper. */
static const struct {
	const char *a, *b, *label;
} ratios[] = {
	{ "lim-kprim", "lim-pthread", "kprim limiter / pthread token bucket" },
	{ "sem-kprim", "sem-sysv", "kprim sem pair / SysV semop pair" },
	{ "sem-kprim", "sem-ioctl", "kprim sem pair: slot / ioctls" },
	{ "sem-kprim", "sem-posix", "kprim sem pair / POSIX sem pair" },
	{ "sem-kprim", "sem-flock", "kprim sem pair / flock pair" },
	{ "sem-kprim", "sem-pthread", "kprim sem pair / pthread condvar sem" },
	{ "cache-uring", "cache-get", "kprim cache get: io_uring / ioctl" },
	{ "cache-uring", "cache-uring-fd",
	  "kprim cache get, io_uring: +fix+rfd+dt / plain fd" },
	{ "cache-mget", "cache-get", "kprim cache get: multi-get / ioctl" },
	{ "lim-kprim", "lim-ioctl", "kprim limiter take: state page / ioctl" },
	{ "lim-uring", "lim-ioctl", "kprim limiter take: io_uring / ioctl" },
	{ "lim-uring", "lim-uring-fd",
	  "kprim limiter take, io_uring: +fix+rfd+dt / plain fd" },
	{ "chan-kprim", "chan-cvq", "kprim_chan pair / mutex+condvar queue" },
	{ "lim-kprim", "go-lim", "kprim limiter / Go x/time/rate" },
	{ "sem-kprim", "go-sem", "kprim sem pair / Go x/sync/semaphore" },
	{ "chan-kprim", "go-chan", "kprim_chan pair / Go chan pair" },
	{ "go-kprim-lim", "lim-kprim", "kprim limiter: via Go / from C" },
	{ "go-kprim-sem", "sem-kprim", "kprim sem pair: via Go / from C" },
	{ "cache-get", "mc-get", "kprim cache get / memcached get" },
	{ "cache-get", "redis-get", "kprim cache get / Redis GET" },
	{ "cache-uring", "mc-mget", "kprim get, io_uring / memcached multi-get" },
	{ "cache-mget", "mc-mget", "kprim multi-get / memcached multi-get" },
	{ "cache-uring-mget", "mc-mget",
	  "kprim multi-get in 1 uring_cmd / memcached multi-get" },
	{ "cache-uring", "redis-pipe", "kprim get, io_uring / Redis pipelined GET" },
	{ "cache-set", "mc-set", "kprim cache set / memcached set" },
	{ "cache-set", "redis-set", "kprim cache set / Redis SET" },
	{ "lim-kprim", "redis-incr", "kprim limiter / Redis INCR" },
};
#define NRATIOS	((int)(sizeof(ratios) / sizeof(ratios[0])))

/*
 * The breakdown (-I): each stage is row a minus row b (b NULL: row a), at
 * 1 thread. A stage runs from b's exit to a's (see the probes above).
 */
static const struct {
	const char *op, *stage, *a, *b;
} stages[] = {
	{ "limiter try-take", "syscall entry+exit (getppid)", "floor", NULL },
	{ NULL, "fd lookup, LSM hook, VFS ioctl switch", "p-lim-enotty", "floor" },
	{ NULL, "kprim dispatch (object, kind, command)", "p-lim-unknown",
	  "p-lim-enotty" },
	{ NULL, "argument copy, flag checks", "p-lim-flags", "p-lim-unknown" },
	{ NULL, "lock, clock read, burst check, unlock", "p-lim-big",
	  "p-lim-flags" },
	{ NULL, "  of which a clock read, at most", "p-clock", "floor" },
	{ NULL, "the work: refill, take, statistics", "p-lim-raw",
	  "p-lim-big" },
	{ NULL, "copy out (none on success)", NULL, NULL },
	{ NULL, "libkprim wrapper", "lim-ioctl", "p-lim-raw" },
	{ NULL, "total", "lim-ioctl", NULL },
	{ "sem try-acquire+release pair", "2 x syscall entry+exit", "floor", NULL },
	{ NULL, "2 x fd lookup, LSM, VFS switch, kprim dispatch",
	  "p-lim-unknown", "floor" },
	{ NULL, "acquire: argument copy, flag checks", "p-sem-flags",
	  "p-lim-unknown" },
	{ NULL, "acquire: lock, checks, unlock", "p-sem-big",
	  "p-sem-flags" },
	{ NULL, "release: argument copy, lock, checks, unlock",
	  "p-sem-rel0", "p-lim-unknown" },
	{ NULL, "the work: take, put, grant pass, statistics, pollers",
	  "p-sem-raw", "p-sem-big+p-sem-rel0" },
	{ NULL, "libkprim wrappers", "sem-ioctl", "p-sem-raw" },
	{ NULL, "total", "sem-ioctl", NULL },
	{ "cache get, 16 B hit", "syscall entry+exit (getppid)", "floor", NULL },
	{ NULL, "fd lookup, LSM, VFS switch, kprim dispatch",
	  "p-lim-unknown", "floor" },
	{ NULL, "argument copy, flag checks", "p-cache-flags",
	  "p-lim-unknown" },
	{ NULL, "key copy, hash lookup (miss), counter",
	  "p-cache-miss", "p-cache-flags" },
	{ NULL, "a hit: key compare, counter, header copy out",
	  "p-cache-small", "p-cache-miss" },
	{ NULL, "value copy out, ttl", "p-cache-raw", "p-cache-small" },
	{ NULL, "libkprim wrapper", "cache-get", "p-cache-raw" },
	{ NULL, "total", "cache-get", NULL },
};
#define NSTAGES	((int)(sizeof(stages) / sizeof(stages[0])))

/* ------------------------------------------------------------------------
 * Running a case: all threads start together, run the operation through
 * the warm-up, then count it until told to stop.
 */

struct result {
	bool ran;
	int err;		/* 0, or the -errno of a failure */
	const char *err_what;
	bool setup_failed;
	double ns_per_op;	/* wall time one thread spends per operation */
	double mops;		/* all threads together */
};

static int worker_step(void *arg)
{
	return cur->op(arg);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int ret = 0;

	if (cur->thread_init) {
		ret = cur->thread_init(w);
		if (ret) {
			w->err = ret;
			w->init_failed = true;
		}
	}
	ret = bench_measure(ret ? NULL : worker_step, w, &w->ops, &w->ns);
	if (ret && !w->err)
		w->err = ret;
	if (cur->thread_fini)
		cur->thread_fini(w);
	return NULL;
}

static void run_case(const struct bench_case *c, int nthreads, struct result *r)
{
	static struct worker workers[MAX_THREADS];
	double rate = 0;
	int i, ret;

	memset(r, 0, sizeof(*r));
	r->ran = true;
	setup_what = NULL;
	ret = c->setup ? c->setup(nthreads) : 0;
	if (ret) {
		r->err = ret;
		r->err_what = setup_what;
		r->setup_failed = true;
		if (c->teardown)
			c->teardown();
		return;
	}
	cur = c;
	for (i = 0; i < nthreads; i++)
		workers[i] = (struct worker){ .idx = i, .fd = -1 };
	bench_run(nthreads, worker_main, workers, sizeof(workers[0]),
		  opt_warm, opt_secs);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &workers[i];

		if (w->err && !r->err) {
			r->err = w->err;
			r->err_what = w->err_what;
			r->setup_failed = w->init_failed;
		}
		if (w->ns && w->ops)
			rate += (double)w->ops * 1e9 / (double)w->ns;
	}
	if (c->teardown)
		c->teardown();
	/* Summing per-thread rates keeps each thread's own clock window. */
	r->mops = rate / 1e6;
	r->ns_per_op = rate > 0 ? (double)nthreads * 1e9 / rate : 0;
}

/* ------------------------------------------------------------------------
 * Output.
 */

static struct result results[MAX_COUNTS][MAX_CASES];

static int case_index(const char *id)
{
	int i;

	for (i = 0; i < NCASES; i++)
		if (!strcmp(cases[i].id, id))
			return i;
	return -1;
}

/*
 * -o: whether case @id is to run. The list holds ids or fnmatch() patterns
 * separated by ',' or ':' (':' survives the test VM's kprim.env, which
 * splits on commas). The floor always runs: every row is read against it.
 */
static bool selected(const char *id)
{
	const char *p = opt_only, *end;
	char pat[64];
	size_t n;

	if (!p || !strcmp(id, "floor"))
		return true;
	while (*p) {
		end = p + strcspn(p, ",:");
		n = (size_t)(end - p);
		if (n && n < sizeof(pat)) {
			memcpy(pat, p, n);
			pat[n] = '\0';
			if (!fnmatch(pat, id, 0))
				return true;
		}
		p = *end ? end + 1 : end;
	}
	return false;
}

/*
 * A -x program's rows: run it with this run's time, warm-up, batch and
 * thread counts and take its "CASE THREADS NS_PER_OP" lines. When it is not
 * there its rows stay unmeasured and are left out of the tables; when it
 * runs but gives no number for one of its rows, that row says so (and the
 * exit status is 1).
 */
static bool run_external(const char *path, int ncounts, const int *counts)
{
	static char missing[MAX_EXTERN][128];
	static int nmissing;
	const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char cmd[4096], line[256], id[32], *why = missing[nmissing++];
	size_t len;
	FILE *f;
	double ns;
	int i, t, n;
	bool ok = true;

	if (access(path, X_OK))
		return true;
	for (i = 0; i < NCASES; i++)
		if (cases[i].external && !strcmp(cases[i].external, name) &&
		    selected(cases[i].id))
			break;
	if (i == NCASES)	/* none of its rows asked for */
		return true;
	len = (size_t)snprintf(cmd, sizeof(cmd), "'%s' -t %g -w %g -b %d -T",
			       path, opt_secs, opt_warm, opt_batch);
	for (t = 0; t < ncounts && len < sizeof(cmd); t++)
		len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%c%d",
					t ? ',' : ' ', counts[t]);
	fflush(stdout);
	f = len < sizeof(cmd) && !strchr(path, '\'') ? popen(cmd, "r") : NULL;
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%31s %d %lf", id, &n, &ns) != 3 ||
			    ns <= 0)
				continue;
			i = case_index(id);
			for (t = 0; t < ncounts && counts[t] != n; t++)
				;
			if (i < 0 || !cases[i].external || t == ncounts ||
			    strcmp(cases[i].external, name) ||
			    !selected(cases[i].id))
				continue;
			results[t][i] = (struct result){
				.ran = true, .ns_per_op = ns,
				.mops = n * 1e3 / ns,	/* all threads */
			};
		}
		pclose(f);
	}
	snprintf(why, sizeof(missing[0]), "no result from %s", path);
	for (t = 0; t < ncounts; t++) {
		for (i = 0; i < NCASES; i++) {
			struct result *r = &results[t][i];

			if (!cases[i].external || r->ran ||
			    strcmp(cases[i].external, name) ||
			    !selected(cases[i].id))
				continue;
			*r = (struct result){
				.ran = true, .err = -ENODATA,
				.err_what = why, .setup_failed = true,
			};
			ok = false;
		}
	}
	return ok;
}

static const char *case_label(const struct bench_case *c)
{
	static char buf[128];

	if (!c->batched)
		return c->label;
	snprintf(buf, sizeof(buf), "%s, %s x%d%s%s%s%s", c->label, c->batched,
		 opt_batch, c->ring & RING_FIXED ? " +fix" : "",
		 c->ring & RING_REGFD ? " +rfd" : "",
		 c->ring & RING_DEFER ? " +dt" : "",
		 c->ring & RING_SQE128 ? " +128" : "");
	return buf;
}


static bool usable(const struct result *r)
{
	return r->ran && !r->err && r->ns_per_op > 0;
}

static void print_table(int ti, int nthreads, const struct result *one)
{
	const struct result *row = results[ti];
	const struct result *floor = &row[case_index("floor")];
	int i;

	printf("\n%d thread%s%s\n", nthreads, nthreads == 1 ? "" : "s",
	       opt_insn ? ", instructions" : "");
	printf("%-60s %10s %9s %8s%s\n", "operation",
	       opt_insn ? "insn/op" : "ns/op", opt_insn ? "" : "Mops/s",
	       "x floor", one ? "   scale" : "");
	for (i = 0; i < NCASES; i++) {
		const struct result *r = &row[i];

		if (!r->ran)	/* an external row, no -x program */
			continue;
		printf("%-60s ", case_label(&cases[i]));
		if (r->err) {
			printf("%s: %s: %s\n",
			       r->setup_failed ? "SETUP FAILED" : "FAILED",
			       r->err_what ? r->err_what : "?",
			       strerror(-r->err));
			continue;
		}
		if (opt_insn)
			printf("%10.0f %9s", r->ns_per_op, "");
		else
			printf("%10.1f %9.3f", r->ns_per_op, r->mops);
		if (usable(floor))
			printf(" %8.2f", r->ns_per_op / floor->ns_per_op);
		else
			printf(" %8s", "-");
		if (one && usable(&one[i]))
			printf(" %7.2f", r->mops / one[i].mops);
		printf("\n");
	}
}

static void print_ratios(int ncounts, const int *counts)
{
	int i, t;

	printf("\nkprim vs peers: %s ratio at each thread count "
	       "(below 1 = kprim is cheaper)\n", opt_insn ? "insn/op" : "ns/op");
	printf("%-60s", "comparison");
	for (t = 0; t < ncounts; t++)
		printf(" %7d thr", counts[t]);
	printf("\n");
	for (i = 0; i < NRATIOS; i++) {
		int a = case_index(ratios[i].a), b = case_index(ratios[i].b);

		if (!results[0][a].ran || !results[0][b].ran)
			continue;
		printf("%-60s", ratios[i].label);
		for (t = 0; t < ncounts; t++) {
			const struct result *ra = &results[t][a];
			const struct result *rb = &results[t][b];

			if (usable(ra) && usable(rb))
				printf(" %11.2f", ra->ns_per_op / rb->ns_per_op);
			else
				printf(" %11s", "-");
		}
		printf("\n");
	}
}

/* Row @id's 1-thread figure; "a+b" sums rows. Negative: not measured. */
static double row_value(const char *id)
{
	char one[32];
	const char *plus = strchr(id, '+');
	int i;

	if (plus) {
		double a, b;

		snprintf(one, sizeof(one), "%.*s", (int)(plus - id), id);
		a = row_value(one);
		b = row_value(plus + 1);
		return a < 0 || b < 0 ? -1 : a + b;
	}
	i = case_index(id);
	return i >= 0 && usable(&results[0][i]) ? results[0][i].ns_per_op : -1;
}

/* -I at 1 thread: where each operation's instructions go (stages[]). */
static void print_breakdown(void)
{
	int i;

	printf("\nwhere the instructions go, 1 thread (probe differences; "
	       "see kprim-bench.c)\n");
	for (i = 0; i < NSTAGES; i++) {
		double a = stages[i].a ? row_value(stages[i].a) : 0;
		double b = stages[i].b ? row_value(stages[i].b) : 0;

		if (stages[i].op)
			printf("%s\n", stages[i].op);
		printf("  %-58s", stages[i].stage);
		if (!strncmp(stages[i].stage, "2 x", 3) && stages[i].a)
			a *= 2, b *= 2;
		if (!stages[i].a)
			printf(" %10d\n", 0);
		else if (a < 0 || b < 0)
			printf(" %10s\n", "-");
		else
			printf(" %10.0f\n", a - b);
	}
}

/* ------------------------------------------------------------------------ */

static int usage(void)
{
	int i;

	fprintf(stderr,
		"usage: %s [-t SECONDS] [-w SECONDS] [-T THREADS,...] [-b BATCH]"
		" [-o CASES] [-x PROG]...\n"
		"  -t  measured time per case (default 0.3)\n"
		"  -w  warm-up per case (default 0.05)\n"
		"  -T  thread counts (default: $KPRIM_BENCH_THREADS, else 1,\n"
		"      online CPUs, 4; ':' separates too)\n"
		"  -b  commands per io_uring_enter, keys per multi-get, in the\n"
		"      batched rows (default 32)\n"
		"  -o  only these cases (default: $KPRIM_BENCH_ONLY, else all):\n"
		"      ids or fnmatch patterns separated by ',' or ':', e.g.\n"
		"      'cache-*:mc-mget'; the floor (getppid) always runs\n"
		"  -x  after these cases, run PROG for more rows (tools/gobench,\n"
		"      tools/daemonbench); up to 4 times\n"
		"  -I  the guest counts instructions (QEMU -icount shift=0, one\n"
		"      vCPU; also $KPRIM_BENCH_INSN=1): rows in instructions per\n"
		"      operation, the probes (p-*) run, the breakdown is printed\n"
		"io_uring rows: +fix the object's fd registered (IOSQE_FIXED_FILE),\n"
		"+rfd the ring fd registered, +dt SINGLE_ISSUER|DEFER_TASKRUN|\n"
		"COOP_TASKRUN, +128 128-byte SQEs.\n"
		"case ids:",
		prog);
	for (i = 0; i < NCASES; i++)
		fprintf(stderr, "%s%s", i % 6 ? " " : "\n  ", cases[i].id);
	fprintf(stderr, "\n");
	return 2;
}

static int add_count(int *counts, int n, int c)
{
	int i;

	if (c < 1 || c > MAX_THREADS || n >= MAX_COUNTS)
		return n;
	for (i = 0; i < n; i++)
		if (counts[i] == c)
			return n;
	/* Keep the list sorted: the first entry is the 1-thread baseline. */
	for (i = n; i > 0 && counts[i - 1] > c; i--)
		counts[i] = counts[i - 1];
	counts[i] = c;
	return n + 1;
}

int main(int argc, char **argv)
{
	int counts[MAX_COUNTS], ncounts = 0, ncpu, opt, i, t, ret;
	const char *tlist = getenv("KPRIM_BENCH_THREADS");
	struct utsname uts;
	bool setup_failed = false;

	opt_only = getenv("KPRIM_BENCH_ONLY");
	opt_insn = getenv("KPRIM_BENCH_INSN") && *getenv("KPRIM_BENCH_INSN") &&
		   strcmp(getenv("KPRIM_BENCH_INSN"), "0");
	if (tlist && !*tlist)
		tlist = NULL;
	if (opt_only && !*opt_only)
		opt_only = NULL;
	while ((opt = getopt(argc, argv, "t:w:T:b:o:x:Ih")) != -1) {
		switch (opt) {
		case 't':
			opt_secs = atof(optarg);
			break;
		case 'w':
			opt_warm = atof(optarg);
			break;
		case 'T':
			tlist = optarg;
			break;
		case 'b':
			opt_batch = atoi(optarg);
			break;
		case 'o':
			opt_only = optarg;
			break;
		case 'I':
			opt_insn = true;
			break;
		case 'x':
			if (n_extern == MAX_EXTERN)
				return usage();
			opt_extern[n_extern++] = optarg;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || opt_secs <= 0 || opt_warm < 0 ||
	    opt_batch < 1 || opt_batch > MAX_BATCH)
		return usage();

	ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (ncpu < 1)
		ncpu = 1;
	if (tlist) {
		char *copy = strdup(tlist), *tok, *save = NULL;

		for (tok = strtok_r(copy, ",:", &save); tok;
		     tok = strtok_r(NULL, ",:", &save))
			ncounts = add_count(counts, ncounts, atoi(tok));
		free(copy);
		if (!ncounts)
			return usage();
	} else {
		ncounts = add_count(counts, ncounts, 1);
		ncounts = add_count(counts, ncounts, ncpu);
		ncounts = add_count(counts, ncounts, 4);
	}

	ret = kprim_open(&ksess);
	if (ret == -ENODEV) {
		fprintf(stderr, "%s: /dev/kprim not found: load the module first "
			"(insmod kprim.ko)\n", prog);
		return 1;
	}
	if (ret) {
		fprintf(stderr, "%s: kprim_open: %s\n", prog, strerror(-ret));
		return 1;
	}

	uname(&uts);
	printf("kprim-bench: Linux %s, %d online CPU%s, %.2f s per case after "
	       "%.2f s warm-up\n", uts.release, ncpu, ncpu == 1 ? "" : "s",
	       opt_secs, opt_warm);
	printf("ns/op: wall time one thread spends per operation (a pair counts "
	       "as one);\nMops/s: all threads together; x floor: ns/op over "
	       "getppid()'s at the same thread count;\nscale: Mops/s over the "
	       "1-thread Mops/s. All threads share one object.\nio_uring rows: "
	       "+fix registered object fd (IOSQE_FIXED_FILE), +rfd registered "
	       "ring fd,\n+dt SINGLE_ISSUER|DEFER_TASKRUN|COOP_TASKRUN, +128 "
	       "128-byte SQEs; none: plain fd.\n");
	if (opt_insn)
		printf("-I: the guest counts instructions (QEMU -icount shift=0, "
		       "one vCPU), so\nns/op reads as instructions per operation, "
		       "the same on every run.\n");
	fflush(stdout);

	/* Every case first, then the -x program's, then the tables. */
	for (t = 0; t < ncounts; t++) {
		for (i = 0; i < NCASES; i++) {
			if (cases[i].external || !selected(cases[i].id) ||
			    (cases[i].probe && !opt_insn && !opt_only))
				continue;
			run_case(&cases[i], counts[t], &results[t][i]);
			setup_failed |= results[t][i].setup_failed;
		}
	}
	for (i = 0; i < n_extern; i++)
		if (!run_external(opt_extern[i], ncounts, counts))
			setup_failed = true;
	for (t = 0; t < ncounts; t++)
		print_table(t, counts[t], t && counts[0] == 1 ? results[0] : NULL);
	print_ratios(ncounts, counts);
	if (opt_insn && counts[0] == 1)
		print_breakdown();
	kprim_close(ksess);
	return setup_failed ? 1 : 0;
}
