#include "config.h"
/*
 * dynkv.c -- the command-line client: a thin main over libdynkv (dynkv.h).
 * man/dynkv.1 is the user's description of the output formats and exit
 * statuses; a change to one is a change to both.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dynkv.h"

/* How long ping waits without --timeout: a node answers a PING from its
 * event loop at once (no replica is asked), so a node that has not
 * answered in 5 s is stuck or is not a dynkv node; 30 s (the library's
 * default, sized for a slow quorum) would only make the user wait. */
#define PING_TIMEOUT_MS 5000u
/* A value read from standard input: the node's max_frame cannot exceed 1 GiB. */
#define MAX_STDIN_VALUE (1ul << 30)

static const char usage_text[] =
	"usage: dynkv [--host HOST:PORT] [--json] [-q] [-r R] [-w W] [--pr PR] [--pw PW]\n"
	"             [--timeout MS] [--connect-timeout MS] [--context CTX | --sibling]\n"
	"             [--ttl SECS]\n"
	"             COMMAND\n"
	"commands:\n"
	"  get KEY            print the value(s) of KEY\n"
	"  put KEY [VALUE]    store VALUE (default: all of standard input) under KEY,\n"
	"                     replacing what is there\n"
	"  del KEY            delete KEY, whatever it holds\n"
	"  ping               check that the node answers\n"
	"R, W, PR, PW: a number 1..16, one, quorum or all.  CTX: the base64 context of a get.\n"
	"dynkv --help for the options, man dynkv for everything.\n";

static const char help_text[] =
	"options:\n"
	"  -H, --host HOST:PORT       node to ask (default $DYNKV_HOST, else " CLI_DEFAULT_HOST ")\n"
	"  -j, --json                 print one JSON object on standard output\n"
	"  -q, --quiet                no context, tombstone or not-found notes on stderr\n"
	"  -r R                       read quorum (get; put and del: of the read that\n"
	"                             replace mode makes first)\n"
	"  -w W                       write quorum (put, del)\n"
	"      --pr PR                primaries among the R replies\n"
	"      --pw PW                primaries among the W acknowledgements (put, del)\n"
	"  -t, --timeout MS           the node's time limit for the request (1..3600000;\n"
	"                             ping: how long to wait, default 5000)\n"
	"      --connect-timeout MS   time limit for connecting (default 5000)\n"
	"  -c, --context CTX          context (from a get) for put and del: replace what\n"
	"                             that get saw, not what is there now\n"
	"      --sibling              put: a blind write, kept beside what is there\n"
	"      --ttl SECS             put: the value expires SECS seconds after the write\n"
	"                             (1..3153600000, 100 years); a get then finds nothing\n"
	"  -h, --help                 this help\n"
	"  -V, --version              the version\n"
	"An option that does not apply to the command is a usage error.\n"
	"Use -- before a KEY or VALUE that begins with '-'.\n"
	CLI_EXIT_HELP;

enum { OPT_PR = 256, OPT_PW, OPT_CONNECT_TIMEOUT, OPT_SIBLING, OPT_TTL };

typedef struct cli {
	const char *host;               /* HOST:PORT to connect to */
	bool json;                      /* true iff --json */
	bool quiet;                     /* true iff --quiet */
	bool sibling;                   /* true iff --sibling (a blind put) */
	dynkv_opts opts;                /* r, w, pr, pw, timeout */
	unsigned connect_timeout_ms;    /* 0: the library's default */
	unsigned char *ctx;             /* decoded --context; owned */
	size_t ctxlen;
} cli;

static const char *const command_words[] = { "get", "put", "del", "delete", "ping", NULL };

static const cli_prog prog = {
	.name = "dynkv", .usage = usage_text, .help = help_text, .exit_usage = CLI_EXIT_USAGE,
	.operands = "KEY or VALUE", .commands = command_words,
};

/* --- JSON ----------------------------------------------------------------- */

static void put_json_cstr(FILE *f, const char *s)
{
	/* Messages come from the node: show them, but never as invalid JSON. */
	if (cli_is_utf8((const unsigned char *)s, strlen(s)))
		cli_put_json_string(f, (const unsigned char *)s, strlen(s));
	else
		cli_put_json_string(f, (const unsigned char *)"(message not UTF-8)", 19);
}

/* --- commands ------------------------------------------------------------- */

/* Report a failed request and return its exit status. */
static int fail(const cli *o, dynkv *c, const char *cmd, int rc)
{
	const char *msg = c != NULL && dynkv_errmsg(c)[0] ? dynkv_errmsg(c) : dynkv_strerror(rc);
	char ping[128];

	if (strcmp(cmd, "ping") == 0 && rc == DYNKV_ETIMEOUT) {
		unsigned ms = o->opts.timeout_ms ? o->opts.timeout_ms : PING_TIMEOUT_MS;

		snprintf(ping, sizeof(ping), "the node did not answer within %u ms%s", ms,
			 o->opts.timeout_ms ? "" : " (--timeout MS to wait longer)");
		msg = ping;
	}

	if (o->json) {
		fputs("{\"ok\":false,\"error\":", stdout);
		put_json_cstr(stdout, msg);
		printf(",\"code\":%d}\n", rc);
	} else {
		fprintf(stderr, "dynkv: %s: %s\n", cmd, msg);
	}
	return cli_exit_status(rc);
}

static void print_get_json(const dynkv_result *res)
{
	printf("{\"ok\":true,\"found\":%s,\"values\":[", res->found ? "true" : "false");
	for (size_t i = 0; i < res->nvalues; i++) {
		const dynkv_bytes *v = &res->values[i];

		if (i > 0)
			putchar(',');
		if (cli_is_utf8(v->data, v->len))
			cli_put_json_string(stdout, v->data, v->len);
		else
			cli_put_json_base64(stdout, v->data, v->len);
	}
	fputs("],\"encodings\":[", stdout);
	for (size_t i = 0; i < res->nvalues; i++)
		printf("%s\"%s\"", i > 0 ? "," : "",
		       cli_is_utf8(res->values[i].data, res->values[i].len) ? "utf-8" : "base64");
	printf("],\"tombstones\":%llu,\"context\":", (unsigned long long)res->tombstones);
	cli_put_json_base64(stdout, res->context.data, res->context.len);
	fputs("}\n", stdout);
}

/* The "context: BASE64" note on stderr, if there is a context. */
static void put_context_note(const dynkv_bytes *ctx)
{
	if (ctx->len == 0)
		return;
	fputs("context: ", stderr);
	cli_put_base64(stderr, ctx->data, ctx->len);
	fputc('\n', stderr);
}

static void print_get_plain(const cli *o, const dynkv_result *res)
{
	if (res->nvalues == 1) {
		const dynkv_bytes *v = &res->values[0];

		fwrite(v->data, 1, v->len, stdout);
		/* A terminal gets its line ended; a file gets the bytes exactly. */
		if (isatty(STDOUT_FILENO) && (v->len == 0 || v->data[v->len - 1] != '\n'))
			putchar('\n');
	} else {
		for (size_t i = 0; i < res->nvalues; i++) {
			const dynkv_bytes *v = &res->values[i];

			printf("--- sibling %zu of %zu, %zu bytes\n", i + 1, res->nvalues, v->len);
			fwrite(v->data, 1, v->len, stdout);
			putchar('\n');
		}
	}
	if (o->quiet)
		return;
	fflush(stdout);
	if (!res->found)
		fputs("not found\n", stderr);  /* and exit status 4 */
	if (res->tombstones > 0)
		fprintf(stderr, "tombstones: %llu\n", (unsigned long long)res->tombstones);
	put_context_note(&res->context);
}

/* All of standard input into *buf (malloc'd, caller frees). */
static int read_stdin(unsigned char **buf, size_t *len)
{
	size_t cap = 0, n = 0;
	unsigned char *b = NULL;

	for (;;) {
		size_t r;

		if (n == cap) {
			unsigned char *nb;

			if (cap >= MAX_STDIN_VALUE) {
				free(b);
				fprintf(stderr, "dynkv: put: value on standard input above %lu bytes\n",
					MAX_STDIN_VALUE);
				return -1;
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(b, cap + 1);
			if (nb == NULL) {
				free(b);
				fputs("dynkv: put: out of memory reading standard input\n", stderr);
				return -1;
			}
			b = nb;
		}
		r = fread(b + n, 1, cap - n, stdin);
		n += r;
		if (r == 0)
			break;
	}
	if (ferror(stdin)) {
		free(b);
		fprintf(stderr, "dynkv: put: reading standard input: %s\n", strerror(errno));
		return -1;
	}
	*buf = b;
	*len = n;
	return 0;
}

/* The note on stderr for a write that left siblings (put: more than its
 * own value; del: any value beside the tombstone). */
static void put_siblings_note(const char *cmd, const char *key, size_t siblings)
{
	bool del = strcmp(cmd, "del") == 0;

	if (siblings <= (del ? 0u : 1u))
		return;
	if (del)
		fprintf(stderr, "note: %s still has %zu sibling%s beside the delete (concurrent "
			"writes); get it and del with --context to delete %s\n", key, siblings,
			siblings == 1 ? "" : "s", siblings == 1 ? "it" : "them");
	else
		fprintf(stderr, "note: %s now has %zu siblings (concurrent writes); get it and "
			"put with --context to resolve\n", key, siblings);
}

static int run(const cli *o, dynkv *c, const char *cmd, char **args, int nargs)
{
	dynkv_result res = {0};
	dynkv_opts wopts = o->opts;
	int rc = 0;

	/* put and del replace what is there unless told what to replace
	 * (--context) or to replace nothing (--sibling) */
	wopts.replace = o->ctxlen == 0 && !o->sibling;

	if (strcmp(cmd, "get") == 0) {
		rc = dynkv_get(c, args[0], strlen(args[0]), &o->opts, &res);
		if (rc != 0)
			return fail(o, c, cmd, rc);
		if (o->json)
			print_get_json(&res);
		else
			print_get_plain(o, &res);
		/* Not found (never written, or only tombstones) differs from an
		 * empty value by the exit status alone: stdout is empty for both. */
		rc = res.found ? CLI_EXIT_OK : CLI_EXIT_NOTFOUND;
		dynkv_result_free(&res);
		return rc;
	} else if (strcmp(cmd, "put") == 0) {
		unsigned char *in = NULL;
		const void *val;
		size_t vlen;

		if (nargs == 2) {
			val = args[1];
			vlen = strlen(args[1]);
		} else {
			if (read_stdin(&in, &vlen) != 0)
				return CLI_EXIT_FAILURE;
			val = in;
		}
		rc = dynkv_put(c, args[0], strlen(args[0]), val, vlen, o->ctx, o->ctxlen,
			       &wopts, &res);
		free(in);
	} else if (strcmp(cmd, "ping") == 0) {
		rc = dynkv_ping(c, o->opts.timeout_ms ? o->opts.timeout_ms : PING_TIMEOUT_MS);
		if (rc == 0 && !o->json)
			puts("pong");
	} else {
		rc = dynkv_delete(c, args[0], strlen(args[0]), o->ctx, o->ctxlen, &wopts,
				  &res);
	}
	if (rc != 0)
		return fail(o, c, cmd, rc);
	if (strcmp(cmd, "ping") == 0) {
		if (o->json)
			puts("{\"ok\":true}");
	} else if (o->json) {
		fputs("{\"ok\":true,\"context\":", stdout);
		cli_put_json_base64(stdout, res.context.data, res.context.len);
		printf(",\"siblings\":%zu}\n", res.siblings);
	} else if (!o->quiet) {
		put_context_note(&res.context);
		put_siblings_note(cmd, args[0], res.siblings);
	}
	dynkv_result_free(&res);
	return CLI_EXIT_OK;
}

/* --- options -------------------------------------------------------------- */

static int parse_quorum(const char *opt, const char *s)
{
	int q;

	if (dynkv_parse_quorum(s, &q) != 0 || q == DYNKV_DEFAULT)
		cli_usage(&prog, "%s: \"%s\" is not a number 1..%d, one, quorum or all", opt, s,
			  DYNKV_N_MAX);
	return q;
}

/* --ttl SECS: 1 second to 100 years, as ms. */
static uint64_t parse_ttl(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < 1 ||
	    v > DYNKV_TTL_MAX_MS / 1000)
		cli_usage(&prog, "--ttl: \"%s\" is not a number of seconds 1..%llu", s,
			  DYNKV_TTL_MAX_MS / 1000);
	return (uint64_t)v * 1000u;
}

static void parse_args(cli *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "pr", required_argument, NULL, OPT_PR },
		{ "pw", required_argument, NULL, OPT_PW },
		{ "timeout", required_argument, NULL, 't' },
		{ "connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT },
		{ "context", required_argument, NULL, 'c' },
		{ "sibling", no_argument, NULL, OPT_SIBLING },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":H:jqr:w:t:c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H': o->host = optarg; break;
		case 'j': o->json = true; break;
		case 'q': o->quiet = true; break;
		case OPT_SIBLING: o->sibling = true; break;
		case OPT_TTL: o->opts.ttl_ms = parse_ttl(optarg); break;
		case 'r': o->opts.r = parse_quorum("-r", optarg); break;
		case 'w': o->opts.w = parse_quorum("-w", optarg); break;
		case OPT_PR: o->opts.pr = parse_quorum("--pr", optarg); break;
		case OPT_PW: o->opts.pw = parse_quorum("--pw", optarg); break;
		case 't': o->opts.timeout_ms = cli_parse_ms(&prog, "--timeout", optarg); break;
		case OPT_CONNECT_TIMEOUT:
			o->connect_timeout_ms = cli_parse_ms(&prog, "--connect-timeout", optarg);
			break;
		case 'c':
			free(o->ctx);
			o->ctx = NULL;
			o->ctxlen = 0;
			if (optarg[0] != '\0' && cli_base64_decode(optarg, &o->ctx, &o->ctxlen) != 0)
				cli_usage(&prog, "--context: not the base64 context of a get: %s",
					  optarg);
			break;
		default:
			cli_option_exit(&prog, ch, argv);
		}
	}
}

/*
 * An option that does not apply to cmd is a usage error rather than
 * silently ignored:
 *
 *            -r --pr   -w --pw   -c        --sibling  --ttl
 *   get      yes       no        no        no         no
 *   put      yes (*)   yes       yes (**)  yes (**)   yes
 *   del      yes (*)   yes       yes       no         no
 *   ping     no        no        no        no         no
 *
 * (*) the R and PR of the read that replace mode makes first: so not with
 *     -c or --sibling, which write without that read.
 * (**) one or the other: what to replace, or nothing.
 */
static void check_applies(const cli *o, const char *cmd)
{
	bool get = strcmp(cmd, "get") == 0, ping = strcmp(cmd, "ping") == 0;
	const char *rflag = o->opts.r ? "-r" : "--pr";

	if (ping && (o->opts.r || o->opts.pr))
		cli_usage(&prog, "%s is for get, put and del, not ping", o->opts.r ? "-r" : "--pr");
	if ((get || ping) && (o->opts.w || o->opts.pw))
		cli_usage(&prog, "%s is for put and del, not %s", o->opts.w ? "-w" : "--pw", cmd);
	if ((get || ping) && o->ctxlen > 0)
		cli_usage(&prog, "--context is for put and del, not %s", cmd);
	if (o->sibling && strcmp(cmd, "put") != 0)
		cli_usage(&prog, "--sibling is for put, not %s", cmd);
	if (o->opts.ttl_ms && strcmp(cmd, "put") != 0)
		cli_usage(&prog, "--ttl is for put, not %s", cmd);
	if (o->sibling && o->ctxlen > 0)
		cli_usage(&prog, "--sibling and --context exclude each other: a put replaces "
			  "what its context saw, or nothing");
	if (!get && !ping && (o->opts.r || o->opts.pr) && (o->sibling || o->ctxlen > 0))
		cli_usage(&prog, "%s is the quorum of the read a %s makes to replace what is "
			  "there; with %s it makes none", rflag, cmd,
			  o->sibling ? "--sibling" : "--context");
}

int main(int argc, char **argv)
{
	cli o = { .host = NULL };
	dynkv_config cfg;
	const char *cmd;
	char err[512];
	dynkv *c;
	int nargs, rc;

	parse_args(&o, argc, argv);
	o.host = cli_host(o.host);
	cmd = cli_command(&prog, argc, argv, &nargs);
	if (strcmp(cmd, "delete") == 0)
		cmd = "del";
	/* A KEY such as "-q" reads as an option: say how to give it. */
	if (strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) {
		if (nargs != 1)
			cli_usage(&prog, "%s takes one KEY (put -- before a KEY that begins with '-')",
				  cmd);
	} else if (strcmp(cmd, "put") == 0) {
		if (nargs != 1 && nargs != 2)
			cli_usage(&prog, "put takes a KEY and an optional VALUE (put -- before one "
				  "that begins with '-')");
	} else if (strcmp(cmd, "ping") == 0) {
		if (nargs != 0)
			cli_usage(&prog, "ping takes no argument");
	} else {
		cli_usage(&prog, "unknown command \"%s\"", cmd);
	}
	if (nargs > 0 && argv[optind + 1][0] == '\0')
		cli_usage(&prog, "empty key");
	check_applies(&o, cmd);

	dynkv_config_init(&cfg);
	cfg.address = o.host;
	if (o.connect_timeout_ms)
		cfg.connect_timeout_ms = o.connect_timeout_ms;
	rc = dynkv_connect(&c, &cfg, err, sizeof(err));
	if (rc != 0) {
		if (rc == DYNKV_EARG)
			cli_usage(&prog, "%s", err);
		if (o.json) {
			fputs("{\"ok\":false,\"error\":", stdout);
			put_json_cstr(stdout, err);
			printf(",\"code\":%d}\n", rc);
		} else {
			fprintf(stderr, "dynkv: %s\n", err);
		}
		rc = CLI_EXIT_FAILURE;  /* cannot connect, timed out or not */
	} else {
		rc = run(&o, c, cmd, argv + optind + 1, nargs);
		dynkv_close(c);
	}
	free(o.ctx);
	if (!cli_stdout_ok(&prog))
		rc = CLI_EXIT_FAILURE;
	return rc;
}
