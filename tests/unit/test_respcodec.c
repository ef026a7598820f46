/*
 * test_respcodec.c -- src/respcodec.c: inline requests split as Redis's
 * sdssplitargs does (blanks, double quotes with every escape and \xHH,
 * single quotes, a quote inside a word, unbalanced quotes of both kinds, a
 * closing quote before a non-blank, empty lines, the line and argument
 * limits); multibulk requests (binary payloads, $0, counts <= 0, every
 * refusal and its text, each reported as soon as its bytes are in and
 * before a payload arrives, every truncation point, the lower bound of
 * what a partial request needs, pipelines); resp_ll's edges; and every
 * reply writer in RESP2 and RESP3, byte for byte, with Redis's unknown-
 * command error and the output buffer's growth, reuse and sticky failure.
 *
 * Requests go through exact-size heap copies, argv has exactly max_args
 * entries and scratch exactly max_inline bytes, so a read or write one
 * byte past any of them is an ASan report in the sanitizer build.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "respcodec.h"
#include "testutil.h"

/* --- helpers ----------------------------------------------------------------- */

/* The limits most tests use: small, so that each is easy to cross. */
static const resp_limits lim_small = { .max_args = 8, .max_bulk = 64, .max_inline = 64 };

/* A string literal as pointer and length (NULs inside included). */
#define IN(lit) (lit), (sizeof(lit) - 1)
/* A string literal as a resp_arg. */
#define A(lit) { (const uint8_t *)(lit), sizeof(lit) - 1 }
/* An array of resp_arg, and its count. */
#define ARGS(...) ((const resp_arg[]){ __VA_ARGS__ }), \
	(sizeof((const resp_arg[]){ __VA_ARGS__ }) / sizeof(resp_arg))

#define ARG_MAX 512

/* What one resp_parse call gave, with the arguments copied out. */
typedef struct parsed {
	int rc;
	size_t argc, used, need;
	char err[256];
	size_t len[16];             /* length of each argument */
	uint8_t arg[16][ARG_MAX];   /* its bytes */
	bool in_buf[16];            /* true iff it pointed into the input */
	bool in_scratch[16];        /* true iff it pointed into scratch */
} parsed;

/* True iff [p, p + n) lies within [base, base + size). */
static bool within(const uint8_t *p, size_t n, const uint8_t *base, size_t size)
{
	return base != NULL && p >= base && n <= size && (size_t)(p - base) <= size - n;
}

/* Parse in[0..len) with lim from exact-size copies of everything, and
 * check what holds whatever the result. */
static void parse_with(const void *in, size_t len, const resp_limits *lim, parsed *r)
{
	uint8_t *buf = copy_exact(in, len);
	resp_arg *argv = lim->max_args ? calloc(lim->max_args, sizeof(*argv)) : NULL;
	uint8_t *scratch = lim->max_inline ? malloc(lim->max_inline) : NULL;

	memset(r, 0, sizeof(*r));
	r->argc = r->used = r->need = 99;
	r->rc = resp_parse(buf, len, lim, argv, &r->argc, scratch, lim->max_inline, &r->used,
			   &r->need, r->err, sizeof(r->err));
	cr_assert(r->rc == RESP_OK || r->rc == RESP_MORE || r->rc == RESP_ERROR);
	if (r->rc != RESP_OK)
		cr_assert(r->argc == 0 && r->used == 0, "nothing consumed unless RESP_OK");
	if (r->rc == RESP_MORE)
		cr_assert_gt(r->need, len, "need %zu is not past len %zu", r->need, len);
	else
		cr_assert_eq(r->need, 0);
	if (r->rc == RESP_OK) {
		cr_assert(r->used > 0 && r->used <= len, "used %zu of %zu", r->used, len);
		cr_assert_leq(r->argc, lim->max_args);
		cr_assert_leq(r->argc, 16);
	}
	for (size_t i = 0; r->rc == RESP_OK && i < r->argc; i++) {
		r->in_buf[i] = within(argv[i].p, argv[i].len, buf, r->used);
		r->in_scratch[i] = within(argv[i].p, argv[i].len, scratch, lim->max_inline);
		cr_assert(r->in_buf[i] || r->in_scratch[i] || argv[i].len == 0,
			  "argument %zu points outside the input and scratch", i);
		cr_assert_leq(argv[i].len, ARG_MAX);
		r->len[i] = argv[i].len;
		if (argv[i].len > 0)
			memcpy(r->arg[i], argv[i].p, argv[i].len);
	}
	free(scratch);
	free(argv);
	free(buf);
}

/* in parses (lim) to the arguments want[0..n), taking used bytes. */
static void ok_lim(const void *in, size_t len, const resp_limits *lim, size_t used,
		   const resp_arg *want, size_t n)
{
	parsed r;

	parse_with(in, len, lim, &r);
	cr_assert_eq(r.rc, RESP_OK, "\"%.*s\": rc %d (%s)", (int)len, (const char *)in, r.rc, r.err);
	cr_assert_eq(r.used, used, "\"%.*s\": used %zu", (int)len, (const char *)in, r.used);
	cr_assert_eq(r.argc, n, "\"%.*s\": argc %zu", (int)len, (const char *)in, r.argc);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(r.len[i], want[i].len, "\"%.*s\": argument %zu has %zu bytes",
			     (int)len, (const char *)in, i, r.len[i]);
		cr_assert(want[i].len == 0 || memcmp(r.arg[i], want[i].p, want[i].len) == 0,
			  "\"%.*s\": argument %zu is \"%.*s\"", (int)len, (const char *)in, i,
			  (int)r.len[i], (const char *)r.arg[i]);
	}
}

/* The same with lim_small, the whole input taken. */
static void ok_is(const void *in, size_t len, const resp_arg *want, size_t n)
{
	ok_lim(in, len, &lim_small, len, want, n);
}

/* in is refused (lim) with exactly the text want. */
static void fails_lim(const void *in, size_t len, const resp_limits *lim, const char *want)
{
	parsed r;

	parse_with(in, len, lim, &r);
	cr_assert_eq(r.rc, RESP_ERROR, "\"%.*s\" gave %d, not an error", (int)len,
		     (const char *)in, r.rc);
	cr_assert_str_eq(r.err, want, "\"%.*s\"", (int)len, (const char *)in);
}

static void fails_is(const void *in, size_t len, const char *want)
{
	fails_lim(in, len, &lim_small, want);
}

/* in is an incomplete request (lim): RESP_MORE, and its need. */
static size_t more_lim(const void *in, size_t len, const resp_limits *lim)
{
	parsed r;

	parse_with(in, len, lim, &r);
	cr_assert_eq(r.rc, RESP_MORE, "\"%.*s\" gave %d (%s), not RESP_MORE", (int)len,
		     (const char *)in, r.rc, r.err);
	return r.need;
}

static size_t more_is(const void *in, size_t len)
{
	return more_lim(in, len, &lim_small);
}

/* Every proper prefix of the request in[0..len) (which parses whole) is
 * RESP_MORE with a need past the prefix and within the whole. */
static void every_prefix_wants_more(const void *in, size_t len, const resp_limits *lim)
{
	for (size_t k = 0; k < len; k++) {
		size_t need = more_lim(in, k, lim);

		cr_assert(need > k && need <= len, "prefix %zu of %zu: need %zu", k, len, need);
	}
}

/* o holds exactly want[0..n). */
static void out_eq(const resp_out *o, const void *want, size_t n)
{
	cr_assert(!o->failed);
	cr_assert_eq(o->len, n, "%zu bytes written, not %zu: \"%.*s\"", o->len, n, (int)o->len,
		     (const char *)o->p);
	cr_assert(n == 0 || memcmp(o->p, want, n) == 0, "wrote \"%.*s\"", (int)o->len,
		  (const char *)o->p);
}
#define OUT_IS(o, lit) out_eq((o), IN(lit))

/* --- inline requests -------------------------------------------------------- */

Test(inline_req, plain_words)
{
	ok_is(IN("SET key value\r\n"), ARGS(A("SET"), A("key"), A("value")));
	ok_is(IN("PING\r\n"), ARGS(A("PING")));
	ok_is(IN("  GET   k  \r\n"), ARGS(A("GET"), A("k")));
	/* taken literally: no escapes outside quotes */
	ok_is(IN("a\\nb \\x41 \\\r\n"), ARGS(A("a\\nb"), A("\\x41"), A("\\")));
}

Test(inline_req, a_lone_newline_ends_the_line_too)
{
	ok_is(IN("GET k\n"), ARGS(A("GET"), A("k")));
	/* only the '\r' just before '\n' is the line's end; others are blanks */
	ok_is(IN("a\rb\r\r\n"), ARGS(A("a"), A("b")));
}

Test(inline_req, every_blank_separates)
{
	ok_is(IN("a\tb\vc\fd e\rf\n"), ARGS(A("a"), A("b"), A("c"), A("d"), A("e"), A("f")));
	ok_is(IN("\t\v\f a \t\n"), ARGS(A("a")));
}

Test(inline_req, a_nul_is_a_byte_of_the_line)
{
	ok_is(IN("a\0b \0\n"), ARGS(A("a\0b"), A("\0")));
}

Test(inline_req, double_quotes_and_every_escape)
{
	ok_is(IN("SET k \"a b\"\r\n"), ARGS(A("SET"), A("k"), A("a b")));
	ok_is(IN("\"\\n\\r\\t\\b\\a\\\\\\\"\"\n"), ARGS(A("\n\r\t\b\a\\\"")));
	/* any other \c is c */
	ok_is(IN("\"\\z\\'\\0\\ \\x\"\n"), ARGS(A("z'0 x")));
	/* an escaped blank or quote does not end the argument */
	ok_is(IN("\"a\\\" b\" c\n"), ARGS(A("a\" b"), A("c")));
}

Test(inline_req, hex_escapes)
{
	ok_is(IN("\"\\x41\\x6a\\x00\\xff\\xFf\\xA0\"\n"), ARGS(A("Aj\0\xff\xff\xa0")));
	/* not two hex digits: \x is x */
	ok_is(IN("\"\\xZZ\" \"\\x4\" \"\\x4g\"\n"), ARGS(A("xZZ"), A("x4"), A("x4g")));
	/* the digits must be inside the quotes: \x4 then a closing quote */
	fails_is(IN("\"\\x4\"1\n"), "ERR Protocol error: unbalanced quotes in request");
}

Test(inline_req, single_quotes_escape_only_the_quote)
{
	ok_is(IN("'a\\'b\\n\"c' d\n"), ARGS(A("a'b\\n\"c"), A("d")));
	ok_is(IN("'a\\\\b'\n"), ARGS(A("a\\\\b")));
	/* as in Redis: the second backslash escapes the quote, which leaves it open */
	fails_is(IN("'\\\\'\n"), "ERR Protocol error: unbalanced quotes in request");
	ok_is(IN("set \"foo bar\" 'baz qux'\r\n"), ARGS(A("set"), A("foo bar"), A("baz qux")));
}

Test(inline_req, empty_quotes_are_empty_arguments)
{
	ok_is(IN("\"\" ''\n"), ARGS(A(""), A("")));
	ok_is(IN("a \"\"\n"), ARGS(A("a"), A("")));
}

Test(inline_req, a_quote_inside_a_word_opens_a_quoted_part)
{
	/* as sdssplitargs: the part ends the argument when it closes */
	ok_is(IN("ab\"c d\" e\n"), ARGS(A("abc d"), A("e")));
	ok_is(IN("ab'c d'\n"), ARGS(A("abc d")));
	fails_is(IN("ab\"c\"d\n"), "ERR Protocol error: unbalanced quotes in request");
}

Test(inline_req, unbalanced_quotes)
{
	static const char *const bad[] = {
		"\"abc\n", "'abc\n", "\"abc\\\"\n", "'ab\\'\n", "\"\n", "'\n", "a \"b\r\n",
		"\"a\\\n",
		/* a closing quote before anything but a blank or the end */
		"\"a\"b\n", "'a'b\n", "\"a\"\"b\"\n", "'a''b'\n", "\"a\"'b'\n", "\"\"x\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fails_is(bad[i], strlen(bad[i]), "ERR Protocol error: unbalanced quotes in request");
	/* a closing quote before a blank or the end of the line is fine */
	ok_is(IN("\"a\"\tb\n"), ARGS(A("a"), A("b")));
	ok_is(IN("\"a\"\r\n"), ARGS(A("a")));
	ok_is(IN("'a'\n"), ARGS(A("a")));
	ok_is(IN("\"a\"\r\r\n"), ARGS(A("a")));
}

Test(inline_req, empty_and_blank_lines_are_empty_commands)
{
	ok_is(IN("\n"), NULL, 0);
	ok_is(IN("\r\n"), NULL, 0);
	ok_is(IN(" \t \r\n"), NULL, 0);
	/* consumed one at a time, the rest left */
	ok_lim(IN("\r\n\nPING\r\n"), &lim_small, 2, NULL, 0);
}

Test(inline_req, arguments_go_to_scratch)
{
	parsed r;

	parse_with(IN("GET \"k\"\r\n"), &lim_small, &r);
	cr_assert_eq(r.rc, RESP_OK);
	cr_assert(r.in_scratch[0] && r.in_scratch[1]);
}

Test(inline_req, the_line_limit)
{
	const resp_limits lim = { .max_args = 8, .max_bulk = 64, .max_inline = 16 };
	char line[40];

	/* a line of exactly max_inline bytes, then its '\n' */
	memset(line, 'a', sizeof(line));
	line[16] = '\n';
	ok_lim(line, 17, &lim, 17, ARGS(A("aaaaaaaaaaaaaaaa")));
	cr_assert_eq(more_lim(line, 16, &lim), 17);
	/* one byte more before the newline: refused, whether it is in or not */
	line[16] = 'a';
	line[17] = '\n';
	fails_lim(line, 17, &lim, "ERR Protocol error: too big inline request");
	fails_lim(line, 18, &lim, "ERR Protocol error: too big inline request");
	/* the '\r' before '\n' counts as a byte of the line */
	memcpy(line + 15, "\r\n", 2);
	ok_lim(line, 17, &lim, 17, ARGS(A("aaaaaaaaaaaaaaa")));
	/* a longer buffer is fine when the line ends in time */
	memcpy(line, "GET k\n", 6);
	ok_lim(line, sizeof(line), &lim, 6, ARGS(A("GET"), A("k")));
}

Test(inline_req, too_many_arguments)
{
	const resp_limits lim = { .max_args = 3, .max_bulk = 64, .max_inline = 64 };
	const resp_limits none = { .max_args = 0, .max_bulk = 64, .max_inline = 64 };

	ok_lim(IN("a b c\n"), &lim, 6, ARGS(A("a"), A("b"), A("c")));
	ok_lim(IN("a b c   \n"), &lim, 9, ARGS(A("a"), A("b"), A("c")));
	fails_lim(IN("a b c d\n"), &lim, "ERR Protocol error: too many arguments in inline request");
	fails_lim(IN("a\n"), &none, "ERR Protocol error: too many arguments in inline request");
	ok_lim(IN("\n"), &none, 1, NULL, 0);
}

Test(inline_req, truncated)
{
	cr_assert_eq(more_is(IN("GET k")), 6);
	cr_assert_eq(more_is(IN("GET k\r")), 7);
	cr_assert_eq(more_is(IN("\"unclosed")), 10);   /* the quote waits for the line */
	cr_assert_eq(more_is("", 0), 1);
	cr_assert_eq(resp_parse(NULL, 0, &lim_small, NULL, &(size_t){ 0 }, (uint8_t[64]){ 0 }, 64,
				&(size_t){ 0 }, NULL, NULL, 0),
		     RESP_MORE, "need and err may be NULL");
	every_prefix_wants_more(IN("SET \"a b\" 'c'\r\n"), &lim_small);
}

/* --- multibulk requests ----------------------------------------------------- */

Test(multibulk, a_command)
{
	parsed r;

	ok_is(IN("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"),
	      ARGS(A("SET"), A("k"), A("value")));
	parse_with(IN("*1\r\n$4\r\nPING\r\n"), &lim_small, &r);
	cr_assert(r.rc == RESP_OK && r.in_buf[0], "multibulk arguments point into buf");
}

Test(multibulk, binary_payloads)
{
	ok_is(IN("*2\r\n$6\r\na\r\nb\0c\r\n$2\r\n\r\n\r\n"), ARGS(A("a\r\nb\0c"), A("\r\n")));
	ok_is(IN("*1\r\n$3\r\n*1\r\r\n"), ARGS(A("*1\r")));
	ok_is(IN("*1\r\n$4\r\n\"a b\r\n"), ARGS(A("\"a b")));   /* no quoting here */
}

Test(multibulk, empty_bulk)
{
	ok_is(IN("*2\r\n$0\r\n\r\n$1\r\nx\r\n"), ARGS(A(""), A("x")));
}

Test(multibulk, counts_up_to_zero_are_empty_commands)
{
	ok_is(IN("*0\r\n"), NULL, 0);
	ok_is(IN("*-1\r\n"), NULL, 0);
	ok_is(IN("*-9223372036854775808\r\n"), NULL, 0);
	ok_lim(IN("*0\r\n*1\r\n"), &lim_small, 4, NULL, 0);
}

Test(multibulk, the_argument_count_limit)
{
	const resp_limits none = { .max_args = 0, .max_bulk = 64, .max_inline = 64 };

	ok_is(IN("*8\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n"
		 "$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n$1\r\n8\r\n"),
	      ARGS(A("1"), A("2"), A("3"), A("4"), A("5"), A("6"), A("7"), A("8")));
	fails_is(IN("*9\r\n"), "ERR Protocol error: invalid multibulk length");
	fails_is(IN("*9223372036854775807\r\n"), "ERR Protocol error: invalid multibulk length");
	fails_lim(IN("*1\r\n"), &none, "ERR Protocol error: invalid multibulk length");
	ok_lim(IN("*0\r\n"), &none, 4, NULL, 0);
}

Test(multibulk, a_count_that_is_not_a_number)
{
	static const char *const bad[] = {
		"*\r\n", "*x\r\n", "*1 \r\n", "* 1\r\n", "*+1\r\n", "*01\r\n", "*-0\r\n", "*1x\r\n",
		"*-\r\n", "*99999999999999999999\r\n", "*9223372036854775808\r\n",
		"*-9223372036854775809\r\n",
		/* its '\r' not followed by '\n' */
		"*1\rx", "*1\r\r\n", "*0\r\r",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fails_is(bad[i], strlen(bad[i]), "ERR Protocol error: invalid multibulk length");
	/* refused once its '\r' is in, before the '\n' */
	fails_is(IN("*x\r"), "ERR Protocol error: invalid multibulk length");
	fails_is(IN("*9\r"), "ERR Protocol error: invalid multibulk length");
}

Test(multibulk, a_count_line_past_the_limit)
{
	const resp_limits lim = { .max_args = 8, .max_bulk = 64, .max_inline = 8 };

	/* "*" and 7 digits are 8 bytes: wait; 9 bytes without '\r': refuse */
	cr_assert_eq(more_lim(IN("*0000000"), &lim), 10);
	fails_lim(IN("*00000000"), &lim, "ERR Protocol error: too big mbulk count string");
	fails_lim(IN("*00000000\r\n"), &lim, "ERR Protocol error: too big mbulk count string");
	/* a line of 8 bytes is read (and this one is then not a number) */
	fails_lim(IN("*0000000\r\n"), &lim, "ERR Protocol error: invalid multibulk length");
	ok_lim(IN("*-999999\r\n"), &lim, 10, NULL, 0);
}

Test(multibulk, an_argument_not_starting_with_dollar)
{
	fails_is(IN("*1\r\n:5\r\n"), "ERR Protocol error: expected '$', got ':'");
	fails_is(IN("*2\r\n$1\r\na\r\n*1\r\n"), "ERR Protocol error: expected '$', got '*'");
	/* as soon as the byte is in, printable or not */
	fails_is(IN("*1\r\nx"), "ERR Protocol error: expected '$', got 'x'");
	fails_is(IN("*1\r\n\x01"), "ERR Protocol error: expected '$', got '\\x01'");
	fails_is(IN("*1\r\n\0"), "ERR Protocol error: expected '$', got '\\x00'");
	fails_is(IN("*1\r\n\xff"), "ERR Protocol error: expected '$', got '\\xff'");
	fails_is(IN("*1\r\n\r\n"), "ERR Protocol error: expected '$', got '\\x0d'");
	fails_is(IN("*1\r\n'"), "ERR Protocol error: expected '$', got '''");
}

Test(multibulk, a_bad_bulk_length_is_refused_before_its_payload)
{
	static const char *const bad[] = {
		"$-1", "$-2", "$65", "$abc", "$", "$1x", "$ 1", "$1 ", "$+1", "$01", "$-0",
		"$99999999999999999999", "$9223372036854775808", "$18446744073709551615",
		"$-9223372036854775808",
	};
	char in[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* the line whole, and without its '\n' */
		int n = snprintf(in, sizeof(in), "*1\r\n%s\r\n", bad[i]);

		fails_is(in, (size_t)n, "ERR Protocol error: invalid bulk length");
		fails_is(in, (size_t)n - 1, "ERR Protocol error: invalid bulk length");
	}
	/* the largest allowed waits for its payload, and says how much */
	cr_assert_eq(more_is(IN("*1\r\n$64\r\n")), 4 + 5 + 64 + 2);
	/* the line's '\r' not followed by '\n' */
	fails_is(IN("*1\r\n$1\rx"), "ERR Protocol error: invalid bulk length");
}

Test(multibulk, a_huge_length_does_not_make_us_wait)
{
	const resp_limits big = { .max_args = 8, .max_bulk = SIZE_MAX, .max_inline = 64 };

	fails_is(IN("*1\r\n$1000000000000\r\n"), "ERR Protocol error: invalid bulk length");
	/* with no bulk limit at all, the bound on what it needs is still exact */
	cr_assert_eq(more_lim(IN("*2\r\n$9223372036854775807\r\n"), &big),
		     (size_t)9223372036854775807ull + 4 + 22 + 2 + 6);
}

Test(multibulk, a_bulk_line_past_the_limit)
{
	const resp_limits lim = { .max_args = 8, .max_bulk = 64, .max_inline = 8 };

	cr_assert_gt(more_lim(IN("*1\r\n$0000000"), &lim), 12);
	fails_lim(IN("*1\r\n$00000000"), &lim, "ERR Protocol error: too big bulk count string");
	fails_lim(IN("*1\r\n$0000000\r\n"), &lim, "ERR Protocol error: invalid bulk length");
}

Test(multibulk, crlf_after_the_payload)
{
	static const char *const bad[] = {
		"*1\r\n$3\r\nabcX", "*1\r\n$3\r\nabc\rX", "*1\r\n$3\r\nabc\n\n", "*1\r\n$3\r\nabcd\r\n",
		"*1\r\n$0\r\nX", "*1\r\n$3\r\nabc\n\r", "*2\r\n$1\r\na\r\n$1\r\nbc",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		fails_is(bad[i], strlen(bad[i]),
			 "ERR Protocol error: expected CRLF after the bulk string");
}

Test(multibulk, every_truncation_waits)
{
	static const char req[] = "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$5\r\nv\r\n\0z\r\n";

	every_prefix_wants_more(IN(req), &lim_small);
	ok_is(IN(req), ARGS(A("SET"), A(""), A("v\r\n\0z")));
	every_prefix_wants_more(IN("*0\r\n"), &lim_small);
	every_prefix_wants_more(IN("*-1\r\n"), &lim_small);
}

Test(multibulk, need_counts_what_is_known)
{
	/* the payload's length, its CRLF, then at least "$0\r\n\r\n" */
	cr_assert_eq(more_is(IN("*2\r\n$3\r\nab")), 19);
	cr_assert_eq(more_is(IN("*2\r\n$3\r\nabc\r")), 19);
	cr_assert_eq(more_is(IN("*3\r\n")), 4 + 3 * 6);
	cr_assert_eq(more_is(IN("*3\r\n$")), 4 + 3 * 6);
	cr_assert_eq(more_is(IN("*1\r\n$40\r\n")), 4 + 5 + 40 + 2);
	cr_assert_eq(more_is(IN("*")), 3);
	cr_assert_eq(more_is(IN("*1\r")), 4);
}

Test(pipeline, three_requests_one_after_another)
{
	static const char in[] = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
				 "PING x\r\n"
				 "*1\r\n$4\r\nQUIT\r\n"
				 "*1\r\n$3";
	const char *p = in;
	size_t left = sizeof(in) - 1;

	ok_lim(p, left, &lim_small, 20, ARGS(A("GET"), A("a")));
	p += 20, left -= 20;
	ok_lim(p, left, &lim_small, 8, ARGS(A("PING"), A("x")));
	p += 8, left -= 8;
	ok_lim(p, left, &lim_small, 14, ARGS(A("QUIT")));
	p += 14, left -= 14;
	cr_assert_eq(left, 6);
	cr_assert_gt(more_is(p, left), left);
}

Test(pipeline, round_trip_through_resp_request)
{
	const resp_arg args[] = { A("SET"), A("k\r\n"), A(""), A("\0\xff") };
	resp_out o;

	resp_out_init(&o);
	resp_request(&o, args, 4);
	OUT_IS(&o, "*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$0\r\n\r\n$2\r\n\0\xff\r\n");
	ok_is(o.p, o.len, args, 4);
	every_prefix_wants_more(o.p, o.len, &lim_small);
	resp_out_reset(&o);
	resp_request(&o, NULL, 0);
	OUT_IS(&o, "*0\r\n");
	resp_out_free(&o);
}

Test(parse, a_short_err_buffer_is_cut_and_terminated)
{
	char *err = malloc(10);
	size_t argc, used, need;
	resp_arg argv[8];
	uint8_t scratch[64];

	cr_assert_not_null(err);
	cr_assert_eq(resp_parse((const uint8_t *)"*x\r\n", 4, &lim_small, argv, &argc, scratch,
				sizeof(scratch), &used, &need, err, 10),
		     RESP_ERROR);
	cr_assert_str_eq(err, "ERR Proto");
	cr_assert_eq(resp_parse((const uint8_t *)"*x\r\n", 4, &lim_small, argv, &argc, scratch,
				sizeof(scratch), &used, NULL, NULL, 0),
		     RESP_ERROR);
	free(err);
}

/* --- resp_ll ---------------------------------------------------------------- */

static int ll(const char *s, long long *v)
{
	size_t len = strlen(s);
	uint8_t *in = copy_exact(s, len);
	int rc = resp_ll(in, len, v);

	free(in);
	return rc;
}

Test(string2ll, numbers)
{
	static const struct {
		const char *s;
		long long v;
	} good[] = {
		{ "0", 0 }, { "1", 1 }, { "-1", -1 }, { "10", 10 }, { "123456789", 123456789 },
		{ "-100", -100 }, { "9223372036854775807", LLONG_MAX },
		{ "-9223372036854775808", LLONG_MIN }, { "9223372036854775806", LLONG_MAX - 1 },
		{ "-9223372036854775807", LLONG_MIN + 1 },
	};
	long long v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert_eq(ll(good[i].s, &v), 0, "%s refused", good[i].s);
		cr_assert_eq(v, good[i].v, "%s read as %lld", good[i].s, v);
	}
}

Test(string2ll, refusals_leave_out)
{
	static const char *const bad[] = {
		"", "-", "-0", "00", "01", "-01", "+1", "+0", " 1", "1 ", "1-", "--1", "0x1", "1.0",
		"1e3", "a", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
		"99999999999999999999", "-99999999999999999999", "100000000000000000000",
		"92233720368547758070",
	};
	long long v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 77;
		cr_assert_eq(ll(bad[i], &v), DKV_EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert_eq(v, 77, "\"%s\" changed *out", bad[i]);
	}
	cr_assert_eq(resp_ll((const uint8_t *)"1\0", 2, &v), DKV_EINVAL, "a NUL is a byte");
	cr_assert_eq(resp_ll(NULL, 0, &v), DKV_EINVAL);
}

/* --- replies ---------------------------------------------------------------- */

Test(reply, simple_strings)
{
	resp_out o = { 0 };

	resp_simple(&o, "OK");
	OUT_IS(&o, "+OK\r\n");
	resp_out_reset(&o);
	resp_simple(&o, "a\r\nb\rc\n");
	OUT_IS(&o, "+a  b c \r\n");
	resp_out_reset(&o);
	resp_simple(&o, "");
	OUT_IS(&o, "+\r\n");
	resp_out_free(&o);
}

Test(reply, errors)
{
	char *long_text = malloc(5001);
	resp_out o;

	resp_out_init(&o);
	resp_error(&o, "ERR %s %d", "bad", 5);
	OUT_IS(&o, "-ERR bad 5\r\n");
	resp_out_reset(&o);
	resp_error(&o, "ERR line\r\nbreak%c", '\n');
	OUT_IS(&o, "-ERR line  break \r\n");
	resp_out_reset(&o);
	/* cut at RESP_ERROR_MAX bytes of text */
	cr_assert_not_null(long_text);
	memset(long_text, 'e', 5000);
	long_text[5000] = '\0';
	resp_error(&o, "ERR %s", long_text);
	cr_assert_eq(o.len, 1 + RESP_ERROR_MAX + 2);
	cr_assert(memcmp(o.p, "-ERR eee", 8) == 0);
	cr_assert(memcmp(o.p + o.len - 3, "e\r\n", 3) == 0);
	free(long_text);
	resp_out_free(&o);
}

Test(reply, integers)
{
	resp_out o = { 0 };

	resp_int(&o, 0);
	resp_int(&o, -1);
	resp_int(&o, 42);
	OUT_IS(&o, ":0\r\n:-1\r\n:42\r\n");
	resp_out_reset(&o);
	resp_int(&o, LLONG_MIN);
	resp_int(&o, LLONG_MAX);
	OUT_IS(&o, ":-9223372036854775808\r\n:9223372036854775807\r\n");
	resp_out_free(&o);
}

Test(reply, bulk_strings)
{
	resp_out o = { 0 };

	resp_bulk(&o, "abc", 3);
	resp_bulk(&o, NULL, 0);
	resp_bulk(&o, "\r\n\0", 3);
	OUT_IS(&o, "$3\r\nabc\r\n$0\r\n\r\n$3\r\n\r\n\0\r\n");
	resp_out_free(&o);
}

Test(reply, nulls_in_both_protocols)
{
	resp_out o = { 0 };

	resp_null(&o, 2);
	resp_null_array(&o, 2);
	OUT_IS(&o, "$-1\r\n*-1\r\n");
	resp_out_reset(&o);
	resp_null(&o, 3);
	resp_null_array(&o, 3);
	OUT_IS(&o, "_\r\n_\r\n");
	resp_out_free(&o);
}

Test(reply, aggregates_in_both_protocols)
{
	resp_out o = { 0 };

	resp_array(&o, 0);
	resp_array(&o, 3);
	OUT_IS(&o, "*0\r\n*3\r\n");
	resp_out_reset(&o);
	resp_map(&o, 2, 2);
	resp_map(&o, 0, 2);
	resp_set(&o, 5, 2);
	OUT_IS(&o, "*4\r\n*0\r\n*5\r\n");
	resp_out_reset(&o);
	resp_map(&o, 2, 3);
	resp_map(&o, 0, 3);
	resp_set(&o, 5, 3);
	OUT_IS(&o, "%2\r\n%0\r\n~5\r\n");
	resp_out_free(&o);
}

Test(reply, booleans_in_both_protocols)
{
	resp_out o = { 0 };

	resp_bool(&o, true, 2);
	resp_bool(&o, false, 2);
	OUT_IS(&o, ":1\r\n:0\r\n");
	resp_out_reset(&o);
	resp_bool(&o, true, 3);
	resp_bool(&o, false, 3);
	OUT_IS(&o, "#t\r\n#f\r\n");
	resp_out_free(&o);
}

Test(reply, verbatim_in_both_protocols)
{
	resp_out o = { 0 };

	resp_verbatim(&o, "txt", "Some string", 11, 3);
	OUT_IS(&o, "=15\r\ntxt:Some string\r\n");
	resp_out_reset(&o);
	resp_verbatim(&o, "mkd", "a\r\nb", 4, 3);
	resp_verbatim(&o, "txt", NULL, 0, 3);
	OUT_IS(&o, "=8\r\nmkd:a\r\nb\r\n=4\r\ntxt:\r\n");
	resp_out_reset(&o);
	resp_verbatim(&o, "txt", "Some string", 11, 2);
	OUT_IS(&o, "$11\r\nSome string\r\n");
	resp_out_free(&o);
}

Test(unknown_command, redis_examples)
{
	resp_out o = { 0 };

	resp_unknown_command(&o, ARGS(A("FOO"), A("a"), A("b")));
	OUT_IS(&o, "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
	resp_out_reset(&o);
	resp_unknown_command(&o, ARGS(A("FOO")));
	OUT_IS(&o, "-ERR unknown command 'FOO', with args beginning with: \r\n");
	resp_out_reset(&o);
	/* CR and LF as spaces, other bytes as they are */
	resp_unknown_command(&o, ARGS(A("F\r\nO"), A("a\nb"), A("\0\x01")));
	OUT_IS(&o, "-ERR unknown command 'F  O', with args beginning with: 'a b' '\0\x01' \r\n");
	resp_out_free(&o);
}

/* The text Redis builds: "'%.*s' " while shorter than 128 bytes. */
static size_t redis_args(const resp_arg *argv, size_t argc, char *out)
{
	size_t n = 0;

	for (size_t i = 1; i < argc && n < 128; i++) {
		size_t cut = argv[i].len < 128 - n ? argv[i].len : 128 - n;

		n += (size_t)sprintf(out + n, "'%.*s' ", (int)cut, (const char *)argv[i].p);
	}
	return n;
}

Test(unknown_command, long_names_and_arguments_are_cut_at_128)
{
	char a100[101], b100[101], name[201], want[1024], args[512];
	resp_arg argv[4];
	resp_out o = { 0 };
	size_t n;

	memset(a100, 'a', 100);
	memset(b100, 'b', 100);
	memset(name, 'N', 200);
	a100[100] = b100[100] = name[200] = '\0';
	/* 'a*100' is 103 bytes, then 25 b's fill the 128, and "c" is left out */
	argv[0] = (resp_arg){ (const uint8_t *)"FOO", 3 };
	argv[1] = (resp_arg){ (const uint8_t *)a100, 100 };
	argv[2] = (resp_arg){ (const uint8_t *)b100, 100 };
	argv[3] = (resp_arg){ (const uint8_t *)"c", 1 };
	resp_unknown_command(&o, argv, 4);
	n = redis_args(argv, 4, args);
	cr_assert_eq(n, 103 + 28);
	snprintf(want, sizeof(want), "-ERR unknown command 'FOO', with args beginning with: %s\r\n",
		 args);
	out_eq(&o, want, strlen(want));
	cr_assert(strstr(want, "'aaaa") && strstr(want, "bb' \r\n") && !strstr(want, "'c'"));

	/* a name of 200 bytes shows 128; one argument of 200 shows 128 */
	resp_out_reset(&o);
	argv[0] = (resp_arg){ (const uint8_t *)name, 200 };
	argv[1] = (resp_arg){ (const uint8_t *)name, 200 };
	resp_unknown_command(&o, argv, 2);
	n = redis_args(argv, 2, args);
	cr_assert_eq(n, 131);
	snprintf(want, sizeof(want), "-ERR unknown command '%.128s', with args beginning with: %s\r\n",
		 name, args);
	out_eq(&o, want, strlen(want));
	resp_out_free(&o);
}

/* --- the output buffer ------------------------------------------------------ */

Test(out, grows_and_keeps_its_memory_on_reset)
{
	size_t big = 100000;
	uint8_t *payload = malloc(big);
	uint8_t *mem;
	size_t cap;
	resp_out o;

	cr_assert_not_null(payload);
	memset(payload, 'x', big);
	resp_out_init(&o);
	cr_assert(o.p == NULL && o.len == 0 && o.cap == 0 && !o.failed);
	for (int i = 0; i < 1000; i++)
		resp_int(&o, i);
	resp_bulk(&o, payload, big);
	cr_assert(!o.failed && o.cap >= o.len);
	cr_assert(memcmp(o.p + o.len - 2 - big, payload, big) == 0);
	mem = o.p;
	cap = o.cap;
	resp_out_reset(&o);
	cr_assert(o.len == 0 && o.p == mem && o.cap == cap);
	cr_assert_eq(resp_out_reserve(&o, cap), 0);
	cr_assert(o.p == mem, "room already there: no reallocation");
	resp_out_free(&o);
	cr_assert(o.p == NULL && o.len == 0 && o.cap == 0 && !o.failed);
	free(payload);
}

Test(out, a_failed_allocation_is_sticky_until_reset)
{
	resp_out o = { 0 };

	resp_simple(&o, "OK");
	/* more than a size_t can add to len: the failure path, without asking
	 * the allocator for an impossible size */
	cr_assert_eq(resp_out_reserve(&o, SIZE_MAX), -ENOMEM);
	cr_assert(o.failed);
	resp_int(&o, 1);
	resp_bulk(&o, "abc", 3);
	resp_error(&o, "ERR x");
	cr_assert_eq(o.len, 5, "a failed buffer takes no more bytes");
	cr_assert_eq(resp_out_reserve(&o, 1), -ENOMEM);
	resp_out_reset(&o);
	cr_assert(!o.failed);
	resp_int(&o, 7);
	OUT_IS(&o, ":7\r\n");
	resp_out_free(&o);
}
