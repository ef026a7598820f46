/*
 * aaetree.c -- the anti-entropy summary of a partition replica; see
 * aaetree.h.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "aaetree.h"

_Static_assert(sizeof(AAETREE_KEYHASH_KEY) == 17 && sizeof(AAETREE_OBJHASH_KEY) == 17,
	       "a SipHash key is 16 bytes");

/* Fewest slots; the table is 2^MIN_BITS slots or more. */
#define MIN_BITS 4
/* Most fill before growing: LOAD_NUM / LOAD_DEN of the slots. */
#define LOAD_NUM 3
#define LOAD_DEN 4

struct aaetree {
	siphash_key hkey;       /* places entries in slots; fixed for the tree's life */
	riblt_item *slots;      /* owned; 2^bits entries, keyhash 0 = empty */
	unsigned bits;          /* log2 of the slots; 0 before the first insert */
	size_t used;            /* entries in slots */
	bool has_zero;          /* true iff the item with keyhash 0 is present */
	uint64_t zero_obj;      /* its objhash, when has_zero */
	aaetree_digest root;    /* count and XOR of checksums of every item */
};

uint64_t aaetree_keyhash(const void *key, size_t len)
{
	static const uint8_t k[16] = AAETREE_KEYHASH_KEY;
	const siphash_key key16 = siphash_key_from_bytes(k);

	return siphash24(&key16, key, len);
}

uint64_t aaetree_objhash(const void *obj, size_t len)
{
	static const uint8_t k[16] = AAETREE_OBJHASH_KEY;
	const siphash_key key16 = siphash_key_from_bytes(k);

	return siphash24(&key16, obj, len);
}

/* The home slot of keyhash in a table of 2^bits slots (bits >= 1): the top
 * bits of murmur3's fmix64 finalizer of keyhash XOR the secret k0, plus
 * k1.  Not a PRF, but a bijection whose output an attacker cannot predict
 * without the key, and three times cheaper than SipHash of 8 bytes (the
 * difference is a third of an update's time; see aaetree.h). */
static inline size_t home(const siphash_key *hkey, unsigned bits, uint64_t keyhash)
{
	uint64_t x = keyhash ^ hkey->k0;

	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	x *= UINT64_C(0xc4ceb9fe1a85ec53);
	x ^= x >> 33;
	return (size_t)((x + hkey->k1) >> (64 - bits));
}

static size_t nslots(const aaetree *t)
{
	return t->slots ? (size_t)1 << t->bits : 0;
}

/* The slot holding keyhash (not 0), or SIZE_MAX. */
static size_t find(const aaetree *t, uint64_t keyhash)
{
	size_t mask = nslots(t) - 1;

	if (t->slots == NULL)
		return SIZE_MAX;
	for (size_t i = home(&t->hkey, t->bits, keyhash);; i = (i + 1) & mask) {
		if (t->slots[i].keyhash == keyhash)
			return i;
		if (t->slots[i].keyhash == 0)
			return SIZE_MAX;
	}
}

/* Put an entry whose keyhash is absent into the first empty slot from its
 * home.  The table has an empty slot. */
static void place(riblt_item *slots, unsigned bits, const siphash_key *hkey, riblt_item it)
{
	size_t mask = ((size_t)1 << bits) - 1;
	size_t i = home(hkey, bits, it.keyhash);

	while (slots[i].keyhash != 0)
		i = (i + 1) & mask;
	slots[i] = it;
}

/* Rebuild the table with 2^bits slots.  0 or -ENOMEM (t unchanged). */
static int rehash(aaetree *t, unsigned bits)
{
	riblt_item *ns;
	size_t old = nslots(t);

	if (bits >= sizeof(size_t) * 8 - 5)
		return -ENOMEM;
	ns = calloc((size_t)1 << bits, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < old; i++)
		if (t->slots[i].keyhash != 0)
			place(ns, bits, &t->hkey, t->slots[i]);
	free(t->slots);
	t->slots = ns;
	t->bits = bits;
	return 0;
}

/* The fewest bits whose table holds n entries within the load limit. */
static unsigned bits_for(size_t n)
{
	unsigned bits = MIN_BITS;

	while (bits < sizeof(size_t) * 8 - 5 &&
	       (((size_t)1 << bits) / LOAD_DEN) * LOAD_NUM < n)
		bits++;
	return bits;
}

int aaetree_new(aaetree **out, const siphash_key *hkey)
{
	aaetree *t = calloc(1, sizeof(*t));

	*out = t;
	if (t == NULL)
		return -ENOMEM;
	t->hkey = *hkey;
	return 0;
}

void aaetree_free(aaetree *t)
{
	if (t == NULL)
		return;
	free(t->slots);
	free(t);
}

int aaetree_reserve(aaetree *t, size_t n)
{
	unsigned bits = bits_for(n);

	if (t->slots != NULL && bits <= t->bits)
		return 0;
	return rehash(t, bits);
}

static inline uint64_t item_check(uint64_t keyhash, uint64_t objhash)
{
	const riblt_item it = { .keyhash = keyhash, .objhash = objhash };

	return riblt_item_checksum(&it);
}

int aaetree_update(aaetree *t, uint64_t keyhash, uint64_t objhash)
{
	size_t i;
	int rc;

	if (keyhash == 0) {
		if (t->has_zero) {
			t->root.hash ^= item_check(0, t->zero_obj);
		} else {
			t->has_zero = true;
			t->root.count++;
		}
		t->zero_obj = objhash;
		t->root.hash ^= item_check(0, objhash);
		return 0;
	}
	i = find(t, keyhash);
	if (i != SIZE_MAX) {
		t->root.hash ^= item_check(keyhash, t->slots[i].objhash) ^ item_check(keyhash, objhash);
		t->slots[i].objhash = objhash;
		return 0;
	}
	if (t->slots == NULL || t->used + 1 > (nslots(t) / LOAD_DEN) * LOAD_NUM) {
		rc = rehash(t, t->slots == NULL ? MIN_BITS : t->bits + 1);
		if (rc != 0)
			return rc;
	}
	place(t->slots, t->bits, &t->hkey, (riblt_item){ .keyhash = keyhash, .objhash = objhash });
	t->used++;
	t->root.count++;
	t->root.hash ^= item_check(keyhash, objhash);
	return 0;
}

bool aaetree_remove(aaetree *t, uint64_t keyhash)
{
	size_t mask, hole, j;

	if (keyhash == 0) {
		if (!t->has_zero)
			return false;
		t->has_zero = false;
		t->root.count--;
		t->root.hash ^= item_check(0, t->zero_obj);
		t->zero_obj = 0;
		return true;
	}
	hole = find(t, keyhash);
	if (hole == SIZE_MAX)
		return false;
	t->root.count--;
	t->root.hash ^= item_check(keyhash, t->slots[hole].objhash);
	t->used--;

	/* Backward shift: move each following entry of the run into the hole
	 * when its home is not cyclically in (hole, j], so no probe ever meets
	 * a gap between an entry and its home. */
	mask = nslots(t) - 1;
	for (j = (hole + 1) & mask; t->slots[j].keyhash != 0; j = (j + 1) & mask) {
		size_t h = home(&t->hkey, t->bits, t->slots[j].keyhash);

		if (((j - h) & mask) >= ((j - hole) & mask)) {
			t->slots[hole] = t->slots[j];
			hole = j;
		}
	}
	t->slots[hole] = (riblt_item){ 0 };
	return true;
}

bool aaetree_contains(const aaetree *t, uint64_t keyhash, uint64_t *objhash)
{
	size_t i;

	if (keyhash == 0) {
		if (t->has_zero && objhash != NULL)
			*objhash = t->zero_obj;
		return t->has_zero;
	}
	i = find(t, keyhash);
	if (i == SIZE_MAX)
		return false;
	if (objhash != NULL)
		*objhash = t->slots[i].objhash;
	return true;
}

size_t aaetree_count(const aaetree *t)
{
	return (size_t)t->root.count;
}

aaetree_digest aaetree_root(const aaetree *t)
{
	return t->root;
}

bool aaetree_digest_equal(aaetree_digest a, aaetree_digest b)
{
	return a.count == b.count && a.hash == b.hash;
}

size_t aaetree_memory(const aaetree *t)
{
	return sizeof(*t) + nslots(t) * sizeof(riblt_item);
}

bool aaetree_next(const aaetree *t, aaetree_iter *it, riblt_item *out)
{
	size_t n = nslots(t);

	if (it->pos == 0) {
		it->pos = 1;
		if (t->has_zero) {
			*out = (riblt_item){ .keyhash = 0, .objhash = t->zero_obj };
			return true;
		}
	}
	while (it->pos - 1 < n) {
		const riblt_item *s = &t->slots[it->pos++ - 1];

		if (s->keyhash != 0) {
			*out = *s;
			return true;
		}
	}
	return false;
}

int aaetree_encode(const aaetree *t, riblt_encoder *enc)
{
	aaetree_iter it = AAETREE_ITER_INIT;
	riblt_item item;
	int rc = riblt_encoder_reserve(enc, riblt_encoder_items(enc) + aaetree_count(t));

	while (rc == 0 && aaetree_next(t, &it, &item))
		rc = riblt_encoder_add(enc, &item);
	return rc;
}

int aaetree_check(const aaetree *t, char *err, size_t errlen)
{
	size_t n = nslots(t), mask = n - 1, used = 0;
	uint64_t hash = t->has_zero ? item_check(0, t->zero_obj) : 0;

	if (!t->has_zero && t->zero_obj != 0) {
		snprintf(err, errlen, "zero_obj set without the zero item");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const riblt_item *s = &t->slots[i];

		if (s->keyhash == 0) {
			if (s->objhash != 0) {
				snprintf(err, errlen, "empty slot %zu has objhash", i);
				return -1;
			}
			continue;
		}
		used++;
		hash ^= item_check(s->keyhash, s->objhash);
		/* Every slot from home to i is full, and holds another key. */
		for (size_t j = home(&t->hkey, t->bits, s->keyhash); j != i; j = (j + 1) & mask) {
			if (t->slots[j].keyhash == 0) {
				snprintf(err, errlen, "slot %zu unreachable: gap at %zu", i, j);
				return -1;
			}
			if (t->slots[j].keyhash == s->keyhash) {
				snprintf(err, errlen, "keyhash of slot %zu also at %zu", i, j);
				return -1;
			}
		}
	}
	if (used != t->used || used + t->has_zero != t->root.count) {
		snprintf(err, errlen, "count %llu, used %zu, found %zu",
			 (unsigned long long)t->root.count, t->used, used);
		return -1;
	}
	if (n > 0 && used > (n / LOAD_DEN) * LOAD_NUM) {
		snprintf(err, errlen, "%zu entries in %zu slots", used, n);
		return -1;
	}
	if (hash != t->root.hash) {
		snprintf(err, errlen, "root hash %016llx, items give %016llx",
			 (unsigned long long)t->root.hash, (unsigned long long)hash);
		return -1;
	}
	return 0;
}
