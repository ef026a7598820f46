/*
 * test_siphash.c -- SipHash-2-4 against the paper's 64 reference vectors,
 * plus the key helpers, NULL/empty input and unaligned input.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <criterion/criterion.h>

#include "siphash.h"

/*
 * The SipHash paper's test vectors (as in testdata/siphash24-vectors.txt):
 * key = 00 01 .. 0f, message n = the n bytes 00 01 .. n-1, n = 0..63.  Each
 * value is the 8 output bytes read as a little-endian uint64, which is what
 * siphash24() returns.
 */
static const uint64_t sip_vectors[64] = {
	[ 0] = UINT64_C(0x726fdb47dd0e0e31),
	[ 1] = UINT64_C(0x74f839c593dc67fd),
	[ 2] = UINT64_C(0x0d6c8009d9a94f5a),
	[ 3] = UINT64_C(0x85676696d7fb7e2d),
	[ 4] = UINT64_C(0xcf2794e0277187b7),
	[ 5] = UINT64_C(0x18765564cd99a68d),
	[ 6] = UINT64_C(0xcbc9466e58fee3ce),
	[ 7] = UINT64_C(0xab0200f58b01d137),
	[ 8] = UINT64_C(0x93f5f5799a932462),
	[ 9] = UINT64_C(0x9e0082df0ba9e4b0),
	[10] = UINT64_C(0x7a5dbbc594ddb9f3),
	[11] = UINT64_C(0xf4b32f46226bada7),
	[12] = UINT64_C(0x751e8fbc860ee5fb),
	[13] = UINT64_C(0x14ea5627c0843d90),
	[14] = UINT64_C(0xf723ca908e7af2ee),
	[15] = UINT64_C(0xa129ca6149be45e5),
	[16] = UINT64_C(0x3f2acc7f57c29bdb),
	[17] = UINT64_C(0x699ae9f52cbe4794),
	[18] = UINT64_C(0x4bc1b3f0968dd39c),
	[19] = UINT64_C(0xbb6dc91da77961bd),
	[20] = UINT64_C(0xbed65cf21aa2ee98),
	[21] = UINT64_C(0xd0f2cbb02e3b67c7),
	[22] = UINT64_C(0x93536795e3a33e88),
	[23] = UINT64_C(0xa80c038ccd5ccec8),
	[24] = UINT64_C(0xb8ad50c6f649af94),
	[25] = UINT64_C(0xbce192de8a85b8ea),
	[26] = UINT64_C(0x17d835b85bbb15f3),
	[27] = UINT64_C(0x2f2e6163076bcfad),
	[28] = UINT64_C(0xde4daaaca71dc9a5),
	[29] = UINT64_C(0xa6a2506687956571),
	[30] = UINT64_C(0xad87a3535c49ef28),
	[31] = UINT64_C(0x32d892fad841c342),
	[32] = UINT64_C(0x7127512f72f27cce),
	[33] = UINT64_C(0xa7f32346f95978e3),
	[34] = UINT64_C(0x12e0b01abb051238),
	[35] = UINT64_C(0x15e034d40fa197ae),
	[36] = UINT64_C(0x314dffbe0815a3b4),
	[37] = UINT64_C(0x027990f029623981),
	[38] = UINT64_C(0xcadcd4e59ef40c4d),
	[39] = UINT64_C(0x9abfd8766a33735c),
	[40] = UINT64_C(0x0e3ea96b5304a7d0),
	[41] = UINT64_C(0xad0c42d6fc585992),
	[42] = UINT64_C(0x187306c89bc215a9),
	[43] = UINT64_C(0xd4a60abcf3792b95),
	[44] = UINT64_C(0xf935451de4f21df2),
	[45] = UINT64_C(0xa9538f0419755787),
	[46] = UINT64_C(0xdb9acddff56ca510),
	[47] = UINT64_C(0xd06c98cd5c0975eb),
	[48] = UINT64_C(0xe612a3cb9ecba951),
	[49] = UINT64_C(0xc766e62cfcadaf96),
	[50] = UINT64_C(0xee64435a9752fe72),
	[51] = UINT64_C(0xa192d576b245165a),
	[52] = UINT64_C(0x0a8787bf8ecb74b2),
	[53] = UINT64_C(0x81b3e73d20b49b6f),
	[54] = UINT64_C(0x7fa8220ba3b2ecea),
	[55] = UINT64_C(0x245731c13ca42499),
	[56] = UINT64_C(0xb78dbfaf3a8d83bd),
	[57] = UINT64_C(0xea1ad565322a1a0b),
	[58] = UINT64_C(0x60e61c23a3795013),
	[59] = UINT64_C(0x6606d7e446282b93),
	[60] = UINT64_C(0x6ca4ecb15c5f91e1),
	[61] = UINT64_C(0x9f626da15c9625f3),
	[62] = UINT64_C(0xe51b38608ef25f57),
	[63] = UINT64_C(0x958a324ceb064572),
};

/* The vector key: bytes 00 01 .. 0f. */
static siphash_key vector_key(void)
{
	uint8_t kb[16];

	for (int i = 0; i < 16; i++)
		kb[i] = (uint8_t)i;
	return siphash_key_from_bytes(kb);
}

/* The vector messages: msg[i] = i. */
static void fill_ascending(uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)i;
}

TestSuite(siphash, .description = "SipHash-2-4");

Test(siphash, reference_vectors)
{
	siphash_key key = vector_key();
	uint8_t msg[64];

	fill_ascending(msg, sizeof(msg));
	for (size_t n = 0; n < 64; n++) {
		uint64_t got = siphash24(&key, msg, n);

		cr_expect_eq(got, sip_vectors[n],
			     "vector %zu: got 0x%016llx, want 0x%016llx", n,
			     (unsigned long long)got,
			     (unsigned long long)sip_vectors[n]);
	}
}

/* The output, written little-endian, is the byte string of the vectors file:
 * vector 0 is 31 0e 0e dd 47 db 6f 72. */
Test(siphash, output_byte_order)
{
	static const uint8_t want[8] = {
		0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72
	};
	siphash_key key = vector_key();
	uint64_t h = siphash24(&key, "", 0);
	uint8_t got[8];

	for (int i = 0; i < 8; i++)
		got[i] = (uint8_t)(h >> (8 * i));
	cr_assert_arr_eq(got, want, sizeof(want));
}

Test(siphash, key_from_bytes)
{
	siphash_key key = vector_key();

	cr_assert_eq(key.k0, UINT64_C(0x0706050403020100));
	cr_assert_eq(key.k1, UINT64_C(0x0f0e0d0c0b0a0908));

	/* Each byte lands in its own place: a change in any one of the 16
	 * changes exactly that byte of k0 or k1. */
	for (int i = 0; i < 16; i++) {
		uint8_t kb[16] = { 0 };
		siphash_key k;

		kb[i] = 0xa5;
		k = siphash_key_from_bytes(kb);
		cr_expect_eq(k.k0, i < 8 ? UINT64_C(0xa5) << (8 * i) : 0,
			     "byte %d: k0 = 0x%016llx", i,
			     (unsigned long long)k.k0);
		cr_expect_eq(k.k1, i >= 8 ? UINT64_C(0xa5) << (8 * (i - 8)) : 0,
			     "byte %d: k1 = 0x%016llx", i,
			     (unsigned long long)k.k1);
	}
}

Test(siphash, key_random_differs)
{
	siphash_key a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	cr_assert_eq(siphash_key_random(&a), 0);
	cr_assert_eq(siphash_key_random(&b), 0);
	/* Equal 128-bit draws: chance 2^-128. */
	cr_assert(a.k0 != b.k0 || a.k1 != b.k1,
		  "two random keys are equal: %016llx%016llx",
		  (unsigned long long)a.k0, (unsigned long long)a.k1);
	cr_assert(a.k0 != 0 || a.k1 != 0, "random key left all zero");
}

/* A different key gives a different hash of the same message. */
Test(siphash, key_matters)
{
	siphash_key key = vector_key();
	siphash_key other = key;
	uint8_t msg[15];

	fill_ascending(msg, sizeof(msg));
	other.k1 ^= 1;
	cr_assert_eq(siphash24(&key, msg, sizeof(msg)), sip_vectors[15]);
	cr_assert_neq(siphash24(&other, msg, sizeof(msg)), sip_vectors[15]);
}

Test(siphash, null_msg_empty)
{
	siphash_key key = vector_key();

	cr_assert_eq(siphash24(&key, NULL, 0), sip_vectors[0]);
}

/* The vector messages placed at every offset 0..7 from an 8-byte boundary
 * still give the reference values. */
Test(siphash, unaligned_input)
{
	siphash_key key = vector_key();
	_Alignas(8) uint8_t buf[64 + 8];

	for (size_t off = 0; off < 8; off++) {
		memset(buf, 0xee, sizeof(buf));
		fill_ascending(buf + off, 64);
		for (size_t n = 0; n < 64; n++) {
			uint64_t got = siphash24(&key, buf + off, n);

			cr_expect_eq(got, sip_vectors[n],
				     "offset %zu, length %zu: got 0x%016llx",
				     off, n, (unsigned long long)got);
		}
	}
}

/* A simulation fixes the keys so that a seed replays; NULL draws again. */
Test(siphash, a_fixed_key_is_returned_until_unfixed)
{
	siphash_key fix = { 0x0123456789abcdefull, 0xfedcba9876543210ull }, a, b;

	siphash_key_random_fix(&fix);
	cr_assert_eq(siphash_key_random(&a), 0);
	cr_assert_eq(siphash_key_random(&b), 0);
	cr_assert(a.k0 == fix.k0 && a.k1 == fix.k1 && b.k0 == fix.k0 && b.k1 == fix.k1);
	siphash_key_random_fix(NULL);
	cr_assert_eq(siphash_key_random(&a), 0);
	cr_assert_eq(siphash_key_random(&b), 0);
	cr_assert(a.k0 != b.k0 || a.k1 != b.k1, "still fixed");
}
