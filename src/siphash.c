/*
 * siphash.c -- SipHash-2-4; see siphash.h.
 *
 * Written from the description in Aumasson and Bernstein, "SipHash: a fast
 * short-input PRF" (2012), section 2: four 64-bit state words initialised
 * from the key and four constants, one 8-byte little-endian message word at a
 * time mixed in with c = 2 rounds, a last word carrying the length, then
 * d = 4 finalisation rounds.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <unistd.h>

#if defined(__has_include)
# if __has_include(<sys/random.h>)
#  include <sys/random.h>
#  define DKV_HAVE_GETRANDOM 1
# endif
#endif

#include "siphash.h"

#define SIP_C_ROUNDS 2
#define SIP_D_ROUNDS 4

static inline uint64_t rotl64(uint64_t x, unsigned int b)
{
	return (x << b) | (x >> (64 - b));
}

/* Read 8 bytes as a little-endian word, whatever the host byte order and the
 * pointer's alignment.  Compilers turn this into one load on x86-64. */
static inline uint64_t load_le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 |
	       (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
	       (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

struct sip_state {
	uint64_t v0, v1, v2, v3;
};

/* SipRound, as in figure 2.1 of the paper: two ARX half-rounds. */
static inline void sip_round(struct sip_state *s)
{
	s->v0 += s->v1;
	s->v2 += s->v3;
	s->v1 = rotl64(s->v1, 13);
	s->v3 = rotl64(s->v3, 16);
	s->v1 ^= s->v0;
	s->v3 ^= s->v2;
	s->v0 = rotl64(s->v0, 32);

	s->v2 += s->v1;
	s->v0 += s->v3;
	s->v1 = rotl64(s->v1, 17);
	s->v3 = rotl64(s->v3, 21);
	s->v1 ^= s->v2;
	s->v3 ^= s->v0;
	s->v2 = rotl64(s->v2, 32);
}

/* Compression of one message word m: v3 ^= m, c rounds, v0 ^= m. */
static inline void sip_compress(struct sip_state *s, uint64_t m)
{
	s->v3 ^= m;
	for (int i = 0; i < SIP_C_ROUNDS; i++)
		sip_round(s);
	s->v0 ^= m;
}

/* The final word: the 0..7 trailing bytes, little-endian, with the message
 * length modulo 256 in the most significant byte. */
static inline uint64_t sip_last_word(const uint8_t *tail, size_t len)
{
	uint64_t b = (uint64_t)(len & 0xff) << 56;

	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)tail[i] << (8 * i);
	return b;
}

uint64_t siphash24(const siphash_key *key, const void *msg, size_t len)
{
	const uint8_t *p = msg;	/* may be NULL when len is 0 */
	struct sip_state s = {
		/* "somepseudorandomlygeneratedbytes", xored with the key. */
		.v0 = key->k0 ^ UINT64_C(0x736f6d6570736575),
		.v1 = key->k1 ^ UINT64_C(0x646f72616e646f6d),
		.v2 = key->k0 ^ UINT64_C(0x6c7967656e657261),
		.v3 = key->k1 ^ UINT64_C(0x7465646279746573),
	};

	/* Whole words; count them rather than form p + 0 from a NULL msg. */
	for (size_t words = len / 8; words > 0; words--, p += 8)
		sip_compress(&s, load_le64(p));
	sip_compress(&s, sip_last_word(p, len));

	/* Finalisation: mark the end with 0xff in v2, then d rounds. */
	s.v2 ^= 0xff;
	for (int i = 0; i < SIP_D_ROUNDS; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

siphash_key siphash_key_from_bytes(const uint8_t bytes[16])
{
	siphash_key key = {
		.k0 = load_le64(bytes),
		.k1 = load_le64(bytes + 8),
	};
	return key;
}

/* Read exactly len bytes of /dev/urandom.  Returns 0 or -errno. */
static int read_urandom(void *buf, size_t len)
{
	uint8_t *p = buf;
	int fd, rc = 0;

	do {
		fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;	/* EOF: should not happen */
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	close(fd);
	return rc;
}

#ifdef DKV_HAVE_GETRANDOM
/* Fill buf with getrandom(2).  Returns 0, or -errno when the call is not
 * usable here (ENOSYS on kernels before 3.17, EPERM under some seccomp
 * filters), in which case the caller falls back to /dev/urandom. */
static int fill_getrandom(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
#endif

/* siphash_key_random_fix()'s key, read-only while anything runs. */
static struct {
	bool set;
	siphash_key key;
} fixed_key;

void siphash_key_random_fix(const siphash_key *key)
{
	fixed_key.set = key != NULL;
	if (key != NULL)
		fixed_key.key = *key;
}

int siphash_key_random(siphash_key *key)
{
	uint8_t bytes[16];
	int rc = -ENOSYS;

	if (fixed_key.set) {
		*key = fixed_key.key;
		return 0;
	}

#ifdef DKV_HAVE_GETRANDOM
	rc = fill_getrandom(bytes, sizeof(bytes));
#endif
	if (rc != 0)
		rc = read_urandom(bytes, sizeof(bytes));
	if (rc != 0)
		return rc;
	*key = siphash_key_from_bytes(bytes);
	return 0;
}
