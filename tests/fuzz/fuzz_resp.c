#include "config.h"
/*
 * fuzz_resp.c -- libFuzzer harness for the Redis protocol codec
 * (src/respcodec.c): the input is what a client sent on one connection,
 * parsed request after request as the Redis face will, until the parser
 * wants more bytes or refuses.
 *
 * The input is parsed from an exact-size heap copy, so a read past its end
 * is an ASan report; the limits are small (RESP_FUZZ_* below) so that short
 * inputs cross each of them: 65 arguments or a "$4097" line are a few
 * bytes, and an inline line of 257 bytes is within the lengths a minute's
 * run tries (libFuzzer lengthens its inputs slowly: after 60 s they are a
 * few hundred bytes, so a 1024-byte line would seldom be reached).  Besides "no crash, no sanitizer report", the
 * properties:
 *   - every result is RESP_OK, RESP_MORE or RESP_ERROR; only RESP_OK
 *     consumes or gives arguments; need is past what was given on
 *     RESP_MORE and 0 otherwise;
 *   - RESP_OK takes 0 < used <= the bytes left, ending in '\n' (an inline
 *     line, which has no '\n' before it) or "\r\n" (multibulk); at most
 *     max_args arguments, each inside the request's bytes (multibulk, at
 *     most max_bulk long) or inside scratch (inline, at most max_inline);
 *   - each proper prefix of a request that parsed is RESP_MORE with a need
 *     past the prefix and within the request: the bound is a true lower
 *     bound, and nothing is refused early that the whole accepts;
 *   - a request that parsed, written with resp_request, parses back to the
 *     same arguments, byte for byte, taking exactly the encoding;
 *   - a refusal's text is one of the documented ones, NUL-terminated, and
 *     cut cleanly into a short err buffer;
 *   - resp_unknown_command on any parsed command is one line of at most
 *     the documented length; resp_bulk of the input is its exact framing.
 * A broken property abort()s, which libFuzzer reports as a crash.
 *
 * Build: `make fuzz` (rules in tests/fuzz/resp.inc), or by hand:
 *   clang -fsanitize=fuzzer,address,undefined -g -O1 -std=c11 -I. -Isrc \
 *     tests/fuzz/fuzz_resp.c src/respcodec.c
 * Seeds: tests/fuzz/corpus/resp/: inline and quoted lines, multibulk
 * commands, pipelines, empty lines, and requests one step from valid
 * (bad lengths, truncations).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "respcodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

#define RESP_FUZZ_ARGS   64u
#define RESP_FUZZ_BULK   4096u
#define RESP_FUZZ_INLINE 256u

static const resp_limits lim = {
	.max_args = RESP_FUZZ_ARGS,
	.max_bulk = RESP_FUZZ_BULK,
	.max_inline = RESP_FUZZ_INLINE,
};

/* The texts resp_parse may give ("expected '$'" is followed by the byte). */
static const char *const known_errors[] = {
	"ERR Protocol error: invalid multibulk length",
	"ERR Protocol error: too big mbulk count string",
	"ERR Protocol error: invalid bulk length",
	"ERR Protocol error: too big bulk count string",
	"ERR Protocol error: expected CRLF after the bulk string",
	"ERR Protocol error: too big inline request",
	"ERR Protocol error: unbalanced quotes in request",
	"ERR Protocol error: too many arguments in inline request",
};
static const char expected_dollar[] = "ERR Protocol error: expected '$', got '";

/* Longest resp_unknown_command line: "-ERR unknown command '", 128 bytes
 * of name, "', with args beginning with: ", 131 of args, "\r\n". */
#define UNKNOWN_MAX (22u + 128u + 29u + 131u + 2u)

/* An exact-size heap copy of p[0..n) (1 byte for n == 0, never read). */
static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	CHECK(c != NULL);
	if (n > 0)
		memcpy(c, p, n);
	return c;
}

/* True iff [p, p + n) lies within [base, base + size). */
static bool within(const uint8_t *p, size_t n, const uint8_t *base, size_t size)
{
	return p >= base && n <= size && (size_t)(p - base) <= size - n;
}

/* One of the documented texts. */
static bool known_error(const char *err)
{
	for (size_t i = 0; i < sizeof(known_errors) / sizeof(known_errors[0]); i++)
		if (strcmp(err, known_errors[i]) == 0)
			return true;
	return strncmp(err, expected_dollar, sizeof(expected_dollar) - 1) == 0 &&
	       err[strlen(err) - 1] == '\'';
}

/* The refusal of p[0..n), again into an err buffer of the exact size k
 * (1..23): the same text, cut and terminated (ASan sees a write past it). */
static void check_short_err(const uint8_t *p, size_t n, const char *full)
{
	static resp_arg argv[RESP_FUZZ_ARGS];
	static uint8_t scratch[RESP_FUZZ_INLINE];
	size_t k = n % 23 + 1, argc, used;
	char *err = malloc(k);

	CHECK(err != NULL);
	CHECK(resp_parse(p, n, &lim, argv, &argc, scratch, sizeof(scratch), &used, NULL, err,
			 k) == RESP_ERROR);
	CHECK(memchr(err, '\0', k) != NULL);
	CHECK(strncmp(err, full, k - 1) == 0);
	free(err);
}

/* Each proper prefix of the request p[0..used), from its own exact copy,
 * wants more, and a need within the request.  A few prefixes, not all:
 * the empty one, the middle, and the last byte missing. */
static void check_prefixes(const uint8_t *p, size_t used)
{
	static resp_arg argv[RESP_FUZZ_ARGS];
	static uint8_t scratch[RESP_FUZZ_INLINE];
	size_t ks[3] = { 0, used / 2, used - 1 }, argc, n, need;
	uint8_t *c;

	for (size_t i = 0; i < 3; i++) {
		c = copy(p, ks[i]);
		CHECK(resp_parse(c, ks[i], &lim, argv, &argc, scratch, sizeof(scratch), &n, &need,
				 NULL, 0) == RESP_MORE);
		CHECK(argc == 0 && n == 0 && need > ks[i] && need <= used);
		free(c);
	}
}

/* argv[0..argc) as a multibulk request parses back to itself. */
static void check_round_trip(resp_out *o, const resp_arg *argv, size_t argc)
{
	static resp_arg back[RESP_FUZZ_ARGS];
	static uint8_t scratch[RESP_FUZZ_INLINE];
	size_t n, used, need;
	char err[RESP_PARSE_ERR_MAX];
	uint8_t *c;

	resp_out_reset(o);
	resp_request(o, argv, argc);
	CHECK(!o->failed);
	c = copy(o->p, o->len);
	CHECK(resp_parse(c, o->len, &lim, back, &n, scratch, sizeof(scratch), &used, &need, err,
			 sizeof(err)) == RESP_OK);
	CHECK(used == o->len && n == argc);
	for (size_t i = 0; i < argc; i++) {
		CHECK(back[i].len == argv[i].len);
		CHECK(argv[i].len == 0 || memcmp(back[i].p, argv[i].p, argv[i].len) == 0);
		CHECK(within(back[i].p, back[i].len, c, o->len));
	}
	free(c);
}

/* Redis's unknown-command error for the command: one line, bounded. */
static void check_unknown_command(resp_out *o, const resp_arg *argv, size_t argc)
{
	static const char head[] = "-ERR unknown command '";

	if (argc == 0)
		return;
	resp_out_reset(o);
	resp_unknown_command(o, argv, argc);
	CHECK(!o->failed && o->len <= UNKNOWN_MAX);
	CHECK(memcmp(o->p, head, sizeof(head) - 1) == 0);
	CHECK(o->p[o->len - 2] == '\r' && o->p[o->len - 1] == '\n');
	for (size_t i = 0; i + 2 < o->len; i++)
		CHECK(o->p[i] != '\r' && o->p[i] != '\n');
}

/* The arguments of the request p[0..used) that parsed. */
static void check_args(const uint8_t *p, size_t used, const resp_arg *argv, size_t argc,
		       const uint8_t *scratch)
{
	bool multibulk = p[0] == '*';

	CHECK(argc <= RESP_FUZZ_ARGS);
	if (multibulk) {
		CHECK(used >= 4 && p[used - 2] == '\r' && p[used - 1] == '\n');
	} else {
		CHECK(p[used - 1] == '\n' && memchr(p, '\n', used - 1) == NULL);
		CHECK(used - 1 <= RESP_FUZZ_INLINE);
	}
	for (size_t i = 0; i < argc; i++) {
		if (multibulk) {
			CHECK(argv[i].len <= RESP_FUZZ_BULK);
			CHECK(within(argv[i].p, argv[i].len, p, used));
		} else {
			CHECK(argv[i].len < used);
			CHECK(within(argv[i].p, argv[i].len, scratch, RESP_FUZZ_INLINE));
		}
	}
}

/* resp_bulk frames any bytes exactly. */
static void check_bulk(resp_out *o, const uint8_t *data, size_t size)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "$%zu\r\n", size);

	resp_out_reset(o);
	resp_bulk(o, data, size);
	CHECK(!o->failed && o->len == (size_t)n + size + 2);
	CHECK(memcmp(o->p, head, (size_t)n) == 0);
	CHECK(size == 0 || memcmp(o->p + n, data, size) == 0);
	CHECK(memcmp(o->p + n + size, "\r\n", 2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static resp_arg argv[RESP_FUZZ_ARGS];
	static uint8_t scratch[RESP_FUZZ_INLINE];
	uint8_t *buf = copy(data, size);
	size_t pos = 0, argc, used, need, left;
	char err[RESP_PARSE_ERR_MAX];
	resp_out o;
	int rc;

	resp_out_init(&o);
	check_bulk(&o, data, size);
	for (;;) {
		left = size - pos;
		err[0] = '\0';
		rc = resp_parse(buf + pos, left, &lim, argv, &argc, scratch, sizeof(scratch), &used,
				&need, err, sizeof(err));
		if (rc == RESP_MORE) {
			CHECK(argc == 0 && used == 0 && need > left);
			break;
		}
		if (rc == RESP_ERROR) {
			CHECK(argc == 0 && used == 0 && need == 0);
			CHECK(memchr(err, '\0', sizeof(err)) != NULL && known_error(err));
			check_short_err(buf + pos, left, err);
			break;
		}
		CHECK(rc == RESP_OK && need == 0);
		CHECK(used > 0 && used <= left);
		check_args(buf + pos, used, argv, argc, scratch);
		check_unknown_command(&o, argv, argc);
		check_round_trip(&o, argv, argc);
		check_prefixes(buf + pos, used);
		pos += used;
	}
	resp_out_free(&o);
	free(buf);
	return 0;
}
