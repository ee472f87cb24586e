/*
 * SPDX-License-Identifier: GPL-2.0
 *
 * models/async_wait.pml - the io_uring waits that hold no thread
 * (kmod/async.c), checked exhaustively with spin (models/check.sh).
 *
 * One semaphore (kmod/sem.c) with P permits, all of them held at the start
 * by a holder fd that gives them back at some point. R io_uring acquires
 * and one ioctl acquire (a task that sleeps in kprim_wait_for_grant()) wait
 * for them. Each io_uring request can end through:
 *
 *   the grant pass        kprim_sem_grant() -> kprim_waitq_grant() ->
 *                         kprim_async_end_locked(), run by every release
 *   its deadline          hrtimer -> kprim_async_timeout()
 *   its cancel eventfd    kprim_cancel_wake() -> kprim_async_cancel_fired()
 *                         -> schedule_work(): kprim_async_cancel_work()
 *   KPRIM_IOC_WAIT_CANCEL kprim_async_cancel_cmd()
 *   IO_URING_F_CANCEL     kprim_async_uring_cancel(), completes inline
 *                         (ring teardown, or an exec of the submitter)
 *   the 6.1 watcher       kprim_async_watch_fn() (with -DK61, instead of
 *                         IO_URING_F_CANCEL, which 6.1 lacks)
 *
 * and its completion (kprim_async_complete(): task work, the inline cancel
 * or kprim_async_discard() at issue), after the lock barrier,
 * hrtimer_cancel(), the eventfd unhook, cancel_work_sync() and leaving the
 * watch list, posts the CQE (io_uring_cmd_done()) and then frees the
 * struct. The exit of the submitting thread alone ends nothing (the wait
 * belongs to the ring), so it is no party here.
 *
 * What a process here is:
 *   Issuer(r)    the submitter of request r: issues it (inline, holding
 *                io_uring's ring lock; with -DIOWQ also from an io-wq
 *                worker, without it), then waits for its CQE running its
 *                task work, then, as the user, releases what it got.
 *   Timer(r)     r's hrtimer.
 *   CancelWork(r) r's cancel_work: kprim_async_cancel_work(), run by a
 *                kworker at any time after schedule_work(), as often as it
 *                was queued (a run clears "pending" first, so a signal
 *                during a run queues it again).
 *   Eventfd      a write to the cancel eventfd all requests share.
 *   WaitCancel   KPRIM_IOC_WAIT_CANCEL for one request or for all.
 *   UringCancel  io_uring_try_cancel_uring_cmd(): ring teardown (the
 *                teardown kthread) or an exec of the submitter (6.12);
 *                Watcher instead with -DK61 (a dying ring or an exec'ing
 *                submitter).
 *   Waiter       the ioctl acquire (its timeout/signal/cancel included).
 *   Holder       the fd holding the P permits; releases them.
 *   Permits      a monitor: available + held == P in every state.
 *
 * Locks: qlock = sem->wq.lock (spinlock, innermost but for evlock: nobody
 * waits for anything else while holding it); ulock = the ring's uring_lock (io_uring takes
 * it around task work, around its cancel pass and around the cancelable
 * list); evlock = the eventfd's wait-queue lock (held while it runs its
 * wake-up callbacks; with -DRING_EVFD taken inside qlock, so nothing may
 * take qlock under it); wmutex = kprim_async_watch_lock.
 *
 * Touching the struct is TOUCH(r): an assertion that it is not freed yet.
 * Every dereference of the struct in the C code after it may be visible to
 * another party has one.
 *
 * Configurations (-D flags). models/check.sh runs each "@check" line:
 * EXPECT (pass; fail: a deliberate mutation that must be caught; bug: a
 * real bug of kmod/async.c that must be reproduced until it is fixed -
 * then the model follows the fix and the line says pass), MODE (safety:
 * assertions and invalid end states; cycles: no cycle at all, so every
 * run ends), the flags, and what it checks.
 *
 * @check pass safety -DNO_WAITCANCEL -DNO_UCANCEL : 6.12, inline issue, the cancel eventfd and the ioctl waiter
 * @check pass safety -DNO_WAITER : 6.12, every io_uring party
 * @check pass safety -DNO_EVENTFD : 6.12, every party but the eventfd writer
 * @check pass safety -DP=2 -DNEED0=2 -DNO_WAITER -DNO_WAITCANCEL : FIFO, 2 permits, a head request for 2
 * @check pass safety -DK61 -DNO_WAITER -DNO_WAITCANCEL : 6.1, the watcher instead of IO_URING_F_CANCEL
 * @check pass safety -DIOWQ -DNO_WAITER -DNO_WAITCANCEL : io-wq issue (IOSQE_ASYNC) racing IO_URING_F_CANCEL
 * @check pass safety -DRING_EVFD -DNO_WAITER : cancel eventfd = the ring's eventfd (DEFER_TASKRUN)
 * @check pass cycles -DNO_WAITER -DNO_EVENTFD : no cycles: every run terminates
 * @check fail safety -DIOWQ -DNO_WAITER -DNO_WAITCANCEL -DMUT_FREE_FIRST : kfree() before io_uring_cmd_done() (before 6718c33): IO_URING_F_CANCEL uses the freed struct
 * @check fail safety -DRING_EVFD -DNO_WAITER -DNO_WAITCANCEL -DMUT_SYNC_FIRE : the eventfd callback ending the wait under the eventfd's lock (before 9d4f0e6): deadlock
 * @check fail safety -DMUT_NO_WORK_SYNC : completion not waiting for the cancel worker
 * @check fail safety -DMUT_WORK_SYNC_FIRST : cancel_work_sync() before the eventfd unhook
 * @check fail safety -DNO_WAITER -DMUT_NO_BARRIER : completion without the lock barrier
 * @check fail safety -DMUT_NO_HRTIMER_WAIT : completion not waiting for the timer callback
 * @check fail safety -DMUT_TIMER_NOSTATE : timer callback not checking the state
 * @check fail safety -DNO_WAITER -DMUT_FCANCEL_NOSTATE : IO_URING_F_CANCEL completing an ended request
 * @check fail safety -DP=2 -DNEED0=2 -DNO_WAITER -DMUT_BARGE : fast path ignoring the queue
 *
 * The first three 6.12 configurations together put every two parties in
 * one search. All of them at once (no flags) passes too, but explores
 * about 20 million states (a minute, 2 GB): too long for make check.
 *
 * Other flags: R (requests, 2), P (permits, 1), NTIMER (requests with a
 * deadline, 1: the others wait without one, KTIME_MAX), NPASS (cancel
 * passes, 1), NEED0 (permits request 0 asks for), NO_WAITER, NO_EVENTFD
 * (no writer; with -DRING_EVFD io_uring still signals it), NO_WAITCANCEL,
 * NO_UCANCEL (leave a party out to keep a configuration small: the
 * default one has them all).
 */

#ifndef R
#define R	2		/* io_uring requests */
#endif
#ifndef P
#define P	1		/* permits */
#endif
#ifndef NTIMER
#define NTIMER	1		/* requests with a deadline: 0..NTIMER-1 */
#endif
#ifndef NPASS
#define NPASS	1		/* cancel passes of io_uring / the watcher */
#endif

#define W	R		/* the ioctl waiter's id (queue, need[], held[]) */
#define HID	(R + 1)		/* the holder fd, in held[] */
#define NONE	255
#define ALL	254

/* enum kprim_async_state */
#define NEW	0
#define QUEUED	1
#define ENDED	2

/* results: 0, -ECANCELED, -ETIMEDOUT, -EIOCBQUEUED */
#define RES_OK		0
#define RES_CANCELED	1
#define RES_TIMEDOUT	2
#define RES_QUEUED	3

/* ---- state ---------------------------------------------------------- */

bit qlock;			/* sem->wq.lock */
bit ulock;			/* ctx->uring_lock */
bit evlock;			/* the cancel eventfd's wqh.lock */
bit wmutex;			/* kprim_async_watch_lock */

byte queue[R + 1];		/* sem->wq.waiters, oldest first */
byte qlen;
bool inq[R + 1];		/* w is on the queue (redundant, for asserts) */
byte need[R + 1];		/* waiter's n */
byte avail;			/* permits - held */
byte held[R + 2];		/* permits accounted to each fd */
bool granted_w;			/* the ioctl waiter's w->granted */
bool ev_sig;			/* the eventfd is readable */

/* struct kprim_async of request r, and what io_uring knows about r */
byte st[R];			/* @state */
byte res[R];			/* @result */
bool stop[R];			/* @stop */
bool fired[R];			/* @ctx.cancel.fired */
bool hooked[R];			/* @ctx.cancel.entry on the eventfd's queue */
bool armed[R];			/* @timer enqueued */
bool trun[R];			/* @timer callback running */
bool pending[R];		/* @cancel_work queued (WORK_STRUCT_PENDING) */
bool wrun[R];			/* @cancel_work running */
bool watched[R];		/* on kprim_async_watched (6.1) */
bool freed[R];			/* kfree()d */
bool tw[R];			/* completion task work queued */
bool cancelable[R];		/* IORING_URING_CMD_CANCELABLE */
byte cqe[R];			/* io_uring_cmd_done() calls */
byte cqeval[R];			/* the CQE's result */

byte qi;			/* scratch, only inside d_step; 0 outside */
byte gw = NONE;			/* scratch, only inside d_step; NONE outside */

#define TOUCH(r)	assert(!freed[r])

inline lock(l)
{
	atomic { l == 0 -> l = 1 }
}

inline unlock(l)
{
	l = 0
}

/* ---- kmod/wait.c: the FIFO ------------------------------------------ */

/* kprim_waitq_add() */
inline q_add(w)
{
	queue[qlen] = w;
	qlen++;
	inq[w] = 1
}

/* kprim_waitq_del() */
inline q_del(w)
{
	assert(inq[w]);
	qi = 0;
	do
	:: queue[qi] != w -> qi++
	:: else -> break
	od;
	do
	:: qi + 1 < qlen -> queue[qi] = queue[qi + 1]; qi++
	:: else -> break
	od;
	qlen--;
	queue[qlen] = NONE;
	inq[w] = 0;
	qi = 0
}

/* ---- kmod/sem.c ------------------------------------------------------ */

/*
 * kprim_sem_take(): account need[w] to w's fd. FIFO: a grant goes to the
 * head of the queue, and the fast path (kprim_sem_try_acquire()) only
 * grants when nobody is queued, so nothing is ever granted while an
 * earlier request waits (sem.c grants strictly in order, which is more
 * than "never before an earlier one that fits").
 */
inline take(w)
{
	assert((inq[w] && queue[0] == w) || (!inq[w] && qlen == 0));
	assert(avail >= need[w]);
	avail = avail - need[w];
	held[w] = held[w] + need[w]
}

/* kprim_sem_put() */
inline put(w, k)
{
	assert(held[w] >= k);
	held[w] = held[w] - k;
	avail = avail + k
}

/*
 * kprim_async_post(): io_uring_cmd_complete_in_task(). With -DRING_EVFD
 * the ring (DEFER_TASKRUN) has the cancel eventfd registered, and adding
 * task work signals it synchronously (io_req_local_work_add() ->
 * io_eventfd_signal()): the caller does that through RING_EVFD_AFTER,
 * still holding whatever it holds (the queue's lock).
 */
inline post(r)
{
	TOUCH(r);
	assert(st[r] == ENDED);
	assert(!tw[r]);
	tw[r] = 1;
#ifdef RING_EVFD
	evp = 1;
#endif
}

/*
 * kprim_sem_grant(), run as the owner's grant pass and as @abandoned
 * (kprim_sem_abandoned()): grant from the head while it fits;
 * kprim_waitq_grant() takes the waiter off the queue and either wakes the
 * sleeper or ends the io_uring request (kprim_async_end_locked()).
 */
inline grant_pass()
{
	do
	:: qlen > 0 ->
		if
		:: need[queue[0]] <= avail ->
			gw = queue[0];
			take(gw);
			q_del(gw);
			if
			:: gw == W -> granted_w = 1
			:: else ->
				TOUCH(gw);
				st[gw] = ENDED;
				res[gw] = RES_OK;
				post(gw)
			fi
		:: else -> break
		fi
	:: else -> break
	od;
	gw = NONE
}

/* ---- kmod/async.c ------------------------------------------------------ */

/*
 * Atomicity. A spinlock section is one step: d_step { qlock == 0 ->
 * qlock = 1; ... } - nobody waits for anything while holding sem->wq.lock,
 * and nothing reads what the section writes without that lock except the
 * flags checked by assertions. The unlock is a step of its own wherever
 * the C code reaches it through the struct (spin_unlock(&a->q->lock)) or
 * touches the struct after a post, so that a completion running in
 * between (one without the lock barrier, say) is seen.
 */

/* kprim_async_stop_locked(): only a QUEUED request can be stopped. */
inline stop_locked(r, err, done_)
{
	TOUCH(r);
	if
	:: st[r] == QUEUED ->
		q_del(r);
		st[r] = ENDED;
		res[r] = err;
		done_ = 1
	:: else -> done_ = 0
	fi
}

/* A stop that does not look at the state (mutations only). */
inline stop_nocheck(r, err, done_)
{
	TOUCH(r);
	if
	:: inq[r] -> q_del(r)
	:: else
	fi;
	st[r] = ENDED;
	res[r] = err;
	done_ = 1
}

#ifdef RING_EVFD
#define RING_EVFD_AFTER	if :: evp -> evp = 0; signal_eventfd() :: else fi
#else
#define RING_EVFD_AFTER	skip
#endif

/*
 * kprim_async_cancel_fired(), called by kprim_cancel_wake() with the
 * eventfd's lock held: schedule_work(&a->cancel_work) (a no-op while it is
 * pending; CancelWork(r) runs it).
 *
 * -DMUT_SYNC_FIRE: the callback before 9d4f0e6, which ended the wait
 * itself under the eventfd's lock (a->q read first, then the lock; the
 * unlock goes through a->q again: a touch). Its post runs inside an
 * eventfd wake-up, where io_uring defers the signal (io_eventfd_do_signal()
 * from RCU): left out, the mutation deadlocks without it.
 */
inline cancel_fired(r)
{
#ifndef MUT_SYNC_FIRE
	atomic { TOUCH(r); fired[r] = 1; pending[r] = 1 }
#else
	atomic { TOUCH(r); fired[r] = 1 };
	d_step {
		qlock == 0 -> qlock = 1;
		stop_locked(r, RES_CANCELED, ok);
		if
		:: ok -> grant_pass(); post(r)
		:: else
		fi;
		ok = 0;
		evp = 0
	}
	atomic { TOUCH(r); unlock(qlock) }
#endif
}

/*
 * eventfd_signal(): under the eventfd's lock, kprim_cancel_wake() of
 * every hooked entry sets @fired and calls the fire callback.
 */
inline signal_eventfd()
{
	atomic { lock(evlock); ev_sig = 1; k = 0 };
	do
	:: k < R ->
		if
		:: hooked[k] -> cancel_fired(k)
		:: else
		fi;
		k++
	:: else -> break
	od;
	atomic { k = 0; unlock(evlock) }
}

/*
 * io_uring_cmd_done(): leaves io_uring's cancelable list (the flag is
 * cleared first, then the list entry under the ring lock, which the caller
 * may already hold), then posts the CQE. Checks: exactly one CQE, the
 * request is off the queue, a 0 CQE has its permits accounted to its fd,
 * an error CQE holds nothing.
 */
inline cmd_done(r, unlocked)
{
	cancelable[r] = 0;
	d_step {
		(!unlocked || ulock == 0);
		cqe[r]++;
		cqeval[r] = ret;
		assert(cqe[r] == 1);
		assert(!inq[r]);
		assert((ret == RES_OK && held[r] == need[r]) ||
		       (ret != RES_OK && held[r] == 0));
		ret = 0
	}
}

/*
 * kprim_async_complete(). @unlocked: the caller does not hold the ring's
 * lock (kprim_async_discard() from an io-wq issue).
 */
inline complete(r, unlocked)
{
#ifndef MUT_NO_BARRIER
	/*
	 * ret = a->result; spin_lock_irq(&a->q->lock); spin_unlock_irq(): the
	 * result is final once posted, so reading it at the barrier is the
	 * same.
	 */
	atomic { qlock == 0 -> TOUCH(r); ret = res[r] };
#else
	atomic { TOUCH(r); ret = res[r] };
#endif
	/* hrtimer_cancel(): dequeue, or wait for a running callback */
#ifndef MUT_NO_HRTIMER_WAIT
	atomic { !trun[r] -> TOUCH(r); armed[r] = 0 };
#else
	atomic { TOUCH(r); armed[r] = 0 };
#endif
#ifdef MUT_WORK_SYNC_FIRST
	/* cancel_work_sync() while the eventfd can still queue the work */
	atomic { !wrun[r] -> TOUCH(r); pending[r] = 0 };
#endif
	/* kprim_wait_ctx_destroy(): remove_wait_queue() */
	atomic { evlock == 0 -> TOUCH(r); hooked[r] = 0 };
#if !defined(MUT_NO_WORK_SYNC) && !defined(MUT_WORK_SYNC_FIRST)
	/*
	 * cancel_work_sync(): takes a pending run off the queue, waits for a
	 * running one. Unhooked, nothing can queue it again.
	 */
	atomic { !wrun[r] -> TOUCH(r); pending[r] = 0 };
#endif
#ifdef K61
	/* kprim_async_watch_stop() */
	atomic { wmutex == 0 -> TOUCH(r); watched[r] = 0 };
#endif
#ifndef MUT_FREE_FIRST
	cmd_done(r, unlocked);
	atomic { TOUCH(r); freed[r] = 1 }	/* kfree(a) */
#else
	/* the order before 6718c33 */
	atomic { TOUCH(r); freed[r] = 1 };
	cmd_done(r, unlocked)
#endif
}

/*
 * kprim_async_uring_cancel(), called by io_uring with its ring lock held.
 * a = pdu->async and &a->q->lock are read before the lock: a touch. For an
 * ENDED request the teardown kthread then sleeps a tick (still holding the
 * ring lock) so that the submitter can run the completion's task work:
 * time only, which the model does not have; the task work waits for the
 * ring lock either way.
 */
inline uring_cancel(r)
{
	TOUCH(r);
	d_step {
		qlock == 0 -> qlock = 1;
		TOUCH(r);
		if
		:: st[r] == NEW -> stop[r] = 1
		:: else
		fi;
#ifdef MUT_FCANCEL_NOSTATE
		/* completes whatever is not being issued, ended or not */
		if
		:: st[r] != NEW -> stop_nocheck(r, RES_CANCELED, ok)
		:: else -> ok = 0
		fi;
#else
		stop_locked(r, RES_CANCELED, ok);
#endif
		if
		:: ok -> grant_pass()
		:: else
		fi
	}
	RING_EVFD_AFTER;
	atomic { TOUCH(r); unlock(qlock) };
	if
	:: ok -> ok = 0; complete(r, 0)
	:: else
	fi
}

/* ---- the parties ----------------------------------------------------- */

#define LOCALS	byte k, ret; bool ok, evp

/*
 * The submitter of request r: kprim_obj_uring_cmd() ->
 * kprim_sem_acquire_async(), then io_uring's wait for the CQE, which runs
 * the task work (under the ring lock), then the user's release.
 */
proctype Issuer(byte r)
{
	LOCALS;
	bool iowq;

#ifdef IOWQ
	if
	:: iowq = 1
	:: iowq = 0
	fi;
#endif
	/* an inline issue runs under the ring lock */
	if
	:: !iowq -> lock(ulock)
	:: else
	fi;
	/* kprim_async_new(): kprim_wait_ctx_init_fire() -> vfs_poll() */
	atomic { evlock == 0 -> hooked[r] = 1; fired[r] = ev_sig };
#ifndef K61
	/* pdu->async = a; kprim_uring_cmd_mark_cancelable() */
	if
	:: iowq -> atomic { ulock == 0 -> cancelable[r] = 1 }
	:: else -> cancelable[r] = 1
	fi;
#else
	/* kprim_async_watch_start() */
	atomic { wmutex == 0 -> watched[r] = 1 };
#endif
	/*
	 * kprim_sem_try_acquire(), else kprim_async_queue_locked(); the
	 * unlock is through sem->wq.lock, no touch.
	 */
	d_step {
		qlock == 0;
		if
#ifndef MUT_BARGE
		:: qlen == 0 && avail >= need[r] ->
#else
		/* the fast path ignores the queue */
		:: avail >= need[r] ->
#endif
			take(r);
			ret = RES_OK
		:: else ->
			if
			:: fired[r] -> ret = RES_CANCELED
			:: else ->
				if
				:: stop[r] -> ret = RES_CANCELED
				:: else ->
					q_add(r);
					st[r] = QUEUED;
					/* hrtimer_start() unless KTIME_MAX */
					armed[r] = (r < NTIMER);
					ret = RES_QUEUED
				fi
			fi
		fi
	}
	/* kprim_async_discard() */
	if
	:: ret != RES_QUEUED ->
		res[r] = ret;
		complete(r, iowq)
	:: else -> ret = 0
	fi;
	if
	:: !iowq -> unlock(ulock)
	:: else -> iowq = 0
	fi;

	/* waiting for the CQE runs the task work (io_handle_tw_list()) */
	do
	:: atomic { tw[r] && ulock == 0 -> ulock = 1; tw[r] = 0 };
		complete(r, 0);		/* kprim_async_task_work() */
		unlock(ulock)
	:: cqe[r] > 0 -> break
	od;

	/* the user gives back what the CQE granted: KPRIM_IOC_SEM_RELEASE */
	if
	:: cqeval[r] == RES_OK ->
		d_step {
			qlock == 0 -> qlock = 1;
			put(r, need[r]);
			grant_pass()
		}
		RING_EVFD_AFTER;
		unlock(qlock)
	:: else
	fi
}

/* r's hrtimer: kprim_async_timeout(), at most once (armed once). */
proctype Timer(byte r)
{
	LOCALS;

	if
	:: atomic { armed[r] -> armed[r] = 0; trun[r] = 1; TOUCH(r) };
		d_step {
			qlock == 0 -> qlock = 1;
#ifdef MUT_TIMER_NOSTATE
			stop_nocheck(r, RES_TIMEDOUT, ok);
#else
			stop_locked(r, RES_TIMEDOUT, ok);
#endif
			if
			:: ok -> grant_pass(); post(r)
			:: else
			fi;
			ok = 0
		}
		RING_EVFD_AFTER;
		atomic { TOUCH(r); unlock(qlock) };
		trun[r] = 0
	:: freed[r] -> skip
	fi
}

/*
 * r's cancel_work: kprim_async_cancel_work(), run by a kworker at any time
 * after schedule_work(). A run clears "pending" as it starts, so the
 * eventfd can queue it again meanwhile; here that start and the queue's
 * lock (through a->q: a touch, in stop_locked()) are one step: a run that
 * has started but waits for the lock only makes cancel_work_sync() wait,
 * and its caller holds nothing that a holder of the queue's lock waits
 * for. The unlock goes through a->q again, and the work function returns.
 * Done once the struct is freed: nobody may queue the work then (checked:
 * a run still pending then touches the freed struct).
 */
proctype CancelWork(byte r)
{
	LOCALS;

	do
	:: d_step {
			pending[r] && qlock == 0 ->
			pending[r] = 0;
			wrun[r] = 1;
			qlock = 1;
			stop_locked(r, RES_CANCELED, ok);
			if
			:: ok -> grant_pass(); post(r)
			:: else
			fi;
			ok = 0
		}
		RING_EVFD_AFTER;
		atomic { TOUCH(r); unlock(qlock); wrun[r] = 0 }
	:: freed[r] -> break
	od
}

/* A write to the cancel eventfd (or none). */
proctype Eventfd()
{
	LOCALS;

	/*
	 * Signalling or not: a write after everything ended does nothing, so
	 * "never" needs no branch of its own.
	 */
	signal_eventfd()
}

/* kprim_async_cancel_cmd(): for one request's user_data or for all. */
proctype WaitCancel()
{
	LOCALS;
	byte r, target = NONE, ended = NONE;

	/* (sent after everything ended it is a no-op: "never" is covered) */
	if
	:: target = ALL
	:: target = 0
	fi;
	d_step {
		qlock == 0 -> qlock = 1;
		r = 0;
		do
		:: r < R ->
			if
			:: inq[r] && (target == ALL || target == r) ->
				stop_locked(r, RES_CANCELED, ok);
				if
				:: ok -> post(r); ended = r
				:: else
				fi
			:: else
			fi;
			r++
		:: else -> break
		od;
		r = 0;
		ok = 0;
		target = NONE
	}
	/* ended->abandoned(ended->owner), after its post */
	if
	:: ended != NONE ->
		d_step { TOUCH(ended); ended = NONE; grant_pass() }
	:: else
	fi;
	RING_EVFD_AFTER;
	unlock(qlock)
}

#ifndef K61
/*
 * io_uring_try_cancel_uring_cmd() (6.12): the ring's teardown (its last
 * fd closed, as at process exit) or an exec of the submitter; the exit of
 * the submitting thread alone does not cancel uring_cmds.
 */
proctype UringCancel()
{
	LOCALS;
	byte r, passes;

	do
	:: passes < NPASS ->
		lock(ulock);
		r = 0;
		do
		:: r < R ->
			if
			:: cancelable[r] -> uring_cancel(r)
			:: else
			fi;
			r++
		:: else -> break
		od;
		atomic { r = 0; unlock(ulock); passes++ }
	:: break
	od
}
#else
/*
 * kprim_async_watch_fn() (6.1): ends the requests it finds orphaned
 * (kprim_uring_cmd_orphaned(): a dying ring or an exec'ing submitter).
 */
proctype Watcher()
{
	LOCALS;
	byte r, passes;

	do
	:: passes < NPASS ->
		lock(wmutex);
		r = 0;
		do
		:: r < R ->
			if
			:: watched[r] ->
				if
				:: skip		/* not orphaned */
				:: d_step {
						qlock == 0 -> qlock = 1;
						stop_locked(r, RES_CANCELED, ok);
						if
						:: ok -> grant_pass(); post(r)
						:: else
						fi;
						ok = 0
					}
					RING_EVFD_AFTER;
					atomic { TOUCH(r); unlock(qlock) }
				fi
			:: else
			fi;
			r++
		:: else -> break
		od;
		atomic { r = 0; unlock(wmutex); passes++ }
	:: break
	od
}
#endif

/*
 * The ioctl acquire: kprim_sem_acquire() -> kprim_sem_enqueue() ->
 * kprim_wait_for_grant(): granted, or gives up (timeout, signal, cancel)
 * and leaves the queue unless the grant came first; then releases.
 */
proctype Waiter()
{
	LOCALS;
	bool got;

	d_step {
		qlock == 0;
		if
		:: qlen == 0 && avail >= need[W] -> take(W); got = 1
		:: else -> q_add(W)
		fi
	}
	if
	:: got
	:: !got ->
		if
		:: granted_w -> got = 1
		:: skip ->
			d_step {
				qlock == 0 -> qlock = 1;
				if
				:: granted_w -> got = 1
				:: else -> q_del(W); grant_pass()
				fi
			}
			RING_EVFD_AFTER;
			unlock(qlock)
		fi
	fi;
	assert(got == (held[W] == need[W]));
	if
	:: got ->
		d_step {
			qlock == 0 -> qlock = 1;
			put(W, need[W]);
			grant_pass();
			got = 0
		}
		RING_EVFD_AFTER;
		unlock(qlock)
	:: else
	fi
}

/* The fd holding all P permits gives them back, one at a time. */
proctype Holder()
{
	LOCALS;
	byte i;

	do
	:: i < P ->
		d_step {
			qlock == 0 -> qlock = 1;
			put(HID, 1);
			grant_pass()
		}
		RING_EVFD_AFTER;
		atomic { unlock(qlock); i++ }
	:: else -> break
	od
}

#define HELD	(held[0] + held[1] + (R > 2 -> held[2] : 0) + held[W] + held[HID])

/* Permits are conserved: in every state (updates are under the lock). */
proctype Permits()
{
end:
	atomic { !(avail + HELD == P) -> assert(false) }
}

init {
	byte r;

	atomic {
		r = 0;
		do
		:: r < R ->
			need[r] = 1;
			res[r] = NONE;
			cqeval[r] = NONE;
			r++
		:: else -> break
		od;
		r = 0;
		do
		:: r <= R -> queue[r] = NONE; r++
		:: else -> break
		od;
#ifdef NEED0
		need[0] = NEED0;
#endif
		need[W] = 1;
		avail = 0;
		held[HID] = P;
		run Permits();
		r = 0;
		do
		:: r < R -> run Issuer(r);
			if
			:: r < NTIMER -> run Timer(r)
			:: else
			fi;
#if (!defined(NO_EVENTFD) || defined(RING_EVFD)) && !defined(MUT_SYNC_FIRE)
			run CancelWork(r);
#endif
			r++
		:: else -> break
		od;
		run Holder();
#ifndef NO_WAITER
		run Waiter();
#endif
#ifndef NO_EVENTFD
		run Eventfd();
#endif
#ifndef NO_WAITCANCEL
		run WaitCancel();
#endif
#ifndef K61
#ifndef NO_UCANCEL
		run UringCancel();
#endif
#else
		run Watcher();
#endif
		r = 0
	}

	/* everybody is done (Permits, init): the end state */
	_nr_pr == 2;
	r = 0;
	do
	:: r < R ->
		assert(cqe[r] == 1 && freed[r] && !tw[r] && !inq[r]);
		assert(!armed[r] && !trun[r] && !hooked[r]);
		assert(!pending[r] && !wrun[r]);
		assert(!cancelable[r] && !watched[r]);
		r++
	:: else -> break
	od;
	assert(qlen == 0 && avail == P && HELD == 0);
	assert(qlock == 0 && ulock == 0 && evlock == 0 && wmutex == 0)
}
