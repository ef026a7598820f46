/*
 * cluster.h -- membership, gossip and failure detection (DESIGN section 7).
 *
 * MEMBERSHIP: who is in the ring.  One record per member: id, address,
 * status (joining, valid, leaving, removed) and a version.  Whoever changes
 * a record (the member joining or leaving, or a node running `dynkv-admin
 * remove`) gives it a version above every version it has seen; records
 * merge by version (equal versions: the later status in the order above
 * wins), so every node ends with the same records whatever order the
 * messages came in.  Records of removed members are kept, so a removed
 * member cannot come back through an old message.  The records are
 * persisted in DATA_DIR/MEMBERS (written atomically on every change), so a
 * restarted node knows its cluster with no options.
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
 * with its own.  A new node (no MEMBERS file) sends SYNC to its seeds until
 * one answers.
 */
#ifndef DKV_CLUSTER_H
#define DKV_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"
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
} member;

typedef struct cluster cluster;

typedef struct cluster_hooks {
	void *ctx;
	/* The set of valid members or an address changed: rebuild the ring. */
	void (*ring_changed)(void *ctx);
	/* A member was found down (fail what waits on it). */
	void (*member_down)(void *ctx, const char *addr);
	/* Keys this node holds, for its own entry. */
	uint64_t (*local_keys)(void *ctx);
} cluster_hooks;

typedef struct cluster_stats {
	uint64_t pings_sent, acks_received, pingreqs_sent, suspicions, downs, refutes;
	uint64_t syncs_sent, syncs_received, bad_datagrams;
} cluster_stats;

/* Load DATA_DIR/MEMBERS (dir), or start a cluster of one.  Starts the probe
 * and push-pull timers; seeds (cfg->seeds) are contacted when the node is
 * new.  self_addr is our address, unless keep_addr and MEMBERS records
 * one (a restart without --listen): cluster_self()->addr says which.  0,
 * or an error with err set (a damaged MEMBERS file: DKV_ECORRUPT). */
int cluster_open(cluster **out, world *w, dkv_log *log, const dkv_config *cfg,
		 const char *dir, const char *self_id, const char *self_addr,
		 bool keep_addr, const cluster_hooks *hooks, char *err, size_t errlen);
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
const cluster_stats *cluster_get_stats(const cluster *c);

/* Ask seed (host:port) for its cluster: sends SYNC; the answer merges.  A
 * removed node becomes valid again (with a new version) only this way. */
int cluster_join(cluster *c, const char *seed);
/* Set a member's status (leave: MEMBER_REMOVED for now) with a new
 * version, persist and spread it.  DKV_ENOTFOUND for an unknown id. */
int cluster_set_status(cluster *c, const char *id, member_status st);

const char *member_status_name(member_status s);
const char *member_liveness_name(member_liveness l);

#endif /* DKV_CLUSTER_H */
