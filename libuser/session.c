// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libkprim: the session (/dev/kprim), object handles and kernel waits.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "internal.h"

_Static_assert(KPRIM_CREATE == KPRIM_OPEN_CREATE, "flag values");
_Static_assert(KPRIM_EXCL == KPRIM_OPEN_EXCL, "flag values");
_Static_assert(KPRIM_TRANSIENT == KPRIM_OPEN_TRANSIENT, "flag values");
_Static_assert(KPRIM_CLOEXEC == KPRIM_OPEN_CLOEXEC, "flag values");
_Static_assert(KPRIM_OWNED == KPRIM_OPEN_OWNED, "flag values");
_Static_assert(KPRIM_INHERIT == KPRIM_OPEN_INHERIT, "flag values");
_Static_assert(!(KPRIM_ANY_OWNER & KPRIM_OPEN_FLAGS), "library-only flag");
_Static_assert(KPRIM_LIMITER_KIND == KPRIM_KIND_LIMITER, "kind values");
_Static_assert(KPRIM_SEM_KIND == KPRIM_KIND_SEM, "kind values");
_Static_assert(KPRIM_CACHE_KIND == KPRIM_KIND_CACHE, "kind values");
_Static_assert(KPRIM_LIB_API_VERSION == KPRIM_API_VERSION, "api version");

int kprim_open(struct kprim **out)
{
	struct kprim_api api = { .size = sizeof(api) };
	struct kprim *k;
	long ret;
	int fd;

	if (!out)
		return -EINVAL;
	fd = open("/dev/" KPRIM_DEVICE_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENXIO ? -ENODEV : -errno;
	ret = kprim_do_ioctl(fd, KPRIM_IOC_API, &api);
	if (ret || api.api_version != KPRIM_API_VERSION) {
		close(fd);
		return ret == -ENOTTY || !ret ? -EPROTO : (int)ret;
	}
	k = calloc(1, sizeof(*k));
	if (!k) {
		close(fd);
		return -ENOMEM;
	}
	k->fd = fd;
	k->api_version = api.api_version;
	k->features = api.features;
	*out = k;
	return 0;
}

void kprim_close(struct kprim *k)
{
	if (!k)
		return;
	close(k->fd);
	free(k);
}

int kprim_api_version(struct kprim *k, uint64_t *features)
{
	if (!k)
		return -EINVAL;
	if (features)
		*features = k->features;
	return (int)k->api_version;
}

int kprim_unlink(struct kprim *k, int kind, const char *name)
{
	struct kprim_unlink u = { .size = sizeof(u) };

	if (!k || !name)
		return -EINVAL;
	u.kind = kind;
	u.name = (uintptr_t)name;
	u.name_len = strlen(name);
	return (int)kprim_do_ioctl(k->fd, KPRIM_IOC_UNLINK, &u);
}

static void kprim_info_convert(const struct kprim_obj_info *in,
			       struct kprim_object_info *out)
{
	static const char *const kinds[] = { "?", "limiter", "sem", "cache" };

	memset(out, 0, sizeof(*out));
	out->id = in->id;
	out->kind = in->kind;
	out->kind_name = in->kind < 4 ? kinds[in->kind] : "?";
	out->name = in->name;
	out->mode = in->mode;
	out->uid = in->uid;
	out->gid = in->gid;
	out->transient = !!(in->flags & KPRIM_OBJ_TRANSIENT);
	out->unlinked = !!(in->flags & KPRIM_OBJ_UNLINKED);
	out->refs = in->refs;
	switch (in->kind) {
	case KPRIM_KIND_LIMITER:
		out->nv = 8;
		memcpy(out->v, &in->limiter, 8 * sizeof(uint64_t));
		break;
	case KPRIM_KIND_SEM:
		out->nv = 6;
		memcpy(out->v, &in->sem, 6 * sizeof(uint64_t));
		break;
	case KPRIM_KIND_CACHE:
		out->nv = 10;
		memcpy(out->v, &in->cache, 10 * sizeof(uint64_t));
		break;
	}
}

#define LIST_BATCH 32

int kprim_list(struct kprim *k,
	       int (*fn)(const struct kprim_object_info *info, void *arg),
	       void *arg)
{
	struct kprim_obj_info *buf;
	struct kprim_object_info oi;
	struct kprim_list l = { .size = sizeof(l) };
	int ret = 0;

	if (!k || !fn)
		return -EINVAL;
	buf = calloc(LIST_BATCH, sizeof(*buf));
	if (!buf)
		return -ENOMEM;
	l.buf = (uintptr_t)buf;
	l.entry_size = sizeof(*buf);
	do {
		l.count = LIST_BATCH;
		ret = (int)kprim_do_ioctl(k->fd, KPRIM_IOC_LIST, &l);
		if (ret)
			break;
		for (unsigned int i = 0; i < l.count && !ret; i++) {
			kprim_info_convert(&buf[i], &oi);
			ret = fn(&oi, arg);
		}
		l.start_id = l.next_id;
	} while (!ret && l.start_id);
	free(buf);
	return ret;
}

int kprim_obj_open(struct kprim *k, uint32_t kind, const char *name,
		   unsigned int flags, unsigned int mode,
		   struct kprim_open *args, struct kprim_obj *out)
{
	const unsigned int known = KPRIM_CREATE | KPRIM_EXCL |
				   KPRIM_TRANSIENT | KPRIM_CLOEXEC |
				   KPRIM_OWNED | KPRIM_INHERIT |
				   KPRIM_ANY_OWNER;
	long fd;

	if (!k || (flags & ~known))
		return -EINVAL;
	if ((flags & KPRIM_OWNED) && (flags & KPRIM_ANY_OWNER))
		return -EINVAL;
	if ((flags & KPRIM_INHERIT) && (flags & KPRIM_CLOEXEC))
		return -EINVAL;
	/* Creating a name: "mine or fail", unless the caller shares it. */
	if ((flags & KPRIM_CREATE) && name && !(flags & KPRIM_ANY_OWNER))
		flags |= KPRIM_OWNED;
	flags &= ~KPRIM_ANY_OWNER;
	if ((flags & KPRIM_OWNED) && !(k->features & KPRIM_FEAT_OPEN_OWNED))
		return -EOPNOTSUPP;
	/* An older module inherits by default and knows no INHERIT. */
	if (!(k->features & KPRIM_FEAT_CLOEXEC_DEFAULT)) {
		if (flags & KPRIM_INHERIT)
			flags &= ~KPRIM_INHERIT;
		else
			flags |= KPRIM_CLOEXEC;
	}
	args->size = sizeof(*args);
	args->flags |= flags;
	args->kind = kind;
	args->mode = mode;
	if (name) {
		args->name = (uintptr_t)name;
		args->name_len = strlen(name);
		if (!args->name_len)
			return -EINVAL;
	}
	fd = kprim_do_ioctl(k->fd, KPRIM_IOC_OPEN, args);
	if (fd < 0)
		return (int)fd;
	out->fd = (int)fd;
	out->kind = kind;
	out->caps = KPRIM_OBJ_FEATURES_KNOWN;
	if (k->features & KPRIM_FEAT_URING_ASYNC)
		out->caps |= KPRIM_OBJ_URING_ASYNC;
	if (k->features & KPRIM_FEAT_LIMITER_PAGE)
		out->caps |= KPRIM_OBJ_LIMITER_PAGE;
	if (k->features & KPRIM_FEAT_SEM_SLOT)
		out->caps |= KPRIM_OBJ_SEM_SLOT;
	return 0;
}

void *kprim_obj_page_map(const struct kprim_obj *o, uint32_t cap,
			 const char *off_env)
{
	const char *off = getenv(off_env);
	long ps = sysconf(_SC_PAGESIZE);
	void *p;

	if (off && *off && strcmp(off, "0"))
		return NULL;
	/* A module that said it has no page: do not even ask. */
	if ((o->caps & KPRIM_OBJ_FEATURES_KNOWN) && !(o->caps & cap))
		return NULL;
	if (ps < 4096)
		return NULL;
	p = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE, MAP_SHARED, o->fd,
		 0);
	return p == MAP_FAILED ? NULL : p;
}

void kprim_obj_page_unmap(void *page)
{
	if (page)
		munmap(page, (size_t)sysconf(_SC_PAGESIZE));
}

void kprim_obj_close(struct kprim_obj *o)
{
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

int kprim_wait_prepare(struct kprim_wait *w, struct kprim_ctx *ctx,
		       uint64_t timeout_ns)
{
	memset(w, 0, sizeof(*w));
	w->timeout_ns = timeout_ns;
	w->cancel_fd = KPRIM_NO_CANCEL_FD;
	if (!ctx)
		return 0;
	/* An ended context fails even a try, as a select on it does. */
	if (kprim_ctx_err(ctx))
		return kprim_ctx_err(ctx);
	if (timeout_ns == 0)
		return 0;
	/* The kernel sees the context's deadline as a timeout... */
	if (kprim_ctx_remaining_ns(ctx) < w->timeout_ns)
		w->timeout_ns = kprim_ctx_remaining_ns(ctx);
	if (!w->timeout_ns)
		return -ETIMEDOUT;
	/* ...and its cancellation as the cancel eventfd. */
	w->cancel_fd = kprim_ctx_cancel_fd(ctx);
	return w->cancel_fd < 0 ? w->cancel_fd : 0;
}

int kprim_wait_result(long ret, struct kprim_ctx *ctx)
{
	if ((ret == -ECANCELED || ret == -ETIMEDOUT) && ctx && kprim_ctx_err(ctx))
		return kprim_ctx_err(ctx);
	return (int)ret;
}
