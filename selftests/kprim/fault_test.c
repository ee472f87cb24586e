// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection: every ioctl and io_uring command, with the Nth failure
 * point of the call failing, for N = 1, 2, ... until the call runs with no
 * fault consumed (three times in a row; two such sweeps per call, as the
 * points of a call vary a little from run to run).
 *
 * The kernel's per-task fault injection does the failing: writing N to
 * /proc/thread-self/fail-nth makes the Nth failure point this thread
 * reaches fail (an allocation through failslab or fail_page_alloc, or a
 * user copy through fail_usercopy), and reading it back says whether it
 * fired (0). Only this thread is affected: the global probabilities stay
 * 0. The `times` counters of the three fault kinds say which kind fired.
 *
 * After each failed call: its errno must be one the call documents for a
 * failed allocation or copy (-ENOMEM, -EFAULT; -EAGAIN from io_uring's own
 * submission), and nothing may have changed: the objects LIST reports
 * (ids, names, fds referencing them, limiter tokens and admissions, sem
 * permits/held/waiters/holders, cache entries/bytes and the values and
 * versions of the test keys), no fd leaked, a name a failed create used is
 * free (an EXCL create succeeds), and the per-user object and byte quotas
 * are exactly as before (checked at the end by creating up to them). A
 * fault absorbed by a fallback (kmemleak's and the stack depot's own
 * records, kvmalloc's vmalloc, slab's lower order) may let the call
 * succeed: then its success is checked instead.
 * kmemleak's scan at the end of the VM run checks nothing leaked.
 *
 * The test runs as its own uid so its quota and its LIST are its own, and
 * with all its memory locked so no page fault of its own hits a fault.
 */
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include "kselftest_harness.h"
#include "kprim_test.h"

/* The op callbacks share one signature; many ignore some arguments. */
#pragma GCC diagnostic ignored "-Wunused-parameter"

#define FT_UID		4321
#define FT_NMAX		400
#define FT_MAXOBJ	32
#define FT_PARAMS	"/sys/module/kprim/parameters/"
#define FT_DEBUGFS	"/sys/kernel/debug/"
#define FT_TOTALS	"/tmp/kprim-fault-totals"
#define MSEC		1000000ull
#define HUGE_PERIOD	(1000000ull * 1000000000ull)	/* no refill in a test */

/* The fault kinds, as their debugfs directories name them. */
enum { FK_SLAB, FK_PAGE, FK_USERCOPY, FK_NR };
static const char *const fk_dir[FK_NR] = {
	"failslab", "fail_page_alloc", "fail_usercopy",
};

/* Object kinds for the totals; 0 is the session (LIST, UNLINK). */
static const char *const kind_name[] = { "session", "limiter", "sem", "cache" };

struct totals {
	unsigned long fired;			/* faults injected */
	unsigned long distinct;			/* distinct (call, N) reached */
	unsigned long failed;			/* calls that failed cleanly */
	unsigned long absorbed;			/* fired, call still succeeded */
	unsigned long by_fk[FK_NR];
	unsigned long by_kind[4];
	unsigned long ops;
};

/* A snapshot of everything a failed call must leave as it was. */
struct snap {
	int n;
	struct kprim_obj_info o[FT_MAXOBJ];
	int nkeys;
	struct { long ret; __u64 cas; __u64 len; char v[64]; } key[8];
};

#define CTX_KEYS	5
static const char *const ctx_keys[CTX_KEYS] = {
	"k-small", "k-large", "k-ctr", "k-new", "k-newctr",
};

struct ctx {
	int sess;
	int fd[3];			/* the op's objects */
	char name[3][64];
	__u32 kind[3];
	int res_fd;			/* an fd a successful OPEN returned */
	int cache;			/* index in fd[] of a cache, or -1 */
	struct io_uring ring;
	bool have_ring;
	pthread_t helper;
	bool helper_on;
	int helper_fd;			/* RELEASE 1 on it after 20 ms */
	int stage;			/* io_uring: 1 submit, 2 completion */
	int waiter_res;			/* CQE of the queued wait (WAIT_CANCEL) */
	long cancel_res;		/* CQE of the WAIT_CANCEL */
	bool waiter_done;
	/* Arguments: static for the call, in locked memory. */
	struct kprim_api api;
	struct kprim_wait_cancel wcancel;
	struct kprim_open open;
	struct kprim_unlink unlink;
	struct kprim_list list;
	struct kprim_obj_info lbuf[8];
	struct kprim_limiter_take take;
	struct kprim_limiter_set set;
	struct kprim_limiter_info linfo;
	struct kprim_sem_acquire acq;
	struct kprim_sem_release rel;
	struct kprim_sem_resize resize;
	struct kprim_sem_info sinfo;
	struct kprim_sem_holder holders[8];
	struct kprim_cache_store store;
	struct kprim_cache_get get;
	struct kprim_cache_key key;
	struct kprim_cache_incr incr;
	struct kprim_hdr hdr;
	struct kprim_cache_info cinfo;
	struct kprim_cache_mget mget;
	struct kprim_cache_mget_entry ment[3];
	char mval[3][64];
	char value[8192];
	char large[6000];
};

struct op {
	const char *name;
	int kind;		/* index in kind_name */
	long expect;		/* the untouched call's result (>= 0: fd ok) */
	unsigned int flags;
#define OP_FD		(1U << 0)	/* success returns an fd */
#define OP_NO_TOKENS	(1U << 1)	/* tokens refill: compare admitted */
#define OP_NAME_FREE	(1U << 2)	/* failed: fd[0]'s name must be free */
#define OP_URING	(1U << 3)
#define OP_HELPER	(1U << 5)	/* the helper acquired once more */
	void (*setup)(struct __test_metadata *_metadata, struct ctx *c);
	void (*pre)(struct __test_metadata *_metadata, struct ctx *c);
	void (*prep)(struct __test_metadata *_metadata, struct ctx *c);
	long (*call)(struct ctx *c);
	void (*settle)(struct __test_metadata *_metadata, struct ctx *c);
	/* checks and undoes a success; fired: a fault was absorbed */
	void (*ok)(struct __test_metadata *_metadata, struct ctx *c, long ret);
	/* a result that is a clean partial failure (MGET's per-key -EFAULT) */
	bool (*fault_ok)(struct ctx *c, long ret);
};

FIXTURE(fault) {
	int nth;			/* /proc/thread-self/fail-nth */
	bool times[FK_NR];		/* the kind's debugfs directory exists */
	int sess;
	struct totals t;
};

/* ---- debugfs and module parameters (as root) ------------------------ */

struct saved { char path[128]; char val[32]; };
static struct saved saved[32];
static int nsaved;

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* Set @path to @val, remembering the old value for the teardown. */
static int set_saved(const char *path, const char *val)
{
	struct saved *s = &saved[nsaved];
	int ret;

	ret = read_file(path, s->val, sizeof(s->val));
	if (ret)
		return ret;
	snprintf(s->path, sizeof(s->path), "%s", path);
	nsaved++;
	return write_file(path, val);
}

static void restore_saved(void)
{
	while (nsaved > 0) {
		nsaved--;
		write_file(saved[nsaved].path, saved[nsaved].val);
	}
}

static int fk_set(int k, const char *file, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), FT_DEBUGFS "%s/%s", fk_dir[k], file);
	return set_saved(path, val);
}

/* Module parameters need root: the test runs with euid FT_UID. */
static int param_set(const char *name, unsigned long val)
{
	char path[128], buf[32];
	int ret;

	snprintf(path, sizeof(path), FT_PARAMS "%s", name);
	snprintf(buf, sizeof(buf), "%lu", val);
	if (seteuid(0))
		return -errno;
	ret = set_saved(path, buf);
	if (seteuid(FT_UID))
		return -errno;
	return ret;
}

/*
 * A fault kind's `times` counter. debugfs attribute files cannot seek,
 * and debugfs is root's: open it anew, as root, for every read.
 */
static long times_read(int k)
{
	char path[128], buf[32];
	long ret;

	snprintf(path, sizeof(path), FT_DEBUGFS "%s/times", fk_dir[k]);
	if (seteuid(0))
		return -1;
	ret = read_file(path, buf, sizeof(buf)) ? -1 : strtol(buf, NULL, 10);
	if (seteuid(FT_UID))
		abort();
	return ret;
}

/* ---- arming ------------------------------------------------------------ */

static int g_nth = -1;

static void nth_arm(int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%d", n);

	/* The write's own copy runs before fail_nth is set: not counted. */
	if (pwrite(g_nth, buf, len, 0) != len)
		abort();
}

/*
 * Did the armed fault fire? Reading fail-nth copies to user memory, which
 * is a failure point itself while armed: a read that fails with EFAULT
 * means it had 1 left, i.e. the call did not consume it. Then disarm;
 * that write may consume the rest, which is fine.
 */
static bool nth_disarm(void)
{
	char buf[16];
	ssize_t n;
	bool fired;

	n = pread(g_nth, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = '\0';
		fired = strtol(buf, NULL, 10) == 0;
	} else {
		fired = false;	/* EFAULT: the read consumed the last count */
	}
	if (pwrite(g_nth, "0", 1, 0) != 1 && errno != EFAULT)
		abort();
	return fired;
}

/* ---- state ------------------------------------------------------------- */

static int list_all(int sess, struct snap *s)
{
	struct kprim_obj_info buf[8];
	struct kprim_list l;
	__u64 start = 0;
	long ret;
	__u32 i;

	s->n = 0;
	do {
		memset(&l, 0, sizeof(l));
		l.size = sizeof(l);
		l.start_id = start;
		l.buf = (uintptr_t)buf;
		l.count = 8;
		l.entry_size = sizeof(buf[0]);
		ret = kt_ioctl(sess, KPRIM_IOC_LIST, &l);
		if (ret)
			return (int)ret;
		for (i = 0; i < l.count && s->n < FT_MAXOBJ; i++)
			s->o[s->n++] = buf[i];
		start = l.next_id;
	} while (start);
	return 0;
}

static void snap_keys(struct ctx *c, struct snap *s)
{
	struct kprim_cache_get g;
	int i;

	s->nkeys = 0;
	if (c->cache < 0)
		return;
	for (i = 0; i < CTX_KEYS; i++) {
		memset(&g, 0, sizeof(g));
		g.size = sizeof(g);
		g.key = (uintptr_t)ctx_keys[i];
		g.key_len = strlen(ctx_keys[i]);
		g.value = (uintptr_t)c->value;
		g.value_len = sizeof(c->value);
		s->key[i].ret = kt_ioctl(c->fd[c->cache], KPRIM_IOC_CACHE_GET, &g);
		s->key[i].cas = s->key[i].ret ? 0 : g.cas;
		s->key[i].len = s->key[i].ret ? 0 : g.value_len;
		memset(s->key[i].v, 0, sizeof(s->key[i].v));
		if (!s->key[i].ret)
			memcpy(s->key[i].v, c->value,
			       g.value_len < sizeof(s->key[i].v) ?
			       g.value_len : sizeof(s->key[i].v));
		s->nkeys++;
	}
}

static int snap_take(struct ctx *c, struct snap *s)
{
	memset(s, 0, sizeof(*s));
	snap_keys(c, s);
	return list_all(c->sess, s);
}

/* Returns a description of the first difference, or NULL. */
static const char *snap_diff(const struct snap *a, const struct snap *b,
			     unsigned int flags, char *why, size_t len)
{
	int i;

	if (a->n != b->n) {
		snprintf(why, len, "%d objects, was %d", b->n, a->n);
		return why;
	}
	for (i = 0; i < a->n; i++) {
		const struct kprim_obj_info *x = &a->o[i], *y = &b->o[i];

		if (x->id != y->id || x->flags != y->flags ||
		    x->name_len != y->name_len || x->refs != y->refs) {
			snprintf(why, len, "object %llu: id/flags/name/refs %llu/%u/%u/%llu, was %llu/%u/%u/%llu",
				 (unsigned long long)x->id,
				 (unsigned long long)y->id, y->flags,
				 y->name_len, (unsigned long long)y->refs,
				 (unsigned long long)x->id, x->flags,
				 x->name_len, (unsigned long long)x->refs);
			return why;
		}
		switch (x->kind) {
		case KPRIM_KIND_LIMITER:
			if (memcmp(&x->limiter.params, &y->limiter.params,
				   sizeof(x->limiter.params)) ||
			    x->limiter.waiters != y->limiter.waiters ||
			    x->limiter.admitted != y->limiter.admitted ||
			    (!(flags & OP_NO_TOKENS) &&
			     x->limiter.tokens != y->limiter.tokens)) {
				snprintf(why, len, "limiter %llu: tokens %llu waiters %llu admitted %llu rate %llu, was %llu %llu %llu %llu",
					 (unsigned long long)x->id,
					 (unsigned long long)y->limiter.tokens,
					 (unsigned long long)y->limiter.waiters,
					 (unsigned long long)y->limiter.admitted,
					 (unsigned long long)y->limiter.params.rate,
					 (unsigned long long)x->limiter.tokens,
					 (unsigned long long)x->limiter.waiters,
					 (unsigned long long)x->limiter.admitted,
					 (unsigned long long)x->limiter.params.rate);
				return why;
			}
			break;
		case KPRIM_KIND_SEM:
			if (x->sem.permits != y->sem.permits ||
			    x->sem.available != y->sem.available ||
			    x->sem.held != y->sem.held ||
			    x->sem.waiters != y->sem.waiters ||
			    x->sem.holders != y->sem.holders ||
			    x->sem.acquired + !!(flags & OP_HELPER) !=
			    y->sem.acquired) {
				snprintf(why, len, "sem %llu: permits %llu held %llu waiters %llu holders %llu acquired %llu, was %llu %llu %llu %llu %llu",
					 (unsigned long long)x->id,
					 (unsigned long long)y->sem.permits,
					 (unsigned long long)y->sem.held,
					 (unsigned long long)y->sem.waiters,
					 (unsigned long long)y->sem.holders,
					 (unsigned long long)y->sem.acquired,
					 (unsigned long long)x->sem.permits,
					 (unsigned long long)x->sem.held,
					 (unsigned long long)x->sem.waiters,
					 (unsigned long long)x->sem.holders,
					 (unsigned long long)x->sem.acquired);
				return why;
			}
			break;
		case KPRIM_KIND_CACHE:
			if (x->cache.entries != y->cache.entries ||
			    x->cache.bytes != y->cache.bytes ||
			    x->cache.evictions != y->cache.evictions ||
			    x->cache.expirations != y->cache.expirations) {
				snprintf(why, len, "cache %llu: entries %llu bytes %llu evictions %llu, was %llu %llu %llu",
					 (unsigned long long)x->id,
					 (unsigned long long)y->cache.entries,
					 (unsigned long long)y->cache.bytes,
					 (unsigned long long)y->cache.evictions,
					 (unsigned long long)x->cache.entries,
					 (unsigned long long)x->cache.bytes,
					 (unsigned long long)x->cache.evictions);
				return why;
			}
			break;
		}
	}
	for (i = 0; i < a->nkeys; i++) {
		if (a->key[i].ret != b->key[i].ret ||
		    a->key[i].cas != b->key[i].cas ||
		    a->key[i].len != b->key[i].len ||
		    memcmp(a->key[i].v, b->key[i].v, sizeof(a->key[i].v))) {
			snprintf(why, len, "key %s: get %ld cas %llu \"%.20s\", was %ld cas %llu \"%.20s\"",
				 ctx_keys[i], b->key[i].ret,
				 (unsigned long long)b->key[i].cas, b->key[i].v,
				 a->key[i].ret,
				 (unsigned long long)a->key[i].cas, a->key[i].v);
			return why;
		}
	}
	return NULL;
}

/* The lowest free fd: a failed call must not have taken one. */
static int lowest_fd(void)
{
	int fd = dup(0);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* ---- object helpers (not armed) ---------------------------------------- */

static int mk(struct ctx *c, int i, __u32 kind, const char *tag, __u32 flags)
{
	struct kprim_open a;

	c->kind[i] = kind;
	if (tag)
		snprintf(c->name[i], sizeof(c->name[i]), "ft-%s-%d", tag,
			 getpid());
	else
		c->name[i][0] = '\0';
	a = kt_open_args(kind, tag ? c->name[i] : NULL,
			 KPRIM_OPEN_CREATE | flags);
	switch (kind) {
	case KPRIM_KIND_LIMITER:
		a.limiter.rate = 1;
		a.limiter.period_ns = HUGE_PERIOD;
		a.limiter.burst = 100;
		break;
	case KPRIM_KIND_SEM:
		a.sem.permits = 3;
		break;
	case KPRIM_KIND_CACHE:
		a.cache.max_bytes = 1 << 20;
		a.cache.max_entries = 64;
		break;
	}
	c->fd[i] = kt_open(c->sess, &a);
	return c->fd[i];
}

static long cache_set(struct ctx *c, const char *key, const void *val,
		      size_t len)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .key = (uintptr_t)key,
		.key_len = strlen(key), .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = len,
	};

	return kt_ioctl(c->fd[c->cache], KPRIM_IOC_CACHE_STORE, &s);
}

static long cache_del(struct ctx *c, const char *key)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key, .key_len = strlen(key),
	};

	return kt_ioctl(c->fd[c->cache], KPRIM_IOC_CACHE_DELETE, &k);
}

static long sem_acq(int fd, __u64 n, __u64 timeout)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = n,
		.wait = kt_wait(timeout, KPRIM_NO_CANCEL_FD),
	};

	return kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &a);
}

static long sem_rel(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

static __u64 sem_held_by(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i))
		return ~0ull;
	return i.held_by_me;
}

static long lim_take(int fd, __u64 n)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = n,
		.wait = kt_wait(0, KPRIM_NO_CANCEL_FD),
	};

	return kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t);
}

/* ---- the helper thread: gives back the permit a waiter waits for ------ */

static void *helper_fn(void *arg)
{
	struct ctx *c = arg;
	struct timespec ts = { 0, 20 * MSEC };

	nanosleep(&ts, NULL);
	sem_rel(c->helper_fd, 1);
	return NULL;
}

static void helper_start(struct __test_metadata *_metadata, struct ctx *c,
			 int holder)
{
	pthread_attr_t attr;

	ASSERT_EQ(0, sem_acq(holder, 1, 0));
	c->helper_fd = holder;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 1 << 16);
	ASSERT_EQ(0, pthread_create(&c->helper, &attr, helper_fn, c));
	pthread_attr_destroy(&attr);
	c->helper_on = true;
}

static void helper_join(struct ctx *c)
{
	if (c->helper_on)
		pthread_join(c->helper, NULL);
	c->helper_on = false;
}

/* ---- io_uring ----------------------------------------------------------- */

static void ring_up(struct __test_metadata *_metadata, struct ctx *c)
{
	ASSERT_EQ(0, io_uring_queue_init(4, &c->ring, 0));
	c->have_ring = true;
}

static void ring_down(struct ctx *c)
{
	if (c->have_ring)
		io_uring_queue_exit(&c->ring);
	c->have_ring = false;
}

/*
 * One kprim command through the ring, armed as a whole: submission, the
 * wait, and the completion's task work. A fault in the wait itself (its
 * timeout argument) ends the wait, not the command: wait again.
 */
static long uring_call(struct ctx *c, int fd, unsigned int cmd, void *arg)
{
	struct __kernel_timespec ts = { .tv_sec = 10 };
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	struct io_uring_cqe *cqe;
	int ret, tries;

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = cmd;
	sqe->addr3 = (uintptr_t)arg;
	sqe->user_data = 1;
	c->stage = 1;
	ret = io_uring_submit(&c->ring);
	if (ret != 1)
		return ret < 0 ? ret : -EPROTO;
	c->stage = 2;
	for (tries = 0; tries < 5; tries++) {
		ret = io_uring_wait_cqe_timeout(&c->ring, &cqe, &ts);
		if (ret == -EFAULT || ret == -ENOMEM || ret == -EINTR ||
		    ret == -EAGAIN)
			continue;
		if (ret)
			return -ETIME;	/* lost: fails the test */
		ret = cqe->res;
		io_uring_cqe_seen(&c->ring, cqe);
		return ret;
	}
	return -ETIME;
}

/* ---- the driver --------------------------------------------------------- */

static bool errno_ok(const struct op *op, struct ctx *c, long ret)
{
	if (op->fault_ok && op->fault_ok(c, ret))
		return true;
	if (ret == -ENOMEM || ret == -EFAULT)
		return true;
	/* io_uring cannot allocate the request: its submission says so. */
	return (op->flags & OP_URING) && c->stage == 1 && ret == -EAGAIN;
}

static bool is_success(const struct op *op, long ret)
{
	if (op->flags & OP_FD)
		return ret >= 0;
	return ret == op->expect;
}

static void close_res(struct ctx *c)
{
	if (c->res_fd >= 0)
		close(c->res_fd);
	c->res_fd = -1;
}

/*
 * Sweeps per call, and untouched calls in a row that end a sweep: the
 * failure points of one call vary a little from run to run (a slab page
 * refill here, a kmemleak record there), so a point one sweep skipped
 * the other may reach.
 */
#define FT_ROUNDS	2
#define FT_CLEAN	3

static void drive(struct __test_metadata *_metadata, FIXTURE_DATA(fault) *self,
		  const struct op *op)
{
	static struct ctx c;
	static bool hit[FT_NMAX + 1];
	struct snap s0, s1;
	long before[FK_NR], after[FK_NR];
	unsigned long fired = 0, absorbed = 0, distinct = 0;
	unsigned long fk[FK_NR] = { 0 };
	const char *diff;
	char why[256];
	int n, k, fd0, i, round, clean = 0;
	long ret;

	memset(&c, 0, sizeof(c));
	memset(hit, 0, sizeof(hit));
	c.sess = self->sess;
	c.res_fd = -1;
	c.cache = -1;
	for (i = 0; i < 3; i++)
		c.fd[i] = -1;
	if (op->setup)
		op->setup(_metadata, &c);
	for (round = 0; round < FT_ROUNDS; round++) {
		for (n = 1, clean = 0; n <= FT_NMAX && clean < FT_CLEAN; n++) {
			if (op->pre)
				op->pre(_metadata, &c);
			ASSERT_EQ(0, snap_take(&c, &s0));
			fd0 = lowest_fd();
			if (op->prep)
				op->prep(_metadata, &c);
			for (k = 0; k < FK_NR; k++)
				before[k] = self->times[k] ? times_read(k) : 0;
			c.stage = 0;

			nth_arm(n);
			ret = op->call(&c);
			if (!nth_disarm()) {
				/* Every failure point passed: the untouched call. */
				if (op->settle)
					op->settle(_metadata, &c);
				EXPECT_TRUE(is_success(op, ret)) {
					TH_LOG("%s: untouched call returned %ld, expected %ld",
					       op->name, ret, op->expect);
				}
				if (op->ok)
					op->ok(_metadata, &c, ret);
				close_res(&c);
				clean++;
				continue;
			}
			clean = 0;
			if (op->settle)
				op->settle(_metadata, &c);
			fired++;
			if (!hit[n])
				distinct++;
			hit[n] = true;
			for (k = 0; k < FK_NR; k++) {
				after[k] = self->times[k] ? times_read(k) : 0;
				if (after[k] != before[k])
					fk[k]++;
			}
			if (!(op->fault_ok && op->fault_ok(&c, ret)) &&
			    is_success(op, ret)) {
				/* A fallback absorbed the fault: a full success. */
				absorbed++;
				if (op->ok)
					op->ok(_metadata, &c, ret);
				close_res(&c);
				continue;
			}
			EXPECT_TRUE(errno_ok(op, &c, ret)) {
				TH_LOG("%s: N=%d (stage %d): errno %ld is not one for a failed allocation or copy",
				       op->name, n, c.stage, -ret);
			}
			close_res(&c);
			ASSERT_EQ(0, snap_take(&c, &s1));
			diff = snap_diff(&s0, &s1, op->flags, why, sizeof(why));
			EXPECT_TRUE(diff == NULL) {
				TH_LOG("%s: N=%d failed with %ld but left %s",
				       op->name, n, ret, diff);
			}
			EXPECT_EQ(fd0, lowest_fd()) {
				TH_LOG("%s: N=%d: an fd leaked", op->name, n);
			}
			if (op->flags & OP_NAME_FREE) {
				/* The name is free: an exclusive create succeeds. */
				struct kprim_open a = kt_open_args(c.kind[0], c.name[0],
					KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
				int fd;

				a.limiter.rate = 1;
				a.limiter.period_ns = HUGE_PERIOD;
				a.limiter.burst = 1;
				if (c.kind[0] == KPRIM_KIND_SEM) {
					memset(&a.sem, 0, sizeof(a.sem));
					a.sem.permits = 1;
				} else if (c.kind[0] == KPRIM_KIND_CACHE) {
					memset(&a.cache, 0, sizeof(a.cache));
					a.cache.max_bytes = 4096;
					a.cache.max_entries = 16;
				}
				fd = kt_open(c.sess, &a);
				EXPECT_LE(0, fd) {
					TH_LOG("%s: N=%d: name %s not free: %d",
					       op->name, n, c.name[0], fd);
				}
				if (fd >= 0) {
					close(fd);
					kt_unlink(c.sess, c.kind[0], c.name[0]);
				}
			}
			self->t.failed++;
		}
		EXPECT_EQ(FT_CLEAN, clean) {
			TH_LOG("%s: still failing after %d failure points", op->name,
			       FT_NMAX);
		}
	}
	ring_down(&c);
	helper_join(&c);
	for (i = 0; i < 3; i++) {
		if (c.fd[i] >= 0)
			close(c.fd[i]);
		if (c.name[i][0])
			kt_unlink(c.sess, c.kind[i], c.name[i]);
	}
	printf("#   %-34s %3lu points, %3lu faults (slab %lu, page %lu, usercopy %lu; %lu absorbed)\n",
	       op->name, distinct, fired, fk[FK_SLAB], fk[FK_PAGE],
	       fk[FK_USERCOPY], absorbed);
	self->t.ops++;
	self->t.fired += fired;
	self->t.distinct += distinct;
	self->t.absorbed += absorbed;
	self->t.by_kind[op->kind] += distinct;
	for (k = 0; k < FK_NR; k++)
		self->t.by_fk[k] += fk[k];
}

/* ---- fixture ---------------------------------------------------------- */

static void prefault_stack(void)
{
	volatile char buf[256 << 10];

	memset((char *)buf, 0, sizeof(buf));
}

FIXTURE_SETUP(fault)
{
	struct rlimit rl = { RLIM_INFINITY, RLIM_INFINITY };
	char path[128];
	int k;

	memset(&self->t, 0, sizeof(self->t));
	self->sess = -1;
	self->nth = -1;
	for (k = 0; k < FK_NR; k++)
		self->times[k] = false;
	if (access(KT_DEV, F_OK))
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
	if (geteuid() != 0)
		SKIP(return, "needs root (debugfs, module parameters)");
	self->nth = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (self->nth < 0 || access(FT_DEBUGFS "failslab/times", F_OK) ||
	    access(FT_DEBUGFS "fail_page_alloc/times", F_OK))
		SKIP(return, "kernel without fault injection (FAULT_INJECTION, FAILSLAB, FAIL_PAGE_ALLOC, FAULT_INJECTION_DEBUG_FS)");
	g_nth = self->nth;
	/*
	 * Only fail-nth fails anything (probability 0 for everybody), with
	 * sleeping allocations and order-0 pages included; times counts the
	 * faults of each kind, verbose 0 keeps the log quiet.
	 */
	for (k = 0; k < FK_NR; k++) {
		snprintf(path, sizeof(path), FT_DEBUGFS "%s/times", fk_dir[k]);
		if (access(path, F_OK))
			continue;	/* no FAULT_INJECTION_USERCOPY */
		ASSERT_EQ(0, fk_set(k, "probability", "0"));
		ASSERT_EQ(0, fk_set(k, "verbose", "0"));
		ASSERT_EQ(0, fk_set(k, "times", "1000000000"));
		self->times[k] = true;
	}
	ASSERT_EQ(0, fk_set(FK_SLAB, "ignore-gfp-wait", "N"));
	ASSERT_EQ(0, fk_set(FK_PAGE, "ignore-gfp-wait", "N"));
	ASSERT_EQ(0, fk_set(FK_PAGE, "min-order", "0"));
	if (!self->times[FK_USERCOPY])
		printf("# no fail_usercopy (FAULT_INJECTION_USERCOPY): allocations only\n");

	/* No page fault of ours may meet an armed fault. */
	ASSERT_EQ(0, setrlimit(RLIMIT_MEMLOCK, &rl));
	ASSERT_EQ(0, mlockall(MCL_CURRENT | MCL_FUTURE));
	prefault_stack();

	/*
	 * Our own uid: the LIST and the quotas are ours alone (kprim goes by
	 * the caller's euid at each call, not by who opened the session).
	 */
	self->sess = kt_session();
	ASSERT_LE(0, self->sess) {
		TH_LOG("open %s: %s", KT_DEV, strerror(errno));
	}
	ASSERT_EQ(0, seteuid(FT_UID));
}

FIXTURE_TEARDOWN(fault)
{
	if (geteuid() != 0 && seteuid(0))
		perror("seteuid");
	restore_saved();
	if (self->sess >= 0)
		close(self->sess);
	if (self->nth >= 0)
		close(self->nth);
}

static void totals_report(struct totals *t, const char *test)
{
	FILE *f;

	printf("# %s: %lu calls, %lu faults injected at %lu distinct (call, N) failure points (faults: slab %lu, page %lu, usercopy %lu); %lu failed cleanly, %lu absorbed by a fallback\n",
	       test, t->ops, t->fired, t->distinct, t->by_fk[FK_SLAB],
	       t->by_fk[FK_PAGE], t->by_fk[FK_USERCOPY], t->failed,
	       t->absorbed);
	/* As root: the guest's /tmp is not writable for everybody. */
	if (seteuid(0))
		return;
	f = fopen(FT_TOTALS, "a");
	if (seteuid(FT_UID))
		abort();
	if (!f) {
		printf("# %s: %s\n", FT_TOTALS, strerror(errno));
		return;
	}
	fprintf(f, "%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu\n",
		t->ops, t->fired, t->failed, t->absorbed,
		t->by_fk[0], t->by_fk[1], t->by_fk[2],
		t->by_kind[0], t->by_kind[1], t->by_kind[2],
		t->by_kind[3], t->distinct);
	fclose(f);
}

/* ==== OPEN, LIST, UNLINK ================================================= */

static void open_named_setup(struct __test_metadata *_metadata,
			     struct ctx *c, __u32 kind, const char *tag,
			     __u32 flags)
{
	c->kind[0] = kind;
	snprintf(c->name[0], sizeof(c->name[0]), "ft-%s-%d", tag, getpid());
	c->open = kt_open_args(kind, c->name[0],
			       KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL | flags);
	switch (kind) {
	case KPRIM_KIND_LIMITER:
		c->open.limiter.rate = 1;
		c->open.limiter.period_ns = HUGE_PERIOD;
		c->open.limiter.burst = 10;
		break;
	case KPRIM_KIND_SEM:
		c->open.sem.permits = 2;
		break;
	case KPRIM_KIND_CACHE:
		c->open.cache.max_bytes = 1 << 20;
		c->open.cache.max_entries = 128;
		break;
	}
}

static void s_open_lim(struct __test_metadata *_metadata, struct ctx *c)
{
	open_named_setup(_metadata, c, KPRIM_KIND_LIMITER, "olim", 0);
}

static void s_open_sem(struct __test_metadata *_metadata, struct ctx *c)
{
	open_named_setup(_metadata, c, KPRIM_KIND_SEM, "osem", 0);
}

static void s_open_cache(struct __test_metadata *_metadata, struct ctx *c)
{
	open_named_setup(_metadata, c, KPRIM_KIND_CACHE, "ocache", 0);
}

static void s_open_tsem(struct __test_metadata *_metadata, struct ctx *c)
{
	open_named_setup(_metadata, c, KPRIM_KIND_SEM, "otsem",
			 KPRIM_OPEN_TRANSIENT);
}

static void s_open_anon(struct __test_metadata *_metadata, struct ctx *c)
{
	c->open = kt_open_args(KPRIM_KIND_CACHE, NULL, KPRIM_OPEN_CREATE);
	c->open.cache.max_bytes = 1 << 16;
	c->open.cache.max_entries = 16;
}

/* Opens an existing sem by its name: fd[0] keeps it alive. */
static void s_open_existing(struct __test_metadata *_metadata, struct ctx *c)
{
	ASSERT_LE(0, mk(c, 0, KPRIM_KIND_SEM, "oexist", KPRIM_OPEN_TRANSIENT));
	c->open = kt_open_args(KPRIM_KIND_SEM, c->name[0], 0);
}

static long c_open(struct ctx *c)
{
	long ret = kt_open(c->sess, &c->open);

	if (ret >= 0)
		c->res_fd = ret;
	return ret;
}

/* A create that succeeded: the object is there, with its name. */
static void ok_open(struct __test_metadata *_metadata, struct ctx *c, long ret)
{
	struct snap s;
	int i, found = 0;

	ASSERT_EQ(0, list_all(c->sess, &s));
	for (i = 0; i < s.n; i++)
		if (s.o[i].name_len == c->open.name_len &&
		    !memcmp(s.o[i].name, c->name[0], c->open.name_len))
			found++;
	if (c->open.name_len)
		EXPECT_EQ(1, found);
	close_res(c);
	if (c->open.name_len && !(c->open.flags & KPRIM_OPEN_TRANSIENT) &&
	    (c->open.flags & KPRIM_OPEN_CREATE))
		EXPECT_EQ(0, kt_unlink(c->sess, c->kind[0], c->name[0]));
}

static void s_list(struct __test_metadata *_metadata, struct ctx *c)
{
	ASSERT_LE(0, mk(c, 0, KPRIM_KIND_LIMITER, NULL, 0));
	ASSERT_LE(0, mk(c, 1, KPRIM_KIND_SEM, "list", KPRIM_OPEN_TRANSIENT));
	ASSERT_LE(0, mk(c, 2, KPRIM_KIND_CACHE, NULL, 0));
	c->cache = 2;
}

static long c_list(struct ctx *c)
{
	memset(&c->list, 0, sizeof(c->list));
	c->list.size = sizeof(c->list);
	c->list.buf = (uintptr_t)c->lbuf;
	c->list.count = 8;
	c->list.entry_size = sizeof(c->lbuf[0]);
	return kt_ioctl(c->sess, KPRIM_IOC_LIST, &c->list);
}

static void ok_list(struct __test_metadata *_metadata, struct ctx *c, long ret)
{
	EXPECT_EQ(3, c->list.count);
}

/* The name to unlink exists (again) before each try. */
static void pre_unlink(struct __test_metadata *_metadata, struct ctx *c)
{
	int fd;

	c->kind[0] = KPRIM_KIND_LIMITER;
	snprintf(c->name[0], sizeof(c->name[0]), "ft-unlink-%d", getpid());
	c->open = kt_open_args(KPRIM_KIND_LIMITER, c->name[0],
			       KPRIM_OPEN_CREATE);
	c->open.limiter.rate = 1;
	c->open.limiter.period_ns = HUGE_PERIOD;
	c->open.limiter.burst = 1;
	fd = kt_open(c->sess, &c->open);
	ASSERT_LE(0, fd);
	close(fd);
	c->unlink = (struct kprim_unlink) {
		.size = sizeof(c->unlink), .kind = KPRIM_KIND_LIMITER,
		.name = (uintptr_t)c->name[0], .name_len = strlen(c->name[0]),
	};
}

static long c_unlink(struct ctx *c)
{
	return kt_ioctl(c->sess, KPRIM_IOC_UNLINK, &c->unlink);
}

static void ok_unlink(struct __test_metadata *_metadata, struct ctx *c,
		      long ret)
{
	struct snap s;

	ASSERT_EQ(0, list_all(c->sess, &s));
	EXPECT_EQ(0, s.n);	/* the persistent object went with its name */
	c->name[0][0] = '\0';
}

static long c_api(struct ctx *c)
{
	memset(&c->api, 0, sizeof(c->api));
	c->api.size = sizeof(c->api);
	return kt_ioctl(c->sess, KPRIM_IOC_API, &c->api);
}

static void ok_api(struct __test_metadata *_metadata, struct ctx *c, long ret)
{
	EXPECT_EQ(KPRIM_API_VERSION, c->api.api_version);
}

static const struct op session_ops[] = {
	{ "API", 0, 0, 0, NULL, NULL, NULL, c_api, NULL, ok_api, NULL },
	{ "OPEN create limiter", 1, 0, OP_FD | OP_NAME_FREE, s_open_lim, NULL,
	  NULL, c_open, NULL, ok_open, NULL },
	{ "OPEN create sem", 2, 0, OP_FD | OP_NAME_FREE, s_open_sem, NULL,
	  NULL, c_open, NULL, ok_open, NULL },
	{ "OPEN create cache (reservation)", 3, 0, OP_FD | OP_NAME_FREE,
	  s_open_cache, NULL, NULL, c_open, NULL, ok_open, NULL },
	{ "OPEN create transient sem", 2, 0, OP_FD | OP_NAME_FREE, s_open_tsem,
	  NULL, NULL, c_open, NULL, ok_open, NULL },
	{ "OPEN create anonymous cache", 3, 0, OP_FD, s_open_anon, NULL, NULL,
	  c_open, NULL, ok_open, NULL },
	{ "OPEN existing sem by name", 2, 0, OP_FD, s_open_existing, NULL,
	  NULL, c_open, NULL, ok_open, NULL },
	{ "LIST", 0, 0, 0, s_list, NULL, NULL, c_list, NULL, ok_list, NULL },
	{ "UNLINK", 0, 0, 0, NULL, pre_unlink, NULL, c_unlink, NULL,
	  ok_unlink, NULL },
};

/* Can this uid create an anonymous cache of @max_bytes? */
static int try_cache(int sess, __u64 max_bytes)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE);
	int fd;

	a.cache.max_bytes = max_bytes;
	a.cache.max_entries = 1;
	a.cache.max_value = 1;
	fd = kt_open(sess, &a);
	if (fd >= 0)
		close(fd);
	return fd < 0 ? fd : 0;
}

/* The largest cache the byte quota leaves room for, to the byte. */
static __u64 largest_cache(int sess)
{
	__u64 lo = 1, hi = 8 << 20;	/* lo fits, hi does not */

	if (try_cache(sess, lo))
		return 0;
	while (hi - lo > 1) {
		__u64 mid = lo + (hi - lo) / 2;

		if (try_cache(sess, mid))
			hi = mid;
		else
			lo = mid;
	}
	return lo;
}

/* Exactly @quota anonymous objects can be created, not one more. */
static void check_object_quota(struct __test_metadata *_metadata, int sess,
			       unsigned int quota)
{
	int fds[8], i;

	for (i = 0; i < (int)quota; i++) {
		struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, NULL,
						   KPRIM_OPEN_CREATE);

		a.sem.permits = 1;
		fds[i] = kt_open(sess, &a);
		EXPECT_LE(0, fds[i]) {
			TH_LOG("object %d of a quota of %u: %d (a failed call kept a charge)",
			       i + 1, quota, fds[i]);
		}
	}
	{
		struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, NULL,
						   KPRIM_OPEN_CREATE);

		a.sem.permits = 1;
		EXPECT_EQ(-EDQUOT, kt_open(sess, &a));
	}
	for (i = 0; i < (int)quota; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

TEST_F_TIMEOUT(fault, session, 240)
{
	struct snap s;
	__u64 big;
	size_t i;

	/* Byte quota: the largest cache that fits under 4 MiB, to the byte. */
	ASSERT_EQ(0, list_all(self->sess, &s));
	ASSERT_EQ(0, s.n);
	ASSERT_EQ(0, param_set("max_bytes_per_user", 4 << 20));
	big = largest_cache(self->sess);
	ASSERT_LT(0, big);

	for (i = 0; i < ARRAY_SIZE(session_ops); i++)
		drive(_metadata, self, &session_ops[i]);

	/* Nothing of ours is left, and no charge either. */
	ASSERT_EQ(0, list_all(self->sess, &s));
	EXPECT_EQ(0, s.n);
	EXPECT_EQ(0, try_cache(self->sess, big)) {
		TH_LOG("byte quota: a cache of %llu bytes fitted before the faults, not after",
		       (unsigned long long)big);
	}
	EXPECT_EQ(-EDQUOT, try_cache(self->sess, big + 1));
	ASSERT_EQ(0, param_set("max_objects_per_user", 3));
	check_object_quota(_metadata, self->sess, 3);
	totals_report(&self->t, "session (OPEN, LIST, UNLINK)");
}

/* ==== limiter ============================================================ */

static void s_lim(struct __test_metadata *_metadata, struct ctx *c)
{
	ASSERT_LE(0, mk(c, 0, KPRIM_KIND_LIMITER, "lim", KPRIM_OPEN_TRANSIENT));
}

static long c_take(struct ctx *c)
{
	c->take = (struct kprim_limiter_take) {
		.size = sizeof(c->take), .n = 1,
		.wait = kt_wait(0, KPRIM_NO_CANCEL_FD),
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_LIMITER_TAKE, &c->take);
}

/* A limiter with no token left: a try fails with -EAGAIN and retry_after. */
static void s_lim_empty(struct __test_metadata *_metadata, struct ctx *c)
{
	struct kprim_open a;

	c->kind[0] = KPRIM_KIND_LIMITER;
	snprintf(c->name[0], sizeof(c->name[0]), "ft-lime-%d", getpid());
	a = kt_open_args(KPRIM_KIND_LIMITER, c->name[0], KPRIM_OPEN_CREATE |
			 KPRIM_OPEN_TRANSIENT | KPRIM_OPEN_INITIAL);
	a.limiter.rate = 1;
	a.limiter.period_ns = HUGE_PERIOD;
	a.limiter.burst = 5;
	a.limiter.initial = 0;
	c->fd[0] = kt_open(c->sess, &a);
	ASSERT_LE(0, c->fd[0]);
}

static void ok_take_again(struct __test_metadata *_metadata, struct ctx *c,
			  long ret)
{
	EXPECT_LT(1000000000ull, c->take.retry_after_ns);
}

/* Refills one token every 20 ms, burst 1: a waiting take is granted by the timer. */
static void s_lim_fast(struct __test_metadata *_metadata, struct ctx *c)
{
	struct kprim_open a;

	c->kind[0] = KPRIM_KIND_LIMITER;
	snprintf(c->name[0], sizeof(c->name[0]), "ft-limf-%d", getpid());
	a = kt_open_args(KPRIM_KIND_LIMITER, c->name[0],
			 KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	a.limiter.rate = 1;
	a.limiter.period_ns = 20 * MSEC;
	a.limiter.burst = 1;
	c->fd[0] = kt_open(c->sess, &a);
	ASSERT_LE(0, c->fd[0]);
}

/* Empty the bucket before the snapshot: the take must wait for the timer. */
static void pre_drain(struct __test_metadata *_metadata, struct ctx *c)
{
	while (lim_take(c->fd[0], 1) == 0)
		;
}

static long c_take_wait(struct ctx *c)
{
	c->take = (struct kprim_limiter_take) {
		.size = sizeof(c->take), .n = 1,
		.wait = kt_wait(5000 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_LIMITER_TAKE, &c->take);
}

static long c_set(struct ctx *c)
{
	c->set = (struct kprim_limiter_set) {
		.size = sizeof(c->set), .flags = KPRIM_LIMITER_SET_RATE,
		.params = { .rate = 2, .period_ns = HUGE_PERIOD },
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_LIMITER_SET, &c->set);
}

static long c_linfo(struct ctx *c)
{
	memset(&c->linfo, 0, sizeof(c->linfo));
	c->linfo.size = sizeof(c->linfo);
	return kt_ioctl(c->fd[0], KPRIM_IOC_LIMITER_INFO, &c->linfo);
}

static void ok_linfo(struct __test_metadata *_metadata, struct ctx *c,
		     long ret)
{
	EXPECT_EQ(100, c->linfo.params.burst);
}

static const struct op limiter_ops[] = {
	{ "LIMITER_TAKE", 1, 0, 0, s_lim, NULL, NULL, c_take, NULL, NULL,
	  NULL },
	{ "LIMITER_TAKE short (-EAGAIN)", 1, -EAGAIN, 0, s_lim_empty, NULL,
	  NULL, c_take, NULL, ok_take_again, NULL },
	{ "LIMITER_TAKE waiting", 1, 0, OP_NO_TOKENS, s_lim_fast, pre_drain,
	  NULL, c_take_wait, NULL, NULL, NULL },
	{ "LIMITER_SET", 1, 0, 0, s_lim, NULL, NULL, c_set, NULL, NULL, NULL },
	{ "LIMITER_INFO", 1, 0, 0, s_lim, NULL, NULL, c_linfo, NULL, ok_linfo,
	  NULL },
};

TEST_F_TIMEOUT(fault, limiter, 240)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(limiter_ops); i++)
		drive(_metadata, self, &limiter_ops[i]);
	totals_report(&self->t, "limiter");
}

/* ==== semaphore ========================================================== */

/* fd[0]: the caller's; fd[1]: another fd of the same sem (a holder). */
static void s_sem(struct __test_metadata *_metadata, struct ctx *c)
{
	struct kprim_open a;

	ASSERT_LE(0, mk(c, 0, KPRIM_KIND_SEM, "sem", KPRIM_OPEN_TRANSIENT));
	a = kt_open_args(KPRIM_KIND_SEM, c->name[0], 0);
	c->fd[1] = kt_open(c->sess, &a);
	ASSERT_LE(0, c->fd[1]);
}

/* As s_sem with one permit: a second acquire must wait. */
static void s_sem1(struct __test_metadata *_metadata, struct ctx *c)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .permits = 1 };

	s_sem(_metadata, c);
	ASSERT_EQ(0, kt_ioctl(c->fd[0], KPRIM_IOC_SEM_RESIZE, &r));
}

static long c_acq(struct ctx *c)
{
	c->acq = (struct kprim_sem_acquire) {
		.size = sizeof(c->acq), .n = 1,
		.wait = kt_wait(0, KPRIM_NO_CANCEL_FD),
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_SEM_ACQUIRE, &c->acq);
}

static void ok_acq(struct __test_metadata *_metadata, struct ctx *c, long ret)
{
	EXPECT_EQ(1, sem_held_by(c->fd[0]));
	EXPECT_EQ(0, sem_rel(c->fd[0], 1));
}

/* fd[1] holds the only permit; the helper gives it back after 20 ms. */
static void prep_holder(struct __test_metadata *_metadata, struct ctx *c)
{
	helper_start(_metadata, c, c->fd[1]);
}

static void settle_helper(struct __test_metadata *_metadata, struct ctx *c)
{
	helper_join(c);
}

static long c_acq_wait(struct ctx *c)
{
	c->acq = (struct kprim_sem_acquire) {
		.size = sizeof(c->acq), .n = 1,
		.wait = kt_wait(5000 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_SEM_ACQUIRE, &c->acq);
}

/* fd[0] holds one permit to give back. */
static void pre_hold(struct __test_metadata *_metadata, struct ctx *c)
{
	if (sem_held_by(c->fd[0]) == 0)
		ASSERT_EQ(0, sem_acq(c->fd[0], 1, 0));
}

static long c_rel(struct ctx *c)
{
	c->rel = (struct kprim_sem_release) { .size = sizeof(c->rel), .n = 1 };
	return kt_ioctl(c->fd[0], KPRIM_IOC_SEM_RELEASE, &c->rel);
}

static void ok_rel(struct __test_metadata *_metadata, struct ctx *c, long ret)
{
	EXPECT_EQ(0, sem_held_by(c->fd[0]));
}

static long c_resize(struct ctx *c)
{
	c->resize = (struct kprim_sem_resize) {
		.size = sizeof(c->resize), .permits = 5,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_SEM_RESIZE, &c->resize);
}

/* fd[1] holds a permit, so INFO has a holder to report. */
static void s_sem_held(struct __test_metadata *_metadata, struct ctx *c)
{
	s_sem(_metadata, c);
	ASSERT_EQ(0, sem_acq(c->fd[1], 1, 0));
}

static long c_sinfo(struct ctx *c)
{
	memset(&c->sinfo, 0, sizeof(c->sinfo));
	memset(c->holders, 0, sizeof(c->holders));
	c->sinfo.size = sizeof(c->sinfo);
	c->sinfo.holders = (uintptr_t)c->holders;
	c->sinfo.nr_holders = 8;
	return kt_ioctl(c->fd[0], KPRIM_IOC_SEM_INFO, &c->sinfo);
}

static void ok_sinfo(struct __test_metadata *_metadata, struct ctx *c,
		     long ret)
{
	EXPECT_EQ(1, c->sinfo.nr_holders);
	EXPECT_EQ(getpid(), c->holders[0].pid);
	EXPECT_EQ(1, c->holders[0].held);
}

static const struct op sem_ops[] = {
	{ "SEM_ACQUIRE", 2, 0, 0, s_sem, NULL, NULL, c_acq, NULL, ok_acq,
	  NULL },
	{ "SEM_ACQUIRE waiting", 2, 0, OP_HELPER, s_sem1, NULL, prep_holder,
	  c_acq_wait, settle_helper, ok_acq, NULL },
	{ "SEM_RELEASE", 2, 0, 0, s_sem, pre_hold, NULL, c_rel, NULL, ok_rel,
	  NULL },
	{ "SEM_RESIZE", 2, 0, 0, s_sem, NULL, NULL, c_resize, NULL, NULL,
	  NULL },
	{ "SEM_INFO (holders)", 2, 0, 0, s_sem_held, NULL, NULL, c_sinfo,
	  NULL, ok_sinfo, NULL },
};

TEST_F_TIMEOUT(fault, sem, 240)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sem_ops); i++)
		drive(_metadata, self, &sem_ops[i]);
	totals_report(&self->t, "sem");
}

/* ==== cache ============================================================== */

/* A cache with k-small (inline), k-large (out of line), k-ctr = "41". */
static void pre_cache_keys(struct __test_metadata *_metadata, struct ctx *c)
{
	ASSERT_EQ(0, cache_set(c, "k-small", "small", 5));
	ASSERT_EQ(0, cache_set(c, "k-large", c->large, sizeof(c->large)));
	ASSERT_EQ(0, cache_set(c, "k-ctr", "41", 2));
	cache_del(c, "k-new");
	cache_del(c, "k-newctr");
}

static void s_cache(struct __test_metadata *_metadata, struct ctx *c)
{
	ASSERT_LE(0, mk(c, 0, KPRIM_KIND_CACHE, "cache", KPRIM_OPEN_TRANSIENT));
	c->cache = 0;
	memset(c->large, 'L', sizeof(c->large));
	pre_cache_keys(_metadata, c);
}

static long c_store_new(struct ctx *c)
{
	c->store = (struct kprim_cache_store) {
		.size = sizeof(c->store), .key = (uintptr_t)"k-new",
		.key_len = 5, .op = KPRIM_CACHE_ADD,
		.value = (uintptr_t)"fresh", .value_len = 5,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_STORE, &c->store);
}

static long c_store_large(struct ctx *c)
{
	memset(c->value, 'N', sizeof(c->large));
	c->store = (struct kprim_cache_store) {
		.size = sizeof(c->store), .key = (uintptr_t)"k-large",
		.key_len = 7, .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)c->value, .value_len = sizeof(c->large),
		.flags = KPRIM_CACHE_TTL, .ttl_ns = 3600ull * 1000000000ull,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_STORE, &c->store);
}

static void ok_store(struct __test_metadata *_metadata, struct ctx *c,
		     long ret)
{
	EXPECT_NE(0, c->store.cas);
}

static long c_get(struct ctx *c)
{
	memset(c->value, 0, sizeof(c->value));
	c->get = (struct kprim_cache_get) {
		.size = sizeof(c->get), .key = (uintptr_t)"k-large",
		.key_len = 7, .value = (uintptr_t)c->value,
		.value_len = sizeof(c->value),
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_GET, &c->get);
}

static void ok_get(struct __test_metadata *_metadata, struct ctx *c, long ret)
{
	EXPECT_EQ(sizeof(c->large), c->get.value_len);
	EXPECT_EQ(0, memcmp(c->value, c->large, sizeof(c->large)));
}

static long c_mget(struct ctx *c)
{
	static const char *const keys[3] = { "k-small", "k-absent", "k-ctr" };
	int i;

	memset(c->ment, 0, sizeof(c->ment));
	for (i = 0; i < 3; i++) {
		c->ment[i].key = (uintptr_t)keys[i];
		c->ment[i].key_len = strlen(keys[i]);
		c->ment[i].value = (uintptr_t)c->mval[i];
		c->ment[i].value_len = sizeof(c->mval[i]);
	}
	c->mget = (struct kprim_cache_mget) {
		.size = sizeof(c->mget), .entries = (uintptr_t)c->ment,
		.count = 3, .entry_size = sizeof(c->ment[0]),
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_MGET, &c->mget);
}

static void ok_mget(struct __test_metadata *_metadata, struct ctx *c,
		    long ret)
{
	EXPECT_EQ(0, c->ment[0].result);
	EXPECT_EQ(-ENOENT, c->ment[1].result);
	EXPECT_EQ(0, c->ment[2].result);
}

/* A key whose value buffer could not be written reports it in its result. */
static bool mget_fault_ok(struct ctx *c, long ret)
{
	int i, efault = 0, found = 0;

	if (ret < 0)
		return false;
	for (i = 0; i < 3; i++) {
		efault += c->ment[i].result == -EFAULT;
		found += c->ment[i].result == 0;
	}
	return efault == 1 && ret == found;
}

static long c_incr(struct ctx *c)
{
	c->incr = (struct kprim_cache_incr) {
		.size = sizeof(c->incr), .key = (uintptr_t)"k-ctr",
		.key_len = 5, .delta = 1,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_INCR, &c->incr);
}

static void ok_incr(struct __test_metadata *_metadata, struct ctx *c,
		    long ret)
{
	EXPECT_EQ(42, c->incr.value);
	/* Back to 41 for a try after an absorbed fault. */
	EXPECT_EQ(0, cache_set(c, "k-ctr", "41", 2));
}

static long c_incr_create(struct ctx *c)
{
	c->incr = (struct kprim_cache_incr) {
		.size = sizeof(c->incr), .key = (uintptr_t)"k-newctr",
		.key_len = 8, .delta = 1, .initial = 7,
		.flags = KPRIM_CACHE_INCR_CREATE,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_INCR, &c->incr);
}

static void ok_incr_create(struct __test_metadata *_metadata, struct ctx *c,
			   long ret)
{
	EXPECT_EQ(7, c->incr.value);
	EXPECT_EQ(0, cache_del(c, "k-newctr"));
}

static long c_touch(struct ctx *c)
{
	c->key = (struct kprim_cache_key) {
		.size = sizeof(c->key), .key = (uintptr_t)"k-small",
		.key_len = 7, .ttl_ns = 3600ull * 1000000000ull,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_TOUCH, &c->key);
}

static long c_delete(struct ctx *c)
{
	c->key = (struct kprim_cache_key) {
		.size = sizeof(c->key), .key = (uintptr_t)"k-small",
		.key_len = 7,
	};
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_DELETE, &c->key);
}

static long c_flush(struct ctx *c)
{
	c->hdr = (struct kprim_hdr) { .size = sizeof(c->hdr) };
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_FLUSH, &c->hdr);
}

static void ok_flush(struct __test_metadata *_metadata, struct ctx *c,
		     long ret)
{
	struct kprim_cache_info i = { .size = sizeof(i) };

	ASSERT_EQ(0, kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_INFO, &i));
	EXPECT_EQ(0, i.entries);
}

static long c_cinfo(struct ctx *c)
{
	memset(&c->cinfo, 0, sizeof(c->cinfo));
	c->cinfo.size = sizeof(c->cinfo);
	return kt_ioctl(c->fd[0], KPRIM_IOC_CACHE_INFO, &c->cinfo);
}

static void ok_cinfo(struct __test_metadata *_metadata, struct ctx *c,
		     long ret)
{
	EXPECT_EQ(3, c->cinfo.entries);
}

static const struct op cache_ops[] = {
	{ "CACHE_STORE add (inline)", 3, 0, 0, s_cache, pre_cache_keys, NULL,
	  c_store_new, NULL, ok_store, NULL },
	{ "CACHE_STORE set (6000 B, TTL)", 3, 0, 0, s_cache, pre_cache_keys,
	  NULL, c_store_large, NULL, ok_store, NULL },
	{ "CACHE_GET (6000 B)", 3, 0, 0, s_cache, NULL, NULL, c_get, NULL,
	  ok_get, NULL },
	{ "CACHE_MGET (3 keys)", 3, 2, 0, s_cache, NULL, NULL, c_mget, NULL,
	  ok_mget, mget_fault_ok },
	{ "CACHE_INCR", 3, 0, 0, s_cache, pre_cache_keys, NULL, c_incr, NULL,
	  ok_incr, NULL },
	{ "CACHE_INCR create", 3, 0, 0, s_cache, pre_cache_keys, NULL,
	  c_incr_create, NULL, ok_incr_create, NULL },
	{ "CACHE_TOUCH", 3, 0, 0, s_cache, NULL, NULL, c_touch, NULL, NULL,
	  NULL },
	{ "CACHE_DELETE", 3, 0, 0, s_cache, pre_cache_keys, NULL, c_delete,
	  NULL, NULL, NULL },
	{ "CACHE_FLUSH", 3, 0, 0, s_cache, pre_cache_keys, NULL, c_flush,
	  NULL, ok_flush, NULL },
	{ "CACHE_INFO", 3, 0, 0, s_cache, NULL, NULL, c_cinfo, NULL, ok_cinfo,
	  NULL },
};

TEST_F_TIMEOUT(fault, cache, 240)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cache_ops); i++)
		drive(_metadata, self, &cache_ops[i]);
	totals_report(&self->t, "cache");
}

/* ==== io_uring =========================================================== */

static void prep_ring(struct __test_metadata *_metadata, struct ctx *c)
{
	ring_up(_metadata, c);
}

static void settle_ring(struct __test_metadata *_metadata, struct ctx *c)
{
	ring_down(c);
	helper_join(c);
}

static void prep_ring_holder(struct __test_metadata *_metadata, struct ctx *c)
{
	ring_up(_metadata, c);
	helper_start(_metadata, c, c->fd[1]);
}

/* Waits through io_uring: queued without a thread, granted by the timer. */
static long u_take_wait(struct ctx *c)
{
	c->take = (struct kprim_limiter_take) {
		.size = sizeof(c->take), .n = 1,
		.wait = kt_wait(5000 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return uring_call(c, c->fd[0], KPRIM_IOC_LIMITER_TAKE, &c->take);
}

/* A take that times out: its completion writes retry_after_ns. */
static long u_take_timeout(struct ctx *c)
{
	c->take = (struct kprim_limiter_take) {
		.size = sizeof(c->take), .n = 1,
		.wait = kt_wait(10 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return uring_call(c, c->fd[0], KPRIM_IOC_LIMITER_TAKE, &c->take);
}

/* Tokens available: set up to wait, granted at once. */
static long u_take_now(struct ctx *c)
{
	c->take = (struct kprim_limiter_take) {
		.size = sizeof(c->take), .n = 1,
		.wait = kt_wait(5000 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return uring_call(c, c->fd[0], KPRIM_IOC_LIMITER_TAKE, &c->take);
}

static long u_acq_wait(struct ctx *c)
{
	c->acq = (struct kprim_sem_acquire) {
		.size = sizeof(c->acq), .n = 1,
		.wait = kt_wait(5000 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return uring_call(c, c->fd[0], KPRIM_IOC_SEM_ACQUIRE, &c->acq);
}

/* fd[1] holds the only permit for good: the acquire times out. */
static void s_sem1_held(struct __test_metadata *_metadata, struct ctx *c)
{
	s_sem1(_metadata, c);
	ASSERT_EQ(0, sem_acq(c->fd[1], 1, 0));
}

static long u_acq_timeout(struct ctx *c)
{
	c->acq = (struct kprim_sem_acquire) {
		.size = sizeof(c->acq), .n = 1,
		.wait = kt_wait(10 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	return uring_call(c, c->fd[0], KPRIM_IOC_SEM_ACQUIRE, &c->acq);
}

static long u_get(struct ctx *c)
{
	memset(c->value, 0, sizeof(c->value));
	c->get = (struct kprim_cache_get) {
		.size = sizeof(c->get), .key = (uintptr_t)"k-large",
		.key_len = 7, .value = (uintptr_t)c->value,
		.value_len = sizeof(c->value),
	};
	return uring_call(c, c->fd[0], KPRIM_IOC_CACHE_GET, &c->get);
}

/* Reap CQEs until @tag's; remembers the queued wait's (tag 1) on the way. */
static long reap_tag(struct ctx *c, __u64 tag)
{
	struct __kernel_timespec ts = { .tv_sec = 10 };
	struct io_uring_cqe *cqe;
	int ret, tries = 0;
	__u64 got;

	for (;;) {
		ret = io_uring_wait_cqe_timeout(&c->ring, &cqe, &ts);
		if (ret == -EFAULT || ret == -ENOMEM || ret == -EINTR ||
		    ret == -EAGAIN) {
			if (++tries < 5)
				continue;
		}
		if (ret)
			return -ETIME;
		got = cqe->user_data;
		ret = cqe->res;
		io_uring_cqe_seen(&c->ring, cqe);
		if (got == 1) {
			c->waiter_done = true;
			c->waiter_res = ret;
		}
		if (got == tag)
			return ret;
	}
}

static void prep_sqe(struct ctx *c, int fd, unsigned int cmd, void *arg,
		     __u64 tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = cmd;
	sqe->addr3 = (uintptr_t)arg;
	sqe->user_data = tag;
}

/* An acquire (tag 1) queued through the ring, for WAIT_CANCEL to end. */
static void prep_queued(struct __test_metadata *_metadata, struct ctx *c)
{
	ring_up(_metadata, c);
	c->waiter_done = false;
	c->acq = (struct kprim_sem_acquire) {
		.size = sizeof(c->acq), .n = 1,
		.wait = kt_wait(5000 * MSEC, KPRIM_NO_CANCEL_FD),
	};
	prep_sqe(c, c->fd[0], KPRIM_IOC_SEM_ACQUIRE, &c->acq, 1);
	ASSERT_EQ(1, io_uring_submit(&c->ring));
}

static long u_wait_cancel(struct ctx *c)
{
	int ret;

	c->wcancel = (struct kprim_wait_cancel) {
		.size = sizeof(c->wcancel), .user_data = 1,
	};
	prep_sqe(c, c->fd[0], KPRIM_IOC_WAIT_CANCEL, &c->wcancel, 2);
	c->cancel_res = -EPROTO;
	c->stage = 1;
	ret = io_uring_submit(&c->ring);
	if (ret != 1)
		return ret < 0 ? ret : -EPROTO;
	c->stage = 2;
	c->cancel_res = reap_tag(c, 2);
	return c->cancel_res;
}

/* Whatever the cancel did, the wait ends before the state is compared. */
static void settle_queued(struct __test_metadata *_metadata, struct ctx *c)
{
	/* Ended by the cancel: its CQE may come after the cancel's own. */
	if (!c->waiter_done && c->cancel_res == 1)
		reap_tag(c, 1);
	if (!c->waiter_done) {
		long ret;

		/* The cancel failed: the wait is still queued. End it. */
		if (c->stage == 1 && io_uring_sq_ready(&c->ring)) {
			/* io_uring refused the SQE: it is still in the ring. */
			io_uring_submit(&c->ring);
			ret = reap_tag(c, 2);
		} else {
			ret = u_wait_cancel(c);
		}
		EXPECT_EQ(1, ret);
		if (!c->waiter_done)
			reap_tag(c, 1);
	}
	EXPECT_TRUE(c->waiter_done);
	EXPECT_EQ(-ECANCELED, c->waiter_res);
	ring_down(c);
}

static const struct op uring_ops[] = {
	{ "uring WAIT_CANCEL", 2, 1, OP_URING, s_sem1_held, NULL, prep_queued,
	  u_wait_cancel, settle_queued, NULL, NULL },
	{ "uring LIMITER_TAKE waiting", 1, 0, OP_URING | OP_NO_TOKENS,
	  s_lim_fast, pre_drain, prep_ring, u_take_wait, settle_ring, NULL,
	  NULL },
	{ "uring LIMITER_TAKE timing out", 1, -ETIMEDOUT, OP_URING,
	  s_lim_empty, NULL, prep_ring, u_take_timeout, settle_ring,
	  ok_take_again, NULL },
	{ "uring LIMITER_TAKE granted at once", 1, 0, OP_URING, s_lim, NULL,
	  prep_ring, u_take_now, settle_ring, NULL, NULL },
	{ "uring SEM_ACQUIRE waiting", 2, 0, OP_URING | OP_HELPER, s_sem1, NULL,
	  prep_ring_holder, u_acq_wait, settle_ring, ok_acq, NULL },
	{ "uring SEM_ACQUIRE timing out", 2, -ETIMEDOUT, OP_URING,
	  s_sem1_held, NULL, prep_ring, u_acq_timeout, settle_ring, NULL,
	  NULL },
	{ "uring CACHE_GET (6000 B)", 3, 0, OP_URING, s_cache, NULL,
	  prep_ring, u_get, settle_ring, ok_get, NULL },
};

TEST_F_TIMEOUT(fault, uring, 240)
{
	struct io_uring probe;
	size_t i;

	if (io_uring_queue_init(2, &probe, 0))
		SKIP(return, "io_uring not available");
	io_uring_queue_exit(&probe);
	for (i = 0; i < ARRAY_SIZE(uring_ops); i++)
		drive(_metadata, self, &uring_ops[i]);
	totals_report(&self->t, "io_uring");
}

/* ==== the figures ======================================================== */

TEST_F(fault, totals)
{
	unsigned long v[12], sum[12] = { 0 };
	int i, lines = 0;
	FILE *f;

	ASSERT_EQ(0, seteuid(0));
	f = fopen(FT_TOTALS, "r");

	if (!f)
		SKIP(return, "no figures (%s: %s)", FT_TOTALS, strerror(errno));
	while (fscanf(f, "%lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu %lu",
		      &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
		      &v[8], &v[9], &v[10], &v[11]) == 12) {
		for (i = 0; i < 12; i++)
			sum[i] += v[i];
		lines++;
	}
	fclose(f);
	unlink(FT_TOTALS);
	ASSERT_LT(0, lines);
	printf("# fault injection totals: %lu calls, %lu faults injected, %lu distinct (call, N) failure points\n",
	       sum[0], sum[1], sum[11]);
	printf("#   faults by kind: slab %lu, page %lu, usercopy %lu; %lu calls failed cleanly, %lu faults absorbed by a fallback\n",
	       sum[4], sum[5], sum[6], sum[2], sum[3]);
	printf("#   distinct points by object kind: %s %lu, %s %lu, %s %lu, %s %lu\n",
	       kind_name[0], sum[7], kind_name[1], sum[8], kind_name[2],
	       sum[9], kind_name[3], sum[10]);
	EXPECT_LT(0, sum[1]);
}

TEST_HARNESS_MAIN
