#include "config.h"
/*
 * dynkv.c -- the command-line client: a thin main over libdynkv (dynkv.h).
 * man/dynkv.1 is the user's description of the output formats and exit
 * statuses; a change to one is a change to both.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynkv.h"

#define EXIT_USAGE 2
#define EXIT_QUORUM 3           /* quorum not met, or timed out */
#define DEFAULT_HOST "127.0.0.1:7070"
/* A value read from standard input: the node's max_frame cannot exceed 1 GiB. */
#define MAX_STDIN_VALUE (1ul << 30)

static const char usage_text[] =
	"usage: dynkv [--host HOST:PORT] [--json] [-q] [-r R] [-w W] [--pr N] [--pw N]\n"
	"             [--timeout MS] [--connect-timeout MS] [--context CTX] COMMAND\n"
	"commands:\n"
	"  get KEY            print the value(s) of KEY\n"
	"  put KEY [VALUE]    store VALUE (default: all of standard input) under KEY\n"
	"  del KEY            delete KEY (pass the context of a get)\n"
	"  ping               check that the node answers\n"
	"R, W, N: a number 1..16, one, quorum or all.  CTX: the base64 context of a get.\n"
	"dynkv --help for the options, man dynkv for everything.\n";

static const char help_text[] =
	"options:\n"
	"  -H, --host HOST:PORT       node to ask (default $DYNKV_HOST, else " DEFAULT_HOST ")\n"
	"  -j, --json                 print one JSON object on standard output\n"
	"  -q, --quiet                no context, tombstone or not-found notes on stderr\n"
	"  -r R                       read quorum\n"
	"  -w W                       write quorum\n"
	"      --pr N                 primaries among the R replies\n"
	"      --pw N                 primaries among the W acknowledgements\n"
	"  -t, --timeout MS           the node's time limit for the request (1..3600000)\n"
	"      --connect-timeout MS   time limit for connecting (default 5000)\n"
	"  -c, --context CTX          context (from a get) for put and del\n"
	"  -h, --help                 this help\n"
	"  -V, --version              the version\n"
	"Use -- before a KEY or VALUE that begins with '-'.\n";

enum { OPT_PR = 256, OPT_PW, OPT_CONNECT_TIMEOUT };

typedef struct cli {
	const char *host;               /* HOST:PORT to connect to */
	bool json;                      /* true iff --json */
	bool quiet;                     /* true iff --quiet */
	dynkv_opts opts;                /* r, w, pr, pw, timeout */
	unsigned connect_timeout_ms;    /* 0: the library's default */
	unsigned char *ctx;             /* decoded --context; owned */
	size_t ctxlen;
} cli;

/* The short usage on stderr, and exit 2. */
static void usage_exit(void) __attribute__((noreturn));
static void usage_exit(void)
{
	fputs(usage_text, stderr);
	exit(EXIT_USAGE);
}

/* A line about what was wrong, then usage_exit(). */
static void usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage(const char *fmt, ...)
{
	va_list ap;

	fputs("dynkv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage_exit();
}

/* --- base64 (RFC 4648, standard alphabet, padded) ------------------------- */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(FILE *f, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i += 3) {
		unsigned long v = (unsigned long)p[i] << 16;
		size_t n = len - i < 3 ? len - i : 3;

		if (n > 1)
			v |= (unsigned long)p[i + 1] << 8;
		if (n > 2)
			v |= p[i + 2];
		putc(b64chars[v >> 18 & 63], f);
		putc(b64chars[v >> 12 & 63], f);
		putc(n > 1 ? b64chars[v >> 6 & 63] : '=', f);
		putc(n > 2 ? b64chars[v & 63] : '=', f);
	}
}

/* Decode s (padding optional) into a new buffer: 0, or -1 if s is not base64. */
static int base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t len = strlen(s), n = 0;
	unsigned long acc = 0;
	unsigned bits = 0;
	unsigned char *buf;

	while (len > 0 && s[len - 1] == '=')
		len--;
	if (strlen(s) - len > 2 || len % 4 == 1)
		return -1;
	buf = malloc(len * 3 / 4 + 1);
	if (buf == NULL)
		return -1;
	for (size_t i = 0; i < len; i++) {
		const char *c = s[i] ? strchr(b64chars, s[i]) : NULL;

		if (c == NULL) {
			free(buf);
			return -1;
		}
		acc = acc << 6 | (unsigned long)(c - b64chars);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
		}
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/* --- JSON ----------------------------------------------------------------- */

/* True iff p[0..len) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static bool is_utf8(const unsigned char *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3;
		else
			return false;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		if (len - i - 1 < n || p[i + 1] < lo || p[i + 1] > hi)
			return false;
		for (size_t k = 2; k <= n; k++)
			if (p[i + k] < 0x80 || p[i + k] > 0xbf)
				return false;
		i += n + 1;
	}
	return true;
}

/* A JSON string of UTF-8 bytes: quotes, backslash and control characters
 * escaped, everything else as it is. */
static void put_json_string(FILE *f, const unsigned char *p, size_t len)
{
	putc('"', f);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\b': fputs("\\b", f); break;
		case '\f': fputs("\\f", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(f, "\\u%04x", c);
			else
				putc(c, f);
		}
	}
	putc('"', f);
}

static void put_json_cstr(FILE *f, const char *s)
{
	/* Messages come from the node: show them, but never as invalid JSON. */
	if (is_utf8((const unsigned char *)s, strlen(s)))
		put_json_string(f, (const unsigned char *)s, strlen(s));
	else
		put_json_string(f, (const unsigned char *)"(message not UTF-8)", 19);
}

/* --- commands ------------------------------------------------------------- */

/* Exit status for a library error code. */
static int exit_for(int rc)
{
	if (rc == DYNKV_EQUORUM || rc == DYNKV_ENODETIMEOUT || rc == DYNKV_ETIMEOUT)
		return EXIT_QUORUM;
	return EXIT_FAILURE;
}

/* Report a failed request and return its exit status. */
static int fail(const cli *o, dynkv *c, const char *cmd, int rc)
{
	const char *msg = c != NULL && dynkv_errmsg(c)[0] ? dynkv_errmsg(c) : dynkv_strerror(rc);

	if (o->json) {
		fputs("{\"ok\":false,\"error\":", stdout);
		put_json_cstr(stdout, msg);
		printf(",\"code\":%d}\n", rc);
	} else {
		fprintf(stderr, "dynkv: %s: %s\n", cmd, msg);
	}
	return exit_for(rc);
}

static void print_get_json(const dynkv_result *res)
{
	printf("{\"ok\":true,\"found\":%s,\"values\":[", res->found ? "true" : "false");
	for (size_t i = 0; i < res->nvalues; i++) {
		const dynkv_bytes *v = &res->values[i];

		if (i > 0)
			putchar(',');
		if (is_utf8(v->data, v->len)) {
			put_json_string(stdout, v->data, v->len);
		} else {
			putchar('"');
			put_base64(stdout, v->data, v->len);
			putchar('"');
		}
	}
	fputs("],\"encodings\":[", stdout);
	for (size_t i = 0; i < res->nvalues; i++)
		printf("%s\"%s\"", i > 0 ? "," : "",
		       is_utf8(res->values[i].data, res->values[i].len) ? "utf-8" : "base64");
	printf("],\"tombstones\":%llu,\"context\":\"", (unsigned long long)res->tombstones);
	put_base64(stdout, res->context.data, res->context.len);
	fputs("\"}\n", stdout);
}

/* The "context: BASE64" note on stderr, if there is a context. */
static void put_context_note(const dynkv_bytes *ctx)
{
	if (ctx->len == 0)
		return;
	fputs("context: ", stderr);
	put_base64(stderr, ctx->data, ctx->len);
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
		fputs("not found\n", stderr);
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

static int run(const cli *o, dynkv *c, const char *cmd, char **args, int nargs)
{
	dynkv_result res = {0};
	int rc = 0;

	if (strcmp(cmd, "get") == 0) {
		rc = dynkv_get(c, args[0], strlen(args[0]), &o->opts, &res);
		if (rc != 0)
			return fail(o, c, cmd, rc);
		if (o->json)
			print_get_json(&res);
		else
			print_get_plain(o, &res);
		dynkv_result_free(&res);
		return EXIT_SUCCESS;
	} else if (strcmp(cmd, "put") == 0) {
		unsigned char *in = NULL;
		const void *val;
		size_t vlen;

		if (nargs == 2) {
			val = args[1];
			vlen = strlen(args[1]);
		} else {
			if (read_stdin(&in, &vlen) != 0)
				return EXIT_FAILURE;
			val = in;
		}
		rc = dynkv_put(c, args[0], strlen(args[0]), val, vlen, o->ctx, o->ctxlen,
			       &o->opts, &res);
		free(in);
	} else if (strcmp(cmd, "ping") == 0) {
		rc = dynkv_ping(c, o->opts.timeout_ms);
		if (rc == 0 && !o->json)
			puts("pong");
	} else {
		rc = dynkv_delete(c, args[0], strlen(args[0]), o->ctx, o->ctxlen, &o->opts,
				  &res);
	}
	if (rc != 0)
		return fail(o, c, cmd, rc);
	if (strcmp(cmd, "ping") == 0) {
		if (o->json)
			puts("{\"ok\":true}");
	} else if (o->json) {
		fputs("{\"ok\":true,\"context\":\"", stdout);
		put_base64(stdout, res.context.data, res.context.len);
		fputs("\"}\n", stdout);
	} else if (!o->quiet) {
		put_context_note(&res.context);
	}
	dynkv_result_free(&res);
	return EXIT_SUCCESS;
}

/* --- options -------------------------------------------------------------- */

static int parse_quorum(const char *opt, const char *s)
{
	int q;

	if (dynkv_parse_quorum(s, &q) != 0 || q == DYNKV_DEFAULT) {
		fprintf(stderr, "dynkv: %s: \"%s\" is not a number 1..%d, one, quorum or all\n",
			opt, s, DYNKV_N_MAX);
		usage_exit();
	}
	return q;
}

static unsigned parse_ms(const char *opt, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < 1 ||
	    v > DYNKV_TIMEOUT_MAX) {
		fprintf(stderr, "dynkv: %s: \"%s\" is not a number of milliseconds 1..%u\n",
			opt, s, DYNKV_TIMEOUT_MAX);
		usage_exit();
	}
	return (unsigned)v;
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
		case 'r': o->opts.r = parse_quorum("-r", optarg); break;
		case 'w': o->opts.w = parse_quorum("-w", optarg); break;
		case OPT_PR: o->opts.pr = parse_quorum("--pr", optarg); break;
		case OPT_PW: o->opts.pw = parse_quorum("--pw", optarg); break;
		case 't': o->opts.timeout_ms = parse_ms("--timeout", optarg); break;
		case OPT_CONNECT_TIMEOUT:
			o->connect_timeout_ms = parse_ms("--connect-timeout", optarg);
			break;
		case 'c':
			free(o->ctx);
			o->ctx = NULL;
			o->ctxlen = 0;
			if (optarg[0] != '\0' && base64_decode(optarg, &o->ctx, &o->ctxlen) != 0)
				usage("--context: not the base64 context of a get: %s", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			exit(EXIT_SUCCESS);
		case 'V':
			printf("dynkv %s\n", PACKAGE_VERSION);
			exit(EXIT_SUCCESS);
		case ':':
			usage("option %s needs an argument", argv[optind - 1]);
			break;
		default:
			usage("unknown option %s", argv[optind - 1]);
		}
	}
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
	if (o.host == NULL)
		o.host = getenv("DYNKV_HOST");
	if (o.host == NULL || o.host[0] == '\0')
		o.host = DEFAULT_HOST;
	if (optind >= argc)
		usage("no command given");
	cmd = argv[optind];
	nargs = argc - optind - 1;
	if (strcmp(cmd, "delete") == 0)
		cmd = "del";
	if (strcmp(cmd, "get") == 0 || strcmp(cmd, "del") == 0) {
		if (nargs != 1)
			usage("%s takes one KEY", cmd);
	} else if (strcmp(cmd, "put") == 0) {
		if (nargs != 1 && nargs != 2)
			usage("put takes a KEY and an optional VALUE");
	} else if (strcmp(cmd, "ping") == 0) {
		if (nargs != 0)
			usage("ping takes no argument");
	} else {
		usage("unknown command \"%s\"", cmd);
	}
	if (nargs > 0 && argv[optind + 1][0] == '\0')
		usage("empty key");
	if (o.ctxlen > 0 && strcmp(cmd, "put") != 0 && strcmp(cmd, "del") != 0)
		usage("--context is for put and del");

	dynkv_config_init(&cfg);
	cfg.address = o.host;
	if (o.connect_timeout_ms)
		cfg.connect_timeout_ms = o.connect_timeout_ms;
	rc = dynkv_connect(&c, &cfg, err, sizeof(err));
	if (rc != 0) {
		if (rc == DYNKV_EARG)
			usage("%s", err);
		if (o.json) {
			fputs("{\"ok\":false,\"error\":", stdout);
			put_json_cstr(stdout, err);
			printf(",\"code\":%d}\n", rc);
		} else {
			fprintf(stderr, "dynkv: %s\n", err);
		}
		rc = EXIT_FAILURE;      /* connecting failed, timed out or not */
	} else {
		rc = run(&o, c, cmd, argv + optind + 1, nargs);
		dynkv_close(c);
	}
	free(o.ctx);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "dynkv: writing standard output: %s\n", strerror(errno));
		rc = EXIT_FAILURE;
	}
	return rc;
}
