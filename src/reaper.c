#include "config.h"
/*
 * reaper.c -- tombstone reaping.  See reaper.h.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aaetree.h"
#include "bitcask.h"
#include "error.h"
#include "proto.h"
#include "reaper.h"

/* A tombstone this node leads the reap of. */
typedef struct cand {
	uint8_t *key;
	size_t klen;
	uint64_t objhash;            /* of its encoding as stored here */
	uint64_t deleted_ms;         /* wall clock of the delete */
} cand;

typedef struct plist {
	cand *c;
	size_t n, cap;
	bool scanned;                /* the start scan has run */
} plist;

/* The start scan of one partition, on the pool. */
typedef struct scan_job {
	reaper *r;
	uint32_t p;
	bitcask *bc;
	cand *found;
	size_t n, cap;
} scan_job;

typedef enum rstate { R_IDLE, R_ASKING, R_DROPPING } rstate;

struct reaper {
	reaper_env env;
	uint32_t ring_size;
	plist *parts;
	world_timer *tick;
	bool quiesced;
	uint32_t jobs;
	uint32_t next_scan, next_p;
	/* the round */
	rstate state;
	uint64_t id;
	uint32_t p;
	cand *batch;                 /* copies of the candidates asked about */
	bool *yes;                   /* per candidate: every member said yes so far */
	size_t nbatch;
	const char *waiting[256];    /* members (interned) yet to answer */
	size_t nwaiting;
	world_timer *timer;
	msgpack_sbuffer pb;
	reaper_stats st;
};

static uint64_t wall_ms(const reaper *r)
{
	return r->env.w->ops->wall_ms(r->env.w);
}

int reaper_new(reaper **out, const reaper_env *env)
{
	reaper *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (r == NULL)
		return -ENOMEM;
	r->env = *env;
	r->ring_size = placement_ring_size(env->pl);
	if ((r->parts = calloc(r->ring_size, sizeof(*r->parts))) == NULL) {
		free(r);
		return -ENOMEM;
	}
	msgpack_sbuffer_init(&r->pb);
	*out = r;
	return 0;
}

/* True iff this node runs the reaps of partition p (its first primary). */
static bool leads(const reaper *r, uint32_t p)
{
	uint32_t np;
	const uint32_t *list = placement_primaries(r->env.pl, p, &np);

	return np > 0 && placement_is_self(r->env.pl, list[0]);
}

/* The deletion time of an encoded object if it is a tombstone, or a
 * value that expires (then perhaps in the future: a candidate due later),
 * else 0. */
static uint64_t tombstone_time(const void *obj, size_t len, const object_limits *lim)
{
	object *o = NULL;
	uint64_t t = 0;

	if (object_has_value(obj, len))
		return 0;   /* nearly every object stored: no decode */
	if (object_decode(obj, len, lim, &o) != 0)
		return 0;
	t = object_deleted_time(o);
	object_free(o);
	return t;
}

static void cand_drop(plist *pl, size_t i)
{
	free(pl->c[i].key);
	pl->c[i] = pl->c[--pl->n];
}

static int cand_add(plist *pl, const void *key, size_t klen, uint64_t objhash, uint64_t t)
{
	for (size_t i = 0; i < pl->n; i++)
		if (pl->c[i].klen == klen && memcmp(pl->c[i].key, key, klen) == 0) {
			pl->c[i].objhash = objhash;
			pl->c[i].deleted_ms = t;
			return 0;
		}
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? 2 * pl->cap : 16;
		cand *g = realloc(pl->c, cap * sizeof(*g));

		if (g == NULL)
			return -ENOMEM;
		pl->c = g;
		pl->cap = cap;
	}
	if ((pl->c[pl->n].key = malloc(klen)) == NULL)
		return -ENOMEM;
	memcpy(pl->c[pl->n].key, key, klen);
	pl->c[pl->n].klen = klen;
	pl->c[pl->n].objhash = objhash;
	pl->c[pl->n].deleted_ms = t;
	pl->n++;
	return 0;
}

static void cand_forget(plist *pl, const void *key, size_t klen)
{
	for (size_t i = 0; i < pl->n; i++)
		if (pl->c[i].klen == klen && memcmp(pl->c[i].key, key, klen) == 0) {
			cand_drop(pl, i);
			return;
		}
}

/* Every object stored in a partition: a tombstone becomes a candidate,
 * anything else (or a removal) stops being one. */
static void observe(void *ctx, uint32_t p, const void *key, size_t klen, const void *obj,
		    size_t len)
{
	reaper *r = ctx;
	uint64_t t;

	if (p >= r->ring_size || !placement_holds(r->env.pl, p))
		return;
	t = obj != NULL ? tombstone_time(obj, len, &r->env.olim) : 0;
	if (t == 0)
		cand_forget(&r->parts[p], key, klen);
	else if (cand_add(&r->parts[p], key, klen, aaetree_objhash(obj, len), t) != 0)
		r->parts[p].scanned = false;   /* lost one: scan again */
}

/* --- the start scan ------------------------------------------------------- */

static int scan_run(void *arg)
{
	scan_job *j = arg;
	object_limits lim;
	bitcask_iter *it;
	const uint8_t *k, *v;
	size_t kl, vl;
	int rc;

	object_limits_init(&lim);
	if (j->bc == NULL)
		return 0;
	if ((rc = bitcask_iter_open(j->bc, true, &it)) != 0)
		return rc;
	while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0) {
		uint64_t t = tombstone_time(v, vl, &lim);
		plist tmp = { .c = j->found, .n = j->n, .cap = j->cap };

		if (t == 0)
			continue;
		rc = cand_add(&tmp, k, kl, aaetree_objhash(v, vl), t);
		j->found = tmp.c;
		j->n = tmp.n;
		j->cap = tmp.cap;
		if (rc != 0)
			break;
	}
	bitcask_iter_close(it);
	return rc == DKV_ENOTFOUND ? 0 : rc;
}

static void scan_done(void *arg, int rc)
{
	scan_job *j = arg;
	reaper *r = j->r;
	plist *pl = &r->parts[j->p];

	r->jobs--;
	for (size_t i = 0; rc == 0 && i < j->n; i++)
		rc = cand_add(pl, j->found[i].key, j->found[i].klen, j->found[i].objhash,
			      j->found[i].deleted_ms);
	pl->scanned = rc == 0;
	for (size_t i = 0; i < j->n; i++)
		free(j->found[i].key);
	free(j->found);
	free(j);
}

static void scan_next(reaper *r)
{
	if (r->jobs > 0 || r->quiesced)
		return;
	for (uint32_t k = 0; k < r->ring_size; k++) {
		uint32_t p = (r->next_scan + k) % r->ring_size;
		scan_job *j;

		if (r->parts[p].scanned || !placement_holds(r->env.pl, p))
			continue;
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return;
		j->r = r;
		j->p = p;
		j->bc = vnode_store_of(r->env.vs, p);
		r->next_scan = (p + 1) % r->ring_size;
		r->jobs++;
		r->env.w->ops->work(r->env.w, scan_run, j, scan_done, j);
		return;
	}
}

/* --- rounds --------------------------------------------------------------- */

static void round_end(reaper *r, bool failed)
{
	if (r->timer != NULL)
		r->env.w->ops->timer_cancel(r->env.w, r->timer);
	r->timer = NULL;
	for (size_t i = 0; i < r->nbatch; i++)
		free(r->batch[i].key);
	free(r->batch);
	free(r->yes);
	r->batch = NULL;
	r->yes = NULL;
	r->nbatch = r->nwaiting = 0;
	r->state = R_IDLE;
	r->st.rounds++;
	r->st.failed += failed;
}

static void round_timeout(void *arg)
{
	reaper *r = arg;

	r->timer = NULL;
	round_end(r, true);
}

/* The hash of the object stored here for key in p, or 0 when none. */
static uint64_t local_hash(reaper *r, uint32_t p, const void *key, size_t klen)
{
	void *v = NULL;
	size_t vl = 0;
	uint64_t h = 0;

	if (vnode_get_raw(r->env.vs, p, key, klen, &v, &vl) == 0)
		h = aaetree_objhash(v, vl);
	free(v);
	return h;
}

/* Frame the round's keys as a REAPQ or a REAP (only the yes ones). */
static int frame_batch(reaper *r, uint32_t type)
{
	msgpack_packer pk;
	size_t start, n = 0;

	for (size_t i = 0; i < r->nbatch; i++)
		n += type == PEER_REAPQ || r->yes[i];
	r->pb.size = 0;
	if (peer_reap_begin(&r->pb, &pk, &start, type, r->id, *r->env.self, r->p, (uint32_t)n) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < r->nbatch; i++)
		if ((type == PEER_REAPQ || r->yes[i]) &&
		    peer_reap_pair(&pk, r->batch[i].key, r->batch[i].klen, r->batch[i].objhash) != 0)
			return -ENOMEM;
	return peer_reap_end(&r->pb, start);
}

/* The other primaries have dropped the round's yes keys (or there are
 * none): drop ours, and the round is over. */
static void own_drop(reaper *r)
{
	for (size_t i = 0; i < r->nbatch; i++) {
		cand *c = &r->batch[i];

		if (!r->yes[i])
			continue;
		/* only if it is still that tombstone: a write may have come in
		 * while the others answered (the fault suite found this) */
		if (local_hash(r, r->p, c->key, c->klen) == c->objhash &&
		    vnode_delete(r->env.vs, r->p, c->key, c->klen) == 0) {
			r->st.reaped++;
			cand_forget(&r->parts[r->p], c->key, c->klen);
		}
	}
	round_end(r, false);
}

/* Everyone said yes (or no) per key: drop the yes ones everywhere. */
static void round_drop(reaper *r)
{
	placement *pl = r->env.pl;
	uint32_t np;
	const uint32_t *list = placement_owners(pl, r->p, &np);   /* every epoch's */
	size_t nyes = 0;

	for (size_t i = 0; i < r->nbatch; i++) {
		/* our own copy must still be the tombstone asked about */
		if (r->yes[i] && local_hash(r, r->p, r->batch[i].key, r->batch[i].klen) !=
				 r->batch[i].objhash)
			r->yes[i] = false;
		if (!r->yes[i])
			r->st.refused++;
		nyes += r->yes[i];
	}
	if (nyes == 0) {
		round_end(r, false);
		return;
	}
	if (frame_batch(r, PEER_REAP) != 0) {
		round_end(r, true);
		return;
	}
	r->state = R_DROPPING;
	r->nwaiting = 0;
	for (uint32_t i = 0; i < np; i++) {
		const char *a = placement_addr(pl, list[i]);

		if (placement_is_self(pl, list[i]) || a == NULL)
			continue;
		if (r->env.w->ops->send(r->env.w, a, r->pb.data, r->pb.size) != 0) {
			round_end(r, true);   /* nothing dropped anywhere yet, or a later round */
			return;
		}
		r->waiting[r->nwaiting++] = a;
	}
	/* the others first, then ours: a crash between leaves us the leader
	 * with the tombstone, and the next round finishes it */
	if (r->nwaiting == 0)
		own_drop(r);
}

static void round_start(reaper *r)
{
	placement *pl = r->env.pl;
	uint64_t due_before = wall_ms(r) - r->env.cfg->tombstone_grace;
	size_t nm;

	if (!placement_has_ring(pl))
		return;
	nm = placement_members(pl);   /* of every active epoch */
	for (uint32_t k = 0; k < r->ring_size; k++) {
		uint32_t p = (r->next_p + k) % r->ring_size;
		plist *cl = &r->parts[p];
		size_t n = 0;

		uint64_t due = leads(r, p) ? due_before : due_before - r->env.cfg->tombstone_grace;

		if (cl->n == 0 || !placement_holds(pl, p))
			continue;
		r->next_p = (p + 1) % r->ring_size;
		/* every valid member must be up to be asked */
		for (size_t m = 0; m < nm; m++)
			if (!placement_is_self(pl, (uint32_t)m) && placement_is_down(pl, (uint32_t)m))
				return;
		if (nm - 1 > sizeof(r->waiting) / sizeof(r->waiting[0]))
			return;
		r->batch = calloc(PEER_MAX_REAP, sizeof(*r->batch));
		r->yes = calloc(PEER_MAX_REAP, sizeof(*r->yes));
		if (r->batch == NULL || r->yes == NULL) {
			free(r->batch);
			free(r->yes);
			r->batch = NULL;
			r->yes = NULL;
			return;
		}
		for (size_t i = 0; i < cl->n && n < PEER_MAX_REAP; i++) {
			cand *c = &cl->c[i];

			if (c->deleted_ms > due)
				continue;
			if ((r->batch[n].key = malloc(c->klen)) == NULL)
				break;
			memcpy(r->batch[n].key, c->key, c->klen);
			r->batch[n].klen = c->klen;
			r->batch[n].objhash = c->objhash;
			r->yes[n] = !handoff_has(r->env.ho, c->key, c->klen);
			n++;
		}
		r->nbatch = n;
		r->p = p;
		r->id++;
		if (n == 0) {
			free(r->batch);
			free(r->yes);
			r->batch = NULL;
			r->yes = NULL;
			continue;
		}
		if (frame_batch(r, PEER_REAPQ) != 0) {
			round_end(r, true);
			return;
		}
		r->state = R_ASKING;
		r->nwaiting = 0;
		for (size_t m = 0; m < nm; m++) {
			const char *a = placement_addr(pl, (uint32_t)m);

			if (placement_is_self(pl, (uint32_t)m) || a == NULL)
				continue;
			if (r->env.w->ops->send(r->env.w, a, r->pb.data, r->pb.size) != 0) {
				round_end(r, true);
				return;
			}
			r->waiting[r->nwaiting++] = a;
		}
		r->timer = r->env.w->ops->timer_add(r->env.w, REAPER_TIMEOUT_MS, round_timeout, r);
		if (r->nwaiting == 0)
			round_drop(r);
		return;
	}
}

/* Answers: a REAPA from a member we wait for. */
void reaper_reapa(reaper *r, const peer_msg *pm)
{
	const char *from = placement_intern(r->env.pl, pm->from);
	mpr e = pm->entries;
	uint64_t left = pm->nentries;
	size_t i = 0, w;
	bool yes;

	if (r->state == R_IDLE || pm->id != r->id)
		return;
	for (w = 0; w < r->nwaiting && r->waiting[w] != from; w++)
		;
	if (w == r->nwaiting)
		return;
	r->waiting[w] = r->waiting[--r->nwaiting];
	if (pm->code != 0) {
		round_end(r, true);
		return;
	}
	if (r->state == R_ASKING) {
		while (i < r->nbatch && peer_reapa_next(&e, &left, &yes) == 1) {
			r->yes[i] = r->yes[i] && yes;
			i++;
		}
		for (; i < r->nbatch; i++)
			r->yes[i] = false;   /* a short answer: no */
		if (r->nwaiting == 0)
			round_drop(r);
		return;
	}
	/* DROPPING: once every other primary has answered, drop ours */
	if (r->nwaiting == 0)
		own_drop(r);
}

/* --- a member's side ------------------------------------------------------ */

static void answer(reaper *r, const peer_msg *pm, const bool *yes, size_t n, uint32_t code)
{
	msgpack_packer pk;
	size_t start;
	bool ok = peer_reapa_begin(&r->pb, &pk, &start, pm->id, *r->env.self, code,
				   (uint32_t)n) == 0;

	for (size_t i = 0; ok && i < n; i++)
		ok = (yes[i] ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) == 0;
	if (ok && peer_reap_end(&r->pb, start) == 0)
		(void)r->env.w->ops->send(r->env.w, pm->from, r->pb.data, r->pb.size);
}

static bool holds_primary(reaper *r, uint32_t p)
{
	return placement_holds(r->env.pl, p);
}

void reaper_reapq(reaper *r, const peer_msg *pm)
{
	bool yes[PEER_MAX_REAP];
	mpr e = pm->entries;
	uint64_t left = pm->nentries, h;
	const uint8_t *k;
	size_t kl, n = 0;
	bool primary = pm->partition < r->ring_size && holds_primary(r, pm->partition);

	r->pb.size = 0;
	while (n < PEER_MAX_REAP && peer_reap_next(&e, &left, &k, &kl, &h) == 1) {
		uint64_t mine = primary ? local_hash(r, pm->partition, k, kl) : 0;

		/* the same tombstone or none here, and no hint of it */
		yes[n++] = (mine == 0 || mine == h) && !handoff_has(r->env.ho, k, kl);
	}
	answer(r, pm, yes, n, 0);
}

void reaper_reap(reaper *r, const peer_msg *pm)
{
	bool yes[PEER_MAX_REAP];
	mpr e = pm->entries;
	uint64_t left = pm->nentries, h;
	const uint8_t *k;
	size_t kl, n = 0;

	r->pb.size = 0;
	while (n < PEER_MAX_REAP && peer_reap_next(&e, &left, &k, &kl, &h) == 1) {
		yes[n] = false;
		if (pm->partition < r->ring_size && holds_primary(r, pm->partition) &&
		    local_hash(r, pm->partition, k, kl) == h &&
		    vnode_delete(r->env.vs, pm->partition, k, kl) == 0) {
			yes[n] = true;
			r->st.reaped++;
		}
		n++;
	}
	answer(r, pm, yes, n, 0);
}

void reaper_peer_gone(reaper *r, const char *addr)
{
	const char *a = placement_intern(r->env.pl, addr);

	for (size_t w = 0; r->state != R_IDLE && w < r->nwaiting; w++)
		if (r->waiting[w] == a) {
			round_end(r, true);
			return;
		}
}

/* --- the tick ------------------------------------------------------------- */

static void tick(void *arg)
{
	reaper *r = arg;

	r->tick = r->env.w->ops->timer_add(r->env.w, REAPER_TICK_MS, tick, r);
	if (r->quiesced)
		return;
	/* partitions we no longer lead keep no candidates */
	for (uint32_t p = 0; p < r->ring_size; p++)
		if (r->parts[p].n > 0 && !placement_holds(r->env.pl, p) &&
		    !(r->state != R_IDLE && r->p == p)) {
			while (r->parts[p].n > 0)
				cand_drop(&r->parts[p], 0);
			r->parts[p].scanned = false;
		}
	scan_next(r);
	if (r->state == R_IDLE)
		round_start(r);
}

int reaper_start(reaper *r)
{
	int rc = vnode_add_observer(r->env.vs, observe, r);

	if (rc != 0)
		return rc;
	r->tick = r->env.w->ops->timer_add(r->env.w, REAPER_TICK_MS, tick, r);
	return r->tick == NULL ? -ENOMEM : 0;
}

void reaper_quiesce(reaper *r)
{
	r->quiesced = true;
}

bool reaper_busy(const reaper *r)
{
	return r->jobs > 0;
}

void reaper_free(reaper *r)
{
	if (r == NULL)
		return;
	assert(r->jobs == 0);
	if (r->tick != NULL)
		r->env.w->ops->timer_cancel(r->env.w, r->tick);
	if (r->state != R_IDLE)
		round_end(r, false);
	vnode_remove_observer(r->env.vs, observe, r);
	for (uint32_t p = 0; p < r->ring_size; p++) {
		while (r->parts[p].n > 0)
			cand_drop(&r->parts[p], 0);
		free(r->parts[p].c);
	}
	free(r->parts);
	msgpack_sbuffer_destroy(&r->pb);
	free(r);
}

void reaper_stats_get(const reaper *r, reaper_stats *st)
{
	*st = r->st;
	st->candidates = 0;
	for (uint32_t p = 0; p < r->ring_size; p++)
		st->candidates += r->parts[p].n;
}
