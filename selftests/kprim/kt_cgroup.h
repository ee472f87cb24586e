/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cgroup v2 helpers shared by the kprim selftests that put processes in
 * memory cgroups (memcg_test, attack_six_test). CG_ROOT is where cgroup2
 * is, or gets, mounted.
 */
#ifndef KPRIM_KT_CGROUP_H
#define KPRIM_KT_CGROUP_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_ROOT		"/sys/fs/cgroup"

/* Write @val to @path: 0, or -errno (-EIO for a short write). */
static inline int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -errno;
	ok = write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	if (!ok)
		ok = -errno;
	close(fd);
	return ok == 1 ? 0 : ok ? ok : -EIO;
}

/* Read @path into @buf, NUL-terminated: 0 or -errno. */
static inline int read_str(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* Write @val to the file @file of cgroup @cg: as write_str(). */
static inline int cg_write(const char *cg, const char *file, const char *val)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return write_str(path, val);
}

/*
 * cgroup2 with the memory controller on CG_ROOT, enabled for children.
 * NULL when it is there, else why not.
 */
static inline const char *cg_setup(void)
{
	static char why[128];
	char text[256];

	if (getuid())
		return "needs root for cgroups";
	if (read_str(CG_ROOT "/cgroup.controllers", text, sizeof(text))) {
		if (mount("none", CG_ROOT, "cgroup2", 0, NULL) &&
		    (mkdir(CG_ROOT, 0755) ||
		     mount("none", CG_ROOT, "cgroup2", 0, NULL))) {
			snprintf(why, sizeof(why), "cannot mount cgroup2: %s",
				 strerror(errno));
			return why;
		}
		if (read_str(CG_ROOT "/cgroup.controllers", text, sizeof(text)))
			return "no cgroup2 on " CG_ROOT;
	}
	if (!strstr(text, "memory"))
		return "cgroup2 without the memory controller (bound to v1?)";
	if (cg_write(CG_ROOT, "cgroup.subtree_control", "+memory"))
		return "cannot enable the memory controller";
	return NULL;
}

/* Move the calling process into @cg: as write_str(). */
static inline int cg_enter(const char *cg)
{
	char pid[16];

	snprintf(pid, sizeof(pid), "%d", getpid());
	return cg_write(cg, "cgroup.procs", pid);
}

#endif
