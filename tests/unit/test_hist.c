/*
 * test_hist.c -- src/hist.c: exact answers below 256, the precision bound
 * across the whole 64-bit range against the exact order statistics of a
 * sorted copy, bucket boundaries, merge against recording everything in one
 * histogram, the extremes (0, UINT64_MAX, sums past 2^64) and the empty
 * histogram.  hist_check() runs after every mutation.
 */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "hist.h"

/* --- helpers ----------------------------------------------------------- */

/* splitmix64: a seeded PRNG, so every run sees the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A value whose magnitude is spread evenly over the bit lengths 0..64, so
 * every power-of-two range of the histogram is exercised. */
static uint64_t rng_loguniform(uint64_t *s)
{
	unsigned bits = (unsigned)(rng_next(s) % 65u);

	if (bits == 0)
		return 0;
	return rng_next(s) >> (64u - bits);
}

static hist *new_hist(void)
{
	hist *h = NULL;

	cr_assert_eq(hist_new(&h), 0);
	cr_assert_not_null(h);
	return h;
}

static void check(const hist *h)
{
	char err[128];
	int rc = hist_check(h, err, sizeof(err));

	cr_assert_eq(rc, 0, "hist_check: %s", err);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The exact nearest-rank percentile of sorted[0..n), p given in
 * thousandths of a percent (integer arithmetic, independent of hist.c). */
static uint64_t exact_pct(const uint64_t *sorted, uint64_t n, uint64_t p_milli)
{
	uint64_t rank;

	if (p_milli == 0)
		return sorted[0];
	rank = (p_milli * n + 100000u - 1u) / 100000u;   /* ceil(p/100 * n) */
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1];
}

static const uint64_t pcts_milli[] = {
	0, 1, 1000, 10000, 25000, 50000, 75000, 90000, 95000, 99000, 99500,
	99900, 99990, 99999, 100000,
};
#define NPCTS (sizeof(pcts_milli) / sizeof(pcts_milli[0]))

/* Record vals into h and check every percentile against the exact one:
 * the answer must lie in the exact value's bucket and within 1/256 of it. */
static void check_against_sorted(hist *h, uint64_t *vals, size_t n)
{
	for (size_t i = 0; i < n; i++)
		hist_record(h, vals[i]);
	check(h);
	qsort(vals, n, sizeof(*vals), cmp_u64);
	cr_assert_eq(hist_count(h), n);
	cr_assert_eq(hist_min(h), vals[0]);
	cr_assert_eq(hist_max(h), vals[n - 1]);
	for (size_t i = 0; i < NPCTS; i++) {
		double p = (double)pcts_milli[i] / 1000.0;
		uint64_t want = exact_pct(vals, n, pcts_milli[i]);
		uint64_t got = hist_percentile(h, p);
		uint64_t lo, hi, diff;

		hist_bucket_range(want, &lo, &hi);
		cr_assert(got >= lo && got <= hi,
			  "p%g: got %llu, exact %llu, bucket [%llu, %llu]", p,
			  (unsigned long long)got, (unsigned long long)want,
			  (unsigned long long)lo, (unsigned long long)hi);
		diff = got > want ? got - want : want - got;
		cr_assert(diff <= want / 256u + 1u,
			  "p%g: got %llu, exact %llu: error %llu > 1/256", p,
			  (unsigned long long)got, (unsigned long long)want,
			  (unsigned long long)diff);
	}
}

typedef struct dump {
	uint64_t lo[HIST_BUCKETS], hi[HIST_BUCKETS], n[HIST_BUCKETS];
	size_t len;
} dump;

static void dump_cb(uint64_t lo, uint64_t hi, uint64_t count, void *arg)
{
	dump *d = arg;

	cr_assert_lt(d->len, (size_t)HIST_BUCKETS);
	d->lo[d->len] = lo;
	d->hi[d->len] = hi;
	d->n[d->len] = count;
	d->len++;
}

static void assert_same(const hist *a, const hist *b)
{
	static dump da, db;

	cr_assert_eq(hist_count(a), hist_count(b));
	cr_assert_eq(hist_min(a), hist_min(b));
	cr_assert_eq(hist_max(a), hist_max(b));
	cr_assert_eq(hist_mean(a), hist_mean(b));
	memset(&da, 0, sizeof(da));
	memset(&db, 0, sizeof(db));
	hist_foreach(a, dump_cb, &da);
	hist_foreach(b, dump_cb, &db);
	cr_assert_eq(da.len, db.len);
	cr_assert_eq(memcmp(&da, &db, sizeof(da)), 0);
	for (unsigned p = 0; p <= 1000; p++)
		cr_assert_eq(hist_percentile(a, p / 10.0), hist_percentile(b, p / 10.0),
			     "p%g", p / 10.0);
}

/* --- tests ------------------------------------------------------------- */

Test(hist, empty)
{
	hist *h = new_hist();
	dump *d = calloc(1, sizeof(*d));

	check(h);
	cr_assert_eq(hist_count(h), 0);
	cr_assert_eq(hist_min(h), 0);
	cr_assert_eq(hist_max(h), 0);
	cr_assert_eq(hist_mean(h), 0.0);
	cr_assert_eq(hist_percentile(h, 0), 0);
	cr_assert_eq(hist_percentile(h, 50), 0);
	cr_assert_eq(hist_percentile(h, 100), 0);
	hist_foreach(h, dump_cb, d);
	cr_assert_eq(d->len, 0);
	hist_record_n(h, 12345, 0);     /* zero copies: still empty */
	check(h);
	cr_assert_eq(hist_count(h), 0);
	free(d);
	hist_free(h);
	hist_free(NULL);
}

Test(hist, small_values_exact)
{
	hist *h = new_hist();
	uint64_t lo, hi;

	for (uint64_t v = 0; v < 256; v++) {
		hist_bucket_range(v, &lo, &hi);
		cr_assert_eq(lo, v);
		cr_assert_eq(hi, v);
	}
	/* 0..255, value v recorded v + 1 times, in a scrambled order. */
	for (uint64_t i = 0; i < 256; i++) {
		uint64_t v = (i * 97u) % 256u;
		hist_record_n(h, v, v + 1);
		check(h);
	}
	cr_assert_eq(hist_count(h), 256u * 257u / 2u);
	cr_assert_eq(hist_min(h), 0);
	cr_assert_eq(hist_max(h), 255);
	/* sum of v * (v + 1) for v < 256, over the count */
	{
		double sum = 0;
		for (uint64_t v = 0; v < 256; v++)
			sum += (double)(v * (v + 1));
		cr_assert_float_eq(hist_mean(h), sum / (256.0 * 257.0 / 2.0), 1e-9);
	}
	/* Every percentile is exact. */
	for (unsigned pm = 0; pm <= 100000; pm += 250) {
		uint64_t n = hist_count(h), rank, acc = 0, want = 0;

		rank = pm == 0 ? 1 : (pm * n + 99999u) / 100000u;
		for (uint64_t v = 0; v < 256; v++) {
			acc += v + 1;
			if (acc >= rank) {
				want = v;
				break;
			}
		}
		cr_assert_eq(hist_percentile(h, pm / 1000.0), want, "p%g", pm / 1000.0);
	}
	hist_free(h);
}

Test(hist, single_value)
{
	hist *h = new_hist();

	hist_record(h, 1000003);
	check(h);
	/* Clamped to [min, max]: one value is reported exactly everywhere. */
	cr_assert_eq(hist_percentile(h, 0), 1000003);
	cr_assert_eq(hist_percentile(h, 50), 1000003);
	cr_assert_eq(hist_percentile(h, 99.9), 1000003);
	cr_assert_eq(hist_percentile(h, 100), 1000003);
	cr_assert_eq(hist_mean(h), 1000003.0);
	hist_free(h);
}

Test(hist, bucket_bounds_across_the_range)
{
	uint64_t s = 42, lo, hi, lo2, hi2;

	for (int i = 0; i < 200000; i++) {
		uint64_t v = rng_loguniform(&s);

		hist_bucket_range(v, &lo, &hi);
		cr_assert(lo <= v && v <= hi);
		/* width <= lo / 128: relative error at most 0.78% */
		cr_assert(hi - lo <= lo / 128u, "v %llu: [%llu, %llu]",
			  (unsigned long long)v, (unsigned long long)lo,
			  (unsigned long long)hi);
		/* buckets tile the range: neighbours start and end next to us */
		if (hi < UINT64_MAX) {
			hist_bucket_range(hi + 1, &lo2, &hi2);
			cr_assert_eq(lo2, hi + 1);
		}
		if (lo > 0) {
			hist_bucket_range(lo - 1, &lo2, &hi2);
			cr_assert_eq(hi2, lo - 1);
		}
	}
	hist_bucket_range(UINT64_MAX, &lo, &hi);
	cr_assert_eq(hi, UINT64_MAX);
	cr_assert_eq(lo, UINT64_C(255) << 56);
	hist_bucket_range(256, &lo, &hi);
	cr_assert_eq(lo, 256);
	cr_assert_eq(hi, 257);
}

Test(hist, precision_loguniform)
{
	enum { N = 100000 };
	uint64_t s = 7, *vals = malloc(N * sizeof(*vals));
	hist *h = new_hist();

	for (size_t i = 0; i < N; i++)
		vals[i] = rng_loguniform(&s);
	check_against_sorted(h, vals, N);
	free(vals);
	hist_free(h);
}

Test(hist, precision_latency_like)
{
	/* Nanosecond latencies: 50 us to 5 ms, with a tail to 2 s. */
	enum { N = 200000 };
	uint64_t s = 99, *vals = malloc(N * sizeof(*vals));
	hist *h = new_hist();

	for (size_t i = 0; i < N; i++) {
		uint64_t r = rng_next(&s);
		vals[i] = r % 1000u == 0 ? 5000000u + r % 2000000000u
					  : 50000u + r % 5000000u;
	}
	check_against_sorted(h, vals, N);
	free(vals);
	hist_free(h);
}

Test(hist, precision_small_counts)
{
	/* Few values: the rank arithmetic at its edges (n = 1..40). */
	uint64_t s = 3, vals[40];

	for (size_t n = 1; n <= 40; n++) {
		hist *h = new_hist();

		for (size_t i = 0; i < n; i++)
			vals[i] = rng_next(&s) % 100000000u;
		check_against_sorted(h, vals, n);
		hist_free(h);
	}
}

Test(hist, merge_equals_record_all)
{
	uint64_t s = 1234;
	hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *e = new_hist();

	for (int i = 0; i < 50000; i++) {
		uint64_t v = rng_loguniform(&s);

		hist_record(i % 3 ? a : b, v);
		hist_record(all, v);
	}
	hist_merge(a, b);
	check(a);
	check(b);
	assert_same(a, all);

	/* merging an empty histogram changes nothing; merging into an empty
	 * one copies */
	hist_merge(a, e);
	check(a);
	assert_same(a, all);
	hist_merge(e, all);
	check(e);
	assert_same(e, all);

	/* merging with itself doubles every count */
	hist_merge(e, e);
	check(e);
	hist_merge(all, all);
	check(all);
	assert_same(e, all);
	cr_assert_eq(hist_count(e), 2u * 50000u);

	hist_free(a);
	hist_free(b);
	hist_free(all);
	hist_free(e);
}

Test(hist, merge_keeps_min_and_max)
{
	hist *a = new_hist(), *b = new_hist();

	hist_record(a, 500);
	hist_record(a, 600);
	hist_record(b, 7);
	hist_record(b, 9000000);
	hist_merge(a, b);
	check(a);
	cr_assert_eq(hist_min(a), 7);
	cr_assert_eq(hist_max(a), 9000000);
	cr_assert_eq(hist_count(a), 4);
	hist_free(a);
	hist_free(b);
}

Test(hist, extremes)
{
	hist *h = new_hist();
	uint64_t lo, hi;

	hist_record(h, 0);
	hist_record(h, UINT64_MAX);
	check(h);
	cr_assert_eq(hist_min(h), 0);
	cr_assert_eq(hist_max(h), UINT64_MAX);
	cr_assert_eq(hist_percentile(h, 0), 0);
	cr_assert_eq(hist_percentile(h, 50), 0);
	cr_assert_eq(hist_percentile(h, 50.1), UINT64_MAX);
	cr_assert_eq(hist_percentile(h, 100), UINT64_MAX);
	cr_assert_float_eq(hist_mean(h), 18446744073709551615.0 / 2, 1e3);

	/* The sum passes 2^64 many times over and the mean stays exact. */
	hist_reset(h);
	check(h);
	for (int i = 0; i < 1000; i++)
		hist_record(h, UINT64_MAX);
	hist_record_n(h, UINT64_MAX, 1000);
	check(h);
	cr_assert_eq(hist_count(h), 2000);
	cr_assert_eq(hist_mean(h), 18446744073709551615.0);
	hist_bucket_range(UINT64_MAX, &lo, &hi);
	cr_assert_geq(hist_percentile(h, 50), lo);

	/* p outside [0, 100] and NaN do not crash and clamp */
	cr_assert_eq(hist_percentile(h, -5), hist_min(h));
	cr_assert_eq(hist_percentile(h, 1e9), UINT64_MAX);
	cr_assert_eq(hist_percentile(h, (double)NAN), hist_min(h));
	cr_assert_eq(hist_percentile(h, 1e-300), hist_min(h));
	hist_free(h);
}

Test(hist, record_n_equals_repeated_record)
{
	uint64_t s = 5;
	hist *a = new_hist(), *b = new_hist();

	for (int i = 0; i < 2000; i++) {
		uint64_t v = rng_loguniform(&s), n = rng_next(&s) % 50u;

		hist_record_n(a, v, n);
		for (uint64_t k = 0; k < n; k++)
			hist_record(b, v);
	}
	check(a);
	assert_same(a, b);
	/* large n: the 128-bit product v * n */
	hist_reset(a);
	hist_record_n(a, UINT64_C(1) << 40, UINT64_C(1) << 40);
	check(a);
	cr_assert_eq(hist_mean(a), (double)(UINT64_C(1) << 40));
	hist_free(a);
	hist_free(b);
}

Test(hist, reset)
{
	hist *h = new_hist(), *e = new_hist();

	for (uint64_t v = 1; v < 100000; v *= 3)
		hist_record(h, v);
	hist_reset(h);
	check(h);
	assert_same(h, e);
	hist_record(h, 77);
	check(h);
	cr_assert_eq(hist_min(h), 77);
	cr_assert_eq(hist_max(h), 77);
	hist_free(h);
	hist_free(e);
}
