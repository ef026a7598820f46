/*
 * test_httpcodec.c -- src/httpcodec.c: percent-decoding of every byte
 * through an encoder of the test's own, '+' in paths and in queries, bad
 * and truncated escapes with where they are, the output bound, decoding in
 * place; every quorum spelling and its bounds; the /kv query -- each
 * parameter, each refusal and its message (which names the parameter),
 * duplicates, case, leading zeros, the length and count limits, and an
 * opts left whole by a refusal; base64 against RFC 4648's vectors, every
 * byte value, every padded final quantum (accepted iff canonical, and then
 * re-encoded to the same text), and each way to be malformed.
 *
 * Inputs go through copy_exact (testutil.h), so a read one byte past the
 * end is an ASan report in the sanitizer build.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dkv_config.h"
#include "error.h"
#include "httpcodec.h"
#include "proto.h"
#include "testutil.h"

/* --- helpers ----------------------------------------------------------------- */

/* Percent-decode the NUL-terminated s from an exact-size copy; the message
 * goes to err (256 bytes). */
static int pct(const char *s, bool plus, uint8_t *out, size_t cap, size_t *outlen, char *err)
{
	size_t len = strlen(s);
	uint8_t *in = copy_exact(s, len);
	int rc;

	err[0] = '\0';
	rc = http_pct_decode((const char *)in, len, plus, out, cap, outlen, err, 256);
	free(in);
	return rc;
}

/* Decode s (a path segment) and compare with want[0..wantlen). */
static void pct_is(const char *s, bool plus, const char *want)
{
	uint8_t out[256];
	char err[256];
	size_t n = 99;

	cr_assert_eq(pct(s, plus, out, sizeof(out), &n, err), 0, "%s: %s", s, err);
	cr_assert_eq(n, strlen(want), "%s: %zu bytes", s, n);
	cr_assert(memcmp(out, want, n) == 0, "%s decoded wrong", s);
}

/* Decode s, expecting rc and the message want. */
static void pct_fails(const char *s, size_t cap, int rc, const char *want)
{
	uint8_t out[256];
	char err[256];
	size_t n = 99;

	cr_assert_eq(pct(s, false, out, cap, &n, err), rc, "%s", s);
	cr_assert_eq(n, 0, "%s: *outlen is 0 on an error", s);
	cr_assert_str_eq(err, want, "%s", s);
}

/* The test's encoder: every byte that is not a letter or digit as %XX,
 * hex in upper case for even positions, lower for odd ones. */
static size_t pct_encode(const uint8_t *in, size_t len, char *out)
{
	static const char up[] = "0123456789ABCDEF", lo[] = "0123456789abcdef";
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		const char *hex = i % 2 ? lo : up;
		uint8_t c = in[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			out[n++] = (char)c;
			continue;
		}
		out[n++] = '%';
		out[n++] = hex[c >> 4];
		out[n++] = hex[c & 15];
	}
	out[n] = '\0';
	return n;
}

/* Parse the NUL-terminated query q into *o from an exact-size copy. */
static int query(const char *q, proto_opts *o, char *err)
{
	size_t len = strlen(q);
	char *in = (char *)copy_exact(q, len);
	int rc;

	err[0] = '\0';
	rc = http_kv_query(in, len, o, err, 256);
	free(in);
	return rc;
}

/* q is refused with exactly the message want, and leaves *o as it was. */
static void query_fails(const char *q, const char *want)
{
	proto_opts o, before;
	char err[256];

	memset(&o, 0x5a, sizeof(o));
	before = o;
	cr_assert_eq(query(q, &o, err), DKV_EINVAL, "%s accepted", q);
	cr_assert_str_eq(err, want, "%s", q);
	cr_assert(memcmp(&o, &before, sizeof(o)) == 0, "%s: a refusal changed the opts", q);
}

/* q parses, from zeroed opts, to r, w, pr, pw and timeout. */
static void query_is(const char *q, int32_t r, int32_t w, int32_t pr, int32_t pw, uint32_t ms)
{
	proto_opts o = { 0 };
	char err[256];

	cr_assert_eq(query(q, &o, err), 0, "%s: %s", q, err);
	cr_assert_eq(o.r, r, "%s: r %d", q, o.r);
	cr_assert_eq(o.w, w, "%s: w %d", q, o.w);
	cr_assert_eq(o.pr, pr, "%s: pr %d", q, o.pr);
	cr_assert_eq(o.pw, pw, "%s: pw %d", q, o.pw);
	cr_assert_eq(o.timeout_ms, ms, "%s: timeout %u", q, o.timeout_ms);
	cr_assert(!o.replace && !o.siblings);
}

/* Decode the NUL-terminated base64 s from an exact-size copy. */
static int b64(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t *in = copy_exact(s, len);
	int rc = http_b64_decode((const char *)in, len, out, cap, outlen);

	free(in);
	return rc;
}

/* --- percent-decoding ------------------------------------------------------------- */

Test(pct, every_byte_round_trips_through_an_encoder)
{
	uint8_t bytes[256], out[256];
	char enc[3 * 256 + 1], err[256];
	size_t elen, n;

	for (unsigned i = 0; i < 256; i++)
		bytes[i] = (uint8_t)i;
	elen = pct_encode(bytes, 256, enc);
	cr_assert_eq(elen, 62 + 3 * (256 - 62));
	for (int plus = 0; plus < 2; plus++) {
		cr_assert_eq(pct(enc, plus, out, sizeof(out), &n, err), 0, "%s", err);
		cr_assert_eq(n, 256);
		cr_assert(memcmp(out, bytes, 256) == 0, "an escaped byte decoded wrong");
	}
	/* each byte alone, both hex cases */
	for (unsigned i = 0; i < 256; i++) {
		char one[4];

		snprintf(one, sizeof(one), "%%%02X", i);
		cr_assert_eq(pct(one, false, out, 1, &n, err), 0, "%s", one);
		cr_assert(n == 1 && out[0] == i, "%s", one);
		snprintf(one, sizeof(one), "%%%02x", i);
		cr_assert_eq(pct(one, true, out, 1, &n, err), 0, "%s", one);
		cr_assert(n == 1 && out[0] == i, "%s", one);
	}
}

Test(pct, every_byte_but_percent_is_itself)
{
	uint8_t bytes[255], out[255];
	size_t n = 0, len = 0;
	char err[256];

	for (unsigned i = 0; i < 256; i++)
		if (i != '%')
			bytes[len++] = (uint8_t)i;
	cr_assert_eq(http_pct_decode((const char *)bytes, len, false, out, sizeof(out), &n, err,
				     sizeof(err)),
		     0, "%s", err);
	cr_assert(n == len && memcmp(out, bytes, len) == 0, "a plain byte changed (NUL included)");
}

Test(pct, plus_is_a_space_only_in_a_query)
{
	pct_is("a+b%2Bc", false, "a+b+c");
	pct_is("a+b%2Bc", true, "a b+c");
	pct_is("++", true, "  ");
	pct_is("%20", false, " ");
	pct_is("a%2Fb", false, "a/b");   /* %2F is a byte of the key, not a separator */
	pct_is("%25", false, "%");
	pct_is("%2525", false, "%25");   /* decoded once only */
	pct_is("", false, "");
}

Test(pct, a_bad_escape_says_where)
{
	pct_fails("%", 16, DKV_EINVAL, "bad percent escape at byte 0");
	pct_fails("%4", 16, DKV_EINVAL, "bad percent escape at byte 0");
	pct_fails("ab%4", 16, DKV_EINVAL, "bad percent escape at byte 2");
	pct_fails("%4g", 16, DKV_EINVAL, "bad percent escape at byte 0");
	pct_fails("%g4", 16, DKV_EINVAL, "bad percent escape at byte 0");
	pct_fails("%41%", 16, DKV_EINVAL, "bad percent escape at byte 3");
	pct_fails("%41%%41", 16, DKV_EINVAL, "bad percent escape at byte 3");
	pct_fails("a% 1", 16, DKV_EINVAL, "bad percent escape at byte 1");
	pct_fails("%-1", 16, DKV_EINVAL, "bad percent escape at byte 0");
	pct_fails("%0x", 16, DKV_EINVAL, "bad percent escape at byte 0");
}

Test(pct, output_past_cap_is_too_big)
{
	uint8_t out[8];
	char err[256];
	size_t n;

	pct_fails("abc", 2, DKV_ETOOBIG, "decoded value longer than 2 bytes");
	pct_fails("a", 0, DKV_ETOOBIG, "decoded value longer than 0 bytes");
	cr_assert_eq(pct("abc", false, out, 3, &n, err), 0);
	cr_assert_eq(n, 3);
	/* the bound is on the output: six characters, two bytes */
	cr_assert_eq(pct("%41%42", false, out, 2, &n, err), 0);
	cr_assert(n == 2 && memcmp(out, "AB", 2) == 0);
	cr_assert_eq(http_pct_decode(NULL, 0, false, NULL, 0, &n, NULL, 0), 0);
	cr_assert_eq(n, 0);
	/* no err buffer: the code alone */
	cr_assert_eq(http_pct_decode("%", 1, false, out, sizeof(out), &n, NULL, 0), DKV_EINVAL);
}

Test(pct, a_short_err_buffer_is_cut_and_terminated)
{
	uint8_t out[8];
	char *err = malloc(10);
	size_t n;

	cr_assert_not_null(err);
	cr_assert_eq(http_pct_decode("%zz", 3, false, out, sizeof(out), &n, err, 10), DKV_EINVAL);
	cr_assert_str_eq(err, "bad perce");
	free(err);
}

Test(pct, decodes_in_place)
{
	char buf[] = "k%2Fe+y%00%41";
	size_t n;

	cr_assert_eq(http_pct_decode(buf, strlen(buf), true, (uint8_t *)buf, sizeof(buf), &n, NULL, 0),
		     0);
	cr_assert_eq(n, 7);
	cr_assert(memcmp(buf, "k/e y\0A", 7) == 0);
}

/* --- quorum words ------------------------------------------------------------- */

static int qword(const char *s, int32_t *q)
{
	size_t len = strlen(s);
	char *in = (char *)copy_exact(s, len);
	int rc = http_quorum_word(in, len, q);

	free(in);
	return rc;
}

Test(quorum_word, words_and_numbers_1_to_16)
{
	int32_t q;
	char num[8];

	cr_assert(qword("one", &q) == 0 && q == DKV_QUORUM_ONE);
	cr_assert(qword("quorum", &q) == 0 && q == DKV_QUORUM_QUORUM);
	cr_assert(qword("all", &q) == 0 && q == DKV_QUORUM_ALL);
	cr_assert(qword("default", &q) == 0 && q == 0);
	for (int i = 1; i <= DKV_CONFIG_N_MAX; i++) {
		snprintf(num, sizeof(num), "%d", i);
		cr_assert(qword(num, &q) == 0 && q == i, "%s", num);
	}
}

Test(quorum_word, refuses_everything_else_and_leaves_q)
{
	static const char *const bad[] = {
		"", "0", "17", "-1", "+1", "1x", " 1", "1 ", "01", "016", "00", "1.0", "0x1",
		"99999999999999999999", "4294967297", "ONE", "One", "Quorum", "ALL", "Default",
		"on", "ones", "quorum ", "majority", "n", "-3",
	};
	int32_t q;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q = 77;
		cr_assert_eq(qword(bad[i], &q), DKV_EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert_eq(q, 77, "\"%s\" changed *q", bad[i]);
	}
	cr_assert_eq(http_quorum_word("1\0", 2, &q), DKV_EINVAL, "a NUL is a byte of the value");
	cr_assert_eq(http_quorum_word(NULL, 0, &q), DKV_EINVAL);
}

/* --- the /kv query -------------------------------------------------------------- */

Test(kv_query, every_parameter)
{
	query_is("r=1&w=2&pr=3&pw=16&timeout=250", 1, 2, 3, 16, 250);
	query_is("r=one&w=quorum&pr=all&pw=default", DKV_QUORUM_ONE, DKV_QUORUM_QUORUM,
		 DKV_QUORUM_ALL, 0, 0);
	query_is("timeout=1", 0, 0, 0, 0, 1);
	query_is("timeout=3600000", 0, 0, 0, 0, 3600000);
	query_is("pw=2&r=all", DKV_QUORUM_ALL, 0, 0, 2, 0);   /* any order */
}

Test(kv_query, empty_queries_and_segments)
{
	proto_opts o = { .r = 5, .timeout_ms = 9, .replace = true, .siblings = true };
	char err[256];

	query_is("", 0, 0, 0, 0, 0);
	query_is("&", 0, 0, 0, 0, 0);
	query_is("&&&", 0, 0, 0, 0, 0);
	query_is("r=1&&w=2&", 1, 2, 0, 0, 0);
	query_is("&r=1", 1, 0, 0, 0, 0);
	cr_assert_eq(http_kv_query(NULL, 0, &o, err, sizeof(err)), 0);
	/* what the query does not name stays as it was */
	cr_assert_eq(query("w=3", &o, err), 0, "%s", err);
	cr_assert(o.r == 5 && o.w == 3 && o.timeout_ms == 9 && o.replace && o.siblings);
	/* "default" sets 0 over a value */
	cr_assert_eq(query("r=default", &o, err), 0, "%s", err);
	cr_assert_eq(o.r, 0);
}

Test(kv_query, names_and_values_are_percent_decoded)
{
	query_is("%72=%6Fne", DKV_QUORUM_ONE, 0, 0, 0, 0);
	query_is("p%77=%31%36", 0, 0, 0, 16, 0);
	query_is("timeout=%31%30%30", 0, 0, 0, 0, 100);
	/* '=' encoded is part of the name; '&' encoded is part of the value */
	query_fails("r%3D1", "unknown parameter \"r=1\" (known: r, w, pr, pw, timeout, ttl)");
	query_fails("r=1%26w=2", "parameter r: \"1&w=2\" is not 1..16, one, quorum, all or default");
	/* '+' is a space */
	query_fails("r=+1", "parameter r: \" 1\" is not 1..16, one, quorum, all or default");
	query_fails("r+=1", "unknown parameter \"r \" (known: r, w, pr, pw, timeout, ttl)");
	/* a second '=' belongs to the value */
	query_fails("r=1=2", "parameter r: \"1=2\" is not 1..16, one, quorum, all or default");
}

Test(kv_query, bad_escapes_say_where_in_the_query)
{
	query_fails("r=1&w=%4", "parameter w: bad percent escape at byte 6 of the query");
	query_fails("w=%zz", "parameter w: bad percent escape at byte 2 of the query");
	query_fails("r=1&%7=2", "parameter name \"%7\": bad percent escape at byte 4 of the query");
	query_fails("%", "parameter name \"%\": bad percent escape at byte 0 of the query");
}

Test(kv_query, quorum_bounds_and_spellings)
{
	static const char *const bad[] = {
		"0", "17", "-1", "1x", "%201", "01", "016", "ONE", "Quorum", "2.0", "99999999999",
	};
	static const char *const names[] = { "r", "w", "pr", "pw" };
	char q[64], want[160];

	for (size_t n = 0; n < 4; n++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			const char *shown = strcmp(bad[i], "%201") == 0 ? " 1" : bad[i];

			snprintf(q, sizeof(q), "%s=%s", names[n], bad[i]);
			snprintf(want, sizeof(want),
				 "parameter %s: \"%s\" is not 1..16, one, quorum, all or default",
				 names[n], shown);
			query_fails(q, want);
		}
	}
	query_is("r=16&w=1", 16, 1, 0, 0, 0);
}

Test(kv_query, timeout_bounds)
{
	static const char *const bad[] = {
		"0", "3600001", "-1", "01", "1s", "1ms", "1.5", "99999999999", "4294967296", "default",
	};
	char q[64], want[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(q, sizeof(q), "timeout=%s", bad[i]);
		snprintf(want, sizeof(want), "parameter timeout: \"%s\" is not milliseconds 1..3600000",
			 bad[i]);
		query_fails(q, want);
	}
	query_is("timeout=3600000", 0, 0, 0, 0, 3600000);
	query_is("timeout=1", 0, 0, 0, 0, 1);
}

/* ttl: seconds, 1 to 100 years, into ttl_ms. */
Test(kv_query, ttl_bounds)
{
	static const char *const bad[] = { "0", "3153600001", "-1", "01", "1s", "1.5",
					   "4294967296", "" };
	proto_opts o;
	char q[64], want[160], err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(q, sizeof(q), "ttl=%s", bad[i]);
		if (bad[i][0] == '\0')
			snprintf(want, sizeof(want),
				 "parameter ttl: empty value (want seconds 1..3153600000)");
		else
			snprintf(want, sizeof(want),
				 "parameter ttl: \"%s\" is not seconds 1..3153600000", bad[i]);
		query_fails(q, want);
	}
	memset(&o, 0, sizeof(o));
	cr_assert_eq(query("ttl=3153600000&r=2", &o, err), 0, "%s", err);
	cr_assert_eq(o.ttl_ms, UINT64_C(3153600000000));
	cr_assert_eq(o.r, 2);
	memset(&o, 0, sizeof(o));
	cr_assert_eq(query("ttl=1", &o, err), 0, "%s", err);
	cr_assert_eq(o.ttl_ms, 1000);
}

Test(kv_query, truncated_and_missing_values)
{
	query_fails("r", "parameter r: no '=' and value (want 1..16, one, quorum, all or default)");
	query_fails("r=", "parameter r: empty value (want 1..16, one, quorum, all or default)");
	query_fails("w=1&r", "parameter r: no '=' and value (want 1..16, one, quorum, all or default)");
	query_fails("timeout=&r=1", "parameter timeout: empty value (want milliseconds 1..3600000)");
	query_fails("timeout", "parameter timeout: no '=' and value (want milliseconds 1..3600000)");
	query_fails("r=%", "parameter r: bad percent escape at byte 2 of the query");
}

Test(kv_query, unknown_names_and_case)
{
	char q[64], want[128];

	query_fails("x=1", "unknown parameter \"x\" (known: r, w, pr, pw, timeout, ttl)");
	query_fails("R=1", "unknown parameter \"R\" (known: r, w, pr, pw, timeout, ttl)");
	query_fails("Timeout=1", "unknown parameter \"Timeout\" (known: r, w, pr, pw, timeout, ttl)");
	query_fails("timeout_ms=1", "unknown parameter \"timeout_ms\" (known: r, w, pr, pw, timeout, ttl)");
	query_fails("=1", "unknown parameter \"\" (known: r, w, pr, pw, timeout, ttl)");
	query_fails("r=1&replace=1", "unknown parameter \"replace\" (known: r, w, pr, pw, timeout, ttl)");
	/* unknown bytes are shown escaped, and a long name cut */
	query_fails("%00%22%5C%FF=1",
		    "unknown parameter \"\\x00\\x22\\x5c\\xff\" (known: r, w, pr, pw, timeout, ttl)");
	memset(q, 'a', 50);
	strcpy(q + 50, "=1");
	snprintf(want, sizeof(want), "unknown parameter \"%.40s...\" (known: r, w, pr, pw, timeout, ttl)",
		 q);
	query_fails(q, want);
}

Test(kv_query, duplicates_are_refused_whatever_their_spelling)
{
	query_fails("r=1&r=1", "parameter r given twice");
	query_fails("r=1&w=2&r=2", "parameter r given twice");
	query_fails("timeout=5&%74imeout=5", "parameter timeout given twice");
	/* a duplicate is refused even without a value */
	query_fails("pw=1&pw", "parameter pw given twice");
}

/* Every refusal of a known parameter names it. */
Test(kv_query, every_message_names_the_parameter)
{
	static const char *const names[] = { "r", "w", "pr", "pw", "timeout" };
	/* NAME, then this, then NAME=1 again iff `again` */
	static const struct {
		const char *after;
		bool again;
	} forms[] = {
		{ "", false }, { "=", false }, { "=x", false }, { "=%", false }, { "=0", false },
		{ "=1&", true },
	};
	proto_opts o = { 0 };
	char q[64], err[256], want[32];

	for (size_t n = 0; n < 5; n++) {
		snprintf(want, sizeof(want), "parameter %s", names[n]);
		for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
			snprintf(q, sizeof(q), "%s%s%s%s", names[n], forms[f].after,
				 forms[f].again ? names[n] : "", forms[f].again ? "=1" : "");
			cr_assert_eq(query(q, &o, err), DKV_EINVAL, "%s accepted", q);
			cr_assert(strncmp(err, want, strlen(want)) == 0 &&
					  (err[strlen(want)] == ':' || err[strlen(want)] == ' '),
				  "%s: \"%s\" does not name %s", q, err, names[n]);
		}
	}
}

Test(kv_query, limits)
{
	char q[HTTP_QUERY_MAX + 2];
	proto_opts o = { 0 };
	char err[256];
	size_t n = 0;

	/* HTTP_QUERY_MAX bytes: read */
	memset(q, '&', HTTP_QUERY_MAX);
	memcpy(q + HTTP_QUERY_MAX - 3, "r=2", 3);
	q[HTTP_QUERY_MAX] = '\0';
	cr_assert_eq(query(q, &o, err), 0, "%s", err);
	cr_assert_eq(o.r, 2);
	/* one byte more: refused whole */
	q[HTTP_QUERY_MAX] = '&';
	q[HTTP_QUERY_MAX + 1] = '\0';
	query_fails(q, "query too long: 4097 bytes, at most 4096");

	/* 16 segments are read (and the second r refused); 17 are too many,
	 * refused before any is read */
	q[0] = '\0';
	for (unsigned i = 0; i < HTTP_QUERY_PARAMS_MAX; i++)
		n += (size_t)snprintf(q + n, sizeof(q) - n, "r=1&");
	query_fails(q, "parameter r given twice");
	snprintf(q + n, sizeof(q) - n, "r=1");
	query_fails(q, "query too long: more than 16 parameters");
	/* empty segments do not count */
	memset(q, '&', 100);
	snprintf(q + 100, sizeof(q) - 100, "r=1");
	cr_assert_eq(query(q, &o, err), 0, "%s", err);
}

Test(kv_query, a_short_err_buffer_is_cut_and_terminated)
{
	proto_opts o = { 0 };
	char *err = malloc(12);

	cr_assert_not_null(err);
	cr_assert_eq(http_kv_query("r=17", 4, &o, err, 12), DKV_EINVAL);
	cr_assert_str_eq(err, "parameter r");
	cr_assert_eq(http_kv_query("r=17", 4, &o, NULL, 0), DKV_EINVAL);
	free(err);
}

/* --- base64 ----------------------------------------------------------------- */

/* RFC 4648, section 10. */
static const struct {
	const char *bytes, *b64;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

Test(b64, rfc4648_vectors)
{
	char enc[16];
	uint8_t out[16];
	size_t n;

	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		size_t blen = strlen(rfc4648[i].bytes), elen = strlen(rfc4648[i].b64);

		memset(enc, 0x7f, sizeof(enc));
		cr_assert_eq(http_b64_encode(rfc4648[i].bytes, blen, enc), elen);
		cr_assert_eq(HTTP_B64_LEN(blen), elen);
		cr_assert_str_eq(enc, rfc4648[i].b64);
		n = 99;
		cr_assert_eq(b64(rfc4648[i].b64, elen, out, blen, &n), 0, "%s", rfc4648[i].b64);
		cr_assert(n == blen && memcmp(out, rfc4648[i].bytes, n) == 0, "%s", rfc4648[i].b64);
	}
	cr_assert_eq(http_b64_encode(NULL, 0, enc), 0);
	cr_assert_str_eq(enc, "");
	cr_assert_eq(http_b64_decode(NULL, 0, NULL, 0, &n), 0);
	cr_assert_eq(n, 0);
}

Test(b64, every_byte_and_length_round_trips)
{
	uint8_t in[300], out[300];
	char enc[HTTP_B64_LEN(300) + 1];
	uint32_t x = 12345;
	size_t elen, n;

	for (size_t len = 0; len <= sizeof(in); len++) {
		for (size_t i = 0; i < len; i++) {
			x = x * 1103515245u + 12345u;
			in[i] = len == 256 ? (uint8_t)i : (uint8_t)(x >> 16);   /* 256: each byte once */
		}
		elen = http_b64_encode(in, len, enc);
		cr_assert_eq(elen, HTTP_B64_LEN(len));
		cr_assert_eq(strlen(enc), elen);
		cr_assert_eq(b64(enc, elen, out, len, &n), 0, "length %zu", len);
		cr_assert(n == len && (len == 0 || memcmp(out, in, len) == 0), "length %zu", len);
		cr_assert(len <= HTTP_B64_DECODED_MAX(elen));
	}
}

/* Every final quantum with padding: accepted iff the unused bits are zero,
 * and then it encodes back to the same characters. */
Test(b64, every_padded_quantum_is_canonical_or_refused)
{
	static const char al[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned step = test_reps(1, 7);   /* under valgrind, a sample of the 3-symbol ones */
	size_t accepted2 = 0, n;
	char s[5] = "", back[5];
	uint8_t out[3];

	for (unsigned a = 0; a < 64; a++) {
		for (unsigned b = 0; b < 64; b++) {
			snprintf(s, sizeof(s), "%c%c==", al[a], al[b]);
			if (b64(s, 4, out, 3, &n) == 0) {
				accepted2++;
				cr_assert(b % 16 == 0 && n == 1, "%s", s);
				http_b64_encode(out, n, back);
				cr_assert_str_eq(back, s);
			} else {
				cr_assert(b % 16 != 0, "%s refused", s);
			}
			for (unsigned c = 0; c < 64; c += step) {
				snprintf(s, sizeof(s), "%c%c%c=", al[a], al[b], al[c]);
				if (b64(s, 4, out, 3, &n) == 0) {
					cr_assert(c % 4 == 0 && n == 2, "%s", s);
					http_b64_encode(out, n, back);
					cr_assert_str_eq(back, s);
				} else {
					cr_assert(c % 4 != 0, "%s refused", s);
				}
			}
		}
	}
	cr_assert_eq(accepted2, 64 * 4);
}

Test(b64, malformed_is_refused)
{
	static const char *const bad[] = {
		"Z", "Zg", "Zg=", "Zm9vY", "Zg===",   /* not a multiple of 4 */
		"====", "Z===", "=Zg=", "Zg=a", "Zg==Zg==", "Zm9v=Zg=",   /* '=' out of place */
		"Zh==", "Zm9=", "Zm8/", /* ok */ "Zm-_", "Zm9v Zg=", " Zm9", "Zm9\n", "Zm9\t",
		"Zm9.", "Zm9*",   /* outside the alphabet */
	};
	uint8_t out[16];
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = b64(bad[i], strlen(bad[i]), out, sizeof(out), &n);

		if (strcmp(bad[i], "Zm8/") == 0) {   /* a control: this one is valid */
			cr_assert(rc == 0 && n == 3 && memcmp(out, "fo?", 3) == 0);
			continue;
		}
		cr_assert_eq(rc, DKV_EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert_eq(n, 0);
	}
	cr_assert_eq(b64("Zm\0v", 4, out, sizeof(out), &n), DKV_EINVAL, "a NUL");
	cr_assert_eq(b64("Zm\xc3\xa9", 4, out, sizeof(out), &n), DKV_EINVAL, "non-ASCII");
}

Test(b64, output_past_cap_is_too_big)
{
	uint8_t out[8];
	size_t n;

	cr_assert_eq(b64("Zm9vYmFy", 8, out, 5, &n), DKV_ETOOBIG);
	cr_assert_eq(n, 0);
	cr_assert_eq(b64("Zm9vYmFy", 8, out, 6, &n), 0);
	cr_assert(n == 6 && memcmp(out, "foobar", 6) == 0);
	cr_assert_eq(b64("Zg==", 4, out, 0, &n), DKV_ETOOBIG);
	cr_assert_eq(b64("Zg==", 4, out, 1, &n), 0);
	cr_assert(n == 1 && out[0] == 'f');
	/* malformed wins over too big: the input is checked first */
	cr_assert_eq(b64("Zm9v!mFy", 8, out, 1, &n), DKV_EINVAL);
}
