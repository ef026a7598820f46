#include "config.h"
/*
 * test_object.c -- src/object.c: the DVVS semantics case by case; seeded
 * random histories of several replicas (puts and deletes with fresh, stale,
 * merged or empty contexts, random pairwise merges, optional pruning)
 * checked against a record of every write kept outside the objects; the
 * merge laws on canonical encodings; golden bytes pinning the version-1
 * format and the version-2 one (objects with expiring siblings); the time
 * to live queries; and the decoder on truncations, corruptions, garbage
 * and container bombs.
 *
 * Inputs to the decoder are copied into buffers of exactly their length so
 * that an overread is caught when built with -fsanitize=address.
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

#include "error.h"
#include "object.h"
#include "testutil.h"

/* --- helpers ----------------------------------------------------------- */

/* splitmix64: a seeded PRNG, so every run sees the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

/* An encoding, owned by the caller (free with free()). */
typedef struct bytes {
	uint8_t *p;
	size_t n;
} bytes;

static bytes enc(const object *o)
{
	msgpack_sbuffer sb;
	bytes b;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_encode(o, &sb), 0);
	b.n = sb.size;
	b.p = malloc(sb.size ? sb.size : 1);
	cr_assert_not_null(b.p);
	memcpy(b.p, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

static bool same_enc(const object *x, const object *y)
{
	bytes a = enc(x), b = enc(y);
	bool eq = a.n == b.n && memcmp(a.p, b.p, a.n) == 0;

	free(a.p);
	free(b.p);
	return eq;
}

/* Decode from an exact-size heap copy. */
static int decode_exact(const uint8_t *buf, size_t len, const object_limits *lim, object **out)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(copy);
	if (len)
		memcpy(copy, buf, len);
	rc = object_decode(copy, len, lim, out);
	free(copy);
	return rc;
}

static int ctx_decode_exact(const uint8_t *buf, size_t len, object_vv *vv)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(copy);
	if (len)
		memcpy(copy, buf, len);
	rc = object_context_decode(copy, len, NULL, vv);
	free(copy);
	return rc;
}

static void check(const object *o)
{
	char err[160];

	cr_assert_eq(object_check(o, err, sizeof err), 0, "object_check: %s", err);
}

/* o through its encoding: the decoded object, which must pass the checks
 * and encode as o does; caller frees with object_free(). */
static object *round_trip(const object *o)
{
	bytes b = enc(o);
	object *d = NULL;

	cr_assert_eq(decode_exact(b.p, b.n, NULL, &d), 0);
	check(d);
	cr_assert(same_enc(d, o));
	free(b.p);
	return d;
}

/* A new object, merge(a, b); caller frees with object_free(). */
static object *merge_of(const object *a, const object *b)
{
	object *m;

	cr_assert_eq(object_clone(a, &m), 0);
	cr_assert_eq(object_merge(m, b), 0);
	check(m);
	return m;
}

/* merge(a, b), checked equal to merge(b, a) (`seed` names the case in a
 * failure); caller frees with object_free(). */
static object *merged(const object *a, const object *b, uint64_t seed)
{
	object *ab = merge_of(a, b), *ba = merge_of(b, a);

	cr_assert(same_enc(ab, ba), "seed %llu: merge not commutative", (unsigned long long)seed);
	object_free(ba);
	return ab;
}

/* The context a get would return, through its encoding, as a client would
 * hand it back. */
static void read_ctx(const object *o, object_vv *vv)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_context_encode(o, &sb), 0);
	cr_assert_eq(ctx_decode_exact((const uint8_t *)sb.data, sb.size, vv), 0);
	msgpack_sbuffer_destroy(&sb);
}

static void put_s(object *o, uint64_t actor, const object_vv *ctx, const char *v, uint64_t ts)
{
	cr_assert_eq(object_put(o, actor, ctx, v, strlen(v), ts), 0);
	check(o);
}

/* A blind or context put of v by actor that expires at `expires`. */
static void put_exp(object *o, uint64_t actor, const object_vv *ctx, const char *v, uint64_t ts,
		    uint64_t expires)
{
	cr_assert_eq(object_write_expiring(o, actor, 0, ctx, false, v, strlen(v), ts, expires,
					   NULL), 0);
	check(o);
}

/* True iff o has a live sibling with value v. */
static bool has_value(const object *o, const char *v)
{
	for (size_t i = 0; i < object_sibling_count(o); i++) {
		const object_sibling *s = object_sibling_at(o, i);

		if (!s->tombstone && s->value_len == strlen(v) &&
		    memcmp(s->value, v, s->value_len) == 0)
			return true;
	}
	return false;
}

static size_t count_tombstones(const object *o)
{
	size_t n = 0;

	for (size_t i = 0; i < object_sibling_count(o); i++)
		n += object_sibling_at(o, i)->tombstone;
	return n;
}

TestSuite(object, .description = "dotted version vector sets and their encoding");

/* --- semantics, case by case ------------------------------------------- */

Test(object, empty_object_is_no_value)
{
	object zero = { 0 };
	object *o = object_new();
	static const uint8_t empty_enc[] = { 0x93, 0x01, 0x90, 0x90 };
	bytes b;

	cr_assert_not_null(o);
	cr_assert(object_is_empty(&zero));
	cr_assert(object_is_deleted(&zero));
	cr_assert_eq(object_sibling_count(&zero), 0);
	cr_assert(object_is_empty(o));
	cr_assert_null(object_sibling_at(o, 0));
	check(&zero);
	b = enc(o);
	cr_assert_eq(b.n, sizeof empty_enc);
	cr_assert_arr_eq(b.p, empty_enc, sizeof empty_enc);
	free(b.p);
	object_release(&zero);
	object_free(o);
	object_free(NULL);
}

Test(object, first_put_takes_counter_one)
{
	object o = { 0 };
	const object_sibling *s;

	put_s(&o, 7, NULL, "v", 100);
	cr_assert_eq(object_sibling_count(&o), 1);
	s = object_sibling_at(&o, 0);
	cr_assert_eq(s->actor, 7);
	cr_assert_eq(s->counter, 1);
	cr_assert_eq(s->timestamp, 100);
	cr_assert_not(s->tombstone);
	cr_assert_eq(s->value_len, 1);
	cr_assert_eq(s->value[0], 'v');
	cr_assert_eq(object_vv_get(&o.vv, 7), 1);
	cr_assert_eq(o.vv.entries[0].timestamp, 100);
	cr_assert_not(object_is_deleted(&o));
	cr_assert_not(object_is_empty(&o));
	object_release(&o);
}

Test(object, blind_writes_create_siblings)
{
	object o = { 0 };

	put_s(&o, 1, NULL, "x", 1);
	put_s(&o, 2, NULL, "y", 2);
	put_s(&o, 1, NULL, "z", 3);
	cr_assert_eq(object_sibling_count(&o), 3);
	cr_assert(has_value(&o, "x") && has_value(&o, "y") && has_value(&o, "z"));
	/* Siblings sorted by dot: (1,1) x, (1,2) z, (2,1) y. */
	cr_assert_eq(object_sibling_at(&o, 0)->counter, 1);
	cr_assert_eq(object_sibling_at(&o, 1)->counter, 2);
	cr_assert_eq(object_sibling_at(&o, 1)->value[0], 'z');
	cr_assert_eq(object_sibling_at(&o, 2)->actor, 2);
	cr_assert_eq(object_vv_get(&o.vv, 1), 2);
	cr_assert_eq(object_vv_get(&o.vv, 2), 1);
	object_release(&o);
}

Test(object, write_with_context_replaces_exactly_what_the_read_saw)
{
	object o = { 0 };
	object_vv ctx = { 0 };

	put_s(&o, 1, NULL, "x", 1);
	put_s(&o, 2, NULL, "y", 2);
	read_ctx(&o, &ctx);               /* the read sees x and y */
	put_s(&o, 3, NULL, "z", 3);       /* a write the read did not see */
	put_s(&o, 1, &ctx, "w", 4);
	cr_assert_eq(object_sibling_count(&o), 2);
	cr_assert(has_value(&o, "z"));
	cr_assert(has_value(&o, "w"));
	cr_assert_not(has_value(&o, "x"));
	cr_assert_not(has_value(&o, "y"));
	/* w's dot: actor 1's next counter. */
	cr_assert_eq(object_vv_get(&o.vv, 1), 2);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, stale_context_keeps_newer_siblings)
{
	object o = { 0 };
	object_vv old = { 0 }, cur = { 0 };

	put_s(&o, 1, NULL, "a", 1);
	read_ctx(&o, &old);
	read_ctx(&o, &cur);
	put_s(&o, 1, &cur, "b", 2);       /* b supersedes a */
	put_s(&o, 2, &old, "c", 3);       /* c only saw a */
	cr_assert_eq(object_sibling_count(&o), 2);
	cr_assert(has_value(&o, "b") && has_value(&o, "c"));
	object_vv_release(&old);
	object_vv_release(&cur);
	object_release(&o);
}

Test(object, counter_is_max_of_object_and_context_plus_one)
{
	object o = { 0 };
	object_vv ctx = { 0 };

	cr_assert_eq(object_vv_set(&ctx, 5, 9, 50), 0);
	put_s(&o, 5, NULL, "a", 1);       /* (5,1) */
	put_s(&o, 5, &ctx, "b", 2);       /* ctx has 5 at 9: (5,10) */
	cr_assert_eq(object_vv_get(&o.vv, 5), 10);
	cr_assert_eq(object_sibling_count(&o), 1);
	cr_assert_eq(object_sibling_at(&o, 0)->counter, 10);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, delete_is_a_tombstone_sibling)
{
	object o = { 0 };
	object_vv ctx = { 0 };
	const object_sibling *s;

	put_s(&o, 1, NULL, "x", 1);
	read_ctx(&o, &ctx);
	cr_assert_eq(object_delete(&o, 2, &ctx, 5), 0);
	check(&o);
	cr_assert_eq(object_sibling_count(&o), 1);
	s = object_sibling_at(&o, 0);
	cr_assert(s->tombstone);
	cr_assert_null(s->value);
	cr_assert_eq(s->value_len, 0);
	cr_assert_eq(s->actor, 2);
	cr_assert_eq(s->timestamp, 5);
	cr_assert(object_is_deleted(&o));
	cr_assert_not(object_is_empty(&o));
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, only_tombstones_is_not_found_but_has_a_context)
{
	object o = { 0 };
	object_vv ctx = { 0 };

	cr_assert_eq(object_delete(&o, 1, NULL, 1), 0);
	cr_assert_eq(object_delete(&o, 2, NULL, 2), 0);
	check(&o);
	cr_assert_eq(object_sibling_count(&o), 2);
	cr_assert(object_is_deleted(&o));
	read_ctx(&o, &ctx);
	cr_assert_eq(ctx.n, 2);
	cr_assert(object_vv_covers(&ctx, 1, 1));
	cr_assert(object_vv_covers(&ctx, 2, 1));
	/* A put with that context supersedes both tombstones. */
	put_s(&o, 3, &ctx, "back", 3);
	cr_assert_eq(object_sibling_count(&o), 1);
	cr_assert(has_value(&o, "back"));
	cr_assert_not(object_is_deleted(&o));
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, empty_value_is_not_a_tombstone)
{
	object o = { 0 };

	cr_assert_eq(object_put(&o, 1, NULL, NULL, 0, 1), 0);
	cr_assert_eq(object_sibling_count(&o), 1);
	cr_assert_not(object_sibling_at(&o, 0)->tombstone);
	cr_assert_not(object_is_deleted(&o));
	object_release(&o);
}

Test(object, concurrent_delete_and_put_keep_the_put)
{
	object r1 = { 0 }, *r2, *m1;
	object_vv ctx = { 0 };

	put_s(&r1, 1, NULL, "x", 1);
	cr_assert_eq(object_clone(&r1, &r2), 0);
	read_ctx(&r1, &ctx);
	cr_assert_eq(object_delete(&r1, 1, &ctx, 2), 0);   /* delete x on r1 */
	put_s(r2, 2, &ctx, "y", 3);                         /* replace x on r2 */
	m1 = merged(&r1, r2, 0);
	cr_assert_eq(object_sibling_count(m1), 2);
	cr_assert(has_value(m1, "y"));
	cr_assert_not(has_value(m1, "x"));
	cr_assert_eq(count_tombstones(m1), 1);
	cr_assert_not(object_is_deleted(m1));
	object_vv_release(&ctx);
	object_release(&r1);
	object_free(r2);
	object_free(m1);
}

Test(object, merge_drops_what_the_other_side_superseded)
{
	object r1 = { 0 }, *r2;
	object_vv ctx = { 0 };

	put_s(&r1, 1, NULL, "x", 1);
	cr_assert_eq(object_clone(&r1, &r2), 0);
	read_ctx(r2, &ctx);
	put_s(r2, 2, &ctx, "y", 2);
	cr_assert_eq(object_merge(&r1, r2), 0);
	check(&r1);
	cr_assert_eq(object_sibling_count(&r1), 1);
	cr_assert(has_value(&r1, "y"));
	cr_assert(same_enc(&r1, r2));
	/* Merging again, or the other way, changes nothing. */
	cr_assert_eq(object_merge(r2, &r1), 0);
	cr_assert(same_enc(&r1, r2));
	cr_assert_eq(object_merge(&r1, &r1), 0);
	cr_assert(same_enc(&r1, r2));
	object_vv_release(&ctx);
	object_release(&r1);
	object_free(r2);
}

Test(object, merge_keeps_concurrent_writes_of_both_sides)
{
	object a = { 0 }, b = { 0 };

	put_s(&a, 1, NULL, "x", 1);
	put_s(&b, 2, NULL, "y", 2);
	cr_assert_eq(object_merge(&a, &b), 0);
	check(&a);
	cr_assert_eq(object_sibling_count(&a), 2);
	cr_assert(has_value(&a, "x") && has_value(&a, "y"));
	cr_assert_eq(object_vv_get(&a.vv, 1), 1);
	cr_assert_eq(object_vv_get(&a.vv, 2), 1);
	object_release(&a);
	object_release(&b);
}

Test(object, merge_of_one_dot_with_two_contents_is_symmetric)
{
	/* Only forged input has this; the greater content must win on both
	 * orders, so the laws hold even then. */
	object a = { 0 }, b = { 0 }, *x;

	put_s(&a, 1, NULL, "aaa", 1);
	put_s(&b, 1, NULL, "bbb", 1);
	x = merged(&a, &b, 0);
	cr_assert_eq(object_sibling_count(x), 1);
	cr_assert(has_value(x, "bbb"));
	object_release(&a);
	object_release(&b);
	object_free(x);
}

/* Merge is commutative, associative and idempotent on a, b and c (checked
 * on canonical encodings), and the merge of all three round-trips through
 * its encoding.  `seed` names the case in a failure. */
static void check_merge_laws(const object *a, const object *b, const object *c, uint64_t seed)
{
	object *ab = merged(a, b, seed), *bc = merged(b, c, seed);
	object *ab_c = merged(ab, c, seed), *a_bc = merged(a, bc, seed), *aa = merge_of(a, a);

	cr_assert(same_enc(ab_c, a_bc), "seed %llu: merge not associative",
		  (unsigned long long)seed);
	cr_assert(same_enc(aa, a), "seed %llu: merge not idempotent", (unsigned long long)seed);
	object_free(round_trip(ab_c));
	object_free(ab);
	object_free(ab_c);
	object_free(bc);
	object_free(a_bc);
	object_free(aa);
}

/* A small object of independent history: its dots collide with those of
 * another such object with other contents (tombstone or not, timestamp,
 * expiry, bytes), which only forged input gives. */
static void make_forged(object *o, uint64_t *rs)
{
	static const char *vals[] = { "", "a", "b", "ab" };
	int writes = 1 + (int)rng_below(rs, 4);

	for (int i = 0; i < writes; i++) {
		uint64_t actor = 1 + rng_below(rs, 2), ts = rng_below(rs, 3);
		uint64_t expires = rng_below(rs, 2) ? 0 : 1 + rng_below(rs, 3);
		const char *v = vals[rng_below(rs, 4)];
		bool tomb = rng_below(rs, 4) == 0;
		object_vv ctx = { 0 };

		if (rng_below(rs, 2))
			read_ctx(o, &ctx);
		cr_assert_eq(object_write_expiring(o, actor, 0, &ctx, tomb, v, strlen(v), ts,
						   tomb ? 0 : expires, NULL), 0);
		object_vv_release(&ctx);
	}
	check(o);
}

Test(object, merge_laws_hold_for_forged_dot_collisions)
{
	uint64_t rs = 0xf0263d;
	unsigned reps = test_reps(20000, 2000);

	for (unsigned i = 0; i < reps; i++) {
		object a = { 0 }, b = { 0 }, c = { 0 };

		make_forged(&a, &rs);
		make_forged(&b, &rs);
		make_forged(&c, &rs);
		check_merge_laws(&a, &b, &c, i);
		object_release(&a);
		object_release(&b);
		object_release(&c);
	}
}

Test(object, vv_set_get_covers_merge)
{
	object_vv a = { 0 }, b = { 0 };

	cr_assert_eq(object_vv_set(&a, 30, 3, 300), 0);
	cr_assert_eq(object_vv_set(&a, 10, 1, 100), 0);
	cr_assert_eq(object_vv_set(&a, 20, 2, 200), 0);
	cr_assert_eq(a.n, 3);
	cr_assert_eq(a.entries[0].actor, 10);
	cr_assert_eq(a.entries[2].actor, 30);
	cr_assert(object_vv_covers(&a, 20, 2));
	cr_assert_not(object_vv_covers(&a, 20, 3));
	cr_assert_not(object_vv_covers(&a, 99, 1));
	cr_assert(object_vv_covers(NULL, 99, 0));
	cr_assert_eq(object_vv_set(&b, 20, 5, 1), 0);
	cr_assert_eq(object_vv_set(&b, 30, 3, 900), 0);
	cr_assert_eq(object_vv_set(&b, 40, 1, 1), 0);
	cr_assert_eq(object_vv_merge(&a, &b), 0);
	cr_assert_eq(a.n, 4);
	cr_assert_eq(object_vv_get(&a, 20), 5);
	cr_assert_eq(a.entries[1].timestamp, 1);     /* the greater counter's */
	cr_assert_eq(a.entries[2].timestamp, 900);   /* equal counters: max ts */
	cr_assert_eq(object_vv_set(&a, 20, 0, 0), 0);
	cr_assert_eq(a.n, 3);
	cr_assert_eq(object_vv_get(&a, 20), 0);
	cr_assert_eq(object_vv_copy(&b, &a), 0);
	cr_assert_eq(b.n, 3);
	cr_assert_arr_eq(b.entries, a.entries, 3 * sizeof(a.entries[0]));
	object_vv_release(&a);
	object_vv_release(&b);
}

Test(object, clone_is_deep_and_equal)
{
	object o = { 0 }, *c;

	put_s(&o, 1, NULL, "hello", 1);
	cr_assert_eq(object_delete(&o, 2, NULL, 2), 0);
	put_exp(&o, 3, NULL, "brief", 3, 4);
	cr_assert_eq(object_clone(&o, &c), 0);
	cr_assert(same_enc(&o, c));
	cr_assert_neq(object_sibling_at(c, 0)->value, object_sibling_at(&o, 0)->value);
	object_release(&o);
	check(c);
	cr_assert(has_value(c, "hello"));
	cr_assert_eq(object_sibling_at(c, 0)->expires, 0);
	cr_assert_eq(object_sibling_at(c, 2)->expires, 4);
	object_free(c);
}

/* --- pruning ------------------------------------------------------------- */

Test(object, prune_drops_oldest_entries_and_keeps_every_sibling)
{
	object o = { 0 };
	object_vv ctx = { 0 };
	bytes before, after;
	size_t n;

	/* Actors 1..6 write in turn, each with the context of a read, so one
	 * sibling (actor 6's) remains and the vector has six entries with
	 * timestamps 10..60.  Then two blind writes by 7 and 8 at older
	 * timestamps add siblings. */
	for (uint64_t a = 1; a <= 6; a++) {
		char v[8];

		snprintf(v, sizeof v, "v%u", (unsigned)a);
		read_ctx(&o, &ctx);
		put_s(&o, a, &ctx, v, a * 10);
	}
	put_s(&o, 7, NULL, "v7", 1);
	put_s(&o, 8, NULL, "v8", 2);
	cr_assert_eq(o.vv.n, 8);
	cr_assert_eq(object_sibling_count(&o), 3);
	before = enc(&o);

	n = object_prune(&o, 4, 2);
	check(&o);
	/* Spared: 2 (self), 6, 7, 8 (siblings).  Dropped oldest first: 1 (10),
	 * 3 (30), 4 (40), 5 (50). */
	cr_assert_eq(n, 4);
	cr_assert_eq(o.vv.n, 4);
	cr_assert_eq(o.vv.entries[0].actor, 2);
	cr_assert_eq(o.vv.entries[1].actor, 6);
	cr_assert_eq(o.vv.entries[2].actor, 7);
	cr_assert_eq(o.vv.entries[3].actor, 8);
	cr_assert_eq(object_sibling_count(&o), 3);
	cr_assert(has_value(&o, "v6") && has_value(&o, "v7") && has_value(&o, "v8"));

	/* Only the vector part of the encoding changed: the sibling array, the
	 * last 25 bytes (0x93 and three siblings of 8 bytes: 94 a 01 ts c4 02
	 * 'v' digit), is byte for byte the same. */
	after = enc(&o);
	cr_assert_lt(after.n, before.n);
	cr_assert_eq(after.p[after.n - 25], 0x93);
	cr_assert_arr_eq(after.p + after.n - 25, before.p + before.n - 25, 25);
	/* Never below the spared entries. */
	cr_assert_eq(object_prune(&o, 0, 2), 0);
	cr_assert_eq(object_prune(&o, 0, 99), 1);   /* now 2 may go */
	cr_assert_eq(o.vv.n, 3);
	cr_assert_eq(object_vv_get(&o.vv, 2), 0);
	cr_assert_eq(object_sibling_count(&o), 3);
	check(&o);
	free(before.p);
	free(after.p);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, prune_makes_a_false_sibling_never_loses_one)
{
	object r1 = { 0 }, *r2;
	object_vv ctx = { 0 };

	put_s(&r1, 1, NULL, "x", 1);
	cr_assert_eq(object_clone(&r1, &r2), 0);
	read_ctx(r2, &ctx);
	put_s(r2, 2, &ctx, "y", 2);               /* y supersedes x */
	cr_assert_eq(object_prune(r2, 1, 2), 1);  /* forget actor 1 */
	cr_assert_eq(object_vv_get(&r2->vv, 1), 0);
	cr_assert_eq(object_merge(r2, &r1), 0);
	check(r2);
	/* x is back next to y: a false sibling; y is kept. */
	cr_assert_eq(object_sibling_count(r2), 2);
	cr_assert(has_value(r2, "x") && has_value(r2, "y"));
	object_vv_release(&ctx);
	object_release(&r1);
	object_free(r2);
}

/* --- random histories -------------------------------------------------- */

#define MAXREP   6
#define MAXW     64
#define MAXCTX   24
#define MAXSNAP  16

/* One write as the test saw it, outside every object. */
typedef struct wrec {
	uint64_t actor, counter;   /* the dot it got */
	bool tomb;                 /* a delete */
	uint64_t expires;          /* its expiry (0: none; always for a delete) */
	char val[32];              /* its unique value */
	object_vv ctx;             /* the context it was given */
} wrec;

typedef struct hist {
	uint64_t seed;
	int nrep;
	uint64_t actor[MAXREP];
	object rep[MAXREP];
	wrec w[MAXW];
	int nw;
	object_vv ctxs[MAXCTX];    /* contexts of past reads */
	int nctx;
	object *snap[MAXSNAP];     /* past replica states */
	int nsnap;
	size_t pruned;             /* entries dropped by pruning */
} hist;

/* True iff a later write's context covered dot (a, c). */
static bool killed(const hist *h, uint64_t a, uint64_t c)
{
	for (int i = 0; i < h->nw; i++)
		if (object_vv_covers(&h->w[i].ctx, a, c))
			return true;
	return false;
}

static const wrec *find_write(const hist *h, uint64_t a, uint64_t c)
{
	for (int i = 0; i < h->nw; i++)
		if (h->w[i].actor == a && h->w[i].counter == c)
			return &h->w[i];
	return NULL;
}

/* Every sibling is a real write with its own content; every write the
 * replica has seen (its vector covers the dot) is a sibling unless a
 * write's context covered it.  `exact`: also no superseded sibling. */
static void check_replica(const hist *h, const object *o, bool exact)
{
	char err[160];

	cr_assert_eq(object_check(o, err, sizeof err), 0, "seed %llu: %s",
		     (unsigned long long)h->seed, err);
	for (size_t i = 0; i < o->nsibs; i++) {
		const object_sibling *s = &o->sibs[i];
		const wrec *w = find_write(h, s->actor, s->counter);

		cr_assert_not_null(w, "seed %llu: sibling of no write", (unsigned long long)h->seed);
		cr_assert_eq(s->tombstone, w->tomb, "seed %llu", (unsigned long long)h->seed);
		cr_assert_eq(s->expires, w->expires, "seed %llu", (unsigned long long)h->seed);
		if (!w->tomb)
			cr_assert(s->value_len == strlen(w->val) &&
				  memcmp(s->value, w->val, s->value_len) == 0,
				  "seed %llu: wrong content", (unsigned long long)h->seed);
		if (exact)
			cr_assert_not(killed(h, s->actor, s->counter),
				      "seed %llu: superseded write (%llu,%llu) kept",
				      (unsigned long long)h->seed,
				      (unsigned long long)s->actor,
				      (unsigned long long)s->counter);
	}
	for (int i = 0; i < h->nw; i++) {
		const wrec *w = &h->w[i];
		bool present = false;

		if (!object_vv_covers(&o->vv, w->actor, w->counter))
			continue;
		for (size_t j = 0; j < o->nsibs; j++)
			present |= o->sibs[j].actor == w->actor && o->sibs[j].counter == w->counter;
		cr_assert(present || killed(h, w->actor, w->counter),
			  "seed %llu: write %d (%llu,%llu) lost", (unsigned long long)h->seed, i,
			  (unsigned long long)w->actor, (unsigned long long)w->counter);
	}
}

static void snapshot(hist *h, const object *o, uint64_t *rs)
{
	object *c;

	cr_assert_eq(object_clone(o, &c), 0);
	if (h->nsnap < MAXSNAP) {
		h->snap[h->nsnap++] = c;
	} else {
		int i = (int)rng_below(rs, MAXSNAP);

		object_free(h->snap[i]);
		h->snap[i] = c;
	}
}

/* Pick a context: empty, a replica's now, a past read's, or the merge of
 * two replicas' (a get with R=2). */
static void pick_ctx(hist *h, uint64_t *rs, object_vv *ctx)
{
	switch (rng_below(rs, 5)) {
	case 0:
		break;
	case 1:
	case 2:
		read_ctx(&h->rep[rng_below(rs, (uint32_t)h->nrep)], ctx);
		break;
	case 3:
		if (h->nctx > 0) {
			cr_assert_eq(object_vv_copy(ctx, &h->ctxs[rng_below(rs, (uint32_t)h->nctx)]), 0);
			break;
		}
		/* fall through */
	default: {
		object_vv other = { 0 };

		read_ctx(&h->rep[rng_below(rs, (uint32_t)h->nrep)], ctx);
		read_ctx(&h->rep[rng_below(rs, (uint32_t)h->nrep)], &other);
		cr_assert_eq(object_vv_merge(ctx, &other), 0);
		object_vv_release(&other);
	}
	}
}

/* Run one history; vclock_max 0 means no pruning.  Returns how many vector
 * entries pruning dropped. */
static size_t run_history(uint64_t seed, size_t vclock_max, bool laws)
{
	hist *h = calloc(1, sizeof(*h));
	uint64_t rs = seed;
	object *all;
	size_t pruned;
	int steps;

	cr_assert_not_null(h);
	h->seed = seed;
	h->nrep = 2 + (int)rng_below(&rs, MAXREP - 1);
	for (int r = 0; r < h->nrep; r++) {
		bool dup;

		/* Distinct ids spread over 64 bits, so every integer width is
		 * encoded. */
		h->actor[r] = (r % 3 == 0) ? (uint64_t)r + 1 : rng_next(&rs) >> rng_below(&rs, 64);
		for (;;) {
			dup = false;
			for (int q = 0; q < r; q++)
				dup |= h->actor[q] == h->actor[r];
			if (!dup)
				break;
			h->actor[r] = rng_next(&rs) >> rng_below(&rs, 64);
		}
	}
	steps = 10 + (int)rng_below(&rs, 60);
	for (int st = 0; st < steps; st++) {
		uint32_t op = rng_below(&rs, 10);
		int r = (int)rng_below(&rs, (uint32_t)h->nrep);
		object *o = &h->rep[r];

		if (op < 5 && h->nw < MAXW) {
			/* A put or delete coordinated by replica r as its actor. */
			wrec *w = &h->w[h->nw];
			uint64_t before, expect;
			uint64_t ts = 1000 + (uint64_t)st;

			pick_ctx(h, &rs, &w->ctx);
			w->actor = h->actor[r];
			w->tomb = op == 4;
			/* A third of the puts expire, so the laws meet version 2
			 * objects and same-dot content that differs in expires
			 * would show. */
			w->expires = !w->tomb && rng_below(&rs, 3) == 0 ? ts + 1 + rng_below(&rs, 50) : 0;
			expect = object_vv_get(&o->vv, w->actor);
			before = object_vv_get(&w->ctx, w->actor);
			if (before > expect)
				expect = before;
			expect++;
			snprintf(w->val, sizeof w->val, "w%d.%llu", h->nw,
				 (unsigned long long)(seed & 0xffff));
			if (w->tomb)
				cr_assert_eq(object_delete(o, w->actor, &w->ctx, ts), 0);
			else if (w->expires != 0)
				cr_assert_eq(object_write_expiring(o, w->actor, 0, &w->ctx, false,
								   w->val, strlen(w->val), ts,
								   w->expires, NULL), 0);
			else
				cr_assert_eq(object_put(o, w->actor, &w->ctx, w->val,
							strlen(w->val), ts), 0);
			w->counter = object_vv_get(&o->vv, w->actor);
			cr_assert_eq(w->counter, expect, "seed %llu", (unsigned long long)seed);
			cr_assert_null(find_write(h, w->actor, w->counter),
				       "seed %llu: dot reused", (unsigned long long)seed);
			h->nw++;
		} else if (op < 8) {
			/* Replica r takes in replica q's state. */
			int q = (int)rng_below(&rs, (uint32_t)h->nrep);

			cr_assert_eq(object_merge(o, &h->rep[q]), 0);
		} else if (op == 8) {
			/* A read: remember its context for a stale write later. */
			if (h->nctx < MAXCTX)
				read_ctx(o, &h->ctxs[h->nctx++]);
		} else {
			snapshot(h, o, &rs);
		}
		if (vclock_max > 0)
			h->pruned += object_prune(o, vclock_max, h->actor[r]);
		for (int i = 0; i < h->nrep; i++)
			check_replica(h, &h->rep[i], false);
	}

	if (laws) {
		for (int r = 0; r < h->nrep; r++)
			snapshot(h, &h->rep[r], &rs);
		for (int k = 0; k < 8 && h->nsnap > 0; k++) {
			const object *a = h->snap[rng_below(&rs, (uint32_t)h->nsnap)];
			const object *b = h->snap[rng_below(&rs, (uint32_t)h->nsnap)];
			const object *c = h->snap[rng_below(&rs, (uint32_t)h->nsnap)];

			check_merge_laws(a, b, c, seed);
		}
	}

	/* Full sync: every replica takes in every other.  Then exactly the
	 * writes no context covered remain (with pruning, superseded ones may
	 * come back as false siblings, but none is lost). */
	all = object_new();
	cr_assert_not_null(all);
	for (int r = 0; r < h->nrep; r++)
		cr_assert_eq(object_merge(all, &h->rep[r]), 0);
	check_replica(h, all, vclock_max == 0);
	for (int i = 0; i < h->nw; i++) {
		bool present = false;

		cr_assert(object_vv_covers(&all->vv, h->w[i].actor, h->w[i].counter) ||
			  vclock_max > 0);
		for (size_t j = 0; j < all->nsibs; j++)
			present |= all->sibs[j].actor == h->w[i].actor &&
				   all->sibs[j].counter == h->w[i].counter;
		cr_assert(present || killed(h, h->w[i].actor, h->w[i].counter),
			  "seed %llu: write %d lost after sync", (unsigned long long)seed, i);
	}
	for (int r = 0; r < h->nrep; r++) {
		object *x;

		cr_assert_eq(object_clone(&h->rep[r], &x), 0);
		cr_assert_eq(object_merge(x, all), 0);
		if (vclock_max == 0)
			cr_assert(same_enc(x, all), "seed %llu: replicas differ after sync",
				  (unsigned long long)seed);
		object_free(x);
	}
	object_free(all);
	for (int r = 0; r < h->nrep; r++)
		object_release(&h->rep[r]);
	for (int i = 0; i < h->nw; i++)
		object_vv_release(&h->w[i].ctx);
	for (int i = 0; i < h->nctx; i++)
		object_vv_release(&h->ctxs[i]);
	for (int i = 0; i < h->nsnap; i++)
		object_free(h->snap[i]);
	pruned = h->pruned;
	free(h);
	return pruned;
}

Test(object, random_histories_lose_no_write_and_merge_obeys_the_laws)
{
	unsigned n = test_reps(3000, 300);

	for (uint64_t i = 0; i < n; i++)
		run_history(UINT64_C(0x0b7ec7) * 1000003 + i, 0, true);
}

Test(object, random_histories_with_pruning_lose_no_write)
{
	unsigned n = test_reps(2000, 200);
	size_t pruned = 0;

	for (uint64_t i = 0; i < n; i++)
		pruned += run_history(UINT64_C(0x9a11e) * 7919 + i, 1 + (size_t)(i % 3), false);
	/* The histories did prune, often. */
	cr_assert_gt(pruned, n / 2, "only %zu entries pruned", pruned);
}

/* --- encoding: golden bytes and round trips ------------------------------ */

/* Actor 1 at counter 2 (ts 100) with live sibling (1,2) "hi"; actor 2 at 1
 * (ts 200) with the tombstone (2,1): the example in object.h. */
static const uint8_t golden_obj[] = {
	0x93, 0x01,
	0x92, 0x93, 0x01, 0x02, 0x64, 0x93, 0x02, 0x01, 0xcc, 0xc8,
	0x92, 0x94, 0x01, 0x02, 0x64, 0xc4, 0x02, 0x68, 0x69,
	      0x94, 0x02, 0x01, 0xcc, 0xc8, 0xc0,
};
static const uint8_t golden_ctx[] = {
	0x92, 0x01,
	0x92, 0x93, 0x01, 0x02, 0x64, 0x93, 0x02, 0x01, 0xcc, 0xc8,
};

/* The same with "hi" expiring at 1000: the version-2 example in object.h. */
static const uint8_t golden_obj_v2[] = {
	0x93, 0x02,
	0x92, 0x93, 0x01, 0x02, 0x64, 0x93, 0x02, 0x01, 0xcc, 0xc8,
	0x92, 0x95, 0x01, 0x02, 0x64, 0xc4, 0x02, 0x68, 0x69, 0xcd, 0x03, 0xe8,
	      0x95, 0x02, 0x01, 0xcc, 0xc8, 0xc0, 0x00,
};

/* The golden object, its "hi" expiring at hi_expires (0: never). */
static void make_golden_expiring(object *o, uint64_t hi_expires)
{
	object_vv ctx = { 0 };

	put_s(o, 1, NULL, "x", 50);
	read_ctx(o, &ctx);
	put_exp(o, 1, &ctx, "hi", 100, hi_expires);
	cr_assert_eq(object_delete(o, 2, NULL, 200), 0);
	object_vv_release(&ctx);
}

static void make_golden(object *o)
{
	make_golden_expiring(o, 0);
}

/* Build the golden object with "hi" expiring at hi_expires; check that
 * it encodes to want (n bytes) and its context to golden_ctx (expiries do
 * not change contexts), and that want decodes to an equal object, which
 * is returned (caller frees with object_free()). */
static object *check_golden(uint64_t hi_expires, const uint8_t *want, size_t n)
{
	object o = { 0 }, *d;
	msgpack_sbuffer sb;
	bytes b;

	make_golden_expiring(&o, hi_expires);
	b = enc(&o);
	cr_assert_eq(b.n, n);
	cr_assert_arr_eq(b.p, want, n);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_context_encode(&o, &sb), 0);
	cr_assert_eq(sb.size, sizeof golden_ctx);
	cr_assert_arr_eq(sb.data, golden_ctx, sizeof golden_ctx);
	msgpack_sbuffer_destroy(&sb);

	cr_assert_eq(decode_exact(want, n, NULL, &d), 0);
	check(d);
	cr_assert(same_enc(d, &o));
	cr_assert_eq(object_sibling_count(d), 2);
	cr_assert(has_value(d, "hi"));
	cr_assert(object_sibling_at(d, 1)->tombstone);
	cr_assert_eq(object_sibling_at(d, 1)->timestamp, 200);
	free(b.p);
	object_release(&o);
	return d;
}

Test(object, golden_bytes)
{
	object *d = check_golden(0, golden_obj, sizeof golden_obj);

	cr_assert_eq(object_sibling_at(d, 0)->expires, 0);
	cr_assert_eq(object_deleted_time(d), 0);
	object_free(d);
}

Test(object, golden_bytes_of_an_expiring_object)
{
	object *d = check_golden(1000, golden_obj_v2, sizeof golden_obj_v2);

	cr_assert_eq(object_sibling_at(d, 0)->expires, 1000);
	cr_assert_eq(object_sibling_at(d, 1)->expires, 0);
	cr_assert_eq(object_deleted_time(d), 1000);
	object_free(d);
}

Test(object, round_trip_of_large_integers_and_values)
{
	object o = { 0 }, *d;
	object_vv ctx = { 0 };
	uint8_t *big = malloc(70000);

	cr_assert_not_null(big);
	for (size_t i = 0; i < 70000; i++)
		big[i] = (uint8_t)(i * 31);
	cr_assert_eq(object_vv_set(&ctx, UINT64_MAX - 1, UINT64_MAX - 1, UINT64_MAX), 0);
	cr_assert_eq(object_vv_set(&ctx, 0, 300, 70000), 0);
	cr_assert_eq(object_put(&o, UINT64_MAX, &ctx, big, 70000, UINT64_MAX), 0);
	cr_assert_eq(object_put(&o, 0, NULL, big, 200, 0), 0);
	cr_assert_eq(object_put(&o, 1u << 20, NULL, big, 65535, 1u << 31), 0);
	check(&o);
	d = round_trip(&o);
	cr_assert_eq(object_sibling_at(d, 0)->counter, 301);
	cr_assert_eq(object_sibling_at(d, 2)->value_len, 70000);
	cr_assert_arr_eq(object_sibling_at(d, 2)->value, big, 70000);
	/* A counter at the top cannot advance. */
	cr_assert_eq(object_vv_set(&ctx, 5, UINT64_MAX, 1), 0);
	cr_assert_eq(object_put(d, 5, &ctx, "x", 1, 1), DKV_EINVAL);
	cr_assert(same_enc(d, &o));
	free(big);
	object_free(d);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, context_round_trip_and_empty_context)
{
	object o = { 0 };
	object_vv vv = { 0 };

	cr_assert_eq(ctx_decode_exact(NULL, 0, &vv), 0);
	cr_assert_eq(vv.n, 0);
	make_golden(&o);
	read_ctx(&o, &vv);
	cr_assert_eq(vv.n, o.vv.n);
	cr_assert_arr_eq(vv.entries, o.vv.entries, vv.n * sizeof(vv.entries[0]));
	object_vv_release(&vv);
	object_release(&o);
}

/* --- time to live ------------------------------------------------------- */

Test(object, write_expiring_keeps_the_expiry_on_its_sibling_only)
{
	object o = { 0 }, *before;
	object_vv ctx = { 0 };
	uint64_t dot = 0;

	cr_assert_eq(object_write_expiring(&o, 1, 0, NULL, false, "x", 1, 10, 1000, &dot), 0);
	check(&o);
	cr_assert_eq(dot, 1);
	cr_assert_eq(object_sibling_at(&o, 0)->expires, 1000);
	cr_assert_eq(object_sibling_at(&o, 0)->timestamp, 10);
	put_s(&o, 2, NULL, "y", 11);               /* a blind write: a sibling */
	cr_assert_eq(object_sibling_count(&o), 2);
	cr_assert_eq(object_sibling_at(&o, 0)->expires, 1000);
	cr_assert_eq(object_sibling_at(&o, 1)->expires, 0);
	/* With a read's context it drops both, expiring or not; floor holds. */
	read_ctx(&o, &ctx);
	cr_assert_eq(object_write_expiring(&o, 1, 40, &ctx, false, "z", 1, 12, 2000, &dot), 0);
	check(&o);
	cr_assert_eq(dot, 40);
	cr_assert_eq(object_sibling_count(&o), 1);
	cr_assert(has_value(&o, "z"));
	cr_assert_eq(object_sibling_at(&o, 0)->expires, 2000);
	cr_assert_eq(object_sibling_at(&o, 0)->counter, 40);
	/* A tombstone never expires: refused, object and *dot unchanged. */
	cr_assert_eq(object_clone(&o, &before), 0);
	dot = 7;
	cr_assert_eq(object_write_expiring(&o, 1, 0, NULL, true, NULL, 0, 13, 5, &dot), DKV_EINVAL);
	cr_assert_eq(dot, 7);
	cr_assert(same_enc(&o, before));
	/* A delete with the context supersedes the expiring value. */
	object_vv_release(&ctx);
	read_ctx(&o, &ctx);
	cr_assert_eq(object_write_expiring(&o, 3, 0, &ctx, true, NULL, 0, 14, 0, NULL), 0);
	check(&o);
	cr_assert_eq(object_sibling_count(&o), 1);
	cr_assert(object_sibling_at(&o, 0)->tombstone);
	cr_assert_eq(object_sibling_at(&o, 0)->expires, 0);
	object_free(before);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, expiring_objects_round_trip_and_go_back_to_version_1)
{
	object o = { 0 }, *d;
	object_vv ctx = { 0 };
	bytes b;

	put_s(&o, 5, NULL, "forever", 10);
	put_exp(&o, UINT64_MAX, NULL, "soon", 11, 12);
	put_exp(&o, 1u << 20, NULL, "", 13, UINT64_MAX);
	cr_assert_eq(object_delete(&o, 300, NULL, 14), 0);
	b = enc(&o);
	cr_assert_eq(b.p[1], OBJECT_FORMAT_VERSION_EXPIRY);
	free(b.p);
	d = round_trip(&o);
	for (size_t i = 0; i < object_sibling_count(&o); i++) {
		const object_sibling *x = object_sibling_at(&o, i), *y = object_sibling_at(d, i);

		cr_assert_eq(x->expires, y->expires, "sibling %zu", i);
		cr_assert_eq(x->tombstone, y->tombstone, "sibling %zu", i);
	}
	object_free(d);
	/* A write that supersedes every expiring sibling makes the object
	 * version 1 again: the same bytes as if no expiry had ever been. */
	read_ctx(&o, &ctx);
	put_s(&o, 5, &ctx, "after", 20);
	b = enc(&o);
	cr_assert_eq(b.p[1], OBJECT_FORMAT_VERSION);
	cr_assert_eq(b.p[b.n - 11], 0x94, "a sibling of four elements");
	free(b.p);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, check_refuses_a_tombstone_with_an_expiry)
{
	object o = { 0 };
	char err[160];

	cr_assert_eq(object_delete(&o, 1, NULL, 1), 0);
	o.sibs[0].expires = 2;   /* what no function makes */
	cr_assert_eq(object_check(&o, err, sizeof err), -1);
	cr_assert(strstr(err, "expiry") != NULL, "%s", err);
	o.sibs[0].expires = 0;
	check(&o);
	object_release(&o);
}

Test(object, deleted_time_is_when_every_sibling_is_gone)
{
	object o = { 0 };
	object_vv ctx = { 0 };

	cr_assert_eq(object_deleted_time(&o), 0, "no sibling");
	/* Tombstones only: the newest, as object_newest. */
	cr_assert_eq(object_delete(&o, 1, NULL, 9), 0);
	cr_assert_eq(object_delete(&o, 2, NULL, 5), 0);
	cr_assert_eq(object_deleted_time(&o), 9);
	cr_assert_eq(object_deleted_time(&o), object_newest(&o));
	object_release(&o);
	/* Values that all expire: the last expiry, though not deleted yet. */
	put_exp(&o, 1, NULL, "a", 10, 100);
	put_exp(&o, 2, NULL, "b", 20, 300);
	cr_assert_eq(object_deleted_time(&o), 300);
	cr_assert_not(object_is_deleted(&o));
	/* A tombstone later than every expiry; then one earlier. */
	cr_assert_eq(object_delete(&o, 3, NULL, 500), 0);
	cr_assert_eq(object_deleted_time(&o), 500);
	cr_assert_eq(object_newest(&o), 500);
	object_release(&o);
	put_exp(&o, 1, NULL, "a", 10, 300);
	cr_assert_eq(object_delete(&o, 3, NULL, 200), 0);
	cr_assert_eq(object_deleted_time(&o), 300);
	cr_assert_eq(object_newest(&o), 200);
	/* One value that never expires: never deleted by time. */
	put_s(&o, 4, NULL, "c", 30);
	cr_assert_eq(object_deleted_time(&o), 0);
	/* ... until a write with a read's context supersedes it. */
	read_ctx(&o, &ctx);
	put_exp(&o, 4, &ctx, "d", 40, 50);
	cr_assert_eq(object_deleted_time(&o), 50);
	object_vv_release(&ctx);
	object_release(&o);
}

Test(object, sibling_expired_at_and_after_its_expiry)
{
	object_sibling s = { .actor = 1, .counter = 1, .timestamp = 10 };

	cr_assert_not(object_sibling_expired(&s, 0), "expires 0: never");
	cr_assert_not(object_sibling_expired(&s, UINT64_MAX));
	s.expires = 100;
	cr_assert_not(object_sibling_expired(&s, 0));
	cr_assert_not(object_sibling_expired(&s, 99));
	cr_assert(object_sibling_expired(&s, 100));
	cr_assert(object_sibling_expired(&s, 101));
	s.expires = 1;
	cr_assert_not(object_sibling_expired(&s, 0));
	cr_assert(object_sibling_expired(&s, 1));
	s.expires = UINT64_MAX;
	cr_assert_not(object_sibling_expired(&s, UINT64_MAX - 1));
	cr_assert(object_sibling_expired(&s, UINT64_MAX));
	s.expires = 0;
	s.tombstone = true;
	cr_assert_not(object_sibling_expired(&s, UINT64_MAX), "a tombstone");
}

Test(object, merge_of_one_dot_differing_in_expiry_is_symmetric)
{
	object a = { 0 }, b = { 0 }, *x;

	put_exp(&a, 1, NULL, "v", 1, 5);
	put_exp(&b, 1, NULL, "v", 1, 7);
	x = merged(&a, &b, 0);
	cr_assert_eq(object_sibling_count(x), 1);
	cr_assert_eq(object_sibling_at(x, 0)->expires, 7);
	object_free(x);
	/* An expiry against none: the expiry is the greater content. */
	object_release(&b);
	put_s(&b, 1, NULL, "v", 1);
	x = merged(&a, &b, 0);
	cr_assert_eq(object_sibling_at(x, 0)->expires, 5);
	object_release(&a);
	object_release(&b);
	object_free(x);
}

/* --- decoder: malformed input -------------------------------------------- */

static int dec_rc(const uint8_t *p, size_t n, const object_limits *lim)
{
	object *o = NULL;
	int rc = decode_exact(p, n, lim, &o);

	if (rc == 0) {
		check(o);
		object_free(o);
	} else {
		cr_assert_null(o);
	}
	return rc;
}

#define DEC(lim, ...) ({ static const uint8_t in_[] = { __VA_ARGS__ }; dec_rc(in_, sizeof in_, lim); })

Test(object, decoder_refuses_wrong_shapes)
{
	object_limits lim;

	object_limits_init(&lim);
	cr_assert_eq(dec_rc(NULL, 0, NULL), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x90, 0x90), 0);
	cr_assert_eq(DEC(NULL, 0x93, 0x03, 0x90, 0x90), DKV_EVERSION);
	cr_assert_eq(DEC(NULL, 0x93, 0x00, 0x90, 0x90), DKV_EVERSION);
	cr_assert_eq(DEC(NULL, 0x91, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0), DKV_EVERSION);
	cr_assert_eq(DEC(NULL, 0x94, 0x01, 0x90, 0x90, 0x90), DKV_ECORRUPT);   /* 4 elements */
	cr_assert_eq(DEC(NULL, 0x92, 0x01, 0x90), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x90), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x83, 0x01, 0x90, 0x90), DKV_ECORRUPT);         /* a map */
	cr_assert_eq(DEC(NULL, 0x93, 0xff, 0x90, 0x90), DKV_ECORRUPT);         /* -1 */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x90, 0x90, 0x00), DKV_ECORRUPT);   /* trailing */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x80, 0x90), DKV_ECORRUPT);
	/* vector entry of 2 elements */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x92, 0x01, 0x01, 0x90), DKV_ECORRUPT);
	/* counter 0 */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x00, 0x00, 0x90), DKV_ECORRUPT);
	/* duplicate actor, unsorted actors */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x92, 0x93, 0x01, 0x01, 0x00, 0x93, 0x01, 0x02, 0x00,
			 0x90), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x92, 0x93, 0x02, 0x01, 0x00, 0x93, 0x01, 0x02, 0x00,
			 0x90), DKV_ECORRUPT);
	/* a good one-sibling object, then variations of its sibling */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x01, 0x02, 0x00, 0xc4, 0x00), 0);
	/* dot beyond the vector */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x01, 0x03, 0x00, 0xc0), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x02, 0x01, 0x00, 0xc0), DKV_ECORRUPT);
	/* sibling counter 0 */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x01, 0x00, 0x00, 0xc0), DKV_ECORRUPT);
	/* duplicate dot; unsorted dots */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x92, 0x94, 0x01, 0x01, 0x00, 0xc0, 0x94, 0x01, 0x01, 0x00, 0xc0),
		     DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x92, 0x94, 0x01, 0x02, 0x00, 0xc0, 0x94, 0x01, 0x01, 0x00, 0xc0),
		     DKV_ECORRUPT);
	/* value as a str, as an int; sibling of 3 elements */
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x01, 0x02, 0x00, 0xa1, 0x61), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x01, 0x02, 0x00, 0x01), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x93, 0x01, 0x02, 0x00), DKV_ECORRUPT);
	/* wide integer forms are accepted */
	cr_assert_eq(DEC(NULL, 0x93, 0xcc, 0x01, 0xdc, 0x00, 0x01,
			 0x93, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xcd, 0x00, 0x02, 0xce, 0, 0, 0, 0,
			 0xdd, 0, 0, 0, 1, 0x94, 0x01, 0x02, 0x00, 0xc6, 0, 0, 0, 1, 0x7a), 0);
}

Test(object, decoder_reads_version_2_only_in_its_canonical_shape)
{
	/* a good version-2 one-sibling object: value "" expiring at 5 */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x05), 0);
	/* ... and with a tombstone of expires 0 next to it */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x92, 0x93, 0x01, 0x02, 0x00, 0x93, 0x02, 0x01, 0x00,
			 0x92, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x05,
			 0x95, 0x02, 0x01, 0x00, 0xc0, 0x00), 0);
	/* wide forms of expires are accepted */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0xcf, 0, 0, 0, 0, 0, 0, 0, 5), 0);
	/* version 2 with no expiry at all: not canonical */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x90, 0x90), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x00), DKV_ECORRUPT);
	/* a tombstone with an expiry, alone and next to an expiring value */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc0, 0x05), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x92, 0x93, 0x01, 0x02, 0x00, 0x93, 0x02, 0x01, 0x00,
			 0x92, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x05,
			 0x95, 0x02, 0x01, 0x00, 0xc0, 0x05), DKV_ECORRUPT);
	/* a version-2 sibling of 4 elements, a version-1 sibling of 5 */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x94, 0x01, 0x02, 0x00, 0xc4, 0x00), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x05), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x00), DKV_ECORRUPT);
	/* version 2 mixing both shapes */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x92, 0x93, 0x01, 0x02, 0x00, 0x93, 0x02, 0x01, 0x00,
			 0x92, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0x05,
			 0x94, 0x02, 0x01, 0x00, 0xc0), DKV_ECORRUPT);
	/* expires as nil, as a str, as a negative number */
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0xc0), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0xa1, 0x35), DKV_ECORRUPT);
	cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x91, 0x93, 0x01, 0x02, 0x00,
			 0x91, 0x95, 0x01, 0x02, 0x00, 0xc4, 0x00, 0xff), DKV_ECORRUPT);
	/* every truncation of the golden version-2 object */
	for (size_t len = 0; len < sizeof golden_obj_v2; len++)
		cr_assert_eq(dec_rc(golden_obj_v2, len, NULL), DKV_ECORRUPT, "cut at %zu", len);
}

Test(object, decoder_enforces_limits)
{
	object_limits lim;
	object o = { 0 };
	bytes b;

	object_limits_init(&lim);
	cr_assert_eq(lim.max_entries, OBJECT_DEFAULT_MAX_ENTRIES);
	put_s(&o, 1, NULL, "abcd", 1);
	put_s(&o, 2, NULL, "ab", 1);
	put_s(&o, 3, NULL, "a", 1);
	b = enc(&o);
	cr_assert_eq(dec_rc(b.p, b.n, &lim), 0);
	lim.max_entries = 2;
	cr_assert_eq(dec_rc(b.p, b.n, &lim), DKV_ETOOBIG);
	object_limits_init(&lim);
	lim.max_siblings = 2;
	cr_assert_eq(dec_rc(b.p, b.n, &lim), DKV_ETOOBIG);
	object_limits_init(&lim);
	lim.max_value = 3;
	cr_assert_eq(dec_rc(b.p, b.n, &lim), DKV_ETOOBIG);
	lim.max_value = 4;
	cr_assert_eq(dec_rc(b.p, b.n, &lim), 0);
	free(b.p);
	object_release(&o);
}

/* A handful of valid encodings to damage. */
static int sample_objects(bytes *out, int max)
{
	object o = { 0 };
	int n = 0;

	make_golden(&o);
	out[n++] = enc(&o);
	object_release(&o);
	put_s(&o, 300, NULL, "some value", 70000);
	out[n++] = enc(&o);
	cr_assert_eq(object_delete(&o, UINT64_C(1) << 40, NULL, UINT64_C(1) << 35), 0);
	put_s(&o, 2, NULL, "", 3);
	out[n++] = enc(&o);
	object_release(&o);
	out[n++] = enc(&o);
	/* version 2: an expiring value, one that never expires, a tombstone */
	put_exp(&o, 1, NULL, "ttl", 10, 70000);
	put_s(&o, 2, NULL, "kept", 11);
	cr_assert_eq(object_delete(&o, 3, NULL, 12), 0);
	out[n++] = enc(&o);
	object_release(&o);
	make_golden_expiring(&o, 1000);
	out[n++] = enc(&o);
	object_release(&o);
	cr_assert(n <= max);
	return n;
}

Test(object, decoder_refuses_every_truncation)
{
	bytes s[8];
	int n = sample_objects(s, 8);

	for (int k = 0; k < n; k++) {
		for (size_t len = 0; len < s[k].n; len++)
			cr_assert_eq(dec_rc(s[k].p, len, NULL), DKV_ECORRUPT,
				     "sample %d cut at %zu", k, len);
		cr_assert_eq(dec_rc(s[k].p, s[k].n, NULL), 0);
		free(s[k].p);
	}
}

Test(object, decoder_survives_every_single_byte_corruption)
{
	bytes s[8];
	int n = sample_objects(s, 8);
	size_t accepted = 0, refused = 0;

	for (int k = 0; k < n; k++) {
		uint8_t *buf = malloc(s[k].n);

		cr_assert_not_null(buf);
		for (size_t pos = 0; pos < s[k].n; pos++) {
			for (int v = 0; v < 256; v++) {
				object *o = NULL;
				int rc;

				memcpy(buf, s[k].p, s[k].n);
				buf[pos] = (uint8_t)v;
				rc = decode_exact(buf, s[k].n, NULL, &o);
				cr_assert(rc == 0 || rc == DKV_ECORRUPT || rc == DKV_EVERSION ||
					  rc == DKV_ETOOBIG, "rc %d", rc);
				if (rc != 0) {
					refused++;
					continue;
				}
				/* Whatever is accepted is a sound object that
				 * round-trips. */
				accepted++;
				check(o);
				object_free(round_trip(o));
				object_free(o);
			}
		}
		free(buf);
		free(s[k].p);
	}
	cr_assert_gt(accepted, 0);
	cr_assert_gt(refused, 0);
}

Test(object, decoder_survives_random_garbage)
{
	uint64_t rs = 0x6a5ba9e;
	static const uint8_t likely[] = { 0x90, 0x91, 0x93, 0x94, 0x95, 0x01, 0x02, 0xc0, 0xc4,
					  0xcc, 0xcf, 0xdc, 0xdd, 0xc6, 0x00, 0x7f, 0xff };
	uint8_t buf[64];

	unsigned reps = test_reps(200000, 20000);

	for (unsigned i = 0; i < reps; i++) {
		size_t len = rng_below(&rs, sizeof buf + 1);
		object *o = NULL;
		object_vv vv = { 0 };
		int rc;

		for (size_t j = 0; j < len; j++)
			buf[j] = rng_below(&rs, 2) ? likely[rng_below(&rs, sizeof likely)]
						   : (uint8_t)rng_next(&rs);
		if (len > 0 && rng_below(&rs, 2))
			buf[0] = 0x93;
		if (len > 1 && rng_below(&rs, 2))
			buf[1] = 0x01 + (i & 1);   /* version 1 or 2 */
		rc = decode_exact(buf, len, NULL, &o);
		cr_assert(rc == 0 || rc == DKV_ECORRUPT || rc == DKV_EVERSION ||
			  rc == DKV_ETOOBIG, "rc %d", rc);
		if (rc == 0)
			check(o);
		object_free(o);
		rc = ctx_decode_exact(buf, len, &vv);
		cr_assert(rc == 0 || rc == DKV_EPROTO || rc == DKV_EVERSION ||
			  rc == DKV_ETOOBIG, "rc %d", rc);
		object_vv_release(&vv);
	}
}

Test(object, decoder_refuses_container_bombs_quickly)
{
	struct timespec t0, t1;
	object_vv vv = { 0 };
	double secs;

	cap_address_space();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int rep = 0; rep < 1000; rep++) {
		cr_assert_eq(DEC(NULL, 0xdd, 0xff, 0xff, 0xff, 0xff), DKV_ECORRUPT);
		cr_assert_eq(DEC(NULL, 0xdc, 0xff, 0xff, 0x01, 0x90, 0x90), DKV_ECORRUPT);
		cr_assert_eq(DEC(NULL, 0x93, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff), DKV_ECORRUPT);
		cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x90, 0xdd, 0xff, 0xff, 0xff, 0xff),
			     DKV_ECORRUPT);
		cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x90, 0xdc, 0xff, 0xff), DKV_ECORRUPT);
		cr_assert_eq(DEC(NULL, 0x93, 0x02, 0x90, 0xdd, 0xff, 0xff, 0xff, 0xff),
			     DKV_ECORRUPT);
		cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0xdd, 0xff, 0xff, 0xff, 0xff), DKV_ECORRUPT);
		/* a bin 32 declaring 4 GiB */
		cr_assert_eq(DEC(NULL, 0x93, 0x01, 0x91, 0x93, 0x01, 0x01, 0x01,
				 0x91, 0x94, 0x01, 0x01, 0x01, 0xc6, 0xff, 0xff, 0xff, 0xff),
			     DKV_ECORRUPT);
		/* ... and one within the bytes but past max_value */
		{
			object_limits lim;
			static const uint8_t in[] = { 0x93, 0x01, 0x91, 0x93, 0x01, 0x01, 0x01,
						      0x91, 0x94, 0x01, 0x01, 0x01, 0xc4, 0x02,
						      0x61, 0x62 };

			object_limits_init(&lim);
			lim.max_value = 1;
			cr_assert_eq(dec_rc(in, sizeof in, &lim), DKV_ETOOBIG);
		}
		{
			static const uint8_t cb[] = { 0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff };

			cr_assert_eq(ctx_decode_exact(cb, sizeof cb, &vv), DKV_EPROTO);
			cr_assert_eq(vv.n, 0);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(secs, 2.0, "bombs took %.3f s", secs);
}

Test(object, context_decoder_refuses_malformed_contexts)
{
	object_vv vv = { 0 };
	size_t n = sizeof golden_ctx;

	for (size_t len = 1; len < n; len++)
		cr_assert_eq(ctx_decode_exact(golden_ctx, len, &vv), DKV_EPROTO, "cut at %zu", len);
	cr_assert_eq(ctx_decode_exact(golden_ctx, n, &vv), 0);
	cr_assert_eq(vv.n, 2);
	{
		static const uint8_t v2[] = { 0x92, 0x02, 0x90 };
		static const uint8_t obj[] = { 0x93, 0x01, 0x90, 0x90 };
		static const uint8_t dup[] = { 0x92, 0x01, 0x92, 0x93, 0x01, 0x01, 0x00,
					       0x93, 0x01, 0x01, 0x00 };

		cr_assert_eq(ctx_decode_exact(v2, sizeof v2, &vv), DKV_EVERSION);
		cr_assert_eq(vv.n, 0);
		cr_assert_eq(ctx_decode_exact(obj, sizeof obj, &vv), DKV_EPROTO);
		cr_assert_eq(ctx_decode_exact(dup, sizeof dup, &vv), DKV_EPROTO);
	}
	object_vv_release(&vv);
}

/* object_has_value may say "maybe" for a live object, never "yes" for a
 * deleted one, one that time will delete, or bytes that do not decode to a
 * live one: checked for sample objects, each of their truncations, every
 * single-byte change, and random garbage. */
static void has_value_is_sound(const uint8_t *p, size_t n)
{
	object *o = NULL;

	if (!object_has_value(p, n))
		return;
	if (object_decode(p, n, NULL, &o) == 0) {
		cr_assert_not(object_is_deleted(o), "a deleted object said to have a value");
		cr_assert_eq(object_deleted_time(o), 0, "an expiring object said to have a value");
	}
	object_free(o);
}

/* object_has_value of o's encoding. */
static bool enc_has_value(const object *o)
{
	bytes b = enc(o);
	bool v = object_has_value(b.p, b.n);

	free(b.p);
	return v;
}

Test(object, has_value_says_yes_only_for_a_live_object)
{
	object o = { 0 };
	bytes s[8], live, dead, none;
	int n = sample_objects(s, 8);
	uint64_t rs = 0x5eed;
	uint8_t buf[64];

	put_s(&o, 1, NULL, "v", 10);
	live = enc(&o);
	cr_assert(object_has_value(live.p, live.n));
	cr_assert_eq(object_delete(&o, 1, object_vector(&o), 11), 0);
	dead = enc(&o);
	cr_assert_not(object_has_value(dead.p, dead.n), "a tombstone");
	object_release(&o);
	none = enc(&o);
	cr_assert_not(object_has_value(none.p, none.n), "no sibling");
	cr_assert_not(object_has_value(NULL, 0));
	/* Version 2: a value with an expiry is "maybe", so is one with a
	 * tombstone; a value without one among expiring ones is "yes". */
	put_exp(&o, 1, NULL, "a", 10, 100);
	cr_assert_not(enc_has_value(&o), "an expiring value");
	cr_assert_eq(object_delete(&o, 2, NULL, 11), 0);
	cr_assert_not(enc_has_value(&o), "an expiring value and a tombstone");
	put_s(&o, 3, NULL, "b", 12);
	put_exp(&o, 4, NULL, "c", 13, 200);
	cr_assert(enc_has_value(&o), "a value without expiry among expiring ones");
	object_release(&o);
	cr_assert(object_has_value(golden_obj, sizeof golden_obj));
	cr_assert_not(object_has_value(golden_obj_v2, sizeof golden_obj_v2));
	for (int k = 0; k < n; k++) {
		uint8_t *b = malloc(s[k].n);

		cr_assert_not_null(b);
		for (size_t len = 0; len <= s[k].n; len++)
			has_value_is_sound(s[k].p, len);
		for (size_t pos = 0; pos < s[k].n; pos++)
			for (int v = 0; v < 256; v++) {
				memcpy(b, s[k].p, s[k].n);
				b[pos] = (uint8_t)v;
				has_value_is_sound(b, s[k].n);
			}
		free(b);
		free(s[k].p);
	}
	for (unsigned i = 0, reps = test_reps(100000, 10000); i < reps; i++) {
		size_t len = rng_below(&rs, sizeof buf + 1);

		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rng_next(&rs);
		if (len > 1)
			buf[0] = 0x93, buf[1] = 0x01 + (i & 1);
		has_value_is_sound(buf, len);
	}
	free(live.p);
	free(dead.p);
	free(none.p);
}
