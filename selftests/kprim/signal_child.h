/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for selftests that hit a blocked kprim wait with signals:
 * the wait runs in a child process that reports through shared memory,
 * while the parent stops, continues or pesters it.
 */
#ifndef KPRIM_SIGNAL_CHILD_H
#define KPRIM_SIGNAL_CHILD_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kprim_test.h"

/* What the child saw, in memory shared with the parent. */
struct kt_child_report {
	volatile long ret;		/* the wait's result */
	volatile uint64_t elapsed_ns;	/* how long the call took */
	volatile int signals;		/* handler runs during the call */
};

static struct kt_child_report *kt_report;

static inline struct kt_child_report *kt_report_map(void)
{
	void *p = mmap(NULL, sizeof(*kt_report), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	kt_report = p;
	kt_report->ret = 1;
	return kt_report;
}

static inline void kt_count_signal(int sig)
{
	(void)sig;
	kt_report->signals++;
}

/* In the child: count @sig in a handler, SA_RESTART if @restart. */
static inline int kt_catch_signal(int sig, bool restart)
{
	struct sigaction sa = { .sa_handler = kt_count_signal };

	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	return sigaction(sig, &sa, NULL);
}

/*
 * In the parent: send @sig to @pid every @period_us until it exits or
 * @max_ns have passed, then wait for it. Returns its wait status, or -1.
 */
static inline int kt_pester(pid_t pid, int sig, long period_us,
			    uint64_t max_ns)
{
	uint64_t end = kt_now_ns() + max_ns;
	int status;
	pid_t r;

	while (kt_now_ns() < end) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		kill(pid, sig);
		usleep(period_us);
	}
	return waitpid(pid, &status, 0) == pid ? status : -1;
}

/* In the parent: SIGSTOP @pid and wait until it is stopped. */
static inline bool kt_stop(pid_t pid)
{
	int status;

	if (kill(pid, SIGSTOP))
		return false;
	return waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status);
}

/* Did the child exit with status 0? */
static inline bool kt_child_ok(int status)
{
	return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#endif /* KPRIM_SIGNAL_CHILD_H */
