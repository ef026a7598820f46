/*
 * world.h -- everything the node's logic may ask of the outside world.
 *
 * The request coordinator (and, with the cluster, membership, gossip,
 * handoff and anti-entropy) never calls the clock, timers, sockets or fsync
 * directly.  It calls these few operations on the `world` its node carries
 * (DESIGN section 8).  Two bindings exist:
 *
 *   net.c      production: libevent timers, TCP connections, and one
 *              small pool of threads per node for fdatasync batches and
 *              background work;
 *   tests/unit/simworld.c
 *              a seeded single-threaded scheduler with virtual time, in
 *              which whole nodes run inside one test process and every run
 *              replays from its seed.
 *
 * RULES FOR THE NODE'S SIDE
 *   - Every callback a world makes (timer_fn, durable_fn, work's done) runs
 *     on the node's loop thread, never inside the call that scheduled it: a
 *     node may schedule from anywhere without re-entrancy surprises.  This
 *     holds when the world runs out of memory too: durable() and work()
 *     cannot fail; the world still queues done for the loop (from a reserve
 *     set aside when it was made, running the job on the loop if need be).
 *   - A cancelled timer's function is never called.  A timer fires once.
 *   - reply() takes a copy of the frame; a reply to a client that has gone
 *     is dropped silently (the world tracks clients by id, not pointer).
 *   - Client ids the world hands to node_request() are always below 2^63,
 *     and an id is not reused while the connection it named could still be
 *     answered: bit 63 is the node's, which marks the requests it forwards.
 *   - durable() makes every append made to the listed stores before the call
 *     durable, then calls done with 0 or the first error.  The stores must
 *     stay open until done runs.
 *   - work() runs fn(arg) off the loop -- production: on a thread of the
 *     world's pool; simulation: at a virtual time drawn from the seed --
 *     then calls done(darg, rc) on the loop with fn's return value.  fn
 *     runs on another thread than the loop in production: it may touch
 *     only what is safe there (a bitcask: bitcask_work()); whatever it uses
 *     must stay alive until done runs.  Jobs may run in any order and
 *     several at once; a long one (a merge) does not hold up durable()
 *     batches.  The node must let every done run before the world closes.
 *
 * PEERS (the cluster)
 *   Nodes talk to each other in one-way messages: a request carries the
 *   sender's address and the answer comes back as another message the
 *   answering node sends.  So the world needs no request/reply pairing:
 *
 *   - send() queues one whole frame (length prefix included) for the peer
 *     at addr ("host:port", the peer's listen address) on the world's one
 *     pooled connection to it, connecting first if need be.  Frames to one
 *     peer arrive in the order sent, or not at all; nothing is retried
 *     (the node's timeouts and repair take care of loss).  Returns 0 when
 *     queued, or a negative error when the frame cannot be: -EAGAIN while
 *     the peer is in reconnect backoff, -ENOBUFS past the connection's
 *     output limit, -ENOMEM, or the error of a connect that failed at
 *     once (an unusable address).  A refused send means the frame is
 *     lost.
 *   - The receiving world hands such a frame to node_request() as it does
 *     a client's (peer message types are >= 128; the client id is that of
 *     the inbound connection and is not used for answers).
 *   - When a connection to a peer fails to connect, errors, or is closed
 *     by the peer, the world calls node_peer_down(node, addr) (on the loop,
 *     after the send that discovered it has returned).  Frames queued on it
 *     are dropped; the node fails the requests waiting on that peer at
 *     once instead of at their timeouts.  The world reconnects on the next
 *     send after a backoff (100 ms doubling to 5 s; reset by a success).
 *     Hearing from the peer (peer_heard) ends a backoff (but connects at
 *     most once per 100 ms): a node that restarted is answered at once,
 *     not up to 5 s later (its requests' answers were dropped until the
 *     backoff ran out).
 *   - dgram() sends one UDP datagram (gossip) to addr's port; it may be
 *     lost, duplicated or reordered.  Received datagrams go to
 *     node_datagram().
 */
#ifndef DKV_WORLD_H
#define DKV_WORLD_H

#include <stddef.h>
#include <stdint.h>

/* A store handle (bitcask.h); the world only passes it to bitcask_sync_now(). */
typedef struct bitcask bitcask;

typedef struct world world;
typedef struct world_timer world_timer;

typedef void (*world_timer_fn)(void *arg);
typedef void (*world_durable_fn)(void *arg, int rc);
/* A job for work(): runs off the loop; returns 0 or an error for done. */
typedef int (*world_work_fn)(void *arg);
typedef void (*world_done_fn)(void *arg, int rc);

typedef struct world_ops {
	/* Monotonic milliseconds, for deadlines. */
	uint64_t (*now_ms)(world *w);
	/* The same clock in microseconds, for latency figures. */
	uint64_t (*now_us)(world *w);
	/* Wall-clock milliseconds since the epoch, for object timestamps. */
	uint64_t (*wall_ms)(world *w);
	/* Call fn(arg) after ms milliseconds; NULL only on ENOMEM. */
	world_timer *(*timer_add)(world *w, uint64_t ms, world_timer_fn fn, void *arg);
	/* Cancel (and free) a timer that has not fired.  NULL is fine. */
	void (*timer_cancel)(world *w, world_timer *t);
	/* Send one whole frame to client connection `client`. */
	void (*reply)(world *w, uint64_t client, const void *frame, size_t len);
	/* fdatasync the stores (see the rules above); n >= 1. */
	void (*durable)(world *w, bitcask *const *stores, size_t n,
			world_durable_fn done, void *arg);
	/* Run fn(arg) off the loop, then done(darg, rc) on it (see the rules
	 * above). */
	void (*work)(world *w, world_work_fn fn, void *arg, world_done_fn done, void *darg);
	/* Queue a whole frame for the peer at addr (see PEERS above). */
	int (*send)(world *w, const char *addr, const void *frame, size_t len);
	/* Send one datagram to addr (see PEERS above). */
	void (*dgram)(world *w, const char *addr, const void *buf, size_t len);
	/* Open connections (clients and peers), for status reports. */
	size_t (*connections)(world *w);
	/* A message from the peer at addr has arrived: it is up, so a send to
	 * it should not wait out a reconnect backoff (see PEERS above).  May
	 * be NULL (a world without backoffs). */
	void (*peer_heard)(world *w, const char *addr);
} world_ops;

struct world {
	const world_ops *ops;
};

#endif /* DKV_WORLD_H */
