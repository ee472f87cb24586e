/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkprim internals shared by the wrapper files: the one ioctl path and
 * the translation of a (context, timeout) pair into a kernel wait.
 */
#ifndef KPRIM_INTERNAL_H
#define KPRIM_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include "uapi/kprim.h"		/* before kprim.h: it defines the constants */
#include "kprim.h"

/* What the session's handshake said about an object's module. */
#define KPRIM_OBJ_FEATURES_KNOWN	(1U << 0)	/* opened through a session */
#define KPRIM_OBJ_URING_ASYNC		(1U << 1)	/* KPRIM_FEAT_URING_ASYNC */
#define KPRIM_OBJ_LIMITER_PAGE		(1U << 2)	/* KPRIM_FEAT_LIMITER_PAGE */
#define KPRIM_OBJ_SEM_SLOT		(1U << 3)	/* KPRIM_FEAT_SEM_SLOT */

/*
 * An object handle: the kernel object fd, its kind, and KPRIM_OBJ_* (0 for
 * a handle made from a bare fd: nothing is known about the module then).
 */
struct kprim_obj {
	int fd;
	uint32_t kind;
	uint32_t caps;
};

struct kprim {
	int fd;
	uint32_t api_version;
	uint64_t features;
};

/*
 * Functions shared by the library's files but not part of its API: hidden,
 * so libkprim.so does not export them (tools/check-symbols.sh checks that
 * the exports are exactly the public headers' functions).
 */
#define KPRIM_INTERNAL	__attribute__((visibility("hidden")))

struct kprim_limiter {
	struct kprim_obj o;
	struct kprim_limiter_page *page;	/* mapped state page, or NULL */
};
struct kprim_sem {
	struct kprim_obj o;
	struct kprim_sem_slot *slot;		/* the fd's mapped slot, or NULL */
};
struct kprim_cache {
	struct kprim_obj o;
	bool mget;	/* the module has KPRIM_IOC_CACHE_MGET (handshake) */
};

/*
 * An object's page (mmap of its fd at offset 0: the limiter's state page,
 * a semaphore fd's slot), or NULL: the module lacks @cap (KPRIM_OBJ_*;
 * asked anyway for a handle made from a bare fd), the environment
 * variable @off_env is set (not to "" or "0"), or the mmap() failed.
 */
KPRIM_INTERNAL
void *kprim_obj_page_map(const struct kprim_obj *o, uint32_t cap,
			 const char *off_env);
KPRIM_INTERNAL
void kprim_obj_page_unmap(void *page);

/* The limiter's state page, if this process may use it (limiter_page.c). */
KPRIM_INTERNAL
struct kprim_limiter_page *kprim_limiter_page_map(const struct kprim_obj *o);

/* ioctl() as 0/positive or a negative errno; restarts nothing. */
static inline long kprim_do_ioctl(int fd, unsigned long cmd, void *arg)
{
	long ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

KPRIM_INTERNAL
int kprim_obj_open(struct kprim *k, uint32_t kind, const char *name,
		   unsigned int flags, unsigned int mode,
		   struct kprim_open *args, struct kprim_obj *out);
KPRIM_INTERNAL
void kprim_obj_close(struct kprim_obj *o);

/*
 * Fill @w for a wait bounded by @timeout_ns and by @ctx (deadline and
 * cancellation). Returns 0 or a negative errno; -ECANCELED/-ETIMEDOUT
 * when @ctx is already done.
 */
KPRIM_INTERNAL
int kprim_wait_prepare(struct kprim_wait *w, struct kprim_ctx *ctx,
		       uint64_t timeout_ns);
/* Map a kernel wait result to what the caller asked for. */
KPRIM_INTERNAL
int kprim_wait_result(long ret, struct kprim_ctx *ctx);

/*
 * kprim__fork_gen() - how many fork()s separate this process from the
 * first one (ctx.c counts them in an atfork child handler). State that
 * must not be used across fork() records it and compares.
 */
KPRIM_INTERNAL
unsigned int kprim__fork_gen(void);

#endif /* KPRIM_INTERNAL_H */
