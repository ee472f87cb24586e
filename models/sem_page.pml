/*
 * SPDX-License-Identifier: GPL-2.0
 *
 * models/sem_page.pml - a userspace fast path for the counting semaphore
 * through a per-fd "lending slot" (issue 12; the protocol is described in
 * docs/sem-fast-path.md), checked exhaustively with spin
 * (models/check.sh). Implemented in kmod/sem.c and libuser/sem_slot.h
 * with another packing of the same word (docs/sem-fast-path.md, "As
 * built").
 *
 * The protocol in one paragraph. An fd that mmap()s its semaphore gets a
 * slot page of its own (per open file: shared by the processes that share
 * the fd after fork, never by two fds). The slot holds one 64-bit word,
 * {LIMIT (high 32 bits), INUSE (low 32 bits)}. LIMIT 0 means the slot is
 * not lent to ("recalled"); then everything goes through the ioctls. While
 * it is lent to, the fd's kernel-side @held is LIMIT and INUSE is what the
 * fd's users have of it, so closing the fd (death included) gives back
 * exactly @held, with nothing to resolve: no pending record. Userspace
 * acquires n by CAS(word, {L, U}, {L, U + n}) when L != 0 and U + n <= L,
 * and releases n by CAS(word, {L, U}, {L, U - n}) when L != 0 (U < n is
 * -EINVAL); otherwise it uses the acquire or release ioctl. The kernel,
 * under sem->wq.lock: recalls a lent slot by {L, U} = xchg(word, 0),
 * keeping min(U, @held) of @held (the rest, L - U, was free); recalls every
 * lent slot before an acquire fails or queues and before a resize; first
 * recalls the caller's own slot in every acquire and release ioctl; lends
 * (xchg(word, {@held + extra, @held})) only when the FIFO is empty, no
 * poller is on the semaphore and it is not shrunk below what is held
 * (sem->held <= sem->permits); it reads back only a slot it lent.
 *
 * What a process here is:
 *   User(p)     process p on slot fd p (with -DFORK also process NF+1 on
 *               fd 0, which with -DRAWSHARER uses the ioctls only): NOPS
 *               acquire/release pairs of UN permits, through the slot
 *               when it can, through the ioctls when it cannot (an
 *               acquire may queue and sleep; with -DTRY it may be a
 *               try-acquire instead); then it closes its fd or
 *               keeps it open and does nothing more. Killer can kill it at
 *               any step of its userspace code (and while it sleeps in the
 *               kernel); its fd is then released by the kernel.
 *   Garbage(p)  (-DGARBAGE, instead of User(1)) a malicious process: writes
 *               anything into its own slot, calls the ioctls in any order,
 *               then closes.
 *   Waiter      an fd without a slot: a blocking acquire of NW permits
 *               (kprim_sem_acquire_wait(); an io_uring wait is the same to
 *               the FIFO), optionally ending by its timeout, then release.
 *   Resizer     (-DRESIZE) KPRIM_IOC_SEM_RESIZE shrinking P to RESIZE_TO.
 *   Poller      (-DPOLLER) poll() until the semaphore is readable.
 *   Killer      kills up to NKILL processes, at any time.
 *   Monitor     the invariants, in every state.
 *
 * Atomicity. The kernel's lock sections hold klock (sem->wq.lock); each
 * access to a slot word is a step of its own (users run in between), the
 * kernel's bookkeeping next to it is folded into the same step (nobody
 * reads it without the lock). Userspace steps are the single atomic
 * instructions of the fast path: a 64-bit load, a 64-bit CAS. A process
 * cannot die inside a system call: inker[p] is set while it runs in the
 * kernel, cleared while it sleeps there (a fatal signal ends the sleep).
 *
 * Ghost state: inuse[f], the permits fd f's users have (acquired, not yet
 * released), updated in the same step as the CAS or the kernel's grant or
 * release that moves them. A dead process's permits stay in inuse[] (and
 * in @held) until its fd is released.
 *
 * Checked (no garbage: every fd honest):
 *   - per fd, in every state: a lent slot has LIMIT == held and INUSE ==
 *     what the fd's users have; a recalled one is {0, 0} and held == what
 *     the users have. At the fd's release, so at a death at any
 *     instruction, the kernel takes back exactly what the fd had, no
 *     permit lost or duplicated;
 *   - sum of held <= P: in-use + free-in-slots + available == P;
 *   - mutual exclusion: in-use <= P, and at every successful acquire
 *     in-use <= the current permit count (also right after a shrink);
 *   - FIFO: no acquire through a slot succeeds while any waiter is queued
 *     (a waiter is queued from the step that adds it to the FIFO, after
 *     its recall pass, until its grant or its leaving);
 *   - no waiter forgotten: the Waiter has no timeout (unless -DWTIMEOUT)
 *     and every User finishes, some keeping their fd open for ever: a
 *     permit stuck in a slot leaves the Waiter blocked (invalid end
 *     state); at the end, every closed fd holds nothing; likewise a
 *     Poller is not left asleep while a permit is free;
 *   - with -DTRY: a try-acquire fails (-EAGAIN) only when, after its
 *     recall pass, no slot is lent and the permits are in use or someone
 *     waits (x/sync's TryAcquire);
 *   - with -DGARBAGE: a recall never raises the kernel's per-fd @held
 *     (INUSE is clamped to it), the sum of @held stays <= P, the honest
 *     fds keep all of the above, and the Waiter is still served;
 *   - with -DPOLLER: outside the lock, a poller asleep and not woken
 *     means the semaphore is not ready (no permit became available
 *     without a wake), garbage writer included.
 *
 *
 * The rules of commit e0004a5 (found by review, not by this model, whose
 * resize configuration had no fd with 2 in use releasing part of them
 * after the shrink): (1) no slot is lent while the semaphore is shrunk
 * below what is held, checked by the P=3 -> 1 configuration with fd 0
 * shared (2 in use there, 1 by the waiter) and caught by
 * -DMUT_LEND_SHRUNK; the code's other half of it (its try does not reuse
 * parked permits then) is implied here: the own recall gives parked
 * permits back and a grant needs them available, which a shrunk
 * semaphore has not; (2) only a lent slot is read back (recall() looks at
 * armed[] only), caught by -DMUT_READ_UNLENT with a garbage writer and a
 * poller (a permit freed without a wake). (3) At most
 * KPRIM_SEM_SLOT_MAX_LENDERS (64) slots are lent: it bounds the recall
 * walk (time with interrupts off), no safety property of its own;
 * -DLENDCAP=1 (one slot lent of 2) checks that an fd kept recalled by the
 * cap while another is lent breaks nothing.
 *
 * @check pass safety : 2 slot fds, 1 permit (a mutex), a queued waiter, a death anywhere
 * @check pass safety -DP=2 -DNW=2 : 2 permits, the waiter wants both (head blocks), loans of 0..2
 * @check pass safety -DNF=3 -DNOPS=1 : 3 slot fds, 1 permit
 * @check pass safety -DNKILL=2 -DNOPS=1 : two deaths
 * @check pass safety -DFORK -DUTIMEOUT -DNOPS=1 : fd 0 shared by two processes (fork); waits may time out
 * @check pass safety -DFORK -DRAWSHARER -DUTIMEOUT -DNOPS=1 : the sharer of fd 0 uses the ioctls only (an exec'd image that does not map the slot)
 * @check pass safety -DP=2 -DRESIZE : shrink 2 -> 1 while loans exist
 * @check pass safety -DP=2 -DGARBAGE -DNOPS=1 : a process writing garbage into its own slot (with NOPS=2 too: 10.5 million states, 30-50 s)
 * @check pass safety -DWTIMEOUT -DP=2 -DNW=2 : the waiter may time out and leave the queue
 * @check pass safety -DPOLLER : a poll() until readable, with lending going on
 * @check pass safety -DTRY -DP=2 : try-acquires (timeout 0) besides blocking ones: -EAGAIN only when the permits are in use
 * @check pass safety -DP=2 -DUN=2 -DNOPS=1 : users acquire and release 2 at a time through the slot
 * @check pass safety -DP=3 -DRESIZE -DRESIZE_TO=1 -DFORK -DUTIMEOUT -DNOPS1=0 -DNOPSF=1 : shrink 3 -> 1 with 2 in use on fd 0 (fork) and 1 by the waiter, partial releases after it, a death anywhere: in use <= the new count at every acquire
 * @check pass safety -DGARBAGE -DPOLLER -DNKILL=0 -DNOPS=1 : a garbage writer and a poll(): no permit freed without waking the poller
 * @check pass safety -DP=2 -DNW=2 -DLENDCAP=1 : at most one slot of 2 lent at a time (KPRIM_SEM_SLOT_MAX_LENDERS, 64 in the code)
 * @check pass cycles -DNOPS=1 : no cycles: every run ends (the CAS retry loops included)
 * @check fail safety -DMUT_NO_RECALL : a waiter queues without recalling the loans: a fast acquire overtakes it
 * @check fail safety -DMUT_RELEASE_IGNORES_RECALL : the fast release as a blind decrement of INUSE that ignores LIMIT 0: a recalled permit never reaches the kernel
 * @check fail safety -DNO_MONITOR -DMUT_RELEASE_IGNORES_RECALL : the same without the invariant monitor: the forgotten waiter itself (invalid end state)
 * @check fail safety -DP=2 -DNW=2 -DMUT_LOAN_WITH_QUEUE : the release ioctl lends while a waiter is queued: a fast acquire overtakes it
 * @check fail safety -DMUT_ACQ_STORE : the fast acquire as load + store, not CAS: it undoes a recall
 * @check fail safety -DMUT_REL_STORE : the fast release as load + store, not CAS: it undoes a recall
 * @check fail safety -DFORK -DRAWSHARER -DUTIMEOUT -DNOPS=1 -DMUT_NO_OWN_RECALL : the ioctls not recalling the caller's own slot first: its free permits are counted twice
 * @check fail safety -DP=2 -DRESIZE -DMUT_RESIZE_NO_RECALL : a shrink that leaves the loans: in-use exceeds the new count
 * @check fail safety -DP=3 -DRESIZE -DRESIZE_TO=1 -DFORK -DUTIMEOUT -DNOPS1=0 -DNOPSF=1 -DMUT_LEND_SHRUNK : the leave before e0004a5, lending while shrunk below what is held: a release parked and taken back puts 2 in use for a count of 1
 * @check fail safety -DGARBAGE -DPOLLER -DNKILL=0 -DNOPS=1 -DMUT_READ_UNLENT : the enter before e0004a5, reading an unlent slot: a garbage write frees the fd's permits without waking the poller
 * @check fail safety -DP=2 -DGARBAGE -DMUT_NO_CLAMP : a recall taking a garbage INUSE unclamped: the kernel's held grows
 * @check fail safety -DPOLLER -DMUT_POLL_NO_RECALL : a poll that does not recall: it sleeps while a permit is free in a slot
 * @check fail safety -DTRY -DP=2 -DMUT_TRY_NO_RECALL : a try that fails without recalling: -EAGAIN with a permit free in a slot
 * @check fail safety -DMUT_NAIVE : naive design (shared count + pending record), release resolves "pending = done"
 * @check fail safety -DMUT_NAIVE -DNAIVE_UNDONE : naive design, release resolves "pending = not done"
 *
 * Other flags: NF (slot fds, 2), P (permits, 1), NOPS (pairs per User,
 * 2), UN (permits per User acquire/release, 1), NW (permits the Waiter wants, 1), NKILL (deaths, 1), NO_MONITOR
 * (leave the invariant monitor out: to see that the end-state checks
 * alone catch a lost permit), RESIZE_TO (the count a resize sets, P - 1),
 * NOPS1 and NOPSF (pairs of the User on fd 1 and of fd 0's sharer, NOPS),
 * LENDCAP (most slots lent at once, NF), LOANMAX (most
 * the kernel lends beyond what is in use, 2: it lends any amount from 0 up
 * to that and what is available, so every batch policy is covered).
 */

#ifndef NF
#define NF	2		/* slot fds, one User each */
#endif
#ifndef P
#define P	1		/* permits */
#endif
#ifndef NOPS
#define NOPS	2		/* acquire/release pairs per User */
#endif
#ifndef NW
#define NW	1		/* permits the Waiter asks for */
#endif
#ifndef NKILL
#define NKILL	1		/* processes Killer kills at most */
#endif
#ifndef UN
#define UN	1		/* permits per User acquire/release */
#endif
#ifndef LOANMAX
#define LOANMAX	2		/* most permits lent beyond those in use */
#endif
#ifndef NOPS1
#define NOPS1	NOPS		/* pairs of the User on fd 1 */
#endif
#ifndef NOPSF
#define NOPSF	NOPS		/* pairs of the sharer of fd 0 (-DFORK) */
#endif
#ifndef LENDCAP
#define LENDCAP	NF		/* most slots lent at once (the code: 64) */
#endif
#ifndef RESIZE_TO
#define RESIZE_TO (P - 1)	/* the count a resize sets */
#endif

#define W	NF		/* the Waiter: its process and fd id */
#ifdef FORK
#define NPROC	(NF + 2)	/* process NF + 1 shares fd 0 */
#else
#define NPROC	(NF + 1)
#endif
#define NFD	(NF + 1)
#define NONE	255

#ifdef GARBAGE
#define GFD	1		/* the malicious fd */
#else
#define GFD	NONE
#endif

#ifndef MUT_NAIVE

/* ---- state ---------------------------------------------------------- */

byte permits = P;	/* sem->permits */
bool shrunk;		/* a resize shrank it */
bit klock;		/* sem->wq.lock */

/* per fd: struct kprim_sem_fd and its slot page */
byte kheld[NFD];	/* fd->held: everything the fd holds, slot included */
bool armed[NF];		/* on sem->lenders: the kernel lent to the slot */
byte sL[NF];		/* the slot word: LIMIT */
byte sU[NF];		/* the slot word: INUSE */
byte refs[NFD];		/* processes that have the fd open */
bool closed[NFD];	/* released (kprim_sem_release_handle()) */
byte inuse[NFD];	/* ghost: permits the fd's users have */

/* per process */
byte pfd[NPROC];	/* its fd */
byte need[NPROC];	/* its queued request */
bool inq[NPROC];	/* queued in the FIFO */
bool granted[NPROC];	/* w->granted */
bool inker[NPROC];	/* running in the kernel (cannot die there) */
bool kill[NPROC];	/* a fatal signal */

byte queue[NPROC];	/* sem->wq.waiters, oldest first */
byte qlen;

bool polled;		/* a poller is on sem->pollq */
bool woken;		/* it was woken since it registered */
bool psleep;		/* ghost: it found the semaphore not ready and sleeps */

byte kU;		/* scratch, only inside an atomic step */
byte kEx;
byte qi;
byte gw = NONE;

#define HON(f)		((f) != GFD)
#define HELD		(kheld[0] + kheld[1] + (NF > 2 -> kheld[2] : 0) + kheld[W])
#define AVAIL		(permits > HELD -> permits - HELD : 0)
#define IU(f)		(HON(f) -> inuse[f] : 0)
#define INUSE		(IU(0) + IU(1) + (NF > 2 -> IU(2) : 0) + inuse[W])
/* kprim_sem_poll_ready() with nobody queued (a grant pass leaves no head that fits) */
#define READY		(qlen == 0 && AVAIL >= 1)
/* kprim_sem_wake_pollers(), after the paths that can make permits available */
#ifdef POLLER
#define WAKE		if :: polled -> woken = 1 :: else fi
#else
#define WAKE		skip
#endif
#define ALLRECALLED	(sL[0] == 0 && sL[1] == 0 && (NF <= 2 || sL[NF - 1] == 0))
/* an honest slot fd: lent {held, inuse} or recalled {0, 0} with held == inuse */
#define CONS(f)		(!HON(f) || \
			 (closed[f] -> kheld[f] == 0 : \
			  (armed[f] -> (sL[f] == kheld[f] && sU[f] == inuse[f]) : \
			   (sL[f] == 0 && sU[f] == 0 && kheld[f] == inuse[f]))))
#define CONSALL		(CONS(0) && CONS(1) && (NF <= 2 || CONS(2)) && kheld[W] == inuse[W])
/* what an honest fd's users have plus what its slot has free */
#define HAS(f)		(inuse[f] + ((f) < NF -> sL[f] - sU[f] : 0))

/* ---- the FIFO (kmod/wait.c) ----------------------------------------- */

inline q_add(p, n)
{
	need[p] = n;
	queue[qlen] = p;
	qlen++;
	inq[p] = 1
}

inline q_del(p)
{
	assert(inq[p]);
	qi = 0;
	do
	:: queue[qi] != p -> qi++
	:: else -> break
	od;
	do
	:: qi + 1 < qlen -> queue[qi] = queue[qi + 1]; qi++
	:: else -> break
	od;
	qlen--;
	queue[qlen] = NONE;
	inq[p] = 0;
	qi = 0
}

/* ---- kmod/sem.c ------------------------------------------------------ */

/* kprim_sem_take(): account n to p's fd; p's users have them now */
inline take(p, n)
{
	kheld[pfd[p]] = kheld[pfd[p]] + n;
	inuse[pfd[p]] = inuse[pfd[p]] + n;
	assert(INUSE <= permits)
}

/* kprim_sem_grant(): strictly from the head */
inline grant_pass()
{
	do
	:: qlen > 0 && need[queue[0]] <= AVAIL ->
		gw = queue[0];
		take(gw, need[gw]);
		granted[gw] = 1;
		q_del(gw)
	:: else -> break
	od;
	gw = NONE
}

/*
 * Recall slot f (sem lock held) if it is lent to: {L, U} = xchg(word, 0);
 * the fd keeps min(U, held) (in use), the rest (free) is the kernel's
 * again. The kernel never uses L: it knows what it lent. Without the
 * clamp (mutation) a garbage INUSE would raise fd->held.
 */
inline recall(f)
{
	if
	:: armed[f] ->
		kU = sU[f];
#ifndef MUT_NO_CLAMP
		if
		:: kU > kheld[f] -> kU = kheld[f]
		:: else
		fi;
#endif
		assert(kU <= kheld[f]);		/* held never grows here */
		kheld[f] = kU;
		sL[f] = 0;
		sU[f] = 0;
		armed[f] = 0;
		kU = 0
	:: else
	fi
}

/*
 * Lend to slot f (sem lock held; the slot is recalled), only while nobody
 * is queued or polls (kprim_sem_slot_leave(): a poller counts as a
 * waiter) and the semaphore is not shrunk below what is held (rule 1 of
 * e0004a5; -DMUT_LEND_SHRUNK is the old leave): any amount up to LOANMAX
 * and what is available (every batch policy): xchg(word, {held + extra,
 * held}). Whatever a garbage writer put in a recalled slot is overwritten.
 * The code decides on sem->held with the fd's parked permits still in it;
 * here they came back at recall_own() and return as extra, which is
 * available exactly when the code's sum is within the count: the model
 * lends at least whenever the code does.
 */
#ifdef MUT_LOAN_WITH_QUEUE
#define LEND_Q	1
#else
#define LEND_Q	(qlen == 0 && !polled)
#endif
/* slots lent (KPRIM_SEM_SLOT_MAX_LENDERS is LENDCAP here) */
#define NLENT	(armed[0] + armed[1] + (NF > 2 -> armed[NF - 1] : 0))
#ifdef MUT_LEND_SHRUNK
#define LEND_OK	(LEND_Q && NLENT < LENDCAP)
#else
#define LEND_OK	(LEND_Q && NLENT < LENDCAP && HELD <= permits)
#endif
inline lend(f)
{
	assert(!armed[f]);
	if
	:: LEND_OK ->
		kEx = 0;
		do
		:: kEx < LOANMAX && kEx < AVAIL -> kEx++
		:: break
		od;
		sU[f] = kheld[f];
		kheld[f] = kheld[f] + kEx;
		sL[f] = kheld[f];
		armed[f] = (kheld[f] > 0);	/* {0, 0} is "recalled" */
		kEx = 0
	:: else
	fi
}

/* Recall every lent slot, one word access per step (lock held). */
inline recall_all()
{
#ifndef MUT_NO_RECALL
	g = 0;
	do
	:: g < NF -> atomic { recall(g); g++ }
	:: else -> g = 0; break
	od
#else
	skip
#endif
}

/*
 * The caller's own slot, first thing in its acquire and release ioctls.
 * Only a lent slot is read (rule 2 of e0004a5): an unlent one has nothing
 * parked whatever it says. -DMUT_READ_UNLENT is the old enter: it trusted
 * any word without SLOW (LIMIT != 0), which only a garbage writer puts in
 * an unlent slot.
 */
inline recall_own(f)
{
#ifndef MUT_NO_OWN_RECALL
#ifdef MUT_READ_UNLENT
	if
	:: !armed[f] && sL[f] != 0 -> armed[f] = 1
	:: else
	fi;
#endif
	recall(f)
#else
	/* takes the lent fd as recalled, without touching the word */
	armed[f] = 0
#endif
}

/* kprim_sem_release_handle(): the last reference to the fd is gone. */
inline fd_put(f)
{
	atomic {
		klock == 0;
		refs[f]--;
		if
		:: refs[f] == 0 ->
			/* exact: what its users had plus what its slot had free */
			assert(!HON(f) || kheld[f] == HAS(f));
			kheld[f] = 0;
			inuse[f] = 0;
			if
			:: f < NF ->
				/* the page dies with the fd (the mapping holds the file) */
				sL[f] = 0;
				sU[f] = 0;
				armed[f] = 0
			:: else
			fi;
			closed[f] = 1;
			grant_pass();
			WAKE
		:: else
		fi
	}
}

/*
 * The acquire ioctl of a slot fd (KPRIM_IOC_SEM_ACQUIRE, blocking):
 * recall the own slot; grant at once if nobody waits and it fits, and
 * lend; else recall every loan and try again; else queue and sleep (with
 * @tmo, the sleep may end by a timeout: @fail).
 */
inline slow_acquire(p, f)
{
	atomic { klock == 0 -> klock = 1; inker[p] = 1; recall_own(f) };
	atomic {
		if
		:: qlen == 0 && AVAIL >= UN -> take(p, UN); got = 1
		:: else
		fi
	};
	if
	:: got -> atomic { lend(f) }
	:: else ->
#ifdef MUT_TRY_NO_RECALL
		if
		:: !istry -> recall_all()
		:: else
		fi;
#else
		recall_all();
#endif
		atomic {
			if
			:: qlen == 0 && AVAIL >= UN -> take(p, UN); got = 1
			:: else ->
				if
				:: istry ->
					/*
					 * -EAGAIN only if the permits are in use
					 * (or someone waits), none free in a slot
					 */
					assert(qlen > 0 || INUSE + UN > permits);
					assert(ALLRECALLED);
					fail = 1
				:: else -> q_add(p, UN)
				fi
			fi
		}
	fi;
	atomic { klock = 0; inker[p] = 0; istry = 0 };
	if
	:: got -> got = 0
	:: fail
	:: else ->
		/* sleeps; may die here */
		if
		:: granted[p] -> granted[p] = 0
		:: tmo ->	/* its timeout: leaves the queue unless granted */
			atomic {
				klock == 0;
				if
				:: granted[p] -> granted[p] = 0
				:: else -> q_del(p); grant_pass(); WAKE; fail = 1
				fi
			}
		fi
	fi
}

/*
 * The release ioctl of a slot fd (KPRIM_IOC_SEM_RELEASE of 1): recall the
 * own slot, release (-EINVAL beyond held), grant, lend if nobody waits.
 */
inline slow_release(p, f)
{
	atomic {
		klock == 0 -> klock = 1; inker[p] = 1;
		recall_own(f);
		if
		:: kheld[f] >= UN ->
			kheld[f] = kheld[f] - UN;
			inuse[f] = inuse[f] - UN;
			grant_pass();
			WAKE
		:: else		/* -EINVAL */
		fi
	};
	atomic { lend(f); klock = 0; inker[p] = 0 }
}

/* A process dies: a sleep in the kernel ends (leaving the queue), fd_put. */
inline die(p, f)
{
	atomic {
		klock == 0;
		if
		:: inq[p] -> q_del(p); grant_pass(); WAKE
		:: else
		fi;
		granted[p] = 0
	};
	fd_put(f)
}

/* ---- the parties ----------------------------------------------------- */

proctype User(byte p)
{
	byte f = pfd[p], i, lL, lU, g;
	bool ok, got, fail, raw, istry;
#ifdef UTIMEOUT
	bool tmo = 1;
#else
	bool tmo = 0;
#endif

#ifdef RAWSHARER
	raw = (p == NF + 1);	/* uses the ioctls only */
#endif
	{
		do
		:: i < (p == 1 -> NOPS1 : (p == NF + 1 -> NOPSF : NOPS)) ->
			/* acquire one: load the word */
acq:			atomic { lL = sL[f]; lU = sU[f] };
			if
			:: !raw && lL != 0 && lU + UN <= lL ->
#ifndef MUT_ACQ_STORE
				/* CAS(word, {lL, lU}, {lL, lU + UN}) */
				atomic {
					if
					:: sL[f] == lL && sU[f] == lU ->
						sU[f] = lU + UN;
						inuse[f] = inuse[f] + UN;
						assert(qlen == 0);	/* FIFO */
						assert(INUSE <= permits);
						ok = 1
					:: else -> ok = 0
					fi;
					lL = 0; lU = 0
				};
				if
				:: ok -> ok = 0
				:: else -> goto acq
				fi
#else
				/* store(word, {lL, lU + UN}) */
				atomic {
					sL[f] = lL;
					sU[f] = lU + UN;
					inuse[f] = inuse[f] + UN;
					lL = 0; lU = 0
				}
#endif
			:: else ->
				atomic { lL = 0; lU = 0 };
#ifdef TRY
				if
				:: istry = 1	/* a try-acquire (timeout 0) */
				:: skip
				fi;
#endif
				slow_acquire(p, f)
			fi;

			if
			:: fail -> fail = 0	/* timed out or -EAGAIN: nothing to release */
			:: else ->
				/* release one */
#ifdef MUT_RELEASE_IGNORES_RECALL
				/* fetch_sub(word, 1): whatever LIMIT says */
				atomic { sU[f] = sU[f] - UN; inuse[f] = inuse[f] - UN }
#else
rel:				atomic { lL = sL[f]; lU = sU[f] };
				if
				:: !raw && lL != 0 ->
#ifndef MUT_REL_STORE
					/* CAS(word, {lL, lU}, {lL, lU - UN}); honest: lU >= UN */
					atomic {
						if
						:: sL[f] == lL && sU[f] == lU ->
							assert(lU >= UN);
							sU[f] = lU - UN;
							inuse[f] = inuse[f] - UN;
							ok = 1
						:: else -> ok = 0
						fi;
						lL = 0; lU = 0
					};
					if
					:: ok -> ok = 0
					:: else -> goto rel
					fi
#else
					/* store(word, {lL, lU - UN}) */
					atomic {
						sL[f] = lL;
						sU[f] = lU - UN;
						inuse[f] = inuse[f] - UN;
						lL = 0; lU = 0
					}
#endif
				:: else ->
					atomic { lL = 0; lU = 0 };
					slow_release(p, f)
				fi
#endif
			fi;
			i++
		:: else -> break
		od;
		/* done: close the fd, or keep it open and do nothing more */
#ifndef FORK
		if
		:: fd_put(f)
		:: skip
		fi
#else
		fd_put(f)	/* the last close returns what a dead sharer had */
#endif
	} unless {
		atomic { kill[p] && !inker[p] -> lL = 0; lU = 0; ok = 0; got = 0; fail = 0; istry = 0 };
		die(p, f)
	}
}

#ifdef GARBAGE
/*
 * A malicious process on its own slot fd: any word in its slot, the
 * ioctls in any order; then it closes (holding permits for ever is its
 * right, so it must close for the Waiter to be served). Its inuse[] is
 * not checked.
 */
proctype Garbage(byte p)
{
	byte f = pfd[p], steps, v, g;
	bool got, fail, istry, tmo = 1;

	do
	:: steps < 3 ->
		if
		:: atomic {	/* any store into the word */
				v = 0;
				do
				:: v < P + 2 -> v++
				:: break
				od;
				sL[f] = v;
				v = 0;
				do
				:: v < P + 2 -> v++
				:: break
				od;
				sU[f] = v;
				v = 0
			}
		:: slow_acquire(p, f); fail = 0
		:: slow_release(p, f)
		fi;
		steps++
	:: break
	od;
	fd_put(f)
}
#endif

/* A blocking acquire of NW through an fd without a slot, then release. */
proctype Waiter()
{
	byte g;
	bool got;

	atomic { klock == 0 -> klock = 1 };
	atomic {
		if
		:: qlen == 0 && AVAIL >= NW -> take(W, NW); got = 1
		:: else
		fi
	};
	if
	:: !got ->
		recall_all();
		atomic {
			if
			:: qlen == 0 && AVAIL >= NW -> take(W, NW); got = 1
			:: else -> q_add(W, NW)
			fi
		}
	:: else
	fi;
	klock = 0;
	if
	:: got
	:: !got ->
		if
		:: granted[W] -> granted[W] = 0; got = 1
#ifdef WTIMEOUT
		:: atomic {
				klock == 0;
				if
				:: granted[W] -> granted[W] = 0; got = 1
				:: else -> q_del(W); grant_pass(); WAKE
				fi
			}
#endif
		fi
	fi;
	if
	:: got ->
		atomic {
			klock == 0;
			kheld[W] = kheld[W] - NW;
			inuse[W] = inuse[W] - NW;
			grant_pass();
			WAKE;
			got = 0
		}
	:: else
	fi;
	fd_put(W)
}

#ifdef RESIZE
/* KPRIM_IOC_SEM_RESIZE to RESIZE_TO: recall the loans, then grant. */
proctype Resizer()
{
	byte g;

	/*
	 * Recall first, then the new count: an acquire from a loan during
	 * the recall pass comes before the resize.
	 */
	atomic { klock == 0 -> klock = 1 };
#ifndef MUT_RESIZE_NO_RECALL
	recall_all();
#endif
	atomic { permits = RESIZE_TO; shrunk = 1; grant_pass(); WAKE; klock = 0 }
}
#endif

#ifdef POLLER
/*
 * poll() until readable: kprim_sem_poll(): on the poll wait queue first
 * (poll_wait()), then under the lock: recall every loan (free loaned
 * permits are available; the code does it at every poll, ready or not)
 * and look; then sleep until a wake and poll again. While it is on the
 * wait queue (polled) nothing is lent: a poller counts as a waiter.
 */
proctype Poller()
{
	byte g;
	bool rdy;

	do
	:: atomic { klock == 0 -> klock = 1; polled = 1; woken = 0 };
#ifndef MUT_POLL_NO_RECALL
		recall_all();
#endif
		atomic { rdy = READY; klock = 0; psleep = !rdy };
		if
		:: rdy -> break
		:: else ->	/* sleeps until kprim_sem_wake_pollers() */
			atomic { woken -> psleep = 0 }
		fi
	od;
	atomic { polled = 0; woken = 0; rdy = 0 }
}
#endif

proctype Killer()
{
	byte k;

	do
	:: k < NKILL ->
		if
		:: kill[0] = 1
		:: kill[1] = 1
#if NF > 2
		:: kill[2] = 1
#endif
#ifdef FORK
		:: kill[NF + 1] = 1
#endif
		fi;
		k++
	:: break
	od;
	k = 0
}

/* Invariants, in every state. */
proctype Monitor()
{
end:
	atomic {
		!(CONSALL && NLENT <= LENDCAP && (shrunk || (HELD <= permits && INUSE <= permits)) &&
		  (klock || !psleep || woken || !READY)) ->
		assert(false)
	}
}

init {
	byte f;

	atomic {
		f = 0;
		do
		:: f < NPROC -> queue[f] = NONE; pfd[f] = f; f++
		:: else -> break
		od;
		f = 0;
		do
		:: f < NFD -> refs[f] = 1; f++	/* mmap(): a recalled, empty slot */
		:: else -> break
		od;
#ifdef FORK
		pfd[NF + 1] = 0;
		refs[0] = 2;
#endif
#ifndef NO_MONITOR
		run Monitor();
#endif
		f = 0;
		do
		:: f < NF ->
#ifdef GARBAGE
			if
			:: f == GFD -> run Garbage(f)
			:: else -> run User(f)
			fi;
#else
			run User(f);
#endif
			f++
		:: else -> break
		od;
#ifdef FORK
		run User(NF + 1);
#endif
		run Waiter();
#ifdef POLLER
		run Poller();
#endif
#ifdef RESIZE
		run Resizer();
#endif
		run Killer();
		f = 0
	}

	/* everybody is done (Monitor, init): the end state */
#ifndef NO_MONITOR
	_nr_pr == 2;
#else
	_nr_pr == 1;
#endif
	assert(qlen == 0 && klock == 0);
	f = 0;
	do
	:: f < NFD ->
		assert(!closed[f] || kheld[f] == 0);
		assert(!HON(f) || closed[f] || kheld[f] == HAS(f));
		f++
	:: else -> break
	od
}

#else /* MUT_NAIVE */

/*
 * The naive design: one page shared by every fd holds the available
 * count, and userspace takes from and gives back to it directly; each
 * fd's own page holds what it has taken (@rheld) and a pending-operation
 * record (@rpend, robust-futex style: written before the shared
 * operation, cleared with the @rheld update in one store). At the fd's
 * release the kernel gives back @rheld and has to resolve a pending
 * operation without knowing whether its atomic on the shared count was
 * done: the shared count does not say who changed it. -DNAIVE_UNDONE
 * resolves "not done", the default "done"; both are wrong somewhere.
 * Two fds, one permit, one acquire/release each, one death.
 */
byte shavail = P;	/* the shared count */
byte rheld[2];		/* per-fd page: permits taken */
byte rpend[2];		/* per-fd page: 1 acquire pending, 2 release pending */
byte inuse[2];		/* ghost */
bool dead[2];
bool kill[2];

proctype NUser(byte f)
{
	bool ok;

	{
		rpend[f] = 1;				/* record: acquiring 1 */
		atomic { shavail >= 1 -> shavail--; inuse[f] = 1 };	/* CAS */
		atomic { rheld[f] = 1; rpend[f] = 0 };	/* one store */
		rpend[f] = 2;				/* record: releasing 1 */
		atomic { shavail++; inuse[f] = 0 };	/* fetch_add */
		atomic { rheld[f] = 0; rpend[f] = 0 }
	} unless {
		kill[f] ->
		/* the kernel's release of the fd: give back rheld, resolve rpend */
		atomic {
			shavail = shavail + rheld[f];
#ifndef NAIVE_UNDONE
			/* "done": a pending acquire took one, give it back */
			if
			:: rpend[f] == 1 -> shavail++
			:: else
			fi;
#else
			/* "not done": a pending release still owes one */
			if
			:: rpend[f] == 2 -> shavail++
			:: else
			fi;
#endif
			rheld[f] = 0; rpend[f] = 0; inuse[f] = 0;
			dead[f] = 1
		}
	}
}

proctype NKiller()
{
	if
	:: kill[0] = 1
	:: kill[1] = 1
	:: skip
	fi
}

/* conserved: shared count + what the users have == P */
proctype NMonitor()
{
end:
	atomic { !(shavail + inuse[0] + inuse[1] == P) -> assert(false) }
}

init {
	atomic {
		run NMonitor();
		run NUser(0);
		run NUser(1);
		run NKiller()
	}
}
#endif /* MUT_NAIVE */
