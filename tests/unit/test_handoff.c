/*
 * test_handoff.c -- sloppy quorum and hinted handoff (coord.c, replica.c,
 * handoff.c) on the simulated cluster rig: writes that a down primary
 * misses go to a fallback with a hint, count for W but not PW, are read
 * back through the fallback, survive the fallback's restart, and reach the
 * owner by themselves once it is back, deletes included.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crig.h"
#include "error.h"
#include "object.h"
#include "peer.h"
#include "ring.h"

#define NKEYS 60

/* A replace-mode put with W and PW (it supersedes what a quorum read
 * returns: no siblings); the reply type, *code its error code. */
static uint32_t put_wpw(crig *r, size_t i, const char *key, const char *val, int32_t w,
			int32_t pw, uint32_t *code)
{
	proto_opts o = opts_rw(0, w);

	o.pw = pw;
	o.replace = true;
	return crig_write(r, i, key, val, &o, code);
}

/* A replace-mode delete with W. */
static uint32_t del_w(crig *r, size_t i, const char *key, int32_t w)
{
	proto_opts o = opts_rw(0, w);

	o.replace = true;
	return crig_write(r, i, key, NULL, &o, NULL);
}

/* True iff member id is one of key's primaries (the same ring on every
 * node: ids sorted). */
static bool owns(crig *r, const char *key, const char *id)
{
	const char *ids[MAXN];
	ring *rg;
	bool yes = false;
	uint32_t p;

	for (size_t i = 0; i < r->n; i++)
		ids[i] = r->addr[i];   /* node ids default to the listen address */
	cr_assert_eq(ring_build(&rg, ids, r->n, 512, 3), 0);
	p = ring_partition(ring_key_hash(key, strlen(key)), 512);
	for (uint32_t k = 0; k < ring_n(rg); k++)
		yes |= strcmp(ring_member_id(rg, ring_preflist(rg, p)[k]), id) == 0;
	ring_free(rg);
	return yes;
}

/* Hinted keys node i holds, over every owner. */
static uint64_t pending(crig *r, size_t i)
{
	return crig_admin_u64(r, i, "hints", "pending");
}

/* Keys node i stores in its partitions (status "keys"). */
static uint64_t stored(crig *r, size_t i)
{
	return crig_admin_u64(r, i, "status", "keys");
}

/* Run until no node holds a hint (failing after limit_ms). */
static uint64_t drain(crig *r, uint64_t limit_ms)
{
	uint64_t t0 = sim_now(r->sim);

	for (;;) {
		uint64_t left = 0;

		for (size_t i = 0; i < r->n; i++)
			if (r->nd[i] != NULL)
				left += pending(r, i);
		if (left == 0)
			return sim_now(r->sim) - t0;
		cr_assert_lt(sim_now(r->sim) - t0, limit_ms, "%" PRIu64 " hints still held after %"
			     PRIu64 " ms (seed %llu)", left, limit_ms, (unsigned long long)r->seed);
		sim_run_for(r->sim, 100);
	}
}

static void key_of(char *buf, size_t len, int k)
{
	snprintf(buf, len, "key-%03d", k);
}

/* A converged 4-node cluster (node 3 the one to fail), every key written
 * with val first when val is not NULL. */
static void start4(crig *r, uint64_t seed, const char *sync, const char *val)
{
	char key[32];
	uint32_t code;

	crig_init(r, 4, seed, sync);
	converge_ms(r, 30000);
	for (int k = 0; val != NULL && k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(put_wpw(r, 0, key, val, 3, 0, &code), PROTO_OK);
	}
}

/* A converged 4-node cluster with one setting changed on every node. */
static void start4_set(crig *r, uint64_t seed, const char *sync, const char *name,
		       const char *value)
{
	crig_prepare(r, 4, seed, sync);
	for (size_t i = 0; i < 4; i++)
		set(&r->cfg[i], name, value);
	for (size_t i = 0; i < 4; i++)
		open_node(r, i);
	converge_ms(r, 30000);
}

/* Keys 0-59 written with value val at W=2 through nodes 0-2. */
static void put60_w2(crig *r, const char *val)
{
	char key[32];
	uint32_t code;

	for (int k = 0; k < 60; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(put_wpw(r, (size_t)k % 3, key, val, 2, 0, &code), PROTO_OK,
			     "put %s: code %u (seed %llu)", key, code, (unsigned long long)r->seed);
	}
}

/* Node 3 crashes; wait until the three others see it down. */
/* Run until nodes 0-2 hold `want` hints together, at most limit_ms;
 * returns what they hold then. */
static uint64_t settle_pending(crig *r, uint64_t want, uint64_t limit_ms)
{
	uint64_t t0 = sim_now(r->sim), held;

	while ((held = pending(r, 0) + pending(r, 1) + pending(r, 2)) != want &&
	       sim_now(r->sim) - t0 < limit_ms)
		sim_run_for(r->sim, 50);
	return held;
}

static void crash3(crig *r)
{
	crig_crash(r, 3);
}

/* 4 nodes, N=3, node 3 down: every W=3 put succeeds through a fallback,
 * PW=3 is refused for the keys node 3 owns, R=3 reads succeed; after its
 * restart the hints reach it and it alone serves every key it owns. */
Test(handoff, sloppy_quorum_then_handoff_to_the_returning_owner)
{
	uint64_t seed = sim_seed_env("sloppy_handoff", (uint64_t)time(NULL));
	char key[32], val[32];
	uint32_t code;
	int owned = 0;
	crig r;

	start4(&r, seed, "always", NULL);
	crash3(&r);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		snprintf(val, sizeof(val), "v%d", k);
		cr_assert_eq(put_wpw(&r, (size_t)k % 3, key, val, 3, 0, &code), PROTO_OK,
			     "W=3 put of %s failed: code %u (seed %llu)", key, code,
			     (unsigned long long)seed);
		if (owns(&r, key, r.addr[3])) {
			owned++;
			cr_assert_eq(put_wpw(&r, 0, key, val, 0, 3, &code), PROTO_ERROR,
				     "PW=3 accepted for %s, owned by a down node", key);
			cr_assert_eq(code, PROTO_ERR_QUORUM);
		}
	}
	cr_assert_gt(owned, NKEYS / 2, "node 3 owns %d of %d keys", owned, NKEYS);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		snprintf(val, sizeof(val), "v%d", k);
		cr_assert_eq(get_is(&r, (size_t)k % 3, key, val, 3), 1, "R=3 read of %s (seed %llu)",
			     key, (unsigned long long)seed);
	}
	cr_assert_gt(pending(&r, 0) + pending(&r, 1) + pending(&r, 2), 0, "no hint held");

	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	drain(&r, 30000);
	/* node 3 alone: every key it owns is in its own store */
	for (size_t i = 0; i < 3; i++) {
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
	}
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		snprintf(val, sizeof(val), "v%d", k);
		if (owns(&r, key, r.addr[3]))
			cr_assert_eq(get_is(&r, 3, key, val, 1), 1, "%s did not reach its owner "
				     "(seed %llu)", key, (unsigned long long)seed);
	}
	crig_fini(&r);
}

/* Hints survive the fallback's crash (sync = always: an acknowledged hint
 * is synced) and are delivered after it; deletes made while the owner was
 * down reach it as tombstones. */
Test(handoff, hints_survive_a_fallback_crash_and_deletes_travel_as_tombstones)
{
	uint64_t seed = sim_seed_env("handoff_crash", (uint64_t)time(NULL));
	char key[32], val[32];
	uint32_t code;
	crig r;

	/* written everywhere first, so that the deletes below have something
	 * to delete on node 3 */
	start4(&r, seed, "always", "old");
	crash3(&r);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		snprintf(val, sizeof(val), "new%d", k);
		if (k % 2 == 0)
			cr_assert_eq(put_wpw(&r, 1, key, val, 3, 0, &code), PROTO_OK);
		else
			cr_assert_eq(del_w(&r, 1, key, 3), PROTO_OK, "delete %s", key);
	}
	/* every fallback crashes and comes back */
	for (size_t i = 0; i < 3; i++) {
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
		sim_restart(r.sim, r.addr[i]);
		open_node(&r, i);
	}
	converge_ms(&r, 30000);   /* node 3 is still down: the 3 others agree */
	cr_assert_gt(pending(&r, 0) + pending(&r, 1) + pending(&r, 2), 0,
		     "the hints did not survive the crash");
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	drain(&r, 30000);
	for (size_t i = 0; i < 3; i++) {
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
	}
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		snprintf(val, sizeof(val), "new%d", k);
		if (!owns(&r, key, r.addr[3]))
			continue;
		cr_assert_eq(get_is(&r, 3, key, k % 2 == 0 ? val : NULL, 1), 1,
			     "%s on its owner after handoff (seed %llu)", key,
			     (unsigned long long)seed);
	}
	crig_fini(&r);
}

/* Read repair sends to primaries only: a read through a fallback that
 * lacks a key does not give it a hint to hand off again (riak_kv#1845). */
Test(handoff, read_repair_never_fills_a_fallback)
{
	uint64_t seed = sim_seed_env("handoff_rr", (uint64_t)time(NULL));
	uint64_t before;
	char key[32];
	crig r;

	start4(&r, seed, "none", "v");
	crash3(&r);
	before = stored(&r, 0) + stored(&r, 1) + stored(&r, 2);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(get_is(&r, (size_t)k % 3, key, "v", 3), 1, "R=3 read of %s", key);
	}
	sim_run_for(r.sim, 3000);
	cr_assert_eq(pending(&r, 0) + pending(&r, 1) + pending(&r, 2), 0,
		     "read repair gave a fallback hints (seed %llu)", (unsigned long long)seed);
	cr_assert_eq(stored(&r, 0) + stored(&r, 1) + stored(&r, 2), before,
		     "read repair wrote to a fallback (seed %llu)", (unsigned long long)seed);
	crig_fini(&r);
}

/* Hints for a member that is removed go to the keys' new primaries: node
 * 3 dies (holding nothing), the fallbacks take its writes as hints, it is
 * removed; the hints move into the partitions of the keys' primaries (or
 * into hints for them), and every node alone then serves every key. */
Test(handoff, hints_for_a_removed_member_go_to_the_new_primaries)
{
	uint64_t seed = sim_seed_env("handoff_removed", (uint64_t)time(NULL));
	char key[32], val[32];
	uint32_t code;
	crig r;

	start4(&r, seed, "always", NULL);
	crash3(&r);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		snprintf(val, sizeof(val), "v%d", k);
		cr_assert_eq(put_wpw(&r, (size_t)k % 3, key, val, 3, 0, &code), PROTO_OK);
	}
	cr_assert_gt(pending(&r, 0) + pending(&r, 1) + pending(&r, 2), 0, "no hint held");
	cr_assert_eq(admin1(&r, 0, "remove", r.addr[3]), PROTO_INFO, "remove refused (seed %llu)",
		     (unsigned long long)seed);
	drain(&r, 30000);
	for (size_t alone = 0; alone < 3; alone++) {
		for (size_t i = 0; i < 3; i++)
			if (i != alone)
				sim_partition(r.sim, r.addr[alone], r.addr[i], true);
		for (int k = 0; k < NKEYS; k++) {
			key_of(key, sizeof(key), k);
			snprintf(val, sizeof(val), "v%d", k);
			cr_assert_eq(get_is(&r, alone, key, val, 1), 1, "%s missing at node %zu after "
				     "the removal (seed %llu)", key, alone, (unsigned long long)seed);
		}
		for (size_t i = 0; i < 3; i++)
			if (i != alone)
				sim_partition(r.sim, r.addr[alone], r.addr[i], false);
	}
	crig_fini(&r);
}

/* Hints are bounded: past hint_max_bytes a fallback refuses more (counted
 * in status hints_refused), and the write counts one acknowledgement
 * fewer; what it holds is still delivered. */
Test(handoff, hints_past_the_bound_are_refused_and_counted)
{
	uint64_t seed = sim_seed_env("handoff_bound", (uint64_t)time(NULL));
	char key[32], val[4096];
	uint32_t code;
	uint64_t refused = 0;
	int ok3 = 0, ok2 = 0;
	crig r;

	start4_set(&r, seed, "none", "hint_max_bytes", "1M");
	crash3(&r);
	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	/* ~5 MB of writes, about 3/4 of them hinted, spread over the three
	 * fallbacks: past 1 MB on each */
	for (int k = 0; k < 1200; k++) {
		key_of(key, sizeof(key), k);
		ok3 += put_wpw(&r, (size_t)k % 3, key, val, 3, 0, &code) == PROTO_OK;
		ok2 += put_wpw(&r, (size_t)k % 3, key, val, 2, 0, &code) == PROTO_OK;
	}
	for (size_t i = 0; i < 3; i++)
		refused += crig_admin_u64(&r, i, "status", "hints_refused");
	cr_assert_gt(refused, 0, "no hinted write refused past hint_max_bytes (seed %llu)",
		     (unsigned long long)seed);
	cr_assert_lt(ok3, 1200, "every W=3 write met W although hints were refused");
	cr_assert_eq(ok2, 1200, "W=2 writes failed (seed %llu)", (unsigned long long)seed);
	for (size_t i = 0; i < 3; i++)
		cr_assert_leq(crig_admin_u64(&r, i, "hints", "pending") * 4096, 2u << 20,
			      "node %zu holds far more than hint_max_bytes", i);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	drain(&r, 60000);
	crig_fini(&r);
}

/* A delivery keeps batches in flight and an owner under sync = interval
 * acknowledges them after its timed flush, at no fdatasync of its own:
 * ~4 MB of hints (some 16 batches over three fallbacks) reach the owner
 * in well under the second per batch that waiting for each answer would
 * take, with no more sync batches on the owner than its timer makes.
 * (Stop-and-wait, HANDOFF_WINDOW 1, takes ~6 s here; a forced sync per
 * batch makes ~20 batches.) */
Test(handoff, a_large_delivery_keeps_batches_in_flight_and_rides_the_owners_timed_sync)
{
	uint64_t seed = sim_seed_env("handoff_window", (uint64_t)time(NULL));
	static char val[8193];
	char key[32];
	uint64_t ms, syncs0, held, pending0[3];
	node_stats st;
	uint32_t code;
	int owned = 0;
	crig r;

	start4(&r, seed, "interval", NULL);
	crash3(&r);
	for (int k = 0; k < 640; k++) {
		memset(val, 'a' + k % 26, sizeof(val) - 1);
		snprintf(key, sizeof(key), "big-%04d", k);
		memcpy(val, key, strlen(key));
		cr_assert_eq(put_wpw(&r, (size_t)k % 3, key, val, 2, 0, &code), PROTO_OK,
			     "put %s: code %u (seed %llu)", key, code, (unsigned long long)seed);
		owned += owns(&r, key, r.addr[3]);
	}
	cr_assert_gt(owned, 400, "node 3 owns %d of 640 keys", owned);
	/* W=2 is met by the two primaries that are up; the last hinted
	 * writes may still be on their way to a fallback (seen under ASan) */
	held = settle_pending(&r, (uint64_t)owned, 5000);
	cr_assert_eq(held, (uint64_t)owned, "%" PRIu64 " hints held for the %d keys node 3 owns "
		     "(seed %llu)", held, owned, (unsigned long long)seed);
	for (size_t i = 0; i < 3; i++)
		pending0[i] = pending(&r, i);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	crig_wait_liveness(&r, 3, "up");
	node_stats_get(r.nd[3], &st);
	syncs0 = st.syncs;
	ms = drain(&r, 30000);
	node_stats_get(r.nd[3], &st);
	cr_assert_lt(ms, 4000, "%d hinted 8 KiB keys took %" PRIu64 " ms to drain (seed %llu)",
		     owned, ms, (unsigned long long)seed);
	cr_assert_leq(st.syncs - syncs0, ms / 1000 + 2, "%" PRIu64 " sync batches on the owner "
		      "in %" PRIu64 " ms under sync = interval 1000 ms (seed %llu)",
		      st.syncs - syncs0, ms, (unsigned long long)seed);
	/* nothing was written to the hint stores while they were delivered:
	 * each went whole, not a key at a time */
	for (size_t i = 0; i < 3; i++) {
		node_stats_get(r.nd[i], &st);
		cr_assert_eq(st.hints_removed, 0, "node %zu removed %" PRIu64 " delivered hints one "
			     "by one from a store nobody wrote to (seed %llu)", i, st.hints_removed,
			     (unsigned long long)seed);
		cr_assert_geq(st.hints_delivered, pending0[i], "node %zu", i);
	}
	for (size_t i = 0; i < 3; i++) {
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
	}
	for (int k = 0; k < 640; k++) {
		snprintf(key, sizeof(key), "big-%04d", k);
		if (!owns(&r, key, r.addr[3]))
			continue;
		memset(val, 'a' + k % 26, sizeof(val) - 1);
		memcpy(val, key, strlen(key));
		cr_assert_eq(get_is(&r, 3, key, val, 1), 1, "%s did not reach its owner intact "
			     "(seed %llu)", key, (unsigned long long)seed);
	}
	crig_fini(&r);
}

/* A hinted write that reaches a fallback while it delivers that owner's
 * store: the store is no longer what the pass read, so it is not dropped
 * whole at the pass's end -- what the pass delivered from then on leaves
 * key by key, the rest (the new hint with it) goes in another pass -- and
 * the new hint reaches the owner.  The fallbacks nobody wrote to drop
 * their stores whole.  (Dropping a store whole without looking for such a
 * write loses the new hint: the test fails.) */
Test(handoff, a_hint_that_arrives_during_its_delivery_is_not_dropped_with_the_store)
{
	uint64_t seed = sim_seed_env("handoff_late_hint", (uint64_t)time(NULL));
	static char val[8193];
	char key[32], fresh[32];
	uint64_t t0, before;
	msgpack_sbuffer enc, sb;
	object_vv none = { 0 };
	object *obj;
	node_stats st;
	uint32_t code;
	size_t f = 3, c;
	int k;
	crig r;

	/* a delivery of ~1.3 MB per fallback at 256 KiB/s: ~5 s per pass */
	start4_set(&r, seed, "interval", "handoff_rate", "256K");
	crash3(&r);
	for (k = 0; k < 640; k++) {
		memset(val, 'a' + k % 26, sizeof(val) - 1);
		snprintf(key, sizeof(key), "big-%04d", k);
		cr_assert_eq(put_wpw(&r, (size_t)k % 3, key, val, 2, 0, &code), PROTO_OK,
			     "put %s: code %u (seed %llu)", key, code, (unsigned long long)seed);
	}
	sim_run_for(r.sim, 2000);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	crig_wait_liveness(&r, 3, "up");
	/* a fallback whose pass has had a batch acknowledged and is not over */
	for (t0 = sim_now(r.sim); f == 3 && sim_now(r.sim) - t0 < 20000; sim_run_for(r.sim, 50))
		for (size_t i = 0; i < 3 && f == 3; i++) {
			node_stats_get(r.nd[i], &st);
			if (st.hints_delivered > 0 && st.hints_pending > 0)
				f = i;
		}
	cr_assert_neq(f, 3, "no delivery was caught in the middle of its pass (seed %llu)",
		      (unsigned long long)seed);
	/* a key node 3 owns, written to f as a coordinator's hinted write */
	for (k = 0;; k++) {
		snprintf(fresh, sizeof(fresh), "late-%d", k);
		if (owns(&r, fresh, r.addr[3]))
			break;
	}
	c = (f + 1) % 3;
	cr_assert_not_null(obj = object_new());
	cr_assert_eq(object_put(obj, 0x5eed, &none, "fresh", 5, 1000), 0);
	msgpack_sbuffer_init(&enc);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_encode(obj, &enc), 0);
	cr_assert_eq(peer_encode_rput(&sb, 0, r.addr[c], fresh, strlen(fresh), enc.data, enc.size,
				      false, r.addr[3]), 0);
	before = pending(&r, f);
	cr_assert_eq(node_request(r.nd[f], sim_peer_client(r.sim, r.addr[c], r.addr[f]),
				  sb.data + 4, sb.size - 4), 0);
	msgpack_sbuffer_destroy(&sb);
	msgpack_sbuffer_destroy(&enc);
	object_free(obj);
	cr_assert_eq(pending(&r, f), before + 1, "node %zu did not take the hint (seed %llu)", f,
		     (unsigned long long)seed);
	drain(&r, 60000);
	for (size_t i = 0; i < 3; i++) {
		node_stats_get(r.nd[i], &st);
		if (i == f)
			cr_assert_gt(st.hints_removed, 0, "node %zu dropped a store written during "
				     "its pass whole (seed %llu)", i, (unsigned long long)seed);
		else
			cr_assert_eq(st.hints_removed, 0, "node %zu removed hints one by one from a "
				     "store nobody wrote to (seed %llu)", i, (unsigned long long)seed);
	}
	for (size_t i = 0; i < 3; i++) {
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
	}
	cr_assert_eq(get_is(&r, 3, fresh, "fresh", 1), 1, "the hint written during the delivery "
		     "did not reach its owner (seed %llu)", (unsigned long long)seed);
	for (k = 0; k < 640; k++) {
		snprintf(key, sizeof(key), "big-%04d", k);
		if (!owns(&r, key, r.addr[3]))
			continue;
		memset(val, 'a' + k % 26, sizeof(val) - 1);
		cr_assert_eq(get_is(&r, 3, key, val, 1), 1, "%s did not reach its owner "
			     "(seed %llu)", key, (unsigned long long)seed);
	}
	crig_fini(&r);
}

/* hint_window counts from a hint store's creation, across restarts (the
 * fallback keeps its creation time beside it, hints/HEX.since): every
 * fallback restarted 3 s into a 5 s window still refuses hints after 6 s
 * (it took another full window before), and accepts them again once the
 * owner is back and the store delivered and gone. */
Test(handoff, the_hint_window_survives_a_fallback_restart)
{
	uint64_t seed = sim_seed_env("handoff_window_age", (uint64_t)time(NULL));
	char key[32];
	uint32_t code;
	uint64_t refused = 0, before = 0;
	crig r;

	start4_set(&r, seed, "always", "hint_window", "5s");
	crash3(&r);
	put60_w2(&r, "a");
	cr_assert_gt(pending(&r, 0) + pending(&r, 1) + pending(&r, 2), 0, "no hint held");
	sim_run_for(r.sim, 3000);
	for (size_t i = 0; i < 3; i++) {   /* one at a time: W=2 stays possible */
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
		sim_restart(r.sim, r.addr[i]);
		open_node(&r, i);
		converge_ms(&r, 30000);
	}
	sim_run_for(r.sim, 3000);          /* 6 s and more since the stores began */
	for (size_t i = 0; i < 3; i++)
		before += crig_admin_u64(&r, i, "status", "hints_refused");
	for (int k = 0; k < 60; k++) {
		key_of(key, sizeof(key), k);
		(void)put_wpw(&r, (size_t)k % 3, key, "b", 2, 0, &code);
	}
	for (size_t i = 0; i < 3; i++)
		refused += crig_admin_u64(&r, i, "status", "hints_refused");
	cr_assert_gt(refused - before, 20, "%" PRIu64 " hinted writes refused past a 5 s window "
		     "whose stores were created 6 s before (seed %llu)", refused - before,
		     (unsigned long long)seed);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	drain(&r, 60000);
	crig_fini(&r);
}

/* Overwrite every .since file in node i's hints directory with len bytes of fill
 * (len 0: empty); the number of files. */
static int spoil_since(crig *r, size_t i, char fill, size_t len)
{
	char path[256], file[600];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/hints", r->dir[i]);
	cr_assert_not_null(d = opendir(path));
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		FILE *f;

		if (nl < 7 || strcmp(de->d_name + nl - 6, ".since") != 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		cr_assert_not_null(f = fopen(file, "w"));
		for (size_t k = 0; k < len; k++)
			fputc(fill, f);
		cr_assert_eq(fclose(f), 0);
		n++;
	}
	closedir(d);
	return n;
}

/* A .since file that is garbage, empty (a crash before its write) or
 * oversized (a run of digits far past 64 bits) never stops a node from
 * starting, and the hints it describes are still delivered: garbage and
 * empty read as "unknown" (the window starts again), an overflowing
 * number as a time in the future (age 0). */
Test(handoff, a_garbage_empty_or_oversized_since_file_is_survived)
{
	uint64_t seed = sim_seed_env("handoff_since_garbage", (uint64_t)time(NULL));
	static const struct { char fill; size_t len; } spoil[3] = {
		{ 'z', 40 }, { 'x', 0 }, { '9', 100000 },
	};
	char key[32];
	uint32_t code;
	int ok = 0;
	crig r;

	start4_set(&r, seed, "always", "hint_window", "1h");
	crash3(&r);
	put60_w2(&r, "a");
	for (size_t i = 0; i < 3; i++) {
		sim_crash(r.sim, r.addr[i]);
		close_node(&r, i);
		cr_assert_eq(spoil_since(&r, i, spoil[i].fill, spoil[i].len), 1,
			     "node %zu holds no hint store's .since file", i);
		sim_restart(r.sim, r.addr[i]);
		open_node(&r, i);   /* fails the test if the node cannot start */
		converge_ms(&r, 30000);
	}
	for (int k = 0; k < 60; k++) {   /* the windows took hints again */
		key_of(key, sizeof(key), k);
		ok += put_wpw(&r, (size_t)k % 3, key, "b", 2, 0, &code) == PROTO_OK;
	}
	cr_assert_eq(ok, 60, "W=2 puts failed after the restarts (seed %llu)",
		     (unsigned long long)seed);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(crig_admin_u64(&r, i, "status", "hints_refused"), 0,
			     "node %zu refused hints after reading a spoiled .since", i);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	drain(&r, 60000);
	crig_fini(&r);
}
