/*
 * respcodec.h -- the Redis protocol (RESP2 and RESP3) as bytes, apart from
 * any server: requests parsed out of a connection's input buffer, replies
 * written into a growable output buffer.  The Redis face (src/resp.c)
 * owns the sockets and the commands; this module only knows the
 * wire, so that it is tested and fuzzed alone.
 *
 * No libevent, no I/O, no state between calls.  The parser allocates
 * nothing; the encoder's only allocation is its output buffer.  Any thread
 * may call any function on its own buffers.  Every input is a pointer and a
 * length, need not be NUL-terminated, and may hold any byte, NUL included:
 * these are the bytes a client sent, and no input is a reason to crash, to
 * read outside [buf, buf + len) or to wait for more than the limits allow.
 *
 * REQUESTS (what redis-cli, every client library and telnet send)
 *   The first byte decides the form, as in Redis:
 *   - '*': multibulk.  "*<n>\r\n", then n arguments "$<len>\r\n<len
 *     bytes>\r\n".  Numbers are resp_ll's strict decimals.  n <= 0 is an
 *     empty command.  The payload is any bytes, CR, LF and NUL included.
 *   - anything else: inline.  One line up to '\n' (a '\r' just before it
 *     is dropped), split into arguments as Redis's sdssplitargs does:
 *     blanks (space, \t, \r, \v, \f) separate; a word is taken literally
 *     until a '"' or '\'' in it opens a quoted part, which ends the
 *     argument when it closes and must then be followed by a blank or the
 *     end of the line.  Inside "...": \n \r \t \b \a \\ \" and \xHH (two
 *     hex digits of either case) are escapes, and any other \c is c.
 *     Inside '...': only \' is an escape.  A blank or empty line is an
 *     empty command.
 *   An empty command (argc 0) is consumed like any other; Redis ignores
 *   it, and so does the caller.
 *
 * LIMITS (resp_limits, the caller's; the Redis face sets them)
 *   Each bounds what one request can make us hold or wait for: argv has
 *   max_args entries; a multibulk argument is at most max_bulk bytes (its
 *   length is refused as soon as its "$<len>\r\n" line is in, before any
 *   payload: a client that announces 100 GB gets an error, not a wait);
 *   an inline line, and every "*" and "$" line, is at most max_inline
 *   bytes before its end.  An inline argument is never longer than its
 *   line, so max_inline bounds it, not max_bulk.  Redis's own are 512 MB
 *   (proto-max-bulk-len) and 64 KiB (PROTO_INLINE_MAX_SIZE).
 *
 * ERRORS
 *   A malformed request is RESP_ERROR with Redis's reply text in err,
 *   without the leading '-' (the caller sends it with resp_error, then
 *   closes the connection: the stream is out of step).  The texts:
 *     ERR Protocol error: invalid multibulk length      n not a number, or > max_args
 *     ERR Protocol error: too big mbulk count string    no "\r" within max_inline
 *     ERR Protocol error: expected '$', got 'X'         X printed, or as \xNN
 *     ERR Protocol error: invalid bulk length           not a number, < 0, > max_bulk
 *     ERR Protocol error: too big bulk count string     no "\r" within max_inline
 *     ERR Protocol error: expected CRLF after the bulk string
 *     ERR Protocol error: too big inline request        no "\n" within max_inline
 *     ERR Protocol error: unbalanced quotes in request
 *     ERR Protocol error: too many arguments in inline request
 *   A "*" or "$" line whose '\r' is not followed by '\n' is an invalid
 *   length.  Stricter than Redis, which takes any two bytes after a bulk
 *   payload (and the byte after a line's '\r') on trust.
 *
 * REPLIES
 *   resp_out is a byte buffer that grows as replies are written, in RESP2
 *   or RESP3 as the connection's protocol (2 or 3, from HELLO) says; the
 *   RESP3 types have their RESP2 spelling (a map is a flat array of 2n
 *   elements, a boolean is :1 or :0, null is $-1 or *-1), as Redis writes
 *   them.  Simple strings and errors are one line: a '\r' or '\n' in their
 *   text is written as a space, as Redis does.  An allocation failure is
 *   sticky (resp_out.failed): later writes do nothing, so a reply is built
 *   without a check per element and checked once; the caller then drops
 *   the connection.
 */
#ifndef DKV_RESPCODEC_H
#define DKV_RESPCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest error text resp_error writes, in bytes (without '-' and CRLF);
 * a longer one is cut.  Redis's longest own errors are a few hundred. */
#define RESP_ERROR_MAX 4096u
/* Room err needs for any resp_parse message, NUL included. */
#define RESP_PARSE_ERR_MAX 64u

/* resp_parse's results. */
enum { RESP_OK = 0, RESP_MORE = 1, RESP_ERROR = -1 };

/* One argument of a request: len bytes at p, not NUL-terminated. */
typedef struct resp_arg {
	const uint8_t *p;   /* the bytes: borrowed from buf or scratch (see resp_parse) */
	size_t len;         /* their count; p may be anything when 0 */
} resp_arg;

/* What one request may make the parser hold or wait for (see LIMITS). */
typedef struct resp_limits {
	size_t max_args;    /* most arguments in one command (argv capacity) */
	size_t max_bulk;    /* longest bulk string argument */
	size_t max_inline;  /* longest inline request line, e.g. 64 KiB */
} resp_limits;

/*
 * Parse one request from buf[0..len) (buf may be NULL iff len is 0).
 *
 * RESP_OK: *argc arguments in argv[0..*argc), the request took the first
 *   *used bytes (> 0) of buf.  *argc may be 0: an empty inline line or a
 *   multibulk count <= 0, which Redis skips; the caller skips it too.
 * RESP_MORE: the request is not complete yet; nothing consumed (*used and
 *   *argc are 0).  *need is a lower bound (> len) of the bytes the whole
 *   request takes, so a caller may wait until it has that many.
 * RESP_ERROR: a protocol error; err holds Redis's text for it (see ERRORS),
 *   NUL-terminated and cut to errlen (RESP_PARSE_ERR_MAX is room for any);
 *   err may be NULL iff errlen is 0.  *used and *argc are 0.
 * need may be NULL; when not, it is 0 unless RESP_MORE.
 *
 * argv has lim->max_args entries (argv may be NULL iff that is 0).
 * scratch[0..scratchlen), scratchlen >= lim->max_inline, is where an inline
 * request's arguments are written unescaped.  The arguments of a multibulk
 * request point into buf, those of an inline request into scratch: they
 * are borrowed until buf changes or scratch is reused by the next call.
 */
int resp_parse(const uint8_t *buf, size_t len, const resp_limits *lim, resp_arg *argv,
	       size_t *argc, uint8_t *scratch, size_t scratchlen, size_t *used, size_t *need,
	       char *err, size_t errlen);

/*
 * Read p[0..len) as Redis's string2ll does: an optional '-', then decimal
 * digits with no leading zero ("0" itself is fine, "-0" is not), no '+',
 * no blank, within long long.  0 with *out set, or DKV_EINVAL (*out
 * unchanged).  p may be NULL iff len is 0 (which is DKV_EINVAL).
 */
int resp_ll(const uint8_t *p, size_t len, long long *out);

/* A growable reply buffer.  All zeros (resp_out_init) is an empty one. */
typedef struct resp_out {
	uint8_t *p;         /* the bytes written, len of cap; owned: resp_out_free */
	size_t len;         /* bytes written */
	size_t cap;         /* bytes allocated at p */
	bool failed;        /* true iff an allocation failed; later writes do nothing */
} resp_out;

/* An empty buffer, allocating nothing yet. */
void resp_out_init(resp_out *o);

/* Free the buffer's memory; *o is then empty, as after resp_out_init. */
void resp_out_free(resp_out *o);

/* Forget what was written (len = 0) and clear failed, keeping the memory
 * for the next replies. */
void resp_out_reset(resp_out *o);

/*
 * Make room for n more bytes, so that writes of up to n bytes do not
 * allocate.  0, or -ENOMEM (and failed set; also when n is past what a
 * size_t can add to len).  A failed buffer returns -ENOMEM at once.
 */
int resp_out_reserve(resp_out *o, size_t n);

/* "+s\r\n": a simple string (s NUL-terminated; '\r' and '\n' as spaces). */
void resp_simple(resp_out *o, const char *s);

/*
 * "-text\r\n": an error, text formatted from fmt.  By convention it starts
 * with an upper-case code ("ERR ...", "WRONGTYPE ..."), which the caller
 * writes.  '\r' and '\n' are written as spaces; text past RESP_ERROR_MAX
 * bytes is cut.
 */
void resp_error(resp_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ":v\r\n": an integer. */
void resp_int(resp_out *o, long long v);

/* "$len\r\n" len bytes "\r\n": a bulk string (p may be NULL iff len is 0). */
void resp_bulk(resp_out *o, const void *p, size_t len);

/* The null reply: "$-1\r\n" (proto 2, the null bulk string) or "_\r\n" (3). */
void resp_null(resp_out *o, int proto);

/* The null array: "*-1\r\n" (proto 2) or "_\r\n" (3). */
void resp_null_array(resp_out *o, int proto);

/* "*n\r\n": the head of an array; the caller writes its n elements. */
void resp_array(resp_out *o, size_t n);

/* The head of a map of n pairs: "%n\r\n" (proto 3) or "*<2n>\r\n" (2);
 * the caller writes n keys, each followed by its value. */
void resp_map(resp_out *o, size_t n, int proto);

/* The head of a set of n elements: "~n\r\n" (proto 3) or "*n\r\n" (2). */
void resp_set(resp_out *o, size_t n, int proto);

/* A boolean: "#t\r\n" / "#f\r\n" (proto 3), ":1\r\n" / ":0\r\n" (2). */
void resp_bool(resp_out *o, bool v, int proto);

/*
 * A verbatim string: "=<len+4>\r\n" fmt3 ":" len bytes "\r\n" (proto 3),
 * where fmt3 is the 3-character format ("txt", "mkd"); a bulk string of
 * the len bytes alone (2).  p may be NULL iff len is 0.
 */
void resp_verbatim(resp_out *o, const char *fmt3, const void *p, size_t len, int proto);

/* argv[0..argc) as a multibulk request, as a client sends it (for tests,
 * the fuzzer's round trip and a future proxy). */
void resp_request(resp_out *o, const resp_arg *argv, size_t argc);

/*
 * Redis's error for an unknown command argv[0] (argc >= 1):
 *   -ERR unknown command '<name>', with args beginning with: '<a1>' '<a2>' \r\n
 * the name cut to 128 bytes; then, while the args text is shorter than 128
 * bytes, the next argument as '<arg>' and a space, the argument cut to
 * what is left of the 128 (so the text ends up at most 131 bytes).  Any
 * byte of an argument is written as it is, but '\r' and '\n' as spaces.
 */
void resp_unknown_command(resp_out *o, const resp_arg *argv, size_t argc);

#endif /* DKV_RESPCODEC_H */
