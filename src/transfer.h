/*
 * transfer.h -- ownership transfer: a node that becomes a replica of a
 * partition in a new ring epoch receives the partition's data from the
 * replicas that hold it (DESIGN sections 5 and 7; epochs.h).
 *
 * WHEN.  Among the epochs of the chain, BASE is the newest that every
 * member holds whole (epochs_synced) and ACKED the newest every member
 * writes to (epochs_acked).  A partition this node is a primary of in an
 * epoch past base, up to acked, and not in base, is GAINED: every write
 * made from now on reaches this node (every coordinator writes to acked's
 * replicas), so what it lacks is what was written before.  Transfers
 * start only then, which is why nothing written during one is missed.
 * A copy received counts only for the run of epochs in which this node
 * stays a primary of the partition: a node that was one, then not (writes
 * stopped reaching it), then is again, receives the partition again.
 *
 * HOW.  The receiver pulls (one partition per transfer, at most
 * transfer_limit at once): it asks a replica of the partition in base
 * (XREQ) for the keys whose ring positions are at or past a cursor, in
 * position order, about TRANSFER_BATCH_BYTES at a time; the sender reads
 * them off its loop (a scan of the partition's key directory, then the
 * values) and answers XDATA with the pairs, the next cursor and whether
 * it is done.  The receiver merges every pair (vnode_merge: never
 * overwriting a newer or concurrent version), waits until that is
 * durable, and only then moves its cursor and asks for more: a batch
 * counts once it is on the receiver's disk.  It streams the partition
 * from EVERY replica of base in turn, not only the first: a write
 * acknowledged by W of them before the transfer began may be missing from
 * any one (the second and third streams merge versions the node already
 * has, which costs reads, not writes).  When every base replica's stream
 * is done the partition is RECEIVED, and once every gained partition of
 * an epoch is, the node reports the epoch synced (cluster_progress_
 * changed): when every member has, reads move to it.
 *
 * THROTTLE.  A node receives at most transfer_rate bytes a second over
 * all its transfers: after each batch the next request waits its share.
 *
 * RESUMING.  The cursor of each transfer (the epoch it serves, the source
 * it streams from, the next ring position) is kept in DATA_DIR/TRANSFERS,
 * written atomically after a durable batch (at most every
 * TRANSFER_SAVE_MS, and when a partition is received), so a restart of
 * either side resumes at the cursor: the batches after the last save are
 * asked again, and merging the same versions again changes nothing.
 *
 * DROPPING.  A partition this node stores but is a replica of in no
 * active epoch (a change moved it away, and every member reads from an
 * epoch past the last one that had it here) is on its replicas now: its
 * store is dropped (vnode_drop), checked after each change and every 5 s,
 * while nothing reads
 * a store on the pool (env.quiet) and no stream is being served.
 *
 * LIFECYCLE OF A PARTITION (receiver)
 *   NONE --gained--> WANTED --a slot free--> ACTIVE --every source done-->
 *   RECEIVED --base moves past it--> NONE
 *   ACTIVE: a request in flight, or merging (durable wait), or waiting
 *   its turn (throttle, source down, error backoff); paused transfers
 *   stay ACTIVE and send nothing.  A partition no longer gained (a fork
 *   lost, a change cancelled) goes back to NONE.
 *
 * Loop thread only; the sender's scan runs on the world's pool and
 * touches only its store (thread-safe) and its own buffers.
 */
#ifndef DKV_TRANSFER_H
#define DKV_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "cluster.h"
#include "dkv_config.h"
#include "durable.h"
#include "log.h"
#include "object.h"
#include "peer.h"
#include "placement.h"
#include "vnode.h"
#include "world.h"

/* How often transfers are looked at; what one batch holds at most; how
 * long an XREQ may wait for its XDATA (8 times the usual wait, within
 * these bounds); how often cursors are saved. */
#define TRANSFER_TICK_MS     100u
#define TRANSFER_BATCH_BYTES (512u * 1024u)
#define TRANSFER_TIMEOUT_MS  10000u
#define TRANSFER_TIMEOUT_MIN_MS 1000u
#define TRANSFER_SAVE_MS     1000u

typedef struct transfer transfer;

typedef struct transfer_env {
	world *w;
	dkv_log *log;                /* NULL: no logging */
	const dkv_config *cfg;       /* transfer_rate, transfer_limit, max_frame */
	const char *const *self;     /* our address (borrowed) */
	const char *node_id;
	const char *dir;             /* the data directory: TRANSFERS */
	cluster *cl;
	placement *pl;
	vnode_set *vs;
	durable *dur;
	object_limits olim;
	const uint64_t *requests;    /* requests served (the pace yields to them) */
	/* True iff no module reads a store on the pool (an anti-entropy or
	 * reaper scan, a hint batch): a store may be dropped now.  NULL:
	 * never drop. */
	bool (*quiet)(void *ctx);
	void *ctx;
} transfer_env;

typedef struct transfer_stats {
	uint64_t received;           /* partitions received */
	uint64_t keys, bytes;        /* pairs and bytes merged from streams */
	uint64_t served_batches;     /* XDATA sent */
	uint64_t served_bytes;
	uint64_t errors;             /* batches refused, failed or timed out */
	uint64_t dropped;            /* partitions dropped (no longer ours) */
	uint32_t active, pending;    /* now */
	bool paused;
} transfer_stats;

/* Loads DATA_DIR/TRANSFERS (a damaged file is logged and ignored: the
 * transfers start over, which loses nothing).  0 or -ENOMEM. */
int transfer_new(transfer **out, const transfer_env *env);
/* Start the tick. */
int transfer_start(transfer *t);
/* Start nothing more (the node is stopping). */
void transfer_quiesce(transfer *t);
/* True iff a scan runs on the pool or a batch waits to be durable: the
 * node's close must wait. */
bool transfer_busy(const transfer *t);
void transfer_free(transfer *t);

/* Peer messages. */
void transfer_xreq(transfer *t, const peer_msg *pm);
void transfer_xdata(transfer *t, const peer_msg *pm);
void transfer_peer_gone(transfer *t, const char *addr);
/* The membership or the chain changed: look again now. */
void transfer_ring_changed(transfer *t);

/* cluster_hooks.holds_epoch. */
bool transfer_holds_epoch(transfer *t, size_t k, size_t base);
/* True iff partition p is being received or waits to be (a node must not
 * drop it meanwhile). */
bool transfer_receiving(const transfer *t, uint32_t p);

/* dynkv-admin transfers pause|resume: send no request while paused. */
void transfer_pause(transfer *t, bool paused);
void transfer_stats_get(const transfer *t, transfer_stats *st);
/* dynkv-admin transfers: {"active": [{"partition", "from", "to", "keys",
 * "bytes", "total_bytes", "rate", "eta_s", "source", "sources", "error"}],
 * "pending": N, "paused": bool, "received": N, "served_bytes": N,
 * "merged_bytes": N, "dropped": N, "pace": {"rate", "delay_us",
 * "source_delay_us", "slowdowns", "windows"}} (the counts since the node
 * started; the pace: the receive rate allowed now, the loop's mean delay
 * in its last window, the last delay a source reported, and how many of
 * its windows halved the rate). */
int transfer_report(transfer *t, msgpack_packer *pk);

#endif /* DKV_TRANSFER_H */
