#include "config.h"
/*
 * test_peer.c -- src/peer.c, the codec of the messages nodes send each
 * other: every peer frame (FWD, FWDREPLY, RGET, RVALUE, RPUT, RACK, SYNC,
 * and the ownership transfer's XREQ and XDATA) and every gossip datagram
 * (PING, ACK, PINGREQ) round trips through its encoder, peer_decode /
 * gossip_decode and peer_entry_next (peer_hoff_next for XDATA's pairs)
 * with every field checked; golden bytes pin the format;
 * peer_is_peer_frame tells peer frames from client frames; and garbage,
 * every truncation, every single bit flip, trailing bytes and each wrong
 * shape are survived and refused with DKV_EPROTO.  Whatever the decoder accepts is re-encoded with the
 * encoders and must decode to the same fields (the oracle of
 * check_peer_bytes() and check_gossip_bytes()).
 *
 * Payloads handed to the decoders are heap copies of exactly their length
 * (an empty one is a NULL pointer), so that an overread is caught when
 * built with -fsanitize=address; valgrind runs this suite for leaks.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <criterion/criterion.h>

#include "epochs.h"
#include "error.h"
#include "peer.h"
#include "proto.h"
#include "testutil.h"

#define MIB (1u << 20)
/* XDATA's bitmap of the empty partitions: one bit for each of at most
 * 65536 partitions (peer.h). */
#define XDATA_MAX_BITMAP (65536u / 8)

/* --- helpers ----------------------------------------------------------- */

/* Bytes in an exact-size heap buffer: caller frees p with free(). */
typedef struct payload {
	uint8_t *p;
	size_t n;
} payload;

/* The one frame in sb (which this destroys), without its length prefix,
 * which must say exactly how many bytes follow. */
static payload take(msgpack_sbuffer *sb)
{
	payload f;

	cr_assert_geq(sb->size, PROTO_HEADER_SIZE + 1);
	f.n = proto_frame_length((const uint8_t *)sb->data);
	cr_assert_eq(f.n, sb->size - PROTO_HEADER_SIZE, "length prefix %zu, %zu bytes follow",
		     f.n, sb->size - PROTO_HEADER_SIZE);
	f.p = copy_exact(sb->data + PROTO_HEADER_SIZE, f.n);
	msgpack_sbuffer_destroy(sb);
	return f;
}

/* Everything in sb (which this destroys), as it is: a datagram, or a
 * payload packed by hand. */
static payload take_raw(msgpack_sbuffer *sb)
{
	payload f = { copy_exact(sb->data, sb->size), sb->size };

	msgpack_sbuffer_destroy(sb);
	return f;
}

static payload mkpayload(const uint8_t *b, size_t n)
{
	payload f = { copy_exact(b, n), n };

	return f;
}
#define P(...) mkpayload((const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ }))

/* A payload packed by hand: bopen(), pack, bclose(). */
typedef struct build {
	msgpack_sbuffer sb;
	msgpack_packer pk;
} build;

static msgpack_packer *bopen(build *b)
{
	msgpack_sbuffer_init(&b->sb);
	msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
	return &b->pk;
}

static payload bclose(build *b)
{
	return take_raw(&b->sb);
}

static void pstrn(msgpack_packer *pk, const char *s, size_t n)
{
	cr_assert_eq(msgpack_pack_str(pk, n), 0);
	if (n > 0)
		cr_assert_eq(msgpack_pack_str_body(pk, s, n), 0);
}

static void pstr(msgpack_packer *pk, const char *s)
{
	pstrn(pk, s, strlen(s));
}

static void pbin(msgpack_packer *pk, const void *p, size_t n)
{
	cr_assert_eq(msgpack_pack_bin(pk, n), 0);
	if (n > 0)
		cr_assert_eq(msgpack_pack_bin_body(pk, p, n), 0);
}

/* [version, type, id, [ (an array of nbody elements opened, not filled) */
static void phdr(msgpack_packer *pk, uint64_t version, uint64_t type, uint64_t id,
		 uint32_t nbody)
{
	cr_assert_eq(msgpack_pack_array(pk, 4), 0);
	cr_assert_eq(msgpack_pack_uint64(pk, version), 0);
	cr_assert_eq(msgpack_pack_uint64(pk, type), 0);
	cr_assert_eq(msgpack_pack_uint64(pk, id), 0);
	cr_assert_eq(msgpack_pack_array(pk, nbody), 0);
}

/* A byte pattern of n bytes (malloc'd, never NULL). */
static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n > 0 ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31u + seed * 7u + (i >> 8));
	return p;
}

/* A string of n copies of c, NUL-terminated (caller frees). */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);

	cr_assert_not_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static bool bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* True iff [q, q + n) lies inside f (or n is 0). */
static bool inside(const void *q, size_t n, const payload *f)
{
	const uint8_t *b = q;

	return n == 0 || (b >= f->p && n <= f->n && b <= f->p + f->n - n);
}

/* A member entry i, with values that use every uint encoding; its strings
 * live in the two buffers (PEER_MAX_ADDR + 1 bytes each). */
static peer_entry mkentry(unsigned i, char *idbuf, char *addrbuf)
{
	static const uint64_t vals[] = { 0, 1, 127, 128, 255, 256, 65535, 65536,
					 UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX };
	size_t nv = sizeof(vals) / sizeof(vals[0]);
	peer_entry e;

	memset(&e, 0, sizeof e);
	snprintf(idbuf, PEER_MAX_ADDR + 1, "node-%u", i);
	snprintf(addrbuf, PEER_MAX_ADDR + 1, "10.0.%u.%u:%u", i / 256, i % 256, 7000 + i);
	e.id = idbuf;
	e.idlen = strlen(idbuf);
	e.addr = addrbuf;
	e.addrlen = strlen(addrbuf);
	e.status = i % 4;
	e.liveness = i % 3;
	e.version = vals[i % nv];
	e.incarnation = vals[(i + 3) % nv];
	e.keys = vals[(i + 5) % nv];
	e.keys_stamp = vals[(i + 7) % nv] ^ i;
	/* every third entry has no actor (the old, 8-element form); of the
	 * others, every other one reports progress (10 elements) */
	e.actor = i % 3 == 2 ? 0 : vals[(i + 9) % nv] | 1;
	if (e.actor != 0 && i % 2 == 1) {
		e.has_progress = true;
		e.progress.seq = vals[(i + 1) % nv];
		e.progress.ack[0] = vals[(i + 2) % nv];
		e.progress.ack[1] = vals[(i + 4) % nv];
		e.progress.sync[0] = vals[(i + 6) % nv];
		e.progress.sync[1] = vals[(i + 8) % nv];
		e.progress.read[0] = vals[(i + 10) % nv];
		e.progress.read[1] = vals[i % nv] ^ i;
	}
	return e;
}

static void assert_entry_eq(const peer_entry *a, const peer_entry *b, const char *what,
			    uint64_t i)
{
	cr_assert(bytes_eq(a->id, a->idlen, b->id, b->idlen), "%s: entry %" PRIu64 " id", what, i);
	cr_assert(bytes_eq(a->addr, a->addrlen, b->addr, b->addrlen), "%s: entry %" PRIu64 " addr",
		  what, i);
	cr_assert_eq(a->status, b->status, "%s: entry %" PRIu64 " status", what, i);
	cr_assert_eq(a->liveness, b->liveness, "%s: entry %" PRIu64 " liveness", what, i);
	cr_assert_eq(a->version, b->version, "%s: entry %" PRIu64 " version", what, i);
	cr_assert_eq(a->incarnation, b->incarnation, "%s: entry %" PRIu64 " incarnation", what, i);
	cr_assert_eq(a->keys, b->keys, "%s: entry %" PRIu64 " keys", what, i);
	cr_assert_eq(a->keys_stamp, b->keys_stamp, "%s: entry %" PRIu64 " keys_stamp", what, i);
	cr_assert_eq(a->actor, b->actor, "%s: entry %" PRIu64 " actor", what, i);
	cr_assert_eq(a->has_progress, b->has_progress, "%s: entry %" PRIu64 " progress", what, i);
	if (a->has_progress)
		cr_assert_eq(memcmp(&a->progress, &b->progress, sizeof(a->progress)), 0,
			     "%s: entry %" PRIu64 " progress", what, i);
}

/* Walk n entries from cur; all must be valid and equal want[0..n). */
static void assert_entries(mpr cur, uint64_t n, const peer_entry *want, const char *what)
{
	uint64_t left = n;
	peer_entry e;

	for (uint64_t i = 0; i < n; i++) {
		int rc = peer_entry_next(&cur, &left, &e);

		cr_assert_eq(rc, 1, "%s: entry %" PRIu64 ": %d", what, i, rc);
		assert_entry_eq(&e, &want[i], what, i);
	}
	cr_assert_eq(left, 0);
	cr_assert_eq(peer_entry_next(&cur, &left, &e), 0, "%s: more entries than declared", what);
	cr_assert_eq(mpr_left(&cur), 0, "%s: bytes after the entries", what);
}

/* Walk whatever entries a decoded message has: each is 1 until the end (0)
 * or a malformed one (DKV_EPROTO), and nothing else; strings stay inside
 * f.  Returns the final code. */
static int walk_entries(mpr cur, uint64_t n, const payload *f)
{
	uint64_t left = n, seen = 0;
	peer_entry e;
	int rc;

	while ((rc = peer_entry_next(&cur, &left, &e)) == 1) {
		cr_assert(inside(e.id, e.idlen, f) && inside(e.addr, e.addrlen, f));
		cr_assert(e.idlen >= 1 && e.idlen <= PEER_MAX_ADDR);
		cr_assert(e.addrlen >= 1 && e.addrlen <= PEER_MAX_ADDR);
		cr_assert(memchr(e.id, 0, e.idlen) == NULL && memchr(e.addr, 0, e.addrlen) == NULL);
		cr_assert(e.status <= 3 && e.liveness <= 2);
		seen++;
	}
	cr_assert(rc == 0 || rc == DKV_EPROTO, "peer_entry_next returned %d", rc);
	cr_assert_leq(seen, n);
	if (rc == 0)
		cr_assert_eq(seen, n);
	return rc;
}

/* --- decoding with checks ------------------------------------------------ */

/* peer_decode(f) into m (which borrows from f): 0 or DKV_EPROTO with a
 * reason, and on success borrowed bytes inside f and fields that fit. */
static int pdec(const payload *f, peer_msg *m)
{
	char err[128];
	int rc;

	memset(err, 'x', sizeof err);
	rc = peer_decode(f->p, f->n, m, err, sizeof err);
	cr_assert(rc == 0 || rc == DKV_EPROTO, "peer_decode returned %d", rc);
	if (rc != 0) {
		cr_assert(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0',
			  "refused without a reason");
		return rc;
	}
	cr_assert(m->type >= PEER_FWD && m->type <= PEER_XDATA, "type %u", m->type);
	cr_assert(memchr(m->from, '\0', sizeof m->from) != NULL);
	cr_assert(inside(m->data, m->datalen, f) && inside(m->key, m->keylen, f));
	switch (m->type) {
	case PEER_SYNC:
		cr_assert_leq(m->nentries, PEER_MAX_ENTRIES);
		break;
	case PEER_HOFF:
	case PEER_XDATA:   /* key, object, ... */
		cr_assert_leq(m->nentries, 2 * PEER_MAX_HOFF);
		cr_assert_eq(m->nentries % 2, 0);
		break;
	case PEER_AAEWANT:
		cr_assert_leq(m->nentries, PEER_MAX_WANT);
		break;
	case PEER_REAPQ:
	case PEER_REAP:
		cr_assert_leq(m->nentries, 2 * PEER_MAX_REAP);
		cr_assert_eq(m->nentries % 2, 0);
		break;
	case PEER_REAPA:
		cr_assert_leq(m->nentries, PEER_MAX_REAP);
		break;
	default:
		cr_assert_eq(m->nentries, 0, "type %u with entries", m->type);
		break;
	}
	if (m->type == PEER_XDATA)   /* the bitmap of at most 65536 partitions */
		cr_assert_leq(m->datalen, XDATA_MAX_BITMAP);
	if (m->type == PEER_XREQ || m->type == PEER_XDATA)
		cr_assert_leq(m->partition, 65535);
	return 0;
}

static int gdec(const payload *f, gossip_msg *g)
{
	int rc = gossip_decode(f->p, f->n, g);

	cr_assert(rc == 0 || rc == DKV_EPROTO, "gossip_decode returned %d", rc);
	if (rc != 0)
		return rc;
	cr_assert(g->kind >= GOSSIP_PING && g->kind <= GOSSIP_PINGREQ, "kind %u", g->kind);
	cr_assert(g->from_id[0] != '\0' && g->from_addr[0] != '\0');
	cr_assert(memchr(g->target, '\0', sizeof g->target) != NULL);
	cr_assert_leq(g->nentries, PEER_MAX_ENTRIES);
	return 0;
}

/* Every field of a equals b's (the id too unless SYNC, whose encoder
 * always writes 0); entries walked side by side. */
static void assert_peer_eq(const peer_msg *a, const peer_msg *b, const char *what)
{
	cr_assert_eq(a->type, b->type, "%s: type %u, not %u", what, a->type, b->type);
	if (a->type != PEER_SYNC)
		cr_assert_eq(a->id, b->id, "%s: id", what);
	cr_assert_str_eq(a->from, b->from, "%s: from", what);
	cr_assert_eq(a->has_data, b->has_data, "%s: has_data", what);
	cr_assert(bytes_eq(a->data, a->datalen, b->data, b->datalen), "%s: data (%zu, %zu bytes)",
		  what, a->datalen, b->datalen);
	cr_assert(bytes_eq(a->key, a->keylen, b->key, b->keylen), "%s: key", what);
	cr_assert_eq(a->code, b->code, "%s: code", what);
	cr_assert_eq(a->flag, b->flag, "%s: flag", what);
	cr_assert_eq(a->nentries, b->nentries, "%s: nentries", what);
	cr_assert_str_eq(a->owner, b->owner, "%s: owner", what);
	cr_assert_eq(a->count, b->count, "%s: count", what);
	cr_assert_eq(a->delay_us, b->delay_us, "%s: delay_us", what);
	cr_assert(a->partition == b->partition && a->first == b->first && a->n == b->n &&
		  a->root == b->root && a->lacking == b->lacking, "%s: aae fields", what);
	if (a->type == PEER_REAPQ || a->type == PEER_REAP) {
		mpr ca = a->entries, cb = b->entries;
		uint64_t la = a->nentries, lb = b->nentries, ha, hb;
		const uint8_t *ka, *kb;
		size_t kla, klb;

		while (peer_reap_next(&ca, &la, &ka, &kla, &ha) == 1) {
			cr_assert_eq(peer_reap_next(&cb, &lb, &kb, &klb, &hb), 1, "%s", what);
			cr_assert(bytes_eq(ka, kla, kb, klb) && ha == hb, "%s: reap pair", what);
		}
	} else if (a->type == PEER_REAPA) {
		mpr ca = a->entries, cb = b->entries;
		uint64_t la = a->nentries, lb = b->nentries;
		bool ya, yb;

		while (peer_reapa_next(&ca, &la, &ya) == 1) {
			cr_assert_eq(peer_reapa_next(&cb, &lb, &yb), 1, "%s", what);
			cr_assert_eq(ya, yb, "%s: answer", what);
		}
	} else if (a->type == PEER_AAEWANT) {
		mpr ca = a->entries, cb = b->entries;
		uint64_t la = a->nentries, lb = b->nentries, ka, kb;

		while (peer_aaewant_next(&ca, &la, &ka) == 1) {
			cr_assert_eq(peer_aaewant_next(&cb, &lb, &kb), 1, "%s", what);
			cr_assert_eq(ka, kb, "%s: key hash", what);
		}
	} else if (a->type == PEER_HOFF || a->type == PEER_XDATA) {
		mpr ca = a->entries, cb = b->entries;
		uint64_t la = a->nentries, lb = b->nentries;
		const uint8_t *ka, *kb, *oa, *ob;
		size_t kla, klb, ola, olb;

		while (peer_hoff_next(&ca, &la, &ka, &kla, &oa, &ola) == 1) {
			cr_assert_eq(peer_hoff_next(&cb, &lb, &kb, &klb, &ob, &olb), 1, "%s", what);
			cr_assert(bytes_eq(ka, kla, kb, klb) && bytes_eq(oa, ola, ob, olb), "%s: pair", what);
		}
	} else if (a->nentries > 0) {
		mpr ca = a->entries, cb = b->entries;
		uint64_t la = a->nentries, lb = b->nentries;
		peer_entry ea, eb;
		int ra, rb;

		for (uint64_t i = 0;; i++) {
			ra = peer_entry_next(&ca, &la, &ea);
			rb = peer_entry_next(&cb, &lb, &eb);
			cr_assert_eq(ra, rb, "%s: entry %" PRIu64 ": %d, %d", what, i, ra, rb);
			if (ra != 1)
				break;
			assert_entry_eq(&ea, &eb, what, i);
		}
	}
}

static void assert_gossip_eq(const gossip_msg *a, const gossip_msg *b, const char *what)
{
	cr_assert_eq(a->kind, b->kind, "%s: kind", what);
	cr_assert_str_eq(a->from_id, b->from_id, "%s: from_id", what);
	cr_assert_str_eq(a->from_addr, b->from_addr, "%s: from_addr", what);
	cr_assert_eq(a->seq, b->seq, "%s: seq", what);
	cr_assert_str_eq(a->target, b->target, "%s: target", what);
	cr_assert_eq(a->nentries, b->nentries, "%s: nentries", what);
	if (a->nentries > 0) {
		mpr ca = a->entries, cb = b->entries;
		uint64_t la = a->nentries, lb = b->nentries;
		peer_entry ea, eb;
		int ra, rb;

		for (uint64_t i = 0;; i++) {
			ra = peer_entry_next(&ca, &la, &ea);
			rb = peer_entry_next(&cb, &lb, &eb);
			cr_assert_eq(ra, rb, "%s: entry %" PRIu64, what, i);
			if (ra != 1)
				break;
			assert_entry_eq(&ea, &eb, what, i);
		}
	}
}

/* Copy the entries of a decoded message into pk; false at the first
 * malformed one (which no encoder can write). */
static bool copy_entries(msgpack_packer *pk, mpr cur, uint64_t n)
{
	peer_entry e;
	int rc;

	while ((rc = peer_entry_next(&cur, &n, &e)) == 1)
		cr_assert_eq(peer_pack_entry(pk, &e), 0);
	return rc == 0;
}

/* m, which decoded, written again with the encoders; false if it is a
 * SYNC with a malformed entry. */
static bool reencode_peer(const peer_msg *m, payload *out)
{
	const uint8_t *d = m->data != NULL ? m->data : (const uint8_t *)"";
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t start;
	int rc = -1;

	msgpack_sbuffer_init(&sb);
	switch (m->type) {
	case PEER_FWD:
		rc = peer_encode_fwd(&sb, m->id, m->from, d, m->datalen);
		break;
	case PEER_FWDREPLY:
		rc = peer_encode_fwdreply(&sb, m->id, m->from, d, m->datalen);
		break;
	case PEER_RGET:
		rc = peer_encode_rget(&sb, m->id, m->from, m->key, m->keylen,
				      m->owner[0] ? m->owner : NULL);
		break;
	case PEER_RVALUE:
		rc = peer_encode_rvalue(&sb, m->id, m->from, m->code, m->has_data ? d : NULL,
					m->datalen);
		break;
	case PEER_RPUT:
		rc = peer_encode_rput(&sb, m->id, m->from, m->key, m->keylen, d, m->datalen,
				      m->flag, m->owner[0] ? m->owner : NULL);
		break;
	case PEER_RACK:
		rc = peer_encode_rack(&sb, m->id, m->from, m->code);
		break;
	case PEER_HOFF: {
		mpr e = m->entries;
		uint64_t left = m->nentries;
		const uint8_t *k, *o;
		size_t kl, ol;

		cr_assert(peer_hoff_begin(&sb, &pk, &start, m->id, m->from, m->owner,
				      (uint32_t)(m->nentries / 2)) == 0);
		while (peer_hoff_next(&e, &left, &k, &kl, &o, &ol) == 1)
			cr_assert(peer_hoff_pair(&pk, k, kl, o, ol) == 0);
		rc = peer_hoff_end(&sb, start);
		break;
	}
	case PEER_XDATA: {
		mpr e = m->entries;
		uint64_t left = m->nentries;
		const uint8_t *k, *o;
		size_t kl, ol;

		cr_assert(peer_xdata_begin(&sb, &pk, &start, m->id, m->from, m->partition, m->code,
				       m->first, m->flag, m->count, m->n, d, m->datalen,
				       (uint32_t)(m->nentries / 2), m->delay_us) == 0);
		while (peer_hoff_next(&e, &left, &k, &kl, &o, &ol) == 1)
			cr_assert(peer_hoff_pair(&pk, k, kl, o, ol) == 0);
		rc = peer_hoff_end(&sb, start);
		break;
	}
	case PEER_XREQ:
		rc = peer_encode_xreq(&sb, m->id, m->from, m->partition, m->first, m->n);
		break;
	case PEER_HACK:
		rc = peer_encode_hack(&sb, m->id, m->from, m->code, m->count, m->delay_us);
		break;
	case PEER_AAEREQ:
		rc = peer_encode_aaereq(&sb, m->id, m->from, m->partition, m->first, m->n,
					m->count, m->root);
		break;
	case PEER_AAESYM:
		rc = peer_encode_aaesym(&sb, m->id, m->from, m->partition, m->code, m->count, m->root,
					d, m->datalen);
		break;
	case PEER_REAPQ:
	case PEER_REAP: {
		mpr e = m->entries;
		uint64_t left = m->nentries, h;
		const uint8_t *k;
		size_t kl;

		cr_assert(peer_reap_begin(&sb, &pk, &start, m->type, m->id, m->from, m->partition,
				      (uint32_t)(m->nentries / 2)) == 0);
		while (peer_reap_next(&e, &left, &k, &kl, &h) == 1)
			cr_assert(peer_reap_pair(&pk, k, kl, h) == 0);
		rc = peer_reap_end(&sb, start);
		break;
	}
	case PEER_REAPA: {
		mpr e = m->entries;
		uint64_t left = m->nentries;
		bool yes;

		cr_assert(peer_reapa_begin(&sb, &pk, &start, m->id, m->from, m->code,
				       (uint32_t)m->nentries) == 0);
		while (peer_reapa_next(&e, &left, &yes) == 1)
			cr_assert((yes ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) == 0);
		rc = peer_reap_end(&sb, start);
		break;
	}
	case PEER_AAEWANT: {
		mpr e = m->entries;
		uint64_t left = m->nentries, kh, *khs = calloc(m->nentries + 1, sizeof(*khs));
		size_t k = 0;

		cr_assert(khs != NULL);
		while (peer_aaewant_next(&e, &left, &kh) == 1)
			khs[k++] = kh;
		rc = peer_encode_aaewant(&sb, m->id, m->from, m->partition, m->flag, m->lacking,
					 khs, k);
		free(khs);
		break;
	}
	case PEER_SYNC:
		cr_assert_eq(peer_sync_begin(&sb, &pk, &start, m->from, m->flag,
					     (uint32_t)m->nentries, m->chain != NULL), 0);
		if (!copy_entries(&pk, m->entries, m->nentries)) {
			msgpack_sbuffer_destroy(&sb);
			return false;
		}
		if (m->chain != NULL)
			cr_assert_eq(msgpack_sbuffer_write(&sb, (const char *)m->chain, m->chainlen), 0);
		rc = peer_sync_end(&sb, start);
		break;
	default:
		cr_assert_fail("decoded unknown type %u", m->type);
	}
	cr_assert_eq(rc, 0, "re-encoding type %u: %d", m->type, rc);
	*out = take(&sb);
	return true;
}

static bool reencode_gossip(const gossip_msg *g, payload *out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cr_assert_eq(gossip_begin(&pk, g->kind, g->from_id, g->from_addr, g->seq,
				  g->target[0] != '\0' ? g->target : NULL, (uint32_t)g->nentries), 0);
	if (!copy_entries(&pk, g->entries, g->nentries)) {
		msgpack_sbuffer_destroy(&sb);
		return false;
	}
	*out = take_raw(&sb);
	return true;
}

/* Whatever n bytes at b are, every decoder survives them; a peer frame
 * that decodes is a peer frame to peer_is_peer_frame, and re-encoded it
 * decodes to the same fields (the pairs, hashes and answers of HOFF,
 * XDATA, AAEWANT and REAP* too: only a SYNC's member entries are walked
 * with peer_entry_next, as fuzz_peer does).  Returns peer_decode's code;
 * *grc (if not NULL) gets gossip_decode's. */
static int check_bytes(const uint8_t *b, size_t n, int *grc)
{
	payload f = mkpayload(b, n), again;
	uint32_t type = 0;
	uint64_t id = 0;
	bool is_peer;
	gossip_msg g, g2;
	peer_msg m, m2;
	int rc, rc2;

	is_peer = peer_is_peer_frame(f.p, f.n, &type, &id);
	rc = pdec(&f, &m);
	if (rc == 0) {
		cr_assert(is_peer, "decoded, but not a peer frame");
		cr_assert(type == m.type && id == m.id);
		if (m.type != PEER_SYNC || walk_entries(m.entries, m.nentries, &f) == 0) {
			cr_assert(reencode_peer(&m, &again));
			rc2 = pdec(&again, &m2);
			cr_assert_eq(rc2, 0, "re-encoded type %u refused", m.type);
			assert_peer_eq(&m2, &m, "re-encoded");
			free(again.p);
		}
	}
	rc2 = gdec(&f, &g);
	if (rc2 == 0 && walk_entries(g.entries, g.nentries, &f) == 0) {
		cr_assert(reencode_gossip(&g, &again));
		cr_assert_eq(gdec(&again, &g2), 0, "re-encoded datagram refused");
		assert_gossip_eq(&g2, &g, "re-encoded gossip");
		free(again.p);
	}
	if (grc != NULL)
		*grc = rc2;
	free(f.p);
	return rc;
}

/* --- samples of every kind ------------------------------------------------ */

#define NSAMPLES 14

/* Valid peer frame i (of NSAMPLES), small enough to cut and flip. */
static payload peer_sample(int i)
{
	static const uint8_t obj[] = { 0x93, 0x01, 0x02, 0xc4, 0x03, 'a', 'b', 'c' };
	char idb[4][PEER_MAX_ADDR + 1], adb[4][PEER_MAX_ADDR + 1];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	peer_entry e;
	size_t start;

	msgpack_sbuffer_init(&sb);
	switch (i) {
	case 0:
		cr_assert_eq(peer_encode_fwd(&sb, 1, "10.0.0.1:7000", obj, sizeof obj), 0);
		break;
	case 1:
		cr_assert_eq(peer_encode_fwdreply(&sb, 300, "h:1", obj, sizeof obj), 0);
		break;
	case 2:
		cr_assert_eq(peer_encode_rget(&sb, 70000, "h:2", "key", 3, NULL), 0);
		break;
	case 3:
		cr_assert_eq(peer_encode_rvalue(&sb, UINT64_MAX, "h:3", 0, obj, sizeof obj), 0);
		break;
	case 4:
		cr_assert_eq(peer_encode_rvalue(&sb, 5, "h:4", 0, NULL, 0), 0);
		break;
	case 5:
		cr_assert_eq(peer_encode_rput(&sb, 6, "h:5", "k", 1, obj, sizeof obj, true, NULL), 0);
		break;
	case 6:
		cr_assert_eq(peer_encode_rput(&sb, 7, "h:6", "kk", 2, "", 0, false, NULL), 0);
		break;
	case 7:
		cr_assert_eq(peer_encode_rack(&sb, 8, "h:7", 6), 0);
		break;
	case 8:
		cr_assert_eq(peer_sync_begin(&sb, &pk, &start, "h:8", true, 0, false), 0);
		cr_assert_eq(peer_sync_end(&sb, start), 0);
		break;
	case 9:
		cr_assert_eq(peer_sync_begin(&sb, &pk, &start, "h:9", false, 3, false), 0);
		for (unsigned k = 0; k < 3; k++) {
			e = mkentry(k * 5 + 1, idb[k], adb[k]);
			cr_assert_eq(peer_pack_entry(&pk, &e), 0);
		}
		cr_assert_eq(peer_sync_end(&sb, start), 0);
		break;
	case 10:
		cr_assert_eq(peer_encode_fwd(&sb, 0, "f", NULL, 0), 0);
		break;
	case 11:
		cr_assert_eq(peer_encode_xreq(&sb, 11, "h:11", 300, UINT64_C(1) << 63, 65536), 0);
		break;
	case 12: {   /* two pairs, a 4-byte bitmap (partitions 1, 9 and 31 empty) */
		static const uint8_t empty[] = { 0x02, 0x02, 0x00, 0x80 };

		cr_assert_eq(peer_xdata_begin(&sb, &pk, &start, 12, "h:12", 7, 0, 0xabcdef0123ull,
					      false, 5, 700, empty, sizeof empty, 2, 0), 0);
		cr_assert_eq(peer_hoff_pair(&pk, "k1", 2, obj, sizeof obj), 0);
		cr_assert_eq(peer_hoff_pair(&pk, "key-2", 5, "", 0), 0);
		cr_assert_eq(peer_hoff_end(&sb, start), 0);
		break;
	}
	case 13:   /* an error: no pairs, no bitmap */
		cr_assert_eq(peer_xdata_begin(&sb, &pk, &start, 13, "h:13", 65535,
					      PROTO_ERR_OVERLOAD, 0, true, 0, 0, NULL, 0, 0, 0), 0);
		cr_assert_eq(peer_hoff_end(&sb, start), 0);
		break;
	default:
		cr_assert_fail("no sample %d", i);
	}
	return take(&sb);
}

#define NGSAMPLES 3

static payload gossip_sample(int i)
{
	char idb[3][PEER_MAX_ADDR + 1], adb[3][PEER_MAX_ADDR + 1];
	static const char *const targets[] = { NULL, NULL, "10.0.0.9:7000" };
	msgpack_sbuffer sb;
	msgpack_packer pk;
	peer_entry e;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cr_assert_eq(gossip_begin(&pk, (uint32_t)i + 1, "n1", "10.0.0.1:7000", (uint64_t)i * 1000,
				  targets[i], (uint32_t)i), 0);
	for (int k = 0; k < i; k++) {
		e = mkentry((unsigned)k + 2, idb[k], adb[k]);
		cr_assert_eq(peer_pack_entry(&pk, &e), 0);
	}
	return take_raw(&sb);
}

/* Decode f (which must be valid) and check it against want. */
static void expect_peer(const payload *f, const peer_msg *want, const peer_entry *entries,
			const char *what)
{
	peer_msg m;
	int rc;

	rc = pdec(f, &m);
	cr_assert_eq(rc, 0, "%s: refused", what);
	cr_assert_eq(m.type, want->type, "%s: type", what);
	cr_assert_eq(m.id, want->id, "%s: id", what);
	cr_assert_str_eq(m.from, want->from, "%s: from", what);
	cr_assert_eq(m.has_data, want->has_data, "%s: has_data", what);
	cr_assert(bytes_eq(m.data, m.datalen, want->data, want->datalen), "%s: data", what);
	cr_assert(bytes_eq(m.key, m.keylen, want->key, want->keylen), "%s: key", what);
	cr_assert_eq(m.code, want->code, "%s: code", what);
	cr_assert_eq(m.flag, want->flag, "%s: flag", what);
	cr_assert_eq(m.nentries, want->nentries, "%s: nentries", what);
	assert_entries(m.entries, m.nentries, entries, what);
	/* and it is a fixed point of the encoders */
	cr_assert_eq(check_bytes(f->p, f->n, NULL), 0);
}

static peer_msg want_msg(uint32_t type, uint64_t id, const char *from)
{
	peer_msg m;

	memset(&m, 0, sizeof m);
	m.type = type;
	m.id = id;
	cr_assert_leq(strlen(from), PEER_MAX_ADDR);
	strcpy(m.from, from);
	return m;
}

/* --- round trips --------------------------------------------------------- */

Test(peer, golden_bytes)
{
	static const uint8_t rack[] = { 0x00, 0x00, 0x00, 0x09, 0x94, 0x01, 0xcc, 0x85, 0x07,
					0x92, 0xa1, 'a', 0x00 };
	static const uint8_t ping[] = { 0x97, 0x01, 0x01, 0xa2, 'n', '1', 0xa3, 'a', ':', '1',
					0x05, 0xc0, 0x90 };
	msgpack_sbuffer sb;
	msgpack_packer pk;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_encode_rack(&sb, 7, "a", 0), 0);
	cr_assert(bytes_eq(sb.data, sb.size, rack, sizeof rack), "RACK bytes changed");
	msgpack_sbuffer_destroy(&sb);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cr_assert_eq(gossip_begin(&pk, GOSSIP_PING, "n1", "a:1", 5, NULL, 0), 0);
	cr_assert(bytes_eq(sb.data, sb.size, ping, sizeof ping), "PING bytes changed");
	msgpack_sbuffer_destroy(&sb);
}

Test(peer, round_trip_fwd_and_fwdreply)
{
	static const uint64_t ids[] = { 0, 1, 127, 128, 65536, UINT64_MAX };
	static const size_t lens[] = { 0, 1, 31, 32, 255, 256, 65535, 65536, MIB };
	uint8_t *blob = pattern(MIB, 3);
	char *longaddr = repeat('a', PEER_MAX_ADDR);
	const char *froms[] = { "10.0.0.1:7000", "x", longaddr };

	for (int fr = 0; fr < 2; fr++)
		for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
			for (size_t k = 0; k < 3; k++) {
				uint32_t type = fr ? PEER_FWDREPLY : PEER_FWD;
				uint64_t id = ids[(l + k) % (sizeof ids / sizeof ids[0])];
				const void *p = lens[l] == 0 && k == 0 ? NULL : blob;
				peer_msg want = want_msg(type, id, froms[k]);
				msgpack_sbuffer sb;
				payload f;

				msgpack_sbuffer_init(&sb);
				cr_assert_eq(fr ? peer_encode_fwdreply(&sb, id, froms[k], p, lens[l])
					     : peer_encode_fwd(&sb, id, froms[k], p, lens[l]), 0);
				f = take(&sb);
				want.data = blob;
				want.datalen = lens[l];
				want.has_data = true;
				expect_peer(&f, &want, NULL, fr ? "FWDREPLY" : "FWD");
				free(f.p);
			}
	free(longaddr);
	free(blob);
}

Test(peer, round_trip_rget)
{
	static const size_t lens[] = { 1, 2, 255, 256, 65536, MIB };
	uint8_t *key = pattern(MIB, 5);

	for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
		peer_msg want = want_msg(PEER_RGET, 1000 + l, "node-b:7001");
		msgpack_sbuffer sb;
		payload f;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(peer_encode_rget(&sb, want.id, want.from, key, lens[l], NULL), 0);
		f = take(&sb);
		want.key = key;
		want.keylen = lens[l];
		expect_peer(&f, &want, NULL, "RGET");
		free(f.p);
	}
	free(key);
}

Test(peer, round_trip_rvalue)
{
	static const uint32_t codes[] = { 0, 1, 6, 127, 128, 65536, UINT32_MAX };
	uint8_t *obj = pattern(MIB, 9);

	for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++)
		for (int shape = 0; shape < 4; shape++) {
			/* not found, empty object, small object, 1 MiB object */
			static const size_t lens[] = { 0, 0, 17, MIB };
			peer_msg want = want_msg(PEER_RVALUE, 40 + c, "r:1");
			msgpack_sbuffer sb;
			payload f;

			msgpack_sbuffer_init(&sb);
			cr_assert_eq(peer_encode_rvalue(&sb, want.id, want.from, codes[c],
							shape == 0 ? NULL : obj, lens[shape]), 0);
			f = take(&sb);
			want.code = codes[c];
			want.has_data = shape != 0;
			want.data = obj;
			want.datalen = lens[shape];
			expect_peer(&f, &want, NULL, shape == 0 ? "RVALUE nil" : "RVALUE");
			free(f.p);
		}
	free(obj);
}

Test(peer, rvalue_with_nil_object_is_not_found)
{
	payload f = peer_sample(4);
	peer_msg m;

	/* ... [from, 0, nil] */
	cr_assert_eq(f.p[f.n - 1], 0xc0);
	cr_assert_eq(pdec(&f, &m), 0);
	cr_assert_eq(m.type, PEER_RVALUE);
	cr_assert_eq(m.code, 0);
	cr_assert_not(m.has_data);
	cr_assert_null(m.data);
	cr_assert_eq(m.datalen, 0);
	free(f.p);
}

Test(peer, round_trip_rput)
{
	static const size_t klens[] = { 1, 3, 1024 };
	static const size_t olens[] = { 0, 1, 300, MIB };
	uint8_t *key = pattern(1024, 1), *obj = pattern(MIB, 2);

	for (size_t k = 0; k < 3; k++)
		for (size_t o = 0; o < 4; o++)
			for (int ack = 0; ack < 2; ack++) {
				peer_msg want = want_msg(PEER_RPUT, k * 100 + o, "p:9");
				msgpack_sbuffer sb;
				payload f;

				msgpack_sbuffer_init(&sb);
				cr_assert_eq(peer_encode_rput(&sb, want.id, want.from, key, klens[k],
							      obj, olens[o], ack, NULL), 0);
				f = take(&sb);
				want.key = key;
				want.keylen = klens[k];
				want.data = obj;
				want.datalen = olens[o];
				want.has_data = true;
				want.flag = ack;
				expect_peer(&f, &want, NULL, "RPUT");
				free(f.p);
			}
	free(key);
	free(obj);
}

Test(peer, round_trip_rack)
{
	static const uint32_t codes[] = { 0, 4, 7, 255, 256, UINT32_MAX };

	for (size_t c = 0; c < sizeof codes / sizeof codes[0]; c++) {
		peer_msg want = want_msg(PEER_RACK, UINT64_MAX - c, "a:2");
		msgpack_sbuffer sb;
		payload f;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(peer_encode_rack(&sb, want.id, want.from, codes[c]), 0);
		f = take(&sb);
		want.code = codes[c];
		expect_peer(&f, &want, NULL, "RACK");
		free(f.p);
	}
}

/* A SYNC of n entries mkentry(0..n), with entry 0 given 255-byte strings. */
static void sync_round_trip(uint32_t n, bool reply)
{
	char (*idb)[PEER_MAX_ADDR + 1] = calloc(n + 1, sizeof *idb);
	char (*adb)[PEER_MAX_ADDR + 1] = calloc(n + 1, sizeof *adb);
	peer_entry *es = calloc(n + 1, sizeof *es);
	peer_msg want = want_msg(PEER_SYNC, 0, "seed:7000");
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t start;
	payload f;

	cr_assert(idb != NULL && adb != NULL && es != NULL);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_sync_begin(&sb, &pk, &start, want.from, reply, n, false), 0);
	for (uint32_t i = 0; i < n; i++) {
		es[i] = mkentry(i, idb[i], adb[i]);
		if (i == 0) {
			memset(idb[0], 'i', PEER_MAX_ADDR);
			memset(adb[0], 'a', PEER_MAX_ADDR);
			idb[0][PEER_MAX_ADDR] = adb[0][PEER_MAX_ADDR] = '\0';
			es[0].idlen = es[0].addrlen = PEER_MAX_ADDR;
		}
		cr_assert_eq(peer_pack_entry(&pk, &es[i]), 0);
	}
	cr_assert_eq(peer_sync_end(&sb, start), 0);
	f = take(&sb);
	want.flag = reply;
	want.nentries = n;
	expect_peer(&f, &want, es, "SYNC");
	free(f.p);
	free(es);
	free(adb);
	free(idb);
}

Test(peer, round_trip_sync)
{
	sync_round_trip(0, false);
	sync_round_trip(0, true);
	sync_round_trip(1, true);
	sync_round_trip(100, false);
	sync_round_trip(100, true);
}

/* A SYNC of two entries followed by `epochs`, or by the raw bytes
 * raw[0..rawlen) in the epochs' place when raw is not NULL. */
static payload sync_with(const epochs *h, const uint8_t *raw, size_t rawlen)
{
	char idb[2][PEER_MAX_ADDR + 1], adb[2][PEER_MAX_ADDR + 1];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t start;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_sync_begin(&sb, &pk, &start, "s:1", true, 2, true), 0);
	for (unsigned i = 0; i < 2; i++) {
		peer_entry e = mkentry(i, idb[i], adb[i]);

		cr_assert_eq(peer_pack_entry(&pk, &e), 0);
	}
	if (raw != NULL)
		cr_assert_eq(msgpack_sbuffer_write(&sb, (const char *)raw, rawlen), 0);
	else
		cr_assert_eq(epochs_pack(h, &pk), 0);
	cr_assert_eq(peer_sync_end(&sb, start), 0);
	return take(&sb);
}

Test(peer, sync_carries_the_epochs)
{
	static const char *const ids[] = { "a:1", "b:1", "c:1" };
	static const uint8_t not_array[] = { 0x05 }, nil[] = { 0xc0 },
			     cut[] = { 0x92, 0x94 }, map[] = { 0x80 };
	epochs *h, *back;
	peer_msg m;
	payload f;
	size_t used;
	bool made;

	cr_assert_eq(epochs_new(&h, 64, 3), 0);
	cr_assert_eq(epochs_propose(h, ids, 3, &made), 0);
	cr_assert_eq(epochs_propose(h, ids, 2, &made), 0);
	f = sync_with(h, NULL, 0);
	cr_assert_eq(pdec(&f, &m), 0);
	cr_assert_eq(m.nentries, 2);
	cr_assert_not_null(m.chain);
	cr_assert(inside(m.chain, m.chainlen, &f));
	cr_assert_eq(epochs_new(&back, 64, 3), 0);
	cr_assert_eq(epochs_unpack(back, m.chain, m.chainlen, &used), 0);
	cr_assert_eq(used, m.chainlen);
	cr_assert_eq(epochs_count(back), 2);
	cr_assert_eq(epochs_newest(back).digest, epochs_newest(h).digest);
	{   /* the entries end where the epochs begin */
		uint64_t left = m.nentries;
		peer_entry e;

		while (peer_entry_next(&m.entries, &left, &e) == 1)
			;
		cr_assert_eq(mpr_left(&m.entries), 0);
	}
	free(f.p);
	/* a SYNC without epochs says so */
	{
		msgpack_sbuffer sb;
		msgpack_packer pk;
		size_t start;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(peer_sync_begin(&sb, &pk, &start, "s:1", false, 0, false), 0);
		cr_assert_eq(peer_sync_end(&sb, start), 0);
		f = take(&sb);
		cr_assert_eq(pdec(&f, &m), 0);
		cr_assert_null(m.chain);
		cr_assert_eq(m.chainlen, 0);
		free(f.p);
	}
	/* anything but a whole array in the epochs' place is refused */
	{
		const uint8_t *bad[] = { not_array, nil, map, cut };
		const size_t blen[] = { sizeof not_array, sizeof nil, sizeof map, sizeof cut };

		for (size_t i = 0; i < 4; i++) {
			f = sync_with(NULL, bad[i], blen[i]);
			cr_assert_eq(pdec(&f, &m), DKV_EPROTO, "bad epochs %zu", i);
			free(f.p);
		}
	}
	epochs_free(h);
	epochs_free(back);
}

Test(peer, an_entry_with_bad_progress_is_refused)
{
	static const uint8_t head[] = {
		0x9a, 0xa1, 'a', 0xa1, 'b', 0x01, 0x02, 0x03, 0x00, 0x04, 0x05, 0x06,
	};
	static const uint8_t progs[][9] = {
		{ 0x96, 1, 2, 3, 4, 5, 6 },            /* six elements */
		{ 0x98, 1, 2, 3, 4, 5, 6, 7, 8 },      /* eight */
		{ 0x97, 1, 2, 3, 4, 5, 6, 0xff },      /* a negative one */
		{ 0x97, 1, 2, 3, 4, 5, 6, 0xc0 },      /* nil */
		{ 0xc0 },                              /* no array */
	};
	static const size_t plen[] = { 7, 9, 8, 8, 1 };
	static const uint8_t good[] = { 0x97, 1, 2, 3, 4, 5, 6, 7 };
	uint8_t buf[64];
	peer_entry e;

	for (size_t k = 0; k <= sizeof(progs) / sizeof(progs[0]); k++) {
		const uint8_t *pr = k < 5 ? progs[k] : good;
		size_t n = k < 5 ? plen[k] : sizeof good;
		uint64_t left = 1;
		mpr r;
		int rc;

		memcpy(buf, head, sizeof head);
		memcpy(buf + sizeof head, pr, n);
		mpr_init(&r, buf, sizeof head + n, DKV_EPROTO);
		rc = peer_entry_next(&r, &left, &e);
		if (k < 5) {
			cr_assert_eq(rc, DKV_EPROTO, "progress %zu", k);
		} else {
			cr_assert_eq(rc, 1);
			cr_assert(e.has_progress);
			cr_assert_eq(e.actor, 6);
			cr_assert_eq(e.progress.seq, 1);
			cr_assert_eq(e.progress.read[1], 7);
		}
	}
	/* a tenth element needs the actor before it: actor 0 is refused */
	memcpy(buf, head, sizeof head);
	buf[sizeof head - 1] = 0x00;
	memcpy(buf + sizeof head, good, sizeof good);
	{
		uint64_t left = 1;
		mpr r;

		mpr_init(&r, buf, sizeof head + sizeof good, DKV_EPROTO);
		cr_assert_eq(peer_entry_next(&r, &left, &e), DKV_EPROTO);
	}
}

Test(peer, sync_of_max_entries_decodes)
{
	sync_round_trip(PEER_MAX_ENTRIES, true);
}

static void gossip_round_trip(uint32_t kind, const char *id, const char *addr, uint64_t seq,
			      const char *target, uint32_t n)
{
	char (*idb)[PEER_MAX_ADDR + 1] = calloc(n + 1, sizeof *idb);
	char (*adb)[PEER_MAX_ADDR + 1] = calloc(n + 1, sizeof *adb);
	peer_entry *es = calloc(n + 1, sizeof *es);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	gossip_msg g;
	payload f;

	cr_assert(idb != NULL && adb != NULL && es != NULL);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cr_assert_eq(gossip_begin(&pk, kind, id, addr, seq, target, n), 0);
	for (uint32_t i = 0; i < n; i++) {
		es[i] = mkentry(i * 3, idb[i], adb[i]);
		cr_assert_eq(peer_pack_entry(&pk, &es[i]), 0);
	}
	f = take_raw(&sb);
	cr_assert_eq(gdec(&f, &g), 0, "gossip kind %u refused", kind);
	cr_assert_eq(g.kind, kind);
	cr_assert_str_eq(g.from_id, id);
	cr_assert_str_eq(g.from_addr, addr);
	cr_assert_eq(g.seq, seq);
	cr_assert_str_eq(g.target, target != NULL ? target : "");
	cr_assert_eq(g.nentries, n);
	assert_entries(g.entries, g.nentries, es, "gossip");
	{
		int grc;

		cr_assert_eq(check_bytes(f.p, f.n, &grc), DKV_EPROTO);
		cr_assert_eq(grc, 0);
	}
	free(f.p);
	free(es);
	free(adb);
	free(idb);
}

Test(peer, round_trip_gossip)
{
	char *l1 = repeat('i', PEER_MAX_ADDR), *l2 = repeat('a', PEER_MAX_ADDR);
	char *l3 = repeat('t', PEER_MAX_ADDR);

	gossip_round_trip(GOSSIP_PING, "n1", "10.0.0.1:7000", 0, NULL, 0);
	gossip_round_trip(GOSSIP_PING, "n1", "10.0.0.1:7000", 1, NULL, 8);
	gossip_round_trip(GOSSIP_ACK, "n2", "h:2", UINT64_MAX, NULL, 100);
	gossip_round_trip(GOSSIP_PINGREQ, "n3", "h:3", 12345, "10.0.0.9:7000", 3);
	gossip_round_trip(GOSSIP_PINGREQ, l1, l2, (uint64_t)UINT32_MAX + 1, l3, 1);
	gossip_round_trip(GOSSIP_ACK, "n", "a", 0, NULL, PEER_MAX_ENTRIES);
	free(l3);
	free(l2);
	free(l1);
}

Test(peer, encoders_append_whole_frames)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t at = 0, start, count = 0;
	static const uint32_t order[] = { PEER_RACK, PEER_FWD, PEER_SYNC, PEER_RGET,
					  PEER_RVALUE, PEER_RPUT, PEER_FWDREPLY, PEER_XREQ,
					  PEER_XDATA };

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_encode_rack(&sb, 1, "a", 2), 0);
	cr_assert_eq(peer_encode_fwd(&sb, 2, "b", "xyz", 3), 0);
	cr_assert_eq(peer_sync_begin(&sb, &pk, &start, "c", true, 0, false), 0);
	cr_assert_gt(start, 0, "SYNC begins where the buffer ended");
	cr_assert_eq(peer_sync_end(&sb, start), 0);
	cr_assert_eq(peer_encode_rget(&sb, 4, "d", "k", 1, NULL), 0);
	cr_assert_eq(peer_encode_rvalue(&sb, 5, "e", 0, NULL, 0), 0);
	cr_assert_eq(peer_encode_rput(&sb, 6, "f", "k", 1, "v", 1, true, NULL), 0);
	cr_assert_eq(peer_encode_fwdreply(&sb, 7, "g", "r", 1), 0);
	cr_assert_eq(peer_encode_xreq(&sb, 8, "h", 1, 2, 3), 0);
	{
		size_t before = sb.size;

		cr_assert_eq(peer_xdata_begin(&sb, &pk, &start, 9, "i", 1, 0, 2, true, 3, 4, "\x01", 1,
					      1, 0), 0);
		cr_assert_eq(start, before, "XDATA begins where the buffer ended");
		cr_assert_eq(peer_hoff_pair(&pk, "k", 1, "v", 1), 0);
		cr_assert_eq(peer_hoff_end(&sb, start), 0);
	}
	while (at < sb.size) {
		size_t len;
		payload f;
		peer_msg m;

		cr_assert_geq(sb.size - at, PROTO_HEADER_SIZE);
		len = proto_frame_length((const uint8_t *)sb.data + at);
		cr_assert_leq(len, sb.size - at - PROTO_HEADER_SIZE);
		f = mkpayload((const uint8_t *)sb.data + at + PROTO_HEADER_SIZE, len);
		cr_assert_eq(pdec(&f, &m), 0, "frame %zu", count);
		cr_assert_eq(m.type, order[count]);
		cr_assert_eq(m.from[0], 'a' + (char)count);
		free(f.p);
		at += PROTO_HEADER_SIZE + len;
		count++;
	}
	cr_assert_eq(count, 9);
	msgpack_sbuffer_destroy(&sb);
}

/* --- peer_is_peer_frame ---------------------------------------------------- */

Test(peer, is_peer_frame_for_every_peer_type)
{
	uint32_t seen = 0;   /* bit t - PEER_FWD: a sample of type t */

	for (int i = 0; i < NSAMPLES; i++) {
		payload f = peer_sample(i);
		uint32_t type = 0;
		uint64_t id = 0;
		peer_msg m;

		cr_assert_eq(pdec(&f, &m), 0);
		cr_assert(peer_is_peer_frame(f.p, f.n, &type, &id), "sample %d", i);
		cr_assert_eq(type, m.type);
		cr_assert_eq(id, m.id);
		cr_assert_geq(type, 128);
		cr_assert_leq(type, PEER_XDATA);
		seen |= UINT32_C(1) << (type - PEER_FWD);
		free(f.p);
	}
	/* the samples (which the truncation, trailing-byte and bit-flip tests
	 * use too) have the frames of a node's requests, and the transfer's */
	{
		static const uint32_t want[] = { PEER_FWD, PEER_FWDREPLY, PEER_RGET, PEER_RVALUE,
						 PEER_RPUT, PEER_RACK, PEER_SYNC, PEER_XREQ,
						 PEER_XDATA };

		for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
			cr_assert(seen & (UINT32_C(1) << (want[k] - PEER_FWD)), "no sample of type %u",
				  want[k]);
	}
}

Test(peer, is_peer_frame_false_for_client_frames_and_garbage)
{
	msgpack_sbuffer sb;
	uint32_t type = 0;
	uint64_t id = 0;
	payload f;
	build b;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_ping(&sb, 42), 0);
	f = take(&sb);
	cr_assert_not(peer_is_peer_frame(f.p, f.n, &type, &id));
	free(f.p);

	/* types up to 127 are the client's; 128 and up (to UINT32_MAX) peers' */
	for (uint64_t t = 0; t <= 300; t++) {
		msgpack_packer *pk = bopen(&b);

		phdr(pk, PROTO_VERSION, t, 9, 0);
		f = bclose(&b);
		cr_assert_eq(peer_is_peer_frame(f.p, f.n, &type, &id), t >= 128, "type %" PRIu64, t);
		if (t >= 128)
			cr_assert(type == t && id == 9);
		free(f.p);
	}
	cr_assert(peer_is_peer_frame((const uint8_t[]){ 0x94, 0x01, 0xce, 0xff, 0xff, 0xff, 0xff,
							0x00, 0xc0 }, 9, &type, &id));
	cr_assert_eq(type, UINT32_MAX);
	/* a type past 32 bits must not wrap to 128 */
	cr_assert_not(peer_is_peer_frame((const uint8_t[]){ 0x94, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0,
							    0x80, 0x00, 0xc0 }, 13, &type, &id));
	/* other versions, shapes and garbage */
	cr_assert_not(peer_is_peer_frame(NULL, 0, &type, &id));
	cr_assert_not(peer_is_peer_frame((const uint8_t[]){ 0x94, 0x02, 0xcc, 0x80, 0x00, 0xc0 },
					 6, &type, &id));
	cr_assert_not(peer_is_peer_frame((const uint8_t[]){ 0x93, 0x01, 0xcc, 0x80, 0x00 }, 5,
					 &type, &id));
	cr_assert_not(peer_is_peer_frame((const uint8_t[]){ 0x94, 0x01, 0xcc, 0x80 }, 4, &type,
					 &id));
	cr_assert_not(peer_is_peer_frame((const uint8_t[]){ 0x94, 0x01, 0xd0, 0x80, 0x00, 0xc0 },
					 6, &type, &id));
	cr_assert_not(peer_is_peer_frame((const uint8_t[]){ 0xff, 0xff, 0xff }, 3, &type, &id));
}

/* --- garbage, truncations, flips, trailing bytes ---------------------------- */

Test(peer, random_garbage_is_survived)
{
	/* three mixes: pure noise; a peer frame's header (any type) then
	 * noise; a gossip datagram's head then noise */
	uint64_t s = 0x9e3779b97f4a7c15ull;
	uint8_t buf[256];
	size_t accepted = 0, gaccepted = 0;

	for (int mix = 0; mix < 3; mix++)
		for (int i = 0; i < (int)test_reps(1000, 100); i++) {
			size_t n = rnd(&s) % sizeof buf, at = 0;
			int grc;

			for (size_t k = 0; k < n; k++)
				buf[k] = (uint8_t)rnd(&s);
			if (mix == 1 && n >= 6) {
				buf[at++] = 0x94;
				buf[at++] = 0x01;
				buf[at++] = 0xcc;
				buf[at++] = (uint8_t)(PEER_FWD + rnd(&s) % (PEER_XDATA - PEER_FWD + 1));
				buf[at++] = (uint8_t)(rnd(&s) % 128);
				buf[at++] = (uint8_t)(0x92 + rnd(&s) % 8);
			} else if (mix == 2 && n >= 3) {
				buf[at++] = 0x97;
				buf[at++] = 0x01;
				buf[at++] = (uint8_t)(1 + rnd(&s) % 3);
			}
			if (check_bytes(n > 0 ? buf : NULL, n, &grc) == 0)
				accepted++;
			if (grc == 0)
				gaccepted++;
		}
	/* accepted ones passed the oracle in check_bytes(); noise that long
	 * is never a whole valid message */
	cr_assert_eq(accepted, 0);
	cr_assert_eq(gaccepted, 0);
}

Test(peer, every_truncation_is_refused)
{
	for (int i = 0; i < NSAMPLES; i++) {
		payload f = peer_sample(i);

		for (size_t len = 0; len < f.n; len++) {
			payload c = mkpayload(f.p, len);
			peer_msg m;

			cr_assert_eq(pdec(&c, &m), DKV_EPROTO, "sample %d cut at %zu of %zu", i,
				     len, f.n);
			free(c.p);
		}
		free(f.p);
	}
	for (int i = 0; i < NGSAMPLES; i++) {
		payload f = gossip_sample(i);

		for (size_t len = 0; len < f.n; len++) {
			payload c = mkpayload(f.p, len);
			gossip_msg g;

			cr_assert_eq(gdec(&c, &g), DKV_EPROTO, "gossip %d cut at %zu of %zu", i,
				     len, f.n);
			free(c.p);
		}
		free(f.p);
	}
}

Test(peer, trailing_bytes_are_refused)
{
	static const uint8_t tails[] = { 0x00, 0xc0, 0x90, 0x7f, 0xc3 };

	for (int i = 0; i < NSAMPLES + NGSAMPLES; i++) {
		payload f = i < NSAMPLES ? peer_sample(i) : gossip_sample(i - NSAMPLES);
		uint8_t *b = malloc(f.n + 2);

		cr_assert_not_null(b);
		memcpy(b, f.p, f.n);
		for (size_t t = 0; t < sizeof tails; t++) {
			int grc;

			b[f.n] = tails[t];
			b[f.n + 1] = tails[(t + 1) % sizeof tails];
			cr_assert_eq(check_bytes(b, f.n + 1, &grc), DKV_EPROTO, "sample %d + 1", i);
			cr_assert_eq(grc, DKV_EPROTO);
			cr_assert_eq(check_bytes(b, f.n + 2, &grc), DKV_EPROTO, "sample %d + 2", i);
			cr_assert_eq(grc, DKV_EPROTO);
		}
		free(b);
		free(f.p);
	}
}

Test(peer, every_single_bit_flip_is_survived)
{
	size_t accepted = 0, refused = 0;

	for (int i = 0; i < NSAMPLES + NGSAMPLES; i++) {
		payload f = i < NSAMPLES ? peer_sample(i) : gossip_sample(i - NSAMPLES);

		/* every bit; under valgrind every 7th (a prime: all positions
		 * within a byte still come up) */
		for (size_t bit = 0; bit < f.n * 8; bit += test_reps(1, 7)) {
			int grc, rc;

			f.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			rc = check_bytes(f.p, f.n, &grc);
			f.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			if (rc == 0 || grc == 0)
				accepted++;
			else
				refused++;
		}
		free(f.p);
	}
	/* both happen: flips inside strings and blobs are still messages */
	cr_assert_gt(accepted, 0);
	cr_assert_gt(refused, 0);
}

/* --- wrong shapes ------------------------------------------------------------ */

/* The natural body of type t, cut or padded (with nil) to n elements. */
static payload body_of(uint32_t type, uint32_t n)
{
	msgpack_packer *pk;
	uint32_t k = 0;
	build b;

	pk = bopen(&b);
	phdr(pk, PROTO_VERSION, type, 77, n);
#define NEXT(stmt) do { if (k++ < n) { stmt; } } while (0)
	NEXT(pstr(pk, "from:1"));
	switch (type) {
	case PEER_FWD:
	case PEER_FWDREPLY:
		NEXT(pbin(pk, "pl", 2));
		break;
	case PEER_RGET:
		NEXT(pbin(pk, "k", 1));
		break;
	case PEER_RVALUE:
		NEXT(msgpack_pack_uint32(pk, 0));
		NEXT(pbin(pk, "o", 1));
		break;
	case PEER_RPUT:
		NEXT(pbin(pk, "k", 1));
		NEXT(pbin(pk, "o", 1));
		NEXT(msgpack_pack_true(pk));
		break;
	case PEER_RACK:
		NEXT(msgpack_pack_uint32(pk, 0));
		break;
	case PEER_SYNC:
		NEXT(msgpack_pack_true(pk));
		NEXT(msgpack_pack_array(pk, 0));
		break;
	case PEER_XREQ:
		NEXT(msgpack_pack_uint32(pk, 1));
		NEXT(msgpack_pack_uint64(pk, 2));
		NEXT(msgpack_pack_uint64(pk, 3));
		break;
	case PEER_XDATA:
		NEXT(msgpack_pack_uint32(pk, 1));
		NEXT(msgpack_pack_uint32(pk, 0));
		NEXT(msgpack_pack_uint64(pk, 2));
		NEXT(msgpack_pack_false(pk));
		NEXT(msgpack_pack_uint64(pk, 3));
		NEXT(msgpack_pack_uint64(pk, 4));
		NEXT(pbin(pk, "\x01", 1));
		NEXT(msgpack_pack_array(pk, 0));
		break;
	default:
		break;
	}
#undef NEXT
	for (; k < n; k++)
		cr_assert_eq(msgpack_pack_nil(pk), 0);
	return bclose(&b);
}

Test(peer, body_arity_is_exact)
{
	static const uint32_t arity[] = { 2, 2, 2, 3, 4, 2, 3 };

	for (uint32_t t = PEER_FWD; t <= PEER_SYNC; t++) {
		uint32_t want = arity[t - PEER_FWD];

		for (uint32_t n = 0; n <= want + 2; n++) {
			payload f = body_of(t, n);
			peer_msg m;

			cr_assert_eq(pdec(&f, &m), n == want ? 0 : DKV_EPROTO,
				     "type %u with a body of %u", t, n);
			free(f.p);
		}
	}
	/* the transfer's: XREQ [from, partition, cursor, max_bytes], XDATA
	 * [from, partition, code, next, done, keys, bytes, empty, pairs] */
	{
		static const uint32_t xtypes[] = { PEER_XREQ, PEER_XDATA }, xarity[] = { 4, 9 };

		for (size_t x = 0; x < 2; x++)
			for (uint32_t n = 0; n <= xarity[x] + 2; n++) {
				payload f = body_of(xtypes[x], n);
				peer_msg m;
				int rc = pdec(&f, &m);

				cr_assert_eq(rc, n == xarity[x] ? 0 : DKV_EPROTO,
					     "type %u with a body of %u", xtypes[x], n);
				if (rc == 0) {   /* the natural body, read right */
					cr_assert_eq(m.type, xtypes[x]);
					cr_assert_eq(m.partition, 1);
					cr_assert_eq(m.first, 2);
					cr_assert_eq(m.n, xtypes[x] == PEER_XREQ ? 3 : 4);
					cr_assert_eq(m.count, xtypes[x] == PEER_XREQ ? 0 : 3);
					cr_assert_eq(m.datalen, xtypes[x] == PEER_XREQ ? 0 : 1);
					cr_assert_eq(m.nentries, 0);
				}
				free(f.p);
			}
	}
}

/* A frame of type t whose body of n elements the trailing statements pack
 * (with pk) must be refused, or accepted. */
#define REFUSED(what, t, n, ...)                                             \
	do {                                                                 \
		build b_;                                                    \
		msgpack_packer *pk = bopen(&b_);                             \
		payload f_;                                                  \
		peer_msg m_;                                                 \
		int rc_;                                                     \
		phdr(pk, PROTO_VERSION, (t), 1, (n));                        \
		__VA_ARGS__;                                                 \
		f_ = bclose(&b_);                                            \
		rc_ = pdec(&f_, &m_);                                        \
		free(f_.p);                                                  \
		cr_assert_eq(rc_, DKV_EPROTO, "%s accepted", what);          \
	} while (0)
#define ACCEPTED(what, t, n, ...)                                            \
	do {                                                                 \
		build b_;                                                    \
		msgpack_packer *pk = bopen(&b_);                             \
		payload f_;                                                  \
		peer_msg m_;                                                 \
		int rc_;                                                     \
		phdr(pk, PROTO_VERSION, (t), 1, (n));                        \
		__VA_ARGS__;                                                 \
		f_ = bclose(&b_);                                            \
		rc_ = pdec(&f_, &m_);                                        \
		free(f_.p);                                                  \
		cr_assert_eq(rc_, 0, "%s refused", what);                    \
	} while (0)

Test(peer, wrong_types_in_bodies_are_refused)
{
	/* controls: the right types are accepted */
	ACCEPTED("FWD", PEER_FWD, 2, pstr(pk, "a"); pbin(pk, "x", 1));
	ACCEPTED("RVALUE", PEER_RVALUE, 3, pstr(pk, "a"); msgpack_pack_uint32(pk, 0);
		 msgpack_pack_nil(pk));
	ACCEPTED("RACK max code", PEER_RACK, 2, pstr(pk, "a"); msgpack_pack_uint32(pk, UINT32_MAX));

	REFUSED("FWD payload as str", PEER_FWD, 2, pstr(pk, "a"); pstr(pk, "x"));
	REFUSED("FWDREPLY frame as str", PEER_FWDREPLY, 2, pstr(pk, "a"); pstr(pk, "x"));
	REFUSED("FWD payload nil", PEER_FWD, 2, pstr(pk, "a"); msgpack_pack_nil(pk));
	REFUSED("RGET key as str", PEER_RGET, 2, pstr(pk, "a"); pstr(pk, "k"));
	REFUSED("RGET empty key", PEER_RGET, 2, pstr(pk, "a"); pbin(pk, NULL, 0));
	REFUSED("RVALUE object as str", PEER_RVALUE, 3, pstr(pk, "a"); msgpack_pack_uint32(pk, 0);
		pstr(pk, "o"));
	REFUSED("RVALUE code negative", PEER_RVALUE, 3, pstr(pk, "a"); msgpack_pack_int(pk, -1);
		msgpack_pack_nil(pk));
	REFUSED("RVALUE code past 32 bits", PEER_RVALUE, 3, pstr(pk, "a");
		msgpack_pack_uint64(pk, (uint64_t)UINT32_MAX + 1); msgpack_pack_nil(pk));
	REFUSED("RVALUE code as bool", PEER_RVALUE, 3, pstr(pk, "a"); msgpack_pack_false(pk);
		msgpack_pack_nil(pk));
	REFUSED("RPUT key as str", PEER_RPUT, 4, pstr(pk, "a"); pstr(pk, "k"); pbin(pk, "o", 1);
		msgpack_pack_true(pk));
	REFUSED("RPUT empty key", PEER_RPUT, 4, pstr(pk, "a"); pbin(pk, NULL, 0); pbin(pk, "o", 1);
		msgpack_pack_true(pk));
	REFUSED("RPUT object nil", PEER_RPUT, 4, pstr(pk, "a"); pbin(pk, "k", 1);
		msgpack_pack_nil(pk); msgpack_pack_true(pk));
	REFUSED("RPUT ack as 1", PEER_RPUT, 4, pstr(pk, "a"); pbin(pk, "k", 1); pbin(pk, "o", 1);
		msgpack_pack_uint32(pk, 1));
	REFUSED("RACK code past 32 bits", PEER_RACK, 2, pstr(pk, "a");
		msgpack_pack_uint64(pk, (uint64_t)UINT32_MAX + 1));
	REFUSED("RACK code as str", PEER_RACK, 2, pstr(pk, "a"); pstr(pk, "0"));
	REFUSED("SYNC reply nil", PEER_SYNC, 3, pstr(pk, "a"); msgpack_pack_nil(pk);
		msgpack_pack_array(pk, 0));
	REFUSED("SYNC entries as map", PEER_SYNC, 3, pstr(pk, "a"); msgpack_pack_true(pk);
		msgpack_pack_map(pk, 0));
	REFUSED("SYNC entries nil", PEER_SYNC, 3, pstr(pk, "a"); msgpack_pack_true(pk);
		msgpack_pack_nil(pk));
	REFUSED("from as bin", PEER_FWD, 2, pbin(pk, "a", 1); pbin(pk, "x", 1));
	REFUSED("from nil", PEER_RACK, 2, msgpack_pack_nil(pk); msgpack_pack_uint32(pk, 0));
	REFUSED("from as int", PEER_RACK, 2, msgpack_pack_uint32(pk, 5); msgpack_pack_uint32(pk, 0));

	/* XREQ [from, partition, cursor, max_bytes] */
	ACCEPTED("XREQ", PEER_XREQ, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 65535);
		 msgpack_pack_uint64(pk, UINT64_MAX); msgpack_pack_uint64(pk, UINT64_MAX));
	REFUSED("XREQ partition as str", PEER_XREQ, 4, pstr(pk, "a"); pstr(pk, "1");
		msgpack_pack_uint64(pk, 0); msgpack_pack_uint64(pk, 0));
	REFUSED("XREQ partition negative", PEER_XREQ, 4, pstr(pk, "a"); msgpack_pack_int(pk, -1);
		msgpack_pack_uint64(pk, 0); msgpack_pack_uint64(pk, 0));
	REFUSED("XREQ cursor negative", PEER_XREQ, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 1);
		msgpack_pack_int64(pk, -1); msgpack_pack_uint64(pk, 0));
	REFUSED("XREQ cursor as bin", PEER_XREQ, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 1);
		pbin(pk, "\0\0\0\0\0\0\0\0", 8); msgpack_pack_uint64(pk, 0));
	REFUSED("XREQ max_bytes nil", PEER_XREQ, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 1);
		msgpack_pack_uint64(pk, 0); msgpack_pack_nil(pk));
	REFUSED("XREQ max_bytes as bool", PEER_XREQ, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 1);
		msgpack_pack_uint64(pk, 0); msgpack_pack_true(pk));
	REFUSED("XREQ from nil", PEER_XREQ, 4, msgpack_pack_nil(pk); msgpack_pack_uint32(pk, 1);
		msgpack_pack_uint64(pk, 0); msgpack_pack_uint64(pk, 0));

	/* XDATA [from, partition, code, next, done, keys, bytes, empty, pairs] */
#define XD_HEAD(code, next, done, keys, bytes)                                    \
	pstr(pk, "a"); msgpack_pack_uint32(pk, 3); code; next; done; keys; bytes
#define XD_OK_HEAD                                                                \
	XD_HEAD(msgpack_pack_uint32(pk, 0), msgpack_pack_uint64(pk, 1),           \
		msgpack_pack_true(pk), msgpack_pack_uint64(pk, 2), msgpack_pack_uint64(pk, 3))
	ACCEPTED("XDATA", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, "\x01", 1);
		 msgpack_pack_array(pk, 2); pbin(pk, "k", 1); pbin(pk, "o", 1));
	ACCEPTED("XDATA max code, empty object", PEER_XDATA, 9,
		 XD_HEAD(msgpack_pack_uint32(pk, UINT32_MAX), msgpack_pack_uint64(pk, 1),
			 msgpack_pack_false(pk), msgpack_pack_uint64(pk, 2),
			 msgpack_pack_uint64(pk, 3));
		 pbin(pk, NULL, 0); msgpack_pack_array(pk, 2); pbin(pk, "k", 1); pbin(pk, NULL, 0));
	REFUSED("XDATA code past 32 bits", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_uint64(pk, (uint64_t)UINT32_MAX + 1), msgpack_pack_uint64(pk, 1),
			msgpack_pack_true(pk), msgpack_pack_uint64(pk, 2), msgpack_pack_uint64(pk, 3));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA code negative", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_int(pk, -1), msgpack_pack_uint64(pk, 1), msgpack_pack_true(pk),
			msgpack_pack_uint64(pk, 2), msgpack_pack_uint64(pk, 3));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA next as str", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_uint32(pk, 0), pstr(pk, "1"), msgpack_pack_true(pk),
			msgpack_pack_uint64(pk, 2), msgpack_pack_uint64(pk, 3));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA done as 1", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_uint32(pk, 0), msgpack_pack_uint64(pk, 1),
			msgpack_pack_uint32(pk, 1), msgpack_pack_uint64(pk, 2),
			msgpack_pack_uint64(pk, 3));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA done nil", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_uint32(pk, 0), msgpack_pack_uint64(pk, 1), msgpack_pack_nil(pk),
			msgpack_pack_uint64(pk, 2), msgpack_pack_uint64(pk, 3));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA keys negative", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_uint32(pk, 0), msgpack_pack_uint64(pk, 1), msgpack_pack_true(pk),
			msgpack_pack_int(pk, -2), msgpack_pack_uint64(pk, 3));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA bytes nil", PEER_XDATA, 9,
		XD_HEAD(msgpack_pack_uint32(pk, 0), msgpack_pack_uint64(pk, 1), msgpack_pack_true(pk),
			msgpack_pack_uint64(pk, 2), msgpack_pack_nil(pk));
		pbin(pk, NULL, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA bitmap as str", PEER_XDATA, 9, XD_OK_HEAD; pstr(pk, "\x01");
		msgpack_pack_array(pk, 0));
	REFUSED("XDATA bitmap nil", PEER_XDATA, 9, XD_OK_HEAD; msgpack_pack_nil(pk);
		msgpack_pack_array(pk, 0));
	REFUSED("XDATA bitmap as array", PEER_XDATA, 9, XD_OK_HEAD; msgpack_pack_array(pk, 0);
		msgpack_pack_array(pk, 0));
	REFUSED("XDATA pairs nil", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, NULL, 0);
		msgpack_pack_nil(pk));
	REFUSED("XDATA pairs as map", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, NULL, 0);
		msgpack_pack_map(pk, 1); pbin(pk, "k", 1); pbin(pk, "o", 1));
	REFUSED("XDATA key as str", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, NULL, 0);
		msgpack_pack_array(pk, 2); pstr(pk, "k"); pbin(pk, "o", 1));
	REFUSED("XDATA object nil", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, NULL, 0);
		msgpack_pack_array(pk, 2); pbin(pk, "k", 1); msgpack_pack_nil(pk));
	REFUSED("XDATA object as str", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, NULL, 0);
		msgpack_pack_array(pk, 2); pbin(pk, "k", 1); pstr(pk, "o"));
	REFUSED("XDATA pairs nested", PEER_XDATA, 9, XD_OK_HEAD; pbin(pk, NULL, 0);
		msgpack_pack_array(pk, 2); msgpack_pack_array(pk, 2); pbin(pk, "k", 1);
		pbin(pk, "o", 1); pbin(pk, "k", 1));
	/* [..., empty, delay, pairs]: the source's loop delay, 1 to 2^32-1
	 * (0 is sent as no element) */
	ACCEPTED("XDATA with a delay", PEER_XDATA, 10, XD_OK_HEAD; pbin(pk, "\x01", 1);
		 msgpack_pack_uint32(pk, UINT32_MAX); msgpack_pack_array(pk, 2); pbin(pk, "k", 1);
		 pbin(pk, "o", 1));
	REFUSED("XDATA delay 0", PEER_XDATA, 10, XD_OK_HEAD; pbin(pk, "\x01", 1);
		msgpack_pack_uint32(pk, 0); msgpack_pack_array(pk, 0));
	REFUSED("XDATA delay past 32 bits", PEER_XDATA, 10, XD_OK_HEAD; pbin(pk, "\x01", 1);
		msgpack_pack_uint64(pk, (uint64_t)UINT32_MAX + 1); msgpack_pack_array(pk, 0));
	REFUSED("XDATA delay negative", PEER_XDATA, 10, XD_OK_HEAD; pbin(pk, "\x01", 1);
		msgpack_pack_int(pk, -1); msgpack_pack_array(pk, 0));
	REFUSED("XDATA delay as str", PEER_XDATA, 10, XD_OK_HEAD; pbin(pk, "\x01", 1);
		pstr(pk, "5"); msgpack_pack_array(pk, 0));
	REFUSED("XDATA delay after the pairs", PEER_XDATA, 10, XD_OK_HEAD; pbin(pk, "\x01", 1);
		msgpack_pack_array(pk, 0); msgpack_pack_uint32(pk, 5));
	REFUSED("XDATA eleven elements", PEER_XDATA, 11, XD_OK_HEAD; pbin(pk, "\x01", 1);
		msgpack_pack_uint32(pk, 5); msgpack_pack_uint32(pk, 5); msgpack_pack_array(pk, 0));
#undef XD_OK_HEAD
#undef XD_HEAD
}

Test(peer, wrong_headers_are_refused)
{
	static const uint8_t bodies[][16] = {
		/* the RACK of golden_bytes, then one thing wrong each */
		{ 0x94, 0x02, 0xcc, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00 },      /* version 2 */
		{ 0x94, 0x00, 0xcc, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00 },      /* version 0 */
		{ 0x93, 0x01, 0xcc, 0x85, 0x92, 0xa1, 'a', 0x00 },            /* no id */
		{ 0x95, 0x01, 0xcc, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00, 0xc0 }, /* five */
		{ 0x94, 0x01, 0xd0, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00 },      /* type int8 */
		{ 0x94, 0x01, 0xa1, 'x', 0x07, 0x92, 0xa1, 'a', 0x00 },       /* type str */
		{ 0x94, 0x01, 0xcc, 0x85, 0xff, 0x92, 0xa1, 'a', 0x00 },      /* id -1 */
		{ 0x94, 0x01, 0xcc, 0xc7, 0x07, 0x92, 0xa1, 'a', 0x00 },      /* type 199 */
		{ 0x94, 0x01, 0xcc, 0xff, 0x07, 0x92, 0xa1, 'a', 0x00 },      /* type 255 */
		{ 0x94, 0x01, 0x04, 0x07, 0x92, 0xa1, 'a', 0x00 },            /* type PING */
		{ 0x84, 0x01, 0xcc, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00 },      /* a map */
		{ 0x94, 0x01, 0xcc, 0x85, 0x07, 0x82, 0xa1, 'a', 0x00 },      /* body map */
		{ 0x94, 0x01, 0xcc, 0x85, 0x07, 0xc0 },                       /* body nil */
	};
	static const size_t lens[] = { 9, 9, 8, 10, 9, 9, 9, 9, 9, 8, 9, 9, 6 };
	payload ok = P(0x94, 0x01, 0xcc, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00);
	char err[128];
	peer_msg m;

	cr_assert_eq(pdec(&ok, &m), 0, "the control is valid");
	free(ok.p);
	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		payload f = mkpayload(bodies[i], lens[i]);

		cr_assert_eq(pdec(&f, &m), DKV_EPROTO, "header %zu accepted", i);
		free(f.p);
	}
	/* the reason names an unknown type, and err is optional */
	cr_assert_eq(peer_decode(bodies[7], lens[7], &m, err, sizeof err), DKV_EPROTO);
	cr_assert(strstr(err, "unknown") != NULL && strstr(err, "199") != NULL, "%s", err);
	cr_assert_eq(peer_decode(bodies[0], lens[0], &m, err, sizeof err), DKV_EPROTO);
	cr_assert(strstr(err, "malformed") != NULL, "%s", err);
	cr_assert_eq(peer_decode(bodies[0], lens[0], &m, NULL, 0), DKV_EPROTO);
	memset(err, 'x', sizeof err);
	cr_assert_eq(peer_decode(bodies[7], lens[7], &m, err, 5), DKV_EPROTO);
	cr_assert(err[4] == '\0' && err[5] == 'x', "err overran its length");
}

/* HACK: the owner's loop delay rides as an optional fourth element; 0 is
 * written as no element, so that a frame has one encoding. */
Test(peer, round_trip_hack_with_and_without_a_delay)
{
	static const uint32_t delays[] = { 0, 1, 1234, UINT32_MAX };

	for (size_t d = 0; d < sizeof delays / sizeof delays[0]; d++) {
		peer_msg want = want_msg(PEER_HACK, 77 + d, "owner:7463");
		msgpack_sbuffer sb;
		payload f;

		msgpack_sbuffer_init(&sb);
		cr_assert_eq(peer_encode_hack(&sb, want.id, want.from, 0, 4096 + d, delays[d]), 0);
		f = take(&sb);
		want.count = 4096 + d;
		want.delay_us = delays[d];
		expect_peer(&f, &want, NULL, "HACK");
		free(f.p);
	}
	ACCEPTED("HACK without a delay", PEER_HACK, 3, pstr(pk, "a"); msgpack_pack_uint32(pk, 0);
		 msgpack_pack_uint64(pk, 1));
	ACCEPTED("HACK with a delay", PEER_HACK, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 0);
		 msgpack_pack_uint64(pk, 1); msgpack_pack_uint32(pk, 5));
	REFUSED("HACK with a delay of 0", PEER_HACK, 4, pstr(pk, "a"); msgpack_pack_uint32(pk, 0);
		msgpack_pack_uint64(pk, 1); msgpack_pack_uint32(pk, 0));
	REFUSED("HACK with a delay past 32 bits", PEER_HACK, 4, pstr(pk, "a");
		msgpack_pack_uint32(pk, 0); msgpack_pack_uint64(pk, 1);
		msgpack_pack_uint64(pk, UINT64_C(1) << 32));
	REFUSED("HACK with a negative delay", PEER_HACK, 4, pstr(pk, "a");
		msgpack_pack_uint32(pk, 0); msgpack_pack_uint64(pk, 1); msgpack_pack_int32(pk, -1));
	REFUSED("HACK with a string delay", PEER_HACK, 4, pstr(pk, "a");
		msgpack_pack_uint32(pk, 0); msgpack_pack_uint64(pk, 1); pstr(pk, "5"));
	REFUSED("HACK of 5 elements", PEER_HACK, 5, pstr(pk, "a"); msgpack_pack_uint32(pk, 0);
		msgpack_pack_uint64(pk, 1); msgpack_pack_uint32(pk, 5); msgpack_pack_uint32(pk, 5));
	REFUSED("HACK of 2 elements", PEER_HACK, 2, pstr(pk, "a"); msgpack_pack_uint32(pk, 0));
}

/* --- ownership transfer: XREQ and XDATA ------------------------------------- */

/* Every field of m that XREQ and XDATA leave alone is as peer_decode's
 * memset left it. */
static void assert_no_other_fields(const peer_msg *m, const char *what)
{
	cr_assert_not(m->has_data, "%s: has_data", what);
	cr_assert_null(m->key, "%s: key", what);
	cr_assert_eq(m->keylen, 0, "%s: keylen", what);
	cr_assert_not(m->lacking, "%s: lacking", what);
	cr_assert_str_eq(m->owner, "", "%s: owner", what);
	cr_assert_eq(m->delay_us, 0, "%s: delay_us", what);
	cr_assert_eq(m->root, 0, "%s: root", what);
	cr_assert_null(m->chain, "%s: chain", what);
	cr_assert_eq(m->chainlen, 0, "%s: chainlen", what);
}

Test(peer, round_trip_xreq)
{
	static const uint32_t parts[] = { 0, 1, 127, 128, 255, 256, 65535 };
	static const uint64_t vals[] = { 0, 1, 127, 128, 65535, 65536, UINT32_MAX,
					 (uint64_t)UINT32_MAX + 1, UINT64_C(1) << 63, UINT64_MAX };
	/* [4-byte length][version 1, type 143, id 7, [from "a", partition 1,
	 * cursor 2, max_bytes 3]] */
	static const uint8_t golden[] = { 0x00, 0x00, 0x00, 0x0b, 0x94, 0x01, 0xcc, 0x8f, 0x07,
					  0x94, 0xa1, 'a', 0x01, 0x02, 0x03 };
	char *longaddr = repeat('x', PEER_MAX_ADDR);
	const size_t nv = sizeof vals / sizeof vals[0];
	msgpack_sbuffer sb;
	size_t cases = 0;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_encode_xreq(&sb, 7, "a", 1, 2, 3), 0);
	cr_assert(bytes_eq(sb.data, sb.size, golden, sizeof golden), "XREQ bytes changed");
	msgpack_sbuffer_destroy(&sb);

	for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
		for (size_t c = 0; c < nv; c++)
			for (size_t b = 0; b < nv; b += 3) {
				const char *from = (p + c) % 4 == 0 ? longaddr : "10.0.0.2:7000";
				uint64_t id = vals[(p + c + b) % nv];
				peer_msg m;
				payload f;

				msgpack_sbuffer_init(&sb);
				cr_assert_eq(peer_encode_xreq(&sb, id, from, parts[p], vals[c], vals[b]),
					     0);
				f = take(&sb);
				cr_assert_eq(pdec(&f, &m), 0, "XREQ %u %" PRIu64 " %" PRIu64 " refused",
					     parts[p], vals[c], vals[b]);
				cr_assert_eq(m.type, PEER_XREQ);
				cr_assert_eq(m.id, id);
				cr_assert_str_eq(m.from, from);
				cr_assert_eq(m.partition, parts[p]);
				cr_assert_eq(m.first, vals[c], "cursor");
				cr_assert_eq(m.n, vals[b], "max_bytes");
				cr_assert_eq(m.code, 0);
				cr_assert_not(m.flag);
				cr_assert_eq(m.count, 0);
				cr_assert_null(m.data);
				cr_assert_eq(m.datalen, 0);
				cr_assert_eq(m.nentries, 0);
				assert_no_other_fields(&m, "XREQ");
				/* and a fixed point of the encoders */
				cr_assert_eq(check_bytes(f.p, f.n, NULL), 0);
				free(f.p);
				cases++;
			}
	cr_assert_eq(cases, 7 * 10 * 4);
	free(longaddr);
}

/* One XDATA to round trip: npairs pairs (key i of klen(i) bytes, object i
 * of olen(i) bytes) and a bitmap of blen bytes. */
typedef struct xcase {
	uint32_t partition, code;
	uint64_t next;
	bool done;
	uint64_t keys, bytes;
	size_t blen;
	uint32_t npairs;
	uint32_t delay_us;
} xcase;

static size_t xd_klen(uint32_t i)
{
	return 1 + (i * 37u) % 300u;   /* 1 .. 300: fixbin-sized and bin 8 */
}

static size_t xd_olen(uint32_t i)
{
	return i == 1 ? 70000 : i % 3 == 0 ? 0 : (i * 11u) % 500u;   /* bin 32 too */
}

static void xdata_round_trip(const xcase *x, uint64_t id, const char *from)
{
	uint8_t *bitmap = pattern(x->blen, 31), *kb = pattern(300 + x->npairs, 32),
		*ob = pattern(70000 + x->npairs, 33);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t start;
	const uint8_t *k, *o;
	size_t kl, ol;
	uint64_t left;
	peer_msg m;
	payload f;
	mpr cur;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_xdata_begin(&sb, &pk, &start, id, from, x->partition, x->code, x->next,
				      x->done, x->keys, x->bytes, x->blen ? bitmap : NULL, x->blen,
				      x->npairs, x->delay_us), 0);
	cr_assert_eq(start, 0);
	for (uint32_t i = 0; i < x->npairs; i++)
		cr_assert_eq(peer_hoff_pair(&pk, kb + i, xd_klen(i), ob + i, xd_olen(i)), 0);
	cr_assert_eq(peer_hoff_end(&sb, start), 0);
	f = take(&sb);

	cr_assert_eq(pdec(&f, &m), 0, "XDATA of %u pairs, %zu-byte bitmap refused", x->npairs,
		     x->blen);
	cr_assert_eq(m.type, PEER_XDATA);
	cr_assert_eq(m.id, id);
	cr_assert_str_eq(m.from, from);
	cr_assert_eq(m.partition, x->partition);
	cr_assert_eq(m.code, x->code);
	cr_assert_eq(m.first, x->next, "next");
	cr_assert_eq(m.flag, x->done, "done");
	cr_assert_eq(m.count, x->keys, "keys");
	cr_assert_eq(m.n, x->bytes, "bytes");
	cr_assert_eq(m.datalen, x->blen, "bitmap of %zu bytes, not %zu", m.datalen, x->blen);
	cr_assert(bytes_eq(m.data, m.datalen, bitmap, x->blen), "bitmap");
	cr_assert(x->blen == 0 || inside(m.data, m.datalen, &f), "the bitmap is borrowed");
	cr_assert_eq(m.nentries, 2 * (uint64_t)x->npairs);
	cr_assert_eq(m.delay_us, x->delay_us, "delay");
	m.delay_us = 0;
	assert_no_other_fields(&m, "XDATA");
	m.delay_us = x->delay_us;

	/* the pairs, in order, borrowed from the frame, and nothing after */
	cur = m.entries;
	left = m.nentries;
	for (uint32_t i = 0; i < x->npairs; i++) {
		cr_assert_eq(peer_hoff_next(&cur, &left, &k, &kl, &o, &ol), 1, "pair %u", i);
		cr_assert(bytes_eq(k, kl, kb + i, xd_klen(i)), "key %u", i);
		cr_assert(bytes_eq(o, ol, ob + i, xd_olen(i)), "object %u", i);
		cr_assert(inside(k, kl, &f) && inside(o, ol, &f), "pair %u borrowed", i);
	}
	cr_assert_eq(left, 0);
	cr_assert_eq(peer_hoff_next(&cur, &left, &k, &kl, &o, &ol), 0, "more pairs than declared");
	cr_assert_eq(mpr_left(&cur), 0, "bytes after the pairs");

	/* re-encoded (pairs and bitmap too) it decodes to the same */
	cr_assert_eq(check_bytes(f.p, f.n, NULL), 0);
	free(f.p);
	free(ob);
	free(kb);
	free(bitmap);
}

Test(peer, round_trip_xdata)
{
	static const xcase cases[] = {
		/* no pairs, no bitmap */
		{ 0, 0, 0, false, 0, 0, 0, 0, 0 },
		{ 0, 0, 0, true, 0, 0, 0, 0, 0 },
		/* pairs, a 64-byte bitmap (512 partitions), not done */
		{ 7, 0, 1, false, 2, 300, 64, 2, 0 },
		/* pairs of every bin size, done, extreme numbers */
		{ 65535, 0, UINT64_MAX, true, UINT64_MAX, UINT64_MAX, 64, 5, 0 },
		{ 300, 0, (uint64_t)UINT32_MAX + 1, true, 1, 70000, 0, 1, 0 },
		{ 128, 0, UINT64_C(1) << 63, false, 65536, (uint64_t)UINT32_MAX, 0, 3, 0 },
		/* no pairs with a bitmap: an empty partition's answer */
		{ 1, 0, 0, true, 0, 0, 64, 0, 0 },
		/* the largest bitmap (65536 partitions) */
		{ 255, 0, 5, false, 10, 20, XDATA_MAX_BITMAP, 2, 0 },
		/* the most pairs */
		{ 9, 0, 42, false, 100000, 1000000, 64, PEER_MAX_HOFF, 0 },
		/* error codes: no pairs */
		{ 1, PROTO_ERR_OVERLOAD, 0, false, 0, 0, 0, 0, 0 },
		{ 2, PROTO_ERR_STORAGE, 0, true, 0, 0, 64, 0, 0 },
		{ 65535, UINT32_MAX, 0, false, 0, 0, 0, 0, 0 },
		/* the source's loop delay: the smallest, a usual one, the
		 * largest; with pairs, without, with an error */
		{ 4, 0, 9, false, 3, 3000, 64, 3, 1 },
		{ 5, 0, 0, true, 0, 0, 64, 0, 350 },
		{ 6, PROTO_ERR_OVERLOAD, 0, false, 0, 0, 0, 0, UINT32_MAX },
	};
	/* [4-byte length][version 1, type 144, id 7, [from "a", partition 1,
	 * code 0, next 2, done true, keys 3, bytes 4, empty bin(0x05),
	 * [bin "k", bin "v"]]] */
	static const uint8_t golden[] = { 0x00, 0x00, 0x00, 0x18, 0x94, 0x01, 0xcc, 0x90, 0x07,
					  0x99, 0xa1, 'a', 0x01, 0x00, 0x02, 0xc3, 0x03, 0x04,
					  0xc4, 0x01, 0x05, 0x92, 0xc4, 0x01, 'k', 0xc4, 0x01,
					  'v' };
	static const uint8_t golden_delay[] = { 0x00, 0x00, 0x00, 0x1b, 0x94, 0x01, 0xcc, 0x90,
						0x07, 0x9a, 0xa1, 'a', 0x01, 0x00, 0x02, 0xc3,
						0x03, 0x04, 0xc4, 0x01, 0x05, 0xcd, 0x01, 0x2c,
						0x92, 0xc4, 0x01, 'k', 0xc4, 0x01, 'v' };
	char *longaddr = repeat('y', PEER_MAX_ADDR);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t start;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_xdata_begin(&sb, &pk, &start, 7, "a", 1, 0, 2, true, 3, 4, "\x05", 1, 1, 0),
		     0);
	cr_assert_eq(peer_hoff_pair(&pk, "k", 1, "v", 1), 0);
	cr_assert_eq(peer_hoff_end(&sb, start), 0);
	cr_assert(bytes_eq(sb.data, sb.size, golden, sizeof golden), "XDATA bytes changed");
	/* with a delay of 300 us: 10 elements, uint16 300 before the pairs */
	sb.size = 0;
	cr_assert_eq(peer_xdata_begin(&sb, &pk, &start, 7, "a", 1, 0, 2, true, 3, 4, "\x05", 1, 1,
				      300), 0);
	cr_assert_eq(peer_hoff_pair(&pk, "k", 1, "v", 1), 0);
	cr_assert_eq(peer_hoff_end(&sb, start), 0);
	cr_assert(bytes_eq(sb.data, sb.size, golden_delay, sizeof golden_delay),
		  "XDATA bytes with a delay changed");
	msgpack_sbuffer_destroy(&sb);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		xdata_round_trip(&cases[i], i == 3 ? UINT64_MAX : 100 + i,
				 i % 4 == 1 ? longaddr : "10.0.0.3:7000");
	free(longaddr);
}

/* An XDATA packed by hand: partition p, a bitmap of blen bytes, and an
 * array header of nelem elements followed by have bins, bin i of lens[i]
 * bytes. */
static payload xdata_raw(uint64_t p, size_t blen, uint32_t nelem, uint32_t have,
			 const size_t *lens)
{
	uint8_t *bytes = pattern(blen > 64 ? blen : 64, 41);
	msgpack_packer *pk;
	payload f;
	build b;

	pk = bopen(&b);
	phdr(pk, PROTO_VERSION, PEER_XDATA, 5, 9);
	pstr(pk, "x:1");
	cr_assert_eq(msgpack_pack_uint64(pk, p), 0);
	cr_assert_eq(msgpack_pack_uint32(pk, 0), 0);
	cr_assert_eq(msgpack_pack_uint64(pk, 1), 0);
	cr_assert_eq(msgpack_pack_false(pk), 0);
	cr_assert_eq(msgpack_pack_uint64(pk, 2), 0);
	cr_assert_eq(msgpack_pack_uint64(pk, 3), 0);
	pbin(pk, bytes, blen);
	cr_assert_eq(msgpack_pack_array(pk, nelem), 0);
	for (uint32_t i = 0; i < have; i++)
		pbin(pk, bytes, lens != NULL ? lens[i] : 1 + i % 5);
	f = bclose(&b);
	free(bytes);
	return f;
}

/* Decode an xdata_raw(): 0 or DKV_EPROTO, and what was decoded. */
static int xdata_dec(payload f, peer_msg *m)
{
	int rc = pdec(&f, m);

	if (rc == 0)   /* the oracle too */
		cr_assert_eq(check_bytes(f.p, f.n, NULL), 0);
	free(f.p);
	return rc;
}

Test(peer, xdata_odd_pairs_empty_keys_long_bitmaps_and_big_partitions_are_refused)
{
	static const size_t kv[] = { 1, 1 }, k_empty_obj[] = { 1, 0 }, empty_key[] = { 0, 1 },
			    second_empty[] = { 3, 4, 0, 2 }, both_empty[] = { 0, 0 };
	peer_msg m;

	/* controls: the bounds themselves are accepted */
	cr_assert_eq(xdata_dec(xdata_raw(65535, XDATA_MAX_BITMAP, 2, 2, kv), &m), 0);
	cr_assert_eq(m.partition, 65535);
	cr_assert_eq(m.datalen, XDATA_MAX_BITMAP);
	cr_assert_eq(m.nentries, 2);
	cr_assert_eq(xdata_dec(xdata_raw(0, 0, 0, 0, NULL), &m), 0);
	cr_assert_eq(m.datalen, 0);
	cr_assert_eq(m.nentries, 0);
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 2, 2, k_empty_obj), &m), 0, "an empty object");
	cr_assert_eq(m.nentries, 2);
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 2 * PEER_MAX_HOFF, 2 * PEER_MAX_HOFF, NULL), &m), 0,
		     "PEER_MAX_HOFF pairs refused");
	cr_assert_eq(m.nentries, 2 * PEER_MAX_HOFF);

	/* an odd number of pair elements: a key without its object */
	for (uint32_t n = 1; n <= 9; n += 2)
		cr_assert_eq(xdata_dec(xdata_raw(1, 1, n, n, NULL), &m), DKV_EPROTO,
			     "%u pair elements accepted", n);
	/* an empty key, first or later; an empty key with an empty object */
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 2, 2, empty_key), &m), DKV_EPROTO,
		     "an empty key accepted");
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 4, 4, second_empty), &m), DKV_EPROTO,
		     "an empty second key accepted");
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 2, 2, both_empty), &m), DKV_EPROTO,
		     "an empty key and object accepted");
	/* a bitmap past 8192 bytes (65536 partitions) */
	cr_assert_eq(xdata_dec(xdata_raw(1, XDATA_MAX_BITMAP + 1, 0, 0, NULL), &m), DKV_EPROTO,
		     "a bitmap of 8193 bytes accepted");
	cr_assert_eq(xdata_dec(xdata_raw(1, 65536, 2, 2, kv), &m), DKV_EPROTO,
		     "a bitmap of 65536 bytes accepted");
	/* a partition past 65535 */
	cr_assert_eq(xdata_dec(xdata_raw(65536, 1, 2, 2, kv), &m), DKV_EPROTO,
		     "partition 65536 accepted");
	cr_assert_eq(xdata_dec(xdata_raw((uint64_t)UINT32_MAX + 1, 1, 0, 0, NULL), &m), DKV_EPROTO,
		     "partition 2^32 accepted");
	cr_assert_eq(xdata_dec(xdata_raw(UINT64_MAX, 1, 0, 0, NULL), &m), DKV_EPROTO,
		     "partition 2^64 - 1 accepted");
	/* more pairs than PEER_MAX_HOFF; more elements claimed than sent; fewer */
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 2 * PEER_MAX_HOFF + 2, 2 * PEER_MAX_HOFF + 2, NULL),
			       &m), DKV_EPROTO, "PEER_MAX_HOFF + 1 pairs accepted");
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 4, 2, kv), &m), DKV_EPROTO, "a missing pair");
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, UINT32_MAX - 1, 2, kv), &m), DKV_EPROTO,
		     "2^32 - 2 elements claimed");
	cr_assert_eq(xdata_dec(xdata_raw(1, 1, 2, 4, NULL), &m), DKV_EPROTO, "a pair trailing");

	/* XREQ's partition is bounded the same way */
	{
		build b;
		msgpack_packer *xp = bopen(&b);
		payload f;

		phdr(xp, PROTO_VERSION, PEER_XREQ, 5, 4);
		pstr(xp, "x:1");
		cr_assert_eq(msgpack_pack_uint32(xp, 65535), 0);
		cr_assert_eq(msgpack_pack_uint64(xp, 0), 0);
		cr_assert_eq(msgpack_pack_uint64(xp, 0), 0);
		f = bclose(&b);
		cr_assert_eq(pdec(&f, &m), 0, "XREQ of partition 65535 refused");
		cr_assert_eq(m.partition, 65535);
		free(f.p);
	}
	REFUSED("XREQ of partition 65536", PEER_XREQ, 4, pstr(pk, "x:1");
		msgpack_pack_uint32(pk, 65536); msgpack_pack_uint64(pk, 0);
		msgpack_pack_uint64(pk, 0));
}

Test(peer, addresses_past_255_bytes_are_refused)
{
	char *a255 = repeat('a', PEER_MAX_ADDR), *a256 = repeat('b', PEER_MAX_ADDR + 1);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	gossip_msg g;
	peer_msg m;
	payload f;

	/* the encoders write what they are given; the decoders bound it */
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_encode_rack(&sb, 1, a255, 0), 0);
	f = take(&sb);
	cr_assert_eq(pdec(&f, &m), 0);
	cr_assert_eq(strlen(m.from), PEER_MAX_ADDR);
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_encode_rack(&sb, 1, a256, 0), 0);
	f = take(&sb);
	cr_assert_eq(pdec(&f, &m), DKV_EPROTO);
	free(f.p);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(peer_encode_fwd(&sb, 1, a256, "x", 1), 0);
	f = take(&sb);
	cr_assert_eq(pdec(&f, &m), DKV_EPROTO);
	free(f.p);

	for (int which = 0; which < 4; which++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		cr_assert_eq(gossip_begin(&pk, GOSSIP_PINGREQ, which == 1 ? a256 : "i",
					  which == 2 ? a256 : "a", 1, which == 3 ? a256 : a255, 0),
			     0);
		f = take_raw(&sb);
		cr_assert_eq(gdec(&f, &g), which == 0 ? 0 : DKV_EPROTO, "case %d", which);
		free(f.p);
	}
	free(a256);
	free(a255);
}

/* --- entries ------------------------------------------------------------------ */

/* One raw entry (packed by fill) as the only entry of a SYNC and of a
 * gossip ACK: both decode (entries are read lazily), and peer_entry_next
 * gives want. */
static void one_entry(int want, const char *what, void (*fill)(msgpack_packer *, int), int arg)
{
	for (int gossip = 0; gossip < 2; gossip++) {
		msgpack_packer *pk;
		uint64_t left;
		peer_entry e;
		peer_msg m;
		gossip_msg g;
		payload f;
		build b;
		mpr cur;
		int rc;

		pk = bopen(&b);
		if (gossip) {
			cr_assert_eq(gossip_begin(pk, GOSSIP_ACK, "i", "a", 1, NULL, 1), 0);
		} else {
			phdr(pk, PROTO_VERSION, PEER_SYNC, 0, 3);
			pstr(pk, "from");
			msgpack_pack_true(pk);
			msgpack_pack_array(pk, 1);
		}
		fill(pk, arg);
		f = bclose(&b);
		/* the decoders check every entry: a bad one refuses the whole
		 * message, so nothing of it is applied */
		rc = gossip ? gdec(&f, &g) : pdec(&f, &m);
		if (want != 1) {
			cr_assert_eq(rc, DKV_EPROTO, "%s: %s accepted", what, gossip ? "gossip" : "SYNC");
			free(f.p);
			continue;
		}
		if (gossip) {
			cr_assert_eq(gdec(&f, &g), 0, "%s: gossip refused", what);
			cur = g.entries;
			left = g.nentries;
		} else {
			cr_assert_eq(pdec(&f, &m), 0, "%s: SYNC refused", what);
			cur = m.entries;
			left = m.nentries;
		}
		cr_assert_eq(left, 1);
		rc = peer_entry_next(&cur, &left, &e);
		cr_assert_eq(rc, want, "%s: %d, not %d", what, rc, want);
		cr_assert_eq(left, 0);
		cr_assert_eq(peer_entry_next(&cur, &left, &e), 0);
		free(f.p);
	}
}

/* fields of an entry: 0 id, 1 addr, 2 status, 3 version, 4 incarnation,
 * 5 liveness, 6 keys, 7 keys_stamp. A fill() writes an otherwise valid
 * entry with one thing changed. */
enum { E_OK, E_STATUS, E_LIVE, E_ID_NUL, E_ADDR_NUL, E_ID_EMPTY, E_ADDR_EMPTY, E_ID_256,
       E_ADDR_255, E_ID_BIN, E_VERSION_NEG, E_KEYS_NIL, E_SEVEN, E_NINE, E_MAP, E_INT,
       E_NESTED_FIELD, E_TEN, E_ACTOR_0, E_ACTOR_NIL, E_ACTOR_NEG };

/* depth arrays nested [[[...[]...]]] */
static void fill_nested(msgpack_packer *pk, int depth)
{
	for (int i = 0; i < depth - 1; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_array(pk, 0);
}

static void fill_entry(msgpack_packer *pk, int how)
{
	static const char nul_id[] = { 'n', '\0', 'x' };
	char *s256 = repeat('s', 256);
	uint32_t n = how == E_SEVEN ? 7 : how == E_TEN ? 10 :
		     how == E_NINE || how >= E_ACTOR_0 ? 9 : 8;

	if (how == E_MAP) {
		msgpack_pack_map(pk, 0);
		goto out;
	}
	if (how == E_INT) {
		msgpack_pack_uint32(pk, 8);
		goto out;
	}
	msgpack_pack_array(pk, n);
	if (how == E_ID_NUL)
		pstrn(pk, nul_id, sizeof nul_id);
	else if (how == E_ID_EMPTY)
		pstrn(pk, "", 0);
	else if (how == E_ID_256)
		pstr(pk, s256);
	else if (how == E_ID_BIN)
		pbin(pk, "n", 1);
	else
		pstr(pk, "n1");
	if (how == E_ADDR_NUL)
		pstrn(pk, "a:1\0", 4);
	else if (how == E_ADDR_EMPTY)
		pstrn(pk, "", 0);
	else if (how == E_ADDR_255)
		pstrn(pk, s256, 255);
	else
		pstr(pk, "a:1");
	msgpack_pack_uint32(pk, how == E_STATUS ? 4 : 3);
	if (how == E_VERSION_NEG)
		msgpack_pack_int(pk, -1);
	else if (how == E_NESTED_FIELD)
		fill_nested(pk, 3);   /* within the skip limit: the message decodes */
	else
		msgpack_pack_uint64(pk, 5);
	msgpack_pack_uint64(pk, 6);
	msgpack_pack_uint32(pk, how == E_LIVE ? 3 : 2);
	if (how == E_KEYS_NIL)
		msgpack_pack_nil(pk);
	else
		msgpack_pack_uint64(pk, 7);
	if (n >= 8)
		msgpack_pack_uint64(pk, 8);
	if (how == E_ACTOR_0)
		msgpack_pack_uint64(pk, 0);
	else if (how == E_ACTOR_NIL)
		msgpack_pack_nil(pk);
	else if (how == E_ACTOR_NEG)
		msgpack_pack_int(pk, -9);
	else if (n >= 9)
		msgpack_pack_uint64(pk, 9);
	if (n == 10)
		msgpack_pack_uint64(pk, 10);
out:
	free(s256);
}

Test(peer, malformed_entries_are_refused_one_by_one)
{
	one_entry(1, "valid (status 3, liveness 2)", fill_entry, E_OK);
	one_entry(1, "255-byte address", fill_entry, E_ADDR_255);
	one_entry(DKV_EPROTO, "status 4", fill_entry, E_STATUS);
	one_entry(DKV_EPROTO, "liveness 3", fill_entry, E_LIVE);
	one_entry(DKV_EPROTO, "id with a NUL", fill_entry, E_ID_NUL);
	one_entry(DKV_EPROTO, "addr with a NUL", fill_entry, E_ADDR_NUL);
	one_entry(DKV_EPROTO, "empty id", fill_entry, E_ID_EMPTY);
	one_entry(DKV_EPROTO, "empty addr", fill_entry, E_ADDR_EMPTY);
	one_entry(DKV_EPROTO, "256-byte id", fill_entry, E_ID_256);
	one_entry(DKV_EPROTO, "id as bin", fill_entry, E_ID_BIN);
	one_entry(DKV_EPROTO, "version -1", fill_entry, E_VERSION_NEG);
	one_entry(DKV_EPROTO, "keys nil", fill_entry, E_KEYS_NIL);
	one_entry(DKV_EPROTO, "seven fields", fill_entry, E_SEVEN);
	one_entry(1, "nine fields (with the actor)", fill_entry, E_NINE);
	one_entry(DKV_EPROTO, "ten fields", fill_entry, E_TEN);
	one_entry(DKV_EPROTO, "actor 0 written out", fill_entry, E_ACTOR_0);
	one_entry(DKV_EPROTO, "actor nil", fill_entry, E_ACTOR_NIL);
	one_entry(DKV_EPROTO, "actor -9", fill_entry, E_ACTOR_NEG);
	one_entry(DKV_EPROTO, "a map", fill_entry, E_MAP);
	one_entry(DKV_EPROTO, "an int", fill_entry, E_INT);
	one_entry(DKV_EPROTO, "nested arrays in a field", fill_entry, E_NESTED_FIELD);
}

/* The entry format is a decision: these bytes pin it.  An entry with an
 * actor has 9 elements; one without (actor 0: not known) keeps the old
 * 8-element form, which every decoder reads as "matches any actor". */
Test(peer, entry_golden_bytes_with_and_without_the_actor)
{
	static const uint8_t old_form[] = { 0x98, 0xa2, 'n', '1', 0xa3, 'a', ':', '1',
					    0x01, 0x02, 0x03, 0x00, 0x04, 0x05 };
	static const uint8_t new_form[] = { 0x99, 0xa2, 'n', '1', 0xa3, 'a', ':', '1',
					    0x01, 0x02, 0x03, 0x00, 0x04, 0x05,
					    0xcf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08 };
	peer_entry e = { .id = "n1", .idlen = 2, .addr = "a:1", .addrlen = 3, .status = 1,
			 .version = 2, .incarnation = 3, .liveness = 0, .keys = 4,
			 .keys_stamp = 5, .actor = 0 };
	const uint8_t *const forms[] = { old_form, new_form };
	const size_t lens[] = { sizeof old_form, sizeof new_form };

	for (int k = 0; k < 2; k++) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		peer_entry got;
		uint64_t left = 1;
		mpr cur;

		e.actor = k == 0 ? 0 : 0x0102030405060708ull;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		cr_assert_eq(peer_pack_entry(&pk, &e), 0);
		cr_assert(bytes_eq(sb.data, sb.size, forms[k], lens[k]), "entry bytes changed (%s)",
			  k == 0 ? "without actor" : "with actor");
		mpr_init(&cur, (const uint8_t *)sb.data, sb.size, DKV_EPROTO);
		cr_assert_eq(peer_entry_next(&cur, &left, &got), 1);
		assert_entry_eq(&got, &e, "decoded", 0);
		/* every truncation of the entry is refused */
		for (size_t cut = 0; cut < sb.size; cut++) {
			left = 1;
			mpr_init(&cur, (const uint8_t *)sb.data, cut, DKV_EPROTO);
			cr_assert_eq(peer_entry_next(&cur, &left, &got), DKV_EPROTO, "cut at %zu", cut);
		}
		msgpack_sbuffer_destroy(&sb);
	}
}

Test(peer, entries_stop_at_the_first_malformed_one)
{
	char idb[PEER_MAX_ADDR + 1], adb[PEER_MAX_ADDR + 1];
	peer_entry e = mkentry(1, idb, adb), got;
	uint64_t left;
	msgpack_packer *pk;
	peer_msg m;
	payload f;
	build b;
	mpr cur;

	pk = bopen(&b);
	phdr(pk, PROTO_VERSION, PEER_SYNC, 0, 3);
	pstr(pk, "from");
	msgpack_pack_false(pk);
	msgpack_pack_array(pk, 3);
	cr_assert_eq(peer_pack_entry(pk, &e), 0);
	fill_entry(pk, E_STATUS);
	cr_assert_eq(peer_pack_entry(pk, &e), 0);
	f = bclose(&b);
	/* the decoder refuses the message whole ... */
	cr_assert_eq(pdec(&f, &m), DKV_EPROTO);
	/* ... and the entry reader stops at the bad one */
	mpr_init(&cur, f.p, f.n, DKV_EPROTO);
	{
		uint64_t n4;
		uint32_t t;
		uint64_t id;

		cr_assert(peer_is_peer_frame(f.p, f.n, &t, &id));
		cr_assert_eq(mpr_array(&cur, &n4), 0);
		for (int i = 0; i < 3; i++)
			cr_assert_eq(mpr_skip(&cur, 1), 0);
		cr_assert_eq(mpr_array(&cur, &n4), 0);
		cr_assert_eq(mpr_skip(&cur, 1), 0);
		cr_assert_eq(mpr_skip(&cur, 1), 0);
		cr_assert_eq(mpr_array(&cur, &left), 0);
	}
	cr_assert_eq(peer_entry_next(&cur, &left, &got), 1);
	assert_entry_eq(&got, &e, "first", 0);
	cr_assert_eq(peer_entry_next(&cur, &left, &got), DKV_EPROTO);
	/* check_bytes() survives it and sees it refused */
	cr_assert_eq(check_bytes(f.p, f.n, NULL), DKV_EPROTO);
	free(f.p);
}

/* A SYNC or gossip ACK with an array header claiming n entries, followed
 * by `have` entries: valid ones when how < 0, else the integer how. */
static payload claim_entries(bool gossip, uint32_t n, uint32_t have, int how)
{
	char idb[PEER_MAX_ADDR + 1], adb[PEER_MAX_ADDR + 1];
	peer_entry e = mkentry(2, idb, adb);
	msgpack_packer *pk;
	build b;

	pk = bopen(&b);
	if (gossip) {
		cr_assert_eq(gossip_begin(pk, GOSSIP_ACK, "i", "a", 1, NULL, n), 0);
	} else {
		phdr(pk, PROTO_VERSION, PEER_SYNC, 0, 3);
		pstr(pk, "from");
		msgpack_pack_true(pk);
		msgpack_pack_array(pk, n);
	}
	for (uint32_t i = 0; i < have; i++)
		if (how < 0)
			cr_assert_eq(peer_pack_entry(pk, &e), 0);
		else
			msgpack_pack_uint32(pk, (uint32_t)how);
	return bclose(&b);
}

static int dec_either(bool gossip, const payload *f, uint64_t *n)
{
	gossip_msg g;
	peer_msg m;
	int rc;

	if (gossip) {
		rc = gdec(f, &g);
		*n = g.nentries;
		if (rc == 0)
			cr_assert_eq(walk_entries(g.entries, g.nentries, f), 0);
	} else {
		rc = pdec(f, &m);
		*n = m.nentries;
		if (rc == 0)
			cr_assert_eq(walk_entries(m.entries, m.nentries, f), 0);
	}
	return rc;
}

Test(peer, entry_counts_are_bounded)
{
	for (int gossip = 0; gossip < 2; gossip++) {
		uint64_t n = 0;
		payload f;

		/* 4096 real entries decode, 4097 real entries do not */
		f = claim_entries(gossip, PEER_MAX_ENTRIES, PEER_MAX_ENTRIES, -1);
		cr_assert_eq(dec_either(gossip, &f, &n), 0);
		cr_assert_eq(n, PEER_MAX_ENTRIES);
		free(f.p);
		f = claim_entries(gossip, PEER_MAX_ENTRIES + 1, PEER_MAX_ENTRIES + 1, -1);
		cr_assert_gt(f.n, 10 * PEER_MAX_ENTRIES, "the bytes are there");
		cr_assert_eq(dec_either(gossip, &f, &n), DKV_EPROTO, "4097 entries accepted");
		free(f.p);
		/* more entries claimed than there are bytes */
		f = claim_entries(gossip, 4000, 5, 0);
		cr_assert_eq(dec_either(gossip, &f, &n), DKV_EPROTO);
		free(f.p);
		f = claim_entries(gossip, UINT32_MAX, 3, 0);
		cr_assert_eq(dec_either(gossip, &f, &n), DKV_EPROTO);
		free(f.p);
		/* claimed one more than there are */
		f = claim_entries(gossip, 4, 3, -1);
		cr_assert_eq(dec_either(gossip, &f, &n), DKV_EPROTO);
		free(f.p);
		/* one fewer: the last is trailing */
		f = claim_entries(gossip, 2, 3, -1);
		cr_assert_eq(dec_either(gossip, &f, &n), DKV_EPROTO);
		free(f.p);
	}
}

Test(peer, entries_nested_past_the_skip_limit_are_refused)
{
	for (int gossip = 0; gossip < 2; gossip++)
		for (int depth = 1; depth <= 40; depth++) {
			msgpack_packer *pk;
			gossip_msg g;
			peer_msg m;
			payload f;
			build b;
			int rc;

			pk = bopen(&b);
			if (gossip) {
				cr_assert_eq(gossip_begin(pk, GOSSIP_PING, "i", "a", 1, NULL, 1), 0);
			} else {
				phdr(pk, PROTO_VERSION, PEER_SYNC, 0, 3);
				pstr(pk, "from");
				msgpack_pack_true(pk);
				msgpack_pack_array(pk, 1);
			}
			fill_nested(pk, depth);
			f = bclose(&b);
			rc = gossip ? gdec(&f, &g) : pdec(&f, &m);
			/* entries are checked whole: no nesting is valid */
			cr_assert_eq(rc, DKV_EPROTO, "depth %d (%s)", depth,
				     gossip ? "gossip" : "SYNC");
			if (rc == 0) {
				mpr cur = gossip ? g.entries : m.entries;
				uint64_t left = 1;
				peer_entry e;

				cr_assert_eq(peer_entry_next(&cur, &left, &e), DKV_EPROTO);
			}
			free(f.p);
		}
	/* and a bomb of 100000 levels is refused, not recursed into */
	{
		size_t n = 100000;
		uint8_t *b = malloc(n + 16);
		payload f;
		peer_msg m;
		size_t at = 0;

		cr_assert_not_null(b);
		memcpy(b, (const uint8_t[]){ 0x94, 0x01, 0xcc, 0x86, 0x00, 0x93, 0xa1, 'f', 0xc3,
					     0xdc, 0x00, 0x01 }, 12);
		at = 12;
		memset(b + at, 0x91, n);
		f = mkpayload(b, at + n);
		cr_assert_eq(pdec(&f, &m), DKV_EPROTO);
		free(f.p);
		free(b);
	}
}

/* --- gossip shapes ------------------------------------------------------------ */

Test(peer, wrong_gossip_shapes_are_refused)
{
	static const struct {
		const char *what;
		uint8_t b[24];
		size_t n;
		int want;
	} cases[] = {
		{ "control", { 0x97, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90 }, 10, 0 },
		{ "control pingreq", { 0x97, 0x01, 0x03, 0xa1, 'i', 0xa1, 'a', 0x05, 0xa1, 't',
				       0x90 }, 11, 0 },
		{ "six", { 0x96, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0 }, 9, DKV_EPROTO },
		{ "eight", { 0x98, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90, 0xc0 }, 11,
		  DKV_EPROTO },
		{ "version 2", { 0x97, 0x02, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90 }, 10,
		  DKV_EPROTO },
		{ "kind 0", { 0x97, 0x01, 0x00, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90 }, 10,
		  DKV_EPROTO },
		{ "kind 4", { 0x97, 0x01, 0x04, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90 }, 10,
		  DKV_EPROTO },
		{ "kind 2^32+1", { 0x97, 0x01, 0xcf, 0, 0, 0, 1, 0, 0, 0, 1, 0xa1, 'i', 0xa1, 'a',
				   0x05, 0xc0, 0x90 }, 18, DKV_EPROTO },
		{ "empty from_id", { 0x97, 0x01, 0x01, 0xa0, 0xa1, 'a', 0x05, 0xc0, 0x90 }, 9,
		  DKV_EPROTO },
		{ "empty from_addr", { 0x97, 0x01, 0x01, 0xa1, 'i', 0xa0, 0x05, 0xc0, 0x90 }, 9,
		  DKV_EPROTO },
		{ "from_id bin", { 0x97, 0x01, 0x01, 0xc4, 0x01, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90 },
		  11, DKV_EPROTO },
		{ "seq -1", { 0x97, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0xff, 0xc0, 0x90 }, 10,
		  DKV_EPROTO },
		{ "seq nil", { 0x97, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0xc0, 0xc0, 0x90 }, 10,
		  DKV_EPROTO },
		{ "target int", { 0x97, 0x01, 0x03, 0xa1, 'i', 0xa1, 'a', 0x05, 0x07, 0x90 }, 10,
		  DKV_EPROTO },
		{ "target bin", { 0x97, 0x01, 0x03, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc4, 0x01, 't',
				  0x90 }, 12, DKV_EPROTO },
		{ "entries nil", { 0x97, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0xc0 }, 10,
		  DKV_EPROTO },
		{ "entries map", { 0x97, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x80 }, 10,
		  DKV_EPROTO },
		{ "a map", { 0x87, 0x01, 0x01, 0xa1, 'i', 0xa1, 'a', 0x05, 0xc0, 0x90 }, 10,
		  DKV_EPROTO },
		{ "a peer frame", { 0x94, 0x01, 0xcc, 0x85, 0x07, 0x92, 0xa1, 'a', 0x00 }, 9,
		  DKV_EPROTO },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		payload f = mkpayload(cases[i].b, cases[i].n);
		gossip_msg g;
		peer_msg m;

		cr_assert_eq(gdec(&f, &g), cases[i].want, "%s", cases[i].what);
		/* and no datagram is a peer frame */
		cr_assert_eq(pdec(&f, &m), i == sizeof cases / sizeof cases[0] - 1 ? 0 : DKV_EPROTO,
			     "%s", cases[i].what);
		free(f.p);
	}
}

/* --- the blob bound ------------------------------------------------------------ */

/* A FWD from "a" whose payload is a bin 32 declaring len bytes, all there
 * (lazily mapped zero pages: nothing reads them). */
static int fwd_of(uint64_t len, size_t *datalen)
{
	static const uint8_t head[] = { 0x94, 0x01, 0xcc, 0x80, 0x00, 0x92, 0xa1, 'a', 0xc6 };
	size_t total = sizeof head + 4 + (size_t)len;
	uint8_t *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	peer_msg m;
	int rc;

	cr_assert(p != MAP_FAILED, "mmap %zu: %s", total, strerror(errno));
	memcpy(p, head, sizeof head);
	p[sizeof head] = (uint8_t)(len >> 24);
	p[sizeof head + 1] = (uint8_t)(len >> 16);
	p[sizeof head + 2] = (uint8_t)(len >> 8);
	p[sizeof head + 3] = (uint8_t)len;
	rc = peer_decode(p, total, &m, NULL, 0);
	*datalen = m.datalen;
	if (rc == 0)
		cr_assert(m.data == p + sizeof head + 4);
	cr_assert_eq(munmap(p, total), 0);
	return rc;
}

Test(peer, blobs_are_bounded_at_one_gib)
{
	size_t len = 0;

	cr_assert_eq(fwd_of(1u << 30, &len), 0, "a 1 GiB payload refused");
	cr_assert_eq(len, (size_t)1 << 30);
	cr_assert_eq(fwd_of((1u << 30) + 1, &len), DKV_EPROTO, "past 1 GiB accepted");
	/* and a declared length past the bytes there is refused too */
	{
		payload f = P(0x94, 0x01, 0xcc, 0x80, 0x00, 0x92, 0xa1, 'a', 0xc6, 0xff, 0xff,
			      0xff, 0xff, 0x00);
		peer_msg m;

		cr_assert_eq(pdec(&f, &m), DKV_EPROTO);
		free(f.p);
	}
}

/* --- names ---------------------------------------------------------------- */

/*
 * A name cut at a NUL ("a:1\0junk" read as "a:1") would send the answer to
 * an address the sender did not write; an empty one to "".  Both are
 * refused, in frames and in gossip (a str target of 0 bytes too).
 */
Test(peer, from_with_a_nul_or_empty_is_refused)
{
	static const char nul_from[] = { 'a', ':', '1', '\0', 'j', 'u', 'n', 'k' };

	/* control */
	ACCEPTED("from a:1", PEER_RACK, 2, pstr(pk, "a:1"); msgpack_pack_uint32(pk, 0));
	REFUSED("from with a NUL", PEER_RACK, 2, pstrn(pk, nul_from, sizeof nul_from);
		msgpack_pack_uint32(pk, 0));
	REFUSED("FWD from with a NUL", PEER_FWD, 2, pstrn(pk, nul_from, sizeof nul_from);
		pbin(pk, "x", 1));
	REFUSED("SYNC from with a NUL", PEER_SYNC, 3, pstrn(pk, nul_from, sizeof nul_from);
		msgpack_pack_true(pk); msgpack_pack_array(pk, 0));
	REFUSED("empty from", PEER_RACK, 2, pstrn(pk, "", 0); msgpack_pack_uint32(pk, 0));
}

/* BUG: as above, for gossip: from_id "n\0x", from_addr "a:1\0x" and a
 * target "t\0x" are accepted as "n", "a:1" and "t".  Same fix. */
Test(peer, gossip_names_with_a_nul_are_refused)
{
	static const struct {
		const char *what;
		uint8_t b[24];
		size_t n;
	} cases[] = {
		{ "from_id", { 0x97, 0x01, 0x01, 0xa3, 'n', 0x00, 'x', 0xa1, 'a', 0x05, 0xc0,
			       0x90 }, 12 },
		{ "from_addr", { 0x97, 0x01, 0x01, 0xa1, 'n', 0xa5, 'a', ':', '1', 0x00, 'x', 0x05,
				 0xc0, 0x90 }, 14 },
		{ "target", { 0x97, 0x01, 0x03, 0xa1, 'n', 0xa1, 'a', 0x05, 0xa3, 't', 0x00, 'x',
			      0x90 }, 13 },
		{ "from_id NUL first", { 0x97, 0x01, 0x01, 0xa2, 0x00, 'n', 0xa1, 'a', 0x05, 0xc0,
					 0x90 }, 11 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		payload f = mkpayload(cases[i].b, cases[i].n);
		gossip_msg g;
		int rc = gossip_decode(f.p, f.n, &g);

		free(f.p);
		cr_assert_eq(rc, DKV_EPROTO, "%s with a NUL accepted", cases[i].what);
	}
}
