/*
 * resp.h -- the node's Redis protocol face (dynkv-resp(7)): RESP2 and
 * RESP3 for redis-cli, redis-benchmark and every Redis client library.
 *
 * A thin layer, like the HTTP face (http.h): each command becomes the
 * frames a dynkv client would send (proto.h: GET, PUT, DELETE), handed to
 * node_request() under client ids of its own (NET_LOCAL_BIT with face
 * NET_LOCAL_RESP, net.h); the node's replies come back through
 * net_set_local() and become the Redis replies.  So quorums, timeouts,
 * contexts, siblings, replace mode, limits and errors are the
 * coordinator's; this module translates, and keeps each connection's
 * commands in order:
 *
 *   - replies leave in the order the commands came (a pipeline's answers
 *     are the pipeline's order);
 *   - commands of one connection run at once (RESP_CONN_INFLIGHT at most)
 *     unless they touch a key in common and one of them writes it: then
 *     the later one starts only once the earlier one is answered, so a
 *     connection reads its own writes and its writes land in its order.
 *
 * What Redis's commands mean here (dynkv-resp(7) is the full text):
 *   GET, MGET, EXISTS   reads with the connection's R and PR; a key with
 *                       concurrent values (siblings) answers an error
 *                       naming DYNKV.GET, or the newest (resp_siblings)
 *   SET, MSET           replace-mode puts (dynkv put): the value replaces
 *                       what the coordinator read; SET ... GET reads, then
 *                       writes with what it read
 *   DEL                 reads each key, then deletes what it read (so it
 *                       can count the keys it removed)
 *   DYNKV.QUORUM R W [PR PW], DYNKV.GET, DYNKV.PUT, DYNKV.DEL
 *                       the connection's quorums; every sibling with the
 *                       context; writes with a context
 *
 * LIMITS
 *   resp_listen must be a loopback address until the face has
 *   authentication.  A request of more than max_frame bytes, a bulk
 *   string of more, more than RESP_MAX_ARGS arguments, or an inline line
 *   of more than RESP_MAX_INLINE bytes is a protocol error (answered, then
 *   the connection closed, as Redis does).  resp_max_connections
 *   connections at once; one more is told "max number of clients reached"
 *   and closed.  A connection whose unread replies pass RESP_OUTPUT_PAUSE
 *   bytes is not read until they drain (back-pressure, not a close).
 *
 * Loop thread only.  Not part of the simulated world: the face needs
 * libevent's bufferevents and the production net.
 */
#ifndef DKV_RESP_H
#define DKV_RESP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "dkv_config.h"
#include "log.h"
#include "net.h"
#include "node.h"

#define RESP_MAX_ARGS       16385u          /* MSET of 8192 pairs */
#define RESP_MAX_INLINE     (64u * 1024u)
#define RESP_MAX_PENDING    65536u          /* node requests waiting, all connections */
#define RESP_CONN_INFLIGHT  128u            /* commands one connection runs at once */
#define RESP_OUTPUT_PAUSE   (1u << 20)      /* unsent reply bytes that pause reading */

typedef struct resp_face resp_face;

/* Bind the face's address (dkv_config_resp_listen) on base and serve nd
 * (whose net is nt).  0, or an error with the reason in err: DKV_EINVAL
 * for an address that is not loopback or does not resolve, -errno when
 * it cannot be bound ("resp_listen 127.0.0.1:9070: Address already in
 * use"). */
int resp_open(resp_face **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	      net *nt, node *nd, char *err, size_t errlen);
/* The address it serves on ("127.0.0.1:9070"). */
const char *resp_address(const resp_face *f);
/* Shutting down: no new connection; a new command is answered with an
 * error; commands waiting for the node are answered when it answers. */
void resp_drain(resp_face *f);
/* Node requests waiting for an answer. */
size_t resp_pending(const resp_face *f);
/* Unsent reply bytes over every connection. */
size_t resp_pending_output(const resp_face *f);
/* Connections open. */
size_t resp_connections(const resp_face *f);
/* Close every connection, stop listening, free. */
void resp_close(resp_face *f);

#endif /* DKV_RESP_H */
