/*
 * crc32c.c -- CRC-32C (Castagnoli); see crc32c.h.
 *
 * Two implementations of the same function:
 *   - crc32c_sw: slicing-by-8 (Kounavis and Berry, Intel 2005).  Eight
 *     256-entry tables let each step fold 8 input bytes with 8 independent
 *     lookups instead of 8 dependent ones.
 *   - crc32c_hw: the SSE4.2 `crc32` instruction, which computes exactly this
 *     polynomial, 8 bytes per instruction.  It is compiled for SSE4.2 by a
 *     function attribute only, so the rest of the build runs on any x86-64.
 *
 * crc32c() chooses one the first time it is called, under pthread_once.
 *
 * Both work on the reflected (LSB-first) register, inverted on entry and on
 * exit, so that a returned CRC can be fed back in to continue a stream.
 */
#include "config.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
# include <nmmintrin.h>
#endif

#include "crc32c.h"

#define CRC32C_POLY 0x82F63B78u		/* 0x1EDC6F41 bit-reversed */

/* crc32c_table[0][b]: the CRC register after shifting byte b through it.
 * crc32c_table[k][b]: the same followed by k more zero bytes, so that a byte
 * k positions before the end of an 8-byte block is looked up in table k. */
static uint32_t crc32c_table[8][256];

typedef uint32_t (*crc32c_fn)(uint32_t crc, const void *buf, size_t len);

static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static crc32c_fn crc32c_impl;

static void crc32c_build_tables(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;

		for (int i = 0; i < 8; i++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1)));
		crc32c_table[0][b] = c;
	}
	for (int k = 1; k < 8; k++) {
		for (int b = 0; b < 256; b++) {
			uint32_t c = crc32c_table[k - 1][b];

			crc32c_table[k][b] = (c >> 8) ^ crc32c_table[0][c & 0xff];
		}
	}
}

static inline uint32_t load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One byte through the table: the classic Sarwate step. */
static inline uint32_t crc32c_sw_byte(uint32_t c, uint8_t b)
{
	return (c >> 8) ^ crc32c_table[0][(c ^ b) & 0xff];
}

/* The slicing-by-8 loop on the raw (already inverted) register.  The tables
 * must be built.  Loads are byte-wise, so any alignment is fine. */
static uint32_t crc32c_sw_raw(uint32_t c, const uint8_t *p, size_t len)
{
	uint32_t (*t)[256] = crc32c_table;	/* shorthand */

	for (; len >= 8; len -= 8, p += 8) {
		uint32_t lo = load_le32(p) ^ c;
		uint32_t hi = load_le32(p + 4);

		c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^
		    t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
		    t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^
		    t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
	}
	while (len--)
		c = crc32c_sw_byte(c, *p++);
	return c;
}

/* The table path without the once-check, for the dispatcher. */
static uint32_t crc32c_sw_nocheck(uint32_t crc, const void *buf, size_t len)
{
	return ~crc32c_sw_raw(~crc, buf, len);
}

#if defined(__x86_64__)

__attribute__((target("sse4.2")))
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t c = (uint32_t)~crc;

	/* Head bytes up to an 8-byte boundary, so that the word loads below
	 * never straddle a cache line. */
	while (len > 0 && ((uintptr_t)p & 7) != 0) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	for (; len >= 8; len -= 8, p += 8) {
		uint64_t w;

		memcpy(&w, p, sizeof(w));	/* aligned; still no cast */
		c = _mm_crc32_u64(c, w);
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

bool crc32c_hw_available(void)
{
	/* Safe even before constructors have run (e.g. from another one). */
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}

#else /* !__x86_64__ */

/* No hardware path in this build: never chosen, since crc32c_hw_available()
 * is false, but give the right answer if called anyway. */
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return crc32c_sw(crc, buf, len);
}

bool crc32c_hw_available(void)
{
	return false;
}

#endif /* __x86_64__ */

static void crc32c_init(void)
{
	crc32c_build_tables();
	crc32c_impl = crc32c_hw_available() ? crc32c_hw : crc32c_sw_nocheck;
}

uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_sw_nocheck(crc, buf, len);
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_impl(crc, buf, len);
}
