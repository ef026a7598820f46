/*
 * keydir.h -- the storage engine's in-memory key directory: key -> location of
 * the key's newest record (file number, offset, size).
 *
 * MEMORY
 *   The goal is as few bytes per key as possible beyond the key itself.  Each
 *   key costs one 8-byte slot in an open-addressing table plus one entry of
 *   14 + key_len bytes (u32 file number, u32 offset, u32 size, u16 key length,
 *   the key), packed with 2-byte alignment in slabs of up to 64 KiB, so no
 *   malloc header per key.  A table grows by 1.5x when 85% full, so it is 57%
 *   to 85% full: 9.4 to 14.1 bytes of slot per key (plus a 3% overflow tail).
 *   Total: about 24 to 30 bytes per key plus the key.  A slot holds the
 *   entry's address (47 bits on x86-64/aarch64 user space) and the low 16
 *   bits of the key's hash (the high bits pick the shard and the home slot,
 *   so neighbours share them), so a probe compares keys only when 16
 *   independent hash bits already match.
 *
 * SHARDS
 *   The keys are split by the top 8 bits of their hash over 256 independent
 *   tables, each with its own lock.  Growing a table rehashes only its shard
 *   (1/256 of the keys: a 10M-key store stalls one shard for milliseconds,
 *   not the whole store for seconds), and readers of different shards never
 *   meet on a lock.  An empty shard costs about 1.3 KiB, so an empty
 *   keydir costs about 330 KiB.
 *
 * ORDER
 *   A key's shard is hash >> 56 and its home slot in the shard
 *   ((hash >> 24) & 0xffffffff) * nbuckets >> 32, both growing with the hash,
 *   and linear probing never wraps (each table has an overflow tail), so
 *   entries lie in hash order up to local displacement, whatever the tables'
 *   sizes.  keydir_scan() uses this to walk keys in (hash, key) order and to
 *   resume after a given key even across resizes: the basis of an iterator
 *   that stays correct while writes go on.
 *
 * HASHING
 *   SipHash-2-4 under a key given at creation (random per process), so a
 *   client cannot choose keys that collide.
 *
 * THREADS
 *   Every function may be called from any thread: each locks the shard it
 *   touches (and the entry allocator, when an entry is made or freed).
 *   Callbacks run with a shard locked: they must not call back into the
 *   keydir.
 */
#ifndef DKV_BITCASK_KEYDIR_H
#define DKV_BITCASK_KEYDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "siphash.h"

typedef struct keydir keydir;

/* Where a key's newest record is. */
typedef struct kd_loc {
	uint32_t fileno;    /* the store's local number for the data file */
	uint32_t offset;    /* of the record in the file */
	uint32_t size;      /* of the whole record */
} kd_loc;

keydir *keydir_new(const siphash_key *hkey);
void keydir_free(keydir *kd);

/* Look key up: true and *loc if present. */
bool keydir_get(keydir *kd, const void *key, size_t key_len, kd_loc *loc);

/* The same, and call pin(ctx, loc) before the shard is unlocked, so that
 * whatever loc refers to can be pinned before a concurrent update moves it
 * (the store takes a reference on the data file there). */
typedef void (*keydir_pin_fn)(void *ctx, const kd_loc *loc);
bool keydir_get_pin(keydir *kd, const void *key, size_t key_len, kd_loc *loc,
		    keydir_pin_fn pin, void *ctx);

/* Insert or replace.  If the key was present, *old gets its previous location
 * and *had_old is set.  Returns 0 or -ENOMEM. */
int keydir_put(keydir *kd, const void *key, size_t key_len, const kd_loc *loc,
	       kd_loc *old, bool *had_old);

/* Replace key's location with *loc only if it is now *expect (merge's
 * compare-and-swap).  True iff swapped. */
bool keydir_cas(keydir *kd, const void *key, size_t key_len,
		const kd_loc *expect, const kd_loc *loc);

/* Remove key; true and *old if it was present. */
bool keydir_del(keydir *kd, const void *key, size_t key_len, kd_loc *old);

/* For bulk loads (recovery): hash a key once, prefetch its home slot, and
 * insert or delete it a few keys later with the hash given.  Only for a
 * keydir no other thread is changing. */
uint64_t keydir_hash(const keydir *kd, const void *key, size_t key_len);
void keydir_prefetch(keydir *kd, uint64_t hash);
int keydir_put_h(keydir *kd, uint64_t hash, const void *key, size_t key_len,
		 const kd_loc *loc, kd_loc *old, bool *had_old);
bool keydir_del_h(keydir *kd, uint64_t hash, const void *key, size_t key_len, kd_loc *old);

/* Grow the table now to hold n keys without resizing (recovery knows the
 * count from the hint files).  0 or -ENOMEM. */
int keydir_reserve(keydir *kd, size_t n);

size_t keydir_count(keydir *kd);
size_t keydir_memory(keydir *kd);   /* bytes held: table + slabs + large entries */

/* Visit every entry in table order (not hash order); fn returns false to stop
 * (keydir_scan too: it then stops at once, resuming after the last key given).
 * The key is borrowed for the callback.  Each shard is locked while it is
 * walked; a change meanwhile to a shard not yet walked may or may not be
 * seen. */
typedef bool (*keydir_visit_fn)(void *ctx, const uint8_t *key, size_t key_len, const kd_loc *loc);
void keydir_foreach(keydir *kd, keydir_visit_fn fn, void *ctx);

/* Ordered, resumable scan.  A position is (hash, key) of the last key
 * returned; `started` false means "from the beginning".  Calls fn for at
 * most `limit` of the next keys in (hash, key) order, then fills *next with
 * the position to resume from.  Returns true iff more keys may follow. */
typedef struct kd_pos {
	bool started;           /* false: before the first key */
	uint64_t hash;          /* of the last key visited */
	uint16_t key_len;
	uint8_t key[65535];     /* the last key visited */
} kd_pos;
bool keydir_scan(keydir *kd, const kd_pos *from, size_t limit,
		 keydir_visit_fn fn, void *ctx, kd_pos *next);

/* Check the table's invariants (every entry reachable from its home, no gaps,
 * count right).  0 or -1 with the reason in err. */
int keydir_check(keydir *kd, char *err, size_t errlen);

#endif /* DKV_BITCASK_KEYDIR_H */
