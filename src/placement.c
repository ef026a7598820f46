#include "config.h"
/*
 * placement.c -- the ring view over the active ring epochs.  See
 * placement.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

/* One active epoch: its ring, and each ring member's index among the
 * placement's members. */
typedef struct pview {
	ring *rg;
	uint32_t *to_u;            /* ring index -> member index */
	uint32_t *pref;            /* ring_size x members, as member indices */
	epoch_id id;
} pview;

/* The views, members and owners of one build: the placement's, or one
 * under way. */
typedef struct pbuild {
	pview v[EPOCHS_MAX];       /* the active epochs, oldest first */
	size_t nv;                 /* 0: no ring */
	size_t read;               /* the epoch reads count in */
	char **mid;                /* members of every view, sorted; owned */
	const char **maddr;        /* their addresses (NULL: us) */
	size_t nm;
	long self;                 /* our member index, or -1 */
	uint32_t *own_off;         /* ring_size + 1 offsets into own */
	uint32_t *own;             /* each partition's owners over the views */
} pbuild;

struct placement {
	cluster *cl;               /* membership (borrowed) */
	dkv_log *log;
	char self_id[PEER_MAX_ADDR + 1];
	uint32_t ring_size, n_val;
	pbuild b;                  /* the views (b.nv 0: no ring) */
	char **addrs;              /* interned peer addresses */
	size_t naddrs;
};

int placement_new(placement **out, cluster *cl, const char *self_id, uint32_t ring_size,
		  uint32_t n_val, dkv_log *log)
{
	placement *pl = calloc(1, sizeof(*pl));

	*out = NULL;
	if (pl == NULL)
		return -ENOMEM;
	pl->cl = cl;
	pl->log = log;
	snprintf(pl->self_id, sizeof(pl->self_id), "%s", self_id);
	pl->ring_size = ring_size;
	pl->n_val = n_val;
	pl->b.self = -1;
	*out = pl;
	return 0;
}

static void build_free(pbuild *b)
{
	for (size_t i = 0; i < b->nv; i++) {
		ring_free(b->v[i].rg);
		free(b->v[i].to_u);
		free(b->v[i].pref);
	}
	for (size_t i = 0; i < b->nm; i++)
		free(b->mid[i]);
	free(b->mid);
	free(b->maddr);
	free(b->own_off);
	free(b->own);
	memset(b, 0, sizeof(*b));
}

/* Make b the placement's views (b is taken), freeing the old ones. */
static void take(placement *pl, pbuild *b)
{
	build_free(&pl->b);
	pl->b = *b;
}

void placement_free(placement *pl)
{
	pbuild none = { .self = -1 };

	if (pl == NULL)
		return;
	take(pl, &none);
	for (size_t i = 0; i < pl->naddrs; i++)
		free(pl->addrs[i]);
	free(pl->addrs);
	free(pl);
}

const char *placement_intern(placement *pl, const char *addr)
{
	char **a;

	for (size_t i = 0; i < pl->naddrs; i++)
		if (strcmp(pl->addrs[i], addr) == 0)
			return pl->addrs[i];
	a = realloc(pl->addrs, (pl->naddrs + 1) * sizeof(*a));
	if (a == NULL)
		return NULL;
	pl->addrs = a;
	if ((a[pl->naddrs] = strdup(addr)) == NULL)
		return NULL;
	return a[pl->naddrs++];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static long find_member(char *const *mid, size_t nm, const char *id)
{
	size_t lo = 0, hi = nm;

	while (lo < hi) {
		size_t mid_i = (lo + hi) / 2;
		int c = strcmp(mid[mid_i], id);

		if (c == 0)
			return (long)mid_i;
		if (c < 0)
			lo = mid_i + 1;
		else
			hi = mid_i;
	}
	return -1;
}

/* The rings: one per epoch of the cluster's chain; or, without a chain (a
 * node that has not joined, or a ring that never had epochs), one of the
 * valid members. */
static int build_rings(placement *pl, pbuild *b)
{
	const epochs *h = cluster_epochs(pl->cl);
	size_t ne = h != NULL ? epochs_count(h) : 0;
	const member *self = cluster_self(pl->cl);
	epoch_id rd = { self->progress.read[0], self->progress.read[1] };
	int rc;

	if (self->status == MEMBER_REMOVED)
		return 0;   /* it holds nothing and is asked for nothing */
	if (ne > 0) {
		long r = epochs_find(h, rd);

		for (size_t e = 0; e < ne; e++) {
			size_t n;
			const char *const *ids = epochs_members(h, e, &n);

			if ((rc = ring_build(&b->v[e].rg, ids, n, pl->ring_size, pl->n_val)) != 0)
				return rc;
			b->v[e].id = epochs_id(h, e);
			b->nv++;
		}
		b->read = r >= 0 ? (size_t)r : 0;
		return 0;
	}
	{
		size_t nc = cluster_count(pl->cl), k = 0;
		const char **ids = calloc(nc ? nc : 1, sizeof(*ids));

		if (ids == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < nc; i++)
			if (cluster_at(pl->cl, i)->status == MEMBER_VALID)
				ids[k++] = cluster_at(pl->cl, i)->id;
		rc = k > 0 ? ring_build(&b->v[0].rg, ids, k, pl->ring_size, pl->n_val) : 0;
		free(ids);
		if (rc == 0 && k > 0)
			b->nv = 1;
		b->read = 0;
		return rc;
	}
}

/* Members (the union of the views'), their addresses, and each view's
 * preference lists in member indices. */
static int build_members(placement *pl, pbuild *b)
{
	size_t total = 0;

	for (size_t e = 0; e < b->nv; e++)
		total += ring_members(b->v[e].rg);
	if ((b->mid = calloc(total ? total : 1, sizeof(*b->mid))) == NULL)
		return -ENOMEM;
	for (size_t e = 0; e < b->nv; e++)
		for (size_t i = 0; i < ring_members(b->v[e].rg); i++)
			if ((b->mid[b->nm++] = strdup(ring_member_id(b->v[e].rg, i))) == NULL)
				return -ENOMEM;
	qsort(b->mid, b->nm, sizeof(*b->mid), cmp_str);
	{
		size_t k = 0;

		for (size_t i = 0; i < b->nm; i++) {
			if (k > 0 && strcmp(b->mid[k - 1], b->mid[i]) == 0) {
				free(b->mid[i]);
				continue;
			}
			b->mid[k++] = b->mid[i];
		}
		b->nm = k;
	}
	if ((b->maddr = calloc(b->nm ? b->nm : 1, sizeof(*b->maddr))) == NULL)
		return -ENOMEM;
	b->self = -1;
	for (size_t u = 0; u < b->nm; u++) {
		const member *m = cluster_find(pl->cl, b->mid[u]);

		if (strcmp(b->mid[u], pl->self_id) == 0) {
			b->self = (long)u;
			continue;
		}
		/* a member of an epoch always has a record: epochs are made
		 * from records, and records are never forgotten */
		if (m != NULL && (b->maddr[u] = placement_intern(pl, m->addr)) == NULL)
			return -ENOMEM;
	}
	for (size_t e = 0; e < b->nv; e++) {
		pview *v = &b->v[e];
		size_t nr = ring_members(v->rg);

		if ((v->to_u = calloc(nr, sizeof(*v->to_u))) == NULL ||
		    (v->pref = calloc((size_t)pl->ring_size * nr, sizeof(*v->pref))) == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < nr; i++)
			v->to_u[i] = (uint32_t)find_member(b->mid, b->nm, ring_member_id(v->rg, i));
		for (uint32_t p = 0; p < pl->ring_size; p++) {
			const uint32_t *l = ring_preflist(v->rg, p);

			for (size_t i = 0; i < nr; i++)
				v->pref[(size_t)p * nr + i] = v->to_u[l[i]];
		}
	}
	return 0;
}

/* Each partition's owners: the read epoch's primaries in its order, then
 * those of the other epochs (newest first) not listed yet. */
static int build_owners(placement *pl, pbuild *b)
{
	size_t cap = 0, k = 0;

	for (size_t e = 0; e < b->nv; e++)
		cap += ring_n(b->v[e].rg);
	cap *= pl->ring_size;
	if ((b->own_off = calloc((size_t)pl->ring_size + 1, sizeof(*b->own_off))) == NULL ||
	    (b->own = calloc(cap ? cap : 1, sizeof(*b->own))) == NULL)
		return -ENOMEM;
	for (uint32_t p = 0; p < pl->ring_size; p++) {
		b->own_off[p] = (uint32_t)k;
		for (size_t j = 0; j <= b->nv; j++) {
			size_t e = j == 0 ? b->read : b->nv - j;   /* read, then newest first */
			const pview *v = &b->v[e];

			if (j > 0 && e == b->read)
				continue;
			size_t nr = ring_members(v->rg);

			for (uint32_t i = 0; i < ring_n(v->rg); i++) {
				uint32_t u = v->pref[(size_t)p * nr + i];
				bool seen = false;

				for (size_t x = b->own_off[p]; x < k && !seen; x++)
					seen = b->own[x] == u;
				if (!seen)
					b->own[k++] = u;
			}
		}
	}
	b->own_off[pl->ring_size] = (uint32_t)k;
	return 0;
}

void placement_rebuild(placement *pl)
{
	pbuild b = { .self = -1 };
	int rc = build_rings(pl, &b);

	if (rc == 0 && b.nv == 0) {
		take(pl, &b);
		dkv_log_opt(pl->log, DKV_LOG_WARNING, "no valid member left: requests fail until one joins");
		return;
	}
	if (rc == 0)
		rc = build_members(pl, &b);
	if (rc == 0)
		rc = build_owners(pl, &b);
	if (rc != 0) {
		build_free(&b);
		dkv_log_opt(pl->log, DKV_LOG_ERROR, "out of memory rebuilding the ring; keeping the old one");
		return;
	}
	{
		bool same = pl->b.nv == b.nv && pl->b.read == b.read;

		for (size_t e = 0; same && e < b.nv; e++)
			same = pl->b.v[e].id.number == b.v[e].id.number &&
			       pl->b.v[e].id.digest == b.v[e].id.digest &&
			       ring_members(pl->b.v[e].rg) == ring_members(b.v[e].rg);
		take(pl, &b);
		if (same)
			return;
	}
	if (pl->b.nv == 1)
		dkv_log_opt(pl->log, DKV_LOG_INFO, "ring: %zu members, %u replicas per partition",
			    ring_members(pl->b.v[0].rg), ring_n(pl->b.v[0].rg));
	else
		dkv_log_opt(pl->log, DKV_LOG_INFO, "ring: %zu epochs active (%zu members in all); "
			    "reads count in epoch %llu, writes go to every epoch", pl->b.nv, pl->b.nm,
			    (unsigned long long)pl->b.v[pl->b.read].id.number);
}

bool placement_has_ring(const placement *pl)
{
	return pl->b.nv > 0;
}

uint32_t placement_ring_size(const placement *pl)
{
	return pl->ring_size;
}

uint32_t placement_n_val(const placement *pl)
{
	return pl->n_val;
}

uint32_t placement_partition(const placement *pl, const void *key, size_t len)
{
	return ring_partition(ring_key_hash(key, len), pl->ring_size);
}

size_t placement_epochs(const placement *pl)
{
	return pl->b.nv;
}

size_t placement_read_epoch(const placement *pl)
{
	return pl->b.read;
}

epoch_id placement_epoch_id(const placement *pl, size_t e)
{
	return pl->b.v[e].id;
}

const ring *placement_epoch_ring(const placement *pl, size_t e)
{
	return e < pl->b.nv ? pl->b.v[e].rg : NULL;
}

const uint32_t *placement_epoch_primaries(const placement *pl, size_t e, uint32_t p, uint32_t *np)
{
	if (e >= pl->b.nv) {
		*np = 0;
		return NULL;
	}
	*np = ring_n(pl->b.v[e].rg);
	return pl->b.v[e].pref + (size_t)p * ring_members(pl->b.v[e].rg);
}

const uint32_t *placement_primaries(const placement *pl, uint32_t p, uint32_t *np)
{
	return placement_epoch_primaries(pl, pl->b.read, p, np);
}

const uint32_t *placement_preflist(const placement *pl, uint32_t p, uint32_t *nm)
{
	const pview *v;

	if (pl->b.nv == 0) {
		*nm = 0;
		return NULL;
	}
	v = &pl->b.v[pl->b.nv - 1];
	*nm = (uint32_t)ring_members(v->rg);
	return v->pref + (size_t)p * ring_members(v->rg);
}

const uint32_t *placement_owners(const placement *pl, uint32_t p, uint32_t *n)
{
	if (pl->b.nv == 0) {
		*n = 0;
		return NULL;
	}
	*n = pl->b.own_off[p + 1] - pl->b.own_off[p];
	return pl->b.own + pl->b.own_off[p];
}

bool placement_is_owner(const placement *pl, uint32_t p, uint32_t u)
{
	uint32_t n;
	const uint32_t *l = placement_owners(pl, p, &n);

	for (uint32_t i = 0; i < n; i++)
		if (l[i] == u)
			return true;
	return false;
}

bool placement_in_epoch(const placement *pl, size_t e, uint32_t p, uint32_t u)
{
	uint32_t n;
	const uint32_t *l = placement_epoch_primaries(pl, e, p, &n);

	for (uint32_t i = 0; i < n; i++)
		if (l[i] == u)
			return true;
	return false;
}

size_t placement_members(const placement *pl)
{
	return pl->b.nm;
}

const char *placement_member_id(const placement *pl, uint32_t u)
{
	return pl->b.mid[u];
}

long placement_member_index(const placement *pl, const char *id)
{
	return find_member(pl->b.mid, pl->b.nm, id);
}

bool placement_is_self(const placement *pl, uint32_t u)
{
	return (long)u == pl->b.self;
}

const char *placement_addr(const placement *pl, uint32_t u)
{
	return pl->b.maddr[u];
}

bool placement_is_down(const placement *pl, uint32_t u)
{
	const member *m = cluster_find(pl->cl, pl->b.mid[u]);

	return m != NULL && m->liveness == LIVE_DOWN;
}

bool placement_holds(const placement *pl, uint32_t p)
{
	return pl->b.self >= 0 && placement_is_owner(pl, p, (uint32_t)pl->b.self);
}

bool placement_reads(const placement *pl, uint32_t p)
{
	return pl->b.self >= 0 && placement_in_epoch(pl, pl->b.read, p, (uint32_t)pl->b.self);
}

long placement_self(const placement *pl)
{
	return pl->b.self;
}

size_t placement_interned(const placement *pl)
{
	return pl->naddrs;
}
