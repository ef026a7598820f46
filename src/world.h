/*
 * world.h -- everything the node's logic may ask of the outside world.
 *
 * The request coordinator (and, with the cluster, membership, gossip,
 * handoff and anti-entropy) never calls the clock, timers, sockets or fsync
 * directly.  It calls these few operations on the `world` its node carries
 * (DESIGN section 8).  Two bindings exist:
 *
 *   net.c      production: libevent timers, TCP connections, a small pool
 *              of threads for fdatasync;
 *   tests/unit/simworld.c
 *              a seeded single-threaded scheduler with virtual time, in
 *              which whole nodes run inside one test process and every run
 *              replays from its seed.
 *
 * RULES FOR THE NODE'S SIDE
 *   - Every callback a world makes (timer_fn, durable_fn) runs on the node's
 *     loop thread, never inside the call that scheduled it: a node may
 *     schedule from anywhere without re-entrancy surprises.
 *   - A cancelled timer's function is never called.  A timer fires once.
 *   - reply() takes a copy of the frame; a reply to a client that has gone
 *     is dropped silently (the world tracks clients by id, not pointer).
 *   - durable() makes every append made to the listed stores before the call
 *     durable, then calls done with 0 or the first error.  The stores must
 *     stay open until done runs.
 */
#ifndef DKV_WORLD_H
#define DKV_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "bitcask.h"

typedef struct world world;
typedef struct world_timer world_timer;

typedef void (*world_timer_fn)(void *arg);
typedef void (*world_durable_fn)(void *arg, int rc);

typedef struct world_ops {
	/* Monotonic milliseconds, for deadlines. */
	uint64_t (*now_ms)(world *w);
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
} world_ops;

struct world {
	const world_ops *ops;
};

#endif /* DKV_WORLD_H */
