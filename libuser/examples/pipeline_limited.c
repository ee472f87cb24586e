// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A pipeline whose stage is throttled host-wide: two processes run the same
 * pipeline (generator -> 3 "API call" workers -> sink) and share one kprim
 * limiter of 10 calls/s. Together they make 20 calls, so the run takes about
 * (20 - burst) / 10 s whatever the number of workers or processes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kprim.h>

#define CALLS_PER_PROCESS	10

static int source(void *arg, struct kprim_ctx *ctx, void *out)
{
	int *next = arg;

	(void)ctx;
	if (*next >= CALLS_PER_PROCESS)
		return KPRIM_PIPE_END;
	*(int *)out = (*next)++;
	return 0;
}

static int call_api(void *arg, struct kprim_ctx *ctx, const void *in,
		    void *out)
{
	(void)arg;
	(void)ctx;	/* a real call would pass it on: deadline, cancel */
	*(int *)out = *(const int *)in;	/* the call number */
	return 0;
}

struct sink_state {
	char who;
	uint64_t t0;
};

static int sink(void *arg, struct kprim_ctx *ctx, const void *item)
{
	struct sink_state *s = arg;

	(void)ctx;
	printf("  process %c: call %2d done at +%.2fs\n", s->who,
	       *(const int *)item, (kprim_now_ns() - s->t0) / 1e9);
	fflush(stdout);
	return 0;
}

static int run(struct kprim *k, char who, uint64_t t0)
{
	struct kprim_limiter_config cfg = {
		.rate = 10, .period_ns = 1000000000ull, .burst = 2,
	};
	struct sink_state st = { .who = who, .t0 = t0 };
	struct kprim_pipeline_result res;
	struct kprim_stage_gate gate;
	struct kprim_limiter *api;
	int next = 0, ret;

	ret = kprim_limiter_open(k, "demo-api", KPRIM_CREATE, 0600, &cfg, &api);
	if (ret)
		return ret;
	gate = kprim_stage_gate_limiter(api);
	struct kprim_stage stage = {
		.fn = call_api, .out_size = sizeof(int), .workers = 3,
		.gate = &gate,
	};
	struct kprim_pipeline p = {
		.source = source, .source_arg = &next, .item_size = sizeof(int),
		.stages = &stage, .nstages = 1, .sink = sink, .sink_arg = &st,
		.buffer = 4,
	};
	ret = kprim_pipeline_run(&p, NULL, &res);
	kprim_limiter_close(api);
	return ret;
}

int main(void)
{
	uint64_t t0 = kprim_now_ns();
	struct kprim *k;
	int status, ret;
	pid_t pid;

	ret = kprim_open(&k);
	if (ret) {
		fprintf(stderr, "kprim_open: %d\n", ret);
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		struct kprim *kc;

		_exit(kprim_open(&kc) || run(kc, 'B', t0) ? 1 : 0);
	}
	ret = run(k, 'A', t0);
	waitpid(pid, &status, 0);
	printf("  20 calls in %.2fs: 2 from the burst, 18 at 10/s across both processes\n",
	       (kprim_now_ns() - t0) / 1e9);
	kprim_unlink(k, KPRIM_LIMITER_KIND, "demo-api");
	kprim_close(k);
	return ret || !WIFEXITED(status) || WEXITSTATUS(status) ? 1 : 0;
}
