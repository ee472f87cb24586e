// SPDX-License-Identifier: GPL-2.0
/*
 * Shared circuit breaker (kprim_breaker_new_shared): several processes, each
 * with its own handle on one named breaker, see one state. One trips it,
 * the others see it open; failures in a row add up across processes and a
 * success anywhere breaks the row; the open timeout moves it to half-open for all;
 * a half-open prober killed with SIGKILL gives its probe back; exactly M
 * probes are admitted across processes; either process can close it.
 *
 * Children never use the parent's handle (a handle belongs to one process,
 * see breaker.h; inherited_handle_refused_in_child checks that they
 * cannot). They report through their exit status, 0 = as expected.
 *
 * Timing: OPEN_TIMEOUT_NS is the only clock in play; after sleeping past
 * it the test relies only on "at least that long has passed" (exact).
 */
#include <grp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "kprim.h"

#define MSEC		1000000ull
#define OPEN_TIMEOUT_NS	(300 * MSEC)

static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return 0;
}

static struct kprim_breaker_settings settings(uint32_t probes)
{
	struct kprim_breaker_settings s = {
		.consecutive_failures = 3,
		.open_timeout_ns = OPEN_TIMEOUT_NS,
		.half_open_probes = probes,
		.success_threshold = 1,
	};

	return s;
}

/* Sleep until the open timeout has certainly passed. */
static void past_open_timeout(void)
{
	usleep(OPEN_TIMEOUT_NS / 1000 + 50000);
}

/* Three failures: trips a breaker with consecutive_failures = 3. */
static int trip(struct kprim_breaker *b)
{
	struct kprim_breaker_ticket t;
	int rc;

	for (int i = 0; i < 3; i++) {
		rc = kprim_breaker_allow(b, &t);
		if (rc)
			return rc;
		rc = kprim_breaker_done(b, &t, false);
		if (rc)
			return rc;
	}
	return 0;
}

/* A child's own session and handle; exits 100 + errno-ish on failure. */
static struct kprim_breaker *child_open(const char *name,
					const struct kprim_breaker_settings *s,
					struct kprim **k)
{
	struct kprim_breaker *b;

	if (kprim_open(k))
		_exit(100);
	if (kprim_breaker_new_shared(*k, name, s, &b))
		_exit(101);
	return b;
}

static int wait_child(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

FIXTURE(shared) {
	struct kprim *k;
	char name[64];
};

FIXTURE_SETUP(shared)
{
	static int seq;
	int rc = kprim_open(&self->k);

	if (rc == -ENODEV)
		SKIP(return, "no /dev/kprim: kprim.ko not loaded");
	ASSERT_EQ(0, rc);
	snprintf(self->name, sizeof(self->name), "bst-%d-%d", getpid(), ++seq);
}

FIXTURE_TEARDOWN(shared)
{
	char obj[128];

	if (!self->k)
		return;
	/* The breaker's objects are persistent: remove them. */
	snprintf(obj, sizeof(obj), "kprim-breaker.%s", self->name);
	kprim_unlink(self->k, KPRIM_CACHE_KIND, obj);
	kprim_unlink(self->k, KPRIM_SEM_KIND, obj);
	kprim_close(self->k);
}

TEST_F(shared, child_trips_parent_sees_open)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);

		if (trip(cb))
			_exit(1);
		_exit(kprim_breaker_state(cb) == KPRIM_BREAKER_OPEN ? 0 : 2);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));
	kprim_breaker_free(b);
}

TEST_F(shared, stale_ticket_after_other_process_trips)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));	/* admitted while closed */
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(trip(child_open(self->name, &s, &ck)) ? 1 : 0);
	ASSERT_EQ(0, wait_child(pid));
	/* Our result belongs to the closed generation: ignored. */
	EXPECT_EQ(-ESTALE, kprim_breaker_done(b, &t, true));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

/* One closed-state result: allow, then report. */
static int report(struct kprim_breaker *b, bool success)
{
	struct kprim_breaker_ticket t;
	int rc = kprim_breaker_allow(b, &t);

	return rc ? rc : kprim_breaker_done(b, &t, success);
}

static uint32_t in_a_row(struct kprim_breaker *b)
{
	struct kprim_breaker_counts c;

	return kprim_breaker_counts(b, &c) ? UINT32_MAX : c.consecutive_failures;
}

TEST_F(shared, failures_in_a_row_add_up_across_processes)
{
	struct kprim_breaker_settings s = settings(1);	/* trips at 3 */
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, report(b, false));
	ASSERT_EQ(1, in_a_row(b));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);

		/* The child sees the parent's failure, adds one of its own. */
		if (in_a_row(cb) != 1 || report(cb, false) || in_a_row(cb) != 2)
			_exit(1);
		_exit(kprim_breaker_state(cb) == KPRIM_BREAKER_CLOSED ? 0 : 2);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(2, in_a_row(b));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	/* The third failure in a row, whoever reports it, trips it. */
	EXPECT_EQ(0, report(b, false));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	EXPECT_EQ(0, in_a_row(b));
	kprim_breaker_free(b);
}

TEST_F(shared, success_in_another_process_breaks_the_row)
{
	struct kprim_breaker_settings s = settings(1);	/* trips at 3 */
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, report(b, false));
	ASSERT_EQ(0, report(b, false));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);

		_exit(report(cb, true) || in_a_row(cb) != 0 ? 1 : 0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, in_a_row(b));
	/* Two more failures make two in a row, not four: still closed. */
	EXPECT_EQ(0, report(b, false));
	EXPECT_EQ(0, report(b, false));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

/*
 * N processes, released together, report failures, below the threshold
 * in total: the compare-and-swap must count each exactly once (a lost
 * update shows as fewer, a double count as more or as a trip).
 */
TEST_F(shared, concurrent_failures_counted_exactly_once)
{
	enum { PROCS = 4, EACH = 200 };
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b;
	pid_t pids[PROCS];
	struct kprim *ck;
	int ready[2], go[2];
	char byte;

	s.consecutive_failures = PROCS * EACH + 1;
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			struct kprim_breaker *cb = child_open(self->name, &s, &ck);

			/* Opened: say so, then wait for the start (EOF once
			 * the parent closes the last write end). */
			close(go[1]);
			if (write(ready[1], "r", 1) != 1 ||
			    read(go[0], &byte, 1) != 0)
				_exit(2);
			for (int j = 0; j < EACH; j++)
				if (report(cb, false))
					_exit(1);
			_exit(0);
		}
	}
	close(go[0]);
	for (int i = 0; i < PROCS; i++)
		ASSERT_EQ(1, read(ready[0], &byte, 1));
	close(go[1]);	/* EOF releases them all at once */
	for (int i = 0; i < PROCS; i++)
		EXPECT_EQ(0, wait_child(pids[i]));
	EXPECT_EQ(PROCS * EACH, in_a_row(b));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	/* One more, the threshold: open. */
	EXPECT_EQ(0, report(b, false));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	close(ready[0]);
	close(ready[1]);
	kprim_breaker_free(b);
}

TEST_F(shared, open_timeout_half_open_seen_by_all)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	past_open_timeout();
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);
		struct kprim_breaker_ticket t;

		/* The child's allow moves it to half-open and probes. */
		if (kprim_breaker_allow(cb, &t) || !t.probe)
			_exit(1);
		if (kprim_breaker_state(cb) != KPRIM_BREAKER_HALF_OPEN)
			_exit(2);
		/* Report nothing: exiting returns the probe. */
		_exit(0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(KPRIM_BREAKER_HALF_OPEN, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

TEST_F(shared, killed_prober_returns_its_probe)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker_ticket t;
	struct kprim_breaker_counts c;
	struct kprim_breaker *b;
	struct kprim *ck;
	int pfd[2];
	char ok = 0;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	past_open_timeout();
	ASSERT_EQ(0, pipe(pfd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);
		struct kprim_breaker_ticket ct;

		close(pfd[0]);
		ok = kprim_breaker_allow(cb, &ct) == 0 && ct.probe;
		if (write(pfd[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();	/* hold the probe until killed */
	}
	close(pfd[1]);
	ASSERT_EQ(1, read(pfd[0], &ok, 1));
	close(pfd[0]);
	ASSERT_EQ(1, ok);
	/* The only probe is held by the child. */
	EXPECT_EQ(KPRIM_BREAKER_HALF_OPEN, kprim_breaker_state(b));
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(1, c.probes_in_flight);
	kill(pid, SIGKILL);
	EXPECT_EQ(200 + SIGKILL, wait_child(pid));
	/* Its process died: the kernel returned the permit. */
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(0, c.probes_in_flight);
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));
	EXPECT_EQ(1, t.probe);
	EXPECT_EQ(0, kprim_breaker_done(b, &t, true));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

/*
 * fork(): the handle the child inherits is the parent's (same kernel
 * files, the same probe permits). Every call on it in the child fails
 * with -EXDEV and changes nothing; free only drops the child's copy. The
 * parent's probe stays its own and the breaker stays as it was.
 */
static int child_uses_inherited(struct kprim_breaker *b,
				const struct kprim_breaker_ticket *t)
{
	struct kprim_breaker_ticket ct;
	struct kprim_breaker_counts c;

	if (kprim_breaker_allow(b, &ct) != -EXDEV)
		return 1;
	if (kprim_breaker_done(b, t, false) != -EXDEV)
		return 2;
	if (kprim_breaker_force_open(b) != -EXDEV)
		return 3;
	if (kprim_breaker_force_close(b) != -EXDEV)
		return 4;
	if (kprim_breaker_state(b) != -EXDEV)
		return 5;
	if (kprim_breaker_counts(b, &c) != -EXDEV)
		return 6;
	kprim_breaker_free(b);
	return 0;
}

TEST_F(shared, inherited_handle_refused_in_child)
{
	struct kprim_breaker_settings s = settings(2);
	struct kprim_breaker_ticket t;
	struct kprim_breaker_counts c;
	struct kprim_breaker *b;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	past_open_timeout();
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));
	ASSERT_EQ(1, t.probe);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_uses_inherited(b, &t));
	EXPECT_EQ(0, wait_child(pid));
	EXPECT_EQ(KPRIM_BREAKER_HALF_OPEN, kprim_breaker_state(b));
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(1, c.probes_in_flight);
	EXPECT_EQ(0, kprim_breaker_done(b, &t, true));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(0, c.probes_in_flight);
	kprim_breaker_free(b);
}

#define PROBES		3
#define PROBERS		8

TEST_F(shared, exactly_m_probes_across_processes)
{
	struct kprim_breaker_settings s = settings(PROBES);
	struct kprim_breaker_ticket t;
	struct kprim_breaker_counts c;
	struct kprim_breaker *b;
	struct kprim *ck;
	atomic_int *admitted, *ready;
	pid_t pids[PROBERS];
	int go[2], status, exited = 0;

	/* Enough successes needed that no child closes it meanwhile. */
	s.success_threshold = PROBERS + 1;
	admitted = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, admitted);
	ready = admitted + 1;
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	past_open_timeout();
	ASSERT_EQ(0, pipe(go));
	for (int i = 0; i < PROBERS; i++) {
		pids[i] = fork();
		ASSERT_LE(0, pids[i]);
		if (pids[i] == 0) {
			struct kprim_breaker *cb;
			struct kprim_breaker_ticket ct;
			char x;

			close(go[1]);
			cb = child_open(self->name, &s, &ck);
			atomic_fetch_add(ready, 1);
			/* All start together when the parent closes @go. */
			if (read(go[0], &x, 1) != 0)
				_exit(1);
			if (kprim_breaker_allow(cb, &ct) == 0) {
				atomic_fetch_add(admitted, 1);
				/* Hold the probe until the parent has
				 * counted: it ends the test by killing us. */
				for (;;)
					pause();
			}
			_exit(0);
		}
	}
	close(go[0]);
	for (int i = 0; i < 2000 && atomic_load(ready) < PROBERS; i++)
		usleep(5000);
	ASSERT_EQ(PROBERS, atomic_load(ready));
	close(go[1]);
	/*
	 * Every child either is admitted (and holds on) or is rejected and
	 * exits 0. Wait (bounded: 10 s) until all have decided.
	 */
	for (int i = 0; i < 2000 && exited + atomic_load(admitted) < PROBERS;
	     i++) {
		while (waitpid(-1, &status, WNOHANG) > 0) {
			EXPECT_EQ(0, status);
			exited++;
		}
		usleep(5000);
	}
	EXPECT_EQ(PROBERS - PROBES, exited);
	EXPECT_EQ(PROBES, atomic_load(admitted));
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(PROBES, c.probes_in_flight);
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));
	for (int i = 0; i < PROBERS; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	ASSERT_EQ(0, kprim_breaker_counts(b, &c));
	EXPECT_EQ(0, c.probes_in_flight);
	munmap(admitted, 4096);
	kprim_breaker_free(b);
}

TEST_F(shared, successes_from_two_processes_close_it)
{
	struct kprim_breaker_settings s = settings(2);
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	s.success_threshold = 2;
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	past_open_timeout();
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));	/* probe 1 */
	ASSERT_EQ(1, t.probe);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);
		struct kprim_breaker_ticket ct;

		if (kprim_breaker_allow(cb, &ct) || !ct.probe)	/* probe 2 */
			_exit(1);
		if (kprim_breaker_done(cb, &ct, true))
			_exit(2);
		/* One success of two: still half-open. */
		_exit(kprim_breaker_state(cb) == KPRIM_BREAKER_HALF_OPEN ? 0 : 3);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(0, kprim_breaker_done(b, &t, true));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

TEST_F(shared, probe_failure_in_one_process_reopens_for_all)
{
	struct kprim_breaker_settings s = settings(2);
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	past_open_timeout();
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);
		struct kprim_breaker_ticket ct;

		if (kprim_breaker_allow(cb, &ct) || !ct.probe)
			_exit(1);
		_exit(kprim_breaker_done(cb, &ct, false) ? 2 : 0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	/* Our probe's success came from the old generation. */
	EXPECT_EQ(-ESTALE, kprim_breaker_done(b, &t, true));
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));	/* timeout restarted */
	kprim_breaker_free(b);
}

TEST_F(shared, force_close_from_the_other_process)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, kprim_breaker_force_open(b));
	past_open_timeout();
	/* Pinned: the timeout does not lead to half-open. */
	EXPECT_EQ(-EBUSY, kprim_breaker_allow(b, &t));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);
		struct kprim_breaker_ticket ct;

		if (kprim_breaker_allow(cb, &ct) != -EBUSY)
			_exit(1);
		_exit(kprim_breaker_force_close(cb) ? 2 : 0);
	}
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	EXPECT_EQ(0, kprim_breaker_allow(b, &t));
	EXPECT_EQ(0, kprim_breaker_done(b, &t, true));
	kprim_breaker_free(b);
}

TEST_F(shared, parent_closes_what_child_opened)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b;
	struct kprim *ck;
	pid_t pid;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(kprim_breaker_force_open(child_open(self->name, &s, &ck)));
	ASSERT_EQ(0, wait_child(pid));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	EXPECT_EQ(0, kprim_breaker_force_close(b));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_breaker *cb = child_open(self->name, &s, &ck);

		_exit(kprim_breaker_state(cb) == KPRIM_BREAKER_CLOSED ? 0 : 1);
	}
	EXPECT_EQ(0, wait_child(pid));
	kprim_breaker_free(b);
}

TEST_F(shared, state_outlives_the_handles)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, trip(b));
	kprim_breaker_free(b);
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	EXPECT_EQ(KPRIM_BREAKER_OPEN, kprim_breaker_state(b));
	kprim_breaker_free(b);
}

TEST_F(shared, lost_state_entry_restarts_closed)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_cache *c = NULL;
	struct kprim_breaker_ticket t;
	struct kprim_breaker *b;
	char obj[128];

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	ASSERT_EQ(0, kprim_breaker_allow(b, &t));
	ASSERT_EQ(0, trip(b));
	snprintf(obj, sizeof(obj), "kprim-breaker.%s", self->name);
	ASSERT_EQ(0, kprim_cache_open(self->k, obj, 0, 0, NULL, &c));
	/* As if the shrinker had evicted it. */
	ASSERT_EQ(0, kprim_cache_delete(c, "state", 5));
	EXPECT_EQ(KPRIM_BREAKER_CLOSED, kprim_breaker_state(b));
	/* The generation went on: the old ticket is still stale. */
	EXPECT_EQ(-ESTALE, kprim_breaker_done(b, &t, true));
	kprim_cache_close(c);
	kprim_breaker_free(b);
}

TEST_F(shared, other_shared_settings_eexist)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b, *b2 = NULL;

	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	s.half_open_probes = 2;
	EXPECT_EQ(-EEXIST, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b2));
	s.half_open_probes = 1;
	s.open_timeout_ns *= 2;
	EXPECT_EQ(-EEXIST, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b2));
	s.open_timeout_ns /= 2;
	s.success_threshold = 2;
	EXPECT_EQ(-EEXIST, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b2));
	/* The row of failures is shared: so is its length. */
	s.success_threshold = 1;
	s.consecutive_failures = 7;
	EXPECT_EQ(-EEXIST, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b2));
	EXPECT_EQ(NULL, b2);
	/* The failure-rate window is per process: it may differ. */
	s = settings(1);
	s.window = KPRIM_BREAKER_WINDOW_COUNT;
	s.window_size = 10;
	s.min_calls = 5;
	s.failure_rate_pct = 50;
	EXPECT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b2));
	kprim_breaker_free(b2);
	kprim_breaker_free(b);
}

/* ---- bad input, each on its own ---- */

/* As uid 65534: open the breaker @name; returns the errno or 0. */
static int open_as_nobody(const char *name)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;
	struct kprim *k;
	int status, rc;
	pid_t pid = fork();

	if (pid == 0) {
		if (kprim_open(&k))
			_exit(100);
		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(101);
		rc = kprim_breaker_new_shared(k, name, &s, &b);
		_exit(rc == 0 ? 0 : rc == -EACCES ? 1 : 102);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST_F(shared, default_mode_keeps_other_users_out)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	EXPECT_EQ(1, open_as_nobody(self->name));	/* -EACCES */
	kprim_breaker_free(b);
}

TEST_F(shared, shared_mode_lets_other_users_in)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	s.shared_mode = 0666;
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, self->name, &s, &b));
	EXPECT_EQ(0, open_as_nobody(self->name));
	kprim_breaker_free(b);
}

TEST_F(shared, shared_mode_beyond_0777_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	s.shared_mode = 01777;
	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b));
	EXPECT_EQ(NULL, b);
}

TEST_F(shared, custom_clock_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	s.clock = fake_clock;
	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b));
	EXPECT_EQ(NULL, b);
}

TEST_F(shared, zero_probes_einval)
{
	struct kprim_breaker_settings s = settings(0);
	struct kprim_breaker *b = NULL;

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b));
}

TEST_F(shared, no_trip_condition_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	s.consecutive_failures = 0;
	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b));
}

TEST_F(shared, zero_open_timeout_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	s.open_timeout_ns = 0;
	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, &s,
						    &b));
}

TEST_F(shared, null_name_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, NULL, &s, &b));
}

TEST_F(shared, empty_name_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, "", &s, &b));
}

TEST_F(shared, slash_in_name_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, "a/b", &s, &b));
}

TEST_F(shared, name_too_long_enametoolong)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;
	char name[KPRIM_BREAKER_NAME_MAX + 2];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	EXPECT_EQ(-ENAMETOOLONG, kprim_breaker_new_shared(self->k, name, &s,
							  &b));
}

TEST_F(shared, longest_name_accepted)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;
	char name[KPRIM_BREAKER_NAME_MAX + 1], obj[300];

	memset(name, 'm', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	snprintf(name, 20, "bst-%d", getpid());
	name[strlen(name)] = 'm';
	ASSERT_EQ(KPRIM_BREAKER_NAME_MAX, strlen(name));
	ASSERT_EQ(0, kprim_breaker_new_shared(self->k, name, &s, &b));
	kprim_breaker_free(b);
	snprintf(obj, sizeof(obj), "kprim-breaker.%s", name);
	EXPECT_EQ(0, kprim_unlink(self->k, KPRIM_CACHE_KIND, obj));
	EXPECT_EQ(0, kprim_unlink(self->k, KPRIM_SEM_KIND, obj));
}

TEST_F(shared, null_session_einval)
{
	struct kprim_breaker_settings s = settings(1);
	struct kprim_breaker *b = NULL;

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(NULL, self->name, &s, &b));
}

TEST_F(shared, null_settings_einval)
{
	struct kprim_breaker *b = NULL;

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, NULL,
						    &b));
}

TEST_F(shared, null_out_einval)
{
	struct kprim_breaker_settings s = settings(1);

	EXPECT_EQ(-EINVAL, kprim_breaker_new_shared(self->k, self->name, &s,
						    NULL));
}

TEST_HARNESS_MAIN
