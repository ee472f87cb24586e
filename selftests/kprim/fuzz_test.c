// SPDX-License-Identifier: GPL-2.0
/*
 * ABI fuzzing: several processes and threads throw mutated ioctls at
 * /dev/kprim and at every kind of object fd for a few seconds, while
 * timers interrupt blocking calls and processes die holding permits.
 *
 * Each call starts from a valid argument for its command and then has a
 * few fields overwritten with values known to sit on edges (0, 1, all
 * ones, sizes around the struct's, bad and kernel pointers), or is sent
 * with the wrong fd, a bad argument pointer, or an unknown command. A
 * quarter of the calls go through io_uring (IORING_OP_URING_CMD) instead
 * of ioctl(); some of those are still queued (io_uring waits) when their
 * process is killed, and KPRIM_IOC_WAIT_CANCEL is thrown at them too. Between them, poll() and fdinfo reads on
 * the same fds (their failures are shown, not judged: see side_op()).
 *
 * What must hold:
 *   - every call returns a result or one of the errnos the ABI documents
 *     (an errno outside that set is a bug in an error path);
 *   - the processes really ran (a minimum number of calls each);
 *   - afterwards, with every fuzzing process dead: no semaphore has a
 *     holder or a waiter, no limiter a waiter, every cache is within its
 *     limits; every object the fuzzers named can be unlinked, and the
 *     list is back to what it was;
 *   - the kernel log stays clean (judged by make check: KASAN, lockdep,
 *     UBSAN, kmemleak after rmmod).
 *
 * KPRIM_FUZZ_SEED=N repeats a run; the seed is printed. KPRIM_FUZZ_SECS
 * sets the duration (default 8 s).
 */
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <pthread.h>
#include <liburing.h>

#include "kselftest_harness.h"
#include "kprim_test.h"

#define PROCS		3
#define THREADS		2	/* per process */
#define MIN_CALLS	200	/* per process, or the fuzzer did not run */
#define POOL		12	/* object fds a process keeps */
#define MAX_UNEXPECTED	8

/* What the fuzzing processes report, in shared memory. */
struct fuzz_report {
	_Atomic unsigned long calls[PROCS];
	_Atomic unsigned long ok[PROCS];
	_Atomic unsigned long uring[PROCS];	/* completions via io_uring */
	_Atomic unsigned long side_failed;	/* poll/fdinfo calls that failed */
	int side_first_op, side_first_err;
	char side_first_file[64];	/* what the fd was then */
	_Atomic unsigned int unexpected;
	struct {
		unsigned int cmd;
		int err;
	} first[MAX_UNEXPECTED];
};

static struct fuzz_report *report;
static int proc_idx;

/* Everything the ABI may answer with (kmod/uapi/kprim.h, fcntl, ioctl). */
static bool documented_errno(int e)
{
	switch (e) {
	case EINVAL: case EFAULT: case E2BIG: case ENOTTY: case EBADF:
	case EAGAIN: case ETIMEDOUT: case ECANCELED: case EINTR:
	case ENOENT: case EEXIST: case EACCES: case EPERM: case EDQUOT:
	case ENOSPC: case EMSGSIZE: case ENAMETOOLONG: case ESTALE:
	case ENOMEM: case EOVERFLOW: case EOPNOTSUPP: case EMFILE:
	case EBUSY:
		return true;
	}
	return false;
}

/* xorshift64*: cheap, and a seed repeats a run. */
static __thread uint64_t rng;

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

/* Memory the arguments point into. */
static unsigned char *page_rw;		/* a page we own */
static unsigned char *page_ro;		/* read-only */
static unsigned char *page_none;	/* PROT_NONE, right after page_rw */
static long pagesz;

static uint64_t interesting(size_t struct_size)
{
	switch (below(16)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return ~0ull;
	case 3: return 0xffffffffull;
	case 4: return 0x7fffffffull;
	case 5: return 1ull << 63;
	case 6: return struct_size + below(17) - 8;	/* sizes near ours */
	case 7: return below(4096);
	case 8: return (uintptr_t)page_none;		/* unmapped */
	case 9: return (uintptr_t)page_ro;		/* read-only */
	case 10: return (uintptr_t)(page_rw + pagesz - below(8) - 1);
	case 11: return 0xffff888000000000ull;		/* kernel memory */
	case 12: return (uintptr_t)page_rw;
	case 13: return 1000000000ull * below(3);	/* 0..2 s in ns */
	case 14: return below(300);			/* name/key sizes */
	default: return rnd();
	}
}

/* Overwrite one aligned 4- or 8-byte field of @arg. */
static void mutate(void *arg, size_t size)
{
	uint64_t v = interesting(size);
	size_t off;

	if (below(2)) {
		off = below(size / 4) * 4;
		memcpy((char *)arg + off, &(uint32_t){ (uint32_t)v }, 4);
	} else {
		off = below(size / 8) * 8;
		memcpy((char *)arg + off, &v, 8);
	}
}

struct fuzz_ctx {
	int sess;
	int efd;			/* an eventfd: the wrong kind of fd */
	_Atomic int pool[POOL];		/* object fds, -1 when empty */
};

static const unsigned int object_cmds[] = {
	KPRIM_IOC_LIMITER_TAKE, KPRIM_IOC_LIMITER_SET, KPRIM_IOC_LIMITER_INFO,
	KPRIM_IOC_SEM_ACQUIRE, KPRIM_IOC_SEM_RELEASE, KPRIM_IOC_SEM_RESIZE,
	KPRIM_IOC_SEM_INFO,
	KPRIM_IOC_CACHE_GET, KPRIM_IOC_CACHE_STORE, KPRIM_IOC_CACHE_DELETE,
	KPRIM_IOC_CACHE_TOUCH, KPRIM_IOC_CACHE_INCR, KPRIM_IOC_CACHE_FLUSH,
	KPRIM_IOC_CACHE_INFO, KPRIM_IOC_CACHE_MGET, KPRIM_IOC_WAIT_CANCEL,
};

static const unsigned int session_cmds[] = {
	KPRIM_IOC_API, KPRIM_IOC_OPEN, KPRIM_IOC_UNLINK, KPRIM_IOC_LIST,
};

/* A small name space, so that processes meet on the same objects. */
static const char *const names[] = { "fz-a", "fz-b", "fz-c", "fz-d" };

/* A valid argument for @cmd in @buf (zeroed, at least 256 bytes). */
static size_t valid_arg(unsigned int cmd, void *buf, int cancel_fd)
{
	size_t size = _IOC_SIZE(cmd);
	unsigned char *scratch = page_rw + 2048;	/* names, keys, values */
	struct kprim_hdr *h = buf;

	memcpy(scratch, names[below(4)], 5);
	h->size = (uint32_t)size;
	switch (cmd) {
	case KPRIM_IOC_OPEN: {
		struct kprim_open *a = buf;

		a->flags = (uint32_t)below(KPRIM_OPEN_FLAGS + 1);
		a->kind = (uint32_t)below(3) + KPRIM_KIND_LIMITER;
		a->mode = 0600;
		if (below(3)) {
			a->name = (uintptr_t)scratch;
			a->name_len = 4;
		}
		if (a->kind == KPRIM_KIND_LIMITER) {
			a->limiter.rate = 1 + below(1000);
			a->limiter.period_ns = 1000000;
			a->limiter.burst = 1 + below(100);
		} else if (a->kind == KPRIM_KIND_SEM) {
			a->sem.permits = 1 + below(8);
		} else {
			a->cache.max_bytes = 4096 + below(65536);
			a->cache.max_entries = 1 + below(64);
			a->cache.max_value = 1 + below(2048);
			a->cache.default_ttl_ns = below(2) * 1000000 * below(50);
		}
		break;
	}
	case KPRIM_IOC_UNLINK: {
		struct kprim_unlink *a = buf;

		a->kind = (uint32_t)below(3) + KPRIM_KIND_LIMITER;
		a->name = (uintptr_t)scratch;
		a->name_len = 4;
		break;
	}
	case KPRIM_IOC_LIST: {
		struct kprim_list *a = buf;

		a->buf = (uintptr_t)page_rw;
		a->entry_size = sizeof(struct kprim_obj_info);
		a->count = (uint32_t)below(1024 / sizeof(struct kprim_obj_info) + 1);
		break;
	}
	case KPRIM_IOC_LIMITER_TAKE: {
		struct kprim_limiter_take *a = buf;

		a->n = 1 + below(4);
		a->wait = kt_wait(below(3) * 1000000 * below(20), cancel_fd);
		break;
	}
	case KPRIM_IOC_LIMITER_SET: {
		struct kprim_limiter_set *a = buf;

		a->flags = (uint32_t)below(4);
		a->params.rate = 1 + below(1000);
		a->params.period_ns = 1 + below(1000000000);
		a->params.burst = 1 + below(100);
		break;
	}
	case KPRIM_IOC_SEM_ACQUIRE: {
		struct kprim_sem_acquire *a = buf;

		a->n = 1 + below(3);
		a->wait = kt_wait(below(3) * 1000000 * below(20), cancel_fd);
		break;
	}
	case KPRIM_IOC_SEM_RELEASE:
	case KPRIM_IOC_SEM_RESIZE: {
		struct kprim_sem_release *a = buf;

		a->n = 1 + below(8);
		break;
	}
	case KPRIM_IOC_CACHE_GET:
	case KPRIM_IOC_CACHE_STORE:
	case KPRIM_IOC_CACHE_DELETE:
	case KPRIM_IOC_CACHE_TOUCH:
	case KPRIM_IOC_CACHE_INCR: {
		/* key, key_len and (GET/STORE) value, value_len line up. */
		struct kprim_cache_store *a = buf;

		a->key = (uintptr_t)scratch;
		a->key_len = 1 + (uint32_t)below(4);
		if (cmd == KPRIM_IOC_CACHE_STORE) {
			a->op = (uint32_t)below(4);
			a->value = (uintptr_t)(scratch + 16);
			a->value_len = below(512);
			a->flags = (uint32_t)below(2);
			a->ttl_ns = 1000000 * below(50);
		} else if (cmd == KPRIM_IOC_CACHE_GET) {
			a->value = (uintptr_t)(scratch + 16);
			a->value_len = below(1024);
		} else if (cmd == KPRIM_IOC_CACHE_INCR) {
			struct kprim_cache_incr *in = buf;

			in->flags = (uint32_t)below(4);
			in->delta = below(1000);
		}
		break;
	}
	case KPRIM_IOC_WAIT_CANCEL: {
		/* via_uring() tags a command with its number: aim at one. */
		struct kprim_wait_cancel *a = buf;

		a->flags = (uint32_t)below(2);
		a->user_data = below(2) ? KPRIM_IOC_SEM_ACQUIRE :
					  KPRIM_IOC_LIMITER_TAKE;
		break;
	}
	case KPRIM_IOC_CACHE_MGET: {
		/* 1..4 entries in the scratch page, keys and buffers shared. */
		struct kprim_cache_mget *a = buf;
		struct kprim_cache_mget_entry *e = (void *)(scratch + 1536);
		unsigned int i, n = 1 + (unsigned int)below(4);

		for (i = 0; i < n; i++) {
			memset(&e[i], 0, sizeof(e[i]));
			e[i].key = (uintptr_t)scratch;
			e[i].key_len = 1 + (uint32_t)below(4);
			e[i].value = (uintptr_t)(scratch + 16);
			e[i].value_len = below(1024);
		}
		a->entries = (uintptr_t)e;
		a->count = n;
		a->entry_size = sizeof(*e);
		break;
	}
	default:	/* API, INFO, FLUSH: size and flags only */
		break;
	}
	return size;
}

static void note(unsigned int cmd, int err)
{
	unsigned int i = atomic_fetch_add(&report->unexpected, 1);

	if (i < MAX_UNEXPECTED) {
		report->first[i].cmd = cmd;
		report->first[i].err = err;
	}
}

/* Replace a pool slot: open a fresh object, named or anonymous. */
static void churn(struct fuzz_ctx *c)
{
	unsigned char arg[256] = { 0 };
	int slot = (int)below(POOL), fd, old;

	valid_arg(KPRIM_IOC_OPEN, arg, -1);
	((struct kprim_open *)arg)->flags |= KPRIM_OPEN_CREATE;
	((struct kprim_open *)arg)->flags &= ~KPRIM_OPEN_EXCL;
	fd = (int)kt_ioctl(c->sess, KPRIM_IOC_OPEN, arg);
	old = atomic_exchange(&c->pool[slot], fd < 0 ? -1 : fd);
	/* Another thread may be in an ioctl on @old: closing is part of
	 * the test (the file stays alive until that call returns). */
	if (old >= 0)
		close(old);
}

/*
 * The other ways in: poll() and /proc/self/fdinfo on a random object fd,
 * racing with the ioctls and the churn of the other thread. Their errnos
 * are the VFS's, not kprim's (kprim's poll and show_fdinfo cannot fail),
 * and the fd may be closed and its number reused by any file meanwhile:
 * a failure is counted and shown, while what is judged is that the kernel
 * stays clean. Returns 0, or which call failed (errno set).
 */
enum { SIDE_POLL = 1, SIDE_FDINFO_OPEN, SIDE_FDINFO_READ };

static int side_op(struct fuzz_ctx *c)
{
	int fd = atomic_load(&c->pool[below(POOL)]), f, err;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	char path[64], buf[1024];
	ssize_t n;

	if (below(2)) {
		if (poll(&p, 1, 0) < 0 && errno != EINTR)
			return SIDE_POLL;
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)	/* ENOENT: closed meanwhile by the churn */
		return errno == ENOENT ? 0 : SIDE_FDINFO_OPEN;
	while ((n = read(f, buf, sizeof(buf))) > 0)
		;
	err = errno;
	/* ENOENT, EBADF: the fd was closed between open() and read(). */
	if (n < 0 && err != EINTR && err != ENOENT && err != EBADF) {
		/* What is f now? (Is it still our fdinfo file?) */
		if (atomic_load(&report->side_failed) == 0) {
			snprintf(path, sizeof(path), "/proc/self/fd/%d", f);
			n = readlink(path, report->side_first_file,
				     sizeof(report->side_first_file) - 1);
			if (n < 0)
				snprintf(report->side_first_file,
					 sizeof(report->side_first_file),
					 "(readlink: %s)", strerror(errno));
		}
		close(f);
		errno = err;
		return SIDE_FDINFO_READ;
	}
	close(f);
	return 0;
}

/*
 * The threads of a process share page_rw for their arguments: a thread
 * may rewrite an argument while the kernel reads it, which the kernel
 * must survive too (it copies each argument once).
 */
/* Each thread's ring, and how many of its commands have not completed. */
#define URING_INFLIGHT	4
static __thread struct io_uring ring;
static __thread bool have_ring;
static __thread unsigned int inflight;

/*
 * Send one command through the ring and wait up to 50 ms for a
 * completion (of this or of an earlier command). Returns false when
 * nothing completed; *res is the completion's result otherwise.
 */
static bool via_uring(int fd, unsigned int cmd, void *argp, long *res,
		      unsigned int *res_cmd)
{
	struct __kernel_timespec ts = { .tv_nsec = 50000000 };
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	struct io_uring_cqe *cqe;

	if (!sqe)
		return false;
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = cmd;
	sqe->addr3 = (uintptr_t)argp;	/* the argument pointer */
	sqe->user_data = cmd;
	if (io_uring_submit(&ring) == 1)
		inflight++;
	if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts))
		return false;
	*res = cqe->res;
	*res_cmd = (unsigned int)cqe->user_data;
	io_uring_cqe_seen(&ring, cqe);
	inflight--;
	return true;
}

static void fuzz_one(struct fuzz_ctx *c)
{
	unsigned char *arg = page_rw;	/* the struct; scratch from 2048 */
	unsigned int cmd;
	size_t size;
	void *argp;
	long ret;
	int fd;

	if (!below(50)) {
		churn(c);
		return;
	}
	if (!below(30)) {
		int what = side_op(c);

		if (what && atomic_fetch_add(&report->side_failed, 1) == 0) {
			report->side_first_op = what;
			report->side_first_err = errno;
		}
		atomic_fetch_add(&report->calls[proc_idx], 1);
		return;
	}
	if (below(4)) {
		cmd = object_cmds[below(sizeof(object_cmds) / sizeof(object_cmds[0]))];
		fd = atomic_load(&c->pool[below(POOL)]);
	} else {
		cmd = session_cmds[below(sizeof(session_cmds) / sizeof(session_cmds[0]))];
		fd = c->sess;
	}
	switch (below(20)) {	/* now and then the wrong fd */
	case 0: fd = c->sess; break;
	case 1: fd = c->efd; break;
	case 2: fd = -1; break;
	case 3: fd = atomic_load(&c->pool[below(POOL)]); break;
	}
	memset(arg, 0, 2048);
	size = valid_arg(cmd, arg, below(4) ? KPRIM_NO_CANCEL_FD : c->efd);
	for (int i = (int)below(4); i > 0; i--)
		mutate(arg, size);
	argp = arg;
	switch (below(40)) {	/* now and then a bad argument pointer */
	case 0: argp = NULL; break;
	case 1: argp = page_none; break;
	case 2: argp = page_ro; break;
	case 3: argp = page_none - below(size + 1); break;	/* straddles */
	case 4: argp = (void *)0xffff888000000000ull; break;
	}
	if (!below(50))	/* an unknown command number, size or direction */
		cmd = _IOC(below(4), KPRIM_IOC_MAGIC, below(0x40), below(256));

	if (have_ring && inflight < URING_INFLIGHT && !below(4)) {
		/* A completion may belong to an earlier command: judge it
		 * as what it is, and count it as a call then. */
		if (!via_uring(fd, cmd, argp, &ret, &cmd))
			return;
		atomic_fetch_add(&report->uring[proc_idx], 1);
	} else {
		ret = kt_ioctl(fd, cmd, argp);
	}
	atomic_fetch_add(&report->calls[proc_idx], 1);
	if (ret >= 0) {
		atomic_fetch_add(&report->ok[proc_idx], 1);
		/* The module ignores the size bits of a command: any
		 * number with OPEN's type and nr is an OPEN. */
		if (_IOC_TYPE(cmd) == KPRIM_IOC_MAGIC &&
		    _IOC_NR(cmd) == _IOC_NR(KPRIM_IOC_OPEN) && ret > 2)
			close((int)ret);
	} else if (!documented_errno((int)-ret)) {
		note(cmd, (int)-ret);
	}
}

static uint64_t fuzz_seed;

/* Every thread its own sequence, from the seed, process and thread. */
static void seed_thread(int thread)
{
	rng = (fuzz_seed * 0x9E3779B97F4A7C15ull) ^
	      ((uint64_t)proc_idx << 32) ^ ((uint64_t)thread << 48);
	rng |= 1;	/* xorshift never leaves 0 */
}

static pthread_t fuzz_tids[THREADS];

struct fuzz_thread_arg {
	struct fuzz_ctx *c;
	int thread;
};

static void *fuzz_thread(void *arg)
{
	struct fuzz_thread_arg *a = arg;
	struct fuzz_ctx *c = a->c;

	seed_thread(a->thread);
	have_ring = !io_uring_queue_init(8, &ring, 0);
	for (;;)
		fuzz_one(c);
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;	/* only to interrupt blocking calls (EINTR) */
}

/*
 * Every 20 ms, a signal to each fuzzing thread: a mutated timeout can be
 * "forever", and a process-directed signal would reach only one thread.
 */
static void *ticker(void *arg)
{
	sigset_t set;

	(void)arg;
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		usleep(20000);
		for (int i = 0; i < THREADS; i++)
			pthread_kill(fuzz_tids[i], SIGALRM);
	}
	return NULL;
}

/* One fuzzing process: runs until the parent kills it. */
static void fuzz_process(int idx, uint64_t seed, pid_t parent)
{
	static struct fuzz_thread_arg targs[THREADS];
	static struct fuzz_ctx c;
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART */
	pthread_t t;

	/* Never outlive the test, whatever way it ends. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(3);
	proc_idx = idx;
	fuzz_seed = seed;
	seed_thread(THREADS);	/* the set-up below */
	c.sess = kt_session();
	c.efd = eventfd(0, EFD_CLOEXEC);
	if (c.sess < 0 || c.efd < 0)
		_exit(1);
	/* A signalled eventfd as the cancel fd ends any wait at once. */
	if (idx == 0)
		eventfd_write(c.efd, 1);
	for (int i = 0; i < POOL; i++) {
		atomic_store(&c.pool[i], -1);
		churn(&c);
	}
	sigaction(SIGALRM, &sa, NULL);
	fuzz_tids[0] = pthread_self();
	for (int i = 0; i < THREADS; i++)
		targs[i] = (struct fuzz_thread_arg){ .c = &c, .thread = i };
	for (int i = 1; i < THREADS; i++) {
		if (pthread_create(&fuzz_tids[i], NULL, fuzz_thread, &targs[i]))
			_exit(2);
	}
	/* The ticker starts once every fuzz_tids[] is known. */
	if (pthread_create(&t, NULL, ticker, NULL))
		_exit(2);
	fuzz_thread(&targs[0]);
}

/* Every object listed now (up to @max); -1 when LIST fails. */
static int list_all(int sess, struct kprim_obj_info *out, int max)
{
	struct kprim_list l = {
		.size = sizeof(l), .entry_size = sizeof(*out),
	};
	int n = 0;

	do {
		l.buf = (uintptr_t)(out + n);
		l.count = (uint32_t)(max - n);
		if (kt_ioctl(sess, KPRIM_IOC_LIST, &l) < 0)
			return -1;
		n += (int)l.count;
		l.start_id = l.next_id;
	} while (l.next_id && n < max);
	return n;
}

static bool listed_before(const struct kprim_obj_info *before, int nb,
			  uint64_t id)
{
	for (int i = 0; i < nb; i++)
		if (before[i].id == id)
			return true;
	return false;
}

/*
 * True when no object created during the run is still in use: none is
 * anonymous or unlinked (only fds keep those alive), no semaphore has a
 * holder or a waiter and no limiter a waiter.
 */
static bool settled(const struct kprim_obj_info *before, int nb,
		    const struct kprim_obj_info *after, int na)
{
	for (int i = 0; i < na; i++) {
		const struct kprim_obj_info *o = &after[i];

		if (listed_before(before, nb, o->id))
			continue;
		if (!o->name_len || (o->flags & KPRIM_OBJ_UNLINKED))
			return false;
		if (o->kind == KPRIM_KIND_SEM &&
		    (o->sem.holders || o->sem.waiters))
			return false;
		if (o->kind == KPRIM_KIND_LIMITER && o->limiter.waiters)
			return false;
	}
	return true;
}

/*
 * The harness's own limit (30 s by default) must not cut a longer run
 * short (KPRIM_FUZZ_SECS); the run checks that it fits. In the VM the
 * per-program limit (KPRIM_TEST_TIMEOUT, 400 s) applies as well.
 */
#define FUZZ_TIMEOUT_S	3600

FIXTURE(fuzz) {};
FIXTURE_SETUP(fuzz) {}
FIXTURE_TEARDOWN(fuzz) {}

TEST_F_TIMEOUT(fuzz, mutated_ioctls_from_dying_processes, FUZZ_TIMEOUT_S)
{
	static struct kprim_obj_info before[512], after[512];
	const char *env_seed = getenv("KPRIM_FUZZ_SEED");
	const char *env_secs = getenv("KPRIM_FUZZ_SECS");
	uint64_t seed = env_seed ? strtoull(env_seed, NULL, 0) : kt_now_ns();
	int secs = env_secs ? atoi(env_secs) : 8;
	int sess = kt_session(), nb, na, left = 0, unlinked = 0;
	pid_t pids[PROCS];

	if (sess < 0 && errno == ENOENT)
		SKIP(return, "no /dev/kprim: kprim.ko not loaded");
	ASSERT_LE(0, sess);
	ASSERT_LT(0, secs);
	ASSERT_GT(FUZZ_TIMEOUT_S - 60, secs);
	TH_LOG("seed %llu (KPRIM_FUZZ_SEED to repeat), %d s, %d processes x %d threads",
	       (unsigned long long)seed, secs, PROCS, THREADS);
	pagesz = sysconf(_SC_PAGESIZE);
	page_rw = mmap(NULL, 3 * pagesz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, page_rw);
	page_none = page_rw + pagesz;
	page_ro = page_rw + 2 * pagesz;
	ASSERT_EQ(0, mprotect(page_none, pagesz, PROT_NONE));
	ASSERT_EQ(0, mprotect(page_ro, pagesz, PROT_READ));
	report = mmap(NULL, sizeof(*report), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, report);
	memset(report, 0, sizeof(*report));
	nb = list_all(sess, before, 512);
	ASSERT_LE(0, nb);

	for (int i = 0; i < PROCS; i++) {
		pid_t parent = getpid();

		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0)
			fuzz_process(i, seed, parent);
	}
	/* Kill them one at a time along the way: death while in a wait,
	 * while holding permits, while another thread is in a call, and
	 * the others go on with the objects the dead one left. */
	for (int i = 0; i < PROCS; i++) {
		int status;

		usleep((useconds_t)secs * 1000000 / PROCS);
		kill(pids[i], SIGKILL);
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		/* Died of our SIGKILL, not of a crash or an early exit. */
		EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	}

	for (int i = 0; i < PROCS; i++) {
		unsigned long calls = atomic_load(&report->calls[i]);

		TH_LOG("process %d: %lu calls (%lu through io_uring), %lu succeeded",
		       i, calls, (unsigned long)atomic_load(&report->uring[i]),
		       (unsigned long)atomic_load(&report->ok[i]));
		EXPECT_LE(MIN_CALLS, calls);
	}
	for (unsigned int i = 0; i < report->unexpected && i < MAX_UNEXPECTED; i++)
		TH_LOG("undocumented errno %d (%s) from ioctl 0x%x",
		       report->first[i].err, strerror(report->first[i].err),
		       report->first[i].cmd);
	EXPECT_EQ(0, atomic_load(&report->unexpected));
	if (atomic_load(&report->side_failed))
		TH_LOG("%lu poll/fdinfo calls failed, the first (%s) with %s%s%s",
		       (unsigned long)atomic_load(&report->side_failed),
		       report->side_first_op == SIDE_POLL ? "poll" :
		       report->side_first_op == SIDE_FDINFO_OPEN ?
		       "fdinfo open" : "fdinfo read",
		       strerror(report->side_first_err),
		       report->side_first_file[0] ? "; the file read was then " : "",
		       report->side_first_file);

	/*
	 * Everything the dead held is back; nothing waits; caches in bounds.
	 * A command that was on an io_uring worker when its process died
	 * can drop its file reference a little after the process is reaped
	 * (deferred fput): give the objects up to 5 s to settle first.
	 */
	for (int tries = 0;; tries++) {
		na = list_all(sess, after, 512);
		ASSERT_LE(0, na);
		if (settled(before, nb, after, na))
			break;
		if (tries == 100) {
			TH_LOG("objects still busy 5 s after the last death");
			break;
		}
		usleep(50000);
	}
	for (int i = 0; i < na; i++) {
		const struct kprim_obj_info *o = &after[i];

		if (listed_before(before, nb, o->id))
			continue;
		if (o->kind == KPRIM_KIND_SEM) {
			EXPECT_EQ(0, o->sem.held);
			EXPECT_EQ(0, o->sem.holders);
			EXPECT_EQ(0, o->sem.waiters);
			EXPECT_EQ(o->sem.permits, o->sem.available);
		} else if (o->kind == KPRIM_KIND_LIMITER) {
			EXPECT_EQ(0, o->limiter.waiters);
			EXPECT_GE(o->limiter.params.burst, o->limiter.tokens);
		} else if (o->kind == KPRIM_KIND_CACHE) {
			EXPECT_GE(o->cache.params.max_bytes, o->cache.bytes);
			EXPECT_GE(o->cache.params.max_entries, o->cache.entries);
		}
		/* Only named, persistent objects outlive their processes. */
		EXPECT_NE(0, o->name_len);
		if (o->name_len) {
			struct kprim_unlink u = {
				.size = sizeof(u), .kind = o->kind,
				.name = (uintptr_t)o->name,
				.name_len = o->name_len,
			};

			EXPECT_EQ(0, kt_ioctl(sess, KPRIM_IOC_UNLINK, &u));
			unlinked++;
		}
	}
	TH_LOG("%d named objects outlived the fuzzers; unlinked", unlinked);
	/* The list is what it was. */
	na = list_all(sess, after, 512);
	ASSERT_LE(0, na);
	for (int i = 0; i < na; i++)
		left += !listed_before(before, nb, after[i].id);
	EXPECT_EQ(0, left);
	close(sess);
}

TEST_HARNESS_MAIN
