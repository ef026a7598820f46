/*
 * test_crc32c.c -- CRC-32C: known vectors through every path, the table path
 * against a bit-at-a-time oracle, the SSE4.2 path against the table path at
 * every length and alignment, and incremental use.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "crc32c.h"

#define MAX_LEN 4096

/* Known values (as in testdata/crc32c-vectors.txt; the 32-byte cases are
 * RFC 3720, appendix B.4). */
enum fill { FILL_ASCII, FILL_ZERO, FILL_ONES, FILL_UP, FILL_DOWN, FILL_EMPTY };

static const struct {
	uint32_t crc;
	enum fill fill;
	const char *name;
} vectors[] = {
	{ 0xE3069283, FILL_ASCII, "ascii 123456789" },
	{ 0x8A9136AA, FILL_ZERO,  "32 bytes of 00" },
	{ 0x62A8AB43, FILL_ONES,  "32 bytes of ff" },
	{ 0x46DD794E, FILL_UP,    "32 bytes ascending 00..1f" },
	{ 0x113FDB5C, FILL_DOWN,  "32 bytes descending 1f..00" },
	{ 0x00000000, FILL_EMPTY, "empty" },
};

/* Build a vector's input in buf (at least 32 bytes); returns its length. */
static size_t vector_input(enum fill fill, uint8_t *buf)
{
	switch (fill) {
	case FILL_ASCII:
		memcpy(buf, "123456789", 9);
		return 9;
	case FILL_ZERO:
		memset(buf, 0x00, 32);
		return 32;
	case FILL_ONES:
		memset(buf, 0xff, 32);
		return 32;
	case FILL_UP:
		for (int i = 0; i < 32; i++)
			buf[i] = (uint8_t)i;
		return 32;
	case FILL_DOWN:
		for (int i = 0; i < 32; i++)
			buf[i] = (uint8_t)(31 - i);
		return 32;
	case FILL_EMPTY:
		return 0;
	}
	return 0;
}

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

/* Every vector through fn, also at each misalignment 1..7. */
static void check_vectors(crc_fn fn, const char *path)
{
	_Alignas(8) uint8_t buf[32 + 8];

	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		for (size_t off = 0; off < 8; off++) {
			size_t len = vector_input(vectors[v].fill, buf + off);
			uint32_t got = fn(0, buf + off, len);

			cr_expect_eq(got, vectors[v].crc,
				     "%s, %s, offset %zu: got 0x%08X, want 0x%08X",
				     path, vectors[v].name, off, got,
				     vectors[v].crc);
		}
	}
}

/* The definition, one bit at a time: an oracle that shares no code or table
 * with the implementation. */
static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int i = 0; i < 8; i++)
			crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
	}
	return ~crc;
}

/* splitmix64: reproducible test data from a fixed seed. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t s = seed;

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rng_next(&s);
}

static _Alignas(64) uint8_t data[MAX_LEN + 8];

static void setup_data(void)
{
	fill_random(data, sizeof(data), 0xC0FFEE);
}

TestSuite(crc32c, .description = "CRC-32C", .init = setup_data);

Test(crc32c, vectors_dispatch)
{
	cr_log_info("crc32c() dispatches to the %s path",
		    crc32c_hw_available() ? "SSE4.2" : "slicing-by-8");
	check_vectors(crc32c, "crc32c");
}

Test(crc32c, vectors_sw)
{
	cr_log_info("tested: slicing-by-8 path");
	check_vectors(crc32c_sw, "crc32c_sw");
}

Test(crc32c, vectors_hw)
{
	if (!crc32c_hw_available())
		cr_skip_test("no SSE4.2 crc32 on this CPU or build");
	cr_log_info("tested: SSE4.2 path");
	check_vectors(crc32c_hw, "crc32c_hw");
}

/* A zero-length update leaves any CRC as it was, even with a NULL buffer. */
Test(crc32c, empty_update)
{
	static const uint32_t crcs[] = { 0, 1, 0xE3069283, 0xFFFFFFFF };

	for (size_t i = 0; i < sizeof(crcs) / sizeof(crcs[0]); i++) {
		cr_expect_eq(crc32c(crcs[i], NULL, 0), crcs[i]);
		cr_expect_eq(crc32c_sw(crcs[i], NULL, 0), crcs[i]);
		if (crc32c_hw_available())
			cr_expect_eq(crc32c_hw(crcs[i], NULL, 0), crcs[i]);
	}
}

/* The table path equals the bitwise definition on random data, for every
 * length 0..1024 at every alignment 0..7. */
Test(crc32c, sw_matches_bitwise)
{
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len <= 1024; len++) {
			uint32_t want = crc32c_bitwise(0, data + off, len);
			uint32_t got = crc32c_sw(0, data + off, len);

			if (got != want)
				cr_assert_fail("offset %zu, length %zu: sw 0x%08X, bitwise 0x%08X",
					 off, len, got, want);
		}
	}
	cr_log_info("tested: slicing-by-8 path against the bitwise oracle");
}

/* The SSE4.2 path equals the table path for every length 0..4096 at every
 * alignment 0..7, and for a non-zero starting CRC. */
Test(crc32c, hw_matches_sw)
{
	if (!crc32c_hw_available())
		cr_skip_test("no SSE4.2 crc32 on this CPU or build");
	for (size_t off = 0; off < 8; off++) {
		for (size_t len = 0; len <= MAX_LEN; len++) {
			uint32_t seed = (uint32_t)(len * 0x9E3779B1u);
			uint32_t sw = crc32c_sw(0, data + off, len);
			uint32_t hw = crc32c_hw(0, data + off, len);

			if (sw != hw)
				cr_assert_fail("offset %zu, length %zu: sw 0x%08X, hw 0x%08X",
					 off, len, sw, hw);
			sw = crc32c_sw(seed, data + off, len);
			hw = crc32c_hw(seed, data + off, len);
			if (sw != hw)
				cr_assert_fail("offset %zu, length %zu, crc 0x%08X: sw 0x%08X, hw 0x%08X",
					 off, len, seed, sw, hw);
		}
	}
	cr_log_info("tested: SSE4.2 path against slicing-by-8, %d lengths x 8 alignments",
		    MAX_LEN + 1);
}

/* fn(fn(0, a, k), b, n - k) == fn(0, a||b, n) for every split point k. */
static void check_incremental(crc_fn fn, const char *path)
{
	uint32_t whole = fn(0, data, MAX_LEN);

	cr_assert_eq(whole, crc32c_bitwise(0, data, MAX_LEN),
		     "%s: one-shot CRC of %d bytes is wrong", path, MAX_LEN);
	for (size_t k = 0; k <= MAX_LEN; k++) {
		uint32_t crc = fn(0, data, k);

		crc = fn(crc, data + k, MAX_LEN - k);
		if (crc != whole)
			cr_assert_fail("%s: split at %zu: 0x%08X, one-shot 0x%08X",
				 path, k, crc, whole);
	}
	cr_log_info("tested: %s, incremental at every split of %d bytes",
		    path, MAX_LEN);
}

Test(crc32c, incremental_dispatch)
{
	check_incremental(crc32c, "crc32c");
}

Test(crc32c, incremental_sw)
{
	check_incremental(crc32c_sw, "crc32c_sw");
}

Test(crc32c, incremental_hw)
{
	if (!crc32c_hw_available())
		cr_skip_test("no SSE4.2 crc32 on this CPU or build");
	check_incremental(crc32c_hw, "crc32c_hw");
}

/* Byte by byte, the running CRC follows the bitwise definition. */
Test(crc32c, byte_at_a_time)
{
	uint32_t crc = 0, want = 0;

	for (size_t i = 0; i < 256; i++) {
		crc = crc32c(crc, data + i, 1);
		want = crc32c_bitwise(want, data + i, 1);
		cr_assert_eq(crc, want, "after byte %zu: 0x%08X != 0x%08X",
			     i, crc, want);
	}
}
