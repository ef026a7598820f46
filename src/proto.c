#include "config.h"
/*
 * proto.c -- frame codec; the format is described in proto.h and
 * man/dynkv-protocol.7.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkv_config.h"
#include "error.h"
#include "mpr.h"
#include "proto.h"

const char *proto_type_name(uint32_t type)
{
	switch (type) {
#define X(name, num, wire, req) case num: return wire;
	PROTO_TYPES(X)
#undef X
	default: return NULL;
	}
}

bool proto_is_request(uint32_t type)
{
	switch (type) {
#define X(name, num, wire, req) case num: return req;
	PROTO_TYPES(X)
#undef X
	default: return false;
	}
}

const char *proto_error_text(uint32_t code)
{
	switch (code) {
#define X(name, num, dkv, text) case num: return text;
	PROTO_ERRORS(X)
#undef X
	default: return "unknown error";
	}
}

int proto_error_to_dkv(uint32_t code)
{
	switch (code) {
#define X(name, num, dkv, text) case num: return dkv;
	PROTO_ERRORS(X)
#undef X
	default: return DKV_EFAILED;
	}
}

uint32_t proto_error_from_dkv(int rc)
{
	switch (rc) {
	case DKV_EPROTO: return PROTO_ERR_PROTOCOL;
	case DKV_EVERSION: return PROTO_ERR_VERSION;
	case DKV_ETOOBIG: return PROTO_ERR_TOOBIG;
	case DKV_EINVAL: return PROTO_ERR_INVALID;
	case DKV_EQUORUM: return PROTO_ERR_QUORUM;
	case DKV_ETIMEDOUT: return PROTO_ERR_TIMEOUT;
	case DKV_EFAILED: return PROTO_ERR_STORAGE;
	case DKV_EBUSY: return PROTO_ERR_OVERLOAD;
	case DKV_ECLOSED: return PROTO_ERR_SHUTDOWN;
	case -ENOMEM: return PROTO_ERR_INTERNAL;
	default: return rc < 0 && rc > -4096 ? PROTO_ERR_STORAGE : PROTO_ERR_INTERNAL;
	}
}

uint32_t proto_frame_length(const uint8_t hdr[PROTO_HEADER_SIZE])
{
	return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	       (uint32_t)hdr[2] << 8 | hdr[3];
}

/* --- decoding ------------------------------------------------------------- */

static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fail(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* A quorum option: 1..DKV_CONFIG_N_MAX, a word (-1..-3) or 0 (default). */
static int rd_quorum(mpr *r, int32_t *q, const char *name, char *err, size_t errlen)
{
	int64_t v;

	if (mpr_int(r, &v) != 0)
		return fail(DKV_EPROTO, err, errlen, "option %s: not an integer", name);
	if (v < DKV_QUORUM_ALL || v > DKV_CONFIG_N_MAX)
		return fail(DKV_EINVAL, err, errlen,
			    "option %s: %lld is not 1..%d, -1 (one), -2 (quorum) or -3 (all)",
			    name, (long long)v, DKV_CONFIG_N_MAX);
	*q = (int32_t)v;
	return 0;
}

/* Bytes as text for a message: non-printable bytes become \xHH. */
static const char *printable(const char *p, size_t len, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
	}
	buf[o] = '\0';
	return buf;
}

/* A mode option: 0 or 1 (absent: 0). */
static int rd_flag(mpr *r, bool *flag, const char *name, char *err, size_t errlen)
{
	int64_t v;

	if (mpr_int(r, &v) != 0)
		return fail(DKV_EPROTO, err, errlen, "option %s: not an integer", name);
	if (v != 0 && v != 1)
		return fail(DKV_EINVAL, err, errlen, "option %s: %lld is not 0 or 1", name,
			    (long long)v);
	*flag = v == 1;
	return 0;
}

/* An array of exactly n uints into a new *out (VALUE's stamps, expires). */
static int rd_uints(mpr *r, size_t n, uint64_t **out, const char *name, char *err,
		    size_t errlen)
{
	uint64_t k;

	if (mpr_array(r, &k) != 0 || k != n)
		return fail(DKV_EPROTO, err, errlen, "VALUE %s is not an array of one uint per value",
			    name);
	if ((*out = calloc(n ? n : 1, sizeof(**out))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (mpr_uint(r, &(*out)[i]) != 0)
			return fail(DKV_EPROTO, err, errlen, "VALUE %s: element %zu is not a uint",
				    name, i);
	return 0;
}

/* The options of a request of type (GET, PUT or DELETE). */
static int rd_opts(mpr *r, uint32_t type, proto_opts *o, char *err, size_t errlen)
{
	char shown[300];
	uint64_t n;
	int rc;

	memset(o, 0, sizeof(*o));
	if (mpr_map(r, &n) != 0)
		return fail(DKV_EPROTO, err, errlen, "options are not a map");
	if (n > mpr_left(r) / 2)
		return fail(DKV_EPROTO, err, errlen, "options map longer than the frame");
	for (uint64_t i = 0; i < n; i++) {
		const char *k;
		size_t klen;

		if (mpr_str(r, 4096, &k, &klen) != 0)
			return fail(DKV_EPROTO, err, errlen, "option name is not a string");
#define IS(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
		if (IS("r"))
			rc = rd_quorum(r, &o->r, "r", err, errlen);
		else if (IS("w"))
			rc = rd_quorum(r, &o->w, "w", err, errlen);
		else if (IS("pr"))
			rc = rd_quorum(r, &o->pr, "pr", err, errlen);
		else if (IS("pw"))
			rc = rd_quorum(r, &o->pw, "pw", err, errlen);
		else if (IS("timeout_ms")) {
			uint64_t t;

			if (mpr_uint(r, &t) != 0)
				return fail(DKV_EPROTO, err, errlen,
					    "option timeout_ms: not an unsigned integer");
			if (t > 3600000)
				return fail(DKV_EINVAL, err, errlen,
					    "option timeout_ms: %llu > 3600000",
					    (unsigned long long)t);
			o->timeout_ms = (uint32_t)t;
			rc = 0;
		} else if (type != PROTO_GET && IS("replace"))
			rc = rd_flag(r, &o->replace, "replace", err, errlen);
		else if (type != PROTO_GET && IS("siblings"))
			rc = rd_flag(r, &o->siblings, "siblings", err, errlen);
		else if (type == PROTO_GET && IS("stamps"))
			rc = rd_flag(r, &o->stamps, "stamps", err, errlen);
		else if (type == PROTO_PUT && IS("ttl_ms")) {
			uint64_t t;

			if (mpr_uint(r, &t) != 0)
				return fail(DKV_EPROTO, err, errlen,
					    "option ttl_ms: not an unsigned integer");
			if (t == 0 || t > PROTO_MAX_TTL_MS)
				return fail(DKV_EINVAL, err, errlen,
					    "option ttl_ms: %llu is not 1 to %llu (100 years)",
					    (unsigned long long)t,
					    (unsigned long long)PROTO_MAX_TTL_MS);
			o->ttl_ms = t;
			rc = 0;
		}
		else
			return fail(DKV_EINVAL, err, errlen, "unknown option \"%s\"",
				    printable(k, klen > 64 ? 64 : klen, shown, sizeof(shown)));
#undef IS
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The declared length of the bin at hdr (which mpr_bin() refused as too big). */
static size_t bin_len(const uint8_t *hdr, const uint8_t *end)
{
	const uint8_t *v = NULL;
	size_t len = 0;
	mpr h;

	mpr_init(&h, hdr, (size_t)(end - hdr), DKV_EPROTO);
	(void)mpr_bin(&h, SIZE_MAX, &v, &len);
	return len;
}

static int rd_key(mpr *r, const proto_limits *lim, proto_bytes *key, char *err, size_t errlen)
{
	const uint8_t *hdr = r->p;
	int rc = mpr_bin(r, lim->max_key, &key->p, &key->len);

	if (rc == DKV_ETOOBIG)
		return fail(rc, err, errlen, "key too large: %zu > max_key_size %zu",
			    bin_len(hdr, r->end), lim->max_key);
	if (rc != 0)
		return fail(DKV_EPROTO, err, errlen, "key is not a bin");
	if (key->len == 0)
		return fail(DKV_EINVAL, err, errlen, "empty key");
	return 0;
}

static int rd_context(mpr *r, proto_bytes *ctx, char *err, size_t errlen)
{
	bool nil;

	if (mpr_bin_or_nil(r, SIZE_MAX, &nil, &ctx->p, &ctx->len) != 0)
		return fail(DKV_EPROTO, err, errlen, "context is not a bin or nil");
	return 0;
}

/* One INFO value at depth (the outer map is depth 1).  Containers are
 * walked here so that keys can be checked and extension types refused;
 * scalars are skipped by mpr_skip(), which bounds every length. */
static int rd_info_value(mpr *r, unsigned depth, bool is_key, char *err, size_t errlen)
{
	int t = mpr_peek(r);
	uint64_t n;

	if (t < 0)
		return fail(DKV_EPROTO, err, errlen, "INFO map is truncated");
	if (is_key) {
		const char *k;
		size_t klen;

		if (mpr_str(r, SIZE_MAX, &k, &klen) != 0)
			return fail(DKV_EPROTO, err, errlen, "INFO map key is not a str");
		return 0;
	}
	if ((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf ||
	    (t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd) {
		bool map = (t & 0xf0) == 0x80 || t == 0xde || t == 0xdf;

		if ((map ? mpr_map(r, &n) : mpr_array(r, &n)) != 0)
			return fail(DKV_EPROTO, err, errlen, "INFO map is truncated");
		if (depth > PROTO_MAX_INFO_DEPTH)
			return fail(DKV_EPROTO, err, errlen,
				    "INFO map nested more than %u deep", PROTO_MAX_INFO_DEPTH);
		/* each element takes at least a byte: no loop of 2^32 on 5 bytes */
		if (n > mpr_left(r) / (map ? 2 : 1))
			return fail(DKV_EPROTO, err, errlen, "INFO %s of %llu claims more "
				    "than the frame holds", map ? "map" : "array",
				    (unsigned long long)n);
		for (uint64_t i = 0; i < (map ? 2 * n : n); i++) {
			int rc = rd_info_value(r, depth + 1, map && i % 2 == 0, err, errlen);

			if (rc != 0)
				return rc;
		}
		return 0;
	}
	if ((t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8))
		return fail(DKV_EPROTO, err, errlen, "INFO holds an extension type");
	if (mpr_skip(r, 0) != 0)
		return fail(DKV_EPROTO, err, errlen, "INFO map holds a malformed value");
	return 0;
}

int proto_check_info(const void *p, size_t len, char *err, size_t errlen)
{
	mpr r;
	int t, rc;

	if (errlen > 0)
		err[0] = '\0';
	mpr_init(&r, p, len, DKV_EPROTO);
	t = mpr_peek(&r);
	if (!((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf))
		return fail(DKV_EPROTO, err, errlen, "INFO body is not a map");
	if ((rc = rd_info_value(&r, 1, false, err, errlen)) != 0)
		return rc;
	if (mpr_left(&r) != 0)
		return fail(DKV_EPROTO, err, errlen, "%zu bytes after the INFO map",
			    mpr_left(&r));
	return 0;
}

static int rd_admin(mpr *r, proto_msg *m, char *err, size_t errlen)
{
	const char *s;
	uint64_t n;
	int rc;

	if (mpr_array(r, &n) != 0 || n != 2)
		return fail(DKV_EPROTO, err, errlen, "ADMIN body is not [command, args]");
	rc = mpr_str(r, PROTO_MAX_COMMAND, &s, &m->command.len);
	if (rc == DKV_ETOOBIG)
		return fail(DKV_EINVAL, err, errlen, "ADMIN command longer than %u bytes",
			    PROTO_MAX_COMMAND);
	if (rc != 0)
		return fail(DKV_EPROTO, err, errlen, "ADMIN command is not a str");
	if (m->command.len == 0)
		return fail(DKV_EINVAL, err, errlen, "empty ADMIN command");
	m->command.p = (const uint8_t *)s;
	if (mpr_array(r, &n) != 0)
		return fail(DKV_EPROTO, err, errlen, "ADMIN args is not an array");
	if (n > PROTO_MAX_ARGS)
		return fail(DKV_EINVAL, err, errlen, "ADMIN has %llu arguments, at most %u",
			    (unsigned long long)n, PROTO_MAX_ARGS);
	for (uint64_t i = 0; i < n; i++) {
		proto_bytes *a = &m->args[i];

		rc = mpr_str(r, PROTO_MAX_ARG, &s, &a->len);
		if (rc == DKV_ETOOBIG)
			return fail(DKV_EINVAL, err, errlen,
				    "ADMIN argument %llu longer than %u bytes",
				    (unsigned long long)i + 1, PROTO_MAX_ARG);
		if (rc != 0)
			return fail(DKV_EPROTO, err, errlen, "ADMIN argument %llu is not a str",
				    (unsigned long long)i + 1);
		a->p = (const uint8_t *)s;
		m->nargs++;
	}
	return 0;
}

static int rd_body(mpr *r, const proto_limits *lim, proto_msg *m, char *err, size_t errlen)
{
	uint64_t n, nel;
	int rc;

	switch (m->type) {
	case PROTO_OK: {
		int t = mpr_peek(r);
		uint64_t sibs;

		if (!((t & 0xf0) == 0x90 || t == 0xdc || t == 0xdd))
			return rd_context(r, &m->context, err, errlen);   /* the first form */
		if (mpr_array(r, &n) != 0 || n != 2)
			return fail(DKV_EPROTO, err, errlen, "OK body is not [context, siblings]");
		if ((rc = rd_context(r, &m->context, err, errlen)) != 0)
			return rc;
		if (mpr_uint(r, &sibs) != 0 || sibs > UINT32_MAX)
			return fail(DKV_EPROTO, err, errlen, "OK siblings is not a 32-bit uint");
		m->has_siblings = true;
		m->siblings = (uint32_t)sibs;
		return 0;
	}
	case PROTO_PING:
	case PROTO_PONG:
		if (!mpr_nil(r))
			return fail(DKV_EPROTO, err, errlen, "%s body is not nil",
				    proto_type_name(m->type));
		return 0;
	case PROTO_GET:
	case PROTO_PUT:
	case PROTO_DELETE: {
		uint64_t want = m->type == PROTO_GET ? 2 : m->type == PROTO_PUT ? 4 : 3;

		if (mpr_array(r, &n) != 0 || n != want)
			return fail(DKV_EPROTO, err, errlen, "%s body is not an array of %llu",
				    proto_type_name(m->type), (unsigned long long)want);
		if ((rc = rd_key(r, lim, &m->key, err, errlen)) != 0)
			return rc;
		if (m->type == PROTO_PUT) {
			const uint8_t *hdr = r->p;

			rc = mpr_bin(r, lim->max_value, &m->value.p, &m->value.len);
			if (rc == DKV_ETOOBIG)
				return fail(rc, err, errlen,
					    "value too large: %zu > max_value_size %zu",
					    bin_len(hdr, r->end), lim->max_value);
			if (rc != 0)
				return fail(DKV_EPROTO, err, errlen, "value is not a bin");
		}
		if (m->type != PROTO_GET && (rc = rd_context(r, &m->context, err, errlen)) != 0)
			return rc;
		if ((rc = rd_opts(r, m->type, &m->opts, err, errlen)) != 0)
			return rc;
		if (m->opts.replace && m->context.len > 0)
			return fail(DKV_EINVAL, err, errlen,
				    "option replace with a context: a context already says what the "
				    "write replaces; send one or the other");
		return 0;
	}
	case PROTO_VALUE:
		if (mpr_array(r, &n) != 0 || (n != 4 && n != 6))
			return fail(DKV_EPROTO, err, errlen, "VALUE body is not an array of 4 or 6");
		nel = n;
		if (mpr_bool(r, &m->found) != 0)
			return fail(DKV_EPROTO, err, errlen, "VALUE found is not a bool");
		if (mpr_array(r, &n) != 0)
			return fail(DKV_EPROTO, err, errlen, "VALUE values is not an array");
		if (n > mpr_left(r) / 2 || n > PROTO_MAX_VALUES)
			return fail(DKV_EPROTO, err, errlen, "VALUE claims %llu values",
				    (unsigned long long)n);
		if (n > 0) {
			m->values = calloc((size_t)n, sizeof(*m->values));
			if (m->values == NULL)
				return -ENOMEM;
		}
		for (uint64_t i = 0; i < n; i++) {
			proto_bytes *v = &m->values[i];

			if (mpr_bin(r, SIZE_MAX, &v->p, &v->len) != 0)
				return fail(DKV_EPROTO, err, errlen, "VALUE value is not a bin");
			m->nvalues++;
		}
		if ((rc = rd_context(r, &m->context, err, errlen)) != 0)
			return rc;
		if (mpr_uint(r, &m->tombstones) != 0)
			return fail(DKV_EPROTO, err, errlen, "VALUE tombstones is not a uint");
		if (nel == 6) {
			if ((rc = rd_uints(r, m->nvalues, &m->stamps, "stamps", err, errlen)) != 0 ||
			    (rc = rd_uints(r, m->nvalues, &m->expires, "expires", err, errlen)) != 0)
				return rc;
		}
		return 0;
	case PROTO_ADMIN:
		return rd_admin(r, m, err, errlen);
	case PROTO_INFO: {
		const uint8_t *start = r->p;
		int t = mpr_peek(r);

		if (!((t & 0xf0) == 0x80 || t == 0xde || t == 0xdf))
			return fail(DKV_EPROTO, err, errlen, "INFO body is not a map");
		if ((rc = rd_info_value(r, 1, false, err, errlen)) != 0)
			return rc;
		m->info.p = start;
		m->info.len = (size_t)(r->p - start);
		return 0;
	}
	case PROTO_ERROR: {
		uint64_t code;
		const char *s;

		if (mpr_array(r, &n) != 0 || n != 2 || mpr_uint(r, &code) != 0 ||
		    code > UINT32_MAX)
			return fail(DKV_EPROTO, err, errlen, "ERROR body is not [code, message]");
		m->code = (uint32_t)code;
		if (mpr_str(r, PROTO_MAX_MESSAGE, &s, &m->message.len) != 0)
			return fail(DKV_EPROTO, err, errlen, "ERROR message is not a short string");
		m->message.p = (const uint8_t *)s;
		return 0;
	}
	default:
		return fail(DKV_EPROTO, err, errlen, "unknown message type %u", m->type);
	}
}

int proto_decode(const void *payload, size_t len, const proto_limits *lim,
		 proto_msg *m, char *err, size_t errlen)
{
	uint64_t n, version, type;
	mpr r;
	int rc;

	memset(m, 0, sizeof(*m));
	if (errlen > 0)
		err[0] = '\0';
	mpr_init(&r, payload, len, DKV_EPROTO);
	/* The version comes first and is judged first: a later version may
	 * change everything after it. */
	if (mpr_array(&r, &n) != 0 || n < 1)
		return fail(DKV_EPROTO, err, errlen, "frame is not a msgpack array");
	if (mpr_uint(&r, &version) != 0)
		return fail(DKV_EPROTO, err, errlen, "version is not an unsigned integer");
	if (version != PROTO_VERSION) {
		/* Echo the id (and type) if they are where version 1 has them. */
		if (n >= 3 && mpr_uint(&r, &type) == 0 && type <= UINT32_MAX &&
		    mpr_uint(&r, &m->id) == 0)
			m->type = (uint32_t)type;
		else
			m->id = 0;
		return fail(DKV_EVERSION, err, errlen,
			    "unsupported protocol version %llu (this node speaks %u)",
			    (unsigned long long)version, PROTO_VERSION);
	}
	if (n != 4)
		return fail(DKV_EPROTO, err, errlen, "frame is not an array of 4");
	if (mpr_uint(&r, &type) != 0 || type > UINT32_MAX)
		return fail(DKV_EPROTO, err, errlen, "type is not a 32-bit unsigned integer");
	if (mpr_uint(&r, &m->id) != 0)
		return fail(DKV_EPROTO, err, errlen, "request id is not an unsigned integer");
	m->type = (uint32_t)type;
	m->header_ok = true;
	if (proto_type_name(m->type) == NULL)
		return fail(DKV_EPROTO, err, errlen, "unknown message type %u", m->type);
	rc = rd_body(&r, lim, m, err, errlen);
	if (rc == 0 && mpr_left(&r) != 0)
		rc = fail(DKV_EPROTO, err, errlen, "%zu bytes after the message", mpr_left(&r));
	if (rc != 0) {
		uint64_t id = m->id;
		uint32_t t = m->type;
		bool hdr = m->header_ok;

		proto_msg_release(m);
		m->id = id;
		m->type = t;
		m->header_ok = hdr;
	}
	return rc;
}

void proto_msg_release(proto_msg *m)
{
	free(m->values);
	free(m->stamps);
	free(m->expires);
	memset(m, 0, sizeof(*m));
}

/* --- encoding ------------------------------------------------------------- */

#define PK(call) do { if ((call) != 0) goto nomem; } while (0)


/* Reserve the length prefix and pack the header; *start remembers where. */
static int begin(msgpack_sbuffer *sb, msgpack_packer *pk, size_t *start,
		 uint32_t type, uint64_t id)
{
	static const uint8_t zero[PROTO_HEADER_SIZE];

	*start = sb->size;
	msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
	if (msgpack_sbuffer_write(sb, (const char *)zero, sizeof(zero)) != 0 ||
	    msgpack_pack_array(pk, 4) != 0 ||
	    msgpack_pack_uint32(pk, PROTO_VERSION) != 0 ||
	    msgpack_pack_uint32(pk, type) != 0 ||
	    msgpack_pack_uint64(pk, id) != 0) {
		sb->size = *start;
		return -ENOMEM;
	}
	return 0;
}

/* Fill in the length prefix. */
static int finish(msgpack_sbuffer *sb, size_t start)
{
	size_t n = sb->size - start - PROTO_HEADER_SIZE;
	uint8_t *h = (uint8_t *)sb->data + start;

	if (n > UINT32_MAX) {
		sb->size = start;
		return DKV_ETOOBIG;
	}
	h[0] = (uint8_t)(n >> 24);
	h[1] = (uint8_t)(n >> 16);
	h[2] = (uint8_t)(n >> 8);
	h[3] = (uint8_t)n;
	return 0;
}

static int pack_bin(msgpack_packer *pk, const void *p, size_t len)
{
	if (msgpack_pack_bin(pk, len) != 0)
		return -1;
	return len == 0 ? 0 : msgpack_pack_bin_body(pk, p, len);
}

static int pack_ctx(msgpack_packer *pk, const void *p, size_t len)
{
	return len == 0 ? msgpack_pack_nil(pk) : pack_bin(pk, p, len);
}

static int pack_opts(msgpack_packer *pk, const proto_opts *o)
{
	static const proto_opts none;
	uint32_t n;

	if (o == NULL)
		o = &none;
	n = (o->r != 0) + (o->w != 0) + (o->pr != 0) + (o->pw != 0) + (o->timeout_ms != 0) +
	    o->replace + o->siblings + o->stamps + (o->ttl_ms != 0);
	if (msgpack_pack_map(pk, n) != 0)
		return -1;
#define OPT(name, v, packint) \
	if ((v) != 0 && (msgpack_pack_str_with_body(pk, name, sizeof(name) - 1) != 0 || \
			 packint(pk, v) != 0)) \
		return -1;
	OPT("r", o->r, msgpack_pack_int32)
	OPT("w", o->w, msgpack_pack_int32)
	OPT("pr", o->pr, msgpack_pack_int32)
	OPT("pw", o->pw, msgpack_pack_int32)
	OPT("timeout_ms", o->timeout_ms, msgpack_pack_uint32)
	OPT("replace", (uint8_t)o->replace, msgpack_pack_uint8)
	OPT("siblings", (uint8_t)o->siblings, msgpack_pack_uint8)
	OPT("stamps", (uint8_t)o->stamps, msgpack_pack_uint8)
	OPT("ttl_ms", o->ttl_ms, msgpack_pack_uint64)
#undef OPT
	return 0;
}

int proto_encode_get(msgpack_sbuffer *sb, uint64_t id, const void *key, size_t klen,
		     const proto_opts *opts)
{
	msgpack_packer pk;
	size_t start;

	if (begin(sb, &pk, &start, PROTO_GET, id) != 0)
		return -ENOMEM;
	PK(msgpack_pack_array(&pk, 2));
	PK(pack_bin(&pk, key, klen));
	PK(pack_opts(&pk, opts));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_put(msgpack_sbuffer *sb, uint64_t id, const void *key, size_t klen,
		     const void *val, size_t vlen, const void *ctx, size_t ctxlen,
		     const proto_opts *opts)
{
	msgpack_packer pk;
	size_t start;

	if (begin(sb, &pk, &start, PROTO_PUT, id) != 0)
		return -ENOMEM;
	PK(msgpack_pack_array(&pk, 4));
	PK(pack_bin(&pk, key, klen));
	PK(pack_bin(&pk, val, vlen));
	PK(pack_ctx(&pk, ctx, ctxlen));
	PK(pack_opts(&pk, opts));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_delete(msgpack_sbuffer *sb, uint64_t id, const void *key, size_t klen,
			const void *ctx, size_t ctxlen, const proto_opts *opts)
{
	msgpack_packer pk;
	size_t start;

	if (begin(sb, &pk, &start, PROTO_DELETE, id) != 0)
		return -ENOMEM;
	PK(msgpack_pack_array(&pk, 3));
	PK(pack_bin(&pk, key, klen));
	PK(pack_ctx(&pk, ctx, ctxlen));
	PK(pack_opts(&pk, opts));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

/* A frame whose body is nil. */
static int encode_nil(msgpack_sbuffer *sb, uint32_t type, uint64_t id)
{
	msgpack_packer pk;
	size_t start;

	if (begin(sb, &pk, &start, type, id) != 0)
		return -ENOMEM;
	PK(msgpack_pack_nil(&pk));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_ping(msgpack_sbuffer *sb, uint64_t id)
{
	return encode_nil(sb, PROTO_PING, id);
}

/* OK: the bare context, or [context, siblings] when with_count. */
static int encode_ok(msgpack_sbuffer *sb, uint64_t id, const void *ctx, size_t ctxlen,
		     bool with_count, uint32_t siblings)
{
	msgpack_packer pk;
	size_t start;

	if (begin(sb, &pk, &start, PROTO_OK, id) != 0)
		return -ENOMEM;
	if (with_count)
		PK(msgpack_pack_array(&pk, 2));
	PK(pack_ctx(&pk, ctx, ctxlen));
	if (with_count)
		PK(msgpack_pack_uint32(&pk, siblings));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_ok(msgpack_sbuffer *sb, uint64_t id, const void *ctx, size_t ctxlen)
{
	return encode_ok(sb, id, ctx, ctxlen, false, 0);
}

int proto_encode_ok_siblings(msgpack_sbuffer *sb, uint64_t id, const void *ctx, size_t ctxlen,
			     uint32_t siblings)
{
	return encode_ok(sb, id, ctx, ctxlen, true, siblings);
}

int proto_encode_pong(msgpack_sbuffer *sb, uint64_t id)
{
	return encode_nil(sb, PROTO_PONG, id);
}

int proto_encode_value(msgpack_sbuffer *sb, uint64_t id, bool found,
		       const proto_bytes *values, size_t nvalues,
		       const void *ctx, size_t ctxlen, uint64_t tombstones)
{
	return proto_encode_value_stamps(sb, id, found, values, NULL, NULL, nvalues, ctx, ctxlen,
					 tombstones);
}

int proto_encode_value_stamps(msgpack_sbuffer *sb, uint64_t id, bool found,
			      const proto_bytes *values, const uint64_t *stamps,
			      const uint64_t *expires, size_t nvalues, const void *ctx,
			      size_t ctxlen, uint64_t tombstones)
{
	msgpack_packer pk;
	size_t start;

	if (nvalues > PROTO_MAX_VALUES)
		return DKV_ETOOBIG;   /* no decoder would accept it */
	if (begin(sb, &pk, &start, PROTO_VALUE, id) != 0)
		return -ENOMEM;
	if ((stamps == NULL) != (expires == NULL))
		return DKV_EINVAL;
	PK(msgpack_pack_array(&pk, stamps != NULL ? 6 : 4));
	PK(found ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
	PK(msgpack_pack_array(&pk, nvalues));
	for (size_t i = 0; i < nvalues; i++)
		PK(pack_bin(&pk, values[i].p, values[i].len));
	PK(pack_ctx(&pk, ctx, ctxlen));
	PK(msgpack_pack_uint64(&pk, tombstones));
	if (stamps != NULL) {
		PK(msgpack_pack_array(&pk, nvalues));
		for (size_t i = 0; i < nvalues; i++)
			PK(msgpack_pack_uint64(&pk, stamps[i]));
		PK(msgpack_pack_array(&pk, nvalues));
		for (size_t i = 0; i < nvalues; i++)
			PK(msgpack_pack_uint64(&pk, expires[i]));
	}
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_error(msgpack_sbuffer *sb, uint64_t id, uint32_t code, const char *msg)
{
	msgpack_packer pk;
	size_t start, len = strlen(msg);

	if (len > PROTO_MAX_MESSAGE) {
		len = PROTO_MAX_MESSAGE;
		while (len > 0 && ((unsigned char)msg[len] & 0xc0) == 0x80)
			len--;   /* do not cut a UTF-8 sequence */
	}
	if (begin(sb, &pk, &start, PROTO_ERROR, id) != 0)
		return -ENOMEM;
	PK(msgpack_pack_array(&pk, 2));
	PK(msgpack_pack_uint32(&pk, code));
	PK(msgpack_pack_str_with_body(&pk, msg, len));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

/* ADMIN from byte strings (NULs allowed), within the decoder's limits. */
static int encode_admin(msgpack_sbuffer *sb, uint64_t id, proto_bytes cmd,
			const proto_bytes *args, size_t nargs)
{
	msgpack_packer pk;
	size_t start;

	if (cmd.len == 0 || cmd.len > PROTO_MAX_COMMAND || nargs > PROTO_MAX_ARGS)
		return DKV_EINVAL;
	for (size_t i = 0; i < nargs; i++)
		if (args[i].len > PROTO_MAX_ARG)
			return DKV_EINVAL;
	if (begin(sb, &pk, &start, PROTO_ADMIN, id) != 0)
		return -ENOMEM;
	PK(msgpack_pack_array(&pk, 2));
	PK(msgpack_pack_str_with_body(&pk, cmd.p, cmd.len));
	PK(msgpack_pack_array(&pk, (size_t)nargs));
	for (size_t i = 0; i < nargs; i++)
		PK(msgpack_pack_str_with_body(&pk, args[i].len ? args[i].p : (const uint8_t *)"",
					      args[i].len));
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_admin(msgpack_sbuffer *sb, uint64_t id, const char *command,
		       const char *const *args, size_t nargs)
{
	proto_bytes cmd = { (const uint8_t *)command, strlen(command) };
	proto_bytes a[PROTO_MAX_ARGS];

	if (nargs > PROTO_MAX_ARGS)
		return DKV_EINVAL;
	for (size_t i = 0; i < nargs; i++) {
		a[i].p = (const uint8_t *)args[i];
		a[i].len = strlen(args[i]);
	}
	return encode_admin(sb, id, cmd, a, nargs);
}

int proto_encode_info(msgpack_sbuffer *sb, uint64_t id, const void *map, size_t len)
{
	msgpack_packer pk;
	size_t start;

	if (proto_check_info(map, len, NULL, 0) != 0)
		return DKV_EINVAL;
	if (begin(sb, &pk, &start, PROTO_INFO, id) != 0)
		return -ENOMEM;
	PK(msgpack_sbuffer_write(sb, (const char *)map, len));   /* len >= 1: a map */
	return finish(sb, start);
nomem:
	sb->size = start;
	return -ENOMEM;
}

int proto_encode_msg(msgpack_sbuffer *sb, const proto_msg *m)
{
	char msg[PROTO_MAX_MESSAGE + 1];
	size_t len;

	switch (m->type) {
	case PROTO_GET:
		return proto_encode_get(sb, m->id, m->key.p, m->key.len, &m->opts);
	case PROTO_PUT:
		return proto_encode_put(sb, m->id, m->key.p, m->key.len, m->value.p, m->value.len,
					m->context.p, m->context.len, &m->opts);
	case PROTO_DELETE:
		return proto_encode_delete(sb, m->id, m->key.p, m->key.len, m->context.p,
					   m->context.len, &m->opts);
	case PROTO_PING:
		return proto_encode_ping(sb, m->id);
	case PROTO_VALUE:
		return proto_encode_value_stamps(sb, m->id, m->found, m->values, m->stamps,
						 m->expires, m->nvalues, m->context.p, m->context.len,
						 m->tombstones);
	case PROTO_OK:
		return encode_ok(sb, m->id, m->context.p, m->context.len, m->has_siblings,
				 m->siblings);
	case PROTO_PONG:
		return proto_encode_pong(sb, m->id);
	case PROTO_ADMIN:
		return encode_admin(sb, m->id, m->command, m->args, m->nargs);
	case PROTO_INFO:
		return proto_encode_info(sb, m->id, m->info.p, m->info.len);
	case PROTO_ERROR:
		len = m->message.len < PROTO_MAX_MESSAGE ? m->message.len : PROTO_MAX_MESSAGE;
		if (len > 0)
			memcpy(msg, m->message.p, len);
		msg[len] = '\0';
		return proto_encode_error(sb, m->id, m->code, msg);
	default:
		return DKV_EPROTO;
	}
}
