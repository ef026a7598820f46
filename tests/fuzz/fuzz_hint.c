/*
 * fuzz_hint.c -- libFuzzer harness for the hint-file parser
 * (hint_validate, hint_header_decode, hint_entry_decode in
 * src/bitcask/record.c).
 *
 * The input is a whole hint-file image.  It goes through:
 *   - hint_header_decode: an accepted header re-encodes to the same 32 bytes;
 *   - hint_entry_decode, walked over the input as if it were an entry area
 *     (from byte 0, stopping at the first error): every accepted entry obeys
 *     its own rules and re-encodes to the same bytes;
 *   - hint_validate, as the loader calls it.  When it accepts, the image is
 *     walked again as the loader walks it: each of the count entries is well
 *     formed, lies at or after the data-file header, does not overlap the one
 *     before it and ends within data_size; the entries fill the image
 *     exactly; and header plus entries re-encode to the very same image.
 *     Any image one byte shorter must then be refused.
 * A fuzzer seldom keeps two checksums right while it mutates, so
 * hint_validate also gets a copy of the input with the magic, the version and
 * both checksums made right: there the header must be accepted, and the
 * checks on the entries (order, overlap, data_size) see the fuzzer's values.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

/* Check one entry that hint_entry_decode accepted at buf[0..avail) with
 * return value n. */
static void check_entry(const uint8_t *buf, size_t avail, int n, const hint_entry *e)
{
	CHECK(n > 0);
	CHECK((uint32_t)n == hint_entry_size(e->key_len));
	CHECK((size_t)n <= avail);
	CHECK((e->flags & ~REC_FLAGS_KNOWN) == 0);
	CHECK((uint64_t)e->size >= (uint64_t)REC_HDR_SIZE + e->key_len);
	CHECK(!(e->flags & REC_FLAG_TOMBSTONE) || e->size == REC_HDR_SIZE + e->key_len);
	CHECK(e->key == buf + HINT_ENTRY_HDR_SIZE);

	uint8_t *out = malloc((size_t)n);
	CHECK(out != NULL);
	uint32_t m = hint_entry_encode(out, e->timestamp, e->offset, e->size,
				       e->flags, e->key, e->key_len);
	CHECK(m == (uint32_t)n);
	CHECK(memcmp(out, buf, (size_t)n) == 0);
	free(out);

	/* A cut inside the key is a truncation, never an error of content. */
	hint_entry t;
	CHECK(hint_entry_decode(buf, (size_t)n - 1, &t) == -EAGAIN);
}

static void walk_entries(const uint8_t *data, size_t size)
{
	size_t pos = 0;

	while (pos < size) {
		hint_entry e;
		int n = hint_entry_decode(data + pos, size - pos, &e);
		CHECK(n > 0 || n == -EAGAIN || n == DKV_ECORRUPT);
		if (n < 0)
			break;
		check_entry(data + pos, size - pos, n, &e);
		pos += (size_t)n;
	}
}

static void check_header(const uint8_t *data, size_t size)
{
	hint_header h;
	int rc = hint_header_decode(data, size, &h);

	CHECK(rc == 0 || rc == -EAGAIN || rc == DKV_ECORRUPT || rc == DKV_EVERSION);
	CHECK((rc == -EAGAIN) == (size < HINT_HDR_SIZE));
	if (rc != 0)
		return;
	CHECK(h.version == HINT_VERSION);
	uint8_t out[HINT_HDR_SIZE];
	hint_header_encode(out, h.count, h.data_size, h.entries_crc);
	CHECK(memcmp(out, data, HINT_HDR_SIZE) == 0);
}

/* The loader's walk over an image that hint_validate accepted. */
static void check_valid(const uint8_t *data, size_t size, const hint_header *hdr)
{
	hint_header h;

	CHECK(size >= HINT_HDR_SIZE);
	CHECK(hint_header_decode(data, size, &h) == 0);
	CHECK(h.version == hdr->version && h.count == hdr->count &&
	      h.data_size == hdr->data_size && h.entries_crc == hdr->entries_crc);
	CHECK(crc32c(0, data + HINT_HDR_SIZE, size - HINT_HDR_SIZE) == hdr->entries_crc);

	uint8_t *out = malloc(size);
	CHECK(out != NULL);
	size_t pos = HINT_HDR_SIZE;
	uint64_t prev_end = DATAFILE_HDR_SIZE;
	for (uint32_t i = 0; i < hdr->count; i++) {
		hint_entry e;
		int n = hint_entry_decode(data + pos, size - pos, &e);
		check_entry(data + pos, size - pos, n, &e);
		CHECK(e.offset >= prev_end);
		CHECK((uint64_t)e.offset + e.size <= hdr->data_size);
		prev_end = (uint64_t)e.offset + e.size;
		CHECK(hint_entry_encode(out + pos, e.timestamp, e.offset, e.size,
					e.flags, e.key, e.key_len) == (uint32_t)n);
		pos += (size_t)n;
	}
	CHECK(pos == size);
	hint_header_encode(out, hdr->count, hdr->data_size,
			   crc32c(0, out + HINT_HDR_SIZE, size - HINT_HDR_SIZE));
	CHECK(memcmp(out, data, size) == 0);
	free(out);

	/* The entries fill the image exactly, so a shorter image cannot be
	 * valid too. */
	CHECK(hint_validate(data, size - 1, &h) != 0);
}

static void validate(const uint8_t *data, size_t size)
{
	hint_header hdr;
	int rc = hint_validate(data, size, &hdr);

	CHECK(rc == 0 || rc == DKV_ECORRUPT || rc == DKV_EVERSION);
	if (rc == 0)
		check_valid(data, size, &hdr);
}

/* hint_validate over a copy whose header is made right. */
static void validate_fixed(const uint8_t *data, size_t size)
{
	if (size < HINT_HDR_SIZE)
		return;
	uint8_t *copy = malloc(size);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	hint_header_encode(copy, get_u32(copy + 12), get_u64(copy + 16),
			   crc32c(0, copy + HINT_HDR_SIZE, size - HINT_HDR_SIZE));
	hint_header h;
	CHECK(hint_header_decode(copy, size, &h) == 0);
	int rc = hint_validate(copy, size, &h);
	CHECK(rc == 0 || rc == DKV_ECORRUPT);
	if (rc == 0)
		check_valid(copy, size, &h);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_header(data, size);
	walk_entries(data, size);
	validate(data, size);
	validate_fixed(data, size);
	return 0;
}
