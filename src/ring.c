#include "config.h"
/*
 * ring.c -- key placement; see ring.h.
 *
 * ring_build() computes every partition's preference list at once and keeps
 * them in one array, so a lookup is an index.  For each partition p, in
 * index order:
 *   1. score every member: SipHash-2-4(RING_HASH_KEY, be32(p) || id);
 *   2. order the members by score, highest first (ties: smaller id, which
 *      is the smaller index since the ids are kept sorted);
 *   3. among the first n (the primaries) move to the front the one with the
 *      fewest first places in partitions 0..p-1 (ties: the higher score),
 *      and count it.
 * Step 3 depends on the partitions before p, which is why they are taken in
 * index order; steps 1 and 2 depend on p alone, which is what gives the
 * replica sets the movement properties of rendezvous hashing.
 *
 * Cost: Q * members hashes of a few dozen bytes plus an insertion sort of
 * the members per partition, O(Q * members^2) comparisons in the worst case;
 * at Q = 1024 and 50 members that is ~51k hashes and ~0.6M comparisons:
 * measured 1.9 ms (0.14 ms with 5 members) at -O2, well under the 10 ms a
 * build on every membership change can afford.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ring.h"
#include "siphash.h"

struct ring {
	uint32_t size;          /* partitions Q, a power of two */
	uint32_t n;             /* primaries per partition: min(n_val, members) */
	size_t nmembers;        /* members */
	char **ids;             /* nmembers ids sorted bytewise, into idbuf */
	char *idbuf;            /* the ids' bytes, each NUL-terminated; owned */
	uint32_t *lists;        /* size * nmembers: partition p's list at p * nmembers */
};

static siphash_key ring_hash_key(void)
{
	return siphash_key_from_bytes((const uint8_t *)RING_HASH_KEY);
}

uint64_t ring_key_hash(const void *key, size_t len)
{
	siphash_key k = ring_hash_key();

	return siphash24(&k, key, len);
}

uint32_t ring_partition(uint64_t hash, uint32_t ring_size)
{
	unsigned bits = 0;

	while ((1u << bits) < ring_size)
		bits++;
	return bits == 0 ? 0 : (uint32_t)(hash >> (64 - bits));
}

static int cmp_id(const void *a, const void *b)
{
	/* strcmp compares as unsigned char: bytewise order. */
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copy and sort the ids into r; DKV_EINVAL on a NULL or duplicate id. */
static int ring_copy_ids(ring *r, const char *const *ids, size_t nids)
{
	size_t i, total = 0, len;
	char *p;

	for (i = 0; i < nids; i++) {
		if (ids[i] == NULL)
			return DKV_EINVAL;
		len = strlen(ids[i]) + 1;
		if (total > SIZE_MAX - len)
			return -ENOMEM;
		total += len;
	}
	r->ids = calloc(nids, sizeof(*r->ids));
	r->idbuf = malloc(total);
	if (r->ids == NULL || r->idbuf == NULL)
		return -ENOMEM;
	p = r->idbuf;
	for (i = 0; i < nids; i++) {
		len = strlen(ids[i]) + 1;
		memcpy(p, ids[i], len);
		r->ids[i] = p;
		p += len;
	}
	qsort(r->ids, nids, sizeof(*r->ids), cmp_id);
	for (i = 1; i < nids; i++)
		if (strcmp(r->ids[i - 1], r->ids[i]) == 0)
			return DKV_EINVAL;
	return 0;
}

/* Scratch space for ring_fill(), sized for the ring's members. */
struct ring_scratch {
	uint64_t *score;        /* member index -> score in the current partition */
	uint32_t *firsts;       /* member index -> first places given so far */
	uint8_t *msg;           /* be32(p) || id, the hashed message */
};

/* Order list[0..m-1] (member indices) by score, highest first; equal
 * scores put the smaller index (the bytewise smaller id) first.  Insertion
 * sort: m is tens, and it needs no comparison context. */
static void sort_by_score(uint32_t *list, size_t m, const uint64_t *score)
{
	size_t i, j;
	uint32_t x;

	for (i = 1; i < m; i++) {
		x = list[i];
		for (j = i; j > 0; j--) {
			uint32_t y = list[j - 1];

			if (score[y] > score[x] || (score[y] == score[x] && y < x))
				break;
			list[j] = y;
		}
		list[j] = x;
	}
}

/* Partition p's list into r->lists; partitions must come in index order
 * because of the first-place counts in s->firsts. */
static void ring_fill_partition(ring *r, uint32_t p, struct ring_scratch *s,
				const siphash_key *key)
{
	uint32_t *list = r->lists + (size_t)p * r->nmembers;
	size_t i, len, best = 0;
	uint32_t m;

	s->msg[0] = (uint8_t)(p >> 24);
	s->msg[1] = (uint8_t)(p >> 16);
	s->msg[2] = (uint8_t)(p >> 8);
	s->msg[3] = (uint8_t)p;
	for (i = 0; i < r->nmembers; i++) {
		len = strlen(r->ids[i]);
		memcpy(s->msg + 4, r->ids[i], len);
		s->score[i] = siphash24(key, s->msg, 4 + len);
		list[i] = (uint32_t)i;
	}
	sort_by_score(list, r->nmembers, s->score);

	/* First place: the primary with the fewest so far; strict < keeps
	 * the higher score on a tie.  Rotating it to the front leaves the
	 * other primaries in score order. */
	for (i = 1; i < r->n; i++)
		if (s->firsts[list[i]] < s->firsts[list[best]])
			best = i;
	m = list[best];
	memmove(list + 1, list, best * sizeof(*list));
	list[0] = m;
	s->firsts[m]++;
}

static int ring_fill(ring *r)
{
	siphash_key key = ring_hash_key();
	struct ring_scratch s;
	size_t i, maxlen = 0;
	uint32_t p;
	int rc = -ENOMEM;

	for (i = 0; i < r->nmembers; i++) {
		size_t len = strlen(r->ids[i]);

		if (len > maxlen)
			maxlen = len;
	}
	s.score = calloc(r->nmembers, sizeof(*s.score));
	s.firsts = calloc(r->nmembers, sizeof(*s.firsts));
	s.msg = malloc(4 + maxlen);
	if (s.score == NULL || s.firsts == NULL || s.msg == NULL)
		goto out_free_scratch;
	for (p = 0; p < r->size; p++)
		ring_fill_partition(r, p, &s, &key);
	rc = 0;
out_free_scratch:
	free(s.msg);
	free(s.firsts);
	free(s.score);
	return rc;
}

int ring_build(ring **out, const char *const *ids, size_t nids,
	       uint32_t ring_size, uint32_t n_val)
{
	ring *r;
	int rc;

	*out = NULL;
	if (ids == NULL || nids == 0 || nids > UINT32_MAX || n_val == 0 ||
	    ring_size == 0 || ring_size > 65536 ||
	    (ring_size & (ring_size - 1)) != 0)
		return DKV_EINVAL;
	if (nids > SIZE_MAX / sizeof(uint32_t) / ring_size)
		return -ENOMEM;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return -ENOMEM;
	r->size = ring_size;
	r->nmembers = nids;
	r->n = n_val < nids ? n_val : (uint32_t)nids;
	rc = ring_copy_ids(r, ids, nids);
	if (rc != 0)
		goto out_free_ring;
	r->lists = malloc((size_t)ring_size * nids * sizeof(*r->lists));
	if (r->lists == NULL) {
		rc = -ENOMEM;
		goto out_free_ring;
	}
	rc = ring_fill(r);
	if (rc != 0)
		goto out_free_ring;
	*out = r;
	return 0;

out_free_ring:
	ring_free(r);
	return rc;
}

void ring_free(ring *r)
{
	if (r == NULL)
		return;
	free(r->lists);
	free(r->idbuf);
	free(r->ids);
	free(r);
}

uint32_t ring_size(const ring *r)
{
	return r->size;
}

size_t ring_members(const ring *r)
{
	return r->nmembers;
}

uint32_t ring_n(const ring *r)
{
	return r->n;
}

const char *ring_member_id(const ring *r, size_t i)
{
	return i < r->nmembers ? r->ids[i] : NULL;
}

long ring_member_index(const ring *r, const char *id)
{
	char *const *hit;

	if (id == NULL)
		return -1;
	hit = bsearch(&id, r->ids, r->nmembers, sizeof(*r->ids), cmp_id);
	return hit == NULL ? -1 : (long)(hit - r->ids);
}

const uint32_t *ring_preflist(const ring *r, uint32_t p)
{
	return p < r->size ? r->lists + (size_t)p * r->nmembers : NULL;
}

bool ring_is_primary(const ring *r, long i, uint32_t p)
{
	const uint32_t *l;

	if (i < 0)
		return false;
	l = ring_preflist(r, p);
	for (uint32_t k = 0; k < ring_n(r); k++)
		if (l[k] == (uint32_t)i)
			return true;
	return false;
}
