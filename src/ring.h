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
 * Preference lists (which nodes hold a partition) arrive with the cluster;
 * a single node holds every partition.
 */
#ifndef DKV_RING_H
#define DKV_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_HASH_KEY "dynkv placement1"

/* The 64-bit ring position of a key. */
uint64_t ring_key_hash(const void *key, size_t len);
/* The partition 0..ring_size-1 of a position; ring_size a power of two. */
uint32_t ring_partition(uint64_t hash, uint32_t ring_size);

#endif /* DKV_RING_H */
