#include "config.h"
/*
 * cli.c -- helpers the command-line programs share; see cli.h.
 */

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dynkv.h"              /* limits and codes; no calls into libdynkv */

/* --- usage and options ---------------------------------------------------- */

void cli_usage_exit(const cli_prog *p)
{
	fputs(p->usage, stderr);
	exit(p->exit_usage);
}

void cli_usage(const cli_prog *p, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", p->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cli_usage_exit(p);
}

/* The word of argv the option getopt_long() has just refused came from:
 * for a short option in a cluster it is still at optind ("-dash": 'd' is
 * refused before the word is done), else it is the word before optind. */
static const char *refused_word(char **argv)
{
	const char *w = argv[optind];

	if (optopt != 0 && w != NULL && w[0] == '-' && w[1] != '-' && w[1] != '\0' &&
	    strchr(w + 1, optopt) != NULL)
		return w;
	return argv[optind - 1];
}

/* The first word of argv that is one of p->commands, or "COMMAND". */
static const char *command_word(const cli_prog *p, char **argv)
{
	for (size_t i = 1; argv[i] != NULL; i++)
		for (const char *const *c = p->commands; c != NULL && *c != NULL; c++)
			if (strcmp(argv[i], *c) == 0)
				return argv[i];
	return "COMMAND";
}

void cli_option_exit(const cli_prog *p, int ch, char **argv)
{
	const char *word;

	switch (ch) {
	case 'h':
		fputs(p->usage, stdout);
		fputs(p->help, stdout);
		exit(EXIT_SUCCESS);
	case 'V':
		printf("%s %s\n", p->name, PACKAGE_VERSION);
		exit(EXIT_SUCCESS);
	case ':':
		/* (long-only options have values of 256 and up, no letter) */
		if (optopt > 0 && optopt < 256)
			cli_usage(p, "option -%c needs an argument", optopt);
		cli_usage(p, "option %s needs an argument", argv[optind - 1]);
	default:
		break;
	}
	word = refused_word(argv);
	if (p->operands == NULL) {
		if (optopt > 0 && optopt < 256)
			cli_usage(p, "unknown option -%c in \"%s\"", optopt, word);
		cli_usage(p, "unknown option %s", word);
	}
	/* Options may follow the command, so an argument that begins with
	 * '-' reads as options: say how to give it. */
	if (optopt != 0)
		cli_usage(p, "unknown option -%c in \"%s\"; if \"%s\" is a %s, put -- before it:"
			  " %s %s -- %s", optopt, word, word, p->operands, p->name,
			  command_word(p, argv), word);
	cli_usage(p, "unknown option %s; if it is a %s, put -- before it: %s %s -- %s", word,
		  p->operands, p->name, command_word(p, argv), word);
}

const char *cli_command(const cli_prog *p, int argc, char **argv, int *nargs)
{
	if (optind >= argc)
		cli_usage(p, "no command given");
	*nargs = argc - optind - 1;
	return argv[optind];
}

unsigned cli_parse_ms(const cli_prog *p, const char *opt, const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v < 1 ||
	    v > DYNKV_TIMEOUT_MAX)
		cli_usage(p, "%s: \"%s\" is not a number of milliseconds 1..%u", opt, s,
			  DYNKV_TIMEOUT_MAX);
	return (unsigned)v;
}

const char *cli_host(const char *host)
{
	if (host == NULL)
		host = getenv("DYNKV_HOST");
	if (host == NULL || host[0] == '\0')
		host = CLI_DEFAULT_HOST;
	return host;
}

int cli_exit_status(int rc)
{
	if (rc == DYNKV_EQUORUM || rc == DYNKV_ENODETIMEOUT || rc == DYNKV_ETIMEOUT)
		return CLI_EXIT_RETRY;
	return CLI_EXIT_FAILURE;
}

bool cli_stdout_ok(const cli_prog *p)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing standard output: %s\n", p->name, strerror(errno));
		return false;
	}
	return true;
}

/* --- encodings ------------------------------------------------------------ */

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void cli_put_base64(FILE *f, const unsigned char *p, size_t len)
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

int cli_base64_decode(const char *s, unsigned char **out, size_t *outlen)
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

size_t cli_utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 1;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3;
	else
		return 0;
	/* The second byte's range excludes overlongs (e0, f0), surrogates
	 * (ed) and code points above U+10FFFF (f4). */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (left - 1 < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k <= n; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return 0;
	return n + 1;
}

bool cli_is_utf8(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; ) {
		size_t n = cli_utf8_seq(p + i, len - i);

		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

void cli_put_json_string(FILE *f, const unsigned char *p, size_t len)
{
	putc('"', f);
	for (size_t i = 0; i < len; ) {
		unsigned char c = p[i];
		size_t n = cli_utf8_seq(p + i, len - i);

		if (n == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
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
				fwrite(p + i, 1, n, f);
		}
		i += n;
	}
	putc('"', f);
}

void cli_put_json_base64(FILE *f, const unsigned char *p, size_t len)
{
	putc('"', f);
	cli_put_base64(f, p, len);
	putc('"', f);
}
