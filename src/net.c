#include "config.h"
/*
 * net.c -- connections, framing, back-pressure and the world binding of
 * net.h: accepted connections (clients and inbound peers), the pool of
 * outbound peer connections, the UDP socket, timers and the background
 * pool (durable batches and work jobs).
 */

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/listener.h>

#include "bitcask.h"
#include "dkv_thread.h"
#include "error.h"
#include "net_int.h"
#include "node.h"
#include "peer.h"
#include "proto.h"

static void logm(net *nt, dkv_log_level lv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void logm(net *nt, dkv_log_level lv, const char *fmt, ...)
{
	va_list ap;

	if (nt->log == NULL || !dkv_log_enabled(nt->log, lv))
		return;
	va_start(ap, fmt);
	dkv_log_vmsg(nt->log, lv, fmt, ap);
	va_end(ap);
}

/* --- connection table ----------------------------------------------------- */

static conn *conn_find(net *nt, uint64_t id)
{
	uint32_t slot = (uint32_t)id;

	if (slot >= nt->nslots || nt->slots[slot] == NULL || nt->slots[slot]->id != id)
		return NULL;
	return nt->slots[slot];
}

static int conn_slot(net *nt, conn *c)
{
	uint32_t slot;

	if (nt->nfree == 0) {
		uint32_t n = nt->nslots ? nt->nslots * 2 : 64;
		conn **s = realloc(nt->slots, n * sizeof(*s));
		uint32_t *f;

		if (s == NULL)
			return -ENOMEM;
		nt->slots = s;
		f = realloc(nt->free_slots, n * sizeof(*f));
		if (f == NULL)
			return -ENOMEM;
		nt->free_slots = f;
		for (uint32_t i = n; i > nt->nslots; i--)
			nt->free_slots[nt->nfree++] = i - 1;
		memset(&nt->slots[nt->nslots], 0, (n - nt->nslots) * sizeof(*s));
		nt->nslots = n;
	}
	slot = nt->free_slots[--nt->nfree];
	nt->slots[slot] = c;
	nt->gen = nt->gen >= NET_GEN_MAX ? 1 : nt->gen + 1;
	c->id = (uint64_t)nt->gen << 32 | slot;
	return 0;
}

static void stop_reading(conn *c)
{
	if (c->reading) {
		event_del(c->rev);
		c->reading = false;
	}
}

static void conn_free(conn *c)
{
	net *nt = c->nt;
	uint32_t slot = (uint32_t)c->id;

	stop_reading(c);
	if (c->writing) {
		event_del(c->wev);
		c->writing = false;
	}
	if (c->in_read) {
		c->dead = true;   /* process_input frees it on its way out */
		return;
	}
	nt->slots[slot] = NULL;
	nt->free_slots[nt->nfree++] = slot;
	nt->nconns--;
	event_free(c->rev);
	event_free(c->wev);
	evbuffer_free(c->in);
	evbuffer_free(c->out);
	evutil_closesocket(c->fd);
	free(c);
}

static void flush(conn *c);

/* Close once the output is flushed. */
static void conn_close_soon(conn *c)
{
	c->closing = true;
	stop_reading(c);
	if (!c->in_read)
		flush(c);
}

/* --- framing -------------------------------------------------------------- */

static bool must_pause(const conn *c)
{
	return evbuffer_get_length(c->out) > NET_OUTPUT_PAUSE ||
	       c->inflight >= NET_MAX_INFLIGHT;
}

static void send_error_and_close(conn *c, uint32_t code, const char *msg)
{
	const void *frame;
	size_t len;

	node_error_frame(c->nt->nd, code, msg, &frame, &len);
	if (frame != NULL)
		evbuffer_add(c->out, frame, len);
	conn_close_soon(c);
}

/* Hand every whole frame in the input to the node, until back-pressure. */
static void process_input(conn *c)
{
	net *nt = c->nt;
	struct evbuffer *in = c->in;

	c->in_read = true;
	while (!c->closing && !c->dead && !nt->stopping) {
		uint8_t hdr[PROTO_HEADER_SIZE];
		size_t have = evbuffer_get_length(in);
		uint32_t len, ptype;
		uint64_t pid;
		uint8_t *p;
		int rc;

		if (must_pause(c)) {
			/* flush() resumes us once replies drain */
			c->paused = true;
			stop_reading(c);
			break;
		}
		if (have < PROTO_HEADER_SIZE)
			break;
		evbuffer_copyout(in, hdr, sizeof(hdr));
		len = proto_frame_length(hdr);
		if (len == 0 || len > nt->cfg->max_frame) {
			char msg[192];

			if (len == 0)
				snprintf(msg, sizeof(msg), "frame length 0");
			else
				snprintf(msg, sizeof(msg),
					 "request of %u bytes is above max_frame (%llu bytes); "
					 "a value may be at most max_value_size = %llu bytes",
					 len, (unsigned long long)nt->cfg->max_frame,
					 (unsigned long long)nt->cfg->max_value_size);
			logm(nt, DKV_LOG_INFO, "connection %llu: %s; closing",
			     (unsigned long long)c->id, msg);
			send_error_and_close(c, len == 0 ? PROTO_ERR_PROTOCOL : PROTO_ERR_TOOBIG, msg);
			break;
		}
		if (have < PROTO_HEADER_SIZE + (size_t)len)
			break;
		p = evbuffer_pullup(in, PROTO_HEADER_SIZE + (ssize_t)len);
		if (p == NULL) {
			send_error_and_close(c, PROTO_ERR_INTERNAL, "out of memory");
			break;
		}
		/* Only requests that will be answered on this connection count
		 * toward back-pressure: peer messages are one-way (world.h), so
		 * counting them would stop a peer's connection for good after
		 * NET_MAX_INFLIGHT of them. */
		if (!peer_is_peer_frame(p + PROTO_HEADER_SIZE, len, &ptype, &pid))
			c->inflight++;
		rc = node_request(nt->nd, c->id, p + PROTO_HEADER_SIZE, len);
		evbuffer_drain(in, PROTO_HEADER_SIZE + (size_t)len);
		if (rc != 0) {
			logm(nt, DKV_LOG_INFO, "connection %llu: malformed request; closing",
			     (unsigned long long)c->id);
			conn_close_soon(c);
			break;
		}
	}
	c->in_read = false;
	if (c->dead) {
		c->dead = false;
		conn_free(c);
		return;
	}
	flush(c);   /* one write for every reply this batch made */
}

static bool retriable(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

/* Most iovecs one write takes: 64 chains of an evbuffer is at least 64
 * frames, or 256 KiB of the 4 KiB chains a bulk add makes; the rest goes
 * on the next writable event. */
#define NET_WRITE_IOV 64

/* Write what out holds to fd in one sendmsg (MSG_NOSIGNAL: a closed peer is
 * an EPIPE here, never a SIGPIPE, whether or not the program ignores it),
 * and keep wev added, with the write timeout, exactly while some is left.
 * The timeout restarts whenever wev fires, so it measures a time in which
 * the socket took no byte.  0, or -errno of a failed write (nothing else
 * changed then). */
static int out_write(net *nt, evutil_socket_t fd, struct evbuffer *out,
		     struct event *wev, bool *writing)
{
	size_t left = evbuffer_get_length(out);

	if (left > 0) {
		struct evbuffer_iovec v[NET_WRITE_IOV];
		struct iovec iov[NET_WRITE_IOV];
		struct msghdr mh;
		int n = evbuffer_peek(out, -1, NULL, v, NET_WRITE_IOV);
		ssize_t w;

		if (n > NET_WRITE_IOV)
			n = NET_WRITE_IOV;
		for (int i = 0; i < n; i++) {
			iov[i].iov_base = v[i].iov_base;
			iov[i].iov_len = v[i].iov_len;
		}
		memset(&mh, 0, sizeof(mh));
		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)n;
		w = sendmsg(fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && !retriable(errno))
			return -errno;
		if (w > 0)
			evbuffer_drain(out, (size_t)w);
		left = evbuffer_get_length(out);
	}
	if (left > 0 && !*writing) {
		struct timeval wt = { (time_t)(nt->cfg->write_timeout / 1000),
				      (suseconds_t)(nt->cfg->write_timeout % 1000) * 1000 };

		event_add(wev, &wt);
		*writing = true;
	} else if (left == 0 && *writing) {
		event_del(wev);
		*writing = false;
	}
	return 0;
}

/* Write what the output holds; watch for writability only while some is
 * left.  Replies made inside process_input() wait for its end, so a batch
 * of pipelined requests costs one write. */
static void flush(conn *c)
{
	size_t left;
	int rc = out_write(c->nt, c->fd, c->out, c->wev, &c->writing);

	if (rc != 0) {
		logm(c->nt, DKV_LOG_DEBUG, "connection %llu: write: %s",
		     (unsigned long long)c->id, strerror(-rc));
		conn_free(c);
		return;
	}
	left = evbuffer_get_length(c->out);
	if (c->closing) {
		if (left == 0)
			conn_free(c);
		return;
	}
	if (c->paused && !c->nt->stopping && left <= NET_OUTPUT_RESUME &&
	    c->inflight < NET_MAX_INFLIGHT) {
		c->paused = false;
		event_add(c->rev, NULL);
		c->reading = true;
		process_input(c);   /* frames already buffered */
	}
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
	conn *c = arg;
	struct evbuffer_iovec v;
	ssize_t n;

	(void)what;
	/* recv straight into the buffer: evbuffer_read() would ask FIONREAD
	 * first, a second system call per read */
	if (evbuffer_reserve_space(c->in, 65536, &v, 1) < 1) {
		logm(c->nt, DKV_LOG_ERROR, "connection %llu: out of memory reading; closing",
		     (unsigned long long)c->id);
		conn_free(c);
		return;
	}
	n = recv(fd, v.iov_base, v.iov_len, 0);
	if (n <= 0) {
		if (n < 0 && retriable(errno))
			return;
		if (n < 0)
			logm(c->nt, DKV_LOG_DEBUG, "connection %llu: %s",
			     (unsigned long long)c->id, strerror(errno));
		conn_free(c);   /* closed by the client, or reset */
		return;
	}
	v.iov_len = (size_t)n;
	evbuffer_commit_space(c->in, &v, 1);
	process_input(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
	conn *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		logm(c->nt, DKV_LOG_WARNING,
		     "connection %llu: client accepted no reply byte for %u ms; closing",
		     (unsigned long long)c->id, c->nt->cfg->write_timeout);
		conn_free(c);
		return;
	}
	flush(c);
}

/* --- accepting ------------------------------------------------------------ */

static void resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
	net *nt = arg;

	(void)fd;
	(void)what;
	if (!nt->stopping)
		evconnlistener_enable(nt->lis);
}

static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
	net *nt = arg;
	struct timeval tv = { 0, 100 * 1000 };
	int e = EVUTIL_SOCKET_ERROR();

	logm(nt, DKV_LOG_WARNING, "accept: %s; pausing accepts for 100 ms", strerror(e));
	evconnlistener_disable(lis);
	evtimer_add(nt->resume_accept, &tv);
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	net *nt = arg;
	int one = 1;
	conn *c;

	(void)lis;
	(void)sa;
	(void)salen;
	if (nt->nconns >= nt->cfg->max_connections) {
		const void *frame;
		size_t len;
		char msg[128];

		snprintf(msg, sizeof(msg), "too many connections (max_connections %u)",
			 nt->cfg->max_connections);
		node_error_frame(nt->nd, PROTO_ERR_OVERLOAD, msg, &frame, &len);
		if (frame != NULL && send(fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			(void)0;   /* best effort */
		evutil_closesocket(fd);
		logm(nt, DKV_LOG_WARNING, "refused a connection: %s", msg);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	if (c == NULL || conn_slot(nt, c) != 0) {
		free(c);
		evutil_closesocket(fd);
		logm(nt, DKV_LOG_ERROR, "out of memory accepting a connection");
		return;
	}
	c->nt = nt;
	c->fd = fd;
	evutil_make_socket_nonblocking(fd);
	c->in = evbuffer_new();
	c->out = evbuffer_new();
	c->rev = event_new(nt->base, fd, EV_READ | EV_PERSIST, read_cb, c);
	c->wev = event_new(nt->base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
	if (c->in == NULL || c->out == NULL || c->rev == NULL || c->wev == NULL ||
	    event_add(c->rev, NULL) != 0) {
		if (c->in) evbuffer_free(c->in);
		if (c->out) evbuffer_free(c->out);
		if (c->rev) event_free(c->rev);
		if (c->wev) event_free(c->wev);
		nt->slots[(uint32_t)c->id] = NULL;
		nt->free_slots[nt->nfree++] = (uint32_t)c->id;
		free(c);
		evutil_closesocket(fd);
		logm(nt, DKV_LOG_ERROR, "out of memory accepting a connection");
		return;
	}
	c->reading = true;
	nt->nconns++;
}

/* --- the world ------------------------------------------------------------ */

static uint64_t w_now_us(world *w)
{
	struct timespec ts;

	(void)w;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t w_now_ms(world *w)
{
	struct timespec ts;

	(void)w;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t w_wall_ms(world *w)
{
	struct timespec ts;

	(void)w;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
	world_timer *t = arg;
	world_timer_fn fn = t->fn;
	void *farg = t->arg;

	(void)fd;
	(void)what;
	event_free(t->ev);
	free(t);
	fn(farg);
}

static world_timer *w_timer_add(world *w, uint64_t ms, world_timer_fn fn, void *arg)
{
	net *nt = (net *)w;
	world_timer *t = calloc(1, sizeof(*t));
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (t == NULL)
		return NULL;
	t->nt = nt;
	t->fn = fn;
	t->arg = arg;
	t->ev = evtimer_new(nt->base, timer_cb, t);
	if (t->ev == NULL || evtimer_add(t->ev, &tv) != 0) {
		if (t->ev)
			event_free(t->ev);
		free(t);
		return NULL;
	}
	return t;
}

static void w_timer_cancel(world *w, world_timer *t)
{
	(void)w;
	if (t == NULL)
		return;
	event_free(t->ev);
	free(t);
}

void net_set_local(net *nt, unsigned face, net_local_fn fn, void *ctx)
{
	if (face >= NET_LOCAL_FACES)
		return;
	nt->local_fn[face] = fn;
	nt->local_ctx[face] = ctx;
}

static void w_reply(world *w, uint64_t client, const void *frame, size_t len)
{
	net *nt = (net *)w;
	conn *c;
	struct evbuffer *out;

	if (client & NET_LOCAL_BIT) {
		unsigned face = (unsigned)(client >> 61) & 1u;

		if (nt->local_fn[face] != NULL)
			nt->local_fn[face](nt->local_ctx[face], client, frame, len);
		return;
	}
	c = conn_find(nt, client);
	if (c == NULL || c->dead)
		return;   /* the client has gone */
	if (c->inflight > 0)
		c->inflight--;
	out = c->out;
	if (evbuffer_get_length(out) + len > nt->cfg->output_buffer_limit) {
		logm(nt, DKV_LOG_WARNING,
		     "connection %llu: %zu unsent reply bytes would exceed output_buffer_limit %llu; closing",
		     (unsigned long long)c->id, evbuffer_get_length(out) + len,
		     (unsigned long long)nt->cfg->output_buffer_limit);
		conn_free(c);
		return;
	}
	if (evbuffer_add(out, frame, len) != 0) {
		logm(nt, DKV_LOG_ERROR, "connection %llu: out of memory queueing a reply; closing",
		     (unsigned long long)c->id);
		conn_free(c);
		return;
	}
	if (!c->in_read)
		flush(c);   /* a reply from outside a read (a sync batch): now */
}

/* Hand a job to the loop (under nt->mu): the pipe wakes pipe_cb(). */
static void finish_locked(net *nt, pool_job *j)
{
	char b = 1;

	j->next = nt->finished;
	nt->finished = j;
	if (write(nt->pipe_wr, &b, 1) < 0)
		(void)0;   /* a full pipe already wakes the loop */
}

/* A pool thread's life: run the jobs `step` finds, one per call (called
 * and returning with mu held; false when it finds none); sleep while there
 * are none; on quit, exit once there are none left. */
static void serve(net *nt, bool (*step)(net *nt))
{
	pthread_mutex_lock(&nt->mu);
	for (;;) {
		if (step(nt))
			continue;
		if (nt->quit)
			break;
		pthread_cond_wait(&nt->cv, &nt->mu);
	}
	pthread_mutex_unlock(&nt->mu);
}

/* A sync thread's job: the fdatasync of one store of the oldest durable
 * batch (a batch's stores sync in parallel over the sync threads). */
static bool sync_step(net *nt)
{
	pool_job *j = nt->syncq;
	size_t i;
	int rc;

	if (j == NULL)
		return false;
	i = j->next_store++;
	if (j->next_store == j->n) {   /* every store taken */
		nt->syncq = j->next;
		if (nt->syncq == NULL)
			nt->syncq_tail = &nt->syncq;
	}
	pthread_mutex_unlock(&nt->mu);
	rc = bitcask_sync_now(j->stores[i]);
	pthread_mutex_lock(&nt->mu);
	if (rc != 0 && j->rc == 0)
		j->rc = rc;
	if (--j->remaining == 0)
		finish_locked(nt, j);
	return true;
}

/* A work thread's job: the oldest work job. */
static bool work_step(net *nt)
{
	pool_job *j = nt->workq;

	if (j == NULL)
		return false;
	nt->workq = j->next;
	if (nt->workq == NULL)
		nt->workq_tail = &nt->workq;
	nt->nworking++;
	pthread_mutex_unlock(&nt->mu);
	j->rc = j->fn(j->arg);
	pthread_mutex_lock(&nt->mu);
	nt->nworking--;
	finish_locked(nt, j);
	return true;
}

/* Sync threads run at nice NET_POOL_SYNC_NICE above the process unless
 * a client waits on every sync (sync = always: net.h). */
static void *pool_main(void *arg)
{
	net *nt = arg;

	if (nt->cfg->sync != DKV_SYNC_ALWAYS)
		(void)dkv_thread_nice(NET_POOL_SYNC_NICE);
	serve(arg, sync_step);
	return NULL;
}

/* Work threads run at nice NET_POOL_WORK_NICE above the process (net.h). */
static void *work_main(void *arg)
{
	(void)dkv_thread_nice(NET_POOL_WORK_NICE);
	serve(arg, work_step);
	return NULL;
}

static void job_release(net *nt, pool_job *j)
{
	if (j->reserved) {
		j->next = nt->reserve;
		nt->reserve = j;
	} else {
		free(j);
	}
}

static void pipe_cb(evutil_socket_t fd, short what, void *arg)
{
	net *nt = arg;
	char buf[256];
	pool_job *j, *rev = NULL;

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&nt->mu);
	j = nt->finished;
	nt->finished = NULL;
	pthread_mutex_unlock(&nt->mu);
	while (j != NULL) {   /* oldest first */
		pool_job *next = j->next;

		j->next = rev;
		rev = j;
		j = next;
	}
	while (rev != NULL) {
		pool_job *next = rev->next;

		rev->done(rev->darg, rev->rc);
		job_release(nt, rev);
		rev = next;
	}
}

/* A job of `extra` bytes more, or one from the reserve when malloc fails
 * (then *reserved is set).  The reserve is the last resort: when it too is
 * empty the process aborts, as on any allocation that cannot be refused. */
static pool_job *job_get(net *nt, size_t extra)
{
	pool_job *j = nt->job_alloc(sizeof(*j) + extra);

	if (j != NULL) {
		memset(j, 0, sizeof(*j));
		return j;
	}
	j = nt->reserve;
	if (j == NULL) {
		logm(nt, DKV_LOG_ERROR, "out of memory, and the pool's %d reserve jobs are in use: aborting",
		     NET_POOL_RESERVE);
		abort();
	}
	nt->reserve = j->next;
	memset(j, 0, sizeof(*j));
	j->reserved = true;
	return j;
}

static void w_durable(world *w, bitcask *const *stores, size_t n,
		      world_durable_fn done, void *arg)
{
	net *nt = (net *)w;
	pool_job *j = job_get(nt, n * sizeof(*stores));

	j->done = done;
	j->darg = arg;
	if (j->reserved) {
		/* No memory to copy the batch: sync it here, on the loop, and
		 * let the loop call done (never inside this call). */
		for (size_t i = 0; i < n; i++) {
			int r = bitcask_sync_now(stores[i]);

			if (r != 0 && j->rc == 0)
				j->rc = r;
		}
		pthread_mutex_lock(&nt->mu);
		finish_locked(nt, j);
		pthread_mutex_unlock(&nt->mu);
		return;
	}
	j->stores = (bitcask **)(j + 1);
	memcpy(j->stores, stores, n * sizeof(*stores));
	j->n = n;
	j->remaining = n;
	pthread_mutex_lock(&nt->mu);
	*nt->syncq_tail = j;
	nt->syncq_tail = &j->next;
	pthread_cond_broadcast(&nt->cv);
	pthread_mutex_unlock(&nt->mu);
}

static void w_work(world *w, world_work_fn fn, void *arg, world_done_fn done, void *darg)
{
	net *nt = (net *)w;
	pool_job *j = job_get(nt, 0);

	j->fn = fn;
	j->arg = arg;
	j->done = done;
	j->darg = darg;
	pthread_mutex_lock(&nt->mu);
	*nt->workq_tail = j;
	nt->workq_tail = &j->next;
	pthread_cond_broadcast(&nt->cv);   /* the work thread, not a sync one */
	pthread_mutex_unlock(&nt->mu);
}

/* --- peers ---------------------------------------------------------------- */

/* The first address "host:port" resolves to for socktype.  0, DKV_EINVAL
 * (not HOST:PORT, or no such host), -ENOMEM.  Caller frees *ai with
 * freeaddrinfo().  getaddrinfo() blocks the loop while it resolves a name;
 * numeric addresses, the norm for peers, cost no lookup. */
static int resolve(const char *addr, int socktype, struct addrinfo **ai)
{
	char host[256], portstr[8];
	struct addrinfo hints;
	uint16_t port;
	int rc;

	*ai = NULL;
	if (dkv_config_hostport(addr, strlen(addr), host, sizeof(host), &port) != 0)
		return DKV_EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = socktype;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, ai);
	if (rc == EAI_MEMORY)
		return -ENOMEM;
	return rc == 0 ? 0 : DKV_EINVAL;
}

static void pconn_down_cb(evutil_socket_t fd, short what, void *arg)
{
	pconn *p = arg;

	(void)fd;
	(void)what;
	if (p->nt->nd != NULL)
		node_peer_down(p->nt->nd, p->addr);
}

/* Close p's socket, if any, and drop its unsent frames: DOWN. */
static void pconn_disconnect(pconn *p)
{
	if (p->state == PCONN_DOWN)
		return;
	if (p->rev != NULL)
		event_free(p->rev);
	if (p->wev != NULL)
		event_free(p->wev);
	p->rev = p->wev = NULL;
	p->writing = false;
	evutil_closesocket(p->fd);
	p->fd = -1;
	evbuffer_drain(p->out, evbuffer_get_length(p->out));
	p->state = PCONN_DOWN;
	p->nt->npeer_conns--;
}

/* The connection to p failed or closed: DOWN, backoff, and the node hears
 * of it from the loop (never inside the send() that found it).  Several
 * failures before down_ev runs make one call: the node learns the same. */
static void pconn_fail(pconn *p, const char *why)
{
	net *nt = p->nt;
	static const struct timeval now = { 0, 0 };

	p->backoff_ms = p->backoff_ms == 0 ? NET_BACKOFF_MIN_MS :
			p->backoff_ms >= NET_BACKOFF_MAX_MS / 2 ? NET_BACKOFF_MAX_MS :
			p->backoff_ms * 2;
	p->retry_at = w_now_ms(&nt->w) + p->backoff_ms;
	logm(nt, DKV_LOG_INFO, "peer %s: %s; dropping %zu unsent bytes, reconnecting in %u ms at the earliest",
	     p->addr, why, evbuffer_get_length(p->out), p->backoff_ms);
	pconn_disconnect(p);
	if (!evtimer_pending(p->down_ev, NULL))
		evtimer_add(p->down_ev, &now);
}

/* Write what p holds once it is connected. */
static void pconn_flush(pconn *p)
{
	int rc;

	if (p->state != PCONN_UP)
		return;   /* pconn_write_cb flushes when the connect completes */
	rc = out_write(p->nt, p->fd, p->out, p->wev, &p->writing);
	if (rc != 0) {
		char why[128];

		snprintf(why, sizeof(why), "write: %s", strerror(-rc));
		pconn_fail(p, why);
	}
}

/* Outbound connections are one-way: what arrives is read only to see EOF
 * and errors, and discarded (answers come as messages on the peer's own
 * connection to us; handing these bytes to the node could loop error
 * replies between two nodes). */
static void pconn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	pconn *p = arg;
	ssize_t n;
	char why[128];

	(void)what;
	n = recv(fd, p->nt->scratch, NET_SCRATCH, 0);
	if (n > 0 || (n < 0 && retriable(errno)))
		return;
	if (n == 0)
		snprintf(why, sizeof(why), "closed by the peer");
	else
		snprintf(why, sizeof(why), "%s", strerror(errno));
	pconn_fail(p, why);
}

static void pconn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	pconn *p = arg;
	net *nt = p->nt;
	char why[160];

	if (what & EV_TIMEOUT) {
		snprintf(why, sizeof(why), "%s for %u ms",
			 p->state == PCONN_CONNECTING ? "no connection" : "accepted no byte",
			 nt->cfg->write_timeout);
		pconn_fail(p, why);
		return;
	}
	if (p->state == PCONN_CONNECTING) {
		int e = 0;
		socklen_t elen = sizeof(e);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
			e = errno;
		if (e != 0) {
			snprintf(why, sizeof(why), "connect: %s", strerror(e));
			pconn_fail(p, why);
			return;
		}
		if (event_add(p->rev, NULL) != 0) {
			pconn_fail(p, "cannot watch the connection");
			return;
		}
		p->state = PCONN_UP;
		p->backoff_ms = 0;
		logm(nt, DKV_LOG_DEBUG, "peer %s: connected", p->addr);
	}
	pconn_flush(p);
}

/* Bind an outbound socket of family to the listener's address, port 0,
 * when that address is a specific one: peers (and their firewalls) see
 * this node's connections come from the address it serves on, as its
 * datagrams do.  A wildcard listener (0.0.0.0, ::) or another family
 * leaves the choice to the kernel.  0 or -errno. */
static int bind_source(net *nt, int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (nt->lis == NULL ||
	    getsockname(evconnlistener_get_fd(nt->lis), (struct sockaddr *)&ss, &sslen) != 0 ||
	    ss.ss_family != family)
		return 0;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			return 0;
		in->sin_port = 0;
	} else if (family == AF_INET6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			return 0;
		in6->sin6_port = 0;
	} else {
		return 0;
	}
	return bind(fd, (struct sockaddr *)&ss, sslen) == 0 ? 0 : -errno;
}

/* Start connecting p (DOWN): CONNECTING, or an error with p DOWN again and
 * in backoff. */
static int pconn_connect(pconn *p)
{
	net *nt = p->nt;
	struct timeval wt = { (time_t)(nt->cfg->write_timeout / 1000),
			      (suseconds_t)(nt->cfg->write_timeout % 1000) * 1000 };
	struct addrinfo *ai;
	char why[160];
	int one = 1, rc;

	p->tried_at = w_now_ms(&nt->w);
	rc = resolve(p->addr, SOCK_STREAM, &ai);
	if (rc != 0) {
		snprintf(why, sizeof(why), "cannot resolve the address: %s", dkv_strerror(rc));
		goto out_fail;
	}
	p->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		rc = -errno;
		freeaddrinfo(ai);
		snprintf(why, sizeof(why), "socket: %s", strerror(-rc));
		goto out_fail;
	}
	p->state = PCONN_CONNECTING;
	nt->npeer_conns++;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->rev = event_new(nt->base, p->fd, EV_READ | EV_PERSIST, pconn_read_cb, p);
	p->wev = event_new(nt->base, p->fd, EV_WRITE | EV_PERSIST, pconn_write_cb, p);
	if (p->rev == NULL || p->wev == NULL) {
		freeaddrinfo(ai);
		rc = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
		goto out_close;
	}
	rc = bind_source(nt, p->fd, ai->ai_family);
	if (rc != 0) {
		freeaddrinfo(ai);
		snprintf(why, sizeof(why), "bind to the listen address: %s", strerror(-rc));
		goto out_close;
	}
	rc = connect(p->fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : -errno;
	freeaddrinfo(ai);
	if (rc != 0 && rc != -EINPROGRESS) {
		snprintf(why, sizeof(why), "connect: %s", strerror(-rc));
		goto out_close;
	}
	/* Connected or not, the outcome shows as writability (SO_ERROR says
	 * which); a connect that takes write_timeout has failed. */
	if (event_add(p->wev, &wt) != 0) {
		rc = -ENOMEM;
		snprintf(why, sizeof(why), "cannot watch the connection");
		goto out_close;
	}
	p->writing = true;
	return 0;

out_close:   /* pconn_fail closes the socket and frees the events */
out_fail:
	pconn_fail(p, why);
	return rc;
}

/* The peer entry for addr, made on first use; NULL on ENOMEM.  A linear
 * search: a node talks to its cluster's members, a few dozen at most, and
 * a strcmp that fails on the first bytes that differ costs nanoseconds. */
static pconn *pconn_get(net *nt, const char *addr)
{
	pconn *p;

	for (size_t i = 0; i < nt->npeers; i++)
		if (strcmp(nt->peers[i]->addr, addr) == 0)
			return nt->peers[i];
	if (nt->npeers == nt->peers_cap) {
		size_t n = nt->peers_cap ? nt->peers_cap * 2 : 8;
		pconn **a = realloc(nt->peers, n * sizeof(*a));

		if (a == NULL)
			return NULL;
		nt->peers = a;
		nt->peers_cap = n;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->nt = nt;
	p->fd = -1;
	p->addr = strdup(addr);
	p->out = evbuffer_new();
	p->down_ev = evtimer_new(nt->base, pconn_down_cb, p);
	if (p->addr == NULL || p->out == NULL || p->down_ev == NULL) {
		free(p->addr);
		if (p->out)
			evbuffer_free(p->out);
		if (p->down_ev)
			event_free(p->down_ev);
		free(p);
		return NULL;
	}
	nt->peers[nt->npeers++] = p;
	return p;
}

static void pconn_free(pconn *p)
{
	pconn_disconnect(p);
	event_free(p->down_ev);
	evbuffer_free(p->out);
	free(p->addr);
	free(p);
}

static int w_send(world *w, const char *addr, const void *frame, size_t len)
{
	net *nt = (net *)w;
	pconn *p = pconn_get(nt, addr);
	int rc;

	if (p == NULL)
		return -ENOMEM;
	if (p->state == PCONN_DOWN && w_now_ms(w) < p->retry_at)
		return -EAGAIN;
	if (evbuffer_get_length(p->out) + len > nt->cfg->output_buffer_limit) {
		logm(nt, DKV_LOG_DEBUG,
		     "peer %s: %zu unsent bytes would exceed output_buffer_limit %llu; frame refused",
		     p->addr, evbuffer_get_length(p->out) + len,
		     (unsigned long long)nt->cfg->output_buffer_limit);
		return -ENOBUFS;
	}
	if (p->state == PCONN_DOWN) {
		rc = pconn_connect(p);
		if (rc != 0)
			return rc;
	}
	if (evbuffer_add(p->out, frame, len) != 0)
		return -ENOMEM;
	if (!p->writing)
		pconn_flush(p);   /* else the socket is full: wev writes it */
	return 0;
}

static void w_peer_heard(world *w, const char *addr)
{
	net *nt = (net *)w;

	for (size_t i = 0; i < nt->npeers; i++) {
		pconn *p = nt->peers[i];
		/* at once, but never twice within NET_BACKOFF_MIN_MS: a peer
		 * we hear and cannot reach (a one-way partition) is not
		 * connected to for every message it sends */
		uint64_t soon = p->tried_at + NET_BACKOFF_MIN_MS;

		if (p->state == PCONN_DOWN && p->retry_at > soon && strcmp(p->addr, addr) == 0) {
			p->retry_at = soon;
			logm(nt, DKV_LOG_DEBUG, "peer %s: heard from it; reconnecting without "
			     "waiting out the backoff", p->addr);
			return;
		}
	}
}

/* --- UDP -------------------------------------------------------------------- */

/* Datagrams taken per readable event: level-triggered, so a busy socket
 * is read again on the next turn; 64 keeps one turn under 64 x 64 KiB of
 * copying while a gossip round's few datagrams take one wakeup. */
#define NET_UDP_BATCH 64

static void udp_read_cb(evutil_socket_t fd, short what, void *arg)
{
	net *nt = arg;

	(void)what;
	for (int i = 0; i < NET_UDP_BATCH; i++) {
		ssize_t n = recv(fd, nt->scratch, NET_SCRATCH, MSG_DONTWAIT);

		if (n < 0) {
			if (!retriable(errno))
				logm(nt, DKV_LOG_DEBUG, "udp: recv: %s", strerror(errno));
			return;
		}
		node_datagram(nt->nd, nt->scratch, (size_t)n);
	}
}

static void w_dgram(world *w, const char *addr, const void *buf, size_t len)
{
	net *nt = (net *)w;
	struct addrinfo *ai;
	int rc;

	if (nt->udp_fd < 0) {
		logm(nt, DKV_LOG_DEBUG, "udp: datagram to %s before net_start: dropped", addr);
		return;
	}
	rc = resolve(addr, SOCK_DGRAM, &ai);
	if (rc != 0) {
		logm(nt, DKV_LOG_DEBUG, "udp: %s: %s: dropped", addr, dkv_strerror(rc));
		return;
	}
	if (sendto(nt->udp_fd, buf, len, MSG_DONTWAIT, ai->ai_addr, ai->ai_addrlen) < 0)
		logm(nt, DKV_LOG_DEBUG, "udp: send to %s: %s: dropped", addr, strerror(errno));
	freeaddrinfo(ai);
}

static size_t w_connections(world *w)
{
	return net_connections((net *)w);
}

static const world_ops net_ops = {
	.now_ms = w_now_ms,
	.now_us = w_now_us,
	.wall_ms = w_wall_ms,
	.timer_add = w_timer_add,
	.timer_cancel = w_timer_cancel,
	.reply = w_reply,
	.durable = w_durable,
	.work = w_work,
	.send = w_send,
	.peer_heard = w_peer_heard,
	.dgram = w_dgram,
	.connections = w_connections,
};

/* --- lifecycle ------------------------------------------------------------ */

int net_open(net **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	     char *err, size_t errlen)
{
	int fds[2], rc;
	net *nt;

	*out = NULL;
	nt = calloc(1, sizeof(*nt));
	if (nt == NULL)
		return -ENOMEM;
	nt->w.ops = &net_ops;
	nt->base = base;
	nt->cfg = cfg;
	nt->log = log;
	nt->pipe_rd = nt->pipe_wr = -1;
	nt->udp_fd = -1;
	pthread_mutex_init(&nt->mu, NULL);
	pthread_cond_init(&nt->cv, NULL);
	nt->syncq_tail = &nt->syncq;
	nt->workq_tail = &nt->workq;
	nt->job_alloc = malloc;
	nt->reserve_mem = calloc(NET_POOL_RESERVE, sizeof(*nt->reserve_mem));
	for (int i = 0; nt->reserve_mem != NULL && i < NET_POOL_RESERVE; i++) {
		nt->reserve_mem[i].next = nt->reserve;
		nt->reserve = &nt->reserve_mem[i];
	}

	nt->resume_accept = evtimer_new(base, resume_accept_cb, nt);
	nt->scratch = malloc(NET_SCRATCH);
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		rc = -errno;
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		net_close(nt);
		return rc;
	}
	nt->pipe_rd = fds[0];
	nt->pipe_wr = fds[1];
	nt->pipe_ev = event_new(base, nt->pipe_rd, EV_READ | EV_PERSIST, pipe_cb, nt);
	if (nt->resume_accept == NULL || nt->scratch == NULL || nt->pipe_ev == NULL ||
	    nt->reserve_mem == NULL ||
	    event_add(nt->pipe_ev, NULL) != 0) {
		net_close(nt);
		return -ENOMEM;
	}
	for (int i = 0; i < NET_POOL_THREADS + NET_POOL_WORK; i++) {
		if (pthread_create(&nt->threads[i], NULL, i < NET_POOL_THREADS ? pool_main : work_main,
				   nt) != 0) {
			snprintf(err, errlen, "cannot start the background pool's threads");
			net_close(nt);
			return -EAGAIN;
		}
		nt->nthreads++;
	}
	*out = nt;
	return 0;
}

world *net_world(net *nt)
{
	return &nt->w;
}

/* Bind the UDP socket to the TCP listener's address and port (its real
 * port: the same one even for a listen port of 0) and start reading.  No
 * SO_REUSEADDR: on Linux it would let a second node share the UDP port
 * unnoticed. */
static int udp_bind(net *nt, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);
	int rc;

	if (getsockname(evconnlistener_get_fd(nt->lis), (struct sockaddr *)&ss, &sslen) != 0) {
		rc = -errno;
		snprintf(err, errlen, "listen %s: %s", nt->cfg->listen, strerror(errno));
		return rc;
	}
	nt->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (nt->udp_fd < 0 || bind(nt->udp_fd, (struct sockaddr *)&ss, sslen) != 0) {
		rc = -errno;
		snprintf(err, errlen, "listen %s (UDP): %s", nt->cfg->listen, strerror(errno));
		goto out_close;
	}
	nt->udp_ev = event_new(nt->base, nt->udp_fd, EV_READ | EV_PERSIST, udp_read_cb, nt);
	if (nt->udp_ev == NULL || event_add(nt->udp_ev, NULL) != 0) {
		rc = -ENOMEM;
		snprintf(err, errlen, "listen %s (UDP): out of memory", nt->cfg->listen);
		goto out_free_event;
	}
	return 0;

out_free_event:
	if (nt->udp_ev != NULL)
		event_free(nt->udp_ev);
	nt->udp_ev = NULL;
out_close:
	if (nt->udp_fd >= 0)
		close(nt->udp_fd);
	nt->udp_fd = -1;
	return rc ? rc : -EADDRINUSE;
}

int net_start(net *nt, struct node *nd, char *err, size_t errlen)
{
	const dkv_config *cfg = nt->cfg;
	struct event_base *base = nt->base;
	char host[256];
	uint16_t port;
	char portstr[8];
	struct addrinfo hints, *ai = NULL;
	int rc;

	if (dkv_config_hostport(cfg->listen, strlen(cfg->listen), host, sizeof(host), &port) != 0) {
		snprintf(err, errlen, "listen %s: not HOST:PORT", cfg->listen);
		return DKV_EINVAL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	rc = getaddrinfo(host, portstr, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen %s: %s", cfg->listen, gai_strerror(rc));
		return DKV_EINVAL;
	}
	nt->lis = evconnlistener_new_bind(base, accept_cb, nt,
					  LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE |
					  LEV_OPT_DISABLED | LEV_OPT_CLOSE_ON_EXEC,
					  4096, ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (nt->lis == NULL) {
		rc = -errno;
		snprintf(err, errlen, "listen %s: %s", cfg->listen, strerror(errno));
		return rc ? rc : -EADDRINUSE;
	}
	evconnlistener_set_error_cb(nt->lis, accept_error_cb);
	nt->nd = nd;
	rc = udp_bind(nt, err, errlen);
	if (rc != 0) {
		evconnlistener_free(nt->lis);
		nt->lis = NULL;
		nt->nd = NULL;
		return rc;
	}
	evconnlistener_enable(nt->lis);
	return 0;
}

void net_stop_accepting(net *nt)
{
	nt->stopping = true;
	if (nt->lis != NULL)
		evconnlistener_disable(nt->lis);
	for (uint32_t i = 0; i < nt->nslots; i++)
		if (nt->slots[i] != NULL)
			stop_reading(nt->slots[i]);
}

size_t net_pending_output(const net *nt)
{
	size_t total = 0;

	for (uint32_t i = 0; i < nt->nslots; i++)
		if (nt->slots[i] != NULL)
			total += evbuffer_get_length(nt->slots[i]->out);
	for (size_t i = 0; i < nt->npeers; i++)
		total += evbuffer_get_length(nt->peers[i]->out);
	return total;
}

size_t net_connections(const net *nt)
{
	return nt->nconns + nt->npeer_conns;
}

void net_close(net *nt)
{
	if (nt == NULL)
		return;
	pthread_mutex_lock(&nt->mu);
	nt->quit = true;
	pthread_cond_broadcast(&nt->cv);
	pthread_mutex_unlock(&nt->mu);
	for (int i = 0; i < nt->nthreads; i++)
		pthread_join(nt->threads[i], NULL);
	/* Jobs the threads finished but the loop did not see: free them
	 * (the node is closed: nothing waits on them). */
	while (nt->finished != NULL) {
		pool_job *j = nt->finished;

		nt->finished = j->next;
		job_release(nt, j);
	}
	free(nt->reserve_mem);
	for (uint32_t i = 0; i < nt->nslots; i++)
		if (nt->slots[i] != NULL) {
			nt->slots[i]->in_read = false;
			conn_free(nt->slots[i]);
		}
	free(nt->slots);
	free(nt->free_slots);
	for (size_t i = 0; i < nt->npeers; i++)
		pconn_free(nt->peers[i]);
	free(nt->peers);
	if (nt->udp_ev != NULL)
		event_free(nt->udp_ev);
	if (nt->udp_fd >= 0)
		close(nt->udp_fd);
	free(nt->scratch);
	if (nt->lis != NULL)
		evconnlistener_free(nt->lis);
	if (nt->resume_accept != NULL)
		event_free(nt->resume_accept);
	if (nt->pipe_ev != NULL)
		event_free(nt->pipe_ev);
	if (nt->pipe_rd >= 0)
		close(nt->pipe_rd);
	if (nt->pipe_wr >= 0)
		close(nt->pipe_wr);
	pthread_mutex_destroy(&nt->mu);
	pthread_cond_destroy(&nt->cv);
	free(nt);
}
