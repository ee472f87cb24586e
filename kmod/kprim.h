/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - internal interfaces shared by the files of the module.
 */
#ifndef _KPRIM_H
#define _KPRIM_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/fs.h>
#include <linux/poll.h>
#include <linux/seq_file.h>
#include <linux/wait.h>
#include <linux/ioctl.h>
#include <linux/fault-inject-usercopy.h>
#include <linux/uaccess.h>
#include "compat.h"
#include "uapi/kprim.h"

struct kprim_object;
struct kprim_handle;
struct kprim_waitq;
struct kprim_async;
struct io_uring_cmd;
struct page;

/**
 * struct kprim_kind_ops - what each object kind implements.
 * @kind:	enum kprim_kind
 * @name:	kind name for fdinfo and kprimctl ("limiter")
 * @fd_name:	name of the object fds' anon inode ("[kprim-limiter]")
 * @check:	validate the kind's parameters and open flags in @args: every
 *		flag and parameter word it does not use must be zero
 * @create:	allocate the kind's state in obj->priv from parameters that
 *		passed @check; nothing may be visible to other callers yet
 * @destroy:	free obj->priv; called once, with no handle left
 * @open_handle: optional: set up per-fd state in handle->priv
 * @release_handle: optional: give back what the fd holds (close, exit)
 * @ioctl:	the kind's ioctls on an object fd
 * @poll:	poll() on an object fd
 * @show_fdinfo: kind-specific lines of /proc/<pid>/fdinfo/<fd>
 * @fill_info:	kind-specific part of a LIST entry
 * @wait_cmd:	optional: run @cmd, which may wait, for an io_uring request
 *		(uring.c): a wait is queued without a thread (async.c) and the
 *		call returns -EIOCBQUEUED; -ENOIOCTLCMD for a command that
 *		never waits, which then goes to @ioctl
 * @waitq:	optional: the object's waiter queue (KPRIM_IOC_WAIT_CANCEL)
 * @map_page:	optional: the page an mmap() of the fd shows (created by
 *		the first call; the same page for the handle's life after),
 *		or an ERR_PTR; without it, mmap() fails with -ENODEV
 *		(object.c). May sleep: called from ->mmap (mmap_lock held
 *		for writing) and from the fault handler (held for reading)
 */
struct kprim_kind_ops {
	u32 kind;
	const char *name;
	const char *fd_name;
	int (*check)(const struct kprim_open *args);
	int (*create)(struct kprim_object *obj, const struct kprim_open *args);
	void (*destroy)(struct kprim_object *obj);
	int (*open_handle)(struct kprim_handle *h);
	void (*release_handle)(struct kprim_handle *h);
	long (*ioctl)(struct kprim_handle *h, unsigned int cmd,
		      void __user *arg);
	__poll_t (*poll)(struct kprim_handle *h, struct file *file,
			 poll_table *pt);
	void (*show_fdinfo)(struct kprim_handle *h, struct seq_file *m);
	void (*fill_info)(struct kprim_object *obj, struct kprim_obj_info *info);
	long (*wait_cmd)(struct kprim_handle *h, unsigned int cmd,
			 void __user *arg, struct io_uring_cmd *ioucmd,
			 unsigned int issue_flags);
	struct kprim_waitq *(*waitq)(struct kprim_object *obj);
	struct page *(*map_page)(struct kprim_handle *h);
};

/**
 * struct kprim_object - one limiter, semaphore or cache.
 * @ref:	every open fd holds one, and so does the name of a
 *		persistent object; the last put runs under the registry lock
 * @ops:	the kind
 * @id:		unique while the module is loaded
 * @ns:		IPC namespace the object lives in (pinned where possible)
 * @uid:	owner
 * @quota_uid:	whose quota it is charged to (the owner, or the user that
 *		created the owner's user namespace, object.c)
 * @gid:	owner group
 * @mode:	permission bits
 * @transient:	the name goes with the last fd
 * @linked:	the name is in the registry; kprim_registry_lock
 * @found_by_name: an open found the object by its name (so it is not only
 *		its creator's: a failed creating open leaves the name);
 *		kprim_registry_lock
 * @name_node:	in the registry's name table; kprim_registry_lock
 * @name_len:	0 for anonymous objects
 * @name:	NUL terminated
 * @reserved_bytes: memory reserved against the owner's quota;
 *		kprim_registry_lock
 * @priv:	the kind's state
 *
 * Fields without a lock named are set at creation and never change.
 */
struct kprim_object {
	struct kref ref;
	const struct kprim_kind_ops *ops;
	u64 id;
	void *ns;
	kuid_t uid;
	kuid_t quota_uid;
	kgid_t gid;
	umode_t mode;
	bool transient;
	bool linked;
	bool found_by_name;
	struct hlist_node name_node;
	u32 name_len;
	char name[KPRIM_NAME_MAX + 1];
	u64 reserved_bytes;
	void *priv;
};

/**
 * struct kprim_handle - per-fd state of an object fd.
 * @obj:	the object (one reference)
 * @tgid:	the process that opened it (a reference), for holder reports
 *		translated into the reader's pid namespace
 * @priv:	the kind's per-fd state
 */
struct kprim_handle {
	struct kprim_object *obj;
	struct pid *tgid;
	void *priv;
};

extern const struct kprim_kind_ops kprim_limiter_ops;
extern const struct kprim_kind_ops kprim_sem_ops;
/* Their ioctl handlers, called directly by the object fd's dispatch. */
long kprim_limiter_ioctl(struct kprim_handle *h, unsigned int cmd,
			 void __user *arg);
long kprim_sem_ioctl(struct kprim_handle *h, unsigned int cmd,
		     void __user *arg);
extern const struct kprim_kind_ops kprim_cache_ops;
long kprim_cache_ioctl(struct kprim_handle *h, unsigned int cmd,
		       void __user *arg);

/*
 * Shared pages (the limiter's state page, a semaphore fd's slot): the
 * kernel changes words a process can write at any moment, under a
 * spinlock with interrupts off, so each change must be one locked
 * instruction (xchg, lock bts) that completes whatever the process does.
 * On load-linked/store-conditional architectures such atomics are loops
 * a writer can keep failing; the pages are offered on x86-64 only, where
 * libkprim uses them too.
 */
#define KPRIM_SHARED_PAGES	IS_ENABLED(CONFIG_X86_64)

/* object.c */
void kprim_registry_exit(void);
long kprim_obj_open(const struct kprim_open __user *uargs);
long kprim_obj_unlink(const struct kprim_unlink __user *uargs);
long kprim_obj_list(struct kprim_list __user *uargs);
bool kprim_obj_owner_or_admin(const struct kprim_object *obj);
bool kprim_is_object_file(const struct file *file);
int kprim_obj_reserve_bytes(struct kprim_object *obj, u64 bytes);
unsigned int kprim_max_objects(void);
unsigned int kprim_max_objects_per_user(void);

/* uring.c */
int kprim_obj_uring_cmd(struct io_uring_cmd *ioucmd, unsigned int issue_flags);

/**
 * struct kprim_uring_pdu - our part of an io_uring command (ioucmd->pdu).
 * @async:	the wait of a request that waits without a thread (async.c)
 *
 * A recycled request inherits the pdu of the one before it: @async is
 * valid only while the current request waits.
 */
struct kprim_uring_pdu {
	struct kprim_async *async;
};

/* uargs.c */
int __kprim_copy_args(void *dst, size_t ksize, size_t min_size,
		      const void __user *src);
int kprim_copy_args_out(void __user *dst, const void *src, size_t ksize);

/**
 * kprim_copy_args() - copy a versioned argument struct from userspace.
 * @dst:	kernel struct, @ksize bytes
 * @ksize:	size of the struct this module knows (a constant)
 * @min_size:	first published size of the struct
 * @src:	user pointer; its first __u32 is the caller's size
 *
 * Inline, for the hot commands: a caller built against this module's own
 * struct is copied a u64 at a time in one user access window, the size
 * word with the rest (it is read once). Anything else (another size, a
 * fault on the first word, a range access_ok() refuses) takes the general
 * path, __kprim_copy_args(), which gives the same results as before.
 * Fault injection (fail_usercopy) draws once per copy, as for
 * copy_from_user().
 *
 * Return: as __kprim_copy_args().
 */
static __always_inline int kprim_copy_args(void *dst, size_t ksize,
					   size_t min_size,
					   const void __user *src)
{
	const u64 __user *s = src;
	u64 *d = dst;
	size_t i;

	if (!IS_ALIGNED(ksize, sizeof(u64)) ||
	    !user_read_access_begin(src, ksize))
		goto general;
	unsafe_get_user(d[0], &s[0], general_end);
	if (*(u32 *)dst != ksize)
		goto general_end;
	if (IS_ENABLED(CONFIG_FAULT_INJECTION_USERCOPY)) {
		/* No calls inside the window. */
		user_read_access_end();
		if (should_fail_usercopy() ||
		    !user_read_access_begin(src, ksize))
			return -EFAULT;
	}
	for (i = 1; i < ksize / sizeof(u64); i++)
		unsafe_get_user(d[i], &s[i], efault);
	user_read_access_end();
	return 0;

efault:
	user_read_access_end();
	return -EFAULT;
general_end:
	user_read_access_end();
general:
	return __kprim_copy_args(dst, ksize, min_size, src);
}

/*
 * Commands are matched on magic, number and direction; the size bits are
 * not compared because each struct's own size field is authoritative.
 */
#define KPRIM_CMD(cmd)	((cmd) & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT))

/* wait.c */

/**
 * struct kprim_waiter - one blocked request in an object's FIFO.
 * @node:	in the object's waiter list, under the object's lock
 * @task:	the sleeping task
 * @n:		how much it asks for (tokens, permits)
 * @granted:	set by the granter, under the object's lock, after it has
 *		dequeued the waiter and accounted the grant to it
 * @result:	0 for a real grant; the error of a request the owner had to
 *		refuse while it waited (kprim_waitq_fail())
 * @holder:	the kind's per-fd record the grant is accounted to
 * @async:	NULL for a sleeping task; for an io_uring request that holds
 *		no thread, its wait (async.c), which a grant completes
 *		instead of waking @task
 * @queued_at:	when kprim_waitq_add() queued it (ktime ns; tracepoints)
 */
struct kprim_waiter {
	struct list_head node;
	struct task_struct *task;
	u64 n;
	bool granted;
	int result;
	void *holder;
	struct kprim_async *async;
	u64 queued_at;
};

/**
 * struct kprim_waitq - a FIFO of waiters protected by an irq-safe lock.
 * @lock:	protects @waiters and the owner's state
 * @waiters:	struct kprim_waiter, oldest first
 * @nr_waiters:	length of @waiters
 * @queued:	sum of the waiters' n, saturating at U64_MAX
 * @obj:	the object it belongs to, for the tracepoints (set by the
 *		kind's ->create; NULL for a KUnit object); immutable
 */
struct kprim_waitq {
	spinlock_t lock;
	struct list_head waiters;
	u64 nr_waiters;
	u64 queued;
	const struct kprim_object *obj;
};

/**
 * struct kprim_cancel - a watch on a cancel eventfd during one wait.
 * @file:	the eventfd (a reference), NULL when the wait has none
 * @wqh:	the eventfd's wait queue our @entry is on
 * @entry:	woken by the eventfd when it is signalled
 * @pt:		used once, to find @wqh through vfs_poll()
 * @task:	the waiting task
 * @fire:	NULL: wake @task when the eventfd fires; otherwise called
 *		instead, under the eventfd's queue lock (an io_uring wait,
 *		async.c)
 * @fired:	the eventfd became readable: the wait is cancelled
 */
struct kprim_cancel {
	struct file *file;
	wait_queue_head_t *wqh;
	wait_queue_entry_t entry;
	poll_table pt;
	struct task_struct *task;
	void (*fire)(struct kprim_cancel *c);
	bool fired;
};

/**
 * struct kprim_wait_ctx - a validated struct kprim_wait.
 * @deadline:	absolute CLOCK_MONOTONIC deadline, KTIME_MAX for none
 * @nonblock:	the caller does not want to wait (timeout 0)
 * @cancel:	the cancel eventfd watch (file == NULL: none)
 */
struct kprim_wait_ctx {
	ktime_t deadline;
	bool nonblock;
	struct kprim_cancel cancel;
};

void kprim_waitq_init(struct kprim_waitq *q);
int kprim_wait_ctx_init(struct kprim_wait_ctx *ctx, const struct kprim_wait *w);
int kprim_wait_ctx_init_fire(struct kprim_wait_ctx *ctx,
			     const struct kprim_wait *w,
			     void (*fire)(struct kprim_cancel *c));
void kprim_wait_ctx_destroy(struct kprim_wait_ctx *ctx);
void kprim_waitq_add(struct kprim_waitq *q, struct kprim_waiter *w);
void kprim_waitq_del(struct kprim_waitq *q, struct kprim_waiter *w);
void kprim_waitq_grant(struct kprim_waitq *q, struct kprim_waiter *w);
void kprim_waitq_fail(struct kprim_waitq *q, struct kprim_waiter *w, int err);
int kprim_wait_for_grant(struct kprim_waitq *q, struct kprim_waiter *w,
			 struct kprim_wait_ctx *ctx,
			 void (*abandoned)(void *owner), void *owner);
int kprim_wait_restart(const struct kprim_wait_ctx *ctx,
		       struct kprim_wait __user *uw);

/* async.c */
struct kprim_async *kprim_async_new(struct io_uring_cmd *ioucmd,
				    unsigned int issue_flags,
				    struct kprim_waitq *q,
				    const struct kprim_wait *wait,
				    void __user *uarg,
				    void (*abandoned)(void *owner),
				    void *owner);
void kprim_async_set_finish(struct kprim_async *a,
			    int (*finish)(struct kprim_async *a, int result));
void *kprim_async_owner(const struct kprim_async *a);
void __user *kprim_async_uarg(const struct kprim_async *a);
u64 kprim_async_n(const struct kprim_async *a);
int kprim_async_queue_locked(struct kprim_async *a, u64 n, void *holder);
int kprim_async_discard(struct kprim_async *a, int ret,
			unsigned int issue_flags);
void kprim_async_end_locked(struct kprim_async *a, int result);
void kprim_async_uring_cancel(struct io_uring_cmd *ioucmd,
			      unsigned int issue_flags);
int kprim_async_cancel_cmd(struct kprim_handle *h, void __user *uarg,
			   struct io_uring_cmd *ioucmd);
void kprim_async_exit(void);

#endif /* _KPRIM_H */
