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
 * The argument pointer is read exactly once, when the request is first
 * issued, and kept in the command's pdu. A later issue of the same
 * request takes it from there and never looks at the command area again:
 * 6.12 re-issues with the command still pointing at the SQ ring slot,
 * which userspace may have reused by then, 6.1 at a copy. What tells a
 * re-issue from a new request is a flag io_uring resets for every new
 * request (kprim_uring_cmd_reissued(), compat.h), never the pdu, which a
 * recycled request inherits unchanged from the one before it.
 *
 * Operations that may sleep (a take or an acquire with a timeout) are never
 * run on the non-blocking issue path: -EAGAIN there makes io_uring re-issue
 * them from its worker threads, where they wait exactly like the ioctl.
 * Whether a call may sleep is decided from its timeout, peeked before the
 * handler copies the arguments; a submitter that changes the timeout in
 * between only moves its own call to or from a worker (at worst, its
 * io_uring_enter() waits like the ioctl would). A cancellation
 * (IORING_OP_ASYNC_CANCEL, ring exit) reaches such a waiter as a signal: it
 * completes with -EINTR and leaves nothing queued.
 *
 * Every other -EAGAIN is the operation's own answer (a try that found the
 * bucket or the semaphore short): the request completes with it at once,
 * through io_uring_cmd_done(), because -EAGAIN returned to io_uring means
 * "issue me again from a worker" and would run the try a second time.
 *
 * Limits of that design, which a future async-completion path would lift:
 * each waiting request occupies one of io_uring's bounded workers (per
 * ring at most min(SQ entries, 4 * CPUs)), and its timeout and FIFO place
 * start when a worker picks it up, not at submission.
 */
#include <linux/uaccess.h>
#include "kprim.h"

/**
 * struct kprim_uring_pdu - what the first issue read, for a re-issue.
 * @uptr:	the argument pointer
 */
struct kprim_uring_pdu {
	u64 uptr;
};

/**
 * kprim_obj_uring_cmd() - &file_operations.uring_cmd of object fds.
 * @ioucmd:	the command
 * @issue_flags: IO_URING_F_*
 *
 * Return: what the ioctl returns (-EINTR for an interrupted wait: io_uring
 * cannot restart a call); -ENOTTY for a command of another driver;
 * -EIOCBQUEUED for a request already completed with -EAGAIN; -EAGAIN to
 * have io_uring re-issue a possibly blocking operation from a context that
 * may sleep.
 */
int kprim_obj_uring_cmd(struct io_uring_cmd *ioucmd, unsigned int issue_flags)
{
	struct kprim_uring_pdu *pdu = (struct kprim_uring_pdu *)ioucmd->pdu;
	struct kprim_handle *h = ioucmd->file->private_data;
	const struct kprim_kind_ops *ops = h->obj->ops;
	u32 cmd = ioucmd->cmd_op;
	void __user *arg;
	long ret;

	BUILD_BUG_ON(sizeof(*pdu) > sizeof(ioucmd->pdu));
	if (_IOC_TYPE(cmd) != KPRIM_IOC_MAGIC)
		return -ENOTTY;
	if (!kprim_uring_cmd_reissued(ioucmd)) {
		/* The command area may be shared with userspace: read once. */
		pdu->uptr = READ_ONCE(*(const u64 *)kprim_uring_cmd_area(ioucmd));
	}
	arg = u64_to_user_ptr(pdu->uptr);

	if ((issue_flags & IO_URING_F_NONBLOCK) && ops->may_block &&
	    ops->may_block(cmd, arg)) {
		kprim_uring_cmd_mark_reissue(ioucmd);
		return -EAGAIN;
	}

	ret = ops->ioctl(h, cmd, arg);
	switch (ret) {
	case -EAGAIN:
		io_uring_cmd_done(ioucmd, ret, 0, issue_flags);
		return -EIOCBQUEUED;
	case -ERESTARTSYS:
		/* Cancellation of a worker; nothing would restart the call. */
		return -EINTR;
	default:
		return ret;
	}
}
