#include "config.h"
/*
 * test_mpr.c -- src/mpr.c, the bounded msgpack reader: every encoding of
 * every type through every reader (accepted with the right value and the
 * cursor just past it, or refused with the cursor's own `bad` code and the
 * cursor unmoved), every truncation refused, declared lengths past the
 * bytes left refused before anything is handed out, DKV_ETOOBIG past max,
 * and mpr_skip over nested containers, ext types, the depth limit and
 * container bombs.
 *
 * Inputs are copied into heap buffers of exactly their length (and an empty
 * input is a NULL pointer), so that a read past the end is caught when
 * built with -fsanitize=address.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "error.h"
#include "mpr.h"
#include "testutil.h"

/* The bad code every cursor here is given: not one the reader could
 * return on its own, so that a test sees which code came from where. */
#define BAD (-777)

/* --- helpers ----------------------------------------------------------- */

/* The readers, as one switch, so that tables can name them. */
typedef enum kind {
	K_UINT, K_INT, K_BOOL, K_NIL, K_ARRAY, K_MAP, K_BIN, K_BINNIL, K_STR, K_SKIP, K_NKINDS
} kind;

static const char *const kind_name[K_NKINDS] = {
	"uint", "int", "bool", "nil", "array", "map", "bin", "bin_or_nil", "str", "skip"
};

/* What a reader handed back. */
typedef struct out {
	uint64_t u;             /* uint, array and map counts */
	int64_t i;              /* int */
	bool b;                 /* bool, or nil's answer */
	bool nil;               /* bin_or_nil: true iff nil */
	const uint8_t *v;       /* bin, str */
	size_t len;             /* bin, str */
} out;

#define POISON ((const uint8_t *)"poison")

static void out_init(out *o)
{
	o->u = 0xdeadbeef;
	o->i = 0x5eed;
	o->b = false;
	o->nil = false;
	o->v = POISON;
	o->len = 0xdead;
}

/* Run reader k on r; mpr_nil's bool becomes 0 (true) or BAD (false). */
static int run(kind k, mpr *r, size_t max, out *o)
{
	const char *s = NULL;
	int rc;

	switch (k) {
	case K_UINT: return mpr_uint(r, &o->u);
	case K_INT: return mpr_int(r, &o->i);
	case K_BOOL: return mpr_bool(r, &o->b);
	case K_NIL: return mpr_nil(r) ? 0 : BAD;
	case K_ARRAY: return mpr_array(r, &o->u);
	case K_MAP: return mpr_map(r, &o->u);
	case K_BIN: return mpr_bin(r, max, &o->v, &o->len);
	case K_BINNIL: return mpr_bin_or_nil(r, max, &o->nil, &o->v, &o->len);
	case K_STR:
		rc = mpr_str(r, max, &s, &o->len);
		if (rc == 0)
			o->v = (const uint8_t *)s;
		return rc;
	case K_SKIP: return mpr_skip(r, 16);
	default: cr_assert_fail("no reader %d", (int)k); return BAD;
	}
}

/* --- every encoding through every reader --------------------------------- */

/* Classes of encodings, and which readers accept which. */
enum {
	C_UINT = 1 << 0,        /* positive fixint, uint 8..64 up to INT64_MAX */
	C_BIGUINT = 1 << 1,     /* uint 64 past INT64_MAX */
	C_INT = 1 << 2,         /* negative fixint, int 8..64 */
	C_NIL = 1 << 3,
	C_BOOL = 1 << 4,
	C_STR = 1 << 5,
	C_BIN = 1 << 6,
	C_ARRAY = 1 << 7,
	C_MAP = 1 << 8,
	C_FLOAT = 1 << 9,
	C_EXT = 1 << 10,
	C_NEVER = 1 << 11,      /* 0xc1 */
};

static const unsigned accepts[K_NKINDS] = {
	[K_UINT] = C_UINT | C_BIGUINT,
	[K_INT] = C_UINT | C_INT,
	[K_BOOL] = C_BOOL,
	[K_NIL] = C_NIL,
	[K_ARRAY] = C_ARRAY,
	[K_MAP] = C_MAP,
	[K_BIN] = C_BIN,
	[K_BINNIL] = C_BIN | C_NIL,
	[K_STR] = C_STR,
	[K_SKIP] = (unsigned)~C_NEVER,
};

/* One encoding: its class, its bytes, the value it stands for (an integer
 * as uint64_t, a count, a bool, or a bin/str length, the payload being its
 * last `want` bytes) and, for a container, the bytes of its elements. */
typedef struct sample {
	unsigned cls;
	const char *what;
	const uint8_t *b;
	size_t n;
	uint64_t want;
	size_t rest;
} sample;

#define B(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })

static const sample samples[] = {
	{ C_UINT, "fixint 0", B(0x00), 0, 0 },
	{ C_UINT, "fixint 127", B(0x7f), 127, 0 },
	{ C_UINT, "uint8 0", B(0xcc, 0x00), 0, 0 },
	{ C_UINT, "uint8 255", B(0xcc, 0xff), 255, 0 },
	{ C_UINT, "uint16 256", B(0xcd, 0x01, 0x00), 256, 0 },
	{ C_UINT, "uint16 65535", B(0xcd, 0xff, 0xff), 65535, 0 },
	{ C_UINT, "uint32 65536", B(0xce, 0x00, 0x01, 0x00, 0x00), 65536, 0 },
	{ C_UINT, "uint32 max", B(0xce, 0xff, 0xff, 0xff, 0xff), UINT32_MAX, 0 },
	{ C_UINT, "uint64 2^32", B(0xcf, 0, 0, 0, 1, 0, 0, 0, 0), UINT64_C(1) << 32, 0 },
	{ C_UINT, "uint64 int64 max", B(0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  INT64_MAX, 0 },
	{ C_UINT, "uint64 bytes order", B(0xcf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08),
	  UINT64_C(0x0102030405060708), 0 },
	{ C_BIGUINT, "uint64 max", B(0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  UINT64_MAX, 0 },
	{ C_BIGUINT, "uint64 int64 max + 1", B(0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0),
	  UINT64_C(1) << 63, 0 },
	{ C_INT, "negative fixint -32", B(0xe0), (uint64_t)-32, 0 },
	{ C_INT, "negative fixint -1", B(0xff), (uint64_t)-1, 0 },
	{ C_INT, "int8 -128", B(0xd0, 0x80), (uint64_t)-128, 0 },
	{ C_INT, "int8 127", B(0xd0, 0x7f), 127, 0 },
	{ C_INT, "int16 -32768", B(0xd1, 0x80, 0x00), (uint64_t)-32768, 0 },
	{ C_INT, "int16 32767", B(0xd1, 0x7f, 0xff), 32767, 0 },
	{ C_INT, "int32 min", B(0xd2, 0x80, 0, 0, 0), (uint64_t)(int64_t)INT32_MIN, 0 },
	{ C_INT, "int32 -2", B(0xd2, 0xff, 0xff, 0xff, 0xfe), (uint64_t)-2, 0 },
	{ C_INT, "int64 min", B(0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0), (uint64_t)INT64_MIN, 0 },
	{ C_INT, "int64 -1", B(0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
	  (uint64_t)-1, 0 },
	{ C_INT, "int64 2^32", B(0xd3, 0, 0, 0, 1, 0, 0, 0, 0), UINT64_C(1) << 32, 0 },
	{ C_NIL, "nil", B(0xc0), 0, 0 },
	{ C_BOOL, "false", B(0xc2), 0, 0 },
	{ C_BOOL, "true", B(0xc3), 1, 0 },
	{ C_STR, "fixstr empty", B(0xa0), 0, 0 },
	{ C_STR, "fixstr 3 with NUL", B(0xa3, 'a', 0, 'c'), 3, 0 },
	{ C_STR, "str8 empty", B(0xd9, 0x00), 0, 0 },
	{ C_STR, "str8 2", B(0xd9, 0x02, 'x', 0), 2, 0 },
	{ C_STR, "str16 2", B(0xda, 0x00, 0x02, 'x', 'y'), 2, 0 },
	{ C_STR, "str32 2", B(0xdb, 0, 0, 0, 0x02, 0, 'z'), 2, 0 },
	{ C_BIN, "bin8 empty", B(0xc4, 0x00), 0, 0 },
	{ C_BIN, "bin8 3", B(0xc4, 0x03, 0, 1, 0), 3, 0 },
	{ C_BIN, "bin16 2", B(0xc5, 0x00, 0x02, 0xff, 0x00), 2, 0 },
	{ C_BIN, "bin32 1", B(0xc6, 0, 0, 0, 1, 0), 1, 0 },
	{ C_ARRAY, "fixarray empty", B(0x90), 0, 0 },
	{ C_ARRAY, "fixarray 2", B(0x92, 0x01, 0xc0), 2, 2 },
	{ C_ARRAY, "fixarray 15", B(0x9f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14), 15, 15 },
	{ C_ARRAY, "array16 1", B(0xdc, 0x00, 0x01, 0xc3), 1, 1 },
	{ C_ARRAY, "array32 2", B(0xdd, 0, 0, 0, 2, 0x01, 0x02), 2, 2 },
	{ C_ARRAY, "nested array",
	  B(0x93, 0x91, 0x80, 0xa1, 'x', 0x81, 0xc4, 0x01, 0x00, 0x92, 0xc0, 0xc2), 3, 11 },
	{ C_MAP, "fixmap empty", B(0x80), 0, 0 },
	{ C_MAP, "fixmap 1", B(0x81, 0xa1, 'r', 0x02), 1, 3 },
	{ C_MAP, "map16 1", B(0xde, 0x00, 0x01, 0x01, 0x02), 1, 2 },
	{ C_MAP, "map32 1", B(0xdf, 0, 0, 0, 1, 0xc0, 0xc0), 1, 2 },
	{ C_MAP, "map of ext, float and array",
	  B(0x82, 0xd4, 0x01, 0xaa, 0xca, 0, 0, 0, 0, 0xc7, 0x01, 0x02, 0xff, 0x90), 2, 13 },
	{ C_FLOAT, "float32", B(0xca, 0x3f, 0x80, 0x00, 0x00), 0, 0 },
	{ C_FLOAT, "float64", B(0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0), 0, 0 },
	{ C_EXT, "fixext1", B(0xd4, 0x01, 0xaa), 0, 0 },
	{ C_EXT, "fixext2", B(0xd5, 0x01, 0xaa, 0xbb), 0, 0 },
	{ C_EXT, "fixext4", B(0xd6, 0xff, 1, 2, 3, 4), 0, 0 },
	{ C_EXT, "fixext8", B(0xd7, 0x01, 1, 2, 3, 4, 5, 6, 7, 8), 0, 0 },
	{ C_EXT, "fixext16", B(0xd8, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16),
	  0, 0 },
	{ C_EXT, "ext8 empty", B(0xc7, 0x00, 0x05), 0, 0 },
	{ C_EXT, "ext8 2", B(0xc7, 0x02, 0x05, 0xaa, 0xbb), 0, 0 },
	{ C_EXT, "ext16 1", B(0xc8, 0x00, 0x01, 0x05, 0xaa), 0, 0 },
	{ C_EXT, "ext32 1", B(0xc9, 0, 0, 0, 1, 0x05, 0xaa), 0, 0 },
	{ C_NEVER, "never used", B(0xc1), 0, 0 },
};
#define NSAMPLES (sizeof samples / sizeof samples[0])

/* Check what reader k made of sample s at buf (which it accepted). */
static void check_value(kind k, const sample *s, const uint8_t *buf, const mpr *r, const out *o)
{
	size_t rest = k == K_ARRAY || k == K_MAP ? s->rest : 0;

	cr_assert_eq(mpr_left(r), rest, "%s on %s: %zu bytes left, not %zu",
		     kind_name[k], s->what, mpr_left(r), rest);
	switch (k) {
	case K_UINT:
	case K_ARRAY:
	case K_MAP:
		cr_assert_eq(o->u, s->want, "%s on %s", kind_name[k], s->what);
		break;
	case K_INT:
		cr_assert_eq(o->i, (int64_t)s->want, "%s on %s: %lld", kind_name[k], s->what,
			     (long long)o->i);
		break;
	case K_BOOL:
		cr_assert_eq(o->b, s->want != 0, "%s", s->what);
		break;
	case K_BINNIL:
		cr_assert_eq(o->nil, s->cls == C_NIL, "%s", s->what);
		if (o->nil) {
			cr_assert_null(o->v);
			cr_assert_eq(o->len, 0);
			break;
		}
		/* fall through */
	case K_BIN:
	case K_STR:
		cr_assert_eq(o->len, s->want, "%s on %s", kind_name[k], s->what);
		/* borrowed from the input, not copied */
		cr_assert(o->v == buf + s->n - s->want, "%s on %s: not a pointer into the input",
			  kind_name[k], s->what);
		break;
	case K_NIL:
	case K_SKIP:
	default:
		break;
	}
}

TestSuite(mpr, .description = "the bounded msgpack reader");

Test(mpr, every_reader_on_every_encoding)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const sample *s = &samples[i];

		for (int k = 0; k < K_NKINDS; k++) {
			uint8_t *buf = copy_exact(s->b, s->n);
			out o;
			mpr r;
			int rc;

			out_init(&o);
			mpr_init(&r, buf, s->n, BAD);
			cr_assert_eq(mpr_peek(&r), s->b[0]);
			rc = run((kind)k, &r, SIZE_MAX, &o);
			if (accepts[k] & s->cls) {
				cr_assert_eq(rc, 0, "%s refused %s: %d", kind_name[k], s->what, rc);
				check_value((kind)k, s, buf, &r, &o);
			} else {
				cr_assert_eq(rc, BAD, "%s on %s: %d, not the cursor's bad code",
					     kind_name[k], s->what, rc);
				/* (mpr_int reads a uint 64 whole before it finds
				 * the value past INT64_MAX; callers give up on
				 * any error, so where the cursor stops then does
				 * not matter) */
				if (!(k == K_INT && s->cls == C_BIGUINT))
					cr_assert(r.p == buf, "%s on %s moved the cursor",
						  kind_name[k], s->what);
				cr_assert_eq(o.v, POISON);
			}
			free(buf);
		}
	}
}

/* The same, with a byte after the value: the reader stops at its end. */
Test(mpr, readers_stop_at_the_end_of_their_value)
{
	for (size_t i = 0; i < NSAMPLES; i++) {
		const sample *s = &samples[i];
		uint8_t tmp[64];

		cr_assert_lt(s->n, sizeof tmp);
		memcpy(tmp, s->b, s->n);
		tmp[s->n] = 0xc1;
		for (int k = 0; k < K_NKINDS; k++) {
			uint8_t *buf;
			out o;
			mpr r;

			if (!(accepts[k] & s->cls))
				continue;
			buf = copy_exact(tmp, s->n + 1);
			out_init(&o);
			mpr_init(&r, buf, s->n + 1, BAD);
			cr_assert_eq(run((kind)k, &r, SIZE_MAX, &o), 0);
			cr_assert_eq(mpr_left(&r), 1 + (k == K_ARRAY || k == K_MAP ? s->rest : 0),
				     "%s on %s", kind_name[k], s->what);
			cr_assert_eq(mpr_peek(&r), k == K_ARRAY || k == K_MAP ? tmp[s->n - s->rest]
									     : 0xc1);
			free(buf);
		}
	}
}

Test(mpr, every_truncation_is_refused)
{
	size_t tried = 0;

	for (size_t i = 0; i < NSAMPLES; i++) {
		const sample *s = &samples[i];

		for (int k = 0; k < K_NKINDS; k++) {
			/* a container reader reads only the header */
			size_t whole = k == K_ARRAY || k == K_MAP ? s->n - s->rest : s->n;

			if (!(accepts[k] & s->cls) || k == K_NIL)
				continue;
			for (size_t len = 0; len < whole; len++) {
				uint8_t *buf = copy_exact(s->b, len);
				out o;
				mpr r;
				int rc;

				out_init(&o);
				mpr_init(&r, buf, len, BAD);
				rc = run((kind)k, &r, SIZE_MAX, &o);
				cr_assert_eq(rc, BAD, "%s on %s cut at %zu: %d", kind_name[k],
					     s->what, len, rc);
				cr_assert(len == 0 ? r.p == NULL : r.p >= buf && r.p <= buf + len);
				cr_assert_eq(o.v, POISON, "%s on %s cut at %zu handed out bytes",
					     kind_name[k], s->what, len);
				free(buf);
				tried++;
			}
		}
	}
	cr_assert_gt(tried, 300);
}

Test(mpr, empty_input)
{
	mpr r;
	out o;

	mpr_init(&r, NULL, 0, BAD);
	cr_assert_eq(mpr_left(&r), 0);
	cr_assert_eq(mpr_peek(&r), -1);
	cr_assert(!mpr_nil(&r));
	for (int k = 0; k < K_NKINDS; k++) {
		out_init(&o);
		cr_assert_eq(run((kind)k, &r, SIZE_MAX, &o), BAD, "%s", kind_name[k]);
		cr_assert_eq(mpr_left(&r), 0);
	}
	/* a zero-length window onto real bytes is empty too */
	{
		static const uint8_t one[] = { 0x01 };

		mpr_init(&r, one, 0, BAD);
		cr_assert_eq(mpr_peek(&r), -1);
		cr_assert_eq(mpr_uint(&r, &o.u), BAD);
	}
}

Test(mpr, peek_and_nil)
{
	static const uint8_t in[] = { 0xc0, 0xc2, 0x07 };
	uint8_t *buf = copy_exact(in, sizeof in);
	bool b = true;
	uint64_t u = 0;
	mpr r;

	mpr_init(&r, buf, sizeof in, BAD);
	cr_assert_eq(mpr_peek(&r), 0xc0);
	cr_assert_eq(mpr_peek(&r), 0xc0, "peek consumed");
	cr_assert(mpr_nil(&r));
	cr_assert_eq(mpr_left(&r), 2);
	cr_assert(!mpr_nil(&r));
	cr_assert_eq(mpr_left(&r), 2, "nil consumed a non-nil");
	cr_assert_eq(mpr_bool(&r, &b), 0);
	cr_assert(!b);
	cr_assert_eq(mpr_peek(&r), 0x07);
	cr_assert_eq(mpr_uint(&r, &u), 0);
	cr_assert_eq(u, 7);
	cr_assert_eq(mpr_peek(&r), -1);
	cr_assert(!mpr_nil(&r));
	free(buf);
}

/* The unsigned reader takes unsigned encodings only, even of values that
 * fit: an int 8 holding 5 is not a uint. */
Test(mpr, uint_refuses_signed_encodings_of_positive_values)
{
	static const uint8_t ins[][9] = {
		{ 0xd0, 0x05 }, { 0xd1, 0x00, 0x05 }, { 0xd2, 0, 0, 0, 5 },
		{ 0xd3, 0, 0, 0, 0, 0, 0, 0, 5 },
	};
	static const size_t lens[] = { 2, 3, 5, 9 };

	for (size_t i = 0; i < 4; i++) {
		uint8_t *buf = copy_exact(ins[i], lens[i]);
		uint64_t u = 99;
		int64_t v = 0;
		mpr r;

		mpr_init(&r, buf, lens[i], BAD);
		cr_assert_eq(mpr_uint(&r, &u), BAD);
		cr_assert_eq(u, 99);
		cr_assert(r.p == buf);
		cr_assert_eq(mpr_int(&r, &v), 0);
		cr_assert_eq(v, 5);
		cr_assert_eq(mpr_left(&r), 0);
		free(buf);
	}
}

Test(mpr, every_negative_fixint)
{
	for (int t = 0xe0; t <= 0xff; t++) {
		uint8_t b = (uint8_t)t;
		uint8_t *buf = copy_exact(&b, 1);
		int64_t v = 0;
		uint64_t u = 0;
		mpr r;

		mpr_init(&r, buf, 1, BAD);
		cr_assert_eq(mpr_uint(&r, &u), BAD);
		cr_assert_eq(mpr_int(&r, &v), 0);
		cr_assert_eq(v, t - 256);
		free(buf);
	}
	for (int t = 0; t <= 0x7f; t++) {
		uint8_t b = (uint8_t)t;
		uint8_t *buf = copy_exact(&b, 1);
		int64_t v = -1;
		mpr r;

		mpr_init(&r, buf, 1, BAD);
		cr_assert_eq(mpr_int(&r, &v), 0);
		cr_assert_eq(v, t);
		free(buf);
	}
}

Test(mpr, every_fixarray_fixmap_and_fixstr_count)
{
	for (int n = 0; n < 16; n++) {
		uint8_t a = (uint8_t)(0x90 | n), m = (uint8_t)(0x80 | n);
		uint64_t got = 99;
		mpr r;

		mpr_init(&r, &a, 1, BAD);
		cr_assert_eq(mpr_array(&r, &got), 0);
		cr_assert_eq(got, (uint64_t)n);
		mpr_init(&r, &m, 1, BAD);
		cr_assert_eq(mpr_map(&r, &got), 0);
		cr_assert_eq(got, (uint64_t)n);
		mpr_init(&r, &a, 1, BAD);
		cr_assert_eq(mpr_map(&r, &got), BAD);
		mpr_init(&r, &m, 1, BAD);
		cr_assert_eq(mpr_array(&r, &got), BAD);
	}
	for (int n = 0; n < 32; n++) {
		uint8_t in[32];
		uint8_t *buf;
		const char *s = NULL;
		size_t len = 99;
		mpr r;

		in[0] = (uint8_t)(0xa0 | n);
		for (int i = 0; i < n; i++)
			in[1 + i] = (uint8_t)('a' + i % 26);
		buf = copy_exact(in, (size_t)n + 1);
		mpr_init(&r, buf, (size_t)n + 1, BAD);
		cr_assert_eq(mpr_str(&r, SIZE_MAX, &s, &len), 0);
		cr_assert_eq(len, (size_t)n);
		cr_assert((const uint8_t *)s == buf + 1);
		cr_assert_eq(mpr_left(&r), 0);
		/* and one byte short */
		mpr_init(&r, buf, (size_t)n, BAD);
		cr_assert_eq(mpr_str(&r, SIZE_MAX, &s, &len), BAD);
		free(buf);
	}
}

/* Lengths at the edges of each width: str 8/16/32 and bin 8/16/32. */
Test(mpr, long_strings_and_bins)
{
	static const struct {
		uint8_t type;   /* 0xd9.. str, 0xc4.. bin */
		unsigned width; /* length field bytes */
		size_t len;
	} cases[] = {
		{ 0xd9, 1, 255 }, { 0xda, 2, 256 }, { 0xda, 2, 65535 }, { 0xdb, 4, 65536 },
		{ 0xdb, 4, 70001 }, { 0xc4, 1, 255 }, { 0xc5, 2, 256 }, { 0xc5, 2, 65535 },
		{ 0xc6, 4, 65536 }, { 0xc6, 4, 70001 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		size_t hdr = 1 + cases[i].width, n = hdr + cases[i].len;
		uint8_t *buf = malloc(n);
		const uint8_t *v = NULL;
		const char *s = NULL;
		size_t len = 0;
		bool str = cases[i].type >= 0xd9, nil = true;
		mpr r;
		int rc;

		cr_assert_not_null(buf);
		buf[0] = cases[i].type;
		for (unsigned b = 0; b < cases[i].width; b++)
			buf[1 + b] = (uint8_t)(cases[i].len >> (8 * (cases[i].width - 1 - b)));
		for (size_t j = 0; j < cases[i].len; j++)
			buf[hdr + j] = (uint8_t)(j * 7);

		mpr_init(&r, buf, n, BAD);
		rc = str ? mpr_str(&r, SIZE_MAX, &s, &len) : mpr_bin(&r, SIZE_MAX, &v, &len);
		cr_assert_eq(rc, 0, "case %zu", i);
		cr_assert_eq(len, cases[i].len);
		cr_assert((str ? (const uint8_t *)s : v) == buf + hdr);
		cr_assert_eq(mpr_left(&r), 0);

		if (!str) {
			mpr_init(&r, buf, n, BAD);
			cr_assert_eq(mpr_bin_or_nil(&r, SIZE_MAX, &nil, &v, &len), 0);
			cr_assert(!nil);
			cr_assert_eq(len, cases[i].len);
		}

		/* exactly at max, and one past it */
		mpr_init(&r, buf, n, BAD);
		rc = str ? mpr_str(&r, cases[i].len, &s, &len) : mpr_bin(&r, cases[i].len, &v, &len);
		cr_assert_eq(rc, 0);
		mpr_init(&r, buf, n, BAD);
		rc = str ? mpr_str(&r, cases[i].len - 1, &s, &len)
			 : mpr_bin(&r, cases[i].len - 1, &v, &len);
		cr_assert_eq(rc, DKV_ETOOBIG, "case %zu: %d", i, rc);

		/* skipped whole */
		mpr_init(&r, buf, n, BAD);
		cr_assert_eq(mpr_skip(&r, 0), 0);
		cr_assert_eq(mpr_left(&r), 0);

		/* one byte short, whatever max: the bytes come first */
		mpr_init(&r, buf, n - 1, BAD);
		rc = str ? mpr_str(&r, 0, &s, &len) : mpr_bin(&r, 0, &v, &len);
		cr_assert_eq(rc, BAD, "case %zu short: %d", i, rc);
		mpr_init(&r, buf, n - 1, BAD);
		cr_assert_eq(mpr_skip(&r, 0), BAD);
		free(buf);
	}
}

Test(mpr, past_max_is_toobig_not_bad)
{
	static const uint8_t bin[] = { 0xc4, 0x03, 'a', 'b', 'c' };
	static const uint8_t str[] = { 0xa3, 'a', 'b', 'c' };
	uint8_t *b = copy_exact(bin, sizeof bin), *s = copy_exact(str, sizeof str);
	const uint8_t *v = POISON;
	const char *sv = NULL;
	size_t len = 77;
	bool nil = true;
	mpr r;

	mpr_init(&r, b, sizeof bin, BAD);
	cr_assert_eq(mpr_bin(&r, 2, &v, &len), DKV_ETOOBIG);
	cr_assert_eq(v, POISON);
	cr_assert_eq(len, 77);
	mpr_init(&r, b, sizeof bin, BAD);
	cr_assert_eq(mpr_bin_or_nil(&r, 2, &nil, &v, &len), DKV_ETOOBIG);
	cr_assert(!nil);
	mpr_init(&r, b, sizeof bin, BAD);
	cr_assert_eq(mpr_bin(&r, 3, &v, &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(v, "abc", 3), 0);

	mpr_init(&r, s, sizeof str, BAD);
	cr_assert_eq(mpr_str(&r, 2, &sv, &len), DKV_ETOOBIG);
	cr_assert_null(sv);
	mpr_init(&r, s, sizeof str, BAD);
	cr_assert_eq(mpr_str(&r, 0, &sv, &len), DKV_ETOOBIG);
	mpr_init(&r, s, sizeof str, BAD);
	cr_assert_eq(mpr_str(&r, 3, &sv, &len), 0);
	cr_assert_eq(memcmp(sv, "abc", 3), 0);

	/* an empty one fits max 0 */
	{
		static const uint8_t e[] = { 0xc4, 0x00, 0xa0 };

		mpr_init(&r, e, sizeof e, BAD);
		cr_assert_eq(mpr_bin(&r, 0, &v, &len), 0);
		cr_assert_eq(len, 0);
		cr_assert_eq(mpr_str(&r, 0, &sv, &len), 0);
		cr_assert_eq(len, 0);
	}
	free(b);
	free(s);
}

/* A declared length past the bytes left is refused, with nothing handed
 * out, before max is even looked at. */
Test(mpr, declared_lengths_past_the_input_are_refused_first)
{
	static const struct {
		kind k;
		uint8_t b[12];
		size_t n;
	} cases[] = {
		{ K_BIN, { 0xc4, 0x05, 1, 2, 3, 4 }, 6 },
		{ K_BIN, { 0xc4, 0xff }, 2 },
		{ K_BIN, { 0xc5, 0xff, 0xff, 1, 2, 3 }, 6 },
		{ K_BIN, { 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3 }, 8 },
		{ K_BIN, { 0xc6, 0x00, 0x00, 0x00, 0x04, 1, 2, 3 }, 8 },
		{ K_BINNIL, { 0xc6, 0xff, 0xff, 0xff, 0xff, 1 }, 6 },
		{ K_STR, { 0xa5, 'a', 'b', 'c', 'd' }, 5 },
		{ K_STR, { 0xbf, 'a' }, 2 },
		{ K_STR, { 0xd9, 0x09, 'a' }, 3 },
		{ K_STR, { 0xda, 0x01, 0x00, 'a' }, 4 },
		{ K_STR, { 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b' }, 7 },
		{ K_SKIP, { 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2, 3 }, 8 },
		{ K_SKIP, { 0xdb, 0x00, 0x00, 0x01, 0x00, 'a' }, 6 },
		{ K_SKIP, { 0xa3, 'a', 'b' }, 3 },
		{ K_SKIP, { 0xc7, 0xff, 0x01, 0xaa }, 4 },
		{ K_SKIP, { 0xc7, 0x01, 0x01 }, 3 },
		{ K_SKIP, { 0xc8, 0xff, 0xff, 0x01, 0xaa }, 5 },
		{ K_SKIP, { 0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0xaa }, 7 },
		{ K_SKIP, { 0xdd, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02 }, 7 },
		{ K_SKIP, { 0xdf, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03 }, 8 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (size_t max = 0; max <= SIZE_MAX / 2; max = max * 2 + 1) {
			uint8_t *buf = copy_exact(cases[i].b, cases[i].n);
			out o;
			mpr r;

			out_init(&o);
			mpr_init(&r, buf, cases[i].n, BAD);
			cr_assert_eq(run(cases[i].k, &r, max, &o), BAD, "case %zu max %zu", i, max);
			cr_assert_eq(o.v, POISON, "case %zu handed out bytes", i);
			cr_assert_eq(o.len, 0xdead);
			free(buf);
			if (cases[i].k == K_SKIP)
				break;
		}
	}
}

/* --- mpr_skip -------------------------------------------------------------- */

Test(mpr, skip_walks_a_sequence_of_every_type)
{
	size_t total = 0, at = 0, count = 0;
	uint8_t *all, *buf;
	mpr r;

	for (size_t i = 0; i < NSAMPLES; i++)
		if (samples[i].cls != C_NEVER)
			total += samples[i].n;
	all = malloc(total);
	cr_assert_not_null(all);
	for (size_t i = 0; i < NSAMPLES; i++)
		if (samples[i].cls != C_NEVER) {
			memcpy(all + at, samples[i].b, samples[i].n);
			at += samples[i].n;
		}
	buf = copy_exact(all, total);
	mpr_init(&r, buf, total, BAD);
	at = 0;
	for (size_t i = 0; i < NSAMPLES; i++) {
		if (samples[i].cls == C_NEVER)
			continue;
		cr_assert(r.p == buf + at, "before %s", samples[i].what);
		cr_assert_eq(mpr_skip(&r, 4), 0, "%s", samples[i].what);
		at += samples[i].n;
		count++;
	}
	cr_assert_eq(mpr_left(&r), 0);
	cr_assert_gt(count, 50);
	free(buf);
	free(all);
}

Test(mpr, skip_refuses_the_unused_type_byte)
{
	static const uint8_t in[] = { 0x92, 0x01, 0xc1 };
	mpr r;

	mpr_init(&r, in, 1 + 0, BAD);
	cr_assert_eq(mpr_skip(&r, 4), BAD);
	mpr_init(&r, in + 2, 1, BAD);
	cr_assert_eq(mpr_skip(&r, 4), BAD);
	mpr_init(&r, in, sizeof in, BAD);
	cr_assert_eq(mpr_skip(&r, 4), BAD);
}

Test(mpr, skip_counts_map_entries_twice)
{
	static const uint8_t key_only[] = { 0x81, 0x01 };
	static const uint8_t pair[] = { 0x81, 0x01, 0x02 };
	static const uint8_t two[] = { 0xde, 0x00, 0x02, 0xa1, 'a', 0x90, 0xc0, 0x81, 0xc2, 0xc3 };
	uint8_t *a = copy_exact(key_only, sizeof key_only), *b = copy_exact(pair, sizeof pair);
	uint8_t *c = copy_exact(two, sizeof two);
	mpr r;

	mpr_init(&r, a, sizeof key_only, BAD);
	cr_assert_eq(mpr_skip(&r, 4), BAD);
	mpr_init(&r, b, sizeof pair, BAD);
	cr_assert_eq(mpr_skip(&r, 4), 0);
	cr_assert_eq(mpr_left(&r), 0);
	mpr_init(&r, c, sizeof two, BAD);
	cr_assert_eq(mpr_skip(&r, 4), 0);
	cr_assert_eq(mpr_left(&r), 0);
	free(a);
	free(b);
	free(c);
}

/* k containers nested need max_depth k; scalars need none. */
Test(mpr, skip_depth_limit)
{
	uint8_t buf[64];
	mpr r;

	buf[0] = 0x2a;
	mpr_init(&r, buf, 1, BAD);
	cr_assert_eq(mpr_skip(&r, 0), 0);

	for (unsigned k = 1; k <= 40; k++) {
		uint8_t *in;

		/* [[...[ {"x": 1} ]...]]: k - 1 arrays around a map */
		for (unsigned i = 0; i + 1 < k; i++)
			buf[i] = 0x91;
		buf[k - 1] = 0x81;
		buf[k] = 0xa1;
		buf[k + 1] = 'x';
		buf[k + 2] = 0x01;
		in = copy_exact(buf, k + 3);
		mpr_init(&r, in, k + 3, BAD);
		cr_assert_eq(mpr_skip(&r, k), 0, "depth %u", k);
		cr_assert_eq(mpr_left(&r), 0);
		mpr_init(&r, in, k + 3, BAD);
		cr_assert_eq(mpr_skip(&r, k - 1), BAD, "depth %u under max %u", k, k - 1);
		mpr_init(&r, in, k + 3, BAD);
		cr_assert_eq(mpr_skip(&r, UINT32_MAX), 0);
		free(in);
	}
}

/* A megabyte of nesting is refused at the limit, not by running out of
 * stack. */
Test(mpr, skip_deep_nesting_stops_at_the_limit)
{
	size_t n = 1u << 20;
	uint8_t *buf = malloc(n);
	mpr r;

	cr_assert_not_null(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = i % 2 ? 0x91 : 0x81;
	buf[n - 1] = 0x00;
	mpr_init(&r, buf, n, BAD);
	cr_assert_eq(mpr_skip(&r, 64), BAD);
	cr_assert_eq(mpr_left(&r), n - 65, "read on past the limit");
	free(buf);
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A count the bytes cannot hold fails at once, without walking it. */
Test(mpr, skip_container_bombs_fail_fast)
{
	static const struct {
		uint8_t b[16];
		size_t n;
	} bombs[] = {
		{ { 0xdd, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ { 0xdf, 0xff, 0xff, 0xff, 0xff }, 5 },
		{ { 0xdc, 0xff, 0xff }, 3 },
		{ { 0xde, 0xff, 0xff }, 3 },
		{ { 0x91, 0xdd, 0xff, 0xff, 0xff, 0xff }, 6 },
		{ { 0x81, 0x01, 0xdf, 0xff, 0xff, 0xff, 0xff }, 7 },
		{ { 0x9f, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xdd, 0xff, 0xff, 0xff, 0xff }, 11 },
		{ { 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05 }, 10 },
	};
	double t0 = now(), secs;

	for (int rep = 0; rep < 20000; rep++) {
		for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
			mpr r;

			mpr_init(&r, bombs[i].b, bombs[i].n, BAD);
			cr_assert_eq(mpr_skip(&r, 64), BAD, "bomb %zu", i);
		}
	}
	secs = now() - t0;
	cr_assert_lt(secs, 2.0, "160000 bombs took %.3f s", secs);

	/* the reader of a count hands it back as declared: comparing it with
	 * mpr_left() is the caller's part */
	{
		uint8_t *buf = copy_exact(bombs[0].b, bombs[0].n);
		uint64_t n = 0;
		mpr r;

		mpr_init(&r, buf, bombs[0].n, BAD);
		cr_assert_eq(mpr_array(&r, &n), 0);
		cr_assert_eq(n, UINT32_MAX);
		cr_assert_eq(mpr_left(&r), 0);
		free(buf);
	}
}

/* An array32 of G fixarrays of 15 fixints, declaring one element more than
 * there is: the walk is linear in the input and ends in a refusal. */
Test(mpr, skip_is_linear_in_the_input)
{
	size_t groups = 200000, n = 5 + 16 * groups;
	uint8_t *buf = malloc(n);
	double t0, secs;
	mpr r;

	cr_assert_not_null(buf);
	buf[0] = 0xdd;
	buf[1] = (uint8_t)((groups + 1) >> 24);
	buf[2] = (uint8_t)((groups + 1) >> 16);
	buf[3] = (uint8_t)((groups + 1) >> 8);
	buf[4] = (uint8_t)(groups + 1);
	for (size_t i = 5; i < n; i++)
		buf[i] = (i - 5) % 16 == 0 ? 0x9f : 0x01;
	t0 = now();
	for (int rep = 0; rep < 5; rep++) {
		mpr_init(&r, buf, n, BAD);
		cr_assert_eq(mpr_skip(&r, 4), BAD);
		cr_assert_eq(mpr_left(&r), 0);
	}
	/* with the right count it is one value */
	buf[4] = (uint8_t)groups;
	buf[3] = (uint8_t)(groups >> 8);
	buf[2] = (uint8_t)(groups >> 16);
	mpr_init(&r, buf, n, BAD);
	cr_assert_eq(mpr_skip(&r, 4), 0);
	cr_assert_eq(mpr_left(&r), 0);
	secs = now() - t0;
	/* quadratic would take minutes; linear takes ~0.1 s, ~5 s under
	 * valgrind (which ran over 5 s on a busy machine: 20 s there) */
	cr_assert_lt(secs, getenv("DKV_VALGRIND") ? 20.0 : 5.0, "took %.3f s", secs);
	free(buf);
}

Test(mpr, bad_code_is_the_cursors)
{
	static const uint8_t in[] = { 0xc1 };
	static const int codes[] = { DKV_EPROTO, DKV_ECORRUPT, -1, BAD };
	uint64_t u;
	mpr r;

	for (size_t i = 0; i < 4; i++) {
		mpr_init(&r, in, 1, codes[i]);
		cr_assert_eq(r.bad, codes[i]);
		cr_assert_eq(mpr_uint(&r, &u), codes[i]);
		cr_assert_eq(mpr_skip(&r, 1), codes[i]);
	}
}
