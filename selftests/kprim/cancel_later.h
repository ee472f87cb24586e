/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helper for selftests that end waits through a kprim_ctx: cancel
 * a context from another thread after a delay.
 */
#ifndef KPRIM_CANCEL_LATER_H
#define KPRIM_CANCEL_LATER_H

#include <stdint.h>
#include <unistd.h>
#include "kprim/ctx.h"

struct canceller {
	struct kprim_ctx *ctx;
	uint64_t delay_ns;
};

/* pthread start routine: sleep @delay_ns, then cancel @ctx. */
static inline void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep(c->delay_ns / 1000);
	kprim_ctx_cancel(c->ctx);
	return NULL;
}

#endif /* KPRIM_CANCEL_LATER_H */
