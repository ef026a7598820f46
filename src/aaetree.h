/*
 * aaetree.h -- the anti-entropy summary of one partition replica: the set of
 * its (keyhash, objhash) items, a root digest that says in O(1) whether two
 * replicas hold the same set, and the feed of a riblt encoder (riblt.h)
 * that finds the items they do not share when they do not.
 *
 * The name comes from Riak's AAE hash trees.  This one is flat: the root is
 * its only level, and the descent a Merkle tree would make (a round trip
 * per level, bytes growing with the tree's fan-out) is replaced by one RIBLT
 * exchange whose size grows with the number of differences alone.
 *
 * ITEMS
 *   keyhash = SipHash-2-4 of the key's bytes under AAETREE_KEYHASH_KEY, the
 *             16 ASCII bytes "dynkv aae key 01";
 *   objhash = SipHash-2-4 of the object's canonical encoding (object.h,
 *             ENCODING: equal objects encode to equal bytes) under
 *             AAETREE_OBJHASH_KEY, "dynkv aae obj 01".
 *   Both keys are part of the protocol: replicas compare these hashes, so
 *   every node and version must agree on them.  They differ from the ring's
 *   key (ring.h) so that the keyhash says nothing about placement and the
 *   two hashes of one key are unrelated.  A tree holds at most one item per
 *   keyhash; two keys with one keyhash (2^-64 per pair) would share an entry
 *   and anti-entropy would not see them apart.
 *
 * THE ROOT
 *   (count, hash): the number of items and the XOR of riblt_item_checksum()
 *   of every item.  XOR is commutative and its own inverse, so the root
 *   depends on the set alone, whatever the order of updates, and each
 *   update costs O(1): replacing (k, o1) by (k, o2) XORs out o1's item and
 *   XORs in o2's.  Since an item's checksum is the one the RIBLT uses, the
 *   root is the (count, check) of the encoder's symbol 0, to which every
 *   item maps.  Equal sets give equal roots; unequal sets of honest data
 *   give equal roots with chance 2^-64.  Caveat: the checksum key is public,
 *   so someone who controls the objects on one replica could, with
 *   effort, make a different set with the same root (Gaussian elimination
 *   over 65 chosen items); an exchange that trusts the root to skip work is
 *   blind to that.
 *
 * THE TABLE
 *   Open addressing with linear probing over a power-of-two array of
 *   16-byte entries {keyhash, objhash}; keyhash 0 marks an empty slot, so
 *   the item with keyhash 0, if any, is kept beside the table.  An entry's
 *   home slot is the top bits of a keyed mix of its keyhash (murmur3's
 *   fmix64 of keyhash XOR k0, plus k1, with the key given to aaetree_new(),
 *   random per process), so that no client can choose keys whose entries
 *   pile onto one slot: keyhashes are SipHash under a public key, and
 *   anyone could grind keys that share their low bits.  The mix is not a
 *   PRF, but an attacker who cannot see the table cannot aim at a slot, and
 *   it costs a third of SipHash-2-4.  Removal shifts the
 *   following entries back (no tombstones), so a probe stops at the first
 *   empty slot.  The table doubles when an insert would make it more than
 *   3/4 full, and holds at least 16 slots.
 *
 * MEMORY PER KEY
 *   A table of 2^b slots holds 3/8 to 3/4 * 2^b keys after it has grown:
 *   16 / 0.75 = 21.3 to 16 / 0.375 = 42.7 bytes per key, 31 on average
 *   (a log-uniform fill, 16 / (0.375 ln 2) * (1/2)).  1M keys: 2^21 slots,
 *   32 MiB, at 48% full.  Feeding a riblt encoder costs another 40 bytes
 *   per item while the encoder lives.  Probes at 3/4 full, expected (Knuth):
 *   2.5 slots to find a key, 8.5 to miss, four entries to a cache line.
 *
 * TIME
 *   An update costs one probe (a cache miss in a large table) and one or
 *   two SipHash-2-4 of 16 bytes for the root (about 45 ns each): measured
 *   by tests/unit/test_aaetree.c on x86-64, 1M inserts of fresh keys into
 *   an empty tree (growing it 17 times) in 0.19 to 0.4 s, 1M replacements
 *   in 0.19 to 0.27 s.
 *
 * INVARIANTS (aaetree_check() tests them)
 *   every entry is found from its home slot without meeting an empty slot;
 *   no keyhash appears twice; count is the number of entries (plus the
 *   zero-keyhash item); the root is the XOR of the checksums of the items.
 *
 * THREADS AND OWNERSHIP
 *   No I/O, no globals, no locks: one thread at a time per tree (the vnode
 *   that owns the partition).  aaetree_new() allocates; the caller frees
 *   with aaetree_free().  Iterators are invalidated by aaetree_update() and
 *   aaetree_remove().
 */
#ifndef DKV_AAETREE_H
#define DKV_AAETREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "riblt.h"
#include "siphash.h"

/* The SipHash-2-4 keys of keyhashes and objhashes (16 ASCII bytes each). */
#define AAETREE_KEYHASH_KEY "dynkv aae key 01"
#define AAETREE_OBJHASH_KEY "dynkv aae obj 01"

/* The hash of a key's bytes (key may be NULL when len is 0). */
uint64_t aaetree_keyhash(const void *key, size_t len);
/* The hash of an object's canonical encoding (object_encode()). */
uint64_t aaetree_objhash(const void *obj, size_t len);

/* The digest of a whole set; see THE ROOT. */
typedef struct aaetree_digest {
	uint64_t count;     /* items in the set */
	uint64_t hash;      /* XOR of riblt_item_checksum() of every item */
} aaetree_digest;

typedef struct aaetree aaetree;

/* A new empty tree whose slots are placed with hkey (random per process,
 * like the keydir's; copied).  0 or -ENOMEM. */
int aaetree_new(aaetree **out, const siphash_key *hkey);
/* Free t.  NULL is fine. */
void aaetree_free(aaetree *t);

/* Room for n items without growing.  0 or -ENOMEM. */
int aaetree_reserve(aaetree *t, size_t n);

/* Insert (keyhash, objhash), or replace keyhash's objhash.  0 or -ENOMEM
 * (t unchanged). */
int aaetree_update(aaetree *t, uint64_t keyhash, uint64_t objhash);
/* Remove keyhash's item; true iff there was one. */
bool aaetree_remove(aaetree *t, uint64_t keyhash);
/* True iff keyhash has an item; then *objhash (if not NULL) gets it. */
bool aaetree_contains(const aaetree *t, uint64_t keyhash, uint64_t *objhash);

/* Items in t. */
size_t aaetree_count(const aaetree *t);
/* The root digest: O(1). */
aaetree_digest aaetree_root(const aaetree *t);
/* True iff a and b are the same digest. */
bool aaetree_digest_equal(aaetree_digest a, aaetree_digest b);
/* Bytes t holds (its struct and its table). */
size_t aaetree_memory(const aaetree *t);

/* Iteration over every item, in no particular order:
 *     aaetree_iter it = AAETREE_ITER_INIT;
 *     riblt_item item;
 *     while (aaetree_next(t, &it, &item)) ...
 * Invalidated by aaetree_update() and aaetree_remove(). */
typedef struct aaetree_iter {
	size_t pos;         /* 0: the zero-keyhash item; then slot pos - 1 */
} aaetree_iter;
#define AAETREE_ITER_INIT { 0 }
bool aaetree_next(const aaetree *t, aaetree_iter *it, riblt_item *out);

/* Add every item of t to enc (which must not have produced yet).  0,
 * -ENOMEM or DKV_EINVAL (from riblt_encoder_add()); on error enc holds
 * some of the items and should be freed. */
int aaetree_encode(const aaetree *t, riblt_encoder *enc);

/* Check the invariants.  0, or -1 with the reason in err. */
int aaetree_check(const aaetree *t, char *err, size_t errlen);

#endif /* DKV_AAETREE_H */
