#include "config.h"
/*
 * coord.c -- the get/put/delete state machines.  See coord.h for the
 * lifecycle every request follows.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "coord.h"
#include "error.h"
#include "siphash.h"

#define PID_BUCKETS      4096u             /* peer request ids -> req */
#define MAX_REPLICAS     DKV_CONFIG_N_MAX
/* A request's slots: its replicas (N, and while the ring changes, the
 * new owners of the key too), and fallbacks for primaries that fail
 * while it runs.  A replica past them is not asked: the quorum of its
 * epoch counts one fewer. */
#define MAX_SLOTS        (4 * MAX_REPLICAS)

typedef enum req_kind {
	RQ_WRITE,             /* a put or delete this node coordinates */
	RQ_GET,               /* a get this node coordinates */
	RQ_FWD,               /* a request forwarded to its coordinator */
} req_kind;

typedef enum req_state {
	RS_READING,           /* replace mode: reading the key, nothing written */
	RS_PENDING,           /* not answered */
	RS_LINGER,            /* answered; replicas or its own sync outstanding */
	RS_ABANDONED,         /* deadline passed; only its own sync outstanding */
} req_state;

typedef enum slot_state { SLOT_WAIT, SLOT_OK, SLOT_FAILED, SLOT_UNASKED } slot_state;

/* One replica a request asked: a primary, or a fallback standing in for
 * one (sloppy quorum). */
typedef struct slot {
	const char *addr;     /* interned; NULL for this node */
	const char *owner;    /* a fallback: the primary's id (interned); NULL for a primary */
	uint32_t member;      /* the primary it is, or stands in for (placement index) */
	uint8_t emask;        /* the ring epochs it counts in (bit j: q->enums[j]) */
	uint8_t state;        /* slot_state */
	bool found;           /* GET: the replica had the key */
	uint64_t hash;        /* GET: hash of its object's encoding */
} slot;

typedef struct req {
	coord *c;
	req_kind kind;
	req_state state;
	struct req *prev, *next;   /* the in-flight list */
	struct req *hnext;         /* its peer-id bucket */
	uint64_t client, id;       /* who asked, and their request id */
	uint64_t pid;              /* id of the messages sent for it */
	uint32_t type;             /* PROTO_GET, PROTO_PUT, PROTO_DELETE */
	const char *qname;         /* "w" or "r" (for messages) */
	uint32_t need;             /* acks/replies needed (W or R) */
	uint32_t need_primary;     /* of them from primaries (PW or PR) */
	bool replace;              /* WRITE: true iff replace mode (READING first) */
	bool report;               /* WRITE: true iff the OK carries the sibling count */
	bool stamps;               /* GET: true iff the VALUE carries timestamps */
	uint64_t ttl_ms;           /* PUT: the value's time to live (0: none) */
	uint32_t w, pw;            /* WRITE: its W and PW (need while READING is R) */
	uint32_t siblings;         /* WRITE: live siblings of the version written */
	uint32_t asked;            /* replicas asked */
	uint32_t acks, primary_acks, failed;
	uint8_t emask;             /* the epochs whose quorums it needs (0: no ring) */
	uint8_t nep;               /* epochs planned: bit j is epoch number enums[j] */
	uint64_t enums[EPOCHS_MAX];
	uint32_t eacks[EPOCHS_MAX], epacks[EPOCHS_MAX];   /* acks, primary acks, per epoch */
	uint32_t reachable;        /* primaries not down when it started */
	int first_err;             /* the first replica's error */
	uint64_t started_ms;
	uint64_t started_us;       /* for the latency histogram */
	uint32_t timeout_ms;
	world_timer *timer;        /* the deadline; NULL once fired */
	uint8_t *ctx;              /* WRITE: the written object's context */
	size_t ctxlen;
	uint8_t *key;              /* GET, WRITE: the key (GET: for read repair) */
	size_t keylen;
	uint8_t *value;            /* replace-mode PUT: the value, kept while READING */
	size_t valuelen;
	object *merged;            /* GET, READING: what the replicas said, merged */
	slot slots[MAX_SLOTS];
	uint32_t nslots;
	uint32_t next_fb;          /* the preference list's next fallback to try */
	uint32_t local;            /* this node's store for the key (a partition,
	                            * or a hint store when it stands in) */
	const char *target;        /* FWD: the coordinator (interned) */
	bool syncing;              /* true iff its durability wait is queued */
	durable_waiter wt;         /* WRITE: that wait */
} req;

struct coord {
	coord_env env;
	req inflight;              /* list head (sentinel) */
	size_t ninflight;
	req *by_pid[PID_BUCKETS];
	uint64_t next_pid;
	msgpack_sbuffer ob;        /* an object being encoded */
	msgpack_sbuffer pb;        /* a peer message being built */
	siphash_key hkey;          /* for comparing replicas' objects */
	hist *lat;                 /* latency of answered requests, microseconds */
	coord_stats st;
	coord_metrics mt;          /* by operation and result (metrics.h) */
};

int coord_new(coord **out, const coord_env *env)
{
	coord *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->env = *env;
	c->inflight.next = c->inflight.prev = &c->inflight;
	msgpack_sbuffer_init(&c->ob);
	msgpack_sbuffer_init(&c->pb);
	if (hist_new(&c->lat) != 0 || hist_new(&c->mt.siblings) != 0 ||
	    hist_new(&c->mt.latency_us[METRICS_GET]) != 0 ||
	    hist_new(&c->mt.latency_us[METRICS_PUT]) != 0 ||
	    hist_new(&c->mt.latency_us[METRICS_DELETE]) != 0 ||
	    siphash_key_random(&c->hkey) != 0) {
		coord_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

static void count_latency(coord *c, uint64_t started_us)
{
	uint64_t us = c->env.w->ops->now_us(c->env.w) - started_us;

	hist_record(c->lat, us);
	if (c->env.cap != NULL)
		capacity_record(c->env.cap, c->env.w->ops->now_ms(c->env.w), us);
}

static int op_of(uint32_t type)
{
	return type == PROTO_GET ? METRICS_GET : type == PROTO_PUT ? METRICS_PUT : METRICS_DELETE;
}

/* A request answered to a client of this node: count it by operation and
 * result (METRICS_RESULT_*), and its latency since started_us (0: none
 * known).  One forwarded here by another node is counted there, where its
 * client is, with the result relayed (on_fwdreply). */
static void count_answer(coord *c, uint64_t client, uint32_t type, int result,
			 uint64_t started_us)
{
	int op = op_of(type);

	if (client & REPLY_REMOTE_BIT)
		return;
	if (result >= 0 && result < METRICS_NRESULTS)
		c->mt.requests[op][result]++;
	if (started_us != 0)
		hist_record(c->mt.latency_us[op],
			    c->env.w->ops->now_us(c->env.w) - started_us);
}

static int result_of_code(uint32_t code)
{
	return code >= 1 && code <= 12 ? METRICS_RESULT_ERR + (int)code - 1 :
					 METRICS_RESULT_ERR + PROTO_ERR_INTERNAL - 1;
}

/* An error answer for a request of type `type` that has no req yet. */
static void m_error(coord *c, uint32_t type, uint64_t client, uint64_t id, uint32_t code,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void m_error(coord *c, uint32_t type, uint64_t client, uint64_t id, uint32_t code,
		    const char *fmt, ...)
{
	char msg[PROTO_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	count_answer(c, client, type, result_of_code(code), 0);
	reply_error(c->env.rp, client, id, code, "%s", msg);
}

/* An error answer for request q. */
static void q_error(coord *c, const req *q, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void q_error(coord *c, const req *q, uint32_t code, const char *fmt, ...)
{
	char msg[PROTO_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	count_answer(c, q->client, q->type, result_of_code(code), q->started_us);
	reply_error(c->env.rp, q->client, q->id, code, "%s", msg);
}

static void q_store_error(coord *c, const req *q, int rc, const char *what)
{
	count_answer(c, q->client, q->type,
		     result_of_code(rc == DKV_ETOOBIG ? PROTO_ERR_TOOBIG : PROTO_ERR_STORAGE),
		     q->started_us);
	reply_store_error(c->env.rp, q->client, q->id, rc, what);
}

static uint32_t outstanding(const req *q)
{
	return q->asked - q->acks - q->failed;
}

/* One request against the lifecycle table of coord.h. */
static int req_check(const req *q, char *err, size_t errlen)
{
	const char *why = NULL;

	if (q->acks + q->failed > q->asked)
		why = "more answers than replicas asked";
	else if (q->primary_acks > q->acks)
		why = "more primary acks than acks";
	else if (q->nslots > MAX_SLOTS || (q->kind != RQ_FWD && q->asked > q->nslots))
		why = "more replicas asked than slots";
	else if (q->state == RS_PENDING && q->timer == NULL)
		why = "PENDING without a deadline";
	else if (q->state == RS_LINGER && q->timer == NULL)
		why = "LINGER without a deadline";
	else if (q->state == RS_LINGER && outstanding(q) == 0 && !q->syncing)
		why = "LINGER with nothing outstanding";
	else if (q->state == RS_ABANDONED && (q->timer != NULL || !q->syncing))
		why = "ABANDONED with a deadline or without its sync";
	else if (q->syncing && q->kind != RQ_WRITE)
		why = "a durability wait on a request that is not a write";
	else if (q->kind == RQ_FWD && q->state != RS_PENDING)
		why = "a forwarded request past PENDING";
	else if (q->state == RS_READING && (q->kind != RQ_WRITE || !q->replace))
		why = "READING in a request that is not a replace-mode write";
	else if (q->state == RS_READING && q->timer == NULL)
		why = "READING without a deadline";
	else if (q->state == RS_READING && (q->syncing || q->ctx != NULL))
		why = "READING with a version made or being synced";
	else if (q->state == RS_READING && outstanding(q) == 0)
		why = "READING with nothing outstanding";
	else if (q->kind == RQ_WRITE && q->state != RS_READING && q->merged != NULL)
		why = "a write past READING still holds what it read";
	if (why == NULL)
		return 0;
	snprintf(err, errlen, "request %" PRIu64 " (kind %d, state %d): %s", q->pid, (int)q->kind,
		 (int)q->state, why);
	return -1;
}

static void req_assert(const req *q)
{
	char err[160];

	(void)err;
	assert(req_check(q, err, sizeof(err)) == 0);
}

int coord_check(const coord *c, char *err, size_t errlen)
{
	size_t n = 0;

	for (const req *q = c->inflight.next; q != &c->inflight; q = q->next) {
		const req *h;

		if (req_check(q, err, errlen) != 0)
			return -1;
		for (h = c->by_pid[q->pid % PID_BUCKETS]; h != NULL && h != q; h = h->hnext)
			;
		if (h == NULL) {
			snprintf(err, errlen, "request %" PRIu64 " is not in its id bucket", q->pid);
			return -1;
		}
		n++;
	}
	if (n != c->ninflight) {
		snprintf(err, errlen, "%zu requests listed, %zu counted", n, c->ninflight);
		return -1;
	}
	return 0;
}

/* --- quorums -------------------------------------------------------------- */

/* Resolve one quorum option (0: dflt) against the replicas of a key.
 * Returns false after replying with an error. */
static bool quorum(coord *c, uint32_t type, uint64_t client, uint64_t id, const char *name,
		   int32_t opt, int32_t dflt, uint32_t *out)
{
	int32_t q = opt != 0 ? opt : dflt;

	if (q == 0) {
		*out = 0;
		return true;
	}
	*out = dkv_config_quorum(q, c->env.n_val);
	if (*out > c->env.n_val) {
		m_error(c, type, client, id, PROTO_ERR_INVALID, "%s=%u exceeds n_val=%u",
			    name, *out, c->env.n_val);
		return false;
	}
	return true;
}

/* The message for a quorum that cannot be met. */
static void reply_quorum(coord *c, uint32_t type, uint64_t client, uint64_t id, const char *name,
			 uint32_t got, uint32_t need, bool primary, uint32_t reachable,
			 const char *note)
{
	m_error(c, type, client, id, PROTO_ERR_QUORUM,
		    "quorum not met: %u of %s=%u %sreplicas answered (%u of n_val=%u replicas "
		    "reachable)%s", got, name, need, primary ? "primary " : "", reachable,
		    c->env.n_val, note);
}

/* What a replace-mode write that failed while READING adds to its error. */
#define NOTHING_WRITTEN "; a replace-mode write reads the key first: nothing was written"

/* The VALUE answer for obj (NULL: nothing stored); *live gets the number
 * of live values it carries.  A value whose expiry has come (by this
 * node's clock) is not one of them: it reads, and counts, as a tombstone. */
static int encode_value(coord *c, uint64_t id, const object *obj, bool stamps, size_t *live)
{
	size_t ns = obj != NULL ? object_sibling_count(obj) : 0;
	proto_bytes *vals = calloc(ns ? ns : 1, sizeof(*vals));
	/* timestamps and expiries only for a GET that asked (every GET runs here) */
	uint64_t *ts = stamps ? calloc(ns ? ns : 1, sizeof(*ts)) : NULL;
	uint64_t *ex = stamps ? calloc(ns ? ns : 1, sizeof(*ex)) : NULL;
	uint64_t now = c->env.w->ops->wall_ms(c->env.w), tomb = 0;
	size_t nvals = 0;
	int rc = -ENOMEM;

	c->ob.size = 0;
	if (vals == NULL || (stamps && (ts == NULL || ex == NULL)) ||
	    (obj != NULL && object_context_encode(obj, &c->ob) != 0))
		goto out;
	for (size_t i = 0; i < ns; i++) {
		const object_sibling *s = object_sibling_at(obj, i);

		if (s->tombstone || object_sibling_expired(s, now)) {
			tomb++;
			continue;
		}
		vals[nvals].p = s->value;
		vals[nvals].len = s->value_len;
		if (stamps) {
			ts[nvals] = s->timestamp;
			ex[nvals] = s->expires;
		}
		nvals++;
	}
	rc = proto_encode_value_stamps(reply_buf(c->env.rp), id, nvals > 0, vals, ts, ex, nvals,
				       c->ob.data, c->ob.size, tomb);
	*live = nvals;
out:
	free(vals);
	free(ts);
	free(ex);
	return rc;
}

/* --- requests in flight --------------------------------------------------- */

/* A new request, PENDING but not armed (req_arm gives it its deadline). */
static req *req_new(coord *c, req_kind kind, uint64_t client, uint64_t id, uint32_t timeout_ms)
{
	req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->c = c;
	q->kind = kind;
	q->state = RS_PENDING;
	q->client = client;
	q->id = id;
	q->pid = ++c->next_pid;
	q->started_ms = c->env.w->ops->now_ms(c->env.w);
	q->started_us = c->env.w->ops->now_us(c->env.w);
	q->timeout_ms = timeout_ms ? timeout_ms : c->env.cfg->request_timeout;
	q->next = &c->inflight;
	q->prev = c->inflight.prev;
	q->prev->next = q;
	c->inflight.prev = q;
	c->ninflight++;
	q->hnext = c->by_pid[q->pid % PID_BUCKETS];
	c->by_pid[q->pid % PID_BUCKETS] = q;
	return q;
}

static req *req_by_pid(coord *c, uint64_t pid)
{
	for (req *q = c->by_pid[pid % PID_BUCKETS]; q != NULL; q = q->hnext)
		if (q->pid == pid)
			return q;
	return NULL;
}

static void req_free(coord *c, req *q)
{
	req **pp = &c->by_pid[q->pid % PID_BUCKETS];

	assert(!q->syncing);
	while (*pp != q)
		pp = &(*pp)->hnext;
	*pp = q->hnext;
	if (q->timer != NULL)
		c->env.w->ops->timer_cancel(c->env.w, q->timer);
	q->prev->next = q->next;
	q->next->prev = q->prev;
	c->ninflight--;
	object_free(q->merged);
	free(q->ctx);
	free(q->key);
	free(q->value);
	free(q);
}

static void req_timeout(void *arg);

static bool req_arm(coord *c, req *q)
{
	q->timer = c->env.w->ops->timer_add(c->env.w, q->timeout_ms, req_timeout, q);
	return q->timer != NULL;
}

static void req_finish(coord *c, req *q);
static void write_fallback(coord *c, req *q, uint32_t i);

/* A replica's answer: slot i of q succeeded (rc 0) or failed. */
static void slot_done(coord *c, req *q, uint32_t i, int rc)
{
	if (q->slots[i].state != SLOT_WAIT)
		return;
	if (rc == 0) {
		q->slots[i].state = SLOT_OK;
		q->acks++;
		if (q->slots[i].owner == NULL)
			q->primary_acks++;   /* PW and PR count primaries only */
		for (unsigned e = 0; e < EPOCHS_MAX; e++)
			if (q->slots[i].emask & (1u << e)) {
				q->eacks[e]++;
				q->epacks[e] += q->slots[i].owner == NULL;
			}
	} else {
		q->slots[i].state = SLOT_FAILED;
		q->failed++;
		if (q->first_err == 0)
			q->first_err = rc;
		if (q->kind == RQ_WRITE && q->state == RS_PENDING && q->slots[i].owner == NULL &&
		    q->slots[i].addr != NULL)
			write_fallback(c, q, i);   /* a primary failed: the next fallback */
	}
	req_finish(c, q);
}

/* True iff q has its quorum: R or W answers (PR or PW of them from
 * primaries) in every ring epoch it counts in. */
static bool met(const req *q)
{
	if (q->emask == 0)
		return q->acks >= q->need && q->primary_acks >= q->need_primary;
	for (unsigned e = 0; e < EPOCHS_MAX; e++)
		if ((q->emask & (1u << e)) &&
		    (q->eacks[e] < q->need || q->epacks[e] < q->need_primary))
			return false;
	return true;
}

/* The answers of the epoch furthest from its quorum (for the error). */
static void shortfall(const req *q, uint32_t *acks, uint32_t *packs)
{
	*acks = q->acks;
	*packs = q->primary_acks;
	for (unsigned e = 0; e < EPOCHS_MAX; e++)
		if (q->emask & (1u << e)) {
			if (q->eacks[e] < *acks)
				*acks = q->eacks[e];
			if (q->epacks[e] < *packs)
				*packs = q->epacks[e];
		}
}

static void read_repair(coord *c, req *q);
static void write_apply(coord *c, req *q, const object_vv *ctx, const void *val, size_t vlen);

/* READING: once R replies (PR of them primaries) are in, make the write
 * (READING -> PENDING); once they cannot be, answer and free q, nothing
 * written.  Replies still outstanding are not waited for: the write
 * brings every replica it reaches past what they would have said. */
static void read_finish(coord *c, req *q)
{
	uint32_t got, pgot;

	if (met(q)) {
		write_apply(c, q, NULL, q->value, q->valuelen);   /* may free q */
		return;
	}
	if (outstanding(q) > 0) {
		req_assert(q);
		return;
	}
	shortfall(q, &got, &pgot);
	if (q->acks == 0 && q->first_err != 0 && q->first_err != DKV_ECLOSED)
		q_store_error(c, q, q->first_err,
				  "read failed" NOTHING_WRITTEN);
	else if (pgot < q->need_primary)
		reply_quorum(c, q->type, q->client, q->id, "pr", pgot, q->need_primary, true,
			     q->reachable, NOTHING_WRITTEN);
	else
		reply_quorum(c, q->type, q->client, q->id, "r", got, q->need, false, q->reachable,
			     NOTHING_WRITTEN);
	req_free(c, q);
}

static bool extend_epochs(coord *c, req *q);

/* Answer q if its outcome is known (PENDING -> LINGER); free it once
 * nothing will call back.  READING has its own: read_finish. */
static void req_finish(coord *c, req *q)
{
	uint32_t left = outstanding(q);
	reply *rp = c->env.rp;

	if (q->state == RS_READING) {
		read_finish(c, q);
		return;
	}
	if (q->state == RS_PENDING) {
		if (met(q) && q->kind == RQ_WRITE && extend_epochs(c, q))
			left = outstanding(q);
		if (met(q)) {
			size_t live = 1;
			int rc;

			if (q->kind == RQ_GET)
				rc = encode_value(c, q->id, q->merged, q->stamps, &live);
			else if (q->report)
				rc = proto_encode_ok_siblings(reply_buf(rp), q->id, q->ctx, q->ctxlen,
							      q->siblings);
			else
				rc = proto_encode_ok(reply_buf(rp), q->id, q->ctx, q->ctxlen);
			if (rc == 0) {
				reply_send_buf(rp, q->client);
				if (q->type == PROTO_GET)
					c->st.gets++;
				else if (q->type == PROTO_PUT)
					c->st.puts++;
				else
					c->st.deletes++;
				count_latency(c, q->started_us);
				count_answer(c, q->client, q->type, live > 0 ? METRICS_RESULT_OK :
					     METRICS_RESULT_NOT_FOUND, q->started_us);
				if (q->kind == RQ_GET && live > 0)
					hist_record(c->mt.siblings, live);
			} else
				q_error(c, q, PROTO_ERR_INTERNAL, "out of memory");
			q->state = RS_LINGER;
		} else if (left == 0 && !q->syncing) {
			uint32_t got, pgot;

			shortfall(q, &got, &pgot);
			if (q->acks == 0 && q->first_err != 0 && q->first_err != DKV_ECLOSED)
				q_store_error(c, q, q->first_err,
						  q->kind == RQ_GET ? "read failed" : "write failed");
			else if (pgot < q->need_primary)
				reply_quorum(c, q->type, q->client, q->id, q->kind == RQ_GET ? "pr" : "pw",
					     pgot, q->need_primary, true, q->reachable, "");
			else
				reply_quorum(c, q->type, q->client, q->id, q->qname, got, q->need, false,
					     q->reachable, "");
			q->state = RS_LINGER;
		}
	}
	if (q->state == RS_LINGER && left == 0 && !q->syncing) {
		if (q->kind == RQ_GET)
			read_repair(c, q);
		req_free(c, q);
		return;
	}
	req_assert(q);
}

/* At debug level, who a timed-out request was waiting for. */
static void log_timeout(coord *c, const req *q)
{
	char buf[512];
	size_t k = 0;

	if (c->env.log == NULL || !dkv_log_enabled(c->env.log, DKV_LOG_DEBUG))
		return;
	buf[0] = '\0';
	for (uint32_t i = 0; i < q->nslots && k < sizeof(buf) - 64; i++) {
		static const char *const names[] = { "waiting", "ok", "failed", "unasked" };
		const slot *sl = &q->slots[i];

		k += (size_t)snprintf(buf + k, sizeof(buf) - k, "%s%s%s %s", i ? ", " : "",
				      sl->addr ? sl->addr : "self", sl->owner ? " (fallback)" : "",
				      names[sl->state]);
	}
	dkv_log_opt(c->env.log, DKV_LOG_DEBUG, "request %llu timed out after %u ms (state %d, "
		    "%u acks of %u): %s", (unsigned long long)q->pid, q->timeout_ms, (int)q->state,
		    q->acks, q->need, buf);
}

static void req_timeout(void *arg)
{
	req *q = arg;
	coord *c = q->c;

	q->timer = NULL;   /* fired: the world has freed it */
	if (q->state == RS_READING || q->state == RS_PENDING)
		log_timeout(c, q);   /* what the client's error is about */
	if (q->state == RS_READING) {
		q_error(c, q, PROTO_ERR_TIMEOUT,
			    "request timed out after %u ms: %u of r=%u replicas answered" NOTHING_WRITTEN,
			    q->timeout_ms, q->acks, q->need);
		req_free(c, q);
		return;
	}
	if (q->state == RS_PENDING) {
		if (q->kind == RQ_FWD)
			q_error(c, q, PROTO_ERR_TIMEOUT,
				    "request timed out after %u ms: its coordinator %s did not answer",
				    q->timeout_ms, q->target);
		else
			q_error(c, q, PROTO_ERR_TIMEOUT,
				    "request timed out after %u ms: %u of %s=%u replicas answered",
				    q->timeout_ms, q->acks, q->qname, q->need);
	}
	/* Replicas that have not answered will not be waited for (an answer
	 * lost with a refused send never comes); its own durability wait
	 * cannot be cancelled, so it waits for that alone. */
	if (q->syncing) {
		q->state = RS_ABANDONED;
		req_assert(q);
		return;
	}
	if (q->kind == RQ_GET)
		read_repair(c, q);
	req_free(c, q);
}

/* --- gets ----------------------------------------------------------------- */

/* Merge one replica's answer (obj NULL: not found) into q. */
static int get_absorb(coord *c, req *q, uint32_t i, const object *obj)
{
	slot *s = &q->slots[i];

	s->found = obj != NULL;
	if (obj == NULL)
		return 0;
	c->ob.size = 0;
	if (object_encode(obj, &c->ob) == 0)
		s->hash = siphash24(&c->hkey, c->ob.data, c->ob.size);
	if (q->merged == NULL)
		return object_clone(obj, &q->merged);
	return object_merge(q->merged, obj);
}

/* Once every replica asked has answered (or the request timed out): send
 * the merged object to each replica that answered with something else. */
static void read_repair(coord *c, req *q)
{
	uint32_t p;
	uint64_t h;
	bool wrote;

	if (q->merged == NULL || q->key == NULL)
		return;
	c->ob.size = 0;
	if (object_encode(q->merged, &c->ob) != 0)
		return;
	h = siphash24(&c->hkey, c->ob.data, c->ob.size);
	p = placement_partition(c->env.pl, q->key, q->keylen);
	for (uint32_t i = 0; i < q->nslots; i++) {
		slot *s = &q->slots[i];

		/* primaries only: a fallback's copy would only be handed off
		 * again (riak_kv#1845) */
		if (s->state != SLOT_OK || s->owner != NULL || (s->found && s->hash == h))
			continue;
		c->st.read_repairs++;
		if (s->addr == NULL) {
			if (vnode_merge(c->env.vs, p, q->key, q->keylen, q->merged, &wrote) != 0)
				c->st.read_repairs--;
			continue;
		}
		(void)replica_push(c->env.rep, s->addr, 0, q->key, q->keylen, c->ob.data, c->ob.size,
				   false, NULL);
	}
	object_free(q->merged);
	q->merged = NULL;
}

/* The next fallback of partition p, from q->next_fb on in the newest
 * epoch's preference list, that is no owner of p (in any active epoch),
 * not down and not used yet: its member index, or -1. */
static long next_fallback(coord *c, req *q, uint32_t p)
{
	placement *pl = c->env.pl;
	uint32_t nm;
	const uint32_t *list = placement_preflist(pl, p, &nm);

	while (q->next_fb < nm) {
		uint32_t m = list[q->next_fb++];

		if (!placement_is_owner(pl, p, m) && !placement_is_down(pl, m))
			return m;
	}
	return -1;
}

/* The slot for member u, a primary of p in epoch e: a slot it has
 * already (from another epoch) counts in e too; else a new one, for u or,
 * when u is down, for the next fallback standing in for it. */
static void plan_member(coord *c, req *q, uint32_t p, uint32_t u, unsigned e)
{
	placement *pl = c->env.pl;
	slot *s;
	long f;

	for (uint32_t i = 0; i < q->nslots; i++)
		if (q->slots[i].member == u) {
			q->slots[i].emask |= (uint8_t)(1u << e);
			return;
		}
	if (q->nslots >= MAX_SLOTS)
		return;   /* not asked: counted in no epoch */
	s = &q->slots[q->nslots++];
	memset(s, 0, sizeof(*s));
	s->member = u;
	s->emask = (uint8_t)(1u << e);
	s->state = SLOT_WAIT;
	if (!placement_is_down(pl, u)) {
		s->addr = placement_is_self(pl, u) ? NULL : placement_addr(pl, u);
		return;
	}
	if ((f = next_fallback(c, q, p)) < 0 ||
	    (s->owner = placement_intern(pl, placement_member_id(pl, u))) == NULL) {
		s->addr = placement_addr(pl, u);
		s->owner = NULL;
		s->state = SLOT_UNASKED;
		return;
	}
	s->addr = placement_is_self(pl, (uint32_t)f) ? NULL : placement_addr(pl, (uint32_t)f);
}

/* Plan q's slots over the key's primaries -- for a write, in every
 * active ring epoch; for a read, in the read epoch -- each primary that is
 * not down, and for each one that is, the next fallback standing in for
 * it (sloppy quorum).  This node's slot, if any, comes first; q->local is
 * its store.  Returns false after answering (a hint store that cannot be
 * had). */
static bool plan_slots(coord *c, req *q, uint32_t p, bool write)
{
	placement *pl = c->env.pl;
	size_t ne = placement_epochs(pl), rd = placement_read_epoch(pl);

	q->nslots = 0;
	q->next_fb = 0;
	q->local = p;
	q->emask = 0;
	q->nep = 0;
	memset(q->eacks, 0, sizeof(q->eacks));
	memset(q->epacks, 0, sizeof(q->epacks));
	for (size_t j = 0; j < (write ? ne : (ne > 0)); j++) {
		/* the read epoch first, then the others newest first */
		size_t e = j == 0 ? rd : ne - j - (ne - j <= rd);
		uint32_t np;
		const uint32_t *list = placement_epoch_primaries(pl, e, p, &np);

		q->enums[q->nep] = placement_epoch_id(pl, e).number;
		q->emask |= (uint8_t)(1u << q->nep);
		for (uint32_t i = 0; i < np; i++)
			plan_member(c, q, p, list[i], q->nep);
		q->nep++;
	}
	for (uint32_t i = 1; i < q->nslots; i++)
		if (q->slots[i].addr == NULL && q->slots[i].state == SLOT_WAIT) {
			slot t = q->slots[i];   /* this node's slot first */

			memmove(&q->slots[1], &q->slots[0], i * sizeof(t));
			q->slots[0] = t;
			break;
		}
	if (q->nslots > 0 && q->slots[0].addr == NULL && q->slots[0].state == SLOT_WAIT &&
	    q->slots[0].owner != NULL) {
		int rc = handoff_store(c->env.ho, q->slots[0].owner, q->kind == RQ_WRITE, &q->local);

		if (rc == DKV_ENOTFOUND)
			q->local = UINT32_MAX;   /* a read: no hints held, not found */
		else if (rc != 0) {
			q_store_error(c, q, rc,
					  "this node stands in for a down replica and cannot keep "
					  "its hint");
			req_free(c, q);
			return false;
		}
	}
	return true;
}

/* This node's copy of q's key, from q->local. */
static int local_read(coord *c, req *q, object **obj)
{
	*obj = NULL;
	if (q->local == UINT32_MAX)
		return 0;
	return vnode_read(c->env.vs, q->local, q->key, q->keylen, obj);
}

/* Ask the key's first N reachable replicas (primaries, fallbacks for the
 * down ones) for their copy: a GET, or the READING phase of a replace-mode
 * write.  q is armed, its need set.  The others are asked first, so that
 * this node's synchronous answer finds them counted; it may answer and
 * free q. */
static void read_start(coord *c, req *q)
{
	placement *pl = c->env.pl;
	uint32_t p = placement_partition(pl, q->key, q->keylen);

	if (!plan_slots(c, q, p, false))
		return;
	for (uint32_t i = 0; i < q->nslots; i++) {
		slot *s = &q->slots[i];

		if (s->state != SLOT_WAIT)
			continue;
		q->reachable++;
		if (s->addr == NULL) {
			q->asked++;
			continue;
		}
		c->pb.size = 0;
		if (peer_encode_rget(&c->pb, q->pid, *c->env.self, q->key, q->keylen, s->owner) != 0 ||
		    c->env.w->ops->send(c->env.w, s->addr, c->pb.data, c->pb.size) != 0) {
			s->state = SLOT_UNASKED;
			continue;
		}
		q->asked++;
	}
	if (q->asked == 0) {
		req_finish(c, q);
		return;
	}
	req_assert(q);
	if (q->nslots > 0 && q->slots[0].addr == NULL && q->slots[0].state == SLOT_WAIT) {
		object *obj = NULL;
		int rc = local_read(c, q, &obj);

		if (rc == 0)
			rc = get_absorb(c, q, 0, obj);
		object_free(obj);
		slot_done(c, q, 0, rc);   /* may answer and free q */
	}
}

/* A new request for m's key (copied), armed; NULL after answering. */
static req *req_start(coord *c, req_kind kind, uint64_t client, const proto_msg *m)
{
	req *q = req_new(c, kind, client, m->id, m->opts.timeout_ms);

	if (q != NULL && (q->key = malloc(m->key.len)) != NULL && req_arm(c, q)) {
		memcpy(q->key, m->key.p, m->key.len);
		q->keylen = m->key.len;
		q->type = m->type;
		return q;
	}
	if (q != NULL)
		req_free(c, q);
	m_error(c, m->type, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
	return NULL;
}

void coord_get(coord *c, uint64_t client, const proto_msg *m)
{
	uint32_t r, pr;
	req *q;

	if (!quorum(c, m->type, client, m->id, "r", m->opts.r, c->env.cfg->r, &r) ||
	    !quorum(c, m->type, client, m->id, "pr", m->opts.pr, 0, &pr))
		return;
	if ((q = req_start(c, RQ_GET, client, m)) == NULL)
		return;
	q->qname = "r";
	q->stamps = m->opts.stamps;
	q->need = r > pr ? r : pr;
	q->need_primary = pr;
	read_start(c, q);
}

/* A replica's RVALUE for one of our gets. */
static void on_rvalue(coord *c, req *q, const char *from, const peer_msg *pm)
{
	object *obj = NULL;
	int rc;

	if (q->kind != RQ_GET && q->state != RS_READING)
		return;   /* a late answer to a replace-mode read: its write is made */
	for (uint32_t i = 0; i < q->nslots; i++) {
		if (q->slots[i].addr != from || q->slots[i].state != SLOT_WAIT)
			continue;
		if (pm->code != 0)
			rc = proto_error_to_dkv(pm->code);
		else if (pm->has_data &&
			 (rc = object_decode(pm->data, pm->datalen, &c->env.olim, &obj)) != 0)
			dkv_log_opt(c->env.log, DKV_LOG_WARNING, "replica %s sent an object that fails to decode: %s",
			      from, dkv_strerror(rc));
		else
			rc = get_absorb(c, q, i, obj);
		object_free(obj);
		slot_done(c, q, i, rc);
		return;
	}
}

/* --- writes --------------------------------------------------------------- */

/* Forward a client's write to its coordinator (this node is not it): the
 * first primary of its key that is not down, or when every primary is
 * down, the first node of the preference list that is not.  A candidate
 * the world cannot send to (a connection in its reconnect backoff: SWIM
 * may see a restarted node up before our TCP connection to it is back)
 * is passed over for the next one of the same kind. */
static void forward(coord *c, uint64_t client, const proto_msg *m, const void *payload,
		    size_t len, uint32_t p)
{
	placement *pl = c->env.pl;
	uint32_t n, nm;
	const uint32_t *own = placement_owners(pl, p, &n), *pref = placement_preflist(pl, p, &nm);
	const uint32_t *list = own;
	uint32_t to_n = n;
	const char *first = NULL;
	req *q;

	for (uint32_t i = 0; i < n; i++)
		if (!placement_is_down(pl, own[i]))
			goto tried;
	list = pref;   /* no owner up: the newest epoch's list, in order */
	to_n = nm;
tried:
	q = req_new(c, RQ_FWD, client, m->id, m->opts.timeout_ms);
	if (q == NULL) {
		m_error(c, m->type, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		return;
	}
	q->type = m->type;
	/* a little longer than the coordinator's own deadline, so its
	 * answer (often a timeout that says more) wins */
	q->timeout_ms += q->timeout_ms / 10 + 100;
	c->pb.size = 0;
	if (!req_arm(c, q) || peer_encode_fwd(&c->pb, q->pid, *c->env.self, payload, len) != 0) {
		m_error(c, m->type, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		req_free(c, q);
		return;
	}
	for (uint32_t i = 0; i < to_n; i++) {
		const char *to;

		if (placement_is_down(pl, list[i]) || placement_is_self(pl, list[i]) ||
		    (to = placement_addr(pl, list[i])) == NULL)
			continue;
		if (first == NULL)
			first = to;
		if (c->env.w->ops->send(c->env.w, to, c->pb.data, c->pb.size) == 0) {
			q->target = to;
			req_assert(q);
			c->st.forwarded++;
			return;
		}
	}
	if (first == NULL)
		reply_quorum(c, m->type, client, m->id, "w", 0,
			     dkv_config_quorum(m->opts.w ? m->opts.w : c->env.cfg->w, c->env.n_val),
			     false, 0, "");
	else
		m_error(c, m->type, client, m->id, PROTO_ERR_QUORUM,
			    "quorum not met: could not reach %s, the coordinator for this key, "
			    "nor another", first);
	req_free(c, q);
}

/* How the coordinator's answer frame (FWDREPLY's) ended the request. */
static int relayed_result(coord *c, const void *frame, size_t len)
{
	proto_limits lim = { .max_key = c->env.cfg->max_key_size,
			     .max_value = c->env.cfg->max_value_size };
	proto_msg m;
	int result = METRICS_RESULT_ERR + PROTO_ERR_PROTOCOL - 1;

	if (len > PROTO_HEADER_SIZE &&
	    proto_decode((const uint8_t *)frame + PROTO_HEADER_SIZE, len - PROTO_HEADER_SIZE,
			 &lim, &m, NULL, 0) == 0) {
		result = m.type == PROTO_ERROR ? result_of_code(m.code) : METRICS_RESULT_OK;
		proto_msg_release(&m);
	}
	return result;
}

static void on_fwdreply(coord *c, req *q, const peer_msg *pm)
{
	if (q->kind != RQ_FWD)
		return;
	reply_frame(c->env.rp, q->client, pm->data, pm->datalen);
	count_latency(c, q->started_us);
	count_answer(c, q->client, q->type, relayed_result(c, pm->data, pm->datalen),
		     q->started_us);
	if (q->type == PROTO_PUT)
		c->st.puts++;
	else if (q->type == PROTO_DELETE)
		c->st.deletes++;
	req_free(c, q);
}

/* Its own store's append is durable (or failed): slot 0's answer. */
static void write_synced(void *arg, int rc)
{
	req *q = arg;
	coord *c = q->c;

	q->syncing = false;
	if (q->state == RS_ABANDONED) {
		req_free(c, q);
		return;
	}
	slot_done(c, q, 0, rc);
}

/* Live siblings of obj at now (its tombstones and expired values left out). */
static uint32_t live_siblings(const object *obj, uint64_t now)
{
	uint32_t n = 0;

	for (size_t i = 0; i < object_sibling_count(obj); i++) {
		const object_sibling *s = object_sibling_at(obj, i);

		n += !s->tombstone && !object_sibling_expired(s, now);
	}
	return n;
}

/* The new version of q's key, made from this node's copy: superseding
 * what ctx has seen, or in replace mode (ctx NULL) what the read returned
 * (q->merged) and this node's copy as it stands now.  0 and *out, encoded
 * in c->ob, with q->ctx and q->siblings set; or an error answered. */
static int write_make(coord *c, req *q, const object_vv *ctx, const void *val, size_t vlen,
		      object **out)
{
	uint32_t p = placement_partition(c->env.pl, q->key, q->keylen);
	object_vv seen = { 0 };
	object *obj = NULL;
	size_t start;
	int rc;

	*out = NULL;
	(void)p;
	rc = local_read(c, q, &obj);
	if (rc != 0) {
		q_store_error(c, q, rc, "read before write failed");
		return rc;
	}
	if (ctx != NULL && object_vv_get(ctx, c->env.actor) >= dotseq_next(c->env.ds)) {
		/* Only this node makes its own dots, all below its sequence
		 * (dotseq.h): a context claiming more is forged, and would burn
		 * our counters.  (One naming a counter this key no longer holds
		 * is fine: its history may have been reaped.) */
		object_free(obj);
		q_error(c, q, PROTO_ERR_CONTEXT,
			    "malformed context: it claims writes this node never made");
		return DKV_EPROTO;
	}
	if (obj == NULL && (obj = object_new()) == NULL)
		rc = -ENOMEM;
	if (rc == 0 && ctx == NULL) {
		/* Replace: supersede everything read and everything here.  The
		 * read is merged in first, so the new dot is above any of ours
		 * it saw (our copy may have lost what the replicas hold). */
		if (q->merged != NULL)
			rc = object_merge(obj, q->merged);
		if (rc == 0)
			rc = object_vv_copy(&seen, object_vector(obj));
		ctx = &seen;
	}
	object_free(q->merged);
	q->merged = NULL;
	if (rc == 0) {
		uint64_t now = c->env.w->ops->wall_ms(c->env.w);

		uint64_t dot = 0;

		rc = object_write_expiring(obj, c->env.actor, dotseq_next(c->env.ds), ctx,
					   q->type != PROTO_PUT, val, vlen, now,
					   q->ttl_ms != 0 ? now + q->ttl_ms : 0, &dot);
		if (rc == 0 && (rc = dotseq_take(c->env.ds, dot)) != 0) {
			object_vv_release(&seen);
			object_free(obj);
			q_store_error(c, q, rc,
					  "cannot record the node's counter sequence (DOTS)");
			return rc;
		}
	}
	object_vv_release(&seen);
	if (rc == 0) {
		object_prune(obj, c->env.cfg->vclock_max, c->env.actor);
		c->ob.size = 0;
		rc = object_encode(obj, &c->ob);
	}
	if (rc == 0 && object_sibling_count(obj) > c->env.olim.max_siblings) {
		/* stored, it could never be read back */
		q_error(c, q, PROTO_ERR_TOOBIG,
			    "too many siblings: this write would make %zu > %zu; resolve them by "
			    "writing with the context of a read, or in replace mode",
			    object_sibling_count(obj), c->env.olim.max_siblings);
		object_free(obj);
		return DKV_ETOOBIG;
	}
	if (rc == 0 && c->ob.size > c->env.max_object) {
		q_error(c, q, PROTO_ERR_TOOBIG,
			    "object too large: %zu siblings take %zu bytes > %zu (max_frame less "
			    "room for the key); resolve the siblings by writing with a context "
			    "or in replace mode", object_sibling_count(obj), c->ob.size,
			    c->env.max_object);
		object_free(obj);
		return DKV_ETOOBIG;
	}
	/* the context the OK carries: what this write produced */
	start = c->ob.size;
	if (rc == 0)
		rc = object_context_encode(obj, &c->ob);
	if (rc == 0 && (q->ctx = malloc(c->ob.size - start)) == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		q->ctxlen = c->ob.size - start;
		memcpy(q->ctx, c->ob.data + start, q->ctxlen);
		q->siblings = live_siblings(obj, c->env.w->ops->wall_ms(c->env.w));
	}
	c->ob.size = start;
	if (rc != 0) {
		q_error(c, q, PROTO_ERR_INTERNAL, "%s", dkv_strerror(rc));
		object_free(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

/* Push q's version (encoded in c->ob) to slot i's replica; false when it
 * cannot be sent. */
static bool write_push(coord *c, req *q, uint32_t i)
{
	slot *s = &q->slots[i];

	return replica_push(c->env.rep, s->addr, q->pid, q->key, q->keylen, c->ob.data,
			    c->ob.size, true, s->owner) == 0;
}

/* Slot i, a primary, failed while q is PENDING: write instead to the next
 * fallback not used yet, marked with that primary as owner.  The version
 * is read back from this node's copy (it stored it first). */
static void write_fallback(coord *c, req *q, uint32_t i)
{
	placement *pl = c->env.pl;
	uint32_t p = placement_partition(pl, q->key, q->keylen);
	long f;
	void *enc = NULL;
	size_t len = 0;
	slot *s;

	if (q->nslots >= MAX_SLOTS || !placement_has_ring(pl) || q->local == UINT32_MAX)
		return;
	while ((f = next_fallback(c, q, p)) >= 0 && placement_is_self(pl, (uint32_t)f))
		;   /* this node holds its copy already */
	if (f < 0 || vnode_get_raw(c->env.vs, q->local, q->key, q->keylen, &enc, &len) != 0)
		return;
	s = &q->slots[q->nslots];
	memset(s, 0, sizeof(*s));
	s->member = q->slots[i].member;
	s->emask = q->slots[i].emask;   /* it counts where the primary would have */
	s->addr = placement_addr(pl, (uint32_t)f);
	s->owner = placement_intern(pl, placement_member_id(pl, q->slots[i].member));
	if (s->owner != NULL &&
	    replica_push(c->env.rep, s->addr, q->pid, q->key, q->keylen, enc, len, true,
			 s->owner) == 0) {
		s->state = SLOT_WAIT;
		q->nslots++;
		q->asked++;   /* (it stands in for one counted reachable already) */
	}
	free(enc);
}

/* A write is acknowledged only once W replicas (PW primaries) of every
 * ring epoch active when it answers have it: an epoch this node took up
 * while the write ran (a membership change) is added to it here -- each
 * of its primaries the write has no slot for is sent the version, read
 * back from this node's copy -- so that every write acknowledged after
 * this node acked an epoch reaches that epoch's replicas, which is what
 * lets a transfer that starts once every member acked it miss nothing
 * (transfer.h).  True iff an epoch was added. */
static bool extend_epochs(coord *c, req *q)
{
	placement *pl = c->env.pl;
	uint32_t p = placement_partition(pl, q->key, q->keylen);
	void *enc = NULL;
	size_t len = 0;
	bool added = false;

	for (size_t e = 0; e < placement_epochs(pl) && q->nep < EPOCHS_MAX; e++) {
		uint64_t num = placement_epoch_id(pl, e).number;
		const uint32_t *list;
		uint32_t np, j, n0;
		bool have = false;

		for (uint32_t k = 0; k < q->nep; k++)
			have |= q->enums[k] == num;
		if (have)
			continue;
		j = q->nep++;
		q->enums[j] = num;
		q->emask |= (uint8_t)(1u << j);
		added = true;
		list = placement_epoch_primaries(pl, e, p, &np);
		for (uint32_t i = 0; i < np; i++) {
			n0 = q->nslots;
			plan_member(c, q, p, list[i], j);
			if (q->nslots == n0) {
				/* a slot it had: its answer counts here too */
				for (uint32_t k = 0; k < q->nslots; k++)
					if (q->slots[k].member == list[i] && q->slots[k].state == SLOT_OK) {
						q->eacks[j]++;
						q->epacks[j] += q->slots[k].owner == NULL;
					}
				continue;
			}
			if (q->slots[n0].state != SLOT_WAIT || q->slots[n0].addr == NULL ||
			    q->local == UINT32_MAX ||
			    (enc == NULL &&
			     vnode_get_raw(c->env.vs, q->local, q->key, q->keylen, &enc, &len) != 0) ||
			    replica_push(c->env.rep, q->slots[n0].addr, q->pid, q->key, q->keylen, enc,
					 len, true, q->slots[n0].owner) != 0) {
				q->slots[n0].state = SLOT_UNASKED;   /* counts nowhere */
				continue;
			}
			q->asked++;
			q->reachable++;
		}
	}
	free(enc);
	return added;
}

/* Make q's new version (write_make) and write it: stored here, pushed to
 * the key's other replicas (the primaries that are up, fallbacks for the
 * others: plan_slots); q is PENDING on their acknowledgements (from
 * READING, it starts its slots over).  A refusal answers and frees q. */
static void write_apply(coord *c, req *q, const object_vv *ctx, const void *val, size_t vlen)
{
	object *obj;
	int rc;

	/* a replace-mode write read from the read epoch's replicas: it
	 * writes to every epoch's */
	if (q->replace &&
	    !plan_slots(c, q, placement_partition(c->env.pl, q->key, q->keylen), true))
		return;
	if (write_make(c, q, ctx, val, vlen, &obj) != 0) {
		req_free(c, q);
		return;
	}
	object_free(obj);   /* its encoding is in c->ob */
	/* Stored here first, and pushed only once stored: every dot of our
	 * actor is in our own copy before any replica sees it, which is what
	 * lets our next write's vector claim it (dotseq.h).  A store that
	 * fails (a disk failed: the store refuses writes) fails the write with
	 * nothing sent anywhere. */
	rc = vnode_store(c->env.vs, q->local, q->key, q->keylen, c->ob.data, c->ob.size);
	if (rc != 0) {
		q_store_error(c, q, rc,
				  "write failed: its coordinator could not store it, and sent it "
				  "nowhere");
		req_free(c, q);
		return;
	}
	q->state = RS_PENDING;
	q->qname = "w";
	q->need = q->w;
	q->need_primary = q->pw;
	q->acks = q->primary_acks = q->failed = 0;
	q->asked = q->reachable = 0;
	memset(q->eacks, 0, sizeof(q->eacks));
	memset(q->epacks, 0, sizeof(q->epacks));
	q->first_err = 0;
	/* slot 0 is this node (plan_slots puts it first; the coordinator is
	 * always one of the key's replicas, a primary or a stand-in) */
	for (uint32_t i = 1, n0 = q->nslots; i < n0; i++) {
		slot *s = &q->slots[i];

		if (s->state == SLOT_UNASKED)
			continue;
		s->state = SLOT_UNASKED;
		s->found = false;
		q->reachable++;
		if (write_push(c, q, i)) {
			s->state = SLOT_WAIT;
			q->asked++;
		} else if (s->owner == NULL) {
			write_fallback(c, q, i);   /* a primary we cannot send to */
		}
	}
	q->slots[0].state = SLOT_WAIT;
	q->slots[0].found = false;
	q->asked++;
	q->reachable++;
	req_assert(q);
	if (c->env.cfg->sync != DKV_SYNC_ALWAYS) {
		slot_done(c, q, 0, 0);
		return;
	}
	q->syncing = true;
	durable_wait(c->env.dur, &q->wt, write_synced, q);
}

/* The member that coordinates writes to partition p: this node if it is
 * an owner of p (a primary in some active epoch); else the first owner
 * not down (the read epoch's primaries first); else (every owner down)
 * the first node of the newest epoch's preference list not down.  -1
 * without a ring or a reachable node. */
static long write_coordinator(coord *c, uint32_t p)
{
	placement *pl = c->env.pl;
	uint32_t n, nm;
	const uint32_t *own = placement_owners(pl, p, &n);
	const uint32_t *list = placement_preflist(pl, p, &nm);

	for (uint32_t i = 0; i < n; i++)
		if (placement_is_self(pl, own[i]))
			return own[i];
	for (uint32_t i = 0; i < n; i++)
		if (!placement_is_down(pl, own[i]))
			return own[i];
	for (uint32_t i = 0; i < nm; i++)
		if (!placement_is_down(pl, list[i]))
			return list[i];
	return -1;
}

void coord_write(coord *c, uint64_t client, const proto_msg *m, const void *payload,
		 size_t len, bool forwarded)
{
	placement *pl = c->env.pl;
	uint32_t w, pw, r = 0, pr = 0, p = placement_partition(pl, m->key.p, m->key.len);
	object_vv ctx = { 0 };
	long coordinator;
	req *q;
	int rc;

	if (!quorum(c, m->type, client, m->id, "w", m->opts.w, c->env.cfg->w, &w) ||
	    !quorum(c, m->type, client, m->id, "pw", m->opts.pw, 0, &pw))
		return;
	if (m->opts.replace && (!quorum(c, m->type, client, m->id, "r", m->opts.r, c->env.cfg->r, &r) ||
				!quorum(c, m->type, client, m->id, "pr", m->opts.pr, 0, &pr)))
		return;
	coordinator = write_coordinator(c, p);
	if (coordinator < 0 || !placement_is_self(pl, (uint32_t)coordinator)) {
		if (!placement_has_ring(pl))
			m_error(c, m->type, client, m->id, PROTO_ERR_QUORUM,
				    "quorum not met: no valid member in the ring");
		else if (forwarded)
			m_error(c, m->type, client, m->id, PROTO_ERR_QUORUM,
				    "quorum not met: %s is not the coordinator of this key in its view "
				    "of the ring (membership or liveness is changing); retry",
				    c->env.node_id);
		else
			forward(c, client, m, payload, len, p);
		return;
	}
	rc = object_context_decode(m->context.p, m->context.len, &c->env.olim, &ctx);
	if (rc != 0) {
		m_error(c, m->type, client, m->id, PROTO_ERR_CONTEXT,
			    "malformed context: %s (send back the context a get returned)",
			    dkv_strerror(rc));
		return;
	}
	if ((q = req_start(c, RQ_WRITE, client, m)) == NULL) {
		object_vv_release(&ctx);
		return;
	}
	q->w = w;
	q->pw = pw;
	q->report = m->opts.siblings;
	q->ttl_ms = m->opts.ttl_ms;
	if (!m->opts.replace) {
		if (plan_slots(c, q, p, true))
			write_apply(c, q, &ctx, m->value.p, m->value.len);
		object_vv_release(&ctx);
		return;
	}
	/* replace mode: READING first, as a GET with this request's R and PR */
	q->replace = true;
	if (m->value.len > 0 && (q->value = malloc(m->value.len)) == NULL) {
		m_error(c, m->type, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		req_free(c, q);
		return;
	}
	if (m->value.len > 0)
		memcpy(q->value, m->value.p, m->value.len);
	q->valuelen = m->value.len;
	q->state = RS_READING;
	q->qname = "r";
	q->need = r > pr ? r : pr;
	q->need_primary = pr;
	read_start(c, q);
}

static void on_rack(coord *c, req *q, const char *from, const peer_msg *pm)
{
	if (q->kind != RQ_WRITE || q->state == RS_READING)
		return;
	for (uint32_t i = 1; i < q->nslots; i++)
		if (q->slots[i].addr == from && q->slots[i].state == SLOT_WAIT) {
			slot_done(c, q, i, pm->code == 0 ? 0 : proto_error_to_dkv(pm->code));
			return;
		}
}

void coord_peer_answer(coord *c, const peer_msg *pm)
{
	req *q = req_by_pid(c, pm->id);
	const char *from;

	if (q == NULL)
		return;   /* answered and freed already, or never ours */
	if (pm->type == PEER_FWDREPLY) {
		on_fwdreply(c, q, pm);
		return;
	}
	/* Only a replica the request asked can answer it, and those are
	 * interned already: a stranger's name is never interned here. */
	from = placement_intern(c->env.pl, pm->from);
	if (from == NULL)
		return;
	if (pm->type == PEER_RVALUE)
		on_rvalue(c, q, from, pm);
	else if (pm->type == PEER_RACK)
		on_rack(c, q, from, pm);
}

/* --- peers going away ----------------------------------------------------- */

void coord_peer_gone(coord *c, const char *addr)
{
	const char *a = placement_intern(c->env.pl, addr);
	req *q, *next;

	if (a == NULL)
		return;
	for (q = c->inflight.next; q != &c->inflight; q = next) {
		next = q->next;
		if (q->kind == RQ_FWD) {
			if (q->target != a)
				continue;
			q_error(c, q, PROTO_ERR_TIMEOUT,
				    "the coordinator %s failed before answering; the write "
				    "may or may not have been applied", a);
			req_free(c, q);
			continue;
		}
		/* slot_done may free q: find a waiting slot, one at a time */
		for (uint32_t i = 0; i < q->nslots; i++)
			if (q->slots[i].addr == a && q->slots[i].state == SLOT_WAIT) {
				slot_done(c, q, i, DKV_ECLOSED);
				break;
			}
	}
}

const coord_metrics *coord_metrics_get(const coord *c)
{
	return &c->mt;
}

void coord_stats_get(const coord *c, coord_stats *st)
{
	*st = c->st;
	st->inflight = c->ninflight;
}

const hist *coord_latency(const coord *c)
{
	return c->lat;
}

void coord_free(coord *c)
{
	if (c == NULL)
		return;
	while (c->inflight.next != &c->inflight) {
		req *q = c->inflight.next;

		if (q->state == RS_PENDING || q->state == RS_READING)
			q_error(c, q, PROTO_ERR_SHUTDOWN,
				    "node is shutting down");
		q->syncing = false;   /* no batch runs (coord.h) */
		req_free(c, q);
	}
	hist_free(c->lat);
	hist_free(c->mt.siblings);
	for (int i = 0; i < METRICS_NOPS; i++)
		hist_free(c->mt.latency_us[i]);
	msgpack_sbuffer_destroy(&c->ob);
	msgpack_sbuffer_destroy(&c->pb);
	free(c);
}
