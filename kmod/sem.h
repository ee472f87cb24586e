/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - counting semaphore state and its grant/accounting logic, apart
 * from fds, user memory and sleeping so that KUnit can drive it directly.
 */
#ifndef _KPRIM_SEM_H
#define _KPRIM_SEM_H

#include <linux/list.h>
#include <linux/types.h>
#include <linux/wait.h>
#include "kprim.h"

/**
 * struct kprim_sem - one counting semaphore (obj->priv).
 * @wq:		waiters, oldest first; @wq.lock protects every field below
 *		but @pollq
 * @permits:	configured permits, 1..U32_MAX; @wq.lock
 * @held:	permits held by all fds (may exceed @permits after a
 *		shrink); @wq.lock
 * @acquired:	successful acquisitions since creation, saturating at
 *		U64_MAX (slots add tallies userspace writes); @wq.lock
 * @holders:	struct kprim_sem_fd that hold at least one permit, in the
 *		order they started holding; @wq.lock
 * @nr_holders:	length of @holders; @wq.lock
 * @lenders:	struct kprim_sem_fd whose slot userspace may use (not SLOW):
 *		the ones a recall must visit; @wq.lock
 * @nr_lenders:	length of @lenders, at most KPRIM_SEM_SLOT_MAX_LENDERS;
 *		@wq.lock
 * @pollq:	poll() waiters, woken whenever a grant may have become
 *		possible; its own lock (taken inside @wq.lock, never around it)
 */
struct kprim_sem {
	struct kprim_waitq wq;
	u64 permits;
	u64 held;
	u64 acquired;
	struct list_head holders;
	u32 nr_holders;
	struct list_head lenders;
	u32 nr_lenders;
	wait_queue_head_t pollq;
};

/**
 * struct kprim_sem_fd - what one object fd holds (handle->priv).
 * @node:	in kprim_sem.holders while @held > 0; the sem's @wq.lock
 * @pid:	the process that opened the fd (immutable; the handle's)
 * @held:	permits held through this fd, @parked ones included; the
 *		sem's @wq.lock
 * @slot:	the fd's slot page (mmap, KPRIM_FEAT_SEM_SLOT), or NULL; set
 *		once under @wq.lock, never changes after
 * @slot_page:	its struct page
 * @lender:	in kprim_sem.lenders while userspace may use @slot; @wq.lock
 * @parked:	of @held, how many sit in the slot unused: valid only
 *		between kprim_sem_slot_enter() and _leave() (userspace has
 *		the count otherwise), which must not span a drop of the
 *		sem's @wq.lock; @wq.lock
 * @entered:	depth of kprim_sem_slot_enter() sections; @wq.lock
 */
struct kprim_sem_fd {
	struct list_head node;
	struct pid *pid;
	u64 held;
	struct kprim_sem_slot *slot;
	struct page *slot_page;
	struct list_head lender;
	u64 parked;
	unsigned int entered;
};

void kprim_sem_init(struct kprim_sem *sem, u64 permits);
void kprim_sem_fd_init(struct kprim_sem_fd *fd, struct pid *pid);
u64 kprim_sem_available(const struct kprim_sem *sem);
int kprim_sem_try_acquire(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			  u64 n);
void kprim_sem_enqueue(struct kprim_sem *sem, struct kprim_waiter *w,
		       struct kprim_sem_fd *fd, u64 n);
unsigned int kprim_sem_grant(struct kprim_sem *sem);
int kprim_sem_release_locked(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			     u64 n);
void kprim_sem_release_all(struct kprim_sem *sem, struct kprim_sem_fd *fd);
int kprim_sem_resize_locked(struct kprim_sem *sem, u64 permits);
bool kprim_sem_poll_ready(const struct kprim_sem *sem);
void __kprim_sem_slot_enter(struct kprim_sem *sem, struct kprim_sem_fd *fd);
void __kprim_sem_slot_leave(struct kprim_sem *sem, struct kprim_sem_fd *fd);
void kprim_sem_recall(struct kprim_sem *sem);

/*
 * Bracket every use of @fd's count under the lock (sem.c): nothing to do
 * for an fd without a slot, which is the ioctl's hot path.
 */
static inline void kprim_sem_slot_enter(struct kprim_sem *sem,
					struct kprim_sem_fd *fd)
{
	if (fd->slot)
		__kprim_sem_slot_enter(sem, fd);
}

static inline void kprim_sem_slot_leave(struct kprim_sem *sem,
					struct kprim_sem_fd *fd)
{
	if (fd->slot)
		__kprim_sem_slot_leave(sem, fd);
}

#endif /* _KPRIM_SEM_H */
