// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libkprim: expiring key-value cache wrappers.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

int kprim_cache_open(struct kprim *k, const char *name, unsigned int flags,
		     unsigned int mode, const struct kprim_cache_config *cfg,
		     struct kprim_cache **out)
{
	struct kprim_open a;
	struct kprim_cache *c;
	int ret;

	if (!out)
		return -EINVAL;
	memset(&a, 0, sizeof(a));
	if (cfg) {
		a.cache.max_bytes = cfg->max_bytes;
		a.cache.max_entries = cfg->max_entries;
		a.cache.max_value = cfg->max_value;
		a.cache.default_ttl_ns = cfg->default_ttl_ns;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = kprim_obj_open(k, KPRIM_KIND_CACHE, name, flags, mode, &a, &c->o);
	if (ret) {
		free(c);
		return ret;
	}
	c->mget = !!(k->features & KPRIM_FEAT_CACHE_MGET);
	*out = c;
	return 0;
}

void kprim_cache_close(struct kprim_cache *c)
{
	if (!c)
		return;
	kprim_obj_close(&c->o);
	free(c);
}

int kprim_cache_get(struct kprim_cache *c, const void *key, size_t klen,
		    void *buf, size_t *len, uint64_t *ttl_ns, uint64_t *cas)
{
	struct kprim_cache_get g = { .size = sizeof(g) };
	long ret;

	if (!c || !len || klen > UINT32_MAX)
		return -EINVAL;
	g.key = (uintptr_t)key;
	g.key_len = (uint32_t)klen;
	g.value = (uintptr_t)buf;
	g.value_len = *len;
	ret = kprim_do_ioctl(c->o.fd, KPRIM_IOC_CACHE_GET, &g);
	if (!ret || ret == -EMSGSIZE)
		*len = g.value_len;
	if (!ret && ttl_ns)
		*ttl_ns = g.ttl_ns;
	if (!ret && cas)
		*cas = g.cas;
	return (int)ret;
}

/*
 * Kernel entries kept on the stack (3 KiB): a batch this small needs no
 * allocation. Larger batches get a heap array of up to
 * KPRIM_CACHE_MGET_MAX entries (48 KiB, too much for a thread's stack), so
 * each ioctl takes as many keys as the kernel does; if that allocation
 * fails, the stack array is used for more, smaller calls rather than
 * failing the lookup.
 */
#define KPRIM_MGET_STACK	64

/* A module without KPRIM_IOC_CACHE_MGET: one get per key. */
static int kprim_cache_mget_each(struct kprim_cache *c,
				 struct kprim_cache_mget_item *it, size_t n)
{
	int found = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		it[i].result = kprim_cache_get(c, it[i].key, it[i].klen,
					       it[i].buf, &it[i].len,
					       &it[i].ttl_ns, &it[i].cas);
		found += !it[i].result;
	}
	return found;
}

int kprim_cache_mget(struct kprim_cache *c,
		     struct kprim_cache_mget_item *items, size_t n)
{
	struct kprim_cache_mget_entry stack[KPRIM_MGET_STACK], *e = stack;
	struct kprim_cache_mget m = {
		.size = sizeof(m), .entry_size = sizeof(e[0]),
	};
	size_t chunk = KPRIM_MGET_STACK, done, i, k;
	long found = 0, ret = 0;

	if (!c || (n && !items) || n > INT_MAX)
		return -EINVAL;
	if (!c->mget)
		return kprim_cache_mget_each(c, items, n);
	if (n > KPRIM_MGET_STACK) {
		size_t want = n < KPRIM_CACHE_MGET_MAX ? n :
			      KPRIM_CACHE_MGET_MAX;
		struct kprim_cache_mget_entry *heap =
			malloc(want * sizeof(*heap));

		if (heap) {
			e = heap;
			chunk = want;
		}
	}
	m.entries = (uintptr_t)e;
	for (done = 0; done < n; done += k) {
		k = n - done < chunk ? n - done : chunk;
		memset(e, 0, k * sizeof(e[0]));
		for (i = 0; i < k; i++) {
			struct kprim_cache_mget_item *it = &items[done + i];

			e[i].key = (uintptr_t)it->key;
			/* Too long for the kernel's u32: still -EINVAL there. */
			e[i].key_len = it->klen > UINT32_MAX ? UINT32_MAX :
				       (uint32_t)it->klen;
			e[i].value = (uintptr_t)it->buf;
			e[i].value_len = it->len;
		}
		m.count = (uint32_t)k;
		ret = kprim_do_ioctl(c->o.fd, KPRIM_IOC_CACHE_MGET, &m);
		if (ret < 0)
			break;
		found += ret;
		for (i = 0; i < k; i++) {
			struct kprim_cache_mget_item *it = &items[done + i];

			it->result = e[i].result;
			if (!e[i].result || e[i].result == -EMSGSIZE)
				it->len = e[i].value_len;
			if (!e[i].result) {
				it->ttl_ns = e[i].ttl_ns;
				it->cas = e[i].cas;
			}
		}
	}
	if (e != stack)
		free(e);
	return ret < 0 ? (int)ret : (int)found;
}

_Static_assert((int)KPRIM_STORE_SET == (int)KPRIM_CACHE_SET &&
	       (int)KPRIM_STORE_ADD == (int)KPRIM_CACHE_ADD &&
	       (int)KPRIM_STORE_REPLACE == (int)KPRIM_CACHE_REPLACE &&
	       (int)KPRIM_STORE_CAS == (int)KPRIM_CACHE_CAS,
	       "store ops are the kernel's");

int kprim_cache_store(struct kprim_cache *c, enum kprim_cache_store_op op,
		      unsigned int flags, const void *key, size_t klen,
		      const void *val, size_t vlen, uint64_t ttl_ns,
		      uint64_t *cas)
{
	struct kprim_cache_store s = { .size = sizeof(s), .op = op };
	long ret;

	if (!c || klen > UINT32_MAX || (unsigned int)op > KPRIM_STORE_CAS ||
	    (flags & ~KPRIM_STORE_PINNED) || (op == KPRIM_STORE_CAS && !cas))
		return -EINVAL;
	if (flags & KPRIM_STORE_PINNED)
		s.flags |= KPRIM_CACHE_PIN;
	s.key = (uintptr_t)key;
	s.key_len = (uint32_t)klen;
	s.value = (uintptr_t)val;
	s.value_len = vlen;
	if (ttl_ns != KPRIM_TTL_DEFAULT) {
		s.flags |= KPRIM_CACHE_TTL;
		s.ttl_ns = ttl_ns;
	}
	if (cas)
		s.cas = *cas;
	ret = kprim_do_ioctl(c->o.fd, KPRIM_IOC_CACHE_STORE, &s);
	if (!ret && cas)
		*cas = s.cas;
	return (int)ret;
}

int kprim_cache_set(struct kprim_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_cache_store(c, KPRIM_STORE_SET, 0, key, klen, val,
				 vlen, ttl_ns, cas);
}

int kprim_cache_add(struct kprim_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_cache_store(c, KPRIM_STORE_ADD, 0, key, klen, val,
				 vlen, ttl_ns, cas);
}

int kprim_cache_replace(struct kprim_cache *c, const void *key, size_t klen,
			const void *val, size_t vlen, uint64_t ttl_ns,
			uint64_t *cas)
{
	return kprim_cache_store(c, KPRIM_STORE_REPLACE, 0, key, klen, val,
				 vlen, ttl_ns, cas);
}

int kprim_cache_cas(struct kprim_cache *c, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t ttl_ns, uint64_t *cas)
{
	return kprim_cache_store(c, KPRIM_STORE_CAS, 0, key, klen, val,
				 vlen, ttl_ns, cas);
}

static int kprim_cache_keyop(struct kprim_cache *c, unsigned long cmd,
			     const void *key, size_t klen, uint64_t ttl_ns)
{
	struct kprim_cache_key k = { .size = sizeof(k), .ttl_ns = ttl_ns };

	if (!c || klen > UINT32_MAX)
		return -EINVAL;
	/* Not a TTL of ~585 years: the kernel applies the cache's default. */
	if (cmd == KPRIM_IOC_CACHE_TOUCH && ttl_ns == KPRIM_TTL_DEFAULT) {
		k.flags = KPRIM_CACHE_DEFAULT_TTL;
		k.ttl_ns = 0;
	}
	k.key = (uintptr_t)key;
	k.key_len = (uint32_t)klen;
	return (int)kprim_do_ioctl(c->o.fd, cmd, &k);
}

int kprim_cache_delete(struct kprim_cache *c, const void *key, size_t klen)
{
	return kprim_cache_keyop(c, KPRIM_IOC_CACHE_DELETE, key, klen, 0);
}

int kprim_cache_touch(struct kprim_cache *c, const void *key, size_t klen,
		      uint64_t ttl_ns)
{
	return kprim_cache_keyop(c, KPRIM_IOC_CACHE_TOUCH, key, klen, ttl_ns);
}

static int kprim_cache_count(struct kprim_cache *c, uint32_t flags,
			     const void *key, size_t klen, uint64_t delta,
			     uint64_t *value)
{
	struct kprim_cache_incr i = { .size = sizeof(i), .flags = flags,
				      .delta = delta };
	long ret;

	if (!c || klen > UINT32_MAX)
		return -EINVAL;
	i.key = (uintptr_t)key;
	i.key_len = (uint32_t)klen;
	ret = kprim_do_ioctl(c->o.fd, KPRIM_IOC_CACHE_INCR, &i);
	if (!ret && value)
		*value = i.value;
	return (int)ret;
}

int kprim_cache_incr(struct kprim_cache *c, const void *key, size_t klen,
		     uint64_t delta, uint64_t *value)
{
	return kprim_cache_count(c, 0, key, klen, delta, value);
}

int kprim_cache_decr(struct kprim_cache *c, const void *key, size_t klen,
		     uint64_t delta, uint64_t *value)
{
	return kprim_cache_count(c, KPRIM_CACHE_DECR, key, klen, delta, value);
}

int kprim_cache_flush(struct kprim_cache *c)
{
	struct kprim_hdr h = { .size = sizeof(h) };

	if (!c)
		return -EINVAL;
	return (int)kprim_do_ioctl(c->o.fd, KPRIM_IOC_CACHE_FLUSH, &h);
}

int kprim_cache_stats(struct kprim_cache *c, struct kprim_cache_stats *st)
{
	struct kprim_cache_info i = { .size = sizeof(i) };
	long ret;

	if (!c || !st)
		return -EINVAL;
	ret = kprim_do_ioctl(c->o.fd, KPRIM_IOC_CACHE_INFO, &i);
	if (ret)
		return (int)ret;
	st->config.max_bytes = i.params.max_bytes;
	st->config.max_entries = i.params.max_entries;
	st->config.max_value = i.params.max_value;
	st->config.default_ttl_ns = i.params.default_ttl_ns;
	st->bytes = i.bytes;
	st->entries = i.entries;
	st->hits = i.hits;
	st->misses = i.misses;
	st->evictions = i.evictions;
	st->expirations = i.expirations;
	return 0;
}

int kprim_cache_fd(struct kprim_cache *c)
{
	return c ? c->o.fd : -EINVAL;
}
