// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Pipelines: one thread for the source, @workers threads per stage, the
 * sink in the caller. Channel i feeds stage i; the last stage's workers
 * share the last channel (fan-in), and the last worker of a stage to
 * finish closes its output, so "closed" flows downstream as end-of-input.
 *
 * Cancellation: all blocking calls use one internal child ctx, and every
 * callback gets it too; the first error cancels it, which unblocks every
 * thread (callbacks included, if they wait on it), and run() joins them
 * all. An error once the ctx has ended is a consequence, not another one.
 *
 * Order: every item carries its source sequence number. In ordered mode a
 * dropped (filtered) item still travels as a tombstone so the sink can tell
 * a gap from a late item, and the source needs a token per item in flight;
 * tokens come back as the sink delivers in order, which bounds the reorder
 * ring to the number of tokens.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kprim/chan.h"
#include "kprim/pipeline.h"

/* Prefix of every item in a channel; 16 bytes keep payloads aligned. */
struct item_hdr {
	uint64_t seq;
	uint32_t tombstone;
	uint32_t pad;
};

#define HDR	sizeof(struct item_hdr)
#define WINDOW_MAX	4096

struct run {
	const struct kprim_pipeline *p;
	struct kprim_ctx *ctx;		/* internal, child of the caller's */
	struct kprim_chan **ch;		/* nstages + 1 */
	struct kprim_chan *tokens;	/* ordered mode only */
	size_t window;
	atomic_int err;
	atomic_uint nerrors;
	atomic_uint *live;		/* per stage: workers still running */
	uint64_t produced;
};

struct worker {
	struct run *r;
	size_t stage;
	pthread_t tid;
};

static size_t in_size(const struct kprim_pipeline *p, size_t stage)
{
	return stage ? p->stages[stage - 1].out_size : p->item_size;
}

/* Record an error and cancel everything; the first error is kept. */
static void fail(struct run *r, int err)
{
	int none = 0;

	atomic_fetch_add(&r->nerrors, 1);
	atomic_compare_exchange_strong(&r->err, &none, err);
	kprim_ctx_cancel(r->ctx);
}

static void *source_main(void *arg)
{
	struct run *r = arg;
	const struct kprim_pipeline *p = r->p;
	struct item_hdr *h;
	uint64_t seq = 0;
	char token;
	int rc;

	h = calloc(1, HDR + p->item_size);
	if (!h) {
		fail(r, -ENOMEM);
		goto out;
	}
	for (;;) {
		if (r->tokens &&
		    kprim_chan_recv(r->tokens, &token, r->ctx,
				    KPRIM_TIMEOUT_INFINITE))
			break;
		rc = p->source(p->source_arg, r->ctx, h + 1);
		if (rc == KPRIM_PIPE_END)
			break;
		if (rc < 0) {
			/* After a cancellation (early stop) it is not an error. */
			if (!kprim_ctx_done(r->ctx))
				fail(r, rc);
			break;
		}
		h->seq = seq++;
		if (kprim_chan_send(r->ch[0], h, r->ctx,
				    KPRIM_TIMEOUT_INFINITE))
			break;
		r->produced++;
	}
out:
	free(h);
	kprim_chan_close(r->ch[0]);
	return NULL;
}

/* Run the stage function on one item; 0, KPRIM_PIPE_SKIP or -errno. */
static int apply(struct run *r, const struct kprim_stage *st,
		 const void *in, void *out)
{
	const struct kprim_stage_gate *g = st->gate;
	int rc;

	if (g) {
		rc = g->acquire(g->arg, r->ctx);
		if (rc)
			return rc;
	}
	rc = st->fn(st->arg, r->ctx, in, out);
	if (g && g->release)
		g->release(g->arg);
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct run *r = w->r;
	const struct kprim_stage *st = &r->p->stages[w->stage];
	struct kprim_chan *in = r->ch[w->stage], *out = r->ch[w->stage + 1];
	struct item_hdr *ih, *oh;
	int rc;

	ih = malloc(HDR + in_size(r->p, w->stage));
	oh = calloc(1, HDR + st->out_size);
	if (!ih || !oh) {
		fail(r, -ENOMEM);
		goto out;
	}
	while (!kprim_chan_recv(in, ih, r->ctx, KPRIM_TIMEOUT_INFINITE)) {
		oh->seq = ih->seq;
		oh->tombstone = ih->tombstone;
		if (!ih->tombstone) {
			rc = apply(r, st, ih + 1, oh + 1);
			if (rc < 0) {
				/* A gate or stage failing because we
				 * cancelled is a consequence, not another
				 * error. */
				if (!kprim_ctx_done(r->ctx))
					fail(r, rc);
				break;
			}
			if (rc == KPRIM_PIPE_SKIP) {
				if (!r->tokens)
					continue;
				oh->tombstone = 1;
			}
		}
		if (kprim_chan_send(out, oh, r->ctx, KPRIM_TIMEOUT_INFINITE))
			break;
	}
out:
	free(ih);
	free(oh);
	if (atomic_fetch_sub(&r->live[w->stage], 1) == 1)
		kprim_chan_close(out);
	return NULL;
}

/* Hand one in-order item to the sink; false when the sink is done. */
static bool deliver(struct run *r, const struct item_hdr *h,
		    struct kprim_pipeline_result *res)
{
	char token = 0;
	int rc;

	if (r->tokens)
		kprim_chan_try_send(r->tokens, &token);	/* cannot be full */
	if (h->tombstone)
		return true;
	rc = r->p->sink(r->p->sink_arg, r->ctx, h + 1);
	if (rc < 0) {
		if (!kprim_ctx_done(r->ctx))
			fail(r, rc);
		return false;
	}
	res->delivered++;
	if (rc == KPRIM_PIPE_STOP) {
		res->stopped = 1;
		return false;
	}
	return true;
}

static void sink_loop(struct run *r, struct kprim_pipeline_result *res)
{
	struct kprim_chan *in = r->ch[r->p->nstages];
	size_t isz = HDR + in_size(r->p, r->p->nstages);
	unsigned char *ring = NULL;
	bool *present = NULL;
	struct item_hdr *h;
	uint64_t next = 0;

	h = malloc(isz);
	if (r->tokens) {
		ring = malloc(r->window * isz);
		present = calloc(r->window, sizeof(*present));
	}
	if (!h || (r->tokens && (!ring || !present))) {
		fail(r, -ENOMEM);
		goto out;
	}
	while (!kprim_chan_recv(in, h, r->ctx, KPRIM_TIMEOUT_INFINITE)) {
		if (!r->tokens) {
			if (!deliver(r, h, res))
				break;
			continue;
		}
		/* seq - next < window: the source waits for tokens. */
		memcpy(ring + (h->seq % r->window) * isz, h, isz);
		present[h->seq % r->window] = true;
		while (present[next % r->window]) {
			size_t i = next % r->window;

			present[i] = false;
			next++;
			if (!deliver(r, (struct item_hdr *)(ring + i * isz),
				     res))
				goto out;
		}
	}
out:
	free(h);
	free(ring);
	free(present);
}

static int validate(const struct kprim_pipeline *p)
{
	if (!p || !p->source || !p->sink || (p->nstages && !p->stages))
		return -EINVAL;
	if (!p->item_size || p->item_size > KPRIM_PIPE_MAX_ITEM ||
	    p->nstages > KPRIM_PIPE_MAX_STAGES)
		return -EINVAL;
	for (size_t i = 0; i < p->nstages; i++) {
		const struct kprim_stage *st = &p->stages[i];

		if (!st->fn || !st->out_size ||
		    st->out_size > KPRIM_PIPE_MAX_ITEM || !st->workers ||
		    st->workers > KPRIM_PIPE_MAX_WORKERS ||
		    (st->gate && !st->gate->acquire))
			return -EINVAL;
	}
	/*
	 * A limit like the others, so -EINVAL (the channel's own -EOVERFLOW
	 * cannot happen then: items are at most KPRIM_PIPE_MAX_ITEM + HDR).
	 */
	if (p->buffer > KPRIM_CHAN_CAP_MAX ||
	    (p->buffer && HDR + KPRIM_PIPE_MAX_ITEM > SIZE_MAX / p->buffer))
		return -EINVAL;
	return 0;
}

static int setup(struct run *r, struct kprim_ctx *parent, size_t *nthreads)
{
	const struct kprim_pipeline *p = r->p;
	size_t i, n = 1;
	char token = 0;
	int rc;

	rc = kprim_ctx_new(parent, &r->ctx);
	if (rc)
		return rc;
	r->ch = calloc(p->nstages + 1, sizeof(*r->ch));
	r->live = calloc(p->nstages + 1, sizeof(*r->live));
	if (!r->ch || !r->live)
		return -ENOMEM;
	for (i = 0; i <= p->nstages; i++) {
		rc = kprim_chan_new(HDR + in_size(p, i), p->buffer, &r->ch[i]);
		if (rc)
			return rc;
		if (i < p->nstages) {
			atomic_init(&r->live[i], p->stages[i].workers);
			n += p->stages[i].workers;
		}
	}
	if (p->ordered) {
		/* Room for every thread plus every buffer slot, twice. */
		r->window = 2 * (n + (p->nstages + 1) * p->buffer);
		if (r->window > WINDOW_MAX)
			r->window = WINDOW_MAX;
		rc = kprim_chan_new(1, r->window, &r->tokens);
		if (rc)
			return rc;
		for (i = 0; i < r->window; i++)
			kprim_chan_try_send(r->tokens, &token);
	}
	*nthreads = n;
	return 0;
}

static void teardown(struct run *r)
{
	if (r->ch)
		for (size_t i = 0; i <= r->p->nstages; i++)
			kprim_chan_free(r->ch[i]);
	kprim_chan_free(r->tokens);
	free(r->ch);
	free(r->live);
	kprim_ctx_free(r->ctx);
}

int kprim_pipeline_run(const struct kprim_pipeline *p, struct kprim_ctx *ctx,
		       struct kprim_pipeline_result *res)
{
	struct kprim_pipeline_result local;
	struct run r = { .p = p };
	struct worker *w = NULL;
	size_t n = 0, started = 0, s, k;
	int rc;

	if (!res)
		res = &local;
	memset(res, 0, sizeof(*res));
	rc = validate(p);
	if (rc)
		return res->err = rc;
	atomic_init(&r.err, 0);
	atomic_init(&r.nerrors, 0);
	rc = setup(&r, ctx, &n);
	if (!rc) {
		w = calloc(n, sizeof(*w));
		if (!w)
			rc = -ENOMEM;
	}
	if (rc) {
		teardown(&r);
		return res->err = rc;
	}

	/* Slot 0 is the source; then the workers, stage by stage. */
	w[0].r = &r;
	rc = -pthread_create(&w[0].tid, NULL, source_main, &r);
	started = rc ? 0 : 1;
	for (s = 0; !rc && s < p->nstages; s++) {
		for (k = 0; !rc && k < p->stages[s].workers; k++) {
			w[started].r = &r;
			w[started].stage = s;
			rc = -pthread_create(&w[started].tid, NULL,
					     worker_main, &w[started]);
			if (!rc)
				started++;
		}
	}
	if (rc) {
		/* Missing threads never close their outputs: cancel. */
		fail(&r, rc);
	} else {
		sink_loop(&r, res);
	}

	kprim_ctx_cancel(r.ctx);	/* early stop: unblock everyone */
	for (k = 0; k < started; k++)
		pthread_join(w[k].tid, NULL);

	res->produced = r.produced;
	res->nerrors = atomic_load(&r.nerrors);
	rc = atomic_load(&r.err);
	if (!rc && ctx)
		rc = kprim_ctx_err(ctx);
	res->err = rc;
	free(w);
	teardown(&r);
	return rc;
}
