#include "config.h"
/*
 * ring.c -- key placement; see ring.h.
 */

#include "ring.h"
#include "siphash.h"

uint64_t ring_key_hash(const void *key, size_t len)
{
	siphash_key k = siphash_key_from_bytes((const uint8_t *)RING_HASH_KEY);

	return siphash24(&k, key, len);
}

uint32_t ring_partition(uint64_t hash, uint32_t ring_size)
{
	unsigned bits = 0;

	while ((1u << bits) < ring_size)
		bits++;
	return bits == 0 ? 0 : (uint32_t)(hash >> (64 - bits));
}
