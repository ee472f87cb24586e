/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim_breaker - circuit breaker (closed -> open -> half-open).
 *
 * Closed: calls pass; the breaker trips to open after @consecutive_failures
 * failures in a row, or when the failure rate over the sliding window
 * reaches @failure_rate_pct with at least @min_calls calls in the window.
 * Open: calls are rejected until @open_timeout_ns has passed; the next
 * kprim_breaker_allow() moves it to half-open.
 * Half-open: at most @half_open_probes calls are in flight at a time (a
 * slot frees when its result is reported); any failure re-opens, and
 * @success_threshold successes close it.
 *
 * Every transition starts a new generation; a result reported with a
 * ticket of an older generation is ignored (-ESTALE), so calls admitted
 * before a transition cannot affect the new state. All window and
 * consecutive counters are reset on every transition.
 *
 * Errno conventions: 0 or a negative errno. -EINVAL for NULL handles and
 * invalid settings, -EBUSY when a call is rejected, -ESTALE for an ignored
 * result, -ENOMEM.
 *
 * Local mode (kprim_breaker_new()) lives in the process; shared mode
 * (kprim_breaker_new_shared()) keeps the state in the kprim kernel module,
 * seen by every process of the host: see kprim_breaker_new_shared() for
 * what is shared and what stays per process.
 *
 * fork(): a local breaker is process memory; the child gets an
 * independent copy (state, counts, notifications not yet delivered) and
 * from then on each process drives its own. A shared handle belongs to
 * the process that opened it: in a child every call on an inherited
 * handle fails with -EXDEV and changes nothing (the child opens its own
 * handle with kprim_breaker_new_shared()); kprim_breaker_free() there only
 * frees the child's copy. As for anything after fork() in a
 * multi-threaded process, a breaker another thread was inside a call on at
 * the moment of the fork may be unusable in the child.
 */
#ifndef KPRIM_BREAKER_H
#define KPRIM_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "kprim/session.h"

#ifdef __cplusplus
extern "C" {
#endif

enum kprim_breaker_state {
	KPRIM_BREAKER_CLOSED = 0,
	KPRIM_BREAKER_OPEN = 1,
	KPRIM_BREAKER_HALF_OPEN = 2,
};

enum kprim_breaker_window {
	KPRIM_BREAKER_WINDOW_NONE = 0,	/* consecutive failures only */
	KPRIM_BREAKER_WINDOW_COUNT = 1,	/* the last @window_size calls */
	KPRIM_BREAKER_WINDOW_TIME = 2,	/* calls in the last @window_ns */
};

#define KPRIM_BREAKER_WINDOW_MAX	65536	/* calls or buckets */

struct kprim_breaker;

/**
 * struct kprim_breaker_settings - configuration (checked by _new()).
 * @consecutive_failures: trip after this many failures in a row, 0 = off
 * @window:	enum kprim_breaker_window
 * @window_size: COUNT: calls in the window; TIME: buckets the window is
 *		split into (1..KPRIM_BREAKER_WINDOW_MAX)
 * @window_ns:	TIME: window length, >= @window_size ns
 * @min_calls:	window: no rate decision below this many calls (>= 1; for a
 *		COUNT window at most @window_size)
 * @failure_rate_pct: window: trip at this failure percentage (1..100)
 * @open_timeout_ns: time spent open before half-open (>= 1)
 * @half_open_probes: concurrent half-open calls (>= 1)
 * @success_threshold: half-open successes needed to close (>= 1)
 * @clock:	ns clock, NULL = CLOCK_MONOTONIC (tests inject their own;
 *		shared mode: must be NULL)
 * @on_state_change: optional; called once per transition, in the order
 *		the transitions were made (each @from is the previous @to),
 *		never twice at once, with no breaker lock held. A call
 *		that made a transition returns only once it has been
 *		notified: the call runs the callback itself for the
 *		transitions up to and including its own, or waits while
 *		another thread runs it for them (one thread at a time:
 *		when one stops, a waiting call whose transition is not
 *		yet notified takes over); it never runs it for a
 *		transition made after its own. So a call
 *		runs the callback at most for the transitions of the calls
 *		in progress (a few each), and at most that many wait in
 *		the queue. Calls that made no transition never run it.
 *		The callback may call back into the breaker: a transition
 *		made there is notified by the same thread right after the
 *		callback returns (the inner call returns first). A call
 *		made inside any breaker's callback into another breaker
 *		does not wait (two breakers' callbacks calling each other
 *		would deadlock): it notifies its transitions itself if no
 *		thread is delivering; if another thread is, that
 *		thread, or the last call still delivering or waiting
 *		after it, also notifies the inner call's transitions,
 *		which may then go on for as long as such calls keep
 *		coming. By the time every call has returned, every
 *		transition has been notified. Should growing the queue
 *		fail (out of memory), the notification is dropped, the
 *		transition is not
 * @shared_mode: shared mode: permission bits of the kernel objects when
 *		this call creates them (0 = 0600, the owner's processes only;
 *		0660 shares with the group); at most 0777. Local mode: must
 *		be 0
 *
 * At least one of @consecutive_failures and @window must be enabled.
 */
struct kprim_breaker_settings {
	uint32_t consecutive_failures;
	uint32_t window;
	uint32_t window_size;
	uint64_t window_ns;
	uint32_t min_calls;
	uint32_t failure_rate_pct;
	uint64_t open_timeout_ns;
	uint32_t half_open_probes;
	uint32_t success_threshold;
	uint64_t (*clock)(void *arg);
	void *clock_arg;
	void (*on_state_change)(void *arg, int from, int to);
	void *cb_arg;
	uint32_t shared_mode;
};

/* Admission proof; pass it back to kprim_breaker_done(). */
struct kprim_breaker_ticket {
	uint64_t gen;
	uint32_t probe;		/* 1: holds a half-open probe slot */
	uint32_t reserved;
};

struct kprim_breaker_counts {
	uint64_t allowed, rejected;	/* kprim_breaker_allow() outcomes */
	uint64_t successes, failures;	/* results counted */
	uint64_t ignored;		/* stale results (-ESTALE) */
	uint64_t transitions;
	uint32_t consecutive_failures;	/* current state's counters */
	uint32_t window_calls, window_failures;
	uint32_t probes_in_flight;
};

/** kprim_breaker_new() - Return: 0, -EINVAL, -ENOMEM. */
int kprim_breaker_new(const struct kprim_breaker_settings *s,
		      struct kprim_breaker **out);

/**
 * kprim_breaker_new_shared() - a breaker shared by every process of the
 * host that opens the same @name.
 * @k:		kprim session (kprim_open(); -ENODEV there means no module)
 * @name:	1..KPRIM_BREAKER_NAME_MAX bytes, no '/'
 * @s:		settings; @clock must be NULL (shared time is
 *		CLOCK_MONOTONIC, the clock every process agrees on)
 * @out:	the handle; free it with kprim_breaker_free()
 *
 * Kernel objects: a cache and a semaphore, both named
 * "kprim-breaker.<name>" (mode @shared_mode, default 0600: the processes
 * of one user), created on first use and kept until removed with
 * kprim_unlink() (kprimctl rm): the breaker outlives its processes.
 * Opening needs read and write permission on both (-EACCES).
 *
 * Shared host-wide: the state, the generation, the time the state was
 * entered, the force_open() pin, the count of failures in a row (failures
 * reported by any process add up to @consecutive_failures, a success
 * reported by any process resets it), the half-open success count
 * (successes reported by any process add up to @success_threshold) and the
 * half-open probe slots (@half_open_probes semaphore permits: at most that
 * many probe calls run at once across all processes; a permit is held by
 * the handle and the kernel returns it when its process dies).
 *
 * Per process (per handle): the sliding window of failure rates (each
 * process trips the shared breaker on the calls it saw itself; the window
 * is reset when any transition is seen), the counts of
 * kprim_breaker_counts() (except @consecutive_failures and
 * @probes_in_flight, host-wide), and @on_state_change, called only for
 * transitions this handle made.
 *
 * A probe admitted in one half-open generation keeps its permit until it
 * is reported, even if the breaker moves on; a slow stale probe thus
 * leaves fewer slots for the next half-open period, never more.
 *
 * A handle belongs to one process: after fork() the child opens its own.
 * An inherited handle refuses every call with -EXDEV (a permit taken
 * through it would be shared with the parent's descriptors and not come
 * back when the child dies); freeing it in the child releases nothing of
 * the parent's. The objects are opened close-on-exec.
 *
 * The first process to create the breaker fixes @half_open_probes,
 * @open_timeout_ns, @success_threshold and @consecutive_failures; a later
 * open with other values fails with -EEXIST. If the state entry is lost (the kernel may evict
 * cache entries under memory pressure), the breaker restarts closed.
 *
 * The other functions behave as for a local breaker, and may in addition
 * return a negative errno from the kernel (for example -EIO), never a
 * state they could not read, and -EXDEV on a handle inherited through
 * fork().
 *
 * Return: 0; -EINVAL (NULL argument, invalid settings, a custom @clock,
 * empty name or one with '/'); -ENAMETOOLONG; -EEXIST (created with other
 * shared settings); -EACCES (another user's breaker); -EPROTO (the cache
 * entry does not hold a breaker state this library understands); -ENOMEM;
 * or what kprim_cache_open()/kprim_sem_open() return.
 */
int kprim_breaker_new_shared(struct kprim *k, const char *name,
			     const struct kprim_breaker_settings *s,
			     struct kprim_breaker **out);

/* Longest @name of kprim_breaker_new_shared(): the kernel's 255-byte name
 * limit minus the "kprim-breaker." prefix. */
#define KPRIM_BREAKER_NAME_MAX	241

/** kprim_breaker_free() - NULL: no-op. */
void kprim_breaker_free(struct kprim_breaker *b);

/**
 * kprim_breaker_allow() - may a call go ahead?
 * Return: 0 (fill @t, report with kprim_breaker_done()), -EBUSY (open, or
 * half-open without a free probe slot), -EINVAL.
 */
int kprim_breaker_allow(struct kprim_breaker *b, struct kprim_breaker_ticket *t);

/**
 * kprim_breaker_done() - report the result of an admitted call.
 * Report every ticket exactly once: a half-open probe's slot is given back
 * here, also when the result is stale.
 * Return: 0, -ESTALE (the breaker changed generation since; ignored),
 * -EINVAL.
 */
int kprim_breaker_done(struct kprim_breaker *b,
		       const struct kprim_breaker_ticket *t, bool success);

/**
 * kprim_breaker_state() - current state (>= 0) or -EINVAL. Open stays open
 * here after the timeout: half-open is entered by the next allow().
 */
int kprim_breaker_state(struct kprim_breaker *b);

/**
 * kprim_breaker_counts() - this handle's counts; @consecutive_failures is
 * the breaker's (host-wide in shared mode; 0 unless closed, and always 0
 * when the consecutive_failures setting is off).
 * Return: 0, -EINVAL, or (shared mode) a negative errno from the kernel.
 */
int kprim_breaker_counts(struct kprim_breaker *b,
			 struct kprim_breaker_counts *c);

/** kprim_breaker_force_open() - open, and stay open until force_close(). */
int kprim_breaker_force_open(struct kprim_breaker *b);

/** kprim_breaker_force_close() - close (counters reset, not pinned). */
int kprim_breaker_force_close(struct kprim_breaker *b);

/** kprim_breaker_state_name() - "closed", "open", "half-open" or "?". */
const char *kprim_breaker_state_name(int state);

#ifdef __cplusplus
}
#endif

#endif /* KPRIM_BREAKER_H */
