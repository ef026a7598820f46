/*
 * test_identity.c -- a node is its data directory (the actor in NODE),
 * not its address or its id: whole clusters on the simulated network
 * (crig.h) where two data directories claim one node id, where seeds are
 * given to nodes that may or may not use them, where a node is removed,
 * and where MEMBERS files of the format before actors are read.
 *
 * Each test bounds itself in virtual time.  Replay a seeded one with
 *   DKV_SEED=N ./tests/unit/test_identity --filter 'identity/NAME' --jobs=1
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkv_config.h"
#include "error.h"
#include "mpr.h"
#include "node.h"
#include "peer.h"
#include "proto.h"
#include "simworld.h"

#include "crig.h"

typedef struct fatal_seen {
	int calls;
	char msg[1024];
} fatal_seen;

static void on_fatal(void *ctx, const char *msg)
{
	fatal_seen *f = ctx;

	f->calls++;
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
}

/* Node i's view of the member with id `id`: field `want` ("?" if absent). */
static const char *view(crig *r, size_t i, const char *id, const char *want)
{
	static char buf[MAXN][128];

	return member_field(r, i, "id", id, want, buf[i], sizeof(buf[i]));
}

static void no_seeds(crig *r, size_t i)
{
	set(&r->cfg[i], "seeds", "");
}

Test(identity, a_second_data_directory_claiming_a_members_id_is_refused_not_merged)
{
	fatal_seen f = { 0 };
	node_stats st;
	crig r;

	crig_prepare(&r, 3, sim_seed_env("id_taken", 41), "none");
	for (size_t i = 0; i < 3; i++)
		crig_log(&r, i);
	open_node(&r, 0);
	open_node(&r, 1);
	sim_run_for(r.sim, 3000);
	cr_assert_str_eq(view(&r, 0, r.addr[1], "status"), "valid", "node 1 never joined");

	/* node 2: its own data directory and address, node 1's id */
	set(&r.cfg[2], "node_id", r.addr[1]);
	open_node(&r, 2);
	node_on_fatal(r.nd[2], on_fatal, &f);
	sim_run_for(r.sim, 5000);

	/* the claimant learnt that its id is taken, said so, and stopped */
	cr_assert_eq(f.calls, 1, "the node was told %d times to stop", f.calls);
	cr_assert_not_null(node_failure(r.nd[2]));
	cr_assert_str_eq(node_failure(r.nd[2]), f.msg);
	cr_assert_not_null(strstr(f.msg, "node id 10.0.0.2:7070 is taken by another node"), "%s",
			   f.msg);
	cr_assert_not_null(strstr(f.msg, "at 10.0.0.2:7070"), "names the holder's address: %s",
			   f.msg);
	cr_assert_not_null(strstr(f.msg, "at 10.0.0.3:7070"), "names its own address: %s", f.msg);
	cr_assert_not_null(strstr(f.msg, "another --node-id"), "says what to do: %s", f.msg);
	cr_assert_eq(crig_log_count(&r, 2, "is taken by another node"), 1);

	/* the member's record was never touched, anywhere, and stays so */
	sim_run_for(r.sim, 5000);
	for (size_t i = 0; i < 2; i++) {
		cr_assert_str_eq(view(&r, i, r.addr[1], "addr"), r.addr[1], "node %zu's view", i);
		cr_assert_str_eq(view(&r, i, r.addr[1], "status"), "valid", "node %zu's view", i);
		cr_assert_str_eq(member_field(&r, i, "addr", r.addr[2], "id", (char[64]){ 0 }, 64),
				 "?", "node %zu knows the claimant's address", i);
		cr_assert_null(node_failure(r.nd[i]));
	}
	/* the seed counted the rival entry and logged it once */
	node_stats_get(r.nd[0], &st);
	cr_assert_geq(st.id_conflicts, 1);
	cr_assert_eq(crig_log_count(&r, 0, "two nodes claim the id"), 1);
	cr_assert_eq(crig_log_count(&r, 1, "two nodes claim the id") +
		     crig_log_count(&r, 1, "claims this node's id"), 0,
		     "the stopped claimant kept talking to the member it impersonates");
	crig_fini(&r);
}

Test(identity, seeds_are_used_by_a_node_alone_and_empty_even_with_a_members_file)
{
	crig r;

	crig_prepare(&r, 2, sim_seed_env("seeds_alone", 43), "none");
	no_seeds(&r, 1);
	open_node(&r, 0);
	open_node(&r, 1);   /* alone, no seeds: it writes MEMBERS of one */
	sim_run_for(r.sim, 2000);
	cr_assert_str_eq(view(&r, 0, r.addr[1], "status"), "?");
	crig_reopen(&r, 1, "seeds", r.addr[0]);
	converge_ms(&r, 10000);
	crig_fini(&r);
}

Test(identity, seeds_are_ignored_with_the_reason_by_a_node_with_members_or_data)
{
	uint32_t code = 0;
	crig r;

	/* alone, but it holds a key */
	crig_prepare(&r, 3, sim_seed_env("seeds_ignored", 47), "none");
	crig_log(&r, 1);
	no_seeds(&r, 1);
	set(&r.cfg[1], "n_val", "1");
	open_node(&r, 0);
	open_node(&r, 1);
	cr_assert_eq(put(&r, 1, "k", "v", 1, NULL, 0, &code), PROTO_OK, "code %u", code);
	crig_reopen(&r, 1, "seeds", r.addr[0]);
	sim_run_for(r.sim, 5000);
	cr_assert_str_eq(view(&r, 0, r.addr[1], "status"), "?", "a node with data joined by seeds");
	cr_assert_eq(crig_log_count(&r, 1, "seeds ignored: this node is alone but holds 1 keys"),
		     1);
	cr_assert_eq(crig_log_count(&r, 1, "`dynkv-admin join SEED`"), 1);

	/* in a cluster already: seeds are not a way to another one */
	crig_log(&r, 2);
	open_node(&r, 2);
	sim_run_for(r.sim, 3000);
	cr_assert_str_eq(view(&r, 0, r.addr[2], "status"), "valid");
	crig_reopen(&r, 2, "seeds", r.addr[1]);   /* another cluster: node 1's */
	sim_run_for(r.sim, 3000);
	cr_assert_eq(crig_log_count(&r, 2, "seeds ignored: this node already belongs to a "
				    "cluster (1 other members in"), 1);
	cr_assert_str_eq(view(&r, 1, r.addr[2], "status"), "?", "node 2 went to node 1's cluster");
	crig_fini(&r);
}

Test(identity, a_removed_node_says_once_that_it_can_be_stopped)
{
	const char *msg = "is no longer in the ring";
	crig r;

	crig_prepare(&r, 3, sim_seed_env("removed_warns", 53), "none");
	for (size_t i = 0; i < 3; i++) {
		crig_log(&r, i);
		open_node(&r, i);
	}
	char text[512];

	converge_ms(&r, 10000);
	/* (node 2 is up: a remove of it must be forced) */
	cr_assert_eq(crig_admin2(&r, 0, "remove", r.addr[2], "--force", text, sizeof(text)),
		     PROTO_INFO, "%s", text);
	cr_assert_eq(admin1(&r, 1, "leave", NULL), PROTO_INFO);
	/* node 1 hands its partitions to node 0, then is removed too */
	sim_run_for(r.sim, 15000);   /* push-pulls repeat the records many times */
	cr_assert_eq(crig_log_count(&r, 2, msg), 1, "removed node 2");
	cr_assert_eq(crig_log_count(&r, 1, msg), 1, "node 1, which left");
	cr_assert_eq(crig_log_count(&r, 1, "systemctl stop dynkvd"), 1);
	cr_assert_eq(crig_log_count(&r, 0, msg), 0, "node 0 is still in");
	crig_fini(&r);
}

/* MEMBERS of format 1: [1, [[id, addr, status, version, incarnation,
 * liveness, keys, keys_stamp], ...]], no actors. */
static void write_members_v1(const char *dir, const char *const *ids, size_t n)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char path[128];
	FILE *f;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint32(&pk, 1);
	msgpack_pack_array(&pk, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_array(&pk, 8);
		for (int k = 0; k < 2; k++)
			msgpack_pack_str_with_body(&pk, ids[i], strlen(ids[i]));
		msgpack_pack_uint32(&pk, 1);                /* valid */
		msgpack_pack_uint64(&pk, i + 1);            /* version */
		for (int k = 0; k < 4; k++)
			msgpack_pack_uint64(&pk, 0);
	}
	snprintf(path, sizeof(path), "%s/MEMBERS", dir);
	f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(sb.data, 1, sb.size, f), sb.size);
	fclose(f);
	msgpack_sbuffer_destroy(&sb);
}

/* The actor node `dir`'s MEMBERS records for id (0: none), and its format. */
static uint64_t recorded_actor(const char *dir, const char *id, uint64_t *format)
{
	static uint8_t buf[1 << 16];
	uint64_t n, left, actor = 0;
	char path[128];
	peer_entry e;
	size_t len;
	FILE *f;
	mpr r;

	snprintf(path, sizeof(path), "%s/MEMBERS", dir);
	f = fopen(path, "rb");
	cr_assert_not_null(f);
	len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	mpr_init(&r, buf, len, DKV_ECORRUPT);
	cr_assert_eq(mpr_array(&r, &n), 0);
	cr_assert_eq(mpr_uint(&r, format), 0);
	cr_assert_eq(mpr_array(&r, &left), 0);
	while (peer_entry_next(&r, &left, &e) == 1)
		if (e.idlen == strlen(id) && memcmp(e.id, id, e.idlen) == 0)
			actor = e.actor;
	return actor;
}

Test(identity, an_old_members_file_is_read_and_its_records_learn_their_actors)
{
	const char *ids[2];
	node_stats s0, s1;
	uint64_t fmt;
	crig r;

	crig_prepare(&r, 2, sim_seed_env("old_members", 59), "none");
	ids[0] = r.addr[0];
	ids[1] = r.addr[1];
	open_node(&r, 0);
	write_members_v1(r.dir[1], ids, 2);   /* node 1 knows node 0, without its actor */
	open_node(&r, 1);
	converge_ms(&r, 10000);
	sim_run_for(r.sim, 3000);
	node_stats_get(r.nd[0], &s0);
	node_stats_get(r.nd[1], &s1);
	cr_assert_eq(recorded_actor(r.dir[1], r.addr[0], &fmt), s0.actor,
		     "node 1 did not learn node 0's actor");
	cr_assert_eq(fmt, 3, "MEMBERS is rewritten in format 3");
	cr_assert_eq(recorded_actor(r.dir[1], r.addr[1], &fmt), s1.actor);
	cr_assert_eq(recorded_actor(r.dir[0], r.addr[1], &fmt), s1.actor);
	cr_assert_eq(s0.id_conflicts + s1.id_conflicts, 0);
	crig_fini(&r);
}
