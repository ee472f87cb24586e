// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - host-wide concurrency primitives: the /dev/kprim session device.
 *
 * Opening /dev/kprim gives a session fd. It holds no state of its own: it
 * is the door through which objects are created, opened, unlinked and
 * listed. Everything else happens on the object fds (object.c).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include "kprim.h"
#include "cache.h"

#define KPRIM_FEATURES	(KPRIM_FEAT_LIMITER | KPRIM_FEAT_SEM | \
			 KPRIM_FEAT_CACHE | KPRIM_FEAT_LIST | \
			 KPRIM_FEAT_URING_CMD | KPRIM_FEAT_OPEN_OWNED | \
			 KPRIM_FEAT_CLOEXEC_DEFAULT | KPRIM_FEAT_CACHE_MGET | \
			 KPRIM_FEAT_URING_ASYNC)

static long kprim_api(struct kprim_api __user *uargs)
{
	struct kprim_api args;
	int ret;

	ret = kprim_copy_args(&args, sizeof(args), KPRIM_SIZE_API_VER0, uargs);
	if (ret)
		return ret;
	if (args.flags)
		return -EINVAL;
	args.api_version = KPRIM_API_VERSION;
	args.reserved0 = 0;
	args.features = KPRIM_FEATURES;
	if (KPRIM_SHARED_PAGES)
		args.features |= KPRIM_FEAT_LIMITER_PAGE | KPRIM_FEAT_SEM_SLOT;
	if (KPRIM_NS_SCOPED)
		args.features |= KPRIM_FEAT_IPC_NS;
	args.max_objects = kprim_max_objects();
	args.max_objects_per_user = kprim_max_objects_per_user();
	return kprim_copy_args_out(uargs, &args, sizeof(args));
}

static long kprim_session_ioctl(struct file *file, unsigned int cmd,
				unsigned long arg)
{
	void __user *uarg = (void __user *)arg;

	switch (KPRIM_CMD(cmd)) {
	case KPRIM_CMD(KPRIM_IOC_API):
		return kprim_api(uarg);
	case KPRIM_CMD(KPRIM_IOC_OPEN):
		return kprim_obj_open(uarg);
	case KPRIM_CMD(KPRIM_IOC_UNLINK):
		return kprim_obj_unlink(uarg);
	case KPRIM_CMD(KPRIM_IOC_LIST):
		return kprim_obj_list(uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kprim_session_fops = {
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.unlocked_ioctl	= kprim_session_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice kprim_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= KPRIM_DEVICE_NAME,
	.fops	= &kprim_session_fops,
	.mode	= 0666,
};

static void kprim_check_abi(void)
{
	BUILD_BUG_ON(sizeof(struct kprim_api) != KPRIM_SIZE_API_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_open) != KPRIM_SIZE_OPEN_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_unlink) != KPRIM_SIZE_UNLINK_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_list) != KPRIM_SIZE_LIST_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_obj_info) < KPRIM_SIZE_OBJ_INFO_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_limiter_take) !=
		     KPRIM_SIZE_LIMITER_TAKE_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_limiter_set) !=
		     KPRIM_SIZE_LIMITER_SET_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_limiter_info) !=
		     KPRIM_SIZE_LIMITER_INFO_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_sem_acquire) !=
		     KPRIM_SIZE_SEM_ACQUIRE_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_sem_release) !=
		     KPRIM_SIZE_SEM_RELEASE_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_sem_resize) !=
		     KPRIM_SIZE_SEM_RESIZE_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_sem_info) != KPRIM_SIZE_SEM_INFO_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_cache_get) !=
		     KPRIM_SIZE_CACHE_GET_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_cache_store) !=
		     KPRIM_SIZE_CACHE_STORE_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_cache_key) !=
		     KPRIM_SIZE_CACHE_KEY_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_cache_incr) !=
		     KPRIM_SIZE_CACHE_INCR_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_cache_info) !=
		     KPRIM_SIZE_CACHE_INFO_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_hdr) != KPRIM_SIZE_HDR_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_wait_cancel) !=
		     KPRIM_SIZE_WAIT_CANCEL_VER0);
	BUILD_BUG_ON(sizeof(struct kprim_wait) != 16);
	BUILD_BUG_ON(offsetof(struct kprim_open, limiter) != 32);
}

static int __init kprim_init(void)
{
	int ret;

	kprim_check_abi();
	ret = kprim_cache_module_init();
	if (ret)
		return ret;
	/* Last: once the device exists, objects can be created. */
	ret = misc_register(&kprim_misc);
	if (ret)
		goto cache_exit;
	pr_info("/dev/%s ready (API %d)\n", KPRIM_DEVICE_NAME,
		KPRIM_API_VERSION);
	return 0;

cache_exit:
	kprim_cache_module_exit();
	return ret;
}

/* No fd can be open here: each holds a reference on the module. */
static void __exit kprim_exit(void)
{
	misc_deregister(&kprim_misc);
	kprim_registry_exit();
	kprim_cache_module_exit();
	kprim_async_exit();
}

module_init(kprim_init);
module_exit(kprim_exit);
MODULE_DESCRIPTION("kprim: host-wide rate limiters, semaphores and caches");
MODULE_AUTHOR("The kprim authors");
MODULE_LICENSE("GPL");
