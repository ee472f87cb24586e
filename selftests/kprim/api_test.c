// SPDX-License-Identifier: GPL-2.0
/*
 * kprim ABI tests: the session fd, the API handshake and the object model
 * (open/create/unlink/list, lifetime, permissions, fdinfo), each bad input
 * on its own.
 */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "exec_probe.h"

FIXTURE(session) {
	int fd;
};

FIXTURE_SETUP(session)
{
	self->fd = kt_session();
	if (self->fd < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
}

FIXTURE_TEARDOWN(session)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(session, api_handshake)
{
	struct kprim_api a = { .size = sizeof(a) };

	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_API, &a));
	EXPECT_EQ(KPRIM_API_VERSION, a.api_version);
	EXPECT_EQ(sizeof(a), a.size);
	EXPECT_NE(0, a.features & KPRIM_FEAT_LIMITER);
	EXPECT_NE(0, a.features & KPRIM_FEAT_LIST);
	EXPECT_LT(0, a.max_objects);
	EXPECT_LT(0, a.max_objects_per_user);
}

TEST_F(session, api_older_smaller_struct_is_refused)
{
	struct kprim_api a = { .size = KPRIM_SIZE_API_VER0 - 8 };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_API, &a));
}

TEST_F(session, api_larger_struct_zero_tail_accepted)
{
	struct { struct kprim_api a; __u64 future[4]; } big;

	memset(&big, 0, sizeof(big));
	big.a.size = sizeof(big);
	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_API, &big));
	EXPECT_EQ(KPRIM_API_VERSION, big.a.api_version);
	/* The kernel says how much it filled, and never writes beyond. */
	EXPECT_EQ(sizeof(struct kprim_api), big.a.size);
	EXPECT_EQ(0, big.future[0]);
}

TEST_F(session, api_larger_struct_nonzero_tail_is_e2big)
{
	struct { struct kprim_api a; __u64 future[4]; } big;

	memset(&big, 0, sizeof(big));
	big.a.size = sizeof(big);
	big.future[2] = 1;
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_API, &big));
}

TEST_F(session, api_size_above_page_is_e2big)
{
	struct kprim_api a = { .size = 8192 };

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_API, &a));
}

TEST_F(session, api_unknown_flags_einval)
{
	struct kprim_api a = { .size = sizeof(a), .flags = 1 };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_API, &a));
}

TEST_F(session, api_bad_pointer_efault)
{
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_API, (void *)16));
}

TEST_F(session, unknown_ioctl_number_enotty)
{
	struct kprim_api a = { .size = sizeof(a) };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOWR(KPRIM_IOC_MAGIC, 0x7f,
						      struct kprim_api), &a));
}

TEST_F(session, foreign_magic_enotty)
{
	struct kprim_api a = { .size = sizeof(a) };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOWR('T', 0x00,
						      struct kprim_api), &a));
}

TEST_F(session, wrong_direction_enotty)
{
	struct kprim_api a = { .size = sizeof(a) };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, _IOR(KPRIM_IOC_MAGIC, 0x00,
						     struct kprim_api), &a));
}

TEST_F(session, object_ioctl_on_session_enotty)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };

	EXPECT_EQ(-ENOTTY, kt_ioctl(self->fd, KPRIM_IOC_LIMITER_INFO, &i));
}

/* A limiter is the simplest kind: use it to exercise the object model. */
static struct kprim_open lim_args(const char *name, __u32 flags)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_LIMITER, name, flags);

	a.limiter.rate = 10;
	a.limiter.period_ns = 1000000000ull;
	a.limiter.burst = 5;
	return a;
}

static long lim_tokens(int fd)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };
	long ret = kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i);

	return ret ? ret : (long)i.tokens;
}

static long info_rate(int fd)
{
	struct kprim_limiter_info i = { .size = sizeof(i) };
	long ret = kt_ioctl(fd, KPRIM_IOC_LIMITER_INFO, &i);

	return ret ? ret : (long)i.params.rate;
}

static long obj_count(int sess)
{
	struct kprim_obj_info info[64];
	struct kprim_list l = {
		.size = sizeof(l), .buf = (uintptr_t)info, .count = 64,
		.entry_size = sizeof(info[0]),
	};
	long n = 0, ret;

	do {
		ret = kt_ioctl(sess, KPRIM_IOC_LIST, &l);
		if (ret)
			return ret;
		n += l.count;
		l.start_id = l.next_id;
		l.count = 64;
	} while (l.start_id);
	return n;
}

TEST_F(session, open_missing_without_create_enoent)
{
	char name[64];
	struct kprim_open a;

	KT_NAME(name, "enoent");
	a = lim_args(name, 0);
	EXPECT_EQ(-ENOENT, kt_open(self->fd, &a));
}

TEST_F(session, create_then_open_shares_state)
{
	char name[64];
	struct kprim_open a;
	int fd1, fd2;

	KT_NAME(name, "share");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
	fd1 = kt_open(self->fd, &a);
	ASSERT_LE(0, fd1);
	/* Different parameters on open do not change the object. */
	a = lim_args(name, 0);
	a.limiter.burst = 99;
	fd2 = kt_open(self->fd, &a);
	ASSERT_LE(0, fd2);
	EXPECT_EQ(5, lim_tokens(fd2));
	{
		struct kprim_limiter_take t = { .size = sizeof(t), .n = 2,
						.wait = kt_wait(0, -1) };

		ASSERT_EQ(0, kt_ioctl(fd1, KPRIM_IOC_LIMITER_TAKE, &t));
	}
	EXPECT_EQ(3, lim_tokens(fd2));
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd1);
	close(fd2);
}

TEST_F(session, create_excl_existing_eexist)
{
	char name[64];
	struct kprim_open a;
	int fd;

	KT_NAME(name, "excl");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-EEXIST, kt_open(self->fd, &a));
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd);
}

TEST_F(session, names_are_per_kind)
{
	char name[64];
	struct kprim_open a;
	int fd;

	KT_NAME(name, "perkind");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(-ENOENT, kt_unlink(self->fd, KPRIM_KIND_SEM, name));
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd);
}

TEST_F(session, persistent_object_outlives_fds_until_unlink)
{
	char name[64];
	struct kprim_open a;
	struct kprim_limiter_take t = { .size = sizeof(t), .n = 4,
					.wait = kt_wait(0, -1) };
	int fd;

	KT_NAME(name, "persist");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
	a.limiter.rate = 1;
	a.limiter.period_ns = 3600ull * 1000000000ull;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t));
	close(fd);
	/* Still there, with its state, after its last fd closed. */
	a = lim_args(name, 0);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(1, lim_tokens(fd));
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	/* Unlinked: the name is gone, the open fd still works. */
	EXPECT_EQ(-ENOENT, kt_open(self->fd, &a));
	EXPECT_EQ(1, lim_tokens(fd));
	EXPECT_EQ(-ENOENT, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd);
}

TEST_F(session, transient_object_goes_with_last_fd)
{
	char name[64];
	struct kprim_open a;
	long before;
	int fd, fd2;

	KT_NAME(name, "transient");
	before = obj_count(self->fd);
	ASSERT_LE(0, before);
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	fd2 = dup(fd);
	EXPECT_EQ(before + 1, obj_count(self->fd));
	close(fd);
	a = lim_args(name, 0);
	fd = kt_open(self->fd, &a);	/* still open through fd2 */
	ASSERT_LE(0, fd);
	close(fd);
	close(fd2);
	EXPECT_EQ(-ENOENT, kt_open(self->fd, &a));
	EXPECT_EQ(before, obj_count(self->fd));
}

TEST_F(session, anonymous_object_shared_by_fork)
{
	struct kprim_open a = lim_args(NULL, KPRIM_OPEN_CREATE);
	struct kprim_limiter_take t = { .size = sizeof(t), .n = 3,
					.wait = kt_wait(0, -1) };
	int fd, status;
	pid_t pid;

	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(kt_ioctl(fd, KPRIM_IOC_LIMITER_TAKE, &t) ? 1 : 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(2, lim_tokens(fd));
	close(fd);
}

TEST_F(session, object_fd_passes_over_unix_socket)
{
	struct kprim_open a = lim_args(NULL, KPRIM_OPEN_CREATE);
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr msg = { 0 };
	struct cmsghdr *cm;
	struct iovec iov;
	char byte = 'x';
	int sv[2], fd, got;

	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	iov.iov_base = &byte;
	iov.iov_len = 1;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	ASSERT_EQ(1, sendmsg(sv[0], &msg, 0));
	close(fd);
	msg.msg_controllen = sizeof(cbuf);
	ASSERT_EQ(1, recvmsg(sv[1], &msg, 0));
	cm = CMSG_FIRSTHDR(&msg);
	ASSERT_NE(NULL, cm);
	memcpy(&got, CMSG_DATA(cm), sizeof(int));
	EXPECT_EQ(5, lim_tokens(got));
	close(got);
	close(sv[0]);
	close(sv[1]);
}

TEST_F(session, fdinfo_shows_kind_name_and_state)
{
	char name[64], path[64], buf[1024];
	struct kprim_open a;
	ssize_t n;
	int fd, ffd;

	KT_NAME(name, "fdinfo");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ffd = open(path, O_RDONLY);
	ASSERT_LE(0, ffd);
	n = read(ffd, buf, sizeof(buf) - 1);
	ASSERT_LT(0, n);
	buf[n] = 0;
	EXPECT_NE(NULL, strstr(buf, "kprim-kind:\tlimiter"));
	EXPECT_NE(NULL, strstr(buf, name));
	EXPECT_NE(NULL, strstr(buf, "kprim-tokens:\t5"));
	close(ffd);
	close(fd);
}

TEST_F(session, object_fds_are_cloexec_unless_inherit)
{
	struct kprim_open a = lim_args(NULL, KPRIM_OPEN_CREATE | KPRIM_OPEN_CLOEXEC);
	int fd = kt_open(self->fd, &a);

	ASSERT_LE(0, fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* The default... */
	a.flags = KPRIM_OPEN_CREATE;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* ...and the way out. */
	a.flags = KPRIM_OPEN_CREATE | KPRIM_OPEN_INHERIT;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

TEST_F(session, api_reports_owned_and_cloexec_default)
{
	struct kprim_api a = { .size = sizeof(a) };

	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_API, &a));
	EXPECT_NE(0, a.features & KPRIM_FEAT_OPEN_OWNED);
	EXPECT_NE(0, a.features & KPRIM_FEAT_CLOEXEC_DEFAULT);
}

static long sem_available(int fd)
{
	struct kprim_sem_info i = { .size = sizeof(i) };
	long ret = kt_ioctl(fd, KPRIM_IOC_SEM_INFO, &i);

	return ret ? ret : (long)i.available;
}

/*
 * A semaphore fd holding a permit, opened with @flags, and a second fd on
 * the same semaphore to watch it with.
 */
static int sem_with_permit_held(struct __test_metadata *_metadata, int sess,
				__u32 flags, int *watch)
{
	struct kprim_sem_acquire acq = { .size = sizeof(acq), .n = 1,
					 .wait = kt_wait(0, -1) };
	struct kprim_open a;
	char name[64];
	int fd;

	KT_NAME(name, "execsem");
	a = kt_open_args(KPRIM_KIND_SEM, name, KPRIM_OPEN_CREATE |
			 KPRIM_OPEN_EXCL | KPRIM_OPEN_TRANSIENT | flags);
	a.sem.permits = 1;
	fd = kt_open(sess, &a);
	EXPECT_LE(0, fd);
	a = kt_open_args(KPRIM_KIND_SEM, name, 0);
	*watch = kt_open(sess, &a);
	EXPECT_LE(0, *watch);
	EXPECT_EQ(0, kt_ioctl(fd, KPRIM_IOC_SEM_ACQUIRE, &acq));
	EXPECT_EQ(0, sem_available(*watch));
	return fd;
}

/*
 * A program the caller execs does not get the object fd: once the caller
 * closes it, its permits are back although the exec'ed program still runs.
 */
TEST_F(session, exec_drops_object_fd_by_default)
{
	int fd, watch, hold;
	char seen = '?';
	pid_t pid;

	fd = sem_with_permit_held(_metadata, self->fd, 0, &watch);
	ASSERT_LE(0, fd);
	pid = exec_probe_start(fd, &seen, &hold);
	ASSERT_LT(0, pid);
	EXPECT_EQ('C', seen);
	close(fd);
	EXPECT_EQ(1, sem_available(watch));	/* the probe still runs */
	EXPECT_EQ(0, exec_probe_end(pid, hold));
	close(watch);
}

/* KPRIM_OPEN_INHERIT: the exec'ed program shares the fd and its permits. */
TEST_F(session, exec_keeps_inherit_fd_and_its_permits)
{
	int fd, watch, hold;
	char seen = '?';
	pid_t pid;

	fd = sem_with_permit_held(_metadata, self->fd, KPRIM_OPEN_INHERIT,
				  &watch);
	ASSERT_LE(0, fd);
	pid = exec_probe_start(fd, &seen, &hold);
	ASSERT_LT(0, pid);
	EXPECT_EQ('O', seen);
	close(fd);
	/* The last copy is the probe's: the permit is still held... */
	EXPECT_EQ(0, sem_available(watch));
	EXPECT_EQ(0, exec_probe_end(pid, hold));
	/* ...until the probe exits. */
	EXPECT_EQ(1, sem_available(watch));
	close(watch);
}

TEST_F(session, list_reports_object_with_stats)
{
	struct kprim_obj_info info[64];
	struct kprim_list l = {
		.size = sizeof(l), .buf = (uintptr_t)info, .count = 64,
		.entry_size = sizeof(info[0]),
	};
	char name[64];
	struct kprim_open a;
	int fd, found = 0;
	unsigned int i;

	KT_NAME(name, "list");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	a.mode = 0640;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	do {
		ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
		for (i = 0; i < l.count; i++) {
			if (strcmp(info[i].name, name))
				continue;
			found++;
			EXPECT_EQ(KPRIM_KIND_LIMITER, info[i].kind);
			EXPECT_EQ(0640, info[i].mode);
			EXPECT_EQ(getuid(), info[i].uid);
			EXPECT_EQ(10, info[i].limiter.params.rate);
			EXPECT_EQ(5, info[i].limiter.params.burst);
			EXPECT_EQ(5, info[i].limiter.tokens);
			EXPECT_EQ(KPRIM_OBJ_TRANSIENT, info[i].flags);
			EXPECT_EQ(1, info[i].refs);	/* our one fd */
		}
		l.start_id = l.next_id;
		l.count = 64;
	} while (l.start_id);
	EXPECT_EQ(1, found);
	close(fd);
}

TEST_F(session, list_entry_size_below_first_version_einval)
{
	struct kprim_obj_info info;
	struct kprim_list l = {
		.size = sizeof(l), .buf = (uintptr_t)&info, .count = 1,
		.entry_size = KPRIM_SIZE_OBJ_INFO_VER0 - 1,
	};

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
	l.entry_size = 0;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
}

/*
 * A caller built against the first struct kprim_obj_info keeps working
 * when the kernel's grows: entries KPRIM_SIZE_OBJ_INFO_VER0 apart, each
 * its first bytes, and not a byte past the buffer (a guard page after it).
 */
TEST_F(session, list_first_version_entry_size_accepted)
{
	const size_t esz = KPRIM_SIZE_OBJ_INFO_VER0, cap = 4;
	long page = sysconf(_SC_PAGESIZE);
	size_t len = (esz * cap + page - 1) / page * page;
	struct kprim_list l = { .size = sizeof(l), .entry_size = esz };
	char name[64], *map, *buf;
	struct kprim_open a;
	int fd, found = 0;
	unsigned int i;

	KT_NAME(name, "listver0");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	map = mmap(NULL, len + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, map);
	ASSERT_EQ(0, mprotect(map + len, page, PROT_NONE));
	buf = map + len - esz * cap;	/* the last entry ends at the guard */
	l.buf = (uintptr_t)buf;
	do {
		l.count = cap;
		ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
		ASSERT_GE(cap, l.count);
		for (i = 0; i < l.count; i++) {
			struct kprim_obj_info e;

			memset(&e, 0, sizeof(e));
			memcpy(&e, buf + i * esz, esz);
			if (strcmp(e.name, name))
				continue;
			found++;
			EXPECT_EQ(KPRIM_KIND_LIMITER, e.kind);
			EXPECT_EQ(5, e.limiter.tokens);
		}
		l.start_id = l.next_id;
	} while (l.start_id);
	EXPECT_EQ(1, found);
	munmap(map, len + page);
	close(fd);
}

/* An entry larger than the kernel's: the tail beyond it is zeroed. */
TEST_F(session, list_larger_entry_size_zero_tail)
{
	struct big { struct kprim_obj_info i; char future[64]; } *b;
	struct kprim_list l = { .size = sizeof(l), .count = 4,
				.entry_size = sizeof(*b) };
	struct kprim_open a = lim_args(NULL, KPRIM_OPEN_CREATE);
	unsigned int i, j;
	int fd = kt_open(self->fd, &a);

	ASSERT_LE(0, fd);
	b = malloc(4 * sizeof(*b));
	ASSERT_NE(NULL, b);
	memset(b, 0xa5, 4 * sizeof(*b));
	l.buf = (uintptr_t)b;
	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
	ASSERT_LT(0, l.count);
	for (i = 0; i < l.count; i++) {
		EXPECT_NE(0, b[i].i.id);
		for (j = 0; j < sizeof(b[i].future); j++)
			EXPECT_EQ(0, b[i].future[j]);
	}
	free(b);
	close(fd);
}

TEST_F(session, list_entry_size_above_page_e2big)
{
	struct kprim_obj_info info;
	struct kprim_list l = {
		.size = sizeof(l), .buf = (uintptr_t)&info, .count = 1,
		.entry_size = 0xffffffffu,
	};

	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
}

TEST_F(session, create_of_existing_name_still_checks_params)
{
	char name[64];
	struct kprim_open a;
	int fd, fd2;

	KT_NAME(name, "checkexisting");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	a.limiter.rate = 0;
	EXPECT_EQ(-EINVAL, kt_open(self->fd, &a));
	/* Without CREATE the parameters are not looked at. */
	a.flags = 0;
	fd2 = kt_open(self->fd, &a);
	EXPECT_LE(0, fd2);
	EXPECT_EQ(10, info_rate(fd2));
	close(fd2);
	close(fd);
}

TEST_F(session, fdinfo_escapes_odd_names)
{
	char path[64], buf[1024];
	struct kprim_open a;
	ssize_t n;
	int fd, ffd;

	a = lim_args("odd\nname", KPRIM_OPEN_CREATE | KPRIM_OPEN_TRANSIENT);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ffd = open(path, O_RDONLY);
	ASSERT_LE(0, ffd);
	n = read(ffd, buf, sizeof(buf) - 1);
	ASSERT_LT(0, n);
	buf[n] = 0;
	/* One line, the newline escaped in octal. */
	EXPECT_NE(NULL, strstr(buf, "kprim-name:\todd\\012name\n"));
	close(ffd);
	close(fd);
}

TEST_F(session, list_bad_buffer_efault)
{
	struct kprim_open a = lim_args(NULL, KPRIM_OPEN_CREATE);
	struct kprim_list l = {
		.size = sizeof(l), .buf = 16, .count = 4,
		.entry_size = sizeof(struct kprim_obj_info),
	};
	int fd = kt_open(self->fd, &a);	/* at least one object to report */

	ASSERT_LE(0, fd);
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
	close(fd);
}

TEST_F(session, list_unknown_flags_einval)
{
	struct kprim_list l = { .size = sizeof(l), .flags = 1,
				.entry_size = sizeof(struct kprim_obj_info) };

	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_LIST, &l));
}

/* Each bad open: a precise errno and no object created. */
struct bad_open {
	const char *what;
	int err;
	void (*mangle)(struct kprim_open *a, char *name);
};

static void bad_flags(struct kprim_open *a, char *n) { (void)a; (void)n; a->flags |= 1u << 20; }
static void bad_kind0(struct kprim_open *a, char *n) { (void)a; (void)n; a->kind = 0; }
static void bad_kind9(struct kprim_open *a, char *n) { (void)a; (void)n; a->kind = 9; }
static void bad_mode(struct kprim_open *a, char *n) { (void)a; (void)n; a->mode = 01777; }
static void bad_reserved(struct kprim_open *a, char *n) { (void)a; (void)n; a->reserved = 1; }
static void bad_excl_alone(struct kprim_open *a, char *n) { (void)a; (void)n; a->flags = KPRIM_OPEN_EXCL; }
static void bad_transient_alone(struct kprim_open *a, char *n) { (void)a; (void)n; a->flags = KPRIM_OPEN_TRANSIENT; }
static void bad_inherit_cloexec(struct kprim_open *a, char *n)
{
	(void)n;
	a->flags |= KPRIM_OPEN_INHERIT | KPRIM_OPEN_CLOEXEC;
}
static void bad_flag7(struct kprim_open *a, char *n) { (void)n; a->flags |= 1u << 7; }
static void bad_flag31(struct kprim_open *a, char *n) { (void)n; a->flags |= 1u << 31; }
static void bad_small_size(struct kprim_open *a, char *n) { (void)a; (void)n; a->size = 40; }
static void bad_name_slash(struct kprim_open *a, char *n) { (void)a; (void)n; n[1] = '/'; }
static void bad_name_nul(struct kprim_open *a, char *n) { (void)a; (void)n; n[1] = '\0'; }
static void bad_name_long(struct kprim_open *a, char *n) { (void)a; (void)n; a->name_len = KPRIM_NAME_MAX + 1; }
static void bad_name_ptr(struct kprim_open *a, char *n) { (void)a; (void)n; a->name = 16; }
static void bad_name_ptr_no_len(struct kprim_open *a, char *n) { (void)a; (void)n; a->name_len = 0; }
static void bad_rate0(struct kprim_open *a, char *n) { (void)a; (void)n; a->limiter.rate = 0; }
static void bad_period0(struct kprim_open *a, char *n) { (void)a; (void)n; a->limiter.period_ns = 0; }
static void bad_burst0(struct kprim_open *a, char *n) { (void)a; (void)n; a->limiter.burst = 0; }
static void bad_overflow(struct kprim_open *a, char *n)
{
	(void)n;
	a->limiter.burst = 1ull << 40;
	a->limiter.period_ns = 1ull << 30;
}
static void bad_initial_no_flag(struct kprim_open *a, char *n)
{
	(void)n;
	a->limiter.initial = 1;		/* without KPRIM_OPEN_INITIAL */
}
static void bad_limiter_word(struct kprim_open *a, char *n)
{
	(void)n;
	a->params_raw[6] = 1;
}
static void bad_sem_initial(struct kprim_open *a, char *n)
{
	(void)n;
	memset(a->params_raw, 0, sizeof(a->params_raw));
	a->kind = KPRIM_KIND_SEM;
	a->sem.permits = 1;
	a->flags |= KPRIM_OPEN_INITIAL;
}
static void bad_sem_word(struct kprim_open *a, char *n)
{
	(void)n;
	memset(a->params_raw, 0, sizeof(a->params_raw));
	a->kind = KPRIM_KIND_SEM;
	a->sem.permits = 1;
	a->params_raw[7] = 1;
}
static void bad_cache_initial(struct kprim_open *a, char *n)
{
	(void)n;
	memset(a->params_raw, 0, sizeof(a->params_raw));
	a->kind = KPRIM_KIND_CACHE;
	a->flags |= KPRIM_OPEN_INITIAL;
}
static void bad_initial(struct kprim_open *a, char *n)
{
	(void)n;
	a->flags |= KPRIM_OPEN_INITIAL;
	a->limiter.initial = a->limiter.burst + 1;
}

FIXTURE(bad_open) {
	int fd;
};

FIXTURE_VARIANT(bad_open) {
	struct bad_open b;
};

#define BAD_OPEN(id, e, fn) \
	FIXTURE_VARIANT_ADD(bad_open, id) { .b = { #id, e, fn } }

BAD_OPEN(unknown_flag, EINVAL, bad_flags);
BAD_OPEN(kind_zero, EINVAL, bad_kind0);
BAD_OPEN(kind_unknown, EINVAL, bad_kind9);
BAD_OPEN(mode_beyond_0777, EINVAL, bad_mode);
BAD_OPEN(reserved_nonzero, EINVAL, bad_reserved);
BAD_OPEN(excl_without_create, EINVAL, bad_excl_alone);
BAD_OPEN(transient_without_create, EINVAL, bad_transient_alone);
BAD_OPEN(inherit_with_cloexec, EINVAL, bad_inherit_cloexec);
BAD_OPEN(first_unknown_flag, EINVAL, bad_flag7);
BAD_OPEN(top_flag, EINVAL, bad_flag31);
BAD_OPEN(struct_too_small, EINVAL, bad_small_size);
BAD_OPEN(name_with_slash, EINVAL, bad_name_slash);
BAD_OPEN(name_with_nul, EINVAL, bad_name_nul);
BAD_OPEN(name_too_long, ENAMETOOLONG, bad_name_long);
BAD_OPEN(name_bad_pointer, EFAULT, bad_name_ptr);
BAD_OPEN(name_pointer_without_length, EINVAL, bad_name_ptr_no_len);
BAD_OPEN(limiter_rate_zero, EINVAL, bad_rate0);
BAD_OPEN(limiter_period_zero, EINVAL, bad_period0);
BAD_OPEN(limiter_burst_zero, EINVAL, bad_burst0);
BAD_OPEN(limiter_burst_times_period_overflows, EOVERFLOW, bad_overflow);
BAD_OPEN(limiter_initial_above_burst, EINVAL, bad_initial);
BAD_OPEN(limiter_initial_without_flag, EINVAL, bad_initial_no_flag);
BAD_OPEN(limiter_unused_param_word, EINVAL, bad_limiter_word);
BAD_OPEN(sem_initial_flag, EINVAL, bad_sem_initial);
BAD_OPEN(sem_unused_param_word, EINVAL, bad_sem_word);
BAD_OPEN(cache_initial_flag, EINVAL, bad_cache_initial);

FIXTURE_SETUP(bad_open)
{
	self->fd = kt_session();
	if (self->fd < 0)
		SKIP(return, "no %s: kprim.ko not loaded", KT_DEV);
}

FIXTURE_TEARDOWN(bad_open)
{
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F(bad_open, refused_and_nothing_created)
{
	static char name[KPRIM_NAME_MAX + 8];
	struct kprim_open a;
	long before;

	memset(name, 'n', sizeof(name));
	snprintf(name, 32, "kt-bad-%d-", getpid());
	name[strlen(name)] = 'x';
	name[40] = '\0';
	a = lim_args(name, KPRIM_OPEN_CREATE);
	variant->b.mangle(&a, name);
	if (a.name_len > 40)
		memset(name, 'n', sizeof(name));
	before = obj_count(self->fd);
	ASSERT_LE(0, before);
	EXPECT_EQ(-variant->b.err, kt_open(self->fd, &a)) {
		TH_LOG("case %s", variant->b.what);
	}
	EXPECT_EQ(before, obj_count(self->fd));
}

TEST_F(session, open_struct_larger_nonzero_tail_e2big)
{
	struct { struct kprim_open a; __u64 future[2]; } big;

	memset(&big, 0, sizeof(big));
	big.a = lim_args(NULL, KPRIM_OPEN_CREATE);
	big.a.size = sizeof(big);
	big.future[1] = 7;
	EXPECT_EQ(-E2BIG, kt_ioctl(self->fd, KPRIM_IOC_OPEN, &big));
}

TEST_F(session, open_bad_args_pointer_efault)
{
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_OPEN, (void *)8));
}

TEST_F(session, unlink_bad_input)
{
	struct kprim_unlink u = { .size = sizeof(u), .kind = KPRIM_KIND_LIMITER,
				  .name = (uintptr_t)"x", .name_len = 1 };

	u.flags = 1;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_UNLINK, &u));
	u.flags = 0;
	u.kind = 77;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_UNLINK, &u));
	u.kind = KPRIM_KIND_LIMITER;
	u.name_len = 0;
	EXPECT_EQ(-EINVAL, kt_ioctl(self->fd, KPRIM_IOC_UNLINK, &u));
	u.name_len = 300;
	EXPECT_EQ(-ENAMETOOLONG, kt_ioctl(self->fd, KPRIM_IOC_UNLINK, &u));
	u.name_len = 4;
	u.name = 16;
	EXPECT_EQ(-EFAULT, kt_ioctl(self->fd, KPRIM_IOC_UNLINK, &u));
}

/* Run @fn as uid/gid 65534 in a child; returns its exit status. */
static int as_nobody(int (*fn)(int sess, const char *name), const char *name)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		int sess = kt_session();

		if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
			_exit(100);
		_exit(fn(sess, name));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int nobody_opens(int sess, const char *name)
{
	struct kprim_open a = lim_args(name, 0);

	return -kt_open(sess, &a) == EACCES ? 0 : 1;
}

static int nobody_opens_ok(int sess, const char *name)
{
	struct kprim_open a = lim_args(name, 0);

	return kt_open(sess, &a) >= 0 ? 0 : 1;
}

static int nobody_unlinks(int sess, const char *name)
{
	return kt_unlink(sess, KPRIM_KIND_LIMITER, name) == -EPERM ? 0 : 1;
}

static int nobody_sets_rate(int sess, const char *name)
{
	struct kprim_open a = lim_args(name, 0);
	struct kprim_limiter_set s = { .size = sizeof(s),
				       .flags = KPRIM_LIMITER_SET_BURST };
	int fd = kt_open(sess, &a);

	if (fd < 0)
		return 2;
	s.params.burst = 50;
	return kt_ioctl(fd, KPRIM_IOC_LIMITER_SET, &s) == -EPERM ? 0 : 1;
}

TEST_F(session, permission_denied_without_mode_bits)
{
	char name[64];
	struct kprim_open a;
	int fd;

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	KT_NAME(name, "perm");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
	a.mode = 0600;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, as_nobody(nobody_opens, name));
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd);
}

TEST_F(session, other_bits_grant_open_but_not_ownership)
{
	char name[64];
	struct kprim_open a;
	int fd;

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	KT_NAME(name, "perm2");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
	a.mode = 0666;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, as_nobody(nobody_opens_ok, name));
	EXPECT_EQ(0, as_nobody(nobody_unlinks, name));
	EXPECT_EQ(0, as_nobody(nobody_sets_rate, name));
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd);
}

/* As nobody: take @name first (persistent, mode 0666), as a squatter. */
static int nobody_squats(int sess, const char *name)
{
	struct kprim_open a = lim_args(name, KPRIM_OPEN_CREATE |
					     KPRIM_OPEN_EXCL);
	int fd;

	a.mode = 0666;
	fd = kt_open(sess, &a);
	if (fd < 0)
		return 1;
	close(fd);
	return 0;
}

/*
 * Name squatting: without OWNED, a CREATE of a name somebody else made
 * first quietly opens their object (they own it: they may SET, RESIZE,
 * FLUSH and read it). OWNED refuses it with -EPERM, root included, and
 * nothing is created or changed.
 */
TEST_F(session, owned_open_refuses_a_squatted_name)
{
	struct kprim_open a;
	char name[64];
	long before;
	int fd;

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	KT_NAME(name, "squat");
	ASSERT_EQ(0, as_nobody(nobody_squats, name));
	before = obj_count(self->fd);
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_OWNED);
	a.limiter.burst = 7;
	EXPECT_EQ(-EPERM, kt_open(self->fd, &a));
	a.flags = KPRIM_OPEN_OWNED;
	EXPECT_EQ(-EPERM, kt_open(self->fd, &a));
	EXPECT_EQ(before, obj_count(self->fd));
	/* Without OWNED the caller gets the squatter's object (burst 5). */
	a.flags = KPRIM_OPEN_CREATE;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(5, lim_tokens(fd));
	close(fd);
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
}

/* OWNED on the caller's own object: created, then reopened, not refused. */
TEST_F(session, owned_open_of_own_object_succeeds)
{
	struct kprim_open a;
	char name[64];
	int fd, fd2, fd3;

	KT_NAME(name, "owned");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_OWNED);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	fd2 = kt_open(self->fd, &a);
	EXPECT_LE(0, fd2);
	a.flags = KPRIM_OPEN_OWNED;
	fd3 = kt_open(self->fd, &a);
	EXPECT_LE(0, fd3);
	EXPECT_EQ(0, kt_unlink(self->fd, KPRIM_KIND_LIMITER, name));
	close(fd3);
	close(fd2);
	close(fd);
}

/* An object root made is refused to another user's OWNED open too. */
static int nobody_opens_owned(int sess, const char *name)
{
	struct kprim_open a = lim_args(name, KPRIM_OPEN_CREATE |
					     KPRIM_OPEN_OWNED);

	if (kt_open(sess, &a) != -EPERM)
		return 1;
	a.flags = 0;	/* mode 0666: a plain open is allowed */
	return kt_open(sess, &a) >= 0 ? 0 : 2;
}

TEST_F(session, owned_open_checks_owner_not_mode)
{
	struct kprim_open a;
	char name[64];
	int fd;

	if (getuid() != 0)
		SKIP(return, "needs root to switch uid");
	KT_NAME(name, "ownedmode");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
			   KPRIM_OPEN_TRANSIENT);
	a.mode = 0666;
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, as_nobody(nobody_opens_owned, name));
	close(fd);
}

/* Read or write /proc/sys/fs/file-max; returns 0 or -1. */
static int file_max_rw(unsigned long *get, unsigned long set)
{
	char buf[32];
	int fd, n;

	fd = open("/proc/sys/fs/file-max", get ? O_RDONLY : O_WRONLY);
	if (fd < 0)
		return -1;
	if (get) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return -1;
		buf[n] = 0;
		*get = strtoul(buf, NULL, 10);
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%lu", set);
	n = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	return n;
}

/* Shared by a failing creator (a child) and the test. */
struct fail_race {
	int stop;
	long tries;	/* opens the creator finished */
	long other;	/* results that were not what the test expects */
	long leaked;	/* names a failed create left behind */
	char name[64];
};

#define RACE_NS	(3 * 1000000000ull)

static long race_get(long *v)
{
	return __atomic_load_n(v, __ATOMIC_SEQ_CST);
}

static void race_inc(long *v)
{
	__atomic_add_fetch(v, 1, __ATOMIC_SEQ_CST);
}

/*
 * The failing creator runs as nobody while fs.file-max is 0: its every
 * open gets as far as making the object and its fd number, then fails to
 * get a struct file (-ENFILE; root is exempt from file-max).
 *  - @persistent false: keep creating the transient r->name;
 *  - @persistent true: create r->name-<i> one after another, and after
 *    each failure check with UNLINK that no name was left behind.
 */
static pid_t start_failing_creator(int sess, struct fail_race *r,
				   bool persistent)
{
	pid_t pid = fork();
	char name[96];
	long i;

	if (pid)
		return pid;
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		_exit(100);
	for (i = 0; !__atomic_load_n(&r->stop, __ATOMIC_SEQ_CST); i++) {
		struct kprim_open a;
		int fd;

		if (persistent) {
			snprintf(name, sizeof(name), "%s-%ld", r->name, i);
			a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL);
		} else {
			a = lim_args(r->name, KPRIM_OPEN_CREATE |
					      KPRIM_OPEN_TRANSIENT);
		}
		a.mode = 0666;
		fd = kt_open(sess, &a);
		if (fd >= 0)
			close(fd);
		if (fd != -ENFILE)
			race_inc(&r->other);
		if (persistent) {
			int ret = kt_unlink(sess, KPRIM_KIND_LIMITER, name);

			if (!ret)
				race_inc(&r->leaked);
			else if (ret != -ENOENT)
				race_inc(&r->other);
		}
		race_inc(&r->tries);
	}
	_exit(0);
}

static bool fd_unlinked(int fd)
{
	char path[64], buf[1024];
	ssize_t n;
	int ffd;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	ffd = open(path, O_RDONLY);
	if (ffd < 0)
		return false;
	n = read(ffd, buf, sizeof(buf) - 1);
	close(ffd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, "(unlinked)");
}

/*
 * A failed create must not take the name of an object somebody else has
 * opened meanwhile: here the object is transient, the creator's open
 * fails after making it, and the test opens it by name in that window.
 * Nobody unlinks it, so the test's fd must stay on a named object.
 */
TEST_F(session, failed_create_keeps_the_name_another_opener_holds)
{
	long hits = 0, lost = 0, other = 0;
	unsigned long saved;
	struct fail_race *r;
	uint64_t end;
	pid_t pid;
	int status = -1;

	if (getuid() != 0 || file_max_rw(&saved, 0))
		SKIP(return, "needs root and /proc/sys/fs/file-max");
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	KT_NAME(r->name, "failtrans");
	ASSERT_EQ(0, file_max_rw(NULL, 0));
	pid = start_failing_creator(self->fd, r, false);
	end = kt_now_ns() + RACE_NS;
	while (pid > 0 && kt_now_ns() < end && hits < 200) {
		struct kprim_open o = lim_args(r->name, 0);
		int fd = kt_open(self->fd, &o);
		uint64_t wait_end;
		long t0;

		if (fd < 0) {
			other += fd != -ENOENT;
			continue;
		}
		hits++;
		/* Let the creator's open that made this object finish. */
		t0 = race_get(&r->tries);
		wait_end = kt_now_ns() + 1000000000ull;
		while (race_get(&r->tries) < t0 + 2 && kt_now_ns() < wait_end)
			sched_yield();
		lost += fd_unlinked(fd);
		close(fd);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
	if (pid > 0)
		waitpid(pid, &status, 0);
	EXPECT_EQ(0, file_max_rw(NULL, saved));
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, status);
	TH_LOG("%ld creator tries, %ld opens in the window, %ld names lost",
	       r->tries, hits, lost);
	EXPECT_EQ(0, lost);
	EXPECT_EQ(0, other);
	EXPECT_EQ(0, r->other);
	EXPECT_LT(0, hits);	/* the window was hit */
	munmap(r, sizeof(*r));
}

/*
 * A failed create must not leave its new persistent object behind because
 * a LIST held it for a moment: the creator's every failed create is
 * followed by an UNLINK that must find nothing.
 */
TEST_F(session, failed_create_leaves_no_name_despite_list)
{
	struct kprim_obj_info info[64];
	struct kprim_list l = { .size = sizeof(l), .buf = (uintptr_t)info,
				.entry_size = sizeof(info[0]) };
	long seen = 0, other = 0;
	unsigned long saved;
	struct fail_race *r;
	size_t plen;
	uint64_t end;
	pid_t pid;
	int status = -1;

	if (getuid() != 0 || file_max_rw(&saved, 0))
		SKIP(return, "needs root and /proc/sys/fs/file-max");
	r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r);
	KT_NAME(r->name, "faillist");
	plen = strlen(r->name);
	ASSERT_EQ(0, file_max_rw(NULL, 0));
	pid = start_failing_creator(self->fd, r, true);
	end = kt_now_ns() + RACE_NS;
	while (pid > 0 && kt_now_ns() < end) {
		unsigned int i;

		l.start_id = 0;
		do {
			l.count = 64;
			if (kt_ioctl(self->fd, KPRIM_IOC_LIST, &l)) {
				other++;
				break;
			}
			for (i = 0; i < l.count; i++)
				seen += !strncmp(info[i].name, r->name, plen);
			l.start_id = l.next_id;
		} while (l.start_id);
	}
	__atomic_store_n(&r->stop, 1, __ATOMIC_SEQ_CST);
	if (pid > 0)
		waitpid(pid, &status, 0);
	EXPECT_EQ(0, file_max_rw(NULL, saved));
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, status);
	TH_LOG("%ld failed creates, %ld seen by LIST, %ld left behind",
	       r->tries, seen, r->leaked);
	EXPECT_EQ(0, r->leaked);
	EXPECT_EQ(0, other);
	EXPECT_EQ(0, r->other);
	EXPECT_LT(0, seen);	/* LIST did hold the creator's objects */
	munmap(r, sizeof(*r));
}

/* Read or write a kprim module parameter; returns 0 or -1. */
static int module_param_rw(const char *name, unsigned long *get,
			   unsigned long set)
{
	char path[128], buf[32];
	int fd, n;

	snprintf(path, sizeof(path), "/sys/module/kprim/parameters/%s", name);
	fd = open(path, get ? O_RDONLY : O_WRONLY);
	if (fd < 0)
		return -1;
	if (get) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			return -1;
		buf[n] = 0;
		*get = strtoul(buf, NULL, 10);
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%lu", set);
	n = write(fd, buf, n) == n ? 0 : -1;
	close(fd);
	return n;
}

/* As uid 12345: create anonymous limiters until refused; exit(count). */
static int create_until_refused(int expect_err)
{
	struct kprim_open a = lim_args(NULL, KPRIM_OPEN_CREATE);
	int sess = kt_session(), n = 0, fd;

	if (setgroups(0, NULL) || setgid(12345) || setuid(12345))
		return 200;
	while (n < 100 && (fd = kt_open(sess, &a)) >= 0)
		n++;
	return fd == -expect_err ? n : 201;
}

TEST_F(session, per_user_object_quota_is_edquot)
{
	unsigned long saved;
	int status;
	pid_t pid;

	if (getuid() != 0 || module_param_rw("max_objects_per_user", &saved, 0))
		SKIP(return, "needs root and /sys/module/kprim/parameters");
	ASSERT_EQ(0, module_param_rw("max_objects_per_user", NULL, 3));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(create_until_refused(EDQUOT));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, module_param_rw("max_objects_per_user", NULL, saved));
	/* Exactly 3 objects for the user, the 4th refused with EDQUOT. */
	EXPECT_EQ(3, WEXITSTATUS(status));
}

TEST_F(session, global_object_limit_is_enospc)
{
	unsigned long saved;
	long before;
	int status;
	pid_t pid;

	if (getuid() != 0 || module_param_rw("max_objects", &saved, 0))
		SKIP(return, "needs root and /sys/module/kprim/parameters");
	before = obj_count(self->fd);	/* root sees every object */
	ASSERT_LE(0, before);
	ASSERT_EQ(0, module_param_rw("max_objects", NULL, before + 2));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(create_until_refused(ENOSPC));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, module_param_rw("max_objects", NULL, saved));
	EXPECT_EQ(2, WEXITSTATUS(status));
	/* The child's objects went with its fds. */
	EXPECT_EQ(before, obj_count(self->fd));
}

/*
 * Objects live in the caller's IPC namespace. Where the kernel does not let
 * a module pin a namespace (KPRIM_FEAT_IPC_NS clear), callers outside the
 * initial one are refused with -EOPNOTSUPP instead.
 */
TEST_F(session, objects_are_scoped_by_ipc_namespace)
{
	struct kprim_api api = { .size = sizeof(api) };
	struct kprim_open a;
	char name[64];
	int fd, status;
	pid_t pid;

	if (getuid() != 0)
		SKIP(return, "needs CAP_SYS_ADMIN for unshare(CLONE_NEWIPC)");
	ASSERT_EQ(0, kt_ioctl(self->fd, KPRIM_IOC_API, &api));
	KT_NAME(name, "ipcns");
	a = lim_args(name, KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL |
			   KPRIM_OPEN_TRANSIENT);
	fd = kt_open(self->fd, &a);
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct kprim_open o = lim_args(name, 0);
		int s = kt_session();

		if (unshare(CLONE_NEWIPC))
			_exit(10);
		if (!(api.features & KPRIM_FEAT_IPC_NS)) {
			struct kprim_list l = { .size = sizeof(l),
				.entry_size = sizeof(struct kprim_obj_info) };

			if (kt_open(s, &o) != -EOPNOTSUPP)
				_exit(11);
			if (kt_unlink(s, KPRIM_KIND_LIMITER, name) != -EOPNOTSUPP)
				_exit(16);
			_exit(kt_ioctl(s, KPRIM_IOC_LIST, &l) == -EOPNOTSUPP ?
			      0 : 17);
		}
		/* The parent's name is invisible here... */
		if (kt_open(s, &o) != -ENOENT)
			_exit(12);
		/*
		 * ...and the same name can be created anew, asked for as
		 * persistent: outside the initial namespace it is transient.
		 */
		o.flags = KPRIM_OPEN_CREATE | KPRIM_OPEN_EXCL;
		if (kt_open(s, &o) < 0)
			_exit(13);
		{
			struct kprim_obj_info oi[4];
			struct kprim_list l = {
				.size = sizeof(l), .buf = (uintptr_t)oi,
				.count = 4, .entry_size = sizeof(oi[0]),
			};

			if (kt_ioctl(s, KPRIM_IOC_LIST, &l) || l.count != 1)
				_exit(14);
			_exit(oi[0].flags & KPRIM_OBJ_TRANSIENT ? 0 : 15);
		}
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* The parent's object is untouched by the child's namesake. */
	EXPECT_EQ(5, lim_tokens(fd));
	close(fd);
}

TEST_HARNESS_MAIN
