/*
 * ring.h -- where a key lives.
 *
 * A key's position on the ring is SipHash-2-4 of its bytes under a fixed
 * key, RING_HASH_KEY: the 16 ASCII bytes "dynkv placement1".  It is part of
 * the data format: every node and every version must agree on it, so it is
 * written down here and in dynkv.7 and never changes.  The partition of a
 * key is its position scaled to ring_size (a power of two): the top
 * log2(ring_size) bits of the 64-bit hash.
 *
 * PREFERENCE LISTS
 *   A partition's preference list orders every member of the ring (the
 *   members whose status is valid).  It is a pure function of the set of
 *   member ids, ring_size and n_val: the order in which the ids are given
 *   does not matter, so every node computes the same lists (DESIGN
 *   property 4).
 *
 *   - Replica set (rendezvous hashing): for partition p each member id gets
 *     the score SipHash-2-4(RING_HASH_KEY, be32(p) || id bytes); the
 *     min(n_val, members) highest scores are p's primaries.  A joining
 *     member only ever takes a replica from the member it outscores, so a
 *     join moves about n_val/(members+1) of the replicas, all of them to the
 *     new member, and never moves one between two old members; a removal
 *     moves only the removed member's replicas.
 *   - First place (the coordinator of most writes): chosen among the
 *     primaries to balance the members' first places: partitions are taken
 *     in index order and each gives first place to the primary with the
 *     fewest first places so far (ties: the higher score).  The other
 *     primaries follow in score order.  Reordering primaries moves no data.
 *   - Fallbacks (for sloppy quorums): the remaining members, in score order.
 *
 *   Ties between equal scores (never seen with 64-bit hashes, but defined)
 *   go to the bytewise smaller id.
 */
#ifndef DKV_RING_H
#define DKV_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_HASH_KEY "dynkv placement1"

/* The 64-bit ring position of a key. */
uint64_t ring_key_hash(const void *key, size_t len);
/* The partition 0..ring_size-1 of a position; ring_size a power of two. */
uint32_t ring_partition(uint64_t hash, uint32_t ring_size);

typedef struct ring ring;

/* Build the preference lists of every partition for the members ids[0..
 * nids-1] (distinct, NUL-terminated, nids >= 1, in any order).  ring_size
 * a power of two 1..65536; n_val >= 1.  0, DKV_EINVAL (nids 0, duplicate
 * ids, bad ring_size) or -ENOMEM.  The ring keeps its own copy of the ids. */
int ring_build(ring **out, const char *const *ids, size_t nids,
	       uint32_t ring_size, uint32_t n_val);
void ring_free(ring *r);

uint32_t ring_size(const ring *r);
/* Members in the ring. */
size_t ring_members(const ring *r);
/* Primaries per partition: min(n_val, members). */
uint32_t ring_n(const ring *r);
/* Member i's id, in the ring's own order (sorted bytewise). */
const char *ring_member_id(const ring *r, size_t i);
/* The index of id in the ring's order, or -1. */
long ring_member_index(const ring *r, const char *id);
/* Partition p's preference list: ring_members() member indices (the
 * ring's order), primaries first, then fallbacks. */
const uint32_t *ring_preflist(const ring *r, uint32_t p);
/* True iff member i (a ring index; -1: none) is one of partition p's
 * primaries. */
bool ring_is_primary(const ring *r, long i, uint32_t p);

#endif /* DKV_RING_H */
