// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Circuit breaker. The state machine runs under one short mutex, so a
 * check and the transition it decides are one step (no lock upgrade race).
 *
 * The state word (state, generation, since, forced) and the half-open
 * probe slots go through a backend ops table. Only the local backend
 * exists; a shared one (state in a kprim cache entry updated by CAS, probes
 * as kprim semaphore permits) plugs in behind the same ops: that is why a
 * transition is written as load + compare-and-swap, retried on conflict.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kprim/breaker.h"
#include "kprim/ctx.h"

struct breaker_word {
	uint64_t gen;
	uint64_t since_ns;	/* when the current state was entered */
	uint32_t state;
	uint32_t forced;	/* pinned open by force_open() */
};

struct breaker_backend_ops {
	void (*load)(void *be, struct breaker_word *w);
	/* 0, or -EAGAIN if the word is no longer @old */
	int (*cas)(void *be, const struct breaker_word *old,
		   const struct breaker_word *new);
	int (*probe_acquire)(void *be);		/* 0 or -EBUSY */
	void (*probe_release)(void *be);
	void (*probe_reset)(void *be, uint32_t permits);
	uint32_t (*probes_in_flight)(void *be);
};

/* Local backend: plain memory, serialised by the breaker mutex. */
struct local_backend {
	struct breaker_word word;
	uint32_t permits, in_flight;
};

static void local_load(void *be, struct breaker_word *w)
{
	*w = ((struct local_backend *)be)->word;
}

static int local_cas(void *be, const struct breaker_word *old,
		     const struct breaker_word *new)
{
	struct local_backend *l = be;

	if (memcmp(&l->word, old, sizeof(*old)))
		return -EAGAIN;
	l->word = *new;
	return 0;
}

static int local_probe_acquire(void *be)
{
	struct local_backend *l = be;

	if (l->in_flight >= l->permits)
		return -EBUSY;
	l->in_flight++;
	return 0;
}

static void local_probe_release(void *be)
{
	struct local_backend *l = be;

	if (l->in_flight)
		l->in_flight--;
}

static void local_probe_reset(void *be, uint32_t permits)
{
	struct local_backend *l = be;

	l->permits = permits;
	l->in_flight = 0;
}

static uint32_t local_probes_in_flight(void *be)
{
	return ((struct local_backend *)be)->in_flight;
}

static const struct breaker_backend_ops local_ops = {
	.load = local_load,
	.cas = local_cas,
	.probe_acquire = local_probe_acquire,
	.probe_release = local_probe_release,
	.probe_reset = local_probe_reset,
	.probes_in_flight = local_probes_in_flight,
};

struct bucket {
	uint64_t epoch;
	uint32_t calls, failures;
};

struct kprim_breaker {
	pthread_mutex_t lock;
	struct kprim_breaker_settings s;
	const struct breaker_backend_ops *ops;
	void *be;
	struct local_backend local;

	/* Closed-state statistics, reset on every transition. */
	uint32_t consecutive;
	uint32_t half_open_successes;
	uint8_t *outcomes;		/* COUNT: ring of 1 = failure */
	struct bucket *buckets;		/* TIME */
	uint32_t ring_pos, ring_len, ring_failures;
	uint64_t bucket_ns;

	struct kprim_breaker_counts c;
};

/* Transitions seen under the lock, reported after it is dropped. */
struct pending {
	int n;
	int from[2], to[2];
};

static uint64_t now_ns(struct kprim_breaker *b)
{
	return b->s.clock ? b->s.clock(b->s.clock_arg) : kprim_now_ns();
}

static void reset_stats(struct kprim_breaker *b)
{
	b->consecutive = 0;
	b->half_open_successes = 0;
	b->ring_pos = b->ring_len = b->ring_failures = 0;
	b->c.window_calls = b->c.window_failures = 0;
	if (b->buckets)
		memset(b->buckets, 0, b->s.window_size * sizeof(*b->buckets));
}

/*
 * Move from @cur to @state. Returns false if the backend word changed
 * under us (shared mode): the caller reloads and decides again.
 */
static bool transition(struct kprim_breaker *b, const struct breaker_word *cur,
		       uint32_t state, uint32_t forced, uint64_t now,
		       struct pending *pd)
{
	struct breaker_word next = {
		.gen = cur->gen + 1,
		.since_ns = now,
		.state = state,
		.forced = forced,
	};

	if (b->ops->cas(b->be, cur, &next))
		return false;
	b->ops->probe_reset(b->be, state == KPRIM_BREAKER_HALF_OPEN ?
					   b->s.half_open_probes : 0);
	reset_stats(b);
	if (cur->state != state) {
		b->c.transitions++;
		if (pd->n < 2) {
			pd->from[pd->n] = (int)cur->state;
			pd->to[pd->n] = (int)state;
			pd->n++;
		}
	}
	return true;
}

static void notify(struct kprim_breaker *b, const struct pending *pd)
{
	for (int i = 0; i < pd->n; i++)
		if (b->s.on_state_change)
			b->s.on_state_change(b->s.cb_arg, pd->from[i],
					     pd->to[i]);
}

/* Add one closed-state result to the window; true if it must trip. */
static bool record(struct kprim_breaker *b, bool failed, uint64_t now)
{
	const struct kprim_breaker_settings *s = &b->s;
	uint64_t calls = 0, failures = 0;

	b->consecutive = failed ? b->consecutive + 1 : 0;
	if (s->consecutive_failures && b->consecutive >= s->consecutive_failures)
		return true;

	if (s->window == KPRIM_BREAKER_WINDOW_COUNT) {
		if (b->ring_len == s->window_size)
			b->ring_failures -= b->outcomes[b->ring_pos];
		else
			b->ring_len++;
		b->outcomes[b->ring_pos] = failed;
		b->ring_failures += failed;
		b->ring_pos = (b->ring_pos + 1) % s->window_size;
		calls = b->ring_len;
		failures = b->ring_failures;
	} else if (s->window == KPRIM_BREAKER_WINDOW_TIME) {
		/* epoch + 1 so that a zeroed bucket is never current. */
		uint64_t epoch = now / b->bucket_ns + 1;
		struct bucket *bk = &b->buckets[epoch % s->window_size];

		if (bk->epoch != epoch) {
			bk->epoch = epoch;
			bk->calls = bk->failures = 0;
		}
		bk->calls++;
		bk->failures += failed;
		for (uint32_t i = 0; i < s->window_size; i++) {
			bk = &b->buckets[i];
			if (bk->epoch && bk->epoch + s->window_size > epoch) {
				calls += bk->calls;
				failures += bk->failures;
			}
		}
	} else {
		return false;
	}
	b->c.window_calls = (uint32_t)calls;
	b->c.window_failures = (uint32_t)failures;
	return calls >= s->min_calls &&
	       failures * 100 >= (uint64_t)s->failure_rate_pct * calls;
}

static int check_settings(const struct kprim_breaker_settings *s)
{
	if (!s->consecutive_failures && s->window == KPRIM_BREAKER_WINDOW_NONE)
		return -EINVAL;
	if (s->window > KPRIM_BREAKER_WINDOW_TIME)
		return -EINVAL;
	if (s->window != KPRIM_BREAKER_WINDOW_NONE) {
		if (!s->window_size || s->window_size > KPRIM_BREAKER_WINDOW_MAX)
			return -EINVAL;
		if (!s->min_calls || !s->failure_rate_pct ||
		    s->failure_rate_pct > 100)
			return -EINVAL;
		if (s->window == KPRIM_BREAKER_WINDOW_TIME &&
		    s->window_ns < s->window_size)
			return -EINVAL;
	}
	if (!s->open_timeout_ns || !s->half_open_probes ||
	    !s->success_threshold)
		return -EINVAL;
	return 0;
}

int kprim_breaker_new(const struct kprim_breaker_settings *s,
		      struct kprim_breaker **out)
{
	struct kprim_breaker *b;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s)
		return -EINVAL;
	rc = check_settings(s);
	if (rc)
		return rc;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->s = *s;
	if (s->window == KPRIM_BREAKER_WINDOW_COUNT)
		b->outcomes = calloc(s->window_size, 1);
	if (s->window == KPRIM_BREAKER_WINDOW_TIME) {
		b->buckets = calloc(s->window_size, sizeof(*b->buckets));
		b->bucket_ns = s->window_ns / s->window_size;
	}
	if ((s->window == KPRIM_BREAKER_WINDOW_COUNT && !b->outcomes) ||
	    (s->window == KPRIM_BREAKER_WINDOW_TIME && !b->buckets)) {
		kprim_breaker_free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->lock, NULL);
	b->ops = &local_ops;
	b->be = &b->local;
	b->local.word.since_ns = now_ns(b);
	*out = b;
	return 0;
}

void kprim_breaker_free(struct kprim_breaker *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->outcomes);
	free(b->buckets);
	free(b);
}

int kprim_breaker_allow(struct kprim_breaker *b, struct kprim_breaker_ticket *t)
{
	struct pending pd = { 0 };
	struct breaker_word w;
	uint64_t now;
	int rc = 0;

	if (!b || !t)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	now = now_ns(b);
	for (;;) {
		b->ops->load(b->be, &w);
		if (w.state != KPRIM_BREAKER_OPEN)
			break;
		if (w.forced || now - w.since_ns < b->s.open_timeout_ns) {
			rc = -EBUSY;
			break;
		}
		if (transition(b, &w, KPRIM_BREAKER_HALF_OPEN, 0, now, &pd)) {
			b->ops->load(b->be, &w);
			break;
		}
	}
	if (!rc && w.state == KPRIM_BREAKER_HALF_OPEN)
		rc = b->ops->probe_acquire(b->be);
	if (rc) {
		b->c.rejected++;
	} else {
		b->c.allowed++;
		t->gen = w.gen;
		t->probe = w.state == KPRIM_BREAKER_HALF_OPEN;
		t->reserved = 0;
	}
	pthread_mutex_unlock(&b->lock);
	notify(b, &pd);
	return rc;
}

int kprim_breaker_done(struct kprim_breaker *b,
		       const struct kprim_breaker_ticket *t, bool success)
{
	struct pending pd = { 0 };
	struct breaker_word w;
	uint64_t now;
	int rc = 0, to = -1;

	if (!b || !t)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	now = now_ns(b);
	b->ops->load(b->be, &w);
	if (w.gen != t->gen || w.state == KPRIM_BREAKER_OPEN) {
		b->c.ignored++;
		rc = -ESTALE;
	} else if (w.state == KPRIM_BREAKER_CLOSED) {
		if (record(b, !success, now))
			to = KPRIM_BREAKER_OPEN;
	} else if (!success) {
		to = KPRIM_BREAKER_OPEN;		/* a probe failed */
	} else {
		if (t->probe)
			b->ops->probe_release(b->be);
		if (++b->half_open_successes >= b->s.success_threshold)
			to = KPRIM_BREAKER_CLOSED;
	}
	/* Shared mode: if the word moved on, our decision is stale too. */
	if (to >= 0)
		transition(b, &w, (uint32_t)to, 0, now, &pd);
	if (!rc) {
		if (success)
			b->c.successes++;
		else
			b->c.failures++;
	}
	pthread_mutex_unlock(&b->lock);
	notify(b, &pd);
	return rc;
}

static int force(struct kprim_breaker *b, uint32_t state, uint32_t forced)
{
	struct pending pd = { 0 };
	struct breaker_word w;

	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	do
		b->ops->load(b->be, &w);
	while (!transition(b, &w, state, forced, now_ns(b), &pd));
	pthread_mutex_unlock(&b->lock);
	notify(b, &pd);
	return 0;
}

int kprim_breaker_force_open(struct kprim_breaker *b)
{
	return force(b, KPRIM_BREAKER_OPEN, 1);
}

int kprim_breaker_force_close(struct kprim_breaker *b)
{
	return force(b, KPRIM_BREAKER_CLOSED, 0);
}

int kprim_breaker_state(struct kprim_breaker *b)
{
	struct breaker_word w;

	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	b->ops->load(b->be, &w);
	pthread_mutex_unlock(&b->lock);
	return (int)w.state;
}

int kprim_breaker_counts(struct kprim_breaker *b,
			 struct kprim_breaker_counts *c)
{
	if (!b || !c)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	*c = b->c;
	c->consecutive_failures = b->consecutive;
	c->probes_in_flight = b->ops->probes_in_flight(b->be);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

const char *kprim_breaker_state_name(int state)
{
	switch (state) {
	case KPRIM_BREAKER_CLOSED:
		return "closed";
	case KPRIM_BREAKER_OPEN:
		return "open";
	case KPRIM_BREAKER_HALF_OPEN:
		return "half-open";
	}
	return "?";
}
