/*
 * test_metrics.c -- src/metrics.c: the text of metrics_render().  Every
 * rendering goes through a checker of the format's rules (each line a
 * "# HELP", a "# TYPE" or a sample of the format's grammar; one HELP then
 * one TYPE per family, before its samples, family names unique, counters
 * ending in _total, a family's samples named after it; histogram buckets
 * with increasing bounds, non-decreasing counts, a +Inf bucket equal to
 * _count), and the families are checked against the list metrics.h
 * promises, in order, with their series counts.  Then: exact cumulative
 * buckets, _sum and _count from known histograms; every op x result series;
 * each scalar from its own snapshot field; label escaping; floats; -EIO
 * from a failing stream; and promtool's own verdict.
 */
#include "config.h"

#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "hist.h"
#include "metrics.h"
#include "proto.h"

/* --- helpers ----------------------------------------------------------- */

/* m rendered; caller frees. */
static char *render(const metrics_snapshot *m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	cr_assert_not_null(f);
	cr_assert_eq(metrics_render(m, f), 0);
	cr_assert_eq(fclose(f), 0);
	cr_assert_not_null(buf);
	return buf;
}

static hist *new_hist(void)
{
	hist *h = NULL;

	cr_assert_eq(hist_new(&h), 0);
	return h;
}

/* Whether text holds line (given without its newline) as a whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define assert_line(text, line) \
	cr_assert(has_line((text), (line)), "missing line: %s\n--- in:\n%s", (line), (text))

/* A snapshot with every field non-zero and distinct, and its histograms
 * (caller frees them with free_hists). */
#define NHISTS 7
static void full_snapshot(metrics_snapshot *m, hist *h[NHISTS])
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < NHISTS; i++)
		h[i] = new_hist();
	m->version = "0.9.1";
	m->uptime_seconds = 3600.25;
	for (int op = 0; op < METRICS_NOPS; op++)
		for (int r = 0; r < METRICS_NRESULTS; r++)
			m->requests[op][r] = 1000u * (unsigned)op + (unsigned)r + 1u;
	for (int op = 0; op < METRICS_NOPS; op++) {
		hist_record_n(h[op], 50, 10);
		hist_record_n(h[op], 3000, 5);
		hist_record(h[op], 2000000);
		m->latency_us[op] = h[op];
	}
	hist_record_n(h[3], 120, 4);
	m->replica_get_us = h[3];
	hist_record_n(h[4], 700, 3);
	m->replica_put_us = h[4];
	hist_record_n(h[5], 1, 3);
	hist_record_n(h[5], 2, 2);
	hist_record(h[5], 7);
	hist_record(h[5], 100);
	m->siblings = h[5];
	hist_record_n(h[6], 4000, 2);
	m->fsync_us = h[6];
	m->forwarded = 101;
	m->read_repairs = 102;
	m->errors = 103;
	m->hints_pending = 104;
	m->hints_delivered = 105;
	m->hints_refused = 106;
	m->aae_exchanges = 107;
	m->aae_repaired = 108;
	m->tombstones_waiting = 109;
	m->tombstones_reaped = 110;
	m->transfers_received = 111;
	m->transfer_merged_bytes = 112;
	m->transfer_served_bytes = 113;
	m->transfers_dropped = 114;
	m->transfers_active = 115;
	m->transfers_pending = 116;
	m->keys = 117;
	m->live_bytes = 118;
	m->dead_bytes = 119;
	m->disk_bytes = 120;
	m->keydir_bytes = 121;
	m->merges = 122;
	m->partitions_open = 123;
	m->partitions_held = 124;
	m->connections = 125;
	m->members[METRICS_UP] = 126;
	m->members[METRICS_SUSPECT] = 127;
	m->members[METRICS_DOWN] = 128;
	m->ring_epochs = 129;
	m->ring_size = 130;
	m->n_val = 131;
}

static void free_hists(hist *h[NHISTS])
{
	for (int i = 0; i < NHISTS; i++)
		hist_free(h[i]);
}

/* --- the format checker ------------------------------------------------ */

typedef struct family {
	char name[96];
	char type[16];
	unsigned samples;
} family;

typedef struct parsed {
	family f[64];
	size_t n;
} parsed;

/* One sample: name, optional labels (escapes \\ \" \n), a value; no
 * timestamp (we write none). */
#define NAME_RE  "[a-zA-Z_:][a-zA-Z0-9_:]*"
#define LABEL_RE "[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\[\\\\\"n])*\""
#define VALUE_RE "(NaN|[+-]Inf|[-+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+)?)"
#define SAMPLE_RE "^" NAME_RE "(\\{(" LABEL_RE "(," LABEL_RE ")*)?\\})? " VALUE_RE "$"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A histogram series being read: its labels but le, how far it got, its
 * last bucket. */
typedef struct series {
	char key[128];
	enum { S_NONE, S_BUCKETS, S_INF, S_SUM, S_DONE } state;
	double le;
	uint64_t count;            /* of the last bucket read */
} series;

/* The labels of a histogram sample, le taken out of a _bucket's into le. */
static void hist_labels(const char *line, char *key, size_t keylen, char *le, size_t lelen)
{
	const char *p = line + strcspn(line, "{ "), *end, *l;

	key[0] = '\0';
	le[0] = '\0';
	if (*p != '{')
		return;
	end = strchr(p, '}');
	cr_assert_not_null(end, "%s", line);
	l = strstr(p, "le=\"");
	if (l == NULL || l > end) {
		snprintf(key, keylen, "%.*s", (int)(end - p - 1), p + 1);
		return;
	}
	snprintf(key, keylen, "%.*s", (int)(l - p - 1 - (l[-1] == ',')), p + 1);
	cr_assert(l + 4 < end && strchr(l + 4, '"') == end - 1, "le last: %s", line);
	snprintf(le, lelen, "%.*s", (int)(end - 1 - (l + 4)), l + 4);
}

/* One sample of a histogram: buckets with increasing le and
 * non-decreasing counts up to +Inf, then _sum, then _count equal to the
 * +Inf bucket; a series' labels differ from the one before. */
static void check_hist_sample(series *s, const char *line, const char *suffix,
			      const char *value)
{
	char key[128], le[32];
	uint64_t v = strtoull(value, NULL, 10);

	hist_labels(line, key, sizeof(key), le, sizeof(le));
	if (strcmp(suffix, "_bucket") == 0) {
		double b;

		cr_assert(le[0] != '\0', "a bucket without le: %s", line);
		b = strtod(le, NULL);
		if (s->state == S_NONE || s->state == S_DONE) {
			cr_assert(s->state == S_NONE || strcmp(key, s->key) != 0,
				  "series twice: %s", line);
			snprintf(s->key, sizeof(s->key), "%s", key);
			s->state = S_BUCKETS;
		} else {
			cr_assert_eq(s->state, S_BUCKETS, "bucket after +Inf: %s", line);
			cr_assert_str_eq(key, s->key, "series unfinished: %s", line);
			cr_assert(b > s->le, "le not increasing: %s", line);
			cr_assert(v >= s->count, "bucket count decreasing: %s", line);
		}
		s->le = b;
		s->count = v;
		if (strcmp(le, "+Inf") == 0)
			s->state = S_INF;
		return;
	}
	cr_assert(le[0] == '\0', "le on %s: %s", suffix, line);
	cr_assert_str_eq(key, s->key, "%s of another series: %s", suffix, line);
	if (strcmp(suffix, "_sum") == 0) {
		cr_assert_eq(s->state, S_INF, "_sum not after +Inf: %s", line);
		s->state = S_SUM;
		return;
	}
	cr_assert_eq(s->state, S_SUM, "_count not after _sum: %s", line);
	cr_assert_eq(v, s->count, "_count != +Inf bucket: %s", line);
	s->state = S_DONE;
}

/* Check text against the format's rules; its families into *p. */
static void parse(const char *text, parsed *p)
{
	char *copy = strdup(text), *save = NULL, *line;
	family *f = NULL;
	bool want_type = false;
	series s = { .state = S_NONE };
	regex_t re;

	cr_assert_eq(regcomp(&re, SAMPLE_RE, REG_EXTENDED | REG_NOSUB), 0);
	cr_assert_not_null(copy);
	memset(p, 0, sizeof(*p));
	cr_assert(text[0] != '\0' && text[strlen(text) - 1] == '\n', "ends with a newline");
	cr_assert_null(strstr(text, "\n\n"), "no empty line");
	for (line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			const char *name = line + 7, *sp = strchr(name, ' ');

			cr_assert(!want_type, "HELP without TYPE before: %s", line);
			cr_assert(s.state == S_NONE || s.state == S_DONE, "histogram unfinished: %s", line);
			s.state = S_NONE;
			cr_assert(sp != NULL && sp[1] != '\0', "HELP without text: %s", line);
			cr_assert_lt(p->n, sizeof(p->f) / sizeof(p->f[0]));
			f = &p->f[p->n++];
			snprintf(f->name, sizeof(f->name), "%.*s", (int)(sp - name), name);
			for (size_t i = 0; i + 1 < p->n; i++)
				cr_assert_str_neq(p->f[i].name, f->name, "family twice: %s", f->name);
			want_type = true;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[96], type[16];

			cr_assert(want_type, "TYPE without HELP just before: %s", line);
			cr_assert_eq(sscanf(line + 7, "%95s %15s", name, type), 2, "%s", line);
			cr_assert_str_eq(name, f->name, "TYPE of another family: %s", line);
			cr_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
				  strcmp(type, "histogram") == 0, "type: %s", line);
			if (strcmp(type, "counter") == 0)
				cr_assert(ends_with(name, "_total"), "counter without _total: %s", line);
			else
				cr_assert(!ends_with(name, "_total"), "_total on a %s: %s", type, line);
			snprintf(f->type, sizeof(f->type), "%s", type);
			want_type = false;
		} else {
			const char *end = line + strcspn(line, "{ "), *value = strrchr(line, ' ') + 1;
			char name[128];

			cr_assert(line[0] != '#', "a comment neither HELP nor TYPE: %s", line);
			cr_assert_eq(regexec(&re, line, 0, NULL, 0), 0, "not a sample: %s", line);
			cr_assert(f != NULL && !want_type, "sample before its TYPE: %s", line);
			snprintf(name, sizeof(name), "%.*s", (int)(end - line), line);
			cr_assert_eq(strncmp(name, f->name, strlen(f->name)), 0, "outside: %s", line);
			f->samples++;
			if (strcmp(f->type, "histogram") != 0) {
				cr_assert_str_eq(name, f->name, "sample outside its family: %s", line);
				continue;
			}
			snprintf(name, sizeof(name), "%s", line + strlen(f->name));
			name[end - line - strlen(f->name)] = '\0';      /* the suffix */
			cr_assert(strcmp(name, "_bucket") == 0 || strcmp(name, "_sum") == 0 ||
				  strcmp(name, "_count") == 0, "histogram sample: %s", line);
			check_hist_sample(&s, line, name, value);
		}
	}
	cr_assert(s.state == S_NONE || s.state == S_DONE, "the last histogram is unfinished");
	cr_assert(!want_type, "the last family has no TYPE");
	regfree(&re);
	free(copy);
}

/* The families metrics.h promises, in order, and their series (a
 * histogram series counted as its 17 or 10 bucket lines + _sum + _count). */
static const struct {
	const char *name, *type;
	unsigned samples;
} expected[] = {
	{ "dynkv_build_info", "gauge", 1 },
	{ "dynkv_uptime_seconds", "gauge", 1 },
	{ "dynkv_requests_total", "counter", 3 * 14 - 2 },
	{ "dynkv_request_duration_seconds", "histogram", 3 * (17 + 2) },
	{ "dynkv_replica_request_duration_seconds", "histogram", 2 * (17 + 2) },
	{ "dynkv_siblings_per_read", "histogram", 10 + 2 },
	{ "dynkv_forwarded_writes_total", "counter", 1 },
	{ "dynkv_read_repairs_total", "counter", 1 },
	{ "dynkv_error_replies_total", "counter", 1 },
	{ "dynkv_hints_pending", "gauge", 1 },
	{ "dynkv_hints_delivered_total", "counter", 1 },
	{ "dynkv_hints_refused_total", "counter", 1 },
	{ "dynkv_aae_exchanges_total", "counter", 1 },
	{ "dynkv_aae_keys_repaired_total", "counter", 1 },
	{ "dynkv_tombstones_waiting", "gauge", 1 },
	{ "dynkv_tombstones_reaped_total", "counter", 1 },
	{ "dynkv_transfers_received_total", "counter", 1 },
	{ "dynkv_transfer_merged_bytes_total", "counter", 1 },
	{ "dynkv_transfer_served_bytes_total", "counter", 1 },
	{ "dynkv_transfers_dropped_total", "counter", 1 },
	{ "dynkv_transfers_active", "gauge", 1 },
	{ "dynkv_transfers_pending", "gauge", 1 },
	{ "dynkv_store_keys", "gauge", 1 },
	{ "dynkv_store_live_bytes", "gauge", 1 },
	{ "dynkv_store_dead_bytes", "gauge", 1 },
	{ "dynkv_store_disk_bytes", "gauge", 1 },
	{ "dynkv_keydir_bytes", "gauge", 1 },
	{ "dynkv_store_merges_total", "counter", 1 },
	{ "dynkv_partitions_open", "gauge", 1 },
	{ "dynkv_partitions_held", "gauge", 1 },
	{ "dynkv_fsync_duration_seconds", "histogram", 17 + 2 },
	{ "dynkv_connections", "gauge", 1 },
	{ "dynkv_members", "gauge", 3 },
	{ "dynkv_ring_epochs", "gauge", 1 },
	{ "dynkv_ring_size", "gauge", 1 },
	{ "dynkv_n_val", "gauge", 1 },
};
#define NEXPECTED (sizeof(expected) / sizeof(expected[0]))

static void check_families(const parsed *p)
{
	cr_assert_eq(p->n, NEXPECTED, "%zu families, want %zu", p->n, NEXPECTED);
	for (size_t i = 0; i < NEXPECTED; i++) {
		cr_assert_str_eq(p->f[i].name, expected[i].name, "family %zu", i);
		cr_assert_str_eq(p->f[i].type, expected[i].type, "%s", expected[i].name);
		cr_assert_eq(p->f[i].samples, expected[i].samples, "%s: %u series, want %u",
			     expected[i].name, p->f[i].samples, expected[i].samples);
	}
}

/* --- the families ------------------------------------------------------ */

Test(metrics, zero_snapshot_has_every_family_and_series)
{
	metrics_snapshot m = { .version = "1.2.3" };
	char *text = render(&m);
	parsed p;

	parse(text, &p);
	check_families(&p);
	assert_line(text, "dynkv_build_info{version=\"1.2.3\"} 1");
	assert_line(text, "dynkv_uptime_seconds 0");
	assert_line(text, "dynkv_requests_total{op=\"delete\",result=\"internal\"} 0");
	/* A NULL hist is an empty histogram. */
	assert_line(text, "dynkv_request_duration_seconds_bucket{op=\"put\",le=\"0.0001\"} 0");
	assert_line(text, "dynkv_request_duration_seconds_bucket{op=\"put\",le=\"+Inf\"} 0");
	assert_line(text, "dynkv_request_duration_seconds_sum{op=\"put\"} 0");
	assert_line(text, "dynkv_request_duration_seconds_count{op=\"put\"} 0");
	assert_line(text, "dynkv_siblings_per_read_sum 0");
	assert_line(text, "dynkv_fsync_duration_seconds_count 0");
	assert_line(text, "dynkv_members{liveness=\"suspect\"} 0");
	free(text);
}

Test(metrics, full_snapshot_keeps_the_format)
{
	metrics_snapshot m;
	hist *h[NHISTS];
	char *text;
	parsed p;

	full_snapshot(&m, h);
	text = render(&m);
	parse(text, &p);
	check_families(&p);
	free(text);
	free_hists(h);
}

/* The bounds, as the format reads them, in the order written. */
Test(metrics, bucket_bounds_as_written)
{
	static const char *const le[] = {
		"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
		"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
	};
	static const char *const sib[] = { "1", "2", "3", "4", "5", "8", "16", "32", "64", "+Inf" };
	metrics_snapshot m = { .version = "x" };
	char *text = render(&m), line[160];
	const char *at = text;

	for (size_t i = 0; i < sizeof(le) / sizeof(le[0]); i++) {
		snprintf(line, sizeof(line),
			 "\ndynkv_fsync_duration_seconds_bucket{le=\"%s\"} 0\n", le[i]);
		at = strstr(at, line);
		cr_assert_not_null(at, "missing or out of order: %s", line + 1);
	}
	at = text;
	for (size_t i = 0; i < sizeof(sib) / sizeof(sib[0]); i++) {
		snprintf(line, sizeof(line), "\ndynkv_siblings_per_read_bucket{le=\"%s\"} 0\n", sib[i]);
		at = strstr(at, line);
		cr_assert_not_null(at, "missing or out of order: %s", line + 1);
	}
	free(text);
}

/* 50 us x 10, 3000 us x 5 (hist bucket 2992..3007), 2 s x 1 (bucket
 * 1998848..2007039): cumulative buckets, _sum 2.0155 s, _count 16. */
Test(metrics, known_latencies_give_exact_buckets)
{
	static const struct {
		const char *le;
		unsigned count;
	} want[] = {
		{ "0.0001", 10 }, { "0.00025", 10 }, { "0.0005", 10 }, { "0.001", 10 },
		{ "0.0025", 10 }, { "0.005", 15 }, { "0.01", 15 }, { "0.025", 15 },
		{ "0.05", 15 }, { "0.1", 15 }, { "0.25", 15 }, { "0.5", 15 },
		{ "1", 15 }, { "2.5", 16 }, { "5", 16 }, { "10", 16 }, { "+Inf", 16 },
	};
	metrics_snapshot m;
	hist *h[NHISTS];
	char *text, line[160];

	full_snapshot(&m, h);
	text = render(&m);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		snprintf(line, sizeof(line),
			 "dynkv_request_duration_seconds_bucket{op=\"delete\",le=\"%s\"} %u",
			 want[i].le, want[i].count);
		assert_line(text, line);
	}
	assert_line(text, "dynkv_request_duration_seconds_sum{op=\"delete\"} 2.0155");
	assert_line(text, "dynkv_request_duration_seconds_count{op=\"delete\"} 16");
	/* The other histograms, each from its own field. */
	assert_line(text, "dynkv_replica_request_duration_seconds_bucket{op=\"get\",le=\"0.0001\"} 0");
	assert_line(text, "dynkv_replica_request_duration_seconds_bucket{op=\"get\",le=\"0.00025\"} 4");
	assert_line(text, "dynkv_replica_request_duration_seconds_sum{op=\"get\"} 0.00048");
	assert_line(text, "dynkv_replica_request_duration_seconds_bucket{op=\"put\",le=\"0.0005\"} 0");
	assert_line(text, "dynkv_replica_request_duration_seconds_bucket{op=\"put\",le=\"0.001\"} 3");
	assert_line(text, "dynkv_replica_request_duration_seconds_sum{op=\"put\"} 0.0021");
	assert_line(text, "dynkv_replica_request_duration_seconds_count{op=\"put\"} 3");
	assert_line(text, "dynkv_fsync_duration_seconds_bucket{le=\"0.0025\"} 0");
	assert_line(text, "dynkv_fsync_duration_seconds_bucket{le=\"0.005\"} 2");
	assert_line(text, "dynkv_fsync_duration_seconds_sum 0.008");
	free(text);
	free_hists(h);
}

/* 1 x 3, 2 x 2, 7, 100: no unit, bounds 1 2 3 4 5 8 16 32 64. */
Test(metrics, known_siblings_give_exact_buckets)
{
	metrics_snapshot m;
	hist *h[NHISTS];
	char *text;

	full_snapshot(&m, h);
	text = render(&m);
	assert_line(text, "dynkv_siblings_per_read_bucket{le=\"1\"} 3");
	assert_line(text, "dynkv_siblings_per_read_bucket{le=\"2\"} 5");
	assert_line(text, "dynkv_siblings_per_read_bucket{le=\"5\"} 5");
	assert_line(text, "dynkv_siblings_per_read_bucket{le=\"8\"} 6");
	assert_line(text, "dynkv_siblings_per_read_bucket{le=\"64\"} 6");
	assert_line(text, "dynkv_siblings_per_read_bucket{le=\"+Inf\"} 7");
	assert_line(text, "dynkv_siblings_per_read_sum 114");
	assert_line(text, "dynkv_siblings_per_read_count 7");
	free(text);
	free_hists(h);
}

/* A bucket counts the hist buckets that end at or below it: 100 us is
 * exact (below 256) and counts in le=0.0001; 1000 us shares the hist bucket
 * 1000..1003, which ends past 0.001, so it counts from le=0.0025 on. */
Test(metrics, a_value_on_a_bound_counts_within_its_hist_bucket)
{
	metrics_snapshot m = { .version = "x" };
	hist *h = new_hist();
	char *text;

	hist_record(h, 100);
	hist_record(h, 1000);
	m.latency_us[METRICS_GET] = h;
	text = render(&m);
	assert_line(text, "dynkv_request_duration_seconds_bucket{op=\"get\",le=\"0.0001\"} 1");
	assert_line(text, "dynkv_request_duration_seconds_bucket{op=\"get\",le=\"0.001\"} 1");
	assert_line(text, "dynkv_request_duration_seconds_bucket{op=\"get\",le=\"0.0025\"} 2");
	assert_line(text, "dynkv_request_duration_seconds_sum{op=\"get\"} 0.0011");
	free(text);
	hist_free(h);
}

/* Every op x result, each from its own cell; not_found for get only. */
Test(metrics, every_request_series_from_its_cell)
{
	static const char *const ops[] = { "get", "put", "delete" };
	static const char *const results[] = {
		"ok", "not_found", "protocol", "version", "type", "too_big", "invalid",
		"quorum", "timeout", "storage", "overload", "shutdown", "context", "internal",
	};
	metrics_snapshot m;
	hist *h[NHISTS];
	char *text, line[160];

	cr_assert_eq(sizeof(results) / sizeof(results[0]), METRICS_NRESULTS);
	full_snapshot(&m, h);
	m.requests[METRICS_PUT][METRICS_RESULT_ERR + PROTO_ERR_TOOBIG - 1] = 77777;
	text = render(&m);
	assert_line(text, "dynkv_requests_total{op=\"put\",result=\"too_big\"} 77777");
	for (int op = 0; op < METRICS_NOPS; op++)
		for (int r = 0; r < METRICS_NRESULTS; r++) {
			snprintf(line, sizeof(line), "dynkv_requests_total{op=\"%s\",result=\"%s\"} %llu",
				 ops[op], results[r], (unsigned long long)m.requests[op][r]);
			if (r == METRICS_RESULT_NOT_FOUND && op != METRICS_GET)
				cr_assert(!has_line(text, line), "%s", line);
			else
				assert_line(text, line);
		}
	cr_assert_null(strstr(text, "op=\"put\",result=\"not_found\""));
	cr_assert_null(strstr(text, "op=\"delete\",result=\"not_found\""));
	free(text);
	free_hists(h);
}

/* Each scalar family shows its own snapshot field (full_snapshot numbers
 * them 101..131 in field order). */
Test(metrics, every_scalar_from_its_field)
{
	static const char *const lines[] = {
		"dynkv_forwarded_writes_total 101",
		"dynkv_read_repairs_total 102",
		"dynkv_error_replies_total 103",
		"dynkv_hints_pending 104",
		"dynkv_hints_delivered_total 105",
		"dynkv_hints_refused_total 106",
		"dynkv_aae_exchanges_total 107",
		"dynkv_aae_keys_repaired_total 108",
		"dynkv_tombstones_waiting 109",
		"dynkv_tombstones_reaped_total 110",
		"dynkv_transfers_received_total 111",
		"dynkv_transfer_merged_bytes_total 112",
		"dynkv_transfer_served_bytes_total 113",
		"dynkv_transfers_dropped_total 114",
		"dynkv_transfers_active 115",
		"dynkv_transfers_pending 116",
		"dynkv_store_keys 117",
		"dynkv_store_live_bytes 118",
		"dynkv_store_dead_bytes 119",
		"dynkv_store_disk_bytes 120",
		"dynkv_keydir_bytes 121",
		"dynkv_store_merges_total 122",
		"dynkv_partitions_open 123",
		"dynkv_partitions_held 124",
		"dynkv_connections 125",
		"dynkv_members{liveness=\"up\"} 126",
		"dynkv_members{liveness=\"suspect\"} 127",
		"dynkv_members{liveness=\"down\"} 128",
		"dynkv_ring_epochs 129",
		"dynkv_ring_size 130",
		"dynkv_n_val 131",
		"dynkv_build_info{version=\"0.9.1\"} 1",
		"dynkv_uptime_seconds 3600.25",
	};
	metrics_snapshot m;
	hist *h[NHISTS];
	char *text;

	full_snapshot(&m, h);
	text = render(&m);
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		assert_line(text, lines[i]);
	free(text);
	free_hists(h);
}

/* Integers whole, past 2^53 too; floats the shortest that read back. */
Test(metrics, numbers)
{
	metrics_snapshot m = { .version = "x", .uptime_seconds = 0.1 };
	char *text;

	m.forwarded = UINT64_MAX;
	text = render(&m);
	assert_line(text, "dynkv_forwarded_writes_total 18446744073709551615");
	assert_line(text, "dynkv_uptime_seconds 0.1");
	free(text);
	m.uptime_seconds = 1.0 / 3.0;
	text = render(&m);
	assert_line(text, "dynkv_uptime_seconds 0.3333333333333333");
	free(text);
}

Test(metrics, version_label_is_escaped)
{
	metrics_snapshot m = { .version = "1.0 \"q\" back\\slash\nnext" };
	char *text = render(&m);
	parsed p;

	assert_line(text, "dynkv_build_info{version=\"1.0 \\\"q\\\" back\\\\slash\\nnext\"} 1");
	parse(text, &p);
	free(text);
}

/* A stream that fails, unbuffered (the first fprintf fails) or with a
 * buffer that holds the whole text (only the flush at the end fails): -EIO
 * either way. */
Test(metrics, failing_stream_is_eio)
{
	static char big[1 << 16];
	metrics_snapshot m;
	hist *h[NHISTS];
	FILE *f;

	full_snapshot(&m, h);
	f = fopen("/dev/full", "w");
	cr_assert_not_null(f);
	cr_assert_eq(setvbuf(f, NULL, _IONBF, 0), 0);
	cr_assert_eq(metrics_render(&m, f), -EIO);
	fclose(f);
	f = fopen("/dev/full", "w");
	cr_assert_not_null(f);
	cr_assert_eq(setvbuf(f, big, _IOFBF, sizeof(big)), 0);
	cr_assert_eq(metrics_render(&m, f), -EIO);
	fclose(f);
	free_hists(h);
}

/* Prometheus's own checker and linter: it must print nothing. */
Test(metrics, promtool_finds_nothing)
{
	char path[] = "/tmp/dynkv-metrics.XXXXXX", cmd[256], out[4096];
	metrics_snapshot m;
	hist *h[NHISTS];
	size_t n = 0, got;
	char *text;
	FILE *f, *pipe;
	int fd, status;

	cr_assert_eq(system("command -v promtool >/dev/null 2>&1"), 0,
		     "promtool not found: install the prometheus package "
		     "(apt-get install prometheus; tests/check-all does)");
	full_snapshot(&m, h);
	text = render(&m);
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, true);
	cr_assert_eq(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", path);
	pipe = popen(cmd, "r");
	cr_assert_not_null(pipe);
	while (n + 1 < sizeof(out) && (got = fread(out + n, 1, sizeof(out) - 1 - n, pipe)) > 0)
		n += got;
	out[n] = '\0';
	status = pclose(pipe);
	unlink(path);
	cr_assert_str_empty(out, "promtool check metrics says:\n%s", out);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "promtool status %d", status);
	free(text);
	free_hists(h);
}
