// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libkprim: counting semaphore wrappers.
 */
#include <stdlib.h>
#include <string.h>
#include "sem_slot.h"

/* See sem_slot.h. */
void (*kprim_test_sem_slot_hook)(int step);

int kprim_sem_open(struct kprim *k, const char *name, unsigned int flags,
		   unsigned int mode, uint64_t permits, struct kprim_sem **out)
{
	struct kprim_open a;
	struct kprim_sem *s;
	int ret;

	if (!out)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	a.sem.permits = permits;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ret = kprim_obj_open(k, KPRIM_KIND_SEM, name, flags, mode, &a, &s->o);
	if (ret) {
		free(s);
		return ret;
	}
	s->slot = kprim_obj_page_map(&s->o, KPRIM_OBJ_SEM_SLOT,
				     "KPRIM_NO_SEM_SLOT");
	*out = s;
	return 0;
}

void kprim_sem_close(struct kprim_sem *s)
{
	if (!s)
		return;
	/* The mapping holds the fd's file: unmap first, so close returns. */
	kprim_obj_page_unmap(s->slot);
	kprim_obj_close(&s->o);
	free(s);
}

int kprim_sem_acquire(struct kprim_sem *s, uint64_t n, struct kprim_ctx *ctx,
		      uint64_t timeout_ns)
{
	struct kprim_sem_acquire a = { .size = sizeof(a), .n = n };
	long ret;

	if (!s)
		return -EINVAL;
	/* Permits this fd parked, nobody queued: no system call. */
	if (s->slot && n && (!ctx || !kprim_ctx_err(ctx)) &&
	    !kprim_sem_slot_acquire(s->slot, n))
		return 0;
	ret = kprim_wait_prepare(&a.wait, ctx, timeout_ns);
	if (ret)
		return (int)ret;
	ret = kprim_do_ioctl(s->o.fd, KPRIM_IOC_SEM_ACQUIRE, &a);
	return kprim_wait_result(ret, ctx);
}

int kprim_sem_try_acquire(struct kprim_sem *s, uint64_t n)
{
	return kprim_sem_acquire(s, n, NULL, 0);
}

int kprim_sem_release(struct kprim_sem *s, uint64_t n)
{
	struct kprim_sem_release r = { .size = sizeof(r), .n = n };

	if (!s)
		return -EINVAL;
	/* Parked in the fd's slot: no system call. */
	if (s->slot && n && !kprim_sem_slot_release(s->slot, n))
		return 0;
	return (int)kprim_do_ioctl(s->o.fd, KPRIM_IOC_SEM_RELEASE, &r);
}

int kprim_sem_resize(struct kprim_sem *s, uint64_t permits)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .permits = permits };

	if (!s)
		return -EINVAL;
	return (int)kprim_do_ioctl(s->o.fd, KPRIM_IOC_SEM_RESIZE, &r);
}

static long kprim_sem_info(struct kprim_sem *s, struct kprim_sem_info *i,
			   struct kprim_sem_holder *h, size_t cap)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	i->holders = (uintptr_t)h;
	i->nr_holders = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	return kprim_do_ioctl(s->o.fd, KPRIM_IOC_SEM_INFO, i);
}

int kprim_sem_stats(struct kprim_sem *s, struct kprim_sem_stats *st)
{
	struct kprim_sem_info i;
	long ret;

	if (!s || !st)
		return -EINVAL;
	ret = kprim_sem_info(s, &i, NULL, 0);
	if (ret)
		return (int)ret;
	st->permits = i.permits;
	st->available = i.available;
	st->held = i.held;
	st->held_by_me = i.held_by_me;
	st->waiters = i.waiters;
	st->acquired = i.acquired;
	return 0;
}

int kprim_sem_holders(struct kprim_sem *s, struct kprim_sem_holder_info *h,
		      size_t cap)
{
	struct kprim_sem_holder *raw = NULL;
	struct kprim_sem_info i;
	long ret;

	if (!s || (cap && !h))
		return -EINVAL;
	if (cap) {
		raw = calloc(cap, sizeof(*raw));
		if (!raw)
			return -ENOMEM;
	}
	ret = kprim_sem_info(s, &i, raw, cap);
	if (!ret) {
		for (size_t n = 0; n < cap && n < i.nr_holders; n++) {
			h[n].pid = raw[n].pid;
			h[n].held = raw[n].held;
		}
		ret = i.nr_holders;
	}
	free(raw);
	return (int)ret;
}

int kprim_sem_fd(struct kprim_sem *s)
{
	return s ? s->o.fd : -EINVAL;
}
