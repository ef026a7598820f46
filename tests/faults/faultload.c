/*
 * faultload.c -- the fault suite's workload (tests/faults/README): threads
 * of gets, puts and deletes of a small key space, each through a node
 * drawn at random from a targets file the nemesis keeps current, every
 * operation and its outcome written to a log for faultcheck.
 *
 *   faultload --targets FILE --log FILE [--seconds S] [--threads T]
 *             [--keys K] [--seed N] [--timeout-ms MS]
 *
 * Operations (as the simulated suite's, tests/sim/simfault.h): gets,
 * blind puts, puts and deletes carrying the context of this thread's
 * last successful get of the key, and replace-mode puts and deletes; R, W
 * and PW drawn per request.  A value names the write that made it,
 * "k<key>#w<op>|" padded with '.' to a length drawn from the op id, so a
 * sibling found anywhere names its writer.
 *
 * THE LOG: one line per operation, tab-separated, in no particular order:
 *   id kind key node issue_ms end_ms ok w pw get_from nseen seen...
 * kind: get put put-ctx put-replace del-ctx del-replace; node: the target
 * address; times: CLOCK_REALTIME milliseconds (the nemesis's clock);
 * end_ms: when the answer came (0 for an error: a failed or timed-out
 * write may still be applied at any time); ok: 1 or 0; w, pw: the counts
 * asked for (default resolved to 2, quorum of 3); get_from: the get whose
 * context a put-ctx or del-ctx carried (-1: none); seen: the op ids of the
 * values a get showed.
 *
 * The targets file holds one address per line; it is reread every 500 ms.
 * Exit: 0 when the run ended (failed requests are data, not errors);
 * 1 on a usage error or when no request could be sent at all.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dynkv.h"

#define MAX_TARGETS 16
#define MAX_ADDR    64
#define MAX_VALUE   600
#define MAX_SEEN    64

typedef enum kind { K_GET, K_PUT, K_PUT_CTX, K_PUT_REPLACE, K_DEL_CTX, K_DEL_REPLACE } kind;
static const char *const kind_name[] = { "get", "put", "put-ctx", "put-replace", "del-ctx",
					 "del-replace" };

static const char *targets_path, *log_path;
static unsigned seconds = 30, nthreads = 8, nkeys = 200, timeout_ms = 2000;
static uint64_t seed = 1;

static FILE *log_fp;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_uint_fast64_t next_id;
static atomic_uint_fast64_t n_ops, n_ok, n_sent;

/* The targets, reread by whichever thread finds them stale. */
static pthread_mutex_t tg_mu = PTHREAD_MUTEX_INITIALIZER;
static char tg[MAX_TARGETS][MAX_ADDR];
static size_t ntg;
static uint64_t tg_read_ms;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void reload_targets(void)
{
	FILE *f;
	char line[256];
	size_t n = 0;

	if ((f = fopen(targets_path, "r")) == NULL)
		return;
	while (n < MAX_TARGETS && fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] != '\0' && strlen(line) < MAX_ADDR)
			snprintf(tg[n++], MAX_ADDR, "%s", line);
	}
	fclose(f);
	if (n > 0)
		ntg = n;
}

/* A target drawn at random into addr; false when there is none. */
static bool pick_target(uint64_t *rs, char *addr)
{
	bool ok;

	pthread_mutex_lock(&tg_mu);
	if (now_ms() - tg_read_ms >= 500) {
		reload_targets();
		tg_read_ms = now_ms();
	}
	ok = ntg > 0;
	if (ok)
		snprintf(addr, MAX_ADDR, "%s", tg[rnd(rs) % ntg]);
	pthread_mutex_unlock(&tg_mu);
	return ok;
}

/* One thread's connections, by address. */
typedef struct conns {
	char addr[MAX_TARGETS * 2][MAX_ADDR];
	dynkv *c[MAX_TARGETS * 2];
	size_t n;
} conns;

static dynkv *conn_for(conns *cs, const char *addr)
{
	size_t i;
	dynkv_config cfg;
	char err[256];

	for (i = 0; i < cs->n; i++)
		if (strcmp(cs->addr[i], addr) == 0)
			break;
	if (i == cs->n) {
		if (cs->n == MAX_TARGETS * 2) {
			/* forget the oldest */
			dynkv_close(cs->c[0]);
			memmove(&cs->c[0], &cs->c[1], sizeof(cs->c[0]) * (cs->n - 1));
			memmove(&cs->addr[0], &cs->addr[1], sizeof(cs->addr[0]) * (cs->n - 1));
			i = --cs->n;
		}
		snprintf(cs->addr[i], MAX_ADDR, "%s", addr);
		cs->c[i] = NULL;
		cs->n++;
	}
	if (cs->c[i] != NULL && dynkv_is_broken(cs->c[i])) {
		dynkv_close(cs->c[i]);
		cs->c[i] = NULL;
	}
	if (cs->c[i] == NULL) {
		dynkv_config_init(&cfg);
		cfg.address = addr;
		cfg.connect_timeout_ms = 500;
		cfg.request_timeout_ms = timeout_ms + 3000;
		if (dynkv_connect(&cs->c[i], &cfg, err, sizeof(err)) != 0)
			cs->c[i] = NULL;
	}
	return cs->c[i];
}

/* This thread's last successful get of each key: its id and context. */
typedef struct lastget {
	int64_t id;
	uint8_t *ctx;
	size_t len;
} lastget;

static void make_value(char *buf, size_t *len, unsigned key, uint64_t id)
{
	int n = snprintf(buf, MAX_VALUE, "k%u#w%" PRIu64 "|", key, id);
	size_t want = 16 + (size_t)(id * 2654435761u % 480);

	if (want < (size_t)n)
		want = (size_t)n;
	memset(buf + n, '.', want - (size_t)n);
	*len = want;
}

/* The op id a value names, or -1. */
static int64_t value_id(const uint8_t *v, size_t len)
{
	const uint8_t *h = memchr(v, '#', len);
	char num[24];
	size_t i = 0;

	if (h == NULL || h + 1 >= v + len || h[1] != 'w')
		return -1;
	for (h += 2; h < v + len && *h >= '0' && *h <= '9' && i + 1 < sizeof(num); h++)
		num[i++] = (char)*h;
	num[i] = '\0';
	return i ? (int64_t)strtoll(num, NULL, 10) : -1;
}

static int quorum_count(int q)
{
	return q > 0 ? q : q == DYNKV_ONE ? 1 : q == DYNKV_ALL ? 3 : 2;
}

static void *worker(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t rs = seed * 1000003u + t, until = now_ms() + (uint64_t)seconds * 1000;
	lastget *lg = calloc(nkeys, sizeof(*lg));
	conns *cs = calloc(1, sizeof(*cs));
	char addr[MAX_ADDR], value[MAX_VALUE], line[4096];
	static const int qs[] = { 0, 0, DYNKV_ONE, 2, DYNKV_ALL };

	if (lg == NULL || cs == NULL)
		abort();
	for (size_t i = 0; i < nkeys; i++)
		lg[i].id = -1;
	while (now_ms() < until) {
		unsigned key = (unsigned)(rnd(&rs) % nkeys), roll = (unsigned)(rnd(&rs) % 100);
		kind k = roll < 35 ? K_GET : roll < 45 ? K_PUT : roll < 62 ? K_PUT_CTX :
			 roll < 80 ? K_PUT_REPLACE : roll < 90 ? K_DEL_CTX : K_DEL_REPLACE;
		dynkv_opts o = { 0 };
		dynkv_result res = { 0 };
		char name[16];
		size_t vlen = 0, at;
		uint64_t id, issue, end;
		int64_t get_from = -1;
		dynkv *c;
		int rc;

		if ((k == K_PUT_CTX || k == K_DEL_CTX) && lg[key].id < 0)
			k = K_GET;
		if (!pick_target(&rs, addr)) {
			usleep(100000);
			continue;
		}
		snprintf(name, sizeof(name), "k%u", key);
		o.timeout_ms = timeout_ms;
		o.r = qs[rnd(&rs) % 5];
		o.w = qs[rnd(&rs) % 5];
		o.pw = rnd(&rs) % 10 == 0 ? 1 : 0;
		o.replace = k == K_PUT_REPLACE || k == K_DEL_REPLACE;
		id = atomic_fetch_add(&next_id, 1);
		issue = now_ms();
		c = conn_for(cs, addr);
		if (c == NULL) {
			rc = DYNKV_EIO;
		} else {
			atomic_fetch_add(&n_sent, 1);
			switch (k) {
			case K_GET:
				rc = dynkv_get(c, name, strlen(name), &o, &res);
				break;
			case K_PUT:
			case K_PUT_REPLACE:
				make_value(value, &vlen, key, id);
				rc = dynkv_put(c, name, strlen(name), value, vlen, NULL, 0, &o, NULL);
				break;
			case K_PUT_CTX:
				make_value(value, &vlen, key, id);
				get_from = lg[key].id;
				rc = dynkv_put(c, name, strlen(name), value, vlen, lg[key].ctx,
					       lg[key].len, &o, NULL);
				break;
			case K_DEL_CTX:
				get_from = lg[key].id;
				rc = dynkv_delete(c, name, strlen(name), lg[key].ctx, lg[key].len, &o,
						  NULL);
				break;
			default:
				rc = dynkv_delete(c, name, strlen(name), NULL, 0, &o, NULL);
				break;
			}
		}
		end = rc == 0 ? now_ms() : 0;
		atomic_fetch_add(&n_ops, 1);
		if (rc == 0)
			atomic_fetch_add(&n_ok, 1);
		at = (size_t)snprintf(line, sizeof(line),
				      "%" PRIu64 "\t%s\t%u\t%s\t%" PRIu64 "\t%" PRIu64 "\t%d\t%d\t%d\t%" PRId64,
				      id, kind_name[k], key, addr, issue, end, rc == 0,
				      quorum_count(o.w), o.pw, get_from);
		if (k == K_GET && rc == 0) {
			size_t n = res.nvalues < MAX_SEEN ? res.nvalues : MAX_SEEN;

			at += (size_t)snprintf(line + at, sizeof(line) - at, "\t%zu", n);
			for (size_t i = 0; i < n; i++)
				at += (size_t)snprintf(line + at, sizeof(line) - at, "\t%" PRId64,
						       value_id(res.values[i].data, res.values[i].len));
			free(lg[key].ctx);
			lg[key].ctx = NULL;
			lg[key].len = res.context.len;
			lg[key].id = (int64_t)id;
			if (res.context.len > 0) {
				if ((lg[key].ctx = malloc(res.context.len)) == NULL)
					abort();
				memcpy(lg[key].ctx, res.context.data, res.context.len);
			}
			dynkv_result_free(&res);
		} else {
			at += (size_t)snprintf(line + at, sizeof(line) - at, "\t0");
		}
		(void)at;
		pthread_mutex_lock(&log_mu);
		fprintf(log_fp, "%s\n", line);
		pthread_mutex_unlock(&log_mu);
		/* about 100 requests a second per thread at most */
		usleep((useconds_t)(2000 + rnd(&rs) % 16000));
	}
	for (size_t i = 0; i < nkeys; i++)
		free(lg[i].ctx);
	for (size_t i = 0; i < cs->n; i++)
		dynkv_close(cs->c[i]);
	free(lg);
	free(cs);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: faultload --targets FILE --log FILE [--seconds S] [--threads T]\n"
		"                 [--keys K] [--seed N] [--timeout-ms MS]\n");
	exit(1);
}

static unsigned num(const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "faultload: %s: not a number from %u to %u\n", s, lo, hi);
		exit(1);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	pthread_t th[64];

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			usage();
		if (strcmp(a, "--targets") == 0)
			targets_path = v;
		else if (strcmp(a, "--log") == 0)
			log_path = v;
		else if (strcmp(a, "--seconds") == 0)
			seconds = num(v, 1, 86400);
		else if (strcmp(a, "--threads") == 0)
			nthreads = num(v, 1, 64);
		else if (strcmp(a, "--keys") == 0)
			nkeys = num(v, 1, 1000000);
		else if (strcmp(a, "--seed") == 0)
			seed = num(v, 0, 4000000000u);
		else if (strcmp(a, "--timeout-ms") == 0)
			timeout_ms = num(v, 1, 60000);
		else
			usage();
		i++;
	}
	if (targets_path == NULL || log_path == NULL)
		usage();
	if ((log_fp = fopen(log_path, "w")) == NULL) {
		fprintf(stderr, "faultload: %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	for (unsigned t = 0; t < nthreads; t++)
		if (pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t) != 0) {
			fprintf(stderr, "faultload: cannot start a thread\n");
			return 1;
		}
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	if (fclose(log_fp) != 0) {
		fprintf(stderr, "faultload: %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	printf("faultload: %" PRIu64 " operations, %" PRIu64 " acknowledged, %" PRIu64
	       " sent to a node\n", (uint64_t)n_ops, (uint64_t)n_ok, (uint64_t)n_sent);
	return n_sent > 0 ? 0 : 1;
}
