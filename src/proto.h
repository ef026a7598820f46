/*
 * proto.h -- the wire protocol: frames and every message type.
 *
 * FRAMES (man/dynkv-protocol.7 is the normative text; this is its summary)
 *   A frame is a 4-byte big-endian payload length, then the payload: one
 *   msgpack array of four elements
 *
 *     [ version, type, request_id, body ]
 *
 *   version     = 1 (PROTO_VERSION)
 *   type        = unsigned integer, one of PROTO_TYPES below
 *   request_id  = unsigned 64-bit integer chosen by the sender of a request
 *                 and echoed in its reply, so a connection can pipeline;
 *                 replies may come out of order
 *   body        = depends on the type (below)
 *
 *   A payload of 0 bytes or above max_frame is refused before it is read:
 *   the node answers with an ERROR (request id 0) and closes.  So does a
 *   payload that is not exactly one well-formed message.
 *
 * BODIES
 *   GET     [key, opts]
 *   PUT     [key, value, context, opts]
 *   DELETE  [key, context, opts]
 *   PING    nil
 *   ADMIN   [command, args]
 *   VALUE   [found, values, context, tombstones]    reply to GET
 *           or [found, values, context, tombstones, stamps, expires] when asked
 *   OK      context  or  [context, siblings]        reply to PUT, DELETE
 *   PONG    nil                                     reply to PING
 *   ERROR   [code, message]                         reply to anything
 *   INFO    map                                     reply to ADMIN
 *
 *   key, value   bin (a key of 1..max_key_size bytes; a value of
 *                0..max_value_size bytes)
 *   context      bin (opaque: the bytes a VALUE or OK returned; empty = none)
 *                or nil.  The OK of a write carries the context of the
 *                object the write produced, so a client can write again
 *                without reading in between
 *   opts         map from str to int; unknown keys are an error.  Keys:
 *                "r", "w", "pr", "pw": a count 1..16, or -1 one, -2 quorum,
 *                -3 all (0 or absent: the node's default; pr, pw default 0
 *                = no primary requirement); "timeout_ms": 1..3600000 (0 or
 *                absent: the node's request_timeout).  PUT and DELETE only
 *                (on a GET they are unknown): "replace": 0 or 1, 1 = replace
 *                mode, the coordinator reads the key with this request's
 *                r and pr and writes with the context of that read merged
 *                with its own copy (a blind write that supersedes what is
 *                there; refused with a non-empty context); "siblings": 0
 *                or 1, 1 = answer with the second form of OK.  PUT only:
 *                "ttl_ms": 1..PROTO_MAX_TTL_MS, the value expires that
 *                long after the write (by the coordinator's clock).  GET
 *                only: "stamps": 0 or 1.  Absent or
 *                0: the frame means what it meant before these options
 *                existed (a node that predates them refuses them as
 *                unknown, never ignores them)
 *   siblings     uint: how many live (not tombstone) siblings the object
 *                the write produced holds at its coordinator: 1 after a
 *                put that superseded everything, more beside concurrent
 *                writes; sent only when the request asked ("siblings": 1)
 *   stamps       array of uint, one per value: the time of the write that
 *                made it, in ms since 1970 by its coordinator's clock; sent
 *                only when the GET asked ("stamps": 1, a GET option)
 *   expires      array of uint, one per value, sent with stamps: when the
 *                value expires (ms since 1970; 0: never).  A value whose
 *                time has come is not among the values (it reads as a
 *                tombstone and counts as one)
 *   found        bool: false when the key has no value (never written, or
 *                every sibling is a tombstone)
 *   values       array of bin: the live siblings, in dot order
 *   tombstones   uint: how many siblings are deletes (a delete concurrent
 *                with a write shows up here, beside the written value)
 *   code         uint, one of PROTO_ERRORS
 *   message      str, for people: "quorum not met: 1 of w=2 replicas answered"
 *   command      str of 1..PROTO_MAX_COMMAND bytes ("members", "ring", ...)
 *   args         array of 0..PROTO_MAX_ARGS str of 0..PROTO_MAX_ARG bytes
 *                each.  A command or argument past these limits, or an
 *                empty command, is DKV_EINVAL (the request is refused, the
 *                connection kept); a command or argument that is not a
 *                str is DKV_EPROTO
 *   map          the command's result: one msgpack map, nested at most
 *                PROTO_MAX_INFO_DEPTH containers deep (the map itself
 *                counts); every map key in it is a str; values are nil,
 *                bool, int, float, str, bin, array or map (no extension
 *                types).  Its schema belongs to the command
 *                (man/dynkv-admin.1), not to this codec
 *
 * DECODING
 *   proto_decode() reads a payload with the bounded reader of mpr.h: every
 *   declared length is checked against the bytes left before anything is
 *   allocated; byte strings in the result point into the payload.
 */
#ifndef DKV_PROTO_H
#define DKV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "dkv_config.h"   /* DKV_QUORUM_*, DKV_CONFIG_N_MAX */

#define PROTO_VERSION     1u
#define PROTO_HEADER_SIZE 4u            /* the big-endian length prefix */
#define PROTO_MAX_VALUES  4096u         /* most values one VALUE reply may carry */
#define PROTO_MAX_MESSAGE 4096u         /* longest error message kept */
#define PROTO_MAX_COMMAND 32u           /* longest ADMIN command */
#define PROTO_MAX_ARGS    8u            /* most ADMIN arguments */
#define PROTO_MAX_ARG     1024u         /* longest ADMIN argument */
#define PROTO_MAX_TTL_MS  UINT64_C(3153600000000)   /* 100 years */
/* Deepest nesting of containers in an INFO map, the map included.  The
 * deepest admin schema needs 4 (ring: map > partitions array > partition
 * map > preflist array); 16 leaves room for more, and bounds the
 * validator's recursion (one small C frame per level). */
#define PROTO_MAX_INFO_DEPTH 16u

/* X(name, number, "wire name", is_request) */
#define PROTO_TYPES(X)                         \
	X(GET,    1,  "GET",    true)          \
	X(PUT,    2,  "PUT",    true)          \
	X(DELETE, 3,  "DELETE", true)          \
	X(PING,   4,  "PING",   true)          \
	X(ADMIN,  5,  "ADMIN",  true)          \
	X(VALUE,  64, "VALUE",  false)         \
	X(OK,     65, "OK",     false)         \
	X(PONG,   66, "PONG",   false)         \
	X(ERROR,  67, "ERROR",  false)         \
	X(INFO,   68, "INFO",   false)

typedef enum proto_type {
#define X(name, num, wire, req) PROTO_##name = num,
	PROTO_TYPES(X)
#undef X
} proto_type;

/* Error codes on the wire: X(name, number, DKV error it maps to, "text"). */
#define PROTO_ERRORS(X)                                                    \
	X(PROTOCOL,  1,  DKV_EPROTO,    "malformed frame or message")      \
	X(VERSION,   2,  DKV_EVERSION,  "unsupported protocol version")   \
	X(TYPE,      3,  DKV_EPROTO,    "unknown message type")           \
	X(TOOBIG,    4,  DKV_ETOOBIG,   "key, value or frame too large")  \
	X(INVALID,   5,  DKV_EINVAL,    "invalid request option")         \
	X(QUORUM,    6,  DKV_EQUORUM,   "quorum not met")                 \
	X(TIMEOUT,   7,  DKV_ETIMEDOUT, "request timed out")              \
	X(STORAGE,   8,  DKV_EFAILED,   "storage failure")                \
	X(OVERLOAD,  9,  DKV_EBUSY,     "node overloaded")                \
	X(SHUTDOWN,  10, DKV_ECLOSED,   "node shutting down")             \
	X(CONTEXT,   11, DKV_EPROTO,    "malformed context")              \
	X(INTERNAL,  12, DKV_EFAILED,   "internal error")

typedef enum proto_error {
#define X(name, num, dkv, text) PROTO_ERR_##name = num,
	PROTO_ERRORS(X)
#undef X
} proto_error;

/* Per-request options; 0 everywhere means "the node's defaults". */
typedef struct proto_opts {
	int32_t r, w, pr, pw;   /* 1..16 or DKV_QUORUM_ONE/QUORUM/ALL; 0 = default */
	uint32_t timeout_ms;    /* 0 = default */
	bool replace;           /* PUT, DELETE: true iff replace mode (read, then
	                         * supersede what was read) */
	bool siblings;          /* PUT, DELETE: true iff the OK is to carry the
	                         * sibling count */
	bool stamps;            /* GET: true iff the VALUE is to carry each
	                         * value's timestamp and expiry */
	uint64_t ttl_ms;        /* PUT: the value expires this long after its
	                         * write (0: never; at most PROTO_MAX_TTL_MS) */
} proto_opts;

/* A byte string borrowed from a payload. */
typedef struct proto_bytes {
	const uint8_t *p;
	size_t len;
} proto_bytes;

/* A decoded message.  Byte strings borrow from the payload; `values` is the
 * only allocation (proto_msg_release() frees it). */
typedef struct proto_msg {
	uint32_t type;
	uint64_t id;
	proto_bytes key;        /* GET, PUT, DELETE */
	proto_bytes value;      /* PUT */
	proto_bytes context;    /* PUT, DELETE, VALUE (len 0: none) */
	proto_opts opts;        /* GET, PUT, DELETE */
	bool found;             /* VALUE */
	proto_bytes *values;    /* VALUE: nvalues live siblings */
	size_t nvalues;
	uint64_t tombstones;    /* VALUE */
	uint64_t *stamps;       /* VALUE: nvalues timestamps, or NULL (not asked) */
	uint64_t *expires;      /* VALUE: nvalues expiries (0: none), with stamps */
	bool has_siblings;      /* OK: true iff it is the [context, siblings] form */
	uint32_t siblings;      /* OK: live siblings of the written object */
	uint32_t code;          /* ERROR */
	proto_bytes message;    /* ERROR (not NUL-terminated) */
	proto_bytes command;    /* ADMIN (not NUL-terminated) */
	proto_bytes args[PROTO_MAX_ARGS];   /* ADMIN: nargs arguments (not
					     * NUL-terminated; may hold NULs) */
	size_t nargs;           /* ADMIN */
	proto_bytes info;       /* INFO: the map's msgpack bytes, validated */
	bool header_ok;         /* version 1 with a type and an id: the frame
	                         * was whole even if the body was refused */
} proto_msg;

/* Limits the decoder enforces (the node's configuration). */
typedef struct proto_limits {
	size_t max_key;
	size_t max_value;
} proto_limits;

/* "GET", ... or NULL for an unknown type. */
const char *proto_type_name(uint32_t type);
/* True iff type is a request a node answers. */
bool proto_is_request(uint32_t type);
/* Text of a wire error code ("quorum not met"), "unknown error" if none. */
const char *proto_error_text(uint32_t code);
/* The DKV_E* code a wire error stands for (DKV_EFAILED if unknown). */
int proto_error_to_dkv(uint32_t code);
/* The wire code for a DKV_E* or -errno code. */
uint32_t proto_error_from_dkv(int rc);

/* The payload length of the frame whose first 4 bytes are at hdr. */
uint32_t proto_frame_length(const uint8_t hdr[PROTO_HEADER_SIZE]);

/* Decode one payload (lim must not be NULL).  0, or: DKV_EVERSION (*m has
 * the id and type when they could be read), DKV_ETOOBIG (a key or value
 * past the limits; the id is set), DKV_EINVAL (an empty key, an unknown
 * option or one out of range, an ADMIN command or argument out of its
 * limits; the id is set), DKV_EPROTO (malformed, or an
 * unknown type; the id and header_ok are set if the header could be read),
 * -ENOMEM.  On any error *m holds no allocation.  err (errlen may be 0)
 * gets a reason for people ("value too large: 2000000 > max_value_size
 * 1048576"). */
int proto_decode(const void *payload, size_t len, const proto_limits *lim,
		 proto_msg *m, char *err, size_t errlen);
void proto_msg_release(proto_msg *m);

/*
 * Encoders append one whole frame (length prefix included) to sbuf and
 * return 0, -ENOMEM, or DKV_ETOOBIG for a payload over 4 GiB or more than
 * PROTO_MAX_VALUES values (sbuf as it was on any error).
 */
int proto_encode_get(msgpack_sbuffer *sb, uint64_t id, const void *key, size_t klen,
		     const proto_opts *opts);
int proto_encode_put(msgpack_sbuffer *sb, uint64_t id, const void *key, size_t klen,
		     const void *val, size_t vlen, const void *ctx, size_t ctxlen,
		     const proto_opts *opts);
int proto_encode_delete(msgpack_sbuffer *sb, uint64_t id, const void *key, size_t klen,
			const void *ctx, size_t ctxlen, const proto_opts *opts);
int proto_encode_ping(msgpack_sbuffer *sb, uint64_t id);
int proto_encode_value(msgpack_sbuffer *sb, uint64_t id, bool found,
		       const proto_bytes *values, size_t nvalues,
		       const void *ctx, size_t ctxlen, uint64_t tombstones);
/* VALUE with each value's timestamp and expiry (nvalues of each; both
 * NULL: the form without, as proto_encode_value; one NULL: DKV_EINVAL). */
int proto_encode_value_stamps(msgpack_sbuffer *sb, uint64_t id, bool found,
			      const proto_bytes *values, const uint64_t *stamps,
			      const uint64_t *expires, size_t nvalues, const void *ctx,
			      size_t ctxlen, uint64_t tombstones);
int proto_encode_ok(msgpack_sbuffer *sb, uint64_t id, const void *ctx, size_t ctxlen);
/* OK in its second form, [context, siblings]: for a request that asked
 * for it ("siblings": 1). */
int proto_encode_ok_siblings(msgpack_sbuffer *sb, uint64_t id, const void *ctx, size_t ctxlen,
			     uint32_t siblings);
int proto_encode_pong(msgpack_sbuffer *sb, uint64_t id);
int proto_encode_error(msgpack_sbuffer *sb, uint64_t id, uint32_t code, const char *msg);
/* ADMIN: command and the nargs args are C strings (borrowed for the call).
 * DKV_EINVAL, and nothing written, for an empty command or one longer than
 * PROTO_MAX_COMMAND, more than PROTO_MAX_ARGS args or one longer than
 * PROTO_MAX_ARG: no decoder would accept them. */
int proto_encode_admin(msgpack_sbuffer *sb, uint64_t id, const char *command,
		       const char *const *args, size_t nargs);
/* INFO: map[0..len) is an encoded msgpack map, copied as it is.  DKV_EINVAL,
 * and nothing written, unless it is exactly one map that proto_decode()
 * would accept (see BODIES). */
int proto_encode_info(msgpack_sbuffer *sb, uint64_t id, const void *map, size_t len);
/* 0 iff p[0..len) is exactly one map an INFO may carry, else DKV_EPROTO
 * with the reason in err (errlen may be 0).  Allocates nothing. */
int proto_check_info(const void *p, size_t len, char *err, size_t errlen);
/* Any decoded message, with the encoder of its type (an ERROR's message is
 * cut at its first NUL, as proto_encode_error takes a C string; an ADMIN's
 * command and args are written whole, NULs included); DKV_EPROTO for an
 * unknown type. */
int proto_encode_msg(msgpack_sbuffer *sb, const proto_msg *m);

#endif /* DKV_PROTO_H */
