#include "config.h"
/*
 * fuzz_frame.c -- libFuzzer harness for the wire protocol decoder
 * (proto_decode in src/proto.c over the bounded reader of src/mpr.c).
 *
 * The input is tried two ways:
 *   - as one payload, under small limits (so the fuzzer meets them) and
 *     under the node's defaults;
 *   - as a byte stream off a socket: 4-byte big-endian length, payload,
 *     again, while whole frames remain, stopping where a node would close
 *     the connection (a length of 0 or past max_frame, or a payload it
 *     refuses, which it answers with an ERROR first).
 * Besides "no crash, no sanitizer report, only the documented codes", every
 * accepted payload must obey:
 *   - its byte strings lie inside the input, within the limits;
 *   - re-encoded with the encoder of its type, it decodes again to the same
 *     message, field by field and byte by byte, and encoding that gives
 *     the same bytes (the encoding is a fixed point);
 *   - decoding it under the smaller limits gives the same message or
 *     DKV_ETOOBIG, and never anything else;
 * and every refused one leaves no allocation and a reason in err.  A broken
 * property abort()s, which libFuzzer reports as a crash.
 *
 * Build: `make fuzz` (rules in tests/unit/proto.inc), or by hand:
 *   clang -fsanitize=fuzzer,address,undefined -g -O1 -std=c11 -I. -Isrc \
 *     tests/fuzz/fuzz_frame.c src/proto.c src/mpr.c src/error.c -lmsgpackc
 * Seeds: tests/fuzz/corpus/frame/ (payloads, and a few framed streams,
 * whose names start with "stream-").
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

/* The node's defaults (dkv_config.h: max_key_size 1K, max_value_size 1M),
 * and limits small enough for the fuzzer to cross. */
static const proto_limits deflim = { .max_key = 1024, .max_value = 1u << 20 };
static const proto_limits small = { .max_key = 4, .max_value = 16 };

/* A frame larger than this ends the stream (the node's max_frame; small,
 * as the inputs are). */
#define MAX_FRAME 4096u

static bool bytes_eq(proto_bytes a, proto_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* True iff b lies inside [p, p + n) (or is empty). */
static bool inside(proto_bytes b, const uint8_t *p, size_t n)
{
	return b.len == 0 || (b.p >= p && b.len <= n && b.p <= p + n - b.len);
}

static bool opts_eq(const proto_opts *a, const proto_opts *b)
{
	return a->r == b->r && a->w == b->w && a->pr == b->pr && a->pw == b->pw &&
	       a->timeout_ms == b->timeout_ms && a->replace == b->replace &&
	       a->siblings == b->siblings;
}

/* Every field equal, byte strings by content; b's message may have been cut
 * at a NUL (proto_encode_error takes a C string). */
static bool msg_eq(const proto_msg *a, const proto_msg *b)
{
	if (a->type != b->type || a->id != b->id || !bytes_eq(a->key, b->key) ||
	    !bytes_eq(a->value, b->value) || !bytes_eq(a->context, b->context) ||
	    !opts_eq(&a->opts, &b->opts) || a->found != b->found || a->nvalues != b->nvalues ||
	    a->tombstones != b->tombstones || a->code != b->code || !bytes_eq(a->message, b->message) ||
	    a->has_siblings != b->has_siblings || a->siblings != b->siblings)
		return false;
	for (size_t i = 0; i < a->nvalues; i++)
		if (!bytes_eq(a->values[i], b->values[i]))
			return false;
	if (!bytes_eq(a->command, b->command) || a->nargs != b->nargs ||
	    !bytes_eq(a->info, b->info))
		return false;
	for (size_t i = 0; i < a->nargs; i++)
		if (!bytes_eq(a->args[i], b->args[i]))
			return false;
	return true;
}

/* m with its error message cut at its first NUL, as it re-encodes. */
static proto_msg as_c_string(const proto_msg *m)
{
	proto_msg c = *m;
	const uint8_t *nul;

	if (c.message.len > 0 && (nul = memchr(c.message.p, 0, c.message.len)) != NULL)
		c.message.len = (size_t)(nul - c.message.p);
	return c;
}


static bool documented(int rc)
{
	return rc == 0 || rc == DKV_EPROTO || rc == DKV_EVERSION || rc == DKV_ETOOBIG ||
	       rc == DKV_EINVAL;
}

/* What a decode gave back, checked against the documented contract. */
static void check_result(int rc, const proto_msg *m, const char *err, size_t errlen,
			 const uint8_t *p, size_t n, const proto_limits *lim)
{
	CHECK(documented(rc));
	CHECK(memchr(err, '\0', errlen) != NULL);
	if (rc != 0) {
		CHECK(err[0] != '\0');
		CHECK(m->values == NULL && m->nvalues == 0);
		CHECK(m->key.len == 0 && m->value.len == 0 && m->context.len == 0 &&
		      m->message.len == 0);
		CHECK(m->command.len == 0 && m->nargs == 0 && m->info.len == 0);
		return;
	}
	CHECK(err[0] == '\0');
	CHECK(proto_type_name(m->type) != NULL);
	CHECK(inside(m->key, p, n) && inside(m->value, p, n) && inside(m->context, p, n) &&
	      inside(m->message, p, n));
	for (size_t i = 0; i < m->nvalues; i++)
		CHECK(inside(m->values[i], p, n));
	CHECK((m->nvalues == 0) == (m->values == NULL));
	CHECK(m->nvalues <= PROTO_MAX_VALUES);
	CHECK(m->message.len <= PROTO_MAX_MESSAGE);
	CHECK(inside(m->command, p, n) && inside(m->info, p, n));
	CHECK(m->nargs <= PROTO_MAX_ARGS);
	for (size_t i = 0; i < m->nargs; i++)
		CHECK(inside(m->args[i], p, n) && m->args[i].len <= PROTO_MAX_ARG);
	CHECK(m->type == PROTO_ADMIN || (m->command.len == 0 && m->nargs == 0));
	CHECK(m->type == PROTO_INFO || m->info.len == 0);
	if (m->type == PROTO_ADMIN)
		CHECK(m->command.len >= 1 && m->command.len <= PROTO_MAX_COMMAND);
	if (m->type == PROTO_INFO)   /* what the decoder took, the checker takes */
		CHECK(proto_check_info(m->info.p, m->info.len, NULL, 0) == 0);
	switch (m->type) {
	case PROTO_GET:
	case PROTO_PUT:
	case PROTO_DELETE:
		CHECK(m->key.len >= 1 && m->key.len <= lim->max_key);
		CHECK(m->value.len <= lim->max_value);
		CHECK(m->opts.r >= -3 && m->opts.r <= 16 && m->opts.w >= -3 && m->opts.w <= 16);
		CHECK(m->opts.pr >= -3 && m->opts.pr <= 16 && m->opts.pw >= -3 && m->opts.pw <= 16);
		CHECK(m->opts.timeout_ms <= 3600000);
		CHECK(m->type == PROTO_PUT || m->value.len == 0);
		CHECK(m->type != PROTO_GET || m->context.len == 0);
		break;
	default:
		CHECK(m->key.len == 0 && m->value.len == 0);
		break;
	}
}

/* Re-encode an accepted m, decode it again, and compare. */
static void check_round_trip(const proto_msg *m, const proto_limits *lim)
{
	msgpack_sbuffer a, b;
	proto_msg d, want = as_c_string(m);
	char err[256];
	int rc;

	msgpack_sbuffer_init(&a);
	CHECK(proto_encode_msg(&a, m) == 0);
	CHECK(a.size > PROTO_HEADER_SIZE);
	CHECK(proto_frame_length((const uint8_t *)a.data) == a.size - PROTO_HEADER_SIZE);
	rc = proto_decode(a.data + PROTO_HEADER_SIZE, a.size - PROTO_HEADER_SIZE, lim, &d, err,
			  sizeof err);
	if (rc != 0)
		fprintf(stderr, "re-decode: %d (%s)\n", rc, err);
	CHECK(rc == 0);
	CHECK(msg_eq(&d, &want));

	/* the encoding is a fixed point */
	msgpack_sbuffer_init(&b);
	CHECK(proto_encode_msg(&b, &d) == 0);
	CHECK(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);

	proto_msg_release(&d);
	CHECK(d.values == NULL && d.nvalues == 0 && d.type == 0 && d.id == 0);
	msgpack_sbuffer_destroy(&b);
	msgpack_sbuffer_destroy(&a);
}

/* One payload under the default and the small limits. */
static int check_payload(const uint8_t *p, size_t n)
{
	proto_msg m, s;
	char err[256], serr[256];
	int rc, src;

	memset(err, 'x', sizeof err);
	rc = proto_decode(p, n, &deflim, &m, err, sizeof err);
	check_result(rc, &m, err, sizeof err, p, n, &deflim);
	memset(serr, 'x', sizeof serr);
	src = proto_decode(p, n, &small, &s, serr, sizeof serr);
	check_result(src, &s, serr, sizeof serr, p, n, &small);

	/* smaller limits refuse more, and only with DKV_ETOOBIG */
	if (src == 0)
		CHECK(rc == 0 && msg_eq(&m, &s));
	if (rc == 0 && src != 0)
		CHECK(src == DKV_ETOOBIG);
	/* what could be read before a limit was crossed is the same */
	if (src == DKV_ETOOBIG && rc == 0)
		CHECK(s.id == m.id && s.type == m.type);

	if (rc == 0)
		check_round_trip(&m, &deflim);
	if (src == 0)
		check_round_trip(&s, &small);
	proto_msg_release(&s);
	proto_msg_release(&m);
	return rc;
}

/* The reply a node sends before it closes on a refused payload. */
static void check_error_reply(int rc, uint64_t id, const char *reason)
{
	msgpack_sbuffer sb;
	proto_msg r;
	uint32_t code = proto_error_from_dkv(rc);

	CHECK(proto_error_to_dkv(code) == rc);
	msgpack_sbuffer_init(&sb);
	CHECK(proto_encode_error(&sb, id, code, reason) == 0);
	CHECK(proto_frame_length((const uint8_t *)sb.data) == sb.size - PROTO_HEADER_SIZE);
	CHECK(proto_decode(sb.data + PROTO_HEADER_SIZE, sb.size - PROTO_HEADER_SIZE, &deflim, &r,
			   NULL, 0) == 0);
	CHECK(r.type == PROTO_ERROR && r.id == id && r.code == code);
	CHECK(r.message.len == strlen(reason) && memcmp(r.message.p, reason, r.message.len) == 0);
	proto_msg_release(&r);
	msgpack_sbuffer_destroy(&sb);
}

/* The input as frames off a socket. */
static void check_stream(const uint8_t *data, size_t size)
{
	size_t at = 0;

	while (size - at >= PROTO_HEADER_SIZE) {
		uint32_t len = proto_frame_length(data + at);
		char err[256];
		proto_msg m;
		uint8_t *copy;
		int rc;

		at += PROTO_HEADER_SIZE;
		if (len == 0 || len > MAX_FRAME) {
			check_error_reply(len == 0 ? DKV_EPROTO : DKV_ETOOBIG, 0,
					  len == 0 ? "empty frame" : "frame too large");
			return;
		}
		if (len > size - at)
			return;         /* the rest has not arrived */
		/* exactly the frame's bytes, as a server's read buffer would
		 * not be: an overread past the frame is caught */
		copy = malloc(len);
		CHECK(copy != NULL);
		memcpy(copy, data + at, len);
		rc = check_payload(copy, len);
		if (rc != 0) {
			rc = proto_decode(copy, len, &deflim, &m, err, sizeof err);
			CHECK(rc != 0);
			check_error_reply(rc, m.id, err);
			proto_msg_release(&m);
			free(copy);
			return;
		}
		free(copy);
		at += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)check_payload(data, size);
	check_stream(data, size);
	return 0;
}
