/*
 * admin.h -- the answers to dynkv-admin (ADMIN frames, dynkv-protocol(7)):
 * members, ring, status, preflist KEY, join SEED, leave [NODE], remove
 * NODE.  Answers are INFO frames holding one msgpack map, whose fields
 * dynkv-admin(1) documents; refusals are ERROR frames that say why.
 *
 * A join waits (polling every 50 ms) until the seed's state has arrived,
 * the seed is found unreachable (admin_peer_gone), or its deadline passes.
 *
 * Loop thread only.
 */
#ifndef DKV_ADMIN_H
#define DKV_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "capacity.h"
#include "cluster.h"
#include "dkv_config.h"
#include "aae.h"
#include "handoff.h"
#include "hist.h"
#include "metrics.h"
#include "node.h"
#include "placement.h"
#include "proto.h"
#include "reply.h"
#include "transfer.h"
#include "vnode.h"
#include "world.h"

typedef struct admin admin;

typedef struct admin_env {
	world *w;
	const dkv_config *cfg;       /* request_timeout (borrowed) */
	const char *const *self;     /* our address (borrowed) */
	const char *node_id;         /* (borrowed) */
	cluster *cl;
	placement *pl;
	vnode_set *vs;
	handoff *ho;                 /* hints (dynkv-admin hints) */
	aae *ae;                     /* anti-entropy (dynkv-admin aae) */
	transfer *tr;                /* ownership transfer (dynkv-admin transfers) */
	capacity *cap;               /* the load window (dynkv-admin capacity) */
	reply *rp;
	/* The node's figures for status (node_stats_get), and its latency. */
	void (*stats)(void *ctx, node_stats *st);
	const hist *lat;
	/* The parts of the metrics snapshot (metrics.h) only the node's
	 * request modules know: requests by result, the latencies, fsyncs. */
	void (*metrics)(void *ctx, metrics_snapshot *m);
	void *ctx;
} admin_env;

int admin_new(admin **out, const admin_env *env);
/* Answer pending joins with SHUTDOWN, free a. */
void admin_free(admin *a);

/* One ADMIN request (m borrowed for the call). */
void admin_request(admin *a, uint64_t client, const proto_msg *m);
/* The peer at addr is unreachable: a join waiting on it fails now. */
void admin_peer_gone(admin *a, const char *addr);
/* Answer every join waiting for its seed with ERROR code and msg (the
 * node cannot join: its id is taken), and end them. */
void admin_fail_joins(admin *a, uint32_t code, const char *msg);
/* Joins waiting for their seed. */
size_t admin_pending(const admin *a);

#endif /* DKV_ADMIN_H */
