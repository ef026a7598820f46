#include "config.h"
/*
 * dynkvd -- the dynkv node daemon: configuration, logging, signals, and the
 * event loop that runs one node (node.c) over the network (net.c).
 *
 * Exit status: 0 after a clean shutdown, 1 on a runtime failure, 2 on a
 * usage or configuration error.  See dynkvd(8).
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <event2/event.h>

#include "dkv_config.h"
#include "error.h"
#include "http.h"
#include "resp.h"
#include "log.h"
#include "net.h"
#include "node.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2
/* How often shutdown checks whether in-flight work has drained. */
#define DRAIN_POLL_MS 10

typedef struct daemon_state {
	struct event_base *base;
	dkv_config cfg;
	dkv_log *log;
	net *nt;
	node *nd;
	http_face *ht;             /* the HTTP face (http.h) */
	resp_face *rs;             /* the Redis protocol face (resp.h) */
	int signals;               /* SIGTERM/SIGINT received */
	bool fatal;                /* true iff the node asked to stop (node_fatal_fn) */
	uint64_t drain_deadline;   /* monotonic ms */
	struct event *drain_ev;
} daemon_state;

static void usage(FILE *f)
{
	dkv_config_key k;

	fprintf(f,
		"usage: dynkvd [--config FILE] [--OPTION VALUE ...]\n"
		"       dynkvd --check [--config FILE] [--OPTION VALUE ...]\n"
		"       dynkvd --help | --version\n"
		"\n"
		"Run one dynkv node in the foreground.  Every setting of dynkv.conf(5) is also\n"
		"an option (options override the file):\n\n");
	for (size_t i = 0; dkv_config_key_at(i, &k); i++)
		fprintf(f, "  %-24s %s (%s; default %s)\n", k.option, k.description, k.type,
			k.default_text[0] ? k.default_text : "empty");
	fprintf(f,
		"\n"
		"  --config FILE            read settings from FILE first\n"
		"  --check                  print the effective settings as a dynkv.conf and exit\n"
		"  --help, --version\n"
		"\n"
		"Signals: SIGTERM/SIGINT shut down cleanly, SIGHUP reopens the log file.\n"
		"See dynkvd(8) and dynkv.conf(5).\n");
}

static void print_settings(const dkv_config *cfg)
{
	dkv_config_key k;
	char val[4200];

	printf("# effective dynkvd settings (dynkv.conf(5))\n");
	for (size_t i = 0; dkv_config_key_at(i, &k); i++) {
		if (dkv_config_get(cfg, k.name, val, sizeof(val)) != 0)
			continue;
		if (val[0] == '\0')
			printf("# %s =\n", k.name);
		else
			printf("%s = %s\n", k.name, val);
	}
}

static uint64_t now_ms(daemon_state *d)
{
	world *w = net_world(d->nt);

	return w->ops->now_ms(w);
}

/* Shutting down, first step: no new connection or request, on any face. */
static void stop_serving(daemon_state *d)
{
	net_stop_accepting(d->nt);
	node_drain(d->nd);
	if (d->ht != NULL)
		http_drain(d->ht);
	if (d->rs != NULL)
		resp_drain(d->rs);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
	daemon_state *d = arg;
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if ((node_inflight(d->nd) == 0 && net_pending_output(d->nt) == 0 &&
	     (d->rs == NULL || (resp_pending(d->rs) == 0 && resp_pending_output(d->rs) == 0))) ||
	    now_ms(d) >= d->drain_deadline) {
		event_base_loopbreak(d->base);
		return;
	}
	evtimer_add(d->drain_ev, &tv);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
	daemon_state *d = arg;
	struct timeval tv = { 0, 0 };

	(void)what;
	if (d->signals++ > 0) {
		dkv_log_msg(d->log, DKV_LOG_WARNING, "second %s: stopping now",
			    strsignal((int)sig));
		event_base_loopbreak(d->base);
		return;
	}
	dkv_log_msg(d->log, DKV_LOG_INFO,
		    "%s: shutting down (no new connections or requests; %zu in flight)",
		    strsignal((int)sig), node_inflight(d->nd));
	stop_serving(d);
	/* In-flight requests end by their own deadline at the latest. */
	d->drain_deadline = now_ms(d) + d->cfg.request_timeout + 1000;
	evtimer_add(d->drain_ev, &tv);
}

/* The node cannot go on (its id is taken by another data directory): it
 * has logged why; stop now and exit non-zero. */
static void fatal_cb(void *arg, const char *msg)
{
	daemon_state *d = arg;

	(void)msg;
	if (d->fatal)
		return;
	d->fatal = true;
	dkv_log_msg(d->log, DKV_LOG_ERROR, "stopping: this node cannot join its cluster "
		    "(the error above says why)");
	stop_serving(d);
	/* let the answers already queued (a join's error) reach their clients */
	struct timeval now = { 0, 0 };

	d->drain_deadline = now_ms(d) + 2000;
	evtimer_add(d->drain_ev, &now);
}

/* dynkv-admin leave is done: every partition is on its new replicas;
 * stop as SIGTERM would, and exit 0. */
static void left_cb(void *arg)
{
	daemon_state *d = arg;
	struct timeval now = { 0, 0 };

	if (d->signals++ > 0)
		return;   /* stopping already */
	dkv_log_msg(d->log, DKV_LOG_INFO, "left the cluster: stopping (exit status 0); its data "
		    "directory may be deleted, or the node brought back with `dynkv-admin join`");
	stop_serving(d);
	d->drain_deadline = now_ms(d) + d->cfg.request_timeout + 1000;
	evtimer_add(d->drain_ev, &now);
}

static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	daemon_state *d = arg;
	char err[512];

	(void)sig;
	(void)what;
	if (dkv_log_reopen(d->log, err, sizeof(err)) != 0)
		dkv_log_msg(d->log, DKV_LOG_ERROR, "SIGHUP: cannot reopen the log: %s", err);
	else
		dkv_log_msg(d->log, DKV_LOG_INFO, "SIGHUP: log reopened");
}

/* Each connection takes a descriptor and each open partition two or three
 * (data file, hint, lock): take the hard limit, and say when it is short. */
static void raise_fd_limit(daemon_state *d)
{
	struct rlimit rl;
	uint64_t want = (uint64_t)d->cfg.max_connections + 3u * d->cfg.ring_size + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		dkv_log_msg(d->log, DKV_LOG_WARNING,
			    "open-file limit %llu is below max_connections + 3 x ring_size + 64 = %llu: "
			    "connections past the limit will be refused (raise it with ulimit -n or "
			    "LimitNOFILE=)", (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

/* Drop "--check" from argv (the configuration parser does not know it). */
static bool take_check(int *argc, char **argv)
{
	bool found = false;
	int j = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--check") == 0)
			found = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	argv[j] = NULL;
	return found;
}

int main(int argc, char **argv)
{
	daemon_state d;
	dkv_config_cmdline cl;
	dkv_log_config lc;
	struct event *sig_term = NULL, *sig_int = NULL, *sig_hup = NULL;
	struct event_config *ecfg;
	char err[8192], haddr[320];
	bool check;
	int rc, status = 0;

	memset(&d, 0, sizeof(d));
	check = take_check(&argc, argv);
	rc = dkv_config_from_cmdline(&d.cfg, argc, argv, NULL, &cl, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "dynkvd: %s\n", err);
		if (rc == DKV_EINVAL)
			fprintf(stderr, "Try 'dynkvd --help'.\n");
		dkv_config_free(&d.cfg);
		return EXIT_USAGE;
	}
	if (cl.help) {
		usage(stdout);
		dkv_config_free(&d.cfg);
		return 0;
	}
	if (cl.version) {
		printf("dynkvd (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		dkv_config_free(&d.cfg);
		return 0;
	}
	if (check) {
		print_settings(&d.cfg);
		dkv_config_free(&d.cfg);
		return 0;
	}

	dkv_log_config_init(&lc);
	lc.level = d.cfg.log_level;
	lc.path = d.cfg.log_file[0] ? d.cfg.log_file : NULL;
	rc = dkv_log_open(&d.log, &lc, err, sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "dynkvd: log_file: %s\n", err);
		dkv_config_free(&d.cfg);
		return EXIT_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit(&d);

	/* Precise timers: without the flag libevent reads
	 * CLOCK_MONOTONIC_COARSE (a tick of 1 to 10 ms) and every timer fires
	 * up to a tick late -- which the handoff pace (pace.h) would take for
	 * a loop running late.  A precise read is a vDSO call, ~20 ns. */
	if ((ecfg = event_config_new()) != NULL &&
	    event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER) == 0)
		d.base = event_base_new_with_config(ecfg);
	if (ecfg != NULL)
		event_config_free(ecfg);
	if (d.base == NULL) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "cannot create the event loop");
		status = EXIT_RUNTIME;
		goto out;
	}
	rc = net_open(&d.nt, d.base, &d.cfg, d.log, err, sizeof(err));
	if (rc != 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "%s", err);
		status = rc == DKV_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	rc = node_open(&d.nd, &d.cfg, net_world(d.nt), d.log, err, sizeof(err));
	if (rc != 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "%s", err);
		status = rc == DKV_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	if (strcmp(node_addr(d.nd), d.cfg.listen) != 0) {
		/* No --listen: listen where the node's cluster knows it. */
		char *a = strdup(node_addr(d.nd));

		if (a == NULL) {
			dkv_log_msg(d.log, DKV_LOG_ERROR, "out of memory");
			status = EXIT_RUNTIME;
			goto out;
		}
		free(d.cfg.listen);
		d.cfg.listen = a;
	}
	d.drain_ev = evtimer_new(d.base, drain_cb, &d);
	sig_term = evsignal_new(d.base, SIGTERM, stop_cb, &d);
	sig_int = evsignal_new(d.base, SIGINT, stop_cb, &d);
	sig_hup = evsignal_new(d.base, SIGHUP, hup_cb, &d);
	if (d.drain_ev == NULL || sig_term == NULL || sig_int == NULL || sig_hup == NULL ||
	    evsignal_add(sig_term, NULL) != 0 || evsignal_add(sig_int, NULL) != 0 ||
	    evsignal_add(sig_hup, NULL) != 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "cannot install signal handlers");
		status = EXIT_RUNTIME;
		goto out;
	}
	/* Bind only now: a second dynkvd on the same data directory hears of
	 * the lock, which names the running one, not of a busy port.  And
	 * record the node only once bound: a node that cannot have its
	 * address must not leave an identity naming it. */
	rc = net_start(d.nt, d.nd, err, sizeof(err));
	if (rc != 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "%s", err);
		status = rc == DKV_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	rc = dkv_config_http_listen(&d.cfg, haddr, sizeof(haddr), err, sizeof(err));
	if (rc == 0 && haddr[0] != '\0')   /* not off */
		rc = http_open(&d.ht, d.base, &d.cfg, d.log, d.nt, d.nd, err, sizeof(err));
	if (rc == 0)
		rc = dkv_config_resp_listen(&d.cfg, haddr, sizeof(haddr), err, sizeof(err));
	if (rc == 0 && haddr[0] != '\0')   /* not off */
		rc = resp_open(&d.rs, d.base, &d.cfg, d.log, d.nt, d.nd, err, sizeof(err));
	if (rc != 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "%s", err);
		status = rc == DKV_EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
		goto out;
	}
	node_on_fatal(d.nd, fatal_cb, &d);
	node_on_left(d.nd, left_cb, &d);
	rc = node_start(d.nd, err, sizeof(err));
	if (rc != 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "%s", err);
		status = EXIT_RUNTIME;
		goto out;
	}
	{
		node_stats st;
		char sync[16];

		node_stats_get(d.nd, &st);
		dkv_config_get(&d.cfg, "sync", sync, sizeof(sync));
		dkv_log_msg(d.log, DKV_LOG_INFO,
			    "dynkvd %s: node %s listening on %s (HTTP on %s, Redis protocol on %s), "
			    "data in %s (ring_size %u, n_val %u, sync %s)",
			    PACKAGE_VERSION, node_id(d.nd), d.cfg.listen,
			    d.ht != NULL ? http_address(d.ht) : "nothing: http_listen is off",
			    d.rs != NULL ? resp_address(d.rs) : "nothing: resp_listen is off",
			    d.cfg.data_dir,
			    st.ring_size, st.n_val, sync);
	}
	if (event_base_dispatch(d.base) < 0) {
		dkv_log_msg(d.log, DKV_LOG_ERROR, "event loop failed");
		status = EXIT_RUNTIME;
	}
	if (d.fatal)
		status = EXIT_RUNTIME;

out:
	if (d.nd != NULL) {
		/* A sync batch still running holds the stores: let it end. */
		uint64_t until = now_ms(&d) + 10000;
		int crc;

		while ((crc = node_close(d.nd)) == DKV_EBUSY && now_ms(&d) < until)
			event_base_loop(d.base, EVLOOP_ONCE);
		/* node_close frees the node on every return but DKV_EBUSY */
		if (crc != 0) {
			dkv_log_msg(d.log, DKV_LOG_ERROR, "closing the partition stores: %s",
				    dkv_strerror(crc));
			status = EXIT_RUNTIME;
		}
		d.nd = NULL;
	}
	/* after the node: what it answered while closing reaches the HTTP
	 * clients; what never got an answer gets a 503 */
	http_close(d.ht);
	resp_close(d.rs);
	if (sig_term)
		event_free(sig_term);
	if (sig_int)
		event_free(sig_int);
	if (sig_hup)
		event_free(sig_hup);
	if (d.drain_ev)
		event_free(d.drain_ev);
	net_close(d.nt);
	if (d.base)
		event_base_free(d.base);
	if (status == 0)
		dkv_log_msg(d.log, DKV_LOG_INFO, "stopped");
	dkv_log_close(d.log);
	dkv_config_free(&d.cfg);
	return status;
}
