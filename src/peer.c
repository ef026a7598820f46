#include "config.h"
/*
 * peer.c -- peer frames and gossip datagrams; see peer.h.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "peer.h"
#include "proto.h"

#define PEER_MAX_BLOB (1u << 30)
/* Elements of an entry (peer.h, ENTRIES): with the actor, and without. */
#define PEER_ENTRY_PROG 10u
#define PEER_ENTRY_LEN 9u
#define PEER_ENTRY_OLD 8u
/* Elements of an entry's progress; nesting a SYNC's epochs may have. */
#define PEER_PROGRESS_LEN 7u
#define PEER_EPOCHS_DEPTH 4u

/* --- decoding ------------------------------------------------------------- */

static int read_header(mpr *r, uint32_t *type, uint64_t *id)
{
	uint64_t n, v, t;

	if (mpr_array(r, &n) != 0 || n != 4 || mpr_uint(r, &v) != 0 || v != PROTO_VERSION ||
	    mpr_uint(r, &t) != 0 || t > UINT32_MAX || mpr_uint(r, id) != 0)
		return DKV_EPROTO;
	*type = (uint32_t)t;
	return 0;
}

bool peer_is_peer_frame(const void *payload, size_t len, uint32_t *type, uint64_t *id)
{
	mpr r;

	mpr_init(&r, payload, len, DKV_EPROTO);
	return read_header(&r, type, id) == 0 && *type >= 128;
}

/* A non-empty str of at most PEER_MAX_ADDR bytes without NUL bytes (a
 * name cut short at a NUL would send answers somewhere else), copied
 * NUL-terminated to out. */
static int read_name(mpr *r, char *out)
{
	const char *s;
	size_t len;

	if (mpr_str(r, PEER_MAX_ADDR, &s, &len) != 0 || len == 0 ||
	    memchr(s, '\0', len) != NULL)
		return DKV_EPROTO;
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

/* Every entry must be valid before any is used: a message whose tenth
 * entry is garbage is refused whole, not applied in part. */
static int check_entries(mpr *r, uint64_t n)
{
	peer_entry e;
	int rc;

	while ((rc = peer_entry_next(r, &n, &e)) == 1)
		;
	return rc;
}

static int read_partition(mpr *r, uint32_t *p)
{
	uint64_t v;

	if (mpr_uint(r, &v) != 0 || v > 65535)
		return DKV_EPROTO;
	*p = (uint32_t)v;
	return 0;
}

/* A hint's owner: a node id, never empty. */
static int read_owner(mpr *r, char *out)
{
	if (read_name(r, out) != 0 || out[0] == '\0')
		return DKV_EPROTO;
	return 0;
}

int peer_decode(const void *payload, size_t len, peer_msg *m, char *err, size_t errlen)
{
	uint64_t n, code;
	const char *what = "malformed peer message";
	bool nil;
	mpr r;

	memset(m, 0, sizeof(*m));
	mpr_init(&r, payload, len, DKV_EPROTO);
	if (read_header(&r, &m->type, &m->id) != 0)
		goto bad;
	if (mpr_array(&r, &n) != 0 || n < 2 || read_name(&r, m->from) != 0)
		goto bad;
	switch (m->type) {
	case PEER_FWD:
	case PEER_FWDREPLY:
		if (n != 2 || mpr_bin(&r, PEER_MAX_BLOB, &m->data, &m->datalen) != 0)
			goto bad;
		m->has_data = true;
		break;
	case PEER_RGET:
		if ((n != 2 && n != 3) || mpr_bin(&r, PEER_MAX_BLOB, &m->key, &m->keylen) != 0 ||
		    m->keylen == 0 || (n == 3 && read_owner(&r, m->owner) != 0))
			goto bad;
		break;
	case PEER_RVALUE:
		if (n != 3 || mpr_uint(&r, &code) != 0 || code > UINT32_MAX ||
		    mpr_bin_or_nil(&r, PEER_MAX_BLOB, &nil, &m->data, &m->datalen) != 0)
			goto bad;
		m->code = (uint32_t)code;
		m->has_data = !nil;
		break;
	case PEER_RPUT:
		if ((n != 4 && n != 5) || mpr_bin(&r, PEER_MAX_BLOB, &m->key, &m->keylen) != 0 ||
		    m->keylen == 0 || mpr_bin(&r, PEER_MAX_BLOB, &m->data, &m->datalen) != 0 ||
		    mpr_bool(&r, &m->flag) != 0 || (n == 5 && read_owner(&r, m->owner) != 0))
			goto bad;
		m->has_data = true;
		break;
	case PEER_HOFF:
		if (n != 3 || read_owner(&r, m->owner) != 0 || mpr_array(&r, &m->nentries) != 0 ||
		    m->nentries % 2 != 0 || m->nentries / 2 > PEER_MAX_HOFF ||
		    m->nentries > mpr_left(&r))
			goto bad;
		m->entries = r;
		for (uint64_t i = 0; i < m->nentries; i++) {
			const uint8_t *b;
			size_t bl;

			if (mpr_bin(&r, PEER_MAX_BLOB, &b, &bl) != 0 || (i % 2 == 0 && bl == 0))
				goto bad;
		}
		break;
	case PEER_XREQ:
		if (n != 4 || read_partition(&r, &m->partition) != 0 ||
		    mpr_uint(&r, &m->first) != 0 || mpr_uint(&r, &m->n) != 0)
			goto bad;
		break;
	case PEER_XDATA:
		if ((n != 9 && n != 10) || read_partition(&r, &m->partition) != 0 ||
		    mpr_uint(&r, &code) != 0 || code > UINT32_MAX || mpr_uint(&r, &m->first) != 0 ||
		    mpr_bool(&r, &m->flag) != 0 || mpr_uint(&r, &m->count) != 0 ||
		    mpr_uint(&r, &m->n) != 0 ||
		    mpr_bin(&r, 65536 / 8, &m->data, &m->datalen) != 0)
			goto bad;
		m->code = (uint32_t)code;
		if (n == 10 && (mpr_uint(&r, &code) != 0 || code == 0 || code > UINT32_MAX))
			goto bad;   /* 0 is written as no element */
		m->delay_us = n == 10 ? (uint32_t)code : 0;
		if (mpr_array(&r, &m->nentries) != 0 ||
		    m->nentries % 2 != 0 || m->nentries / 2 > PEER_MAX_HOFF ||
		    m->nentries > mpr_left(&r))
			goto bad;
		m->entries = r;
		for (uint64_t i = 0; i < m->nentries; i++) {
			const uint8_t *b;
			size_t bl;

			if (mpr_bin(&r, PEER_MAX_BLOB, &b, &bl) != 0 || (i % 2 == 0 && bl == 0))
				goto bad;
		}
		break;
	case PEER_HACK:
		if ((n != 3 && n != 4) || mpr_uint(&r, &code) != 0 || code > UINT32_MAX ||
		    mpr_uint(&r, &m->count) != 0)
			goto bad;
		m->code = (uint32_t)code;
		if (n == 4 && (mpr_uint(&r, &code) != 0 || code == 0 || code > UINT32_MAX))
			goto bad;   /* 0 is written as no element */
		m->delay_us = n == 4 ? (uint32_t)code : 0;
		break;
	case PEER_AAEREQ:
		if (n != 6 || read_partition(&r, &m->partition) != 0 ||
		    mpr_uint(&r, &m->first) != 0 || mpr_uint(&r, &m->n) != 0 ||
		    mpr_uint(&r, &m->count) != 0 || mpr_uint(&r, &m->root) != 0)
			goto bad;
		break;
	case PEER_AAESYM:
		if (n != 6 || read_partition(&r, &m->partition) != 0 ||
		    mpr_uint(&r, &code) != 0 || code > UINT32_MAX || mpr_uint(&r, &m->count) != 0 ||
		    mpr_uint(&r, &m->root) != 0 || mpr_bin(&r, PEER_MAX_BLOB, &m->data, &m->datalen) != 0)
			goto bad;
		m->code = (uint32_t)code;
		m->has_data = true;
		break;
	case PEER_REAPQ:
	case PEER_REAP:
		if (n != 3 || read_partition(&r, &m->partition) != 0 ||
		    mpr_array(&r, &m->nentries) != 0 || m->nentries % 2 != 0 ||
		    m->nentries / 2 > PEER_MAX_REAP || m->nentries > mpr_left(&r))
			goto bad;
		m->entries = r;
		for (uint64_t i = 0; i < m->nentries; i += 2) {
			const uint8_t *b;
			size_t bl;
			uint64_t h;

			if (mpr_bin(&r, PEER_MAX_BLOB, &b, &bl) != 0 || bl == 0 || mpr_uint(&r, &h) != 0)
				goto bad;
		}
		break;
	case PEER_REAPA:
		if (n != 3 || mpr_uint(&r, &code) != 0 || code > UINT32_MAX ||
		    mpr_array(&r, &m->nentries) != 0 || m->nentries > PEER_MAX_REAP ||
		    m->nentries > mpr_left(&r))
			goto bad;
		m->code = (uint32_t)code;
		m->entries = r;
		for (uint64_t i = 0; i < m->nentries; i++) {
			bool b;

			if (mpr_bool(&r, &b) != 0)
				goto bad;
		}
		break;
	case PEER_AAEWANT:
		if (n != 5 || read_partition(&r, &m->partition) != 0 || mpr_bool(&r, &m->flag) != 0 ||
		    mpr_bool(&r, &m->lacking) != 0 ||
		    mpr_array(&r, &m->nentries) != 0 || m->nentries > PEER_MAX_WANT ||
		    m->nentries > mpr_left(&r))
			goto bad;
		m->entries = r;
		for (uint64_t i = 0; i < m->nentries; i++) {
			uint64_t kh;

			if (mpr_uint(&r, &kh) != 0)
				goto bad;
		}
		break;
	case PEER_RACK:
		if (n != 2 || mpr_uint(&r, &code) != 0 || code > UINT32_MAX)
			goto bad;
		m->code = (uint32_t)code;
		break;
	case PEER_SYNC:
		if ((n != 3 && n != 4) || mpr_bool(&r, &m->flag) != 0 ||
		    mpr_array(&r, &m->nentries) != 0 ||
		    m->nentries > PEER_MAX_ENTRIES || m->nentries > mpr_left(&r))
			goto bad;
		m->entries = r;
		if (check_entries(&r, m->nentries) != 0)
			goto bad;
		m->entries.end = r.p;   /* the epochs, if any, follow */
		if (n == 4) {
			m->chain = r.p;
			int t = mpr_peek(&r);

			if ((t & 0xf0) != 0x90 && t != 0xdc && t != 0xdd)
				goto bad;   /* the epochs are an array */
			if (mpr_skip(&r, PEER_EPOCHS_DEPTH) != 0)
				goto bad;
			m->chainlen = (size_t)(r.p - m->chain);
		}
		break;
	default:
		what = "unknown peer message type";
		goto bad;
	}
	if (mpr_left(&r) != 0)
		goto bad;
	return 0;
bad:
	if (errlen > 0)
		snprintf(err, errlen, "%s (type %u)", what, m->type);
	return DKV_EPROTO;
}

int gossip_decode(const void *buf, size_t len, gossip_msg *m)
{
	uint64_t n, v, kind;
	mpr r;

	memset(m, 0, sizeof(*m));
	mpr_init(&r, buf, len, DKV_EPROTO);
	if (mpr_array(&r, &n) != 0 || n != 7 || mpr_uint(&r, &v) != 0 || v != PROTO_VERSION ||
	    mpr_uint(&r, &kind) != 0 || kind < GOSSIP_PING || kind > GOSSIP_PINGREQ ||
	    read_name(&r, m->from_id) != 0 || read_name(&r, m->from_addr) != 0 ||
	    mpr_uint(&r, &m->seq) != 0)
		return DKV_EPROTO;
	m->kind = (uint32_t)kind;
	if (!mpr_nil(&r) && read_name(&r, m->target) != 0)
		return DKV_EPROTO;
	if (mpr_array(&r, &m->nentries) != 0 || m->nentries > PEER_MAX_ENTRIES ||
	    m->nentries > mpr_left(&r))
		return DKV_EPROTO;
	m->entries = r;
	if (check_entries(&r, m->nentries) != 0)
		return DKV_EPROTO;
	return mpr_left(&r) == 0 ? 0 : DKV_EPROTO;
}

int peer_entry_next(mpr *r, uint64_t *left, peer_entry *e)
{
	uint64_t n, status, live;

	if (*left == 0)
		return 0;
	(*left)--;
	memset(e, 0, sizeof(*e));
	if (mpr_array(r, &n) != 0 ||
	    (n != PEER_ENTRY_OLD && n != PEER_ENTRY_LEN && n != PEER_ENTRY_PROG) ||
	    mpr_str(r, PEER_MAX_ADDR, &e->id, &e->idlen) != 0 || e->idlen == 0 ||
	    mpr_str(r, PEER_MAX_ADDR, &e->addr, &e->addrlen) != 0 || e->addrlen == 0 ||
	    mpr_uint(r, &status) != 0 || status > 3 ||
	    mpr_uint(r, &e->version) != 0 || mpr_uint(r, &e->incarnation) != 0 ||
	    mpr_uint(r, &live) != 0 || live > 2 ||
	    mpr_uint(r, &e->keys) != 0 || mpr_uint(r, &e->keys_stamp) != 0 ||
	    (n >= PEER_ENTRY_LEN && (mpr_uint(r, &e->actor) != 0 || e->actor == 0)))
		return DKV_EPROTO;
	if (n == PEER_ENTRY_PROG) {
		peer_progress *pg = &e->progress;
		uint64_t m;

		if (mpr_array(r, &m) != 0 || m != PEER_PROGRESS_LEN ||
		    mpr_uint(r, &pg->seq) != 0 ||
		    mpr_uint(r, &pg->ack[0]) != 0 || mpr_uint(r, &pg->ack[1]) != 0 ||
		    mpr_uint(r, &pg->sync[0]) != 0 || mpr_uint(r, &pg->sync[1]) != 0 ||
		    mpr_uint(r, &pg->read[0]) != 0 || mpr_uint(r, &pg->read[1]) != 0)
			return DKV_EPROTO;
		e->has_progress = true;
	}
	if (memchr(e->id, '\0', e->idlen) != NULL || memchr(e->addr, '\0', e->addrlen) != NULL)
		return DKV_EPROTO;
	e->status = (uint32_t)status;
	e->liveness = (uint32_t)live;
	return 1;
}

/* --- encoding ------------------------------------------------------------- */

#define PK(x) do { if ((x) != 0) goto nomem; } while (0)

static int frame_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start,
		       uint32_t type, uint64_t id, const char *from, uint32_t nbody)
{
	static const char hdr[PROTO_HEADER_SIZE];

	*start = sb->size;
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	if (msgpack_sbuffer_write(sb, hdr, sizeof(hdr)) != 0 ||
	    msgpack_pack_array(pk, 4) != 0 ||
	    msgpack_pack_uint32(pk, PROTO_VERSION) != 0 ||
	    msgpack_pack_uint32(pk, type) != 0 ||
	    msgpack_pack_uint64(pk, id) != 0 ||
	    msgpack_pack_array(pk, nbody) != 0 ||
	    msgpack_pack_str_with_body(pk, from, strlen(from)) != 0) {
		sb->size = *start;
		return -ENOMEM;
	}
	return 0;
}

static int frame_end(msgpack_sbuffer *sb, size_t start)
{
	size_t len = sb->size - start - PROTO_HEADER_SIZE;
	uint8_t *h = (uint8_t *)sb->data + start;

	if (len > UINT32_MAX) {
		sb->size = start;
		return DKV_ETOOBIG;
	}
	h[0] = (uint8_t)(len >> 24);
	h[1] = (uint8_t)(len >> 16);
	h[2] = (uint8_t)(len >> 8);
	h[3] = (uint8_t)len;
	return 0;
}

static int pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
	if (msgpack_pack_bin(pk, len) != 0)
		return -1;
	return len == 0 ? 0 : msgpack_pack_bin_body(pk, p, len);
}

static int encode_blob(msgpack_sbuffer *sb, uint32_t type, uint64_t id, const char *from,
		       const void *p, size_t len)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, type, id, from, 2) != 0)
		return -ENOMEM;
	PK(pack_bin(&pk, p, len));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_fwd(msgpack_sbuffer *sb, uint64_t id, const char *from,
		    const void *payload, size_t len)
{
	return encode_blob(sb, PEER_FWD, id, from, payload, len);
}

int peer_encode_fwdreply(msgpack_sbuffer *sb, uint64_t id, const char *from,
			 const void *frame, size_t len)
{
	return encode_blob(sb, PEER_FWDREPLY, id, from, frame, len);
}

int peer_encode_rget(msgpack_sbuffer *sb, uint64_t id, const char *from,
		     const void *key, size_t klen, const char *owner)
{
	msgpack_packer pk;
	size_t start;

	if (owner == NULL)
		return encode_blob(sb, PEER_RGET, id, from, key, klen);
	if (frame_begin(sb, &pk, &start, PEER_RGET, id, from, 3) != 0)
		return -ENOMEM;
	PK(pack_bin(&pk, key, klen));
	PK(msgpack_pack_str_with_body(&pk, owner, strlen(owner)));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_rvalue(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t code,
		       const void *obj, size_t objlen)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_RVALUE, id, from, 3) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, code));
	PK(obj == NULL ? msgpack_pack_nil(&pk) : pack_bin(&pk, obj, objlen));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_rput(msgpack_sbuffer *sb, uint64_t id, const char *from, const void *key,
		     size_t klen, const void *obj, size_t objlen, bool ack, const char *owner)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_RPUT, id, from, owner ? 5 : 4) != 0)
		return -ENOMEM;
	PK(pack_bin(&pk, key, klen));
	PK(pack_bin(&pk, obj, objlen));
	PK(ack ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	if (owner != NULL)
		PK(msgpack_pack_str_with_body(&pk, owner, strlen(owner)));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_rack(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t code)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_RACK, id, from, 2) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, code));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_hack(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t code,
		     uint64_t count, uint32_t delay_us)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_HACK, id, from, delay_us ? 4 : 3) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, code));
	PK(msgpack_pack_uint64(&pk, count));
	if (delay_us)
		PK(msgpack_pack_uint32(&pk, delay_us));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_hoff_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint64_t id,
		    const char *from, const char *owner, uint32_t npairs)
{
	if (frame_begin(sb, pk, start, PEER_HOFF, id, from, 3) != 0)
		return -ENOMEM;
	PK(msgpack_pack_str_with_body(pk, owner, strlen(owner)));
	PK(msgpack_pack_array(pk, 2 * npairs));
	return 0;
nomem:
	sb->size = *start;
	return -ENOMEM;
}

int peer_hoff_pair(msgpack_packer *pk, const void *key, size_t klen, const void *obj,
		   size_t objlen)
{
	return pack_bin(pk, key, klen) != 0 || pack_bin(pk, obj, objlen) != 0 ? -ENOMEM : 0;
}

int peer_hoff_end(msgpack_sbuffer *sb, size_t start)
{
	return frame_end(sb, start);
}

int peer_hoff_next(mpr *r, uint64_t *left, const uint8_t **key, size_t *klen,
		   const uint8_t **obj, size_t *objlen)
{
	if (*left < 2)
		return 0;
	*left -= 2;
	if (mpr_bin(r, PEER_MAX_BLOB, key, klen) != 0 || mpr_bin(r, PEER_MAX_BLOB, obj, objlen) != 0)
		return DKV_EPROTO;
	return 1;
}

int peer_encode_xreq(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
		     uint64_t cursor, uint64_t max_bytes)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_XREQ, id, from, 4) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, partition));
	PK(msgpack_pack_uint64(&pk, cursor));
	PK(msgpack_pack_uint64(&pk, max_bytes));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_xdata_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint64_t id,
		     const char *from, uint32_t partition, uint32_t code, uint64_t next, bool done,
		     uint64_t keys, uint64_t bytes, const void *empty, size_t emptylen,
		     uint32_t npairs, uint32_t delay_us)
{
	if (frame_begin(sb, pk, start, PEER_XDATA, id, from, delay_us ? 10 : 9) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(pk, partition));
	PK(msgpack_pack_uint32(pk, code));
	PK(msgpack_pack_uint64(pk, next));
	PK(done ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	PK(msgpack_pack_uint64(pk, keys));
	PK(msgpack_pack_uint64(pk, bytes));
	PK(pack_bin(pk, empty, emptylen));
	if (delay_us)
		PK(msgpack_pack_uint32(pk, delay_us));
	PK(msgpack_pack_array(pk, 2 * npairs));
	return 0;
nomem:
	sb->size = *start;
	return -ENOMEM;
}

int peer_encode_aaereq(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
		       uint64_t first, uint64_t n, uint64_t count, uint64_t root)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_AAEREQ, id, from, 6) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, partition));
	PK(msgpack_pack_uint64(&pk, first));
	PK(msgpack_pack_uint64(&pk, n));
	PK(msgpack_pack_uint64(&pk, count));
	PK(msgpack_pack_uint64(&pk, root));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_aaesym(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
		       uint32_t code, uint64_t count, uint64_t root, const void *run, size_t runlen)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_AAESYM, id, from, 6) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, partition));
	PK(msgpack_pack_uint32(&pk, code));
	PK(msgpack_pack_uint64(&pk, count));
	PK(msgpack_pack_uint64(&pk, root));
	PK(pack_bin(&pk, run, runlen));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_encode_aaewant(msgpack_sbuffer *sb, uint64_t id, const char *from, uint32_t partition,
			bool all, bool lacking, const uint64_t *keyhashes, size_t n)
{
	msgpack_packer pk;
	size_t start;

	if (frame_begin(sb, &pk, &start, PEER_AAEWANT, id, from, 5) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(&pk, partition));
	PK(all ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	PK(lacking ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	PK(msgpack_pack_array(&pk, n));
	for (size_t i = 0; i < n; i++)
		PK(msgpack_pack_uint64(&pk, keyhashes[i]));
	return frame_end(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int peer_reap_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint32_t type,
		    uint64_t id, const char *from, uint32_t partition, uint32_t npairs)
{
	if (frame_begin(sb, pk, start, type, id, from, 3) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(pk, partition));
	PK(msgpack_pack_array(pk, 2 * npairs));
	return 0;
nomem:
	sb->size = *start;
	return -ENOMEM;
}

int peer_reap_pair(msgpack_packer *pk, const void *key, size_t klen, uint64_t objhash)
{
	return pack_bin(pk, key, klen) != 0 || msgpack_pack_uint64(pk, objhash) != 0 ? -ENOMEM : 0;
}

int peer_reapa_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, uint64_t id,
		     const char *from, uint32_t code, uint32_t n)
{
	if (frame_begin(sb, pk, start, PEER_REAPA, id, from, 3) != 0)
		return -ENOMEM;
	PK(msgpack_pack_uint32(pk, code));
	PK(msgpack_pack_array(pk, n));
	return 0;
nomem:
	sb->size = *start;
	return -ENOMEM;
}

int peer_reap_end(msgpack_sbuffer *sb, size_t start)
{
	return frame_end(sb, start);
}

int peer_reap_next(mpr *r, uint64_t *left, const uint8_t **key, size_t *klen,
		   uint64_t *objhash)
{
	if (*left < 2)
		return 0;
	*left -= 2;
	if (mpr_bin(r, PEER_MAX_BLOB, key, klen) != 0 || mpr_uint(r, objhash) != 0)
		return DKV_EPROTO;
	return 1;
}

int peer_reapa_next(mpr *r, uint64_t *left, bool *yes)
{
	if (*left == 0)
		return 0;
	(*left)--;
	return mpr_bool(r, yes) == 0 ? 1 : DKV_EPROTO;
}

int peer_aaewant_next(mpr *r, uint64_t *left, uint64_t *keyhash)
{
	if (*left == 0)
		return 0;
	(*left)--;
	return mpr_uint(r, keyhash) == 0 ? 1 : DKV_EPROTO;
}

int peer_sync_begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start, const char *from,
		    bool reply, uint32_t nentries, bool with_epochs)
{
	if (frame_begin(sb, pk, start, PEER_SYNC, 0, from, with_epochs ? 4 : 3) != 0)
		return -ENOMEM;
	PK(reply ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
	PK(msgpack_pack_array(pk, nentries));
	return 0;
nomem:
	sb->size = *start;
	return -ENOMEM;
}

int peer_sync_end(msgpack_sbuffer *sb, size_t start)
{
	return frame_end(sb, start);
}

int gossip_begin(msgpack_packer *pk, uint32_t kind, const char *from_id, const char *from_addr,
		 uint64_t seq, const char *target, uint32_t nentries)
{
	PK(msgpack_pack_array(pk, 7));
	PK(msgpack_pack_uint32(pk, PROTO_VERSION));
	PK(msgpack_pack_uint32(pk, kind));
	PK(msgpack_pack_str_with_body(pk, from_id, strlen(from_id)));
	PK(msgpack_pack_str_with_body(pk, from_addr, strlen(from_addr)));
	PK(msgpack_pack_uint64(pk, seq));
	PK(target == NULL ? msgpack_pack_nil(pk) :
	   msgpack_pack_str_with_body(pk, target, strlen(target)));
	PK(msgpack_pack_array(pk, nentries));
	return 0;
nomem:
	return -ENOMEM;
}

int peer_pack_entry(msgpack_packer *pk, const peer_entry *e)
{
	bool prog = e->actor != 0 && e->has_progress;

	PK(msgpack_pack_array(pk, prog ? PEER_ENTRY_PROG : e->actor != 0 ? PEER_ENTRY_LEN
									  : PEER_ENTRY_OLD));
	PK(msgpack_pack_str_with_body(pk, e->id, e->idlen));
	PK(msgpack_pack_str_with_body(pk, e->addr, e->addrlen));
	PK(msgpack_pack_uint32(pk, e->status));
	PK(msgpack_pack_uint64(pk, e->version));
	PK(msgpack_pack_uint64(pk, e->incarnation));
	PK(msgpack_pack_uint32(pk, e->liveness));
	PK(msgpack_pack_uint64(pk, e->keys));
	PK(msgpack_pack_uint64(pk, e->keys_stamp));
	if (e->actor != 0)
		PK(msgpack_pack_uint64(pk, e->actor));
	if (prog) {
		const peer_progress *pg = &e->progress;

		PK(msgpack_pack_array(pk, PEER_PROGRESS_LEN));
		PK(msgpack_pack_uint64(pk, pg->seq));
		PK(msgpack_pack_uint64(pk, pg->ack[0]));
		PK(msgpack_pack_uint64(pk, pg->ack[1]));
		PK(msgpack_pack_uint64(pk, pg->sync[0]));
		PK(msgpack_pack_uint64(pk, pg->sync[1]));
		PK(msgpack_pack_uint64(pk, pg->read[0]));
		PK(msgpack_pack_uint64(pk, pg->read[1]));
	}
	return 0;
nomem:
	return -ENOMEM;
}
