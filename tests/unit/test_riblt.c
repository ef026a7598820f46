#include "config.h"
/*
 * test_riblt.c -- src/riblt.c: the checksum, the mapping and the wire
 * against golden values computed by a separate SipHash-2-4, mapping and
 * encoder written in Python from the paper and riblt.h; the density of the
 * mapping; sets with known differences (both directions, a key whose
 * object differs, one side empty, no difference) decoding to exactly those
 * differences; the encoder and decoder used ratelessly (batches of any
 * size give the same symbols and the same answer); the symbols needed per
 * difference, measured and printed; and hostile input: runs that are
 * garbage, truncated or oversized are refused, and symbols that lie make
 * the decoder fail, never hang.
 *
 * Every random input comes from a splitmix64 PRNG whose seed is printed,
 * so a failure can be replayed.
 */

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "riblt.h"
#include "testutil.h"
#include "itemtest.h"

/* --- helpers ----------------------------------------------------------- */

/* A growable array of items. */
typedef struct itemvec {
	riblt_item *v;      /* the items */
	size_t n;           /* in use */
	size_t cap;         /* allocated */
} itemvec;

static void iv_push(itemvec *iv, riblt_item it)
{
	if (iv->n == iv->cap) {
		iv->cap = iv->cap ? iv->cap * 2 : 64;
		iv->v = realloc(iv->v, iv->cap * sizeof(*iv->v));
		cr_assert_not_null(iv->v);
	}
	iv->v[iv->n++] = it;
}

static void iv_free(itemvec *iv)
{
	free(iv->v);
	memset(iv, 0, sizeof(*iv));
}

static riblt_item rand_item(uint64_t *seed)
{
	riblt_item it = { .keyhash = rng_next(seed), .objhash = rng_next(seed) };

	return it;
}

/* Assert that got[0..ngot) and want[0..nwant) hold the same items, in any
 * order (both are sorted in place; want may be reordered). */
static void assert_same_items(const riblt_item *got, size_t ngot, riblt_item *want,
			      size_t nwant, const char *what)
{
	riblt_item *g = NULL;

	cr_assert_eq(ngot, nwant, "%s: %zu items recovered, %zu expected", what, ngot, nwant);
	if (ngot == 0)
		return;
	g = malloc(ngot * sizeof(*g));
	cr_assert_not_null(g);
	memcpy(g, got, ngot * sizeof(*g));
	qsort(g, ngot, sizeof(*g), cmp_item);
	qsort(want, nwant, sizeof(*want), cmp_item);
	for (size_t i = 0; i < ngot; i++)
		cr_assert(cmp_item(&g[i], &want[i]) == 0,
			  "%s: item %zu is %016llx/%016llx, expected %016llx/%016llx", what, i,
			  (unsigned long long)g[i].keyhash, (unsigned long long)g[i].objhash,
			  (unsigned long long)want[i].keyhash, (unsigned long long)want[i].objhash);
	free(g);
}

/* The first m symbols of a set. */
static riblt_symbol *encode(const riblt_item *items, size_t n, size_t m)
{
	riblt_encoder *e = NULL;
	riblt_symbol *s = calloc(m ? m : 1, sizeof(*s));

	cr_assert_not_null(s);
	cr_assert_eq(riblt_encoder_new(&e), 0);
	cr_assert_eq(riblt_encoder_reserve(e, n), 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(riblt_encoder_add(e, &items[i]), 0);
	cr_assert_eq(riblt_encoder_items(e), n);
	cr_assert_eq(riblt_encoder_produce(e, s, m), 0);
	cr_assert_eq(riblt_encoder_produced(e), m);
	riblt_encoder_free(e);
	return s;
}

/* The difference symbols of two sets: a's first m minus b's. */
static riblt_symbol *diff_symbols(const itemvec *a, const itemvec *b, size_t m)
{
	riblt_symbol *sa = encode(a->v, a->n, m), *sb = encode(b->v, b->n, m);

	riblt_symbols_subtract(sa, sb, m);
	free(sb);
	return sa;
}

/* Two sets with known differences: `shared` items in both, na only in A,
 * nb only in B, and nmod keys in both with a different objhash on each side
 * (so each counts once in A's and once in B's differences).  The items of
 * each side are shuffled, so no order is shared. */
typedef struct pair {
	itemvec a, b;               /* the two sets */
	itemvec only_a, only_b;     /* the expected differences */
} pair;

static void shuffle(itemvec *iv, uint64_t *seed)
{
	for (size_t i = iv->n; i > 1; i--) {
		size_t j = (size_t)(rng_next(seed) % i);
		riblt_item t = iv->v[i - 1];

		iv->v[i - 1] = iv->v[j];
		iv->v[j] = t;
	}
}

static void make_pair(pair *p, size_t shared, size_t na, size_t nb, size_t nmod, uint64_t *seed)
{
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < shared; i++) {
		riblt_item it = rand_item(seed);

		iv_push(&p->a, it);
		iv_push(&p->b, it);
	}
	for (size_t i = 0; i < na; i++) {
		riblt_item it = rand_item(seed);

		iv_push(&p->a, it);
		iv_push(&p->only_a, it);
	}
	for (size_t i = 0; i < nb; i++) {
		riblt_item it = rand_item(seed);

		iv_push(&p->b, it);
		iv_push(&p->only_b, it);
	}
	for (size_t i = 0; i < nmod; i++) {
		riblt_item x = rand_item(seed), y = x;

		y.objhash = rng_next(seed);
		iv_push(&p->a, x);
		iv_push(&p->only_a, x);
		iv_push(&p->b, y);
		iv_push(&p->only_b, y);
	}
	shuffle(&p->a, seed);
	shuffle(&p->b, seed);
}

static void pair_free(pair *p)
{
	iv_free(&p->a);
	iv_free(&p->b);
	iv_free(&p->only_a);
	iv_free(&p->only_b);
}

/* Encode both sides to m symbols, subtract x - y, decode at once; assert
 * it decodes completely to exactly (want_x, want_y). */
static void reconcile(const itemvec *x, const itemvec *y, itemvec *want_x, itemvec *want_y,
		      size_t m, const char *what)
{
	riblt_symbol *sx = diff_symbols(x, y, m);
	riblt_decoder *d = NULL;
	const riblt_item *got;
	size_t n;

	cr_assert_eq(riblt_decoder_new(&d), 0);
	cr_assert_eq(riblt_decoder_add(d, sx, m), 0, "%s", what);
	cr_assert(riblt_decoder_done(d), "%s: not decoded with %zu symbols", what, m);
	cr_assert_eq(riblt_decoder_symbols(d), m);
	got = riblt_decoder_only_a(d, &n);
	assert_same_items(got, n, want_x->v, want_x->n, what);
	got = riblt_decoder_only_b(d, &n);
	assert_same_items(got, n, want_y->v, want_y->n, what);
	riblt_decoder_free(d);
	free(sx);
}

/* --- items, checksums and the mapping ------------------------------------ */

TestSuite(riblt, .description = "rateless IBLT set reconciliation");

/* Golden values: the checksum and the mapping are part of the protocol, so
 * a change here is a decision, not a fix.  They were computed by a separate
 * SipHash-2-4 (checked against the paper's test vector), checksum and
 * mapping written in Python from riblt.h. */
Test(riblt, checksum_and_mapping_are_the_documented_ones)
{
	static const uint64_t want_idx[16] = {
		0, 1, 2, 7, 15, 27, 31, 47, 146, 157, 198, 327, 635, 3737, 4735, 4893
	};
	static const uint64_t want_idx0[12] = {
		0, 1, 3, 27, 28, 89, 157, 379, 432, 874, 896, 1424
	};
	riblt_item it = { .keyhash = 1, .objhash = 2 };
	riblt_map m;

	cr_assert_eq(riblt_item_checksum(&it), UINT64_C(0x9da0ace5a4bd2ed4));
	it = (riblt_item){ 0, 0 };
	cr_assert_eq(riblt_item_checksum(&it), UINT64_C(0x770821da87694fa4));
	it = (riblt_item){ UINT64_C(0x0123456789abcdef), UINT64_C(0xfedcba9876543210) };
	cr_assert_eq(riblt_item_checksum(&it), UINT64_C(0xe3df3ecb68f9d0fe));

	riblt_map_init(&m, riblt_item_checksum(&it));
	for (size_t i = 0; i < 16; i++, riblt_map_advance(&m))
		cr_assert_eq(m.next, want_idx[i], "index %zu is %llu", i, (unsigned long long)m.next);
	riblt_map_init(&m, 0);
	for (size_t i = 0; i < 12; i++, riblt_map_advance(&m))
		cr_assert_eq(m.next, want_idx0[i], "seed 0: index %zu is %llu", i,
			     (unsigned long long)m.next);
}

Test(riblt, mapping_density_is_about_one_over_one_plus_half_j)
{
	static const uint64_t js[] = { 1, 2, 3, 10, 100, 1000 };
	const size_t n = test_reps(200000, 20000);
	uint64_t seed = seed_of("test_riblt: density", 42);
	size_t hits[sizeof(js) / sizeof(js[0])] = { 0 };

	for (size_t i = 0; i < n; i++) {
		riblt_map m;
		uint64_t prev = 0;

		riblt_map_init(&m, rng_next(&seed));
		cr_assert_eq(m.next, 0, "every item maps to symbol 0");
		for (riblt_map_advance(&m); m.next <= 1000; riblt_map_advance(&m)) {
			cr_assert_gt(m.next, prev, "indices strictly increase");
			prev = m.next;
			for (size_t k = 0; k < sizeof(js) / sizeof(js[0]); k++)
				hits[k] += m.next == js[k];
		}
	}
	for (size_t k = 0; k < sizeof(js) / sizeof(js[0]); k++) {
		double want = 2.0 / ((double)js[k] + 2.0), got = (double)hits[k] / (double)n;
		/* 6% for the continuous approximation of the gap (j = 1 gives
		 * 0.639 for 2/3), plus 5 binomial standard deviations. */
		double tol = 0.06 * want + 5.0 * sqrt(want / (double)n);

		fprintf(stderr, "density at %4llu: %.5f (1/(1+j/2) = %.5f)\n",
			(unsigned long long)js[k], got, want);
		cr_assert(fabs(got - want) <= tol, "index %llu: %.5f of items, want %.5f +- %.5f",
			  (unsigned long long)js[k], got, want, tol);
	}
}

Test(riblt, symbol_zero_is_the_whole_set)
{
	uint64_t seed = seed_of("test_riblt: symbol_zero", 7);
	itemvec iv = { 0 };
	riblt_symbol *s, want = { 0 };

	for (int i = 0; i < 1000; i++) {
		riblt_item it = rand_item(&seed);

		iv_push(&iv, it);
		want.sum.keyhash ^= it.keyhash;
		want.sum.objhash ^= it.objhash;
		want.check ^= riblt_item_checksum(&it);
		want.count++;
	}
	s = encode(iv.v, iv.n, 4);
	cr_assert_eq(s[0].sum.keyhash, want.sum.keyhash);
	cr_assert_eq(s[0].sum.objhash, want.sum.objhash);
	cr_assert_eq(s[0].check, want.check);
	cr_assert_eq(s[0].count, 1000);
	/* Symbol 1 holds about 2/3 of the items. */
	cr_assert(s[1].count > 600 && s[1].count < 730, "symbol 1 counts %lld",
		  (long long)s[1].count);
	free(s);
	iv_free(&iv);
}

/* --- known differences ---------------------------------------------------- */

Test(riblt, known_differences_decode_exactly_both_ways)
{
	static const size_t shapes[][4] = {   /* shared, only A, only B, modified */
		{ 1000, 1, 0, 0 },
		{ 1000, 0, 1, 0 },
		{ 1000, 0, 0, 1 },
		{ 5000, 3, 4, 5 },
		{ 20000, 100, 50, 25 },
		{ 100, 400, 0, 0 },
		{ 0, 300, 200, 100 },
	};
	uint64_t seed = seed_of("test_riblt: known_differences", 1001);

	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
		pair p;
		size_t d, m;
		char what[64];

		make_pair(&p, shapes[k][0], shapes[k][1], shapes[k][2], shapes[k][3], &seed);
		d = p.only_a.n + p.only_b.n;
		m = 3 * d + 20;   /* ample: 1.8 d is enough on average */
		snprintf(what, sizeof(what), "shape %zu A-B", k);
		reconcile(&p.a, &p.b, &p.only_a, &p.only_b, m, what);
		snprintf(what, sizeof(what), "shape %zu B-A", k);
		reconcile(&p.b, &p.a, &p.only_b, &p.only_a, m, what);
		pair_free(&p);
	}
}

Test(riblt, same_keyhash_different_objhash_is_two_differences)
{
	riblt_item a[] = { { 10, 100 }, { 20, 200 }, { 30, 300 } };
	riblt_item b[] = { { 10, 100 }, { 20, 201 }, { 30, 300 } };
	itemvec xa = { a, 3, 3 }, xb = { b, 3, 3 };
	riblt_item wa[] = { { 20, 200 } }, wb[] = { { 20, 201 } };
	itemvec ya = { wa, 1, 1 }, yb = { wb, 1, 1 };

	reconcile(&xa, &xb, &ya, &yb, 4, "A-B");
	reconcile(&xb, &xa, &yb, &ya, 4, "B-A");
}

Test(riblt, one_side_empty_gives_the_other_whole)
{
	uint64_t seed = seed_of("test_riblt: one_side_empty", 31337);
	pair p;

	make_pair(&p, 0, 700, 0, 0, &seed);
	cr_assert_eq(p.b.n, 0);
	reconcile(&p.a, &p.b, &p.only_a, &p.only_b, 1400, "A-empty");
	reconcile(&p.b, &p.a, &p.only_b, &p.only_a, 1400, "empty-A");
	pair_free(&p);
}

Test(riblt, equal_sets_decode_to_nothing_from_one_symbol)
{
	uint64_t seed = seed_of("test_riblt: equal_sets", 5);
	pair p;
	riblt_symbol *sa;
	riblt_decoder *d = NULL;
	size_t n;

	make_pair(&p, 3000, 0, 0, 0, &seed);
	sa = diff_symbols(&p.a, &p.b, 50);
	for (size_t j = 0; j < 50; j++)
		cr_assert(riblt_symbol_is_zero(&sa[j]), "symbol %zu not zero", j);
	cr_assert_eq(riblt_decoder_new(&d), 0);
	cr_assert_not(riblt_decoder_done(d), "no symbols: not done");
	cr_assert_eq(riblt_decoder_add(d, sa, 1), 0);
	cr_assert(riblt_decoder_done(d));
	riblt_decoder_only_a(d, &n);
	cr_assert_eq(n, 0);
	riblt_decoder_only_b(d, &n);
	cr_assert_eq(n, 0);
	riblt_decoder_free(d);
	free(sa);
	pair_free(&p);
}

Test(riblt, too_few_symbols_is_not_done)
{
	uint64_t seed = seed_of("test_riblt: too_few", 77);
	pair p;
	riblt_symbol *sa;
	riblt_decoder *d = NULL;

	/* 200 differences cannot come out of 20 symbols. */
	make_pair(&p, 1000, 100, 100, 0, &seed);
	sa = diff_symbols(&p.a, &p.b, 20);
	cr_assert_eq(riblt_decoder_new(&d), 0);
	cr_assert_eq(riblt_decoder_add(d, sa, 20), 0);
	cr_assert_not(riblt_decoder_done(d));
	riblt_decoder_free(d);
	free(sa);
	pair_free(&p);
}

/* --- rateless use ---------------------------------------------------------- */

Test(riblt, encoder_batches_give_the_same_symbols)
{
	static const size_t batches[] = { 1, 2, 7, 1, 30, 100, 59 };   /* 200 in all */
	uint64_t seed = seed_of("test_riblt: encoder_batches", 99);
	itemvec iv = { 0 };
	riblt_encoder *e = NULL;
	riblt_symbol *once, got[200];
	riblt_item extra = { 1, 2 };
	size_t at = 0;

	for (int i = 0; i < 5000; i++)
		iv_push(&iv, rand_item(&seed));
	once = encode(iv.v, iv.n, 200);
	cr_assert_eq(riblt_encoder_new(&e), 0);
	for (size_t i = 0; i < iv.n; i++)
		cr_assert_eq(riblt_encoder_add(e, &iv.v[i]), 0);
	for (size_t k = 0; k < sizeof(batches) / sizeof(batches[0]); k++) {
		cr_assert_eq(riblt_encoder_produce(e, got + at, batches[k]), 0);
		at += batches[k];
		cr_assert_eq(riblt_encoder_produced(e), at);
	}
	cr_assert_eq(at, 200);
	cr_assert_eq(memcmp(got, once, sizeof(got)), 0);
	/* Items come first. */
	cr_assert_eq(riblt_encoder_add(e, &extra), DKV_EINVAL);
	cr_assert_eq(riblt_encoder_items(e), iv.n);
	riblt_encoder_free(e);
	free(once);
	iv_free(&iv);
}

Test(riblt, decoder_fed_one_symbol_at_a_time_agrees)
{
	uint64_t seed = seed_of("test_riblt: decoder_one_at_a_time", 2718);
	pair p;
	riblt_symbol *sa;
	riblt_decoder *d = NULL;
	const riblt_item *got;
	size_t m = 600, used = 0, n;

	make_pair(&p, 10000, 60, 70, 40, &seed);   /* 210 differences */
	sa = diff_symbols(&p.a, &p.b, m);
	cr_assert_eq(riblt_decoder_new(&d), 0);
	while (!riblt_decoder_done(d)) {
		cr_assert_lt(used, m, "not decoded with %zu symbols", m);
		cr_assert_eq(riblt_decoder_add(d, &sa[used++], 1), 0);
	}
	fprintf(stderr, "210 differences decoded with %zu symbols\n", used);
	/* More symbols after done change nothing. */
	cr_assert_eq(riblt_decoder_add(d, &sa[used], m - used), 0);
	cr_assert(riblt_decoder_done(d));
	got = riblt_decoder_only_a(d, &n);
	assert_same_items(got, n, p.only_a.v, p.only_a.n, "only A");
	got = riblt_decoder_only_b(d, &n);
	assert_same_items(got, n, p.only_b.v, p.only_b.n, "only B");
	riblt_decoder_free(d);
	free(sa);
	pair_free(&p);
}

/* --- symbols per difference ------------------------------------------------ */

static riblt_encoder *encoder_of(const itemvec *iv)
{
	riblt_encoder *e = NULL;

	cr_assert_eq(riblt_encoder_new(&e), 0);
	for (size_t i = 0; i < iv->n; i++)
		cr_assert_eq(riblt_encoder_add(e, &iv->v[i]), 0);
	return e;
}

/* Symbols needed to decode the difference of p, used ratelessly: the
 * encoders produce batches of doubling size, and the decoder is fed one
 * symbol at a time until it is done.  The shared items cancel exactly in
 * every symbol (XOR, and +1 - 1), so only the differences are encoded
 * here; with `full`, the first 3d + 64 symbols are checked to be those of
 * the two whole sets, which proves it on 100,000 items. */
static size_t symbols_needed(const pair *p, bool full)
{
	size_t d = p->only_a.n + p->only_b.n, mfull = 3 * d + 64, used = 0, batch = 16, n;
	riblt_encoder *ea = encoder_of(&p->only_a), *eb = encoder_of(&p->only_b);
	riblt_symbol *whole = full ? diff_symbols(&p->a, &p->b, mfull) : NULL;
	riblt_symbol *sa = NULL, *sb = NULL;
	riblt_decoder *dec = NULL;

	cr_assert_eq(riblt_decoder_new(&dec), 0);
	while (!riblt_decoder_done(dec)) {
		size_t first = (size_t)riblt_encoder_produced(ea);

		cr_assert_lt(first, 1000 * d + 1000, "d %zu: not decoded with %zu symbols",
			     d, first);
		sa = realloc(sa, batch * sizeof(*sa));
		sb = realloc(sb, batch * sizeof(*sb));
		cr_assert(sa != NULL && sb != NULL);
		cr_assert_eq(riblt_encoder_produce(ea, sa, batch), 0);
		cr_assert_eq(riblt_encoder_produce(eb, sb, batch), 0);
		riblt_symbols_subtract(sa, sb, batch);
		for (size_t j = first; whole != NULL && j < first + batch && j < mfull; j++)
			cr_assert_eq(memcmp(&whole[j], &sa[j - first], sizeof(*sa)), 0,
				     "d %zu: symbol %zu differs from the whole sets'", d, j);
		for (size_t k = 0; k < batch && !riblt_decoder_done(dec); k++, used++)
			cr_assert_eq(riblt_decoder_add(dec, &sa[k], 1), 0);
		batch = batch < 4096 ? batch * 2 : batch;
	}
	riblt_decoder_only_a(dec, &n);
	cr_assert_eq(n, p->only_a.n);
	riblt_decoder_only_b(dec, &n);
	cr_assert_eq(n, p->only_b.n);
	riblt_decoder_free(dec);
	riblt_encoder_free(ea);
	riblt_encoder_free(eb);
	free(whole);
	free(sa);
	free(sb);
	return used;
}

/* The measurement behind riblt.h's table: d differences (half only in A,
 * half only in B) among 100,000 items, the mean over many trials of
 * symbols needed / d. */
Test(riblt, symbols_per_difference_under_1_8, .timeout = 300)
{
	static const size_t ds[] = { 1, 10, 100, 1000, 10000 };
	static const unsigned trials[] = { 100, 2000, 400, 50, 10 };
	const size_t total = test_reps(100000, 10000);
	uint64_t seed = seed_of("test_riblt: symbols_per_difference", 20240804);

	for (size_t k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
		size_t d = ds[k];
		unsigned t = test_reps(trials[k], 1);
		double sum = 0, worst = 0;

		if (d > total / 4)
			continue;
		for (unsigned i = 0; i < t; i++) {
			pair p;
			double r;

			make_pair(&p, i == 0 ? total - d : 0, d - d / 2, d / 2, 0, &seed);
			r = (double)symbols_needed(&p, i == 0) / (double)d;
			sum += r;
			worst = r > worst ? r : worst;
			pair_free(&p);
		}
		fprintf(stderr, "d = %5zu among %zu items: mean symbols/d %.3f over %u trials "
			"(worst %.3f)\n", d, total, sum / t, t, worst);
		cr_assert_lt(sum / t, 1.8, "d = %zu: %.3f symbols per difference", d, sum / t);
		if (d == 1)
			cr_assert_eq(sum / t, 1.0, "one difference: symbol 0 alone is pure");
	}
}

/* --- the wire --------------------------------------------------------------- */

Test(riblt, run_golden_bytes)
{
	/* Computed by the Python encoder written from riblt.h's THE WIRE. */
	static const uint8_t want[] = {
		0x01, 0x05, 0x02,
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
		0x00, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		0x02,
		0x01, 0, 0, 0, 0, 0, 0, 0,
		0x02, 0, 0, 0, 0, 0, 0, 0,
		0x03, 0, 0, 0, 0, 0, 0, 0,
		0xd7, 0x04,
	};
	const riblt_symbol syms[2] = {
		{ { UINT64_C(0x1122334455667788), UINT64_C(0x99aabbccddeeff00) },
		  UINT64_C(0x0102030405060708), 1 },
		{ { 1, 2 }, 3, -300 },
	};
	uint8_t buf[sizeof(want)];
	riblt_symbol *out;
	uint64_t first;
	size_t n;

	cr_assert_eq(riblt_run_size(5, syms, 2), sizeof(want));
	cr_assert_eq(riblt_run_encode(buf, 5, syms, 2), sizeof(want));
	cr_assert_eq(memcmp(buf, want, sizeof(want)), 0);
	cr_assert_eq(riblt_run_decode(want, sizeof(want), 2, &first, &out, &n), 0);
	cr_assert_eq(first, 5);
	cr_assert_eq(n, 2);
	cr_assert_eq(memcmp(out, syms, sizeof(syms)), 0);
	free(out);
}

Test(riblt, run_round_trips_every_count)
{
	static const int64_t counts[] = {
		0, 1, -1, 63, -64, 64, -65, 8191, 1000000, -1000000,
		INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1,
	};
	enum { N = sizeof(counts) / sizeof(counts[0]) };
	uint64_t seed = seed_of("test_riblt: run_round_trip", 12);
	static const uint64_t firsts[] = { 0, 1, 127, 128, UINT64_C(1) << 40 };
	riblt_symbol syms[N];

	for (size_t i = 0; i < N; i++) {
		syms[i].sum = rand_item(&seed);
		syms[i].check = rng_next(&seed);
		syms[i].count = counts[i];
	}
	for (size_t f = 0; f < sizeof(firsts) / sizeof(firsts[0]); f++) {
		for (size_t n = 0; n <= N; n++) {
			size_t len = riblt_run_size(firsts[f], syms, n), got_n;
			uint8_t *buf = malloc(len);
			riblt_symbol *out;
			uint64_t first;

			cr_assert_not_null(buf);
			cr_assert_eq(riblt_run_encode(buf, firsts[f], syms, n), len);
			cr_assert_eq(riblt_run_decode(buf, len, N, &first, &out, &got_n), 0);
			cr_assert_eq(first, firsts[f]);
			cr_assert_eq(got_n, n);
			if (n == 0)
				cr_assert_null(out);
			else
				cr_assert_eq(memcmp(out, syms, n * sizeof(*syms)), 0);
			free(out);
			free(buf);
		}
	}
}

/* Bytes on the wire for the symbols a sender of a 1M-item set sends for
 * 1,000 differences: the figure of riblt.h's THE WIRE. */
Test(riblt, run_bytes_per_symbol_for_a_large_set)
{
	const size_t n = test_reps(1000000, 20000), m = 1400;
	uint64_t seed = seed_of("test_riblt: bytes_per_symbol", 4);
	itemvec iv = { 0 };
	riblt_symbol *s;
	size_t len;

	for (size_t i = 0; i < n; i++)
		iv_push(&iv, rand_item(&seed));
	s = encode(iv.v, iv.n, m);
	len = riblt_run_size(0, s, m);
	fprintf(stderr, "%zu symbols of a %zu-item set: %zu bytes, %.2f per symbol\n",
		m, n, len, (double)len / (double)m);
	cr_assert_leq(len, m * 27, "%zu bytes", len);
	cr_assert_geq(len, m * RIBLT_SYMBOL_MIN_BYTES);
	free(s);
	iv_free(&iv);
}

/* A valid run of 3 symbols for the refusal tests. */
static size_t sample_run(uint8_t *buf, size_t cap)
{
	const riblt_symbol syms[3] = {
		{ { 1, 2 }, 3, 4 }, { { 5, 6 }, 7, -300 }, { { 8, 9 }, 10, INT64_MIN },
	};
	size_t len = riblt_run_size(9, syms, 3);

	cr_assert_leq(len, cap);
	return riblt_run_encode(buf, 9, syms, 3);
}

static void assert_refused(const uint8_t *buf, size_t len, size_t max, int want, const char *what)
{
	uint8_t *copy = copy_exact(buf, len);   /* exact size, for ASan */
	riblt_symbol *out = (riblt_symbol *)&out;
	uint64_t first;
	size_t n = 99;
	int rc = riblt_run_decode(copy, len, max, &first, &out, &n);

	cr_assert_eq(rc, want, "%s: rc %d (%s), want %d", what, rc, dkv_strerror(rc), want);
	cr_assert_null(out, "%s", what);
	cr_assert_eq(n, 0, "%s", what);
	free(copy);
}

Test(riblt, run_refuses_truncated_input)
{
	uint8_t buf[256];
	size_t len = sample_run(buf, sizeof(buf));
	char what[48];

	for (size_t cut = 0; cut < len; cut++) {
		snprintf(what, sizeof(what), "first %zu bytes", cut);
		assert_refused(buf, cut, 100, DKV_EPROTO, what);
	}
}

Test(riblt, run_refuses_malformed_input)
{
	uint8_t buf[256], bad[300];
	size_t len = sample_run(buf, sizeof(buf));
	riblt_symbol *out;
	uint64_t first;
	size_t n;

	cr_assert_eq(riblt_run_decode(buf, len, 3, &first, &out, &n), 0);
	free(out);

	/* Versions. */
	memcpy(bad, buf, len);
	bad[0] = 2;
	assert_refused(bad, len, 100, DKV_EVERSION, "version 2");
	bad[0] = 0;
	assert_refused(bad, len, 100, DKV_EVERSION, "version 0");

	/* A trailing byte. */
	memcpy(bad, buf, len);
	bad[len] = 0;
	assert_refused(bad, len + 1, 100, DKV_EPROTO, "trailing byte");

	/* More symbols than max. */
	assert_refused(buf, len, 2, DKV_ETOOBIG, "3 symbols, max 2");

	/* The first index not in its shortest form: 9 as 0x89 0x00. */
	bad[0] = 1;
	bad[1] = 0x89;
	bad[2] = 0x00;
	memcpy(bad + 3, buf + 2, len - 2);
	assert_refused(bad, len + 1, 100, DKV_EPROTO, "overlong varint");

	/* An 11-byte varint, and a 10-byte one past 64 bits. */
	{
		uint8_t v[16] = { 1 };

		memset(v + 1, 0x80, 10);
		v[11] = 0x01;
		assert_refused(v, 13, 100, DKV_EPROTO, "11-byte varint");
		memset(v + 1, 0xff, 9);
		v[10] = 0x02;
		v[11] = 0x00;
		assert_refused(v, 12, 100, DKV_EPROTO, "varint past 2^64");
		/* 2^64 - 1 as the first index is valid varint but past the
		 * index limit. */
		v[10] = 0x01;
		assert_refused(v, 12, 100, DKV_EPROTO, "first index 2^64 - 1");
	}

	/* A count varint that runs to the end of the input. */
	memcpy(bad, buf, len);
	bad[len - 1] |= 0x80;
	assert_refused(bad, len, 100, DKV_EPROTO, "count varint cut");
}

Test(riblt, run_refuses_a_huge_count_before_allocating)
{
	/* A 12-byte run that claims 2^40 symbols, then 2^63: refused from the
	 * bytes left, before any allocation (cap_address_space would turn an
	 * attempt into -ENOMEM rather than a pass). */
	uint8_t v[16] = { 1, 0 };
	uint8_t *p = v + 2;
	uint64_t cnt = UINT64_C(1) << 40;

	cap_address_space();
	while (cnt >= 0x80) {
		*p++ = (uint8_t)(cnt | 0x80);
		cnt >>= 7;
	}
	*p++ = (uint8_t)cnt;
	assert_refused(v, (size_t)(p - v), SIZE_MAX, DKV_EPROTO, "2^40 symbols in 8 bytes");
	assert_refused(v, (size_t)(p - v), RIBLT_RUN_MAX_SYMBOLS, DKV_ETOOBIG,
		       "2^40 symbols, max 131072");
}

/* Random bytes, and random damage to a valid run, never crash the decoder;
 * whatever it accepts re-encodes to the same bytes (the encoding is
 * canonical). */
Test(riblt, run_garbage_is_refused_or_canonical)
{
	uint64_t seed = seed_of("test_riblt: run_garbage", 555);
	uint8_t good[256];
	size_t goodlen = sample_run(good, sizeof(good));
	unsigned reps = test_reps(20000, 500), accepted = 0;

	for (unsigned r = 0; r < reps; r++) {
		uint8_t buf[300];
		size_t len, n;
		riblt_symbol *out;
		uint64_t first;
		uint8_t *copy;
		int rc;

		if (r % 2 == 0) {
			len = (size_t)(rng_next(&seed) % 120);
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rng_next(&seed);
			if (len > 0 && rng_next(&seed) % 2)
				buf[0] = 1;   /* get past the version more often */
		} else {
			memcpy(buf, good, goodlen);
			len = goodlen;
			for (int k = 0; k < 3; k++)
				buf[rng_next(&seed) % len] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
		}
		copy = copy_exact(buf, len);
		rc = riblt_run_decode(copy, len, 100, &first, &out, &n);
		if (rc == 0) {
			size_t relen = riblt_run_size(first, out, n);
			uint8_t re[300];

			accepted++;
			cr_assert_eq(relen, len, "rep %u accepted %zu bytes, re-encodes to %zu",
				     r, len, relen);
			riblt_run_encode(re, first, out, n);
			cr_assert_eq(memcmp(re, buf, len), 0, "rep %u not canonical", r);
			free(out);
		} else {
			cr_assert(rc == DKV_EPROTO || rc == DKV_EVERSION || rc == DKV_ETOOBIG,
				  "rep %u: rc %d", r, rc);
		}
		free(copy);
	}
	fprintf(stderr, "%u of %u damaged or random runs decoded (canonically)\n",
		accepted, reps);
}

/* --- hostile symbols ------------------------------------------------------- */

Test(riblt, symbol_pure_with_an_item_that_does_not_map_there_is_corrupt)
{
	riblt_item it = { 0x0123456789abcdef, 0xfedcba9876543210 };
	riblt_symbol s[4] = { 0 };
	riblt_decoder *d = NULL;
	riblt_map m;

	/* This item maps to 0, 1, 2, 7, ...: put it alone in symbol 3. */
	riblt_map_init(&m, riblt_item_checksum(&it));
	riblt_map_advance(&m);
	riblt_map_advance(&m);
	riblt_map_advance(&m);
	cr_assert_eq(m.next, 7);
	s[3].sum = it;
	s[3].check = riblt_item_checksum(&it);
	s[3].count = 1;
	cr_assert_eq(riblt_decoder_new(&d), 0);
	cr_assert_eq(riblt_decoder_add(d, s, 4), DKV_ECORRUPT);
	cr_assert_not(riblt_decoder_done(d));
	cr_assert_eq(riblt_decoder_add(d, s, 1), DKV_ECORRUPT, "the error is sticky");
	riblt_decoder_free(d);
}

/* Streams of symbols that all look pure (count +-1, a consistent checksum)
 * but come from no set: the decoder must end, with 0 or DKV_ECORRUPT, and
 * never recover more items than it has symbols. */
Test(riblt, lying_symbols_end_in_an_error_not_a_hang, .timeout = 60)
{
	uint64_t seed = seed_of("test_riblt: lying_symbols", 8080);
	unsigned reps = test_reps(2000, 100), corrupt = 0;

	for (unsigned r = 0; r < reps; r++) {
		size_t m = 1 + (size_t)(rng_next(&seed) % 64), na, nb;
		riblt_symbol s[64];
		riblt_item pool[4];
		riblt_decoder *d = NULL;
		int rc;

		for (int k = 0; k < 4; k++)
			pool[k] = rand_item(&seed);
		for (size_t j = 0; j < m; j++) {
			/* Draw from a small pool so that items meet again. */
			s[j].sum = pool[rng_next(&seed) % 4];
			s[j].check = riblt_item_checksum(&s[j].sum);
			s[j].count = rng_next(&seed) % 2 ? 1 : -1;
		}
		cr_assert_eq(riblt_decoder_new(&d), 0);
		rc = riblt_decoder_add(d, s, m);
		cr_assert(rc == 0 || rc == DKV_ECORRUPT, "rep %u: rc %d", r, rc);
		corrupt += rc == DKV_ECORRUPT;
		riblt_decoder_only_a(d, &na);
		riblt_decoder_only_b(d, &nb);
		cr_assert_leq(na + nb, m, "rep %u: %zu items from %zu symbols", r, na + nb, m);
		riblt_decoder_free(d);
	}
	fprintf(stderr, "%u of %u lying streams refused\n", corrupt, reps);
	cr_assert_gt(corrupt, 0);
}
