#include "config.h"
/*
 * placement.c -- the ring view.  See placement.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

struct placement {
	cluster *cl;               /* membership (borrowed) */
	dkv_log *log;
	char self_id[PEER_MAX_ADDR + 1];
	uint32_t ring_size, n_val;
	ring *rg;                  /* NULL when no member is valid */
	const char **rg_addr;      /* address of each ring member (NULL: us) */
	long rg_self;              /* our index in the ring, or -1 */
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
	pl->rg_self = -1;
	*out = pl;
	return 0;
}

void placement_free(placement *pl)
{
	if (pl == NULL)
		return;
	ring_free(pl->rg);
	free(pl->rg_addr);
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

void placement_rebuild(placement *pl)
{
	size_t nc = cluster_count(pl->cl), k = 0;
	const char **ids = calloc(nc ? nc : 1, sizeof(*ids));
	const char **addr = NULL;
	ring *rg = NULL;
	long self = -1;
	int rc;

	if (ids == NULL)
		goto nomem;
	for (size_t i = 0; i < nc; i++) {
		const member *m = cluster_at(pl->cl, i);

		if (m->status == MEMBER_VALID)
			ids[k++] = m->id;
	}
	if (k == 0) {
		free(ids);
		ring_free(pl->rg);
		free(pl->rg_addr);
		pl->rg = NULL;
		pl->rg_addr = NULL;
		pl->rg_self = -1;
		dkv_log_opt(pl->log, DKV_LOG_WARNING, "no valid member left: requests fail until one joins");
		return;
	}
	rc = ring_build(&rg, ids, k, pl->ring_size, pl->n_val);
	free(ids);
	if (rc != 0)
		goto nomem;
	addr = calloc(k, sizeof(*addr));
	if (addr == NULL)
		goto nomem;
	for (size_t i = 0; i < k; i++) {
		const member *m = cluster_find(pl->cl, ring_member_id(rg, i));

		if (strcmp(m->id, pl->self_id) == 0) {
			self = (long)i;
			continue;
		}
		if ((addr[i] = placement_intern(pl, m->addr)) == NULL)
			goto nomem;
	}
	ring_free(pl->rg);
	free(pl->rg_addr);
	pl->rg = rg;
	pl->rg_addr = addr;
	pl->rg_self = self;
	dkv_log_opt(pl->log, DKV_LOG_INFO, "ring: %zu members, %u replicas per partition", k,
		    ring_n(rg));
	return;
nomem:
	ring_free(rg);
	free(addr);
	dkv_log_opt(pl->log, DKV_LOG_ERROR, "out of memory rebuilding the ring; keeping the old one");
}

const ring *placement_ring(const placement *pl)
{
	return pl->rg;
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

const uint32_t *placement_primaries(const placement *pl, uint32_t p, uint32_t *np)
{
	if (pl->rg == NULL) {
		*np = 0;
		return NULL;
	}
	*np = ring_n(pl->rg);
	return ring_preflist(pl->rg, p);
}

bool placement_is_self(const placement *pl, uint32_t i)
{
	return (long)i == pl->rg_self;
}

const char *placement_addr(const placement *pl, uint32_t i)
{
	return pl->rg_addr[i];
}

bool placement_is_down(const placement *pl, uint32_t i)
{
	const member *m = cluster_find(pl->cl, ring_member_id(pl->rg, i));

	return m != NULL && m->liveness == LIVE_DOWN;
}

bool placement_holds(const placement *pl, uint32_t p)
{
	uint32_t np;
	const uint32_t *l = placement_primaries(pl, p, &np);

	for (uint32_t i = 0; i < np; i++)
		if ((long)l[i] == pl->rg_self)
			return true;
	return false;
}

long placement_self(const placement *pl)
{
	return pl->rg_self;
}

size_t placement_interned(const placement *pl)
{
	return pl->naddrs;
}
