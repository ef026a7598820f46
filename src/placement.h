/*
 * placement.h -- the node's view of the ring: which members hold a
 * partition, where they are, and which of them are down.
 *
 * The ring itself (ring.h) is a pure function of the valid members'
 * ids; placement keeps the one built from this node's membership (cluster.h)
 * and rebuilds it when the cluster says the valid set or an address
 * changed.  Besides the ring it knows each ring member's address and
 * whether it is this node, and asks the cluster for liveness, so that the
 * request coordinator, the replica side and the admin answers never look
 * at membership records themselves.  (Ownership transfer will add the
 * ring before a change beside the one after it.)
 *
 * ADDRESSES
 *   Peer addresses are interned: one copy of each, kept until the
 *   placement is freed, so that a pointer taken from placement_addr() or
 *   placement_intern() stays valid across ring rebuilds and two addresses
 *   compare equal iff the pointers do.
 *
 * Loop thread only.
 */
#ifndef DKV_PLACEMENT_H
#define DKV_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "log.h"
#include "ring.h"

typedef struct placement placement;

/* A placement for node self_id over cl (borrowed: it must outlive the
 * placement).  No ring until placement_rebuild().  0 or -ENOMEM. */
int placement_new(placement **out, cluster *cl, const char *self_id, uint32_t ring_size,
		  uint32_t n_val, dkv_log *log);
void placement_free(placement *pl);

/* Rebuild the ring from the cluster's valid members (cluster_hooks'
 * ring_changed).  On ENOMEM the old ring stays and the error is logged. */
void placement_rebuild(placement *pl);

/* The current ring, or NULL while no member is valid.  Borrowed until the
 * next placement_rebuild(). */
const ring *placement_ring(const placement *pl);
uint32_t placement_ring_size(const placement *pl);
uint32_t placement_n_val(const placement *pl);

/* The partition of a key. */
uint32_t placement_partition(const placement *pl, const void *key, size_t len);
/* Partition p's primaries as ring member indices (*np of them; NULL and 0
 * without a ring).  Borrowed until the next placement_rebuild(). */
const uint32_t *placement_primaries(const placement *pl, uint32_t p, uint32_t *np);
/* True iff ring member i is this node. */
bool placement_is_self(const placement *pl, uint32_t i);
/* The interned address of ring member i (NULL for this node). */
const char *placement_addr(const placement *pl, uint32_t i);
/* True iff ring member i is down (SWIM). */
bool placement_is_down(const placement *pl, uint32_t i);
/* True iff this node is a primary of partition p. */
bool placement_holds(const placement *pl, uint32_t p);
/* This node's index in the ring, or -1 when it is not a valid member. */
long placement_self(const placement *pl);

/* The interned copy of addr (NULL on ENOMEM).  Callers intern only
 * members' addresses and the seeds an operator names, so the table is
 * bounded by the membership's history. */
const char *placement_intern(placement *pl, const char *addr);
/* Addresses interned so far. */
size_t placement_interned(const placement *pl);

#endif /* DKV_PLACEMENT_H */
