/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Exec probe: does an fd survive execve()? The test re-executes its own
 * binary (/proc/self/exe) with a marker argument; a constructor catches
 * the marker before the harness starts, reports whether the fd is still a
 * kprim fd in the new program, and stays alive until told to go, so the
 * test can look at what the exec'ed program still holds.
 */
#ifndef KPRIM_EXEC_PROBE_H
#define KPRIM_EXEC_PROBE_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/wait.h>

#define EXEC_PROBE_MARK "--kprim-exec-probe"

/* argv: <self> EXEC_PROBE_MARK <fd> <report write fd> <hold read fd> */
__attribute__((constructor))
static void exec_probe_main(int argc, char **argv)
{
	char path[64], link[128], c;
	ssize_t n;
	int fd, rep, hold;

	if (argc != 5 || strcmp(argv[1], EXEC_PROBE_MARK))
		return;
	fd = atoi(argv[2]);
	rep = atoi(argv[3]);
	hold = atoi(argv[4]);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0)
		link[n] = '\0';
	/* 'O': still open here, and still the kprim object; 'C': gone. */
	c = n > 0 && strstr(link, "kprim") ? 'O' : 'C';
	if (write(rep, &c, 1) != 1)
		_exit(2);
	/* Until the test closes its end of the hold pipe. */
	while (read(hold, &c, 1) > 0)
		;
	_exit(0);
}

/**
 * exec_probe_start() - fork and exec a probe of @fd.
 * @fd:		the fd to look for in the exec'ed program
 * @seen:	out: 'O' when it is open there, 'C' when it is not
 * @hold:	out: close it to let the probe exit
 *
 * Return: the probe's pid, or -1.
 */
static inline pid_t exec_probe_start(int fd, char *seen, int *hold)
{
	int rep[2], hp[2];
	pid_t pid;

	if (pipe2(rep, O_CLOEXEC))
		return -1;
	if (pipe2(hp, O_CLOEXEC)) {
		close(rep[0]);
		close(rep[1]);
		return -1;
	}
	pid = fork();
	if (pid == 0) {
		char a[3][16];

		/* Only the probe's ends cross the exec. */
		if (fcntl(rep[1], F_SETFD, 0) || fcntl(hp[0], F_SETFD, 0))
			_exit(3);
		snprintf(a[0], sizeof(a[0]), "%d", fd);
		snprintf(a[1], sizeof(a[1]), "%d", rep[1]);
		snprintf(a[2], sizeof(a[2]), "%d", hp[0]);
		execl("/proc/self/exe", "exec-probe", EXEC_PROBE_MARK,
		      a[0], a[1], a[2], (char *)NULL);
		_exit(4);
	}
	close(rep[1]);
	close(hp[0]);
	if (pid < 0 || read(rep[0], seen, 1) != 1) {
		close(rep[0]);
		close(hp[1]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return -1;
	}
	close(rep[0]);
	*hold = hp[1];
	return pid;
}

/* Let the probe exit; returns its exit status or -1. */
static inline int exec_probe_end(pid_t pid, int hold)
{
	int status;

	close(hold);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

#endif /* KPRIM_EXEC_PROBE_H */
