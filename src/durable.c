#include "config.h"
/*
 * durable.c -- durability batches.  See durable.h.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "durable.h"
#include "error.h"

struct durable {
	world *w;
	vnode_set *vs;
	dkv_log *log;
	int policy;                /* DKV_SYNC_* */
	uint32_t interval_ms;
	durable_waiter *wait;      /* waiting for the next batch */
	durable_waiter **wait_tail;
	durable_waiter *run;       /* covered by the running batch */
	durable_waiter *later;     /* waiting for the next timed batch */
	durable_waiter **later_tail;
	bool tick_missed;          /* the timer fired while a batch ran */
	bool quiesced;             /* closing: nobody waits for the timer */
	bool running;              /* true iff the world is syncing a batch */
	bitcask **stores;          /* the running batch's stores (vnode_slots) */
	size_t nstores;            /* how many */
	world_timer *timer;        /* sync = interval */
	uint64_t batches;          /* completed */
	uint64_t started_us;       /* when the running batch started */
	hist *sync_us;             /* batches that synced something: their time */
};

static void batch_start(durable *d);

static void batch_done(void *arg, int rc)
{
	durable *d = arg;
	durable_waiter *wt = d->run;

	d->run = NULL;
	d->running = false;
	d->batches++;
	if (d->nstores > 0)
		hist_record(d->sync_us, d->w->ops->now_us(d->w) - d->started_us);
	vnode_synced(d->vs);
	if (rc != 0) {
		dkv_log_opt(d->log, DKV_LOG_ERROR, "fdatasync of a partition failed: %s",
			    dkv_strerror(rc));
		/* Waiters queued during this batch may be acknowledging what it
		 * failed to sync: their batch must sync these stores again (a
		 * failed store keeps failing) instead of finding nothing dirty. */
		vnode_redirty(d->vs, d->stores, d->nstores);
	}
	while (wt != NULL) {
		durable_waiter *next = wt->next;

		wt->next = NULL;
		wt->fn(wt->arg, rc);   /* may free wt */
		wt = next;
	}
	/* The next batch now if anything waits; under sync = always also if
	 * anything was appended meanwhile (but not only to retry a failed
	 * batch: its stores would fail again at once, in a loop).  Under
	 * sync = interval, appends nobody waits for wait for the timer: a
	 * busy node would otherwise sync every store back to back, all the
	 * time (and did: 1,600 fdatasyncs a second at 10k ops/s). */
	if (d->wait != NULL || (rc == 0 && (d->policy == DKV_SYNC_ALWAYS || d->tick_missed))) {
		d->tick_missed = false;
		batch_start(d);
	}
}

/* Start a batch of every dirty store, covering the waiting callers; at
 * most one runs at a time. */
static void batch_start(durable *d)
{
	size_t k;

	if (d->running || (!vnode_any_dirty(d->vs) && d->wait == NULL))
		return;
	k = d->nstores = vnode_take_dirty(d->vs, d->stores);
	d->run = d->wait;
	d->wait = NULL;
	d->wait_tail = &d->wait;
	d->running = true;
	d->started_us = d->w->ops->now_us(d->w);
	if (k == 0) {
		/* Nothing to sync: every append the waiters saw was covered
		 * by a batch that has ended. */
		batch_done(d, 0);
		return;
	}
	d->w->ops->durable(d->w, d->stores, k, batch_done, d);
}

/* The waiters for the next timed batch join the next batch. */
static void join_later(durable *d)
{
	if (d->later == NULL)
		return;
	*d->wait_tail = d->later;
	d->wait_tail = d->later_tail;
	d->later = NULL;
	d->later_tail = &d->later;
}

static void tick(void *arg)
{
	durable *d = arg;

	d->timer = d->w->ops->timer_add(d->w, d->interval_ms, tick, d);
	if (d->timer == NULL)
		dkv_log_opt(d->log, DKV_LOG_ERROR,
			    "out of memory re-arming the sync timer: interval syncs stop");
	/* the waiters for the next timed batch join it: now, or when the
	 * running one ends (batch_done starts the next when one waits, or
	 * when this tick found one running) */
	join_later(d);
	if (d->running)
		d->tick_missed = true;
	else
		batch_start(d);
}

int durable_new(durable **out, world *w, vnode_set *vs, uint32_t ring_size, int policy,
		uint32_t interval_ms, dkv_log *log)
{
	durable *d = calloc(1, sizeof(*d));

	(void)ring_size;   /* vnode_slots says how many stores a batch can hold */
	*out = NULL;
	if (d == NULL || (d->stores = calloc(vnode_slots(vs), sizeof(*d->stores))) == NULL ||
	    hist_new(&d->sync_us) != 0) {
		if (d != NULL)
			free(d->stores);
		free(d);
		return -ENOMEM;
	}
	d->w = w;
	d->vs = vs;
	d->log = log;
	d->policy = policy;
	d->interval_ms = interval_ms;
	d->wait_tail = &d->wait;
	d->later_tail = &d->later;
	if (policy == DKV_SYNC_INTERVAL) {
		d->timer = w->ops->timer_add(w, interval_ms, tick, d);
		if (d->timer == NULL) {
			durable_free(d);
			return -ENOMEM;
		}
	}
	*out = d;
	return 0;
}

void durable_free(durable *d)
{
	if (d == NULL)
		return;
	if (d->timer != NULL)
		d->w->ops->timer_cancel(d->w, d->timer);
	free(d->stores);
	hist_free(d->sync_us);
	free(d);
}

const hist *durable_sync_latency(const durable *d)
{
	return d->sync_us;
}

void durable_wait(durable *d, durable_waiter *wt, durable_fn fn, void *arg)
{
	wt->fn = fn;
	wt->arg = arg;
	wt->next = NULL;
	*d->wait_tail = wt;
	d->wait_tail = &wt->next;
	batch_start(d);
}

void durable_wait_next(durable *d, durable_waiter *wt, durable_fn fn, void *arg)
{
	if (d->policy != DKV_SYNC_INTERVAL || d->timer == NULL || d->quiesced) {
		durable_wait(d, wt, fn, arg);
		return;
	}
	wt->fn = fn;
	wt->arg = arg;
	wt->next = NULL;
	*d->later_tail = wt;
	d->later_tail = &wt->next;
}

void durable_quiesce(durable *d)
{
	d->quiesced = true;
	if (d->later != NULL) {
		join_later(d);
		batch_start(d);
	}
}

bool durable_running(const durable *d)
{
	return d->running;
}

uint64_t durable_batches(const durable *d)
{
	return d->batches;
}
