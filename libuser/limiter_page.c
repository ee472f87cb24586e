// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libkprim: mapping a limiter's shared state page (the take itself is in
 * limiter_page.h). The page is mapped when the limiter is
 * opened; a process that cannot use it (no 16-byte CAS on this
 * architecture, a time namespace that shifts CLOCK_MONOTONIC, the
 * KPRIM_NO_LIMITER_PAGE environment variable) uses the ioctl only; so
 * does one that enters such a namespace later (kprim_clock_recheck()).
 */
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "limiter_page.h"

/*
 * Whether this process's CLOCK_MONOTONIC is the kernel's: a time namespace
 * with a monotonic offset would publish times the others do not share.
 * -1 unknown (checked on first use, again in a forked child, which may be
 * in another time namespace), 0 no, 1 yes.
 */
int kprim_clock_shared = -1;
static pthread_once_t kprim_atfork_once = PTHREAD_ONCE_INIT;

/*
 * CLOCK_REALTIME - CLOCK_MONOTONIC when the clock was last found shared:
 * a setns() into a time namespace shifts the second, never the first.
 */
static int64_t kprim_clock_base;

static int64_t kprim_clock_offset(void)
{
	struct timespec rt, mono;

	if (clock_gettime(CLOCK_REALTIME, &rt) ||
	    clock_gettime(CLOCK_MONOTONIC, &mono))
		return INT64_MIN;
	return ((int64_t)rt.tv_sec - mono.tv_sec) * 1000000000 +
	       (rt.tv_nsec - mono.tv_nsec);
}

/*
 * Before a long refill: the clock still is what was checked, or it is
 * checked again (a wall-clock step or slow drift gets a new base; a time
 * namespace entered since turns the page off).
 */
bool kprim_clock_recheck(void)
{
	int64_t d = kprim_clock_offset() -
		    __atomic_load_n(&kprim_clock_base, __ATOMIC_RELAXED);

	if (d >= -(int64_t)KPRIM_CLOCK_RECHECK_NS &&
	    d <= (int64_t)KPRIM_CLOCK_RECHECK_NS)
		return true;
	return kprim_clock_check();
}

static void kprim_clock_forget(void)
{
	__atomic_store_n(&kprim_clock_shared, -1, __ATOMIC_RELAXED);
}

static void kprim_atfork_init(void)
{
	pthread_atfork(NULL, NULL, kprim_clock_forget);
}

int kprim_clock_check(void)
{
	long long sec = 0, nsec = 0;
	char line[128];
	bool shared = true;
	FILE *f;

	/* Before the offsets are read: a setns() after it is seen later. */
	__atomic_store_n(&kprim_clock_base, kprim_clock_offset(),
			 __ATOMIC_RELAXED);
	f = fopen("/proc/self/timens_offsets", "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "monotonic %lld %lld", &sec, &nsec) == 2 &&
			    (sec || nsec))
				shared = false;
		fclose(f);
	}
	/*
	 * No file: a kernel without time namespaces (trusted: /proc/self/ns
	 * is there without "time"), or one with them whose offsets cannot be
	 * read, or no /proc at all (a sandbox, which may well be in a time
	 * namespace): not trusted.
	 */
	else if (access("/proc/self/ns/time", F_OK) == 0 ||
		 access("/proc/self/ns", F_OK) != 0)
		shared = false;
	__atomic_store_n(&kprim_clock_shared, shared, __ATOMIC_RELAXED);
	return shared;
}

struct kprim_limiter_page *kprim_limiter_page_map(const struct kprim_obj *o)
{
	struct kprim_limiter_page *pg;

	if (!KPRIM_HAVE_CAS16)
		return NULL;
	pg = kprim_obj_page_map(o, KPRIM_OBJ_LIMITER_PAGE,
				"KPRIM_NO_LIMITER_PAGE");
	if (pg)
		pthread_once(&kprim_atfork_once, kprim_atfork_init);
	return pg;
}
