/*
 * dynkv.h -- libdynkv, the C client of the dynkv key-value store.
 *
 * WHAT IT IS
 *   A small blocking client: one `dynkv` handle is one TCP connection to one
 *   node; each call sends one request and waits for its reply.  Any node
 *   accepts any request (there is no leader), so a program that wants to
 *   survive a node's death keeps a list of nodes and reconnects to another
 *   one when a call fails with a connection error.  The wire protocol is in
 *   dynkv-protocol(7); the command-line client dynkv(1) is a thin main over
 *   this library.
 *
 *	#include <dynkv.h>        link with: pkg-config --cflags --libs dynkv
 *
 *	dynkv_config cfg;
 *	dynkv *c;
 *	dynkv_result res = {0};
 *	char err[256];
 *
 *	dynkv_config_init(&cfg);
 *	cfg.address = "127.0.0.1:7070";
 *	if (dynkv_connect(&c, &cfg, err, sizeof(err)) != 0)
 *		errx(1, "%s", err);
 *	rc = dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL);
 *	rc = dynkv_get(c, "k", 1, NULL, &res);
 *	... res.found, res.values[0].data, res.values[0].len, res.context ...
 *	rc = dynkv_put(c, "k", 1, "v2", 2, res.context.data, res.context.len,
 *		       NULL, NULL);
 *	dynkv_result_free(&res);
 *	dynkv_close(c);
 *
 * VERSIONS, SIBLINGS AND THE CONTEXT
 *   A get returns every live value of a key that no write has yet superseded
 *   (several when writes were concurrent: "siblings") and a context, opaque
 *   bytes that say which writes the reader has seen.  A put or delete that
 *   passes that context back replaces exactly those siblings; a put with no
 *   context (a "blind write") adds a sibling beside whatever is there.  So
 *   the way to resolve siblings is: get, merge the values as the
 *   application sees fit, put the result with the get's context.  A key
 *   that is deleted, or was never written, reads as found = false, yet may
 *   still carry a context (of its tombstones): pass it to the next put.
 *   A put or delete also returns the context of the object it produced, so
 *   that a program that writes one key repeatedly need not read in between,
 *   and how many live siblings that object holds (res->siblings).
 *
 * REPLACE MODE
 *   A put or delete with opts->replace (and no context) means "whatever is
 *   there, replace it": the node that coordinates the write first reads the
 *   key as a get would, with opts->r and opts->pr, and then writes with the
 *   context of that read merged with its own copy as it stands at that
 *   moment.  Replace-mode writes through one coordinator (the node a key's
 *   writes are forwarded to) thus supersede each other in the order they
 *   are applied, however many run at once; only writes that different
 *   coordinators make at the same time can become siblings, and neither is
 *   ever lost (res->siblings > 1 says so: resolve them with a get and a put
 *   with its context).  A replace-mode delete removes every value the read
 *   found.  If the read fails (DYNKV_EQUORUM, DYNKV_ENODETIMEOUT) the write
 *   fails with it and nothing is written.  replace with a context, or on a
 *   get, is DYNKV_EARG.  It costs a read's round trip more than a blind
 *   write.
 *
 *   Nodes older than this library refuse its writes (DYNKV_EINVALID,
 *   "unknown option"): every put and delete asks for the sibling count,
 *   which such a node does not know.  Upgrade the nodes first.
 *
 * CONSISTENCY OPTIONS
 *   Every request may carry a dynkv_opts: how many replicas must answer a
 *   read (r) or acknowledge a write (w), how many of those must be primary
 *   owners of the key rather than fallbacks (pr, pw), and the node's time
 *   limit (timeout_ms).  A count is 1..DYNKV_N_MAX or one of the words
 *   DYNKV_ONE, DYNKV_QUORUM (n_val / 2 + 1) and DYNKV_ALL (n_val).  Zero
 *   (and a NULL opts, and an all-zero struct) means the node's default.
 *
 * ERRORS
 *   Every function that acts returns an int: 0 on success, or a negative
 *   DYNKV_E* code below -- never -errno.  dynkv_strerror() names any code;
 *   dynkv_errmsg() gives the detail of the handle's last failure: the
 *   node's own message for an error the node sent ("quorum not met: 1 of
 *   w=2 replicas answered"), or what went wrong locally ("connection closed
 *   by the node after 6 of 14 reply bytes").
 *
 *   Two kinds of failure differ in what they leave behind:
 *   - The node answered with an error (DYNKV_ESERVER ... DYNKV_EINTERNAL,
 *     dynkv_is_server_error() is true).  An error that carries the
 *     request's id failed that request only, and the connection remains
 *     usable.  A connection error (request id 0: DYNKV_EREQUEST,
 *     DYNKV_EVERSION, or DYNKV_ETOOBIG or DYNKV_EOVERLOAD sent before any
 *     request was read) means the node has closed its end: the handle is
 *     broken, as below.  DYNKV_EOVERLOAD and DYNKV_ESHUTDOWN ask the caller
 *     to try later or another node.
 *   - The conversation broke: DYNKV_EIO, DYNKV_ETIMEOUT, DYNKV_EPROTO.  A
 *     reply that does not arrive within its deadline, that comes with
 *     another request's id, that is not well-formed or that is longer than
 *     max_reply leaves the stream at an unknown position, so the handle is
 *     marked broken: every later request fails at once with DYNKV_EBROKEN
 *     and the only thing left to do is dynkv_close() (and connect again).
 *     A peer that is not a dynkv node at all (an HTTP, Redis or SSH server
 *     on that port) answers with text, which no dynkv frame begins with:
 *     that is DYNKV_EPROTO too, and dynkv_errmsg() says so ("the peer at
 *     HOST:PORT is not a dynkv node (it answered like an HTTP server:
 *     "HTTP/1.1 400 Bad Request")").
 *   Either way a failed write may or may not have been applied: with
 *   DYNKV_EQUORUM some replicas may hold it; with a timeout or an I/O error
 *   the node may have applied it all.  Retrying a put with the same
 *   context is safe but may leave the value twice, as two equal siblings.
 *
 * DEADLINES
 *   Each request has a client-side deadline: opts->timeout_ms plus
 *   cfg.timeout_margin_ms when the request carries a timeout, else
 *   cfg.request_timeout_ms.  The margin lets the node's own timeout fire
 *   first, so that a slow quorum reads as DYNKV_ENODETIMEOUT with the node's
 *   account of who answered, and DYNKV_ETIMEOUT means the node itself did
 *   not answer.  Connecting is bounded by cfg.connect_timeout_ms, name
 *   resolution (getaddrinfo) excepted.
 *
 * MEMORY
 *   A reply is read into one buffer after its length prefix is checked
 *   against cfg.max_reply, so a confused or hostile node cannot make the
 *   client allocate more than that.  Results borrow from that buffer; see
 *   dynkv_result.
 *
 * THREADS AND SIGNALS
 *   A handle is not thread-safe: use one connection per thread (or a lock
 *   around every call).  Different handles are independent; the library
 *   has no global state.  Sends use MSG_NOSIGNAL, so a node that closes
 *   the connection gives DYNKV_EIO rather than SIGPIPE.  A call interrupted
 *   by a signal resumes and keeps its deadline.
 */
#ifndef DYNKV_H
#define DYNKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- error codes ------------------------------------------------------------
 * Client side: -1 .. -19.  Sent by the node: -100 - (the wire error code of
 * dynkv-protocol(7)), so DYNKV_EREQUEST .. DYNKV_EINTERNAL are -101 .. -112,
 * and a wire code this library does not know reads as DYNKV_ESERVER.
 */
#define DYNKV_OK            0
#define DYNKV_EIO           (-1)    /* connection or I/O failure (refused, reset, closed) */
#define DYNKV_ETIMEOUT      (-2)    /* the client's deadline passed (connect or request) */
#define DYNKV_EPROTO        (-3)    /* the node's reply broke the protocol */
#define DYNKV_EBROKEN       (-4)    /* handle unusable after an earlier failure */
#define DYNKV_ENOMEM        (-5)    /* out of memory */
#define DYNKV_EARG          (-6)    /* bad argument: address, key, option value */

#define DYNKV_ESERVER       (-100)  /* the node sent an error code unknown here */
#define DYNKV_EREQUEST      (-101)  /* node: malformed frame or message */
#define DYNKV_EVERSION      (-102)  /* node: unsupported protocol version */
#define DYNKV_ETYPE         (-103)  /* node: unknown message type */
#define DYNKV_ETOOBIG       (-104)  /* node: key, value or frame too large */
#define DYNKV_EINVALID      (-105)  /* node: invalid request option */
#define DYNKV_EQUORUM       (-106)  /* node: too few replicas answered */
#define DYNKV_ENODETIMEOUT  (-107)  /* node: its request timeout passed */
#define DYNKV_ESTORAGE      (-108)  /* node: storage failure */
#define DYNKV_EOVERLOAD     (-109)  /* node: overloaded, try later or elsewhere */
#define DYNKV_ESHUTDOWN     (-110)  /* node: shutting down */
#define DYNKV_ECONTEXT      (-111)  /* node: the context passed is malformed */
#define DYNKV_EINTERNAL     (-112)  /* node: internal error */

/* A static description of any code above ("quorum not met").  Never NULL. */
const char *dynkv_strerror(int rc);
/* True iff rc is an error the node sent (DYNKV_ESERVER .. DYNKV_EINTERNAL). */
bool dynkv_is_server_error(int rc);

/* --- options ---------------------------------------------------------------- */

#define DYNKV_DEFAULT  0        /* the node's default */
#define DYNKV_ONE      (-1)     /* one replica */
#define DYNKV_QUORUM   (-2)     /* a majority of the key's n_val replicas */
#define DYNKV_ALL      (-3)     /* all n_val replicas */
#define DYNKV_N_MAX    16       /* the largest count a node accepts */
#define DYNKV_TIMEOUT_MAX 3600000u  /* the longest timeout_ms a node accepts */
#define DYNKV_TTL_MAX_MS 3153600000000ull  /* the longest ttl_ms: 100 years */

/* Per-request options; an all-zero struct (or NULL) asks for the node's
 * defaults.  Values out of range fail with DYNKV_EARG before anything is
 * sent. */
typedef struct dynkv_opts {
	int r;                  /* read quorum: 1..16, DYNKV_ONE/QUORUM/ALL, 0 = default */
	int w;                  /* write quorum, as r */
	int pr;                 /* primaries among the r replies, as r; 0 = none required */
	int pw;                 /* primaries among the w acks, as r; 0 = none required */
	unsigned timeout_ms;    /* the node's time limit, 1..3600000; 0 = default */
	bool replace;           /* put, delete: true iff replace mode (REPLACE MODE
				 * above); r and pr are then its read's */
	uint64_t ttl_ms;        /* put: the value expires this long after the
				 * write, 1..DYNKV_TTL_MAX_MS; 0 = never */
} dynkv_opts;

/* Parse a quorum word: "one", "quorum", "all", "default" (0) or a decimal
 * count 1..16, into *q.  0, or DYNKV_EARG (*q untouched). */
int dynkv_parse_quorum(const char *s, int *q);
/* The word for q ("one", "quorum", "all", "default"), or NULL for a count
 * or an invalid value (print the number then). */
const char *dynkv_quorum_name(int q);

/* --- connections ------------------------------------------------------------ */

typedef struct dynkv dynkv;     /* one connection; opaque */

#define DYNKV_DEFAULT_CONNECT_TIMEOUT_MS 5000u
/* Above the node's default request_timeout (5 s) with room to spare. */
#define DYNKV_DEFAULT_REQUEST_TIMEOUT_MS 30000u
#define DYNKV_DEFAULT_TIMEOUT_MARGIN_MS  1000u
/* 8 x the node's default max_frame (8 MiB): room for a VALUE of several
 * siblings of the largest value a node can be configured to store. */
#define DYNKV_DEFAULT_MAX_REPLY          (64u << 20)

typedef struct dynkv_config {
	const char *address;            /* "host:port" or "[v6addr]:port"; borrowed
					 * during dynkv_connect() only */
	unsigned connect_timeout_ms;    /* bound on connecting; 0 = 5000 */
	unsigned request_timeout_ms;    /* deadline of a request without opts timeout; 0 = 30000 */
	unsigned timeout_margin_ms;     /* added to opts timeout for the deadline; 0 = 1000 */
	size_t max_reply;               /* longest reply payload accepted; 0 = 64 MiB */
} dynkv_config;

/* Fill *cfg with the defaults (address NULL: the caller sets it). */
void dynkv_config_init(dynkv_config *cfg);

/* Connect to cfg->address: resolve it, then try each address in turn until
 * one accepts within what is left of connect_timeout_ms.  The socket has
 * TCP_NODELAY and close-on-exec.  0 and *out, a handle the caller frees
 * with dynkv_close(); or DYNKV_EARG (bad address), DYNKV_EIO (resolution
 * failed, connection refused...), DYNKV_ETIMEOUT or DYNKV_ENOMEM, with the
 * reason in err (which may be NULL when errlen is 0). */
int dynkv_connect(dynkv **out, const dynkv_config *cfg, char *err, size_t errlen);

/* Close the connection and free the handle.  NULL is a no-op. */
void dynkv_close(dynkv *c);

/* True iff the handle is broken (see ERRORS): every request will fail. */
bool dynkv_is_broken(const dynkv *c);

/* The detail of the last failed call on c, "" if the last call succeeded.
 * Borrowed until the next call on c. */
const char *dynkv_errmsg(const dynkv *c);

/* Change the reply limit of an open handle (0 = the default). */
void dynkv_set_max_reply(dynkv *c, size_t max_reply);

/* --- requests ---------------------------------------------------------------
 * Keys are 1 or more bytes and values 0 or more, any bytes at all (NUL
 * included); the node sets the upper limits (max_key_size, max_value_size)
 * and answers DYNKV_ETOOBIG past them.  A context of ctxlen 0 (ctx may then
 * be NULL) is no context: a blind write.  opts may be NULL.
 */

/* A byte string.  In a result it is borrowed from the result. */
typedef struct dynkv_bytes {
	const uint8_t *data;    /* NULL only when len is 0 */
	size_t len;
} dynkv_bytes;

/* What a get found, or the context a put or delete produced.  Every
 * pointer in it is owned by the result: borrowed until dynkv_result_free(),
 * which the caller must call after a successful call that filled it (copy
 * what must outlive it).  An all-zero struct is an empty result, and a
 * failed call leaves one, so freeing it then is harmless. */
typedef struct dynkv_result {
	bool found;             /* true iff the key has at least one live value */
	size_t nvalues;         /* live siblings: 0 iff !found */
	dynkv_bytes *values;    /* the siblings' values, in the node's order */
	uint64_t tombstones;    /* siblings that are deletes (concurrent with a write) */
	size_t siblings;        /* live siblings: a get's nvalues; after a put or
				 * delete, those of the object it produced at its
				 * coordinator (1 after a put that superseded all,
				 * more beside concurrent writes) */
	dynkv_bytes context;    /* opaque, for a later put or delete; len 0: none */
	void *priv_;            /* the reply buffer; not for the caller */
} dynkv_result;

/* Read key.  0 and *res (found or not: a missing key is not an error), or
 * an error code and *res empty.  *res must not hold an unfreed result. */
int dynkv_get(dynkv *c, const void *key, size_t klen, const dynkv_opts *opts,
	      dynkv_result *res);

/* Free what *res holds and leave it empty.  NULL is a no-op. */
void dynkv_result_free(dynkv_result *res);

/* Write value under key, superseding the siblings ctx has seen (in replace
 * mode, opts->replace, everything there is: see REPLACE MODE).
 * res may be NULL.  Otherwise *res must not hold an unfreed result, and a
 * successful put fills res->context with the context of the object the
 * write produced and res->siblings with its live siblings (its other
 * fields stay empty: found false, no values);
 * pass that context to the next write of the key to supersede this one
 * without a read in between, and free *res with dynkv_result_free().  A
 * failed put leaves *res empty. */
int dynkv_put(dynkv *c, const void *key, size_t klen, const void *value, size_t vlen,
	      const void *ctx, size_t ctxlen, const dynkv_opts *opts, dynkv_result *res);

/* Delete key: write a tombstone that supersedes the siblings ctx has seen.
 * Without a context a delete supersedes nothing, and any value stays
 * beside the tombstone: pass the context of a get, or use replace mode
 * (opts->replace), which deletes whatever is there.  res as for
 * dynkv_put(): res->siblings counts the values left beside the tombstone
 * (0 unless a write was concurrent). */
int dynkv_delete(dynkv *c, const void *key, size_t klen, const void *ctx, size_t ctxlen,
		 const dynkv_opts *opts, dynkv_result *res);

/* Ask the node for a PONG; the deadline is timeout_ms (0: request_timeout_ms). */
int dynkv_ping(dynkv *c, unsigned timeout_ms);

/* --- administration ----------------------------------------------------------
 * An ADMIN request runs a command on the node ("members", "ring", "status",
 * "preflist", "join", "leave", "remove": dynkv-admin(1) lists them with the schema of
 * each result) and returns its result as one MessagePack map, the body of
 * the node's INFO reply (dynkv-protocol(7)).  The library has checked that
 * the map is well-formed: exactly one map, nested at most 16 deep, string
 * keys, no extension types; what keys it holds is the command's business.
 */

#define DYNKV_ADMIN_MAX_COMMAND 32      /* longest command, in bytes */
#define DYNKV_ADMIN_MAX_ARGS    8       /* most arguments */
#define DYNKV_ADMIN_MAX_ARG     1024    /* longest argument, in bytes */

/* Run command (1..DYNKV_ADMIN_MAX_COMMAND bytes) with nargs C-string
 * arguments (args may be NULL when nargs is 0).  0 and *info, the
 * MessagePack bytes of the result map (*info_len of them), in a buffer the
 * caller frees with free(); or an error code, with *info NULL and
 * *info_len 0.  A command, argument count or argument past the limits
 * above is DYNKV_EARG, before anything is sent.  The deadline is
 * cfg.request_timeout_ms.  A node that does not know the command answers
 * with an error (DYNKV_EINVALID, its message naming the command); one that
 * does not know ADMIN at all, DYNKV_ETYPE. */
int dynkv_admin(dynkv *c, const char *command, const char *const *args, size_t nargs,
		void **info, size_t *info_len);

#ifdef __cplusplus
}
#endif

#endif /* DYNKV_H */
