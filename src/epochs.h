/*
 * epochs.h -- ring epochs: how the ring moves from one member set to the
 * next without a moment in which an acknowledged write can be missed
 * (DESIGN sections 5 and 7: two-phase ownership).
 *
 * An EPOCH is one member set and the ring built from it (ring.h): a
 * number, the sorted ids of the members that own data in it, and the
 * digest of the epoch before it.  Its own digest is SipHash-2-4 over all
 * three, so an epoch names its whole history: two nodes that agree on an
 * epoch's number and digest agree on every epoch before it (a CHAIN).  A
 * node keeps the active part of its chain, at most EPOCHS_MAX epochs, the
 * oldest first.  A change of the members (a join, a leave, a remove: the
 * member records of cluster.h) makes the next epoch; nothing else does.
 *
 * Every member reports its PROGRESS along the chain, three epochs:
 *   ack   the newest epoch it writes to: it sends every write to the
 *         replicas of every active epoch and counts W (and PW) in each;
 *   sync  the newest epoch whose partitions it holds whole: every
 *         partition it is a replica of in that epoch has been streamed to
 *         it (or it held it already) after every member acked the epoch;
 *   read  the newest epoch it reads from: it asks that epoch's replicas
 *         and counts R (and PR) among them.
 * Among the members that count (every member that is not removed: the
 * caller says which), a node computes how far ALL of them are:
 *   acked(e)   every member acks e: every write made from now on reaches
 *              e's replicas, so e's new replicas may start to receive
 *              their partitions (a stream from every replica of the
 *              epoch every member holds, in turn, so that a write
 *              acknowledged by any W of them is not missed: transfer.h);
 *   synced(e)  every member holds e whole: reads may move to e;
 *   read_all(e) every member reads from e: no read asks an older epoch
 *              any more, so older epochs are dropped from the chain
 *              (writes stop going to them) and a node drops a partition
 *              that is in none of the epochs left.
 * A member's report counts for epoch e only if it names an epoch of the
 * node's own chain at least as new as e (same number and digest): a report
 * from another chain, or one the node cannot check yet, counts for nothing.
 *
 * WHY NO READ CAN MISS A WRITE: a write is acknowledged only with W of
 * the replicas of EVERY epoch active at its coordinator, and no epoch
 * leaves any chain before every member reads from a newer one; a read
 * counts R in one epoch, its reader's read epoch, which is active at
 * every coordinator (it is at least the newest read_all epoch anywhere).
 * R + W > N in that epoch, as without epochs.  And a replica new in epoch
 * e starts to receive e's data only once every coordinator sends it every
 * write (acked), so what it streams and what it is sent cover everything.
 *
 * FORKS: two nodes that apply different changes at once (each knowing
 * only its own) both make epoch n, with different digests.  When the
 * chains meet, the epoch with the larger digest at the first number where
 * they differ wins on every node; the losing node drops its epochs from
 * there, takes the winner's, and -- its member records now hold both
 * changes -- the next epoch that any node makes holds both.  Nothing is
 * lost: writes made on the losing fork had W in every epoch before the
 * fork, which stays active until every member, the losers included, has
 * acked, synced and read from a newer epoch of the winning chain.  Two
 * chains with no epoch in common are two clusters: never merged
 * (epochs_merge refuses), except by a node that holds nothing and adopts
 * the chain of the cluster it joins (epochs_adopt).
 *
 * LIFECYCLE OF AN EPOCH (as one node sees it)
 *
 *   epochs_propose / epochs_merge --> ACTIVE, newest (this node acks it)
 *     --acked by all--> TRANSFERRING (its new replicas receive their
 *       partitions; each reports sync when it has all of its own)
 *     --synced by all--> READ FROM (reads move to it; this node reports read)
 *     --read by all--> older epochs dropped; when it is the only one left,
 *       the change is complete.
 *   A fork's loser leaves the chain at any point of this (epochs_merge).
 *
 * A chain holds at most EPOCHS_MAX epochs: a change made while that many
 * are active waits (epochs_propose says DKV_EBUSY) until the oldest is
 * dropped.  Progress needs every member that counts: a member that is down
 * holds every change where it is until it is back or removed.
 *
 * Pure state: no I/O, no timers, no threads.  The node gossips the chain
 * and each member's progress (epochs_pack, epochs_unpack) and persists
 * them; transfers report sync; the coordinator asks for the epochs to
 * write to and the one to read from.
 */
#ifndef DKV_EPOCHS_H
#define DKV_EPOCHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "ring.h"

/* Epochs active at once: a change waits while this many are.  Each is a
 * ring (ring_size lists of members) and one more set of replicas each
 * write goes to; changes made faster than transfers finish queue here. */
#define EPOCHS_MAX         8u
/* Members of one epoch, and the longest member id (as peer.h's address). */
#define EPOCHS_MAX_MEMBERS 1024u
#define EPOCHS_MAX_ID      255u
/* Members whose progress one set keeps. */
#define EPOCHS_MAX_TRACKED 4096u

typedef struct epochs epochs;

typedef struct epoch_id {
	uint64_t number;   /* 1 for a cluster's first epoch; 0: none */
	uint64_t digest;
} epoch_id;

typedef struct epoch_progress {
	epoch_id ack, sync, read;
} epoch_progress;

/* An empty chain for rings of ring_size partitions and n_val replicas. */
int epochs_new(epochs **out, uint32_t ring_size, uint32_t n_val);
void epochs_free(epochs *h);

/* Epochs in the chain (0: none yet), and the i-th, oldest first. */
size_t epochs_count(const epochs *h);
epoch_id epochs_id(const epochs *h, size_t i);
const ring *epochs_ring(const epochs *h, size_t i);
/* The i-th epoch's members (sorted bytewise), and their count. */
const char *const *epochs_members(const epochs *h, size_t i, size_t *n);
/* The newest epoch's id ({0, 0} when the chain is empty). */
epoch_id epochs_newest(const epochs *h);
/* The index of id in the chain, or -1. */
long epochs_find(const epochs *h, epoch_id id);

/* Make the next epoch from ids[0..n-1] (distinct, any order, n >= 1)
 * unless the newest already has exactly these members.  *made says
 * whether it did.  0; DKV_EBUSY with EPOCHS_MAX epochs active; DKV_EINVAL
 * (no ids, a duplicate, an id too long); -ENOMEM. */
int epochs_propose(epochs *h, const char *const *ids, size_t n, bool *made);

/* Merge another node's chain, unpacked from the wire (epochs_unpack into
 * a scratch set).  *changed says whether ours changed (extended, or a
 * fork lost; an empty chain of ours takes theirs whole).  A chain wholly
 * older than ours teaches nothing: 0, unchanged.  DKV_EINVAL, nothing
 * changed, when the chains overlap but share no epoch, or theirs starts
 * past our newest without linking to it (another cluster, or one we
 * cannot check: a node that holds nothing may epochs_adopt it); -ENOMEM. */
int epochs_merge(epochs *h, const epochs *theirs, bool *changed);
/* Replace our chain by theirs, whatever it is (a node that holds nothing
 * joining a cluster).  0 or -ENOMEM (ours unchanged). */
int epochs_adopt(epochs *h, const epochs *theirs);

/* Record member id's progress as it reported it (replacing what it
 * reported before).  0, DKV_EINVAL (id too long), DKV_EBUSY (past
 * EPOCHS_MAX_TRACKED members), -ENOMEM. */
int epochs_note(epochs *h, const char *id, const epoch_progress *pr);
/* Forget a member's progress (it was removed). */
void epochs_forget(epochs *h, const char *id);

/* How far every one of the members ids[0..n-1] is: the index in the chain
 * of the newest epoch that all of them ack, hold whole (sync), or read
 * from; -1 when some member's report counts for no epoch of the chain
 * (or it reported nothing).  With n == 0: the newest epoch. */
long epochs_acked(const epochs *h, const char *const *ids, size_t n);
long epochs_synced(const epochs *h, const char *const *ids, size_t n);
long epochs_read_all(const epochs *h, const char *const *ids, size_t n);

/* Drop the epochs older than index keep (from epochs_read_all): they are
 * read by no one.  Returns how many were dropped. */
size_t epochs_prune(epochs *h, long keep);

/* The chain as msgpack: [[number, digest, prev, [id, ...]], ...], oldest
 * first.  0 or -ENOMEM. */
int epochs_pack(const epochs *h, msgpack_packer *pk);
/* Read a chain packed by epochs_pack from untrusted bytes into h (which
 * must be empty): every digest is checked, and consecutive epochs must
 * link.  0; DKV_EPROTO (malformed, a digest that does not match, a broken
 * link, more than EPOCHS_MAX epochs, an epoch of no or too many members);
 * -ENOMEM.  *used says how many bytes it took. */
int epochs_unpack(epochs *h, const void *buf, size_t len, size_t *used);

#endif /* DKV_EPOCHS_H */
