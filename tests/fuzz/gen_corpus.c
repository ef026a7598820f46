/*
 * gen_corpus.c -- writes seed corpora of the fuzzers: DIR/record/ for
 * fuzz_record (data-file bodies), DIR/hint/ for fuzz_hint (hint-file
 * images), and the ownership transfer's frames in DIR/peer/ for fuzz_peer
 * (peer-xreq, peer-xdata, peer-xdata-delay: frame payloads, without the length prefix, as
 * the other peer seeds).  The seeds are small (well under 4 KiB), valid or
 * one step from valid, so the fuzzer starts from inputs that reach deep
 * into the parsers instead of discovering the format from zeros.
 *
 * The outputs are committed under tests/fuzz/corpus/; this program is kept so
 * that they can be made again after a format change.  It is not part of the
 * build.  It writes only the seeds named here: the other corpora (config,
 * frame, object, open) and the other peer seeds were made otherwise and are
 * left as they are, so write over the committed ones, never remove the
 * directory first.  By hand, from the top of a configured tree (or with
 * -I of the build directory for config.h):
 *
 *   cc -std=c11 -pthread -I. -Isrc -Isrc/bitcask -o /tmp/gen_corpus \
 *      tests/fuzz/gen_corpus.c src/bitcask/record.c src/crc32c.c src/error.c \
 *      src/peer.c src/mpr.c -lmsgpackc
 *   /tmp/gen_corpus tests/fuzz/corpus
 *
 * The output is deterministic: same sources, same bytes.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "crc32c.h"
#include "peer.h"
#include "proto.h"
#include "record.h"

#define SEED_MAX 4096u

/* A seed being assembled. */
typedef struct seed {
	uint8_t buf[SEED_MAX];  /* the bytes */
	size_t len;             /* bytes used */
} seed;

static const char *out_dir;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "gen_corpus: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die("mkdir", path);
}

static void write_seed(const char *sub, const char *name, const seed *s)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, sub, name);
	FILE *f = fopen(path, "wb");
	if (f == NULL)
		die("open", path);
	if (s->len && fwrite(s->buf, 1, s->len, f) != s->len)
		die("write", path);
	if (fclose(f) != 0)
		die("close", path);
}

static void add_record(seed *s, uint64_t ts, uint8_t flags, const char *key,
		       const char *value)
{
	size_t klen = strlen(key), vlen = value ? strlen(value) : 0;
	uint32_t size = rec_size(klen, vlen);
	if (size == 0 || s->len + size > SEED_MAX) {
		fprintf(stderr, "gen_corpus: record does not fit\n");
		exit(1);
	}
	s->len += rec_encode(s->buf + s->len, ts, flags, key, (uint16_t)klen,
			     value, (uint32_t)vlen);
}

/* Hint files.  The entries describe records laid out back to back after the
 * data-file header, as a merge writes them. */
typedef struct hint_rec {
	const char *key;        /* NUL-terminated */
	uint32_t value_len;     /* 0 for a tombstone */
	uint8_t flags;          /* REC_FLAG_* */
} hint_rec;

static void make_hint(seed *s, const hint_rec *recs, size_t n)
{
	uint64_t off = DATAFILE_HDR_SIZE;
	s->len = HINT_HDR_SIZE;
	for (size_t i = 0; i < n; i++) {
		uint16_t klen = (uint16_t)strlen(recs[i].key);
		uint32_t size = rec_size(klen, recs[i].value_len);
		s->len += hint_entry_encode(s->buf + s->len, 1700000000000000ull + i,
					    (uint32_t)off, size, recs[i].flags,
					    recs[i].key, klen);
		off += size;
	}
	hint_header_encode(s->buf, (uint32_t)n, off,
			   crc32c(0, s->buf + HINT_HDR_SIZE, s->len - HINT_HDR_SIZE));
}

static void gen_records(void)
{
	seed s;
	const uint64_t ts = 1700000000000000ull;

	s.len = 0;
	add_record(&s, ts, 0, "user:1", "alice");
	write_seed("record", "put", &s);

	s.len = 0;
	add_record(&s, ts + 1, REC_FLAG_TOMBSTONE, "user:1", NULL);
	write_seed("record", "tombstone", &s);

	s.len = 0;
	add_record(&s, ts + 2, 0, "", "value-of-the-empty-key");
	write_seed("record", "empty-key", &s);

	s.len = 0;
	add_record(&s, ts + 3, 0, "k", "");
	write_seed("record", "empty-value", &s);

	s.len = 0;
	add_record(&s, ts, 0, "a", "1");
	add_record(&s, ts + 1, 0, "bb", "22");
	add_record(&s, ts + 2, REC_FLAG_TOMBSTONE, "a", NULL);
	add_record(&s, ts + 3, 0, "", "");
	add_record(&s, ts + 4, 0, "ccc",
		   "a value long enough to take the record past the small max_rec bound of 64");
	write_seed("record", "several", &s);

	/* A good record then a torn one: the scan must stop at the tear. */
	s.len = 0;
	add_record(&s, ts, 0, "a", "1");
	add_record(&s, ts + 1, 0, "torn", "this record is cut short");
	s.len -= 7;
	write_seed("record", "truncated", &s);

	/* A flipped bit in the middle record's value: the scan resyncs onto the
	 * third. */
	s.len = 0;
	add_record(&s, ts, 0, "a", "1");
	size_t mid = s.len;
	add_record(&s, ts + 1, 0, "b", "flip a bit in me");
	add_record(&s, ts + 2, 0, "c", "3");
	s.buf[mid + REC_HDR_SIZE + 1 + 3] ^= 0x10;
	write_seed("record", "bitflip", &s);

	s.len = 64;
	memset(s.buf, 0, s.len);
	write_seed("record", "zeros", &s);

	/* A whole data file, header included, so the header check passes. */
	s.len = DATAFILE_HDR_SIZE;
	datafile_header_encode(s.buf);
	add_record(&s, ts, 0, "key", "value");
	write_seed("record", "with-file-header", &s);
}

static void gen_hints(void)
{
	seed s;
	static const hint_rec one[] = {
		{ "user:1", 5, 0 },
	};
	static const hint_rec several[] = {
		{ "a", 1, 0 },
		{ "bb", 2, 0 },
		{ "a", 0, REC_FLAG_TOMBSTONE },
		{ "", 0, 0 },
		{ "ccc", 300, 0 },
	};

	make_hint(&s, NULL, 0);
	write_seed("hint", "empty", &s);

	make_hint(&s, one, 1);
	write_seed("hint", "one", &s);

	make_hint(&s, several, sizeof(several) / sizeof(several[0]));
	write_seed("hint", "several", &s);

	make_hint(&s, several, sizeof(several) / sizeof(several[0]));
	s.buf[HINT_HDR_SIZE + 2] ^= 0x01;       /* an entry byte: entries crc fails */
	write_seed("hint", "bad-entries-crc", &s);

	make_hint(&s, one, 1);
	s.buf[12] ^= 0x01;                      /* the count: header crc fails */
	write_seed("hint", "bad-header-crc", &s);

	make_hint(&s, several, sizeof(several) / sizeof(several[0]));
	s.len -= 2;
	write_seed("hint", "truncated", &s);

	/* Valid checksums, but the data file is one byte shorter than the
	 * last record needs. */
	make_hint(&s, one, 1);
	hint_header_encode(s.buf, 1, get_u64(s.buf + 16) - 1, get_u32(s.buf + 24));
	write_seed("hint", "past-data-size", &s);
}

/* The one frame in sb, without its length prefix, as seed sub/name. */
static void write_frame(const char *sub, const char *name, msgpack_sbuffer *sb)
{
	seed s;

	if (sb->size <= PROTO_HEADER_SIZE || sb->size - PROTO_HEADER_SIZE > SEED_MAX) {
		fprintf(stderr, "gen_corpus: frame %s does not fit\n", name);
		exit(1);
	}
	s.len = sb->size - PROTO_HEADER_SIZE;
	memcpy(s.buf, sb->data + PROTO_HEADER_SIZE, s.len);
	write_seed(sub, name, &s);
	msgpack_sbuffer_destroy(sb);
}

/* Ownership transfer (peer.h, XREQ and XDATA), from the address the other
 * peer seeds use. */
static void gen_peer(void)
{
	/* partitions 3 and 40 of 64 hold no key at the sender */
	static const uint8_t empty[8] = { 0x08, 0, 0, 0, 0, 0x01, 0, 0 };
	const char *from = "127.0.0.1:7070";
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t start;

	msgpack_sbuffer_init(&sb);
	if (peer_encode_xreq(&sb, 10, from, 5, UINT64_C(0x8000000000000000), 1u << 20) != 0)
		goto nomem;
	write_frame("peer", "peer-xreq", &sb);

	msgpack_sbuffer_init(&sb);
	if (peer_xdata_begin(&sb, &pk, &start, 10, from, 5, 0, UINT64_C(0x9000000000000000),
			     false, 2, 8, empty, sizeof(empty), 2, 0) != 0 ||
	    peer_hoff_pair(&pk, "k1", 2, "o1", 2) != 0 ||
	    peer_hoff_pair(&pk, "k2", 2, "o2", 2) != 0 ||
	    peer_hoff_end(&sb, start) != 0)
		goto nomem;
	write_frame("peer", "peer-xdata", &sb);

	msgpack_sbuffer_init(&sb);
	if (peer_xdata_begin(&sb, &pk, &start, 11, from, 6, 0, 7, true, 1, 4, empty,
			     sizeof(empty), 1, 1234) != 0 ||
	    peer_hoff_pair(&pk, "k3", 2, "o3", 2) != 0 ||
	    peer_hoff_end(&sb, start) != 0)
		goto nomem;
	write_frame("peer", "peer-xdata-delay", &sb);
	return;
nomem:
	fprintf(stderr, "gen_corpus: encoding a peer frame failed\n");
	exit(1);
}

int main(int argc, char **argv)
{
	char path[4096];

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	make_dir(out_dir);
	snprintf(path, sizeof(path), "%s/record", out_dir);
	make_dir(path);
	snprintf(path, sizeof(path), "%s/hint", out_dir);
	make_dir(path);
	snprintf(path, sizeof(path), "%s/peer", out_dir);
	make_dir(path);
	gen_records();
	gen_hints();
	gen_peer();
	return 0;
}
