/*
 * dkv_config.h -- the configuration of dynkvd: dynkv.conf(5) and its
 * command-line options.
 *
 * (The module is dkv_config, not config, because autoconf's generated
 * config.h, which every .c includes first, owns that name.)
 *
 * ONE TABLE
 *   DKV_CONFIG_KEYS below is the only list of settings.  It generates the
 *   fields of struct dkv_config, their defaults, the parser of each value,
 *   the long options (ring_size <-> --ring-size) and the list that
 *   dynkvd --help prints and the man-page test checks (dkv_config_key_at).
 *   Adding a setting is adding one row; adding a kind of value is adding one
 *   row to DKV_CONFIG_TYPES and a parse and format case in dkv_config.c.
 *   Defaults are written as text and parsed by the same code as the file, so
 *   the documented default and the real one cannot differ.
 *
 * THE FILE
 *   `key = value` lines; blank lines and lines whose first non-blank byte is
 *   '#' are ignored; blanks around key and value are trimmed.  An unquoted
 *   value ends at a '#' that starts it or follows a blank (a trailing
 *   comment).  A value in double quotes may hold any byte but NUL, newline
 *   and control bytes, with \" and \\ as the only escapes; nothing but a
 *   comment may follow the closing quote.  Each key may appear once.
 *   Unknown keys, duplicates, bad values, lines without '=', lines longer
 *   than DKV_CONFIG_LINE_MAX bytes, NUL bytes and files larger than
 *   DKV_CONFIG_FILE_MAX are errors, reported as
 *       dynkv.conf:12: ring_size: 100 is not a power of two between 64 and 1024
 *   (the name as given, the line, the reason).  The first error stops the
 *   load and leaves the config as it was, so that a future reload (dynkvd
 *   does not reload settings today: SIGHUP only reopens the log) with a
 *   broken file would keep the running settings.
 *
 * THE COMMAND LINE
 *   Every key is a long option, `--ring-size 512` or `--ring-size=512`;
 *   `--config FILE` names the file; `-h`/`--help` and `--version` are only
 *   reported back.  Options override the file whatever their position:
 *   dkv_config_from_cmdline() reads the file first and applies the options
 *   after it.  A repeated option: the last one wins.
 *
 * CROSS-FIELD RULES
 *   A value is checked alone when it is set; rules that tie keys together
 *   (r and w at most n_val; a frame big enough for the largest key and value)
 *   are checked by dkv_config_check(), once everything is set.
 *
 * ERRORS
 *   DKV_EINVAL for anything wrong in the text (with the reason in err),
 *   -errno when the file cannot be read, -ENOMEM.
 *
 * THREADS AND OWNERSHIP
 *   A dkv_config is a plain value: no locks; one thread builds it, then it
 *   may be read from any thread.  Its string fields are malloc'd and owned by
 *   it: dkv_config_free() frees them, dkv_config_copy() duplicates them.
 *   An all-zero struct is a valid empty config for dkv_config_free().
 */
#ifndef DKV_DKV_CONFIG_H
#define DKV_DKV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Longest line of a config file, newline excluded. */
#define DKV_CONFIG_LINE_MAX 4096
/* Largest config file: a real one is a few KiB; this bounds a mistake
 * such as --config pointing at a data file. */
#define DKV_CONFIG_FILE_MAX (1024 * 1024)
/* Largest n_val, r and w. */
#define DKV_CONFIG_N_MAX 16
/* Room a frame needs besides the key and value of a put: the 4-byte
 * length, the msgpack envelope [version, type, request_id, body] and the
 * body's map (a few dozen bytes), and the causal context: a version vector
 * of at most vclock_max = 50 entries of (actor id <= 255 bytes, counter 8,
 * timestamp 8, msgpack headers ~8) = 50 * 279 < 14 KiB.  64 KiB leaves
 * room for siblings' dots and for growth of the envelope. */
#define DKV_CONFIG_FRAME_OVERHEAD (64 * 1024)

/* r and w given as words; numbers are stored as themselves (1..16). */
#define DKV_QUORUM_ONE    (-1)   /* one replica */
#define DKV_QUORUM_QUORUM (-2)   /* a majority: n_val / 2 + 1 */
#define DKV_QUORUM_ALL    (-3)   /* every replica: n_val */

/* Durability of writes (the same order as bitcask_sync). */
typedef enum dkv_config_sync {
	DKV_SYNC_NONE = 0,          /* never fsync; the kernel writes back */
	DKV_SYNC_INTERVAL,          /* fdatasync every sync_interval_ms */
	DKV_SYNC_ALWAYS,            /* fsync before every acknowledgement */
} dkv_config_sync;

/*
 * The kinds of value: X(TYPE, "doc name", C type of the field).
 *   STR       text; min..max is its length in bytes; no control bytes
 *   HOSTPORT  HOST:PORT, [IPv6]:PORT; port 1..65535
 *   HOSTLIST  comma-separated HOSTPORTs, blanks around commas allowed; may be empty
 *   UINT      decimal min..max
 *   POW2      a power of two min..max
 *   QUORUM    1..min(max, n_val) or one, quorum, all
 *   SYNC      none, interval, always
 *   LOGLEVEL  error, warning, info, debug
 *   SIZE      bytes min..max; suffix K, M, G (or KiB, MiB, GiB) for 2^10, 2^20, 2^30
 *   DURATION  milliseconds min..max; suffix ms, s or m (a bare number is ms)
 *   SECONDS   as DURATION, but a bare number is seconds
 *   MICROS    microseconds min..max; suffix us, ms or s (a bare number is us)
 */
#define DKV_CONFIG_TYPES(X)                  \
	X(STR,      "string",   char *)          \
	X(HOSTPORT, "host:port", char *)         \
	X(HOSTLIST, "host:port,...", char *)     \
	X(UINT,     "number",   uint32_t)        \
	X(POW2,     "power of two", uint32_t)    \
	X(QUORUM,   "quorum",   int32_t)         \
	X(SYNC,     "none|interval|always", dkv_config_sync) \
	X(LOGLEVEL, "error|warning|info|debug", dkv_log_level) \
	X(SIZE,     "size",     uint64_t)        \
	X(DURATION, "duration", uint32_t)        \
	X(SECONDS,  "seconds",  uint32_t)        \
	X(MICROS,   "microseconds", uint32_t)

/*
 * The settings: X(name, TYPE, "default", min, max, "description").
 * The description is the field's comment and the line in dynkvd --help.
 *
 * Why these defaults: N=3 survives one lost disk while a second replica is
 * down; R=W=quorum=2 gives R+W > N (reads see the latest acknowledged write)
 * and tolerates one slow or dead replica per request.  ring_size 512: the
 * smallest at which the placement of ring.h keeps the busiest of five
 * nodes within 1.15x the mean of replicas for every one of 1000 random
 * member sets (worst 1.126x; at 256, 7 sets in 1000 exceed it: see
 * tests/unit/test_ring.c and dynkv.7); 512 partitions are still few files.
 * max_frame 8 MiB = 8 frames' worth of the 1 MiB value limit, far above
 * 1 MiB + 1 KiB + DKV_CONFIG_FRAME_OVERHEAD.
 */
#define DKV_CONFIG_KEYS(X) \
	X(node_id,          STR,      "",               0, 255,        "this node's id in the ring (empty: the listen address)") \
	X(listen,           HOSTPORT, "127.0.0.1:7070", 0, 0,          "address for clients and peers (TCP) and gossip (UDP)") \
	X(data_dir,         STR,      "./var/dynkv",    1, 4095,       "directory holding this node's partitions") \
	X(seeds,            HOSTLIST, "",               0, 0,          "members to contact when starting (comma-separated host:port)") \
	X(n_val,            UINT,     "3",              1, DKV_CONFIG_N_MAX, "replicas of each key (N)") \
	X(r,                QUORUM,   "quorum",         1, DKV_CONFIG_N_MAX, "default read quorum (R): a number, one, quorum or all") \
	X(w,                QUORUM,   "quorum",         1, DKV_CONFIG_N_MAX, "default write quorum (W): a number, one, quorum or all") \
	X(ring_size,        POW2,     "512",            64, 1024,      "partitions in the ring, fixed when the cluster is created") \
	X(sync,             SYNC,     "interval",       0, 0,          "when writes are fsynced: none, interval or always") \
	X(sync_interval_ms, UINT,     "1000",           1, 60000,      "milliseconds between fsyncs with sync = interval") \
	X(max_key_size,     SIZE,     "1K",             1, 65535,      "largest key accepted, in bytes") \
	X(max_value_size,   SIZE,     "1M",             1, 512u << 20, "largest value accepted, in bytes") \
	X(max_frame,        SIZE,     "8M",             4096, 1u << 30, "largest frame accepted on a connection, in bytes") \
	X(max_connections,  UINT,     "10000",          1, 1000000,    "most client and peer connections open at once") \
	X(request_timeout,  DURATION, "5s",             1, 3600000,    "default time a request may take before it fails") \
	X(output_buffer_limit, SIZE,  "64M",            65536, 1u << 30, "unsent reply bytes a connection may hold before it is closed") \
	X(write_timeout,    DURATION, "30s",            1, 3600000,    "how long a connection with unsent replies may accept no byte before it is closed") \
	X(http_listen,      STR,      "",               0, 300,        "HOST:PORT of the HTTP face, loopback only, or off (empty: listen's host if loopback, else 127.0.0.1, and listen's port + 1000)") \
	X(http_timeout,     DURATION, "10s",            1, 3600000,    "how long an HTTP client may stay silent while it sends a request or takes its answer") \
	X(http_max_connections, UINT, "1024",           1, 100000,     "most HTTP connections served at once; a request on one more is answered 503") \
	X(resp_listen,      STR,      "",               0, 300,        "HOST:PORT of the Redis protocol face, loopback only, or off (empty: listen's host if loopback, else 127.0.0.1, and listen's port + 2000)") \
	X(resp_max_connections, UINT, "1024",           1, 100000,     "most Redis protocol connections served at once; one more is told so and closed") \
	X(resp_siblings,    STR,      "error",          1, 16,         "what a plain Redis GET of a key with concurrent values answers: error (naming DYNKV.GET) or newest (the value its coordinator's clock wrote last)") \
	X(vclock_max,       UINT,     "32",             4, 256,        "version vector entries kept per object before the oldest are pruned") \
	X(probe_interval,   DURATION, "1s",             10, 600000,    "how often a node probes one other member for liveness") \
	X(probe_timeout,    DURATION, "500ms",          5, 600000,     "how long a direct probe waits for its answer before asking others to probe") \
	X(probe_indirect,   UINT,     "3",              0, 16,         "members asked to probe a silent member indirectly (k)") \
	X(suspect_timeout,  DURATION, "5s",             10, 3600000,   "how long a suspect member has to refute before it is marked down") \
	X(push_pull_interval, DURATION, "5s",           10, 3600000,   "how often a node exchanges its whole membership state with a random member") \
	X(handoff_rate,     SIZE,     "32M",            4096, UINT64_C(1) << 40, "bytes per second one hinted handoff delivery may send") \
	X(handoff_concurrency, UINT,  "2",              1, 64,         "hinted handoff deliveries a node runs at once") \
	X(transfer_rate,    SIZE,     "64M",            4096, UINT64_C(1) << 40, "bytes per second a node may receive by ownership transfer, all its transfers together") \
	X(capacity_window,  DURATION, "60s",            600, 3600000,  "the window over which dynkv-admin capacity reports a node's requests a second and p99") \
	X(capacity_grow_ops, UINT,    "20000",          1, 100000000,  "requests a second coordinated by a node above which dynkv-admin capacity says grow") \
	X(capacity_grow_p99, MICROS,  "50ms",           1, 60000000,   "p99 latency of a node's requests above which dynkv-admin capacity says grow") \
	X(capacity_grow_disk, SIZE,   "0",              0, UINT64_C(1) << 50, "bytes a node's stores may take on disk before dynkv-admin capacity says grow (0: not looked at)") \
	X(capacity_shrink_ops, UINT,  "2000",           0, 100000000,  "requests a second below which, on every member, dynkv-admin capacity says shrink") \
	X(transfer_limit,   UINT,     "8",              1, 64,         "partitions a node receives at once by ownership transfer") \
	X(transfer_yield,   MICROS,   "300us",          0, 1000000,    "mean event-loop delay, while requests are served, past which ownership transfer halves its rate, down to 1/32 of transfer_rate (0: never slows)") \
	X(handoff_yield,    MICROS,   "300us",          0, 1000000,    "mean event-loop delay, while requests are served, past which hinted handoff halves its rate, down to 1/32 of handoff_rate (0: never slows)") \
	X(hint_max_bytes,   SIZE,     "1G",             1u << 20, UINT64_C(1) << 50, "most bytes of hints a node holds for other nodes before it refuses more") \
	X(hint_window,      DURATION, "3h",             1000, 3600000000u, "how long a node takes hints for one down node before it refuses more") \
	X(aae_interval,     SECONDS,  "2s",             10, 3600000,   "how often a node starts an anti-entropy exchange for its next partition (a plain number is seconds)") \
	X(aae_rebuild_interval, SECONDS, "24h",         1000, 3600000000u, "how often each anti-entropy tree is rebuilt from its store (a plain number is seconds)") \
	X(aae_rate,         SIZE,     "8M",             4096, UINT64_C(1) << 40, "bytes per second anti-entropy may send, symbols and repaired objects together") \
	X(tombstone_grace,  SECONDS,  "1h",             1000, 3600000000u, "how long a delete's tombstone is kept before it may be reaped (a plain number is seconds)") \
	X(log_level,        LOGLEVEL, "info",           0, 0,          "least severe messages logged: error, warning, info or debug") \
	X(log_file,         STR,      "",               0, 4095,       "file the log is appended to (empty: stderr); reopened on SIGHUP")

#define DKV_CONFIG_CTYPE_(type, docname, ctype) typedef ctype dkv_config_ctype_##type;
DKV_CONFIG_TYPES(DKV_CONFIG_CTYPE_)
#undef DKV_CONFIG_CTYPE_

/* The daemon's settings.  Each field is one row of DKV_CONFIG_KEYS, whose
 * description is its comment; strings are owned (see THREADS AND OWNERSHIP);
 * QUORUM fields are 1..16 or DKV_QUORUM_*; DURATION and SECONDS fields are in ms,
 * MICROS fields in microseconds. */
typedef struct dkv_config {
#define DKV_CONFIG_FIELD_(name, type, def, min, max, desc) dkv_config_ctype_##type name;
	DKV_CONFIG_KEYS(DKV_CONFIG_FIELD_)
#undef DKV_CONFIG_FIELD_
	uint64_t explicitly_set;   /* bit i: key i was set by a file or an option */
} dkv_config;

/* The index of each key in the table: DKV_CONFIG_KEY_ring_size, ... */
enum {
#define DKV_CONFIG_INDEX_(name, type, def, min, max, desc) DKV_CONFIG_KEY_##name,
	DKV_CONFIG_KEYS(DKV_CONFIG_INDEX_)
#undef DKV_CONFIG_INDEX_
	DKV_CONFIG_NKEYS
};
_Static_assert(DKV_CONFIG_NKEYS <= 64, "explicitly_set is a 64-bit mask");

/* One row of the table, for documentation and --help. */
typedef struct dkv_config_key {
	const char *name;          /* file key, e.g. "ring_size" */
	char option[64];           /* long option, e.g. "--ring-size" */
	const char *type;          /* kind of value for people, e.g. "size" */
	const char *default_text;  /* the default as written in the table, e.g. "1M" */
	const char *description;   /* one line */
} dkv_config_key;

/* Fill *out with row i of the table; false iff i >= DKV_CONFIG_NKEYS.
 *   for (size_t i = 0; dkv_config_key_at(i, &k); i++) ... */
bool dkv_config_key_at(size_t i, dkv_config_key *out);
/* Fill *out with the row of a file key; false iff there is none. */
bool dkv_config_key_find(const char *name, dkv_config_key *out);

/* Fill *cfg with the defaults (overwriting it: free it first if it held a
 * config).  0 or -ENOMEM (then *cfg is empty). */
int dkv_config_init(dkv_config *cfg);
/* Free the strings and zero *cfg.  An all-zero struct is fine. */
void dkv_config_free(dkv_config *cfg);
/* Make *dst (not initialised, or freed) a deep copy of *src.  0 or -ENOMEM. */
int dkv_config_copy(dkv_config *dst, const dkv_config *src);

/* Set one key from its text, checked alone.  0, or DKV_EINVAL with
 * "key: reason" in err (unknown key: "unknown key 'x'"), or -ENOMEM.
 * On error *cfg is unchanged. */
int dkv_config_set(dkv_config *cfg, const char *key, const char *value,
		   char *err, size_t errlen);

/* Format key's current value as text that dkv_config_set accepts back.
 * 0, DKV_ENOTFOUND for an unknown key, DKV_ETOOBIG if it does not fit. */
int dkv_config_get(const dkv_config *cfg, const char *key, char *buf, size_t len);
/* True iff key was set by a file, an option or dkv_config_set(), not only
 * defaulted (the node lets recorded settings win over defaults). */
bool dkv_config_is_set(const dkv_config *cfg, const char *key);

/* Parse config text.  name is used only in messages ("name:line: reason").
 * Keys in the text are set on *cfg, others keep their values; on error *cfg
 * is unchanged.  buf need not be NUL-terminated; len may be anything (more
 * than DKV_CONFIG_FILE_MAX is an error).  No cross-field check. */
int dkv_config_load_buffer(dkv_config *cfg, const char *name, const void *buf,
			   size_t len, char *err, size_t errlen);
/* Read path and parse it as above.  -errno ("path: reason") if unreadable. */
int dkv_config_load_file(dkv_config *cfg, const char *path, char *err, size_t errlen);

/* What the command line said besides settings. */
typedef struct dkv_config_cmdline {
	const char *config_path;   /* --config FILE (borrowed from argv), or NULL */
	bool help;                 /* true iff -h or --help was given */
	bool version;              /* true iff --version was given */
} dkv_config_cmdline;

/* Apply the options of argv[1..argc) to *cfg and fill *cl.  Only long
 * options; every argument must be one.  On error (DKV_EINVAL, with
 * "--ring-size: 100 is not ...", "unknown option '--x'", "--listen needs a
 * value" or "unexpected argument 'x'" in err) *cfg may hold the options
 * before the bad one. */
int dkv_config_parse_args(dkv_config *cfg, int argc, char *const argv[],
			  dkv_config_cmdline *cl, char *err, size_t errlen);

/* The whole start-up: defaults, then the file (--config FILE, else
 * default_path if that exists; NULL = none), then the options, then
 * dkv_config_check.  *cfg is initialised here (free it with
 * dkv_config_free, also after an error).  With --help or --version in
 * *cl, the file is not read and nothing is checked. */
int dkv_config_from_cmdline(dkv_config *cfg, int argc, char *const argv[],
			    const char *default_path, dkv_config_cmdline *cl,
			    char *err, size_t errlen);

/* Check the rules that tie keys together.  0 or DKV_EINVAL with a reason. */
int dkv_config_check(const dkv_config *cfg, char *err, size_t errlen);

/* The address the HTTP face listens on, into out: http_listen when set
 * ("" for off), else listen's host when it is a loopback address
 * (127.0.0.0/8, ::1, localhost), or 127.0.0.1, with listen's port plus
 * 1000 (minus 1000 past 65535): 127.0.0.1:7070 -> 127.0.0.1:8070.  0, or
 * DKV_EINVAL with the reason in err (not HOST:PORT, or an address that is
 * not loopback). */
int dkv_config_http_listen(const dkv_config *cfg, char *out, size_t outlen, char *err,
			   size_t errlen);
/* The same for the Redis protocol face: resp_listen, or listen's port
 * plus 2000 (127.0.0.1:7070 -> 127.0.0.1:9070). */
int dkv_config_resp_listen(const dkv_config *cfg, char *out, size_t outlen, char *err,
			   size_t errlen);

/* *yes = true iff host (a name or an address) resolves only to loopback
 * addresses (127.0.0.0/8, ::1).  0, or DKV_EINVAL with the resolver's
 * reason in why. */
int dkv_config_loopback_only(const char *host, bool *yes, char *why, size_t whylen);

/* A face's address la (from dkv_config_http_listen or _resp_listen, for
 * key), split into host and port, with host resolved and refused unless
 * it names loopback addresses only.  0, or DKV_EINVAL with the reason in
 * err ("resp_listen 10.0.0.1:9070: not a loopback address; the Redis
 * protocol face has no authentication yet, ..."). */
int dkv_config_face_address(const char *key, const char *la, const char *what,
			    const char *page, char *host, size_t hostlen, uint16_t *port,
			    char *err, size_t errlen);

/* The number of replicas a QUORUM value stands for with n_val replicas. */
uint32_t dkv_config_quorum(int32_t q, uint32_t n_val);

/* Split "HOST:PORT" or "[V6]:PORT" (len bytes, need not be NUL-terminated)
 * into host (NUL-terminated, brackets removed) and port.  0 or DKV_EINVAL. */
int dkv_config_hostport(const char *s, size_t len, char *host, size_t hostlen,
			uint16_t *port);

/* The seeds: how many, and the i-th split as by dkv_config_hostport. */
size_t dkv_config_seed_count(const dkv_config *cfg);
int dkv_config_seed(const dkv_config *cfg, size_t i, char *host, size_t hostlen,
		    uint16_t *port);

#endif /* DKV_DKV_CONFIG_H */
