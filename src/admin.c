#include "config.h"
/*
 * admin.c -- the answers to dynkv-admin.  See admin.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "admin.h"
#include "error.h"
#include "ring.h"

#define RATE_WINDOW      10                /* seconds in requests_per_sec */
#define JOIN_POLL_MS     50

/* A join waiting for its seed. */
typedef struct join {
	struct join *next;
	admin *a;
	uint64_t client, id;       /* who asked */
	const char *seed;          /* interned */
	size_t members_before;     /* cluster_count() when it began */
	uint64_t started_ms;
	uint32_t timeout_ms;
	world_timer *timer;
} join;

struct admin {
	admin_env env;
	uint32_t ring_size, n_val;
	uint64_t started_ms;
	uint64_t rate[RATE_WINDOW];/* requests answered, one sample a second */
	unsigned rate_at;
	world_timer *rate_timer;
	join *joins;               /* waiting for their seeds */
	size_t njoins;
};

#define PKS(pk, s) msgpack_pack_str_with_body(pk, s, strlen(s))

static uint64_t requests_total(const node_stats *st)
{
	return st->gets + st->puts + st->deletes + st->pings + st->errors;
}

static void rate_tick(void *arg)
{
	admin *a = arg;
	node_stats st;

	a->rate_timer = a->env.w->ops->timer_add(a->env.w, 1000, rate_tick, a);
	a->env.stats(a->env.ctx, &st);
	a->rate[a->rate_at++ % RATE_WINDOW] = requests_total(&st);
}

static double requests_per_sec(const admin *a, const node_stats *st)
{
	unsigned have = a->rate_at < RATE_WINDOW ? a->rate_at : RATE_WINDOW;
	uint64_t oldest;

	if (have == 0)
		return 0;
	oldest = a->rate[(a->rate_at - have) % RATE_WINDOW];
	return (double)(requests_total(st) - oldest) / have;
}

static uint64_t local_keys(admin *a)
{
	uint64_t keys, bytes;

	vnode_stored(a->env.vs, &keys, &bytes);
	return keys;
}

int admin_new(admin **out, const admin_env *env)
{
	admin *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (a == NULL)
		return -ENOMEM;
	a->env = *env;
	a->ring_size = placement_ring_size(env->pl);
	a->n_val = placement_n_val(env->pl);
	a->started_ms = env->w->ops->now_ms(env->w);
	a->rate_timer = env->w->ops->timer_add(env->w, 1000, rate_tick, a);
	if (a->rate_timer == NULL) {
		free(a);
		return -ENOMEM;
	}
	*out = a;
	return 0;
}

static void join_end(admin *a, join *j)
{
	join **pp = &a->joins;

	while (*pp != j)
		pp = &(*pp)->next;
	*pp = j->next;
	a->njoins--;
	if (j->timer != NULL)
		a->env.w->ops->timer_cancel(a->env.w, j->timer);
	free(j);
}

void admin_free(admin *a)
{
	if (a == NULL)
		return;
	while (a->joins != NULL) {
		reply_error(a->env.rp, a->joins->client, a->joins->id, PROTO_ERR_SHUTDOWN,
			    "node is shutting down");
		join_end(a, a->joins);
	}
	if (a->rate_timer != NULL)
		a->env.w->ops->timer_cancel(a->env.w, a->rate_timer);
	free(a);
}

void admin_fail_joins(admin *a, uint32_t code, const char *msg)
{
	while (a->joins != NULL) {
		reply_error(a->env.rp, a->joins->client, a->joins->id, code, "join: %s", msg);
		join_end(a, a->joins);
	}
}

size_t admin_pending(const admin *a)
{
	return a->njoins;
}

void admin_peer_gone(admin *a, const char *addr)
{
	const char *s = placement_intern(a->env.pl, addr);
	join *j, *next;

	for (j = a->joins; s != NULL && j != NULL; j = next) {
		next = j->next;
		if (j->seed != s)
			continue;
		reply_error(a->env.rp, j->client, j->id, PROTO_ERR_TIMEOUT, "join: cannot reach %s", s);
		join_end(a, j);
	}
}

/* Send an INFO answer holding out's map. */
static void send_info(admin *a, uint64_t client, uint64_t id, const msgpack_sbuffer *out)
{
	if (proto_encode_info(reply_buf(a->env.rp), id, out->data, out->size) == 0)
		reply_send_buf(a->env.rp, client);
	else
		reply_error(a->env.rp, client, id, PROTO_ERR_INTERNAL, "out of memory");
}

static void admin_members(admin *a, msgpack_packer *pk)
{
	size_t nc = cluster_count(a->env.cl);

	const epochs *ep = cluster_epochs(a->env.cl);

	msgpack_pack_map(pk, 2);
	PKS(pk, "members");
	msgpack_pack_array(pk, (uint32_t)nc);
	for (size_t i = 0; i < nc; i++) {
		const member *m = cluster_at(a->env.cl, i);

		msgpack_pack_map(pk, 10);
		PKS(pk, "id");
		PKS(pk, m->id);
		PKS(pk, "addr");
		PKS(pk, m->addr);
		PKS(pk, "status");
		PKS(pk, member_status_name(m->status));
		PKS(pk, "liveness");
		/* nobody probes a removed member: what it last had means nothing */
		PKS(pk, m->status == MEMBER_REMOVED ? "-" : member_liveness_name(m->liveness));
		PKS(pk, "incarnation");
		msgpack_pack_uint64(pk, m->incarnation);
		PKS(pk, "version");
		msgpack_pack_uint64(pk, m->version);
		PKS(pk, "keys");
		msgpack_pack_uint64(pk, m == cluster_self(a->env.cl) ? local_keys(a) : m->keys);
		/* its progress along the ring epochs, as it last reported (0: none) */
		PKS(pk, "epoch_ack");
		msgpack_pack_uint64(pk, m->has_progress ? m->progress.ack[0] : 0);
		PKS(pk, "epoch_sync");
		msgpack_pack_uint64(pk, m->has_progress ? m->progress.sync[0] : 0);
		PKS(pk, "epoch_read");
		msgpack_pack_uint64(pk, m->has_progress ? m->progress.read[0] : 0);
	}
	PKS(pk, "epochs");
	msgpack_pack_array(pk, (uint32_t)epochs_count(ep));
	for (size_t i = 0; i < epochs_count(ep); i++) {
		size_t n;
		const char *const *ids = epochs_members(ep, i, &n);

		msgpack_pack_map(pk, 2);
		PKS(pk, "number");
		msgpack_pack_uint64(pk, epochs_id(ep, i).number);
		PKS(pk, "members");
		msgpack_pack_array(pk, (uint32_t)n);
		for (size_t k = 0; k < n; k++)
			PKS(pk, ids[k]);
	}
}

/* "ownership": [{"id", "replicas", "first", "share"}] of rg (NULL: none):
 * each member's replicas and first places, and its share of all replicas. */
static void pack_ownership(msgpack_packer *pk, const ring *rg)
{
	size_t nm = rg ? ring_members(rg) : 0;
	uint32_t np = rg ? ring_n(rg) : 0, q = rg ? ring_size(rg) : 0;
	uint64_t *reps = calloc(nm ? nm : 1, sizeof(*reps));
	uint64_t *firsts = calloc(nm ? nm : 1, sizeof(*firsts));

	if (reps == NULL || firsts == NULL)
		nm = 0;
	for (uint32_t p = 0; nm > 0 && p < q; p++) {
		const uint32_t *pl = ring_preflist(rg, p);

		firsts[pl[0]]++;
		for (uint32_t i = 0; i < np; i++)
			reps[pl[i]]++;
	}
	PKS(pk, "ownership");
	msgpack_pack_array(pk, (uint32_t)nm);
	for (size_t i = 0; i < nm; i++) {
		msgpack_pack_map(pk, 4);
		PKS(pk, "id");
		PKS(pk, ring_member_id(rg, i));
		PKS(pk, "replicas");
		msgpack_pack_uint64(pk, reps[i]);
		PKS(pk, "first");
		msgpack_pack_uint64(pk, firsts[i]);
		PKS(pk, "share");
		msgpack_pack_double(pk, (double)reps[i] / ((double)q * np));
	}
	free(reps);
	free(firsts);
}

/* The newest ring epoch's ring (what the ring is becoming), or NULL. */
static const ring *newest_ring(const admin *a)
{
	size_t ne = placement_epochs(a->env.pl);

	return ne > 0 ? placement_epoch_ring(a->env.pl, ne - 1) : NULL;
}

static void admin_ring(admin *a, msgpack_packer *pk)
{
	const ring *rg = newest_ring(a);
	size_t nm = rg ? ring_members(rg) : 0;
	uint32_t np = rg ? ring_n(rg) : 0;

	size_t ne = placement_epochs(a->env.pl);

	msgpack_pack_map(pk, 6);
	PKS(pk, "ring_size");
	msgpack_pack_uint32(pk, a->ring_size);
	PKS(pk, "n_val");
	msgpack_pack_uint32(pk, a->n_val);
	/* the ring shown is the newest epoch's; while older ones are active
	 * (a change under way) reads count in the read epoch */
	PKS(pk, "epochs");
	msgpack_pack_uint64(pk, ne);
	PKS(pk, "settled");
	if (ne == 1)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	pack_ownership(pk, rg);
	PKS(pk, "partitions");
	msgpack_pack_array(pk, nm ? a->ring_size : 0);
	for (uint32_t p = 0; nm > 0 && p < a->ring_size; p++) {
		const uint32_t *pl = ring_preflist(rg, p);

		msgpack_pack_map(pk, 2);
		PKS(pk, "index");
		msgpack_pack_uint32(pk, p);
		PKS(pk, "preflist");
		msgpack_pack_array(pk, np);
		for (uint32_t i = 0; i < np; i++)
			PKS(pk, ring_member_id(rg, pl[i]));
	}
}

/* A partition's primaries in rg, as member ids: n of them into out. */
static uint32_t primaries(const ring *rg, uint32_t p, const char **out)
{
	const uint32_t *pl = ring_preflist(rg, p);
	uint32_t n = ring_n(rg);

	for (uint32_t i = 0; i < n; i++)
		out[i] = ring_member_id(rg, pl[i]);
	return n;
}

static bool in_list(const char *const *l, uint32_t n, const char *id)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(l[i], id) == 0)
			return true;
	return false;
}

/* Where a new replica of a partition would get its data: the k-th old
 * primary the change takes out of the list (it serves until the move is
 * done), else the first old primary -- never `dead` (a removed member,
 * gone): the first other one then.  NULL when none is left. */
static const char *move_source(const char *const *o, uint32_t no, const char *const *nw,
			       uint32_t nn, uint32_t k, const char *dead)
{
	for (uint32_t i = 0, gone = 0; i < no; i++)
		if (!in_list(nw, nn, o[i]) && gone++ == k && (dead == NULL || strcmp(o[i], dead) != 0))
			return o[i];
	for (uint32_t i = 0; i < no; i++)
		if (dead == NULL || strcmp(o[i], dead) != 0)
			return o[i];
	return NULL;
}

/* plan join ADDR | leave NODE | remove NODE: what the change would move --
 * each new replica of a partition, from where -- with keys and bytes
 * estimated from the members' reported key counts and this node's mean
 * object size, and each member's share after.  Nothing changes.  0, or
 * an error message in err. */
static int admin_plan(admin *a, msgpack_packer *pk, const char *verb, const char *target,
		      char *err, size_t errlen)
{
	const ring *now = newest_ring(a);
	bool joins = strcmp(verb, "join") == 0, removes = strcmp(verb, "remove") == 0;
	size_t nm = now ? ring_members(now) : 0, nn = 0;
	const char **ids = NULL, *o[DKV_CONFIG_N_MAX], *nw[DKV_CONFIG_N_MAX];
	uint64_t total = 0, moves = 0, lost = 0, keys, bytes;
	double per_replica, per_key;
	uint64_t row_keys, all_keys;
	ring *after = NULL;
	int rc = 0;

	if (!joins && !removes && strcmp(verb, "leave") != 0) {
		snprintf(err, errlen, "plan: unknown change \"%s\" (join ADDR, leave NODE, "
			 "remove NODE)", verb);
		return DKV_EINVAL;
	}
	if (now == NULL || (ids = calloc(nm + 1, sizeof(*ids))) == NULL) {
		snprintf(err, errlen, "plan: %s", now == NULL ? "this node has no ring yet"
							      : "out of memory");
		return now == NULL ? DKV_EINVAL : -ENOMEM;
	}
	if (joins == (ring_member_index(now, target) >= 0)) {
		snprintf(err, errlen, joins ? "plan: %s is a member of the ring already"
					   : "plan: %s is not a member of the ring", target);
		free(ids);
		return DKV_EINVAL;
	}
	for (size_t i = 0; i < nm; i++)
		if (strcmp(ring_member_id(now, i), target) != 0)
			ids[nn++] = ring_member_id(now, i);
	if (joins)
		ids[nn++] = target;
	if (nn == 0) {
		snprintf(err, errlen, "plan: %s is the only member: the ring would be empty", target);
		free(ids);
		return DKV_EINVAL;
	}
	if ((rc = ring_build(&after, ids, nn, a->ring_size, a->n_val)) != 0) {
		snprintf(err, errlen, "plan: %s", dkv_strerror(rc));
		free(ids);
		return rc;
	}
	/* estimates: the members' keys spread evenly over their replicas */
	for (size_t i = 0; i < cluster_count(a->env.cl); i++) {
		const member *m = cluster_at(a->env.cl, i);

		if (ring_member_index(now, m->id) >= 0)
			total += m == cluster_self(a->env.cl) ? local_keys(a) : m->keys;
	}
	vnode_stored(a->env.vs, &keys, &bytes);
	per_replica = (double)total / ((double)a->ring_size * ring_n(now));
	per_key = keys > 0 ? (double)bytes / (double)keys : 0.0;
	/* bytes follow the key estimates as printed: never "0 keys (60 bytes)" */
	row_keys = (uint64_t)(per_replica + 0.5);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			msgpack_pack_map(pk, 10);
			PKS(pk, "change");
			PKS(pk, verb);
			PKS(pk, "node");
			PKS(pk, target);
			PKS(pk, "members_before");
			msgpack_pack_uint64(pk, nm);
			PKS(pk, "members_after");
			msgpack_pack_uint64(pk, nn);
			PKS(pk, "replicas");
			msgpack_pack_uint64(pk, (uint64_t)a->ring_size * ring_n(after));
			all_keys = (uint64_t)(per_replica * (double)moves + 0.5);
			PKS(pk, "keys");
			msgpack_pack_uint64(pk, all_keys);
			PKS(pk, "bytes");
			msgpack_pack_uint64(pk, (uint64_t)((double)all_keys * per_key + 0.5));
			PKS(pk, "lost");
			msgpack_pack_uint64(pk, lost);
			PKS(pk, "moves");
			msgpack_pack_array(pk, (uint32_t)moves);
		}
		for (uint32_t p = 0; p < a->ring_size; p++) {
			uint32_t no = primaries(now, p, o), nnw = primaries(after, p, nw), k = 0;

			for (uint32_t i = 0; i < nnw; i++) {
				const char *from;

				if (in_list(o, no, nw[i]))
					continue;
				from = move_source(o, no, nw, nnw, k++, removes ? target : NULL);
				if (pass == 0) {
					moves++;
					lost += from == NULL;
					continue;
				}
				msgpack_pack_map(pk, 5);
				PKS(pk, "partition");
				msgpack_pack_uint32(pk, p);
				PKS(pk, "from");
				if (from != NULL)
					PKS(pk, from);
				else
					msgpack_pack_nil(pk);
				PKS(pk, "to");
				PKS(pk, nw[i]);
				PKS(pk, "keys");
				msgpack_pack_uint64(pk, row_keys);
				PKS(pk, "bytes");
				msgpack_pack_uint64(pk, (uint64_t)((double)row_keys * per_key + 0.5));
			}
		}
	}
	pack_ownership(pk, after);
	ring_free(after);
	free(ids);
	return 0;
}

/* capacity: this node's load over the last capacity_window and its
 * verdict (capacity.h); dynkv-admin asks every member and decides for the
 * cluster. */
static int admin_capacity(admin *a, msgpack_packer *pk)
{
	capacity_figures f = { 0 };
	uint64_t keys, bytes, keydir, span;
	char reason[256];
	capacity_verdict v;
	hist *h;

	if (hist_new(&h) != 0)
		return -ENOMEM;
	capacity_window(a->env.cap, a->env.w->ops->now_ms(a->env.w), h, &span);
	vnode_stored(a->env.vs, &keys, &bytes);
	vnode_usage(a->env.vs, &f.disk_bytes, &keydir);
	f.ops = hist_count(h);
	f.ops_per_s = (double)f.ops * 1000.0 / (double)span;
	f.p99_us = hist_percentile(h, 99.0);
	hist_free(h);
	v = capacity_assess(&f, a->env.cfg, reason, sizeof(reason));
	msgpack_pack_map(pk, 13);
	PKS(pk, "id");
	PKS(pk, a->env.node_id);
	PKS(pk, "addr");
	PKS(pk, *a->env.self);
	PKS(pk, "keys");
	msgpack_pack_uint64(pk, keys);
	PKS(pk, "disk_bytes");
	msgpack_pack_uint64(pk, f.disk_bytes);
	PKS(pk, "keydir_bytes");
	msgpack_pack_uint64(pk, keydir);
	PKS(pk, "ops_per_s");
	msgpack_pack_double(pk, f.ops_per_s);
	PKS(pk, "ops");
	msgpack_pack_uint64(pk, f.ops);
	PKS(pk, "p99_us");
	msgpack_pack_uint64(pk, f.p99_us);
	PKS(pk, "window_s");
	msgpack_pack_double(pk, (double)span / 1000.0);
	PKS(pk, "n_val");
	msgpack_pack_uint32(pk, a->n_val);
	PKS(pk, "members");
	msgpack_pack_uint64(pk, cluster_valid_count(a->env.cl));
	PKS(pk, "verdict");
	PKS(pk, capacity_verdict_name(v));
	PKS(pk, "reason");
	PKS(pk, reason);
	return 0;
}

static void admin_status(admin *a, msgpack_packer *pk)
{
	uint64_t keys, bytes, held = 0;
	node_stats st;

	vnode_stored(a->env.vs, &keys, &bytes);
	a->env.stats(a->env.ctx, &st);
	for (uint32_t p = 0; p < a->ring_size; p++)
		held += placement_holds(a->env.pl, p);
	msgpack_pack_map(pk, 27);
	PKS(pk, "id");
	PKS(pk, a->env.node_id);
	PKS(pk, "addr");
	PKS(pk, *a->env.self);
	PKS(pk, "uptime_s");
	msgpack_pack_uint64(pk, (a->env.w->ops->now_ms(a->env.w) - a->started_ms) / 1000);
	PKS(pk, "keys");
	msgpack_pack_uint64(pk, keys);
	PKS(pk, "bytes");
	msgpack_pack_uint64(pk, bytes);
	PKS(pk, "requests");
	msgpack_pack_uint64(pk, requests_total(&st));
	PKS(pk, "requests_per_sec");
	msgpack_pack_double(pk, requests_per_sec(a, &st));
	PKS(pk, "latency_us");
	msgpack_pack_map(pk, 4);
	PKS(pk, "p50");
	msgpack_pack_uint64(pk, hist_percentile(a->env.lat, 50));
	PKS(pk, "p99");
	msgpack_pack_uint64(pk, hist_percentile(a->env.lat, 99));
	PKS(pk, "p999");
	msgpack_pack_uint64(pk, hist_percentile(a->env.lat, 99.9));
	PKS(pk, "max");
	msgpack_pack_uint64(pk, hist_max(a->env.lat));
	PKS(pk, "connections");
	msgpack_pack_uint64(pk, a->env.w->ops->connections ? a->env.w->ops->connections(a->env.w) : 0);
	PKS(pk, "partitions_held");
	msgpack_pack_uint64(pk, held);
	PKS(pk, "partitions_open");
	msgpack_pack_uint64(pk, vnode_open_count(a->env.vs));
	PKS(pk, "ring_size");
	msgpack_pack_uint32(pk, a->ring_size);
	PKS(pk, "n_val");
	msgpack_pack_uint32(pk, a->n_val);
	PKS(pk, "members");
	msgpack_pack_uint64(pk, cluster_valid_count(a->env.cl));
	PKS(pk, "gets");
	msgpack_pack_uint64(pk, st.gets);
	PKS(pk, "puts");
	msgpack_pack_uint64(pk, st.puts);
	PKS(pk, "deletes");
	msgpack_pack_uint64(pk, st.deletes);
	PKS(pk, "errors");
	msgpack_pack_uint64(pk, st.errors);
	PKS(pk, "read_repairs");
	msgpack_pack_uint64(pk, st.read_repairs);
	PKS(pk, "hints_pending");
	msgpack_pack_uint64(pk, st.hints_pending);
	PKS(pk, "hints_delivered");
	msgpack_pack_uint64(pk, st.hints_delivered);
	PKS(pk, "hints_refused");
	msgpack_pack_uint64(pk, st.hints_refused);
	PKS(pk, "aae_exchanges");
	msgpack_pack_uint64(pk, st.aae_exchanges);
	PKS(pk, "aae_repaired");
	msgpack_pack_uint64(pk, st.aae_repaired);
	PKS(pk, "tombstones_waiting");
	msgpack_pack_uint64(pk, st.tombstones_waiting);
	PKS(pk, "tombstones_reaped");
	msgpack_pack_uint64(pk, st.tombstones_reaped);
	PKS(pk, "reap_rounds_failed");
	msgpack_pack_uint64(pk, st.reap_rounds_failed);
}

/* metrics: the node's figures in Prometheus's text format (metrics.h), as
 * {"format": "prometheus 0.0.4", "content_type": ..., "text": ...}. */
static int admin_metrics(admin *a, msgpack_packer *pk)
{
	metrics_snapshot m = { 0 };
	node_stats st;
	transfer_stats ts;
	uint64_t disk = 0, keydir = 0, bytes = 0;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	a->env.stats(a->env.ctx, &st);
	transfer_stats_get(a->env.tr, &ts);
	if (a->env.metrics != NULL)
		a->env.metrics(a->env.ctx, &m);
	m.version = PACKAGE_VERSION;
	m.uptime_seconds = (double)(a->env.w->ops->now_ms(a->env.w) - a->started_ms) / 1000.0;
	m.forwarded = st.forwarded;
	m.read_repairs = st.read_repairs;
	m.errors = st.errors;
	m.hints_pending = st.hints_pending;
	m.hints_delivered = st.hints_delivered;
	m.hints_refused = st.hints_refused;
	m.aae_exchanges = st.aae_exchanges;
	m.aae_repaired = st.aae_repaired;
	m.tombstones_waiting = st.tombstones_waiting;
	m.tombstones_reaped = st.tombstones_reaped;
	m.transfers_received = ts.received;
	m.transfer_merged_bytes = ts.bytes;
	m.transfer_served_bytes = ts.served_bytes;
	m.transfers_dropped = ts.dropped;
	m.transfers_active = ts.active;
	m.transfers_pending = ts.pending;
	vnode_stored(a->env.vs, &m.keys, &bytes);
	vnode_usage(a->env.vs, &disk, &keydir);
	m.disk_bytes = disk;
	m.keydir_bytes = keydir;
	for (uint32_t p = 0; p < a->ring_size; p++) {
		bitcask *bc = vnode_store_of(a->env.vs, p);
		bitcask_stats bst;

		m.partitions_held += placement_holds(a->env.pl, p);
		if (bc == NULL)
			continue;
		bitcask_stats_get(bc, &bst, NULL, NULL);
		m.live_bytes += bst.live_bytes;
		m.dead_bytes += bst.dead_bytes;
		m.merges += bst.merges;
	}
	m.partitions_open = vnode_open_count(a->env.vs);
	m.connections = a->env.w->ops->connections ? a->env.w->ops->connections(a->env.w) : 0;
	for (size_t i = 0; i < cluster_count(a->env.cl); i++) {
		const member *mb = cluster_at(a->env.cl, i);

		if (mb->status != MEMBER_REMOVED && (int)mb->liveness < METRICS_NLIVENESS)
			m.members[mb->liveness]++;
	}
	m.ring_epochs = (uint32_t)st.ring_epochs;
	m.ring_size = a->ring_size;
	m.n_val = a->n_val;
	if ((f = open_memstream(&text, &len)) == NULL)
		return -ENOMEM;
	rc = metrics_render(&m, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc == 0) {
		msgpack_pack_map(pk, 3);
		PKS(pk, "format");
		PKS(pk, "prometheus 0.0.4");
		PKS(pk, "content_type");
		PKS(pk, METRICS_CONTENT_TYPE);
		PKS(pk, "text");
		msgpack_pack_str_with_body(pk, text, len);
	}
	free(text);
	return rc;
}

/* Where a key lives: its partition and preference list (primaries, then
 * fallbacks), with each member's liveness. */
static void admin_preflist(admin *a, msgpack_packer *pk, const proto_bytes *key)
{
	uint32_t p = placement_partition(a->env.pl, key->p, key->len);
	const ring *rg = newest_ring(a);
	size_t nm = rg ? ring_members(rg) : 0;
	const uint32_t *pl = rg ? ring_preflist(rg, p) : NULL;

	msgpack_pack_map(pk, 3);
	PKS(pk, "partition");
	msgpack_pack_uint32(pk, p);
	PKS(pk, "n");
	msgpack_pack_uint32(pk, rg ? ring_n(rg) : 0);
	PKS(pk, "preflist");
	msgpack_pack_array(pk, (uint32_t)nm);
	for (size_t i = 0; i < nm; i++) {
		const member *m = cluster_find(a->env.cl, ring_member_id(rg, pl[i]));

		msgpack_pack_map(pk, 4);
		PKS(pk, "id");
		PKS(pk, m->id);
		PKS(pk, "addr");
		PKS(pk, m->addr);
		PKS(pk, "primary");
		if (i < ring_n(rg))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		PKS(pk, "liveness");
		PKS(pk, member_liveness_name(m->liveness));
	}
}

static void admin_ok(msgpack_packer *pk, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void admin_ok(msgpack_packer *pk, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msgpack_pack_map(pk, 2);
	PKS(pk, "ok");
	msgpack_pack_true(pk);
	PKS(pk, "message");
	PKS(pk, msg);
}

/* Partitions whose every primary in the newest epoch is id: removing id
 * (gone for good) would leave them no replica to be rebuilt from. */
static uint32_t only_replica_of(admin *a, const char *id)
{
	const ring *rg = newest_ring(a);
	long idx = rg ? ring_member_index(rg, id) : -1;
	uint32_t k = 0;

	for (uint32_t p = 0; idx >= 0 && p < a->ring_size; p++) {
		const uint32_t *l = ring_preflist(rg, p);
		bool other = false;

		for (uint32_t i = 0; i < ring_n(rg); i++) {
			const member *m = cluster_find(a->env.cl, ring_member_id(rg, l[i]));

			other |= l[i] != (uint32_t)idx && m != NULL && m->status != MEMBER_REMOVED;
		}
		k += !other;
	}
	return k;
}

/* leave/remove: refuse what would lose data or cannot be done; false
 * after answering. */
static bool may_change(admin *a, uint64_t client, uint64_t id, const member *m, bool leave,
		       bool force)
{
	uint32_t lost;

	if (m->status == MEMBER_REMOVED) {
		reply_error(a->env.rp, client, id, PROTO_ERR_INVALID, "%s has already been removed", m->id);
		return false;
	}
	if (leave && m->status == MEMBER_LEAVING) {
		reply_error(a->env.rp, client, id, PROTO_ERR_INVALID,
			    "%s is leaving already: dynkv-admin members shows its progress, and "
			    "it exits once its partitions are on their new replicas", m->id);
		return false;
	}
	if (m->status == MEMBER_VALID && cluster_valid_count(a->env.cl) == 1) {
		reply_error(a->env.rp, client, id, PROTO_ERR_INVALID,
			    "refused: %s is the last valid member of the ring", m->id);
		return false;
	}
	if (leave || force)
		return true;
	if (m->liveness != LIVE_DOWN) {
		reply_error(a->env.rp, client, id, PROTO_ERR_INVALID,
			    "refused: %s is up; remove is for a node that is gone for good (its "
			    "partitions are rebuilt from their other replicas, without it).  Ask "
			    "a running node to leave instead (dynkv-admin --host %s leave): it "
			    "hands its partitions over first.  --force removes it anyway",
			    m->id, m->addr);
		return false;
	}
	if ((lost = only_replica_of(a, m->id)) > 0) {
		reply_error(a->env.rp, client, id, PROTO_ERR_INVALID,
			    "refused: %s is the only replica of %u partitions (n_val %u): "
			    "removing it would lose their keys for good.  Bring it back if you "
			    "can; --force removes it anyway", m->id, lost, a->n_val);
		return false;
	}
	return true;
}

static void join_tick(void *arg);

/* (Re)arm a join's poll; false (after answering and ending it) when no
 * timer can be had: a join must always be answered. */
static bool join_arm(admin *a, join *j)
{
	j->timer = a->env.w->ops->timer_add(a->env.w, JOIN_POLL_MS, join_tick, j);
	if (j->timer != NULL)
		return true;
	reply_error(a->env.rp, j->client, j->id, PROTO_ERR_INTERNAL,
		    "join: out of memory waiting for %s (the join may still complete: see "
		    "dynkv-admin members)", j->seed);
	join_end(a, j);
	return false;
}

static void join_start(admin *a, uint64_t client, uint64_t id, const char *arg)
{
	const char *seed = placement_intern(a->env.pl, arg);
	join *j = seed != NULL ? calloc(1, sizeof(*j)) : NULL;

	if (j == NULL) {
		reply_error(a->env.rp, client, id, PROTO_ERR_INTERNAL, "out of memory");
		return;
	}
	j->a = a;
	j->client = client;
	j->id = id;
	j->seed = seed;
	j->members_before = cluster_count(a->env.cl);
	j->started_ms = a->env.w->ops->now_ms(a->env.w);
	j->timeout_ms = a->env.cfg->request_timeout;
	j->next = a->joins;
	a->joins = j;
	a->njoins++;
	cluster_join(a->env.cl, seed);
	(void)join_arm(a, j);   /* join_tick answers */
}

static void join_tick(void *arg)
{
	join *j = arg;
	admin *a = j->a;
	uint64_t t = a->env.w->ops->now_ms(a->env.w);
	msgpack_sbuffer out;
	msgpack_packer pk;

	j->timer = NULL;
	if (cluster_count(a->env.cl) > j->members_before ||
	    cluster_find_addr(a->env.cl, j->seed) != NULL) {
		msgpack_sbuffer_init(&out);
		msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
		admin_ok(&pk, "joined the cluster of %s: %zu valid members", j->seed,
			 cluster_valid_count(a->env.cl));
		send_info(a, j->client, j->id, &out);
		msgpack_sbuffer_destroy(&out);
		join_end(a, j);
		return;
	}
	if (t - j->started_ms >= j->timeout_ms) {
		reply_error(a->env.rp, j->client, j->id, PROTO_ERR_TIMEOUT,
			    "join: no answer from %s within %u ms", j->seed, j->timeout_ms);
		join_end(a, j);
		return;
	}
	(void)join_arm(a, j);
}

void admin_request(admin *a, uint64_t client, const proto_msg *m)
{
	char cmd[40], arg[PEER_MAX_ADDR + 1] = "";
	msgpack_sbuffer out;
	msgpack_packer pk;

	snprintf(cmd, sizeof(cmd), "%.*s", (int)m->command.len, (const char *)m->command.p);
	if (m->nargs > 0) {
		if (m->args[0].len > PEER_MAX_ADDR) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
				    "%s: argument too long", cmd);
			return;
		}
		snprintf(arg, sizeof(arg), "%.*s", (int)m->args[0].len, (const char *)m->args[0].p);
	}
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	if (strcmp(cmd, "members") == 0 && m->nargs == 0)
		admin_members(a, &pk);
	else if (strcmp(cmd, "ring") == 0 && m->nargs == 0)
		admin_ring(a, &pk);
	else if (strcmp(cmd, "status") == 0 && m->nargs == 0)
		admin_status(a, &pk);
	else if (strcmp(cmd, "metrics") == 0 && m->nargs == 0) {
		if (admin_metrics(a, &pk) != 0) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
			goto out;
		}
	}
	else if (strcmp(cmd, "preflist") == 0 && m->nargs == 1 && m->args[0].len > 0)
		admin_preflist(a, &pk, &m->args[0]);
	else if (strcmp(cmd, "hints") == 0 && m->nargs == 0)
		(void)handoff_report(a->env.ho, &pk);
	else if (strcmp(cmd, "aae") == 0 && m->nargs == 0)
		(void)aae_report(a->env.ae, &pk);
	else if (strcmp(cmd, "capacity") == 0 && m->nargs == 0) {
		if (admin_capacity(a, &pk) != 0) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
			goto out;
		}
	} else if (strcmp(cmd, "transfers") == 0 && m->nargs == 0)
		(void)transfer_report(a->env.tr, &pk);
	else if (strcmp(cmd, "transfers") == 0 && m->nargs == 1 &&
		 (strcmp(arg, "pause") == 0 || strcmp(arg, "resume") == 0)) {
		transfer_stats ts;

		transfer_pause(a->env.tr, arg[0] == 'p');
		transfer_stats_get(a->env.tr, &ts);
		admin_ok(&pk, "transfers to %s %s (%u active, %u waiting); this node only, until "
			 "it restarts: a transfer is pulled by its receiver, so pausing every "
			 "member pauses the cluster", a->env.node_id,
			 arg[0] == 'p' ? "paused" : "resumed", ts.active, ts.pending);
	}
	else if (strcmp(cmd, "plan") == 0 && m->nargs == 2) {
		char target[PEER_MAX_ADDR + 1], err[PEER_MAX_ADDR + 160];

		if (m->args[1].len == 0 || m->args[1].len > PEER_MAX_ADDR) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
				    "plan: the node is 1 to %u bytes", PEER_MAX_ADDR);
			goto out;
		}
		snprintf(target, sizeof(target), "%.*s", (int)m->args[1].len,
			 (const char *)m->args[1].p);
		if (admin_plan(a, &pk, arg, target, err, sizeof(err)) != 0) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID, "%s", err);
			goto out;
		}
	}
	else if (strcmp(cmd, "join") == 0 && m->nargs == 1) {
		join_start(a, client, m->id, arg);
		goto out;
	} else if ((strcmp(cmd, "leave") == 0 && m->nargs <= 1) ||
		   (strcmp(cmd, "remove") == 0 && (m->nargs == 1 ||
						   (m->nargs == 2 && m->args[1].len == 7 &&
						    memcmp(m->args[1].p, "--force", 7) == 0)))) {
		bool leave = cmd[0] == 'l';
		const member *mb = cluster_find(a->env.cl, arg[0] ? arg : a->env.node_id);
		char id[PEER_MAX_ADDR + 1];

		if (mb == NULL) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
				    "no member with id \"%s\"", arg);
			goto out;
		}
		if (!leave && mb == cluster_self(a->env.cl)) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
				    "a node cannot remove itself: use leave");
			goto out;
		}
		if (!may_change(a, client, m->id, mb, leave, m->nargs == 2))
			goto out;
		snprintf(id, sizeof(id), "%s", mb->id);
		if (cluster_set_status(a->env.cl, id, leave ? MEMBER_LEAVING : MEMBER_REMOVED) != 0) {
			reply_error(a->env.rp, client, m->id, PROTO_ERR_INTERNAL, "cannot change %s", id);
			goto out;
		}
		if (leave)
			admin_ok(&pk, "%s is leaving: the next ring epoch is made without it and its "
				 "partitions move to their new replicas (dynkv-admin transfers "
				 "there); it keeps serving meanwhile and exits by itself once they "
				 "hold them (dynkv-admin members shows it leaving, and its progress)",
				 id);
		else
			admin_ok(&pk, "%s was removed from the ring: its partitions are rebuilt on "
				 "their new replicas from the other replicas (dynkv-admin transfers "
				 "there)", id);
	} else if (strcmp(cmd, "transfers") == 0 && m->nargs == 1) {
		reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
			    "transfers: \"%s\" is neither pause nor resume", arg);
		goto out;
	} else if (strcmp(cmd, "remove") == 0 && m->nargs == 2) {
		reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
			    "remove: \"%.*s\" after the node is not --force", (int)m->args[1].len,
			    (const char *)m->args[1].p);
		goto out;
	} else {
		reply_error(a->env.rp, client, m->id, PROTO_ERR_INVALID,
			    "unknown admin command \"%s\" with %zu arguments (members, ring, status, "
			    "preflist KEY, hints, aae, transfers [pause|resume], plan "
			    "join|leave|remove NODE, join SEED, leave [NODE], remove NODE "
			    "[--force])", cmd,
			    m->nargs);
		goto out;
	}
	send_info(a, client, m->id, &out);
out:
	msgpack_sbuffer_destroy(&out);
}
