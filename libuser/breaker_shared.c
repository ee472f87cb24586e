// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Shared circuit breaker backend: the state word lives in a kprim cache
 * entry, the half-open probe slots are permits of a kprim semaphore, so
 * every process of the host that opens the same name drives one breaker.
 *
 * Why these objects: the cache's compare-and-swap gives a lock-free
 * host-wide word (a process killed mid-update cannot leave a lock held),
 * and semaphore permits are held per handle and returned by the kernel
 * when the holder dies, so a killed half-open prober gives its probe back.
 *
 * The state machine (breaker.c) calls these ops under the breaker mutex,
 * so the per-handle fields here (the last word loaded and its version)
 * need no lock of their own.
 *
 * A handle belongs to the process that opened it. A child inherits the
 * same kernel files, so a permit it took through them would be held by
 * the parent's files too and not come back when the child dies: every op
 * refuses (-EXDEV) in a process forked since the open, changing nothing.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker_internal.h"
#include "internal.h"

#define PREFIX		"kprim-breaker."
#define STATE_KEY	"state"
#define SETTINGS_KEY	"settings"
#define RECORD_MAGIC	0x4b504252u	/* "KPBR" */
/* 2: breaker_word.consecutive_failures (was reserved, 0), and the
 * consecutive_failures setting in settings_record */
#define RECORD_LAYOUT	2u
/* An entry that disappears again right after being re-created is not
 * something to spin on forever. */
#define LOAD_TRIES	16

_Static_assert(sizeof(PREFIX) - 1 + KPRIM_BREAKER_NAME_MAX == 255,
	       "KPRIM_BREAKER_NAME_MAX follows the kernel's name limit");

/* The value of STATE_KEY: magic and layout let a future library refuse
 * (-EPROTO) a word it does not understand instead of misreading it. */
struct state_record {
	uint32_t magic;
	uint32_t layout;
	struct breaker_word w;
};

/* The value of SETTINGS_KEY: what every process must agree on. */
struct settings_record {
	uint32_t magic;
	uint32_t layout;
	uint64_t open_timeout_ns;
	uint32_t half_open_probes;
	uint32_t success_threshold;
	uint32_t consecutive_failures;	/* the threshold of the shared row */
	uint32_t reserved;		/* 0 */
};

/* No padding anywhere: words are compared with memcmp() and stored as
 * bytes read by other processes. */
_Static_assert(sizeof(struct breaker_word) == 32, "breaker_word layout");
_Static_assert(sizeof(struct state_record) == 40, "state_record layout");
_Static_assert(sizeof(struct settings_record) == 32, "settings_record layout");

struct shared_backend {
	struct kprim_cache *cache;
	struct kprim_sem *sem;
	struct breaker_word last;	/* the word last loaded or stored */
	uint64_t version;		/* its cache version, for CAS */
	bool have_last;
	unsigned int fork_gen;		/* kprim__fork_gen() at the open */
};

/* Opened by an ancestor of this process: not ours to use. */
static bool inherited(const struct shared_backend *sb)
{
	return sb->fork_gen != kprim__fork_gen();
}

static int put_word(struct shared_backend *sb, const struct breaker_word *w)
{
	struct state_record r = {
		.magic = RECORD_MAGIC, .layout = RECORD_LAYOUT, .w = *w,
	};

	/* ttl 0: never expires, whatever the cache's default; pinned: never
	 * evicted, so an open breaker cannot silently restart closed. */
	return kprim_cache_store(sb->cache, KPRIM_STORE_ADD, KPRIM_STORE_PINNED,
				 STATE_KEY, strlen(STATE_KEY), &r, sizeof(r), 0,
				 NULL);
}

static int shared_load(void *be, struct breaker_word *w)
{
	struct shared_backend *sb = be;
	struct state_record r;
	struct breaker_word fresh;
	uint64_t ver;
	size_t len;
	int rc;

	if (inherited(sb))
		return -EXDEV;
	for (int i = 0; i < LOAD_TRIES; i++) {
		len = sizeof(r);
		rc = kprim_cache_get(sb->cache, STATE_KEY, strlen(STATE_KEY),
				     &r, &len, NULL, &ver);
		if (rc == -ENOENT) {
			/*
			 * First use, or the entry was evicted or deleted:
			 * start closed. Continue the generation this handle
			 * knows so its outstanding tickets stay stale.
			 * -EEXIST: another process was first; read theirs.
			 */
			memset(&fresh, 0, sizeof(fresh));
			/*
			 * Never rewind: a process that never saw the word
			 * starts from the clock, beyond any generation the
			 * lost entry can have reached.
			 */
			fresh.gen = sb->have_last ? sb->last.gen + 1 : 0;
			if (fresh.gen < kprim_now_ns())
				fresh.gen = kprim_now_ns();
			fresh.since_ns = kprim_now_ns();
			fresh.state = KPRIM_BREAKER_CLOSED;
			rc = put_word(sb, &fresh);
			if (rc && rc != -EEXIST)
				return rc;
			continue;
		}
		if (rc == -EMSGSIZE)
			return -EPROTO;
		if (rc)
			return rc;
		if (len != sizeof(r) || r.magic != RECORD_MAGIC ||
		    r.layout != RECORD_LAYOUT ||
		    r.w.state > KPRIM_BREAKER_HALF_OPEN)
			return -EPROTO;
		sb->last = r.w;
		sb->version = ver;
		sb->have_last = true;
		*w = r.w;
		return 0;
	}
	return -EIO;
}

static int shared_cas(void *be, const struct breaker_word *old,
		      const struct breaker_word *new)
{
	struct shared_backend *sb = be;
	struct state_record r = {
		.magic = RECORD_MAGIC, .layout = RECORD_LAYOUT, .w = *new,
	};
	uint64_t ver;
	int rc;

	if (inherited(sb))
		return -EXDEV;
	/* The version we hold belongs to @last; anything else must reload. */
	if (!sb->have_last || memcmp(old, &sb->last, sizeof(*old)))
		return -EAGAIN;
	ver = sb->version;
	rc = kprim_cache_store(sb->cache, KPRIM_STORE_CAS, KPRIM_STORE_PINNED,
			       STATE_KEY, strlen(STATE_KEY), &r, sizeof(r), 0,
			       &ver);
	if (rc == -ESTALE || rc == -ENOENT) {
		/* Another process stored first, or the entry is gone: the
		 * caller reloads (which re-creates a missing entry). */
		return -EAGAIN;
	}
	if (rc)
		return rc;
	sb->last = *new;
	sb->version = ver;
	return 0;
}

static int shared_probe_acquire(void *be)
{
	struct shared_backend *sb = be;
	int rc;

	if (inherited(sb))
		return -EXDEV;
	rc = kprim_sem_try_acquire(sb->sem, 1);
	return rc == -EAGAIN ? -EBUSY : rc;
}

static void shared_probe_release(void *be, uint64_t gen)
{
	struct shared_backend *sb = be;

	/*
	 * Every probe ticket holds one permit of this handle, whatever
	 * generation it was admitted in: give it back. An error (-EINVAL:
	 * not held) can only follow a misuse such as reporting a ticket
	 * twice; the permit count stays right because the kernel refuses.
	 */
	(void)gen;
	/* The permit of an inherited ticket is the parent's. */
	if (!inherited(sb))
		kprim_sem_release(sb->sem, 1);
}

static void shared_probe_reset(void *be, uint64_t gen, uint32_t permits)
{
	/*
	 * Nothing to do: permits held by other processes' probes cannot be
	 * taken back, they return as those probes are reported (or their
	 * processes die). The count stays @half_open_probes, fixed at
	 * creation.
	 */
	(void)be;
	(void)gen;
	(void)permits;
}

static uint32_t shared_probes_in_flight(void *be)
{
	struct shared_backend *sb = be;
	struct kprim_sem_stats st;

	if (inherited(sb) || kprim_sem_stats(sb->sem, &st))
		return 0;
	return st.held > UINT32_MAX ? UINT32_MAX : (uint32_t)st.held;
}

static void shared_destroy(void *be)
{
	struct shared_backend *sb = be;

	/* Closing the semaphore handle returns the permits it still holds. */
	kprim_sem_close(sb->sem);
	kprim_cache_close(sb->cache);
	free(sb);
}

static const struct breaker_backend_ops shared_ops = {
	.load = shared_load,
	.cas = shared_cas,
	.probe_acquire = shared_probe_acquire,
	.probe_release = shared_probe_release,
	.probe_reset = shared_probe_reset,
	.probes_in_flight = shared_probes_in_flight,
	.destroy = shared_destroy,
};

/*
 * Record the shared settings, or check them against the creator's: two
 * processes disagreeing on the probe count, the open timeout, the success
 * threshold or the length of the row of failures that trips would each
 * run a different breaker over one state word.
 */
static int check_shared_settings(struct shared_backend *sb,
				 const struct kprim_breaker_settings *s)
{
	struct settings_record want = {
		.magic = RECORD_MAGIC,
		.layout = RECORD_LAYOUT,
		.open_timeout_ns = s->open_timeout_ns,
		.half_open_probes = s->half_open_probes,
		.success_threshold = s->success_threshold,
		.consecutive_failures = s->consecutive_failures,
	}, have;
	struct kprim_sem_stats st;
	size_t len = sizeof(have);
	int rc;

	/* The semaphore keeps the creator's permit count even if the
	 * settings entry was evicted. */
	rc = kprim_sem_stats(sb->sem, &st);
	if (rc)
		return rc;
	if (st.permits != s->half_open_probes)
		return -EEXIST;
	rc = kprim_cache_store(sb->cache, KPRIM_STORE_ADD, KPRIM_STORE_PINNED,
			       SETTINGS_KEY, strlen(SETTINGS_KEY), &want,
			       sizeof(want), 0, NULL);
	if (rc != -EEXIST)
		return rc;
	rc = kprim_cache_get(sb->cache, SETTINGS_KEY, strlen(SETTINGS_KEY),
			     &have, &len, NULL, NULL);
	if (rc == -ENOENT)	/* evicted since: nothing to disagree with */
		return 0;
	if (rc == -EMSGSIZE)
		return -EPROTO;
	if (rc)
		return rc;
	if (len != sizeof(have) || have.magic != RECORD_MAGIC ||
	    have.layout != RECORD_LAYOUT)
		return -EPROTO;
	return memcmp(&have, &want, sizeof(want)) ? -EEXIST : 0;
}

int kprim_breaker_new_shared(struct kprim *k, const char *name,
			     const struct kprim_breaker_settings *s,
			     struct kprim_breaker **out)
{
	/* Small limits: two entries of a few dozen bytes each. */
	const struct kprim_cache_config cfg = {
		.max_bytes = 16384,
		.max_entries = 8,
		.max_value = 256,
		.default_ttl_ns = 0,
	};
	char obj[sizeof(PREFIX) + KPRIM_BREAKER_NAME_MAX];
	struct shared_backend *sb;
	struct breaker_word w;
	unsigned int mode;
	size_t nlen;
	int rc;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!k || !name || !s)
		return -EINVAL;
	/* Processes can only agree on time through CLOCK_MONOTONIC. */
	if (s->clock || (s->shared_mode & ~0777u))
		return -EINVAL;
	mode = s->shared_mode ? s->shared_mode : 0600;
	rc = kprim__breaker_check_settings(s);
	if (rc)
		return rc;
	nlen = strlen(name);
	if (!nlen || strchr(name, '/'))
		return -EINVAL;
	if (nlen > KPRIM_BREAKER_NAME_MAX)
		return -ENAMETOOLONG;
	snprintf(obj, sizeof(obj), PREFIX "%s", name);

	sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	sb->fork_gen = kprim__fork_gen();
	/*
	 * Joined whoever created it: the processes sharing a breaker may run
	 * as different users (shared_mode), and any of them may come first.
	 */
	rc = kprim_cache_open(k, obj, KPRIM_CREATE | KPRIM_CLOEXEC |
			      KPRIM_ANY_OWNER, mode, &cfg, &sb->cache);
	if (rc)
		goto free_sb;
	rc = kprim_sem_open(k, obj, KPRIM_CREATE | KPRIM_CLOEXEC |
			    KPRIM_ANY_OWNER, mode, s->half_open_probes,
			    &sb->sem);
	if (rc)
		goto close_cache;
	rc = check_shared_settings(sb, s);
	if (rc)
		goto close_sem;
	/* Create the state entry now, so kernel errors show up here. */
	rc = shared_load(sb, &w);
	if (rc)
		goto close_sem;
	rc = kprim__breaker_create(s, &shared_ops, sb, out);
	if (rc)
		goto close_sem;
	return 0;

close_sem:
	kprim_sem_close(sb->sem);
close_cache:
	kprim_cache_close(sb->cache);
free_sb:
	free(sb);
	return rc;
}
