/*
 * net.h -- the production world: libevent, TCP, and the node's one
 * background thread pool.
 *
 * One net per node, on one event_base, on one thread.  It listens on the
 * node's address, frames each connection's bytes (4-byte length, then the
 * payload handed to node_request()), and implements the world interface of
 * world.h for the node: the clock, timers, replies to clients by id,
 * messages to peers, datagrams, and durable() batches and work() jobs run
 * on a small thread pool whose results come back to the loop through a
 * pipe.
 *
 * THE POOL
 *   NET_POOL_THREADS sync threads and NET_POOL_WORK work threads,
 *   whatever the number of stores: the node's only threads besides the
 *   loop (its stores are opened with external_worker and MANUAL sync,
 *   bitcask.h).  A durable() batch is spread over the sync threads, one
 *   store per thread at a time, so its fdatasyncs run in parallel; work()
 *   jobs (hint files, merges, anti-entropy builds, handoff reads) run on
 *   the work threads, at nice NET_POOL_WORK_NICE (and the sync threads at
 *   NET_POOL_SYNC_NICE unless sync = always), so a long merge delays
 *   no write's acknowledgement and takes a core from the loops (this
 *   node's and, on a shared machine, other nodes') only when they leave
 *   it.  Jobs of each kind start in the order queued.  done runs on the loop, oldest first.
 *   When malloc fails, durable() and work() take a job from a reserve of
 *   NET_POOL_RESERVE made at net_open(); a durable batch is then synced on
 *   the loop, and done still runs from the loop later (world.h).  With the
 *   reserve used up too the process aborts.
 *
 * PEERS (world.h, PEERS)
 *   - Inbound: a peer's connection is accepted like a client's and its
 *     frames go to node_request(); it counts against max_connections.
 *   - Outbound: send() keeps one connection per peer address ("host:port"
 *     string, compared byte for byte: "localhost:7070" and
 *     "127.0.0.1:7070" are two peers).  The address is resolved with
 *     getaddrinfo() at each connect, on the loop: numeric addresses, the
 *     norm, cost nothing; a name blocks the loop while it resolves.  Only
 *     the first address found is tried.  Connects are non-blocking, with
 *     TCP_NODELAY; frames queue while connecting and are written in order,
 *     at once when the socket takes them, else when it becomes writable.
 *   - Limits: a send that would leave more than output_buffer_limit bytes
 *     unsent on that connection is refused (-ENOBUFS; the connection
 *     stays).  A connect that has not completed, or a connection that
 *     accepts no byte while frames wait, for write_timeout is failed.
 *   - Failure (connect error, read or write error, EOF, write_timeout):
 *     the socket is closed, unsent frames are dropped, node_peer_down() is
 *     called from a zero-delay timer (never inside send()), and sends are
 *     refused with -EAGAIN for a backoff of 100 ms, doubled per failure up
 *     to 5 s, back to 100 ms once a connect succeeds.  The first send after
 *     the backoff reconnects; nothing is retried before that.  A connect
 *     that fails at once (an address that does not resolve: DKV_EINVAL;
 *     -ENETUNREACH, ...) fails that send with the error, and the same
 *     backoff and node_peer_down() follow.
 *   - Outbound connections come from the listener's address (port 0)
 *     when it is a specific one, so a peer sees them, like the datagrams,
 *     come from the address the node serves on; from a wildcard listener
 *     the kernel picks.
 *   - Outbound connections are one-way: bytes that arrive on them are read
 *     only to see EOF and errors, and discarded; answers come as messages
 *     on the peer's own connection.  They do not count against
 *     max_connections; they do count in net_connections().  A peer's
 *     entry (its address and an empty buffer, about 300 bytes) stays until
 *     net_close().
 *   - UDP: net_start() binds a UDP socket to the listener's address and
 *     port; each datagram that arrives (up to 64 KiB) goes to
 *     node_datagram().  dgram() resolves its address as send() does, at
 *     every call, and sends from that socket; any error only logs at debug
 *     level (UDP is lossy by contract).
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
 *     cannot parse.  The TOOBIG error names the frame's size, max_frame and
 *     max_value_size ("request of 9000019 bytes is above max_frame (8388608
 *     bytes); a value may be at most max_value_size = 1048576 bytes"): the
 *     user who sent a big value learns which setting limits it.
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
/* Pool threads: fdatasync waits on the device, not a core, so more syncs
 * in flight than this machine's 2 cores pay: DESIGN section 6 measured 1
 * KiB write + fdatasync at 5.4k/s on one file, 13.7k/s over 8 files in
 * parallel, 21.6k/s over 64.  4 keeps the thread count a small constant
 * (a node had one thread per store before: 517 threads at ring_size 512)
 * while several syncs overlap; measure before raising it. */
#define NET_POOL_THREADS  4
/* Work threads: 1.  A merge is a long sequential read and write of one
 * store, using a core; one at a time keeps the other of the 2 cores for
 * the loop.  Stores wait their turn (a merge is due at most every
 * merge_check_ms per store); whether merges keep up under heavy overwrites
 * is not measured yet. */
#define NET_POOL_WORK     1
/* The work threads' nice value, above the process's.  At 0, the anti-entropy trees a node
 * builds when it starts (a full read of its data) and a handoff's reads
 * competed with every event loop for the cores; at 10 (CPU weight 110
 * against 1,024) they take what the loops leave, and still about a tenth
 * of a busy core, so merges are never starved. */
#define NET_POOL_WORK_NICE 10
/* The sync threads' nice value, above the process's, under sync =
 * interval and none; 0 under always, where a client waits on every sync.
 * Under interval no request waits on the timed sync (only a hint
 * delivery's answer does), and its fdatasyncs -- kernel CPU for the
 * writeback of a second's appends, on four threads at once -- took the
 * cores from the loops in bursts once a second.  tests/bench/healing.sh
 * drain at 2,500 ops/s: median p99 of the idle runs 2.0 ms against 5.5
 * at nice 0, of the drains 20 ms against 24 (RESULTS.md 2d).  At weight
 * 110 against 1,024 a sync still gets about a tenth of a busy core. */
#define NET_POOL_SYNC_NICE 10
/* Jobs set aside for when malloc fails (about 100 bytes each): a batch
 * and work jobs for half the stores of a default ring. */
#define NET_POOL_RESERVE  256

typedef struct net net;
struct node;

/* Make the world on base and start the pool (nothing is bound yet:
 * the node takes its data directory's lock first).  0 or an error with the
 * reason in err. */
int net_open(net **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	     char *err, size_t errlen);
/* The world the node is opened with. */
world *net_world(net *nt);
/* Bind cfg->listen, TCP and UDP (on the port TCP got), and start
 * accepting, handing frames and datagrams to nd.  0 or an error with the
 * reason in err ("listen 127.0.0.1:7070: Address already in use",
 * "listen 127.0.0.1:7070 (UDP): Address already in use"; DKV_EINVAL for an
 * address that does not parse or resolve); nothing stays bound then. */
int net_start(net *nt, struct node *nd, char *err, size_t errlen);
/* Stop accepting and stop reading requests (shutdown, first step).
 * Outbound peer connections and the UDP socket carry on: a draining node
 * may still need its peers. */
void net_stop_accepting(net *nt);
/* Client ids with NET_LOCAL_BIT set belong to an in-process face (the
 * HTTP face, http.h; the Redis protocol face, resp.h) that hands the node
 * requests itself: their replies go to the function set here for the
 * face, never to a connection.  Bit 61 says which face (NET_LOCAL_FACE);
 * a face picks the rest of its ids (below 2^61); replies for a face that
 * is gone, or to an id it no longer knows, are its business to drop. */
#define NET_LOCAL_BIT (UINT64_C(1) << 62)
#define NET_LOCAL_FACES 2u
#define NET_LOCAL_FACE(face) ((uint64_t)(face) << 61)
#define NET_LOCAL_HTTP 0u
#define NET_LOCAL_RESP 1u
typedef void (*net_local_fn)(void *ctx, uint64_t client, const void *frame, size_t len);
/* Send replies to the local ids of face (NET_LOCAL_HTTP, NET_LOCAL_RESP)
 * to fn(ctx, ...) (fn NULL: drop them). */
void net_set_local(net *nt, unsigned face, net_local_fn fn, void *ctx);
/* Unsent bytes over every connection: replies, and frames to peers. */
size_t net_pending_output(const net *nt);
/* Open connections: accepted ones and outbound peer ones (connecting or
 * up). */
size_t net_connections(const net *nt);
/* Close every connection and the UDP socket, stop the threads (after they
 * ran every queued job), free.  The node must be closed first (it may hold
 * timers of this world; every done of durable and work must have run),
 * and the loop must not run between the node's close and this call (a
 * pending node_peer_down() would reach the freed node). */
void net_close(net *nt);

#endif /* DKV_NET_H */
