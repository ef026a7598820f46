#include "config.h"
/*
 * resp.c -- the node's Redis protocol face.  See resp.h and dynkv-resp(7).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <msgpack.h>

#include "error.h"
#include "proto.h"
#include "resp.h"
#include "respcodec.h"

/* The Redis version whose protocol and commands this face speaks (HELLO,
 * INFO): what clients that look at it should assume. */
#define REDIS_VERSION "7.0.0"

typedef struct rconn rconn;
typedef struct rcom rcom;

/* What a command does with the node, and how its reply is made. */
typedef enum ckind {
	C_LOCAL,     /* answered at once, without the node */
	C_GET,       /* GET key */
	C_MGET,      /* MGET key... */
	C_EXISTS,    /* EXISTS key... */
	C_SET,       /* SET key value: a replace-mode put */
	C_SETGET,    /* SET key value GET|KEEPTTL: read, then put with the read's context */
	C_MSET,      /* MSET key value...: replace-mode puts */
	C_DEL,       /* DEL key...: read, then delete with the read's context */
	C_DGET,      /* DYNKV.GET key */
	C_DPUT,      /* DYNKV.PUT key value context */
	C_DDEL,      /* DYNKV.DEL key context */
	C_TTL,       /* TTL, PTTL key: a read */
	C_EXPIRE,    /* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST key: read,
		      * then write the value read with its new expiry */
} ckind;

/* EXPIRE's conditions (Redis 7). */
#define EXP_NX 1u   /* only if the key has no expiry */
#define EXP_XX 2u   /* only if it has one */
#define EXP_GT 4u   /* only if the new one is later (none is never) */
#define EXP_LT 8u   /* only if the new one is sooner (none is never) */

/* One key of a command: one node request at a time. */
typedef struct rsub {
	uint8_t *key, *val, *ctx;   /* owned copies (val, ctx: writes) */
	size_t klen, vlen, ctxlen;
	uint32_t slot;              /* its request's slot while it waits, else NO_SLOT */
	bool reading;               /* SETGET, DEL, EXPIRE: the read has not been
				     * answered */
	bool found;                 /* the read found a value */
	bool del;                   /* the write after the read is a delete */
	uint64_t ttl_ms;            /* the write's time to live (0: none) */
	resp_out out;               /* its part of the reply */
} rsub;

struct rcom {
	rcom *next;
	rconn *c;
	ckind kind;
	int proto;                  /* the connection's RESP version when it came */
	proto_opts o;               /* the connection's quorums when it came */
	rsub *subs;
	size_t nsub, waiting;       /* subs; node answers still to come */
	bool writes;                /* it writes its keys (the conflict rule) */
	bool done;                  /* out holds the whole reply */
	bool close_after;           /* QUIT, or a protocol error: close once sent */
	long long count;            /* DEL, EXISTS, EXPIRE */
	uint64_t ttl_ms;            /* SET, SETGET: EX/PX/EXAT/PXAT (0: none) */
	bool get;                   /* SETGET: GET (answer the old value) */
	bool keepttl;               /* SETGET: KEEPTTL (keep the old expiry) */
	bool ms;                    /* TTL: in milliseconds (PTTL) */
	bool persist;               /* EXPIRE: PERSIST (take the expiry off) */
	unsigned cond;              /* EXPIRE: EXP_* */
	int64_t at_ms;              /* EXPIRE: the new expiry, ms since 1970 */
	resp_out out;
};

struct rconn {
	rconn *next, *prev;         /* the face's connections */
	rconn *ready_next;          /* the list of connections to read again */
	resp_face *f;
	struct bufferevent *bev;    /* NULL once closed (the struct lives on
				     * until its commands are answered) */
	uint64_t id;                /* CLIENT ID */
	char addr[64];
	char name[128];             /* CLIENT SETNAME */
	int proto;                  /* 2 or 3 (HELLO) */
	proto_opts o;               /* DYNKV.QUORUM */
	rcom *head, *tail;          /* commands not yet sent, in order */
	size_t inflight;            /* of them, waiting for the node */
	bool ready;                 /* on the ready list */
	bool closing;               /* QUIT or an error: serve nothing more */
	bool lingering;             /* closing, all sent: reading what the client
				     * still sends, so that the close does not
				     * reset the connection (and lose our last
				     * answer) */
	bool counted;               /* counts against resp_max_connections */
};

/* How long a closing connection may keep sending before it is cut off. */
#define LINGER_MS 1000

typedef struct rslot {
	uint64_t id;                /* NET_LOCAL_BIT | face | gen << 32 | slot; 0 free */
	rcom *cmd;
	uint32_t sub;
} rslot;

#define NO_SLOT UINT32_MAX

struct resp_face {
	struct event_base *base;
	const dkv_config *cfg;
	dkv_log *log;
	net *nt;
	node *nd;
	struct evconnlistener *ls;
	struct event *ready_ev;     /* reads the connections on the ready list */
	rconn *conns, *ready;
	size_t nconns;
	uint64_t next_client;
	rslot *slots;               /* RESP_MAX_PENDING */
	uint32_t *free_slots, nfree, gen;
	bool starved;               /* a connection waits for slots */
	bool draining;
	bool newest;                /* resp_siblings = newest */
	time_t started;
	resp_limits lim;
	resp_arg *argv;             /* RESP_MAX_ARGS */
	uint8_t *scratch;           /* RESP_MAX_INLINE: unescaped inline arguments */
	msgpack_sbuffer sb;         /* the frame being made */
	char addr[320];
	uint64_t commands, errors;  /* INFO */
};

static void logr(resp_face *f, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logr(resp_face *f, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dkv_log_opt(f->log, level, "resp: %s", msg);
}

/* --- commands: life and order --------------------------------------------- */

static void sub_release(rsub *s)
{
	free(s->key);
	free(s->val);
	free(s->ctx);
	resp_out_free(&s->out);
}

static void cmd_free(rcom *cmd)
{
	for (size_t i = 0; i < cmd->nsub; i++)
		sub_release(&cmd->subs[i]);
	free(cmd->subs);
	resp_out_free(&cmd->out);
	free(cmd);
}

static rcom *cmd_new(rconn *c, ckind kind, size_t nsub)
{
	rcom *cmd = calloc(1, sizeof(*cmd));

	if (cmd == NULL)
		return NULL;
	if (nsub > 0 && (cmd->subs = calloc(nsub, sizeof(*cmd->subs))) == NULL) {
		free(cmd);
		return NULL;
	}
	cmd->c = c;
	cmd->kind = kind;
	cmd->proto = c->proto;
	cmd->o = c->o;
	cmd->nsub = nsub;
	resp_out_init(&cmd->out);
	for (size_t i = 0; i < nsub; i++) {
		cmd->subs[i].slot = NO_SLOT;
		resp_out_init(&cmd->subs[i].out);
	}
	return cmd;
}

static void conn_free(rconn *c)
{
	rcom *cmd, *next;

	for (cmd = c->head; cmd != NULL; cmd = next) {
		next = cmd->next;
		cmd_free(cmd);
	}
	free(c);
}

/* The connection is gone: unlink it; it is freed once no command of it
 * waits for the node (their answers find c->bev NULL). */
static void conn_close(rconn *c)
{
	resp_face *f = c->f;
	rcom *cmd, *next, **pp;

	if (c->bev == NULL)
		return;
	bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		f->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->counted)
		f->nconns--;
	if (c->ready) {   /* off the ready list */
		rconn **rp = &f->ready;

		while (*rp != NULL && *rp != c)
			rp = &(*rp)->ready_next;
		if (*rp == c)
			*rp = c->ready_next;
		c->ready = false;
	}
	/* drop every command that waits for nobody */
	for (pp = &c->head, cmd = c->head; cmd != NULL; cmd = next) {
		next = cmd->next;
		if (cmd->waiting == 0) {
			*pp = next;
			cmd_free(cmd);
		} else {
			pp = &cmd->next;
		}
	}
	c->tail = NULL;
	for (cmd = c->head; cmd != NULL; cmd = cmd->next)
		c->tail = cmd;
	if (c->head == NULL)
		free(c);
}

/* Read c again soon (from the loop, never from inside a node answer). */
static void conn_ready(rconn *c)
{
	resp_face *f = c->f;

	if (c->ready || c->bev == NULL || c->closing)
		return;
	c->ready = true;
	c->ready_next = f->ready;
	f->ready = c;
	event_active(f->ready_ev, EV_TIMEOUT, 0);
}

/* Send the answered commands at the head, in order. */
static void conn_flush(rconn *c)
{
	struct evbuffer *out;

	if (c->bev == NULL)
		return;
	out = bufferevent_get_output(c->bev);
	while (c->head != NULL && c->head->done) {
		rcom *cmd = c->head;

		if (cmd->out.failed)
			evbuffer_add(out, "-ERR out of memory\r\n", 20);
		else
			evbuffer_add(out, cmd->out.p, cmd->out.len);
		c->head = cmd->next;
		if (c->head == NULL)
			c->tail = NULL;
		if (cmd->close_after) {
			c->closing = true;
			bufferevent_disable(c->bev, EV_READ);
		}
		cmd_free(cmd);
	}
	/* a closing connection is closed by write_cb once its output drained */
}

static void cmd_append(rconn *c, rcom *cmd)
{
	if (c->tail != NULL)
		c->tail->next = cmd;
	else
		c->head = cmd;
	c->tail = cmd;
}

/* True iff cmd may not start yet: a command of c still waiting for the
 * node touches one of its keys, and one of the two writes it. */
static bool conflicts(const rconn *c, const rcom *cmd)
{
	for (const rcom *o = c->head; o != NULL; o = o->next) {
		if (o->waiting == 0 || (!o->writes && !cmd->writes))
			continue;
		for (size_t i = 0; i < o->nsub; i++)
			for (size_t j = 0; j < cmd->nsub; j++)
				if (o->subs[i].klen == cmd->subs[j].klen &&
				    memcmp(o->subs[i].key, cmd->subs[j].key, o->subs[i].klen) == 0)
					return true;
	}
	return false;
}

/* --- replies ------------------------------------------------------------------ */

/* Append bytes already in RESP form (a part made by another resp_out). */
static void out_raw(resp_out *o, const void *p, size_t len)
{
	if (len > 0 && resp_out_reserve(o, len) == 0) {
		memcpy(o->p + o->len, p, len);
		o->len += len;
	}
}

/* A finished local command: reply in cmd->out. */
static rcom *local_cmd(rconn *c)
{
	rcom *cmd = cmd_new(c, C_LOCAL, 0);

	if (cmd != NULL)
		cmd->done = true;
	return cmd;
}

/* The Redis error for a node's ERROR reply: a code word clients can tell
 * apart (QUORUM, TIMEOUT, OVERLOAD, SHUTDOWN), else ERR, and the node's
 * message. */
static void node_error(resp_out *o, const proto_msg *m)
{
	const char *code;

	switch (m->code) {
	case PROTO_ERR_QUORUM: code = "QUORUM"; break;
	case PROTO_ERR_TIMEOUT: code = "TIMEOUT"; break;
	case PROTO_ERR_OVERLOAD: code = "OVERLOAD"; break;
	case PROTO_ERR_SHUTDOWN: code = "SHUTDOWN"; break;
	default: code = "ERR"; break;
	}
	resp_error(o, "%s %.*s", code, (int)m->message.len, (const char *)m->message.p);
}

/* The error a plain read answers for a key with siblings (resp_siblings
 * = error). */
static void siblings_error(resp_out *o, size_t n)
{
	resp_error(o, "SIBLINGS the key has %zu concurrent values; DYNKV.GET returns them all "
		   "with the context to resolve them (dynkv-resp(7))", n);
}

/* The value a plain read means in a VALUE reply: 1 and its index in
 * *pick (the one value, or the newest sibling when resp_siblings =
 * newest); 0 for none; -1 for siblings, and their error in o. */
static int pick_value(resp_face *f, resp_out *o, const proto_msg *m, size_t *pick)
{
	*pick = 0;
	if (!m->found || m->nvalues == 0)
		return 0;
	if (m->nvalues > 1) {
		if (!f->newest || m->stamps == NULL) {
			siblings_error(o, m->nvalues);
			return -1;
		}
		for (size_t i = 1; i < m->nvalues; i++)   /* ties: the later dot */
			if (m->stamps[i] >= m->stamps[*pick])
				*pick = i;
	}
	return 1;
}

/* The expiry of the value picked (0: none). */
static uint64_t picked_expiry(const proto_msg *m, size_t pick)
{
	return m->expires != NULL && pick < m->nvalues ? m->expires[pick] : 0;
}

/* The value a plain read answers for a VALUE reply: nil, the one value,
 * the newest sibling (resp_siblings = newest), or the siblings error. */
static void plain_value(resp_face *f, resp_out *o, int proto, const proto_msg *m)
{
	size_t pick;
	int rc = pick_value(f, o, m, &pick);

	if (rc == 0)
		resp_null(o, proto);
	else if (rc > 0)
		resp_bulk(o, m->values[pick].p, m->values[pick].len);
}

/* The wall clock, ms since 1970 (the clock the node stamps writes with). */
static uint64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

/* DYNKV.GET's reply: {values: [...], context: bytes, tombstones: n,
 * timestamps: [...], expires: [...]} (a map in RESP3, a flat array in
 * RESP2). */
static void dget_reply(resp_out *o, int proto, const proto_msg *m)
{
	size_t n = m->found ? m->nvalues : 0;

	resp_map(o, 5, proto);
	resp_bulk(o, "values", 6);
	resp_array(o, n);
	for (size_t i = 0; i < n; i++)
		resp_bulk(o, m->values[i].p, m->values[i].len);
	resp_bulk(o, "context", 7);
	resp_bulk(o, m->context.p, m->context.len);
	resp_bulk(o, "tombstones", 10);
	resp_int(o, (long long)m->tombstones);
	resp_bulk(o, "timestamps", 10);
	resp_array(o, n);
	for (size_t i = 0; i < n; i++)
		resp_int(o, m->stamps != NULL ? (long long)m->stamps[i] : 0);
	resp_bulk(o, "expires", 7);
	resp_array(o, n);
	for (size_t i = 0; i < n; i++)
		resp_int(o, m->expires != NULL ? (long long)m->expires[i] : 0);
}

/* DYNKV.PUT's and DYNKV.DEL's reply: {context: bytes, siblings: n}. */
static void dput_reply(resp_out *o, int proto, const proto_msg *m)
{
	resp_map(o, 2, proto);
	resp_bulk(o, "context", 7);
	resp_bulk(o, m->context.p, m->context.len);
	resp_bulk(o, "siblings", 8);
	resp_int(o, m->has_siblings ? (long long)m->siblings : 0);
}

/* Every node answer is in: make the command's reply. */
static void cmd_finish(resp_face *f, rcom *cmd)
{
	resp_out *o = &cmd->out;

	switch (cmd->kind) {
	case C_MGET:
		resp_array(o, cmd->nsub);
		for (size_t i = 0; i < cmd->nsub; i++)
			out_raw(o, cmd->subs[i].out.p, cmd->subs[i].out.len);
		break;
	case C_EXISTS:
	case C_DEL:
	case C_MSET:
	case C_EXPIRE:
		/* the first error, if any, else the count (MSET: OK) */
		for (size_t i = 0; i < cmd->nsub; i++)
			if (cmd->subs[i].out.len > 0) {
				out_raw(o, cmd->subs[i].out.p, cmd->subs[i].out.len);
				goto done;
			}
		if (cmd->kind == C_MSET)
			resp_simple(o, "OK");
		else
			resp_int(o, cmd->count);
		break;
	default:
		out_raw(o, cmd->subs[0].out.p, cmd->subs[0].out.len);
		break;
	}
done:
	for (size_t i = 0; i < cmd->nsub; i++)
		if (cmd->subs[i].out.failed)
			o->failed = true;
	if (o->p != NULL && o->len > 0 && o->p[0] == '-')
		f->errors++;
	cmd->done = true;
}

/* --- node requests -------------------------------------------------------- */

static void slot_free(resp_face *f, uint32_t slot)
{
	f->slots[slot].id = 0;
	f->slots[slot].cmd = NULL;
	f->free_slots[f->nfree++] = slot;
	if (f->starved) {   /* every connection that waited for slots tries again */
		f->starved = false;
		for (rconn *c = f->conns; c != NULL; c = c->next)
			conn_ready(c);
	}
}

/* The GET of sub s into f->sb. */
static int read_request(resp_face *f, const rcom *cmd, const rsub *s, uint64_t id,
			proto_opts *o)
{
	o->w = o->pw = 0;   /* a GET takes no write quorums */
	o->stamps = f->newest || (cmd->kind != C_GET && cmd->kind != C_MGET &&
				  cmd->kind != C_EXISTS);
	return proto_encode_get(&f->sb, id, s->key, s->klen, o);
}

/* Send sub i of cmd its next request: a read, or a write (with the
 * read's context for SETGET and DEL).  The answer comes to on_reply(),
 * perhaps before this returns.  False when it could not be made (out of
 * memory): the sub's reply says so, and it is done. */
static bool sub_send(resp_face *f, rcom *cmd, uint32_t i)
{
	rsub *s = &cmd->subs[i];
	proto_opts o = cmd->o;
	uint32_t slot = f->free_slots[--f->nfree];
	uint64_t id;
	int rc;

	f->gen = f->gen >= 0x1fffffffu ? 1 : f->gen + 1;
	id = NET_LOCAL_BIT | NET_LOCAL_FACE(NET_LOCAL_RESP) | (uint64_t)f->gen << 32 | slot;
	f->slots[slot].id = id;
	f->slots[slot].cmd = cmd;
	f->slots[slot].sub = i;
	s->slot = slot;
	f->sb.size = 0;
	switch (cmd->kind) {
	case C_SET:
	case C_MSET:
		o.replace = true;
		o.ttl_ms = cmd->ttl_ms;
		rc = proto_encode_put(&f->sb, id, s->key, s->klen, s->val, s->vlen, NULL, 0, &o);
		break;
	case C_DPUT:
		o.siblings = true;
		rc = proto_encode_put(&f->sb, id, s->key, s->klen, s->val, s->vlen, s->ctx,
				      s->ctxlen, &o);
		break;
	case C_DDEL:
		o.siblings = true;
		rc = proto_encode_delete(&f->sb, id, s->key, s->klen, s->ctx, s->ctxlen, &o);
		break;
	case C_SETGET:
	case C_DEL:
	case C_EXPIRE:
		if (!s->reading) {   /* the write, with what the read returned */
			o.ttl_ms = s->ttl_ms;
			rc = s->del
				? proto_encode_delete(&f->sb, id, s->key, s->klen, s->ctx, s->ctxlen, &o)
				: proto_encode_put(&f->sb, id, s->key, s->klen, s->val, s->vlen, s->ctx,
						   s->ctxlen, &o);
			break;
		}
		rc = read_request(f, cmd, s, id, &o);   /* the read first */
		break;
	default:
		rc = read_request(f, cmd, s, id, &o);
		break;
	}
	if (rc != 0) {   /* -ENOMEM, or a frame past 4 GiB */
		resp_out_reset(&s->out);
		resp_error(&s->out, "ERR making the request: %s", dkv_strerror(rc));
		s->slot = NO_SLOT;
		slot_free(f, slot);
		return false;
	}
	(void)node_request(f->nd, id, f->sb.data + PROTO_HEADER_SIZE,
			   f->sb.size - PROTO_HEADER_SIZE);
	return true;
}

/* TTL's and PTTL's reply: -2 for no value, -1 for no expiry, else the
 * time left (seconds rounded as Redis does, or ms). */
static void ttl_reply(resp_face *f, const rcom *cmd, resp_out *o, const proto_msg *m)
{
	size_t pick;
	int rc = pick_value(f, o, m, &pick);
	uint64_t e = rc > 0 ? picked_expiry(m, pick) : 0, now = wall_ms();

	if (rc < 0)
		return;
	if (rc == 0 || (e != 0 && e <= now))
		resp_int(o, -2);
	else if (e == 0)
		resp_int(o, -1);
	else
		resp_int(o, cmd->ms ? (long long)(e - now) : (long long)((e - now + 500) / 1000));
}

/* Keep len bytes of p in *dst (freed first).  False when out of memory. */
static bool keep(uint8_t **dst, size_t *dlen, const void *p, size_t len)
{
	free(*dst);
	*dst = NULL;
	*dlen = 0;
	if (len == 0)
		return true;
	if ((*dst = malloc(len)) == NULL)
		return false;
	memcpy(*dst, p, len);
	*dlen = len;
	return true;
}

/* The read of a read-then-write command (SET ... GET|KEEPTTL, DEL, the
 * expiry commands) is in: true when the write is to follow (s has its
 * context, value, ttl and kind), false when the sub is answered. */
static bool rmw_read(resp_face *f, rcom *cmd, rsub *s, const proto_msg *m)
{
	resp_out *o = &s->out;
	uint64_t now = wall_ms(), cur;
	size_t pick = 0;
	int rc;

	if (!keep(&s->ctx, &s->ctxlen, m->context.p, m->context.len)) {
		resp_error(o, "ERR out of memory");
		return false;
	}
	s->found = m->found && m->nvalues > 0;
	switch (cmd->kind) {
	case C_DEL:   /* no live value (never written, deleted, expired): nothing
		       * to delete, and another tombstone would only cost a write */
		s->del = true;
		return s->found;
	case C_SETGET:
		rc = pick_value(f, o, m, &pick);
		if (rc < 0)
			return false;   /* siblings: nothing written */
		if (cmd->get)
			plain_value(f, o, cmd->proto, m);
		cur = rc > 0 ? picked_expiry(m, pick) : 0;
		/* an expiry the read found live but this clock calls past: 1 ms,
		 * never 0 (which is "never expires") */
		s->ttl_ms = !cmd->keepttl ? cmd->ttl_ms : cur == 0 ? 0 : cur > now ? cur - now : 1;
		return true;
	default:   /* C_EXPIRE */
		rc = pick_value(f, o, m, &pick);
		if (rc < 0)
			return false;
		cur = rc > 0 ? picked_expiry(m, pick) : 0;
		if (rc == 0 || (cmd->persist && cur == 0) ||
		    ((cmd->cond & EXP_NX) && cur != 0) || ((cmd->cond & EXP_XX) && cur == 0) ||
		    ((cmd->cond & EXP_GT) && (cur == 0 || (uint64_t)cmd->at_ms <= cur)) ||
		    ((cmd->cond & EXP_LT) && cur != 0 && (uint64_t)cmd->at_ms >= cur))
			return false;   /* the count stays 0 */
		if (!keep(&s->val, &s->vlen, m->values[pick].p, m->values[pick].len)) {
			resp_error(o, "ERR out of memory");
			return false;
		}
		s->del = !cmd->persist && cmd->at_ms <= (int64_t)now;
		s->ttl_ms = cmd->persist || s->del ? 0 : (uint64_t)cmd->at_ms - now;
		return true;
	}
}

/* What the answer m to sub i of cmd means; true iff the sub is done
 * (false: it sent its next request). */
static bool sub_answer(resp_face *f, rcom *cmd, uint32_t i, const proto_msg *m)
{
	rsub *s = &cmd->subs[i];
	resp_out *o = &s->out;

	if (m->type == PROTO_ERROR) {
		resp_out_reset(o);   /* SET ... GET may hold the old value already */
		node_error(o, m);
		return true;
	}
	switch (cmd->kind) {
	case C_GET:
	case C_MGET:
		if (m->type != PROTO_VALUE)
			break;
		plain_value(f, o, cmd->proto, m);   /* in MGET, an error is an element */
		return true;
	case C_EXISTS:
		if (m->type != PROTO_VALUE)
			break;
		if (m->found && m->nvalues > 0)
			cmd->count++;
		return true;
	case C_DGET:
		if (m->type != PROTO_VALUE)
			break;
		dget_reply(o, cmd->proto, m);
		return true;
	case C_SET:
	case C_MSET:
		if (m->type != PROTO_OK)
			break;
		if (cmd->kind == C_SET)
			resp_simple(o, "OK");
		return true;
	case C_DPUT:
	case C_DDEL:
		if (m->type != PROTO_OK)
			break;
		dput_reply(o, cmd->proto, m);
		return true;
	case C_TTL:
		if (m->type != PROTO_VALUE)
			break;
		ttl_reply(f, cmd, o, m);
		return true;
	case C_SETGET:
	case C_DEL:
	case C_EXPIRE:
		if (s->reading && m->type == PROTO_VALUE) {
			if (!rmw_read(f, cmd, s, m))
				return true;   /* answered: nothing to write */
			s->reading = false;
			return !sub_send(f, cmd, i);
		}
		if (!s->reading && m->type == PROTO_OK) {
			if ((cmd->kind == C_DEL && s->found) || cmd->kind == C_EXPIRE)
				cmd->count++;
			if (cmd->kind == C_SETGET && !cmd->get)
				resp_simple(o, "OK");
			return true;
		}
		break;
	default:
		break;
	}
	resp_out_reset(o);
	resp_error(o, "ERR the node answered %s", proto_type_name(m->type) != NULL
		   ? proto_type_name(m->type) : "an unknown type");
	return true;
}

/* net_local_fn: the node answered request `client`. */
static void on_reply(void *ctx, uint64_t client, const void *frame, size_t len)
{
	resp_face *f = ctx;
	uint32_t slot = (uint32_t)client;
	proto_limits lim = { .max_key = f->cfg->max_key_size, .max_value = f->cfg->max_value_size };
	char err[256];
	proto_msg m;
	rcom *cmd;
	rconn *c;
	uint32_t i;
	bool done;

	if (slot >= RESP_MAX_PENDING || f->slots[slot].id != client)
		return;   /* answered already */
	cmd = f->slots[slot].cmd;
	i = f->slots[slot].sub;
	cmd->subs[i].slot = NO_SLOT;
	slot_free(f, slot);
	if (len < PROTO_HEADER_SIZE ||
	    proto_decode((const uint8_t *)frame + PROTO_HEADER_SIZE, len - PROTO_HEADER_SIZE,
			 &lim, &m, err, sizeof(err)) != 0) {
		resp_out_reset(&cmd->subs[i].out);
		resp_error(&cmd->subs[i].out, "ERR the node's answer: %s",
			   len < PROTO_HEADER_SIZE ? "truncated" : err);
		done = true;
	} else {
		done = sub_answer(f, cmd, i, &m);
		proto_msg_release(&m);
	}
	if (!done || --cmd->waiting > 0)
		return;
	c = cmd->c;
	c->inflight--;
	cmd_finish(f, cmd);
	if (c->bev == NULL) {   /* its connection is gone */
		rcom **pp = &c->head;

		while (*pp != cmd)
			pp = &(*pp)->next;
		*pp = cmd->next;
		cmd_free(cmd);
		if (c->head == NULL)
			free(c);
		return;
	}
	conn_flush(c);
	conn_ready(c);
}

/* Start cmd's node requests (its subs hold their keys): it joins c's
 * commands and is answered in its turn. */
static void cmd_start(resp_face *f, rconn *c, rcom *cmd)
{
	cmd_append(c, cmd);
	c->inflight++;
	cmd->waiting = cmd->nsub + 1;   /* +1: no answer finishes it while it starts */
	for (uint32_t i = 0; i < cmd->nsub; i++) {
		cmd->subs[i].reading = cmd->kind == C_SETGET || cmd->kind == C_DEL ||
				       cmd->kind == C_EXPIRE;
		if (!sub_send(f, cmd, i))
			cmd->waiting--;
	}
	if (--cmd->waiting == 0) {
		c->inflight--;
		cmd_finish(f, cmd);
		conn_flush(c);
	}
}

/* --- the commands ----------------------------------------------------------- */

static bool arg_is(const resp_arg *a, const char *s)
{
	size_t n = strlen(s);

	return a->len == n && strncasecmp((const char *)a->p, s, n) == 0;
}

static uint8_t *dup_arg(const resp_arg *a)
{
	uint8_t *p = malloc(a->len ? a->len : 1);

	if (p != NULL && a->len > 0)
		memcpy(p, a->p, a->len);
	return p;
}

/* Give sub i the key a (and value v if not NULL). */
static int sub_set(rcom *cmd, size_t i, const resp_arg *k, const resp_arg *v)
{
	rsub *s = &cmd->subs[i];

	if ((s->key = dup_arg(k)) == NULL || (v != NULL && (s->val = dup_arg(v)) == NULL))
		return -ENOMEM;
	s->klen = k->len;
	s->vlen = v != NULL ? v->len : 0;
	return 0;
}

/* A quorum argument: 1..16, one, quorum, all, or default (0). */
static int quorum_arg(const resp_arg *a, int32_t *q)
{
	long long v;

	if (arg_is(a, "one"))
		*q = DKV_QUORUM_ONE;
	else if (arg_is(a, "quorum"))
		*q = DKV_QUORUM_QUORUM;
	else if (arg_is(a, "all"))
		*q = DKV_QUORUM_ALL;
	else if (arg_is(a, "default"))
		*q = 0;
	else if (resp_ll(a->p, a->len, &v) == 0 && v >= 1 && v <= DKV_CONFIG_N_MAX)
		*q = (int32_t)v;
	else
		return DKV_EINVAL;
	return 0;
}

typedef struct rspec rspec;
typedef void (*rhandler)(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out);

struct rspec {
	const char *name;        /* lower case */
	int arity;               /* Redis's: n exactly, -n at least n */
	int first, last, step;   /* key positions (COMMAND) */
	const char *group, *summary;
	rhandler fn;
};

static const rspec *find_cmd(const resp_arg *name);

static void wrong_args(resp_out *o, const char *name)
{
	resp_error(o, "ERR wrong number of arguments for '%s' command", name);
}

/* The reply to a node command that cannot start: out of memory. */
static rcom *nomem_cmd(rconn *c)
{
	rcom *cmd = local_cmd(c);

	if (cmd != NULL)
		resp_error(&cmd->out, "ERR out of memory");
	return cmd;
}

static void h_ping(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);

	(void)f;
	if (cmd == NULL)
		return;
	if (argc > 2)
		wrong_args(&cmd->out, "ping");
	else if (argc == 2)
		resp_bulk(&cmd->out, argv[1].p, argv[1].len);
	else
		resp_simple(&cmd->out, "PONG");
}

static void h_echo(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);

	(void)f;
	(void)argc;
	if (cmd != NULL)
		resp_bulk(&cmd->out, argv[1].p, argv[1].len);
}

static void h_quit(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);

	(void)f;
	(void)argv;
	(void)argc;
	if (cmd != NULL) {
		resp_simple(&cmd->out, "OK");
		cmd->close_after = true;
	}
}

static void h_select(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	long long db;

	(void)f;
	(void)argc;
	if (cmd == NULL)
		return;
	if (resp_ll(argv[1].p, argv[1].len, &db) != 0)
		resp_error(&cmd->out, "ERR value is not an integer or out of range");
	else if (db != 0)
		resp_error(&cmd->out, "ERR DB index is out of range");
	else
		resp_simple(&cmd->out, "OK");
}

#define NO_AUTH "ERR AUTH <password> called without any password configured for the " \
	"default user. dynkv has no authentication yet: its faces serve loopback clients " \
	"only (dynkv-resp(7))"

static void h_auth(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);

	(void)f;
	(void)argv;
	if (cmd == NULL)
		return;
	if (argc > 3)
		resp_error(&cmd->out, "ERR syntax error");
	else
		resp_error(&cmd->out, NO_AUTH);
}

/* A client name: printable ASCII but space (Redis's rule). */
static bool name_ok(const resp_arg *a)
{
	for (size_t i = 0; i < a->len; i++)
		if (a->p[i] < '!' || a->p[i] > '~')
			return false;
	return true;
}

static void set_name(rconn *c, const resp_arg *a)
{
	size_t n = a->len < sizeof(c->name) - 1 ? a->len : sizeof(c->name) - 1;

	memcpy(c->name, a->p, n);
	c->name[n] = '\0';
}

static void h_hello(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	long long ver = c->proto;
	const resp_arg *setname = NULL;

	(void)f;
	if (cmd == NULL)
		return;
	if (argc >= 2 && (resp_ll(argv[1].p, argv[1].len, &ver) != 0)) {
		resp_error(&cmd->out, "ERR Protocol version is not an integer or out of range");
		return;
	}
	for (size_t i = 2; i < argc; i++) {
		if (arg_is(&argv[i], "auth") && i + 2 < argc) {
			resp_error(&cmd->out, NO_AUTH);
			return;
		} else if (arg_is(&argv[i], "setname") && i + 1 < argc) {
			setname = &argv[++i];
		} else {
			resp_error(&cmd->out, "ERR Syntax error in HELLO option '%.*s'",
				   (int)(argv[i].len > 128 ? 128 : argv[i].len),
				   (const char *)argv[i].p);
			return;
		}
	}
	if (ver < 2 || ver > 3) {
		resp_error(&cmd->out, "NOPROTO unsupported protocol version");
		return;
	}
	if (setname != NULL) {
		if (!name_ok(setname)) {
			resp_error(&cmd->out, "ERR Client names cannot contain spaces, newlines or "
				   "special characters.");
			return;
		}
		set_name(c, setname);
	}
	c->proto = cmd->proto = (int)ver;
	resp_map(&cmd->out, 8, cmd->proto);
	resp_bulk(&cmd->out, "server", 6);
	resp_bulk(&cmd->out, "redis", 5);
	resp_bulk(&cmd->out, "version", 7);
	resp_bulk(&cmd->out, REDIS_VERSION, strlen(REDIS_VERSION));
	resp_bulk(&cmd->out, "proto", 5);
	resp_int(&cmd->out, ver);
	resp_bulk(&cmd->out, "id", 2);
	resp_int(&cmd->out, (long long)c->id);
	resp_bulk(&cmd->out, "mode", 4);
	resp_bulk(&cmd->out, "standalone", 10);
	resp_bulk(&cmd->out, "role", 4);
	resp_bulk(&cmd->out, "master", 6);
	resp_bulk(&cmd->out, "modules", 7);
	resp_array(&cmd->out, 0);
	resp_bulk(&cmd->out, "dynkv", 5);
	resp_bulk(&cmd->out, PACKAGE_VERSION, strlen(PACKAGE_VERSION));
}

static void h_client(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	resp_out *o;

	(void)f;
	if (cmd == NULL)
		return;
	o = &cmd->out;
	if (arg_is(&argv[1], "setname") && argc == 3) {
		if (!name_ok(&argv[2])) {
			resp_error(o, "ERR Client names cannot contain spaces, newlines or special "
				   "characters.");
			return;
		}
		set_name(c, &argv[2]);
		resp_simple(o, "OK");
	} else if (arg_is(&argv[1], "getname") && argc == 2) {
		if (c->name[0] == '\0')
			resp_null(o, cmd->proto);
		else
			resp_bulk(o, c->name, strlen(c->name));
	} else if (arg_is(&argv[1], "id") && argc == 2) {
		resp_int(o, (long long)c->id);
	} else if (arg_is(&argv[1], "setinfo") && argc == 4) {
		if (!arg_is(&argv[2], "lib-name") && !arg_is(&argv[2], "lib-ver"))
			resp_error(o, "ERR Unrecognized option '%.*s'",
				   (int)(argv[2].len > 128 ? 128 : argv[2].len),
				   (const char *)argv[2].p);
		else
			resp_simple(o, "OK");
	} else if (arg_is(&argv[1], "info") && argc == 2) {
		char line[512];
		int n = snprintf(line, sizeof(line), "id=%llu addr=%s name=%s db=0 resp=%d\n",
				 (unsigned long long)c->id, c->addr, c->name, c->proto);

		resp_verbatim(o, "txt", line, (size_t)n, cmd->proto);
	} else if (arg_is(&argv[1], "setname") || arg_is(&argv[1], "getname") ||
		   arg_is(&argv[1], "id") || arg_is(&argv[1], "setinfo") ||
		   arg_is(&argv[1], "info")) {
		resp_error(o, "ERR wrong number of arguments for 'client|%.*s' command",
			   (int)argv[1].len, (const char *)argv[1].p);
	} else {
		resp_error(o, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.",
			   (int)(argv[1].len > 128 ? 128 : argv[1].len), (const char *)argv[1].p);
	}
}

/* What CONFIG GET shows: enough for redis-benchmark's start. */
static const char *const config_view[][2] = {
	{ "save", "" }, { "appendonly", "no" }, { "databases", "1" }, { NULL, NULL },
};

static void h_config(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	bool match[sizeof(config_view) / sizeof(config_view[0])] = { false };
	size_t n = 0;

	(void)f;
	if (cmd == NULL)
		return;
	if (!arg_is(&argv[1], "get")) {
		if (arg_is(&argv[1], "set") || arg_is(&argv[1], "rewrite") ||
		    arg_is(&argv[1], "resetstat"))
			resp_error(&cmd->out, "ERR CONFIG %.*s is not supported: a dynkv node reads "
				   "dynkv.conf(5) when it starts", (int)argv[1].len,
				   (const char *)argv[1].p);
		else
			resp_error(&cmd->out, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.",
				   (int)(argv[1].len > 128 ? 128 : argv[1].len),
				   (const char *)argv[1].p);
		return;
	}
	if (argc < 3) {
		resp_error(&cmd->out, "ERR wrong number of arguments for 'config|get' command");
		return;
	}
	for (size_t a = 2; a < argc; a++) {
		char pat[256];
		size_t pl = argv[a].len < sizeof(pat) - 1 ? argv[a].len : sizeof(pat) - 1;

		memcpy(pat, argv[a].p, pl);
		pat[pl] = '\0';
		for (size_t i = 0; config_view[i][0] != NULL; i++)
			if (!match[i] && fnmatch(pat, config_view[i][0], FNM_CASEFOLD) == 0) {
				match[i] = true;
				n++;
			}
	}
	resp_map(&cmd->out, n, cmd->proto);
	for (size_t i = 0; config_view[i][0] != NULL; i++)
		if (match[i]) {
			resp_bulk(&cmd->out, config_view[i][0], strlen(config_view[i][0]));
			resp_bulk(&cmd->out, config_view[i][1], strlen(config_view[i][1]));
		}
}

static void h_info(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	bool server = argc == 1, clients = argc == 1, dynkv = argc == 1;
	char *text = NULL;
	size_t len = 0;
	FILE *m;
	node_stats st;
	struct utsname u;

	if (cmd == NULL)
		return;
	for (size_t i = 1; i < argc; i++) {
		bool all = arg_is(&argv[i], "all") || arg_is(&argv[i], "default") ||
			   arg_is(&argv[i], "everything");

		server = server || all || arg_is(&argv[i], "server");
		clients = clients || all || arg_is(&argv[i], "clients");
		dynkv = dynkv || all || arg_is(&argv[i], "dynkv");
	}
	if ((m = open_memstream(&text, &len)) == NULL) {
		resp_error(&cmd->out, "ERR out of memory");
		return;
	}
	node_stats_get(f->nd, &st);
	if (server) {
		if (uname(&u) != 0)
			memset(&u, 0, sizeof(u));
		fprintf(m, "# Server\r\nredis_version:%s\r\nredis_mode:standalone\r\n"
			"os:%s %s %s\r\narch_bits:%zu\r\nprocess_id:%ld\r\ntcp_port:%s\r\n"
			"uptime_in_seconds:%lld\r\ndynkv_version:%s\r\n\r\n",
			REDIS_VERSION, u.sysname, u.release, u.machine, sizeof(void *) * 8,
			(long)getpid(), strrchr(f->addr, ':') != NULL ? strrchr(f->addr, ':') + 1 : "",
			(long long)(time(NULL) - f->started), PACKAGE_VERSION);
	}
	if (clients)
		fprintf(m, "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%u\r\n\r\n",
			f->nconns, f->cfg->resp_max_connections);
	if (dynkv)
		fprintf(m, "# Dynkv\r\nnode_id:%s\r\nlisten:%s\r\nresp_listen:%s\r\n"
			"members:%zu\r\nring_size:%u\r\nn_val:%u\r\nring_epochs:%zu\r\n"
			"resp_siblings:%s\r\nresp_commands:%llu\r\nresp_error_replies:%llu\r\n"
			"requests_inflight:%zu\r\nhints_pending:%llu\r\n\r\n",
			node_id(f->nd), f->cfg->listen, f->addr, st.members, st.ring_size,
			st.n_val, st.ring_epochs, f->cfg->resp_siblings,
			(unsigned long long)f->commands, (unsigned long long)f->errors,
			st.inflight, (unsigned long long)st.hints_pending);
	if (fclose(m) != 0) {
		free(text);
		resp_error(&cmd->out, "ERR out of memory");
		return;
	}
	resp_verbatim(&cmd->out, "txt", text, len > 2 ? len - 2 : len, cmd->proto);
	free(text);
}

static void h_command(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out);

/* --- commands on keys ---------------------------------------------------------- */

/* A command on keys argv[first], argv[first + step], ... (values after
 * each key when step is 2). */
static void keys_cmd(rconn *c, ckind kind, const resp_arg *argv, size_t argc, size_t first,
		     size_t step, rcom **out)
{
	size_t n = (argc - first) / step, k = 0;
	rcom *cmd = cmd_new(c, kind, n);

	if (cmd == NULL) {
		*out = nomem_cmd(c);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const resp_arg *key = &argv[first + i * step];
		const resp_arg *val = step == 2 ? &argv[first + i * step + 1] : NULL;
		size_t dup = k;

		if (kind == C_MSET || kind == C_DEL) {
			/* one request per key: MSET's last value wins, DEL counts a key once */
			for (dup = 0; dup < k; dup++)
				if (cmd->subs[dup].klen == key->len &&
				    memcmp(cmd->subs[dup].key, key->p, key->len) == 0)
					break;
			if (dup < k) {
				if (val != NULL) {
					uint8_t *v = dup_arg(val);

					if (v == NULL)
						goto nomem;
					free(cmd->subs[dup].val);
					cmd->subs[dup].val = v;
					cmd->subs[dup].vlen = val->len;
				}
				continue;
			}
		}
		if (sub_set(cmd, k, key, val) != 0)
			goto nomem;
		k++;
	}
	cmd->nsub = k;
	cmd->writes = kind == C_MSET || kind == C_DEL || kind == C_SET || kind == C_SETGET ||
		      kind == C_DPUT || kind == C_DDEL || kind == C_EXPIRE;
	*out = cmd;
	return;
nomem:
	cmd_free(cmd);
	*out = nomem_cmd(c);
}

/* GET, MGET, EXISTS, DEL, DYNKV.GET: every argument after the name a key. */
static void h_keys(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	ckind kind = arg_is(&argv[0], "get") ? C_GET
		     : arg_is(&argv[0], "mget") ? C_MGET
		     : arg_is(&argv[0], "exists") ? C_EXISTS
		     : arg_is(&argv[0], "del") ? C_DEL : C_DGET;

	(void)f;
	keys_cmd(c, kind, argv, argc, 1, 1, out);
}

static void h_mset(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	(void)f;
	if (argc % 2 == 0) {
		if ((*out = local_cmd(c)) != NULL)
			wrong_args(&(*out)->out, "mset");
		return;
	}
	keys_cmd(c, C_MSET, argv, argc, 1, 2, out);
}

/* Redis's number argument: a long long, else its error in *out. */
static bool number_arg(rconn *c, const resp_arg *a, long long *v, rcom **out)
{
	if (resp_ll(a->p, a->len, v) == 0)
		return true;
	if ((*out = local_cmd(c)) != NULL)
		resp_error(&(*out)->out, "ERR value is not an integer or out of range");
	return false;
}

/* ms (since 1970 when at, else from now) as a time to live within
 * 1..PROTO_MAX_TTL_MS: an absolute time already past is 1 ms (written,
 * and expired at once).  False for a time outside 100 years. */
static bool ttl_of(long long v, bool at, uint64_t now, uint64_t *ttl)
{
	if (at) {
		if (v <= 0 || (uint64_t)v > now + PROTO_MAX_TTL_MS)
			return false;
		*ttl = (uint64_t)v > now ? (uint64_t)v - now : 1;
		return true;
	}
	if (v <= 0 || (uint64_t)v > PROTO_MAX_TTL_MS)
		return false;
	*ttl = (uint64_t)v;
	return true;
}

static void h_set(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	bool get = false, keepttl = false, nx = false;
	int unit = 0;   /* 1 EX, 2 PX, 3 EXAT, 4 PXAT */
	long long v = 0;
	uint64_t ttl = 0;
	const char *why = NULL;

	(void)f;
	for (size_t i = 3; i < argc && why == NULL; i++) {
		static const char *const units[] = { "ex", "px", "exat", "pxat" };
		int u = 0;

		for (int k = 0; k < 4; k++)
			if (arg_is(&argv[i], units[k]))
				u = k + 1;
		if (arg_is(&argv[i], "get")) {
			get = true;
		} else if (arg_is(&argv[i], "keepttl") && unit == 0) {
			keepttl = true;
		} else if (arg_is(&argv[i], "nx") || arg_is(&argv[i], "xx")) {
			nx = true;
		} else if (u != 0 && unit == 0 && !keepttl && i + 1 < argc) {
			unit = u;
			if (!number_arg(c, &argv[++i], &v, out))
				return;
		} else {
			why = "ERR syntax error";
		}
	}
	if (why == NULL && nx)
		why = "ERR SET NX and XX need an atomic read-and-write, which a leaderless "
		      "store has not: read with DYNKV.GET and write with DYNKV.PUT and the "
		      "context instead (dynkv-resp(7))";
	/* (seconds past 2^42 are past any time to live: no overflow below) */
	if (why == NULL && unit != 0 &&
	    ((unit % 2 == 1 && v > (1LL << 42)) ||
	     !ttl_of(unit % 2 == 1 ? v * 1000 : v, unit >= 3, wall_ms(), &ttl)))
		why = "ERR invalid expire time in 'set' command";
	if (why != NULL) {
		if ((*out = local_cmd(c)) != NULL)
			resp_error(&(*out)->out, "%s", why);
		return;
	}
	keys_cmd(c, get || keepttl ? C_SETGET : C_SET, argv, 3, 1, 2, out);
	if (*out != NULL && (*out)->kind != C_LOCAL) {
		(*out)->ttl_ms = ttl;
		(*out)->get = get;
		(*out)->keepttl = keepttl;
	}
}

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key n [NX|XX|GT|LT]; PERSIST key. */
static void h_expire(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	bool persist = arg_is(&argv[0], "persist");
	bool ms = arg_is(&argv[0], "pexpire") || arg_is(&argv[0], "pexpireat");
	bool at = arg_is(&argv[0], "expireat") || arg_is(&argv[0], "pexpireat");
	static const char *const conds[] = { "nx", "xx", "gt", "lt" };
	unsigned cond = 0;
	long long v = 0;
	uint64_t now = wall_ms();
	int64_t at_ms = 0;
	const char *why = NULL;
	bool bad = false;

	(void)f;
	if (persist && argc != 2) {
		if ((*out = local_cmd(c)) != NULL)
			wrong_args(&(*out)->out, "persist");
		return;
	}
	if (!persist) {
		if (!number_arg(c, &argv[2], &v, out))
			return;
		for (size_t i = 3; i < argc; i++) {
			unsigned k = 0;

			while (k < 4 && !arg_is(&argv[i], conds[k]))
				k++;
			if (k == 4) {
				if ((*out = local_cmd(c)) != NULL)
					resp_error(&(*out)->out, "ERR Unsupported option %.*s",
						   (int)(argv[i].len > 64 ? 64 : argv[i].len),
						   (const char *)argv[i].p);
				return;
			}
			cond |= 1u << k;
		}
		if ((cond & EXP_NX) && (cond & (EXP_XX | EXP_GT | EXP_LT)))
			why = "ERR NX and XX, GT or LT options at the same time are not compatible";
		else if ((cond & EXP_GT) && (cond & EXP_LT))
			why = "ERR GT and LT options at the same time are not compatible";
		/* the new expiry in ms since 1970, at most 100 years ahead (seconds
		 * past 2^42 are past that: no overflow) */
		if (!ms && (v > (1LL << 42) || v < -(1LL << 42)))
			bad = true;
		else if (!ms)
			v *= 1000;
		if (!bad && !at && (v > (long long)PROTO_MAX_TTL_MS || v < -(long long)PROTO_MAX_TTL_MS))
			bad = true;
		at_ms = at ? (int64_t)v : (int64_t)now + v;
		if (!bad && at_ms > (int64_t)(now + PROTO_MAX_TTL_MS))
			bad = true;
	}
	if (why == NULL && bad) {
		if ((*out = local_cmd(c)) != NULL)
			resp_error(&(*out)->out, "ERR invalid expire time in '%s' command",
				   ms ? (at ? "pexpireat" : "pexpire") : at ? "expireat" : "expire");
		return;
	}
	if (why != NULL) {
		if ((*out = local_cmd(c)) != NULL)
			resp_error(&(*out)->out, "%s", why);
		return;
	}
	keys_cmd(c, C_EXPIRE, argv, 2, 1, 1, out);
	if (*out != NULL && (*out)->kind != C_LOCAL) {
		(*out)->persist = persist;
		(*out)->cond = cond;
		(*out)->at_ms = at_ms;
	}
}

/* TTL, PTTL key. */
static void h_ttl(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	(void)f;
	keys_cmd(c, C_TTL, argv, argc, 1, 1, out);
	if (*out != NULL && (*out)->kind != C_LOCAL)
		(*out)->ms = arg_is(&argv[0], "pttl");
}

static void h_dquorum(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	int32_t q[4] = { 0, 0, 0, 0 };

	(void)f;
	if (cmd == NULL)
		return;
	if (argc != 3 && argc != 5) {
		wrong_args(&cmd->out, "dynkv.quorum");
		return;
	}
	for (size_t i = 1; i < argc; i++)
		if (quorum_arg(&argv[i], &q[i - 1]) != 0) {
			resp_error(&cmd->out, "ERR DYNKV.QUORUM %s: \"%.*s\" is not 1 to %u, one, "
				   "quorum, all or default", (const char *[]){ "R", "W", "PR", "PW" }[i - 1],
				   (int)(argv[i].len > 64 ? 64 : argv[i].len), (const char *)argv[i].p,
				   DKV_CONFIG_N_MAX);
			return;
		}
	c->o.r = q[0];
	c->o.w = q[1];
	c->o.pr = q[2];
	c->o.pw = q[3];
	resp_simple(&cmd->out, "OK");
}

/* DYNKV.PUT key value context, DYNKV.DEL key context. */
static void h_dwrite(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	bool put = arg_is(&argv[0], "dynkv.put");
	const resp_arg *ctx = &argv[argc - 1];
	rsub *s;

	(void)f;
	keys_cmd(c, put ? C_DPUT : C_DDEL, argv, put ? 3 : 2, 1, put ? 2 : 1, out);
	if (*out == NULL || (*out)->kind == C_LOCAL)
		return;
	s = &(*out)->subs[0];
	if (ctx->len > 0 && (s->ctx = dup_arg(ctx)) == NULL) {
		cmd_free(*out);
		*out = nomem_cmd(c);
		return;
	}
	s->ctxlen = ctx->len;
}

/* Every command, by name (lower case). */
static const rspec commands[] = {
	{ "auth", -2, 0, 0, 0, "connection", "Authenticates the connection (dynkv: not yet)", h_auth },
	{ "client", -2, 0, 0, 0, "connection", "SETNAME, GETNAME, ID, SETINFO, INFO", h_client },
	{ "command", -1, 0, 0, 0, "server", "Returns details about commands", h_command },
	{ "config", -2, 0, 0, 0, "server", "CONFIG GET: what redis-benchmark asks", h_config },
	{ "del", -2, 1, -1, 1, "generic", "Deletes keys (read, then delete what was read)", h_keys },
	{ "dynkv.del", 3, 1, 1, 1, "dynkv", "Deletes a key with a context", h_dwrite },
	{ "dynkv.get", 2, 1, 1, 1, "dynkv", "Every sibling of a key, the context, tombstones", h_keys },
	{ "dynkv.put", 4, 1, 1, 1, "dynkv", "Writes a key with a context (empty: blind)", h_dwrite },
	{ "dynkv.quorum", -3, 0, 0, 0, "dynkv", "Sets the connection's R W [PR PW]", h_dquorum },
	{ "echo", 2, 0, 0, 0, "connection", "Returns the given string", h_echo },
	{ "exists", -2, 1, -1, 1, "generic", "Counts the keys that exist", h_keys },
	{ "expire", -3, 1, 1, 1, "generic", "Sets a key's time to live in seconds", h_expire },
	{ "expireat", -3, 1, 1, 1, "generic", "Sets a key's expiry as a Unix time", h_expire },
	{ "get", 2, 1, 1, 1, "string", "Returns the value of a key", h_keys },
	{ "hello", -1, 0, 0, 0, "connection", "Handshakes: RESP2 or RESP3", h_hello },
	{ "info", -1, 0, 0, 0, "server", "Server, clients and dynkv sections", h_info },
	{ "mget", -2, 1, -1, 1, "string", "Returns the values of keys", h_keys },
	{ "mset", -3, 1, -1, 2, "string", "Sets keys (each a replace-mode put; not atomic)", h_mset },
	{ "persist", 2, 1, 1, 1, "generic", "Takes a key's expiry off", h_expire },
	{ "pexpire", -3, 1, 1, 1, "generic", "Sets a key's time to live in ms", h_expire },
	{ "pexpireat", -3, 1, 1, 1, "generic", "Sets a key's expiry as a Unix time in ms", h_expire },
	{ "pttl", 2, 1, 1, 1, "generic", "A key's time to live in ms", h_ttl },
	{ "ping", -1, 0, 0, 0, "connection", "Returns PONG", h_ping },
	{ "quit", -1, 0, 0, 0, "connection", "Closes the connection", h_quit },
	{ "select", 2, 0, 0, 0, "connection", "Database 0 only", h_select },
	{ "set", -3, 1, 1, 1, "string", "Sets a key (a replace-mode put)", h_set },
	{ "ttl", 2, 1, 1, 1, "generic", "A key's time to live in seconds", h_ttl },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const rspec *find_cmd(const resp_arg *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (arg_is(name, commands[i].name))
			return &commands[i];
	return NULL;
}

/* COMMAND's entry for one command (Redis 7's ten fields). */
static void command_info(resp_out *o, const rspec *s, int proto)
{
	resp_array(o, 10);
	resp_bulk(o, s->name, strlen(s->name));
	resp_int(o, s->arity);
	resp_set(o, 0, proto);   /* flags */
	resp_int(o, s->first);
	resp_int(o, s->last);
	resp_int(o, s->step);
	resp_set(o, 0, proto);   /* ACL categories */
	resp_set(o, 0, proto);   /* tips */
	resp_array(o, 0);        /* key specs */
	resp_array(o, 0);        /* subcommands */
}

static void command_doc(resp_out *o, const rspec *s, int proto)
{
	resp_bulk(o, s->name, strlen(s->name));
	resp_map(o, 3, proto);
	resp_bulk(o, "summary", 7);
	resp_bulk(o, s->summary, strlen(s->summary));
	resp_bulk(o, "since", 5);
	resp_bulk(o, "1.0.0", 5);
	resp_bulk(o, "group", 5);
	resp_bulk(o, s->group, strlen(s->group));
}

static void h_command(resp_face *f, rconn *c, const resp_arg *argv, size_t argc, rcom **out)
{
	rcom *cmd = *out = local_cmd(c);
	resp_out *o;

	(void)f;
	if (cmd == NULL)
		return;
	o = &cmd->out;
	if (argc == 1) {
		resp_array(o, NCOMMANDS);
		for (size_t i = 0; i < NCOMMANDS; i++)
			command_info(o, &commands[i], cmd->proto);
	} else if (arg_is(&argv[1], "count") && argc == 2) {
		resp_int(o, (long long)NCOMMANDS);
	} else if (arg_is(&argv[1], "list") && argc == 2) {
		resp_array(o, NCOMMANDS);
		for (size_t i = 0; i < NCOMMANDS; i++)
			resp_bulk(o, commands[i].name, strlen(commands[i].name));
	} else if (arg_is(&argv[1], "info")) {
		resp_array(o, argc == 2 ? NCOMMANDS : argc - 2);
		for (size_t i = 2; i < argc || (argc == 2 && i - 2 < NCOMMANDS); i++) {
			const rspec *s = argc == 2 ? &commands[i - 2] : find_cmd(&argv[i]);

			if (s == NULL)
				resp_null_array(o, cmd->proto);
			else
				command_info(o, s, cmd->proto);
		}
	} else if (arg_is(&argv[1], "docs")) {
		size_t n = 0;

		for (size_t i = 2; i < argc; i++)
			n += find_cmd(&argv[i]) != NULL;
		resp_map(o, argc == 2 ? NCOMMANDS : n, cmd->proto);
		for (size_t i = 0; argc == 2 && i < NCOMMANDS; i++)
			command_doc(o, &commands[i], cmd->proto);
		for (size_t i = 2; i < argc; i++)
			if (find_cmd(&argv[i]) != NULL)
				command_doc(o, find_cmd(&argv[i]), cmd->proto);
	} else {
		resp_error(o, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
			   (int)(argv[1].len > 128 ? 128 : argv[1].len), (const char *)argv[1].p);
	}
}

/* --- connections ------------------------------------------------------------ */

/* Serve what c has sent, command after command, until it has no whole
 * command left or must wait: for its earlier commands (too many at once,
 * or one on the same key), for slots, or for its replies to drain. */
static void conn_serve(rconn *c)
{
	resp_face *f = c->f;

	while (c->bev != NULL && !c->closing) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t have = evbuffer_get_length(in), argc = 0, used = 0, need = 0;
		char err[256];
		const rspec *s;
		rcom *cmd = NULL;
		uint8_t *buf;
		int rc;

		if (have == 0)
			break;
		if (c->inflight >= RESP_CONN_INFLIGHT ||
		    evbuffer_get_length(bufferevent_get_output(c->bev)) > RESP_OUTPUT_PAUSE)
			break;   /* on_reply or the write callback calls again */
		buf = evbuffer_pullup(in, -1);
		rc = resp_parse(buf, have, &f->lim, f->argv, &argc, f->scratch, RESP_MAX_INLINE,
				&used, &need, err, sizeof(err));
		if (rc == RESP_MORE) {
			if (need > f->cfg->max_frame) {
				snprintf(err, sizeof(err), "ERR Protocol error: a request of %zu bytes "
					 "or more is larger than max_frame (%llu)", need,
					 (unsigned long long)f->cfg->max_frame);
				rc = RESP_ERROR;
			} else {
				break;
			}
		}
		if (rc == RESP_ERROR) {
			logr(f, DKV_LOG_DEBUG, "client %s: %s", c->addr, err);
			if ((cmd = local_cmd(c)) == NULL) {
				conn_close(c);
				return;
			}
			resp_error(&cmd->out, "%s", err);
			cmd->close_after = true;
			cmd_append(c, cmd);
			evbuffer_drain(in, have);
			c->closing = true;   /* nothing after it is served */
			bufferevent_disable(c->bev, EV_READ);
			conn_flush(c);
			return;
		}
		if (argc == 0) {
			evbuffer_drain(in, used);
			continue;
		}
		f->commands++;
		s = find_cmd(&f->argv[0]);
		if (f->draining) {
			if ((cmd = local_cmd(c)) != NULL)
				resp_error(&cmd->out, "SHUTDOWN node is shutting down");
		} else if (s == NULL) {
			if ((cmd = local_cmd(c)) != NULL)
				resp_unknown_command(&cmd->out, f->argv, argc);
		} else if ((s->arity > 0 && argc != (size_t)s->arity) ||
			   (s->arity < 0 && argc < (size_t)-s->arity)) {
			if ((cmd = local_cmd(c)) != NULL)
				wrong_args(&cmd->out, s->name);
		} else {
			s->fn(f, c, f->argv, argc, &cmd);
		}
		if (cmd == NULL) {
			conn_close(c);
			return;
		}
		if (cmd->kind != C_LOCAL) {
			if (conflicts(c, cmd)) {
				cmd_free(cmd);   /* made again once the earlier one is answered */
				f->commands--;
				break;
			}
			if (f->nfree < cmd->nsub) {
				cmd_free(cmd);
				f->commands--;
				f->starved = true;
				break;
			}
		}
		evbuffer_drain(in, used);
		if (cmd->close_after) {   /* QUIT: nothing after it is served */
			c->closing = true;
			bufferevent_disable(c->bev, EV_READ);
		}
		if (cmd->kind == C_LOCAL) {
			if (cmd->out.len > 0 && cmd->out.p[0] == '-')
				f->errors++;
			cmd_append(c, cmd);
			conn_flush(c);
		} else {
			cmd_start(f, c, cmd);
		}
	}
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
	resp_face *f = arg;

	(void)fd;
	(void)what;
	while (f->ready != NULL) {
		rconn *c = f->ready;

		f->ready = c->ready_next;
		c->ready = false;
		conn_serve(c);
	}
}

static void read_cb(struct bufferevent *bev, void *arg)
{
	rconn *c = arg;

	if (c->lingering) {
		struct evbuffer *in = bufferevent_get_input(bev);

		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	conn_serve(c);
}

/* The output drained (low watermark 0): serve what waited for it, or,
 * closing, half-close and linger (read and drop what the client still
 * sends, until it closes or LINGER_MS pass): closing a socket with
 * unread bytes resets the connection, and the client may lose the
 * answer that said why. */
static void write_cb(struct bufferevent *bev, void *arg)
{
	rconn *c = arg;

	if (c->closing) {
		struct timeval tv = { LINGER_MS / 1000, LINGER_MS % 1000 * 1000 };

		if (c->head != NULL || c->lingering)
			return;
		c->lingering = true;
		(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
		bufferevent_set_timeouts(bev, &tv, NULL);
		bufferevent_enable(bev, EV_READ);
		return;
	}
	conn_serve(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
	rconn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		conn_close(c);
}

static void accept_cb(struct evconnlistener *ls, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	resp_face *f = arg;
	rconn *c;
	int one = 1;
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";

	(void)ls;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	(void)getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port),
			  NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(c->addr, sizeof(c->addr), "%s:%s", host, port);
	c->f = f;
	c->id = ++f->next_client;
	c->proto = 2;
	c->next = f->conns;
	if (f->conns != NULL)
		f->conns->prev = c;
	f->conns = c;
	bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	/* a whole request fits; past that, reading waits for us */
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)f->cfg->max_frame + RESP_MAX_INLINE);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (f->draining || f->nconns >= f->cfg->resp_max_connections) {
		/* told why, then closed (lingering, like any closing one) */
		rcom *cmd = local_cmd(c);

		if (cmd == NULL) {
			conn_close(c);
			return;
		}
		resp_error(&cmd->out, f->draining ? "SHUTDOWN node is shutting down"
						  : "ERR max number of clients reached");
		cmd->close_after = true;
		cmd_append(c, cmd);
		conn_flush(c);
		return;
	}
	c->counted = true;
	f->nconns++;
}

/* --- open and close ------------------------------------------------------- */

int resp_open(resp_face **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	      net *nt, node *nd, char *err, size_t errlen)
{
	char la[320], host[256], ps[8];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res;
	uint16_t port;
	resp_face *f;
	int rc;

	*out = NULL;
	if ((rc = dkv_config_resp_listen(cfg, la, sizeof(la), err, errlen)) != 0)
		return rc;
	if ((rc = dkv_config_face_address("resp_listen", la, "Redis protocol", "dynkv-resp(7)",
					  host, sizeof(host), &port, err, errlen)) != 0)
		return rc;
	if ((f = calloc(1, sizeof(*f))) == NULL ||
	    (f->slots = calloc(RESP_MAX_PENDING, sizeof(*f->slots))) == NULL ||
	    (f->free_slots = calloc(RESP_MAX_PENDING, sizeof(*f->free_slots))) == NULL ||
	    (f->argv = calloc(RESP_MAX_ARGS, sizeof(*f->argv))) == NULL ||
	    (f->scratch = malloc(RESP_MAX_INLINE)) == NULL ||
	    (f->ready_ev = event_new(base, -1, 0, ready_cb, f)) == NULL) {
		resp_close(f);
		snprintf(err, errlen, "resp_listen %s: out of memory", la);
		return -ENOMEM;
	}
	f->base = base;
	f->cfg = cfg;
	f->log = log;
	f->nd = nd;
	f->started = time(NULL);
	f->newest = strcmp(cfg->resp_siblings, "newest") == 0;
	f->lim.max_args = RESP_MAX_ARGS;
	f->lim.max_bulk = cfg->max_frame;
	f->lim.max_inline = RESP_MAX_INLINE;
	msgpack_sbuffer_init(&f->sb);
	for (uint32_t i = 0; i < RESP_MAX_PENDING; i++)
		f->free_slots[f->nfree++] = RESP_MAX_PENDING - 1 - i;
	snprintf(ps, sizeof(ps), "%u", (unsigned)port);
	if ((rc = getaddrinfo(host, ps, &hints, &res)) != 0) {
		snprintf(err, errlen, "resp_listen %s: %s", la, gai_strerror(rc));
		resp_close(f);
		return DKV_EINVAL;
	}
	errno = 0;
	f->ls = evconnlistener_new_bind(base, accept_cb, f,
					LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					LEV_OPT_CLOSE_ON_EXEC, -1, res->ai_addr,
					(int)res->ai_addrlen);
	freeaddrinfo(res);
	if (f->ls == NULL) {
		rc = errno ? -errno : -EADDRINUSE;
		snprintf(err, errlen, "resp_listen %s: %s", la, strerror(-rc));
		resp_close(f);
		return rc;
	}
	snprintf(f->addr, sizeof(f->addr), "%s", la);
	f->nt = nt;
	net_set_local(nt, NET_LOCAL_RESP, on_reply, f);
	logr(f, DKV_LOG_INFO, "listening on %s", la);
	*out = f;
	return 0;
}

const char *resp_address(const resp_face *f)
{
	return f->addr;
}

void resp_drain(resp_face *f)
{
	f->draining = true;
	if (f->ls != NULL)
		evconnlistener_disable(f->ls);
}

size_t resp_pending(const resp_face *f)
{
	return RESP_MAX_PENDING - f->nfree;
}

size_t resp_pending_output(const resp_face *f)
{
	size_t n = 0;

	for (const rconn *c = f->conns; c != NULL; c = c->next)
		n += evbuffer_get_length(bufferevent_get_output(c->bev));
	return n;
}

size_t resp_connections(const resp_face *f)
{
	return f->nconns;
}

void resp_close(resp_face *f)
{
	rconn *dead = NULL;

	if (f == NULL)
		return;
	if (f->nt != NULL)
		net_set_local(f->nt, NET_LOCAL_RESP, NULL, NULL);
	/* what still waits for the node is not answered (a client that lost
	 * its connection retries elsewhere); connections closed earlier that
	 * wait for answers are freed with the open ones */
	for (uint32_t i = 0; f->slots != NULL && i < RESP_MAX_PENDING; i++) {
		rconn *c = f->slots[i].cmd != NULL ? f->slots[i].cmd->c : NULL;

		f->slots[i].cmd = NULL;
		if (c != NULL && c->bev == NULL && !c->ready) {
			c->ready = true;   /* listed */
			c->ready_next = dead;
			dead = c;
		}
	}
	while (dead != NULL) {
		rconn *c = dead;

		dead = c->ready_next;
		conn_free(c);
	}
	while (f->conns != NULL) {
		rconn *c = f->conns;

		f->conns = c->next;
		bufferevent_free(c->bev);
		conn_free(c);
	}
	if (f->ls != NULL)
		evconnlistener_free(f->ls);
	if (f->ready_ev != NULL)
		event_free(f->ready_ev);
	msgpack_sbuffer_destroy(&f->sb);
	free(f->slots);
	free(f->free_slots);
	free(f->argv);
	free(f->scratch);
	free(f);
}
