#include "config.h"
/*
 * test_proto.c -- src/proto.c, the frame codec: every message type round
 * trips through proto_encode_*, proto_frame_length and proto_decode with
 * every field checked; golden bytes written by hand from the format in
 * proto.h pin version 1; limits, versions, types and options are refused
 * with the documented codes and readable reasons; every truncation and
 * every single-bit flip of valid payloads is survived; container bombs are
 * refused without a large allocation; and the error and type tables agree
 * with each other.
 *
 * Payloads handed to the decoder are heap copies of exactly their length
 * (and an empty one is a NULL pointer), so that an overread is caught when
 * built with -fsanitize=address; valgrind runs this suite for leaks.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <criterion/criterion.h>

#include "dkv_config.h"   /* DKV_QUORUM_* */
#include "error.h"
#include "proto.h"
#include "testutil.h"

/* The node's default limits (dkv_config.h: max_key_size 1K,
 * max_value_size 1M), and small ones the tests can reach. */
static const proto_limits deflim = { .max_key = 1024, .max_value = 1u << 20 };
static const proto_limits small = { .max_key = 4, .max_value = 8 };

/* --- helpers ----------------------------------------------------------- */

/* A payload in an exact-size heap buffer: caller frees p with free(). */
typedef struct payload {
	uint8_t *p;
	size_t n;
} payload;

/* The one frame in sb (which this destroys): its length prefix must say
 * exactly how many bytes follow. */
static payload take(msgpack_sbuffer *sb)
{
	payload f;

	cr_assert_geq(sb->size, PROTO_HEADER_SIZE + 1);
	f.n = proto_frame_length((const uint8_t *)sb->data);
	cr_assert_eq(f.n, sb->size - PROTO_HEADER_SIZE, "length prefix %zu, %zu bytes follow",
		     f.n, sb->size - PROTO_HEADER_SIZE);
	f.p = copy_exact(sb->data + PROTO_HEADER_SIZE, f.n);
	msgpack_sbuffer_destroy(sb);
	return f;
}

static payload mkpayload(const uint8_t *b, size_t n)
{
	payload f = { copy_exact(b, n), n };

	return f;
}
#define P(...) mkpayload((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))


static payload encode(const proto_msg *m)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_msg(&sb, m), 0);
	return take(&sb);
}

static bool bytes_eq(proto_bytes a, proto_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* Every field of a equals b's, byte strings by content. */
static void assert_msg_eq(const proto_msg *a, const proto_msg *b, const char *what)
{
	cr_assert_eq(a->type, b->type, "%s: type %u, not %u", what, a->type, b->type);
	cr_assert_eq(a->id, b->id, "%s: id", what);
	cr_assert(bytes_eq(a->key, b->key), "%s: key (%zu, %zu bytes)", what, a->key.len,
		  b->key.len);
	cr_assert(bytes_eq(a->value, b->value), "%s: value", what);
	cr_assert(bytes_eq(a->context, b->context), "%s: context", what);
	cr_assert_eq(a->opts.r, b->opts.r, "%s: r", what);
	cr_assert_eq(a->opts.w, b->opts.w, "%s: w", what);
	cr_assert_eq(a->opts.pr, b->opts.pr, "%s: pr", what);
	cr_assert_eq(a->opts.pw, b->opts.pw, "%s: pw", what);
	cr_assert_eq(a->opts.timeout_ms, b->opts.timeout_ms, "%s: timeout_ms", what);
	cr_assert_eq(a->opts.replace, b->opts.replace, "%s: replace", what);
	cr_assert_eq(a->opts.siblings, b->opts.siblings, "%s: siblings option", what);
	cr_assert_eq(a->opts.stamps, b->opts.stamps, "%s: stamps option", what);
	cr_assert_eq(a->stamps == NULL, b->stamps == NULL, "%s: stamps sent", what);
	for (size_t i = 0; a->stamps != NULL && i < a->nvalues; i++)
		cr_assert_eq(a->stamps[i], b->stamps[i], "%s: stamp %zu", what, i);
	cr_assert_eq(a->opts.ttl_ms, b->opts.ttl_ms, "%s: ttl_ms", what);
	for (size_t i = 0; a->expires != NULL && i < a->nvalues; i++)
		cr_assert_eq(a->expires[i], b->expires[i], "%s: expires %zu", what, i);
	cr_assert_eq(a->has_siblings, b->has_siblings, "%s: OK form", what);
	cr_assert_eq(a->siblings, b->siblings, "%s: OK siblings", what);
	cr_assert_eq(a->found, b->found, "%s: found", what);
	cr_assert_eq(a->nvalues, b->nvalues, "%s: nvalues %zu, not %zu", what, a->nvalues,
		     b->nvalues);
	for (size_t i = 0; i < a->nvalues; i++)
		cr_assert(bytes_eq(a->values[i], b->values[i]), "%s: value %zu", what, i);
	cr_assert_eq(a->tombstones, b->tombstones, "%s: tombstones", what);
	cr_assert_eq(a->code, b->code, "%s: code", what);
	cr_assert(bytes_eq(a->message, b->message), "%s: message", what);
	cr_assert(bytes_eq(a->command, b->command), "%s: command", what);
	cr_assert_eq(a->nargs, b->nargs, "%s: nargs %zu, not %zu", what, a->nargs, b->nargs);
	for (size_t i = 0; i < a->nargs; i++)
		cr_assert(bytes_eq(a->args[i], b->args[i]), "%s: arg %zu", what, i);
	cr_assert(bytes_eq(a->info, b->info), "%s: info (%zu, %zu bytes)", what, a->info.len,
		  b->info.len);
}

/* An all-zero message but for type and id. */
static proto_msg msg(uint32_t type, uint64_t id)
{
	proto_msg m;

	memset(&m, 0, sizeof m);
	m.type = type;
	m.id = id;
	return m;
}

static proto_bytes bs(const void *p, size_t len)
{
	proto_bytes b = { p, len };

	return b;
}
#define LIT(s) bs(s, sizeof(s) - 1)

/* Decode a copy of len bytes of p and return the code; an error must
 * leave no allocation and a reason in err (if asked for). */
static int dec_rc(const uint8_t *p, size_t len, const proto_limits *lim, proto_msg *out,
		  char *err, size_t errlen)
{
	uint8_t *copy = copy_exact(p, len);
	proto_msg m;
	int rc;

	memset(&m, 0xa5, sizeof m);
	if (errlen > 0)
		memset(err, 'x', errlen);
	rc = proto_decode(copy, len, lim, &m, err, errlen);
	if (rc != 0) {
		cr_assert_null(m.values, "error %d left values allocated", rc);
		cr_assert_eq(m.nvalues, 0);
		cr_assert_eq(m.key.len, 0);
		if (errlen > 0)
			cr_assert(err[0] != '\0' && memchr(err, '\0', errlen) != NULL,
				  "error %d without a reason", rc);
	} else if (errlen > 0) {
		cr_assert_eq(err[0], '\0');
	}
	if (out != NULL) {
		/* the byte strings would dangle: keep only the scalars */
		*out = msg(m.type, m.id);
		out->code = m.code;
	}
	proto_msg_release(&m);
	free(copy);
	return rc;
}

/* Decode f whole (into m, borrowing from f) and check it equals want. */
static void decode_and_check(const payload *f, const proto_limits *lim, const proto_msg *want,
			     const char *what)
{
	char err[256];
	proto_msg m;
	int rc;

	rc = proto_decode(f->p, f->n, lim, &m, err, sizeof err);
	cr_assert_eq(rc, 0, "%s: %d (%s)", what, rc, err);
	cr_assert_eq(err[0], '\0');
	assert_msg_eq(&m, want, what);
	/* byte strings borrow from the payload */
	if (m.key.len > 0)
		cr_assert(m.key.p >= f->p && m.key.p + m.key.len <= f->p + f->n);
	if (m.value.len > 0)
		cr_assert(m.value.p >= f->p && m.value.p + m.value.len <= f->p + f->n);
	proto_msg_release(&m);
	cr_assert_null(m.values);
	cr_assert_eq(m.nvalues, 0);
}

/* Encode want, check the frame, decode it and compare. */
static void round_trip(const proto_msg *want, const proto_limits *lim, const char *what)
{
	payload f = encode(want);

	decode_and_check(&f, lim, want, what);
	free(f.p);
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 8));
	return p;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

TestSuite(proto, .description = "frames and message codecs");

/* --- tables ---------------------------------------------------------------- */

Test(proto, type_table)
{
	static const struct {
		uint32_t num;
		const char *name;
		bool req;
	} types[] = {
		{ 1, "GET", true }, { 2, "PUT", true }, { 3, "DELETE", true }, { 4, "PING", true },
		{ 5, "ADMIN", true },
		{ 64, "VALUE", false }, { 65, "OK", false }, { 66, "PONG", false },
		{ 67, "ERROR", false }, { 68, "INFO", false },
	};
	static const uint32_t unknown[] = { 0, 6, 63, 69, 128, 256, UINT32_MAX };
	size_t n = 0;

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		cr_assert_str_eq(proto_type_name(types[i].num), types[i].name);
		cr_assert_eq(proto_is_request(types[i].num), types[i].req, "%s", types[i].name);
	}
#define X(name, num, wire, req)                                     \
	cr_assert_eq(PROTO_##name, num);                            \
	cr_assert_str_eq(proto_type_name(num), wire);               \
	cr_assert_str_eq(#name, wire);                              \
	cr_assert_eq(proto_is_request(num), req);                   \
	n++;
	PROTO_TYPES(X)
#undef X
	cr_assert_eq(n, sizeof types / sizeof types[0]);
	for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		cr_assert_null(proto_type_name(unknown[i]));
		cr_assert(!proto_is_request(unknown[i]));
	}
}

Test(proto, error_tables_are_consistent)
{
	static const struct {
		uint32_t code;
		int dkv;
		const char *text;
	} table[] = {
#define X(name, num, dkv, text) { num, dkv, text },
		PROTO_ERRORS(X)
#undef X
	};
	size_t n = sizeof table / sizeof table[0];

	cr_assert_eq(n, 12);
	for (size_t i = 0; i < n; i++) {
		size_t same = 0;
		uint32_t back;

		for (size_t j = 0; j < n; j++) {
			if (j != i)
				cr_assert_neq(table[i].code, table[j].code, "code %u twice",
					      table[i].code);
			same += table[j].dkv == table[i].dkv;
		}
		cr_assert_eq(proto_error_to_dkv(table[i].code), table[i].dkv);
		cr_assert_str_eq(proto_error_text(table[i].code), table[i].text);
		cr_assert_neq(table[i].code, 0);
		back = proto_error_from_dkv(table[i].dkv);
		/* back to a code that stands for the same DKV error ... */
		cr_assert_eq(proto_error_to_dkv(back), table[i].dkv, "code %u: %d -> %u",
			     table[i].code, table[i].dkv, back);
		/* ... which is this code when no other shares the DKV error */
		if (same == 1)
			cr_assert_eq(back, table[i].code, "code %u: %d -> %u", table[i].code,
				     table[i].dkv, back);
	}
	/* the ambiguous ones pick the general code */
	cr_assert_eq(proto_error_from_dkv(DKV_EPROTO), PROTO_ERR_PROTOCOL);
	cr_assert_eq(proto_error_from_dkv(DKV_EFAILED), PROTO_ERR_STORAGE);

	/* unknown wire codes */
	cr_assert_eq(proto_error_to_dkv(0), DKV_EFAILED);
	cr_assert_eq(proto_error_to_dkv(13), DKV_EFAILED);
	cr_assert_eq(proto_error_to_dkv(UINT32_MAX), DKV_EFAILED);
	cr_assert_str_eq(proto_error_text(0), "unknown error");
	cr_assert_str_eq(proto_error_text(1000), "unknown error");

	/* every DKV code and some errnos map to a code that exists */
	for (int rc = DKV_EBASE - 1; rc > DKV_ELAST; rc--)
		cr_assert_str_neq(proto_error_text(proto_error_from_dkv(rc)), "unknown error",
				  "%d", rc);
	cr_assert_eq(proto_error_from_dkv(-EIO), PROTO_ERR_STORAGE);
	cr_assert_eq(proto_error_from_dkv(-ENOSPC), PROTO_ERR_STORAGE);
	cr_assert_eq(proto_error_to_dkv(proto_error_from_dkv(-EIO)), DKV_EFAILED);
	cr_assert_str_neq(proto_error_text(proto_error_from_dkv(0)), "unknown error");
	cr_assert_str_neq(proto_error_text(proto_error_from_dkv(-99999)), "unknown error");
}

Test(proto, frame_length_is_big_endian)
{
	static const uint8_t a[4] = { 0, 0, 0, 0 }, b[4] = { 0x01, 0x02, 0x03, 0x04 },
			     c[4] = { 0xff, 0xff, 0xff, 0xff }, d[4] = { 0x80, 0, 0, 0x01 };

	cr_assert_eq(proto_frame_length(a), 0);
	cr_assert_eq(proto_frame_length(b), 0x01020304u);
	cr_assert_eq(proto_frame_length(c), UINT32_MAX);
	cr_assert_eq(proto_frame_length(d), 0x80000001u);
}

/* --- golden bytes ---------------------------------------------------------- */

/* Written by hand from proto.h: [version, type, id, body] in msgpack, the
 * smallest encoding of each integer, opts in the order r w pr pw
 * timeout_ms, an empty context as nil. */
static const uint8_t golden_get[] = {
	0x00, 0x00, 0x00, 0x1b,                 /* payload length 27 */
	0x94, 0x01, 0x01, 0x07,                 /* [1, GET, 7, */
	0x92, 0xc4, 0x02, 'k', 0x00,            /*  [bin "k\0", */
	0x82, 0xa1, 'r', 0x02,                  /*   {"r": 2, */
	0xaa, 't', 'i', 'm', 'e', 'o', 'u', 't', '_', 'm', 's', 0xcd, 0x01, 0xf4, /* "timeout_ms": 500}]] */
};

static const uint8_t golden_value[] = {
	0x00, 0x00, 0x00, 0x14,                 /* 20 */
	0x94, 0x01, 0x40, 0xcd, 0x01, 0x2c,     /* [1, VALUE, 300, */
	0x94, 0xc3,                             /*  [true, */
	0x92, 0xc4, 0x01, 'a', 0xc4, 0x01, 0x00, /*   [bin "a", bin "\0"], */
	0xc4, 0x02, 0x01, 0x02,                 /*   bin "\1\2", */
	0x01,                                   /*   1]] */
};

static const uint8_t golden_put[] = {
	0x00, 0x00, 0x00, 0x0f,                 /* 15 */
	0x94, 0x01, 0x02, 0x01,                 /* [1, PUT, 1, */
	0x94, 0xc4, 0x01, 'k', 0xc4, 0x00, 0xc0, /*  [bin "k", bin "", nil, */
	0x81, 0xa1, 'w', 0xfe,                  /*   {"w": -2}]] */
};

static const uint8_t golden_delete[] = {
	0x00, 0x00, 0x00, 0x14,                 /* 20 */
	0x94, 0x01, 0x03, 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, /* [1, DELETE, 2^32, */
	0x93, 0xc4, 0x01, 'k', 0xc4, 0x01, 'c', 0x80, /* [bin "k", bin "c", {}]] */
};

static const uint8_t golden_ping[] = { 0x00, 0x00, 0x00, 0x05, 0x94, 0x01, 0x04, 0x00, 0xc0 };
static const uint8_t golden_ok[] = { 0x00, 0x00, 0x00, 0x06, 0x94, 0x01, 0x41, 0xcc, 0x80, 0xc0 };
static const uint8_t golden_pong[] = {
	0x00, 0x00, 0x00, 0x0d, 0x94, 0x01, 0x42,
	0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0,
};
static const uint8_t golden_admin[] = {
	0x00, 0x00, 0x00, 0x10,                 /* 16 */
	0x94, 0x01, 0x05, 0x0b,                 /* [1, ADMIN, 11, */
	0x92, 0xa5, 'l', 'e', 'a', 'v', 'e',    /*  ["leave", */
	0x92, 0xa2, 'n', '2', 0xa0,             /*   ["n2", ""]]] */
};
static const uint8_t golden_admin_noargs[] = {
	0x00, 0x00, 0x00, 0x0b,                 /* 11 */
	0x94, 0x01, 0x05, 0x01,                 /* [1, ADMIN, 1, */
	0x92, 0xa4, 'r', 'i', 'n', 'g', 0x90,   /*  ["ring", []]] */
};
/* The map goes out exactly as given, here in a wider form than needed. */
static const uint8_t golden_info_map[] = {
	0xde, 0x00, 0x02,                       /* map 16 of 2: */
	0xa2, 'o', 'k', 0xc3,                   /*  {"ok": true, */
	0xa1, 's', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, /* "s": 1.5} */
};
static const uint8_t golden_info[] = {
	0x00, 0x00, 0x00, 0x16,                 /* 22 */
	0x94, 0x01, 0x44, 0x0c,                 /* [1, INFO, 12, */
	0xde, 0x00, 0x02, 0xa2, 'o', 'k', 0xc3, /*  the map above] */
	0xa1, 's', 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
};
static const uint8_t golden_error[] = {
	0x00, 0x00, 0x00, 0x0d,
	0x94, 0x01, 0x43, 0x09,                 /* [1, ERROR, 9, */
	0x92, 0x06, 0xa6, 'q', 'u', 'o', 'r', 'u', 'm', /* [6, "quorum"]] */
};

static void check_golden(const msgpack_sbuffer *sb, const uint8_t *want, size_t n, const char *what)
{
	cr_assert_eq(sb->size, n, "%s: %zu bytes, not %zu", what, sb->size, n);
	cr_assert_arr_eq(sb->data, want, n, "%s: bytes differ", what);
}

Test(proto, golden_bytes)
{
	static const proto_bytes vals[] = { { (const uint8_t *)"a", 1 }, { (const uint8_t *)"", 1 } };
	proto_opts o = { .r = 2, .timeout_ms = 500 };
	proto_opts ow = { .w = DKV_QUORUM_QUORUM };
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, 7, "k", 2, &o), 0);
	check_golden(&sb, golden_get, sizeof golden_get, "GET");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_value(&sb, 300, true, vals, 2, "\x01\x02", 2, 1), 0);
	check_golden(&sb, golden_value, sizeof golden_value, "VALUE");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_put(&sb, 1, "k", 1, "", 0, NULL, 0, &ow), 0);
	check_golden(&sb, golden_put, sizeof golden_put, "PUT");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_delete(&sb, UINT64_C(1) << 32, "k", 1, "c", 1, NULL), 0);
	check_golden(&sb, golden_delete, sizeof golden_delete, "DELETE");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_ping(&sb, 0), 0);
	check_golden(&sb, golden_ping, sizeof golden_ping, "PING");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_ok(&sb, 128, NULL, 0), 0);
	check_golden(&sb, golden_ok, sizeof golden_ok, "OK");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_pong(&sb, UINT64_MAX), 0);
	check_golden(&sb, golden_pong, sizeof golden_pong, "PONG");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_error(&sb, 9, PROTO_ERR_QUORUM, "quorum"), 0);
	check_golden(&sb, golden_error, sizeof golden_error, "ERROR");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_admin(&sb, 11, "leave", (const char *const[]){ "n2", "" }, 2), 0);
	check_golden(&sb, golden_admin, sizeof golden_admin, "ADMIN");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_admin(&sb, 1, "ring", NULL, 0), 0);
	check_golden(&sb, golden_admin_noargs, sizeof golden_admin_noargs, "ADMIN no args");
	msgpack_sbuffer_clear(&sb);

	cr_assert_eq(proto_encode_info(&sb, 12, golden_info_map, sizeof golden_info_map), 0);
	check_golden(&sb, golden_info, sizeof golden_info, "INFO");
	msgpack_sbuffer_destroy(&sb);
}

Test(proto, golden_admin_and_info_decode)
{
	proto_msg w;
	payload f;

	w = msg(PROTO_ADMIN, 11);
	w.command = LIT("leave");
	w.args[0] = LIT("n2");
	w.args[1] = LIT("");
	w.nargs = 2;
	f = mkpayload(golden_admin + 4, sizeof golden_admin - 4);
	decode_and_check(&f, &deflim, &w, "ADMIN");
	free(f.p);

	w = msg(PROTO_INFO, 12);
	w.info = bs(golden_info_map, sizeof golden_info_map);
	f = mkpayload(golden_info + 4, sizeof golden_info - 4);
	decode_and_check(&f, &deflim, &w, "INFO");
	free(f.p);
}

/* The decoder reads the golden frames back. */
Test(proto, golden_bytes_decode)
{
	static const proto_bytes vals[] = { { (const uint8_t *)"a", 1 }, { (const uint8_t *)"", 1 } };
	proto_msg w;
	payload f;

	w = msg(PROTO_GET, 7);
	w.key = bs("k", 2);
	w.opts.r = 2;
	w.opts.timeout_ms = 500;
	f = mkpayload(golden_get + 4, sizeof golden_get - 4);
	cr_assert_eq(proto_frame_length(golden_get), f.n);
	decode_and_check(&f, &deflim, &w, "GET");
	free(f.p);

	w = msg(PROTO_VALUE, 300);
	w.found = true;
	w.values = (proto_bytes *)vals;
	w.nvalues = 2;
	w.context = bs("\x01\x02", 2);
	w.tombstones = 1;
	f = mkpayload(golden_value + 4, sizeof golden_value - 4);
	cr_assert_eq(proto_frame_length(golden_value), f.n);
	decode_and_check(&f, &deflim, &w, "VALUE");
	free(f.p);

	w = msg(PROTO_PUT, 1);
	w.key = LIT("k");
	w.opts.w = DKV_QUORUM_QUORUM;
	f = mkpayload(golden_put + 4, sizeof golden_put - 4);
	decode_and_check(&f, &deflim, &w, "PUT");
	free(f.p);

	w = msg(PROTO_DELETE, UINT64_C(1) << 32);
	w.key = LIT("k");
	w.context = LIT("c");
	f = mkpayload(golden_delete + 4, sizeof golden_delete - 4);
	decode_and_check(&f, &deflim, &w, "DELETE");
	free(f.p);

	w = msg(PROTO_PING, 0);
	f = mkpayload(golden_ping + 4, sizeof golden_ping - 4);
	decode_and_check(&f, &deflim, &w, "PING");
	free(f.p);
	w = msg(PROTO_OK, 128);
	f = mkpayload(golden_ok + 4, sizeof golden_ok - 4);
	decode_and_check(&f, &deflim, &w, "OK");
	free(f.p);
	w = msg(PROTO_PONG, UINT64_MAX);
	f = mkpayload(golden_pong + 4, sizeof golden_pong - 4);
	decode_and_check(&f, &deflim, &w, "PONG");
	free(f.p);

	w = msg(PROTO_ERROR, 9);
	w.code = PROTO_ERR_QUORUM;
	w.message = LIT("quorum");
	f = mkpayload(golden_error + 4, sizeof golden_error - 4);
	decode_and_check(&f, &deflim, &w, "ERROR");
	free(f.p);
}

/* --- round trips ----------------------------------------------------------- */

static const uint64_t ids[] = {
	0, 1, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, UINT64_C(1) << 32, INT64_MAX,
	UINT64_MAX,
};
#define NIDS (sizeof ids / sizeof ids[0])

static const proto_opts opt_cases[] = {
	{ .r = 0 },
	{ .r = 1 },
	{ .w = 16 },
	{ .r = DKV_QUORUM_ONE, .w = DKV_QUORUM_QUORUM, .pr = DKV_QUORUM_ALL, .pw = 16,
	  .timeout_ms = 3600000 },
	{ .pr = 2, .pw = DKV_QUORUM_ONE },
	{ .r = DKV_QUORUM_ALL, .w = DKV_QUORUM_ALL, .pr = DKV_QUORUM_QUORUM,
	  .pw = DKV_QUORUM_QUORUM, .timeout_ms = 1 },
	{ .timeout_ms = 65536 },
	{ .r = 3, .w = 2, .pr = 1, .pw = 1, .timeout_ms = 250 },
};
#define NOPTS (sizeof opt_cases / sizeof opt_cases[0])

Test(proto, round_trip_get)
{
	uint8_t *big = pattern(1024, 3);
	const proto_bytes keys[] = { LIT("k"), bs("a\0b", 3), bs("\0", 1), bs(big, 1024) };

	for (size_t i = 0; i < NIDS; i++)
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
			for (size_t o = 0; o < NOPTS; o++) {
				proto_msg w = msg(PROTO_GET, ids[i]);

				w.key = keys[k];
				w.opts = opt_cases[o];
				round_trip(&w, &deflim, "GET");
			}
	/* NULL opts is the empty map */
	{
		msgpack_sbuffer sb;
		proto_msg w = msg(PROTO_GET, 5);
		payload f;

		w.key = LIT("key");
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(proto_encode_get(&sb, 5, "key", 3, NULL), 0);
		f = take(&sb);
		cr_assert_eq(f.p[f.n - 1], 0x80);
		decode_and_check(&f, &deflim, &w, "GET NULL opts");
		free(f.p);
	}
	free(big);
}

Test(proto, round_trip_put)
{
	uint8_t *mib = pattern(1u << 20, 5), *ctx = pattern(300, 9);
	const proto_bytes values[] = {
		bs("", 0), bs(NULL, 0), LIT("v"), bs("v\0v\0", 4), bs(mib, 70000), bs(mib, 1u << 20),
	};
	const proto_bytes ctxs[] = { bs(NULL, 0), bs("\0", 1), bs(ctx, 300) };

	for (size_t v = 0; v < sizeof values / sizeof values[0]; v++)
		for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++)
			for (size_t o = 0; o < NOPTS; o++) {
				proto_msg w = msg(PROTO_PUT, ids[(v + c + o) % NIDS]);

				w.key = bs("\0k\0", 3);
				w.value = values[v];
				w.context = ctxs[c];
				w.opts = opt_cases[o];
				round_trip(&w, &deflim, "PUT");
			}
	free(mib);
	free(ctx);
}

Test(proto, round_trip_delete)
{
	uint8_t *ctx = pattern(70000, 1);
	const proto_bytes ctxs[] = { bs(NULL, 0), bs("\0\0", 2), bs(ctx, 255), bs(ctx, 70000) };

	for (size_t i = 0; i < NIDS; i++)
		for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++)
			for (size_t o = 0; o < NOPTS; o++) {
				proto_msg w = msg(PROTO_DELETE, ids[i]);

				w.key = bs("\xff\0", 2);
				w.context = ctxs[c];
				w.opts = opt_cases[o];
				round_trip(&w, &deflim, "DELETE");
			}
	free(ctx);
}

Test(proto, round_trip_nil_bodies)
{
	static const uint32_t types[] = { PROTO_PING, PROTO_OK, PROTO_PONG };

	for (size_t t = 0; t < 3; t++)
		for (size_t i = 0; i < NIDS; i++) {
			proto_msg w = msg(types[t], ids[i]);

			round_trip(&w, &deflim, proto_type_name(types[t]));
		}
}

Test(proto, round_trip_value)
{
	uint8_t *big = pattern(70000, 11);
	proto_bytes many[100];
	const proto_bytes one_empty[] = { bs(NULL, 0) };
	const proto_bytes one[] = { bs("x\0", 2) };
	static const uint64_t tombs[] = { 0, 1, 2, 255, UINT64_C(1) << 40, UINT64_MAX };
	const struct {
		const proto_bytes *v;
		size_t n;
	} sets[] = { { NULL, 0 }, { one_empty, 1 }, { one, 1 }, { many, 100 } };
	const proto_bytes ctxs[] = { bs(NULL, 0), bs("c\0", 2), bs(big, 300) };

	for (size_t i = 0; i < 100; i++)
		many[i] = bs(big + i * 7, i % 3 == 0 ? 0 : i == 50 ? 70000 - 350 : i * 3);

	for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
		for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++)
			for (size_t t = 0; t < sizeof tombs / sizeof tombs[0]; t++)
				for (int found = 0; found < 2; found++) {
					proto_msg w = msg(PROTO_VALUE, ids[(s + c + t) % NIDS]);

					w.found = found;
					w.values = (proto_bytes *)sets[s].v;
					w.nvalues = sets[s].n;
					w.context = ctxs[c];
					w.tombstones = tombs[t];
					round_trip(&w, &deflim, "VALUE");
					round_trip(&w, &small, "VALUE small limits");
				}
	free(big);
}

Test(proto, round_trip_value_at_most_values)
{
	proto_bytes *v = calloc(PROTO_MAX_VALUES, sizeof *v);
	proto_msg w = msg(PROTO_VALUE, 1);

	cr_assert_not_null(v);
	for (size_t i = 0; i < PROTO_MAX_VALUES; i++)
		v[i] = bs("abc", i % 4);
	w.found = true;
	w.values = v;
	w.nvalues = PROTO_MAX_VALUES;
	round_trip(&w, &deflim, "VALUE 4096");
	free(v);
}

Test(proto, round_trip_error)
{
	char *long_msg = malloc(PROTO_MAX_MESSAGE + 1);
	const char *msgs[] = { "", "quorum not met: 1 of w=2 replicas answered", "\xc3\xa9t\xc3\xa9",
			       long_msg };

	cr_assert_not_null(long_msg);
	memset(long_msg, 'm', PROTO_MAX_MESSAGE);
	long_msg[PROTO_MAX_MESSAGE] = '\0';
	for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
#define X(name, num, dkv, text)                                        \
		{                                                      \
			proto_msg w = msg(PROTO_ERROR, ids[(i + num) % NIDS]); \
			w.code = num;                                  \
			w.message = bs(msgs[i], strlen(msgs[i]));      \
			round_trip(&w, &deflim, "ERROR " #name);       \
		}
		PROTO_ERRORS(X)
#undef X
	}
	/* codes outside the table travel too: a newer node may send one */
	{
		proto_msg w = msg(PROTO_ERROR, 3);

		w.code = UINT32_MAX;
		w.message = LIT("from the future");
		round_trip(&w, &deflim, "ERROR unknown code");
	}
	free(long_msg);
}

Test(proto, error_messages_longer_than_the_limit_are_truncated)
{
	static const size_t lens[] = { PROTO_MAX_MESSAGE - 1, PROTO_MAX_MESSAGE,
				       PROTO_MAX_MESSAGE + 1, 5000, 100000 };
	char *s = malloc(100001);

	cr_assert_not_null(s);
	for (size_t i = 0; i < 100000; i++)
		s[i] = (char)('a' + i % 26);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		msgpack_sbuffer sb;
		proto_msg m;
		payload f;
		char c = s[lens[i]];

		s[lens[i]] = '\0';
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(proto_encode_error(&sb, 77, PROTO_ERR_INTERNAL, s), 0);
		s[lens[i]] = c;
		f = take(&sb);
		cr_assert_eq(proto_decode(f.p, f.n, &deflim, &m, NULL, 0), 0);
		cr_assert_eq(m.id, 77);
		cr_assert_eq(m.code, PROTO_ERR_INTERNAL);
		cr_assert_eq(m.message.len, lens[i] < PROTO_MAX_MESSAGE ? lens[i] : PROTO_MAX_MESSAGE,
			     "%zu -> %zu", lens[i], m.message.len);
		cr_assert_arr_eq(m.message.p, s, m.message.len);
		proto_msg_release(&m);
		free(f.p);
	}
	free(s);
}

Test(proto, decoder_refuses_error_messages_past_the_limit)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char *s = malloc(PROTO_MAX_MESSAGE + 1);
	char err[256];
	proto_msg m;

	cr_assert_not_null(s);
	memset(s, 'e', PROTO_MAX_MESSAGE + 1);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint32(&pk, 1);
	msgpack_pack_uint32(&pk, PROTO_ERROR);
	msgpack_pack_uint64(&pk, 12);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint32(&pk, 5);
	msgpack_pack_str_with_body(&pk, s, PROTO_MAX_MESSAGE + 1);
	cr_assert_eq(dec_rc((const uint8_t *)sb.data, sb.size, &deflim, &m, err, sizeof err),
		     DKV_EPROTO);
	cr_assert_eq(m.id, 12);
	cr_assert_eq(m.type, PROTO_ERROR);
	msgpack_sbuffer_destroy(&sb);
	free(s);
}

/* Frames appended to one buffer read back as a stream. */
Test(proto, encoders_append_whole_frames)
{
	proto_bytes v = LIT("val");
	msgpack_sbuffer sb;
	size_t at = 0;
	int n = 0;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, 1, "k", 1, NULL), 0);
	cr_assert_eq(proto_encode_put(&sb, 2, "k", 1, "v", 1, "c", 1, NULL), 0);
	cr_assert_eq(proto_encode_delete(&sb, 3, "k", 1, NULL, 0, NULL), 0);
	cr_assert_eq(proto_encode_ping(&sb, 4), 0);
	cr_assert_eq(proto_encode_value(&sb, 5, true, &v, 1, NULL, 0, 0), 0);
	cr_assert_eq(proto_encode_ok(&sb, 6, "c", 1), 0);
	cr_assert_eq(proto_encode_pong(&sb, 7), 0);
	cr_assert_eq(proto_encode_error(&sb, 8, PROTO_ERR_TIMEOUT, "late"), 0);
	while (at < sb.size) {
		static const uint32_t want[] = { PROTO_GET, PROTO_PUT, PROTO_DELETE, PROTO_PING,
						 PROTO_VALUE, PROTO_OK, PROTO_PONG, PROTO_ERROR };
		uint32_t len;
		proto_msg m;

		cr_assert_geq(sb.size - at, PROTO_HEADER_SIZE);
		len = proto_frame_length((const uint8_t *)sb.data + at);
		at += PROTO_HEADER_SIZE;
		cr_assert_leq(len, sb.size - at);
		cr_assert_eq(proto_decode(sb.data + at, len, &deflim, &m, NULL, 0), 0);
		cr_assert_lt(n, 8);
		cr_assert_eq(m.type, want[n]);
		cr_assert_eq(m.id, (uint64_t)n + 1);
		proto_msg_release(&m);
		at += len;
		n++;
	}
	cr_assert_eq(n, 8);
	msgpack_sbuffer_destroy(&sb);
}

/* A nil context and an empty bin are both "no context". */
Test(proto, nil_and_empty_context_are_both_none)
{
	payload nil_ctx = P(0x94, 0x01, 0x02, 0x05, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v', 0xc0, 0x80);
	payload empty_ctx = P(0x94, 0x01, 0x02, 0x05, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v', 0xc4,
			      0x00, 0x80);
	payload del_empty = P(0x94, 0x01, 0x03, 0x05, 0x93, 0xc4, 0x01, 'k', 0xc4, 0x00, 0x80);
	payload val_empty = P(0x94, 0x01, 0x40, 0x05, 0x94, 0xc2, 0x90, 0xc4, 0x00, 0x00);
	proto_msg w = msg(PROTO_PUT, 5);

	w.key = LIT("k");
	w.value = LIT("v");
	decode_and_check(&nil_ctx, &deflim, &w, "nil context");
	decode_and_check(&empty_ctx, &deflim, &w, "empty context");
	w = msg(PROTO_DELETE, 5);
	w.key = LIT("k");
	decode_and_check(&del_empty, &deflim, &w, "DELETE empty context");
	w = msg(PROTO_VALUE, 5);
	decode_and_check(&val_empty, &deflim, &w, "VALUE empty context");

	/* and the encoder writes "none" as nil */
	{
		msgpack_sbuffer sb;
		payload f;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(proto_encode_put(&sb, 5, "k", 1, "v", 1, "ignored", 0, NULL), 0);
		f = take(&sb);
		cr_assert_eq(f.n, nil_ctx.n);
		cr_assert_arr_eq(f.p, nil_ctx.p, f.n);
		free(f.p);
	}
	free(nil_ctx.p);
	free(empty_ctx.p);
	free(del_empty.p);
	free(val_empty.p);
}

/* --- limits ---------------------------------------------------------------- */

static void expect(const payload *f, const proto_limits *lim, int rc, uint64_t id, uint32_t type,
		   const char *reason)
{
	char err[256];
	proto_msg m;
	int got = dec_rc(f->p, f->n, lim, &m, err, sizeof err);

	cr_assert_eq(got, rc, "%d, not %d (%s)", got, rc, err);
	cr_assert_eq(m.id, id, "id %llu, not %llu (%s)", (unsigned long long)m.id,
		     (unsigned long long)id, err);
	cr_assert_eq(m.type, type, "type %u, not %u", m.type, type);
	if (reason != NULL)
		cr_assert_str_eq(err, reason);
}

Test(proto, oversized_keys_and_values_are_toobig)
{
	uint8_t *v = pattern(2000000, 2);
	msgpack_sbuffer sb;
	proto_limits node = { .max_key = 1024, .max_value = 1048576 };
	payload f;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 99, "key", 3, v, 2000000, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &node, DKV_ETOOBIG, 99, PROTO_PUT, "value too large: 2000000 > max_value_size 1048576");
	free(f.p);

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 98, v, 1025, "v", 1, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &node, DKV_ETOOBIG, 98, PROTO_PUT, "key too large: 1025 > max_key_size 1024");
	free(f.p);

	/* small limits: one past, and exactly at them */
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 1, "kkkk", 4, "012345678", 9, "c", 1, NULL), 0);
	f = take(&sb);
	expect(&f, &small, DKV_ETOOBIG, 1, PROTO_PUT, "value too large: 9 > max_value_size 8");
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 2, "kkkkk", 5, "01234567", 8, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &small, DKV_ETOOBIG, 2, PROTO_PUT, "key too large: 5 > max_key_size 4");
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, 3, "kkkkk", 5, NULL), 0);
	f = take(&sb);
	expect(&f, &small, DKV_ETOOBIG, 3, PROTO_GET, "key too large: 5 > max_key_size 4");
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_delete(&sb, 4, v, 70000, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &small, DKV_ETOOBIG, 4, PROTO_DELETE, "key too large: 70000 > max_key_size 4");
	free(f.p);
	{
		proto_msg w = msg(PROTO_PUT, 5);

		w.key = LIT("kkkk");
		w.value = LIT("01234567");
		round_trip(&w, &small, "PUT at the limits");
	}

	/* a length past the limit that the bytes do not back is malformed */
	{
		payload t = P(0x94, 0x01, 0x02, 0x06, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x09, '0', '1', 0xc0, 0x80);
		payload k = P(0x94, 0x01, 0x01, 0x07, 0x92, 0xc5, 0xff, 0xff, 'k', 0x80);

		expect(&t, &small, DKV_EPROTO, 6, PROTO_PUT, NULL);
		expect(&k, &small, DKV_EPROTO, 7, PROTO_GET, NULL);
		free(t.p);
		free(k.p);
	}
	free(v);
}

Test(proto, empty_key_is_refused)
{
	msgpack_sbuffer sb;
	payload f;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, 1, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &deflim, DKV_EINVAL, 1, PROTO_GET, "empty key");
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 2, "", 0, "v", 1, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &deflim, DKV_EINVAL, 2, PROTO_PUT, "empty key");
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_delete(&sb, 3, "", 0, NULL, 0, NULL), 0);
	f = take(&sb);
	expect(&f, &deflim, DKV_EINVAL, 3, PROTO_DELETE, "empty key");
	free(f.p);
}

/* --- versions, types, shapes ----------------------------------------------- */

Test(proto, other_versions_are_refused_with_id_and_type)
{
	payload v2 = P(0x94, 0x02, 0x01, 0x2a, 0x92, 0xc4, 0x01, 'k', 0x80);
	payload v0 = P(0x94, 0x00, 0x04, 0x07, 0xc0);
	/* a version 2 body need not look like ours: it is never read */
	payload v2odd = P(0x94, 0x02, 0x41, 0xcd, 0x01, 0x00, 0xc1);
	payload vmax = P(0x94, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x43, 0x01, 0x90);
	payload vneg = P(0x94, 0xff, 0x01, 0x01, 0x92, 0xc4, 0x01, 'k', 0x80);

	expect(&v2, &deflim, DKV_EVERSION, 42, PROTO_GET,
	       "unsupported protocol version 2 (this node speaks 1)");
	expect(&v0, &deflim, DKV_EVERSION, 7, PROTO_PING,
	       "unsupported protocol version 0 (this node speaks 1)");
	expect(&v2odd, &deflim, DKV_EVERSION, 256, PROTO_OK, NULL);
	expect(&vmax, &deflim, DKV_EVERSION, 1, PROTO_ERROR,
	       "unsupported protocol version 18446744073709551615 (this node speaks 1)");
	expect(&vneg, &deflim, DKV_EPROTO, 0, 0, "version is not an unsigned integer");
	free(v2.p);
	free(v0.p);
	free(v2odd.p);
	free(vmax.p);
	free(vneg.p);
}

Test(proto, unknown_types_are_refused_with_id_and_type)
{
	static const uint32_t types[] = { 0, 6, 63, 69, 255, 65535, UINT32_MAX };
	payload big = P(0x94, 0x01, 0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0xc0);
	payload str = P(0x94, 0x01, 0xa3, 'G', 'E', 'T', 0x01, 0x92, 0xc4, 0x01, 'k', 0x80);

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		payload f;
		char reason[64];

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint32(&pk, 1);
		msgpack_pack_uint32(&pk, types[i]);
		msgpack_pack_uint64(&pk, 4242);
		msgpack_pack_nil(&pk);
		f = mkpayload((const uint8_t *)sb.data, sb.size);
		snprintf(reason, sizeof reason, "unknown message type %u", types[i]);
		expect(&f, &deflim, DKV_EPROTO, 4242, types[i], reason);
		free(f.p);
		msgpack_sbuffer_destroy(&sb);
	}
	expect(&big, &deflim, DKV_EPROTO, 0, 0, "type is not a 32-bit unsigned integer");
	expect(&str, &deflim, DKV_EPROTO, 0, 0, "type is not a 32-bit unsigned integer");
	free(big.p);
	free(str.p);
}

Test(proto, wrong_shapes_are_malformed)
{
	static const struct {
		const char *what;
		uint8_t b[24];
		size_t n;
		uint64_t id;    /* what the decoder could read */
	} cases[] = {
		{ "not an array", { 0x84, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01 }, 9, 0 },
		{ "array of 3", { 0x93, 0x01, 0x04, 0x01 }, 4, 0 },
		{ "array of 5", { 0x95, 0x01, 0x04, 0x01, 0xc0, 0xc0 }, 6, 0 },
		{ "negative id", { 0x94, 0x01, 0x04, 0xff, 0xc0 }, 5, 0 },
		{ "id as str", { 0x94, 0x01, 0x04, 0xa1, '1', 0xc0 }, 6, 0 },
		{ "PING body []", { 0x94, 0x01, 0x04, 0x09, 0x90 }, 5, 9 },
		{ "OK body 0", { 0x94, 0x01, 0x41, 0x09, 0x00 }, 5, 9 },
		{ "PONG no body", { 0x94, 0x01, 0x42, 0x09 }, 4, 9 },
		{ "GET body of 3", { 0x94, 0x01, 0x01, 0x09, 0x93, 0xc4, 0x01, 'k', 0x80, 0xc0 }, 10, 9 },
		{ "GET body of 1", { 0x94, 0x01, 0x01, 0x09, 0x91, 0xc4, 0x01, 'k' }, 8, 9 },
		{ "GET body nil", { 0x94, 0x01, 0x01, 0x09, 0xc0 }, 5, 9 },
		{ "GET key as str", { 0x94, 0x01, 0x01, 0x09, 0x92, 0xa1, 'k', 0x80 }, 8, 9 },
		{ "GET opts nil", { 0x94, 0x01, 0x01, 0x09, 0x92, 0xc4, 0x01, 'k', 0xc0 }, 9, 9 },
		{ "GET opts array", { 0x94, 0x01, 0x01, 0x09, 0x92, 0xc4, 0x01, 'k', 0x90 }, 9, 9 },
		{ "PUT of 3", { 0x94, 0x01, 0x02, 0x09, 0x93, 0xc4, 0x01, 'k', 0xc4, 0x00, 0x80 }, 11, 9 },
		{ "PUT value nil", { 0x94, 0x01, 0x02, 0x09, 0x94, 0xc4, 0x01, 'k', 0xc0, 0xc0, 0x80 }, 11, 9 },
		{ "PUT value str", { 0x94, 0x01, 0x02, 0x09, 0x94, 0xc4, 0x01, 'k', 0xa0, 0xc0, 0x80 }, 11, 9 },
		{ "PUT context str", { 0x94, 0x01, 0x02, 0x09, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x00, 0xa0, 0x80 },
		  12, 9 },
		{ "DELETE of 4", { 0x94, 0x01, 0x03, 0x09, 0x94, 0xc4, 0x01, 'k', 0xc0, 0x80, 0x80 }, 11, 9 },
		{ "DELETE context 0", { 0x94, 0x01, 0x03, 0x09, 0x93, 0xc4, 0x01, 'k', 0x00, 0x80 }, 10, 9 },
		{ "VALUE of 3", { 0x94, 0x01, 0x40, 0x09, 0x93, 0xc3, 0x90, 0xc0 }, 8, 9 },
		{ "VALUE found 1", { 0x94, 0x01, 0x40, 0x09, 0x94, 0x01, 0x90, 0xc0, 0x00 }, 9, 9 },
		{ "VALUE values map", { 0x94, 0x01, 0x40, 0x09, 0x94, 0xc3, 0x80, 0xc0, 0x00 }, 9, 9 },
		{ "VALUE value str", { 0x94, 0x01, 0x40, 0x09, 0x94, 0xc3, 0x92, 0xc4, 0x00, 0xa0, 0xc0, 0x00 },
		  12, 9 },
		{ "VALUE value nil", { 0x94, 0x01, 0x40, 0x09, 0x94, 0xc3, 0x92, 0xc4, 0x00, 0xc0, 0xc0, 0x00 },
		  12, 9 },
		{ "VALUE tombstones -1", { 0x94, 0x01, 0x40, 0x09, 0x94, 0xc3, 0x91, 0xc4, 0x00, 0xc0, 0xff },
		  11, 9 },
		{ "VALUE context true", { 0x94, 0x01, 0x40, 0x09, 0x94, 0xc3, 0x91, 0xc4, 0x00, 0xc3, 0x00 },
		  11, 9 },
		{ "ERROR of 1", { 0x94, 0x01, 0x43, 0x09, 0x91, 0x01 }, 6, 9 },
		{ "ERROR code -1", { 0x94, 0x01, 0x43, 0x09, 0x92, 0xff, 0xa0 }, 7, 9 },
		{ "ERROR code 2^32", { 0x94, 0x01, 0x43, 0x09, 0x92, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0, 0xa0 },
		  15, 9 },
		{ "ERROR message bin", { 0x94, 0x01, 0x43, 0x09, 0x92, 0x01, 0xc4, 0x00 }, 8, 9 },
		{ "ERROR message nil", { 0x94, 0x01, 0x43, 0x09, 0x92, 0x01, 0xc0 }, 7, 9 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256];
		proto_msg m;
		int rc = dec_rc(cases[i].b, cases[i].n, &deflim, &m, err, sizeof err);

		cr_assert_eq(rc, DKV_EPROTO, "%s: %d (%s)", cases[i].what, rc, err);
		cr_assert_eq(m.id, cases[i].id, "%s: id", cases[i].what);
	}
}

/* --- options ----------------------------------------------------------------- */

static void expect_opts(const proto_opts *o, int rc, const char *reason)
{
	msgpack_sbuffer sb;
	payload f;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 31, "k", 1, "v", 1, NULL, 0, o), 0);
	f = take(&sb);
	expect(&f, &deflim, rc, 31, PROTO_PUT, reason);
	free(f.p);
}

Test(proto, bad_option_values_are_invalid)
{
	expect_opts(&(proto_opts){ .r = 17 }, DKV_EINVAL,
		    "option r: 17 is not 1..16, -1 (one), -2 (quorum) or -3 (all)");
	expect_opts(&(proto_opts){ .r = -4 }, DKV_EINVAL,
		    "option r: -4 is not 1..16, -1 (one), -2 (quorum) or -3 (all)");
	expect_opts(&(proto_opts){ .w = 100 }, DKV_EINVAL,
		    "option w: 100 is not 1..16, -1 (one), -2 (quorum) or -3 (all)");
	expect_opts(&(proto_opts){ .pr = INT32_MIN }, DKV_EINVAL,
		    "option pr: -2147483648 is not 1..16, -1 (one), -2 (quorum) or -3 (all)");
	expect_opts(&(proto_opts){ .r = 1, .pw = INT32_MAX }, DKV_EINVAL,
		    "option pw: 2147483647 is not 1..16, -1 (one), -2 (quorum) or -3 (all)");
	expect_opts(&(proto_opts){ .timeout_ms = 3600001 }, DKV_EINVAL,
		    "option timeout_ms: 3600001 > 3600000");
	expect_opts(&(proto_opts){ .timeout_ms = UINT32_MAX }, DKV_EINVAL,
		    "option timeout_ms: 4294967295 > 3600000");
	/* the edges that are fine */
	expect_opts(&(proto_opts){ .r = 16, .w = -3, .pr = -1, .pw = 1, .timeout_ms = 3600000 },
		    0, "");
}

/* GET [bin "k", opts] with the option map's bytes given. */
static payload get_with_opts(const uint8_t *opts, size_t n)
{
	static const uint8_t head[] = { 0x94, 0x01, 0x01, 0x21, 0x92, 0xc4, 0x01, 'k' };
	uint8_t buf[128];

	cr_assert_leq(sizeof head + n, sizeof buf);
	memcpy(buf, head, sizeof head);
	memcpy(buf + sizeof head, opts, n);
	return mkpayload(buf, sizeof head + n);
}
#define GETO(...) get_with_opts((const uint8_t[]){ __VA_ARGS__ }, \
				sizeof((const uint8_t[]){ __VA_ARGS__ }))

static void expect_get(payload f, int rc, const char *reason)
{
	expect(&f, &deflim, rc, 0x21, PROTO_GET, reason);
	free(f.p);
}

Test(proto, malformed_options)
{
	expect_get(GETO(0x81, 0xa1, 'x', 0x01), DKV_EINVAL, "unknown option \"x\"");
	expect_get(GETO(0x81, 0xa1, 'R', 0x01), DKV_EINVAL, "unknown option \"R\"");
	expect_get(GETO(0x81, 0xa7, 't', 'i', 'm', 'e', 'o', 'u', 't', 0x05), DKV_EINVAL,
		   "unknown option \"timeout\"");
	expect_get(GETO(0x81, 0xa0, 0x01), DKV_EINVAL, "unknown option \"\"");
	expect_get(GETO(0x82, 0xa1, 'r', 0x01, 0xa1, 'q', 0x01), DKV_EINVAL, "unknown option \"q\"");
	expect_get(GETO(0x81, 0xa1, 'r', 0xa1, '2'), DKV_EPROTO, "option r: not an integer");
	expect_get(GETO(0x81, 0xa1, 'w', 0xc0), DKV_EPROTO, "option w: not an integer");
	expect_get(GETO(0x81, 0xa1, 'r', 0xcf, 0, 0, 0x01, 0, 0, 0, 0, 0), DKV_EINVAL,
		   "option r: 1099511627776 is not 1..16, -1 (one), -2 (quorum) or -3 (all)");
	expect_get(GETO(0x81, 0xa1, 'r', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		   DKV_EPROTO, "option r: not an integer");
	expect_get(GETO(0x81, 0xaa, 't', 'i', 'm', 'e', 'o', 'u', 't', '_', 'm', 's', 0xff), DKV_EPROTO,
		   "option timeout_ms: not an unsigned integer");
	expect_get(GETO(0x81, 0xaa, 't', 'i', 'm', 'e', 'o', 'u', 't', '_', 'm', 's', 0xce, 0x00, 0x36,
			0xee, 0x81), DKV_EINVAL, "option timeout_ms: 3600001 > 3600000");
	expect_get(GETO(0x81, 0x01, 0x01), DKV_EPROTO, "option name is not a string");
	expect_get(GETO(0x81, 0xc4, 0x01, 'r', 0x01), DKV_EPROTO, "option name is not a string");
	expect_get(GETO(0xc0), DKV_EPROTO, "options are not a map");
	/* names are matched whole: "r\0" is not "r" */
	expect_get(GETO(0x81, 0xa2, 'r', 0x00, 0x01), DKV_EINVAL, NULL);
	/* integers in any encoding, and explicit zeros, are fine */
	{
		payload f = GETO(0x83, 0xa1, 'r', 0xd0, 0xfe, 0xa2, 'p', 'w', 0xd3, 0, 0, 0, 0, 0, 0, 0,
				 0x03, 0xaa, 't', 'i', 'm', 'e', 'o', 'u', 't', '_', 'm', 's', 0x00);
		proto_msg w = msg(PROTO_GET, 0x21);

		w.key = LIT("k");
		w.opts.r = DKV_QUORUM_QUORUM;
		w.opts.pw = 3;
		decode_and_check(&f, &deflim, &w, "opts in other encodings");
		free(f.p);
	}
}

/* --- malformed input, whole ------------------------------------------------- */

/* One valid payload of each type and shape, for the tests below. */
/* {"members": [{"id": "n1", "share": 0.25, "up": nil, "b": bin "\0"}], "n": -1} */
static const uint8_t info_sample[] = {
	0x82, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's', 0x91,
	0x84, 0xa2, 'i', 'd', 0xa2, 'n', '1', 0xa5, 's', 'h', 'a', 'r', 'e',
	0xcb, 0x3f, 0xd0, 0, 0, 0, 0, 0, 0, 0xa2, 'u', 'p', 0xc0, 0xa1, 'b', 0xc4, 0x01, 0x00,
	0xa1, 'n', 0xff,
};

static size_t sample_payloads(payload *out, size_t max)
{
	static const proto_bytes vals[] = { { (const uint8_t *)"one", 3 }, { NULL, 0 },
					    { (const uint8_t *)"t\0o", 3 } };
	proto_opts all = { .r = -1, .w = -2, .pr = -3, .pw = 16, .timeout_ms = 3600000 };
	proto_opts some = { .w = 2, .timeout_ms = 70000 };
	msgpack_sbuffer sb;
	size_t n = 0;

#define ADD(call)                                       \
	do {                                            \
		cr_assert_lt(n, max);                   \
		msgpack_sbuffer_init(&sb);              \
		cr_assert_eq(call, 0);                  \
		out[n++] = take(&sb);                   \
	} while (0)
	ADD(proto_encode_get(&sb, 1, "k", 1, NULL));
	ADD(proto_encode_get(&sb, 300, "key\0", 4, &all));
	ADD(proto_encode_put(&sb, 70000, "k", 1, "value", 5, "ctx", 3, &some));
	ADD(proto_encode_put(&sb, UINT64_MAX, "\0", 1, "", 0, NULL, 0, &all));
	ADD(proto_encode_delete(&sb, 2, "k", 1, "c\0", 2, &some));
	ADD(proto_encode_delete(&sb, 3, "kk", 2, NULL, 0, NULL));
	ADD(proto_encode_ping(&sb, 4));
	ADD(proto_encode_value(&sb, 5, true, vals, 3, "ctx", 3, 2));
	ADD(proto_encode_value(&sb, 6, false, NULL, 0, NULL, 0, 1));
	ADD(proto_encode_value(&sb, 7, true, vals, 1, NULL, 0, 0));
	ADD(proto_encode_ok(&sb, 8, "ctx", 3));
	ADD(proto_encode_pong(&sb, 65536));
	ADD(proto_encode_error(&sb, 9, PROTO_ERR_QUORUM, "quorum not met: 1 of w=2 replicas answered"));
	ADD(proto_encode_error(&sb, 10, PROTO_ERR_INTERNAL, ""));
	ADD(proto_encode_admin(&sb, 11, "members", NULL, 0));
	ADD(proto_encode_admin(&sb, 12, "join", (const char *const[]){ "10.0.0.1:7070", "" }, 2));
	ADD(proto_encode_info(&sb, 13, "\x81\xa2ok\xc3", 5));
	ADD(proto_encode_info(&sb, 14, info_sample, sizeof info_sample));
#undef ADD
	return n;
}

Test(proto, every_truncation_is_malformed)
{
	payload s[20];
	size_t n = sample_payloads(s, 20), tried = 0;

	for (size_t k = 0; k < n; k++) {
		for (size_t len = 0; len < s[k].n; len++) {
			char err[256];
			int rc = dec_rc(s[k].p, len, &deflim, NULL, err, sizeof err);

			cr_assert_eq(rc, DKV_EPROTO, "sample %zu cut at %zu of %zu: %d (%s)", k, len,
				     s[k].n, rc, err);
			rc = dec_rc(s[k].p, len, &small, NULL, NULL, 0);
			cr_assert(rc == DKV_EPROTO || rc == DKV_ETOOBIG, "small limits: %d", rc);
			tried++;
		}
		cr_assert_eq(dec_rc(s[k].p, s[k].n, &deflim, NULL, NULL, 0), 0, "sample %zu", k);
		free(s[k].p);
	}
	cr_assert_gt(tried, 200);
}

Test(proto, trailing_bytes_are_malformed)
{
	payload s[20];
	size_t n = sample_payloads(s, 20);

	for (size_t k = 0; k < n; k++) {
		uint8_t *buf = malloc(2 * s[k].n);
		char err[256];
		proto_msg m;

		cr_assert_not_null(buf);
		memcpy(buf, s[k].p, s[k].n);
		buf[s[k].n] = 0x00;
		cr_assert_eq(dec_rc(buf, s[k].n + 1, &deflim, &m, err, sizeof err), DKV_EPROTO);
		cr_assert_str_eq(err, "1 bytes after the message");
		cr_assert_neq(m.type, 0);
		/* two messages in one payload */
		memcpy(buf + s[k].n, s[k].p, s[k].n);
		cr_assert_eq(dec_rc(buf, 2 * s[k].n, &deflim, &m, err, sizeof err), DKV_EPROTO);
		free(buf);
		free(s[k].p);
	}
}

/* Whatever a single flipped bit makes, the decoder survives it, and what it
 * accepts round-trips. */
static void flips(const proto_limits *lim, size_t *accepted, size_t *refused)
{
	payload s[20];
	size_t n = sample_payloads(s, 20);

	for (size_t k = 0; k < n; k++) {
		uint8_t *buf = malloc(s[k].n);

		cr_assert_not_null(buf);
		for (size_t bit = 0; bit < 8 * s[k].n; bit++) {
			char err[256];
			proto_msg m;
			int rc;

			memcpy(buf, s[k].p, s[k].n);
			buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			memset(err, 'x', sizeof err);
			rc = proto_decode(buf, s[k].n, lim, &m, err, sizeof err);
			cr_assert(rc == 0 || rc == DKV_EPROTO || rc == DKV_EVERSION ||
				  rc == DKV_ETOOBIG || rc == DKV_EINVAL,
				  "sample %zu bit %zu: %d", k, bit, rc);
			cr_assert_not_null(memchr(err, '\0', sizeof err));
			if (rc != 0) {
				cr_assert_null(m.values);
				cr_assert_eq(m.nvalues, 0);
				cr_assert_neq(err[0], '\0');
				(*refused)++;
				continue;
			}
			(*accepted)++;
			{
				proto_msg want = m;
				payload e;

				/* proto_encode_error() takes a C string: a flip
				 * that made a NUL in the message cuts it there */
				if (m.type == PROTO_ERROR && m.message.len > 0 &&
				    memchr(m.message.p, 0, m.message.len) != NULL)
					want.message.len = (size_t)((const uint8_t *)memchr(
						m.message.p, 0, m.message.len) - m.message.p);
				e = encode(&m);
				decode_and_check(&e, lim, &want, "re-encoded flip");
				free(e.p);
			}
			proto_msg_release(&m);
		}
		free(buf);
		free(s[k].p);
	}
}

Test(proto, every_single_bit_flip_is_survived)
{
	size_t accepted = 0, refused = 0;

	flips(&deflim, &accepted, &refused);
	flips(&small, &accepted, &refused);
	cr_assert_gt(accepted, 100);
	cr_assert_gt(refused, 100);
}

Test(proto, container_bombs_are_refused_without_allocating)
{
	payload bombs[] = {
		P(0xdd, 0xff, 0xff, 0xff, 0xff),
		P(0xdf, 0xff, 0xff, 0xff, 0xff),
		/* VALUE whose values array32 claims 2^32 - 1 values */
		P(0x94, 0x01, 0x40, 0x01, 0x94, 0xc3, 0xdd, 0xff, 0xff, 0xff, 0xff),
		P(0x94, 0x01, 0x40, 0x01, 0x94, 0xc3, 0xdd, 0xff, 0xff, 0xff, 0xff, 0xc4, 0x00, 0xc4,
		  0x00, 0xc0, 0x00),
		P(0x94, 0x01, 0x40, 0x01, 0x94, 0xc3, 0xdc, 0xff, 0xff, 0xc4, 0x00, 0xc0, 0x00),
		/* GET whose opts map32 claims 2^32 - 1 pairs */
		P(0x94, 0x01, 0x01, 0x01, 0x92, 0xc4, 0x01, 'k', 0xdf, 0xff, 0xff, 0xff, 0xff),
		P(0x94, 0x01, 0x01, 0x01, 0x92, 0xc4, 0x01, 'k', 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'r',
		  0x01),
		/* a bin 32 and a str 32 claiming 4 GiB */
		P(0x94, 0x01, 0x02, 0x01, 0x94, 0xc4, 0x01, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x80),
		P(0x94, 0x01, 0x43, 0x01, 0x92, 0x01, 0xdb, 0xff, 0xff, 0xff, 0xff, 'x'),
	};
	size_t nb = sizeof bombs / sizeof bombs[0];
	double t0, secs;

	cap_address_space();
	t0 = now();
	for (int rep = 0; rep < 10000; rep++)
		for (size_t i = 0; i < nb; i++) {
			proto_msg m;
			int rc = proto_decode(bombs[i].p, bombs[i].n, &deflim, &m, NULL, 0);

			cr_assert_eq(rc, DKV_EPROTO, "bomb %zu: %d", i, rc);
			cr_assert_null(m.values);
		}
	secs = now() - t0;
	cr_assert_lt(secs, 2.0, "bombs took %.3f s", secs);
	expect(&bombs[2], &deflim, DKV_EPROTO, 1, PROTO_VALUE, "VALUE claims 4294967295 values");
	expect(&bombs[5], &deflim, DKV_EPROTO, 1, PROTO_GET, "options map longer than the frame");
	for (size_t i = 0; i < nb; i++)
		free(bombs[i].p);
}

/* More values than one VALUE may carry: the encoder will not write them,
 * and the decoder refuses them when they are all there. */
Test(proto, value_past_max_values_is_refused)
{
	size_t n = PROTO_MAX_VALUES + 1;
	proto_bytes *v = calloc(n, sizeof *v);
	msgpack_sbuffer sb;
	payload f;
	char reason[64];
	size_t at = 0;

	cr_assert_not_null(v);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_value(&sb, 3, true, v, n, NULL, 0, 0), DKV_ETOOBIG);
	cr_assert_eq(sb.size, 0, "a refused frame leaves nothing behind");
	msgpack_sbuffer_destroy(&sb);
	/* [1, VALUE, 3, [true, array16(n) of empty bins, nil, 0]] by hand */
	f.n = 9 + 2 * n + 2;
	f.p = malloc(f.n);
	cr_assert_not_null(f.p);
	memcpy(f.p, "\x94\x01\x40\x03\x94\xc3\xdc", 7);
	at = 7;
	f.p[at++] = (uint8_t)(n >> 8);
	f.p[at++] = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		f.p[at++] = 0xc4;
		f.p[at++] = 0x00;
	}
	f.p[at++] = 0xc0;
	f.p[at++] = 0x00;
	cr_assert_eq(at, f.n);
	snprintf(reason, sizeof reason, "VALUE claims %zu values", n);
	expect(&f, &deflim, DKV_EPROTO, 3, PROTO_VALUE, reason);
	free(f.p);
	free(v);
}

/* --- release and the err buffer ---------------------------------------------- */

Test(proto, release_frees_and_zeroes)
{
	static const proto_bytes vals[] = { { (const uint8_t *)"a", 1 }, { (const uint8_t *)"b", 1 } };
	proto_msg m, zero;
	payload f;

	memset(&zero, 0, sizeof zero);
	{
		msgpack_sbuffer sb;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(proto_encode_value(&sb, 1, true, vals, 2, "c", 1, 0), 0);
		f = take(&sb);
	}
	cr_assert_eq(proto_decode(f.p, f.n, &deflim, &m, NULL, 0), 0);
	cr_assert_not_null(m.values);
	cr_assert_eq(m.nvalues, 2);
	proto_msg_release(&m);
	cr_assert_arr_eq(&m, &zero, sizeof m);
	proto_msg_release(&m);   /* twice is harmless */
	cr_assert_arr_eq(&m, &zero, sizeof m);

	/* a VALUE whose values are read, then refused later: no leak */
	f.p[f.n - 1] = 0xff;    /* tombstones -1 */
	cr_assert_eq(proto_decode(f.p, f.n, &deflim, &m, NULL, 0), DKV_EPROTO);
	cr_assert_null(m.values);
	cr_assert_eq(m.id, 1);
	cr_assert_eq(m.type, PROTO_VALUE);
	proto_msg_release(&m);
	free(f.p);
}

Test(proto, err_buffer_is_optional_and_bounded)
{
	payload f = P(0x94, 0x01, 0x06, 0x2a, 0xc0);
	char err[8];
	proto_msg m;

	cr_assert_eq(proto_decode(f.p, f.n, &deflim, &m, NULL, 0), DKV_EPROTO);
	memset(err, 'x', sizeof err);
	cr_assert_eq(proto_decode(f.p, f.n, &deflim, &m, err, sizeof err), DKV_EPROTO);
	cr_assert_str_eq(err, "unknown");
	memset(err, 'x', sizeof err);
	cr_assert_eq(proto_decode(f.p, f.n, &deflim, &m, err, 1), DKV_EPROTO);
	cr_assert_eq(err[0], '\0');
	cr_assert_eq(err[1], 'x');
	cr_assert_eq(proto_decode(NULL, 0, &deflim, &m, err, sizeof err), DKV_EPROTO);
	cr_assert_str_eq(err, "frame i");
	free(f.p);
}

/* A later version may change everything after the version: any shape with
 * a version other than 1 is a VERSION error, not a malformed frame. */
Test(proto, version_is_judged_before_the_shape)
{
	static const uint8_t v2short[] = { 0x92, 0x02, 0xc0 };
	static const uint8_t v2long[] = { 0x96, 0x02, 0x01, 0x05, 0xc0, 0xc0, 0xc0 };
	static const uint8_t unknown[] = { 0x94, 0x01, 0x63, 0x09, 0xc0 };
	proto_msg m;
	char err[128];

	cr_assert_eq(proto_decode(v2short, sizeof v2short, &deflim, &m, err, sizeof err),
		     DKV_EVERSION);
	cr_expect_eq(m.id, 0);
	cr_assert_eq(proto_decode(v2long, sizeof v2long, &deflim, &m, err, sizeof err),
		     DKV_EVERSION);
	cr_expect_eq(m.id, 5, "the id is echoed when it is where version 1 has it");
	cr_expect_not(m.header_ok);
	cr_assert_eq(proto_decode(unknown, sizeof unknown, &deflim, &m, err, sizeof err),
		     DKV_EPROTO);
	cr_expect(m.header_ok, "an unknown type in a whole header is flagged");
	cr_expect_eq(m.type, 99);
	cr_expect_eq(m.id, 9);
	cr_expect_str_eq(err, "unknown message type 99");
}

/* --- ADMIN and INFO ---------------------------------------------------------- */

Test(proto, round_trip_admin)
{
	static const char *const args[PROTO_MAX_ARGS] = { "a", "", "n2", "10.0.0.1:7070",
							   "x", "y", "z", "last" };
	char cmd[PROTO_MAX_COMMAND + 1], arg[PROTO_MAX_ARG + 1];

	for (size_t n = 0; n <= PROTO_MAX_ARGS; n++) {
		proto_msg w = msg(PROTO_ADMIN, ids[n % NIDS]);

		w.command = LIT("members");
		for (size_t i = 0; i < n; i++)
			w.args[i] = bs(args[i], strlen(args[i]));
		w.nargs = n;
		round_trip(&w, &deflim, "ADMIN");
		round_trip(&w, &small, "ADMIN, small limits: they are not for ADMIN");
	}
	/* the longest command and arguments; NULs travel inside a decoded
	 * message (proto_encode_msg writes the bytes whole) */
	memset(cmd, 'c', PROTO_MAX_COMMAND);
	cmd[PROTO_MAX_COMMAND] = '\0';
	memset(arg, 'a', PROTO_MAX_ARG);
	arg[PROTO_MAX_ARG] = '\0';
	{
		proto_msg w = msg(PROTO_ADMIN, 77);
		msgpack_sbuffer sb;
		payload f;

		w.command = bs(cmd, PROTO_MAX_COMMAND);
		for (size_t i = 0; i < PROTO_MAX_ARGS; i++)
			w.args[i] = bs(arg, PROTO_MAX_ARG);
		w.nargs = PROTO_MAX_ARGS;
		round_trip(&w, &deflim, "ADMIN at the limits");
		w.command = LIT("a\0b");
		w.args[0] = LIT("\0\xff");
		w.nargs = 1;
		round_trip(&w, &deflim, "ADMIN with NULs");

		/* the C-string encoder gives the same bytes as the generic one */
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(proto_encode_admin(&sb, 77, cmd, (const char *const[]){ arg, arg }, 2), 0);
		f = take(&sb);
		w.command = bs(cmd, PROTO_MAX_COMMAND);
		w.args[0] = w.args[1] = bs(arg, PROTO_MAX_ARG);
		w.nargs = 2;
		decode_and_check(&f, &deflim, &w, "proto_encode_admin");
		free(f.p);
	}
}

/* A map of depth levels: {"k": {"k": ... {"k": 1}}}, in a new buffer. */
static uint8_t *nested_map(size_t levels, size_t *len)
{
	uint8_t *p = malloc(3 * levels + 1);
	size_t n = 0;

	cr_assert_not_null(p);
	for (size_t i = 0; i < levels; i++) {
		p[n++] = 0x81;
		p[n++] = 0xa1;
		p[n++] = 'k';
	}
	p[n++] = 0x01;
	*len = n;
	return p;
}

Test(proto, round_trip_info)
{
	static const uint8_t empty[] = { 0x80 };
	/* every value type an INFO may hold, in every width */
	static const uint8_t all[] = {
		0x8c,
		0xa1, 'a', 0xc0,
		0xa1, 'b', 0xc2,
		0xa1, 'c', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xa1, 'd', 0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,
		0xa1, 'e', 0xca, 0x3f, 0xc0, 0x00, 0x00,
		0xa1, 'f', 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0,        /* NaN */
		0xa1, 'g', 0xd9, 0x02, 0xff, 0x00,                     /* str 8, not UTF-8 */
		0xa1, 'h', 0xc6, 0, 0, 0, 0x01, 0x07,                  /* bin 32 */
		0xa1, 'i', 0xdc, 0x00, 0x02, 0x90, 0x80,               /* array 16 of [], {} */
		0xdb, 0, 0, 0, 0x01, 'j', 0xdf, 0, 0, 0, 0,           /* str 32 key, map 32 */
		0xda, 0, 0, 0xdd, 0, 0, 0, 0,                          /* "" key, array 32 */
		0xa1, 'l', 0xe0,
	};
	size_t dlen;
	uint8_t *deep = nested_map(PROTO_MAX_INFO_DEPTH, &dlen);
	proto_msg w = msg(PROTO_INFO, 5);

	w.info = bs(empty, sizeof empty);
	round_trip(&w, &deflim, "INFO {}");
	w.info = bs(info_sample, sizeof info_sample);
	round_trip(&w, &deflim, "INFO sample");
	w.info = bs(all, sizeof all);
	round_trip(&w, &deflim, "INFO of every type");
	w.info = bs(deep, dlen);
	round_trip(&w, &deflim, "INFO at the depth limit");
	cr_assert_eq(proto_check_info(deep, dlen, NULL, 0), 0);
	free(deep);
}

Test(proto, admin_limits_are_invalid)
{
	char c33[PROTO_MAX_COMMAND + 2], a1025[PROTO_MAX_ARG + 2];
	static const char *const nine[9] = { "1", "2", "3", "4", "5", "6", "7", "8", "9" };
	msgpack_sbuffer sb;
	msgpack_packer pk;
	payload f;

	memset(c33, 'c', sizeof c33);
	c33[PROTO_MAX_COMMAND + 1] = '\0';
	memset(a1025, 'a', sizeof a1025);
	a1025[PROTO_MAX_ARG + 1] = '\0';

	/* the encoder writes nothing a decoder would refuse */
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, 1, "", NULL, 0), DKV_EINVAL);
	cr_assert_eq(proto_encode_admin(&sb, 1, c33, NULL, 0), DKV_EINVAL);
	cr_assert_eq(proto_encode_admin(&sb, 1, "x", nine, 9), DKV_EINVAL);
	cr_assert_eq(proto_encode_admin(&sb, 1, "x", (const char *const[]){ a1025 }, 1), DKV_EINVAL);
	cr_assert_eq(sb.size, 0, "a refused frame leaves nothing behind");

	/* and the decoder refuses them, by hand, keeping the id */
#define ADMIN_BY_HAND(cmd, clen, args, nargs, alen)                              \
	do {                                                                     \
		msgpack_sbuffer_clear(&sb);                                      \
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);            \
		msgpack_pack_array(&pk, 4);                                      \
		msgpack_pack_uint32(&pk, 1);                                     \
		msgpack_pack_uint32(&pk, PROTO_ADMIN);                           \
		msgpack_pack_uint32(&pk, 99);                                    \
		msgpack_pack_array(&pk, 2);                                      \
		msgpack_pack_str_with_body(&pk, cmd, clen);                      \
		size_t na_ = (nargs);                                            \
		msgpack_pack_array(&pk, na_);                                    \
		for (size_t i_ = 0; i_ < na_; i_++)                              \
			msgpack_pack_str_with_body(&pk, args, alen);             \
		f = mkpayload((const uint8_t *)sb.data, sb.size);                \
	} while (0)
	ADMIN_BY_HAND(c33, PROTO_MAX_COMMAND + 1, "a", 0, 1);
	expect(&f, &deflim, DKV_EINVAL, 99, PROTO_ADMIN, "ADMIN command longer than 32 bytes");
	free(f.p);
	ADMIN_BY_HAND("x", 0, "a", 0, 1);
	expect(&f, &deflim, DKV_EINVAL, 99, PROTO_ADMIN, "empty ADMIN command");
	free(f.p);
	ADMIN_BY_HAND("x", 1, "a", 9, 1);
	expect(&f, &deflim, DKV_EINVAL, 99, PROTO_ADMIN, "ADMIN has 9 arguments, at most 8");
	free(f.p);
	ADMIN_BY_HAND("x", 1, a1025, 2, PROTO_MAX_ARG + 1);
	expect(&f, &deflim, DKV_EINVAL, 99, PROTO_ADMIN, "ADMIN argument 1 longer than 1024 bytes");
	free(f.p);
	ADMIN_BY_HAND("x", 1, a1025, 8, PROTO_MAX_ARG);
	expect(&f, &deflim, 0, 99, PROTO_ADMIN, "");
	free(f.p);
#undef ADMIN_BY_HAND
	msgpack_sbuffer_destroy(&sb);
}

Test(proto, admin_and_info_wrong_shapes_are_malformed)
{
	static const struct {
		const char *what;
		uint8_t b[24];
		size_t n;
		const char *reason;
	} cases[] = {
		{ "ADMIN body nil", { 0x94, 0x01, 0x05, 0x09, 0xc0 }, 5,
		  "ADMIN body is not [command, args]" },
		{ "ADMIN body of 1", { 0x94, 0x01, 0x05, 0x09, 0x91, 0xa1, 'x' }, 7,
		  "ADMIN body is not [command, args]" },
		{ "ADMIN body of 3", { 0x94, 0x01, 0x05, 0x09, 0x93, 0xa1, 'x', 0x90, 0xc0 }, 9,
		  "ADMIN body is not [command, args]" },
		{ "command bin", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xc4, 0x01, 'x', 0x90 }, 9,
		  "ADMIN command is not a str" },
		{ "command int", { 0x94, 0x01, 0x05, 0x09, 0x92, 0x07, 0x90 }, 7,
		  "ADMIN command is not a str" },
		{ "command nil", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xc0, 0x90 }, 7,
		  "ADMIN command is not a str" },
		{ "args nil", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xa1, 'x', 0xc0 }, 8,
		  "ADMIN args is not an array" },
		{ "args map", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xa1, 'x', 0x80 }, 8,
		  "ADMIN args is not an array" },
		{ "arg bin", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xa1, 'x', 0x91, 0xc4, 0x00 }, 10,
		  "ADMIN argument 1 is not a str" },
		{ "arg 2 int", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xa1, 'x', 0x92, 0xa0, 0x01 }, 10,
		  "ADMIN argument 2 is not a str" },
		{ "args claim 2^32", { 0x94, 0x01, 0x05, 0x09, 0x92, 0xa1, 'x', 0xdd, 0xff, 0xff,
				       0xff, 0xff }, 12, NULL },
		{ "INFO nil", { 0x94, 0x01, 0x44, 0x09, 0xc0 }, 5, "INFO body is not a map" },
		{ "INFO array", { 0x94, 0x01, 0x44, 0x09, 0x91, 0x80 }, 6, "INFO body is not a map" },
		{ "INFO str", { 0x94, 0x01, 0x44, 0x09, 0xa1, 'x' }, 6, "INFO body is not a map" },
		{ "INFO int key", { 0x94, 0x01, 0x44, 0x09, 0x81, 0x01, 0x02 }, 7,
		  "INFO map key is not a str" },
		{ "INFO nil key", { 0x94, 0x01, 0x44, 0x09, 0x81, 0xc0, 0x02 }, 7,
		  "INFO map key is not a str" },
		{ "INFO map key", { 0x94, 0x01, 0x44, 0x09, 0x81, 0x80, 0x02 }, 7,
		  "INFO map key is not a str" },
		{ "INFO fixext", { 0x94, 0x01, 0x44, 0x09, 0x81, 0xa1, 'x', 0xd4, 0x01, 0x00 }, 10,
		  "INFO holds an extension type" },
		{ "INFO ext 8 in array", { 0x94, 0x01, 0x44, 0x09, 0x81, 0xa1, 'x', 0x91, 0xc7, 0x01,
					   0x05, 0x00 }, 12, "INFO holds an extension type" },
		{ "INFO 0xc1", { 0x94, 0x01, 0x44, 0x09, 0x81, 0xa1, 'x', 0xc1 }, 8,
		  "INFO map holds a malformed value" },
		{ "INFO value missing", { 0x94, 0x01, 0x44, 0x09, 0x81, 0xa1, 'x' }, 7,
		  "INFO map is truncated" },
		{ "INFO map32 bomb", { 0x94, 0x01, 0x44, 0x09, 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1,
				       'x', 0x01 }, 12, "INFO map of 4294967295 claims more than the frame holds" },
		{ "INFO array32 bomb", { 0x94, 0x01, 0x44, 0x09, 0x81, 0xa1, 'x', 0xdd, 0xff, 0xff,
					 0xff, 0xff, 0x01 }, 13,
		  "INFO array of 4294967295 claims more than the frame holds" },
		{ "INFO two maps", { 0x94, 0x01, 0x44, 0x09, 0x80, 0x80 }, 6,
		  "1 bytes after the message" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256];
		proto_msg m;
		int rc = dec_rc(cases[i].b, cases[i].n, &deflim, &m, err, sizeof err);

		cr_assert_eq(rc, cases[i].reason == NULL && i == 10 ? DKV_EINVAL : DKV_EPROTO,
			     "%s: %d (%s)", cases[i].what, rc, err);
		cr_assert_eq(m.id, 9, "%s: id", cases[i].what);
		if (cases[i].reason != NULL)
			cr_assert_str_eq(err, cases[i].reason, "%s", cases[i].what);
	}
}

Test(proto, info_nested_too_deep_is_refused)
{
	static const size_t levels[] = { PROTO_MAX_INFO_DEPTH + 1, 100, 1000, 100000 };
	msgpack_sbuffer sb;

	cap_address_space();
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		size_t len;
		uint8_t *map = nested_map(levels[i], &len), *p;
		char err[256], want[64];
		payload f;

		snprintf(want, sizeof want, "INFO map nested more than %u deep",
			 PROTO_MAX_INFO_DEPTH);
		cr_assert_eq(proto_check_info(map, len, err, sizeof err), DKV_EPROTO);
		cr_assert_str_eq(err, want);
		msgpack_sbuffer_init(&sb);
		cr_assert_eq(proto_encode_info(&sb, 1, map, len), DKV_EINVAL);
		cr_assert_eq(sb.size, 0);
		msgpack_sbuffer_destroy(&sb);
		/* [1, INFO, 3, map] by hand */
		p = malloc(len + 4);
		cr_assert_not_null(p);
		memcpy(p, "\x94\x01\x44\x03", 4);
		memcpy(p + 4, map, len);
		f.p = p;
		f.n = len + 4;
		expect(&f, &deflim, DKV_EPROTO, 3, PROTO_INFO, want);
		/* arrays nest the same way */
		for (size_t k = 0; k < levels[i]; k++)
			p[4 + 3 * k] = 0x91, p[5 + 3 * k] = 0x91, p[6 + 3 * k] = 0x91;
		p[4] = 0x81;
		p[5] = 0xa1;
		p[6] = 'k';
		expect(&f, &deflim, DKV_EPROTO, 3, PROTO_INFO, want);
		free(p);
		free(map);
	}
}

Test(proto, encode_info_refuses_what_no_decoder_accepts)
{
	static const uint8_t arr[] = { 0x90 }, two[] = { 0x80, 0x80 }, cut[] = { 0x81, 0xa1 },
			     intkey[] = { 0x81, 0x01, 0x01 };
	msgpack_sbuffer sb;
	char err[128];

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_info(&sb, 1, NULL, 0), DKV_EINVAL);
	cr_assert_eq(proto_encode_info(&sb, 1, arr, sizeof arr), DKV_EINVAL);
	cr_assert_eq(proto_encode_info(&sb, 1, two, sizeof two), DKV_EINVAL);
	cr_assert_eq(proto_encode_info(&sb, 1, cut, sizeof cut), DKV_EINVAL);
	cr_assert_eq(proto_encode_info(&sb, 1, intkey, sizeof intkey), DKV_EINVAL);
	cr_assert_eq(sb.size, 0);
	cr_assert_eq(proto_check_info(two, sizeof two, err, sizeof err), DKV_EPROTO);
	cr_assert_str_eq(err, "1 bytes after the INFO map");
	cr_assert_eq(proto_check_info(two, 1, err, sizeof err), 0);
	cr_assert_str_eq(err, "");
	msgpack_sbuffer_destroy(&sb);
}

/* --- replace mode and the sibling count (dynkv-protocol(7)) ---------------- */

static const uint8_t golden_put_replace[] = {
	0x00, 0x00, 0x00, 0x20,                 /* 32 */
	0x94, 0x01, 0x02, 0x01,                 /* [1, PUT, 1, */
	0x94, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v', 0xc0, /* [bin "k", bin "v", nil, */
	0x82, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0x01, /* {"replace": 1, */
	0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0x01,   /*  "siblings": 1}]] */
};
static const uint8_t golden_delete_replace[] = {
	0x00, 0x00, 0x00, 0x13,                 /* 19 */
	0x94, 0x01, 0x03, 0x02,                 /* [1, DELETE, 2, */
	0x93, 0xc4, 0x01, 'k', 0xc0,            /*  [bin "k", nil, */
	0x81, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0x01, /* {"replace": 1}]] */
};
static const uint8_t golden_ok_siblings[] = {
	0x00, 0x00, 0x00, 0x0a,                 /* 10 */
	0x94, 0x01, 0x41, 0xcc, 0x80,           /* [1, OK, 128, */
	0x92, 0xc4, 0x01, 'c', 0x03,            /*  [bin "c", 3]] */
};

Test(proto, golden_bytes_of_replace_mode_and_the_sibling_count)
{
	proto_opts rs = { .replace = true, .siblings = true }, r1 = { .replace = true };
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 1, "k", 1, "v", 1, NULL, 0, &rs), 0);
	check_golden(&sb, golden_put_replace, sizeof golden_put_replace, "PUT replace");
	msgpack_sbuffer_clear(&sb);
	cr_assert_eq(proto_encode_delete(&sb, 2, "k", 1, NULL, 0, &r1), 0);
	check_golden(&sb, golden_delete_replace, sizeof golden_delete_replace, "DELETE replace");
	msgpack_sbuffer_clear(&sb);
	cr_assert_eq(proto_encode_ok_siblings(&sb, 128, "c", 1, 3), 0);
	check_golden(&sb, golden_ok_siblings, sizeof golden_ok_siblings, "OK siblings");
	msgpack_sbuffer_destroy(&sb);
}

/* Decode the payload of golden frame g (n bytes, prefix included). */
static void decode_golden(const uint8_t *g, size_t n, const proto_msg *want, const char *what)
{
	payload f = mkpayload(g + 4, n - 4);

	cr_assert_eq(proto_frame_length(g), f.n, "%s: length prefix", what);
	decode_and_check(&f, &deflim, want, what);
	free(f.p);
}

Test(proto, golden_replace_and_sibling_count_decode)
{
	proto_msg w;

	w = msg(PROTO_PUT, 1);
	w.key = LIT("k");
	w.value = LIT("v");
	w.opts.replace = true;
	w.opts.siblings = true;
	decode_golden(golden_put_replace, sizeof golden_put_replace, &w, "PUT replace");
	w = msg(PROTO_DELETE, 2);
	w.key = LIT("k");
	w.opts.replace = true;
	decode_golden(golden_delete_replace, sizeof golden_delete_replace, &w, "DELETE replace");
	w = msg(PROTO_OK, 128);
	w.context = LIT("c");
	w.has_siblings = true;
	w.siblings = 3;
	decode_golden(golden_ok_siblings, sizeof golden_ok_siblings, &w, "OK siblings");
}

/* The frames of a client that predates the options mean what they meant:
 * no replace, no count asked, and an OK without one. */
Test(proto, frames_without_the_new_fields_decode_as_before)
{
	static const uint8_t put0[] = { 0x94, 0x01, 0x02, 0x05, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x01,
					'v', 0xc0, 0x80 };
	static const uint8_t put_zero[] = { 0x94, 0x01, 0x02, 0x05, 0x94, 0xc4, 0x01, 'k', 0xc4,
					    0x01, 'v', 0xc0, 0x82, 0xa7, 'r', 'e', 'p', 'l', 'a',
					    'c', 'e', 0x00, 0xa8, 's', 'i', 'b', 'l', 'i', 'n',
					    'g', 's', 0x00 };
	proto_msg w;
	payload f;

	w = msg(PROTO_PUT, 5);
	w.key = LIT("k");
	w.value = LIT("v");
	f = mkpayload(put0, sizeof put0);
	decode_and_check(&f, &deflim, &w, "PUT without options");
	free(f.p);
	/* 0 is the same as absent, and encodes as absent */
	f = mkpayload(put_zero, sizeof put_zero);
	decode_and_check(&f, &deflim, &w, "PUT with replace 0, siblings 0");
	free(f.p);
	f = encode(&w);
	cr_assert_eq(f.n, sizeof put0);
	cr_assert_arr_eq(f.p, put0, sizeof put0);
	free(f.p);

	w = msg(PROTO_OK, 128);   /* the golden OK of the first form */
	decode_golden(golden_ok, sizeof golden_ok, &w, "OK first form");
}

Test(proto, round_trip_replace_and_sibling_count)
{
	static const uint32_t counts[] = { 0, 1, 2, 127, 128, 65536, UINT32_MAX };
	proto_msg w;

	for (size_t i = 0; i < NOPTS; i++) {
		for (int flags = 0; flags < 4; flags++) {
			w = msg(PROTO_PUT, ids[i % NIDS]);
			w.key = LIT("key");
			w.value = LIT("value");
			w.opts = opt_cases[i];
			w.opts.replace = flags & 1;
			w.opts.siblings = flags & 2;
			round_trip(&w, &deflim, "PUT");
			w.type = PROTO_DELETE;
			w.value = bs(NULL, 0);
			round_trip(&w, &deflim, "DELETE");
		}
	}
	for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		w = msg(PROTO_OK, ids[i % NIDS]);
		w.has_siblings = true;
		w.siblings = counts[i];
		w.context = i % 2 ? LIT("ctx") : bs(NULL, 0);
		round_trip(&w, &deflim, "OK siblings");
	}
}

static void expect_put_opts(const uint8_t *opts, size_t n, bool ctx, int rc, const char *reason)
{
	uint8_t buf[128] = { 0x94, 0x01, 0x02, 0x07, 0x94, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v' };
	size_t len = 11;
	payload f;

	if (ctx) {
		memcpy(buf + len, (const uint8_t[]){ 0xc4, 0x01, 'c' }, 3);
		len += 3;
	} else {
		buf[len++] = 0xc0;
	}
	cr_assert_leq(len + n, sizeof buf);
	memcpy(buf + len, opts, n);
	f = mkpayload(buf, len + n);
	expect(&f, &deflim, rc, 7, PROTO_PUT, reason);
	free(f.p);
}
#define PUTO(ctx, rc, reason, ...) \
	expect_put_opts((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }), \
			ctx, rc, reason)

Test(proto, bad_replace_and_siblings_options)
{
	PUTO(false, DKV_EINVAL, "option replace: 2 is not 0 or 1",
	     0x81, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0x02);
	PUTO(false, DKV_EINVAL, "option siblings: -1 is not 0 or 1",
	     0x81, 0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0xff);
	PUTO(false, DKV_EPROTO, "option replace: not an integer",
	     0x81, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0xc3);
	PUTO(true, DKV_EINVAL,
	     "option replace with a context: a context already says what the write replaces; "
	     "send one or the other",
	     0x81, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0x01);
	/* a context with replace 0 is an ordinary write */
	PUTO(true, 0, "", 0x81, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0x00);
	/* they belong to writes: on a GET they are unknown */
	expect_get(GETO(0x81, 0xa7, 'r', 'e', 'p', 'l', 'a', 'c', 'e', 0x01), DKV_EINVAL,
		   "unknown option \"replace\"");
	expect_get(GETO(0x81, 0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0x01), DKV_EINVAL,
		   "unknown option \"siblings\"");
}

Test(proto, malformed_ok_second_form)
{
	payload f;

	f = P(0x94, 0x01, 0x41, 0x09, 0x91, 0xc0);             /* [ctx] */
	expect(&f, &deflim, DKV_EPROTO, 9, PROTO_OK, "OK body is not [context, siblings]");
	free(f.p);
	f = P(0x94, 0x01, 0x41, 0x09, 0x93, 0xc0, 0x01, 0x01); /* [ctx, 1, 1] */
	expect(&f, &deflim, DKV_EPROTO, 9, PROTO_OK, "OK body is not [context, siblings]");
	free(f.p);
	f = P(0x94, 0x01, 0x41, 0x09, 0x92, 0xc0, 0xff);       /* [ctx, -1] */
	expect(&f, &deflim, DKV_EPROTO, 9, PROTO_OK, "OK siblings is not a 32-bit uint");
	free(f.p);
	f = P(0x94, 0x01, 0x41, 0x09, 0x92, 0xc0, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0); /* 2^32 */
	expect(&f, &deflim, DKV_EPROTO, 9, PROTO_OK, "OK siblings is not a 32-bit uint");
	free(f.p);
	f = P(0x94, 0x01, 0x41, 0x09, 0x92, 0x01, 0x01);       /* [1, 1] */
	expect(&f, &deflim, DKV_EPROTO, 9, PROTO_OK, "context is not a bin or nil");
	free(f.p);
}

/* The stamps option of a GET, and the VALUE with one timestamp per value
 * it asks for: golden bytes, round trips, refusals. */
Test(proto, value_stamps)
{
	proto_bytes vals[2] = { LIT("a"), LIT("") };
	uint64_t ts[2] = { 1796667183508u, 7 }, ex[2] = { 0, 1796667184508u };
	proto_msg g = msg(PROTO_GET, 3), v = msg(PROTO_VALUE, 4), n = msg(PROTO_VALUE, 5);
	proto_msg p = msg(PROTO_PUT, 6);
	/* [1, 64, 4, [true, [a, ""], nil, 0, [1796667183508, 7], [0, 1796667184508]]] */
	static const uint8_t golden[] = { 0x00, 0x00, 0x00, 0x24,
					  0x94, 0x01, 0x40, 0x04, 0x96, 0xc3, 0x92, 0xc4, 0x01,
					  'a', 0xc4, 0x00, 0xc0, 0x00, 0x92, 0xcf, 0x00, 0x00,
					  0x01, 0xa2, 0x51, 0xb5, 0x91, 0x94, 0x07,
					  0x92, 0x00, 0xcf, 0x00, 0x00, 0x01, 0xa2, 0x51, 0xb5,
					  0x95, 0x7c };
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_value_stamps(&sb, 4, true, vals, ts, ex, 2, NULL, 0, 0), 0);
	check_golden(&sb, golden, sizeof golden, "VALUE with stamps");
	cr_assert_eq(proto_encode_value_stamps(&sb, 4, true, vals, ts, NULL, 2, NULL, 0, 0),
		     DKV_EINVAL, "stamps without expires");
	msgpack_sbuffer_destroy(&sb);

	g.key = LIT("k");
	g.opts.stamps = true;
	round_trip(&g, &deflim, "GET with stamps");
	p.key = LIT("k");
	p.opts.ttl_ms = PROTO_MAX_TTL_MS;
	round_trip(&p, &deflim, "PUT with a ttl");
	v.found = true;
	v.values = vals;
	v.nvalues = 2;
	v.stamps = ts;
	v.expires = ex;
	round_trip(&v, &deflim, "VALUE with stamps");
	n.stamps = ts;   /* none of zero values */
	n.expires = ex;
	round_trip(&n, &deflim, "a not-found VALUE with stamps");

	/* one stamp and one expiry per value, each a uint */
	payload f = P(0x94, 0x01, 0x40, 0x04, 0x96, 0xc3, 0x91, 0xc4, 0x01, 'a', 0xc0, 0x00,
		      0x92, 0x01, 0x02, 0x91, 0x00);
	expect(&f, &deflim, DKV_EPROTO, 4, PROTO_VALUE,
	       "VALUE stamps is not an array of one uint per value");
	free(f.p);
	f = P(0x94, 0x01, 0x40, 0x04, 0x96, 0xc3, 0x91, 0xc4, 0x01, 'a', 0xc0, 0x00, 0x91, 0xff,
	      0x91, 0x00);
	expect(&f, &deflim, DKV_EPROTO, 4, PROTO_VALUE, "VALUE stamps: element 0 is not a uint");
	free(f.p);
	f = P(0x94, 0x01, 0x40, 0x04, 0x96, 0xc3, 0x91, 0xc4, 0x01, 'a', 0xc0, 0x00, 0x91, 0x01,
	      0x90);
	expect(&f, &deflim, DKV_EPROTO, 4, PROTO_VALUE,
	       "VALUE expires is not an array of one uint per value");
	free(f.p);
	f = P(0x94, 0x01, 0x40, 0x04, 0x95, 0xc3, 0x90, 0xc0, 0x00, 0x90);
	expect(&f, &deflim, DKV_EPROTO, 4, PROTO_VALUE, "VALUE body is not an array of 4 or 6");
	free(f.p);
	/* a GET option only: on a write it is unknown */
	PUTO(false, DKV_EINVAL, "unknown option \"stamps\"",
	     0x81, 0xa6, 's', 't', 'a', 'm', 'p', 's', 0x01);
	expect_get(GETO(0x81, 0xa6, 's', 't', 'a', 'm', 'p', 's', 0x02), DKV_EINVAL,
		   "option stamps: 2 is not 0 or 1");
	/* ttl_ms: a PUT option, 1 to 100 years */
	PUTO(false, DKV_EINVAL, "option ttl_ms: 0 is not 1 to 3153600000000 (100 years)",
	     0x81, 0xa6, 't', 't', 'l', '_', 'm', 's', 0x00);
	PUTO(false, DKV_EINVAL, "option ttl_ms: 3153600000001 is not 1 to 3153600000000 (100 years)",
	     0x81, 0xa6, 't', 't', 'l', '_', 'm', 's', 0xcf, 0, 0, 0x02, 0xde, 0x41, 0x35,
	     0x30, 0x01);
	PUTO(false, DKV_EPROTO, "option ttl_ms: not an unsigned integer",
	     0x81, 0xa6, 't', 't', 'l', '_', 'm', 's', 0xff);
	PUTO(false, 0, "", 0x81, 0xa6, 't', 't', 'l', '_', 'm', 's', 0x01);
	expect_get(GETO(0x81, 0xa6, 't', 't', 'l', '_', 'm', 's', 0x01), DKV_EINVAL,
		   "unknown option \"ttl_ms\"");
}
