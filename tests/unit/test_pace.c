/*
 * test_pace.c -- src/pace.c on a hand-driven clock: the probe's timer is
 * fired as late as a test says, so a test decides how late the loop runs.
 * The rate climbs floor to ceiling when the loop keeps time, halves (not
 * below the floor) past the target, ignores windows in which no request
 * was served, yields to a peer's reported delay for PACE_REMOTE_MS, goes
 * idle without a touch, and with a target of 0 never probes at all.
 */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <criterion/criterion.h>

#include "pace.h"
#include "world.h"

#define MIB (UINT64_C(1) << 20)

/* --- a world with one clock and at most one timer ---------------------- */

struct world_timer {
	uint64_t due_us;
	world_timer_fn fn;
	void *arg;
};

typedef struct clockworld {
	world w;
	uint64_t now_us;
	world_timer *timer;     /* the pending one (the pace arms one at most) */
	unsigned added;         /* timers armed so far */
} clockworld;

static uint64_t cw_now_us(world *w) { return ((clockworld *)w)->now_us; }
static uint64_t cw_now_ms(world *w) { return ((clockworld *)w)->now_us / 1000u; }

static world_timer *cw_timer_add(world *w, uint64_t ms, world_timer_fn fn, void *arg)
{
	clockworld *cw = (clockworld *)w;
	world_timer *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	cr_assert_null(cw->timer, "a second timer while one is pending");
	t->due_us = cw->now_us + ms * 1000u;
	t->fn = fn;
	t->arg = arg;
	cw->timer = t;
	cw->added++;
	return t;
}

static void cw_timer_cancel(world *w, world_timer *t)
{
	clockworld *cw = (clockworld *)w;

	if (t == NULL)
		return;
	cr_assert_eq(t, cw->timer);
	cw->timer = NULL;
	free(t);
}

static const world_ops cw_ops = {
	.now_ms = cw_now_ms,
	.now_us = cw_now_us,
	.timer_add = cw_timer_add,
	.timer_cancel = cw_timer_cancel,
};

static void cw_init(clockworld *cw)
{
	*cw = (clockworld){ .w = { .ops = &cw_ops }, .now_us = 5000000 };
}

/* Fire the pending probe late_us after its due time; false if none. */
static bool fire(clockworld *cw, uint64_t late_us)
{
	world_timer *t = cw->timer;

	if (t == NULL)
		return false;
	cw->timer = NULL;
	cw->now_us = t->due_us + late_us;
	t->fn(t->arg);
	free(t);
	return true;
}

/* Run n whole windows: every probe late by late_us, *requests bumped by
 * `served` per probe; the pace touched as a running delivery does. */
static void windows(clockworld *cw, pace *p, unsigned n, uint64_t late_us, uint64_t *requests,
		    uint64_t served)
{
	pace_stats st;
	uint64_t until;

	pace_stats_get(p, &st);
	until = st.windows + n;
	while (st.windows < until) {
		pace_touch(p);
		*requests += served;
		cr_assert(fire(cw, late_us), "the probe stopped while in use");
		pace_stats_get(p, &st);
	}
}

static const uint64_t FLOOR = 1 * MIB, CEIL = 32 * MIB;

/* A pace of FLOOR..CEIL, target 300 us, on cw, run up to its ceiling. */
static pace *at_ceiling(clockworld *cw, uint64_t *req)
{
	pace *p;

	cw_init(cw);
	cr_assert_eq(pace_new(&p, &cw->w, FLOOR, CEIL, 300, req), 0);
	pace_touch(p);
	windows(cw, p, PACE_STEPS + 1, 0, req, 1);
	cr_assert_eq(pace_rate(p), CEIL);
	return p;
}

/* --- tests --------------------------------------------------------------- */

Test(pace, climbs_from_the_floor_to_the_ceiling_while_the_loop_keeps_time)
{
	clockworld cw;
	uint64_t req = 0;
	pace *p;

	cw_init(&cw);
	cr_assert_eq(pace_new(&p, &cw.w, FLOOR, CEIL, 300, &req), 0);
	pace_touch(p);
	cr_assert_eq(pace_rate(p), FLOOR, "a pace starts at its floor");
	windows(&cw, p, 1, 50, &req, 1);
	cr_assert_eq(pace_rate(p), FLOOR + CEIL / PACE_STEPS, "one step per on-time window");
	windows(&cw, p, PACE_STEPS, 50, &req, 1);
	cr_assert_eq(pace_rate(p), CEIL, "at the ceiling within PACE_STEPS windows");
	windows(&cw, p, 5, 50, &req, 1);
	cr_assert_eq(pace_rate(p), CEIL, "and not past it");
	pace_free(p);
}

Test(pace, halves_when_the_mean_delay_passes_the_target_not_below_the_floor)
{
	clockworld cw;
	uint64_t req = 0;
	pace_stats st;
	pace *p;

	p = at_ceiling(&cw, &req);
	windows(&cw, p, 1, 301, &req, 1);
	cr_assert_eq(pace_rate(p), CEIL / 2, "a late window halves the rate");
	windows(&cw, p, 1, 300, &req, 1);
	cr_assert_eq(pace_rate(p), CEIL / 2 + CEIL / PACE_STEPS, "at the target is on time");
	windows(&cw, p, 12, 5000, &req, 1);
	cr_assert_eq(pace_rate(p), FLOOR, "halving stops at the floor");
	pace_stats_get(p, &st);
	cr_assert_eq(st.slowdowns, 13);
	cr_assert_eq(st.delay_us, 5000, "the last window's mean");
	pace_free(p);
}

/* The mean, not the largest: one long stall among on-time probes is a
 * window where a request waited little. */
Test(pace, one_stall_in_a_window_is_its_mean_not_its_maximum)
{
	clockworld cw;
	uint64_t req = 0;
	unsigned per = PACE_WINDOW_MS / PACE_PROBE_MS;
	pace *p;

	p = at_ceiling(&cw, &req);
	for (unsigned i = 0; i < per; i++) {
		req++;
		cr_assert(fire(&cw, i == 3 ? 2000 : 50));   /* mean (2000 + 9*50)/10 = 245 */
	}
	cr_assert_eq(pace_rate(p), CEIL);
	for (unsigned i = 0; i < per; i++) {
		req++;
		cr_assert(fire(&cw, i == 3 ? 3000 : 50));   /* mean 345: late */
	}
	cr_assert_eq(pace_rate(p), CEIL / 2);
	pace_free(p);
}

/* The pace yields to requests: a window in which none was served is on
 * time however late the loop ran (the drain's own work makes it late). */
Test(pace, a_late_window_without_requests_does_not_slow_it)
{
	clockworld cw;
	uint64_t req = 0;
	pace *p;

	cw_init(&cw);
	cr_assert_eq(pace_new(&p, &cw.w, FLOOR, CEIL, 300, &req), 0);
	pace_touch(p);
	windows(&cw, p, PACE_STEPS + 4, 5000, &req, 0);
	cr_assert_eq(pace_rate(p), CEIL, "no request: the delay is the pace's own work");
	cr_assert_eq(pace_delay(p), 0, "and is not reported to peers");
	windows(&cw, p, 1, 5000, &req, 1);
	cr_assert_eq(pace_rate(p), CEIL / 2, "the same delay with requests slows it");
	cr_assert_eq(pace_delay(p), 5000 / PACE_REPORT_WINDOWS,
		     "the report: the mean over the last %u windows", PACE_REPORT_WINDOWS);
	pace_free(p);
}

Test(pace, a_peers_delay_slows_it_until_it_is_stale)
{
	clockworld cw;
	uint64_t req = 0;
	pace_stats st;
	pace *p;

	p = at_ceiling(&cw, &req);
	pace_note(p, 200);
	windows(&cw, p, 1, 0, &req, 0);
	cr_assert_eq(pace_rate(p), CEIL, "a peer on time");
	pace_note(p, 900);
	pace_stats_get(p, &st);
	cr_assert_eq(st.remote_us, 900);
	windows(&cw, p, 3, 0, &req, 0);
	cr_assert_eq(pace_rate(p), CEIL / 8, "a late peer halves it every window, "
		     "even with no request here (its loop serves them)");
	/* the report is sticky for PACE_REMOTE_MS, then forgotten */
	windows(&cw, p, PACE_REMOTE_MS / PACE_WINDOW_MS, 0, &req, 0);
	pace_stats_get(p, &st);
	cr_assert_eq(st.remote_us, 0, "stale after %u ms", PACE_REMOTE_MS);
	windows(&cw, p, PACE_STEPS, 0, &req, 0);
	cr_assert_eq(pace_rate(p), CEIL, "and it climbs back");
	pace_note(p, 900);
	pace_note(p, 100);
	windows(&cw, p, 1, 0, &req, 0);
	cr_assert_eq(pace_rate(p), CEIL, "the newest report replaces the last");
	pace_free(p);
}

Test(pace, goes_idle_without_a_touch_and_wakes_at_the_floor)
{
	clockworld cw;
	uint64_t req = 0;
	unsigned armed;
	pace *p;

	cw_init(&cw);
	cr_assert_eq(pace_new(&p, &cw.w, FLOOR, CEIL, 300, &req), 0);
	cr_assert_null(cw.timer, "no probe before the first touch");
	pace_touch(p);
	windows(&cw, p, PACE_STEPS + 1, 400, &req, 0);
	cr_assert_eq(pace_rate(p), CEIL);
	/* no more touches: the probe runs PACE_IDLE_MS more, then stops */
	armed = cw.added;
	while (fire(&cw, 0))
		;
	cr_assert_geq(cw.added - armed, PACE_IDLE_MS / PACE_PROBE_MS - 3, "%u", cw.added - armed);
	cr_assert_leq(cw.added - armed, PACE_IDLE_MS / PACE_PROBE_MS + 1);
	cr_assert_eq(pace_delay(p), 0, "an idle pace reports no delay");
	pace_touch(p);
	cr_assert_not_null(cw.timer, "a touch wakes it");
	cr_assert_eq(pace_rate(p), FLOOR, "what it knew is stale: from the floor again");
	pace_free(p);
	cr_assert_null(cw.timer, "pace_free cancels its probe");
}

Test(pace, a_target_of_zero_is_the_ceiling_and_no_probe)
{
	clockworld cw;
	uint64_t req = 0;
	pace *p;

	cw_init(&cw);
	cr_assert_eq(pace_new(&p, &cw.w, FLOOR, CEIL, 0, &req), 0);
	cr_assert_eq(pace_rate(p), CEIL);
	pace_touch(p);
	pace_note(p, 1000000);
	cr_assert_null(cw.timer, "never probes");
	cr_assert_eq(pace_rate(p), CEIL);
	cr_assert_eq(cw.added, 0);
	pace_free(p);
}

Test(pace, rejects_a_floor_of_zero_or_above_the_ceiling)
{
	clockworld cw;
	pace *p = (pace *)1;

	cw_init(&cw);
	cr_assert_neq(pace_new(&p, &cw.w, 0, CEIL, 300, NULL), 0);
	cr_assert_null(p);
	cr_assert_neq(pace_new(&p, &cw.w, CEIL + 1, CEIL, 300, NULL), 0);
	cr_assert_eq(pace_new(&p, &cw.w, CEIL, CEIL, 300, NULL), 0, "floor == ceiling is fine");
	pace_touch(p);
	cr_assert(fire(&cw, 10000));
	cr_assert_eq(pace_rate(p), CEIL);
	pace_free(p);
}
