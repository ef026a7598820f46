/*
 * httpcodec.h -- the decoding the node's HTTP face needs, apart from any
 * server: percent-decoding of a URL path segment or query value, the query
 * string of /kv/{key} into proto_opts, and base64 for the causal context
 * that travels in the X-Dynkv-Context header.
 *
 * Pure functions over caller-supplied buffers: no allocation, no I/O, no
 * libevent, no state.  Any thread may call any of them at any time.  Every
 * input is a pointer and a length, need not be NUL-terminated, and may hold
 * any byte, NUL included: these are the bytes a client sent, and no input
 * is a reason to crash or to read outside [s, s + len).
 *
 * ERRORS
 *   0 on success; DKV_EINVAL for malformed input; DKV_ETOOBIG for output
 *   that does not fit the caller's buffer.  Where a function takes an err
 *   buffer it leaves there, NUL-terminated and cut to errlen, a message a
 *   client can act on (the HTTP face sends it in the 400's body); err may
 *   be NULL when errlen is 0.  On an error the output buffer's contents are
 *   unspecified, *outlen is 0 and a proto_opts is unchanged.
 *
 * PERCENT-DECODING (RFC 3986 section 2.1)
 *   %XX, X a hex digit of either case, is the byte 0xXX -- any byte: %00,
 *   %2F (a '/' inside a key, where a literal '/' would end the segment),
 *   %25.  Every other byte is itself, with one exception: in a query value
 *   (plus_is_space) '+' is a space, as application/x-www-form-urlencoded
 *   writes it; in a path '+' is a '+'.  A '%' not followed by two hex
 *   digits is an error, "bad percent escape at byte N", N counting from 0.
 *   Decoding never lengthens: the output is at most len bytes, exactly len
 *   minus two per escape.
 *
 * THE QUERY OF /kv/{key}
 *   name=value pairs joined by '&'; names and values are percent-decoded
 *   (plus_is_space) before they are read, so "%72=%6Fne" is "r=one".
 *     r, w, pr, pw   a number 1..DKV_CONFIG_N_MAX, or one, quorum, all
 *                    (DKV_QUORUM_ONE, _QUORUM, _ALL), or default (0: the
 *                    node's setting)
 *     timeout        milliseconds 1..HTTP_TIMEOUT_MAX_MS, a plain decimal
 *                    number (no unit)
 *   Numbers are decimal digits only: no sign, no blank, no leading zero
 *   ("01" is refused, not read as 1: one spelling per value, and no reader
 *   wonders about octal).  Names and words are lower case only ("R=1" is an
 *   unknown parameter, "r=ONE" a bad value), as the opts keys of the binary
 *   protocol are.  Empty segments ("r=1&&w=2", a trailing '&') are
 *   ignored.  Refused, with a message that names the parameter and says
 *   what it allows: an unknown name, a name given twice, a name without
 *   '=', an empty value, a value out of range.  A query longer than
 *   HTTP_QUERY_MAX bytes or of more than HTTP_QUERY_PARAMS_MAX non-empty
 *   segments is refused whole ("query too long") before any is read: the
 *   five names allow five parameters, so these bounds only cut short a
 *   client that sends junk.
 *
 * BASE64 (RFC 4648 section 4: the standard alphabet, '=' padding)
 *   The decoder is strict, so that every context has exactly one spelling
 *   and decoding then encoding gives back the header's bytes: the length is
 *   a multiple of 4; '=' only as the last one or two bytes; no byte outside
 *   the alphabet (no blank, no newline, no URL-safe '-' or '_'); the unused
 *   low bits of the last symbol before padding are zero.  Blanks around a
 *   header value are the caller's to strip.  The empty string is 0 bytes.
 */
#ifndef DKV_HTTPCODEC_H
#define DKV_HTTPCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Longest query string http_kv_query reads, in bytes: a real one is a few
 * dozen ("r=quorum&w=all&pr=2&pw=2&timeout=3600000" is 39). */
#define HTTP_QUERY_MAX        4096u
/* Most non-empty '&'-separated segments in a query. */
#define HTTP_QUERY_PARAMS_MAX 16u
/* Largest timeout a query may ask for: an hour, the bound the binary
 * protocol puts on opts "timeout_ms". */
#define HTTP_TIMEOUT_MAX_MS   3600000u

/* Characters base64 makes of n bytes (without the NUL): 4 per 3, padded. */
#define HTTP_B64_LEN(n)         ((((size_t)(n) + 2) / 3) * 4)
/* Most bytes len characters of base64 decode to. */
#define HTTP_B64_DECODED_MAX(len) ((size_t)(len) / 4 * 3)

/*
 * Percent-decode s[0..len) -- one path segment, or one query name or value
 * with plus_is_space -- into out[0..cap), its length in *outlen.  No NUL is
 * added (the output may hold NULs).  out may be s itself (decoding in
 * place: the output never overtakes the input); s may be NULL iff len is 0.
 * DKV_EINVAL "bad percent escape at byte N"; DKV_ETOOBIG when the output
 * is longer than cap (cap >= len always suffices).
 */
int http_pct_decode(const char *s, size_t len, bool plus_is_space, uint8_t *out, size_t cap,
		    size_t *outlen, char *err, size_t errlen);

/*
 * A quorum as a query spells it, s[0..len): "1".."16" (DKV_CONFIG_N_MAX),
 * "one", "quorum", "all" (DKV_QUORUM_*) or "default" (0), exactly, in lower
 * case, without leading zeros.  0 with *q set, or DKV_EINVAL (*q unchanged).
 */
int http_quorum_word(const char *s, size_t len, int32_t *q);

/*
 * Parse the query string of /kv/{key} (the bytes after '?', without the
 * '?'; query may be NULL iff len is 0) into o->r, w, pr, pw, timeout_ms and
 * ttl_ms (the parameter ttl is in seconds, 1 to 100 years).
 * A field whose parameter the query does not name keeps its value, and so
 * do o->replace and o->siblings: zero *o first for "all defaults".  0, or
 * DKV_EINVAL with the reason in err and *o unchanged.
 */
int http_kv_query(const char *query, size_t len, proto_opts *o, char *err, size_t errlen);

/*
 * Base64 of in[0..len) into out, which needs HTTP_B64_LEN(len) + 1 bytes:
 * the characters and a NUL.  Returns HTTP_B64_LEN(len), the length without
 * the NUL.  in may be NULL iff len is 0 (out is then "").
 */
size_t http_b64_encode(const void *in, size_t len, char *out);

/*
 * Decode the base64 s[0..len) strictly (see BASE64 above) into out[0..cap),
 * its length in *outlen.  s may be NULL iff len is 0.  0; DKV_EINVAL for
 * anything but canonical padded base64; DKV_ETOOBIG when the bytes do not
 * fit cap (HTTP_B64_DECODED_MAX(len) always suffices).
 */
int http_b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, size_t *outlen);

#endif /* DKV_HTTPCODEC_H */
