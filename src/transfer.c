#include "config.h"
/*
 * transfer.c -- ownership transfer.  See transfer.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcask/bitcask.h"
#include "dkv_file.h"
#include "error.h"
#include "pace.h"
#include "proto.h"
#include "ring.h"
#include "transfer.h"

#define TRANSFERS_FILE   "TRANSFERS"
#define TRANSFERS_HEADER "dynkv transfers 1\n"
#define RETRY_MS         250u
/* Pairs of a received batch merged per turn of the loop: a few hundred
 * microseconds of work between requests (a 512 KiB batch of 1 KiB values
 * is about 500 pairs). */
#define MERGE_SLICE      32u

typedef enum xstate { X_NONE = 0, X_WANTED = 1, X_ACTIVE = 2, X_RECEIVED = 3 } xstate;

/* A partition this node receives (transfer.h, LIFECYCLE). */
typedef struct xpart {
	transfer *t;
	uint32_t p;
	uint8_t state;            /* xstate */
	epoch_id base;            /* the epoch its sources hold it whole in */
	epoch_id as_of;           /* the epoch every member acked when it began */
	uint32_t src;             /* the source streaming now (index among base's others) */
	uint64_t next;            /* that stream's cursor: the next ring position */
	uint64_t keys, bytes;     /* merged so far, every stream */
	uint64_t total_keys, total_bytes;   /* one source's partition, as it said */
	uint64_t started_ms;
	uint64_t wanted_ms;       /* when it was found gained */
	uint64_t pid;             /* the XREQ in flight; 0: none */
	const char *from;         /* its source (interned) */
	uint64_t sent_ms, ready_ms;
	bool merging;             /* a batch is merged, or waits to be durable */
	uint8_t *mbuf;            /* the pairs of that batch not merged yet
				   * (NULL: all merged), MERGE_SLICE a turn */
	mpr mcur;                 /* over mbuf */
	uint64_t mleft;           /* entries left at mcur */
	uint64_t mbytes;          /* bytes of that batch merged */
	uint64_t pend_next;       /* what that batch moves the cursor to */
	bool pend_done;
	durable_waiter wt;
	char error[400];          /* the last error, for dynkv-admin */
} xpart;

/* A batch being read for a receiver (off the loop). */
typedef struct xjob {
	transfer *t;
	bitcask *bc;              /* NULL: the partition is not open here */
	const char *to;           /* interned */
	uint64_t pid, cursor, max_bytes;
	uint32_t p;
	uint32_t delay_us;        /* this loop's delay, for the receiver's pace */
	int rc;
	uint64_t bytes;
	msgpack_sbuffer sb;
	uint8_t empty[65536 / 8];  /* the partitions empty here (when asked) */
	size_t emptylen;
} xjob;

/* What a source last said of its empty partitions (XDATA's bitmap): a
 * partition empty there when a request sent after it was wanted reached
 * it is not streamed from it (every write since reaches us directly). */
typedef struct xsource {
	const char *addr;         /* interned */
	uint64_t asked_ms;        /* when the request it answered was sent */
	uint8_t empty[65536 / 8];
} xsource;

struct transfer {
	transfer_env env;
	uint32_t ring_size;
	xpart *parts;
	world_timer *tick;
	bool quiesced, paused, started;
	uint32_t serving;         /* reads on the pool */
	uint32_t merging;         /* batches merged or waiting to be durable */
	world_timer *merge_timer; /* the next slice of merges (0 ms) */
	uint32_t unmerged;        /* partitions with a batch not merged yet */
	pace *pace;               /* the rate now: transfer_rate, less while
				   * requests wait (transfer_yield) */
	uint64_t next_pid;
	uint64_t free_at_ms;      /* the throttle: the next request waits for this */
	uint64_t saved_ms;
	bool dirty;               /* TRANSFERS is behind */
	uint64_t lat_ms;          /* XREQ to XDATA, a moving average */
	bool progressed;          /* a partition was received: report it */
	bool drop_due;            /* the chain changed: look for stores to drop */
	unsigned ticks;
	xsource *srcs;            /* one per source heard from */
	size_t nsrcs;
	char path[4096];
	transfer_stats st;
};

static void merge_later(transfer *t);

static uint64_t now_ms(const transfer *t)
{
	return t->env.w->ops->now_ms(t->env.w);
}

static void logt(transfer *t, dkv_log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logt(transfer *t, dkv_log_level lv, const char *fmt, ...)
{
	va_list ap;

	if (t->env.log == NULL || !dkv_log_enabled(t->env.log, lv))
		return;
	va_start(ap, fmt);
	dkv_log_vmsg(t->env.log, lv, fmt, ap);
	va_end(ap);
}

/* --- TRANSFERS ------------------------------------------------------------ */

static void save(transfer *t)
{
	char *buf;
	size_t cap = 64 + (size_t)t->ring_size * 256, k;
	int rc;

	if ((buf = malloc(cap)) == NULL)
		return;
	k = (size_t)snprintf(buf, cap, "%s", TRANSFERS_HEADER);
	for (uint32_t p = 0; p < t->ring_size; p++) {
		const xpart *x = &t->parts[p];

		if (x->state == X_NONE)
			continue;
		k += (size_t)snprintf(buf + k, cap - k,
				      "%u %u %" PRIu64 " %" PRIx64 " %" PRIu64 " %" PRIx64 " %u %" PRIx64
				      " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
				      p, x->state, x->base.number, x->base.digest, x->as_of.number,
				      x->as_of.digest, x->src, x->next, x->keys, x->bytes,
				      x->total_keys, x->total_bytes);
	}
	rc = dkv_file_replace(t->path, buf, k);
	free(buf);
	if (rc != 0) {
		logt(t, DKV_LOG_WARNING, "cannot write %s: %s (transfers resume from the last "
		     "copy that was written)", t->path, dkv_strerror(rc));
		return;
	}
	t->dirty = false;
	t->saved_ms = now_ms(t);
}

static void load(transfer *t)
{
	char line[512];
	FILE *f = fopen(t->path, "re");
	unsigned nline = 1;

	if (f == NULL)
		return;
	if (fgets(line, sizeof(line), f) == NULL || strcmp(line, TRANSFERS_HEADER) != 0)
		goto bad;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned p, state, src;
		xpart x = { 0 };

		nline++;
		if (sscanf(line, "%u %u %" SCNu64 " %" SCNx64 " %" SCNu64 " %" SCNx64 " %u %" SCNx64
			   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &p, &state, &x.base.number,
			   &x.base.digest, &x.as_of.number, &x.as_of.digest, &src, &x.next, &x.keys,
			   &x.bytes, &x.total_keys, &x.total_bytes) != 12 || p >= t->ring_size ||
		    state < X_WANTED || state > X_RECEIVED || src > DKV_CONFIG_N_MAX)
			goto bad;
		x.t = t;
		x.p = p;
		/* an active transfer resumes at its cursor once a slot is free */
		x.state = (uint8_t)(state == X_ACTIVE ? X_WANTED : state);
		x.src = src;
		t->parts[p] = x;
	}
	fclose(f);
	return;
bad:
	fclose(f);
	logt(t, DKV_LOG_WARNING, "%s: line %u is damaged; every transfer starts over (nothing is "
	     "lost: streams merge)", t->path, nline);
	for (uint32_t p = 0; p < t->ring_size; p++) {
		memset(&t->parts[p], 0, sizeof(t->parts[p]));
		t->parts[p].t = t;
		t->parts[p].p = p;
	}
}

/* --- lifecycle ------------------------------------------------------------ */

int transfer_new(transfer **out, const transfer_env *env)
{
	transfer *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (t == NULL)
		return -ENOMEM;
	t->env = *env;
	t->ring_size = placement_ring_size(env->pl);
	if ((t->parts = calloc(t->ring_size, sizeof(*t->parts))) == NULL) {
		free(t);
		return -ENOMEM;
	}
	for (uint32_t p = 0; p < t->ring_size; p++) {
		t->parts[p].t = t;
		t->parts[p].p = p;
	}
	if (pace_new(&t->pace, env->w, pace_floor(env->cfg->transfer_rate), env->cfg->transfer_rate,
		     env->cfg->transfer_yield, env->requests) != 0) {
		free(t->parts);
		free(t);
		return -ENOMEM;
	}
	snprintf(t->path, sizeof(t->path), "%s/%s", env->dir, TRANSFERS_FILE);
	load(t);
	*out = t;
	return 0;
}

static void tick(void *arg);

int transfer_start(transfer *t)
{
	t->started = true;
	t->tick = t->env.w->ops->timer_add(t->env.w, TRANSFER_TICK_MS, tick, t);
	return t->tick != NULL ? 0 : -ENOMEM;
}

/* Forget the batches not merged yet: their cursors have not moved, so
 * they are asked for again (what was merged of them is merged again,
 * which changes nothing). */
static void abandon_merges(transfer *t)
{
	if (t->merge_timer != NULL)
		t->env.w->ops->timer_cancel(t->env.w, t->merge_timer);
	t->merge_timer = NULL;
	for (uint32_t p = 0; p < t->ring_size; p++) {
		xpart *x = &t->parts[p];

		if (x->mbuf == NULL)
			continue;
		free(x->mbuf);
		x->mbuf = NULL;
		x->merging = false;
		t->merging--;
	}
	t->unmerged = 0;
}

void transfer_quiesce(transfer *t)
{
	if (t == NULL)
		return;
	t->quiesced = true;
	abandon_merges(t);
	if (t->tick != NULL)
		t->env.w->ops->timer_cancel(t->env.w, t->tick);
	t->tick = NULL;
	if (t->dirty)
		save(t);
}

bool transfer_busy(const transfer *t)
{
	return t != NULL && (t->serving > 0 || t->merging > 0);
}

void transfer_free(transfer *t)
{
	if (t == NULL)
		return;
	abandon_merges(t);
	if (t->tick != NULL)
		t->env.w->ops->timer_cancel(t->env.w, t->tick);
	pace_free(t->pace);
	free(t->parts);
	free(t->srcs);
	free(t);
}

/* --- serving: a replica of base streams a partition ----------------------- */

typedef struct xkey {
	uint64_t h;
	size_t off, len;
} xkey;

static int cmp_xkey(const void *a, const void *b)
{
	const xkey *x = a, *y = b;

	return x->h < y->h ? -1 : x->h > y->h;
}

/* Off the loop: the keys of the partition at or past the cursor, in ring
 * order, with their values, up to about max_bytes, as one XDATA frame. */
static int serve_work(void *arg)
{
	xjob *j = arg;
	xkey *ks = NULL;
	uint8_t *arena = NULL;
	size_t nk = 0, capk = 0, alen = 0, acap = 0, take = 0;
	void **vals = NULL;
	size_t *vlens = NULL;
	bitcask_stats bst = { 0 };
	bitcask_iter *it = NULL;
	uint64_t next = 0, bytes = 0;
	bool done = true;
	msgpack_packer pk;
	size_t start;
	int rc = 0;

	if (j->bc != NULL) {
		const uint8_t *k, *v;
		size_t kl, vl;

		bitcask_stats_get(j->bc, &bst, NULL, NULL);
		if ((rc = bitcask_iter_open(j->bc, false, &it)) != 0)
			goto out;
		while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0) {
			uint64_t h = ring_key_hash(k, kl);

			if (h < j->cursor)
				continue;
			if (nk == capk) {
				xkey *n2 = realloc(ks, (capk = capk ? 2 * capk : 256) * sizeof(*ks));

				if (n2 == NULL) {
					rc = -ENOMEM;
					goto out;
				}
				ks = n2;
			}
			if (alen + kl > acap) {
				uint8_t *a2;

				while (alen + kl > acap)
					acap = acap ? 2 * acap : 4096;
				if ((a2 = realloc(arena, acap)) == NULL) {
					rc = -ENOMEM;
					goto out;
				}
				arena = a2;
			}
			memcpy(arena + alen, k, kl);
			ks[nk++] = (xkey){ h, alen, kl };
			alen += kl;
		}
		if (rc != DKV_ENOTFOUND)
			goto out;
		rc = 0;
		qsort(ks, nk, sizeof(*ks), cmp_xkey);
		if (nk > 0 && ((vals = calloc(nk > PEER_MAX_HOFF ? PEER_MAX_HOFF : nk, sizeof(*vals))) == NULL ||
			       (vlens = calloc(nk > PEER_MAX_HOFF ? PEER_MAX_HOFF : nk, sizeof(*vlens))) == NULL)) {
			rc = -ENOMEM;
			goto out;
		}
		/* whole runs of equal positions: the cursor never splits one */
		for (size_t i = 0; i < nk; i++) {
			/* (a run of PEER_MAX_HOFF equal positions, never seen
			 * with 64-bit ones, is cut: its head is sent again) */
			if (take == PEER_MAX_HOFF ||
			    (i > 0 && bytes >= j->max_bytes && ks[i].h != ks[i - 1].h)) {
				next = ks[i].h;
				done = false;
				break;
			}
			rc = bitcask_get(j->bc, arena + ks[i].off, ks[i].len, &vals[take], &vlens[take]);
			if (rc == DKV_ENOTFOUND) {
				rc = 0;
				continue;   /* gone since the scan */
			}
			if (rc != 0)
				goto out;
			bytes += ks[i].len + vlens[take];
			ks[take] = ks[i];   /* (take <= i) */
			take++;
		}
	}
	j->sb.size = 0;
	if ((rc = peer_xdata_begin(&j->sb, &pk, &start, j->pid, *j->t->env.self, j->p, 0, next,
				   done, bst.keys, bst.live_bytes, j->empty, j->emptylen,
				   (uint32_t)take, j->delay_us)) != 0)
		goto out;
	for (size_t i = 0; i < take && rc == 0; i++)
		rc = peer_hoff_pair(&pk, arena + ks[i].off, ks[i].len, vals[i], vlens[i]);
	if (rc == 0)
		rc = peer_hoff_end(&j->sb, start);
	j->bytes = bytes;
out:
	if (it != NULL)
		bitcask_iter_close(it);
	for (size_t i = 0; vals != NULL && i < take; i++)
		free(vals[i]);
	free(vals);
	free(vlens);
	free(ks);
	free(arena);
	j->rc = rc;
	return rc;
}

/* The answer for a partition that holds no key here: done, no pairs. */
static int serve_work_empty(xjob *j)
{
	msgpack_packer pk;
	size_t start;
	int rc;

	j->sb.size = 0;
	rc = peer_xdata_begin(&j->sb, &pk, &start, j->pid, *j->t->env.self, j->p, 0, 0, true, 0, 0,
			      j->empty, j->emptylen, 0, j->delay_us);
	if (rc == 0)
		rc = peer_hoff_end(&j->sb, start);
	return rc;
}

static void serve_done(void *arg, int rc)
{
	xjob *j = arg;
	transfer *t = j->t;

	t->serving--;
	if (rc != 0) {
		msgpack_packer pk;
		size_t start;

		t->st.errors++;
		j->sb.size = 0;
		if (peer_xdata_begin(&j->sb, &pk, &start, j->pid, *t->env.self, j->p,
				     proto_error_from_dkv(rc), 0, false, 0, 0, NULL, 0, 0, 0) == 0)
			(void)peer_hoff_end(&j->sb, start);
		logt(t, DKV_LOG_WARNING, "reading partition %u for a transfer to %s failed: %s",
		     j->p, j->to, dkv_strerror(rc));
	} else {
		t->st.served_batches++;
		t->st.served_bytes += j->bytes;
	}
	if (j->sb.size > 0)
		(void)t->env.w->ops->send(t->env.w, j->to, j->sb.data, j->sb.size);
	msgpack_sbuffer_destroy(&j->sb);
	free(j);
}

void transfer_xreq(transfer *t, const peer_msg *pm)
{
	const char *to = placement_intern(t->env.pl, pm->from);
	uint64_t cap = t->env.cfg->max_frame / 2;
	xjob *j;

	if (to == NULL || pm->partition >= t->ring_size || t->quiesced)
		return;   /* the receiver times out and asks again */
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->t = t;
	j->to = to;
	j->pid = pm->id;
	j->p = pm->partition;
	j->cursor = pm->first;
	j->max_bytes = pm->n < cap ? pm->n : cap;
	j->bc = vnode_store_of(t->env.vs, pm->partition);
	/* the receiver's pace yields to this loop too: it serves requests
	 * while it reads for the transfer (the answer says how late it runs) */
	pace_touch(t->pace);
	j->delay_us = pace_delay(t->pace);
	msgpack_sbuffer_init(&j->sb);
	t->serving++;
	j->emptylen = (t->ring_size + 7) / 8;
	for (uint32_t p = 0; p < t->ring_size; p++) {
		bitcask *bc = vnode_store_of(t->env.vs, p);
		bitcask_stats bst = { 0 };

		if (bc != NULL)
			bitcask_stats_get(bc, &bst, NULL, NULL);
		if (bst.keys == 0)
			j->empty[p / 8] |= (uint8_t)(1u << (p % 8));
	}
	if (j->bc != NULL) {
		bitcask_stats bst;

		bitcask_stats_get(j->bc, &bst, NULL, NULL);
		if (bst.keys > 0) {
			t->env.w->ops->work(t->env.w, serve_work, j, serve_done, j);
			return;
		}
	}
	/* nothing to read (most partitions of a new cluster): answered now */
	serve_done(j, serve_work_empty(j));
}

/* --- receiving ------------------------------------------------------------ */

/* Partition p's sources: its primaries in epoch base other than us
 * (their ids, n of them), in preference order. */
static uint32_t sources(transfer *t, const epochs *h, long base, uint32_t p, const char **out)
{
	const ring *rg = epochs_ring(h, (size_t)base);
	const uint32_t *l = ring_preflist(rg, p);
	uint32_t n = 0;

	for (uint32_t i = 0; i < ring_n(rg); i++) {
		const char *id = ring_member_id(rg, l[i]);
		const member *m = cluster_find(t->env.cl, id);

		/* a removed member is gone for good: the survivors hold what
		 * it acknowledged (W of them) */
		if (strcmp(id, t->env.node_id) != 0 && m != NULL && m->status != MEMBER_REMOVED)
			out[n++] = id;
	}
	return n;
}

static void reset(xpart *x, xstate st)
{
	x->state = (uint8_t)st;
	x->src = 0;
	x->next = 0;
	x->keys = x->bytes = x->total_keys = x->total_bytes = 0;
	x->pid = 0;
	x->from = NULL;
	x->error[0] = '\0';
	x->ready_ms = 0;
}

static bool primary_in(const epochs *h, size_t k, const char *id, uint32_t p)
{
	const ring *rk = epochs_ring(h, k);

	return ring_is_primary(rk, ring_member_index(rk, id), p);
}

/* The first epoch of the unbroken run, after base and up to k, in which
 * id is a primary of p (k itself when it is not one in k - 1).  A copy of
 * p received once every member acked that epoch has every write since:
 * each one reached id as a primary of some active epoch. */
static size_t run_start(const epochs *h, const char *id, uint32_t p, size_t k, size_t base)
{
	while (k - 1 > base && primary_in(h, k - 1, id, p))
		k--;
	return k;
}

/* Which partitions are gained (transfer.h, WHEN): new ones wanted,
 * those no longer gained forgotten. */
static void plan(transfer *t)
{
	const epochs *h = cluster_epochs(t->env.cl);
	long base, acked;
	const ring *rb;
	long ib;

	cluster_epoch_marks(t->env.cl, &base, &acked);
	if (base < 0)
		return;   /* the members agree on no epoch yet: nothing is known */
	if (cluster_self(t->env.cl)->status == MEMBER_REMOVED || acked <= base)
		acked = base;   /* nothing gained (below, everything is forgotten) */
	rb = base >= 0 ? epochs_ring(h, (size_t)base) : NULL;
	ib = rb != NULL ? ring_member_index(rb, t->env.node_id) : -1;
	for (uint32_t p = 0; p < t->ring_size; p++) {
		xpart *x = &t->parts[p];
		long last = -1;   /* the newest epoch after base in which we gain p */

		if (rb != NULL && !ring_is_primary(rb, ib, p))
			for (long k = acked; k > base && last < 0; k--)
				if (primary_in(h, (size_t)k, t->env.node_id, p))
					last = k;
		if (x->merging)
			continue;   /* decided once its batch is durable */
		if (last >= 0) {
			epoch_id b = epochs_id(h, (size_t)base);
			epoch_id from = epochs_id(h, run_start(h, t->env.node_id, p, (size_t)last,
								(size_t)base));

			/* a copy received before the run of epochs in which we
			 * are p's primary now (we were one, then not, then again)
			 * missed the writes of the break: received again */
			if (x->state == X_RECEIVED ? epochs_find(h, x->as_of) < 0 ||
						     x->as_of.number < from.number
			    : x->state != X_NONE && (x->base.number != b.number ||
						     x->base.digest != b.digest))
				reset(x, X_NONE);   /* its sources changed: start again */
			if (x->state == X_NONE) {
				reset(x, X_WANTED);
				x->wanted_ms = now_ms(t);
				x->base = b;
				x->as_of = epochs_id(h, (size_t)acked);
				t->dirty = true;
			}
		} else if (x->state != X_NONE) {
			reset(x, X_NONE);
			t->dirty = true;
		}
	}
}

/* True iff the source at addr said, answering a request sent after x was
 * wanted, that it holds no key of x's partition. */
static bool empty_at(const transfer *t, const char *addr, const xpart *x)
{
	for (size_t i = 0; i < t->nsrcs; i++)
		if (strcmp(t->srcs[i].addr, addr) == 0)
			return t->srcs[i].asked_ms >= x->wanted_ms && x->wanted_ms != 0 &&
			       (t->srcs[i].empty[x->p / 8] & (1u << (x->p % 8)));
	return false;
}

static void note_empty(transfer *t, const char *addr, uint64_t asked_ms, const peer_msg *pm)
{
	xsource *s = NULL;

	if (pm->datalen != (t->ring_size + 7) / 8)
		return;
	for (size_t i = 0; i < t->nsrcs && s == NULL; i++)
		if (t->srcs[i].addr == addr)
			s = &t->srcs[i];
	if (s == NULL) {
		xsource *n = realloc(t->srcs, (t->nsrcs + 1) * sizeof(*n));

		if (n == NULL)
			return;
		t->srcs = n;
		s = &n[t->nsrcs++];
		memset(s, 0, sizeof(*s));
		s->addr = addr;
	}
	if (asked_ms < s->asked_ms)
		return;
	s->asked_ms = asked_ms;
	memcpy(s->empty, pm->data, pm->datalen);
}

static void received(transfer *t, xpart *x)
{
	x->state = X_RECEIVED;
	t->st.received++;
	t->dirty = true;
	logt(t, DKV_LOG_INFO, "transfer of partition %u: received (%" PRIu64 " keys, %" PRIu64
	     " bytes merged from %u replicas in %" PRIu64 " ms)", x->p, x->keys, x->bytes, x->src,
	     now_ms(t) - x->started_ms);
	save(t);
	t->progressed = true;   /* reported at the end of pump() */
}

static void send_req(transfer *t, xpart *x)
{
	const epochs *h = cluster_epochs(t->env.cl);
	const char *ids[DKV_CONFIG_N_MAX];
	long base = epochs_find(h, x->base);
	const member *m;
	msgpack_sbuffer sb;
	uint64_t max = TRANSFER_BATCH_BYTES;
	uint32_t n;

	if (base < 0)
		return;   /* plan() resets it */
	n = sources(t, h, base, x->p, ids);
	for (;;) {
		if (x->src >= n) {
			received(t, x);
			return;
		}
		m = cluster_find(t->env.cl, ids[x->src]);
		if (x->next != 0 || m == NULL || !empty_at(t, m->addr, x))
			break;
		x->src++;   /* it holds none of it */
		t->dirty = true;
	}
	if (m == NULL || m->liveness == LIVE_DOWN) {
		snprintf(x->error, sizeof(x->error), "waiting for %s, which is down", ids[x->src]);
		x->ready_ms = now_ms(t) + RETRY_MS;
		return;
	}
	if (max > t->env.cfg->max_frame / 2)
		max = t->env.cfg->max_frame / 2;
	msgpack_sbuffer_init(&sb);
	x->from = placement_intern(t->env.pl, m->addr);
	x->pid = ++t->next_pid;
	if (x->from == NULL || peer_encode_xreq(&sb, x->pid, *t->env.self, x->p, x->next, max) != 0 ||
	    t->env.w->ops->send(t->env.w, x->from, sb.data, sb.size) != 0) {
		snprintf(x->error, sizeof(x->error), "cannot reach %s", m->addr);
		x->pid = 0;
		x->ready_ms = now_ms(t) + RETRY_MS;
	}
	x->sent_ms = now_ms(t);
	msgpack_sbuffer_destroy(&sb);
}

/* Start wanted transfers within transfer_limit; send what is due. */
static void pump(transfer *t)
{
	uint64_t now = now_ms(t);
	/* an answer is late at 8 times the usual wait, at least
	 * TRANSFER_TIMEOUT_MIN_MS (a lost answer is seen by its sender only) */
	uint64_t timeout = 8 * t->lat_ms < TRANSFER_TIMEOUT_MIN_MS ? TRANSFER_TIMEOUT_MIN_MS
				 : 8 * t->lat_ms > TRANSFER_TIMEOUT_MS ? TRANSFER_TIMEOUT_MS
				 : 8 * t->lat_ms;

	if (t->quiesced)
		return;
	t->st.pending = 0;
	t->st.active = 0;
	for (uint32_t p = 0; p < t->ring_size; p++)
		t->st.active += t->parts[p].state == X_ACTIVE;
	for (uint32_t p = 0; p < t->ring_size; p++) {
		xpart *x = &t->parts[p];

		if (x->state == X_WANTED) {
			if (t->paused || t->st.active >= t->env.cfg->transfer_limit) {
				t->st.pending++;
				continue;
			}
			x->state = X_ACTIVE;
			x->started_ms = now;
			t->st.active++;
			logt(t, DKV_LOG_INFO, "transfer of partition %u: receiving it from the %s of "
			     "epoch %" PRIu64 "'s replicas%s", p, x->src ? "next" : "first",
			     x->base.number, x->next || x->src ? " (resumed)" : "");
		}
		if (x->state != X_ACTIVE || x->merging || t->paused)
			continue;
		if (x->pid != 0 && now - x->sent_ms >= timeout) {
			t->st.errors++;
			snprintf(x->error, sizeof(x->error), "no answer from %s in %" PRIu64 " ms",
				 x->from, timeout);
			x->pid = 0;
		}
		/* the throttle holds every request, a transfer's first too */
		if (x->pid == 0 && now >= x->ready_ms && now >= t->free_at_ms) {
			send_req(t, x);
			if (x->state == X_RECEIVED)
				t->st.active--;   /* (nothing to stream): a slot for the next */
		}
	}
	if (t->dirty && (now - t->saved_ms >= TRANSFER_SAVE_MS || t->saved_ms == 0))
		save(t);
	if (t->progressed) {
		t->progressed = false;
		cluster_progress_changed(t->env.cl);   /* may call back: last */
	}
}

/* DROPPING in transfer.h. */
static void drop_unowned(transfer *t)
{
	placement *pl = t->env.pl;
	const epochs *h = cluster_epochs(t->env.cl);

	if (t->serving > 0 || t->env.quiet == NULL || !t->env.quiet(t->env.ctx) ||
	    h == NULL || epochs_count(h) == 0 || !placement_has_ring(pl) ||
	    placement_epochs(pl) != epochs_count(h))
		return;   /* (a placement not rebuilt yet for this chain) */
	for (uint32_t p = 0; p < t->ring_size; p++) {
		uint64_t keys = 0;
		bitcask *bc;
		int rc;

		if (placement_holds(pl, p) || transfer_receiving(t, p) ||
		    !vnode_exists(t->env.vs, p))
			continue;
		if ((bc = vnode_store_of(t->env.vs, p)) != NULL) {
			bitcask_stats bst;

			bitcask_stats_get(bc, &bst, NULL, NULL);
			keys = bst.keys;
		}
		if ((rc = vnode_drop(t->env.vs, p)) != 0) {
			if (rc != -EBUSY)
				logt(t, DKV_LOG_WARNING, "partition %u is no longer ours but cannot be "
				     "dropped: %s", p, dkv_strerror(rc));
			continue;   /* (busy: looked at again within seconds) */
		}
		t->st.dropped++;
		t->parts[p].state = X_NONE;
		logt(t, DKV_LOG_INFO, "partition %u dropped: this node is a replica of it in no "
		     "ring epoch left (its %" PRIu64 " keys are on its replicas)", p, keys);
	}
}

static void tick(void *arg)
{
	transfer *t = arg;

	t->tick = t->env.w->ops->timer_add(t->env.w, TRANSFER_TICK_MS, tick, t);
	if (t->quiesced)
		return;
	plan(t);
	pump(t);
	/* the pace stays awake while anything is received: touched only when
	 * a batch arrives, it went idle between batches at its floor rate
	 * (more than PACE_IDLE_MS apart) and every touch restarted it there */
	if (t->st.active > 0 || t->merging > 0)
		pace_touch(t->pace);
	/* a stat per unheld partition: after a change, and every few seconds
	 * (a drop refused busy, or a store a stale write made), not per tick */
	if (t->drop_due || ++t->ticks % 50 == 0) {
		t->drop_due = false;
		drop_unowned(t);
	}
}

void transfer_ring_changed(transfer *t)
{
	if (t == NULL || !t->started || t->quiesced)
		return;
	t->drop_due = true;
	plan(t);
	pump(t);
}

static void merged_synced(void *arg, int rc)
{
	xpart *x = arg;
	transfer *t = x->t;
	const epochs *h;
	const char *ids[DKV_CONFIG_N_MAX];
	long base;

	x->merging = false;
	t->merging--;
	if (x->state != X_ACTIVE)
		return;
	if (rc != 0) {
		t->st.errors++;
		snprintf(x->error, sizeof(x->error), "making a batch durable failed: %s",
			 dkv_strerror(rc));
		x->ready_ms = now_ms(t) + RETRY_MS;
		return;
	}
	t->dirty = true;
	x->error[0] = '\0';
	if (!x->pend_done) {
		x->next = x->pend_next;
	} else {
		h = cluster_epochs(t->env.cl);
		base = epochs_find(h, x->base);
		x->src++;
		x->next = 0;
		if (base < 0 || x->src >= sources(t, h, base, x->p, ids)) {
			received(t, x);
			pump(t);
			return;
		}
	}
	if (!t->quiesced && !t->paused && now_ms(t) >= x->ready_ms)
		send_req(t, x);   /* not throttled: on at once */
	if (t->dirty && now_ms(t) - t->saved_ms >= TRANSFER_SAVE_MS)
		save(t);
}

void transfer_xdata(transfer *t, const peer_msg *pm)
{
	const char *from = placement_intern(t->env.pl, pm->from);
	xpart *x;
	uint64_t now;
	size_t len;

	if (pm->partition >= t->ring_size)
		return;
	x = &t->parts[pm->partition];
	if (x->state != X_ACTIVE || x->pid == 0 || x->pid != pm->id || x->from != from)
		return;   /* late, or not ours */
	x->pid = 0;
	now = now_ms(t);
	t->lat_ms = t->lat_ms ? (7 * t->lat_ms + (now - x->sent_ms)) / 8 : now - x->sent_ms + 1;
	note_empty(t, from, x->sent_ms, pm);
	if (pm->code != 0) {
		t->st.errors++;
		snprintf(x->error, sizeof(x->error), "%s refused a batch: %s", from,
			 dkv_strerror(proto_error_to_dkv(pm->code)));
		x->ready_ms = now + RETRY_MS;
		return;
	}
	if (x->src == 0 || pm->count > x->total_keys) {
		x->total_keys = pm->count;
		x->total_bytes = pm->n;
	}
	/* the pairs are merged MERGE_SLICE a turn of the loop (merge_cb):
	 * a whole batch at once would hold up every request of this node
	 * for the time of hundreds of merges */
	len = (size_t)(pm->entries.end - pm->entries.p);
	if ((x->mbuf = malloc(len ? len : 1)) == NULL) {
		t->st.errors++;
		snprintf(x->error, sizeof(x->error), "no memory for a batch from %s", from);
		x->ready_ms = now + RETRY_MS;
		return;
	}
	if (len > 0)
		memcpy(x->mbuf, pm->entries.p, len);
	mpr_init(&x->mcur, x->mbuf, len, pm->entries.bad);
	pace_touch(t->pace);
	pace_note(t->pace, pm->delay_us);   /* the source's loop: yield to it too */
	x->mleft = pm->nentries;
	x->mbytes = 0;
	x->pend_next = pm->first;
	x->pend_done = pm->flag;
	x->merging = true;
	t->merging++;
	t->unmerged++;
	merge_later(t);
}

/* The rest of x's batch is merged: make it durable, then move on
 * (merged_synced); or, when a merge failed (rc), ask again later. */
static void merged(transfer *t, xpart *x, int rc)
{
	uint64_t rate = pace_rate(t->pace), now = now_ms(t);

	free(x->mbuf);
	x->mbuf = NULL;
	t->unmerged--;
	if (rc != 0) {
		x->merging = false;
		t->merging--;
		t->st.errors++;
		snprintf(x->error, sizeof(x->error), "merging a batch from %s failed: %s", x->from,
			 dkv_strerror(rc));
		x->ready_ms = now + RETRY_MS;   /* asked again from the same cursor */
		return;
	}
	/* the throttle: every byte received waits its share of transfer_rate */
	if (t->free_at_ms < now)
		t->free_at_ms = now;
	t->free_at_ms += x->mbytes * 1000 / (rate ? rate : 1);
	x->ready_ms = t->free_at_ms;
	durable_wait(t->env.dur, &x->wt, merged_synced, x);
}

/* One slice: up to MERGE_SLICE pairs, from the batches waiting in
 * partition order; another turn if some are left. */
static void merge_cb(void *arg)
{
	transfer *t = arg;
	unsigned budget = MERGE_SLICE;

	t->merge_timer = NULL;
	for (uint32_t p = 0; p < t->ring_size && budget > 0 && t->unmerged > 0; p++) {
		xpart *x = &t->parts[p];
		int rc = 1;

		while (x->mbuf != NULL && budget > 0) {
			const uint8_t *k, *o;
			size_t kl, ol;
			object *obj = NULL;
			bool wrote;

			if ((rc = peer_hoff_next(&x->mcur, &x->mleft, &k, &kl, &o, &ol)) != 1) {
				merged(t, x, rc);
				break;
			}
			if ((rc = object_decode(o, ol, &t->env.olim, &obj)) == 0)
				rc = vnode_merge(t->env.vs, x->p, k, kl, obj, &wrote);
			object_free(obj);
			budget--;
			if (rc != 0) {
				merged(t, x, rc);
				break;
			}
			x->keys++;
			x->bytes += kl + ol;
			x->mbytes += kl + ol;
			t->st.keys++;
			t->st.bytes += kl + ol;
		}
	}
	if (t->unmerged > 0)
		merge_later(t);
}

static void merge_later(transfer *t)
{
	if (t->merge_timer == NULL)
		t->merge_timer = t->env.w->ops->timer_add(t->env.w, 0, merge_cb, t);
}

void transfer_peer_gone(transfer *t, const char *addr)
{
	const char *a = placement_intern(t->env.pl, addr);

	for (uint32_t p = 0; a != NULL && p < t->ring_size; p++) {
		xpart *x = &t->parts[p];

		if (x->state == X_ACTIVE && x->pid != 0 && x->from == a) {
			x->pid = 0;   /* ask again (the same cursor) after a pause */
			x->ready_ms = now_ms(t) + RETRY_MS;
			snprintf(x->error, sizeof(x->error), "the connection to %s failed", a);
		}
	}
}

bool transfer_holds_epoch(transfer *t, size_t k, size_t base)
{
	const epochs *h = cluster_epochs(t->env.cl);
	const ring *rk = epochs_ring(h, k), *rb = epochs_ring(h, base);
	long ik = ring_member_index(rk, t->env.node_id), ib = ring_member_index(rb, t->env.node_id);

	if (ik < 0)
		return true;
	for (uint32_t p = 0; p < t->ring_size; p++) {
		const xpart *x = &t->parts[p];

		size_t j;

		if (!ring_is_primary(rk, ik, p) || ring_is_primary(rb, ib, p))
			continue;
		j = run_start(h, t->env.node_id, p, k, base);
		if (x->state != X_RECEIVED || epochs_find(h, x->as_of) < 0 ||
		    x->as_of.number < epochs_id(h, j).number)
			return false;
	}
	return true;
}

bool transfer_receiving(const transfer *t, uint32_t p)
{
	return p < t->ring_size && (t->parts[p].state == X_WANTED || t->parts[p].state == X_ACTIVE);
}

void transfer_pause(transfer *t, bool paused)
{
	if (t->paused != paused)
		logt(t, DKV_LOG_INFO, "transfers %s", paused ? "paused" : "resumed");
	t->paused = paused;
	if (!paused)
		pump(t);
}

void transfer_stats_get(const transfer *t, transfer_stats *st)
{
	*st = t->st;
	st->paused = t->paused;
}

#define PKS(pk, s) msgpack_pack_str_with_body((pk), (s), strlen(s))

int transfer_report(transfer *t, msgpack_packer *pk)
{
	const epochs *h = cluster_epochs(t->env.cl);
	uint64_t now = now_ms(t);
	uint32_t nact = 0, pending = 0;
	pace_stats ps;

	for (uint32_t p = 0; p < t->ring_size; p++) {
		nact += t->parts[p].state == X_ACTIVE;
		pending += t->parts[p].state == X_WANTED;
	}
	pace_stats_get(t->pace, &ps);
	msgpack_pack_map(pk, 8);
	PKS(pk, "active");
	msgpack_pack_array(pk, nact);
	for (uint32_t p = 0; p < t->ring_size; p++) {
		const xpart *x = &t->parts[p];
		const char *ids[DKV_CONFIG_N_MAX];
		long base = epochs_find(h, x->base);
		uint32_t ns = base >= 0 ? sources(t, h, base, p, ids) : 0;
		uint64_t el = now - x->started_ms, total = x->total_bytes * (ns ? ns : 1);
		double rate = el > 0 ? (double)x->bytes * 1000.0 / (double)el : 0.0;
		const member *m = x->src < ns ? cluster_find(t->env.cl, ids[x->src]) : NULL;

		if (x->state != X_ACTIVE)
			continue;
		msgpack_pack_map(pk, 11);
		PKS(pk, "partition");
		msgpack_pack_uint32(pk, p);
		PKS(pk, "from");
		PKS(pk, m != NULL ? m->addr : "");
		PKS(pk, "to");
		PKS(pk, *t->env.self);
		PKS(pk, "keys");
		msgpack_pack_uint64(pk, x->keys);
		PKS(pk, "bytes");
		msgpack_pack_uint64(pk, x->bytes);
		PKS(pk, "total_bytes");
		msgpack_pack_uint64(pk, total);
		PKS(pk, "rate");
		msgpack_pack_double(pk, rate);
		PKS(pk, "eta_s");
		if (rate > 0 && total > x->bytes)
			msgpack_pack_double(pk, (double)(total - x->bytes) / rate);
		else if (total <= x->bytes)
			msgpack_pack_double(pk, 0.0);
		else
			msgpack_pack_nil(pk);
		PKS(pk, "source");
		msgpack_pack_uint32(pk, x->src + 1);
		PKS(pk, "sources");
		msgpack_pack_uint32(pk, ns);
		PKS(pk, "error");
		PKS(pk, x->error);
	}
	PKS(pk, "pending");
	msgpack_pack_uint32(pk, pending);
	PKS(pk, "paused");
	if (t->paused)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	PKS(pk, "received");
	msgpack_pack_uint64(pk, t->st.received);
	PKS(pk, "served_bytes");
	msgpack_pack_uint64(pk, t->st.served_bytes);
	PKS(pk, "merged_bytes");
	msgpack_pack_uint64(pk, t->st.bytes);
	PKS(pk, "dropped");
	msgpack_pack_uint64(pk, t->st.dropped);
	PKS(pk, "pace");
	msgpack_pack_map(pk, 5);
	PKS(pk, "rate");
	msgpack_pack_uint64(pk, ps.rate);
	PKS(pk, "delay_us");
	msgpack_pack_uint32(pk, ps.delay_us);
	PKS(pk, "source_delay_us");
	msgpack_pack_uint32(pk, ps.remote_us);
	PKS(pk, "slowdowns");
	msgpack_pack_uint64(pk, ps.slowdowns);
	PKS(pk, "windows");
	msgpack_pack_uint64(pk, ps.windows);
	return 0;
}
