/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * kprim - host-wide concurrency primitives: the user/kernel ABI.
 *
 * Conventions (shared by every ioctl argument below):
 *  - every argument struct starts with __u32 size (sizeof the struct as the
 *    caller knows it) and __u32 flags;
 *  - the kernel accepts any size >= the first published size of the struct
 *    (KPRIM_SIZE_*_VER0) and up to one page: a larger struct whose unknown
 *    tail is not zero is -E2BIG, a smaller one -EINVAL;
 *  - reserved fields and unknown flag bits must be zero (-EINVAL);
 *  - structs only grow by appending fields;
 *  - commands are dispatched on their number; an unknown number, magic or
 *    direction is -ENOTTY. The size encoded in the command is that of the
 *    first version and is not checked: the size field is authoritative.
 *
 * Opening /dev/kprim gives a session fd. KPRIM_IOC_OPEN on it returns one
 * fd per object (limiter, semaphore or cache) on which the object's own
 * ioctls, poll() and close() work.
 */
#ifndef _UAPI_LINUX_KPRIM_H
#define _UAPI_LINUX_KPRIM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define KPRIM_DEVICE_NAME	"kprim"
#define KPRIM_API_VERSION	1

#define KPRIM_NAME_MAX		255	/* bytes, excluding any NUL */
#define KPRIM_KEY_MAX		250	/* cache key bytes */

/* Relative timeout meaning "wait forever". */
#define KPRIM_TIMEOUT_INFINITE	(~(__u64)0)
/* cancel_fd value meaning "no cancel fd". */
#define KPRIM_NO_CANCEL_FD	(-1)

/* Object kinds. */
enum kprim_kind {
	KPRIM_KIND_LIMITER	= 1,
	KPRIM_KIND_SEM		= 2,
	KPRIM_KIND_CACHE	= 3,
};

/* Feature bits reported by KPRIM_IOC_API. */
#define KPRIM_FEAT_LIMITER	(1ULL << 0)
#define KPRIM_FEAT_SEM		(1ULL << 1)
#define KPRIM_FEAT_CACHE	(1ULL << 2)
#define KPRIM_FEAT_LIST		(1ULL << 3)
/*
 * Objects are scoped per IPC namespace; without it, callers outside the
 * initial IPC namespace get -EOPNOTSUPP.
 */
#define KPRIM_FEAT_IPC_NS	(1ULL << 4)
/*
 * Object fds take IORING_OP_URING_CMD: cmd_op is the ioctl command and the
 * first 8 bytes of the SQE's command area hold the argument pointer.
 */
#define KPRIM_FEAT_URING_CMD	(1ULL << 5)
/* KPRIM_OPEN_OWNED is understood. */
#define KPRIM_FEAT_OPEN_OWNED	(1ULL << 6)
/*
 * Object fds are close-on-exec unless opened with KPRIM_OPEN_INHERIT
 * (modules without this bit: inherited unless KPRIM_OPEN_CLOEXEC).
 */
#define KPRIM_FEAT_CLOEXEC_DEFAULT (1ULL << 7)
/* KPRIM_IOC_CACHE_MGET is understood. */
#define KPRIM_FEAT_CACHE_MGET	(1ULL << 8)
/*
 * A take or acquire that must wait, sent through io_uring, is queued at
 * submission and completed by whoever grants it: it holds no io_uring
 * worker thread. KPRIM_IOC_WAIT_CANCEL is understood.
 */
#define KPRIM_FEAT_URING_ASYNC	(1ULL << 9)
/*
 * A limiter fd can be mmap()ed to its shared state page (struct
 * kprim_limiter_page): a take that finds tokens and no waiter can be done
 * in userspace with one 16-byte compare-and-swap, without a system call.
 */
#define KPRIM_FEAT_LIMITER_PAGE	(1ULL << 10)
/*
 * A semaphore fd can be mmap()ed to its own slot page (struct
 * kprim_sem_slot): permits the fd holds but does not use are parked there,
 * and an acquire or release that they cover is done in userspace with one
 * compare-and-swap, without a system call.
 */
#define KPRIM_FEAT_SEM_SLOT	(1ULL << 11)

/**
 * struct kprim_api - API version handshake (KPRIM_IOC_API).
 * @size:	in: sizeof(struct kprim_api)
 * @flags:	in: must be 0
 * @api_version: out: KPRIM_API_VERSION of the module
 * @reserved0:	out: zero
 * @features:	out: KPRIM_FEAT_* bits the module implements
 * @max_objects: out: the global object limit (module parameter)
 * @max_objects_per_user: out: per-uid object quota (module parameter)
 */
struct kprim_api {
	__u32 size;
	__u32 flags;
	__u32 api_version;
	__u32 reserved0;
	__aligned_u64 features;
	__u32 max_objects;
	__u32 max_objects_per_user;
};
#define KPRIM_SIZE_API_VER0	32

/**
 * struct kprim_wait - how a blocking operation waits.
 * @timeout_ns:	relative timeout; 0 = do not block (fail with -EAGAIN),
 *		KPRIM_TIMEOUT_INFINITE = no timeout (-ETIMEDOUT otherwise)
 * @cancel_fd:	an eventfd, or KPRIM_NO_CANCEL_FD: when it becomes readable
 *		the wait ends with -ECANCELED (the counter is not read)
 * @reserved:	must be 0
 *
 * Waits are FIFO ordered. A signal ends a wait the way it ends the
 * kernel's own waits: a handler installed without SA_RESTART makes the
 * call fail with -EINTR; with SA_RESTART, and for a stop (SIGSTOP and
 * SIGCONT), ptrace or the freezer, the call is restarted transparently.
 * Restarted calls keep their deadline: before returning, the kernel
 * writes the time left into @timeout_ns (as select() does; never 0, so a
 * restart still waits), and the restart reads it from the same struct.
 * Time the task spends stopped or in the handler is not counted. A caller
 * that sees -EINTR finds the time left there too. If the time left cannot
 * be written (a read-only or unmapped struct), the call cannot be
 * restarted with its deadline and fails with -EINTR, as select() does.
 * A restarted call joins the FIFO again at its tail: a task that left the
 * kernel to run a handler or to be stopped, for however long, holds no
 * place in the queue. io_uring task work queued for the waiting thread
 * (a completion on a ring set up without IORING_SETUP_DEFER_TASKRUN)
 * also makes the thread leave the kernel to run it, so such a wait is
 * restarted too and loses its place; threads that block here and own
 * such rings should create them with DEFER_TASKRUN.
 * Through io_uring (KPRIM_FEAT_URING_ASYNC), a wait holds no thread: it
 * is queued when the SQE is issued, in the same FIFO as ioctl waiters, its
 * timeout runs from then, and its CQE is posted when it is granted, times
 * out, or is cancelled (-ECANCELED: its cancel eventfd,
 * KPRIM_IOC_WAIT_CANCEL, or the ring's teardown, which the exit of the
 * last process holding the ring causes). Signals do not end it, nor does
 * the exit of the thread that submitted it: it belongs to the ring.
 * An object queues an io_uring wait only while it has fewer waiters than
 * the module parameter max_uring_waits (16384 by default); beyond, the
 * wait completes at once with -ENOSPC.
 */
struct kprim_wait {
	__aligned_u64 timeout_ns;
	__s32 cancel_fd;
	__u32 reserved;
};

/* Token-bucket limiter parameters: @rate tokens every @period_ns. */
struct kprim_limiter_params {
	__aligned_u64 rate;		/* >= 1 */
	__aligned_u64 period_ns;	/* >= 1 */
	__aligned_u64 burst;		/* bucket size, >= 1 */
	__aligned_u64 initial;		/* tokens at creation (<= burst) */
};

/* Counting semaphore parameters. */
struct kprim_sem_params {
	__aligned_u64 permits;		/* 1 .. 2^32-1 */
	__aligned_u64 reserved[3];
};

/* Cache parameters; 0 picks the default for every field but default_ttl. */
struct kprim_cache_params {
	__aligned_u64 max_bytes;	/* default 64 MiB */
	__aligned_u64 max_entries;	/* default 65536 */
	__aligned_u64 max_value;	/* default 1 MiB */
	__aligned_u64 default_ttl_ns;	/* 0 = entries do not expire */
};

/*
 * KPRIM_IOC_OPEN flags.
 *
 * KPRIM_OPEN_OWNED opens "mine or fail": an existing object the caller may
 * open but whose owner is not the caller's effective uid is refused with
 * -EPERM (even for root; one it may not open at all stays -EACCES), so
 * nobody who created the name first can become the owner of what the
 * caller stores or controls. Use it with CREATE whenever the caller means
 * to own the object; without EXCL a previous instance of the caller's own
 * object is still reused.
 *
 * Object fds are close-on-exec by default; KPRIM_OPEN_INHERIT keeps the
 * fd open across execve(). KPRIM_OPEN_CLOEXEC asks for the default and is
 * accepted for old callers; it cannot be combined with INHERIT.
 */
#define KPRIM_OPEN_CREATE	(1U << 0)	/* create if it does not exist */
#define KPRIM_OPEN_EXCL		(1U << 1)	/* with CREATE: -EEXIST if it does */
#define KPRIM_OPEN_TRANSIENT	(1U << 2)	/* on create: gone with its last fd */
#define KPRIM_OPEN_CLOEXEC	(1U << 3)	/* close-on-exec (the default) */
#define KPRIM_OPEN_INITIAL	(1U << 4)	/* limiter: params.initial is set */
#define KPRIM_OPEN_OWNED	(1U << 5)	/* -EPERM unless the caller owns it */
#define KPRIM_OPEN_INHERIT	(1U << 6)	/* no close-on-exec on the new fd */
#define KPRIM_OPEN_FLAGS	(KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL | \
				 KPRIM_OPEN_TRANSIENT | KPRIM_OPEN_CLOEXEC | \
				 KPRIM_OPEN_INITIAL | KPRIM_OPEN_OWNED | \
				 KPRIM_OPEN_INHERIT)

/**
 * struct kprim_open - create or open an object (KPRIM_IOC_OPEN).
 * @size:	sizeof(struct kprim_open)
 * @flags:	KPRIM_OPEN_*
 * @kind:	enum kprim_kind
 * @mode:	permission bits (0777 mask) for a new object
 * @name:	user pointer to the name bytes (not NUL terminated), or 0 with
 *		@name_len 0 for an anonymous object (always created)
 * @name_len:	1..KPRIM_NAME_MAX; no NUL and no '/' in the name
 * @reserved:	must be 0
 * @limiter:	parameters of a new limiter
 * @sem:	parameters of a new semaphore
 * @cache:	parameters of a new cache
 * @params_raw:	the parameter area as words; unused words must be zero
 *
 * With KPRIM_OPEN_CREATE (and for anonymous objects) the parameters must be
 * valid even when the object exists; an existing object's parameters are
 * not compared with them and do not change. Outside the initial IPC
 * namespace every name is transient (a module cannot learn when a
 * namespace dies; a persistent name would keep it alive forever).
 *
 * Return: a new object fd (O_RDWR) on success.
 */
struct kprim_open {
	__u32 size;
	__u32 flags;
	__u32 kind;
	__u32 mode;
	__aligned_u64 name;
	__u32 name_len;
	__u32 reserved;
	union {
		struct kprim_limiter_params limiter;
		struct kprim_sem_params sem;
		struct kprim_cache_params cache;
		__aligned_u64 params_raw[8];
	};
};
#define KPRIM_SIZE_OPEN_VER0	96

/**
 * struct kprim_unlink - remove a name (KPRIM_IOC_UNLINK).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @kind:	kind of the named object
 * @name_len:	length of @name
 * @name:	user pointer to the name
 *
 * Open fds keep the object alive; the name is free at once.
 */
struct kprim_unlink {
	__u32 size;
	__u32 flags;
	__u32 kind;
	__u32 name_len;
	__aligned_u64 name;
};
#define KPRIM_SIZE_UNLINK_VER0	24

/**
 * struct kprim_obj_info - one object, as reported by KPRIM_IOC_LIST.
 * @id:		object id, unique while the module is loaded
 * @kind:	enum kprim_kind
 * @mode:	permission bits
 * @uid:	owner (in the caller's user namespace)
 * @gid:	owner group
 * @flags:	KPRIM_OBJ_* state bits
 * @name_len:	0 for anonymous objects
 * @name:	the name, NUL padded
 * @refs:	open fds plus one while a persistent object is named
 * @limiter:	a limiter's parameters and statistics
 * @sem:	a semaphore's counts
 * @cache:	a cache's parameters and statistics
 * @stats_raw:	the area as words
 */
struct kprim_obj_info {
	__aligned_u64 id;
	__u32 kind;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 flags;
	__u32 name_len;
	char name[KPRIM_NAME_MAX + 1];
	__aligned_u64 refs;
	union {
		struct {
			struct kprim_limiter_params params;
			__aligned_u64 tokens;
			__aligned_u64 waiters;
			__aligned_u64 admitted;
			__aligned_u64 throttled;
		} limiter;
		struct {
			__aligned_u64 permits;
			__aligned_u64 available;
			__aligned_u64 held;
			__aligned_u64 waiters;
			__aligned_u64 holders;
			__aligned_u64 acquired;
		} sem;
		struct {
			struct kprim_cache_params params;
			__aligned_u64 bytes;
			__aligned_u64 entries;
			__aligned_u64 hits;
			__aligned_u64 misses;
			__aligned_u64 evictions;
			__aligned_u64 expirations;
		} cache;
		__aligned_u64 stats_raw[16];
	};
};

#define KPRIM_SIZE_OBJ_INFO_VER0	424

#define KPRIM_OBJ_TRANSIENT	(1U << 0)
#define KPRIM_OBJ_UNLINKED	(1U << 1)

/**
 * struct kprim_list - enumerate objects (KPRIM_IOC_LIST).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @start_id:	in: report objects with id >= @start_id (0 to start)
 * @buf:	user pointer to an array of struct kprim_obj_info
 * @count:	in: capacity of @buf in entries; out: entries written
 * @entry_size: in: sizeof(struct kprim_obj_info) as the caller knows it,
 *		at least KPRIM_SIZE_OBJ_INFO_VER0 (-EINVAL) and at most a page
 *		(-E2BIG)
 * @next_id:	out: @start_id for the next call, 0 when the list is done
 *
 * Lists the objects of the caller's IPC namespace it may read, by id.
 * Entries are @entry_size apart; each gets the first @entry_size bytes of
 * the kernel's struct kprim_obj_info, and zeros beyond the kernel's struct.
 */
struct kprim_list {
	__u32 size;
	__u32 flags;
	__aligned_u64 start_id;
	__aligned_u64 buf;
	__u32 count;
	__u32 entry_size;
	__aligned_u64 next_id;
};
#define KPRIM_SIZE_LIST_VER0	40

/*
 * Limiter operations.
 */

/**
 * struct kprim_limiter_take - take @n tokens (KPRIM_IOC_LIMITER_TAKE).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @n:		tokens, 1..burst
 * @wait:	how to wait (timeout 0: never block)
 * @retry_after_ns: out, on -EAGAIN/-ETIMEDOUT: how long until @n tokens
 *		would be available to a new request, given the current rate
 *		and the requests already queued
 */
struct kprim_limiter_take {
	__u32 size;
	__u32 flags;
	__aligned_u64 n;
	struct kprim_wait wait;
	__aligned_u64 retry_after_ns;
};
#define KPRIM_SIZE_LIMITER_TAKE_VER0	40

/**
 * struct kprim_limiter_set - change parameters (KPRIM_IOC_LIMITER_SET).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	KPRIM_LIMITER_SET_* selects the fields to change
 * @params:	new values; initial must be 0 (it cannot be changed)
 */
struct kprim_limiter_set {
	__u32 size;
	__u32 flags;
	struct kprim_limiter_params params;
};
#define KPRIM_LIMITER_SET_RATE	(1U << 0)	/* rate and period_ns */
#define KPRIM_LIMITER_SET_BURST	(1U << 1)
#define KPRIM_SIZE_LIMITER_SET_VER0	40

/**
 * struct kprim_limiter_info - state (KPRIM_IOC_LIMITER_INFO).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @params:	current rate, period_ns, burst (initial: as created)
 * @tokens:	whole tokens available now
 * @waiters:	blocked takers
 * @admitted:	tokens handed out since creation
 * @throttled:	takes that failed or had to wait
 */
struct kprim_limiter_info {
	__u32 size;
	__u32 flags;
	struct kprim_limiter_params params;
	__aligned_u64 tokens;
	__aligned_u64 waiters;
	__aligned_u64 admitted;
	__aligned_u64 throttled;
};
#define KPRIM_SIZE_LIMITER_INFO_VER0	72

/**
 * struct kprim_limiter_page - a limiter's shared state page.
 * @fill:	fill units available at the time in @stamp (one token is
 *		@period_ns fill units; every nanosecond adds @rate)
 * @stamp:	KPRIM_LIMITER_PAGE_LAST (the CLOCK_MONOTONIC time @fill was
 *		computed for, ns), KPRIM_LIMITER_PAGE_GEN (bumped by the
 *		kernel when the parameters change) and KPRIM_LIMITER_PAGE_SLOW
 * @rate:	tokens per @period_ns (a copy; the kernel keeps its own)
 * @period_ns:	refill period (a copy)
 * @burst:	bucket size in tokens (a copy)
 * @cap:	@burst * @period_ns (a copy)
 * @reserved:	zero
 * @admitted:	tokens taken in userspace, added by the takers themselves
 *
 * mmap() of a limiter fd (KPRIM_FEAT_LIMITER_PAGE): one page, offset 0,
 * MAP_SHARED, not executable. Every mapping of the limiter, in every
 * process, shows the same page, laid out as this struct at its start.
 *
 * A take of n tokens in userspace: read @stamp (acquire); if SLOW is set,
 * use the ioctl. Read @fill and the parameters; read CLOCK_MONOTONIC; if
 * that is later than LAST, refill: fill += (now - LAST) * rate, at most
 * cap, and LAST = now. Take n * period_ns fill units if there are that
 * many, else use the ioctl (which counts the take as throttled and says
 * when to retry). Publish {fill, stamp with the new LAST} with one 16-byte
 * compare-and-swap of {@fill, @stamp} against the values read; if it
 * fails, start again (or use the ioctl). Then add n to @admitted.
 *
 * The kernel sets SLOW before it reads or changes the state and keeps it
 * set while any taker is queued, so a take in userspace never overtakes
 * a waiter; it clears it when the queue is empty. A time later than the
 * kernel's clock or a fill above @cap is treated as garbage: the kernel
 * clamps it. The page is shared with every process that can use the
 * limiter, and trusted by none of them: a process that writes there
 * (rather than following the protocol) can take more than the rate
 * allows, up to a full bucket per write, and so deny tokens to the
 * others; it cannot touch the kernel's safety, parameters, queue or
 * quotas. The rate holds among the processes that follow the protocol.
 * INFO's admitted is the kernel's own count plus this page's @admitted,
 * so it is only as true as the takers that share the page.
 */
struct kprim_limiter_page {
	__aligned_u64 fill;
	__aligned_u64 stamp;
	__aligned_u64 rate;
	__aligned_u64 period_ns;
	__aligned_u64 burst;
	__aligned_u64 cap;
	__aligned_u64 reserved[2];
	__aligned_u64 admitted;
};
#define KPRIM_LIMITER_PAGE_LAST		((1ULL << 58) - 1)
#define KPRIM_LIMITER_PAGE_GEN_SHIFT	58
#define KPRIM_LIMITER_PAGE_GEN		(31ULL << KPRIM_LIMITER_PAGE_GEN_SHIFT)
#define KPRIM_LIMITER_PAGE_SLOW		(1ULL << 63)

/*
 * Semaphore operations.
 */

/**
 * struct kprim_sem_acquire - acquire @n permits (KPRIM_IOC_SEM_ACQUIRE).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @n:		permits, 1..permits
 * @wait:	how to wait (timeout 0: try-acquire)
 *
 * Acquired permits are held by the object fd and come back on close.
 */
struct kprim_sem_acquire {
	__u32 size;
	__u32 flags;
	__aligned_u64 n;
	struct kprim_wait wait;
};
#define KPRIM_SIZE_SEM_ACQUIRE_VER0	32

/**
 * struct kprim_sem_release - give back permits (KPRIM_IOC_SEM_RELEASE).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @n:		permits to give back; more than this fd holds is -EINVAL
 */
struct kprim_sem_release {
	__u32 size;
	__u32 flags;
	__aligned_u64 n;
};
#define KPRIM_SIZE_SEM_RELEASE_VER0	16

/** struct kprim_sem_resize - set the permit count (KPRIM_IOC_SEM_RESIZE). */
struct kprim_sem_resize {
	__u32 size;
	__u32 flags;
	__aligned_u64 permits;
};
#define KPRIM_SIZE_SEM_RESIZE_VER0	16

/** struct kprim_sem_holder - one holder in struct kprim_sem_info. */
struct kprim_sem_holder {
	__s32 pid;	/* tgid of the process that opened the fd */
	__u32 reserved;
	__aligned_u64 held;
};

/**
 * struct kprim_sem_info - state (KPRIM_IOC_SEM_INFO).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @permits:	configured permits
 * @available:	permits not held (0 while shrunk below the held count)
 * @held:	permits held by all fds
 * @held_by_me:	permits held by this fd
 * @waiters:	blocked acquirers
 * @acquired:	acquisitions since creation
 * @holders:	user pointer to an array of struct kprim_sem_holder, or 0
 * @nr_holders: in: capacity of @holders; out: number of holders (may be
 *		more than the capacity: then only the first are written)
 * @reserved:	must be 0
 */
struct kprim_sem_info {
	__u32 size;
	__u32 flags;
	__aligned_u64 permits;
	__aligned_u64 available;
	__aligned_u64 held;
	__aligned_u64 held_by_me;
	__aligned_u64 waiters;
	__aligned_u64 acquired;
	__aligned_u64 holders;
	__u32 nr_holders;
	__u32 reserved;
};
#define KPRIM_SIZE_SEM_INFO_VER0	72

/**
 * struct kprim_sem_slot - a semaphore fd's slot page.
 * @word:	KPRIM_SEM_SLOT_FREE: permits this fd holds that nobody uses
 *		("parked"); KPRIM_SEM_SLOT_HELD: all permits the fd holds,
 *		parked ones included (a copy); KPRIM_SEM_SLOT_SLOW
 * @acquired:	acquisitions done in userspace, added by the acquirers
 *		(the kernel moves them into INFO's acquired)
 *
 * mmap() of a semaphore fd (KPRIM_FEAT_SEM_SLOT): one page, offset 0,
 * MAP_SHARED, not executable. The page belongs to the fd (the open file):
 * mappings of the same fd, in this process or one that inherited it, share
 * it; other fds of the semaphore have their own.
 *
 * Permits an fd releases stay held by it, parked in its slot, until
 * someone else needs them: an acquire of n that FREE covers is, in
 * userspace, a compare-and-swap of @word to FREE - n; a release of n is
 * one to FREE + n, allowed while FREE + n <= HELD. If SLOW is set, FREE is
 * short, or the swap keeps failing, use the ioctl. Permits in use and
 * parked are both held by the fd, so closing it (also by the death of the
 * last process that has it) returns them all, whatever instruction a
 * process died at.
 *
 * The kernel takes parked permits back ("recall") by swapping @word to
 * SLOW, which also makes any swap in progress fail: before it queues a
 * waiter or refuses a try for want of permits, for INFO, LIST, fdinfo and
 * poll() (which report parked permits as available), and when the fd's
 * holder leaves. While any waiter is queued every slot stays SLOW, so no
 * parked permit jumps the FIFO. The kernel clears SLOW again at the fd's
 * next system call if the fd holds a permit, nobody waits or polls, the
 * semaphore is not shrunk below what is held (a resize), and fewer than
 * KPRIM_SEM_SLOT_MAX_LENDERS other slots are lent. A poller counts as a
 * waiter (so that a release wakes it): while a poll(), select() or epoll
 * set waits on the semaphore (an epoll set, for as long as it has one of
 * its fds), slots stay SLOW. The kernel reads a slot back only if it lent
 * it, and clamps what it reads to what the fd holds: a process that writes
 * the page can break mutual exclusion among the users of this fd, or give
 * back permits the fd holds (as a release would); it cannot take a permit
 * the fd does not hold, nor make the kernel's counts disagree. The rest of
 * the page is reserved.
 */
struct kprim_sem_slot {
	__aligned_u64 word;
	__aligned_u64 acquired;
};
#define KPRIM_SEM_SLOT_FREE		0x7fffffffULL
#define KPRIM_SEM_SLOT_HELD_SHIFT	31
#define KPRIM_SEM_SLOT_HELD		(0xffffffffULL << KPRIM_SEM_SLOT_HELD_SHIFT)
#define KPRIM_SEM_SLOT_SLOW		(1ULL << 63)
/*
 * At most this many fds of one semaphore have their slot lent at a time
 * (a recall visits each); the slots of others stay SLOW, and their
 * acquires and releases are system calls.
 */
#define KPRIM_SEM_SLOT_MAX_LENDERS	64

/*
 * Cache operations. Keys are 1..KPRIM_KEY_MAX bytes.
 */

/**
 * struct kprim_cache_get - look up a key (KPRIM_IOC_CACHE_GET).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @key:	user pointer to the key
 * @key_len:	1..KPRIM_KEY_MAX
 * @reserved:	must be 0
 * @value:	user buffer for the value
 * @value_len:	in: capacity of @value; out: the value's length (also on
 *		-EMSGSIZE, when the buffer is too short and nothing is copied)
 * @ttl_ns:	out: remaining time to live, 0 if the entry does not expire
 * @cas:	out: the entry's version, for KPRIM_CACHE_CAS
 *
 * Return: 0, -ENOENT on a miss (or an expired entry).
 */
struct kprim_cache_get {
	__u32 size;
	__u32 flags;
	__aligned_u64 key;
	__u32 key_len;
	__u32 reserved;
	__aligned_u64 value;
	__aligned_u64 value_len;
	__aligned_u64 ttl_ns;
	__aligned_u64 cas;
};
#define KPRIM_SIZE_CACHE_GET_VER0	56

/*
 * struct kprim_cache_store.op: SET always stores; ADD only if absent, else
 * -EEXIST; REPLACE only if present, else -ENOENT; CAS only if the version
 * matches, else -ESTALE (-ENOENT if absent).
 */
enum kprim_cache_op {
	KPRIM_CACHE_SET		= 0,
	KPRIM_CACHE_ADD		= 1,
	KPRIM_CACHE_REPLACE	= 2,
	KPRIM_CACHE_CAS		= 3,
};

/* struct kprim_cache_store.flags */
#define KPRIM_CACHE_TTL		(1U << 0)	/* use ttl_ns, not the default */
/*
 * Pinned: never evicted for room nor by the shrinker (delete, flush,
 * expiry and a store without the flag still remove or unpin it). Pinned
 * entries count against the limits like others and together may take at
 * most half of max_bytes and of max_entries: -ENOSPC beyond.
 */
#define KPRIM_CACHE_PIN		(1U << 1)

/**
 * struct kprim_cache_store - store a value (KPRIM_IOC_CACHE_STORE).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	KPRIM_CACHE_TTL, KPRIM_CACHE_PIN
 * @key:	user pointer to the key
 * @key_len:	1..KPRIM_KEY_MAX
 * @op:		enum kprim_cache_op
 * @value:	user pointer to the value
 * @value_len:	0..max_value bytes
 * @ttl_ns:	with KPRIM_CACHE_TTL: relative expiry, 0 = never expires
 * @cas:	in: expected version for KPRIM_CACHE_CAS; out: new version
 */
struct kprim_cache_store {
	__u32 size;
	__u32 flags;
	__aligned_u64 key;
	__u32 key_len;
	__u32 op;
	__aligned_u64 value;
	__aligned_u64 value_len;
	__aligned_u64 ttl_ns;
	__aligned_u64 cas;
};
#define KPRIM_SIZE_CACHE_STORE_VER0	56

/* struct kprim_cache_key.flags (TOUCH only) */
#define KPRIM_CACHE_DEFAULT_TTL	(1U << 0)	/* the cache's default TTL */

/**
 * struct kprim_cache_key - a key-only request (KPRIM_IOC_CACHE_DELETE,
 * KPRIM_IOC_CACHE_TOUCH).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	TOUCH: KPRIM_CACHE_DEFAULT_TTL (then @ttl_ns must be 0);
 *		DELETE: must be 0
 * @key:	user pointer to the key
 * @key_len:	1..KPRIM_KEY_MAX
 * @reserved:	must be 0
 * @ttl_ns:	TOUCH: the new relative time to live, 0 = never expires;
 *		DELETE: must be 0
 */
struct kprim_cache_key {
	__u32 size;
	__u32 flags;
	__aligned_u64 key;
	__u32 key_len;
	__u32 reserved;
	__aligned_u64 ttl_ns;
};
#define KPRIM_SIZE_CACHE_KEY_VER0	32

/* struct kprim_cache_incr.flags */
#define KPRIM_CACHE_DECR	(1U << 0)	/* subtract, saturating at 0 */
#define KPRIM_CACHE_INCR_CREATE	(1U << 1)	/* absent: store @initial */

/**
 * struct kprim_cache_incr - atomic counter update (KPRIM_IOC_CACHE_INCR).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	KPRIM_CACHE_DECR, KPRIM_CACHE_INCR_CREATE
 * @key:	user pointer to the key; its value must be a decimal u64
 *		(memcached)
 * @key_len:	1..KPRIM_KEY_MAX
 * @reserved:	must be 0
 * @delta:	amount; incr wraps at 2^64 like memcached
 * @initial:	with KPRIM_CACHE_INCR_CREATE, the value stored when absent
 * @value:	out: the new value
 * @cas:	out: the new version
 */
struct kprim_cache_incr {
	__u32 size;
	__u32 flags;
	__aligned_u64 key;
	__u32 key_len;
	__u32 reserved;
	__aligned_u64 delta;
	__aligned_u64 initial;
	__aligned_u64 value;
	__aligned_u64 cas;
};
#define KPRIM_SIZE_CACHE_INCR_VER0	56

/**
 * struct kprim_cache_info - state (KPRIM_IOC_CACHE_INFO).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @params:	the cache's limits (defaults filled in)
 * @bytes:	key + value bytes stored
 * @entries:	entries stored
 * @hits:	gets that found a live entry
 * @misses:	gets that did not
 * @evictions:	entries dropped to make room or by the shrinker
 * @expirations: entries dropped because their time ran out
 */
struct kprim_cache_info {
	__u32 size;
	__u32 flags;
	struct kprim_cache_params params;
	__aligned_u64 bytes;
	__aligned_u64 entries;
	__aligned_u64 hits;
	__aligned_u64 misses;
	__aligned_u64 evictions;
	__aligned_u64 expirations;
};
#define KPRIM_SIZE_CACHE_INFO_VER0	88

/* Most keys one KPRIM_IOC_CACHE_MGET call takes. */
#define KPRIM_CACHE_MGET_MAX	1024

/**
 * struct kprim_cache_mget_entry - one key of KPRIM_IOC_CACHE_MGET.
 * @key:	in: user pointer to the key
 * @key_len:	in: 1..KPRIM_KEY_MAX
 * @result:	out: 0 (found, value copied); -ENOENT (miss or expired);
 *		-EMSGSIZE (@value_len is below the value's length: nothing
 *		copied, @value_len is set to the needed size); -EINVAL
 *		(@key_len); -EFAULT (@key or @value not accessible); -E2BIG
 *		(bytes beyond the kernel's struct, within entry_size, not
 *		zero)
 * @value:	in: user buffer for the value
 * @value_len:	in: capacity of @value; out: the value's length (on 0 and
 *		-EMSGSIZE)
 * @ttl_ns:	out, on 0: remaining time to live, 0 if the entry does not
 *		expire
 * @cas:	out, on 0: the entry's version, for KPRIM_CACHE_CAS
 *
 * Out fields other than @result are written only as stated; on a miss they
 * keep what the caller put there.
 */
struct kprim_cache_mget_entry {
	__aligned_u64 key;
	__u32 key_len;
	__s32 result;
	__aligned_u64 value;
	__aligned_u64 value_len;
	__aligned_u64 ttl_ns;
	__aligned_u64 cas;
};
#define KPRIM_SIZE_CACHE_MGET_ENTRY_VER0	48

/**
 * struct kprim_cache_mget - look up many keys (KPRIM_IOC_CACHE_MGET).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	no flags defined, must be 0
 * @entries:	user pointer to an array of struct kprim_cache_mget_entry
 * @count:	entries in the array, 1..KPRIM_CACHE_MGET_MAX (0: -EINVAL,
 *		more: -E2BIG)
 * @entry_size:	sizeof(struct kprim_cache_mget_entry) as the caller knows
 *		it, at least KPRIM_SIZE_CACHE_MGET_ENTRY_VER0 (-EINVAL) and at
 *		most a page (-E2BIG); entries are @entry_size apart
 * @reserved:	must be 0
 *
 * memcached's multi-get: each key is looked up exactly as by
 * KPRIM_IOC_CACHE_GET (and counted as a hit or a miss like one), in array
 * order, each at its own instant: the batch is not a snapshot. A key's own
 * problems (bad length, unreadable key, unwritable value buffer, short
 * buffer) are its @result and do not stop the others. The kernel reads
 * the first min(@entry_size, its own size) bytes of each entry and writes
 * them back with the out fields filled in, so callers built against any
 * version work. The work is bounded: the kernel reschedules between keys.
 *
 * Return: the number of entries whose @result is 0; -EINVAL, -E2BIG as
 * above; -EFAULT when the argument or the entry array itself cannot be
 * read or written (entries before the bad one may have been filled in);
 * -EINTR when a fatal signal is pending (the task is dying).
 */
struct kprim_cache_mget {
	__u32 size;
	__u32 flags;
	__aligned_u64 entries;
	__u32 count;
	__u32 entry_size;
	__aligned_u64 reserved;
};
#define KPRIM_SIZE_CACHE_MGET_VER0	32

/**
 * struct kprim_wait_cancel - end waits queued through io_uring
 *	(KPRIM_IOC_WAIT_CANCEL).
 * @size:	sizeof the struct as the caller knows it
 * @flags:	KPRIM_WAIT_CANCEL_ALL: every wait the submitting ring has
 *		queued on the object, whatever its user_data
 * @user_data:	the user_data of the SQE whose wait is to end
 *
 * Only as an io_uring command (an ioctl gets -EOPNOTSUPP), sent on any fd
 * of the object the wait is queued on, through the ring that queued it.
 * Each wait it ends completes with -ECANCELED; its own CQE's result is how
 * many it ended, or -ENOENT for none (already granted, timed out, or never
 * queued). IORING_OP_ASYNC_CANCEL cannot do this: io_uring does not pass
 * it on to IORING_OP_URING_CMD requests.
 */
struct kprim_wait_cancel {
	__u32 size;
	__u32 flags;
	__aligned_u64 user_data;
};
#define KPRIM_SIZE_WAIT_CANCEL_VER0	16

#define KPRIM_WAIT_CANCEL_ALL	(1U << 0)

/* A plain header: ioctls that take no other argument (FLUSH). */
struct kprim_hdr {
	__u32 size;
	__u32 flags;
};
#define KPRIM_SIZE_HDR_VER0	8

#define KPRIM_IOC_MAGIC		0xB9

/* Session fd. */
#define KPRIM_IOC_API		_IOWR(KPRIM_IOC_MAGIC, 0x00, struct kprim_api)
#define KPRIM_IOC_OPEN		_IOW(KPRIM_IOC_MAGIC, 0x01, struct kprim_open)
#define KPRIM_IOC_UNLINK	_IOW(KPRIM_IOC_MAGIC, 0x02, struct kprim_unlink)
#define KPRIM_IOC_LIST		_IOWR(KPRIM_IOC_MAGIC, 0x03, struct kprim_list)

/* Any object fd, as an io_uring command only. */
#define KPRIM_IOC_WAIT_CANCEL	_IOW(KPRIM_IOC_MAGIC, 0x08, struct kprim_wait_cancel)

/* Limiter fd. */
#define KPRIM_IOC_LIMITER_TAKE	_IOWR(KPRIM_IOC_MAGIC, 0x10, struct kprim_limiter_take)
#define KPRIM_IOC_LIMITER_SET	_IOW(KPRIM_IOC_MAGIC, 0x11, struct kprim_limiter_set)
#define KPRIM_IOC_LIMITER_INFO	_IOWR(KPRIM_IOC_MAGIC, 0x12, struct kprim_limiter_info)

/* Semaphore fd. */
#define KPRIM_IOC_SEM_ACQUIRE	_IOW(KPRIM_IOC_MAGIC, 0x20, struct kprim_sem_acquire)
#define KPRIM_IOC_SEM_RELEASE	_IOW(KPRIM_IOC_MAGIC, 0x21, struct kprim_sem_release)
#define KPRIM_IOC_SEM_RESIZE	_IOW(KPRIM_IOC_MAGIC, 0x22, struct kprim_sem_resize)
#define KPRIM_IOC_SEM_INFO	_IOWR(KPRIM_IOC_MAGIC, 0x23, struct kprim_sem_info)

/* Cache fd. */
#define KPRIM_IOC_CACHE_GET	_IOWR(KPRIM_IOC_MAGIC, 0x30, struct kprim_cache_get)
#define KPRIM_IOC_CACHE_STORE	_IOWR(KPRIM_IOC_MAGIC, 0x31, struct kprim_cache_store)
#define KPRIM_IOC_CACHE_DELETE	_IOW(KPRIM_IOC_MAGIC, 0x32, struct kprim_cache_key)
#define KPRIM_IOC_CACHE_TOUCH	_IOW(KPRIM_IOC_MAGIC, 0x33, struct kprim_cache_key)
#define KPRIM_IOC_CACHE_INCR	_IOWR(KPRIM_IOC_MAGIC, 0x34, struct kprim_cache_incr)
#define KPRIM_IOC_CACHE_FLUSH	_IOW(KPRIM_IOC_MAGIC, 0x35, struct kprim_hdr)
#define KPRIM_IOC_CACHE_INFO	_IOWR(KPRIM_IOC_MAGIC, 0x36, struct kprim_cache_info)
#define KPRIM_IOC_CACHE_MGET	_IOW(KPRIM_IOC_MAGIC, 0x37, struct kprim_cache_mget)

#endif /* _UAPI_LINUX_KPRIM_H */
