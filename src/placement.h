/*
 * placement.h -- the node's view of the ring: which members hold a
 * partition in each active ring epoch, where they are, and which of them
 * are down.
 *
 * EPOCHS.  While the membership changes, several ring epochs are active
 * at once (epochs.h: the chain the cluster keeps and gossips).  Placement
 * builds a ring for each (a pure function of the epoch's member ids) and
 * says, for a partition:
 *   - its primaries in each epoch (placement_epoch_primaries): a write is
 *     sent to every one of them and counts W (and PW) in each epoch;
 *   - its primaries in the READ epoch (placement_primaries): the newest
 *     epoch this node reads from (its reported progress), where R and PR
 *     are counted: an epoch every member holds whole;
 *   - its OWNERS (placement_owners): the primaries of every epoch, each
 *     once, the read epoch's first: who stores the partition now;
 *   - its preference list in the newest epoch (placement_preflist): the
 *     order fallbacks are taken in.
 * Without a chain (a node that has not joined a cluster yet) the one
 * epoch is the ring of the valid members.
 *
 * MEMBERS.  Every member of an active epoch has one index u, the same in
 * every epoch (members are sorted by id): placement_member_id, _addr,
 * _is_self, _is_down take it, and every list above is of such indices.
 * Indices are valid until the next placement_rebuild().
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
#include "epochs.h"
#include "log.h"
#include "ring.h"

typedef struct placement placement;

/* A placement for node self_id over cl (borrowed: it must outlive the
 * placement).  No ring until placement_rebuild().  0 or -ENOMEM. */
int placement_new(placement **out, cluster *cl, const char *self_id, uint32_t ring_size,
		  uint32_t n_val, dkv_log *log);
void placement_free(placement *pl);

/* Rebuild the views from the cluster's chain of epochs and this node's
 * progress (cluster_hooks' ring_changed).  On ENOMEM the old views stay
 * and the error is logged. */
void placement_rebuild(placement *pl);

/* True iff there is a ring (some epoch, or a valid member). */
bool placement_has_ring(const placement *pl);
uint32_t placement_ring_size(const placement *pl);
uint32_t placement_n_val(const placement *pl);

/* Active epochs (0 without a ring), oldest first; the read epoch's index;
 * epoch e's id and ring (its own member indices: for display). */
size_t placement_epochs(const placement *pl);
size_t placement_read_epoch(const placement *pl);
epoch_id placement_epoch_id(const placement *pl, size_t e);
const ring *placement_epoch_ring(const placement *pl, size_t e);

/* The partition of a key. */
uint32_t placement_partition(const placement *pl, const void *key, size_t len);
/* Partition p's primaries in epoch e, as member indices (*np of them;
 * NULL and 0 without that epoch). */
const uint32_t *placement_epoch_primaries(const placement *pl, size_t e, uint32_t p,
					  uint32_t *np);
/* Partition p's primaries in the read epoch. */
const uint32_t *placement_primaries(const placement *pl, uint32_t p, uint32_t *np);
/* Partition p's preference list in the newest epoch: every member of it,
 * primaries first, then fallbacks (*nm of them). */
const uint32_t *placement_preflist(const placement *pl, uint32_t p, uint32_t *nm);
/* Partition p's owners: its primaries in any active epoch, each once,
 * the read epoch's first in their order. */
const uint32_t *placement_owners(const placement *pl, uint32_t p, uint32_t *n);
bool placement_is_owner(const placement *pl, uint32_t p, uint32_t u);
bool placement_in_epoch(const placement *pl, size_t e, uint32_t p, uint32_t u);

/* Members of the active epochs; member u's id; the index of an id, or -1. */
size_t placement_members(const placement *pl);
const char *placement_member_id(const placement *pl, uint32_t u);
long placement_member_index(const placement *pl, const char *id);
/* True iff member u is this node. */
bool placement_is_self(const placement *pl, uint32_t u);
/* The interned address of member u (NULL for this node). */
const char *placement_addr(const placement *pl, uint32_t u);
/* True iff member u is down (SWIM). */
bool placement_is_down(const placement *pl, uint32_t u);
/* True iff this node is an owner of partition p (a primary in some
 * active epoch): it stores p. */
bool placement_holds(const placement *pl, uint32_t p);
/* True iff this node is a primary of p in the read epoch. */
bool placement_reads(const placement *pl, uint32_t p);
/* This node's member index, or -1 when it is in no active epoch. */
long placement_self(const placement *pl);

/* The interned copy of addr (NULL on ENOMEM).  Callers intern only
 * members' addresses and the seeds an operator names, so the table is
 * bounded by the membership's history. */
const char *placement_intern(placement *pl, const char *addr);
/* Addresses interned so far. */
size_t placement_interned(const placement *pl);

#endif /* DKV_PLACEMENT_H */
