#include "config.h"
/*
 * node.c -- the node: the composition root that wires its modules
 * together and dispatches what arrives to them.  See node.h, and dynkv(7)
 * ARCHITECTURE for the map of the modules.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aae.h"
#include "admin.h"
#include "cluster.h"
#include "coord.h"
#include "datadir.h"
#include "durable.h"
#include "error.h"
#include "handoff.h"
#include "node.h"
#include "object.h"
#include "peer.h"
#include "placement.h"
#include "proto.h"
#include "reaper.h"
#include "transfer.h"
#include "replica.h"
#include "reply.h"
#include "vnode.h"

/* Room in a frame for everything but the stored object (key, header). */
#define FRAME_SLACK      1024u

struct node {
	dkv_config cfg;            /* our own copy; cfg.listen is our address */
	world *w;
	dkv_log *log;
	datadir *dd;               /* the data directory: lock and identity */
	datadir_identity ident;    /* node_id, actor, ring_size, n_val */
	dotseq *ds;                /* the counters of our dots (DOTS) */
	handoff *ho;               /* hint stores and their delivery */
	aae *ae;                   /* anti-entropy trees and exchanges */
	reaper *rp_;               /* tombstone reaping */
	transfer *tr;              /* ownership transfer */
	capacity *cap;             /* the load window (dynkv-admin capacity) */
	proto_limits lim;          /* for decoding client frames */
	bool draining;             /* true iff new requests get SHUTDOWN */
	bool started;              /* true iff node_start has succeeded */
	node_fatal_fn on_fatal;    /* told when the node must stop (NULL: nobody) */
	void (*on_left)(void *ctx);   /* told when its leave is done (NULL: nobody) */
	void *left_ctx;
	void *fatal_ctx;           /* on_fatal's argument */

	/* the modules, in the order node_open makes them */
	cluster *cl;               /* membership and liveness */
	placement *pl;             /* the ring view */
	vnode_set *vs;             /* the partition stores */
	durable *dur;              /* sync batches */
	reply *rp;                 /* answers to clients and forwarders */
	replica *rep;              /* the replica side */
	coord *co;                 /* the request state machines */
	admin *ad;                 /* dynkv-admin's answers */

	/* counters of what the node itself handles */
	uint64_t pings, datagrams, peer_downs, bad_peer_messages, peer_refused;
	uint64_t requests;         /* gets, puts and deletes, and replica reads
	                            * and writes, served: the handoff pace
	                            * yields while it moves (pace.h) */
};

void node_error_frame(node *n, uint32_t code, const char *msg,
		      const void **frame, size_t *len)
{
	reply_error_frame(n->rp, code, msg, frame, len);
}

/* --- what the cluster tells us -------------------------------------------- */

static void ring_changed(void *arg)
{
	node *n = arg;

	if (n->pl != NULL)   /* NULL while cluster_open runs: node_open builds it next */
		placement_rebuild(n->pl);
	transfer_ring_changed(n->tr);
}

/* A peer is unreachable: fail now what waits on it. */
static void peer_gone(node *n, const char *addr)
{
	coord_peer_gone(n->co, addr);
	handoff_peer_gone(n->ho, addr);
	aae_peer_gone(n->ae, addr);
	reaper_peer_gone(n->rp_, addr);
	if (n->tr != NULL)
		transfer_peer_gone(n->tr, addr);
	admin_peer_gone(n->ad, addr);
}

static void on_member_down(void *arg, const char *addr)
{
	node *n = arg;

	if (n->co != NULL)
		peer_gone(n, addr);
}

/* Our id is taken by another data directory: the cluster stopped. */
static void on_conflict(void *arg, const char *msg)
{
	node *n = arg;

	/* a `dynkv-admin join` that led here hears why, before the node stops */
	if (n->ad != NULL)
		admin_fail_joins(n->ad, PROTO_ERR_INVALID, msg);
	if (n->on_fatal != NULL)
		n->on_fatal(n->fatal_ctx, msg);
}

/* No store is read on the pool: transfer may drop one. */
static bool stores_quiet(void *arg)
{
	node *n = arg;

	return !aae_busy(n->ae) && !reaper_busy(n->rp_) && !handoff_busy(n->ho);
}

static void on_left(void *arg)
{
	node *n = arg;

	if (n->on_left != NULL)
		n->on_left(n->left_ctx);
}

static bool holds_hints(void *arg)
{
	node *n = arg;
	handoff_stats hs;

	if (n->ho == NULL)
		return false;
	handoff_stats_get(n->ho, &hs);
	return hs.pending_keys > 0;
}

static bool holds_epoch(void *arg, size_t k, size_t base)
{
	node *n = arg;

	/* (the cluster asks only once started: the modules exist) */
	return n->tr != NULL && transfer_holds_epoch(n->tr, k, base);
}

static uint64_t local_keys(void *arg)
{
	node *n = arg;
	uint64_t keys = 0, bytes;

	if (n->vs != NULL)
		vnode_stored(n->vs, &keys, &bytes);
	return keys;
}

void node_peer_down(node *n, const char *addr)
{
	n->peer_downs++;
	peer_gone(n, addr);
	cluster_peer_down(n->cl, addr);
}

void node_datagram(node *n, const void *buf, size_t len)
{
	n->datagrams++;
	cluster_datagram(n->cl, buf, len);
}

/* --- dispatch ------------------------------------------------------------- */

static int handle_client(node *n, uint64_t client, const void *payload, size_t len,
			 bool forwarded);

/* A FWD: coordinate the request inside it as if its client were here. */
static void on_fwd(node *n, const peer_msg *pm)
{
	const char *from = placement_intern(n->pl, pm->from);
	uint64_t client = from != NULL ? reply_remote(n->rp, from, pm->id) : 0;

	if (client == 0)
		return;   /* out of memory: the forwarder times out */
	(void)handle_client(n, client, pm->data, pm->datalen, true);
}

static void handle_peer(node *n, const void *payload, size_t len)
{
	char err[128];
	peer_msg pm;

	if (peer_decode(payload, len, &pm, err, sizeof(err)) != 0) {
		n->bad_peer_messages++;
		dkv_log_opt(n->log, DKV_LOG_DEBUG, "dropped a peer message: %s", err);
		return;
	}
	/* Peer messages travel on the same port as clients: only a member
	 * may send them (its address is in the membership), so that a client
	 * cannot make this node write replicas or remember strangers.  SYNC is
	 * how a new node asks to join: anyone may send it.  (Authenticating
	 * members is the security issue's: a client that forges a member's
	 * address is not stopped here.) */
	if (pm.type != PEER_SYNC && cluster_find_addr(n->cl, pm.from) == NULL) {
		n->peer_refused++;
		dkv_log_opt(n->log, DKV_LOG_DEBUG,
			    "dropped a peer message (type %u) from %s: not a member's address",
			    pm.type, pm.from);
		return;
	}
	if (n->w->ops->peer_heard != NULL)
		n->w->ops->peer_heard(n->w, pm.from);
	switch (pm.type) {
	case PEER_FWD:      on_fwd(n, &pm); break;
	case PEER_FWDREPLY:
	case PEER_RVALUE:
	case PEER_RACK:     coord_peer_answer(n->co, &pm); break;
	case PEER_RGET:     n->requests++; replica_rget(n->rep, &pm); break;
	case PEER_RPUT:     n->requests++; replica_rput(n->rep, &pm); break;
	case PEER_SYNC:     cluster_sync(n->cl, &pm); break;
	case PEER_HOFF:     handoff_hoff(n->ho, &pm); break;
	case PEER_HACK:     handoff_hack(n->ho, &pm); break;
	case PEER_AAEREQ:   aae_req(n->ae, &pm); break;
	case PEER_AAESYM:   aae_sym(n->ae, &pm); break;
	case PEER_AAEWANT:  aae_want(n->ae, &pm); break;
	case PEER_REAPQ:    reaper_reapq(n->rp_, &pm); break;
	case PEER_REAP:     reaper_reap(n->rp_, &pm); break;
	case PEER_REAPA:    reaper_reapa(n->rp_, &pm); break;
	case PEER_XREQ:     transfer_xreq(n->tr, &pm); break;
	case PEER_XDATA:    transfer_xdata(n->tr, &pm); break;
	default:            break;
	}
}

static int handle_client(node *n, uint64_t client, const void *payload, size_t len,
			 bool forwarded)
{
	char err[256];
	proto_msg m;
	int rc;

	rc = proto_decode(payload, len, &n->lim, &m, err, sizeof(err));
	if (rc == DKV_EPROTO && m.header_ok && proto_type_name(m.type) == NULL) {
		/* A whole frame of a type this node does not know (a newer
		 * client?): the stream is intact, so answer and go on. */
		reply_error(n->rp, client, m.id, PROTO_ERR_TYPE, "%s", err);
		return 0;
	}
	if (rc != 0) {
		uint32_t code = rc == DKV_EVERSION ? PROTO_ERR_VERSION :
				rc == DKV_ETOOBIG ? PROTO_ERR_TOOBIG :
				rc == DKV_EINVAL ? PROTO_ERR_INVALID :
				rc == -ENOMEM ? PROTO_ERR_INTERNAL : PROTO_ERR_PROTOCOL;

		reply_error(n->rp, client, m.id, code, "%s", err);
		/* A well-formed request with a bad key, value or option is
		 * answered; anything else leaves us unable to trust the
		 * stream. */
		return rc == DKV_ETOOBIG || rc == DKV_EINVAL ? 0 : DKV_EPROTO;
	}
	if (!proto_is_request(m.type)) {
		reply_error(n->rp, client, m.id, PROTO_ERR_TYPE, "%s is a reply, not a request",
			    proto_type_name(m.type));
		proto_msg_release(&m);
		return DKV_EPROTO;
	}
	if (n->draining) {
		reply_error(n->rp, client, m.id, PROTO_ERR_SHUTDOWN, "node is shutting down");
		proto_msg_release(&m);
		return 0;
	}
	switch (m.type) {
	case PROTO_GET:
		n->requests++;
		coord_get(n->co, client, &m);
		break;
	case PROTO_PUT:
	case PROTO_DELETE:
		n->requests++;
		coord_write(n->co, client, &m, payload, len, forwarded);
		break;
	case PROTO_PING:
		if (proto_encode_pong(reply_buf(n->rp), m.id) == 0) {
			n->pings++;
			reply_send_buf(n->rp, client);
		}
		break;
	case PROTO_ADMIN:
		admin_request(n->ad, client, &m);
		break;
	default:
		break;
	}
	proto_msg_release(&m);
	return 0;
}

int node_request(node *n, uint64_t client, const void *payload, size_t len)
{
	uint32_t type;
	uint64_t id;

	if (peer_is_peer_frame(payload, len, &type, &id)) {
		handle_peer(n, payload, len);
		return 0;
	}
	return handle_client(n, client, payload, len, false);
}

/* --- open and close ------------------------------------------------------- */

/* Open every partition that has a directory or that this node holds a
 * replica of: keys are counted right from the start, and no request waits
 * for a store's recovery or creation. */
static int open_existing(node *n, char *err, size_t errlen)
{
	uint32_t ring_size = n->ident.ring_size;
	uint32_t *list = calloc(ring_size, sizeof(*list));
	size_t k = 0;
	int rc;

	if (list == NULL)
		return -ENOMEM;
	for (uint32_t p = 0; p < ring_size; p++)
		if (placement_holds(n->pl, p) || vnode_exists(n->vs, p))
			list[k++] = p;
	rc = vnode_open_many(n->vs, list, k, err, errlen);
	free(list);
	return rc;
}

/* Free the modules (stores closed with vnode_set_close, or never opened
 * when vs_rc is not wanted) and the node. */
static int node_free(node *n)
{
	int rc;

	admin_free(n->ad);
	coord_free(n->co);
	replica_free(n->rep);
	handoff_free(n->ho);     /* before the stores: it holds iterators */
	aae_free(n->ae);         /* likewise */
	reaper_free(n->rp_);
	transfer_free(n->tr);
	capacity_free(n->cap);
	durable_free(n->dur);
	rc = vnode_set_close(n->vs);
	reply_free(n->rp);
	cluster_close(n->cl);
	placement_free(n->pl);   /* after: it borrows the cluster */
	dotseq_free(n->ds);
	datadir_close(n->dd);
	dkv_config_free(&n->cfg);
	free(n);
	return rc;
}

static void admin_stats(void *ctx, node_stats *st)
{
	node_stats_get(ctx, st);
}

static void admin_metrics(void *ctx, metrics_snapshot *m)
{
	node *n = ctx;
	const coord_metrics *cm = coord_metrics_get(n->co);

	memcpy(m->requests, cm->requests, sizeof(m->requests));
	for (int i = 0; i < METRICS_NOPS; i++)
		m->latency_us[i] = cm->latency_us[i];
	m->siblings = cm->siblings;
	m->replica_get_us = replica_get_latency(n->rep);
	m->replica_put_us = replica_put_latency(n->rep);
	m->fsync_us = durable_sync_latency(n->dur);
}

/* Every module below the cluster, once the identity and the ring are known
 * (the stores themselves open in node_start). */
static int open_modules(node *n, const bcio *io)
{
	const dkv_config *cfg = &n->cfg;
	const char *const *self = (const char *const *)&n->cfg.listen;
	size_t max_object = cfg->max_frame - FRAME_SLACK - cfg->max_key_size;
	object_limits olim;
	vnode_config vc = { 0 };
	replica_env re;
	handoff_env he;
	aae_env aen;
	reaper_env rpe;
	transfer_env te;
	coord_env ce;
	admin_env ae;
	int rc;

	object_limits_init(&olim);
	olim.max_value = max_object;
	vc.dir = datadir_path(n->dd);
	vc.ring_size = n->ident.ring_size;
	vc.actor = dotseq_actor(n->ds, n->ident.actor);
	vc.max_key_size = (uint32_t)cfg->max_key_size;
	vc.max_object = max_object;
	vc.vclock_max = cfg->vclock_max;
	vc.olim = olim;
	vc.w = n->w;
	vc.io = io;
	vc.log = n->log;
	if ((rc = vnode_set_open(&n->vs, &vc)) != 0 ||
	    (rc = durable_new(&n->dur, n->w, n->vs, n->ident.ring_size, cfg->sync,
			      cfg->sync_interval_ms, n->log)) != 0 ||
	    (rc = reply_new(&n->rp, n->w, self, n->log)) != 0)
		return rc;
	he = (handoff_env){ .w = n->w, .log = n->log, .cfg = cfg, .self = self,
			    .node_id = n->ident.node_id, .dir = datadir_path(n->dd), .pl = n->pl,
			    .vs = n->vs, .dur = n->dur, .olim = olim, .requests = &n->requests };
	if ((rc = handoff_new(&n->ho, &he)) != 0)
		return rc;
	aen = (aae_env){ .w = n->w, .log = n->log, .cfg = cfg, .self = self, .pl = n->pl,
			 .vs = n->vs };
	if ((rc = aae_new(&n->ae, &aen)) != 0)
		return rc;
	rpe = (reaper_env){ .w = n->w, .log = n->log, .cfg = cfg, .self = self, .pl = n->pl,
			    .vs = n->vs, .ho = n->ho, .olim = olim };
	if ((rc = reaper_new(&n->rp_, &rpe)) != 0)
		return rc;
	te = (transfer_env){ .w = n->w, .log = n->log, .cfg = cfg, .self = self,
			     .node_id = n->ident.node_id, .dir = datadir_path(n->dd), .cl = n->cl,
			     .pl = n->pl, .vs = n->vs, .dur = n->dur, .olim = olim,
			     .requests = &n->requests, .quiet = stores_quiet, .ctx = n };
	if ((rc = transfer_new(&n->tr, &te)) != 0 ||
	    (rc = capacity_new(&n->cap, cfg->capacity_window, n->w->ops->now_ms(n->w))) != 0)
		return rc;
	re = (replica_env){ .w = n->w, .log = n->log, .cfg = cfg, .self = self, .pl = n->pl,
			    .vs = n->vs, .dur = n->dur, .ho = n->ho, .node_id = n->ident.node_id,
			    .olim = olim };
	if ((rc = replica_new(&n->rep, &re)) != 0)
		return rc;
	ce = (coord_env){ .w = n->w, .log = n->log, .cfg = cfg, .self = self,
			  .node_id = n->ident.node_id,
			  .actor = dotseq_actor(n->ds, n->ident.actor), .ds = n->ds,
			  .n_val = n->ident.n_val, .max_object = max_object, .olim = olim,
			  .pl = n->pl, .vs = n->vs, .dur = n->dur, .rp = n->rp, .rep = n->rep,
			  .ho = n->ho, .cap = n->cap };
	if ((rc = coord_new(&n->co, &ce)) != 0)
		return rc;
	ae = (admin_env){ .w = n->w, .cfg = cfg, .self = self, .node_id = n->ident.node_id,
			  .cl = n->cl, .pl = n->pl, .vs = n->vs, .ho = n->ho, .ae = n->ae, .tr = n->tr,
			  .cap = n->cap, .rp = n->rp,
			  .stats = admin_stats, .metrics = admin_metrics,
			  .lat = coord_latency(n->co), .ctx = n };
	return admin_new(&n->ad, &ae);
}

int node_open(node **out, const dkv_config *cfg, world *w, dkv_log *log,
	      char *err, size_t errlen)
{
	return node_open_with(out, cfg, w, log, NULL, err, errlen);
}

int node_open_with(node **out, const dkv_config *cfg, world *w, dkv_log *log,
		   const node_open_opts *opts, char *err, size_t errlen)
{
	cluster_hooks hooks;
	node *n;
	int rc;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->w = w;
	n->log = log;
	rc = dkv_config_copy(&n->cfg, cfg);
	if (rc != 0) {
		free(n);
		return rc;
	}
	if ((rc = datadir_open(&n->dd, cfg->data_dir, err, errlen)) != 0)
		goto fail;
	/* nothing is recorded before node_start: a node that cannot bind its
	 * address must not leave an identity naming it */
	if ((rc = datadir_identity_load(n->dd, cfg, &n->ident, err, errlen)) != 0 ||
	    (rc = dotseq_open(&n->ds, datadir_path(n->dd), err, errlen)) != 0)
		goto fail;
	n->lim.max_key = cfg->max_key_size;
	n->lim.max_value = cfg->max_value_size;
	if (cfg->probe_timeout >= cfg->probe_interval) {
		snprintf(err, errlen, "probe_timeout (%u ms) must be shorter than probe_interval "
			 "(%u ms): indirect probes happen between the two",
			 cfg->probe_timeout, cfg->probe_interval);
		rc = DKV_EINVAL;
		goto fail;
	}
	hooks.ctx = n;
	hooks.ring_changed = ring_changed;
	hooks.member_down = on_member_down;
	hooks.local_keys = local_keys;
	hooks.conflict = on_conflict;
	hooks.holds_epoch = holds_epoch;
	hooks.left = on_left;
	hooks.holds_hints = holds_hints;
	rc = cluster_open(&n->cl, w, log, &n->cfg, datadir_path(n->dd), n->ident.node_id,
			  n->ident.actor, n->cfg.listen, !dkv_config_is_set(cfg, "listen"), &hooks,
			  err, errlen);
	if (rc != 0)
		goto fail;
	if (strcmp(cluster_self(n->cl)->addr, n->cfg.listen) != 0) {
		/* restarted without --listen: where the cluster knows us */
		char *a = strdup(cluster_self(n->cl)->addr);

		if (a == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		free(n->cfg.listen);
		n->cfg.listen = a;
	}
	rc = placement_new(&n->pl, n->cl, n->ident.node_id, n->ident.ring_size, n->ident.n_val, log);
	if (rc != 0)
		goto fail;
	placement_rebuild(n->pl);
	if (!placement_has_ring(n->pl) && cluster_self(n->cl)->status == MEMBER_VALID) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = open_modules(n, opts != NULL ? opts->io : NULL)) != 0)
		goto fail;
	if (n->ident.n_val > 1 && cluster_count(n->cl) == 1 && (cfg->seeds == NULL || !cfg->seeds[0]))
		dkv_log_opt(n->log, DKV_LOG_WARNING,
		      "n_val is %u but this node has no peers yet: requests with R or W above 1 "
		      "will fail with \"quorum not met\" until nodes join (start with --n-val 1 "
		      "for a single node, or give --seeds)", n->ident.n_val);
	*out = n;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	(void)node_free(n);
	return rc;
}

int node_start(node *n, char *err, size_t errlen)
{
	int rc;

	if (n->started)
		return 0;
	if ((rc = open_existing(n, err, errlen)) != 0 ||
	    (rc = handoff_start(n->ho, err, errlen)) != 0)
		return rc;
	if ((rc = aae_start(n->ae)) != 0 || (rc = reaper_start(n->rp_)) != 0 ||
	    (rc = transfer_start(n->tr)) != 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	if (n->ident.created) {
		if ((rc = datadir_identity_record(n->dd, &n->ident, err, errlen)) != 0)
			return rc;
		dkv_log_opt(n->log, DKV_LOG_INFO, "created node %s in %s (ring_size %u, n_val %u)",
			    n->ident.node_id, datadir_path(n->dd), n->ident.ring_size,
			    n->ident.n_val);
	}
	if ((rc = cluster_start(n->cl, err, errlen)) != 0)
		return rc;
	n->started = true;
	return 0;
}

void node_on_left(node *n, void (*fn)(void *ctx), void *ctx)
{
	n->on_left = fn;
	n->left_ctx = ctx;
}

void node_on_fatal(node *n, node_fatal_fn fn, void *ctx)
{
	n->on_fatal = fn;
	n->fatal_ctx = ctx;
}

const char *node_failure(const node *n)
{
	return cluster_conflict(n->cl);
}

const char *node_addr(const node *n)
{
	return n->cfg.listen;
}

void node_drain(node *n)
{
	n->draining = true;
	vnode_quiesce(n->vs);   /* no merge starts while the node stops */
	handoff_quiesce(n->ho);
	aae_quiesce(n->ae);
	reaper_quiesce(n->rp_);
	transfer_quiesce(n->tr);
}

size_t node_inflight(const node *n)
{
	coord_stats cs;
	replica_stats rs;

	coord_stats_get(n->co, &cs);
	replica_stats_get(n->rep, &rs);
	return cs.inflight + rs.acks_waiting + admin_pending(n->ad) +
	       (durable_running(n->dur) ? 1 : 0) + (vnode_busy(n->vs) ? 1 : 0) +
	       (handoff_busy(n->ho) ? 1 : 0);
}

const char *node_id(const node *n)
{
	return n->ident.node_id;
}

void node_stats_get(const node *n, node_stats *st)
{
	coord_stats cs;
	replica_stats rs;
	handoff_stats hs;
	aae_stats as;
	reaper_stats rs2;

	coord_stats_get(n->co, &cs);
	replica_stats_get(n->rep, &rs);
	memset(st, 0, sizeof(*st));
	st->gets = cs.gets;
	st->puts = cs.puts;
	st->deletes = cs.deletes;
	st->pings = n->pings;
	st->errors = reply_errors(n->rp);
	st->syncs = durable_batches(n->dur);
	st->datagrams = n->datagrams;
	st->peer_downs = n->peer_downs;
	st->forwarded = cs.forwarded;
	st->replica_reads = rs.reads;
	st->replica_writes = rs.writes;
	st->read_repairs = cs.read_repairs;
	st->bad_peer_messages = n->bad_peer_messages;
	st->peer_refused = n->peer_refused;
	st->peer_addrs = placement_interned(n->pl);
	st->members = placement_members(n->pl);   /* of every active epoch */
	st->ring_epochs = placement_epochs(n->pl);
	st->inflight = node_inflight(n);
	st->partitions_open = vnode_open_count(n->vs);
	st->ring_size = n->ident.ring_size;
	st->n_val = n->ident.n_val;
	st->actor = n->ident.actor;
	st->dot_actor = dotseq_actor(n->ds, n->ident.actor);
	st->id_conflicts = cluster_get_stats(n->cl)->id_conflicts;
	handoff_stats_get(n->ho, &hs);
	st->hints_pending = hs.pending_keys;
	st->hints_delivered = hs.delivered_keys;
	st->hints_removed = hs.removed_keys;
	st->hints_refused = hs.refused;
	aae_stats_get(n->ae, &as);
	st->aae_exchanges = as.exchanges;
	st->aae_repaired = as.repaired;
	reaper_stats_get(n->rp_, &rs2);
	st->tombstones_waiting = rs2.candidates;
	st->tombstones_reaped = rs2.reaped;
	st->reap_rounds_failed = rs2.failed;
}

int node_local_object(node *n, const void *key, size_t klen, object **obj, bool *primary)
{
	uint32_t p = placement_partition(n->pl, key, klen);

	if (primary != NULL)
		*primary = placement_holds(n->pl, p);
	return vnode_read(n->vs, p, key, klen, obj);
}

int node_check(const node *n, char *err, size_t errlen)
{
	return coord_check(n->co, err, errlen);
}

int node_close(node *n)
{
	if (n == NULL)
		return 0;
	/* closing: no background job starts from now on (they are not
	 * requests, node_inflight leaves them out; the close waits for them) */
	vnode_quiesce(n->vs);
	handoff_quiesce(n->ho);
	aae_quiesce(n->ae);
	reaper_quiesce(n->rp_);
	transfer_quiesce(n->tr);
	durable_quiesce(n->dur);   /* after them: their last waiters */
	if (durable_running(n->dur) || vnode_busy(n->vs) || handoff_busy(n->ho) ||
	    aae_busy(n->ae) || reaper_busy(n->rp_) || transfer_busy(n->tr))
		return DKV_EBUSY;   /* the world still holds the stores */
	return node_free(n);
}
