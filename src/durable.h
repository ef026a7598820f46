/*
 * durable.h -- durability batches: when may a write be acknowledged?
 *
 * sync = always: a write is acknowledged only after an fdatasync that
 * covers it.  A caller that has appended (vnode_store marks the store
 * dirty) and wants to answer calls durable_wait(); its function runs once
 * a batch that began after the call has synced every store dirty at that
 * moment.  One batch runs at a time (world->durable() syncs its stores in
 * parallel); waiters that arrive while it runs join the next one, which
 * covers everything they appended (group commit: one fdatasync per dirty
 * store per batch).  A waiter that appended nothing still waits for the
 * running batch to end, because what it acknowledges may have been
 * appended by someone else just before and be in that batch.  When a
 * batch fails, its stores are marked dirty again, so that the next batch
 * syncs them again and its waiters hear the error too (a store whose sync
 * failed refuses every later one, bitcask.h).
 * sync = interval: a timer starts a batch of the dirty stores every
 * sync_interval_ms; a write's acknowledgement waits for none.  Between
 * two ticks a batch runs only for a durable_wait caller; a
 * durable_wait_next caller joins the next tick's batch.  sync = none: no batches (rotation,
 * merge and close still sync).
 *
 * LIFECYCLE OF A WAITER
 *   idle --durable_wait--> queued --batch begins--> covered --batch ends-->
 *   fn(arg, rc) called, idle again.
 *   When no batch runs and no store is dirty, durable_wait calls fn at once,
 *   inside the call.  A waiter is the caller's memory (embed it); it must
 *   stay valid until fn runs, and cannot be cancelled: a request that gives
 *   up meanwhile (a timeout) waits for its waiter before it is freed.
 *
 * Loop thread only; fn runs on the loop.
 */
#ifndef DKV_DURABLE_H
#define DKV_DURABLE_H

#include <stdbool.h>
#include <stdint.h>

#include "dkv_config.h"
#include "log.h"
#include "hist.h"
#include "vnode.h"
#include "world.h"

typedef struct durable durable;

typedef void (*durable_fn)(void *arg, int rc);

typedef struct durable_waiter {
	struct durable_waiter *next;   /* in its batch (durable's) */
	durable_fn fn;                 /* called once, with 0 or the sync's error */
	void *arg;
} durable_waiter;

/* Batches of vs's dirty stores (ring_size partitions) through w, for
 * policy (DKV_SYNC_*) with interval_ms (for DKV_SYNC_INTERVAL: the timer
 * starts here).  0 or -ENOMEM. */
int durable_new(durable **out, world *w, vnode_set *vs, uint32_t ring_size, int policy,
		uint32_t interval_ms, dkv_log *log);
/* Free d.  No batch may be running (durable_running). */
void durable_free(durable *d);

/* Call fn(arg, rc) once every append made before this call is durable
 * (see LIFECYCLE above). */
void durable_wait(durable *d, durable_waiter *wt, durable_fn fn, void *arg);
/* The same, without starting a batch for it under sync = interval: fn
 * runs after the next timed batch (within sync_interval_ms and the
 * batch's own time), at no extra fdatasync.  Under the other policies,
 * durable_wait.  For bulk work that must be durable before it answers
 * but may wait (a handoff batch, handoff.h). */
void durable_wait_next(durable *d, durable_waiter *wt, durable_fn fn, void *arg);
/* The node is closing (its timers may never fire again: a crash in the
 * simulated world): the next-batch waiters get a batch now, and later
 * ones are plain waiters.  The caller then waits for !durable_running. */
void durable_quiesce(durable *d);
/* True iff a batch is running (the world holds the stores). */
bool durable_running(const durable *d);
/* Batches completed. */
uint64_t durable_batches(const durable *d);
/* Microseconds each batch that synced a store took, its fdatasyncs run in
 * parallel on the sync threads (borrowed for d's life). */
const hist *durable_sync_latency(const durable *d);

#endif /* DKV_DURABLE_H */
