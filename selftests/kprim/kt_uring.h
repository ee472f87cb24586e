/* SPDX-License-Identifier: GPL-2.0 */
/*
 * io_uring helpers shared by the kselftests that send kprim commands
 * through a ring (IORING_OP_URING_CMD).
 */
#ifndef KT_URING_H
#define KT_URING_H

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <liburing.h>

/* Queue one kprim command: @cmd is the ioctl, @arg its argument. */
static inline void prep_kprim(struct io_uring_sqe *sqe, int fd,
			      unsigned int cmd, void *arg, __u64 user_data)
{
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, NULL, 0, 0);
	sqe->cmd_op = cmd;
	sqe->addr3 = (uintptr_t)arg;	/* first 8 bytes of the command area */
	sqe->user_data = user_data;
}

/* One CQE within @ms: 0 and its user_data and res, or -ETIME. */
static inline int kt_cqe_wait(struct io_uring *ring, unsigned int ms,
			      __u64 *ud, int *res)
{
	struct __kernel_timespec ts = {
		.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000ll,
	};
	struct io_uring_cqe *cqe;
	int ret;

	ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (ret)
		return ret;
	*ud = cqe->user_data;
	*res = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return 0;
}

/* Threads of this process named like io_uring's workers ("iou-wrk-N"). */
static inline int count_io_workers(void)
{
	char path[300], comm[32];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/proc/self/task");

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
			 e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "iou-wrk", 7))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

#endif /* KT_URING_H */
