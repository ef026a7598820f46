#include "config.h"
/*
 * capacity.c -- the node's load over the last window, and its verdict.
 * See capacity.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "capacity.h"

struct capacity {
	uint64_t slot_ms;                 /* window / CAPACITY_SLOTS */
	uint64_t first_ms;                /* the node's start */
	hist *slot[CAPACITY_SLOTS];
	uint64_t period[CAPACITY_SLOTS];  /* the slot's period (now / slot_ms) + 1; 0: empty */
};

int capacity_new(capacity **out, uint64_t window_ms, uint64_t start_ms)
{
	capacity *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	c->first_ms = start_ms;
	c->slot_ms = window_ms / CAPACITY_SLOTS ? window_ms / CAPACITY_SLOTS : 1;
	for (size_t i = 0; i < CAPACITY_SLOTS; i++)
		if (hist_new(&c->slot[i]) != 0) {
			capacity_free(c);
			return -ENOMEM;
		}
	*out = c;
	return 0;
}

void capacity_free(capacity *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < CAPACITY_SLOTS; i++)
		hist_free(c->slot[i]);
	free(c);
}

void capacity_record(capacity *c, uint64_t now_ms, uint64_t latency_us)
{
	uint64_t period = now_ms / c->slot_ms + 1;
	size_t i = (size_t)(period % CAPACITY_SLOTS);

	if (c->period[i] != period) {   /* its turn again: what it held is too old */
		hist_reset(c->slot[i]);
		c->period[i] = period;
	}
	hist_record(c->slot[i], latency_us);
}

int capacity_window(capacity *c, uint64_t now_ms, hist *out, uint64_t *span_ms)
{
	uint64_t period = now_ms / c->slot_ms + 1, window = c->slot_ms * CAPACITY_SLOTS;

	hist_reset(out);
	for (size_t i = 0; i < CAPACITY_SLOTS; i++)
		if (c->period[i] != 0 && c->period[i] + CAPACITY_SLOTS > period)
			hist_merge(out, c->slot[i]);
	*span_ms = now_ms - c->first_ms < window ? now_ms - c->first_ms : window;
	if (*span_ms == 0)
		*span_ms = 1;
	return 0;
}

const char *capacity_verdict_name(capacity_verdict v)
{
	return v == CAPACITY_GROW ? "grow" : v == CAPACITY_SHRINK ? "shrink" : "hold";
}

capacity_verdict capacity_assess(const capacity_figures *f, const dkv_config *cfg, char *reason,
				 size_t len)
{
	uint64_t p99_limit = (uint64_t)cfg->capacity_grow_p99;
	bool slow = f->ops >= CAPACITY_MIN_OPS && f->p99_us > p99_limit;

	if (f->ops_per_s > (double)cfg->capacity_grow_ops) {
		snprintf(reason, len, "%.0f requests a second > capacity_grow_ops %u", f->ops_per_s,
			 cfg->capacity_grow_ops);
		return CAPACITY_GROW;
	}
	if (slow) {
		snprintf(reason, len, "p99 %" PRIu64 " us > capacity_grow_p99 %" PRIu64 " us over %"
			 PRIu64 " requests", f->p99_us, p99_limit, f->ops);
		return CAPACITY_GROW;
	}
	if (cfg->capacity_grow_disk > 0 && f->disk_bytes > cfg->capacity_grow_disk) {
		snprintf(reason, len, "%" PRIu64 " bytes on disk > capacity_grow_disk %" PRIu64,
			 f->disk_bytes, (uint64_t)cfg->capacity_grow_disk);
		return CAPACITY_GROW;
	}
	if (f->ops_per_s < (double)cfg->capacity_shrink_ops &&
	    (f->ops < CAPACITY_MIN_OPS || f->p99_us <= p99_limit / 2) &&
	    (cfg->capacity_grow_disk == 0 || f->disk_bytes <= cfg->capacity_grow_disk / 2)) {
		snprintf(reason, len, "%.0f requests a second < capacity_shrink_ops %u, p99 and disk "
			 "at most half their limits", f->ops_per_s, cfg->capacity_shrink_ops);
		return CAPACITY_SHRINK;
	}
	snprintf(reason, len, "%.0f requests a second, p99 %" PRIu64 " us: within the limits",
		 f->ops_per_s, f->p99_us);
	return CAPACITY_HOLD;
}
