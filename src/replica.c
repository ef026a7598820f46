#include "config.h"
/*
 * replica.c -- replica reads and writes for peers, and pushes to them.
 * See replica.h.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "error.h"
#include "proto.h"
#include "replica.h"

/* An acknowledgement waiting for a durability batch. */
typedef struct pending_ack {
	durable_waiter wt;
	replica *r;
	const char *to;        /* interned */
	uint64_t pid;          /* the coordinator's id */
	uint64_t started_us;   /* when the RPUT came */
} pending_ack;

struct replica {
	replica_env env;
	msgpack_sbuffer pb;    /* a peer message being built */
	replica_stats st;
	hist *get_us, *put_us; /* time to answer RGET, RPUT (its RACK) */
};

int replica_new(replica **out, const replica_env *env)
{
	replica *r = calloc(1, sizeof(*r));

	*out = r;
	if (r == NULL)
		return -ENOMEM;
	r->env = *env;
	msgpack_sbuffer_init(&r->pb);
	if (hist_new(&r->get_us) != 0 || hist_new(&r->put_us) != 0) {
		replica_free(r);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

void replica_free(replica *r)
{
	if (r == NULL)
		return;
	msgpack_sbuffer_destroy(&r->pb);
	hist_free(r->get_us);
	hist_free(r->put_us);
	free(r);
}

static uint64_t now_us(const replica *r)
{
	return r->env.w->ops->now_us(r->env.w);
}

static void send_rack(replica *r, const char *to, uint64_t pid, uint32_t code,
		      uint64_t started_us)
{
	hist_record(r->put_us, now_us(r) - started_us);
	r->pb.size = 0;
	if (peer_encode_rack(&r->pb, pid, *r->env.self, code) == 0)
		(void)r->env.w->ops->send(r->env.w, to, r->pb.data, r->pb.size);
}

/* The store a peer's RGET or RPUT is for: the key's partition, or, for a
 * write (or read) a coordinator sends to us as a fallback, our hint store
 * for its owner (handoff.h; create: made if need be). */
static int store_of(replica *r, const peer_msg *pm, bool create, uint32_t *p)
{
	if (pm->owner[0] != '\0' && strcmp(pm->owner, r->env.node_id) != 0)
		return handoff_store(r->env.ho, pm->owner, create, p);
	*p = placement_partition(r->env.pl, pm->key, pm->keylen);
	return 0;
}

void replica_rget(replica *r, const peer_msg *pm)
{
	uint32_t p;
	void *val = NULL;
	size_t vlen = 0;
	uint32_t code = 0;
	uint64_t t0 = now_us(r);
	int rc;

	if (pm->keylen > r->env.cfg->max_key_size)
		rc = DKV_ETOOBIG;
	else if ((rc = store_of(r, pm, false, &p)) == 0)
		rc = vnode_get_raw(r->env.vs, p, pm->key, pm->keylen, &val, &vlen);
	if (rc != 0 && rc != DKV_ENOTFOUND)
		code = proto_error_from_dkv(rc);
	r->pb.size = 0;
	if (peer_encode_rvalue(&r->pb, pm->id, *r->env.self, code,
			       rc == 0 ? (val ? val : "") : NULL, vlen) == 0)
		(void)r->env.w->ops->send(r->env.w, pm->from, r->pb.data, r->pb.size);
	free(val);
	r->st.reads++;
	hist_record(r->get_us, now_us(r) - t0);
}

static void ack_synced(void *arg, int rc)
{
	pending_ack *a = arg;

	a->r->st.acks_waiting--;
	send_rack(a->r, a->to, a->pid, rc == 0 ? 0 : PROTO_ERR_STORAGE, a->started_us);
	free(a);
}

void replica_rput(replica *r, const peer_msg *pm)
{
	object *obj = NULL;
	bool wrote;
	const char *from;
	uint32_t p = 0;
	uint64_t t0 = now_us(r);
	int rc;

	if (pm->keylen > r->env.cfg->max_key_size)
		rc = DKV_ETOOBIG;
	else
		rc = object_decode(pm->data, pm->datalen, &r->env.olim, &obj);
	if (rc == 0)
		rc = store_of(r, pm, true, &p);
	if (rc == 0)
		rc = vnode_merge(r->env.vs, p, pm->key, pm->keylen, obj, &wrote);
	object_free(obj);
	r->st.writes++;
	if (rc != 0)
		dkv_log_opt(r->env.log, DKV_LOG_WARNING, "replica write from %s failed: %s",
			    pm->from, dkv_strerror(rc));
	if (!pm->flag)
		return;
	/* Even when the merge appended nothing, what the ack covers may have
	 * been appended moments before (a read repair of the same version)
	 * and not be synced yet: the ack waits for a batch either way (one
	 * that ends at once when nothing is dirty and none runs). */
	if (rc == 0 && r->env.cfg->sync == DKV_SYNC_ALWAYS &&
	    (from = placement_intern(r->env.pl, pm->from)) != NULL) {
		pending_ack *a = malloc(sizeof(*a));

		if (a != NULL) {
			a->r = r;
			a->to = from;
			a->pid = pm->id;
			a->started_us = t0;
			r->st.acks_waiting++;
			durable_wait(r->env.dur, &a->wt, ack_synced, a);
			return;
		}
		rc = -ENOMEM;
	}
	send_rack(r, pm->from, pm->id, rc == 0 ? 0 : proto_error_from_dkv(rc), t0);
}

int replica_push(replica *r, const char *to, uint64_t pid, const void *key, size_t klen,
		 const void *enc, size_t len, bool want_ack, const char *owner)
{
	int rc;

	r->pb.size = 0;
	rc = peer_encode_rput(&r->pb, pid, *r->env.self, key, klen, enc, len, want_ack, owner);
	if (rc == 0)
		rc = r->env.w->ops->send(r->env.w, to, r->pb.data, r->pb.size);
	return rc;
}

void replica_stats_get(const replica *r, replica_stats *st)
{
	*st = r->st;
}

const hist *replica_get_latency(const replica *r)
{
	return r->get_us;
}

const hist *replica_put_latency(const replica *r)
{
	return r->put_us;
}
