/*
 * replica.h -- the replica side: what this node does for a peer that
 * coordinates a request (RGET, RPUT), and the one way an object is pushed
 * to another replica (replica_push), shared by the coordinator's writes,
 * read repair and, later, hinted handoff and anti-entropy.
 *
 * A replica write merges the pushed object into the local one (vnode_merge:
 * never overwriting a newer or concurrent version).  When the push asks
 * for an acknowledgement (RPUT's flag), the RACK is sent once the write is
 * durable under the node's sync policy: with sync = always only after a
 * durability batch (durable.h) that covers it, also when the merge changed
 * nothing (what is acknowledged may have been appended just before by
 * someone else and not be synced yet).
 *
 * Loop thread only.
 */
#ifndef DKV_REPLICA_H
#define DKV_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"
#include "durable.h"
#include "handoff.h"
#include "hist.h"
#include "log.h"
#include "object.h"
#include "peer.h"
#include "placement.h"
#include "vnode.h"
#include "world.h"

typedef struct replica replica;

typedef struct replica_env {
	world *w;
	dkv_log *log;                /* NULL: no logging */
	const dkv_config *cfg;       /* max_key_size, sync (borrowed) */
	const char *const *self;     /* our address, as peers know it (borrowed) */
	placement *pl;
	vnode_set *vs;
	durable *dur;
	handoff *ho;                 /* hint stores, for writes as a fallback */
	const char *node_id;         /* ours (borrowed) */
	object_limits olim;
} replica_env;

typedef struct replica_stats {
	uint64_t reads;              /* RGET served */
	uint64_t writes;             /* RPUT applied or refused */
	uint64_t acks_waiting;       /* RACKs waiting for a durability batch now */
} replica_stats;

int replica_new(replica **out, const replica_env *env);
void replica_free(replica *r);

/* A peer's RGET / RPUT (decoded, borrowed for the call). */
void replica_rget(replica *r, const peer_msg *pm);
void replica_rput(replica *r, const peer_msg *pm);

/* Send the encoded object enc under key to the replica at `to` (an RPUT;
 * with want_ack it answers RACK with id pid); owner: NULL, or the node id
 * of the primary a fallback at `to` stands in for (it keeps the object in
 * its hint store for owner).  0 when queued, or the world's send error
 * (the push is lost). */
int replica_push(replica *r, const char *to, uint64_t pid, const void *key, size_t klen,
		 const void *enc, size_t len, bool want_ack, const char *owner);

void replica_stats_get(const replica *r, replica_stats *st);
/* Microseconds from an RGET's arrival to its RVALUE, and from an RPUT's
 * to its RACK (sync = always: after the durability batch), for
 * acknowledged RPUTs (borrowed for r's life). */
const hist *replica_get_latency(const replica *r);
const hist *replica_put_latency(const replica *r);

#endif /* DKV_REPLICA_H */
