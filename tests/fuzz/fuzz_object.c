#include "config.h"
/*
 * fuzz_object.c -- libFuzzer harness for the stored-object and context
 * decoders (object_decode, object_context_decode in src/object.c).
 *
 * The input is tried as an encoded object under small limits (so the
 * fuzzer meets them) and under the defaults, and as a context.  Besides "no
 * crash, no sanitizer report, only the documented codes", every accepted
 * object must obey:
 *   - object_check() passes (sorted, covered dots, no value on tombstones);
 *   - encode, decode again: the same canonical encoding (the round trip);
 *   - merging it with a copy of itself changes nothing (idempotence);
 *   - a put with its own context leaves exactly one sibling, the new one,
 *     and a delete then leaves one tombstone (the context covers everything
 *     the object holds);
 *   - pruning to one entry keeps every sibling (expiries included);
 *   - its context round-trips to its vector;
 *   - object_has_value() says yes only if some value never expires
 *     (object_deleted_time() is 0).
 * A broken property abort()s, which libFuzzer reports as a crash.
 *
 * Build (the lead wires it into tests/fuzz/Makefile.inc):
 *   clang -fsanitize=fuzzer,address,undefined -g -O1 -std=c11 -I. -Isrc \
 *     tests/fuzz/fuzz_object.c src/object.c src/error.c -lmsgpackc
 * Seeds: tests/fuzz/corpus/object/.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

/* True iff x and y have the same canonical encoding. */
static bool same_enc(const object *x, const object *y)
{
	msgpack_sbuffer a, b;
	bool eq;

	msgpack_sbuffer_init(&a);
	msgpack_sbuffer_init(&b);
	CHECK(object_encode(x, &a) == 0);
	CHECK(object_encode(y, &b) == 0);
	eq = a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
	msgpack_sbuffer_destroy(&a);
	msgpack_sbuffer_destroy(&b);
	return eq;
}

static void check_object(const object *o)
{
	char err[160];
	msgpack_sbuffer sb;
	object *d = NULL, *c = NULL, *w = NULL;
	object_vv ctx = { 0 };
	size_t n;

	if (object_check(o, err, sizeof err) != 0) {
		fprintf(stderr, "object_check: %s\n", err);
		abort();
	}

	/* round trip */
	msgpack_sbuffer_init(&sb);
	CHECK(object_encode(o, &sb) == 0);
	CHECK(object_decode(sb.data, sb.size, NULL, &d) == 0);
	CHECK(same_enc(o, d));
	msgpack_sbuffer_destroy(&sb);

	/* idempotence, on a separate copy (not the dst == src shortcut) */
	CHECK(object_clone(o, &c) == 0);
	CHECK(object_merge(c, o) == 0);
	CHECK(same_enc(c, o));
	CHECK(object_merge(d, c) == 0);
	CHECK(same_enc(d, o));

	/* context round trip */
	msgpack_sbuffer_init(&sb);
	CHECK(object_context_encode(o, &sb) == 0);
	CHECK(object_context_decode(sb.data, sb.size, NULL, &ctx) == 0);
	CHECK(ctx.n == o->vv.n);
	CHECK(ctx.n == 0 || memcmp(ctx.entries, o->vv.entries, ctx.n * sizeof(ctx.entries[0])) == 0);
	msgpack_sbuffer_destroy(&sb);

	/* a write with the object's own context supersedes everything */
	CHECK(object_clone(o, &w) == 0);
	if (object_put(w, 42, &ctx, "v", 1, 7) == 0) {
		CHECK(object_check(w, err, sizeof err) == 0);
		CHECK(object_sibling_count(w) == 1);
		CHECK(!object_is_deleted(w));
		object_vv_release(&ctx);
		ctx.n = 0;
		CHECK(object_vv_copy(&ctx, &w->vv) == 0);
		CHECK(object_delete(w, 42, &ctx, 8) == 0);
		CHECK(object_sibling_count(w) == 1);
		CHECK(object_is_deleted(w));
	}

	/* pruning keeps every sibling */
	n = object_sibling_count(c);
	(void)object_prune(c, 1, 0);
	CHECK(object_check(c, err, sizeof err) == 0);
	CHECK(object_sibling_count(c) == n);
	for (size_t i = 0; i < n; i++) {
		const object_sibling *x = object_sibling_at(c, i), *y = object_sibling_at(o, i);

		CHECK(x->actor == y->actor && x->counter == y->counter &&
		      x->timestamp == y->timestamp && x->expires == y->expires &&
		      x->tombstone == y->tombstone &&
		      x->value_len == y->value_len &&
		      (x->value_len == 0 || memcmp(x->value, y->value, x->value_len) == 0));
	}

	object_vv_release(&ctx);
	object_free(w);
	object_free(c);
	object_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	object_limits small = { .max_entries = 4, .max_siblings = 4, .max_value = 16 };
	object_vv vv = { 0 };
	object *o = NULL, *o2 = NULL;
	int rc, rc2;

	rc = object_decode(data, size, &small, &o);
	CHECK(rc == 0 || rc == DKV_ECORRUPT || rc == DKV_ETOOBIG || rc == DKV_EVERSION);
	CHECK((rc == 0) == (o != NULL));
	rc2 = object_decode(data, size, NULL, &o2);
	CHECK(rc2 == 0 || rc2 == DKV_ECORRUPT || rc2 == DKV_ETOOBIG || rc2 == DKV_EVERSION);
	/* Smaller limits can only refuse more, and only with DKV_ETOOBIG. */
	if (rc == 0)
		CHECK(rc2 == 0 && same_enc(o, o2));
	if (rc2 == 0 && rc != 0)
		CHECK(rc == DKV_ETOOBIG);
	if (rc2 == 0)
		check_object(o2);
	if (rc2 == 0 && object_has_value(data, size))
		CHECK(!object_is_deleted(o2) && object_deleted_time(o2) == 0);

	rc = object_context_decode(data, size, NULL, &vv);
	CHECK(rc == 0 || rc == DKV_EPROTO || rc == DKV_ETOOBIG || rc == DKV_EVERSION);
	CHECK(rc == 0 || vv.n == 0);
	for (size_t i = 1; i < vv.n; i++)
		CHECK(vv.entries[i - 1].actor < vv.entries[i].actor && vv.entries[i].counter > 0);
	object_vv_release(&vv);

	object_free(o);
	object_free(o2);
	return 0;
}
