// SPDX-License-Identifier: GPL-2.0
/*
 * go_peer - the C side of bindings/go's cross-language test (go_test).
 * Not a test itself (it is built into build/tools, /demo in the VM): the
 * Go test runs it against the objects it made and checks what it left.
 *
 *   go_peer abi          the ioctl numbers and struct sizes of the uapi
 *   go_peer check P      open P.lim, P.sem, P.cache and the breaker P.br
 *                        that the Go side prepared, check the state it
 *                        left, change each (see below)
 *   go_peer wait P       block until one permit of P.sem is free
 *   go_peer hammer P S   for S seconds, allow and report (half of them
 *                        failures) on the breaker P.hb while the Go side
 *                        does the same: every result must be one the
 *                        state machine may give
 *   go_peer timens PROG [ARG...]
 *                        run PROG in a new time namespace whose
 *                        CLOCK_MONOTONIC is a day ahead (Go cannot: its
 *                        fork shares the address space, which the kernel
 *                        refuses across time namespaces); exit 77 when
 *                        time namespaces are not available
 *
 * One line per check on stdout; "FAIL ..." and exit 1 on the first that
 * does not hold.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <kprim.h>
#include "uapi/kprim.h"

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			printf("FAIL %s:%d: ", __FILE__, __LINE__);	\
			printf(__VA_ARGS__);				\
			printf("\n");					\
			exit(1);					\
		}							\
		printf("peer ok: " __VA_ARGS__);			\
		printf("\n");						\
	} while (0)

static char *obj(const char *p, const char *suffix)
{
	static char buf[4][300];
	static int i;

	snprintf(buf[i & 3], sizeof(buf[0]), "%s.%s", p, suffix);
	return buf[i++ & 3];
}

static int abi(void)
{
#define P(x) printf(#x " %lu\n", (unsigned long)(x))
	P(KPRIM_IOC_API); P(KPRIM_IOC_OPEN); P(KPRIM_IOC_UNLINK);
	P(KPRIM_IOC_LIMITER_TAKE); P(KPRIM_IOC_LIMITER_SET);
	P(KPRIM_IOC_LIMITER_INFO); P(KPRIM_IOC_SEM_ACQUIRE);
	P(KPRIM_IOC_SEM_RELEASE); P(KPRIM_IOC_SEM_INFO);
	P(KPRIM_IOC_CACHE_GET); P(KPRIM_IOC_CACHE_STORE);
	P(KPRIM_IOC_CACHE_DELETE); P(KPRIM_IOC_CACHE_TOUCH);
	P(KPRIM_IOC_CACHE_INCR); P(KPRIM_IOC_CACHE_FLUSH);
	P(KPRIM_IOC_CACHE_INFO); P(KPRIM_IOC_CACHE_MGET);
	P(sizeof(struct kprim_cache_mget_entry));
#undef P
	return 0;
}

/* The Go side's breaker settings: the shared ones must match. */
static const struct kprim_breaker_settings bs = {
	.consecutive_failures = 3,
	.open_timeout_ns = 3600000000000ull,
	.half_open_probes = 1,
	.success_threshold = 1,
};

static int check(struct kprim *k, const char *p)
{
	struct kprim_limiter *lim;
	struct kprim_limiter_stats ls;
	struct kprim_sem *sem;
	struct kprim_sem_stats ss;
	struct kprim_cache *c;
	struct kprim_breaker *br;
	struct kprim_breaker_ticket t;
	struct kprim_breaker_counts bc;
	char buf[64];
	size_t len = sizeof(buf);
	uint64_t v;
	int rc;

	rc = kprim_limiter_open(k, obj(p, "lim"), 0, 0, NULL, &lim);
	CHECK(!rc, "open the Go limiter (%d)", rc);
	rc = kprim_limiter_stats(lim, &ls);
	CHECK(!rc && ls.tokens == 6, "limiter: the Go side took 4 of 10 (tokens %llu)",
	      (unsigned long long)ls.tokens);
	rc = kprim_limiter_try_take(lim, 6, NULL);
	CHECK(!rc, "limiter: take the 6 left (%d)", rc);
	rc = kprim_limiter_try_take(lim, 1, NULL);
	CHECK(rc == -EAGAIN, "limiter: then empty (%d)", rc);

	rc = kprim_sem_open(k, obj(p, "sem"), 0, 0, 0, &sem);
	CHECK(!rc, "open the Go semaphore (%d)", rc);
	rc = kprim_sem_stats(sem, &ss);
	CHECK(!rc && ss.held == 2 && ss.available == 1,
	      "sem: the Go side holds 2 of 3 (held %llu)", (unsigned long long)ss.held);
	rc = kprim_sem_try_acquire(sem, 2);
	CHECK(rc == -EAGAIN, "sem: 2 more are not there (%d)", rc);
	rc = kprim_sem_try_acquire(sem, 1);
	CHECK(!rc, "sem: the last one is (%d); held until exit", rc);

	rc = kprim_cache_open(k, obj(p, "cache"), 0, 0, NULL, &c);
	CHECK(!rc, "open the Go cache (%d)", rc);
	rc = kprim_cache_get(c, "k", 1, buf, &len, NULL, NULL);
	CHECK(!rc && len == 7 && !memcmp(buf, "from-go", 7),
	      "cache: k is what Go set (%d)", rc);
	rc = kprim_cache_set(c, "k2", 2, "from-c", 6, KPRIM_TTL_DEFAULT, NULL);
	CHECK(!rc, "cache: set k2 (%d)", rc);
	rc = kprim_cache_incr(c, "ctr", 3, 1, &v);
	CHECK(!rc && v == 6, "cache: Go's counter 5 + 1 (%d, %llu)", rc,
	      (unsigned long long)v);

	rc = kprim_breaker_new_shared(k, obj(p, "br"), &bs, &br);
	CHECK(!rc, "open the Go breaker (%d)", rc);
	rc = kprim_breaker_state(br);
	CHECK(rc == KPRIM_BREAKER_OPEN, "breaker: Go's 3 failures opened it (%d)", rc);
	rc = kprim_breaker_allow(br, &t);
	CHECK(rc == -EBUSY, "breaker: open rejects (%d)", rc);
	rc = kprim_breaker_force_close(br);
	CHECK(!rc, "breaker: force close (%d)", rc);
	rc = kprim_breaker_allow(br, &t);
	CHECK(!rc, "breaker: closed admits (%d)", rc);
	rc = kprim_breaker_done(br, &t, false);
	CHECK(!rc, "breaker: report a failure (%d)", rc);
	rc = kprim_breaker_counts(br, &bc);
	CHECK(!rc && bc.consecutive_failures == 1,
	      "breaker: one failure in a row (%u)", bc.consecutive_failures);
	kprim_breaker_free(br);
	kprim_cache_close(c);
	kprim_limiter_close(lim);
	/* sem stays open: its permit comes back when the process exits */
	(void)sem;
	return 0;
}

static int wait_permit(struct kprim *k, const char *p)
{
	struct kprim_sem *sem;
	int rc;

	rc = kprim_sem_open(k, obj(p, "sem"), 0, 0, 0, &sem);
	CHECK(!rc, "open the Go semaphore (%d)", rc);
	printf("waiting\n");
	fflush(stdout);
	rc = kprim_sem_acquire(sem, 1, NULL, 30000000000ull);
	CHECK(!rc, "sem: acquired the permit Go released (%d)", rc);
	kprim_sem_close(sem);
	return 0;
}

/* go_test's TestBreakerHammerWithC settings. */
static const struct kprim_breaker_settings hs = {
	.consecutive_failures = 2,
	.open_timeout_ns = 2000000,
	.half_open_probes = 2,
	.success_threshold = 2,
};

static int hammer(struct kprim *k, const char *p, int secs)
{
	unsigned long long allowed = 0, rejected = 0, stale = 0;
	struct kprim_breaker_ticket t;
	struct kprim_breaker_counts bc;
	struct kprim_breaker *br;
	unsigned int seed = 1;
	uint64_t end;
	int rc;

	rc = kprim_breaker_new_shared(k, obj(p, "hb"), &hs, &br);
	CHECK(!rc, "open the Go breaker (%d)", rc);
	end = kprim_now_ns() + (uint64_t)secs * 1000000000ull;
	while (kprim_now_ns() < end) {
		rc = kprim_breaker_allow(br, &t);
		if (rc == -EBUSY) {
			rejected++;
			continue;
		}
		if (rc)
			CHECK(0, "hammer: allow returned %d", rc);
		allowed++;
		rc = kprim_breaker_done(br, &t, rand_r(&seed) & 1);
		if (rc == -ESTALE)
			stale++;
		else if (rc)
			CHECK(0, "hammer: done returned %d", rc);
	}
	rc = kprim_breaker_counts(br, &bc);
	CHECK(!rc, "hammer: %llu allowed, %llu rejected, %llu stale, %llu transitions",
	      allowed, rejected, stale, (unsigned long long)bc.transitions);
	CHECK(allowed && bc.transitions, "hammer: C made calls and transitions");
	kprim_breaker_free(br);
	return 0;
}

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static int timens(char **argv)
{
	FILE *f;
	pid_t pid;
	int st;

	if (unshare(CLONE_NEWTIME)) {
		printf("SKIP unshare(CLONE_NEWTIME): %s\n", strerror(errno));
		return 77;
	}
	/* Children enter the namespace: its offsets are set before. */
	f = fopen("/proc/self/timens_offsets", "w");
	if (!f || fprintf(f, "monotonic 86400 0\n") < 0 || fclose(f)) {
		printf("FAIL timens_offsets: %s\n", strerror(errno));
		return 1;
	}
	pid = fork();
	if (!pid) {
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	struct kprim *k;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "abi"))
		return abi();
	if (argc >= 3 && !strcmp(argv[1], "timens"))
		return timens(argv + 2);
	if (argc == 4 && !strcmp(argv[1], "hammer")) {
		rc = kprim_open(&k);
		CHECK(!rc, "kprim_open (%d)", rc);
		return hammer(k, argv[2], atoi(argv[3]));
	}
	if (argc != 3) {
		fprintf(stderr, "usage: go_peer abi | check PREFIX | wait PREFIX | hammer PREFIX SECONDS | timens PROG [ARG...]\n");
		return 2;
	}
	rc = kprim_open(&k);
	CHECK(!rc, "kprim_open (%d)", rc);
	if (!strcmp(argv[1], "check"))
		return check(k, argv[2]);
	if (!strcmp(argv[1], "wait"))
		return wait_permit(k, argv[2]);
	return 2;
}
