/*
 * pace.c -- the yielding rate of pace.h.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "pace.h"

struct pace {
	world *w;
	uint64_t floor, ceiling, rate;
	uint32_t target_us;
	const uint64_t *requests;  /* the node's request count (borrowed) */
	uint64_t requests_seen;    /* its value when the window began */
	world_timer *probe;        /* set while PROBING */
	uint64_t due_us;           /* when the probe should fire */
	uint64_t used_ms;          /* the last pace_touch */
	uint64_t window_us;        /* when the current window began */
	uint64_t sum_us;           /* its probes' lateness, summed */
	uint32_t nprobes;          /* and counted */
	uint32_t last_us;          /* the last window's mean */
	/* the last PACE_REPORT_WINDOWS windows' sums and counts (a ring) */
	uint64_t rsum[PACE_REPORT_WINDOWS];
	uint32_t rn[PACE_REPORT_WINDOWS];
	uint32_t rnext;
	uint32_t remote_us;        /* the last delay a peer reported */
	uint64_t remote_ms;        /* when */
	bool has_remote;
	uint64_t slowdowns, windows;
};

static void probe_fired(void *arg);

int pace_new(pace **out, world *w, uint64_t floor, uint64_t ceiling, uint32_t target_us,
	     const uint64_t *requests)
{
	pace *p;

	*out = NULL;
	if (floor == 0 || ceiling < floor)
		return -EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->w = w;
	p->floor = floor;
	p->ceiling = ceiling;
	p->target_us = target_us;
	p->requests = requests;
	p->rate = target_us == 0 ? ceiling : floor;
	*out = p;
	return 0;
}

void pace_free(pace *p)
{
	if (p == NULL)
		return;
	if (p->probe != NULL)
		p->w->ops->timer_cancel(p->w, p->probe);
	free(p);
}

static void arm(pace *p)
{
	p->due_us = p->w->ops->now_us(p->w) + PACE_PROBE_MS * 1000u;
	p->probe = p->w->ops->timer_add(p->w, PACE_PROBE_MS, probe_fired, p);
}

static bool remote_fresh(const pace *p, uint64_t now_ms)
{
	return p->has_remote && now_ms - p->remote_ms < PACE_REMOTE_MS;
}

/* True iff a request was served since the last call. */
static bool served(pace *p)
{
	bool moved = p->requests == NULL || *p->requests != p->requests_seen;

	if (p->requests != NULL)
		p->requests_seen = *p->requests;
	return moved;
}

/* A window is over: halve the rate if a loop ran late, else add a step. */
static void window_end(pace *p, uint64_t now_us)
{
	uint64_t step = p->ceiling / PACE_STEPS;
	uint32_t mean;
	bool late;

	if (!served(p))
		p->sum_us = 0;   /* nobody waited: the delay was ours alone */
	mean = p->nprobes ? (uint32_t)(p->sum_us / p->nprobes) : 0;
	late = mean > p->target_us ||
		    (remote_fresh(p, now_us / 1000u) && p->remote_us > p->target_us);

	if (late) {
		p->rate = p->rate / 2 < p->floor ? p->floor : p->rate / 2;
		p->slowdowns++;
	} else {
		p->rate = p->ceiling - p->rate < step ? p->ceiling : p->rate + step;
	}
	p->windows++;
	p->last_us = mean;
	p->rsum[p->rnext] = p->sum_us;
	p->rn[p->rnext] = p->nprobes;
	p->rnext = (p->rnext + 1) % PACE_REPORT_WINDOWS;
	p->sum_us = 0;
	p->nprobes = 0;
	p->window_us = now_us;
}

/* Forget what was measured: the pace is idle (or waking up). */
static void forget(pace *p)
{
	p->sum_us = 0;
	p->nprobes = 0;
	p->last_us = 0;
	for (uint32_t i = 0; i < PACE_REPORT_WINDOWS; i++) {
		p->rsum[i] = 0;
		p->rn[i] = 0;
	}
}

static void probe_fired(void *arg)
{
	pace *p = arg;
	uint64_t now = p->w->ops->now_us(p->w);
	uint64_t late = now > p->due_us ? now - p->due_us : 0;

	p->probe = NULL;
	p->sum_us += late;
	p->nprobes++;
	if (now - p->window_us >= PACE_WINDOW_MS * 1000u)
		window_end(p, now);
	if (now / 1000u - p->used_ms >= PACE_IDLE_MS) {
		forget(p);   /* IDLE */
		return;
	}
	arm(p);
}

void pace_touch(pace *p)
{
	if (p->target_us == 0)
		return;
	p->used_ms = p->w->ops->now_ms(p->w);
	if (p->probe != NULL)
		return;
	p->rate = p->floor;   /* waking up: start low, climb if the loops keep time */
	p->window_us = p->w->ops->now_us(p->w);
	forget(p);
	(void)served(p);
	arm(p);
}

void pace_note(pace *p, uint32_t delay_us)
{
	p->remote_us = delay_us;
	p->remote_ms = p->w->ops->now_ms(p->w);
	p->has_remote = true;
}

uint64_t pace_rate(const pace *p)
{
	return p->rate;
}

uint32_t pace_delay(const pace *p)
{
	uint64_t sum = 0, n = 0;

	if (p->probe == NULL)
		return 0;
	for (uint32_t i = 0; i < PACE_REPORT_WINDOWS; i++) {
		sum += p->rsum[i];
		n += p->rn[i];
	}
	return n ? (uint32_t)(sum / n) : 0;
}

void pace_stats_get(const pace *p, pace_stats *st)
{
	st->rate = p->rate;
	st->delay_us = p->last_us;
	st->remote_us = remote_fresh(p, p->w->ops->now_ms(p->w)) ? p->remote_us : 0;
	st->slowdowns = p->slowdowns;
	st->windows = p->windows;
}

uint64_t pace_floor(uint64_t rate)
{
	uint64_t f = rate / 32u;

	if (f < 65536u)
		f = rate < 65536u ? rate : 65536u;
	return f;
}
