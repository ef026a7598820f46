/*
 * hist.c -- the log-linear histogram of hist.h.
 *
 * Bucket index of v:
 *   v < 128:  v
 *   v >= 128: with m = floor(log2 v) (7..63) and s = m - 7 (the bits below
 *             the top eight that the bucket ignores),
 *             index = (s + 1) * 128 + ((v >> s) & 127)
 *   The top bit of v >> s is always bit 7, so (v >> s) & 127 is the
 *   sub-bucket and (s + 1) the group.  Largest index: s = 56, sub 127 ->
 *   57 * 128 + 127 = 7423 = HIST_BUCKETS - 1.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hist.h"

struct hist {
	uint64_t count;                 /* values recorded */
	uint64_t min;                   /* least value recorded (0 when count == 0) */
	uint64_t max;                   /* greatest value recorded (0 when count == 0) */
	uint64_t sum_lo;                /* sum of the values, low 64 bits */
	uint64_t sum_hi;                /* sum of the values, high 64 bits */
	uint64_t b[HIST_BUCKETS];       /* values recorded per bucket */
};

_Static_assert(HIST_BUCKETS == 7424, "bucket count: 58 groups of 128");

static unsigned bucket_of(uint64_t v)
{
	unsigned m, s;

	if (v < HIST_SUB)
		return (unsigned)v;
	m = 63u - (unsigned)__builtin_clzll(v);
	s = m - HIST_SUB_BITS;
	return (s + 1u) * HIST_SUB + (unsigned)((v >> s) & (HIST_SUB - 1u));
}

/* Lowest value of bucket i, and its width - 1. */
static void bucket_bounds(unsigned i, uint64_t *lo, uint64_t *span)
{
	unsigned g = i / HIST_SUB, sub = i % HIST_SUB, s;

	if (g == 0) {
		*lo = i;
		*span = 0;
		return;
	}
	s = g - 1u;
	*lo = ((uint64_t)HIST_SUB + sub) << s;
	*span = (UINT64_C(1) << s) - 1u;
}

int hist_new(hist **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void hist_free(hist *h)
{
	free(h);
}

void hist_reset(hist *h)
{
	memset(h, 0, sizeof(*h));
}

void hist_record_n(hist *h, uint64_t v, uint64_t n)
{
	uint64_t add_lo, add_hi, old;

	if (n == 0)
		return;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count += n;
	h->b[bucket_of(v)] += n;
	/* sum += v * n, in 128 bits: split both into 32-bit halves. */
	{
		uint64_t vl = v & 0xffffffffu, vh = v >> 32;
		uint64_t nl = n & 0xffffffffu, nh = n >> 32;
		uint64_t ll = vl * nl, lh = vl * nh, hl = vh * nl, hh = vh * nh;
		uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);

		add_lo = (ll & 0xffffffffu) | (mid << 32);
		add_hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
	}
	old = h->sum_lo;
	h->sum_lo += add_lo;
	h->sum_hi += add_hi + (h->sum_lo < old);
}

void hist_record(hist *h, uint64_t v)
{
	uint64_t old;

	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count++;
	h->b[bucket_of(v)]++;
	old = h->sum_lo;
	h->sum_lo += v;
	h->sum_hi += (h->sum_lo < old);
}

void hist_merge(hist *into, const hist *from)
{
	uint64_t old, fmin = from->min, fmax = from->max, flo = from->sum_lo,
		 fhi = from->sum_hi, fcount = from->count;

	if (fcount == 0)
		return;
	/* from's scalars are read first: into may be from. */
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		into->b[i] += from->b[i];
	if (into->count == 0 || fmin < into->min)
		into->min = fmin;
	if (into->count == 0 || fmax > into->max)
		into->max = fmax;
	into->count += fcount;
	old = into->sum_lo;
	into->sum_lo += flo;
	into->sum_hi += fhi + (into->sum_lo < old);
}

uint64_t hist_count(const hist *h)
{
	return h->count;
}

uint64_t hist_min(const hist *h)
{
	return h->min;
}

uint64_t hist_max(const hist *h)
{
	return h->max;
}

double hist_mean(const hist *h)
{
	if (h->count == 0)
		return 0.0;
	return ((double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo) /
	       (double)h->count;
}

uint64_t hist_percentile(const hist *h, double p)
{
	uint64_t rank, seen = 0, lo, span, v;
	double r;

	if (h->count == 0)
		return 0;
	if (!(p > 0.0))         /* also NaN */
		return h->min;
	if (p >= 100.0)
		return h->max;
	/* Nearest rank, ceil(p/100 * count); the 1e-7 forgives the rounding of
	 * p/100 (99.9/100 * 1000 is 999.0000000000001, and means 999). */
	r = p / 100.0 * (double)h->count - 1e-7;
	if (r >= (double)h->count)
		return h->max;
	rank = r > 0.0 ? (uint64_t)r : 0;
	if ((double)rank < r)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank >= h->count)
		return h->max;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen < rank)
			continue;
		bucket_bounds(i, &lo, &span);
		v = lo + span / 2u;
		if (v < h->min)
			v = h->min;
		if (v > h->max)
			v = h->max;
		return v;
	}
	return h->max;          /* not reached while the invariants hold */
}

void hist_bucket_range(uint64_t v, uint64_t *lo, uint64_t *hi)
{
	uint64_t span;

	bucket_bounds(bucket_of(v), lo, &span);
	*hi = *lo + span;
}

void hist_foreach(const hist *h,
		  void (*fn)(uint64_t lo, uint64_t hi, uint64_t count, void *arg),
		  void *arg)
{
	uint64_t lo, span;

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		if (h->b[i] == 0)
			continue;
		bucket_bounds(i, &lo, &span);
		fn(lo, lo + span, h->b[i], arg);
	}
}

static int bad(char *err, size_t errlen, const char *what)
{
	if (errlen > 0)
		snprintf(err, errlen, "hist: %s", what);
	return DKV_ECORRUPT;
}

int hist_check(const hist *h, char *err, size_t errlen)
{
	uint64_t total = 0;
	unsigned first = HIST_BUCKETS, last = 0;

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		if (h->b[i] == 0)
			continue;
		if (first == HIST_BUCKETS)
			first = i;
		last = i;
		total += h->b[i];
	}
	if (total != h->count)
		return bad(err, errlen, "bucket counts do not sum to count");
	if (h->count == 0) {
		if (h->min != 0 || h->max != 0 || h->sum_lo != 0 || h->sum_hi != 0)
			return bad(err, errlen, "empty histogram with a min, max or sum");
		return 0;
	}
	if (h->min > h->max)
		return bad(err, errlen, "min > max");
	if (bucket_of(h->min) != first)
		return bad(err, errlen, "min is not in the lowest non-empty bucket");
	if (bucket_of(h->max) != last)
		return bad(err, errlen, "max is not in the highest non-empty bucket");
	return 0;
}
