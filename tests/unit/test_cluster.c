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

#include "crig.h"

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

/* The metrics (metrics.h) count each answer on the node whose client was
 * answered, by operation and result: puts through node 0, hits and misses
 * through node 1, nothing through node 2; replica work shows where it ran;
 * a write that cannot meet its quorum counts as quorum. */
Test(cluster, metrics_count_each_answer_on_the_node_its_client_asked)
{
	crig r;
	uint32_t code = 0;
	char key[32], val[32];

	crig_init(&r, 3, sim_seed_env("metrics", 5), "none");
	converge_ms(&r, 10000);
	for (int k = 0; k < 10; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_eq(put(&r, 0, key, val, 2, NULL, 0, &code), PROTO_OK, "put %s", key);
	}
	for (int k = 0; k < 4; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_eq(get_is(&r, 1, key, val, 2), 1);
	}
	for (int k = 0; k < 3; k++) {
		snprintf(key, sizeof(key), "missing-%d", k);
		cr_assert_eq(get_is(&r, 1, key, NULL, 2), 1);
	}
	cr_assert_eq(crig_metric(&r, 0, "dynkv_requests_total{op=\"put\",result=\"ok\"}"), 10);
	cr_assert_eq(crig_metric(&r, 1, "dynkv_requests_total{op=\"put\",result=\"ok\"}"), 0);
	cr_assert_eq(crig_metric(&r, 1, "dynkv_requests_total{op=\"get\",result=\"ok\"}"), 4);
	cr_assert_eq(crig_metric(&r, 1, "dynkv_requests_total{op=\"get\",result=\"not_found\"}"),
		     3);
	cr_assert_eq(crig_metric(&r, 2, "dynkv_requests_total{op=\"get\",result=\"ok\"}"), 0);
	cr_assert_eq(crig_metric(&r, 1, "dynkv_request_duration_seconds_count{op=\"get\"}"), 7);
	cr_assert_eq(crig_metric(&r, 1, "dynkv_siblings_per_read_count"), 4);
	cr_assert_eq(crig_metric(&r, 1, "dynkv_siblings_per_read_bucket{le=\"1\"}"), 4);
	cr_assert_geq(crig_metric(&r, 1, "dynkv_replica_request_duration_seconds_count{op=\"put\"}"),
		      10, "node 1 acknowledged the replica writes of 10 puts with w=2");
	cr_assert_eq(crig_metric(&r, 0, "dynkv_members{liveness=\"up\"}"), 3);
	crig_crash(&r, 1);
	crig_crash(&r, 2);
	cr_assert_eq(put(&r, 0, "key-x", "x", 2, NULL, 0, &code), PROTO_ERROR);
	cr_assert_eq(code, PROTO_ERR_QUORUM);
	cr_assert_eq(crig_metric(&r, 0, "dynkv_requests_total{op=\"put\",result=\"quorum\"}"), 1);
	cr_assert_eq(crig_metric(&r, 0, "dynkv_members{liveness=\"down\"}"), 2);
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
	/* with W=3 the write is met all the same: a fallback stands in for
	 * the down node (sloppy quorum).  On a clean network: a lost ack
	 * (the loss above) would make it a timeout instead */
	uint32_t code = 0;

	clean_net(&r);
	cr_assert_eq(put(&r, 0, "k", "v", 3, NULL, 0, &code), PROTO_OK, "code %u (seed %llu)", code,
		     (unsigned long long)seed);
	lossy(&r, 5000);
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
/* Run until node i sees node who's status as want; fails after limit_ms. */
static void wait_status(crig *r, size_t i, size_t who, const char *want, uint64_t limit_ms)
{
	char buf[16];
	uint64_t t0 = sim_now(r->sim);

	while (strcmp(status_of(r, i, r->addr[who], buf, sizeof(buf)), want) != 0) {
		cr_assert_lt(sim_now(r->sim) - t0, limit_ms, "node %zu sees node %zu %s, not %s "
			     "(seed %llu)", i, who, buf, want, (unsigned long long)r->seed);
		sim_run_for(r->sim, 100);
	}
}

Test(cluster, an_empty_node_leaves_stays_removed_after_a_restart_and_comes_back_by_join)
{
	crig r;
	char buf[16];
	node_stats st;

	crig_init(&r, 3, sim_seed_env("leave_rejoin", 11), "none");
	converge_ms(&r, 10000);
	cr_assert_eq(admin1(&r, 2, "leave", NULL), PROTO_INFO);
	for (size_t i = 0; i < 3; i++)
		wait_status(&r, i, 2, "removed", 30000);
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

/* An admin command with at most one argument that must be refused: the
 * message into buf. */
static void admin_refused(crig *r, size_t i, const char *cmd, const char *arg, char *buf,
			  size_t len)
{
	msgpack_sbuffer sb;
	proto_msg m;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, arg ? &arg : NULL, arg ? 1 : 0), 0);
	cr_assert(call(r, i, &sb, &m, 10000), "%s: no answer", cmd);
	cr_assert_eq(m.type, PROTO_ERROR, "%s %s was not refused", cmd, arg ? arg : "");
	snprintf(buf, len, "%.*s", (int)m.message.len, (const char *)m.message.p);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
}

/* DESIGN 7, issue 12: a node that holds data leaves.  It is shown leaving,
 * keeps serving while its partitions move to their new replicas, then is
 * removed everywhere; every key is on its 3 primaries among the others. */
Test(cluster, a_node_holding_data_leaves_after_handing_its_partitions_over)
{
	char key[32], val[32], buf[16];
	uint32_t code = 0;
	bool seen_leaving = false;
	uint64_t t0;
	crig r;

	crig_init(&r, 4, sim_seed_env("leave_data", 47), "interval");
	crig_settle(&r, 4, 30000);
	for (int k = 0; k < 200; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_eq(put(&r, (size_t)k % 4, key, val, 3, NULL, 0, &code), PROTO_OK,
			     "put %s (code %u, seed %llu)", key, code, (unsigned long long)r.seed);
	}
	cr_assert_eq(admin1(&r, 3, "leave", NULL), PROTO_INFO);
	t0 = sim_now(r.sim);
	while (strcmp(status_of(&r, 0, r.addr[3], buf, sizeof(buf)), "removed") != 0) {
		int k = (int)(sim_rand(r.sim) % 200);

		seen_leaving |= strcmp(buf, "leaving") == 0;
		cr_assert_lt(sim_now(r.sim) - t0, 60000, "node 3 is still %s (seed %llu)", buf,
			     (unsigned long long)r.seed);
		/* it serves meanwhile: reads through it never miss */
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_neq(get_is(&r, 3, key, val, 1), 0, "%s read wrong through the leaving "
			      "node (seed %llu)", key, (unsigned long long)r.seed);
		sim_run_for(r.sim, 100);
	}
	cr_assert(seen_leaving, "node 0 never showed node 3 leaving");
	/* it handed its partitions over (it was a source of every stream of
	 * them), before it was removed */
	cr_assert_gt(crig_admin_u64(&r, 3, "transfers", "served_bytes"), 0);
	crig_settle(&r, 3, 30000);
	for (int k = 0; k < 200; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_eq(crig_holding(&r, 3, key, val), 3, "%s is not on its 3 primaries "
			     "after the leave (seed %llu)", key, (unsigned long long)r.seed);
	}
	crig_fini(&r);
}

/* remove is for a node gone for good: refused for one that is up, and for
 * one that is the only replica of partitions (N=1), unless forced; a
 * forced remove of a dead N=1 node settles without it. */
Test(cluster, remove_is_refused_for_a_node_that_is_up_or_the_only_replica_unless_forced)
{
	char msg[512], buf[16];
	crig r;

	crig_prepare(&r, 3, sim_seed_env("refuse_remove", 13), "none");
	for (size_t i = 0; i < 3; i++) {
		set(&r.cfg[i], "n_val", "1");
		open_node(&r, i);
	}
	crig_settle(&r, 3, 30000);
	admin_refused(&r, 0, "remove", r.addr[1], msg, sizeof(msg));
	cr_assert_not_null(strstr(msg, "is up"), "%s", msg);
	admin_refused(&r, 0, "remove", r.addr[0], msg, sizeof(msg));
	cr_assert_not_null(strstr(msg, "cannot remove itself"), "%s", msg);
	admin_refused(&r, 0, "remove", "no-such-node", msg, sizeof(msg));
	cr_assert_not_null(strstr(msg, "no member"), "%s", msg);
	crig_crash(&r, 2);
	admin_refused(&r, 0, "remove", r.addr[2], msg, sizeof(msg));
	cr_assert_not_null(strstr(msg, "only replica of"), "%s", msg);
	cr_assert_str_eq(status_of(&r, 1, r.addr[2], buf, sizeof(buf)), "valid");
	cr_assert_eq(crig_admin2(&r, 0, "remove", r.addr[2], "--force", msg, sizeof(msg)), PROTO_INFO,
		     "%s", msg);
	for (size_t i = 0; i < 2; i++)
		wait_status(&r, i, 2, "removed", 10000);
	crig_settle(&r, 2, 30000);
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

/* --- ring epochs (cluster.h EPOCHS) ---------------------------------------- */

/* Node i's chain as text, "N:id,id;N:id,id" (into buf), and its newest
 * epoch's number and member count. */
static const char *chain_of(crig *r, size_t i, char *buf, size_t len, uint64_t *newest,
			    size_t *members)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *ep;
	size_t off = 0;

	buf[0] = '\0';
	*newest = 0;
	*members = 0;
	msgpack_zone_init(&z, 4096);
	if (admin(r, i, "members", &z, &o, NULL) && (ep = field(&o, "epochs")) != NULL &&
	    ep->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t k = 0; k < ep->via.array.size; k++) {
			const msgpack_object *e = &ep->via.array.ptr[k];
			const msgpack_object *num = field(e, "number"), *ms = field(e, "members");

			cr_assert(num != NULL && ms != NULL && ms->type == MSGPACK_OBJECT_ARRAY);
			*newest = num->via.u64;
			*members = ms->via.array.size;
			off += (size_t)snprintf(buf + off, len - off, "%s%llu:", k ? ";" : "",
						(unsigned long long)*newest);
			for (uint32_t j = 0; j < ms->via.array.size && off < len; j++)
				off += (size_t)snprintf(buf + off, len - off, "%s%.*s", j ? "," : "",
							(int)ms->via.array.ptr[j].via.str.size,
							ms->via.array.ptr[j].via.str.ptr);
			cr_assert_lt(off, len);
		}
	}
	msgpack_zone_destroy(&z);
	return buf;
}

/* Run until every open node has the same chain, whose newest epoch has
 * `members` members and is what every member acks; fails after limit_ms. */
static uint64_t epochs_converge(crig *r, size_t members, uint64_t limit_ms)
{
	char first[1024], other[1024], ack[32];
	uint64_t newest = 0, n2;
	size_t m, m2;

	for (uint64_t t = 0; t <= limit_ms; t += 250) {
		bool same = true;
		size_t f = 0;

		while (f < r->n && r->nd[f] == NULL)
			f++;
		chain_of(r, f, first, sizeof(first), &newest, &m);
		for (size_t i = f; same && i < r->n; i++) {
			if (r->nd[i] == NULL)
				continue;
			chain_of(r, i, other, sizeof(other), &n2, &m2);
			same = strcmp(first, other) == 0;
			for (size_t j = 0; same && j < r->n; j++)
				if (r->nd[j] != NULL && strcmp(status_of(r, i, r->addr[j], ack,
							sizeof(ack)), "removed") != 0)
					same = strtoull(member_field(r, i, "id", r->addr[j],
							"epoch_ack", ack, sizeof(ack)), NULL, 10) == newest;
		}
		if (same && m == members && newest > 0)
			return newest;
		sim_run_for(r->sim, 250);
	}
	cr_assert_fail("ring epochs did not converge on %zu members within %llu ms "
		       "(node 0: %s; seed %llu)", members, (unsigned long long)limit_ms,
		       first, (unsigned long long)r->seed);
	return 0;
}

Test(cluster, ring_epochs_follow_membership_and_survive_a_restart)
{
	char buf[1024], again[1024], f[32];
	uint64_t newest, n2;
	size_t m;
	crig r;

	crig_init(&r, 3, sim_seed_env("epochs_follow", 31), "none");
	converge_ms(&r, 10000);
	newest = epochs_converge(&r, 3, 10000);
	chain_of(&r, 0, buf, sizeof(buf), &n2, &m);
	/* the seed made the first epoch alone; each join made one more (two
	 * joins heard at once make one); each joiner received its partitions
	 * (empty ones) by transfer, every member then held the newest epoch
	 * whole, reads moved to it and the older epochs were dropped
	 * (converge_ms waits for one epoch on every node) */
	cr_assert(newest == 3 || newest == 2, "chain %s", buf);
	snprintf(again, sizeof(again), "%llu:10.0.0.1:7070,10.0.0.2:7070,10.0.0.3:7070",
		 (unsigned long long)newest);
	cr_assert_str_eq(buf, again);
	for (size_t i = 0; i < 3; i++) {
		static const char *const marks[] = { "epoch_ack", "epoch_sync", "epoch_read" };

		for (size_t k = 0; k < 3; k++)
			cr_assert_eq(strtoull(member_field(&r, 0, "id", r.addr[i], marks[k], f,
							   sizeof(f)), NULL, 10), newest,
				     "node %zu's %s in chain %s", i, marks[k], buf);
	}
	/* a restart keeps the chain (MEMBERS), before any message */
	close_node(&r, 1);
	open_node(&r, 1);
	chain_of(&r, 1, again, sizeof(again), &n2, &m);
	cr_assert_str_eq(again, buf);
	/* a member leaves: one epoch more, without it, everywhere */
	cr_assert_eq(admin1(&r, 2, "leave", NULL), PROTO_INFO);
	cr_assert_eq(epochs_converge(&r, 2, 10000), newest + 1);
	crig_fini(&r);
}

/* Cut (or heal) the network between {0, 3} and {1, 2, 4}. */
static void split_0_3_from_1_2_4(crig *r, bool cut)
{
	static const size_t a[] = { 0, 3 }, b[] = { 1, 2, 4 };

	for (size_t i = 0; i < 2; i++)
		for (size_t j = 0; j < 3; j++)
			sim_partition(r->sim, r->addr[a[i]], r->addr[b[j]], cut);
}

Test(cluster, two_joins_at_once_through_two_nodes_fork_and_converge)
{
	char a[1024], b[1024];
	uint64_t na, nb;
	size_t ma, mb;
	crig r;

	crig_prepare(&r, 5, sim_seed_env("epochs_fork", 37), "none");
	set(&r.cfg[4], "seeds", r.addr[1]);   /* node 4 joins through node 1 */
	for (size_t i = 0; i < 3; i++)
		open_node(&r, i);
	(void)epochs_converge(&r, 3, 10000);
	/* nodes 0 and 1 cannot hear each other while 3 joins through 0 and 4
	 * through 1 */
	split_0_3_from_1_2_4(&r, true);
	open_node(&r, 3);
	open_node(&r, 4);
	sim_run_for(r.sim, 3000);
	chain_of(&r, 0, a, sizeof(a), &na, &ma);
	chain_of(&r, 1, b, sizeof(b), &nb, &mb);
	cr_assert_eq(na, 4, "node 0: %s", a);
	cr_assert_eq(nb, 4, "node 1: %s", b);
	cr_assert_str_neq(a, b, "the two sides made different epochs 4");
	split_0_3_from_1_2_4(&r, false);
	converge_ms(&r, 20000);
	/* one epoch 4 won everywhere; the next holds both joins */
	na = epochs_converge(&r, 5, 20000);
	cr_assert_eq(na, 5);
	crig_fini(&r);
}

/* --- plan ------------------------------------------------------------------ */

/* dynkv-admin plan VERB NODE at node i: the reply's type; its INFO map
 * in *out (z), or its error message in msg. */
static uint32_t plan_at(crig *r, size_t i, const char *verb, const char *who, msgpack_zone *z,
			msgpack_object *out, char *msg, size_t msglen)
{
	const char *args[2] = { verb, who };
	msgpack_sbuffer sb;
	proto_msg m;
	uint32_t type = 0;

	msg[0] = '\0';
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, "plan", args, 2), 0);
	if (call(r, i, &sb, &m, 2000)) {
		type = m.type;
		if (type == PROTO_INFO)
			cr_assert_eq(msgpack_unpack((const char *)m.info.p, m.info.len, NULL, z, out),
				     MSGPACK_UNPACK_SUCCESS);
		else
			snprintf(msg, msglen, "%.*s", (int)m.message.len, (const char *)m.message.p);
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}

static uint64_t u_of(const msgpack_object *map, const char *k)
{
	const msgpack_object *v = field(map, k);

	cr_assert(v != NULL && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "field %s", k);
	return v->via.u64;
}

/* Check a plan's moves: each to `to` (or never to `not_to`), each from
 * `from` (or never from `not_from`); returns how many. */
static uint64_t check_moves(const msgpack_object *plan, const char *to, const char *not_to,
			    const char *from, const char *not_from)
{
	const msgpack_object *mv = field(plan, "moves");

	cr_assert(mv != NULL && mv->type == MSGPACK_OBJECT_ARRAY);
	for (uint32_t k = 0; k < mv->via.array.size; k++) {
		const msgpack_object *e = &mv->via.array.ptr[k];

		if (to != NULL)
			cr_assert(str_is(field(e, "to"), to), "move %u goes elsewhere", k);
		if (not_to != NULL)
			cr_assert(!str_is(field(e, "to"), not_to), "move %u goes to %s", k, not_to);
		if (from != NULL)
			cr_assert(str_is(field(e, "from"), from), "move %u comes from elsewhere", k);
		if (not_from != NULL)
			cr_assert(!str_is(field(e, "from"), not_from), "move %u from %s", k, not_from);
	}
	return mv->via.array.size;
}

Test(cluster, plan_shows_what_a_change_would_move_and_changes_nothing)
{
	msgpack_zone z;
	msgpack_object o;
	char msg[256], chain[1024], chain2[1024];
	uint64_t newest, n2, total = 0, reps = 0, moves;
	size_t m;
	crig r;

	crig_init(&r, 4, sim_seed_env("plan", 41), "none");
	converge_ms(&r, 10000);
	(void)epochs_converge(&r, 4, 10000);   /* joins heard at once may fork first */
	chain_of(&r, 0, chain, sizeof(chain), &newest, &m);
	msgpack_zone_init(&z, 1 << 16);
	/* a join: every move is to the newcomer, none between old members;
	 * it takes its share of the 4 x 3 -> 5 x 3 replicas */
	cr_assert_eq(plan_at(&r, 0, "join", "10.0.0.9:7070", &z, &o, msg, sizeof(msg)), PROTO_INFO);
	moves = check_moves(&o, "10.0.0.9:7070", NULL, NULL, "10.0.0.9:7070");
	cr_assert_eq(u_of(&o, "members_before"), 4);
	cr_assert_eq(u_of(&o, "members_after"), 5);
	cr_assert_eq(u_of(&o, "lost"), 0);
	{
		const msgpack_object *own = field(&o, "ownership");

		cr_assert_eq(own->via.array.size, 5);
		for (uint32_t k = 0; k < 5; k++) {
			const msgpack_object *e = &own->via.array.ptr[k];

			total += u_of(e, "replicas");
			if (str_is(field(e, "id"), "10.0.0.9:7070"))
				reps = u_of(e, "replicas");
		}
	}
	cr_assert_eq(total, u_of(&o, "replicas"));
	cr_assert_eq(moves, reps, "the newcomer gets exactly the replicas that move");
	cr_assert(moves > total / 5 / 2 && moves < total / 5 * 2, "%llu of %llu",
		  (unsigned long long)moves, (unsigned long long)total);
	/* a leave: every move comes from the leaving member, to another */
	msgpack_zone_clear(&z);
	cr_assert_eq(plan_at(&r, 1, "leave", r.addr[3], &z, &o, msg, sizeof(msg)), PROTO_INFO);
	cr_assert_gt(check_moves(&o, NULL, r.addr[3], r.addr[3], NULL), 0);
	/* a remove: the removed member is gone, so never a source */
	msgpack_zone_clear(&z);
	cr_assert_eq(plan_at(&r, 2, "remove", r.addr[3], &z, &o, msg, sizeof(msg)), PROTO_INFO);
	cr_assert_gt(check_moves(&o, NULL, r.addr[3], NULL, r.addr[3]), 0);
	cr_assert_eq(u_of(&o, "lost"), 0);
	/* what cannot be planned */
	cr_assert_eq(plan_at(&r, 0, "join", r.addr[1], &z, &o, msg, sizeof(msg)), PROTO_ERROR);
	cr_assert(strstr(msg, "is a member of the ring already") != NULL, "%s", msg);
	cr_assert_eq(plan_at(&r, 0, "leave", "10.0.0.9:7070", &z, &o, msg, sizeof(msg)),
		     PROTO_ERROR);
	cr_assert(strstr(msg, "is not a member") != NULL, "%s", msg);
	cr_assert_eq(plan_at(&r, 0, "grow", r.addr[1], &z, &o, msg, sizeof(msg)), PROTO_ERROR);
	cr_assert(strstr(msg, "unknown change \"grow\"") != NULL, "%s", msg);
	/* and nothing changed */
	sim_run_for(r.sim, 2000);
	chain_of(&r, 0, chain2, sizeof(chain2), &n2, &m);
	cr_assert_str_eq(chain2, chain);
	msgpack_zone_destroy(&z);
	crig_fini(&r);
}

/* DESIGN 5 and 7, issue 12: a 4th node joins 3 that hold data while
 * writes and reads go on.  No read of a key written before misses it, even
 * with R=1 (reads count in the old epoch until the new node holds its
 * partitions), every
 * write acknowledged during the change is read back after it, the new node
 * received its partitions by transfer, and once the cluster settles every
 * key is on exactly its 3 primaries without any read having repaired it. */
Test(cluster, a_node_joins_under_load_and_no_key_is_missed_or_lost)
{
	enum { OLD = 300, NEW = 150 };
	bool acked[NEW] = { false };
	char key[32], val[32];
	uint32_t code = 0;
	size_t nacked = 0;
	crig r;

	crig_prepare(&r, 4, sim_seed_env("join_load", 43), "interval");
	for (size_t i = 0; i < 3; i++)
		open_node(&r, i);
	crig_settle(&r, 3, 30000);
	for (int k = 0; k < OLD; k++) {
		snprintf(key, sizeof(key), "key-%d", k);
		snprintf(val, sizeof(val), "value-%d", k);
		cr_assert_eq(put(&r, (size_t)k % 3, key, val, 3, NULL, 0, &code), PROTO_OK,
			     "put %s (code %u, seed %llu)", key, code, (unsigned long long)r.seed);
	}
	open_node(&r, 3);   /* seeds: node 0 */
	for (int k = 0; k < NEW; k++) {
		size_t at = sim_rand(r.sim) % 4;
		int old = (int)(sim_rand(r.sim) % OLD);

		snprintf(key, sizeof(key), "new-%d", k);
		snprintf(val, sizeof(val), "fresh-%d", k);
		acked[k] = put(&r, at, key, val, 2, NULL, 0, &code) == PROTO_OK;
		nacked += acked[k];
		snprintf(key, sizeof(key), "key-%d", old);
		snprintf(val, sizeof(val), "value-%d", old);
		at = sim_rand(r.sim) % 4;
		/* written to all 3 replicas: R=1 from any of them finds it (a
		 * quorum error is an error, not a miss; a miss is a wrong answer) */
		cr_assert_neq(get_is(&r, at, key, val, 1), 0, "%s read wrong at node %zu during "
			      "the join (op %d, seed %llu)", key, at, k, (unsigned long long)r.seed);
	}
	cr_assert_gt(nacked, NEW * 9 / 10, "only %zu of %d writes acknowledged during the join "
		     "(seed %llu)", nacked, NEW, (unsigned long long)r.seed);
	crig_settle(&r, 4, 60000);
	cr_assert_gt(crig_admin_u64(&r, 3, "status", "keys"), 0, "the new node holds nothing");
	for (int k = 0; k < OLD + NEW; k++) {
		bool fresh = k >= OLD;

		if (fresh && !acked[k - OLD])
			continue;
		snprintf(key, sizeof(key), fresh ? "new-%d" : "key-%d", fresh ? k - OLD : k);
		snprintf(val, sizeof(val), fresh ? "fresh-%d" : "value-%d", fresh ? k - OLD : k);
		cr_assert_eq(crig_holding(&r, 4, key, val), 3, "%s is not on its 3 primaries "
			     "after the join (seed %llu)", key, (unsigned long long)r.seed);
	}
	for (int k = 0; k < OLD + NEW; k += 7) {
		bool fresh = k >= OLD;

		if (fresh && !acked[k - OLD])
			continue;
		snprintf(key, sizeof(key), fresh ? "new-%d" : "key-%d", fresh ? k - OLD : k);
		snprintf(val, sizeof(val), fresh ? "fresh-%d" : "value-%d", fresh ? k - OLD : k);
		for (size_t i = 0; i < 4; i++)
			cr_assert_eq(get_is(&r, i, key, val, 2), 1, "%s at node %zu after the join "
				     "(seed %llu)", key, i, (unsigned long long)r.seed);
	}
	crig_fini(&r);
}
