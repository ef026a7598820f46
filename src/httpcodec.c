/*
 * httpcodec.c -- percent-decoding, the /kv query and base64 of httpcodec.h.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dkv_config.h"
#include "error.h"
#include "httpcodec.h"

/* --- messages ------------------------------------------------------------- */

/* Most input bytes a message quotes, and the room they take there: each
 * byte at most 4 characters (\xNN), then "..." and the NUL. */
#define SHOWN_BYTES 40u
#define SHOWN_MAX   (SHOWN_BYTES * 4 + 4)

/* Put rc's message in err (when there is room) and return rc. */
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* p[0..n) as a message quotes it, in buf: at most SHOWN_BYTES bytes,
 * control and non-ASCII bytes, '"' and '\' as \xNN (so that the quotes
 * around it are unambiguous), "..." when cut. */
static const char *shown(char buf[SHOWN_MAX], const uint8_t *p, size_t n)
{
	size_t i, k = 0;

	for (i = 0; i < n && i < SHOWN_BYTES; i++) {
		bool plain = p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\';

		k += (size_t)snprintf(buf + k, SHOWN_MAX - k, plain ? "%c" : "\\x%02x", p[i]);
	}
	snprintf(buf + k, SHOWN_MAX - k, "%s", i < n ? "..." : "");
	return buf;
}

/* --- percent-decoding ------------------------------------------------------ */

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

/*
 * The decoding of http_pct_decode, without the message: on DKV_EINVAL *bad
 * is the offset of the '%' that starts no escape.  The first problem met
 * decides the code.  Output index <= input index throughout, and each
 * input byte is read before the output byte that may overwrite it is
 * written, so out may be s.
 */
static int pct_decode(const uint8_t *s, size_t len, bool plus_is_space, uint8_t *out, size_t cap,
		      size_t *outlen, size_t *bad)
{
	size_t i = 0, n = 0;
	uint8_t c;
	int hi, lo;

	*outlen = 0;
	while (i < len) {
		c = s[i];
		if (c == '%') {
			hi = len - i > 1 ? hex_value(s[i + 1]) : -1;
			lo = len - i > 2 ? hex_value(s[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				*bad = i;
				return DKV_EINVAL;
			}
			c = (uint8_t)(hi << 4 | lo);
			i += 3;
		} else {
			if (c == '+' && plus_is_space)
				c = ' ';
			i++;
		}
		if (n == cap)
			return DKV_ETOOBIG;
		out[n++] = c;
	}
	*outlen = n;
	return 0;
}

int http_pct_decode(const char *s, size_t len, bool plus_is_space, uint8_t *out, size_t cap,
		    size_t *outlen, char *err, size_t errlen)
{
	size_t bad = 0;
	int rc;

	rc = pct_decode((const uint8_t *)s, len, plus_is_space, out, cap, outlen, &bad);
	if (rc == DKV_EINVAL)
		return fail(rc, err, errlen, "bad percent escape at byte %zu", bad);
	if (rc == DKV_ETOOBIG)
		return fail(rc, err, errlen, "decoded value longer than %zu bytes", cap);
	return 0;
}

/* --- the /kv query ---------------------------------------------------------- */

/* True iff s[0..len) is the word w. */
static bool is_word(const uint8_t *s, size_t len, const char *w)
{
	return strlen(w) == len && memcmp(s, w, len) == 0;
}

/* A decimal number 1..max: digits only, the first not '0'.  More than 10
 * digits is past any uint32_t max, so the sum cannot overflow. */
static bool parse_count(const uint8_t *s, size_t len, uint32_t max, uint32_t *v)
{
	uint64_t x = 0;

	if (len == 0 || len > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (x > max)
		return false;
	*v = (uint32_t)x;
	return true;
}

static const struct {
	const char *word;
	int32_t q;
} quorum_words[] = {
	{ "one", DKV_QUORUM_ONE },
	{ "quorum", DKV_QUORUM_QUORUM },
	{ "all", DKV_QUORUM_ALL },
	{ "default", 0 },
};

int http_quorum_word(const char *s, size_t len, int32_t *q)
{
	const uint8_t *p = (const uint8_t *)s;
	uint32_t n;

	for (size_t i = 0; i < sizeof(quorum_words) / sizeof(quorum_words[0]); i++) {
		if (is_word(p, len, quorum_words[i].word)) {
			*q = quorum_words[i].q;
			return 0;
		}
	}
	if (!parse_count(p, len, DKV_CONFIG_N_MAX, &n))
		return DKV_EINVAL;
	*q = (int32_t)n;
	return 0;
}

/* The parameters, in the order of the fields of proto_opts they set. */
static const char *const param_names[] = { "r", "w", "pr", "pw", "timeout", "ttl" };
#define NPARAMS   (sizeof(param_names) / sizeof(param_names[0]))
#define P_TIMEOUT 4u
#define P_TTL     5u
#define TTL_MAX_S ((uint32_t)(PROTO_MAX_TTL_MS / 1000))

static int param_index(const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < NPARAMS; i++)
		if (is_word(name, len, param_names[i]))
			return (int)i;
	return -1;
}

/* What parameter i allows, for a message. */
static const char *allowed(size_t i, char *buf, size_t len)
{
	if (i == P_TIMEOUT)
		snprintf(buf, len, "milliseconds 1..%u", HTTP_TIMEOUT_MAX_MS);
	else if (i == P_TTL)
		snprintf(buf, len, "seconds 1..%u", TTL_MAX_S);
	else
		snprintf(buf, len, "1..%d, one, quorum, all or default", DKV_CONFIG_N_MAX);
	return buf;
}

/* Set parameter i of *o from its decoded value; false if out of range. */
static bool set_param(proto_opts *o, size_t i, const uint8_t *v, size_t len)
{
	int32_t *fields[] = { &o->r, &o->w, &o->pr, &o->pw };

	if (i == P_TIMEOUT)
		return parse_count(v, len, HTTP_TIMEOUT_MAX_MS, &o->timeout_ms);
	if (i == P_TTL) {
		uint32_t s;

		if (!parse_count(v, len, TTL_MAX_S, &s))
			return false;
		o->ttl_ms = (uint64_t)s * 1000u;
		return true;
	}
	return http_quorum_word((const char *)v, len, fields[i]) == 0;
}

/* Non-empty '&'-separated segments of q[0..len). */
static size_t count_segments(const uint8_t *q, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += q[i] != '&' && (i + 1 == len || q[i + 1] == '&');
	return n;
}

/*
 * Read the segment q[b..e) (non-empty, no '&') into *o, marking its
 * parameter in seen[].  buf (HTTP_QUERY_MAX bytes) holds the decoded name,
 * then the decoded value; offsets in messages count from the query's start.
 */
static int one_param(const uint8_t *q, size_t b, size_t e, uint8_t *buf, proto_opts *o,
		     bool seen[NPARAMS], char *err, size_t errlen)
{
	const uint8_t *eq = memchr(q + b, '=', e - b);
	size_t nend = eq != NULL ? (size_t)(eq - q) : e;
	size_t nlen, vlen, bad = 0;
	char sv[SHOWN_MAX], want[64];
	const char *name;
	int i;

	if (pct_decode(q + b, nend - b, true, buf, HTTP_QUERY_MAX, &nlen, &bad) != 0)
		return fail(DKV_EINVAL, err, errlen,
			    "parameter name \"%s\": bad percent escape at byte %zu of the query",
			    shown(sv, q + b, nend - b), b + bad);
	if ((i = param_index(buf, nlen)) < 0)
		return fail(DKV_EINVAL, err, errlen,
			    "unknown parameter \"%s\" (known: r, w, pr, pw, timeout, ttl)",
			    shown(sv, buf, nlen));
	name = param_names[i];
	if (seen[i])
		return fail(DKV_EINVAL, err, errlen, "parameter %s given twice", name);
	seen[i] = true;
	if (eq == NULL)
		return fail(DKV_EINVAL, err, errlen, "parameter %s: no '=' and value (want %s)",
			    name, allowed((size_t)i, want, sizeof(want)));
	if (pct_decode(eq + 1, e - nend - 1, true, buf, HTTP_QUERY_MAX, &vlen, &bad) != 0)
		return fail(DKV_EINVAL, err, errlen,
			    "parameter %s: bad percent escape at byte %zu of the query", name,
			    nend + 1 + bad);
	if (vlen == 0)
		return fail(DKV_EINVAL, err, errlen, "parameter %s: empty value (want %s)", name,
			    allowed((size_t)i, want, sizeof(want)));
	if (!set_param(o, (size_t)i, buf, vlen))
		return fail(DKV_EINVAL, err, errlen, "parameter %s: \"%s\" is not %s", name,
			    shown(sv, buf, vlen), allowed((size_t)i, want, sizeof(want)));
	return 0;
}

int http_kv_query(const char *query, size_t len, proto_opts *o, char *err, size_t errlen)
{
	const uint8_t *q = (const uint8_t *)query;
	uint8_t buf[HTTP_QUERY_MAX];
	bool seen[NPARAMS] = { false };
	proto_opts t = *o;
	size_t b = 0, e;
	int rc;

	if (len > HTTP_QUERY_MAX)
		return fail(DKV_EINVAL, err, errlen, "query too long: %zu bytes, at most %u", len,
			    HTTP_QUERY_MAX);
	if (count_segments(q, len) > HTTP_QUERY_PARAMS_MAX)
		return fail(DKV_EINVAL, err, errlen, "query too long: more than %u parameters",
			    HTTP_QUERY_PARAMS_MAX);
	for (; b < len; b = e + 1) {
		const uint8_t *amp = memchr(q + b, '&', len - b);

		e = amp != NULL ? (size_t)(amp - q) : len;
		if (e > b && (rc = one_param(q, b, e, buf, &t, seen, err, errlen)) != 0)
			return rc;
	}
	*o = t;
	return 0;
}

/* --- base64 ---------------------------------------------------------------- */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* The 6 bits c stands for, or -1 for a byte outside the alphabet ('='
 * and NUL included). */
static int b64_value(uint8_t c)
{
	const char *at = memchr(b64_alphabet, c, 64);

	return at != NULL ? (int)(at - b64_alphabet) : -1;
}

/* The 4 characters of k (1..3) bytes at p: k + 1 symbols, then '='. */
static void b64_quantum(const uint8_t *p, size_t k, char *out)
{
	uint32_t v = 0;

	for (size_t j = 0; j < 3; j++)
		v = v << 8 | (j < k ? p[j] : 0u);
	for (size_t j = 0; j < 4; j++)
		out[j] = j <= k ? b64_alphabet[v >> (18 - 6 * j) & 63] : '=';
}

size_t http_b64_encode(const void *in, size_t len, char *out)
{
	const uint8_t *p = in;
	size_t i, n = 0;

	for (i = 0; i + 3 <= len; i += 3, n += 4)
		b64_quantum(p + i, 3, out + n);
	if (i < len) {
		b64_quantum(p + i, len - i, out + n);
		n += 4;
	}
	out[n] = '\0';
	return n;
}

int http_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t pad = 0, need, n = 0;

	*outlen = 0;
	if (len % 4 != 0)
		return DKV_EINVAL;
	if (len > 0 && p[len - 1] == '=')
		pad = p[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (b64_value(p[i]) < 0)
			return DKV_EINVAL;   /* outside the alphabet, or '=' too early */
	/* The bits of the last symbol that no byte uses must be zero:
	 * 4 of them before "==", 2 before "=". */
	if ((pad == 2 && (b64_value(p[len - 3]) & 15) != 0) ||
	    (pad == 1 && (b64_value(p[len - 2]) & 3) != 0))
		return DKV_EINVAL;
	need = len / 4 * 3 - pad;
	if (need > cap)
		return DKV_ETOOBIG;
	for (size_t i = 0; i < len; i += 4) {
		uint32_t v = 0;

		for (size_t j = 0; j < 4; j++)
			v = v << 6 | (p[i + j] == '=' ? 0u : (uint32_t)b64_value(p[i + j]));
		for (size_t j = 0; j < 3 && n < need; j++)
			out[n++] = (uint8_t)(v >> (16 - 8 * j));
	}
	*outlen = n;
	return 0;
}
