#include "config.h"
/*
 * test_client.c -- libdynkv (src/client/client.c) against the fake node of
 * fakenode.c: round trips, options on the wire, the node's errors, a node
 * that misbehaves (half a frame, garbage, a 4 GiB length, another request's
 * id, silence), connecting, and dynkv_admin().
 *
 * The programs over the library, dynkv and dynkv-admin, are tested in
 * test_cli_programs.c against the same fake.
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dynkv.h"
#include "error.h"
#include "fakenode.h"
#include "proto.h"

/* --- client fixtures ------------------------------------------------------ */

static dynkv *connect_cfg(dynkv_config *cfg)
{
	char err[256] = "";
	dynkv *c = NULL;
	int rc;

	cfg->address = addr;
	rc = dynkv_connect(&c, cfg, err, sizeof(err));
	cr_assert_eq(rc, 0, "connect %s: %s", addr, err);
	cr_assert_not_null(c);
	return c;
}

static dynkv *conn(void)
{
	dynkv_config cfg;

	dynkv_config_init(&cfg);
	return connect_cfg(&cfg);
}

#define assert_bytes(b, s, n) do {                                                \
		cr_assert_eq((b).len, (size_t)(n), "length %zu, expected %zu",     \
			     (b).len, (size_t)(n));                                \
		cr_assert((n) == 0 || memcmp((b).data, (s), (n)) == 0, "bytes differ"); \
	} while (0)

/* --- round trips ---------------------------------------------------------- */

TestSuite(client, .init = setup, .fini = teardown);

Test(client, ping)
{
	dynkv *c = conn();

	cr_assert_eq(dynkv_ping(c, 0), 0);
	cr_assert_eq(F.last_type, PROTO_PING);
	cr_assert_str_empty(dynkv_errmsg(c));
	cr_assert_eq(dynkv_ping(c, 1000), 0);
	cr_assert_eq(nreq(), 2);
	dynkv_close(c);
}

Test(client, get_missing_is_not_an_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	cr_assert_eq(dynkv_get(c, "nope", 4, NULL, &r), 0);
	cr_assert(!r.found);
	cr_assert_eq(r.nvalues, 0);
	cr_assert_null(r.values);
	cr_assert_eq(r.context.len, 0);
	cr_assert_eq(r.tombstones, 0);
	dynkv_result_free(&r);
	dynkv_result_free(&r);          /* freeing an empty result is harmless */
	dynkv_close(c);
}

Test(client, put_get_binary_key_and_value)
{
	static const char key[] = "k\0ey\xff";
	uint8_t val[256];
	dynkv *c = conn();
	dynkv_result r = {0};

	for (int i = 0; i < 256; i++)
		val[i] = (uint8_t)(255 - i);
	cr_assert_eq(dynkv_put(c, key, sizeof(key) - 1, val, sizeof(val), NULL, 0, NULL, NULL), 0);
	cr_assert_eq(F.last_type, PROTO_PUT);
	cr_assert_eq(F.last_klen, 5);
	cr_assert(memcmp(F.last_key, key, 5) == 0);
	cr_assert_eq(F.last_vlen, 256);
	cr_assert(memcmp(F.last_val, val, 256) == 0);
	cr_assert_eq(F.last_ctxlen, 0, "a put without context sends none");

	cr_assert_eq(dynkv_get(c, key, sizeof(key) - 1, NULL, &r), 0);
	cr_assert(r.found);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], val, 256);
	cr_assert_eq(r.context.len, CTX_LEN);
	dynkv_result_free(&r);

	/* A key that differs only after the NUL is another key. */
	cr_assert_eq(dynkv_get(c, "k\0ex", 4, NULL, &r), 0);
	cr_assert(!r.found);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, empty_value_round_trips)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "e", 1, NULL, 0, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(F.last_vlen, 0);
	cr_assert_eq(dynkv_get(c, "e", 1, NULL, &r), 0);
	cr_assert(r.found, "a 0-byte value is a value");
	cr_assert_eq(r.nvalues, 1);
	cr_assert_eq(r.values[0].len, 0);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, large_value_round_trips)
{
	size_t n = 3u << 20;
	uint8_t *v = malloc(n);
	dynkv *c = conn();
	dynkv_result r = {0};

	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)(i * 7 + (i >> 13));
	cr_assert_eq(dynkv_put(c, "big", 3, v, n, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "big", 3, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], v, n);
	dynkv_result_free(&r);
	/* Still usable after a put that grew the encoding buffer. */
	cr_assert_eq(dynkv_ping(c, 0), 0);
	dynkv_close(c);
	free(v);
}

Test(client, siblings_and_context_resolve)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	uint8_t ctx[CTX_LEN];

	cr_assert_eq(dynkv_put(c, "g", 1, "hello", 5, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_put(c, "g", 1, "hi", 2, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "g", 1, NULL, &r), 0);
	cr_assert(r.found);
	cr_assert_eq(r.nvalues, 2, "two blind writes are siblings");
	assert_bytes(r.values[0], "hello", 5);
	assert_bytes(r.values[1], "hi", 2);
	make_ctx(ctx, 2);
	assert_bytes(r.context, ctx, CTX_LEN);

	/* The context goes back byte for byte (NUL and 0xff included). */
	cr_assert_eq(dynkv_put(c, "g", 1, "hello, hi", 9, r.context.data, r.context.len,
			       NULL, NULL), 0);
	cr_assert_eq(F.last_ctxlen, CTX_LEN);
	cr_assert(memcmp(F.last_ctx, ctx, CTX_LEN) == 0);
	dynkv_result_free(&r);

	cr_assert_eq(dynkv_get(c, "g", 1, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], "hello, hi", 9);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, writes_return_the_new_context)
{
	dynkv *c = conn();
	dynkv_result w = {0}, w2 = {0}, r = {0};
	uint8_t ctx[CTX_LEN];

	cr_assert_eq(dynkv_put(c, "w", 1, "one", 3, NULL, 0, NULL, &w), 0);
	make_ctx(ctx, 1);
	assert_bytes(w.context, ctx, CTX_LEN);
	cr_assert(!w.found);
	cr_assert_eq(w.nvalues, 0);
	cr_assert_null(w.values);
	/* Writing with it supersedes the first write: no sibling. */
	cr_assert_eq(dynkv_put(c, "w", 1, "two", 3, w.context.data, w.context.len, NULL, &w2), 0);
	cr_assert(memcmp(F.last_ctx, ctx, CTX_LEN) == 0);
	dynkv_result_free(&w);
	cr_assert_eq(dynkv_get(c, "w", 1, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], "two", 3);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_delete(c, "w", 1, w2.context.data, w2.context.len, NULL, &w), 0);
	make_ctx(ctx, 3);
	assert_bytes(w.context, ctx, CTX_LEN);
	dynkv_result_free(&w);
	dynkv_result_free(&w2);
	cr_assert_eq(dynkv_get(c, "w", 1, NULL, &r), 0);
	cr_assert(!r.found);
	cr_assert_eq(r.tombstones, 1);
	dynkv_result_free(&r);
	/* A failed write leaves the result empty. */
	F.h = h_error;
	F.err_code = PROTO_ERR_STORAGE;
	F.err_msg = "disk full";
	cr_assert_eq(dynkv_put(c, "w", 1, "x", 1, NULL, 0, NULL, &w), DYNKV_ESTORAGE);
	cr_assert_eq(w.context.len, 0);
	cr_assert_null(w.priv_);
	cr_assert_eq(dynkv_delete(c, "w", 1, NULL, 0, NULL, &w), DYNKV_ESTORAGE);
	cr_assert_eq(w.context.len, 0);
	dynkv_close(c);
}

Test(client, delete_with_context_and_tombstones)
{
	dynkv *c = conn();
	dynkv_result r = {0}, r2 = {0};

	cr_assert_eq(dynkv_put(c, "d", 1, "v1", 2, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "d", 1, NULL, &r), 0);
	/* A blind delete is a sibling of the value: found, one tombstone. */
	cr_assert_eq(dynkv_delete(c, "d", 1, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(F.last_type, PROTO_DELETE);
	cr_assert_eq(dynkv_get(c, "d", 1, NULL, &r2), 0);
	cr_assert(r2.found);
	cr_assert_eq(r2.nvalues, 1);
	cr_assert_eq(r2.tombstones, 1);
	/* A delete with the latest context supersedes both. */
	cr_assert_eq(dynkv_delete(c, "d", 1, r2.context.data, r2.context.len, NULL, NULL),
		     0);
	cr_assert_eq(F.last_ctxlen, CTX_LEN);
	dynkv_result_free(&r2);
	cr_assert_eq(dynkv_get(c, "d", 1, NULL, &r2), 0);
	cr_assert(!r2.found);
	cr_assert_eq(r2.nvalues, 0);
	cr_assert_eq(r2.tombstones, 1);
	cr_assert_eq(r2.context.len, CTX_LEN, "a deleted key still has a context");
	dynkv_result_free(&r2);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, bad_context_is_the_nodes_error)
{
	dynkv *c = conn();

	cr_assert_eq(dynkv_put(c, "x", 1, "v", 1, "junk", 4, NULL, NULL), DYNKV_ECONTEXT);
	cr_assert_str_eq(dynkv_errmsg(c), "malformed context");
	cr_assert(!dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), 0);
	cr_assert_str_empty(dynkv_errmsg(c), "success clears the message");
	dynkv_close(c);
}

/* --- options -------------------------------------------------------------- */

/* {"siblings": 1}: the options of a write with every option at its default. */
static const uint8_t siblings_only[] = { 0x81, 0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0x01 };

Test(client, options_on_the_wire)
{
	dynkv *c = conn();
	dynkv_opts o = { .r = 2, .w = DYNKV_QUORUM, .pr = DYNKV_ONE, .pw = DYNKV_ALL,
			 .timeout_ms = 1234 };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "o", 1, "v", 1, NULL, 0, &o, NULL), 0);
	cr_assert_eq(F.last_opts.r, 2);
	cr_assert_eq(F.last_opts.w, -2);
	cr_assert_eq(F.last_opts.pr, -1);
	cr_assert_eq(F.last_opts.pw, -3);
	cr_assert_eq(F.last_opts.timeout_ms, 1234);

	o = (dynkv_opts){ .r = 16 };
	cr_assert_eq(dynkv_get(c, "o", 1, &o, &r), 0);
	dynkv_result_free(&r);
	cr_assert_eq(F.last_type, PROTO_GET);
	cr_assert_eq(F.last_opts.r, 16);
	cr_assert_eq(F.last_opts.w, 0);
	cr_assert_eq(F.last_opts.timeout_ms, 0);

	/* Defaults: an empty map on the wire (the payload's last byte, 0x80);
	 * a write's map asks for the sibling count, and nothing else. */
	o = (dynkv_opts){ 0 };
	cr_assert_eq(dynkv_delete(c, "o", 1, NULL, 0, &o, NULL), 0);
	cr_assert_geq(F.last_plen, sizeof(siblings_only));
	cr_assert_arr_eq(F.last_payload + F.last_plen - sizeof(siblings_only), siblings_only,
			 sizeof(siblings_only));
	cr_assert_eq(dynkv_get(c, "o", 1, NULL, &r), 0);
	dynkv_result_free(&r);
	cr_assert_eq(F.last_payload[F.last_plen - 1], 0x80);
	dynkv_close(c);
}

Test(client, replace_mode_and_the_sibling_count)
{
	dynkv *c = conn();
	dynkv_opts blind = { 0 }, repl = { .replace = true, .r = 3, .pr = DYNKV_ONE };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "s", 1, "a", 1, NULL, 0, &blind, &r), 0);
	cr_assert_not(F.last_opts.replace);
	cr_assert(F.last_opts.siblings, "a put asks for the count");
	cr_assert_eq(r.siblings, 1);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_put(c, "s", 1, "b", 1, NULL, 0, &blind, &r), 0);
	cr_assert_eq(r.siblings, 2, "a blind put leaves a sibling");
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_get(c, "s", 1, NULL, &r), 0);
	cr_assert_eq(r.siblings, 2, "a get's siblings are its values");
	cr_assert_eq(r.nvalues, 2);
	dynkv_result_free(&r);

	cr_assert_eq(dynkv_put(c, "s", 1, "c", 1, NULL, 0, &repl, &r), 0);
	cr_assert(F.last_opts.replace);
	cr_assert(F.last_opts.siblings);
	cr_assert_eq(F.last_opts.r, 3, "replace mode sends its read's R");
	cr_assert_eq(F.last_opts.pr, DYNKV_ONE);
	cr_assert_eq(F.last_ctxlen, 0);
	cr_assert_eq(r.siblings, 1);
	cr_assert_gt(r.context.len, 0);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_get(c, "s", 1, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], "c", 1);
	dynkv_result_free(&r);

	/* a replace-mode delete deletes what is there */
	cr_assert_eq(dynkv_delete(c, "s", 1, NULL, 0, &repl, &r), 0);
	cr_assert(F.last_opts.replace);
	cr_assert_eq(r.siblings, 0);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_get(c, "s", 1, NULL, &r), 0);
	cr_assert_not(r.found);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, replace_with_a_context_or_on_a_get_is_refused_before_sending)
{
	dynkv *c = conn();
	dynkv_opts repl = { .replace = true };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, "ctx", 3, &repl, &r), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c),
			 "replace with a context: a context already says what the write replaces");
	cr_assert_eq(dynkv_delete(c, "k", 1, "ctx", 3, &repl, NULL), DYNKV_EARG);
	cr_assert_eq(dynkv_get(c, "k", 1, &repl, &r), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "replace is for put and delete, not get");
	cr_assert_eq(nreq(), 0, "nothing was sent");
	cr_assert_not(dynkv_is_broken(c));
	dynkv_close(c);
}

/* ttl_ms: sent on a put, refused past 100 years and on a get or delete. */
Test(client, a_time_to_live_is_for_puts)
{
	dynkv *c = conn();
	dynkv_opts o = { .ttl_ms = DYNKV_TTL_MAX_MS };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "t", 1, "v", 1, NULL, 0, &o, NULL), 0);
	cr_assert_eq(F.last_opts.ttl_ms, DYNKV_TTL_MAX_MS);
	o.ttl_ms = DYNKV_TTL_MAX_MS + 1;
	cr_assert_eq(dynkv_put(c, "t", 1, "v", 1, NULL, 0, &o, NULL), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "option ttl_ms: 3153600000001 > 3153600000000 (100 years)");
	o.ttl_ms = 5;
	cr_assert_eq(dynkv_get(c, "t", 1, &o, &r), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "ttl_ms is for put, not get");
	cr_assert_eq(dynkv_delete(c, "t", 1, NULL, 0, &o, NULL), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "ttl_ms is for put, not delete");
	cr_assert_eq(nreq(), 1, "only the good put was sent");
	dynkv_close(c);
}

Test(client, bad_options_are_refused_before_sending)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	dynkv_opts bad[] = {
		{ .r = 17 }, { .w = -4 }, { .pr = 100 }, { .pw = -1000 },
		{ .timeout_ms = DYNKV_TIMEOUT_MAX + 1 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dynkv_get(c, "k", 1, &bad[i], &r), DYNKV_EARG, "case %zu", i);
		cr_assert_str_not_empty(dynkv_errmsg(c));
		cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, &bad[i], NULL), DYNKV_EARG);
	}
	cr_assert_eq(dynkv_get(c, NULL, 0, NULL, &r), DYNKV_EARG);
	cr_assert_eq(dynkv_get(c, "k", 0, NULL, &r), DYNKV_EARG, "empty key");
	cr_assert_eq(dynkv_put(c, "k", 1, NULL, 3, NULL, 0, NULL, NULL), DYNKV_EARG);
	cr_assert_eq(dynkv_delete(c, "k", 1, NULL, 3, NULL, NULL), DYNKV_EARG);
	cr_assert_eq(nreq(), 0, "nothing was sent");
	cr_assert(!dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), 0);
	dynkv_close(c);
}

Test(client, quorum_words)
{
	int q = 99;

	cr_assert_eq(dynkv_parse_quorum("one", &q), 0);
	cr_assert_eq(q, DYNKV_ONE);
	cr_assert_eq(dynkv_parse_quorum("quorum", &q), 0);
	cr_assert_eq(q, DYNKV_QUORUM);
	cr_assert_eq(dynkv_parse_quorum("all", &q), 0);
	cr_assert_eq(q, DYNKV_ALL);
	cr_assert_eq(dynkv_parse_quorum("default", &q), 0);
	cr_assert_eq(q, 0);
	cr_assert_eq(dynkv_parse_quorum("1", &q), 0);
	cr_assert_eq(q, 1);
	cr_assert_eq(dynkv_parse_quorum("16", &q), 0);
	cr_assert_eq(q, 16);
	q = 99;
	static const char *const bad[] = { "0", "17", "-1", "+2", " 2", "2 ", "2x", "",
					   "ONE", "quorum2", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dynkv_parse_quorum(bad[i], &q), DYNKV_EARG, "\"%s\"", bad[i]);
		cr_assert_eq(q, 99, "untouched on error");
	}
	cr_assert_eq(dynkv_parse_quorum(NULL, &q), DYNKV_EARG);
	cr_assert_str_eq(dynkv_quorum_name(DYNKV_ONE), "one");
	cr_assert_str_eq(dynkv_quorum_name(DYNKV_QUORUM), "quorum");
	cr_assert_str_eq(dynkv_quorum_name(DYNKV_ALL), "all");
	cr_assert_str_eq(dynkv_quorum_name(0), "default");
	cr_assert_null(dynkv_quorum_name(3));
}

/* --- node errors ---------------------------------------------------------- */

Test(client, every_node_error_maps_to_its_code)
{
	/* With the request's id, every one fails the request only. */
	static const struct { uint32_t wire; int rc; } map[] = {
		{ PROTO_ERR_PROTOCOL, DYNKV_EREQUEST },
		{ PROTO_ERR_VERSION, DYNKV_EVERSION },
		{ PROTO_ERR_TYPE, DYNKV_ETYPE },
		{ PROTO_ERR_TOOBIG, DYNKV_ETOOBIG },
		{ PROTO_ERR_INVALID, DYNKV_EINVALID },
		{ PROTO_ERR_QUORUM, DYNKV_EQUORUM },
		{ PROTO_ERR_TIMEOUT, DYNKV_ENODETIMEOUT },
		{ PROTO_ERR_STORAGE, DYNKV_ESTORAGE },
		{ PROTO_ERR_OVERLOAD, DYNKV_EOVERLOAD },
		{ PROTO_ERR_SHUTDOWN, DYNKV_ESHUTDOWN },
		{ PROTO_ERR_CONTEXT, DYNKV_ECONTEXT },
		{ PROTO_ERR_INTERNAL, DYNKV_EINTERNAL },
		{ 99, DYNKV_ESERVER },
	};
	char msg[128];

	F.h = h_error;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		dynkv *c = conn();
		dynkv_result r = {0};

		snprintf(msg, sizeof(msg), "error %u: detail", map[i].wire);
		F.err_code = map[i].wire;
		F.err_msg = msg;
		cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), map[i].rc, "wire code %u", map[i].wire);
		cr_assert(!r.found);
		cr_assert_null(r.values);
		cr_assert_str_eq(dynkv_errmsg(c), msg);
		cr_assert(dynkv_is_server_error(map[i].rc));
		cr_assert(!dynkv_is_broken(c), "wire code %u", map[i].wire);
		cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), map[i].rc);
		dynkv_close(c);
	}
}

Test(client, quorum_error_keeps_the_nodes_message)
{
	dynkv *c = conn();

	F.h = h_error;
	F.err_code = PROTO_ERR_QUORUM;
	F.err_msg = "quorum not met: 1 of w=2 replicas answered";
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_EQUORUM);
	cr_assert_str_eq(dynkv_errmsg(c), "quorum not met: 1 of w=2 replicas answered");
	cr_assert_str_eq(dynkv_strerror(DYNKV_EQUORUM), "quorum not met");
	cr_assert_eq(dynkv_delete(c, "k", 1, NULL, 0, NULL, NULL), DYNKV_EQUORUM);
	/* An empty message from the node: the code's text stands in. */
	F.err_msg = "";
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EQUORUM);
	cr_assert_str_eq(dynkv_errmsg(c), "quorum not met");
	dynkv_close(c);
}

Test(client, error_without_request_id_breaks_the_connection)
{
	dynkv *c = conn();

	F.h = h_error_id0;
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_ETOOBIG);
	cr_assert_str_eq(dynkv_errmsg(c), "frame too large: 9000000 > max_frame 8388608");
	cr_assert(dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EBROKEN);
	dynkv_close(c);
}

Test(client, overload_at_accept_fails_the_first_request)
{
	dynkv *c;

	F.overload_on_accept = true;
	c = conn();
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EOVERLOAD);
	cr_assert_str_eq(dynkv_errmsg(c), "too many connections (1024)");
	cr_assert(dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EBROKEN);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "too many connections"), "%s", dynkv_errmsg(c));
	dynkv_close(c);
}

Test(client, strerror_names_every_code)
{
	static const int codes[] = {
		DYNKV_EIO, DYNKV_ETIMEOUT, DYNKV_EPROTO, DYNKV_EBROKEN, DYNKV_ENOMEM,
		DYNKV_EARG, DYNKV_ESERVER, DYNKV_EREQUEST, DYNKV_EVERSION, DYNKV_ETYPE,
		DYNKV_ETOOBIG, DYNKV_EINVALID, DYNKV_EQUORUM, DYNKV_ENODETIMEOUT,
		DYNKV_ESTORAGE, DYNKV_EOVERLOAD, DYNKV_ESHUTDOWN, DYNKV_ECONTEXT,
		DYNKV_EINTERNAL,
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_neq(dynkv_strerror(codes[i]), "unknown error", "code %d", codes[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(dynkv_strerror(codes[i]), dynkv_strerror(codes[j]));
		cr_assert_eq(dynkv_is_server_error(codes[i]), codes[i] <= DYNKV_ESERVER);
	}
	cr_assert_str_eq(dynkv_strerror(0), "success");
	cr_assert_str_eq(dynkv_strerror(-55), "unknown error");
	cr_assert_str_eq(dynkv_strerror(DYNKV_ETIMEOUT), "timed out waiting for the node");
	cr_assert_str_eq(dynkv_strerror(DYNKV_ENODETIMEOUT), "request timed out");
}

/* --- faults --------------------------------------------------------------- */

/* The handle is broken: requests fail at once and say why. */
static void assert_broken(dynkv *c, const char *why)
{
	dynkv_result r = {0};
	unsigned n = nreq();

	cr_assert(dynkv_is_broken(c));
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EBROKEN);
	cr_assert_not_null(strstr(dynkv_errmsg(c), why), "\"%s\" lacks \"%s\"",
			   dynkv_errmsg(c), why);
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_EBROKEN);
	cr_assert_eq(dynkv_delete(c, "k", 1, NULL, 0, NULL, NULL), DYNKV_EBROKEN);
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EBROKEN);
	cr_assert_eq(nreq(), n, "a broken handle sends nothing");
}

Test(client, close_after_half_a_reply_is_an_io_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	int64_t t0 = now_ms();

	F.h = h_half;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EIO);
	cr_assert_lt(now_ms() - t0, 5000, "an EOF is not a wait for the deadline");
	cr_assert_not_null(strstr(dynkv_errmsg(c), "closed by the node"), "%s", dynkv_errmsg(c));
	cr_assert(!r.found);
	assert_broken(c, "closed by the node");
	dynkv_close(c);
}

Test(client, close_before_the_reply_is_an_io_error)
{
	dynkv *c = conn();

	F.h = h_close;
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_EIO);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "0 of 4 reply header bytes"), "%s",
			   dynkv_errmsg(c));
	assert_broken(c, "closed");
	dynkv_close(c);
}

Test(client, close_while_sending_is_an_io_error_not_sigpipe)
{
	size_t n = 8u << 20;
	uint8_t *v = calloc(1, n);
	dynkv *c;

	signal(SIGPIPE, SIG_DFL);       /* the library must not raise it */
	F.close_on_accept = true;
	c = conn();
	cr_assert_eq(dynkv_put(c, "k", 1, v, n, NULL, 0, NULL, NULL), DYNKV_EIO);
	cr_assert(dynkv_is_broken(c));
	dynkv_close(c);
	free(v);
}

Test(client, frame_refused_mid_send_reports_the_nodes_error)
{
	size_t n = 8u << 20;
	uint8_t *v = calloc(1, n);
	dynkv *c;

	F.max_frame = 65536;
	c = conn();
	cr_assert_eq(dynkv_put(c, "k", 1, v, 1000, NULL, 0, NULL, NULL), 0, "a small one passes");
	cr_assert_eq(dynkv_put(c, "k", 1, v, n, NULL, 0, NULL, NULL), DYNKV_ETOOBIG, "%s",
		     dynkv_errmsg(c));
	cr_assert_not_null(strstr(dynkv_errmsg(c), "> max_frame 65536"), "%s", dynkv_errmsg(c));
	cr_assert(dynkv_is_broken(c));
	dynkv_close(c);
	free(v);
}

Test(client, garbage_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_garbage;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "malformed reply"), "%s", dynkv_errmsg(c));
	assert_broken(c, "malformed reply");
	dynkv_close(c);
}

Test(client, four_gib_length_is_refused_unread)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	int64_t t0 = now_ms();

	F.h = h_huge;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_lt(now_ms() - t0, 5000);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "4294967295 bytes is above the limit"),
			   "%s", dynkv_errmsg(c));
	assert_broken(c, "above the limit");
	dynkv_close(c);
}

Test(client, another_servers_answer_names_the_peer_and_its_kind)
{
	static const struct { const char *answer, *want; } cases[] = {
		{ "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
		  "is not a dynkv node (it answered like an HTTP server: "
		  "\"HTTP/1.1 400 Bad Request\")" },
		{ "-ERR unknown command\r\n",
		  "is not a dynkv node (it answered like a Redis server: \"-ERR unknown command\")" },
		{ "+OK\r\n", "(it answered like a Redis server: \"+OK\")" },
		{ "SSH-2.0-OpenSSH_9.2p1\r\n", "(it answered like an SSH server: " },
		{ "hello there\n", "is not a dynkv node (it answered: \"hello there\")" },
	};
	char want[128];

	F.h = h_text;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dynkv *c = conn();
		int64_t t0 = now_ms();

		F.err_msg = cases[i].answer;
		cr_assert_eq(dynkv_ping(c, 0), DYNKV_EPROTO, "case %zu", i);
		cr_assert_lt(now_ms() - t0, 2000);
		cr_assert_not_null(strstr(dynkv_errmsg(c), cases[i].want), "case %zu: %s", i,
				   dynkv_errmsg(c));
		snprintf(want, sizeof(want), "the peer at %s is not a dynkv node", addr);
		cr_assert_not_null(strstr(dynkv_errmsg(c), want), "%s", dynkv_errmsg(c));
		assert_broken(c, "not a dynkv node");
		dynkv_close(c);
	}
}

Test(client, zero_length_frame_is_a_protocol_error)
{
	dynkv *c = conn();

	F.h = h_zero_len;
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EPROTO);
	assert_broken(c, "empty reply frame");
	dynkv_close(c);
}

Test(client, reply_limit_is_settable)
{
	dynkv_config cfg;
	dynkv *c;
	dynkv_result r = {0};
	uint8_t v[1000] = {0};

	dynkv_config_init(&cfg);
	cfg.max_reply = 2000;
	c = connect_cfg(&cfg);
	cr_assert_eq(dynkv_put(c, "k", 1, v, sizeof(v), NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), 0, "%s", dynkv_errmsg(c));
	dynkv_result_free(&r);
	dynkv_set_max_reply(c, 500);
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "above the limit of 500"), "%s",
			   dynkv_errmsg(c));
	cr_assert(dynkv_is_broken(c));
	dynkv_close(c);
}

Test(client, wrong_request_id_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_wrong_id;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_str_eq(dynkv_errmsg(c), "reply VALUE for request 2, expected 1");
	assert_broken(c, "expected 1");
	dynkv_close(c);
}

Test(client, wrong_reply_type_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_pong;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_str_eq(dynkv_errmsg(c), "reply PONG to a request that expects VALUE");
	assert_broken(c, "PONG");
	dynkv_close(c);
}

Test(client, found_without_values_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_found_empty;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_null(r.values);
	assert_broken(c, "found true and 0 values");
	dynkv_close(c);
}

Test(client, other_protocol_version_is_a_protocol_error)
{
	dynkv *c = conn();

	F.h = h_version2;
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EPROTO);
	assert_broken(c, "version 2");
	dynkv_close(c);
}

Test(client, silent_node_times_out_at_the_deadline)
{
	dynkv_config cfg;
	dynkv *c;
	dynkv_result r = {0};
	int64_t t0, dt;

	F.h = h_silent;
	dynkv_config_init(&cfg);
	cfg.request_timeout_ms = 300;
	c = connect_cfg(&cfg);
	t0 = now_ms();
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_ETIMEOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 290, "gave up after %lld ms", (long long)dt);
	cr_assert_lt(dt, 3000, "gave up after %lld ms", (long long)dt);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "timed out"), "%s", dynkv_errmsg(c));
	assert_broken(c, "timed out");
	dynkv_close(c);
}

Test(client, request_deadline_is_its_timeout_plus_the_margin)
{
	dynkv_config cfg;
	dynkv *c;
	dynkv_opts o = { .timeout_ms = 200 };
	int64_t t0, dt;

	F.h = h_silent;
	dynkv_config_init(&cfg);
	cfg.request_timeout_ms = 60000;         /* not this one */
	cfg.timeout_margin_ms = 150;
	c = connect_cfg(&cfg);
	t0 = now_ms();
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, &o, NULL), DYNKV_ETIMEOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 340, "gave up after %lld ms", (long long)dt);
	cr_assert_lt(dt, 3000, "gave up after %lld ms", (long long)dt);
	dynkv_close(c);
}

Test(client, ping_timeout)
{
	dynkv *c = conn();
	int64_t t0 = now_ms(), dt;

	F.h = h_silent;
	cr_assert_eq(dynkv_ping(c, 200), DYNKV_ETIMEOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 190);
	cr_assert_lt(dt, 3000);
	dynkv_close(c);
}

/* --- connecting ----------------------------------------------------------- */

Test(client, connect_to_a_closed_port_fails_fast)
{
	dynkv_config cfg;
	dynkv *c = (dynkv *)&cfg;       /* must be reset to NULL */
	char a[64], err[256] = "";
	int64_t t0 = now_ms();

	snprintf(a, sizeof(a), "127.0.0.1:%u", closed_port());
	dynkv_config_init(&cfg);
	cfg.address = a;
	cr_assert_eq(dynkv_connect(&c, &cfg, err, sizeof(err)), DYNKV_EIO);
	cr_assert_null(c);
	cr_assert_lt(now_ms() - t0, 2000);
	cr_assert_not_null(strstr(err, "refused"), "%s", err);
	cr_assert_not_null(strstr(err, a), "%s", err);
}

Test(client, bad_addresses)
{
	static const char *const bad[] = {
		"", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:80x", "127.0.0.1:-1", ":7070", "::1:7070", "[::1:7070", "[]:7070",
	};
	dynkv_config cfg;
	dynkv *c = NULL;
	char err[256];

	dynkv_config_init(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.address = bad[i];
		err[0] = '\0';
		cr_assert_eq(dynkv_connect(&c, &cfg, err, sizeof(err)), DYNKV_EARG, "\"%s\"", bad[i]);
		cr_assert_str_not_empty(err);
	}
	cfg.address = NULL;
	cr_assert_eq(dynkv_connect(&c, &cfg, NULL, 0), DYNKV_EARG);
	cfg.address = "no-such-host.invalid:7070";
	cr_assert_eq(dynkv_connect(&c, &cfg, err, sizeof(err)), DYNKV_EIO);
	cr_assert_not_null(strstr(err, "cannot resolve"), "%s", err);
}

Test(client, config_defaults)
{
	dynkv_config cfg;

	memset(&cfg, 0xff, sizeof(cfg));
	dynkv_config_init(&cfg);
	cr_assert_null(cfg.address);
	cr_assert_eq(cfg.connect_timeout_ms, DYNKV_DEFAULT_CONNECT_TIMEOUT_MS);
	cr_assert_eq(cfg.request_timeout_ms, DYNKV_DEFAULT_REQUEST_TIMEOUT_MS);
	cr_assert_eq(cfg.timeout_margin_ms, DYNKV_DEFAULT_TIMEOUT_MARGIN_MS);
	cr_assert_eq(cfg.max_reply, DYNKV_DEFAULT_MAX_REPLY);
	dynkv_close(NULL);
	dynkv_result_free(NULL);
}

Test(client, zeroed_config_uses_defaults)
{
	dynkv_config cfg;
	dynkv *c;

	memset(&cfg, 0, sizeof(cfg));
	c = connect_cfg(&cfg);
	cr_assert_eq(dynkv_ping(c, 0), 0);
	dynkv_close(c);
}

/* --- dynkv_admin() -------------------------------------------------------- */

Test(client, admin_returns_the_info_map)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;
	char *sent;

	F.h = h_info;
	F.info = members_map;
	F.info_len = sizeof(members_map);
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), 0, "%s", dynkv_errmsg(c));
	cr_assert_eq(len, sizeof(members_map));
	cr_assert_arr_eq(info, members_map, len);
	free(info);
	cr_assert_eq(F.last_type, PROTO_ADMIN);
	sent = last_admin();
	cr_assert_str_eq(sent, "members");
	free(sent);

	F.info = ok_map;
	F.info_len = sizeof(ok_map);
	cr_assert_eq(dynkv_admin(c, "leave", (const char *const[]){ "n2", "" }, 2, &info, &len), 0);
	cr_assert_eq(len, sizeof(ok_map));
	cr_assert_arr_eq(info, ok_map, len);
	free(info);
	sent = last_admin();
	cr_assert_str_eq(sent, "leave|n2|");
	free(sent);
	/* the connection goes on */
	cr_assert_eq(dynkv_ping(c, 0), 0);
	cr_assert_str_empty(dynkv_errmsg(c));
	dynkv_close(c);
}

Test(client, admin_error_is_the_nodes_error)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;

	F.h = h_error;
	F.err_code = PROTO_ERR_INVALID;
	F.err_msg = "unknown admin command \"frob\"";
	cr_assert_eq(dynkv_admin(c, "frob", NULL, 0, &info, &len), DYNKV_EINVALID);
	cr_assert_null(info);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(dynkv_errmsg(c), "unknown admin command \"frob\"");
	cr_assert(!dynkv_is_broken(c));
	F.err_code = PROTO_ERR_TYPE;
	F.err_msg = "unknown message type 5";
	cr_assert_eq(dynkv_admin(c, "ring", NULL, 0, &info, &len), DYNKV_ETYPE);
	cr_assert_null(info);
	dynkv_close(c);
}

Test(client, admin_node_dies_mid_reply)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;

	F.h = h_info_half;
	F.info = members_map;
	F.info_len = sizeof(members_map);
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EIO);
	cr_assert_null(info);
	cr_assert_eq(len, 0);
	assert_broken(c, "closed by the node");
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EBROKEN);
	dynkv_close(c);
}

Test(client, admin_bad_replies_are_protocol_errors)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;

	F.h = h_info_deep;
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EPROTO);
	cr_assert_null(info);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "nested more than 16 deep"), "%s",
			   dynkv_errmsg(c));
	assert_broken(c, "nested");
	dynkv_close(c);

	c = conn();
	F.h = h_pong;
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EPROTO);
	cr_assert_str_eq(dynkv_errmsg(c), "reply PONG to a request that expects INFO");
	dynkv_close(c);
}

Test(client, admin_bad_arguments_are_refused_before_sending)
{
	static const char *const nine[9] = { "1", "2", "3", "4", "5", "6", "7", "8", "9" };
	dynkv *c = conn();
	char c33[DYNKV_ADMIN_MAX_COMMAND + 2], a1025[DYNKV_ADMIN_MAX_ARG + 2];
	void *info = (void *)1;
	size_t len = 1;

	memset(c33, 'c', sizeof(c33));
	c33[sizeof(c33) - 1] = '\0';
	memset(a1025, 'a', sizeof(a1025));
	a1025[sizeof(a1025) - 1] = '\0';
	F.h = h_info;
	F.info = ok_map;
	F.info_len = sizeof(ok_map);
	cr_assert_eq(dynkv_admin(c, NULL, NULL, 0, &info, &len), DYNKV_EARG);
	cr_assert_null(info);
	cr_assert_eq(dynkv_admin(c, "", NULL, 0, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, c33, NULL, 0, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", nine, 9, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", NULL, 1, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", (const char *const[]){ "a", NULL }, 2, &info, &len),
		     DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", (const char *const[]){ a1025 }, 1, &info, &len),
		     DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "admin argument 1 longer than 1024 bytes");
	cr_assert_eq(nreq(), 0);
	cr_assert(!dynkv_is_broken(c));
	/* the limits themselves are fine */
	c33[DYNKV_ADMIN_MAX_COMMAND] = '\0';
	a1025[DYNKV_ADMIN_MAX_ARG] = '\0';
	cr_assert_eq(dynkv_admin(c, c33, (const char *const[]){ a1025, a1025, a1025, a1025,
		     a1025, a1025, a1025, a1025 }, 8, &info, &len), 0);
	free(info);
	cr_assert_eq(nreq(), 1);
	dynkv_close(c);
}
