/*
 * dynkv-bench.c -- a load generator for a dynkv node, or for Redis, so that
 * the two can be measured with the same client under the same load.
 *
 * WHAT IT DOES
 *   One process, one thread, one libevent loop.  --clients C TCP
 *   connections each keep up to --pipeline P requests in flight: a reply
 *   frees its slot and the slot is refilled at once (a closed loop, so the
 *   offered load is whatever the server sustains).  Each request is timed
 *   from the moment it is queued on its connection to the moment its reply
 *   is parsed, in nanoseconds, into a log-linear histogram (hist.h); the
 *   report gives microseconds.  The time a request waits in the client's
 *   output buffer is part of its latency; the time a slot stays empty is
 *   not (coordinated omission, as in every closed-loop tool).
 *
 *   With --rate OPS the run phase is an open loop instead: connection i
 *   has a schedule of its own, one request every C / OPS seconds (the
 *   connections' schedules staggered by 1 / OPS), and a request is due at
 *   its scheduled time whether or not the earlier ones were answered.  A
 *   due request is sent at once if a slot is free, else as soon as one
 *   frees (or the connection is up again); either way its latency counts
 *   from its scheduled time, not from when it was sent, so a server that
 *   stalls is charged for the requests that waited (no coordinated
 *   omission).  A timer per connection (conn.pace) wakes it at its next
 *   due time.  The preload stays a closed loop.
 *
 *   dynkv: frames of proto.h, request ids chosen here and matched on the
 *   reply (a node may answer out of order).  Redis: RESP SET and GET,
 *   replies in order.  The same keys and value bytes for both.
 *
 *   --host may name several nodes of one dynkv cluster, comma-separated:
 *   connection i always connects (and reconnects) to host i mod their
 *   number, so the clients spread evenly over the coordinators.  Every
 *   host is resolved and probed before the run.  Redis takes one host.
 *
 * PHASES
 *   PRELOAD  (workloads with gets, unless --no-preload) every key is put
 *            once, pipelined over every connection; not timed, not counted
 *            in the results, its errors reported on their own.
 *   RUN      --requests N requests are issued (each one completes, with a
 *            reply or an error), or requests are issued until --duration
 *            passes; requests still in flight then are not counted.
 *   DONE     the loop is left and the report printed.
 *
 * A CONNECTION (conn.state)
 *
 *      start --> CONNECTING --connected--> UP --EOF, error, timeout,
 *                   ^   |                       bad reply--> DOWN
 *                   |   +--refused, timed out---------------> DOWN
 *                   +--------retry timer (backoff)------------ DOWN
 *                        DOWN for longer than --timeout -----> GAVE_UP
 *
 *   transition                 function
 *   start, retry -> CONNECTING conn_connect()
 *   CONNECTING -> UP           conn_event() on BEV_EVENT_CONNECTED
 *   any -> DOWN                conn_down(): its in-flight requests complete
 *                              as errors (timeout if past the deadline,
 *                              closed otherwise); a retry is scheduled
 *   DOWN -> GAVE_UP            conn_down() when the outage is older than
 *                              --timeout; when every connection has given
 *                              up, the run stops (exit status 1)
 *
 * TIMEOUTS
 *   A tick every 100 ms looks at the oldest request of every connection: a
 *   request unanswered for --timeout seconds (default 10) counts a timeout
 *   and closes its connection, which reconnects.  So a dead or stopped
 *   server ends a --requests run within about twice --timeout, and a
 *   --duration run always ends on time.
 *
 * CONTEXTS AND SIBLINGS (dynkv)
 *   A dynkv put without a context is concurrent with every value the key
 *   has, so blind puts would pile up siblings.  The bench keeps, per key,
 *   the context of the last reply that carried one (a VALUE, or the OK of a
 *   put: it holds the context of the object the put produced) and sends it
 *   with the next put of that key, as a client chaining its writes would.
 *   Only two puts of one key in flight at once (from two connections) make
 *   siblings; the report counts reads that returned more than one
 *   ("siblings").  Each put of key i writes the same bytes, so every
 *   sibling must equal them.
 *
 * Mutable state lives in one struct bench; the options O are set once by
 * parse_args() and read-only afterwards.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dkv_config.h"
#include "error.h"
#include "hist.h"
#include "proto.h"

#define PROG "dynkv-bench"
#define KEY_DIGITS 12                  /* keys are prefix + %012 index */
#define MAX_KEYS 1000000000000ull      /* 10^12: what 12 digits hold */
#define MAX_PIPELINE 4096u             /* slot index in the low 12 bits of an id */
#define ID_SLOT_BITS 12u
#define MAX_CLIENTS 10000u
#define MAX_HOSTS 64u                  /* entries of a --host list */
#define MAX_VALUE (64u << 20)
#define MAX_FRAME (256u << 20)         /* longest reply frame accepted */
#define MAX_REDIS_LINE 65536u          /* longest RESP line (+, -, $) accepted */
#define TICK_MS 100
#define VALUE_SPREAD 256u              /* distinct value byte strings (by key) */
#define ZIPF_THETA 0.99

/* ------------------------------------------------------------------ options */

enum target { T_DYNKV, T_REDIS };
enum op { OP_GET, OP_PUT, OP_N };
static const char *const op_names[OP_N] = {"get", "put"};

static struct options {
	const char *host_arg;       /* --host as given (one or a list) */
	struct {
		char host[256];     /* its host part, brackets removed */
		uint16_t port;      /* its port */
	} hosts[MAX_HOSTS];         /* the --host list, in order */
	unsigned nhosts;            /* entries in it, >= 1 */
	enum target target;         /* --target */
	char workload[32];          /* "put", "get", "mixed:90/10" */
	unsigned get_pct;           /* percent of requests that are gets */
	unsigned clients;           /* --clients */
	unsigned pipeline;          /* --pipeline */
	uint64_t requests;          /* --requests (0: use --duration) */
	double duration;            /* --duration in seconds (0: use --requests) */
	uint64_t keys;              /* --keys */
	uint32_t vsize;             /* --value-size */
	bool zipf;                  /* true iff --dist zipf */
	int32_t r, w;               /* -r, -w: 0 = node default, or DKV_QUORUM_* */
	int32_t pr, pw;             /* --pr, --pw: the same */
	bool rw_given;              /* true iff -r, -w, --pr or --pw was given */
	bool json;                  /* --json */
	uint64_t seed;              /* --seed */
	const char *prefix;         /* --key-prefix */
	bool preload;               /* false iff --no-preload (or a put workload) */
	double timeout;             /* --timeout, seconds per request */
	double rate;                /* --rate, ops/s of the run (0: closed loop) */
	uint64_t pace_ns;           /* with --rate: ns between one connection's requests */
	double interval;            /* --interval, seconds (0: no interval lines) */
} O;

/* ------------------------------------------------------------------ errors */

/* Kinds of failed requests, besides ERROR replies (one kind per code). */
#define BENCH_ERRORS(X)                                                        \
	X(TIMEOUT,   "timeout",   "no reply within --timeout")                 \
	X(CLOSED,    "closed",    "in flight on a connection that closed")     \
	X(PROTOCOL,  "protocol",  "malformed or unexpected reply")             \
	X(NOT_FOUND, "not_found", "get of a preloaded key found nothing")      \
	X(BAD_VALUE, "bad_value", "get returned bytes other than those put")   \
	X(REDIS,     "redis_err", "Redis answered -ERR")

enum {
#define X(name, str, doc) EK_##name,
	BENCH_ERRORS(X)
#undef X
	EK_SERVER,                          /* + wire code 0..SERVER_CODES-1 */
};
#define SERVER_CODES 16u                    /* codes past 15 count as 0 */
#define EK_N (EK_SERVER + SERVER_CODES)

static const char *const ek_base_names[] = {
#define X(name, str, doc) str,
	BENCH_ERRORS(X)
#undef X
};

/* ------------------------------------------------------------------- state */

enum phase { PH_PRELOAD, PH_RUN, PH_DONE };
enum cstate { CS_DOWN, CS_CONNECTING, CS_UP, CS_GAVE_UP };

/* One request in flight. */
typedef struct slot {
	uint64_t id;                /* dynkv request id; 0 iff the slot is free */
	uint64_t t0;                /* ns, when it was queued */
	uint64_t key;               /* key index */
	uint8_t op;                 /* enum op */
} slot;

struct bench;

/* One client connection. */
typedef struct conn {
	struct bench *b;            /* the run it belongs to */
	unsigned idx;               /* its index in b->conns */
	enum cstate state;          /* see A CONNECTION above */
	struct bufferevent *bev;    /* the socket while CONNECTING or UP, else NULL */
	struct event *retry;        /* reconnect timer */
	slot *slots;                /* O.pipeline entries */
	unsigned *free;             /* dynkv: stack of free slot indices */
	unsigned nfree;             /* dynkv: entries on it */
	unsigned head;              /* redis: oldest slot in flight (a FIFO ring) */
	unsigned inflight;          /* requests in flight */
	uint64_t seq;               /* dynkv: ids issued (the high bits of an id) */
	uint64_t since;             /* ns: connect started (CONNECTING) */
	uint64_t down_since;        /* ns: start of the current outage, 0 if none */
	unsigned backoff_ms;        /* next reconnect delay */
	bool was_up;                /* true iff it has been UP at least once */
	uint64_t rng;               /* its PRNG state (splitmix64) */
	uint64_t due;               /* --rate: ns when its next request is due */
	struct event *pace;         /* --rate: wakes it at `due` */
	msgpack_sbuffer sb;         /* requests being encoded */
} conn;

/* What one phase measured. */
typedef struct tally {
	hist *lat[OP_N];            /* latencies of successful requests, ns */
	uint64_t ok[OP_N];          /* successful requests */
	uint64_t err[EK_N];         /* failed requests by kind */
	uint64_t errors;            /* sum of err[] */
	uint64_t misses;            /* gets that found nothing (no preload) */
	uint64_t siblings;          /* dynkv gets that returned > 1 value */
} tally;

typedef struct bench {
	struct event_base *base;
	struct sockaddr_storage addr[MAX_HOSTS];  /* the servers, as O.hosts */
	socklen_t addrlen[MAX_HOSTS];
	conn *conns;                /* O.clients */
	enum phase phase;
	uint64_t issued;            /* requests issued in this phase */
	uint64_t done;              /* of them, completed (ok or failed) */
	uint64_t limit;             /* requests to issue in this phase */
	uint64_t t_start, t_end;    /* ns: the phase's start, the run's end */
	double preload_secs;        /* how long the preload took */
	tally pre, run;             /* the preload's figures and the run's */
	tally *t;                   /* the current phase's */
	unsigned gave_up;           /* connections in GAVE_UP */
	uint64_t connect_failures;  /* failed connect attempts */
	uint64_t reconnects;        /* successful connects after a drop */
	uint64_t late;              /* --rate: requests sent 1 ms or more after due */
	bool all_lost;              /* true iff the run stopped: every conn gave up */
	bool interrupted;           /* true iff stopped by SIGINT/SIGTERM */
	uint8_t *pool;              /* value bytes: key i's value is pool + i % 256 */
	uint8_t **ctx;              /* dynkv: last context read per key, or NULL */
	uint32_t *ctxlen;           /* its length */
	double zeta_n, zeta_eta, zeta_alpha, zeta_half; /* zipf, YCSB's method */
	struct event *tick, *deadline, *sigint, *sigterm;
	uint64_t last_progress;     /* ns of the last progress line */
	bool progress_shown;        /* a progress line is on the terminal */
	bool tty;                   /* stderr is a terminal */
	uint8_t *scratch;           /* redis: room for a reply line */
	hist *ivl;                  /* --interval: this interval's latencies, ns */
	uint64_t ivl_start;         /* ns: its start */
	uint64_t ivl_errors;        /* the run's errors when it started */
} bench;

/* ---------------------------------------------------------------- utilities */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void progress_clear(bench *b)
{
	if (b && b->tty && b->progress_shown) {
		fputs("\r\033[K", stderr);
		b->progress_shown = false;
	}
}

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n" PROG ": try '" PROG " --help'\n", stderr);
	exit(2);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		die("out of memory");
	return p;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* Uniform in [0, n): Lemire's multiply-shift (bias below 2^-40 here). */
static uint64_t rand_below(uint64_t *s, uint64_t n)
{
	__extension__ typedef unsigned __int128 u128;

	return (uint64_t)(((u128)splitmix64(s) * n) >> 64);
}

/* Uniform in [0, 1). */
static double rand_unit(uint64_t *s)
{
	return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---------------------------------------------------------- keys and values */

static size_t key_format(char *buf, uint64_t i)
{
	size_t plen = strlen(O.prefix);

	memcpy(buf, O.prefix, plen);
	for (int d = KEY_DIGITS - 1; d >= 0; d--) {
		buf[plen + (size_t)d] = (char)('0' + i % 10u);
		i /= 10u;
	}
	return plen + KEY_DIGITS;
}

static const uint8_t *value_of(const bench *b, uint64_t key)
{
	return b->pool + key % VALUE_SPREAD;
}

/*
 * Zipf over ranks 0..K-1 with theta 0.99, by the method of YCSB's
 * ZipfianGenerator (Gray et al., "Quickly generating billion-record
 * synthetic databases", 1994): zeta(K) is summed once, O(K); each draw is
 * O(1).  Rank 0 is the hottest key, key 0; the server hashes keys, so
 * their numbers do not matter to where they land.
 */
static void zipf_init(bench *b)
{
	double zn = 0, z2 = 1.0 + pow(0.5, ZIPF_THETA);

	for (uint64_t i = 1; i <= O.keys; i++)
		zn += 1.0 / pow((double)i, ZIPF_THETA);
	b->zeta_n = zn;
	b->zeta_alpha = 1.0 / (1.0 - ZIPF_THETA);
	b->zeta_half = z2;
	b->zeta_eta = (1.0 - pow(2.0 / (double)O.keys, 1.0 - ZIPF_THETA)) / (1.0 - z2 / zn);
}

static uint64_t pick_key(bench *b, conn *c)
{
	double u, uz;
	uint64_t k;

	if (!O.zipf || O.keys < 3)
		return rand_below(&c->rng, O.keys);
	u = rand_unit(&c->rng);
	uz = u * b->zeta_n;
	if (uz < 1.0)
		return 0;
	if (uz < b->zeta_half)
		return 1;
	k = (uint64_t)((double)O.keys * pow(b->zeta_eta * u - b->zeta_eta + 1.0, b->zeta_alpha));
	return k < O.keys ? k : O.keys - 1;
}

/* ------------------------------------------------------------------ tallies */

static void count_error(bench *b, unsigned kind)
{
	b->t->err[kind]++;
	b->t->errors++;
}

static const char *error_name(unsigned kind);

/* The first message of each kind of server error goes to stderr, once:
 * the counts say how many, this says why. */
static void first_message(unsigned kind, const proto_bytes *msg)
{
	static bool said[EK_N];

	if (kind >= sizeof(said) / sizeof(said[0]) || said[kind])
		return;
	said[kind] = true;
	fprintf(stderr, "dynkv-bench: first %s error: %.*s\n", error_name(kind),
		(int)(msg->len > 300 ? 300 : msg->len), (const char *)msg->p);
}

static const char *error_name(unsigned kind)
{
	static char names[SERVER_CODES][32];

	if (kind < EK_SERVER)
		return ek_base_names[kind];
	kind -= EK_SERVER;
	if (!names[kind][0]) {
		const char *s = NULL;
#define X(name, num, dkv, text) if (kind == num) s = #name;
		PROTO_ERRORS(X)
#undef X
		if (s == NULL)
			snprintf(names[kind], sizeof(names[kind]), "server_other");
		else {
			size_t n = (size_t)snprintf(names[kind], sizeof(names[kind]), "server_%s", s);
			for (size_t i = 7; i < n && i < sizeof(names[kind]); i++)
				if (names[kind][i] >= 'A' && names[kind][i] <= 'Z')
					names[kind][i] = (char)(names[kind][i] - 'A' + 'a');
		}
	}
	return names[kind];
}

/* --------------------------------------------------------------- the phases */

static void conn_fill(conn *c);
static void conn_down(conn *c, unsigned why);
static void interval_line(bench *b, uint64_t now);
static void phase_start(bench *b, enum phase ph);

static void run_stop(bench *b)
{
	if (b->phase == PH_DONE)
		return;
	if (b->phase == PH_RUN) {
		b->t_end = now_ns();
		if (b->ivl != NULL && hist_count(b->ivl) + b->run.errors - b->ivl_errors > 0)
			interval_line(b, b->t_end);
	} else
		b->preload_secs = (double)(now_ns() - b->t_start) / 1e9;
	b->phase = PH_DONE;
	event_base_loopbreak(b->base);
}

/* A request completed, with a reply or an error. */
static void phase_step(bench *b)
{
	b->done++;
	if (b->done < b->limit || b->phase == PH_DONE)
		return;
	if (b->phase == PH_PRELOAD) {
		b->preload_secs = (double)(now_ns() - b->t_start) / 1e9;
		phase_start(b, PH_RUN);
	} else {
		run_stop(b);
	}
}

static void phase_start(bench *b, enum phase ph)
{
	b->phase = ph;
	b->issued = b->done = 0;
	b->t_start = b->last_progress = now_ns();
	if (ph == PH_PRELOAD) {
		b->t = &b->pre;
		b->limit = O.keys;
	} else {
		b->t = &b->run;
		b->limit = O.requests ? O.requests : UINT64_MAX;
		b->ivl_start = b->t_start;
		if (O.duration > 0) {
			struct timeval tv;
			tv.tv_sec = (time_t)O.duration;
			tv.tv_usec = (suseconds_t)((O.duration - (double)tv.tv_sec) * 1e6);
			evtimer_add(b->deadline, &tv);
		}
		/* Connection i's first request is due i / OPS seconds in. */
		for (unsigned i = 0; O.rate > 0 && i < O.clients; i++)
			b->conns[i].due = b->t_start + (uint64_t)((double)i * 1e9 / O.rate);
	}
	for (unsigned i = 0; i < O.clients; i++)
		conn_fill(&b->conns[i]);
}

/* ----------------------------------------------------------------- requests */

static void redis_bulk(msgpack_sbuffer *sb, const void *p, size_t n)
{
	char hdr[32];
	int h = snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);

	if (msgpack_sbuffer_write(sb, hdr, (size_t)h) != 0 ||
	    (n && msgpack_sbuffer_write(sb, p, n) != 0) ||
	    msgpack_sbuffer_write(sb, "\r\n", 2) != 0)
		die("out of memory");
}

/* Queue one request of op on key into c->sb, in slot s. */
static void encode(bench *b, conn *c, slot *s)
{
	char key[128];
	size_t klen = key_format(key, s->key);
	proto_opts opts;
	int rc;

	if (O.target == T_REDIS) {
		if (s->op == OP_GET) {
			if (msgpack_sbuffer_write(&c->sb, "*2\r\n$3\r\nGET\r\n", 13) != 0)
				die("out of memory");
			redis_bulk(&c->sb, key, klen);
		} else {
			if (msgpack_sbuffer_write(&c->sb, "*3\r\n$3\r\nSET\r\n", 13) != 0)
				die("out of memory");
			redis_bulk(&c->sb, key, klen);
			redis_bulk(&c->sb, value_of(b, s->key), O.vsize);
		}
		return;
	}
	memset(&opts, 0, sizeof(opts));
	if (s->op == OP_GET) {
		opts.r = O.r;
		opts.pr = O.pr;
		rc = proto_encode_get(&c->sb, s->id, key, klen, &opts);
	} else {
		opts.w = O.w;
		opts.pw = O.pw;
		rc = proto_encode_put(&c->sb, s->id, key, klen, value_of(b, s->key), O.vsize,
				      b->ctx[s->key], b->ctx[s->key] ? b->ctxlen[s->key] : 0,
				      &opts);
	}
	if (rc != 0)
		die("cannot encode a request: %s", dkv_strerror(rc));
}

/* Issue requests on c until its pipeline is full or the phase has issued
 * all it should; with --rate, in the run, only those that are due, and
 * the pace timer is set for the next. */
static void conn_fill(conn *c)
{
	bench *b = c->b;
	uint64_t t0 = 0;
	bool paced = O.rate > 0 && b->phase == PH_RUN;

	if (c->state != CS_UP)
		return;
	while (c->inflight < O.pipeline && b->issued < b->limit && b->phase != PH_DONE) {
		slot *s;
		unsigned i;

		if (paced) {
			uint64_t now = now_ns();

			if (c->due > now) {
				struct timeval tv;
				uint64_t wait = c->due - now;

				tv.tv_sec = (time_t)(wait / 1000000000u);
				tv.tv_usec = (suseconds_t)(wait % 1000000000u / 1000u);
				evtimer_add(c->pace, &tv);
				break;
			}
			if (now - c->due >= 1000000u)
				b->late++;
		}

		if (O.target == T_REDIS) {
			i = (c->head + c->inflight) % O.pipeline;
		} else {
			i = c->free[--c->nfree];
		}
		s = &c->slots[i];
		if (b->phase == PH_PRELOAD) {
			s->op = OP_PUT;
			s->key = b->issued;
		} else {
			s->op = rand_below(&c->rng, 100) < O.get_pct ? OP_GET : OP_PUT;
			s->key = pick_key(b, c);
		}
		s->id = (++c->seq << ID_SLOT_BITS) | i;
		if (paced) {            /* timed from when it was due */
			s->t0 = c->due;
			c->due += O.pace_ns;
		} else {
			if (!t0)
				t0 = now_ns();
			s->t0 = t0;
		}
		c->inflight++;
		b->issued++;
		encode(b, c, s);
	}
	if (c->sb.size) {
		if (bufferevent_write(c->bev, c->sb.data, c->sb.size) != 0)
			die("out of memory");
		c->sb.size = 0;
	}
}

/* Take slot i out of flight and account for it: kind < 0 is a success. */
static void slot_done(conn *c, unsigned i, int kind, uint64_t now)
{
	bench *b = c->b;
	slot *s = &c->slots[i];

	if (kind < 0) {
		b->t->ok[s->op]++;
		hist_record(b->t->lat[s->op], now - s->t0);
		if (b->ivl != NULL && b->phase == PH_RUN)
			hist_record(b->ivl, now - s->t0);
	} else {
		count_error(b, (unsigned)kind);
	}
	s->id = 0;
	c->inflight--;
	if (O.target == T_REDIS)
		c->head = (c->head + 1) % O.pipeline;
	else
		c->free[c->nfree++] = i;
	phase_step(b);
}

/* Is v (len bytes) the value every put of key writes? */
static bool value_ok(const bench *b, uint64_t key, const uint8_t *v, size_t len)
{
	return len == O.vsize && memcmp(v, value_of(b, key), len) == 0;
}

/* ------------------------------------------------------------ dynkv replies */

static void remember_context(bench *b, uint64_t key, const proto_bytes *ctx)
{
	if (ctx->len == 0 || ctx->len > UINT32_MAX) {
		free(b->ctx[key]);
		b->ctx[key] = NULL;
		return;
	}
	if (b->ctx[key] == NULL || b->ctxlen[key] != ctx->len) {
		uint8_t *p = realloc(b->ctx[key], ctx->len);
		if (!p)
			die("out of memory");
		b->ctx[key] = p;
	}
	memcpy(b->ctx[key], ctx->p, ctx->len);
	b->ctxlen[key] = (uint32_t)ctx->len;
}

/* One decoded reply; false iff the connection must be dropped. */
static bool dynkv_reply(conn *c, const proto_msg *m, uint64_t now)
{
	bench *b = c->b;
	unsigned i = (unsigned)(m->id & ((1u << ID_SLOT_BITS) - 1u));
	slot *s;
	int kind = -1;

	if (m->id == 0 || i >= O.pipeline || c->slots[i].id != m->id) {
		/* Not ours: the node's answer to a frame it could not read
		 * (id 0, then it closes), or a stray. */
		if (m->type == PROTO_ERROR)
			count_error(b, EK_SERVER + (m->code < SERVER_CODES ? m->code : 0));
		else
			count_error(b, EK_PROTOCOL);
		return m->id != 0;
	}
	s = &c->slots[i];
	switch (m->type) {
	case PROTO_ERROR:
		kind = EK_SERVER + (int)(m->code < SERVER_CODES ? m->code : 0);
		first_message((unsigned)kind, &m->message);
		break;
	case PROTO_OK:
		if (s->op != OP_PUT)
			kind = EK_PROTOCOL;
		else   /* the next put of this key replaces this one */
			remember_context(b, s->key, &m->context);
		break;
	case PROTO_VALUE:
		if (s->op != OP_GET) {
			kind = EK_PROTOCOL;
			break;
		}
		remember_context(b, s->key, &m->context);
		if (!m->found || m->nvalues == 0) {
			if (O.preload)
				kind = EK_NOT_FOUND;
			else
				b->t->misses++;
			break;
		}
		if (m->nvalues > 1)
			b->t->siblings++;
		for (size_t v = 0; v < m->nvalues && kind < 0; v++)
			if (!value_ok(b, s->key, m->values[v].p, m->values[v].len))
				kind = EK_BAD_VALUE;
		break;
	default:
		kind = EK_PROTOCOL;
		break;
	}
	slot_done(c, i, kind, now);
	return true;
}

static void dynkv_read(conn *c, struct evbuffer *in)
{
	static const proto_limits lim = { SIZE_MAX, SIZE_MAX };
	uint64_t now = now_ns();

	while (c->state == CS_UP && c->b->phase != PH_DONE) {
		size_t avail = evbuffer_get_length(in);
		uint8_t hdr[PROTO_HEADER_SIZE], *p;
		uint32_t len;
		proto_msg m;
		char err[128];
		bool keep;

		if (avail < PROTO_HEADER_SIZE)
			return;
		evbuffer_copyout(in, hdr, sizeof(hdr));
		len = proto_frame_length(hdr);
		if (len == 0 || len > MAX_FRAME) {
			count_error(c->b, EK_PROTOCOL);
			conn_down(c, EK_CLOSED);
			return;
		}
		if (avail < PROTO_HEADER_SIZE + (size_t)len)
			return;
		p = evbuffer_pullup(in, (ssize_t)(PROTO_HEADER_SIZE + len));
		if (!p)
			die("out of memory");
		if (proto_decode(p + PROTO_HEADER_SIZE, len, &lim, &m, err, sizeof(err)) != 0) {
			/* A well-framed but bad message: fail its request if we
			 * know it, and go on with the next frame. */
			unsigned i = (unsigned)(m.id & ((1u << ID_SLOT_BITS) - 1u));

			if (m.id != 0 && i < O.pipeline && c->slots[i].id == m.id)
				slot_done(c, i, EK_PROTOCOL, now);
			else
				count_error(c->b, EK_PROTOCOL);
			evbuffer_drain(in, PROTO_HEADER_SIZE + (size_t)len);
			continue;
		}
		keep = dynkv_reply(c, &m, now);
		proto_msg_release(&m);
		evbuffer_drain(in, PROTO_HEADER_SIZE + (size_t)len);
		if (!keep) {
			conn_down(c, EK_CLOSED);
			return;
		}
	}
}

/* ------------------------------------------------------------ redis replies */

/* Parse the decimal (optionally negative) integer of a RESP line. */
static bool parse_resp_int(const uint8_t *p, size_t n, int64_t *out)
{
	bool neg = false;
	uint64_t v = 0;

	if (n > 0 && p[0] == '-') {
		neg = true;
		p++;
		n--;
	}
	if (n == 0 || n > 18)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10u + (uint64_t)(p[i] - '0');
	}
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

/*
 * Replies are parsed where they lie in the input buffer and drained only
 * when whole: a reply split over any number of reads is handled.  The only
 * replies SET and GET give: +OK, -ERR..., $-1, $len bulk.  Anything else
 * (an array, an integer, a line past MAX_REDIS_LINE) is a protocol error
 * and drops the connection, since the stream can no longer be trusted.
 */
static void redis_read(conn *c, struct evbuffer *in)
{
	bench *b = c->b;
	uint64_t now = now_ns();

	while (c->state == CS_UP && b->phase != PH_DONE) {
		size_t avail = evbuffer_get_length(in), eol_len = 0, line;
		struct evbuffer_ptr eol;
		slot *s;
		uint8_t *p;
		int kind = -1;
		int64_t blen;

		if (avail == 0)
			return;
		if (c->inflight == 0) {
			count_error(b, EK_PROTOCOL);    /* a reply nobody asked for */
			conn_down(c, EK_CLOSED);
			return;
		}
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
		if (eol.pos < 0) {
			if (avail > MAX_REDIS_LINE)
				goto bad;
			return;
		}
		line = (size_t)eol.pos;
		if (line > MAX_REDIS_LINE || line == 0)
			goto bad;
		s = &c->slots[c->head];
		p = evbuffer_pullup(in, (ssize_t)(line + 2));
		if (!p)
			die("out of memory");
		switch (p[0]) {
		case '+':
			if (s->op != OP_PUT || line != 3 || memcmp(p, "+OK", 3) != 0)
				kind = EK_PROTOCOL;
			evbuffer_drain(in, line + 2);
			break;
		case '-':
			kind = EK_REDIS;
			evbuffer_drain(in, line + 2);
			break;
		case '$':
			if (!parse_resp_int(p + 1, line - 1, &blen) || blen < -1 ||
			    blen > (int64_t)MAX_FRAME)
				goto bad;
			if (blen == -1) {
				if (s->op != OP_GET)
					kind = EK_PROTOCOL;
				else if (O.preload)
					kind = EK_NOT_FOUND;
				else
					b->t->misses++;
				evbuffer_drain(in, line + 2);
				break;
			}
			if (avail < line + 2 + (size_t)blen + 2)
				return;         /* the rest of the bulk is still coming */
			p = evbuffer_pullup(in, (ssize_t)(line + 2 + (size_t)blen + 2));
			if (!p)
				die("out of memory");
			if (memcmp(p + line + 2 + blen, "\r\n", 2) != 0)
				goto bad;
			if (s->op != OP_GET)
				kind = EK_PROTOCOL;
			else if (!value_ok(b, s->key, p + line + 2, (size_t)blen))
				kind = EK_BAD_VALUE;
			evbuffer_drain(in, line + 2 + (size_t)blen + 2);
			break;
		default:
			goto bad;
		}
		slot_done(c, c->head, kind, now);
	}
	return;
bad:
	/* The head request gets the protocol error; the others were sent on a
	 * stream that cannot be read any more. */
	slot_done(c, c->head, EK_PROTOCOL, now);
	conn_down(c, EK_CLOSED);
}

/* ------------------------------------------------------------- connections */

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
	conn *c = arg;

	if (O.target == T_REDIS)
		redis_read(c, bufferevent_get_input(bev));
	else
		dynkv_read(c, bufferevent_get_input(bev));
	if (c->state == CS_UP && c->b->phase != PH_DONE)
		conn_fill(c);
}

static void conn_connect(conn *c);

static void conn_pace_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_fill(arg);
}

static void conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_connect(arg);
}

/*
 * Close c: every request in flight completes as an error (a timeout if its
 * deadline has passed, `why` otherwise).  Then reconnect after a backoff
 * (10 ms doubling to 1 s), or give up if the outage has lasted --timeout.
 */
static void conn_down(conn *c, unsigned why)
{
	bench *b = c->b;
	uint64_t now = now_ns(), tmo = (uint64_t)(O.timeout * 1e9);
	struct timeval tv;

	if (c->bev) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->state == CS_CONNECTING)
		b->connect_failures++;
	c->state = CS_DOWN;
	if (c->down_since == 0)
		c->down_since = now;
	while (c->inflight > 0 && b->phase != PH_DONE) {
		unsigned i;

		if (O.target == T_REDIS) {
			i = c->head;
		} else {
			for (i = 0; i < O.pipeline && c->slots[i].id == 0; i++)
				;
		}
		slot_done(c, i, now - c->slots[i].t0 >= tmo ? EK_TIMEOUT : (int)why, now);
	}
	/* Reset the pipeline: nothing is in flight (also when stopping). */
	c->inflight = 0;
	c->head = 0;
	c->nfree = 0;
	for (unsigned i = O.pipeline; i-- > 0;) {
		c->slots[i].id = 0;
		if (c->free)
			c->free[c->nfree++] = i;
	}
	if (b->phase == PH_DONE)
		return;
	if (now - c->down_since >= tmo) {
		c->state = CS_GAVE_UP;
		if (++b->gave_up == O.clients) {
			b->all_lost = true;
			run_stop(b);
		}
		return;
	}
	tv.tv_sec = c->backoff_ms / 1000u;
	tv.tv_usec = (suseconds_t)(c->backoff_ms % 1000u) * 1000;
	evtimer_add(c->retry, &tv);
	c->backoff_ms = c->backoff_ms * 2 > 1000 ? 1000 : c->backoff_ms * 2;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	conn *c = arg;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->state = CS_UP;
		if (c->was_up)
			c->b->reconnects++;
		c->was_up = true;
		c->down_since = 0;
		c->backoff_ms = 10;
		conn_fill(c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_down(c, EK_CLOSED);
}

static void conn_connect(conn *c)
{
	bench *b = c->b;

	if (b->phase == PH_DONE)
		return;
	c->bev = bufferevent_socket_new(b->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev)
		die("out of memory");
	bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->state = CS_CONNECTING;
	c->since = now_ns();
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&b->addr[c->idx % O.nhosts],
				       (int)b->addrlen[c->idx % O.nhosts]) != 0)
		conn_down(c, EK_CLOSED);
}

/* ------------------------------------------------------------ tick, signals */

static void progress(bench *b, uint64_t now)
{
	double secs = (double)(now - b->t_start) / 1e9;
	uint64_t ok = b->t->ok[OP_GET] + b->t->ok[OP_PUT];

	if (!b->tty)
		return;
	if (b->phase == PH_PRELOAD)
		fprintf(stderr, "\r\033[K  preload: %" PRIu64 "/%" PRIu64 " keys, %.0fs, %" PRIu64
			" errors", b->done, O.keys, secs, b->t->errors);
	else
		fprintf(stderr, "\r\033[K  %.0fs: %" PRIu64 " ops, %.0f ops/s, %" PRIu64 " errors",
			secs, ok, secs > 0 ? (double)ok / secs : 0.0, b->t->errors);
	b->progress_shown = true;
}

/* --interval: one line for the interval that ends now, on stderr, with
 * the wall-clock time of its end (to set beside the servers' logs). */
static void interval_line(bench *b, uint64_t now)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	progress_clear(b);
	fprintf(stderr, "interval %s.%03ldZ %7.2fs: %8" PRIu64 " ops %6" PRIu64 " errors"
		" p50 %8.0f us p99 %8.0f us max %8.0f us\n", when, ts.tv_nsec / 1000000,
		(double)(now - b->t_start) / 1e9, hist_count(b->ivl), b->run.errors - b->ivl_errors,
		hist_percentile(b->ivl, 50) / 1e3, hist_percentile(b->ivl, 99) / 1e3,
		hist_max(b->ivl) / 1e3);
	hist_reset(b->ivl);
	b->ivl_errors = b->run.errors;
	/* on the grid of the run's start, as far as the 100 ms tick allows */
	b->ivl_start += (uint64_t)(O.interval * 1e9);
	if (now - b->ivl_start >= (uint64_t)(O.interval * 1e9))
		b->ivl_start = now;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;
	uint64_t now = now_ns(), tmo = (uint64_t)(O.timeout * 1e9);

	(void)fd;
	(void)what;
	for (unsigned k = 0; k < O.clients && b->phase != PH_DONE; k++) {
		conn *c = &b->conns[k];
		bool late = false;

		if (c->state == CS_CONNECTING) {
			late = now - c->since >= tmo;
		} else if (c->state == CS_UP && c->inflight > 0) {
			if (O.target == T_REDIS)
				late = now - c->slots[c->head].t0 >= tmo;
			else
				for (unsigned i = 0; i < O.pipeline && !late; i++)
					late = c->slots[i].id != 0 && now - c->slots[i].t0 >= tmo;
		}
		if (late)
			conn_down(c, EK_CLOSED);
	}
	if (b->ivl != NULL && b->phase == PH_RUN &&
	    now - b->ivl_start >= (uint64_t)(O.interval * 1e9))
		interval_line(b, now);
	if (b->phase != PH_DONE && now - b->last_progress >= 1000000000u) {
		b->last_progress = now;
		progress(b, now);
	}
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_stop(arg);
}

static void signal_cb(evutil_socket_t fd, short what, void *arg)
{
	bench *b = arg;

	(void)fd;
	(void)what;
	b->interrupted = true;
	run_stop(b);
}

/* ------------------------------------------------------------------ report */

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void json_str(const char *k, const char *v, bool comma)
{
	printf("%s\"%s\":\"", comma ? "," : "", k);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			printf("\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			printf("\\u%04x", (unsigned)(unsigned char)*v);
		else
			putchar(*v);
	}
	putchar('"');
}

static void json_lat(const hist *h)
{
	printf("\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
	       "\"max_us\":%.1f,\"min_us\":%.1f,\"mean_us\":%.1f",
	       us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
	       us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)),
	       us(hist_max(h)), us(hist_min(h)), hist_mean(h) / 1000.0);
}

static const char *quorum_name(int32_t q, char *buf, size_t n)
{
	switch (q) {
	case 0: return "default";
	case DKV_QUORUM_ONE: return "one";
	case DKV_QUORUM_QUORUM: return "quorum";
	case DKV_QUORUM_ALL: return "all";
	default:
		snprintf(buf, n, "%" PRId32, q);
		return buf;
	}
}

static void report_errors_text(const tally *t)
{
	bool first = true;

	printf("%" PRIu64, t->errors);
	for (unsigned k = 0; k < EK_N; k++) {
		if (!t->err[k])
			continue;
		printf("%s%s %" PRIu64, first ? " (" : ", ", error_name(k), t->err[k]);
		first = false;
	}
	printf("%s\n", first ? "" : ")");
}

static void report(bench *b)
{
	hist *all;
	const tally *t = &b->run;
	uint64_t ops = t->ok[OP_GET] + t->ok[OP_PUT];
	double secs = (double)(b->t_end - b->t_start) / 1e9;
	double rate = secs > 0 ? (double)ops / secs : 0.0;
	char rb[16], wb[16], prb[16], pwb[16];
	const char *rn = quorum_name(O.r, rb, sizeof(rb)), *wn = quorum_name(O.w, wb, sizeof(wb));

	if (hist_new(&all) != 0)
		die("out of memory");
	hist_merge(all, t->lat[OP_GET]);
	hist_merge(all, t->lat[OP_PUT]);
	progress_clear(b);
	if (O.json) {
		printf("{");
		json_str("target", O.target == T_REDIS ? "redis" : "dynkv", false);
		json_str("host", O.host_arg, true);
		json_str("workload", O.workload, true);
		printf(",\"get_percent\":%u,\"clients\":%u,\"pipeline\":%u", O.get_pct,
		       O.clients, O.pipeline);
		printf(",\"requests\":%" PRIu64 ",\"duration\":%g", O.requests, O.duration);
		printf(",\"keys\":%" PRIu64 ",\"value_size\":%" PRIu32, O.keys, O.vsize);
		json_str("dist", O.zipf ? "zipf" : "uniform", true);
		json_str("r", rn, true);
		json_str("w", wn, true);
		printf(",\"seed\":%" PRIu64, O.seed);
		json_str("key_prefix", O.prefix, true);
		json_str("pr", quorum_name(O.pr, prb, sizeof(prb)), true);
		json_str("pw", quorum_name(O.pw, pwb, sizeof(pwb)), true);
		printf(",\"timeout\":%g", O.timeout);
		printf(",\"rate\":%g,\"late\":%" PRIu64, O.rate, b->late);
		printf(",\"preload\":%s,\"preload_seconds\":%.3f,\"preload_errors\":%" PRIu64,
		       O.preload ? "true" : "false", b->preload_secs, b->pre.errors);
		printf(",\"ops\":%" PRIu64 ",\"gets\":%" PRIu64 ",\"puts\":%" PRIu64, ops,
		       t->ok[OP_GET], t->ok[OP_PUT]);
		printf(",\"seconds\":%.3f,\"ops_per_sec\":%.1f", secs, rate);
		printf(",\"errors\":%" PRIu64 ",\"error_kinds\":{", t->errors);
		for (unsigned k = 0, n = 0; k < EK_N; k++)
			if (t->err[k])
				printf("%s\"%s\":%" PRIu64, n++ ? "," : "", error_name(k), t->err[k]);
		printf("},\"misses\":%" PRIu64 ",\"siblings\":%" PRIu64, t->misses, t->siblings);
		printf(",\"connect_failures\":%" PRIu64 ",\"reconnects\":%" PRIu64,
		       b->connect_failures, b->reconnects);
		printf(",\"connections_lost\":%s,\"interrupted\":%s,",
		       b->all_lost ? "true" : "false", b->interrupted ? "true" : "false");
		json_lat(all);
		for (int op = 0; op < OP_N; op++) {
			printf(",\"%s\":{\"ops\":%" PRIu64 ",", op_names[op], t->ok[op]);
			json_lat(t->lat[op]);
			printf("}");
		}
		printf("}\n");
	} else {
		printf(PROG ": %s at %s, workload %s, %u clients x pipeline %u\n",
		       O.target == T_REDIS ? "redis" : "dynkv", O.host_arg, O.workload,
		       O.clients, O.pipeline);
		printf("  keys %" PRIu64 " (%s), values %" PRIu32 " bytes, r=%s w=%s%s, seed %"
		       PRIu64 "\n", O.keys, O.zipf ? "zipf 0.99" : "uniform", O.vsize, rn, wn,
		       O.target == T_REDIS ? " (ignored)" : "", O.seed);
		if (O.pr || O.pw)
			printf("  pr=%s pw=%s\n", quorum_name(O.pr, prb, sizeof(prb)),
			       quorum_name(O.pw, pwb, sizeof(pwb)));
		if (O.rate > 0)
			printf("  open loop at %g ops/s: %" PRIu64 " requests sent 1 ms or more "
			       "after they were due\n", O.rate, b->late);
		if (O.preload) {
			printf("preload    %" PRIu64 " keys in %.2f s (%.0f puts/s), errors ",
			       O.keys, b->preload_secs,
			       b->preload_secs > 0 ? (double)O.keys / b->preload_secs : 0.0);
			report_errors_text(&b->pre);
		}
		printf("ops        %" PRIu64 " in %.2f s = %.0f ops/s (get %" PRIu64 ", put %"
		       PRIu64 ")%s\n", ops, secs, rate, t->ok[OP_GET], t->ok[OP_PUT],
		       b->interrupted ? " (interrupted)" : b->all_lost ? " (all connections lost)" : "");
		printf("errors     ");
		report_errors_text(t);
		if (t->misses || t->siblings)
			printf("gets       %" PRIu64 " found nothing, %" PRIu64
			       " returned siblings\n", t->misses, t->siblings);
		if (b->connect_failures || b->reconnects)
			printf("connects   %" PRIu64 " failed, %" PRIu64 " reconnected\n",
			       b->connect_failures, b->reconnects);
		printf("latency us %10s %9s %9s %9s %9s %9s %9s\n", "ops", "p50", "p90", "p99",
		       "p99.9", "max", "mean");
		for (int row = 0; row <= OP_N; row++) {
			const hist *h = row == OP_N ? all : t->lat[row];

			if (row < OP_N && (O.get_pct == 0 || O.get_pct == 100))
				continue;       /* one op: the "all" row says it */
			printf("  %-8s %10" PRIu64 " %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n",
			       row == OP_N ? "all" : op_names[row], hist_count(h),
			       us(hist_percentile(h, 50)), us(hist_percentile(h, 90)),
			       us(hist_percentile(h, 99)), us(hist_percentile(h, 99.9)),
			       us(hist_max(h)), hist_mean(h) / 1000.0);
		}
	}
	fflush(stdout);
	hist_free(all);
}

/* ----------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
"usage: " PROG " [options]\n"
"  --host HOST:PORT[,...] server (default 127.0.0.1:7070; redis: 127.0.0.1:6379);\n"
"                         dynkv: a list of nodes of one cluster, client i\n"
"                         connects to node i mod their number\n"
"  --target dynkv|redis   protocol to speak (default dynkv)\n"
"  --workload W           put, get or mixed:G/P (G%% gets, P%% puts; default mixed:90/10)\n"
"  --clients C            connections (default 50)\n"
"  --pipeline P           requests in flight per connection (default 1)\n"
"  --requests N           stop after N requests\n"
"  --duration SECS        stop after SECS seconds (default 10 if no --requests)\n"
"  --keys K               distinct keys (default 100000)\n"
"  --value-size BYTES     value size (default 1024)\n"
"  --dist uniform|zipf    key distribution (default uniform; zipf: theta 0.99)\n"
"  -r R, -w W             per-request R and W: 1..16, one, quorum or all\n"
"                         (default: the node's; ignored for redis)\n"
"  --pr PR, --pw PW       primaries among the R replies / W acks, the same way\n"
"  --rate OPS             open loop: OPS requests a second in all, each client\n"
"                         at its share, on schedule whether or not replies have\n"
"                         come; latency counts from the scheduled time\n"
"                         (default: closed loop, the next request at each reply)\n"
"  --timeout SECS         per-request timeout (default 10)\n"
"  --interval SECS        a line on stderr every SECS (>= 0.1) of the run: its\n"
"                         ops, errors, p50, p99 and max latency\n"
"  --seed S               PRNG seed (default 1)\n"
"  --key-prefix STR       key prefix (default \"key:\")\n"
"  --no-preload           do not put every key before a workload with gets\n"
"  --json                 one JSON object on stdout instead of the table\n"
"  --help, --version\n");
}

static uint64_t parse_u64(const char *s, const char *what, uint64_t lo, uint64_t hi)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		usage_error("%s: not a number: %s", what, s);
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		usage_error("%s must be a number from %" PRIu64 " to %" PRIu64 ": %s",
			    what, lo, hi, s);
	return v;
}

static double parse_secs(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v > 0) || v > 1e6)
		usage_error("%s must be a positive number of seconds: %s", what, s);
	return v;
}

/* --rate: requests a second, a positive number (a fraction is fine). */
static double parse_rate(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v > 0) || v > 1e9)
		usage_error("--rate must be a positive number of requests a second "
			    "(at most 10^9): %s", s);
	return v;
}

static int32_t parse_quorum(const char *s, const char *what)
{
	if (!strcmp(s, "one"))
		return DKV_QUORUM_ONE;
	if (!strcmp(s, "quorum"))
		return DKV_QUORUM_QUORUM;
	if (!strcmp(s, "all"))
		return DKV_QUORUM_ALL;
	return (int32_t)parse_u64(s, what, 1, 16);
}

/* --host: HOST:PORT or [IPV6]:PORT, or a comma-separated list of them
 * (commas never occur in an address), into O.hosts. */
static void parse_hosts(const char *arg)
{
	const char *p = arg, *comma;

	O.nhosts = 0;
	for (;;) {
		size_t len;

		comma = strchr(p, ',');
		len = comma ? (size_t)(comma - p) : strlen(p);
		if (O.nhosts == MAX_HOSTS)
			usage_error("--host: at most %u addresses", MAX_HOSTS);
		if (dkv_config_hostport(p, len, O.hosts[O.nhosts].host,
					sizeof(O.hosts[O.nhosts].host),
					&O.hosts[O.nhosts].port) != 0)
			usage_error("--host must be HOST:PORT or [IPV6]:PORT, or a "
				    "comma-separated list of them: %.*s", (int)len, p);
		O.nhosts++;
		if (!comma)
			return;
		p = comma + 1;
	}
}

/* "put", "get" or "mixed:G/P" with G + P = 100, each written in digits. */
static void parse_workload(const char *arg)
{
	unsigned g = 0, p = 0;
	const char *q, *s;

	if (!strcmp(arg, "put")) {
		O.get_pct = 0;
	} else if (!strcmp(arg, "get")) {
		O.get_pct = 100;
	} else if (!strncmp(arg, "mixed:", 6)) {
		for (q = s = arg + 6; *q >= '0' && *q <= '9' && g <= 100; q++)
			g = g * 10u + (unsigned)(*q - '0');
		if (q == s || *q != '/')
			goto bad;
		for (q = s = q + 1; *q >= '0' && *q <= '9' && p <= 100; q++)
			p = p * 10u + (unsigned)(*q - '0');
		if (q == s || *q != '\0' || g + p != 100)
			goto bad;
		O.get_pct = g;
	} else {
		goto bad;
	}
	snprintf(O.workload, sizeof(O.workload), "%s", arg);
	return;
bad:
	usage_error("--workload must be put, get or mixed:G/P with G + P = 100: %s", arg);
}

static void parse_args(int argc, char **argv)
{
	enum {
		OPT_HOST = 256, OPT_TARGET, OPT_WORKLOAD, OPT_CLIENTS, OPT_PIPELINE,
		OPT_REQUESTS, OPT_DURATION, OPT_KEYS, OPT_VSIZE, OPT_DIST, OPT_JSON,
		OPT_SEED, OPT_PREFIX, OPT_NO_PRELOAD, OPT_TIMEOUT, OPT_HELP, OPT_VERSION,
		OPT_RATE, OPT_PR, OPT_PW, OPT_INTERVAL,
	};
	static const struct option lo[] = {
		{"host", required_argument, NULL, OPT_HOST},
		{"target", required_argument, NULL, OPT_TARGET},
		{"workload", required_argument, NULL, OPT_WORKLOAD},
		{"clients", required_argument, NULL, OPT_CLIENTS},
		{"pipeline", required_argument, NULL, OPT_PIPELINE},
		{"requests", required_argument, NULL, OPT_REQUESTS},
		{"duration", required_argument, NULL, OPT_DURATION},
		{"keys", required_argument, NULL, OPT_KEYS},
		{"value-size", required_argument, NULL, OPT_VSIZE},
		{"dist", required_argument, NULL, OPT_DIST},
		{"json", no_argument, NULL, OPT_JSON},
		{"seed", required_argument, NULL, OPT_SEED},
		{"key-prefix", required_argument, NULL, OPT_PREFIX},
		{"no-preload", no_argument, NULL, OPT_NO_PRELOAD},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"rate", required_argument, NULL, OPT_RATE},
		{"interval", required_argument, NULL, OPT_INTERVAL},
		{"pr", required_argument, NULL, OPT_PR},
		{"pw", required_argument, NULL, OPT_PW},
		{"help", no_argument, NULL, OPT_HELP},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0},
	};
	bool no_preload = false;
	int ch;

	O.target = T_DYNKV;
	O.host_arg = NULL;
	parse_workload("mixed:90/10");
	O.clients = 50;
	O.pipeline = 1;
	O.keys = 100000;
	O.vsize = 1024;
	O.seed = 1;
	O.prefix = "key:";
	O.timeout = 10;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":r:w:h", lo, NULL)) != -1) {
		switch (ch) {
		case OPT_HOST: O.host_arg = optarg; break;
		case OPT_TARGET:
			if (!strcmp(optarg, "dynkv"))
				O.target = T_DYNKV;
			else if (!strcmp(optarg, "redis"))
				O.target = T_REDIS;
			else
				usage_error("--target must be dynkv or redis: %s", optarg);
			break;
		case OPT_WORKLOAD: parse_workload(optarg); break;
		case OPT_CLIENTS:
			O.clients = (unsigned)parse_u64(optarg, "--clients", 1, MAX_CLIENTS);
			break;
		case OPT_PIPELINE:
			O.pipeline = (unsigned)parse_u64(optarg, "--pipeline", 1, MAX_PIPELINE);
			break;
		case OPT_REQUESTS:
			O.requests = parse_u64(optarg, "--requests", 1, UINT64_MAX / 2);
			break;
		case OPT_DURATION: O.duration = parse_secs(optarg, "--duration"); break;
		case OPT_KEYS: O.keys = parse_u64(optarg, "--keys", 1, MAX_KEYS); break;
		case OPT_VSIZE:
			O.vsize = (uint32_t)parse_u64(optarg, "--value-size", 0, MAX_VALUE);
			break;
		case OPT_DIST:
			if (!strcmp(optarg, "uniform"))
				O.zipf = false;
			else if (!strcmp(optarg, "zipf"))
				O.zipf = true;
			else
				usage_error("--dist must be uniform or zipf: %s", optarg);
			break;
		case OPT_JSON: O.json = true; break;
		case OPT_SEED: O.seed = parse_u64(optarg, "--seed", 0, UINT64_MAX); break;
		case OPT_PREFIX:
			if (strlen(optarg) > 100)
				usage_error("--key-prefix: at most 100 bytes");
			O.prefix = optarg;
			break;
		case OPT_NO_PRELOAD: no_preload = true; break;
		case OPT_TIMEOUT: O.timeout = parse_secs(optarg, "--timeout"); break;
		case OPT_RATE: O.rate = parse_rate(optarg); break;
		case OPT_INTERVAL:
			O.interval = parse_secs(optarg, "--interval");
			if (O.interval < TICK_MS / 1000.0)
				usage_error("--interval must be at least %g seconds: %s", TICK_MS / 1000.0, optarg);
			break;
		case OPT_PR: O.pr = parse_quorum(optarg, "--pr"); O.rw_given = true; break;
		case OPT_PW: O.pw = parse_quorum(optarg, "--pw"); O.rw_given = true; break;
		case 'r': O.r = parse_quorum(optarg, "-r"); O.rw_given = true; break;
		case 'w': O.w = parse_quorum(optarg, "-w"); O.rw_given = true; break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
			printf(PROG " (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			exit(0);
		case ':':
			usage_error("option %s needs a value", argv[optind - 1]);
		default:
			if (optopt > 0 && optopt < 256)
				usage_error("unknown option -%c", optopt);
			usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument: %s", argv[optind]);
	if (O.requests && O.duration > 0)
		usage_error("give --requests or --duration, not both");
	if (!O.requests && !(O.duration > 0))
		O.duration = 10;
	if (!O.host_arg)
		O.host_arg = O.target == T_REDIS ? "127.0.0.1:6379" : "127.0.0.1:7070";
	parse_hosts(O.host_arg);
	if (O.target == T_REDIS && O.nhosts > 1)
		usage_error("--host: one Redis server only (Redis servers do not share keys)");
	O.preload = O.get_pct > 0 && !no_preload;
	if (O.rate > 0) {
		O.pace_ns = (uint64_t)((double)O.clients * 1e9 / O.rate);
		if (O.pace_ns == 0)
			usage_error("--rate: at most 10^9 requests a second per client "
				    "(%u clients)", O.clients);
	}
}

/* ------------------------------------------------------------------- setup */

/*
 * Resolve host h of the --host list and make one blocking connection (5 s
 * at most) before the run, so that a wrong address or a server that is not
 * there ends the program at once with exit status 1 and a reason.
 */
static void resolve_and_probe(bench *b, unsigned h)
{
	struct addrinfo hints, *res, *ai;
	char port[8], why[256] = "no address";
	const char *host = O.hosts[h].host;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)O.hosts[h].port);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		die("cannot resolve %s: %s", host, gai_strerror(rc));
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol), err = 0;
		socklen_t elen = sizeof(err);
		struct pollfd pfd;

		if (fd < 0) {
			snprintf(why, sizeof(why), "%s", strerror(errno));
			continue;
		}
		evutil_make_socket_nonblocking(fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			err = errno;
		} else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, 5000) != 1)
				err = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
				err = errno;
		}
		close(fd);
		if (err == 0) {
			memcpy(&b->addr[h], ai->ai_addr, ai->ai_addrlen);
			b->addrlen[h] = (socklen_t)ai->ai_addrlen;
			freeaddrinfo(res);
			return;
		}
		snprintf(why, sizeof(why), "%s", strerror(err));
	}
	freeaddrinfo(res);
	if (strchr(host, ':'))
		die("cannot connect to [%s]:%u: %s", host, (unsigned)O.hosts[h].port, why);
	die("cannot connect to %s:%u: %s", host, (unsigned)O.hosts[h].port, why);
}

static void bench_init(bench *b)
{
	uint64_t s = O.seed ^ UINT64_C(0x6a09e667f3bcc908);

	memset(b, 0, sizeof(*b));
	b->tty = isatty(2) == 1;
	if (O.rate > 0) {
		/* Pacing needs timers to the tenth of a millisecond: without
		 * this flag libevent reads CLOCK_MONOTONIC_COARSE (a tick of 1
		 * to 10 ms) and the requests go out up to a tick late. */
		struct event_config *cfg = event_config_new();

		if (!cfg || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0)
			die("out of memory");
		b->base = event_base_new_with_config(cfg);
		event_config_free(cfg);
	} else {
		b->base = event_base_new();
	}
	if (!b->base)
		die("cannot create an event loop");
	for (int i = 0; i < OP_N; i++)
		if (hist_new(&b->pre.lat[i]) != 0 || hist_new(&b->run.lat[i]) != 0)
			die("out of memory");
	if (O.interval > 0 && hist_new(&b->ivl) != 0)
		die("out of memory");
	b->pool = xcalloc(O.vsize + VALUE_SPREAD, 1);
	for (size_t i = 0; i < (size_t)O.vsize + VALUE_SPREAD; i++)
		b->pool[i] = (uint8_t)splitmix64(&s);
	if (O.target == T_DYNKV) {
		b->ctx = xcalloc(O.keys, sizeof(*b->ctx));
		b->ctxlen = xcalloc(O.keys, sizeof(*b->ctxlen));
	}
	if (O.zipf)
		zipf_init(b);
	b->conns = xcalloc(O.clients, sizeof(*b->conns));
	uint64_t master = O.seed ^ UINT64_C(0x6a09e667f3bcc909);
	for (unsigned i = 0; i < O.clients; i++) {
		conn *c = &b->conns[i];

		c->b = b;
		c->idx = i;
		c->slots = xcalloc(O.pipeline, sizeof(*c->slots));
		if (O.target == T_DYNKV) {
			c->free = xcalloc(O.pipeline, sizeof(*c->free));
			for (unsigned k = O.pipeline; k-- > 0;)
				c->free[c->nfree++] = k;
		}
		/* Each connection its own stream: its state is an output of a
		 * master generator, not seed + i * (splitmix's own increment),
		 * which would make every stream the same one shifted by i. */
		c->rng = splitmix64(&master);
		c->backoff_ms = 10;
		msgpack_sbuffer_init(&c->sb);
		c->retry = evtimer_new(b->base, conn_retry_cb, c);
		c->pace = evtimer_new(b->base, conn_pace_cb, c);
		if (!c->retry || !c->pace)
			die("out of memory");
	}
	b->tick = event_new(b->base, -1, EV_PERSIST, tick_cb, b);
	b->deadline = evtimer_new(b->base, deadline_cb, b);
	b->sigint = evsignal_new(b->base, SIGINT, signal_cb, b);
	b->sigterm = evsignal_new(b->base, SIGTERM, signal_cb, b);
	if (!b->tick || !b->deadline || !b->sigint || !b->sigterm)
		die("out of memory");
}

static void bench_free(bench *b)
{
	for (unsigned i = 0; i < O.clients; i++) {
		conn *c = &b->conns[i];

		if (c->bev)
			bufferevent_free(c->bev);
		event_free(c->retry);
		event_free(c->pace);
		msgpack_sbuffer_destroy(&c->sb);
		free(c->slots);
		free(c->free);
	}
	free(b->conns);
	if (b->ctx)
		for (uint64_t k = 0; k < O.keys; k++)
			free(b->ctx[k]);
	free(b->ctx);
	free(b->ctxlen);
	free(b->pool);
	for (int i = 0; i < OP_N; i++) {
		hist_free(b->pre.lat[i]);
		hist_free(b->run.lat[i]);
	}
	hist_free(b->ivl);
	event_free(b->tick);
	event_free(b->deadline);
	event_free(b->sigint);
	event_free(b->sigterm);
	event_base_free(b->base);
}

int main(int argc, char **argv)
{
	static bench b;
	struct timeval tick = { 0, TICK_MS * 1000 };
	int status;

	parse_args(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	bench_init(&b);
	for (unsigned h = 0; h < O.nhosts; h++)
		resolve_and_probe(&b, h);
	if (O.target == T_REDIS && O.rw_given && !O.json)
		fprintf(stderr, PROG ": note: -r, -w, --pr and --pw are ignored for redis\n");

	event_add(b.tick, &tick);
	event_add(b.sigint, NULL);
	event_add(b.sigterm, NULL);
	phase_start(&b, O.preload ? PH_PRELOAD : PH_RUN);
	for (unsigned i = 0; i < O.clients; i++)
		conn_connect(&b.conns[i]);
	if (b.phase != PH_DONE)
		event_base_dispatch(b.base);
	if (b.t_end == 0)           /* stopped during the preload */
		b.t_end = b.t_start = now_ns();
	if (O.preload && b.pre.errors && !O.json) {
		progress_clear(&b);
		fprintf(stderr, PROG ": warning: %" PRIu64 " preload puts failed; gets of "
			"those keys count as not_found\n", b.pre.errors);
	}
	report(&b);
	status = b.interrupted ? 130 : b.all_lost ? 1 : 0;
	bench_free(&b);
	return status;
}
