/*
 * crig.c -- the cluster rig of crig.h.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crig.h"
#include "error.h"
#include "msgfield.h"
#include "object.h"

void on_reply(void *ctx, const char *addr, uint64_t client, const void *frame, size_t len)
{
	crig *r = ctx;
	got *g;

	cr_assert_lt(r->ngot, MAXGOT, "too many replies queued");
	g = &r->got[r->ngot++];
	snprintf(g->addr, sizeof(g->addr), "%s", addr);
	g->client = client;
	g->frame = malloc(len);
	cr_assert_not_null(g->frame);
	memcpy(g->frame, frame, len);
	g->len = len;
}

void set(dkv_config *c, const char *k, const char *v)
{
	char e[256];

	cr_assert_eq(dkv_config_set(c, k, v, e, sizeof(e)), 0, "%s=%s: %s", k, v, e);
}

void open_node(crig *r, size_t i)
{
	char err[512];
	int rc;

	if (getenv("CRIG_LOGS") != NULL && r->log[i] == NULL)
		crig_log(r, i);   /* DIR.log: for debugging a test */
	rc = node_open(&r->nd[i], &r->cfg[i], sim_host(r->sim, r->addr[i]), r->log[i],
		       err, sizeof(err));
	cr_assert_eq(rc, 0, "node_open %s: %s", r->addr[i], err);
	sim_host_attach(r->sim, r->addr[i], r->nd[i]);
	rc = node_start(r->nd[i], err, sizeof(err));
	cr_assert_eq(rc, 0, "node_start %s: %s", r->addr[i], err);
}

void crig_init(crig *r, size_t n, uint64_t seed, const char *sync)
{
	crig_prepare(r, n, seed, sync);
	for (size_t i = 0; i < n; i++)
		open_node(r, i);
}

void crig_prepare(crig *r, size_t n, uint64_t seed, const char *sync)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->seed = seed;
	r->next_id = 1;
	r->sim = sim_new(seed);
	cr_assert_not_null(r->sim);
	sim_on_reply_host(r->sim, on_reply, r);
	for (size_t i = 0; i < n; i++) {
		snprintf(r->addr[i], sizeof(r->addr[i]), "10.0.0.%u:7070", (unsigned)(i + 1));
		snprintf(r->dir[i], sizeof(r->dir[i]), "/dev/shm/dkv-cluster-XXXXXX");
		cr_assert_not_null(mkdtemp(r->dir[i]));
		cr_assert_eq(dkv_config_init(&r->cfg[i]), 0);
		set(&r->cfg[i], "data_dir", r->dir[i]);
		set(&r->cfg[i], "listen", r->addr[i]);
		set(&r->cfg[i], "log_level", "error");
		set(&r->cfg[i], "sync", sync);
		set(&r->cfg[i], "probe_interval", "200ms");
		set(&r->cfg[i], "probe_timeout", "80ms");
		set(&r->cfg[i], "suspect_timeout", "1s");
		set(&r->cfg[i], "push_pull_interval", "1s");
		set(&r->cfg[i], "request_timeout", "2s");
		if (i > 0)
			set(&r->cfg[i], "seeds", r->addr[0]);
	}
}

void crig_log(crig *r, size_t i)
{
	dkv_log_config lc;
	char err[256];

	char dir[sizeof(r->dir[i])];

	memcpy(dir, r->dir[i], sizeof(dir));
	snprintf(r->logpath[i], sizeof(r->logpath[i]), "%s.log", dir);
	dkv_log_config_init(&lc);
	lc.level = DKV_LOG_INFO;
	lc.path = r->logpath[i];
	cr_assert_eq(dkv_log_open(&r->log[i], &lc, err, sizeof(err)), 0, "%s", err);
}

size_t crig_log_count(crig *r, size_t i, const char *needle)
{
	char line[4096];
	size_t k = 0;
	FILE *f = fopen(r->logpath[i], "re");

	cr_assert_not_null(f, "no log for node %zu", i);
	while (fgets(line, sizeof(line), f) != NULL)
		k += strstr(line, needle) != NULL;
	fclose(f);
	return k;
}

void clear_got(crig *r)
{
	for (size_t i = 0; i < r->ngot; i++)
		free(r->got[i].frame);
	r->ngot = 0;
}

void close_node(crig *r, size_t i)
{
	sim_host_attach(r->sim, r->addr[i], NULL);
	/* a durability batch may still hold the stores: it ends within its
	 * virtual sync delay, so 5 s of virtual time is plenty */
	int rc = node_close(r->nd[i]);

	for (int k = 0; k < 1000 && rc == DKV_EBUSY; k++) {
		sim_run_for(r->sim, 5);
		rc = node_close(r->nd[i]);
	}
	cr_assert_eq(rc, 0, "node_close %s: %s (seed %llu)", r->addr[i], dkv_strerror(rc),
		     (unsigned long long)r->seed);
	r->nd[i] = NULL;
}

void crig_fini(crig *r)
{
	char cmd[128];

	for (size_t i = 0; i < r->n; i++) {
		if (r->nd[i] != NULL)
			close_node(r, i);
		dkv_config_free(&r->cfg[i]);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir[i]);
		cr_assert_eq(system(cmd), 0);
		if (r->log[i] != NULL) {
			dkv_log_close(r->log[i]);
			(void)unlink(r->logpath[i]);
		}
	}
	clear_got(r);
	sim_free(r->sim);
}

/* Send a client frame (in r's scratch buffer) to node i and run the world
 * until its reply comes (at most limit_ms virtual).  The decoded reply is
 * in *m (release it); returns false if none came. */
void crig_check(crig *r)
{
	char err[256];

	for (size_t i = 0; i < r->n; i++)
		if (r->nd[i] != NULL)
			cr_assert_eq(node_check(r->nd[i], err, sizeof(err)), 0, "node %s: %s (seed %llu)",
				     r->addr[i], err, (unsigned long long)r->seed);
}

bool crig_wait_reply(crig *r, size_t i, uint64_t client, proto_msg *m, uint64_t limit_ms)
{
	const proto_limits lim = { 1024, 1 << 20 };
	uint64_t deadline = sim_now(r->sim) + limit_ms;
	char err[256];

	for (;;) {
		for (size_t k = 0; k < r->ngot; k++) {
			got *g = &r->got[k];

			if (g->client != client || strcmp(g->addr, r->addr[i]) != 0)
				continue;
			cr_assert_eq(proto_decode(g->frame + 4, g->len - 4, &lim, m, err, sizeof(err)), 0,
				     "reply: %s", err);
			return true;
		}
		if (sim_now(r->sim) >= deadline)
			return false;
		sim_run_for(r->sim, 1);
		crig_check(r);
	}
}

bool call(crig *r, size_t i, msgpack_sbuffer *sb, proto_msg *m, uint64_t limit_ms)
{
	uint64_t client = 100 + i;

	clear_got(r);
	cr_assert_eq(node_request(r->nd[i], client, sb->data + 4, sb->size - 4), 0);
	return crig_wait_reply(r, i, client, m, limit_ms);
}

void crig_reopen(crig *r, size_t i, const char *key, const char *val)
{
	close_node(r, i);
	set(&r->cfg[i], key, val);
	open_node(r, i);
}

proto_opts opts_rw(int32_t rr, int32_t w)
{
	proto_opts o = { 0 };

	o.r = rr;
	o.w = w;
	return o;
}

/* put; returns the reply type (OK or ERROR; 0: no reply), error code in *code */
uint32_t put(crig *r, size_t i, const char *key, const char *val, int32_t w,
		    const void *ctx, size_t ctxlen, uint32_t *code)
{
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(0, w);
	proto_msg m;
	uint32_t type = 0;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, r->next_id++, key, strlen(key), val, strlen(val),
				      ctx, ctxlen, &o), 0);
	if (call(r, i, &sb, &m, 10000)) {
		type = m.type;
		*code = m.code;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}

/* get: 1 found with exactly one value equal to want (or want NULL and not
 * found), 0 otherwise, -1 error reply or none. */
int get_is(crig *r, size_t i, const char *key, const char *want, int32_t rr)
{
	msgpack_sbuffer sb;
	proto_opts o = opts_rw(rr, 0);
	proto_msg m;
	int res = -1;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_get(&sb, r->next_id++, key, strlen(key), &o), 0);
	if (call(r, i, &sb, &m, 10000)) {
		if (m.type == PROTO_VALUE) {
			if (want == NULL)
				res = !m.found;
			else
				res = m.found && m.nvalues == 1 && m.values[0].len == strlen(want) &&
				      memcmp(m.values[0].p, want, m.values[0].len) == 0;
		}
		if (getenv("CRIG_DEBUG") != NULL)
			fprintf(stderr, "get %s at %zu: type %u found %d nvalues %zu %.*s code %u %.*s\n",
				key, i, m.type, m.found, m.nvalues,
				m.nvalues ? (int)m.values[0].len : 0,
				m.nvalues ? (const char *)m.values[0].p : "", m.code,
				(int)m.message.len, (const char *)m.message.p);
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return res;
}

/* The INFO map of an admin command at node i, as a msgpack object in z
 * (caller destroys z). */
bool admin(crig *r, size_t i, const char *cmd, msgpack_zone *z, msgpack_object *out,
		  msgpack_sbuffer *raw)
{
	msgpack_sbuffer sb;
	proto_msg m;
	bool ok = false;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, NULL, 0), 0);
	if (call(r, i, &sb, &m, 1000) && m.type == PROTO_INFO) {
		if (raw != NULL)
			msgpack_sbuffer_write(raw, (const char *)m.info.p, m.info.len);
		ok = msgpack_unpack((const char *)m.info.p, m.info.len, NULL, z, out) ==
		     MSGPACK_UNPACK_SUCCESS;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return ok;
}

const msgpack_object *field(const msgpack_object *map, const char *k)
{
	return msg_field(map, k);
}

bool str_is(const msgpack_object *o, const char *s)
{
	return o != NULL && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
	       memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* Field `want` ("liveness", "status") of the member whose `by` ("addr",
 * "id") is `key`, in node i's members INFO, into buf ("?" if absent). */
const char *member_field(crig *r, size_t i, const char *by, const char *key,
				const char *want, char *buf, size_t len)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *ms;

	snprintf(buf, len, "?");
	msgpack_zone_init(&z, 4096);
	if (admin(r, i, "members", &z, &o, NULL) && (ms = field(&o, "members")) != NULL &&
	    ms->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t k = 0; k < ms->via.array.size; k++) {
			const msgpack_object *m = &ms->via.array.ptr[k];
			const msgpack_object *f = field(m, want);

			if (!str_is(field(m, by), key) || f == NULL)
				continue;
			if (f->type == MSGPACK_OBJECT_STR)
				snprintf(buf, len, "%.*s", (int)f->via.str.size, f->via.str.ptr);
			else if (f->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
				snprintf(buf, len, "%llu", (unsigned long long)f->via.u64);
		}
	}
	msgpack_zone_destroy(&z);
	return buf;
}

const char *liveness(crig *r, size_t i, const char *addr, char *buf, size_t len)
{
	return member_field(r, i, "addr", addr, "liveness", buf, len);
}

/* True when every live node has all n members in its ring and every node
 * prints the same ring. */
bool converged(crig *r)
{
	msgpack_sbuffer first, raw;
	bool same = true;

	msgpack_sbuffer_init(&first);
	for (size_t i = 0; i < r->n && same; i++) {
		node_stats st;
		msgpack_zone z;
		msgpack_object o;

		if (r->nd[i] == NULL)
			continue;
		node_stats_get(r->nd[i], &st);
		if (st.members != r->n || st.ring_epochs != 1) {
			same = false;
			break;
		}
		msgpack_zone_init(&z, 1 << 16);
		msgpack_sbuffer_init(&raw);
		if (!admin(r, i, "ring", &z, &o, &raw))
			same = false;
		else if (first.size == 0)
			msgpack_sbuffer_write(&first, raw.data, raw.size);
		else
			same = first.size == raw.size && memcmp(first.data, raw.data, raw.size) == 0;
		msgpack_sbuffer_destroy(&raw);
		msgpack_zone_destroy(&z);
	}
	msgpack_sbuffer_destroy(&first);
	return same;
}

uint64_t converge_ms(crig *r, uint64_t limit_ms)
{
	uint64_t t0 = sim_now(r->sim);

	while (!converged(r)) {
		cr_assert_lt(sim_now(r->sim) - t0, limit_ms,
			     "membership did not converge within %llu ms (seed %llu)",
			     (unsigned long long)limit_ms, (unsigned long long)r->seed);
		sim_run_for(r->sim, 100);
	}
	return sim_now(r->sim) - t0;
}

void lossy(crig *r, uint32_t loss_ppm)
{
	sim_net_opts o;

	sim_net_opts_init(&o);
	o.loss_ppm = loss_ppm;
	o.dup_ppm = 20000;
	o.delay_min_ms = 1;
	o.delay_max_ms = 15;
	o.reorder = true;
	sim_net_set(r->sim, &o);
}

void clean_net(crig *r)
{
	sim_net_opts o;

	sim_net_opts_init(&o);
	sim_net_set(r->sim, &o);
}

uint32_t admin1(crig *r, size_t i, const char *cmd, const char *arg)
{
	msgpack_sbuffer sb;
	proto_msg m;
	uint32_t type = 0;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, arg ? &arg : NULL, arg ? 1 : 0), 0);
	if (call(r, i, &sb, &m, 10000)) {
		type = m.type;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}

const char *status_of(crig *r, size_t i, const char *id, char *buf, size_t len)
{
	return member_field(r, i, "id", id, "status", buf, len);
}


uint32_t crig_write(crig *r, size_t i, const char *key, const char *val, const proto_opts *o,
		    uint32_t *code)
{
	msgpack_sbuffer sb;
	proto_msg m;
	uint32_t type = 0;

	msgpack_sbuffer_init(&sb);
	if (val != NULL)
		cr_assert_eq(proto_encode_put(&sb, r->next_id++, key, strlen(key), val, strlen(val),
					      NULL, 0, o), 0);
	else
		cr_assert_eq(proto_encode_delete(&sb, r->next_id++, key, strlen(key), NULL, 0, o), 0);
	if (code != NULL)
		*code = 0;
	if (call(r, i, &sb, &m, 10000)) {
		type = m.type;
		if (code != NULL)
			*code = m.code;
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}

uint64_t crig_admin_u64(crig *r, size_t i, const char *cmd, const char *name)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *f;
	uint64_t n;

	msgpack_zone_init(&z, 4096);
	cr_assert(admin(r, i, cmd, &z, &o, NULL), "%s at node %zu", cmd, i);
	f = field(&o, name);
	cr_assert(f != NULL && f->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "no %s in %s", name, cmd);
	n = f->via.u64;
	msgpack_zone_destroy(&z);
	return n;
}

uint64_t crig_metric(crig *r, size_t i, const char *series)
{
	msgpack_zone z;
	msgpack_object o;
	const msgpack_object *f;
	size_t sl = strlen(series);
	uint64_t v = 0;
	bool found = false;

	msgpack_zone_init(&z, 65536);
	cr_assert(admin(r, i, "metrics", &z, &o, NULL), "metrics at node %zu", i);
	f = field(&o, "text");
	cr_assert(f != NULL && f->type == MSGPACK_OBJECT_STR, "no text in metrics");
	for (const char *p = f->via.str.ptr, *end = p + f->via.str.size; p < end && !found;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (ll > sl + 1 && memcmp(p, series, sl) == 0 && p[sl] == ' ') {
			v = strtoull(p + sl + 1, NULL, 10);
			found = true;
		}
		p += ll + 1;
	}
	msgpack_zone_destroy(&z);
	cr_assert(found, "no series %s in node %zu's metrics", series, i);
	return v;
}

void crig_wait_liveness(crig *r, size_t who, const char *want)
{
	char buf[16];
	uint64_t t0 = sim_now(r->sim);

	for (size_t i = 0; i < r->n; i++)
		while (i != who && r->nd[i] != NULL &&
		       strcmp(liveness(r, i, r->addr[who], buf, sizeof(buf)), want) != 0) {
			cr_assert_lt(sim_now(r->sim) - t0, 30000, "node %zu sees %s as %s, not %s "
				     "(seed %llu)", i, r->addr[who], buf, want,
				     (unsigned long long)r->seed);
			sim_run_for(r->sim, 50);
		}
}

void crig_crash(crig *r, size_t who)
{
	sim_crash(r->sim, r->addr[who]);
	close_node(r, who);
	crig_wait_liveness(r, who, "down");
}

/* Run until the open nodes among the first n each see n members and one
 * ring epoch (every change's transfers done); fails after limit_ms. */
void crig_settle(crig *r, size_t n, uint64_t limit_ms)
{
	uint64_t t0 = sim_now(r->sim);

	for (;;) {
		bool done = true;

		for (size_t i = 0; i < n && done; i++) {
			node_stats st;

			if (r->nd[i] == NULL)
				continue;
			node_stats_get(r->nd[i], &st);
			done = st.members == n && st.ring_epochs == 1;
		}
		if (done)
			return;
		cr_assert_lt(sim_now(r->sim) - t0, limit_ms, "%zu nodes did not settle on one "
			     "ring epoch within %llu ms (seed %llu)", n,
			     (unsigned long long)limit_ms, (unsigned long long)r->seed);
		sim_run_for(r->sim, 100);
	}
}

/* How many of key's primaries hold it (the node's own copy, no quorum). */
size_t crig_holding(crig *r, size_t n, const char *key, const char *want)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		object *o = NULL;
		bool primary = false;

		cr_assert_eq(node_local_object(r->nd[i], key, strlen(key), &o, &primary), 0);
		if (primary && o != NULL && object_sibling_count(o) == 1 &&
		    object_sibling_at(o, 0)->value_len == strlen(want) &&
		    memcmp(object_sibling_at(o, 0)->value, want, strlen(want)) == 0)
			k++;
		object_free(o);
	}
	return k;
}

/* An admin command with two arguments: its answer's type, and its
 * message into msg. */
uint32_t crig_admin2(crig *r, size_t i, const char *cmd, const char *a1, const char *a2,
		       char *msg, size_t len)
{
	const char *args[2] = { a1, a2 };
	msgpack_sbuffer sb;
	uint32_t type = 0;
	proto_msg m;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_admin(&sb, r->next_id++, cmd, args, 2), 0);
	if (call(r, i, &sb, &m, 10000)) {
		type = m.type;
		snprintf(msg, len, "%.*s", (int)m.message.len, (const char *)m.message.p);
		proto_msg_release(&m);
	}
	msgpack_sbuffer_destroy(&sb);
	return type;
}
