/*
 * cli.h -- helpers the command-line programs share: dynkv(1) and
 * dynkv-admin(1) (and the renderers of admin_render.h that dynkv-admin
 * prints with).
 *
 * WHAT IT IS FOR
 *   The programs are thin mains over libdynkv, and they must behave alike
 *   where they do the same thing: the usage message and its exit status,
 *   --help, --version, the errors of getopt, a time limit in milliseconds,
 *   the default node, the check that standard output was written.  Their
 *   output shares the same encodings: base64 (RFC 4648, standard
 *   alphabet, padded), well-formed UTF-8 (no overlongs, no surrogates,
 *   nothing above U+10FFFF) and JSON strings.  One copy of each lives here.
 *
 * WHAT IT IS NOT
 *   Not part of libdynkv and not installed: it is linked into the programs
 *   (a convenience library, src/client/Makefile.inc).  It calls nothing of
 *   libdynkv, so admin_render's tests link it without the library.
 *
 * CONVENTIONS
 *   A program describes itself once, in a static const cli_prog; the
 *   helpers that report a usage error print "NAME: " before the line and
 *   the program's short usage after it, then exit with its exit_usage.
 *   Those are marked noreturn.  Nothing here keeps state.
 */
#ifndef DKV_CLI_H
#define DKV_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The exit statuses of dynkv and dynkv-admin: one table, in both manual
 * pages (EXIT STATUS) and both --help texts. */
#define CLI_EXIT_OK       0     /* success */
#define CLI_EXIT_FAILURE  1     /* cannot connect, an error from the node, a refusal */
#define CLI_EXIT_USAGE    2     /* usage error: nothing was sent */
#define CLI_EXIT_RETRY    3     /* quorum not met, or timed out: may succeed later */
#define CLI_EXIT_NOTFOUND 4     /* dynkv get: the key has no value */

/* The text of that table for --help, the same in both programs. */
#define CLI_EXIT_HELP \
	"exit status: 0 success; 1 failure (cannot connect, an error from the node,\n" \
	"a refusal); 2 usage error; 3 quorum not met or timed out; 4 dynkv get:\n" \
	"the key is not found.\n"

/* The node asked when neither --host nor $DYNKV_HOST names one. */
#define CLI_DEFAULT_HOST "127.0.0.1:7070"

/* What a program says about itself. */
typedef struct cli_prog {
	const char *name;       /* "dynkv": before messages, and in --version */
	const char *usage;      /* short usage: on stderr after a usage error */
	const char *help;       /* printed after usage by --help */
	int exit_usage;         /* exit status of a usage error */
	/* NULL, or what an argument that begins with '-' may be ("KEY or
	 * VALUE") when options may follow the command: an unknown option
	 * then says to put -- before it. */
	const char *operands;
	const char *const *commands;    /* the command words, NULL-terminated, or NULL */
} cli_prog;

/* --- usage and options ---------------------------------------------------- */

/* The short usage on stderr, and exit with p->exit_usage. */
void cli_usage_exit(const cli_prog *p) __attribute__((noreturn));

/* "NAME: " and a line about what was wrong on stderr, then
 * cli_usage_exit(). */
void cli_usage(const cli_prog *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* The getopt_long() results every program treats alike, given ch as it
 * returned it (with opterr 0 and an optstring that begins with ':' or
 * "+:"): 'h' prints usage and help on stdout and exits 0, 'V' prints
 * "NAME VERSION" and exits 0, ':' (missing argument) and anything else
 * (an unknown option) are usage errors.  An unknown option names the
 * word it came from ("unknown option -d in \"-dash\"") and, if
 * p->operands is set, says to put -- before that word if it is one. */
void cli_option_exit(const cli_prog *p, int ch, char **argv) __attribute__((noreturn));

/* The command word after the options getopt_long() has read:
 * argv[optind], or a usage error ("no command given") if there is none.
 * *nargs: how many words follow it, from argv[optind + 1]. */
const char *cli_command(const cli_prog *p, int argc, char **argv, int *nargs);

/* The time limit s given to option opt: a decimal number of milliseconds
 * 1..DYNKV_TIMEOUT_MAX, or a usage error. */
unsigned cli_parse_ms(const cli_prog *p, const char *opt, const char *s);

/* The node to ask: host (the --host option) if not NULL, else
 * $DYNKV_HOST; CLI_DEFAULT_HOST if that is unset or empty.  Borrowed from
 * host, the environment or a constant. */
const char *cli_host(const char *host);

/* The exit status for a failed request's code rc (a DYNKV_E* of dynkv.h):
 * CLI_EXIT_RETRY for a quorum not met or a timeout (the node's or the
 * client's), else CLI_EXIT_FAILURE. */
int cli_exit_status(int rc);

/* Flush standard output; if that or an earlier write to it failed, say so
 * ("NAME: writing standard output: ...") and return false. */
bool cli_stdout_ok(const cli_prog *p);

/* --- encodings ------------------------------------------------------------ */

/* Write p[0..len) to f as base64, padded. */
void cli_put_base64(FILE *f, const unsigned char *p, size_t len);

/* Decode s (padding optional) into a new buffer: 0, or -1 if s is not
 * base64 or memory ran out.  *out: caller frees with free(). */
int cli_base64_decode(const char *s, unsigned char **out, size_t *outlen);

/* The length of the well-formed UTF-8 sequence at p (left > 0 bytes
 * there), or 0 if the bytes there are not one. */
size_t cli_utf8_seq(const unsigned char *p, size_t left);

/* True iff p[0..len) is well-formed UTF-8. */
bool cli_is_utf8(const unsigned char *p, size_t len);

/* Write p[0..len) to f as a JSON string: quotes, backslash, control
 * characters and DEL escaped, other UTF-8 as it is, and each byte that is
 * not part of well-formed UTF-8 as U+FFFD. */
void cli_put_json_string(FILE *f, const unsigned char *p, size_t len);

/* Write p[0..len) to f as a JSON string of its base64. */
void cli_put_json_base64(FILE *f, const unsigned char *p, size_t len);

#endif /* DKV_CLI_H */
