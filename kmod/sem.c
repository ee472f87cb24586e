// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - counting semaphores whose permits come back when their fd closes.
 *
 * A semaphore has @permits; an acquire of n is granted when n permits are
 * available, and the permits are then held by the object fd it came
 * through (struct kprim_sem_fd). Only what an fd holds can be released
 * through it, and closing the fd - also by process death - releases all of
 * it, so nothing a dead process held stays held.
 *
 * Fairness follows Go's x/sync/semaphore: waiters are granted strictly in
 * FIFO order. A request at the head that does not fit blocks every later
 * request, even small ones that would fit, so a large request is never
 * starved by a stream of small ones; the price is that permits can sit
 * unused while the head waits for enough of them. An acquire that finds
 * others already waiting queues behind them even if permits are free.
 *
 * Resize: growing grants queued requests at once. Shrinking below the held
 * count takes nothing away: holders finish and release normally, and
 * available stays 0 until held drops below the new count. A queued request
 * for more than the new permit count could never be granted; rather than
 * leave it waiting for a resize that may never come, it fails with -EINVAL,
 * exactly as it would had it been made after the resize. (It cannot block
 * the queue behind it either: it leaves the queue as it fails.)
 *
 * Slots (KPRIM_FEAT_SEM_SLOT, struct kprim_sem_slot): an fd that is
 * mapped keeps the permits its users release, parked in its slot page,
 * where its next acquires take them without a system call. Parked permits
 * are held by the fd like any other, so a close returns them; they are
 * recalled (kprim_sem_recall()) whenever someone else would otherwise wait
 * or be refused, and while a waiter is queued every slot says SLOW, so the
 * FIFO holds as without slots. The kernel brackets every use of an fd's
 * count with kprim_sem_slot_enter() and kprim_sem_slot_leave().
 *
 * Locking: everything is under the waiter queue's lock (sem->wq.lock),
 * taken with spin_lock_irq() as the common wait routine (wait.c) does. The
 * poll waitqueue's lock nests inside it.
 */
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include "kprim.h"
#include "sem.h"
#include "kprim_trace.h"

#define KPRIM_SEM_PERMITS_MAX	U32_MAX

/* Holder reports are gathered under the lock; retry a few times if racing. */
#define KPRIM_SEM_INFO_RETRIES	4

/**
 * kprim_sem_init() - initialise a semaphore with all permits available.
 * @sem:	the semaphore
 * @permits:	permit count, already validated (1..U32_MAX)
 */
void kprim_sem_init(struct kprim_sem *sem, u64 permits)
{
	kprim_waitq_init(&sem->wq);
	sem->permits = permits;
	sem->held = 0;
	sem->acquired = 0;
	INIT_LIST_HEAD(&sem->holders);
	sem->nr_holders = 0;
	INIT_LIST_HEAD(&sem->lenders);
	sem->nr_lenders = 0;
	init_waitqueue_head(&sem->pollq);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_init);

/**
 * kprim_sem_fd_init() - initialise an fd's holder record.
 * @fd:		the record
 * @pid:	process reported for it (borrowed from the handle), or NULL
 */
void kprim_sem_fd_init(struct kprim_sem_fd *fd, struct pid *pid)
{
	INIT_LIST_HEAD(&fd->node);
	fd->pid = pid;
	fd->held = 0;
	fd->slot = NULL;
	fd->slot_page = NULL;
	INIT_LIST_HEAD(&fd->lender);
	fd->parked = 0;
	fd->entered = 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_fd_init);

/**
 * kprim_sem_available() - permits not held.
 * @sem: the semaphore; its lock is held
 *
 * Return: permits - held, or 0 while the semaphore is shrunk below the
 * held count.
 */
u64 kprim_sem_available(const struct kprim_sem *sem)
{
	return sem->permits > sem->held ? sem->permits - sem->held : 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_available);

/*
 * Add @n acquisitions to INFO's count. The slots' tallies are written by
 * userspace, so the count saturates rather than wrap.
 */
static void kprim_sem_add_acquired(struct kprim_sem *sem, u64 n)
{
	if (check_add_overflow(sem->acquired, n, &sem->acquired))
		sem->acquired = U64_MAX;
}

/* Account @n permits to @fd; the caller checked they are available. */
static void kprim_sem_take(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			   u64 n)
{
	lockdep_assert_held(&sem->wq.lock);
	if (!fd->held) {
		list_add_tail(&fd->node, &sem->holders);
		sem->nr_holders++;
	}
	fd->held += n;
	sem->held += n;
	kprim_sem_add_acquired(sem, 1);
}

/* Give back @n of the permits @fd holds; the caller checked @n. */
static void kprim_sem_put(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			  u64 n)
{
	lockdep_assert_held(&sem->wq.lock);
	fd->held -= n;
	sem->held -= n;
	trace_kprim_sem_release(&sem->wq, n, sem->held);
	if (!fd->held) {
		list_del_init(&fd->node);
		sem->nr_holders--;
	}
}

/**
 * __kprim_sem_slot_enter() - take @fd's slot from userspace, under the lock.
 * @sem:	the semaphore; its lock is held
 * @fd:		the fd, which has a slot (kprim_sem_slot_enter() checks)
 *
 * Swapping the slot's word to SLOW keeps userspace out until
 * kprim_sem_slot_leave() and makes a compare-and-swap in progress fail, so
 * what the swap returns is exactly what was parked. Only a lent slot (on
 * @sem's lenders) is read: one the kernel left SLOW has nothing parked,
 * whatever a writer put there since, and a count above what the fd holds
 * can only be garbage and is clamped. Sections nest; one must not span a
 * drop of @sem's lock (the count lives in @fd->parked meanwhile).
 */
void __kprim_sem_slot_enter(struct kprim_sem *sem, struct kprim_sem_fd *fd)
{
	u64 old;

	lockdep_assert_held(&sem->wq.lock);
	if (fd->entered++)
		return;
	old = xchg(&fd->slot->word, KPRIM_SEM_SLOT_SLOW);
	kprim_sem_add_acquired(sem, xchg(&fd->slot->acquired, 0));
	/* A slot the kernel did not lend has nothing parked, whatever it says. */
	if (list_empty(&fd->lender)) {
		fd->parked = 0;
		return;
	}
	list_del_init(&fd->lender);
	sem->nr_lenders--;
	fd->parked = old & KPRIM_SEM_SLOT_SLOW ? 0 :
		     min(old & KPRIM_SEM_SLOT_FREE, fd->held);
}
EXPORT_SYMBOL_IF_KUNIT(__kprim_sem_slot_enter);

/* Give @fd's parked permits back to the semaphore. */
static void kprim_sem_unpark(struct kprim_sem *sem, struct kprim_sem_fd *fd)
{
	if (!fd->parked)
		return;
	kprim_sem_put(sem, fd, fd->parked);
	fd->parked = 0;
}

/**
 * __kprim_sem_slot_leave() - give @fd's slot back to userspace.
 * @sem:	the semaphore; its lock is held
 * @fd:		the fd
 *
 * With a waiter queued the parked permits go back to the semaphore (and
 * the grant pass runs) and the slot stays SLOW; otherwise the slot gets
 * the parked count and the fd's holding, and the fd joins the lenders.
 * A poller asleep on the semaphore counts as a waiter: its poll recalled
 * every slot, and a release parked in a slot lent after that would free
 * a permit without waking it; a SLOW slot sends releases to the kernel,
 * which wakes it. An fd that holds nothing has nothing to lend: its slot
 * stays SLOW and off the lenders, so that fds holding no permit cannot
 * lengthen a recall (which runs with interrupts off); nor is a slot lent
 * beyond KPRIM_SEM_SLOT_MAX_LENDERS, which bounds a recall. Shrunk below
 * what is held, the semaphore lends no slot: permits parked there would
 * be taken again above the new count.
 */
void __kprim_sem_slot_leave(struct kprim_sem *sem, struct kprim_sem_fd *fd)
{
	u64 word = KPRIM_SEM_SLOT_SLOW;

	lockdep_assert_held(&sem->wq.lock);
	if (--fd->entered)
		return;
	if (!list_empty(&sem->wq.waiters) || wq_has_sleeper(&sem->pollq) ||
	    !fd->held || sem->held > sem->permits ||
	    sem->nr_lenders >= KPRIM_SEM_SLOT_MAX_LENDERS ||
	    fd->parked > KPRIM_SEM_SLOT_FREE || fd->held > U32_MAX) {
		if (fd->parked) {
			kprim_sem_unpark(sem, fd);
			kprim_sem_grant(sem);
		}
	} else {
		word = fd->parked | fd->held << KPRIM_SEM_SLOT_HELD_SHIFT;
		list_add_tail(&fd->lender, &sem->lenders);
		sem->nr_lenders++;
	}
	/* Pairs with userspace's acquire of the word. */
	smp_store_release(&fd->slot->word, word);
}
EXPORT_SYMBOL_IF_KUNIT(__kprim_sem_slot_leave);

/**
 * kprim_sem_recall() - take every parked permit back.
 * @sem:	the semaphore; its lock is held
 *
 * Every lender's slot becomes SLOW with nothing parked. Bounded: there are
 * at most KPRIM_SEM_SLOT_MAX_LENDERS, each is visited once and joins the
 * list again only through a system call of its own (kprim_sem_slot_leave())
 * and only while it holds a permit. The caller runs the grant pass where
 * a waiter may be queued (a try finds the queue empty: there is none).
 */
void kprim_sem_recall(struct kprim_sem *sem)
{
	struct kprim_sem_fd *fd, *next;

	lockdep_assert_held(&sem->wq.lock);
	list_for_each_entry_safe(fd, next, &sem->lenders, lender) {
		kprim_sem_slot_enter(sem, fd);
		kprim_sem_unpark(sem, fd);
		/* An enter without a leave: the slot stays SLOW, unlent. */
		fd->entered = 0;
	}
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_recall);

/**
 * kprim_sem_try_acquire() - the fast path: grant @n at once if fair.
 * @sem:	the semaphore; its lock is held
 * @fd:		the holder record to account the permits to
 * @n:		permits wanted
 *
 * Granted only when nobody is queued (FIFO: an earlier request comes
 * first, even one that does not fit yet) and @n permits are available:
 * first from the permits parked in @fd's own slot (already held, unless
 * the semaphore is shrunk below what is held), else from the semaphore,
 * after recalling every slot's parked permits if it is short. Brackets
 * the work with a slot section of its own, so the slot is lent again (or
 * not) on the way out.
 *
 * Return: 0 when granted; -EINVAL when @n is 0 or more than the permit
 * count; -EAGAIN when the caller would have to wait.
 */
int kprim_sem_try_acquire(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			  u64 n)
{
	int ret = 0;

	lockdep_assert_held(&sem->wq.lock);
	if (!n || n > sem->permits)
		return -EINVAL;
	kprim_sem_slot_enter(sem, fd);
	/* With a waiter queued nothing is parked anywhere (see the top). */
	if (!list_empty(&sem->wq.waiters)) {
		ret = -EAGAIN;
	} else if (fd->parked >= n && sem->held <= sem->permits) {
		/* The fd's own parked permits: already held. */
		fd->parked -= n;
		kprim_sem_add_acquired(sem, 1);
	} else {
		if (kprim_sem_available(sem) < n) {
			kprim_sem_unpark(sem, fd);
			kprim_sem_recall(sem);
		}
		if (kprim_sem_available(sem) >= n)
			kprim_sem_take(sem, fd, n);
		else
			ret = -EAGAIN;
	}
	kprim_sem_slot_leave(sem, fd);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_try_acquire);

/**
 * kprim_sem_enqueue() - queue a request at the tail.
 * @sem:	the semaphore; its lock is held
 * @w:		the waiter, owned by the caller until it is completed
 * @fd:		the holder record a grant is accounted to
 * @n:		permits wanted, 1..permits
 *
 * The waiter sleeps in kprim_wait_for_grant(); kprim_sem_grant() completes
 * it.
 */
void kprim_sem_enqueue(struct kprim_sem *sem, struct kprim_waiter *w,
		       struct kprim_sem_fd *fd, u64 n)
{
	*w = (struct kprim_waiter) {
		.task = current, .n = n, .holder = fd,
	};
	kprim_waitq_add(&sem->wq, w);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_enqueue);

/**
 * kprim_sem_grant() - the grant pass: complete queued requests in order.
 * @sem: the semaphore; its lock is held
 *
 * Grants strictly from the head: stops at the first request that does not
 * fit, so a large head request blocks smaller ones behind it (see the top
 * of this file). A request for more than the current permit count (after a
 * shrink) is completed with -EINVAL instead.
 *
 * Return: the number of requests completed (granted or failed).
 */
unsigned int kprim_sem_grant(struct kprim_sem *sem)
{
	struct kprim_waiter *w;
	unsigned int done = 0;

	lockdep_assert_held(&sem->wq.lock);
	/* @w may be gone once it is granted or failed: fetch the head anew. */
	while ((w = list_first_entry_or_null(&sem->wq.waiters,
					     struct kprim_waiter, node))) {
		if (w->n > sem->permits) {
			kprim_waitq_fail(&sem->wq, w, -EINVAL);
		} else if (w->n <= kprim_sem_available(sem)) {
			kprim_sem_take(sem, w->holder, w->n);
			kprim_waitq_grant(&sem->wq, w);
		} else {
			break;
		}
		done++;
	}
	return done;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_grant);

/**
 * kprim_sem_release_locked() - release @n permits held by @fd.
 * @sem:	the semaphore; its lock is held
 * @fd:		the holder record
 * @n:		permits to give back
 *
 * Runs the grant pass afterwards.
 *
 * Return: 0; -EINVAL when @n is 0 or more than @fd holds in use (its
 * parked permits excluded: permits cannot be minted).
 */
int kprim_sem_release_locked(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			     u64 n)
{
	int ret = 0;

	lockdep_assert_held(&sem->wq.lock);
	if (!n)
		return -EINVAL;
	kprim_sem_slot_enter(sem, fd);
	/* Parked permits are held but not in use: they cannot be released. */
	if (n > fd->held - fd->parked)
		ret = -EINVAL;
	else
		kprim_sem_put(sem, fd, n);
	kprim_sem_slot_leave(sem, fd);
	if (!ret)
		kprim_sem_grant(sem);
	return ret;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_release_locked);

/**
 * kprim_sem_release_all() - give back everything @fd holds (close).
 * @sem:	the semaphore; its lock is held
 * @fd:		the holder record; it holds nothing afterwards
 */
void kprim_sem_release_all(struct kprim_sem *sem, struct kprim_sem_fd *fd)
{
	lockdep_assert_held(&sem->wq.lock);
	/*
	 * No mapping is left (each pins the file): the slot's count is not
	 * read, only its tally of acquisitions.
	 */
	if (fd->slot)
		kprim_sem_add_acquired(sem, xchg(&fd->slot->acquired, 0));
	if (!list_empty(&fd->lender)) {
		list_del_init(&fd->lender);
		sem->nr_lenders--;
	}
	fd->parked = 0;
	if (!fd->held)
		return;
	kprim_sem_put(sem, fd, fd->held);
	kprim_sem_grant(sem);
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_release_all);

/**
 * kprim_sem_resize_locked() - set the permit count.
 * @sem:	the semaphore; its lock is held
 * @permits:	the new count
 *
 * Holders keep what they hold; after a shrink below the held count nothing
 * is available until enough is released. Runs the grant pass, which grants
 * what now fits and fails queued requests larger than @permits.
 *
 * Return: 0; -EINVAL when @permits is 0 or above U32_MAX.
 */
int kprim_sem_resize_locked(struct kprim_sem *sem, u64 permits)
{
	lockdep_assert_held(&sem->wq.lock);
	if (!permits || permits > KPRIM_SEM_PERMITS_MAX)
		return -EINVAL;
	/*
	 * Parked permits are not in use: after a shrink, taking one from a
	 * slot would put more in use than the new count. Take them back first.
	 */
	kprim_sem_recall(sem);
	sem->permits = permits;
	kprim_sem_grant(sem);
	return 0;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_resize_locked);

/**
 * kprim_sem_poll_ready() - could the next request be granted now?
 * @sem: the semaphore; its lock is held
 *
 * Return: true when the head waiter's request fits, or with no waiter,
 * when a request of one permit would.
 */
bool kprim_sem_poll_ready(const struct kprim_sem *sem)
{
	u64 n = 1;

	lockdep_assert_held(&sem->wq.lock);
	if (!list_empty(&sem->wq.waiters))
		n = list_first_entry(&sem->wq.waiters, struct kprim_waiter,
				     node)->n;
	return kprim_sem_available(sem) >= n;
}
EXPORT_SYMBOL_IF_KUNIT(kprim_sem_poll_ready);

/* Availability may have grown: tell poll(). */
static void kprim_sem_wake_pollers(struct kprim_sem *sem)
{
	if (wq_has_sleeper(&sem->pollq))
		wake_up_interruptible_poll(&sem->pollq, EPOLLIN | EPOLLRDNORM);
}

/* A waiter left without a grant (wq.lock held): the next may fit now. */
static void kprim_sem_abandoned(void *owner)
{
	struct kprim_sem *sem = owner;

	kprim_sem_grant(sem);
	kprim_sem_wake_pollers(sem);
}

static int kprim_sem_check(const struct kprim_open *args)
{
	const struct kprim_sem_params *p = &args->sem;

	if (args->flags & KPRIM_OPEN_INITIAL)
		return -EINVAL;
	if (!p->permits || p->permits > KPRIM_SEM_PERMITS_MAX)
		return -EINVAL;
	/* The reserved words and the rest of the parameter area. */
	if (memchr_inv(&args->params_raw[1], 0,
		       sizeof(args->params_raw) - sizeof(args->params_raw[0])))
		return -EINVAL;
	return 0;
}

static int kprim_sem_create(struct kprim_object *obj,
			    const struct kprim_open *args)
{
	const struct kprim_sem_params *p = &args->sem;
	struct kprim_sem *sem;

	sem = kzalloc(sizeof(*sem), GFP_KERNEL_ACCOUNT);
	if (!sem)
		return -ENOMEM;
	kprim_sem_init(sem, p->permits);
	sem->wq.obj = obj;
	obj->priv = sem;
	return 0;
}

static void kprim_sem_destroy(struct kprim_object *obj)
{
	struct kprim_sem *sem = obj->priv;

	/* Every fd is closed: nobody holds or waits. */
	WARN_ON_ONCE(sem->held || !list_empty(&sem->wq.waiters));
	kfree(sem);
}

static int kprim_sem_open_handle(struct kprim_handle *h)
{
	struct kprim_sem_fd *fd;

	fd = kmalloc(sizeof(*fd), GFP_KERNEL_ACCOUNT);
	if (!fd)
		return -ENOMEM;
	kprim_sem_fd_init(fd, h->tgid);
	h->priv = fd;
	return 0;
}

static void kprim_sem_release_handle(struct kprim_handle *h)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_fd *fd = h->priv;

	spin_lock_irq(&sem->wq.lock);
	kprim_sem_release_all(sem, fd);
	spin_unlock_irq(&sem->wq.lock);
	kprim_sem_wake_pollers(sem);
	if (fd->slot_page)
		__free_page(fd->slot_page);
	kfree(fd);
	h->priv = NULL;
}

/*
 * An acquire through io_uring that has to wait: queued without a thread
 * (async.c). Granted permits are accounted to @h's fd as for the ioctl.
 */
static long kprim_sem_acquire_async(struct kprim_handle *h, void __user *uarg,
				    const struct kprim_sem_acquire *args,
				    struct io_uring_cmd *ioucmd,
				    unsigned int issue_flags)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_async *a;
	int ret;

	a = kprim_async_new(ioucmd, issue_flags, &sem->wq, &args->wait, uarg,
			    kprim_sem_abandoned, sem);
	if (IS_ERR(a))
		return PTR_ERR(a);
	spin_lock_irq(&sem->wq.lock);
	/* One section: the slot is SLOW by the time the waiter is queued. */
	kprim_sem_slot_enter(sem, h->priv);
	ret = kprim_sem_try_acquire(sem, h->priv, args->n);
	if (ret == -EAGAIN)
		ret = kprim_async_queue_locked(a, args->n, h->priv);
	trace_kprim_sem_acquire(&sem->wq, args->n, ret, true);
	kprim_sem_slot_leave(sem, h->priv);
	spin_unlock_irq(&sem->wq.lock);
	if (ret == -EIOCBQUEUED)
		return ret;
	return kprim_async_discard(a, ret, issue_flags);
}

/*
 * An acquire that may wait: the wait context and the waiter live in this
 * frame only, so that a try-acquire (kprim_sem_acquire()) neither zeroes
 * nor sets them up.
 */
static noinline int kprim_sem_acquire_wait(struct kprim_handle *h,
					   struct kprim_sem_acquire __user *uargs,
					   const struct kprim_sem_acquire *args)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_fd *fd = h->priv;
	struct kprim_waiter w;
	struct kprim_wait_ctx ctx;
	int ret;

	ret = kprim_wait_ctx_init(&ctx, &args->wait);
	if (ret)
		goto out;

	spin_lock_irq(&sem->wq.lock);
	/* One section: the slot is SLOW by the time the waiter is queued. */
	kprim_sem_slot_enter(sem, fd);
	ret = kprim_sem_try_acquire(sem, fd, args->n);
	if (ret != -EAGAIN || ctx.nonblock) {
		trace_kprim_sem_acquire(&sem->wq, args->n, ret, false);
		kprim_sem_slot_leave(sem, fd);
		spin_unlock_irq(&sem->wq.lock);
		goto out;
	}
	kprim_sem_enqueue(sem, &w, fd, args->n);
	trace_kprim_sem_acquire(&sem->wq, args->n, -EIOCBQUEUED, false);
	kprim_sem_slot_leave(sem, fd);
	spin_unlock_irq(&sem->wq.lock);

	ret = kprim_wait_for_grant(&sem->wq, &w, &ctx, kprim_sem_abandoned,
				   sem);
	if (ret == -ERESTARTSYS)
		ret = kprim_wait_restart(&ctx, &uargs->wait);
out:
	kprim_wait_ctx_destroy(&ctx);
	return ret;
}

/*
 * @ioucmd: NULL for the ioctl; the io_uring request otherwise.
 *
 * The hot path is a try-acquire that names no cancel fd: it needs no wait
 * context (nothing to validate, no deadline, no eventfd), so it is done
 * here, as kprim_sem_acquire_wait() does it for a timeout of 0.
 */
static __always_inline long
kprim_sem_acquire(struct kprim_handle *h, void __user *uarg,
		  struct io_uring_cmd *ioucmd, unsigned int issue_flags)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_acquire args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_SEM_ACQUIRE_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags || !args.n)
		return -EINVAL;
	if (ioucmd && args.wait.timeout_ns)
		return kprim_sem_acquire_async(h, uarg, &args, ioucmd,
					       issue_flags);
	if (args.wait.timeout_ns || args.wait.reserved ||
	    args.wait.cancel_fd != KPRIM_NO_CANCEL_FD)
		return kprim_sem_acquire_wait(h, uarg, &args);

	spin_lock_irq(&sem->wq.lock);
	ret = kprim_sem_try_acquire(sem, h->priv, args.n);
	trace_kprim_sem_acquire(&sem->wq, args.n, ret, false);
	spin_unlock_irq(&sem->wq.lock);
	return ret;
}

static long kprim_sem_release(struct kprim_handle *h, void __user *uarg)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_release args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_SEM_RELEASE_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags)
		return -EINVAL;

	spin_lock_irq(&sem->wq.lock);
	ret = kprim_sem_release_locked(sem, h->priv, args.n);
	spin_unlock_irq(&sem->wq.lock);
	if (!ret)
		kprim_sem_wake_pollers(sem);
	return ret;
}

static long kprim_sem_resize(struct kprim_handle *h, void __user *uarg)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_resize args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_SEM_RESIZE_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags || !args.permits ||
	    args.permits > KPRIM_SEM_PERMITS_MAX)
		return -EINVAL;
	if (!kprim_obj_owner_or_admin(h->obj))
		return -EPERM;

	spin_lock_irq(&sem->wq.lock);
	ret = kprim_sem_resize_locked(sem, args.permits);
	spin_unlock_irq(&sem->wq.lock);
	if (!ret)
		kprim_sem_wake_pollers(sem);
	return ret;
}

/*
 * Before a report (INFO, LIST, fdinfo, poll): parked permits are not in
 * use, so they are taken back and reported as available.
 */
static void kprim_sem_recall_for_report(struct kprim_sem *sem)
{
	if (list_empty(&sem->lenders))
		return;
	kprim_sem_recall(sem);
	kprim_sem_grant(sem);
}

/* Snapshot the counters of struct kprim_sem_info under the lock. */
static void kprim_sem_fill(struct kprim_sem *sem, struct kprim_sem_fd *fd,
			   struct kprim_sem_info *args)
{
	lockdep_assert_held(&sem->wq.lock);
	args->permits = sem->permits;
	args->available = kprim_sem_available(sem);
	args->held = sem->held;
	args->held_by_me = fd->held;
	args->waiters = sem->wq.nr_waiters;
	args->acquired = sem->acquired;
}

static long kprim_sem_info(struct kprim_handle *h, void __user *uarg)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_holder *buf = NULL;
	struct kprim_sem_info args;
	struct kprim_sem_fd *fd;
	u32 cap, want, n, total;
	int ret, tries;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_SEM_INFO_VER0,
			      uarg);
	if (ret)
		return ret;
	if (args.flags || args.reserved)
		return -EINVAL;
	cap = args.holders ? args.nr_holders : 0;

	/*
	 * The holder list is copied out under the spinlock into a buffer sized
	 * from a first look; if more holders appeared meanwhile, look again.
	 */
	for (tries = 0; ; tries++) {
		spin_lock_irq(&sem->wq.lock);
		kprim_sem_recall_for_report(sem);
		total = sem->nr_holders;
		spin_unlock_irq(&sem->wq.lock);
		want = min(cap, total);
		if (want) {
			buf = kvcalloc(want, sizeof(*buf), GFP_KERNEL);
			if (!buf)
				return -ENOMEM;
		}

		spin_lock_irq(&sem->wq.lock);
		if (sem->nr_holders > want && cap > want &&
		    tries < KPRIM_SEM_INFO_RETRIES) {
			spin_unlock_irq(&sem->wq.lock);
			kvfree(buf);
			buf = NULL;
			continue;
		}
		break;
	}
	kprim_sem_recall_for_report(sem);
	kprim_sem_fill(sem, h->priv, &args);
	args.nr_holders = sem->nr_holders;
	n = 0;
	list_for_each_entry(fd, &sem->holders, node) {
		if (n == want)
			break;
		buf[n].pid = pid_vnr(fd->pid);
		buf[n].held = fd->held;
		n++;
	}
	spin_unlock_irq(&sem->wq.lock);

	if (n && copy_to_user(u64_to_user_ptr(args.holders), buf,
			      array_size(n, sizeof(*buf))))
		ret = -EFAULT;
	kvfree(buf);
	if (ret)
		return ret;
	return kprim_copy_args_out(uarg, &args, sizeof(args));
}

/**
 * kprim_sem_ioctl() - the ioctls of a semaphore fd.
 * @h:		the fd's handle
 * @cmd:	the ioctl command
 * @arg:	its user argument
 *
 * Return: the command's result; -ENOTTY for a command of another kind.
 */
long kprim_sem_ioctl(struct kprim_handle *h, unsigned int cmd,
		     void __user *arg)
{
	switch (KPRIM_CMD(cmd)) {
	case KPRIM_CMD(KPRIM_IOC_SEM_ACQUIRE):
		return kprim_sem_acquire(h, arg, NULL, 0);
	case KPRIM_CMD(KPRIM_IOC_SEM_RELEASE):
		return kprim_sem_release(h, arg);
	case KPRIM_CMD(KPRIM_IOC_SEM_RESIZE):
		return kprim_sem_resize(h, arg);
	case KPRIM_CMD(KPRIM_IOC_SEM_INFO):
		return kprim_sem_info(h, arg);
	default:
		return -ENOTTY;
	}
}

static __poll_t kprim_sem_poll(struct kprim_handle *h, struct file *file,
			       poll_table *pt)
{
	struct kprim_sem *sem = h->obj->priv;
	__poll_t mask = 0;

	poll_wait(file, &sem->pollq, pt);
	spin_lock_irq(&sem->wq.lock);
	kprim_sem_recall_for_report(sem);
	if (kprim_sem_poll_ready(sem))
		mask |= EPOLLIN | EPOLLRDNORM;
	spin_unlock_irq(&sem->wq.lock);
	return mask;
}

/* fdinfo names at most this many holders; INFO reports them all. */
#define KPRIM_SEM_FDINFO_HOLDERS	16

static void kprim_sem_show_fdinfo(struct kprim_handle *h, struct seq_file *m)
{
	struct kprim_sem_holder holders[KPRIM_SEM_FDINFO_HOLDERS];
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_fd *fd = h->priv, *pos;
	u64 permits, available, held, mine, waiters, nr_holders;
	unsigned int n = 0, i;

	spin_lock_irq(&sem->wq.lock);
	kprim_sem_recall_for_report(sem);
	permits = sem->permits;
	available = kprim_sem_available(sem);
	held = sem->held;
	mine = fd->held;
	waiters = sem->wq.nr_waiters;
	nr_holders = sem->nr_holders;
	list_for_each_entry(pos, &sem->holders, node) {
		if (n == ARRAY_SIZE(holders))
			break;
		holders[n].pid = pid_vnr(pos->pid);
		holders[n].held = pos->held;
		n++;
	}
	spin_unlock_irq(&sem->wq.lock);

	seq_printf(m, "kprim-permits:\t%llu\n", permits);
	seq_printf(m, "kprim-available:\t%llu\n", available);
	seq_printf(m, "kprim-held:\t%llu\n", held);
	seq_printf(m, "kprim-held-by-fd:\t%llu\n", mine);
	seq_printf(m, "kprim-waiters:\t%llu\n", waiters);
	seq_printf(m, "kprim-holders:\t%llu\n", nr_holders);
	for (i = 0; i < n; i++)
		seq_printf(m, "kprim-holder:\tpid %d held %llu\n",
			   holders[i].pid, holders[i].held);
}

static void kprim_sem_fill_info(struct kprim_object *obj,
				struct kprim_obj_info *info)
{
	struct kprim_sem *sem = obj->priv;

	spin_lock_irq(&sem->wq.lock);
	kprim_sem_recall_for_report(sem);
	info->sem.permits = sem->permits;
	info->sem.available = kprim_sem_available(sem);
	info->sem.held = sem->held;
	info->sem.waiters = sem->wq.nr_waiters;
	info->sem.holders = sem->nr_holders;
	info->sem.acquired = sem->acquired;
	spin_unlock_irq(&sem->wq.lock);
}

/*
 * &kprim_kind_ops.map_page: the fd's slot page, allocated by its first
 * mmap() (charged to the caller) and handed to userspace with what the fd
 * holds; later calls get the same page.
 */
static struct page *kprim_sem_map_page(struct kprim_handle *h)
{
	struct kprim_sem *sem = h->obj->priv;
	struct kprim_sem_fd *fd = h->priv;
	struct page *page, *spare;

	spin_lock_irq(&sem->wq.lock);
	page = fd->slot_page;
	spin_unlock_irq(&sem->wq.lock);
	if (page)
		return page;

	spare = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!spare)
		return ERR_PTR(-ENOMEM);
	spin_lock_irq(&sem->wq.lock);
	page = fd->slot_page;
	if (!page) {
		page = spare;
		spare = NULL;
		fd->slot_page = page;
		fd->slot = page_address(page);
		/* Nothing parked yet: publish the holding. */
		fd->slot->word = KPRIM_SEM_SLOT_SLOW;
		kprim_sem_slot_enter(sem, fd);
		kprim_sem_slot_leave(sem, fd);
	}
	spin_unlock_irq(&sem->wq.lock);
	if (spare)
		__free_page(spare);
	return page;
}

static long kprim_sem_wait_cmd(struct kprim_handle *h, unsigned int cmd,
			       void __user *arg, struct io_uring_cmd *ioucmd,
			       unsigned int issue_flags)
{
	if (KPRIM_CMD(cmd) != KPRIM_CMD(KPRIM_IOC_SEM_ACQUIRE))
		return -ENOIOCTLCMD;
	return kprim_sem_acquire(h, arg, ioucmd, issue_flags);
}

static struct kprim_waitq *kprim_sem_waitq(struct kprim_object *obj)
{
	struct kprim_sem *sem = obj->priv;

	return &sem->wq;
}

const struct kprim_kind_ops kprim_sem_ops = {
	.kind		= KPRIM_KIND_SEM,
	.name		= "sem",
	.fd_name	= "[kprim-sem]",
	.check		= kprim_sem_check,
	.create		= kprim_sem_create,
	.destroy	= kprim_sem_destroy,
	.open_handle	= kprim_sem_open_handle,
	.release_handle	= kprim_sem_release_handle,
	.ioctl		= kprim_sem_ioctl,
	.poll		= kprim_sem_poll,
	.show_fdinfo	= kprim_sem_show_fdinfo,
	.fill_info	= kprim_sem_fill_info,
	.wait_cmd	= kprim_sem_wait_cmd,
	.waitq		= kprim_sem_waitq,
	.map_page	= kprim_sem_map_page,
};
