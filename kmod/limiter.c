// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - the token-bucket rate limiter object.
 *
 * Takers that find the bucket short queue FIFO. Only the head waiter is
 * timed: one hrtimer fires when the head's tokens will have accumulated,
 * grants it and arms itself for the next head. A new taker never overtakes
 * the queue, so a large request is not starved by a stream of small ones.
 *
 * A limiter fd can be mapped (KPRIM_FEAT_LIMITER_PAGE): from the first
 * mmap() on, the bucket's fill and time live in a page shared with every
 * mapper, where a take that finds tokens and no queue is done in userspace
 * by compare-and-swap (struct kprim_limiter_page). The kernel's paths work
 * on them in the same lock as before, bracketed by
 * kprim_limiter_state_enter() and kprim_limiter_state_leave().
 */
#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "kprim.h"
#include "bucket.h"
#include "kprim_trace.h"

/*
 * The kernel's view of struct kprim_limiter_page: the same layout, with
 * the stamp an unsigned long for the bit operation that sets SLOW (the
 * page exists on 64-bit x86 only, KPRIM_SHARED_PAGES).
 */
struct kprim_limiter_shared {
	u64 fill;
	unsigned long stamp;
	u64 rate;
	u64 period_ns;
	u64 burst;
	u64 cap;
	u64 reserved[2];
	u64 admitted;
};

#define KPRIM_LIMITER_SHARED_AT(field)					\
	static_assert(offsetof(struct kprim_limiter_shared, field) ==	\
		      offsetof(struct kprim_limiter_page, field))
KPRIM_LIMITER_SHARED_AT(fill);
KPRIM_LIMITER_SHARED_AT(stamp);
KPRIM_LIMITER_SHARED_AT(rate);
KPRIM_LIMITER_SHARED_AT(period_ns);
KPRIM_LIMITER_SHARED_AT(burst);
KPRIM_LIMITER_SHARED_AT(cap);
KPRIM_LIMITER_SHARED_AT(admitted);
#define KPRIM_LIMITER_PAGE_SLOW_BIT	63
static_assert(BIT_ULL(KPRIM_LIMITER_PAGE_SLOW_BIT) == KPRIM_LIMITER_PAGE_SLOW);
static_assert(sizeof(struct kprim_limiter_shared) ==
	      sizeof(struct kprim_limiter_page));

/**
 * struct kprim_limiter - a limiter object's state.
 * @q:		FIFO of blocked takers; q.lock guards every field below
 * @bucket:	the token arithmetic; once @shared is set, its fill and last
 *		are valid only between kprim_limiter_state_enter() and
 *		kprim_limiter_state_leave() (the page holds them)
 * @initial:	tokens it was created with (reported, never changes)
 * @admitted:	tokens handed out by the kernel since creation
 * @throttled:	takes that found the bucket short (failed or waited)
 * @timer:	due time of the head waiter, or of one token for pollers
 * @poll_wq:	poll()/epoll waiters
 * @shared:	the mapped state page, NULL until the first mmap(); then
 *		never changes until the limiter is destroyed
 * @shared_page: its struct page
 * @entered:	depth of kprim_limiter_state_enter() sections
 * @gen:	parameter generation, published in the page's stamp
 * @retired:	the clock outgrew the page's time field: the state is the
 *		kernel's again and the page says SLOW forever
 */
struct kprim_limiter {
	struct kprim_waitq q;
	struct kprim_bucket bucket;
	u64 initial;
	u64 admitted;
	u64 throttled;
	struct hrtimer timer;
	wait_queue_head_t poll_wq;
	struct kprim_limiter_shared *shared;
	struct page *shared_page;
	unsigned int entered;
	u64 gen;
	bool retired;
};

static struct kprim_limiter *kprim_limiter(const struct kprim_object *obj)
{
	return obj->priv;
}

static u64 kprim_now(void)
{
	return ktime_get_ns();
}

/*
 * Take the state from the page, under q.lock, before the bucket is used.
 * Setting SLOW first keeps takers in userspace out until the leave, and
 * makes the compare-and-swap of any taker that read the stamp before fail,
 * so nothing a taker does is lost. The clock is read after that: any time
 * a taker published was read before its swap, so a later time in the page
 * (or a fill above a full bucket) can only be garbage, and is clamped.
 */
static u64 kprim_limiter_page_enter(struct kprim_limiter *lim)
{
	struct kprim_limiter_shared *sh = lim->shared;
	u64 stamp, now;

	/*
	 * One locked instruction (lock bts on x86-64), fully ordered: not a
	 * fetch_or, which x86 builds as a compare-and-swap loop that a
	 * process writing the page could keep failing with interrupts off.
	 * Once SLOW is set, no taker's swap can succeed, so the stamp read
	 * after it is what the last taker left (or garbage, clamped below).
	 */
	test_and_set_bit(KPRIM_LIMITER_PAGE_SLOW_BIT, &sh->stamp);
	stamp = READ_ONCE(sh->stamp);
	now = kprim_now();
	lim->bucket.fill = min(READ_ONCE(sh->fill), lim->bucket.cap);
	lim->bucket.last = min(stamp & KPRIM_LIMITER_PAGE_LAST, now);
	return now;
}

/*
 * Give the state back to the page. SLOW stays set while a taker is
 * queued, so a take in userspace never overtakes the queue.
 */
static void kprim_limiter_page_leave(struct kprim_limiter *lim)
{
	struct kprim_limiter_shared *sh = lim->shared;
	u64 last = lim->bucket.last;
	u64 stamp = last | ((lim->gen << KPRIM_LIMITER_PAGE_GEN_SHIFT) &
			    KPRIM_LIMITER_PAGE_GEN);

	if (!list_empty(&lim->q.waiters))
		stamp |= KPRIM_LIMITER_PAGE_SLOW;
	if (unlikely(last > KPRIM_LIMITER_PAGE_LAST)) {
		/* 2^58 ns (9 years) of uptime: the kernel keeps the state. */
		lim->retired = true;
		stamp = KPRIM_LIMITER_PAGE_SLOW;
	}
	WRITE_ONCE(sh->fill, lim->bucket.fill);
	/* Pairs with the takers' acquire of the stamp: fill first. */
	smp_store_release(&sh->stamp, stamp);
}

/*
 * Under q.lock, with the state entered: the page's copies of the
 * parameters, for takers in userspace, under a new generation so that a
 * taker that read the old ones cannot complete its swap.
 */
static void kprim_limiter_publish_params(struct kprim_limiter *lim)
{
	struct kprim_limiter_shared *sh = lim->shared;

	if (!sh)
		return;
	lim->gen++;
	WRITE_ONCE(sh->rate, lim->bucket.rate);
	WRITE_ONCE(sh->period_ns, lim->bucket.period_ns);
	WRITE_ONCE(sh->burst, lim->bucket.burst);
	WRITE_ONCE(sh->cap, lim->bucket.cap);
}

/**
 * kprim_limiter_state_enter() - make @lim->bucket current, under q.lock.
 * @lim:	the limiter
 *
 * Every use of the bucket is bracketed by this and
 * kprim_limiter_state_leave(); the sections nest (only the outermost one
 * touches the page).
 *
 * Return: the current time, to use for the bucket.
 */
static __always_inline u64 kprim_limiter_state_enter(struct kprim_limiter *lim)
{
	lockdep_assert_held(&lim->q.lock);
	if (likely(!lim->shared) || lim->retired || lim->entered++)
		return kprim_now();
	return kprim_limiter_page_enter(lim);
}

static __always_inline void kprim_limiter_state_leave(struct kprim_limiter *lim)
{
	if (likely(!lim->shared) || lim->retired || --lim->entered)
		return;
	kprim_limiter_page_leave(lim);
}

static void kprim_limiter_arm(struct kprim_limiter *lim, u64 now, u64 wait)
{
	ktime_t due = wait >= (u64)KTIME_MAX - now ? KTIME_MAX : now + wait;

	hrtimer_start(&lim->timer, due, HRTIMER_MODE_ABS);
}

/*
 * Grant queued takers from the head while the bucket allows, then arm the
 * timer for the next head, or for pollers once the queue is empty.
 */
static void kprim_limiter_grant(struct kprim_limiter *lim, u64 now)
{
	struct kprim_bucket *b = &lim->bucket;
	struct kprim_waiter *w;

	lockdep_assert_held(&lim->q.lock);
	while ((w = list_first_entry_or_null(&lim->q.waiters,
					     struct kprim_waiter, node))) {
		if (w->n > b->burst) {
			/* The burst was lowered under it: it can never fit. */
			kprim_waitq_fail(&lim->q, w, -EINVAL);
			continue;
		}
		if (!kprim_bucket_take(b, w->n, now)) {
			kprim_limiter_arm(lim, now,
					  kprim_bucket_wait_ns(b, w->n, now));
			return;
		}
		lim->admitted += w->n;
		kprim_waitq_grant(&lim->q, w);
	}

	if (!wq_has_sleeper(&lim->poll_wq))
		return;
	if (kprim_bucket_tokens(b, now))
		wake_up_interruptible_poll(&lim->poll_wq, EPOLLIN | EPOLLRDNORM);
	else
		kprim_limiter_arm(lim, now, kprim_bucket_wait_ns(b, 1, now));
}

static enum hrtimer_restart kprim_limiter_timer(struct hrtimer *timer)
{
	struct kprim_limiter *lim = container_of(timer, struct kprim_limiter,
						 timer);
	unsigned long flags;

	spin_lock_irqsave(&lim->q.lock, flags);
	kprim_limiter_grant(lim, kprim_limiter_state_enter(lim));
	kprim_limiter_state_leave(lim);
	spin_unlock_irqrestore(&lim->q.lock, flags);
	return HRTIMER_NORESTART;
}

/* A waiter left without its tokens: the one behind it may fit now. */
static void kprim_limiter_abandoned(void *owner)
{
	struct kprim_limiter *lim = owner;

	kprim_limiter_grant(lim, kprim_limiter_state_enter(lim));
	kprim_limiter_state_leave(lim);
}

static int kprim_limiter_check(const struct kprim_open *args)
{
	bool initial = args->flags & KPRIM_OPEN_INITIAL;
	const size_t used = sizeof(args->limiter) / sizeof(u64);

	/* initial only with KPRIM_OPEN_INITIAL; the rest of the area zero. */
	if (!initial && args->limiter.initial)
		return -EINVAL;
	if (memchr_inv(&args->params_raw[used], 0,
		       sizeof(args->params_raw) - sizeof(args->limiter)))
		return -EINVAL;
	return kprim_bucket_check(&args->limiter, initial);
}

static int kprim_limiter_create(struct kprim_object *obj,
				const struct kprim_open *args)
{
	bool initial = args->flags & KPRIM_OPEN_INITIAL;
	struct kprim_limiter *lim;

	lim = kzalloc(sizeof(*lim), GFP_KERNEL_ACCOUNT);
	if (!lim)
		return -ENOMEM;
	kprim_waitq_init(&lim->q);
	lim->q.obj = obj;
	kprim_bucket_init(&lim->bucket, &args->limiter, initial, kprim_now());
	lim->initial = initial ? args->limiter.initial : args->limiter.burst;
	hrtimer_init(&lim->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	lim->timer.function = kprim_limiter_timer;
	init_waitqueue_head(&lim->poll_wq);
	obj->priv = lim;
	return 0;
}

/* Last reference: no fd, so no waiter and no poller is left. */
static void kprim_limiter_destroy(struct kprim_object *obj)
{
	struct kprim_limiter *lim = kprim_limiter(obj);

	hrtimer_cancel(&lim->timer);
	WARN_ON_ONCE(!list_empty(&lim->q.waiters));
	/* Mappings hold their own references to the page. */
	if (lim->shared_page)
		__free_page(lim->shared_page);
	kfree(lim);
}

/* Wait for @n tokens for a new request behind everything queued. */
static u64 kprim_limiter_retry_after(struct kprim_limiter *lim, u64 n, u64 now)
{
	u64 total;

	if (check_add_overflow(lim->q.queued, n, &total))
		return U64_MAX;
	return kprim_bucket_wait_ns(&lim->bucket, total, now);
}

/* An io_uring take that timed out: tell it when to retry, as the ioctl. */
static int kprim_limiter_async_finish(struct kprim_async *a, int result)
{
	struct kprim_limiter_take __user *uargs = kprim_async_uarg(a);
	struct kprim_limiter *lim = kprim_async_owner(a);
	u64 retry_after;

	if (result != -ETIMEDOUT)
		return result;
	spin_lock_irq(&lim->q.lock);
	retry_after = kprim_limiter_retry_after(lim, kprim_async_n(a),
						kprim_limiter_state_enter(lim));
	kprim_limiter_state_leave(lim);
	spin_unlock_irq(&lim->q.lock);
	if (put_user(retry_after, &uargs->retry_after_ns))
		return -EFAULT;
	return result;
}

/*
 * A take through io_uring that may wait: queued without a thread
 * (async.c) if the bucket is short.
 */
static long kprim_limiter_take_async(struct kprim_limiter *lim,
				     struct kprim_limiter_take __user *uargs,
				     const struct kprim_limiter_take *args,
				     struct io_uring_cmd *ioucmd,
				     unsigned int issue_flags)
{
	struct kprim_async *a;
	bool queued_first;
	u64 now;
	int ret;

	a = kprim_async_new(ioucmd, issue_flags, &lim->q, &args->wait, uargs,
			    kprim_limiter_abandoned, lim);
	if (IS_ERR(a))
		return PTR_ERR(a);
	kprim_async_set_finish(a, kprim_limiter_async_finish);

	spin_lock_irq(&lim->q.lock);
	now = kprim_limiter_state_enter(lim);
	if (args->n > lim->bucket.burst) {
		ret = -EINVAL;
	} else if (list_empty(&lim->q.waiters) &&
		   kprim_bucket_take(&lim->bucket, args->n, now)) {
		lim->admitted += args->n;
		ret = 0;
	} else {
		queued_first = list_empty(&lim->q.waiters);
		ret = kprim_async_queue_locked(a, args->n, NULL);
		/* A take the full queue refused never found the bucket. */
		if (ret != -ENOSPC)
			lim->throttled++;
		/* Arms the timer for the new head. */
		if (ret == -EIOCBQUEUED && queued_first)
			kprim_limiter_grant(lim, now);
	}
	trace_kprim_limiter_take(&lim->q, args->n, ret, true);
	kprim_limiter_state_leave(lim);
	spin_unlock_irq(&lim->q.lock);
	if (ret == -EIOCBQUEUED)
		return ret;
	return kprim_async_discard(a, ret, issue_flags);
}

/*
 * Take @n tokens now if fair: only when nobody is queued (FIFO: no barging
 * past a waiter). Return: 0; -EINVAL when @n can never fit; -EAGAIN when
 * the caller would have to wait (counted as throttled).
 */
static inline int kprim_limiter_try_locked(struct kprim_limiter *lim, u64 n,
					   u64 now)
{
	lockdep_assert_held(&lim->q.lock);
	if (n > lim->bucket.burst)
		return -EINVAL;
	if (list_empty(&lim->q.waiters) &&
	    kprim_bucket_take(&lim->bucket, n, now)) {
		lim->admitted += n;
		return 0;
	}
	lim->throttled++;
	return -EAGAIN;
}

/*
 * A take that may wait: the wait context and the waiter live in this frame
 * only, so that a try-take (kprim_limiter_take()) neither zeroes nor sets
 * them up.
 */
static noinline int kprim_limiter_take_wait(struct kprim_limiter *lim,
					    struct kprim_limiter_take __user *uargs,
					    struct kprim_limiter_take *args)
{
	struct kprim_wait_ctx ctx;
	struct kprim_waiter w = { .task = current };
	bool queued_first;
	u64 now;
	int ret;

	ret = kprim_wait_ctx_init(&ctx, &args->wait);
	if (ret)
		return ret;

	spin_lock_irq(&lim->q.lock);
	now = kprim_limiter_state_enter(lim);
	ret = kprim_limiter_try_locked(lim, args->n, now);
	if (ret != -EAGAIN)
		goto unlock;
	if (ctx.nonblock) {
		args->retry_after_ns = kprim_limiter_retry_after(lim, args->n,
								 now);
		ret = -EAGAIN;
		goto unlock;
	}

	w.n = args->n;
	queued_first = list_empty(&lim->q.waiters);
	kprim_waitq_add(&lim->q, &w);
	trace_kprim_limiter_take(&lim->q, args->n, -EIOCBQUEUED, false);
	if (queued_first)
		kprim_limiter_grant(lim, now);
	kprim_limiter_state_leave(lim);
	spin_unlock_irq(&lim->q.lock);

	ret = kprim_wait_for_grant(&lim->q, &w, &ctx, kprim_limiter_abandoned,
				   lim);
	if (ret == -ERESTARTSYS)
		ret = kprim_wait_restart(&ctx, &uargs->wait);
	if (ret == -ETIMEDOUT) {
		spin_lock_irq(&lim->q.lock);
		args->retry_after_ns =
			kprim_limiter_retry_after(lim, args->n,
						  kprim_limiter_state_enter(lim));
		kprim_limiter_state_leave(lim);
		spin_unlock_irq(&lim->q.lock);
	}
	goto out;

unlock:
	trace_kprim_limiter_take(&lim->q, args->n, ret, false);
	kprim_limiter_state_leave(lim);
	spin_unlock_irq(&lim->q.lock);
out:
	kprim_wait_ctx_destroy(&ctx);
	return ret;
}

/*
 * @ioucmd: NULL for the ioctl; the io_uring request otherwise.
 *
 * The hot path is a try-take that names no cancel fd: it needs no wait
 * context (nothing to validate, no deadline, no eventfd), so it is done
 * here, with the same checks and accounting in the same order as
 * kprim_limiter_take_wait() does them for a timeout of 0.
 */
static __always_inline long
kprim_limiter_take(struct kprim_limiter *lim,
		   struct kprim_limiter_take __user *uargs,
		   struct io_uring_cmd *ioucmd, unsigned int issue_flags)
{
	struct kprim_limiter_take args;
	u64 now;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_LIMITER_TAKE_VER0,
			      uargs);
	if (ret)
		return ret;
	if (args.flags || !args.n)
		return -EINVAL;
	if (ioucmd && args.wait.timeout_ns)
		return kprim_limiter_take_async(lim, uargs, &args, ioucmd,
						issue_flags);
	if (args.wait.timeout_ns || args.wait.reserved ||
	    args.wait.cancel_fd != KPRIM_NO_CANCEL_FD) {
		ret = kprim_limiter_take_wait(lim, uargs, &args);
	} else {
		spin_lock_irq(&lim->q.lock);
		now = kprim_limiter_state_enter(lim);
		ret = kprim_limiter_try_locked(lim, args.n, now);
		if (ret == -EAGAIN)
			args.retry_after_ns =
				kprim_limiter_retry_after(lim, args.n, now);
		trace_kprim_limiter_take(&lim->q, args.n, ret, false);
		kprim_limiter_state_leave(lim);
		spin_unlock_irq(&lim->q.lock);
	}
	if ((ret == -EAGAIN || ret == -ETIMEDOUT) &&
	    kprim_copy_args_out(uargs, &args, sizeof(args)))
		return -EFAULT;
	return ret;
}

static long kprim_limiter_set(struct kprim_object *obj,
			      struct kprim_limiter_set __user *uargs)
{
	struct kprim_limiter *lim = kprim_limiter(obj);
	const u32 known = KPRIM_LIMITER_SET_RATE | KPRIM_LIMITER_SET_BURST;
	struct kprim_limiter_params p;
	struct kprim_limiter_set args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_LIMITER_SET_VER0,
			      uargs);
	if (ret)
		return ret;
	if (!args.flags || (args.flags & ~known) || args.params.initial)
		return -EINVAL;
	if (!kprim_obj_owner_or_admin(obj))
		return -EPERM;

	spin_lock_irq(&lim->q.lock);
	p.rate = lim->bucket.rate;
	p.period_ns = lim->bucket.period_ns;
	p.burst = lim->bucket.burst;
	p.initial = 0;
	if (args.flags & KPRIM_LIMITER_SET_RATE) {
		p.rate = args.params.rate;
		p.period_ns = args.params.period_ns;
	}
	if (args.flags & KPRIM_LIMITER_SET_BURST)
		p.burst = args.params.burst;
	ret = kprim_bucket_check(&p, false);
	if (!ret) {
		u64 now = kprim_limiter_state_enter(lim);

		kprim_bucket_set(&lim->bucket, p.rate, p.period_ns, p.burst,
				 now);
		kprim_limiter_publish_params(lim);
		/* Re-evaluate the head at once under the new rate. */
		kprim_limiter_grant(lim, now);
		kprim_limiter_state_leave(lim);
	}
	spin_unlock_irq(&lim->q.lock);
	return ret;
}

static void kprim_limiter_snapshot(struct kprim_limiter *lim,
				   struct kprim_limiter_params *p, u64 *tokens,
				   u64 *waiters, u64 *admitted, u64 *throttled)
{
	spin_lock_irq(&lim->q.lock);
	p->rate = lim->bucket.rate;
	p->period_ns = lim->bucket.period_ns;
	p->burst = lim->bucket.burst;
	p->initial = lim->initial;
	*tokens = kprim_bucket_tokens(&lim->bucket,
				      kprim_limiter_state_enter(lim));
	kprim_limiter_state_leave(lim);
	*waiters = lim->q.nr_waiters;
	*admitted = lim->admitted;
	/*
	 * Takes done in userspace count themselves there. Any mapper can
	 * write that count: saturate, so that it never hides the kernel's.
	 */
	if (lim->shared &&
	    check_add_overflow(*admitted, READ_ONCE(lim->shared->admitted),
			       admitted))
		*admitted = U64_MAX;
	*throttled = lim->throttled;
	spin_unlock_irq(&lim->q.lock);
}

static long kprim_limiter_info(struct kprim_limiter *lim,
			       struct kprim_limiter_info __user *uargs)
{
	struct kprim_limiter_info args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_LIMITER_INFO_VER0,
			      uargs);
	if (ret)
		return ret;
	if (args.flags)
		return -EINVAL;
	kprim_limiter_snapshot(lim, &args.params, &args.tokens, &args.waiters,
			       &args.admitted, &args.throttled);
	return kprim_copy_args_out(uargs, &args, sizeof(args));
}

/**
 * kprim_limiter_ioctl() - the ioctls of a limiter fd.
 * @h:		the fd's handle
 * @cmd:	the ioctl command
 * @arg:	its user argument
 *
 * Return: the command's result; -ENOTTY for a command of another kind.
 */
long kprim_limiter_ioctl(struct kprim_handle *h, unsigned int cmd,
			 void __user *arg)
{
	struct kprim_limiter *lim = kprim_limiter(h->obj);

	switch (KPRIM_CMD(cmd)) {
	case KPRIM_CMD(KPRIM_IOC_LIMITER_TAKE):
		return kprim_limiter_take(lim, arg, NULL, 0);
	case KPRIM_CMD(KPRIM_IOC_LIMITER_SET):
		return kprim_limiter_set(h->obj, arg);
	case KPRIM_CMD(KPRIM_IOC_LIMITER_INFO):
		return kprim_limiter_info(lim, arg);
	default:
		return -ENOTTY;
	}
}

/* Readable when a take of one token would succeed without waiting. */
static __poll_t kprim_limiter_poll(struct kprim_handle *h, struct file *file,
				   poll_table *pt)
{
	struct kprim_limiter *lim = kprim_limiter(h->obj);
	__poll_t mask = 0;
	u64 now;

	poll_wait(file, &lim->poll_wq, pt);
	spin_lock_irq(&lim->q.lock);
	now = kprim_limiter_state_enter(lim);
	if (list_empty(&lim->q.waiters)) {
		if (kprim_bucket_tokens(&lim->bucket, now))
			mask = EPOLLIN | EPOLLRDNORM;
		else
			kprim_limiter_arm(lim, now,
					  kprim_bucket_wait_ns(&lim->bucket, 1,
							       now));
	}
	/* With waiters queued, the grant path wakes pollers when it drains. */
	kprim_limiter_state_leave(lim);
	spin_unlock_irq(&lim->q.lock);
	return mask;
}

/*
 * The state page, allocated by the first mmap() (charged to its caller)
 * and initialised from the bucket; later calls get the same page.
 */
static struct page *kprim_limiter_share(struct kprim_limiter *lim)
{
	struct page *page, *spare;

	spin_lock_irq(&lim->q.lock);
	page = lim->shared_page;
	spin_unlock_irq(&lim->q.lock);
	if (page)
		return page;

	spare = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!spare)
		return ERR_PTR(-ENOMEM);
	spin_lock_irq(&lim->q.lock);
	page = lim->shared_page;
	if (!page) {
		kprim_bucket_refill(&lim->bucket, kprim_limiter_state_enter(lim));
		kprim_limiter_state_leave(lim);
		page = spare;
		spare = NULL;
		lim->shared_page = page;
		lim->shared = page_address(page);
		kprim_limiter_publish_params(lim);
		kprim_limiter_page_leave(lim);
	}
	spin_unlock_irq(&lim->q.lock);
	if (spare)
		__free_page(spare);
	return page;
}

/* &kprim_kind_ops.map_page: the state page (object.c maps it). */
static struct page *kprim_limiter_map_page(struct kprim_handle *h)
{
	return kprim_limiter_share(kprim_limiter(h->obj));
}

static void kprim_limiter_show_fdinfo(struct kprim_handle *h,
				      struct seq_file *m)
{
	struct kprim_limiter_params p;
	u64 tokens, waiters, admitted, throttled;

	kprim_limiter_snapshot(kprim_limiter(h->obj), &p, &tokens, &waiters,
			       &admitted, &throttled);
	seq_printf(m, "kprim-rate:\t%llu/%lluns\n", p.rate, p.period_ns);
	seq_printf(m, "kprim-burst:\t%llu\n", p.burst);
	seq_printf(m, "kprim-tokens:\t%llu\n", tokens);
	seq_printf(m, "kprim-waiters:\t%llu\n", waiters);
	seq_printf(m, "kprim-admitted:\t%llu\n", admitted);
	seq_printf(m, "kprim-throttled:\t%llu\n", throttled);
}

static void kprim_limiter_fill_info(struct kprim_object *obj,
				    struct kprim_obj_info *info)
{
	kprim_limiter_snapshot(kprim_limiter(obj), &info->limiter.params,
			       &info->limiter.tokens, &info->limiter.waiters,
			       &info->limiter.admitted,
			       &info->limiter.throttled);
}

static long kprim_limiter_wait_cmd(struct kprim_handle *h, unsigned int cmd,
				   void __user *arg,
				   struct io_uring_cmd *ioucmd,
				   unsigned int issue_flags)
{
	if (KPRIM_CMD(cmd) != KPRIM_CMD(KPRIM_IOC_LIMITER_TAKE))
		return -ENOIOCTLCMD;
	return kprim_limiter_take(kprim_limiter(h->obj), arg, ioucmd,
				  issue_flags);
}

static struct kprim_waitq *kprim_limiter_waitq(struct kprim_object *obj)
{
	return &kprim_limiter(obj)->q;
}

const struct kprim_kind_ops kprim_limiter_ops = {
	.kind		= KPRIM_KIND_LIMITER,
	.name		= "limiter",
	.fd_name	= "[kprim-limiter]",
	.check		= kprim_limiter_check,
	.create		= kprim_limiter_create,
	.destroy	= kprim_limiter_destroy,
	.ioctl		= kprim_limiter_ioctl,
	.poll		= kprim_limiter_poll,
	.show_fdinfo	= kprim_limiter_show_fdinfo,
	.fill_info	= kprim_limiter_fill_info,
	.wait_cmd	= kprim_limiter_wait_cmd,
	.waitq		= kprim_limiter_waitq,
	.map_page	= kprim_limiter_map_page,
};
