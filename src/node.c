#include "config.h"
/*
 * node.c -- the node: data directory, partition stores, the request
 * coordinator over the cluster's preference lists, replica writes and
 * reads for peers, read repair, durability batches.  See node.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "bitcask.h"
#include "cluster.h"
#include "datadir.h"
#include "dkv_file.h"
#include "error.h"
#include "hist.h"
#include "node.h"
#include "object.h"
#include "peer.h"
#include "placement.h"
#include "proto.h"
#include "ring.h"
#include "siphash.h"

/* Room in a frame for everything but the stored object (key, header). */
#define FRAME_SLACK      1024u
#define PID_BUCKETS      4096u             /* peer request ids -> req */
#define REMOTE_BIT       (1ull << 63)      /* client ids of forwarded requests */
#define MAX_REPLICAS     DKV_CONFIG_N_MAX
#define RATE_WINDOW      10                /* seconds in requests_per_sec */

typedef struct part {
	bitcask *bc;          /* NULL until first used */
	bool dirty;           /* appended to since its last sync batch began */
} part;

typedef enum req_kind {
	RQ_WRITE,             /* a put or delete this node coordinates */
	RQ_GET,               /* a get this node coordinates */
	RQ_FWD,               /* a request forwarded to its coordinator */
	RQ_REPLICA,           /* a peer's replica write waiting to be durable */
	RQ_JOIN,              /* dynkv-admin join, waiting for the seed */
} req_kind;

typedef enum slot_state { SLOT_WAIT, SLOT_OK, SLOT_FAILED, SLOT_UNASKED } slot_state;

/* One replica a request asked. */
typedef struct slot {
	const char *addr;     /* interned; NULL for this node */
	uint8_t state;        /* slot_state */
	bool found;           /* GET: the replica had the key */
	uint64_t hash;        /* GET: hash of its object's encoding */
} slot;

typedef struct node node;
typedef struct req {
	node *n;
	req_kind kind;
	struct req *prev, *next;   /* the node's in-flight list */
	struct req *bnext;         /* its durability batch */
	struct req *hnext;         /* its peer-id bucket */
	uint64_t client, id;       /* who asked, and their request id */
	uint64_t pid;              /* id of the messages sent for it */
	uint32_t type;
	const char *qname;         /* "w" or "r" (for messages) */
	uint32_t need;             /* acks/replies needed (W or R) */
	uint32_t need_primary;     /* of them from primaries (PW or PR) */
	uint32_t asked;            /* replicas asked */
	uint32_t acks, primary_acks, failed;
	uint32_t reachable;        /* primaries not down when it started */
	int first_err;             /* the first replica's error */
	uint64_t started_ms;
	uint64_t started_us;       /* for the latency histogram */
	uint32_t timeout_ms;
	world_timer *timer;
	uint8_t *ctx;              /* WRITE: the written object's context */
	size_t ctxlen;
	uint8_t *key;              /* GET: for read repair */
	size_t keylen;
	object *merged;            /* GET: what the replicas said, merged */
	slot slots[MAX_REPLICAS];
	uint32_t nslots;
	const char *target;        /* FWD: the coordinator (interned) */
	const char *origin;        /* REPLICA: who to answer (interned) */
	bool answered;             /* its reply has been sent */
	bool in_batch;             /* a durability batch will call back for it */
} req;

/* A request forwarded to this node: where its reply goes. */
typedef struct remote {
	const char *addr;          /* interned; NULL when the slot is free */
	uint64_t fid;              /* the forwarder's id for it */
} remote;

struct node {
	dkv_config cfg;            /* our own copy */
	world *w;
	dkv_log *log;
	datadir *dd;               /* the data directory: lock and identity */
	const char *dir;           /* its path (datadir_path) */
	char node_id[256];
	uint64_t actor;
	uint32_t ring_size;
	uint32_t n_val;
	part *parts;               /* ring_size entries */
	size_t nopen;
	proto_limits lim;
	object_limits olim;
	size_t max_object;         /* largest encoded object stored */
	msgpack_sbuffer sb;        /* reply being built */
	msgpack_sbuffer ob;        /* object being encoded */
	msgpack_sbuffer pb;        /* peer message being built */
	bool draining;

	req inflight;              /* list head (sentinel) */
	size_t ninflight;
	req *by_pid[PID_BUCKETS];
	uint64_t next_pid;

	/* the cluster */
	cluster *cl;
	placement *pl;             /* the ring view */
	remote *remotes;           /* forwarded requests being coordinated */
	size_t nremotes;
	siphash_key hkey;          /* for comparing replicas' objects */

	/* durability */
	req *batch_wait;           /* waiting for the next batch (sync = always) */
	req **batch_wait_tail;
	req *batch_run;            /* covered by the running batch */
	bool batch_running;
	bitcask **batch_stores;    /* ring_size slots */
	world_timer *sync_timer;   /* sync = interval */

	/* statistics */
	node_stats st;
	hist *lat;                 /* request latency, microseconds */
	uint64_t started_ms;
	uint64_t rate[RATE_WINDOW];/* requests answered, one sample a second */
	unsigned rate_at;
	world_timer *rate_timer;
};

static void logf_(node *n, dkv_log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logf_(node *n, dkv_log_level lv, const char *fmt, ...)
{
	va_list ap;

	if (n->log == NULL || !dkv_log_enabled(n->log, lv))
		return;
	va_start(ap, fmt);
	dkv_log_vmsg(n->log, lv, fmt, ap);
	va_end(ap);
}

/* Open (creating if need be) partition p's store into *out; any thread.
 * err gets the reason. */
static int open_store(const node *n, uint32_t p, bitcask **out, char *err, size_t errlen)
{
	char dir[4200];
	bitcask_config bc;
	int rc;

	snprintf(dir, sizeof(dir), "%s/partitions/%04" PRIu32, n->dir, p);
	bitcask_config_init(&bc);
	bc.max_key_size = (uint32_t)n->cfg.max_key_size;
	bc.max_value_size = (uint32_t)n->max_object;
	bc.sync = BITCASK_SYNC_MANUAL;
	bc.log = dkv_log_hook;
	bc.log_ctx = n->log;
	rc = dkv_mkdir_p(dir);
	if (rc == 0)
		rc = bitcask_open(out, dir, &bc, err, errlen);
	else
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
	return rc;
}

static int open_part(node *n, uint32_t p, bitcask **out)
{
	char err[4400];
	int rc;

	if (n->parts[p].bc != NULL) {
		*out = n->parts[p].bc;
		return 0;
	}
	rc = open_store(n, p, &n->parts[p].bc, err, sizeof(err));
	if (rc != 0) {
		logf_(n, DKV_LOG_ERROR, "partition %" PRIu32 ": %s", p, err);
		return rc;
	}
	n->nopen++;
	*out = n->parts[p].bc;
	return 0;
}

/* Opening a store costs a few fsyncs (a new one: its directory, its first
 * data file), ~10 ms: 512 of them on the loop, on first use, stalled a
 * fresh node for seconds.  At start the node opens, on OPENERS threads at
 * once, every partition it has a directory for or holds a replica of. */
#define OPENERS 8

typedef struct openers {
	node *n;
	const uint32_t *list;
	size_t count;
	atomic_size_t next;
	bitcask **got;               /* by position in list */
	int *rcs;
	char (*errs)[256];
} openers;

static void *opener_main(void *arg)
{
	openers *o = arg;
	size_t i;

	while ((i = atomic_fetch_add(&o->next, 1)) < o->count)
		o->rcs[i] = open_store(o->n, o->list[i], &o->got[i], o->errs[i], sizeof(o->errs[i]));
	return NULL;
}

static int open_parts(node *n, const uint32_t *list, size_t count, char *err, size_t errlen)
{
	pthread_t th[OPENERS];
	int nth = 0, rc = 0;
	openers o = { .n = n, .list = list, .count = count };

	if (count == 0)
		return 0;
	o.got = calloc(count, sizeof(*o.got));
	o.rcs = calloc(count, sizeof(*o.rcs));
	o.errs = calloc(count, sizeof(*o.errs));
	if (o.got == NULL || o.rcs == NULL || o.errs == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	atomic_init(&o.next, 0);
	while (nth < OPENERS && (size_t)nth < count && pthread_create(&th[nth], NULL, opener_main, &o) == 0)
		nth++;
	opener_main(&o);   /* this thread too (all of it if none started) */
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < count; i++) {
		if (o.rcs[i] == 0) {
			n->parts[list[i]].bc = o.got[i];
			n->nopen++;
		} else if (rc == 0) {
			rc = o.rcs[i];
			snprintf(err, errlen, "partition %" PRIu32 ": %s", list[i], o.errs[i]);
		}
	}
out:
	free(o.got);
	free(o.rcs);
	free(o.errs);
	return rc;
}

/* --- replies -------------------------------------------------------------- */

/* Send a reply frame to a client: a real connection, or a node that
 * forwarded the request (its one reply travels back in a FWDREPLY). */
static void send_frame(node *n, uint64_t client, const void *frame, size_t len)
{
	if (client & REMOTE_BIT) {
		size_t i = (size_t)(client & ~REMOTE_BIT);
		remote *r = i < n->nremotes ? &n->remotes[i] : NULL;

		if (r == NULL || r->addr == NULL)
			return;
		n->pb.size = 0;
		if (peer_encode_fwdreply(&n->pb, r->fid, n->cfg.listen, frame, len) == 0)
			(void)n->w->ops->send(n->w, r->addr, n->pb.data, n->pb.size);
		r->addr = NULL;
		return;
	}
	n->w->ops->reply(n->w, client, frame, len);
}

static void send_sb(node *n, uint64_t client)
{
	send_frame(n, client, n->sb.data, n->sb.size);
	n->sb.size = 0;
}

static void reply_error(node *n, uint64_t client, uint64_t id, uint32_t code,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void reply_error(node *n, uint64_t client, uint64_t id, uint32_t code,
			const char *fmt, ...)
{
	char msg[PROTO_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n->sb.size = 0;
	if (proto_encode_error(&n->sb, id, code, msg) != 0) {
		logf_(n, DKV_LOG_ERROR, "out of memory encoding an error reply");
		return;
	}
	n->st.errors++;
	send_sb(n, client);
}

void node_error_frame(node *n, uint32_t code, const char *msg,
		      const void **frame, size_t *len)
{
	n->sb.size = 0;
	if (proto_encode_error(&n->sb, 0, code, msg) != 0) {
		*frame = NULL;
		*len = 0;
		return;
	}
	n->st.errors++;
	*frame = n->sb.data;
	*len = n->sb.size;
}

/* The reply for a failed store call. */
static void reply_store_error(node *n, uint64_t client, uint64_t id, int rc, const char *what)
{
	if (rc == DKV_ETOOBIG)
		reply_error(n, client, id, PROTO_ERR_TOOBIG, "%s: %s", what, dkv_strerror(rc));
	else
		reply_error(n, client, id, PROTO_ERR_STORAGE, "%s: %s", what, dkv_strerror(rc));
}

static void count_latency(node *n, uint64_t started_us)
{
	hist_record(n->lat, n->w->ops->now_us(n->w) - started_us);
}

/* --- quorums -------------------------------------------------------------- */

/* Resolve one quorum option (0: dflt) against the replicas of a key.
 * Returns false after replying with an error. */
static bool quorum(node *n, uint64_t client, uint64_t id, const char *name,
		   int32_t opt, int32_t dflt, uint32_t *out)
{
	int32_t q = opt != 0 ? opt : dflt;

	if (q == 0) {
		*out = 0;
		return true;
	}
	*out = dkv_config_quorum(q, n->n_val);
	if (*out > n->n_val) {
		reply_error(n, client, id, PROTO_ERR_INVALID, "%s=%u exceeds n_val=%u",
			    name, *out, n->n_val);
		return false;
	}
	return true;
}

/* The message for a quorum that cannot be met. */
static void reply_quorum(node *n, uint64_t client, uint64_t id, const char *name,
			 uint32_t got, uint32_t need, bool primary, uint32_t reachable)
{
	reply_error(n, client, id, PROTO_ERR_QUORUM,
		    "quorum not met: %u of %s=%u %sreplicas answered (%u of n_val=%u replicas reachable)",
		    got, name, need, primary ? "primary " : "", reachable, n->n_val);
}

/* --- the local replica ---------------------------------------------------- */

/* Read the local replica's object: 0 and *obj (NULL when absent), or an
 * error after which the caller replies. */
static int local_read(node *n, const void *key, size_t klen, bitcask **bcp, object **obj)
{
	uint32_t p = placement_partition(n->pl, key, klen);
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	*obj = NULL;
	rc = open_part(n, p, bcp);
	if (rc != 0)
		return rc;
	rc = bitcask_get(*bcp, key, klen, &val, &vlen);
	if (rc == DKV_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = object_decode(val, vlen, &n->olim, obj);
	free(val);
	if (rc != 0) {
		logf_(n, DKV_LOG_ERROR, "partition %" PRIu32 ": a stored object fails to decode: %s",
		      p, dkv_strerror(rc));
		/* a newer format is not corruption: say which it is */
		return rc == DKV_EVERSION ? DKV_EVERSION : DKV_ECORRUPT;
	}
	return 0;
}

/* Merge a replica's object into the local copy and store the result if it
 * differs.  *wrote says whether anything was appended. */
static int local_merge(node *n, const void *key, size_t klen, const object *in, bool *wrote)
{
	uint32_t p = placement_partition(n->pl, key, klen);
	object *obj = NULL;
	bitcask *bc;
	size_t before;
	uint64_t h0 = 0;
	int rc;

	*wrote = false;
	rc = local_read(n, key, klen, &bc, &obj);
	if (rc != 0)
		return rc;
	if (obj != NULL) {
		n->ob.size = 0;
		rc = object_encode(obj, &n->ob);
		h0 = siphash24(&n->hkey, n->ob.data, n->ob.size);
		before = n->ob.size;
		if (rc == 0)
			rc = object_merge(obj, in);
	} else {
		before = 0;
		rc = object_clone(in, &obj);
	}
	if (rc == 0) {
		object_prune(obj, n->cfg.vclock_max, n->actor);
		n->ob.size = 0;
		rc = object_encode(obj, &n->ob);
	}
	if (rc == 0 && (before != n->ob.size || siphash24(&n->hkey, n->ob.data, n->ob.size) != h0)) {
		if (n->ob.size > n->max_object)
			rc = DKV_ETOOBIG;
		else
			rc = bitcask_put(bc, key, klen, n->ob.data, n->ob.size);
		if (rc == 0) {
			n->parts[p].dirty = true;
			*wrote = true;
		}
	}
	object_free(obj);
	return rc;
}

/* Encode a VALUE reply for obj (NULL: not found) into n->sb. */
static int encode_value(node *n, uint64_t id, const object *obj)
{
	proto_bytes *vals = NULL;
	size_t nvals = 0;
	uint64_t tomb = 0;
	int rc;

	n->ob.size = 0;
	if (obj != NULL) {
		size_t ns = object_sibling_count(obj);

		vals = calloc(ns ? ns : 1, sizeof(*vals));
		if (vals == NULL || object_context_encode(obj, &n->ob) != 0) {
			free(vals);
			return -ENOMEM;
		}
		for (size_t i = 0; i < ns; i++) {
			const object_sibling *s = object_sibling_at(obj, i);

			if (s->tombstone) {
				tomb++;
				continue;
			}
			vals[nvals].p = s->value;
			vals[nvals].len = s->value_len;
			nvals++;
		}
	}
	n->sb.size = 0;
	rc = proto_encode_value(&n->sb, id, nvals > 0, vals, nvals, n->ob.data, n->ob.size, tomb);
	free(vals);
	return rc;
}

/* --- requests in flight --------------------------------------------------- */

static req *req_new(node *n, req_kind kind, uint64_t client, uint64_t id, uint32_t timeout_ms)
{
	req *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->n = n;
	q->kind = kind;
	q->client = client;
	q->id = id;
	q->pid = ++n->next_pid;
	q->started_ms = n->w->ops->now_ms(n->w);
	q->started_us = n->w->ops->now_us(n->w);
	q->timeout_ms = timeout_ms ? timeout_ms : n->cfg.request_timeout;
	q->next = &n->inflight;
	q->prev = n->inflight.prev;
	q->prev->next = q;
	n->inflight.prev = q;
	n->ninflight++;
	q->hnext = n->by_pid[q->pid % PID_BUCKETS];
	n->by_pid[q->pid % PID_BUCKETS] = q;
	return q;
}

static req *req_by_pid(node *n, uint64_t pid)
{
	for (req *q = n->by_pid[pid % PID_BUCKETS]; q != NULL; q = q->hnext)
		if (q->pid == pid)
			return q;
	return NULL;
}

static void req_free(node *n, req *q)
{
	req **pp = &n->by_pid[q->pid % PID_BUCKETS];

	while (*pp != q)
		pp = &(*pp)->hnext;
	*pp = q->hnext;
	if (q->timer != NULL)
		n->w->ops->timer_cancel(n->w, q->timer);
	q->prev->next = q->next;
	q->next->prev = q->prev;
	n->ninflight--;
	object_free(q->merged);
	free(q->ctx);
	free(q->key);
	free(q);
}

static uint32_t outstanding(const req *q)
{
	return q->asked - q->acks - q->failed;
}

static void req_finish(node *n, req *q);

/* A replica's answer: slot i of q succeeded (rc 0) or failed. */
static void slot_done(node *n, req *q, uint32_t i, int rc)
{
	if (q->slots[i].state != SLOT_WAIT)
		return;
	if (rc == 0) {
		q->slots[i].state = SLOT_OK;
		q->acks++;
		q->primary_acks++;   /* every replica asked is a primary */
	} else {
		q->slots[i].state = SLOT_FAILED;
		q->failed++;
		if (q->first_err == 0)
			q->first_err = rc;
	}
	req_finish(n, q);
}

static void read_repair(node *n, req *q);

/* Answer q if its outcome is known; free it once nothing will call back. */
static void req_finish(node *n, req *q)
{
	uint32_t left = outstanding(q);

	if (!q->answered) {
		if (q->acks >= q->need && q->primary_acks >= q->need_primary) {
			int rc;

			n->sb.size = 0;
			if (q->kind == RQ_GET)
				rc = encode_value(n, q->id, q->merged);
			else
				rc = proto_encode_ok(&n->sb, q->id, q->ctx, q->ctxlen);
			if (rc == 0) {
				send_sb(n, q->client);
				if (q->type == PROTO_GET)
					n->st.gets++;
				else if (q->type == PROTO_PUT)
					n->st.puts++;
				else
					n->st.deletes++;
				count_latency(n, q->started_us);
			} else
				reply_error(n, q->client, q->id, PROTO_ERR_INTERNAL, "out of memory");
			q->answered = true;
		} else if (left == 0) {
			if (q->acks == 0 && q->first_err != 0 && q->first_err != DKV_ECLOSED)
				reply_store_error(n, q->client, q->id, q->first_err,
						  q->kind == RQ_GET ? "read failed" : "write failed");
			else if (q->primary_acks < q->need_primary)
				reply_quorum(n, q->client, q->id, q->kind == RQ_GET ? "pr" : "pw",
					     q->primary_acks, q->need_primary, true, q->reachable);
			else
				reply_quorum(n, q->client, q->id, q->qname, q->acks, q->need, false,
					     q->reachable);
			q->answered = true;
		}
	}
	if (q->answered && left == 0 && !q->in_batch) {
		if (q->kind == RQ_GET)
			read_repair(n, q);
		req_free(n, q);
	}
}

static void req_timeout(void *arg)
{
	req *q = arg;
	node *n = q->n;

	q->timer = NULL;   /* fired: the world has freed it */
	if (!q->answered) {
		if (q->kind == RQ_FWD)
			reply_error(n, q->client, q->id, PROTO_ERR_TIMEOUT,
				    "request timed out after %u ms: its coordinator %s did not answer",
				    q->timeout_ms, q->target);
		else
			reply_error(n, q->client, q->id, PROTO_ERR_TIMEOUT,
				    "request timed out after %u ms: %u of %s=%u replicas answered",
				    q->timeout_ms, q->acks, q->qname, q->need);
		q->answered = true;
	}
	/* Replicas that have not answered will not be waited for; a
	 * durability batch still holding q frees it when it ends. */
	if (q->kind == RQ_GET)
		read_repair(n, q);
	if (!q->in_batch)
		req_free(n, q);
}

static bool req_arm(node *n, req *q)
{
	q->timer = n->w->ops->timer_add(n->w, q->timeout_ms, req_timeout, q);
	return q->timer != NULL;
}

/* --- durability batches --------------------------------------------------- */

static void send_rack(node *n, const char *to, uint64_t pid, uint32_t code)
{
	n->pb.size = 0;
	if (peer_encode_rack(&n->pb, pid, n->cfg.listen, code) == 0)
		(void)n->w->ops->send(n->w, to, n->pb.data, n->pb.size);
}

static void batch_start(node *n);

static void batch_done(void *arg, int rc)
{
	node *n = arg;
	req *q = n->batch_run;

	n->batch_run = NULL;
	n->batch_running = false;
	n->st.syncs++;
	if (rc != 0)
		logf_(n, DKV_LOG_ERROR, "fdatasync of a partition failed: %s", dkv_strerror(rc));
	while (q != NULL) {
		req *next = q->bnext;

		q->bnext = NULL;
		q->in_batch = false;
		if (q->kind == RQ_REPLICA) {
			send_rack(n, q->origin, q->id, rc == 0 ? 0 : PROTO_ERR_STORAGE);
			req_free(n, q);
		} else if (q->slots[0].state == SLOT_WAIT)
			slot_done(n, q, 0, rc);
		else
			req_finish(n, q);   /* timed out meanwhile: free it */
		q = next;
	}
	batch_start(n);
}

/* Start a sync batch of every dirty store, covering the waiting requests;
 * at most one runs at a time. */
static void batch_start(node *n)
{
	size_t k = 0;

	if (n->batch_running)
		return;
	for (uint32_t p = 0; p < n->ring_size; p++)
		if (n->parts[p].dirty && n->parts[p].bc != NULL) {
			n->parts[p].dirty = false;
			n->batch_stores[k++] = n->parts[p].bc;
		}
	if (k == 0 && n->batch_wait == NULL)
		return;
	n->batch_run = n->batch_wait;
	n->batch_wait = NULL;
	n->batch_wait_tail = &n->batch_wait;
	n->batch_running = true;
	if (k == 0) {
		/* Nothing to sync (a write that failed after marking?): ack
		 * the waiters as they are. */
		batch_done(n, 0);
		return;
	}
	n->w->ops->durable(n->w, n->batch_stores, k, batch_done, n);
}

static void batch_add(node *n, req *q)
{
	q->in_batch = true;
	*n->batch_wait_tail = q;
	n->batch_wait_tail = &q->bnext;
	batch_start(n);
}

static void sync_tick(void *arg)
{
	node *n = arg;

	n->sync_timer = n->w->ops->timer_add(n->w, n->cfg.sync_interval_ms, sync_tick, n);
	batch_start(n);
}

/* --- gets ----------------------------------------------------------------- */

/* Merge one replica's answer (obj NULL: not found) into q. */
static int get_absorb(node *n, req *q, uint32_t i, const object *obj)
{
	slot *s = &q->slots[i];
	int rc = 0;

	s->found = obj != NULL;
	if (obj == NULL)
		return 0;
	n->ob.size = 0;
	if (object_encode(obj, &n->ob) == 0)
		s->hash = siphash24(&n->hkey, n->ob.data, n->ob.size);
	if (q->merged == NULL)
		rc = object_clone(obj, &q->merged);
	else
		rc = object_merge(q->merged, obj);
	return rc;
}

/* Once every replica asked has answered (or the request timed out): send
 * the merged object to each replica that answered with something else. */
static void read_repair(node *n, req *q)
{
	uint64_t h;
	bool wrote;

	if (q->merged == NULL || q->key == NULL)
		return;
	n->ob.size = 0;
	if (object_encode(q->merged, &n->ob) != 0)
		return;
	h = siphash24(&n->hkey, n->ob.data, n->ob.size);
	for (uint32_t i = 0; i < q->nslots; i++) {
		slot *s = &q->slots[i];

		if (s->state != SLOT_OK || (s->found && s->hash == h))
			continue;
		n->st.read_repairs++;
		if (s->addr == NULL) {
			if (local_merge(n, q->key, q->keylen, q->merged, &wrote) != 0)
				n->st.read_repairs--;
			/* local_merge reused n->ob: encode again */
			n->ob.size = 0;
			if (object_encode(q->merged, &n->ob) != 0)
				return;
			continue;
		}
		n->pb.size = 0;
		if (peer_encode_rput(&n->pb, 0, n->cfg.listen, q->key, q->keylen,
				     n->ob.data, n->ob.size, false) == 0)
			(void)n->w->ops->send(n->w, s->addr, n->pb.data, n->pb.size);
	}
	object_free(q->merged);
	q->merged = NULL;
}

static void do_get(node *n, uint64_t client, const proto_msg *m)
{
	uint32_t r, pr, np, p = placement_partition(n->pl, m->key.p, m->key.len);
	const uint32_t *pl;
	req *q;

	if (!quorum(n, client, m->id, "r", m->opts.r, n->cfg.r, &r) ||
	    !quorum(n, client, m->id, "pr", m->opts.pr, 0, &pr))
		return;
	pl = placement_primaries(n->pl, p, &np);
	q = req_new(n, RQ_GET, client, m->id, m->opts.timeout_ms);
	if (q == NULL || (q->key = malloc(m->key.len)) == NULL) {
		if (q != NULL)
			req_free(n, q);
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		return;
	}
	memcpy(q->key, m->key.p, m->key.len);
	q->keylen = m->key.len;
	q->type = PROTO_GET;
	q->qname = "r";
	q->need = r > pr ? r : pr;
	q->need_primary = pr;
	q->nslots = np;
	/* ask the others first, so a synchronous local answer finds them
	 * counted */
	for (uint32_t i = 0; i < np; i++) {
		slot *s = &q->slots[i];

		if (placement_is_self(n->pl, pl[i])) {
			s->addr = NULL;
			s->state = SLOT_WAIT;
			q->asked++;
			q->reachable++;
			continue;
		}
		s->addr = placement_addr(n->pl, pl[i]);
		if (placement_is_down(n->pl, pl[i])) {
			s->state = SLOT_UNASKED;
			continue;
		}
		q->reachable++;
		n->pb.size = 0;
		if (peer_encode_rget(&n->pb, q->pid, n->cfg.listen, m->key.p, m->key.len) != 0 ||
		    n->w->ops->send(n->w, s->addr, n->pb.data, n->pb.size) != 0) {
			s->state = SLOT_UNASKED;
			continue;
		}
		s->state = SLOT_WAIT;
		q->asked++;
	}
	if (!req_arm(n, q)) {
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		q->answered = true;
		q->asked = q->acks = q->failed = 0;
		req_free(n, q);
		return;
	}
	if (q->asked == 0) {
		req_finish(n, q);
		return;
	}
	for (uint32_t i = 0; i < np; i++) {
		if (q->slots[i].addr == NULL && q->slots[i].state == SLOT_WAIT) {
			object *obj = NULL;
			bitcask *bc;
			int rc = local_read(n, m->key.p, m->key.len, &bc, &obj);

			if (rc == 0)
				rc = get_absorb(n, q, i, obj);
			object_free(obj);
			slot_done(n, q, i, rc);   /* may answer and free q */
			return;
		}
	}
}

/* A replica's RVALUE for one of our gets. */
static void on_rvalue(node *n, const peer_msg *pm)
{
	req *q = req_by_pid(n, pm->id);
	const char *from = placement_intern(n->pl, pm->from);
	object *obj = NULL;
	int rc;

	if (q == NULL || q->kind != RQ_GET || from == NULL)
		return;
	for (uint32_t i = 0; i < q->nslots; i++) {
		if (q->slots[i].addr != from || q->slots[i].state != SLOT_WAIT)
			continue;
		if (pm->code != 0)
			rc = proto_error_to_dkv(pm->code);
		else if (pm->has_data && (rc = object_decode(pm->data, pm->datalen, &n->olim, &obj)) != 0)
			logf_(n, DKV_LOG_WARNING, "replica %s sent an object that fails to decode: %s",
			      from, dkv_strerror(rc));
		else
			rc = get_absorb(n, q, i, obj);
		object_free(obj);
		slot_done(n, q, i, rc);
		return;
	}
}

/* --- writes --------------------------------------------------------------- */

/* Forward a client's write to a primary of its key (this node is not one). */
static void forward(node *n, uint64_t client, const proto_msg *m, const void *payload,
		    size_t len, const uint32_t *pl, uint32_t np)
{
	const char *to = NULL;
	req *q;

	for (uint32_t i = 0; i < np && to == NULL; i++)
		if (!placement_is_down(n->pl, pl[i]))
			to = placement_addr(n->pl, pl[i]);
	if (to == NULL) {
		reply_quorum(n, client, m->id, "w", 0, dkv_config_quorum(m->opts.w ? m->opts.w : n->cfg.w,
			     n->n_val), false, 0);
		return;
	}
	q = req_new(n, RQ_FWD, client, m->id, m->opts.timeout_ms);
	if (q == NULL) {
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		return;
	}
	q->type = m->type;
	q->target = to;
	/* a little longer than the coordinator's own deadline, so its
	 * answer (often a timeout that says more) wins */
	q->timeout_ms += q->timeout_ms / 10 + 100;
	n->pb.size = 0;
	if (!req_arm(n, q) || peer_encode_fwd(&n->pb, q->pid, n->cfg.listen, payload, len) != 0 ||
	    n->w->ops->send(n->w, to, n->pb.data, n->pb.size) != 0) {
		reply_error(n, client, m->id, PROTO_ERR_QUORUM,
			    "quorum not met: could not reach %s, the coordinator for this key", to);
		req_free(n, q);
		return;
	}
	n->st.forwarded++;
}

static void on_fwdreply(node *n, const peer_msg *pm)
{
	req *q = req_by_pid(n, pm->id);

	if (q == NULL || q->kind != RQ_FWD)
		return;
	if (!q->answered) {
		send_frame(n, q->client, pm->data, pm->datalen);
		count_latency(n, q->started_us);
		if (q->type == PROTO_PUT)
			n->st.puts++;
		else if (q->type == PROTO_DELETE)
			n->st.deletes++;
	}
	req_free(n, q);
}

static void do_write(node *n, uint64_t client, const proto_msg *m, const void *payload,
		     size_t len, bool forwarded)
{
	uint32_t w, pw, np, p = placement_partition(n->pl, m->key.p, m->key.len);
	const uint32_t *pl;
	object_vv ctx = { 0 };
	object *obj = NULL;
	bool primary = false;
	bitcask *bc;
	req *q;
	int rc;

	if (!quorum(n, client, m->id, "w", m->opts.w, n->cfg.w, &w) ||
	    !quorum(n, client, m->id, "pw", m->opts.pw, 0, &pw))
		return;
	pl = placement_primaries(n->pl, p, &np);
	for (uint32_t i = 0; i < np; i++)
		primary |= placement_is_self(n->pl, pl[i]);
	if (!primary) {
		if (np == 0)
			reply_error(n, client, m->id, PROTO_ERR_QUORUM,
				    "quorum not met: no valid member in the ring");
		else if (forwarded)
			reply_error(n, client, m->id, PROTO_ERR_QUORUM,
				    "quorum not met: %s is not a replica of this key in its view of "
				    "the ring (membership is changing); retry", n->node_id);
		else
			forward(n, client, m, payload, len, pl, np);
		return;
	}
	rc = object_context_decode(m->context.p, m->context.len, &n->olim, &ctx);
	if (rc != 0) {
		reply_error(n, client, m->id, PROTO_ERR_CONTEXT,
			    "malformed context: %s (send back the context a get returned)",
			    dkv_strerror(rc));
		return;
	}
	rc = local_read(n, m->key.p, m->key.len, &bc, &obj);
	if (rc != 0) {
		object_vv_release(&ctx);
		reply_store_error(n, client, m->id, rc, "read before write failed");
		return;
	}
	if (object_vv_get(&ctx, n->actor) > object_vv_get(obj ? object_vector(obj) : NULL, n->actor)) {
		/* Only this node makes its own dots, and it stores each one
		 * before anyone can read it: a context claiming more is forged
		 * or from a lost incarnation, and would burn our counters. */
		object_vv_release(&ctx);
		object_free(obj);
		reply_error(n, client, m->id, PROTO_ERR_CONTEXT,
			    "malformed context: it claims writes this node never made");
		return;
	}
	if (obj == NULL && (obj = object_new()) == NULL) {
		object_vv_release(&ctx);
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		return;
	}
	uint64_t now = n->w->ops->wall_ms(n->w);
	if (m->type == PROTO_PUT)
		rc = object_put(obj, n->actor, &ctx, m->value.p, m->value.len, now);
	else
		rc = object_delete(obj, n->actor, &ctx, now);
	object_vv_release(&ctx);
	if (rc == 0) {
		object_prune(obj, n->cfg.vclock_max, n->actor);
		n->ob.size = 0;
		rc = object_encode(obj, &n->ob);
	}
	if (rc == 0 && object_sibling_count(obj) > n->olim.max_siblings) {
		/* stored, it could never be read back */
		reply_error(n, client, m->id, PROTO_ERR_TOOBIG,
			    "too many siblings: this write would make %zu > %zu; resolve them by "
			    "writing with the context of a read",
			    object_sibling_count(obj), n->olim.max_siblings);
		object_free(obj);
		return;
	}
	if (rc == 0 && n->ob.size > n->max_object) {
		reply_error(n, client, m->id, PROTO_ERR_TOOBIG,
			    "object too large: %zu siblings take %zu bytes > %zu (max_frame less "
			    "room for the key); resolve the siblings by writing with a context",
			    object_sibling_count(obj), n->ob.size, n->max_object);
		object_free(obj);
		return;
	}
	q = rc == 0 ? req_new(n, RQ_WRITE, client, m->id, m->opts.timeout_ms) : NULL;
	if (rc == 0 && q == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		/* the context the OK carries: what this write produced */
		size_t start = n->ob.size;

		rc = object_context_encode(obj, &n->ob);
		if (rc == 0 && (q->ctx = malloc(n->ob.size - start)) == NULL)
			rc = -ENOMEM;
		if (rc == 0) {
			q->ctxlen = n->ob.size - start;
			memcpy(q->ctx, n->ob.data + start, q->ctxlen);
		}
		n->ob.size = start;
	}
	object_free(obj);
	if (rc != 0) {
		if (q != NULL)
			req_free(n, q);
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "%s", dkv_strerror(rc));
		return;
	}
	q->type = m->type;
	q->qname = "w";
	q->need = w;
	q->need_primary = pw;
	/* slot 0 is this node; then the other primaries */
	q->nslots = 1;
	q->slots[0].addr = NULL;
	q->slots[0].state = SLOT_WAIT;
	q->asked = 1;
	q->reachable = 1;
	for (uint32_t i = 0; i < np; i++) {
		slot *s;

		if (placement_is_self(n->pl, pl[i]))
			continue;
		s = &q->slots[q->nslots++];
		s->addr = placement_addr(n->pl, pl[i]);
		s->state = SLOT_UNASKED;
		if (placement_is_down(n->pl, pl[i]))
			continue;
		q->reachable++;
		n->pb.size = 0;
		if (peer_encode_rput(&n->pb, q->pid, n->cfg.listen, m->key.p, m->key.len,
				     n->ob.data, n->ob.size, true) != 0 ||
		    n->w->ops->send(n->w, s->addr, n->pb.data, n->pb.size) != 0)
			continue;
		s->state = SLOT_WAIT;
		q->asked++;
	}
	if (!req_arm(n, q)) {
		/* without a deadline a lost peer answer would pin q: refuse */
		for (uint32_t i = 1; i < q->nslots; i++)
			if (q->slots[i].state == SLOT_WAIT)
				slot_done(n, q, i, -ENOMEM);
		slot_done(n, q, 0, -ENOMEM);
		return;
	}
	rc = bitcask_put(bc, m->key.p, m->key.len, n->ob.data, n->ob.size);
	if (rc != 0) {
		logf_(n, DKV_LOG_ERROR, "partition %" PRIu32 ": write failed: %s", p, dkv_strerror(rc));
		slot_done(n, q, 0, rc);
		return;
	}
	n->parts[p].dirty = true;
	if (n->cfg.sync != DKV_SYNC_ALWAYS) {
		slot_done(n, q, 0, 0);
		return;
	}
	batch_add(n, q);
}

static void on_rack(node *n, const peer_msg *pm)
{
	req *q = req_by_pid(n, pm->id);
	const char *from = placement_intern(n->pl, pm->from);

	if (q == NULL || q->kind != RQ_WRITE || from == NULL)
		return;
	for (uint32_t i = 1; i < q->nslots; i++)
		if (q->slots[i].addr == from && q->slots[i].state == SLOT_WAIT) {
			slot_done(n, q, i, pm->code == 0 ? 0 : proto_error_to_dkv(pm->code));
			return;
		}
}

/* --- the replica side ----------------------------------------------------- */

static void on_rget(node *n, const peer_msg *pm)
{
	uint32_t p = placement_partition(n->pl, pm->key, pm->keylen);
	void *val = NULL;
	size_t vlen = 0;
	uint32_t code = 0;
	bitcask *bc;
	int rc;

	if (pm->keylen > n->cfg.max_key_size)
		return;
	rc = open_part(n, p, &bc);
	if (rc == 0)
		rc = bitcask_get(bc, pm->key, pm->keylen, &val, &vlen);
	if (rc != 0 && rc != DKV_ENOTFOUND)
		code = proto_error_from_dkv(rc);
	n->pb.size = 0;
	if (peer_encode_rvalue(&n->pb, pm->id, n->cfg.listen, code, rc == 0 ? (val ? val : "") : NULL,
			       vlen) == 0)
		(void)n->w->ops->send(n->w, pm->from, n->pb.data, n->pb.size);
	free(val);
	n->st.replica_reads++;
}

static void on_rput(node *n, const peer_msg *pm)
{
	object *obj = NULL;
	bool wrote = false;
	const char *from;
	int rc;

	if (pm->keylen > n->cfg.max_key_size)
		rc = DKV_ETOOBIG;
	else
		rc = object_decode(pm->data, pm->datalen, &n->olim, &obj);
	if (rc == 0)
		rc = local_merge(n, pm->key, pm->keylen, obj, &wrote);
	object_free(obj);
	n->st.replica_writes++;
	if (rc != 0)
		logf_(n, DKV_LOG_WARNING, "replica write from %s failed: %s", pm->from,
		      dkv_strerror(rc));
	if (!pm->flag)
		return;
	if (rc == 0 && wrote && n->cfg.sync == DKV_SYNC_ALWAYS &&
	    (from = placement_intern(n->pl, pm->from)) != NULL) {
		req *q = req_new(n, RQ_REPLICA, 0, pm->id, 0);

		if (q != NULL) {
			q->origin = from;
			q->answered = true;
			batch_add(n, q);
			return;
		}
		rc = -ENOMEM;
	}
	send_rack(n, pm->from, pm->id, rc == 0 ? 0 : proto_error_from_dkv(rc));
}

/* --- peers going away ----------------------------------------------------- */

/* Fail everything waiting on the peer at addr now, not at the timeouts. */
static void peer_gone(node *n, const char *addr)
{
	const char *a = placement_intern(n->pl, addr);
	req *q, *next;

	if (a == NULL)
		return;
	for (q = n->inflight.next; q != &n->inflight; q = next) {
		next = q->next;
		if (q->kind == RQ_JOIN && q->target == a) {
			reply_error(n, q->client, q->id, PROTO_ERR_TIMEOUT,
				    "join: cannot reach %s", a);
			req_free(n, q);
			continue;
		}
		if (q->kind == RQ_FWD && q->target == a) {
			if (!q->answered)
				reply_error(n, q->client, q->id, PROTO_ERR_TIMEOUT,
					    "the coordinator %s failed before answering; the write "
					    "may or may not have been applied", a);
			req_free(n, q);
			continue;
		}
		if (q->kind != RQ_GET && q->kind != RQ_WRITE)
			continue;
		/* slot_done may free q: find a waiting slot, one at a time */
		for (uint32_t i = 0; i < q->nslots; i++)
			if (q->slots[i].addr == a && q->slots[i].state == SLOT_WAIT) {
				slot_done(n, q, i, DKV_ECLOSED);
				break;
			}
	}
}

static void ring_changed(void *arg)
{
	node *n = arg;

	if (n->pl != NULL)   /* NULL while cluster_open runs: node_open builds it next */
		placement_rebuild(n->pl);
}

static void on_member_down(void *arg, const char *addr)
{
	peer_gone(arg, addr);
}

void node_peer_down(node *n, const char *addr)
{
	n->st.peer_downs++;
	peer_gone(n, addr);
	if (n->cl != NULL)
		cluster_peer_down(n->cl, addr);
}

void node_datagram(node *n, const void *buf, size_t len)
{
	n->st.datagrams++;
	if (n->cl != NULL)
		cluster_datagram(n->cl, buf, len);
}

/* --- statistics ----------------------------------------------------------- */

/* Keys and bytes in the stores this node holds (every partition directory
 * on disk is open: node_open opens them). */
static void stored(node *n, uint64_t *keys, uint64_t *bytes)
{
	*keys = *bytes = 0;
	for (uint32_t p = 0; p < n->ring_size; p++) {
		bitcask_stats st;

		if (n->parts[p].bc == NULL)
			continue;
		bitcask_stats_get(n->parts[p].bc, &st, NULL, NULL);
		*keys += st.keys;
		*bytes += st.live_bytes;
	}
}

static uint64_t local_keys(void *arg)
{
	uint64_t keys, bytes;

	stored(arg, &keys, &bytes);
	return keys;
}

static uint64_t requests_total(const node *n)
{
	return n->st.gets + n->st.puts + n->st.deletes + n->st.pings + n->st.errors;
}

static void rate_tick(void *arg)
{
	node *n = arg;

	n->rate_timer = n->w->ops->timer_add(n->w, 1000, rate_tick, n);
	n->rate[n->rate_at++ % RATE_WINDOW] = requests_total(n);
}

static double requests_per_sec(const node *n)
{
	unsigned have = n->rate_at < RATE_WINDOW ? n->rate_at : RATE_WINDOW;
	uint64_t oldest;

	if (have == 0)
		return 0;
	oldest = n->rate[(n->rate_at - have) % RATE_WINDOW];
	return (double)(requests_total(n) - oldest) / have;
}

/* --- admin ---------------------------------------------------------------- */

#define PKS(pk, s) msgpack_pack_str_with_body(pk, s, strlen(s))

static void admin_members(node *n, msgpack_packer *pk)
{
	size_t nc = cluster_count(n->cl);

	msgpack_pack_map(pk, 1);
	PKS(pk, "members");
	msgpack_pack_array(pk, (uint32_t)nc);
	for (size_t i = 0; i < nc; i++) {
		const member *m = cluster_at(n->cl, i);

		msgpack_pack_map(pk, 7);
		PKS(pk, "id");
		PKS(pk, m->id);
		PKS(pk, "addr");
		PKS(pk, m->addr);
		PKS(pk, "status");
		PKS(pk, member_status_name(m->status));
		PKS(pk, "liveness");
		PKS(pk, member_liveness_name(m->liveness));
		PKS(pk, "incarnation");
		msgpack_pack_uint64(pk, m->incarnation);
		PKS(pk, "version");
		msgpack_pack_uint64(pk, m->version);
		PKS(pk, "keys");
		msgpack_pack_uint64(pk, m == cluster_self(n->cl) ? local_keys(n) : m->keys);
	}
}

static void admin_ring(node *n, msgpack_packer *pk)
{
	const ring *rg = placement_ring(n->pl);
	size_t nm = rg ? ring_members(rg) : 0;
	uint32_t np = rg ? ring_n(rg) : 0;
	uint64_t *reps = calloc(nm ? nm : 1, sizeof(*reps));
	uint64_t *firsts = calloc(nm ? nm : 1, sizeof(*firsts));

	msgpack_pack_map(pk, 4);
	PKS(pk, "ring_size");
	msgpack_pack_uint32(pk, n->ring_size);
	PKS(pk, "n_val");
	msgpack_pack_uint32(pk, n->n_val);
	if (reps == NULL || firsts == NULL)
		nm = 0;
	for (uint32_t p = 0; nm > 0 && p < n->ring_size; p++) {
		const uint32_t *pl = ring_preflist(rg, p);

		firsts[pl[0]]++;
		for (uint32_t i = 0; i < np; i++)
			reps[pl[i]]++;
	}
	PKS(pk, "ownership");
	msgpack_pack_array(pk, (uint32_t)nm);
	for (size_t i = 0; i < nm; i++) {
		msgpack_pack_map(pk, 4);
		PKS(pk, "id");
		PKS(pk, ring_member_id(rg, i));
		PKS(pk, "replicas");
		msgpack_pack_uint64(pk, reps[i]);
		PKS(pk, "first");
		msgpack_pack_uint64(pk, firsts[i]);
		PKS(pk, "share");
		msgpack_pack_double(pk, (double)reps[i] / ((double)n->ring_size * np));
	}
	PKS(pk, "partitions");
	msgpack_pack_array(pk, nm ? n->ring_size : 0);
	for (uint32_t p = 0; nm > 0 && p < n->ring_size; p++) {
		const uint32_t *pl = ring_preflist(rg, p);

		msgpack_pack_map(pk, 2);
		PKS(pk, "index");
		msgpack_pack_uint32(pk, p);
		PKS(pk, "preflist");
		msgpack_pack_array(pk, np);
		for (uint32_t i = 0; i < np; i++)
			PKS(pk, ring_member_id(rg, pl[i]));
	}
	free(reps);
	free(firsts);
}

static void admin_status(node *n, msgpack_packer *pk)
{
	uint64_t keys, bytes, held = 0;

	stored(n, &keys, &bytes);
	for (uint32_t p = 0; p < n->ring_size; p++)
		held += placement_holds(n->pl, p);
	msgpack_pack_map(pk, 19);
	PKS(pk, "id");
	PKS(pk, n->node_id);
	PKS(pk, "addr");
	PKS(pk, n->cfg.listen);
	PKS(pk, "uptime_s");
	msgpack_pack_uint64(pk, (n->w->ops->now_ms(n->w) - n->started_ms) / 1000);
	PKS(pk, "keys");
	msgpack_pack_uint64(pk, keys);
	PKS(pk, "bytes");
	msgpack_pack_uint64(pk, bytes);
	PKS(pk, "requests");
	msgpack_pack_uint64(pk, requests_total(n));
	PKS(pk, "requests_per_sec");
	msgpack_pack_double(pk, requests_per_sec(n));
	PKS(pk, "latency_us");
	msgpack_pack_map(pk, 4);
	PKS(pk, "p50");
	msgpack_pack_uint64(pk, hist_percentile(n->lat, 50));
	PKS(pk, "p99");
	msgpack_pack_uint64(pk, hist_percentile(n->lat, 99));
	PKS(pk, "p999");
	msgpack_pack_uint64(pk, hist_percentile(n->lat, 99.9));
	PKS(pk, "max");
	msgpack_pack_uint64(pk, hist_max(n->lat));
	PKS(pk, "connections");
	msgpack_pack_uint64(pk, n->w->ops->connections ? n->w->ops->connections(n->w) : 0);
	PKS(pk, "partitions_held");
	msgpack_pack_uint64(pk, held);
	PKS(pk, "partitions_open");
	msgpack_pack_uint64(pk, n->nopen);
	PKS(pk, "ring_size");
	msgpack_pack_uint32(pk, n->ring_size);
	PKS(pk, "n_val");
	msgpack_pack_uint32(pk, n->n_val);
	PKS(pk, "members");
	msgpack_pack_uint64(pk, cluster_valid_count(n->cl));
	PKS(pk, "gets");
	msgpack_pack_uint64(pk, n->st.gets);
	PKS(pk, "puts");
	msgpack_pack_uint64(pk, n->st.puts);
	PKS(pk, "deletes");
	msgpack_pack_uint64(pk, n->st.deletes);
	PKS(pk, "errors");
	msgpack_pack_uint64(pk, n->st.errors);
	PKS(pk, "read_repairs");
	msgpack_pack_uint64(pk, n->st.read_repairs);
}

/* Where a key lives: its partition and preference list (primaries, then
 * fallbacks), with each member's liveness. */
static void admin_preflist(node *n, msgpack_packer *pk, const proto_bytes *key)
{
	uint32_t p = placement_partition(n->pl, key->p, key->len);
	const ring *rg = placement_ring(n->pl);
	size_t nm = rg ? ring_members(rg) : 0;
	const uint32_t *pl = rg ? ring_preflist(rg, p) : NULL;

	msgpack_pack_map(pk, 3);
	PKS(pk, "partition");
	msgpack_pack_uint32(pk, p);
	PKS(pk, "n");
	msgpack_pack_uint32(pk, rg ? ring_n(rg) : 0);
	PKS(pk, "preflist");
	msgpack_pack_array(pk, (uint32_t)nm);
	for (size_t i = 0; i < nm; i++) {
		const member *m = cluster_find(n->cl, ring_member_id(rg, pl[i]));

		msgpack_pack_map(pk, 4);
		PKS(pk, "id");
		PKS(pk, m->id);
		PKS(pk, "addr");
		PKS(pk, m->addr);
		PKS(pk, "primary");
		if (i < ring_n(rg))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		PKS(pk, "liveness");
		PKS(pk, member_liveness_name(m->liveness));
	}
}

static void admin_ok(msgpack_packer *pk, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void admin_ok(msgpack_packer *pk, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msgpack_pack_map(pk, 2);
	PKS(pk, "ok");
	msgpack_pack_true(pk);
	PKS(pk, "message");
	PKS(pk, msg);
}

/* leave/remove: refuse when the member holds data (no transfer yet). */
static bool may_drop(node *n, uint64_t client, uint64_t id, const member *m, const char *verb)
{
	bool self = m == cluster_self(n->cl);
	uint64_t keys = self ? local_keys(n) : m->keys;

	if (m->status == MEMBER_REMOVED) {
		reply_error(n, client, id, PROTO_ERR_INVALID, "%s has already been removed", m->id);
		return false;
	}
	if (m->status == MEMBER_VALID && cluster_valid_count(n->cl) == 1) {
		reply_error(n, client, id, PROTO_ERR_INVALID,
			    "refused: %s is the last valid member of the ring", m->id);
		return false;
	}
	if (!self && m->keys_stamp == 0) {
		reply_error(n, client, id, PROTO_ERR_INVALID,
			    "refused: %s has never reported how many keys it holds, so a %s could "
			    "strand data; start it once so it reports, or wait for ownership transfer",
			    m->id, verb);
		return false;
	}
	if (keys > 0) {
		reply_error(n, client, id, PROTO_ERR_INVALID,
			    "refused: %s holds %" PRIu64 " keys%s; a %s would strand them, because "
			    "moving data to new owners (ownership transfer) does not exist yet",
			    m->id, keys, self ? "" : " (as it last reported)", verb);
		return false;
	}
	return true;
}

static void join_tick(void *arg);

static void do_admin(node *n, uint64_t client, const proto_msg *m)
{
	char cmd[40], arg[PEER_MAX_ADDR + 1] = "";
	msgpack_sbuffer out;
	msgpack_packer pk;

	snprintf(cmd, sizeof(cmd), "%.*s", (int)m->command.len, (const char *)m->command.p);
	if (m->nargs > 0) {
		if (m->args[0].len > PEER_MAX_ADDR) {
			reply_error(n, client, m->id, PROTO_ERR_INVALID, "%s: argument too long", cmd);
			return;
		}
		snprintf(arg, sizeof(arg), "%.*s", (int)m->args[0].len, (const char *)m->args[0].p);
	}
	msgpack_sbuffer_init(&out);
	msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
	if (strcmp(cmd, "members") == 0 && m->nargs == 0)
		admin_members(n, &pk);
	else if (strcmp(cmd, "ring") == 0 && m->nargs == 0)
		admin_ring(n, &pk);
	else if (strcmp(cmd, "status") == 0 && m->nargs == 0)
		admin_status(n, &pk);
	else if (strcmp(cmd, "preflist") == 0 && m->nargs == 1 && m->args[0].len > 0)
		admin_preflist(n, &pk, &m->args[0]);
	else if (strcmp(cmd, "join") == 0 && m->nargs == 1) {
		const char *seed = placement_intern(n->pl, arg);
		req *q = seed ? req_new(n, RQ_JOIN, client, m->id, 0) : NULL;

		if (q == NULL) {
			reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
			goto out;
		}
		q->target = seed;
		q->need = (uint32_t)cluster_count(n->cl);
		cluster_join(n->cl, seed);
		q->timer = n->w->ops->timer_add(n->w, 50, join_tick, q);
		goto out;   /* join_tick answers */
	} else if ((strcmp(cmd, "leave") == 0 && m->nargs <= 1) ||
		   (strcmp(cmd, "remove") == 0 && m->nargs == 1)) {
		bool leave = cmd[0] == 'l';
		const member *mb = cluster_find(n->cl, arg[0] ? arg : n->node_id);

		if (mb == NULL) {
			reply_error(n, client, m->id, PROTO_ERR_INVALID, "no member with id \"%s\"", arg);
			goto out;
		}
		if (!leave && mb == cluster_self(n->cl)) {
			reply_error(n, client, m->id, PROTO_ERR_INVALID,
				    "a node cannot remove itself: use leave");
			goto out;
		}
		if (!may_drop(n, client, m->id, mb, leave ? "leave" : "remove"))
			goto out;
		char id[PEER_MAX_ADDR + 1];

		snprintf(id, sizeof(id), "%s", mb->id);
		if (cluster_set_status(n->cl, id, MEMBER_REMOVED) != 0) {
			reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "cannot change %s", id);
			goto out;
		}
		admin_ok(&pk, "%s %s the ring (it held no data)", id, leave ? "has left" : "was removed from");
	} else {
		reply_error(n, client, m->id, PROTO_ERR_INVALID,
			    "unknown admin command \"%s\" with %zu arguments (members, ring, status, "
			    "preflist KEY, join SEED, leave [NODE], remove NODE)", cmd, m->nargs);
		goto out;
	}
	n->sb.size = 0;
	if (proto_encode_info(&n->sb, m->id, out.data, out.size) == 0)
		send_sb(n, client);
	else
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
out:
	msgpack_sbuffer_destroy(&out);
}

/* A join waits until the seed's state has arrived (more members than
 * before), the seed is found unreachable, or its deadline passes. */
static void join_tick(void *arg)
{
	req *q = arg;
	node *n = q->n;
	uint64_t t = n->w->ops->now_ms(n->w);
	msgpack_sbuffer out;
	msgpack_packer pk;

	q->timer = NULL;
	if (cluster_count(n->cl) > q->need || cluster_find_addr(n->cl, q->target) != NULL) {
		msgpack_sbuffer_init(&out);
		msgpack_packer_init(&pk, &out, msgpack_sbuffer_write);
		admin_ok(&pk, "joined the cluster of %s: %zu valid members", q->target,
			 cluster_valid_count(n->cl));
		n->sb.size = 0;
		if (proto_encode_info(&n->sb, q->id, out.data, out.size) == 0)
			send_sb(n, q->client);
		msgpack_sbuffer_destroy(&out);
		req_free(n, q);
		return;
	}
	if (t - q->started_ms >= q->timeout_ms) {
		reply_error(n, q->client, q->id, PROTO_ERR_TIMEOUT,
			    "join: no answer from %s within %u ms", q->target, q->timeout_ms);
		req_free(n, q);
		return;
	}
	q->timer = n->w->ops->timer_add(n->w, 50, join_tick, q);
}

/* --- entry points --------------------------------------------------------- */

static int handle_client(node *n, uint64_t client, const void *payload, size_t len,
			 bool forwarded);

/* A FWD: coordinate the request inside it as if its client were here. */
static void on_fwd(node *n, const peer_msg *pm)
{
	const char *from = placement_intern(n->pl, pm->from);
	size_t i;

	if (from == NULL)
		return;
	for (i = 0; i < n->nremotes && n->remotes[i].addr != NULL; i++)
		;
	if (i == n->nremotes) {
		remote *r = realloc(n->remotes, (n->nremotes + 1) * sizeof(*r));

		if (r == NULL)
			return;   /* the forwarder times out */
		n->remotes = r;
		n->nremotes++;
	}
	n->remotes[i].addr = from;
	n->remotes[i].fid = pm->id;
	(void)handle_client(n, REMOTE_BIT | i, pm->data, pm->datalen, true);
}

static void handle_peer(node *n, const void *payload, size_t len)
{
	char err[128];
	peer_msg pm;

	if (peer_decode(payload, len, &pm, err, sizeof(err)) != 0) {
		n->st.bad_peer_messages++;
		logf_(n, DKV_LOG_DEBUG, "dropped a peer message: %s", err);
		return;
	}
	switch (pm.type) {
	case PEER_FWD:      on_fwd(n, &pm); break;
	case PEER_FWDREPLY: on_fwdreply(n, &pm); break;
	case PEER_RGET:     on_rget(n, &pm); break;
	case PEER_RVALUE:   on_rvalue(n, &pm); break;
	case PEER_RPUT:     on_rput(n, &pm); break;
	case PEER_RACK:     on_rack(n, &pm); break;
	case PEER_SYNC:     cluster_sync(n->cl, &pm); break;
	default:            break;
	}
}

static int handle_client(node *n, uint64_t client, const void *payload, size_t len,
			 bool forwarded)
{
	char err[256];
	proto_msg m;
	int rc;

	rc = proto_decode(payload, len, &n->lim, &m, err, sizeof(err));
	if (rc == DKV_EPROTO && m.header_ok && proto_type_name(m.type) == NULL) {
		/* A whole frame of a type this node does not know (a newer
		 * client?): the stream is intact, so answer and go on. */
		reply_error(n, client, m.id, PROTO_ERR_TYPE, "%s", err);
		return 0;
	}
	if (rc != 0) {
		uint32_t code = rc == DKV_EVERSION ? PROTO_ERR_VERSION :
				rc == DKV_ETOOBIG ? PROTO_ERR_TOOBIG :
				rc == DKV_EINVAL ? PROTO_ERR_INVALID :
				rc == -ENOMEM ? PROTO_ERR_INTERNAL : PROTO_ERR_PROTOCOL;

		reply_error(n, client, m.id, code, "%s", err);
		/* A well-formed request with a bad key, value or option is
		 * answered; anything else leaves us unable to trust the
		 * stream. */
		return rc == DKV_ETOOBIG || rc == DKV_EINVAL ? 0 : DKV_EPROTO;
	}
	if (!proto_is_request(m.type)) {
		reply_error(n, client, m.id, PROTO_ERR_TYPE, "%s is a reply, not a request",
			    proto_type_name(m.type));
		proto_msg_release(&m);
		return DKV_EPROTO;
	}
	if (n->draining) {
		reply_error(n, client, m.id, PROTO_ERR_SHUTDOWN, "node is shutting down");
		proto_msg_release(&m);
		return 0;
	}
	switch (m.type) {
	case PROTO_GET:
		do_get(n, client, &m);
		break;
	case PROTO_PUT:
	case PROTO_DELETE:
		do_write(n, client, &m, payload, len, forwarded);
		break;
	case PROTO_PING:
		n->sb.size = 0;
		if (proto_encode_pong(&n->sb, m.id) == 0) {
			n->st.pings++;
			send_sb(n, client);
		}
		break;
	case PROTO_ADMIN:
		do_admin(n, client, &m);
		break;
	default:
		break;
	}
	proto_msg_release(&m);
	return 0;
}

int node_request(node *n, uint64_t client, const void *payload, size_t len)
{
	uint32_t type;
	uint64_t id;

	if (peer_is_peer_frame(payload, len, &type, &id)) {
		handle_peer(n, payload, len);
		return 0;
	}
	return handle_client(n, client, payload, len, false);
}

/* Open every partition that has a directory or that this node holds a
 * replica of: keys are counted right from the start, and no request waits
 * for a store's recovery or creation. */
static int open_existing(node *n, char *err, size_t errlen)
{
	uint32_t *list = calloc(n->ring_size, sizeof(*list));
	char path[4200];
	struct stat sst;
	size_t k = 0;
	int rc;

	if (list == NULL)
		return -ENOMEM;
	for (uint32_t p = 0; p < n->ring_size; p++) {
		bool held = placement_holds(n->pl, p);

		if (n->parts[p].bc != NULL)
			continue;
		snprintf(path, sizeof(path), "%s/partitions/%04" PRIu32, n->dir, p);
		if (held || stat(path, &sst) == 0)
			list[k++] = p;
	}
	rc = open_parts(n, list, k, err, errlen);
	free(list);
	return rc;
}

/* Release what a node owns besides its stores (closed by then, or never
 * opened), and the node. */
static void node_free(node *n)
{
	cluster_close(n->cl);
	placement_free(n->pl);   /* after: it borrows the cluster */
	free(n->remotes);
	hist_free(n->lat);
	if (n->rate_timer != NULL)
		n->w->ops->timer_cancel(n->w, n->rate_timer);
	datadir_close(n->dd);
	free(n->parts);
	free(n->batch_stores);
	msgpack_sbuffer_destroy(&n->sb);
	msgpack_sbuffer_destroy(&n->ob);
	msgpack_sbuffer_destroy(&n->pb);
	dkv_config_free(&n->cfg);
	free(n);
}

int node_open(node **out, const dkv_config *cfg, world *w, dkv_log *log,
	      char *err, size_t errlen)
{
	cluster_hooks hooks;
	datadir_identity ident;
	node *n;
	int rc;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->w = w;
	n->log = log;
	n->inflight.next = n->inflight.prev = &n->inflight;
	n->batch_wait_tail = &n->batch_wait;
	msgpack_sbuffer_init(&n->sb);
	msgpack_sbuffer_init(&n->ob);
	msgpack_sbuffer_init(&n->pb);
	rc = dkv_config_copy(&n->cfg, cfg);
	if (rc != 0) {
		free(n);
		return rc;
	}
	if (hist_new(&n->lat) != 0 || siphash_key_random(&n->hkey) != 0) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = datadir_open(&n->dd, cfg->data_dir, err, errlen)) != 0)
		goto fail;
	n->dir = datadir_path(n->dd);
	if ((rc = datadir_identity_load(n->dd, cfg, &ident, err, errlen)) != 0)
		goto fail;
	if (ident.created) {
		if ((rc = datadir_identity_record(n->dd, &ident, err, errlen)) != 0)
			goto fail;
		logf_(n, DKV_LOG_INFO, "created node %s in %s (ring_size %u, n_val %u)",
		      ident.node_id, n->dir, ident.ring_size, ident.n_val);
	}
	snprintf(n->node_id, sizeof(n->node_id), "%s", ident.node_id);
	n->actor = ident.actor;
	n->ring_size = ident.ring_size;
	n->n_val = ident.n_val;
	n->parts = calloc(n->ring_size, sizeof(*n->parts));
	n->batch_stores = calloc(n->ring_size, sizeof(*n->batch_stores));
	if (n->parts == NULL || n->batch_stores == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	n->lim.max_key = cfg->max_key_size;
	n->lim.max_value = cfg->max_value_size;
	n->max_object = cfg->max_frame - FRAME_SLACK - cfg->max_key_size;
	object_limits_init(&n->olim);
	n->olim.max_value = n->max_object;
	if (cfg->probe_timeout >= cfg->probe_interval) {
		snprintf(err, errlen, "probe_timeout (%u ms) must be shorter than probe_interval "
			 "(%u ms): indirect probes happen between the two",
			 cfg->probe_timeout, cfg->probe_interval);
		rc = DKV_EINVAL;
		goto fail;
	}
	hooks.ctx = n;
	hooks.ring_changed = ring_changed;
	hooks.member_down = on_member_down;
	hooks.local_keys = local_keys;
	rc = cluster_open(&n->cl, w, log, &n->cfg, n->dir, n->node_id, n->cfg.listen,
			  !dkv_config_is_set(cfg, "listen"), &hooks, err, errlen);
	if (rc != 0)
		goto fail;
	if (strcmp(cluster_self(n->cl)->addr, n->cfg.listen) != 0) {
		/* restarted without --listen: where the cluster knows us */
		char *a = strdup(cluster_self(n->cl)->addr);

		if (a == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		free(n->cfg.listen);
		n->cfg.listen = a;
	}
	rc = placement_new(&n->pl, n->cl, n->node_id, n->ring_size, n->n_val, log);
	if (rc != 0)
		goto fail;
	placement_rebuild(n->pl);
	if (placement_ring(n->pl) == NULL && cluster_self(n->cl)->status == MEMBER_VALID) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = open_existing(n, err, errlen)) != 0)
		goto fail;
	n->started_ms = w->ops->now_ms(w);
	n->rate_timer = w->ops->timer_add(w, 1000, rate_tick, n);
	if (cfg->sync == DKV_SYNC_INTERVAL) {
		n->sync_timer = w->ops->timer_add(w, cfg->sync_interval_ms, sync_tick, n);
		if (n->sync_timer == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (n->n_val > 1 && cluster_count(n->cl) == 1 && (cfg->seeds == NULL || !cfg->seeds[0]))
		logf_(n, DKV_LOG_WARNING,
		      "n_val is %u but this node has no peers yet: requests with R or W above 1 "
		      "will fail with \"quorum not met\" until nodes join (start with --n-val 1 "
		      "for a single node, or give --seeds)", n->n_val);
	*out = n;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	for (uint32_t p = 0; n->parts != NULL && p < n->ring_size; p++)
		if (n->parts[p].bc != NULL)
			(void)bitcask_close(n->parts[p].bc);
	node_free(n);
	return rc;
}

const char *node_addr(const node *n)
{
	return n->cfg.listen;
}

void node_drain(node *n)
{
	n->draining = true;
}

size_t node_inflight(const node *n)
{
	return n->ninflight + (n->batch_running ? 1 : 0);
}

const char *node_id(const node *n)
{
	return n->node_id;
}

void node_stats_get(const node *n, node_stats *st)
{
	*st = n->st;
	st->inflight = node_inflight(n);
	st->partitions_open = n->nopen;
	st->ring_size = n->ring_size;
	st->n_val = n->n_val;
	st->actor = n->actor;
	st->members = placement_ring(n->pl) ? ring_members(placement_ring(n->pl)) : 0;
}

int node_close(node *n)
{
	int rc = 0;

	if (n == NULL)
		return 0;
	if (n->batch_running)
		return DKV_EBUSY;   /* the world still holds the stores */
	while (n->inflight.next != &n->inflight) {
		req *q = n->inflight.next;

		if (!q->answered)
			reply_error(n, q->client, q->id, PROTO_ERR_SHUTDOWN, "node is shutting down");
		req_free(n, q);
	}
	if (n->sync_timer != NULL)
		n->w->ops->timer_cancel(n->w, n->sync_timer);
	for (uint32_t p = 0; p < n->ring_size; p++) {
		bitcask *bc = n->parts[p].bc;
		int r;

		if (bc == NULL)
			continue;
		r = bitcask_sync_now(bc);
		if (r == 0)
			r = bitcask_close(bc);
		else
			(void)bitcask_close(bc);
		if (r != 0) {
			logf_(n, DKV_LOG_ERROR, "closing partition %" PRIu32 ": %s", p, dkv_strerror(r));
			if (rc == 0)
				rc = r;
		}
	}
	node_free(n);
	return rc;
}
