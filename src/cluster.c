#include "config.h"
/*
 * cluster.c -- membership records, SWIM probing, gossip and push-pull;
 * see cluster.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "cluster.h"
#include "dkv_file.h"
#include "error.h"
#include "siphash.h"

#define MEMBERS_FILE    "MEMBERS"
#define MEMBERS_FORMAT  3           /* 3: and the epochs; 2: entries may carry the
					     * actor; 1 and 2 are read too */
#define MAX_MEMBERS     PEER_MAX_ENTRIES
#define RELAYS          16          /* indirect probes remembered */
#define SEED_RETRY_MS   1000
#define PULL_GAP_MS     200         /* between asks for a newer chain */

typedef struct relay {
	uint64_t seq;                   /* our probe of the target */
	uint64_t their_seq;             /* the requester's probe */
	char requester[PEER_MAX_ADDR + 1];
} relay;

struct cluster {
	world *w;
	dkv_log *log;
	cluster_hooks hooks;
	char *path;                     /* DATA_DIR/MEMBERS */
	uint32_t probe_interval, probe_timeout, probe_indirect;
	uint32_t suspect_timeout, push_pull_interval;

	member *m;                      /* sorted by id */
	size_t n, cap;
	size_t self;                    /* index of our own record */
	char self_id[PEER_MAX_ADDR + 1];
	uint64_t self_actor;            /* our data directory's actor (NODE) */

	/* probing */
	char **round;                   /* ids left in this round */
	size_t nround;
	uint64_t seq;
	char probe_target[PEER_MAX_ADDR + 1];   /* id */
	uint64_t probe_seq;
	bool probe_acked;
	bool probing;
	relay relays[RELAYS];
	size_t next_relay;
	size_t rotate;                  /* entry rotation for piggybacking */
	uint64_t rng;

	/* seeds: contacted until some SYNC answers */
	char *seeds;                    /* cfg->seeds (owned); NULL: none given */
	bool joined;                    /* true iff we belong to a cluster: not
					 * asking seeds or a join target for one */
	bool fresh;                     /* true iff there was no MEMBERS file */
	bool started;                   /* true iff cluster_start has run */
	bool told_removed;              /* true iff the "no longer in the ring"
					 * warning was logged for our removal */
	char *conflict;                 /* why we stopped (owned); NULL: we did not */

	world_timer *probe_timer, *indirect_timer, *pushpull_timer, *seed_timer;
	msgpack_sbuffer sb;
	cluster_stats st;

	/* ring epochs (EPOCHS in cluster.h) */
	epochs *ep;
	uint32_t ring_size, n_val;
	peer_progress mine;             /* our progress, as we report it */
	bool told_busy;                 /* the "changes wait" warning is out */
	bool republish;                 /* report our progress again, higher */
	bool epochs_dirty;              /* records, chain or a report changed
					 * since epochs_step last ran */
	char refused[PEER_MAX_ADDR + 1];   /* the last node whose chain was
					    * refused (logged once) */
	char pull[PEER_MAX_ADDR + 1];   /* a member ahead of our chain: ask it */
	uint64_t pulled_at;             /* when we last asked one */
};

static void logc(cluster *c, dkv_log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logc(cluster *c, dkv_log_level lv, const char *fmt, ...)
{
	va_list ap;

	if (c->log == NULL || !dkv_log_enabled(c->log, lv))
		return;
	va_start(ap, fmt);
	dkv_log_vmsg(c->log, lv, fmt, ap);
	va_end(ap);
}

const char *member_status_name(member_status s)
{
	static const char *const names[] = { "joining", "valid", "leaving", "removed" };

	return (unsigned)s < 4 ? names[s] : "unknown";
}

const char *member_liveness_name(member_liveness l)
{
	static const char *const names[] = { "up", "suspect", "down" };

	return (unsigned)l < 3 ? names[l] : "unknown";
}

static uint64_t now(cluster *c)
{
	return c->w->ops->now_ms(c->w);
}

static uint64_t rnd(cluster *c)
{
	/* xorshift64*: the choice of whom to probe need not be strong */
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ull;
}

/* --- the member table ----------------------------------------------------- */

static long find_index(const cluster *c, const char *id, size_t len)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strncmp(c->m[mid].id, id, len);

		if (cmp == 0 && c->m[mid].id[len] != '\0')
			cmp = 1;
		if (cmp == 0)
			return (long)mid;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static member *add_member(cluster *c, const char *id, size_t idlen)
{
	long at = find_index(c, id, idlen);
	size_t i;

	if (at >= 0)
		return &c->m[at];
	if (c->n == MAX_MEMBERS || idlen > PEER_MAX_ADDR)
		return NULL;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		member *m = realloc(c->m, cap * sizeof(*m));

		if (m == NULL)
			return NULL;
		c->m = m;
		c->cap = cap;
	}
	i = (size_t)(-at - 1);
	memmove(&c->m[i + 1], &c->m[i], (c->n - i) * sizeof(*c->m));
	c->n++;
	memset(&c->m[i], 0, sizeof(c->m[i]));
	memcpy(c->m[i].id, id, idlen);
	c->m[i].id[idlen] = '\0';
	c->self = (size_t)find_index(c, c->self_id, strlen(c->self_id));
	return &c->m[i];
}

size_t cluster_count(const cluster *c) { return c->n; }
const epochs *cluster_epochs(const cluster *c) { return c->ep; }

void cluster_epoch_marks(const cluster *c, long *synced, long *acked)
{
	const char **ids = malloc((c->n ? c->n : 1) * sizeof(*ids));
	size_t n = 0;

	*synced = *acked = -1;
	if (ids == NULL || epochs_count(c->ep) == 0) {
		free(ids);
		return;
	}
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].status != MEMBER_REMOVED)
			ids[n++] = c->m[i].id;
	*synced = epochs_synced(c->ep, ids, n);
	*acked = epochs_acked(c->ep, ids, n);
	free(ids);
}
const member *cluster_at(const cluster *c, size_t i) { return i < c->n ? &c->m[i] : NULL; }
const member *cluster_self(const cluster *c) { return &c->m[c->self]; }
const cluster_stats *cluster_get_stats(const cluster *c) { return &c->st; }

const member *cluster_find(const cluster *c, const char *id)
{
	long i = find_index(c, id, strlen(id));

	return i >= 0 ? &c->m[i] : NULL;
}

const member *cluster_find_addr(const cluster *c, const char *addr)
{
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].status != MEMBER_REMOVED && strcmp(c->m[i].addr, addr) == 0)
			return &c->m[i];
	return NULL;
}

size_t cluster_valid_count(const cluster *c)
{
	size_t k = 0;

	for (size_t i = 0; i < c->n; i++)
		k += c->m[i].status == MEMBER_VALID;
	return k;
}

static void entry_of(const member *m, peer_entry *e)
{
	e->id = m->id;
	e->idlen = strlen(m->id);
	e->addr = m->addr;
	e->addrlen = strlen(m->addr);
	e->status = m->status;
	e->version = m->version;
	e->incarnation = m->incarnation;
	e->liveness = m->liveness;
	e->keys = m->keys;
	e->keys_stamp = m->keys_stamp;
	e->actor = m->actor;
	e->has_progress = m->has_progress;
	e->progress = m->progress;
}

/* --- persistence ---------------------------------------------------------- */

/* MEMBERS: the msgpack array [format, [entry...], epochs] (peer.h,
 * ENTRIES; the liveness fields are written but ignored when read; epochs
 * as epochs_pack writes them).  Formats 1 and 2 had no epochs. */
static int save(cluster *c)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc = 0;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_pack_array(&pk, 3) != 0 || msgpack_pack_uint32(&pk, MEMBERS_FORMAT) != 0 ||
	    msgpack_pack_array(&pk, (uint32_t)c->n) != 0)
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < c->n; i++) {
		peer_entry e;

		entry_of(&c->m[i], &e);
		e.liveness = LIVE_UP;
		rc = peer_pack_entry(&pk, &e);
	}
	if (rc == 0)
		rc = epochs_pack(c->ep, &pk);
	if (rc == 0)
		rc = dkv_file_replace(c->path, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	if (rc != 0)
		logc(c, DKV_LOG_ERROR, "cannot save %s: %s (the membership change stands in "
		     "memory and is saved with the next change)", c->path, dkv_strerror(rc));
	return rc;
}

static int load(cluster *c, char *err, size_t errlen)
{
	uint64_t n, fmt, left;
	struct stat sst;
	peer_entry e;
	uint8_t *buf;
	ssize_t got;
	int fd, rc;
	mpr r;

	fd = open(c->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sst) != 0 || sst.st_size > (64 << 20)) {
		close(fd);
		snprintf(err, errlen, "%s: unreadable or too large", c->path);
		return DKV_ECORRUPT;
	}
	buf = malloc((size_t)sst.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	got = read(fd, buf, (size_t)sst.st_size);
	close(fd);
	rc = DKV_ECORRUPT;
	if (got != sst.st_size)
		goto out;
	mpr_init(&r, buf, (size_t)got, DKV_ECORRUPT);
	if (mpr_array(&r, &n) != 0 || (n != 2 && n != 3) || mpr_uint(&r, &fmt) != 0)
		goto out;
	if (fmt != 1 && fmt != 2 && fmt != MEMBERS_FORMAT) {
		snprintf(err, errlen, "%s: format %" PRIu64 " is not one this dynkvd reads (%d)",
			 c->path, fmt, MEMBERS_FORMAT);
		rc = DKV_EVERSION;
		goto done;
	}
	if (mpr_array(&r, &left) != 0 || left > MAX_MEMBERS)
		goto out;
	while ((rc = peer_entry_next(&r, &left, &e)) == 1) {
		member *m = add_member(c, e.id, e.idlen);

		if (m == NULL) {
			rc = -ENOMEM;
			goto done;
		}
		memcpy(m->addr, e.addr, e.addrlen);
		m->addr[e.addrlen] = '\0';
		m->status = (member_status)e.status;
		m->version = e.version;
		m->incarnation = e.incarnation;
		m->keys = e.keys;
		m->keys_stamp = e.keys_stamp;
		m->actor = e.actor;
		m->has_progress = e.has_progress;
		m->progress = e.progress;
	}
	if (rc == 0 && n == 3 && fmt == MEMBERS_FORMAT) {
		size_t used;

		rc = epochs_unpack(c->ep, r.p, mpr_left(&r), &used);
		if (rc == -ENOMEM)
			goto done;
		if (rc == 0)
			r.p += used;
	}
	if (rc == 0 && (n == 3) == (fmt == MEMBERS_FORMAT) && mpr_left(&r) == 0)
		goto done;
	rc = DKV_ECORRUPT;
out:
	snprintf(err, errlen, "%s: damaged membership file (move it away to start this node "
		 "as a new member)", c->path);
done:
	free(buf);
	return rc;
}

/* --- sending -------------------------------------------------------------- */

/* Pack up to GOSSIP_ENTRIES entries: ours first, then the rest in
 * rotation. */
static int pack_entries(cluster *c, msgpack_packer *pk, uint32_t count)
{
	peer_entry e;

	entry_of(&c->m[c->self], &e);
	if (peer_pack_entry(pk, &e) != 0)
		return -ENOMEM;
	for (uint32_t k = 1; k < count; ) {
		size_t i = c->rotate++ % c->n;

		if (i == c->self)
			continue;
		entry_of(&c->m[i], &e);
		if (peer_pack_entry(pk, &e) != 0)
			return -ENOMEM;
		k++;
	}
	return 0;
}

static void send_gossip(cluster *c, const char *addr, uint32_t kind, uint64_t seq,
			const char *target)
{
	uint32_t count = c->n < GOSSIP_ENTRIES ? (uint32_t)c->n : GOSSIP_ENTRIES;
	msgpack_packer pk;

	c->sb.size = 0;
	msgpack_packer_init(&pk, &c->sb, msgpack_sbuffer_write);
	if (gossip_begin(&pk, kind, c->self_id, c->m[c->self].addr, seq, target, count) != 0 ||
	    pack_entries(c, &pk, count) != 0)
		return;
	c->w->ops->dgram(c->w, addr, c->sb.data, c->sb.size);
}

static void send_sync(cluster *c, const char *addr, bool reply)
{
	/* a node that has not joined yet has no chain that counts: it takes
	 * the cluster's (sync_epochs) */
	bool chain = c->joined && epochs_count(c->ep) > 0;
	msgpack_packer pk;
	size_t start;
	peer_entry e;

	c->sb.size = 0;
	if (peer_sync_begin(&c->sb, &pk, &start, c->m[c->self].addr, reply, (uint32_t)c->n,
			    chain) != 0)
		return;
	for (size_t i = 0; i < c->n; i++) {
		entry_of(&c->m[i], &e);
		if (peer_pack_entry(&pk, &e) != 0)
			return;
	}
	if (chain && epochs_pack(c->ep, &pk) != 0)
		return;
	if (peer_sync_end(&c->sb, start) != 0)
		return;
	c->st.syncs_sent++;
	(void)c->w->ops->send(c->w, addr, c->sb.data, c->sb.size);
}

/* --- merging -------------------------------------------------------------- */

static void set_liveness(cluster *c, member *m, member_liveness l)
{
	if (m->liveness == l)
		return;
	if (l == LIVE_SUSPECT) {
		m->suspect_since = now(c);
		c->st.suspicions++;
		logc(c, DKV_LOG_INFO, "member %s (%s) is suspect", m->id, m->addr);
	} else if (l == LIVE_DOWN) {
		c->st.downs++;
		logc(c, DKV_LOG_WARNING, "member %s (%s) is down", m->id, m->addr);
	} else {
		logc(c, DKV_LOG_INFO, "member %s (%s) is up", m->id, m->addr);
	}
	m->liveness = l;
	if (l == LIVE_DOWN && c->hooks.member_down != NULL)
		c->hooks.member_down(c->hooks.ctx, m->addr);
}

/* An entry for member m from another data directory (both actors known,
 * and different): two nodes claim one id.  The record we know stands; the
 * entry is counted, and logged once per rival. */
static void rival_entry(cluster *c, member *m, const peer_entry *e)
{
	c->st.id_conflicts++;
	if (m->rival == e->actor)
		return;
	m->rival = e->actor;
	if (m == &c->m[c->self])
		logc(c, DKV_LOG_ERROR, "another node claims this node's id %s: actor %016" PRIx64
		     " at %.*s (this node is actor %016" PRIx64 " at %s); its records are "
		     "ignored, and it is refused when it joins: give it another --node-id",
		     m->id, e->actor, (int)e->addrlen, e->addr, m->actor, m->addr);
	else
		logc(c, DKV_LOG_WARNING, "ignored a record for member %s from another data "
		     "directory: actor %016" PRIx64 " at %.*s, while the member is actor %016"
		     PRIx64 " at %s; two nodes claim the id, the member keeps it",
		     m->id, e->actor, (int)e->addrlen, e->addr, m->actor, m->addr);
}

static epoch_progress to_epochs(const peer_progress *p)
{
	epoch_progress e;

	e.ack.number = p->ack[0];
	e.ack.digest = p->ack[1];
	e.sync.number = p->sync[0];
	e.sync.digest = p->sync[1];
	e.read.number = p->read[0];
	e.read.digest = p->read[1];
	return e;
}

/* A member's progress report: the one with the highest seq stands.  One
 * about us that is higher than ours (we lost ours: an old MEMBERS file)
 * puts our next report above it.  A member ahead of our chain is asked
 * for it (after the merge: c->pull). */
static void merge_progress(cluster *c, member *m, const peer_entry *e)
{
	epoch_progress ep;

	if (!e->has_progress || (m->has_progress && e->progress.seq <= m->progress.seq))
		return;
	c->epochs_dirty = true;
	if (m == &c->m[c->self]) {
		c->mine.seq = e->progress.seq;
		c->republish = true;
		return;
	}
	m->progress = e->progress;
	m->has_progress = true;
	ep = to_epochs(&m->progress);
	(void)epochs_note(c->ep, m->id, &ep);
	if (ep.ack.number > epochs_newest(c->ep).number && epochs_count(c->ep) > 0)
		snprintf(c->pull, sizeof(c->pull), "%s", m->addr);
}

/* Merge one entry; true if a record (not liveness) changed. */
static bool merge_entry(cluster *c, const peer_entry *e, bool *moved)
{
	long at = find_index(c, e->id, e->idlen);
	bool fresh = at < 0, changed = false, same_addr;
	member *m;

	if (!fresh && e->actor != 0 && c->m[at].actor != 0 && e->actor != c->m[at].actor) {
		rival_entry(c, &c->m[at], e);
		return false;
	}

	if (fresh) {
		m = add_member(c, e->id, e->idlen);
		if (m == NULL)
			return false;
		m->version = 0;
		m->status = MEMBER_JOINING;
		m->liveness = LIVE_UP;
	} else
		m = &c->m[at];
	same_addr = strlen(m->addr) == e->addrlen && memcmp(m->addr, e->addr, e->addrlen) == 0;
	/* the record */
	if (fresh || e->version > m->version ||
	    (e->version == m->version && e->status > m->status)) {
		bool was_valid = !fresh && m->status == MEMBER_VALID;
		bool addr_changed = strlen(m->addr) != e->addrlen ||
				    memcmp(m->addr, e->addr, e->addrlen) != 0;

		if (addr_changed) {
			memcpy(m->addr, e->addr, e->addrlen);
			m->addr[e->addrlen] = '\0';
		}
		if (fresh || m->status != (member_status)e->status || addr_changed) {
			logc(c, DKV_LOG_INFO, "member %s (%s) is %s", m->id, m->addr,
			     member_status_name((member_status)e->status));
			changed = true;
		}
		m->status = (member_status)e->status;
		m->version = e->version;
		if (m->actor == 0 && e->actor != 0) {
			m->actor = e->actor;
			changed = true;
		}
		if (was_valid != (m->status == MEMBER_VALID) || (addr_changed && was_valid))
			*moved = true;
	}
	/* an actor learnt for a record known without one (an old MEMBERS
	 * file or entry): from the member's own record, at its address */
	if (m->actor == 0 && e->actor != 0 && same_addr) {
		m->actor = e->actor;
		changed = true;
	}
	if (e->keys_stamp > m->keys_stamp) {
		m->keys = e->keys;
		m->keys_stamp = e->keys_stamp;
	}
	merge_progress(c, m, e);
	/* liveness (SWIM) */
	if (m == &c->m[c->self]) {
		if (e->liveness != LIVE_UP && e->incarnation >= m->incarnation) {
			m->incarnation = e->incarnation + 1;
			c->st.refutes++;
			changed = true;   /* saved: a restart starts above it */
			logc(c, DKV_LOG_INFO, "refuting a report that this node is %s "
			     "(incarnation now %" PRIu64 ")",
			     member_liveness_name((member_liveness)e->liveness), m->incarnation);
		} else if (e->incarnation > m->incarnation)
			m->incarnation = e->incarnation;
		return changed;
	}
	if (e->incarnation > m->incarnation) {
		m->incarnation = e->incarnation;
		set_liveness(c, m, (member_liveness)e->liveness);
	} else if (e->incarnation == m->incarnation && e->liveness > m->liveness)
		set_liveness(c, m, (member_liveness)e->liveness);
	return changed;
}

/* Our own record changed: when it became removed, say once that the
 * process may be stopped (it is asked for nothing any more). */
static void note_self_status(cluster *c)
{
	if (c->m[c->self].status != MEMBER_REMOVED) {
		c->told_removed = false;
		return;
	}
	if (c->told_removed)
		return;
	c->told_removed = true;
	logc(c, DKV_LOG_WARNING, "this node (%s) is no longer in the ring: it left or was "
	     "removed, holds no partitions and is asked for nothing; it can be stopped "
	     "(systemctl stop dynkvd, or kill its process), or brought back with "
	     "`dynkv-admin join SEED`", c->self_id);
}

static void stop_timers(cluster *c)
{
	c->w->ops->timer_cancel(c->w, c->probe_timer);
	c->w->ops->timer_cancel(c->w, c->indirect_timer);
	c->w->ops->timer_cancel(c->w, c->pushpull_timer);
	c->w->ops->timer_cancel(c->w, c->seed_timer);
	c->probe_timer = c->indirect_timer = c->pushpull_timer = c->seed_timer = NULL;
}

/* While joining, an entry with our id and another actor means the id is
 * taken by another data directory: stop (nothing of the message is
 * merged, nothing more is sent) and tell the node.  True iff so. */
static bool id_taken(cluster *c, mpr entries, uint64_t left)
{
	char msg[1024];
	peer_entry e;

	while (peer_entry_next(&entries, &left, &e) == 1) {
		if (e.actor == 0 || e.actor == c->self_actor || e.idlen != strlen(c->self_id) ||
		    memcmp(e.id, c->self_id, e.idlen) != 0)
			continue;
		c->st.id_conflicts++;
		snprintf(msg, sizeof(msg), "node id %s is taken by another node in the cluster "
			 "(actor %016" PRIx64 " at %.*s); this node (actor %016" PRIx64 " at %s) "
			 "has another data directory, so it is a different node: it stops joining. "
			 "Start it with another --node-id (or, if it is that node, on that node's "
			 "data directory)", c->self_id, e.actor, (int)e.addrlen, e.addr,
			 c->self_actor, c->m[c->self].addr);
		logc(c, DKV_LOG_ERROR, "%s", msg);
		c->conflict = strdup(msg);
		stop_timers(c);
		if (c->hooks.conflict != NULL)
			c->hooks.conflict(c->hooks.ctx, msg);
		return true;
	}
	return false;
}

/* --- epochs --------------------------------------------------------------- */

/* True iff this node is a primary in epoch k of no partition it is not a
 * primary of in epoch base: it holds k's partitions whole if it holds
 * base's. */
static bool gains_nothing(cluster *c, size_t k, size_t base)
{
	const ring *rk = epochs_ring(c->ep, k), *rb = epochs_ring(c->ep, base);
	long ik = ring_member_index(rk, c->self_id), ib = ring_member_index(rb, c->self_id);

	if (ik < 0)
		return true;
	for (uint32_t p = 0; p < ring_size(rk); p++)
		if (ring_is_primary(rk, ik, p) && (ib < 0 || !ring_is_primary(rb, ib, p)))
			return false;
	return true;
}

static epoch_id id_at(const epochs *h, long i)
{
	epoch_id none = { 0, 0 };

	return i < 0 ? none : epochs_id(h, (size_t)i);
}

static bool same_progress(const peer_progress *a, const peer_progress *b)
{
	return memcmp(a->ack, b->ack, sizeof(a->ack)) == 0 &&
	       memcmp(a->sync, b->sync, sizeof(a->sync)) == 0 &&
	       memcmp(a->read, b->read, sizeof(a->read)) == 0;
}

/* Our progress from the chain as it stands (EPOCHS in cluster.h). */
static peer_progress our_progress(cluster *c, const char *const *ids, size_t n)
{
	long synced = epochs_synced(c->ep, ids, n), base = synced < 0 ? 0 : synced;
	long sync = base, read, was;
	epoch_id mine_read = { c->mine.read[0], c->mine.read[1] };
	epoch_id mine_sync = { c->mine.sync[0], c->mine.sync[1] };
	peer_progress p = c->mine;
	epoch_id e;

	while ((size_t)(sync + 1) < epochs_count(c->ep) &&
	       (c->hooks.holds_epoch != NULL
		? c->hooks.holds_epoch(c->hooks.ctx, (size_t)(sync + 1), (size_t)base)
		: gains_nothing(c, (size_t)(sync + 1), (size_t)base)))
		sync++;
	/* what we hold whole we keep holding (nothing is dropped before the
	 * epochs that need it are): never back */
	was = epochs_find(c->ep, mine_sync);
	if (was > sync)
		sync = was;
	/* read: the newest epoch every member holds, never back (the oldest
	 * epoch kept is read by everyone: a start) */
	read = base;
	was = epochs_find(c->ep, mine_read);
	if (was > read)
		read = was;
	e = epochs_newest(c->ep);
	p.ack[0] = e.number;
	p.ack[1] = e.digest;
	e = id_at(c->ep, sync);
	p.sync[0] = e.number;
	p.sync[1] = e.digest;
	e = id_at(c->ep, read);
	p.read[0] = e.number;
	p.read[1] = e.digest;
	return p;
}

/* True iff id is a member of some epoch of the chain. */
static bool in_chain(const cluster *c, const char *id)
{
	for (size_t e = 0; e < epochs_count(c->ep); e++) {
		size_t n;
		const char *const *ids = epochs_members(c->ep, e, &n);

		for (size_t i = 0; i < n; i++)
			if (strcmp(ids[i], id) == 0)
				return true;
	}
	return false;
}

/* A leave is done once this node is in no epoch left: every epoch that
 * had it was read past by every member, so every partition it held is on
 * its new replicas.  It marks itself removed and tells the node. */
static void left_done(cluster *c)
{
	if (c->m[c->self].status != MEMBER_LEAVING || epochs_count(c->ep) == 0 ||
	    in_chain(c, c->self_id) ||
	    (c->hooks.holds_hints != NULL && c->hooks.holds_hints(c->hooks.ctx)))
		return;   /* (hints: probe_cb looks again) */
	logc(c, DKV_LOG_INFO, "left the ring: this node is in no ring epoch any more, every "
	     "partition it held is on its new replicas");
	(void)cluster_set_status(c, c->self_id, MEMBER_REMOVED);
	if (c->hooks.left != NULL)
		c->hooks.left(c->hooks.ctx);
}

/* Make the next epoch if the members changed, report our progress, and
 * drop the epochs every member has read past.  Saves MEMBERS on any
 * change. */
static void epochs_step(cluster *c)
{
	const char **ids;
	size_t n = 0;
	bool made = false, changed = false;
	epoch_progress ep;
	long all;
	int rc;

	if (!c->joined || c->conflict != NULL || (ids = malloc(c->n * sizeof(*ids))) == NULL)
		return;
	c->epochs_dirty = false;
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].status == MEMBER_JOINING || c->m[i].status == MEMBER_VALID)
			ids[n++] = c->m[i].id;
	/* A cluster's first epoch is made by one node: a new node alone, or,
	 * in a cluster whose MEMBERS files had no epochs, the member with the
	 * smallest id (ids[] is in id order); the others take its chain. */
	if (epochs_count(c->ep) == 0 && n > 0 && strcmp(ids[0], c->self_id) != 0)
		n = 0;
	rc = n > 0 ? epochs_propose(c->ep, ids, n, &made) : 0;
	if (made) {
		logc(c, DKV_LOG_INFO, "ring epoch %" PRIu64 ": %zu members",
		     epochs_newest(c->ep).number, n);
		c->told_busy = false;
		changed = true;
	} else if (rc == DKV_EBUSY && !c->told_busy) {
		/* info, not warning, while epochs do not place data (dynkv.7) */
		logc(c, DKV_LOG_INFO, "ring epochs: %u are in progress, the most kept; the next "
		     "is made once every member reads past the oldest (a member that is down "
		     "holds them until it is back or removed)", EPOCHS_MAX);
		c->told_busy = true;
	}
	n = 0;
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].status != MEMBER_REMOVED)
			ids[n++] = c->m[i].id;
	for (int pass = 0; pass < 2; pass++) {
		size_t k;

		for (int round = 0; round < 4; round++) {
			peer_progress p;

			ep = to_epochs(&c->mine);
			(void)epochs_note(c->ep, c->self_id, &ep);
			p = our_progress(c, ids, n);
			if (same_progress(&p, &c->mine) && !c->republish)
				break;
			c->republish = false;
			c->mine = p;
			c->mine.seq++;
			c->m[c->self].progress = c->mine;
			c->m[c->self].has_progress = true;
			changed = true;
		}
		ep = to_epochs(&c->mine);
		(void)epochs_note(c->ep, c->self_id, &ep);
		all = epochs_read_all(c->ep, ids, n);
		if (all <= 0)
			break;
		k = epochs_prune(c->ep, all);
		logc(c, DKV_LOG_INFO, "ring epochs: %zu read by every member dropped; the oldest "
		     "kept is %" PRIu64, k, epochs_id(c->ep, 0).number);
		changed = true;
		/* and our progress again: what it named may be gone */
	}
	free(ids);
	if (changed) {
		(void)save(c);
		/* the epochs place data: the chain or our read epoch moved */
		if (c->hooks.ring_changed != NULL)
			c->hooks.ring_changed(c->hooks.ctx);
	}
	left_done(c);
}

void cluster_progress_changed(cluster *c)
{
	epochs_step(c);
}

static void merge_all(cluster *c, mpr entries, uint64_t left)
{
	bool moved = false, changed = false;
	peer_entry e;
	int rc;

	if (!c->joined && id_taken(c, entries, left))
		return;
	while ((rc = peer_entry_next(&entries, &left, &e)) == 1)
		changed |= merge_entry(c, &e, &moved);
	if (rc != 0)
		c->st.bad_datagrams++;
	if (changed)
		(void)save(c);
	note_self_status(c);
	if (changed || moved || c->epochs_dirty)
		epochs_step(c);   /* not for every probe: most change nothing */
	if (c->pull[0] != '\0' && now(c) - c->pulled_at >= PULL_GAP_MS) {
		c->pulled_at = now(c);
		send_sync(c, c->pull, true);
	}
	c->pull[0] = '\0';
	if (moved && c->hooks.ring_changed != NULL)
		c->hooks.ring_changed(c->hooks.ctx);
}

/* --- probing -------------------------------------------------------------- */

static bool probeable(const cluster *c, size_t i)
{
	return i != c->self && c->m[i].status != MEMBER_REMOVED && c->m[i].liveness != LIVE_DOWN;
}

static void free_round(cluster *c)
{
	for (size_t i = 0; i < c->nround; i++)
		free(c->round[i]);
	free(c->round);
	c->round = NULL;
	c->nround = 0;
}

/* The next member to probe: a shuffled round over the probeable members. */
static member *next_target(cluster *c)
{
	while (true) {
		if (c->nround == 0) {
			size_t k = 0;

			free_round(c);
			c->round = calloc(c->n ? c->n : 1, sizeof(*c->round));
			if (c->round == NULL)
				return NULL;
			for (size_t i = 0; i < c->n; i++)
				if (probeable(c, i) && (c->round[k] = strdup(c->m[i].id)) != NULL)
					k++;
			if (k == 0)
				return NULL;
			for (size_t i = k - 1; i > 0; i--) {
				size_t j = rnd(c) % (i + 1);
				char *t = c->round[i];

				c->round[i] = c->round[j];
				c->round[j] = t;
			}
			c->nround = k;
		}
		char *id = c->round[--c->nround];
		long at = find_index(c, id, strlen(id));

		free(id);
		if (at >= 0 && probeable(c, (size_t)at))
			return &c->m[at];
	}
}

static void check_suspects(cluster *c)
{
	uint64_t t = now(c);

	for (size_t i = 0; i < c->n; i++) {
		member *m = &c->m[i];

		if (i != c->self && m->liveness == LIVE_SUSPECT &&
		    t - m->suspect_since >= c->suspect_timeout)
			set_liveness(c, m, LIVE_DOWN);
	}
}

static void indirect_cb(void *arg)
{
	cluster *c = arg;
	long at;
	size_t asked = 0, tries = 0;

	c->indirect_timer = NULL;
	if (!c->probing || c->probe_acked)
		return;
	at = find_index(c, c->probe_target, strlen(c->probe_target));
	if (at < 0)
		return;
	/* ask up to k other members, chosen at random */
	while (asked < c->probe_indirect && tries < 4 * c->n) {
		size_t i = rnd(c) % c->n;

		tries++;
		if (!probeable(c, i) || (long)i == at || c->m[i].liveness != LIVE_UP)
			continue;
		send_gossip(c, c->m[i].addr, GOSSIP_PINGREQ, c->probe_seq, c->m[at].addr);
		c->st.pingreqs_sent++;
		asked++;
	}
}

static void probe_cb(void *arg)
{
	cluster *c = arg;
	member *self = &c->m[c->self], *t;

	c->probe_timer = c->w->ops->timer_add(c->w, c->probe_interval, probe_cb, c);
	left_done(c);   /* a leave waiting for its hints' delivery */
	/* the previous probe's verdict */
	if (c->probing && !c->probe_acked) {
		long at = find_index(c, c->probe_target, strlen(c->probe_target));

		if (at >= 0 && c->m[at].liveness == LIVE_UP && (size_t)at != c->self)
			set_liveness(c, &c->m[at], LIVE_SUSPECT);
	}
	c->probing = false;
	check_suspects(c);
	if (c->hooks.local_keys != NULL) {
		self->keys = c->hooks.local_keys(c->hooks.ctx);
		self->keys_stamp = c->w->ops->wall_ms(c->w);
	}
	if (self->status == MEMBER_REMOVED || (t = next_target(c)) == NULL)
		return;
	snprintf(c->probe_target, sizeof(c->probe_target), "%s", t->id);
	c->probe_seq = ++c->seq;
	c->probe_acked = false;
	c->probing = true;
	send_gossip(c, t->addr, GOSSIP_PING, c->probe_seq, NULL);
	c->st.pings_sent++;
	if (c->indirect_timer != NULL)
		c->w->ops->timer_cancel(c->w, c->indirect_timer);
	c->indirect_timer = c->w->ops->timer_add(c->w, c->probe_timeout, indirect_cb, c);
}

static void pushpull_cb(void *arg)
{
	cluster *c = arg;
	size_t k = 0, pick;

	c->pushpull_timer = c->w->ops->timer_add(c->w, c->push_pull_interval, pushpull_cb, c);
	for (size_t i = 0; i < c->n; i++)
		k += i != c->self && c->m[i].status != MEMBER_REMOVED;
	if (k == 0)
		return;
	pick = rnd(c) % k;
	for (size_t i = 0; i < c->n; i++) {
		if (i == c->self || c->m[i].status == MEMBER_REMOVED)
			continue;
		if (pick-- == 0) {
			send_sync(c, c->m[i].addr, true);
			return;
		}
	}
}

static void seed_cb(void *arg)
{
	cluster *c = arg;
	char *list, *save_ptr = NULL;

	c->seed_timer = NULL;
	if (c->joined || c->seeds == NULL)
		return;
	list = strdup(c->seeds);
	if (list != NULL) {
		for (char *s = strtok_r(list, ",", &save_ptr); s != NULL;
		     s = strtok_r(NULL, ",", &save_ptr))
			if (strcmp(s, c->m[c->self].addr) != 0)
				send_sync(c, s, true);
		free(list);
	}
	c->seed_timer = c->w->ops->timer_add(c->w, SEED_RETRY_MS, seed_cb, c);
}

/* --- inputs --------------------------------------------------------------- */

void cluster_datagram(cluster *c, const void *buf, size_t len)
{
	gossip_msg g;

	if (c->conflict != NULL || !c->started)
		return;
	if (gossip_decode(buf, len, &g) != 0) {
		c->st.bad_datagrams++;
		return;
	}
	merge_all(c, g.entries, g.nentries);
	switch (g.kind) {
	case GOSSIP_PING:
		send_gossip(c, g.from_addr, GOSSIP_ACK, g.seq, NULL);
		break;
	case GOSSIP_ACK:
		c->st.acks_received++;
		if (c->probing && g.seq == c->probe_seq) {
			c->probe_acked = true;
			break;
		}
		for (size_t i = 0; i < RELAYS; i++)
			if (c->relays[i].seq == g.seq && c->relays[i].requester[0] != '\0') {
				send_gossip(c, c->relays[i].requester, GOSSIP_ACK,
					    c->relays[i].their_seq, NULL);
				c->relays[i].requester[0] = '\0';
			}
		break;
	case GOSSIP_PINGREQ: {
		relay *r = &c->relays[c->next_relay++ % RELAYS];

		if (g.target[0] == '\0')
			break;
		r->seq = ++c->seq;
		r->their_seq = g.seq;
		snprintf(r->requester, sizeof(r->requester), "%s", g.from_addr);
		send_gossip(c, g.target, GOSSIP_PING, r->seq, NULL);
		break;
	}
	default:
		break;
	}
}

/* True iff id owns data in h's newest epoch. */
static bool newest_has(const epochs *h, const char *id)
{
	size_t n;
	const char *const *ids;

	if (epochs_count(h) == 0)
		return false;
	ids = epochs_members(h, epochs_count(h) - 1, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return true;
	return false;
}

/* The id of a SYNC's sender (its address is m->from): from our records,
 * else from its own entry in the message; "" when neither says. */
static void sender_id(const cluster *c, const peer_msg *m, char *out, size_t outlen)
{
	const member *s = cluster_find_addr(c, m->from);
	mpr cur = m->entries;
	uint64_t left = m->nentries;
	peer_entry e;

	out[0] = '\0';
	if (s != NULL) {
		snprintf(out, outlen, "%s", s->id);
		return;
	}
	while (peer_entry_next(&cur, &left, &e) == 1)
		if (e.addrlen == strlen(m->from) && memcmp(e.addr, m->from, e.addrlen) == 0) {
			snprintf(out, outlen, "%.*s", (int)e.idlen, e.id);
			return;
		}
}

/* A SYNC's chain: merged, or taken whole by a node that has not joined a
 * cluster yet.  False when the SYNC must be ignored (a chain that does not
 * check out, or another cluster's). */
static bool sync_epochs(cluster *c, const peer_msg *m)
{
	char from[PEER_MAX_ADDR + 1];
	epochs *theirs;
	size_t used;
	bool changed = false;
	int rc;

	if (m->chain == NULL)
		return true;
	sender_id(c, m, from, sizeof(from));
	if (epochs_new(&theirs, c->ring_size, c->n_val) != 0)
		return false;
	rc = epochs_unpack(theirs, m->chain, m->chainlen, &used);
	if (rc == 0 && used != m->chainlen)
		rc = DKV_EPROTO;
	if (rc == 0) {
		rc = c->joined && epochs_count(c->ep) > 0 ? epochs_merge(c->ep, theirs, &changed)
							   : DKV_EINVAL;
		/* not joined yet, no chain yet (MEMBERS of an older release), or a
		 * chain of our own while we hold nothing: theirs, if it counts us
		 * and ours does not count them */
		if (rc == DKV_EINVAL &&
		    (!c->joined || epochs_count(c->ep) == 0 ||
		     (newest_has(theirs, c->self_id) && !newest_has(c->ep, from) &&
		      (c->hooks.local_keys == NULL || c->hooks.local_keys(c->hooks.ctx) == 0)))) {
			rc = epochs_adopt(c->ep, theirs);
			changed = rc == 0;
		}
	}
	if (rc == DKV_EINVAL && strcmp(c->refused, m->from) != 0) {
		snprintf(c->refused, sizeof(c->refused), "%s", m->from);
		logc(c, DKV_LOG_WARNING, "ignoring the membership state of %s: its ring epochs "
		     "(newest %" PRIu64 ") share none with ours (newest %" PRIu64 "); it belongs "
		     "to another cluster.  To move a node that holds nothing to this cluster, "
		     "use `dynkv-admin join` on it", m->from, epochs_newest(theirs).number,
		     epochs_newest(c->ep).number);
	} else if (rc == DKV_EPROTO) {
		c->st.bad_datagrams++;
	} else if (changed) {
		c->epochs_dirty = true;
		logc(c, DKV_LOG_INFO, "ring epochs from %s: newest now %" PRIu64, m->from,
		     epochs_newest(c->ep).number);
		(void)save(c);
	}
	epochs_free(theirs);
	return rc == 0;
}

void cluster_sync(cluster *c, const peer_msg *m)
{
	if (c->conflict != NULL || !c->started)
		return;
	c->st.syncs_received++;
	if (!sync_epochs(c, m))
		return;
	merge_all(c, m->entries, m->nentries);
	if (c->conflict != NULL)
		return;
	if (c->n > 1 && !c->joined) {
		c->joined = true;
		epochs_step(c);
	}
	if (m->flag)
		send_sync(c, m->from, false);
}

void cluster_peer_down(cluster *c, const char *addr)
{
	/* A refused connection is a hint, not a verdict: SWIM decides.  But
	 * probe that member next, so the verdict comes soon. */
	const member *m = cluster_find_addr(c, addr);

	if (m == NULL || m == &c->m[c->self] || m->liveness != LIVE_UP)
		return;
	for (size_t i = 0; i < c->nround; i++)
		if (strcmp(c->round[i], m->id) == 0 && i != c->nround - 1) {
			char *t = c->round[i];

			c->round[i] = c->round[c->nround - 1];
			c->round[c->nround - 1] = t;
			break;
		}
}

int cluster_join(cluster *c, const char *seed)
{
	if (c->conflict != NULL)
		return DKV_EINVAL;
	if (c->m[c->self].status == MEMBER_REMOVED)
		/* a removed node comes back only this way */
		(void)cluster_set_status(c, c->self_id, MEMBER_VALID);
	c->joined = false;   /* until the answer: its id may be taken there */
	send_sync(c, seed, true);
	return 0;
}

int cluster_set_status(cluster *c, const char *id, member_status st)
{
	long at = find_index(c, id, strlen(id));
	uint64_t v = 0;
	bool was_valid;

	if (at < 0)
		return DKV_ENOTFOUND;
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].version > v)
			v = c->m[i].version;
	was_valid = c->m[at].status == MEMBER_VALID;
	c->m[at].status = st;
	c->m[at].version = v + 1;
	logc(c, DKV_LOG_INFO, "member %s (%s) is now %s", c->m[at].id, c->m[at].addr,
	     member_status_name(st));
	(void)save(c);
	note_self_status(c);
	/* tell everyone now rather than at the next push-pull */
	for (size_t i = 0; i < c->n; i++)
		if (i != c->self && c->m[i].status != MEMBER_REMOVED)
			send_sync(c, c->m[i].addr, false);
	if (at >= 0 && (size_t)at != c->self && st == MEMBER_REMOVED)
		send_sync(c, c->m[at].addr, false);
	epochs_step(c);
	if (was_valid != (st == MEMBER_VALID) && c->hooks.ring_changed != NULL)
		c->hooks.ring_changed(c->hooks.ctx);
	return 0;
}

/* --- open/close ----------------------------------------------------------- */

int cluster_open(cluster **out, world *w, dkv_log *log, const dkv_config *cfg,
		 const char *dir, const char *self_id, uint64_t self_actor,
		 const char *self_addr, bool keep_addr, const cluster_hooks *hooks,
		 char *err, size_t errlen)
{
	cluster *c = calloc(1, sizeof(*c));
	member *self;
	size_t plen = strlen(dir) + sizeof(MEMBERS_FILE) + 2;
	bool self_new;
	int rc;

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->w = w;
	c->log = log;
	c->hooks = *hooks;
	c->probe_interval = cfg->probe_interval;
	c->probe_timeout = cfg->probe_timeout;
	c->probe_indirect = cfg->probe_indirect;
	c->suspect_timeout = cfg->suspect_timeout;
	c->push_pull_interval = cfg->push_pull_interval;
	snprintf(c->self_id, sizeof(c->self_id), "%s", self_id);
	c->self_actor = self_actor;
	msgpack_sbuffer_init(&c->sb);
	c->path = malloc(plen);
	if (c->path == NULL ||
	    (cfg->seeds != NULL && cfg->seeds[0] != '\0' && (c->seeds = strdup(cfg->seeds)) == NULL)) {
		cluster_close(c);
		return -ENOMEM;
	}
	snprintf(c->path, plen, "%s/%s", dir, MEMBERS_FILE);
	c->ring_size = cfg->ring_size;
	c->n_val = cfg->n_val;
	if ((rc = epochs_new(&c->ep, c->ring_size, c->n_val)) != 0) {
		cluster_close(c);
		return rc;
	}
	c->rng = (w->ops->wall_ms(w) ^ siphash24(&(siphash_key){ 0x6475, 0x6b76 }, self_id,
						 strlen(self_id))) | 1;
	rc = load(c, err, errlen);
	if (rc != 0 && rc != -ENOENT) {
		cluster_close(c);
		return rc;
	}
	c->fresh = rc == -ENOENT;
	self_new = find_index(c, self_id, strlen(self_id)) < 0;
	self = add_member(c, self_id, strlen(self_id));
	if (self == NULL) {
		cluster_close(c);
		return -ENOMEM;
	}
	if (keep_addr && self->addr[0] != '\0')
		self_addr = self->addr;
	if (self_new || strcmp(self->addr, self_addr) != 0) {
		uint64_t v = 0;

		for (size_t i = 0; i < c->n; i++)
			if (c->m[i].version > v)
				v = c->m[i].version;
		if (self_new)
			self->status = MEMBER_VALID;
		self->version = v + 1;
		if (self->addr != self_addr)
			snprintf(self->addr, sizeof(self->addr), "%s", self_addr);
	}
	/* NODE names the data directory; a record from MEMBERS format 1 has
	 * no actor yet */
	self->actor = self_actor;
	self->liveness = LIVE_UP;
	/* Whatever the others last declared us (at most the incarnation we
	 * saved), the next one overrides it: they see us up at our first
	 * message instead of after a refutation. */
	self->incarnation++;
	if (self->has_progress)
		c->mine = self->progress;   /* reports go on above the saved one */
	for (size_t i = 0; i < c->n; i++)
		if (c->m[i].has_progress && i != c->self) {
			epoch_progress ep = to_epochs(&c->m[i].progress);

			(void)epochs_note(c->ep, c->m[i].id, &ep);
		}
	c->joined = true;
	*out = c;
	return 0;
}

/* Seeds are for a node with nothing to lose: alone (no other member that
 * is not removed), in the ring, and holding no data -- a new node, or one
 * started before without seeds.  Otherwise joining through them would
 * strand what it has: say why they are ignored, and what to do. */
static bool use_seeds(cluster *c)
{
	uint64_t keys = c->hooks.local_keys != NULL ? c->hooks.local_keys(c->hooks.ctx) : 0;
	size_t others = 0;

	if (c->seeds == NULL)
		return false;
	for (size_t i = 0; i < c->n; i++)
		others += i != c->self && c->m[i].status != MEMBER_REMOVED;
	if (others > 0)
		logc(c, DKV_LOG_INFO, "seeds ignored: this node already belongs to a cluster "
		     "(%zu other members in %s); seeds are for a new node.  To move it to "
		     "another cluster, use `dynkv-admin join SEED`", others, c->path);
	else if (c->m[c->self].status == MEMBER_REMOVED)
		logc(c, DKV_LOG_WARNING, "seeds ignored: this node was removed from its "
		     "cluster; bring it back with `dynkv-admin join SEED`");
	else if (keys > 0)
		logc(c, DKV_LOG_WARNING, "seeds ignored: this node is alone but holds %" PRIu64
		     " keys, and seeds are for a node that holds nothing.  To join a cluster "
		     "with them, use `dynkv-admin join SEED`", keys);
	else
		return true;
	return false;
}

int cluster_start(cluster *c, char *err, size_t errlen)
{
	world *w = c->w;
	int rc;

	if (c->started)
		return 0;
	rc = save(c);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", c->path, dkv_strerror(rc));
		return rc;
	}
	c->started = true;
	note_self_status(c);
	if (use_seeds(c)) {
		c->joined = false;
		c->seed_timer = w->ops->timer_add(w, 0, seed_cb, c);
	}
	epochs_step(c);   /* the first epoch of a new cluster, or of an older MEMBERS */
	/* the first probe and exchange right away: a restarted node is seen
	 * up, and learns what changed while it was away, at once */
	c->probe_timer = w->ops->timer_add(w, 0, probe_cb, c);
	c->pushpull_timer = w->ops->timer_add(w, c->fresh ? c->push_pull_interval : 0,
					       pushpull_cb, c);
	return 0;
}

const char *cluster_conflict(const cluster *c)
{
	return c->conflict;
}

void cluster_close(cluster *c)
{
	if (c == NULL)
		return;
	if (c->w != NULL)
		stop_timers(c);
	free_round(c);
	epochs_free(c->ep);
	free(c->conflict);
	free(c->m);
	free(c->seeds);
	free(c->path);
	msgpack_sbuffer_destroy(&c->sb);
	free(c);
}
