/*
 * coord.h -- the request coordinator: the get, put and delete state
 * machines over a key's preference list (DESIGN section 6), and requests
 * forwarded to a key's coordinator.
 *
 * GET: every primary that is not down is asked (this node through its own
 * store, the others with RGET); the request answers once R replies (PR of
 * them from primaries) are in, with the merged siblings and a context, or
 * fails once that can no longer happen, saying how many answered.  Once
 * every replica asked has answered (or the deadline passes), the replicas
 * that answered with something else than the merged object are sent it
 * (read repair, through replica_push or vnode_merge).
 * PUT/DELETE: coordinated by a primary (any other node forwards the
 * request whole to the first primary not down, FWD, and relays the answer
 * it gets back, FWDREPLY).  The coordinator makes the new version from the
 * context, stores it, pushes it to the other primaries and answers after W
 * acknowledgements (PW of them primaries); with sync = always its own
 * acknowledgement waits for a durability batch (durable.h).  The OK says
 * how many live siblings the new version has, when the client asked.
 * REPLACE MODE (a PUT or DELETE with "replace": 1, dynkv-protocol(7)):
 * the coordinator first reads the key exactly as a GET does, with the
 * request's R and PR (READING), then makes the new version with, as its
 * context, everything that read returned merged with its own copy as it
 * stands at that moment.  So replace-mode writes through one coordinator
 * supersede each other in the order they are applied, however many run at
 * once; only writes that different coordinators make at the same time can
 * end up siblings (property 2 holds: a write that neither read saw is
 * kept).  A read that fails (R or PR not met, deadline) fails the write
 * with that error, and nothing is written: it never turns into a blind
 * write.
 *
 * THE LIFECYCLE OF A REQUEST (what coord_check() asserts)
 *
 *  (replace) READING --R replies: write made, pushed--> PENDING
 *                |
 *                +--R impossible, deadline, or the write refused--> freed
 *
 *     PENDING --quorum met or impossible--> LINGER --last replica--> freed
 *        |   \_____________________________________________________/^
 *        |                 (quorum decided with nothing outstanding)
 *        +--deadline--+                      LINGER --deadline--> freed
 *                     v                                |
 *                 ABANDONED <--deadline, own sync running
 *                     |
 *                     +--its durability batch ends--> freed
 *
 *   state      answered  waiting for                     deadline timer
 *   READING    no        replicas' copies (RGET); no      armed
 *                        version made, no sync
 *   PENDING    no        replicas, and/or its own sync    armed
 *   LINGER     yes       replicas, and/or its own sync    armed
 *   ABANDONED  yes       only its own sync (a batch       none
 *                        always ends)
 *
 *   transition                         function
 *   (new) -> PENDING                   req_start (req_new + req_arm)
 *   (new, replace) -> READING          coord_write, read_start
 *   READING -> PENDING                 read_finish -> write_apply
 *   READING -> freed                   read_finish (R cannot be met, or
 *                                      write_make refuses), req_timeout
 *   PENDING -> LINGER / freed          req_finish (after slot_done)
 *   LINGER -> freed                    req_finish (after slot_done)
 *   PENDING|LINGER -> freed            req_timeout (no sync running)
 *   PENDING|LINGER -> ABANDONED        req_timeout (its sync running)
 *   ABANDONED -> freed                 write_synced
 *   any -> freed                       coord_free (node_close)
 *
 *   The deadline is the whole request's: READING and the write share it.
 *   A replace-mode read does not read-repair (its write supersedes what
 *   the replicas hold) and ignores the copies that come after R.
 *   A GET read-repairs when it leaves LINGER (or PENDING) for freed.  A
 *   forwarded request (FWD) is PENDING until the coordinator's answer, the
 *   coordinator's connection failing, or its deadline frees it.
 *
 * Loop thread only.
 */
#ifndef DKV_COORD_H
#define DKV_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capacity.h"
#include "dkv_config.h"
#include "dotseq.h"
#include "durable.h"
#include "handoff.h"
#include "hist.h"
#include "log.h"
#include "metrics.h"
#include "object.h"
#include "peer.h"
#include "placement.h"
#include "proto.h"
#include "replica.h"
#include "reply.h"
#include "vnode.h"
#include "world.h"

typedef struct coord coord;

typedef struct coord_env {
	world *w;
	dkv_log *log;                /* NULL: no logging */
	const dkv_config *cfg;       /* defaults r, w; request_timeout; sync;
	                              * vclock_max (borrowed) */
	const char *const *self;     /* our address (borrowed) */
	const char *node_id;         /* for messages (borrowed) */
	uint64_t actor;              /* our name in version vectors */
	dotseq *ds;                  /* where our dots' counters come from */
	uint32_t n_val;
	size_t max_object;           /* largest encoded object stored */
	object_limits olim;
	placement *pl;
	vnode_set *vs;
	durable *dur;
	reply *rp;
	replica *rep;
	handoff *ho;                 /* hint stores, when this node stands in */
	capacity *cap;               /* the load window (NULL: none) */
} coord_env;

typedef struct coord_stats {
	uint64_t gets, puts, deletes;  /* requests answered with success, by type */
	uint64_t forwarded;            /* writes sent to a coordinator */
	uint64_t read_repairs;         /* stale replicas sent the merged object */
	size_t inflight;               /* requests not yet freed */
} coord_stats;

int coord_new(coord **out, const coord_env *env);
/* Answer whatever is in flight with SHUTDOWN and free it, then free c.
 * No durability batch may be running. */
void coord_free(coord *c);

/* A client's GET, PUT or DELETE (m and payload borrowed for the call;
 * payload is the whole frame, forwarded as it is).  forwarded: it came
 * from another node in a FWD (it is not forwarded again). */
void coord_get(coord *c, uint64_t client, const proto_msg *m);
void coord_write(coord *c, uint64_t client, const proto_msg *m, const void *payload,
		 size_t len, bool forwarded);
/* A peer's answer for one of our requests: RVALUE, RACK or FWDREPLY. */
void coord_peer_answer(coord *c, const peer_msg *pm);
/* The peer at addr is gone (connection failed, or SWIM says down): fail
 * now what waits on it. */
void coord_peer_gone(coord *c, const char *addr);

/* Requests answered to this node's clients, by operation and result, and
 * their latency (metrics.h); live values per GET that found some. */
typedef struct coord_metrics {
	uint64_t requests[METRICS_NOPS][METRICS_NRESULTS];
	hist *latency_us[METRICS_NOPS];   /* microseconds */
	hist *siblings;
} coord_metrics;

void coord_stats_get(const coord *c, coord_stats *st);
/* Borrowed for c's life. */
const coord_metrics *coord_metrics_get(const coord *c);
/* Request latency in microseconds (borrowed for c's life). */
const hist *coord_latency(const coord *c);

/* Check every request against the lifecycle above: 0, or -1 with the first
 * violation in err.  For tests, after every step; each transition also
 * asserts the one request it moved (assert(3): compiled in unless NDEBUG). */
int coord_check(const coord *c, char *err, size_t errlen);

#endif /* DKV_COORD_H */
