// SPDX-License-Identifier: GPL-2.0
/*
 * daemonbench - the daemon peers of kprim's cache and limiter: memcached
 * (libmemcached) and Redis (hiredis) over unix sockets, measured the way
 * tools/kprim-bench.c measures its cases, so that kprim-bench -x can put
 * them into its tables.
 *
 *   daemonbench [-t SECONDS] [-w SECONDS] [-T THREADS,...] [-m SOCKET]
 *               [-r SOCKET] [-b BATCH]
 *
 * The daemons must already listen on the sockets (-m, default
 * /tmp/kprim-memcached.sock; -r, default /tmp/kprim-redis.sock): the test
 * VM's bench mode starts them. Every thread has its own connection, as the
 * processes of a host would, and all threads use the same key, as all
 * threads of kprim-bench share one object. Each case runs for -t seconds
 * after a -w second warm-up; each thread counts its operations in its own
 * clock window and the rates are summed. One line per case and thread
 * count on stdout:
 *
 *   CASE THREADS NS_PER_OP
 *
 * where NS_PER_OP is the wall time one thread spends per operation (for
 * the pipelined rows, per request in the batch). A daemon that does not
 * answer, or an operation that fails, is reported on stderr and its rows
 * are left out; the exit status is then 1.
 */
#include <stdbool.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <libmemcached/memcached.h>
#include "../bench-phases.h"

#define MAX_THREADS	256
#define MAX_BATCH	256
#define KEY		"kprim-bench-key"	/* kprim-bench's cache key */
#define VALUE		"0123456789abcdef"	/* its 16-byte value */

static const char *prog = "daemonbench";
static double opt_secs = 0.3, opt_warm = 0.05;
static const char *opt_mc_sock = "/tmp/kprim-memcached.sock";
static const char *opt_redis_sock = "/tmp/kprim-redis.sock";
static int opt_batch = 32;

struct worker {
	const struct daemon_case *c;
	memcached_st *mc;
	redisContext *redis;
	char err[160];		/* first failure, empty when none */
	uint64_t ops, ns;
};

/*
 * A case: connect() opens the thread's connection, op() does one
 * operation (or one batch) and returns how many requests it completed,
 * or -1 with w->err set.
 */
struct daemon_case {
	const char *id;
	int (*connect)(struct worker *w);
	int (*op)(struct worker *w);
};

static int wfail(struct worker *w, const char *what, const char *why)
{
	if (!w->err[0])
		snprintf(w->err, sizeof(w->err), "%s: %s", what, why);
	return -1;
}

/* ---- memcached ---------------------------------------------------------- */

static int mc_connect(struct worker *w)
{
	memcached_return_t rc;

	w->mc = memcached_create(NULL);
	if (!w->mc)
		return wfail(w, "memcached_create", "out of memory");
	rc = memcached_server_add_unix_socket(w->mc, opt_mc_sock);
	if (rc == MEMCACHED_SUCCESS)
		rc = memcached_set(w->mc, KEY, strlen(KEY), VALUE,
				   strlen(VALUE), 0, 0);
	if (rc != MEMCACHED_SUCCESS)
		return wfail(w, opt_mc_sock, memcached_strerror(w->mc, rc));
	return 0;
}

static int mc_get(struct worker *w)
{
	memcached_return_t rc;
	uint32_t flags;
	size_t len;
	char *v;

	v = memcached_get(w->mc, KEY, strlen(KEY), &len, &flags, &rc);
	if (!v || len != strlen(VALUE))
		return wfail(w, "memcached get", v ? "wrong length" :
			     memcached_strerror(w->mc, rc));
	free(v);
	return 1;
}

static int mc_set(struct worker *w)
{
	memcached_return_t rc;

	rc = memcached_set(w->mc, KEY, strlen(KEY), VALUE, strlen(VALUE), 0, 0);
	if (rc != MEMCACHED_SUCCESS)
		return wfail(w, "memcached set", memcached_strerror(w->mc, rc));
	return 1;
}

/* One multi-get of BATCH keys: kprim's io_uring batch counterpart. */
static int mc_mget(struct worker *w)
{
	const char *keys[MAX_BATCH];
	size_t lens[MAX_BATCH];
	memcached_result_st *res;
	memcached_return_t rc;
	int i, got = 0;

	for (i = 0; i < opt_batch; i++) {	/* same key each time: idempotent */
		keys[i] = KEY;
		lens[i] = strlen(KEY);
	}
	rc = memcached_mget(w->mc, keys, lens, (size_t)opt_batch);
	if (rc != MEMCACHED_SUCCESS)
		return wfail(w, "memcached mget", memcached_strerror(w->mc, rc));
	while ((res = memcached_fetch_result(w->mc, NULL, &rc))) {
		got++;
		memcached_result_free(res);
	}
	if (got != opt_batch)
		return wfail(w, "memcached mget", "a value is missing");
	return opt_batch;
}

/* ---- Redis -------------------------------------------------------------- */

static int redis_connect(struct worker *w)
{
	redisReply *r;

	w->redis = redisConnectUnix(opt_redis_sock);
	if (!w->redis || w->redis->err)
		return wfail(w, opt_redis_sock,
			     w->redis ? w->redis->errstr : "out of memory");
	r = redisCommand(w->redis, "SET %s %s", KEY, VALUE);
	if (!r || r->type != REDIS_REPLY_STATUS)
		return wfail(w, "redis SET", r ? "unexpected reply" :
			     w->redis->errstr);
	freeReplyObject(r);
	return 0;
}

static int redis_check(struct worker *w, redisReply *r, int type,
		       const char *what)
{
	bool ok = r && r->type == type &&
		  (type != REDIS_REPLY_STRING || r->len == strlen(VALUE));

	if (!ok) {
		if (r && r->type == REDIS_REPLY_ERROR)
			wfail(w, what, r->str);
		else
			wfail(w, what, r ? "unexpected reply" :
			      w->redis->errstr);
	}
	if (r)
		freeReplyObject(r);
	return ok ? 1 : -1;
}

static int redis_get(struct worker *w)
{
	return redis_check(w, redisCommand(w->redis, "GET %s", KEY),
			   REDIS_REPLY_STRING, "redis GET");
}

static int redis_set(struct worker *w)
{
	return redis_check(w, redisCommand(w->redis, "SET %s %s", KEY, VALUE),
			   REDIS_REPLY_STATUS, "redis SET");
}

/* The usual Redis rate limiter: a fixed-window counter, INCR per request. */
static int redis_incr(struct worker *w)
{
	return redis_check(w, redisCommand(w->redis, "INCR kprim-bench-window"),
			   REDIS_REPLY_INTEGER, "redis INCR");
}

/* BATCH pipelined GETs, one round trip: kprim's io_uring batch peer. */
static int redis_get_pipelined(struct worker *w)
{
	void *reply;
	int i;

	for (i = 0; i < opt_batch; i++)
		if (redisAppendCommand(w->redis, "GET %s", KEY) != REDIS_OK)
			return wfail(w, "redis pipeline", w->redis->errstr);
	for (i = 0; i < opt_batch; i++) {
		if (redisGetReply(w->redis, &reply) != REDIS_OK)
			return wfail(w, "redis pipeline", w->redis->errstr);
		if (redis_check(w, reply, REDIS_REPLY_STRING,
				"redis pipelined GET") < 0)
			return -1;
	}
	return opt_batch;
}

/* ---- running ------------------------------------------------------------ */

static const struct daemon_case cases[] = {
	{ "mc-get", mc_connect, mc_get },
	{ "mc-mget", mc_connect, mc_mget },
	{ "mc-set", mc_connect, mc_set },
	{ "redis-get", redis_connect, redis_get },
	{ "redis-pipe", redis_connect, redis_get_pipelined },
	{ "redis-set", redis_connect, redis_set },
	{ "redis-incr", redis_connect, redis_incr },
};

static int worker_step(void *arg)
{
	struct worker *w = arg;

	return w->c->op(w);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int ret = w->c->connect(w);

	bench_measure(ret ? NULL : worker_step, w, &w->ops, &w->ns);
	return NULL;
}

/* Runs one case; prints its line, or the first failure on stderr. */
static bool run_case(const struct daemon_case *c, int nthreads)
{
	static struct worker workers[MAX_THREADS];
	const char *err = NULL;
	double rate = 0;
	int i;

	for (i = 0; i < nthreads; i++)
		workers[i] = (struct worker){ .c = c };
	bench_run(nthreads, worker_main, workers, sizeof(workers[0]),
		  opt_warm, opt_secs);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &workers[i];

		if (w->err[0] && !err)
			err = w->err;
		if (w->ns && w->ops)
			rate += (double)w->ops * 1e9 / (double)w->ns;
	}
	if (err || rate <= 0)
		fprintf(stderr, "%s: %s, %d thread(s): %s\n", prog, c->id,
			nthreads, err ? err : "no operation completed");
	else
		printf("%s %d %.1f\n", c->id, nthreads,
		       (double)nthreads * 1e9 / rate);
	fflush(stdout);
	for (i = 0; i < nthreads; i++) {
		if (workers[i].mc)
			memcached_free(workers[i].mc);
		if (workers[i].redis)
			redisFree(workers[i].redis);
	}
	return !err && rate > 0;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: %s [-t SECONDS] [-w SECONDS] [-T THREADS,...] "
		"[-m SOCKET] [-r SOCKET] [-b BATCH]\n", prog);
	return 2;
}

int main(int argc, char **argv)
{
	int counts[16], ncounts = 0, opt, i, t;
	const char *tlist = "1";
	bool ok = true;

	while ((opt = getopt(argc, argv, "t:w:T:m:r:b:h")) != -1) {
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
		case 'm':
			opt_mc_sock = optarg;
			break;
		case 'r':
			opt_redis_sock = optarg;
			break;
		case 'b':
			opt_batch = atoi(optarg);
			break;
		default:
			return usage();
		}
	}
	if (optind != argc || opt_secs <= 0 || opt_warm < 0 ||
	    opt_batch < 1 || opt_batch > MAX_BATCH)
		return usage();
	{
		char *copy = strdup(tlist), *tok, *save = NULL;

		for (tok = strtok_r(copy, ",", &save); tok && ncounts < 16;
		     tok = strtok_r(NULL, ",", &save)) {
			int n = atoi(tok);

			if (n < 1 || n > MAX_THREADS) {
				free(copy);
				return usage();
			}
			counts[ncounts++] = n;
		}
		free(copy);
	}
	if (!ncounts)
		return usage();

	for (t = 0; t < ncounts; t++)
		for (i = 0; i < (int)(sizeof(cases) / sizeof(cases[0])); i++)
			ok &= run_case(&cases[i], counts[t]);
	return ok ? 0 : 1;
}
