/*
 * handoff.h -- hint stores and hinted handoff: what this node keeps for a
 * primary that could not take a write (sloppy quorum, DESIGN section 6),
 * and its delivery once that primary is back.
 *
 * When a primary of a key is down or fails, the coordinator sends the
 * write to the next fallback of the key's preference list instead, marked
 * with the intended owner (RPUT's owner).  The fallback keeps it in its
 * HINT STORE for that owner: one Bitcask store per owner,
 * DATA_DIR/hints/HEX (HEX: the owner's node id in hexadecimal), held in
 * the node's vnode set as an extra store (vnode.h), so it is made durable
 * by the same sync batches as a replica write (an acknowledged hint
 * survives a crash under the node's sync policy) and compacted by the
 * same background merges.  A key is kept once per owner: a second write
 * of it merges into the first (vnode_merge: never overwriting a newer or
 * concurrent version), so a key written a thousand times while its owner
 * was down is delivered once.  Why one store per owner and not one per
 * partition and owner (Riak's fallback vnodes): a down member owns
 * hundreds of partitions, and a store costs a few fsyncs to create and
 * files to keep open; one per owner costs one.  The keys' partitions are
 * computed again on delivery.
 *
 * DELIVERY
 *   Every HANDOFF_TICK_MS a node looks at its hint stores; one whose owner
 *   is a valid ring member that SWIM does not say is down starts a
 *   delivery (at most handoff_concurrency at once).  A delivery walks its
 *   store with an iterator; each batch (up to HANDOFF_BATCH_BYTES and
 *   PEER_MAX_HOFF pairs) is read OFF the loop (world->work: the values
 *   come from disk) and sent in one HOFF frame; up to HANDOFF_WINDOW
 *   batches are in flight at once, paced so that a delivery sends at most
 *   handoff_rate bytes a second.  The owner merges a HOFF's pairs into its
 *   partition stores HANDOFF_SLICE_PAIRS per loop turn (foreground requests
 *   run between slices) and answers HACK only once they are durable:
 *   under sync = interval after its next timed sync (durable_wait_next: no
 *   fdatasync of its own; a forced sync per batch synced every dirty store
 *   of the node each time, which is what held deliveries to a few MB/s and
 *   foreground p99 to seconds), under the other policies after a sync
 *   batch of its own.  Only then is the batch done with.  While nobody
 *   writes to the store (its append count is what it was when the pass
 *   opened it), the fallback only counts the batch's keys; a pass that
 *   ends with every batch answered and as many keys delivered as the
 *   store holds deletes the store whole (a read and an append per key,
 *   on the fallback's loop, was half the drain's cost there).  After a
 *   write to the store (a hint that came in during the pass), each
 *   answered batch's keys are removed instead, HANDOFF_SLICE_PAIRS per
 *   loop turn (a timed sync answers a second's batches at once) -- each
 *   only if it still holds the very version it sent (a write that came
 *   in meanwhile stays for the next pass); the keys only counted stay
 *   too, and the next pass sends them again.  An
 *   interrupted delivery (either side restarting, a connection failing, a
 *   timeout, a refused batch) pauses and forgets its batches in flight,
 *   which stay in the store and are sent again by the next pass: a merge
 *   of the same version changes nothing.  When a pass ends (iterator done,
 *   every batch answered) with the store empty or delivered whole, the
 *   store is deleted (at the next tick if a sync batch holds it, unless
 *   a write came in meanwhile); otherwise another pass starts.  Deletes travel as what they are,
 *   tombstones.
 *
 * LIFECYCLE OF A TARGET (one per hint store)
 *
 *   WAITING --owner up, a slot free--> DELIVERING --pass over, all
 *      ^                                  |  answered: drop the store if
 *      |                                  |  empty, else WAITING again
 *      +--retry after a backoff-- PAUSED <-- owner down / error / timeout
 *
 *   state       reader job        batches in flight    iterator open
 *   WAITING     no                no                   no
 *   DELIVERING  0 or 1 (t->rd)    0..HANDOFF_WINDOW    yes
 *   PAUSED      0 or 1 (ends:     none (forgotten)     until the reader
 *               closes iterator)                        ends
 *   (error kept for dynkv-admin hints.)  A batch of a former member's
 *   hints (rehomed, below) waits for its local sync instead of a HACK; a
 *   target is freed only with no reader job and no such batch.

 * BOUNDS
 *   A node holds at most hint_max_bytes of hints (live bytes over its
 *   hint stores) and takes new hints for an owner only during hint_window
 *   after its store was created (DIR/hints/HEX.since keeps when, in
 *   wall-clock ms, so the window counts across restarts); past either, a
 *   hinted write is refused (counted, logged once), the coordinator's W
 *   counts one fewer, and the owner heals by anti-entropy.  Hints already held are always delivered.
 *   Hints whose owner is no longer a ring member (removed, or left) are
 *   REHOMED: each batch read is merged into this node's partition when it
 *   is one of a key's primaries, and into its hint store for each other
 *   primary (delivered from there as any hint); once that is durable
 *   (durable_wait, no HACK) the batch leaves the old owner's store.
 *
 * Loop thread only; the batch reader runs on the world's pool and touches
 * nothing but its iterator and its own buffers.
 */
#ifndef DKV_HANDOFF_H
#define DKV_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dkv_config.h"
#include "durable.h"
#include "log.h"
#include "peer.h"
#include "placement.h"
#include "vnode.h"
#include "world.h"

/* How often hint stores are looked at; what one batch holds at most (a
 * batch is one fsync on the owner: 256 KiB per ~5 ms of loopback round
 * trip and fdatasync is ~50 MB/s for one delivery); how long a batch may
 * wait for its HACK; the longest a paused delivery waits to retry. */
#define HANDOFF_TICK_MS       500u
#define HANDOFF_BATCH_BYTES   (256u * 1024u)
#define HANDOFF_TIMEOUT_MS    10000u
/* Batches one delivery keeps in flight (16 MiB: an owner under sync =
 * interval answers after its next timed sync, so a delivery moves at most
 * this much per sync_interval_ms); pairs an owner merges per loop turn. */
#define HANDOFF_WINDOW        64u
#define HANDOFF_SLICE_PAIRS   64u
#define HANDOFF_BACKOFF_MAX_MS 10000u

typedef struct handoff handoff;

typedef struct handoff_env {
	world *w;
	dkv_log *log;                /* NULL: no logging */
	const dkv_config *cfg;       /* handoff_rate, handoff_concurrency,
	                              * hint_max_bytes, hint_window (borrowed) */
	const char *const *self;     /* our address (borrowed) */
	const char *node_id;         /* ours (borrowed) */
	const char *dir;             /* the data directory (borrowed) */
	placement *pl;
	vnode_set *vs;
	durable *dur;
	object_limits olim;
	const uint64_t *requests;    /* requests the node has served (borrowed;
	                              * NULL: unknown): the pace yields only
	                              * while it moves (pace.h) */
} handoff_env;

typedef struct handoff_stats {
	uint64_t pending_keys, pending_bytes;  /* held for others now */
	uint64_t hinted;             /* hinted writes taken */
	uint64_t refused;            /* hinted writes refused past a bound */
	uint64_t delivered_keys, delivered_bytes;  /* acknowledged by their owners
	                                            * (a key sent again counts again) */
	uint64_t removed_keys;       /* delivered keys removed one at a time */
	uint64_t received_keys;      /* pairs merged for fallbacks (as owner) */
	uint64_t batches, batch_errors;
	uint32_t active;             /* deliveries running */
} handoff_stats;

int handoff_new(handoff **out, const handoff_env *env);
/* Open the hint stores found under DIR/hints and start the tick.  0 or
 * the first error (err says which store). */
int handoff_start(handoff *h, char *err, size_t errlen);
/* Stop starting batches (the node is stopping). */
void handoff_quiesce(handoff *h);
/* True iff a batch reader runs on the world's pool or a merge waits for
 * its sync: the node's close must wait. */
bool handoff_busy(const handoff *h);
void handoff_free(handoff *h);

/* The index (vnode.h) of the hint store for owner, for a hinted write of
 * `bytes` (create: opened if need be, within the BOUNDS) or a read
 * (create false: DKV_ENOTFOUND when there is none).  0, DKV_ENOTFOUND,
 * -ENOSPC past a bound (counted), or the store's error. */
int handoff_store(handoff *h, const char *owner, bool create, uint32_t *idx);

/* True iff some hint store here holds key (the reaper asks, reaper.h). */
bool handoff_has(handoff *h, const void *key, size_t klen);

/* A fallback's HOFF (owner side) and an owner's HACK (fallback side). */
void handoff_hoff(handoff *h, const peer_msg *pm);
void handoff_hack(handoff *h, const peer_msg *pm);
/* The peer at addr is gone: a batch waiting on it fails now. */
void handoff_peer_gone(handoff *h, const char *addr);

void handoff_stats_get(handoff *h, handoff_stats *st);
/* dynkv-admin hints: {"pending": KEYS, "targets": [{"node", "keys",
 * "bytes", "state", "delivered", "error"}]} packed into pk. */
int handoff_report(handoff *h, msgpack_packer *pk);

#endif /* DKV_HANDOFF_H */
