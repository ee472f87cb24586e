/*
 * SPDX-License-Identifier: GPL-2.0
 *
 * models/limiter_page.pml - the limiter's shared state page
 * (KPRIM_FEAT_LIMITER_PAGE, struct kprim_limiter_page in kmod/uapi/kprim.h),
 * checked exhaustively with spin (models/check.sh).
 *
 * The page holds the bucket: {fill, stamp}, stamp = LAST (the time fill
 * was computed for) | GEN (bumped by the kernel when the parameters change)
 * | SLOW, plus copies of the parameters. Userspace takes tokens with one
 * 16-byte compare-and-swap of {fill, stamp}; the kernel does every other
 * operation under its lock (lim->q.lock), bracketed by
 *
 *   ENTER  kprim_limiter_page_enter(): fetch_or(SLOW) on stamp (a full
 *          barrier: from here on no CAS of an honest taker can succeed,
 *          since every one compares against a stamp without SLOW), read
 *          the clock, load fill, clamp: fill_k = min(fill, cap),
 *          last_k = min(LAST, now_k);
 *   LEAVE  kprim_limiter_page_leave(): store fill_k, then store-release
 *          stamp = last_k | GEN | (SLOW iff a taker is queued).
 *
 * Between the two the kernel works on its copy with the bucket arithmetic
 * of kmod/bucket.h (kprim_bucket_refill(), kprim_bucket_take(),
 * kprim_bucket_wait_ns()) and its own parameters.
 *
 * What a process here is:
 *   User(u)    a taker in userspace: the page fast path of
 *              kprim_limiter_try_take() / kprim_limiter_take() in
 *              libuser/limiter.c (load stamp; if SLOW, the ioctl; load
 *              fill and the rate copy; read the clock; refill; if short,
 *              the ioctl; CAS {fill, stamp}; a failed CAS is retried
 *              TRIES times in all, then the ioctl). The ioctl is
 *              KPRIM_IOC_LIMITER_TAKE with timeout 0:
 *              kprim_limiter_take() -> kprim_limiter_try_locked(): fails
 *              (-EAGAIN) when a taker is queued or the tokens are short.
 *   Waiter(w)  a blocking KPRIM_IOC_LIMITER_TAKE: kprim_limiter_take_wait()
 *              (try, else queue at the FIFO tail, and a grant pass when it
 *              is the head), then kprim_wait_for_grant(): granted, or
 *              gives up (timeout, signal, cancel: off the queue, then
 *              kprim_limiter_abandoned() -> a grant pass). A patient
 *              waiter (no timeout) never gives up: it must be granted.
 *   Timer      lim->timer: kprim_limiter_timer() -> kprim_limiter_grant(),
 *              armed by a grant pass that finds the head short, for the
 *              time kprim_bucket_wait_ns() says.
 *   Setter     KPRIM_IOC_LIMITER_SET of the rate (-DSET):
 *              kprim_limiter_set() -> kprim_bucket_set() (refill with the
 *              old rate up to now, then the new one), new rate copy in
 *              the page, GEN bumped, then a grant pass.
 *   Garbage    (-DGARBAGE) any process that maps the page and writes
 *              nonsense into it at any time: fill above cap or 0, LAST in
 *              the future (a little or far) or in the past, SLOW cleared
 *              (also while takers are queued) or set, GEN flipped.
 *   Clock      CLOCK_MONOTONIC (ktime_get_ns() and the library's
 *              clock_gettime()): one global clock that may advance between
 *              any two steps, up to TMAX, and beyond only while the timer
 *              is armed for a later time (time passes until it fires).
 *   Conserve   a monitor of the token budget (not with -DGARBAGE).
 *
 * Units: one token costs PERIOD fill units (period_ns), every time unit
 * adds the rate in fill units, cap = burst * PERIOD. All kernel state
 * (queue, timer, rate, GEN, and the scratch of ENTER..LEAVE) is guarded by
 * the kernel lock qlock = lim->q.lock.
 *
 * Checked:
 *  (a) no barging: a userspace CAS never succeeds while a taker is queued
 *      (asserted in the same atomic step as the successful CAS; not with
 *      -DGARBAGE, where a cleared SLOW lets takers barge: only fairness);
 *  (b) no lost update: between ENTER and LEAVE honest takers do not change
 *      the page (asserted at LEAVE: the page still holds what ENTER read,
 *      with the SLOW ENTER set);
 *  (c) conservation: the fill units handed out (ghost "given": users'
 *      CASes, the kernel's takes and grants) never exceed the initial fill
 *      plus rate * elapsed time ("supply", following SET), and outside the
 *      kernel lock given + fill <= INITF + supply at the time LAST; fill
 *      never exceeds cap, nor wraps; an honest page never needs the
 *      kernel's clamp (LAST <= now_k, fill <= cap at ENTER);
 *  (d) every taker ends: a patient waiter is always granted (the end state
 *      is valid only when all takers are done and the queue is empty, and
 *      without garbage SLOW is clear then), no deadlock; in cycles mode,
 *      no cycle;
 *  (e) with -DGARBAGE: the kernel's bucket arithmetic only ever sees
 *      fill_k <= cap and last_k <= now_k (kprim_bucket_refill()'s
 *      preconditions), it stores nothing else, the queue still drains
 *      and patient waiters are still granted.
 *
 * Configurations (-D flags); models/check.sh runs each "@check" line:
 *
 * @check pass safety : 2 users, a waiter for the whole bucket: (a)-(d)
 * @check pass safety -DNW=2 -DWN=1 : 2 users, 2 waiters for a token each: FIFO grants, a waiter leaving
 * @check pass safety -DSET : a SET raising the rate (1 -> 2) racing the takers
 * @check pass safety -DSET -DRATE0=2 -DRATE1=1 -DCAP=3 -DWN=3 : a SET lowering the rate (2 -> 1)
 * @check pass safety -DGARBAGE -DNGARB=1 : 2 users, a waiter and one garbage write of any kind: (e)
 * @check pass safety -DGARBAGE -DNU=1 : a user, a waiter and two garbage writes of any kind: (e)
 * @check pass safety -DGARBAGE -DNU=1 -DNW=2 -DWN=1 -DNGARB=1 : a user, 2 waiters and one garbage write: (e)
 * @check pass cycles : no cycles: every run ends
 * @check fail safety -DMUT_CLEAR_SLOW_WITH_WAITERS : LEAVE clearing SLOW with takers queued: a user barges (a)
 * @check fail safety -DMUT_NO_FETCH_OR : ENTER with plain loads: a user's CAS is lost (c, and b)
 * @check fail safety -DMUT_NO_CLAMP -DGARBAGE -DNU=1 : ENTER without the clamps: the kernel works on garbage (e)
 * @check fail safety -DMUT_CLOCK_FIRST : ENTER reading the clock before the fetch_or: a user's LAST is after now_k
 * @check fail safety -DSET -DRATE0=2 -DRATE1=1 -DCAP=3 -DWN=3 -DMUT_NO_GEN : SET without the GEN bump: a CAS computed with the old rate succeeds (c)
 * @check fail safety -DMUT_NO_ARM : a grant pass not arming the timer: a patient waiter is stuck (d)
 *
 * Two users, two waiters and two garbage writes in one search take more
 * than 34 million states (2 GB): too big; two users and two garbage writes
 * of the four kinds (e) names (-DGARBAGE -DGARBAGE_FEW) pass in 13 million
 * (20 s, 700 MB), left out of make check for time. The cycles search with
 * two waiters (-DNW=2 -DWN=1) passes too, in 17 s.
 *
 * Other flags: NU (users, 2), UN (tokens a user takes, 1), NW (waiters, 1),
 * WN (tokens a waiter takes, CAP), CAP (bucket size in fill units, 2),
 * PERIOD (fill units per token, 1), INITF (initial fill, CAP), RATE0
 * (rate, 1), RATE1 (the rate SET sets, 2), TMAX (3), TRIES (CAS tries of
 * the fast path, 2), NGARB (garbage writes, 2), GARBAGE_FEW (garbage
 * writes only of fill above cap, fill 0, LAST far in the future and SLOW
 * cleared; else also LAST a little in the future or in the past, SLOW set
 * and GEN flipped).
 *
 * Not modelled: GEN wrapping around (31 bumps between a taker's load and
 * its CAS: an ABA the 5 bits make unlikely, not impossible), a SET of the
 * burst (cap), io_uring waits (the same FIFO and grant pass as the ioctl
 * waiter), pollers (timer armed with an empty queue), and the page's
 * admitted counter, which the takers add to after the CAS.
 */

#ifndef NU
#define NU	2		/* userspace takers */
#endif
#ifndef UN
#define UN	1		/* tokens per user take */
#endif
#ifndef NW
#define NW	1		/* blocking takers */
#endif
#ifndef CAP
#define CAP	2		/* cap = burst * period_ns, fill units */
#endif
#ifndef PERIOD
#define PERIOD	1		/* period_ns: fill units per token */
#endif
#ifndef WN
#define WN	(CAP / PERIOD)	/* tokens per waiter take */
#endif
#ifndef INITF
#define INITF	CAP		/* initial fill (KPRIM_OPEN_INITIAL) */
#endif
#ifndef RATE0
#define RATE0	1		/* rate: fill units per time unit */
#endif
#ifndef RATE1
#define RATE1	2		/* the rate SET sets */
#endif
#ifndef TMAX
#define TMAX	3		/* the clock runs freely up to here */
#endif
#ifndef TRIES
#define TRIES	2		/* CAS tries of the fast path */
#endif
#ifndef NGARB
#define NGARB	2		/* garbage writes */
#endif

#define TLIM	16		/* the clock never gets here (asserted) */
#define FAR	200		/* a LAST far in the future */
#define NGEN	2		/* GEN values (5 bits in C; one SET here) */
#define NONE	255

#define MIN(a, b)	((a) < (b) -> (a) : (b))

/* ---- the page: struct kprim_limiter_page ---------------------------- */

byte pfill = INITF;		/* page->fill */
byte plast;			/* page->stamp & KPRIM_LIMITER_PAGE_LAST */
byte pgen;			/* page->stamp & KPRIM_LIMITER_PAGE_GEN */
bit pslow;			/* page->stamp & KPRIM_LIMITER_PAGE_SLOW */
byte prate = RATE0;		/* page->rate (a copy) */

byte now;			/* CLOCK_MONOTONIC */

/* ---- the kernel: struct kprim_limiter, all under q.lock ------------- */

bit qlock;			/* lim->q.lock */
byte krate = RATE0;		/* lim->bucket.rate */
byte kgen;			/* the kernel's GEN */
byte queue[NW];			/* lim->q.waiters, oldest first */
byte qlen;			/* (a)'s ghost counter of queued waiters */
bool granted[NW];		/* w->granted */
bool armed;			/* lim->timer enqueued */
byte due;			/* its expiry */
bool trun;			/* its callback is running */

/*
 * The locals of the one kernel operation that holds qlock, between
 * ENTER and LEAVE (zero outside): what ENTER read (s_last, s_gen, f_raw)
 * and left (e_slow), its clock read now_k and its bucket copy
 * (fill_k, last_k).
 */
byte s_last, s_gen, f_raw, now_k, fill_k, last_k;
bit e_slow;
bool k_ok;			/* scratch, only inside d_step; 0 outside */
byte k_w;			/* scratch, only inside d_step; 0 outside */
byte k_i;			/* scratch, only inside d_step; 0 outside */

/* ---- ghosts ---------------------------------------------------------- */

byte given;			/* fill units handed out */
byte supply;			/* fill units the rate added up to now */
byte sup[TLIM];			/* supply at time t */
byte grate = RATE0;		/* the rate in effect */

/* ---- kmod/wait.c: the FIFO ------------------------------------------ */

/* kprim_waitq_add() */
inline q_add(w)
{
	queue[qlen] = w;
	qlen++
}

/* kprim_waitq_del() */
inline q_del(w)
{
	k_i = 0;
	do
	:: queue[k_i] != w -> k_i++
	:: else -> break
	od;
	do
	:: k_i + 1 < qlen -> queue[k_i] = queue[k_i + 1]; k_i++
	:: else -> break
	od;
	qlen--;
	queue[qlen] = NONE;
	k_i = 0
}

/* ---- kmod/bucket.h on the kernel's copy ------------------------------ */

/*
 * kprim_bucket_refill(). Its preconditions, the kernel's invariant (e):
 * fill <= cap (else "cap - fill" wraps and fill grows past cap, or wraps
 * itself) and last <= now (else the bucket stays frozen until the clock
 * reaches LAST: up to 2^58 ns for a garbage LAST).
 */
inline b_refill()
{
	assert(fill_k <= CAP && last_k <= now_k);
	if
	:: now_k > last_k ->
		fill_k = MIN(CAP, fill_k + (now_k - last_k) * krate);
		last_k = now_k
	:: else
	fi
}

/* kprim_bucket_take(): k_ok = the n tokens were taken */
inline b_take(n)
{
	b_refill();
	if
	:: n * PERIOD <= fill_k -> fill_k = fill_k - n * PERIOD; k_ok = 1
	:: else -> k_ok = 0
	fi
}

/* ---- kmod/limiter.c -------------------------------------------------- */

/*
 * A kernel operation is four steps:
 *
 *   enter_lock()   spin_lock_irq(&lim->q.lock), then the fetch_or of
 *                  kprim_limiter_page_enter();
 *   d_step { enter_read(); the operation }
 *                  the rest of kprim_limiter_page_enter() (clock read,
 *                  fill load, clamps), then the bucket arithmetic, queue
 *                  and timer work on kernel-private state;
 *   leave_fill()   kprim_limiter_page_leave()'s store of fill;
 *   leave_stamp()  its store-release of stamp, then the unlock.
 *
 * Taking the lock and releasing it touch nothing but the lock, which no
 * step outside the kernel reads but the monitor (for which "qlock" only
 * weakens its check), so each is one step with its neighbour. The clock
 * read and the fill load read two variables no single step writes both of,
 * and what follows them up to the fill store writes kernel-private state
 * only (queue, timer, granted, ghosts): one step too. Every step where
 * another process can see or change the page is its own step.
 */

/* lock, then atomic64_fetch_or(SLOW, &page->stamp) */
inline enter_lock()
{
#ifndef MUT_CLOCK_FIRST
#ifndef MUT_NO_FETCH_OR
	atomic {
		qlock == 0 -> qlock = 1;
		s_last = plast; s_gen = pgen; pslow = 1; e_slow = 1
	}
#else
	/* mutation: a plain load of the stamp */
	atomic {
		qlock == 0 -> qlock = 1;
		s_last = plast; s_gen = pgen; e_slow = pslow
	}
#endif
#else
	/* mutation: the clock read before the fetch_or */
	atomic { qlock == 0 -> qlock = 1; now_k = now };
	atomic { s_last = plast; s_gen = pgen; pslow = 1; e_slow = 1 }
#endif
}

/*
 * The rest of kprim_limiter_page_enter(), inside a d_step: kprim_now(),
 * READ_ONCE(page->fill), the clamps. @set: kprim_limiter_set(): the ghost
 * rate switches at its clock read (kprim_bucket_set() refills with the
 * old rate up to now_k, the new rate counts from there).
 */
inline enter_read(set)
{
#ifndef MUT_CLOCK_FIRST
	now_k = now;
#endif
	if
	:: set -> grate = RATE1
	:: else
	fi;
	f_raw = pfill;
#ifndef GARBAGE
	/*
	 * Honest takers never need the clamps: a taker's clock read precedes
	 * its CAS, which precedes the fetch_or, which precedes now_k.
	 */
	assert(f_raw <= CAP && s_last <= now_k);
#endif
#ifndef MUT_NO_CLAMP
	fill_k = MIN(f_raw, CAP);
	last_k = MIN(s_last, now_k)
#else
	/* mutation: no clamps */
	fill_k = f_raw;
	last_k = s_last
#endif
}

/* kprim_limiter_page_leave(): WRITE_ONCE(page->fill, fill) */
inline leave_fill()
{
	atomic {
#ifndef GARBAGE
		/* (b): nobody changed the page since ENTER */
		assert(pfill == f_raw && plast == s_last && pgen == s_gen &&
		       pslow == e_slow);
#endif
		/* (e): the kernel stores no garbage */
		assert(fill_k <= CAP && last_k <= now_k);
		pfill = fill_k
	}
}

/*
 * kprim_limiter_page_leave(): smp_store_release(&page->stamp,
 * last | gen | slow), then the unlock.
 */
inline leave_stamp()
{
	d_step {
		plast = last_k;
		pgen = kgen;
#ifndef MUT_CLEAR_SLOW_WITH_WAITERS
		pslow = (qlen > 0);
#else
		/* mutation: SLOW cleared even with takers queued */
		pslow = 0;
#endif
		s_last = 0;
		s_gen = 0;
		e_slow = 0;
		f_raw = 0;
		now_k = 0;
		fill_k = 0;
		last_k = 0;
		qlock = 0
	}
}

/*
 * kprim_limiter_grant(): grant from the head while the bucket allows,
 * else arm the timer for the head (kprim_limiter_arm() with
 * kprim_bucket_wait_ns(): rounded up, exact).
 */
inline grant_pass()
{
	do
	:: qlen > 0 ->
		k_w = queue[0];
		b_take(WN);
		if
		:: k_ok ->
			given = given + WN * PERIOD;
			q_del(k_w);
			granted[k_w] = 1	/* kprim_waitq_grant() */
		:: else ->
#ifndef MUT_NO_ARM
			armed = 1;
			due = now_k + (WN * PERIOD - fill_k + krate - 1) / krate;
#endif
			break
		fi
	:: else -> break
	od;
	k_w = 0;
	k_ok = 0
}

/*
 * KPRIM_IOC_LIMITER_TAKE with timeout 0: kprim_limiter_take() ->
 * kprim_limiter_try_locked(): -EAGAIN (throttled) when a taker is queued
 * or the tokens are short.
 */
inline try_take()
{
	enter_lock();
	d_step {
		enter_read(0);
		if
		:: qlen == 0 -> b_take(UN)
		:: else -> k_ok = 0
		fi;
		if
		:: k_ok -> given = given + UN * PERIOD
		:: else
		fi;
		k_ok = 0
	}
	leave_fill();
	leave_stamp()
}

/* ---- the processes -------------------------------------------------- */

/*
 * libuser/limiter.c: the page fast path, then the ioctl. Steps that only
 * compute on locals are merged into the shared access before them.
 */
proctype User(byte u)
{
	byte sl, sg, f0, r, t, f, nl, tries;
	bool done;

	do
	:: tries < TRIES ->
		/* s = __atomic_load_n(&page->stamp, __ATOMIC_ACQUIRE) */
		atomic {
			sl = plast;
			sg = pgen;
			if
			:: pslow -> break	/* SLOW: the ioctl */
			:: else
			fi
		}
		/* fill and the parameters */
		f0 = pfill;
#ifdef SET
		r = prate;
#else
		r = RATE0;		/* no SET: the copy never changes */
#endif
		/*
		 * clock_gettime(CLOCK_MONOTONIC); the refill:
		 * f = min(cap, f + (now - LAST) * rate), LAST = now
		 */
		atomic {
			t = now;
			f = f0;
			nl = sl;
			if
			:: t > sl -> f = MIN(CAP, f0 + (t - sl) * r); nl = t
			:: else
			fi;
			if
			:: f < UN * PERIOD -> break	/* short: the ioctl */
			:: else
			fi
		}
		/*
		 * __atomic_compare_exchange() of the 16 bytes {fill, stamp}:
		 * {f0, s} -> {f - n * period, LAST | (s & GEN)}; a failure
		 * tries again (TRIES in all), then the ioctl.
		 */
		atomic {
			if
			:: pfill == f0 && plast == sl && pgen == sg && !pslow ->
#ifndef GARBAGE
				assert(qlen == 0);	/* (a) */
#endif
				pfill = f - UN * PERIOD;
				plast = nl;
				given = given + UN * PERIOD;
				done = 1
			:: else -> tries++
			fi;
			sl = 0; sg = 0; f0 = 0; r = 0; t = 0; f = 0; nl = 0;
			if
			:: done -> break
			:: else
			fi
		}
	:: else -> break
	od;
	atomic { sl = 0; sg = 0; f0 = 0; r = 0; t = 0; f = 0; nl = 0; tries = 0 };
	if
	:: !done -> try_take()
	:: else
	fi
}

/* A blocking take: kprim_limiter_take_wait(), kprim_wait_for_grant() */
proctype Waiter(byte w)
{
	bool patient, got;

	if
	:: patient = 1		/* KPRIM_TIMEOUT_INFINITE, no signal */
	:: patient = 0
	fi;
	enter_lock();
	d_step {
		enter_read(0);
		if
		:: qlen == 0 -> b_take(WN)
		:: else -> k_ok = 0
		fi;
		if
		:: k_ok -> given = given + WN * PERIOD; got = 1
		:: else ->
			q_add(w);
			if
			:: qlen == 1 -> grant_pass()	/* queued_first */
			:: else
			fi
		fi;
		k_ok = 0
	}
	leave_fill();
	leave_stamp();

	if
	:: got
	:: granted[w] -> got = 1
	:: !got && !patient ->
		/*
		 * Timeout, signal or cancel: under the lock, keep a grant
		 * that came first, else leave the queue (kprim_waitq_del())
		 * and kprim_limiter_abandoned() -> kprim_limiter_grant().
		 */
		atomic {
			qlock == 0 -> qlock = 1;
			if
			:: granted[w] -> got = 1; qlock = 0
			:: else ->
				q_del(w);
#ifndef MUT_NO_FETCH_OR
				s_last = plast; s_gen = pgen; pslow = 1; e_slow = 1
#else
				s_last = plast; s_gen = pgen; e_slow = pslow
#endif
			fi
		}
		if
		:: got
		:: else ->
#ifdef MUT_CLOCK_FIRST
			now_k = now;	/* (here after the fetch_or still) */
#endif
			d_step { enter_read(0); grant_pass() };
			leave_fill();
			leave_stamp()
		fi
	fi;
	assert(!patient || got)
}

/* lim->timer: kprim_limiter_timer() */
proctype Timer()
{
end:
	do
	:: atomic { armed && now >= due -> armed = 0; due = 0; trun = 1 };
		enter_lock();
		d_step { enter_read(0); grant_pass() };
		leave_fill();
		atomic { leave_stamp(); trun = 0 }
	od
}

#ifdef SET
/*
 * KPRIM_IOC_LIMITER_SET of the rate: kprim_limiter_set() ->
 * kprim_bucket_set() (refill with the old rate, then the new one), GEN
 * bumped; the page's rate copy; a grant pass under the new rate.
 */
proctype Setter()
{
	enter_lock();
	d_step {
		enter_read(1);
		b_refill();
		krate = RATE1;
#ifndef MUT_NO_GEN
		kgen = (kgen + 1) % NGEN
#else
		skip	/* mutation: GEN not bumped */
#endif
	}
	prate = RATE1;		/* WRITE_ONCE(page->rate, rate) */
	d_step { grant_pass() };
	leave_fill();
	leave_stamp()
}
#endif

#ifdef GARBAGE
/* Any process with the page mapped, writing nonsense at any time. */
proctype Garbage()
{
	byte i;

	do
	:: i < NGARB ->
		atomic {
			if
			:: pfill = CAP + 3	/* fill above cap */
			:: pfill = 0		/* fill stolen */
			:: plast = FAR		/* LAST in the future */
			:: pslow = 0		/* SLOW cleared, waiters or not */
#ifndef GARBAGE_FEW
			:: plast = now + 2	/* LAST a little in the future */
			:: plast = 0		/* LAST in the past */
			:: pslow = 1
			:: pgen = (pgen + 1) % NGEN
#endif
			fi;
			i++
		}
	:: break
	od;
	i = 0
}
#endif

/*
 * CLOCK_MONOTONIC: free up to TMAX, beyond only while the timer is armed
 * for later (so a patient waiter always gets its time).
 */
proctype Clock()
{
end:
	do
	:: atomic {
			(now < TMAX || (armed && now < due)) ->
			now++;
			assert(now < TLIM);
			supply = supply + grate;
			sup[now] = supply
		}
	od
}

#ifndef GARBAGE
/* (c) in every state */
proctype Conserve()
{
end:
	atomic {
		!(given <= INITF + supply && pfill <= CAP && plast <= now &&
		  (qlock || given + pfill <= INITF + sup[plast])) ->
		assert(false)
	}
}
#define NFIXED	4		/* init, Clock, Timer, Conserve */
#else
#define NFIXED	3		/* init, Clock, Timer */
#endif

init {
	byte i;

	atomic {
		i = 0;
		do
		:: i < NW -> queue[i] = NONE; i++
		:: else -> break
		od;
		run Clock();
		run Timer();
#ifndef GARBAGE
		run Conserve();
#endif
		i = 0;
		do
		:: i < NU -> run User(i); i++
		:: else -> break
		od;
		i = 0;
		do
		:: i < NW -> run Waiter(i); i++
		:: else -> break
		od;
#ifdef SET
		run Setter();
#endif
#ifdef GARBAGE
		run Garbage();
#endif
		i = 0
	}

	/* every taker is done, no kernel operation runs: the end state */
	atomic {
		_nr_pr == NFIXED && qlock == 0 && !trun ->
		assert(qlen == 0);
#ifndef GARBAGE
		/* SLOW is not left set once the queue is empty */
		assert(!pslow && pfill <= CAP && plast <= now)
#endif
	}
}
