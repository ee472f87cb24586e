// SPDX-License-Identifier: LGPL-2.1-or-later
/* Seed pattern: generator -> square -> keep even -> print, in order. */
#include <stdio.h>

#include "kprim/pipeline.h"

static int gen(void *arg, struct kprim_ctx *ctx, void *out)
{
	int *next = arg;

	(void)ctx;
	if (*next > 10)
		return KPRIM_PIPE_END;
	*(int *)out = (*next)++;
	return 0;
}

static int square(void *arg, struct kprim_ctx *ctx, const void *in,
		  void *out)
{
	(void)arg;
	(void)ctx;
	*(int *)out = *(const int *)in * *(const int *)in;
	return 0;
}

static int even(void *arg, struct kprim_ctx *ctx, const void *in,
		void *out)
{
	(void)arg;
	(void)ctx;
	*(int *)out = *(const int *)in;
	return *(const int *)in % 2 ? KPRIM_PIPE_SKIP : 0;
}

static int print(void *arg, struct kprim_ctx *ctx, const void *item)
{
	(void)arg;
	(void)ctx;
	printf("%d\n", *(const int *)item);
	return 0;
}

int main(void)
{
	int next = 1;
	struct kprim_stage stages[] = {
		{ .fn = square, .out_size = sizeof(int), .workers = 1 },
		{ .fn = even, .out_size = sizeof(int), .workers = 1 },
	};
	struct kprim_pipeline p = {
		.source = gen, .source_arg = &next, .item_size = sizeof(int),
		.stages = stages, .nstages = 2,
		.sink = print, .buffer = 4, .ordered = 1,
	};
	int rc = kprim_pipeline_run(&p, NULL, NULL);

	if (rc)
		fprintf(stderr, "pipeline: %d\n", rc);
	return rc ? 1 : 0;
}
