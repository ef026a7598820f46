#include "config.h"
/*
 * mpr.c -- the bounded msgpack reader of mpr.h.
 */

#include "error.h"
#include "mpr.h"

void mpr_init(mpr *r, const void *buf, size_t len, int bad)
{
	r->p = buf;
	r->end = buf;
	if (buf != NULL)
		r->end += len;   /* (NULL + 0 is undefined) */
	r->bad = bad;
}

/* A big-endian integer of w bytes (the caller checked they are there). */
static uint64_t be(const uint8_t *p, size_t w)
{
	uint64_t v = 0;

	for (size_t i = 0; i < w; i++)
		v = v << 8 | p[i];
	return v;
}

/* Consume a type byte plus a w-byte big-endian field; *v gets the field. */
static int fixed(mpr *r, size_t w, uint64_t *v)
{
	if (mpr_left(r) < 1 + w)
		return r->bad;
	*v = be(r->p + 1, w);
	r->p += 1 + w;
	return 0;
}

int mpr_peek(const mpr *r)
{
	return mpr_left(r) < 1 ? -1 : r->p[0];
}

bool mpr_nil(mpr *r)
{
	if (mpr_peek(r) != 0xc0)
		return false;
	r->p++;
	return true;
}

int mpr_uint(mpr *r, uint64_t *v)
{
	int t = mpr_peek(r);

	if (t < 0)
		return r->bad;
	if (t <= 0x7f) {
		*v = (uint64_t)t;
		r->p++;
		return 0;
	}
	switch (t) {
	case 0xcc: return fixed(r, 1, v);
	case 0xcd: return fixed(r, 2, v);
	case 0xce: return fixed(r, 4, v);
	case 0xcf: return fixed(r, 8, v);
	default: return r->bad;
	}
}

int mpr_int(mpr *r, int64_t *v)
{
	int t = mpr_peek(r);
	uint64_t u = 0;
	int rc;

	if (t < 0)
		return r->bad;
	if (t >= 0xe0) {
		*v = (int64_t)(int8_t)(uint8_t)t;
		r->p++;
		return 0;
	}
	switch (t) {
	case 0xd0:
		if ((rc = fixed(r, 1, &u)) == 0)
			*v = (int8_t)(uint8_t)u;
		return rc;
	case 0xd1:
		if ((rc = fixed(r, 2, &u)) == 0)
			*v = (int16_t)(uint16_t)u;
		return rc;
	case 0xd2:
		if ((rc = fixed(r, 4, &u)) == 0)
			*v = (int32_t)(uint32_t)u;
		return rc;
	case 0xd3:
		if ((rc = fixed(r, 8, &u)) == 0)
			*v = (int64_t)u;
		return rc;
	default:
		if ((rc = mpr_uint(r, &u)) != 0)
			return rc;
		if (u > INT64_MAX)
			return r->bad;
		*v = (int64_t)u;
		return 0;
	}
}

int mpr_bool(mpr *r, bool *v)
{
	int t = mpr_peek(r);

	if (t != 0xc2 && t != 0xc3)
		return r->bad;
	*v = t == 0xc3;
	r->p++;
	return 0;
}

int mpr_array(mpr *r, uint64_t *n)
{
	int t = mpr_peek(r);

	if (t < 0)
		return r->bad;
	if ((t & 0xf0) == 0x90) {
		*n = (uint64_t)t & 0x0f;
		r->p++;
		return 0;
	}
	switch (t) {
	case 0xdc: return fixed(r, 2, n);
	case 0xdd: return fixed(r, 4, n);
	default: return r->bad;
	}
}

int mpr_map(mpr *r, uint64_t *n)
{
	int t = mpr_peek(r);

	if (t < 0)
		return r->bad;
	if ((t & 0xf0) == 0x80) {
		*n = (uint64_t)t & 0x0f;
		r->p++;
		return 0;
	}
	switch (t) {
	case 0xde: return fixed(r, 2, n);
	case 0xdf: return fixed(r, 4, n);
	default: return r->bad;
	}
}

/* Consume a declared length n of bytes that must be there, then max. */
static int body(mpr *r, uint64_t n, size_t max, const uint8_t **val, size_t *len)
{
	if (n > mpr_left(r))
		return r->bad;
	if (n > max)
		return DKV_ETOOBIG;
	*val = r->p;
	*len = (size_t)n;
	r->p += n;
	return 0;
}

int mpr_bin(mpr *r, size_t max, const uint8_t **val, size_t *len)
{
	uint64_t n = 0;
	int rc;

	switch (mpr_peek(r)) {
	case 0xc4: rc = fixed(r, 1, &n); break;
	case 0xc5: rc = fixed(r, 2, &n); break;
	case 0xc6: rc = fixed(r, 4, &n); break;
	default: return r->bad;
	}
	return rc != 0 ? rc : body(r, n, max, val, len);
}

int mpr_bin_or_nil(mpr *r, size_t max, bool *nil, const uint8_t **val, size_t *len)
{
	*nil = mpr_nil(r);
	if (*nil) {
		*val = NULL;
		*len = 0;
		return 0;
	}
	return mpr_bin(r, max, val, len);
}

int mpr_str(mpr *r, size_t max, const char **val, size_t *len)
{
	int t = mpr_peek(r);
	uint64_t n = 0;
	int rc;

	if (t < 0)
		return r->bad;
	if ((t & 0xe0) == 0xa0) {
		n = (uint64_t)t & 0x1f;
		r->p++;
		rc = 0;
	} else {
		switch (t) {
		case 0xd9: rc = fixed(r, 1, &n); break;
		case 0xda: rc = fixed(r, 2, &n); break;
		case 0xdb: rc = fixed(r, 4, &n); break;
		default: return r->bad;
		}
	}
	if (rc != 0)
		return rc;
	return body(r, n, max, (const uint8_t **)val, len);
}

/* Skip n bytes that must be there. */
static int skip_bytes(mpr *r, uint64_t n)
{
	if (n > mpr_left(r))
		return r->bad;
	r->p += n;
	return 0;
}

int mpr_skip(mpr *r, unsigned max_depth)
{
	int t = mpr_peek(r);
	uint64_t n = 0;
	int rc;

	if (t < 0)
		return r->bad;
	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
		r->p++;
		return 0;
	}
	if ((t & 0xe0) == 0xa0)
		return skip_bytes(r, 1 + ((uint64_t)t & 0x1f));
	if ((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd ||
	    (t & 0xf0) == 0x80 || t == 0xde || t == 0xdf) {
		bool map = (t & 0xf0) == 0x80 || t == 0xde || t == 0xdf;

		rc = map ? mpr_map(r, &n) : mpr_array(r, &n);
		if (rc != 0)
			return rc;
		if (max_depth == 0)
			return r->bad;
		if (n > mpr_left(r))
			return r->bad;
		if (map)
			n *= 2;
		for (uint64_t i = 0; i < n; i++)
			if ((rc = mpr_skip(r, max_depth - 1)) != 0)
				return rc;
		return 0;
	}
	switch (t) {
	case 0xcc: case 0xd0: return skip_bytes(r, 2);
	case 0xcd: case 0xd1: return skip_bytes(r, 3);
	case 0xce: case 0xd2: case 0xca: return skip_bytes(r, 5);
	case 0xcf: case 0xd3: case 0xcb: return skip_bytes(r, 9);
	case 0xd4: return skip_bytes(r, 3);
	case 0xd5: return skip_bytes(r, 4);
	case 0xd6: return skip_bytes(r, 6);
	case 0xd7: return skip_bytes(r, 10);
	case 0xd8: return skip_bytes(r, 18);
	case 0xc4: case 0xd9: rc = fixed(r, 1, &n); break;
	case 0xc5: case 0xda: rc = fixed(r, 2, &n); break;
	case 0xc6: case 0xdb: rc = fixed(r, 4, &n); break;
	case 0xc7: rc = fixed(r, 1, &n); n += 1; break;
	case 0xc8: rc = fixed(r, 2, &n); n += 1; break;
	case 0xc9: rc = fixed(r, 4, &n); n += 1; break;
	default: return r->bad;   /* 0xc1: never used */
	}
	return rc != 0 ? rc : skip_bytes(r, n);
}
