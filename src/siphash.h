/*
 * siphash.h -- SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF", 2012), written from the paper.
 *
 * dynkv uses it twice, with different keys:
 *   - ring placement: a fixed, documented key (see ring.h and dynkv(7)), so
 *     every node places a key alike;
 *   - in-memory hash tables (the bitcask key directory): a random key drawn
 *     once per process, so that no client can choose keys that collide.
 *
 * Pure functions, no state: callable from any thread.  The output is the
 * 64-bit value the reference implementation writes little-endian.
 */
#ifndef DKV_SIPHASH_H
#define DKV_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* A 128-bit key as the two little-endian 64-bit halves k0 (bytes 0..7) and
 * k1 (bytes 8..15) of the paper. */
typedef struct siphash_key {
	uint64_t k0;
	uint64_t k1;
} siphash_key;

/* SipHash-2-4 of `len` bytes at `msg` (may be NULL when len is 0). */
uint64_t siphash24(const siphash_key *key, const void *msg, size_t len);

/* Build a key from 16 bytes, as the paper's byte string k. */
siphash_key siphash_key_from_bytes(const uint8_t bytes[16]);

/* Fill *key from the kernel's random source (getrandom(2)); falls back to
 * /dev/urandom.  Returns 0 or -errno. */
int siphash_key_random(siphash_key *key);

/* For simulations only: from now on siphash_key_random() returns *key
 * instead of drawing one (NULL: draw again).  The keys it makes (keydirs,
 * anti-entropy trees, object comparisons) shape how many symbols a set
 * reconciliation needs and the order of hash tables, so a simulation that
 * replays from its seed (tests/sim/) fixes them from the seed.  This is
 * the one process-wide setting in the code base: call it before any node
 * or store opens, from one thread.  Nothing but tests calls it, and the
 * keys only guard hash tables against chosen collisions, which a
 * simulation has no attacker for. */
void siphash_key_random_fix(const siphash_key *key);

#endif /* DKV_SIPHASH_H */
