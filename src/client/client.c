#include "config.h"
/*
 * client.c -- libdynkv, the blocking client; the API is described in dynkv.h.
 *
 * A REQUEST'S PHASES
 *   encode -> send -> read length -> read payload -> decode -> match
 *
 *   phase          failure                       handle afterwards
 *   encode         DYNKV_EARG, DYNKV_ENOMEM      usable (nothing sent)
 *   send           DYNKV_EIO, DYNKV_ETIMEOUT     broken (partial frame sent)
 *   read length    DYNKV_EIO, DYNKV_ETIMEOUT,    broken
 *                  DYNKV_EPROTO (0 or > max)
 *   read payload   DYNKV_EIO, DYNKV_ETIMEOUT,    broken
 *                  DYNKV_ENOMEM
 *   decode         DYNKV_EPROTO                  broken
 *   match          DYNKV_EPROTO (id, type)       broken
 *                  server error                  usable, unless it has
 *                                                id 0 (below)
 *
 *   "Broken" is sticky: the stream is at an unknown position (or the node
 *   has closed it), so no later reply could be trusted to belong to its
 *   request.  Request ids count from 1; the node sends its connection
 *   errors (dynkv-protocol(7)) with id 0, and closes afterwards.
 *
 * The socket stays non-blocking after connect; every wait is a poll() for
 * what is left of the request's deadline on the monotonic clock.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dkv_config.h"
#include "dynkv.h"
#include "error.h"
#include "proto.h"

/* The public codes are the wire codes, offset; pin every one of them. */
#define WIRE(code) (-100 - (int)(code))
static_assert(DYNKV_EREQUEST == WIRE(PROTO_ERR_PROTOCOL), "wire code");
static_assert(DYNKV_EVERSION == WIRE(PROTO_ERR_VERSION), "wire code");
static_assert(DYNKV_ETYPE == WIRE(PROTO_ERR_TYPE), "wire code");
static_assert(DYNKV_ETOOBIG == WIRE(PROTO_ERR_TOOBIG), "wire code");
static_assert(DYNKV_EINVALID == WIRE(PROTO_ERR_INVALID), "wire code");
static_assert(DYNKV_EQUORUM == WIRE(PROTO_ERR_QUORUM), "wire code");
static_assert(DYNKV_ENODETIMEOUT == WIRE(PROTO_ERR_TIMEOUT), "wire code");
static_assert(DYNKV_ESTORAGE == WIRE(PROTO_ERR_STORAGE), "wire code");
static_assert(DYNKV_EOVERLOAD == WIRE(PROTO_ERR_OVERLOAD), "wire code");
static_assert(DYNKV_ESHUTDOWN == WIRE(PROTO_ERR_SHUTDOWN), "wire code");
static_assert(DYNKV_ECONTEXT == WIRE(PROTO_ERR_CONTEXT), "wire code");
static_assert(DYNKV_EINTERNAL == WIRE(PROTO_ERR_INTERNAL), "wire code");
static_assert(DYNKV_ADMIN_MAX_COMMAND == PROTO_MAX_COMMAND &&
	      DYNKV_ADMIN_MAX_ARGS == PROTO_MAX_ARGS && DYNKV_ADMIN_MAX_ARG == PROTO_MAX_ARG,
	      "admin limits");
static_assert(DYNKV_ONE == DKV_QUORUM_ONE && DYNKV_QUORUM == DKV_QUORUM_QUORUM &&
	      DYNKV_ALL == DKV_QUORUM_ALL && DYNKV_N_MAX == DKV_CONFIG_N_MAX, "quorum words");

/* Keep the encoding buffer between requests unless a put made it larger. */
#define SBUF_KEEP (1u << 20)

struct dynkv {
	int fd;                         /* the socket (non-blocking) */
	uint64_t next_id;               /* id of the next request, from 1 */
	bool broken;                    /* true iff requests must fail (see top) */
	unsigned request_timeout_ms;    /* deadline without an opts timeout */
	unsigned margin_ms;             /* added to an opts timeout */
	size_t max_reply;               /* longest reply payload read */
	char addr[264];                 /* cfg.address, for messages (cut to fit) */
	msgpack_sbuffer sb;             /* request encoding buffer */
	char msg[PROTO_MAX_MESSAGE + 256];  /* dynkv_errmsg() */
	char why[256];                  /* the failure that broke the handle */
};

/* --- errors --------------------------------------------------------------- */

const char *dynkv_strerror(int rc)
{
	switch (rc) {
	case DYNKV_OK: return "success";
	case DYNKV_EIO: return "connection or I/O failure";
	case DYNKV_ETIMEOUT: return "timed out waiting for the node";
	case DYNKV_EPROTO: return "the node broke the protocol";
	case DYNKV_EBROKEN: return "connection unusable after an earlier failure";
	case DYNKV_ENOMEM: return "out of memory";
	case DYNKV_EARG: return "invalid argument";
	case DYNKV_ESERVER: return "unknown error from the node";
#define X(name, num, dkv, text) case WIRE(num): return text;
	PROTO_ERRORS(X)
#undef X
	default: return "unknown error";
	}
}

bool dynkv_is_server_error(int rc)
{
	return rc <= DYNKV_ESERVER && rc >= DYNKV_EINTERNAL;
}

/* The public code of wire error code. */
static int from_wire(uint32_t code)
{
	switch (code) {
#define X(name, num, dkv, text) case num: return WIRE(num);
	PROTO_ERRORS(X)
#undef X
	default: return DYNKV_ESERVER;
	}
}

static void vfmt(char *buf, size_t len, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
static void vfmt(char *buf, size_t len, const char *fmt, va_list ap)
{
	if (len > 0)
		vsnprintf(buf, len, fmt, ap);
}

/* Record rc's detail on c and return rc. */
static int seterr(dynkv *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int seterr(dynkv *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfmt(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return rc;
}

/* Mark the handle broken by the failure c->msg describes; return rc. */
static int broke(dynkv *c, int rc)
{
	size_t n = strnlen(c->msg, sizeof(c->why) - 1);

	c->broken = true;
	memcpy(c->why, c->msg, n);      /* the start is enough */
	c->why[n] = '\0';
	return rc;
}

/* As seterr(), and mark the handle broken. */
static int brkerr(dynkv *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int brkerr(dynkv *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfmt(c->msg, sizeof(c->msg), fmt, ap);
	va_end(ap);
	return broke(c, rc);
}

static int fmterr(int rc, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int fmterr(int rc, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfmt(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* --- quorum words --------------------------------------------------------- */

int dynkv_parse_quorum(const char *s, int *q)
{
	char *end;
	long v;

	if (s == NULL)
		return DYNKV_EARG;
	if (strcmp(s, "one") == 0) {
		*q = DYNKV_ONE;
	} else if (strcmp(s, "quorum") == 0) {
		*q = DYNKV_QUORUM;
	} else if (strcmp(s, "all") == 0) {
		*q = DYNKV_ALL;
	} else if (strcmp(s, "default") == 0) {
		*q = DYNKV_DEFAULT;
	} else {
		if (*s < '0' || *s > '9')
			return DYNKV_EARG;
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno != 0 || *end != '\0' || v < 1 || v > DYNKV_N_MAX)
			return DYNKV_EARG;
		*q = (int)v;
	}
	return 0;
}

const char *dynkv_quorum_name(int q)
{
	switch (q) {
	case DYNKV_DEFAULT: return "default";
	case DYNKV_ONE: return "one";
	case DYNKV_QUORUM: return "quorum";
	case DYNKV_ALL: return "all";
	default: return NULL;
	}
}

/* --- time and waiting ----------------------------------------------------- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes: 0, DYNKV_ETIMEOUT
 * or -errno of poll(). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int64_t left = deadline - now_ms();
		int n;

		if (left <= 0)
			return DYNKV_ETIMEOUT;
		n = poll(&p, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;       /* ready, or an error the next call reports */
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* Send len bytes: 0, DYNKV_EIO or DYNKV_ETIMEOUT (detail in c->msg). */
static int send_all(dynkv *c, const char *buf, size_t len, int64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
		int rc;

		if (n >= 0) {
			off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return seterr(c, DYNKV_EIO, "send: %s (after %zu of %zu request bytes)",
				      strerror(errno), off, len);
		rc = wait_fd(c->fd, POLLOUT, deadline);
		if (rc == DYNKV_ETIMEOUT)
			return seterr(c, rc, "timed out sending the request (%zu of %zu bytes sent)",
				      off, len);
		if (rc != 0)
			return seterr(c, DYNKV_EIO, "poll: %s", strerror(-rc));
	}
	return 0;
}

/* Read exactly len bytes: 0, DYNKV_EIO or DYNKV_ETIMEOUT (detail in c->msg).
 * what names the bytes for the message. */
static int recv_all(dynkv *c, void *buf, size_t len, int64_t deadline, const char *what)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = recv(c->fd, (char *)buf + off, len - off, 0);
		int rc;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == 0)
			return seterr(c, DYNKV_EIO,
				      "connection closed by the node after %zu of %zu %s bytes",
				      off, len, what);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return seterr(c, DYNKV_EIO, "recv: %s (after %zu of %zu %s bytes)",
				      strerror(errno), off, len, what);
		rc = wait_fd(c->fd, POLLIN, deadline);
		if (rc == DYNKV_ETIMEOUT)
			return seterr(c, rc, "timed out waiting for the reply (%zu of %zu %s bytes read)",
				      off, len, what);
		if (rc != 0)
			return seterr(c, DYNKV_EIO, "poll: %s", strerror(-rc));
	}
	return 0;
}

/* --- connecting ----------------------------------------------------------- */

void dynkv_config_init(dynkv_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->connect_timeout_ms = DYNKV_DEFAULT_CONNECT_TIMEOUT_MS;
	cfg->request_timeout_ms = DYNKV_DEFAULT_REQUEST_TIMEOUT_MS;
	cfg->timeout_margin_ms = DYNKV_DEFAULT_TIMEOUT_MARGIN_MS;
	cfg->max_reply = DYNKV_DEFAULT_MAX_REPLY;
}

/* Split "host:port" or "[v6]:port" into host (NUL-terminated) and port
 * (digits, NUL-terminated).  0 or DYNKV_EARG. */
static int split_address(const char *addr, char *host, size_t hostlen,
			 char *port, size_t portlen, char *err, size_t errlen)
{
	const char *colon, *h = addr;
	size_t hlen;
	long p;
	char *end;

	if (addr == NULL || *addr == '\0')
		return fmterr(DYNKV_EARG, err, errlen, "no address given");
	colon = strrchr(addr, ':');
	if (colon == NULL)
		return fmterr(DYNKV_EARG, err, errlen,
			      "address \"%s\": expected HOST:PORT", addr);
	hlen = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hlen < 2 || addr[hlen - 1] != ']')
			return fmterr(DYNKV_EARG, err, errlen,
				      "address \"%s\": expected [IPv6]:PORT", addr);
		h = addr + 1;
		hlen -= 2;
	} else if (memchr(addr, ':', hlen) != NULL) {
		return fmterr(DYNKV_EARG, err, errlen,
			      "address \"%s\": write an IPv6 address as [ADDR]:PORT", addr);
	}
	if (hlen == 0 || hlen >= hostlen)
		return fmterr(DYNKV_EARG, err, errlen, "address \"%s\": bad host", addr);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 ||
	    p < 1 || p > 65535)
		return fmterr(DYNKV_EARG, err, errlen,
			      "address \"%s\": port is not 1..65535", addr);
	snprintf(port, portlen, "%ld", p);
	return 0;
}

/* Connect one address before the deadline: the socket, or a negative code
 * with the reason in err. */
static int connect_one(const struct addrinfo *ai, int64_t deadline, char *err, size_t errlen)
{
	int fd, rc, soerr = 0, one = 1;
	socklen_t slen = sizeof(soerr);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return fmterr(DYNKV_EIO, err, errlen, "socket: %s", strerror(errno));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	if (errno != EINPROGRESS && errno != EINTR) {
		rc = fmterr(DYNKV_EIO, err, errlen, "connect: %s", strerror(errno));
		goto out_close;
	}
	rc = wait_fd(fd, POLLOUT, deadline);
	if (rc == DYNKV_ETIMEOUT) {
		fmterr(rc, err, errlen, "connect: timed out");
		goto out_close;
	}
	if (rc != 0) {
		rc = fmterr(DYNKV_EIO, err, errlen, "poll: %s", strerror(-rc));
		goto out_close;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0)
		soerr = errno;
	if (soerr != 0) {
		rc = fmterr(DYNKV_EIO, err, errlen, "connect: %s", strerror(soerr));
		goto out_close;
	}
	return fd;
out_close:
	close(fd);
	return rc;
}

int dynkv_connect(dynkv **out, const dynkv_config *cfg, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[8], why[256] = "no address";
	unsigned tmo = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
					       : DYNKV_DEFAULT_CONNECT_TIMEOUT_MS;
	int64_t deadline = now_ms() + tmo;
	int rc, fd = DYNKV_EIO;
	dynkv *c;

	*out = NULL;
	if (errlen > 0)
		err[0] = '\0';
	rc = split_address(cfg->address, host, sizeof(host), port, sizeof(port), err, errlen);
	if (rc != 0)
		return rc;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0)
		return fmterr(DYNKV_EIO, err, errlen, "cannot resolve \"%s\": %s", host,
			      rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = connect_one(ai, deadline, why, sizeof(why));
		if (fd >= 0 || fd == DYNKV_ETIMEOUT)
			break;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return fmterr(fd, err, errlen, "%s: %s", cfg->address, why);

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return fmterr(DYNKV_ENOMEM, err, errlen, "out of memory");
	}
	c->fd = fd;
	c->next_id = 1;
	snprintf(c->addr, sizeof(c->addr), "%s", cfg->address);
	c->request_timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms
							: DYNKV_DEFAULT_REQUEST_TIMEOUT_MS;
	c->margin_ms = cfg->timeout_margin_ms ? cfg->timeout_margin_ms
					      : DYNKV_DEFAULT_TIMEOUT_MARGIN_MS;
	dynkv_set_max_reply(c, cfg->max_reply);
	msgpack_sbuffer_init(&c->sb);
	*out = c;
	return 0;
}

void dynkv_close(dynkv *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	msgpack_sbuffer_destroy(&c->sb);
	free(c);
}

bool dynkv_is_broken(const dynkv *c)
{
	return c->broken;
}

const char *dynkv_errmsg(const dynkv *c)
{
	return c->msg;
}

void dynkv_set_max_reply(dynkv *c, size_t max_reply)
{
	c->max_reply = max_reply ? max_reply : DYNKV_DEFAULT_MAX_REPLY;
}

/* --- requests ------------------------------------------------------------- */

/* Check the public options and convert them; 0 or DYNKV_EARG. */
static int conv_opts(dynkv *c, const dynkv_opts *o, proto_opts *po)
{
	const int *q[] = { &o->r, &o->w, &o->pr, &o->pw };
	static const char *const names[] = { "r", "w", "pr", "pw" };

	memset(po, 0, sizeof(*po));
	for (size_t i = 0; i < 4; i++)
		if (*q[i] < DYNKV_ALL || *q[i] > DYNKV_N_MAX)
			return seterr(c, DYNKV_EARG,
				      "option %s: %d is not 1..%d, one, quorum or all",
				      names[i], *q[i], DYNKV_N_MAX);
	if (o->timeout_ms > DYNKV_TIMEOUT_MAX)
		return seterr(c, DYNKV_EARG, "option timeout_ms: %u > %u",
			      o->timeout_ms, DYNKV_TIMEOUT_MAX);
	po->r = o->r;
	po->w = o->w;
	po->pr = o->pr;
	po->pw = o->pw;
	po->timeout_ms = o->timeout_ms;
	if (o->ttl_ms > DYNKV_TTL_MAX_MS)
		return seterr(c, DYNKV_EARG, "option ttl_ms: %llu > %llu (100 years)",
			      (unsigned long long)o->ttl_ms, DYNKV_TTL_MAX_MS);
	po->replace = o->replace;
	po->ttl_ms = o->ttl_ms;
	return 0;
}

/* The start of every request: c->msg cleared, and a broken handle
 * refused.  0 or DYNKV_EBROKEN. */
static int start_request(dynkv *c)
{
	c->msg[0] = '\0';
	if (c->broken)
		return seterr(c, DYNKV_EBROKEN,
			      "connection unusable after an earlier failure: %s", c->why);
	return 0;
}

/* Start a key request and check the arguments every one shares: as
 * start_request(), then *po filled and *deadline set.  0, DYNKV_EBROKEN or
 * DYNKV_EARG. */
static int begin(dynkv *c, const void *key, size_t klen, const void *ctx, size_t ctxlen,
		 const dynkv_opts *opts, proto_opts *po, int64_t *deadline)
{
	static const dynkv_opts none;
	int rc;

	if ((rc = start_request(c)) != 0)
		return rc;
	if (key == NULL || klen == 0)
		return seterr(c, DYNKV_EARG, "empty key");
	if (ctx == NULL && ctxlen > 0)
		return seterr(c, DYNKV_EARG, "context of %zu bytes at NULL", ctxlen);
	if ((rc = conv_opts(c, opts ? opts : &none, po)) != 0)
		return rc;
	if (po->replace && ctxlen > 0)
		return seterr(c, DYNKV_EARG, "replace with a context: a context already says "
			      "what the write replaces");
	*deadline = now_ms() + (po->timeout_ms ? (int64_t)po->timeout_ms + c->margin_ms
					       : (int64_t)c->request_timeout_ms);
	return 0;
}

/* What an encoder returned, as a public code. */
static int encoded(dynkv *c, int rc)
{
	if (rc == 0)
		return 0;
	c->sb.size = 0;
	if (rc == -ENOMEM)
		return seterr(c, DYNKV_ENOMEM, "out of memory encoding the request");
	return seterr(c, DYNKV_EARG, "request too large to frame (4 GiB limit)");
}

static int recv_reply(dynkv *c, uint64_t id, uint32_t want, int64_t deadline,
		      proto_msg *m, uint8_t **payload);

/*
 * Another server's answer instead of a dynkv frame.  A frame begins with
 * its length, big endian: its first byte is 0 below 16 MiB and at most 3
 * below the default max_reply of 64 MiB.  Text ("HTTP/1.1 400 ...",
 * Redis's "-ERR ...", "SSH-2.0-...") reads as a length of 514 MiB or more
 * (0x20202020), so the four header bytes tell it apart: hdr begins like a
 * known protocol's answer, or is printable ASCII and its length is too
 * large anyway (too_long).  The kind of server, "" for unknown text, or
 * NULL if hdr may be a frame.
 */
static const char *other_protocol(const uint8_t hdr[PROTO_HEADER_SIZE], bool too_long)
{
	static const struct { const char *start, *kind; } known[] = {
		{ "HTTP", "an HTTP server" },
		{ "SSH-", "an SSH server" },
		{ "-ERR", "a Redis server" },
		{ "-NOA", "a Redis server" },   /* -NOAUTH */
		{ "+OK\r", "a Redis server" },
		{ "220 ", "an SMTP or FTP server" },
		{ "220-", "an SMTP or FTP server" },
	};

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (memcmp(hdr, known[i].start, PROTO_HEADER_SIZE) == 0)
			return known[i].kind;
	for (size_t i = 0; i < PROTO_HEADER_SIZE; i++)
		if ((hdr[i] < 0x20 || hdr[i] > 0x7e) && hdr[i] != '\r' && hdr[i] != '\n' &&
		    hdr[i] != '\t')
			return NULL;
	return too_long ? "" : NULL;
}

/*
 * Fail the request whose reply began with hdr, another protocol's answer:
 * "the peer at ADDR is not a dynkv node (it answered like an HTTP server:
 * "HTTP/1.1 400 Bad Request")", with the first line of what it sent (the
 * bytes that have arrived within 100 ms), printable characters only.
 * DYNKV_EPROTO; the handle is broken.
 */
static int not_dynkv(dynkv *c, const uint8_t hdr[PROTO_HEADER_SIZE], int64_t deadline)
{
	const char *kind = other_protocol(hdr, true);
	uint8_t buf[64];
	char line[sizeof(buf) + 1];
	size_t n = PROTO_HEADER_SIZE, k = 0;
	int64_t d = now_ms() + 100;

	memcpy(buf, hdr, n);
	while (n < sizeof(buf) && memchr(buf, '\n', n) == NULL &&
	       wait_fd(c->fd, POLLIN, d < deadline ? d : deadline) == 0) {
		ssize_t r = recv(c->fd, buf + n, sizeof(buf) - n, 0);

		if (r <= 0 && (r == 0 || (errno != EINTR && errno != EAGAIN)))
			break;
		if (r > 0)
			n += (size_t)r;
	}
	for (size_t i = 0; i < n && buf[i] != '\r' && buf[i] != '\n'; i++)
		line[k++] = buf[i] >= 0x20 && buf[i] < 0x7f && buf[i] != '"' ? (char)buf[i] : '?';
	line[k] = '\0';
	return brkerr(c, DYNKV_EPROTO,
		      "the peer at %s is not a dynkv node (it answered%s%s: \"%s%s\")",
		      c->addr, kind[0] ? " like " : "", kind, line,
		      n == sizeof(buf) && k == n ? "..." : "");
}

/*
 * Send the frame in c->sb (request id id) and read its reply, as
 * recv_reply() below.
 */
static int roundtrip(dynkv *c, uint64_t id, uint32_t want, int64_t deadline,
		     proto_msg *m, uint8_t **payload)
{
	char sendmsg[sizeof(c->msg)];
	int64_t d;
	int rc, rc2;

	memset(m, 0, sizeof(*m));
	*payload = NULL;
	rc = send_all(c, c->sb.data, c->sb.size, deadline);
	if (c->sb.alloc > SBUF_KEEP) {
		msgpack_sbuffer_destroy(&c->sb);
		msgpack_sbuffer_init(&c->sb);
	}
	c->sb.size = 0;
	if (rc == 0)
		return recv_reply(c, id, want, deadline, m, payload);
	if (rc != DYNKV_EIO)
		return broke(c, rc);
	/*
	 * A node that refuses a frame from its length alone (above its
	 * max_frame) sends a connection error and closes while we are still
	 * sending, and our send fails.  Its ERROR is likely in our receive
	 * buffer: prefer its word ("frame too large") to ours ("connection
	 * reset").  The socket is closed, so this waits little.
	 */
	memcpy(sendmsg, c->msg, sizeof(sendmsg));
	d = now_ms() + 1000;
	rc2 = recv_reply(c, id, want, d < deadline ? d : deadline, m, payload);
	if (dynkv_is_server_error(rc2))
		return broke(c, rc2);
	if (rc2 == 0) {
		proto_msg_release(m);
		free(*payload);
		*payload = NULL;
	}
	seterr(c, rc, "%s", sendmsg);
	return broke(c, rc);
}

/*
 * Read the reply to request id, which must be of type want or an ERROR.
 * 0 and *m, decoded from *payload, which the caller frees after it is done
 * with *m; or an error code with *m empty and *payload NULL.
 */
static int recv_reply(dynkv *c, uint64_t id, uint32_t want, int64_t deadline,
		      proto_msg *m, uint8_t **payload)
{
	static const proto_limits nolimits = { SIZE_MAX, SIZE_MAX };
	uint8_t hdr[PROTO_HEADER_SIZE], *buf;
	char why[256];
	uint32_t len;
	int rc;

	memset(m, 0, sizeof(*m));
	*payload = NULL;
	if ((rc = recv_all(c, hdr, sizeof(hdr), deadline, "reply header")) != 0)
		return broke(c, rc);
	len = proto_frame_length(hdr);
	if (len == 0)
		return brkerr(c, DYNKV_EPROTO, "empty reply frame");
	if (other_protocol(hdr, len > c->max_reply) != NULL)
		return not_dynkv(c, hdr, deadline);
	if (len > c->max_reply)
		return brkerr(c, DYNKV_EPROTO, "reply of %lu bytes is above the limit of %zu",
			      (unsigned long)len, c->max_reply);
	buf = malloc(len);
	if (buf == NULL)
		return brkerr(c, DYNKV_ENOMEM, "out of memory for a reply of %lu bytes",
			      (unsigned long)len);
	if ((rc = recv_all(c, buf, len, deadline, "reply")) != 0) {
		broke(c, rc);
		goto out_free;
	}
	rc = proto_decode(buf, len, &nolimits, m, why, sizeof(why));
	if (rc == -ENOMEM) {
		rc = seterr(c, DYNKV_ENOMEM, "out of memory decoding the reply");
		goto out_free;
	}
	if (rc != 0) {
		rc = brkerr(c, DYNKV_EPROTO, "malformed reply: %s", why);
		goto out_free;
	}
	if (m->type == PROTO_ERROR && (m->id == id || m->id == 0)) {
		const char *text = m->message.len ? (const char *)m->message.p
						  : proto_error_text(m->code);
		int tlen = m->message.len ? (int)m->message.len : (int)strlen(text);

		rc = from_wire(m->code);
		if (m->id == 0)         /* a connection error: the node closes */
			brkerr(c, rc, "%.*s", tlen, text);
		else
			seterr(c, rc, "%.*s", tlen, text);
		goto out_release;
	}
	if (m->id != id) {
		rc = brkerr(c, DYNKV_EPROTO, "reply %s for request %llu, expected %llu",
			    proto_type_name(m->type), (unsigned long long)m->id,
			    (unsigned long long)id);
		goto out_release;
	}
	if (m->type != want) {
		rc = brkerr(c, DYNKV_EPROTO, "reply %s to a request that expects %s",
			    proto_type_name(m->type), proto_type_name(want));
		goto out_release;
	}
	if (m->type == PROTO_VALUE && m->found != (m->nvalues > 0)) {
		rc = brkerr(c, DYNKV_EPROTO, "VALUE reply with found %s and %zu values",
			    m->found ? "true" : "false", m->nvalues);
		goto out_release;
	}
	*payload = buf;
	return 0;
out_release:
	proto_msg_release(m);
out_free:
	free(buf);
	return rc;
}

/*
 * Send the request in c->sb and wait for its reply of type want; then fill
 * *res (if not NULL) from it: everything from a VALUE, the context from an
 * OK.  The reply buffer moves into res->priv_.
 */
static int exchange(dynkv *c, uint64_t id, uint32_t want, int64_t deadline,
		    dynkv_result *res)
{
	proto_msg m;
	uint8_t *buf;
	int rc;

	if ((rc = roundtrip(c, id, want, deadline, &m, &buf)) != 0)
		return rc;
	if (res == NULL)
		goto out;
	if (m.nvalues > 0) {
		res->values = malloc(m.nvalues * sizeof(*res->values));
		if (res->values == NULL) {
			rc = seterr(c, DYNKV_ENOMEM, "out of memory for %zu values", m.nvalues);
			goto out;
		}
		for (size_t i = 0; i < m.nvalues; i++) {
			res->values[i].data = m.values[i].p;
			res->values[i].len = m.values[i].len;
		}
	}
	res->found = m.found;
	res->nvalues = m.nvalues;
	res->tombstones = m.tombstones;
	res->siblings = m.type == PROTO_OK ? m.siblings : m.nvalues;
	res->context.data = m.context.len ? m.context.p : NULL;
	res->context.len = m.context.len;
	res->priv_ = buf;
	buf = NULL;
out:
	proto_msg_release(&m);
	free(buf);
	return rc;
}

int dynkv_get(dynkv *c, const void *key, size_t klen, const dynkv_opts *opts,
	      dynkv_result *res)
{
	proto_opts po;
	int64_t deadline;
	uint64_t id;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = begin(c, key, klen, NULL, 0, opts, &po, &deadline)) != 0)
		return rc;
	if (po.replace)
		return seterr(c, DYNKV_EARG, "replace is for put and delete, not get");
	if (po.ttl_ms)
		return seterr(c, DYNKV_EARG, "ttl_ms is for put, not get");
	id = c->next_id++;
	if ((rc = encoded(c, proto_encode_get(&c->sb, id, key, klen, &po))) != 0)
		return rc;
	return exchange(c, id, PROTO_VALUE, deadline, res);
}

void dynkv_result_free(dynkv_result *res)
{
	if (res == NULL)
		return;
	free(res->values);
	free(res->priv_);
	memset(res, 0, sizeof(*res));
}

int dynkv_put(dynkv *c, const void *key, size_t klen, const void *value, size_t vlen,
	      const void *ctx, size_t ctxlen, const dynkv_opts *opts, dynkv_result *res)
{
	proto_opts po;
	int64_t deadline;
	uint64_t id;
	int rc;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if ((rc = begin(c, key, klen, ctx, ctxlen, opts, &po, &deadline)) != 0)
		return rc;
	if (value == NULL && vlen > 0)
		return seterr(c, DYNKV_EARG, "value of %zu bytes at NULL", vlen);
	po.siblings = true;
	id = c->next_id++;
	rc = proto_encode_put(&c->sb, id, key, klen, value, vlen, ctx, ctxlen, &po);
	if ((rc = encoded(c, rc)) != 0)
		return rc;
	return exchange(c, id, PROTO_OK, deadline, res);
}

int dynkv_delete(dynkv *c, const void *key, size_t klen, const void *ctx, size_t ctxlen,
		 const dynkv_opts *opts, dynkv_result *res)
{
	proto_opts po;
	int64_t deadline;
	uint64_t id;
	int rc;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	if ((rc = begin(c, key, klen, ctx, ctxlen, opts, &po, &deadline)) != 0)
		return rc;
	if (po.ttl_ms)
		return seterr(c, DYNKV_EARG, "ttl_ms is for put, not delete");
	po.siblings = true;
	id = c->next_id++;
	rc = proto_encode_delete(&c->sb, id, key, klen, ctx, ctxlen, &po);
	if ((rc = encoded(c, rc)) != 0)
		return rc;
	return exchange(c, id, PROTO_OK, deadline, res);
}

int dynkv_ping(dynkv *c, unsigned timeout_ms)
{
	int64_t deadline;
	uint64_t id;
	int rc;

	if ((rc = start_request(c)) != 0)
		return rc;
	deadline = now_ms() + (timeout_ms ? timeout_ms : c->request_timeout_ms);
	id = c->next_id++;
	if ((rc = encoded(c, proto_encode_ping(&c->sb, id))) != 0)
		return rc;
	return exchange(c, id, PROTO_PONG, deadline, NULL);
}

int dynkv_admin(dynkv *c, const char *command, const char *const *args, size_t nargs,
		void **info, size_t *info_len)
{
	int64_t deadline;
	proto_msg m;
	uint8_t *buf;
	size_t clen;
	uint64_t id;
	int rc;

	*info = NULL;
	*info_len = 0;
	if ((rc = start_request(c)) != 0)
		return rc;
	clen = command != NULL ? strlen(command) : 0;
	if (clen == 0 || clen > DYNKV_ADMIN_MAX_COMMAND)
		return seterr(c, DYNKV_EARG, "admin command of %zu bytes: not 1..%d", clen,
			      DYNKV_ADMIN_MAX_COMMAND);
	if (nargs > DYNKV_ADMIN_MAX_ARGS)
		return seterr(c, DYNKV_EARG, "%zu admin arguments: at most %d", nargs,
			      DYNKV_ADMIN_MAX_ARGS);
	for (size_t i = 0; i < nargs; i++) {
		if (args == NULL || args[i] == NULL)
			return seterr(c, DYNKV_EARG, "admin argument %zu is NULL", i + 1);
		if (strlen(args[i]) > DYNKV_ADMIN_MAX_ARG)
			return seterr(c, DYNKV_EARG, "admin argument %zu longer than %d bytes",
				      i + 1, DYNKV_ADMIN_MAX_ARG);
	}
	deadline = now_ms() + (int64_t)c->request_timeout_ms;
	id = c->next_id++;
	rc = proto_encode_admin(&c->sb, id, command, args, nargs);
	if ((rc = encoded(c, rc)) != 0)
		return rc;
	if ((rc = roundtrip(c, id, PROTO_INFO, deadline, &m, &buf)) != 0)
		return rc;
	/* Copy the map out of the reply buffer: the caller frees one thing. */
	*info = malloc(m.info.len);
	if (*info == NULL) {
		rc = seterr(c, DYNKV_ENOMEM, "out of memory for a result of %zu bytes",
			    m.info.len);
	} else {
		memcpy(*info, m.info.p, m.info.len);   /* len >= 1: a map */
		*info_len = m.info.len;
	}
	proto_msg_release(&m);
	free(buf);
	return rc;
}
