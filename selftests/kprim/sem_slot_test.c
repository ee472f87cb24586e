// SPDX-License-Identifier: GPL-2.0
/*
 * kprim semaphore slots (KPRIM_FEAT_SEM_SLOT): an acquire+release pair
 * without a system call (ptrace counts them), parked permits recalled for
 * another fd, for a waiter and for reports, crash safety with the
 * acquirer stopped and killed at every step of the protocol (libkprim's
 * test hook), mutual exclusion under threads and processes with waiters,
 * garbage in the slot, fork, close, resize.
 *
 * Timing bounds allow a stated slack for the emulated (TCG) VM.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "kselftest_harness.h"
#include "kprim_test.h"
#include "kt_ptrace.h"
#include "kt_sem.h"
#include "kprim.h"

#define NSEC		1000000000ull
#define MSEC		1000000ull

/* libkprim's hook between the steps of a slot operation (sem_slot.h). */
extern void (*kprim_test_sem_slot_hook)(int step);

/* A library handle on a new fd of the semaphore @name. */
static struct kprim_sem *lib_open(struct kprim *k, const char *name,
				  __u64 permits)
{
	struct kprim_sem *s = NULL;

	if (kprim_sem_open(k, name, KPRIM_CREATE | KPRIM_ANY_OWNER, 0600,
			   permits, &s))
		return NULL;
	return s;
}

/*
 * A named semaphore of @permits that any user may open (the library
 * handles of the tests' children open it by name): its fd or -errno.
 */
static int open_shared(int sess, const char *name, __u64 permits)
{
	struct kprim_open o = kt_open_args(KPRIM_KIND_SEM, name,
					   KPRIM_OPEN_CREATE);

	o.sem.permits = permits;
	o.mode = 0666;
	return kt_open(sess, &o);
}

/* A library session in *@k and a handle on the new semaphore @name. */
static struct kprim_sem *lib_session(struct __test_metadata *_metadata,
				     struct kprim **k, const char *name,
				     __u64 permits)
{
	struct kprim_sem *s;

	ASSERT_EQ(0, kprim_open(k));
	s = lib_open(*k, name, permits);
	ASSERT_NE(NULL, s);
	return s;
}

/* Pairs of one permit on a library handle, in a traced child. */
struct pairs {
	const char *name;
	__u64 permits;
	int pairs;
	struct kprim_sem *s;
};

/* Before the tracing: a new handle, and a first pair parks the permit. */
static int pairs_setup(void *arg)
{
	struct pairs *p = arg;
	struct kprim *k;

	if (kprim_open(&k))
		return 254;
	p->s = lib_open(k, p->name, p->permits);
	if (!p->s || kprim_sem_try_acquire(p->s, 1) ||
	    kprim_sem_release(p->s, 1))
		return 253;
	return 0;
}

static int pairs_body(void *arg)
{
	struct pairs *p = arg;
	int ok = 0;

	for (int i = 0; i < p->pairs; i++)
		if (!kprim_sem_try_acquire(p->s, 1) &&
		    !kprim_sem_release(p->s, 1))
			ok++;
	return ok;
}

/*
 * Count the system calls of @pairs acquire+release pairs of one permit on
 * a new library handle of @name; status: the number of pairs that worked.
 */
static struct kt_syscalls count_syscalls_of_pairs(const char *name,
						  __u64 permits, int pairs)
{
	struct pairs p = { .name = name, .permits = permits, .pairs = pairs };

	return kt_count_syscalls(pairs_setup, pairs_body, &p);
}

TEST(feature_bit_and_refusals)
{
	struct kprim_api a = { .size = sizeof(a) };
	int sess = kt_session(), fd;
	long ps = sysconf(_SC_PAGESIZE);
	void *p;

	ASSERT_LE(0, sess);
	ASSERT_EQ(0, kt_ioctl(sess, KPRIM_IOC_API, &a));
	EXPECT_TRUE(a.features & KPRIM_FEAT_SEM_SLOT);
	fd = kt_sem_open(sess, NULL, KPRIM_OPEN_CREATE, 3);
	ASSERT_LE(0, fd);
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EINVAL, errno);
	p = mmap(NULL, ps, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	EXPECT_EQ(MAP_FAILED, p);
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(3, kt_sem_info(fd).available);
	/* A good mapping shows the fd's holding; nothing parked yet. */
	EXPECT_EQ(0, kt_sem_acquire(fd, 2, 0));
	p = mmap(NULL, ps, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ASSERT_NE(MAP_FAILED, p);
	{
		__u64 w = __atomic_load_n(&((struct kprim_sem_slot *)p)->word,
					  __ATOMIC_ACQUIRE);

		EXPECT_FALSE(w & KPRIM_SEM_SLOT_SLOW);
		EXPECT_EQ(0, w & KPRIM_SEM_SLOT_FREE);
		EXPECT_EQ(2, (w & KPRIM_SEM_SLOT_HELD) >>
			  KPRIM_SEM_SLOT_HELD_SHIFT);
	}
	munmap(p, ps);
	close(fd);
	close(sess);
}

/* The point: once a permit is parked, a pair makes no system call. */
TEST(pair_without_a_syscall)
{
	char name[64];
	struct kt_syscalls c;
	int sess = kt_session(), fd;

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-pair");
	fd = open_shared(sess, name, 2);
	ASSERT_LE(0, fd);
	c = count_syscalls_of_pairs(name, 2, 20);
	EXPECT_EQ(20, c.status);
	EXPECT_EQ(0, c.ioctls);
	TH_LOG("20 pairs: %d ioctl, %d other system calls", c.ioctls,
	       c.others);
	/* The child is gone, its fd closed: everything came back. */
	EXPECT_EQ(0, kt_sem_info(fd).held);
	EXPECT_EQ(2, kt_sem_info(fd).available);
	/* 1 + 20 acquisitions, counted by the kernel from the slot. */
	EXPECT_EQ(21, kt_sem_info(fd).acquired);

	/* Without the slot, every operation is an ioctl. */
	setenv("KPRIM_NO_SEM_SLOT", "1", 1);
	c = count_syscalls_of_pairs(name, 2, 5);
	unsetenv("KPRIM_NO_SEM_SLOT");
	EXPECT_EQ(5, c.status);
	EXPECT_EQ(10, c.ioctls);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(fd);
	close(sess);
}

/*
 * Permits parked in one fd's slot are taken back when another fd needs
 * them, and reported as available; the slot then sends its fd's next
 * acquire to the kernel.
 */
TEST(parked_permits_are_recalled)
{
	struct kprim *k;
	struct kprim_sem *a;
	struct kprim_sem_stats st;
	char name[64];
	int sess = kt_session(), b;

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-recall");
	a = lib_session(_metadata, &k, name, 3);
	ASSERT_EQ(0, kprim_sem_acquire(a, 3, NULL, 0));
	ASSERT_EQ(0, kprim_sem_release(a, 2));	/* 2 parked, 1 in use */
	b = kt_sem_open(sess, name, 0, 0);
	ASSERT_LE(0, b);
	/* INFO recalls: the parked two are available, a holds one. */
	ASSERT_EQ(0, kprim_sem_stats(a, &st));
	EXPECT_EQ(1, st.held);
	EXPECT_EQ(1, st.held_by_me);
	EXPECT_EQ(2, st.available);
	EXPECT_EQ(1, st.acquired);
	/* Park them again; another fd's acquire takes them back. */
	ASSERT_EQ(0, kprim_sem_acquire(a, 2, NULL, 0));
	ASSERT_EQ(0, kprim_sem_release(a, 2));
	EXPECT_EQ(0, kt_sem_acquire(b, 2, 0));
	EXPECT_EQ(-EAGAIN, kt_sem_acquire(b, 1, 0));
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(a, 1));
	/* a cannot release what it does not hold, parked or not. */
	EXPECT_EQ(-EINVAL, kprim_sem_release(a, 2));
	EXPECT_EQ(0, kprim_sem_release(a, 1));
	EXPECT_EQ(0, kt_sem_release(b, 2));
	EXPECT_EQ(0, kt_sem_info(b).held);
	EXPECT_EQ(3, kt_sem_info(b).available);
	kprim_sem_close(a);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(b);
	kprim_close(k);
	close(sess);
}

struct waiter {
	int fd;
	__u64 n;
	long ret;
	__u64 took_ns;
};

static void *blocking_acquire(void *arg)
{
	struct waiter *w = arg;
	__u64 t0 = kt_now_ns();

	w->ret = kt_sem_acquire(w->fd, w->n, 20 * NSEC);
	w->took_ns = kt_now_ns() - t0;
	return NULL;
}

/*
 * A queued waiter is neither overtaken by the fd that parks permits nor
 * forgotten when that fd releases in userspace: the release goes to the
 * kernel, which grants the waiter.
 */
TEST(waiter_is_granted_and_not_overtaken)
{
	struct kprim *k;
	struct kprim_sem *a;
	struct waiter w;
	char name[64];
	int sess = kt_session(), b;
	pthread_t t;

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-fifo");
	a = lib_session(_metadata, &k, name, 1);
	/* a's permit parked, then in use again from the slot. */
	ASSERT_EQ(0, kprim_sem_acquire(a, 1, NULL, 0));
	ASSERT_EQ(0, kprim_sem_release(a, 1));
	ASSERT_EQ(0, kprim_sem_acquire(a, 1, NULL, 0));
	b = kt_sem_open(sess, name, 0, 0);
	ASSERT_LE(0, b);
	w = (struct waiter){ .fd = b, .n = 1 };
	ASSERT_EQ(0, pthread_create(&t, NULL, blocking_acquire, &w));
	/*
	 * No INFO meanwhile (it recalls parked permits, which would hide a
	 * slot left open under a waiter): give it time to queue.
	 */
	usleep(300 * 1000);
	/* The release wakes the waiter; a's next try finds it ahead. */
	ASSERT_EQ(0, kprim_sem_release(a, 1));
	pthread_join(t, NULL);
	EXPECT_EQ(0, w.ret);
	EXPECT_GT(2 * NSEC, w.took_ns);
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(a, 1));
	EXPECT_EQ(1, kt_sem_info(b).held_by_me);
	EXPECT_EQ(0, kt_sem_release(b, 1));
	EXPECT_EQ(0, kprim_sem_try_acquire(a, 1));
	EXPECT_EQ(0, kprim_sem_release(a, 1));
	kprim_sem_close(a);
	EXPECT_EQ(1, kt_sem_info(b).available);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(b);
	kprim_close(k);
	close(sess);
}

static int stop_at;
static void stop_at_step(int step)
{
	if (step == stop_at)
		raise(SIGSTOP);
}

/*
 * Crash safety: a process stopped at each step of a slot acquire or
 * release (before the swap, after it) while a waiter for every permit
 * queues (and recalls what is parked), then killed there, or let go on
 * (its swap fails if the recall came between: it asks the kernel):
 * nothing is lost or doubled, and the waiter gets every permit.
 */
TEST(killed_or_resumed_at_every_step)
{
	char name[64];
	int sess = kt_session(), fd;
	const __u64 permits = 2;

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-kill");
	fd = open_shared(sess, name, permits);
	ASSERT_LE(0, fd);
	for (int round = 0; round < 16; round++) {
		bool release = round & 1;
		int step = 1 + ((round >> 1) & 1);
		bool resume = round & 4;
		struct waiter w = { .fd = fd, .n = permits };
		struct kprim_sem_info i;
		pthread_t t;
		pid_t pid;
		int st;

		pid = fork();
		ASSERT_LE(0, pid);
		if (!pid) {
			struct kprim *k;
			struct kprim_sem *s;
			int ret;

			if (kprim_open(&k))
				_exit(1);
			s = lib_open(k, name, permits);
			/* One permit in use and one parked before the op. */
			if (!s || kprim_sem_acquire(s, 2, NULL, 0) ||
			    kprim_sem_release(s, 1))
				_exit(2);
			stop_at = step;
			kprim_test_sem_slot_hook = stop_at_step;
			ret = release ? kprim_sem_release(s, 1) :
					kprim_sem_acquire(s, 1, NULL, 0);
			/* Resumed: what the op did is held by the fd, which
			 * closes with the process. */
			_exit(ret == 0 ? 0 : ret == -EAGAIN ? 11 : 12);
		}
		ASSERT_EQ(pid, waitpid(pid, &st, WUNTRACED));
		ASSERT_TRUE(WIFSTOPPED(st));
		/*
		 * Stopped between the steps. INFO takes back what is parked
		 * (the child's swap, if still to come, then fails): held and
		 * available still add up to the permits.
		 */
		i = kt_sem_info(fd);
		EXPECT_EQ(permits, i.held + i.available)
			TH_LOG("round %d: held %llu available %llu", round,
			       (unsigned long long)i.held,
			       (unsigned long long)i.available);
		ASSERT_EQ(0, pthread_create(&t, NULL, blocking_acquire, &w));
		/* Queued, or granted at once if all were parked (recalled). */
		for (int n = 0; n < 2000 && kt_sem_info(fd).waiters != 1 &&
				    !__atomic_load_n(&w.took_ns, __ATOMIC_RELAXED);
		     n++)
			usleep(2000);
		if (resume) {
			kill(pid, SIGCONT);
			st = kt_reap(pid);
			/* The op finished in the kernel or in the slot. */
			EXPECT_TRUE(st == 0 || st == 11)
				TH_LOG("round %d: child %d", round, st);
		} else {
			kill(pid, SIGKILL);
			EXPECT_EQ(255 + SIGKILL, kt_reap(pid));
		}
		pthread_join(t, NULL);
		EXPECT_EQ(0, w.ret)
			TH_LOG("round %d (%s, step %d, %s): waiter %ld", round,
			       release ? "release" : "acquire", step,
			       resume ? "resumed" : "killed", w.ret);
		i = kt_sem_info(fd);
		EXPECT_EQ(permits, i.held);
		EXPECT_EQ(permits, i.held_by_me);
		EXPECT_EQ(0, i.waiters);
		EXPECT_EQ(0, kt_sem_release(fd, permits));
		EXPECT_EQ(0, kt_sem_info(fd).held);
		EXPECT_EQ(permits, kt_sem_info(fd).available);
	}
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(fd);
	close(sess);
}

struct excl {
	const char *name;
	atomic_int *in_use;
	atomic_int *worst;
	atomic_bool *stop;
	__u64 permits;
	long ops;
	int err;
};

static void *exclusion_worker(void *arg)
{
	struct excl *x = arg;
	struct kprim *k;
	struct kprim_sem *s;
	unsigned int seed = (unsigned int)(uintptr_t)x;

	if (kprim_open(&k)) {
		x->err = 1;
		return NULL;
	}
	s = lib_open(k, x->name, x->permits);
	if (!s) {
		x->err = 2;
		kprim_close(k);
		return NULL;
	}
	while (!atomic_load(x->stop)) {
		int ret = rand_r(&seed) & 1 ?
			  kprim_sem_try_acquire(s, 1) :
			  kprim_sem_acquire(s, 1, NULL, 50 * MSEC);
		int now;

		if (ret == -EAGAIN || ret == -ETIMEDOUT)
			continue;
		if (ret) {
			x->err = 3;
			break;
		}
		now = atomic_fetch_add(x->in_use, 1) + 1;
		for (int w = atomic_load(x->worst);
		     now > w && !atomic_compare_exchange_weak(x->worst, &w, now);)
			;
		if (rand_r(&seed) % 8 == 0)
			sched_yield();
		atomic_fetch_sub(x->in_use, 1);
		if (kprim_sem_release(s, 1)) {
			x->err = 4;
			break;
		}
		x->ops++;
		/* Now and then a new fd: a close with permits parked. */
		if (rand_r(&seed) % 512 == 0) {
			kprim_sem_close(s);
			s = lib_open(k, x->name, x->permits);
			if (!s) {
				x->err = 5;
				break;
			}
		}
	}
	kprim_sem_close(s);
	kprim_close(k);
	return NULL;
}

/*
 * Threads in two processes, each on its own fd, acquire (try and wait)
 * and release through their slots while the others wait and recall: never
 * more than the permits in use at once, and nothing held at the end.
 */
TEST(mutual_exclusion_in_threads_and_processes)
{
	const __u64 permits = 2;
	atomic_int *shared;
	char name[64];
	int sess = kt_session(), fd;
	pid_t pid;

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-excl");
	fd = open_shared(sess, name, permits);
	ASSERT_LE(0, fd);
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared);
	shared[0] = 0;	/* in use */
	shared[1] = 0;	/* worst seen */
	pid = fork();
	ASSERT_LE(0, pid);
	{
		struct excl x[3];
		pthread_t t[3];
		atomic_bool stop = false;
		long ops = 0;
		int err = 0;

		for (int i = 0; i < 3; i++) {
			x[i] = (struct excl){ .name = name,
					      .in_use = &shared[0],
					      .worst = &shared[1],
					      .stop = &stop,
					      .permits = permits };
			ASSERT_EQ(0, pthread_create(&t[i], NULL,
						    exclusion_worker, &x[i]));
		}
		sleep(3);
		atomic_store(&stop, true);
		for (int i = 0; i < 3; i++) {
			pthread_join(t[i], NULL);
			ops += x[i].ops;
			err |= x[i].err;
		}
		if (!pid)
			_exit(err ? 10 + err : 0);
		EXPECT_EQ(0, err);
		EXPECT_EQ(0, kt_reap(pid));
		EXPECT_LT(0, ops);
		TH_LOG("%ld pairs here, worst in use %d of %llu", ops,
		       shared[1], (unsigned long long)permits);
	}
	EXPECT_GE((int)permits, shared[1]);
	EXPECT_EQ(0, kt_sem_info(fd).held);
	EXPECT_EQ(permits, kt_sem_info(fd).available);
	EXPECT_EQ(0, kt_sem_info(fd).waiters);
	munmap(shared, 4096);
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(fd);
	close(sess);
}

struct spray {
	struct kprim_sem_slot *slot;
	atomic_bool *stop;
	unsigned int seed;
};

static void *spray_slot(void *arg)
{
	struct spray *g = arg;
	const __u64 picks[] = {
		0, ~0ull, KPRIM_SEM_SLOT_SLOW, KPRIM_SEM_SLOT_FREE,
		KPRIM_SEM_SLOT_HELD, 5 | 5ull << KPRIM_SEM_SLOT_HELD_SHIFT,
	};

	while (!atomic_load(g->stop)) {
		unsigned int r = rand_r(&g->seed);
		__u64 v = r & 1 ? picks[(r >> 1) % 6] :
			  ((__u64)rand_r(&g->seed) << 32) ^ rand_r(&g->seed);

		__atomic_store_n(r & 16 ? &g->slot->acquired : &g->slot->word,
				 v, __ATOMIC_RELAXED);
		if (r % 64 == 0)
			usleep(100);
	}
	return NULL;
}

static void *slot_user(void *arg)
{
	struct excl *x = arg;
	struct kprim *k;
	struct kprim_sem *s;

	if (kprim_open(&k)) {
		x->err = -1000;
		return NULL;
	}
	s = lib_open(k, x->name, x->permits);
	if (!s)
		x->err = -1001;
	while (s && !atomic_load(x->stop)) {
		int ret = kprim_sem_acquire(s, 1, NULL, 5 * MSEC);

		if (!ret)
			ret = kprim_sem_release(s, 1);
		if (ret && ret != -EAGAIN && ret != -ETIMEDOUT &&
		    ret != -EINVAL)
			x->err = ret;
		x->ops++;
	}
	kprim_sem_close(s);
	kprim_close(k);
	return NULL;
}

/*
 * Garbage in one fd's slot while its threads and another fd's use the
 * semaphore: the kernel stays consistent, and once the garbage fd is
 * closed everything is back.
 */
TEST(garbage_in_the_slot)
{
	const __u64 permits = 4;
	struct excl u[2];
	struct spray g;
	atomic_bool stop = false, stop_users = false;
	pthread_t ut[2], gt;
	char name[64];
	int sess = kt_session(), fd, victim;
	struct kprim_sem_slot *slot;
	struct kprim_sem_info i;

	ASSERT_LE(0, sess);
	KT_NAME(name, "slot-garbage");
	fd = kt_sem_open(sess, name, KPRIM_OPEN_CREATE, permits);
	ASSERT_LE(0, fd);
	victim = kt_sem_open(sess, name, 0, 0);
	ASSERT_LE(0, victim);
	slot = kt_sem_map(victim);
	ASSERT_NE(NULL, slot);
	for (int k = 0; k < 2; k++) {
		u[k] = (struct excl){ .name = name, .stop = &stop_users,
				      .permits = permits };
		ASSERT_EQ(0, pthread_create(&ut[k], NULL, slot_user, &u[k]));
	}
	g = (struct spray){ .slot = slot, .stop = &stop, .seed = 3 };
	ASSERT_EQ(0, pthread_create(&gt, NULL, spray_slot, &g));
	for (int r = 0; r < 3000; r++) {
		long ret = r & 1 ? kt_sem_acquire(victim, 1 + r % 4, 0) :
				   kt_sem_release(victim, 1 + r % 3);

		EXPECT_TRUE(!ret || ret == -EAGAIN || ret == -EINVAL)
			TH_LOG("victim op %d: %ld", r, ret);
		if (r % 100 == 0) {
			i = kt_sem_info(fd);
			EXPECT_GE(permits, i.held);
		}
	}
	/* The users must get on meanwhile (bounded: 20 s). */
	for (int n = 0; n < 2000 && (__atomic_load_n(&u[0].ops, __ATOMIC_RELAXED) < 50 ||
				     __atomic_load_n(&u[1].ops, __ATOMIC_RELAXED) < 50); n++)
		usleep(10000);
	atomic_store(&stop, true);
	pthread_join(gt, NULL);
	atomic_store(&stop_users, true);
	for (int k = 0; k < 2; k++) {
		pthread_join(ut[k], NULL);
		EXPECT_EQ(0, u[k].err);
		EXPECT_LE(50, u[k].ops);
	}
	munmap(slot, sysconf(_SC_PAGESIZE));
	close(victim);
	i = kt_sem_info(fd);
	EXPECT_EQ(0, i.held);
	EXPECT_EQ(permits, i.available);
	EXPECT_EQ(0, i.waiters);
	EXPECT_EQ(0, kt_sem_acquire(fd, permits, 0));
	EXPECT_EQ(0, kt_sem_release(fd, permits));
	kt_unlink(sess, KPRIM_KIND_SEM, name);
	close(fd);
	close(sess);
}

/* A forked child shares the fd and its slot; a resize keeps parked ones. */
TEST(fork_and_resize)
{
	struct kprim *k;
	struct kprim_sem *a;
	struct kprim_sem_stats st;
	char name[64];
	pid_t pid;

	KT_NAME(name, "slot-fork");
	a = lib_session(_metadata, &k, name, 3);
	ASSERT_EQ(0, kprim_sem_acquire(a, 3, NULL, 0));
	ASSERT_EQ(0, kprim_sem_release(a, 3));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* The parent's parked permits, taken in the child. */
		_exit(kprim_sem_try_acquire(a, 2) ? 1 : 0);
	}
	EXPECT_EQ(0, kt_reap(pid));
	/* The fd (shared) holds the child's two; one is still parked. */
	ASSERT_EQ(0, kprim_sem_stats(a, &st));
	EXPECT_EQ(2, st.held_by_me);
	EXPECT_EQ(1, st.available);
	/* Shrink below what is held: nothing is available until release. */
	ASSERT_EQ(0, kprim_sem_resize(a, 1));
	ASSERT_EQ(0, kprim_sem_stats(a, &st));
	EXPECT_EQ(0, st.available);
	EXPECT_EQ(0, kprim_sem_release(a, 2));
	ASSERT_EQ(0, kprim_sem_stats(a, &st));
	EXPECT_EQ(0, st.held);
	EXPECT_EQ(1, st.available);
	kprim_sem_close(a);
	kprim_unlink(k, KPRIM_KIND_SEM, name);
	kprim_close(k);
}

/*
 * A shrink below what is held makes parked permits unusable too: they
 * are not in use, so taking one would put more in use than the new count.
 */
TEST(shrink_recalls_parked_permits)
{
	struct kprim *k;
	struct kprim_sem *a;
	struct kprim_sem_stats st;
	char name[64];

	KT_NAME(name, "slot-shrink");
	a = lib_session(_metadata, &k, name, 2);
	ASSERT_EQ(0, kprim_sem_acquire(a, 2, NULL, 0));
	ASSERT_EQ(0, kprim_sem_release(a, 1));	/* 1 in use, 1 parked */
	ASSERT_EQ(0, kprim_sem_resize(a, 1));
	/* One in use, the new count is one: nothing more to take. */
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(a, 1));
	ASSERT_EQ(0, kprim_sem_stats(a, &st));
	EXPECT_EQ(1, st.held);
	EXPECT_EQ(0, st.available);
	EXPECT_EQ(0, kprim_sem_release(a, 1));
	EXPECT_EQ(0, kprim_sem_try_acquire(a, 1));
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(a, 1));
	EXPECT_EQ(0, kprim_sem_release(a, 1));
	kprim_sem_close(a);
	kprim_unlink(k, KPRIM_KIND_SEM, name);
	kprim_close(k);
}

/*
 * After a shrink below what the fd holds, releases go to the kernel and
 * are not parked: a parked one would be re-taken in userspace above the
 * new count (found by review: 3 held, count 1, two released, one taken
 * back from the slot = 2 in use).
 */
TEST(shrunk_fd_does_not_park)
{
	struct kprim *k;
	struct kprim_sem *a;
	struct kprim_sem_stats st;
	char name[64];

	KT_NAME(name, "slot-shrunk");
	a = lib_session(_metadata, &k, name, 3);
	ASSERT_EQ(0, kprim_sem_acquire(a, 3, NULL, 0));
	ASSERT_EQ(0, kprim_sem_resize(a, 1));
	ASSERT_EQ(0, kprim_sem_release(a, 1));	/* 2 in use */
	ASSERT_EQ(0, kprim_sem_release(a, 1));	/* 1 in use = the count */
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(a, 1));
	ASSERT_EQ(0, kprim_sem_stats(a, &st));
	EXPECT_EQ(1, st.held);
	EXPECT_EQ(0, st.available);
	EXPECT_EQ(0, kprim_sem_release(a, 1));
	EXPECT_EQ(0, kprim_sem_try_acquire(a, 1));
	EXPECT_EQ(-EAGAIN, kprim_sem_try_acquire(a, 1));
	EXPECT_EQ(0, kprim_sem_release(a, 1));
	kprim_sem_close(a);
	kprim_unlink(k, KPRIM_KIND_SEM, name);
	kprim_close(k);
}

TEST_HARNESS_MAIN
