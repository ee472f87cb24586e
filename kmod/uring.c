// SPDX-License-Identifier: GPL-2.0
/*
 * kprim - io_uring commands on object fds (IORING_OP_URING_CMD).
 *
 * An SQE names the operation in cmd_op (the ioctl command) and carries, in
 * the first 8 bytes of its command area, the user pointer the ioctl would
 * take. The same handlers run with the same semantics and errnos, so a
 * batch of cache gets, limiter takes or semaphore releases costs one
 * io_uring_enter() instead of one syscall each.
 *
 * The argument pointer is read exactly once, when the request is issued:
 * kprim never returns -EAGAIN to io_uring, so no request is ever issued
 * twice, and nothing depends on where a kernel version points the command
 * at (the SQ ring slot, which userspace may reuse, or a copy).
 *
 * A take or an acquire that must wait does not occupy a thread: it is
 * queued in the object's FIFO when issued and completed by whoever grants
 * it (async.c). The kinds implement that in their ->wait_cmd(); every
 * other command runs the ioctl handler inline.
 *
 * -EAGAIN from a handler is the operation's own answer (a try that found
 * the bucket or the semaphore short): the request completes with it at
 * once, through io_uring_cmd_done(), because -EAGAIN returned to io_uring
 * means "issue me again from a worker" and would run the try a second
 * time.
 *
 * Cancellation: io_uring calls here with IO_URING_F_CANCEL for a queued
 * wait whose ring is torn down or whose submitter execs (kernels with
 * cancelable uring_cmds; async.c covers 6.1). IORING_OP_ASYNC_CANCEL does
 * not reach uring_cmd requests at all, hence KPRIM_IOC_WAIT_CANCEL.
 */
#include <linux/uaccess.h>
#include "kprim.h"

/**
 * kprim_obj_uring_cmd() - &file_operations.uring_cmd of object fds.
 * @ioucmd:	the command
 * @issue_flags: IO_URING_F_*
 *
 * Return: what the ioctl returns; -ENOTTY for a command of another
 * driver; -EIOCBQUEUED for a request that is queued or already completed
 * (with -EAGAIN, say).
 */
int kprim_obj_uring_cmd(struct io_uring_cmd *ioucmd, unsigned int issue_flags)
{
	struct kprim_handle *h = ioucmd->file->private_data;
	const struct kprim_kind_ops *ops = h->obj->ops;
	u32 cmd = ioucmd->cmd_op;
	void __user *arg;
	long ret;

	BUILD_BUG_ON(sizeof(struct kprim_uring_pdu) > sizeof(ioucmd->pdu));
	if (kprim_uring_cmd_is_cancel(issue_flags)) {
		kprim_async_uring_cancel(ioucmd, issue_flags);
		return 0;
	}
	if (_IOC_TYPE(cmd) != KPRIM_IOC_MAGIC)
		return -ENOTTY;
	/* The command area may be shared with userspace: read it once. */
	arg = u64_to_user_ptr(READ_ONCE(*(const u64 *)
					kprim_uring_cmd_area(ioucmd)));

	if (KPRIM_CMD(cmd) == KPRIM_CMD(KPRIM_IOC_WAIT_CANCEL))
		return kprim_async_cancel_cmd(h, arg, ioucmd);
	ret = -ENOIOCTLCMD;
	if (ops->wait_cmd)
		ret = ops->wait_cmd(h, cmd, arg, ioucmd, issue_flags);
	if (ret == -ENOIOCTLCMD)
		ret = ops->ioctl(h, cmd, arg);
	if (ret == -EAGAIN) {
		io_uring_cmd_done(ioucmd, ret, 0, issue_flags);
		return -EIOCBQUEUED;
	}
	/* io_uring does not restart a command a signal interrupted. */
	if (ret == -ERESTARTSYS)
		ret = -EINTR;
	return ret;
}
