// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - the object model: names, lifetime, permissions and object fds.
 *
 * Lifetime: every object fd holds a reference; a persistent named object
 * also holds one for its name until KPRIM_IOC_UNLINK. A transient object's
 * name holds none, so the object goes with its last fd. The final reference
 * is dropped with kref_put_mutex() on kprim_registry_lock, so a lookup under
 * that lock never sees an object whose count has reached zero.
 *
 * Teardown order on the final put: unhash the name and the id (under the
 * registry lock), then let the kind free its state, then drop the namespace.
 */
#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/indirect_call_wrapper.h>
#include <linux/jhash.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>
#include <linux/xarray.h>
#include "kprim.h"

static unsigned int max_objects = 4096;
module_param(max_objects, uint, 0644);
MODULE_PARM_DESC(max_objects, "Most kprim objects alive at once (default 4096)");

static unsigned int max_objects_per_user = 1024;
module_param(max_objects_per_user, uint, 0644);
MODULE_PARM_DESC(max_objects_per_user,
		 "Most kprim objects one uid may own (default 1024); -EDQUOT beyond");

static unsigned long max_bytes_per_user = 1UL << 30;
module_param(max_bytes_per_user, ulong, 0644);
MODULE_PARM_DESC(max_bytes_per_user,
		 "Most memory the objects of one uid may reserve, e.g. the sum of its caches' max_bytes (default 1 GiB); -EDQUOT beyond");

#define KPRIM_NAME_HASH_BITS	10

/**
 * struct kprim_user - what one uid owns, for the per-user quotas.
 * @objects:	live objects it owns
 * @bytes:	memory its objects reserved (kprim_obj_reserve_bytes())
 *
 * In kprim_users under kprim_registry_lock; freed when both are zero.
 */
struct kprim_user {
	unsigned int objects;
	u64 bytes;
};

static DEFINE_MUTEX(kprim_registry_lock);
/* Named objects by (namespace, kind, name); kprim_registry_lock. */
static DEFINE_HASHTABLE(kprim_names, KPRIM_NAME_HASH_BITS);
/* Every live object by id; written under kprim_registry_lock. */
static DEFINE_XARRAY(kprim_objects);
/* struct kprim_user by uid; kprim_registry_lock. */
static DEFINE_XARRAY(kprim_users);
/* kprim_registry_lock */
static unsigned int kprim_nr_objects;
static u64 kprim_next_id = 1;

static const struct kprim_kind_ops *const kprim_kinds[] = {
	[KPRIM_KIND_LIMITER]	= &kprim_limiter_ops,
	[KPRIM_KIND_SEM]	= &kprim_sem_ops,
	[KPRIM_KIND_CACHE]	= &kprim_cache_ops,
};

static const struct file_operations kprim_obj_fops;

static const struct kprim_kind_ops *kprim_kind_lookup(u32 kind)
{
	if (kind >= ARRAY_SIZE(kprim_kinds))
		return NULL;
	return kprim_kinds[kind];
}

/**
 * kprim_max_objects() - the global object limit.
 *
 * Return: the max_objects module parameter.
 */
unsigned int kprim_max_objects(void)
{
	return READ_ONCE(max_objects);
}

/**
 * kprim_max_objects_per_user() - the per-uid object quota.
 *
 * Return: the max_objects_per_user module parameter.
 */
unsigned int kprim_max_objects_per_user(void)
{
	return READ_ONCE(max_objects_per_user);
}

static u32 kprim_name_hash(const void *ns, u32 kind, const char *name,
			   u32 len)
{
	return jhash(name, len, jhash_2words(kind, hash_ptr(ns, 32), 0));
}

static struct kprim_object *kprim_name_find(const void *ns, u32 kind,
					    const char *name, u32 len)
{
	struct kprim_object *obj;

	lockdep_assert_held(&kprim_registry_lock);
	hash_for_each_possible(kprim_names, obj, name_node,
			       kprim_name_hash(ns, kind, name, len)) {
		if (obj->ns == ns && obj->ops->kind == kind &&
		    obj->name_len == len && !memcmp(obj->name, name, len))
			return obj;
	}
	return NULL;
}

/*
 * Who pays for what the caller creates. In the initial user namespace, its
 * euid. Inside user namespaces, the user that created the outermost one
 * (the ancestor whose parent is the initial namespace): the uids mapped
 * into it are that user's subordinate ids, and handing each of them its
 * own quota would multiply the user's. Namespaces created by root are
 * exempt: root maps distinct users into them on purpose (containers), and
 * those keep a quota each.
 */
static kuid_t kprim_quota_uid(void)
{
	const struct user_namespace *ns = current_user_ns();

	if (ns == &init_user_ns)
		return current_euid();
	while (ns->parent != &init_user_ns)
		ns = ns->parent;
	if (uid_eq(ns->owner, GLOBAL_ROOT_UID))
		return current_euid();
	return ns->owner;
}

/* Count one more object for @uid, or fail with -EDQUOT. */
static int kprim_user_charge(kuid_t uid)
{
	unsigned long key = __kuid_val(uid);
	struct kprim_user *u;
	int ret;

	lockdep_assert_held(&kprim_registry_lock);
	u = xa_load(&kprim_users, key);
	if (!u) {
		u = kzalloc(sizeof(*u), GFP_KERNEL_ACCOUNT);
		if (!u)
			return -ENOMEM;
		ret = xa_err(xa_store(&kprim_users, key, u, GFP_KERNEL));
		if (ret) {
			kfree(u);
			return ret;
		}
	}
	if (u->objects >= kprim_max_objects_per_user()) {
		if (!u->objects && !u->bytes)
			kfree(xa_erase(&kprim_users, key));
		return -EDQUOT;
	}
	u->objects++;
	return 0;
}

/* Undo kprim_user_charge() and any bytes @obj reserved. */
static void kprim_user_uncharge(struct kprim_object *obj)
{
	unsigned long key = __kuid_val(obj->quota_uid);
	struct kprim_user *u;

	lockdep_assert_held(&kprim_registry_lock);
	u = xa_load(&kprim_users, key);
	if (WARN_ON_ONCE(!u))
		return;
	u->objects--;
	u->bytes -= obj->reserved_bytes;
	obj->reserved_bytes = 0;
	if (!u->objects && !u->bytes)
		kfree(xa_erase(&kprim_users, key));
}

/**
 * kprim_obj_reserve_bytes() - reserve memory against the owner's quota.
 * @obj:	an object being created (from its kind's ->create, with the
 *		registry lock held); at most one reservation per object
 * @bytes:	the most memory the object may come to hold
 *
 * The reservation is returned when the object is freed.
 *
 * Return: 0, or -EDQUOT when the owner's objects would together reserve
 * more than the max_bytes_per_user module parameter.
 */
int kprim_obj_reserve_bytes(struct kprim_object *obj, u64 bytes)
{
	struct kprim_user *u;

	lockdep_assert_held(&kprim_registry_lock);
	u = xa_load(&kprim_users, __kuid_val(obj->quota_uid));
	if (WARN_ON_ONCE(!u || obj->reserved_bytes))
		return -EINVAL;
	if (bytes > READ_ONCE(max_bytes_per_user) ||
	    u->bytes > READ_ONCE(max_bytes_per_user) - bytes)
		return -EDQUOT;
	u->bytes += bytes;
	obj->reserved_bytes = bytes;
	return 0;
}

/*
 * Called by kref_put_mutex() with kprim_registry_lock held; drops it before
 * the kind's teardown, which may sleep.
 */
static void kprim_obj_release(struct kref *ref)
{
	struct kprim_object *obj = container_of(ref, struct kprim_object, ref);

	if (obj->linked) {
		hash_del(&obj->name_node);
		obj->linked = false;
	}
	xa_erase(&kprim_objects, obj->id);
	kprim_nr_objects--;
	kprim_user_uncharge(obj);
	mutex_unlock(&kprim_registry_lock);

	obj->ops->destroy(obj);
	kprim_ns_put(obj->ns);
	kfree(obj);
}

static void kprim_obj_put(struct kprim_object *obj)
{
	kref_put_mutex(&obj->ref, kprim_obj_release, &kprim_registry_lock);
}

/* Take the name away; returns the name's reference for the caller to put. */
static bool kprim_obj_unhash(struct kprim_object *obj)
{
	lockdep_assert_held(&kprim_registry_lock);
	if (!obj->linked)
		return false;
	hash_del(&obj->name_node);
	obj->linked = false;
	return !obj->transient;
}

/*
 * SysV-style check: the owner, group or other bits must grant @want, or
 * the caller has CAP_IPC_OWNER over the object's IPC namespace (as
 * ipcperms()). @listing: only filtering a listing, which must not fill the
 * audit log with denials.
 */
static bool kprim_obj_permitted(const struct kprim_object *obj, umode_t want,
				bool listing)
{
	struct user_namespace *user_ns = kprim_ns_user_ns(obj->ns);
	kuid_t euid = current_euid();
	umode_t granted;

	if (uid_eq(euid, obj->uid))
		granted = obj->mode >> 6;
	else if (in_group_p(obj->gid))
		granted = obj->mode >> 3;
	else
		granted = obj->mode;
	if ((granted & want) == want)
		return true;
	if (listing)
		return ns_capable_noaudit(user_ns, CAP_IPC_OWNER);
	return ns_capable(user_ns, CAP_IPC_OWNER);
}

/**
 * kprim_obj_owner_or_admin() - may the caller change or remove @obj?
 * @obj: the object
 *
 * Return: true for the owner and for CAP_SYS_ADMIN over the object's IPC
 * namespace (root of a child user namespace has no power over objects of
 * the initial one).
 */
bool kprim_obj_owner_or_admin(const struct kprim_object *obj)
{
	return uid_eq(current_euid(), obj->uid) ||
	       ns_capable(kprim_ns_user_ns(obj->ns), CAP_SYS_ADMIN);
}

/**
 * kprim_is_object_file() - is @file an object fd of this module?
 * @file: any file
 *
 * Return: true when @file was made by kprim_obj_open().
 */
bool kprim_is_object_file(const struct file *file)
{
	return file->f_op == &kprim_obj_fops;
}

static int kprim_name_copy(char *dst, u64 uptr, u32 len)
{
	if (!len)
		return uptr ? -EINVAL : 0;
	if (len > KPRIM_NAME_MAX)
		return -ENAMETOOLONG;
	if (copy_from_user(dst, u64_to_user_ptr(uptr), len))
		return -EFAULT;
	dst[len] = '\0';
	if (memchr(dst, '\0', len) || memchr(dst, '/', len))
		return -EINVAL;
	return 0;
}

static struct kprim_object *kprim_obj_create(const struct kprim_kind_ops *ops,
					     const struct kprim_open *args,
					     const char *name, void *ns)
{
	struct kprim_object *obj;
	int ret;

	lockdep_assert_held(&kprim_registry_lock);
	if (kprim_nr_objects >= kprim_max_objects())
		return ERR_PTR(-ENOSPC);

	obj = kzalloc(sizeof(*obj), GFP_KERNEL_ACCOUNT);
	if (!obj)
		return ERR_PTR(-ENOMEM);
	kref_init(&obj->ref);
	obj->ops = ops;
	obj->uid = current_euid();
	obj->gid = current_egid();
	obj->quota_uid = kprim_quota_uid();
	obj->mode = args->mode;
	/*
	 * Outside the initial IPC namespace every name is transient: nothing
	 * tells a module that a namespace died, and a persistent name would
	 * keep the namespace (and the object) alive forever.
	 */
	obj->transient = (args->flags & KPRIM_OPEN_TRANSIENT) ||
			 !kprim_ns_is_initial(ns);
	obj->name_len = args->name_len;
	memcpy(obj->name, name, args->name_len);

	/* Charged first: ->create may reserve bytes against the owner. */
	ret = kprim_user_charge(obj->quota_uid);
	if (ret)
		goto free_obj;
	ret = ops->create(obj, args);
	if (ret)
		goto uncharge;
	obj->id = kprim_next_id;
	ret = xa_err(xa_store(&kprim_objects, obj->id, obj, GFP_KERNEL));
	if (ret)
		goto destroy;
	kprim_next_id++;
	kprim_nr_objects++;
	obj->ns = ns;
	if (obj->name_len) {
		hash_add(kprim_names, &obj->name_node,
			 kprim_name_hash(ns, ops->kind, obj->name,
					 obj->name_len));
		obj->linked = true;
		/* The name of a persistent object holds a reference. */
		if (!obj->transient)
			kref_get(&obj->ref);
	}
	return obj;

destroy:
	ops->destroy(obj);
uncharge:
	kprim_user_uncharge(obj);
free_obj:
	kfree(obj);
	return ERR_PTR(ret);
}

/* Look the object up, or create it; returns it with a reference for an fd. */
static struct kprim_object *kprim_obj_get_or_create(const struct kprim_kind_ops *ops,
						    const struct kprim_open *args,
						    const char *name,
						    bool *created)
{
	struct kprim_object *obj = NULL;
	void *ns;

	ns = kprim_ns_get();
	if (IS_ERR(ns))
		return ns;

	mutex_lock(&kprim_registry_lock);
	if (args->name_len)
		obj = kprim_name_find(ns, ops->kind, name, args->name_len);
	if (obj) {
		if (args->flags & KPRIM_OPEN_EXCL) {
			obj = ERR_PTR(-EEXIST);
		} else if (!kprim_obj_permitted(obj, 06, false)) {
			obj = ERR_PTR(-EACCES);
		} else if ((args->flags & KPRIM_OPEN_OWNED) &&
			   !uid_eq(current_euid(), obj->uid)) {
			/* Openable, but another user's: maybe a squatter. */
			obj = ERR_PTR(-EPERM);
		} else {
			kref_get(&obj->ref);
			obj->found_by_name = true;
			*created = false;
		}
	} else if (!(args->flags & KPRIM_OPEN_CREATE) && args->name_len) {
		obj = ERR_PTR(-ENOENT);
	} else {
		obj = kprim_obj_create(ops, args, name, ns);
		if (!IS_ERR(obj)) {
			*created = true;
			ns = NULL;	/* the object owns the namespace pin */
		}
	}
	mutex_unlock(&kprim_registry_lock);
	if (ns)
		kprim_ns_put(ns);
	return obj;
}

static int kprim_open_check(const struct kprim_open *args)
{
	if (args->flags & ~KPRIM_OPEN_FLAGS)
		return -EINVAL;
	if (args->reserved || (args->mode & ~0777))
		return -EINVAL;
	if ((args->flags & KPRIM_OPEN_EXCL) && !(args->flags & KPRIM_OPEN_CREATE))
		return -EINVAL;
	if ((args->flags & KPRIM_OPEN_TRANSIENT) &&
	    !(args->flags & KPRIM_OPEN_CREATE))
		return -EINVAL;
	if ((args->flags & KPRIM_OPEN_INHERIT) &&
	    (args->flags & KPRIM_OPEN_CLOEXEC))
		return -EINVAL;
	return 0;
}

/**
 * kprim_obj_open() - KPRIM_IOC_OPEN: create or open an object.
 * @uargs: struct kprim_open in userspace
 *
 * The new fd is close-on-exec unless KPRIM_OPEN_INHERIT is given.
 *
 * Return: the new object fd; -EINVAL for bad flags, kind, mode, reserved
 * fields, names or parameters; -ENAMETOOLONG; -EFAULT; -EEXIST (EXCL);
 * -EPERM (OWNED, and the object is another uid's); -ENOENT (no CREATE);
 * -EACCES; -ENOSPC (max_objects); -EDQUOT (per-user object or byte quota);
 * -EMFILE; -ENFILE; -ENOMEM; -EOPNOTSUPP outside the initial IPC namespace
 * on kernels where a module cannot pin one.
 */
long kprim_obj_open(const struct kprim_open __user *uargs)
{
	const struct kprim_kind_ops *ops;
	char name[KPRIM_NAME_MAX + 1];
	struct kprim_object *obj;
	struct kprim_handle *h;
	struct kprim_open args;
	struct file *file;
	bool created = false;
	int fd, ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_OPEN_VER0, uargs);
	if (ret)
		return ret;
	ret = kprim_open_check(&args);
	if (ret)
		return ret;
	ops = kprim_kind_lookup(args.kind);
	if (!ops)
		return -EINVAL;
	ret = kprim_name_copy(name, args.name, args.name_len);
	if (ret)
		return ret;
	/* Parameters of a create are checked even when the object exists. */
	if (args.flags & KPRIM_OPEN_CREATE || !args.name_len) {
		ret = ops->check(&args);
		if (ret)
			return ret;
	}

	h = kzalloc(sizeof(*h), GFP_KERNEL_ACCOUNT);
	if (!h)
		return -ENOMEM;
	fd = get_unused_fd_flags(O_RDWR |
				 (args.flags & KPRIM_OPEN_INHERIT ? 0 : O_CLOEXEC));
	if (fd < 0) {
		ret = fd;
		goto free_handle;
	}

	obj = kprim_obj_get_or_create(ops, &args, name, &created);
	if (IS_ERR(obj)) {
		ret = PTR_ERR(obj);
		goto put_fd;
	}
	h->obj = obj;
	h->tgid = get_pid(task_tgid(current));
	if (ops->open_handle) {
		ret = ops->open_handle(h);
		if (ret)
			goto put_obj;
	}
	file = anon_inode_getfile(ops->fd_name, &kprim_obj_fops, h, O_RDWR);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto release_handle;
	}
	fd_install(fd, file);
	return fd;

release_handle:
	if (ops->release_handle)
		ops->release_handle(h);
put_obj:
	/*
	 * A failed open must not leave behind an object it created, unless
	 * another open found it by its name meanwhile: then it is theirs.
	 * (Other references, such as LIST's, say nothing about that.)
	 */
	if (created) {
		bool put_name = false;

		mutex_lock(&kprim_registry_lock);
		if (!obj->found_by_name)
			put_name = kprim_obj_unhash(obj);
		mutex_unlock(&kprim_registry_lock);
		if (put_name)
			kprim_obj_put(obj);
	}
	kprim_obj_put(obj);
put_fd:
	put_unused_fd(fd);
free_handle:
	put_pid(h->tgid);
	kfree(h);
	return ret;
}

/**
 * kprim_obj_unlink() - KPRIM_IOC_UNLINK: remove an object's name.
 * @uargs: struct kprim_unlink in userspace
 *
 * Return: 0; -EINVAL (flags, kind, name); -ENAMETOOLONG; -EFAULT; -ENOENT;
 * -EPERM when the caller neither owns the object nor has CAP_SYS_ADMIN;
 * -EOPNOTSUPP (see kprim_obj_open()).
 */
long kprim_obj_unlink(const struct kprim_unlink __user *uargs)
{
	char name[KPRIM_NAME_MAX + 1];
	struct kprim_unlink args;
	struct kprim_object *obj;
	bool put_name = false;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_UNLINK_VER0,
			      uargs);
	if (ret)
		return ret;
	if (args.flags || !kprim_kind_lookup(args.kind) || !args.name_len)
		return -EINVAL;
	ret = kprim_name_copy(name, args.name, args.name_len);
	if (ret)
		return ret;
	if (!kprim_ns_supported())
		return -EOPNOTSUPP;

	mutex_lock(&kprim_registry_lock);
	obj = kprim_name_find(kprim_ns_current(), args.kind, name,
			      args.name_len);
	if (!obj)
		ret = -ENOENT;
	else if (!kprim_obj_owner_or_admin(obj))
		ret = -EPERM;
	else
		put_name = kprim_obj_unhash(obj);
	mutex_unlock(&kprim_registry_lock);
	if (put_name)
		kprim_obj_put(obj);
	return ret;
}

static void kprim_obj_fill_info(struct kprim_object *obj,
				struct kprim_obj_info *info)
{
	struct user_namespace *ns = current_user_ns();

	memset(info, 0, sizeof(*info));
	info->id = obj->id;
	info->kind = obj->ops->kind;
	info->uid = from_kuid_munged(ns, obj->uid);
	info->gid = from_kgid_munged(ns, obj->gid);
	info->name_len = obj->name_len;
	memcpy(info->name, obj->name, obj->name_len);
	mutex_lock(&kprim_registry_lock);
	info->mode = obj->mode;
	if (obj->transient)
		info->flags |= KPRIM_OBJ_TRANSIENT;
	if (obj->name_len && !obj->linked)
		info->flags |= KPRIM_OBJ_UNLINKED;
	mutex_unlock(&kprim_registry_lock);
	/* Not counting the reference LIST itself holds while it reports. */
	info->refs = kref_read(&obj->ref) - 1;
	obj->ops->fill_info(obj, info);
}

#define KPRIM_LIST_BATCH	64

/**
 * kprim_obj_list() - KPRIM_IOC_LIST: report objects the caller may read.
 * @uargs: struct kprim_list in userspace
 *
 * Reports at most 64 entries per call; the caller continues at next_id.
 * Each entry is the first entry_size bytes of our struct kprim_obj_info,
 * zero-filled beyond it: callers built against any version keep working.
 *
 * Return: 0; -EINVAL (flags, entry_size below the first version); -E2BIG
 * (entry_size above a page); -EFAULT; -EOPNOTSUPP (see kprim_obj_open()).
 */
long kprim_obj_list(struct kprim_list __user *uargs)
{
	struct kprim_object *batch[KPRIM_LIST_BATCH];
	struct kprim_obj_info *info;
	struct kprim_object *obj;
	struct kprim_list args;
	unsigned long id;
	unsigned int n = 0, i;
	void *ns = kprim_ns_current();
	char __user *dst;
	size_t len;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_LIST_VER0, uargs);
	if (ret)
		return ret;
	if (args.flags || args.entry_size < KPRIM_SIZE_OBJ_INFO_VER0)
		return -EINVAL;
	if (args.entry_size > PAGE_SIZE)
		return -E2BIG;
	if (!kprim_ns_supported())
		return -EOPNOTSUPP;

	args.next_id = 0;
	mutex_lock(&kprim_registry_lock);
	xa_for_each_start(&kprim_objects, id, obj, args.start_id) {
		if (n == min_t(u32, args.count, KPRIM_LIST_BATCH)) {
			args.next_id = id;
			break;
		}
		if (obj->ns != ns || !kprim_obj_permitted(obj, 04, true))
			continue;
		kref_get(&obj->ref);
		batch[n++] = obj;
	}
	mutex_unlock(&kprim_registry_lock);

	info = kmalloc(sizeof(*info), GFP_KERNEL);
	ret = info ? 0 : -ENOMEM;
	dst = u64_to_user_ptr(args.buf);
	len = min_t(size_t, args.entry_size, sizeof(*info));
	for (i = 0; i < n; i++) {
		if (!ret) {
			kprim_obj_fill_info(batch[i], info);
			if (copy_to_user(dst, info, len) ||
			    clear_user(dst + len, args.entry_size - len))
				ret = -EFAULT;
			dst += args.entry_size;
		}
		kprim_obj_put(batch[i]);
	}
	kfree(info);
	if (ret)
		return ret;
	args.count = n;
	return kprim_copy_args_out(uargs, &args, sizeof(args));
}

static int kprim_obj_file_release(struct inode *inode, struct file *file)
{
	struct kprim_handle *h = file->private_data;

	if (h->obj->ops->release_handle)
		h->obj->ops->release_handle(h);
	kprim_obj_put(h->obj);
	put_pid(h->tgid);
	kfree(h);
	return 0;
}

static long kprim_obj_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct kprim_handle *h = file->private_data;

	if (_IOC_TYPE(cmd) != KPRIM_IOC_MAGIC)
		return -ENOTTY;
	/* It ends io_uring waits of the ring it is sent through. */
	if (KPRIM_CMD(cmd) == KPRIM_CMD(KPRIM_IOC_WAIT_CANCEL))
		return -EOPNOTSUPP;
	/* Direct calls for the kinds whose hot path is an ioctl: no retpoline. */
	return INDIRECT_CALL_3(h->obj->ops->ioctl, kprim_limiter_ioctl,
			       kprim_sem_ioctl, kprim_cache_ioctl, h, cmd,
			       (void __user *)arg);
}

static __poll_t kprim_obj_poll(struct file *file, poll_table *pt)
{
	struct kprim_handle *h = file->private_data;

	return h->obj->ops->poll(h, file, pt);
}

/*
 * A mapping whose page was zapped (madvise(MADV_DONTNEED)) gets it back on
 * the next access.
 */
static vm_fault_t kprim_obj_page_fault(struct vm_fault *vmf)
{
	struct kprim_handle *h = vmf->vma->vm_file->private_data;
	struct page *page = h->obj->ops->map_page(h);
	int ret;

	if (IS_ERR(page))
		return VM_FAULT_SIGBUS;
	ret = vm_insert_page(vmf->vma, vmf->address & PAGE_MASK, page);
	if (ret && ret != -EBUSY)
		return ret == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
	return VM_FAULT_NOPAGE;
}

static const struct vm_operations_struct kprim_obj_vm_ops = {
	.fault		= kprim_obj_page_fault,
};

/*
 * mmap() of an object fd: the kind's page (the limiter's state page, a
 * semaphore fd's slot), one page at offset 0, shared (a private copy would
 * not be the object's) and never executable.
 */
static int kprim_obj_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct kprim_handle *h = file->private_data;
	struct page *page;

	if (!KPRIM_SHARED_PAGES || !h->obj->ops->map_page)
		return -ENODEV;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != PAGE_SIZE ||
	    !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	page = h->obj->ops->map_page(h);
	if (IS_ERR(page))
		return PTR_ERR(page);
	kprim_vm_flags_mod(vma, VM_DONTEXPAND | VM_MIXEDMAP, VM_MAYEXEC);
	vma->vm_ops = &kprim_obj_vm_ops;
	return vm_insert_page(vma, vma->vm_start, page);
}

static void kprim_obj_show_fdinfo(struct seq_file *m, struct file *file)
{
	struct kprim_handle *h = file->private_data;
	struct kprim_object *obj = h->obj;

	seq_printf(m, "kprim-kind:\t%s\n", obj->ops->name);
	seq_printf(m, "kprim-id:\t%llu\n", obj->id);
	if (obj->name_len) {
		/* Names may hold any byte but NUL and '/': keep lines intact. */
		seq_puts(m, "kprim-name:\t");
		seq_escape(m, obj->name, " \t\n\\");
		seq_puts(m, READ_ONCE(obj->linked) ? "\n" : " (unlinked)\n");
	} else
		seq_puts(m, "kprim-name:\t(anonymous)\n");
	seq_printf(m, "kprim-owner:\t%u:%u mode %04o\n",
		   from_kuid_munged(seq_user_ns(m), obj->uid),
		   from_kgid_munged(seq_user_ns(m), obj->gid),
		   READ_ONCE(obj->mode));
	obj->ops->show_fdinfo(h, m);
}

static const struct file_operations kprim_obj_fops = {
	.owner		= THIS_MODULE,
	.release	= kprim_obj_file_release,
	.unlocked_ioctl	= kprim_obj_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.poll		= kprim_obj_poll,
	.mmap		= kprim_obj_mmap,
	.show_fdinfo	= kprim_obj_show_fdinfo,
	.uring_cmd	= kprim_obj_uring_cmd,
	.llseek		= noop_llseek,
};

/**
 * kprim_registry_exit() - free every object at module unload.
 *
 * No fd can be open (each holds a module reference), so only the names of
 * persistent objects still hold references.
 */
void kprim_registry_exit(void)
{
	struct kprim_object *obj;
	unsigned long id;

	for (;;) {
		bool put_name = false;

		id = 0;
		mutex_lock(&kprim_registry_lock);
		obj = xa_find(&kprim_objects, &id, ULONG_MAX, XA_PRESENT);
		if (obj) {
			put_name = kprim_obj_unhash(obj);
			WARN_ON_ONCE(!put_name);
		}
		mutex_unlock(&kprim_registry_lock);
		if (!obj)
			break;
		if (put_name)
			kprim_obj_put(obj);
		else
			break;	/* cannot happen: no fd is open */
	}
	xa_destroy(&kprim_objects);
	WARN_ON_ONCE(!xa_empty(&kprim_users));
	xa_destroy(&kprim_users);
}
