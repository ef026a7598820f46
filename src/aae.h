/*
 * aae.h -- active anti-entropy: every replica of every partition converges
 * with the others by itself, whether or not anyone reads its keys.
 *
 * TREES
 *   For each partition this node is a primary of, an aaetree (aaetree.h)
 *   holds the set of (key hash, object hash) pairs of the stored keys, and
 *   a root digest (count and a hash over the set) kept in O(1) per change.
 *   Every object stored in a partition -- a client write, a replica write,
 *   a delivered hint, read repair, an anti-entropy repair -- reaches the
 *   tree through the vnode set's write observer.  Trees live in memory
 *   (about 32 bytes a key); a node builds each one from its store when it
 *   starts, and again every aae_rebuild_interval, on the world's work
 *   pool, never on the loop: a rebuild scans the store with its values
 *   (hashing each object), and the writes that land meanwhile are logged
 *   and applied to the new tree before it replaces the old.
 *
 * EXCHANGES (set reconciliation, not a Merkle walk)
 *   Every aae_interval a node starts one exchange: for the next partition
 *   it holds (in order), with the next other primary of it (in turn), if
 *   that one is up.  The initiator A asks B for its root and a first run
 *   of coded symbols (AAEREQ); B answers from its tree (AAESYM).  Equal
 *   roots end the exchange: one round trip of about 60 bytes each way.
 *   Otherwise A subtracts its own symbols and peels (riblt.h); while the
 *   difference is not decoded it asks for the next run, twice as long
 *   (AAE_FIRST_SYMBOLS, 2x, 4x...).  The difference comes out as the pairs
 *   only A has and those only B has, about 1.4 symbols (~26 bytes each)
 *   per differing pair whatever the partition's size -- where a Merkle
 *   tree pays whole segments per difference (Riak: 1M segments; riak_kv
 *   #1775).  A then sends B its objects of the first set (RPUT, merged
 *   there, never overwriting) and asks B for the objects of the second
 *   (AAEWANT, answered with RPUTs).  Finding a key from its hash, and
 *   reading the objects, runs on the work pool: a scan of the partition's
 *   key directory (no values) and a read per differing key.
 *   An emptied replica (count 0 on either side) is not decoded: the side
 *   that has keys sends them all, as a transfer would.
 *   Repairs flow at most aae_rate bytes a second (symbols and objects):
 *   objects wait for the budget; symbol answers go at once and put the
 *   node in debt, which its later sends wait out, and while in debt it
 *   answers exchanges that need symbols OVERLOAD (the asker moves on);
 *   the next exchange waits until the last one's bytes are paid for.
 *
 *   Bound: a node holding H partitions, each with N-1 other primaries,
 *   compares every pair of its replicas within H x (N-1) x aae_interval
 *   (both ends start exchanges, so usually half that); at the defaults
 *   (ring 512, N 3, 4 nodes: H = 384; interval 2 s) about 26 minutes.
 *
 * LIFECYCLE OF A PARTITION'S TREE
 *   MISSING --start, or rebuild due--> BUILDING --scan done--> READY
 *   READY --aae_rebuild_interval--> BUILDING (the old tree serves meanwhile)
 *   BUILDING --scan failed--> MISSING (retried at the next tick)
 *
 * LIFECYCLE OF AN EXCHANGE (initiator; one at a time per node)
 *   idle --tick--> ASKING --AAESYM, not decoded--> ASKING (next run)
 *                    |  \--equal roots, or decoded--> RESOLVING --sent--> idle
 *                    +--error, peer gone, AAE_TIMEOUT_MS--> idle (counted)
 *
 * Loop thread only; scans run on the world's pool and touch only their
 * own buffers and the store (bitcask is thread-safe).
 */
#ifndef DKV_AAE_H
#define DKV_AAE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dkv_config.h"
#include "log.h"
#include "peer.h"
#include "placement.h"
#include "vnode.h"
#include "world.h"

/* The first run of symbols asked: 64 symbols (~1.7 KB) decode up to about
 * 40 differing pairs in one round trip; each next run doubles, so d
 * differences take about log2(d / 40) + 2 round trips.  Past
 * AAE_MAX_SYMBOLS_PER_ITEM symbols per item of the larger side, decoding
 * is abandoned for a full send (cheaper by then). */
#define AAE_FIRST_SYMBOLS        64u
#define AAE_MAX_SYMBOLS_PER_ITEM 2u
#define AAE_TIMEOUT_MS           30000u
/* How often the node looks for trees to build and exchanges to start. */
#define AAE_TICK_MS              250u
/* Objects per AAEWANT / repair batch: bounded messages. */
#define AAE_BATCH_KEYS           4096u

typedef struct aae aae;

typedef struct aae_env {
	world *w;
	dkv_log *log;                /* NULL: no logging */
	const dkv_config *cfg;       /* aae_interval, aae_rebuild_interval, aae_rate */
	const char *const *self;     /* our address (borrowed) */
	placement *pl;
	vnode_set *vs;
} aae_env;

typedef struct aae_stats {
	uint64_t exchanges;          /* completed */
	uint64_t equal;              /* of them, with equal roots */
	uint64_t failed;             /* abandoned (timeout, error) */
	uint64_t repaired;           /* keys sent or asked for */
	uint64_t bytes;              /* sent: requests, symbols, objects */
	uint64_t builds;             /* trees built */
	uint64_t build_ms;           /* time spent building, total */
	uint32_t ready;              /* trees ready now */
} aae_stats;

int aae_new(aae **out, const aae_env *env);
/* Set the store observer and start the tick (trees build from there). */
int aae_start(aae *a);
/* No new exchange or build (the node is stopping). */
void aae_quiesce(aae *a);
/* True iff a scan runs on the pool: the node's close must wait. */
bool aae_busy(const aae *a);
void aae_free(aae *a);

/* Peer messages. */
void aae_req(aae *a, const peer_msg *pm);
void aae_sym(aae *a, const peer_msg *pm);
void aae_want(aae *a, const peer_msg *pm);
void aae_peer_gone(aae *a, const char *addr);

void aae_stats_get(const aae *a, aae_stats *st);
/* dynkv-admin aae: {"partitions": [{"partition", "state", "age_s", "keys",
 * "root", "last": null | {"ago_s", "peer", "compared", "repaired",
 * "bytes", "result"}}], "totals": {...aae_stats}}. */
int aae_report(aae *a, msgpack_packer *pk);
/* A partition's root (count, hash) for tests: false when no tree is ready. */
bool aae_root(const aae *a, uint32_t p, uint64_t *count, uint64_t *hash);

#endif /* DKV_AAE_H */
