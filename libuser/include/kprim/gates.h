/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim stage gates: throttle or bound a pipeline stage host-wide with a
 * kernel limiter or semaphore, shared with every other process using the
 * same object.
 *
 *	struct kprim_stage_gate g = kprim_stage_gate_limiter(lim);
 *	struct kprim_stage st = { .fn = work, .out_size = 8, .workers = 4,
 *				  .gate = &g };
 *
 * The gate borrows the handle: keep the limiter or semaphore open, and the
 * gate struct alive, until kprim_pipeline_run() returns.
 */
#ifndef KPRIM_GATES_H
#define KPRIM_GATES_H

#include "kprim/limiter.h"
#include "kprim/pipeline.h"
#include "kprim/sem.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * kprim_stage_gate_limiter() - throttle a stage: every call of the stage
 * function first takes one token of @l, waiting for it (FIFO) until the
 * pipeline is cancelled; nothing is given back.
 *
 * The wait uses the pipeline's context, so cancelling the pipeline (or its
 * deadline) ends a kernel wait at once. A signal does not fail the stage:
 * the wait is resumed for the time left until the context's deadline (a
 * storm of signals does not stretch it). @l must allow a burst of at
 * least 1.
 *
 * Return: the gate; for a NULL @l a gate without @acquire, which
 * kprim_pipeline_run() refuses with -EINVAL.
 */
struct kprim_stage_gate kprim_stage_gate_limiter(struct kprim_limiter *l);

/**
 * kprim_stage_gate_sem() - bound a stage: every call of the stage function
 * holds one permit of @s, so at most the semaphore's permit count of calls
 * run at once across every process sharing @s. The permit is released when
 * the call returns; waiting honours the pipeline's context as above.
 *
 * Return: the gate; for a NULL @s a gate without @acquire (-EINVAL from
 * kprim_pipeline_run()).
 */
struct kprim_stage_gate kprim_stage_gate_sem(struct kprim_sem *s);

#ifdef __cplusplus
}
#endif
#endif /* KPRIM_GATES_H */
