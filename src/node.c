#include "config.h"
/*
 * node.c -- the node: data directory, partition stores, request
 * coordination and durability batches.  See node.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "bitcask.h"
#include "error.h"
#include "node.h"
#include "object.h"
#include "proto.h"
#include "ring.h"

#define NODE_FORMAT      1
#define NODE_FILE        "NODE"
#define LOCK_FILE        "LOCK"
/* Room in a frame for everything but the stored object (key, header). */
#define FRAME_SLACK      1024u

typedef struct part {
	bitcask *bc;          /* NULL until first used */
	bool dirty;           /* appended to since its last sync batch began */
} part;

/* A request waiting for replicas (for now: for its local write to become
 * durable under sync = always). */
typedef struct node node;
typedef struct req {
	node *n;
	struct req *prev, *next;   /* the node's in-flight list */
	struct req *bnext;         /* its durability batch */
	uint64_t client, id;
	uint32_t type;
	const char *qname;         /* "w" (for messages) */
	uint32_t need;             /* acks needed (W) */
	uint32_t need_primary;     /* primary acks needed (PW) */
	uint32_t asked;            /* replicas asked */
	uint32_t acks, primary_acks, failed;
	int first_err;             /* the first replica's error */
	uint64_t started_ms;
	uint32_t timeout_ms;
	world_timer *timer;
	uint8_t *ctx;              /* the written object's context, for the OK */
	size_t ctxlen;
	bool answered;             /* its reply has been sent */
	bool in_batch;             /* a durability batch will call back for it */
} req;

struct node {
	dkv_config cfg;            /* our own copy */
	world *w;
	dkv_log *log;
	char *dir;
	char node_id[256];
	uint64_t actor;
	uint32_t ring_size;
	uint32_t n_val;
	int lock_fd;
	part *parts;               /* ring_size entries */
	size_t nopen;
	proto_limits lim;
	object_limits olim;
	size_t max_object;         /* largest encoded object stored */
	msgpack_sbuffer sb;        /* reply being built */
	msgpack_sbuffer ob;        /* object being encoded */
	bool draining;

	req inflight;              /* list head (sentinel) */
	size_t ninflight;

	/* durability */
	req *batch_wait;           /* waiting for the next batch (sync = always) */
	req **batch_wait_tail;
	req *batch_run;            /* covered by the running batch */
	bool batch_running;
	bitcask **batch_stores;    /* ring_size slots */
	world_timer *sync_timer;   /* sync = interval */

	node_stats st;
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

/* --- the data directory --------------------------------------------------- */

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) != 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int take_lock(node *n, char *err, size_t errlen)
{
	char path[4200], pid[32];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", n->dir, LOCK_FILE);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		ssize_t got = pread(fd, pid, sizeof(pid) - 1, 0);

		pid[got > 0 ? got : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK) {
			snprintf(err, errlen, "data directory %s is in use by another dynkvd (pid %s)",
				 n->dir, pid[0] ? pid : "unknown");
			return DKV_ELOCKED;
		}
		snprintf(err, errlen, "%s: flock: %s", path, strerror(e));
		return -e;
	}
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
		int e = errno;

		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	n->lock_fd = fd;
	return 0;
}

typedef struct meta {
	unsigned format;
	char node_id[256];
	uint64_t actor;
	uint32_t ring_size, n_val;
	bool have_actor, have_ring, have_n, have_id;
} meta;

/* Parse NODE.  0, -ENOENT, or DKV_ECORRUPT with the reason in err. */
static int read_meta(const char *path, meta *m, char *err, size_t errlen)
{
	char line[512];
	unsigned lineno = 0;
	FILE *f = fopen(path, "re");

	memset(m, 0, sizeof(*m));
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq, *k, *v, *end;
		unsigned long long x;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		eq = strstr(line, " = ");
		if (eq == NULL)
			goto bad;
		*eq = '\0';
		k = line;
		v = eq + 3;
		if (strcmp(k, "node_id") == 0) {
			if (strlen(v) >= sizeof(m->node_id) || v[0] == '\0')
				goto bad;
			strcpy(m->node_id, v);
			m->have_id = true;
			continue;
		}
		errno = 0;
		x = strtoull(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0')
			goto bad;
		if (strcmp(k, "format") == 0)
			m->format = (unsigned)x;
		else if (strcmp(k, "actor") == 0) {
			m->actor = x;
			m->have_actor = true;
		} else if (strcmp(k, "ring_size") == 0 && x >= 64 && x <= 1024 && (x & (x - 1)) == 0) {
			m->ring_size = (uint32_t)x;
			m->have_ring = true;
		} else if (strcmp(k, "n_val") == 0 && x >= 1 && x <= DKV_CONFIG_N_MAX) {
			m->n_val = (uint32_t)x;
			m->have_n = true;
		} else
			goto bad;
	}
	fclose(f);
	if (m->format != NODE_FORMAT) {
		snprintf(err, errlen, "%s: format %u is not one this dynkvd reads (%d)",
			 path, m->format, NODE_FORMAT);
		return DKV_EVERSION;
	}
	if (!m->have_actor || !m->have_ring || !m->have_n || !m->have_id) {
		snprintf(err, errlen, "%s: incomplete (needs node_id, actor, ring_size, n_val)", path);
		return DKV_ECORRUPT;
	}
	return 0;
bad:
	fclose(f);
	snprintf(err, errlen, "%s:%u: not a valid line", path, lineno);
	return DKV_ECORRUPT;
}

static int write_meta(const char *dir, const meta *m, char *err, size_t errlen)
{
	char path[4200], tmp[4200], buf[1024];
	int fd, len, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, NODE_FILE);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, NODE_FILE);
	len = snprintf(buf, sizeof(buf),
		       "# dynkv node identity: written once, when the node was created.\n"
		       "# ring_size and n_val are the cluster's and never change.\n"
		       "format = %d\nnode_id = %s\nactor = %" PRIu64 "\n"
		       "ring_size = %" PRIu32 "\nn_val = %" PRIu32 "\n",
		       NODE_FORMAT, m->node_id, m->actor, m->ring_size, m->n_val);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		rc = -errno;
	else {
		if (write(fd, buf, (size_t)len) != len || fsync(fd) != 0)
			rc = errno ? -errno : -EIO;
		close(fd);
	}
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

/* Read NODE, or create it from cfg; refuse a conflicting cfg. */
static int load_identity(node *n, const dkv_config *cfg, char *err, size_t errlen)
{
	char path[4200];
	const char *want_id = cfg->node_id[0] ? cfg->node_id : cfg->listen;
	meta m;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", n->dir, NODE_FILE);
	rc = read_meta(path, &m, err, errlen);
	if (rc == -ENOENT) {
		memset(&m, 0, sizeof(m));
		m.format = NODE_FORMAT;
		snprintf(m.node_id, sizeof(m.node_id), "%s", want_id);
		m.ring_size = cfg->ring_size;
		m.n_val = cfg->n_val;
		do {
			if (getrandom(&m.actor, sizeof(m.actor), 0) != sizeof(m.actor)) {
				snprintf(err, errlen, "getrandom: %s", strerror(errno));
				return -errno;
			}
		} while (m.actor == 0);
		rc = write_meta(n->dir, &m, err, errlen);
		if (rc != 0)
			return rc;
		logf_(n, DKV_LOG_INFO, "created node %s in %s (ring_size %u, n_val %u)",
		      m.node_id, n->dir, m.ring_size, m.n_val);
	} else if (rc < 0 && rc > -4096) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	} else if (rc != 0) {
		return rc;
	} else {
		/* Only settings given explicitly may conflict: the defaults
		 * yield to what the directory records. */
		if (cfg->ring_size != m.ring_size && dkv_config_is_set(cfg, "ring_size")) {
			snprintf(err, errlen,
				 "ring_size %u conflicts with ring_size %u recorded in %s when the "
				 "node was created; ring_size cannot change",
				 cfg->ring_size, m.ring_size, path);
			return DKV_EINVAL;
		}
		if (cfg->n_val != m.n_val && dkv_config_is_set(cfg, "n_val")) {
			snprintf(err, errlen,
				 "n_val %u conflicts with n_val %u recorded in %s when the "
				 "node was created; n_val cannot change",
				 cfg->n_val, m.n_val, path);
			return DKV_EINVAL;
		}
		if (strcmp(want_id, m.node_id) != 0 && dkv_config_is_set(cfg, "node_id")) {
			snprintf(err, errlen,
				 "node_id \"%s\" conflicts with node_id \"%s\" recorded in %s",
				 want_id, m.node_id, path);
			return DKV_EINVAL;
		}
	}
	snprintf(n->node_id, sizeof(n->node_id), "%s", m.node_id);
	n->actor = m.actor;
	n->ring_size = m.ring_size;
	n->n_val = m.n_val;
	return 0;
}

static int open_part(node *n, uint32_t p, bitcask **out)
{
	char dir[4200], err[4400];
	bitcask_config bc;
	int rc;

	if (n->parts[p].bc != NULL) {
		*out = n->parts[p].bc;
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/partitions/%04" PRIu32, n->dir, p);
	bitcask_config_init(&bc);
	bc.max_key_size = (uint32_t)n->cfg.max_key_size;
	bc.max_value_size = (uint32_t)n->max_object;
	bc.sync = BITCASK_SYNC_MANUAL;
	bc.log = dkv_log_hook;
	bc.log_ctx = n->log;
	rc = mkdir_p(dir);
	if (rc == 0)
		rc = bitcask_open(&n->parts[p].bc, dir, &bc, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s: %s", dir, strerror(-rc));
	if (rc != 0) {
		logf_(n, DKV_LOG_ERROR, "partition %" PRIu32 ": %s", p, err);
		return rc;
	}
	n->nopen++;
	*out = n->parts[p].bc;
	return 0;
}

/* --- replies -------------------------------------------------------------- */

static void send_sb(node *n, uint64_t client)
{
	n->w->ops->reply(n->w, client, n->sb.data, n->sb.size);
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

/* The replicas of a key's partition that can be asked: for now, this node
 * alone (the cluster brings preference lists). */
static uint32_t replicas_reachable(const node *n)
{
	(void)n;
	return 1;
}

/* --- reads ---------------------------------------------------------------- */

/* Read the local replica's object: 0 and *obj (NULL when absent), or an
 * error after which the caller replies. */
static int local_read(node *n, const proto_bytes *key, bitcask **bcp, object **obj)
{
	uint32_t p = ring_partition(ring_key_hash(key->p, key->len), n->ring_size);
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	*obj = NULL;
	rc = open_part(n, p, bcp);
	if (rc != 0)
		return rc;
	rc = bitcask_get(*bcp, key->p, key->len, &val, &vlen);
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

static void do_get(node *n, uint64_t client, const proto_msg *m)
{
	uint32_t r, pr, need, reachable = replicas_reachable(n);
	proto_bytes *vals = NULL;
	size_t nvals = 0;
	uint64_t tomb = 0;
	object *obj = NULL;
	bitcask *bc;
	int rc;

	if (!quorum(n, client, m->id, "r", m->opts.r, n->cfg.r, &r) ||
	    !quorum(n, client, m->id, "pr", m->opts.pr, 0, &pr))
		return;
	need = r > pr ? r : pr;
	rc = local_read(n, &m->key, &bc, &obj);
	if (rc != 0) {
		reply_store_error(n, client, m->id, rc, "read failed");
		return;
	}
	/* One replica answered (this node, a primary). */
	if (need > 1) {
		object_free(obj);
		if (pr > 1)
			reply_quorum(n, client, m->id, "pr", 1, pr, true, reachable);
		else
			reply_quorum(n, client, m->id, "r", 1, r, false, reachable);
		return;
	}
	n->ob.size = 0;
	if (obj != NULL) {
		size_t ns = object_sibling_count(obj);

		vals = calloc(ns ? ns : 1, sizeof(*vals));
		if (vals == NULL || object_context_encode(obj, &n->ob) != 0) {
			free(vals);
			object_free(obj);
			reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
			return;
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
	rc = proto_encode_value(&n->sb, m->id, nvals > 0, vals, nvals,
				n->ob.data, n->ob.size, tomb);
	free(vals);
	object_free(obj);
	if (rc != 0) {
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "out of memory");
		return;
	}
	n->st.gets++;
	send_sb(n, client);
}

/* --- writes --------------------------------------------------------------- */

static void req_unlink(node *n, req *q)
{
	q->prev->next = q->next;
	q->next->prev = q->prev;
	n->ninflight--;
}

static void req_finish(node *n, req *q);

/* One replica's answer to a write. */
static void req_ack(node *n, req *q, int rc, bool primary)
{
	if (rc == 0) {
		q->acks++;
		if (primary)
			q->primary_acks++;
	} else {
		q->failed++;
		if (q->first_err == 0)
			q->first_err = rc;
	}
	req_finish(n, q);
}

static void req_free(node *n, req *q)
{
	if (q->timer != NULL)
		n->w->ops->timer_cancel(n->w, q->timer);
	req_unlink(n, q);
	free(q->ctx);
	free(q);
}

/* Answer q if its outcome is known; free it once nothing will call back. */
static void req_finish(node *n, req *q)
{
	uint32_t outstanding = q->asked - q->acks - q->failed;
	uint32_t reachable = replicas_reachable(n);

	if (!q->answered) {
		if (q->acks >= q->need && q->primary_acks >= q->need_primary) {
			n->sb.size = 0;
			if (proto_encode_ok(&n->sb, q->id, q->ctx, q->ctxlen) == 0) {
				send_sb(n, q->client);
				if (q->type == PROTO_PUT)
					n->st.puts++;
				else
					n->st.deletes++;
			}
			q->answered = true;
		} else if (outstanding == 0) {
			if (q->acks == 0 && q->first_err != 0)
				reply_store_error(n, q->client, q->id, q->first_err, "write failed");
			else if (q->primary_acks < q->need_primary)
				reply_quorum(n, q->client, q->id, "pw", q->primary_acks,
					     q->need_primary, true, reachable);
			else
				reply_quorum(n, q->client, q->id, "w", q->acks, q->need, false,
					     reachable);
			q->answered = true;
		}
	}
	if (q->answered && outstanding == 0 && !q->in_batch)
		req_free(n, q);
}

static void req_timeout(void *arg)
{
	req *q = arg;
	node *n = q->n;

	q->timer = NULL;   /* fired: the world has freed it */
	if (!q->answered) {
		reply_error(n, q->client, q->id, PROTO_ERR_TIMEOUT,
			    "request timed out after %u ms: %u of %s=%u replicas answered",
			    q->timeout_ms, q->acks, q->qname, q->need);
		q->answered = true;
	}
	/* Replicas that have not answered will not be waited for; a
	 * durability batch still holding q frees it when it ends. */
	if (!q->in_batch)
		req_free(n, q);
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
		req_ack(n, q, rc, true);
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
	if (k == 0) {
		/* Nothing to sync (a write that failed after marking?): ack
		 * the waiters as they are. */
		if (n->batch_wait == NULL)
			return;
		n->batch_run = n->batch_wait;
		n->batch_wait = NULL;
		n->batch_wait_tail = &n->batch_wait;
		n->batch_running = true;
		batch_done(n, 0);
		return;
	}
	n->batch_run = n->batch_wait;
	n->batch_wait = NULL;
	n->batch_wait_tail = &n->batch_wait;
	n->batch_running = true;
	n->w->ops->durable(n->w, n->batch_stores, k, batch_done, n);
}

static void sync_tick(void *arg)
{
	node *n = arg;

	n->sync_timer = n->w->ops->timer_add(n->w, n->cfg.sync_interval_ms, sync_tick, n);
	batch_start(n);
}

static void do_write(node *n, uint64_t client, const proto_msg *m)
{
	uint32_t w, pw, reachable = replicas_reachable(n);
	uint32_t p = ring_partition(ring_key_hash(m->key.p, m->key.len), n->ring_size);
	object_vv ctx = { 0 };
	object *obj = NULL;
	bitcask *bc;
	req *q;
	int rc;

	if (!quorum(n, client, m->id, "w", m->opts.w, n->cfg.w, &w) ||
	    !quorum(n, client, m->id, "pw", m->opts.pw, 0, &pw))
		return;
	rc = object_context_decode(m->context.p, m->context.len, &n->olim, &ctx);
	if (rc != 0) {
		reply_error(n, client, m->id, PROTO_ERR_CONTEXT,
			    "malformed context: %s (send back the context a get returned)",
			    dkv_strerror(rc));
		return;
	}
	rc = local_read(n, &m->key, &bc, &obj);
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
	q = rc == 0 ? calloc(1, sizeof(*q)) : NULL;
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
			free(q->ctx);
		free(q);
		reply_error(n, client, m->id, PROTO_ERR_INTERNAL, "%s", dkv_strerror(rc));
		return;
	}
	q->n = n;
	q->client = client;
	q->id = m->id;
	q->type = m->type;
	q->qname = "w";
	q->need = w;
	q->need_primary = pw;
	q->asked = reachable;
	q->started_ms = n->w->ops->now_ms(n->w);
	q->timeout_ms = m->opts.timeout_ms ? m->opts.timeout_ms : n->cfg.request_timeout;
	q->next = &n->inflight;
	q->prev = n->inflight.prev;
	q->prev->next = q;
	n->inflight.prev = q;
	n->ninflight++;

	rc = bitcask_put(bc, m->key.p, m->key.len, n->ob.data, n->ob.size);
	if (rc != 0) {
		logf_(n, DKV_LOG_ERROR, "partition %" PRIu32 ": write failed: %s", p, dkv_strerror(rc));
		req_ack(n, q, rc, true);
		return;
	}
	n->parts[p].dirty = true;
	if (n->cfg.sync != DKV_SYNC_ALWAYS) {
		req_ack(n, q, 0, true);
		return;
	}
	q->timer = n->w->ops->timer_add(n->w, q->timeout_ms, req_timeout, q);
	q->in_batch = true;
	*n->batch_wait_tail = q;
	n->batch_wait_tail = &q->bnext;
	batch_start(n);
}

/* --- entry points --------------------------------------------------------- */

int node_request(node *n, uint64_t client, const void *payload, size_t len)
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
		do_write(n, client, &m);
		break;
	case PROTO_PING:
		n->sb.size = 0;
		if (proto_encode_pong(&n->sb, m.id) == 0) {
			n->st.pings++;
			send_sb(n, client);
		}
		break;
	default:
		break;
	}
	proto_msg_release(&m);
	return 0;
}

/* Release what a node owns besides its stores (closed by then, or never
 * opened), and the node. */
static void node_free(node *n)
{
	if (n->lock_fd >= 0)
		close(n->lock_fd);
	free(n->parts);
	free(n->batch_stores);
	free(n->dir);
	msgpack_sbuffer_destroy(&n->sb);
	msgpack_sbuffer_destroy(&n->ob);
	dkv_config_free(&n->cfg);
	free(n);
}

int node_open(node **out, const dkv_config *cfg, world *w, dkv_log *log,
	      char *err, size_t errlen)
{
	node *n;
	int rc;

	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return -ENOMEM;
	n->w = w;
	n->log = log;
	n->lock_fd = -1;
	n->inflight.next = n->inflight.prev = &n->inflight;
	n->batch_wait_tail = &n->batch_wait;
	msgpack_sbuffer_init(&n->sb);
	msgpack_sbuffer_init(&n->ob);
	rc = dkv_config_copy(&n->cfg, cfg);
	if (rc != 0) {
		free(n);
		return rc;
	}
	n->dir = strdup(cfg->data_dir);
	if (n->dir == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = mkdir_p(n->dir);
	if (rc != 0) {
		snprintf(err, errlen, "data directory %s: %s", n->dir, strerror(-rc));
		goto fail;
	}
	if ((rc = take_lock(n, err, errlen)) != 0)
		goto fail;
	if ((rc = load_identity(n, cfg, err, errlen)) != 0)
		goto fail;
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
	if (cfg->sync == DKV_SYNC_INTERVAL) {
		n->sync_timer = w->ops->timer_add(w, cfg->sync_interval_ms, sync_tick, n);
		if (n->sync_timer == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
	}
	if (n->n_val > 1)
		logf_(n, DKV_LOG_WARNING,
		      "n_val is %u but this node has no peers yet: requests with R or W above 1 "
		      "will fail with \"quorum not met\" (start with --n-val 1 for a single node)",
		      n->n_val);
	*out = n;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	node_free(n);
	return rc;
}

void node_datagram(node *n, const void *buf, size_t len)
{
	(void)buf;
	(void)len;
	n->st.datagrams++;
}

void node_peer_down(node *n, const char *addr)
{
	(void)addr;
	n->st.peer_downs++;
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
