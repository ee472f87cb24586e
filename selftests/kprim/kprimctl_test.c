// SPDX-License-Identifier: GPL-2.0
/*
 * kselftests for kprimctl(8), run as a user runs it: fork/exec of the
 * binary (/demo/kprimctl in the test VM, or $KPRIMCTL), with its stdout,
 * stderr and exit status captured.
 *
 *  - numbers with units (rates, sizes, durations, counts) reach the kernel
 *    as the right integers, and plain numbers still mean what they did;
 *  - every bad input is its own case: exit status 2, exactly one line on
 *    stderr naming the argument, and nothing changed;
 *  - --json output is valid JSON (checked by a small RFC 8259 parser here)
 *    for names with quotes, backslashes, control characters and bytes that
 *    are not UTF-8; the Prometheus labels of stats are escaped;
 *  - info names the processes holding and waiting on a semaphore and a
 *    limiter by pid;
 *  - watch refreshes --count times every --interval, on a pipe;
 *  - the documented exit codes (3 not found, 4 not granted).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kprim_test.h"

#define OUT_MAX		(256 * 1024)
#define RUN_TIMEOUT_MS	20000

struct run {
	int status;		/* exit code, or 128 + signal */
	char out[OUT_MAX];
	char err[OUT_MAX];
	size_t nout, nerr;
};

static const char *kprimctl(void)
{
	const char *p = getenv("KPRIMCTL");

	return p && *p ? p : "/demo/kprimctl";
}

static pid_t spawn(const char *const *args, int *out_fd, int *err_fd)
{
	const char *argv[32];
	int o[2], e[2], n = 0;
	pid_t pid;

	argv[n++] = kprimctl();
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (pipe2(o, O_CLOEXEC) || pipe2(e, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	*out_fd = o[0];
	*err_fd = e[0];
	return pid;
}

/* Run kprimctl with @args (NULL-terminated) to completion. */
static void run_argv(struct run *r, const char *const *args)
{
	int ofd, efd, status, left = RUN_TIMEOUT_MS;
	struct pollfd p[2];
	pid_t pid;

	memset(r, 0, sizeof(*r));
	pid = spawn(args, &ofd, &efd);
	if (pid < 0) {
		r->status = -1;
		return;
	}
	p[0] = (struct pollfd){ .fd = ofd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = efd, .events = POLLIN };
	while ((p[0].fd >= 0 || p[1].fd >= 0) && left > 0) {
		if (poll(p, 2, 100) < 0)
			break;
		left -= 100;	/* at least: poll may return early */
		for (int i = 0; i < 2; i++) {
			char *buf = i ? r->err : r->out;
			size_t *n = i ? &r->nerr : &r->nout;
			ssize_t got;

			if (p[i].fd < 0 || !p[i].revents)
				continue;
			got = read(p[i].fd, buf + *n, OUT_MAX - 1 - *n);
			if (got <= 0) {
				close(p[i].fd);
				p[i].fd = -1;
			} else {
				*n += got;
			}
		}
	}
	if (left <= 0)
		kill(pid, SIGKILL);
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	waitpid(pid, &status, 0);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) :
		    128 + WTERMSIG(status);
	r->out[r->nout] = '\0';
	r->err[r->nerr] = '\0';
}

#define RUN(r, ...) run_argv((r), (const char *const[]){ __VA_ARGS__, NULL })

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* ---- a small RFC 8259 parser ------------------------------------------ */

struct json {
	const char *p;
	bool ok;
	/* Lookup: the first member named @key whose value is a string or a
	 * number; its decoded value lands in @val. With @nth > 0, the nth. */
	const char *key;
	int nth, seen;
	char val[1024];
	bool found;
};

static void j_ws(struct json *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static void j_value(struct json *j, int depth);

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string; its UTF-8 decoding goes to @out (may be NULL). */
static void j_string(struct json *j, char *out, size_t cap)
{
	size_t n = 0;

	if (*j->p != '"') {
		j->ok = false;
		return;
	}
	j->p++;
	while (j->ok && *j->p != '"') {
		unsigned int c = (unsigned char)*j->p;
		unsigned int cp;

		if (!c || c < 0x20) {
			j->ok = false;	/* unescaped control character */
			return;
		}
		if (c != '\\') {
			if (out && n + 1 < cap)
				out[n++] = c;
			j->p++;
			continue;
		}
		j->p++;
		switch (*j->p) {
		case '"': case '\\': case '/':
			cp = *j->p;
			break;
		case 'b': cp = '\b'; break;
		case 'f': cp = '\f'; break;
		case 'n': cp = '\n'; break;
		case 'r': cp = '\r'; break;
		case 't': cp = '\t'; break;
		case 'u':
			cp = 0;
			for (int i = 1; i <= 4; i++) {
				int h = hexval(j->p[i]);

				if (h < 0) {
					j->ok = false;
					return;
				}
				cp = cp << 4 | h;
			}
			j->p += 4;
			break;
		default:
			j->ok = false;
			return;
		}
		j->p++;
		if (!out)
			continue;
		/* UTF-8 encode (no surrogate pairs needed by these tests). */
		if (cp < 0x80 && n + 1 < cap) {
			out[n++] = cp;
		} else if (cp < 0x800 && n + 2 < cap) {
			out[n++] = 0xc0 | cp >> 6;
			out[n++] = 0x80 | (cp & 0x3f);
		} else if (n + 3 < cap) {
			out[n++] = 0xe0 | cp >> 12;
			out[n++] = 0x80 | ((cp >> 6) & 0x3f);
			out[n++] = 0x80 | (cp & 0x3f);
		}
	}
	if (!j->ok)
		return;
	j->p++;
	if (out)
		out[n] = '\0';
}

static void j_number(struct json *j, char *out, size_t cap)
{
	const char *s = j->p;

	if (*j->p == '-')
		j->p++;
	if (*j->p == '0') {
		j->p++;
	} else if (*j->p >= '1' && *j->p <= '9') {
		while (*j->p >= '0' && *j->p <= '9')
			j->p++;
	} else {
		j->ok = false;
		return;
	}
	if (*j->p == '.') {
		j->p++;
		if (*j->p < '0' || *j->p > '9')
			j->ok = false;
		while (*j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (*j->p == 'e' || *j->p == 'E') {
		j->p++;
		if (*j->p == '+' || *j->p == '-')
			j->p++;
		if (*j->p < '0' || *j->p > '9')
			j->ok = false;
		while (*j->p >= '0' && *j->p <= '9')
			j->p++;
	}
	if (out)
		snprintf(out, cap, "%.*s", (int)(j->p - s), s);
}

static void j_value(struct json *j, int depth)
{
	if (depth > 64) {
		j->ok = false;
		return;
	}
	j_ws(j);
	switch (*j->p) {
	case '{':
		j->p++;
		j_ws(j);
		if (*j->p == '}') {
			j->p++;
			return;
		}
		for (;;) {
			char key[256];
			bool want;

			j_ws(j);
			j_string(j, key, sizeof(key));
			if (!j->ok)
				return;
			j_ws(j);
			if (*j->p != ':') {
				j->ok = false;
				return;
			}
			j->p++;
			j_ws(j);
			want = j->key && !j->found && !strcmp(key, j->key) &&
			       j->seen++ == j->nth;
			if (want && *j->p == '"') {
				j_string(j, j->val, sizeof(j->val));
				j->found = true;
			} else if (want && (*j->p == '-' ||
					    (*j->p >= '0' && *j->p <= '9'))) {
				j_number(j, j->val, sizeof(j->val));
				j->found = true;
			} else {
				j_value(j, depth + 1);
			}
			if (!j->ok)
				return;
			j_ws(j);
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p == '}') {
				j->p++;
				return;
			}
			j->ok = false;
			return;
		}
	case '[':
		j->p++;
		j_ws(j);
		if (*j->p == ']') {
			j->p++;
			return;
		}
		for (;;) {
			j_value(j, depth + 1);
			if (!j->ok)
				return;
			j_ws(j);
			if (*j->p == ',') {
				j->p++;
				continue;
			}
			if (*j->p == ']') {
				j->p++;
				return;
			}
			j->ok = false;
			return;
		}
	case '"':
		j_string(j, NULL, 0);
		return;
	case 't':
		if (strncmp(j->p, "true", 4))
			j->ok = false;
		j->p += 4;
		return;
	case 'f':
		if (strncmp(j->p, "false", 5))
			j->ok = false;
		j->p += 5;
		return;
	case 'n':
		if (strncmp(j->p, "null", 4))
			j->ok = false;
		j->p += 4;
		return;
	default:
		j_number(j, NULL, 0);
	}
}

/* Is @s exactly one JSON text? With @key: fill @val with its nth value. */
static bool json_parse(const char *s, const char *key, int nth, char *val,
		       size_t cap)
{
	struct json j = { .p = s, .ok = true, .key = key, .nth = nth };

	j_value(&j, 0);
	j_ws(&j);
	if (j.ok && *j.p)
		j.ok = false;
	if (val)
		snprintf(val, cap, "%s", j.found ? j.val : "");
	return j.ok && (!key || j.found);
}

static bool json_valid(const char *s)
{
	return json_parse(s, NULL, 0, NULL, 0);
}

/* The value of the nth @key in @doc (as text), or "" when absent. */
static const char *json_get(const char *doc, const char *key, int nth)
{
	static char val[1024];

	json_parse(doc, key, nth, val, sizeof(val));
	return val;
}

/* Remove every object named @name, whatever its kind (one exec when none). */
static void cleanup(struct run *r, const char *name)
{
	char kinds[3][1024];
	int n = 0;

	RUN(r, "info", name, "--json");
	if (r->status)
		return;
	for (; n < 3 && *json_get(r->out, "kind", n); n++)
		snprintf(kinds[n], sizeof(kinds[n]), "%s", json_get(r->out, "kind", n));
	for (int i = 0; i < n; i++)
		RUN(r, "rm", kinds[i], name);
}

/* ---- the fixture -------------------------------------------------------- */

FIXTURE(ctl) {
	char name[64];		/* a fresh name for this test */
	struct run r;
	pid_t kids[4];
	int nkids;
};

FIXTURE_SETUP(ctl)
{
	struct stat st;

	if (stat(kprimctl(), &st) || !(st.st_mode & S_IXUSR))
		ASSERT_TRUE(false) TH_LOG("no kprimctl at %s (set KPRIMCTL)",
					  kprimctl());
	snprintf(self->name, sizeof(self->name), "kctl-%d-%s", getpid(),
		 _metadata->name);
	self->nkids = 0;
}

FIXTURE_TEARDOWN(ctl)
{
	for (int i = 0; i < self->nkids; i++) {
		kill(self->kids[i], SIGKILL);
		waitpid(self->kids[i], NULL, 0);
	}
	cleanup(&self->r, self->name);
}

/* Start kprimctl in the background; returns the fd of its stdout. */
static int start_bg(struct __test_metadata *_metadata, FIXTURE_DATA(ctl) *self,
		    const char *const *args)
{
	int ofd, efd;
	pid_t pid = spawn(args, &ofd, &efd);

	ASSERT_GT(pid, 0);
	close(efd);
	self->kids[self->nkids++] = pid;
	return ofd;
}

/* Read a line from @fd (the background kprimctl said what it did). */
static void read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap && read(fd, buf + n, 1) == 1 && buf[n] != '\n')
		n++;
	buf[n] = '\0';
}

/* The value of "field":N in the first object of a list --json. */
static uint64_t json_u64(const char *doc, const char *key)
{
	return strtoull(json_get(doc, key, 0), NULL, 10);
}

/* ---- units ---------------------------------------------------------- */

TEST_F(ctl, rate_units_reach_the_kernel)
{
	static const struct { const char *rate; uint64_t r, p; } c[] = {
		{ "500/s", 1, 2000000 },		/* 500 per 1e9 ns */
		{ "30/min", 1, 2000000000 },
		{ "1.5k/h", 1, 2400000000ull },		/* 25/min */
		{ "5/250ms", 1, 50000000 },
		{ "2.5/s", 1, 400000000 },
		{ "100/10s", 1, 100000000 },
		{ "3/2s", 3, 2000000000 },
		{ "1/1h30m", 1, 5400000000000ull },
	};

	for (unsigned int i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		RUN(&self->r, "create", "limiter", self->name, c[i].rate, "5");
		ASSERT_EQ(0, self->r.status) TH_LOG("%s: %s", c[i].rate, self->r.err);
		RUN(&self->r, "info", "limiter", self->name, "--json");
		ASSERT_EQ(0, self->r.status);
		EXPECT_EQ(c[i].r, json_u64(self->r.out, "rate")) TH_LOG("%s", c[i].rate);
		EXPECT_EQ(c[i].p, json_u64(self->r.out, "period_ns")) TH_LOG("%s", c[i].rate);
		EXPECT_EQ(5, json_u64(self->r.out, "burst"));
		RUN(&self->r, "rm", "limiter", self->name);
		ASSERT_EQ(0, self->r.status);
	}
	/* set-rate takes the same forms; list prints a rate for people. */
	RUN(&self->r, "create", "limiter", self->name, "10/s", "3");
	ASSERT_EQ(0, self->r.status);
	RUN(&self->r, "set-rate", self->name, "30/min");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "list", "limiter");
	EXPECT_NE(NULL, strstr(self->r.out, "rate=30/min burst=3")) TH_LOG("%s", self->r.out);
}

TEST_F(ctl, plain_numbers_keep_their_old_meaning)
{
	/* RATE PERIOD_NS BURST MODE, as scripts wrote it before units. */
	RUN(&self->r, "create", "limiter", self->name, "5", "1000000000", "2", "0640");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_STREQ("", self->r.err);
	RUN(&self->r, "info", "limiter", self->name, "--json");
	EXPECT_EQ(5, json_u64(self->r.out, "rate"));
	EXPECT_EQ(1000000000, json_u64(self->r.out, "period_ns"));
	EXPECT_STREQ("0640", json_get(self->r.out, "mode", 0));
	/* PERIOD_NS as a duration, hex as in C. */
	RUN(&self->r, "set-rate", self->name, "0x10", "1s");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "info", "limiter", self->name, "--json");
	EXPECT_EQ(16, json_u64(self->r.out, "rate"));
	EXPECT_EQ(1000000000, json_u64(self->r.out, "period_ns"));
	/* TIMEOUT_MS plain is milliseconds, or a duration. */
	RUN(&self->r, "take", self->name, "1", "250");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "take", self->name, "1", "250ms");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
}

TEST_F(ctl, size_and_duration_units)
{
	RUN(&self->r, "create", "cache", self->name, "64M", "2h");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "info", "cache", self->name, "--json");
	EXPECT_EQ(64ull << 20, json_u64(self->r.out, "max_bytes"));
	EXPECT_EQ(7200000000000ull, json_u64(self->r.out, "default_ttl_ns"));
	RUN(&self->r, "list", "cache");
	EXPECT_NE(NULL, strstr(self->r.out, "/64MiB")) TH_LOG("%s", self->r.out);
	EXPECT_NE(NULL, strstr(self->r.out, "ttl=2h")) TH_LOG("%s", self->r.out);
	RUN(&self->r, "rm", "cache", self->name);

	/* Plain: bytes and nanoseconds; decimal suffixes; KiB. */
	RUN(&self->r, "create", "cache", self->name, "1048576", "1500000000");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "info", "cache", self->name, "--json");
	EXPECT_EQ(1048576, json_u64(self->r.out, "max_bytes"));
	EXPECT_EQ(1500000000, json_u64(self->r.out, "default_ttl_ns"));
	RUN(&self->r, "rm", "cache", self->name);
	RUN(&self->r, "create", "cache", self->name, "1.5KiB", "1.5s");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "info", "cache", self->name, "--json");
	EXPECT_EQ(1536, json_u64(self->r.out, "max_bytes"));
	EXPECT_EQ(1500000000, json_u64(self->r.out, "default_ttl_ns"));
	RUN(&self->r, "rm", "cache", self->name);
	RUN(&self->r, "create", "cache", self->name, "2MB");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "info", "cache", self->name, "--json");
	EXPECT_EQ(2000000, json_u64(self->r.out, "max_bytes"));

	/* A TTL in units: the entry is there, then gone. */
	RUN(&self->r, "put", self->name, "k", "v", "1.5s");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "get", self->name, "k");
	EXPECT_EQ(0, self->r.status);
	EXPECT_STREQ("v\n", self->r.out);
	usleep(2000 * 1000);
	RUN(&self->r, "get", self->name, "k");
	EXPECT_EQ(3, self->r.status);

	/* Counts: k = 1000. */
	RUN(&self->r, "put", self->name, "n", "0");
	RUN(&self->r, "incr", self->name, "n", "1.5k");
	EXPECT_EQ(0, self->r.status);
	EXPECT_STREQ("1500\n", self->r.out);
}

/* ---- bad input: one case each ----------------------------------------- */

struct bad_case {
	const char *argv[8];	/* %N is replaced by the test's name */
	const char *names;	/* what the message must quote */
	const char *setup;	/* "cache", "sem", "limiter": create first */
	const char *verify[4];	/* then this must exit 3 (nothing stored) */
};

FIXTURE(bad) {
	char name[64];
	struct run r;
};

FIXTURE_VARIANT(bad) {
	struct bad_case c;
};

#define BAD(id, ...) \
	FIXTURE_VARIANT_ADD(bad, id) { .c = { __VA_ARGS__ } }

/* The historical bug: a bad TTL said "not a number" and stored anyway. */
BAD(put_ttl_not_a_number, { "put", "%N", "k", "v", "5x" }, "5x", "cache",
    { "get", "%N", "k" });
/* Old kprimctl stored with the valid prefix as nanoseconds: here 50 min. */
BAD(put_ttl_junk_after_digits, { "put", "%N", "k", "v", "3000000000000x" },
    "3000000000000x", "cache", { "get", "%N", "k" });
BAD(put_ttl_fraction_without_unit, { "put", "%N", "k", "v", "1.5" }, "1.5",
    "cache", { "get", "%N", "k" });
BAD(put_ttl_negative, { "put", "%N", "k", "v", "-1" }, "-1", "cache",
    { "get", "%N", "k" });
BAD(put_ttl_unknown_unit, { "put", "%N", "k", "v", "3fortnights" },
    "fortnight", "cache", { "get", "%N", "k" });
BAD(put_ttl_sub_nanosecond, { "put", "%N", "k", "v", "0.5ns" }, "0.5ns",
    "cache", { "get", "%N", "k" });
BAD(put_ttl_overflow, { "put", "%N", "k", "v", "99999999999999999h" },
    "99999999999999999h", "cache", { "get", "%N", "k" });
BAD(rate_unknown_period, { "create", "limiter", "%N", "5/fortnight", "3" },
    "fortnight", NULL, { "info", "limiter", "%N" });
BAD(rate_zero_period, { "create", "limiter", "%N", "5/0s", "3" }, "5/0s",
    NULL, { "info", "limiter", "%N" });
BAD(rate_no_count, { "create", "limiter", "%N", "/s", "3" }, "/s", NULL,
    { "info", "limiter", "%N" });
BAD(rate_bad_suffix, { "create", "limiter", "%N", "5x/s", "3" }, "5x/s",
    NULL, { "info", "limiter", "%N" });
BAD(rate_missing_burst, { "create", "limiter", "%N", "5/s" }, "BURST", NULL,
    { "info", "limiter", "%N" });
BAD(period_not_a_duration, { "create", "limiter", "%N", "5", "soon", "3" },
    "soon", NULL, { "info", "limiter", "%N" });
BAD(count_fraction, { "create", "sem", "%N", "1.5" }, "1.5", NULL,
    { "info", "sem", "%N" });
BAD(count_too_large, { "create", "sem", "%N", "99999999999999999999" },
    "99999999999999999999", NULL, { "info", "sem", "%N" });
BAD(count_unit, { "create", "sem", "%N", "4ms" }, "4ms", NULL,
    { "info", "sem", "%N" });
BAD(size_unknown_unit, { "create", "cache", "%N", "64Q" }, "64Q", NULL,
    { "info", "cache", "%N" });
BAD(size_not_whole, { "create", "cache", "%N", "0.1K" }, "0.1K", NULL,
    { "info", "cache", "%N" });
BAD(size_not_a_number, { "create", "cache", "%N", "lots" }, "lots", NULL,
    { "info", "cache", "%N" });
BAD(mode_not_octal, { "create", "sem", "%N", "2", "0999" }, "0999", NULL,
    { "info", "sem", "%N" });
BAD(extra_argument, { "create", "sem", "%N", "2", "0600", "more" }, "more",
    NULL, { "info", "sem", "%N" });
BAD(unknown_kind, { "create", "queue", "%N", "2" }, "queue", NULL,
    { "info", "%N" });
BAD(unknown_command, { "frobnicate", "%N" }, "frobnicate", NULL, { NULL });
BAD(missing_argument, { "take", "%N" }, "usage", "limiter", { NULL });
BAD(take_bad_timeout, { "take", "%N", "1", "10 s" }, "10 s", "limiter",
    { NULL });
BAD(incr_bad_delta, { "incr", "%N", "k", "many" }, "many", "cache",
    { NULL });
BAD(watch_bad_interval, { "watch", "--interval", "fast" }, "fast", NULL,
    { NULL });
BAD(watch_zero_interval, { "watch", "--interval", "0s" }, "0s", NULL,
    { NULL });
BAD(unknown_option, { "list", "--colour" }, "--colour", NULL, { NULL });
BAD(json_and_names, { "list", "--json", "--names" }, "--names", NULL,
    { NULL });

FIXTURE_SETUP(bad)
{
	snprintf(self->name, sizeof(self->name), "kctl-bad-%d", getpid());
}

FIXTURE_TEARDOWN(bad)
{
	cleanup(&self->r, self->name);
}

static void subst(const char *const *in, const char **out, const char *name)
{
	int i;

	for (i = 0; in[i] && i < 7; i++)
		out[i] = strcmp(in[i], "%N") ? in[i] : name;
	out[i] = NULL;
}

TEST_F(bad, one_line_exit_2_nothing_changed)
{
	const struct bad_case *c = &variant->c;
	const char *args[8];

	if (c->setup) {
		/* Plain numbers: the set-up works with any kprimctl. */
		if (!strcmp(c->setup, "limiter"))
			RUN(&self->r, "create", "limiter", self->name, "1",
			    "3600000000000", "1");
		else if (!strcmp(c->setup, "sem"))
			RUN(&self->r, "create", "sem", self->name, "1");
		else
			RUN(&self->r, "create", "cache", self->name, "1048576");
		ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	}
	subst(c->argv, args, self->name);
	run_argv(&self->r, args);
	EXPECT_EQ(2, self->r.status) TH_LOG("stdout: %s", self->r.out);
	/* One line: what was wrong (quoting it) and what was expected. */
	EXPECT_EQ(1, count_lines(self->r.err)) TH_LOG("stderr: %s", self->r.err);
	EXPECT_EQ('\n', self->r.err[self->r.nerr ? self->r.nerr - 1 : 0]);
	EXPECT_NE(NULL, strstr(self->r.err, c->names)) TH_LOG("stderr: %s", self->r.err);
	EXPECT_TRUE(strstr(self->r.err, "expected") || strstr(self->r.err, "usage:"))
		TH_LOG("stderr: %s", self->r.err);
	EXPECT_STREQ("", self->r.out);
	if (c->verify[0]) {
		subst(c->verify, args, self->name);
		run_argv(&self->r, args);
		EXPECT_EQ(3, self->r.status)
			TH_LOG("bad input changed something: %s %s exit %d: %s",
			       args[0], args[1], self->r.status, self->r.out);
	}
}

/* ---- JSON and Prometheus escaping -------------------------------------- */

/* Names may hold any byte but NUL and '/'. */
static const char *const odd_names[] = {
	"kctl-q\"uo\"te",
	"kctl-back\\slash\\",
	"kctl-ctl\n\t\r\x01\x1f\x7f",
	"kctl-\xc3\xa9t\xc3\xa9-\xe2\x82\xac",	/* été-€: valid UTF-8 */
	"kctl-raw\xff\xfe",			/* not UTF-8 */
};

TEST_F(ctl, json_is_valid_for_any_name)
{
	char got[1024];

	for (unsigned int i = 0; i < 5; i++) {
		RUN(&self->r, "create", "sem", odd_names[i], "3");
		ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	}
	RUN(&self->r, "create", "limiter", self->name, "5/s", "2");
	RUN(&self->r, "create", "cache", self->name, "1M");

	RUN(&self->r, "list", "--json");
	EXPECT_EQ(0, self->r.status);
	EXPECT_TRUE(json_valid(self->r.out)) TH_LOG("invalid JSON:\n%s", self->r.out);
	RUN(&self->r, "stats", "--json");
	EXPECT_TRUE(json_valid(self->r.out)) TH_LOG("invalid JSON:\n%s", self->r.out);
	for (unsigned int i = 0; i < 5; i++) {
		RUN(&self->r, "info", "sem", odd_names[i], "--json");
		ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
		ASSERT_TRUE(json_valid(self->r.out)) TH_LOG("invalid JSON:\n%s", self->r.out);
		ASSERT_TRUE(json_parse(self->r.out, "name", 0, got, sizeof(got)));
		if (i < 4) {
			/* Decodes back to the very bytes. */
			EXPECT_STREQ(odd_names[i], got);
		} else {
			EXPECT_STREQ("6b63746c2d726177fffe",
				     json_get(self->r.out, "name_hex", 0));
		}
		EXPECT_EQ(3, json_u64(self->r.out, "permits"));
	}
	RUN(&self->r, "info", "limiter", self->name, "--json");
	EXPECT_TRUE(json_valid(self->r.out)) TH_LOG("%s", self->r.out);
	RUN(&self->r, "info", "cache", self->name, "--json");
	EXPECT_TRUE(json_valid(self->r.out)) TH_LOG("%s", self->r.out);
	RUN(&self->r, "list", "sem", "--json");
	EXPECT_TRUE(json_valid(self->r.out)) TH_LOG("%s", self->r.out);
	for (unsigned int i = 0; i < 5; i++)
		RUN(&self->r, "rm", "sem", odd_names[i]);
}

/* Prometheus text format: label values escape \, " and newline. */
TEST_F(ctl, stats_escapes_label_values)
{
	char line[512];

	RUN(&self->r, "create", "sem", odd_names[0], "3");
	RUN(&self->r, "create", "sem", odd_names[1], "3");
	RUN(&self->r, "create", "sem", odd_names[2], "3");
	RUN(&self->r, "stats");
	ASSERT_EQ(0, self->r.status);
	snprintf(line, sizeof(line), "kprim_sem_permits{name=\"%s\",",
		 "kctl-q\\\"uo\\\"te");
	EXPECT_NE(NULL, strstr(self->r.out, line)) TH_LOG("%s", self->r.out);
	snprintf(line, sizeof(line), "kprim_sem_permits{name=\"%s\",",
		 "kctl-back\\\\slash\\\\");
	EXPECT_NE(NULL, strstr(self->r.out, line)) TH_LOG("%s", self->r.out);
	snprintf(line, sizeof(line), "kprim_sem_permits{name=\"%s",
		 "kctl-ctl\\n\t");
	EXPECT_NE(NULL, strstr(self->r.out, line)) TH_LOG("%s", self->r.out);
	/* Every line is a comment or NAME{...} VALUE: no raw newline split one. */
	for (char *l = self->r.out, *nl; *l; l = nl + 1) {
		nl = strchr(l, '\n');
		ASSERT_NE(NULL, nl);
		*nl = '\0';
		EXPECT_TRUE(!strncmp(l, "# TYPE kprim_", 13) ||
			    (!strncmp(l, "kprim_", 6) && strstr(l, "\"} ")))
			TH_LOG("bad exposition line: '%s'", l);
	}
	for (unsigned int i = 0; i < 3; i++)
		RUN(&self->r, "rm", "sem", odd_names[i]);
}

/* ---- info: holders and waiters by pid ------------------------------------ */

/* Poll info --json until @key reaches @want (the waiter is queued). */
static bool wait_for(struct run *r, const char *kind, const char *name,
		     const char *key, uint64_t want)
{
	for (int i = 0; i < 200; i++) {
		RUN(r, "info", kind, name, "--json");
		if (strtoull(json_get(r->out, key, 0), NULL, 10) == want)
			return true;
		usleep(50 * 1000);
	}
	return false;
}

TEST_F(ctl, info_names_holders_and_waiters)
{
	char line[256], want[128];
	int holder_fd, pid_h, pid_w;

	RUN(&self->r, "create", "sem", self->name, "2");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	holder_fd = start_bg(_metadata, self, (const char *const[]){
		"acquire", self->name, "1", "60s", NULL });
	read_line(holder_fd, line, sizeof(line));
	pid_h = self->kids[0];
	snprintf(want, sizeof(want), "pid %d holds 1 of %s", pid_h, self->name);
	ASSERT_STREQ(want, line);
	/* Wants 2 of which 1 is held: waits. */
	start_bg(_metadata, self, (const char *const[]){
		"acquire", self->name, "2", "60s", NULL });
	pid_w = self->kids[1];
	ASSERT_TRUE(wait_for(&self->r, "sem", self->name, "waiters", 1));

	RUN(&self->r, "info", self->name);
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	snprintf(want, sizeof(want), "pid %d (kprimctl) holds 1", pid_h);
	EXPECT_NE(NULL, strstr(self->r.out, want)) TH_LOG("%s", self->r.out);
	snprintf(want, sizeof(want), "pid %d tid %d (kprimctl) in acquire",
		 pid_w, pid_w);
	EXPECT_NE(NULL, strstr(self->r.out, want)) TH_LOG("%s", self->r.out);

	RUN(&self->r, "info", "sem", self->name, "--json");
	ASSERT_TRUE(json_valid(self->r.out)) TH_LOG("%s", self->r.out);
	/* holders[0].pid, then waiting[0].pid, in document order. */
	EXPECT_EQ(pid_h, atoi(json_get(self->r.out, "pid", 0))) TH_LOG("%s", self->r.out);
	EXPECT_EQ(1, atoi(json_get(self->r.out, "held", 1)));	/* holders[0] */
	EXPECT_EQ(pid_w, atoi(json_get(self->r.out, "pid", 1))) TH_LOG("%s", self->r.out);
	EXPECT_STREQ("acquire", json_get(self->r.out, "op", 0));
	EXPECT_STREQ("kprimctl", json_get(self->r.out, "comm", 0));

	/* The holder dies: the waiter becomes the holder of 2. */
	kill(pid_h, SIGKILL);
	waitpid(pid_h, NULL, 0);
	self->kids[0] = self->kids[1];
	self->nkids = 1;
	ASSERT_TRUE(wait_for(&self->r, "sem", self->name, "held", 2));
	EXPECT_EQ(pid_w, atoi(json_get(self->r.out, "pid", 0))) TH_LOG("%s", self->r.out);
	EXPECT_EQ(2, atoi(json_get(self->r.out, "held", 1)));	/* holders[0] */
}

TEST_F(ctl, info_names_limiter_waiters)
{
	char want[128];
	int pid_w;

	RUN(&self->r, "create", "limiter", self->name, "1/h", "1");
	ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	RUN(&self->r, "take", self->name, "1");
	ASSERT_EQ(0, self->r.status);
	start_bg(_metadata, self, (const char *const[]){
		"take", self->name, "1", "60s", NULL });
	pid_w = self->kids[0];
	ASSERT_TRUE(wait_for(&self->r, "limiter", self->name, "waiters", 1));
	EXPECT_EQ(pid_w, atoi(json_get(self->r.out, "pid", 0))) TH_LOG("%s", self->r.out);
	EXPECT_STREQ("take", json_get(self->r.out, "op", 0));
	RUN(&self->r, "info", self->name);
	snprintf(want, sizeof(want), "pid %d tid %d (kprimctl) in take", pid_w,
		 pid_w);
	EXPECT_NE(NULL, strstr(self->r.out, want)) TH_LOG("%s", self->r.out);
	EXPECT_NE(NULL, strstr(self->r.out, "rate 1/h")) TH_LOG("%s", self->r.out);
}

TEST_F(ctl, info_shows_cache_stats)
{
	RUN(&self->r, "create", "cache", self->name, "1M");
	RUN(&self->r, "put", self->name, "a", "12345");
	RUN(&self->r, "get", self->name, "a");
	RUN(&self->r, "get", self->name, "a");
	RUN(&self->r, "get", self->name, "b");
	RUN(&self->r, "info", "cache", self->name, "--json");
	ASSERT_TRUE(json_valid(self->r.out)) TH_LOG("%s", self->r.out);
	EXPECT_EQ(2, json_u64(self->r.out, "hits"));
	EXPECT_EQ(1, json_u64(self->r.out, "misses"));
	EXPECT_EQ(1, json_u64(self->r.out, "entries"));
	EXPECT_NE(0, json_u64(self->r.out, "memory"));
	RUN(&self->r, "info", self->name);
	EXPECT_NE(NULL, strstr(self->r.out, "hits 2  misses 1 (66.7% hits)"))
		TH_LOG("%s", self->r.out);
}

/* ---- watch ------------------------------------------------------------- */

TEST_F(ctl, watch_refreshes_count_times)
{
	uint64_t t0;
	char *p;
	int frames = 0;

	RUN(&self->r, "create", "limiter", self->name, "100/s", "10");
	t0 = kt_now_ns();
	RUN(&self->r, "watch", "--count", "2", "--interval", "100ms");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_GE(kt_now_ns() - t0, 100 * 1000000ull);
	for (p = self->r.out; (p = strstr(p, "kprimctl watch")); p++)
		frames++;
	EXPECT_EQ(2, frames) TH_LOG("%s", self->r.out);
	/* Not a terminal: no escape sequences. */
	EXPECT_EQ(NULL, strchr(self->r.out, '\033'));
	EXPECT_NE(NULL, strstr(self->r.out, self->name));

	/* --json: one document per line, the second with rates. */
	RUN(&self->r, "watch", "limiter", "--count=2", "--interval=100ms", "--json");
	EXPECT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
	EXPECT_EQ(2, count_lines(self->r.out)) TH_LOG("%s", self->r.out);
	p = strchr(self->r.out, '\n');
	ASSERT_NE(NULL, p);
	*p = '\0';
	EXPECT_TRUE(json_valid(self->r.out)) TH_LOG("%s", self->r.out);
	EXPECT_TRUE(json_valid(p + 1)) TH_LOG("%s", p + 1);
	EXPECT_NE(NULL, strstr(p + 1, "\"per_s\":{\"admitted\":")) TH_LOG("%s", p + 1);
}

/* ---- exit codes, listings --------------------------------------------- */

TEST_F(ctl, exit_codes)
{
	RUN(&self->r, "info", self->name);
	EXPECT_EQ(3, self->r.status);
	EXPECT_EQ(1, count_lines(self->r.err));
	RUN(&self->r, "rm", "sem", self->name);
	EXPECT_EQ(3, self->r.status);
	RUN(&self->r, "take", self->name, "1");
	EXPECT_EQ(3, self->r.status);

	RUN(&self->r, "create", "limiter", self->name, "1/h", "1");
	ASSERT_EQ(0, self->r.status);
	RUN(&self->r, "create", "limiter", self->name, "1/h", "1");
	EXPECT_EQ(1, self->r.status);	/* exists */
	RUN(&self->r, "take", self->name, "1");
	EXPECT_EQ(0, self->r.status);
	RUN(&self->r, "take", self->name, "1");
	EXPECT_EQ(4, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.out, "retry after ")) TH_LOG("%s", self->r.out);
	RUN(&self->r, "take", self->name, "1", "50ms");
	EXPECT_EQ(4, self->r.status);
	RUN(&self->r, "take", self->name, "2");
	EXPECT_EQ(1, self->r.status);	/* above the burst: EINVAL */
	EXPECT_NE(NULL, strstr(self->r.err, "expected N from 1 to the limiter's burst"))
		TH_LOG("%s", self->r.err);
	RUN(&self->r, "create", "sem", self->name, "0");
	EXPECT_EQ(1, self->r.status);	/* the kernel refuses 0 permits */
	EXPECT_EQ(1, count_lines(self->r.err));
	EXPECT_NE(NULL, strstr(self->r.err, "expected PERMITS from 1")) TH_LOG("%s", self->r.err);

	RUN(&self->r, "create", "cache", self->name, "1M");
	RUN(&self->r, "get", self->name, "nope");
	EXPECT_EQ(3, self->r.status);
	EXPECT_STREQ("(not found)\n", self->r.out);

	RUN(&self->r, "--help");
	EXPECT_EQ(0, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.out, "Exit status"));
	EXPECT_NE(NULL, strstr(self->r.out, "watch"));
}

TEST_F(ctl, list_filters_and_names)
{
	RUN(&self->r, "create", "sem", self->name, "1");
	RUN(&self->r, "create", "cache", self->name, "1M");
	RUN(&self->r, "list", "sem", "--names");
	EXPECT_EQ(0, self->r.status);
	EXPECT_NE(NULL, strstr(self->r.out, self->name));
	RUN(&self->r, "list", "limiter", "--names");
	EXPECT_EQ(NULL, strstr(self->r.out, self->name));
	RUN(&self->r, "list", "cache");
	EXPECT_NE(NULL, strstr(self->r.out, self->name));
	EXPECT_EQ(0, strncmp(self->r.out, "ID ", 3));
	/* The same name, two kinds: info shows both. */
	RUN(&self->r, "info", self->name, "--json");
	EXPECT_TRUE(json_valid(self->r.out));
	EXPECT_STREQ("sem", json_get(self->r.out, "kind", 0));
	EXPECT_STREQ("cache", json_get(self->r.out, "kind", 1));
	/* Values larger than the old 4 KiB buffer come back whole. */
	{
		static char big[6001];

		memset(big, 'x', 6000);
		RUN(&self->r, "put", self->name, "big", big);
		ASSERT_EQ(0, self->r.status) TH_LOG("%s", self->r.err);
		RUN(&self->r, "get", self->name, "big");
		EXPECT_EQ(0, self->r.status);
		EXPECT_EQ(6001, self->r.nout);
	}
}

TEST_HARNESS_MAIN
