#include "config.h"
/*
 * test_cli_programs.c -- the command-line programs dynkv (src/dynkv.c,
 * suite cli) and dynkv-admin (src/dynkv-admin.c, suite admin) against the
 * fake node of fakenode.c.
 *
 * Each test runs the built program (found beside this program,
 * ../../src/dynkv or ../../src/dynkv-admin) in a child process, with its
 * arguments and standard input, and checks its exit status, its output and
 * what reached the fake.  The library under the programs is tested in
 * test_client.c; the dynkv-admin renderers alone in test_admin_render.c.
 */

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "dynkv.h"
#include "fakenode.h"
#include "proto.h"

/* --- running a program ---------------------------------------------------- */

typedef struct run {
	int status;             /* exit status, or 128 + signal */
	char *out;              /* standard output, NUL-terminated; owned */
	size_t outlen;
	char *err;              /* standard error, NUL-terminated; owned */
} run;

static char *slurp(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *b = malloc(cap + 1);
	ssize_t r;

	while ((r = read(fd, b + n, cap - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += (size_t)r;
		if (n == cap)
			b = realloc(b, (cap *= 2) + 1);
	}
	b[n] = '\0';
	if (len != NULL)
		*len = n;
	close(fd);
	return b;
}

/* The program cli_run() runs, beside this test: ../../src/<cli_prog>. */
static const char *cli_prog = "dynkv";

static void cli_path(char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	cr_assert_gt(n, 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');     /* .../tests/unit/test_cli_programs */
	cr_assert_not_null(slash);
	*slash = '\0';
	snprintf(buf, len, "%s/../../src/%s", exe, cli_prog);
}

/* Run dynkv with args (NULL-terminated) and in as standard input. */
static run cli_run(const void *in, size_t inlen, ...)
{
	char path[PATH_MAX + 32];
	const char *argv[32];
	int pin[2], pout[2], perr[2], ws;
	size_t argc = 0;
	run r;
	pid_t pid;
	va_list ap;

	cli_path(path, sizeof(path));
	argv[argc++] = path;
	va_start(ap, inlen);
	while ((argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	cr_assert(pipe(pin) == 0 && pipe(pout) == 0 && pipe(perr) == 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		dup2(perr[1], 2);
		close(pin[0]), close(pin[1]), close(pout[0]), close(pout[1]);
		close(perr[0]), close(perr[1]);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	close(perr[1]);
	for (size_t off = 0; off < inlen; ) {    /* dynkv reads all before it writes */
		ssize_t n = write(pin[1], (const char *)in + off, inlen - off);

		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(pin[1]);
	r.out = slurp(pout[0], &r.outlen);
	r.err = slurp(perr[0], NULL);
	cr_assert_eq(waitpid(pid, &ws, 0), pid);
	r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	cr_assert_neq(r.status, 127, "cannot run %s", path);
	return r;
}

static void run_free(run *r)
{
	free(r->out);
	free(r->err);
}

/* The text after "context: " on a line of s, in a new string. */
static char *context_line(const char *s)
{
	const char *p = strstr(s, "context: ");
	size_t n;
	char *c;

	cr_assert_not_null(p, "no context line in \"%s\"", s);
	p += 9;
	n = strcspn(p, "\n");
	c = malloc(n + 1);
	memcpy(c, p, n);
	c[n] = '\0';
	return c;
}

/* --- the dynkv command ---------------------------------------------------- */

TestSuite(cli, .init = setup, .fini = teardown);

Test(cli, put_then_get_plain)
{
	run r = cli_run(NULL, 0, "--host", addr, "put", "greeting", "hello", NULL);

	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(r.outlen, 0);
	run_free(&r);
	r = cli_run(NULL, 0, "--host", addr, "get", "greeting", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	/* Not a terminal: the bytes exactly, no newline added. */
	cr_assert_eq(r.outlen, 5);
	cr_assert_str_eq(r.out, "hello");
	/* The context: the fake's 11 bytes "C\0" clock=1 0xff, in base64. */
	cr_assert_str_eq(r.err, "context: QwAAAAAAAAAAAf8=\n");
	run_free(&r);
}

Test(cli, binary_value_through_stdin_round_trips)
{
	uint8_t v[3000];
	run r;

	for (size_t i = 0; i < sizeof(v); i++)
		v[i] = (uint8_t)(i % 251);
	r = cli_run(v, sizeof(v), "-H", addr, "put", "bin", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_vlen, sizeof(v));
	cr_assert(memcmp(F.last_val, v, sizeof(v)) == 0);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "bin", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_eq(r.outlen, sizeof(v));
	cr_assert(memcmp(r.out, v, sizeof(v)) == 0);
	cr_assert_str_empty(r.err, "--quiet: no context line");
	run_free(&r);
	/* Empty standard input: a 0-byte value. */
	r = cli_run(NULL, 0, "-H", addr, "put", "empty", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_vlen, 0);
	run_free(&r);
}

Test(cli, siblings_resolved_with_context)
{
	run r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "greeting", "hello", NULL);
	char *ctx;

	cr_assert_not(F.last_opts.replace, "--sibling is a blind write");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "greeting", "hi", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.err, "note: greeting now has 2 siblings (concurrent writes); "
				  "get it and put with --context to resolve\n"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "--- sibling 1 of 2, 5 bytes\nhello\n"
				"--- sibling 2 of 2, 2 bytes\nhi\n");
	ctx = context_line(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--context", ctx, "put", "greeting", "hello, hi", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_ctxlen, CTX_LEN);
	cr_assert_not(F.last_opts.replace, "a put with a context is not in replace mode");
	cr_assert_null(strstr(r.err, "note:"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	cr_assert_str_eq(r.out, "hello, hi");
	run_free(&r);
	/* del with the context: gone. */
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	free(ctx);
	ctx = context_line(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-c", ctx, "del", "greeting", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_type, PROTO_DELETE);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "greeting", NULL);
	cr_assert_eq(r.status, 4, "a key whose only sibling is a tombstone is not found");
	cr_assert_eq(r.outlen, 0);
	cr_assert_not_null(strstr(r.err, "not found\n"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "tombstones: 1\n"), "%s", r.err);
	run_free(&r);
	free(ctx);
}

Test(cli, json_get)
{
	static const uint8_t bad_utf8[] = { 'a', 0xff, 0, 'b' };
	run r = cli_run("a\"b\\\n\x01\x7f\xc3\xa9", 9, "-H", addr, "put", "j", NULL);

	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "get", "j", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"found\":true,"
			 "\"values\":[\"a\\\"b\\\\\\n\\u0001\\u007f\xc3\xa9\"],"
			 "\"encodings\":[\"utf-8\"],\"tombstones\":0,"
			 "\"context\":\"QwAAAAAAAAAAAf8=\"}\n");
	cr_assert_str_empty(r.err);
	run_free(&r);

	r = cli_run(bad_utf8, sizeof(bad_utf8), "-H", addr, "--sibling", "put", "j", NULL);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "get", "j", NULL);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"found\":true,"
			 "\"values\":[\"a\\\"b\\\\\\n\\u0001\\u007f\xc3\xa9\",\"Yf8AYg==\"],"
			 "\"encodings\":[\"utf-8\",\"base64\"],\"tombstones\":0,"
			 "\"context\":\"QwAAAAAAAAAAAv8=\"}\n");
	run_free(&r);

	r = cli_run(NULL, 0, "-H", addr, "-j", "get", "missing", NULL);
	cr_assert_eq(r.status, 4, "not found: the same status as without --json");
	cr_assert_str_eq(r.out, "{\"ok\":true,\"found\":false,\"values\":[],\"encodings\":[],"
			 "\"tombstones\":0,\"context\":\"\"}\n");
	run_free(&r);
}

Test(cli, json_put_del_ping)
{
	run r = cli_run(NULL, 0, "-H", addr, "--json", "put", "k", "v", NULL);

	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"context\":\"QwAAAAAAAAAAAf8=\",\"siblings\":1}\n");
	cr_assert_str_empty(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "del", "k", NULL);
	cr_assert_str_eq(r.out, "{\"ok\":true,\"context\":\"QwAAAAAAAAAAAv8=\",\"siblings\":0}\n");
	run_free(&r);
	/* Plain: the new context on stderr, unless -q. */
	r = cli_run(NULL, 0, "-H", addr, "put", "k", "v", NULL);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_eq(r.err, "context: QwAAAAAAAAAAA/8=\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "del", "k", NULL);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_empty(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "ping", NULL);
	cr_assert_str_eq(r.out, "{\"ok\":true}\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "ping", NULL);
	cr_assert_str_eq(r.out, "pong\n");
	run_free(&r);
}

/* Without --context or --sibling, put and del replace what is there. */
Test(cli, put_and_del_replace_what_is_there)
{
	run r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "rk", "a", NULL);

	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--sibling", "put", "rk", "b", NULL);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-r", "one", "--pr", "1", "put", "rk", "c", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(F.last_opts.replace);
	cr_assert_eq(F.last_ctxlen, 0);
	cr_assert_eq(F.last_opts.r, DYNKV_ONE, "-r is the R of the replace-mode read");
	cr_assert_eq(F.last_opts.pr, 1);
	cr_assert_null(strstr(r.err, "note:"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "rk", NULL);
	cr_assert_str_eq(r.out, "c");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "del", "rk", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert(F.last_opts.replace, "del without --context is in replace mode");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "rk", NULL);
	cr_assert_eq(r.status, 4, "the delete deleted what was there");
	run_free(&r);
}

Test(cli, quorum_and_timeouts_exit_3)
{
	run r;

	F.h = h_error;
	F.err_code = PROTO_ERR_QUORUM;
	F.err_msg = "quorum not met: 1 of w=2 replicas answered";
	r = cli_run(NULL, 0, "-H", addr, "put", "k", "v", NULL);
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.err, "dynkv: put: quorum not met: 1 of w=2 replicas answered\n");
	cr_assert_eq(r.outlen, 0);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "get", "k", NULL);
	cr_assert_eq(r.status, 3);
	cr_assert_str_eq(r.out, "{\"ok\":false,\"error\":"
			 "\"quorum not met: 1 of w=2 replicas answered\",\"code\":-106}\n");
	run_free(&r);
	F.err_code = PROTO_ERR_TIMEOUT;
	F.err_msg = "request timed out: 1 of r=2 replicas answered";
	r = cli_run(NULL, 0, "-H", addr, "get", "k", NULL);
	cr_assert_eq(r.status, 3);
	run_free(&r);
	F.err_code = PROTO_ERR_STORAGE;
	F.err_msg = "storage \"failure\"\ttab";
	r = cli_run(NULL, 0, "-H", addr, "-j", "del", "k", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "{\"ok\":false,\"error\":\"storage \\\"failure\\\"\\ttab\","
			 "\"code\":-108}\n");
	run_free(&r);
	F.h = h_silent;
	r = cli_run(NULL, 0, "-H", addr, "--timeout", "100", "get", "k", NULL);
	cr_assert_eq(r.status, 3, "a client timeout: %s", r.err);
	cr_assert_not_null(strstr(r.err, "timed out"), "%s", r.err);
	run_free(&r);
}

Test(cli, options_reach_the_node)
{
	/* a put takes all four (-r and --pr: see options_that_do_not_apply...) */
	run r = cli_run(NULL, 0, "-H", addr, "-r", "2", "-w", "quorum", "--pr", "one",
			"--pw", "all", "--timeout", "1500", "put", "k", "v", NULL);

	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.r, 2);
	cr_assert_eq(F.last_opts.w, DYNKV_QUORUM);
	cr_assert_eq(F.last_opts.pr, DYNKV_ONE);
	cr_assert_eq(F.last_opts.pw, DYNKV_ALL);
	cr_assert_eq(F.last_opts.timeout_ms, 1500);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-r", "one", "--pr", "2", "-q", "get", "k", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.r, DYNKV_ONE);
	cr_assert_eq(F.last_opts.pr, 2);
	run_free(&r);
	/* Options after the command word, and -- before a key with a dash. */
	r = cli_run(NULL, 0, "put", "-w", "3", "-H", addr, "--", "-key", "-value", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.w, 3);
	cr_assert_eq(F.last_klen, 4);
	cr_assert(memcmp(F.last_key, "-key", 4) == 0);
	cr_assert_eq(F.last_vlen, 6);
	run_free(&r);
}

Test(cli, host_from_the_environment)
{
	run r;

	setenv("DYNKV_HOST", addr, 1);
	r = cli_run(NULL, 0, "ping", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	/* --host wins over the environment. */
	setenv("DYNKV_HOST", "127.0.0.1:1", 1);
	r = cli_run(NULL, 0, "--host", addr, "ping", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	unsetenv("DYNKV_HOST");
}

Test(cli, usage_errors_exit_2)
{
	static const char *const cases[][8] = {
		{ NULL },
		{ "frobnicate", "k", NULL },
		{ "get", NULL },
		{ "get", "a", "b", NULL },
		{ "put", NULL },
		{ "put", "k", "v", "x", NULL },
		{ "del", NULL },
		{ "ping", "x", NULL },
		{ "get", "", NULL },
		{ "-r", "zero", "get", "k", NULL },
		{ "-w", "17", "get", "k", NULL },
		{ "--pr", "0", "get", "k", NULL },
		{ "--timeout", "0", "get", "k", NULL },
		{ "--timeout", "10x", "get", "k", NULL },
		{ "--context", "not base64!", "put", "k", "v", NULL },
		{ "--context", "QUJD", "get", "k", NULL },
		{ "--bogus", "get", "k", NULL },
		{ "get", "k", "-r", NULL },
		{ "--host", "nohostport", "get", "k", NULL },
		{ "--sibling", "--context", "QUJD", "put", "k", "v", NULL },
		{ "--sibling", "del", "k", NULL },
		{ "--sibling", "get", "k", NULL },
		{ "-r", "1", "--sibling", "put", "k", "v", NULL },
		{ "--pr", "1", "--context", "QUJD", "del", "k", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i];
		run r = cli_run(NULL, 0, "-H", addr, a[0], a[0] ? a[1] : NULL,
				a[0] && a[1] ? a[2] : NULL,
				a[0] && a[1] && a[2] ? a[3] : NULL,
				a[0] && a[1] && a[2] && a[3] ? a[4] : NULL, NULL);

		cr_assert_eq(r.status, 2, "case %zu: status %d", i, r.status);
		cr_assert_not_null(strstr(r.err, "usage: dynkv"), "case %zu: %s", i, r.err);
		cr_assert_eq(r.outlen, 0, "case %zu", i);
		run_free(&r);
	}
	cr_assert_eq(nreq(), 0, "no usage error reaches the node");
}

/* A long-only option without its argument is named as typed (its
 * getopt value is past 255: printed as a letter, it came out as junk). */
Test(cli, a_long_option_missing_its_argument_is_named)
{
	static const char *const opts[] = { "--ttl", "--pr", "--pw", "--connect-timeout" };

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char want[64];
		run r = cli_run(NULL, 0, "-H", addr, "put", "k", "v", opts[i], NULL);

		snprintf(want, sizeof(want), "dynkv: option %s needs an argument\n", opts[i]);
		cr_assert_eq(r.status, 2, "%s: status %d", opts[i], r.status);
		cr_assert(strncmp(r.err, want, strlen(want)) == 0, "%s: %s", opts[i], r.err);
		run_free(&r);
	}
}

Test(cli, missing_key_and_empty_value_differ_by_exit_status)
{
	run r = cli_run(NULL, 0, "-H", addr, "put", "empty", "", NULL);

	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "empty", NULL);
	cr_assert_eq(r.status, 0, "found, empty: %s", r.err);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_empty(r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "get", "missing", NULL);
	cr_assert_eq(r.status, 4, "not found: %s", r.err);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_eq(r.err, "not found\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "missing", NULL);
	cr_assert_eq(r.status, 4);
	cr_assert_eq(r.outlen, 0);
	cr_assert_str_empty(r.err);
	run_free(&r);
}

Test(cli, options_that_do_not_apply_are_usage_errors)
{
	static const char *const cases[][5] = {
		{ "-w", "2", "get", "k", NULL },
		{ "--pw", "one", "get", "k", NULL },
		{ "-c", "QUJD", "get", "k", NULL },
		{ "-r", "2", "ping", NULL },
		{ "--pr", "1", "ping", NULL },
		{ "-w", "2", "ping", NULL },
		{ "--pw", "1", "ping", NULL },
		{ "-c", "QUJD", "ping", NULL },
	};
	run r;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i];

		r = cli_run(NULL, 0, "-H", addr, a[0], a[1], a[2], a[3], NULL);
		cr_assert_eq(r.status, 2, "case %zu: status %d", i, r.status);
		cr_assert_not_null(strstr(r.err, " is for "), "case %zu: %s", i, r.err);
		run_free(&r);
	}
	cr_assert_eq(nreq(), 0, "nothing is sent");
	/* -r and --pr of a write are accepted (and sent) */
	r = cli_run(NULL, 0, "-H", addr, "-r", "2", "--pr", "1", "put", "k", "v", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_eq(F.last_opts.r, 2);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "-r", "2", "del", "k", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
}

Test(cli, ping_to_a_silent_node_gives_up_after_5_s)
{
	int64_t t0 = now_ms(), dt;
	run r;

	F.h = h_silent;
	r = cli_run(NULL, 0, "-H", addr, "ping", NULL);
	dt = now_ms() - t0;
	cr_assert_eq(r.status, 3, "%s", r.err);
	cr_assert_geq(dt, 4900, "gave up after %lld ms", (long long)dt);
	cr_assert_lt(dt, 8000, "gave up after %lld ms", (long long)dt);
	cr_assert_str_eq(r.err, "dynkv: ping: the node did not answer within 5000 ms "
			 "(--timeout MS to wait longer)\n");
	run_free(&r);
	/* --timeout sets it */
	t0 = now_ms();
	r = cli_run(NULL, 0, "-H", addr, "--timeout", "300", "ping", NULL);
	dt = now_ms() - t0;
	cr_assert_eq(r.status, 3);
	cr_assert_lt(dt, 3000, "gave up after %lld ms", (long long)dt);
	cr_assert_str_eq(r.err, "dynkv: ping: the node did not answer within 300 ms\n");
	run_free(&r);
}

Test(cli, key_that_begins_with_a_dash_names_the_option_and_the_way_out)
{
	run r = cli_run(NULL, 0, "-H", addr, "get", "-dash", NULL);

	cr_assert_eq(r.status, 2);
	cr_assert(strncmp(r.err, "dynkv: unknown option -d in \"-dash\"; if \"-dash\" is a KEY "
			  "or VALUE, put -- before it: dynkv get -- -dash\nusage: dynkv", 99) == 0,
		  "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "put", "--dash", "v", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "dynkv: unknown option --dash; if it is a KEY or VALUE, "
				  "put -- before it: dynkv put -- --dash\n"), "%s", r.err);
	run_free(&r);
	/* a key that is an option of dynkv: the option is taken, the KEY is missing */
	r = cli_run(NULL, 0, "-H", addr, "get", "-q", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert_not_null(strstr(r.err, "get takes one KEY (put -- before a KEY that begins "
				  "with '-')\n"), "%s", r.err);
	run_free(&r);
	cr_assert_eq(nreq(), 0);
	r = cli_run(NULL, 0, "-H", addr, "-q", "get", "--", "-dash", NULL);
	cr_assert_eq(r.status, 4, "%s", r.err);       /* reached the node: not found */
	cr_assert_eq(F.last_klen, 5);
	cr_assert(memcmp(F.last_key, "-dash", 5) == 0);
	run_free(&r);
}

Test(cli, help_and_version)
{
	run r = cli_run(NULL, 0, "--version", NULL);

	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "dynkv " PACKAGE_VERSION "\n");
	run_free(&r);
	r = cli_run(NULL, 0, "--help", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "--connect-timeout"));
	cr_assert_not_null(strstr(r.out, "exit status: 0 success; 1 failure (cannot connect, an "
				  "error from the node,\na refusal); 2 usage error; 3 quorum not met "
				  "or timed out; 4 dynkv get:\nthe key is not found.\n"), "%s", r.out);
	cr_assert_null(strstr(r.out, "R, W, N"), "there is no N option");
	run_free(&r);
}

Test(cli, connection_refused_exits_1)
{
	char a[64];
	run r;

	snprintf(a, sizeof(a), "127.0.0.1:%u", closed_port());
	r = cli_run(NULL, 0, "-H", a, "get", "k", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "refused"), "%s", r.err);
	run_free(&r);
	r = cli_run(NULL, 0, "-H", a, "--json", "get", "k", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.out, "{\"ok\":false,\"error\":\""), "%s", r.out);
	run_free(&r);
}

Test(cli, pointed_at_an_http_server_says_so)
{
	run r;

	F.h = h_text;
	F.err_msg = "HTTP/1.1 400 Bad Request\r\n\r\n";
	r = cli_run(NULL, 0, "-H", addr, "get", "k", NULL);
	cr_assert_eq(r.status, 1, "%s", r.err);
	cr_assert_not_null(strstr(r.err, "dynkv: get: the peer at 127.0.0.1:"), "%s", r.err);
	cr_assert_not_null(strstr(r.err, " is not a dynkv node (it answered like an HTTP server: "
				  "\"HTTP/1.1 400 Bad Request\")\n"), "%s", r.err);
	cr_assert_eq(r.outlen, 0);
	run_free(&r);
}

/* --- the dynkv-admin command ---------------------------------------------- */

/* {"ok": false, "message": "refused: ..."} */
static const uint8_t refused_map[] = {
	0x82, 0xa2, 'o', 'k', 0xc2, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e',
	0xd9, 0x2a, 'r', 'e', 'f', 'u', 's', 'e', 'd', ':', ' ', 'n', '2', ' ', 'h', 'o', 'l',
	'd', 's', ' ', 't', 'h', 'e', ' ', 'o', 'n', 'l', 'y', ' ', 'c', 'o', 'p', 'y', ' ',
	'o', 'f', ' ', '3', ' ', 'p', 'a', 'r', 't', 's',
};

static void admin_setup(void)
{
	setup();
	cli_prog = "dynkv-admin";
	F.h = h_info;
}

TestSuite(admin, .init = admin_setup, .fini = teardown);

Test(admin, members_table_and_json)
{
	run r;
	char *sent;

	F.info = members_map;
	F.info_len = sizeof(members_map);
	r = cli_run(NULL, 0, "--host", addr, "members", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "ID  ADDR            STATUS  LIVENESS  KEYS\n"
				"n1  127.0.0.1:7070  valid   up           -\n");
	cr_assert_str_empty(r.err);
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "members");
	free(sent);
	r = cli_run(NULL, 0, "-H", addr, "--json", "members", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "{\"members\":[{\"id\":\"n1\",\"addr\":\"127.0.0.1:7070\","
				"\"status\":\"valid\",\"liveness\":\"up\",\"incarnation\":2,"
				"\"version\":5}]}\n");
	run_free(&r);
}

/* {"partition": 5, "n": 1, "preflist": [{"id": "n1", "addr": "a:1",
 *   "primary": true, "liveness": "up"}]} */
static const uint8_t preflist_map[] = {
	0x83, 0xa9, 'p', 'a', 'r', 't', 'i', 't', 'i', 'o', 'n', 0x05, 0xa1, 'n', 0x01,
	0xa8, 'p', 'r', 'e', 'f', 'l', 'i', 's', 't', 0x91, 0x84,
	0xa2, 'i', 'd', 0xa2, 'n', '1', 0xa4, 'a', 'd', 'd', 'r', 0xa3, 'a', ':', '1',
	0xa7, 'p', 'r', 'i', 'm', 'a', 'r', 'y', 0xc3,
	0xa8, 'l', 'i', 'v', 'e', 'n', 'e', 's', 's', 0xa2, 'u', 'p',
};

Test(admin, preflist_takes_one_key_and_prints_a_table)
{
	run r;
	char *sent;

	F.info = preflist_map;
	F.info_len = sizeof(preflist_map);
	r = cli_run(NULL, 0, "-H", addr, "preflist", "-my key", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "partition 5, n 1\n\n"
				"POS  ID  ADDR  ROLE     LIVENESS\n"
				"  1  n1  a:1   primary  up\n");
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "preflist|-my key");
	free(sent);
	r = cli_run(NULL, 0, "-H", addr, "preflist", NULL);
	cr_assert_eq(r.status, 2);
	cr_assert(strncmp(r.err, "dynkv-admin: preflist takes one KEY\n", 36) == 0, "%s", r.err);
	run_free(&r);
}

Test(admin, membership_change_prints_the_message)
{
	run r;
	char *sent;

	F.info = ok_map;
	F.info_len = sizeof(ok_map);
	r = cli_run(NULL, 0, "-H", addr, "leave", "n2", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	cr_assert_str_eq(r.out, "n2 is leaving\n");
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "leave|n2");
	free(sent);
	/* options end at the command: a NODE may start with '-' */
	r = cli_run(NULL, 0, "-H", addr, "remove", "-n3", NULL);
	cr_assert_eq(r.status, 0, "%s", r.err);
	run_free(&r);
	sent = last_admin();
	cr_assert_str_eq(sent, "remove|-n3");
	free(sent);
}

Test(admin, refusal_exits_1_with_the_message)
{
	run r;

	F.info = refused_map;
	F.info_len = sizeof(refused_map);
	r = cli_run(NULL, 0, "-H", addr, "leave", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "");
	cr_assert_str_eq(r.err, "dynkv-admin: refused: n2 holds the only copy of 3 parts\n");
	run_free(&r);
	r = cli_run(NULL, 0, "-H", addr, "--json", "remove", "n2", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.out, "{\"ok\":false,\"message\":\"refused: n2 holds the only copy "
				"of 3 parts\"}\n");
	run_free(&r);
}

Test(admin, node_error_exits_1)
{
	run r;

	F.h = h_error;
	F.err_code = PROTO_ERR_INVALID;
	F.err_msg = "unknown admin command \"frob\"";
	r = cli_run(NULL, 0, "-H", addr, "frob", "a", "b", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_str_eq(r.err, "dynkv-admin: unknown admin command \"frob\"\n");
	cr_assert_str_eq(r.out, "");
	run_free(&r);
	/* an unknown command reaches the node with its arguments */
	{
		char *sent = last_admin();

		cr_assert_str_eq(sent, "frob|a|b");
		free(sent);
	}
	F.h = h_info_half;
	F.info = members_map;
	F.info_len = sizeof(members_map);
	r = cli_run(NULL, 0, "-H", addr, "members", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "dynkv-admin: connection closed by the node"), "%s", r.err);
	run_free(&r);
}

Test(admin, connection_refused_exits_1)
{
	char a[64];
	run r;

	snprintf(a, sizeof(a), "127.0.0.1:%u", closed_port());
	r = cli_run(NULL, 0, "-H", a, "status", NULL);
	cr_assert_eq(r.status, 1);
	cr_assert_not_null(strstr(r.err, "dynkv-admin: "), "%s", r.err);
	cr_assert_not_null(strstr(r.err, "refused"), "%s", r.err);
	run_free(&r);
}

Test(admin, silent_node_times_out)
{
	int64_t t0 = now_ms();
	run r;

	F.h = h_silent;
	r = cli_run(NULL, 0, "-H", addr, "--timeout", "300", "status", NULL);
	cr_assert_eq(r.status, 3, "timed out: the status of dynkv's timeouts");
	cr_assert_not_null(strstr(r.err, "timed out"), "%s", r.err);
	cr_assert_lt(now_ms() - t0, 5000);
	run_free(&r);
}

Test(admin, usage_errors_exit_2)
{
	static const char *const cases[][4] = {
		{ NULL },
		{ "members", "x", NULL },
		{ "ring", "x", NULL },
		{ "status", "x", NULL },
		{ "join", NULL },
		{ "join", "a", "b", NULL },
		{ "leave", "a", "b", NULL },
		{ "remove", NULL },
		{ "remove", "", NULL },
		{ "preflist", NULL },
		{ "preflist", "a", "b", NULL },
		{ "preflist", "", NULL },
		{ "--timeout", "0", "members", NULL },
		{ "--timeout", "x", "members", NULL },
		{ "--bogus", "members", NULL },
		{ "--host", "nohostport", "members", NULL },
		{ "abcdefghijklmnopqrstuvwxyz0123456", NULL },
		{ "frob", "1", "2", NULL },     /* completed to 9 arguments below */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *const *a = cases[i];
		bool nine = i + 1 == sizeof(cases) / sizeof(cases[0]);
		run r = nine ? cli_run(NULL, 0, "-H", addr, "frob", "1", "2", "3", "4", "5", "6",
				       "7", "8", "9", NULL)
			     : cli_run(NULL, 0, "-H", addr, a[0], a[0] ? a[1] : NULL,
				       a[0] && a[1] ? a[2] : NULL, NULL);

		cr_assert_eq(r.status, 2, "case %zu: status %d (%s)", i, r.status, r.err);
		cr_assert_not_null(strstr(r.err, "usage: dynkv-admin"), "case %zu: %s", i, r.err);
		cr_assert_eq(r.outlen, 0, "case %zu", i);
		run_free(&r);
	}
	cr_assert_eq(nreq(), 0, "no usage error reaches the node");
}

Test(admin, help_and_version)
{
	run r = cli_run(NULL, 0, "--version", NULL);

	cr_assert_eq(r.status, 0);
	cr_assert_str_eq(r.out, "dynkv-admin " PACKAGE_VERSION "\n");
	run_free(&r);
	r = cli_run(NULL, 0, "--help", NULL);
	cr_assert_eq(r.status, 0);
	cr_assert_not_null(strstr(r.out, "--timeout MS"));
	cr_assert_not_null(strstr(r.out, "remove NODE"));
	cr_assert_not_null(strstr(r.out, "preflist KEY"));
	cr_assert_not_null(strstr(r.out, "exit status: 0 success; 1 failure (cannot connect, an "
				  "error from the node,\na refusal); 2 usage error; 3 quorum not met "
				  "or timed out; 4 dynkv get:\nthe key is not found.\n"), "%s", r.out);
	run_free(&r);
}
