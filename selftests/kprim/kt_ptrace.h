/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ptrace() helpers for the kprim selftests that count the system calls of
 * a fast path (a limiter take or a semaphore pair done in userspace): the
 * kernel's own record of what entered it, not the library's word.
 */
#ifndef KPRIM_KT_PTRACE_H
#define KPRIM_KT_PTRACE_H

#include <signal.h>
#include <stdbool.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

/* What a traced child did between its two marker calls of getppid(). */
struct kt_syscalls {
	int status;	/* the child's exit status (@body's return), or -1 */
	int ioctls;	/* ioctl() calls */
	int others;	/* every other system call */
};

/*
 * Fork a child that runs @setup(@arg) (when not NULL; a non-zero return
 * is its exit status), then stops for ptrace() and runs @body(@arg)
 * between two marker calls of getppid(); @body's return is its exit
 * status. Count the system calls that entered the kernel between the
 * markers. (clock_gettime() is a system call only where the clocksource
 * has no vDSO reading, e.g. HPET: counted in others.) x86-64 only.
 */
static inline struct kt_syscalls kt_count_syscalls(int (*setup)(void *),
						   int (*body)(void *),
						   void *arg)
{
	struct kt_syscalls c = { .status = -1 };
	bool inside = false, entry = false;	/* the last stop was an entry */
	pid_t pid = fork();
	int st;

	if (!pid) {
		int ret = setup ? setup(arg) : 0;

		if (ret)
			_exit(ret);
		if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
			_exit(252);
		raise(SIGSTOP);
		syscall(SYS_getppid);
		ret = body(arg);
		syscall(SYS_getppid);
		_exit(ret);
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st))
		return c;
	ptrace(PTRACE_SETOPTIONS, pid, NULL,
	       (void *)(long)(PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL));
	for (;;) {
		struct user_regs_struct r;
		long nr;

		if (ptrace(PTRACE_SYSCALL, pid, NULL, NULL) ||
		    waitpid(pid, &st, 0) != pid)
			return c;
		if (WIFEXITED(st)) {
			c.status = WEXITSTATUS(st);
			return c;
		}
		if (!WIFSTOPPED(st) || WSTOPSIG(st) != (SIGTRAP | 0x80))
			continue;
		/* Stops alternate: entry, exit, entry... Count entries. */
		entry = !entry;
		if (!entry)
			continue;
		if (ptrace(PTRACE_GETREGS, pid, NULL, &r))
			return c;
		nr = (long)r.orig_rax;
		if (nr == SYS_getppid)
			inside = !inside;
		else if (inside && nr == SYS_ioctl)
			c.ioctls++;
		else if (inside)
			c.others++;
	}
}

#endif /* KPRIM_KT_PTRACE_H */
