// SPDX-License-Identifier: LGPL-2.1-or-later
/* Seed pattern: fan out to 3 workers, fan in (unordered), sum results. */
#include <pthread.h>
#include <stdio.h>

#include "kprim/pipeline.h"

struct job {
	int n;
	unsigned long worker;	/* which thread did it */
};

static int jobs(void *arg, struct kprim_ctx *ctx, void *out)
{
	int *next = arg;

	(void)ctx;
	if (*next > 9)
		return KPRIM_PIPE_END;
	((struct job *)out)->n = (*next)++;
	return 0;
}

static int work(void *arg, struct kprim_ctx *ctx, const void *in,
		void *out)
{
	struct job *j = out;

	(void)arg;
	/* Long work checks the pipeline's ctx (first error, cancel). */
	if (kprim_ctx_done(ctx))
		return kprim_ctx_err(ctx);
	*j = *(const struct job *)in;
	j->n *= 10;
	j->worker = (unsigned long)pthread_self() % 1000;
	return 0;
}

static int collect(void *arg, struct kprim_ctx *ctx, const void *item)
{
	const struct job *j = item;

	(void)ctx;
	*(int *)arg += j->n;
	printf("result %d (worker %03lu)\n", j->n, j->worker);
	return 0;
}

int main(void)
{
	int next = 1, sum = 0;
	struct kprim_stage fan = {
		.fn = work, .out_size = sizeof(struct job), .workers = 3,
	};
	struct kprim_pipeline p = {
		.source = jobs, .source_arg = &next,
		.item_size = sizeof(struct job),
		.stages = &fan, .nstages = 1,
		.sink = collect, .sink_arg = &sum, .buffer = 2,
	};
	int rc = kprim_pipeline_run(&p, NULL, NULL);

	printf("sum %d\n", sum);
	return rc ? 1 : 0;
}
