/*
 * fakenode.h -- a fake dynkv node for the tests of the client side: libdynkv
 * (tests/unit/test_client.c) and the programs dynkv and dynkv-admin
 * (tests/unit/test_cli_programs.c).
 *
 * The fake node is a thread on 127.0.0.1 (port 0) that speaks the client
 * protocol with proto.c.  Each test picks how it answers by setting F.h to
 * one of the handlers below: h_store keeps siblings the way a real node does
 * (a put drops the siblings its context has seen), and the others send
 * errors, record requests, or misbehave: half a frame, garbage, a 4 GiB
 * length, another request's id, silence.
 *
 * The fake's context is CTX_LEN (11) bytes, "C\0", the store's clock (8
 * bytes, big endian) and 0xff: NUL and non-ASCII bytes, so that a client that
 * does not pass it back verbatim is caught (the fake answers ERROR CONTEXT).
 *
 * One fake per test process: Criterion runs each test in its own process,
 * and setup()/teardown() (a suite's .init and .fini) start and stop it.  The
 * state is the global F, and the address to connect to is addr; the short
 * names are the ones the tests were written with.
 *
 * Threads: the test sets F's settings (h, err_code, info...) before it makes
 * the request they are for; the store is the server thread's alone; the
 * "last request" fields are written under F.mu, and nreq() and last_admin()
 * read them under it (a test reads the others once its request is answered).
 */
#ifndef DKV_TESTS_FAKENODE_H
#define DKV_TESTS_FAKENODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define MAX_KEYS 8
#define MAX_SIBS 16
#define CTX_LEN 11

typedef struct fake_sib {
	uint64_t seq;           /* the store clock when written */
	bool tomb;              /* true iff a delete */
	uint8_t *val;           /* owned */
	size_t len;
} fake_sib;

typedef struct fake_ent {
	uint8_t key[64];
	size_t klen;
	fake_sib sibs[MAX_SIBS];
	size_t n;
} fake_ent;

typedef struct fake fake;
/* Answer request m (payload bytes p, len) on fd; false: close the connection. */
typedef bool (*fake_handler)(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);

struct fake {
	int lfd;                /* listening socket */
	uint16_t port;
	int stop[2];            /* a byte on stop[1] ends the thread */
	pthread_t thr;
	fake_handler h;         /* how requests are answered */
	bool close_on_accept;   /* true iff connections are closed unread */
	bool overload_on_accept;        /* true iff connections get ERROR OVERLOAD, id 0 */
	uint32_t max_frame;     /* 0, or refuse longer frames unread, as a node does */
	uint32_t err_code;      /* for h_error */
	const char *err_msg;
	/* The store (server thread only). */
	fake_ent ents[MAX_KEYS];
	size_t nents;
	uint64_t clock;
	/* The last request, under mu. */
	pthread_mutex_t mu;
	unsigned nreq;          /* requests received */
	uint32_t last_type;
	proto_opts last_opts;
	uint8_t *last_payload;  /* owned copy */
	size_t last_plen;
	uint8_t last_key[4096];
	size_t last_klen;
	uint8_t *last_val;      /* owned copy */
	size_t last_vlen;
	uint8_t last_ctx[64];
	size_t last_ctxlen;
	char last_admin[2048];  /* ADMIN: command and args, joined by '|' */
	/* What h_info answers to ADMIN (set by the test before it asks). */
	const uint8_t *info;
	size_t info_len;
};

/* The fake of this test process. */
extern fake F;
/* "127.0.0.1:<port>" of the fake, set by setup(). */
extern char addr[64];

/* Start the fake with h_store (and SIGPIPE ignored); stop it and free what
 * it holds.  setup() is fake_start() plus addr; teardown() is fake_stop(). */
void fake_start(void);
void fake_stop(void);
void setup(void);
void teardown(void);

/* The fake's context for a store clock (see above): what a GET of a key
 * answers once the store's clock is at clock. */
void make_ctx(uint8_t ctx[CTX_LEN], uint64_t clock);

/* The handlers (F.h).  Each says in fakenode.c what it answers. */
bool h_store(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_error(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_error_id0(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_half(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_silent(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_close(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_garbage(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_huge(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_text(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_zero_len(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_wrong_id(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_pong(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_found_empty(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_version2(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_info(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_info_half(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);
bool h_info_deep(fake *f, int fd, const proto_msg *m, const uint8_t *p, size_t len);

/* Requests the fake has received. */
unsigned nreq(void);
/* The last ADMIN's command and arguments, joined by '|'; caller frees. */
char *last_admin(void);

/* The monotonic clock in milliseconds. */
int64_t now_ms(void);
/* A port on 127.0.0.1 that nothing listens on: bound, then closed. */
uint16_t closed_port(void);

/*
 * INFO maps (msgpack) for h_info, used by the tests of dynkv_admin() and of
 * dynkv-admin.  Their sizes are part of the declaration so that sizeof works
 * where they are used: keep them in step with the bytes in fakenode.c (a
 * longer map does not compile; a shorter one is padded with zeros).
 */
/* {"ok": true, "message": "n2 is leaving"} */
extern const uint8_t ok_map[27];
/* {"members": [{"id": "n1", "addr": "127.0.0.1:7070", "status": "valid",
 *   "liveness": "up", "incarnation": 2, "version": 5}]} */
extern const uint8_t members_map[84];

#endif /* DKV_TESTS_FAKENODE_H */
