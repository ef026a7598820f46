/*
 * fuzz_record.c -- libFuzzer harness for the data-file record parser
 * (rec_decode, datafile_header_check in src/bitcask/record.c).
 *
 * The input is the body of a data file, the bytes after its 16-byte header.
 * It is walked exactly as the recovery scan walks a data file: on success
 * advance by the record's size, on -EAGAIN stop (a torn tail), on
 * DKV_ECORRUPT advance one byte and try to resync.  The walk is done twice,
 * once without a size bound and once with a small max_rec, and at every
 * position the two answers must agree.
 *
 * A fuzzer seldom keeps a checksum right while it mutates, so the walk is
 * also done over a copy in which each record's crc is recomputed before it
 * is decoded: there, a record whose flags and lengths are ones a writer
 * produces must be accepted, and the round trip is tried on whatever field
 * values the fuzzer comes up with.
 *
 * datafile_header_check gets the first 16 bytes as they are and with magic
 * and crc made right (then only the version may make it refuse).
 *
 * Besides "no crash, no sanitizer report", every accepted record must obey:
 *   - its fields describe exactly the bytes it claims (sizes add up, key and
 *     value point into the slice, flags known, no value on a tombstone);
 *   - rec_encode() of the decoded fields gives back the input slice byte for
 *     byte (the round trip, so a format change cannot go half-done);
 *   - any proper prefix of it decodes as -EAGAIN, never as corrupt: a torn
 *     write of a good record is a torn tail, not damage.
 * A broken property abort()s, which libFuzzer reports as a crash.
 *
 * Build and run with 'make fuzz' (see tests/fuzz/Makefile.inc).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "error.h"
#include "record.h"

/* A bound small enough that the fuzzer easily finds records on both sides of
 * it: the header plus a few dozen key and value bytes. */
#define SMALL_MAX_REC 64u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static bool known_rc(int rc)
{
	return rc == 0 || rc == -EAGAIN || rc == DKV_ECORRUPT;
}

/* Check one record that rec_decode accepted at buf[0..avail). */
static void check_record(const uint8_t *buf, size_t avail, uint32_t max_rec,
			 const rec_view *r)
{
	CHECK(r->size >= REC_HDR_SIZE);
	CHECK(r->size <= avail);
	CHECK(max_rec == 0 || r->size <= max_rec);
	CHECK((uint64_t)r->size == (uint64_t)REC_HDR_SIZE + r->key_len + r->value_len);
	CHECK(rec_size(r->key_len, r->value_len) == r->size);
	CHECK((r->flags & ~REC_FLAGS_KNOWN) == 0);
	CHECK(!(r->flags & REC_FLAG_TOMBSTONE) || r->value_len == 0);
	CHECK(r->key == buf + REC_HDR_SIZE);
	CHECK(r->value == r->key + r->key_len);

	/* Round trip, into a buffer of exactly the record's size so that ASan
	 * sees any write past it. */
	uint8_t *out = malloc(r->size);
	CHECK(out != NULL);
	uint32_t n = rec_encode(out, r->timestamp, r->flags, r->key, r->key_len,
				r->value, r->value_len);
	CHECK(n == r->size);
	CHECK(memcmp(out, buf, r->size) == 0);
	free(out);

	/* A torn copy of a good record is a truncation, whatever the cut. */
	rec_view t;
	CHECK(rec_decode(buf, r->size - 1, max_rec, &t) == -EAGAIN);
	CHECK(rec_decode(buf, REC_HDR_SIZE - 1, max_rec, &t) == -EAGAIN);
	if (r->size > REC_HDR_SIZE)
		CHECK(rec_decode(buf, REC_HDR_SIZE, max_rec, &t) == -EAGAIN);
}

/* The recovery scan.  At every position the unbounded and the bounded
 * decodes must agree: a record within the bound is accepted by both with
 * the same size; one past it is accepted only without the bound. */
static void scan(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (pos < size) {
		const uint8_t *buf = data + pos;
		size_t avail = size - pos;
		rec_view r, s;
		int rc = rec_decode(buf, avail, 0, &r);
		int rcs = rec_decode(buf, avail, SMALL_MAX_REC, &s);

		CHECK(known_rc(rc));
		CHECK(known_rc(rcs));
		if (rcs == 0) {
			CHECK(rc == 0);
			CHECK(s.size == r.size);
			check_record(buf, avail, SMALL_MAX_REC, &s);
		}
		if (rc == 0 && r.size <= SMALL_MAX_REC)
			CHECK(rcs == 0);
		if (rc == 0 && r.size > SMALL_MAX_REC)
			CHECK(rcs == DKV_ECORRUPT);
		if (rc == DKV_ECORRUPT)
			CHECK(rcs == DKV_ECORRUPT);

		if (rc == -EAGAIN)
			break;
		if (rc == DKV_ECORRUPT) {
			pos++;
			continue;
		}
		check_record(buf, avail, 0, &r);
		pos += r.size;
	}
}

/* The recovery walk over a copy whose crcs are made right as it goes. */
static void scan_fixed(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	size_t pos = 0;

	CHECK(copy != NULL);
	if (size)
		memcpy(copy, data, size);
	while (pos < size) {
		uint8_t *buf = copy + pos;
		size_t avail = size - pos;
		bool plausible = false;
		if (avail >= REC_HDR_SIZE) {
			uint8_t flags = buf[12];
			uint32_t vlen = get_u32(buf + 15);
			uint64_t total = (uint64_t)REC_HDR_SIZE + get_u16(buf + 13) + vlen;
			plausible = total <= avail &&
				    (flags & ~REC_FLAGS_KNOWN) == 0 &&
				    (!(flags & REC_FLAG_TOMBSTONE) || vlen == 0);
			if (plausible)
				put_u32(buf, crc32c(0, buf + 4, (size_t)total - 4));
		}
		rec_view r;
		int rc = rec_decode(buf, avail, 0, &r);
		CHECK(known_rc(rc));
		if (plausible)
			CHECK(rc == 0);
		if (rc == -EAGAIN)
			break;
		if (rc == DKV_ECORRUPT) {
			pos++;
			continue;
		}
		check_record(buf, avail, 0, &r);
		pos += r.size;
	}
	free(copy);
}

static void check_header(const uint8_t *data, size_t size)
{
	int rc = datafile_header_check(data, size);

	CHECK(rc == 0 || rc == -EAGAIN || rc == DKV_ECORRUPT || rc == DKV_EVERSION);
	CHECK((rc == -EAGAIN) == (size < DATAFILE_HDR_SIZE));
	if (rc == 0) {
		uint8_t hdr[DATAFILE_HDR_SIZE];
		datafile_header_encode(hdr);
		CHECK(memcmp(hdr, data, DATAFILE_HDR_SIZE) == 0);
	}
	if (size < DATAFILE_HDR_SIZE)
		return;

	/* The same header with its magic and crc made right: only the version
	 * decides. */
	uint8_t fixed[DATAFILE_HDR_SIZE];
	memcpy(fixed, DATAFILE_MAGIC, 8);
	memcpy(fixed + 8, data + 8, 4);
	put_u32(fixed + 12, crc32c(0, fixed, 12));
	rc = datafile_header_check(fixed, sizeof(fixed));
	CHECK(rc == (get_u32(fixed + 8) == DATAFILE_VERSION ? 0 : DKV_EVERSION));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_header(data, size);
	scan(data, size);
	scan_fixed(data, size);
	return 0;
}
