#include "config.h"
/*
 * test_net.c -- the peer operations of the production world (src/net.c):
 * send(), dgram(), connections() and node_peer_down(), over real sockets
 * on 127.0.0.1.
 *
 * Each side is a net and a node on its own event_base, both in this
 * process; the test turns both loops (EVLOOP_NONBLOCK) until what it waits
 * for holds, or fails after a generous deadline (10 s; loopback needs
 * milliseconds).  Side B's node is opened on a tap: a world that passes
 * every operation to B's net and records the ids of the PONGs the node
 * sends, so the order in which B's node saw A's pings can be checked.
 *
 * The pool (durable(), work()) and the client connections' framing are
 * tested here too, through net_int.h where a test must reach inside: the
 * connection generation near its limit, allocations that fail.
 *
 * Ports are picked at random below the ephemeral range (as
 * tests/integration/lib.sh does), so outbound connections' local ports
 * cannot take them, and a start that loses its port to another process
 * retries with another.
 */

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <msgpack.h>

#include "bitcask.h"
#include "dkv_config.h"
#include "error.h"
#include "net_int.h"
#include "node.h"
#include "peer.h"
#include "proto.h"

#define DEADLINE_MS 10000
#define MAX_PONGS 256

/* A world that forwards to inner and records the PONGs the node sends. */
typedef struct tap {
	world w;                   /* first: the node is opened on &tap->w */
	world *inner;              /* the side's net world */
	uint64_t pongs[MAX_PONGS]; /* request ids of PONG replies, in order */
	size_t npongs;
} tap;

typedef struct side {
	char dir[64];              /* data directory (mkdtemp) */
	char addr[32];             /* "HOST:PORT" */
	const char *host;          /* the listen host; NULL: 127.0.0.1 */
	uint16_t port;
	dkv_config cfg;
	struct event_base *base;
	net *nt;
	node *nd;
	world *w;                  /* the net's world (send, dgram, ...) */
	tap tap;
	bool open;                 /* true iff nt and nd are open */
} side;

static side A, B;

/* --- the tap -------------------------------------------------------------- */

static uint64_t tap_now_ms(world *w)
{
	tap *t = (tap *)w;

	return t->inner->ops->now_ms(t->inner);
}

static uint64_t tap_wall_ms(world *w)
{
	tap *t = (tap *)w;

	return t->inner->ops->wall_ms(t->inner);
}

static world_timer *tap_timer_add(world *w, uint64_t ms, world_timer_fn fn, void *arg)
{
	tap *t = (tap *)w;

	return t->inner->ops->timer_add(t->inner, ms, fn, arg);
}

static void tap_timer_cancel(world *w, world_timer *tm)
{
	tap *t = (tap *)w;

	t->inner->ops->timer_cancel(t->inner, tm);
}

static void tap_reply(world *w, uint64_t client, const void *frame, size_t len)
{
	tap *t = (tap *)w;
	proto_limits lim = { 1024, 1024 };
	proto_msg m;

	cr_assert_geq(len, PROTO_HEADER_SIZE);
	if (proto_decode((const uint8_t *)frame + PROTO_HEADER_SIZE, len - PROTO_HEADER_SIZE,
			 &lim, &m, NULL, 0) == 0) {
		if (m.type == PROTO_PONG) {
			cr_assert_lt(t->npongs, MAX_PONGS);
			t->pongs[t->npongs++] = m.id;
		}
		proto_msg_release(&m);
	}
	t->inner->ops->reply(t->inner, client, frame, len);
}

static void tap_durable(world *w, bitcask *const *stores, size_t n,
			world_durable_fn done, void *arg)
{
	tap *t = (tap *)w;

	t->inner->ops->durable(t->inner, stores, n, done, arg);
}

static void tap_work(world *w, world_work_fn fn, void *arg, world_done_fn done, void *darg)
{
	tap *t = (tap *)w;

	t->inner->ops->work(t->inner, fn, arg, done, darg);
}

static int tap_send(world *w, const char *addr, const void *frame, size_t len)
{
	tap *t = (tap *)w;

	return t->inner->ops->send(t->inner, addr, frame, len);
}

static void tap_dgram(world *w, const char *addr, const void *buf, size_t len)
{
	tap *t = (tap *)w;

	t->inner->ops->dgram(t->inner, addr, buf, len);
}

static size_t tap_connections(world *w)
{
	tap *t = (tap *)w;

	return t->inner->ops->connections(t->inner);
}

static const world_ops tap_ops = {
	.now_ms = tap_now_ms,
	.wall_ms = tap_wall_ms,
	.timer_add = tap_timer_add,
	.timer_cancel = tap_timer_cancel,
	.reply = tap_reply,
	.durable = tap_durable,
	.work = tap_work,
	.send = tap_send,
	.dgram = tap_dgram,
	.connections = tap_connections,
};

/* --- sides ---------------------------------------------------------------- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A port below the ephemeral range (32768-) that TCP and UDP can bind now. */
static uint16_t pick_port(void)
{
	for (;;) {
		uint16_t port = (uint16_t)(20000 + rand() % 12000);
		struct sockaddr_in sa;
		int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
		bool ok;

		cr_assert(t >= 0 && u >= 0);
		memset(&sa, 0, sizeof(sa));
		sa.sin_family = AF_INET;
		sa.sin_port = htons(port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ok = bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		     bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(t);
		close(u);
		if (ok)
			return port;
	}
}

static void set(side *s, const char *key, const char *value)
{
	char e[256];

	cr_assert_eq(dkv_config_set(&s->cfg, key, value, e, sizeof(e)), 0, "%s: %s", key, e);
}

static void side_close(side *s)
{
	if (s->open) {
		int rc;

		/* a background job (an anti-entropy tree build) may still run on
		 * the pool: the close waits for it, running the loop */
		for (int i = 0; (rc = node_close(s->nd)) == DKV_EBUSY && i < 1000; i++)
			event_base_loop(s->base, EVLOOP_ONCE);
		cr_assert_eq(rc, 0, "node_close: %s", dkv_strerror(rc));
		net_close(s->nt);
		s->open = false;
	}
}

/* Open s: net, node (on the tap when tapped), net_start on a free port.
 * settings: "key=value" strings, NULL-terminated (or NULL). */
static void side_open(side *s, bool tapped, const char *const *settings)
{
	char err[512];
	int rc = 0;

	if (s->dir[0] == '\0') {
		strcpy(s->dir, "/tmp/test_net.XXXXXX");
		cr_assert_not_null(mkdtemp(s->dir));
	}
	if (s->base == NULL)
		cr_assert_not_null(s->base = event_base_new());
	for (int try = 0; try < 20; try++) {
		char port[8];

		dkv_config_free(&s->cfg);
		cr_assert_eq(dkv_config_init(&s->cfg), 0);
		s->port = pick_port();
		snprintf(s->addr, sizeof(s->addr), "%s:%u",
			 s->host != NULL ? s->host : "127.0.0.1", s->port);
		snprintf(port, sizeof(port), "%u", s->port);
		set(s, "data_dir", s->dir);
		set(s, "log_level", "error");
		/* the fewest partitions: a node opens every one it holds at
		 * start, and these tests are about the network */
		set(s, "ring_size", "64");
		set(s, "n_val", "1");
		set(s, "sync", "none");
		set(s, "listen", s->addr);
		for (size_t i = 0; settings != NULL && settings[i] != NULL; i++) {
			char k[64];
			const char *eq = strchr(settings[i], '=');

			cr_assert_not_null(eq);
			snprintf(k, sizeof(k), "%.*s", (int)(eq - settings[i]), settings[i]);
			set(s, k, eq + 1);
		}
		cr_assert_eq(net_open(&s->nt, s->base, &s->cfg, NULL, err, sizeof(err)), 0, "%s", err);
		s->w = net_world(s->nt);
		memset(&s->tap, 0, sizeof(s->tap));
		s->tap.w.ops = &tap_ops;
		s->tap.inner = s->w;
		cr_assert_eq(node_open(&s->nd, &s->cfg, tapped ? &s->tap.w : s->w, NULL,
				       err, sizeof(err)), 0, "%s", err);
		s->open = true;
		rc = net_start(s->nt, s->nd, err, sizeof(err));
		if (rc == 0) {
			cr_assert_eq(node_start(s->nd, err, sizeof(err)), 0, "%s", err);
			return;
		}
		cr_assert_eq(rc, -EADDRINUSE, "net_start: %s", err);
		side_close(s);   /* lost the port to someone: another */
	}
	cr_assert_fail("no free port in 20 tries: %s", err);
}

static void side_free(side *s)
{
	char cmd[128];

	side_close(s);
	if (s->base != NULL)
		event_base_free(s->base);
	s->base = NULL;
	dkv_config_free(&s->cfg);
	if (s->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
		cr_assert_eq(system(cmd), 0);
	}
}

static node_stats stats(const side *s)
{
	node_stats st;

	node_stats_get(s->nd, &st);
	return st;
}

/* Turn every open side's loop once without blocking. */
static void turn(void)
{
	if (A.open)
		event_base_loop(A.base, EVLOOP_NONBLOCK);
	if (B.open)
		event_base_loop(B.base, EVLOOP_NONBLOCK);
}

/* Turn the loops until cond holds; fail after DEADLINE_MS. */
#define PUMP_UNTIL(cond, ...) do {                                          \
	uint64_t until_ = now_ms() + DEADLINE_MS;                           \
	while (!(cond)) {                                                   \
		cr_assert_lt(now_ms(), until_, __VA_ARGS__);                \
		turn();                                                     \
		usleep(200);                                                \
	}                                                                   \
} while (0)

/* The frame of a PING with request id `id`. */
static int send_ping(side *from, const char *to, uint64_t id)
{
	msgpack_sbuffer sb;
	int rc;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_ping(&sb, id), 0);
	rc = from->w->ops->send(from->w, to, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* A listening socket on a free port that never accepts: connections to it
 * complete in the kernel's backlog and their bytes are never read.  rcvbuf
 * (0: the default) bounds what each one's receive queue takes. */
static int listen_silent(side *s, int rcvbuf, char *addr, size_t addrlen)
{
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)s;
	cr_assert_geq(fd, 0);
	if (rcvbuf > 0)
		cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
	snprintf(addr, addrlen, "127.0.0.1:%u", ntohs(sa.sin_port));
	return fd;
}

static void setup(void)
{
	srand((unsigned)getpid() ^ (unsigned)now_ms());
	memset(&A, 0, sizeof(A));
	memset(&B, 0, sizeof(B));
}

static void teardown(void)
{
	side_free(&A);
	side_free(&B);
}

TestSuite(net, .init = setup, .fini = teardown, .timeout = 60);

/* --- send ----------------------------------------------------------------- */

Test(net, ping_reaches_the_peer_then_100_pipelined_in_order)
{
	side_open(&A, false, NULL);
	side_open(&B, true, NULL);
	cr_assert_eq(A.w->ops->connections(A.w), 0);

	cr_assert_eq(send_ping(&A, B.addr, 1), 0);
	/* the outbound connection counts at once, while it connects */
	cr_assert_eq(A.w->ops->connections(A.w), 1);
	PUMP_UNTIL(stats(&B).pings == 1, "B's node never got the ping");
	cr_assert_eq(B.w->ops->connections(B.w), 1, "B accepted A's connection");
	cr_assert_eq(A.w->ops->connections(A.w), 1, "one pooled connection");

	for (uint64_t id = 2; id <= 101; id++)
		cr_assert_eq(send_ping(&A, B.addr, id), 0, "ping %llu", (unsigned long long)id);
	PUMP_UNTIL(stats(&B).pings == 101, "B's node got %llu of 101 pings",
		   (unsigned long long)stats(&B).pings);
	cr_assert_eq(B.tap.npongs, 101);
	for (size_t i = 0; i < 101; i++)
		cr_assert_eq(B.tap.pongs[i], i + 1, "ping %zu arrived as %llu", i + 1,
			     (unsigned long long)B.tap.pongs[i]);

	/* B's PONGs came back on A's outbound connection and were discarded:
	 * not requests for A's node, and no reason to drop the connection */
	cr_assert_eq(stats(&A).pings, 0);
	cr_assert_eq(stats(&A).errors, 0);
	cr_assert_eq(stats(&A).peer_downs, 0);
	cr_assert_eq(stats(&B).errors, 0);
	cr_assert_eq(A.w->ops->connections(A.w), 1);
	cr_assert_eq(B.w->ops->connections(B.w), 1);
	cr_assert_eq(net_pending_output(A.nt), 0);
}

/* Peer messages are one-way: none is answered on the connection it came
 * in on, so none may count toward the in-flight limit that pauses reading
 * (NET_MAX_INFLIGHT, 1024), or a peer's connection stops for good. */
Test(net, thousands_of_peer_messages_on_one_connection_all_arrive)
{
	msgpack_sbuffer sb;
	const uint64_t n = 3000;

	side_open(&A, false, NULL);
	side_open(&B, false, NULL);
	msgpack_sbuffer_init(&sb);
	for (uint64_t i = 1; i <= n; i++) {
		sb.size = 0;
		cr_assert_eq(peer_encode_rget(&sb, i, A.addr, "k", 1, NULL), 0);
		cr_assert_eq(A.w->ops->send(A.w, B.addr, sb.data, sb.size), 0, "message %llu",
			     (unsigned long long)i);
		if (i % 500 == 0)
			turn();
	}
	msgpack_sbuffer_destroy(&sb);
	/* A is not a member of B's cluster, so B's node drops each one (it
	 * answers only members' peer messages): every one must reach it */
	PUMP_UNTIL(stats(&B).peer_refused == n, "B's node got %llu of %llu peer messages",
		   (unsigned long long)stats(&B).peer_refused, (unsigned long long)n);
	cr_assert_eq(stats(&B).errors, 0);
	cr_assert_eq(stats(&A).peer_downs, 0);
}

Test(net, stop_accepting_leaves_peer_connections_alone)
{
	side_open(&A, false, NULL);
	side_open(&B, false, NULL);
	cr_assert_eq(send_ping(&A, B.addr, 1), 0);
	PUMP_UNTIL(stats(&B).pings == 1, "B's node never got the ping");

	net_stop_accepting(A.nt);
	cr_assert_eq(send_ping(&A, B.addr, 2), 0);
	PUMP_UNTIL(stats(&B).pings == 2, "A stopped sending after net_stop_accepting");
	cr_assert_eq(A.w->ops->connections(A.w), 1);
	cr_assert_eq(stats(&A).peer_downs, 0);
}

Test(net, output_limit_refuses_with_enobufs)
{
	static const char *const small[] = { "output_buffer_limit=65536", NULL };
	static uint8_t frame[16000];
	char addr[32];
	int lfd;

	side_open(&A, false, small);
	lfd = listen_silent(&A, 0, addr, sizeof(addr));
	/* while connecting nothing is written: four frames hold 64,000 of the
	 * 65,536 bytes, a fifth would exceed it, 1,536 bytes more still fit */
	for (int i = 0; i < 4; i++)
		cr_assert_eq(A.w->ops->send(A.w, addr, frame, sizeof(frame)), 0, "frame %d", i);
	cr_assert_eq(net_pending_output(A.nt), 4 * sizeof(frame));
	cr_assert_eq(A.w->ops->send(A.w, addr, frame, sizeof(frame)), -ENOBUFS);
	cr_assert_eq(A.w->ops->send(A.w, addr, frame, 1537), -ENOBUFS);
	cr_assert_eq(A.w->ops->send(A.w, addr, frame, 1536), 0, "a frame that fits is taken");
	cr_assert_eq(net_pending_output(A.nt), 65536);

	/* once connected, the kernel takes them and sends fit again */
	PUMP_UNTIL(net_pending_output(A.nt) == 0, "the frames were never written");
	cr_assert_eq(A.w->ops->send(A.w, addr, frame, sizeof(frame)), 0);
	cr_assert_eq(stats(&A).peer_downs, 0);
	close(lfd);
}

/* --- failures --------------------------------------------------------------- */

/* Send until the send is not refused by the backoff; its milliseconds. */
static uint64_t send_past_backoff(const char *addr, uint64_t id)
{
	uint64_t t0 = now_ms(), until = t0 + DEADLINE_MS;
	int rc;

	while ((rc = send_ping(&A, addr, id)) == -EAGAIN) {
		cr_assert_lt(now_ms(), until, "still in backoff after %d ms", DEADLINE_MS);
		turn();
		usleep(1000);
	}
	cr_assert(rc == 0 || rc == -ECONNREFUSED, "send: %s", dkv_strerror(rc));
	return now_ms() - t0;
}

Test(net, refused_connect_calls_peer_down_then_backs_off)
{
	char addr[32];
	node_stats st;
	int rc;

	uint64_t t_first;

	side_open(&A, false, NULL);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", pick_port());   /* nobody there */

	t_first = now_ms();   /* the failure, and its backoff, begin after this */
	rc = send_ping(&A, addr, 1);
	cr_assert(rc == 0 || rc == -ECONNREFUSED, "send: %s", dkv_strerror(rc));
	cr_assert_eq(stats(&A).peer_downs, 0, "node_peer_down called inside send()");
	PUMP_UNTIL(stats(&A).peer_downs == 1, "A's node never heard the peer is down");
	cr_assert_eq(A.w->ops->connections(A.w), 0);
	cr_assert_eq(send_ping(&A, addr, 2), -EAGAIN, "no reconnect during the backoff");
	cr_assert_eq(net_pending_output(A.nt), 0);

	/* once the backoff (100 ms) is over the next send connects again;
	 * measured from before the failure (a slow run, valgrind on a busy
	 * machine, spends part of the backoff reaching this point) */
	(void)send_past_backoff(addr, 3);
	cr_assert_geq(now_ms() - t_first, 99, "backoff ended %llu ms after the first send",
		      (unsigned long long)(now_ms() - t_first));
	PUMP_UNTIL(stats(&A).peer_downs == 2, "the second failure went unreported");
	st = stats(&A);
	cr_assert_eq(st.peer_downs, 2);
	cr_assert_eq(send_ping(&A, addr, 4), -EAGAIN);
}

/* A restarted peer is heard from (its messages arrive) while our
 * connection to it waits out a backoff grown during its absence: the
 * backoff is cut to 100 ms, so that what we send it (the answers to its
 * requests) is not dropped for up to 5 s. */
Test(net, hearing_from_a_peer_cuts_its_reconnect_backoff)
{
	char addr[32];
	uint64_t ms, t11;

	side_open(&A, false, NULL);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", pick_port());   /* nobody there */
	for (uint64_t k = 1; k <= 5; k++) {   /* backoffs 100, 200, 400, 800, 1600 ms */
		(void)send_past_backoff(addr, k);
		PUMP_UNTIL(stats(&A).peer_downs == k, "failure %llu went unreported",
			   (unsigned long long)k);
	}
	cr_assert_eq(send_ping(&A, addr, 10), -EAGAIN);
	cr_assert_not_null(A.w->ops->peer_heard);
	A.w->ops->peer_heard(A.w, addr);
	A.w->ops->peer_heard(A.w, "127.0.0.1:1");   /* a peer never sent to: nothing */
	ms = send_past_backoff(addr, 11);
	t11 = now_ms();
	cr_assert_lt(ms, 150, "the next connect came %llu ms after hearing from the peer "
		     "(its backoff was 1600 ms)", (unsigned long long)ms);
	/* ... but not twice within 100 ms (a peer heard and unreachable: a
	 * one-way partition) */
	PUMP_UNTIL(stats(&A).peer_downs == 6, "the sixth failure went unreported");
	A.w->ops->peer_heard(A.w, addr);
	if (now_ms() - t11 < 80)   /* (a slow run, valgrind, may be past the 100 ms) */
		cr_assert_eq(send_ping(&A, addr, 12), -EAGAIN, "a second connect within 100 ms");
}

Test(net, peer_closing_is_noticed_without_sending)
{
	side_open(&A, false, NULL);
	side_open(&B, false, NULL);
	cr_assert_eq(send_ping(&A, B.addr, 1), 0);
	PUMP_UNTIL(stats(&B).pings == 1, "B's node never got the ping");
	cr_assert_eq(A.w->ops->connections(A.w), 1);

	side_close(&B);
	PUMP_UNTIL(stats(&A).peer_downs == 1, "A did not notice B close");
	cr_assert_eq(A.w->ops->connections(A.w), 0);
	cr_assert_eq(send_ping(&A, B.addr, 2), -EAGAIN);
}

Test(net, write_timeout_fails_a_peer_that_reads_nothing)
{
	static const char *const fast[] = { "write_timeout=300ms", NULL };
	static uint8_t frame[65536];
	char addr[32];
	int lfd, sent = 0;

	side_open(&A, false, fast);
	lfd = listen_silent(&A, 4096, addr, sizeof(addr));
	/* Send until the kernel's buffers are full and frames wait in A. */
	{
		uint64_t until = now_ms() + DEADLINE_MS;

		while (net_pending_output(A.nt) < 4 * sizeof(frame)) {
			cr_assert_lt(now_ms(), until, "the socket never filled (%d frames)", sent);
			cr_assert_eq(A.w->ops->send(A.w, addr, frame, sizeof(frame)), 0);
			sent++;
			turn();
		}
	}
	cr_assert_eq(stats(&A).peer_downs, 0);
	PUMP_UNTIL(stats(&A).peer_downs == 1, "the write timeout never fired");
	cr_assert_eq(net_pending_output(A.nt), 0, "queued frames were dropped");
	cr_assert_eq(A.w->ops->connections(A.w), 0);
	close(lfd);
}

Test(net, unresolvable_address_fails_the_send_and_backs_off)
{
	int rc;

	side_open(&A, false, NULL);
	rc = send_ping(&A, "not an address", 1);
	cr_assert_eq(rc, DKV_EINVAL, "send: %s", dkv_strerror(rc));
	cr_assert_eq(stats(&A).peer_downs, 0, "node_peer_down called inside send()");
	PUMP_UNTIL(stats(&A).peer_downs == 1, "the failure went unreported");
	cr_assert_eq(send_ping(&A, "not an address", 2), -EAGAIN);
	cr_assert_eq(A.w->ops->connections(A.w), 0);
}

/* The source address of the connection side A (listening on host)
 * opens to a silent listener, as that listener's accept() sees it. */
static void connect_source(const char *host, char *src, size_t srclen)
{
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	char addr[64];
	int lfd, fd = -1;

	A.host = host;
	side_open(&A, false, NULL);
	lfd = listen_silent(&A, 0, addr, sizeof(addr));
	cr_assert_eq(send_ping(&A, addr, 1), 0);
	for (uint64_t until = now_ms() + DEADLINE_MS; fd < 0; usleep(200)) {
		cr_assert_lt(now_ms(), until, "A never connected");
		turn();
		fd = accept(lfd, (struct sockaddr *)&peer, &plen);
	}
	cr_assert(inet_ntop(AF_INET, &peer.sin_addr, src, (socklen_t)srclen) != NULL);
	close(fd);
	close(lfd);
}

/* A node on a specific address connects from it, as its datagrams come
 * from it: a firewall rule on the pair of addresses cuts both. */
Test(net, outbound_connections_come_from_the_listen_address)
{
	char src[INET_ADDRSTRLEN];

	connect_source("127.0.0.7", src, sizeof(src));
	cr_assert_str_eq(src, "127.0.0.7");
}

Test(net, a_wildcard_listener_lets_the_kernel_choose_the_source)
{
	char src[INET_ADDRSTRLEN];

	connect_source("0.0.0.0", src, sizeof(src));
	cr_assert_str_eq(src, "127.0.0.1");
}

/* --- datagrams ------------------------------------------------------------ */

Test(net, datagram_reaches_the_peer)
{
	static const char msg[] = "gossip";

	side_open(&A, false, NULL);
	side_open(&B, false, NULL);
	A.w->ops->dgram(A.w, B.addr, msg, sizeof(msg));
	PUMP_UNTIL(stats(&B).datagrams == 1, "B's node never got the datagram");
	cr_assert_eq(stats(&A).datagrams, 0);
	/* UDP opens no connection */
	cr_assert_eq(A.w->ops->connections(A.w), 0);
	cr_assert_eq(B.w->ops->connections(B.w), 0);
	/* lossy by contract: a datagram to nowhere is no error anywhere */
	A.w->ops->dgram(A.w, "not an address", msg, sizeof(msg));
	cr_assert_eq(stats(&A).peer_downs, 0);
}

Test(net, udp_port_taken_is_a_startup_error)
{
	struct sockaddr_in sa;
	char err[512], listen[32];
	dkv_config cfg;
	net *nt;
	int u, rc;
	uint16_t port = pick_port();

	u = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(u, (struct sockaddr *)&sa, sizeof(sa)), 0);

	/* net_start before the node exists: it fails before using it */
	cr_assert_eq(dkv_config_init(&cfg), 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	cr_assert_eq(dkv_config_set(&cfg, "listen", listen, err, sizeof(err)), 0);
	cr_assert_not_null(A.base = event_base_new());
	cr_assert_eq(net_open(&nt, A.base, &cfg, NULL, err, sizeof(err)), 0, "%s", err);
	rc = net_start(nt, NULL, err, sizeof(err));
	cr_assert_eq(rc, -EADDRINUSE, "net_start: %d %s", rc, err);
	cr_assert_not_null(strstr(err, "UDP"), "%s", err);
	cr_assert_not_null(strstr(err, "Address already in use"), "%s", err);
	net_close(nt);
	close(u);

	/* and the TCP port was let go: a net can bind it now */
	cr_assert_eq(net_open(&nt, A.base, &cfg, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(net_start(nt, NULL, err, sizeof(err)), 0, "%s", err);
	net_close(nt);
	dkv_config_free(&cfg);
}

/* --- clients --------------------------------------------------------------- */

/* A client connection to s (blocking connect: the kernel completes it from
 * the backlog; the loop accepts when it turns). */
static int client_connect(const side *s)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(s->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
	cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void client_write(int fd, const void *buf, size_t len)
{
	cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Read what fd has into buf; true iff buf holds a whole frame. */
static bool client_got_frame(int fd, uint8_t *buf, size_t cap, size_t *have)
{
	ssize_t n = recv(fd, buf + *have, cap - *have, 0);

	if (n > 0)
		*have += (size_t)n;
	return *have >= PROTO_HEADER_SIZE &&
	       *have >= PROTO_HEADER_SIZE + (size_t)proto_frame_length(buf);
}

/* Wait for one whole reply frame on fd, turning the loops meanwhile, and
 * decode it into *m (borrowing buf; release with proto_msg_release). */
static void client_reply(int fd, uint8_t *buf, size_t cap, proto_msg *m)
{
	proto_limits lim = { 1024, 1024 };
	size_t have = 0;

	PUMP_UNTIL(client_got_frame(fd, buf, cap, &have), "no whole reply came (%zu bytes)", have);
	cr_assert_eq(proto_decode(buf + PROTO_HEADER_SIZE, proto_frame_length(buf), &lim, m, NULL, 0), 0);
}

/* One PING over a new client connection to s, answered by a PONG. */
static int client_ping(const side *s, uint64_t id)
{
	msgpack_sbuffer sb;
	uint8_t buf[256];
	proto_msg m;
	int fd = client_connect(s);

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(proto_encode_ping(&sb, id), 0);
	client_write(fd, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	client_reply(fd, buf, sizeof(buf), &m);
	cr_assert_eq(m.type, PROTO_PONG);
	cr_assert_eq(m.id, id);
	proto_msg_release(&m);
	return fd;
}

/* Regression: ids were (++gen << 32 | slot), so from the 2^31st connection
 * on, gen set bit 63, the node took every request for a forwarded one and
 * its replies went nowhere.  Generations now wrap within 30 bits: bit 62
 * is NET_LOCAL_BIT, the HTTP face's. */
Test(net, client_ids_stay_below_2_62_after_2_30_connections)
{
	int fds[4];

	side_open(&A, false, NULL);
	A.nt->gen = NET_GEN_MAX - 1;   /* as after 2^30 - 2 connections */
	for (int i = 0; i < 4; i++)
		fds[i] = client_ping(&A, (uint64_t)i + 1);
	cr_assert_lt(A.nt->gen, 4u, "the generation wrapped (it is %u)", A.nt->gen);
	for (int i = 0; i < 4; i++) {
		conn *c = A.nt->slots[i];

		cr_assert(c == NULL || c->id < NET_LOCAL_BIT, "slot %d: id %#llx", i,
			  (unsigned long long)c->id);
		close(fds[i]);
	}
}

static uint64_t local_client;
static size_t local_len, local_calls;

static void local_sink(void *ctx, uint64_t client, const void *frame, size_t len)
{
	cr_assert_eq(ctx, &local_calls);
	cr_assert_not_null(frame);
	local_client = client;
	local_len = len;
	local_calls++;
}

/* Replies to a NET_LOCAL_BIT id go to the face's function, never to a
 * connection (even one whose id has the same low bits), and nowhere once
 * the function is taken away. */
Test(net, replies_to_local_ids_go_to_the_local_function)
{
	world *w;
	int fd;
	uint64_t id;

	side_open(&A, false, NULL);
	w = net_world(A.nt);
	fd = client_ping(&A, 7);
	id = A.nt->slots[0]->id;
	net_set_local(A.nt, NET_LOCAL_RESP, local_sink, &local_calls);
	w->ops->reply(w, NET_LOCAL_BIT | NET_LOCAL_FACE(NET_LOCAL_RESP) | id, "abcde", 5);
	cr_assert_eq(local_calls, 1);
	cr_assert_eq(local_client, NET_LOCAL_BIT | NET_LOCAL_FACE(NET_LOCAL_RESP) | id);
	cr_assert_eq(local_len, 5);
	cr_assert_eq(evbuffer_get_length(A.nt->slots[0]->out), 0,
		     "the connection with the same low bits got the reply");
	/* the other face's ids are not this face's */
	w->ops->reply(w, NET_LOCAL_BIT | NET_LOCAL_FACE(NET_LOCAL_HTTP) | id, "abcde", 5);
	cr_assert_eq(local_calls, 1);
	net_set_local(A.nt, NET_LOCAL_RESP, NULL, NULL);
	w->ops->reply(w, NET_LOCAL_BIT | NET_LOCAL_FACE(NET_LOCAL_RESP) | 3, "x", 1);
	cr_assert_eq(local_calls, 1);
	close(fd);
}

/* Regression: an oversized frame was answered "frame length 9000019 >
 * max_frame 8388608", which does not tell a user who sent a 9 MB value
 * which limit to look up. */
Test(net, an_oversized_frame_names_max_frame_and_max_value_size)
{
	uint8_t hdr[PROTO_HEADER_SIZE] = { 0x00, 0x89, 0x54, 0x53 };   /* 9000019 */
	uint8_t buf[512];
	proto_msg m;
	int fd;

	side_open(&A, false, NULL);
	cr_assert_eq(proto_frame_length(hdr), 9000019u);
	fd = client_connect(&A);
	client_write(fd, hdr, sizeof(hdr));
	client_reply(fd, buf, sizeof(buf), &m);
	cr_assert_eq(m.type, PROTO_ERROR);
	cr_assert_eq(m.code, PROTO_ERR_TOOBIG);
	cr_assert_eq(m.message.len, strlen("request of 9000019 bytes is above max_frame (8388608 bytes); "
					   "a value may be at most max_value_size = 1048576 bytes"),
		     "%.*s", (int)m.message.len, (const char *)m.message.p);
	cr_assert(memcmp(m.message.p, "request of 9000019 bytes is above max_frame (8388608 bytes); "
			 "a value may be at most max_value_size = 1048576 bytes", m.message.len) == 0,
		  "%.*s", (int)m.message.len, (const char *)m.message.p);
	proto_msg_release(&m);
	close(fd);
}

/* --- the pool -------------------------------------------------------------- */

typedef struct donerec {
	int calls;                 /* done calls */
	int rc;                    /* the last one's rc */
	bool on_loop;              /* true iff it ran on the test's (the loop's) thread */
} donerec;

static pthread_t loop_thread;
static bool in_call;               /* true iff inside a durable()/work() call */

static void rec_done(void *arg, int rc)
{
	donerec *d = arg;

	cr_assert(!in_call, "done ran inside the call that queued it");
	d->calls++;
	d->rc = rc;
	d->on_loop = pthread_equal(pthread_self(), loop_thread);
}

typedef struct job {
	sem_t *gate;               /* NULL, or wait on it first */
	bool off_loop;             /* true iff fn ran on another thread than the loop's */
	int nice;                  /* fn's thread's nice value */
	atomic_bool ran;
	int rc;                    /* what fn returns */
} job;

static int job_fn(void *arg)
{
	job *j = arg;

	j->off_loop = !pthread_equal(pthread_self(), loop_thread);
	errno = 0;
	j->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	if (j->gate != NULL)
		sem_wait(j->gate);
	atomic_store(&j->ran, true);
	return j->rc;
}

static void queue_durable(side *s, bitcask *bc, donerec *d)
{
	in_call = true;
	s->w->ops->durable(s->w, &bc, 1, rec_done, d);
	in_call = false;
}

static void queue_work(side *s, job *j, donerec *d)
{
	in_call = true;
	s->w->ops->work(s->w, job_fn, j, rec_done, d);
	in_call = false;
}

/* A store of our own next to the node's, for durable(). */
static bitcask *open_store(const side *s)
{
	bitcask_config c;
	bitcask *bc;
	char path[128], err[256];

	bitcask_config_init(&c);
	c.sync = BITCASK_SYNC_MANUAL;
	c.external_worker = true;
	snprintf(path, sizeof(path), "%s/extra-store", s->dir);
	cr_assert_eq(bitcask_open(&bc, path, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(bitcask_put(bc, "k", 1, "v", 1), 0);
	return bc;
}

Test(net, work_runs_off_the_loop_and_done_on_it)
{
	job j = { .rc = 42 };
	donerec d = { 0 };
	int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));

	loop_thread = pthread_self();
	side_open(&A, false, NULL);
	queue_work(&A, &j, &d);
	PUMP_UNTIL(d.calls == 1, "done never ran");
	cr_assert(atomic_load(&j.ran));
	cr_assert(j.off_loop, "fn ran on the loop's thread");
	cr_assert(d.on_loop, "done ran off the loop");
	cr_assert_eq(d.rc, 42, "done gets fn's result");
	/* background work yields the cores to the loops (net.h) */
	cr_assert_eq(j.nice, base + NET_POOL_WORK_NICE > 19 ? 19 : base + NET_POOL_WORK_NICE,
		     "work ran at nice %d, the loop at %d", j.nice, base);
	cr_assert_eq(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), base, "the loop's nice changed");
}

/* Threads of this process at nice `nice`. */
static int threads_at_nice(int nice)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.' &&
		    getpriority(PRIO_PROCESS, (id_t)atoi(e->d_name)) == nice)
			n++;
	closedir(d);
	return n;
}

/* The sync threads yield the cores too unless a client waits on each
 * sync: under sync = interval (and none) they run at NET_POOL_SYNC_NICE,
 * under always at the loop's. */
Test(net, sync_threads_run_niced_unless_sync_is_always)
{
	static const char *interval[] = { "sync=interval", NULL }, *always[] = { "sync=always", NULL };
	int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	int up = base + NET_POOL_SYNC_NICE > 19 ? 19 : base + NET_POOL_SYNC_NICE;

	cr_assert_eq(NET_POOL_SYNC_NICE, NET_POOL_WORK_NICE, "(the counts below assume so)");
	side_open(&A, false, interval);
	PUMP_UNTIL(threads_at_nice(up) == NET_POOL_THREADS + NET_POOL_WORK,
		   "%d threads at nice %d under sync = interval", threads_at_nice(up), up);
	side_close(&A);
	side_open(&A, false, always);
	PUMP_UNTIL(threads_at_nice(up) == NET_POOL_WORK,
		   "%d threads at nice %d under sync = always", threads_at_nice(up), up);
}

/* NET_POOL_WORK long jobs (merges) take every work slot; a durable batch
 * queued behind them still runs at once, and further work waits. */
Test(net, long_work_holds_up_no_durable_batch)
{
	sem_t gate;
	job busy[NET_POOL_WORK], more = { 0 };
	donerec bd[NET_POOL_WORK], md = { 0 }, dd = { 0 };
	bitcask *bc;

	loop_thread = pthread_self();
	side_open(&A, false, NULL);
	bc = open_store(&A);
	cr_assert_eq(sem_init(&gate, 0, 0), 0);
	for (int i = 0; i < NET_POOL_WORK; i++) {
		busy[i] = (job){ .gate = &gate, .rc = i };
		bd[i] = (donerec){ 0 };
		queue_work(&A, &busy[i], &bd[i]);
	}
	queue_work(&A, &more, &md);
	queue_durable(&A, bc, &dd);
	PUMP_UNTIL(dd.calls == 1, "the batch waited behind the work");
	cr_assert_eq(dd.rc, 0);
	cr_assert(dd.on_loop);
	for (int i = 0; i < 50; i++) {
		turn();
		usleep(1000);
	}
	cr_assert(!atomic_load(&more.ran), "more than NET_POOL_WORK jobs ran at once");
	cr_assert_eq(md.calls, 0);
	for (int i = 0; i < NET_POOL_WORK; i++)
		sem_post(&gate);
	PUMP_UNTIL(md.calls == 1, "the waiting job never ran");
	for (int i = 0; i < NET_POOL_WORK; i++)
		cr_assert_eq(bd[i].calls, 1);
	cr_assert_eq(bitcask_close(bc), 0);
	sem_destroy(&gate);
}

static int alloc_failures;

static void *failing_alloc(size_t size)
{
	(void)size;
	alloc_failures++;
	return NULL;
}

/* Regression: when the job could not be allocated, durable() synced the
 * stores and called done inside the call, against world.h's rule. */
Test(net, out_of_memory_still_calls_done_from_the_loop)
{
	donerec dd = { 0 }, wd = { 0 };
	job j = { .rc = 7 };
	bitcask *bc;

	loop_thread = pthread_self();
	side_open(&A, false, NULL);
	bc = open_store(&A);
	A.nt->job_alloc = failing_alloc;
	queue_durable(&A, bc, &dd);
	queue_work(&A, &j, &wd);
	A.nt->job_alloc = malloc;
	cr_assert_eq(alloc_failures, 2, "the allocation failed for both calls");
	cr_assert_eq(dd.calls, 0, "durable() called done inside the call");
	cr_assert_eq(wd.calls, 0, "work() called done inside the call");
	PUMP_UNTIL(dd.calls == 1 && wd.calls == 1, "done never ran (durable %d, work %d)",
		   dd.calls, wd.calls);
	cr_assert_eq(dd.rc, 0);
	cr_assert(dd.on_loop && wd.on_loop);
	cr_assert_eq(wd.rc, 7);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_geq(st.syncs, 1, "the batch was synced all the same");
	cr_assert_eq(bitcask_close(bc), 0);
}
