/*
 * net_int.h -- the production world's private layout (net.c), for net.c
 * and its tests only (test_net.c sets the connection generation near its
 * limit and makes the pool's allocations fail).  Not for other modules.
 *
 * THREADS
 *   Everything here belongs to the loop thread except the pool's queues
 *   and counts, which the pool threads share with it under nt->mu (each
 *   field below says which).
 */
#ifndef DKV_NET_INT_H
#define DKV_NET_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "net.h"

/* The receive buffer for datagrams (the largest UDP payload is 65,507
 * bytes) and for the bytes outbound peer connections discard. */
#define NET_SCRATCH 65536

/* Connection generations run 1..NET_GEN_MAX and wrap, so that an id,
 * generation << 32 | slot, is below 2^62 (world.h: bit 63 is the node's;
 * bit 62 is NET_LOCAL_BIT, the in-process faces') and is not reused before
 * 2^30 - 1 more connections: by then the slot's old connection is long
 * gone, and so are replies meant for it. */
#define NET_GEN_MAX 0x3fffffffu

typedef struct conn {
	uint64_t id;               /* (generation << 32) | slot */
	net *nt;
	evutil_socket_t fd;
	struct event *rev;         /* readable (persistent; removed while paused) */
	struct event *wev;         /* writable, added only while output waits */
	struct evbuffer *in, *out;
	bool reading;              /* rev is added */
	bool writing;              /* wev is added */
	uint32_t inflight;         /* requests handed to the node, not answered */
	bool paused;               /* reading stopped by back-pressure */
	bool closing;              /* close once the output is flushed */
	bool in_read;              /* inside read_cb (do not free there) */
	bool dead;                 /* freed at the end of read_cb */
} conn;

/*
 * An outbound peer connection and its state (net.h, PEERS):
 *
 *                 send(), backoff over: pconn_connect()
 *        DOWN  ----------------------------------------> CONNECTING
 *         ^  ^                                              |
 *         |  |  connect error, write_timeout: pconn_fail()  | writable,
 *         |  +----------------------------------------------+ SO_ERROR 0:
 *         |                                                 v pconn_write_cb()
 *         +-------------------------------------------------UP
 *            EOF, read/write error, write_timeout: pconn_fail()
 *
 *   DOWN        no socket.  send() before retry_at: -EAGAIN; after it:
 *               connect, then queue the frame.
 *   CONNECTING  non-blocking connect under way; frames queue in out.
 *   UP          frames are written as they are sent; bytes that arrive
 *               are read and discarded, only to see EOF and errors.
 *   pconn_fail() closes the socket, drops out, sets retry_at = now +
 *   backoff (100 ms, doubled per failure up to 5 s, back to 100 ms once a
 *   connect succeeds) and arms down_ev, which tells the node from the loop.
 */
typedef enum pconn_state {
	PCONN_DOWN = 0,
	PCONN_CONNECTING,
	PCONN_UP,
} pconn_state;

#define NET_BACKOFF_MIN_MS 100u
#define NET_BACKOFF_MAX_MS 5000u

typedef struct pconn {
	char *addr;                /* "host:port", as the node names it; owned */
	net *nt;
	pconn_state state;
	evutil_socket_t fd;        /* -1 iff DOWN */
	struct event *rev;         /* readable (added iff UP); NULL iff DOWN */
	struct event *wev;         /* writable: connect done, or output waits; NULL iff DOWN */
	bool writing;              /* true iff wev is added */
	struct evbuffer *out;      /* frames not yet written */
	struct event *down_ev;     /* zero-delay timer: node_peer_down() */
	uint64_t retry_at;         /* monotonic ms; DOWN sends before it get -EAGAIN */
	uint64_t tried_at;         /* monotonic ms of the last connect attempt */
	uint32_t backoff_ms;       /* the last backoff; 0 after a connect succeeded */
} pconn;

struct world_timer {
	struct event *ev;
	net *nt;
	world_timer_fn fn;
	void *arg;
};

/*
 * A job of the node's background pool: a durability batch (stores != NULL)
 * or one work() call (fn != NULL).
 *
 *   durable()/work() --> queued (syncq / workq) --> taken by pool threads
 *   --> finished (the finished list, a byte in the pipe) --> pipe_cb() on
 *   the loop calls done and frees the job (or gives it back to the reserve).
 *
 * A job from the reserve (malloc failed) is never lost: a work job goes to
 * the pool as any other; a durable one is synced on the loop at once (no
 * memory to copy its stores) and goes straight to the finished list, so
 * done still runs from the loop, never inside the call (world.h).
 */
typedef struct pool_job {
	struct pool_job *next;     /* on syncq, workq, finished or the reserve */
	bitcask **stores;          /* durable: the batch (owned, after the job); NULL for work */
	size_t n;                  /* durable: stores in the batch */
	size_t next_store;         /* durable: next store to take (under nt->mu) */
	size_t remaining;          /* durable: stores not yet synced (under nt->mu) */
	world_work_fn fn;          /* work: the job */
	void *arg;                 /* work: its argument */
	int rc;                    /* durable: the first error; work: fn's result */
	world_done_fn done;        /* called on the loop with rc */
	void *darg;
	bool reserved;             /* true iff it belongs to the reserve: never freed before close */
} pool_job;

struct net {
	world w;                   /* first: net_world() returns &nt->w */
	struct event_base *base;
	const dkv_config *cfg;
	dkv_log *log;
	struct evconnlistener *lis;
	struct node *nd;
	bool stopping;

	conn **slots;              /* by slot; NULL when free */
	uint32_t nslots;
	uint32_t *free_slots;
	uint32_t nfree;
	uint32_t gen;              /* the last connection's generation, 1..NET_GEN_MAX */
	size_t nconns;

	struct event *resume_accept;

	/* outbound peer connections (one per address, kept until net_close) */
	pconn **peers;
	size_t npeers, peers_cap;
	size_t npeer_conns;        /* connections CONNECTING or UP */

	/* UDP (gossip) */
	evutil_socket_t udp_fd;    /* -1 before net_start */
	struct event *udp_ev;      /* readable, persistent */
	uint8_t *scratch;          /* NET_SCRATCH bytes: datagrams, discarded peer bytes */

	/* the background pool (net.h, THE POOL); mu guards the queues and counts */
	net_local_fn local_fn[NET_LOCAL_FACES];   /* replies to NET_LOCAL_BIT ids,
						   * by face (net_set_local) */
	void *local_ctx[NET_LOCAL_FACES];
	pthread_t threads[NET_POOL_THREADS + NET_POOL_WORK];   /* sync threads, then work threads */
	int nthreads;              /* started */
	pthread_mutex_t mu;
	pthread_cond_t cv;         /* a job was queued, or quit */
	pool_job *syncq;           /* durable jobs with stores left to take, FIFO */
	pool_job **syncq_tail;
	pool_job *workq;           /* work jobs not started, FIFO */
	pool_job **workq_tail;
	int nworking;              /* work threads running a job (<= NET_POOL_WORK) */
	pool_job *finished;        /* done, for the loop (newest first) */
	bool quit;                 /* true iff the threads must exit once the queues are empty */
	pool_job *reserve;         /* NET_POOL_RESERVE jobs for when malloc fails (loop only) */
	pool_job *reserve_mem;     /* their one allocation */
	void *(*job_alloc)(size_t size);   /* malloc; tests make it fail to test ENOMEM */
	int pipe_rd, pipe_wr;      /* finished jobs wake the loop */
	struct event *pipe_ev;
};

#endif /* DKV_NET_INT_H */
