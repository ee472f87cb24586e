// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * One thread, one io_uring, many requests waiting at once: a tiny key
 * lookup server on a Unix socket whose requests are admitted by a
 * host-wide rate limiter and whose work is bounded by a host-wide
 * semaphore, both shared with every other process using the same names.
 *
 * Each connection carries one request, "GET <key>\n", and walks:
 *
 *   recv -> limiter take (waits up to 2 s for a token)
 *        -> semaphore acquire (waits up to 5 s for a permit)
 *        -> cache get -> "work" (an io_uring timeout, -w ms)
 *        -> send the answer -> semaphore release -> close
 *
 * Every step is an SQE on the same ring; the kprim ones are prepared with
 * <kprim/uring.h> and decoded with kprim_uring_op_result(), which gives
 * exactly what kprim_limiter_take() & co. would have returned (the
 * retry-after of a refused take included). No step blocks a thread: a
 * request waiting for a token or a permit is an SQE the kernel has queued
 * on the limiter or the semaphore (KPRIM_FEAT_URING_ASYNC), in FIFO order
 * with every other process's waiters, and completed by whoever frees the
 * token or the permit. No io_uring worker thread waits for it either;
 * the server checks that and reports it (workers=).
 *
 * Answers: "VALUE <value>\n", "MISS\n", "BUSY <retry_after_ms>\n" (no token
 * or permit in time), "ERR <errno>\n".
 *
 *   uring_server [-s SOCKET] [-p PREFIX] [-n REQUESTS] [-w WORK_MS]
 *
 * The objects are PREFIX-limiter (10 requests/s, burst 5, if it does not
 * exist), PREFIX-sem (2 permits) and PREFIX-cache (seeded with
 * hello=world). Once it listens it prints "ready SOCKET". With -n the
 * server exits after REQUESTS requests and prints what it saw:
 * "served=.. hits=.. misses=.. busy=.. errors=.. max_inflight=..
 * max_waiting=.. threads=.. workers=..", threads being its own threads and
 * workers the most io_uring worker threads seen while requests waited.
 * Try it:
 *
 *   uring_server -s /tmp/kp.sock &
 *   for i in 1 2 3 4 5 6 7 8; do echo "GET hello" | nc -U /tmp/kp.sock & done
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <kprim.h>
#include <kprim/uring.h>

#define MAX_CONNS	128
#define TAKE_TIMEOUT_NS	(2ull * 1000000000ull)
#define ACQ_TIMEOUT_NS	(5ull * 1000000000ull)

enum step { RECV, TAKE, ACQUIRE, GET, WORK, SEND, RELEASE };

struct conn {
	struct kprim_uring_op op;	/* user_data of every SQE of this conn */
	enum step step;
	int fd;
	int holding;			/* a permit to give back */
	char in[256 + 8];	/* "GET " and a key (<= 250 bytes) */
	size_t in_len;
	char val[512];
	size_t val_len;
	char out[sizeof("VALUE ") + 512 + 1];
	size_t out_len, out_sent;
	uint64_t retry_after_ns;
	struct __kernel_timespec work;
};

struct server {
	struct io_uring ring;
	struct kprim_limiter *lim;
	struct kprim_sem *sem;
	struct kprim_cache *cache;
	int lfd;
	struct kprim_uring_op accept_op;
	long work_ms;
	long served, hits, misses, busy, errors;
	int inflight, max_inflight;	/* holding a permit */
	int waiting, max_waiting;	/* in a take or an acquire */
	int max_workers;		/* io_uring workers seen meanwhile */
	int conns;
};

static struct io_uring_sqe *sqe_for(struct server *s)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);

	if (!sqe) {
		/* The ring is full: hand what is queued to the kernel. */
		io_uring_submit(&s->ring);
		sqe = io_uring_get_sqe(&s->ring);
	}
	if (!sqe) {
		fprintf(stderr, "uring_server: no SQE\n");
		exit(1);
	}
	return sqe;
}

/*
 * Every SQE's user_data is an op: a conn's for its steps (the kprim prep
 * helpers set it, the others do it here, after the prep), accept_op for
 * the listener.
 */
static void arm_accept(struct server *s)
{
	struct io_uring_sqe *sqe = sqe_for(s);

	io_uring_prep_accept(sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &s->accept_op);
}

static void arm_recv(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_for(s);

	c->step = RECV;
	io_uring_prep_recv(sqe, c->fd, c->in + c->in_len,
			   sizeof(c->in) - 1 - c->in_len, 0);
	io_uring_sqe_set_data(sqe, &c->op);
}

static void arm_send(struct server *s, struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_for(s);

	c->step = SEND;
	io_uring_prep_send(sqe, c->fd, c->out + c->out_sent,
			   c->out_len - c->out_sent, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &c->op);
}

static void set_waiting(struct server *s, int delta)
{
	s->waiting += delta;
	if (s->waiting > s->max_waiting)
		s->max_waiting = s->waiting;
}

static void answer(struct server *s, struct conn *c, const char *fmt,
		   unsigned long long v)
{
	c->out_len = (size_t)snprintf(c->out, sizeof(c->out), fmt, v);
	c->out_sent = 0;
	arm_send(s, c);
}

static void finish(struct server *s, struct conn *c)
{
	if (c->holding) {
		c->step = RELEASE;
		kprim_uring_prep_sem_release(sqe_for(s), &c->op, s->sem, 1);
		return;
	}
	close(c->fd);
	free(c);
	s->conns--;
	s->served++;
}

/* A request line arrived: ask the limiter first. */
static void start_request(struct server *s, struct conn *c)
{
	c->step = TAKE;
	set_waiting(s, 1);
	kprim_uring_prep_limiter_take(sqe_for(s), &c->op, s->lim, 1, NULL,
				      TAKE_TIMEOUT_NS, &c->retry_after_ns);
}

static void on_conn(struct server *s, struct conn *c, int res)
{
	struct io_uring_sqe *sqe;
	char *nl;

	switch (c->step) {
	case RECV:
		if (res <= 0) {
			s->errors++;
			finish(s, c);
			return;
		}
		c->in_len += (size_t)res;
		c->in[c->in_len] = '\0';
		nl = strchr(c->in, '\n');
		if (!nl && c->in_len < sizeof(c->in) - 1) {
			arm_recv(s, c);
			return;
		}
		if (!nl || strncmp(c->in, "GET ", 4)) {
			s->errors++;
			answer(s, c, "ERR %llu\n", EINVAL);
			return;
		}
		*nl = '\0';
		start_request(s, c);
		return;
	case TAKE:
		res = kprim_uring_op_result(&c->op, res);
		set_waiting(s, -1);
		if (res) {
			s->busy++;
			answer(s, c, "BUSY %llu\n",
			       (unsigned long long)c->retry_after_ns / 1000000);
			return;
		}
		c->step = ACQUIRE;
		set_waiting(s, 1);
		kprim_uring_prep_sem_acquire(sqe_for(s), &c->op, s->sem, 1,
					     NULL, ACQ_TIMEOUT_NS);
		return;
	case ACQUIRE:
		res = kprim_uring_op_result(&c->op, res);
		set_waiting(s, -1);
		if (res) {
			s->busy++;
			answer(s, c, "BUSY %llu\n", 0);
			return;
		}
		c->holding = 1;
		if (++s->inflight > s->max_inflight)
			s->max_inflight = s->inflight;
		c->step = GET;
		c->val_len = sizeof(c->val) - 1;
		kprim_uring_prep_cache_get(sqe_for(s), &c->op, s->cache,
					   c->in + 4, strlen(c->in + 4), c->val,
					   &c->val_len, NULL, NULL);
		return;
	case GET:
		res = kprim_uring_op_result(&c->op, res);
		if (!res) {
			s->hits++;
			c->val[c->val_len] = '\0';
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
						      "VALUE %s\n", c->val);
		} else if (res == -ENOENT) {
			s->misses++;
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
						      "MISS\n");
		} else {
			s->errors++;
			c->out_len = (size_t)snprintf(c->out, sizeof(c->out),
						      "ERR %d\n", -res);
		}
		/* The work the semaphore bounds: a timer, not a sleep. */
		c->step = WORK;
		c->work.tv_sec = s->work_ms / 1000;
		c->work.tv_nsec = (s->work_ms % 1000) * 1000000;
		sqe = sqe_for(s);
		io_uring_prep_timeout(sqe, &c->work, 0, 0);
		io_uring_sqe_set_data(sqe, &c->op);
		return;
	case WORK:
		c->out_sent = 0;
		arm_send(s, c);
		return;
	case SEND:
		if (res > 0 && (c->out_sent += (size_t)res) < c->out_len) {
			arm_send(s, c);
			return;
		}
		if (c->holding)
			s->inflight--;
		finish(s, c);
		return;
	case RELEASE:
		res = kprim_uring_op_result(&c->op, res);
		if (res)
			fprintf(stderr, "uring_server: release: %s\n",
				strerror(-res));
		c->holding = 0;
		finish(s, c);
		return;
	}
}

static void on_accept(struct server *s, int res)
{
	struct conn *c;

	arm_accept(s);
	if (res < 0) {
		fprintf(stderr, "uring_server: accept: %s\n", strerror(-res));
		return;
	}
	c = s->conns < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		close(res);
		s->errors++;
		s->served++;
		return;
	}
	s->conns++;
	c->fd = res;
	c->op.data = c;
	arm_recv(s, c);
}

/*
 * Threads of this process: its own, and io_uring's workers ("iou-wrk-N",
 * which a wait would occupy with a module without KPRIM_FEAT_URING_ASYNC).
 */
static int count_threads(int *workers)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	char path[300], comm[32];
	int n = 0;

	*workers = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		if (!strncmp(comm, "iou-wrk", 7))
			(*workers)++;
		else if (strncmp(comm, "iou-", 4))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static int open_objects(struct server *s, const char *prefix)
{
	struct kprim_limiter_config lc = { .rate = 10, .period_ns = 1000000000,
					   .burst = 5 };
	char name[200];
	struct kprim *k;
	int ret;

	ret = kprim_open(&k);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "%s-limiter", prefix);
	ret = kprim_limiter_open(k, name, KPRIM_CREATE, 0600, &lc, &s->lim);
	snprintf(name, sizeof(name), "%s-sem", prefix);
	if (!ret)
		ret = kprim_sem_open(k, name, KPRIM_CREATE, 0600, 2, &s->sem);
	snprintf(name, sizeof(name), "%s-cache", prefix);
	if (!ret)
		ret = kprim_cache_open(k, name, KPRIM_CREATE, 0600, NULL,
				       &s->cache);
	if (!ret) {
		ret = kprim_cache_add(s->cache, "hello", 5, "world", 5,
				      KPRIM_TTL_DEFAULT, NULL);
		if (ret == -EEXIST)
			ret = 0;
	}
	kprim_close(k);
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *path = "/tmp/kprim-uring-server.sock";
	const char *prefix = "uring-server";
	struct server s = { .work_ms = 100 };
	struct io_uring_cqe *cqe;
	long limit = -1;
	int opt, ret, workers;

	while ((opt = getopt(argc, argv, "s:p:n:w:")) != -1) {
		switch (opt) {
		case 's': path = optarg; break;
		case 'p': prefix = optarg; break;
		case 'n': limit = atol(optarg); break;
		case 'w': s.work_ms = atol(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s SOCKET] [-p PREFIX] "
				"[-n REQUESTS] [-w WORK_MS]\n", argv[0]);
			return 2;
		}
	}
	ret = open_objects(&s, prefix);
	if (ret) {
		fprintf(stderr, "uring_server: kprim: %s\n", strerror(-ret));
		return 1;
	}
	ret = io_uring_queue_init(256, &s.ring, 0);
	if (ret) {
		fprintf(stderr, "uring_server: io_uring: %s\n", strerror(-ret));
		return 1;
	}
	s.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	unlink(path);
	if (s.lfd < 0 || bind(s.lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(s.lfd, 128)) {
		perror("uring_server: socket");
		return 1;
	}
	arm_accept(&s);
	/* Clients may connect from now on (a script can wait for this). */
	printf("ready %s\n", path);
	fflush(stdout);

	while (limit < 0 || s.served < limit) {
		unsigned int head, n = 0;

		ret = io_uring_submit_and_wait(&s.ring, 1);
		if (ret < 0 && ret != -EINTR) {
			fprintf(stderr, "uring_server: submit: %s\n",
				strerror(-ret));
			return 1;
		}
		io_uring_for_each_cqe(&s.ring, head, cqe) {
			struct kprim_uring_op *op =
				io_uring_cqe_get_data(cqe);

			if (op == &s.accept_op)
				on_accept(&s, cqe->res);
			else
				on_conn(&s, op->data, cqe->res);
			n++;
		}
		io_uring_cq_advance(&s.ring, n);
		/* For the report: look for workers while the most wait. */
		if (limit >= 0 && s.waiting && s.waiting == s.max_waiting) {
			count_threads(&workers);
			if (workers > s.max_workers)
				s.max_workers = workers;
		}
	}
	ret = count_threads(&workers);
	printf("served=%ld hits=%ld misses=%ld busy=%ld errors=%ld "
	       "max_inflight=%d max_waiting=%d threads=%d workers=%d\n",
	       s.served, s.hits, s.misses, s.busy, s.errors, s.max_inflight,
	       s.max_waiting, ret,
	       workers > s.max_workers ? workers : s.max_workers);
	unlink(path);
	io_uring_queue_exit(&s.ring);
	close(s.lfd);
	kprim_limiter_close(s.lim);
	kprim_sem_close(s.sem);
	kprim_cache_close(s.cache);
	return 0;
}
