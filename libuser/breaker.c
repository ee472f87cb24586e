// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Circuit breaker. The state machine runs under one short mutex, so a
 * check and the transition it decides are one step within a process (no
 * lock upgrade race).
 *
 * The state word (state, generation, since, forced, half-open successes)
 * and the half-open probe slots go through a backend ops table
 * (breaker_internal.h). The local backend keeps them in this struct; the
 * shared backend (breaker_shared.c) keeps the word in a kprim cache entry
 * and the slots as kprim semaphore permits. Because another process can
 * change a shared word at any time, every decision is written as load +
 * compare-and-swap, retried on conflict, and the per-process counters are
 * reset whenever a new generation is seen, not only when this process
 * made the transition.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "breaker_internal.h"
#include "kprim/ctx.h"

/*
 * Local backend: plain memory, serialised by the breaker mutex. Like the
 * shared backend's semaphore, a probe slot stays taken until its ticket is
 * reported, whatever the breaker did meanwhile: at most half_open_probes
 * calls are ever in flight as probes.
 */
struct local_backend {
	struct breaker_word word;
	uint32_t permits, in_flight;
};

static int local_load(void *be, struct breaker_word *w)
{
	*w = ((struct local_backend *)be)->word;
	return 0;
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

static void local_probe_release(void *be, uint64_t gen)
{
	struct local_backend *l = be;

	(void)gen;
	if (l->in_flight)
		l->in_flight--;
}

/* A transition frees no slot: slow probes of a past half-open keep theirs. */
static void local_probe_reset(void *be, uint64_t gen, uint32_t permits)
{
	struct local_backend *l = be;

	(void)gen;
	if (permits)
		l->permits = permits;
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

	/*
	 * Closed-state window of this process, reset whenever the word shows
	 * a generation other than @seen_gen. (Failures in a row are counted
	 * in the word, host-wide in shared mode.)
	 */
	uint64_t seen_gen;
	uint8_t *outcomes;		/* COUNT: ring of 1 = failure */
	struct bucket *buckets;		/* TIME */
	uint32_t ring_pos, ring_len, ring_failures;
	uint64_t bucket_ns;

	struct kprim_breaker_counts c;

	/*
	 * Transitions not yet passed to on_state_change, oldest first: a
	 * ring of @q_cap, @q_len from @q_head; note number @q_seq was the
	 * last queued, @q_done the last delivered. Filled under @lock in
	 * the order the transitions are made. Delivered by one thread at a
	 * time (@delivering), with @lock dropped around the callback: in
	 * order, never two at once. A call that queued notes up to number
	 * T delivers, or waits on @q_cond while another thread delivers,
	 * until T is delivered, and never delivers past T for others: the
	 * queue holds at most the notes of the calls in progress. The
	 * threads in deliver_notes() (@q_users) hand delivery over under
	 * @lock; the last to leave also delivers what calls that could not
	 * wait (made from another breaker's callback) left, up to @q_owed.
	 */
	struct state_note { int from, to; } *q;
	uint32_t q_head, q_len, q_cap;
	uint64_t q_seq, q_done, q_owed;
	uint32_t q_users;
	bool delivering;
	pthread_cond_t q_cond;
};

#define NOTE_QUEUE_MIN	16

/* Queue a transition for on_state_change (called with @lock held). */
static void note_transition(struct kprim_breaker *b, int from, int to)
{
	struct state_note *q;
	uint32_t cap, i;

	if (!b->s.on_state_change)
		return;
	if (b->q_len == b->q_cap) {
		/*
		 * More calls in progress at once than the ring holds (or a
		 * callback calling in many times). Out of memory: the
		 * transition still happens, only its notification is lost.
		 */
		cap = b->q_cap * 2;
		q = cap > b->q_cap ? malloc(cap * sizeof(*q)) : NULL;
		if (!q)
			return;
		for (i = 0; i < b->q_len; i++)
			q[i] = b->q[(b->q_head + i) % b->q_cap];
		free(b->q);
		b->q = q;
		b->q_cap = cap;
		b->q_head = 0;
	}
	b->q[(b->q_head + b->q_len) % b->q_cap] = (struct state_note){
		.from = from, .to = to,
	};
	b->q_len++;
	b->q_seq++;
}

/*
 * The breakers this thread is delivering notes of, innermost first: a
 * call from inside a callback finds its breaker here and leaves its notes
 * to the delivery loop below it on this very stack (waiting for them
 * would wait for itself).
 */
struct deliver_frame {
	struct kprim_breaker *b;
	uint64_t target;		/* deliver up to this note */
	struct deliver_frame *up;
};

static __thread struct deliver_frame *delivering_here;

/* Deliver the oldest note; @lock held (dropped around the callback). */
static void deliver_one(struct kprim_breaker *b)
{
	struct state_note n = b->q[b->q_head];

	b->q_head = (b->q_head + 1) % b->q_cap;
	b->q_len--;
	pthread_mutex_unlock(&b->lock);
	b->s.on_state_change(b->s.cb_arg, n.from, n.to);
	pthread_mutex_lock(&b->lock);
	b->q_done++;
}

/*
 * Pass transitions up to note number @target (the caller's last) to
 * on_state_change, in order, with @lock dropped; called without it at
 * the end of every call that queued a note. Returns once @target has
 * been delivered, by this thread or by another one it waited for, except
 * for a call made inside a callback (see delivering_here).
 */
static void deliver_notes(struct kprim_breaker *b, uint64_t target)
{
	struct deliver_frame *f, me = { .b = b, .target = target };
	bool nested = delivering_here;

	for (f = delivering_here; f; f = f->up) {
		if (f->b == b) {
			/* Re-entry from our own callback: after it returns. */
			if (target > f->target)
				f->target = target;
			return;
		}
	}
	pthread_mutex_lock(&b->lock);
	b->q_users++;
	for (;;) {
		/* Delivered far enough; the last one out covers q_owed. */
		if (b->q_done >= me.target &&
		    (b->q_done >= b->q_owed || b->q_users > 1))
			break;
		if (!b->delivering) {
			b->delivering = true;
			me.up = delivering_here;
			delivering_here = &me;
			while (b->q_len && (b->q_done < me.target ||
					    (b->q_done < b->q_owed &&
					     b->q_users == 1))) {
				deliver_one(b);
				/* Waiters whose note this was may go. */
				if (b->q_users > 1)
					pthread_cond_broadcast(&b->q_cond);
			}
			delivering_here = me.up;
			b->delivering = false;
			continue;
		}
		if (nested) {
			/*
			 * Inside another breaker's callback: waiting here could
			 * wait for a thread waiting for ours. The thread
			 * delivering now, or the last one after it, delivers
			 * our notes.
			 */
			if (me.target > b->q_owed)
				b->q_owed = me.target;
			break;
		}
		pthread_cond_wait(&b->q_cond, &b->lock);
	}
	b->q_users--;
	/* A hand-off, or the last one left takes over q_owed. */
	if (b->q_users)
		pthread_cond_broadcast(&b->q_cond);
	pthread_mutex_unlock(&b->lock);
}

/*
 * Number of the last note queued, for deliver_notes() after the caller
 * dropped @lock; 0 if it queued none (@before: q_seq when it took @lock).
 */
static uint64_t notes_target(struct kprim_breaker *b, uint64_t before)
{
	return b->q_seq != before ? b->q_seq : 0;
}

static void deliver_own(struct kprim_breaker *b, uint64_t target)
{
	if (target)
		deliver_notes(b, target);
}

static uint64_t now_ns(struct kprim_breaker *b)
{
	return b->s.clock ? b->s.clock(b->s.clock_arg) : kprim_now_ns();
}

static void reset_stats(struct kprim_breaker *b)
{
	b->ring_pos = b->ring_len = b->ring_failures = 0;
	b->c.window_calls = b->c.window_failures = 0;
	if (b->buckets)
		memset(b->buckets, 0, b->s.window_size * sizeof(*b->buckets));
}

/*
 * Forget this process's closed-state statistics when the breaker moved to
 * another generation, whoever moved it: counts gathered before a trip or
 * a close must not count toward the next one.
 */
static void sync_gen(struct kprim_breaker *b, const struct breaker_word *w)
{
	if (w->gen != b->seen_gen) {
		reset_stats(b);
		b->seen_gen = w->gen;
	}
}

/* Load the word (or return -errno) and catch up with its generation. */
static int load(struct kprim_breaker *b, struct breaker_word *w)
{
	int rc = b->ops->load(b->be, w);

	if (!rc)
		sync_gen(b, w);
	return rc;
}

/*
 * Move from @cur to @state; on success @next is the new word. Returns 0,
 * -EAGAIN if the word changed under us (the caller reloads and decides
 * again), or a backend error.
 */
static int transition(struct kprim_breaker *b, const struct breaker_word *cur,
		      uint32_t state, uint32_t forced, uint64_t now,
		      struct breaker_word *next)
{
	int rc;

	memset(next, 0, sizeof(*next));
	next->gen = cur->gen + 1;
	next->since_ns = now;
	next->state = state;
	next->forced = forced;
	rc = b->ops->cas(b->be, cur, next);
	if (rc)
		return rc;
	b->ops->probe_reset(b->be, next->gen,
			    state == KPRIM_BREAKER_HALF_OPEN ?
				    b->s.half_open_probes : 0);
	sync_gen(b, next);
	if (cur->state != state) {
		b->c.transitions++;
		note_transition(b, (int)cur->state, (int)state);
	}
	return 0;
}

/* Add one closed-state result to the window; true if it must trip. */
static bool record(struct kprim_breaker *b, bool failed, uint64_t now)
{
	const struct kprim_breaker_settings *s = &b->s;
	uint64_t calls = 0, failures = 0;

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

int kprim__breaker_check_settings(const struct kprim_breaker_settings *s)
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
		/* A count window never holds more calls than its size. */
		if (s->window == KPRIM_BREAKER_WINDOW_COUNT &&
		    s->min_calls > s->window_size)
			return -EINVAL;
	}
	if (!s->open_timeout_ns || !s->half_open_probes ||
	    !s->success_threshold)
		return -EINVAL;
	return 0;
}

int kprim__breaker_create(const struct kprim_breaker_settings *s,
			  const struct breaker_backend_ops *ops, void *be,
			  struct kprim_breaker **out)
{
	struct kprim_breaker *b;
	int rc;

	rc = kprim__breaker_check_settings(s);
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
	if (s->on_state_change) {
		b->q = calloc(NOTE_QUEUE_MIN, sizeof(*b->q));
		b->q_cap = NOTE_QUEUE_MIN;
	}
	if ((s->window == KPRIM_BREAKER_WINDOW_COUNT && !b->outcomes) ||
	    (s->window == KPRIM_BREAKER_WINDOW_TIME && !b->buckets) ||
	    (s->on_state_change && !b->q)) {
		free(b->outcomes);
		free(b->buckets);
		free(b->q);
		free(b);
		return -ENOMEM;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->q_cond, NULL);
	b->ops = ops;
	b->be = be ? be : &b->local;
	b->local.word.since_ns = now_ns(b);
	/* No generation seen yet: the first load syncs (a no-op reset). */
	b->seen_gen = UINT64_MAX;
	*out = b;
	return 0;
}

int kprim_breaker_new(const struct kprim_breaker_settings *s,
		      struct kprim_breaker **out)
{
	if (!out)
		return -EINVAL;
	*out = NULL;
	/* shared_mode means nothing to a breaker that creates no objects. */
	if (!s || s->shared_mode)
		return -EINVAL;
	return kprim__breaker_create(s, &local_ops, NULL, out);
}

void kprim_breaker_free(struct kprim_breaker *b)
{
	if (!b)
		return;
	if (b->ops->destroy)
		b->ops->destroy(b->be);
	pthread_cond_destroy(&b->q_cond);
	pthread_mutex_destroy(&b->lock);
	free(b->outcomes);
	free(b->buckets);
	free(b->q);
	free(b);
}

int kprim_breaker_allow(struct kprim_breaker *b, struct kprim_breaker_ticket *t)
{
	struct breaker_word w, next;
	uint64_t now, seq;
	int rc;

	if (!b || !t)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	seq = b->q_seq;
	for (;;) {
		rc = load(b, &w);
		if (rc)
			break;
		/*
		 * Read the clock after the load: in shared mode @since_ns
		 * was read by another process before it published the
		 * word, so it is not later than this reading.
		 */
		now = now_ns(b);
		if (w.state == KPRIM_BREAKER_OPEN) {
			if (w.forced || now < w.since_ns ||
			    now - w.since_ns < b->s.open_timeout_ns) {
				rc = -EBUSY;
				break;
			}
			rc = transition(b, &w, KPRIM_BREAKER_HALF_OPEN, 0, now,
					&next);
			if (rc == -EAGAIN)
				continue;
			if (rc)
				break;
			w = next;
		}
		if (w.state != KPRIM_BREAKER_HALF_OPEN)
			break;
		rc = b->ops->probe_acquire(b->be);
		if (rc)
			break;
		/*
		 * A probe counts for the generation it was admitted into.
		 * If the word moved on while the slot was being taken
		 * (another process closed or re-opened the breaker), give
		 * the slot back and decide again under the new state.
		 */
		rc = b->ops->load(b->be, &next);
		if (!rc && next.gen == w.gen)
			break;
		b->ops->probe_release(b->be, w.gen);
		if (rc)
			break;
	}
	if (rc) {
		b->c.rejected++;
	} else {
		b->c.allowed++;
		t->gen = w.gen;
		t->probe = w.state == KPRIM_BREAKER_HALF_OPEN;
		t->reserved = 0;
	}
	seq = notes_target(b, seq);
	pthread_mutex_unlock(&b->lock);
	deliver_own(b, seq);
	return rc;
}

int kprim_breaker_done(struct kprim_breaker *b,
		       const struct kprim_breaker_ticket *t, bool success)
{
	struct breaker_word w, next;
	bool recorded = false, window_trip = false, trip;
	uint64_t now, seq;
	int rc;

	if (!b || !t)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	seq = b->q_seq;
	for (;;) {
		rc = load(b, &w);
		if (rc)
			break;
		now = now_ns(b);
		if (w.gen != t->gen || w.state == KPRIM_BREAKER_OPEN) {
			b->c.ignored++;
			rc = -ESTALE;
			break;
		}
		if (w.state == KPRIM_BREAKER_CLOSED) {
			/* The window is this process's: record once, a retry
			 * after a conflict must not count the call twice. */
			if (!recorded) {
				window_trip = record(b, !success, now);
				recorded = true;
			}
			/*
			 * Failures in a row live in the word: the update is
			 * part of the compare-and-swap and decided afresh on
			 * every pass, because after a conflict the row may
			 * have been broken by a success elsewhere.
			 */
			next = w;
			if (success)
				next.consecutive_failures = 0;
			else if (b->s.consecutive_failures &&
				 w.consecutive_failures < UINT32_MAX)
				next.consecutive_failures++;
			trip = window_trip ||
			       (b->s.consecutive_failures &&
				next.consecutive_failures >=
					b->s.consecutive_failures);
			if (trip)
				rc = transition(b, &w, KPRIM_BREAKER_OPEN, 0,
						now, &next);
			else if (next.consecutive_failures !=
				 w.consecutive_failures)
				rc = b->ops->cas(b->be, &w, &next);
			else
				break;
		} else if (!success) {
			/* A probe failed: re-open, restarting the timeout. */
			rc = transition(b, &w, KPRIM_BREAKER_OPEN, 0, now,
					&next);
		} else if (w.probe_successes + 1 >= b->s.success_threshold) {
			rc = transition(b, &w, KPRIM_BREAKER_CLOSED, 0, now,
					&next);
		} else {
			/*
			 * Count the success in the word itself, so successes
			 * reported by several processes add up to one
			 * threshold; the generation stays.
			 */
			next = w;
			next.probe_successes++;
			rc = b->ops->cas(b->be, &w, &next);
		}
		/*
		 * Conflict: reload. If the generation moved on, our result
		 * is stale (checked at the top); if only the version did,
		 * decide again.
		 */
		if (rc != -EAGAIN)
			break;
	}
	if (t->probe)
		b->ops->probe_release(b->be, t->gen);
	if (!rc) {
		if (success)
			b->c.successes++;
		else
			b->c.failures++;
	}
	seq = notes_target(b, seq);
	pthread_mutex_unlock(&b->lock);
	deliver_own(b, seq);
	return rc;
}

static int force(struct kprim_breaker *b, uint32_t state, uint32_t forced)
{
	struct breaker_word w, next;
	uint64_t seq;
	int rc;

	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	seq = b->q_seq;
	do {
		rc = load(b, &w);
		if (rc)
			break;
		rc = transition(b, &w, state, forced, now_ns(b), &next);
	} while (rc == -EAGAIN);
	seq = notes_target(b, seq);
	pthread_mutex_unlock(&b->lock);
	deliver_own(b, seq);
	return rc;
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
	int rc;

	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	rc = load(b, &w);
	pthread_mutex_unlock(&b->lock);
	return rc ? rc : (int)w.state;
}

int kprim_breaker_counts(struct kprim_breaker *b,
			 struct kprim_breaker_counts *c)
{
	struct breaker_word w;
	int rc;

	if (!b || !c)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	rc = load(b, &w);
	if (!rc) {
		*c = b->c;
		c->consecutive_failures = w.state == KPRIM_BREAKER_CLOSED ?
					  w.consecutive_failures : 0;
		c->probes_in_flight = b->ops->probes_in_flight(b->be);
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
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
