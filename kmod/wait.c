// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - the one wait routine every blocking operation uses.
 *
 * Waiters queue FIFO on their object. Whoever makes progress possible (a
 * release, a refill timer, a resize) grants requests from the head of the
 * queue under the object's lock: it dequeues the waiter, accounts the grant
 * to it and only then wakes it. A waiter therefore never has to retry, and a
 * later request can never overtake an earlier one.
 *
 * A wait ends with a grant, a timeout, a signal or its cancel eventfd
 * becoming readable. When it ends without a grant the waiter leaves the
 * queue and its owner re-runs the grant, because the requests behind it may
 * now fit.
 *
 * A signal ends the wait with -ERESTARTSYS, like the kernel's own waits:
 * the signal code turns it into -EINTR for a handler without SA_RESTART
 * and restarts the call otherwise (SA_RESTART, a stop, ptrace, the
 * freezer). The time left is first written back into the caller's struct
 * kprim_wait (kprim_wait_restart()), as select() does, so a restarted call
 * keeps its deadline. The restarted call queues again at the tail: a task
 * that went back to user mode (to run a handler, or to be stopped for as
 * long as it takes) must not hold up the queue behind it.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/hrtimer.h>
#include <linux/sched.h>
#include <linux/sched/debug.h>
#include <linux/overflow.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/uaccess.h>
#include "kprim.h"
#include "kprim_trace.h"

/**
 * kprim_waitq_init() - initialise an empty waiter queue.
 * @q: the queue
 */
void kprim_waitq_init(struct kprim_waitq *q)
{
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->waiters);
	q->nr_waiters = 0;
	q->queued = 0;
	q->obj = NULL;
}

/**
 * kprim_waitq_add() - queue a waiter at the tail.
 * @q:	the queue; its lock is held
 * @w:	the waiter, with task and n set
 */
void kprim_waitq_add(struct kprim_waitq *q, struct kprim_waiter *w)
{
	lockdep_assert_held(&q->lock);
	list_add_tail(&w->node, &q->waiters);
	w->queued_at = ktime_get_ns();
	q->nr_waiters++;
	if (check_add_overflow(q->queued, w->n, &q->queued))
		q->queued = U64_MAX;
}

/**
 * kprim_waitq_del() - take a waiter off the queue without a grant.
 * @q:	the queue; its lock is held
 * @w:	a queued waiter
 */
void kprim_waitq_del(struct kprim_waitq *q, struct kprim_waiter *w)
{
	lockdep_assert_held(&q->lock);
	list_del(&w->node);
	q->nr_waiters--;
	q->queued -= min(q->queued, w->n);
}

/* Called by the eventfd under its queue lock whenever it is signalled. */
static int kprim_cancel_wake(wait_queue_entry_t *entry, unsigned int mode,
			     int sync, void *key)
{
	struct kprim_cancel *c = container_of(entry, struct kprim_cancel, entry);

	if (key && !(key_to_poll(key) & EPOLLIN))
		return 0;
	WRITE_ONCE(c->fired, true);
	if (c->fire)
		c->fire(c);
	else
		wake_up_process(c->task);
	return 0;
}

static void kprim_cancel_queue(struct file *file, wait_queue_head_t *wqh,
			       poll_table *pt)
{
	struct kprim_cancel *c = container_of(pt, struct kprim_cancel, pt);

	if (c->wqh)
		return;
	c->wqh = wqh;
	init_waitqueue_func_entry(&c->entry, kprim_cancel_wake);
	add_wait_queue(wqh, &c->entry);
}

static int kprim_cancel_watch(struct kprim_cancel *c, int fd)
{
	struct eventfd_ctx *evctx;
	struct file *file;

	file = fget(fd);
	if (!file)
		return -EBADF;
	/* Only an eventfd has the "readable = cancelled" meaning we rely on. */
	evctx = eventfd_ctx_fileget(file);
	if (IS_ERR(evctx)) {
		fput(file);
		return -EINVAL;
	}
	eventfd_ctx_put(evctx);

	c->file = file;
	c->task = current;
	init_poll_funcptr(&c->pt, kprim_cancel_queue);
	if (vfs_poll(file, &c->pt) & EPOLLIN)
		WRITE_ONCE(c->fired, true);
	return 0;
}

/**
 * kprim_wait_ctx_init() - validate a struct kprim_wait and prepare a wait.
 * @ctx:	filled in; release with kprim_wait_ctx_destroy()
 * @w:		the caller's wait description
 *
 * The deadline is computed here, so time spent before the caller actually
 * queues counts against its timeout.
 *
 * Return: 0; -EINVAL for non-zero reserved bits or a cancel fd that is not
 * an eventfd; -EBADF for a cancel fd that is not open.
 */
int kprim_wait_ctx_init(struct kprim_wait_ctx *ctx, const struct kprim_wait *w)
{
	return kprim_wait_ctx_init_fire(ctx, w, NULL);
}

/**
 * kprim_wait_ctx_init_fire() - kprim_wait_ctx_init() for a wait that no
 *	task sleeps in.
 * @ctx:	filled in; release with kprim_wait_ctx_destroy()
 * @w:		the caller's wait description
 * @fire:	called when the cancel eventfd becomes readable, in the
 *		eventfd's wake-up context (its queue lock held, interrupts
 *		off), so it must not take a waiter queue's lock: grants post
 *		io_uring completions, which may signal eventfds, under it;
 *		NULL to wake the calling task instead
 *
 * Return: as kprim_wait_ctx_init().
 */
int kprim_wait_ctx_init_fire(struct kprim_wait_ctx *ctx,
			     const struct kprim_wait *w,
			     void (*fire)(struct kprim_cancel *c))
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->cancel.fire = fire;
	if (w->reserved)
		return -EINVAL;

	ctx->nonblock = w->timeout_ns == 0;
	/* A call that does not wait needs no deadline (nor a clock read). */
	if (ctx->nonblock || w->timeout_ns >= (u64)KTIME_MAX)
		ctx->deadline = KTIME_MAX;
	else
		ctx->deadline = ktime_add_safe(ktime_get(),
					       ns_to_ktime(w->timeout_ns));

	if (w->cancel_fd == KPRIM_NO_CANCEL_FD)
		return 0;
	if (w->cancel_fd < 0)
		return -EBADF;
	return kprim_cancel_watch(&ctx->cancel, w->cancel_fd);
}

/**
 * kprim_wait_ctx_destroy() - drop what kprim_wait_ctx_init() took.
 * @ctx: the wait context
 */
void kprim_wait_ctx_destroy(struct kprim_wait_ctx *ctx)
{
	struct kprim_cancel *c = &ctx->cancel;

	if (!c->file)
		return;
	if (c->wqh)
		remove_wait_queue(c->wqh, &c->entry);
	fput(c->file);
	c->file = NULL;
}

/**
 * kprim_waitq_grant() - hand a request to its waiter and wake it.
 * @q:	the queue @w is on; its lock is held
 * @w:	the waiter, already accounted as granted by the caller
 *
 * After the release store the waiter may return and its stack frame vanish,
 * so the task is pinned first and @w is not touched afterwards.
 */
void kprim_waitq_grant(struct kprim_waitq *q, struct kprim_waiter *w)
{
	struct task_struct *task = w->task;

	lockdep_assert_held(&q->lock);
	trace_kprim_wait_grant(q, w, w->result);
	kprim_waitq_del(q, w);
	if (w->async) {
		/* An io_uring request: post its completion instead. */
		kprim_async_end_locked(w->async, w->result);
		return;
	}
	get_task_struct(task);
	/*
	 * Pairs with the acquire in kprim_wait_for_grant(): the grant's
	 * accounting is visible before the waiter sees @granted.
	 */
	smp_store_release(&w->granted, true);
	wake_up_process(task);
	put_task_struct(task);
}

/**
 * kprim_waitq_fail() - end a queued request with an error.
 * @q:		the queue @w is on; its lock is held
 * @w:		the waiter
 * @err:	negative errno its wait returns (say, -EINVAL for a request
 *		that a parameter change made impossible)
 */
void kprim_waitq_fail(struct kprim_waitq *q, struct kprim_waiter *w, int err)
{
	w->result = err;
	kprim_waitq_grant(q, w);
}

/**
 * kprim_wait_for_grant() - sleep until a queued request is granted.
 * @q:		the queue the caller put @w on (its lock is not held)
 * @w:		the queued waiter
 * @ctx:	deadline and cancel watch
 * @abandoned:	called under @q's lock after @w left the queue without a
 *		grant, so the owner can grant the requests behind it
 * @owner:	argument for @abandoned
 *
 * Return: 0 when granted (a grant that races with a timeout, signal or
 * cancel wins: what was granted is kept); the error passed to
 * kprim_waitq_fail(); -ETIMEDOUT, -ERESTARTSYS (a signal: see
 * kprim_wait_restart()) or -ECANCELED otherwise, with @w off the queue.
 */
noinline int __sched kprim_wait_for_grant(struct kprim_waitq *q,
					  struct kprim_waiter *w,
					  struct kprim_wait_ctx *ctx,
					  void (*abandoned)(void *owner),
					  void *owner)
{
	ktime_t deadline = ctx->deadline;
	int ret;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		/* Pairs with the release in kprim_waitq_grant(). */
		if (smp_load_acquire(&w->granted))
			goto granted;
		if (signal_pending(current))
			goto interrupted;
		if (READ_ONCE(ctx->cancel.fired))
			goto cancelled;
		if (deadline != KTIME_MAX &&
		    ktime_compare(ktime_get(), deadline) >= 0)
			goto timed_out;
		if (deadline == KTIME_MAX)
			schedule();
		else
			schedule_hrtimeout_range(&deadline, 0, HRTIMER_MODE_ABS);
	}

granted:
	__set_current_state(TASK_RUNNING);
	return w->result;

interrupted:
	ret = -ERESTARTSYS;
	goto abandon;
cancelled:
	ret = -ECANCELED;
	goto abandon;
timed_out:
	ret = -ETIMEDOUT;
abandon:
	__set_current_state(TASK_RUNNING);
	spin_lock_irq(&q->lock);
	if (w->granted) {
		ret = w->result;
	} else {
		kprim_waitq_del(q, w);
		trace_kprim_wait_end(q, w, ret);
		if (abandoned)
			abandoned(owner);
	}
	spin_unlock_irq(&q->lock);
	return ret;
}

/**
 * kprim_wait_restart() - prepare the restart of a wait a signal ended.
 * @ctx:	the wait's context
 * @uw:		the caller's struct kprim_wait, in user memory
 *
 * For a wait with a timeout, writes the time left into @uw->timeout_ns
 * (at least 1 ns: 0 would turn the restarted call into a try), so that
 * the call the signal code restarts, with the same argument, waits only
 * for the rest. The caller returns what this returns.
 *
 * When the time left cannot be written (a read-only or unmapped
 * argument), the call cannot be restarted with its deadline: it ends with
 * -EINTR instead, as select() does, and never reports -EFAULT for an
 * argument that was read fine.
 *
 * Return: -ERESTARTSYS; -EINTR when the time left cannot be written.
 */
int kprim_wait_restart(const struct kprim_wait_ctx *ctx,
		       struct kprim_wait __user *uw)
{
	s64 left;

	if (ctx->deadline == KTIME_MAX)
		return -ERESTARTSYS;
	left = max_t(s64, ktime_to_ns(ktime_sub(ctx->deadline, ktime_get())),
		     1);
	if (put_user((u64)left, &uw->timeout_ns))
		return -EINTR;
	return -ERESTARTSYS;
}
