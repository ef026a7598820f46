/*
 * reaper.h -- removing tombstones, only when no copy of the key anywhere
 * could bring an older version back.
 *
 * A delete is a tombstone: an object whose siblings are all deletes, kept
 * like any value so that it dominates the versions it deleted wherever
 * they turn up.  Kept forever, tombstones would fill the stores of a
 * workload that deletes; removed too early, they let a replica or a hint
 * that still holds an older value bring the key back.  A tombstone is
 * removed (reaped) from storage only when
 *   1. tombstone_grace has passed since the delete (its newest sibling's
 *      timestamp, the coordinator's wall clock);  a value written with a
 *      time to live is a tombstone from its expiry on (object.h,
 *      object_deleted_time: every sibling a tombstone or expired), and a
 *      candidate from its write, due at its expiry plus the grace;
 *   2. every primary of the key holds that same tombstone (the same
 *      object hash), or nothing for the key (already reaped there);
 *   3. no member holds a hint of the key (handoff.h), and every valid
 *      member answered: a member that cannot be asked may hold one.
 * The key's first primary in the preference list (the same on every node)
 * runs its reap once the grace has passed; the other primaries run it only
 * when a second grace has passed too, for the tombstones the first one no
 * longer sees (it reaped the key, and read repair or a late message gave
 * another primary the tombstone back; or it is down).  Two rounds for one
 * key are harmless: every drop compares the object's hash first.  Each
 * primary scans its stores for tombstones (at start, on the work pool)
 * and learns of new ones through the store observer (every tombstone
 * stored here), keeps the candidates in memory, and every REAPER_TICK_MS
 * takes up to PEER_MAX_REAP due ones of its next partition: it asks every other valid
 * member (REAPQ) whether each may go; once all have answered yes for a
 * key, it tells the other primaries to drop it (REAP: each removes the key
 * only if its object still hashes the same -- a write that came in
 * meanwhile stays) and drops its own the same way.  The removal is a
 * Bitcask delete; the next merge of the store takes the key's records off
 * the disk.  Nothing about a reap is written down: the candidates come
 * back from the stores after a restart (the start scan), so a reap that
 * was due is done after a restart too.  A round that fails (a member
 * down, a no, a timeout) is counted and tried again later.
 *
 * WHY A REAPED KEY STAYS DELETED
 *   Nothing that could hold an older version is left: every primary held
 *   the tombstone (which dominates every version it deleted), no hint held
 *   the key, and anti-entropy does not copy a tombstone past its grace to
 *   a replica that lacks the key (aae.h: "lacking").  A write made after
 *   the reap gets a dot from the node's persisted sequence (dotseq.h), so
 *   even an old version that still turns up (a disk brought back from the
 *   past, which an operator must never do) cannot shadow it: it would come
 *   back beside it as a sibling, not over it.
 *   Read repair may copy a tombstone back to a primary that dropped it
 *   during the reap; the next round reaps it again.
 *
 * LIFECYCLE OF A ROUND (one at a time per node)
 *   idle --tick, due candidates--> ASKING (REAPQ to every other valid
 *   member) --all answered--> DROPPING (REAP to the other primaries, own
 *   drop) --REAPA from each--> idle
 *   ASKING/DROPPING --a member down, REAPER_TIMEOUT_MS--> idle (failed)
 *
 * Loop thread only; the start scan runs on the world's pool.
 */
#ifndef DKV_REAPER_H
#define DKV_REAPER_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "dkv_config.h"
#include "handoff.h"
#include "log.h"
#include "peer.h"
#include "placement.h"
#include "vnode.h"
#include "world.h"

#define REAPER_TICK_MS    1000u
#define REAPER_TIMEOUT_MS 10000u

typedef struct reaper reaper;

typedef struct reaper_env {
	world *w;
	dkv_log *log;
	const dkv_config *cfg;       /* tombstone_grace */
	const char *const *self;
	placement *pl;
	vnode_set *vs;
	handoff *ho;
	object_limits olim;
} reaper_env;

typedef struct reaper_stats {
	uint64_t candidates;         /* tombstones waiting (this node leads) */
	uint64_t reaped;             /* removed here */
	uint64_t rounds, failed;     /* rounds run; of them failed */
	uint64_t refused;            /* keys a member said no to */
} reaper_stats;

int reaper_new(reaper **out, const reaper_env *env);
int reaper_start(reaper *r);
void reaper_quiesce(reaper *r);
bool reaper_busy(const reaper *r);
void reaper_free(reaper *r);

void reaper_reapq(reaper *r, const peer_msg *pm);
void reaper_reap(reaper *r, const peer_msg *pm);
void reaper_reapa(reaper *r, const peer_msg *pm);
void reaper_peer_gone(reaper *r, const char *addr);

void reaper_stats_get(const reaper *r, reaper_stats *st);

#endif /* DKV_REAPER_H */
