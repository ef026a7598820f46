/*
 * pace.h -- a rate for background work that yields to requests: it halves
 * when an event loop runs late and creeps back when none does.
 *
 * A node's event loop serves requests and background work alike, and on
 * a busy machine both wait for a core.  Background work at a fixed rate
 * (a hinted-handoff drain at handoff_rate) then adds to every request's
 * wait: it runs at full speed exactly when the foreground can least afford
 * it.  A pace measures how late the loop runs -- a probe timer every
 * PACE_PROBE_MS notes how long after its due time it fired: time spent
 * waiting for a core or behind other callbacks, which is what a request
 * arriving then waits too -- and steers a rate between a floor and a
 * ceiling the way TCP and LEDBAT steer a window (additive increase,
 * multiplicative decrease).  At the end of each PACE_WINDOW_MS window the
 * loop's DELAY is the mean lateness of the window's probes; if it passed
 * the target, or the last delay a peer reported (pace_note, for
 * PACE_REMOTE_MS) did, the rate halves, not below the floor; otherwise it
 * grows by 1/PACE_STEPS of the ceiling, floor to ceiling in PACE_STEPS
 * windows.  The mean, not the largest lateness: a loop that keeps time
 * but for one long callback is still a loop where requests wait little,
 * and the largest of a window's ten probes passes any useful target on a
 * busy machine with no background work at all.
 *
 * A pace yields to requests, not to the work it paces: a window in which
 * the node served no request (its counter, pace_new's `requests`, did not
 * move) counts as on time whatever its delay -- the drain's own work makes
 * the loop late too, and with nobody to wait for it, it should not slow.
 *
 * A node also reports its own delay to the peers whose work it serves
 * (an owner in the answers to a hinted-handoff delivery: the owner's loop
 * does the merges, so the sender must slow for it too): pace_delay, the
 * mean over the last PACE_REPORT_WINDOWS windows.
 *
 * The probe runs only while the pace is in use (pace_touch within the last
 * PACE_IDLE_MS): an idle node is not woken a hundred times a second.  A
 * pace that wakes up from idle starts again at the floor: what it knew
 * about the machine is stale.
 *
 * LIFECYCLE
 *   IDLE --pace_touch--> PROBING (rate from the floor, a probe every
 *   PACE_PROBE_MS) --PACE_IDLE_MS without a touch--> IDLE
 *   A target of 0 turns the pace off: the rate is always the ceiling and
 *   the probe never runs.
 *
 * Loop thread only.  In a simulated world timers fire on time, the delay
 * is 0 and the rate climbs to the ceiling.
 */
#ifndef DKV_PACE_H
#define DKV_PACE_H

#include <stdint.h>

#include "world.h"

#define PACE_PROBE_MS       10u
#define PACE_WINDOW_MS      100u
#define PACE_STEPS          16u
#define PACE_IDLE_MS        1000u
#define PACE_REMOTE_MS      2000u
#define PACE_REPORT_WINDOWS 10u

typedef struct pace pace;

typedef struct pace_stats {
	uint64_t rate;          /* bytes per second allowed now */
	uint32_t delay_us;      /* the mean delay of the last window */
	uint32_t remote_us;     /* the last delay a peer reported (0: none fresh) */
	uint64_t slowdowns;     /* windows that halved the rate */
	uint64_t windows;       /* windows ended */
} pace_stats;

/* The usual floor for a ceiling of rate: 1/32 of it, but not below 64 KiB
 * a second unless rate is. */
uint64_t pace_floor(uint64_t rate);
/* A pace between floor and ceiling bytes per second (0 < floor <=
 * ceiling) that halves past target_us of loop delay (0: never) in a
 * window where *requests (borrowed; NULL: every window) moved. */
int pace_new(pace **out, world *w, uint64_t floor, uint64_t ceiling, uint32_t target_us,
	     const uint64_t *requests);
void pace_free(pace *p);

/* The pace is in use: probe for PACE_IDLE_MS more. */
void pace_touch(pace *p);
/* A delay a peer reported (its pace_delay): counts against the target
 * for PACE_REMOTE_MS, or until the next report. */
void pace_note(pace *p, uint32_t delay_us);
/* The bytes per second background work may use now. */
uint64_t pace_rate(const pace *p);
/* This loop's mean delay over the last PACE_REPORT_WINDOWS windows, in
 * microseconds (0 while idle): what this node reports to peers. */
uint32_t pace_delay(const pace *p);
void pace_stats_get(const pace *p, pace_stats *st);

#endif /* DKV_PACE_H */
