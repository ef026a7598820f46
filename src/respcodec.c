/*
 * respcodec.c -- the request parser and the reply writers of respcodec.h.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "respcodec.h"

/* --- numbers ---------------------------------------------------------------- */

int resp_ll(const uint8_t *p, size_t len, long long *out)
{
	/* The magnitude of LLONG_MIN, the largest a negative number may reach. */
	const unsigned long long neg_max = (unsigned long long)LLONG_MAX + 1;
	unsigned long long v = 0, d;
	bool neg = false;
	size_t i = 0;

	if (len == 0)
		return DKV_EINVAL;
	if (len == 1 && p[0] == '0') {
		*out = 0;
		return 0;
	}
	if (p[0] == '-') {
		neg = true;
		i = 1;
	}
	/* At least one digit, and the first not '0' ("-0", "01" refused). */
	if (i == len || p[i] < '1' || p[i] > '9')
		return DKV_EINVAL;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return DKV_EINVAL;
		d = (unsigned long long)(p[i] - '0');
		if (v > (neg_max - d) / 10)
			return DKV_EINVAL;   /* v * 10 + d > neg_max */
		v = v * 10 + d;
	}
	if (neg)
		*out = v == neg_max ? LLONG_MIN : -(long long)v;
	else if (v > (unsigned long long)LLONG_MAX)
		return DKV_EINVAL;
	else
		*out = (long long)v;
	return 0;
}

/* --- parsing: common ---------------------------------------------------------- */

/* Where resp_parse's outputs go, so the helpers take one pointer. */
typedef struct parse_state {
	const uint8_t *buf;        /* the input, len bytes */
	size_t len;
	const resp_limits *lim;
	resp_arg *argv;            /* lim->max_args entries */
	size_t argc;               /* arguments in argv so far */
	size_t need;               /* on RESP_MORE, the lower bound of the request's size */
	char *err;                 /* the message on RESP_ERROR; errlen bytes */
	size_t errlen;
} parse_state;

#define PROTO_ERR "ERR Protocol error: "

static int parse_fail(parse_state *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Put the message in ps->err (when there is room) and return RESP_ERROR. */
static int parse_fail(parse_state *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->err != NULL && ps->errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(ps->err, ps->errlen, fmt, ap);
		va_end(ap);
	}
	return RESP_ERROR;
}

/* a + b, or SIZE_MAX when that does not fit: need is a lower bound, and a
 * bound past any buffer says as much as the exact sum. */
static size_t sat_add(size_t a, size_t b)
{
	return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Ask for more input: the request takes at least `at_least` bytes. */
static int parse_more(parse_state *ps, size_t at_least)
{
	ps->need = at_least > ps->len ? at_least : sat_add(ps->len, 1);
	return RESP_MORE;
}

/* The first position in [from, len) whose byte is c, looking at no more
 * than max + 1 bytes (a line of max bytes and its end); len if none. */
static size_t find_byte(const parse_state *ps, size_t from, uint8_t c, size_t max)
{
	size_t n = ps->len - from;
	const uint8_t *at;

	if (n > sat_add(max, 1))
		n = sat_add(max, 1);
	at = n > 0 ? memchr(ps->buf + from, c, n) : NULL;
	return at != NULL ? (size_t)(at - ps->buf) : ps->len;
}

/* --- parsing: multibulk ------------------------------------------------------- */

/* Smallest encoding of one argument, "$0\r\n\r\n": what each argument not
 * yet seen adds to the lower bound of a request's size. */
#define MIN_ARG_BYTES 6u

/*
 * The number of the "*" or "$" line starting at `at` (its type byte), or
 * where it stands: RESP_OK with *v and *next (the byte after its "\r\n"),
 * RESP_MORE, or RESP_ERROR with too_big (no '\r' within max_inline) or
 * bad (not a number in [lo, hi], or '\r' not followed by '\n') as the
 * message.  The number is checked as soon as its '\r' is in.
 */
static int parse_line_ll(parse_state *ps, size_t at, long long lo, size_t hi, long long *v,
			 size_t *next, const char *too_big, const char *bad)
{
	size_t cr = find_byte(ps, at, '\r', ps->lim->max_inline);

	if (cr == ps->len) {
		if (ps->len - at > ps->lim->max_inline)
			return parse_fail(ps, PROTO_ERR "%s", too_big);
		return parse_more(ps, sat_add(ps->len, 2));   /* at least "\r\n" */
	}
	if (resp_ll(ps->buf + at + 1, cr - at - 1, v) != 0 || *v < lo ||
	    (*v > 0 && (unsigned long long)*v > hi))
		return parse_fail(ps, PROTO_ERR "%s", bad);
	if (cr + 1 == ps->len)
		return parse_more(ps, sat_add(ps->len, 1));
	if (ps->buf[cr + 1] != '\n')
		return parse_fail(ps, PROTO_ERR "%s", bad);
	*next = cr + 2;
	return RESP_OK;
}

/*
 * Argument i of n, whose "$" line starts at *pos: RESP_OK with argv[i] set
 * and *pos past its "\r\n", RESP_MORE or RESP_ERROR.
 */
static int parse_bulk(parse_state *ps, size_t *pos, size_t i, size_t n)
{
	size_t at = *pos, rest = n - i - 1, rest_min, line_need, start, avail, blen;
	long long ll;
	uint8_t c;
	int rc;

	/* the arguments after this one take at least MIN_ARG_BYTES each */
	rest_min = rest > SIZE_MAX / MIN_ARG_BYTES ? SIZE_MAX : rest * MIN_ARG_BYTES;
	if (at == ps->len)
		return parse_more(ps, sat_add(sat_add(at, MIN_ARG_BYTES), rest_min));
	c = ps->buf[at];
	if (c != '$' && c >= 0x20 && c < 0x7f)
		return parse_fail(ps, PROTO_ERR "expected '$', got '%c'", c);
	if (c != '$')
		return parse_fail(ps, PROTO_ERR "expected '$', got '\\x%02x'", c);
	rc = parse_line_ll(ps, at, 0, ps->lim->max_bulk, &ll, &start, "too big bulk count string",
			   "invalid bulk length");
	if (rc == RESP_MORE) {
		/* the line's bound, then at least the payload's "\r\n" */
		line_need = sat_add(ps->need, 2);
		if (line_need < sat_add(at, MIN_ARG_BYTES))
			line_need = sat_add(at, MIN_ARG_BYTES);
		ps->need = sat_add(line_need, rest_min);
	}
	if (rc != RESP_OK)
		return rc;
	/* The payload and its CRLF, at start; each byte checked once it is in. */
	blen = (size_t)ll;
	avail = ps->len - start;
	if (avail > blen && (ps->buf[start + blen] != '\r' ||
			     (avail - blen > 1 && ps->buf[start + blen + 1] != '\n')))
		return parse_fail(ps, PROTO_ERR "expected CRLF after the bulk string");
	if (avail < blen || avail - blen < 2)
		return parse_more(ps, sat_add(sat_add(start, blen), sat_add(2, rest_min)));
	ps->argv[i] = (resp_arg){ ps->buf + start, blen };
	*pos = start + blen + 2;
	return RESP_OK;
}

/* A request starting with '*'. */
static int parse_multibulk(parse_state *ps, size_t *used)
{
	size_t pos, n;
	long long count;
	int rc;

	rc = parse_line_ll(ps, 0, LLONG_MIN, ps->lim->max_args, &count, &pos,
			   "too big mbulk count string", "invalid multibulk length");
	if (rc != RESP_OK)
		return rc;
	n = count > 0 ? (size_t)count : 0;   /* <= 0: an empty command */
	for (size_t i = 0; i < n; i++)
		if ((rc = parse_bulk(ps, &pos, i, n)) != RESP_OK)
			return rc;
	ps->argc = n;
	*used = pos;
	return RESP_OK;
}

/* --- parsing: inline ---------------------------------------------------------- */

/* The bytes sdssplitargs skips between arguments (C's isspace). */
static bool is_blank(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte "\c" stands for inside double quotes. */
static uint8_t unescape(uint8_t c)
{
	switch (c) {
	case 'n': return '\n';
	case 'r': return '\r';
	case 't': return '\t';
	case 'b': return '\b';
	case 'a': return '\a';
	default: return c;
	}
}

/*
 * The escape or closing quote at p[*i] inside a quoted part (q is '"' or
 * '\''), writing the byte it stands for at out[*w]: true iff it closed the
 * part.  *i is left on the last byte used.
 */
static bool quoted_byte(const uint8_t *p, size_t n, size_t *i, uint8_t q, uint8_t *out,
			size_t *w)
{
	size_t k = *i;
	uint8_t c = p[k];
	int hi = -1, lo = -1;

	if (c == q)
		return true;
	if (c == '\\' && k + 1 < n && q == '\'') {
		if (p[k + 1] == '\'')
			c = p[++k];   /* \' is the one escape of single quotes */
	} else if (c == '\\' && k + 1 < n) {
		if (p[k + 1] == 'x' && k + 3 < n) {
			hi = hex_value(p[k + 2]);
			lo = hex_value(p[k + 3]);
		}
		if (hi >= 0 && lo >= 0) {
			c = (uint8_t)(hi << 4 | lo);
			k += 3;
		} else {
			c = unescape(p[++k]);
		}
	}
	out[(*w)++] = c;
	*i = k;
	return false;
}

/*
 * One argument of the line p[0..n) starting at p[*i] (not a blank),
 * unescaped to out[*w..): 0 with *i past it, or -1 for unbalanced quotes.
 * Each output byte uses at least one input byte, so *w never passes *i.
 */
static int split_one(const uint8_t *p, size_t n, size_t *i, uint8_t *out, size_t *w)
{
	uint8_t q = 0;   /* the open quote, or 0 outside quotes */

	for (; *i < n; (*i)++) {
		if (q == 0) {
			if (is_blank(p[*i]))
				return 0;
			if (p[*i] == '"' || p[*i] == '\'')
				q = p[*i];
			else
				out[(*w)++] = p[*i];
		} else if (quoted_byte(p, n, i, q, out, w)) {
			/* the closing quote ends the argument, before a blank or the end */
			(*i)++;
			return *i == n || is_blank(p[*i]) ? 0 : -1;
		}
	}
	return q == 0 ? 0 : -1;
}

/* A request not starting with '*': one line, split into arguments. */
static int parse_inline(parse_state *ps, uint8_t *scratch, size_t *used)
{
	size_t nl = find_byte(ps, 0, '\n', ps->lim->max_inline), n, i = 0, w = 0, start;

	if (nl == ps->len) {
		if (ps->len > ps->lim->max_inline)
			return parse_fail(ps, PROTO_ERR "too big inline request");
		return parse_more(ps, sat_add(ps->len, 1));
	}
	n = nl > 0 && ps->buf[nl - 1] == '\r' ? nl - 1 : nl;
	for (;;) {
		while (i < n && is_blank(ps->buf[i]))
			i++;
		if (i == n)
			break;
		if (ps->argc == ps->lim->max_args)
			return parse_fail(ps, PROTO_ERR "too many arguments in inline request");
		start = w;
		if (split_one(ps->buf, n, &i, scratch, &w) != 0)
			return parse_fail(ps, PROTO_ERR "unbalanced quotes in request");
		ps->argv[ps->argc++] = (resp_arg){ scratch + start, w - start };
	}
	*used = nl + 1;
	return RESP_OK;
}

int resp_parse(const uint8_t *buf, size_t len, const resp_limits *lim, resp_arg *argv,
	       size_t *argc, uint8_t *scratch, size_t scratchlen, size_t *used, size_t *need,
	       char *err, size_t errlen)
{
	parse_state ps = { buf, len, lim, argv, 0, 0, err, errlen };
	int rc;

	assert(scratchlen >= lim->max_inline);
	(void)scratchlen;
	*used = 0;
	if (len == 0)
		rc = parse_more(&ps, 1);
	else if (buf[0] == '*')
		rc = parse_multibulk(&ps, used);
	else
		rc = parse_inline(&ps, scratch, used);
	if (rc != RESP_OK) {
		*used = 0;
		ps.argc = 0;
	}
	*argc = ps.argc;
	if (need != NULL)
		*need = rc == RESP_MORE ? ps.need : 0;
	return rc;
}

/* --- the output buffer -------------------------------------------------------- */

/* The first allocation: enough for most single replies. */
#define OUT_MIN_CAP 256u

void resp_out_init(resp_out *o)
{
	*o = (resp_out){ NULL, 0, 0, false };
}

void resp_out_free(resp_out *o)
{
	free(o->p);
	resp_out_init(o);
}

void resp_out_reset(resp_out *o)
{
	o->len = 0;
	o->failed = false;
}

int resp_out_reserve(resp_out *o, size_t n)
{
	size_t want, cap;
	uint8_t *p;

	if (o->failed)
		return -ENOMEM;
	if (o->cap - o->len >= n)
		return 0;
	if (n > SIZE_MAX - o->len)
		goto out_failed;
	want = o->len + n;
	/* Doubling keeps the copies linear in the bytes written. */
	cap = o->cap > SIZE_MAX / 2 ? SIZE_MAX : o->cap * 2;
	if (cap < OUT_MIN_CAP)
		cap = OUT_MIN_CAP;
	if (cap < want)
		cap = want;
	if ((p = realloc(o->p, cap)) == NULL)
		goto out_failed;
	o->p = p;
	o->cap = cap;
	return 0;

out_failed:
	o->failed = true;
	return -ENOMEM;
}

/* Append p[0..n). */
static void put(resp_out *o, const void *p, size_t n)
{
	if (n == 0 || resp_out_reserve(o, n) != 0)
		return;
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void put_fmt(resp_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Append a short formatted header line (at most 63 characters). */
static void put_fmt(resp_out *o, const char *fmt, ...)
{
	char line[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert(n > 0 && (size_t)n < sizeof(line));
	put(o, line, (size_t)n);
}

/* Append p[0..n) with each '\r' and '\n' as a space: the text of a line. */
static void put_line_text(resp_out *o, const void *p, size_t n)
{
	const uint8_t *s = p;

	if (n == 0 || resp_out_reserve(o, n) != 0)
		return;
	for (size_t i = 0; i < n; i++)
		o->p[o->len + i] = s[i] == '\r' || s[i] == '\n' ? ' ' : s[i];
	o->len += n;
}

/* --- replies ------------------------------------------------------------------ */

static bool resp3(int proto)
{
	assert(proto == 2 || proto == 3);
	return proto == 3;
}

void resp_simple(resp_out *o, const char *s)
{
	put(o, "+", 1);
	put_line_text(o, s, strlen(s));
	put(o, "\r\n", 2);
}

void resp_error(resp_out *o, const char *fmt, ...)
{
	char text[RESP_ERROR_MAX + 1];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	put(o, "-", 1);
	put_line_text(o, text, (size_t)n < RESP_ERROR_MAX ? (size_t)n : RESP_ERROR_MAX);
	put(o, "\r\n", 2);
}

void resp_int(resp_out *o, long long v)
{
	put_fmt(o, ":%lld\r\n", v);
}

void resp_bulk(resp_out *o, const void *p, size_t len)
{
	put_fmt(o, "$%zu\r\n", len);
	put(o, p, len);
	put(o, "\r\n", 2);
}

void resp_null(resp_out *o, int proto)
{
	if (resp3(proto))
		put(o, "_\r\n", 3);
	else
		put(o, "$-1\r\n", 5);
}

void resp_null_array(resp_out *o, int proto)
{
	if (resp3(proto))
		put(o, "_\r\n", 3);
	else
		put(o, "*-1\r\n", 5);
}

void resp_array(resp_out *o, size_t n)
{
	put_fmt(o, "*%zu\r\n", n);
}

void resp_map(resp_out *o, size_t n, int proto)
{
	if (resp3(proto))
		put_fmt(o, "%%%zu\r\n", n);
	else
		put_fmt(o, "*%llu\r\n", 2ull * n);
}

void resp_set(resp_out *o, size_t n, int proto)
{
	put_fmt(o, resp3(proto) ? "~%zu\r\n" : "*%zu\r\n", n);
}

void resp_bool(resp_out *o, bool v, int proto)
{
	if (resp3(proto))
		put(o, v ? "#t\r\n" : "#f\r\n", 4);
	else
		put(o, v ? ":1\r\n" : ":0\r\n", 4);
}

void resp_verbatim(resp_out *o, const char *fmt3, const void *p, size_t len, int proto)
{
	if (!resp3(proto)) {
		resp_bulk(o, p, len);
		return;
	}
	assert(strlen(fmt3) == 3);
	put_fmt(o, "=%zu\r\n%.3s:", len + 4, fmt3);
	put(o, p, len);
	put(o, "\r\n", 2);
}

void resp_request(resp_out *o, const resp_arg *argv, size_t argc)
{
	resp_array(o, argc);
	for (size_t i = 0; i < argc; i++)
		resp_bulk(o, argv[i].p, argv[i].len);
}

/* How much of the command's name and of its arguments Redis quotes. */
#define UNKNOWN_QUOTED 128u

void resp_unknown_command(resp_out *o, const resp_arg *argv, size_t argc)
{
	static const char head[] = "-ERR unknown command '";
	static const char mid[] = "', with args beginning with: ";
	size_t shown = 0, cut;

	assert(argc >= 1);
	put(o, head, sizeof(head) - 1);
	put_line_text(o, argv[0].p, argv[0].len < UNKNOWN_QUOTED ? argv[0].len : UNKNOWN_QUOTED);
	put(o, mid, sizeof(mid) - 1);
	for (size_t i = 1; i < argc && shown < UNKNOWN_QUOTED; i++) {
		cut = argv[i].len < UNKNOWN_QUOTED - shown ? argv[i].len : UNKNOWN_QUOTED - shown;
		put(o, "'", 1);
		put_line_text(o, argv[i].p, cut);
		put(o, "' ", 2);
		shown += cut + 3;
	}
	put(o, "\r\n", 2);
}
