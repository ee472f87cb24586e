// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - copying versioned ioctl arguments (size + flags header).
 */
#include <linux/uaccess.h>
#include <linux/ioctl.h>
#include "kprim.h"

/**
 * kprim_copy_args() - copy a versioned argument struct from userspace.
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
int kprim_copy_args(void *dst, size_t ksize, size_t min_size,
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
	ret = copy_struct_from_user(dst, ksize, src, usize);
	if (ret)
		return ret;
	/* Report back in the size the kernel filled, never more than asked. */
	*(u32 *)dst = min_t(u32, usize, ksize);
	return 0;
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

	return copy_to_user(dst, src, n) ? -EFAULT : 0;
}
