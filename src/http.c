#include "config.h"
/*
 * http.c -- the node's HTTP face.  See http.h and dynkv-http(7).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <msgpack.h>

#include "admin_render.h"
#include "error.h"
#include "http.h"
#include "httpcodec.h"
#include "metrics.h"
#include "mpr.h"
#include "proto.h"
#include "ui_page.h"

/* What a request waits for, and how its answer is made. */
typedef enum hkind { H_FREE, H_GET, H_HEAD, H_PUT, H_DELETE, H_ADMIN, H_METRICS } hkind;

typedef struct hreq {
	hkind kind;
	uint64_t id;                 /* NET_LOCAL_BIT | face | gen << 32 | slot */
	struct evhttp_request *req;
} hreq;

struct http_face {
	struct event_base *base;
	struct evhttp *eh;
	const dkv_config *cfg;
	dkv_log *log;
	net *nt;
	node *nd;
	hreq *slots;                 /* HTTP_MAX_PENDING */
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t gen;
	bool draining;
	/* the connections that sent a request, to count them against
	 * http_max_connections: a set of pointers (open addressing, linear
	 * probing, 2^k slots, at most half full) */
	struct evhttp_connection **conns;
	uint32_t conns_mask, nconns;
	msgpack_sbuffer sb;          /* the frame being made */
	char addr[320];
	uint8_t key[65536];          /* the key being decoded */
	uint8_t ctx[8192];           /* the context being decoded */
};

/* The admin answers served as JSON, by path. */
static const char *const admin_paths[] = { "members", "ring", "status", "hints", "aae",
					   "transfers", NULL };

static void logh(http_face *h, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logh(http_face *h, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dkv_log_opt(h->log, level, "http: %s", msg);
}

/* --- answers -------------------------------------------------------------- */

static void answer(struct evhttp_request *req, int code, const char *reason, const char *ctype,
		   const void *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (ctype != NULL)
		evhttp_add_header(out, "Content-Type", ctype);
	if (b != NULL && len > 0)
		evbuffer_add(b, body, len);
	evhttp_send_reply(req, code, reason, b);
	if (b != NULL)
		evbuffer_free(b);
}

/* A text answer: msg and a newline. */
static void answer_text(struct evhttp_request *req, int code, const char *reason,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void answer_text(struct evhttp_request *req, int code, const char *reason,
			const char *fmt, ...)
{
	char msg[PROTO_MAX_MESSAGE + 256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(msg) - 2)
		n = (int)sizeof(msg) - 2;
	msg[n++] = '\n';
	answer(req, code, reason, "text/plain; charset=utf-8", msg, (size_t)n);
}

/* The HTTP status of a node's ERROR code. */
static int error_status(uint32_t code, const char **reason)
{
	switch (code) {
	case PROTO_ERR_TOOBIG:
		*reason = "Payload Too Large";
		return 413;
	case PROTO_ERR_INVALID:
	case PROTO_ERR_CONTEXT:
	case PROTO_ERR_PROTOCOL:
		*reason = "Bad Request";
		return 400;
	case PROTO_ERR_QUORUM:
	case PROTO_ERR_TIMEOUT:
	case PROTO_ERR_OVERLOAD:
	case PROTO_ERR_SHUTDOWN:
		*reason = "Service Unavailable";
		return 503;
	default:
		*reason = "Internal Server Error";
		return 500;
	}
}

static void answer_error(struct evhttp_request *req, const proto_msg *m)
{
	const char *reason;
	int status = error_status(m->code, &reason);

	answer_text(req, status, reason, "%.*s", (int)m->message.len,
		    (const char *)m->message.p);
}

/* X-Dynkv-Context: the context, base64. */
static void put_context(struct evhttp_request *req, const proto_bytes *ctx)
{
	char *b;

	if (ctx->len == 0 || (b = malloc(HTTP_B64_LEN(ctx->len) + 1)) == NULL)
		return;
	http_b64_encode(ctx->p, ctx->len, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Dynkv-Context", b);
	free(b);
}

/* True iff "\r\n--" boundary occurs in none of the values (nor at the
 * start of one: a part's body follows a blank line). */
static bool boundary_free(const proto_msg *m, const char *boundary)
{
	char delim[64];
	int n = snprintf(delim, sizeof(delim), "--%s", boundary);

	for (size_t i = 0; i < m->nvalues; i++)
		if (memmem(m->values[i].p, m->values[i].len, delim, (size_t)n) != NULL)
			return false;
	return true;
}

/* 300 Multiple Choices: one multipart/mixed part per sibling (Riak's
 * shape), the context in the header. */
static void answer_siblings(struct evhttp_request *req, const proto_msg *m)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer *b = evbuffer_new();
	char boundary[48], ctype[96];
	unsigned n = 0;

	do
		snprintf(boundary, sizeof(boundary), "dynkv-siblings-%u", n++);
	while (!boundary_free(m, boundary));
	snprintf(ctype, sizeof(ctype), "multipart/mixed; boundary=%s", boundary);
	evhttp_add_header(out, "Content-Type", ctype);
	put_context(req, &m->context);
	for (size_t i = 0; b != NULL && i < m->nvalues; i++) {
		evbuffer_add_printf(b, "--%s\r\nContent-Type: application/octet-stream\r\n\r\n",
				    boundary);
		evbuffer_add(b, m->values[i].p, m->values[i].len);
		evbuffer_add(b, "\r\n", 2);
	}
	if (b != NULL)
		evbuffer_add_printf(b, "--%s--\r\n", boundary);
	evhttp_send_reply(req, 300, "Multiple Choices", b);
	if (b != NULL)
		evbuffer_free(b);
}

static void answer_value(struct evhttp_request *req, const proto_msg *m)
{
	if (!m->found || m->nvalues == 0) {
		put_context(req, &m->context);   /* a tombstone's: a write supersedes it */
		answer_text(req, 404, "Not Found", "not found");
		return;
	}
	if (m->nvalues > 1) {
		answer_siblings(req, m);
		return;
	}
	put_context(req, &m->context);
	if (m->tombstones > 0) {   /* deletes concurrent with the value (dynkv get
				    * prints them too) */
		char n[24];

		snprintf(n, sizeof(n), "%llu", (unsigned long long)m->tombstones);
		evhttp_add_header(evhttp_request_get_output_headers(req), "X-Dynkv-Tombstones", n);
	}
	answer(req, 200, "OK", "application/octet-stream", m->values[0].p, m->values[0].len);
}

static void answer_ok(struct evhttp_request *req, const proto_msg *m)
{
	char n[16];

	put_context(req, &m->context);
	if (m->has_siblings) {
		snprintf(n, sizeof(n), "%u", m->siblings);
		evhttp_add_header(evhttp_request_get_output_headers(req), "X-Dynkv-Siblings", n);
	}
	answer(req, 204, "No Content", NULL, NULL, 0);
}

/* An admin INFO as the JSON dynkv-admin --json prints. */
static void answer_info(http_face *h, struct evhttp_request *req, const proto_msg *m)
{
	char *json = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&json, &len);
	int rc = f != NULL ? admin_render_json(f, m->info.p, m->info.len) : -ENOMEM;

	if (f != NULL && fclose(f) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0) {
		logh(h, DKV_LOG_WARNING, "rendering an admin answer as JSON: %s", dkv_strerror(rc));
		answer_text(req, 500, "Internal Server Error", "cannot render the answer: %s",
			    dkv_strerror(rc));
	} else {
		answer(req, 200, "OK", "application/json", json, len);
	}
	free(json);
}

/* The admin metrics answer's text ({"format", "content_type", "text"}),
 * as Prometheus reads it. */
static void answer_metrics(struct evhttp_request *req, const proto_msg *m)
{
	mpr r;
	uint64_t n;
	const char *k, *text = NULL;
	size_t kl, tl = 0;

	mpr_init(&r, m->info.p, m->info.len, DKV_EPROTO);
	if (mpr_map(&r, &n) == 0)
		for (uint64_t i = 0; i < n; i++) {
			if (mpr_str(&r, 64, &k, &kl) != 0)
				break;
			if (kl == 4 && memcmp(k, "text", 4) == 0) {
				if (mpr_str(&r, SIZE_MAX, &text, &tl) != 0)
					text = NULL;
				break;
			}
			if (mpr_skip(&r, PROTO_MAX_INFO_DEPTH) != 0)
				break;
		}
	if (text == NULL) {
		answer_text(req, 500, "Internal Server Error", "the node's metrics had no text");
		return;
	}
	answer(req, 200, "OK", METRICS_CONTENT_TYPE, text, tl);
}

/* --- the node's replies --------------------------------------------------- */

static hreq *slot_of(http_face *h, uint64_t id)
{
	uint32_t slot = (uint32_t)id;

	if ((id & NET_LOCAL_BIT) == 0 || slot >= HTTP_MAX_PENDING || h->slots[slot].id != id ||
	    h->slots[slot].kind == H_FREE)
		return NULL;
	return &h->slots[slot];
}

static void slot_free(http_face *h, hreq *r)
{
	r->kind = H_FREE;
	r->req = NULL;
	r->id = 0;
	h->free_slots[h->nfree++] = (uint32_t)(r - h->slots);
}

/* net_local_fn: the node answered request `client`. */
static void on_reply(void *ctx, uint64_t client, const void *frame, size_t len)
{
	http_face *h = ctx;
	hreq *r = slot_of(h, client);
	proto_limits lim = { .max_key = h->cfg->max_key_size, .max_value = h->cfg->max_value_size };
	char err[256];
	proto_msg m;
	hkind kind;
	struct evhttp_request *req;

	if (r == NULL)
		return;   /* answered already (a request is answered once) */
	kind = r->kind;
	req = r->req;
	slot_free(h, r);
	if (len < PROTO_HEADER_SIZE ||
	    proto_decode((const uint8_t *)frame + PROTO_HEADER_SIZE, len - PROTO_HEADER_SIZE,
			 &lim, &m, err, sizeof(err)) != 0) {
		answer_text(req, 500, "Internal Server Error", "the node's answer: %s",
			    len < PROTO_HEADER_SIZE ? "truncated" : err);
		return;
	}
	if (m.type == PROTO_ERROR)
		answer_error(req, &m);
	else if (kind == H_ADMIN && m.type == PROTO_INFO)
		answer_info(h, req, &m);
	else if (kind == H_METRICS && m.type == PROTO_INFO)
		answer_metrics(req, &m);
	else if ((kind == H_GET || kind == H_HEAD) && m.type == PROTO_VALUE)
		answer_value(req, &m);
	else if ((kind == H_PUT || kind == H_DELETE) && m.type == PROTO_OK)
		answer_ok(req, &m);
	else
		answer_text(req, 500, "Internal Server Error", "the node answered %s",
			    proto_type_name(m.type) ? proto_type_name(m.type) : "an unknown type");
	proto_msg_release(&m);
}

/* Hand the frame in h->sb, made with the id make_id() gave, to the node
 * as the request in the slot that id names. */
static void submit(http_face *h, struct evhttp_request *req, hkind kind)
{
	hreq *r;
	uint32_t slot;

	slot = h->free_slots[--h->nfree];
	r = &h->slots[slot];
	r->kind = kind;
	r->req = req;
	/* the id was set when the frame was made (make_id) */
	(void)node_request(h->nd, r->id, h->sb.data + PROTO_HEADER_SIZE,
			   h->sb.size - PROTO_HEADER_SIZE);
	/* node_request answered or will answer through on_reply; a frame it
	 * could not take (it made it itself: never) is answered there too */
}

/* The id the next submitted request gets (the slot submit() will take);
 * 0, and req answered 503, when HTTP_MAX_PENDING requests wait already. */
static uint64_t make_id(http_face *h, struct evhttp_request *req)
{
	uint32_t slot;

	if (h->nfree == 0) {
		answer_text(req, 503, "Service Unavailable",
			    "%u HTTP requests wait for the node already", HTTP_MAX_PENDING);
		return 0;
	}
	slot = h->free_slots[h->nfree - 1];
	h->gen = h->gen >= 0x1fffffffu ? 1 : h->gen + 1;
	h->slots[slot].id = NET_LOCAL_BIT | NET_LOCAL_FACE(NET_LOCAL_HTTP) |
			    (uint64_t)h->gen << 32 | slot;
	return h->slots[slot].id;
}

/* --- connections ---------------------------------------------------------- */

static uint32_t conn_hash(const http_face *h, const struct evhttp_connection *c)
{
	uint64_t x = (uint64_t)(uintptr_t)c;

	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return (uint32_t)x & h->conns_mask;
}

/* The slot of c in the set, or of the empty one where it would go. */
static uint32_t conn_slot(const http_face *h, const struct evhttp_connection *c)
{
	uint32_t i = conn_hash(h, c);

	while (h->conns[i] != NULL && h->conns[i] != c)
		i = (i + 1) & h->conns_mask;
	return i;
}

/* evhttp's close callback: c is gone; take it out (backward-shift
 * deletion keeps every probe run whole). */
static void conn_closed(struct evhttp_connection *c, void *arg)
{
	http_face *h = arg;
	uint32_t i = conn_slot(h, c), j = i;

	if (h->conns[i] == NULL)
		return;
	h->conns[i] = NULL;
	h->nconns--;
	for (;;) {
		uint32_t k;

		j = (j + 1) & h->conns_mask;
		if (h->conns[j] == NULL)
			return;
		k = conn_hash(h, h->conns[j]);
		/* move j's entry into the hole i unless its home k lies in (i, j] */
		if (i <= j ? (k <= i || k > j) : (k <= i && k > j)) {
			h->conns[i] = h->conns[j];
			h->conns[j] = NULL;
			i = j;
		}
	}
}

/* True iff req's connection may be served: it is counted already, or
 * there is room for it (then it is counted from now until it closes);
 * else req is answered 503 and its connection closed after. */
static bool conn_admit(http_face *h, struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	uint32_t i;

	if (c == NULL)
		return true;
	i = conn_slot(h, c);
	if (h->conns[i] == c)
		return true;
	if (h->nconns >= h->cfg->http_max_connections) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		answer_text(req, 503, "Service Unavailable",
			    "%u HTTP connections are open already (http_max_connections)",
			    h->nconns);
		return false;
	}
	h->conns[i] = c;
	h->nconns++;
	evhttp_connection_set_closecb(c, conn_closed, h);
	return true;
}

/* --- requests ------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return "this method";
	}
}

static void not_allowed(struct evhttp_request *req, const char *allow, const char *path)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	answer_text(req, 405, "Method Not Allowed", "%s %s: only %s",
		    method_name(evhttp_request_get_command(req)), path, allow);
}

/* /kv/{key}: GET, HEAD, PUT, DELETE. */
static void kv_request(http_face *h, struct evhttp_request *req, const char *path,
		       const char *query)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	const char *hctx = evhttp_find_header(evhttp_request_get_input_headers(req),
					      "X-Dynkv-Context");
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	const char *enc = path + 4;
	size_t klen = 0, ctxlen = 0, vlen;
	proto_opts o;
	char err[256];
	uint64_t id;
	int rc;
	hkind kind;

	if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD && cmd != EVHTTP_REQ_PUT &&
	    cmd != EVHTTP_REQ_DELETE) {
		not_allowed(req, "GET, HEAD, PUT, DELETE", "/kv/{key}");
		return;
	}
	/* (the key cannot outgrow h->key: libevent refuses a request line
	 * past HTTP_MAX_HEADERS first) */
	if (http_pct_decode(enc, strlen(enc), false, h->key, sizeof(h->key), &klen, err,
			    sizeof(err)) != 0) {
		answer_text(req, 400, "Bad Request", "key: %s", err);
		return;
	}
	if (klen == 0) {
		answer_text(req, 400, "Bad Request", "key: empty (the path is /kv/{key})");
		return;
	}
	memset(&o, 0, sizeof(o));
	if (http_kv_query(query, query != NULL ? strlen(query) : 0, &o, err, sizeof(err)) != 0) {
		answer_text(req, 400, "Bad Request", "%s", err);
		return;
	}
	if ((o.w != 0 || o.pw != 0) && (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD)) {
		answer_text(req, 400, "Bad Request", "parameter %s: a read takes r and pr; w and "
			    "pw are for PUT and DELETE", o.w != 0 ? "w" : "pw");
		return;
	}
	if (o.ttl_ms != 0 && cmd != EVHTTP_REQ_PUT) {
		answer_text(req, 400, "Bad Request", "parameter ttl: only a PUT writes a value "
			    "that can expire");
		return;
	}
	if (hctx != NULL && (cmd == EVHTTP_REQ_PUT || cmd == EVHTTP_REQ_DELETE)) {
		size_t hl = strlen(hctx);

		while (hl > 0 && (hctx[hl - 1] == ' ' || hctx[hl - 1] == '\t'))
			hl--;
		while (hl > 0 && (*hctx == ' ' || *hctx == '\t')) {
			hctx++;
			hl--;
		}
		if (http_b64_decode(hctx, hl, h->ctx, sizeof(h->ctx), &ctxlen) != 0) {
			answer_text(req, 400, "Bad Request",
				    "X-Dynkv-Context: not a context this node gave (base64 of at most %zu bytes)",
				    sizeof(h->ctx));
			return;
		}
	}
	if ((id = make_id(h, req)) == 0)
		return;
	h->sb.size = 0;
	switch (cmd) {
	case EVHTTP_REQ_PUT:
		vlen = evbuffer_get_length(in);
		o.replace = ctxlen == 0;
		o.siblings = true;
		kind = H_PUT;
		rc = proto_encode_put(&h->sb, id, h->key, klen, evbuffer_pullup(in, -1), vlen,
				      h->ctx, ctxlen, &o);
		break;
	case EVHTTP_REQ_DELETE:
		o.replace = ctxlen == 0;
		o.siblings = true;
		kind = H_DELETE;
		rc = proto_encode_delete(&h->sb, id, h->key, klen, h->ctx, ctxlen, &o);
		break;
	default:
		kind = cmd == EVHTTP_REQ_HEAD ? H_HEAD : H_GET;
		rc = proto_encode_get(&h->sb, id, h->key, klen, &o);
		break;
	}
	if (rc != 0) {
		answer_text(req, 500, "Internal Server Error", "making the request: %s",
			    dkv_strerror(rc));
		return;
	}
	submit(h, req, kind);
}

static void admin_request(http_face *h, struct evhttp_request *req, const char *command,
			  hkind kind)
{
	uint64_t id;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		char path[32];

		snprintf(path, sizeof(path), "/%s", command);
		not_allowed(req, "GET, HEAD", path);
		return;
	}
	if ((id = make_id(h, req)) == 0)
		return;
	h->sb.size = 0;
	if (proto_encode_admin(&h->sb, id, command, NULL, 0) != 0) {
		answer_text(req, 500, "Internal Server Error", "making the request: out of memory");
		return;
	}
	submit(h, req, kind);
}

/* The page for people (ui_page.h) at /ui, and / sent there.  Inline
 * script and style are its own; it may fetch only from this node. */
static void ui_request(struct evhttp_request *req, const char *path)
{
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		not_allowed(req, "GET, HEAD", path);
		return;
	}
	if (path[1] == '\0') {
		evhttp_add_header(out, "Location", "/ui");
		answer_text(req, 302, "Found", "the page is at /ui");
		return;
	}
	evhttp_add_header(out, "Cache-Control", "no-cache");
	evhttp_add_header(out, "Content-Security-Policy",
			  "default-src 'self'; script-src 'unsafe-inline' 'self'; "
			  "style-src 'unsafe-inline' 'self'; connect-src 'self'; img-src 'self' data:");
	answer(req, 200, "OK", "text/html; charset=utf-8", dkv_ui_page, dkv_ui_page_len);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	http_face *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (!conn_admit(h, req))
		return;
	if (path == NULL || path[0] != '/') {
		answer_text(req, 400, "Bad Request", "the request's path is not an absolute path");
		return;
	}
	if (strcmp(path, "/ping") == 0 || strcmp(path, "/health") == 0) {
		const char *why = node_failure(h->nd);

		if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD)
			not_allowed(req, "GET, HEAD", path);
		else if (path[1] == 'h' && why != NULL)
			answer_text(req, 503, "Service Unavailable", "%s", why);
		else if (path[1] == 'h' && h->draining)
			answer_text(req, 503, "Service Unavailable", "node is shutting down");
		else
			answer_text(req, 200, "OK", "OK");
		return;
	}
	if (h->draining) {
		answer_text(req, 503, "Service Unavailable", "node is shutting down");
		return;
	}
	if (strncmp(path, "/kv/", 4) == 0) {
		kv_request(h, req, path, query);
		return;
	}
	for (size_t i = 0; admin_paths[i] != NULL; i++)
		if (strcmp(path + 1, admin_paths[i]) == 0) {
			admin_request(h, req, admin_paths[i], H_ADMIN);
			return;
		}
	if (strcmp(path, "/metrics") == 0) {
		admin_request(h, req, "metrics", H_METRICS);
		return;
	}
	if (strcmp(path, "/ui") == 0 || strcmp(path, "/") == 0) {
		ui_request(req, path);
		return;
	}
	answer_text(req, 404, "Not Found",
		    "no such path: %.200s (dynkv-http(7): /kv/{key}, /members, /ring, /status, "
		    "/hints, /aae, /transfers, /metrics, /ui, /health, /ping)", path);
}

/* --- open and close ------------------------------------------------------- */

/* Slots for a set of at most max connections kept at most half full. */
static size_t conns_size(uint32_t max)
{
	size_t n = 16;

	while (n < 2 * (size_t)max + 2)
		n *= 2;
	return n;
}

int http_open(http_face **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	      net *nt, node *nd, char *err, size_t errlen)
{
	char la[320], host[256];
	uint16_t port;
	struct timeval tv;
	http_face *h;
	int rc;

	*out = NULL;
	if ((rc = dkv_config_http_listen(cfg, la, sizeof(la), err, errlen)) != 0)
		return rc;
	if ((rc = dkv_config_face_address("http_listen", la, "HTTP", "dynkv-http(7)", host,
					  sizeof(host), &port, err, errlen)) != 0)
		return rc;
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->slots = calloc(HTTP_MAX_PENDING, sizeof(*h->slots))) == NULL ||
	    (h->free_slots = calloc(HTTP_MAX_PENDING, sizeof(*h->free_slots))) == NULL ||
	    (h->conns = calloc(conns_size(cfg->http_max_connections), sizeof(*h->conns))) == NULL ||
	    (h->eh = evhttp_new(base)) == NULL) {
		http_close(h);
		snprintf(err, errlen, "http_listen %s: out of memory", la);
		return -ENOMEM;
	}
	h->base = base;
	h->cfg = cfg;
	h->log = log;
	h->nt = nt;
	h->nd = nd;
	h->conns_mask = (uint32_t)conns_size(cfg->http_max_connections) - 1;
	msgpack_sbuffer_init(&h->sb);
	for (uint32_t i = 0; i < HTTP_MAX_PENDING; i++)
		h->free_slots[h->nfree++] = HTTP_MAX_PENDING - 1 - i;
	evhttp_set_allowed_methods(h->eh, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
				   EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
				   EVHTTP_REQ_PATCH);
	evhttp_set_max_headers_size(h->eh, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->eh, (ev_ssize_t)cfg->max_value_size);
	tv.tv_sec = (time_t)(cfg->http_timeout / 1000);
	tv.tv_usec = (suseconds_t)(cfg->http_timeout % 1000 * 1000);
	evhttp_set_timeout_tv(h->eh, &tv);
	evhttp_set_gencb(h->eh, on_request, h);
	errno = 0;
	if (evhttp_bind_socket_with_handle(h->eh, host, port) == NULL) {
		rc = errno ? -errno : -EADDRINUSE;
		snprintf(err, errlen, "http_listen %s: %s", la, strerror(-rc));
		http_close(h);
		return rc;
	}
	snprintf(h->addr, sizeof(h->addr), "%s", la);
	net_set_local(nt, NET_LOCAL_HTTP, on_reply, h);
	logh(h, DKV_LOG_INFO, "listening on %s", la);
	*out = h;
	return 0;
}

const char *http_address(const http_face *h)
{
	return h->addr;
}

void http_drain(http_face *h)
{
	h->draining = true;
}

size_t http_pending(const http_face *h)
{
	return HTTP_MAX_PENDING - h->nfree;
}

void http_close(http_face *h)
{
	if (h == NULL)
		return;
	if (h->nt != NULL)
		net_set_local(h->nt, NET_LOCAL_HTTP, NULL, NULL);
	for (uint32_t i = 0; h->slots != NULL && i < HTTP_MAX_PENDING; i++)
		if (h->slots[i].kind != H_FREE && h->slots[i].req != NULL)
			answer_text(h->slots[i].req, 503, "Service Unavailable",
				    "node is shutting down");
	if (h->eh != NULL)
		evhttp_free(h->eh);
	msgpack_sbuffer_destroy(&h->sb);
	free(h->slots);
	free(h->free_slots);
	free(h->conns);
	free(h);
}
