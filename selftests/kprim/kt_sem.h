/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Raw semaphore ioctls shared by the kprim selftests of the semaphore and
 * its slot page (KPRIM_FEAT_SEM_SLOT): open, acquire, release, info, and
 * the slot's mapping.
 */
#ifndef KPRIM_KT_SEM_H
#define KPRIM_KT_SEM_H

#include <string.h>
#include <sys/mman.h>
#include "kprim_test.h"

/* Open the semaphore @name (NULL: anonymous) with @flags; its fd or -errno. */
static inline int kt_sem_open(int sess, const char *name, __u32 flags,
			      __u64 permits)
{
	struct kprim_open o = kt_open_args(KPRIM_KIND_SEM, name, flags);

	o.sem.permits = permits;
	return kt_open(sess, &o);
}

/* Acquire @n permits, waiting up to @timeout_ns: 0 or a negative errno. */
static inline long kt_sem_acquire(int fd, __u64 n, __u64 timeout_ns)
{
	struct kprim_sem_acquire a = {
		.size = sizeof(a), .n = n,
		.wait = kt_wait(timeout_ns, KPRIM_NO_CANCEL_FD),
	};

	return kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &a);
}

static inline long kt_sem_release(int fd, __u64 n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RELEASE, &r);
}

/* The semaphore's INFO; every byte 0xff when the ioctl fails. */
static inline struct kprim_sem_info kt_sem_info(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };

	if (kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i))
		memset(&i, 0xff, sizeof(i));
	return i;
}

/* The fd's slot page, mapped read-write; NULL on failure. */
static inline struct kprim_sem_slot *kt_sem_map(int fd)
{
	void *p = mmap(NULL, sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * The slot protocol as libkprim runs it, for tests that drive a mapped slot
 * by hand. A release of @n parked in the slot with one compare-and-swap.
 * Return: 1 when parked, 0 when the word sends it to the kernel, -1 when
 * the swap lost a race (the word changed under it).
 */
static inline int kt_slot_release(struct kprim_sem_slot *sl, __u64 n)
{
	__u64 w = __atomic_load_n(&sl->word, __ATOMIC_RELAXED);
	__u64 free = w & KPRIM_SEM_SLOT_FREE;
	__u64 held = (w & KPRIM_SEM_SLOT_HELD) >> KPRIM_SEM_SLOT_HELD_SHIFT;

	if ((w & KPRIM_SEM_SLOT_SLOW) || free > held || n > held - free)
		return 0;
	return __atomic_compare_exchange_n(&sl->word, &w, w + n, false,
					   __ATOMIC_RELEASE,
					   __ATOMIC_RELAXED) ? 1 : -1;
}

/* An acquire of @n from the slot. Return: 1, 0 (use the ioctl), -1 (lost). */
static inline int kt_slot_acquire(struct kprim_sem_slot *sl, __u64 n)
{
	__u64 w = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);

	if ((w & KPRIM_SEM_SLOT_SLOW) || (w & KPRIM_SEM_SLOT_FREE) < n)
		return 0;
	return __atomic_compare_exchange_n(&sl->word, &w, w - n, false,
					   __ATOMIC_ACQUIRE,
					   __ATOMIC_ACQUIRE) ? 1 : -1;
}

/* A library-style release of one permit: the slot, else the ioctl. */
static inline long kt_slot_release_one(int fd, struct kprim_sem_slot *sl)
{
	for (;;) {
		int r = kt_slot_release(sl, 1);

		if (r > 0)
			return 0;
		if (!r)
			return kt_sem_release(fd, 1);
	}
}

#endif /* KPRIM_KT_SEM_H */
