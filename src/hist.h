/*
 * hist.h -- a log-linear histogram of latencies (or of any unsigned 64-bit
 * quantity), in the manner of HdrHistogram: fixed memory, O(1) recording
 * without allocation, percentiles to within 1%.
 *
 * WHAT IT KEEPS
 *   A count per bucket, plus the exact count, minimum, maximum and sum of
 *   every value recorded.  The unit is the caller's: dynkv-bench records
 *   nanoseconds, the node's statistics may record microseconds; nothing here
 *   knows or cares.
 *
 * THE BUCKETS (HIST_SUB_BITS = 7)
 *   Values below 2^8 = 256 each have a bucket of their own, so they are kept
 *   exactly.  Above that, every power-of-two range [2^m, 2^(m+1)), m = 8..63,
 *   is cut into HIST_SUB = 128 equal sub-buckets of width 2^(m-7).  A value v
 *   therefore shares its bucket only with values within v/128 of it: the
 *   bucket's width divided by its lowest value is at most 2^(m-7) / 2^m =
 *   1/128 = 0.78%.  hist_percentile() answers with the middle of the bucket
 *   (clamped to [min, max]), so its answer is within half a bucket, 0.39%, of
 *   the exact order statistic.
 *   Buckets: 128 (values 0..127) + 57 ranges x 128 (m = 7..63; m = 7 is still
 *   exact, width 1) = 7424 counters of 8 bytes = 58 KiB per histogram.  Every
 *   uint64_t value, UINT64_MAX included, has a bucket: nothing is clamped
 *   and nothing is dropped.  Why 128 and not 2048 (HdrHistogram's 3
 *   significant digits): 1% is finer than the run-to-run noise of any
 *   latency we measure, and 58 KiB stays small enough for one histogram per
 *   request type per node; 2048 sub-buckets would be 16 times that.
 *
 * PERCENTILES
 *   Nearest rank: hist_percentile(h, p) is (to within its bucket) the
 *   smallest recorded value v such that at least p% of the values recorded
 *   are <= v.  p <= 0 gives the minimum and p >= 100 the maximum, both
 *   exactly.  An empty histogram answers 0 to every question.
 *
 * INVARIANTS (hist_check() tests them)
 *   the bucket counts sum to count; when count > 0, min <= max, and the
 *   buckets of min and max are the lowest and highest non-empty ones; when
 *   count == 0, every counter, min, max and the sum are 0.
 *
 * THREADS
 *   None of its own, and no locks: the caller serializes every call on one
 *   histogram.  A common pattern is one histogram per thread or per loop,
 *   merged with hist_merge() when the figures are read.
 *
 * OWNERSHIP
 *   hist_new() allocates; the caller frees with hist_free().  No other
 *   function allocates, blocks or fails.
 */
#ifndef DKV_HIST_H
#define DKV_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS 7u
#define HIST_SUB      (1u << HIST_SUB_BITS)                     /* 128 */
#define HIST_BUCKETS  ((64u - HIST_SUB_BITS + 1u) * HIST_SUB)   /* 7424 */

typedef struct hist hist;

/* A new, empty histogram in *out: 0 or -ENOMEM.  Caller frees with
 * hist_free(). */
int hist_new(hist **out);
/* Free h (NULL is fine). */
void hist_free(hist *h);
/* Forget every value: h is as hist_new() made it. */
void hist_reset(hist *h);

/* Record one value v, or n copies of it (n = 0 records nothing). */
void hist_record(hist *h, uint64_t v);
void hist_record_n(hist *h, uint64_t v, uint64_t n);

/* Add every value recorded in from to into, as if into had recorded them
 * itself (from is unchanged; into == from is allowed and doubles it). */
void hist_merge(hist *into, const hist *from);

/* How many values were recorded; the least and the greatest (0 if none);
 * their mean (0.0 if none; the sum is kept exactly in 128 bits). */
uint64_t hist_count(const hist *h);
uint64_t hist_min(const hist *h);
uint64_t hist_max(const hist *h);
double hist_mean(const hist *h);

/* The p-th percentile, p in [0, 100], to within half a bucket (0.39%; exact
 * below 256).  See PERCENTILES above. */
uint64_t hist_percentile(const hist *h, double p);

/* The bucket that holds v: its lowest and highest value.  Two values are
 * indistinguishable to the histogram iff they have the same bucket. */
void hist_bucket_range(uint64_t v, uint64_t *lo, uint64_t *hi);

/* Call fn(lo, hi, count, arg) for every non-empty bucket, lowest first, for
 * export (e.g. as cumulative buckets). */
void hist_foreach(const hist *h,
		  void (*fn)(uint64_t lo, uint64_t hi, uint64_t count, void *arg),
		  void *arg);

/* 0 if h keeps the INVARIANTS above, else DKV_ECORRUPT with the first broken
 * one in err. */
int hist_check(const hist *h, char *err, size_t errlen);

#endif /* DKV_HIST_H */
