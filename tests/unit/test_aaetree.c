#include "config.h"
/*
 * test_aaetree.c -- src/aaetree.c: the key and object hashes against
 * golden values from a separate SipHash-2-4 written in Python; insert,
 * replace, remove and lookup against a reference model, with the table's
 * invariants checked after every change; the root equal iff the sets are
 * equal (updates permuted, removed and added again, a replaced objhash put
 * back) and equal to the (count, check) of RIBLT symbol 0; the iterator;
 * two trees' differences recovered through riblt; and the figures of
 * aaetree.h: memory per key and the time of 1M updates.
 *
 * Every random input comes from a splitmix64 PRNG whose seed is printed.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "aaetree.h"
#include "error.h"
#include "riblt.h"
#include "ring.h"
#include "testutil.h"
#include "itemtest.h"

/* --- helpers ----------------------------------------------------------- */

/* A fixed placement key: the tests want the same tables on every run. */
static const siphash_key test_hkey = { UINT64_C(0x0706050403020100), UINT64_C(0x0f0e0d0c0b0a0908) };

static aaetree *tree_new(void)
{
	aaetree *t = NULL;

	cr_assert_eq(aaetree_new(&t, &test_hkey), 0);
	cr_assert_not_null(t);
	return t;
}

static void check(const aaetree *t)
{
	char err[128];

	cr_assert_eq(aaetree_check(t, err, sizeof(err)), 0, "aaetree_check: %s", err);
}

static void update(aaetree *t, uint64_t k, uint64_t o)
{
	cr_assert_eq(aaetree_update(t, k, o), 0);
}

/* Every item of t, sorted by keyhash; *n gets their number.  Caller frees. */
static riblt_item *items_of(const aaetree *t, size_t *n)
{
	aaetree_iter it = AAETREE_ITER_INIT;
	riblt_item *v = malloc((aaetree_count(t) + 1) * sizeof(*v)), item;

	cr_assert_not_null(v);
	*n = 0;
	while (aaetree_next(t, &it, &item)) {
		cr_assert_lt(*n, aaetree_count(t), "the iterator gives more than count items");
		v[(*n)++] = item;
	}
	cr_assert_eq(*n, aaetree_count(t));
	qsort(v, *n, sizeof(*v), cmp_item);
	return v;
}

/* The root computed from scratch, as aaetree.h defines it. */
static aaetree_digest digest_of(const riblt_item *v, size_t n)
{
	aaetree_digest d = { .count = n, .hash = 0 };

	for (size_t i = 0; i < n; i++)
		d.hash ^= riblt_item_checksum(&v[i]);
	return d;
}

/* --- hashes ------------------------------------------------------------ */

TestSuite(aaetree, .description = "per-partition anti-entropy summary");

/* Golden values: the hashes are part of the protocol (replicas compare
 * them), so a change here is a decision, not a fix.  Computed by a
 * separate SipHash-2-4 in Python, checked against the paper's vector. */
Test(aaetree, key_and_object_hashes_are_the_documented_ones)
{
	cr_assert_eq(aaetree_keyhash("greeting", 8), UINT64_C(0x24cedb431640d0a7));
	cr_assert_eq(aaetree_keyhash("", 0), UINT64_C(0x257a13c217bc2863));
	cr_assert_eq(aaetree_keyhash(NULL, 0), UINT64_C(0x257a13c217bc2863));
	cr_assert_eq(aaetree_objhash("greeting", 8), UINT64_C(0x877e832de3e2e64e));
	/* Three different keys for three purposes. */
	cr_assert_neq(aaetree_keyhash("greeting", 8), ring_key_hash("greeting", 8));
	cr_assert_neq(aaetree_keyhash("greeting", 8), aaetree_objhash("greeting", 8));
}

/* --- the table ---------------------------------------------------------- */

Test(aaetree, update_replace_remove_and_lookup)
{
	aaetree *t = tree_new();
	aaetree_digest empty = aaetree_root(t);
	uint64_t o = 0;

	cr_assert_eq(empty.count, 0);
	cr_assert_eq(empty.hash, 0);
	cr_assert_eq(aaetree_count(t), 0);
	cr_assert_not(aaetree_contains(t, 5, &o));
	cr_assert_not(aaetree_remove(t, 5));
	check(t);

	update(t, 5, 50);
	update(t, 6, 60);
	update(t, 0, 7);        /* keyhash 0, kept beside the table */
	check(t);
	cr_assert_eq(aaetree_count(t), 3);
	cr_assert(aaetree_contains(t, 5, &o));
	cr_assert_eq(o, 50);
	cr_assert(aaetree_contains(t, 0, &o));
	cr_assert_eq(o, 7);
	cr_assert(aaetree_contains(t, 6, NULL));

	update(t, 5, 51);       /* replace */
	update(t, 0, 8);
	check(t);
	cr_assert_eq(aaetree_count(t), 3);
	cr_assert(aaetree_contains(t, 5, &o));
	cr_assert_eq(o, 51);
	cr_assert(aaetree_contains(t, 0, &o));
	cr_assert_eq(o, 8);

	cr_assert(aaetree_remove(t, 5));
	cr_assert_not(aaetree_remove(t, 5));
	cr_assert(aaetree_remove(t, 0));
	cr_assert_not(aaetree_remove(t, 0));
	check(t);
	cr_assert_eq(aaetree_count(t), 1);
	cr_assert_not(aaetree_contains(t, 5, &o));
	cr_assert_not(aaetree_contains(t, 0, &o));
	cr_assert(aaetree_remove(t, 6));
	cr_assert(aaetree_digest_equal(aaetree_root(t), empty), "empty again: the empty root");
	aaetree_free(t);
	aaetree_free(NULL);
}

/* Random updates and removes over a small key space (so keys come and go
 * and runs of the table collide), against a plain array as the model, with
 * the invariants checked after every change. */
Test(aaetree, random_operations_match_a_model)
{
	enum { KEYS = 3000 };
	uint64_t seed = seed_of("test_aaetree: random_operations", 4242);
	static uint64_t model[KEYS];    /* objhash of key i, 0 = absent */
	static bool present[KEYS];
	aaetree *t = tree_new();
	unsigned ops = test_reps(60000, 3000);
	size_t count = 0;

	for (unsigned r = 0; r < ops; r++) {
		size_t i = (size_t)(rng_next(&seed) % KEYS);
		uint64_t k = i;             /* keyhash i: 0 and neighbours too */

		if (rng_next(&seed) % 3 == 0) {
			cr_assert_eq(aaetree_remove(t, k), present[i], "op %u remove %zu", r, i);
			count -= present[i];
			present[i] = false;
		} else {
			uint64_t o = rng_next(&seed);

			update(t, k, o);
			count += !present[i];
			present[i] = true;
			model[i] = o;
		}
		cr_assert_eq(aaetree_count(t), count);
		if (r % 64 == 0 || ops < 10000)
			check(t);
	}
	check(t);
	for (size_t i = 0; i < KEYS; i++) {
		uint64_t o;

		cr_assert_eq(aaetree_contains(t, i, &o), present[i], "key %zu", i);
		if (present[i])
			cr_assert_eq(o, model[i], "key %zu", i);
	}
	{
		size_t n;
		riblt_item *v = items_of(t, &n);

		cr_assert_eq(n, count);
		for (size_t j = 0; j < n; j++) {
			cr_assert(present[v[j].keyhash], "iterated absent key %llu",
				  (unsigned long long)v[j].keyhash);
			cr_assert_eq(v[j].objhash, model[v[j].keyhash]);
		}
		cr_assert(aaetree_digest_equal(aaetree_root(t), digest_of(v, n)));
		free(v);
	}
	aaetree_free(t);
}

Test(aaetree, iterator_gives_every_item_once)
{
	uint64_t seed = seed_of("test_aaetree: iterator", 17);
	aaetree *t = tree_new();
	riblt_item *want = malloc(5001 * sizeof(*want)), *got;
	size_t n;

	cr_assert_not_null(want);
	for (size_t i = 0; i < 5000; i++) {
		want[i].keyhash = rng_next(&seed) | 1;
		want[i].objhash = rng_next(&seed);
		update(t, want[i].keyhash, want[i].objhash);
	}
	want[5000] = (riblt_item){ 0, 99 };
	update(t, 0, 99);
	got = items_of(t, &n);
	qsort(want, 5001, sizeof(*want), cmp_item);
	cr_assert_eq(n, 5001);
	cr_assert_eq(memcmp(got, want, n * sizeof(*got)), 0);
	free(got);
	free(want);
	aaetree_free(t);
}

/* --- the root ----------------------------------------------------------- */

static void shuffle(riblt_item *v, size_t n, uint64_t *seed)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)(rng_next(seed) % i);
		riblt_item x = v[i - 1];

		v[i - 1] = v[j];
		v[j] = x;
	}
}

Test(aaetree, roots_equal_iff_sets_equal)
{
	enum { N = 5000 };
	uint64_t seed = seed_of("test_aaetree: roots", 90210);
	riblt_item *v = malloc(N * sizeof(*v));
	aaetree *a = tree_new(), *b = tree_new(), *c;
	uint64_t o;

	cr_assert_not_null(v);
	for (size_t i = 0; i < N; i++)
		v[i] = (riblt_item){ rng_next(&seed), rng_next(&seed) };

	/* a: in order.  b: shuffled, with detours: a wrong objhash first,
	 * keys removed and added again, passers-by added and removed. */
	for (size_t i = 0; i < N; i++)
		update(a, v[i].keyhash, v[i].objhash);
	shuffle(v, N, &seed);
	for (size_t i = 0; i < N; i++) {
		uint64_t junk = rng_next(&seed);

		update(b, v[i].keyhash, ~v[i].objhash);
		update(b, junk, 1);
		update(b, v[i].keyhash, v[i].objhash);
		cr_assert(aaetree_remove(b, junk));
		if (i % 3 == 0) {
			cr_assert(aaetree_remove(b, v[i].keyhash));
			update(b, v[i].keyhash, v[i].objhash);
		}
	}
	check(a);
	check(b);
	cr_assert(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)),
		  "same items, different order: roots differ");
	cr_assert_eq(aaetree_root(a).count, N);

	/* Unequal: one objhash changed, then put back. */
	cr_assert(aaetree_contains(b, v[7].keyhash, &o));
	update(b, v[7].keyhash, o + 1);
	cr_assert_not(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)));
	cr_assert_eq(aaetree_root(a).count, aaetree_root(b).count, "same count, other hash");
	update(b, v[7].keyhash, o);
	cr_assert(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)));

	/* Unequal: one removed, then added again. */
	cr_assert(aaetree_remove(b, v[100].keyhash));
	cr_assert_not(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)));
	update(b, v[100].keyhash, v[100].objhash);
	cr_assert(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)));

	/* Unequal: one extra. */
	update(b, 12345, 678);
	cr_assert_not(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)));
	cr_assert(aaetree_remove(b, 12345));

	/* A third tree that empties and refills itself lands on the same root. */
	c = tree_new();
	for (size_t i = 0; i < N; i++)
		update(c, v[i].keyhash, v[i].objhash);
	for (size_t i = 0; i < N; i++)
		cr_assert(aaetree_remove(c, v[i].keyhash));
	cr_assert_eq(aaetree_root(c).count, 0);
	cr_assert_eq(aaetree_root(c).hash, 0);
	check(c);
	shuffle(v, N, &seed);
	for (size_t i = 0; i < N; i++)
		update(c, v[i].keyhash, v[i].objhash);
	check(c);
	cr_assert(aaetree_digest_equal(aaetree_root(a), aaetree_root(c)));

	/* And the root is what aaetree.h says it is. */
	cr_assert(aaetree_digest_equal(aaetree_root(a), digest_of(v, N)));
	aaetree_free(a);
	aaetree_free(b);
	aaetree_free(c);
	free(v);
}

Test(aaetree, root_is_riblt_symbol_zero)
{
	uint64_t seed = seed_of("test_aaetree: root_symbol_zero", 3);
	aaetree *t = tree_new();
	riblt_encoder *e = NULL;
	riblt_symbol s[8];

	for (int i = 0; i < 2000; i++)
		update(t, rng_next(&seed), rng_next(&seed));
	update(t, 0, 5);
	cr_assert_eq(riblt_encoder_new(&e), 0);
	cr_assert_eq(aaetree_encode(t, e), 0);
	cr_assert_eq(riblt_encoder_items(e), 2001);
	cr_assert_eq(riblt_encoder_produce(e, s, 8), 0);
	cr_assert_eq((uint64_t)s[0].count, aaetree_root(t).count);
	cr_assert_eq(s[0].check, aaetree_root(t).hash);
	/* Items come before symbols. */
	cr_assert_eq(aaetree_encode(t, e), DKV_EINVAL);
	riblt_encoder_free(e);
	aaetree_free(t);
}

/* --- reconciling two trees ---------------------------------------------- */

/* Two replicas of 50,000 keys that differ in 30 keys missing from b, 20
 * keys missing from a and 25 keys with other objects: encode both, subtract,
 * decode, and get exactly those items, in both directions. */
Test(aaetree, two_replicas_reconcile_through_riblt)
{
	uint64_t seed = seed_of("test_aaetree: two_replicas", 777);
	aaetree *a = tree_new(), *b = tree_new();
	riblt_item wa[55], wb[45];
	size_t nwa = 0, nwb = 0, m = 400;

	for (int i = 0; i < 50000; i++) {
		uint64_t k = rng_next(&seed), o = rng_next(&seed);

		update(a, k, o);
		update(b, k, o);
		if (i < 30) {
			cr_assert(aaetree_remove(b, k));
			wa[nwa++] = (riblt_item){ k, o };
		} else if (i < 50) {
			cr_assert(aaetree_remove(a, k));
			wb[nwb++] = (riblt_item){ k, o };
		} else if (i < 75) {
			uint64_t o2 = rng_next(&seed);

			update(b, k, o2);
			wa[nwa++] = (riblt_item){ k, o };
			wb[nwb++] = (riblt_item){ k, o2 };
		}
	}
	cr_assert_not(aaetree_digest_equal(aaetree_root(a), aaetree_root(b)));
	for (int dir = 0; dir < 2; dir++) {
		aaetree *x = dir ? b : a, *y = dir ? a : b;
		riblt_item *wx = dir ? wb : wa, *wy = dir ? wa : wb;
		size_t nwx = dir ? nwb : nwa, nwy = dir ? nwa : nwb, n;
		riblt_encoder *ex = NULL, *ey = NULL;
		riblt_symbol *sx = calloc(m, sizeof(*sx)), *sy = calloc(m, sizeof(*sy));
		riblt_decoder *d = NULL;
		riblt_item *got;

		cr_assert(sx != NULL && sy != NULL);
		cr_assert_eq(riblt_encoder_new(&ex), 0);
		cr_assert_eq(riblt_encoder_new(&ey), 0);
		cr_assert_eq(aaetree_encode(x, ex), 0);
		cr_assert_eq(aaetree_encode(y, ey), 0);
		cr_assert_eq(riblt_encoder_produce(ex, sx, m), 0);
		cr_assert_eq(riblt_encoder_produce(ey, sy, m), 0);
		riblt_symbols_subtract(sx, sy, m);
		cr_assert_eq(riblt_decoder_new(&d), 0);
		cr_assert_eq(riblt_decoder_add(d, sx, m), 0);
		cr_assert(riblt_decoder_done(d), "100 differences, %zu symbols", m);

		got = (riblt_item *)riblt_decoder_only_a(d, &n);
		cr_assert_eq(n, nwx);
		qsort(got, n, sizeof(*got), cmp_item);
		qsort(wx, nwx, sizeof(*wx), cmp_item);
		cr_assert_eq(memcmp(got, wx, n * sizeof(*got)), 0, "direction %d: only in x", dir);
		got = (riblt_item *)riblt_decoder_only_b(d, &n);
		cr_assert_eq(n, nwy);
		qsort(got, n, sizeof(*got), cmp_item);
		qsort(wy, nwy, sizeof(*wy), cmp_item);
		cr_assert_eq(memcmp(got, wy, n * sizeof(*got)), 0, "direction %d: only in y", dir);

		riblt_decoder_free(d);
		riblt_encoder_free(ex);
		riblt_encoder_free(ey);
		free(sx);
		free(sy);
	}
	aaetree_free(a);
	aaetree_free(b);
}

/* --- the figures of aaetree.h ------------------------------------------- */

Test(aaetree, memory_per_key_stays_within_the_documented_bounds)
{
	uint64_t seed = seed_of("test_aaetree: memory", 11);
	aaetree *t = tree_new();
	size_t n = test_reps(300000, 30000);

	for (size_t i = 1; i <= n; i++) {
		update(t, rng_next(&seed), i);
		if (i >= 64) {
			double per = (double)(aaetree_memory(t) - aaetree_memory(t) % 16) / (double)i;

			cr_assert(per >= 21.3 && per <= 42.7 + 1.0,
				  "%zu keys: %.1f bytes per key", i, per);
		}
	}
	/* reserve() makes room at once: no growth for n more keys. */
	{
		aaetree *r = tree_new();
		size_t before;

		cr_assert_eq(aaetree_reserve(r, 100000), 0);
		before = aaetree_memory(r);
		for (int i = 0; i < 100000; i++)
			update(r, rng_next(&seed), 1);
		cr_assert_eq(aaetree_memory(r), before);
		check(r);
		aaetree_free(r);
	}
	aaetree_free(t);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1M updates (inserts of fresh keys into an empty tree), then 1M more
 * (replacing every objhash), then 1M removes: each well under a second.
 * The best of three rounds counts, so that a busy machine does not fail
 * the test; every round checks its data. */
Test(aaetree, a_million_updates_take_well_under_a_second, .timeout = 120)
{
	const size_t n = test_reps(1000000, 20000);
	uint64_t seed = seed_of("test_aaetree: million", 1000000);
	uint64_t *keys = malloc(n * sizeof(*keys));
	double best[3] = { 1e9, 1e9, 1e9 };
	const char *what[3] = { "inserts", "replacements", "removes" };

	cr_assert_not_null(keys);
	for (size_t i = 0; i < n; i++)
		keys[i] = rng_next(&seed);
	for (int round = 0; round < 3; round++) {
		aaetree *t = tree_new();
		double t0, t1, t2, t3;

		t0 = now_s();
		for (size_t i = 0; i < n; i++)
			update(t, keys[i], i);
		t1 = now_s();
		for (size_t i = 0; i < n; i++)
			update(t, keys[i], i + 1);
		t2 = now_s();
		cr_assert_eq(aaetree_count(t), n);
		for (size_t i = 0; i < n; i += n / 1000) {
			uint64_t o;

			cr_assert(aaetree_contains(t, keys[i], &o));
			cr_assert_eq(o, i + 1);
		}
		if (round == 0)
			fprintf(stderr, "%zu keys: %zu bytes, %.1f per key\n", n,
				aaetree_memory(t), (double)aaetree_memory(t) / (double)n);
		for (size_t i = 0; i < n; i++)
			cr_assert(aaetree_remove(t, keys[i]));
		t3 = now_s();
		cr_assert_eq(aaetree_count(t), 0);
		cr_assert_eq(aaetree_root(t).hash, 0, "every item XORed out again");
		fprintf(stderr, "round %d: %zu inserts %.3f s, replacements %.3f s, "
			"removes %.3f s\n", round, n, t1 - t0, t2 - t1, t3 - t2);
		best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
		best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
		best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
		aaetree_free(t);
	}
	/* the bound is the plain build's: ASan and valgrind time themselves */
	for (int k = 0; k < 3 && getenv("DKV_VALGRIND") == NULL && !under_asan(); k++)
		cr_assert_lt(best[k], 1.0, "%zu %s took %.3f s at best", n, what[k], best[k]);
	free(keys);
}
