#include "config.h"
/*
 * test_admin_render.c -- the output of dynkv-admin (src/admin_render.c)
 * from handmade INFO maps: the exact JSON, the tables of man/dynkv-admin.1,
 * and what happens with missing keys, wrong types, strange strings, deep
 * nesting and bytes that are not a map at all.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <msgpack.h>

#include "admin_render.h"
#include "error.h"
#include "proto.h"

static_assert(ADMIN_RENDER_MAX_DEPTH == PROTO_MAX_INFO_DEPTH, "the renderer takes what the codec lets through");

/* --- building maps --------------------------------------------------------- */

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void start(void)
{
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static void done(void)
{
	msgpack_sbuffer_destroy(&sb);
}

static void s_(const char *s)
{
	msgpack_pack_str_with_body(&pk, s, strlen(s));
}

static void kv_s(const char *k, const char *v)
{
	s_(k);
	s_(v);
}

static void kv_u(const char *k, uint64_t v)
{
	s_(k);
	msgpack_pack_uint64(&pk, v);
}

static void kv_d(const char *k, double v)
{
	s_(k);
	msgpack_pack_double(&pk, v);
}

TestSuite(render, .init = start, .fini = done);

/* What fn writes for the bytes, NUL-terminated (caller frees); *rc its code. */
static char *out_json(const void *p, size_t n, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	*rc = admin_render_json(f, p, n);
	fclose(f);
	return buf;
}

static char *out_text(const char *cmd, const void *p, size_t n, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	*rc = admin_render_text(f, cmd, p, n);
	fclose(f);
	return buf;
}

static void expect_json(const void *p, size_t n, const char *want)
{
	int rc;
	char *got = out_json(p, n, &rc);

	cr_assert_eq(rc, 0, "rc %d", rc);
	cr_assert_str_eq(got, want);
	free(got);
}

static void expect_text(const char *cmd, const void *p, size_t n, const char *want)
{
	int rc;
	char *got = out_text(cmd, p, n, &rc);

	cr_assert_eq(rc, 0, "rc %d", rc);
	cr_assert_str_eq(got, want, "got:\n%s\nwanted:\n%s", got, want);
	free(got);
}

/* Refused by both renderers, with nothing written. */
static void expect_refused(const void *p, size_t n, const char *what)
{
	int rc;
	char *got = out_json(p, n, &rc);

	cr_assert_eq(rc, DKV_EPROTO, "%s: json rc %d", what, rc);
	cr_assert_str_eq(got, "", "%s", what);
	free(got);
	got = out_text("members", p, n, &rc);
	cr_assert_eq(rc, DKV_EPROTO, "%s: text rc %d", what, rc);
	cr_assert_str_eq(got, "", "%s", what);
	free(got);
	got = out_text(NULL, p, n, &rc);
	cr_assert_eq(rc, DKV_EPROTO, "%s: generic rc %d", what, rc);
	free(got);
}

/* --- members ---------------------------------------------------------------- */

static void members_map(bool extra)
{
	msgpack_pack_map(&pk, extra ? 2 : 1);
	s_("members");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_map(&pk, 7);
	kv_s("id", "n1");
	kv_s("addr", "10.0.0.1:7070");
	kv_s("status", "valid");
	kv_s("liveness", "up");
	kv_u("incarnation", 3);
	kv_u("version", 12);
	kv_u("keys", 120345);
	msgpack_pack_map(&pk, 5);
	kv_s("id", "node-two");
	kv_s("addr", "10.0.0.2:7070");
	kv_s("status", "leaving");
	kv_s("liveness", "suspect");
	kv_u("keys", 7);
	msgpack_pack_map(&pk, 2);       /* missing keys, and one of the wrong type */
	kv_s("id", "n3");
	kv_u("status", 7);
	if (extra)
		kv_s("note", "from a newer node");
}

Test(render, members_table)
{
	members_map(false);
	expect_text("members", sb.data, sb.size,
		    "ID        ADDR           STATUS   LIVENESS    KEYS\n"
		    "n1        10.0.0.1:7070  valid    up        120345\n"
		    "node-two  10.0.0.2:7070  leaving  suspect        7\n"
		    "n3        -              7        -              -\n");
}

/* Members that report their progress along the ring epochs get a column
 * "ack/sync/read" (a member that reports none shows dashes), and the
 * chain is one line after the table. */
Test(render, members_with_epochs)
{
	msgpack_pack_map(&pk, 2);
	s_("members");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_map(&pk, 8);
	kv_s("id", "n1");
	kv_s("addr", "10.0.0.1:7070");
	kv_s("status", "valid");
	kv_s("liveness", "up");
	kv_u("keys", 10);
	kv_u("epoch_ack", 3);
	kv_u("epoch_sync", 3);
	kv_u("epoch_read", 1);
	msgpack_pack_map(&pk, 5);
	kv_s("id", "n2");
	kv_s("addr", "10.0.0.2:7070");
	kv_s("status", "valid");
	kv_s("liveness", "down");
	kv_u("keys", 0);
	s_("epochs");
	msgpack_pack_array(&pk, 3);
	for (unsigned i = 1; i <= 3; i++) {
		msgpack_pack_map(&pk, 2);
		kv_u("number", i);
		s_("members");
		msgpack_pack_array(&pk, i);
		for (unsigned k = 0; k < i; k++)
			s_("x");
	}
	expect_text("members", sb.data, sb.size,
		    "ID  ADDR           STATUS  LIVENESS  KEYS  EPOCHS A/S/R\n"
		    "n1  10.0.0.1:7070  valid   up          10  3/3/1\n"
		    "n2  10.0.0.2:7070  valid   down         0  -/-/-\n"
		    "\n"
		    "epochs: 1 (1 member), 2 (2 members), 3 (3 members)\n");
	/* an epoch without a member list shows as 0 members, number 0 */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 2);
	s_("members");
	msgpack_pack_array(&pk, 0);
	s_("epochs");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 1);
	s_("members");
	msgpack_pack_map(&pk, 0);
	{
		int rc;
		char *got = out_text("members", sb.data, sb.size, &rc);

		cr_assert_str_eq(got, "ID  ADDR  STATUS  LIVENESS  KEYS\n\nepochs: 0 (0 members)\n",
				 "got %s", got);
		free(got);
	}
}

/* A member that left stays in membership as removed, with the liveness it
 * had ("up" forever once it stops); it is listed apart, without one. */
Test(render, removed_members_are_listed_apart_without_a_liveness)
{
	static const char *const ids[] = { "n1", "gone1", "n2", "gone2" };
	static const char *const st[] = { "valid", "removed", "valid", "removed" };

	msgpack_pack_map(&pk, 1);
	s_("members");
	msgpack_pack_array(&pk, 4);
	for (size_t i = 0; i < 4; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.0.0.%zu:7070", i + 1);
		msgpack_pack_map(&pk, 5);
		kv_s("id", ids[i]);
		kv_s("addr", addr);
		kv_s("status", st[i]);
		kv_s("liveness", "up");
		kv_u("keys", i * 10);
	}
	expect_text("members", sb.data, sb.size,
		    "ID  ADDR           STATUS  LIVENESS  KEYS\n"
		    "n1  10.0.0.1:7070  valid   up           0\n"
		    "n2  10.0.0.3:7070  valid   up          20\n"
		    "\n"
		    "removed: gone1 (10.0.0.2:7070), gone2 (10.0.0.4:7070)\n");
	/* only removed members: an empty table, then the list */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 1);
	s_("members");
	msgpack_pack_array(&pk, 1);
	msgpack_pack_map(&pk, 2);
	kv_s("id", "gone");
	kv_s("status", "removed");
	expect_text("members", sb.data, sb.size,
		    "ID  ADDR  STATUS  LIVENESS  KEYS\n"
		    "\n"
		    "removed: gone (-)\n");
}

Test(render, members_extra_keys_follow_the_table)
{
	members_map(true);
	expect_text("members", sb.data, sb.size,
		    "ID        ADDR           STATUS   LIVENESS    KEYS\n"
		    "n1        10.0.0.1:7070  valid    up        120345\n"
		    "node-two  10.0.0.2:7070  leaving  suspect        7\n"
		    "n3        -              7        -              -\n"
		    "\n"
		    "note: from a newer node\n");
}

Test(render, members_json_is_the_map)
{
	members_map(false);
	expect_json(sb.data, sb.size,
		    "{\"members\":[{\"id\":\"n1\",\"addr\":\"10.0.0.1:7070\",\"status\":\"valid\","
		    "\"liveness\":\"up\",\"incarnation\":3,\"version\":12,\"keys\":120345},"
		    "{\"id\":\"node-two\",\"addr\":\"10.0.0.2:7070\",\"status\":\"leaving\","
		    "\"liveness\":\"suspect\",\"keys\":7},{\"id\":\"n3\",\"status\":7}]}\n");
}

Test(render, members_of_the_wrong_type_fall_back_to_generic)
{
	msgpack_pack_map(&pk, 1);
	kv_s("members", "none");
	expect_text("members", sb.data, sb.size, "members: none\n");
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 0);
	expect_text("members", sb.data, sb.size, "");
	expect_json(sb.data, sb.size, "{}\n");
}

/* --- hints ---------------------------------------------------------------- */

/* The node's answer to "hints": ntargets targets, its pace. */
static void hints_map(size_t ntargets)
{
	msgpack_pack_map(&pk, 3);
	kv_u("pending", ntargets ? 1853 : 0);
	s_("pace");
	msgpack_pack_map(&pk, 4);
	kv_u("rate", 12582912);
	kv_u("delay_us", 120);
	kv_u("owner_delay_us", 350);
	kv_u("slowdowns", 12);
	s_("targets");
	msgpack_pack_array(&pk, ntargets);
	for (size_t i = 0; i < ntargets; i++) {
		msgpack_pack_map(&pk, 6);
		kv_s("node", i == 0 ? "10.0.0.3:7070" : "10.0.0.5:7070");
		kv_u("keys", i == 0 ? 1841 : 12);
		kv_u("bytes", i == 0 ? 2145320 : 13011);
		kv_s("state", i == 0 ? "delivering" : "paused");
		kv_u("delivered", i == 0 ? 4096 : 0);
		s_("error");
		if (i == 0)
			msgpack_pack_nil(&pk);
		else
			s_("the connection to 10.0.0.5:7070 failed");
	}
}

Test(render, hints_table_with_the_pace)
{
	hints_map(2);
	expect_text("hints", sb.data, sb.size,
		    "NODE           KEYS    BYTES  STATE       DELIVERED  ERROR\n"
		    "10.0.0.3:7070  1841  2145320  delivering       4096  null\n"
		    "10.0.0.5:7070    12    13011  paused              0  the connection to 10.0.0.5:7070 failed\n"
		    "\n"
		    "pending: 1853 keys\n"
		    "pace: 12.6 MB/s a delivery (loop delay 120 us, owner's 350 us; slowed 12 times)\n");
}

Test(render, hints_of_a_node_holding_none_is_one_line)
{
	hints_map(0);
	expect_text("hints", sb.data, sb.size, "pending: 0 keys\n");
}

/* --- preflist ------------------------------------------------------------- */

/* The node's answer to "preflist KEY": 3 primaries and 2 fallbacks. */
static void preflist_map(void)
{
	static const char *const ids[] = { "n2", "node-three", "n1", "n5", "n4" };
	static const char *const live[] = { "up", "suspect", "up", "down", "up" };

	msgpack_pack_map(&pk, 3);
	kv_u("partition", 123);
	kv_u("n", 3);
	s_("preflist");
	msgpack_pack_array(&pk, 5);
	for (size_t i = 0; i < 5; i++) {
		char addr[32];

		snprintf(addr, sizeof(addr), "10.0.0.%c:7070", ids[i][strlen(ids[i]) - 1]);
		msgpack_pack_map(&pk, 4);
		kv_s("id", ids[i]);
		kv_s("addr", i == 1 ? "10.0.0.3:7070" : addr);
		s_("primary");
		if (i < 3)
			msgpack_pack_true(&pk);
		else
			msgpack_pack_false(&pk);
		kv_s("liveness", live[i]);
	}
}

/* --- aae ------------------------------------------------------------------ */

static void aae_map(bool extra)
{
	msgpack_pack_map(&pk, extra ? 3 : 2);
	s_("partitions");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_map(&pk, 6);
	kv_u("partition", 0);
	kv_s("state", "ready");
	kv_u("age_s", 13);
	kv_u("keys", 1841);
	kv_u("root", 9631480231102827681u);
	s_("last");
	msgpack_pack_map(&pk, 6);
	kv_u("ago_s", 1);
	kv_s("peer", "10.0.0.1:7070");
	kv_u("compared", 1841);
	kv_u("repaired", 0);
	kv_u("bytes", 29);
	kv_s("result", "equal");
	msgpack_pack_map(&pk, 6);
	kv_u("partition", 1);
	kv_s("state", "building");
	s_("age_s");
	msgpack_pack_nil(&pk);
	kv_u("keys", 0);
	kv_u("root", 0);
	s_("last");
	msgpack_pack_nil(&pk);
	msgpack_pack_map(&pk, 3);       /* missing keys, a last of the wrong type */
	kv_u("partition", 7);
	kv_s("state", "ready");
	kv_u("last", 5);
	s_("totals");
	msgpack_pack_map(&pk, 8);
	kv_u("exchanges", 89);
	kv_u("equal", 87);
	kv_u("failed", 3);
	kv_u("repaired", 41);
	kv_u("bytes", 48913);
	kv_u("builds", 64);
	kv_u("build_ms", 27);
	kv_u("trees_ready", 2);
	if (extra)
		kv_s("note", "from a newer node");
}

Test(render, aae_table)
{
	aae_map(true);
	expect_text("aae", sb.data, sb.size,
		    "PART  STATE     AGE_S  KEYS  LAST_S  PEER           REPAIRED  RESULT\n"
		    "   0  ready        13  1841       1  10.0.0.1:7070         0  equal\n"
		    "   1  building      -     0       -  -                     -  -\n"
		    "   7  ready         -     -       -  -                     -  -\n"
		    "\n"
		    "exchanges: 89 (87 equal, 3 failed), 41 keys repaired, 48913 bytes sent\n"
		    "trees: 2 of 3 ready, 64 builds in 27 ms\n"
		    "\n"
		    "note: from a newer node\n");
}

Test(render, aae_of_the_wrong_shape_falls_back_to_generic)
{
	msgpack_pack_map(&pk, 1);
	kv_u("partitions", 3);
	expect_text("aae", sb.data, sb.size, "partitions: 3\n");
	done();
	start();
	/* no partitions held: the totals alone */
	msgpack_pack_map(&pk, 2);
	s_("partitions");
	msgpack_pack_array(&pk, 0);
	s_("totals");
	msgpack_pack_map(&pk, 1);
	kv_u("exchanges", 0);
	expect_text("aae", sb.data, sb.size,
		    "exchanges: 0 (- equal, - failed), - keys repaired, - bytes sent\n"
		    "trees: - of 0 ready, - builds in - ms\n");
}

Test(render, preflist_table)
{
	preflist_map();
	expect_text("preflist", sb.data, sb.size,
		    "partition 123, n 3\n"
		    "\n"
		    "POS  ID          ADDR           ROLE      LIVENESS\n"
		    "  1  n2          10.0.0.2:7070  primary   up\n"
		    "  2  node-three  10.0.0.3:7070  primary   suspect\n"
		    "  3  n1          10.0.0.1:7070  primary   up\n"
		    "  4  n5          10.0.0.5:7070  fallback  down\n"
		    "  5  n4          10.0.0.4:7070  fallback  up\n");
	expect_json(sb.data, sb.size,
		    "{\"partition\":123,\"n\":3,\"preflist\":["
		    "{\"id\":\"n2\",\"addr\":\"10.0.0.2:7070\",\"primary\":true,"
		    "\"liveness\":\"up\"},"
		    "{\"id\":\"node-three\",\"addr\":\"10.0.0.3:7070\",\"primary\":true,"
		    "\"liveness\":\"suspect\"},"
		    "{\"id\":\"n1\",\"addr\":\"10.0.0.1:7070\",\"primary\":true,"
		    "\"liveness\":\"up\"},"
		    "{\"id\":\"n5\",\"addr\":\"10.0.0.5:7070\",\"primary\":false,"
		    "\"liveness\":\"down\"},"
		    "{\"id\":\"n4\",\"addr\":\"10.0.0.4:7070\",\"primary\":false,"
		    "\"liveness\":\"up\"}]}\n");
}

Test(render, preflist_missing_and_odd_keys)
{
	/* no preflist, an unknown key: the header line, then the rest */
	msgpack_pack_map(&pk, 2);
	kv_u("partition", 7);
	kv_s("note", "newer");
	expect_text("preflist", sb.data, sb.size, "partition 7, n -\n\nnote: newer\n");
	/* an entry that is not a map, one with a primary of another type */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 2);
	kv_u("n", 1);
	s_("preflist");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_uint8(&pk, 9);
	msgpack_pack_map(&pk, 2);
	kv_s("id", "n1");
	kv_u("primary", 1);
	expect_text("preflist", sb.data, sb.size,
		    "partition -, n 1\n"
		    "\n"
		    "POS  ID  ADDR  ROLE  LIVENESS\n"
		    "  1  -   -     -     -\n"
		    "  2  n1  -     1     -\n");
}

/* --- ring ------------------------------------------------------------------- */

/* One row of an "ownership" array. */
static void own_row(const char *id, uint64_t replicas, uint64_t first, double share)
{
	msgpack_pack_map(&pk, 4);
	kv_s("id", id);
	kv_u("replicas", replicas);
	kv_u("first", first);
	kv_d("share", share);
}

Test(render, ring_tables)
{
	msgpack_pack_map(&pk, 4);
	kv_u("ring_size", 4);
	kv_u("n_val", 2);
	s_("ownership");
	msgpack_pack_array(&pk, 2);
	own_row("n1", 5, 3, 0.625);
	msgpack_pack_map(&pk, 3);
	kv_s("id", "n2");
	kv_u("replicas", 3);
	kv_s("share", "lots");          /* wrong type: shown as it is */
	s_("partitions");
	msgpack_pack_array(&pk, 3);
	for (unsigned i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 2);
		kv_u("index", i);
		s_("preflist");
		msgpack_pack_array(&pk, 2);
		s_(i == 0 ? "n1" : "n2");
		s_(i == 0 ? "n2" : "n1");
	}
	msgpack_pack_map(&pk, 1);
	kv_u("index", 2);                /* no preflist */
	expect_text("ring", sb.data, sb.size,
		    "ring size 4, n_val 2\n"
		    "\n"
		    "ID  REPLICAS  FIRST  SHARE\n"
		    "n1         5      3  62.5%\n"
		    "n2         3      -   lots\n"
		    "\n"
		    "PARTITION  PREFERENCE LIST\n"
		    "        0  n1 n2\n"
		    "        1  n2 n1\n"
		    "        2  -\n");
}

Test(render, plan_summary_moves_and_the_balance_after)
{
	msgpack_pack_map(&pk, 10);
	kv_s("change", "join");
	kv_s("node", "n4");
	kv_u("members_before", 3);
	kv_u("members_after", 4);
	kv_u("replicas", 12);
	kv_u("keys", 2000);
	kv_u("bytes", 2048000);
	kv_u("lost", 0);
	s_("moves");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_map(&pk, 5);
	kv_u("partition", 1);
	kv_s("from", "n2");
	kv_s("to", "n4");
	kv_u("keys", 1000);
	kv_u("bytes", 1024000);
	msgpack_pack_map(&pk, 5);
	kv_u("partition", 3);
	s_("from");
	msgpack_pack_nil(&pk);
	kv_s("to", "n4");
	kv_u("keys", 1000);
	kv_u("bytes", 1024000);
	s_("ownership");
	msgpack_pack_array(&pk, 2);
	own_row("n1", 9, 3, 0.75);
	own_row("n4", 3, 1, 0.25);
	expect_text("plan", sb.data, sb.size,
		    "join n4: 3 members -> 4; 2 of 12 replicas move, about 2000 keys (2048000 bytes)\n"
		    "\n"
		    "PARTITION  FROM  TO  KEYS    BYTES\n"
		    "        1  n2    n4  1000  1024000\n"
		    "        3  -     n4  1000  1024000\n"
		    "\n"
		    "after the change:\n"
		    "\n"
		    "ID  REPLICAS  FIRST  SHARE\n"
		    "n1         9      3  75.0%\n"
		    "n4         3      1  25.0%\n");
	/* a partition with no source is called out */
	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 3);
	kv_s("change", "remove");
	kv_s("node", "n1");
	kv_u("lost", 7);
	expect_text("plan", sb.data, sb.size,
		    "remove n1: 0 members -> 0; 0 of 0 replicas move, about 0 keys (0 bytes)\n"
		    "warning: 7 partition replicas would have no other replica to come from: "
		    "their keys would be lost\n");
}

Test(render, ring_without_anything)
{
	msgpack_pack_map(&pk, 1);
	kv_u("other", 1);
	expect_text("ring", sb.data, sb.size, "ring size -, n_val -\n\nother: 1\n");
}

/* --- status ----------------------------------------------------------------- */

Test(render, status_lines_with_units)
{
	msgpack_pack_map(&pk, 10);
	kv_u("read_repairs", 31);       /* in the schema: shown in its place */
	kv_s("id", "n1");
	kv_u("uptime_s", 3 * 86400 + 4 * 3600 + 5 * 60 + 6);
	kv_u("bytes", 1572864);
	kv_d("requests_per_sec", 12.345);
	s_("latency_us");
	msgpack_pack_map(&pk, 3);
	kv_u("p50", 120);
	kv_u("p99", 800);
	kv_u("max", 9000);
	kv_u("keys", 42);
	kv_s("errors", "n/a");
	kv_u("zzz", 1);
	s_("bool");
	msgpack_pack_true(&pk);
	expect_text("status", sb.data, sb.size,
		    "id: n1\n"
		    "uptime: 3d 4h 5m 6s\n"
		    "keys: 42\n"
		    "bytes: 1.5 MiB (1572864 bytes)\n"
		    "requests_per_sec: 12.3\n"
		    "latency: p50 120 us, p99 800 us, p999 -, max 9000 us\n"
		    "errors: n/a\n"
		    "read_repairs: 31\n"
		    "\n"
		    "zzz: 1\n"
		    "bool: true\n");
}

Test(render, status_small_units_and_wrong_types)
{
	msgpack_pack_map(&pk, 3);
	kv_u("uptime_s", 59);
	kv_u("bytes", 1000);
	kv_s("latency_us", "fast");
	expect_text("status", sb.data, sb.size,
		    "uptime: 59s\n"
		    "bytes: 1000 B\n"
		    "latency_us: fast\n");
}

/* --- join, leave, remove ---------------------------------------------------- */

Test(render, membership_changes_print_the_message)
{
	char msg[128];

	msgpack_pack_map(&pk, 2);
	s_("ok");
	msgpack_pack_true(&pk);
	kv_s("message", "n2 is leaving the cluster");
	expect_text("leave", sb.data, sb.size, "n2 is leaving the cluster\n");
	cr_assert(admin_render_ok(sb.data, sb.size, msg, sizeof msg));
	cr_assert_str_eq(msg, "n2 is leaving the cluster");

	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 2);
	s_("ok");
	msgpack_pack_false(&pk);
	kv_s("message", "refused: n2 holds the only replicas of 12 partitions\n\x1b[31m");
	cr_assert_not(admin_render_ok(sb.data, sb.size, msg, sizeof msg));
	cr_assert_str_eq(msg, "refused: n2 holds the only replicas of 12 partitions\\x0a\\x1b[31m");
	cr_assert_not(admin_render_ok(sb.data, sb.size, msg, 8));
	cr_assert_str_eq(msg, "refused");

	msgpack_sbuffer_clear(&sb);
	msgpack_pack_map(&pk, 1);
	s_("ok");
	msgpack_pack_true(&pk);
	expect_text("join", sb.data, sb.size, "ok\n");
	cr_assert(admin_render_ok(sb.data, sb.size, msg, sizeof msg));
	cr_assert_str_eq(msg, "");
	cr_assert(admin_render_ok("\x91", 1, msg, sizeof msg), "not a map: nothing refused");
}

/* --- generic ---------------------------------------------------------------- */

Test(render, generic_nesting)
{
	msgpack_pack_map(&pk, 5);
	kv_u("a", 1);
	s_("b");
	msgpack_pack_map(&pk, 2);
	kv_s("c", "x");
	s_("d");
	msgpack_pack_array(&pk, 3);
	msgpack_pack_int(&pk, -5);
	msgpack_pack_map(&pk, 2);
	kv_u("e", 1);
	kv_u("f", 2);
	msgpack_pack_array(&pk, 0);
	s_("g");
	msgpack_pack_map(&pk, 0);
	s_("h");
	msgpack_pack_nil(&pk);
	kv_s("i", "");
	expect_text("frobnicate", sb.data, sb.size,
		    "a: 1\n"
		    "b:\n"
		    "  c: x\n"
		    "  d:\n"
		    "    - -5\n"
		    "    - e: 1\n"
		    "      f: 2\n"
		    "    - []\n"
		    "g: {}\n"
		    "h: null\n"
		    "i: \"\"\n");
	expect_json(sb.data, sb.size,
		    "{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[-5,{\"e\":1,\"f\":2},[]]},\"g\":{},"
		    "\"h\":null,\"i\":\"\"}\n");
}

/* --- JSON values ------------------------------------------------------------ */

Test(render, json_scalars_exactly)
{
	static const uint8_t bin[] = { 0x00, 0xff, 0x10, 0x20 };

	msgpack_pack_map(&pk, 13);
	kv_u("u", UINT64_MAX);
	s_("i");
	msgpack_pack_int64(&pk, INT64_MIN);
	kv_d("tenth", 0.1);
	kv_d("whole", 2.0);
	kv_d("neg0", -0.0);
	kv_d("big", 1e300);
	s_("f32");
	msgpack_pack_float(&pk, 0.1f);
	kv_d("nan", 0.0 / 0.0);
	kv_d("inf", 1.0 / 0.0);
	s_("bin");
	msgpack_pack_bin_with_body(&pk, bin, sizeof bin);
	s_("t");
	msgpack_pack_true(&pk);
	s_("f");
	msgpack_pack_false(&pk);
	kv_s("esc", "q\"b\\n\nt\tc\x01\x7f" "caf\xc3\xa9 \xe2\x82\xac");
	expect_json(sb.data, sb.size,
		    "{\"u\":18446744073709551615,\"i\":-9223372036854775808,\"tenth\":0.1,"
		    "\"whole\":2.0,\"neg0\":-0.0,\"big\":1e+300,\"f32\":0.1,\"nan\":null,"
		    "\"inf\":null,\"bin\":\"AP8QIA==\",\"t\":true,\"f\":false,"
		    "\"esc\":\"q\\\"b\\\\n\\nt\\tc\\u0001\\u007fcaf\xc3\xa9 \xe2\x82\xac\"}\n");
}

Test(render, non_utf8_strings)
{
	/* a lone continuation byte, a truncated sequence, an overlong '/',
	 * a surrogate, and a code point past U+10FFFF */
	static const char bad[] = "a\x80" "b\xe2\x82" "c\xc0\xaf" "d\xed\xa0\x80" "e\xf4\x90\x80\x80";

	msgpack_pack_map(&pk, 1);
	s_("k\xff");
	msgpack_pack_str_with_body(&pk, bad, sizeof bad - 1);
	expect_json(sb.data, sb.size,
		    "{\"k\\ufffd\":\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffd"
		    "e\\ufffd\\ufffd\\ufffd\\ufffd\"}\n");
	expect_text(NULL, sb.data, sb.size,
		    "k\\xff: a\\x80b\\xe2\\x82c\\xc0\\xafd\\xed\\xa0\\x80e\\xf4\\x90\\x80\\x80\n");
}

Test(render, scalar_keys_become_strings)
{
	msgpack_pack_map(&pk, 4);
	msgpack_pack_uint32(&pk, 7);
	msgpack_pack_uint32(&pk, 1);
	msgpack_pack_int32(&pk, -1);
	msgpack_pack_uint32(&pk, 2);
	msgpack_pack_true(&pk);
	msgpack_pack_uint32(&pk, 3);
	msgpack_pack_nil(&pk);
	msgpack_pack_uint32(&pk, 4);
	expect_json(sb.data, sb.size, "{\"7\":1,\"-1\":2,\"true\":3,\"null\":4}\n");
	expect_text(NULL, sb.data, sb.size, "7: 1\n-1: 2\ntrue: 3\nnull: 4\n");
}

/* --- refused input ---------------------------------------------------------- */

/* levels maps deep: {"k": {"k": ... 1}} */
static uint8_t *nested(size_t levels, size_t *len)
{
	uint8_t *p = malloc(3 * levels + 1);
	size_t n = 0;

	cr_assert_not_null(p);
	for (size_t i = 0; i < levels; i++) {
		p[n++] = 0x81;
		p[n++] = 0xa1;
		p[n++] = 'k';
	}
	p[n++] = 0x01;
	*len = n;
	return p;
}

Test(render, nesting_up_to_the_limit_and_no_further)
{
	size_t len;
	uint8_t *p = nested(ADMIN_RENDER_MAX_DEPTH, &len);
	char *got;
	int rc;

	got = out_json(p, len, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_eq(strlen(got), 5 * ADMIN_RENDER_MAX_DEPTH + 1 + ADMIN_RENDER_MAX_DEPTH + 1);
	free(got);
	got = out_text(NULL, p, len, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_not_null(strstr(got, "                              k: 1\n"), "%s", got);
	free(got);
	free(p);
	for (size_t levels = ADMIN_RENDER_MAX_DEPTH + 1; levels <= 100001; levels += 33333) {
		p = nested(levels, &len);
		expect_refused(p, len, "too deep");
		free(p);
	}
}

Test(render, garbage_truncation_and_bombs)
{
	static const struct {
		const char *what;
		uint8_t b[16];
		size_t n;
	} cases[] = {
		{ "empty", { 0 }, 0 },
		{ "array", { 0x90 }, 1 },
		{ "str", { 0xa1, 'x' }, 2 },
		{ "0xc1", { 0xc1 }, 1 },
		{ "two maps", { 0x80, 0x80 }, 2 },
		{ "value missing", { 0x81, 0xa1, 'k' }, 3 },
		{ "str cut", { 0x81, 0xa1, 'k', 0xa5, 'a', 'b' }, 6 },
		{ "float cut", { 0x81, 0xa1, 'k', 0xcb, 0x3f, 0xf0 }, 6 },
		{ "ext", { 0x81, 0xa1, 'k', 0xd4, 0x01, 0x02 }, 6 },
		{ "map key", { 0x81, 0x80, 0x01 }, 3 },
		{ "bin key", { 0x81, 0xc4, 0x00, 0x01 }, 4 },
		{ "map32 bomb", { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'k', 0x01 }, 8 },
		{ "array32 bomb", { 0x81, 0xa1, 'k', 0xdd, 0xff, 0xff, 0xff, 0xff, 0x01 }, 9 },
		{ "bin32 bomb", { 0x81, 0xa1, 'k', 0xc6, 0xff, 0xff, 0xff, 0xff, 0x01 }, 9 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t *p = cases[i].n ? malloc(cases[i].n) : NULL;

		if (cases[i].n)
			memcpy(p, cases[i].b, cases[i].n);   /* exact size for ASan */
		expect_refused(p, cases[i].n, cases[i].what);
		free(p);
	}
}

/* Every prefix of a real result is refused or renders; none crashes. */
Test(render, every_truncation_of_a_result)
{
	members_map(true);
	for (size_t n = 0; n < sb.size; n++) {
		uint8_t *p = n ? malloc(n) : NULL;
		int rc;
		char *got;

		if (n)
			memcpy(p, sb.data, n);
		got = out_json(p, n, &rc);
		cr_assert_eq(rc, DKV_EPROTO, "cut at %zu", n);
		free(got);
		got = out_text("members", p, n, &rc);
		cr_assert_eq(rc, DKV_EPROTO, "cut at %zu", n);
		free(got);
		free(p);
	}
}

Test(render, write_errors_are_reported)
{
	FILE *f = fopen("/dev/full", "w");

	if (f == NULL)
		cr_assert_fail("no /dev/full");
	setvbuf(f, NULL, _IONBF, 0);
	members_map(false);
	cr_assert_eq(admin_render_json(f, sb.data, sb.size), -EIO);
	cr_assert_eq(admin_render_text(f, "members", sb.data, sb.size), -EIO);
	fclose(f);
}

/* transfers: ten columns (a table of more than 8 wrote past its widths
 * array: found by UBSan in test_transfer.sh), "" errors as "-", rates and
 * times left whole, then the summary lines. */
Test(render, transfers_table_and_summary)
{
	msgpack_pack_map(&pk, 7);
	s_("active");
	msgpack_pack_array(&pk, 2);
	for (int i = 0; i < 2; i++) {
		msgpack_pack_map(&pk, 11);
		kv_u("partition", i ? 17 : 3);
		kv_s("from", "10.0.0.1:7070");
		kv_s("to", "10.0.0.4:7070");
		kv_u("keys", i ? 5 : 120);
		kv_u("bytes", i ? 5000 : 123456);
		kv_u("total_bytes", 600000);
		kv_d("rate", i ? 0.0 : 262144.75);
		s_("eta_s");
		if (i)
			msgpack_pack_nil(&pk);
		else
			msgpack_pack_double(&pk, 1.8);
		kv_u("source", i ? 1 : 2);
		kv_u("sources", 3);
		kv_s("error", i ? "waiting for 10.0.0.2:7070, which is down" : "");
	}
	kv_u("pending", 40);
	s_("paused");
	msgpack_pack_true(&pk);
	kv_u("received", 9);
	kv_u("served_bytes", 0);
	kv_u("merged_bytes", 777);
	kv_u("dropped", 2);
	expect_text("transfers", sb.data, sb.size,
		    "PART  FROM           KEYS   BYTES      OF     B/S  ETA_S  SRC  OF  ERROR\n"
		    "   3  10.0.0.1:7070   120  123456  600000  262144      1    2   3  -\n"
		    "  17  10.0.0.1:7070     5    5000  600000       0      -    1   3  waiting for 10.0.0.2:7070, which is down\n"
		    "\n"
		    "2 active, 40 waiting (PAUSED: dynkv-admin transfers resume)\n"
		    "since start: 9 partitions received (777 bytes merged), 2 dropped, 0 bytes sent to others\n");
}

/* transfers with the pace: one more line, the rate it allows now (a map
 * without it, from a node before the pace, prints none: above). */
Test(render, transfers_pace_line)
{
	msgpack_pack_map(&pk, 8);
	s_("active");
	msgpack_pack_array(&pk, 0);
	kv_u("pending", 0);
	s_("paused");
	msgpack_pack_false(&pk);
	kv_u("received", 1);
	kv_u("served_bytes", 10);
	kv_u("merged_bytes", 20);
	kv_u("dropped", 0);
	s_("pace");
	msgpack_pack_map(&pk, 5);
	kv_u("rate", 4194304);
	kv_u("delay_us", 812);
	kv_u("source_delay_us", 95);
	kv_u("slowdowns", 5);
	kv_u("windows", 60);
	expect_text("transfers", sb.data, sb.size,
		    "0 active, 0 waiting\n"
		    "since start: 1 partitions received (20 bytes merged), 0 dropped, 10 bytes sent to others\n"
		    "pace: 4.2 MB/s received now (loop delay 812 us, the last source's 95 us; slowed in 5 of 60 windows)\n");
}

/* capacity: the cluster's verdict first in the map, the members' rows,
 * then the verdict line. */
Test(render, capacity_rows_and_the_verdict)
{
	const void *maps[2];
	size_t lens[2];
	char a0[] = "10.0.0.1:7070", a1[] = "10.0.0.2:7070";
	char *addrs[2] = { a0, a1 };
	msgpack_sbuffer one;
	void *all = NULL;
	size_t alllen = 0;
	char *got;
	int rc;

	msgpack_sbuffer_init(&one);
	msgpack_pack_map(&pk, 8);
	kv_s("addr", "10.0.0.1:7070");
	kv_u("keys", 100);
	kv_u("disk_bytes", 4096);
	kv_u("keydir_bytes", 512);
	kv_d("ops_per_s", 450.6);
	kv_u("p99_us", 900);
	kv_d("window_s", 60.0);
	kv_s("verdict", "grow");
	msgpack_sbuffer_write(&one, sb.data, sb.size);
	maps[0] = one.data;
	lens[0] = one.size;
	maps[1] = NULL;   /* did not answer */
	lens[1] = 0;
	cr_assert_eq(admin_render_capacity(maps, lens, addrs, 2, &all, &alllen), 0);
	got = out_text("capacity", all, alllen, &rc);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(got,
			 "NODE           KEYS  DISK  KEYDIR  OPS/S  P99_US  WINDOW_S  VERDICT\n"
			 "10.0.0.1:7070   100  4096     512    450     900      60.0  grow\n"
			 "\n"
			 "cluster: grow (10.0.0.1:7070: -)\n");
	free(got);
	got = out_json(all, alllen, &rc);
	cr_assert_eq(rc, 0);
	cr_assert(strncmp(got, "{\"verdict\":\"grow\"", 17) == 0, "%s", got);
	cr_assert_not_null(strstr(got, "\"unreachable\":[\"10.0.0.2:7070\"]"), "%s", got);
	free(got);
	free(all);
	msgpack_sbuffer_destroy(&one);
}
