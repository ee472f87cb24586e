// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for kprim's tracepoints (events/kprim/ in tracefs).
 *
 * Each test enables the kprim events, clears the trace buffer, runs
 * operations whose outcome it knows on fresh objects, then reads the
 * "trace" file and checks that each event appears for the object's id
 * (as fdinfo reports it) with the right fields, the wait times within
 * what the test measured around the call.
 *
 * A kernel without event tracing (no available_events in tracefs, or no
 * tracefs at all) skips; a kernel that has it must have the kprim events.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_uring.h"

#define MS		1000000ull
#define INF		KPRIM_TIMEOUT_INFINITE
#define NOCANCEL	KPRIM_NO_CANCEL_FD
/* How long the tests keep a request queued. */
#define QUEUED_NS	(200 * MS)
/* Slack for the time between the wait's start and its queueing. */
#define START_SLACK_NS	(5 * MS)

static const char *const tracing_dirs[] = {
	"/sys/kernel/tracing", "/sys/kernel/debug/tracing",
};

static bool has_file(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/*
 * The tracefs directory with event tracing (mounted here if need be), or
 * NULL with *why saying what the kernel lacks.
 */
static const char *tracing_dir(const char **why)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(tracing_dirs); i++)
		if (has_file(tracing_dirs[i], "available_events"))
			return tracing_dirs[i];
	if (mount("tracefs", tracing_dirs[0], "tracefs", 0, NULL) &&
	    errno != EBUSY) {
		*why = errno == ENODEV || errno == ENOENT ?
		       "the kernel has no tracefs (CONFIG_TRACING off)" :
		       "tracefs cannot be mounted";
		return NULL;
	}
	if (has_file(tracing_dirs[0], "available_events"))
		return tracing_dirs[0];
	*why = "the kernel has tracefs but no event tracing (CONFIG_EVENT_TRACING off)";
	return NULL;
}

static int write_file(const char *dir, const char *name, const char *s,
		      int flags)
{
	char path[512];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC | flags);
	if (fd < 0)
		return -errno;
	if (s[0] && write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		ret = -errno;
	close(fd);
	return ret;
}

/* The whole trace buffer as text (free() it); NULL on failure. */
static char *read_trace(const char *dir)
{
	char path[512];
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/trace", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !buf) {
		free(buf);
		return NULL;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				break;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	if (buf)
		buf[len] = 0;
	return buf;
}

/* The object id fdinfo reports for an object fd. */
static uint64_t obj_id(int fd)
{
	char path[64], line[256];
	uint64_t id = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "kprim-id: %" SCNu64, &id) == 1)
			break;
	fclose(f);
	return id;
}

/* One parsed event line: its name and up to 8 key=value fields. */
struct ev {
	char name[32];
	int nr;
	char key[8][16];
	char val[8][24];
};

/* Parses "...: kprim_x: id=1 n=2 ..." lines; false for other lines. */
static bool parse_event(const char *line, const char *end, struct ev *ev)
{
	char text[512], *p, *tok, *save;
	size_t len = end - line;

	if (len >= sizeof(text))
		len = sizeof(text) - 1;
	memcpy(text, line, len);
	text[len] = 0;
	p = strstr(text, ": kprim_");
	if (!p || text[0] == '#')
		return false;
	p += 2;
	tok = strchr(p, ':');
	if (!tok)
		return false;
	*tok = 0;
	snprintf(ev->name, sizeof(ev->name), "%s", p);
	ev->nr = 0;
	for (tok = strtok_r(tok + 1, " ", &save); tok && ev->nr < 8;
	     tok = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq)
			continue;
		*eq = 0;
		snprintf(ev->key[ev->nr], sizeof(ev->key[0]), "%s", tok);
		snprintf(ev->val[ev->nr], sizeof(ev->val[0]), "%s", eq + 1);
		ev->nr++;
	}
	return true;
}

static const char *ev_get(const struct ev *ev, const char *key)
{
	int i;

	for (i = 0; i < ev->nr; i++)
		if (!strcmp(ev->key[i], key))
			return ev->val[i];
	return NULL;
}

static uint64_t ev_u64(const struct ev *ev, const char *key)
{
	const char *v = ev_get(ev, key);

	return v ? strtoull(v, NULL, 0) : UINT64_MAX;
}

/*
 * The events of object @id in trace order, at most @max; returns how
 * many. Each must carry the id field (all kprim events do).
 */
static int events_of(const char *trace, uint64_t id, struct ev *out, int max)
{
	const char *line = trace, *end;
	struct ev ev;
	int n = 0;

	for (; *line && n < max; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		if (!parse_event(line, end, &ev))
			continue;
		if (ev_u64(&ev, "id") == id)
			out[n++] = ev;
	}
	return n;
}

/*
 * Does @ev match @name and the "key=value" pairs in the NULL-terminated
 * list (values compared as text)?
 */
static bool ev_is(const struct ev *ev, const char *name, ...)
{
	const char *kv;
	bool ok = !strcmp(ev->name, name);
	va_list ap;

	va_start(ap, name);
	while (ok && (kv = va_arg(ap, const char *))) {
		const char *eq = strchr(kv, '='), *v;

		v = ev_get(ev, eq ? strndupa(kv, eq - kv) : kv);
		ok = v && eq && !strcmp(v, eq + 1);
	}
	va_end(ap);
	return ok;
}

static void ev_dump(struct __test_metadata *_metadata, const struct ev *evs,
		    int n)
{
	int i, j;

	for (i = 0; i < n; i++) {
		char line[300];
		int len = snprintf(line, sizeof(line), "  %s:", evs[i].name);

		for (j = 0; j < evs[i].nr && len < (int)sizeof(line); j++)
			len += snprintf(line + len, sizeof(line) - len,
					" %s=%s", evs[i].key[j], evs[i].val[j]);
		TH_LOG("%s", line);
	}
}

/* ---- object helpers ------------------------------------------------------ */

static int limiter_new(int sess, __u64 rate, __u64 period_ns, __u64 burst)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);

	a.limiter.rate = rate;
	a.limiter.period_ns = period_ns;
	a.limiter.burst = burst;
	return kt_open(sess, &a);
}

static long limiter_take(int fd, __u64 n, __u64 timeout_ns)
{
	struct kprim_limiter_take t = {
		.size = sizeof(t), .n = n,
		.wait = kt_wait(timeout_ns, NOCANCEL),
	};

	return kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t);
}

/* A named semaphore (so a second fd is a second holder). */
static int sem_new(int sess, const char *name, __u64 permits)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
					   KPRIM_OPEN_TRANSIENT |
					   KPRIM_OPEN_CLOEXEC);

	a.sem.permits = permits;
	return kt_open(sess, &a);
}

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

static __u64 sem_waiters(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	return kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i) ? UINT64_MAX : i.waiters;
}

/* Until the semaphore has @n waiters (false after 10 s). */
static bool sem_wait_waiters(int fd, __u64 n)
{
	int i;

	for (i = 0; i < 10000; i++) {
		if (sem_waiters(fd) == n)
			return true;
		usleep(1000);
	}
	return false;
}

static int cache_new(int sess, __u64 max_entries)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, NULL,
					   KPRIM_OPEN_CREATE |
					   KPRIM_OPEN_CLOEXEC);

	a.cache.max_entries = max_entries;
	return kt_open(sess, &a);
}

static long cache_set(int fd, const char *key, const char *val,
		      __u64 ttl_ns)
{
	struct kprim_cache_store s = {
		.size = sizeof(s), .key = (uintptr_t)key,
		.key_len = strlen(key), .op = KPRIM_CACHE_SET,
		.value = (uintptr_t)val, .value_len = strlen(val),
		.flags = ttl_ns ? KPRIM_CACHE_TTL : 0, .ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_STORE, &s);
}

static long cache_get(int fd, const char *key)
{
	char buf[64];
	struct kprim_cache_get g = {
		.size = sizeof(g), .key = (uintptr_t)key,
		.key_len = strlen(key), .value = (uintptr_t)buf,
		.value_len = sizeof(buf),
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_GET, &g);
}

static long cache_touch(int fd, const char *key, __u64 ttl_ns)
{
	struct kprim_cache_key k = {
		.size = sizeof(k), .key = (uintptr_t)key,
		.key_len = strlen(key), .ttl_ns = ttl_ns,
	};

	return kt_ioctl(fd, KPRIM_IOC_CACHE_TOUCH, &k);
}

static long cache_info(int fd, struct kprim_cache_info *i)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	return kt_ioctl(fd, KPRIM_IOC_CACHE_INFO, i);
}

/* A blocking acquire run by a thread, timed. */
struct waiter {
	pthread_t thread;
	int fd;
	__u64 timeout_ns;
	int cancel_fd;
	long ret;
	uint64_t took_ns;
};

static void *waiter_fn(void *arg)
{
	struct waiter *w = arg;
	uint64_t t0 = kt_now_ns();

	w->ret = sem_acquire(w->fd, 1, w->timeout_ns, w->cancel_fd);
	w->took_ns = kt_now_ns() - t0;
	return NULL;
}

static void noop_handler(int sig)
{
	(void)sig;
}

/* ---- the fixture -------------------------------------------------------- */

FIXTURE(trace) {
	const char *dir;
	int sess;
	bool enabled;
	char *trace;
};

FIXTURE_SETUP(trace)
{
	const char *why = "";
	char events[300];

	self->trace = NULL;
	self->enabled = false;
	self->sess = kt_session();
	ASSERT_LE(0, self->sess) TH_LOG("open %s: %s", KT_DEV, strerror(errno));
	self->dir = tracing_dir(&why);
	if (!self->dir)
		SKIP(return, "%s: nothing to trace into", why);
	snprintf(events, sizeof(events), "%s/events/kprim", self->dir);
	/* A kernel with event tracing must show the module's events. */
	ASSERT_EQ(0, access(events, F_OK))
		TH_LOG("%s has event tracing but no %s", self->dir, events);
	ASSERT_EQ(0, write_file(self->dir, "tracing_on", "1", 0));
	/* Opening "trace" with O_TRUNC clears the buffer. */
	ASSERT_EQ(0, write_file(self->dir, "trace", "", O_TRUNC));
	ASSERT_EQ(0, write_file(self->dir, "events/kprim/enable", "1", 0));
	self->enabled = true;
}

FIXTURE_TEARDOWN(trace)
{
	if (self->enabled)
		EXPECT_EQ(0, write_file(self->dir, "events/kprim/enable", "0",
					0));
	free(self->trace);
	close(self->sess);
}

/* Reads the trace into self->trace and collects object @id's events. */
#define EVENTS(id, evs)							\
	({								\
		int __n;						\
		free(self->trace);					\
		self->trace = read_trace(self->dir);			\
		ASSERT_NE(NULL, self->trace);				\
		__n = events_of(self->trace, (id), (evs),		\
				ARRAY_SIZE(evs));			\
		ev_dump(_metadata, (evs), __n);				\
		__n;							\
	})

/* Every event of the module is listed and can be enabled. */
TEST_F(trace, events_listed)
{
	static const char *const names[] = {
		"kprim_limiter_take", "kprim_sem_acquire", "kprim_sem_release",
		"kprim_wait_grant", "kprim_wait_end", "kprim_cache_access",
		"kprim_cache_evict",
	};
	char path[300];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "events/kprim/%s/format",
			 names[i]);
		EXPECT_TRUE(has_file(self->dir, path)) TH_LOG("%s", path);
	}
}

/* A take granted at once, one refused without waiting, one too large. */
TEST_F(trace, limiter_take_granted_refused_invalid)
{
	struct ev evs[8];
	uint64_t id;
	int fd, n;

	fd = limiter_new(self->sess, 1, 3600000 * MS, 2);
	ASSERT_LE(0, fd);
	id = obj_id(fd);
	ASSERT_NE(0, id);
	EXPECT_EQ(0, limiter_take(fd, 2, 0));
	EXPECT_EQ(-EAGAIN, limiter_take(fd, 1, 0));
	EXPECT_EQ(-EINVAL, limiter_take(fd, 3, 0));

	n = EVENTS(id, evs);
	ASSERT_EQ(3, n);
	EXPECT_TRUE(ev_is(&evs[0], "kprim_limiter_take", "n=2",
			  "result=granted", "async=0", NULL));
	EXPECT_TRUE(ev_is(&evs[1], "kprim_limiter_take", "n=1",
			  "result=refused", "async=0", NULL));
	EXPECT_TRUE(ev_is(&evs[2], "kprim_limiter_take", "n=3",
			  "result=invalid", "async=0", NULL));
	close(fd);
}

/* A take queued until its timeout: queued, then timed out after it. */
TEST_F(trace, limiter_take_timed_out)
{
	struct ev evs[8];
	uint64_t id, t0, took, waited;
	int fd, n;

	fd = limiter_new(self->sess, 1, 3600000 * MS, 1);
	ASSERT_LE(0, fd);
	id = obj_id(fd);
	EXPECT_EQ(0, limiter_take(fd, 1, 0));
	t0 = kt_now_ns();
	EXPECT_EQ(-ETIMEDOUT, limiter_take(fd, 1, QUEUED_NS));
	took = kt_now_ns() - t0;

	n = EVENTS(id, evs);
	ASSERT_EQ(3, n);
	EXPECT_TRUE(ev_is(&evs[0], "kprim_limiter_take", "result=granted",
			  NULL));
	EXPECT_TRUE(ev_is(&evs[1], "kprim_limiter_take", "n=1",
			  "result=queued", "async=0", NULL));
	EXPECT_TRUE(ev_is(&evs[2], "kprim_wait_end", "kind=limiter", "n=1",
			  "result=timed_out", "async=0", NULL));
	waited = ev_u64(&evs[2], "waited_ns");
	EXPECT_LE(QUEUED_NS - START_SLACK_NS, waited);
	EXPECT_GE(took, waited);
	close(fd);
}

/*
 * A semaphore acquire queued behind a holder and granted when the holder
 * releases: the grant's wait time is the time the test kept it queued.
 * Closing the fd that got it gives its permit back (a release event too).
 */
TEST_F(trace, sem_queued_then_granted)
{
	struct waiter w = { .timeout_ns = INF, .cancel_fd = NOCANCEL };
	char name[64];
	struct ev evs[8];
	uint64_t id, waited;
	int fd, n;

	KT_NAME(name, "trace");
	fd = sem_new(self->sess, name, 1);
	ASSERT_LE(0, fd);
	w.fd = sem_reopen(self->sess, name);
	ASSERT_LE(0, w.fd);
	id = obj_id(fd);
	ASSERT_EQ(id, obj_id(w.fd));
	ASSERT_EQ(0, sem_acquire(fd, 1, 0, NOCANCEL));
	ASSERT_EQ(0, pthread_create(&w.thread, NULL, waiter_fn, &w));
	ASSERT_TRUE(sem_wait_waiters(fd, 1));
	usleep(QUEUED_NS / 1000);
	EXPECT_EQ(0, sem_release(fd, 1));
	pthread_join(w.thread, NULL);
	EXPECT_EQ(0, w.ret);
	close(w.fd);

	n = EVENTS(id, evs);
	ASSERT_EQ(5, n);
	EXPECT_TRUE(ev_is(&evs[0], "kprim_sem_acquire", "n=1",
			  "result=granted", "async=0", NULL));
	EXPECT_TRUE(ev_is(&evs[1], "kprim_sem_acquire", "n=1",
			  "result=queued", "async=0", NULL));
	EXPECT_TRUE(ev_is(&evs[2], "kprim_sem_release", "n=1", "held=0",
			  NULL));
	EXPECT_TRUE(ev_is(&evs[3], "kprim_wait_grant", "kind=sem", "n=1",
			  "result=granted", "async=0", NULL));
	waited = ev_u64(&evs[3], "waited_ns");
	EXPECT_LE(QUEUED_NS, waited);
	EXPECT_GE(w.took_ns, waited);
	/* The close of the fd the permit went to. */
	EXPECT_TRUE(ev_is(&evs[4], "kprim_sem_release", "n=1", "held=0",
			  NULL));
	close(fd);
}

/* A queued acquire whose cancel eventfd fires. */
TEST_F(trace, sem_wait_cancelled)
{
	struct waiter w = { .timeout_ns = INF };
	char name[64];
	struct ev evs[8];
	uint64_t id, waited;
	int fd, n;

	KT_NAME(name, "trace");
	fd = sem_new(self->sess, name, 1);
	ASSERT_LE(0, fd);
	w.fd = sem_reopen(self->sess, name);
	ASSERT_LE(0, w.fd);
	w.cancel_fd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, w.cancel_fd);
	id = obj_id(fd);
	ASSERT_EQ(0, sem_acquire(fd, 1, 0, NOCANCEL));
	ASSERT_EQ(0, pthread_create(&w.thread, NULL, waiter_fn, &w));
	ASSERT_TRUE(sem_wait_waiters(fd, 1));
	usleep(QUEUED_NS / 1000);
	ASSERT_EQ(0, eventfd_write(w.cancel_fd, 1));
	pthread_join(w.thread, NULL);
	EXPECT_EQ(-ECANCELED, w.ret);

	n = EVENTS(id, evs);
	ASSERT_EQ(3, n);
	EXPECT_TRUE(ev_is(&evs[1], "kprim_sem_acquire", "result=queued",
			  NULL));
	EXPECT_TRUE(ev_is(&evs[2], "kprim_wait_end", "kind=sem", "n=1",
			  "result=cancelled", "async=0", NULL));
	waited = ev_u64(&evs[2], "waited_ns");
	EXPECT_LE(QUEUED_NS, waited);
	EXPECT_GE(w.took_ns, waited);
	close(w.cancel_fd);
	close(w.fd);
	close(fd);
}

/* A queued acquire a signal ends (a handler without SA_RESTART). */
TEST_F(trace, sem_wait_interrupted)
{
	struct waiter w = { .timeout_ns = INF, .cancel_fd = NOCANCEL };
	struct sigaction sa = { .sa_handler = noop_handler };
	char name[64];
	struct ev evs[8];
	uint64_t id;
	int fd, n;

	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	KT_NAME(name, "trace");
	fd = sem_new(self->sess, name, 1);
	ASSERT_LE(0, fd);
	w.fd = sem_reopen(self->sess, name);
	ASSERT_LE(0, w.fd);
	id = obj_id(fd);
	ASSERT_EQ(0, sem_acquire(fd, 1, 0, NOCANCEL));
	ASSERT_EQ(0, pthread_create(&w.thread, NULL, waiter_fn, &w));
	ASSERT_TRUE(sem_wait_waiters(fd, 1));
	ASSERT_EQ(0, pthread_kill(w.thread, SIGUSR1));
	pthread_join(w.thread, NULL);
	EXPECT_EQ(-EINTR, w.ret);

	n = EVENTS(id, evs);
	ASSERT_EQ(3, n);
	EXPECT_TRUE(ev_is(&evs[2], "kprim_wait_end", "kind=sem", "n=1",
			  "result=interrupted", "async=0", NULL));
	close(w.fd);
	close(fd);
}

/*
 * Through io_uring (no thread waits): one acquire queued and granted by a
 * release, one queued until its timeout.
 */
TEST_F(trace, sem_uring_granted_and_timed_out)
{
	struct kprim_sem_acquire a1 = {
		.size = sizeof(a1), .n = 1, .wait = kt_wait(INF, NOCANCEL),
	};
	struct kprim_sem_acquire a2 = {
		.size = sizeof(a2), .n = 1,
		.wait = kt_wait(QUEUED_NS, NOCANCEL),
	};
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	char name[64];
	struct ev evs[12];
	uint64_t id, waited;
	int fd, fd2, n, i;

	KT_NAME(name, "trace");
	fd = sem_new(self->sess, name, 1);
	ASSERT_LE(0, fd);
	fd2 = sem_reopen(self->sess, name);
	ASSERT_LE(0, fd2);
	id = obj_id(fd);
	ASSERT_EQ(0, io_uring_queue_init(8, &ring, 0));
	ASSERT_EQ(0, sem_acquire(fd, 1, 0, NOCANCEL));

	prep_kprim(io_uring_get_sqe(&ring), fd2, KPRIM_IOC_SEM_ACQUIRE, &a1, 1);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_TRUE(sem_wait_waiters(fd, 1));
	usleep(QUEUED_NS / 1000);
	EXPECT_EQ(0, sem_release(fd, 1));
	ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
	EXPECT_EQ(1, cqe->user_data);
	EXPECT_EQ(0, cqe->res);
	io_uring_cqe_seen(&ring, cqe);

	/* fd2 holds the permit now: this one waits until its timeout. */
	prep_kprim(io_uring_get_sqe(&ring), fd, KPRIM_IOC_SEM_ACQUIRE, &a2, 2);
	ASSERT_EQ(1, io_uring_submit(&ring));
	ASSERT_EQ(0, io_uring_wait_cqe(&ring, &cqe));
	EXPECT_EQ(2, cqe->user_data);
	EXPECT_EQ(-ETIMEDOUT, cqe->res);
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);

	n = EVENTS(id, evs);
	ASSERT_EQ(6, n);
	EXPECT_TRUE(ev_is(&evs[0], "kprim_sem_acquire", "result=granted",
			  "async=0", NULL));
	EXPECT_TRUE(ev_is(&evs[1], "kprim_sem_acquire", "result=queued",
			  "async=1", NULL));
	EXPECT_TRUE(ev_is(&evs[2], "kprim_sem_release", "n=1", NULL));
	EXPECT_TRUE(ev_is(&evs[3], "kprim_wait_grant", "kind=sem", "n=1",
			  "result=granted", "async=1", NULL));
	waited = ev_u64(&evs[3], "waited_ns");
	EXPECT_LE(QUEUED_NS, waited);
	EXPECT_TRUE(ev_is(&evs[4], "kprim_sem_acquire", "result=queued",
			  "async=1", NULL));
	EXPECT_TRUE(ev_is(&evs[5], "kprim_wait_end", "kind=sem", "n=1",
			  "result=timed_out", "async=1", NULL));
	waited = ev_u64(&evs[5], "waited_ns");
	EXPECT_LE(QUEUED_NS - START_SLACK_NS, waited);
	for (i = 0; i < n; i++)
		EXPECT_EQ(id, ev_u64(&evs[i], "id"));
	close(fd2);
	close(fd);
}

/* A hit, a miss, and the entry a store evicts for room. */
TEST_F(trace, cache_hit_miss_capacity)
{
	struct kprim_cache_info info;
	struct ev evs[12];
	uint64_t id;
	int fd, n;

	fd = cache_new(self->sess, 2);
	ASSERT_LE(0, fd);
	id = obj_id(fd);
	EXPECT_EQ(0, cache_set(fd, "a", "12345", 0));
	EXPECT_EQ(0, cache_get(fd, "a"));
	EXPECT_EQ(-ENOENT, cache_get(fd, "nokey"));
	/* "a" was read (second chance): "bb" is the one to go. */
	EXPECT_EQ(0, cache_set(fd, "bb", "1234567", 0));
	EXPECT_EQ(0, cache_set(fd, "ccc", "1", 0));
	ASSERT_EQ(0, cache_info(fd, &info));
	EXPECT_EQ(1, info.evictions);

	n = EVENTS(id, evs);
	ASSERT_EQ(3, n);
	EXPECT_TRUE(ev_is(&evs[0], "kprim_cache_access", "hit=1",
			  "key_len=1", "value_len=5", NULL));
	EXPECT_TRUE(ev_is(&evs[1], "kprim_cache_access", "hit=0",
			  "key_len=5", "value_len=0", NULL));
	EXPECT_TRUE(ev_is(&evs[2], "kprim_cache_evict", "reason=capacity",
			  "key_len=2", "value_len=7", NULL));
	close(fd);
}

/* An entry past its TTL: a miss, then freed as expired by a writer. */
TEST_F(trace, cache_expired)
{
	struct ev evs[8];
	uint64_t id;
	int fd, n, i;

	fd = cache_new(self->sess, 0);
	ASSERT_LE(0, fd);
	id = obj_id(fd);
	EXPECT_EQ(0, cache_set(fd, "ttl", "xy", 50 * MS));
	usleep(100 * MS / 1000);
	EXPECT_EQ(-ENOENT, cache_get(fd, "ttl"));
	EXPECT_EQ(-ENOENT, cache_touch(fd, "ttl", 0));

	/*
	 * The touch frees it, or the sweep (due a second after the store)
	 * did already on a slow machine: the order is not fixed.
	 */
	n = EVENTS(id, evs);
	ASSERT_EQ(2, n);
	i = !ev_is(&evs[0], "kprim_cache_evict", NULL);
	EXPECT_TRUE(ev_is(&evs[!i], "kprim_cache_access", "hit=0",
			  "key_len=3", NULL));
	EXPECT_TRUE(ev_is(&evs[i], "kprim_cache_evict", "reason=expired",
			  "key_len=3", "value_len=2", NULL));
	close(fd);
}

/* FLUSH reports each entry it removes. */
TEST_F(trace, cache_flushed)
{
	struct kprim_hdr h = { .size = sizeof(h) };
	struct ev evs[8];
	uint64_t id;
	int fd, n, i;

	fd = cache_new(self->sess, 0);
	ASSERT_LE(0, fd);
	id = obj_id(fd);
	EXPECT_EQ(0, cache_set(fd, "k1", "v", 0));
	EXPECT_EQ(0, cache_set(fd, "k2", "v", 0));
	EXPECT_EQ(0, kt_ioctl(fd, KPRIM_IOC_CACHE_FLUSH, &h));

	n = EVENTS(id, evs);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++)
		EXPECT_TRUE(ev_is(&evs[i], "kprim_cache_evict",
				  "reason=flushed", "key_len=2",
				  "value_len=1", NULL));
	close(fd);
}

/* The shrinker (drop_caches runs every shrinker) evicts for memory. */
TEST_F(trace, cache_shrinker)
{
	struct ev evs[8];
	uint64_t id;
	int fd, n, i;

	fd = cache_new(self->sess, 0);
	ASSERT_LE(0, fd);
	id = obj_id(fd);
	EXPECT_EQ(0, cache_set(fd, "s1", "v", 0));
	EXPECT_EQ(0, cache_set(fd, "s2", "v", 0));
	ASSERT_EQ(0, write_file("/proc/sys/vm", "drop_caches", "2", 0));

	n = EVENTS(id, evs);
	ASSERT_EQ(2, n);
	for (i = 0; i < n; i++)
		EXPECT_TRUE(ev_is(&evs[i], "kprim_cache_evict",
				  "reason=shrinker", "key_len=2", NULL));
	close(fd);
}

TEST_HARNESS_MAIN
