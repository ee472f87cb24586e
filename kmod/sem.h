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
 * @acquired:	successful acquisitions since creation; @wq.lock
 * @holders:	struct kprim_sem_fd that hold at least one permit, in the
 *		order they started holding; @wq.lock
 * @nr_holders:	length of @holders; @wq.lock
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
	wait_queue_head_t pollq;
};

/**
 * struct kprim_sem_fd - what one object fd holds (handle->priv).
 * @node:	in kprim_sem.holders while @held > 0; the sem's @wq.lock
 * @pid:	the process that opened the fd (immutable; the handle's)
 * @held:	permits held through this fd; the sem's @wq.lock
 */
struct kprim_sem_fd {
	struct list_head node;
	struct pid *pid;
	u64 held;
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

#endif /* _KPRIM_SEM_H */
