/*
 * capacity.h -- what a node carries, over the last capacity_window, and
 * whether the cluster should grow, shrink or hold (dynkv-admin capacity,
 * contrib/dynkv-autoscale).
 *
 * THE WINDOW.  Every answered client request (get, put, delete, at its
 * coordinator) records its latency here.  The window is kept as
 * CAPACITY_SLOTS slots of capacity_window / CAPACITY_SLOTS each, the
 * current one by wall position (now / slot length); a slot older than the
 * window is emptied when its turn comes again.  The figures over the last
 * window are the merge of the slots still in it: requests a second (over
 * the window, or over the node's uptime while it is shorter: since
 * capacity_new) and their
 * p99.  No timer: recording and reading bring the slots up to date.
 *
 * THE VERDICT of one node (capacity_assess), against dynkv.conf(5)'s
 * thresholds:
 *   grow    ops/s above capacity_grow_ops, or a p99 above
 *           capacity_grow_p99 (over at least CAPACITY_MIN_OPS requests:
 *           a few slow ones are not a load), or more bytes on disk than
 *           capacity_grow_disk (0: not looked at);
 *   shrink  ops/s below capacity_shrink_ops, the p99 at most half its
 *           threshold and the disk at most half its (when it is looked
 *           at): this node alone could take more;
 *   hold    otherwise.
 * The cluster's verdict (dynkv-admin capacity, which asks every member):
 * grow when any member says grow, shrink when every member says shrink
 * and there are more members than n_val (fewer would leave a key fewer
 * replicas), else hold.
 *
 * Loop thread only.
 */
#ifndef DKV_CAPACITY_H
#define DKV_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"
#include "hist.h"

#define CAPACITY_SLOTS   6u
#define CAPACITY_MIN_OPS 100u

typedef struct capacity capacity;

/* A window of window_ms (split in CAPACITY_SLOTS slots), for a node that
 * started at start_ms.  0 or -ENOMEM. */
int capacity_new(capacity **out, uint64_t window_ms, uint64_t start_ms);
void capacity_free(capacity *c);

/* One answered request, at now_ms, that took latency_us. */
void capacity_record(capacity *c, uint64_t now_ms, uint64_t latency_us);

/* The last window's requests merged into out (which is reset first), and
 * how long it spans (ms: the window, or since start while shorter).  0 or
 * -ENOMEM. */
int capacity_window(capacity *c, uint64_t now_ms, hist *out, uint64_t *span_ms);

typedef enum capacity_verdict { CAPACITY_HOLD = 0, CAPACITY_GROW, CAPACITY_SHRINK } capacity_verdict;

typedef struct capacity_figures {
	double ops_per_s;
	uint64_t ops;            /* requests in the window */
	uint64_t p99_us;
	uint64_t disk_bytes;
} capacity_figures;

/* One node's verdict (THE VERDICT above), the reason in words into
 * reason. */
capacity_verdict capacity_assess(const capacity_figures *f, const dkv_config *cfg, char *reason,
				 size_t len);
const char *capacity_verdict_name(capacity_verdict v);

#endif /* DKV_CAPACITY_H */
