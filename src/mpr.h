/*
 * mpr.h -- a bounded reader for msgpack from untrusted bytes.
 *
 * msgpack-c's unpacker trusts declared container lengths: a 5-byte input
 * (0xdd ff ff ff ff) asks it for 4 G array slots before it has seen one
 * element.  This reader allocates nothing.  Every function checks the
 * bytes left before it reads, hands back strings and bins as pointers into
 * the input, and fails with the cursor's `bad` code on anything malformed;
 * callers compare a declared count with mpr_left() (each element takes at
 * least one byte) before they allocate for it.
 *
 * Only the encodings our formats use are accepted where a type is asked
 * for: a reader of an unsigned integer accepts every unsigned encoding
 * (positive fixint, uint 8/16/32/64) and nothing else.
 */
#ifndef DKV_MPR_H
#define DKV_MPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mpr {
	const uint8_t *p;    /* next byte */
	const uint8_t *end;  /* one past the last byte */
	int bad;             /* error returned for malformed input */
} mpr;

/* A cursor over len bytes at buf (buf may be NULL when len is 0). */
void mpr_init(mpr *r, const void *buf, size_t len, int bad);

static inline size_t mpr_left(const mpr *r)
{
	return (size_t)(r->end - r->p);
}

/* The type byte of the next value, or -1 at the end. */
int mpr_peek(const mpr *r);
/* True (and consumed) iff the next value is nil. */
bool mpr_nil(mpr *r);
int mpr_uint(mpr *r, uint64_t *v);
/* Any integer that fits int64_t (negative fixint, int 8..64, or uint). */
int mpr_int(mpr *r, int64_t *v);
int mpr_bool(mpr *r, bool *v);
int mpr_array(mpr *r, uint64_t *n);
int mpr_map(mpr *r, uint64_t *n);
/* A bin 8/16/32 of at most max bytes: *val borrows from the input.  Past
 * max: DKV_ETOOBIG (checked after the bytes are known to be there). */
int mpr_bin(mpr *r, size_t max, const uint8_t **val, size_t *len);
/* A bin as above, or nil (*nil true, *val NULL, *len 0). */
int mpr_bin_or_nil(mpr *r, size_t max, bool *nil, const uint8_t **val, size_t *len);
/* A str (fixstr, str 8/16/32) of at most max bytes. */
int mpr_str(mpr *r, size_t max, const char **val, size_t *len);
/* Skip one value of any type, nested at most max_depth deep.  It recurses
 * once per level: keep max_depth small (a few dozen). */
int mpr_skip(mpr *r, unsigned max_depth);

#endif /* DKV_MPR_H */
