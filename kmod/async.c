// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - waits that hold no thread: io_uring requests queued in an
 * object's FIFO.
 *
 * A take or acquire sent through io_uring that cannot be granted at once
 * is queued as an ordinary waiter (struct kprim_waiter with @async set) in
 * the same FIFO as the ioctl waiters, when the request is issued, and the
 * issue returns -EIOCBQUEUED. Its timeout runs from then. The request
 * then ends in exactly one of these ways, each decided under the queue's
 * lock, where the first one wins:
 *
 *  - a grant (release, refill timer, resize, close of a holder), or a
 *    refusal (kprim_waitq_fail()), by the owner's grant pass;
 *  - its deadline: an hrtimer;
 *  - its cancel eventfd becoming readable (ended from a worker: the
 *    eventfd's lock may be taken inside the queue's, see
 *    kprim_async_cancel_fired());
 *  - KPRIM_IOC_WAIT_CANCEL sent through the same ring;
 *  - its ring being torn down (its last fd closed, as when the process
 *    exits) or an exec of its submitter: io_uring calls ->uring_cmd()
 *    with IO_URING_F_CANCEL for requests marked cancelable. 6.1 has no
 *    such call, so there a watcher looks every KPRIM_ASYNC_WATCH_PERIOD
 *    for queued requests whose ring is dying or whose submitter is
 *    exec()ing (kprim_uring_cmd_orphaned()). Neither kernel's exit path
 *    waits for such requests, so a process still exits at once; what it
 *    held comes back when its waits are ended and io_uring has dropped
 *    their file references.
 *
 * The exit of the submitting thread alone does not end a wait: like
 * io_uring's other untracked requests it belongs to the ring, whose other
 * users reap its CQE (io_uring cancels on thread exit only requests it
 * tracks, which uring_cmds are not).
 *
 * Whoever ends it takes it off the queue (the grant pass already has), and
 * unless it was a grant, lets the owner grant the requests behind it. The
 * completion itself - stopping the timer, unhooking the eventfd, copying
 * results out, io_uring_cmd_done() - needs process context and the
 * submitter's memory, so it runs as io_uring task work of the submitter
 * (io_uring_cmd_complete_in_task()). IO_URING_F_CANCEL runs it inline.
 *
 * Permits granted to a request are accounted to the object fd it named
 * before the completion is posted, exactly as for the ioctl; the request
 * holds a reference on that fd's file until it completes, so a grant is
 * never lost: if nobody reaps the CQE (the ring is gone), the permits go
 * back when the file is released. A grant and a cancellation cannot both
 * happen: the first to take the queue's lock decides.
 *
 * Memory: one struct kprim_async per queued request, charged to the
 * submitter's memory cgroup like io_uring's own requests. An object's
 * queue takes io_uring waits only while it holds fewer than
 * max_uring_waits waiters (-ENOSPC beyond): a grant pass (a resize, a
 * release of many permits) or a teardown walks the queue under its lock,
 * and that bounds how long.
 */
#include <linux/hrtimer.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>
#include "kprim.h"
#include "kprim_trace.h"

/**
 * enum kprim_async_state - where a request is; guarded by the queue's lock.
 * @KPRIM_ASYNC_NEW:	set up, not queued yet (the issue path owns it)
 * @KPRIM_ASYNC_QUEUED:	in the FIFO
 * @KPRIM_ASYNC_ENDED:	its result is decided; its completion is pending
 */
enum kprim_async_state {
	KPRIM_ASYNC_NEW,
	KPRIM_ASYNC_QUEUED,
	KPRIM_ASYNC_ENDED,
};

/**
 * struct kprim_async - one io_uring wait that holds no thread.
 * @w:		the waiter in the object's FIFO (@w.async points here)
 * @q:		that FIFO
 * @ioucmd:	the request
 * @task:	the task that submitted it; where its completion runs
 * @ring:	its ring, only compared (KPRIM_IOC_WAIT_CANCEL)
 * @user_data:	its user_data (KPRIM_IOC_WAIT_CANCEL)
 * @uarg:	its argument in the submitter's memory
 * @ctx:	deadline and cancel eventfd
 * @abandoned:	the owner's grant pass, run under @q's lock when the request
 *		leaves the queue without a grant
 * @owner:	argument of @abandoned and @finish (the kind's object state)
 * @finish:	optional: the kind's last word, in the submitter's context
 *		(may copy results out); returns the CQE's result
 * @timer:	fires at the deadline
 * @cancel_work: ends the request when its cancel eventfd fires (see
 *		kprim_async_cancel_fired())
 * @state:	enum kprim_async_state; @q's lock
 * @result:	the CQE's result once ENDED; @q's lock
 * @stop:	an error that ended the request while NEW (io_uring's cancel
 *		raced the issue); @q's lock
 * @watch:	in kprim_async_watched (6.1 only); kprim_async_watch_lock
 */
struct kprim_async {
	struct kprim_waiter w;
	struct kprim_waitq *q;
	struct io_uring_cmd *ioucmd;
	struct task_struct *task;
	const void *ring;
	u64 user_data;
	void __user *uarg;
	struct kprim_wait_ctx ctx;
	void (*abandoned)(void *owner);
	void *owner;
	int (*finish)(struct kprim_async *a, int result);
	struct hrtimer timer;
	struct work_struct cancel_work;
	enum kprim_async_state state;
	int result;
	int stop;
	struct list_head watch;
};

static unsigned int max_uring_waits = 16384;
module_param(max_uring_waits, uint, 0644);
MODULE_PARM_DESC(max_uring_waits,
		 "Most waiters an object may have queued for an io_uring wait to join them (default 16384); -ENOSPC beyond");

/* When a ring teardown last slept for an ended request (ktime, ns). */
static u64 kprim_async_last_nap;

/* KPRIM_IOC_WAIT_CANCEL ends at most this many waits per lock hold. */
#define KPRIM_ASYNC_CANCEL_BATCH	64

static struct kprim_uring_pdu *kprim_pdu(struct io_uring_cmd *ioucmd)
{
	return (struct kprim_uring_pdu *)ioucmd->pdu;
}

/* ---- the 6.1 watcher (kernels without cancelable uring_cmds) -------- */

#define KPRIM_ASYNC_WATCH_PERIOD	(HZ / 10)
/* Entries checked between two reschedule points of the watcher. */
#define KPRIM_ASYNC_WATCH_BATCH		256

static void kprim_async_watch_fn(struct work_struct *work);

static DEFINE_MUTEX(kprim_async_watch_lock);
/* Every request set up on a kernel without cancelable uring_cmds. */
static LIST_HEAD(kprim_async_watched);
static DECLARE_DELAYED_WORK(kprim_async_watch_work, kprim_async_watch_fn);

static bool kprim_async_stop_locked(struct kprim_async *a, int err);
static void kprim_async_post(struct kprim_async *a);

static void kprim_async_watch_start(struct kprim_async *a)
{
	if (KPRIM_URING_CANCELABLE)
		return;
	mutex_lock(&kprim_async_watch_lock);
	if (list_empty(&kprim_async_watched))
		schedule_delayed_work(&kprim_async_watch_work,
				      KPRIM_ASYNC_WATCH_PERIOD);
	list_add_tail(&a->watch, &kprim_async_watched);
	mutex_unlock(&kprim_async_watch_lock);
}

static void kprim_async_watch_stop(struct kprim_async *a)
{
	if (KPRIM_URING_CANCELABLE)
		return;
	mutex_lock(&kprim_async_watch_lock);
	list_del(&a->watch);
	mutex_unlock(&kprim_async_watch_lock);
}

/*
 * Ends the queued requests nobody will reap. Entries cannot go away while
 * the lock is held: their completion takes it to leave the list.
 */
static void kprim_async_watch_fn(struct work_struct *work)
{
	struct kprim_async *a;
	unsigned int n = 0;

	mutex_lock(&kprim_async_watch_lock);
	list_for_each_entry(a, &kprim_async_watched, watch) {
		if (++n % KPRIM_ASYNC_WATCH_BATCH == 0)
			cond_resched();
		if (!kprim_uring_cmd_orphaned(a->ioucmd))
			continue;
		spin_lock_irq(&a->q->lock);
		if (kprim_async_stop_locked(a, -ECANCELED)) {
			a->abandoned(a->owner);
			kprim_async_post(a);
		}
		spin_unlock_irq(&a->q->lock);
	}
	if (!list_empty(&kprim_async_watched))
		schedule_delayed_work(&kprim_async_watch_work,
				      KPRIM_ASYNC_WATCH_PERIOD);
	mutex_unlock(&kprim_async_watch_lock);
}

/**
 * kprim_async_exit() - stop the watcher at module unload.
 *
 * No request can be pending: each holds a file, hence the module.
 */
void kprim_async_exit(void)
{
	cancel_delayed_work_sync(&kprim_async_watch_work);
}

/* ---- completion ----------------------------------------------------- */

/* Posts @a's CQE and frees it; nobody else can reach it any more. */
static void kprim_async_complete(struct kprim_async *a,
				 unsigned int issue_flags)
{
	struct io_uring_cmd *ioucmd = a->ioucmd;
	int ret = a->result;

	/*
	 * Whoever ended it did so under the queue's lock and may not have
	 * left it yet; the timer callback and the eventfd's wake-up are
	 * waited for by hrtimer_cancel() and by unhooking the eventfd, the
	 * watcher by leaving its list.
	 */
	spin_lock_irq(&a->q->lock);
	spin_unlock_irq(&a->q->lock);
	hrtimer_cancel(&a->timer);
	/* Unhooked from the eventfd, it cannot be queued again. */
	kprim_wait_ctx_destroy(&a->ctx);
	cancel_work_sync(&a->cancel_work);
	kprim_async_watch_stop(a);

	/* Results go to user memory only from the submitter itself. */
	if (a->finish && current == a->task &&
	    !(current->flags & (PF_EXITING | PF_KTHREAD)))
		ret = a->finish(a, ret);
	/*
	 * io_uring may call kprim_async_uring_cancel() for the request, which
	 * reads @a, for as long as it is marked cancelable: until
	 * io_uring_cmd_done() unmarks it (under the ring's uring_lock, which
	 * the cancel runs under). A request issued from io-wq is completed
	 * here without that lock, while a teardown cancels in a loop.
	 */
	io_uring_cmd_done(ioucmd, ret, 0, issue_flags);
	kfree(a);
}

static void kprim_async_task_work(struct io_uring_cmd *ioucmd,
				  unsigned int issue_flags)
{
	kprim_async_complete(kprim_pdu(ioucmd)->async, issue_flags);
}

/* Queue the completion; @a must be ENDED, the queue's lock held. */
static void kprim_async_post(struct kprim_async *a)
{
	lockdep_assert_held(&a->q->lock);
	io_uring_cmd_complete_in_task(a->ioucmd, kprim_async_task_work);
}

/**
 * kprim_async_end_locked() - a grant or refusal for a queued request.
 * @a:		the request, already taken off the queue by the grant pass
 * @result:	0 for a grant, or the refusal's error
 *
 * Called by kprim_waitq_grant() under the queue's lock.
 */
void kprim_async_end_locked(struct kprim_async *a, int result)
{
	lockdep_assert_held(&a->q->lock);
	a->state = KPRIM_ASYNC_ENDED;
	a->result = result;
	kprim_async_post(a);
}

/*
 * End a queued request with @err and take it off the queue, unless
 * something ended it first. The caller runs @a->abandoned() afterwards
 * and posts the completion.
 */
static bool kprim_async_stop_locked(struct kprim_async *a, int err)
{
	lockdep_assert_held(&a->q->lock);
	if (a->state != KPRIM_ASYNC_QUEUED)
		return false;
	kprim_waitq_del(a->q, &a->w);
	trace_kprim_wait_end(a->q, &a->w, err);
	a->state = KPRIM_ASYNC_ENDED;
	a->result = err;
	return true;
}

/* Ends a queued request from a context that cannot complete it. */
static void kprim_async_cancel_locked(struct kprim_async *a, int err)
{
	if (kprim_async_stop_locked(a, err)) {
		a->abandoned(a->owner);
		kprim_async_post(a);
	}
}

static enum hrtimer_restart kprim_async_timeout(struct hrtimer *timer)
{
	struct kprim_async *a = container_of(timer, struct kprim_async, timer);
	unsigned long flags;

	spin_lock_irqsave(&a->q->lock, flags);
	kprim_async_cancel_locked(a, -ETIMEDOUT);
	spin_unlock_irqrestore(&a->q->lock, flags);
	return HRTIMER_NORESTART;
}

static void kprim_async_cancel_work(struct work_struct *work)
{
	struct kprim_async *a = container_of(work, struct kprim_async,
					     cancel_work);

	/* A request not queued yet sees ctx.cancel.fired when it queues. */
	spin_lock_irq(&a->q->lock);
	kprim_async_cancel_locked(a, -ECANCELED);
	spin_unlock_irq(&a->q->lock);
}

/*
 * The cancel eventfd became readable: called under the eventfd's
 * wait-queue lock. The queue's lock must not be taken here: a grant or a
 * deadline, holding it, posts a completion, and io_uring signals a
 * DEFER_TASKRUN ring's registered eventfd from there - possibly this very
 * eventfd. So the wait is ended from a worker; kprim_async_complete()
 * waits for that worker before it frees the request.
 */
static void kprim_async_cancel_fired(struct kprim_cancel *c)
{
	struct kprim_async *a = container_of(c, struct kprim_async,
					     ctx.cancel);

	schedule_work(&a->cancel_work);
}

/* ---- the issue path --------------------------------------------------- */

/**
 * kprim_async_new() - prepare an io_uring request to wait without a thread.
 * @ioucmd:	the request
 * @issue_flags: its issue flags
 * @q:		the FIFO it will wait in
 * @wait:	its wait description (timeout, cancel eventfd), validated
 *		here exactly as for the ioctl
 * @uarg:	its argument in user memory
 * @abandoned:	the owner's grant pass, run under @q's lock when the request
 *		leaves the queue without a grant
 * @owner:	argument for @abandoned
 *
 * The deadline is computed here: the timeout runs from the issue. The
 * caller then tries the operation and, if it must wait, queues the
 * request with kprim_async_queue_locked(); otherwise it ends it with
 * kprim_async_discard().
 *
 * Return: the request's wait; ERR_PTR(-ENOMEM), or the errors of
 * kprim_wait_ctx_init().
 */
struct kprim_async *kprim_async_new(struct io_uring_cmd *ioucmd,
				    unsigned int issue_flags,
				    struct kprim_waitq *q,
				    const struct kprim_wait *wait,
				    void __user *uarg,
				    void (*abandoned)(void *owner),
				    void *owner)
{
	struct kprim_async *a;
	int ret;

	a = kzalloc(sizeof(*a), GFP_KERNEL_ACCOUNT);
	if (!a)
		return ERR_PTR(-ENOMEM);
	a->q = q;
	a->ioucmd = ioucmd;
	a->task = kprim_uring_cmd_task(ioucmd);
	a->ring = kprim_uring_cmd_ring(ioucmd);
	a->user_data = kprim_uring_cmd_user_data(ioucmd);
	a->uarg = uarg;
	a->abandoned = abandoned;
	a->owner = owner;
	a->state = KPRIM_ASYNC_NEW;
	INIT_LIST_HEAD(&a->w.node);
	hrtimer_init(&a->timer, CLOCK_MONOTONIC, HRTIMER_MODE_ABS);
	a->timer.function = kprim_async_timeout;
	INIT_WORK(&a->cancel_work, kprim_async_cancel_work);
	ret = kprim_wait_ctx_init_fire(&a->ctx, wait, kprim_async_cancel_fired);
	if (ret) {
		kprim_wait_ctx_destroy(&a->ctx);
		cancel_work_sync(&a->cancel_work);
		kfree(a);
		return ERR_PTR(ret);
	}

	kprim_pdu(ioucmd)->async = a;
	/*
	 * Before it can be queued: once queued, it may complete at any time,
	 * and a completed request must not be marked any more.
	 */
	kprim_uring_cmd_mark_cancelable(ioucmd, issue_flags);
	kprim_async_watch_start(a);
	return a;
}

/**
 * kprim_async_set_finish() - give a request the kind's last word.
 * @a:		the request, not queued yet
 * @finish:	called in the submitter's context before the CQE is posted,
 *		with the result; returns the CQE's result (e.g. -EFAULT when
 *		an output cannot be written)
 */
void kprim_async_set_finish(struct kprim_async *a,
			    int (*finish)(struct kprim_async *a, int result))
{
	a->finish = finish;
}

/**
 * kprim_async_owner() - the owner given to kprim_async_new().
 * @a: the request
 *
 * Return: the owner.
 */
void *kprim_async_owner(const struct kprim_async *a)
{
	return a->owner;
}

/**
 * kprim_async_uarg() - the argument given to kprim_async_new().
 * @a: the request
 *
 * Return: the user pointer.
 */
void __user *kprim_async_uarg(const struct kprim_async *a)
{
	return a->uarg;
}

/**
 * kprim_async_n() - how much the request asked for.
 * @a: the request, queued once
 *
 * Return: the waiter's n.
 */
u64 kprim_async_n(const struct kprim_async *a)
{
	return a->w.n;
}

/**
 * kprim_async_queue_locked() - queue a request that must wait.
 * @a:		the request from kprim_async_new()
 * @n:		how much it asks for
 * @holder:	the kind's per-fd record a grant is accounted to
 *
 * Called under the queue's lock after the operation was found unable to
 * proceed. Arms the deadline. After the lock is dropped, the request may
 * complete at any time: the caller must not touch @a or the request again.
 *
 * Return: -EIOCBQUEUED when queued; -ECANCELED when its cancel eventfd
 * has already fired or io_uring cancelled it meanwhile; -ENOSPC when the
 * queue already holds max_uring_waits waiters (not queued: end it with
 * kprim_async_discard()).
 */
int kprim_async_queue_locked(struct kprim_async *a, u64 n, void *holder)
{
	lockdep_assert_held(&a->q->lock);
	if (READ_ONCE(a->ctx.cancel.fired))
		return -ECANCELED;
	if (a->stop)
		return a->stop;
	if (a->q->nr_waiters >= READ_ONCE(max_uring_waits))
		return -ENOSPC;
	a->w.n = n;
	a->w.holder = holder;
	a->w.async = a;
	kprim_waitq_add(a->q, &a->w);
	a->state = KPRIM_ASYNC_QUEUED;
	if (a->ctx.deadline != KTIME_MAX)
		hrtimer_start(&a->timer, a->ctx.deadline, HRTIMER_MODE_ABS);
	return -EIOCBQUEUED;
}

/**
 * kprim_async_discard() - end a request that was never queued.
 * @a:		the request from kprim_async_new()
 * @ret:	its result
 * @issue_flags: its issue flags
 *
 * Return: -EIOCBQUEUED: the request is completed with @ret.
 */
int kprim_async_discard(struct kprim_async *a, int ret,
			unsigned int issue_flags)
{
	a->result = ret;
	kprim_async_complete(a, issue_flags);
	return -EIOCBQUEUED;
}

/* ---- cancellation ----------------------------------------------------- */

/**
 * kprim_async_uring_cancel() - io_uring cancels a request marked cancelable.
 * @ioucmd:	the request (not completed yet, io_uring guarantees)
 * @issue_flags: IO_URING_F_CANCEL and the context's flags
 *
 * Called when the ring is torn down or its submitter execs. A
 * request still queued is completed here, with -ECANCELED; one already
 * ended completes through its task work (the teardown worker waits a
 * tick for it here); one still being issued (from an io_uring worker) is
 * told to give up.
 */
void kprim_async_uring_cancel(struct io_uring_cmd *ioucmd,
			      unsigned int issue_flags)
{
	struct kprim_async *a = kprim_pdu(ioucmd)->async;
	bool stopped, ended;

	spin_lock_irq(&a->q->lock);
	if (a->state == KPRIM_ASYNC_NEW)
		a->stop = -ECANCELED;
	ended = a->state == KPRIM_ASYNC_ENDED;
	stopped = kprim_async_stop_locked(a, -ECANCELED);
	if (stopped)
		a->abandoned(a->owner);
	spin_unlock_irq(&a->q->lock);
	if (stopped) {
		kprim_async_complete(a, issue_flags);
		return;
	}
	/*
	 * Already ended: its completion is task work of its submitter, and
	 * io_uring calls here again, at once, until that has run. A stopped
	 * or frozen submitter runs nothing: the teardown worker would spin
	 * for as long. Sleeping a tick here (with the ring's uring_lock
	 * held: the completion runs between the worker's passes) limits
	 * that loop to one pass a tick. (exec and exit call from a task,
	 * which runs its own task work right after.) @a
	 * stays valid: it is freed only after io_uring_cmd_done(), which
	 * needs the uring_lock held around this call.
	 */
	if (ended && (current->flags & PF_KTHREAD)) {
		u64 now = ktime_get_ns();

		/* Once a tick, not once a request: a pass may meet many. */
		if (now - READ_ONCE(kprim_async_last_nap) < TICK_NSEC)
			return;
		WRITE_ONCE(kprim_async_last_nap, now);
		schedule_timeout_uninterruptible(1);
	}
}

/**
 * kprim_async_cancel_cmd() - KPRIM_IOC_WAIT_CANCEL through io_uring.
 * @h:		the object fd it was sent on
 * @uarg:	struct kprim_wait_cancel in user memory
 * @ioucmd:	the cancel request itself
 *
 * Ends the waits that the same ring queued on @h's object with the given
 * user_data (or all of them), each with -ECANCELED.
 *
 * Return: the number of waits ended; -ENOENT for none; -EINVAL for
 * unknown flags; -EFAULT.
 */
int kprim_async_cancel_cmd(struct kprim_handle *h, void __user *uarg,
			   struct io_uring_cmd *ioucmd)
{
	const void *ring = kprim_uring_cmd_ring(ioucmd);
	struct kprim_wait_cancel args;
	struct kprim_async *a;
	struct kprim_waiter *w, *tmp;
	struct kprim_waitq *q;
	bool all;
	int ret, n = 0;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_WAIT_CANCEL_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags & ~KPRIM_WAIT_CANCEL_ALL)
		return -EINVAL;
	all = args.flags & KPRIM_WAIT_CANCEL_ALL;
	if (!h->obj->ops->waitq)
		return -ENOENT;
	q = h->obj->ops->waitq(h->obj);

	/*
	 * In batches: a batch ends KPRIM_ASYNC_CANCEL_BATCH waits at most,
	 * then the owner's grant pass (which may take other waiters off the
	 * queue) runs and the lock is dropped; the next batch starts again
	 * from the head. Scanning is cheap, ending is not.
	 */
	for (;;) {
		struct kprim_async *ended = NULL;
		unsigned int batch = 0;

		spin_lock_irq(&q->lock);
		list_for_each_entry_safe(w, tmp, &q->waiters, node) {
			a = w->async;
			if (!a || a->ring != ring ||
			    (!all && a->user_data != args.user_data))
				continue;
			if (kprim_async_stop_locked(a, -ECANCELED)) {
				kprim_async_post(a);
				ended = a;	/* freed only after we unlock */
				if (++batch == KPRIM_ASYNC_CANCEL_BATCH)
					break;
			}
		}
		if (ended)
			ended->abandoned(ended->owner);
		spin_unlock_irq(&q->lock);
		n += batch;
		if (batch < KPRIM_ASYNC_CANCEL_BATCH)
			break;
		cond_resched();
	}
	return n ? n : -ENOENT;
}
