// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - copying versioned ioctl arguments (size + flags header).
 */
#include <linux/fault-inject-usercopy.h>
#include <linux/uaccess.h>
#include <linux/ioctl.h>
#include "kprim.h"

/*
 * The common case, a caller built against this module's own struct, is
 * copied a u64 at a time within one user access window. Every caller
 * passes sizeof() of its struct for @ksize, so these copies have the fixed
 * size of a struct the compiler knows, like constant-size copy_from_user()
 * calls, which skip hardened usercopy's run-time object check too: on a
 * cache get that check cost more instructions than the copies themselves.
 * Like copy_from_user(), they honour fail_usercopy fault injection.
 */
static bool kprim_args_fast(size_t usize, size_t ksize)
{
	return usize == ksize && IS_ALIGNED(ksize, sizeof(u64));
}

/**
 * __kprim_copy_args() - copy a versioned argument struct from userspace:
 *	the general path of kprim_copy_args() (kprim.h).
 * @dst:	kernel struct, @ksize bytes
 * @ksize:	size of the struct this module knows
 * @min_size:	first published size of the struct
 * @src:	user pointer; its first __u32 is the caller's size
 *
 * A smaller caller struct is zero-extended; a larger one must have a zero
 * tail (the caller asked for something this module does not know).
 *
 * Return: 0; -EFAULT on a bad pointer; -EINVAL when the size is below
 * @min_size; -E2BIG when it is above a page or the unknown tail is not zero.
 */
int __kprim_copy_args(void *dst, size_t ksize, size_t min_size,
		      const void __user *src)
{
	u32 usize;
	int ret;

	if (get_user(usize, (const u32 __user *)src))
		return -EFAULT;
	if (usize < min_size)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	if (kprim_args_fast(usize, ksize)) {
		const u64 __user *s = src;
		u64 *d = dst;
		size_t i;

		if (should_fail_usercopy() ||
		    !user_read_access_begin(src, ksize))
			return -EFAULT;
		for (i = 0; i < ksize / sizeof(u64); i++)
			unsafe_get_user(d[i], &s[i], efault_read);
		user_read_access_end();
		/* What get_user() saw, not what the caller wrote since. */
		*(u32 *)dst = usize;
		return 0;
	}
	ret = copy_struct_from_user(dst, ksize, src, usize);
	if (ret)
		return ret;
	/* Report back in the size the kernel filled, never more than asked. */
	*(u32 *)dst = min_t(u32, usize, ksize);
	return 0;

efault_read:
	user_read_access_end();
	return -EFAULT;
}

/**
 * kprim_copy_args_out() - copy a struct filled by kprim_copy_args() back.
 * @dst:	the user pointer it came from
 * @src:	the kernel struct; its size field says how much the caller has
 * @ksize:	size of the kernel struct
 *
 * Return: 0 or -EFAULT.
 */
int kprim_copy_args_out(void __user *dst, const void *src, size_t ksize)
{
	size_t n = min_t(size_t, *(const u32 *)src, ksize);

	if (kprim_args_fast(n, ksize)) {
		const u64 *s = src;
		u64 __user *d = dst;
		size_t i;

		might_fault();
		if (should_fail_usercopy() ||
		    !user_write_access_begin(dst, ksize))
			return -EFAULT;
		for (i = 0; i < ksize / sizeof(u64); i++)
			unsafe_put_user(s[i], &d[i], efault);
		user_write_access_end();
		return 0;
	}
	return copy_to_user(dst, src, n) ? -EFAULT : 0;

efault:
	user_write_access_end();
	return -EFAULT;
}
