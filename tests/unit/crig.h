/*
 * crig.h -- a cluster rig for simulation tests: n real nodes on one
 * simworld (simworld.h), with helpers to send client frames to any node and
 * wait (in virtual time) for the answer, and to read admin answers.
 * Shared by test_cluster.c and test_coord.c.
 */
#ifndef DKV_CRIG_H
#define DKV_CRIG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"
#include "log.h"
#include "node.h"
#include "proto.h"
#include "simworld.h"

#define MAXN     5
#define MAXGOT   64

typedef struct got {
	char addr[64];
	uint64_t client;
	uint8_t *frame;
	size_t len;
} got;

typedef struct crig {
	simworld *sim;
	size_t n;
	char addr[MAXN][32];
	char dir[MAXN][64];
	dkv_config cfg[MAXN];
	dkv_log *log[MAXN];          /* NULL unless crig_log(): no logging */
	char logpath[MAXN][80];
	node *nd[MAXN];
	got got[MAXGOT];
	size_t ngot;
	uint64_t next_id;
	uint64_t seed;
} crig;

/* The replies every node sends go to r->got (at most MAXGOT, in order). */
void on_reply(void *ctx, const char *addr, uint64_t client, const void *frame, size_t len);
/* Set a config key or fail the test. */
void set(dkv_config *c, const char *k, const char *v);
/* Open node i on its host (r->cfg[i]), attach it and start it (node_start). */
void open_node(crig *r, size_t i);
/* n nodes on 10.0.0.1..n:7070, seeded with the first; sync as given. */
void crig_init(crig *r, size_t n, uint64_t seed, const char *sync);
/* crig_init without opening any node: change r->cfg[i], then open_node. */
void crig_prepare(crig *r, size_t n, uint64_t seed, const char *sync);
/* Give node i a log (level info) in DATA_DIR.log, before open_node. */
void crig_log(crig *r, size_t i);
/* Lines of node i's log that contain needle. */
size_t crig_log_count(crig *r, size_t i, const char *needle);
void clear_got(crig *r);
/* Detach and close node i; fails the test if a sync batch never ends. */
void close_node(crig *r, size_t i);
void crig_fini(crig *r);
/* Assert node_check() on every open node. */
void crig_check(crig *r);
/* Send a client frame (sb, length prefix included) to node i and run the
 * world until its reply comes (at most limit_ms virtual).  The decoded
 * reply is in *m (release it); false if none came.  Checks every node's
 * invariants (crig_check) after each virtual millisecond. */
bool call(crig *r, size_t i, msgpack_sbuffer *sb, proto_msg *m, uint64_t limit_ms);
/* Run r until node i has answered client (a frame already sent), at most
 * limit_ms virtual: as call(), for a request sent another way. */
bool crig_wait_reply(crig *r, size_t i, uint64_t client, proto_msg *m, uint64_t limit_ms);
/* Close node i, set key = val in its config, open it again. */
void crig_reopen(crig *r, size_t i, const char *key, const char *val);
proto_opts opts_rw(int32_t rr, int32_t w);
/* put; returns the reply type (OK or ERROR; 0: no reply), error code in *code */
uint32_t put(crig *r, size_t i, const char *key, const char *val, int32_t w,
	     const void *ctx, size_t ctxlen, uint32_t *code);
/* get: 1 found with exactly one value equal to want (or want NULL and not
 * found), 0 otherwise, -1 error reply or none. */
int get_is(crig *r, size_t i, const char *key, const char *want, int32_t rr);
/* The INFO map of an admin command at node i, as a msgpack object in z
 * (caller destroys z); its raw bytes appended to raw if not NULL. */
bool admin(crig *r, size_t i, const char *cmd, msgpack_zone *z, msgpack_object *out,
	   msgpack_sbuffer *raw);
/* An admin command with at most one argument: the reply's type. */
uint32_t admin1(crig *r, size_t i, const char *cmd, const char *arg);
const msgpack_object *field(const msgpack_object *map, const char *k);
bool str_is(const msgpack_object *o, const char *s);
/* Field `want` (a string or a number) of the member whose `by` ("addr", "id") is `key`, in node
 * i's members INFO, into buf ("?" if absent). */
const char *member_field(crig *r, size_t i, const char *by, const char *key,
			 const char *want, char *buf, size_t len);
const char *liveness(crig *r, size_t i, const char *addr, char *buf, size_t len);
const char *status_of(crig *r, size_t i, const char *id, char *buf, size_t len);
/* True when every live node has all n members in its ring and prints the
 * same ring; converge_ms waits for it (failing after limit_ms). */
bool converged(crig *r);
uint64_t converge_ms(crig *r, uint64_t limit_ms);
/* A put of val (or, val NULL, a delete) of key at node i with options o
 * (replace mode and quorums); the reply's type (0: none), *code its error
 * code (code may be NULL). */
uint32_t crig_write(crig *r, size_t i, const char *key, const char *val, const proto_opts *o,
		    uint32_t *code);
/* A number field of an admin command's answer at node i. */
uint64_t crig_admin_u64(crig *r, size_t i, const char *cmd, const char *name);
/* The value of one series (`name{labels}` as printed) of node i's metrics
 * (metrics.h), as an integer; the test fails when it is not there. */
uint64_t crig_metric(crig *r, size_t i, const char *series);
/* Run until every other open node sees node `who` with liveness want. */
void crig_wait_liveness(crig *r, size_t who, const char *want);
/* Node `who` crashes; run until the others see it down. */
void crig_crash(crig *r, size_t who);
/* Run until the open nodes among the first n each see n members and one
 * ring epoch (every change's transfers done); fails after limit_ms. */
void crig_settle(crig *r, size_t n, uint64_t limit_ms);
/* An admin command with two arguments at node i: its answer's type, and
 * its message into msg. */
uint32_t crig_admin2(crig *r, size_t i, const char *cmd, const char *a1, const char *a2,
		     char *msg, size_t len);
/* How many of the first n nodes are primaries of key and hold exactly
 * the one value want (their own copy, no quorum). */
size_t crig_holding(crig *r, size_t n, const char *key, const char *want);
void lossy(crig *r, uint32_t loss_ppm);
void clean_net(crig *r);

#endif /* DKV_CRIG_H */
