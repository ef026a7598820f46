#include "config.h"
/*
 * test_client.c -- libdynkv (src/client/client.c) and the dynkv command
 * (src/dynkv.c) against a fake node.
 *
 * The fake node is a thread on 127.0.0.1 (port 0) that speaks the protocol
 * with proto.c.  Each test picks how it answers: `store` keeps siblings the
 * way a real node does (a put drops the siblings its context has seen), and
 * the other handlers send errors, records requests, or misbehave: half a
 * frame, garbage, a 4 GiB length, another request's id, silence.
 *
 * The fake's context is 11 bytes, "C\0", the store's clock (8 bytes, big
 * endian) and 0xff: NUL and non-ASCII bytes, so that a client that does not
 * pass it back verbatim is caught (the fake answers ERROR CONTEXT).
 *
 * The suite `cli` runs the built src/dynkv (found beside this program,
 * ../../src/dynkv) against the same fake node.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dynkv.h"
#include "error.h"
#include "proto.h"

/* --- the fake node -------------------------------------------------------- */

#define MAX_KEYS 8
#define MAX_SIBS 16
#define CTX_LEN 11

typedef struct fake_sib {
	uint64_t seq;           /* the store clock when written */
	bool tomb;              /* true iff a delete */
	uint8_t *val;           /* owned */
	size_t len;
} fake_sib;

typedef struct fake_ent {
	uint8_t key[64];
	size_t klen;
	fake_sib sibs[MAX_SIBS];
	size_t n;
} fake_ent;

typedef struct fake fake;
/* Answer request m (payload bytes p, len) on fd; false: close the connection. */
typedef bool (*fake_handler)(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);

struct fake {
	int lfd;                /* listening socket */
	uint16_t port;
	int stop[2];            /* a byte on stop[1] ends the thread */
	pthread_t thr;
	fake_handler h;         /* how requests are answered */
	bool close_on_accept;   /* true iff connections are closed unread */
	bool overload_on_accept;        /* true iff connections get ERROR OVERLOAD, id 0 */
	uint32_t max_frame;     /* 0, or refuse longer frames unread, as a node does */
	uint32_t err_code;      /* for h_error */
	const char *err_msg;
	/* The store (server thread only). */
	fake_ent ents[MAX_KEYS];
	size_t nents;
	uint64_t clock;
	/* The last request, under mu. */
	pthread_mutex_t mu;
	unsigned nreq;          /* requests received */
	uint32_t last_type;
	proto_opts last_opts;
	uint8_t *last_payload;  /* owned copy */
	size_t last_plen;
	uint8_t last_key[4096];
	size_t last_klen;
	uint8_t *last_val;      /* owned copy */
	size_t last_vlen;
	uint8_t last_ctx[64];
	size_t last_ctxlen;
	char last_admin[2048];  /* ADMIN: command and args, joined by '|' */
	/* What h_info answers to ADMIN (set by the test before it asks). */
	const uint8_t *info;
	size_t info_len;
};

static fake F;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read n bytes from fd unless the test ends first: false on EOF or stop. */
static bool fk_read(int fd, void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
				       { .fd = F.stop[0], .events = POLLIN } };
		ssize_t r;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		if (p[1].revents != 0)
			return false;
		r = recv(fd, (char *)buf + off, n - off, 0);
		if (r <= 0)
			return false;
		off += (size_t)r;
	}
	return true;
}

static void fk_write(int fd, const void *buf, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t r = send(fd, (const char *)buf + off, n - off, MSG_NOSIGNAL);

		if (r <= 0)
			return;         /* the client went away: its problem */
		off += (size_t)r;
	}
}

/* Send one frame an encoder made. */
static void fk_send(int fd, msgpack_sbuffer *sb)
{
	fk_write(fd, sb->data, sb->size);
	sb->size = 0;
}

static void record(const proto_msg *m, const uint8_t *p, size_t len)
{
	pthread_mutex_lock(&F.mu);
	F.nreq++;
	F.last_type = m->type;
	F.last_opts = m->opts;
	free(F.last_payload);
	F.last_payload = malloc(len);
	memcpy(F.last_payload, p, len);
	F.last_plen = len;
	F.last_klen = m->key.len < sizeof(F.last_key) ? m->key.len : sizeof(F.last_key);
	if (F.last_klen > 0)
		memcpy(F.last_key, m->key.p, F.last_klen);
	free(F.last_val);
	F.last_val = malloc(m->value.len + 1);
	if (m->value.len > 0)
		memcpy(F.last_val, m->value.p, m->value.len);
	F.last_vlen = m->value.len;
	F.last_ctxlen = m->context.len < sizeof(F.last_ctx) ? m->context.len : sizeof(F.last_ctx);
	if (F.last_ctxlen > 0)
		memcpy(F.last_ctx, m->context.p, F.last_ctxlen);
	F.last_admin[0] = '\0';
	if (m->type == PROTO_ADMIN) {
		size_t o = (size_t)snprintf(F.last_admin, sizeof(F.last_admin), "%.*s",
					    (int)m->command.len, (const char *)m->command.p);

		for (size_t i = 0; i < m->nargs && o < sizeof(F.last_admin); i++)
			o += (size_t)snprintf(F.last_admin + o, sizeof(F.last_admin) - o, "|%.*s",
					      (int)m->args[i].len, (const char *)m->args[i].p);
	}
	pthread_mutex_unlock(&F.mu);
}

static void serve_conn(int fd)
{
	static const proto_limits lim = { 1u << 20, 64u << 20 };
	uint8_t hdr[4];

	for (;;) {
		uint32_t len;
		uint8_t *p;
		proto_msg m;
		char err[256];
		bool keep;

		if (!fk_read(fd, hdr, 4))
			return;
		len = proto_frame_length(hdr);
		if (F.max_frame != 0 && len > F.max_frame) {
			msgpack_sbuffer sb;

			snprintf(err, sizeof(err), "frame too large: %u > max_frame %u",
				 len, F.max_frame);
			msgpack_sbuffer_init(&sb);
			proto_encode_error(&sb, 0, PROTO_ERR_TOOBIG, err);
			fk_send(fd, &sb);
			msgpack_sbuffer_destroy(&sb);
			return;         /* closed with the payload unread: a reset */
		}
		if (len == 0 || len > (96u << 20))
			return;
		p = malloc(len);
		if (!fk_read(fd, p, len)) {
			free(p);
			return;
		}
		if (proto_decode(p, len, &lim, &m, err, sizeof(err)) != 0) {
			msgpack_sbuffer sb;

			msgpack_sbuffer_init(&sb);
			proto_encode_error(&sb, m.id, PROTO_ERR_PROTOCOL, err);
			fk_send(fd, &sb);
			msgpack_sbuffer_destroy(&sb);
			free(p);
			return;
		}
		record(&m, p, len);
		keep = F.h(&F, fd, &m, p, len);
		proto_msg_release(&m);
		free(p);
		if (!keep)
			return;
	}
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = F.lfd, .events = POLLIN },
				       { .fd = F.stop[0], .events = POLLIN } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			break;
		fd = accept(F.lfd, NULL, NULL);
		if (fd < 0)
			continue;
		if (F.overload_on_accept) {
			msgpack_sbuffer sb;

			msgpack_sbuffer_init(&sb);
			proto_encode_error(&sb, 0, PROTO_ERR_OVERLOAD, "too many connections (1024)");
			fk_send(fd, &sb);
			msgpack_sbuffer_destroy(&sb);
		} else if (!F.close_on_accept) {
			serve_conn(fd);
		}
		close(fd);
	}
	return NULL;
}

static bool h_store(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);

static void fake_start(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);

	signal(SIGPIPE, SIG_IGN);
	memset(&F, 0, sizeof(F));
	pthread_mutex_init(&F.mu, NULL);
	F.h = h_store;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	F.lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(F.lfd >= 0);
	cr_assert_eq(bind(F.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(F.lfd, 16), 0);
	cr_assert_eq(getsockname(F.lfd, (struct sockaddr *)&a, &alen), 0);
	F.port = ntohs(a.sin_port);
	cr_assert_eq(pipe(F.stop), 0);
	cr_assert_eq(pthread_create(&F.thr, NULL, serve, NULL), 0);
}

static void fake_stop(void)
{
	cr_assert_eq(write(F.stop[1], "x", 1), 1);
	pthread_join(F.thr, NULL);
	close(F.lfd);
	close(F.stop[0]);
	close(F.stop[1]);
	for (size_t i = 0; i < F.nents; i++)
		for (size_t j = 0; j < F.ents[i].n; j++)
			free(F.ents[i].sibs[j].val);
	free(F.last_payload);
	free(F.last_val);
	pthread_mutex_destroy(&F.mu);
}

/* --- fake handlers -------------------------------------------------------- */

static void make_ctx(uint8_t ctx[CTX_LEN], uint64_t clock)
{
	ctx[0] = 'C';
	ctx[1] = 0;
	for (int i = 0; i < 8; i++)
		ctx[2 + i] = (uint8_t)(clock >> (56 - 8 * i));
	ctx[10] = 0xff;
}

/* The clock a context has seen, or -1 if it is not one of ours. */
static int64_t parse_ctx(const proto_bytes *c)
{
	uint64_t v = 0;

	if (c->len == 0)
		return 0;
	if (c->len != CTX_LEN || c->p[0] != 'C' || c->p[1] != 0 || c->p[10] != 0xff)
		return -1;
	for (int i = 0; i < 8; i++)
		v = v << 8 | c->p[2 + i];
	return (int64_t)v;
}

static fake_ent *find(fake *f, const proto_bytes *k, bool create)
{
	fake_ent *e;

	for (size_t i = 0; i < f->nents; i++)
		if (f->ents[i].klen == k->len && memcmp(f->ents[i].key, k->p, k->len) == 0)
			return &f->ents[i];
	if (!create || f->nents == MAX_KEYS || k->len > sizeof(f->ents[0].key))
		return NULL;
	e = &f->ents[f->nents++];
	memcpy(e->key, k->p, k->len);
	e->klen = k->len;
	return e;
}

/* A node's store: siblings by a clock; a context covers what it has seen. */
static bool h_store(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;
	fake_ent *e;

	msgpack_sbuffer_init(&sb);
	if (m->type == PROTO_PING) {
		proto_encode_pong(&sb, m->id);
	} else if (m->type == PROTO_GET) {
		proto_bytes vals[MAX_SIBS];
		size_t n = 0;
		uint64_t tombs = 0;
		uint8_t ctx[CTX_LEN];

		e = find(f, &m->key, false);
		for (size_t i = 0; e != NULL && i < e->n; i++) {
			if (e->sibs[i].tomb) {
				tombs++;
			} else {
				vals[n].p = e->sibs[i].val;
				vals[n++].len = e->sibs[i].len;
			}
		}
		make_ctx(ctx, f->clock);
		proto_encode_value(&sb, m->id, n > 0, vals, n, ctx, e ? CTX_LEN : 0, tombs);
	} else {
		/* replace mode: as if the context had seen everything */
		int64_t seen = m->opts.replace ? INT64_MAX : parse_ctx(&m->context);

		e = find(f, &m->key, true);
		if (seen < 0) {
			proto_encode_error(&sb, m->id, PROTO_ERR_CONTEXT, "malformed context");
		} else if (e == NULL) {
			proto_encode_error(&sb, m->id, PROTO_ERR_STORAGE, "fake store full");
		} else {
			size_t k = 0;

			for (size_t i = 0; i < e->n; i++) {
				if (e->sibs[i].seq <= (uint64_t)seen)
					free(e->sibs[i].val);
				else
					e->sibs[k++] = e->sibs[i];
			}
			e->n = k;
			cr_assert_lt(e->n, MAX_SIBS);
			e->sibs[e->n].seq = ++f->clock;
			e->sibs[e->n].tomb = m->type == PROTO_DELETE;
			e->sibs[e->n].len = m->type == PROTO_PUT ? m->value.len : 0;
			e->sibs[e->n].val = malloc(m->value.len + 1);
			if (m->value.len > 0)
				memcpy(e->sibs[e->n].val, m->value.p, m->value.len);
			e->n++;
			uint8_t ctx[CTX_LEN];
			uint32_t live = 0;

			for (size_t i = 0; i < e->n; i++)
				live += !e->sibs[i].tomb;
			make_ctx(ctx, f->clock);
			if (m->opts.siblings)
				proto_encode_ok_siblings(&sb, m->id, ctx, CTX_LEN, live);
			else
				proto_encode_ok(&sb, m->id, ctx, CTX_LEN);
		}
	}
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* Every request fails with F.err_code and F.err_msg. */
static bool h_error(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_error(&sb, m->id, f->err_code, f->err_msg);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* ERROR with request id 0, then close, as a node does with a bad frame. */
static bool h_error_id0(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_error(&sb, 0, PROTO_ERR_TOOBIG, "frame too large: 9000000 > max_frame 8388608");
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return false;
}

/* The first half of a correct VALUE reply, then close. */
static bool h_half(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const proto_bytes v = { (const uint8_t *)"0123456789abcdef", 16 };
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_value(&sb, m->id, true, &v, 1, NULL, 0, 0);
	fk_write(fd, sb.data, sb.size / 2);
	msgpack_sbuffer_destroy(&sb);
	return false;
}

/* Never answer; keep the connection open. */
static bool h_silent(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	return true;
}

/* Close without a word. */
static bool h_close(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	return false;
}

/* Bytes that are not a message behind a correct length prefix. */
static bool h_garbage(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const uint8_t g[] = { 0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1 };

	fk_write(fd, g, sizeof(g));
	return true;
}

/* A length prefix of 4 GiB - 1, then a few bytes. */
static bool h_huge(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const uint8_t g[] = { 0xff, 0xff, 0xff, 0xff, 0x94, 1, 64, 1 };

	fk_write(fd, g, sizeof(g));
	return true;
}

/* What another server answers (F.err_msg, as text), then close. */
static bool h_text(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	fk_write(fd, f->err_msg, strlen(f->err_msg));
	return false;
}

static bool h_zero_len(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const uint8_t g[] = { 0, 0, 0, 0 };

	fk_write(fd, g, sizeof(g));
	return true;
}

/* A correct reply for the next request id. */
static bool h_wrong_id(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_value(&sb, m->id + 1, false, NULL, 0, NULL, 0, 0);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* PONG, whatever was asked. */
static bool h_pong(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_pong(&sb, m->id);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* A VALUE that says found but carries no value. */
static bool h_found_empty(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_value(&sb, m->id, true, NULL, 0, NULL, 0, 0);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* A reply in protocol version 2. */
static bool h_version2(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_pong(&sb, m->id);
	cr_assert_eq((uint8_t)sb.data[5], PROTO_VERSION);  /* [fixarray, 1, ...] */
	sb.data[5] = 2;
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* INFO with F.info to an ADMIN; PONG to a PING. */
static bool h_info(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	if (m->type == PROTO_ADMIN)
		cr_assert_eq(proto_encode_info(&sb, m->id, f->info, f->info_len), 0);
	else
		proto_encode_pong(&sb, m->id);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* The first half of an INFO reply, then close. */
static bool h_info_half(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_info(&sb, m->id, f->info, f->info_len), 0);
	fk_write(fd, sb.data, sb.size / 2);
	msgpack_sbuffer_destroy(&sb);
	return false;
}

/* An INFO whose map is nested too deep (by hand: the encoder refuses it). */
static bool h_info_deep(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	uint8_t g[4 + 4 + 3 * 40 + 1];
	size_t n = 0;

	g[n++] = 0;
	g[n++] = 0;
	g[n++] = 0;
	g[n++] = (uint8_t)(sizeof(g) - 4);
	g[n++] = 0x94;
	g[n++] = 0x01;
	g[n++] = PROTO_INFO;
	g[n++] = (uint8_t)m->id;
	for (int i = 0; i < 40; i++) {
		g[n++] = 0x81;
		g[n++] = 0xa1;
		g[n++] = 'k';
	}
	g[n++] = 0x01;
	fk_write(fd, g, n);
	return true;
}

/* --- client fixtures ------------------------------------------------------ */

static char addr[64];

static void setup(void)
{
	fake_start();
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", F.port);
}

static void teardown(void)
{
	fake_stop();
}

static dynkv *connect_cfg(dynkv_config *cfg)
{
	char err[256] = "";
	dynkv *c = NULL;
	int rc;

	cfg->address = addr;
	rc = dynkv_connect(&c, cfg, err, sizeof(err));
	cr_assert_eq(rc, 0, "connect %s: %s", addr, err);
	cr_assert_not_null(c);
	return c;
}

static dynkv *conn(void)
{
	dynkv_config cfg;

	dynkv_config_init(&cfg);
	return connect_cfg(&cfg);
}

static unsigned nreq(void)
{
	unsigned n;

	pthread_mutex_lock(&F.mu);
	n = F.nreq;
	pthread_mutex_unlock(&F.mu);
	return n;
}

#define assert_bytes(b, s, n) do {                                                \
		cr_assert_eq((b).len, (size_t)(n), "length %zu, expected %zu",     \
			     (b).len, (size_t)(n));                                \
		cr_assert((n) == 0 || memcmp((b).data, (s), (n)) == 0, "bytes differ"); \
	} while (0)

/* --- round trips ---------------------------------------------------------- */

TestSuite(client, .init = setup, .fini = teardown);

Test(client, ping)
{
	dynkv *c = conn();

	cr_assert_eq(dynkv_ping(c, 0), 0);
	cr_assert_eq(F.last_type, PROTO_PING);
	cr_assert_str_empty(dynkv_errmsg(c));
	cr_assert_eq(dynkv_ping(c, 1000), 0);
	cr_assert_eq(nreq(), 2);
	dynkv_close(c);
}

Test(client, get_missing_is_not_an_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	cr_assert_eq(dynkv_get(c, "nope", 4, NULL, &r), 0);
	cr_assert(!r.found);
	cr_assert_eq(r.nvalues, 0);
	cr_assert_null(r.values);
	cr_assert_eq(r.context.len, 0);
	cr_assert_eq(r.tombstones, 0);
	dynkv_result_free(&r);
	dynkv_result_free(&r);          /* freeing an empty result is harmless */
	dynkv_close(c);
}

Test(client, put_get_binary_key_and_value)
{
	static const char key[] = "k\0ey\xff";
	uint8_t val[256];
	dynkv *c = conn();
	dynkv_result r = {0};

	for (int i = 0; i < 256; i++)
		val[i] = (uint8_t)(255 - i);
	cr_assert_eq(dynkv_put(c, key, sizeof(key) - 1, val, sizeof(val), NULL, 0, NULL, NULL), 0);
	cr_assert_eq(F.last_type, PROTO_PUT);
	cr_assert_eq(F.last_klen, 5);
	cr_assert(memcmp(F.last_key, key, 5) == 0);
	cr_assert_eq(F.last_vlen, 256);
	cr_assert(memcmp(F.last_val, val, 256) == 0);
	cr_assert_eq(F.last_ctxlen, 0, "a put without context sends none");

	cr_assert_eq(dynkv_get(c, key, sizeof(key) - 1, NULL, &r), 0);
	cr_assert(r.found);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], val, 256);
	cr_assert_eq(r.context.len, CTX_LEN);
	dynkv_result_free(&r);

	/* A key that differs only after the NUL is another key. */
	cr_assert_eq(dynkv_get(c, "k\0ex", 4, NULL, &r), 0);
	cr_assert(!r.found);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, empty_value_round_trips)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "e", 1, NULL, 0, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(F.last_vlen, 0);
	cr_assert_eq(dynkv_get(c, "e", 1, NULL, &r), 0);
	cr_assert(r.found, "a 0-byte value is a value");
	cr_assert_eq(r.nvalues, 1);
	cr_assert_eq(r.values[0].len, 0);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, large_value_round_trips)
{
	size_t n = 3u << 20;
	uint8_t *v = malloc(n);
	dynkv *c = conn();
	dynkv_result r = {0};

	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)(i * 7 + (i >> 13));
	cr_assert_eq(dynkv_put(c, "big", 3, v, n, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "big", 3, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], v, n);
	dynkv_result_free(&r);
	/* Still usable after a put that grew the encoding buffer. */
	cr_assert_eq(dynkv_ping(c, 0), 0);
	dynkv_close(c);
	free(v);
}

Test(client, siblings_and_context_resolve)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	uint8_t ctx[CTX_LEN];

	cr_assert_eq(dynkv_put(c, "g", 1, "hello", 5, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_put(c, "g", 1, "hi", 2, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "g", 1, NULL, &r), 0);
	cr_assert(r.found);
	cr_assert_eq(r.nvalues, 2, "two blind writes are siblings");
	assert_bytes(r.values[0], "hello", 5);
	assert_bytes(r.values[1], "hi", 2);
	make_ctx(ctx, 2);
	assert_bytes(r.context, ctx, CTX_LEN);

	/* The context goes back byte for byte (NUL and 0xff included). */
	cr_assert_eq(dynkv_put(c, "g", 1, "hello, hi", 9, r.context.data, r.context.len,
			       NULL, NULL), 0);
	cr_assert_eq(F.last_ctxlen, CTX_LEN);
	cr_assert(memcmp(F.last_ctx, ctx, CTX_LEN) == 0);
	dynkv_result_free(&r);

	cr_assert_eq(dynkv_get(c, "g", 1, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], "hello, hi", 9);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, writes_return_the_new_context)
{
	dynkv *c = conn();
	dynkv_result w = {0}, w2 = {0}, r = {0};
	uint8_t ctx[CTX_LEN];

	cr_assert_eq(dynkv_put(c, "w", 1, "one", 3, NULL, 0, NULL, &w), 0);
	make_ctx(ctx, 1);
	assert_bytes(w.context, ctx, CTX_LEN);
	cr_assert(!w.found);
	cr_assert_eq(w.nvalues, 0);
	cr_assert_null(w.values);
	/* Writing with it supersedes the first write: no sibling. */
	cr_assert_eq(dynkv_put(c, "w", 1, "two", 3, w.context.data, w.context.len, NULL, &w2), 0);
	cr_assert(memcmp(F.last_ctx, ctx, CTX_LEN) == 0);
	dynkv_result_free(&w);
	cr_assert_eq(dynkv_get(c, "w", 1, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], "two", 3);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_delete(c, "w", 1, w2.context.data, w2.context.len, NULL, &w), 0);
	make_ctx(ctx, 3);
	assert_bytes(w.context, ctx, CTX_LEN);
	dynkv_result_free(&w);
	dynkv_result_free(&w2);
	cr_assert_eq(dynkv_get(c, "w", 1, NULL, &r), 0);
	cr_assert(!r.found);
	cr_assert_eq(r.tombstones, 1);
	dynkv_result_free(&r);
	/* A failed write leaves the result empty. */
	F.h = h_error;
	F.err_code = PROTO_ERR_STORAGE;
	F.err_msg = "disk full";
	cr_assert_eq(dynkv_put(c, "w", 1, "x", 1, NULL, 0, NULL, &w), DYNKV_ESTORAGE);
	cr_assert_eq(w.context.len, 0);
	cr_assert_null(w.priv_);
	cr_assert_eq(dynkv_delete(c, "w", 1, NULL, 0, NULL, &w), DYNKV_ESTORAGE);
	cr_assert_eq(w.context.len, 0);
	dynkv_close(c);
}

Test(client, delete_with_context_and_tombstones)
{
	dynkv *c = conn();
	dynkv_result r = {0}, r2 = {0};

	cr_assert_eq(dynkv_put(c, "d", 1, "v1", 2, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "d", 1, NULL, &r), 0);
	/* A blind delete is a sibling of the value: found, one tombstone. */
	cr_assert_eq(dynkv_delete(c, "d", 1, NULL, 0, NULL, NULL), 0);
	cr_assert_eq(F.last_type, PROTO_DELETE);
	cr_assert_eq(dynkv_get(c, "d", 1, NULL, &r2), 0);
	cr_assert(r2.found);
	cr_assert_eq(r2.nvalues, 1);
	cr_assert_eq(r2.tombstones, 1);
	/* A delete with the latest context supersedes both. */
	cr_assert_eq(dynkv_delete(c, "d", 1, r2.context.data, r2.context.len, NULL, NULL),
		     0);
	cr_assert_eq(F.last_ctxlen, CTX_LEN);
	dynkv_result_free(&r2);
	cr_assert_eq(dynkv_get(c, "d", 1, NULL, &r2), 0);
	cr_assert(!r2.found);
	cr_assert_eq(r2.nvalues, 0);
	cr_assert_eq(r2.tombstones, 1);
	cr_assert_eq(r2.context.len, CTX_LEN, "a deleted key still has a context");
	dynkv_result_free(&r2);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, bad_context_is_the_nodes_error)
{
	dynkv *c = conn();

	cr_assert_eq(dynkv_put(c, "x", 1, "v", 1, "junk", 4, NULL, NULL), DYNKV_ECONTEXT);
	cr_assert_str_eq(dynkv_errmsg(c), "malformed context");
	cr_assert(!dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), 0);
	cr_assert_str_empty(dynkv_errmsg(c), "success clears the message");
	dynkv_close(c);
}

/* --- options -------------------------------------------------------------- */

/* {"siblings": 1}: the options of a write with every option at its default. */
static const uint8_t siblings_only[] = { 0x81, 0xa8, 's', 'i', 'b', 'l', 'i', 'n', 'g', 's', 0x01 };

Test(client, options_on_the_wire)
{
	dynkv *c = conn();
	dynkv_opts o = { .r = 2, .w = DYNKV_QUORUM, .pr = DYNKV_ONE, .pw = DYNKV_ALL,
			 .timeout_ms = 1234 };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "o", 1, "v", 1, NULL, 0, &o, NULL), 0);
	cr_assert_eq(F.last_opts.r, 2);
	cr_assert_eq(F.last_opts.w, -2);
	cr_assert_eq(F.last_opts.pr, -1);
	cr_assert_eq(F.last_opts.pw, -3);
	cr_assert_eq(F.last_opts.timeout_ms, 1234);

	o = (dynkv_opts){ .r = 16 };
	cr_assert_eq(dynkv_get(c, "o", 1, &o, &r), 0);
	dynkv_result_free(&r);
	cr_assert_eq(F.last_type, PROTO_GET);
	cr_assert_eq(F.last_opts.r, 16);
	cr_assert_eq(F.last_opts.w, 0);
	cr_assert_eq(F.last_opts.timeout_ms, 0);

	/* Defaults: an empty map on the wire (the payload's last byte, 0x80);
	 * a write's map asks for the sibling count, and nothing else. */
	o = (dynkv_opts){ 0 };
	cr_assert_eq(dynkv_delete(c, "o", 1, NULL, 0, &o, NULL), 0);
	cr_assert_geq(F.last_plen, sizeof(siblings_only));
	cr_assert_arr_eq(F.last_payload + F.last_plen - sizeof(siblings_only), siblings_only,
			 sizeof(siblings_only));
	cr_assert_eq(dynkv_get(c, "o", 1, NULL, &r), 0);
	dynkv_result_free(&r);
	cr_assert_eq(F.last_payload[F.last_plen - 1], 0x80);
	dynkv_close(c);
}

Test(client, replace_mode_and_the_sibling_count)
{
	dynkv *c = conn();
	dynkv_opts blind = { 0 }, repl = { .replace = true, .r = 3, .pr = DYNKV_ONE };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "s", 1, "a", 1, NULL, 0, &blind, &r), 0);
	cr_assert_not(F.last_opts.replace);
	cr_assert(F.last_opts.siblings, "a put asks for the count");
	cr_assert_eq(r.siblings, 1);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_put(c, "s", 1, "b", 1, NULL, 0, &blind, &r), 0);
	cr_assert_eq(r.siblings, 2, "a blind put leaves a sibling");
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_get(c, "s", 1, NULL, &r), 0);
	cr_assert_eq(r.siblings, 2, "a get's siblings are its values");
	cr_assert_eq(r.nvalues, 2);
	dynkv_result_free(&r);

	cr_assert_eq(dynkv_put(c, "s", 1, "c", 1, NULL, 0, &repl, &r), 0);
	cr_assert(F.last_opts.replace);
	cr_assert(F.last_opts.siblings);
	cr_assert_eq(F.last_opts.r, 3, "replace mode sends its read's R");
	cr_assert_eq(F.last_opts.pr, DYNKV_ONE);
	cr_assert_eq(F.last_ctxlen, 0);
	cr_assert_eq(r.siblings, 1);
	cr_assert_gt(r.context.len, 0);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_get(c, "s", 1, NULL, &r), 0);
	cr_assert_eq(r.nvalues, 1);
	assert_bytes(r.values[0], "c", 1);
	dynkv_result_free(&r);

	/* a replace-mode delete deletes what is there */
	cr_assert_eq(dynkv_delete(c, "s", 1, NULL, 0, &repl, &r), 0);
	cr_assert(F.last_opts.replace);
	cr_assert_eq(r.siblings, 0);
	dynkv_result_free(&r);
	cr_assert_eq(dynkv_get(c, "s", 1, NULL, &r), 0);
	cr_assert_not(r.found);
	dynkv_result_free(&r);
	dynkv_close(c);
}

Test(client, replace_with_a_context_or_on_a_get_is_refused_before_sending)
{
	dynkv *c = conn();
	dynkv_opts repl = { .replace = true };
	dynkv_result r = {0};

	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, "ctx", 3, &repl, &r), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c),
			 "replace with a context: a context already says what the write replaces");
	cr_assert_eq(dynkv_delete(c, "k", 1, "ctx", 3, &repl, NULL), DYNKV_EARG);
	cr_assert_eq(dynkv_get(c, "k", 1, &repl, &r), DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "replace is for put and delete, not get");
	cr_assert_eq(nreq(), 0, "nothing was sent");
	cr_assert_not(dynkv_is_broken(c));
	dynkv_close(c);
}

Test(client, bad_options_are_refused_before_sending)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	dynkv_opts bad[] = {
		{ .r = 17 }, { .w = -4 }, { .pr = 100 }, { .pw = -1000 },
		{ .timeout_ms = DYNKV_TIMEOUT_MAX + 1 },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dynkv_get(c, "k", 1, &bad[i], &r), DYNKV_EARG, "case %zu", i);
		cr_assert_str_not_empty(dynkv_errmsg(c));
		cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, &bad[i], NULL), DYNKV_EARG);
	}
	cr_assert_eq(dynkv_get(c, NULL, 0, NULL, &r), DYNKV_EARG);
	cr_assert_eq(dynkv_get(c, "k", 0, NULL, &r), DYNKV_EARG, "empty key");
	cr_assert_eq(dynkv_put(c, "k", 1, NULL, 3, NULL, 0, NULL, NULL), DYNKV_EARG);
	cr_assert_eq(dynkv_delete(c, "k", 1, NULL, 3, NULL, NULL), DYNKV_EARG);
	cr_assert_eq(nreq(), 0, "nothing was sent");
	cr_assert(!dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), 0);
	dynkv_close(c);
}

Test(client, quorum_words)
{
	int q = 99;

	cr_assert_eq(dynkv_parse_quorum("one", &q), 0);
	cr_assert_eq(q, DYNKV_ONE);
	cr_assert_eq(dynkv_parse_quorum("quorum", &q), 0);
	cr_assert_eq(q, DYNKV_QUORUM);
	cr_assert_eq(dynkv_parse_quorum("all", &q), 0);
	cr_assert_eq(q, DYNKV_ALL);
	cr_assert_eq(dynkv_parse_quorum("default", &q), 0);
	cr_assert_eq(q, 0);
	cr_assert_eq(dynkv_parse_quorum("1", &q), 0);
	cr_assert_eq(q, 1);
	cr_assert_eq(dynkv_parse_quorum("16", &q), 0);
	cr_assert_eq(q, 16);
	q = 99;
	static const char *const bad[] = { "0", "17", "-1", "+2", " 2", "2 ", "2x", "",
					   "ONE", "quorum2", "99999999999999999999" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dynkv_parse_quorum(bad[i], &q), DYNKV_EARG, "\"%s\"", bad[i]);
		cr_assert_eq(q, 99, "untouched on error");
	}
	cr_assert_eq(dynkv_parse_quorum(NULL, &q), DYNKV_EARG);
	cr_assert_str_eq(dynkv_quorum_name(DYNKV_ONE), "one");
	cr_assert_str_eq(dynkv_quorum_name(DYNKV_QUORUM), "quorum");
	cr_assert_str_eq(dynkv_quorum_name(DYNKV_ALL), "all");
	cr_assert_str_eq(dynkv_quorum_name(0), "default");
	cr_assert_null(dynkv_quorum_name(3));
}

/* --- node errors ---------------------------------------------------------- */

Test(client, every_node_error_maps_to_its_code)
{
	/* With the request's id, every one fails the request only. */
	static const struct { uint32_t wire; int rc; } map[] = {
		{ PROTO_ERR_PROTOCOL, DYNKV_EREQUEST },
		{ PROTO_ERR_VERSION, DYNKV_EVERSION },
		{ PROTO_ERR_TYPE, DYNKV_ETYPE },
		{ PROTO_ERR_TOOBIG, DYNKV_ETOOBIG },
		{ PROTO_ERR_INVALID, DYNKV_EINVALID },
		{ PROTO_ERR_QUORUM, DYNKV_EQUORUM },
		{ PROTO_ERR_TIMEOUT, DYNKV_ENODETIMEOUT },
		{ PROTO_ERR_STORAGE, DYNKV_ESTORAGE },
		{ PROTO_ERR_OVERLOAD, DYNKV_EOVERLOAD },
		{ PROTO_ERR_SHUTDOWN, DYNKV_ESHUTDOWN },
		{ PROTO_ERR_CONTEXT, DYNKV_ECONTEXT },
		{ PROTO_ERR_INTERNAL, DYNKV_EINTERNAL },
		{ 99, DYNKV_ESERVER },
	};
	char msg[128];

	F.h = h_error;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		dynkv *c = conn();
		dynkv_result r = {0};

		snprintf(msg, sizeof(msg), "error %u: detail", map[i].wire);
		F.err_code = map[i].wire;
		F.err_msg = msg;
		cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), map[i].rc, "wire code %u", map[i].wire);
		cr_assert(!r.found);
		cr_assert_null(r.values);
		cr_assert_str_eq(dynkv_errmsg(c), msg);
		cr_assert(dynkv_is_server_error(map[i].rc));
		cr_assert(!dynkv_is_broken(c), "wire code %u", map[i].wire);
		cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), map[i].rc);
		dynkv_close(c);
	}
}

Test(client, quorum_error_keeps_the_nodes_message)
{
	dynkv *c = conn();

	F.h = h_error;
	F.err_code = PROTO_ERR_QUORUM;
	F.err_msg = "quorum not met: 1 of w=2 replicas answered";
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_EQUORUM);
	cr_assert_str_eq(dynkv_errmsg(c), "quorum not met: 1 of w=2 replicas answered");
	cr_assert_str_eq(dynkv_strerror(DYNKV_EQUORUM), "quorum not met");
	cr_assert_eq(dynkv_delete(c, "k", 1, NULL, 0, NULL, NULL), DYNKV_EQUORUM);
	/* An empty message from the node: the code's text stands in. */
	F.err_msg = "";
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EQUORUM);
	cr_assert_str_eq(dynkv_errmsg(c), "quorum not met");
	dynkv_close(c);
}

Test(client, error_without_request_id_breaks_the_connection)
{
	dynkv *c = conn();

	F.h = h_error_id0;
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_ETOOBIG);
	cr_assert_str_eq(dynkv_errmsg(c), "frame too large: 9000000 > max_frame 8388608");
	cr_assert(dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EBROKEN);
	dynkv_close(c);
}

Test(client, overload_at_accept_fails_the_first_request)
{
	dynkv *c;

	F.overload_on_accept = true;
	c = conn();
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EOVERLOAD);
	cr_assert_str_eq(dynkv_errmsg(c), "too many connections (1024)");
	cr_assert(dynkv_is_broken(c));
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EBROKEN);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "too many connections"), "%s", dynkv_errmsg(c));
	dynkv_close(c);
}

Test(client, strerror_names_every_code)
{
	static const int codes[] = {
		DYNKV_EIO, DYNKV_ETIMEOUT, DYNKV_EPROTO, DYNKV_EBROKEN, DYNKV_ENOMEM,
		DYNKV_EARG, DYNKV_ESERVER, DYNKV_EREQUEST, DYNKV_EVERSION, DYNKV_ETYPE,
		DYNKV_ETOOBIG, DYNKV_EINVALID, DYNKV_EQUORUM, DYNKV_ENODETIMEOUT,
		DYNKV_ESTORAGE, DYNKV_EOVERLOAD, DYNKV_ESHUTDOWN, DYNKV_ECONTEXT,
		DYNKV_EINTERNAL,
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_neq(dynkv_strerror(codes[i]), "unknown error", "code %d", codes[i]);
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(dynkv_strerror(codes[i]), dynkv_strerror(codes[j]));
		cr_assert_eq(dynkv_is_server_error(codes[i]), codes[i] <= DYNKV_ESERVER);
	}
	cr_assert_str_eq(dynkv_strerror(0), "success");
	cr_assert_str_eq(dynkv_strerror(-55), "unknown error");
	cr_assert_str_eq(dynkv_strerror(DYNKV_ETIMEOUT), "timed out waiting for the node");
	cr_assert_str_eq(dynkv_strerror(DYNKV_ENODETIMEOUT), "request timed out");
}

/* --- faults --------------------------------------------------------------- */

/* The handle is broken: requests fail at once and say why. */
static void assert_broken(dynkv *c, const char *why)
{
	dynkv_result r = {0};
	unsigned n = nreq();

	cr_assert(dynkv_is_broken(c));
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EBROKEN);
	cr_assert_not_null(strstr(dynkv_errmsg(c), why), "\"%s\" lacks \"%s\"",
			   dynkv_errmsg(c), why);
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_EBROKEN);
	cr_assert_eq(dynkv_delete(c, "k", 1, NULL, 0, NULL, NULL), DYNKV_EBROKEN);
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EBROKEN);
	cr_assert_eq(nreq(), n, "a broken handle sends nothing");
}

Test(client, close_after_half_a_reply_is_an_io_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	int64_t t0 = now_ms();

	F.h = h_half;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EIO);
	cr_assert_lt(now_ms() - t0, 5000, "an EOF is not a wait for the deadline");
	cr_assert_not_null(strstr(dynkv_errmsg(c), "closed by the node"), "%s", dynkv_errmsg(c));
	cr_assert(!r.found);
	assert_broken(c, "closed by the node");
	dynkv_close(c);
}

Test(client, close_before_the_reply_is_an_io_error)
{
	dynkv *c = conn();

	F.h = h_close;
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, NULL, NULL), DYNKV_EIO);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "0 of 4 reply header bytes"), "%s",
			   dynkv_errmsg(c));
	assert_broken(c, "closed");
	dynkv_close(c);
}

Test(client, close_while_sending_is_an_io_error_not_sigpipe)
{
	size_t n = 8u << 20;
	uint8_t *v = calloc(1, n);
	dynkv *c;

	signal(SIGPIPE, SIG_DFL);       /* the library must not raise it */
	F.close_on_accept = true;
	c = conn();
	cr_assert_eq(dynkv_put(c, "k", 1, v, n, NULL, 0, NULL, NULL), DYNKV_EIO);
	cr_assert(dynkv_is_broken(c));
	dynkv_close(c);
	free(v);
}

Test(client, frame_refused_mid_send_reports_the_nodes_error)
{
	size_t n = 8u << 20;
	uint8_t *v = calloc(1, n);
	dynkv *c;

	F.max_frame = 65536;
	c = conn();
	cr_assert_eq(dynkv_put(c, "k", 1, v, 1000, NULL, 0, NULL, NULL), 0, "a small one passes");
	cr_assert_eq(dynkv_put(c, "k", 1, v, n, NULL, 0, NULL, NULL), DYNKV_ETOOBIG, "%s",
		     dynkv_errmsg(c));
	cr_assert_not_null(strstr(dynkv_errmsg(c), "> max_frame 65536"), "%s", dynkv_errmsg(c));
	cr_assert(dynkv_is_broken(c));
	dynkv_close(c);
	free(v);
}

Test(client, garbage_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_garbage;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "malformed reply"), "%s", dynkv_errmsg(c));
	assert_broken(c, "malformed reply");
	dynkv_close(c);
}

Test(client, four_gib_length_is_refused_unread)
{
	dynkv *c = conn();
	dynkv_result r = {0};
	int64_t t0 = now_ms();

	F.h = h_huge;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_lt(now_ms() - t0, 5000);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "4294967295 bytes is above the limit"),
			   "%s", dynkv_errmsg(c));
	assert_broken(c, "above the limit");
	dynkv_close(c);
}

Test(client, another_servers_answer_names_the_peer_and_its_kind)
{
	static const struct { const char *answer, *want; } cases[] = {
		{ "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
		  "is not a dynkv node (it answered like an HTTP server: "
		  "\"HTTP/1.1 400 Bad Request\")" },
		{ "-ERR unknown command\r\n",
		  "is not a dynkv node (it answered like a Redis server: \"-ERR unknown command\")" },
		{ "+OK\r\n", "(it answered like a Redis server: \"+OK\")" },
		{ "SSH-2.0-OpenSSH_9.2p1\r\n", "(it answered like an SSH server: " },
		{ "hello there\n", "is not a dynkv node (it answered: \"hello there\")" },
	};
	char want[128];

	F.h = h_text;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dynkv *c = conn();
		int64_t t0 = now_ms();

		F.err_msg = cases[i].answer;
		cr_assert_eq(dynkv_ping(c, 0), DYNKV_EPROTO, "case %zu", i);
		cr_assert_lt(now_ms() - t0, 2000);
		cr_assert_not_null(strstr(dynkv_errmsg(c), cases[i].want), "case %zu: %s", i,
				   dynkv_errmsg(c));
		snprintf(want, sizeof(want), "the peer at %s is not a dynkv node", addr);
		cr_assert_not_null(strstr(dynkv_errmsg(c), want), "%s", dynkv_errmsg(c));
		assert_broken(c, "not a dynkv node");
		dynkv_close(c);
	}
}

Test(client, zero_length_frame_is_a_protocol_error)
{
	dynkv *c = conn();

	F.h = h_zero_len;
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EPROTO);
	assert_broken(c, "empty reply frame");
	dynkv_close(c);
}

Test(client, reply_limit_is_settable)
{
	dynkv_config cfg;
	dynkv *c;
	dynkv_result r = {0};
	uint8_t v[1000] = {0};

	dynkv_config_init(&cfg);
	cfg.max_reply = 2000;
	c = connect_cfg(&cfg);
	cr_assert_eq(dynkv_put(c, "k", 1, v, sizeof(v), NULL, 0, NULL, NULL), 0);
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), 0, "%s", dynkv_errmsg(c));
	dynkv_result_free(&r);
	dynkv_set_max_reply(c, 500);
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "above the limit of 500"), "%s",
			   dynkv_errmsg(c));
	cr_assert(dynkv_is_broken(c));
	dynkv_close(c);
}

Test(client, wrong_request_id_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_wrong_id;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_str_eq(dynkv_errmsg(c), "reply VALUE for request 2, expected 1");
	assert_broken(c, "expected 1");
	dynkv_close(c);
}

Test(client, wrong_reply_type_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_pong;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_str_eq(dynkv_errmsg(c), "reply PONG to a request that expects VALUE");
	assert_broken(c, "PONG");
	dynkv_close(c);
}

Test(client, found_without_values_is_a_protocol_error)
{
	dynkv *c = conn();
	dynkv_result r = {0};

	F.h = h_found_empty;
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_EPROTO);
	cr_assert_null(r.values);
	assert_broken(c, "found true and 0 values");
	dynkv_close(c);
}

Test(client, other_protocol_version_is_a_protocol_error)
{
	dynkv *c = conn();

	F.h = h_version2;
	cr_assert_eq(dynkv_ping(c, 0), DYNKV_EPROTO);
	assert_broken(c, "version 2");
	dynkv_close(c);
}

Test(client, silent_node_times_out_at_the_deadline)
{
	dynkv_config cfg;
	dynkv *c;
	dynkv_result r = {0};
	int64_t t0, dt;

	F.h = h_silent;
	dynkv_config_init(&cfg);
	cfg.request_timeout_ms = 300;
	c = connect_cfg(&cfg);
	t0 = now_ms();
	cr_assert_eq(dynkv_get(c, "k", 1, NULL, &r), DYNKV_ETIMEOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 290, "gave up after %lld ms", (long long)dt);
	cr_assert_lt(dt, 3000, "gave up after %lld ms", (long long)dt);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "timed out"), "%s", dynkv_errmsg(c));
	assert_broken(c, "timed out");
	dynkv_close(c);
}

Test(client, request_deadline_is_its_timeout_plus_the_margin)
{
	dynkv_config cfg;
	dynkv *c;
	dynkv_opts o = { .timeout_ms = 200 };
	int64_t t0, dt;

	F.h = h_silent;
	dynkv_config_init(&cfg);
	cfg.request_timeout_ms = 60000;         /* not this one */
	cfg.timeout_margin_ms = 150;
	c = connect_cfg(&cfg);
	t0 = now_ms();
	cr_assert_eq(dynkv_put(c, "k", 1, "v", 1, NULL, 0, &o, NULL), DYNKV_ETIMEOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 340, "gave up after %lld ms", (long long)dt);
	cr_assert_lt(dt, 3000, "gave up after %lld ms", (long long)dt);
	dynkv_close(c);
}

Test(client, ping_timeout)
{
	dynkv *c = conn();
	int64_t t0 = now_ms(), dt;

	F.h = h_silent;
	cr_assert_eq(dynkv_ping(c, 200), DYNKV_ETIMEOUT);
	dt = now_ms() - t0;
	cr_assert_geq(dt, 190);
	cr_assert_lt(dt, 3000);
	dynkv_close(c);
}

/* --- connecting ----------------------------------------------------------- */

/* A port that nothing listens on: bound, then closed. */
static uint16_t closed_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	close(fd);
	return ntohs(a.sin_port);
}

Test(client, connect_to_a_closed_port_fails_fast)
{
	dynkv_config cfg;
	dynkv *c = (dynkv *)&cfg;       /* must be reset to NULL */
	char a[64], err[256] = "";
	int64_t t0 = now_ms();

	snprintf(a, sizeof(a), "127.0.0.1:%u", closed_port());
	dynkv_config_init(&cfg);
	cfg.address = a;
	cr_assert_eq(dynkv_connect(&c, &cfg, err, sizeof(err)), DYNKV_EIO);
	cr_assert_null(c);
	cr_assert_lt(now_ms() - t0, 2000);
	cr_assert_not_null(strstr(err, "refused"), "%s", err);
	cr_assert_not_null(strstr(err, a), "%s", err);
}

Test(client, bad_addresses)
{
	static const char *const bad[] = {
		"", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:80x", "127.0.0.1:-1", ":7070", "::1:7070", "[::1:7070", "[]:7070",
	};
	dynkv_config cfg;
	dynkv *c = NULL;
	char err[256];

	dynkv_config_init(&cfg);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.address = bad[i];
		err[0] = '\0';
		cr_assert_eq(dynkv_connect(&c, &cfg, err, sizeof(err)), DYNKV_EARG, "\"%s\"", bad[i]);
		cr_assert_str_not_empty(err);
	}
	cfg.address = NULL;
	cr_assert_eq(dynkv_connect(&c, &cfg, NULL, 0), DYNKV_EARG);
	cfg.address = "no-such-host.invalid:7070";
	cr_assert_eq(dynkv_connect(&c, &cfg, err, sizeof(err)), DYNKV_EIO);
	cr_assert_not_null(strstr(err, "cannot resolve"), "%s", err);
}

Test(client, config_defaults)
{
	dynkv_config cfg;

	memset(&cfg, 0xff, sizeof(cfg));
	dynkv_config_init(&cfg);
	cr_assert_null(cfg.address);
	cr_assert_eq(cfg.connect_timeout_ms, DYNKV_DEFAULT_CONNECT_TIMEOUT_MS);
	cr_assert_eq(cfg.request_timeout_ms, DYNKV_DEFAULT_REQUEST_TIMEOUT_MS);
	cr_assert_eq(cfg.timeout_margin_ms, DYNKV_DEFAULT_TIMEOUT_MARGIN_MS);
	cr_assert_eq(cfg.max_reply, DYNKV_DEFAULT_MAX_REPLY);
	dynkv_close(NULL);
	dynkv_result_free(NULL);
}

Test(client, zeroed_config_uses_defaults)
{
	dynkv_config cfg;
	dynkv *c;

	memset(&cfg, 0, sizeof(cfg));
	c = connect_cfg(&cfg);
	cr_assert_eq(dynkv_ping(c, 0), 0);
	dynkv_close(c);
}

/* --- the dynkv command ---------------------------------------------------- */

typedef struct run {
	int status;             /* exit status, or 128 + signal */
	char *out;              /* standard output, NUL-terminated; owned */
	size_t outlen;
	char *err;              /* standard error, NUL-terminated; owned */
} run;

static char *slurp(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	ssize_t r;

	while ((r = read(fd, b + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += (size_t)r;
		if (n == cap)
			b = realloc(b, (cap *= 2) + 1);
	}
	b[n] = '\0';
	if (len != NULL)
		*len = n;
	close(fd);
	return b;
}

/* The program cli_run() runs, beside this test: ../../src/<cli_prog>. */
static const char *cli_prog = "dynkv";

static void cli_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');     /* .../tests/unit/test_client */
	cr_assert_not_null(slash);
	*slash = '\0';
	snprintf(buf, len, "%s/../../src/%s", exe, cli_prog);
}

/* Run dynkv with args (NULL-terminated) and in as standard input. */
static run cli_run(const void *in, size_t inlen, ...)
{
	char path[PATH_MAX + 32];
	const char *argv[32];
	int pin[2], pout[2], perr[2], ws;
	size_t argc = 0;
	run r;
	pid_t pid;
	va_list ap;

	cli_path(path, sizeof(path));
	argv[argc++] = path;
	va_start(ap, inlen);
	while ((argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	cr_assert(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
		close(perr[0]), close(perr[1]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	for (size_t off = 0; off < inlen; ) {    /* dynkv reads all before it writes */
		ssize_t n = write(pin[1], (const char *)in + off, inlen - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(pin[1]);
	r.out = slurp(pout[0], &r.outlen);
	r.err = slurp(perr[0], NULL);
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	cr_assert_neq(r.status, 127, "cannot run %s", path);
	return r;
}

static void run_free(run *r)
{
	free(r->out);
	free(r->err);
}

/* The text after "context: " on a line of s, in a new string. */
static char *context_line(const char *s)
{
	const char *p = strstr(s, "context: ");
	size_t n;
	char *c;

	cr_assert_not_null(p, "no context line in \"%s\"", s);
	p += 9;
	n = strcspn(p, "\n");
	c = malloc(n + 1);
	memcpy(c, p, n);
	c[n] = '\0';
	return c;
}

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, put_then_get_plain)
{
	run r = cli_run(NULL, 0, "--host", addr, "put", "greeting", "hello", NULL);

	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.outlen, 0);
	run_free(&r);
	r = cli_run(NULL, 0, "--host", addr, "get", "greeting", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	/* Not a terminal: the bytes exactly, no newline added. */
	cr_assert_eq(r.outlen, 5);
	cr_assert_str_eq(r.out, "hello");
	/* The context: the fake's 11 bytes "C\0" clock=1 0xff, in base64. */
	cr_assert_str_eq(r.err, "context: QwAAAAAAAAAAAf8=\n");
	run_free(&r);
}

Test(cli, binary_value_through_stdin_round_trips)
{
	uint8_t v[3000];
	run r;

	for (size_t i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)(i % 251);
	r = cli_run(v, sizeof(v), "-H", addr, "put", "bin", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_vlen, sizeof(v));
	cr_assert(memcmp(F.last_val, v, sizeof(v)) == 0);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "bin", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.outlen, sizeof(v));
	cr_assert(memcmp(r.out, v, sizeof(v)) == 0);
	cr_assert_str_empty(r.err, "--quiet: no context line");
	run_free(&r);
	/* Empty standard input: a 0-byte value. */
	r = cli_run(NULL, 0, "-H", addr, "put", "empty", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_vlen, 0);
	run_free(&r);
}

Test(cli, siblings_resolved_with_context)
{
	run r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "greeting", "hello", NULL);
	char *ctx;

	cr_assert_not(F.last_opts.replace, "--sibling is a blind write");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "greeting", "hi", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.err, "note: greeting now has 2 siblings (concurrent writes); "
				  "get it and put with --context to resolve\n"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "--- sibling 1 of 2, 5 bytes\nhello\n"
				"--- sibling 2 of 2, 2 bytes\nhi\n");
	ctx = context_line(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--context", ctx, "put", "greeting", "hello, hi", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_ctxlen, CTX_LEN);
	cr_assert_not(F.last_opts.replace, "a put with a context is not in replace mode");
	cr_assert_null(strstr(r.err, "note:"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	cr_assert_str_eq(r.out, "hello, hi");
	run_free(&r);
	/* del with the context: gone. */
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	free(ctx);
	ctx = context_line(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-c", ctx, "del", "greeting", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_type, PROTO_DELETE);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	cr_assert_eq(r.status, 4, "a key whose only sibling is a tombstone is not found");
	cr_assert_eq(r.outlen, 0);
	cr_assert_not_null(strstr(r.err, "not found\n"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "tombstones: 1\n"), "%s", r.err);
	run_free(&r);
	free(ctx);
}

Test(cli, json_get)
{
	static const uint8_t bad_utf8[] = { 'a', 0xff, 0, 'b' };
	run r = cli_run("a\"b\\\n\x01\x7f\xc3\xa9", 9, "-H", addr, "put", "j", NULL);

	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "get", "j", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"found\":true,"
			 "\"values\":[\"a\\\"b\\\\\\n\\u0001\\u007f\xc3\xa9\"],"
			 "\"encodings\":[\"utf-8\"],\"tombstones\":0,"
			 "\"context\":\"QwAAAAAAAAAAAf8=\"}\n");
	cr_assert_str_empty(r.err);
	run_free(&r);

	r = cli_run(bad_utf8, sizeof(bad_utf8), "-H", addr, "--sibling", "put", "j", NULL);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "get", "j", NULL);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"found\":true,"
			 "\"values\":[\"a\\\"b\\\\\\n\\u0001\\u007f\xc3\xa9\",\"Yf8AYg==\"],"
			 "\"encodings\":[\"utf-8\",\"base64\"],\"tombstones\":0,"
			 "\"context\":\"QwAAAAAAAAAAAv8=\"}\n");
	run_free(&r);

	r = cli_run(NULL, 0, "-H", addr, "-j", "get", "missing", NULL);
	cr_assert_eq(r.status, 4, "not found: the same status as without --json");
	cr_assert_str_eq(r.out, "{\"ok\":true,\"found\":false,\"values\":[],\"encodings\":[],"
			 "\"tombstones\":0,\"context\":\"\"}\n");
	run_free(&r);
}

Test(cli, json_put_del_ping)
{
	run r = cli_run(NULL, 0, "-H", addr, "--json", "put", "k", "v", NULL);

	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"context\":\"QwAAAAAAAAAAAf8=\",\"siblings\":1}\n");
	cr_assert_str_empty(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "del", "k", NULL);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"context\":\"QwAAAAAAAAAAAv8=\",\"siblings\":0}\n");
	run_free(&r);
	/* Plain: the new context on stderr, unless -q. */
	r = cli_run(NULL, 0, "-H", addr, "put", "k", "v", NULL);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_eq(r.err, "context: QwAAAAAAAAAAA/8=\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "del", "k", NULL);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_empty(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "ping", NULL);
	cr_assert_str_eq(r.out, "{\"ok\":true}\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "ping", NULL);
	cr_assert_str_eq(r.out, "pong\n");
	run_free(&r);
}

/* Without --context or --sibling, put and del replace what is there. */
Test(cli, put_and_del_replace_what_is_there)
{
	run r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "rk", "a", NULL);

	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "rk", "b", NULL);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-r", "one", "--pr", "1", "put", "rk", "c", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(F.last_opts.replace);
	cr_assert_eq(F.last_ctxlen, 0);
	cr_assert_eq(F.last_opts.r, DYNKV_ONE, "-r is the R of the replace-mode read");
	cr_assert_eq(F.last_opts.pr, 1);
	cr_assert_null(strstr(r.err, "note:"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "rk", NULL);
	cr_assert_str_eq(r.out, "c");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "del", "rk", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(F.last_opts.replace, "del without --context is in replace mode");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "rk", NULL);
	cr_assert_eq(r.status, 4, "the delete deleted what was there");
	run_free(&r);
}

Test(cli, quorum_and_timeouts_exit_3)
{
	run r;

	F.h = h_error;
	F.err_code = PROTO_ERR_QUORUM;
	F.err_msg = "quorum not met: 1 of w=2 replicas answered";
	r = cli_run(NULL, 0, "-H", addr, "put", "k", "v", NULL);
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.err, "dynkv: put: quorum not met: 1 of w=2 replicas answered\n");
	cr_assert_eq(r.outlen, 0);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "get", "k", NULL);
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.out, "{\"ok\":false,\"error\":"
			 "\"quorum not met: 1 of w=2 replicas answered\",\"code\":-106}\n");
	run_free(&r);
	F.err_code = PROTO_ERR_TIMEOUT;
	F.err_msg = "request timed out: 1 of r=2 replicas answered";
	r = cli_run(NULL, 0, "-H", addr, "get", "k", NULL);
	cr_assert_eq(r.status, 3);
	run_free(&r);
	F.err_code = PROTO_ERR_STORAGE;
	F.err_msg = "storage \"failure\"\ttab";
	r = cli_run(NULL, 0, "-H", addr, "-j", "del", "k", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "{\"ok\":false,\"error\":\"storage \\\"failure\\\"\\ttab\","
			 "\"code\":-108}\n");
	run_free(&r);
	F.h = h_silent;
	r = cli_run(NULL, 0, "-H", addr, "--timeout", "100", "get", "k", NULL);
	cr_assert_eq(r.status, 3, "a client timeout: %s", r.err);
	cr_assert_not_null(strstr(r.err, "timed out"), "%s", r.err);
	run_free(&r);
}

Test(cli, options_reach_the_node)
{
	/* a put takes all four (-r and --pr: see options_that_do_not_apply...) */
	run r = cli_run(NULL, 0, "-H", addr, "-r", "2", "-w", "quorum", "--pr", "one",
			"--pw", "all", "--timeout", "1500", "put", "k", "v", NULL);

	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.r, 2);
	cr_assert_eq(F.last_opts.w, DYNKV_QUORUM);
	cr_assert_eq(F.last_opts.pr, DYNKV_ONE);
	cr_assert_eq(F.last_opts.pw, DYNKV_ALL);
	cr_assert_eq(F.last_opts.timeout_ms, 1500);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-r", "one", "--pr", "2", "-q", "get", "k", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.r, DYNKV_ONE);
	cr_assert_eq(F.last_opts.pr, 2);
	run_free(&r);
	/* Options after the command word, and -- before a key with a dash. */
	r = cli_run(NULL, 0, "put", "-w", "3", "-H", addr, "--", "-key", "-value", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.w, 3);
	cr_assert_eq(F.last_klen, 4);
	cr_assert(memcmp(F.last_key, "-key", 4) == 0);
	cr_assert_eq(F.last_vlen, 6);
	run_free(&r);
}

Test(cli, host_from_the_environment)
{
	run r;

	setenv("DYNKV_HOST", addr, 1);
	r = cli_run(NULL, 0, "ping", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	/* --host wins over the environment. */
	setenv("DYNKV_HOST", "127.0.0.1:1", 1);
	r = cli_run(NULL, 0, "--host", addr, "ping", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	unsetenv("DYNKV_HOST");
}

Test(cli, usage_errors_exit_2)
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "frobnicate", "k", NULL },
		{ "get", NULL },
		{ "get", "a", "b", NULL },
		{ "put", NULL },
		{ "put", "k", "v", "x", NULL },
		{ "del", NULL },
		{ "ping", "x", NULL },
		{ "get", "", NULL },
		{ "-r", "zero", "get", "k", NULL },
		{ "-w", "17", "get", "k", NULL },
		{ "--pr", "0", "get", "k", NULL },
		{ "--timeout", "0", "get", "k", NULL },
		{ "--timeout", "10x", "get", "k", NULL },
		{ "--context", "not base64!", "put", "k", "v", NULL },
		{ "--context", "QUJD", "get", "k", NULL },
		{ "--bogus", "get", "k", NULL },
		{ "get", "k", "-r", NULL },
		{ "--host", "nohostport", "get", "k", NULL },
		{ "--sibling", "--context", "QUJD", "put", "k", "v", NULL },
		{ "--sibling", "del", "k", NULL },
		{ "--sibling", "get", "k", NULL },
		{ "-r", "1", "--sibling", "put", "k", "v", NULL },
		{ "--pr", "1", "--context", "QUJD", "del", "k", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i];
		run r = cli_run(NULL, 0, "-H", addr, a[0], a[0] ? a[1] : NULL,
				a[0] && a[1] ? a[2] : NULL,
				a[0] && a[1] && a[2] ? a[3] : NULL,
				a[0] && a[1] && a[2] && a[3] ? a[4] : NULL, NULL);

		cr_assert_eq(r.status, 2, "case %zu: status %d", i, r.status);
		cr_assert_not_null(strstr(r.err, "usage: dynkv"), "case %zu: %s", i, r.err);
		cr_assert_eq(r.outlen, 0, "case %zu", i);
		run_free(&r);
	}
	cr_assert_eq(nreq(), 0, "no usage error reaches the node");
}

Test(cli, missing_key_and_empty_value_differ_by_exit_status)
{
	run r = cli_run(NULL, 0, "-H", addr, "put", "empty", "", NULL);

	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "empty", NULL);
	cr_assert_eq(r.status, 0, "found, empty: %s", r.err);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_empty(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "missing", NULL);
	cr_assert_eq(r.status, 4, "not found: %s", r.err);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_eq(r.err, "not found\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "missing", NULL);
	cr_assert_eq(r.status, 4);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_empty(r.err);
	run_free(&r);
}

Test(cli, options_that_do_not_apply_are_usage_errors)
{
	static const char *const cases[][5] = {
		{ "-w", "2", "get", "k", NULL },
		{ "--pw", "one", "get", "k", NULL },
		{ "-c", "QUJD", "get", "k", NULL },
		{ "-r", "2", "ping", NULL },
		{ "--pr", "1", "ping", NULL },
		{ "-w", "2", "ping", NULL },
		{ "--pw", "1", "ping", NULL },
		{ "-c", "QUJD", "ping", NULL },
	};
	run r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i];

		r = cli_run(NULL, 0, "-H", addr, a[0], a[1], a[2], a[3], NULL);
		cr_assert_eq(r.status, 2, "case %zu: status %d", i, r.status);
		cr_assert_not_null(strstr(r.err, " is for "), "case %zu: %s", i, r.err);
		run_free(&r);
	}
	cr_assert_eq(nreq(), 0, "nothing is sent");
	/* -r and --pr of a write are accepted (and sent) */
	r = cli_run(NULL, 0, "-H", addr, "-r", "2", "--pr", "1", "put", "k", "v", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.r, 2);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-r", "2", "del", "k", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
}

Test(cli, ping_to_a_silent_node_gives_up_after_5_s)
{
	int64_t t0 = now_ms(), dt;
	run r;

	F.h = h_silent;
	r = cli_run(NULL, 0, "-H", addr, "ping", NULL);
	dt = now_ms() - t0;
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert_geq(dt, 4900, "gave up after %lld ms", (long long)dt);
	cr_assert_lt(dt, 8000, "gave up after %lld ms", (long long)dt);
	cr_assert_str_eq(r.err, "dynkv: ping: the node did not answer within 5000 ms "
			 "(--timeout MS to wait longer)\n");
	run_free(&r);
	/* --timeout sets it */
	t0 = now_ms();
	r = cli_run(NULL, 0, "-H", addr, "--timeout", "300", "ping", NULL);
	dt = now_ms() - t0;
	cr_assert_eq(r.status, 3);
	cr_assert_lt(dt, 3000, "gave up after %lld ms", (long long)dt);
	cr_assert_str_eq(r.err, "dynkv: ping: the node did not answer within 300 ms\n");
	run_free(&r);
}

Test(cli, key_that_begins_with_a_dash_names_the_option_and_the_way_out)
{
	run r = cli_run(NULL, 0, "-H", addr, "get", "-dash", NULL);

	cr_assert_eq(r.status, 2);
	cr_assert(strncmp(r.err, "dynkv: unknown option -d in \"-dash\"; if \"-dash\" is a KEY "
			  "or VALUE, put -- before it: dynkv get -- -dash\nusage: dynkv", 99) == 0,
		  "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "put", "--dash", "v", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "dynkv: unknown option --dash; if it is a KEY or VALUE, "
				  "put -- before it: dynkv put -- --dash\n"), "%s", r.err);
	run_free(&r);
	/* a key that is an option of dynkv: the option is taken, the KEY is missing */
	r = cli_run(NULL, 0, "-H", addr, "get", "-q", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "get takes one KEY (put -- before a KEY that begins "
				  "with '-')\n"), "%s", r.err);
	run_free(&r);
	cr_assert_eq(nreq(), 0);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "--", "-dash", NULL);
	cr_assert_eq(r.status, 4, "%s", r.err);       /* reached the node: not found */
	cr_assert_eq(F.last_klen, 5);
	cr_assert(memcmp(F.last_key, "-dash", 5) == 0);
	run_free(&r);
}

Test(cli, help_and_version)
{
	run r = cli_run(NULL, 0, "--version", NULL);

	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "dynkv " PACKAGE_VERSION "\n");
	run_free(&r);
	r = cli_run(NULL, 0, "--help", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "--connect-timeout"));
	cr_assert_not_null(strstr(r.out, "exit status: 0 success; 1 failure (cannot connect, an "
				  "error from the node,\na refusal); 2 usage error; 3 quorum not met "
				  "or timed out; 4 dynkv get:\nthe key is not found.\n"), "%s", r.out);
	cr_assert_null(strstr(r.out, "R, W, N"), "there is no N option");
	run_free(&r);
}

Test(cli, connection_refused_exits_1)
{
	char a[64];
	run r;

	snprintf(a, sizeof(a), "127.0.0.1:%u", closed_port());
	r = cli_run(NULL, 0, "-H", a, "get", "k", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "refused"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", a, "--json", "get", "k", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.out, "{\"ok\":false,\"error\":\""), "%s", r.out);
	run_free(&r);
}

Test(cli, pointed_at_an_http_server_says_so)
{
	run r;

	F.h = h_text;
	F.err_msg = "HTTP/1.1 400 Bad Request\r\n\r\n";
	r = cli_run(NULL, 0, "-H", addr, "get", "k", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "dynkv: get: the peer at 127.0.0.1:"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, " is not a dynkv node (it answered like an HTTP server: "
				  "\"HTTP/1.1 400 Bad Request\")\n"), "%s", r.err);
	cr_assert_eq(r.outlen, 0);
	run_free(&r);
}

/* --- dynkv_admin() -------------------------------------------------------- */

/* {"ok": true, "message": "n2 is leaving"} */
static const uint8_t ok_map[] = {
	0x82, 0xa2, 'o', 'k', 0xc3, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e',
	0xad, 'n', '2', ' ', 'i', 's', ' ', 'l', 'e', 'a', 'v', 'i', 'n', 'g',
};

/* {"ok": false, "message": "refused: ..."} */
static const uint8_t refused_map[] = {
	0x82, 0xa2, 'o', 'k', 0xc2, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e',
	0xd9, 0x2a, 'r', 'e', 'f', 'u', 's', 'e', 'd', ':', ' ', 'n', '2', ' ', 'h', 'o', 'l',
	'd', 's', ' ', 't', 'h', 'e', ' ', 'o', 'n', 'l', 'y', ' ', 'c', 'o', 'p', 'y', ' ',
	'o', 'f', ' ', '3', ' ', 'p', 'a', 'r', 't', 's',
};

/* {"members": [{"id": "n1", "addr": "127.0.0.1:7070", "status": "valid",
 *   "liveness": "up", "incarnation": 2, "version": 5}]} */
static const uint8_t members_map[] = {
	0x81, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's', 0x91, 0x86,
	0xa2, 'i', 'd', 0xa2, 'n', '1',
	0xa4, 'a', 'd', 'd', 'r', 0xae, '1', '2', '7', '.', '0', '.', '0', '.', '1', ':', '7', '0',
	'7', '0',
	0xa6, 's', 't', 'a', 't', 'u', 's', 0xa5, 'v', 'a', 'l', 'i', 'd',
	0xa8, 'l', 'i', 'v', 'e', 'n', 'e', 's', 's', 0xa2, 'u', 'p',
	0xab, 'i', 'n', 'c', 'a', 'r', 'n', 'a', 't', 'i', 'o', 'n', 0x02,
	0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x05,
};

static char *last_admin(void)
{
	char *s;

	pthread_mutex_lock(&F.mu);
	s = strdup(F.last_admin);
	pthread_mutex_unlock(&F.mu);
	return s;
}

Test(client, admin_returns_the_info_map)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;
	char *sent;

	F.h = h_info;
	F.info = members_map;
	F.info_len = sizeof(members_map);
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), 0, "%s", dynkv_errmsg(c));
	cr_assert_eq(len, sizeof(members_map));
	cr_assert_arr_eq(info, members_map, len);
	free(info);
	cr_assert_eq(F.last_type, PROTO_ADMIN);
	sent = last_admin();
	cr_assert_str_eq(sent, "members");
	free(sent);

	F.info = ok_map;
	F.info_len = sizeof(ok_map);
	cr_assert_eq(dynkv_admin(c, "leave", (const char *const[]){ "n2", "" }, 2, &info, &len), 0);
	cr_assert_eq(len, sizeof(ok_map));
	cr_assert_arr_eq(info, ok_map, len);
	free(info);
	sent = last_admin();
	cr_assert_str_eq(sent, "leave|n2|");
	free(sent);
	/* the connection goes on */
	cr_assert_eq(dynkv_ping(c, 0), 0);
	cr_assert_str_empty(dynkv_errmsg(c));
	dynkv_close(c);
}

Test(client, admin_error_is_the_nodes_error)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;

	F.h = h_error;
	F.err_code = PROTO_ERR_INVALID;
	F.err_msg = "unknown admin command \"frob\"";
	cr_assert_eq(dynkv_admin(c, "frob", NULL, 0, &info, &len), DYNKV_EINVALID);
	cr_assert_null(info);
	cr_assert_eq(len, 0);
	cr_assert_str_eq(dynkv_errmsg(c), "unknown admin command \"frob\"");
	cr_assert(!dynkv_is_broken(c));
	F.err_code = PROTO_ERR_TYPE;
	F.err_msg = "unknown message type 5";
	cr_assert_eq(dynkv_admin(c, "ring", NULL, 0, &info, &len), DYNKV_ETYPE);
	cr_assert_null(info);
	dynkv_close(c);
}

Test(client, admin_node_dies_mid_reply)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;

	F.h = h_info_half;
	F.info = members_map;
	F.info_len = sizeof(members_map);
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EIO);
	cr_assert_null(info);
	cr_assert_eq(len, 0);
	assert_broken(c, "closed by the node");
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EBROKEN);
	dynkv_close(c);
}

Test(client, admin_bad_replies_are_protocol_errors)
{
	dynkv *c = conn();
	void *info = (void *)1;
	size_t len = 1;

	F.h = h_info_deep;
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EPROTO);
	cr_assert_null(info);
	cr_assert_not_null(strstr(dynkv_errmsg(c), "nested more than 16 deep"), "%s",
			   dynkv_errmsg(c));
	assert_broken(c, "nested");
	dynkv_close(c);

	c = conn();
	F.h = h_pong;
	cr_assert_eq(dynkv_admin(c, "members", NULL, 0, &info, &len), DYNKV_EPROTO);
	cr_assert_str_eq(dynkv_errmsg(c), "reply PONG to a request that expects INFO");
	dynkv_close(c);
}

Test(client, admin_bad_arguments_are_refused_before_sending)
{
	static const char *const nine[9] = { "1", "2", "3", "4", "5", "6", "7", "8", "9" };
	dynkv *c = conn();
	char c33[DYNKV_ADMIN_MAX_COMMAND + 2], a1025[DYNKV_ADMIN_MAX_ARG + 2];
	void *info = (void *)1;
	size_t len = 1;

	memset(c33, 'c', sizeof(c33));
	c33[sizeof(c33) - 1] = '\0';
	memset(a1025, 'a', sizeof(a1025));
	a1025[sizeof(a1025) - 1] = '\0';
	F.h = h_info;
	F.info = ok_map;
	F.info_len = sizeof(ok_map);
	cr_assert_eq(dynkv_admin(c, NULL, NULL, 0, &info, &len), DYNKV_EARG);
	cr_assert_null(info);
	cr_assert_eq(dynkv_admin(c, "", NULL, 0, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, c33, NULL, 0, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", nine, 9, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", NULL, 1, &info, &len), DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", (const char *const[]){ "a", NULL }, 2, &info, &len),
		     DYNKV_EARG);
	cr_assert_eq(dynkv_admin(c, "x", (const char *const[]){ a1025 }, 1, &info, &len),
		     DYNKV_EARG);
	cr_assert_str_eq(dynkv_errmsg(c), "admin argument 1 longer than 1024 bytes");
	cr_assert_eq(nreq(), 0);
	cr_assert(!dynkv_is_broken(c));
	/* the limits themselves are fine */
	c33[DYNKV_ADMIN_MAX_COMMAND] = '\0';
	a1025[DYNKV_ADMIN_MAX_ARG] = '\0';
	cr_assert_eq(dynkv_admin(c, c33, (const char *const[]){ a1025, a1025, a1025, a1025,
		     a1025, a1025, a1025, a1025 }, 8, &info, &len), 0);
	free(info);
	cr_assert_eq(nreq(), 1);
	dynkv_close(c);
}

/* --- the dynkv-admin command ---------------------------------------------- */

static void admin_setup(void)
{
	setup();
	cli_prog = "dynkv-admin";
	F.h = h_info;
}

TestSuite(admin, .init = admin_setup, .fini = teardown);

Test(admin, members_table_and_json)
{
	run r;
	char *sent;

	F.info = members_map;
	F.info_len = sizeof(members_map);
	r = cli_run(NULL, 0, "--host", addr, "members", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "ID  ADDR            STATUS  LIVENESS  KEYS\n"
				"n1  127.0.0.1:7070  valid   up           -\n");
	cr_assert_str_empty(r.err);
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "members");
	free(sent);
	r = cli_run(NULL, 0, "-H", addr, "--json", "members", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "{\"members\":[{\"id\":\"n1\",\"addr\":\"127.0.0.1:7070\","
				"\"status\":\"valid\",\"liveness\":\"up\",\"incarnation\":2,"
				"\"version\":5}]}\n");
	run_free(&r);
}

/* {"partition": 5, "n": 1, "preflist": [{"id": "n1", "addr": "a:1",
 *   "primary": true, "liveness": "up"}]} */
static const uint8_t preflist_map[] = {
	0x83, 0xa9, 'p', 'a', 'r', 't', 'i', 't', 'i', 'o', 'n', 0x05, 0xa1, 'n', 0x01,
	0xa8, 'p', 'r', 'e', 'f', 'l', 'i', 's', 't', 0x91, 0x84,
	0xa2, 'i', 'd', 0xa2, 'n', '1', 0xa4, 'a', 'd', 'd', 'r', 0xa3, 'a', ':', '1',
	0xa7, 'p', 'r', 'i', 'm', 'a', 'r', 'y', 0xc3,
	0xa8, 'l', 'i', 'v', 'e', 'n', 'e', 's', 's', 0xa2, 'u', 'p',
};

Test(admin, preflist_takes_one_key_and_prints_a_table)
{
	run r;
	char *sent;

	F.info = preflist_map;
	F.info_len = sizeof(preflist_map);
	r = cli_run(NULL, 0, "-H", addr, "preflist", "-my key", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "partition 5, n 1\n\n"
				"POS  ID  ADDR  ROLE     LIVENESS\n"
				"  1  n1  a:1   primary  up\n");
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "preflist|-my key");
	free(sent);
	r = cli_run(NULL, 0, "-H", addr, "preflist", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strncmp(r.err, "dynkv-admin: preflist takes one KEY\n", 36) == 0, "%s", r.err);
	run_free(&r);
}

Test(admin, membership_change_prints_the_message)
{
	run r;
	char *sent;

	F.info = ok_map;
	F.info_len = sizeof(ok_map);
	r = cli_run(NULL, 0, "-H", addr, "leave", "n2", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "n2 is leaving\n");
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "leave|n2");
	free(sent);
	/* options end at the command: a NODE may start with '-' */
	r = cli_run(NULL, 0, "-H", addr, "remove", "-n3", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "remove|-n3");
	free(sent);
}

Test(admin, refusal_exits_1_with_the_message)
{
	run r;

	F.info = refused_map;
	F.info_len = sizeof(refused_map);
	r = cli_run(NULL, 0, "-H", addr, "leave", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "dynkv-admin: refused: n2 holds the only copy of 3 parts\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "remove", "n2", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "{\"ok\":false,\"message\":\"refused: n2 holds the only copy "
				"of 3 parts\"}\n");
	run_free(&r);
}

Test(admin, node_error_exits_1)
{
	run r;

	F.h = h_error;
	F.err_code = PROTO_ERR_INVALID;
	F.err_msg = "unknown admin command \"frob\"";
	r = cli_run(NULL, 0, "-H", addr, "frob", "a", "b", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.err, "dynkv-admin: unknown admin command \"frob\"\n");
	cr_assert_str_eq(r.out, "");
	run_free(&r);
	/* an unknown command reaches the node with its arguments */
	{
		char *sent = last_admin();

		cr_assert_str_eq(sent, "frob|a|b");
		free(sent);
	}
	F.h = h_info_half;
	F.info = members_map;
	F.info_len = sizeof(members_map);
	r = cli_run(NULL, 0, "-H", addr, "members", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "dynkv-admin: connection closed by the node"), "%s", r.err);
	run_free(&r);
}

Test(admin, connection_refused_exits_1)
{
	char a[64];
	run r;

	snprintf(a, sizeof(a), "127.0.0.1:%u", closed_port());
	r = cli_run(NULL, 0, "-H", a, "status", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "dynkv-admin: "), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "refused"), "%s", r.err);
	run_free(&r);
}

Test(admin, silent_node_times_out)
{
	int64_t t0 = now_ms();
	run r;

	F.h = h_silent;
	r = cli_run(NULL, 0, "-H", addr, "--timeout", "300", "status", NULL);
	cr_assert_eq(r.status, 3, "timed out: the status of dynkv's timeouts");
	cr_assert_not_null(strstr(r.err, "timed out"), "%s", r.err);
	cr_assert_lt(now_ms() - t0, 5000);
	run_free(&r);
}

Test(admin, usage_errors_exit_2)
{
	static const char *const cases[][4] = {
		{ NULL },
		{ "members", "x", NULL },
		{ "ring", "x", NULL },
		{ "status", "x", NULL },
		{ "join", NULL },
		{ "join", "a", "b", NULL },
		{ "leave", "a", "b", NULL },
		{ "remove", NULL },
		{ "remove", "", NULL },
		{ "preflist", NULL },
		{ "preflist", "a", "b", NULL },
		{ "preflist", "", NULL },
		{ "--timeout", "0", "members", NULL },
		{ "--timeout", "x", "members", NULL },
		{ "--bogus", "members", NULL },
		{ "--host", "nohostport", "members", NULL },
		{ "abcdefghijklmnopqrstuvwxyz0123456", NULL },
		{ "frob", "1", "2", NULL },     /* completed to 9 arguments below */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i];
		bool nine = i + 1 == sizeof(cases) / sizeof(cases[0]);
		run r = nine ? cli_run(NULL, 0, "-H", addr, "frob", "1", "2", "3", "4", "5", "6",
				       "7", "8", "9", NULL)
			     : cli_run(NULL, 0, "-H", addr, a[0], a[0] ? a[1] : NULL,
				       a[0] && a[1] ? a[2] : NULL, NULL);

		cr_assert_eq(r.status, 2, "case %zu: status %d (%s)", i, r.status, r.err);
		cr_assert_not_null(strstr(r.err, "usage: dynkv-admin"), "case %zu: %s", i, r.err);
		cr_assert_eq(r.outlen, 0, "case %zu", i);
		run_free(&r);
	}
	cr_assert_eq(nreq(), 0, "no usage error reaches the node");
}

Test(admin, help_and_version)
{
	run r = cli_run(NULL, 0, "--version", NULL);

	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "dynkv-admin " PACKAGE_VERSION "\n");
	run_free(&r);
	r = cli_run(NULL, 0, "--help", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "--timeout MS"));
	cr_assert_not_null(strstr(r.out, "remove NODE"));
	cr_assert_not_null(strstr(r.out, "preflist KEY"));
	cr_assert_not_null(strstr(r.out, "exit status: 0 success; 1 failure (cannot connect, an "
				  "error from the node,\na refusal); 2 usage error; 3 quorum not met "
				  "or timed out; 4 dynkv get:\nthe key is not found.\n"), "%s", r.out);
	run_free(&r);
}
