/*
 * simworld.h -- the simulated world of world.h for tests: one scheduler,
 * several hosts, one faulty network between them.
 *
 * A simworld is a seeded, single-threaded scheduler with virtual time.
 * Every timer, durability batch, work job, message delivery and peer-down
 * notice is an event in one queue ordered by (virtual time, sequence), and nothing
 * happens until the test steps the queue (sim_step, sim_run_for).  Every
 * random choice (delays, loss, duplication, sync times) is drawn from the
 * one generator seeded by sim_new(), so a run is a pure function of its
 * seed and of what the test does: a failing seed replays exactly.
 *
 * HOSTS
 *   A host is one simulated machine: an address ("10.0.0.1:7070", any
 *   string), its own `world` (whose ops know the host), and the node that
 *   receives its frames and datagrams (sim_host_attach).  sim_new() creates
 *   the default host "sim:0", whose world is sim_world(): single-node tests
 *   use it and never see the rest.  Each event belongs to one host, the
 *   one that runs it: timers, durability batches and work jobs to the host
 *   whose world scheduled them, a delivery to its destination, a peer-down
 *   notice to the sender it tells.
 *
 * THE NETWORK (world.h, PEERS)
 *   send() checks and copies the frame; it is delivered after a delay
 *   drawn uniformly from [delay_min_ms, delay_max_ms] by an event that
 *   calls node_request(dest, client, frame + 4, len - 4), where client is
 *   sim_peer_client(src, dst), fixed per (source, destination) pair.  A
 *   pair is a TCP-like connection: its frames arrive in the order sent
 *   (unless `reorder`), each delivery at or after the previous one's.  The
 *   connection is open from its first accepted send until it breaks; a
 *   break happens when
 *     - a frame is lost (probability loss_ppm): that frame and every frame
 *       of the pair still in flight are dropped;
 *     - the destination crashes (sim_crash) while the connection is open;
 *     - the destination has no node attached when a frame arrives, or
 *       node_request() refuses the frame (a non-zero return: the real
 *       world closes that connection).
 *   A break schedules one node_peer_down(src node, dst addr) on the
 *   sender, one delay later.  Until that notice has run, send() to the
 *   pair returns -EAGAIN (the reconnect backoff); the next send after it
 *   opens a new connection.  send() to a crashed, detached (no node) or
 *   unknown address returns -EAGAIN and schedules a peer-down notice too,
 *   as a refused connect would (one per notice: sends while it is pending
 *   are refused without another).  A frame shorter than its 4-byte prefix
 *   or whose prefix disagrees with len is our bug: -EINVAL.
 *   dgram() copies the datagram; it is lost with probability loss_ppm,
 *   otherwise delivered to node_datagram() after its own delay (so
 *   datagrams reorder freely), and with probability dup_ppm delivered a
 *   second time with another delay.
 *   Replies (world->reply) are not messages between hosts: they go at once
 *   to the callbacks of sim_on_reply / sim_on_reply_host, whichever host
 *   sent them (a peer's answer to a peer travels by send(), world.h).
 *   connections() counts the host's open outbound connections, that is
 *   the peers it has sent frames to since their last break (inbound
 *   connections and clients are not counted).
 *
 * FAULTS
 *   sim_partition(a, b, true) cuts the link both ways: messages sent while
 *   it is cut, or arriving while it is cut, are dropped silently (no
 *   peer-down notice, as with a real partition: TCP just goes quiet).
 *   sim_cut(from, to, true) cuts one direction only (an asymmetric
 *   partition: a firewall rule on one side, a broken route): from's
 *   frames and datagrams to `to` are dropped silently, to's reach from.
 *   sim_crash(h): the host is down.  Its pending timers never fire (the
 *   node may still cancel them; they stay valid until it does), deliveries
 *   to it and its pending peer-down notices are dropped, peers with an
 *   open connection to it get a peer-down notice, and whatever it sends
 *   or replies meanwhile goes nowhere.  A durability batch or work job
 *   it started still completes, so that the test can node_close() the
 *   node (node_close refuses while a batch runs).  Messages it sent before crashing are in
 *   flight and still arrive.  The TEST closes the node object (detach
 *   first or not: nothing is delivered to a crashed host).
 *   sim_restart(h): the host is up again with no connections; the test
 *   opens a node on it and attaches it.
 *   sim_pause(h, true) is SIGSTOP: none of the host's events run; they
 *   wait, in their order, and run when sim_pause(h, false) resumes it, at
 *   the later of their own time and the resume time.  Messages to a paused
 *   host are not dropped.
 *
 * STATS
 *   When nothing is queued: frames_sent == frames_delivered +
 *   frames_dropped, and dgrams_sent + dgrams_duplicated ==
 *   dgrams_delivered + dgrams_dropped.  frames_refused counts sends that
 *   returned an error (not part of frames_sent).
 *
 * SEEDS
 *   A test that draws its schedule from a seed prints it first and replays
 *   from DKV_SEED (test_node.c's random_histories does this):
 *       uint64_t seed = sim_seed_env("cluster_churn", (uint64_t)time(NULL));
 *   prints "cluster_churn: seed N (DKV_SEED=N replays it)" on stderr and
 *   returns DKV_SEED when it is set; put the seed (sim_seed()) in the
 *   message of every assertion that depends on the schedule.  Replay with
 *   DKV_SEED=N ./tests/unit/test_x --filter 'suite/test' --jobs=1.
 *
 * OWNERSHIP
 *   Hosts and their worlds live until sim_free().  Addresses are copied.
 *   Attached nodes are borrowed: detach (or sim_free) before node_close
 *   when events could still reach them.  Not thread-safe: one thread.
 */
#ifndef DKV_SIMWORLD_H
#define DKV_SIMWORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world.h"

struct node;

typedef struct simworld simworld;
typedef void (*sim_reply_fn)(void *ctx, uint64_t client, const void *frame, size_t len);
/* As sim_reply_fn, naming the host whose node replied. */
typedef void (*sim_host_reply_fn)(void *ctx, const char *addr, uint64_t client,
				  const void *frame, size_t len);

simworld *sim_new(uint64_t seed);
void sim_free(simworld *s);
/* The default host's world ("sim:0"). */
world *sim_world(simworld *s);
/* Replies from every host's nodes go to fn (and to sim_on_reply_host's). */
void sim_on_reply(simworld *s, sim_reply_fn fn, void *ctx);
void sim_on_reply_host(simworld *s, sim_host_reply_fn fn, void *ctx);
/* Durability batches take min..max virtual ms (uniform, from the seed). */
void sim_set_sync_delay(simworld *s, uint64_t min_ms, uint64_t max_ms);
/* work() jobs: fn runs min..max virtual ms after the call (uniform, from
 * the seed; default 1..20), inside the scheduler, and done(darg, rc) runs
 * as the next event due then, on the "loop" (the scheduler).  Jobs belong
 * to the host whose world queued them: they wait while it is paused and,
 * like batches, still run after it crashed, so the node can be closed. */
void sim_set_work_delay(simworld *s, uint64_t min_ms, uint64_t max_ms);
/* From now on, durability batches fail with rc (0: succeed again). */
void sim_fail_syncs(simworld *s, int rc);
/* The next n timer_add() calls, on any host, return NULL (as on ENOMEM). */
void sim_fail_timers(simworld *s, uint32_t n);
/* Run the next event, advancing virtual time to it; false if none can run
 * (events of paused hosts wait). */
bool sim_step(simworld *s);
/* Run events up to virtual time now + ms (events due later stay queued). */
void sim_run_for(simworld *s, uint64_t ms);
uint64_t sim_now(const simworld *s);
/* Events queued, including those waiting on a paused host (timers not
 * cancelled, batches not done, messages not delivered). */
size_t sim_pending(const simworld *s);
/* A number from the run's generator (for the test's own choices). */
uint64_t sim_rand(simworld *s);
/* The seed given to sim_new(). */
uint64_t sim_seed(const simworld *s);
/* DKV_SEED if set, else dflt; prints "<name>: seed N (DKV_SEED=N replays
 * it)" on stderr. */
uint64_t sim_seed_env(const char *name, uint64_t dflt);

/* --- hosts ---------------------------------------------------------------- */

/* The world of the host at addr, created (up, no node) if new; NULL only
 * on ENOMEM. */
world *sim_host(simworld *s, const char *addr);
/* The node that receives addr's frames and datagrams (NULL: none, e.g.
 * while the test reopens it).  Creates the host if new. */
void sim_host_attach(simworld *s, const char *addr, struct node *n);
/* The address of the host a world belongs to (w from sim_host/sim_world). */
const char *sim_world_addr(const world *w);
/* The client id node_request() sees for frames from src at dst (0 if
 * either host is unknown).  Distinct from the small ids tests use. */
uint64_t sim_peer_client(const simworld *s, const char *src, const char *dst);

/* --- the network ---------------------------------------------------------- */

typedef struct sim_net_opts {
	uint32_t loss_ppm;        /* per million: datagram lost / connection broken */
	uint32_t dup_ppm;         /* per million: datagram delivered twice */
	uint64_t delay_min_ms;    /* one-way delay, uniform in [min, max] */
	uint64_t delay_max_ms;
	bool reorder;             /* frames of one pair may overtake each other */
} sim_net_opts;

/* The defaults: no loss, no duplication, 1..3 ms, in order. */
void sim_net_opts_init(sim_net_opts *o);
/* Applies to messages sent from now on. */
void sim_net_set(simworld *s, const sim_net_opts *o);

typedef struct sim_net_stats {
	uint64_t frames_sent, frames_delivered, frames_dropped, frames_refused;
	uint64_t dgrams_sent, dgrams_delivered, dgrams_dropped, dgrams_duplicated;
	uint64_t peer_downs;      /* node_peer_down() calls made */
} sim_net_stats;

void sim_net_stats_get(const simworld *s, sim_net_stats *st);

/* --- faults --------------------------------------------------------------- */

/* Cut (true) or heal (false) the link between a and b, both ways. */
void sim_partition(simworld *s, const char *a, const char *b, bool cut);
/* Cut (true) or heal (false) the direction from -> to only. */
void sim_cut(simworld *s, const char *from, const char *to, bool cut);
/* The host goes down / comes back (see FAULTS).  Unknown hosts: no-op. */
void sim_crash(simworld *s, const char *addr);
void sim_restart(simworld *s, const char *addr);
bool sim_host_up(const simworld *s, const char *addr);
/* Stop (true) or resume (false) every event of the host. */
void sim_pause(simworld *s, const char *addr, bool paused);

#endif /* DKV_SIMWORLD_H */
