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
static int race_side(uid_t uid, const char *name, int excl, int rounds,
		     int go)
{
	unsigned int seed = uid;
	int s, i, wins = 0;
	char c;

	/*
	 * Die with the test: a side left running after the harness killed
	 * a timed-out test would go on creating named objects under the
	 * tests that follow (fault_test found one in its LIST).
	 */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		return 4;
	s = kt_session();
	if (s < 0)
		return 3;
	if (drop_to(uid))
		return 2;
	/* Start together: a side that ran alone would win every round. */
	if (read(go, &c, 1) != 0)
		return 8;
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
			/*
			 * Leave the name free a moment: on a VM whose vCPUs
			 * the host runs by turns, the side that just won
			 * would otherwise win again before the other side
			 * is scheduled at all.
			 */
			usleep(rand_r(&seed) % 200);
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
	int sess, go[2];
	pid_t a, b;

	KT_NAME(name, excl ? "nre" : "nro");
	sess = kt_session();
	ASSERT_GE(sess, 0);
	ASSERT_EQ(0, pipe(go));
	a = fork();
	ASSERT_GE(a, 0);
	if (!a) {
		close(go[1]);
		_exit(race_side(NOBODY, name, excl, 3000, go[0]));
	}
	b = fork();
	ASSERT_GE(b, 0);
	if (!b) {
		close(go[1]);
		_exit(race_side(OTHER, name, excl, 3000, go[0]));
	}
	close(go[0]);
	close(go[1]);	/* both sides read EOF: go */
	EXPECT_EQ(0, wait_child(a));
	EXPECT_EQ(0, wait_child(b));
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(sess);
}

/*
 * 3000 rounds a side: minutes on a loaded debug VM, not the harness's
 * default 30 s (a timeout needs a fixture in this harness).
 */
FIXTURE(race) {};
FIXTURE_SETUP(race) {}
FIXTURE_TEARDOWN(race) {}

TEST_F_TIMEOUT(race, owned_excl_race_two_uids, 300)
{
	owned_race(_metadata, 1);
}

TEST_F_TIMEOUT(race, owned_race_two_uids, 300)
{
	owned_race(_metadata, 0);
}

/* Read an integer file (sysctl, module parameter); -errno on failure. */
static long read_num(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY), n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	return strtol(buf, NULL, 10);
}

static int write_num(const char *path, long v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld\n", v);
	return write_file(path, buf);
}

#define QUOTA_PARAM	"/sys/module/kprim/parameters/max_objects_per_user"
#define USERNS_SYSCTL	"/proc/sys/kernel/unprivileged_userns_clone"
#define QUOTA_OWNER	4242
#define QUOTA_SUBUIDS	300000
#define QUOTA		6

/* The test process: names below are unique to it. */
static pid_t quota_base;

/* As the current uid: create @n persistent sems kt-quota-<base>-<tag>-<i>. */
static int create_named(int sess, const char *tag, int n)
{
	char name[64];
	int i, fd;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "kt-quota-%d-%s-%d", quota_base,
			 tag, i);
		fd = sem_create(sess, name, KPRIM_OPEN_EXCL, 0600);
		if (fd < 0)
			return fd;
		close(fd);
	}
	return 0;
}

/*
 * An unprivileged user (QUOTA_OWNER) creates a user namespace and has
 * sub-uids mapped into it, as newuidmap would. Objects its namespace's
 * uids create are charged to it: together they hit its quota, and it
 * cannot create more from outside either. Before, each mapped kuid had a
 * quota of its own, so sub-uids multiplied the owner's quota.
 */
TEST(userns_subuids_share_their_creators_quota)
{
	long old_quota, old_clone;
	int sess, rc, a[2], b[2], i;
	char name[64], c;
	pid_t pid, h;

	quota_base = getpid();
	old_quota = read_num(QUOTA_PARAM);
	ASSERT_GT(old_quota, 0);
	old_clone = read_num(USERNS_SYSCTL);
	if (old_clone >= 0)
		ASSERT_EQ(0, write_num(USERNS_SYSCTL, 1));
	ASSERT_EQ(0, write_num(QUOTA_PARAM, QUOTA));
	sess = kt_session();
	ASSERT_GE(sess, 0);
	ASSERT_EQ(0, pipe(a));
	ASSERT_EQ(0, pipe(b));

	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		int r;

		CHK(!drop_to(QUOTA_OWNER), "drop: %d", errno);
		prctl(PR_SET_DUMPABLE, 1);
		if (unshare(CLONE_NEWUSER)) {
			fprintf(stderr, "unprivileged unshare: %s\n",
				strerror(errno));
			c = 'q';
			CHK(write(a[1], &c, 1) == 1, "pipe");
			_exit(99);
		}
		c = 'g';
		CHK(write(a[1], &c, 1) == 1, "pipe");
		CHK(read(b[0], &c, 1) == 1 && c == 'k', "maps not written");
		CHK(!setresgid(0, 0, 0) && !setresuid(0, 0, 0), "ns root");

		/* ns uids 0, 1, 2: two objects each, fills the quota. */
		for (i = 0; i < 3; i++) {
			pid_t k = fork();

			CHK(k >= 0, "fork");
			if (!k) {
				char tag[8];

				snprintf(tag, sizeof(tag), "u%d", i);
				CHK(!setresuid(i, i, i), "setresuid(%d)", i);
				r = create_named(sess, tag, 2);
				CHK(!r, "ns uid %d create: %d", i, r);
				_exit(0);
			}
			CHK(wait_child(k) == 0, "ns uid %d", i);
		}
		/* ns uid 3 (kuid QUOTA_SUBUIDS + 3): the owner's quota. */
		CHK(!setresuid(3, 3, 3), "setresuid(3)");
		r = create_named(sess, "u3", 1);
		CHK(r == -EDQUOT, "sub-uid 3 created beyond its owner's quota: %d",
		    r);
		_exit(0);
	}
	/* Root writes the maps, as newuidmap/newgidmap would. */
	ASSERT_EQ(1, read(a[0], &c, 1));
	if (c == 'g') {
		char path[64], map[64];

		snprintf(map, sizeof(map), "0 %d 1\n1 %d 16\n", QUOTA_OWNER,
			 QUOTA_SUBUIDS + 1);
		snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
		EXPECT_EQ(0, write_file(path, map));
		snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
		write_file(path, "deny");
		snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
		EXPECT_EQ(0, write_file(path, map));
		c = 'k';
		ASSERT_EQ(1, write(b[1], &c, 1));
	}
	rc = wait_child(pid);

	/* The owner itself, outside: nothing left either. */
	if (rc == 0) {
		h = fork();
		ASSERT_GE(h, 0);
		if (!h) {
			int r;

			CHK(!drop_to(QUOTA_OWNER), "drop");
			r = create_named(sess, "outer", 1);
			CHK(r == -EDQUOT, "owner created beyond its quota: %d", r);
			_exit(0);
		}
		EXPECT_EQ(0, wait_child(h));
	}

	for (i = 0; i < 3; i++) {
		int j;

		for (j = 0; j < 2; j++) {
			snprintf(name, sizeof(name), "kt-quota-%d-u%d-%d",
				 getpid(), i, j);
			kt_unlink(sess, KPRIM_KIND_SEM, name);
		}
	}
	snprintf(name, sizeof(name), "kt-quota-%d-u3-0", getpid());
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	snprintf(name, sizeof(name), "kt-quota-%d-outer-0", getpid());
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	write_num(QUOTA_PARAM, old_quota);
	if (old_clone >= 0)
		write_num(USERNS_SYSCTL, old_clone);
	close(sess);
	if (rc == 99)
		SKIP(return, "no unprivileged user namespaces");
	EXPECT_EQ(0, rc);
}

/*
 * Root of a user namespace that owns a child IPC namespace administers the
 * objects of that IPC namespace (CAP_SYS_ADMIN there, as for SysV IPC),
 * also those of other users; it has no such power in the initial one
 * (userns_root_cannot_take_foreign).
 */
TEST(userns_root_administers_its_own_ipc_ns)
{
	int sess, ready[2], go[2], made[2], done[2], rc, hrc;
	char name[64], c;
	pid_t child, helper;

	KT_NAME(name, "nsa");
	sess = kt_session();
	ASSERT_GE(sess, 0);
	ASSERT_EQ(0, pipe(ready));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(made));
	ASSERT_EQ(0, pipe(done));

	child = fork();
	ASSERT_GE(child, 0);
	if (!child) {
		int s = kt_session(), fd, r;
		struct kprim_open a;

		CHK(s >= 0, "session");
		r = become_ns_root(NOBODY, CLONE_NEWIPC);
		if (r) {
			fprintf(stderr, "unshare(NEWUSER|NEWIPC): %s\n",
				strerror(-r));
			_exit(99);
		}
		CHK(write(ready[1], "r", 1) == 1, "ready");
		CHK(read(go[0], &c, 1) == 1, "go");
		a = kt_open_args(KPRIM_KIND_SEM, name, 0);
		fd = kt_open(s, &a);
		if (fd == -EOPNOTSUPP)
			_exit(98);
		CHK(fd >= 0, "open the other user's sem: %d", fd);
		r = sem_resize(fd, 7);
		CHK(r == 0, "resize by the IPC ns's root: %d", r);
		r = kt_unlink(s, KPRIM_KIND_SEM, name);
		CHK(r == 0, "unlink by the IPC ns's root: %d", r);
		_exit(0);
	}
	close(ready[1]);	/* a child that gives up leaves us EOF */
	ready[1] = -1;
	if (read(ready[0], &c, 1) != 1) {
		rc = wait_child(child);
		if (rc == 99)
			SKIP(goto out, "no user namespaces");
		ASSERT_EQ(0, rc);
	}

	/* Another uid of the initial user ns joins that IPC ns, creates. */
	helper = fork();
	ASSERT_GE(helper, 0);
	if (!helper) {
		char path[64];
		int nsfd, s, fd;

		snprintf(path, sizeof(path), "/proc/%d/ns/ipc", child);
		nsfd = open(path, O_RDONLY);
		CHK(nsfd >= 0 && !setns(nsfd, CLONE_NEWIPC), "setns");
		s = kt_session();
		CHK(s >= 0 && !drop_to(OTHER), "drop");
		fd = sem_create(s, name, KPRIM_OPEN_EXCL, 0666);
		if (fd == -EOPNOTSUPP) {
			CHK(write(made[1], "n", 1) == 1, "made");
			_exit(98);
		}
		CHK(fd >= 0, "create in the child IPC ns: %d", fd);
		CHK(write(made[1], "y", 1) == 1, "made");
		CHK(read(done[0], &c, 1) == 1, "done");
		_exit(0);
	}
	close(made[1]);
	made[1] = -1;
	ASSERT_EQ(1, read(made[0], &c, 1));
	ASSERT_EQ(1, write(go[1], "g", 1));
	rc = wait_child(child);
	ASSERT_EQ(1, write(done[1], "d", 1));
	hrc = wait_child(helper);
	if (c == 'n' || rc == 98)
		SKIP(goto out, "child IPC namespaces unsupported (6.1)");
	EXPECT_EQ(0, hrc);
	EXPECT_EQ(0, rc);
out:
	close(ready[0]);
	close(ready[1]);
	close(go[0]);
	close(go[1]);
	close(made[0]);
	close(made[1]);
	close(done[0]);
	close(done[1]);
	close(sess);
}

TEST_HARNESS_MAIN
