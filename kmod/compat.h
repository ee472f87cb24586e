/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kprim - every difference between the kernels we build on (Debian's 6.1
 * and 6.12) lives here and nowhere else.
 */
#ifndef _KPRIM_COMPAT_H
#define _KPRIM_COMPAT_H

#include <linux/version.h>
#include <linux/ipc_namespace.h>
#include <linux/nsproxy.h>
#include <linux/proc_ns.h>
#include <linux/sched.h>

/*
 * IPC namespace scoping. Objects are keyed by the caller's IPC namespace and
 * pin it. put_ipc_ns() is exported to modules only in newer kernels; where
 * it is not, a module cannot pin a namespace, so only the initial IPC
 * namespace is served there (others get -EOPNOTSUPP) and no pin is needed.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
static inline void *kprim_ns_get(void)
{
	return get_ipc_ns(current->nsproxy->ipc_ns);
}

static inline void kprim_ns_put(void *ns)
{
	put_ipc_ns(ns);
}
#else
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

/*
 * KUnit reaches internal functions through a namespaced export that exists
 * only when the kernel has KUnit.
 */
#if IS_ENABLED(CONFIG_KUNIT)
#include <kunit/visibility.h>
#define KPRIM_EXPORT_IF_KUNIT(sym)	EXPORT_SYMBOL_IF_KUNIT(sym)
/* The namespace became a string literal in 6.13. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 13, 0)
#define KPRIM_IMPORT_KUNIT_NS()	MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING")
#else
#define KPRIM_IMPORT_KUNIT_NS()	MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING)
#endif
#else
#define KPRIM_EXPORT_IF_KUNIT(sym)
#endif

/* ---- shrinker API (cache.c) ---------------------------------------- */
/*
 * 6.7 replaced register_shrinker() on a caller-owned struct shrinker with
 * shrinker_alloc()/shrinker_register()/shrinker_free(). Both sides here
 * return a registered, heap-allocated shrinker or NULL.
 */
#include <linux/shrinker.h>
#include <linux/slab.h>

typedef unsigned long (*kprim_shrink_fn)(struct shrinker *s,
					 struct shrink_control *sc);

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0)
static inline struct shrinker *kprim_shrinker_create(kprim_shrink_fn count,
						     kprim_shrink_fn scan,
						     const char *name)
{
	struct shrinker *s = shrinker_alloc(0, "%s", name);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
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
						     const char *name)
{
	struct shrinker *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (!s)
		return NULL;
	s->count_objects = count;
	s->scan_objects = scan;
	s->seeks = DEFAULT_SEEKS;
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
/* ---- end shrinker API ---------------------------------------------- */

#endif /* _KPRIM_COMPAT_H */
