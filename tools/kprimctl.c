// SPDX-License-Identifier: GPL-2.0
/*
 * kprimctl - inspect and manage kprim objects (ipcs/ipcrm for kprim).
 *
 * The commands are the table commands[] below; kprimctl --help prints
 * them, kprimctl(8) documents them (make man-check finds every entry of
 * the table in its synopsis).
 *
 * Numbers: a plain integer reads as in C (0x hex, leading 0 octal) in the
 * argument's own unit (nanoseconds for *_NS, milliseconds for *_MS,
 * bytes, tokens...), as before units existed. A number with a decimal
 * point or a unit is decimal: counts take k, M, G, T (10^3..10^12);
 * sizes K/KiB, M/MiB, G/GiB, T/TiB (2^10..2^40) or kB, MB, GB, TB
 * (10^3..10^12); durations ns, us, ms, s, m or min, h, d, also chained
 * (1h30m); rates COUNT/DURATION (500/s, 30/min, 1.5k/h, 5/250ms).
 * Every value must come out a whole number of its unit.
 *
 * Exit status: 0 success; 1 the operation failed; 2 bad usage; 3 no such
 * object or key; 4 not granted (take found no tokens in time).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <kprim.h>
#include <uapi/kprim.h>

#define EXIT_OK		0
#define EXIT_FAILED	1
#define EXIT_USAGE	2
#define EXIT_NOTFOUND	3
#define EXIT_NOTGRANTED	4

static const char *prog = "kprimctl";

struct cmd;
static const struct cmd *cur;	/* the command being run, for messages */

/* Output options of the listing commands. */
static struct {
	bool json, names;
	uint64_t interval_ns, count;
} opt = { .interval_ns = 1000000000ull };

/* ---- messages and exit codes ------------------------------------------- */

static const char *cmd_name(void);
static const char *cmd_usage(void);

/* One line on stderr: what was wrong and what was expected; exit 2. */
__attribute__((format(printf, 1, 2)))
static int bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	if (cur)
		fprintf(stderr, "%s: ", cmd_name());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

static int exit_code_of(int err)
{
	switch (err) {
	case -ENOENT:
		return EXIT_NOTFOUND;
	case -EAGAIN:
	case -ETIMEDOUT:
		return EXIT_NOTGRANTED;
	default:
		return EXIT_FAILED;
	}
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(-err));
	return exit_code_of(err);
}

/* As fail(), and what the kernel accepts when it said -EINVAL. */
static int fail_hint(const char *what, int err, const char *hint)
{
	if (err != -EINVAL && err != -EOVERFLOW)
		return fail(what, err);
	fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, strerror(-err), hint);
	return EXIT_FAILED;
}

#define HINT_LIMITER	"expected RATE, PERIOD and BURST of at least 1, BURST * PERIOD_NS below 2^64"
#define HINT_SEM	"expected PERMITS from 1 to 4294967295"
#define HINT_TAKE	"expected N from 1 to the limiter's burst"
#define HINT_ACQUIRE	"expected N from 1 to the semaphore's permits"

/* ---- numbers with units ------------------------------------------------ */

typedef unsigned __int128 u128;

struct unit {
	const char *name;
	uint64_t mult;
};

static const struct unit count_units[] = {
	{ "", 1 }, { "k", 1000 }, { "K", 1000 }, { "M", 1000000 },
	{ "G", 1000000000ull }, { "T", 1000000000000ull }, { NULL, 0 }
};

static const struct unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "K", 1ull << 10 }, { "k", 1ull << 10 }, { "KiB", 1ull << 10 },
	{ "M", 1ull << 20 }, { "MiB", 1ull << 20 },
	{ "G", 1ull << 30 }, { "GiB", 1ull << 30 },
	{ "T", 1ull << 40 }, { "TiB", 1ull << 40 },
	{ "kB", 1000 }, { "KB", 1000 }, { "MB", 1000000 },
	{ "GB", 1000000000ull }, { "TB", 1000000000000ull }, { NULL, 0 }
};

static const struct unit time_units[] = {
	{ "ns", 1 }, { "us", 1000 }, { "\xc2\xb5s", 1000 },
	{ "ms", 1000000 }, { "s", 1000000000ull },
	{ "m", 60000000000ull }, { "min", 60000000000ull },
	{ "h", 3600000000000ull }, { "d", 86400000000000ull }, { NULL, 0 }
};

/* What each kind of value looks like, for the messages. */
#define EXPECT_COUNT	"a count like 5, 10k or 1.5M"
#define EXPECT_SIZE	"a size like 4096, 64K, 64M or 1GiB"
#define EXPECT_DUR(u)	"a duration like 250ms, 1.5s, 2h or a number of " u
#define EXPECT_RATE	"a rate like 500/s, 30/min or 1.5k/h"
#define EXPECT_MODE	"octal permission bits like 0600 or 640"

/* A C integer, as the tools always read them (0x hex, 0 octal). */
static bool plain_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && !*end;
}

/*
 * A decimal number with an optional fraction at *s: mantissa and the
 * number of digits after the point. Moves *s past it.
 */
static bool decimal(const char **s, u128 *mant, unsigned int *frac)
{
	const char *p = *s;
	bool digits = false, point = false;

	*mant = 0;
	*frac = 0;
	for (;; p++) {
		if (isdigit((unsigned char)*p)) {
			if (*mant > (((u128)1 << 100) / 10))
				return false;
			*mant = *mant * 10 + (*p - '0');
			*frac += point;
			digits = true;
		} else if (*p == '.' && !point) {
			point = true;
		} else {
			break;
		}
	}
	if (!digits || *frac > 18)
		return false;
	*s = p;
	return true;
}

static uint64_t pow10u(unsigned int e)
{
	uint64_t v = 1;

	while (e--)
		v *= 10;
	return v;
}

static const struct unit *find_unit(const struct unit *u, const char *s,
				    size_t len)
{
	for (; u->name; u++)
		if (strlen(u->name) == len && !strncmp(u->name, s, len))
			return u;
	return NULL;
}

/*
 * NUMBER[UNIT] of one of @units, in its base unit, a whole number.
 * @what, @expect: for the message. Return: 0, or the exit code after the
 * message.
 */
static int parse_unit(const char *arg, const char *what, const struct unit *units,
		      const char *expect, uint64_t *out)
{
	const struct unit *u;
	const char *s = arg;
	unsigned int frac;
	u128 mant, v;

	if (plain_u64(arg, out))
		return 0;
	if (!*arg)
		return bad_usage("%s is empty (expected %s)", what, expect);
	if (*arg == '-')
		return bad_usage("%s '%s' is negative (expected %s)", what, arg,
				 expect);
	if (!decimal(&s, &mant, &frac))
		return bad_usage("%s '%s' is not a number (expected %s)", what,
				 arg, expect);
	u = find_unit(units, s, strlen(s));
	if (!u)
		return bad_usage("%s '%s': unknown unit '%s' (expected %s)", what,
				 arg, s, expect);
	v = mant * u->mult;
	if (v % pow10u(frac))
		return bad_usage("%s '%s' is not a whole number%s%s (expected %s)",
				 what, arg, units == count_units ? "" : " of ",
				 units == count_units ? "" :
				 units == size_units ? "bytes" : "nanoseconds",
				 expect);
	v /= pow10u(frac);
	if (v > UINT64_MAX)
		return bad_usage("%s '%s' is too large (expected %s)", what, arg,
				 expect);
	*out = (uint64_t)v;
	return 0;
}

static int parse_count(const char *arg, const char *what, uint64_t *v)
{
	return parse_unit(arg, what, count_units, EXPECT_COUNT, v);
}

static int parse_size(const char *arg, const char *what, uint64_t *v)
{
	return parse_unit(arg, what, size_units, EXPECT_SIZE, v);
}

/*
 * A duration in nanoseconds: a plain number is in units of @plain_ns
 * (named @plain_name in the message); else NUMBER UNIT [NUMBER UNIT...].
 * With @bare_unit, a unit alone ("s") means one of it (rates).
 */
static int parse_duration_ex(const char *arg, const char *what,
			     uint64_t plain_ns, const char *plain_name,
			     const char *rate_expect, uint64_t *out)
{
	bool bare_unit = rate_expect;
	char expect[96];
	const char *s = arg;
	u128 total = 0;
	uint64_t v;

	snprintf(expect, sizeof(expect), EXPECT_DUR("%s"), plain_name);
	if (rate_expect)
		snprintf(expect, sizeof(expect), "%s", rate_expect);
	if (plain_u64(arg, &v)) {
		if ((u128)v * plain_ns > UINT64_MAX)
			return bad_usage("%s '%s' is too large (expected %s)",
					 what, arg, expect);
		*out = v * plain_ns;
		return 0;
	}
	if (!*arg)
		return bad_usage("%s is empty (expected %s)", what, expect);
	if (*arg == '-')
		return bad_usage("%s '%s' is negative (expected %s)", what, arg,
				 expect);
	while (*s) {
		const struct unit *u;
		unsigned int frac = 0;
		const char *start;
		u128 mant = 1, part;
		size_t len;

		if (!(bare_unit && s == arg && isalpha((unsigned char)*s)) &&
		    !decimal(&s, &mant, &frac))
			return bad_usage("%s '%s' is not a duration (expected %s)",
					 what, arg, expect);
		start = s;
		while (*s && !isdigit((unsigned char)*s) && *s != '.')
			s++;
		len = s - start;
		if (!len)
			return bad_usage("%s '%s' has a number without a unit (expected %s)",
					 what, arg, expect);
		u = find_unit(time_units, start, len);
		if (!u)
			return bad_usage("%s '%s': unknown unit '%.*s' (expected %s)",
					 what, arg, (int)len, start, expect);
		part = mant * u->mult;
		if (part % pow10u(frac))
			return bad_usage("%s '%s' is not a whole number of nanoseconds (expected %s)",
					 what, arg, expect);
		total += part / pow10u(frac);
		if (total > UINT64_MAX)
			return bad_usage("%s '%s' is too long (expected %s)", what,
					 arg, expect);
	}
	*out = (uint64_t)total;
	return 0;
}

static int parse_duration(const char *arg, const char *what, uint64_t plain_ns,
			  const char *plain_name, uint64_t *out)
{
	return parse_duration_ex(arg, what, plain_ns, plain_name, NULL, out);
}

static u128 gcd128(u128 a, u128 b)
{
	while (b) {
		u128 t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* COUNT/DURATION as the smallest rate tokens per period_ns. */
static int parse_rate(const char *arg, const char *what, uint64_t *rate,
		      uint64_t *period_ns)
{
	const char *slash = strchr(arg, '/');
	const struct unit *u;
	const char *s = arg;
	unsigned int frac;
	u128 mant, num, den, g;
	uint64_t per;
	char *cnt;
	int ret;

	if (!slash)
		return bad_usage("%s '%s' has no '/' (expected %s)", what, arg,
				 EXPECT_RATE);
	cnt = strndup(arg, slash - arg);
	if (!cnt)
		return fail("rate", -ENOMEM);
	s = cnt;
	if (!decimal(&s, &mant, &frac)) {
		ret = bad_usage("%s '%s': '%s' is not a number (expected %s)",
				what, arg, cnt, EXPECT_RATE);
		free(cnt);
		return ret;
	}
	u = find_unit(count_units, s, strlen(s));
	if (!u) {
		ret = bad_usage("%s '%s': unknown count suffix '%s' (expected %s)",
				what, arg, s, EXPECT_RATE);
		free(cnt);
		return ret;
	}
	free(cnt);
	ret = parse_duration_ex(slash + 1, "RATE period", 1000000000ull,
				"seconds", EXPECT_RATE, &per);
	if (ret)
		return ret;
	if (!per)
		return bad_usage("%s '%s' has a zero period (expected %s)", what,
				 arg, EXPECT_RATE);
	num = mant * u->mult;
	den = (u128)per * pow10u(frac);
	g = num ? gcd128(num, den) : 1;
	num /= g;
	den /= g;
	if (num > UINT64_MAX || den > UINT64_MAX)
		return bad_usage("%s '%s' cannot be expressed in 64 bits (expected %s)",
				 what, arg, EXPECT_RATE);
	*rate = (uint64_t)num;
	*period_ns = (uint64_t)den;
	return 0;
}

static int parse_mode(const char *arg, uint64_t *mode)
{
	char *end;

	errno = 0;
	*mode = strtoull(arg, &end, 8);
	if (!*arg || *end || errno || *arg == '-' || *mode > 0777)
		return bad_usage("MODE '%s' is not valid (expected %s)", arg,
				 EXPECT_MODE);
	return 0;
}

/* ---- printing numbers for people --------------------------------------- */

/* 3 significant digits, trailing zeros dropped: 1.5, 12.3, 250. */
static void fmt_sig(char *buf, size_t len, double v)
{
	char *p;

	snprintf(buf, len, "%.*f", v >= 100 ? 0 : v >= 10 ? 1 : 2, v);
	if (strchr(buf, '.')) {
		p = buf + strlen(buf) - 1;
		while (*p == '0')
			*p-- = '\0';
		if (*p == '.')
			*p = '\0';
	}
}

/* A count: exact below 10000, else 12.3k, 4.5M... */
static const char *fmt_count(char *buf, size_t len, double v)
{
	static const char sfx[] = " kMGTPE";
	int i = 0;

	if (v < 10000 && v == (uint64_t)v) {
		snprintf(buf, len, "%" PRIu64, (uint64_t)v);
		return buf;
	}
	while (v >= 1000 && sfx[i + 1]) {
		v /= 1000;
		i++;
	}
	fmt_sig(buf, len, v);
	if (i)
		snprintf(buf + strlen(buf), len - strlen(buf), "%c", sfx[i]);
	return buf;
}

static const char *fmt_size(char *buf, size_t len, uint64_t b)
{
	static const char *const sfx[] = { "B", "KiB", "MiB", "GiB", "TiB",
					   "PiB", "EiB" };
	double v = b;
	int i = 0;

	while (v >= 1024 && i < 6) {
		v /= 1024;
		i++;
	}
	fmt_sig(buf, len, v);
	snprintf(buf + strlen(buf), len - strlen(buf), "%s", sfx[i]);
	return buf;
}

static const char *fmt_duration(char *buf, size_t len, uint64_t ns)
{
	static const struct unit u[] = {
		{ "d", 86400000000000ull }, { "h", 3600000000000ull },
		{ "min", 60000000000ull }, { "s", 1000000000ull },
		{ "ms", 1000000 }, { "us", 1000 }, { "ns", 1 },
	};
	unsigned int i = 0;

	while (i < 6 && ns < u[i].mult)
		i++;
	fmt_sig(buf, len, (double)ns / u[i].mult);
	snprintf(buf + strlen(buf), len - strlen(buf), "%s", u[i].name);
	return buf;
}

/* Events per second as N/s, N/min, N/h or N/d: the first unit with N >= 1. */
static const char *fmt_per_s(char *buf, size_t len, double per_s)
{
	static const struct { const char *name; double secs; } u[] = {
		{ "s", 1 }, { "min", 60 }, { "h", 3600 }, { "d", 86400 },
	};
	unsigned int i = 0;

	if (per_s > 0)
		while (i < 3 && per_s * u[i].secs < 1)
			i++;
	fmt_count(buf, len - 8, per_s * u[i].secs);
	snprintf(buf + strlen(buf), len - strlen(buf), "/%s", u[i].name);
	return buf;
}

static const char *fmt_rate(char *buf, size_t len, uint64_t rate,
			    uint64_t period_ns)
{
	return fmt_per_s(buf, len, period_ns ? rate * 1e9 / period_ns : 0);
}

/* ---- JSON (RFC 8259) and Prometheus label escaping --------------------- */

/* Length of the valid UTF-8 sequence at @s (0: not valid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len, i;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

static bool utf8_valid(const char *s)
{
	size_t n = strlen(s), l;

	for (; n; s += l, n -= l)
		if (!(l = utf8_len((const unsigned char *)s, n)))
			return false;
	return true;
}

/*
 * A JSON string: '"' and '\' escaped, control characters as \n, \t... or
 * \u00XX, bytes that are not UTF-8 as U+FFFD (json_name() adds the exact
 * bytes in hex then).
 */
static void json_str(const char *s)
{
	size_t n = strlen(s), l;

	putchar('"');
	for (; n; s += l, n -= l) {
		unsigned char c = *s;

		l = utf8_len((const unsigned char *)s, n);
		if (!l) {
			fputs("\\ufffd", stdout);
			l = 1;
		} else if (c == '"' || c == '\\') {
			printf("\\%c", c);
		} else if (c == '\n') {
			fputs("\\n", stdout);
		} else if (c == '\t') {
			fputs("\\t", stdout);
		} else if (c == '\r') {
			fputs("\\r", stdout);
		} else if (c == '\b') {
			fputs("\\b", stdout);
		} else if (c == '\f') {
			fputs("\\f", stdout);
		} else if (c < 0x20 || c == 0x7f) {
			printf("\\u%04x", c);
		} else {
			fwrite(s, 1, l, stdout);
		}
	}
	putchar('"');
}

/* "name": ..., and "name_hex" when the name is not UTF-8. */
static void json_name(const char *name)
{
	fputs("\"name\":", stdout);
	json_str(name);
	if (!utf8_valid(name)) {
		fputs(",\"name_hex\":\"", stdout);
		for (; *name; name++)
			printf("%02x", (unsigned char)*name);
		putchar('"');
	}
}

/* A Prometheus label value: \\, \" and \n escaped; not UTF-8: U+FFFD. */
static void prom_label(const char *s)
{
	size_t n = strlen(s), l;

	for (; n; s += l, n -= l) {
		l = utf8_len((const unsigned char *)s, n);
		if (!l) {
			fputs("\xef\xbf\xbd", stdout);
			l = 1;
		} else if (*s == '"' || *s == '\\') {
			printf("\\%c", *s);
		} else if (*s == '\n') {
			fputs("\\n", stdout);
		} else {
			fwrite(s, 1, l, stdout);
		}
	}
}

/* Names on a terminal: control characters and '\' escaped as in C. */
static void text_name(char *buf, size_t len, const char *name)
{
	size_t o = 0;

	if (!*name) {
		snprintf(buf, len, "(anonymous)");
		return;
	}
	for (; *name && o + 5 < len; name++) {
		unsigned char c = *name;

		if (c < 0x20 || c == 0x7f || c == '\\')
			o += snprintf(buf + o, len - o, c == '\\' ? "\\\\" :
				      "\\x%02x", c);
		else
			buf[o++] = c;
	}
	buf[o] = '\0';
}

/* ---- objects ----------------------------------------------------------- */

static const char *const field_names[4][10] = {
	[KPRIM_LIMITER_KIND] = { "rate", "period_ns", "burst", "initial",
				 "tokens", "waiters", "admitted",
				 "throttled" },
	[KPRIM_SEM_KIND] = { "permits", "available", "held", "waiters",
			     "holders", "acquired" },
	[KPRIM_CACHE_KIND] = { "max_bytes", "max_entries", "max_value",
			       "default_ttl_ns", "bytes", "entries", "hits",
			       "misses", "evictions", "expirations" },
};

/* Counters (Prometheus: _total, TYPE counter); the rest are gauges. */
static bool is_counter(int kind, int i)
{
	return (kind == KPRIM_LIMITER_KIND && i >= 6) ||
	       (kind == KPRIM_SEM_KIND && i == 5) ||
	       (kind == KPRIM_CACHE_KIND && i >= 6);
}

/* A copy of a kprim_list() entry that outlives the callback. */
struct obj {
	struct kprim_object_info i;
	char name[KPRIM_NAME_MAX + 1];
	char kind_name[16];
};

struct objs {
	struct obj *v;
	size_t n, cap;
	int kind;		/* filter: 0 = every kind */
	const char *name;	/* filter: NULL = every name */
};

static int collect_one(const struct kprim_object_info *o, void *arg)
{
	struct objs *os = arg;
	struct obj *ob;

	if ((os->kind && o->kind != os->kind) ||
	    (os->name && strcmp(os->name, o->name)))
		return 0;
	if (os->n == os->cap) {
		size_t cap = os->cap ? os->cap * 2 : 16;
		struct obj *v = realloc(os->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		os->v = v;
		os->cap = cap;
	}
	ob = &os->v[os->n++];
	ob->i = *o;
	snprintf(ob->name, sizeof(ob->name), "%s", o->name);
	snprintf(ob->kind_name, sizeof(ob->kind_name), "%s", o->kind_name);
	ob->i.name = ob->name;
	ob->i.kind_name = ob->kind_name;
	return 0;
}

static int collect(struct kprim *k, struct objs *os)
{
	os->n = 0;
	return kprim_list(k, collect_one, os);
}

static int kind_of(const char *s)
{
	if (!strcmp(s, "limiter"))
		return KPRIM_LIMITER_KIND;
	if (!strcmp(s, "sem"))
		return KPRIM_SEM_KIND;
	if (!strcmp(s, "cache"))
		return KPRIM_CACHE_KIND;
	return -1;
}

static int parse_kind(const char *s, int *kind)
{
	*kind = kind_of(s);
	if (*kind < 0)
		return bad_usage("unknown kind '%s' (expected limiter, sem or cache)",
				 s);
	return 0;
}

static void state_text(const struct kprim_object_info *o, char *buf,
		       size_t len)
{
	const uint64_t *v = o->v;
	char a[32], b[32], c[32], d[32], e[32];

	switch (o->kind) {
	case KPRIM_LIMITER_KIND:
		snprintf(buf, len, "rate=%s burst=%" PRIu64 " tokens=%" PRIu64
			 " waiters=%" PRIu64 " admitted=%s throttled=%s",
			 fmt_rate(a, sizeof(a), v[0], v[1]), v[2], v[4], v[5],
			 fmt_count(b, sizeof(b), v[6]),
			 fmt_count(c, sizeof(c), v[7]));
		break;
	case KPRIM_SEM_KIND:
		snprintf(buf, len, "permits=%" PRIu64 " available=%" PRIu64
			 " held=%" PRIu64 " waiters=%" PRIu64 " holders=%" PRIu64
			 " acquired=%s", v[0], v[1], v[2], v[3], v[4],
			 fmt_count(a, sizeof(a), v[5]));
		break;
	case KPRIM_CACHE_KIND:
		snprintf(buf, len, "bytes=%s/%s entries=%" PRIu64 " hits=%s"
			 " misses=%s evictions=%" PRIu64 " expirations=%" PRIu64
			 "%s%s", fmt_size(a, sizeof(a), v[4]),
			 fmt_size(b, sizeof(b), v[0]), v[5],
			 fmt_count(c, sizeof(c), v[6]),
			 fmt_count(d, sizeof(d), v[7]), v[8], v[9],
			 v[3] ? " ttl=" : "",
			 v[3] ? fmt_duration(e, sizeof(e), v[3]) : "");
		break;
	default:
		snprintf(buf, len, "?");
	}
}

/* The fields of one object, without the braces. */
static void json_fields(const struct kprim_object_info *o)
{
	printf("\"id\":%" PRIu64 ",\"kind\":", o->id);
	json_str(o->kind_name);
	putchar(',');
	json_name(o->name);
	printf(",\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,\"refs\":%" PRIu64
	       ",\"transient\":%s,\"unlinked\":%s,\"stats\":{", o->mode, o->uid,
	       o->gid, o->refs, o->transient ? "true" : "false",
	       o->unlinked ? "true" : "false");
	for (int i = 0; i < o->nv && i < 10; i++)
		printf("%s\"%s\":%" PRIu64, i ? "," : "",
		       field_names[o->kind & 3][i] ? field_names[o->kind & 3][i] :
		       "?", o->v[i]);
	putchar('}');
}

static void list_header(void)
{
	printf("%-6s %-8s %-24s %-4s %5s %5s %4s %s\n", "ID", "KIND", "NAME",
	       "MODE", "UID", "GID", "REFS", "STATE");
}

static void list_row(const struct kprim_object_info *o)
{
	char state[320], name[4 * KPRIM_NAME_MAX + 8];

	state_text(o, state, sizeof(state));
	text_name(name, sizeof(name), o->name);
	printf("%-6" PRIu64 " %-8s %-24s %04o %5u %5u %4" PRIu64 " %s%s%s\n",
	       o->id, o->kind_name, name, o->mode, o->uid, o->gid, o->refs,
	       state, o->transient ? " transient" : "",
	       o->unlinked ? " unlinked" : "");
}

/* ---- commands ---------------------------------------------------------- */

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	int min, max;		/* operands after the command name */
	bool opts;		/* takes --json and the listing options */
	const char *usage;	/* operands */
	const char *help;
};

static const char *cmd_name(void)
{
	return cur->name;
}

static const char *cmd_usage(void)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "usage: %s %s%s%s", prog, cur->name,
		 *cur->usage ? " " : "", cur->usage);
	return buf;
}

static struct kprim *session_k;

/* /dev/kprim, opened once the arguments are known to be good. */
static struct kprim *session(void)
{
	int ret;

	if (session_k)
		return session_k;
	ret = kprim_open(&session_k);
	if (ret == -ENODEV)
		fprintf(stderr, "%s: /dev/kprim missing: is kprim.ko loaded?\n",
			prog);
	else if (ret)
		fprintf(stderr, "%s: open /dev/kprim: %s\n", prog,
			strerror(-ret));
	if (ret)
		session_k = NULL;
	return session_k;
}

#define SESSION(k)						\
	do {							\
		(k) = session();				\
		if (!(k))					\
			return EXIT_FAILED;			\
	} while (0)

static int cmd_list(int argc, char **argv)
{
	struct kprim *k;
	struct objs os = { 0 };
	size_t i;
	int ret;

	if (argc > 0 && parse_kind(argv[0], &os.kind))
		return EXIT_USAGE;
	SESSION(k);
	ret = collect(k, &os);
	if (ret) {
		free(os.v);
		return fail("list", ret);
	}
	if (opt.json) {
		putchar('[');
		for (i = 0; i < os.n; i++) {
			printf("%s\n{", i ? "," : "");
			json_fields(&os.v[i].i);
			putchar('}');
		}
		printf("%s]\n", os.n ? "\n" : "");
	} else if (opt.names) {
		for (i = 0; i < os.n; i++)
			if (os.v[i].name[0])
				printf("%s\n", os.v[i].name);
	} else {
		list_header();
		for (i = 0; i < os.n; i++)
			list_row(&os.v[i].i);
	}
	free(os.v);
	return 0;
}

/*
 * Prometheus text exposition: each metric's samples grouped, under its
 * TYPE line, as the format requires.
 */
static int cmd_stats(int argc, char **argv)
{
	struct kprim *k;
	struct objs os = { 0 };
	int ret;

	(void)argc;
	(void)argv;
	if (opt.json)
		return cmd_list(0, NULL);
	SESSION(k);
	ret = collect(k, &os);
	if (ret) {
		free(os.v);
		return fail("stats", ret);
	}
	for (int kind = 1; kind <= 3; kind++) {
		for (int m = 0; m < 10 && field_names[kind][m]; m++) {
			bool any = false;

			for (size_t i = 0; i < os.n; i++) {
				const struct kprim_object_info *o = &os.v[i].i;

				if (o->kind != kind || m >= o->nv)
					continue;
				if (!any)
					printf("# TYPE kprim_%s_%s%s %s\n",
					       o->kind_name, field_names[kind][m],
					       is_counter(kind, m) ? "_total" : "",
					       is_counter(kind, m) ? "counter" :
					       "gauge");
				any = true;
				printf("kprim_%s_%s%s{name=\"", o->kind_name,
				       field_names[kind][m],
				       is_counter(kind, m) ? "_total" : "");
				prom_label(o->name);
				printf("\",id=\"%" PRIu64 "\"} %" PRIu64 "\n",
				       o->id, o->v[m]);
			}
		}
	}
	free(os.v);
	return 0;
}

/* --- info: who has an object open, holds it, waits on it ---------------- */

struct proc_fd {
	int pid, fd;
	char comm[32];
	int64_t held_by_fd;	/* sem: kprim-held-by-fd, else -1 */
};

struct waiter {
	int pid, tid;
	char comm[32];
	const char *op;
};

struct fdinfo_extra {
	bool have;
	uint64_t memory, pinned;	/* cache */
	/* sem holders as fdinfo lists them (at most 16) */
	struct kprim_sem_holder_info holders[16];
	int nr_holders;
	bool holders_seen;
};

struct proc_scan {
	uint64_t id;
	struct proc_fd *fds;
	size_t nfds;
	struct waiter *waiters;
	size_t nwaiters;
	struct fdinfo_extra extra;
	bool partial;		/* some /proc entries could not be read */
};

static void read_comm(int pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "re");
	if (!f || !fgets(buf, len, f))
		snprintf(buf, len, "?");
	else
		buf[strcspn(buf, "\n")] = '\0';
	if (f)
		fclose(f);
}


/* Parse /proc/PID/fdinfo/FD: is it our object? Take the extras from it. */
static bool fdinfo_match(int pid, int fd, struct proc_scan *ps,
			 int64_t *held_by_fd)
{
	struct fdinfo_extra *x = &ps->extra;
	char path[64], line[512];
	bool match = false, first = !x->holders_seen;
	uint64_t id;
	FILE *f;

	*held_by_fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	f = fopen(path, "re");
	if (!f) {
		ps->partial = true;
		return false;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long a;
		int hp;

		if (sscanf(line, "kprim-id: %" SCNu64, &id) == 1) {
			match = id == ps->id;
			if (!match)
				break;
			x->holders_seen = true;
		} else if (!match) {
			continue;
		} else if (sscanf(line, "kprim-held-by-fd: %llu", &a) == 1) {
			*held_by_fd = a;
		} else if (sscanf(line, "kprim-memory: %llu", &a) == 1) {
			x->memory = a;
			x->have = true;
		} else if (sscanf(line, "kprim-pinned: %llu", &a) == 1) {
			x->pinned = a;
		} else if (first && x->nr_holders < 16 &&
			   sscanf(line, "kprim-holder: pid %d held %llu", &hp,
				  &a) == 2) {
			x->holders[x->nr_holders].pid = hp;
			x->holders[x->nr_holders++].held = a;
		}
	}
	fclose(f);
	return match;
}

static bool is_wait_cmd(unsigned long cmd)
{
	return _IOC_TYPE(cmd) == KPRIM_IOC_MAGIC &&
	       (_IOC_NR(cmd) == _IOC_NR(KPRIM_IOC_LIMITER_TAKE) ||
		_IOC_NR(cmd) == _IOC_NR(KPRIM_IOC_SEM_ACQUIRE));
}

/* Threads of @pid blocked in an ioctl wait on @fd (/proc/PID/task/TID/syscall). */
static int scan_waiters(struct proc_scan *ps, int pid, int fd, const char *comm)
{
	char path[64], line[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		unsigned long a0, a1;
		long nr;
		int tid = atoi(de->d_name);
		FILE *f;

		if (tid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/syscall", pid, tid);
		f = fopen(path, "re");
		if (!f) {
			ps->partial = true;
			continue;
		}
		if (fgets(line, sizeof(line), f) &&
		    sscanf(line, "%ld 0x%lx 0x%lx", &nr, &a0, &a1) == 3 &&
		    nr == SYS_ioctl && (int)a0 == fd && is_wait_cmd(a1)) {
			struct waiter *w = realloc(ps->waiters, (ps->nwaiters + 1) *
						   sizeof(*w));

			if (!w) {
				fclose(f);
				closedir(d);
				return -ENOMEM;
			}
			ps->waiters = w;
			w = &w[ps->nwaiters++];
			w->pid = pid;
			w->tid = tid;
			snprintf(w->comm, sizeof(w->comm), "%s", comm);
			w->op = _IOC_NR(a1) == _IOC_NR(KPRIM_IOC_SEM_ACQUIRE) ?
				"acquire" : "take";
		}
		fclose(f);
	}
	closedir(d);
	return 0;
}

/*
 * Walk /proc/[pid]/fd as lsof does: the fds on object @ps->id (their
 * fdinfo names the object id), and the threads blocked on them.
 */
static int proc_scan(struct proc_scan *ps, int self_fd)
{
	struct dirent *pe, *fe;
	DIR *proc, *fds;
	int self = getpid(), ret = 0;

	proc = opendir("/proc");
	if (!proc)
		return -errno;
	while (!ret && (pe = readdir(proc))) {
		char path[64], link[64], comm[32];
		int pid = atoi(pe->d_name);
		bool have_comm = false;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd", pid);
		fds = opendir(path);
		if (!fds) {
			if (errno != ENOENT)
				ps->partial = true;
			continue;
		}
		while ((fe = readdir(fds))) {
			int fd = atoi(fe->d_name);
			int64_t held;
			ssize_t n;

			if (fe->d_name[0] < '0' || fe->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
			n = readlink(path, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (strncmp(link, "anon_inode:[kprim-", 18))
				continue;
			if (!fdinfo_match(pid, fd, ps, &held))
				continue;
			if (pid == self && fd == self_fd)
				continue;	/* the fd info itself opened */
			if (!have_comm) {
				read_comm(pid, comm, sizeof(comm));
				have_comm = true;
			}
			struct proc_fd *pf = realloc(ps->fds, (ps->nfds + 1) *
						     sizeof(*pf));
			if (!pf) {
				ret = -ENOMEM;
				break;
			}
			ps->fds = pf;
			pf = &pf[ps->nfds++];
			pf->pid = pid;
			pf->fd = fd;
			pf->held_by_fd = held;
			snprintf(pf->comm, sizeof(pf->comm), "%s", comm);
			ret = scan_waiters(ps, pid, fd, comm);
			if (ret)
				break;
		}
		closedir(fds);
	}
	closedir(proc);
	return ret;
}

static void json_comm(const char *comm)
{
	fputs(",\"comm\":", stdout);
	json_str(comm);
}

/* Everything about one object: its row, holders, waiters, openers. */
static int info_one(struct kprim *k, const struct kprim_object_info *o,
		    bool first)
{
	struct kprim_sem_holder_info holders[256];
	struct proc_scan ps = { .id = o->id };
	struct kprim_limiter *l = NULL;
	struct kprim_sem *s = NULL;
	struct kprim_cache *c = NULL;
	int nholders = -1, self_fd = -1, ret, open_err = 0;
	char a[32], b[32], name[4 * KPRIM_NAME_MAX + 8];
	const uint64_t *v = o->v;
	size_t i;

	/* Our own fd on it gives the holders (SEM_INFO) and the fdinfo. */
	if (o->name[0]) {
		if (o->kind == KPRIM_LIMITER_KIND)
			open_err = kprim_limiter_open(k, o->name, 0, 0, NULL, &l);
		else if (o->kind == KPRIM_SEM_KIND)
			open_err = kprim_sem_open(k, o->name, 0, 0, 0, &s);
		else
			open_err = kprim_cache_open(k, o->name, 0, 0, NULL, &c);
		self_fd = l ? kprim_limiter_fd(l) : s ? kprim_sem_fd(s) :
			  c ? kprim_cache_fd(c) : -1;
	}
	if (s)
		nholders = kprim_sem_holders(s, holders, 256);
	ret = proc_scan(&ps, self_fd);
	if (self_fd >= 0) {
		int64_t dummy;

		fdinfo_match(getpid(), self_fd, &ps, &dummy);
	}
	if (nholders < 0 && o->kind == KPRIM_SEM_KIND && ps.extra.holders_seen) {
		nholders = ps.extra.nr_holders;
		memcpy(holders, ps.extra.holders,
		       nholders * sizeof(holders[0]));
	}
	if (nholders > 256)
		nholders = 256;

	if (opt.json) {
		printf("%s\n{", first ? "" : ",");
		json_fields(o);
		if (o->kind == KPRIM_CACHE_KIND && ps.extra.have)
			printf(",\"memory\":%" PRIu64 ",\"pinned\":%" PRIu64,
			       ps.extra.memory, ps.extra.pinned);
		if (o->kind == KPRIM_SEM_KIND && nholders >= 0) {
			fputs(",\"holders\":[", stdout);
			for (int h = 0; h < nholders; h++) {
				read_comm(holders[h].pid, a, sizeof(a));
				printf("%s{\"pid\":%d", h ? "," : "",
				       holders[h].pid);
				json_comm(a);
				printf(",\"held\":%" PRIu64 "}", holders[h].held);
			}
			putchar(']');
		}
		fputs(",\"waiting\":[", stdout);
		for (i = 0; i < ps.nwaiters; i++) {
			printf("%s{\"pid\":%d,\"tid\":%d", i ? "," : "",
			       ps.waiters[i].pid, ps.waiters[i].tid);
			json_comm(ps.waiters[i].comm);
			printf(",\"op\":\"%s\"}", ps.waiters[i].op);
		}
		fputs("],\"open_by\":[", stdout);
		for (i = 0; i < ps.nfds; i++) {
			printf("%s{\"pid\":%d,\"fd\":%d", i ? "," : "",
			       ps.fds[i].pid, ps.fds[i].fd);
			json_comm(ps.fds[i].comm);
			if (ps.fds[i].held_by_fd >= 0)
				printf(",\"held\":%" PRId64, ps.fds[i].held_by_fd);
			putchar('}');
		}
		printf("],\"complete\":%s}", ps.partial ? "false" : "true");
		goto out;
	}

	text_name(name, sizeof(name), o->name);
	printf("%s%s %s (id %" PRIu64 ")\n", first ? "" : "\n", o->kind_name,
	       name, o->id);
	printf("  owner %u:%u  mode %04o  refs %" PRIu64 "%s%s\n", o->uid,
	       o->gid, o->mode, o->refs, o->transient ? "  transient" : "",
	       o->unlinked ? "  unlinked" : "");
	switch (o->kind) {
	case KPRIM_LIMITER_KIND:
		printf("  rate %s (%" PRIu64 " per %s)  burst %" PRIu64
		       "  tokens %" PRIu64 "\n", fmt_rate(a, sizeof(a), v[0], v[1]),
		       v[0], fmt_duration(b, sizeof(b), v[1]), v[2], v[4]);
		printf("  waiters %" PRIu64 "  admitted %" PRIu64 "  throttled %"
		       PRIu64 "\n", v[5], v[6], v[7]);
		break;
	case KPRIM_SEM_KIND:
		printf("  permits %" PRIu64 "  available %" PRIu64 "  held %"
		       PRIu64 "  waiters %" PRIu64 "  acquired %" PRIu64 "\n",
		       v[0], v[1], v[2], v[3], v[5]);
		break;
	case KPRIM_CACHE_KIND: {
		uint64_t gets = v[6] + v[7];

		printf("  bytes %s of %s  entries %" PRIu64 " of %" PRIu64
		       "  max value %s", fmt_size(a, sizeof(a), v[4]),
		       fmt_size(b, sizeof(b), v[0]), v[5], v[1],
		       fmt_size(name, sizeof(name), v[2]));
		printf("  default ttl %s\n", v[3] ?
		       fmt_duration(a, sizeof(a), v[3]) : "none");
		printf("  hits %" PRIu64 "  misses %" PRIu64, v[6], v[7]);
		if (gets)
			printf(" (%.1f%% hits)", 100.0 * v[6] / gets);
		printf("  evictions %" PRIu64 "  expirations %" PRIu64 "\n",
		       v[8], v[9]);
		if (ps.extra.have)
			printf("  kernel memory %s  pinned entries %" PRIu64 "\n",
			       fmt_size(a, sizeof(a), ps.extra.memory),
			       ps.extra.pinned);
		break;
	}
	}
	if (o->kind == KPRIM_SEM_KIND) {
		if (nholders < 0) {
			printf("  holders: unknown (%s)\n", open_err ?
			       strerror(-open_err) : "no fd found");
		} else {
			printf("  holders:%s\n", nholders ? "" : " none");
			for (int h = 0; h < nholders; h++) {
				read_comm(holders[h].pid, a, sizeof(a));
				printf("    pid %d (%s) holds %" PRIu64 "\n",
				       holders[h].pid, a, holders[h].held);
			}
		}
	}
	if (o->kind != KPRIM_CACHE_KIND) {
		printf("  waiting:%s\n", ps.nwaiters ? "" : " none seen");
		for (i = 0; i < ps.nwaiters; i++)
			printf("    pid %d tid %d (%s) in %s\n", ps.waiters[i].pid,
			       ps.waiters[i].tid, ps.waiters[i].comm,
			       ps.waiters[i].op);
	}
	printf("  open by:%s\n", ps.nfds ? "" : " no other process seen");
	for (i = 0; i < ps.nfds; i++) {
		printf("    pid %d (%s) fd %d", ps.fds[i].pid, ps.fds[i].comm,
		       ps.fds[i].fd);
		if (ps.fds[i].held_by_fd > 0)
			printf(" holding %" PRId64, ps.fds[i].held_by_fd);
		putchar('\n');
	}
	if (ps.partial)
		printf("  (some processes could not be inspected: run as root to see all)\n");
out:
	if (l)
		kprim_limiter_close(l);
	if (s)
		kprim_sem_close(s);
	if (c)
		kprim_cache_close(c);
	free(ps.fds);
	free(ps.waiters);
	return ret;
}

static int cmd_info(int argc, char **argv)
{
	struct kprim *k;
	struct objs os = { 0 };
	int ret = 0;
	size_t i;

	if (argc == 2 && parse_kind(argv[0], &os.kind))
		return EXIT_USAGE;
	os.name = argv[argc - 1];
	SESSION(k);
	ret = collect(k, &os);
	if (ret) {
		free(os.v);
		return fail("info", ret);
	}
	if (!os.n) {
		free(os.v);
		fprintf(stderr, "%s: info: no %s named '%s'\n", prog,
			argc == 2 ? argv[0] : "object", os.name);
		return EXIT_NOTFOUND;
	}
	if (opt.json)
		putchar('[');
	for (i = 0; i < os.n && !ret; i++)
		ret = info_one(k, &os.v[i].i, i == 0);
	if (opt.json)
		printf("\n]\n");
	free(os.v);
	return ret ? fail("info", ret) : 0;
}

/* --- watch: a refreshing table, like top -------------------------------- */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const struct kprim_object_info *find_prev(const struct objs *prev,
						 uint64_t id)
{
	for (size_t i = 0; i < prev->n; i++)
		if (prev->v[i].i.id == id)
			return &prev->v[i].i;
	return NULL;
}

/* Per-second rate of counter @i between two snapshots, or -1. */
static double per_s(const struct kprim_object_info *o,
		    const struct kprim_object_info *p, int i, double secs)
{
	if (!p || secs <= 0 || o->v[i] < p->v[i])
		return -1;
	return (o->v[i] - p->v[i]) / secs;
}

static const char *fmt_ps(char *buf, size_t len, double r)
{
	if (r < 0)
		return "-";
	return fmt_per_s(buf, len, r);
}

static void watch_row(const struct kprim_object_info *o,
		      const struct kprim_object_info *p, double secs, int width)
{
	char name[4 * KPRIM_NAME_MAX + 8], lim[48], now[48], act[96];
	char a[32], b[32], c[32];
	const uint64_t *v = o->v;

	text_name(name, sizeof(name), o->name);
	switch (o->kind) {
	case KPRIM_LIMITER_KIND:
		snprintf(lim, sizeof(lim), "%s burst %" PRIu64,
			 fmt_rate(a, sizeof(a), v[0], v[1]), v[2]);
		snprintf(now, sizeof(now), "%" PRIu64 " tokens", v[4]);
		snprintf(act, sizeof(act), "admitted %s  throttled %s",
			 fmt_ps(b, sizeof(b), per_s(o, p, 6, secs)),
			 fmt_ps(c, sizeof(c), per_s(o, p, 7, secs)));
		break;
	case KPRIM_SEM_KIND:
		snprintf(lim, sizeof(lim), "%" PRIu64 " permits", v[0]);
		snprintf(now, sizeof(now), "%" PRIu64 " held by %" PRIu64, v[2],
			 v[4]);
		snprintf(act, sizeof(act), "acquired %s",
			 fmt_ps(b, sizeof(b), per_s(o, p, 5, secs)));
		break;
	case KPRIM_CACHE_KIND: {
		double h = per_s(o, p, 6, secs), m = per_s(o, p, 7, secs);

		snprintf(lim, sizeof(lim), "%s", fmt_size(a, sizeof(a), v[0]));
		snprintf(now, sizeof(now), "%s in %" PRIu64,
			 fmt_size(b, sizeof(b), v[4]), v[5]);
		if (h >= 0 && m >= 0 && h + m > 0)
			snprintf(c, sizeof(c), "%.0f%%", 100 * h / (h + m));
		else
			snprintf(c, sizeof(c), "-");
		snprintf(act, sizeof(act), "gets %s  hits %s  evicted %s",
			 fmt_ps(a, sizeof(a), h >= 0 && m >= 0 ? h + m : -1), c,
			 fmt_ps(b, sizeof(b), per_s(o, p, 8, secs)));
		break;
	}
	default:
		lim[0] = now[0] = act[0] = '\0';
	}
	printf("%-6" PRIu64 " %-8s %-*.*s %-18s %-16s %7" PRIu64 "  %s\n",
	       o->id, o->kind_name, width, width, name, lim, now,
	       o->kind == KPRIM_SEM_KIND ? v[3] :
	       o->kind == KPRIM_LIMITER_KIND ? v[5] : 0, act);
}

static int cmd_watch(int argc, char **argv)
{
	struct kprim *k;
	struct objs cur_os = { 0 }, prev = { 0 }, tmp;
	bool tty = isatty(STDOUT_FILENO);
	struct sigaction sa = { .sa_handler = on_signal };
	struct timespec t1, prev_t = { 0, 0 };
	int ret = 0;

	if (argc > 0 && parse_kind(argv[0], &cur_os.kind))
		return EXIT_USAGE;
	prev.kind = cur_os.kind;
	SESSION(k);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (uint64_t frame = 0; !stop && (!opt.count || frame < opt.count);
	     frame++) {
		char ts[32], every[32];
		double secs;
		time_t wall;

		if (frame) {
			struct timespec d = {
				.tv_sec = opt.interval_ns / 1000000000ull,
				.tv_nsec = opt.interval_ns % 1000000000ull,
			};

			while (nanosleep(&d, &d) && errno == EINTR && !stop)
				;
			if (stop)
				break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ret = collect(k, &cur_os);
		if (ret)
			break;
		secs = frame ? (t1.tv_sec - prev_t.tv_sec) +
			       (t1.tv_nsec - prev_t.tv_nsec) / 1e9 : 0;
		wall = time(NULL);
		strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&wall));
		if (opt.json) {
			printf("{\"time\":%lld,\"interval_s\":%.3f,\"objects\":[",
			       (long long)wall, secs);
			for (size_t i = 0; i < cur_os.n; i++) {
				const struct kprim_object_info *o = &cur_os.v[i].i;
				const struct kprim_object_info *p =
					find_prev(&prev, o->id);
				bool any = false;

				printf("%s{", i ? "," : "");
				json_fields(o);
				fputs(",\"per_s\":{", stdout);
				for (int m = 0; m < o->nv; m++) {
					double r = per_s(o, p, m, secs);

					if (!is_counter(o->kind, m) || r < 0)
						continue;
					printf("%s\"%s\":%.3f", any ? "," : "",
					       field_names[o->kind][m], r);
					any = true;
				}
				fputs("}}", stdout);
			}
			printf("]}\n");
		} else {
			if (tty)
				fputs("\033[H\033[2J", stdout);
			else if (frame)
				putchar('\n');
			printf("kprimctl watch  %s  %zu object%s  every %s%s\n",
			       ts, cur_os.n, cur_os.n == 1 ? "" : "s",
			       fmt_duration(every, sizeof(every), opt.interval_ns),
			       tty ? "  (Ctrl-C quits)" : "");
			/* The names' column: as wide as they need, up to 48. */
			int width = 12;

			for (size_t i = 0; i < cur_os.n; i++) {
				char nm[4 * KPRIM_NAME_MAX + 8];

				text_name(nm, sizeof(nm), cur_os.v[i].name);
				if ((int)strlen(nm) > width)
					width = strlen(nm) > 48 ? 48 : strlen(nm);
			}
			printf("%-6s %-8s %-*s %-18s %-16s %7s  %s\n", "ID",
			       "KIND", width, "NAME", "LIMIT", "NOW", "WAITERS",
			       "ACTIVITY");
			for (size_t i = 0; i < cur_os.n; i++)
				watch_row(&cur_os.v[i].i,
					  find_prev(&prev, cur_os.v[i].i.id), secs,
					  width);
		}
		fflush(stdout);
		tmp = prev;
		prev = cur_os;
		cur_os = tmp;
		prev_t = t1;
	}
	free(cur_os.v);
	free(prev.v);
	return ret ? fail("watch", ret) : 0;
}

/* --- changing objects --------------------------------------------------- */

static const char *create_usage(int kind)
{
	return kind == KPRIM_LIMITER_KIND ?
	       "usage: kprimctl create limiter NAME RATE/PERIOD BURST [MODE]"
	       " or NAME RATE PERIOD_NS BURST [MODE]" :
	       kind == KPRIM_SEM_KIND ?
	       "usage: kprimctl create sem NAME PERMITS [MODE]" :
	       "usage: kprimctl create cache NAME MAX_BYTES [DEFAULT_TTL_NS [MODE]]";
}

static int cmd_create(int argc, char **argv)
{
	struct kprim *k;
	unsigned int flags = KPRIM_CREATE | KPRIM_EXCL;
	uint64_t mode = 0600;
	const char *name;
	int kind, ret;

	if (parse_kind(argv[0], &kind))
		return EXIT_USAGE;
	name = argv[1];
	if (kind == KPRIM_LIMITER_KIND) {
		struct kprim_limiter_config cfg = { 0 };
		struct kprim_limiter *l;
		int next;

		/* RATE/PERIOD BURST [MODE], or RATE PERIOD_NS BURST [MODE]. */
		if (argc > 2 && strchr(argv[2], '/')) {
			if (parse_rate(argv[2], "RATE", &cfg.rate, &cfg.period_ns))
				return EXIT_USAGE;
			next = 3;
		} else {
			if (argc < 5)
				return bad_usage("missing %s (%s)",
						 argc < 3 ? "RATE" : argc < 4 ?
						 "PERIOD_NS" : "BURST",
						 create_usage(kind));
			if (parse_count(argv[2], "RATE", &cfg.rate) ||
			    parse_duration(argv[3], "PERIOD_NS", 1,
					   "nanoseconds", &cfg.period_ns))
				return EXIT_USAGE;
			next = 4;
		}
		if (argc <= next)
			return bad_usage("missing BURST (%s)", create_usage(kind));
		if (argc > next + 2)
			return bad_usage("unexpected argument '%s' (%s)",
					 argv[next + 2], create_usage(kind));
		if (parse_count(argv[next], "BURST", &cfg.burst) ||
		    (argc > next + 1 && parse_mode(argv[next + 1], &mode)))
			return EXIT_USAGE;
		SESSION(k);
		ret = kprim_limiter_open(k, name, flags, mode, &cfg, &l);
		if (ret)
			return fail_hint("create limiter", ret, HINT_LIMITER);
		kprim_limiter_close(l);
	} else if (kind == KPRIM_SEM_KIND) {
		struct kprim_sem *s;
		uint64_t permits;

		if (argc < 3)
			return bad_usage("missing PERMITS (%s)", create_usage(kind));
		if (argc > 4)
			return bad_usage("unexpected argument '%s' (%s)", argv[4],
					 create_usage(kind));
		if (parse_count(argv[2], "PERMITS", &permits) ||
		    (argc > 3 && parse_mode(argv[3], &mode)))
			return EXIT_USAGE;
		SESSION(k);
		ret = kprim_sem_open(k, name, flags, mode, permits, &s);
		if (ret)
			return fail_hint("create sem", ret, HINT_SEM);
		kprim_sem_close(s);
	} else {
		struct kprim_cache_config cfg = { 0 };
		struct kprim_cache *ch;

		if (argc < 3)
			return bad_usage("missing MAX_BYTES (%s)", create_usage(kind));
		if (argc > 5)
			return bad_usage("unexpected argument '%s' (%s)", argv[5],
					 create_usage(kind));
		if (parse_size(argv[2], "MAX_BYTES", &cfg.max_bytes) ||
		    (argc > 3 && parse_duration(argv[3], "DEFAULT_TTL_NS", 1,
						"nanoseconds",
						&cfg.default_ttl_ns)) ||
		    (argc > 4 && parse_mode(argv[4], &mode)))
			return EXIT_USAGE;
		SESSION(k);
		ret = kprim_cache_open(k, name, flags, mode, &cfg, &ch);
		if (ret)
			return fail("create cache", ret);
		kprim_cache_close(ch);
	}
	printf("created %s %s\n", argv[0], name);
	return 0;
}

static int cmd_rm(int argc, char **argv)
{
	struct kprim *k;
	int kind, ret;

	(void)argc;
	if (parse_kind(argv[0], &kind))
		return EXIT_USAGE;
	SESSION(k);
	ret = kprim_unlink(k, kind, argv[1]);
	return ret ? fail("rm", ret) : 0;
}

static int open_limiter(const char *name, struct kprim_limiter **l)
{
	struct kprim *k;
	int ret;

	SESSION(k);
	ret = kprim_limiter_open(k, name, 0, 0, NULL, l);

	return ret ? fail(name, ret) : 0;
}

static int cmd_set_rate(int argc, char **argv)
{
	struct kprim_limiter *l;
	uint64_t rate, period;
	int ret;

	if (strchr(argv[1], '/')) {
		if (argc > 2)
			return bad_usage("unexpected argument '%s' (%s)", argv[2],
					 cmd_usage());
		if (parse_rate(argv[1], "RATE", &rate, &period))
			return EXIT_USAGE;
	} else {
		if (argc < 3)
			return bad_usage("missing PERIOD_NS (%s)", cmd_usage());
		if (parse_count(argv[1], "RATE", &rate) ||
		    parse_duration(argv[2], "PERIOD_NS", 1, "nanoseconds",
				   &period))
			return EXIT_USAGE;
	}
	ret = open_limiter(argv[0], &l);
	if (ret)
		return ret;
	ret = kprim_limiter_set_rate(l, rate, period);
	kprim_limiter_close(l);
	return ret ? fail_hint("set-rate", ret, HINT_LIMITER) : 0;
}

static int cmd_set_burst(int argc, char **argv)
{
	struct kprim_limiter *l;
	uint64_t burst;
	int ret;

	(void)argc;
	if (parse_count(argv[1], "BURST", &burst))
		return EXIT_USAGE;
	ret = open_limiter(argv[0], &l);
	if (ret)
		return ret;
	ret = kprim_limiter_set_burst(l, burst);
	kprim_limiter_close(l);
	return ret ? fail_hint("set-burst", ret, HINT_LIMITER) : 0;
}

static int cmd_take(int argc, char **argv)
{
	struct kprim_limiter *l;
	uint64_t n, timeout = 0, retry = 0;
	char buf[32];
	int ret;

	if (parse_count(argv[1], "N", &n) ||
	    (argc > 2 && parse_duration(argv[2], "TIMEOUT_MS", 1000000,
					"milliseconds", &timeout)))
		return EXIT_USAGE;
	ret = open_limiter(argv[0], &l);
	if (ret)
		return ret;
	ret = kprim_limiter_take(l, n, NULL, timeout, &retry);
	if (ret == -EAGAIN || ret == -ETIMEDOUT)
		printf("retry after %s\n", fmt_duration(buf, sizeof(buf), retry));
	kprim_limiter_close(l);
	return ret ? fail_hint("take", ret, HINT_TAKE) : 0;
}

/* Acquire permits (waiting as long as it takes), hold them, exit. */
static int cmd_acquire(int argc, char **argv)
{
	struct kprim *k;
	struct kprim_sem *s;
	uint64_t n, hold = 0;
	int ret;

	if (parse_count(argv[1], "N", &n) ||
	    (argc > 2 && parse_duration(argv[2], "HOLD_MS", 1000000,
					"milliseconds", &hold)))
		return EXIT_USAGE;
	SESSION(k);
	ret = kprim_sem_open(k, argv[0], 0, 0, 0, &s);
	if (ret)
		return fail(argv[0], ret);
	ret = kprim_sem_acquire(s, n, NULL, KPRIM_TIMEOUT_INFINITE);
	if (!ret) {
		struct timespec d = { .tv_sec = hold / 1000000000ull,
				      .tv_nsec = hold % 1000000000ull };

		printf("pid %d holds %" PRIu64 " of %s\n", (int)getpid(), n,
		       argv[0]);
		fflush(stdout);
		while (nanosleep(&d, &d) && errno == EINTR)
			;
	}
	kprim_sem_close(s);	/* returns the permits */
	return ret ? fail_hint("acquire", ret, HINT_ACQUIRE) : 0;
}

static int cmd_resize(int argc, char **argv)
{
	struct kprim *k;
	struct kprim_sem *s;
	uint64_t n;
	int ret;

	(void)argc;
	if (parse_count(argv[1], "PERMITS", &n))
		return EXIT_USAGE;
	SESSION(k);
	ret = kprim_sem_open(k, argv[0], 0, 0, 0, &s);
	if (ret)
		return fail(argv[0], ret);
	ret = kprim_sem_resize(s, n);
	kprim_sem_close(s);
	return ret ? fail_hint("resize", ret, HINT_SEM) : 0;
}

static int open_cache(const char *name, struct kprim_cache **c)
{
	struct kprim *k;
	int ret;

	SESSION(k);
	ret = kprim_cache_open(k, name, 0, 0, NULL, c);

	return ret ? fail(name, ret) : 0;
}

static int cmd_get(int argc, char **argv)
{
	const char *key = argv[1];
	struct kprim_cache *c;
	size_t cap = 4096, len;
	char *buf = NULL;
	int ret;

	(void)argc;
	ret = open_cache(argv[0], &c);
	if (ret)
		return ret;
	do {
		char *nb = realloc(buf, cap);

		if (!nb) {
			ret = -ENOMEM;
			break;
		}
		buf = nb;
		len = cap;
		ret = kprim_cache_get(c, key, strlen(key), buf, &len, NULL, NULL);
		cap = len;	/* on -EMSGSIZE: the size it needs */
	} while (ret == -EMSGSIZE);
	kprim_cache_close(c);
	if (!ret) {
		fwrite(buf, 1, len, stdout);
		putchar('\n');
	} else if (ret == -ENOENT) {
		printf("(not found)\n");
	}
	free(buf);
	return ret && ret != -ENOENT ? fail("get", ret) :
	       ret ? EXIT_NOTFOUND : 0;
}

static int cmd_put(int argc, char **argv)
{
	uint64_t ttl = KPRIM_TTL_DEFAULT;
	const char *key = argv[1];
	struct kprim_cache *c;
	int ret;

	/* Nothing is stored unless every argument is good. */
	if (argc > 3 && parse_duration(argv[3], "TTL_MS", 1000000,
				       "milliseconds", &ttl))
		return EXIT_USAGE;
	if (ttl == KPRIM_TTL_DEFAULT && argc > 3)
		return bad_usage("TTL_MS '%s' is too large (expected %s)",
				 argv[3], EXPECT_DUR("milliseconds"));
	ret = open_cache(argv[0], &c);
	if (ret)
		return ret;
	ret = kprim_cache_set(c, key, strlen(key), argv[2], strlen(argv[2]),
			      ttl, NULL);
	kprim_cache_close(c);
	return ret ? fail("put", ret) : 0;
}

static int cmd_incr(int argc, char **argv)
{
	const char *key = argv[1];
	struct kprim_cache *c;
	uint64_t n;
	int ret;

	(void)argc;
	if (parse_count(argv[2], "N", &n))
		return EXIT_USAGE;
	ret = open_cache(argv[0], &c);
	if (ret)
		return ret;
	ret = kprim_cache_incr(c, key, strlen(key), n, &n);
	kprim_cache_close(c);
	if (!ret)
		printf("%" PRIu64 "\n", n);
	return ret ? fail("incr", ret) : 0;
}

/*
 * Every command. tools/man-check.sh reads the names from the lines
 * '{ "NAME", cmd_...' of this table: keep one entry per line.
 */
static const struct cmd commands[] = {
	{ "list", cmd_list, 0, 1, true, "[KIND] [--json|--names]",
	  "table of the objects (of one KIND)" },
	{ "stats", cmd_stats, 0, 0, true, "[--json]",
	  "every number of every object, Prometheus text format" },
	{ "info", cmd_info, 1, 2, true, "[KIND] NAME [--json]",
	  "one object: state, holders, waiters, processes that have it open" },
	{ "watch", cmd_watch, 0, 1, true,
	  "[KIND] [--interval DURATION] [--count N] [--json]",
	  "a refreshing table with rates, like top" },
	{ "create", cmd_create, 2, 6, false, "limiter|sem|cache NAME ...",
	  "create a persistent object:\n"
	  "      create limiter NAME RATE/PERIOD BURST [MODE]\n"
	  "      create limiter NAME RATE PERIOD_NS BURST [MODE]\n"
	  "      create sem NAME PERMITS [MODE]\n"
	  "      create cache NAME MAX_BYTES [DEFAULT_TTL_NS [MODE]]" },
	{ "rm", cmd_rm, 2, 2, false, "limiter|sem|cache NAME",
	  "remove a name" },
	{ "set-rate", cmd_set_rate, 2, 3, false,
	  "NAME RATE/PERIOD | NAME RATE PERIOD_NS", "change a limiter's rate" },
	{ "set-burst", cmd_set_burst, 2, 2, false, "NAME BURST",
	  "change a limiter's burst" },
	{ "resize", cmd_resize, 2, 2, false, "NAME PERMITS",
	  "change a semaphore's permits" },
	{ "take", cmd_take, 2, 3, false, "NAME N [TIMEOUT_MS]",
	  "take tokens from a limiter" },
	{ "acquire", cmd_acquire, 2, 3, false, "NAME N [HOLD_MS]",
	  "acquire semaphore permits, hold them, exit" },
	{ "get", cmd_get, 2, 2, false, "CACHE KEY", "print a cached value" },
	{ "put", cmd_put, 3, 4, false, "CACHE KEY VALUE [TTL_MS]",
	  "store a value" },
	{ "incr", cmd_incr, 3, 3, false, "CACHE KEY N",
	  "add to a decimal counter" },
	{ NULL, NULL, 0, 0, false, NULL, NULL }
};

static void help(FILE *f)
{
	fprintf(f, "usage: %s COMMAND [ARGS]  (%s --help: this text)\n\n",
		prog, prog);
	for (const struct cmd *c = commands; c->name; c++)
		fprintf(f, "  %s %s\n      %s\n", c->name, c->usage, c->help);
	fprintf(f,
		"\nNumbers: a plain integer is read as in C (0x hex, 0 octal) in the\n"
		"argument's unit (PERIOD_NS, DEFAULT_TTL_NS: ns; TIMEOUT_MS, HOLD_MS,\n"
		"TTL_MS: ms; MAX_BYTES: bytes). With a unit or a decimal point it is\n"
		"decimal: counts 10k 1.5M (k M G T = 10^3..10^12); sizes 64K 64M 1GiB\n"
		"(K M G T, KiB...: 2^10..; kB MB GB TB: 10^3..); durations 250ms 1.5s\n"
		"2h 1h30m (ns us ms s m|min h d); rates 500/s 30/min 1.5k/h 5/250ms.\n"
		"MODE is octal.\n"
		"\nExit status: 0 ok, 1 the operation failed, 2 bad usage, 3 no such\n"
		"object or key, 4 not granted (take: no tokens in time).\n");
}

/* Split --json, --names, --interval D, --count N out of argv (listings). */
static int take_options(int *argc, char **argv)
{
	int i, o = 0;
	bool done = false;

	for (i = 0; i < *argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;

		if (done || a[0] != '-' || !a[1]) {
			argv[o++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			done = true;
			continue;
		}
		if (!strncmp(a, "--interval", 10) || !strncmp(a, "--count", 7)) {
			const char *eq = strchr(a, '=');
			size_t nl = eq ? (size_t)(eq - a) : strlen(a);

			if (strncmp(a, "--interval", nl) && strncmp(a, "--count", nl))
				goto unknown;
			if (strcmp(cur->name, "watch"))
				return bad_usage("%.*s is for watch only (%s)",
						 (int)nl, a, cmd_usage());
			if (eq)
				val = eq + 1;
			else if (i + 1 < *argc)
				val = argv[++i];
			else
				return bad_usage("%s needs a value (expected %s)", a,
						 nl == 10 ? "a duration like 500ms or 2s" :
						 "a number of refreshes");
			if (nl == 10) {
				if (parse_duration(val, "--interval", 1000000000ull,
						   "seconds", &opt.interval_ns))
					return EXIT_USAGE;
				if (!opt.interval_ns)
					return bad_usage("--interval '%s' is zero (expected a duration like 500ms or 2s)",
							 val);
			} else if (parse_count(val, "--count", &opt.count)) {
				return EXIT_USAGE;
			}
			continue;
		}
		if (!strcmp(a, "--json")) {
			opt.json = true;
			continue;
		}
		if (!strcmp(a, "--names") && !strcmp(cur->name, "list")) {
			opt.names = true;
			continue;
		}
unknown:
		return bad_usage("unknown option '%s' (%s)", a, cmd_usage());
	}
	*argc = o;
	if (opt.json && opt.names)
		return bad_usage("--json and --names exclude each other (expected one of them)");
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd *c;
	int ret;

	if (argc < 2)
		return bad_usage("missing COMMAND (expected one of list, stats, info, watch, create, rm, set-rate, set-burst, resize, take, acquire, get, put, incr; %s --help)",
				 prog);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		help(stdout);
		return 0;
	}
	for (c = commands; c->name && strcmp(c->name, argv[1]); c++)
		;
	if (!c->name)
		return bad_usage("unknown command '%s' (expected one of list, stats, info, watch, create, rm, set-rate, set-burst, resize, take, acquire, get, put, incr; %s --help)",
				 argv[1], prog);
	cur = c;
	argc -= 2;
	argv += 2;
	if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
		printf("%s\n", cmd_usage());
		return 0;
	}
	if (c->opts && (ret = take_options(&argc, argv)))
		return ret;
	if (argc < c->min)
		return bad_usage("missing argument%s (%s)",
				 c->min - argc > 1 ? "s" : "", cmd_usage());
	if (argc > c->max)
		return bad_usage("unexpected argument '%s' (%s)", argv[c->max],
				 cmd_usage());

	ret = c->fn(argc, argv);
	if (session_k)
		kprim_close(session_k);
	return ret;
}
