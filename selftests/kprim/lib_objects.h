/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Anonymous library objects for the tests that use libkprim's handles
 * (lib_test, uring_lib_test). Include after kselftest_harness.h.
 */
#ifndef KPRIM_LIB_OBJECTS_H
#define KPRIM_LIB_OBJECTS_H

#include <kprim.h>

/* @initial < 0: the default fill (full). */
static inline struct kprim_limiter *
new_limiter(struct __test_metadata *_metadata, struct kprim *k, uint64_t rate,
	    uint64_t period, uint64_t burst, long initial)
{
	struct kprim_limiter_config cfg = {
		.rate = rate, .period_ns = period, .burst = burst,
		.initial = initial >= 0 ? (uint64_t)initial : 0,
		.has_initial = initial >= 0,
	};
	struct kprim_limiter *l = NULL;

	EXPECT_EQ(0, kprim_limiter_open(k, NULL, KPRIM_CREATE, 0600, &cfg, &l));
	return l;
}

static inline struct kprim_sem *new_sem(struct __test_metadata *_metadata,
					struct kprim *k, uint64_t permits)
{
	struct kprim_sem *s = NULL;

	EXPECT_EQ(0, kprim_sem_open(k, NULL, KPRIM_CREATE, 0600, permits, &s));
	return s;
}

static inline struct kprim_cache *
new_cache_cfg(struct __test_metadata *_metadata, struct kprim *k,
	      const struct kprim_cache_config *cfg)
{
	struct kprim_cache *c = NULL;

	EXPECT_EQ(0, kprim_cache_open(k, NULL, KPRIM_CREATE, 0600, cfg, &c));
	return c;
}

#endif /* KPRIM_LIB_OBJECTS_H */
