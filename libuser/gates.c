// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pipeline stage gates over kprim kernel objects.
 */
#include <errno.h>

#include "kprim/gates.h"

/*
 * A signal interrupting the kernel wait (-EINTR) is not the pipeline's
 * business: wait again. The context is re-checked by every call, so a
 * cancellation that raced with the signal still ends the loop.
 */
static int limiter_acquire(void *arg, struct kprim_ctx *ctx)
{
	int rc;

	do
		rc = kprim_limiter_take(arg, 1, ctx, KPRIM_TIMEOUT_INFINITE,
					NULL);
	while (rc == -EINTR);
	return rc;
}

static int sem_acquire(void *arg, struct kprim_ctx *ctx)
{
	int rc;

	do
		rc = kprim_sem_acquire(arg, 1, ctx, KPRIM_TIMEOUT_INFINITE);
	while (rc == -EINTR);
	return rc;
}

static void sem_release(void *arg)
{
	/* Cannot fail: this handle took the permit in sem_acquire(). */
	kprim_sem_release(arg, 1);
}

struct kprim_stage_gate kprim_stage_gate_limiter(struct kprim_limiter *l)
{
	struct kprim_stage_gate g = {
		.acquire = l ? limiter_acquire : NULL,
		.release = NULL,	/* tokens are spent, not borrowed */
		.arg = l,
	};

	return g;
}

struct kprim_stage_gate kprim_stage_gate_sem(struct kprim_sem *s)
{
	struct kprim_stage_gate g = {
		.acquire = s ? sem_acquire : NULL,
		.release = s ? sem_release : NULL,
		.arg = s,
	};

	return g;
}
