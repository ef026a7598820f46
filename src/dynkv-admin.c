#include "config.h"
/*
 * dynkv-admin.c -- the cluster administration command: a thin main over
 * libdynkv's dynkv_admin() (dynkv.h) and the renderers of admin_render.h.
 * man/dynkv-admin.1 is the user's description of the commands, the output
 * and the exit statuses; a change to one is a change to both.
 *
 * The node decides what a command means; this program checks only the
 * number of arguments of the commands it knows, and passes any other
 * command to the node as it is (a newer node may know it), printing its
 * result generically.
 */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_render.h"
#include "cli.h"
#include "dynkv.h"

static const char usage_text[] =
	"usage: dynkv-admin [--host HOST:PORT] [--json] [--timeout MS] COMMAND [ARGS]\n"
	"commands:\n"
	"  members            the cluster's members: status, liveness, keys; then the removed\n"
	"  ring               ring size, n_val, ownership and preference lists\n"
	"  status             the node's own figures\n"
	"  preflist KEY       the partition of KEY and its preference list\n"
	"  hints              what this node holds for down nodes (hinted handoff)\n"
	"  aae                anti-entropy: each partition's tree and last exchange\n"
	"  capacity           every member's load and the cluster's verdict: grow,\n"
	"                     shrink or hold\n"
	"  metrics            the node's figures in Prometheus's text format\n"
	"  transfers [pause|resume]\n"
	"                     partitions this node receives after a change; pause or\n"
	"                     resume them\n"
	"  plan join ADDR | leave NODE | remove NODE\n"
	"                     what that change would move, and the balance after\n"
	"  join SEED          make the node join the cluster SEED (HOST:PORT) is in\n"
	"  leave [NODE]       make the node (or member NODE) leave the cluster\n"
	"  remove NODE [--force]\n"
	"                     remove member NODE (a node that is gone for good)\n"
	"dynkv-admin --help for the options, man dynkv-admin for everything.\n";

static const char help_text[] =
	"options:\n"
	"  -H, --host HOST:PORT   node to ask (default $DYNKV_HOST, else " CLI_DEFAULT_HOST ")\n"
	"  -j, --json             print the result as one JSON object\n"
	"  -t, --timeout MS       time limit for connecting, and for the answer\n"
	"                         (1..3600000; default 5000 and 30000)\n"
	"  -h, --help             this help\n"
	"  -V, --version          the version\n"
	CLI_EXIT_HELP;

/* The commands this program knows: how many arguments each takes. */
static const struct command {
	const char *name;
	int min, max;
	const char *args;       /* for the usage message */
} commands[] = {
	{ "members", 0, 0, "no argument" },
	{ "ring", 0, 0, "no argument" },
	{ "status", 0, 0, "no argument" },
	{ "preflist", 1, 1, "one KEY" },
	{ "hints", 0, 0, "no argument" },
	{ "aae", 0, 0, "no argument" },
	{ "transfers", 0, 1, "nothing, pause or resume" },
	{ "capacity", 0, 0, "no argument" },
	{ "metrics", 0, 0, "no argument" },
	{ "plan", 2, 2, "a change and a node (join ADDR, leave NODE or remove NODE)" },
	{ "join", 1, 1, "one SEED (HOST:PORT)" },
	{ "leave", 0, 1, "an optional NODE" },
	{ "remove", 1, 2, "one NODE, and --force to remove one that is up or holds the only copy" },
};

typedef struct cli {
	const char *host;       /* HOST:PORT to connect to */
	bool json;              /* true iff --json */
	unsigned timeout_ms;    /* 0: the library's defaults */
} cli;

static const cli_prog prog = {
	.name = "dynkv-admin", .usage = usage_text, .help = help_text,
	.exit_usage = CLI_EXIT_USAGE,
};

static void parse_args(cli *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	opterr = 0;
	/* '+': options end at the command, so that a NODE may begin with '-' */
	while ((ch = getopt_long(argc, argv, "+:H:jt:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'H': o->host = optarg; break;
		case 'j': o->json = true; break;
		case 't': o->timeout_ms = cli_parse_ms(&prog, "--timeout", optarg); break;
		default:
			cli_option_exit(&prog, ch, argv);
		}
	}
}

/* Check the command and its arguments before anything is sent. */
static void check_command(const char *cmd, char **args, int nargs)
{
	size_t i;

	if (cmd[0] == '\0' || strlen(cmd) > DYNKV_ADMIN_MAX_COMMAND)
		cli_usage(&prog, "command \"%s\": not 1..%d bytes", cmd,
			  DYNKV_ADMIN_MAX_COMMAND);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *c = &commands[i];

		if (strcmp(cmd, c->name) != 0)
			continue;
		if (nargs < c->min || nargs > c->max)
			cli_usage(&prog, "%s takes %s", cmd, c->args);
		if (strcmp(cmd, "transfers") == 0 && nargs == 1 &&
		    strcmp(args[0], "pause") != 0 && strcmp(args[0], "resume") != 0)
			cli_usage(&prog, "transfers: \"%s\" is neither pause nor resume", args[0]);
		if (strcmp(cmd, "remove") == 0 && nargs == 2 && strcmp(args[1], "--force") != 0)
			cli_usage(&prog, "remove: \"%s\" after the node is not --force", args[1]);
		break;
	}
	if (nargs > DYNKV_ADMIN_MAX_ARGS)
		cli_usage(&prog, "%s: more than %d arguments", cmd, DYNKV_ADMIN_MAX_ARGS);
	for (int k = 0; k < nargs; k++) {
		if (strlen(args[k]) > DYNKV_ADMIN_MAX_ARG)
			cli_usage(&prog, "%s: argument %d longer than %d bytes", cmd,
				  k + 1, DYNKV_ADMIN_MAX_ARG);
		if (args[k][0] == '\0')
			cli_usage(&prog, "%s: argument %d is empty", cmd, k + 1);
	}
}

/* capacity: the members (from the node asked), then each member's own
 * figures, combined into the cluster's verdict (admin_render_capacity).
 * A member that does not answer is listed, and makes the verdict hold. */
static int capacity_of_members(const cli *o, dynkv *c, void **info, size_t *len)
{
	void *members = NULL, **maps = NULL;
	size_t mlen = 0, n = 0, *lens = NULL;
	char **addrs = NULL;
	int rc;

	rc = dynkv_admin(c, "members", NULL, 0, &members, &mlen);
	if (rc != 0)
		return rc;
	rc = admin_render_member_addrs(members, mlen, &addrs, &n);
	free(members);
	if (rc != 0)
		return rc == -ENOMEM ? DYNKV_ENOMEM : DYNKV_EPROTO;
	maps = calloc(n ? n : 1, sizeof(*maps));
	lens = calloc(n ? n : 1, sizeof(*lens));
	for (size_t i = 0; rc == 0 && i < n; i++) {
		dynkv_config cfg;
		char err[256];
		dynkv *m;

		if (maps == NULL || lens == NULL) {
			rc = DYNKV_ENOMEM;
			break;
		}
		dynkv_config_init(&cfg);
		cfg.address = addrs[i];
		if (o->timeout_ms != 0)
			cfg.connect_timeout_ms = cfg.request_timeout_ms = o->timeout_ms;
		if (dynkv_connect(&m, &cfg, err, sizeof(err)) != 0)
			continue;   /* unreachable: listed as such */
		if (dynkv_admin(m, "capacity", NULL, 0, &maps[i], &lens[i]) != 0)
			maps[i] = NULL;
		dynkv_close(m);
	}
	if (rc == 0 && admin_render_capacity((const void *const *)maps, lens, addrs, n, info,
					     len) != 0)
		rc = DYNKV_ENOMEM;
	for (size_t i = 0; maps != NULL && i < n; i++)
		free(maps[i]);
	free(maps);
	free(lens);
	admin_render_free_addrs(addrs, n);
	return rc;
}

/* Ask, print; the exit status. */
static int run(const cli *o, dynkv *c, const char *cmd, char **args, int nargs)
{
	void *info = NULL;
	size_t len = 0;
	char msg[1024];
	int rc;
	bool ok;

	if (strcmp(cmd, "capacity") == 0)
		rc = capacity_of_members(o, c, &info, &len);
	else
		rc = dynkv_admin(c, cmd, (const char *const *)args, (size_t)nargs, &info, &len);
	if (rc != 0) {
		fprintf(stderr, "dynkv-admin: %s\n",
			dynkv_errmsg(c)[0] ? dynkv_errmsg(c) : dynkv_strerror(rc));
		return cli_exit_status(rc);
	}
	ok = admin_render_ok(info, len, msg, sizeof(msg));
	if (o->json)
		rc = admin_render_json(stdout, info, len);
	else if (ok)
		rc = admin_render_text(stdout, cmd, info, len);
	if (rc == 0 && !ok)
		fprintf(stderr, "dynkv-admin: %s\n", msg[0] ? msg : "the node refused");
	else if (rc != 0 && rc != -EIO)
		fprintf(stderr, "dynkv-admin: the node's answer cannot be shown (%zu bytes)\n",
			len);
	free(info);
	return rc == 0 && ok ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
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
	check_command(cmd, argv + optind + 1, nargs);

	dynkv_config_init(&cfg);
	cfg.address = o.host;
	if (o.timeout_ms != 0) {
		cfg.connect_timeout_ms = o.timeout_ms;
		cfg.request_timeout_ms = o.timeout_ms;
	}
	rc = dynkv_connect(&c, &cfg, err, sizeof(err));
	if (rc != 0) {
		if (rc == DYNKV_EARG)
			cli_usage(&prog, "%s", err);
		fprintf(stderr, "dynkv-admin: %s\n", err);
		rc = CLI_EXIT_FAILURE;
	} else {
		rc = run(&o, c, cmd, argv + optind + 1, nargs);
		dynkv_close(c);
	}
	if (!cli_stdout_ok(&prog))
		rc = CLI_EXIT_FAILURE;
	return rc;
}
