/*
 * cluster.h -- membership, gossip and failure detection (DESIGN section 7).
 *
 * MEMBERSHIP: who is in the ring.  One record per member: id, address,
 * status (joining, valid, leaving, removed), a version, and the actor of
 * the member's data directory (datadir.h).  Whoever changes
 * a record (the member joining or leaving, or a node running `dynkv-admin
 * remove`) gives it a version above every version it has seen; records
 * merge by version (equal versions: the later status in the order above
 * wins), so every node ends with the same records whatever order the
 * messages came in.  Records of removed members are kept, so a removed
 * member cannot come back through an old message.  The records are
 * persisted in DATA_DIR/MEMBERS (written atomically on every change, and
 * first by cluster_start, never by cluster_open), so a restarted node knows
 * its cluster with no options.
 *
 * IDENTITY: a member is its data directory, not its address.  The same
 * directory restarted on another address moves its record (a new version
 * with the new address).  Another directory claiming an id that a member
 * already has (entries with the same id and different actors) is never
 * merged into the member's record: the record stands, the entry is counted
 * (cluster_stats.id_conflicts) and logged once per rival.  The claimant,
 * while it joins (seeds, cluster_join), learns from the answer that its id
 * is taken: it logs why, stops (no timer, no input, nothing sent) and
 * tells the node through hooks.conflict.  An entry or a MEMBERS record
 * without an actor (written before actors were carried) matches any actor,
 * and a record known without one takes the actor of its member's own
 * entry (same address, or a newer version).
 *
 * LIVENESS: up, suspect or down, from SWIM-style probing.  Every
 * probe_interval a node pings the next member of a shuffled round (UDP);
 * without an ACK within probe_timeout it asks probe_indirect other members
 * to ping the target for it (PINGREQ); without any ACK by the next round the
 * target is suspect.  A suspect that does not refute within
 * suspect_timeout is down.  Each member owns an incarnation number: hearing
 * itself suspected or declared down at incarnation i, a member takes i+1
 * and says it is up, which overrides the suspicion everywhere.  For one
 * incarnation, down overrides suspect overrides up.  Liveness never changes
 * the ring (DESIGN property 6): only records do.
 *
 * DISSEMINATION: every gossip datagram carries up to GOSSIP_ENTRIES member
 * entries (the sender's own first, the rest in rotation), and every
 * push_pull_interval a node sends its whole state over TCP (SYNC) to a
 * random member, down ones included (so partitions heal), which answers
 * with its own.  A node alone (no other member that is not removed) that
 * holds no keys sends SYNC to its seeds (cfg->seeds) until one answers;
 * any other node ignores its seeds and logs why at start (a node that
 * belongs to a cluster, or holds data, joins another only through
 * `dynkv-admin join`, cluster_join).
 *
 * EPOCHS: the chain of ring epochs (epochs.h) that membership changes
 * will move data by.  A node that belongs to a cluster makes the next
 * epoch whenever the members whose status is joining or valid differ from
 * the newest epoch's (the first epoch, when it has none: a new cluster,
 * or MEMBERS written by a release without epochs); SYNC carries the
 * chain, and merging one applies epochs_merge (a node that has not joined
 * yet takes the chain of the cluster it joins whole).  A SYNC whose
 * chain shares no epoch with ours is from another cluster: it is ignored
 * whole, and logged.  Every entry carries its member's progress (ack: our
 * newest epoch; sync: the newest epoch whose partitions we hold whole --
 * every partition we gain in it over the epoch every member holds has
 * been received (hooks.holds_epoch), never going back; read: the newest
 * epoch every member holds), and epochs read by every member that is not
 * removed are
 * dropped.  The chain and our progress are persisted in MEMBERS.
 * Placement follows the epochs (placement.h), transfers move the data
 * (transfer.h, which says when we hold an epoch whole: hooks.holds_epoch),
 * and a member that is leaving is in the epochs made after its leave no
 * more: once none is left that has it, it marks itself removed
 * (hooks.left).
 *
 * LIFETIMES: the member pointers that cluster_at, cluster_find,
 * cluster_find_addr and cluster_self return point into an array that
 * grows by reallocation: they are borrowed until the next call that can
 * add a member -- cluster_sync, cluster_datagram, cluster_join (through
 * the answer it provokes, which arrives by cluster_sync) -- and hooks run
 * from inside those calls must fetch them again rather than keep them.
 * Copy what must outlive such a call (an id, an address).
 *
 * LIFECYCLE
 *   cluster_open    loads MEMBERS and builds our own record in memory;
 *                   writes nothing, starts nothing, ignores every input
 *   cluster_start   writes MEMBERS, starts probing, push-pull and, for a
 *                   node alone and empty, seeding
 *   (conflict)      our id is taken by another actor: stopped for good
 *   cluster_close   cancels the timers, frees everything
 */
#ifndef DKV_CLUSTER_H
#define DKV_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"
#include "epochs.h"
#include "log.h"
#include "peer.h"
#include "world.h"

#define GOSSIP_ENTRIES 32u

typedef enum member_status {
	MEMBER_JOINING = 0,
	MEMBER_VALID = 1,
	MEMBER_LEAVING = 2,
	MEMBER_REMOVED = 3,
} member_status;

typedef enum member_liveness {
	LIVE_UP = 0,
	LIVE_SUSPECT = 1,
	LIVE_DOWN = 2,
} member_liveness;

typedef struct member {
	char id[PEER_MAX_ADDR + 1];
	char addr[PEER_MAX_ADDR + 1];
	member_status status;
	uint64_t version;
	uint64_t incarnation;
	member_liveness liveness;
	uint64_t keys, keys_stamp;   /* as the member last reported */
	uint64_t suspect_since;      /* local clock, while suspect */
	uint64_t actor;              /* its data directory's actor; 0: not known yet */
	uint64_t rival;              /* last other actor seen claiming the id (logged) */
	bool has_progress;           /* it reported its progress along the epochs */
	peer_progress progress;      /* as it last reported (the highest seq) */
} member;

typedef struct cluster cluster;

typedef struct cluster_hooks {
	void *ctx;
	/* The set of valid members or an address changed: rebuild the ring. */
	void (*ring_changed)(void *ctx);
	/* A member was found down (fail what waits on it). */
	void (*member_down)(void *ctx, const char *addr);
	/* Keys this node holds, for its own entry and the seeds' rule. */
	uint64_t (*local_keys)(void *ctx);
	/* Our id is taken by another data directory: the cluster has stopped
	 * (msg, borrowed for the call, says so for an operator).  May be NULL. */
	void (*conflict)(void *ctx, const char *msg);
	/* True iff this node holds epoch k (an index in the chain) whole,
	 * given that it holds epoch base whole: it has received every
	 * partition it is a primary of in k and not in base (transfer.h).
	 * NULL: only when it gains no partition. */
	bool (*holds_epoch)(void *ctx, size_t k, size_t base);
	/* This node was leaving and is in no ring epoch any more: every
	 * partition it held is on its new replicas; it is now removed and
	 * may stop.  May be NULL. */
	void (*left)(void *ctx);
	/* True while this node holds hints for others: a leave is not done
	 * until they are delivered (a removed member's messages are not
	 * taken).  May be NULL. */
	bool (*holds_hints)(void *ctx);
} cluster_hooks;

typedef struct cluster_stats {
	uint64_t pings_sent, acks_received, pingreqs_sent, suspicions, downs, refutes;
	uint64_t syncs_sent, syncs_received, bad_datagrams;
	uint64_t id_conflicts;   /* entries with a member's id and another actor, ignored */
} cluster_stats;

/* Load DATA_DIR/MEMBERS (dir), or make a cluster of one, in memory: writes
 * nothing and starts nothing (cluster_start does).  self_actor is NODE's
 * actor (never 0).  self_addr is our address, unless keep_addr and MEMBERS
 * records one (a restart without --listen): cluster_self()->addr says
 * which.  0, or an error with err set (a damaged MEMBERS file:
 * DKV_ECORRUPT; a newer format: DKV_EVERSION). */
int cluster_open(cluster **out, world *w, dkv_log *log, const dkv_config *cfg,
		 const char *dir, const char *self_id, uint64_t self_actor,
		 const char *self_addr, bool keep_addr, const cluster_hooks *hooks,
		 char *err, size_t errlen);
/* Write MEMBERS, then start the probe and push-pull timers and, when the
 * seeds' rule above allows, seeding (hooks.local_keys is asked now).  Call
 * once the node can serve (its address is bound).  0, or -errno with err
 * set (nothing started). */
int cluster_start(cluster *c, char *err, size_t errlen);
/* Why the cluster stopped (our id is taken, IDENTITY above), or NULL.
 * Borrowed until cluster_close. */
const char *cluster_conflict(const cluster *c);
void cluster_close(cluster *c);

/* Inputs from the world. */
void cluster_datagram(cluster *c, const void *buf, size_t len);
void cluster_sync(cluster *c, const peer_msg *m);
void cluster_peer_down(cluster *c, const char *addr);

/* Members, in id order (removed ones included). */
size_t cluster_count(const cluster *c);
const member *cluster_at(const cluster *c, size_t i);
const member *cluster_find(const cluster *c, const char *id);
const member *cluster_find_addr(const cluster *c, const char *addr);
const member *cluster_self(const cluster *c);
/* Members whose status is valid. */
size_t cluster_valid_count(const cluster *c);
/* The chain of ring epochs (EPOCHS below), borrowed until the next input. */
const epochs *cluster_epochs(const cluster *c);
/* How far every member that is not removed is along the chain: the
 * indices of the newest epoch all of them hold whole (*synced) and ack
 * (*acked); -1 when they agree on none. */
void cluster_epoch_marks(const cluster *c, long *synced, long *acked);
/* Our progress may have moved (a transfer finished): report it. */
void cluster_progress_changed(cluster *c);
const cluster_stats *cluster_get_stats(const cluster *c);

/* Ask seed (host:port) for its cluster: sends SYNC; the answer merges.  A
 * removed node becomes valid again (with a new version) only this way.
 * DKV_EINVAL once the cluster has stopped on a conflict. */
int cluster_join(cluster *c, const char *seed);
/* Set a member's status with a new version, persist and spread it
 * (leave: MEMBER_LEAVING -- the next epoch is made without it, its
 * partitions move, and once it is in no epoch it marks itself removed and
 * calls hooks.left; remove: MEMBER_REMOVED at once).  DKV_ENOTFOUND for
 * an unknown id. */
int cluster_set_status(cluster *c, const char *id, member_status st);

const char *member_status_name(member_status s);
const char *member_liveness_name(member_liveness l);

#endif /* DKV_CLUSTER_H */
