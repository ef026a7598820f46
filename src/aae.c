#include "config.h"
/*
 * aae.c -- anti-entropy trees and exchanges.  See aae.h.
 */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aae.h"
#include "aaetree.h"
#include "bitcask.h"
#include "error.h"
#include "proto.h"
#include "riblt.h"

typedef enum tstate { TREE_MISSING, TREE_BUILDING, TREE_READY } tstate;

static const char *const tstate_name[] = { "missing", "building", "ready" };

/* A change seen while the partition's tree is being rebuilt. */
typedef struct logged {
	uint64_t kh, oh;
} logged;

/* The last exchange a partition took part in as initiator. */
typedef struct last_ex {
	uint64_t at_ms;              /* 0: none yet */
	const char *peer;            /* interned */
	uint64_t compared, repaired, bytes;
	char result[96];
} last_ex;

typedef struct ptree {
	aaetree *t;                  /* NULL until built */
	tstate state;
	uint64_t built_ms;
	logged *log;                 /* BUILDING: changes to apply to the new tree */
	size_t nlog, caplog;
	bool log_lost;               /* the log ran out of memory: build again */
	uint32_t next_peer;          /* the next other primary to exchange with */
	last_ex last;
} ptree;

/* A tree scan on the pool. */
typedef struct build_job {
	aae *a;
	uint32_t p;
	bitcask *bc;
	aaetree *t;
	uint64_t started_ms;
} build_job;

/* Objects of some keys of a partition (or all of them) on their way to a
 * peer, read off the loop AAE_BATCH_KEYS at a time and sent at aae_rate. */
typedef struct sender {
	aae *a;
	struct sender *next;
	uint32_t p;
	const char *to;              /* interned */
	bitcask *bc;                 /* the partition's store */
	bitcask_iter *it;            /* keys only */
	uint64_t *want;              /* sorted key hashes; NULL: all */
	size_t nwant;
	msgpack_sbuffer frames;      /* RPUT frames read by the last job */
	size_t *ends;                /* each frame's end in frames */
	riblt_item *items;           /* each frame's key and object hashes */
	size_t nframes, capframes, sent, sent_bytes;
	bool reading;                /* a job runs */
	bool at_end;                 /* the iterator is exhausted */
	int rc;
	bool lacking;                /* the peer holds none of these keys */
	uint64_t old_before;         /* lacking: tombstones older (wall ms) stay */
	uint64_t keys;               /* objects queued so far */
	bool for_exchange;           /* the initiator's exchange waits for it */
} sender;

/* A responder's encoder for one peer's exchange of one partition. */
typedef struct session {
	const char *peer;            /* interned; NULL: free */
	uint32_t p;
	riblt_encoder *enc;
	aaetree_digest root;
	uint64_t used_ms;
} session;

#define SESSIONS 8

typedef struct exchange {
	bool active;
	uint32_t p;
	const char *peer;
	uint64_t id;
	riblt_encoder *enc;          /* our symbols (a snapshot of our tree) */
	riblt_decoder *dec;
	aaetree_digest root;         /* of that snapshot */
	uint64_t first, n;           /* the run asked */
	world_timer *timer;
	uint64_t bytes, repaired;
	bool resolving;
} exchange;

struct aae {
	aae_env env;
	ptree *trees;                /* ring_size */
	uint32_t ring_size;
	siphash_key hkey;
	world_timer *tick;
	bool quiesced;
	uint32_t jobs;               /* builds and reads on the pool */
	bool building;               /* a build job runs */
	uint32_t next_build, next_p;
	uint64_t next_exchange_ms;
	int64_t budget;              /* bytes that may be sent now: a tick's worth
	                              * added every tick (never more than one tick's
	                              * worth), negative after symbol answers
	                              * (a debt the object sends wait out) */
	uint64_t next_id;
	exchange ex;
	session sess[SESSIONS];
	sender *senders;
	msgpack_sbuffer pb;
	aae_stats st;
};

static void tick(void *arg);

/* What aae_rate allows per AAE_TICK_MS: the budget's refill and its cap. */
static int64_t tick_budget(const aae *a)
{
	return (int64_t)(a->env.cfg->aae_rate * AAE_TICK_MS / 1000);
}
static void build_next(aae *a);

static uint64_t now_ms(const aae *a)
{
	return a->env.w->ops->now_ms(a->env.w);
}

int aae_new(aae **out, const aae_env *env)
{
	aae *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (a == NULL)
		return -ENOMEM;
	a->env = *env;
	a->ring_size = placement_ring_size(env->pl);
	a->trees = calloc(a->ring_size, sizeof(*a->trees));
	if (a->trees == NULL || siphash_key_random(&a->hkey) != 0) {
		free(a->trees);
		free(a);
		return -ENOMEM;
	}
	msgpack_sbuffer_init(&a->pb);
	*out = a;
	return 0;
}

/* --- trees ---------------------------------------------------------------- */

static void observe(void *ctx, uint32_t p, const void *key, size_t klen, const void *obj,
		    size_t len)
{
	aae *a = ctx;
	ptree *pt;
	uint64_t kh, oh;

	if (p >= a->ring_size)
		return;
	pt = &a->trees[p];
	if (pt->t == NULL && pt->state != TREE_BUILDING)
		return;
	kh = aaetree_keyhash(key, klen);
	if (obj == NULL) {   /* removed (a reaped tombstone) */
		if (pt->t != NULL)
			(void)aaetree_remove(pt->t, kh);
		if (pt->state == TREE_BUILDING)
			pt->log_lost = true;   /* the scan may have seen it: build again */
		return;
	}
	oh = aaetree_objhash(obj, len);
	if (pt->t != NULL && aaetree_update(pt->t, kh, oh) != 0) {
		/* the tree no longer says what the store holds */
		aaetree_free(pt->t);
		pt->t = NULL;
		if (pt->state == TREE_READY)
			pt->state = TREE_MISSING;
	}
	if (pt->state == TREE_BUILDING && !pt->log_lost) {
		if (pt->nlog == pt->caplog) {
			size_t cap = pt->caplog ? 2 * pt->caplog : 256;
			logged *g = realloc(pt->log, cap * sizeof(*g));

			if (g == NULL) {
				pt->log_lost = true;
				return;
			}
			pt->log = g;
			pt->caplog = cap;
		}
		pt->log[pt->nlog].kh = kh;
		pt->log[pt->nlog].oh = oh;
		pt->nlog++;
	}
}

static int build_run(void *arg)
{
	build_job *j = arg;
	bitcask_iter *it = NULL;
	const uint8_t *k, *v;
	size_t kl, vl;
	int rc;

	if ((rc = aaetree_new(&j->t, &j->a->hkey)) != 0)
		return rc;
	if (j->bc == NULL)
		return 0;   /* nothing stored: an empty tree */
	if ((rc = bitcask_iter_open(j->bc, true, &it)) != 0)
		return rc;
	while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0)
		if ((rc = aaetree_update(j->t, aaetree_keyhash(k, kl), aaetree_objhash(v, vl))) != 0)
			break;
	bitcask_iter_close(it);
	return rc == DKV_ENOTFOUND ? 0 : rc;
}

static void build_done(void *arg, int rc)
{
	build_job *j = arg;
	aae *a = j->a;
	ptree *pt = &a->trees[j->p];

	a->jobs--;
	a->building = false;
	for (size_t i = 0; rc == 0 && i < pt->nlog; i++)
		rc = aaetree_update(j->t, pt->log[i].kh, pt->log[i].oh);
	if (rc == 0 && pt->log_lost)
		rc = -ENOMEM;
	free(pt->log);
	pt->log = NULL;
	pt->nlog = pt->caplog = 0;
	pt->log_lost = false;
	if (rc != 0) {
		dkv_log_opt(a->env.log, DKV_LOG_WARNING,
			    "partition %" PRIu32 ": building its anti-entropy tree failed: %s",
			    j->p, dkv_strerror(rc));
		aaetree_free(j->t);
		pt->state = pt->t != NULL ? TREE_READY : TREE_MISSING;
		pt->built_ms = now_ms(a);   /* not again at once */
	} else {
		aaetree_free(pt->t);
		pt->t = j->t;
		pt->state = TREE_READY;
		pt->built_ms = now_ms(a);
		a->st.builds++;
		a->st.build_ms += pt->built_ms - j->started_ms;
	}
	free(j);
	build_next(a);   /* the next one at once, not at the next tick */
}

/* Start the next build due (one at a time). */
static void build_next(aae *a)
{
	uint64_t now = now_ms(a);

	if (a->building || a->quiesced)
		return;
	for (uint32_t k = 0; k < a->ring_size; k++) {
		uint32_t p = (a->next_build + k) % a->ring_size;
		ptree *pt = &a->trees[p];
		build_job *j;

		if (!placement_holds(a->env.pl, p))
			continue;
		if (pt->state == TREE_BUILDING ||
		    (pt->state == TREE_READY && now - pt->built_ms < a->env.cfg->aae_rebuild_interval))
			continue;
		if (pt->state == TREE_MISSING && pt->built_ms != 0 && now - pt->built_ms < 10000)
			continue;   /* failed lately */
		if ((j = calloc(1, sizeof(*j))) == NULL)
			return;
		j->a = a;
		j->p = p;
		j->bc = vnode_store_of(a->env.vs, p);
		j->started_ms = now;
		pt->state = TREE_BUILDING;
		a->building = true;
		a->jobs++;
		a->next_build = (p + 1) % a->ring_size;
		a->env.w->ops->work(a->env.w, build_run, j, build_done, j);
		return;
	}
}

/* --- senders: objects to a peer, paced ------------------------------------ */

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

/* A tombstone deleted before s->old_before: one that the reaper may have
 * removed from the peer that lacks it (reaper.h). */
static bool old_tombstone(const sender *s, const void *val, size_t vlen)
{
	object_limits lim;
	object *obj = NULL;
	bool old;

	object_limits_init(&lim);
	if (object_decode(val, vlen, &lim, &obj) != 0)
		return false;
	old = object_deleted_time(obj) != 0 && object_deleted_time(obj) < s->old_before;
	object_free(obj);
	return old;
}

/* On the pool: read the next AAE_BATCH_KEYS wanted objects into frames. */
static int sender_read(void *arg)
{
	sender *s = arg;
	const uint8_t *k, *v;
	size_t kl, vl;
	uint32_t got = 0;
	int rc = 0;

	s->frames.size = 0;
	s->nframes = s->sent = 0;
	while (got < AAE_BATCH_KEYS) {
		uint64_t kh;
		void *val = NULL;
		size_t vlen = 0;

		rc = bitcask_iter_next(s->it, &k, &kl, &v, &vl);
		if (rc == DKV_ENOTFOUND) {
			s->at_end = true;
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		kh = aaetree_keyhash(k, kl);
		if (s->want != NULL && bsearch(&kh, s->want, s->nwant, sizeof(kh), cmp_u64) == NULL)
			continue;
		rc = bitcask_get(s->bc, k, kl, &val, &vlen);
		if (rc == DKV_ENOTFOUND) {
			rc = 0;
			continue;   /* deleted meanwhile */
		}
		if (rc != 0)
			break;
		if (s->lacking && old_tombstone(s, val, vlen)) {
			free(val);
			continue;   /* reaped where it is missing: do not bring it back */
		}
		if (s->nframes == s->capframes) {
			size_t cap = s->capframes ? 2 * s->capframes : 64;
			size_t *g = realloc(s->ends, cap * sizeof(*g));
			riblt_item *gi = g == NULL ? NULL : realloc(s->items, cap * sizeof(*gi));

			if (g != NULL)
				s->ends = g;
			if (gi == NULL) {
				free(val);
				rc = -ENOMEM;
				break;
			}
			s->items = gi;
			s->capframes = cap;
		}
		s->items[s->nframes].keyhash = kh;
		s->items[s->nframes].objhash = aaetree_objhash(val, vlen);
		rc = peer_encode_rput(&s->frames, 0, *s->a->env.self, k, kl, val, vlen, false, NULL);
		free(val);
		if (rc != 0)
			break;
		s->ends[s->nframes++] = s->frames.size;
		got++;
	}
	return rc;
}

static void sender_free(aae *a, sender *s)
{
	sender **pp = &a->senders;

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	if (s->it != NULL)
		bitcask_iter_close(s->it);
	free(s->want);
	free(s->ends);
	free(s->items);
	msgpack_sbuffer_destroy(&s->frames);
	free(s);
}

static void exchange_end(aae *a, const char *result, bool ok);

static void sender_read_done(void *arg, int rc)
{
	sender *s = arg;

	s->a->jobs--;
	s->reading = false;
	s->rc = rc;
	s->keys += s->nframes;
}

/* Send what the budget allows; start reads; free finished senders. */
static void senders_pump(aae *a)
{
	sender *s, *next;

	for (s = a->senders; s != NULL; s = next) {
		next = s->next;
		if (s->reading)
			continue;
		while (s->sent < s->nframes) {
			size_t from = s->sent ? s->ends[s->sent - 1] : 0;
			size_t len = s->ends[s->sent] - from;
			const aaetree *t = a->trees[s->p].t;
			uint64_t oh;

			/* Read a while ago: the store may hold another version now,
			 * or none (a reaped tombstone).  The tree knows, in memory:
			 * a stale copy is not sent (it could bring a reaped key
			 * back); the next exchange finds what still differs. */
			if (t != NULL && (!aaetree_contains(t, s->items[s->sent].keyhash, &oh) ||
					  oh != s->items[s->sent].objhash)) {
				s->sent++;
				continue;
			}

			if ((int64_t)len > a->budget &&
			    a->budget < tick_budget(a) / 4)
				break;   /* a frame larger than a tick's budget goes alone */
			if (a->env.w->ops->send(a->env.w, s->to, s->frames.data + from, len) != 0) {
				s->rc = -EAGAIN;
				break;
			}
			a->budget = a->budget > (int64_t)len ? a->budget - (int64_t)len : 0;
			a->st.bytes += len;
			if (s->for_exchange)
				a->ex.bytes += len;
			s->sent++;
		}
		if (s->rc != 0 || (s->sent == s->nframes && (s->at_end || a->quiesced))) {
			bool ex = s->for_exchange;
			int rc = s->rc;

			if (rc != 0)
				dkv_log_opt(a->env.log, DKV_LOG_INFO,
					    "partition %" PRIu32 ": anti-entropy repairs to %s stopped: %s",
					    s->p, s->to, dkv_strerror(rc));
			sender_free(a, s);
			if (ex && a->ex.active)
				exchange_end(a, rc == 0 ? "repaired" : "failed: repairs not sent", rc == 0);
			continue;
		}
		if (s->sent == s->nframes && !a->quiesced) {
			s->reading = true;
			a->jobs++;
			a->env.w->ops->work(a->env.w, sender_read, s, sender_read_done, s);
		}
	}
}

/* Queue the objects of want (n key hashes, taken; NULL: every key) of
 * partition p for `to`. */
static int send_objects(aae *a, uint32_t p, const char *to, uint64_t *want, size_t n,
			bool for_exchange, bool lacking)
{
	bitcask *bc = vnode_store_of(a->env.vs, p);
	sender *s;
	int rc;

	if (bc == NULL) {
		free(want);
		return 0;   /* nothing stored here */
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		free(want);
		return -ENOMEM;
	}
	if ((rc = bitcask_iter_open(bc, false, &s->it)) != 0) {
		free(want);
		free(s);
		return rc;
	}
	if (want != NULL)
		qsort(want, n, sizeof(*want), cmp_u64);
	s->a = a;
	s->p = p;
	s->bc = bc;
	s->to = to;
	s->want = want;
	s->nwant = n;
	s->for_exchange = for_exchange;
	s->lacking = lacking;
	s->old_before = a->env.w->ops->wall_ms(a->env.w) - a->env.cfg->tombstone_grace;
	msgpack_sbuffer_init(&s->frames);
	s->next = a->senders;
	a->senders = s;
	return 0;
}

/* --- exchanges (initiator) ------------------------------------------------ */

static void exchange_end(aae *a, const char *result, bool ok)
{
	exchange *ex = &a->ex;
	ptree *pt = &a->trees[ex->p];
	uint64_t wait;

	if (ex->timer != NULL)
		a->env.w->ops->timer_cancel(a->env.w, ex->timer);
	ex->timer = NULL;
	pt->last.at_ms = now_ms(a);
	pt->last.peer = ex->peer;
	pt->last.compared = ex->root.count;
	pt->last.repaired = ex->repaired;
	pt->last.bytes = ex->bytes;
	snprintf(pt->last.result, sizeof(pt->last.result), "%s", result);
	if (ok)
		a->st.exchanges++;
	else
		a->st.failed++;
	a->st.repaired += ex->repaired;
	/* the bytes sent are paid for before the next exchange */
	wait = ex->bytes * 1000 / (a->env.cfg->aae_rate ? a->env.cfg->aae_rate : 1);
	if (a->next_exchange_ms < now_ms(a) + wait)
		a->next_exchange_ms = now_ms(a) + wait;
	riblt_encoder_free(ex->enc);
	riblt_decoder_free(ex->dec);
	for (sender *s = a->senders; s != NULL; s = s->next)
		s->for_exchange = false;
	memset(ex, 0, sizeof(*ex));
}

static void exchange_timeout(void *arg)
{
	aae *a = arg;

	a->ex.timer = NULL;
	exchange_end(a, "failed: no answer in time", false);
}

static int ask(aae *a)
{
	exchange *ex = &a->ex;
	int rc;

	a->pb.size = 0;
	rc = peer_encode_aaereq(&a->pb, ex->id, *a->env.self, ex->p, ex->first, ex->n,
				ex->root.count, ex->root.hash);
	if (rc == 0)
		rc = a->env.w->ops->send(a->env.w, ex->peer, a->pb.data, a->pb.size);
	if (rc == 0) {
		ex->bytes += a->pb.size;
		a->st.bytes += a->pb.size;
	}
	return rc;
}

/* Start the next exchange due: the next partition held with a ready
 * tree, with its next other primary that is up. */
static void exchange_next(aae *a)
{
	placement *pl = a->env.pl;
	exchange *ex = &a->ex;
	uint64_t now = now_ms(a);

	if (ex->active || a->quiesced || now < a->next_exchange_ms)
		return;
	a->next_exchange_ms = now + a->env.cfg->aae_interval;
	for (uint32_t k = 0; k < a->ring_size; k++) {
		uint32_t p = (a->next_p + k) % a->ring_size, np;
		const uint32_t *list = placement_primaries(pl, p, &np);
		ptree *pt = &a->trees[p];
		const char *peer = NULL;

		/* among the read epoch's primaries: a new owner still receiving
		 * its partitions gets them by transfer (transfer.h), not here */
		if (pt->state != TREE_READY || pt->t == NULL || !placement_reads(pl, p))
			continue;
		for (uint32_t i = 0; i < np && peer == NULL; i++) {
			uint32_t m = list[(pt->next_peer + i) % np];

			if (placement_is_self(pl, m) || placement_is_down(pl, m))
				continue;
			peer = placement_addr(pl, m);
			pt->next_peer = (pt->next_peer + i + 1) % np;
		}
		if (peer == NULL)
			continue;
		a->next_p = (p + 1) % a->ring_size;
		memset(ex, 0, sizeof(*ex));
		ex->p = p;
		ex->peer = peer;
		ex->id = ++a->next_id;
		ex->root = aaetree_root(pt->t);
		if (riblt_encoder_new(&ex->enc) != 0 || aaetree_encode(pt->t, ex->enc) != 0 ||
		    riblt_decoder_new(&ex->dec) != 0) {
			riblt_encoder_free(ex->enc);
			riblt_decoder_free(ex->dec);
			memset(ex, 0, sizeof(*ex));
			return;
		}
		ex->active = true;
		ex->first = 0;
		ex->n = AAE_FIRST_SYMBOLS;
		ex->timer = a->env.w->ops->timer_add(a->env.w, AAE_TIMEOUT_MS, exchange_timeout, a);
		if (ask(a) != 0)
			exchange_end(a, "failed: cannot reach the peer", false);
		return;
	}
}

/* Ask the peer for the objects of n key hashes (lacking: we hold none). */
static int ask_objects(aae *a, const uint64_t *want, size_t n, bool all, bool lacking)
{
	exchange *ex = &a->ex;
	int rc = 0;

	for (size_t i = 0; rc == 0 && (i < n || (all && i == 0)); i += AAE_BATCH_KEYS) {
		size_t k = all ? 0 : (n - i < AAE_BATCH_KEYS ? n - i : AAE_BATCH_KEYS);

		a->pb.size = 0;
		rc = peer_encode_aaewant(&a->pb, ex->id, *a->env.self, ex->p, all, lacking,
					 all ? NULL : want + i, k);
		if (rc == 0)
			rc = a->env.w->ops->send(a->env.w, ex->peer, a->pb.data, a->pb.size);
		if (rc == 0) {
			ex->bytes += a->pb.size;
			a->st.bytes += a->pb.size;
		}
	}
	return rc;
}

/* Move the key hashes of x (sorted) that are not in y (sorted) to the
 * front; returns how many. */
static size_t only_in(uint64_t *x, size_t nx, const uint64_t *y, size_t ny)
{
	size_t k = 0, j = 0;

	for (size_t i = 0; i < nx; i++) {
		while (j < ny && y[j] < x[i])
			j++;
		if (j == ny || y[j] != x[i]) {
			uint64_t t = x[k];

			x[k++] = x[i];
			x[i] = t;
		}
	}
	return k;
}

/* The difference is known: send ours, ask for theirs.  Keys one side
 * lacks altogether are sent as "lacking", so that tombstones past their
 * grace are not brought back where the reaper removed them. */
static void resolve(aae *a, uint64_t *push, size_t npush, uint64_t *want, size_t nwant,
		    bool push_all, bool want_all, uint64_t their_count)
{
	exchange *ex = &a->ex;
	uint64_t *both = NULL;
	size_t nlack_push = 0, nlack_want = 0;
	int rc = 0;

	ex->resolving = true;
	ex->repaired = push_all ? ex->root.count : npush;
	ex->repaired += want_all ? their_count : nwant;
	if (push != NULL && want != NULL) {
		qsort(push, npush, sizeof(*push), cmp_u64);
		qsort(want, nwant, sizeof(*want), cmp_u64);
		/* keys we push that they do not have at all; then those both have */
		if ((both = malloc((nwant ? nwant : 1) * sizeof(*both))) == NULL)
			rc = -ENOMEM;
		else
			memcpy(both, want, nwant * sizeof(*both));
		if (rc == 0) {
			nlack_want = only_in(want, nwant, push, npush);
			qsort(want, nlack_want, sizeof(*want), cmp_u64);
			nlack_push = only_in(push, npush, both, nwant);
			qsort(push, nlack_push, sizeof(*push), cmp_u64);
		}
		free(both);
	}
	if (rc == 0 && want_all)
		rc = ask_objects(a, NULL, 0, true, ex->root.count == 0);
	if (rc == 0 && nlack_want > 0)
		rc = ask_objects(a, want, nlack_want, false, true);
	if (rc == 0 && nwant > nlack_want)
		rc = ask_objects(a, want + nlack_want, nwant - nlack_want, false, false);
	free(want);
	if (rc == 0 && push_all)
		rc = send_objects(a, ex->p, ex->peer, NULL, 0, true, their_count == 0);
	if (rc == 0 && npush > nlack_push) {
		uint64_t *rest = malloc((npush - nlack_push) * sizeof(*rest));

		if (rest == NULL)
			rc = -ENOMEM;
		else {
			memcpy(rest, push + nlack_push, (npush - nlack_push) * sizeof(*rest));
			rc = send_objects(a, ex->p, ex->peer, rest, npush - nlack_push, true, false);
		}
	}
	if (rc == 0 && nlack_push > 0) {
		rc = send_objects(a, ex->p, ex->peer, push, nlack_push, true, true);
		push = NULL;
	}
	free(push);
	if (rc == 0 && a->senders != NULL && a->senders->for_exchange)
		return;   /* ends when the senders are done */
	exchange_end(a, rc != 0 ? "failed: cannot send" : want_all || nwant ? "repaired" : "equal",
		     rc == 0);
}

/* Key hashes of n items. */
static uint64_t *keyhashes(const riblt_item *items, size_t n)
{
	uint64_t *k = malloc((n ? n : 1) * sizeof(*k));

	for (size_t i = 0; k != NULL && i < n; i++)
		k[i] = items[i].keyhash;
	return k;
}

void aae_sym(aae *a, const peer_msg *pm)
{
	exchange *ex = &a->ex;
	riblt_symbol *theirs = NULL, *ours = NULL;
	uint64_t first;
	size_t n, na, nb;
	const riblt_item *ia, *ib;
	int rc;

	if (!ex->active || ex->resolving || pm->id != ex->id || pm->partition != ex->p ||
	    placement_intern(a->env.pl, pm->from) != ex->peer)
		return;
	if (pm->code != 0) {
		exchange_end(a, "failed: the peer has no tree ready, or is busy", false);
		return;
	}
	if (pm->count == ex->root.count && pm->root == ex->root.hash) {
		a->st.equal++;
		exchange_end(a, "equal", true);
		return;
	}
	if (pm->count == 0 || ex->root.count == 0) {
		/* an emptied replica: no decoding, the side with keys sends them */
		resolve(a, NULL, 0, NULL, 0, pm->count == 0, ex->root.count == 0, pm->count);
		return;
	}
	rc = riblt_run_decode(pm->data, pm->datalen, RIBLT_RUN_MAX_SYMBOLS, &first, &theirs, &n);
	if (rc == 0 && (first != ex->first || n != ex->n))
		rc = DKV_EPROTO;
	if (rc == 0 && (ours = malloc(n * sizeof(*ours))) == NULL)
		rc = -ENOMEM;
	if (rc == 0)
		rc = riblt_encoder_produce(ex->enc, ours, n);
	if (rc == 0) {
		riblt_symbols_subtract(ours, theirs, n);   /* ours - theirs: A - B */
		rc = riblt_decoder_add(ex->dec, ours, n);
	}
	free(theirs);
	free(ours);
	if (rc != 0) {
		exchange_end(a, "failed: bad symbols", false);
		return;
	}
	if (riblt_decoder_done(ex->dec)) {
		ia = riblt_decoder_only_a(ex->dec, &na);
		ib = riblt_decoder_only_b(ex->dec, &nb);
		resolve(a, keyhashes(ia, na), na, keyhashes(ib, nb), nb, false, false, pm->count);
		return;
	}
	ex->first += ex->n;
	ex->n *= 2;
	if (ex->n > RIBLT_RUN_MAX_SYMBOLS)
		ex->n = RIBLT_RUN_MAX_SYMBOLS;
	if (ex->first > AAE_MAX_SYMBOLS_PER_ITEM * (ex->root.count > pm->count ? ex->root.count :
						     pm->count) + AAE_FIRST_SYMBOLS) {
		/* more different than alike: send everything both ways */
		resolve(a, NULL, 0, NULL, 0, true, true, pm->count);
		return;
	}
	if (ask(a) != 0)
		exchange_end(a, "failed: cannot reach the peer", false);
}

/* --- the responder -------------------------------------------------------- */

static session *session_for(aae *a, const char *peer, uint32_t p, uint64_t first, ptree *pt)
{
	session *s = NULL, *oldest = &a->sess[0];

	for (int i = 0; i < SESSIONS; i++) {
		session *x = &a->sess[i];

		if (x->peer == peer && x->p == p) {
			s = x;
			break;
		}
		if (x->peer == NULL || x->used_ms < oldest->used_ms)
			oldest = x;
	}
	if (s != NULL && (first == 0 || riblt_encoder_produced(s->enc) != first)) {
		riblt_encoder_free(s->enc);
		s->enc = NULL;
	}
	if (s == NULL) {
		s = oldest;
		riblt_encoder_free(s->enc);
		s->enc = NULL;
	}
	s->peer = peer;
	s->p = p;
	s->used_ms = now_ms(a);
	if (s->enc == NULL) {
		riblt_symbol skip[64];

		s->root = aaetree_root(pt->t);
		if (riblt_encoder_new(&s->enc) != 0 || aaetree_encode(pt->t, s->enc) != 0)
			goto fail;
		for (uint64_t done = 0; done < first;) {   /* a session lost: catch up */
			size_t k = first - done < 64 ? (size_t)(first - done) : 64;

			if (riblt_encoder_produce(s->enc, skip, k) != 0)
				goto fail;
			done += k;
		}
	}
	return s;
fail:
	riblt_encoder_free(s->enc);
	s->enc = NULL;
	s->peer = NULL;
	return NULL;
}

void aae_req(aae *a, const peer_msg *pm)
{
	const char *from = placement_intern(a->env.pl, pm->from);
	ptree *pt = pm->partition < a->ring_size ? &a->trees[pm->partition] : NULL;
	riblt_symbol *syms = NULL;
	uint8_t *run = NULL;
	size_t runlen = 0, n = pm->n > RIBLT_RUN_MAX_SYMBOLS ? RIBLT_RUN_MAX_SYMBOLS : (size_t)pm->n;
	uint32_t code = 0;
	session *s = NULL;

	if (from == NULL)
		return;
	if (pt == NULL || pt->t == NULL || !placement_holds(a->env.pl, pm->partition) ||
	    pm->first > UINT32_MAX || (s = session_for(a, from, pm->partition, pm->first, pt)) == NULL)
		code = PROTO_ERR_OVERLOAD;
	if (code == 0 && pm->first == 0 && pm->count == s->root.count && pm->root == s->root.hash)
		n = 0;   /* equal: the asker needs no symbols */
	if (code == 0 && n > 0 && a->budget < 0)
		code = PROTO_ERR_OVERLOAD;   /* what we sent is not paid for yet: ask later */
	if (code == 0 && (syms = malloc((n ? n : 1) * sizeof(*syms))) == NULL)
		code = PROTO_ERR_OVERLOAD;
	if (code == 0 && riblt_encoder_produce(s->enc, syms, n) != 0)
		code = PROTO_ERR_OVERLOAD;
	if (code == 0) {
		runlen = riblt_run_size(pm->first, syms, n);
		if ((run = malloc(runlen)) == NULL)
			code = PROTO_ERR_OVERLOAD;
		else
			riblt_run_encode(run, pm->first, syms, n);
	}
	a->pb.size = 0;
	if (peer_encode_aaesym(&a->pb, pm->id, *a->env.self, pm->partition, code,
			       code ? 0 : s->root.count, code ? 0 : s->root.hash,
			       code ? "" : (const void *)run, code ? 0 : runlen) == 0 &&
	    a->env.w->ops->send(a->env.w, from, a->pb.data, a->pb.size) == 0) {
		/* answered at once (the asker's exchange waits for it), and
		 * paid for by this node's next object sends */
		a->st.bytes += a->pb.size;
		a->budget -= (int64_t)a->pb.size;
	}
	free(syms);
	free(run);
}

void aae_want(aae *a, const peer_msg *pm)
{
	const char *from = placement_intern(a->env.pl, pm->from);
	uint64_t *want = NULL, kh, left = pm->nentries;
	mpr e = pm->entries;
	size_t n = 0;

	if (from == NULL || pm->partition >= a->ring_size || !placement_holds(a->env.pl, pm->partition))
		return;
	if (!pm->flag) {
		if (pm->nentries == 0 || (want = malloc(pm->nentries * sizeof(*want))) == NULL)
			return;
		while (peer_aaewant_next(&e, &left, &kh) == 1)
			want[n++] = kh;
	}
	if (send_objects(a, pm->partition, from, want, n, false, pm->lacking) != 0)
		dkv_log_opt(a->env.log, DKV_LOG_INFO, "partition %" PRIu32 ": cannot send %s the "
			    "objects it asked for", pm->partition, from);
}

void aae_peer_gone(aae *a, const char *addr)
{
	const char *p = placement_intern(a->env.pl, addr);

	if (a->ex.active && !a->ex.resolving && a->ex.peer == p)
		exchange_end(a, "failed: the peer went away", false);
	for (int i = 0; i < SESSIONS; i++)
		if (a->sess[i].peer == p) {
			riblt_encoder_free(a->sess[i].enc);
			memset(&a->sess[i], 0, sizeof(a->sess[i]));
		}
}

/* --- the tick ------------------------------------------------------------- */

static void tick(void *arg)
{
	aae *a = arg;
	uint64_t now = now_ms(a);

	a->tick = a->env.w->ops->timer_add(a->env.w, AAE_TICK_MS, tick, a);
	a->budget += tick_budget(a);
	if (a->budget > tick_budget(a))
		a->budget = tick_budget(a);
	for (int i = 0; i < SESSIONS; i++)
		if (a->sess[i].peer != NULL && now - a->sess[i].used_ms > AAE_TIMEOUT_MS) {
			riblt_encoder_free(a->sess[i].enc);
			memset(&a->sess[i], 0, sizeof(a->sess[i]));
		}
	/* a partition no longer held keeps no tree */
	for (uint32_t p = 0; p < a->ring_size; p++)
		if (a->trees[p].state == TREE_READY && !placement_holds(a->env.pl, p)) {
			aaetree_free(a->trees[p].t);
			a->trees[p].t = NULL;
			a->trees[p].state = TREE_MISSING;
		}
	senders_pump(a);
	if (a->quiesced)
		return;
	build_next(a);
	exchange_next(a);
}

int aae_start(aae *a)
{
	int rc = vnode_add_observer(a->env.vs, observe, a);

	if (rc != 0)
		return rc;
	a->next_exchange_ms = now_ms(a) + a->env.cfg->aae_interval;
	a->tick = a->env.w->ops->timer_add(a->env.w, AAE_TICK_MS, tick, a);
	return a->tick == NULL ? -ENOMEM : 0;
}

void aae_quiesce(aae *a)
{
	a->quiesced = true;
}

bool aae_busy(const aae *a)
{
	return a->jobs > 0;
}

void aae_free(aae *a)
{
	if (a == NULL)
		return;
	assert(a->jobs == 0);
	if (a->tick != NULL)
		a->env.w->ops->timer_cancel(a->env.w, a->tick);
	if (a->ex.active) {
		if (a->ex.timer != NULL)
			a->env.w->ops->timer_cancel(a->env.w, a->ex.timer);
		riblt_encoder_free(a->ex.enc);
		riblt_decoder_free(a->ex.dec);
	}
	while (a->senders != NULL)
		sender_free(a, a->senders);
	for (int i = 0; i < SESSIONS; i++)
		riblt_encoder_free(a->sess[i].enc);
	for (uint32_t p = 0; p < a->ring_size; p++) {
		aaetree_free(a->trees[p].t);
		free(a->trees[p].log);
	}
	vnode_remove_observer(a->env.vs, observe, a);
	msgpack_sbuffer_destroy(&a->pb);
	free(a->trees);
	free(a);
}

/* --- reports -------------------------------------------------------------- */

void aae_stats_get(const aae *a, aae_stats *st)
{
	*st = a->st;
	st->ready = 0;
	for (uint32_t p = 0; p < a->ring_size; p++)
		st->ready += a->trees[p].state == TREE_READY;
}

bool aae_root(const aae *a, uint32_t p, uint64_t *count, uint64_t *hash)
{
	aaetree_digest d;

	if (p >= a->ring_size || a->trees[p].t == NULL)
		return false;
	d = aaetree_root(a->trees[p].t);
	*count = d.count;
	*hash = d.hash;
	return true;
}

#define PK(x) do { if ((x) != 0) return -ENOMEM; } while (0)
#define PKS(pk, s) PK(msgpack_pack_str_with_body(pk, s, strlen(s)))

int aae_report(aae *a, msgpack_packer *pk)
{
	uint64_t now = now_ms(a);
	aae_stats st;
	uint32_t n = 0;

	for (uint32_t p = 0; p < a->ring_size; p++)
		n += placement_holds(a->env.pl, p);
	aae_stats_get(a, &st);
	PK(msgpack_pack_map(pk, 2));
	PKS(pk, "partitions");
	PK(msgpack_pack_array(pk, n));
	for (uint32_t p = 0; p < a->ring_size; p++) {
		ptree *pt = &a->trees[p];
		aaetree_digest d = { 0, 0 };

		if (!placement_holds(a->env.pl, p))
			continue;
		if (pt->t != NULL)
			d = aaetree_root(pt->t);
		PK(msgpack_pack_map(pk, 6));
		PKS(pk, "partition");
		PK(msgpack_pack_uint32(pk, p));
		PKS(pk, "state");
		PKS(pk, tstate_name[pt->state]);
		PKS(pk, "age_s");
		PK(pt->built_ms && pt->t ? msgpack_pack_uint64(pk, (now - pt->built_ms) / 1000) :
		   msgpack_pack_nil(pk));
		PKS(pk, "keys");
		PK(msgpack_pack_uint64(pk, d.count));
		PKS(pk, "root");
		PK(msgpack_pack_uint64(pk, d.hash));
		PKS(pk, "last");
		if (pt->last.at_ms == 0) {
			PK(msgpack_pack_nil(pk));
			continue;
		}
		PK(msgpack_pack_map(pk, 6));
		PKS(pk, "ago_s");
		PK(msgpack_pack_uint64(pk, (now - pt->last.at_ms) / 1000));
		PKS(pk, "peer");
		PKS(pk, pt->last.peer ? pt->last.peer : "");
		PKS(pk, "compared");
		PK(msgpack_pack_uint64(pk, pt->last.compared));
		PKS(pk, "repaired");
		PK(msgpack_pack_uint64(pk, pt->last.repaired));
		PKS(pk, "bytes");
		PK(msgpack_pack_uint64(pk, pt->last.bytes));
		PKS(pk, "result");
		PKS(pk, pt->last.result);
	}
	PKS(pk, "totals");
	PK(msgpack_pack_map(pk, 8));
	PKS(pk, "exchanges");
	PK(msgpack_pack_uint64(pk, st.exchanges));
	PKS(pk, "equal");
	PK(msgpack_pack_uint64(pk, st.equal));
	PKS(pk, "failed");
	PK(msgpack_pack_uint64(pk, st.failed));
	PKS(pk, "repaired");
	PK(msgpack_pack_uint64(pk, st.repaired));
	PKS(pk, "bytes");
	PK(msgpack_pack_uint64(pk, st.bytes));
	PKS(pk, "builds");
	PK(msgpack_pack_uint64(pk, st.builds));
	PKS(pk, "build_ms");
	PK(msgpack_pack_uint64(pk, st.build_ms));
	PKS(pk, "trees_ready");
	PK(msgpack_pack_uint32(pk, st.ready));
	return 0;
}
