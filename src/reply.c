#include "config.h"
/*
 * reply.c -- answers to clients and forwarders.  See reply.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "peer.h"
#include "proto.h"
#include "reply.h"

/* A request forwarded to this node: where its answer goes. */
typedef struct remote {
	const char *addr;          /* interned; NULL when the entry is free */
	uint64_t fid;              /* the forwarder's id for it */
} remote;

struct reply {
	world *w;
	const char *const *self;   /* our address (borrowed) */
	dkv_log *log;
	msgpack_sbuffer sb;        /* the answer being built */
	msgpack_sbuffer pb;        /* a FWDREPLY being built */
	remote *remotes;
	size_t nremotes;
	uint64_t errors;           /* ERROR frames sent */
};

int reply_new(reply **out, world *w, const char *const *self, dkv_log *log)
{
	reply *rp = calloc(1, sizeof(*rp));

	*out = rp;
	if (rp == NULL)
		return -ENOMEM;
	rp->w = w;
	rp->self = self;
	rp->log = log;
	msgpack_sbuffer_init(&rp->sb);
	msgpack_sbuffer_init(&rp->pb);
	return 0;
}

void reply_free(reply *rp)
{
	if (rp == NULL)
		return;
	msgpack_sbuffer_destroy(&rp->sb);
	msgpack_sbuffer_destroy(&rp->pb);
	free(rp->remotes);
	free(rp);
}

msgpack_sbuffer *reply_buf(reply *rp)
{
	rp->sb.size = 0;
	return &rp->sb;
}

void reply_frame(reply *rp, uint64_t client, const void *frame, size_t len)
{
	if (client & REPLY_REMOTE_BIT) {
		size_t i = (size_t)(client & ~REPLY_REMOTE_BIT);
		remote *r = i < rp->nremotes ? &rp->remotes[i] : NULL;

		if (r == NULL || r->addr == NULL)
			return;
		rp->pb.size = 0;
		if (peer_encode_fwdreply(&rp->pb, r->fid, *rp->self, frame, len) == 0)
			(void)rp->w->ops->send(rp->w, r->addr, rp->pb.data, rp->pb.size);
		r->addr = NULL;
		return;
	}
	rp->w->ops->reply(rp->w, client, frame, len);
}

void reply_send_buf(reply *rp, uint64_t client)
{
	reply_frame(rp, client, rp->sb.data, rp->sb.size);
	rp->sb.size = 0;
}

void reply_error(reply *rp, uint64_t client, uint64_t id, uint32_t code, const char *fmt, ...)
{
	char msg[PROTO_MAX_MESSAGE];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rp->sb.size = 0;
	if (proto_encode_error(&rp->sb, id, code, msg) != 0) {
		dkv_log_opt(rp->log, DKV_LOG_ERROR, "out of memory encoding an error reply");
		return;
	}
	rp->errors++;
	reply_send_buf(rp, client);
}

void reply_store_error(reply *rp, uint64_t client, uint64_t id, int rc, const char *what)
{
	reply_error(rp, client, id, rc == DKV_ETOOBIG ? PROTO_ERR_TOOBIG : PROTO_ERR_STORAGE,
		    "%s: %s", what, dkv_strerror(rc));
}

void reply_error_frame(reply *rp, uint32_t code, const char *msg, const void **frame,
		       size_t *len)
{
	rp->sb.size = 0;
	if (proto_encode_error(&rp->sb, 0, code, msg) != 0) {
		*frame = NULL;
		*len = 0;
		return;
	}
	rp->errors++;
	*frame = rp->sb.data;
	*len = rp->sb.size;
}

uint64_t reply_remote(reply *rp, const char *from, uint64_t fid)
{
	size_t i;

	for (i = 0; i < rp->nremotes && rp->remotes[i].addr != NULL; i++)
		;
	if (i == rp->nremotes) {
		remote *r = realloc(rp->remotes, (rp->nremotes + 1) * sizeof(*r));

		if (r == NULL)
			return 0;
		rp->remotes = r;
		rp->nremotes++;
	}
	rp->remotes[i].addr = from;
	rp->remotes[i].fid = fid;
	return REPLY_REMOTE_BIT | i;
}

uint64_t reply_errors(const reply *rp)
{
	return rp->errors;
}
