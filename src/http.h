/*
 * http.h -- the node's HTTP face (dynkv-http(7)): the keys and the admin
 * answers over HTTP/1.1, for curl and every HTTP library.
 *
 * A thin layer: each HTTP request becomes the frame a dynkv client would
 * send (proto.h: GET, PUT, DELETE, ADMIN), handed to node_request() under
 * a client id of its own (NET_LOCAL_BIT, net.h); the node's reply frame
 * comes back through net_set_local() and becomes the HTTP answer.  So R,
 * W, PR, PW, timeouts, contexts, siblings, replace mode, limits and every
 * error are the coordinator's, exactly as for the binary protocol; this
 * module only translates.
 *
 *   GET|PUT|DELETE /kv/{key}   the key percent-encoded (any bytes), the
 *                              value the raw body; ?r=&w=&pr=&pw=&timeout=
 *                              (httpcodec.h); the causal context in
 *                              X-Dynkv-Context (base64)
 *   GET /members /ring /status /hints /aae /transfers
 *                              the node's admin answer as JSON, the same as
 *                              dynkv-admin --json
 *   GET /ui                    the page for people (ui_page.h); / sends
 *                              there (302)
 *   GET /health                200 while the node serves, 503 and why not
 *   GET /ping                  200 "OK"
 *
 * LIMITS
 *   http_listen must be a loopback address until the face has
 *   authentication (http_open refuses another one, saying why).  Request
 *   headers: at most HTTP_MAX_HEADERS bytes (libevent answers 400 past
 *   them).  Body: at most max_value_size, refused with 413 before it is
 *   read when Content-Length says so.  A client that stays silent for
 *   http_timeout while it sends its request, or that takes nothing of its
 *   answer for as long, is cut off (libevent's timeout: it measures
 *   silence, not the whole request).  At most HTTP_MAX_PENDING requests
 *   wait for the node at once; past that, 503.
 *
 * Loop thread only.  Not part of the simulated world: the face needs
 * libevent's evhttp and the production net.
 */
#ifndef DKV_HTTP_H
#define DKV_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "dkv_config.h"
#include "log.h"
#include "net.h"
#include "node.h"

#define HTTP_MAX_HEADERS (16u * 1024u)
#define HTTP_MAX_PENDING 4096u

typedef struct http_face http_face;

/* Bind the HTTP face's address (dkv_config_http_listen) on base and serve nd (whose net is nt).  0, or an
 * error with the reason in err: DKV_EINVAL for an address that is not
 * loopback or does not resolve, -errno when it cannot be bound
 * ("http_listen 127.0.0.1:8070: Address already in use"). */
int http_open(http_face **out, struct event_base *base, const dkv_config *cfg, dkv_log *log,
	      net *nt, node *nd, char *err, size_t errlen);
/* The address it serves on ("127.0.0.1:8070"). */
const char *http_address(const http_face *h);
/* Shutting down: every new request is answered 503; those waiting for
 * the node are answered when it answers (it answers them all). */
void http_drain(http_face *h);
/* Requests waiting for the node. */
size_t http_pending(const http_face *h);
/* Answer what still waits with 503, stop listening, free. */
void http_close(http_face *h);

#endif /* DKV_HTTP_H */
