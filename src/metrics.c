#include "config.h"
/*
 * metrics.c -- the Prometheus text format of a node's figures.  See
 * metrics.h.
 *
 * Every family is written whole, in a fixed order: "# HELP", "# TYPE", then
 * its samples.  Every labelled series is written even when it is zero, so a
 * series exists from the node's start and rate() sees its first increase.
 */

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "proto.h"

/* The label values; the results follow the wire codes of proto.h. */
static const char *const op_names[METRICS_NOPS] = { "get", "put", "delete" };

#define RESULT(code) (METRICS_RESULT_ERR + (code) - 1)
static const char *const result_names[METRICS_NRESULTS] = {
	[METRICS_RESULT_OK] = "ok",
	[METRICS_RESULT_NOT_FOUND] = "not_found",
	[RESULT(PROTO_ERR_PROTOCOL)] = "protocol",
	[RESULT(PROTO_ERR_VERSION)] = "version",
	[RESULT(PROTO_ERR_TYPE)] = "type",
	[RESULT(PROTO_ERR_TOOBIG)] = "too_big",
	[RESULT(PROTO_ERR_INVALID)] = "invalid",
	[RESULT(PROTO_ERR_QUORUM)] = "quorum",
	[RESULT(PROTO_ERR_TIMEOUT)] = "timeout",
	[RESULT(PROTO_ERR_STORAGE)] = "storage",
	[RESULT(PROTO_ERR_OVERLOAD)] = "overload",
	[RESULT(PROTO_ERR_SHUTDOWN)] = "shutdown",
	[RESULT(PROTO_ERR_CONTEXT)] = "context",
	[RESULT(PROTO_ERR_INTERNAL)] = "internal",
};

/* One result per error code: a code added to proto.h must be named above. */
#define X(name, num, dkv, text) +1
static_assert(METRICS_NRESULTS == METRICS_RESULT_ERR PROTO_ERRORS(X),
	      "a result label per PROTO_ERRORS code");
#undef X

static const char *const liveness_names[METRICS_NLIVENESS] = { "up", "suspect", "down" };

/* A Prometheus bucket: its bound as printed, and the greatest value, in
 * the histogram's own unit, of a hist bucket it counts. */
typedef struct bound {
	const char *le;
	uint64_t upto;
} bound;

/* Latencies, recorded in microseconds, exposed in seconds: 100 us to 10 s
 * in 1-2.5-5 steps, then +Inf. */
static const bound time_bounds[] = {
	{ "0.0001", 100 }, { "0.00025", 250 }, { "0.0005", 500 },
	{ "0.001", 1000 }, { "0.0025", 2500 }, { "0.005", 5000 },
	{ "0.01", 10000 }, { "0.025", 25000 }, { "0.05", 50000 },
	{ "0.1", 100000 }, { "0.25", 250000 }, { "0.5", 500000 },
	{ "1", 1000000 }, { "2.5", 2500000 }, { "5", 5000000 },
	{ "10", 10000000 },
};

/* Siblings per read: one by one up to 5, then doubling. */
static const bound sibling_bounds[] = {
	{ "1", 1 }, { "2", 2 }, { "3", 3 }, { "4", 4 }, { "5", 5 },
	{ "8", 8 }, { "16", 16 }, { "32", 32 }, { "64", 64 },
};

#define MAX_BOUNDS 16
static_assert(sizeof(time_bounds) / sizeof(time_bounds[0]) <= MAX_BOUNDS, "bounds");
static_assert(sizeof(sibling_bounds) / sizeof(sibling_bounds[0]) <= MAX_BOUNDS, "bounds");

/* A histogram's scale: its bounds, and how many of its units make one of
 * the exposed unit. */
typedef struct scale {
	const bound *b;
	size_t n;
	double per;
} scale;

static const scale seconds = {
	time_bounds, sizeof(time_bounds) / sizeof(time_bounds[0]), 1e6
};
static const scale siblings = {
	sibling_bounds, sizeof(sibling_bounds) / sizeof(sibling_bounds[0]), 1.0
};

typedef struct writer {
	FILE *out;
	bool failed;               /* true iff a write to out has failed */
} writer;

static void put(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(writer *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vfprintf(w->out, fmt, ap) < 0)
		w->failed = true;
	va_end(ap);
}

/* v as the format reads it: the shortest %g that reads back as exactly v
 * (0.1, not 0.10000000000000001), or NaN, +Inf, -Inf. */
static const char *fmt_double(char buf[32], double v)
{
	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 32, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

/* A label value, escaped: backslash, double quote and newline. */
static void put_label_value(writer *w, const char *s)
{
	for (; *s != '\0'; s++) {
		int rc;

		if (*s == '\\')
			rc = fputs("\\\\", w->out);
		else if (*s == '"')
			rc = fputs("\\\"", w->out);
		else if (*s == '\n')
			rc = fputs("\\n", w->out);
		else
			rc = fputc((unsigned char)*s, w->out);
		if (rc == EOF)
			w->failed = true;
	}
}

static void family(writer *w, const char *name, const char *type, const char *help)
{
	put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled integer sample, read from its snapshot
 * field (a uint32_t or a uint64_t). */
typedef struct scalar {
	const char *name;
	const char *type;          /* "counter" or "gauge" */
	const char *help;
	size_t off;                /* of the field in metrics_snapshot */
	size_t size;               /* of the field */
} scalar;

#define FIELD(f) offsetof(metrics_snapshot, f), sizeof(((metrics_snapshot *)0)->f)
#define COUNTER(name, f, help) { name, "counter", help, FIELD(f) }
#define GAUGE(name, f, help) { name, "gauge", help, FIELD(f) }

/* The healing, moving and storing of data, in the order written. */
static const scalar work[] = {
	COUNTER("dynkv_forwarded_writes_total", forwarded,
		"Client writes this node forwarded to their coordinator."),
	COUNTER("dynkv_read_repairs_total", read_repairs,
		"Stale replicas sent the merged object after a read."),
	COUNTER("dynkv_error_replies_total", errors, "Error replies this node sent, of every kind."),
	GAUGE("dynkv_hints_pending", hints_pending, "Keys this node holds as hints for other nodes."),
	COUNTER("dynkv_hints_delivered_total", hints_delivered,
		"Hinted keys delivered to and acknowledged by their owners."),
	COUNTER("dynkv_hints_refused_total", hints_refused,
		"Hinted writes refused because the hint store was past its bound."),
	COUNTER("dynkv_aae_exchanges_total", aae_exchanges,
		"Anti-entropy exchanges this node completed."),
	COUNTER("dynkv_aae_keys_repaired_total", aae_repaired,
		"Keys repaired by anti-entropy exchanges."),
	GAUGE("dynkv_tombstones_waiting", tombstones_waiting,
	      "Tombstones waiting to be reaped, of the keys this node leads."),
	COUNTER("dynkv_tombstones_reaped_total", tombstones_reaped,
		"Tombstones removed from this node's stores."),
	COUNTER("dynkv_transfers_received_total", transfers_received,
		"Partitions this node received whole by ownership transfer."),
	COUNTER("dynkv_transfer_merged_bytes_total", transfer_merged_bytes,
		"Bytes merged into this node's stores by ownership transfers."),
	COUNTER("dynkv_transfer_served_bytes_total", transfer_served_bytes,
		"Bytes this node sent to new owners by ownership transfers."),
	COUNTER("dynkv_transfers_dropped_total", transfers_dropped,
		"Partitions dropped here once no longer this node's."),
	GAUGE("dynkv_transfers_active", transfers_active, "Ownership transfers in progress now."),
	GAUGE("dynkv_transfers_pending", transfers_pending, "Ownership transfers waiting to start."),
	GAUGE("dynkv_store_keys", keys, "Live keys in this node's stores."),
	GAUGE("dynkv_store_live_bytes", live_bytes, "Bytes of records the stores' keydirs point to."),
	GAUGE("dynkv_store_dead_bytes", dead_bytes,
	      "Bytes of superseded records and tombstones in the stores, reclaimed by merges."),
	GAUGE("dynkv_store_disk_bytes", disk_bytes, "Bytes the stores' files occupy on disk."),
	GAUGE("dynkv_keydir_bytes", keydir_bytes, "Bytes of memory the stores' keydirs hold."),
	COUNTER("dynkv_store_merges_total", merges, "Store merges completed since the stores opened."),
	GAUGE("dynkv_partitions_open", partitions_open, "Partition stores open now."),
	GAUGE("dynkv_partitions_held", partitions_held, "Partitions this node holds a replica of."),
};

static const scalar connections =
	GAUGE("dynkv_connections", connections, "Connections open now.");

/* The ring, written after the members. */
static const scalar ring[] = {
	GAUGE("dynkv_ring_epochs", ring_epochs,
	      "Ring epochs active now; 1 when no ownership change is under way."),
	GAUGE("dynkv_ring_size", ring_size, "Partitions in the ring."),
	GAUGE("dynkv_n_val", n_val, "Replicas kept of every key (N)."),
};

static void put_scalars(writer *w, const metrics_snapshot *m, const scalar *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *field = (const char *)m + s[i].off;
		uint64_t v;

		if (s[i].size == sizeof(uint32_t)) {
			uint32_t v32;

			memcpy(&v32, field, sizeof(v32));
			v = v32;
		} else {
			assert(s[i].size == sizeof(uint64_t));
			memcpy(&v, field, sizeof(v));
		}
		family(w, s[i].name, s[i].type, s[i].help);
		put(w, "%s %llu\n", s[i].name, (unsigned long long)v);
	}
}

/* The cumulative Prometheus buckets of a hist, filled by hist_foreach. */
typedef struct tally {
	const scale *sc;
	uint64_t count[MAX_BOUNDS];  /* values in hist buckets ending <= bound i */
} tally;

static void tally_bucket(uint64_t lo, uint64_t hi, uint64_t count, void *arg)
{
	tally *t = arg;

	for (size_t i = 0; i < t->sc->n; i++)
		if (hi <= t->sc->b[i].upto)
			t->count[i] += count;
}

/* One series of a histogram family: its buckets, _sum and _count.  label
 * is the series' own label pair ("op=\"get\"") or NULL; h NULL is empty. */
static void histogram(writer *w, const char *name, const char *label, const hist *h,
		      const scale *sc)
{
	tally t = { .sc = sc };
	uint64_t n = h != NULL ? hist_count(h) : 0;
	const char *sep = label != NULL ? "," : "";
	char buf[32];
	double sum;

	if (label == NULL)
		label = "";
	if (h != NULL)
		hist_foreach(h, tally_bucket, &t);
	for (size_t i = 0; i < sc->n; i++)
		put(w, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, label, sep, sc->b[i].le,
		    (unsigned long long)t.count[i]);
	put(w, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, (unsigned long long)n);
	/* The values are integers, so is their sum: rounding undoes the
	 * error of the mean's division. */
	sum = n > 0 ? round(hist_mean(h) * (double)n) / sc->per : 0.0;
	if (*label != '\0') {
		put(w, "%s_sum{%s} %s\n", name, label, fmt_double(buf, sum));
		put(w, "%s_count{%s} %llu\n", name, label, (unsigned long long)n);
	} else {
		put(w, "%s_sum %s\n", name, fmt_double(buf, sum));
		put(w, "%s_count %llu\n", name, (unsigned long long)n);
	}
}

static void requests(writer *w, const metrics_snapshot *m)
{
	const char *name = "dynkv_requests_total";

	family(w, name, "counter",
	       "Client requests this node coordinated, by operation and by how they ended.");
	for (int op = 0; op < METRICS_NOPS; op++)
		for (int r = 0; r < METRICS_NRESULTS; r++) {
			if (r == METRICS_RESULT_NOT_FOUND && op != METRICS_GET)
				continue;
			put(w, "%s{op=\"%s\",result=\"%s\"} %llu\n", name, op_names[op],
			    result_names[r], (unsigned long long)m->requests[op][r]);
		}
}

static void latencies(writer *w, const metrics_snapshot *m)
{
	const char *name = "dynkv_request_duration_seconds";
	char label[32];

	family(w, name, "histogram",
	       "Seconds this node took to answer the client requests it coordinated, by operation.");
	for (int op = 0; op < METRICS_NOPS; op++) {
		snprintf(label, sizeof(label), "op=\"%s\"", op_names[op]);
		histogram(w, name, label, m->latency_us[op], &seconds);
	}
	name = "dynkv_replica_request_duration_seconds";
	family(w, name, "histogram",
	       "Seconds this node took to serve a coordinator's replica read (get) "
	       "or write (put, deletes included).");
	histogram(w, name, "op=\"get\"", m->replica_get_us, &seconds);
	histogram(w, name, "op=\"put\"", m->replica_put_us, &seconds);
	name = "dynkv_siblings_per_read";
	family(w, name, "histogram", "Live values (siblings) per GET that found any.");
	histogram(w, name, NULL, m->siblings, &siblings);
}

int metrics_render(const metrics_snapshot *m, FILE *out)
{
	writer w = { .out = out };
	char buf[32];

	family(&w, "dynkv_build_info", "gauge",
	       "Always 1; the label version is the dynkv version this node runs.");
	put(&w, "dynkv_build_info{version=\"");
	put_label_value(&w, m->version != NULL ? m->version : "");
	put(&w, "\"} 1\n");
	family(&w, "dynkv_uptime_seconds", "gauge", "Seconds since this node started.");
	put(&w, "dynkv_uptime_seconds %s\n", fmt_double(buf, m->uptime_seconds));

	requests(&w, m);
	latencies(&w, m);
	put_scalars(&w, m, work, sizeof(work) / sizeof(work[0]));
	family(&w, "dynkv_fsync_duration_seconds", "histogram",
	       "Seconds one durability batch spent in fdatasync.");
	histogram(&w, "dynkv_fsync_duration_seconds", NULL, m->fsync_us, &seconds);

	put_scalars(&w, m, &connections, 1);
	family(&w, "dynkv_members", "gauge", "Cluster members as this node sees them, by liveness.");
	for (int l = 0; l < METRICS_NLIVENESS; l++)
		put(&w, "dynkv_members{liveness=\"%s\"} %llu\n", liveness_names[l],
		    (unsigned long long)m->members[l]);
	put_scalars(&w, m, ring, sizeof(ring) / sizeof(ring[0]));

	if (fflush(out) != 0 || ferror(out))
		w.failed = true;
	return w.failed ? -EIO : 0;
}
