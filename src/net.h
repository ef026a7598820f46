/*
 * net.h -- the production world: libevent, TCP, and a pool of sync threads.
 *
 * One net per node, on one event_base, on one thread.  It listens on the
 * node's address, frames each connection's bytes (4-byte length, then the
 * payload handed to node_request()), and implements the world interface of
 * world.h for the node: the clock, timers, replies to clients by id, and
 * fdatasync batches run on a small thread pool whose results come back to
 * the loop through a pipe.
 *
 * BACK-PRESSURE (per connection)
 *   - Reading pauses while more than NET_OUTPUT_PAUSE bytes of replies are
 *     unsent or NET_MAX_INFLIGHT requests are unanswered, and resumes when
 *     the replies drain below NET_OUTPUT_RESUME: a client that does not read
 *     stops being served; it cannot make the node buffer without bound.
 *   - A connection whose unsent replies would exceed output_buffer_limit is
 *     closed, and so is one that accepts no byte for write_timeout while
 *     replies wait.
 *   - A frame length of 0 or above max_frame is answered with an ERROR and
 *     the connection is closed once that is sent; so is anything the node
 *     cannot parse.
 *   - Past max_connections, a new connection gets an OVERLOAD error and is
 *     closed.
 *   An idle connection costs a registered read event, two empty evbuffers
 *   and its struct: a few hundred bytes.
 */
#ifndef DKV_NET_H
#define DKV_NET_H

#include <stddef.h>

#include <event2/event.h>

#include "dkv_config.h"
#include "log.h"
#include "world.h"

#define NET_OUTPUT_PAUSE  (1u << 20)
#define NET_OUTPUT_RESUME (256u << 10)
#define NET_MAX_INFLIGHT  1024u
#define NET_SYNC_THREADS  4

typedef struct net net;
struct node;

/* Make the world on base and start the sync threads (nothing is bound yet:
 * the node takes its data directory's lock first).  0 or an error with the
 * reason in err. */
int net_open(net **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	     char *err, size_t errlen);
/* The world the node is opened with. */
world *net_world(net *nt);
/* Bind cfg->listen and start accepting, handing frames to nd.  0 or an
 * error with the reason in err ("listen 127.0.0.1:7070: Address already in
 * use"; DKV_EINVAL for an address that does not parse or resolve). */
int net_start(net *nt, struct node *nd, char *err, size_t errlen);
/* Stop accepting and stop reading requests (shutdown, first step). */
void net_stop_accepting(net *nt);
/* Unsent reply bytes over every connection. */
size_t net_pending_output(const net *nt);
/* Open connections. */
size_t net_connections(const net *nt);
/* Close every connection, stop the threads, free.  The node must be closed
 * first (it may hold timers of this world). */
void net_close(net *nt);

#endif /* DKV_NET_H */
