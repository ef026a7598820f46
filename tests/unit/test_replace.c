/*
 * test_replace.c -- replace-mode writes (src/coord.c, READING) on whole
 * simulated clusters (crig.h): a PUT or DELETE with "replace": 1 reads
 * the key with its R first and supersedes what that read returned and
 * what its coordinator holds, so writes through one node replace each
 * other; writes by different coordinators at once stay siblings
 * (property 2); a read that fails fails the write, nothing written.
 *
 * Every test prints its seed; replay with
 *   DKV_SEED=N ./tests/unit/test_replace --filter 'replace/NAME' --jobs=1
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crig.h"
#include "error.h"

#define CLIENT 500u   /* the connection pipelined requests come on */

static proto_opts replace_opts(int32_t rr, int32_t w)
{
	proto_opts o = opts_rw(rr, w);

	o.replace = true;
	o.siblings = true;
	return o;
}

static proto_opts blind_opts(void)
{
	proto_opts o = opts_rw(0, 0);

	o.siblings = true;
	return o;
}

/* A PUT (val not NULL) or DELETE of key, appended to sb with id. */
static void encode_write(msgpack_sbuffer *sb, uint64_t id, const char *key, const char *val,
			 const proto_opts *o)
{
	if (val != NULL)
		cr_assert_eq(proto_encode_put(sb, id, key, strlen(key), val, strlen(val), NULL, 0,
					      o), 0);
	else
		cr_assert_eq(proto_encode_delete(sb, id, key, strlen(key), NULL, 0, o), 0);
}

/* Write through node i and wait for the answer, in *m (release it). */
static void write_at(crig *r, size_t i, const char *key, const char *val, const proto_opts *o,
		     proto_msg *m)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	encode_write(&sb, r->next_id++, key, val, o);
	cr_assert(call(r, i, &sb, m, 10000), "no answer (seed %llu)", (unsigned long long)r->seed);
	msgpack_sbuffer_destroy(&sb);
}

/* A write through node i that must succeed: the live siblings its OK reports. */
static uint32_t write_ok(crig *r, size_t i, const char *key, const char *val,
			 const proto_opts *o)
{
	proto_msg m;
	uint32_t n;

	write_at(r, i, key, val, o, &m);
	cr_assert_eq(m.type, PROTO_OK, "%s of %s: %.*s (seed %llu)", val ? "put" : "delete", key,
		     (int)m.message.len, (const char *)m.message.p, (unsigned long long)r->seed);
	cr_assert(m.has_siblings, "the OK has no sibling count although it was asked for");
	n = m.siblings;
	proto_msg_release(&m);
	return n;
}

/* The values of key read at node i with R (sorted, joined by ',') into
 * buf; returns how many, -1 if not found. */
static int values_at(crig *r, size_t i, const char *key, int32_t rr, char *buf, size_t len)
{
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(rr, 0);
	proto_msg m;
	char vals[PROTO_MAX_VALUES > 64 ? 64 : PROTO_MAX_VALUES][64];
	int n;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, r->next_id++, key, strlen(key), &o), 0);
	cr_assert(call(r, i, &sb, &m, 10000), "no answer to the get");
	msgpack_sbuffer_destroy(&sb);
	cr_assert_eq(m.type, PROTO_VALUE, "get %s: %.*s", key, (int)m.message.len,
		     (const char *)m.message.p);
	n = m.found ? (int)m.nvalues : -1;
	cr_assert_leq(m.nvalues, 64);
	for (size_t k = 0; k < m.nvalues; k++)
		snprintf(vals[k], sizeof(vals[k]), "%.*s", (int)m.values[k].len,
			 (const char *)m.values[k].p);
	proto_msg_release(&m);
	qsort(vals, n > 0 ? (size_t)n : 0, sizeof(vals[0]),
	      (int (*)(const void *, const void *))strcmp);
	buf[0] = '\0';
	for (int k = 0; k < n; k++)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", k ? "," : "", vals[k]);
	return n;
}

/* Run the world until `want` replies to CLIENT at node i are in r->got,
 * checking every node's invariants each virtual millisecond. */
static void wait_replies(crig *r, size_t i, size_t want, uint64_t limit_ms)
{
	uint64_t deadline = sim_now(r->sim) + limit_ms;

	for (;;) {
		size_t n = 0;

		for (size_t k = 0; k < r->ngot; k++)
			n += r->got[k].client == CLIENT && strcmp(r->got[k].addr, r->addr[i]) == 0;
		if (n == want)
			return;
		cr_assert_lt(sim_now(r->sim), deadline, "%zu of %zu answers (seed %llu)", n, want,
			     (unsigned long long)r->seed);
		sim_run_for(r->sim, 1);
		crig_check(r);
	}
}

/* The decoded reply k of r->got (release it). */
static void got_msg(crig *r, size_t k, proto_msg *m)
{
	const proto_limits lim = { 1024, 1 << 20 };
	char err[256];

	cr_assert_eq(proto_decode(r->got[k].frame + 4, r->got[k].len - 4, &lim, m, err,
				  sizeof(err)), 0, "reply: %s", err);
}

/* Every replica holds exactly want (each read alone: R = 1 at each node
 * answers from that node's own copy). */
static void every_replica_holds(crig *r, const char *key, const char *want)
{
	char buf[256];

	for (size_t i = 0; i < r->n; i++) {
		cr_assert_eq(values_at(r, i, key, 1, buf, sizeof(buf)), 1,
			     "node %zu holds \"%s\" (seed %llu)", i, buf, (unsigned long long)r->seed);
		cr_assert_str_eq(buf, want, "node %zu", i);
	}
}

/* Three nodes, converged; key = old (replace mode) unless old is NULL. */
static void start3(crig *r, const char *seed_name, uint64_t seed, const char *key,
		   const char *old)
{
	proto_opts o = replace_opts(0, 0);

	crig_init(r, 3, sim_seed_env(seed_name, seed), "none");
	converge_ms(r, 10000);
	if (old != NULL)
		cr_assert_eq(write_ok(r, 0, key, old, &o), 1);
}

TestSuite(replace, .description = "replace-mode writes on simulated clusters");

/* n replace-mode puts of "0".."n-1" to key, one after the other, through
 * nodes 0, 1, ... (mod `through`) of an n-node cluster: each must leave
 * one sibling, and the last value must be all there is, on every replica. */
static void replace_in_turn(size_t nodes, size_t through, int n, const char *seed_name,
			    uint64_t seed)
{
	crig r;
	proto_opts o = replace_opts(0, 0);
	char val[32], buf[256];

	crig_init(&r, nodes, sim_seed_env(seed_name, seed), "none");
	converge_ms(&r, 10000);
	for (int k = 0; k < n; k++) {
		snprintf(val, sizeof(val), "%d", k);
		cr_assert_eq(write_ok(&r, (size_t)k % through, "counter", val, &o), 1,
			     "put %d left siblings", k);
	}
	cr_assert_eq(values_at(&r, 0, "counter", DKV_QUORUM_ALL, buf, sizeof(buf)), 1,
		     "values: %s", buf);
	cr_assert_str_eq(buf, val);
	sim_run_for(r.sim, 500);
	every_replica_holds(&r, "counter", val);
	crig_fini(&r);
}

Test(replace, fifty_sequential_replace_puts_through_one_node_leave_one_value)
{
	replace_in_turn(3, 1, 50, "replace_sequential", 31);
}

Test(replace, fifty_pipelined_replace_puts_through_one_node_leave_one_value)
{
	crig r;
	proto_opts o = replace_opts(0, 0);
	msgpack_sbuffer sb;
	uint64_t first;
	char val[32], buf[256];
	bool seen_last = false;

	start3(&r, "replace_pipelined", 33, "k", NULL);
	clear_got(&r);
	msgpack_sbuffer_init(&sb);
	first = r.next_id;
	/* all fifty arrive before any replica has answered a read */
	for (int k = 0; k < 50; k++) {
		snprintf(val, sizeof(val), "%d", k);
		sb.size = 0;
		encode_write(&sb, r.next_id++, "counter", val, &o);
		cr_assert_eq(node_request(r.nd[0], CLIENT, sb.data + 4, sb.size - 4), 0);
	}
	msgpack_sbuffer_destroy(&sb);
	wait_replies(&r, 0, 50, 10000);
	for (size_t k = 0; k < r.ngot; k++) {
		proto_msg m;

		got_msg(&r, k, &m);
		cr_assert_eq(m.type, PROTO_OK, "request %llu: %.*s",
			     (unsigned long long)(m.id - first), (int)m.message.len,
			     (const char *)m.message.p);
		cr_assert_eq(m.siblings, 1, "request %llu left %u siblings",
			     (unsigned long long)(m.id - first), m.siblings);
		proto_msg_release(&m);
	}
	cr_assert_eq(values_at(&r, 0, "counter", DKV_QUORUM_ALL, buf, sizeof(buf)), 1,
		     "values: %s (seed %llu)", buf, (unsigned long long)r.seed);
	for (int k = 0; k < 50 && !seen_last; k++) {
		snprintf(val, sizeof(val), "%d", k);
		seen_last = strcmp(buf, val) == 0;
	}
	cr_assert(seen_last, "the value \"%s\" is none of those written", buf);
	sim_run_for(r.sim, 500);
	every_replica_holds(&r, "counter", buf);
	crig_fini(&r);
}

/* Property 2: a replace-mode write supersedes only what its read saw, and
 * two coordinators that write at the same instant saw neither write. */
Test(replace, replace_puts_through_two_nodes_at_once_keep_both)
{
	crig r;
	/* R = 1: each coordinator's read is its own copy, answered inside the
	 * call, so neither read can see the other write (with R = 2 a seed
	 * whose delays let one write reach the other coordinator's second
	 * replica first makes that write see the other and, rightly, replace
	 * it: seed 112 did) */
	proto_opts o = replace_opts(1, 0), later = replace_opts(0, 0);
	msgpack_sbuffer sb;
	char buf[256];

	start3(&r, "replace_two_coordinators", 35, "k", "old");
	clear_got(&r);
	msgpack_sbuffer_init(&sb);
	encode_write(&sb, r.next_id++, "k", "a", &o);
	cr_assert_eq(node_request(r.nd[0], CLIENT, sb.data + 4, sb.size - 4), 0);
	sb.size = 0;
	encode_write(&sb, r.next_id++, "k", "b", &o);
	cr_assert_eq(node_request(r.nd[1], CLIENT, sb.data + 4, sb.size - 4), 0);
	msgpack_sbuffer_destroy(&sb);
	wait_replies(&r, 0, 1, 10000);
	wait_replies(&r, 1, 1, 10000);
	for (size_t k = 0; k < r.ngot; k++) {
		proto_msg m;

		got_msg(&r, k, &m);
		cr_assert_eq(m.type, PROTO_OK, "%.*s", (int)m.message.len,
			     (const char *)m.message.p);
		proto_msg_release(&m);
	}
	cr_assert_eq(values_at(&r, 2, "k", DKV_QUORUM_ALL, buf, sizeof(buf)), 2,
		     "values: %s (seed %llu)", buf, (unsigned long long)r.seed);
	cr_assert_str_eq(buf, "a,b", "a write was lost, or the old value kept");
	/* a later replace-mode write reads both and replaces them */
	cr_assert_eq(write_ok(&r, 2, "k", "c", &later), 1);
	cr_assert_eq(values_at(&r, 0, "k", DKV_QUORUM_ALL, buf, sizeof(buf)), 1, "values: %s",
		     buf);
	cr_assert_str_eq(buf, "c");
	crig_fini(&r);
}

Test(replace, a_replace_put_whose_read_cannot_meet_r_fails_and_writes_nothing)
{
	crig r;
	proto_opts o = replace_opts(2, 1);
	proto_msg m;
	char buf[256];

	start3(&r, "replace_read_fails", 37, "k", "old");
	sim_run_for(r.sim, 200);
	sim_partition(r.sim, r.addr[0], r.addr[1], true);
	sim_partition(r.sim, r.addr[0], r.addr[2], true);
	/* W = 1 alone would be met by node 0's own store: only the read fails */
	write_at(&r, 0, "k", "new", &o, &m);
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert(m.code == PROTO_ERR_QUORUM || m.code == PROTO_ERR_TIMEOUT, "code %u", m.code);
	cr_assert_not_null(memmem(m.message.p, m.message.len, "nothing was written", 19),
			   "message: %.*s", (int)m.message.len, (const char *)m.message.p);
	proto_msg_release(&m);
	/* once SWIM finds them down the read fails at once, with the same words */
	sim_run_for(r.sim, 3000);
	write_at(&r, 0, "k", "new", &o, &m);
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.code, PROTO_ERR_QUORUM, "code %u: %.*s", m.code, (int)m.message.len,
		     (const char *)m.message.p);
	proto_msg_release(&m);
	cr_assert_eq(values_at(&r, 0, "k", 1, buf, sizeof(buf)), 1, "node 0 holds %s", buf);
	cr_assert_str_eq(buf, "old", "node 0 applied the write");
	sim_partition(r.sim, r.addr[0], r.addr[1], false);
	sim_partition(r.sim, r.addr[0], r.addr[2], false);
	converge_ms(&r, 10000);
	sim_run_for(r.sim, 3000);   /* and SWIM finds node 0 up again */
	cr_assert_eq(values_at(&r, 1, "k", DKV_QUORUM_ALL, buf, sizeof(buf)), 1, "holds %s", buf);
	cr_assert_str_eq(buf, "old");
	crig_fini(&r);
}

Test(replace, a_replace_delete_removes_every_sibling)
{
	crig r;
	proto_opts b = blind_opts(), o = replace_opts(0, 0);
	char buf[256];

	start3(&r, "replace_delete", 39, "k", NULL);
	cr_assert_eq(write_ok(&r, 0, "k", "x", &b), 1);
	cr_assert_eq(write_ok(&r, 0, "k", "y", &b), 2);
	/* a delete without a context (the old frame) deletes nothing */
	cr_assert_eq(write_ok(&r, 0, "k", NULL, &b), 2);
	cr_assert_eq(values_at(&r, 0, "k", DKV_QUORUM_ALL, buf, sizeof(buf)), 2, "values %s", buf);
	cr_assert_eq(write_ok(&r, 2, "k", NULL, &o), 0, "live siblings after the delete");
	cr_assert_eq(values_at(&r, 0, "k", DKV_QUORUM_ALL, buf, sizeof(buf)), -1, "values %s",
		     buf);
	sim_run_for(r.sim, 500);
	for (size_t i = 0; i < r.n; i++)
		cr_assert_eq(values_at(&r, i, "k", 1, buf, sizeof(buf)), -1, "node %zu: %s", i, buf);
	crig_fini(&r);
}

Test(replace, blind_puts_still_make_siblings)
{
	crig r;
	proto_opts b = blind_opts();
	char buf[256];

	start3(&r, "replace_blind", 41, "k", NULL);
	cr_assert_eq(write_ok(&r, 0, "k", "1", &b), 1);
	cr_assert_eq(write_ok(&r, 0, "k", "2", &b), 2);
	cr_assert_eq(write_ok(&r, 0, "k", "3", &b), 3);
	cr_assert_eq(values_at(&r, 1, "k", DKV_QUORUM_ALL, buf, sizeof(buf)), 3);
	cr_assert_str_eq(buf, "1,2,3");
	crig_fini(&r);
}

/* A client that does not ask for the count gets the OK it always got. */
Test(replace, an_old_client_gets_the_first_form_of_ok)
{
	crig r;
	proto_opts o = opts_rw(0, 0);
	proto_msg m;

	start3(&r, "replace_old_ok", 43, "k", NULL);
	write_at(&r, 0, "k", "v", &o, &m);
	cr_assert_eq(m.type, PROTO_OK);
	cr_assert_not(m.has_siblings);
	cr_assert_gt(m.context.len, 0);
	proto_msg_release(&m);
	o.replace = true;   /* replace mode alone: still the first form */
	write_at(&r, 0, "k", "w", &o, &m);
	cr_assert_eq(m.type, PROTO_OK);
	cr_assert_not(m.has_siblings);
	proto_msg_release(&m);
	cr_assert_eq(get_is(&r, 1, "k", "w", DKV_QUORUM_ALL), 1);
	crig_fini(&r);
}

/* Writes through nodes that are not replicas of the key are forwarded
 * whole, replace mode included. */
Test(replace, replace_puts_through_every_node_of_five_leave_one_value)
{
	replace_in_turn(5, 5, 20, "replace_forwarded", 45);
}
