/*
 * metrics.h -- a node's figures in the Prometheus text exposition format
 * 0.0.4 (GET /metrics on the HTTP face, dynkv-admin metrics): names
 * prefixed dynkv_, base units (seconds, bytes), counters ending in
 * _total, histograms as cumulative _bucket{le=...} series with _sum and
 * _count, and no per-key or per-client label.  dynkv-http(7) lists every
 * family and what it means.
 *
 * The node fills a metrics_snapshot (admin.c, from its modules' counters
 * and histograms) and metrics_render() writes it: a pure function of the
 * snapshot, so that the format is tested on its own.  Histograms are the
 * node's own (hist.h, log buckets 0.78% wide); a Prometheus bucket
 * le="b" counts the values of every hist bucket whose upper end is at
 * most b, so a count is exact to within one hist bucket of b.
 *
 * Loop thread only (the snapshot borrows the node's histograms).
 */
#ifndef DKV_METRICS_H
#define DKV_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "hist.h"

/* The client operations, as the label op. */
enum { METRICS_GET, METRICS_PUT, METRICS_DELETE, METRICS_NOPS };

/* How a request ended, as the label result: ok, not_found (a GET that
 * found no live value), then one per node error code (proto.h
 * PROTO_ERRORS, by number: METRICS_RESULT_ERR + code - 1). */
enum { METRICS_RESULT_OK, METRICS_RESULT_NOT_FOUND, METRICS_RESULT_ERR };
#define METRICS_NRESULTS (METRICS_RESULT_ERR + 12)

/* Members by liveness, as the label liveness. */
enum { METRICS_UP, METRICS_SUSPECT, METRICS_DOWN, METRICS_NLIVENESS };

typedef struct metrics_snapshot {
	const char *version;                 /* PACKAGE_VERSION: dynkv_build_info */
	double uptime_seconds;

	/* requests this node coordinated, by op and result */
	uint64_t requests[METRICS_NOPS][METRICS_NRESULTS];
	const hist *latency_us[METRICS_NOPS];     /* answered ones, coordinator (NULL: none) */
	const hist *replica_get_us;          /* RGET served for a coordinator */
	const hist *replica_put_us;          /* RPUT served (puts and deletes) */
	const hist *siblings;                /* live values per GET that found some */
	uint64_t forwarded;                  /* writes sent to their coordinator */
	uint64_t read_repairs;
	uint64_t errors;                     /* error replies sent, all kinds */

	/* hinted handoff, anti-entropy, reaping */
	uint64_t hints_pending, hints_delivered, hints_refused;
	uint64_t aae_exchanges, aae_repaired;
	uint64_t tombstones_waiting, tombstones_reaped;

	/* ownership transfer */
	uint64_t transfers_received, transfer_merged_bytes, transfer_served_bytes;
	uint64_t transfers_dropped;
	uint32_t transfers_active, transfers_pending;

	/* the stores */
	uint64_t keys, live_bytes, dead_bytes, disk_bytes, keydir_bytes;
	uint64_t merges;                     /* completed, since the stores opened */
	uint64_t partitions_open, partitions_held;
	const hist *fsync_us;                /* one durability batch's fdatasyncs */

	/* the cluster */
	uint64_t connections;
	uint64_t members[METRICS_NLIVENESS];
	uint32_t ring_epochs;                /* 1: settled */
	uint32_t ring_size, n_val;
} metrics_snapshot;

/* Write m to out in the text format 0.0.4.  0, or -EIO when out fails. */
int metrics_render(const metrics_snapshot *m, FILE *out);

/* The Content-Type of what metrics_render() writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif /* DKV_METRICS_H */
