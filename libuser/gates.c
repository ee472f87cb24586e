// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pipeline stage gates over kprim kernel objects.
 */
#include <errno.h>

#include "kprim/gates.h"

typedef int (*gate_wait_fn)(void *arg, struct kprim_ctx *ctx,
			    uint64_t timeout_ns);

/*
 * Wait until the gate opens or @ctx ends. A signal interrupting the
 * kernel wait (-EINTR) is not the pipeline's business: wait again, but
 * only for the time left until the deadline fixed once before the first
 * wait (CLOCK_MONOTONIC, the kernel's clock for timeouts), never a fresh
 * full timeout, so a signal storm cannot stretch the wait. The context is
 * re-checked by every call, so a cancellation that raced with the signal
 * still ends the loop.
 */
static int gate_wait(gate_wait_fn wait, void *arg, struct kprim_ctx *ctx)
{
	uint64_t deadline = kprim_ctx_deadline_ns(ctx), left, now;
	int rc;

	for (;;) {
		left = KPRIM_TIMEOUT_INFINITE;
		if (deadline != KPRIM_NO_DEADLINE) {
			now = kprim_now_ns();
			if (now >= deadline) {
				/* kprim_ctx_err() sees the deadline too. */
				rc = ctx ? kprim_ctx_err(ctx) : 0;
				return rc ? rc : -ETIMEDOUT;
			}
			left = deadline - now;
		}
		rc = wait(arg, ctx, left);
		if (rc != -EINTR)
			return rc;
	}
}

static int limiter_wait(void *arg, struct kprim_ctx *ctx, uint64_t timeout_ns)
{
	return kprim_limiter_take(arg, 1, ctx, timeout_ns, NULL);
}

static int limiter_acquire(void *arg, struct kprim_ctx *ctx)
{
	return gate_wait(limiter_wait, arg, ctx);
}

static int sem_wait(void *arg, struct kprim_ctx *ctx, uint64_t timeout_ns)
{
	return kprim_sem_acquire(arg, 1, ctx, timeout_ns);
}

static int sem_acquire(void *arg, struct kprim_ctx *ctx)
{
	return gate_wait(sem_wait, arg, ctx);
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
