// SPDX-License-Identifier: GPL-2.0
/*
 * Attacks through user and IPC namespaces: an unprivileged user who is
 * "root" in its own user namespace must not open OWNED, unlink, resize or
 * flush another uid's object; LIST reports owners in the caller's user
 * namespace; names of a child IPC namespace are invisible from the initial
 * one (and vice versa) and die with it; OWNED|CREATE|EXCL races between two
 * uids never hand one uid an object owned by the other.
 */
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"

#define NOBODY	65534
#define OTHER	65533

static int drop_to(uid_t uid)
{
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
	    setresuid(uid, uid, uid))
		return -1;
	return 0;
}

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY), n = strlen(text), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, text, n) != n)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Called as root: enter a new user namespace (plus @extra) in which the
 * caller is uid/gid 0, mapped to @outer outside. A helper left behind in
 * the initial namespace writes the maps, as an unprivileged process
 * cannot always (Debian, non-dumpable after setresuid).
 */
static int become_ns_root(uid_t outer, int extra)
{
	char path[64], map[64];
	int a[2], b[2], r = 0;
	pid_t me = getpid(), h;

	if (pipe(a) || pipe(b))
		return -errno;
	h = fork();
	if (h < 0)
		return -errno;
	if (!h) {
		char c;

		if (read(a[0], &c, 1) != 1 || c != 'g')
			_exit(0);
		snprintf(map, sizeof(map), "0 %u 1\n", outer);
		snprintf(path, sizeof(path), "/proc/%d/uid_map", me);
		r = write_file(path, map);
		snprintf(path, sizeof(path), "/proc/%d/gid_map", me);
		if (!r)
			r = write_file(path, map);
		c = r ? -r : 0;
		if (write(b[1], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	if (unshare(CLONE_NEWUSER | extra)) {
		r = -errno;
		if (write(a[1], "q", 1) != 1)
			r = -EIO;
	} else {
		char c = 0;

		if (write(a[1], "g", 1) != 1 || read(b[0], &c, 1) != 1)
			r = -EIO;
		else if (c)
			r = -c;
	}
	waitpid(h, NULL, 0);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	if (r)
		return r;
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0) || setgroups(0, NULL))
		return -errno;
	return 0;
}

static int sem_create(int sess, const char *name, __u32 flags, __u32 mode)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CREATE | flags);

	a.mode = mode;
	a.sem.permits = 4;
	return kt_open(sess, &a);
}

static int cache_create(int sess, const char *name, __u32 mode)
{
	struct kprim_open a = kt_open_args(KPRIM_KIND_CACHE, name,
					   KPRIM_OPEN_CREATE);

	a.mode = mode;
	return kt_open(sess, &a);
}

static long sem_resize(int fd, __u64 permits)
{
	struct kprim_sem_resize r = { .size = sizeof(r), .permits = permits };

	return kt_ioctl(fd, KPRIM_IOC_SEM_RESIZE, &r);
}

/* Find @name of @kind in LIST; fills *out. 1 found, 0 not, <0 errno. */
static int list_find(int sess, __u32 kind, const char *name,
		     struct kprim_obj_info *out)
{
	static struct kprim_obj_info buf[64];
	struct kprim_list l;
	__u64 start = 0;
	long ret;
	__u32 i;

	do {
		memset(&l, 0, sizeof(l));
		l.size = sizeof(l);
		l.start_id = start;
		l.buf = (uintptr_t)buf;
		l.count = 64;
		l.entry_size = sizeof(buf[0]);
		ret = kt_ioctl(sess, KPRIM_IOC_LIST, &l);
		if (ret)
			return ret;
		for (i = 0; i < l.count; i++) {
			if (buf[i].kind == kind &&
			    buf[i].name_len == strlen(name) &&
			    !memcmp(buf[i].name, name, buf[i].name_len)) {
				if (out)
					*out = buf[i];
				return 1;
			}
		}
		start = l.next_id;
	} while (start);
	return 0;
}

#define CHK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "child %d: line %d: ", getpid(), __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		_exit(__LINE__ & 0x7f ? __LINE__ & 0x7f : 1); \
	} \
} while (0)

static int wait_child(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 1000 + WTERMSIG(st);
}

/*
 * Root owns a 0666 sem and cache in the initial IPC namespace; nobody, as
 * root of its own user namespace, may use them but not take them over.
 */
TEST(userns_root_cannot_take_foreign)
{
	char sname[64], cname[64];
	int sess, sfd, cfd, rc;
	pid_t pid;

	KT_NAME(sname, "nss");
	KT_NAME(cname, "nsc");
	sess = kt_session();
	ASSERT_GE(sess, 0);
	sfd = sem_create(sess, sname, KPRIM_OPEN_EXCL, 0666);
	ASSERT_GE(sfd, 0);
	cfd = cache_create(sess, cname, 0666);
	ASSERT_GE(cfd, 0);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct kprim_obj_info info;
		struct kprim_hdr h = { .size = sizeof(h) };
		struct kprim_open a;
		int s, fd, r;

		s = kt_session();
		CHK(s >= 0, "session %d", errno);
		r = become_ns_root(NOBODY, 0);
		if (r) {
			fprintf(stderr, "unshare(NEWUSER): %s\n", strerror(-r));
			_exit(99);
		}
		CHK(getuid() == 0 && geteuid() == 0, "not ns root");

		/* OWNED: -EPERM although the ns-root may open it. */
		a = kt_open_args(KPRIM_KIND_SEM, sname, KPRIM_OPEN_OWNED);
		r = kt_open(s, &a);
		CHK(r == -EPERM, "OWNED open of root's sem: %d", r);
		a = kt_open_args(KPRIM_KIND_SEM, sname,
				 KPRIM_OPEN_OWNED | KPRIM_OPEN_CREATE);
		a.sem.permits = 1;
		r = kt_open(s, &a);
		CHK(r == -EPERM, "OWNED|CREATE open of root's sem: %d", r);

		/* Plain open works (0666) but owner operations do not. */
		fd = sem_create(s, sname, 0, 0600);
		CHK(fd >= 0, "plain open: %d", fd);
		r = sem_resize(fd, 100);
		CHK(r == -EPERM, "resize by ns-root: %d", r);
		close(fd);
		r = kt_unlink(s, KPRIM_KIND_SEM, sname);
		CHK(r == -EPERM, "unlink by ns-root: %d", r);

		fd = cache_create(s, cname, 0600);
		CHK(fd >= 0, "cache open: %d", fd);
		r = kt_ioctl(fd, KPRIM_IOC_CACHE_FLUSH, &h);
		CHK(r == -EPERM, "flush by ns-root: %d", r);
		close(fd);
		r = kt_unlink(s, KPRIM_KIND_CACHE, cname);
		CHK(r == -EPERM, "cache unlink by ns-root: %d", r);

		/* LIST: root (unmapped here) must not appear as uid 0. */
		r = list_find(s, KPRIM_KIND_SEM, sname, &info);
		CHK(r == 1, "list_find: %d", r);
		CHK(info.uid != 0, "root's sem listed as owned by ns uid 0");
		CHK(info.uid == 65534, "unmapped owner listed as %u", info.uid);

		_exit(0);
	}
	rc = wait_child(pid);
	if (rc == 99)
		SKIP(goto out, "no user namespaces");
	EXPECT_EQ(0, rc);

	/* Still root's, still 4 permits (resize refused), still named. */
	{
		struct kprim_obj_info info;

		ASSERT_EQ(1, list_find(sess, KPRIM_KIND_SEM, sname, &info));
		EXPECT_EQ(0, info.uid);
		EXPECT_EQ(4, info.sem.permits);
	}
out:
	kt_unlink(sess, KPRIM_KIND_SEM, sname);
	kt_unlink(sess, KPRIM_KIND_CACHE, cname);
	close(sfd);
	close(cfd);
	close(sess);
}

/*
 * Nobody, as ns-root, creates OWNED objects of its own: they are owned by
 * the kuid (65534), so OWNED opens from outside by nobody succeed and by
 * another uid fail.
 */
TEST(userns_owned_is_kuid)
{
	char name[64];
	int sess, rc, p[2];
	pid_t pid;
	char c;

	KT_NAME(name, "nsk");
	sess = kt_session();
	ASSERT_GE(sess, 0);
	ASSERT_EQ(0, pipe(p));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct kprim_obj_info info;
		int s, fd, r;

		close(p[0]);
		s = kt_session();
		r = become_ns_root(NOBODY, 0);
		if (r)
			_exit(99);
		fd = sem_create(s, name, KPRIM_OPEN_EXCL | KPRIM_OPEN_OWNED,
				0666);
		CHK(fd >= 0, "create: %d", fd);
		r = list_find(s, KPRIM_KIND_SEM, name, &info);
		CHK(r == 1 && info.uid == 0, "own sem listed %d uid %u", r,
		    info.uid);
		_exit(0);
	}
	close(p[1]);
	rc = wait_child(pid);
	if (rc == 99) {
		close(p[0]);
		SKIP(return, "no user namespaces");
	}
	ASSERT_EQ(0, rc);
	ASSERT_EQ(0, read(p[0], &c, 1));
	close(p[0]);

	{
		struct kprim_obj_info info;

		ASSERT_EQ(1, list_find(sess, KPRIM_KIND_SEM, name, &info));
		EXPECT_EQ(NOBODY, info.uid);
	}
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct kprim_open a;
		int s, r;

		s = kt_session();
		CHK(!drop_to(NOBODY), "drop");
		a = kt_open_args(KPRIM_KIND_SEM, name, KPRIM_OPEN_OWNED);
		r = kt_open(s, &a);
		CHK(r >= 0, "nobody OWNED open of its ns-made sem: %d", r);
		CHK(sem_resize(r, 5) == 0, "resize");
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct kprim_open a;
		int s, r;

		s = kt_session();
		CHK(!drop_to(OTHER), "drop");
		a = kt_open_args(KPRIM_KIND_SEM, name, KPRIM_OPEN_OWNED);
		r = kt_open(s, &a);
		CHK(r == -EPERM, "other uid OWNED open: %d", r);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct kprim_open a;
		int s, r;

		s = kt_session();
		a = kt_open_args(KPRIM_KIND_SEM, name, KPRIM_OPEN_OWNED);
		/* Other uid in its own userns, also mapped to 0. */
		r = become_ns_root(OTHER, 0);
		if (r)
			_exit(0);
		r = kt_open(s, &a);
		CHK(r == -EPERM, "other ns-root OWNED open: %d", r);
		r = kt_unlink(s, KPRIM_KIND_SEM, name);
		CHK(r == -EPERM, "other ns-root unlink: %d", r);
		_exit(0);
	}
	EXPECT_EQ(0, wait_child(pid));
	{
		/* "Even for root": init-ns root gets -EPERM from OWNED too. */
		struct kprim_open a = kt_open_args(KPRIM_KIND_SEM, name,
						   KPRIM_OPEN_OWNED);

		EXPECT_EQ(-EPERM, kt_open(sess, &a));
	}
	EXPECT_EQ(0, kt_unlink(sess, KPRIM_KIND_SEM, name));
	close(sess);
}

/*
 * A name made in a child IPC namespace is invisible from the initial one,
 * the initial one's names are invisible from the child, and an equal name
 * in both is two objects. The child's objects die with its processes.
 */
TEST(child_ipc_ns_isolated)
{
	char name[64];
	int sess, fd, rc, p[2], q[2];
	pid_t pid;
	char c = 0;

	KT_NAME(name, "nsi");
	sess = kt_session();
	ASSERT_GE(sess, 0);
	fd = sem_create(sess, name, KPRIM_OPEN_EXCL, 0666);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(0, pipe(p));
	ASSERT_EQ(0, pipe(q));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct kprim_obj_info info;
		struct kprim_open a;
		int s, cfd, r;

		close(p[0]);
		close(q[1]);
		if (unshare(CLONE_NEWIPC))
			_exit(99);
		s = kt_session();
		CHK(s >= 0, "session");
		CHK(!drop_to(NOBODY), "drop");
		r = list_find(s, KPRIM_KIND_SEM, "x", NULL);
		if (r == -EOPNOTSUPP) {
			a = kt_open_args(KPRIM_KIND_SEM, name, 0);
			r = kt_open(s, &a);
			CHK(r == -EOPNOTSUPP, "open in child ns on 6.1: %d", r);
			r = kt_unlink(s, KPRIM_KIND_SEM, name);
			CHK(r == -EOPNOTSUPP, "unlink in child ns: %d", r);
			_exit(98);
		}
		r = list_find(s, KPRIM_KIND_SEM, name, NULL);
		CHK(r == 0, "initial ns name listed in child: %d", r);
		a = kt_open_args(KPRIM_KIND_SEM, name, 0);
		r = kt_open(s, &a);
		CHK(r == -ENOENT, "initial ns name opened from child: %d", r);
		r = kt_unlink(s, KPRIM_KIND_SEM, name);
		CHK(r == -ENOENT, "initial ns name unlinked from child: %d", r);
		/* Same name, persistent asked: becomes transient here. */
		cfd = sem_create(s, name, KPRIM_OPEN_EXCL | KPRIM_OPEN_OWNED,
				 0666);
		CHK(cfd >= 0, "create in child: %d", cfd);
		r = list_find(s, KPRIM_KIND_SEM, name, &info);
		CHK(r == 1 && (info.flags & KPRIM_OBJ_TRANSIENT) &&
		    info.uid == NOBODY && info.sem.permits == 4,
		    "child sem %d flags %x uid %u", r, info.flags, info.uid);
		CHK(sem_resize(cfd, 9) == 0, "resize own");
		CHK(write(p[1], "x", 1) == 1, "sync");
		CHK(read(q[0], &c, 1) == 1, "sync2");
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	if (read(p[0], &c, 1) != 1) {
		rc = wait_child(pid);
		if (rc == 99)
			SKIP(goto out, "no user/IPC namespaces");
		if (rc == 98)
			SKIP(goto out, "child IPC namespaces unsupported (6.1)");
		EXPECT_EQ(0, rc);
		goto out;
	}
	{
		struct kprim_obj_info info;
		int n = 0;
		struct kprim_list l = { .size = sizeof(l) };
		static struct kprim_obj_info buf[64];
		__u32 i;

		/* Only one object of that name visible here: ours. */
		ASSERT_EQ(1, list_find(sess, KPRIM_KIND_SEM, name, &info));
		EXPECT_EQ(4, info.sem.permits);
		EXPECT_EQ(0, info.flags & KPRIM_OBJ_TRANSIENT);
		do {
			l.buf = (uintptr_t)buf;
			l.count = 64;
			l.entry_size = sizeof(buf[0]);
			ASSERT_EQ(0, kt_ioctl(sess, KPRIM_IOC_LIST, &l));
			for (i = 0; i < l.count; i++)
				if (!strcmp(buf[i].name, name))
					n++;
			l.start_id = l.next_id;
		} while (l.next_id);
		EXPECT_EQ(1, n);
	}
	ASSERT_EQ(1, write(q[1], "x", 1));
	EXPECT_EQ(0, wait_child(pid));
out:
	close(p[0]);
	close(q[1]);
	EXPECT_EQ(0, kt_unlink(sess, KPRIM_KIND_SEM, name));
	close(fd);
	close(sess);
}

/*
 * Child IPC namespace whose last process dies with persistent-asked names
 * and an fd passed nowhere: nothing may stay behind (rmmod would fail).
 * Many short-lived namespaces also exercise the ns pin/unpin path.
 */
TEST(child_ipc_ns_dies_with_objects)
{
	int i, rc;

	for (i = 0; i < 50; i++) {
		pid_t pid = fork();

		ASSERT_GE(pid, 0);
		if (!pid) {
			char name[64];
			int s, fd;

			if (unshare(CLONE_NEWIPC))
				_exit(99);
			s = kt_session();
			CHK(!drop_to(NOBODY), "drop");
			KT_NAME(name, "nsd");
			fd = sem_create(s, name, 0, 0600);
			if (fd == -EOPNOTSUPP)
				_exit(98);
			CHK(fd >= 0, "create: %d", fd);
			fd = cache_create(s, name, 0600);
			CHK(fd >= 0, "cache: %d", fd);
			/* Anonymous too, and one fd inherited by a grandchild
			 * that outlives us briefly.
			 */
			{
				struct kprim_open a = kt_open_args(
					KPRIM_KIND_SEM, NULL, 0);

				a.sem.permits = 1;
				CHK(kt_open(s, &a) >= 0, "anon");
			}
			if (i % 2 && fork() == 0) {
				usleep(20000);
				_exit(0);
			}
			_exit(0);
		}
		rc = wait_child(pid);
		if (rc == 99)
			SKIP(return, "no user/IPC namespaces");
		if (rc == 98)
			SKIP(return, "child IPC namespaces unsupported (6.1)");
		ASSERT_EQ(0, rc);
	}
	usleep(100000);
}

/*
 * Two uids race OWNED|CREATE[|EXCL] on one name, each unlinking what it
 * got. Whoever gets an fd must own the object (resize succeeds); the loser
 * sees only -EEXIST (EXCL) or -EPERM (no EXCL).
 */
static int race_side(uid_t uid, const char *name, int excl, int rounds)
{
	int s, i, wins = 0;

	s = kt_session();
	if (s < 0)
		return 3;
	if (drop_to(uid))
		return 2;
	for (i = 0; i < rounds; i++) {
		int fd = sem_create(s, name, KPRIM_OPEN_OWNED |
				    (excl ? KPRIM_OPEN_EXCL : 0), 0666);

		if (fd >= 0) {
			long r = sem_resize(fd, 4 + (i & 1));

			if (r) {
				fprintf(stderr,
					"uid %u: OWNED fd but resize %ld\n",
					uid, r);
				return 4;
			}
			wins++;
			r = kt_unlink(s, KPRIM_KIND_SEM, name);
			if (r && r != -ENOENT) {
				fprintf(stderr, "uid %u: unlink %ld\n", uid, r);
				return 5;
			}
			close(fd);
		} else if (fd != (excl ? -EEXIST : -EPERM)) {
			fprintf(stderr, "uid %u: open %d\n", uid, fd);
			return 6;
		}
	}
	fprintf(stderr, "uid %u: %d wins of %d\n", uid, wins, rounds);
	return wins ? 0 : 7;
}

static void owned_race(struct __test_metadata *_metadata, int excl)
{
	char name[64];
	pid_t a, b;
	int sess;

	KT_NAME(name, excl ? "nre" : "nro");
	sess = kt_session();
	ASSERT_GE(sess, 0);
	a = fork();
	ASSERT_GE(a, 0);
	if (!a)
		_exit(race_side(NOBODY, name, excl, 3000));
	b = fork();
	ASSERT_GE(b, 0);
	if (!b)
		_exit(race_side(OTHER, name, excl, 3000));
	EXPECT_EQ(0, wait_child(a));
	EXPECT_EQ(0, wait_child(b));
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

TEST(owned_excl_race_two_uids)
{
	owned_race(_metadata, 1);
}

TEST(owned_race_two_uids)
{
	owned_race(_metadata, 0);
}

TEST_HARNESS_MAIN
