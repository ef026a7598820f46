/*
 * test_durable.c -- sync batches (src/durable.c) on the simulated world:
 * a waiter is called only after a batch that began after its call has
 * synced every store dirty then; one batch at a time; group commit; the
 * interval timer; errors reach every waiter of the batch.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkv_config.h"
#include "durable.h"
#include "error.h"
#include "object.h"
#include "simworld.h"
#include "vnode.h"

static char dir[64];
static simworld *sim;
static vnode_set *vs;
static durable *dur;

/* fdatasync fails while fail_syncs is set, as a disk error would: the
 * store then fails for good (bitcask.h), as the real one does. */
static bool fail_syncs;
static bool store_failed;   /* the test made a store fail for good */
static bcio io;

static int flaky_fdatasync(int fd)
{
	if (fail_syncs) {
		errno = EIO;
		return -1;
	}
	return bcio_default()->fdatasync(fd);
}

static void setup(void)
{
	vnode_config c = { 0 };

	snprintf(dir, sizeof(dir), "/dev/shm/dkv-durable-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	sim = sim_new(5);
	cr_assert_not_null(sim);
	sim_set_sync_delay(sim, 10, 10);
	c.dir = dir;
	c.ring_size = 64;
	c.actor = 1;
	c.max_key_size = 1024;
	c.max_object = 1 << 20;
	c.vclock_max = 50;
	object_limits_init(&c.olim);
	c.w = sim_world(sim);
	io = *bcio_default();
	io.fdatasync = flaky_fdatasync;
	c.io = &io;
	cr_assert_eq(vnode_set_open(&vs, &c), 0);
}

static void teardown(void)
{
	char cmd[128];

	while (dur != NULL && durable_running(dur))
		cr_assert(sim_step(sim));
	durable_free(dur);
	dur = NULL;
	while (vnode_busy(vs))
		cr_assert(sim_step(sim));
	/* a store whose sync failed fails its close too (bitcask.h) */
	cr_assert(vnode_set_close(vs) == 0 || store_failed);
	store_failed = false;
	sim_free(sim);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(durable, .init = setup, .fini = teardown);

static void append(uint32_t p)
{
	static const char obj[] = "\x93\x01\x90\x90";   /* any bytes: vnode stores them */

	cr_assert_eq(vnode_store(vs, p, "k", 1, obj, sizeof(obj) - 1), 0);
}

typedef struct waiter {
	durable_waiter wt;
	int calls;
	int rc;
	uint64_t at;                /* virtual time of the call */
} waiter;

static void done(void *arg, int rc)
{
	waiter *w = arg;

	w->calls++;
	w->rc = rc;
	w->at = sim_now(sim);
}

static void run_all(void)
{
	for (int k = 0; k < 1000 && durable_running(dur); k++)
		cr_assert(sim_step(sim));
	cr_assert_not(durable_running(dur));
}

Test(durable, a_waiter_is_called_after_a_batch_that_covers_its_append)
{
	waiter a = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_ALWAYS, 0, NULL), 0);
	append(3);
	durable_wait(dur, &a.wt, done, &a);
	cr_assert_eq(a.calls, 0, "called before any sync");
	cr_assert(durable_running(dur));
	run_all();
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(a.rc, 0);
	cr_assert_geq(a.at, 10, "called at %llu ms, the sync takes 10", (unsigned long long)a.at);
	cr_assert_eq(durable_batches(dur), 1);
}

Test(durable, with_nothing_dirty_and_no_batch_running_a_waiter_is_called_at_once)
{
	waiter a = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_ALWAYS, 0, NULL), 0);
	durable_wait(dur, &a.wt, done, &a);
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(a.rc, 0);
}

/* A waiter that appended nothing while a batch runs may be acknowledging
 * what that batch is syncing: it waits for the batch's end. */
Test(durable, a_waiter_during_a_batch_waits_for_the_next_and_writers_share_it)
{
	waiter a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_ALWAYS, 0, NULL), 0);
	append(1);
	durable_wait(dur, &a.wt, done, &a);
	/* during a's batch: an append elsewhere, two writers, one without */
	append(2);
	durable_wait(dur, &b.wt, done, &b);
	append(2);
	durable_wait(dur, &c.wt, done, &c);
	durable_wait(dur, &d.wt, done, &d);
	cr_assert_eq(b.calls + c.calls + d.calls, 0, "called inside the running batch");
	run_all();
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(b.calls, 1);
	cr_assert_eq(c.calls, 1);
	cr_assert_eq(d.calls, 1);
	cr_assert_gt(b.at, a.at, "b was covered by a's batch, which began before its append");
	cr_assert_eq(b.at, c.at, "group commit: one batch for both");
	cr_assert_eq(d.at, c.at);
	cr_assert_eq(durable_batches(dur), 2);
}

Test(durable, a_failed_sync_reaches_every_waiter_of_its_batch)
{
	waiter a = { 0 }, b = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_ALWAYS, 0, NULL), 0);
	sim_fail_syncs(sim, -EIO);
	append(1);
	durable_wait(dur, &a.wt, done, &a);
	durable_wait(dur, &b.wt, done, &b);
	run_all();
	cr_assert_eq(a.rc, -EIO);
	cr_assert_eq(b.rc, -EIO);
	/* a failed batch is not retried in a loop with nobody waiting */
	uint64_t n = durable_batches(dur);

	sim_run_for(sim, 1000);
	cr_assert_eq(durable_batches(dur), n, "%llu batches in a second",
		     (unsigned long long)(durable_batches(dur) - n));
	sim_fail_syncs(sim, 0);
}

/* A waiter queued while a batch fails acknowledges what that batch was
 * syncing: it must hear the failure, not the success of a next batch that
 * finds nothing dirty. */
Test(durable, a_waiter_queued_during_a_failed_batch_hears_the_failure)
{
	waiter a = { 0 }, b = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_ALWAYS, 0, NULL), 0);
	append(1);
	fail_syncs = true;
	durable_wait(dur, &a.wt, done, &a);
	durable_wait(dur, &b.wt, done, &b);   /* queued while a's batch runs */
	for (int k = 0; k < 1000 && a.calls == 0; k++)
		cr_assert(sim_step(sim));
	fail_syncs = false;   /* one error: the store stays failed (bitcask.h) */
	store_failed = true;
	run_all();
	cr_assert_neq(a.rc, 0);
	cr_assert_neq(b.rc, 0, "b was acknowledged although what it covers failed to sync");
}

Test(durable, the_interval_policy_syncs_dirty_stores_on_its_timer)
{
	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_INTERVAL, 100, NULL), 0);
	append(7);
	cr_assert(vnode_any_dirty(vs));
	sim_run_for(sim, 99);
	cr_assert_eq(durable_batches(dur), 0, "synced before its interval");
	sim_run_for(sim, 50);
	cr_assert_eq(durable_batches(dur), 1);
	cr_assert_not(vnode_any_dirty(vs));
	sim_run_for(sim, 500);
	cr_assert_eq(durable_batches(dur), 1, "a batch with nothing dirty");
}

/* Under sync = interval a batch that ends with appends made meanwhile and
 * nobody waiting does not start another: those wait for the timer.  (The
 * old rule chained batches back to back on a busy node: every store was
 * synced all the time, 1,600 fdatasyncs a second at 10k ops/s.) */
Test(durable, the_interval_policy_does_not_chain_batches_for_appends_nobody_waits_for)
{
	waiter a = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_INTERVAL, 100, NULL), 0);
	append(1);
	durable_wait(dur, &a.wt, done, &a);      /* a forced batch at 0 */
	cr_assert(durable_running(dur));
	append(2);                               /* during it, nobody waits */
	run_all();
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(durable_batches(dur), 1);
	cr_assert(vnode_any_dirty(vs));
	sim_run_for(sim, 50);
	cr_assert_eq(durable_batches(dur), 1, "a batch for appends nobody waits for, before the timer");
	cr_assert(vnode_any_dirty(vs));
	sim_run_for(sim, 100);
	cr_assert_eq(durable_batches(dur), 2, "the timer's batch");
	cr_assert_not(vnode_any_dirty(vs));
}

/* durable_wait_next under sync = interval starts no batch: its waiter is
 * called after the next tick's batch, which covers its append; under
 * sync = always it is durable_wait. */
Test(durable, a_next_batch_waiter_rides_the_timer_under_interval)
{
	waiter a = { 0 }, b = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_INTERVAL, 100, NULL), 0);
	sim_run_for(sim, 20);
	append(5);
	durable_wait_next(dur, &a.wt, done, &a);
	cr_assert_not(durable_running(dur), "a batch started for a next-batch waiter");
	sim_run_for(sim, 60);
	cr_assert_eq(a.calls, 0, "called before the tick's batch");
	cr_assert_eq(durable_batches(dur), 0);
	sim_run_for(sim, 40);                    /* the tick at 100, its sync 10 ms */
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(a.rc, 0);
	cr_assert_geq(a.at, 110, "called at %llu ms, before the tick's sync ended",
		      (unsigned long long)a.at);
	cr_assert_eq(durable_batches(dur), 1, "one batch: the timer's");
	cr_assert_not(vnode_any_dirty(vs));
	/* a tick that finds a batch running: the waiter still gets one
	 * that begins after its append */
	sim_run_for(sim, 75);                    /* t = 195 */
	append(6);
	durable_wait(dur, &b.wt, done, &b);      /* forced batch, 195-205 */
	append(7);
	durable_wait_next(dur, &a.wt, done, &a); /* the tick at 200 meets b's batch */
	sim_run_for(sim, 30);
	cr_assert_eq(b.calls, 1);
	cr_assert_eq(a.calls, 2);
	cr_assert_gt(a.at, b.at, "covered by b's batch, which began before its append");
	cr_assert_not(vnode_any_dirty(vs));
}

Test(durable, a_next_batch_waiter_under_always_is_a_plain_waiter)
{
	waiter a = { 0 };

	cr_assert_eq(durable_new(&dur, sim_world(sim), vs, 64, DKV_SYNC_ALWAYS, 0, NULL), 0);
	append(3);
	durable_wait_next(dur, &a.wt, done, &a);
	cr_assert(durable_running(dur));
	run_all();
	cr_assert_eq(a.calls, 1);
	cr_assert_eq(durable_batches(dur), 1);
}
