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
	cr_assert_not_null(strstr(msg, "has left the ring"), "%s", msg);
	cr_assert_not_null(strstr(msg, "stop it now"), "%s", msg);
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
