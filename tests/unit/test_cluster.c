/*
 * test_cluster.c -- whole clusters of real nodes in one process, on the
 * simulated network of simworld.c: membership converges, quorum reads and
 * writes work through any node, failures are detected and refuted, all
 * under seeded message loss, duplication, delay and reordering.
 *
 * No test has a Criterion .timeout (it leaks in the runner under LSan):
 * each bounds itself in virtual time and asserts.
 *
 * Every test that draws from a seed prints it first; replay a failure with
 *   DKV_SEED=N ./tests/unit/test_cluster --filter 'cluster/NAME' --jobs=1
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkv_config.h"
#include "error.h"
#include "node.h"
#include "proto.h"
#include "simworld.h"

#define MAXN     5
#define MAXGOT   64

typedef struct got {
	char addr[64];
	uint64_t client;
	uint8_t *frame;
	size_t len;
} got;

typedef struct crig {
	simworld *sim;
	size_t n;
	char addr[MAXN][32];
	char dir[MAXN][64];
	dkv_config cfg[MAXN];
	node *nd[MAXN];
	got got[MAXGOT];
	size_t ngot;
	uint64_t next_id;
	uint64_t seed;
} crig;

static void on_reply(void *ctx, const char *addr, uint64_t client, const void *frame, size_t len)
{
	crig *r = ctx;
	got *g;

	cr_assert_lt(r->ngot, MAXGOT, "too many replies queued");
	g = &r->got[r->ngot++];
	snprintf(g->addr, sizeof(g->addr), "%s", addr);
	g->client = client;
	g->frame = malloc(len);
	cr_assert_not_null(g->frame);
	memcpy(g->frame, frame, len);
	g->len = len;
}

static void set(dkv_config *c, const char *k, const char *v)
{
	char e[256];

	cr_assert_eq(dkv_config_set(c, k, v, e, sizeof(e)), 0, "%s=%s: %s", k, v, e);
}

static void open_node(crig *r, size_t i)
{
	char err[512];
	int rc;

	rc = node_open(&r->nd[i], &r->cfg[i], sim_host(r->sim, r->addr[i]), NULL, err, sizeof(err));
	cr_assert_eq(rc, 0, "node_open %s: %s", r->addr[i], err);
	sim_host_attach(r->sim, r->addr[i], r->nd[i]);
}

/* n nodes, each seeded with the first; sync as given. */
static void crig_init(crig *r, size_t n, uint64_t seed, const char *sync)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->seed = seed;
	r->next_id = 1;
	r->sim = sim_new(seed);
	cr_assert_not_null(r->sim);
	sim_on_reply_host(r->sim, on_reply, r);
	for (size_t i = 0; i < n; i++) {
		snprintf(r->addr[i], sizeof(r->addr[i]), "10.0.0.%zu:7070", i + 1);
		snprintf(r->dir[i], sizeof(r->dir[i]), "/dev/shm/dkv-cluster-XXXXXX");
		cr_assert_not_null(mkdtemp(r->dir[i]));
		cr_assert_eq(dkv_config_init(&r->cfg[i]), 0);
		set(&r->cfg[i], "data_dir", r->dir[i]);
		set(&r->cfg[i], "listen", r->addr[i]);
		set(&r->cfg[i], "log_level", "error");
		set(&r->cfg[i], "sync", sync);
		set(&r->cfg[i], "probe_interval", "200ms");
		set(&r->cfg[i], "probe_timeout", "80ms");
		set(&r->cfg[i], "suspect_timeout", "1s");
		set(&r->cfg[i], "push_pull_interval", "1s");
		set(&r->cfg[i], "request_timeout", "2s");
		if (i > 0)
			set(&r->cfg[i], "seeds", r->addr[0]);
		open_node(r, i);
	}
}

static void clear_got(crig *r)
{
	for (size_t i = 0; i < r->ngot; i++)
		free(r->got[i].frame);
	r->ngot = 0;
}

static void close_node(crig *r, size_t i)
{
	sim_host_attach(r->sim, r->addr[i], NULL);
	/* a durability batch may still hold the stores */
	for (int k = 0; k < 1000 && node_close(r->nd[i]) == DKV_EBUSY; k++)
		sim_run_for(r->sim, 5);
	r->nd[i] = NULL;
}

static void crig_fini(crig *r)
{
	char cmd[128];

	for (size_t i = 0; i < r->n; i++) {
		if (r->nd[i] != NULL)
			close_node(r, i);
		dkv_config_free(&r->cfg[i]);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir[i]);
		cr_assert_eq(system(cmd), 0);
	}
	clear_got(r);
	sim_free(r->sim);
}

/* Send a client frame (in r's scratch buffer) to node i and run the world
 * until its reply comes (at most limit_ms virtual).  The decoded reply is
 * in *m (release it); returns false if none came. */
static bool call(crig *r, size_t i, msgpack_sbuffer *sb, proto_msg *m, uint64_t limit_ms)
{
	static const proto_limits lim = { 1024, 1 << 20 };
	uint64_t client = 100 + i, deadline = sim_now(r->sim) + limit_ms;
	char err[256];

	clear_got(r);
	cr_assert_eq(node_request(r->nd[i], client, sb->data + 4, sb->size - 4), 0);
	while (sim_now(r->sim) < deadline) {
		for (size_t k = 0; k < r->ngot; k++) {
			got *g = &r->got[k];

			if (g->client != client || strcmp(g->addr, r->addr[i]) != 0)
				continue;
			cr_assert_eq(proto_decode(g->frame + 4, g->len - 4, &lim, m, err, sizeof(err)), 0,
				     "reply: %s", err);
			return true;
		}
		sim_run_for(r->sim, 1);
	}
	return false;
}

static proto_opts opts_rw(int32_t rr, int32_t w)
{
	proto_opts o = { 0 };

	o.r = rr;
	o.w = w;
	return o;
}

/* put; returns the reply type (OK or ERROR; 0: no reply), error code in *code */
static uint32_t put(crig *r, size_t i, const char *key, const char *val, int32_t w,
		    const void *ctx, size_t ctxlen, uint32_t *code)
{
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(0, w);
	proto_msg m;
	uint32_t type = 0;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, r->next_id++, key, strlen(key), val, strlen(val),
				      ctx, ctxlen, &o), 0);
	if (call(r, i, &sb, &m, 10000)) {
		type = m.type;
		*code = m.code;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}

/* get: 1 found with exactly one value equal to want (or want NULL and not
 * found), 0 otherwise, -1 error reply or none. */
static int get_is(crig *r, size_t i, const char *key, const char *want, int32_t rr)
{
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(rr, 0);
	proto_msg m;
	int res = -1;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, r->next_id++, key, strlen(key), &o), 0);
	if (call(r, i, &sb, &m, 10000)) {
		if (m.type == PROTO_VALUE) {
			if (want == NULL)
				res = !m.found;
			else
				res = m.found && m.nvalues == 1 && m.values[0].len == strlen(want) &&
				      memcmp(m.values[0].p, want, m.values[0].len) == 0;
		}
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return res;
}

/* The INFO map of an admin command at node i, as a msgpack object in z
 * (caller destroys z). */
static bool admin(crig *r, size_t i, const char *cmd, msgpack_zone *z, msgpack_object *out,
		  msgpack_sbuffer *raw)
{
	msgpack_sbuffer sb;
	proto_msg m;
	bool ok = false;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, NULL, 0), 0);
	if (call(r, i, &sb, &m, 1000) && m.type == PROTO_INFO) {
		if (raw != NULL)
			msgpack_sbuffer_write(raw, (const char *)m.info.p, m.info.len);
		ok = msgpack_unpack((const char *)m.info.p, m.info.len, NULL, z, out) ==
		     MSGPACK_UNPACK_SUCCESS;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return ok;
}

static const msgpack_object *field(const msgpack_object *map, const char *k)
{
	if (map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];

		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(k) &&
		    memcmp(kv->key.via.str.ptr, k, kv->key.via.str.size) == 0)
			return &kv->val;
	}
	return NULL;
}

static bool str_is(const msgpack_object *o, const char *s)
{
	return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Field `want` ("liveness", "status") of the member whose `by` ("addr",
 * "id") is `key`, in node i's members INFO, into buf ("?" if absent). */
static const char *member_field(crig *r, size_t i, const char *by, const char *key,
				const char *want, char *buf, size_t len)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *ms;

	snprintf(buf, len, "?");
	msgpack_zone_init(&z, 4096);
	if (admin(r, i, "members", &z, &o, NULL) && (ms = field(&o, "members")) != NULL &&
	    ms->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t k = 0; k < ms->via.array.size; k++) {
			const msgpack_object *m = &ms->via.array.ptr[k];
			const msgpack_object *f = field(m, want);

			if (str_is(field(m, by), key) && f != NULL && f->type == MSGPACK_OBJECT_STR)
				snprintf(buf, len, "%.*s", (int)f->via.str.size, f->via.str.ptr);
		}
	}
	msgpack_zone_destroy(&z);
	return buf;
}

static const char *liveness(crig *r, size_t i, const char *addr, char *buf, size_t len)
{
	return member_field(r, i, "addr", addr, "liveness", buf, len);
}

/* True when every live node has all n members in its ring and every node
 * prints the same ring. */
static bool converged(crig *r)
{
	msgpack_sbuffer first, raw;
	bool same = true;

	msgpack_sbuffer_init(&first);
	for (size_t i = 0; i < r->n && same; i++) {
		node_stats st;
		msgpack_zone z;
		msgpack_object o;

		if (r->nd[i] == NULL)
			continue;
		node_stats_get(r->nd[i], &st);
		if (st.members != r->n) {
			same = false;
			break;
		}
		msgpack_zone_init(&z, 1 << 16);
		msgpack_sbuffer_init(&raw);
		if (!admin(r, i, "ring", &z, &o, &raw))
			same = false;
		else if (first.size == 0)
			msgpack_sbuffer_write(&first, raw.data, raw.size);
		else
			same = first.size == raw.size && memcmp(first.data, raw.data, raw.size) == 0;
		msgpack_sbuffer_destroy(&raw);
		msgpack_zone_destroy(&z);
	}
	msgpack_sbuffer_destroy(&first);
	return same;
}

static uint64_t converge_ms(crig *r, uint64_t limit_ms)
{
	uint64_t t0 = sim_now(r->sim);

	while (!converged(r)) {
		cr_assert_lt(sim_now(r->sim) - t0, limit_ms,
			     "membership did not converge within %llu ms (seed %llu)",
			     (unsigned long long)limit_ms, (unsigned long long)r->seed);
		sim_run_for(r->sim, 100);
	}
	return sim_now(r->sim) - t0;
}

static void lossy(crig *r, uint32_t loss_ppm)
{
	sim_net_opts o;

	sim_net_opts_init(&o);
	o.loss_ppm = loss_ppm;
	o.dup_ppm = 20000;
	o.delay_min_ms = 1;
	o.delay_max_ms = 15;
	o.reorder = true;
	sim_net_set(r->sim, &o);
}

static void clean_net(crig *r)
{
	sim_net_opts o;

	sim_net_opts_init(&o);
	sim_net_set(r->sim, &o);
}

Test(cluster, three_nodes_converge_and_serve_any_key_from_any_node)
{
	crig r;
	uint32_t code = 0;
	char key[32], val[32];

	crig_init(&r, 3, sim_seed_env("three_nodes", 3), "none");
	converge_ms(&r, 10000);
	for (int k = 0; k < 30; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_eq(put(&r, (size_t)k % 3, key, val, 2, NULL, 0, &code), PROTO_OK,
			     "put %s (code %u, seed %llu)", key, code, (unsigned long long)r.seed);
	}
	for (int k = 0; k < 30; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		for (size_t i = 0; i < 3; i++)
			cr_assert_eq(get_is(&r, i, key, val, 2), 1, "get %s at node %zu", key, i);
	}
	crig_fini(&r);
}

Test(cluster, five_nodes_converge_under_loss_and_keep_every_acknowledged_write)
{
	uint64_t seed = sim_seed_env("five_nodes_lossy", (uint64_t)time(NULL));
	bool acked[60] = { false };
	char key[32], val[32];
	uint32_t code = 0;
	size_t nacked = 0;
	crig r;

	crig_init(&r, 5, seed, "always");
	lossy(&r, 20000);   /* 2% of datagrams lost, 2% of frames break their connection */
	converge_ms(&r, 60000);
	for (int k = 0; k < 60; k++) {
		size_t at = sim_rand(r.sim) % 5;

		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		acked[k] = put(&r, at, key, val, 2, NULL, 0, &code) == PROTO_OK;
		nacked += acked[k];
	}
	cr_assert_gt(nacked, 30, "only %zu of 60 writes acknowledged (seed %llu)", nacked,
		     (unsigned long long)seed);
	/* heal, then every acknowledged write reads back through every node */
	clean_net(&r);
	sim_run_for(r.sim, 3000);
	for (int k = 0; k < 60; k++) {
		if (!acked[k])
			continue;
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		for (size_t i = 0; i < 5; i++)
			cr_assert_eq(get_is(&r, i, key, val, 2), 1,
				     "acknowledged %s not read at node %zu (seed %llu)", key, i,
				     (unsigned long long)seed);
	}
	crig_fini(&r);
}

Test(cluster, a_crashed_node_is_reported_down_and_up_again_after_restart)
{
	uint64_t seed = sim_seed_env("crash_restart", (uint64_t)time(NULL));
	char buf[16];
	uint64_t t0;
	crig r;

	crig_init(&r, 4, seed, "none");
	lossy(&r, 5000);
	converge_ms(&r, 30000);
	sim_crash(r.sim, r.addr[3]);
	close_node(&r, 3);
	t0 = sim_now(r.sim);
	for (size_t i = 0; i < 3; i++)
		while (strcmp(liveness(&r, i, r.addr[3], buf, sizeof(buf)), "down") != 0) {
			cr_assert_lt(sim_now(r.sim) - t0, 20000, "node %zu sees %s as %s (seed %llu)",
				     i, r.addr[3], buf, (unsigned long long)seed);
			sim_run_for(r.sim, 50);
		}
	/* with W=3 the write cannot be met; W=2 can */
	uint32_t code = 0;

	cr_assert_eq(put(&r, 0, "k", "v", 3, NULL, 0, &code), PROTO_ERROR);
	cr_assert_eq(code, PROTO_ERR_QUORUM);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	t0 = sim_now(r.sim);
	for (size_t i = 0; i < 3; i++)
		while (strcmp(liveness(&r, i, r.addr[3], buf, sizeof(buf)), "up") != 0) {
			cr_assert_lt(sim_now(r.sim) - t0, 20000, "node %zu still sees %s as %s (seed %llu)",
				     i, r.addr[3], buf, (unsigned long long)seed);
			sim_run_for(r.sim, 50);
		}
	crig_fini(&r);
}

Test(cluster, a_paused_node_is_suspected_and_refutes_when_it_resumes)
{
	uint64_t seed = sim_seed_env("pause", (uint64_t)time(NULL));
	char buf[16];
	uint64_t t0;
	crig r;

	crig_init(&r, 3, seed, "none");
	converge_ms(&r, 10000);
	sim_pause(r.sim, r.addr[2], true);
	t0 = sim_now(r.sim);
	while (strcmp(liveness(&r, 0, r.addr[2], buf, sizeof(buf)), "up") == 0) {
		cr_assert_lt(sim_now(r.sim) - t0, 10000, "a paused node never became suspect");
		sim_run_for(r.sim, 50);
	}
	sim_pause(r.sim, r.addr[2], false);
	t0 = sim_now(r.sim);
	for (size_t i = 0; i < 2; i++)
		while (strcmp(liveness(&r, i, r.addr[2], buf, sizeof(buf)), "up") != 0) {
			cr_assert_lt(sim_now(r.sim) - t0, 10000, "node %zu: resumed node is %s (seed %llu)",
				     i, buf, (unsigned long long)seed);
			sim_run_for(r.sim, 50);
		}
	crig_fini(&r);
}

Test(cluster, concurrent_writes_through_two_nodes_become_siblings_and_a_merged_write_resolves_them)
{
	crig r;
	uint32_t code = 0;
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(3, 0);
	proto_msg m;
	uint8_t ctx[512];
	size_t ctxlen;

	crig_init(&r, 3, sim_seed_env("siblings", 5), "none");
	converge_ms(&r, 10000);
	cr_assert_eq(put(&r, 0, "k", "from-a", 3, NULL, 0, &code), PROTO_OK);
	cr_assert_eq(put(&r, 1, "k", "from-b", 3, NULL, 0, &code), PROTO_OK);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, r.next_id++, "k", 1, &o), 0);
	cr_assert(call(&r, 2, &sb, &m, 5000));
	cr_assert_eq(m.type, PROTO_VALUE);
	cr_assert_eq(m.nvalues, 2, "blind writes through two nodes must be siblings");
	cr_assert_lt(m.context.len, sizeof(ctx));
	ctxlen = m.context.len;
	memcpy(ctx, m.context.p, ctxlen);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(put(&r, 2, "k", "merged", 3, ctx, ctxlen, &code), PROTO_OK);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(get_is(&r, i, "k", "merged", 3), 1);
	crig_fini(&r);
}

/* Run an admin command with one argument at node i: the reply type. */
static uint32_t admin1(crig *r, size_t i, const char *cmd, const char *arg)
{
	msgpack_sbuffer sb;
	proto_msg m;
	uint32_t type = 0;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, arg ? &arg : NULL, arg ? 1 : 0), 0);
	if (call(r, i, &sb, &m, 10000)) {
		type = m.type;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}

static const char *status_of(crig *r, size_t i, const char *id, char *buf, size_t len)
{
	return member_field(r, i, "id", id, "status", buf, len);
}

Test(cluster, an_empty_node_leaves_stays_removed_after_a_restart_and_comes_back_by_join)
{
	crig r;
	char buf[16];
	node_stats st;

	crig_init(&r, 3, sim_seed_env("leave_rejoin", 11), "none");
	converge_ms(&r, 10000);
	cr_assert_eq(admin1(&r, 2, "leave", NULL), PROTO_INFO);
	sim_run_for(r.sim, 3000);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(status_of(&r, i, r.addr[2], buf, sizeof(buf)), "removed",
				 "node %zu", i);
	node_stats_get(r.nd[0], &st);
	cr_assert_eq(st.members, 2, "the ring has the two others");
	/* a restart does not bring it back */
	close_node(&r, 2);
	open_node(&r, 2);
	sim_run_for(r.sim, 3000);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(status_of(&r, i, r.addr[2], buf, sizeof(buf)), "removed",
				 "after restart, node %zu", i);
	/* an explicit join does */
	cr_assert_eq(admin1(&r, 2, "join", r.addr[0]), PROTO_INFO);
	sim_run_for(r.sim, 3000);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(status_of(&r, i, r.addr[2], buf, sizeof(buf)), "valid",
				 "after join, node %zu", i);
	converge_ms(&r, 10000);
	crig_fini(&r);
}

Test(cluster, leave_and_remove_of_a_member_holding_data_are_refused)
{
	crig r;
	uint32_t code = 0;
	char buf[16];

	crig_init(&r, 3, sim_seed_env("refuse_leave", 13), "none");
	converge_ms(&r, 10000);
	cr_assert_eq(put(&r, 0, "k", "v", 3, NULL, 0, &code), PROTO_OK);
	sim_run_for(r.sim, 2000);   /* let the key counts spread */
	cr_assert_eq(admin1(&r, 1, "leave", NULL), PROTO_ERROR);
	cr_assert_eq(admin1(&r, 0, "remove", r.addr[1]), PROTO_ERROR);
	cr_assert_eq(admin1(&r, 0, "remove", r.addr[0]), PROTO_ERROR, "a node cannot remove itself");
	cr_assert_eq(admin1(&r, 0, "remove", "no-such-node"), PROTO_ERROR);
	cr_assert_str_eq(status_of(&r, 2, r.addr[1], buf, sizeof(buf)), "valid");
	crig_fini(&r);
}

Test(cluster, a_damaged_members_file_is_refused_with_its_name)
{
	char path[128], err[512];
	node *nd = NULL;
	FILE *f;
	crig r;

	crig_init(&r, 1, 1, "none");
	close_node(&r, 0);
	snprintf(path, sizeof(path), "%s/MEMBERS", r.dir[0]);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	fputs("\x92\x01\xdd\xff\xff\xff\xff", f);   /* [1, array of 4 G entries] */
	fclose(f);
	err[0] = '\0';
	cr_assert_eq(node_open(&nd, &r.cfg[0], sim_host(r.sim, r.addr[0]), NULL, err, sizeof(err)),
		     DKV_ECORRUPT);
	cr_assert_null(nd);
	cr_assert_not_null(strstr(err, "MEMBERS"), "%s", err);
	crig_fini(&r);
}

Test(cluster, a_replica_that_dies_mid_request_fails_it_at_once_not_at_the_timeout)
{
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(0, 3);
	proto_msg m;
	uint64_t t0, took;
	crig r;

	crig_init(&r, 3, sim_seed_env("dies_mid_request", 17), "none");
	converge_ms(&r, 10000);
	/* warm the connections: node 0 has talked to both replicas */
	uint32_t code = 0;

	cr_assert_eq(put(&r, 0, "warm", "x", 3, NULL, 0, &code), PROTO_OK);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, r.next_id++, "k", 1, "v", 1, NULL, 0, &o), 0);
	clear_got(&r);
	t0 = sim_now(r.sim);
	cr_assert_eq(node_request(r.nd[0], 100, sb.data + 4, sb.size - 4), 0);
	/* the replica writes are on the wire; one replica dies now */
	sim_crash(r.sim, r.addr[2]);
	close_node(&r, 2);
	while (r.ngot == 0) {
		cr_assert_lt(sim_now(r.sim) - t0, 5000, "no answer");
		sim_run_for(r.sim, 1);
	}
	took = sim_now(r.sim) - t0;
	cr_assert_eq(proto_decode(r.got[0].frame + 4, r.got[0].len - 4,
				  &(proto_limits){ 1024, 1 << 20 }, &m, NULL, 0), 0);
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.code, PROTO_ERR_QUORUM, "code %u", m.code);
	cr_assert_not_null(memmem(m.message.p, m.message.len, "2 of w=3", 8), "%.*s",
			   (int)m.message.len, (const char *)m.message.p);
	cr_assert_lt(took, 1000, "answered after %llu ms: the request timeout is 2 s",
		     (unsigned long long)took);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	crig_fini(&r);
}
