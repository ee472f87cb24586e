// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite kprim_sem: the semaphore's grant and accounting logic, driven
 * directly on a struct kprim_sem with fake waiters (no fds, no sleeping).
 *
 * Fake waiters are queued with task = current; a grant wakes current, which
 * is running anyway. Every call into sem.c is made under the semaphore's
 * lock, as the module makes it; expectations are checked after unlocking.
 */
#include <kunit/test.h>
#include <linux/slab.h>
#include "../sem.h"

static struct kprim_sem *t_sem(struct kunit *test, u64 permits)
{
	struct kprim_sem *sem = kunit_kzalloc(test, sizeof(*sem), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, sem);
	kprim_sem_init(sem, permits);
	return sem;
}

static struct kprim_sem_fd *t_fd(struct kunit *test)
{
	struct kprim_sem_fd *fd = kunit_kzalloc(test, sizeof(*fd), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, fd);
	/* Holder pids are reported by the ioctl layer, not tested here. */
	kprim_sem_fd_init(fd, NULL);
	return fd;
}

static int t_try(struct kprim_sem *sem, struct kprim_sem_fd *fd, u64 n)
{
	int ret;

	spin_lock_irq(&sem->wq.lock);
	ret = kprim_sem_try_acquire(sem, fd, n);
	spin_unlock_irq(&sem->wq.lock);
	return ret;
}

static void t_queue(struct kprim_sem *sem, struct kprim_waiter *sw,
		    struct kprim_sem_fd *fd, u64 n)
{
	spin_lock_irq(&sem->wq.lock);
	kprim_sem_enqueue(sem, sw, fd, n);
	spin_unlock_irq(&sem->wq.lock);
}

static unsigned int t_grant(struct kprim_sem *sem)
{
	unsigned int done;

	spin_lock_irq(&sem->wq.lock);
	done = kprim_sem_grant(sem);
	spin_unlock_irq(&sem->wq.lock);
	return done;
}

static int t_release(struct kprim_sem *sem, struct kprim_sem_fd *fd, u64 n)
{
	int ret;

	spin_lock_irq(&sem->wq.lock);
	ret = kprim_sem_release_locked(sem, fd, n);
	spin_unlock_irq(&sem->wq.lock);
	return ret;
}

static void t_release_all(struct kprim_sem *sem, struct kprim_sem_fd *fd)
{
	spin_lock_irq(&sem->wq.lock);
	kprim_sem_release_all(sem, fd);
	spin_unlock_irq(&sem->wq.lock);
}

static int t_resize(struct kprim_sem *sem, u64 permits)
{
	int ret;

	spin_lock_irq(&sem->wq.lock);
	ret = kprim_sem_resize_locked(sem, permits);
	spin_unlock_irq(&sem->wq.lock);
	return ret;
}

static u64 t_avail(struct kprim_sem *sem)
{
	u64 avail;

	spin_lock_irq(&sem->wq.lock);
	avail = kprim_sem_available(sem);
	spin_unlock_irq(&sem->wq.lock);
	return avail;
}

static bool t_ready(struct kprim_sem *sem)
{
	bool ready;

	spin_lock_irq(&sem->wq.lock);
	ready = kprim_sem_poll_ready(sem);
	spin_unlock_irq(&sem->wq.lock);
	return ready;
}

/* Check the invariants every state must satisfy. */
static void t_check(struct kunit *test, struct kprim_sem *sem)
{
	struct kprim_sem_fd *fd;
	u32 nr = 0, idle = 0, lent = 0, lent_idle = 0;
	u64 sum = 0;

	spin_lock_irq(&sem->wq.lock);
	list_for_each_entry(fd, &sem->holders, node) {
		sum += fd->held;
		nr++;
		if (!fd->held)
			idle++;
	}
	list_for_each_entry(fd, &sem->lenders, lender) {
		lent++;
		if (!fd->held)
			lent_idle++;
	}
	spin_unlock_irq(&sem->wq.lock);
	/* The bound on a recall's walk counts the list it walks. */
	KUNIT_EXPECT_EQ(test, lent, sem->nr_lenders);
	KUNIT_EXPECT_LE(test, lent, (u32)KPRIM_SEM_SLOT_MAX_LENDERS);
	KUNIT_EXPECT_EQ(test, lent_idle, 0U);	/* lenders hold a permit */
	KUNIT_EXPECT_EQ(test, sum, sem->held);
	KUNIT_EXPECT_EQ(test, nr, sem->nr_holders);
	KUNIT_EXPECT_EQ(test, idle, 0U);	/* only fds that hold are listed */
	if (sem->held <= sem->permits)
		KUNIT_EXPECT_EQ(test, sem->held + t_avail(sem), sem->permits);
	else
		KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);
}

struct sem_try_case {
	const char *desc;
	u64 permits;
	u64 held;		/* taken first by another fd */
	bool queued;		/* a waiter for permits + 0 is queued first */
	u64 n;
	int ret;
	u64 avail_after;
};

static const struct sem_try_case sem_try_cases[] = {
	{ "one of one",		  1, 0, false, 1,  0,      0 },
	{ "all at once",	  8, 0, false, 8,  0,      0 },
	{ "part",		  8, 3, false, 4,  0,      1 },
	{ "exactly the rest",	  8, 3, false, 5,  0,      0 },
	{ "one too many",	  8, 3, false, 6,  -EAGAIN, 5 },
	{ "zero",		  8, 0, false, 0,  -EINVAL, 8 },
	{ "more than permits",	  8, 0, false, 9,  -EINVAL, 8 },
	{ "u32 max",		  U32_MAX, 0, false, U32_MAX, 0, 0 },
	{ "above u64 permits",	  U32_MAX, 0, false, U64_MAX, -EINVAL, U32_MAX },
	{ "free but queue busy",  8, 4, true,  1,  -EAGAIN, 4 },
};

static void sem_try_case_desc(const struct sem_try_case *c, char *desc)
{
	strscpy(desc, c->desc, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(sem_try, sem_try_cases, sem_try_case_desc);

/* The fast path grants only what is free and only when nobody is queued. */
static void sem_try_acquire_table(struct kunit *test)
{
	const struct sem_try_case *c = test->param_value;
	struct kprim_sem *sem = t_sem(test, c->permits);
	struct kprim_sem_fd *other = t_fd(test), *me = t_fd(test);
	struct kprim_waiter sw;

	if (c->held)
		KUNIT_ASSERT_EQ(test, t_try(sem, other, c->held), 0);
	if (c->queued)
		t_queue(sem, &sw, other, c->permits);

	KUNIT_EXPECT_EQ(test, t_try(sem, me, c->n), c->ret);
	KUNIT_EXPECT_EQ(test, t_avail(sem), c->avail_after);
	KUNIT_EXPECT_EQ(test, me->held, c->ret ? 0 : c->n);
	KUNIT_EXPECT_EQ(test, sem->acquired, (u64)!!c->held + !c->ret);
	t_check(test, sem);
}

/* A big request at the head blocks smaller later ones: it is not starved. */
static void sem_fifo_big_head_blocks_small(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 4);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_sem_fd *c = t_fd(test);
	struct kprim_waiter big, small;

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 3), 0);
	t_queue(sem, &big, b, 3);
	t_queue(sem, &small, c, 1);
	KUNIT_EXPECT_EQ(test, sem->wq.nr_waiters, 2ULL);

	/* One permit is free and would fit "small", but "big" is first. */
	KUNIT_EXPECT_EQ(test, t_grant(sem), 0U);
	KUNIT_EXPECT_FALSE(test, big.granted);
	KUNIT_EXPECT_FALSE(test, small.granted);
	KUNIT_EXPECT_FALSE(test, t_ready(sem));
	/* A newcomer queues too. */
	KUNIT_EXPECT_EQ(test, t_try(sem, c, 1), -EAGAIN);

	/* Releasing 2 leaves 3 free: "big" then "small" (1 left) both fit. */
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 2), 0);
	KUNIT_EXPECT_TRUE(test, big.granted);
	KUNIT_EXPECT_EQ(test, big.result, 0);
	KUNIT_EXPECT_FALSE(test, small.granted);
	KUNIT_EXPECT_EQ(test, b->held, 3ULL);
	KUNIT_EXPECT_EQ(test, sem->wq.nr_waiters, 1ULL);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);

	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	KUNIT_EXPECT_TRUE(test, small.granted);
	KUNIT_EXPECT_EQ(test, c->held, 1ULL);
	KUNIT_EXPECT_EQ(test, sem->wq.nr_waiters, 0ULL);
	KUNIT_EXPECT_EQ(test, a->held, 0ULL);
	KUNIT_EXPECT_EQ(test, sem->acquired, 3ULL);
	t_check(test, sem);
}

/* Several waiters that fit together are granted in one pass, in order. */
static void sem_fifo_grants_in_order(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 6);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_waiter w[4];
	static const u64 want[4] = { 2, 1, 3, 1 };
	int i;

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 6), 0);
	for (i = 0; i < 4; i++)
		t_queue(sem, &w[i], b, want[i]);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);

	/* 6 free: 2 + 1 + 3 fit, the last 1 waits. */
	t_release_all(sem, a);
	for (i = 0; i < 3; i++)
		KUNIT_EXPECT_TRUE(test, w[i].granted);
	KUNIT_EXPECT_FALSE(test, w[3].granted);
	KUNIT_EXPECT_EQ(test, b->held, 6ULL);
	KUNIT_EXPECT_EQ(test, sem->nr_holders, 1U);
	KUNIT_EXPECT_TRUE(test, list_empty(&a->node));

	KUNIT_EXPECT_EQ(test, t_release(sem, b, 1), 0);
	KUNIT_EXPECT_TRUE(test, w[3].granted);
	KUNIT_EXPECT_EQ(test, b->held, 6ULL);
	t_check(test, sem);
}

/* A waiter that leaves the head (timeout, signal) lets the next one in. */
static void sem_abandoned_head_unblocks_next(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 4);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_waiter big, small;

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 2), 0);
	t_queue(sem, &big, b, 4);
	t_queue(sem, &small, b, 2);
	KUNIT_EXPECT_EQ(test, t_grant(sem), 0U);

	/* What kprim_wait_for_grant() does on timeout, then the owner. */
	spin_lock_irq(&sem->wq.lock);
	list_del(&big.node);
	sem->wq.nr_waiters--;
	spin_unlock_irq(&sem->wq.lock);
	KUNIT_EXPECT_EQ(test, t_grant(sem), 1U);
	KUNIT_EXPECT_TRUE(test, small.granted);
	KUNIT_EXPECT_FALSE(test, big.granted);
	KUNIT_EXPECT_EQ(test, b->held, 2ULL);
	t_check(test, sem);
}

/* Growing the semaphore grants queued requests at once. */
static void sem_resize_up_grants(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 2);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_waiter w1, w2;

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 2), 0);
	t_queue(sem, &w1, b, 2);
	t_queue(sem, &w2, b, 1);
	KUNIT_EXPECT_EQ(test, t_resize(sem, 4), 0);
	KUNIT_EXPECT_TRUE(test, w1.granted);
	KUNIT_EXPECT_FALSE(test, w2.granted);
	KUNIT_EXPECT_EQ(test, t_resize(sem, 5), 0);
	KUNIT_EXPECT_TRUE(test, w2.granted);
	KUNIT_EXPECT_EQ(test, sem->held, 5ULL);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);
	t_check(test, sem);
}

/* Shrinking below the held count lets holders finish; new acquires wait. */
static void sem_resize_down_below_held(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 8);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 6), 0);
	KUNIT_EXPECT_EQ(test, t_resize(sem, 4), 0);
	KUNIT_EXPECT_EQ(test, a->held, 6ULL);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);
	KUNIT_EXPECT_FALSE(test, t_ready(sem));
	t_check(test, sem);
	KUNIT_EXPECT_EQ(test, t_try(sem, b, 1), -EAGAIN);

	KUNIT_EXPECT_EQ(test, t_release(sem, a, 2), 0);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);	/* 4 held of 4 */
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 1ULL);
	KUNIT_EXPECT_TRUE(test, t_ready(sem));
	KUNIT_EXPECT_EQ(test, t_try(sem, b, 1), 0);
	KUNIT_EXPECT_EQ(test, t_try(sem, b, 5), -EINVAL);
	t_check(test, sem);
}

/* After a shrink, a queued request above the new count fails, not blocks. */
static void sem_resize_down_fails_oversize_waiter(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 8);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_waiter big, small;

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 4), 0);
	t_queue(sem, &big, b, 6);
	t_queue(sem, &small, b, 1);
	KUNIT_EXPECT_EQ(test, t_grant(sem), 0U);

	KUNIT_EXPECT_EQ(test, t_resize(sem, 5), 0);
	KUNIT_EXPECT_TRUE(test, big.granted);
	KUNIT_EXPECT_EQ(test, big.result, -EINVAL);
	KUNIT_EXPECT_TRUE(test, small.granted);
	KUNIT_EXPECT_EQ(test, small.result, 0);
	KUNIT_EXPECT_EQ(test, b->held, 1ULL);
	KUNIT_EXPECT_EQ(test, sem->wq.nr_waiters, 0ULL);
	t_check(test, sem);
}

/* Resize rejects 0 and counts that do not fit in 32 bits. */
static void sem_resize_rejects_bad_counts(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 3);

	KUNIT_EXPECT_EQ(test, t_resize(sem, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, t_resize(sem, (u64)U32_MAX + 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, sem->permits, 3ULL);
	KUNIT_EXPECT_EQ(test, t_resize(sem, U32_MAX), 0);
	KUNIT_EXPECT_EQ(test, t_avail(sem), (u64)U32_MAX);
}

/* Release takes back only what the fd holds, and never 0. */
static void sem_release_accounting(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 10);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);

	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), -EINVAL);
	KUNIT_ASSERT_EQ(test, t_try(sem, a, 3), 0);
	KUNIT_ASSERT_EQ(test, t_try(sem, b, 2), 0);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 0), -EINVAL);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 4), -EINVAL);
	KUNIT_EXPECT_EQ(test, t_release(sem, b, 3), -EINVAL);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 5ULL);

	KUNIT_EXPECT_EQ(test, t_release(sem, a, 2), 0);
	KUNIT_EXPECT_EQ(test, a->held, 1ULL);
	KUNIT_EXPECT_EQ(test, sem->nr_holders, 2U);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	KUNIT_EXPECT_EQ(test, sem->nr_holders, 1U);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 8ULL);
	t_check(test, sem);

	t_release_all(sem, b);
	KUNIT_EXPECT_EQ(test, b->held, 0ULL);
	KUNIT_EXPECT_EQ(test, sem->nr_holders, 0U);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 10ULL);
	t_release_all(sem, b);		/* holding nothing: no-op */
	KUNIT_EXPECT_EQ(test, t_avail(sem), 10ULL);
	t_check(test, sem);
}

/* Holders are listed once each, in the order they started holding. */
static void sem_holder_bookkeeping(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 10);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_sem_fd *first;

	KUNIT_ASSERT_EQ(test, t_try(sem, b, 1), 0);
	KUNIT_ASSERT_EQ(test, t_try(sem, a, 1), 0);
	KUNIT_ASSERT_EQ(test, t_try(sem, b, 2), 0);
	KUNIT_EXPECT_EQ(test, sem->nr_holders, 2U);
	first = list_first_entry(&sem->holders, struct kprim_sem_fd, node);
	KUNIT_EXPECT_PTR_EQ(test, first, b);
	KUNIT_EXPECT_EQ(test, first->held, 3ULL);
	t_check(test, sem);

	KUNIT_EXPECT_EQ(test, t_release(sem, b, 3), 0);
	first = list_first_entry(&sem->holders, struct kprim_sem_fd, node);
	KUNIT_EXPECT_PTR_EQ(test, first, a);
	KUNIT_ASSERT_EQ(test, t_try(sem, b, 1), 0);
	first = list_last_entry(&sem->holders, struct kprim_sem_fd, node);
	KUNIT_EXPECT_PTR_EQ(test, first, b);
	KUNIT_EXPECT_EQ(test, sem->acquired, 4ULL);
	t_check(test, sem);
}

/* poll() readiness follows the head request, or a request of one. */
static void sem_poll_ready_follows_head(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 3);
	struct kprim_sem_fd *a = t_fd(test);
	struct kprim_waiter w;

	KUNIT_EXPECT_TRUE(test, t_ready(sem));
	KUNIT_ASSERT_EQ(test, t_try(sem, a, 3), 0);
	KUNIT_EXPECT_FALSE(test, t_ready(sem));
	t_queue(sem, &w, a, 2);
	/* Not via release: check readiness with the waiter still queued. */
	spin_lock_irq(&sem->wq.lock);
	a->held -= 1;
	sem->held -= 1;
	spin_unlock_irq(&sem->wq.lock);
	KUNIT_EXPECT_FALSE(test, t_ready(sem));	/* 1 free, head wants 2 */
	spin_lock_irq(&sem->wq.lock);
	a->held -= 1;
	sem->held -= 1;
	spin_unlock_irq(&sem->wq.lock);
	KUNIT_EXPECT_TRUE(test, t_ready(sem));
	KUNIT_EXPECT_EQ(test, t_grant(sem), 1U);
	KUNIT_EXPECT_TRUE(test, w.granted);
	KUNIT_EXPECT_EQ(test, a->held, 3ULL);
	KUNIT_EXPECT_FALSE(test, t_ready(sem));
	t_check(test, sem);
}

/* An fd with a slot: a zeroed struct stands in for the mapped page. */
static struct kprim_sem_slot *t_slot(struct kunit *test, struct kprim_sem *sem,
				     struct kprim_sem_fd *fd)
{
	struct kprim_sem_slot *slot = kunit_kzalloc(test, sizeof(*slot),
						    GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, slot);
	spin_lock_irq(&sem->wq.lock);
	fd->slot = slot;
	slot->word = KPRIM_SEM_SLOT_SLOW;
	kprim_sem_slot_enter(sem, fd);
	kprim_sem_slot_leave(sem, fd);
	spin_unlock_irq(&sem->wq.lock);
	return slot;
}

static u64 t_word(u64 free, u64 held)
{
	return free | held << KPRIM_SEM_SLOT_HELD_SHIFT;
}

/*
 * Permits parked in a slot are the fd's own: its try takes them without
 * touching the semaphore; another fd's try recalls them; a release cannot
 * give back parked ones.
 */
static void sem_slot_park_and_recall(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 3);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_sem_slot *slot = t_slot(test, sem, a);

	/* Holding nothing, the fd is not lent: its slot says SLOW. */
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	KUNIT_ASSERT_EQ(test, t_try(sem, a, 3), 0);
	KUNIT_EXPECT_EQ(test, slot->word, t_word(0, 3));
	/* Userspace releases two: parked. */
	slot->word = t_word(2, 3);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 2), -EINVAL);
	KUNIT_EXPECT_EQ(test, slot->word, t_word(2, 3));
	/* a's own try: from the slot, the semaphore unchanged. */
	KUNIT_EXPECT_EQ(test, t_try(sem, a, 1), 0);
	KUNIT_EXPECT_EQ(test, slot->word, t_word(1, 3));
	KUNIT_EXPECT_EQ(test, t_avail(sem), 0ULL);
	/* b needs one: a's parked one is recalled, a's slot left SLOW. */
	KUNIT_EXPECT_EQ(test, t_try(sem, b, 1), 0);
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	KUNIT_EXPECT_EQ(test, a->held, 2ULL);
	KUNIT_EXPECT_EQ(test, b->held, 1ULL);
	KUNIT_EXPECT_TRUE(test, list_empty(&sem->lenders));
	t_check(test, sem);
	/* a's next call publishes its slot again. */
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	KUNIT_EXPECT_EQ(test, slot->word, t_word(0, 1));
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	t_release_all(sem, b);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 3ULL);
	t_check(test, sem);
}

/*
 * Garbage in a slot is clamped to what the fd holds, a SLOW slot has
 * nothing parked, and with a waiter queued a slot is never published.
 */
static void sem_slot_garbage_and_waiters(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 4);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_sem_slot *slot = t_slot(test, sem, a);
	struct kprim_waiter w;

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 2), 0);
	/* "A billion parked": only the 2 a holds can be. */
	slot->word = t_word(KPRIM_SEM_SLOT_FREE, 0xffffffffULL);
	KUNIT_EXPECT_EQ(test, t_try(sem, b, 4), 0);
	KUNIT_EXPECT_EQ(test, a->held, 0ULL);
	KUNIT_EXPECT_EQ(test, sem->held, 4ULL);
	t_check(test, sem);
	/* SLOW with a count: nothing is parked. */
	t_release_all(sem, b);
	KUNIT_ASSERT_EQ(test, t_try(sem, a, 1), 0);
	slot->word = KPRIM_SEM_SLOT_SLOW | t_word(1, 1);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	KUNIT_EXPECT_EQ(test, a->held, 0ULL);
	/* b holds all; a queues: a's slot stays SLOW until the grant. */
	KUNIT_ASSERT_EQ(test, t_try(sem, b, 4), 0);
	spin_lock_irq(&sem->wq.lock);
	kprim_sem_slot_enter(sem, a);
	KUNIT_EXPECT_EQ(test, kprim_sem_try_acquire(sem, a, 1), -EAGAIN);
	kprim_sem_enqueue(sem, &w, a, 1);
	kprim_sem_slot_leave(sem, a);
	spin_unlock_irq(&sem->wq.lock);
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	KUNIT_EXPECT_TRUE(test, list_empty(&sem->lenders));
	KUNIT_EXPECT_EQ(test, t_release(sem, b, 1), 0);
	KUNIT_EXPECT_TRUE(test, w.granted);
	KUNIT_EXPECT_EQ(test, a->held, 1ULL);
	t_release_all(sem, a);
	t_release_all(sem, b);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 4ULL);
	t_check(test, sem);
}

/* A shrink takes parked permits back before it applies. */
static void sem_slot_resize_recalls(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 2);
	struct kprim_sem_fd *a = t_fd(test);
	struct kprim_sem_slot *slot = t_slot(test, sem, a);

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 2), 0);
	slot->word = t_word(1, 2);	/* one parked */
	KUNIT_EXPECT_EQ(test, t_resize(sem, 1), 0);
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	KUNIT_EXPECT_EQ(test, a->held, 1ULL);
	KUNIT_EXPECT_EQ(test, t_try(sem, a, 1), -EAGAIN);
	t_release_all(sem, a);
	t_check(test, sem);
}

/*
 * Shrunk below what is held, an fd's slot is not lent again: permits its
 * users released there would otherwise be re-taken without the kernel,
 * above the new count.
 */
static void sem_slot_shrunk_not_lent(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 3);
	struct kprim_sem_fd *a = t_fd(test);
	struct kprim_sem_slot *slot = t_slot(test, sem, a);

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 3), 0);
	KUNIT_EXPECT_EQ(test, t_resize(sem, 1), 0);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	/* Still 2 held for a count of 1: SLOW, not lent. */
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	KUNIT_EXPECT_TRUE(test, list_empty(&sem->lenders));
	/* What a parking release would have written: not trusted. */
	slot->word = t_word(1, 2);
	KUNIT_EXPECT_EQ(test, t_try(sem, a, 1), -EAGAIN);
	KUNIT_EXPECT_EQ(test, a->held, 2ULL);
	KUNIT_EXPECT_EQ(test, t_release(sem, a, 1), 0);
	/* Back within the count: lent again. */
	KUNIT_EXPECT_EQ(test, slot->word, t_word(0, 1));
	t_release_all(sem, a);
	t_check(test, sem);
}

/*
 * A slot the kernel took back (recalled, left SLOW) has nothing parked,
 * whatever its word says afterwards: only a lent slot is read.
 */
static void sem_slot_unlent_word_ignored(struct kunit *test)
{
	struct kprim_sem *sem = t_sem(test, 3);
	struct kprim_sem_fd *a = t_fd(test), *b = t_fd(test);
	struct kprim_sem_slot *slot = t_slot(test, sem, a);

	KUNIT_ASSERT_EQ(test, t_try(sem, a, 2), 0);
	/* b wants 2 of the 1 left: a's slot is recalled, b refused. */
	KUNIT_EXPECT_EQ(test, t_try(sem, b, 2), -EAGAIN);
	KUNIT_EXPECT_EQ(test, slot->word, KPRIM_SEM_SLOT_SLOW);
	KUNIT_EXPECT_TRUE(test, list_empty(&sem->lenders));
	/* A writer claims a's 2 are parked: a's try must not believe it. */
	slot->word = t_word(2, 2);
	KUNIT_EXPECT_EQ(test, t_try(sem, a, 2), -EAGAIN);
	KUNIT_EXPECT_EQ(test, a->held, 2ULL);
	KUNIT_EXPECT_EQ(test, sem->held, 2ULL);
	t_release_all(sem, a);
	KUNIT_EXPECT_EQ(test, t_avail(sem), 3ULL);
	t_check(test, sem);
}

static struct kunit_case kprim_sem_cases[] = {
	KUNIT_CASE(sem_slot_park_and_recall),
	KUNIT_CASE(sem_slot_garbage_and_waiters),
	KUNIT_CASE(sem_slot_resize_recalls),
	KUNIT_CASE(sem_slot_shrunk_not_lent),
	KUNIT_CASE(sem_slot_unlent_word_ignored),
	KUNIT_CASE_PARAM(sem_try_acquire_table, sem_try_gen_params),
	KUNIT_CASE(sem_fifo_big_head_blocks_small),
	KUNIT_CASE(sem_fifo_grants_in_order),
	KUNIT_CASE(sem_abandoned_head_unblocks_next),
	KUNIT_CASE(sem_resize_up_grants),
	KUNIT_CASE(sem_resize_down_below_held),
	KUNIT_CASE(sem_resize_down_fails_oversize_waiter),
	KUNIT_CASE(sem_resize_rejects_bad_counts),
	KUNIT_CASE(sem_release_accounting),
	KUNIT_CASE(sem_holder_bookkeeping),
	KUNIT_CASE(sem_poll_ready_follows_head),
	{}
};

static struct kunit_suite kprim_sem_suite = {
	.name = "kprim_sem",
	.test_cases = kprim_sem_cases,
};

kunit_test_suite(kprim_sem_suite);
