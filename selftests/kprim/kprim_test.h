/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers for the kprim kselftests: raw ioctls on /dev/kprim, so the
 * tests exercise the ABI itself, not the library.
 */
#ifndef KPRIM_TEST_H
#define KPRIM_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "../../kmod/uapi/kprim.h"

#define KT_DEV "/dev/kprim"

/* ioctl() as a negative errno, like the kernel returns it. */
static inline long kt_ioctl(int fd, unsigned long cmd, void *arg)
{
	long ret = ioctl(fd, cmd, arg);

	return ret < 0 ? -errno : ret;
}

static inline int kt_session(void)
{
	return open(KT_DEV, O_RDWR | O_CLOEXEC);
}

/* A struct kprim_open for @kind and @name (NULL: anonymous). */
static inline struct kprim_open kt_open_args(__u32 kind, const char *name,
					     __u32 flags)
{
	struct kprim_open a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.flags = flags;
	a.kind = kind;
	a.mode = 0600;
	if (name) {
		a.name = (uintptr_t)name;
		a.name_len = strlen(name);
	}
	return a;
}

/* Open or create; returns the object fd or a negative errno. */
static inline int kt_open(int sess, struct kprim_open *a)
{
	return (int)kt_ioctl(sess, KPRIM_IOC_OPEN, a);
}

static inline int kt_unlink(int sess, __u32 kind, const char *name)
{
	struct kprim_unlink u = {
		.size = sizeof(u), .kind = kind,
		.name = (uintptr_t)name, .name_len = strlen(name),
	};

	return (int)kt_ioctl(sess, KPRIM_IOC_UNLINK, &u);
}

static inline struct kprim_wait kt_wait(__u64 timeout_ns, int cancel_fd)
{
	struct kprim_wait w = { .timeout_ns = timeout_ns, .cancel_fd = cancel_fd };

	return w;
}

static inline uint64_t kt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * Unload kprim, never waiting: 0 when it went, else -errno (-EWOULDBLOCK
 * or -EBUSY while anything holds the module).
 */
static inline int kt_try_rmmod(void)
{
	return syscall(SYS_delete_module, "kprim", O_NONBLOCK) ? -errno : 0;
}

/* Wait for the child @pid: its exit status, 255 + its signal, or -1. */
static inline int kt_reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 255 + WTERMSIG(st);
}

/* A name unique to this process and call site, for tests run in parallel. */
#define KT_NAME(buf, tag) \
	snprintf(buf, sizeof(buf), "kt-%s-%d-%d", tag, getpid(), __LINE__)

#endif /* KPRIM_TEST_H */
