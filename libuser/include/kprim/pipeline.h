/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kprim_pipeline - source -> stages -> sink over bounded kprim channels.
 *
 * The source runs in its own thread, each stage in @workers threads
 * (fan-out) reading one shared input channel and writing one shared
 * output channel (fan-in), and the sink in the caller's thread. With
 * @ordered the sink sees items in source order (a bounded reorder window
 * keeps memory fixed); otherwise in completion order.
 *
 * The first error (from a callback, a gate, or the caller's ctx) cancels
 * the whole pipeline; kprim_pipeline_run() joins every thread before it
 * returns, in all cases.
 *
 * Every callback gets the pipeline's context (as errgroup hands its ctx to
 * every task): a child of the caller's, with its deadline, cancelled by the
 * first error, the caller's cancel or an early stop of the sink. A callback
 * that blocks or runs long should wait on it (pass it to kprim calls, or
 * poll kprim_ctx_done()), or the pipeline cannot end before the callback
 * returns. Once the context has ended, a callback's error is taken as the
 * consequence of the cancellation: it is neither counted nor returned. The
 * context is valid during the call only.
 */
#ifndef KPRIM_PIPELINE_H
#define KPRIM_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "kprim/ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Positive callback returns (negative ones are errors). */
#define KPRIM_PIPE_OK	0
#define KPRIM_PIPE_END	1	/* source: no more items */
#define KPRIM_PIPE_SKIP	1	/* stage: drop this item (a filter) */
#define KPRIM_PIPE_STOP	1	/* sink: stop early, not an error */

/* Limits (bigger values give -EINVAL). */
#define KPRIM_PIPE_MAX_STAGES	64
#define KPRIM_PIPE_MAX_WORKERS	256
#define KPRIM_PIPE_MAX_ITEM	((size_t)1 << 20)

/*
 * The callbacks: @arg is the one given with the callback, @ctx the
 * pipeline's context (see above).
 */
/* Write the next item to @out; return 0, KPRIM_PIPE_END or -errno. */
typedef int (*kprim_source_fn)(void *arg, struct kprim_ctx *ctx, void *out);
/* Map @in to @out; return 0, KPRIM_PIPE_SKIP or -errno. Runs concurrently
 * in all workers of the stage. */
typedef int (*kprim_stage_fn)(void *arg, struct kprim_ctx *ctx,
			      const void *in, void *out);
/* Consume @item; return 0, KPRIM_PIPE_STOP or -errno. */
typedef int (*kprim_sink_fn)(void *arg, struct kprim_ctx *ctx,
			     const void *item);

/**
 * struct kprim_stage_gate - bounds or throttles one stage.
 * @acquire:	called by a worker before the stage function; may block,
 *		must honour @ctx; returns 0 or -errno (an error fails the
 *		pipeline unless it is the pipeline's own cancellation)
 * @release:	called after the stage function when acquire succeeded
 *		(may be NULL)
 *
 * A kprim semaphore (acquire/release) bounds a stage host-wide, a kprim
 * limiter (acquire = take, no release) throttles it: kprim/gates.h makes
 * these gates (kprim_stage_gate_sem(), kprim_stage_gate_limiter()).
 */
struct kprim_stage_gate {
	int (*acquire)(void *arg, struct kprim_ctx *ctx);
	void (*release)(void *arg);
	void *arg;
};

/**
 * struct kprim_stage - one stage.
 * @fn, @arg:	the stage function
 * @out_size:	size of the items it produces (1..KPRIM_PIPE_MAX_ITEM)
 * @workers:	worker threads (1..KPRIM_PIPE_MAX_WORKERS)
 * @gate:	optional
 */
struct kprim_stage {
	kprim_stage_fn fn;
	void *arg;
	size_t out_size;
	unsigned int workers;
	const struct kprim_stage_gate *gate;
};

/**
 * struct kprim_pipeline - what to run.
 * @item_size:	size of the source's items (1..KPRIM_PIPE_MAX_ITEM)
 * @buffer:	capacity of each channel between threads (0 = unbuffered,
 *		at most KPRIM_CHAN_CAP_MAX)
 * @ordered:	deliver to the sink in source order
 */
struct kprim_pipeline {
	kprim_source_fn source;
	void *source_arg;
	size_t item_size;
	const struct kprim_stage *stages;
	size_t nstages;
	kprim_sink_fn sink;
	void *sink_arg;
	size_t buffer;
	int ordered;
};

/**
 * struct kprim_pipeline_result - what happened.
 * @err:	first error (as returned), 0 if none
 * @nerrors:	errors reported by callbacks and gates (the cancellation
 *		they cause in other threads is not counted, nor any error
 *		returned after the pipeline's context ended)
 * @produced:	items the source produced
 * @delivered:	items the sink accepted
 * @stopped:	the sink returned KPRIM_PIPE_STOP
 */
struct kprim_pipeline_result {
	int err;
	unsigned int nerrors;
	uint64_t produced;
	uint64_t delivered;
	int stopped;
};

/**
 * kprim_pipeline_run() - run @p to completion.
 * @ctx:	optional; cancelling it cancels the pipeline
 * @res:	optional result details
 *
 * Return: 0 (all items done, or the sink stopped early), the first error,
 * kprim_ctx_err(@ctx) if @ctx ended it, -EINVAL for a bad description (a
 * NULL callback, a size, count or @buffer out of its limits; nothing runs
 * then), -ENOMEM or a pthread_create() errno (then nothing was left
 * running).
 */
int kprim_pipeline_run(const struct kprim_pipeline *p, struct kprim_ctx *ctx,
		       struct kprim_pipeline_result *res);

#ifdef __cplusplus
}
#endif

#endif /* KPRIM_PIPELINE_H */
