/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkprim: semaphore acquires and releases in userspace, through the
 * fd's slot page (KPRIM_FEAT_SEM_SLOT; the protocol is described with
 * struct kprim_sem_slot in the uapi header and modelled in
 * models/sem_page.pml). Inline: sem.c is the only caller, and this is its
 * hot path.
 *
 * Permits the fd holds but nobody uses are parked in the slot. An acquire
 * that they cover, and a release, are one compare-and-swap of the slot's
 * word; everything else goes to the kernel: a slot marked SLOW (a waiter
 * is queued somewhere, or the kernel took the parked permits back), an
 * acquire the parked permits do not cover, a release beyond what the fd
 * holds (the kernel says -EINVAL).
 */
#ifndef KPRIM_SEM_SLOT_H
#define KPRIM_SEM_SLOT_H

#include "internal.h"

/* Retries of a swap that lost a race before the ioctl decides. */
#define KPRIM_SLOT_TRIES	4

/*
 * Test hook (defined in sem.c): when set, called with 1 between the read of the
 * word and the swap, and with 2 right after a successful swap, so that a
 * test can stop or kill a process at each step of the protocol.
 */
KPRIM_INTERNAL extern void (*kprim_test_sem_slot_hook)(int step);

static inline void kprim_slot_hook(int step)
{
	void (*hook)(int) = __atomic_load_n(&kprim_test_sem_slot_hook,
					    __ATOMIC_RELAXED);

	if (hook)
		hook(step);
}

/* Acquire @n parked permits. Return: 0, or -EAGAIN: use the ioctl. */
static inline int kprim_sem_slot_acquire(struct kprim_sem_slot *sl,
					 uint64_t n)
{
	__u64 w = __atomic_load_n(&sl->word, __ATOMIC_ACQUIRE);
	int tries;

	for (tries = 0; tries < KPRIM_SLOT_TRIES; tries++) {
		if ((w & KPRIM_SEM_SLOT_SLOW) || (w & KPRIM_SEM_SLOT_FREE) < n)
			return -EAGAIN;
		kprim_slot_hook(1);
		/* Acquire: the critical section starts after the swap. */
		if (__atomic_compare_exchange_n(&sl->word, &w, w - n, false,
						__ATOMIC_ACQUIRE,
						__ATOMIC_ACQUIRE)) {
			kprim_slot_hook(2);
			__atomic_fetch_add(&sl->acquired, 1, __ATOMIC_RELAXED);
			return 0;
		}
	}
	return -EAGAIN;
}

/* Park @n released permits. Return: 0, or -EAGAIN: use the ioctl. */
static inline int kprim_sem_slot_release(struct kprim_sem_slot *sl,
					 uint64_t n)
{
	__u64 w = __atomic_load_n(&sl->word, __ATOMIC_RELAXED);
	uint64_t free, held;
	int tries;

	for (tries = 0; tries < KPRIM_SLOT_TRIES; tries++) {
		if (w & KPRIM_SEM_SLOT_SLOW)
			return -EAGAIN;
		free = w & KPRIM_SEM_SLOT_FREE;
		held = (w & KPRIM_SEM_SLOT_HELD) >> KPRIM_SEM_SLOT_HELD_SHIFT;
		/*
		 * Not more than the fd holds in use (the kernel refuses that),
		 * and a count the word can carry.
		 */
		if (free > held || n > held - free ||
		    free + n > KPRIM_SEM_SLOT_FREE)
			return -EAGAIN;
		kprim_slot_hook(1);
		/* Release: the critical section ends before the swap. */
		if (__atomic_compare_exchange_n(&sl->word, &w, w + n, false,
						__ATOMIC_RELEASE,
						__ATOMIC_RELAXED)) {
			kprim_slot_hook(2);
			return 0;
		}
	}
	return -EAGAIN;
}

#endif /* KPRIM_SEM_SLOT_H */
