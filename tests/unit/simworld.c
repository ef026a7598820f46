#include "config.h"
/*
 * simworld.c -- the simulated world; see simworld.h.
 */

#include <stdlib.h>
#include <string.h>

#include "simworld.h"

typedef enum ev_kind { EV_TIMER, EV_DURABLE } ev_kind;

/* One queued event.  Timers are handed out as world_timer pointers. */
struct world_timer {
	uint64_t at, seq;
	ev_kind kind;
	bool cancelled;
	world_timer_fn fn;         /* EV_TIMER */
	void *arg;
	bitcask **stores;          /* EV_DURABLE */
	size_t nstores;
	world_durable_fn done;
	int fail_rc;
};

struct simworld {
	world w;                   /* first: sim_world() returns &s->w */
	uint64_t now;              /* virtual ms */
	uint64_t seq;
	uint64_t rng;
	struct world_timer **heap;
	size_t n, cap;
	size_t live;               /* queued and not cancelled */
	sim_reply_fn reply;
	void *reply_ctx;
	uint64_t sync_min, sync_max;
	int sync_rc;
};

uint64_t sim_rand(simworld *s)
{
	/* splitmix64 */
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool before(const struct world_timer *a, const struct world_timer *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static int push(simworld *s, struct world_timer *e)
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
	s->live++;
	return 0;
}

static struct world_timer *pop(simworld *s)
{
	struct world_timer *top = s->heap[0], *last = s->heap[--s->n];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= s->n)
			break;
		if (c + 1 < s->n && before(s->heap[c + 1], s->heap[c]))
			c++;
		if (!before(s->heap[c], last))
			break;
		s->heap[i] = s->heap[c];
		i = c;
	}
	if (s->n > 0)
		s->heap[i] = last;
	return top;
}

static uint64_t w_now(world *w)
{
	return ((simworld *)w)->now;
}

static uint64_t w_wall(world *w)
{
	/* A fixed epoch plus virtual time: timestamps replay too. */
	return 1700000000000ull + ((simworld *)w)->now;
}

static world_timer *w_timer_add(world *w, uint64_t ms, world_timer_fn fn, void *arg)
{
	simworld *s = (simworld *)w;
	struct world_timer *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->kind = EV_TIMER;
	e->at = s->now + ms;
	e->fn = fn;
	e->arg = arg;
	if (push(s, e) != 0) {
		free(e);
		return NULL;
	}
	return e;
}

static void w_timer_cancel(world *w, world_timer *t)
{
	simworld *s = (simworld *)w;

	if (t == NULL || t->cancelled)
		return;
	t->cancelled = true;   /* freed when it reaches the top */
	s->live--;
}

static void w_reply(world *w, uint64_t client, const void *frame, size_t len)
{
	simworld *s = (simworld *)w;

	if (s->reply != NULL)
		s->reply(s->reply_ctx, client, frame, len);
}

static void w_durable(world *w, bitcask *const *stores, size_t n,
		      world_durable_fn done, void *arg)
{
	simworld *s = (simworld *)w;
	struct world_timer *e = calloc(1, sizeof(*e));
	uint64_t span = s->sync_max - s->sync_min + 1;

	if (e == NULL || (e->stores = malloc(n * sizeof(*stores))) == NULL)
		abort();   /* a test process out of memory */
	memcpy(e->stores, stores, n * sizeof(*stores));
	e->nstores = n;
	e->kind = EV_DURABLE;
	e->at = s->now + s->sync_min + sim_rand(s) % span;
	e->done = done;
	e->arg = arg;
	e->fail_rc = s->sync_rc;
	if (push(s, e) != 0)
		abort();
}

static const world_ops sim_ops = {
	.now_ms = w_now,
	.wall_ms = w_wall,
	.timer_add = w_timer_add,
	.timer_cancel = w_timer_cancel,
	.reply = w_reply,
	.durable = w_durable,
};

simworld *sim_new(uint64_t seed)
{
	simworld *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->w.ops = &sim_ops;
	s->rng = seed;
	s->sync_min = 1;
	s->sync_max = 5;
	return s;
}

void sim_free(simworld *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->heap[i]->stores);
		free(s->heap[i]);
	}
	free(s->heap);
	free(s);
}

world *sim_world(simworld *s)
{
	return &s->w;
}

void sim_on_reply(simworld *s, sim_reply_fn fn, void *ctx)
{
	s->reply = fn;
	s->reply_ctx = ctx;
}

void sim_set_sync_delay(simworld *s, uint64_t min_ms, uint64_t max_ms)
{
	s->sync_min = min_ms;
	s->sync_max = max_ms < min_ms ? min_ms : max_ms;
}

void sim_fail_syncs(simworld *s, int rc)
{
	s->sync_rc = rc;
}

bool sim_step(simworld *s)
{
	while (s->n > 0) {
		struct world_timer *e = pop(s);

		if (e->cancelled) {
			free(e);
			continue;
		}
		s->live--;
		if (e->at > s->now)
			s->now = e->at;
		if (e->kind == EV_TIMER) {
			world_timer_fn fn = e->fn;
			void *arg = e->arg;

			free(e);   /* fired: the node must not cancel it now */
			fn(arg);
		} else {
			int rc = e->fail_rc;

			for (size_t i = 0; rc == 0 && i < e->nstores; i++)
				rc = bitcask_sync_now(e->stores[i]);
			e->done(e->arg, rc);
			free(e->stores);
			free(e);
		}
		return true;
	}
	return false;
}

void sim_run_for(simworld *s, uint64_t ms)
{
	uint64_t until = s->now + ms;

	while (s->n > 0) {
		/* skip cancelled tops without advancing time */
		if (s->heap[0]->cancelled) {
			free(pop(s));
			continue;
		}
		if (s->heap[0]->at > until)
			break;
		sim_step(s);
	}
	if (s->now < until)
		s->now = until;
}

uint64_t sim_now(const simworld *s)
{
	return s->now;
}

size_t sim_pending(const simworld *s)
{
	return s->live;
}
