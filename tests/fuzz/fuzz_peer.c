#include "config.h"
/*
 * fuzz_peer.c -- libFuzzer harness for the codec of the messages nodes send
 * each other (src/peer.c over the bounded reader of src/mpr.c): peer frame
 * payloads (peer_is_peer_frame, peer_decode) and gossip datagrams
 * (gossip_decode), with the member entries of both walked by
 * peer_entry_next.
 *
 * The input is tried as both: a peer frame's payload (the bytes after the
 * 4-byte length prefix) and a whole datagram.  Besides "no crash, no
 * sanitizer report, only the documented codes", every accepted message
 * must obey:
 *   - peer_is_peer_frame agrees with peer_decode on the type and the id;
 *   - its byte strings lie inside the input, its names are NUL-terminated
 *     and at most PEER_MAX_ADDR bytes, its entry count at most
 *     PEER_MAX_ENTRIES;
 *   - walking its entries gives 1 per valid entry, then 0 after exactly
 *     nentries, or DKV_EPROTO; every entry returned has a non-empty id and
 *     address without a NUL, status <= 3 and liveness <= 2;
 *   - when every entry is valid, re-encoded with the encoders (peer_encode_*,
 *     peer_sync_begin/peer_pack_entry/peer_sync_end, the begin/pair/end
 *     writers of HOFF, XDATA and REAP*, gossip_begin) it decodes again to
 *     the same message, field by field and entry by entry (a SYNC's id
 *     excepted: its encoder always writes 0; XDATA's bitmap, in data, is
 *     compared like any data), and encoding that gives the same bytes (the
 *     encoding is a fixed point);
 * and every refused peer frame leaves a reason in err, within errlen.  A
 * broken property abort()s, which libFuzzer reports as a crash.
 *
 * Build: `make fuzz` (rules in tests/fuzz/peer.inc), or by hand:
 *   clang -fsanitize=fuzzer,address,undefined -g -O1 -std=c11 -I. -Isrc \
 *     tests/fuzz/fuzz_peer.c src/peer.c src/mpr.c src/error.c -lmsgpackc
 * Seeds: tests/fuzz/corpus/peer/, one valid message of each kind, written
 * by the encoders (peer-*: frame payloads, gossip-*: datagrams), and a few
 * one step from valid (bad-*).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "peer.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#include "fuzz_check.h"

static bool bytes_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* True iff [q, q + n) lies inside [p, p + size) (or n is 0). */
static bool inside(const void *q, size_t n, const uint8_t *p, size_t size)
{
	const uint8_t *b = q;

	return n == 0 || (b >= p && n <= size && b <= p + size - n);
}

/* A decoded name: NUL-terminated within its buffer. */
static bool name_ok(const char *s)
{
	return memchr(s, '\0', PEER_MAX_ADDR + 1) != NULL;
}

static bool entry_eq(const peer_entry *a, const peer_entry *b)
{
	return bytes_eq(a->id, a->idlen, b->id, b->idlen) &&
	       bytes_eq(a->addr, a->addrlen, b->addr, b->addrlen) && a->status == b->status &&
	       a->liveness == b->liveness && a->version == b->version &&
	       a->incarnation == b->incarnation && a->keys == b->keys &&
	       a->keys_stamp == b->keys_stamp && a->actor == b->actor &&
	       a->has_progress == b->has_progress &&
	       (!a->has_progress || memcmp(&a->progress, &b->progress, sizeof(a->progress)) == 0);
}

/* Walk n entries from cur, checking each against the contract; returns the
 * final code (0: all valid, DKV_EPROTO: one was not). */
static int walk_entries(mpr cur, uint64_t n, const uint8_t *p, size_t size)
{
	uint64_t left = n, seen = 0;
	peer_entry e;
	int rc;

	while ((rc = peer_entry_next(&cur, &left, &e)) == 1) {
		CHECK(inside(e.id, e.idlen, p, size) && inside(e.addr, e.addrlen, p, size));
		CHECK(e.idlen >= 1 && e.idlen <= PEER_MAX_ADDR);
		CHECK(e.addrlen >= 1 && e.addrlen <= PEER_MAX_ADDR);
		CHECK(memchr(e.id, '\0', e.idlen) == NULL);
		CHECK(memchr(e.addr, '\0', e.addrlen) == NULL);
		CHECK(e.status <= 3 && e.liveness <= 2);
		CHECK(++seen <= n);
	}
	CHECK(rc == 0 || rc == DKV_EPROTO);
	if (rc == 0) {
		CHECK(seen == n && left == 0);
		CHECK(mpr_left(&cur) == 0);   /* the entries end the message */
	}
	return rc;
}

/* Two entry cursors give the same entries. */
static bool entries_eq(mpr a, uint64_t na, mpr b, uint64_t nb)
{
	peer_entry ea, eb;
	int ra, rb;

	if (na != nb)
		return false;
	for (;;) {
		ra = peer_entry_next(&a, &na, &ea);
		rb = peer_entry_next(&b, &nb, &eb);
		if (ra != rb)
			return false;
		if (ra != 1)
			return true;
		if (!entry_eq(&ea, &eb))
			return false;
	}
}

/* The entries of a HOFF, XDATA, AAEWANT, REAPQ, REAP or REAPA, walked side
 * by side by value (a re-encoding may pick other integer widths). */
static bool items_eq(const peer_msg *a, const peer_msg *b)
{
	mpr ca = a->entries, cb = b->entries;
	uint64_t la = a->nentries, lb = b->nentries;

	if (la != lb)
		return false;
	for (;;) {
		const uint8_t *ka = NULL, *kb = NULL, *oa = NULL, *ob = NULL;
		size_t kla = 0, klb = 0, ola = 0, olb = 0;
		uint64_t ha = 0, hb = 0;
		bool ya = false, yb = false;
		int ra, rb;

		switch (a->type) {
		case PEER_HOFF:
		case PEER_XDATA:   /* key, object, ... as HOFF's */
			ra = peer_hoff_next(&ca, &la, &ka, &kla, &oa, &ola);
			rb = peer_hoff_next(&cb, &lb, &kb, &klb, &ob, &olb);
			break;
		case PEER_AAEWANT:
			ra = peer_aaewant_next(&ca, &la, &ha);
			rb = peer_aaewant_next(&cb, &lb, &hb);
			break;
		case PEER_REAPA:
			ra = peer_reapa_next(&ca, &la, &ya);
			rb = peer_reapa_next(&cb, &lb, &yb);
			break;
		default:   /* REAPQ, REAP */
			ra = peer_reap_next(&ca, &la, &ka, &kla, &ha);
			rb = peer_reap_next(&cb, &lb, &kb, &klb, &hb);
			break;
		}
		if (ra != rb)
			return false;
		if (ra != 1)
			return true;
		if (!bytes_eq(ka, kla, kb, klb) || !bytes_eq(oa, ola, ob, olb) || ha != hb || ya != yb)
			return false;
	}
}

static bool peer_eq(const peer_msg *a, const peer_msg *b)
{
	bool member_entries = a->type == PEER_SYNC;

	return a->type == b->type && (a->type == PEER_SYNC || a->id == b->id) &&
	       strcmp(a->from, b->from) == 0 && a->has_data == b->has_data &&
	       bytes_eq(a->data, a->datalen, b->data, b->datalen) &&
	       bytes_eq(a->key, a->keylen, b->key, b->keylen) && a->code == b->code &&
	       a->flag == b->flag && strcmp(a->owner, b->owner) == 0 && a->count == b->count &&
	       a->delay_us == b->delay_us &&
	       a->partition == b->partition && a->first == b->first && a->n == b->n &&
	       a->root == b->root && a->lacking == b->lacking &&
	       (a->chain == NULL) == (b->chain == NULL) &&
	       bytes_eq(a->chain, a->chainlen, b->chain, b->chainlen) &&
	       (member_entries ? entries_eq(a->entries, a->nentries, b->entries, b->nentries) :
				 items_eq(a, b));
}

static bool gossip_eq(const gossip_msg *a, const gossip_msg *b)
{
	return a->kind == b->kind && strcmp(a->from_id, b->from_id) == 0 &&
	       strcmp(a->from_addr, b->from_addr) == 0 && a->seq == b->seq &&
	       strcmp(a->target, b->target) == 0 &&
	       entries_eq(a->entries, a->nentries, b->entries, b->nentries);
}

/* Pack the (all valid) entries of a decoded message. */
static void copy_entries(msgpack_packer *pk, mpr cur, uint64_t n)
{
	peer_entry e;
	int rc;

	while ((rc = peer_entry_next(&cur, &n, &e)) == 1)
		CHECK(peer_pack_entry(pk, &e) == 0);
	CHECK(rc == 0);
}

/* A frame's big-endian length prefix (as proto_frame_length, which lives
 * in proto.c: this harness links only what peer.c needs). */
static size_t frame_length(const uint8_t *h)
{
	return (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
}

/* Append m, decoded and with valid entries, to sb with the encoders. */
static void encode_peer(msgpack_sbuffer *sb, const peer_msg *m)
{
	const uint8_t *d = m->data != NULL ? m->data : (const uint8_t *)"";
	msgpack_packer pk;
	size_t start;
	int rc = -1;

	CHECK(m->type >= PEER_FWD && m->type <= PEER_XDATA);
	switch (m->type) {
	case PEER_FWD:
		rc = peer_encode_fwd(sb, m->id, m->from, d, m->datalen);
		break;
	case PEER_FWDREPLY:
		rc = peer_encode_fwdreply(sb, m->id, m->from, d, m->datalen);
		break;
	case PEER_RGET:
		rc = peer_encode_rget(sb, m->id, m->from, m->key, m->keylen,
				      m->owner[0] ? m->owner : NULL);
		break;
	case PEER_RVALUE:
		rc = peer_encode_rvalue(sb, m->id, m->from, m->code, m->has_data ? d : NULL,
					m->datalen);
		break;
	case PEER_RPUT:
		rc = peer_encode_rput(sb, m->id, m->from, m->key, m->keylen, d, m->datalen,
				      m->flag, m->owner[0] ? m->owner : NULL);
		break;
	case PEER_RACK:
		rc = peer_encode_rack(sb, m->id, m->from, m->code);
		break;
	case PEER_HOFF: {
		mpr e = m->entries;
		uint64_t left = m->nentries;
		const uint8_t *k, *o;
		size_t kl, ol;

		CHECK(peer_hoff_begin(sb, &pk, &start, m->id, m->from, m->owner,
				      (uint32_t)(m->nentries / 2)) == 0);
		while (peer_hoff_next(&e, &left, &k, &kl, &o, &ol) == 1)
			CHECK(peer_hoff_pair(&pk, k, kl, o, ol) == 0);
		rc = peer_hoff_end(sb, start);
		break;
	}
	case PEER_XDATA: {
		mpr e = m->entries;
		uint64_t left = m->nentries;
		const uint8_t *k, *o;
		size_t kl, ol;

		CHECK(peer_xdata_begin(sb, &pk, &start, m->id, m->from, m->partition, m->code,
				       m->first, m->flag, m->count, m->n, d, m->datalen,
				       (uint32_t)(m->nentries / 2), m->delay_us) == 0);
		while (peer_hoff_next(&e, &left, &k, &kl, &o, &ol) == 1)
			CHECK(peer_hoff_pair(&pk, k, kl, o, ol) == 0);
		rc = peer_hoff_end(sb, start);
		break;
	}
	case PEER_XREQ:
		rc = peer_encode_xreq(sb, m->id, m->from, m->partition, m->first, m->n);
		break;
	case PEER_HACK:
		rc = peer_encode_hack(sb, m->id, m->from, m->code, m->count, m->delay_us);
		break;
	case PEER_AAEREQ:
		rc = peer_encode_aaereq(sb, m->id, m->from, m->partition, m->first, m->n,
					m->count, m->root);
		break;
	case PEER_AAESYM:
		rc = peer_encode_aaesym(sb, m->id, m->from, m->partition, m->code, m->count, m->root,
					d, m->datalen);
		break;
	case PEER_REAPQ:
	case PEER_REAP: {
		mpr e = m->entries;
		uint64_t left = m->nentries, h;
		const uint8_t *k;
		size_t kl;

		CHECK(peer_reap_begin(sb, &pk, &start, m->type, m->id, m->from, m->partition,
				      (uint32_t)(m->nentries / 2)) == 0);
		while (peer_reap_next(&e, &left, &k, &kl, &h) == 1)
			CHECK(peer_reap_pair(&pk, k, kl, h) == 0);
		rc = peer_reap_end(sb, start);
		break;
	}
	case PEER_REAPA: {
		mpr e = m->entries;
		uint64_t left = m->nentries;
		bool yes;

		CHECK(peer_reapa_begin(sb, &pk, &start, m->id, m->from, m->code,
				       (uint32_t)m->nentries) == 0);
		while (peer_reapa_next(&e, &left, &yes) == 1)
			CHECK((yes ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk)) == 0);
		rc = peer_reap_end(sb, start);
		break;
	}
	case PEER_AAEWANT: {
		mpr e = m->entries;
		uint64_t left = m->nentries, kh, *khs = calloc(m->nentries + 1, sizeof(*khs));
		size_t k = 0;

		CHECK(khs != NULL);
		while (peer_aaewant_next(&e, &left, &kh) == 1)
			khs[k++] = kh;
		rc = peer_encode_aaewant(sb, m->id, m->from, m->partition, m->flag, m->lacking,
					 khs, k);
		free(khs);
		break;
	}
	case PEER_SYNC:
		CHECK(m->nentries <= UINT32_MAX);
		CHECK(peer_sync_begin(sb, &pk, &start, m->from, m->flag,
				      (uint32_t)m->nentries, m->chain != NULL) == 0);
		copy_entries(&pk, m->entries, m->nentries);
		if (m->chain != NULL)
			CHECK(msgpack_sbuffer_write(sb, (const char *)m->chain, m->chainlen) == 0);
		rc = peer_sync_end(sb, start);
		break;
	default:
		abort();
	}
	CHECK(rc == 0);
	CHECK(sb->size > PROTO_HEADER_SIZE);
	CHECK(frame_length((const uint8_t *)sb->data) == sb->size - PROTO_HEADER_SIZE);
}

/* Re-encode an accepted m, decode it again, and compare. */
static void check_peer_round_trip(const peer_msg *m)
{
	msgpack_sbuffer a, b;
	char err[128];
	peer_msg d;
	int rc;

	msgpack_sbuffer_init(&a);
	encode_peer(&a, m);
	rc = peer_decode(a.data + PROTO_HEADER_SIZE, a.size - PROTO_HEADER_SIZE, &d, err,
			 sizeof err);
	if (rc != 0)
		fprintf(stderr, "re-decode: %d (%s)\n", rc, err);
	CHECK(rc == 0);
	CHECK(peer_eq(&d, m));

	/* the encoding is a fixed point */
	msgpack_sbuffer_init(&b);
	encode_peer(&b, &d);
	CHECK(bytes_eq(a.data, a.size, b.data, b.size));
	msgpack_sbuffer_destroy(&b);
	msgpack_sbuffer_destroy(&a);
}

static void encode_gossip(msgpack_sbuffer *sb, const gossip_msg *g)
{
	msgpack_packer pk;

	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	CHECK(g->nentries <= UINT32_MAX);
	CHECK(gossip_begin(&pk, g->kind, g->from_id, g->from_addr, g->seq,
			   g->target[0] != '\0' ? g->target : NULL, (uint32_t)g->nentries) == 0);
	copy_entries(&pk, g->entries, g->nentries);
}

static void check_gossip_round_trip(const gossip_msg *g)
{
	msgpack_sbuffer a, b;
	gossip_msg d;

	msgpack_sbuffer_init(&a);
	encode_gossip(&a, g);
	CHECK(gossip_decode(a.data, a.size, &d) == 0);
	CHECK(gossip_eq(&d, g));
	msgpack_sbuffer_init(&b);
	encode_gossip(&b, &d);
	CHECK(bytes_eq(a.data, a.size, b.data, b.size));
	msgpack_sbuffer_destroy(&b);
	msgpack_sbuffer_destroy(&a);
}

static void check_peer(const uint8_t *data, size_t size)
{
	char err[128], small[8];
	uint32_t type = 0;
	uint64_t id = 0;
	bool is_peer;
	peer_msg m;
	int rc;

	is_peer = peer_is_peer_frame(data, size, &type, &id);
	memset(err, 'x', sizeof err);
	rc = peer_decode(data, size, &m, err, sizeof err);
	CHECK(rc == 0 || rc == DKV_EPROTO);
	if (rc != 0) {
		CHECK(memchr(err, '\0', sizeof err) != NULL && err[0] != '\0');
		/* a short err buffer is cut, not overrun */
		memset(small, 'x', sizeof small);
		CHECK(peer_decode(data, size, &m, small, sizeof small - 1) == rc);
		CHECK(small[sizeof small - 2] == '\0' && small[sizeof small - 1] == 'x');
		CHECK(peer_decode(data, size, &m, NULL, 0) == rc);
		return;
	}
	CHECK(is_peer && type == m.type && id == m.id);
	CHECK(m.type >= PEER_FWD && m.type <= PEER_XDATA);
	CHECK(name_ok(m.from) && name_ok(m.owner));
	CHECK(inside(m.data, m.datalen, data, size) && inside(m.key, m.keylen, data, size));
	switch (m.type) {
	case PEER_SYNC:    CHECK(m.nentries <= PEER_MAX_ENTRIES); break;
	case PEER_HOFF:
	case PEER_XDATA:   CHECK(m.nentries <= 2 * PEER_MAX_HOFF && m.nentries % 2 == 0); break;
	case PEER_AAEWANT: CHECK(m.nentries <= PEER_MAX_WANT); break;
	case PEER_REAPA:   CHECK(m.nentries <= PEER_MAX_REAP); break;
	case PEER_REAPQ:
	case PEER_REAP:    CHECK(m.nentries <= 2 * PEER_MAX_REAP && m.nentries % 2 == 0); break;
	default:           CHECK(m.nentries == 0); break;
	}
	/* XDATA's bitmap is data/datalen whatever has_data says (peer.c
	 * leaves it false) */
	CHECK(m.type == PEER_RVALUE || m.type == PEER_XDATA ||
	      m.has_data == (m.type == PEER_FWD || m.type == PEER_FWDREPLY ||
			     m.type == PEER_RPUT || m.type == PEER_AAESYM));
	CHECK(m.has_data || m.datalen == 0 || m.type == PEER_XDATA);
	/* the bitmap of at most 65536 partitions; partitions are 16 bits */
	CHECK(m.type != PEER_XDATA || m.datalen <= 65536 / 8);
	CHECK((m.type != PEER_XREQ && m.type != PEER_XDATA) || m.partition <= 65535);
	CHECK((m.type == PEER_RGET || m.type == PEER_RPUT) == (m.keylen > 0));
	CHECK((m.type == PEER_HOFF) <= (m.owner[0] != '\0'));
	if (m.type != PEER_SYNC || walk_entries(m.entries, m.nentries, data, size) == 0)
		check_peer_round_trip(&m);
}

static void check_gossip(const uint8_t *data, size_t size)
{
	gossip_msg g;
	int rc;

	rc = gossip_decode(data, size, &g);
	CHECK(rc == 0 || rc == DKV_EPROTO);
	if (rc != 0)
		return;
	CHECK(g.kind >= GOSSIP_PING && g.kind <= GOSSIP_PINGREQ);
	CHECK(name_ok(g.from_id) && name_ok(g.from_addr) && name_ok(g.target));
	CHECK(g.from_id[0] != '\0' && g.from_addr[0] != '\0');
	CHECK(g.nentries <= PEER_MAX_ENTRIES);
	if (walk_entries(g.entries, g.nentries, data, size) == 0)
		check_gossip_round_trip(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_peer(data, size);
	check_gossip(data, size);
	return 0;
}
