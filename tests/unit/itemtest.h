/*
 * itemtest.h -- helpers the riblt and aaetree suites share: a seeded PRNG
 * whose seed each test prints, and an order on items.  Include it after
 * <criterion/criterion.h>.
 */
#ifndef DKV_ITEMTEST_H
#define DKV_ITEMTEST_H

#include <stdint.h>
#include <stdio.h>

#include "riblt.h"

/* splitmix64: a seeded PRNG, so every run sees the same inputs. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Print a test's seed (so a failure can be replayed) and return it. */
static inline uint64_t seed_of(const char *test, uint64_t seed)
{
	fprintf(stderr, "%s: seed %llu\n", test, (unsigned long long)seed);
	return seed;
}

/* qsort order on riblt_items: by keyhash, then objhash. */
static inline int cmp_item(const void *a, const void *b)
{
	const riblt_item *x = a, *y = b;

	if (x->keyhash != y->keyhash)
		return x->keyhash < y->keyhash ? -1 : 1;
	if (x->objhash != y->objhash)
		return x->objhash < y->objhash ? -1 : 1;
	return 0;
}

#endif /* DKV_ITEMTEST_H */
