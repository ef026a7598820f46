/*
 * test_reply.c -- answers to clients and forwarders (src/reply.c) on the
 * simulated world: a client's answer goes to its connection, a forwarded
 * request's answer goes back to its forwarder once (FWDREPLY), errors are
 * counted, and ids of forwarded requests never collide with a world's.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "peer.h"
#include "proto.h"
#include "reply.h"
#include "simworld.h"

static simworld *sim;
static reply *rp;
static const char *self = "10.0.0.1:7070";
static uint64_t last_client;
static proto_msg last;
static int replies;
static uint8_t frame[4096];

static void on_reply(void *ctx, uint64_t client, const void *f, size_t len)
{
	static const proto_limits lim = { 1024, 1 << 20 };

	(void)ctx;
	cr_assert_leq(len, sizeof(frame));
	memcpy(frame, f, len);
	last_client = client;
	replies++;
	cr_assert_eq(proto_decode(frame + 4, len - 4, &lim, &last, NULL, 0), 0);
}

static void setup(void)
{
	sim = sim_new(3);
	sim_on_reply(sim, on_reply, NULL);
	cr_assert_eq(reply_new(&rp, sim_world(sim), &self, NULL), 0);
}

static void teardown(void)
{
	reply_free(rp);
	sim_free(sim);
}

TestSuite(reply, .init = setup, .fini = teardown);

Test(reply, an_error_goes_to_its_client_with_the_request_id_and_is_counted)
{
	reply_error(rp, 42, 7, PROTO_ERR_QUORUM, "quorum not met: %d of w=%d", 1, 2);
	cr_assert_eq(replies, 1);
	cr_assert_eq(last_client, 42);
	cr_assert_eq(last.type, PROTO_ERROR);
	cr_assert_eq(last.id, 7);
	cr_assert_eq(last.code, PROTO_ERR_QUORUM);
	cr_assert_eq(last.message.len, strlen("quorum not met: 1 of w=2"));
	cr_assert_eq(memcmp(last.message.p, "quorum not met: 1 of w=2", last.message.len), 0);
	cr_assert_eq(reply_errors(rp), 1);
	reply_store_error(rp, 42, 8, DKV_ETOOBIG, "write failed");
	cr_assert_eq(last.code, PROTO_ERR_TOOBIG);
	reply_store_error(rp, 42, 9, -5, "write failed");
	cr_assert_eq(last.code, PROTO_ERR_STORAGE);
	cr_assert_eq(reply_errors(rp), 3);
}

Test(reply, an_error_frame_before_any_request_has_id_0)
{
	const void *f;
	size_t len;

	reply_error_frame(rp, PROTO_ERR_OVERLOAD, "too many connections", &f, &len);
	cr_assert_not_null(f);
	cr_assert_eq(proto_decode((const uint8_t *)f + 4, len - 4, &(proto_limits){ 1024, 1024 },
				  &last, NULL, 0), 0);
	cr_assert_eq(last.id, 0);
	cr_assert_eq(last.code, PROTO_ERR_OVERLOAD);
	cr_assert_eq(replies, 0, "an error frame is handed back, not sent");
}

/* A forwarded request's answer is one FWDREPLY to its forwarder, never a
 * reply to a local connection, and only once. */
Test(reply, a_forwarded_requests_answer_goes_back_to_its_forwarder_once)
{
	sim_net_stats st0, st1;
	uint64_t id = reply_remote(rp, "10.0.0.2:7070", 99), id2;

	cr_assert_neq(id, 0);
	cr_assert(id & REPLY_REMOTE_BIT, "forwarded ids carry bit 63 (world ids never do)");
	sim_host(sim, "10.0.0.2:7070");
	sim_net_stats_get(sim, &st0);
	reply_error(rp, id, 5, PROTO_ERR_TIMEOUT, "timed out");
	sim_net_stats_get(sim, &st1);
	cr_assert_eq(replies, 0, "answered a local connection");
	cr_assert_eq(st1.frames_sent + st1.frames_refused, st0.frames_sent + st0.frames_refused + 1);
	reply_error(rp, id, 5, PROTO_ERR_TIMEOUT, "timed out again");
	sim_net_stats_get(sim, &st0);
	cr_assert_eq(st0.frames_sent + st0.frames_refused, st1.frames_sent + st1.frames_refused,
		     "a second answer to one forwarded request went out");
	/* the entry is free again: the next forwarded request reuses it */
	id2 = reply_remote(rp, "10.0.0.3:7070", 100);
	cr_assert_eq(id2, id);
}
