#include "config.h"
/*
 * fuzz_http.c -- libFuzzer harness for the decoders of the HTTP face
 * (src/httpcodec.c): percent-decoding, the /kv query string, quorum words
 * and strict base64.
 *
 * The input is split at '\n' into at most FUZZ_PARTS parts (the rest goes
 * into the last), and each part, and the whole input, goes through every
 * decoder from an exact-size heap copy, so a read past its end is an ASan
 * report.  Besides "no crash, no sanitizer report, only the documented
 * codes", the properties:
 *   - percent-decoding into cap = len never fails for room; a success is
 *     exactly len minus two bytes per '%', gives the input itself (with
 *     '+' as ' ' for a query) when there is no '%', decodes the same in
 *     place, fails with DKV_ETOOBIG for one byte less room, and its output
 *     encoded as all-%XX decodes back to it; a refusal names byte N, a '%'
 *     that starts no escape, with every byte before it decodable;
 *   - a quorum word is -3..16, from at most 7 bytes;
 *   - a query that parses sets r, w, pr, pw to DKV_QUORUM_ALL..16 and the
 *     timeout to 0..HTTP_TIMEOUT_MAX_MS, never touches replace and
 *     siblings, parses the same over opts already set (keeping what it
 *     does not name); a refused one leaves the opts byte for byte, and a
 *     message in err; one longer than HTTP_QUERY_MAX is refused;
 *   - base64 that decodes has a length a multiple of 4, decodes to
 *     3/4 of it less the padding, and encodes back to the very same
 *     characters (the decoder is strict: one spelling per byte string);
 *     one byte less room is DKV_ETOOBIG; and every part, encoded, is
 *     HTTP_B64_LEN characters of the alphabet that decode back to it;
 * and every refusal that takes an err buffer leaves it NUL-terminated
 * within errlen, even a short one.  A broken property abort()s, which
 * libFuzzer reports as a crash.
 *
 * Build: `make fuzz` (rules in tests/fuzz/http.inc), or by hand:
 *   clang -fsanitize=fuzzer,address,undefined -g -O1 -std=c11 -I. -Isrc \
 *     tests/fuzz/fuzz_http.c src/httpcodec.c
 * Seeds: tests/fuzz/corpus/http/: queries, base64 and path segments, valid
 * and one step from valid (bad-*), some in parts.
 */

#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkv_config.h"
#include "error.h"
#include "httpcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

#define FUZZ_PARTS 8
#define ERR_MAX    256

/* An exact-size heap copy of p[0..n) (1 byte for n == 0, never read). */
static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	CHECK(c != NULL);
	if (n > 0)
		memcpy(c, p, n);
	return c;
}

/* err holds a NUL within errlen. */
static bool terminated(const char *err, size_t errlen)
{
	return memchr(err, '\0', errlen) != NULL;
}

/* The same refusal into an err buffer of the exact size k (1..23) leaves
 * it terminated (ASan sees a write past it). */
static void check_short_err_pct(const uint8_t *in, size_t n, bool plus, size_t cap, int want)
{
	size_t k = n % 23 + 1, outlen;
	uint8_t *out = malloc(cap ? cap : 1);
	char *err = malloc(k);

	CHECK(out != NULL && err != NULL);
	CHECK(http_pct_decode((const char *)in, n, plus, out, cap, &outlen, err, k) == want);
	CHECK(terminated(err, k));
	free(err);
	free(out);
}

static void check_pct(const uint8_t *in, size_t n, bool plus)
{
	uint8_t *out = malloc(n ? n : 1), *again, *inplace;
	size_t outlen = 99, len2, pcts = 0, bad;
	char err[ERR_MAX] = "", *enc;
	int rc;

	CHECK(out != NULL);
	for (size_t i = 0; i < n; i++)
		pcts += in[i] == '%';
	rc = http_pct_decode((const char *)in, n, plus, out, n, &outlen, err, sizeof(err));
	CHECK(rc == 0 || rc == DKV_EINVAL);
	if (rc != 0) {
		CHECK(outlen == 0 && terminated(err, sizeof(err)));
		CHECK(sscanf(err, "bad percent escape at byte %zu", &bad) == 1);
		CHECK(bad < n && in[bad] == '%');
		CHECK(n - bad < 3 || !isxdigit(in[bad + 1]) || !isxdigit(in[bad + 2]));
		CHECK(http_pct_decode((const char *)in, bad, plus, out, n, &len2, NULL, 0) == 0);
		check_short_err_pct(in, n, plus, n, DKV_EINVAL);
		free(out);
		return;
	}
	CHECK(outlen == n - 2 * pcts);
	if (pcts == 0)
		for (size_t i = 0; i < n; i++)
			CHECK(out[i] == (plus && in[i] == '+' ? ' ' : in[i]));

	inplace = copy(in, n);
	CHECK(http_pct_decode((const char *)inplace, n, plus, inplace, n, &len2, NULL, 0) == 0);
	CHECK(len2 == outlen && (outlen == 0 || memcmp(inplace, out, outlen) == 0));
	free(inplace);

	if (outlen > 0) {
		CHECK(http_pct_decode((const char *)in, n, plus, out, outlen - 1, &len2, err,
				      sizeof(err)) == DKV_ETOOBIG);
		check_short_err_pct(in, n, plus, outlen - 1, DKV_ETOOBIG);
		/* the ETOOBIG call wrote over out: decode it again */
		CHECK(http_pct_decode((const char *)in, n, plus, out, n, &len2, NULL, 0) == 0);
	}

	/* all-%XX, alternating hex case, decodes back */
	enc = malloc(3 * outlen + 1);
	again = malloc(outlen ? outlen : 1);
	CHECK(enc != NULL && again != NULL);
	for (size_t i = 0; i < outlen; i++)
		snprintf(enc + 3 * i, 4, i % 2 ? "%%%02x" : "%%%02X", out[i]);
	CHECK(http_pct_decode(enc, 3 * outlen, plus, again, outlen, &len2, NULL, 0) == 0);
	CHECK(len2 == outlen && (outlen == 0 || memcmp(again, out, outlen) == 0));
	free(again);
	free(enc);
	free(out);
}

static void check_quorum_word(const uint8_t *in, size_t n)
{
	int32_t q = 1000;
	int rc = http_quorum_word((const char *)in, n, &q);

	CHECK(rc == 0 || rc == DKV_EINVAL);
	if (rc == 0)
		CHECK(n <= 7 && q >= DKV_QUORUM_ALL && q <= DKV_CONFIG_N_MAX);
	else
		CHECK(q == 1000);
}

static bool quorum_ok(int32_t q)
{
	return q >= DKV_QUORUM_ALL && q <= DKV_CONFIG_N_MAX;
}

static void check_query(const uint8_t *in, size_t n)
{
	proto_opts o = { 0 }, set, before;
	char err[ERR_MAX] = "", *small;
	size_t k = n % 23 + 1;
	int rc;

	rc = http_kv_query((const char *)in, n, &o, err, sizeof(err));
	CHECK(rc == 0 || rc == DKV_EINVAL);
	CHECK(n <= HTTP_QUERY_MAX || rc == DKV_EINVAL);
	if (rc != 0) {
		proto_opts zero = { 0 };

		CHECK(memcmp(&o, &zero, sizeof(o)) == 0);
		CHECK(err[0] != '\0' && terminated(err, sizeof(err)));
		small = malloc(k);
		CHECK(small != NULL);
		CHECK(http_kv_query((const char *)in, n, &o, small, k) == DKV_EINVAL);
		CHECK(terminated(small, k));
		free(small);
		return;
	}
	CHECK(quorum_ok(o.r) && quorum_ok(o.w) && quorum_ok(o.pr) && quorum_ok(o.pw));
	CHECK(o.timeout_ms <= HTTP_TIMEOUT_MAX_MS);
	CHECK(!o.replace && !o.siblings);

	/* over opts already set: the same fields, and the rest kept */
	memset(&set, 0x5a, sizeof(set));
	set.replace = set.siblings = true;
	before = set;
	CHECK(http_kv_query((const char *)in, n, &set, err, sizeof(err)) == 0);
	CHECK(set.replace && set.siblings);
	CHECK(set.r == o.r || (o.r == 0 && set.r == before.r));
	CHECK(set.w == o.w || (o.w == 0 && set.w == before.w));
	CHECK(set.pr == o.pr || (o.pr == 0 && set.pr == before.pr));
	CHECK(set.pw == o.pw || (o.pw == 0 && set.pw == before.pw));
	CHECK(set.timeout_ms == o.timeout_ms ||
	      (o.timeout_ms == 0 && set.timeout_ms == before.timeout_ms));
}

static bool in_alphabet(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

static void check_b64(const uint8_t *in, size_t n)
{
	size_t cap = HTTP_B64_DECODED_MAX(n), outlen = 99, elen, len2, pad;
	uint8_t *out = malloc(cap ? cap : 1), *back;
	char *enc;
	int rc;

	CHECK(out != NULL);
	rc = http_b64_decode((const char *)in, n, out, cap, &outlen);
	CHECK(rc == 0 || rc == DKV_EINVAL);
	if (rc == 0) {
		pad = n > 0 && in[n - 1] == '=' ? (in[n - 2] == '=' ? 2 : 1) : 0;
		CHECK(n % 4 == 0 && outlen == n / 4 * 3 - pad && outlen <= n);
		enc = malloc(HTTP_B64_LEN(outlen) + 1);
		CHECK(enc != NULL);
		CHECK(http_b64_encode(out, outlen, enc) == n);
		CHECK(memcmp(enc, in, n) == 0);   /* the one spelling */
		free(enc);
		if (outlen > 0)
			CHECK(http_b64_decode((const char *)in, n, out, outlen - 1, &len2) == DKV_ETOOBIG);
	} else {
		CHECK(outlen == 0);
	}
	free(out);

	/* the part itself, encoded and decoded */
	elen = HTTP_B64_LEN(n);
	enc = malloc(elen + 1);
	back = malloc(n ? n : 1);
	CHECK(enc != NULL && back != NULL);
	CHECK(http_b64_encode(in, n, enc) == elen && enc[elen] == '\0');
	for (size_t i = 0; i < elen; i++)
		CHECK(in_alphabet(enc[i]) || (enc[i] == '=' && i + 2 >= elen));
	CHECK(http_b64_decode(enc, elen, back, n, &len2) == 0);
	CHECK(len2 == n && (n == 0 || memcmp(back, in, n) == 0));
	free(back);
	free(enc);
}

static void check_part(const uint8_t *p, size_t n)
{
	uint8_t *c = copy(p, n);

	check_pct(c, n, false);
	check_pct(c, n, true);
	check_quorum_word(c, n);
	check_query(c, n);
	check_b64(c, n);
	free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t b = 0, parts = 0;

	check_part(data, size);
	while (b < size && parts < FUZZ_PARTS) {
		const uint8_t *nl = memchr(data + b, '\n', size - b);
		size_t e = nl != NULL && parts + 1 < FUZZ_PARTS ? (size_t)(nl - data) : size;

		check_part(data + b, e - b);
		parts++;
		b = e + 1;
	}
	return 0;
}
