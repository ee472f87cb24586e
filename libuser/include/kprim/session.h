/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim session: the connection to /dev/kprim through which kernel objects
 * (limiters, semaphores, caches) are created, opened, listed and unlinked.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure, never -1 with errno.
 */
#ifndef KPRIM_SESSION_H
#define KPRIM_SESSION_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The kernel ABI version this library speaks. */
#define KPRIM_LIB_API_VERSION	1

/*
 * Object open flags (same values as the kernel's KPRIM_OPEN_*, but for
 * KPRIM_ANY_OWNER, which only the library knows).
 *
 * Ownership. A named object belongs to whoever created it first; its owner
 * may change its parameters, flush it and unlink it. So that nobody can
 * create an expected name first (with mode 0666) and own what the caller
 * then stores in it, kprim_limiter_open(), kprim_sem_open() and
 * kprim_cache_open() given KPRIM_CREATE and a name open "mine or fail":
 * an existing object whose owner is not the caller's effective uid is
 * refused with -EPERM, root included (KPRIM_OWNED, added for the caller;
 * one the caller may not open at all stays -EACCES). Pass
 * KPRIM_ANY_OWNER to join an object another user may have created (a
 * name shared between users on purpose). Without KPRIM_CREATE the object
 * is opened whoever owns it, unless KPRIM_OWNED is given. Modules without
 * KPRIM_FEAT_OPEN_OWNED cannot check: then KPRIM_OWNED, given or implied,
 * is -EOPNOTSUPP.
 *
 * Fork and exec. Session and object fds are close-on-exec: a program the
 * caller execs does not get them (KPRIM_INHERIT keeps an object fd open
 * across exec). A fork()ed child shares the parent's fds and handles: both
 * refer to the same open file, and what it holds (semaphore permits) is
 * held by that file, for both processes. It is returned only when the last
 * copy of the fd is closed, in whichever process (exit closes a process's
 * copies), not when the handle that acquired it is closed in one of them.
 * A child that must not keep a parent's permits closes its copies (or
 * execs). After fork() the child may go on using the struct kprim and
 * handles it inherited (its own copies of them, on the shared fds);
 * closing one in the child closes only the child's copy of the fd.
 */
#define KPRIM_CREATE		(1U << 0)	/* create when absent */
#define KPRIM_EXCL		(1U << 1)	/* with CREATE: fail if present */
#define KPRIM_TRANSIENT		(1U << 2)	/* gone with its last handle */
#define KPRIM_CLOEXEC		(1U << 3)	/* close-on-exec (the default) */
#define KPRIM_OWNED		(1U << 5)	/* -EPERM unless the caller owns it */
#define KPRIM_INHERIT		(1U << 6)	/* keep the object fd across exec */
#define KPRIM_ANY_OWNER		(1U << 31)	/* with CREATE: no implied OWNED */

/* Object kinds, as reported by kprim_list(). */
#define KPRIM_LIMITER_KIND	1
#define KPRIM_SEM_KIND		2
#define KPRIM_CACHE_KIND	3

struct kprim;

/**
 * kprim_open() - connect to the kprim module and check its API version.
 * @out:	the session
 *
 * Return: 0; -ENODEV when the module is not loaded (no /dev/kprim);
 * -EACCES when the device may not be opened; -EPROTO when the module speaks
 * another API version than this library; -ENOMEM.
 */
int kprim_open(struct kprim **out);

/** kprim_close() - end a session; objects opened through it stay open. */
void kprim_close(struct kprim *k);

/**
 * kprim_api_version() - what the module reported at kprim_open().
 * @k:		session
 * @features:	out (may be NULL): the module's feature bits
 *
 * Return: the module's API version, or -EINVAL for a NULL session.
 */
int kprim_api_version(struct kprim *k, uint64_t *features);

/**
 * kprim_unlink() - remove a named object's name (open handles keep it).
 * Return: 0, -EINVAL, -ENOENT, -EPERM (not the owner), -ENAMETOOLONG.
 */
int kprim_unlink(struct kprim *k, int kind, const char *name);

/** struct kprim_object_info - one object as kprim_list() reports it. */
struct kprim_object_info {
	uint64_t id;
	int kind;			/* KPRIM_*_KIND */
	const char *kind_name;		/* "limiter", "sem", "cache" */
	const char *name;		/* "" for anonymous objects */
	unsigned int mode;
	unsigned int uid, gid;
	int transient, unlinked;
	uint64_t refs;
	/* Kind-specific numbers, in a fixed order per kind:
	 * limiter: rate, period_ns, burst, initial, tokens, waiters,
	 *          admitted, throttled
	 * sem:     permits, available, held, waiters, holders, acquired
	 * cache:   max_bytes, max_entries, max_value, default_ttl_ns, bytes,
	 *          entries, hits, misses, evictions, expirations */
	uint64_t v[10];
	int nv;
};

/**
 * kprim_list() - call @fn for every object the caller may read.
 * @k:		session
 * @fn:		callback; a non-zero return stops the walk and is returned
 * @arg:	passed to @fn
 *
 * Return: 0, @fn's non-zero value, or a negative errno.
 */
int kprim_list(struct kprim *k,
	       int (*fn)(const struct kprim_object_info *info, void *arg),
	       void *arg);

#ifdef __cplusplus
}
#endif
#endif /* KPRIM_SESSION_H */
