/*
 * test_admin.c -- the node's answers to dynkv-admin (src/admin.c) on
 * simulated clusters (crig.h): what they say must be true and tell the
 * operator what to do.
 *
 * Replay a failure with
 *   DKV_SEED=N ./tests/unit/test_admin --filter 'admin/NAME' --jobs=1
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "crig.h"
#include "error.h"

/* An admin command with at most one argument that must succeed: the
 * answer's "message" into buf. */
static void admin_ok_msg(crig *r, size_t i, const char *cmd, const char *arg, char *buf,
			 size_t len)
{
	msgpack_sbuffer sb;
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *f;
	proto_msg m;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, arg ? &arg : NULL, arg ? 1 : 0), 0);
	cr_assert(call(r, i, &sb, &m, 10000), "%s: no answer", cmd);
	cr_assert_eq(m.type, PROTO_INFO, "%s: %.*s", cmd, (int)m.message.len,
		     (const char *)m.message.p);
	msgpack_zone_init(&z, 1024);
	cr_assert_eq(msgpack_unpack((const char *)m.info.p, m.info.len, NULL, &z, &o),
		     MSGPACK_UNPACK_SUCCESS);
	f = field(&o, "message");
	cr_assert(f != NULL && f->type == MSGPACK_OBJECT_STR);
	snprintf(buf, len, "%.*s", (int)f->via.str.size, f->via.str.ptr);
	msgpack_zone_destroy(&z);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
}

/* A new user saw a node that left and stopped shown as "removed up"
 * forever, and the node that left kept serving with no word to stop it. */
Test(admin, a_node_that_leaves_is_told_to_stop_and_is_never_shown_up_again)
{
	crig r;
	char msg[512], buf[16];

	crig_init(&r, 3, sim_seed_env("leave_then_stop", 31), "none");
	converge_ms(&r, 10000);
	admin_ok_msg(&r, 2, "leave", NULL, msg, sizeof(msg));
	cr_assert_not_null(strstr(msg, "is leaving"), "%s", msg);
	cr_assert_not_null(strstr(msg, "exits by itself once they hold them"), "%s", msg);
	for (uint64_t t0 = sim_now(r.sim); strcmp(status_of(&r, 0, r.addr[2], buf, sizeof(buf)),
						   "removed") != 0;) {
		cr_assert_lt(sim_now(r.sim) - t0, 30000, "node 2 is still %s", buf);
		sim_run_for(r.sim, 100);
	}
	sim_run_for(r.sim, 3000);
	for (size_t i = 0; i < 3; i++) {
		cr_assert_str_eq(status_of(&r, i, r.addr[2], buf, sizeof(buf)), "removed", "node %zu", i);
		cr_assert_str_eq(liveness(&r, i, r.addr[2], buf, sizeof(buf)), "-",
				 "node %zu shows the removed member %s", i, buf);
	}
	/* stopped, it stays "-", never down or up */
	sim_crash(r.sim, r.addr[2]);
	close_node(&r, 2);
	sim_run_for(r.sim, 5000);
	for (size_t i = 0; i < 2; i++)
		cr_assert_str_eq(liveness(&r, i, r.addr[2], buf, sizeof(buf)), "-", "node %zu", i);
	crig_fini(&r);
}

/* Review defect: a join whose poll timer could not be allocated was never
 * answered. */
Test(admin, a_join_is_answered_even_when_no_timer_can_be_had)
{
	msgpack_sbuffer sb;
	proto_msg m;
	const char *seed;
	crig r;

	crig_init(&r, 2, sim_seed_env("join_without_timer", 33), "none");
	converge_ms(&r, 10000);
	seed = r.addr[0];
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r.next_id++, "join", &seed, 1), 0);
	sim_fail_timers(r.sim, 1000);   /* every timer_add while the request runs */
	clear_got(&r);
	cr_assert_eq(node_request(r.nd[1], 101, sb.data + 4, sb.size - 4), 0);
	sim_fail_timers(r.sim, 0);
	cr_assert(crig_wait_reply(&r, 1, 101, &m, 5000), "the join was never answered");
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.code, PROTO_ERR_INTERNAL, "code %u", m.code);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	crig_fini(&r);
}

/* A new user: `dynkv-admin remove` of a crashed node advised starting it
 * once, then succeeded seconds later without it.  Now a remove needs the
 * member down: one that crashed a moment ago, not found down yet, is
 * refused with what is true (it is up, as far as the node knows); once
 * failure detection has it down, the remove is done. */
Test(admin, a_remove_before_the_member_is_found_down_says_it_is_up)
{
	crig r;
	char msg[512];
	msgpack_sbuffer sb;
	proto_msg m;
	const char *victim;

	crig_init(&r, 3, sim_seed_env("remove_before_count", 35), "none");
	converge_ms(&r, 10000);
	sim_crash(r.sim, r.addr[2]);
	close_node(&r, 2);
	victim = r.addr[2];
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r.next_id++, "remove", &victim, 1), 0);
	cr_assert(call(&r, 0, &sb, &m, 10000));
	cr_assert_eq(m.type, PROTO_ERROR, "removed a member not found down yet");
	snprintf(msg, sizeof(msg), "%.*s", (int)m.message.len, (const char *)m.message.p);
	cr_assert_not_null(strstr(msg, "is up; remove is for a node that is gone for good"),
			   "%s", msg);
	cr_assert_null(strstr(msg, "start it once"), "%s", msg);
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	crig_wait_liveness(&r, 2, "down");
	cr_assert_eq(admin1(&r, 0, "remove", r.addr[2]), PROTO_INFO);
	crig_fini(&r);
}

/* A running node asked to join a cluster that holds its id under another
 * data directory stops (identity, dynkvd.8); the join it was asked for
 * says why instead of ending with a closed connection. */
Test(admin, a_join_into_a_cluster_that_holds_our_id_answers_why)
{
	msgpack_sbuffer sb;
	proto_msg m;
	const char *seed;
	char msg[512];
	crig r;

	crig_prepare(&r, 3, sim_seed_env("join_id_taken", 37), "none");
	open_node(&r, 0);
	open_node(&r, 1);
	sim_run_for(r.sim, 3000);
	set(&r.cfg[2], "node_id", r.addr[1]);   /* its own directory, node 1's id */
	set(&r.cfg[2], "seeds", "");
	open_node(&r, 2);
	sim_run_for(r.sim, 1000);
	seed = r.addr[0];
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r.next_id++, "join", &seed, 1), 0);
	cr_assert(call(&r, 2, &sb, &m, 10000), "the join was never answered");
	cr_assert_eq(m.type, PROTO_ERROR);
	snprintf(msg, sizeof(msg), "%.*s", (int)m.message.len, (const char *)m.message.p);
	cr_assert_not_null(strstr(msg, "is taken by another node"), "%s", msg);
	cr_assert_not_null(node_failure(r.nd[2]), "the node did not stop");
	proto_msg_release(&m);
	msgpack_sbuffer_destroy(&sb);
	crig_fini(&r);
}
