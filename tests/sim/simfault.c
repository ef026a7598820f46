/*
 * simfault.c -- one seed of the simulated fault suite: the cluster, the
 * workload, the fault schedule and healing.  The checker is in
 * simcheck.c.  See simfault.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "msgfield.h"
#include "node.h"
#include "powerio.h"
#include "proto.h"
#include "siphash.h"
#include "simint.h"

/* Timings, virtual ms.  The run is long enough for several faults of a
 * few seconds each; suspicion (1 s) is shorter than the longest pauses. */
#define RUN_MS          6000u
#define FAULT_MIN_MS    300u
#define FAULT_MAX_MS    2500u
#define PAUSE_MIN_MS    1200u     /* > suspect_timeout: the node is marked down */
#define HEAL_LIMIT_MS   120000u   /* hints drained and roots equal within this */
#define ADMIN_CLIENT    (1u << 30)

static const char *const fault_names[] = {
#define SF_NAME_(name, str) str,
	SF_FAULTS(SF_NAME_)
#undef SF_NAME_
};

const char *sf_fault_name(sf_fault_kind k)
{
	return k < SF_NFAULTS ? fault_names[k] : "?";
}

void sf_opts_init(sf_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_nodes = 5;
}

/* --- small helpers -------------------------------------------------------- */

uint64_t sf_rand(sf *s, uint64_t n)
{
	return n == 0 ? 0 : sim_rand(s->sim) % n;
}

void sf_fail(sf *s, const char *fmt, ...)
{
	size_t at = strlen(s->res->why);
	va_list ap;

	s->res->ok = false;
	if (at + 2 >= sizeof(s->res->why))
		return;
	va_start(ap, fmt);
	vsnprintf(s->res->why + at, sizeof(s->res->why) - at, fmt, ap);
	va_end(ap);
	at = strlen(s->res->why);
	if (at + 1 < sizeof(s->res->why))
		strcat(s->res->why, "\n");
}

/* FNV-1a over the trace. */
static void trace(sf *s, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		s->res->trace ^= b[i];
		s->res->trace *= 0x100000001b3ull;
	}
}

static void trace_event(sf *s, const char *what, size_t who)
{
	uint64_t now = sim_now(s->sim);

	trace(s, &now, sizeof(now));
	trace(s, what, strlen(what));
	trace(s, &who, sizeof(who));
	if (s->opts.verbose)
		fprintf(stderr, "%8" PRIu64 " ms  %s node %zu\n", now, what, who);
}

static void set(sf *s, size_t i, const char *k, const char *v)
{
	char e[256];

	if (dkv_config_set(&s->cfg[i], k, v, e, sizeof(e)) != 0) {
		fprintf(stderr, "simfault: %s = %s: %s\n", k, v, e);
		abort();
	}
}

/* --- replies --------------------------------------------------------------- */

static const proto_limits reply_lim = { 1024, 1 << 20 };

/* Which op a value names ("k<key>#w<op>"), or -1. */
long sf_value_op(const sf *s, const void *v, size_t len, int *key)
{
	char buf[40];
	char *end;
	long k, op;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	if (buf[0] != 'k')
		return -1;
	k = strtol(buf + 1, &end, 10);
	if (end == buf + 1 || end[0] != '#' || end[1] != 'w')
		return -1;
	op = strtol(end + 2, &end, 10);
	if (*end != '\0' || op < 0 || (size_t)op >= s->nops || k < 0)
		return -1;
	*key = (int)k;
	return op;
}

static void on_reply(void *ctx, const char *addr, uint64_t client, const void *frame,
		     size_t len)
{
	sf *s = ctx;
	char err[256];
	proto_msg m;
	sf_op *op;

	if (client == ADMIN_CLIENT) {
		free(s->admin_reply);
		s->admin_reply = malloc(len);
		if (s->admin_reply == NULL)
			abort();
		memcpy(s->admin_reply, frame, len);
		s->admin_len = len;
		return;
	}
	if (client == 0 || client > s->nops)
		return;
	op = &s->op[client - 1];
	if (op->end != SF_NEVER)
		return;
	{
		uint64_t now = sim_now(s->sim);

		trace(s, &now, sizeof(now));
		trace(s, &client, sizeof(client));
		trace(s, frame, len);
	}
	if (proto_decode((const uint8_t *)frame + 4, len - 4, &reply_lim, &m, err,
			 sizeof(err)) != 0) {
		sf_fail(s, "op %zu: undecodable reply from %s: %s", (size_t)(client - 1), addr, err);
		op->end = sim_now(s->sim);
		return;
	}
	op->end = sim_now(s->sim);
	op->ok = m.type == PROTO_OK || m.type == PROTO_VALUE;
	op->code = m.code;
	if (op->ok)
		s->res->acked++;
	if (m.type == PROTO_VALUE) {
		op->nseen = 0;
		for (size_t i = 0; i < m.nvalues && op->nseen < SF_MAXSEEN; i++) {
			int k;
			long w = sf_value_op(s, m.values[i].p, m.values[i].len, &k);

			if (w < 0 || k != op->key) {
				sf_fail(s, "get op %zu of k%d at %s returned a value nobody wrote: "
					"'%.*s'", (size_t)(client - 1), op->key, addr,
					(int)m.values[i].len, (const char *)m.values[i].p);
				continue;
			}
			op->seen[op->nseen++] = (uint32_t)w;
		}
		if (m.context.len > 0 && (op->ctx = malloc(m.context.len)) != NULL) {
			memcpy(op->ctx, m.context.p, m.context.len);
			op->ctxlen = m.context.len;
		}
	}
	if (s->opts.verbose)
		fprintf(stderr, "%8" PRIu64 " ms  op %zu %s k%d at node %zu: %s %.*s\n", op->end,
			(size_t)(client - 1), sf_kind_name(op->kind), op->key, op->node,
			proto_type_name(m.type), (int)m.message.len, (const char *)m.message.p);
	proto_msg_release(&m);
}

/* --- nodes ----------------------------------------------------------------- */

/* Write node i's NODE file before its first open, with an actor drawn
 * from the seed (node_open would draw one from getrandom). */
static void write_identity(sf *s, size_t i)
{
	char path[160];
	FILE *f;
	uint64_t actor = (sim_rand(s->sim) | 1) & 0x7fffffffffffffffull;

	snprintf(path, sizeof(path), "%s/NODE", s->dir[i]);
	f = fopen(path, "we");
	if (f == NULL)
		abort();
	fprintf(f, "format = 1\nnode_id = %s\nactor = %" PRIu64 "\nring_size = 64\nn_val = 3\n",
		s->addr[i], actor);
	fclose(f);
}

static bool open_node(sf *s, size_t i)
{
	node_open_opts oo = { .io = powerio_bcio(s->pio) };
	char err[512];
	int rc;

	if (getenv("SF_LOGS") != NULL && s->log[i] == NULL) {
		/* DIR.log for each node: for debugging a seed */
		dkv_log_config lc;
		char d[sizeof(s->dir[i])];

		memcpy(d, s->dir[i], sizeof(d));
		dkv_log_config_init(&lc);
		lc.level = DKV_LOG_INFO;
		snprintf(s->logpath[i], sizeof(s->logpath[i]), "%s.log", d);
		lc.path = s->logpath[i];
		if (dkv_log_open(&s->log[i], &lc, err, sizeof(err)) != 0)
			s->log[i] = NULL;
	}
	rc = node_open_with(&s->nd[i], &s->cfg[i], sim_host(s->sim, s->addr[i]), s->log[i], &oo,
			    err, sizeof(err));
	if (rc == 0) {
		sim_host_attach(s->sim, s->addr[i], s->nd[i]);
		rc = node_start(s->nd[i], err, sizeof(err));
		if (rc != 0) {
			sim_host_attach(s->sim, s->addr[i], NULL);
			while (node_close(s->nd[i]) == DKV_EBUSY)
				sim_run_for(s->sim, 5);
		}
	}
	if (rc != 0) {
		s->nd[i] = NULL;
		sf_fail(s, "node %zu (%s) cannot open: %s", i, s->addr[i], err);
		return false;
	}
	return true;
}

/* Close node i, whose host has crashed (its stores frozen by powerio). */
static void close_node(sf *s, size_t i)
{
	int rc;

	sim_host_attach(s->sim, s->addr[i], NULL);
	rc = node_close(s->nd[i]);
	for (int k = 0; k < 2000 && rc == DKV_EBUSY; k++) {
		sim_run_for(s->sim, 5);
		rc = node_close(s->nd[i]);
	}
	if (rc == DKV_EBUSY) {
		sf_fail(s, "node %zu never became closable", i);
		abort();
	}
	s->nd[i] = NULL;
}

/* kill -9 (power false) or a power loss (power true) of node i. */
static void crash(sf *s, size_t i, bool power)
{
	int rc;

	sim_crash(s->sim, s->addr[i]);
	if ((rc = powerio_crash(s->pio, s->dir[i])) != 0) {
		fprintf(stderr, "simfault: powerio_crash %s: %s\n", s->dir[i], strerror(-rc));
		abort();
	}
	close_node(s, i);
	if (power) {
		rc = powerio_power_loss(s->pio, s->dir[i], sim_rand(s->sim) | 1);
		if (rc != 0) {
			fprintf(stderr, "simfault: power loss %s: %s\n", s->dir[i], strerror(-rc));
			abort();
		}
		if (s->npower < SF_MAXPOWER)
			s->power[s->npower++] = (sf_power){ .node = i, .at = sim_now(s->sim) };
	} else if (powerio_resume(s->pio, s->dir[i]) != 0) {
		abort();
	}
}

static void restart(sf *s, size_t i)
{
	sim_restart(s->sim, s->addr[i]);
	(void)open_node(s, i);
}

/* --- admin ----------------------------------------------------------------- */

/* The INFO of an admin command at node i into z/out, running the world
 * until it comes (at most 2 s virtual). */
static bool admin(sf *s, size_t i, const char *cmd, msgpack_zone *z, msgpack_object *out)
{
	msgpack_sbuffer sb;
	char err[256];
	proto_msg m;
	bool ok = false;

	if (s->nd[i] == NULL)
		return false;
	msgpack_sbuffer_init(&sb);
	free(s->admin_reply);
	s->admin_reply = NULL;
	if (proto_encode_admin(&sb, 1, cmd, NULL, 0) != 0 ||
	    node_request(s->nd[i], ADMIN_CLIENT, sb.data + 4, sb.size - 4) != 0)
		abort();
	msgpack_sbuffer_destroy(&sb);
	for (int t = 0; t < 2000 && s->admin_reply == NULL; t++)
		sim_run_for(s->sim, 1);
	if (s->admin_reply == NULL)
		return false;
	if (proto_decode(s->admin_reply + 4, s->admin_len - 4, &reply_lim, &m, err,
			 sizeof(err)) == 0) {
		if (m.type == PROTO_INFO)
			ok = msgpack_unpack((const char *)m.info.p, m.info.len, NULL, z, out) ==
			     MSGPACK_UNPACK_SUCCESS;
		proto_msg_release(&m);
	}
	return ok;
}

static const msgpack_object *field(const msgpack_object *map, const char *k)
{
	return msg_field(map, k);
}

/* Hints node i still holds (UINT64_MAX: no answer). */
static uint64_t hints_pending(sf *s, size_t i)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *f;
	uint64_t n = UINT64_MAX;

	msgpack_zone_init(&z, 4096);
	if (admin(s, i, "hints", &z, &o) && (f = field(&o, "pending")) != NULL &&
	    f->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
		n = f->via.u64;
	msgpack_zone_destroy(&z);
	return n;
}

/* Record node i's anti-entropy roots in s->root[i][p] (0: not held);
 * false if some held partition is not ready or no answer came. */
static bool aae_roots(sf *s, size_t i)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *parts;
	bool ok = false;

	memset(s->held[i], 0, sizeof(s->held[i]));
	msgpack_zone_init(&z, 65536);
	if (admin(s, i, "aae", &z, &o) && (parts = field(&o, "partitions")) != NULL &&
	    parts->type == MSGPACK_OBJECT_ARRAY) {
		ok = true;
		for (uint32_t k = 0; k < parts->via.array.size; k++) {
			const msgpack_object *e = &parts->via.array.ptr[k];
			const msgpack_object *p = field(e, "partition"), *h = field(e, "root"),
					     *st = field(e, "state");

			if (p == NULL || h == NULL || st == NULL || p->via.u64 >= SF_RING ||
			    st->type != MSGPACK_OBJECT_STR || st->via.str.size != 5 ||
			    memcmp(st->via.str.ptr, "ready", 5) != 0) {
				ok = false;
				break;
			}
			s->held[i][p->via.u64] = true;
			s->rootv[i][p->via.u64] = h->via.u64;
		}
	}
	msgpack_zone_destroy(&z);
	return ok;
}

/* True when every partition's replicas report the same root. */
static bool roots_equal(sf *s, char *why, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (!aae_roots(s, i)) {
			snprintf(why, len, "node %zu: trees not ready", i);
			return false;
		}
	for (uint32_t p = 0; p < SF_RING; p++) {
		size_t first = SIZE_MAX, holders = 0;

		for (size_t i = 0; i < s->n; i++) {
			if (!s->held[i][p])
				continue;
			holders++;
			if (first == SIZE_MAX)
				first = i;
			else if (s->rootv[i][p] != s->rootv[first][p]) {
				snprintf(why, len, "partition %u: root %016" PRIx64 " at node %zu, "
					 "%016" PRIx64 " at node %zu", p, s->rootv[first][p], first,
					 s->rootv[i][p], i);
				return false;
			}
		}
		if (holders != (s->n < 3 ? s->n : 3)) {
			snprintf(why, len, "partition %u: %zu replicas report a tree", p, holders);
			return false;
		}
	}
	return true;
}

/* True iff node i is not a member: the joiner before its join, the
 * leaver once asked to leave. */
static bool outside(const sf *s, size_t i)
{
	return (i == s->joiner && !s->joined) || (i == s->leaver && s->leave_sent);
}

/* Every member up and settled: as many members as expected, one ring
 * epoch (every change's transfers done). */
static bool formed(sf *s)
{
	size_t expect = 0;

	for (size_t i = 0; i < s->n; i++)
		expect += !outside(s, i);
	for (size_t i = 0; i < s->n; i++) {
		node_stats st;

		if (outside(s, i))
			continue;
		if (s->nd[i] == NULL)
			return false;
		node_stats_get(s->nd[i], &st);
		if (st.members != expect || st.ring_epochs != 1)
			return false;
	}
	return true;
}

/* The run's membership changes at run time t: the joiner starts (seeds:
 * node 0) and joins; the leaver is asked to leave (once it is up). */
static void membership(sf *s, uint64_t t)
{
	msgpack_sbuffer sb;

	if (s->joiner != SIZE_MAX && !s->joined && t >= s->join_at) {
		trace_event(s, "join", s->joiner);
		s->joined = true;
		s->res->joins++;
		(void)open_node(s, s->joiner);
	}
	if (s->leaver != SIZE_MAX && !s->leave_sent && t >= s->leave_at &&
	    s->nd[s->leaver] != NULL) {
		trace_event(s, "leave", s->leaver);
		s->leave_sent = true;
		s->res->leaves++;
		msgpack_sbuffer_init(&sb);
		if (proto_encode_admin(&sb, 1, "leave", NULL, 0) != 0 ||
		    node_request(s->nd[s->leaver], ADMIN_CLIENT, sb.data + 4, sb.size - 4) != 0)
			abort();
		msgpack_sbuffer_destroy(&sb);
	}
}

/* --- the schedule ------------------------------------------------------------ */

static void draw_schedule(sf *s)
{
	uint64_t part_free = 0, net_free = 0;
	uint64_t node_free[SF_MAXN] = { 0 };
	size_t want = 2 + (size_t)sf_rand(s, 4);

	for (size_t k = 0; k < want * 3 && s->nfaults < want && s->nfaults < SF_MAXFAULTS; k++) {
		sf_fault f = { 0 };
		uint64_t dur = FAULT_MIN_MS + sf_rand(s, FAULT_MAX_MS - FAULT_MIN_MS);

		f.kind = (sf_fault_kind)sf_rand(s, SF_NFAULTS);
		f.start = 100 + sf_rand(s, RUN_MS - 600);
		if (f.kind == SF_PAUSE && dur < PAUSE_MIN_MS)
			dur = PAUSE_MIN_MS + sf_rand(s, FAULT_MAX_MS - PAUSE_MIN_MS);
		f.end = f.start + dur;
		if (f.end > RUN_MS)
			f.end = RUN_MS;
		f.node = (size_t)sf_rand(s, s->n);
		if (f.node == s->joiner)
			f.node = 0;   /* not a member before its join: no fault there */
		switch (f.kind) {
		case SF_NET:
			if (f.start < net_free)
				continue;
			net_free = f.end;
			break;
		case SF_PART_ONE: case SF_PART_MINOR: case SF_PART_MAJOR:
		case SF_PART_ONEWAY: case SF_PART_MOVE: {
			size_t side;

			if (f.start < part_free)
				continue;
			part_free = f.end;
			/* the cut-off side: one node, fewer than half, or more */
			side = f.kind == SF_PART_MINOR ? 1 + (size_t)sf_rand(s, (s->n - 1) / 2) :
			       f.kind == SF_PART_MAJOR ? (s->n + 2) / 2 +
					(size_t)sf_rand(s, s->n - (s->n + 2) / 2) : 1;
			if (f.kind == SF_PART_MINOR && s->n < 5)
				f.kind = SF_PART_ONE;   /* with 3 or 4 the minority is one node */
			for (size_t j = 0; j < side; j++) {
				size_t x = (size_t)sf_rand(s, s->n);

				while (f.side & 1u << x)
					x = (x + 1) % s->n;
				f.side |= 1u << x;
			}
			break;
		}
		case SF_KILL: case SF_POWER: case SF_PAUSE: case SF_DISK:
			if (f.start < node_free[f.node] ||
			    (f.kind == SF_POWER && (s->disk_failed & 1u << f.node)))
				continue;
			node_free[f.node] = f.end + 50;
			if (f.kind == SF_DISK)
				s->disk_failed |= 1u << f.node;
			if (f.kind == SF_PAUSE && dur > s->longest_pause)
				s->longest_pause = dur;
			break;
		default:
			break;
		}
		s->fault[s->nfaults++] = f;
	}
}

/* Cut (or heal) every link between the side mask and the rest; one way
 * (side -> rest) if oneway. */
static void cut_side(sf *s, uint32_t side, bool oneway, bool cut)
{
	for (size_t a = 0; a < s->n; a++)
		for (size_t b = 0; b < s->n; b++)
			if ((side & 1u << a) && !(side & 1u << b)) {
				if (oneway)
					sim_cut(s->sim, s->addr[a], s->addr[b], cut);
				else
					sim_partition(s->sim, s->addr[a], s->addr[b], cut);
			}
}

static void net_fault(sf *s, bool on)
{
	sim_net_opts o;

	sim_net_opts_init(&o);
	if (on) {
		o.loss_ppm = (uint32_t)sf_rand(s, 60000);
		o.dup_ppm = (uint32_t)sf_rand(s, 50000);
		o.delay_min_ms = 1;
		o.delay_max_ms = 2 + sf_rand(s, 40);
		o.reorder = sf_rand(s, 2) == 0;
	}
	sim_net_set(s->sim, &o);
}

static void fault_start(sf *s, sf_fault *f)
{
	char what[64];

	f->started = true;
	s->res->faults[f->kind]++;
	snprintf(what, sizeof(what), "start %s (side %#x)", sf_fault_name(f->kind), f->side);
	trace_event(s, what, f->node);
	switch (f->kind) {
	case SF_NET: net_fault(s, true); break;
	case SF_PART_ONE: case SF_PART_MINOR: case SF_PART_MAJOR: case SF_PART_MOVE:
		cut_side(s, f->side, false, true);
		break;
	case SF_PART_ONEWAY: cut_side(s, f->side, true, true); break;
	case SF_KILL: crash(s, f->node, false); break;
	case SF_POWER: crash(s, f->node, true); break;
	case SF_PAUSE: sim_pause(s->sim, s->addr[f->node], true); break;
	case SF_DISK: {
		powerio_op op = sf_rand(s, 2) ? POWERIO_SYNC : POWERIO_WRITE;
		int err = sf_rand(s, 2) ? EIO : ENOSPC;

		if (powerio_fault(s->pio, s->dir[f->node], op, 1 + sf_rand(s, 30), err, true) != 0)
			abort();
		break;
	}
	default: break;
	}
}

static void fault_end(sf *s, sf_fault *f)
{
	char what[64];

	f->ended = true;
	snprintf(what, sizeof(what), "end %s", sf_fault_name(f->kind));
	trace_event(s, what, f->node);
	switch (f->kind) {
	case SF_NET: net_fault(s, false); break;
	case SF_PART_ONE: case SF_PART_MINOR: case SF_PART_MAJOR: case SF_PART_MOVE:
		cut_side(s, f->side, false, false);
		break;
	case SF_PART_ONEWAY: cut_side(s, f->side, true, false); break;
	case SF_KILL: case SF_POWER: restart(s, f->node); break;
	case SF_PAUSE: sim_pause(s->sim, s->addr[f->node], false); break;
	case SF_DISK:
		/* the failed store refuses writes until reopened: restart the
		 * process (everything written survives), the disk repaired */
		crash(s, f->node, false);
		if (powerio_fault(s->pio, s->dir[f->node], POWERIO_WRITE, 0, 0, false) != 0 ||
		    powerio_fault(s->pio, s->dir[f->node], POWERIO_SYNC, 0, 0, false) != 0)
			abort();
		restart(s, f->node);
		break;
	default: break;
	}
}

/* A moving partition cuts another node off every third of its span. */
static void fault_move(sf *s, sf_fault *f, uint64_t t)
{
	uint64_t third = (f->end - f->start) / 3;

	if (f->kind != SF_PART_MOVE || third == 0 || f->moves >= 2 ||
	    t < f->start + third * (f->moves + 1u))
		return;
	cut_side(s, f->side, false, false);
	f->side = 1u << (size_t)sf_rand(s, s->n);
	f->moves++;
	trace_event(s, "move part-moving", f->node);
	cut_side(s, f->side, false, true);
}

/* --- the workload ------------------------------------------------------------ */

const char *sf_kind_name(sf_kind k)
{
	static const char *const names[] = { "get", "put", "put-ctx", "put-replace",
					      "del-ctx", "del-replace" };
	return names[k];
}

static int32_t draw_q(sf *s, uint64_t zero_in)
{
	return sf_rand(s, zero_in) == 0 ? 0 : (int32_t)(1 + sf_rand(s, 3));
}

/* The latest answered get of key with a context, or -1. */
static long last_get(sf *s, int key)
{
	for (size_t j = s->nops; j-- > 0;)
		if (s->op[j].kind == SF_GET && s->op[j].key == key && s->op[j].ctxlen > 0)
			return (long)j;
	return -1;
}

static void issue(sf *s)
{
	sf_op *op = &s->op[s->nops];
	size_t up[SF_MAXN], nup = 0, id = s->nops;
	msgpack_sbuffer sb;
	const void *ctx = NULL;
	size_t ctxlen = 0;
	int rc;

	for (size_t i = 0; i < s->n; i++)
		if (s->nd[i] != NULL)
			up[nup++] = i;
	if (nup == 0)
		return;
	memset(op, 0, sizeof(*op));
	op->node = up[sf_rand(s, nup)];
	op->key = (int)sf_rand(s, s->nkeys);
	op->kind = (sf_kind)sf_rand(s, SF_NKINDS);
	op->get_from = -1;
	op->o.r = draw_q(s, 3);
	op->o.w = draw_q(s, 3);
	op->o.pr = sf_rand(s, 4) == 0 ? (int32_t)(1 + sf_rand(s, 2)) : 0;
	op->o.pw = sf_rand(s, 4) == 0 ? (int32_t)(1 + sf_rand(s, 2)) : 0;
	if (op->kind == SF_PUT_CTX || op->kind == SF_DEL_CTX) {
		long g = last_get(s, op->key);

		if (g < 0) {
			op->kind = op->kind == SF_PUT_CTX ? SF_PUT_REPLACE : SF_DEL_REPLACE;
		} else {
			op->get_from = g;
			ctx = s->op[g].ctx;
			ctxlen = s->op[g].ctxlen;
		}
	}
	op->o.replace = op->kind == SF_PUT_REPLACE || op->kind == SF_DEL_REPLACE;
	op->issue = sim_now(s->sim);
	op->end = SF_NEVER;
	snprintf(op->value, sizeof(op->value), "k%d#w%zu", op->key, id);
	snprintf(op->keyname, sizeof(op->keyname), "k%d", op->key);
	s->nops++;
	s->res->ops++;
	msgpack_sbuffer_init(&sb);
	switch (op->kind) {
	case SF_GET:
		rc = proto_encode_get(&sb, id, op->keyname, strlen(op->keyname), &op->o);
		break;
	case SF_PUT: case SF_PUT_CTX: case SF_PUT_REPLACE:
		rc = proto_encode_put(&sb, id, op->keyname, strlen(op->keyname), op->value,
				      strlen(op->value), ctx, ctxlen, &op->o);
		break;
	default:
		rc = proto_encode_delete(&sb, id, op->keyname, strlen(op->keyname), ctx, ctxlen,
					 &op->o);
		break;
	}
	if (rc != 0)
		abort();
	trace(s, sb.data, sb.size);
	if (s->opts.verbose)
		fprintf(stderr, "%8" PRIu64 " ms  op %zu %s k%d at node %zu r%d w%d pr%d pw%d%s\n",
			op->issue, id, sf_kind_name(op->kind), op->key, op->node, op->o.r, op->o.w,
			op->o.pr, op->o.pw, op->get_from >= 0 ? " (context)" : "");
	/* a frame the node cannot take is our bug, not the node's */
	if (node_request(s->nd[op->node], id + 1, sb.data + 4, sb.size - 4) != 0)
		abort();
	msgpack_sbuffer_destroy(&sb);
}

/* --- one run ----------------------------------------------------------------- */

static void setup(sf *s, uint64_t seed)
{
	s->sim = sim_new(seed);
	s->pio = powerio_new();
	if (s->sim == NULL || s->pio == NULL)
		abort();
	sim_on_reply_host(s->sim, on_reply, s);
	s->n = 3 + (size_t)sf_rand(s, s->opts.max_nodes - 2);
	s->sync_always = sf_rand(s, 2) == 0;
	s->sync_interval = 50 + sf_rand(s, 200);
	s->nkeys = 4 + (size_t)sf_rand(s, 9);
	s->res->nodes = (uint32_t)s->n;
	s->res->sync_always = s->sync_always;
	sim_set_sync_delay(s->sim, 1, SF_SYNC_DELAY_MAX);
	for (size_t i = 0; i < s->n; i++) {
		char v[32];

		snprintf(s->addr[i], sizeof(s->addr[i]), "10.0.0.%u:7070", (unsigned)(i + 1));
		snprintf(s->dir[i], sizeof(s->dir[i]), "/dev/shm/dkv-sim-XXXXXX");
		if (mkdtemp(s->dir[i]) == NULL || dkv_config_init(&s->cfg[i]) != 0)
			abort();
		write_identity(s, i);
		set(s, i, "data_dir", s->dir[i]);
		set(s, i, "listen", s->addr[i]);
		set(s, i, "log_level", "error");
		set(s, i, "ring_size", "64");
		set(s, i, "sync", s->sync_always ? "always" : "interval");
		snprintf(v, sizeof(v), "%" PRIu64, s->sync_interval);
		set(s, i, "sync_interval_ms", v);
		set(s, i, "probe_interval", "200ms");
		set(s, i, "probe_timeout", "80ms");
		set(s, i, "suspect_timeout", "1s");
		set(s, i, "push_pull_interval", "1s");
		set(s, i, "request_timeout", "1500ms");
		set(s, i, "aae_interval", "50ms");
		set(s, i, "tombstone_grace", "1");   /* reaps happen within a run */
		if (i > 0)
			set(s, i, "seeds", s->addr[0]);
	}
	/* membership changes under the faults: with 4 or more nodes, a join
	 * (the last node starts during the run), a leave (of a node other
	 * than the seed), both, or neither */
	s->joiner = s->leaver = SIZE_MAX;
	if (s->n >= 4) {
		uint64_t c = sf_rand(s, 4);

		if (c & 1) {
			s->joiner = s->n - 1;
			s->join_at = 200 + sf_rand(s, RUN_MS / 2);
		}
		if (c & 2) {
			s->leaver = 1 + (size_t)sf_rand(s, s->n - 2);
			s->leave_at = 200 + sf_rand(s, RUN_MS - 1000);
		}
	}
}

static void teardown(sf *s)
{
	char cmd[160];

	for (size_t i = 0; i < s->n; i++) {
		if (s->nd[i] != NULL) {
			sim_crash(s->sim, s->addr[i]);
			close_node(s, i);
		}
	}
	for (size_t i = 0; i < s->n; i++) {
		(void)powerio_forget(s->pio, s->dir[i]);
		dkv_config_free(&s->cfg[i]);
		if (!s->opts.keep_dirs) {
			snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir[i]);
			if (system(cmd) != 0)
				fprintf(stderr, "simfault: could not remove %s\n", s->dir[i]);
		} else {
			fprintf(stderr, "simfault: node %zu kept in %s\n", i, s->dir[i]);
		}
	}
	for (size_t j = 0; j < s->nops; j++)
		free(s->op[j].ctx);
	free(s->admin_reply);
	powerio_free(s->pio);
	sim_free(s->sim);
	for (size_t i = 0; i < SF_MAXN; i++)
		dkv_log_close(s->log[i]);
}

/* Everything back to health, then wait for hints and trees. */
static void heal(sf *s)
{
	uint64_t t0, deadline;
	char why[256] = "";

	trace_event(s, "heal", 0);
	for (size_t k = 0; k < s->nfaults; k++)
		if (s->fault[k].started && !s->fault[k].ended)
			fault_end(s, &s->fault[k]);
	for (size_t a = 0; a < s->n; a++)
		for (size_t b = 0; b < s->n; b++)
			if (a != b)
				sim_cut(s->sim, s->addr[a], s->addr[b], false);
	net_fault(s, false);
	/* every op answered (their timeout is 1.5 s) or never will be */
	sim_run_for(s->sim, 2000);
	t0 = sim_now(s->sim);
	deadline = t0 + HEAL_LIMIT_MS;
	for (;;) {
		bool done = formed(s);

		for (size_t i = 0; done && i < s->n; i++) {
			uint64_t h = hints_pending(s, i);

			if (h != 0) {
				snprintf(why, sizeof(why), "node %zu holds %" PRIu64 " hints", i, h);
				done = false;
			}
		}
		if (done && roots_equal(s, why, sizeof(why)))
			break;
		if (sim_now(s->sim) >= deadline) {
			sf_fail(s, "not converged %u ms after healing: %s", HEAL_LIMIT_MS,
				why[0] ? why : "membership not formed");
			break;
		}
		sim_run_for(s->sim, 200);
	}
	s->res->heal_ms = sim_now(s->sim) - t0;
}

void sf_run(uint64_t seed, const sf_opts *o, sf_result *res)
{
	sf *s = calloc(1, sizeof(*s));
	siphash_key hk = { seed ^ 0x736970686173686bull, seed * 0x9e3779b97f4a7c15ull };
	uint64_t t0;

	if (s == NULL)
		abort();
	memset(res, 0, sizeof(*res));
	res->ok = true;
	res->trace = 0xcbf29ce484222325ull;
	s->res = res;
	s->opts = *o;
	if (s->opts.max_nodes < 3 || s->opts.max_nodes > SF_MAXN)
		s->opts.max_nodes = 5;
	siphash_key_random_fix(&hk);
	setup(s, seed);
	for (size_t i = 0; i < s->n; i++)
		if (i != s->joiner && !open_node(s, i))
			goto out;
	for (t0 = sim_now(s->sim); !formed(s); sim_run_for(s->sim, 100))
		if (sim_now(s->sim) - t0 > 30000) {
			sf_fail(s, "the cluster did not form");
			goto out;
		}
	draw_schedule(s);
	{
		size_t want = 80 + (size_t)sf_rand(s, 40);
		uint64_t next[SF_MAXOPS];

		for (size_t k = 0; k < want; k++)
			next[k] = sf_rand(s, RUN_MS - 500);
		t0 = sim_now(s->sim);
		for (uint64_t t = 0; t < RUN_MS; t++) {
			membership(s, t);
			for (size_t k = 0; k < s->nfaults; k++) {
				sf_fault *f = &s->fault[k];

				if (!f->started && t >= f->start)
					fault_start(s, f);
				else if (f->started && !f->ended && t >= f->end)
					fault_end(s, f);
				else if (f->started && !f->ended)
					fault_move(s, f, t);
			}
			for (size_t k = 0; k < want; k++)
				if (next[k] == t && s->nops < SF_MAXOPS)
					issue(s);
			sim_run_for(s->sim, 1);
		}
	}
	heal(s);
	sf_check(s);   /* after a failed heal too: it says what diverged */
out:
	teardown(s);
	siphash_key_random_fix(NULL);
	free(s);
}
