// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libkprim: token-bucket limiter wrappers.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "limiter_page.h"

int kprim_limiter_open(struct kprim *k, const char *name, unsigned int flags,
		       unsigned int mode, const struct kprim_limiter_config *cfg,
		       struct kprim_limiter **out)
{
	struct kprim_open a;
	struct kprim_limiter *l;
	int ret;

	if (!out || ((flags & KPRIM_CREATE) && !cfg))
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (cfg) {
		a.limiter.rate = cfg->rate;
		a.limiter.period_ns = cfg->period_ns;
		a.limiter.burst = cfg->burst;
		if (cfg->has_initial) {
			a.flags = KPRIM_OPEN_INITIAL;
			a.limiter.initial = cfg->initial;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	ret = kprim_obj_open(k, KPRIM_KIND_LIMITER, name, flags, mode, &a, &l->o);
	if (ret) {
		free(l);
		return ret;
	}
	l->page = kprim_limiter_page_map(&l->o);
	*out = l;
	return 0;
}

void kprim_limiter_close(struct kprim_limiter *l)
{
	if (!l)
		return;
	kprim_obj_page_unmap(l->page);
	kprim_obj_close(&l->o);
	free(l);
}

int kprim_limiter_take(struct kprim_limiter *l, uint64_t n,
		       struct kprim_ctx *ctx, uint64_t timeout_ns,
		       uint64_t *retry_after_ns)
{
	struct kprim_limiter_take t = { .size = sizeof(t), .n = n };
	long ret;

	if (!l)
		return -EINVAL;
	/* Tokens there and nobody queued: no system call (limiter_page.c). */
	if (l->page && n && (!ctx || !kprim_ctx_err(ctx)) &&
	    !kprim_limiter_page_take(l->page, n)) {
		if (retry_after_ns)
			*retry_after_ns = 0;
		return 0;
	}
	ret = kprim_wait_prepare(&t.wait, ctx, timeout_ns);
	if (ret)
		return (int)ret;
	ret = kprim_do_ioctl(l->o.fd, KPRIM_IOC_LIMITER_TAKE, &t);
	if (retry_after_ns)
		*retry_after_ns = ret ? t.retry_after_ns : 0;
	return kprim_wait_result(ret, ctx);
}

int kprim_limiter_try_take(struct kprim_limiter *l, uint64_t n,
			   uint64_t *retry_after_ns)
{
	return kprim_limiter_take(l, n, NULL, 0, retry_after_ns);
}

static int kprim_limiter_set(struct kprim_limiter *l, uint32_t what,
			     uint64_t rate, uint64_t period_ns, uint64_t burst)
{
	struct kprim_limiter_set s = { .size = sizeof(s), .flags = what };

	if (!l)
		return -EINVAL;
	s.params.rate = rate;
	s.params.period_ns = period_ns;
	s.params.burst = burst;
	return (int)kprim_do_ioctl(l->o.fd, KPRIM_IOC_LIMITER_SET, &s);
}

int kprim_limiter_set_rate(struct kprim_limiter *l, uint64_t rate,
			   uint64_t period_ns)
{
	return kprim_limiter_set(l, KPRIM_LIMITER_SET_RATE, rate, period_ns, 0);
}

int kprim_limiter_set_burst(struct kprim_limiter *l, uint64_t burst)
{
	return kprim_limiter_set(l, KPRIM_LIMITER_SET_BURST, 0, 0, burst);
}

int kprim_limiter_stats(struct kprim_limiter *l, struct kprim_limiter_stats *st)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };
	long ret;

	if (!l || !st)
		return -EINVAL;
	ret = kprim_do_ioctl(l->o.fd, KPRIM_IOC_LIMITER_INFO, &i);
	if (ret)
		return (int)ret;
	st->rate = i.params.rate;
	st->period_ns = i.params.period_ns;
	st->burst = i.params.burst;
	st->initial = i.params.initial;
	st->tokens = i.tokens;
	st->waiters = i.waiters;
	st->admitted = i.admitted;
	st->throttled = i.throttled;
	return 0;
}

int kprim_limiter_fd(struct kprim_limiter *l)
{
	return l ? l->o.fd : -EINVAL;
}

int kprim_limiter_from_fd(int fd, struct kprim_limiter **out)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };
	struct kprim_limiter *l;

	if (!out || fd < 0)
		return -EINVAL;
	/* Only a limiter fd answers the limiter's INFO. */
	if (kprim_do_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->o.fd = fd;
	l->o.kind = KPRIM_KIND_LIMITER;
	l->page = kprim_limiter_page_map(&l->o);
	*out = l;
	return 0;
}
