#include "config.h"
/*
 * simworld.c -- the simulated world; see simworld.h.
 *
 * One binary heap of events ordered by (at, seq).  Each event has an owner
 * host, the one that runs it.  Events a paused host cannot run move from
 * the heap to the host's `held` list (kept in (at, seq) order) and go back
 * on resume, at the resume time at the earliest; timers of
 * a crashed host move to the `orphans` list, where they stay valid (the
 * node may still cancel them) but never fire.
 *
 * Event lifecycle (freed = gone; a world_timer pointer is valid until then):
 *
 *   heap --pop, owner paused--> held --sim_pause(false)--> heap
 *   heap --pop--> run --> freed          (a timer is freed before it runs)
 *   heap --pop, EV_WORK--> fn runs --> heap as EV_WORK_DONE --pop--> done, freed
 *   heap|held --timer_cancel--> cancelled --pop|resume--> freed
 *   heap|held --sim_crash, timer--> orphan --timer_cancel|sim_free--> freed
 *   heap|held --sim_crash, message to it / its peer-down--> freed
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitcask.h"
#include "node.h"
#include "simworld.h"

#define DEFAULT_ADDR "sim:0"
#define PEER_CLIENT_BASE (1ull << 48)   /* above any id a test makes up */
#define PPM 1000000u

typedef enum ev_kind {
	EV_TIMER, EV_DURABLE, EV_WORK, EV_WORK_DONE, EV_FRAME, EV_DGRAM, EV_PEER_DOWN
} ev_kind;

typedef struct shost shost;

/* One queued event.  Timers are handed out as world_timer pointers. */
struct world_timer {
	uint64_t at, seq;
	ev_kind kind;
	bool cancelled;            /* counted out of `live` already */
	bool orphan;               /* on s->orphans: never fires */
	shost *host;               /* the owner, which runs it */
	struct world_timer *next;  /* on a held list or the orphan list */
	world_timer_fn fn;         /* EV_TIMER */
	void *arg;
	bitcask **stores;          /* EV_DURABLE */
	size_t nstores;
	world_durable_fn done;     /* EV_DURABLE, EV_WORK_DONE */
	int fail_rc;               /* EV_DURABLE; EV_WORK_DONE: fn's result */
	world_work_fn work;        /* EV_WORK (arg is fn's) */
	void *darg;                /* EV_WORK, EV_WORK_DONE: done's argument */
	shost *peer;               /* FRAME, DGRAM: the sender; PEER_DOWN: the peer */
	char *peer_addr;           /* PEER_DOWN for an unknown address */
	uint64_t gen;              /* FRAME: the connection it was sent on */
	uint8_t *buf;              /* FRAME, DGRAM: the copy */
	size_t len;
};

/* The connection from one host to another. */
typedef struct sim_link {
	uint64_t gen;              /* bumped by each break */
	uint64_t last_at;          /* latest delivery scheduled (ordering) */
	bool open;
	bool down_pending;         /* a peer-down notice is queued */
	bool cut;                  /* true iff messages from src to dst are dropped */
} sim_link;

struct shost {
	world w;                   /* first: the ops get the host from it */
	simworld *s;
	size_t idx;
	char *addr;
	node *nd;                  /* borrowed, may be NULL */
	bool up, paused;
	struct world_timer *held, *held_last;   /* while paused, by (at, seq) */
	sim_link *links;           /* indexed by destination host */
	size_t nlinks;
};

struct simworld {
	uint64_t now;              /* virtual ms */
	uint64_t seq;
	uint64_t rng, seed;
	struct world_timer **heap;
	size_t n, cap;
	size_t live;               /* heap + held, not cancelled */
	struct world_timer *orphans;
	shost **hosts;
	size_t nhosts;
	sim_reply_fn reply;
	void *reply_ctx;
	sim_host_reply_fn host_reply;
	void *host_reply_ctx;
	uint64_t sync_min, sync_max;
	int sync_rc;
	uint32_t fail_timers;      /* the next this many timer_add() calls return NULL */
	uint64_t work_min, work_max;
	sim_net_opts net;
	sim_net_stats st;
};

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (p == NULL)
		abort();   /* a test process out of memory */
	return p;
}

uint64_t sim_rand(simworld *s)
{
	/* splitmix64 */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool chance(simworld *s, uint32_t ppm)
{
	return ppm > 0 && sim_rand(s) % PPM < ppm;
}

static uint64_t net_delay(simworld *s)
{
	uint64_t span = s->net.delay_max_ms - s->net.delay_min_ms + 1;

	return s->net.delay_min_ms + sim_rand(s) % span;
}

/* --- the queue ------------------------------------------------------------ */

static bool before(const struct world_timer *a, const struct world_timer *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void sift_down(simworld *s, size_t i)
{
	struct world_timer *e = s->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->n)
			break;
		if (c + 1 < s->n && before(s->heap[c + 1], s->heap[c]))
			c++;
		if (!before(s->heap[c], e))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	s->heap[i] = e;
}

/* Insert e with a fresh sequence number; `live` is the caller's. */
static int heap_insert(simworld *s, struct world_timer *e)
{
	size_t i;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct world_timer **h = realloc(s->heap, cap * sizeof(*h));

		if (h == NULL)
			return -1;
		s->heap = h;
		s->cap = cap;
	}
	e->seq = s->seq++;
	i = s->n++;
	while (i > 0 && before(e, s->heap[(i - 1) / 2])) {
		s->heap[i] = s->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	s->heap[i] = e;
	return 0;
}

static int push(simworld *s, struct world_timer *e)
{
	if (heap_insert(s, e) != 0)
		return -1;
	s->live++;
	return 0;
}

static void push_or_die(simworld *s, struct world_timer *e)
{
	if (push(s, e) != 0)
		abort();
}

static struct world_timer *pop(simworld *s)
{
	struct world_timer *top = s->heap[0];

	s->heap[0] = s->heap[--s->n];
	if (s->n > 0)
		sift_down(s, 0);
	return top;
}

static void ev_free(struct world_timer *e)
{
	free(e->stores);
	free(e->buf);
	free(e->peer_addr);
	free(e);
}

/* Park e on its paused owner's list, kept in (at, seq) order: the heap
 * may hand out a future event before a nearer one queued after it. */
static void hold(shost *h, struct world_timer *e)
{
	struct world_timer **pp = &h->held;

	if (h->held_last != NULL && !before(e, h->held_last))
		pp = &h->held_last->next;   /* the usual case: append */
	else
		while (*pp != NULL && !before(e, *pp))
			pp = &(*pp)->next;
	e->next = *pp;
	*pp = e;
	if (e->next == NULL)
		h->held_last = e;
}

/* Take h's held list (sorted), leaving it empty. */
static struct world_timer *unhold(shost *h)
{
	struct world_timer *l = h->held;

	h->held = NULL;
	h->held_last = NULL;
	return l;
}

/* --- hosts and links ------------------------------------------------------ */

static shost *host_find(const simworld *s, const char *addr)
{
	for (size_t i = 0; i < s->nhosts; i++)
		if (strcmp(s->hosts[i]->addr, addr) == 0)
			return s->hosts[i];
	return NULL;
}

static sim_link *link_of(shost *src, const shost *dst)
{
	if (dst->idx >= src->nlinks) {
		size_t n = dst->idx + 1;
		sim_link *l = realloc(src->links, n * sizeof(*l));

		if (l == NULL)
			abort();
		memset(l + src->nlinks, 0, (n - src->nlinks) * sizeof(*l));
		src->links = l;
		src->nlinks = n;
	}
	return &src->links[dst->idx];
}

static bool is_cut(shost *a, shost *b)
{
	return link_of(a, b)->cut;
}

static struct world_timer *ev_new(shost *owner, ev_kind kind, uint64_t at)
{
	struct world_timer *e = xcalloc(1, sizeof(*e));

	e->host = owner;
	e->kind = kind;
	e->at = at;
	return e;
}

/* Tell src, one delay from now, that its connection to dst is gone (at
 * most one notice queued per pair). */
static void schedule_peer_down(simworld *s, shost *src, shost *dst)
{
	sim_link *l = link_of(src, dst);
	struct world_timer *e;

	if (l->down_pending || !src->up)
		return;
	l->down_pending = true;
	e = ev_new(src, EV_PEER_DOWN, s->now + net_delay(s));
	e->peer = dst;
	push_or_die(s, e);
}

static void link_break(simworld *s, shost *src, shost *dst)
{
	sim_link *l = link_of(src, dst);

	l->gen++;
	l->open = false;
	schedule_peer_down(s, src, dst);
}

/* --- the world ops -------------------------------------------------------- */

static shost *host_of(world *w)
{
	return (shost *)w;
}

static uint64_t w_now(world *w)
{
	return host_of(w)->s->now;
}

static uint64_t w_now_us(world *w)
{
	return host_of(w)->s->now * 1000;
}

static uint64_t w_wall(world *w)
{
	/* A fixed epoch plus virtual time: timestamps replay too. */
	return 1700000000000ull + host_of(w)->s->now;
}

static world_timer *w_timer_add(world *w, uint64_t ms, world_timer_fn fn, void *arg)
{
	shost *h = host_of(w);
	simworld *s = h->s;
	struct world_timer *e;

	if (s->fail_timers > 0) {
		s->fail_timers--;
		return NULL;   /* as on ENOMEM */
	}
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->host = h;
	e->kind = EV_TIMER;
	e->at = s->now + ms;
	e->fn = fn;
	e->arg = arg;
	if (!h->up) {
		/* a dead host's timers never fire */
		e->orphan = true;
		e->next = s->orphans;
		s->orphans = e;
		return e;
	}
	if (push(s, e) != 0) {
		free(e);
		return NULL;
	}
	return e;
}

static void w_timer_cancel(world *w, world_timer *t)
{
	simworld *s = host_of(w)->s;

	if (t == NULL || t->cancelled)
		return;
	if (t->orphan) {
		struct world_timer **pp = &s->orphans;

		while (*pp != t)
			pp = &(*pp)->next;
		*pp = t->next;
		free(t);
		return;
	}
	t->cancelled = true;   /* freed when it leaves the heap or held list */
	s->live--;
}

static void w_reply(world *w, uint64_t client, const void *frame, size_t len)
{
	shost *h = host_of(w);
	simworld *s = h->s;

	if (!h->up)
		return;
	if (s->reply != NULL)
		s->reply(s->reply_ctx, client, frame, len);
	if (s->host_reply != NULL)
		s->host_reply(s->host_reply_ctx, h->addr, client, frame, len);
}

static void w_durable(world *w, bitcask *const *stores, size_t n,
		      world_durable_fn done, void *arg)
{
	shost *h = host_of(w);
	simworld *s = h->s;
	uint64_t span = s->sync_max - s->sync_min + 1;
	struct world_timer *e = ev_new(h, EV_DURABLE, 0);

	e->stores = xcalloc(n, sizeof(*stores));
	memcpy(e->stores, stores, n * sizeof(*stores));
	e->nstores = n;
	e->at = s->now + s->sync_min + sim_rand(s) % span;
	e->done = done;
	e->arg = arg;
	e->fail_rc = s->sync_rc;
	push_or_die(s, e);
}

/* fn runs as its own event, at a time drawn from the seed; done follows as
 * another event (the loop's turn), so done never runs inside this call and
 * other events due then may come between fn and done, as in the real pool. */
static void w_work(world *w, world_work_fn fn, void *arg, world_done_fn done, void *darg)
{
	shost *h = host_of(w);
	simworld *s = h->s;
	uint64_t span = s->work_max - s->work_min + 1;
	struct world_timer *e = ev_new(h, EV_WORK, 0);

	e->at = s->now + s->work_min + sim_rand(s) % span;
	e->work = fn;
	e->arg = arg;
	e->done = done;
	e->darg = darg;
	push_or_die(s, e);
}

static uint8_t *copy_bytes(const void *p, size_t len)
{
	uint8_t *b = xcalloc(1, len > 0 ? len : 1);

	if (len > 0)
		memcpy(b, p, len);
	return b;
}

/* A send to an address nobody answers at: refused, and one notice. */
static int refuse(simworld *s, shost *src, shost *dst, const char *addr)
{
	s->st.frames_refused++;
	if (dst != NULL) {
		schedule_peer_down(s, src, dst);
	} else {
		struct world_timer *e = ev_new(src, EV_PEER_DOWN, s->now + net_delay(s));
		size_t alen = strlen(addr) + 1;

		e->peer_addr = xcalloc(1, alen);
		memcpy(e->peer_addr, addr, alen);
		push_or_die(s, e);
	}
	return -EAGAIN;
}

static int w_send(world *w, const char *addr, const void *frame, size_t len)
{
	shost *src = host_of(w), *dst;
	simworld *s = src->s;
	const uint8_t *f = frame;
	struct world_timer *e;
	sim_link *l;
	uint64_t at;

	if (len < 4 || ((uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 |
			(uint32_t)f[2] << 8 | f[3]) != len - 4)
		return -EINVAL;
	if (!src->up) {
		s->st.frames_refused++;
		return -EAGAIN;
	}
	dst = host_find(s, addr);
	if (dst == NULL)
		return refuse(s, src, dst, addr);
	l = link_of(src, dst);
	if (l->down_pending) {
		s->st.frames_refused++;   /* in reconnect backoff */
		return -EAGAIN;
	}
	if (!dst->up || dst->nd == NULL)
		return refuse(s, src, dst, addr);
	s->st.frames_sent++;
	l->open = true;
	if (l->cut) {
		s->st.frames_dropped++;
		return 0;
	}
	if (chance(s, s->net.loss_ppm)) {
		s->st.frames_dropped++;
		link_break(s, src, dst);
		return 0;
	}
	at = s->now + net_delay(s);
	if (!s->net.reorder) {
		if (at < l->last_at)
			at = l->last_at;
		l->last_at = at;
	}
	e = ev_new(dst, EV_FRAME, at);
	e->peer = src;
	e->gen = l->gen;
	e->buf = copy_bytes(frame, len);
	e->len = len;
	push_or_die(s, e);
	return 0;
}

static void queue_dgram(simworld *s, shost *src, shost *dst, const void *buf, size_t len)
{
	struct world_timer *e = ev_new(dst, EV_DGRAM, s->now + net_delay(s));

	e->peer = src;
	e->buf = copy_bytes(buf, len);
	e->len = len;
	push_or_die(s, e);
}

static void w_dgram(world *w, const char *addr, const void *buf, size_t len)
{
	shost *src = host_of(w), *dst;
	simworld *s = src->s;

	if (!src->up)
		return;
	s->st.dgrams_sent++;
	dst = host_find(s, addr);
	if (dst == NULL || !dst->up || is_cut(src, dst) || chance(s, s->net.loss_ppm)) {
		s->st.dgrams_dropped++;
		return;
	}
	queue_dgram(s, src, dst, buf, len);
	if (chance(s, s->net.dup_ppm)) {
		s->st.dgrams_duplicated++;
		queue_dgram(s, src, dst, buf, len);
	}
}

static size_t w_connections(world *w)
{
	shost *h = host_of(w);
	size_t n = 0;

	for (size_t i = 0; i < h->nlinks; i++)
		n += h->links[i].open;
	return n;
}

static const world_ops sim_ops = {
	.now_ms = w_now,
	.now_us = w_now_us,
	.wall_ms = w_wall,
	.timer_add = w_timer_add,
	.timer_cancel = w_timer_cancel,
	.reply = w_reply,
	.durable = w_durable,
	.work = w_work,
	.send = w_send,
	.dgram = w_dgram,
	.connections = w_connections,
};

/* --- running events ------------------------------------------------------- */

static void run_frame(simworld *s, struct world_timer *e)
{
	shost *dst = e->host, *src = e->peer;
	sim_link *l = link_of(src, dst);
	int rc;

	if (!dst->up || e->gen != l->gen || l->cut) {
		s->st.frames_dropped++;
		return;
	}
	if (dst->nd == NULL) {
		s->st.frames_dropped++;
		link_break(s, src, dst);
		return;
	}
	s->st.frames_delivered++;
	rc = node_request(dst->nd, PEER_CLIENT_BASE | (uint64_t)src->idx << 16 | dst->idx,
			  e->buf + 4, e->len - 4);
	if (rc != 0)
		link_break(s, src, dst);   /* the receiver closes the connection */
}

static void run_event(simworld *s, struct world_timer *e)
{
	shost *h = e->host;

	switch (e->kind) {
	case EV_TIMER: {
		world_timer_fn fn = e->fn;
		void *arg = e->arg;

		free(e);   /* fired: the node must not cancel it now */
		fn(arg);
		return;
	}
	case EV_DURABLE: {
		int rc = e->fail_rc;

		for (size_t i = 0; rc == 0 && i < e->nstores; i++)
			rc = bitcask_sync_now(e->stores[i]);
		e->done(e->arg, rc);
		break;
	}
	case EV_WORK:
		/* the job, then its done as the next event due now */
		e->fail_rc = e->work(e->arg);
		e->kind = EV_WORK_DONE;
		push_or_die(s, e);
		return;
	case EV_WORK_DONE:
		e->done(e->darg, e->fail_rc);
		break;
	case EV_FRAME:
		run_frame(s, e);
		break;
	case EV_DGRAM:
		if (!h->up || h->nd == NULL || is_cut(e->peer, h)) {
			s->st.dgrams_dropped++;
			break;
		}
		s->st.dgrams_delivered++;
		node_datagram(h->nd, e->buf, e->len);
		break;
	case EV_PEER_DOWN:
		if (e->peer != NULL)
			link_of(h, e->peer)->down_pending = false;
		if (h->up && h->nd != NULL) {
			s->st.peer_downs++;
			node_peer_down(h->nd, e->peer != NULL ? e->peer->addr : e->peer_addr);
		}
		break;
	}
	ev_free(e);
}

bool sim_step(simworld *s)
{
	while (s->n > 0) {
		struct world_timer *e = pop(s);

		if (e->cancelled) {
			ev_free(e);
			continue;
		}
		if (e->host->paused) {
			hold(e->host, e);
			continue;
		}
		s->live--;
		if (e->at > s->now)
			s->now = e->at;
		run_event(s, e);
		return true;
	}
	return false;
}

void sim_run_for(simworld *s, uint64_t ms)
{
	uint64_t until = s->now + ms;

	while (s->n > 0) {
		struct world_timer *top = s->heap[0];

		/* skip cancelled and held tops without advancing time */
		if (top->cancelled) {
			ev_free(pop(s));
			continue;
		}
		if (top->at > until)
			break;
		if (top->host->paused) {
			hold(top->host, pop(s));
			continue;
		}
		sim_step(s);
	}
	if (s->now < until)
		s->now = until;
}

/* --- setup ---------------------------------------------------------------- */

static shost *host_get(simworld *s, const char *addr)
{
	shost *h = host_find(s, addr), **hosts;
	size_t alen;

	if (h != NULL)
		return h;
	h = calloc(1, sizeof(*h));
	hosts = realloc(s->hosts, (s->nhosts + 1) * sizeof(*hosts));
	if (h == NULL || hosts == NULL) {
		free(h);
		if (hosts != NULL)
			s->hosts = hosts;
		return NULL;
	}
	s->hosts = hosts;
	alen = strlen(addr) + 1;
	h->addr = malloc(alen);
	if (h->addr == NULL) {
		free(h);
		return NULL;
	}
	memcpy(h->addr, addr, alen);
	h->w.ops = &sim_ops;
	h->s = s;
	h->idx = s->nhosts;
	h->up = true;
	s->hosts[s->nhosts++] = h;
	return h;
}

void sim_net_opts_init(sim_net_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->delay_min_ms = 1;
	o->delay_max_ms = 3;
}

simworld *sim_new(uint64_t seed)
{
	simworld *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->rng = seed;
	s->seed = seed;
	s->sync_min = 1;
	s->sync_max = 5;
	s->work_min = 1;
	s->work_max = 20;
	sim_net_opts_init(&s->net);
	if (host_get(s, DEFAULT_ADDR) == NULL) {
		sim_free(s);
		return NULL;
	}
	return s;
}

static void free_list(struct world_timer *e)
{
	while (e != NULL) {
		struct world_timer *next = e->next;

		ev_free(e);
		e = next;
	}
}

void sim_free(simworld *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		ev_free(s->heap[i]);
	free(s->heap);
	free_list(s->orphans);
	for (size_t i = 0; i < s->nhosts; i++) {
		free_list(s->hosts[i]->held);
		free(s->hosts[i]->links);
		free(s->hosts[i]->addr);
		free(s->hosts[i]);
	}
	free(s->hosts);
	free(s);
}

world *sim_world(simworld *s)
{
	return &s->hosts[0]->w;
}

world *sim_host(simworld *s, const char *addr)
{
	shost *h = host_get(s, addr);

	return h != NULL ? &h->w : NULL;
}

void sim_host_attach(simworld *s, const char *addr, struct node *n)
{
	shost *h = host_get(s, addr);

	if (h == NULL)
		abort();
	h->nd = n;
}

const char *sim_world_addr(const world *w)
{
	return ((const shost *)w)->addr;
}

uint64_t sim_peer_client(const simworld *s, const char *src, const char *dst)
{
	shost *a = host_find(s, src), *b = host_find(s, dst);

	if (a == NULL || b == NULL)
		return 0;
	return PEER_CLIENT_BASE | (uint64_t)a->idx << 16 | b->idx;
}

void sim_on_reply(simworld *s, sim_reply_fn fn, void *ctx)
{
	s->reply = fn;
	s->reply_ctx = ctx;
}

void sim_on_reply_host(simworld *s, sim_host_reply_fn fn, void *ctx)
{
	s->host_reply = fn;
	s->host_reply_ctx = ctx;
}

void sim_set_sync_delay(simworld *s, uint64_t min_ms, uint64_t max_ms)
{
	s->sync_min = min_ms;
	s->sync_max = max_ms < min_ms ? min_ms : max_ms;
}

void sim_set_work_delay(simworld *s, uint64_t min_ms, uint64_t max_ms)
{
	s->work_min = min_ms;
	s->work_max = max_ms < min_ms ? min_ms : max_ms;
}

void sim_fail_syncs(simworld *s, int rc)
{
	s->sync_rc = rc;
}

void sim_fail_timers(simworld *s, uint32_t n)
{
	s->fail_timers = n;
}

uint64_t sim_now(const simworld *s)
{
	return s->now;
}

size_t sim_pending(const simworld *s)
{
	return s->live;
}

uint64_t sim_seed(const simworld *s)
{
	return s->seed;
}

uint64_t sim_seed_env(const char *name, uint64_t dflt)
{
	const char *env = getenv("DKV_SEED");
	uint64_t seed = env != NULL ? strtoull(env, NULL, 10) : dflt;

	fprintf(stderr, "%s: seed %" PRIu64 " (DKV_SEED=%" PRIu64 " replays it)\n",
		name, seed, seed);
	return seed;
}

void sim_net_set(simworld *s, const sim_net_opts *o)
{
	s->net = *o;
	if (s->net.delay_max_ms < s->net.delay_min_ms)
		s->net.delay_max_ms = s->net.delay_min_ms;
	if (s->net.loss_ppm > PPM)
		s->net.loss_ppm = PPM;
	if (s->net.dup_ppm > PPM)
		s->net.dup_ppm = PPM;
}

void sim_net_stats_get(const simworld *s, sim_net_stats *st)
{
	*st = s->st;
}

/* --- faults --------------------------------------------------------------- */

void sim_partition(simworld *s, const char *a, const char *b, bool cut)
{
	shost *ha = host_get(s, a), *hb = host_get(s, b);

	if (ha == NULL || hb == NULL)
		abort();
	link_of(ha, hb)->cut = cut;
	link_of(hb, ha)->cut = cut;
}

void sim_cut(simworld *s, const char *from, const char *to, bool cut)
{
	shost *hf = host_get(s, from), *ht = host_get(s, to);

	if (hf == NULL || ht == NULL)
		abort();
	link_of(hf, ht)->cut = cut;
}

/* What a crash of h does to one of its queued events: true if e is gone
 * (freed or orphaned) and must leave its queue. */
static bool crash_event(simworld *s, shost *h, struct world_timer *e)
{
	if (e->host != h || e->cancelled || e->kind == EV_DURABLE ||
	    e->kind == EV_WORK || e->kind == EV_WORK_DONE)
		return false;
	s->live--;
	switch (e->kind) {
	case EV_TIMER:
		e->orphan = true;
		e->next = s->orphans;
		s->orphans = e;
		return true;
	case EV_FRAME:
		s->st.frames_dropped++;
		break;
	case EV_DGRAM:
		s->st.dgrams_dropped++;
		break;
	default:
		break;
	}
	ev_free(e);
	return true;
}

void sim_crash(simworld *s, const char *addr)
{
	shost *h = host_find(s, addr);
	struct world_timer *held;
	size_t j = 0;

	if (h == NULL || !h->up)
		return;
	h->up = false;
	h->paused = false;
	for (size_t i = 0; i < s->n; i++) {
		struct world_timer *e = s->heap[i];

		if (!crash_event(s, h, e))
			s->heap[j++] = e;
	}
	s->n = j;
	for (size_t i = s->n / 2; i-- > 0;)
		sift_down(s, i);
	/* what waited on the pause: batches run, the rest goes */
	held = unhold(h);
	while (held != NULL) {
		struct world_timer *e = held, *next = held->next;

		if (e->cancelled) {
			ev_free(e);
		} else if (!crash_event(s, h, e)) {
			if (e->at < s->now)
				e->at = s->now;
			if (heap_insert(s, e) != 0)
				abort();
		}
		held = next;
	}
	for (size_t i = 0; i < h->nlinks; i++) {
		h->links[i].open = false;
		h->links[i].down_pending = false;   /* its notices were dropped */
	}
	for (size_t i = 0; i < s->nhosts; i++) {
		shost *x = s->hosts[i];

		if (x != h && link_of(x, h)->open)
			link_break(s, x, h);
	}
}

void sim_restart(simworld *s, const char *addr)
{
	shost *h = host_find(s, addr);

	if (h != NULL)
		h->up = true;
}

bool sim_host_up(const simworld *s, const char *addr)
{
	shost *h = host_find(s, addr);

	return h != NULL && h->up;
}

void sim_pause(simworld *s, const char *addr, bool paused)
{
	shost *h = host_find(s, addr);
	struct world_timer *held;

	if (h == NULL || !h->up || h->paused == paused)
		return;
	h->paused = paused;
	if (paused)
		return;
	/* back into the heap in the order they waited (their times only go up
	 * to now, and the fresh sequence numbers keep ties in that order) */
	held = unhold(h);
	while (held != NULL) {
		struct world_timer *e = held, *next = held->next;

		if (e->cancelled) {
			ev_free(e);
		} else {
			if (e->at < s->now)
				e->at = s->now;
			if (heap_insert(s, e) != 0)
				abort();
		}
		held = next;
	}
}
