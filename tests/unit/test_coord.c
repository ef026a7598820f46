/*
 * test_coord.c -- the request coordinator's state machines and the replica
 * side (src/coord.c, src/replica.c) on whole simulated clusters (crig.h):
 * the regressions of each lifecycle defect found, named after what broke.
 *
 * Every test prints its seed; replay with
 *   DKV_SEED=N ./tests/unit/test_coord --filter 'coord/NAME' --jobs=1
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crig.h"
#include "error.h"
#include "object.h"
#include "peer.h"

/* Reopen every node of r with key = val set (crig_init opened them with
 * its defaults), then wait for the ring. */
static void reconfigure(crig *r, const char *key, const char *val)
{
	converge_ms(r, 10000);   /* a node restarts with its MEMBERS, not --seeds */
	for (size_t i = 0; i < r->n; i++)
		crig_reopen(r, i, key, val);
	converge_ms(r, 10000);
}

/* Frames the world took from any node so far (sent or refused). */
static uint64_t frames_out(crig *r)
{
	sim_net_stats st;

	sim_net_stats_get(r->sim, &st);
	return st.frames_sent + st.frames_refused;
}

/* Deliver an RPUT of a one-value object under key, claiming to come from
 * `from_addr`, on connection `client` of node `to`. */
static void rput_as(crig *r, const char *from_addr, uint64_t client, size_t to, const char *key,
		    uint64_t pid, bool ack)
{
	msgpack_sbuffer enc, sb;
	object_vv none = { 0 };
	object *obj = object_new();

	cr_assert_not_null(obj);
	cr_assert_eq(object_put(obj, 0x5eed, &none, "v", 1, 1000), 0);
	msgpack_sbuffer_init(&enc);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_encode(obj, &enc), 0);
	cr_assert_eq(peer_encode_rput(&sb, pid, from_addr, key, strlen(key), enc.data, enc.size,
				      ack, NULL), 0);
	cr_assert_eq(node_request(r->nd[to], client, sb.data + 4, sb.size - 4), 0);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&enc);
	object_free(obj);
}

/* ... from node `from` to node `to`, as a coordinator (ack) or read repair
 * (no ack) would. */
static void rput(crig *r, size_t from, size_t to, const char *key, uint64_t pid, bool ack)
{
	rput_as(r, r->addr[from], sim_peer_client(r->sim, r->addr[from], r->addr[to]), to, key,
		pid, ack);
}

/* Review defect: under sync = always a replica acknowledged a replica write
 * at once when its merge changed nothing, although the same version had
 * been appended moments before (by a read repair) and not yet synced. */
Test(coord, a_replica_ack_waits_for_a_sync_even_when_the_merge_changes_nothing)
{
	crig r;
	node_stats st0, st1;
	uint64_t out0;

	crig_init(&r, 2, sim_seed_env("ack_waits_for_sync", 21), "always");
	converge_ms(&r, 10000);
	sim_set_sync_delay(r.sim, 50, 50);
	node_stats_get(r.nd[1], &st0);
	/* a read repair appends the version; nobody waits for its sync */
	rput(&r, 0, 1, "k", 0, false);
	/* the coordinator's write of the same version: nothing new to append */
	out0 = frames_out(&r);
	rput(&r, 0, 1, "k", 4242, true);
	cr_assert_eq(frames_out(&r), out0,
		     "the replica acknowledged before any sync covered the append");
	sim_run_for(r.sim, 200);
	node_stats_get(r.nd[1], &st1);
	cr_assert_gt(st1.syncs, st0.syncs, "no sync ran");
	cr_assert_gt(frames_out(&r), out0, "the ack never went out");
	cr_assert_eq(node_inflight(r.nd[1]), 0);
	crig_fini(&r);
}

/* Review defect: a write whose deadline passed while its own sync ran was
 * left alone by the timeout; with a replica's ack lost (no peer-down
 * notice), it stayed in flight forever and a drain waited out its limit. */
Test(coord, a_write_that_times_out_during_its_sync_is_freed_when_the_sync_ends)
{
	crig r;
	uint32_t code = 0;
	uint64_t t0;

	crig_init(&r, 2, sim_seed_env("timeout_during_sync", 23), "always");
	/* SWIM must not find the cut link before the end: no peer-down at all */
	reconfigure(&r, "suspect_timeout", "60s");
	sim_set_sync_delay(r.sim, 2500, 2500);   /* longer than the 2 s deadline */
	sim_partition(r.sim, r.addr[0], r.addr[1], true);   /* acks vanish */
	t0 = sim_now(r.sim);
	cr_assert_eq(put(&r, 0, "k", "v", 2, NULL, 0, &code), PROTO_ERROR);
	cr_assert_eq(code, PROTO_ERR_TIMEOUT, "code %u", code);
	while (node_inflight(r.nd[0]) != 0) {
		cr_assert_lt(sim_now(r.sim) - t0, 10000,
			     "the write is still in flight %llu ms after it timed out (seed %llu)",
			     (unsigned long long)(sim_now(r.sim) - t0), (unsigned long long)r.seed);
		sim_run_for(r.sim, 100);
	}
	cr_assert_lt(sim_now(r.sim) - t0, 3000, "freed only at %llu ms",
		     (unsigned long long)(sim_now(r.sim) - t0));
	sim_partition(r.sim, r.addr[0], r.addr[1], false);
	crig_fini(&r);
}

/* Review defect: a replica dropped a read of a key longer than its
 * max_key_size without an answer, so the coordinator waited for its
 * deadline. */
Test(coord, a_replica_answers_a_read_of_a_key_it_refuses_at_once)
{
	crig r;
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(2, 0);
	proto_msg m;
	char key[1501];
	uint64_t t0;

	crig_init(&r, 2, sim_seed_env("oversized_replica_read", 25), "none");
	converge_ms(&r, 10000);
	crig_reopen(&r, 0, "max_key_size", "2000");
	converge_ms(&r, 10000);
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, r.next_id++, key, strlen(key), &o), 0);
	t0 = sim_now(r.sim);
	cr_assert(call(&r, 0, &sb, &m, 5000), "no answer");
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.code, PROTO_ERR_QUORUM, "code %u: %.*s", m.code, (int)m.message.len,
		     (const char *)m.message.p);
	cr_assert_lt(sim_now(r.sim) - t0, 500, "answered after %llu ms (the deadline is 2 s)",
		     (unsigned long long)(sim_now(r.sim) - t0));
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	crig_fini(&r);
}

/* Review defect: any client connection could send peer frames, and every
 * distinct sender address was interned forever in a linearly searched
 * list: unbounded memory from one client. */
Test(coord, peer_frames_from_strangers_are_dropped_and_not_remembered)
{
	crig r;
	node_stats st0, st1;
	char from[64];

	crig_init(&r, 2, sim_seed_env("peer_frames_from_strangers", 27), "none");
	converge_ms(&r, 10000);
	node_stats_get(r.nd[1], &st0);
	for (int k = 0; k < 5000; k++) {
		snprintf(from, sizeof(from), "192.0.2.%d:%d", k % 250, 1000 + k);
		rput_as(&r, from, 77, 1, "stranger", (uint64_t)k, k % 2 == 0);
	}
	node_stats_get(r.nd[1], &st1);
	cr_assert_eq(st1.peer_refused - st0.peer_refused, 5000);
	cr_assert_eq(st1.replica_writes, st0.replica_writes, "a stranger's RPUT was applied");
	cr_assert_eq(st1.peer_addrs, st0.peer_addrs, "%zu addresses interned, %zu before",
		     st1.peer_addrs, st0.peer_addrs);
	cr_assert_eq(get_is(&r, 1, "stranger", NULL, 1), 1, "the key is stored");
	/* a member's frames still count */
	rput(&r, 0, 1, "member", 0, false);
	node_stats_get(r.nd[1], &st1);
	cr_assert_eq(st1.replica_writes, st0.replica_writes + 1);
	crig_fini(&r);
}
