/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - every difference between the kernels we build on (Debian's 6.1
 * and 6.12) lives here and nowhere else. The KPRIM_HAVE_* switches are
 * feature probes of the kernel tree done by kmod/Kbuild, not version
 * numbers: distribution kernels backport.
 */
#ifndef _KPRIM_COMPAT_H
#define _KPRIM_COMPAT_H

#include <linux/ipc_namespace.h>
#include <linux/mm.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/sched.h>

/*
 * IPC namespace scoping. Objects are keyed by the caller's IPC namespace and
 * pin it. put_ipc_ns() is exported to modules only in newer kernels; where
 * it is not, a module cannot pin a namespace, so only the initial IPC
 * namespace is served there (others get -EOPNOTSUPP) and no pin is needed.
 */
#ifdef KPRIM_HAVE_PUT_IPC_NS
#define KPRIM_NS_SCOPED		true

static inline void *kprim_ns_get(void)
{
	return get_ipc_ns(current->nsproxy->ipc_ns);
}

static inline void kprim_ns_put(void *ns)
{
	put_ipc_ns(ns);
}
#else
#define KPRIM_NS_SCOPED		false

static inline void *kprim_ns_get(void)
{
	struct ipc_namespace *ns = current->nsproxy->ipc_ns;

	if (ns->ns.inum != PROC_IPC_INIT_INO)
		return ERR_PTR(-EOPNOTSUPP);
	return ns;
}

static inline void kprim_ns_put(void *ns)
{
}
#endif

/* The namespace of the caller, for comparisons only (no reference). */
static inline void *kprim_ns_current(void)
{
	return current->nsproxy->ipc_ns;
}

/* The user namespace that owns an object's IPC namespace. */
static inline struct user_namespace *kprim_ns_user_ns(const void *ns)
{
	return ((const struct ipc_namespace *)ns)->user_ns;
}

static inline bool kprim_ns_is_initial(const void *ns)
{
	return ((const struct ipc_namespace *)ns)->ns.inum == PROC_IPC_INIT_INO;
}

/* May the caller use kprim at all from its IPC namespace? */
static inline bool kprim_ns_supported(void)
{
	return KPRIM_NS_SCOPED || kprim_ns_is_initial(kprim_ns_current());
}

/*
 * KUnit reaches internal functions through EXPORT_SYMBOL_IF_KUNIT(), which
 * exports only when the kernel has KUnit. The namespace the test module
 * imports became a string literal in 6.13.
 */
#include <kunit/visibility.h>
#ifdef KPRIM_IMPORT_NS_IS_IDENT
#define KPRIM_IMPORT_KUNIT_NS()	MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING)
#else
#define KPRIM_IMPORT_KUNIT_NS()	MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING")
#endif

/*
 * io_uring commands: 6.1 declares struct io_uring_cmd in <linux/io_uring.h>
 * with a pointer to the SQE's command area; later kernels moved it to
 * <linux/io_uring/cmd.h> and point at the whole SQE.
 */
#ifdef KPRIM_HAVE_IO_URING_CMD_H
#include <linux/io_uring/cmd.h>

static inline const void *kprim_uring_cmd_area(struct io_uring_cmd *ioucmd)
{
	return io_uring_sqe_cmd(ioucmd->sqe);
}
#else
#include <linux/io_uring.h>

static inline const void *kprim_uring_cmd_area(struct io_uring_cmd *ioucmd)
{
	return ioucmd->cmd;
}
#endif

/*
 * What a queued io_uring wait (async.c) needs to know of its request: the
 * ring it came from and its user_data (to match KPRIM_IOC_WAIT_CANCEL),
 * and the task that submitted it (where its completion runs). Both
 * kernels define struct io_kiocb in <linux/io_uring_types.h>.
 */
#include <linux/io_uring_types.h>

static inline const void *kprim_uring_cmd_ring(struct io_uring_cmd *ioucmd)
{
	return cmd_to_io_kiocb(ioucmd)->ctx;
}

static inline u64 kprim_uring_cmd_user_data(struct io_uring_cmd *ioucmd)
{
	return cmd_to_io_kiocb(ioucmd)->cqe.user_data;
}

static inline struct task_struct *
kprim_uring_cmd_task(struct io_uring_cmd *ioucmd)
{
	return cmd_to_io_kiocb(ioucmd)->task;
}

/*
 * Cancelling a queued wait when its ring is torn down. Kernels with
 * cancelable uring_cmds (6.7+) call the driver's ->uring_cmd() with
 * IO_URING_F_CANCEL for requests marked cancelable (at ring teardown, and
 * for an exec). 6.1 has no such call; there async.c looks for them
 * (kprim_uring_cmd_orphaned()).
 */
#ifdef KPRIM_HAVE_URING_CMD_CANCELABLE
#define KPRIM_URING_CANCELABLE	true

static inline void kprim_uring_cmd_mark_cancelable(struct io_uring_cmd *ioucmd,
						   unsigned int issue_flags)
{
	io_uring_cmd_mark_cancelable(ioucmd, issue_flags);
}

static inline bool kprim_uring_cmd_is_cancel(unsigned int issue_flags)
{
	return issue_flags & IO_URING_F_CANCEL;
}

static inline bool kprim_uring_cmd_orphaned(struct io_uring_cmd *ioucmd)
{
	return false;
}
#else
#define KPRIM_URING_CANCELABLE	false

static inline void kprim_uring_cmd_mark_cancelable(struct io_uring_cmd *ioucmd,
						   unsigned int issue_flags)
{
}

static inline bool kprim_uring_cmd_is_cancel(unsigned int issue_flags)
{
	return false;
}

/*
 * Must the request be ended: is its ring being torn down, or is its
 * submitter exec()ing? 6.1's exec runs io_uring_task_cancel(), which waits
 * until every request of the task has completed, with tctx->in_idle
 * raised. (A thread's exit raises it too, but that does not wait for
 * requests io_uring does not track, and the request outlives its thread,
 * as on later kernels.) The request holds references on its task, hence
 * its io_uring_task, and on its ring.
 */
static inline bool kprim_uring_cmd_orphaned(struct io_uring_cmd *ioucmd)
{
	struct io_kiocb *req = cmd_to_io_kiocb(ioucmd);
	struct io_uring_task *tctx = READ_ONCE(req->task->io_uring);

	if (percpu_ref_is_dying(&req->ctx->refs))
		return true;
	/* in_execve: do_exit() raises in_idle before it sets PF_EXITING. */
	return tctx && atomic_read(&tctx->in_idle) && req->task->in_execve &&
	       !(READ_ONCE(req->task->flags) & PF_EXITING);
}
#endif

/* ---- shrinker and list_lru API (cache.c) --------------------------- */
/*
 * 6.7 replaced register_shrinker() on a caller-owned struct shrinker with
 * shrinker_alloc()/shrinker_register()/shrinker_free(). Both sides here
 * return a registered, heap-allocated shrinker or NULL. A memcg-aware
 * list_lru is bound to its shrinker's id, which 6.1 hands out only when it
 * registers the shrinker (prealloc_shrinker() is not exported): so on both
 * kernels the shrinker is registered first and its callbacks must cope
 * with a list_lru not initialised yet (cache.c's kprim_cache_lru_ready).
 */
#include <linux/list_lru.h>
#include <linux/shrinker.h>
#include <linux/slab.h>

typedef unsigned long (*kprim_shrink_fn)(struct shrinker *s,
					 struct shrink_control *sc);

#ifdef KPRIM_HAVE_SHRINKER_ALLOC
static inline struct shrinker *kprim_shrinker_create(kprim_shrink_fn count,
						     kprim_shrink_fn scan,
						     unsigned int flags,
						     long batch,
						     const char *name)
{
	struct shrinker *s = shrinker_alloc(flags, "%s", name);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
	s->batch = batch;
	shrinker_register(s);
	return s;
}

static inline void kprim_shrinker_destroy(struct shrinker *s)
{
	shrinker_free(s);
}
#else
static inline struct shrinker *kprim_shrinker_create(kprim_shrink_fn count,
						     kprim_shrink_fn scan,
						     unsigned int flags,
						     long batch,
						     const char *name)
{
	struct shrinker *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
	s->batch = batch;
	s->flags = flags;
	if (register_shrinker(s, "%s", name)) {
		kfree(s);
		return NULL;
	}
	return s;
}

static inline void kprim_shrinker_destroy(struct shrinker *s)
{
	unregister_shrinker(s);
	kfree(s);
}
#endif

/*
 * 6.8 renamed list_lru_add()/list_lru_del() of a slab object (the memory
 * cgroup and node taken from the object) to list_lru_add_obj()/_del_obj()
 * and gave the old names explicit nid and memcg arguments.
 */
#ifdef KPRIM_HAVE_LIST_LRU_ADD_OBJ
static inline bool kprim_list_lru_add_obj(struct list_lru *lru,
					  struct list_head *item)
{
	return list_lru_add_obj(lru, item);
}

static inline bool kprim_list_lru_del_obj(struct list_lru *lru,
					  struct list_head *item)
{
	return list_lru_del_obj(lru, item);
}
#else
static inline bool kprim_list_lru_add_obj(struct list_lru *lru,
					  struct list_head *item)
{
	return list_lru_add(lru, item);
}

static inline bool kprim_list_lru_del_obj(struct list_lru *lru,
					  struct list_head *item)
{
	return list_lru_del(lru, item);
}
#endif
/* ---- end shrinker and list_lru API --------------------------------- */

/*
 * vm_area_struct flags are changed through helpers since 6.3 (the field is
 * const for everyone else); before, by assignment.
 */
#ifdef KPRIM_HAVE_VM_FLAGS_MOD
static inline void kprim_vm_flags_mod(struct vm_area_struct *vma,
				      vm_flags_t set, vm_flags_t clear)
{
	vm_flags_mod(vma, set, clear);
}
#else
static inline void kprim_vm_flags_mod(struct vm_area_struct *vma,
				      vm_flags_t set, vm_flags_t clear)
{
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
}
#endif

#endif /* _KPRIM_COMPAT_H */
