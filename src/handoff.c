#include "config.h"
/*
 * handoff.c -- hint stores and their delivery.  See handoff.h.
 */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "handoff.h"
#include "pace.h"
#include "proto.h"
#include "siphash.h"

typedef enum tstate { T_WAITING, T_ACTIVE, T_PAUSED } tstate;

static const char *const tstate_name[] = { "waiting", "delivering", "paused" };

/* A key of a batch, and the hash of the version sent. */
typedef struct sent_key {
	uint8_t *key;
	size_t klen, vlen;
	uint64_t hash;
} sent_key;

/* A batch: read by the reader off the loop, then in flight (sent, or
 * merged for a former member and waiting for that sync) until it is
 * delivered or the target pauses. */
typedef struct hbatch {
	struct target *t;
	uint64_t pid;             /* the HOFF's id (0: a rehomed batch) */
	sent_key *keys;
	size_t nkeys, capkeys;
	uint64_t sent_ms;
	size_t ndone;             /* keys removed so far (delivered) */
	durable_waiter wt;        /* a rehomed batch waiting for its sync */
	struct hbatch *next;
} hbatch;

typedef struct target {
	handoff *h;
	char *owner;              /* the owner's node id */
	uint32_t idx;             /* its hint store (vnode extra index) */
	tstate state;
	vnode_iter *it;           /* open while a pass runs */
	bool pass_over;           /* the iterator reached the end */
	hbatch *rd;               /* the batch the reader fills (a job runs) */
	msgpack_sbuffer frame;    /* the reader's HOFF frame */
	int read_rc;
	hbatch *flight;           /* sent, oldest first */
	uint32_t nrehome;         /* rehomed batches waiting for their sync */
	uint32_t ndone;           /* delivered batches whose keys are being removed */
	hbatch **flight_tail;
	uint32_t nflight;
	const char *to;           /* interned owner address it was sent to */
	world_timer *timer;       /* PAUSED: retry; ACTIVE: the rate */
	world_timer *deadline;    /* the oldest batch in flight must be answered */
	uint64_t not_before_ms;   /* rate limit: next batch not before */
	uint32_t backoff_ms;
	uint64_t found_ms;        /* when this process first held it */
	uint64_t age0_ms;         /* its age then (its .since file) */
	uint64_t delivered;       /* keys delivered (this process) */
	/* Removal of a pass's delivered keys: while the store sees no write
	 * (its append count stays pass_writes), a delivered batch's keys are
	 * only counted (held_*); a pass that delivers the whole unchanged
	 * store then drops it whole (whole_drop), no key removed one by one.
	 * After a write, the pass removes what it delivers key by key. */
	uint64_t pass_writes;
	bool per_key;             /* this pass removes key by key */
	bool per_key_next;        /* so does the next: a whole drop failed its count */
	bool drop_ready;          /* delivered whole: drop when no sync holds it */
	uint64_t held_keys, held_bytes;
	char error[160];          /* the last error, "" when none */
	struct target *next;
} target;

/* An owner's merge of a HOFF: its pairs merged a slice per loop turn,
 * then waiting for the sync that makes them durable. */
typedef struct hoff_job {
	durable_waiter wt;
	handoff *h;
	const char *to;           /* interned */
	uint64_t pid;
	uint8_t *buf;             /* the pairs (a copy of the frame's) */
	mpr cur;
	uint64_t left;            /* pairs not merged yet */
	uint64_t count;           /* pairs merged */
	int rc;
	struct hoff_job *next;
} hoff_job;

struct handoff {
	handoff_env env;
	target *targets;
	world_timer *tick;
	bool quiesced;
	uint32_t reading;         /* reader jobs on the pool */
	uint32_t merging;         /* HOFF merges and rehomed batches not done */
	hoff_job *jobs;           /* HOFFs merging, oldest first */
	hoff_job **jobs_tail;
	world_timer *slice;       /* the next merge slice */
	hbatch *done;             /* delivered batches, keys being removed */
	hbatch **done_tail;
	world_timer *dslice;      /* the next removal slice */
	uint64_t next_pid;
	siphash_key hkey;
	msgpack_sbuffer pb;
	handoff_stats st;
	pace *pace;               /* the deliveries' rate (pace.h) */
	bool warned_full;
};

static void tick(void *arg);


int handoff_new(handoff **out, const handoff_env *env)
{
	handoff *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (h == NULL || siphash_key_random(&h->hkey) != 0) {
		free(h);
		return -ENOMEM;
	}
	h->env = *env;
	if (pace_new(&h->pace, env->w, pace_floor(env->cfg->handoff_rate),
		     env->cfg->handoff_rate, env->cfg->handoff_yield, env->requests) != 0) {
		free(h);
		return -ENOMEM;
	}
	h->jobs_tail = &h->jobs;
	h->done_tail = &h->done;
	msgpack_sbuffer_init(&h->pb);
	*out = h;
	return 0;
}

/* Cancel *t if it is set, and clear it. */
static void stop_timer(handoff *h, world_timer **t)
{
	if (*t != NULL)
		h->env.w->ops->timer_cancel(h->env.w, *t);
	*t = NULL;
}

static uint64_t now_ms(const handoff *h)
{
	return h->env.w->ops->now_ms(h->env.w);
}

/* "hints/" + the owner's id in hexadecimal (ids may hold any byte but
 * NUL; hexadecimal is always a file name). */
static int store_name(const char *owner, char *buf, size_t len)
{
	size_t n = strlen(owner), k;

	if (len < sizeof("hints/") + 2 * n)
		return -ENAMETOOLONG;
	k = (size_t)snprintf(buf, len, "hints/");
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(buf + k, len - k, "%02x", (unsigned char)owner[i]);
	return 0;
}

static int unhex(const char *s, char *out, size_t len)
{
	size_t n = strlen(s);

	if (n == 0 || n % 2 != 0 || n / 2 + 1 > len)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1 || v == 0)
			return -1;
		out[i] = (char)v;
	}
	out[n / 2] = '\0';
	return 0;
}

/* DIR/hints/HEX.since holds the wall-clock milliseconds at which the hint
 * store for an owner was created, so that hint_window counts from then
 * across restarts (it counted from when the process found the store). */
static int since_path(handoff *h, const char *owner, char *buf, size_t len)
{
	char name[2 * PEER_MAX_ADDR + 16];
	int n;

	if (store_name(owner, name, sizeof(name)) != 0)
		return -ENAMETOOLONG;
	n = snprintf(buf, len, "%s/%s.since", h->env.dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Best effort: without the file the window counts from this start. */
static void since_write(handoff *h, const char *owner, uint64_t wall)
{
	char path[4200];
	FILE *f;

	if (since_path(h, owner, path, sizeof(path)) != 0 || (f = fopen(path, "w")) == NULL)
		return;
	fprintf(f, "%" PRIu64 "\n", wall);
	if (fclose(f) != 0)
		(void)unlink(path);
}

/* The store's creation time, or 0 when unknown. */
static uint64_t since_read(handoff *h, const char *owner)
{
	char path[4200], line[32];
	unsigned long long v = 0;
	FILE *f;

	if (since_path(h, owner, path, sizeof(path)) != 0 || (f = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), f) == NULL || sscanf(line, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static void since_remove(handoff *h, const char *owner)
{
	char path[4200];

	if (since_path(h, owner, path, sizeof(path)) == 0)
		(void)unlink(path);
}

static target *find(handoff *h, const char *owner)
{
	for (target *t = h->targets; t != NULL; t = t->next)
		if (strcmp(t->owner, owner) == 0)
			return t;
	return NULL;
}

static target *target_add(handoff *h, const char *owner, uint32_t idx)
{
	target *t = calloc(1, sizeof(*t));

	if (t == NULL || (t->owner = strdup(owner)) == NULL) {
		free(t);
		return NULL;
	}
	t->h = h;
	t->idx = idx;
	t->state = T_WAITING;
	t->found_ms = now_ms(h);
	t->flight_tail = &t->flight;
	msgpack_sbuffer_init(&t->frame);
	t->next = h->targets;
	h->targets = t;
	return t;
}

static void batch_free(hbatch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->nkeys; i++)
		free(b->keys[i].key);
	free(b->keys);
	free(b);
}

/* Forget the batches in flight (their keys stay in the store). */
static void flight_clear(target *t)
{
	handoff *h = t->h;

	while (t->flight != NULL) {
		hbatch *b = t->flight;

		t->flight = b->next;
		batch_free(b);
	}
	t->flight_tail = &t->flight;
	t->nflight = 0;
	stop_timer(h, &t->deadline);
}

/* Only when no reader job, rehomed or delivered batch holds t. */
static void target_free(handoff *h, target *t)
{
	target **pp = &h->targets;

	assert(t->rd == NULL && t->nrehome == 0 && t->ndone == 0);
	while (*pp != t)
		pp = &(*pp)->next;
	*pp = t->next;
	stop_timer(h, &t->timer);
	vnode_iter_close(t->it);
	flight_clear(t);
	msgpack_sbuffer_destroy(&t->frame);
	free(t->owner);
	free(t);
}

/* A hint store's live keys and bytes, and its appends (puts and deletes)
 * since it was opened, from one look at its figures (one lock); any of
 * the three may be NULL. */
static void store_figures(handoff *h, uint32_t idx, uint64_t *keys, uint64_t *bytes,
			  uint64_t *writes)
{
	bitcask *bc = vnode_store_of(h->env.vs, idx);
	bitcask_stats st = { 0 };

	if (bc != NULL)
		bitcask_stats_get(bc, &st, NULL, NULL);
	if (keys != NULL)
		*keys = st.keys;
	if (bytes != NULL)
		*bytes = st.live_bytes;
	if (writes != NULL)
		*writes = st.writes;
}

/* Appends to a hint store since it was opened. */
static uint64_t store_writes(handoff *h, uint32_t idx)
{
	uint64_t w;

	store_figures(h, idx, NULL, NULL, &w);
	return w;
}

/* What a target still has to deliver: its store, less what a pass
 * delivered already and drops with the store at its end. */
static void pending_size(handoff *h, const target *t, uint64_t *keys, uint64_t *bytes)
{
	store_figures(h, t->idx, keys, bytes, NULL);
	*keys -= t->held_keys < *keys ? t->held_keys : *keys;
	*bytes -= t->held_bytes < *bytes ? t->held_bytes : *bytes;
}

static uint64_t total_bytes(handoff *h)
{
	uint64_t sum = 0, k, b;

	for (target *t = h->targets; t != NULL; t = t->next) {
		pending_size(h, t, &k, &b);
		sum += b;
	}
	return sum;
}

int handoff_start(handoff *h, char *err, size_t errlen)
{
	char path[4200], owner[PEER_MAX_ADDR + 1], name[2 * PEER_MAX_ADDR + 16];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s/hints", h->env.dir);
	d = opendir(path);
	if (d == NULL && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	while (d != NULL && (de = readdir(d)) != NULL) {
		uint32_t idx;

		size_t nl = strlen(de->d_name);
		uint64_t since, wall = h->env.w->ops->wall_ms(h->env.w);
		target *t;

		if (de->d_name[0] == '.' || strstr(de->d_name, VNODE_DROPPED) != NULL ||
		    (nl > 6 && strcmp(de->d_name + nl - 6, ".since") == 0))
			continue;
		if (unhex(de->d_name, owner, sizeof(owner)) != 0) {
			dkv_log_opt(h->env.log, DKV_LOG_WARNING,
				    "%s/%s: not a hint store (its name is not a node id in "
				    "hexadecimal); left alone", path, de->d_name);
			continue;
		}
		if (store_name(owner, name, sizeof(name)) != 0 ||
		    (rc = vnode_extra_open(h->env.vs, name, &idx)) != 0) {
			snprintf(err, errlen, "hint store %s/%s: %s", path, de->d_name,
				 dkv_strerror(rc ? rc : -ENAMETOOLONG));
			break;
		}
		if ((t = target_add(h, owner, idx)) == NULL) {
			rc = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			break;
		}
		/* its age: from its creation (wall clock, kept beside it) */
		since = since_read(h, owner);
		if (since == 0)
			since_write(h, owner, wall);
		else if (since < wall)
			t->age0_ms = wall - since;
	}
	if (d != NULL)
		closedir(d);
	if (rc != 0)
		return rc;
	h->tick = h->env.w->ops->timer_add(h->env.w, HANDOFF_TICK_MS, tick, h);
	if (h->tick == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int handoff_store(handoff *h, const char *owner, bool create, uint32_t *idx)
{
	char name[2 * PEER_MAX_ADDR + 16];
	target *t = find(h, owner);
	int rc;

	if (t != NULL && !create) {
		*idx = t->idx;
		return 0;
	}
	if (t == NULL && !create)
		return DKV_ENOTFOUND;
	if (t != NULL && now_ms(h) - t->found_ms + t->age0_ms > h->env.cfg->hint_window) {
		h->st.refused++;
		return -ENOSPC;
	}
	if (total_bytes(h) >= h->env.cfg->hint_max_bytes) {
		h->st.refused++;
		if (!h->warned_full)
			dkv_log_opt(h->env.log, DKV_LOG_WARNING,
				    "hint stores hold hint_max_bytes (%" PRIu64 " bytes): hinted writes "
				    "are refused until deliveries free room; their owners heal by "
				    "anti-entropy", h->env.cfg->hint_max_bytes);
		h->warned_full = true;
		return -ENOSPC;
	}
	h->warned_full = false;
	if (t != NULL) {
		*idx = t->idx;
		h->st.hinted++;
		return 0;
	}
	if ((rc = store_name(owner, name, sizeof(name))) != 0 ||
	    (rc = vnode_extra_open(h->env.vs, name, idx)) != 0)
		return rc;
	if (target_add(h, owner, *idx) == NULL) {
		(void)vnode_drop(h->env.vs, *idx);
		return -ENOMEM;
	}
	since_write(h, owner, h->env.w->ops->wall_ms(h->env.w));
	h->st.hinted++;
	return 0;
}

bool handoff_has(handoff *h, const void *key, size_t klen)
{
	for (target *t = h->targets; t != NULL; t = t->next) {
		void *v = NULL;
		size_t vl;
		int rc = vnode_get_raw(h->env.vs, t->idx, key, klen, &v, &vl);

		free(v);
		if (rc != DKV_ENOTFOUND)
			return true;   /* held, or cannot tell: say held */
	}
	return false;
}

/* --- delivery (fallback side) --------------------------------------------- */

static void pause_target(target *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pump(target *t);
static void pass_end(target *t);
static void drop_whole(target *t);
static void drop_store(target *t);

static void retry_later(void *arg)
{
	target *t = arg;

	t->timer = NULL;
	if (t->state == T_PAUSED)
		t->state = T_WAITING;   /* the next tick looks again */
	else
		pump(t);                /* the rate allows the next batch now */
}

/* Stop this delivery for a while (keeping the data): owner down, an
 * error.  The batches in flight are forgotten and the iterator closed
 * (by the reader's end if it runs): the next pass starts from the
 * store's beginning, and finds what was not delivered. */
static void pause_target(target *t, const char *fmt, ...)
{
	handoff *h = t->h;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->error, sizeof(t->error), fmt, ap);
	va_end(ap);
	if (t->state == T_ACTIVE)
		h->st.active--;
	if (t->rd == NULL) {
		vnode_iter_close(t->it);
		t->it = NULL;
	}
	flight_clear(t);
	stop_timer(h, &t->timer);
	t->state = T_PAUSED;
	t->backoff_ms = t->backoff_ms ? t->backoff_ms * 2 : 500;
	if (t->backoff_ms > HANDOFF_BACKOFF_MAX_MS)
		t->backoff_ms = HANDOFF_BACKOFF_MAX_MS;
	t->timer = h->env.w->ops->timer_add(h->env.w, t->backoff_ms, retry_later, t);
	dkv_log_opt(h->env.log, DKV_LOG_INFO, "handoff to %s paused: %s", t->owner, t->error);
}

/* Off the loop: read the next batch from the iterator into t->rd and the
 * frame.  Touches only the iterator, t->rd and t->frame. */
static int read_batch(void *arg)
{
	target *t = arg;
	handoff *h = t->h;
	hbatch *hb = t->rd;
	msgpack_sbuffer body;
	msgpack_packer bp, pk;
	size_t start, bytes = 0;
	uint32_t n = 0;
	int rc = 0;

	msgpack_sbuffer_init(&body);
	msgpack_packer_init(&bp, &body, msgpack_sbuffer_write);
	while (n < PEER_MAX_HOFF && bytes < HANDOFF_BATCH_BYTES) {
		const uint8_t *k, *v;
		size_t kl, vl;
		sent_key *sk;

		rc = vnode_iter_next(t->it, &k, &kl, &v, &vl);
		if (rc == DKV_ENOTFOUND) {
			t->pass_over = true;
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		if (hb->nkeys == hb->capkeys) {
			size_t cap = hb->capkeys ? 2 * hb->capkeys : 64;
			sent_key *g = realloc(hb->keys, cap * sizeof(*g));

			if (g == NULL) {
				rc = -ENOMEM;
				break;
			}
			hb->keys = g;
			hb->capkeys = cap;
		}
		sk = &hb->keys[hb->nkeys];
		if ((sk->key = malloc(kl)) == NULL || peer_hoff_pair(&bp, k, kl, v, vl) != 0) {
			free(sk->key);
			rc = -ENOMEM;
			break;
		}
		memcpy(sk->key, k, kl);
		sk->klen = kl;
		sk->vlen = vl;
		sk->hash = siphash24(&h->hkey, v, vl);
		hb->nkeys++;
		n++;
		bytes += kl + vl;
	}
	t->frame.size = 0;
	if (rc == 0 && n > 0 &&
	    (peer_hoff_begin(&t->frame, &pk, &start, hb->pid, *h->env.self, t->owner, n) != 0 ||
	     msgpack_sbuffer_write(&t->frame, body.data, body.size) != 0 ||
	     peer_hoff_end(&t->frame, start) != 0))
		rc = -ENOMEM;
	msgpack_sbuffer_destroy(&body);
	return rc;
}

static void batch_timeout(void *arg);
static void batch_delivered(target *t, hbatch *hb);

static void flight_add(target *t, hbatch *hb)
{
	handoff *h = t->h;

	hb->sent_ms = now_ms(h);
	hb->next = NULL;
	*t->flight_tail = hb;
	t->flight_tail = &hb->next;
	t->nflight++;
	if (t->deadline == NULL && hb->pid != 0)
		t->deadline = h->env.w->ops->timer_add(h->env.w, HANDOFF_TIMEOUT_MS, batch_timeout, t);
}

/* Take hb out of the flight list (it is in it). */
static void flight_remove(target *t, hbatch *hb)
{
	hbatch **pp = &t->flight;

	while (*pp != hb)
		pp = &(*pp)->next;
	*pp = hb->next;
	if (t->flight_tail == &hb->next)
		t->flight_tail = pp;
	t->nflight--;
}

static void rehome_synced(void *arg, int rc)
{
	hbatch *hb = arg;
	target *t = hb->t;

	t->h->merging--;
	t->nrehome--;
	if (t->state != T_ACTIVE) {
		batch_free(hb);   /* paused meanwhile: the next pass sees to it */
		return;
	}
	if (rc != 0) {
		batch_free(hb);
		t->h->st.batch_errors++;
		pause_target(t, "syncing the rehomed hints failed: %s", dkv_strerror(rc));
		return;
	}
	batch_delivered(t, hb);
}

/* Merge obj where key belongs now: into this node's partition when it is
 * an owner of the key's partition (a primary in some active ring epoch),
 * and into our hint store for each other owner, delivered from there as
 * any hint -- for every owner when all, else only when this node is no
 * owner (a hint delivered to a node that a change moved the partition
 * away from is passed on, not merged into a partition it drops). */
static int place_key(handoff *h, const uint8_t *k, size_t kl, const object *obj, bool all)
{
	uint32_t np, p = placement_partition(h->env.pl, k, kl);
	const uint32_t *list = placement_owners(h->env.pl, p, &np);
	bool wrote;
	int rc = 0;

	if (placement_holds(h->env.pl, p) && !all)
		return vnode_merge(h->env.vs, p, k, kl, obj, &wrote);
	if (np == 0)
		return vnode_merge(h->env.vs, p, k, kl, obj, &wrote);   /* no ring: keep it */
	for (uint32_t i = 0; rc == 0 && i < np; i++) {
		uint32_t idx = p;

		if (!placement_is_self(h->env.pl, list[i]))
			rc = handoff_store(h, placement_member_id(h->env.pl, list[i]), true, &idx);
		if (rc == 0)
			rc = vnode_merge(h->env.vs, idx, k, kl, obj, &wrote);
	}
	return rc;
}

/* The owner is no longer a ring member (removed, or left): the batch's
 * keys go to their owners now (place_key) -- and once that is durable,
 * they leave this store. */
static void rehome(target *t, hbatch *hb)
{
	handoff *h = t->h;
	uint64_t left;
	const uint8_t *k, *o;
	size_t kl, ol;
	char err[128];
	peer_msg pm;
	mpr e;
	int rc = placement_has_ring(h->env.pl) ? 0 : DKV_EINVAL;

	if (rc == 0)
		rc = peer_decode(t->frame.data + PROTO_HEADER_SIZE, t->frame.size - PROTO_HEADER_SIZE,
				 &pm, err, sizeof(err));
	e = pm.entries;
	left = pm.nentries;
	while (rc == 0 && peer_hoff_next(&e, &left, &k, &kl, &o, &ol) == 1) {
		object *obj = NULL;

		if ((rc = object_decode(o, ol, &h->env.olim, &obj)) != 0)
			break;
		rc = place_key(h, k, kl, obj, true);
		object_free(obj);
	}
	if (rc != 0) {
		batch_free(hb);
		h->st.batch_errors++;
		pause_target(t, "moving the hints of a former member to the keys' primaries "
			     "failed: %s", dkv_strerror(rc));
		return;
	}
	h->merging++;
	t->nrehome++;
	/* pump first: the wait may call back at once (nothing to sync: the
	 * versions were there already), deliver the batch, end the pass and
	 * free t */
	pump(t);
	durable_wait(h->env.dur, &hb->wt, rehome_synced, hb);
}

/* On the loop: the reader is done; send what it read, and go on. */
static void batch_read(void *arg, int rc)
{
	target *t = arg;
	handoff *h = t->h;
	hbatch *hb = t->rd;
	long i;

	h->reading--;
	t->rd = NULL;
	if (t->state != T_ACTIVE) {
		/* paused while it read: what pause_target left to us */
		batch_free(hb);
		vnode_iter_close(t->it);
		t->it = NULL;
		return;
	}
	if (rc != 0) {
		batch_free(hb);
		pause_target(t, "reading the hint store failed: %s", dkv_strerror(rc));
		return;
	}
	if (hb->nkeys == 0) {
		batch_free(hb);
		pump(t);   /* the pass is over: ends once nothing is in flight */
		return;
	}
	i = placement_member_index(h->env.pl, t->owner);
	if (i < 0) {
		rehome(t, hb);
		return;
	}
	t->to = placement_addr(h->env.pl, (uint32_t)i);
	if (t->to == NULL || placement_is_down(h->env.pl, (uint32_t)i)) {
		batch_free(hb);
		pause_target(t, "the owner went down");
		return;
	}
	rc = h->env.w->ops->send(h->env.w, t->to, t->frame.data, t->frame.size);
	if (rc != 0) {
		batch_free(hb);
		pause_target(t, "cannot send to %s: %s", t->to, dkv_strerror(rc));
		return;
	}
	flight_add(t, hb);
	h->st.batches++;
	t->not_before_ms = now_ms(h) + t->frame.size * 1000 / pace_rate(h->pace);
	pump(t);
}

/* The oldest batch in flight has had HANDOFF_TIMEOUT_MS: pause; or it
 * was answered meanwhile: wait for the next oldest's turn. */
static void batch_timeout(void *arg)
{
	target *t = arg;
	handoff *h = t->h;
	uint64_t now = now_ms(h);
	hbatch *old = t->flight;

	t->deadline = NULL;
	while (old != NULL && old->pid == 0)
		old = old->next;
	if (old == NULL)
		return;
	if (now - old->sent_ms < HANDOFF_TIMEOUT_MS) {
		t->deadline = h->env.w->ops->timer_add(h->env.w,
						       HANDOFF_TIMEOUT_MS - (now - old->sent_ms),
						       batch_timeout, t);
		return;
	}
	h->st.batch_errors++;
	pause_target(t, "no answer from %s within %u ms", t->to, HANDOFF_TIMEOUT_MS);
}

/* Keep the delivery going: read the next batch while fewer than
 * HANDOFF_WINDOW are in flight and the rate allows; end the pass once
 * the iterator is done and everything sent is answered. */
static void pump(target *t)
{
	handoff *h = t->h;
	uint64_t now = now_ms(h);

	if (t->state != T_ACTIVE || t->rd != NULL)
		return;
	pace_touch(h->pace);
	if (t->pass_over) {
		if (t->nflight == 0 && t->nrehome == 0 && t->ndone == 0)
			pass_end(t);
		return;
	}
	if (h->quiesced || t->nflight + t->nrehome >= HANDOFF_WINDOW)
		return;
	if (t->not_before_ms > now) {
		if (t->timer == NULL)
			t->timer = h->env.w->ops->timer_add(h->env.w, t->not_before_ms - now,
							    retry_later, t);
		return;
	}
	if ((t->rd = calloc(1, sizeof(*t->rd))) == NULL) {
		pause_target(t, "out of memory");
		return;
	}
	t->rd->t = t;
	t->rd->pid = ++h->next_pid;
	h->reading++;
	h->env.w->ops->work(h->env.w, read_batch, t, batch_read, t);
}

/* A pass over the store is over: drop it if empty, else go again. */
static void pass_end(target *t)
{
	handoff *h = t->h;
	uint64_t keys, writes;

	vnode_iter_close(t->it);
	t->it = NULL;
	t->pass_over = false;
	store_figures(h, t->idx, &keys, NULL, &writes);
	h->st.active--;
	t->state = T_WAITING;
	if (keys > 0 && !t->per_key && writes == t->pass_writes) {
		if (t->held_keys == keys) {
			t->drop_ready = true;   /* every key it holds is delivered */
			drop_whole(t);          /* may free t */
			return;
		}
		/* (cannot happen: the pass read every key of a store nobody
		 * wrote to) -- remove key by key next time, not loop */
		dkv_log_opt(h->env.log, DKV_LOG_WARNING, "handoff to %s: a pass delivered %" PRIu64
			    " keys of a store of %" PRIu64 "; the next pass removes them one by one",
			    t->owner, t->held_keys, keys);
		t->per_key_next = true;
	}
	t->held_keys = t->held_bytes = 0;
	if (keys > 0)
		return;   /* written meanwhile: the next tick starts a new pass */
	drop_store(t);
}

/* A pass delivered the whole store and it saw no write since: drop it
 * (again at the next tick when a sync batch holds it).  A write since
 * then (a new hint) means another pass, which sends these keys again. */
static void drop_whole(target *t)
{
	handoff *h = t->h;

	if (store_writes(h, t->idx) != t->pass_writes) {
		t->drop_ready = false;
		t->held_keys = t->held_bytes = 0;
		return;
	}
	drop_store(t);
}

/* Drop the hint store of t, whose keys are all delivered, and free t; or
 * keep it for the next tick. */
static void drop_store(target *t)
{
	handoff *h = t->h;
	pace_stats ps;
	int rc = vnode_drop(h->env.vs, t->idx);

	if (rc == -EBUSY)
		return;   /* a sync batch holds the store: the next tick drops it */
	t->drop_ready = false;
	t->held_keys = t->held_bytes = 0;
	if (rc != 0) {
		dkv_log_opt(h->env.log, DKV_LOG_WARNING, "dropping the emptied hint store for %s: %s",
			    t->owner, dkv_strerror(rc));
		return;
	}
	pace_stats_get(h->pace, &ps);
	dkv_log_opt(h->env.log, DKV_LOG_INFO, "handoff to %s done: %" PRIu64 " keys delivered"
		    " (pace: slowed in %" PRIu64 " of %" PRIu64 " windows, now %" PRIu64 " KiB/s)",
		    t->owner, t->delivered, ps.slowdowns, ps.windows, ps.rate >> 10);
	since_remove(h, t->owner);
	target_free(h, t);
}

/* Remove from the hint store what is still the version sent (the values
 * were just read: the page cache has them), HANDOFF_SLICE_PAIRS keys per
 * loop turn: an owner under sync = interval answers a second's batches at
 * once, and their thousands of keys in one turn held every foreground
 * request of this node behind them.  Then the target goes on. */
static void delete_slice(void *arg)
{
	handoff *h = arg;
	uint32_t n = 0;

	h->dslice = NULL;
	while (h->done != NULL && n < HANDOFF_SLICE_PAIRS) {
		hbatch *hb = h->done;
		target *t = hb->t;

		for (; hb->ndone < hb->nkeys && n < HANDOFF_SLICE_PAIRS; hb->ndone++, n++) {
			sent_key *sk = &hb->keys[hb->ndone];
			void *v = NULL;
			size_t vl = 0;

			if (vnode_get_raw(h->env.vs, t->idx, sk->key, sk->klen, &v, &vl) == 0 &&
			    siphash24(&h->hkey, v, vl) == sk->hash &&
			    vnode_delete(h->env.vs, t->idx, sk->key, sk->klen) == 0) {
				h->st.removed_keys++;
				t->delivered++;
				h->st.delivered_keys++;
				h->st.delivered_bytes += sk->klen + vl;
			}
			free(v);
		}
		if (hb->ndone < hb->nkeys)
			break;
		h->done = hb->next;
		if (h->done == NULL)
			h->done_tail = &h->done;
		t->ndone--;
		batch_free(hb);
		pump(t);   /* may end the pass, and free t */
	}
	if (h->done != NULL)
		h->dslice = h->env.w->ops->timer_add(h->env.w, 0, delete_slice, h);
}

/* The batch is safe elsewhere (durable on its owner, or on the keys' new
 * primaries) and out of the flight list: its keys leave the store, a
 * slice at a time (delete_slice). */
static void batch_delivered(target *t, hbatch *hb)
{
	handoff *h = t->h;

	t->backoff_ms = 0;
	t->error[0] = '\0';
	if (!t->per_key && store_writes(h, t->idx) == t->pass_writes) {
		/* the store is what the pass opened: its keys go with it whole
		 * at the pass's end (pass_end), none removed one by one */
		for (size_t i = 0; i < hb->nkeys; i++) {
			uint64_t b = hb->keys[i].klen + hb->keys[i].vlen;

			t->held_keys++;
			t->held_bytes += b;
			t->delivered++;
			h->st.delivered_keys++;
			h->st.delivered_bytes += b;
		}
		batch_free(hb);
		pump(t);
		return;
	}
	/* written meanwhile: what this pass delivers from now on leaves key by
	 * key; what it held back stays for the next pass to send again */
	t->per_key = true;
	hb->next = NULL;
	hb->ndone = 0;
	*h->done_tail = hb;
	h->done_tail = &hb->next;
	t->ndone++;
	if (h->dslice == NULL)
		h->dslice = h->env.w->ops->timer_add(h->env.w, 0, delete_slice, h);
	pump(t);
}

void handoff_hack(handoff *h, const peer_msg *pm)
{
	target *t;
	hbatch *hb = NULL;

	for (t = h->targets; t != NULL && hb == NULL; t = t->next)
		if (t->state == T_ACTIVE && t->to != NULL)
			for (hb = t->flight; hb != NULL && hb->pid != pm->id; hb = hb->next)
				;
	if (hb == NULL)
		return;   /* late: timed out and paused already */
	pace_note(h->pace, pm->delay_us);   /* the owner's loop: yield to it too */
	t = hb->t;
	flight_remove(t, hb);
	if (pm->code != 0) {
		batch_free(hb);
		h->st.batch_errors++;
		pause_target(t, "%s refused the batch: %s", t->to,
			     dkv_strerror(proto_error_to_dkv(pm->code)));
		return;
	}
	batch_delivered(t, hb);
}

void handoff_peer_gone(handoff *h, const char *addr)
{
	const char *a = placement_intern(h->env.pl, addr);

	for (target *t = h->targets; t != NULL; t = t->next)
		if (t->state == T_ACTIVE && t->nflight > 0 && a != NULL && t->to == a) {
			h->st.batch_errors++;
			pause_target(t, "the connection to %s failed", a);
		}
}

/* Start deliveries to owners that are up, within handoff_concurrency. */
static void tick(void *arg)
{
	handoff *h = arg;

	h->tick = h->env.w->ops->timer_add(h->env.w, HANDOFF_TICK_MS, tick, h);
	if (h->quiesced || !placement_has_ring(h->env.pl))
		return;
	for (target *t = h->targets; t != NULL; t = t->next) {
		long i;
		uint64_t keys, writes;
		int rc;

		if (t->drop_ready) {
			drop_whole(t);   /* may free t: stop walking */
			break;
		}
		if (h->st.active >= h->env.cfg->handoff_concurrency)
			break;
		if (t->state != T_WAITING || t->rd != NULL || t->nrehome > 0 || t->ndone > 0)
			continue;
		i = placement_member_index(h->env.pl, t->owner);
		if (i >= 0 && (placement_is_down(h->env.pl, (uint32_t)i) ||
			       placement_is_self(h->env.pl, (uint32_t)i)))
			continue;   /* (not a member any more: rehome, below) */
		store_figures(h, t->idx, &keys, NULL, &writes);
		if (keys == 0) {
			h->st.active++;   /* pass_end counts it off */
			t->state = T_ACTIVE;
			pass_end(t);      /* may free t: stop walking */
			break;
		}
		if ((rc = vnode_iter_open(h->env.vs, t->idx, &t->it)) != 0) {
			snprintf(t->error, sizeof(t->error), "cannot open the hint store: %s",
				 dkv_strerror(rc));
			continue;
		}
		t->state = T_ACTIVE;
		t->pass_over = false;
		t->not_before_ms = 0;
		t->pass_writes = writes;   /* (nothing writes between: loop thread) */
		t->per_key = t->per_key_next;
		t->per_key_next = false;
		t->held_keys = t->held_bytes = 0;
		h->st.active++;
		pump(t);
	}
}

/* --- the owner's side ----------------------------------------------------- */

static void hoff_answer(handoff *h, const char *to, uint64_t pid, int rc, uint64_t count)
{
	h->pb.size = 0;
	if (peer_encode_hack(&h->pb, pid, *h->env.self, rc == 0 ? 0 : proto_error_from_dkv(rc),
			     count, pace_delay(h->pace)) == 0)
		(void)h->env.w->ops->send(h->env.w, to, h->pb.data, h->pb.size);
}

static void hoff_synced(void *arg, int rc)
{
	hoff_job *j = arg;
	handoff *h = j->h;

	h->merging--;
	hoff_answer(h, j->to, j->pid, rc == 0 ? j->rc : rc, j->count);
	free(j);
}

/* Merge up to HANDOFF_SLICE_PAIRS pairs of the oldest HOFF, then give the
 * loop back: a batch of thousands of pairs merged in one turn would hold
 * every foreground request behind it. */
static void merge_slice(void *arg)
{
	handoff *h = arg;
	hoff_job *j = h->jobs;
	uint32_t n = 0;

	h->slice = NULL;
	while (j != NULL && n < HANDOFF_SLICE_PAIRS) {
		const uint8_t *k, *o;
		size_t kl, ol;
		object *obj = NULL;
		int more = j->rc == 0 ? peer_hoff_next(&j->cur, &j->left, &k, &kl, &o, &ol) : 0;

		if (more < 0)
			j->rc = more;
		if (more == 1) {
			n++;
			if (kl > h->env.cfg->max_key_size)
				j->rc = DKV_ETOOBIG;
			else if ((j->rc = object_decode(o, ol, &h->env.olim, &obj)) == 0)
				j->rc = place_key(h, k, kl, obj, false);
			object_free(obj);
			j->count += j->rc == 0;
			h->st.received_keys += j->rc == 0;
			continue;
		}
		/* this one is merged (or failed): durable before the answer,
		 * whatever the sync policy -- the fallback drops its copy when
		 * it hears it -- but by the next timed sync when there is one,
		 * at no extra fdatasync (durable_wait_next) */
		h->jobs = j->next;
		if (h->jobs == NULL)
			h->jobs_tail = &h->jobs;
		free(j->buf);
		j->buf = NULL;
		if (j->rc != 0)
			dkv_log_opt(h->env.log, DKV_LOG_WARNING, "a handoff batch from %s failed: %s",
				    j->to, dkv_strerror(j->rc));
		durable_wait_next(h->env.dur, &j->wt, hoff_synced, j);
		j = h->jobs;
	}
	if (h->jobs != NULL)
		h->slice = h->env.w->ops->timer_add(h->env.w, 0, merge_slice, h);
}

void handoff_hoff(handoff *h, const peer_msg *pm)
{
	const char *from = placement_intern(h->env.pl, pm->from);
	size_t len = (size_t)(pm->entries.end - pm->entries.p);
	hoff_job *j;
	int rc = 0;

	if (strcmp(pm->owner, h->env.node_id) != 0)
		rc = DKV_EINVAL;   /* meant for another node: we are not its owner */
	j = from == NULL ? NULL : calloc(1, sizeof(*j));
	if (j != NULL && rc == 0 && (j->buf = malloc(len ? len : 1)) == NULL) {
		free(j);
		j = NULL;
	}
	if (j == NULL || rc != 0) {
		free(j);
		hoff_answer(h, pm->from, pm->id, rc ? rc : -ENOMEM, 0);
		return;
	}
	memcpy(j->buf, pm->entries.p, len);
	j->cur = pm->entries;
	j->cur.p = j->buf;
	j->cur.end = j->buf + len;
	j->left = pm->nentries;
	j->h = h;
	j->to = from;
	j->pid = pm->id;
	pace_touch(h->pace);   /* measure our loop: our answers report it */
	*h->jobs_tail = j;
	h->jobs_tail = &j->next;
	h->merging++;
	if (h->slice == NULL)
		h->slice = h->env.w->ops->timer_add(h->env.w, 0, merge_slice, h);
}

/* --- reports -------------------------------------------------------------- */

void handoff_stats_get(handoff *h, handoff_stats *st)
{
	*st = h->st;
	st->pending_keys = st->pending_bytes = 0;
	for (target *t = h->targets; t != NULL; t = t->next) {
		uint64_t k, b;

		pending_size(h, t, &k, &b);
		st->pending_keys += k;
		st->pending_bytes += b;
	}
}

#define PK(x) do { if ((x) != 0) return -ENOMEM; } while (0)

static int pack_str(msgpack_packer *pk, const char *s)
{
	return msgpack_pack_str_with_body(pk, s, strlen(s));
}

int handoff_report(handoff *h, msgpack_packer *pk)
{
	pace_stats ps;
	uint64_t pending = 0;
	size_t n = 0;

	for (target *t = h->targets; t != NULL; t = t->next) {
		uint64_t k, b;

		pending_size(h, t, &k, &b);
		pending += k;
		n++;
	}
	pace_stats_get(h->pace, &ps);
	PK(msgpack_pack_map(pk, 3));
	PK(pack_str(pk, "pending"));
	PK(msgpack_pack_uint64(pk, pending));
	PK(pack_str(pk, "pace"));
	PK(msgpack_pack_map(pk, 4));
	PK(pack_str(pk, "rate"));
	PK(msgpack_pack_uint64(pk, ps.rate));
	PK(pack_str(pk, "delay_us"));
	PK(msgpack_pack_uint32(pk, ps.delay_us));
	PK(pack_str(pk, "owner_delay_us"));
	PK(msgpack_pack_uint32(pk, ps.remote_us));
	PK(pack_str(pk, "slowdowns"));
	PK(msgpack_pack_uint64(pk, ps.slowdowns));
	PK(pack_str(pk, "targets"));
	PK(msgpack_pack_array(pk, n));
	for (target *t = h->targets; t != NULL; t = t->next) {
		uint64_t k, b;

		pending_size(h, t, &k, &b);
		PK(msgpack_pack_map(pk, 6));
		PK(pack_str(pk, "node"));
		PK(pack_str(pk, t->owner));
		PK(pack_str(pk, "keys"));
		PK(msgpack_pack_uint64(pk, k));
		PK(pack_str(pk, "bytes"));
		PK(msgpack_pack_uint64(pk, b));
		PK(pack_str(pk, "state"));
		PK(pack_str(pk, tstate_name[t->state]));
		PK(pack_str(pk, "delivered"));
		PK(msgpack_pack_uint64(pk, t->delivered));
		PK(pack_str(pk, "error"));
		PK(t->error[0] ? pack_str(pk, t->error) : msgpack_pack_nil(pk));
	}
	return 0;
}

/* --- end ------------------------------------------------------------------ */

void handoff_quiesce(handoff *h)
{
	h->quiesced = true;
	stop_timer(h, &h->tick);
	/* HOFFs not merged yet are dropped unanswered (the node stops, and
	 * its timers may never fire again: a crash in the simulated world);
	 * their fallbacks keep the hints and send them again */
	stop_timer(h, &h->slice);
	while (h->jobs != NULL) {
		hoff_job *j = h->jobs;

		h->jobs = j->next;
		free(j->buf);
		free(j);
		h->merging--;
	}
	h->jobs_tail = &h->jobs;
	/* delivered batches whose keys are not removed yet: they stay in
	 * the store and are delivered again (a merge of the same version
	 * changes nothing) */
	stop_timer(h, &h->dslice);
	while (h->done != NULL) {
		hbatch *hb = h->done;

		h->done = hb->next;
		hb->t->ndone--;
		batch_free(hb);
	}
	h->done_tail = &h->done;
}

bool handoff_busy(const handoff *h)
{
	return h->reading > 0 || h->merging > 0;
}

void handoff_free(handoff *h)
{
	if (h == NULL)
		return;
	assert(h->reading == 0 && h->merging == 0);
	handoff_quiesce(h);
	while (h->targets != NULL)
		target_free(h, h->targets);
	msgpack_sbuffer_destroy(&h->pb);
	pace_free(h->pace);
	free(h);
}
