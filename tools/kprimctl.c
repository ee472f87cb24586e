// SPDX-License-Identifier: GPL-2.0
/*
 * kprimctl - inspect and manage kprim objects (ipcs/ipcrm for kprim).
 *
 *   kprimctl list                          table of every visible object
 *   kprimctl stats                         Prometheus text exposition
 *   kprimctl create limiter NAME RATE PERIOD_NS BURST [MODE]
 *   kprimctl create sem NAME PERMITS [MODE]
 *   kprimctl create cache NAME MAX_BYTES [DEFAULT_TTL_NS [MODE]]
 *   kprimctl rm limiter|sem|cache NAME
 *   kprimctl set-rate NAME RATE PERIOD_NS  kprimctl set-burst NAME BURST
 *   kprimctl resize NAME PERMITS
 *   kprimctl take NAME N [TIMEOUT_MS]      take tokens from a limiter
 *   kprimctl acquire NAME N [HOLD_MS]      hold semaphore permits a while
 *   kprimctl get CACHE KEY / put CACHE KEY VALUE [TTL_MS] / incr CACHE KEY N
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <kprim.h>

static const char *prog = "kprimctl";

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(-err));
	return 1;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: %s list | stats\n"
		"       %s create limiter NAME RATE PERIOD_NS BURST [MODE]\n"
		"       %s create sem NAME PERMITS [MODE]\n"
		"       %s create cache NAME MAX_BYTES [DEFAULT_TTL_NS [MODE]]\n"
		"       %s rm limiter|sem|cache NAME\n"
		"       %s set-rate NAME RATE PERIOD_NS | set-burst NAME BURST\n"
		"       %s resize NAME PERMITS\n"
		"       %s take NAME N [TIMEOUT_MS]\n"
		"       %s acquire NAME N [HOLD_MS]\n"
		"       %s get CACHE KEY | put CACHE KEY VALUE [TTL_MS] | "
		"incr CACHE KEY N\n",
		prog, prog, prog, prog, prog, prog, prog, prog, prog, prog);
	return 2;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "%s: not a number: '%s'\n", prog, s);
		return -1;
	}
	return 0;
}

static int kind_of(const char *s)
{
	if (!strcmp(s, "limiter"))
		return KPRIM_LIMITER_KIND;
	if (!strcmp(s, "sem"))
		return KPRIM_SEM_KIND;
	if (!strcmp(s, "cache"))
		return KPRIM_CACHE_KIND;
	return -1;
}

static void print_state(const struct kprim_object_info *o, char *buf,
			size_t len)
{
	const uint64_t *v = o->v;

	switch (o->kind) {
	case KPRIM_LIMITER_KIND:
		snprintf(buf, len, "rate=%" PRIu64 "/%" PRIu64 "ns burst=%" PRIu64
			 " tokens=%" PRIu64 " waiters=%" PRIu64 " admitted=%"
			 PRIu64 " throttled=%" PRIu64,
			 v[0], v[1], v[2], v[4], v[5], v[6], v[7]);
		break;
	case KPRIM_SEM_KIND:
		snprintf(buf, len, "permits=%" PRIu64 " available=%" PRIu64
			 " held=%" PRIu64 " waiters=%" PRIu64 " holders=%" PRIu64
			 " acquired=%" PRIu64, v[0], v[1], v[2], v[3], v[4], v[5]);
		break;
	case KPRIM_CACHE_KIND:
		snprintf(buf, len, "bytes=%" PRIu64 "/%" PRIu64 " entries=%" PRIu64
			 " hits=%" PRIu64 " misses=%" PRIu64 " evictions=%" PRIu64
			 " expirations=%" PRIu64,
			 v[4], v[0], v[5], v[6], v[7], v[8], v[9]);
		break;
	default:
		snprintf(buf, len, "?");
	}
}

static int list_one(const struct kprim_object_info *o, void *arg)
{
	char state[256];

	(void)arg;
	print_state(o, state, sizeof(state));
	printf("%-6" PRIu64 " %-8s %-24s %04o %5u %5u %4" PRIu64 " %s%s%s\n",
	       o->id, o->kind_name, o->name[0] ? o->name : "(anonymous)",
	       o->mode, o->uid, o->gid, o->refs, state,
	       o->transient ? " transient" : "", o->unlinked ? " unlinked" : "");
	return 0;
}

static const char *const prom_names[4][10] = {
	[KPRIM_LIMITER_KIND] = { "rate", "period_ns", "burst", "initial",
				 "tokens", "waiters", "admitted_total",
				 "throttled_total" },
	[KPRIM_SEM_KIND] = { "permits", "available", "held", "waiters",
			     "holders", "acquired_total" },
	[KPRIM_CACHE_KIND] = { "max_bytes", "max_entries", "max_value",
			       "default_ttl_ns", "bytes", "entries",
			       "hits_total", "misses_total",
			       "evictions_total", "expirations_total" },
};

static int prom_one(const struct kprim_object_info *o, void *arg)
{
	(void)arg;
	for (int i = 0; i < o->nv; i++)
		printf("kprim_%s_%s{name=\"%s\",id=\"%" PRIu64 "\"} %" PRIu64 "\n",
		       o->kind_name, prom_names[o->kind][i], o->name, o->id,
		       o->v[i]);
	return 0;
}

static int cmd_create(struct kprim *k, int argc, char **argv)
{
	unsigned int flags = KPRIM_CREATE | KPRIM_EXCL;
	uint64_t a = 0, b = 0, c = 0, mode = 0600;
	int kind, ret;

	if (argc < 4 || (kind = kind_of(argv[2])) < 0)
		return usage();
	const char *name = argv[3];

	if (kind == KPRIM_LIMITER_KIND) {
		struct kprim_limiter_config cfg = { 0 };
		struct kprim_limiter *l;

		if (argc < 7 || parse_u64(argv[4], &a) || parse_u64(argv[5], &b) ||
		    parse_u64(argv[6], &c) ||
		    (argc > 7 && parse_u64(argv[7], &mode)))
			return usage();
		cfg.rate = a;
		cfg.period_ns = b;
		cfg.burst = c;
		ret = kprim_limiter_open(k, name, flags, mode, &cfg, &l);
		if (ret)
			return fail("create limiter", ret);
		kprim_limiter_close(l);
	} else if (kind == KPRIM_SEM_KIND) {
		struct kprim_sem *s;

		if (argc < 5 || parse_u64(argv[4], &a) ||
		    (argc > 5 && parse_u64(argv[5], &mode)))
			return usage();
		ret = kprim_sem_open(k, name, flags, mode, a, &s);
		if (ret)
			return fail("create sem", ret);
		kprim_sem_close(s);
	} else {
		struct kprim_cache_config cfg = { 0 };
		struct kprim_cache *ch;

		if (argc < 5 || parse_u64(argv[4], &cfg.max_bytes) ||
		    (argc > 5 && parse_u64(argv[5], &cfg.default_ttl_ns)) ||
		    (argc > 6 && parse_u64(argv[6], &mode)))
			return usage();
		ret = kprim_cache_open(k, name, flags, mode, &cfg, &ch);
		if (ret)
			return fail("create cache", ret);
		kprim_cache_close(ch);
	}
	printf("created %s %s\n", argv[2], name);
	return 0;
}

static int cmd_limiter(struct kprim *k, int argc, char **argv)
{
	struct kprim_limiter *l;
	uint64_t a, b = 0, retry = 0;
	int ret;

	if (argc < 4 || parse_u64(argv[3], &a) ||
	    (argc > 4 && parse_u64(argv[4], &b)))
		return usage();
	ret = kprim_limiter_open(k, argv[2], 0, 0, NULL, &l);
	if (ret)
		return fail(argv[2], ret);
	if (!strcmp(argv[1], "set-rate")) {
		ret = argc > 4 ? kprim_limiter_set_rate(l, a, b) : -EINVAL;
	} else if (!strcmp(argv[1], "set-burst")) {
		ret = kprim_limiter_set_burst(l, a);
	} else {
		ret = kprim_limiter_take(l, a, NULL, b * 1000000ull, &retry);
		if (ret == -EAGAIN || ret == -ETIMEDOUT)
			printf("retry after %.3f ms\n", retry / 1e6);
	}
	kprim_limiter_close(l);
	return ret ? fail(argv[1], ret) : 0;
}

/* Acquire permits (waiting as long as it takes), hold them, exit. */
static int cmd_acquire(struct kprim *k, int argc, char **argv)
{
	struct kprim_sem *s;
	uint64_t n, hold_ms = 0;
	int ret;

	if (argc < 4 || parse_u64(argv[3], &n) ||
	    (argc > 4 && parse_u64(argv[4], &hold_ms)))
		return usage();
	ret = kprim_sem_open(k, argv[2], 0, 0, 0, &s);
	if (ret)
		return fail(argv[2], ret);
	ret = kprim_sem_acquire(s, n, NULL, KPRIM_TIMEOUT_INFINITE);
	if (!ret) {
		printf("pid %d holds %" PRIu64 " of %s\n", (int)getpid(), n,
		       argv[2]);
		fflush(stdout);
		usleep(hold_ms * 1000);
	}
	kprim_sem_close(s);	/* returns the permits */
	return ret ? fail("acquire", ret) : 0;
}

static int cmd_resize(struct kprim *k, int argc, char **argv)
{
	struct kprim_sem *s;
	uint64_t n;
	int ret;

	if (argc < 4 || parse_u64(argv[3], &n))
		return usage();
	ret = kprim_sem_open(k, argv[2], 0, 0, 0, &s);
	if (ret)
		return fail(argv[2], ret);
	ret = kprim_sem_resize(s, n);
	kprim_sem_close(s);
	return ret ? fail("resize", ret) : 0;
}

static int cmd_cache(struct kprim *k, int argc, char **argv)
{
	struct kprim_cache *c;
	char buf[4096];
	size_t len = sizeof(buf) - 1;
	uint64_t n = 0, ttl = KPRIM_TTL_DEFAULT;
	int ret;

	if (argc < 4)
		return usage();
	ret = kprim_cache_open(k, argv[2], 0, 0, NULL, &c);
	if (ret)
		return fail(argv[2], ret);
	const char *key = argv[3];

	if (!strcmp(argv[1], "get")) {
		ret = kprim_cache_get(c, key, strlen(key), buf, &len, NULL, NULL);
		if (!ret)
			printf("%.*s\n", (int)len, buf);
		if (ret == -ENOENT) {
			printf("(not found)\n");
			kprim_cache_close(c);
			return 1;
		}
	} else if (!strcmp(argv[1], "put") && argc > 4) {
		if (argc > 5 && !parse_u64(argv[5], &ttl))
			ttl *= 1000000ull;
		ret = kprim_cache_set(c, key, strlen(key), argv[4],
				      strlen(argv[4]), ttl, NULL);
	} else if (!strcmp(argv[1], "incr") && argc > 4 && !parse_u64(argv[4], &n)) {
		ret = kprim_cache_incr(c, key, strlen(key), n, &n);
		if (!ret)
			printf("%" PRIu64 "\n", n);
	} else {
		kprim_cache_close(c);
		return usage();
	}
	kprim_cache_close(c);
	return ret ? fail(argv[1], ret) : 0;
}

int main(int argc, char **argv)
{
	struct kprim *k;
	int ret;

	if (argc < 2)
		return usage();
	ret = kprim_open(&k);
	if (ret == -ENODEV) {
		fprintf(stderr, "%s: /dev/kprim missing: is kprim.ko loaded?\n",
			prog);
		return 1;
	}
	if (ret)
		return fail("open /dev/kprim", ret);

	if (!strcmp(argv[1], "list")) {
		printf("%-6s %-8s %-24s %-4s %5s %5s %4s %s\n", "ID", "KIND",
		       "NAME", "MODE", "UID", "GID", "REFS", "STATE");
		ret = kprim_list(k, list_one, NULL);
		ret = ret ? fail("list", ret) : 0;
	} else if (!strcmp(argv[1], "stats")) {
		ret = kprim_list(k, prom_one, NULL);
		ret = ret ? fail("stats", ret) : 0;
	} else if (!strcmp(argv[1], "create")) {
		ret = cmd_create(k, argc, argv);
	} else if (!strcmp(argv[1], "rm") && argc == 4 && kind_of(argv[2]) > 0) {
		ret = kprim_unlink(k, kind_of(argv[2]), argv[3]);
		ret = ret ? fail("rm", ret) : 0;
	} else if (!strcmp(argv[1], "set-rate") || !strcmp(argv[1], "set-burst") ||
		   !strcmp(argv[1], "take")) {
		ret = cmd_limiter(k, argc, argv);
	} else if (!strcmp(argv[1], "acquire")) {
		ret = cmd_acquire(k, argc, argv);
	} else if (!strcmp(argv[1], "resize")) {
		ret = cmd_resize(k, argc, argv);
	} else if (!strcmp(argv[1], "get") || !strcmp(argv[1], "put") ||
		   !strcmp(argv[1], "incr")) {
		ret = cmd_cache(k, argc, argv);
	} else {
		ret = usage();
	}
	kprim_close(k);
	return ret;
}
