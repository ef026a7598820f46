/*
 * reply.h -- answers to clients: a connection of this node's world, or a
 * node that forwarded the request here (its one answer travels back in a
 * FWDREPLY, dynkv-protocol(7)).
 *
 * CLIENT IDS
 *   The world names its connections with ids below 2^63 (world.h).  A
 *   request forwarded by a peer gets an id with bit 63 set from
 *   reply_remote(): its low bits index a table of (forwarder, its request
 *   id).  The first answer to such an id goes back to the forwarder and
 *   frees the entry; a later one (there should be none) is dropped.
 *
 * The reply being built lives in one buffer (reply_buf), reused by every
 * answer: build, send, and nothing in between.  Loop thread only.
 */
#ifndef DKV_REPLY_H
#define DKV_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "log.h"
#include "world.h"

#define REPLY_REMOTE_BIT (1ull << 63)   /* client ids of forwarded requests */

typedef struct reply reply;

/* Answers through w, as the node at *self (borrowed: the node's listen
 * address, for FWDREPLY).  0 or -ENOMEM. */
int reply_new(reply **out, world *w, const char *const *self, dkv_log *log);
void reply_free(reply *rp);

/* The buffer to build an answer in, emptied. */
msgpack_sbuffer *reply_buf(reply *rp);
/* Send what reply_buf() holds to client, and empty it. */
void reply_send_buf(reply *rp, uint64_t client);
/* Send a whole frame (borrowed for the call) to client. */
void reply_frame(reply *rp, uint64_t client, const void *frame, size_t len);
/* Send an ERROR frame for request id with a printf-style message. */
void reply_error(reply *rp, uint64_t client, uint64_t id, uint32_t code, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* The ERROR for a failed store call: TOOBIG or STORAGE, "what: reason". */
void reply_store_error(reply *rp, uint64_t client, uint64_t id, int rc, const char *what);
/* An ERROR frame with request id 0 into the buffer: *frame NULL on ENOMEM
 * (node_error_frame). */
void reply_error_frame(reply *rp, uint32_t code, const char *msg, const void **frame,
		       size_t *len);

/* A client id for a request that `from` (interned: it must outlive the
 * entry) forwarded with its id fid; 0 on ENOMEM. */
uint64_t reply_remote(reply *rp, const char *from, uint64_t fid);

/* Error frames sent so far. */
uint64_t reply_errors(const reply *rp);

#endif /* DKV_REPLY_H */
