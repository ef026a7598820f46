/*
 * test_reaper.c -- tombstone reaping (reaper.c) on the simulated cluster
 * rig: tombstones go once every primary holds them, no hint holds the key
 * and the grace has passed; not while a member is down or holds a hint;
 * a reaped key never comes back; and KV679's sequence (riak_kv#679): a
 * version from before the reap that turns up late does not shadow a write
 * made after it.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitcask/bitcask.h"
#include "crig.h"
#include "error.h"
#include "object.h"
#include "peer.h"

#define NKEYS 40

static void key_of(char *buf, size_t len, int k)
{
	snprintf(buf, len, "reap-%03d", k);
}

/* A replace-mode write (a put, or a delete when val is NULL) with W=w. */
static uint32_t wr(crig *r, size_t i, const char *key, const char *val, int32_t w)
{
	proto_opts o = opts_rw(0, w);

	o.replace = true;
	return crig_write(r, i, key, val, &o, NULL);
}

static uint64_t stored(crig *r, size_t i)
{
	return crig_admin_u64(r, i, "status", "keys");
}

/* Run until every live node stores exactly want keys. */
static uint64_t wait_stored(crig *r, uint64_t want, uint64_t limit_ms)
{
	uint64_t t0 = sim_now(r->sim);

	for (;;) {
		bool all = true;

		for (size_t i = 0; i < r->n; i++)
			if (r->nd[i] != NULL && stored(r, i) != want)
				all = false;
		if (all)
			return sim_now(r->sim) - t0;
		if (sim_now(r->sim) - t0 + 200 >= limit_ms)
			for (size_t i = 0; i < r->n; i++) {
				msgpack_zone z;
				msgpack_object o;

				if (r->nd[i] == NULL)
					continue;
				msgpack_zone_init(&z, 4096);
				cr_assert(admin(r, i, "hints", &z, &o, NULL));
				cr_log_warn("node %zu: %" PRIu64 " keys, %" PRIu64 " hints", i, stored(r, i),
					    field(&o, "pending")->via.u64);
				msgpack_zone_destroy(&z);
			}
		cr_assert_lt(sim_now(r->sim) - t0, limit_ms, "not every node holds %" PRIu64
			     " keys after %" PRIu64 " ms (seed %llu): node 0 holds %" PRIu64, want,
			     limit_ms, (unsigned long long)r->seed, stored(r, 0));
		sim_run_for(r->sim, 200);
	}
}

static void quiet(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == 0)
		cr_log_error("%s", msg);
}

/* Merge every partition store under a closed node's data directory DIR
 * (bitcask_merge rewrites every immutable file: after a reopen, all of
 * them). */
static void merge_all(const char *dir)
{
	char path[512], err[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/partitions", dir);
	cr_assert_not_null(d = opendir(path), "%s", path);
	while ((de = readdir(d)) != NULL) {
		bitcask_config cfg;
		bitcask *bc;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/partitions/%s", dir, de->d_name);
		bitcask_config_init(&cfg);
		cfg.log = quiet;
		cr_assert_eq(bitcask_open(&bc, path, &cfg, err, sizeof(err)), 0, "%s: %s", path, err);
		cr_assert_eq(bitcask_merge(bc), 0, "%s", path);
		cr_assert_eq(bitcask_close(bc), 0, "%s", path);
	}
	closedir(d);
}

/* How many times the bytes of a key occur in the files under a directory
 * (nftw has no context argument: these are its). */
static const char *scan_key;
static size_t scan_hits;

static int scan_file(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	FILE *f;
	char *buf;
	size_t n, kl = strlen(scan_key);

	(void)ftw;
	if (type != FTW_F || st->st_size == 0)
		return 0;
	cr_assert_not_null(buf = malloc((size_t)st->st_size));
	cr_assert_not_null(f = fopen(path, "rb"), "%s", path);
	n = fread(buf, 1, (size_t)st->st_size, f);
	fclose(f);
	for (size_t i = 0; i + kl <= n; i++)
		scan_hits += memcmp(buf + i, scan_key, kl) == 0;
	free(buf);
	return 0;
}

static size_t occurrences(const char *dir, const char *key)
{
	scan_key = key;
	scan_hits = 0;
	cr_assert_eq(nftw(dir, scan_file, 16, FTW_PHYS), 0, "%s", dir);
	return scan_hits;
}

/* n nodes whose tombstones may be reaped grace after the delete. */
static void start_grace(crig *r, size_t n, uint64_t seed, const char *grace)
{
	crig_prepare(r, n, seed, "always");
	for (size_t i = 0; i < n; i++) {
		set(&r->cfg[i], "ring_size", "64");
		set(&r->cfg[i], "tombstone_grace", grace);
		set(&r->cfg[i], "aae_interval", "100ms");
	}
	for (size_t i = 0; i < n; i++)
		open_node(r, i);
	converge_ms(r, 30000);
}

static void start(crig *r, size_t n, uint64_t seed)
{
	start_grace(r, n, seed, "2");
}

/* The even keys of NKEYS (deleted, or expired) are reaped from every node,
 * and stay gone -- anti-entropy and restarts do not bring them back --
 * while the odd ones still read "v". */
static void reaped_and_gone(crig *r, uint64_t seed)
{
	char key[32];

	wait_stored(r, NKEYS / 2, 60000);
	sim_run_for(r->sim, 10000);
	for (size_t i = 0; i < 3; i++) {
		close_node(r, i);
		open_node(r, i);
	}
	converge_ms(r, 30000);
	sim_run_for(r->sim, 10000);
	wait_stored(r, NKEYS / 2, 1000);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(get_is(r, (size_t)k % 3, key, k % 2 ? "v" : NULL, 3), 1, "%s (seed %llu)",
			     key, (unsigned long long)seed);
	}
}

Test(reaper, tombstones_are_reaped_everywhere_and_stay_deleted)
{
	uint64_t seed = sim_seed_env("reap", (uint64_t)time(NULL));
	char key[32];
	crig r;

	start(&r, 3, seed);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(wr(&r, (size_t)k % 3, key, "v", 3), PROTO_OK);
	}
	for (int k = 0; k < NKEYS; k += 2) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(wr(&r, (size_t)k % 3, key, NULL, 3), PROTO_OK);
	}
	cr_assert_eq(stored(&r, 0), NKEYS, "tombstones are kept during the grace");
	reaped_and_gone(&r, seed);
	/* and gone from the disk once the stores are merged: no value, no
	 * tombstone of a reaped key is left (its space is reclaimed), while
	 * every live key is found (the scan sees keys) */
	for (size_t i = 0; i < 3; i++) {
		close_node(&r, i);
		merge_all(r.dir[i]);
		for (int k = 0; k < NKEYS; k++) {
			size_t hits;

			key_of(key, sizeof(key), k);
			hits = occurrences(r.dir[i], key);
			if (k % 2)
				cr_assert_gt(hits, 0, "live %s not found in node %zu's files", key, i);
			else
				cr_assert_eq(hits, 0, "reaped %s is still in node %zu's files %zu times "
					     "after a merge (seed %llu)", key, i, hits,
					     (unsigned long long)seed);
		}
	}
	crig_fini(&r);
}

/* A member that is down may hold a hint of a deleted key: node 2 misses
 * the writes (node 3 keeps some as hints for it), node 3 goes down with
 * them, node 2 comes back, the keys are deleted.  Nothing may be reaped
 * while node 3 is away -- reaped, its late hints would bring the values
 * back on node 2.  Once it is back and has handed them off, every
 * tombstone goes and no key comes back. */
Test(reaper, nothing_is_reaped_while_a_member_that_may_hold_a_hint_is_down)
{
	uint64_t seed = sim_seed_env("reap_down", (uint64_t)time(NULL));
	uint64_t before[3];
	char key[32];
	crig r;

	start(&r, 4, seed);
	crig_crash(&r, 2);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(wr(&r, 0, key, "v", 3), PROTO_OK);
	}
	crig_crash(&r, 3);
	sim_restart(r.sim, r.addr[2]);
	open_node(&r, 2);
	crig_wait_liveness(&r, 2, "up");
	sim_run_for(r.sim, 10000);   /* node 2's hints come home from 0 and 1 */
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(wr(&r, 0, key, NULL, 3), PROTO_OK);
	}
	sim_run_for(r.sim, 2000);
	for (size_t i = 0; i < 3; i++)
		before[i] = stored(&r, i);
	sim_run_for(r.sim, 20000);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(stored(&r, i), before[i], "node %zu reaped while node 3 was down "
			     "(seed %llu)", i, (unsigned long long)seed);
	sim_restart(r.sim, r.addr[3]);
	open_node(&r, 3);
	wait_stored(&r, 0, 120000);
	sim_run_for(r.sim, 10000);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(get_is(&r, (size_t)k % 4, key, NULL, 3), 1, "%s came back (seed %llu)",
			     key, (unsigned long long)seed);
	}
	crig_fini(&r);
}

/* KV679: put, delete, reap; a new write; then the old tombstone arrives
 * late (as a forgotten hint or an old disk would deliver it).  The new
 * write must survive: its dot comes from the node's persisted sequence,
 * above every dot the reaped history had. */
Test(reaper, kv679_a_late_old_version_does_not_shadow_a_write_after_the_reap)
{
	uint64_t seed = sim_seed_env("kv679", (uint64_t)time(NULL));
	object_limits lim;
	object_vv vv = { 0 };
	msgpack_sbuffer enc, sb;
	object *old = object_new();
	proto_opts o = opts_rw(3, 0);
	proto_msg m;
	node_stats st;
	crig r;

	object_limits_init(&lim);
	start(&r, 3, seed);
	node_stats_get(r.nd[0], &st);
	cr_assert_eq(wr(&r, 0, "k", "v1", 3), PROTO_OK);
	cr_assert_eq(wr(&r, 0, "k", NULL, 3), PROTO_OK);
	/* the tombstone's vector, as a get returns it */
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, r.next_id++, "k", 1, &o), 0);
	cr_assert(call(&r, 0, &sb, &m, 10000));
	cr_assert_eq(m.tombstones, 1);
	cr_assert_eq(object_context_decode(m.context.p, m.context.len, &lim, &vv), 0);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_gt(object_vv_get(&vv, st.dot_actor), 0, "node 0 coordinated the delete");
	/* the tombstone as stored: its dot is the vector's entry */
	cr_assert_not_null(old);
	cr_assert_eq(object_write_at(old, st.dot_actor, object_vv_get(&vv, st.dot_actor), NULL, true, NULL, 0,
				     1, NULL), 0);
	wait_stored(&r, 0, 60000);

	cr_assert_eq(wr(&r, 0, "k", "new", 3), PROTO_OK);
	/* the old tombstone arrives at every node, as a replica write */
	msgpack_sbuffer_init(&enc);
	cr_assert_eq(object_encode(old, &enc), 0);
	for (size_t to = 0; to < 3; to++) {
		size_t from = (to + 1) % 3;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(peer_encode_rput(&sb, 0, r.addr[from], "k", 1, enc.data, enc.size, false,
					      NULL), 0);
		cr_assert_eq(node_request(r.nd[to], sim_peer_client(r.sim, r.addr[from], r.addr[to]),
					  sb.data + 4, sb.size - 4), 0);
		msgpack_sbuffer_destroy(&sb);
	}
	sim_run_for(r.sim, 5000);
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(get_is(&r, i, "k", "new", 3), 1,
			     "the write after the reap was shadowed at node %zu (seed %llu)", i,
			     (unsigned long long)seed);
	msgpack_sbuffer_destroy(&enc);
	object_vv_release(&vv);
	object_free(old);
	crig_fini(&r);
}

/* A write with a time to live (opts ttl_ms): a put of val with W=w. */
static uint32_t wr_ttl(crig *r, size_t i, const char *key, const char *val, int32_t w,
		       uint64_t ttl_ms)
{
	proto_opts o = opts_rw(0, w);

	o.replace = true;
	o.ttl_ms = ttl_ms;
	return crig_write(r, i, key, val, &o, NULL);
}

/* Values written with a time to live read as found until it passes, then
 * as not found through every node; they stay stored (as tombstones do)
 * until the reaper removes them, the grace after their expiry, and do not
 * come back after restarts and anti-entropy.  The keys written without
 * one stay. */
Test(reaper, values_that_expire_read_as_gone_then_are_reaped)
{
	uint64_t seed = sim_seed_env("reap_ttl", (uint64_t)time(NULL));
	char key[32];
	crig r;

	start(&r, 3, seed);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(wr_ttl(&r, (size_t)k % 3, key, "v", 3, k % 2 ? 0 : 3000), PROTO_OK);
	}
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		cr_assert_eq(get_is(&r, (size_t)(k + 1) % 3, key, "v", 2), 1, "%s before its expiry",
			     key);
	}
	sim_run_for(r.sim, 3100);
	for (int k = 0; k < NKEYS; k++) {
		key_of(key, sizeof(key), k);
		for (size_t i = 0; i < 3; i++)
			cr_assert_eq(get_is(&r, i, key, k % 2 ? "v" : NULL, 1), 1,
				     "%s through node %zu after the expiry (seed %llu)", key, i,
				     (unsigned long long)seed);
	}
	cr_assert_eq(stored(&r, 0), NKEYS, "expired values are kept during the grace");
	reaped_and_gone(&r, seed);
	crig_fini(&r);
}

/* An expired version still dominates the version it replaced: node 2
 * misses the write with a time to live and keeps the old value; after
 * the expiry it comes back, and neither a read through it nor
 * anti-entropy brings the old value back -- the key reads as not found
 * everywhere, and node 2 ends up holding the (expired) new version. */
Test(reaper, an_expired_version_keeps_the_one_it_replaced_dominated)
{
	uint64_t seed = sim_seed_env("reap_ttl_old", (uint64_t)time(NULL));
	crig r;

	start_grace(&r, 3, seed, "3600");   /* no reap in this test */
	cr_assert_eq(wr(&r, 0, "k", "old", 3), PROTO_OK);
	close_node(&r, 2);
	cr_assert_eq(wr_ttl(&r, 0, "k", "new", 2, 1000), PROTO_OK);
	cr_assert_eq(crig_holding(&r, 2, "k", "new"), 2);
	sim_run_for(r.sim, 1500);
	open_node(&r, 2);
	converge_ms(&r, 30000);
	cr_assert_eq(get_is(&r, 2, "k", NULL, 3), 1, "a read of all three (seed %llu)",
		     (unsigned long long)seed);
	sim_run_for(r.sim, 15000);   /* anti-entropy, read repair */
	for (size_t i = 0; i < 3; i++)
		cr_assert_eq(get_is(&r, i, "k", NULL, 1), 1, "through node %zu, R=1 (seed %llu)",
			     i, (unsigned long long)seed);
	cr_assert_eq(crig_holding(&r, 3, "k", "old"), 0, "the old value is back somewhere");
	cr_assert_eq(crig_holding(&r, 3, "k", "new"), 3, "node 2 lacks the expired version");
	crig_fini(&r);
}
