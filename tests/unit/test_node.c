/*
 * test_node.c -- one node (N = 1) driven through the simulated world.
 *
 * Requests are encoded with proto.c as a client would, handed to
 * node_request(), and the replies the node sends through the world are
 * decoded and checked.  Virtual time only moves when a test steps the
 * simulation, so sync batches and deadlines are exercised exactly.  The
 * randomized test prints its seed; DKV_SEED=N replays one.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dkv_config.h"
#include "error.h"
#include "node.h"
#include "object.h"
#include "proto.h"
#include "powerio.h"
#include "simworld.h"

#define MAXR 64

/* A reply the node sent: the frame, copied. */
typedef struct got {
	uint64_t client;
	uint8_t *frame;
	size_t len;
} got;

typedef struct rig {
	char dir[64];
	simworld *sim;
	node *nd;
	dkv_config cfg;
	got replies[MAXR];
	size_t nreplies;
	uint64_t next_id;
	const bcio *io;       /* the stores' system calls (NULL: the real ones) */
} rig;

static void on_reply(void *ctx, uint64_t client, const void *frame, size_t len)
{
	rig *r = ctx;

	cr_assert_lt(r->nreplies, MAXR, "too many replies queued");
	r->replies[r->nreplies].client = client;
	r->replies[r->nreplies].frame = malloc(len);
	cr_assert_not_null(r->replies[r->nreplies].frame);
	memcpy(r->replies[r->nreplies].frame, frame, len);
	r->replies[r->nreplies].len = len;
	r->nreplies++;
}

static void rm_rf(const char *path)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	cr_assert_eq(system(cmd), 0);
}

/* Open the rig's node with settings "key=value" (NULL-terminated), and
 * start it if start (a node that fails to start is closed). */
static int rig_open_node_as(rig *r, const char *const *settings, bool start, char *err,
			    size_t errlen)
{
	int rc;

	char e[512];

	dkv_config_free(&r->cfg);
	cr_assert_eq(dkv_config_init(&r->cfg), 0);
	cr_assert_eq(dkv_config_set(&r->cfg, "data_dir", r->dir, e, sizeof(e)), 0, "%s", e);
	cr_assert_eq(dkv_config_set(&r->cfg, "log_level", "error", e, sizeof(e)), 0, "%s", e);
	/* few partitions: a node opens every one it holds at start (a test
	 * may still ask for another size) */
	cr_assert_eq(dkv_config_set(&r->cfg, "ring_size", "64", e, sizeof(e)), 0, "%s", e);
	for (size_t i = 0; settings != NULL && settings[i] != NULL; i++) {
		char k[64];
		const char *eq = strchr(settings[i], '=');

		cr_assert_not_null(eq);
		snprintf(k, sizeof(k), "%.*s", (int)(eq - settings[i]), settings[i]);
		cr_assert_eq(dkv_config_set(&r->cfg, k, eq + 1, e, sizeof(e)), 0, "%s", e);
	}
	rc = node_open_with(&r->nd, &r->cfg, sim_world(r->sim), NULL,
			    &(node_open_opts){ .io = r->io }, err, errlen);
	if (rc != 0 || !start)
		return rc;
	rc = node_start(r->nd, err, errlen);
	if (rc != 0) {
		cr_assert_eq(node_close(r->nd), 0);
		r->nd = NULL;
	}
	return rc;
}

static int rig_open_node(rig *r, const char *const *settings, char *err, size_t errlen)
{
	return rig_open_node_as(r, settings, true, err, errlen);
}

static void rig_init(rig *r, uint64_t seed, const char *const *settings)
{
	char err[512];
	int rc;

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "/dev/shm/dkv-node-XXXXXX");
	cr_assert_not_null(mkdtemp(r->dir));
	r->sim = sim_new(seed);
	cr_assert_not_null(r->sim);
	sim_on_reply(r->sim, on_reply, r);
	r->next_id = 1;
	cr_assert_eq(dkv_config_init(&r->cfg), 0);
	rc = rig_open_node(r, settings, err, sizeof(err));
	cr_assert_eq(rc, 0, "node_open: %s", err);
}

static void clear_replies(rig *r)
{
	for (size_t i = 0; i < r->nreplies; i++)
		free(r->replies[i].frame);
	r->nreplies = 0;
}

static void rig_close_node(rig *r)
{
	int rc;

	/* let batches finish, then close; background scans (anti-entropy,
	 * the reaper) are not in node_inflight: the close waits for them */
	while (node_inflight(r->nd) > 0 && sim_step(r->sim))
		;
	while ((rc = node_close(r->nd)) == DKV_EBUSY && sim_step(r->sim))
		;
	cr_assert_eq(rc, 0, "node_close: %s", dkv_strerror(rc));
	r->nd = NULL;
}

static void rig_fini(rig *r)
{
	if (r->nd != NULL)
		rig_close_node(r);
	clear_replies(r);
	sim_free(r->sim);
	dkv_config_free(&r->cfg);
	rm_rf(r->dir);
}

/* Hand a frame (with its length prefix) to the node as client 1. */
static int submit(rig *r, msgpack_sbuffer *sb)
{
	int rc;

	cr_assert_geq(sb->size, PROTO_HEADER_SIZE);
	cr_assert_eq(proto_frame_length((const uint8_t *)sb->data), sb->size - PROTO_HEADER_SIZE);
	rc = node_request(r->nd, 1, sb->data + PROTO_HEADER_SIZE, sb->size - PROTO_HEADER_SIZE);
	msgpack_sbuffer_destroy(sb);
	return rc;
}

/* Run the simulation until the reply to `id` arrives (bounded), decode it
 * into *m (which borrows from the stored frame until clear_replies). */
static void await(rig *r, uint64_t id, proto_msg *m)
{
	proto_limits lim = { .max_key = 65535, .max_value = 64u << 20 };
	char err[256];

	for (int steps = 0; steps < 100000; steps++) {
		for (size_t i = 0; i < r->nreplies; i++) {
			got *g = &r->replies[i];
			int rc = proto_decode(g->frame + PROTO_HEADER_SIZE, g->len - PROTO_HEADER_SIZE,
					      &lim, m, err, sizeof(err));

			cr_assert_eq(rc, 0, "the node sent an undecodable reply: %s", err);
			cr_assert_eq(g->client, 1);
			if (m->id == id)
				return;
			proto_msg_release(m);
		}
		if (!sim_step(r->sim))
			break;
	}
	cr_assert_fail("no reply to request %" PRIu64, id);
}

static uint64_t put_async(rig *r, const void *k, size_t kl, const void *v, size_t vl,
			  const void *ctx, size_t cl, const proto_opts *o)
{
	msgpack_sbuffer sb;
	uint64_t id = r->next_id++;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, id, k, kl, v, vl, ctx, cl, o), 0);
	cr_assert_eq(submit(r, &sb), 0);
	return id;
}

/* A put that must succeed. */
static void put_ok(rig *r, const char *k, const char *v, const void *ctx, size_t cl)
{
	proto_msg m;
	uint64_t id = put_async(r, k, strlen(k), v, strlen(v), ctx, cl, NULL);

	await(r, id, &m);
	cr_assert_eq(m.type, PROTO_OK, "put %s: reply type %u: %.*s", k, m.type,
		     (int)m.message.len, (const char *)m.message.p);
	proto_msg_release(&m);
	clear_replies(r);
}

/* A get; the reply is decoded into *m (valid until clear_replies). */
static void get(rig *r, const void *k, size_t kl, const proto_opts *o, proto_msg *m)
{
	msgpack_sbuffer sb;
	uint64_t id = r->next_id++;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, id, k, kl, o), 0);
	cr_assert_eq(submit(r, &sb), 0);
	await(r, id, m);
}

static void del_ok(rig *r, const char *k, const void *ctx, size_t cl)
{
	msgpack_sbuffer sb;
	proto_msg m;
	uint64_t id = r->next_id++;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_delete(&sb, id, k, strlen(k), ctx, cl, NULL), 0);
	cr_assert_eq(submit(r, &sb), 0);
	await(r, id, &m);
	cr_assert_eq(m.type, PROTO_OK);
	proto_msg_release(&m);
	clear_replies(r);
}

/* True iff the VALUE m holds exactly the values in want (any order). */
static bool has_values(const proto_msg *m, const char *const *want, size_t n)
{
	if (m->type != PROTO_VALUE || m->nvalues != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool found = false;

		for (size_t j = 0; j < m->nvalues; j++)
			if (m->values[j].len == strlen(want[i]) &&
			    memcmp(m->values[j].p, want[i], m->values[j].len) == 0)
				found = true;
		if (!found)
			return false;
	}
	return true;
}

static const char *const n1[] = { "n_val=1", NULL };

Test(node, put_get_round_trip_binary)
{
	rig r;
	const uint8_t key[] = { 0, 1, 2, 0xff, 0 };
	const uint8_t val[] = { 0xde, 0xad, 0, 0xbe, 0xef };
	proto_msg m;
	uint64_t id;

	rig_init(&r, 1, n1);
	get(&r, key, sizeof(key), NULL, &m);
	cr_expect_eq(m.type, PROTO_VALUE);
	cr_expect_not(m.found);
	cr_expect_eq(m.nvalues, 0);
	proto_msg_release(&m);
	clear_replies(&r);

	id = put_async(&r, key, sizeof(key), val, sizeof(val), NULL, 0, NULL);
	await(&r, id, &m);
	cr_assert_eq(m.type, PROTO_OK);
	proto_msg_release(&m);
	clear_replies(&r);

	get(&r, key, sizeof(key), NULL, &m);
	cr_assert(m.found);
	cr_assert_eq(m.nvalues, 1);
	cr_assert_eq(m.values[0].len, sizeof(val));
	cr_assert_arr_eq(m.values[0].p, val, sizeof(val));
	cr_expect_gt(m.context.len, 0, "a found value comes with a context");
	proto_msg_release(&m);
	clear_replies(&r);

	/* an empty value is a value */
	id = put_async(&r, "e", 1, "", 0, NULL, 0, NULL);
	await(&r, id, &m);
	cr_assert_eq(m.type, PROTO_OK);
	proto_msg_release(&m);
	clear_replies(&r);
	get(&r, "e", 1, NULL, &m);
	cr_assert(m.found);
	cr_assert_eq(m.nvalues, 1);
	cr_assert_eq(m.values[0].len, 0);
	proto_msg_release(&m);
	rig_fini(&r);
}

Test(node, blind_writes_are_siblings_and_a_context_resolves_them)
{
	rig r;
	proto_msg m;
	uint8_t ctx[512];
	size_t cl;

	rig_init(&r, 2, n1);
	put_ok(&r, "k", "one", NULL, 0);
	put_ok(&r, "k", "two", NULL, 0);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "one", "two" }, 2),
		  "two blind writes must both be kept");
	cr_assert_lt(m.context.len, sizeof(ctx));
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);

	/* a third blind write joins them; a write with the read's context
	 * replaces what the read saw but not the third */
	put_ok(&r, "k", "three", NULL, 0);
	put_ok(&r, "k", "merged", ctx, cl);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "merged", "three" }, 2));
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);

	put_ok(&r, "k", "final", ctx, cl);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "final" }, 1));
	proto_msg_release(&m);
	rig_fini(&r);
}

Test(node, delete_is_not_found_with_a_context)
{
	rig r;
	proto_msg m;
	uint8_t ctx[512];
	size_t cl;

	rig_init(&r, 3, n1);
	put_ok(&r, "k", "v", NULL, 0);
	get(&r, "k", 1, NULL, &m);
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);
	del_ok(&r, "k", ctx, cl);

	get(&r, "k", 1, NULL, &m);
	cr_assert_eq(m.type, PROTO_VALUE);
	cr_assert_not(m.found);
	cr_assert_eq(m.nvalues, 0);
	cr_assert_eq(m.tombstones, 1);
	cr_assert_gt(m.context.len, 0, "a deleted key still returns its context");
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);

	/* a blind delete of a value leaves value + tombstone siblings */
	put_ok(&r, "j", "v", NULL, 0);
	del_ok(&r, "j", NULL, 0);
	get(&r, "j", 1, NULL, &m);
	cr_assert(m.found);
	cr_assert(has_values(&m, (const char *const[]){ "v" }, 1));
	cr_assert_eq(m.tombstones, 1);
	proto_msg_release(&m);
	clear_replies(&r);

	/* writing with the deleted key's context supersedes the tombstone */
	put_ok(&r, "k", "again", ctx, cl);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "again" }, 1));
	cr_assert_eq(m.tombstones, 0);
	proto_msg_release(&m);
	rig_fini(&r);
}

/* The error reply to request id, with its message. */
static void expect_error(rig *r, uint64_t id, uint32_t code, const char *text)
{
	proto_msg m;
	char msg[PROTO_MAX_MESSAGE + 1];

	await(r, id, &m);
	cr_assert_eq(m.type, PROTO_ERROR, "expected an error, got type %u", m.type);
	snprintf(msg, sizeof(msg), "%.*s", (int)m.message.len, (const char *)m.message.p);
	cr_expect_eq(m.code, code, "code %u, want %u (%s)", m.code, code, msg);
	cr_expect_not_null(strstr(msg, text), "message \"%s\" lacks \"%s\"", msg, text);
	proto_msg_release(&m);
	clear_replies(r);
}

Test(node, quorums_beyond_the_replicas_fail_with_how_many_answered)
{
	rig r;
	proto_opts o = { .w = 2 };
	proto_msg m;
	uint64_t id;

	/* n_val 3 on a lone node: one replica exists */
	rig_init(&r, 4, (const char *const[]){ "n_val=3", "r=one", "w=one", NULL });
	id = put_async(&r, "k", 1, "v", 1, NULL, 0, &o);
	expect_error(&r, id, PROTO_ERR_QUORUM, "quorum not met: 1 of w=2 replicas answered");
	/* the write was applied where it could be (no rollback in Dynamo) */
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "v" }, 1));
	proto_msg_release(&m);
	clear_replies(&r);

	o = (proto_opts){ .r = DKV_QUORUM_ALL };
	{
		msgpack_sbuffer sb;

		msgpack_sbuffer_init(&sb);
		id = r.next_id++;
		cr_assert_eq(proto_encode_get(&sb, id, "k", 1, &o), 0);
		cr_assert_eq(submit(&r, &sb), 0);
	}
	expect_error(&r, id, PROTO_ERR_QUORUM, "quorum not met: 1 of r=3 replicas answered");

	o = (proto_opts){ .w = 4 };
	id = put_async(&r, "k", 1, "v", 1, NULL, 0, &o);
	expect_error(&r, id, PROTO_ERR_INVALID, "w=4 exceeds n_val=3");

	o = (proto_opts){ .w = 1, .pw = 2 };
	id = put_async(&r, "k", 1, "v", 1, NULL, 0, &o);
	expect_error(&r, id, PROTO_ERR_QUORUM, "1 of pw=2 primary replicas answered");
	rig_fini(&r);
}

Test(node, limits_and_garbage)
{
	rig r;
	char big[2000];
	proto_msg m;
	uint64_t id;
	uint8_t junk[] = { 0x94, 0x01, 0x01, 0x05, 0xc1 };
	uint8_t v2[] = { 0x94, 0x02, 0x04, 0x09, 0xc0 };

	rig_init(&r, 5, (const char *const[]){ "n_val=1", "max_value_size=1000",
					       "max_key_size=10", NULL });
	memset(big, 'x', sizeof(big));
	id = put_async(&r, "k", 1, big, 1001, NULL, 0, NULL);
	expect_error(&r, id, PROTO_ERR_TOOBIG, "value too large: 1001 > max_value_size 1000");
	id = put_async(&r, "k", 1, big, 1000, NULL, 0, NULL);
	await(&r, id, &m);
	cr_assert_eq(m.type, PROTO_OK, "exactly max_value_size is accepted");
	proto_msg_release(&m);
	clear_replies(&r);
	id = put_async(&r, big, 11, "v", 1, NULL, 0, NULL);
	expect_error(&r, id, PROTO_ERR_TOOBIG, "key too large: 11 > max_key_size 10");
	id = put_async(&r, "k", 1, "v", 1, "\x93\x01", 2, NULL);
	expect_error(&r, id, PROTO_ERR_CONTEXT, "malformed context");

	/* undecodable: an error and "close the connection" */
	cr_assert_eq(node_request(r.nd, 1, junk, sizeof(junk)), DKV_EPROTO);
	await(&r, 5, &m);
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.code, PROTO_ERR_PROTOCOL);
	proto_msg_release(&m);
	clear_replies(&r);
	cr_assert_eq(node_request(r.nd, 1, v2, sizeof(v2)), DKV_EPROTO);
	expect_error(&r, 9, PROTO_ERR_VERSION, "unsupported protocol version 2");
	{
		uint8_t t99[] = { 0x94, 0x01, 0x63, 0x0b, 0xc0 };

		cr_assert_eq(node_request(r.nd, 1, t99, sizeof(t99)), 0,
			     "an unknown type in a whole frame keeps the connection");
		expect_error(&r, 11, PROTO_ERR_TYPE, "unknown message type 99");
	}
	/* the node keeps serving */
	get(&r, "k", 1, NULL, &m);
	cr_assert(m.found);
	cr_assert_eq(m.values[0].len, 1000);
	proto_msg_release(&m);
	rig_fini(&r);
}

Test(node, sync_always_acknowledges_after_the_batch)
{
	rig r;
	proto_msg m;
	uint64_t ids[10];
	node_stats st;

	rig_init(&r, 6, (const char *const[]){ "n_val=1", "sync=always", NULL });
	sim_set_sync_delay(r.sim, 10, 10);
	for (int i = 0; i < 10; i++) {
		char k[8];

		snprintf(k, sizeof(k), "k%d", i);
		ids[i] = put_async(&r, k, strlen(k), "v", 1, NULL, 0, NULL);
	}
	cr_assert_eq(r.nreplies, 0, "no ack before a sync covers the write");
	cr_assert_eq(node_inflight(r.nd), 11, "10 writes + the running batch");
	sim_run_for(r.sim, 9);
	cr_assert_eq(r.nreplies, 0);
	sim_run_for(r.sim, 1);
	/* the first batch held the first write; the second holds the rest */
	cr_assert_eq(r.nreplies, 1);
	sim_run_for(r.sim, 10);
	cr_assert_eq(r.nreplies, 10);
	for (int i = 0; i < 10; i++) {
		await(&r, ids[i], &m);
		cr_assert_eq(m.type, PROTO_OK);
		proto_msg_release(&m);
	}
	clear_replies(&r);
	node_stats_get(r.nd, &st);
	cr_assert_eq(st.syncs, 2, "ten writes, two batches");
	cr_assert_eq(st.puts, 10);

	/* a failed sync fails the writes it covered */
	sim_fail_syncs(r.sim, -EIO);
	ids[0] = put_async(&r, "x", 1, "v", 1, NULL, 0, NULL);
	expect_error(&r, ids[0], PROTO_ERR_STORAGE, "write failed");
	sim_fail_syncs(r.sim, 0);

	/* a batch slower than the deadline: TIMEOUT, and exactly one reply */
	sim_set_sync_delay(r.sim, 500, 500);
	{
		proto_opts o = { .timeout_ms = 100 };

		ids[0] = put_async(&r, "y", 1, "v", 1, NULL, 0, &o);
	}
	expect_error(&r, ids[0], PROTO_ERR_TIMEOUT, "request timed out after 100 ms");
	sim_run_for(r.sim, 1000);
	cr_assert_eq(r.nreplies, 0, "no second reply when the batch ends");
	cr_assert_eq(node_inflight(r.nd), 0);
	rig_fini(&r);
}

static bool in_dir(const rig *r, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/%s", r->dir, name);
	return access(path, F_OK) == 0;
}

/* A node that opens but never starts (dynkvd could not bind its address)
 * records nothing: started again on another address, it is a new node
 * named by that address, not one stuck with the address that failed. */
Test(node, nothing_is_recorded_before_node_start)
{
	char err[512];
	rig r;

	memset(&r, 0, sizeof(r));
	snprintf(r.dir, sizeof(r.dir), "/dev/shm/dkv-node-XXXXXX");
	cr_assert_not_null(mkdtemp(r.dir));
	r.sim = sim_new(11);
	cr_assert_not_null(r.sim);
	sim_on_reply(r.sim, on_reply, &r);
	r.next_id = 1;
	cr_assert_eq(dkv_config_init(&r.cfg), 0);
	cr_assert_eq(rig_open_node_as(&r, (const char *const[]){ "listen=127.0.0.1:17020", NULL },
				      false, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(node_id(r.nd), "127.0.0.1:17020");
	sim_run_for(r.sim, 2000);
	cr_assert_not(in_dir(&r, "NODE"), "node_open wrote NODE");
	cr_assert_not(in_dir(&r, "MEMBERS"), "node_open wrote MEMBERS");
	cr_assert_not(in_dir(&r, "partitions"), "node_open created stores");
	rig_close_node(&r);

	cr_assert_eq(rig_open_node(&r, (const char *const[]){ "listen=127.0.0.1:17021", NULL },
				   err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(node_id(r.nd), "127.0.0.1:17021");
	cr_assert(in_dir(&r, "NODE") && in_dir(&r, "MEMBERS"), "node_start recorded nothing");
	rig_close_node(&r);

	/* restarted with no --listen: the recorded id and address */
	cr_assert_eq(rig_open_node(&r, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(node_id(r.nd), "127.0.0.1:17021");
	cr_assert_str_eq(node_addr(r.nd), "127.0.0.1:17021");
	rig_fini(&r);
}

Test(node, identity_persists_and_conflicts_are_refused)
{
	rig r;
	proto_msg m;
	char err[512];
	node *second;
	node_stats st1, st2;

	rig_init(&r, 7, (const char *const[]){ "n_val=1", "ring_size=64", NULL });
	put_ok(&r, "k", "v", NULL, 0);
	node_stats_get(r.nd, &st1);

	/* a second node on the same directory is refused */
	cr_assert_eq(node_open(&second, &r.cfg, sim_world(r.sim), NULL, err, sizeof(err)),
		     DKV_ELOCKED);
	cr_expect_not_null(strstr(err, "in use by another dynkvd (pid "), "%s", err);
	rig_close_node(&r);

	/* a conflicting ring_size or n_val is refused and says why */
	cr_assert_eq(rig_open_node(&r, (const char *const[]){ "ring_size=128", NULL },
				   err, sizeof(err)), DKV_EINVAL);
	cr_expect_not_null(strstr(err, "ring_size 128 conflicts with ring_size 64 recorded in"),
			   "%s", err);
	cr_assert_eq(rig_open_node(&r, (const char *const[]){ "n_val=3", NULL },
				   err, sizeof(err)), DKV_EINVAL);
	cr_expect_not_null(strstr(err, "n_val 3 conflicts with n_val 1"), "%s", err);

	/* with only the data directory, the recorded settings are used */
	cr_assert_eq(rig_open_node(&r, NULL, err, sizeof(err)), 0, "%s", err);
	node_stats_get(r.nd, &st2);
	cr_assert_eq(st2.ring_size, 64);
	cr_assert_eq(st2.n_val, 1);
	cr_assert_eq(st2.actor, st1.actor, "the actor id is part of the identity");
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "v" }, 1));
	proto_msg_release(&m);
	rig_fini(&r);
}

Test(node, draining_refuses_new_requests)
{
	rig r;
	uint64_t id;

	rig_init(&r, 8, n1);
	node_drain(r.nd);
	id = put_async(&r, "k", 1, "v", 1, NULL, 0, NULL);
	expect_error(&r, id, PROTO_ERR_SHUTDOWN, "shutting down");
	rig_fini(&r);
}

/*
 * Random histories against a model.  The model of one key on one replica:
 * the live siblings, each with a serial number; a read remembers the
 * serials it saw (its context), and a write with that context removes
 * exactly those and adds the new one.  Deletes add a tombstone the same
 * way.  Every get is checked against the model; the node is restarted now
 * and then (its stores reopened from disk).
 */
#define MKEYS 6
#define MSIBS 256

typedef struct msib {
	int serial;
	bool tomb;
	char val[16];
} msib;

typedef struct mkey {
	msib sibs[MSIBS];
	int n;
	/* the last read's context: the node's bytes and the model's serials */
	uint8_t ctx[1024];
	size_t ctxlen;
	int seen[MSIBS];
	int nseen;
} mkey;

static void model_write(mkey *mk, bool with_ctx, bool tomb, const char *val, int serial)
{
	if (with_ctx) {
		int j = 0;

		for (int i = 0; i < mk->n; i++) {
			bool seen = false;

			for (int s = 0; s < mk->nseen; s++)
				seen |= mk->sibs[i].serial == mk->seen[s];
			if (!seen)
				mk->sibs[j++] = mk->sibs[i];
		}
		mk->n = j;
	}
	cr_assert_lt(mk->n, MSIBS);
	mk->sibs[mk->n].serial = serial;
	mk->sibs[mk->n].tomb = tomb;
	snprintf(mk->sibs[mk->n].val, sizeof(mk->sibs[mk->n].val), "%s", val);
	mk->n++;
}

Test(node, random_histories_match_the_model)
{
	const char *env = getenv("DKV_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
	mkey model[MKEYS];
	int serial = 0;
	rig r;

	fprintf(stderr, "random_histories: seed %" PRIu64 " (DKV_SEED=%" PRIu64 " replays it)\n",
		seed, seed);
	memset(model, 0, sizeof(model));
	rig_init(&r, seed, (const char *const[]){ "n_val=1", "sync=always", NULL });
	for (int op = 0; op < 600; op++) {
		int k = (int)(sim_rand(r.sim) % MKEYS);
		char key[8], val[16];
		mkey *mk = &model[k];
		uint64_t dice = sim_rand(r.sim) % 100;
		bool with_ctx = mk->ctxlen > 0 && sim_rand(r.sim) % 2 == 0;

		snprintf(key, sizeof(key), "key%d", k);
		if (dice < 40) {
			proto_msg m;
			int live = 0;

			get(&r, key, strlen(key), NULL, &m);
			for (int i = 0; i < mk->n; i++)
				live += !mk->sibs[i].tomb;
			cr_assert_eq(m.nvalues, (size_t)live, "seed %" PRIu64 " op %d: %zu values, model %d",
				     seed, op, m.nvalues, live);
			cr_assert_eq(m.tombstones, (uint64_t)(mk->n - live), "seed %" PRIu64 " op %d", seed, op);
			cr_assert_eq(m.found, live > 0);
			for (int i = 0; i < mk->n; i++) {
				bool found = mk->sibs[i].tomb;

				for (size_t j = 0; j < m.nvalues && !found; j++)
					found = m.values[j].len == strlen(mk->sibs[i].val) &&
						memcmp(m.values[j].p, mk->sibs[i].val, m.values[j].len) == 0;
				cr_assert(found, "seed %" PRIu64 " op %d: value %s lost", seed, op,
					  mk->sibs[i].val);
			}
			cr_assert_leq(m.context.len, sizeof(mk->ctx));
			if (m.context.len > 0)   /* (p is NULL for none) */
				memcpy(mk->ctx, m.context.p, m.context.len);
			mk->ctxlen = m.context.len;
			mk->nseen = 0;
			for (int i = 0; i < mk->n; i++)
				mk->seen[mk->nseen++] = mk->sibs[i].serial;
			proto_msg_release(&m);
			clear_replies(&r);
		} else if (dice < 85) {
			snprintf(val, sizeof(val), "v%d", ++serial);
			put_ok(&r, key, val, with_ctx ? mk->ctx : NULL, with_ctx ? mk->ctxlen : 0);
			model_write(mk, with_ctx, false, val, serial);
		} else if (dice < 97) {
			del_ok(&r, key, with_ctx ? mk->ctx : NULL, with_ctx ? mk->ctxlen : 0);
			model_write(mk, with_ctx, true, "", ++serial);
		} else {
			char err[512];

			rig_close_node(&r);
			cr_assert_eq(rig_open_node(&r, (const char *const[]){ "sync=always", NULL },
						   err, sizeof(err)), 0, "%s", err);
		}
	}
	rig_fini(&r);
}

Test(node, the_ok_of_a_write_carries_its_context)
{
	rig r;
	proto_msg m;
	uint8_t ctx[512];
	size_t cl;
	uint64_t id;

	rig_init(&r, 9, n1);
	id = put_async(&r, "k", 1, "first", 5, NULL, 0, NULL);
	await(&r, id, &m);
	cr_assert_eq(m.type, PROTO_OK);
	cr_assert_gt(m.context.len, 0, "an OK carries the written object's context");
	cr_assert_lt(m.context.len, sizeof(ctx));
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);
	/* chaining writes through the OK's context replaces, never siblings */
	put_ok(&r, "k", "second", ctx, cl);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "second" }, 1));
	proto_msg_release(&m);
	rig_fini(&r);
}

Test(node, a_write_past_the_sibling_limit_is_refused_and_the_key_stays_usable)
{
	rig r;
	proto_msg m;
	uint64_t id;
	uint8_t ctx[16384];
	size_t cl;

	rig_init(&r, 10, n1);
	for (unsigned i = 0; i < OBJECT_DEFAULT_MAX_SIBLINGS; i++)
		put_ok(&r, "k", "v", NULL, 0);
	id = put_async(&r, "k", 1, "one too many", 12, NULL, 0, NULL);
	expect_error(&r, id, PROTO_ERR_TOOBIG, "too many siblings: this write would make 513 > 512");
	get(&r, "k", 1, NULL, &m);
	cr_assert_eq(m.nvalues, OBJECT_DEFAULT_MAX_SIBLINGS, "the key can still be read");
	cr_assert_leq(m.context.len, sizeof(ctx));
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);
	put_ok(&r, "k", "resolved", ctx, cl);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "resolved" }, 1));
	proto_msg_release(&m);
	rig_fini(&r);
}

Test(node, a_context_claiming_writes_never_made_is_refused)
{
	rig r;
	node_stats st;
	object *o = object_new();
	msgpack_sbuffer sb;
	uint64_t id;

	rig_init(&r, 11, n1);
	put_ok(&r, "k", "v", NULL, 0);
	node_stats_get(r.nd, &st);
	/* a context saying this node made 2^64 - 2 writes to the key */
	cr_assert_not_null(o);
	cr_assert_eq(object_put(o, st.dot_actor, NULL, "x", 1, 1), 0);
	cr_assert_eq(object_vv_set(&o->vv, st.dot_actor, UINT64_MAX - 1, 1), 0);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_context_encode(o, &sb), 0);
	id = put_async(&r, "k", 1, "w", 1, sb.data, sb.size, NULL);
	expect_error(&r, id, PROTO_ERR_CONTEXT, "claims writes this node never made");
	msgpack_sbuffer_destroy(&sb);
	object_free(o);
	put_ok(&r, "k", "still writable", NULL, 0);
	rig_fini(&r);
}

Test(node, a_damaged_node_file_is_refused)
{
	static const char *const bad[] = {
		"format = 1\nnode_id = x\nactor = 5\nring_size = 100\nn_val = 1\n",
		"format = 1\nnode_id = x\nactor = 5\nring_size = 2048\nn_val = 1\n",
		"format = 1\nnode_id = x\nactor = 5\nring_size = 64\n",
		"format = 1\nnode_id = x\nactor = 5\nring_size = 64\nn_val = 1\nwhat = 2\n",
		"format = 9\nnode_id = x\nactor = 5\nring_size = 64\nn_val = 1\n",
	};
	char path[128], err[512];
	rig r;

	rig_init(&r, 12, n1);
	rig_close_node(&r);
	snprintf(path, sizeof(path), "%s/NODE", r.dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(path, "w");

		cr_assert_not_null(f);
		fputs(bad[i], f);
		fclose(f);
		cr_assert_neq(rig_open_node(&r, NULL, err, sizeof(err)), 0, "NODE case %zu accepted", i);
		cr_expect_not_null(strstr(err, "NODE"), "the message names the file: %s", err);
		r.nd = NULL;
	}
	rig_fini(&r);
}

/* KV679 (riak_kv#679): a key's history is reaped (here: its partition's
 * store wiped, DOTS kept, as a reap leaves it), then written again.  The
 * new write's dot must be above every dot the old history had, so that an
 * old version arriving late (a hint, a returning disk) is dominated by the
 * new write instead of shadowing it.  Before the persisted sequence the new
 * counter started again at 1, and the old tombstone {A:2} covered it. */
Test(node, a_write_after_a_reap_is_never_shadowed_by_the_old_history)
{
	object_limits lim;
	object_vv told = { 0 }, tnew = { 0 };
	object *old = NULL, *now = NULL;
	rig r;
	proto_msg m;
	uint8_t ctx[512];
	size_t cl;
	char err[512], cmd[600];
	uint64_t a1, a2, dot = 0;
	node_stats st;
	bool found = false;

	object_limits_init(&lim);
	rig_init(&r, 12, n1);
	node_stats_get(r.nd, &st);
	a1 = st.dot_actor;
	put_ok(&r, "k", "old", NULL, 0);
	get(&r, "k", 1, NULL, &m);
	memcpy(ctx, m.context.p, m.context.len);
	cl = m.context.len;
	proto_msg_release(&m);
	clear_replies(&r);
	del_ok(&r, "k", ctx, cl);
	get(&r, "k", 1, NULL, &m);
	cr_assert_eq(m.tombstones, 1);
	cr_assert_eq(object_context_decode(m.context.p, m.context.len, &lim, &told), 0);
	proto_msg_release(&m);
	clear_replies(&r);

	/* the reap, and a restart */
	rig_close_node(&r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/partitions'", r.dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(rig_open_node(&r, n1, err, sizeof(err)), 0, "%s", err);
	node_stats_get(r.nd, &st);
	a2 = st.dot_actor;
	cr_assert_neq(a1, a2, "a new process writes as a new actor (its epoch)");

	put_ok(&r, "k", "new", NULL, 0);
	get(&r, "k", 1, NULL, &m);
	cr_assert(has_values(&m, (const char *const[]){ "new" }, 1));
	cr_assert_eq(object_context_decode(m.context.p, m.context.len, &lim, &tnew), 0);
	proto_msg_release(&m);
	cr_assert_gt(object_vv_get(&tnew, a2), object_vv_get(&told, a1),
		     "the new write's counter %" PRIu64 " is not above the reaped history's %" PRIu64,
		     object_vv_get(&tnew, a2), object_vv_get(&told, a1));
	cr_assert_eq(object_vv_get(&tnew, a1), 0, "the new write claims the old actor's dots");

	/* The old tombstone arrives late and is merged into the new version
	 * (as a hint or anti-entropy would): the new value survives. */
	old = object_new();
	now = object_new();
	cr_assert(old != NULL && now != NULL);
	cr_assert_eq(object_put(old, a1, NULL, "old", 3, 1), 0);
	cr_assert_eq(object_delete(old, a1, object_vector(old), 2), 0);
	cr_assert_eq(object_vv_get(object_vector(old), a1), object_vv_get(&told, a1),
		     "the rebuilt old tombstone is the one the node held");
	cr_assert_eq(object_write_at(now, a2, object_vv_get(&tnew, a2), NULL, false, "new", 3, 3,
				     &dot), 0);
	cr_assert_eq(dot, object_vv_get(&tnew, a2));
	cr_assert_eq(object_merge(now, old), 0);
	for (size_t i = 0; i < object_sibling_count(now); i++) {
		const object_sibling *sb = object_sibling_at(now, i);

		found |= !sb->tombstone && sb->value_len == 3 && memcmp(sb->value, "new", 3) == 0;
	}
	cr_assert(found, "the late old tombstone shadowed the new write");
	object_free(old);
	object_free(now);
	object_vv_release(&told);
	object_vv_release(&tnew);
	rig_fini(&r);
}

/* node_open_with's io reaches every store: a write that was never synced
 * (sync = none) is gone after powerio's power loss, and one that was
 * synced (sync = always) is not.  node_local_object reads the node's own
 * copy. */
Test(node, an_io_table_given_at_open_carries_every_store_write)
{
	const char *const none[] = { "n_val=1", "sync=none", NULL };
	const char *const always[] = { "n_val=1", "sync=always", NULL };
	powerio *pio = powerio_new();
	char err[512];
	object *obj = NULL;
	bool primary = false;
	rig r;

	rig_init(&r, 7, always);
	rig_close_node(&r);
	r.io = powerio_bcio(pio);
	cr_assert_eq(rig_open_node(&r, always, err, sizeof(err)), 0, "%s", err);
	put_ok(&r, "kept", "synced", NULL, 0);
	rig_close_node(&r);
	cr_assert_eq(rig_open_node(&r, none, err, sizeof(err)), 0, "%s", err);
	put_ok(&r, "lost", "unsynced", NULL, 0);
	cr_assert_eq(node_local_object(r.nd, "lost", 4, &obj, &primary), 0);
	cr_assert(primary, "a single node is every key's primary");
	cr_assert_not_null(obj);
	cr_assert_eq(object_sibling_count(obj), 1);
	object_free(obj);

	cr_assert_eq(powerio_crash(pio, r.dir), 0);
	while (node_inflight(r.nd) > 0 && sim_step(r.sim))
		;
	(void)node_close(r.nd);   /* its syncs fail: the power is off */
	r.nd = NULL;
	cr_assert_eq(powerio_power_loss(pio, r.dir, 0), 0);
	cr_assert_eq(rig_open_node(&r, none, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(node_local_object(r.nd, "lost", 4, &obj, NULL), 0);
	cr_assert_null(obj, "an unsynced write survived the power loss: the io table was not used");
	cr_assert_eq(node_local_object(r.nd, "kept", 4, &obj, NULL), 0);
	cr_assert_not_null(obj, "a synced write was lost");
	cr_assert_eq(object_sibling_at(obj, 0)->value_len, 6);
	object_free(obj);
	rig_close_node(&r);
	cr_assert_eq(powerio_forget(pio, r.dir), 0);
	rig_fini(&r);
	powerio_free(pio);
}
