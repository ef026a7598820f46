/*
 * test_simworld.c -- the simulated cluster network of simworld.h, with
 * real nodes (N = 1, sync none) on two or three hosts.
 *
 * Frames are PINGs sent with a host's world->send(); the receiving node
 * counts them (node_stats pings) and answers each with a PONG through its
 * world->reply(), which the sim hands to our reply callback at once, so
 * the callback sees the order in which the frames were delivered and at
 * what virtual time.  Datagrams and peer-down notices are counted by the
 * nodes too (node_stats datagrams, peer_downs).  Every test runs from a
 * fixed seed except the one that prints it (DKV_SEED=N replays it).
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dkv_config.h"
#include "node.h"
#include "proto.h"
#include "simworld.h"

#define NH 3
#define MAXREC 4096

static const char *const addrs[NH] = { "10.0.0.1:7070", "10.0.0.2:7070", "10.0.0.3:7070" };
enum { A, B, C };

typedef struct host {
	char dir[64];
	dkv_config cfg;
	node *nd;
	world *w;
	const char *sync;     /* NULL: none */
} host;

/* Something the test saw happen: a reply, or one of its own timers. */
typedef struct rec {
	int host;
	char what;            /* 'R' reply, 'T' timer */
	uint64_t client;
	uint64_t id;          /* reply's request id, or the timer's tag */
	uint32_t type;
	uint64_t at;          /* virtual time */
} rec;

typedef struct cluster {
	simworld *sim;
	host h[NH];
	rec recs[MAXREC];
	size_t nrecs;
} cluster;

typedef struct tmr {
	cluster *cl;
	int host;
	uint64_t tag;
} tmr;

static int host_index(const char *addr)
{
	for (int i = 0; i < NH; i++)
		if (strcmp(addr, addrs[i]) == 0)
			return i;
	cr_assert_fail("reply from unknown host %s", addr);
	return -1;
}

static rec *add_rec(cluster *cl)
{
	cr_assert_lt(cl->nrecs, MAXREC, "too many records");
	return &cl->recs[cl->nrecs++];
}

static void on_reply(void *ctx, const char *addr, uint64_t client, const void *frame, size_t len)
{
	cluster *cl = ctx;
	proto_limits lim = { .max_key = 65535, .max_value = 1 << 20 };
	proto_msg m;
	char err[256];
	rec *r = add_rec(cl);

	cr_assert_geq(len, PROTO_HEADER_SIZE);
	cr_assert_eq(proto_decode((const uint8_t *)frame + PROTO_HEADER_SIZE, len - PROTO_HEADER_SIZE,
				  &lim, &m, err, sizeof(err)), 0, "%s", err);
	r->host = host_index(addr);
	r->what = 'R';
	r->client = client;
	r->id = m.id;
	r->type = m.type;
	r->at = sim_now(cl->sim);
	proto_msg_release(&m);
}

static void on_timer(void *arg)
{
	tmr *t = arg;
	rec *r = add_rec(t->cl);

	r->host = t->host;
	r->what = 'T';
	r->id = t->tag;
	r->at = sim_now(t->cl->sim);
}

static void open_node(cluster *cl, int i)
{
	host *h = &cl->h[i];
	const char *const set[][2] = {
		{ "data_dir", h->dir }, { "log_level", "error" }, { "n_val", "1" },
		{ "sync", h->sync != NULL ? h->sync : "none" }, { "listen", addrs[i] },
		{ "ring_size", "64" },
	};
	char err[512];

	dkv_config_free(&h->cfg);
	cr_assert_eq(dkv_config_init(&h->cfg), 0);
	for (size_t k = 0; k < sizeof(set) / sizeof(set[0]); k++)
		cr_assert_eq(dkv_config_set(&h->cfg, set[k][0], set[k][1], err, sizeof(err)), 0,
			     "%s", err);
	cr_assert_eq(node_open(&h->nd, &h->cfg, h->w, NULL, err, sizeof(err)), 0,
		     "node_open: %s", err);
	cr_assert_str_eq(node_addr(h->nd), addrs[i]);
	sim_host_attach(cl->sim, addrs[i], h->nd);
}

static void close_node(cluster *cl, int i)
{
	host *h = &cl->h[i];

	sim_host_attach(cl->sim, addrs[i], NULL);
	cr_assert_eq(node_close(h->nd), 0);
	h->nd = NULL;
}

/* A cluster of nh hosts with a node each; calloc'ed (the records are big). */
static cluster *cl_new(uint64_t seed, int nh)
{
	cluster *cl = calloc(1, sizeof(*cl));

	cr_assert_not_null(cl);
	cl->sim = sim_new(seed);
	cr_assert_not_null(cl->sim);
	sim_on_reply_host(cl->sim, on_reply, cl);
	for (int i = 0; i < nh; i++) {
		host *h = &cl->h[i];

		snprintf(h->dir, sizeof(h->dir), "/dev/shm/dkv-sim-XXXXXX");
		cr_assert_not_null(mkdtemp(h->dir));
		h->w = sim_host(cl->sim, addrs[i]);
		cr_assert_not_null(h->w);
		cr_assert_str_eq(sim_world_addr(h->w), addrs[i]);
		cr_assert_eq(dkv_config_init(&h->cfg), 0);
		open_node(cl, i);
	}
	return cl;
}

static void cl_free(cluster *cl)
{
	for (int i = 0; i < NH; i++) {
		host *h = &cl->h[i];
		char cmd[128];

		if (h->w == NULL)
			continue;
		if (h->nd != NULL)
			close_node(cl, i);
		dkv_config_free(&h->cfg);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", h->dir);
		cr_assert_eq(system(cmd), 0);
	}
	sim_free(cl->sim);
	free(cl);
}

static node_stats stats(cluster *cl, int i)
{
	node_stats st;

	node_stats_get(cl->h[i].nd, &st);
	return st;
}

static int send_ping(cluster *cl, int from, int to, uint64_t id)
{
	msgpack_sbuffer sb;
	int rc;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_ping(&sb, id), 0);
	rc = cl->h[from].w->ops->send(cl->h[from].w, addrs[to], sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void send_dgram(cluster *cl, int from, int to, const char *msg)
{
	cl->h[from].w->ops->dgram(cl->h[from].w, addrs[to], msg, strlen(msg));
}

/* Let every message in flight arrive (delays here are at most 100 ms).
 * The nodes' own timers keep the queue from ever emptying. */
static void drain(cluster *cl)
{
	sim_run_for(cl->sim, 300);
}

static size_t count_recs(const cluster *cl, char what, int hi)
{
	size_t n = 0;

	for (size_t i = 0; i < cl->nrecs; i++)
		n += cl->recs[i].what == what && cl->recs[i].host == hi;
	return n;
}

Test(simworld, a_ping_frame_arrives_later_and_is_answered)
{
	cluster *cl = cl_new(1, 2);
	size_t pending = sim_pending(cl->sim);
	sim_net_stats ns;

	cr_assert_eq(send_ping(cl, A, B, 77), 0);
	/* nothing happens inside send() */
	cr_assert_eq(stats(cl, B).pings, 0);
	cr_assert_eq(sim_pending(cl->sim), pending + 1);
	cr_assert_eq(cl->h[A].w->ops->connections(cl->h[A].w), 1);
	cr_assert_eq(cl->h[B].w->ops->connections(cl->h[B].w), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);
	cr_assert_eq(stats(cl, A).pings, 0);
	cr_assert_eq(cl->nrecs, 1);
	cr_assert_eq(cl->recs[0].host, B);
	cr_assert_eq(cl->recs[0].type, PROTO_PONG);
	cr_assert_eq(cl->recs[0].id, 77);
	cr_assert_eq(cl->recs[0].client, sim_peer_client(cl->sim, addrs[A], addrs[B]));
	cr_assert_neq(cl->recs[0].client, sim_peer_client(cl->sim, addrs[B], addrs[A]));
	/* the default delay is 1..3 ms */
	cr_assert_geq(cl->recs[0].at, 1);
	cr_assert_leq(cl->recs[0].at, 3);
	sim_net_stats_get(cl->sim, &ns);
	cr_assert_eq(ns.frames_sent, 1);
	cr_assert_eq(ns.frames_delivered, 1);
	cr_assert_eq(ns.frames_dropped, 0);
	cl_free(cl);
}

Test(simworld, the_default_host_is_sim_0)
{
	simworld *s = sim_new(3);

	cr_assert_not_null(s);
	cr_assert_str_eq(sim_world_addr(sim_world(s)), "sim:0");
	cr_assert_eq(sim_host(s, "sim:0"), sim_world(s));
	cr_assert_neq(sim_host(s, "x:1"), sim_world(s));
	cr_assert_eq(sim_host(s, "x:1"), sim_host(s, "x:1"));
	sim_free(s);
}

/* Send 100 pings A->B at once with delays 1..50 ms; the PONG ids give the
 * delivery order. */
static bool hundred_pings_in_order(bool reorder, uint64_t seed)
{
	cluster *cl = cl_new(seed, 2);
	sim_net_opts o;
	bool in_order = true;
	uint64_t last_at = 0;

	sim_net_opts_init(&o);
	o.delay_min_ms = 1;
	o.delay_max_ms = 50;
	o.reorder = reorder;
	sim_net_set(cl->sim, &o);
	for (uint64_t id = 1; id <= 100; id++)
		cr_assert_eq(send_ping(cl, A, B, id), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 100);
	cr_assert_eq(cl->nrecs, 100);
	for (size_t i = 0; i < cl->nrecs; i++) {
		cr_assert_geq(cl->recs[i].at, last_at, "virtual time went back");
		last_at = cl->recs[i].at;
		in_order &= cl->recs[i].id == i + 1;
	}
	cr_assert_leq(last_at, 50);
	cl_free(cl);
	return in_order;
}

Test(simworld, frames_of_one_pair_arrive_in_order)
{
	cr_assert(hundred_pings_in_order(false, 11));
	cr_assert(hundred_pings_in_order(false, 12));
}

Test(simworld, frames_overtake_with_reorder_on)
{
	cr_assert_not(hundred_pings_in_order(true, 11));
}

Test(simworld, frames_to_two_peers_are_independent)
{
	cluster *cl = cl_new(2, 3);

	for (uint64_t id = 1; id <= 20; id++) {
		cr_assert_eq(send_ping(cl, A, B, id), 0);
		cr_assert_eq(send_ping(cl, A, C, 100 + id), 0);
		cr_assert_eq(send_ping(cl, C, B, 200 + id), 0);
	}
	cr_assert_eq(cl->h[A].w->ops->connections(cl->h[A].w), 2);
	cr_assert_eq(cl->h[C].w->ops->connections(cl->h[C].w), 1);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 40);
	cr_assert_eq(stats(cl, C).pings, 20);
	/* per pair in order, told apart by the client id */
	for (int pair = 0; pair < 3; pair++) {
		uint64_t next = pair * 100 + 1;
		uint64_t client = pair == 0 ? sim_peer_client(cl->sim, addrs[A], addrs[B]) :
				  pair == 1 ? sim_peer_client(cl->sim, addrs[A], addrs[C]) :
					      sim_peer_client(cl->sim, addrs[C], addrs[B]);

		for (size_t i = 0; i < cl->nrecs; i++)
			if (cl->recs[i].client == client)
				cr_assert_eq(cl->recs[i].id, next++, "pair %d", pair);
		cr_assert_eq(next, pair * 100 + 21, "pair %d", pair);
	}
	cl_free(cl);
}

Test(simworld, datagrams_are_delivered_to_node_datagram)
{
	cluster *cl = cl_new(4, 3);
	sim_net_stats ns;

	for (int i = 0; i < 10; i++)
		send_dgram(cl, A, B, "gossip");
	send_dgram(cl, C, B, "");   /* empty is a datagram too */
	send_dgram(cl, B, A, "x");
	cr_assert_eq(stats(cl, B).datagrams, 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).datagrams, 11);
	cr_assert_eq(stats(cl, A).datagrams, 1);
	cr_assert_eq(stats(cl, C).datagrams, 0);
	sim_net_stats_get(cl->sim, &ns);
	cr_assert_eq(ns.dgrams_sent, 12);
	cr_assert_eq(ns.dgrams_delivered, 12);
	cr_assert_eq(ns.dgrams_dropped + ns.dgrams_duplicated, 0);
	cl_free(cl);
}

/* 1000 datagrams A->B with 30% loss and 10% duplication: how many the node
 * got, checking the stats' books balance. */
static uint64_t lossy_dgrams(uint64_t seed)
{
	cluster *cl = cl_new(seed, 2);
	sim_net_opts o;
	sim_net_stats ns;
	uint64_t got;

	sim_net_opts_init(&o);
	o.loss_ppm = 300000;
	o.dup_ppm = 100000;
	o.delay_max_ms = 20;
	sim_net_set(cl->sim, &o);
	for (int i = 0; i < 1000; i++) {
		send_dgram(cl, A, B, "g");
		if (i % 10 == 9)
			sim_run_for(cl->sim, 1);
	}
	drain(cl);
	got = stats(cl, B).datagrams;
	sim_net_stats_get(cl->sim, &ns);
	cr_assert_eq(ns.dgrams_sent, 1000);
	cr_assert_eq(ns.dgrams_delivered, got);
	cr_assert_eq(ns.dgrams_sent + ns.dgrams_duplicated, ns.dgrams_delivered + ns.dgrams_dropped);
	/* 700 +- 5 sigma (sigma ~ 14.5) get through; about 10% of them twice */
	cr_assert_geq(ns.dgrams_dropped, 227);
	cr_assert_leq(ns.dgrams_dropped, 373);
	cr_assert_geq(ns.dgrams_duplicated, 30);
	cr_assert_leq(ns.dgrams_duplicated, 120);
	cl_free(cl);
	return got;
}

Test(simworld, lossy_datagrams_replay_from_the_seed)
{
	uint64_t a = lossy_dgrams(21), b = lossy_dgrams(21), c = lossy_dgrams(22);

	cr_assert_geq(a, 650);
	cr_assert_leq(a, 890);
	cr_assert_eq(a, b, "same seed, %" PRIu64 " then %" PRIu64 " datagrams", a, b);
	cr_assert_neq(a, c, "seeds 21 and 22 both gave %" PRIu64, a);
}

/* The datagrams also reorder: with a random seed (printed), their arrival
 * order differs from the sending order, and the same seed gives the same
 * arrival order. */
static void reorder_run(uint64_t seed, uint64_t *ats, size_t n)
{
	cluster *cl = cl_new(seed, 2);
	sim_net_opts o;

	sim_net_opts_init(&o);
	o.delay_max_ms = 100;
	sim_net_set(cl->sim, &o);
	for (size_t i = 0; i < n; i++)
		send_dgram(cl, A, B, "g");
	for (size_t i = 0; i < n; i++) {
		do
			cr_assert(sim_step(cl->sim));
		while (stats(cl, B).datagrams == i);
		cr_assert_eq(stats(cl, B).datagrams, i + 1);
		ats[i] = sim_now(cl->sim);
		cr_assert_leq(ats[i], 100);
	}
	cl_free(cl);
}

Test(simworld, a_random_seed_replays)
{
	uint64_t seed = sim_seed_env("simworld/a_random_seed_replays", (uint64_t)time(NULL));
	uint64_t a[50], b[50];

	reorder_run(seed, a, 50);
	reorder_run(seed, b, 50);
	cr_assert_arr_eq(a, b, sizeof(a), "seed %" PRIu64 " did not replay", seed);
}

Test(simworld, a_one_way_cut_drops_one_direction_only)
{
	cluster *cl = cl_new(5, 3);

	sim_cut(cl->sim, addrs[A], addrs[B], true);
	cr_assert_eq(send_ping(cl, A, B, 1), 0);   /* queued, then lost */
	cr_assert_eq(send_ping(cl, B, A, 2), 0);
	send_dgram(cl, A, B, "g");
	send_dgram(cl, B, A, "g");
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 0);
	cr_assert_eq(stats(cl, A).pings, 1, "the other direction still works");
	cr_assert_eq(stats(cl, B).datagrams, 0);
	cr_assert_eq(stats(cl, A).datagrams, 1);
	cr_assert_eq(stats(cl, A).peer_downs, 0, "a cut is silent");
	sim_cut(cl->sim, addrs[A], addrs[B], false);
	cr_assert_eq(send_ping(cl, A, B, 3), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);
	cl_free(cl);
}

Test(simworld, a_partition_drops_both_ways_silently_and_heals)
{
	cluster *cl = cl_new(5, 3);
	sim_net_stats ns;

	cr_assert_eq(send_ping(cl, A, B, 1), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);

	sim_partition(cl->sim, addrs[A], addrs[B], true);
	cr_assert_eq(send_ping(cl, A, B, 2), 0);   /* queued, then lost */
	cr_assert_eq(send_ping(cl, B, A, 3), 0);
	send_dgram(cl, A, B, "g");
	send_dgram(cl, B, A, "g");
	cr_assert_eq(send_ping(cl, A, C, 4), 0);   /* others still talk */
	send_dgram(cl, C, B, "g");
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);
	cr_assert_eq(stats(cl, A).pings, 0);
	cr_assert_eq(stats(cl, C).pings, 1);
	cr_assert_eq(stats(cl, A).datagrams, 0);
	cr_assert_eq(stats(cl, B).datagrams, 1);
	cr_assert_eq(stats(cl, A).peer_downs, 0, "a partition is silent");
	cr_assert_eq(stats(cl, B).peer_downs, 0, "a partition is silent");

	/* a frame in flight when the cut happens is lost too */
	sim_partition(cl->sim, addrs[A], addrs[B], false);
	cr_assert_eq(send_ping(cl, A, B, 5), 0);
	sim_partition(cl->sim, addrs[A], addrs[B], true);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);

	/* and so is one sent while cut, even if the cut heals before it
	 * would have arrived */
	cr_assert_eq(send_ping(cl, A, B, 6), 0);
	sim_partition(cl->sim, addrs[A], addrs[B], false);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);

	cr_assert_eq(send_ping(cl, A, B, 6), 0);
	cr_assert_eq(send_ping(cl, B, A, 7), 0);
	send_dgram(cl, A, B, "g");
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 2);
	cr_assert_eq(stats(cl, A).pings, 1);
	cr_assert_eq(stats(cl, B).datagrams, 2);
	sim_net_stats_get(cl->sim, &ns);
	cr_assert_eq(ns.frames_sent, 8);
	cr_assert_eq(ns.frames_dropped, 4);
	cr_assert_eq(ns.frames_delivered, 4);
	cr_assert_eq(ns.peer_downs, 0);
	cl_free(cl);
}

Test(simworld, a_crash_tells_the_sender_and_a_restart_serves_again)
{
	cluster *cl = cl_new(6, 3);
	tmr t = { cl, B, 1 };
	world_timer *bt, *bt2;
	sim_net_stats ns;

	cr_assert_eq(send_ping(cl, A, B, 1), 0);
	cr_assert_eq(send_ping(cl, C, B, 2), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 2);
	cr_assert_eq(cl->h[A].w->ops->connections(cl->h[A].w), 1);

	/* B crashes with a frame in flight to it and a timer set */
	bt = cl->h[B].w->ops->timer_add(cl->h[B].w, 5, on_timer, &t);
	cr_assert_not_null(bt);
	cr_assert_eq(send_ping(cl, A, B, 3), 0);
	sim_crash(cl->sim, addrs[B]);
	cr_assert_not(sim_host_up(cl->sim, addrs[B]));
	cr_assert_eq(stats(cl, A).peer_downs, 0, "notices are events, not calls inside crash");
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 2, "the frame in flight to it was dropped");
	cr_assert_eq(count_recs(cl, 'T', B), 0, "a crashed host's timer fired");
	cr_assert_eq(stats(cl, A).peer_downs, 1);
	cr_assert_eq(stats(cl, C).peer_downs, 1);
	cr_assert_eq(cl->h[A].w->ops->connections(cl->h[A].w), 0);

	/* a timer it sets while down never fires either */
	bt2 = cl->h[B].w->ops->timer_add(cl->h[B].w, 1, on_timer, &t);
	cr_assert_not_null(bt2);
	drain(cl);
	cr_assert_eq(count_recs(cl, 'T', B), 0, "a crashed host's timer fired");

	/* connecting to it now is refused, with a notice */
	cr_assert_eq(send_ping(cl, A, B, 4), -EAGAIN);
	cr_assert_eq(send_ping(cl, A, B, 5), -EAGAIN);
	drain(cl);
	cr_assert_eq(stats(cl, A).peer_downs, 2, "one notice per burst of refused sends");

	/* the test closes the node (its timer is still cancellable), restarts */
	cl->h[B].w->ops->timer_cancel(cl->h[B].w, bt);
	cl->h[B].w->ops->timer_cancel(cl->h[B].w, bt2);
	close_node(cl, B);
	sim_restart(cl->sim, addrs[B]);
	cr_assert(sim_host_up(cl->sim, addrs[B]));
	open_node(cl, B);
	cr_assert_eq(send_ping(cl, A, B, 6), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);
	cr_assert_eq(cl->recs[cl->nrecs - 1].id, 6);
	cr_assert_eq(stats(cl, A).peer_downs, 2);
	sim_net_stats_get(cl->sim, &ns);
	cr_assert_eq(ns.frames_refused, 2);
	cr_assert_eq(ns.frames_sent, ns.frames_delivered + ns.frames_dropped);
	cr_assert_eq(ns.frames_dropped, 1);
	cr_assert_eq(ns.peer_downs, 3);
	cl_free(cl);
}

Test(simworld, unknown_and_detached_addresses_refuse)
{
	cluster *cl = cl_new(7, 2);

	cr_assert_eq(send_ping(cl, A, C, 1), -EAGAIN);   /* no such host */
	drain(cl);
	cr_assert_eq(stats(cl, A).peer_downs, 1);
	sim_host_attach(cl->sim, addrs[B], NULL);
	cr_assert_eq(send_ping(cl, A, B, 2), -EAGAIN);
	drain(cl);
	cr_assert_eq(stats(cl, A).peer_downs, 2);
	sim_host_attach(cl->sim, addrs[B], cl->h[B].nd);
	cr_assert_eq(send_ping(cl, A, B, 3), 0);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);
	cl_free(cl);
}

Test(simworld, a_lost_frame_breaks_the_connection)
{
	cluster *cl = cl_new(8, 2);
	sim_net_opts o;

	sim_net_opts_init(&o);
	cr_assert_eq(send_ping(cl, A, B, 1), 0);   /* in flight on the old connection */
	o.loss_ppm = 1000000;
	sim_net_set(cl->sim, &o);
	cr_assert_eq(send_ping(cl, A, B, 2), 0);   /* lost: breaks it */
	cr_assert_eq(cl->h[A].w->ops->connections(cl->h[A].w), 0);
	cr_assert_eq(send_ping(cl, A, B, 3), -EAGAIN, "sends before the notice are refused");
	sim_net_opts_init(&o);
	sim_net_set(cl->sim, &o);
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 0, "frames in flight on a broken connection are dropped");
	cr_assert_eq(stats(cl, A).peer_downs, 1);
	cr_assert_eq(send_ping(cl, A, B, 4), 0);   /* reconnects */
	drain(cl);
	cr_assert_eq(stats(cl, B).pings, 1);
	cr_assert_eq(cl->recs[0].id, 4);
	cl_free(cl);
}

Test(simworld, a_paused_host_runs_nothing_until_resumed)
{
	cluster *cl = cl_new(9, 2);
	tmr tb1 = { cl, B, 1 }, tb2 = { cl, B, 2 }, ta = { cl, A, 3 };
	world *wb = cl->h[B].w, *wa = cl->h[A].w;
	size_t pending = sim_pending(cl->sim);

	sim_pause(cl->sim, addrs[B], true);
	cr_assert_not_null(wb->ops->timer_add(wb, 10, on_timer, &tb1));
	cr_assert_not_null(wb->ops->timer_add(wb, 150, on_timer, &tb2));
	cr_assert_not_null(wa->ops->timer_add(wa, 20, on_timer, &ta));
	cr_assert_eq(send_ping(cl, A, B, 1), 0);    /* due at 1..3 */
	send_dgram(cl, A, B, "g");
	sim_run_for(cl->sim, 100);
	cr_assert_eq(sim_now(cl->sim), 100);
	cr_assert_eq(stats(cl, B).pings, 0);
	cr_assert_eq(stats(cl, B).datagrams, 0);
	cr_assert_eq(cl->nrecs, 1, "only A's timer ran");
	cr_assert_eq(cl->recs[0].id, 3);
	cr_assert_eq(cl->recs[0].at, 20);
	cr_assert_eq(sim_pending(cl->sim), pending + 4, "held events still count");

	sim_pause(cl->sim, addrs[B], false);
	sim_run_for(cl->sim, 200);
	cr_assert_eq(stats(cl, B).pings, 1);
	cr_assert_eq(stats(cl, B).datagrams, 1);
	/* the PONG, then timer 1 (their order when due) at the resume time,
	 * then timer 2 at its own time */
	cr_assert_eq(cl->nrecs, 4);
	cr_assert_eq(cl->recs[1].what, 'R');
	cr_assert_eq(cl->recs[1].id, 1);
	cr_assert_eq(cl->recs[1].at, 100);
	cr_assert_eq(cl->recs[2].what, 'T');
	cr_assert_eq(cl->recs[2].id, 1);
	cr_assert_eq(cl->recs[2].at, 100);
	cr_assert_eq(cl->recs[3].id, 2);
	cr_assert_eq(cl->recs[3].at, 150);
	cr_assert_eq(sim_pending(cl->sim), pending);
	cl_free(cl);
}

/* A cluster of nh hosts without nodes: only the test's timers run. */
static cluster *bare_new(uint64_t seed, int nh)
{
	cluster *cl = calloc(1, sizeof(*cl));

	cr_assert_not_null(cl);
	cl->sim = sim_new(seed);
	cr_assert_not_null(cl->sim);
	for (int i = 0; i < nh; i++)
		cl->h[i].w = sim_host(cl->sim, addrs[i]);
	return cl;
}

static void bare_free(cluster *cl)
{
	sim_free(cl->sim);
	free(cl);
}

Test(simworld, held_events_keep_their_time_order)
{
	cluster *cl = bare_new(10, 2);
	tmr late = { cl, B, 1 }, early = { cl, B, 2 }, other = { cl, A, 3 };
	world *wb = cl->h[B].w, *wa = cl->h[A].w;

	sim_pause(cl->sim, addrs[B], true);
	cr_assert_not_null(wb->ops->timer_add(wb, 50, on_timer, &late));
	/* sim_step reaches past the paused timer and finds nothing to run */
	cr_assert_not(sim_step(cl->sim));
	cr_assert_eq(sim_now(cl->sim), 0);
	cr_assert_not_null(wb->ops->timer_add(wb, 5, on_timer, &early));
	cr_assert_not_null(wa->ops->timer_add(wa, 70, on_timer, &other));
	/* holding B's timer must not make run_for run past its bound */
	sim_run_for(cl->sim, 60);
	cr_assert_eq(sim_now(cl->sim), 60);
	cr_assert_eq(cl->nrecs, 0);
	cr_assert_eq(sim_pending(cl->sim), 3);
	sim_pause(cl->sim, addrs[B], false);
	while (sim_step(cl->sim))
		;
	cr_assert_eq(sim_pending(cl->sim), 0);
	cr_assert_eq(cl->nrecs, 3);
	cr_assert_eq(cl->recs[0].id, 2, "the timer due first runs first");
	cr_assert_eq(cl->recs[1].id, 1);
	cr_assert_eq(cl->recs[0].at, 60);
	cr_assert_eq(cl->recs[1].at, 60);
	cr_assert_eq(cl->recs[2].id, 3);
	cr_assert_eq(cl->recs[2].at, 70);
	bare_free(cl);
}

Test(simworld, step_and_run_for_interleave_the_hosts_by_time)
{
	cluster *cl = bare_new(13, 3);
	tmr t[6];
	const uint64_t due[6] = { 30, 10, 20, 10, 40, 25 };

	for (int i = 0; i < 6; i++) {
		world *w = cl->h[i % 3].w;

		t[i] = (tmr){ cl, i % 3, (uint64_t)i };
		cr_assert_not_null(w->ops->timer_add(w, due[i], on_timer, &t[i]));
	}
	cr_assert(sim_step(cl->sim));
	cr_assert_eq(sim_now(cl->sim), 10);
	cr_assert_eq(cl->recs[0].id, 1);
	cr_assert(sim_step(cl->sim));
	cr_assert_eq(sim_now(cl->sim), 10);
	cr_assert_eq(cl->recs[1].id, 3, "ties run in the order scheduled");
	sim_run_for(cl->sim, 15);   /* to 25: the timers at 20 and 25 */
	cr_assert_eq(sim_now(cl->sim), 25);
	cr_assert_eq(cl->nrecs, 4);
	cr_assert_eq(cl->recs[2].id, 2);
	cr_assert_eq(cl->recs[3].id, 5);
	cr_assert_eq(sim_pending(cl->sim), 2);
	while (sim_step(cl->sim))
		;
	cr_assert_eq(sim_now(cl->sim), 40);
	cr_assert_eq(sim_pending(cl->sim), 0);
	cr_assert_eq(cl->recs[4].id, 0);
	cr_assert_eq(cl->recs[5].id, 4);
	cr_assert_eq(cl->recs[5].host, 1);
	bare_free(cl);
}

Test(simworld, a_crash_during_a_sync_still_lets_the_node_close)
{
	cluster *cl = cl_new(14, 2);
	msgpack_sbuffer sb;
	uint64_t t0;

	close_node(cl, B);
	cl->h[B].sync = "always";
	open_node(cl, B);
	sim_set_sync_delay(cl->sim, 10, 10);
	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_put(&sb, 5, "k", 1, "v", 1, NULL, 0, NULL), 0);
	cr_assert_eq(node_request(cl->h[B].nd, 1, sb.data + PROTO_HEADER_SIZE,
				  sb.size - PROTO_HEADER_SIZE), 0);
	msgpack_sbuffer_destroy(&sb);
	cr_assert_gt(node_inflight(cl->h[B].nd), 0, "the put waits for its sync");
	t0 = sim_now(cl->sim);
	sim_crash(cl->sim, addrs[B]);
	while (node_inflight(cl->h[B].nd) > 0 && sim_now(cl->sim) < t0 + 1000)
		cr_assert(sim_step(cl->sim));
	cr_assert_eq(node_inflight(cl->h[B].nd), 0);
	cr_assert_eq(sim_now(cl->sim), t0 + 10, "the batch ran at its time");
	cr_assert_eq(cl->nrecs, 0, "a crashed host's reply got out");
	close_node(cl, B);   /* asserts node_close() == 0 */
	cl_free(cl);
}

/* --- work() ---------------------------------------------------------------- */

/* What the work jobs of one run did: 'F' fn ran, 'D' done ran, 'T' a timer. */
typedef struct wrec {
	char what;
	int tag;
	int rc;               /* F: what fn returned; D: what done got */
	uint64_t at;          /* virtual time */
} wrec;

typedef struct wrun {
	simworld *sim;
	world *w;
	wrec recs[256];
	size_t n;
	bool in_call;         /* true iff inside a work() call */
	uint64_t called_at[64];   /* by tag: virtual time of the work() call */
} wrun;

static wrun WR;

static void wrec_add(char what, int tag, int rc)
{
	cr_assert_lt(WR.n, sizeof(WR.recs) / sizeof(WR.recs[0]));
	WR.recs[WR.n++] = (wrec){ what, tag, rc, sim_now(WR.sim) };
}

static int work_fn(void *arg)
{
	int tag = (int)(intptr_t)arg;

	cr_assert(!WR.in_call, "fn of job %d ran inside the work() call", tag);
	wrec_add('F', tag, -tag);
	return -tag;
}

static void work_done(void *arg, int rc)
{
	int tag = (int)(intptr_t)arg;

	cr_assert(!WR.in_call, "done of job %d ran inside the work() call", tag);
	wrec_add('D', tag, rc);
}

static void queue_work(int tag)
{
	WR.called_at[tag] = sim_now(WR.sim);
	WR.in_call = true;
	WR.w->ops->work(WR.w, work_fn, (void *)(intptr_t)tag, work_done, (void *)(intptr_t)tag);
	WR.in_call = false;
}

/* A timer that queues job tag + 32 from the loop, as a node would. */
static void work_timer(void *arg)
{
	int tag = (int)(intptr_t)arg;

	wrec_add('T', tag, 0);
	queue_work(tag + 32);
}

/* 16 jobs queued at 0, 8 timers at 0..21 ms each queueing one more; run
 * to the end.  The records are in WR. */
static void work_run(uint64_t seed)
{
	memset(&WR, 0, sizeof(WR));
	cr_assert_not_null(WR.sim = sim_new(seed));
	WR.w = sim_world(WR.sim);
	for (int i = 0; i < 16; i++)
		queue_work(i);
	for (int i = 0; i < 8; i++)
		cr_assert_not_null(WR.w->ops->timer_add(WR.w, (uint64_t)i * 3, work_timer,
							(void *)(intptr_t)i));
	while (sim_step(WR.sim))
		;
	cr_assert_eq(sim_pending(WR.sim), 0);
	sim_free(WR.sim);
}

Test(simworld, work_jobs_run_at_seeded_times_and_replay_exactly)
{
	wrec first[256];
	size_t nfirst;

	work_run(77);
	memcpy(first, WR.recs, sizeof(first));
	nfirst = WR.n;
	cr_assert_eq(nfirst, 2 * (16 + 8) + 8, "every fn and done ran once, and every timer");
	for (size_t i = 0; i < nfirst; i++) {
		const wrec *r = &first[i];
		size_t j;

		if (r->what != 'F')
			continue;
		cr_assert_geq(r->at, WR.called_at[r->tag] + 1, "job %d ran before its delay", r->tag);
		cr_assert_leq(r->at, WR.called_at[r->tag] + 20, "job %d ran after its delay", r->tag);
		for (j = i + 1; j < nfirst && !(first[j].what == 'D' && first[j].tag == r->tag); j++)
			;
		cr_assert_lt(j, nfirst, "job %d: done never ran after fn", r->tag);
		cr_assert_eq(first[j].rc, r->rc, "done gets what fn returned");
		cr_assert_eq(first[j].at, r->at, "done follows fn at the same virtual time");
	}

	work_run(77);
	cr_assert_eq(WR.n, nfirst);
	for (size_t i = 0; i < nfirst; i++)
		cr_assert(WR.recs[i].what == first[i].what && WR.recs[i].tag == first[i].tag &&
			  WR.recs[i].at == first[i].at,
			  "seed 77 replayed differently at record %zu: %c%d@%" PRIu64 " vs %c%d@%" PRIu64,
			  i, WR.recs[i].what, WR.recs[i].tag, WR.recs[i].at,
			  first[i].what, first[i].tag, first[i].at);

	work_run(78);
	bool same = WR.n == nfirst;
	for (size_t i = 0; same && i < nfirst; i++)
		same = WR.recs[i].tag == first[i].tag && WR.recs[i].at == first[i].at;
	cr_assert(!same, "the times come from the seed: seed 78 ran as seed 77");
}

Test(simworld, work_waits_while_its_host_is_paused_and_survives_a_crash)
{
	memset(&WR, 0, sizeof(WR));
	cr_assert_not_null(WR.sim = sim_new(5));
	WR.w = sim_host(WR.sim, addrs[A]);
	sim_set_work_delay(WR.sim, 10, 10);
	queue_work(1);
	sim_pause(WR.sim, addrs[A], true);
	sim_run_for(WR.sim, 50);
	cr_assert_eq(WR.n, 0, "a paused host's job ran");
	sim_pause(WR.sim, addrs[A], false);
	queue_work(2);
	sim_crash(WR.sim, addrs[A]);
	while (sim_step(WR.sim))
		;
	cr_assert_eq(WR.n, 4, "both jobs and their dones ran, the second after a crash");
	cr_assert_eq(WR.recs[0].tag, 1);
	cr_assert_eq(WR.recs[0].at, 50, "held, then run at the resume time");
	cr_assert_eq(WR.recs[3].tag, 2);
	cr_assert_eq(WR.recs[3].at, 60);
	sim_free(WR.sim);
}
