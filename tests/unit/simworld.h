/*
 * simworld.h -- the simulated world of world.h for tests.
 *
 * A seeded, single-threaded scheduler with virtual time: timers and
 * durability batches are events in one queue ordered by (time, sequence),
 * and nothing happens until the test steps the queue.  A run is a pure
 * function of its seed, so a failing seed replays exactly.  Durability
 * batches complete after a delay drawn from the seed (sim_set_sync_delay)
 * by calling bitcask_sync_now() on each store; sim_fail_syncs() makes
 * them report an error instead.  Replies go to a callback the test sets.
 *
 * The network between nodes (loss, delay, duplication, reordering,
 * partitions) joins this file with the cluster.
 */
#ifndef DKV_SIMWORLD_H
#define DKV_SIMWORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world.h"

typedef struct simworld simworld;
typedef void (*sim_reply_fn)(void *ctx, uint64_t client, const void *frame, size_t len);

simworld *sim_new(uint64_t seed);
void sim_free(simworld *s);
world *sim_world(simworld *s);
void sim_on_reply(simworld *s, sim_reply_fn fn, void *ctx);
/* Durability batches take min..max virtual ms (uniform, from the seed). */
void sim_set_sync_delay(simworld *s, uint64_t min_ms, uint64_t max_ms);
/* From now on, durability batches fail with rc (0: succeed again). */
void sim_fail_syncs(simworld *s, int rc);
/* Run the next event, advancing virtual time to it; false if none. */
bool sim_step(simworld *s);
/* Run events up to virtual time now + ms (timers due later stay queued). */
void sim_run_for(simworld *s, uint64_t ms);
uint64_t sim_now(const simworld *s);
/* Events queued (timers not cancelled, batches not done). */
size_t sim_pending(const simworld *s);
/* A number from the run's generator (for the test's own choices). */
uint64_t sim_rand(simworld *s);

#endif /* DKV_SIMWORLD_H */
