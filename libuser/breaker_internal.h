/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Circuit breaker internals shared by breaker.c (the state machine) and
 * breaker_shared.c (the kernel-backed backend). Not installed.
 *
 * The state machine never touches the state word or the probe slots
 * directly: it loads the word, decides, and publishes the decision with a
 * compare-and-swap, reloading and deciding again when another thread or
 * process got there first. The backend owns where the word lives.
 */
#ifndef KPRIM_BREAKER_INTERNAL_H
#define KPRIM_BREAKER_INTERNAL_H

#include <stdint.h>
#include "kprim/breaker.h"

/*
 * The shared part of a breaker. Fixed-width fields only: in shared mode
 * this struct is the cache entry's value, read by every process.
 */
struct breaker_word {
	uint64_t gen;		/* +1 on every transition */
	uint64_t since_ns;	/* CLOCK_MONOTONIC when the state was entered */
	uint32_t state;		/* enum kprim_breaker_state */
	uint32_t forced;	/* pinned open by force_open() */
	uint32_t probe_successes; /* half-open successes in this generation */
	/* Closed: failures in a row (0 while the consecutive_failures
	 * setting is off); any success resets it. */
	uint32_t consecutive_failures;
};

/*
 * Backend operations, all called with the breaker's mutex held (so a
 * backend needs no lock of its own for per-handle data).
 */
struct breaker_backend_ops {
	/* 0 or -errno. */
	int (*load)(void *be, struct breaker_word *w);
	/*
	 * Replace @old (the word last loaded) with @new: 0, -EAGAIN when the
	 * word changed since (reload and decide again), or -errno.
	 */
	int (*cas)(void *be, const struct breaker_word *old,
		   const struct breaker_word *new);
	/* Take a half-open probe slot: 0, -EBUSY (none free) or -errno. */
	int (*probe_acquire)(void *be);
	/*
	 * Give back the slot taken for a ticket of generation @gen. Called
	 * for every probe ticket exactly once, whatever the outcome; the
	 * backend decides whether the slot still counts (the local backend
	 * drops slots of old generations at reset, shared permits are held
	 * per handle until released).
	 */
	void (*probe_release)(void *be, uint64_t gen);
	/* A transition to generation @gen, half-open with @permits slots
	 * (0 for any other state). */
	void (*probe_reset)(void *be, uint64_t gen, uint32_t permits);
	/* Slots in use (shared: host-wide). */
	uint32_t (*probes_in_flight)(void *be);
	/* Free the backend (may be NULL). */
	void (*destroy)(void *be);
};

/*
 * Library-internal functions: the kprim__ prefix keeps them out of the
 * user's namespace in libkprim.a, hidden visibility out of libkprim.so
 * (tools/check-symbols.sh checks both).
 */
#define KPRIM_BREAKER_INTERNAL	__attribute__((visibility("hidden")))

/*
 * kprim__breaker_create() - allocate a breaker over a backend (checks @s).
 * On success the breaker owns @be and destroys it in kprim_breaker_free();
 * on failure the caller still owns it.
 * Return: 0, -EINVAL, -ENOMEM.
 */
KPRIM_BREAKER_INTERNAL
int kprim__breaker_create(const struct kprim_breaker_settings *s,
			  const struct breaker_backend_ops *ops, void *be,
			  struct kprim_breaker **out);

/* kprim__breaker_check_settings() - 0 or -EINVAL. */
KPRIM_BREAKER_INTERNAL
int kprim__breaker_check_settings(const struct kprim_breaker_settings *s);

#endif /* KPRIM_BREAKER_INTERNAL_H */
