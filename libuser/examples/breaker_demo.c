// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A circuit breaker shared by every process of the host: process A sees
 * two calls to a backend fail, process B a third, and the row of failures
 * they share trips the breaker; B's next call fails fast, and so do A's;
 * after the open timeout a half-open probe succeeds and closes it for both.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kprim.h>

static const char *name(int state)
{
	return kprim_breaker_state_name(state);
}

static int open_breaker(struct kprim **k, struct kprim_breaker **b)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 3,
		.open_timeout_ns = 1000000000ull,	/* 1 s */
		.half_open_probes = 1,
		.success_threshold = 1,
	};
	int ret = kprim_open(k);

	return ret ? ret : kprim_breaker_new_shared(*k, "payments", &s, b);
}

static unsigned int in_a_row(struct kprim_breaker *b)
{
	struct kprim_breaker_counts c;

	return kprim_breaker_counts(b, &c) ? 0 : c.consecutive_failures;
}

/*
 * Process B: after A's two failures, fails once more (the third in a row,
 * host-wide), tells A, and then tries calls.
 */
static int process_b(int ready_fd, int tripped_fd)
{
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	struct kprim *k;
	char c;

	if (read(ready_fd, &c, 1) != 1 || open_breaker(&k, &b))
		return 1;
	printf("  B: breaker %s, %u failures in a row so far (A's)\n",
	       name(kprim_breaker_state(b)), in_a_row(b));
	if (kprim_breaker_allow(b, &t))
		return 1;
	kprim_breaker_done(b, &t, false);
	printf("  B: my call failed too: the third in a row, breaker %s\n",
	       name(kprim_breaker_state(b)));
	if (write(tripped_fd, "x", 1) != 1)
		return 1;
	printf("  B: call -> %s\n", kprim_breaker_allow(b, &t) == -EBUSY ?
	       "rejected at once (-EBUSY): no request sent to the sick backend" :
	       "allowed?!");
	sleep(1);
	usleep(200000);
	if (kprim_breaker_allow(b, &t) == 0) {
		printf("  B: 1.2 s later the breaker is %s: B's call is the probe\n",
		       name(kprim_breaker_state(b)));
		kprim_breaker_done(b, &t, true);
	}
	printf("  B: probe succeeded, breaker now %s\n",
	       name(kprim_breaker_state(b)));
	kprim_breaker_free(b);
	kprim_close(k);
	return 0;
}

int main(void)
{
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	int ready[2], tripped[2], status, i;
	struct kprim *k;
	pid_t pid;
	char c;

	if (pipe(ready) || pipe(tripped))
		return 1;
	pid = fork();
	if (pid == 0)
		_exit(process_b(ready[0], tripped[1]));
	if (open_breaker(&k, &b)) {
		fprintf(stderr, "cannot open the shared breaker\n");
		return 1;
	}
	for (i = 1; i <= 2; i++) {
		if (kprim_breaker_allow(b, &t))
			break;
		kprim_breaker_done(b, &t, false);
		printf("  A: call %d failed, breaker %s\n", i,
		       name(kprim_breaker_state(b)));
	}
	if (write(ready[1], "x", 1) != 1 || read(tripped[0], &c, 1) != 1)
		return 1;
	printf("  A: call -> %s\n", kprim_breaker_allow(b, &t) == -EBUSY ?
	       "rejected too: A sees what B saw" : "allowed?!");
	waitpid(pid, &status, 0);
	printf("  A: and A sees it %s too\n", name(kprim_breaker_state(b)));
	kprim_breaker_free(b);
	kprim_unlink(k, KPRIM_CACHE_KIND, "kprim-breaker.payments");
	kprim_unlink(k, KPRIM_SEM_KIND, "kprim-breaker.payments");
	kprim_close(k);
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : 1;
}
