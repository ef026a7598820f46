#include "config.h"
/*
 * test_ring.c -- src/ring.c: key positions and partitions against the
 * worked example of dynkv-format(5); preference lists checked against a
 * reference written here from ring.h's description (independent of the
 * order of the ids given); the shape of every list; the inputs ring_build()
 * rejects; and the placement properties of DESIGN section 5 measured over
 * seeded random member sets: balance of replicas and of first places, what
 * moves when a member joins or leaves.
 *
 * Every random input comes from a fixed-seed PRNG, so the figures asserted
 * here are the same on every run.  Those of the balance tests, for the man
 * page (5 members, n_val 3; the 1000 random sets of measure_balance() plus
 * 127.0.0.1:7071..7075; "moved" is the mean over 1000 other random sets of
 * the fraction of replicas a 6th member takes, 1/6 expected):
 *
 *   ring_size  busiest replicas/mean  busiest firsts/mean  sets over  moved
 *              median    max          median    max        1.15x
 *     64       1.120     1.328        1.016     1.094      281        0.1672
 *    128       1.094     1.237        1.016     1.055       90        0.1673
 *    256       1.061     1.172        1.016     1.016        7        0.1670
 *    512       1.042     1.126        1.006     1.016        0        0.1670
 *   1024       1.030     1.090        1.001     1.006        0        0.1668
 *
 * so 512 is the smallest ring_size at which every set meets 1.15x.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "ring.h"
#include "siphash.h"
#include "testutil.h"

/* --- helpers ----------------------------------------------------------- */

#define MAXM 64         /* most members any test builds */
#define ID_LEN 32

/* splitmix64: a seeded PRNG, so every run sees the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A set of member ids, in the order they are given to ring_build(). */
typedef struct idset {
	char buf[MAXM][ID_LEN];         /* the ids' bytes */
	const char *ids[MAXM];          /* ids[i] == buf[i] */
	size_t n;                       /* ids in use */
} idset;

static void idset_init(idset *s)
{
	for (size_t i = 0; i < MAXM; i++)
		s->ids[i] = s->buf[i];
	s->n = 0;
}

static bool idset_has(const idset *s, const char *id)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->buf[i], id) == 0)
			return true;
	return false;
}

/* Append one random id "10.a.b.c:7070" not already in s. */
static void idset_add_random(idset *s, uint64_t *seed)
{
	char id[ID_LEN];

	cr_assert_lt(s->n, MAXM);
	do {
		uint64_t x = rng_next(seed);

		snprintf(id, sizeof(id), "10.%u.%u.%u:7070", (unsigned)(x & 255),
			 (unsigned)((x >> 8) & 255), (unsigned)((x >> 16) & 255));
	} while (idset_has(s, id));
	memcpy(s->buf[s->n++], id, sizeof(id));
}

static void idset_random(idset *s, size_t n, uint64_t *seed)
{
	idset_init(s);
	while (s->n < n)
		idset_add_random(s, seed);
}

/* The ids a test cluster on one machine uses: 127.0.0.1:7071, 7072, ... */
static void idset_local(idset *s, size_t n)
{
	idset_init(s);
	for (; s->n < n; s->n++)
		snprintf(s->buf[s->n], ID_LEN, "127.0.0.1:%u", 7071u + (unsigned)s->n);
}

static void idset_shuffle(idset *s, uint64_t *seed)
{
	char tmp[ID_LEN];

	for (size_t i = s->n; i > 1; i--) {
		size_t j = (size_t)(rng_next(seed) % i);

		memcpy(tmp, s->buf[i - 1], ID_LEN);
		memcpy(s->buf[i - 1], s->buf[j], ID_LEN);
		memcpy(s->buf[j], tmp, ID_LEN);
	}
}

/* A copy of s without its member k. */
static void idset_without(idset *out, const idset *s, size_t k)
{
	idset_init(out);
	for (size_t i = 0; i < s->n; i++)
		if (i != k)
			memcpy(out->buf[out->n++], s->buf[i], ID_LEN);
}

static ring *build(const idset *s, uint32_t q, uint32_t n_val)
{
	ring *r = NULL;

	cr_assert_eq(ring_build(&r, s->ids, s->n, q, n_val), 0,
		     "ring_build of %zu ids, ring_size %u, n_val %u", s->n, q, n_val);
	cr_assert_not_null(r);
	return r;
}

/* Partition p's list entry j, as an id. */
static const char *pref_id(const ring *r, uint32_t p, size_t j)
{
	return ring_member_id(r, ring_preflist(r, p)[j]);
}

/* Is id among p's primaries in r? */
static bool is_primary(const ring *r, uint32_t p, const char *id)
{
	for (uint32_t j = 0; j < ring_n(r); j++)
		if (strcmp(pref_id(r, p, j), id) == 0)
			return true;
	return false;
}

/* Structural invariants: the ids sorted and distinct, found again by
 * ring_member_index(), and every list a permutation of the members. */
static void check_shape(const ring *r)
{
	size_t m = ring_members(r);
	bool seen[MAXM];

	cr_assert_leq(m, MAXM);
	cr_assert_geq(ring_n(r), 1);
	cr_assert_leq(ring_n(r), m);
	for (size_t i = 0; i < m; i++) {
		cr_assert_eq(ring_member_index(r, ring_member_id(r, i)), (long)i);
		if (i > 0)
			cr_assert_lt(strcmp(ring_member_id(r, i - 1), ring_member_id(r, i)), 0);
	}
	for (uint32_t p = 0; p < ring_size(r); p++) {
		const uint32_t *l = ring_preflist(r, p);

		cr_assert_not_null(l);
		memset(seen, 0, sizeof(seen));
		for (size_t j = 0; j < m; j++) {
			cr_assert_lt(l[j], m, "partition %u entry %zu", p, j);
			cr_assert(!seen[l[j]], "partition %u lists member %u twice", p, l[j]);
			seen[l[j]] = true;
		}
	}
}

/* The placement score, computed here from ring.h's words rather than
 * borrowed from ring.c: SipHash-2-4(RING_HASH_KEY, be32(p) || id). */
static uint64_t ref_score(uint32_t p, const char *id)
{
	siphash_key k = siphash_key_from_bytes((const uint8_t *)RING_HASH_KEY);
	uint8_t msg[4 + ID_LEN];
	size_t len = strlen(id);

	cr_assert_lt(len, ID_LEN);
	msg[0] = (uint8_t)(p >> 24);
	msg[1] = (uint8_t)(p >> 16);
	msg[2] = (uint8_t)(p >> 8);
	msg[3] = (uint8_t)p;
	memcpy(msg + 4, id, len);
	return siphash24(&k, msg, 4 + len);
}

/* Does member a come before b in p's score order? */
static bool ref_before(uint32_t p, const char *a, const char *b)
{
	uint64_t sa = ref_score(p, a), sb = ref_score(p, b);

	return sa > sb || (sa == sb && strcmp(a, b) < 0);
}

/* Check every list of r against ring.h's description: primaries the
 * n highest scores, first place by the greedy count over partitions in
 * index order (ties to the higher score), then the other primaries and the
 * fallbacks each in score order. */
static void check_against_reference(const ring *r)
{
	size_t m = ring_members(r);
	uint32_t n = ring_n(r), firsts[MAXM] = { 0 };

	for (uint32_t p = 0; p < ring_size(r); p++) {
		const uint32_t *l = ring_preflist(r, p);
		uint32_t want_first = UINT32_MAX;

		/* Entries 1..n-1 and n..m-1 in score order. */
		for (size_t j = 2; j < n; j++)
			cr_assert(ref_before(p, pref_id(r, p, j - 1), pref_id(r, p, j)),
				  "partition %u primaries %zu,%zu out of order", p, j - 1, j);
		for (size_t j = n + 1; j < m; j++)
			cr_assert(ref_before(p, pref_id(r, p, j - 1), pref_id(r, p, j)),
				  "partition %u fallbacks %zu,%zu out of order", p, j - 1, j);
		/* Every primary outscores every fallback. */
		for (size_t i = 0; i < n; i++)
			for (size_t j = n; j < m; j++)
				cr_assert(ref_before(p, pref_id(r, p, i), pref_id(r, p, j)),
					  "partition %u: fallback %zu outscores primary %zu", p, j, i);
		/* First place: fewest firsts so far, then highest score. */
		for (size_t i = 0; i < n; i++) {
			uint32_t c = l[i];

			if (want_first == UINT32_MAX || firsts[c] < firsts[want_first] ||
			    (firsts[c] == firsts[want_first] &&
			     ref_before(p, ring_member_id(r, c), ring_member_id(r, want_first))))
				want_first = c;
		}
		cr_assert_eq(l[0], want_first, "partition %u first place", p);
		firsts[l[0]]++;
	}
}

/* The busiest member's replica count and first-place count, each over its
 * mean (Q * n / members and Q / members). */
static void busiest(const ring *r, double *replicas, double *firsts)
{
	uint32_t rc[MAXM] = { 0 }, fc[MAXM] = { 0 }, mr = 0, mf = 0;
	size_t m = ring_members(r);
	double q = ring_size(r);

	for (uint32_t p = 0; p < ring_size(r); p++) {
		const uint32_t *l = ring_preflist(r, p);

		for (uint32_t j = 0; j < ring_n(r); j++)
			rc[l[j]]++;
		fc[l[0]]++;
	}
	for (size_t i = 0; i < m; i++) {
		if (rc[i] > mr)
			mr = rc[i];
		if (fc[i] > mf)
			mf = fc[i];
	}
	*replicas = mr / (q * ring_n(r) / (double)m);
	*firsts = mf / (q / (double)m);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* --- key positions ------------------------------------------------------- */

TestSuite(ring, .description = "key placement and preference lists");

Test(ring, greeting_is_in_the_documented_partitions)
{
	/* dynkv-format(5), PARTITIONS. */
	uint64_t h = ring_key_hash("greeting", 8);

	cr_assert_eq(h, UINT64_C(0x59901eed4bfd3645));
	cr_assert_eq(ring_partition(h, 256), 89);
	cr_assert_eq(ring_partition(h, 64), 22);
	cr_assert_eq(ring_partition(h, 1024), 358);
	h = ring_key_hash("k", 1);
	cr_assert_eq(h, UINT64_C(0x23a793d7cb581256));
	cr_assert_eq(ring_partition(h, 256), 35);
}

Test(ring, partition_is_the_top_bits)
{
	uint64_t seed = 1;

	for (uint32_t bits = 0; bits <= 16; bits++) {
		uint32_t q = 1u << bits;

		cr_assert_eq(ring_partition(0, q), 0);
		cr_assert_eq(ring_partition(UINT64_MAX, q), q - 1);
		for (int i = 0; i < 1000; i++) {
			uint64_t h = rng_next(&seed);
			uint32_t want = bits == 0 ? 0 : (uint32_t)(h >> (64 - bits));

			cr_assert_eq(ring_partition(h, q), want, "hash %llx, Q %u",
				     (unsigned long long)h, q);
			cr_assert_lt(ring_partition(h, q), q);
		}
	}
	/* Arc boundaries: the last position of partition 88 and the first of
	 * 89 in a ring of 256. */
	cr_assert_eq(ring_partition(UINT64_C(0x58ffffffffffffff), 256), 88);
	cr_assert_eq(ring_partition(UINT64_C(0x5900000000000000), 256), 89);
	cr_assert_eq(ring_key_hash(NULL, 0), ring_key_hash("", 0));
}

/* --- preference lists ---------------------------------------------------- */

Test(ring, lists_follow_the_documented_algorithm)
{
	uint64_t seed = 7;
	idset s;
	ring *r;

	for (size_t m = 1; m <= 9; m++) {
		for (uint32_t n_val = 1; n_val <= 5; n_val++) {
			idset_random(&s, m, &seed);
			r = build(&s, 64, n_val);
			check_shape(r);
			check_against_reference(r);
			ring_free(r);
		}
	}
	idset_local(&s, 5);
	r = build(&s, 256, 3);
	check_against_reference(r);
	ring_free(r);
}

/* Golden lists: placement is part of the data format (every node and
 * every version must agree), so a change here is a decision, not a fix.
 * The figures were checked against a separate SipHash-2-4 and placement
 * written in Python from the paper and ring.h. */
Test(ring, golden_lists_for_local_ids)
{
	static const uint32_t want[4][5] = {
		{ 4, 0, 2, 1, 3 },
		{ 0, 1, 2, 4, 3 },
		{ 1, 4, 0, 3, 2 },
		{ 4, 0, 1, 3, 2 },
	};
	idset s;
	ring *r;

	/* The score of 127.0.0.1:7071 in partition 0, pinning ref_score(). */
	cr_assert_eq(ref_score(0, "127.0.0.1:7071"), UINT64_C(0x94199e82ba34dc4d));
	idset_local(&s, 5);
	r = build(&s, 64, 3);
	for (uint32_t p = 0; p < 4; p++)
		for (size_t j = 0; j < 5; j++)
			cr_assert_eq(ring_preflist(r, p)[j], want[p][j],
				     "partition %u entry %zu is %u", p, j, ring_preflist(r, p)[j]);
	ring_free(r);
}

Test(ring, order_of_ids_does_not_matter)
{
	uint64_t seed = 11;
	idset s;
	ring *ref, *r;

	idset_random(&s, 8, &seed);
	ref = build(&s, 256, 3);
	for (int round = 0; round < 10; round++) {
		idset_shuffle(&s, &seed);
		r = build(&s, 256, 3);
		cr_assert_eq(ring_members(r), ring_members(ref));
		for (size_t i = 0; i < ring_members(r); i++)
			cr_assert_str_eq(ring_member_id(r, i), ring_member_id(ref, i));
		for (uint32_t p = 0; p < 256; p++)
			for (size_t j = 0; j < ring_members(r); j++)
				cr_assert_str_eq(pref_id(r, p, j), pref_id(ref, p, j),
						 "round %d partition %u entry %zu", round, p, j);
		ring_free(r);
	}
	ring_free(ref);
}

Test(ring, lists_have_every_member_once)
{
	uint64_t seed = 13;
	idset s;

	for (size_t m = 1; m <= 12; m++) {
		for (uint32_t n_val = 1; n_val <= 14; n_val++) {
			ring *r;

			idset_random(&s, m, &seed);
			r = build(&s, 128, n_val);
			cr_assert_eq(ring_size(r), 128);
			cr_assert_eq(ring_members(r), m);
			cr_assert_eq(ring_n(r), n_val < m ? n_val : m,
				     "members %zu n_val %u", m, n_val);
			check_shape(r);
			ring_free(r);
		}
	}
	/* The extremes of ring_size, and the empty id. */
	{
		const char *ids[] = { "b", "", "a" };
		ring *r = NULL;

		cr_assert_eq(ring_build(&r, ids, 3, 1, 3), 0);
		check_shape(r);
		cr_assert_str_eq(ring_member_id(r, 0), "");
		cr_assert_eq(ring_member_index(r, ""), 0);
		ring_free(r);
		cr_assert_eq(ring_build(&r, ids, 3, 65536, 2), 0);
		check_shape(r);
		ring_free(r);
	}
}

Test(ring, rejects_bad_input)
{
	const char *ids[] = { "10.0.0.1:7070", "10.0.0.2:7070", "10.0.0.1:7070" };
	const char *withnull[] = { "10.0.0.1:7070", NULL };
	static const uint32_t bad_q[] = { 0, 3, 96, 1000, 65535, 131072, UINT32_MAX };
	ring *r = (ring *)&r;   /* not NULL: ring_build must clear it */

	cr_assert_eq(ring_build(&r, ids, 0, 64, 3), DKV_EINVAL);
	cr_assert_null(r);
	cr_assert_eq(ring_build(&r, ids, 3, 64, 3), DKV_EINVAL, "duplicate ids");
	cr_assert_null(r);
	cr_assert_eq(ring_build(&r, withnull, 2, 64, 3), DKV_EINVAL);
	cr_assert_eq(ring_build(&r, ids, 2, 64, 0), DKV_EINVAL, "n_val 0");
	for (size_t i = 0; i < sizeof(bad_q) / sizeof(bad_q[0]); i++) {
		cr_assert_eq(ring_build(&r, ids, 2, bad_q[i], 3), DKV_EINVAL,
			     "ring_size %u", bad_q[i]);
		cr_assert_null(r);
	}

	cr_assert_eq(ring_build(&r, ids, 2, 64, 3), 0);
	cr_assert_eq(ring_member_index(r, "10.0.0.3:7070"), -1);
	cr_assert_eq(ring_member_index(r, "10.0.0.1:707"), -1);
	cr_assert_eq(ring_member_index(r, "10.0.0.1:70700"), -1);
	cr_assert_eq(ring_member_index(r, ""), -1);
	cr_assert_eq(ring_member_index(r, NULL), -1);
	cr_assert_eq(ring_member_index(r, "10.0.0.2:7070"), 1);
	cr_assert_null(ring_member_id(r, 2));
	cr_assert_null(ring_preflist(r, 64));
	ring_free(r);
	ring_free(NULL);
}

/* --- placement properties (DESIGN section 5) ----------------------------- */

#define BALANCE_SETS 1000

/* Over BALANCE_SETS random sets of `members` ids plus the local ids, the
 * median and max of the busiest member's replicas/mean and firsts/mean at
 * ring_size q, n_val 3, and how many sets exceed 1.15x in replicas. */
struct balance {
	double rep_med, rep_max;        /* busiest replicas / mean */
	double first_med, first_max;    /* busiest first places / mean */
	int rep_over;                   /* sets with replicas > 1.15x */
};

static struct balance measure_balance(size_t members, uint32_t q)
{
	static double rep[BALANCE_SETS + 1], first[BALANCE_SETS + 1];
	const int sets = (int)test_reps(BALANCE_SETS, 50);
	uint64_t seed = 2024;
	struct balance b = { 0 };
	idset s;

	for (int i = 0; i <= sets; i++) {
		ring *r;

		if (i < sets)
			idset_random(&s, members, &seed);
		else
			idset_local(&s, members);
		r = build(&s, q, 3);
		busiest(r, &rep[i], &first[i]);
		if (rep[i] > 1.15)
			b.rep_over++;
		ring_free(r);
	}
	qsort(rep, (size_t)sets + 1, sizeof(double), cmp_double);
	qsort(first, (size_t)sets + 1, sizeof(double), cmp_double);
	b.rep_med = rep[sets / 2];
	b.rep_max = rep[sets];
	b.first_med = first[sets / 2];
	b.first_max = first[sets];
	return b;
}

Test(ring, five_members_balance_from_ring_size_512, .timeout = 600)
{
	/* 512 is the smallest ring_size meeting DESIGN's 1.15x for every set:
	 * at 256 some sets miss it (7 of 1001), so assert that too, or this
	 * test would not notice the claim going stale. */
	struct balance b;

	for (uint32_t q = 512; q <= 1024; q *= 2) {
		b = measure_balance(5, q);
		cr_assert_leq(b.rep_max, 1.15, "Q %u: busiest replicas %.3fx", q, b.rep_max);
		cr_assert_leq(b.first_max, 1.25, "Q %u: busiest firsts %.3fx", q, b.first_max);
		cr_assert_eq(b.rep_over, 0);
	}
	if (test_reps(1, 0) == 0)
		return;   /* 50 sets (valgrind) are too few to meet a 7-in-1000 miss */
	b = measure_balance(5, 256);
	cr_assert_gt(b.rep_over, 0, "256 would do: every set within 1.15x");
	cr_assert_gt(b.rep_max, 1.15);
}

Test(ring, first_places_balance_with_three_to_five_members, .timeout = 600)
{
	/* Greedy first places stay near the mean at every ring_size even
	 * where the replica sets do not: the worst is one place over Q/m
	 * rounded up (5 members, Q 64: 14 / 12.8 = 1.094). */
	for (size_t m = 3; m <= 5; m++) {
		for (uint32_t q = 64; q <= 1024; q *= 4) {
			struct balance b = measure_balance(m, q);

			cr_assert_leq(b.first_max, 1.10, "%zu members, Q %u: firsts %.3fx",
				      m, q, b.first_max);
		}
	}
}

/* Add a new member to random 5-member sets: in every partition the new
 * primaries are the old ones, or the old ones with exactly one replaced by
 * the newcomer; the newcomer takes about 1/(members+1) of the replicas. */
Test(ring, join_moves_replicas_only_to_the_newcomer, .timeout = 600)
{
	static const uint32_t sizes[] = { 64, 256, 1024 };
	uint64_t seed = 99;

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint32_t q = sizes[k];
		double moved_sum = 0;
		int sets = (int)test_reps(100, 10);

		for (int i = 0; i < sets; i++) {
			idset s;
			ring *before, *after;
			const char *newcomer;
			long moved = 0;

			idset_random(&s, 5, &seed);
			before = build(&s, q, 3);
			idset_add_random(&s, &seed);
			newcomer = s.buf[5];
			after = build(&s, q, 3);
			for (uint32_t p = 0; p < q; p++) {
				int lost = 0, gained = 0;

				for (uint32_t j = 0; j < 3; j++)
					if (!is_primary(after, p, pref_id(before, p, j)))
						lost++;
				gained = is_primary(after, p, newcomer);
				cr_assert_eq(lost, gained,
					     "Q %u partition %u: a replica moved between old members", q, p);
				moved += gained;
			}
			moved_sum += moved / (double)(q * 3);
			ring_free(after);
			ring_free(before);
		}
		/* Expected 1/6: the newcomer is a primary of 3/6 of the
		 * partitions, one replica each.  Measured 0.166..0.167. */
		cr_assert_geq(moved_sum / sets, 0.9 / 6, "Q %u moved %.4f", q, moved_sum / sets);
		cr_assert_leq(moved_sum / sets, 1.1 / 6, "Q %u moved %.4f", q, moved_sum / sets);
	}
}

/* Remove each member of random 6-member sets in turn: only the removed
 * member's replicas move, each to the old first fallback. */
Test(ring, removal_moves_only_the_removed_members_replicas)
{
	uint64_t seed = 5150;

	for (int i = 0; i < 20; i++) {
		idset s, less;
		ring *before;

		idset_random(&s, 6, &seed);
		before = build(&s, 256, 3);
		for (size_t k = 0; k < s.n; k++) {
			ring *after;
			const char *gone = s.buf[k];

			idset_without(&less, &s, k);
			after = build(&less, 256, 3);
			for (uint32_t p = 0; p < 256; p++) {
				bool was = is_primary(before, p, gone);

				for (uint32_t j = 0; j < 3; j++) {
					const char *id = pref_id(before, p, j);

					if (strcmp(id, gone) != 0)
						cr_assert(is_primary(after, p, id),
							  "partition %u: %s lost a replica", p, id);
				}
				cr_assert(!was || is_primary(after, p, pref_id(before, p, 3)),
					  "partition %u: the first fallback did not take over", p);
			}
			ring_free(after);
		}
		ring_free(before);
	}
}
