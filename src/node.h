/*
 * node.h -- one dynkv node: its identity, its partition stores and the
 * request coordinator (DESIGN section 6).
 *
 * A node is one struct; nothing is global, so tests run several in one
 * process.  It reaches the clock, timers, clients and fsync only through
 * the `world` it is given (world.h), and runs entirely on that world's loop
 * thread: no function here may be called from another thread.
 *
 * THE DATA DIRECTORY
 *   DATA_DIR/LOCK         flock(2)ed while the node runs (node_open takes it)
 *   DATA_DIR/NODE         identity and ring settings (datadir.h), written
 *                         once, by the first node_start (temporary file,
 *                         fsync, rename, fsync of the directory): "key =
 *                         value" lines for format, node_id, actor,
 *                         ring_size, n_val.  Later opens read it; a
 *                         configuration that names a different node_id,
 *                         ring_size or n_val is refused (DKV_EINVAL, the
 *                         message names both values).
 *   DATA_DIR/MEMBERS      the cluster's records (cluster.h), written by
 *                         node_start and on every change after.
 *   DATA_DIR/partitions/NNNN/
 *                         the Bitcask store of partition NNNN (decimal,
 *                         four digits).  Every store the node holds, and
 *                         every one with a directory, is opened by
 *                         node_start (a partition first used later is
 *                         opened then).
 *   `actor` is a random 64-bit id drawn when NODE is created: the node's
 *   name in version vectors, and its identity in the cluster (a data
 *   directory is a node; its address may change, cluster.h IDENTITY).  A
 *   node that loses its disk comes back with a new actor, so it can never
 *   reuse a counter it gave out before.
 *
 * LIFECYCLE
 *   node_open    takes the lock, loads and checks NODE and MEMBERS and
 *                builds every module in memory: it writes nothing, so a
 *                node that then fails to bind its address leaves no
 *                identity behind (a retry with another address starts
 *                clean)
 *   node_start   once the address is bound: opens the stores, records
 *                NODE and MEMBERS, starts membership (probes, push-pull,
 *                seeds).  Until then it takes no part in any cluster
 *                (peers' SYNC and gossip are ignored)
 *   node_drain   new requests get SHUTDOWN
 *   node_close   DKV_EBUSY while a sync batch or a background job
 *                (hint file, merge) runs -- the world holds the stores --
 *                so the caller runs its loop and tries again; otherwise
 *                fails what is left, closes everything and frees the node
 *
 * THE REQUEST PATH
 *   Every request is coordinated the way DESIGN section 6 describes: the
 *   key's preference list gives the replicas, each replica is asked, and the
 *   request answers once R (or W) replicas (PR/PW of them primaries) have,
 *   or fails once that can no longer happen or the deadline passes, saying
 *   how many answered.  Until the cluster exists the list has one entry,
 *   this node, so N = min(n_val, members) = 1 and an R or W above 1 fails
 *   with "quorum not met".
 *
 * DURABILITY
 *   Stores are opened with BITCASK_SYNC_MANUAL; the node drives syncing.
 *   sync = always: a write is acknowledged only after an fdatasync that
 *   covers it.  Writes made while a sync runs wait for the next one, which
 *   covers all of them (group commit: one fdatasync per dirty store per
 *   batch, the batch being whatever arrived during the previous sync).
 *   sync = interval: dirty stores are synced every sync_interval_ms.
 *   sync = none: only rotation, merge and close sync.
 */
#ifndef DKV_NODE_H
#define DKV_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcio.h"
#include "dkv_config.h"
#include "log.h"
#include "object.h"
#include "world.h"

typedef struct node node;

/* What node_open_with() takes beyond the configuration: the parts of the
 * outside world that only tests replace.  All-zero is node_open()'s. */
typedef struct node_open_opts {
	const bcio *io;           /* every store's system calls, partitions and
	                           * hint stores alike (NULL: the real ones).
	                           * Borrowed until node_close.  For tests that
	                           * inject disk faults or power loss
	                           * (tests/unit/powerio.h) */
} node_open_opts;

typedef struct node_stats {
	uint64_t gets, puts, deletes, pings;  /* requests answered, by type */
	uint64_t errors;                       /* error replies sent */
	uint64_t syncs;                        /* durable() batches completed */
	uint64_t datagrams;                    /* node_datagram() calls */
	uint64_t peer_downs;                   /* node_peer_down() calls */
	uint64_t forwarded;                    /* writes sent to a coordinator */
	uint64_t replica_reads, replica_writes;/* RGET, RPUT served for peers */
	uint64_t read_repairs;                 /* stale replicas sent the merged object */
	uint64_t bad_peer_messages;            /* peer frames that failed to decode */
	uint64_t peer_refused;                 /* peer frames from a non-member, dropped */
	size_t peer_addrs;                     /* peer addresses interned (placement.h) */
	size_t members;                        /* members in the ring */
	size_t ring_epochs;                    /* ring epochs active (1: settled) */
	size_t inflight;                       /* requests not yet answered */
	size_t partitions_open;                /* stores opened so far */
	uint32_t ring_size, n_val;             /* as recorded in NODE */
	uint64_t actor;                        /* this data directory's, from NODE */
	uint64_t dot_actor;                    /* this process's, in dots (dotseq.h) */
	uint64_t id_conflicts;                 /* entries with a member's id and another actor */
	uint64_t hints_pending;                /* keys held for other nodes (handoff.h) */
	uint64_t hints_delivered;              /* keys handed off to their owners */
	uint64_t hints_removed;                /* of them, removed from a hint store one
	                                        * at a time (not rendered: tests) */
	uint64_t hints_refused;                /* hinted writes refused past a bound */
	uint64_t aae_exchanges;                /* anti-entropy exchanges completed */
	uint64_t aae_repaired;                 /* keys they sent or asked for */
	uint64_t tombstones_waiting;           /* tombstones this node will reap */
	uint64_t tombstones_reaped;            /* removed here */
	uint64_t reap_rounds_failed;           /* reap rounds that could not finish */
} node_stats;

/* Told once when the node must stop: msg (borrowed for the call) says why
 * for an operator (its id is taken by another data directory). */
typedef void (*node_fatal_fn)(void *ctx, const char *msg);

/* Open the node described by cfg (its data_dir is created if missing).
 * 0, or an error with the reason in err: DKV_EINVAL when cfg conflicts with
 * the recorded identity (a usage error), DKV_ELOCKED when another process
 * runs on the directory, -errno or DKV_ECORRUPT for an unusable directory. */
int node_open(node **out, const dkv_config *cfg, world *w, dkv_log *log,
	      char *err, size_t errlen);
/* node_open with opts (NULL: as node_open). */
int node_open_with(node **out, const dkv_config *cfg, world *w, dkv_log *log,
		   const node_open_opts *opts, char *err, size_t errlen);

/* Start the node opened by node_open, once its address is bound (see
 * LIFECYCLE): 0 (a second call does nothing), or an error with the reason
 * in err (a store that cannot open, NODE or MEMBERS that cannot be
 * written).  On error the caller closes the node. */
int node_start(node *n, char *err, size_t errlen);

/* Call fn (NULL: nobody) when the node must stop; see node_fatal_fn. */
void node_on_fatal(node *n, node_fatal_fn fn, void *ctx);
/* Call fn (NULL: nobody) once the node has left the ring (dynkv-admin
 * leave): every partition it held is on its new replicas, it is removed,
 * and it may stop; dynkvd exits with status 0. */
void node_on_left(node *n, void (*fn)(void *ctx), void *ctx);
/* Why the node must stop, or NULL while all is well (borrowed until
 * node_close). */
const char *node_failure(const node *n);

/* Handle one frame's payload (the bytes after the length prefix) from
 * client `client`; replies go through world->reply().  Returns 0, or
 * DKV_EPROTO / DKV_EVERSION when the frame could not be understood: an
 * ERROR reply has been sent and the caller should close the connection
 * once it is flushed. */
int node_request(node *n, uint64_t client, const void *payload, size_t len);

/* An ERROR frame for a problem found before a payload exists (a length of
 * 0 or over max_frame, too many connections), request id 0: *frame and
 * *len point into a buffer the node owns, valid until the next call into
 * the node (*frame NULL on ENOMEM). */
void node_error_frame(node *n, uint32_t code, const char *msg,
		      const void **frame, size_t *len);

/* A datagram (gossip) that arrived on the node's UDP port, from anyone:
 * anything malformed is counted and dropped. */
void node_datagram(node *n, const void *buf, size_t len);
/* The world's connection to the peer at addr failed or closed (world.h,
 * PEERS): requests waiting on that peer fail over now. */
void node_peer_down(node *n, const char *addr);
/* This node's address for peers and clients: the listen address given, or
 * when none was, the one its MEMBERS file records (dynkvd listens there). */
const char *node_addr(const node *n);

/* From now on every new request is answered with a SHUTDOWN error, and
 * no background job (hint file, merge) starts; jobs already running end
 * as they will. */
void node_drain(node *n);
/* Requests not yet answered (waiting for a sync or for replicas), plus one
 * while a sync batch, a store's background job (hint file, merge) or a
 * hinted-handoff batch runs.  Anti-entropy scans and the reaper's are
 * left out (they are not requests; they never end on an idle node while
 * it runs), but node_close waits for them too. */
size_t node_inflight(const node *n);
void node_stats_get(const node *n, node_stats *st);
/* The node's id, as recorded. */
const char *node_id(const node *n);

/* This node's own copy of key, read from its partition's store without
 * asking any peer, and whether the node is one of the key's primaries
 * (*primary, may be NULL).  0 and *obj (NULL when the store holds nothing
 * for key; caller frees with object_free), or the store's error.  For
 * tests that check every replica after healing (tests/sim/). */
int node_local_object(node *n, const void *key, size_t klen, object **obj, bool *primary);

/* Check the node's invariants (every request against coord.h's lifecycle
 * table): 0, or -1 with the first violation in err.  For tests. */
int node_check(const node *n, char *err, size_t errlen);

/* Fail whatever is still in flight (SHUTDOWN), sync and close every store,
 * release the lock and free the node.  0 or the first sync/close error;
 * DKV_EBUSY while a sync batch or a background job runs: then no new
 * background job starts any more (as after node_drain), and nothing else
 * is done: run the loop and call again. */
int node_close(node *n);

#endif /* DKV_NODE_H */
