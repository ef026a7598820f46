#include "config.h"
/*
 * test_record.c -- the on-disk encodings of src/bitcask/record.c: golden bytes
 * pinning the data-record, data-file header and hint-file layouts of
 * record.h; round trips at the size limits; every truncation and every
 * single-bit flip of valid images; the corruptions a parser must refuse; and
 * seeded random images fed to hint_validate() against a reference checker
 * written here from the format description.
 *
 * Inputs under test are copied into buffers of exactly their length so that
 * an overread is caught when built with -fsanitize=address.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crc32c.h"
#include "error.h"
#include "record.h"

/* --- helpers ----------------------------------------------------------- */

/* splitmix64: a seeded PRNG, so every run sees the same inputs. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

/* A heap copy of exactly len bytes (at least one byte allocated). */
static uint8_t *dup_exact(const void *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	cr_assert_not_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

/* A bitwise CRC-32C, independent of src/crc32c.c. */
static uint32_t ref_crc32c(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t c = 0xFFFFFFFFu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
	}
	return c ^ 0xFFFFFFFFu;
}

/* Decode buf[0..len) from an exact-size heap copy. */
static int decode_exact(const uint8_t *buf, size_t len, uint32_t max_rec, rec_view *v)
{
	uint8_t *copy = dup_exact(buf, len);
	int rc = rec_decode(copy, len, max_rec, v);

	free(copy);
	return rc;
}

static int hint_validate_exact(const uint8_t *buf, size_t len, hint_header *hdr)
{
	uint8_t *copy = dup_exact(buf, len);
	int rc = hint_validate(copy, len, hdr);

	free(copy);
	return rc;
}

/* Recompute both CRCs of a hint image after a test edits it. */
static void hint_fix_crcs(uint8_t *img, size_t len)
{
	put_u32(img + 24, crc32c(0, img + HINT_HDR_SIZE, len - HINT_HDR_SIZE));
	put_u32(img + 28, crc32c(0, img, 28));
}

TestSuite(record, .description = "on-disk record, data-file and hint encodings");

/* --- CRC anchors ----------------------------------------------------- */

Test(record, crc32c_check_value)
{
	cr_assert_eq(crc32c(0, "123456789", 9), 0xE3069283u);
	cr_assert_eq(ref_crc32c("123456789", 9), 0xE3069283u);
	cr_assert_eq(crc32c(0, "", 0), 0u);
}

/* --- golden bytes ---------------------------------------------------- */

/* put "key" = "value", timestamp 0x0102030405060708, laid out by hand from
 * record.h.  The CRC (bytes 4..26) is pinned as a literal too. */
static const uint8_t golden_put[27] = {
	0x5b, 0x54, 0x80, 0x6d,                         /* crc32c, LE */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* timestamp */
	0x00,                                           /* flags */
	0x03, 0x00,                                     /* key length */
	0x05, 0x00, 0x00, 0x00,                         /* value length */
	'k', 'e', 'y',
	'v', 'a', 'l', 'u', 'e',
};

/* tombstone for "key", timestamp 0x123456789abcdef0. */
static const uint8_t golden_tomb[22] = {
	0x01, 0x9f, 0x2b, 0x14,
	0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12,
	0x01,
	0x03, 0x00,
	0x00, 0x00, 0x00, 0x00,
	'k', 'e', 'y',
};

Test(record, golden_put_bytes)
{
	uint8_t out[64];

	memset(out, 0xAA, sizeof(out));
	cr_assert_eq(rec_size(3, 5), 27u);
	uint32_t n = rec_encode(out, UINT64_C(0x0102030405060708), 0, "key", 3, "value", 5);

	cr_assert_eq(n, 27u);
	cr_assert_arr_eq(out, golden_put, sizeof(golden_put));
	cr_assert_eq(out[27], 0xAA, "rec_encode wrote past the record");
	/* The checksum field is crc32c of bytes 4..end, little-endian. */
	cr_assert_eq(get_u32(golden_put), crc32c(0, golden_put + 4, 23));
	cr_assert_eq(get_u32(golden_put), ref_crc32c(golden_put + 4, 23));
	cr_assert_eq(get_u32(golden_put), 0x6d80545bu);

	rec_view v;
	cr_assert_eq(decode_exact(golden_put, sizeof(golden_put), 0, &v), 0);
	cr_assert_eq(v.timestamp, UINT64_C(0x0102030405060708));
	cr_assert_eq(v.flags, 0);
	cr_assert_eq(v.key_len, 3);
	cr_assert_eq(v.value_len, 5);
	cr_assert_eq(v.size, 27u);
}

Test(record, golden_tombstone_bytes)
{
	uint8_t out[32];

	memset(out, 0xAA, sizeof(out));
	uint32_t n = rec_encode(out, UINT64_C(0x123456789abcdef0), REC_FLAG_TOMBSTONE,
				"key", 3, NULL, 0);

	cr_assert_eq(n, 22u);
	cr_assert_arr_eq(out, golden_tomb, sizeof(golden_tomb));
	cr_assert_eq(out[22], 0xAA);
	cr_assert_eq(get_u32(golden_tomb), crc32c(0, golden_tomb + 4, 18));
	cr_assert_eq(get_u32(golden_tomb), 0x142b9f01u);

	rec_view v;
	cr_assert_eq(decode_exact(golden_tomb, sizeof(golden_tomb), 0, &v), 0);
	cr_assert_eq(v.flags, REC_FLAG_TOMBSTONE);
	cr_assert_eq(v.value_len, 0u);
	cr_assert_eq(v.size, 22u);
	cr_assert_eq(v.timestamp, UINT64_C(0x123456789abcdef0));
}

static const uint8_t golden_datafile_hdr[16] = {
	'D', 'K', 'V', 'D', 'A', 'T', 'A', '1',
	0x01, 0x00, 0x00, 0x00,
	0x8c, 0xce, 0xae, 0x66,
};

Test(record, golden_datafile_header)
{
	uint8_t out[20];

	memset(out, 0xAA, sizeof(out));
	datafile_header_encode(out);
	cr_assert_arr_eq(out, golden_datafile_hdr, 16);
	cr_assert_eq(out[16], 0xAA);
	cr_assert_eq(get_u32(golden_datafile_hdr + 12), crc32c(0, golden_datafile_hdr, 12));
}

/* Two entries: put "key" at 16 (27 bytes), tombstone "key" at 43 (22
 * bytes), describing a 65-byte data file. */
static const uint8_t golden_hint[76] = {
	/* header */
	'D', 'K', 'V', 'H', 'I', 'N', 'T', '1',
	0x01, 0x00, 0x00, 0x00,                         /* version */
	0x02, 0x00, 0x00, 0x00,                         /* count */
	0x41, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* data size 65 */
	0x94, 0xe7, 0x61, 0x77,                         /* crc of entries */
	0xf7, 0xc3, 0x6f, 0xc5,                         /* crc of bytes 0..27 */
	/* entry 1 */
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
	0x10, 0x00, 0x00, 0x00,
	0x1b, 0x00, 0x00, 0x00,
	0x00,
	0x03, 0x00,
	'k', 'e', 'y',
	/* entry 2 */
	0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12,
	0x2b, 0x00, 0x00, 0x00,
	0x16, 0x00, 0x00, 0x00,
	0x01,
	0x03, 0x00,
	'k', 'e', 'y',
};

Test(record, golden_hint_bytes)
{
	uint8_t out[96];

	memset(out, 0xAA, sizeof(out));
	cr_assert_eq(hint_entry_size(3), 22u);
	uint32_t n1 = hint_entry_encode(out + 32, UINT64_C(0x0102030405060708), 16, 27, 0, "key", 3);
	uint32_t n2 = hint_entry_encode(out + 32 + n1, UINT64_C(0x123456789abcdef0), 43, 22,
					REC_FLAG_TOMBSTONE, "key", 3);
	cr_assert_eq(n1, 22u);
	cr_assert_eq(n2, 22u);
	uint32_t ecrc = crc32c(0, out + 32, n1 + n2);
	cr_assert_eq(ecrc, 0x7761e794u);
	hint_header_encode(out, 2, 65, ecrc);
	cr_assert_arr_eq(out, golden_hint, sizeof(golden_hint));
	cr_assert_eq(out[sizeof(golden_hint)], 0xAA);
	cr_assert_eq(get_u32(golden_hint + 28), ref_crc32c(golden_hint, 28));

	hint_header h;
	cr_assert_eq(hint_validate_exact(golden_hint, sizeof(golden_hint), &h), 0);
	cr_assert_eq(h.version, 1u);
	cr_assert_eq(h.count, 2u);
	cr_assert_eq(h.data_size, 65u);
	cr_assert_eq(h.entries_crc, 0x7761e794u);
}

/* The golden hint describes the golden records: the data file
 * header + golden_put + golden_tomb is 65 bytes and each entry matches its
 * record. */
Test(record, golden_hint_matches_records)
{
	uint8_t data[65];

	memcpy(data, golden_datafile_hdr, 16);
	memcpy(data + 16, golden_put, 27);
	memcpy(data + 43, golden_tomb, 22);
	cr_assert_eq(datafile_header_check(data, sizeof(data)), 0);

	hint_header h;
	cr_assert_eq(hint_header_decode(golden_hint, sizeof(golden_hint), &h), 0);
	size_t pos = HINT_HDR_SIZE;
	for (uint32_t i = 0; i < h.count; i++) {
		hint_entry e;
		int n = hint_entry_decode(golden_hint + pos, sizeof(golden_hint) - pos, &e);
		cr_assert_eq(n, 22);
		rec_view v;
		cr_assert_eq(rec_decode(data + e.offset, sizeof(data) - e.offset, 0, &v), 0);
		cr_assert_eq(v.size, e.size);
		cr_assert_eq(v.timestamp, e.timestamp);
		cr_assert_eq(v.flags, e.flags);
		cr_assert_eq(v.key_len, e.key_len);
		cr_assert_arr_eq(v.key, e.key, e.key_len);
		pos += (size_t)n;
	}
	cr_assert_eq(pos, sizeof(golden_hint));
}

/* --- rec_size -------------------------------------------------------- */

Test(record, rec_size_limits)
{
	cr_assert_eq(rec_size(0, 0), REC_HDR_SIZE);
	cr_assert_eq(rec_size(REC_MAX_KEY, 0), REC_HDR_SIZE + REC_MAX_KEY);
	cr_assert_eq(rec_size(REC_MAX_KEY + 1, 0), 0u);
	cr_assert_eq(rec_size(0, UINT32_MAX - REC_HDR_SIZE), UINT32_MAX);
	cr_assert_eq(rec_size(0, (size_t)UINT32_MAX - REC_HDR_SIZE + 1), 0u);
	cr_assert_eq(rec_size(REC_MAX_KEY, UINT32_MAX - REC_HDR_SIZE - REC_MAX_KEY), UINT32_MAX);
	cr_assert_eq(rec_size(REC_MAX_KEY, UINT32_MAX - REC_HDR_SIZE - REC_MAX_KEY + 1), 0u);
	cr_assert_eq(rec_size(SIZE_MAX, 0), 0u);
}

/* A value length near SIZE_MAX must not wrap the 64-bit sum
 * 19 + key_len + value_len into a small "encodable" size: rec_size(0,
 * SIZE_MAX) returned 18, less than a record header. */
Test(record, rec_size_no_wrap_near_size_max)
{
	cr_expect_eq(rec_size(0, SIZE_MAX), 0u, "rec_size(0, SIZE_MAX) = %u", rec_size(0, SIZE_MAX));
	cr_expect_eq(rec_size(0, SIZE_MAX - 5), 0u, "rec_size(0, SIZE_MAX - 5) = %u",
		     rec_size(0, SIZE_MAX - 5));
	cr_expect_eq(rec_size(REC_MAX_KEY, SIZE_MAX - REC_MAX_KEY), 0u, "= %u",
		     rec_size(REC_MAX_KEY, SIZE_MAX - REC_MAX_KEY));
	cr_expect_eq(rec_size(0, SIZE_MAX - REC_HDR_SIZE + 1), 0u, "= %u",
		     rec_size(0, SIZE_MAX - REC_HDR_SIZE + 1));
}

/* --- round trips ----------------------------------------------------- */

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = rng_next(&s);
		for (size_t j = 0; j < 8 && i + j < n; j++)
			p[i + j] = (uint8_t)(r >> (8 * j));
	}
}

static void round_trip(size_t klen, size_t vlen, uint8_t flags, uint64_t ts)
{
	uint8_t *key = malloc(klen ? klen : 1), *val = malloc(vlen ? vlen : 1);

	cr_assert(key && val);
	fill_pattern(key, klen, klen * 31 + 1);
	fill_pattern(val, vlen, vlen * 17 + 2);

	uint32_t size = rec_size(klen, vlen);
	cr_assert_eq(size, REC_HDR_SIZE + klen + vlen);
	/* Room for a second copy after it: decode must consume exactly size. */
	uint8_t *buf = malloc((size_t)size * 2);
	cr_assert_not_null(buf);
	cr_assert_eq(rec_encode(buf, ts, flags, key, (uint16_t)klen, val, (uint32_t)vlen), size);
	memcpy(buf + size, buf, size);

	for (int pass = 0; pass < 3; pass++) {
		rec_view v;
		const uint8_t *base = pass == 1 ? buf + size : buf;
		size_t avail = pass == 0 ? size : pass == 1 ? size : (size_t)size * 2;
		memset(&v, 0, sizeof(v));
		int rc = rec_decode(base, avail, pass == 0 ? size : 0, &v);
		cr_assert_eq(rc, 0, "klen %zu vlen %zu flags %u pass %d: rc %d",
			     klen, vlen, flags, pass, rc);
		cr_assert_eq(v.size, size);
		cr_assert_eq(v.timestamp, ts);
		cr_assert_eq(v.flags, flags);
		cr_assert_eq(v.key_len, klen);
		cr_assert_eq(v.value_len, vlen);
		cr_assert_eq(v.key, base + REC_HDR_SIZE);
		cr_assert_eq(v.value, base + REC_HDR_SIZE + klen);
		if (klen)
			cr_assert_eq(memcmp(v.key, key, klen), 0);
		if (vlen)
			cr_assert_eq(memcmp(v.value, val, vlen), 0);
	}
	/* The header fields are where record.h says. */
	cr_assert_eq(get_u64(buf + 4), ts);
	cr_assert_eq(buf[12], flags);
	cr_assert_eq(get_u16(buf + 13), klen);
	cr_assert_eq(get_u32(buf + 15), vlen);
	cr_assert_eq(get_u32(buf), crc32c(0, buf + 4, size - 4));
	free(buf);
	free(key);
	free(val);
}

Test(record, round_trip_puts)
{
	static const size_t klens[] = { 0, 1, 2, 255, 256, 65534, 65535 };
	static const size_t vlens[] = { 0, 1, 4096, 1u << 20 };

	for (size_t i = 0; i < sizeof(klens) / sizeof(klens[0]); i++)
		for (size_t j = 0; j < sizeof(vlens) / sizeof(vlens[0]); j++)
			round_trip(klens[i], vlens[j], 0, UINT64_C(1700000000000000) + i * 10 + j);
}

Test(record, round_trip_tombstones)
{
	static const size_t klens[] = { 0, 1, 2, 1000, 65535 };

	for (size_t i = 0; i < sizeof(klens) / sizeof(klens[0]); i++)
		round_trip(klens[i], 0, REC_FLAG_TOMBSTONE, UINT64_MAX - i);
}

Test(record, round_trip_timestamps)
{
	static const uint64_t ts[] = { 0, 1, UINT64_C(0x8000000000000000), UINT64_MAX };

	for (size_t i = 0; i < 4; i++)
		round_trip(5, 7, 0, ts[i]);
}

/* A stream of records back to back parses record by record. */
Test(record, stream_of_records)
{
	uint64_t s = 42;
	size_t cap = 1 << 20, len = 0;
	uint8_t *buf = malloc(cap);
	uint8_t key[300], val[700];
	size_t n = 0;

	cr_assert_not_null(buf);
	while (1) {
		uint16_t kl = (uint16_t)rng_below(&s, sizeof(key));
		uint32_t vl = rng_below(&s, sizeof(val));
		uint8_t fl = rng_below(&s, 4) == 0 ? REC_FLAG_TOMBSTONE : 0;
		if (fl)
			vl = 0;
		if (len + rec_size(kl, vl) > cap)
			break;
		fill_pattern(key, kl, n);
		fill_pattern(val, vl, n + 1000000);
		len += rec_encode(buf + len, n, fl, key, kl, val, vl);
		n++;
	}
	size_t pos = 0, m = 0;
	while (pos < len) {
		rec_view v;
		cr_assert_eq(rec_decode(buf + pos, len - pos, 0, &v), 0, "record %zu", m);
		cr_assert_eq(v.timestamp, m);
		pos += v.size;
		m++;
	}
	cr_assert_eq(pos, len);
	cr_assert_eq(m, n);
	free(buf);
}

/* --- truncation ------------------------------------------------------ */

static void check_all_truncations(const uint8_t *rec, uint32_t size)
{
	for (size_t len = 0; len < size; len++) {
		rec_view v;
		int rc = decode_exact(rec, len, 0, &v);
		cr_assert_eq(rc, -EAGAIN, "size %u truncated to %zu: rc %d", size, len, rc);
		rc = decode_exact(rec, len, size, &v);
		cr_assert_eq(rc, -EAGAIN, "size %u truncated to %zu (max_rec): rc %d", size, len, rc);
	}
	rec_view v;
	cr_assert_eq(decode_exact(rec, size, 0, &v), 0);
}

Test(record, truncation_every_length)
{
	cr_assert_eq(decode_exact(NULL, 0, 0, &(rec_view){ 0 }), -EAGAIN);
	check_all_truncations(golden_put, sizeof(golden_put));
	check_all_truncations(golden_tomb, sizeof(golden_tomb));

	uint8_t buf[64];
	uint32_t n = rec_encode(buf, 7, 0, NULL, 0, NULL, 0);
	cr_assert_eq(n, REC_HDR_SIZE);
	check_all_truncations(buf, n);
	n = rec_encode(buf, 7, 0, "k", 1, "0123456789abcdefghij", 20);
	check_all_truncations(buf, n);
}

/* A 65535-byte key and 1 MiB value: every truncation (no copy here: the
 * parser must decide on the header alone before reading the body). */
Test(record, truncation_every_length_large)
{
	size_t klen = 65535, vlen = 1u << 20;
	uint32_t size = rec_size(klen, vlen);
	uint8_t *buf = malloc(size);
	uint8_t *key = malloc(klen), *val = malloc(vlen);

	cr_assert(buf && key && val);
	fill_pattern(key, klen, 1);
	fill_pattern(val, vlen, 2);
	cr_assert_eq(rec_encode(buf, 99, 0, key, (uint16_t)klen, val, (uint32_t)vlen), size);
	for (size_t len = 0; len < size; len++) {
		rec_view v;
		int rc = rec_decode(buf, len, 0, &v);
		if (rc != -EAGAIN)
			cr_assert_fail("truncated to %zu of %u: rc %d", len, size, rc);
	}
	/* The last few lengths from an exact-size copy too. */
	for (size_t len = size - 4; len < size; len++) {
		rec_view v;
		cr_assert_eq(decode_exact(buf, len, 0, &v), -EAGAIN);
	}
	rec_view v;
	cr_assert_eq(rec_decode(buf, size, 0, &v), 0);
	free(buf);
	free(key);
	free(val);
}

/* --- bit flips ------------------------------------------------------- */

/* Flip every bit of rec (size bytes); each must give DKV_ECORRUPT or
 * -EAGAIN, never 0, both with exactly size bytes available and with slack
 * after the record (so a grown length reaches the checksum). */
static void check_all_bit_flips(const uint8_t *rec, uint32_t size)
{
	size_t cap = (size_t)size + 256;
	uint8_t *img = malloc(cap);

	cr_assert_not_null(img);
	for (size_t bit = 0; bit < (size_t)size * 8; bit++) {
		for (int slack = 0; slack < 2; slack++) {
			size_t avail = slack ? cap : size;
			memcpy(img, rec, size);
			memset(img + size, 0, cap - size);
			img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rec_view v;
			int rc = decode_exact(img, avail, 0, &v);
			cr_assert(rc == DKV_ECORRUPT || rc == -EAGAIN,
				  "flip of bit %zu (byte %zu) of a %u-byte record, avail %zu: rc %d",
				  bit, bit / 8, size, avail, rc);
			/* A flip inside the fixed header fields is corruption
			 * whenever the length fields are untouched. */
			if (bit / 8 < 13 && slack)
				cr_assert_eq(rc, DKV_ECORRUPT, "bit %zu", bit);
		}
	}
	free(img);
}

Test(record, every_bit_flip)
{
	uint8_t buf[64];
	/* 19 + 9 + 12 = 40 bytes */
	uint32_t n = rec_encode(buf, UINT64_C(1712345678901234), 0, "hello-key", 9, "some value!!", 12);

	cr_assert_eq(n, 40u);
	check_all_bit_flips(buf, n);
	check_all_bit_flips(golden_put, sizeof(golden_put));
	check_all_bit_flips(golden_tomb, sizeof(golden_tomb));
	n = rec_encode(buf, 0, 0, NULL, 0, NULL, 0);
	check_all_bit_flips(buf, n);
}

/* Every single-byte substitution (all 255 other values at every position)
 * of the 40-byte record is refused as well. */
Test(record, every_byte_substitution)
{
	uint8_t rec[40], img[40 + 64];
	uint32_t n = rec_encode(rec, UINT64_C(1712345678901234), 0, "hello-key", 9, "some value!!", 12);

	cr_assert_eq(n, sizeof(rec));
	for (size_t i = 0; i < n; i++) {
		for (unsigned x = 1; x < 256; x++) {
			memset(img, 0, sizeof(img));
			memcpy(img, rec, n);
			img[i] ^= (uint8_t)x;
			rec_view v;
			int rc = rec_decode(img, sizeof(img), 0, &v);
			cr_assert(rc == DKV_ECORRUPT || rc == -EAGAIN,
				  "byte %zu ^ 0x%02x: rc %d", i, x, rc);
		}
	}
}

/* --- semantic corruptions -------------------------------------------- */

Test(record, unknown_flag_bits_rejected)
{
	uint8_t buf[64];

	for (unsigned bit = 1; bit < 8; bit++) {
		for (unsigned tomb = 0; tomb < 2; tomb++) {
			uint8_t flags = (uint8_t)((1u << bit) | tomb);
			/* rec_encode writes a correct checksum, so only the
			 * flags can be the reason. */
			uint32_t n = rec_encode(buf, 5, flags, "ab", 2, NULL, 0);
			rec_view v;
			cr_assert_eq(decode_exact(buf, n, 0, &v), DKV_ECORRUPT,
				     "flags 0x%02x accepted", flags);
			n = rec_encode(buf, 5, flags, "ab", 2, "v", tomb ? 0 : 1);
			cr_assert_eq(decode_exact(buf, n, 0, &v), DKV_ECORRUPT,
				     "flags 0x%02x accepted", flags);
		}
	}
	uint32_t n = rec_encode(buf, 5, 0xFF, "ab", 2, NULL, 0);
	rec_view v;
	cr_assert_eq(decode_exact(buf, n, 0, &v), DKV_ECORRUPT);
}

Test(record, tombstone_with_value_rejected)
{
	uint8_t buf[64];
	rec_view v;
	static const uint32_t vlens[] = { 1, 2, 20 };

	for (size_t i = 0; i < 3; i++) {
		uint32_t n = rec_encode(buf, 5, REC_FLAG_TOMBSTONE, "key", 3,
					"01234567890123456789", vlens[i]);
		cr_assert_eq(decode_exact(buf, n, 0, &v), DKV_ECORRUPT, "vlen %u", vlens[i]);
	}
	/* A tombstone whose header claims a huge value is corrupt even
	 * though the body is not there: no writer produces it. */
	uint32_t n = rec_encode(buf, 5, REC_FLAG_TOMBSTONE, "key", 3, NULL, 0);
	put_u32(buf + 15, 0x10000000u);
	put_u32(buf, crc32c(0, buf + 4, n - 4));
	cr_assert_eq(decode_exact(buf, n, 0, &v), DKV_ECORRUPT);
}

Test(record, max_rec_bound)
{
	uint8_t buf[128];
	rec_view v;
	uint32_t n = rec_encode(buf, 1, 0, "key", 3, "a value of some length", 22);

	cr_assert_eq(n, 44u);
	cr_assert_eq(decode_exact(buf, n, n, &v), 0);
	cr_assert_eq(decode_exact(buf, n, n + 1, &v), 0);
	cr_assert_eq(decode_exact(buf, n, 0, &v), 0);
	cr_assert_eq(decode_exact(buf, n, n - 1, &v), DKV_ECORRUPT);
	cr_assert_eq(decode_exact(buf, n, REC_HDR_SIZE, &v), DKV_ECORRUPT);
	cr_assert_eq(decode_exact(buf, n, 1, &v), DKV_ECORRUPT);
	/* Over the bound is corrupt even when the body is cut short: the
	 * header alone says no writer made it. */
	cr_assert_eq(decode_exact(buf, REC_HDR_SIZE, n - 1, &v), DKV_ECORRUPT);
	cr_assert_eq(decode_exact(buf, REC_HDR_SIZE, n, &v), -EAGAIN);

	/* A header claiming the largest 32-bit value: -EAGAIN without a
	 * bound, corrupt under one, and never a read past avail. */
	uint8_t hdr[REC_HDR_SIZE];
	memcpy(hdr, buf, REC_HDR_SIZE);
	put_u16(hdr + 13, 0);
	put_u32(hdr + 15, UINT32_MAX - REC_HDR_SIZE);
	cr_assert_eq(decode_exact(hdr, sizeof(hdr), 0, &v), -EAGAIN);
	cr_assert_eq(decode_exact(hdr, sizeof(hdr), 1u << 20, &v), DKV_ECORRUPT);
	/* ... and one over 32 bits is corrupt with or without a bound. */
	put_u16(hdr + 13, 0xFFFF);
	put_u32(hdr + 15, UINT32_MAX);
	cr_assert_eq(decode_exact(hdr, sizeof(hdr), 0, &v), DKV_ECORRUPT);
	put_u16(hdr + 13, 0);
	put_u32(hdr + 15, UINT32_MAX - REC_HDR_SIZE + 1);
	cr_assert_eq(decode_exact(hdr, sizeof(hdr), 0, &v), DKV_ECORRUPT);
}

/* Random bytes never decode as a record by accident (and never overread). */
Test(record, random_garbage_records)
{
	uint64_t s = 0x5eed0001;
	uint8_t buf[96];

	for (int it = 0; it < 100000; it++) {
		size_t len = rng_below(&s, sizeof(buf) + 1);
		fill_pattern(buf, len, rng_next(&s));
		/* Often make the lengths plausible so the checksum is reached. */
		if (len >= REC_HDR_SIZE && rng_below(&s, 2)) {
			buf[12] &= 1;
			uint32_t room = (uint32_t)(len - REC_HDR_SIZE);
			uint16_t kl = (uint16_t)rng_below(&s, room + 1);
			put_u16(buf + 13, kl);
			put_u32(buf + 15, buf[12] ? 0 : rng_below(&s, room - kl + 1));
		}
		rec_view v;
		int rc = decode_exact(buf, len, 0, &v);
		cr_assert(rc == DKV_ECORRUPT || rc == -EAGAIN, "iteration %d: rc %d", it, rc);
	}
}

/* --- data-file header ------------------------------------------------ */

Test(record, datafile_header_round_trip)
{
	uint8_t buf[DATAFILE_HDR_SIZE + 32];

	datafile_header_encode(buf);
	cr_assert_eq(datafile_header_check(buf, DATAFILE_HDR_SIZE), 0);
	memset(buf + DATAFILE_HDR_SIZE, 0x5a, 32);
	cr_assert_eq(datafile_header_check(buf, sizeof(buf)), 0);

	for (size_t len = 0; len < DATAFILE_HDR_SIZE; len++) {
		uint8_t *c = dup_exact(buf, len);
		cr_assert_eq(datafile_header_check(c, len), -EAGAIN, "len %zu", len);
		free(c);
	}
}

Test(record, datafile_header_bit_flips)
{
	uint8_t good[DATAFILE_HDR_SIZE];

	datafile_header_encode(good);
	for (size_t bit = 0; bit < DATAFILE_HDR_SIZE * 8; bit++) {
		uint8_t img[DATAFILE_HDR_SIZE];
		memcpy(img, good, sizeof(img));
		img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		/* A flip anywhere (the version included) breaks the checksum:
		 * corruption, not a version from the future. */
		cr_assert_eq(datafile_header_check(img, sizeof(img)), DKV_ECORRUPT, "bit %zu", bit);
	}
}

Test(record, datafile_header_wrong_version)
{
	static const uint32_t versions[] = { 0, 2, 3, 0x100, UINT32_MAX };
	uint8_t img[DATAFILE_HDR_SIZE];

	for (size_t i = 0; i < 5; i++) {
		datafile_header_encode(img);
		put_u32(img + 8, versions[i]);
		put_u32(img + 12, crc32c(0, img, 12));
		cr_assert_eq(datafile_header_check(img, sizeof(img)), DKV_EVERSION,
			     "version %u", versions[i]);
	}
	/* Wrong magic with a matching checksum is corruption. */
	datafile_header_encode(img);
	memcpy(img, "DKVDATA2", 8);
	put_u32(img + 12, crc32c(0, img, 12));
	cr_assert_eq(datafile_header_check(img, sizeof(img)), DKV_ECORRUPT);
	/* A hint file is not a data file. */
	memcpy(img, HINT_MAGIC, 8);
	put_u32(img + 8, 1);
	put_u32(img + 12, crc32c(0, img, 12));
	cr_assert_eq(datafile_header_check(img, sizeof(img)), DKV_ECORRUPT);
	/* All zero. */
	memset(img, 0, sizeof(img));
	cr_assert_eq(datafile_header_check(img, sizeof(img)), DKV_ECORRUPT);
}

/* --- hint header and entries ---------------------------------------- */

Test(record, hint_header_round_trip)
{
	static const uint32_t counts[] = { 0, 1, 12345, UINT32_MAX };
	static const uint64_t sizes[] = { 0, 16, UINT64_C(0x123456789), UINT64_MAX };

	for (size_t i = 0; i < 4; i++) {
		uint8_t buf[HINT_HDR_SIZE];
		hint_header h;
		hint_header_encode(buf, counts[i], sizes[i], 0xdeadbeefu ^ (uint32_t)i);
		cr_assert_eq(memcmp(buf, "DKVHINT1", 8), 0);
		cr_assert_eq(get_u32(buf + 8), 1u);
		cr_assert_eq(get_u32(buf + 12), counts[i]);
		cr_assert_eq(get_u64(buf + 16), sizes[i]);
		cr_assert_eq(get_u32(buf + 24), 0xdeadbeefu ^ (uint32_t)i);
		cr_assert_eq(get_u32(buf + 28), crc32c(0, buf, 28));
		memset(&h, 0, sizeof(h));
		cr_assert_eq(hint_header_decode(buf, sizeof(buf), &h), 0);
		cr_assert_eq(h.version, HINT_VERSION);
		cr_assert_eq(h.count, counts[i]);
		cr_assert_eq(h.data_size, sizes[i]);
		cr_assert_eq(h.entries_crc, 0xdeadbeefu ^ (uint32_t)i);
	}
}

Test(record, hint_header_corruptions)
{
	uint8_t good[HINT_HDR_SIZE], img[HINT_HDR_SIZE];
	hint_header h;

	hint_header_encode(good, 3, 100, 7);
	for (size_t len = 0; len < HINT_HDR_SIZE; len++) {
		uint8_t *c = dup_exact(good, len);
		cr_assert_eq(hint_header_decode(c, len, &h), -EAGAIN, "len %zu", len);
		free(c);
	}
	for (size_t bit = 0; bit < HINT_HDR_SIZE * 8; bit++) {
		memcpy(img, good, sizeof(img));
		img[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(hint_header_decode(img, sizeof(img), &h), DKV_ECORRUPT, "bit %zu", bit);
	}
	memcpy(img, good, sizeof(img));
	put_u32(img + 8, 2);
	put_u32(img + 28, crc32c(0, img, 28));
	cr_assert_eq(hint_header_decode(img, sizeof(img), &h), DKV_EVERSION);
	memcpy(img, good, sizeof(img));
	memcpy(img, DATAFILE_MAGIC, 8);
	put_u32(img + 28, crc32c(0, img, 28));
	cr_assert_eq(hint_header_decode(img, sizeof(img), &h), DKV_ECORRUPT);
}

Test(record, hint_entry_round_trip)
{
	static const uint16_t klens[] = { 0, 1, 300, 65535 };
	uint8_t *key = malloc(65535), *buf = malloc(HINT_ENTRY_HDR_SIZE + 65535);

	cr_assert(key && buf);
	fill_pattern(key, 65535, 3);
	for (size_t i = 0; i < 4; i++) {
		uint16_t kl = klens[i];
		for (uint8_t fl = 0; fl < 2; fl++) {
			uint32_t rsize = REC_HDR_SIZE + kl + (fl ? 0 : 1000);
			uint32_t n = hint_entry_encode(buf, UINT64_C(0xfedcba9876543210) + i,
						       0x80000000u + kl, rsize, fl, key, kl);
			cr_assert_eq(n, hint_entry_size(kl));
			cr_assert_eq(n, HINT_ENTRY_HDR_SIZE + kl);
			hint_entry e;
			cr_assert_eq(hint_entry_decode(buf, n, &e), (int)n);
			cr_assert_eq(e.timestamp, UINT64_C(0xfedcba9876543210) + i);
			cr_assert_eq(e.offset, 0x80000000u + kl);
			cr_assert_eq(e.size, rsize);
			cr_assert_eq(e.flags, fl);
			cr_assert_eq(e.key_len, kl);
			cr_assert_eq(e.key, buf + HINT_ENTRY_HDR_SIZE);
			if (kl)
				cr_assert_eq(memcmp(e.key, key, kl), 0);
			/* Every truncation: -EAGAIN (from an exact-size copy
			 * for the header lengths and the last few). */
			for (size_t len = 0; len < n; len++) {
				bool exact = len < 64 || n - len < 8;
				uint8_t *c = exact ? dup_exact(buf, len) : buf;
				int rc = hint_entry_decode(c, len, &e);
				if (exact)
					free(c);
				if (rc != -EAGAIN)
					cr_assert_fail("klen %u truncated to %zu: rc %d", kl, len, rc);
			}
		}
	}
	free(key);
	free(buf);
}

Test(record, hint_entry_corruptions)
{
	uint8_t buf[64];
	hint_entry e;

	/* Unknown flags. */
	for (unsigned bit = 1; bit < 8; bit++) {
		uint32_t n = hint_entry_encode(buf, 1, 16, 30, (uint8_t)(1u << bit), "key", 3);
		cr_assert_eq(hint_entry_decode(buf, n, &e), DKV_ECORRUPT, "flag bit %u", bit);
	}
	/* Record size smaller than its own header + key. */
	uint32_t n = hint_entry_encode(buf, 1, 16, REC_HDR_SIZE + 2, 0, "key", 3);
	cr_assert_eq(hint_entry_decode(buf, n, &e), DKV_ECORRUPT);
	n = hint_entry_encode(buf, 1, 16, 0, 0, "", 0);
	cr_assert_eq(hint_entry_decode(buf, n, &e), DKV_ECORRUPT);
	n = hint_entry_encode(buf, 1, 16, REC_HDR_SIZE + 3, 0, "key", 3);
	cr_assert_eq(hint_entry_decode(buf, n, &e), (int)n);
	/* A tombstone's record size is exactly header + key. */
	n = hint_entry_encode(buf, 1, 16, REC_HDR_SIZE + 4, REC_FLAG_TOMBSTONE, "key", 3);
	cr_assert_eq(hint_entry_decode(buf, n, &e), DKV_ECORRUPT);
	n = hint_entry_encode(buf, 1, 16, REC_HDR_SIZE + 2, REC_FLAG_TOMBSTONE, "key", 3);
	cr_assert_eq(hint_entry_decode(buf, n, &e), DKV_ECORRUPT);
	n = hint_entry_encode(buf, 1, 16, REC_HDR_SIZE + 3, REC_FLAG_TOMBSTONE, "key", 3);
	cr_assert_eq(hint_entry_decode(buf, n, &e), (int)n);
}

/* --- hint_validate --------------------------------------------------- */

/* A hint image of `count` entries laid out back to back from offset 16,
 * with keys "key<i>" and record sizes varying; caller frees. */
static uint8_t *make_hint(uint32_t count, size_t *len_out, uint64_t *data_size_out)
{
	size_t cap = HINT_HDR_SIZE + (size_t)count * (HINT_ENTRY_HDR_SIZE + 16);
	uint8_t *img = malloc(cap);
	size_t pos = HINT_HDR_SIZE;
	uint64_t off = DATAFILE_HDR_SIZE;

	cr_assert_not_null(img);
	for (uint32_t i = 0; i < count; i++) {
		char key[16];
		uint16_t kl = (uint16_t)snprintf(key, sizeof(key), "key%u", i);
		uint8_t fl = i % 3 == 2 ? REC_FLAG_TOMBSTONE : 0;
		uint32_t size = REC_HDR_SIZE + kl + (fl ? 0 : i % 50);
		pos += hint_entry_encode(img + pos, 1000 + i, (uint32_t)off, size, fl, key, kl);
		off += size;
	}
	hint_header_encode(img, count, off, crc32c(0, img + HINT_HDR_SIZE, pos - HINT_HDR_SIZE));
	*len_out = pos;
	*data_size_out = off;
	return img;
}

Test(record, hint_validate_valid)
{
	static const uint32_t counts[] = { 0, 1, 2, 100, 5000 };

	for (size_t i = 0; i < 5; i++) {
		size_t len;
		uint64_t ds;
		uint8_t *img = make_hint(counts[i], &len, &ds);
		hint_header h;
		memset(&h, 0, sizeof(h));
		cr_assert_eq(hint_validate_exact(img, len, &h), 0, "count %u", counts[i]);
		cr_assert_eq(h.count, counts[i]);
		cr_assert_eq(h.data_size, ds);
		cr_assert_eq(h.version, HINT_VERSION);
		free(img);
	}
}

/* A hint whose only entry has the longest key. */
Test(record, hint_validate_max_key)
{
	size_t len = HINT_HDR_SIZE + HINT_ENTRY_HDR_SIZE + 65535;
	uint8_t *img = malloc(len), *key = malloc(65535);

	cr_assert(img && key);
	fill_pattern(key, 65535, 9);
	hint_entry_encode(img + HINT_HDR_SIZE, 1, 16, REC_HDR_SIZE + 65535, REC_FLAG_TOMBSTONE, key, 65535);
	hint_header_encode(img, 1, 16 + REC_HDR_SIZE + 65535, 0);
	hint_fix_crcs(img, len);
	hint_header h;
	cr_assert_eq(hint_validate_exact(img, len, &h), 0);
	put_u64(img + 16, 16 + REC_HDR_SIZE + 65535 - 1);
	hint_fix_crcs(img, len);
	cr_assert_eq(hint_validate_exact(img, len, &h), DKV_ECORRUPT);
	free(img);
	free(key);
}

Test(record, hint_validate_truncated_every_length)
{
	size_t len;
	uint64_t ds;
	uint8_t *img = make_hint(20, &len, &ds);
	hint_header h;

	for (size_t l = 0; l < len; l++) {
		int rc = hint_validate_exact(img, l, &h);
		cr_assert_eq(rc, DKV_ECORRUPT, "truncated to %zu of %zu: rc %d", l, len, rc);
	}
	/* Truncated at an entry boundary with both checksums recomputed:
	 * still refused (count says more). */
	size_t l = HINT_HDR_SIZE;
	for (int i = 0; i < 10; i++) {
		hint_entry e;
		l += (size_t)hint_entry_decode(img + l, len - l, &e);
	}
	uint8_t *c = dup_exact(img, l);
	hint_fix_crcs(c, l);
	cr_assert_eq(hint_validate(c, l, &h), DKV_ECORRUPT);
	free(c);
	free(img);
}

Test(record, hint_validate_every_bit_flip)
{
	size_t len;
	uint64_t ds;
	uint8_t *img = make_hint(4, &len, &ds);
	uint8_t *c = malloc(len);
	hint_header h;

	cr_assert_not_null(c);
	for (size_t bit = 0; bit < len * 8; bit++) {
		memcpy(c, img, len);
		c[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		int rc = hint_validate(c, len, &h);
		cr_assert_eq(rc, DKV_ECORRUPT, "bit %zu (byte %zu) of %zu: rc %d", bit, bit / 8, len, rc);
	}
	free(c);
	free(img);
}

/* Three entries at given offsets/sizes; data_size given. */
static int validate_three(const uint32_t off[3], const uint32_t size[3], uint64_t data_size)
{
	uint8_t img[HINT_HDR_SIZE + 3 * (HINT_ENTRY_HDR_SIZE + 2)];
	size_t pos = HINT_HDR_SIZE;
	hint_header h;

	for (int i = 0; i < 3; i++)
		pos += hint_entry_encode(img + pos, (uint64_t)i, off[i], size[i], 0, "k0", 2);
	cr_assert_eq(pos, sizeof(img));
	hint_header_encode(img, 3, data_size, 0);
	hint_fix_crcs(img, pos);
	return hint_validate_exact(img, pos, &h);
}

Test(record, hint_validate_order_overlap_bounds)
{
	/* Adjacent, in order, ending exactly at data_size: valid. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 40, 70 }, (uint32_t[]){ 24, 30, 21 }, 91), 0);
	/* Gaps between records are fine (a hint lists only live records). */
	cr_assert_eq(validate_three((uint32_t[]){ 100, 200, 300 }, (uint32_t[]){ 24, 30, 21 }, 1000), 0);
	/* Ends one byte past the data file. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 40, 70 }, (uint32_t[]){ 24, 30, 21 }, 90), DKV_ECORRUPT);
	/* Out of order. */
	cr_assert_eq(validate_three((uint32_t[]){ 40, 16, 70 }, (uint32_t[]){ 24, 24, 21 }, 91), DKV_ECORRUPT);
	cr_assert_eq(validate_three((uint32_t[]){ 16, 70, 40 }, (uint32_t[]){ 24, 21, 30 }, 91), DKV_ECORRUPT);
	/* Overlapping by one byte. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 39, 70 }, (uint32_t[]){ 24, 30, 21 }, 91), DKV_ECORRUPT);
	/* Same offset twice. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 16, 70 }, (uint32_t[]){ 24, 24, 21 }, 91), DKV_ECORRUPT);
	/* A record inside the data file header. */
	cr_assert_eq(validate_three((uint32_t[]){ 0, 40, 70 }, (uint32_t[]){ 24, 30, 21 }, 91), DKV_ECORRUPT);
	cr_assert_eq(validate_three((uint32_t[]){ 15, 40, 70 }, (uint32_t[]){ 24, 30, 21 }, 91), DKV_ECORRUPT);
	/* Entirely beyond data_size. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 40, 5000 }, (uint32_t[]){ 24, 30, 21 }, 91), DKV_ECORRUPT);
	/* offset + size overflows 32 bits. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 40, 0xFFFFFFF0u }, (uint32_t[]){ 24, 30, 0x20 }, 91),
		     DKV_ECORRUPT);
	/* ... which is fine when the data file really is that large. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 40, 0xFFFFFFF0u }, (uint32_t[]){ 24, 30, 0x20 },
				    UINT64_C(0x100000010)), 0);
	/* A huge record size. */
	cr_assert_eq(validate_three((uint32_t[]){ 16, 40, 70 }, (uint32_t[]){ 24, 30, UINT32_MAX }, 91),
		     DKV_ECORRUPT);
}

Test(record, hint_validate_trailing_garbage_and_count)
{
	size_t len;
	uint64_t ds;
	uint8_t *img = make_hint(5, &len, &ds);
	uint8_t *c = malloc(len + 64);
	hint_header h;

	cr_assert_not_null(c);
	/* Trailing bytes (both checksums recomputed to cover them). */
	for (size_t extra = 1; extra <= 64; extra++) {
		memcpy(c, img, len);
		memset(c + len, (int)extra, extra);
		hint_fix_crcs(c, len + extra);
		cr_assert_eq(hint_validate_exact(c, len + extra, &h), DKV_ECORRUPT, "extra %zu", extra);
	}
	/* A trailing whole, valid entry not counted. */
	memcpy(c, img, len);
	size_t n = hint_entry_encode(c + len, 1, (uint32_t)ds, REC_HDR_SIZE + 1, REC_FLAG_TOMBSTONE, "z", 1);
	put_u64(c + 16, ds + REC_HDR_SIZE + 1);
	hint_fix_crcs(c, len + n);
	cr_assert_eq(hint_validate_exact(c, len + n, &h), DKV_ECORRUPT);
	put_u32(c + 12, 6);
	hint_fix_crcs(c, len + n);
	cr_assert_eq(hint_validate_exact(c, len + n, &h), 0);
	cr_assert_eq(h.count, 6u);

	/* Count off by one either way, and absurd counts. */
	static const uint32_t counts[] = { 0, 4, 6, 7, 1000, 0x7FFFFFFFu, 0xFFFFFFFFu };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		memcpy(c, img, len);
		put_u32(c + 12, counts[i]);
		hint_fix_crcs(c, len);
		cr_assert_eq(hint_validate_exact(c, len, &h), DKV_ECORRUPT, "count %u", counts[i]);
	}
	free(c);
	free(img);
}

/* count = 0xFFFFFFFF with only a header or a few bytes: refused quickly,
 * without allocating by count or reading past the buffer. */
Test(record, hint_validate_oversized_count, .timeout = 10)
{
	uint8_t img[HINT_HDR_SIZE + 40];
	hint_header h;

	for (size_t extra = 0; extra <= 40; extra++) {
		memset(img, 0, sizeof(img));
		if (extra >= HINT_ENTRY_HDR_SIZE)
			hint_entry_encode(img + HINT_HDR_SIZE, 1, 16, REC_HDR_SIZE, 0, NULL, 0);
		hint_header_encode(img, UINT32_MAX, UINT64_MAX, 0);
		hint_fix_crcs(img, HINT_HDR_SIZE + extra);
		cr_assert_eq(hint_validate_exact(img, HINT_HDR_SIZE + extra, &h), DKV_ECORRUPT,
			     "extra %zu", extra);
	}
}

Test(record, hint_validate_wrong_version)
{
	size_t len;
	uint64_t ds;
	uint8_t *img = make_hint(3, &len, &ds);
	hint_header h;

	put_u32(img + 8, 2);
	hint_fix_crcs(img, len);
	cr_assert_eq(hint_validate_exact(img, len, &h), DKV_EVERSION);
	put_u32(img + 8, 0);
	hint_fix_crcs(img, len);
	cr_assert_eq(hint_validate_exact(img, len, &h), DKV_EVERSION);
	/* Bad entry checksum alone. */
	put_u32(img + 8, 1);
	hint_fix_crcs(img, len);
	cr_assert_eq(hint_validate_exact(img, len, &h), 0);
	put_u32(img + 24, get_u32(img + 24) ^ 1);
	put_u32(img + 28, crc32c(0, img, 28));
	cr_assert_eq(hint_validate_exact(img, len, &h), DKV_ECORRUPT);
	free(img);
}

/* Random buffers: refused, never a crash or an overread. */
Test(record, hint_validate_random_garbage)
{
	uint64_t s = 0xC0FFEE;
	uint8_t buf[512];
	hint_header h;

	for (int it = 0; it < 20000; it++) {
		size_t len = rng_below(&s, sizeof(buf) + 1);
		fill_pattern(buf, len, rng_next(&s));
		if (len >= 8 && rng_below(&s, 2))
			memcpy(buf, HINT_MAGIC, 8);
		int rc = hint_validate_exact(buf, len, &h);
		cr_assert(rc == DKV_ECORRUPT || rc == DKV_EVERSION, "iteration %d: rc %d", it, rc);
	}
}

/* Reference checker written from record.h: 1 if the image is a valid hint
 * file, 0 if not, -1 for a wrong version. */
static int ref_hint_valid(const uint8_t *b, size_t len)
{
	if (len < HINT_HDR_SIZE || memcmp(b, "DKVHINT1", 8) != 0 ||
	    ref_crc32c(b, 28) != get_u32(b + 28))
		return 0;
	if (get_u32(b + 8) != 1)
		return -1;
	if (ref_crc32c(b + 32, len - 32) != get_u32(b + 24))
		return 0;
	uint32_t count = get_u32(b + 12);
	uint64_t data_size = get_u64(b + 16);
	size_t pos = 32;
	uint64_t end = 16;
	for (uint32_t i = 0; i < count; i++) {
		if (len - pos < 19)
			return 0;
		uint32_t off = get_u32(b + pos + 8), size = get_u32(b + pos + 12);
		uint8_t fl = b[pos + 16];
		uint16_t kl = get_u16(b + pos + 17);
		if (fl & ~1u)
			return 0;
		if ((uint64_t)size < 19u + (uint64_t)kl)
			return 0;
		if ((fl & 1) && size != 19u + (uint32_t)kl)
			return 0;
		if (len - pos - 19 < kl)
			return 0;
		if (off < end || (uint64_t)off + size > data_size)
			return 0;
		end = (uint64_t)off + size;
		pos += 19u + kl;
	}
	return pos == len;
}

/* Structured random images (correct checksums, plausible but often wrong
 * entries): hint_validate agrees with the reference checker on each. */
Test(record, hint_validate_random_structured)
{
	uint64_t s = 0xBADC0DE;
	uint8_t img[HINT_HDR_SIZE + 8 * (HINT_ENTRY_HDR_SIZE + 8) + 16];
	int accepted = 0, refused = 0;

	for (int it = 0; it < 50000; it++) {
		uint32_t n = rng_below(&s, 9);
		size_t pos = HINT_HDR_SIZE;
		uint64_t off = DATAFILE_HDR_SIZE;
		for (uint32_t i = 0; i < n; i++) {
			uint16_t kl = (uint16_t)rng_below(&s, 9);
			uint8_t fl = (uint8_t)rng_below(&s, 2);
			uint32_t size = REC_HDR_SIZE + kl + (fl ? 0 : rng_below(&s, 40));
			uint8_t key[8];
			fill_pattern(key, kl, rng_next(&s));
			off += rng_below(&s, 4) == 0 ? rng_below(&s, 30) : 0;
			uint64_t at = off;
			/* Occasionally break one rule. */
			switch (rng_below(&s, 24)) {
			case 0: at = off - rng_below(&s, 20) - 1; break;        /* overlap */
			case 1: fl = (uint8_t)(1u << rng_below(&s, 8)); break;  /* flags */
			case 2: size = REC_HDR_SIZE + kl - 1u - rng_below(&s, 3); break;
			case 3: if (fl) size++; break;                           /* tomb + value */
			case 4: kl = (uint16_t)(kl + 1 + rng_below(&s, 100)); break; /* key runs past */
			default: break;
			}
			uint32_t wrote = hint_entry_encode(img + pos, rng_next(&s), (uint32_t)at, size,
							   fl, key, (uint16_t)(kl > 8 ? 8 : kl));
			put_u16(img + pos + 17, kl); /* may claim more key than written */
			pos += wrote;
			off = at + size;
		}
		uint32_t count = n;
		uint64_t data_size = off;
		switch (rng_below(&s, 10)) {
		case 0: count = n + rng_below(&s, 3) - 1; break;
		case 1: data_size = off - 1 - rng_below(&s, 10); break;
		case 2: data_size = off + rng_below(&s, 1000); break;
		case 3: { size_t g = rng_below(&s, 16) + 1; fill_pattern(img + pos, g, rng_next(&s)); pos += g; } break;
		case 4: count = UINT32_MAX - rng_below(&s, 3); break;
		default: break;
		}
		hint_header_encode(img, count, data_size, 0);
		hint_fix_crcs(img, pos);
		int want = ref_hint_valid(img, pos);
		hint_header h;
		int rc = hint_validate_exact(img, pos, &h);
		if (want == 1) {
			cr_assert_eq(rc, 0, "iteration %d: valid image refused, rc %d", it, rc);
			cr_assert_eq(h.count, count);
			cr_assert_eq(h.data_size, data_size);
			accepted++;
		} else {
			cr_assert_eq(rc, DKV_ECORRUPT, "iteration %d: invalid image gave rc %d", it, rc);
			refused++;
		}
	}
	cr_log_info("hint_validate_random_structured: %d accepted, %d refused", accepted, refused);
	cr_assert_gt(accepted, 1000);
	cr_assert_gt(refused, 1000);
}
