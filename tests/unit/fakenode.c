/* fakenode.c -- see fakenode.h. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "fakenode.h"
#include "proto.h"

/* --- the fake node -------------------------------------------------------- */

fake F;

int64_t now_ms(void)
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

void fake_start(void)
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

void fake_stop(void)
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

void make_ctx(uint8_t ctx[CTX_LEN], uint64_t clock)
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
bool h_store(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
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
bool h_error(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_error(&sb, m->id, f->err_code, f->err_msg);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* ERROR with request id 0, then close, as a node does with a bad frame. */
bool h_error_id0(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_error(&sb, 0, PROTO_ERR_TOOBIG, "frame too large: 9000000 > max_frame 8388608");
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return false;
}

/* The first half of a correct VALUE reply, then close. */
bool h_half(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
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
bool h_silent(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	return true;
}

/* Close without a word. */
bool h_close(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	return false;
}

/* Bytes that are not a message behind a correct length prefix. */
bool h_garbage(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const uint8_t g[] = { 0, 0, 0, 5, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1 };

	fk_write(fd, g, sizeof(g));
	return true;
}

/* A length prefix of 4 GiB - 1, then a few bytes. */
bool h_huge(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const uint8_t g[] = { 0xff, 0xff, 0xff, 0xff, 0x94, 1, 64, 1 };

	fk_write(fd, g, sizeof(g));
	return true;
}

/* What another server answers (F.err_msg, as text), then close. */
bool h_text(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	fk_write(fd, f->err_msg, strlen(f->err_msg));
	return false;
}

bool h_zero_len(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	static const uint8_t g[] = { 0, 0, 0, 0 };

	fk_write(fd, g, sizeof(g));
	return true;
}

/* A correct reply for the next request id. */
bool h_wrong_id(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_value(&sb, m->id + 1, false, NULL, 0, NULL, 0, 0);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* PONG, whatever was asked. */
bool h_pong(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_pong(&sb, m->id);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* A VALUE that says found but carries no value. */
bool h_found_empty(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	proto_encode_value(&sb, m->id, true, NULL, 0, NULL, 0, 0);
	fk_send(fd, &sb);
	msgpack_sbuffer_destroy(&sb);
	return true;
}

/* A reply in protocol version 2. */
bool h_version2(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
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
bool h_info(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
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
bool h_info_half(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_info(&sb, m->id, f->info, f->info_len), 0);
	fk_write(fd, sb.data, sb.size / 2);
	msgpack_sbuffer_destroy(&sb);
	return false;
}

/* An INFO whose map is nested too deep (by hand: the encoder refuses it). */
bool h_info_deep(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len)
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

/* --- fixtures and what the tests ask the fake ----------------------------- */

char addr[64];

void setup(void)
{
	fake_start();
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", F.port);
}

void teardown(void)
{
	fake_stop();
}

unsigned nreq(void)
{
	unsigned n;

	pthread_mutex_lock(&F.mu);
	n = F.nreq;
	pthread_mutex_unlock(&F.mu);
	return n;
}

/* A port that nothing listens on: bound, then closed. */
uint16_t closed_port(void)
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

/* --- INFO maps ------------------------------------------------------------ */

/* {"ok": true, "message": "n2 is leaving"} */
const uint8_t ok_map[27] = {
	0x82, 0xa2, 'o', 'k', 0xc3, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e',
	0xad, 'n', '2', ' ', 'i', 's', ' ', 'l', 'e', 'a', 'v', 'i', 'n', 'g',
};

/* {"members": [{"id": "n1", "addr": "127.0.0.1:7070", "status": "valid",
 *   "liveness": "up", "incarnation": 2, "version": 5}]} */
const uint8_t members_map[84] = {
	0x81, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's', 0x91, 0x86,
	0xa2, 'i', 'd', 0xa2, 'n', '1',
	0xa4, 'a', 'd', 'd', 'r', 0xae, '1', '2', '7', '.', '0', '.', '0', '.', '1', ':', '7', '0',
	'7', '0',
	0xa6, 's', 't', 'a', 't', 'u', 's', 0xa5, 'v', 'a', 'l', 'i', 'd',
	0xa8, 'l', 'i', 'v', 'e', 'n', 'e', 's', 's', 0xa2, 'u', 'p',
	0xab, 'i', 'n', 'c', 'a', 'r', 'n', 'a', 't', 'i', 'o', 'n', 0x02,
	0xa7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x05,
};

char *last_admin(void)
{
	char *s;

	pthread_mutex_lock(&F.mu);
	s = strdup(F.last_admin);
	pthread_mutex_unlock(&F.mu);
	return s;
}
