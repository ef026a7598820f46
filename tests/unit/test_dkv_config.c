/* test_dkv_config.c -- dynkv.conf parsing, options, checks (src/dkv_config.c). */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dkv_config.h"
#include "error.h"
#include "testutil.h"

static char err[1024];

/* Load text (NUL-terminated) as file "t.conf". */
static int load(dkv_config *cfg, const char *text)
{
	err[0] = '\0';
	return dkv_config_load_buffer(cfg, "t.conf", text, strlen(text), err, sizeof(err));
}

/* Write len bytes to a fresh temporary file; caller unlinks and frees. */
static char *temp_file(const void *buf, size_t len)
{
	char *path = strdup("/tmp/test_dkv_config.XXXXXX");
	cr_assert_not_null(path);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Expect text to fail to load with exactly msg, leaving the defaults. */
static void expect_file_error(const char *text, const char *msg)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	int rc = load(&cfg, text);
	cr_expect_eq(rc, DKV_EINVAL, "rc %d for [%s]", rc, text);
	cr_expect_str_eq(err, msg, "for [%s]", text);
	cr_expect_eq(cfg.n_val, 3);
	cr_expect_eq(cfg.ring_size, 512);
	dkv_config_free(&cfg);
}

static int parse(dkv_config *cfg, dkv_config_cmdline *cl, int argc, const char **argv)
{
	err[0] = '\0';
	return dkv_config_parse_args(cfg, argc, (char *const *)argv, cl, err, sizeof(err));
}

/* ---- defaults and the table --------------------------------------------- */

Test(config, defaults)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_expect_str_eq(cfg.node_id, "");
	cr_expect_str_eq(cfg.listen, "127.0.0.1:7070");
	cr_expect_str_eq(cfg.data_dir, "./var/dynkv");
	cr_expect_str_eq(cfg.seeds, "");
	cr_expect_eq(cfg.n_val, 3);
	cr_expect_eq(cfg.r, DKV_QUORUM_QUORUM);
	cr_expect_eq(cfg.w, DKV_QUORUM_QUORUM);
	cr_expect_eq(dkv_config_quorum(cfg.r, cfg.n_val), 2);
	cr_expect_eq(cfg.ring_size, 512);
	cr_expect_eq(cfg.sync, DKV_SYNC_INTERVAL);
	cr_expect_eq(cfg.sync_interval_ms, 1000);
	cr_expect_eq(cfg.max_key_size, 1024);
	cr_expect_eq(cfg.max_value_size, 1024 * 1024);
	cr_expect_eq(cfg.max_frame, 8 * 1024 * 1024);
	cr_expect_eq(cfg.max_connections, 10000);
	cr_expect_eq(cfg.request_timeout, 5000);
	cr_expect_eq(cfg.log_level, DKV_LOG_INFO);
	cr_expect_str_eq(cfg.log_file, "");
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(dkv_config_seed_count(&cfg), 0);
	dkv_config_free(&cfg);
	/* Free leaves an all-zero struct, which may be freed again. */
	dkv_config_free(&cfg);
}

Test(config, table_rows_and_default_text_round_trip)
{
	dkv_config cfg;
	dkv_config_key k;
	char buf[256];
	size_t n = 0;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	for (size_t i = 0; dkv_config_key_at(i, &k); i++, n++) {
		cr_expect_gt(strlen(k.description), 10, "%s", k.name);
		cr_expect_gt(strlen(k.type), 0);
		cr_expect_eq(strncmp(k.option, "--", 2), 0);
		for (size_t j = 0; k.name[j]; j++)
			cr_expect_eq(k.option[2 + j], k.name[j] == '_' ? '-' : k.name[j]);
		cr_expect_eq(k.option[2 + strlen(k.name)], '\0');
		/* The value init gave formats back as the documented default. */
		cr_assert_eq(dkv_config_get(&cfg, k.name, buf, sizeof(buf)), 0);
		cr_expect_str_eq(buf, k.default_text, "%s", k.name);
		dkv_config_key f;
		cr_expect(dkv_config_key_find(k.name, &f));
		cr_expect_str_eq(f.name, k.name);
	}
	cr_expect_eq(n, DKV_CONFIG_NKEYS);
	cr_expect_geq(n, 16);
	cr_expect_not(dkv_config_key_find("nope", &k));
	cr_expect_not(dkv_config_key_at(DKV_CONFIG_NKEYS, &k));
	cr_expect_eq(dkv_config_get(&cfg, "nope", buf, sizeof(buf)), DKV_ENOTFOUND);
	cr_expect_eq(dkv_config_get(&cfg, "listen", buf, 4), DKV_ETOOBIG);
	dkv_config_free(&cfg);
}

/* A test that every key of the table appears in man/dynkv.conf.5 comes with
 * that page (issue 4); a skipped test counts as a failure here. */

/* ---- setting every key ---------------------------------------------------- */

static const char all_keys_text[] =
	"node_id = n1\n"
	"listen = 10.0.0.1:7171\n"
	"data_dir = /srv/dynkv\n"
	"seeds = a:1, [::1]:2 ,c.example.org:7070\n"
	"n_val = 5\n"
	"r = one\n"
	"w = all\n"
	"ring_size = 1024\n"
	"sync = always\n"
	"sync_interval_ms = 250\n"
	"max_key_size = 512\n"
	"max_value_size = 4M\n"
	"max_frame = 16M\n"
	"max_connections = 77\n"
	"request_timeout = 500ms\n"
	"log_level = debug\n"
	"log_file = /var/log/dynkv.log\n";

static void expect_all_keys(const dkv_config *cfg)
{
	char host[64];
	uint16_t port;
	cr_expect_str_eq(cfg->node_id, "n1");
	cr_expect_str_eq(cfg->listen, "10.0.0.1:7171");
	cr_expect_str_eq(cfg->data_dir, "/srv/dynkv");
	cr_expect_eq(dkv_config_seed_count(cfg), 3);
	cr_expect_eq(dkv_config_seed(cfg, 1, host, sizeof(host), &port), 0);
	cr_expect_str_eq(host, "::1");
	cr_expect_eq(port, 2);
	cr_expect_eq(dkv_config_seed(cfg, 2, host, sizeof(host), &port), 0);
	cr_expect_str_eq(host, "c.example.org");
	cr_expect_eq(port, 7070);
	cr_expect_eq(dkv_config_seed(cfg, 3, host, sizeof(host), &port), DKV_ENOTFOUND);
	cr_expect_eq(cfg->n_val, 5);
	cr_expect_eq(cfg->r, DKV_QUORUM_ONE);
	cr_expect_eq(cfg->w, DKV_QUORUM_ALL);
	cr_expect_eq(dkv_config_quorum(cfg->w, cfg->n_val), 5);
	cr_expect_eq(cfg->ring_size, 1024);
	cr_expect_eq(cfg->sync, DKV_SYNC_ALWAYS);
	cr_expect_eq(cfg->sync_interval_ms, 250);
	cr_expect_eq(cfg->max_key_size, 512);
	cr_expect_eq(cfg->max_value_size, 4u << 20);
	cr_expect_eq(cfg->max_frame, 16u << 20);
	cr_expect_eq(cfg->max_connections, 77);
	cr_expect_eq(cfg->request_timeout, 500);
	cr_expect_eq(cfg->log_level, DKV_LOG_DEBUG);
	cr_expect_str_eq(cfg->log_file, "/var/log/dynkv.log");
}

Test(config, every_key_from_a_file)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	char *path = temp_file(all_keys_text, strlen(all_keys_text));
	int rc = dkv_config_load_file(&cfg, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	expect_all_keys(&cfg);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	unlink(path);
	free(path);
	dkv_config_free(&cfg);
}

/* The same settings as all_keys_text, as options; half as --k v, half --k=v. */
static const char *all_opts[] = {
	"dynkvd",
	"--node-id", "n1", "--listen=10.0.0.1:7171", "--data-dir", "/srv/dynkv",
	"--seeds=a:1, [::1]:2 ,c.example.org:7070", "--n-val", "5", "--r=one",
	"--w", "all", "--ring-size=1024", "--sync", "always",
	"--sync-interval-ms=250", "--max-key-size", "512", "--max-value-size=4M",
	"--max-frame", "16M", "--max-connections=77", "--request-timeout", "500ms",
	"--log-level=debug", "--log-file", "/var/log/dynkv.log",
};

Test(config, every_key_from_options)
{
	dkv_config cfg;
	dkv_config_cmdline cl;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	int argc = (int)(sizeof(all_opts) / sizeof(all_opts[0]));
	cr_assert_eq(parse(&cfg, &cl, argc, all_opts), 0, "%s", err);
	expect_all_keys(&cfg);
	cr_expect_null(cl.config_path);
	cr_expect_not(cl.help);
	cr_expect_not(cl.version);
	dkv_config_free(&cfg);
}

Test(config, every_key_has_an_option)
{
	/* Each key's option sets it: the table, not a hand-kept list. */
	dkv_config_key k;
	for (size_t i = 0; dkv_config_key_at(i, &k); i++) {
		dkv_config cfg;
		dkv_config_cmdline cl;
		char buf[256];
		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_get(&cfg, k.name, buf, sizeof(buf)), 0);
		const char *argv[] = { "dynkvd", k.option, buf };
		cr_expect_eq(parse(&cfg, &cl, 3, argv), 0, "%s: %s", k.option, err);
		dkv_config_free(&cfg);
	}
}

Test(config, set_and_get_round_trip)
{
	dkv_config a, b;
	dkv_config_key k;
	char buf[256], buf2[256];
	cr_assert_eq(dkv_config_init(&a), 0);
	cr_assert_eq(load(&a, all_keys_text), 0, "%s", err);
	cr_assert_eq(dkv_config_init(&b), 0);
	for (size_t i = 0; dkv_config_key_at(i, &k); i++) {
		cr_assert_eq(dkv_config_get(&a, k.name, buf, sizeof(buf)), 0);
		cr_expect_eq(dkv_config_set(&b, k.name, buf, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(dkv_config_get(&b, k.name, buf2, sizeof(buf2)), 0);
		cr_expect_str_eq(buf, buf2);
	}
	expect_all_keys(&b);
	dkv_config c;
	cr_assert_eq(dkv_config_copy(&c, &b), 0);
	dkv_config_free(&b);
	expect_all_keys(&c);
	dkv_config_free(&c);
	dkv_config_free(&a);
}

Test(config, set_errors)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_expect_eq(dkv_config_set(&cfg, "nope", "1", err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "unknown key 'nope'");
	cr_expect_eq(dkv_config_set(&cfg, "n_val", "x", err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "n_val: x is not a number between 1 and 16");
	cr_expect_eq(dkv_config_set(&cfg, "listen", "nohost", err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(cfg.listen, "127.0.0.1:7070");
	dkv_config_free(&cfg);
}

/* ---- options and file together -------------------------------------------- */

Test(config, options_override_the_file)
{
	const char *text = "n_val = 5\nring_size = 64\nlisten = 0.0.0.0:9000\n";
	char *path = temp_file(text, strlen(text));
	/* The option before --config still wins over the file. */
	const char *argv[] = { "dynkvd", "--ring-size", "512", "--config", path, "--n-val=4" };
	dkv_config cfg;
	dkv_config_cmdline cl;
	int rc = dkv_config_from_cmdline(&cfg, 6, (char *const *)argv, NULL, &cl, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_expect_str_eq(cl.config_path, path);
	cr_expect_eq(cfg.ring_size, 512);
	cr_expect_eq(cfg.n_val, 4);
	cr_expect_str_eq(cfg.listen, "0.0.0.0:9000");
	cr_expect_eq(cfg.sync, DKV_SYNC_INTERVAL);
	dkv_config_free(&cfg);
	unlink(path);
	free(path);
}

Test(config, from_cmdline_default_path)
{
	const char *text = "n_val = 2\n";
	char *path = temp_file(text, strlen(text));
	const char *argv[] = { "dynkvd" };
	dkv_config cfg;
	dkv_config_cmdline cl;
	cr_assert_eq(dkv_config_from_cmdline(&cfg, 1, (char *const *)argv, path, &cl, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.n_val, 2);
	dkv_config_free(&cfg);
	/* A missing default file is no error; a missing --config file is. */
	unlink(path);
	cr_assert_eq(dkv_config_from_cmdline(&cfg, 1, (char *const *)argv, path, &cl, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.n_val, 3);
	dkv_config_free(&cfg);
	const char *argv2[] = { "dynkvd", "--config", path };
	cr_expect_eq(dkv_config_from_cmdline(&cfg, 3, (char *const *)argv2, NULL, &cl, err, sizeof(err)), -ENOENT);
	char want[256];
	snprintf(want, sizeof(want), "%s: %s", path, strerror(ENOENT));
	cr_expect_str_eq(err, want);
	dkv_config_free(&cfg);
	free(path);
}

Test(config, from_cmdline_checks_and_reports_errors)
{
	dkv_config cfg;
	dkv_config_cmdline cl;
	const char *argv[] = { "dynkvd", "--n-val", "1", "--r", "2" };
	cr_expect_eq(dkv_config_from_cmdline(&cfg, 5, (char *const *)argv, NULL, &cl, err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "r = 2 is more than n_val = 1");
	dkv_config_free(&cfg);

	/* A bad option is found before the file is read. */
	const char *argv2[] = { "dynkvd", "--config", "/nonexistent/x.conf", "--bogus", "1" };
	cr_expect_eq(dkv_config_from_cmdline(&cfg, 5, (char *const *)argv2, NULL, &cl, err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "unknown option '--bogus'");
	dkv_config_free(&cfg);

	const char *argv3[] = { "dynkvd", "--config", "/nonexistent/x.conf", "--help" };
	cr_expect_eq(dkv_config_from_cmdline(&cfg, 4, (char *const *)argv3, NULL, &cl, err, sizeof(err)), 0);
	cr_expect(cl.help);
	dkv_config_free(&cfg);
}

Test(config, option_errors)
{
	struct { int argc; const char *argv[4]; const char *msg; } cases[] = {
		{ 2, { "d", "--bogus" }, "unknown option '--bogus'" },
		{ 2, { "d", "--bogus=3" }, "unknown option '--bogus'" },
		{ 3, { "d", "--ring_size", "64" }, "unknown option '--ring_size'" },
		{ 2, { "d", "-x" }, "unknown option '-x'" },
		{ 2, { "d", "-" }, "unknown option '-'" },
		{ 2, { "d", "--" }, "unknown option '--'" },
		{ 2, { "d", "stray" }, "unexpected argument 'stray'" },
		{ 2, { "d", "--n-val" }, "--n-val needs a value" },
		{ 2, { "d", "--config" }, "--config needs a value" },
		{ 3, { "d", "--ring-size", "100" },
		  "--ring-size: 100 is not a power of two between 64 and 1024" },
		{ 2, { "d", "--ring-size=" }, "--ring-size: no value given" },
		{ 2, { "d", "--sync=sometimes" }, "--sync: sometimes is not none, interval or always" },
		{ 2, { "d", "--request-timeout=5h" },
		  "--request-timeout: 5h is not a duration between 1ms and 1h (ms, or with ms, s, m, h)" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dkv_config cfg;
		dkv_config_cmdline cl;
		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_expect_eq(parse(&cfg, &cl, cases[i].argc, cases[i].argv), DKV_EINVAL, "case %zu", i);
		cr_expect_str_eq(err, cases[i].msg, "case %zu", i);
		dkv_config_free(&cfg);
	}
}

Test(config, option_flags_and_last_wins)
{
	dkv_config cfg;
	dkv_config_cmdline cl;
	const char *argv[] = { "d", "-h", "--version", "--n-val", "4", "--n-val=5", "--config=x.conf" };
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(parse(&cfg, &cl, 7, argv), 0, "%s", err);
	cr_expect(cl.help);
	cr_expect(cl.version);
	cr_expect_eq(cfg.n_val, 5);
	cr_expect_str_eq(cl.config_path, "x.conf");
	/* A value may begin with a dash or hold an '='. */
	const char *argv2[] = { "d", "--node-id", "-a=b" };
	cr_assert_eq(parse(&cfg, &cl, 3, argv2), 0, "%s", err);
	cr_expect_str_eq(cfg.node_id, "-a=b");
	dkv_config_free(&cfg);
}

/* ---- file syntax ---------------------------------------------------------- */

Test(config, comments_blanks_quotes_crlf)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	const char *text =
		"# a comment\n"
		"\n"
		"   \t  \n"
		"  n_val\t=\t5   # five\r\n"
		"data_dir = \"/x # y\"  # quoted hash\n"
		"log_file = /a#b\n"
		"node_id = \"q\\\"x\\\\\"\n"
		"   # indented comment\n"
		"seeds=\n"
		"listen=\"[::1]:7070\"";          /* no final newline */
	cr_assert_eq(load(&cfg, text), 0, "%s", err);
	cr_expect_eq(cfg.n_val, 5);
	cr_expect_str_eq(cfg.data_dir, "/x # y");
	cr_expect_str_eq(cfg.log_file, "/a#b");
	cr_expect_str_eq(cfg.node_id, "q\"x\\");
	cr_expect_str_eq(cfg.seeds, "");
	cr_expect_str_eq(cfg.listen, "[::1]:7070");
	dkv_config_free(&cfg);

	/* An empty file or comments only: nothing changes. */
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_expect_eq(load(&cfg, ""), 0);
	cr_expect_eq(load(&cfg, "# nothing\n\n"), 0);
	cr_expect_eq(cfg.n_val, 3);
	/* A trailing comment makes an empty value. */
	cr_expect_eq(load(&cfg, "node_id = # none\n"), 0, "%s", err);
	cr_expect_str_eq(cfg.node_id, "");
	dkv_config_free(&cfg);
}

Test(config, file_errors_name_file_line_reason)
{
	expect_file_error("ring_size = 100\n",
		"t.conf:1: ring_size: 100 is not a power of two between 64 and 1024");
	expect_file_error("\n# c\nfoo = 1\n", "t.conf:3: unknown key 'foo'");
	expect_file_error("N_VAL = 1\n", "t.conf:1: unknown key 'N_VAL'");
	expect_file_error("n_val = 3\n\nn_val = 4\n", "t.conf:3: n_val: set twice (first on line 1)");
	expect_file_error("just words\n", "t.conf:1: expected 'key = value'");
	expect_file_error("  = 3\n", "t.conf:1: no key before '='");
	expect_file_error("node_id = \"abc\n", "t.conf:1: node_id: no closing quote");
	expect_file_error("node_id = \"a\" b\n", "t.conf:1: node_id: text after the closing quote");
	expect_file_error("node_id = \"a\\n\"\n",
		"t.conf:1: node_id: only \\\" and \\\\ may follow a backslash in quotes");
	expect_file_error("node_id = \"a\tb\"\n", "t.conf:1: node_id: a\\x09b contains a control byte");
	expect_file_error("n_val =\n", "t.conf:1: n_val: no value given");
	expect_file_error("n_val = 0\n", "t.conf:1: n_val: 0 is not a number between 1 and 16");
	expect_file_error("n_val = 17\n", "t.conf:1: n_val: 17 is not a number between 1 and 16");
	expect_file_error("n_val = -1\n", "t.conf:1: n_val: -1 is not a number between 1 and 16");
	expect_file_error("n_val = +3\n", "t.conf:1: n_val: +3 is not a number between 1 and 16");
	expect_file_error("n_val = 3 4\n", "t.conf:1: n_val: 3 4 is not a number between 1 and 16");
	expect_file_error("n_val = 99999999999999999999999\n",
		"t.conf:1: n_val: 99999999999999999999999 is not a number between 1 and 16");
	expect_file_error("r = most\n",
		"t.conf:1: r: most is not one, quorum, all or a number between 1 and 16");
	expect_file_error("w = 17\n",
		"t.conf:1: w: 17 is not one, quorum, all or a number between 1 and 16");
	expect_file_error("ring_size = 2048\n",
		"t.conf:1: ring_size: 2048 is not a power of two between 64 and 1024");
	expect_file_error("ring_size = 32\n",
		"t.conf:1: ring_size: 32 is not a power of two between 64 and 1024");
	expect_file_error("sync = sometimes\n",
		"t.conf:1: sync: sometimes is not none, interval or always");
	expect_file_error("sync = Always\n", "t.conf:1: sync: Always is not none, interval or always");
	expect_file_error("log_level = verbose\n",
		"t.conf:1: log_level: verbose is not error, warning, info or debug");
	expect_file_error("sync_interval_ms = 60001\n",
		"t.conf:1: sync_interval_ms: 60001 is not a number between 1 and 60000");
	expect_file_error("max_key_size = 65536\n",
		"t.conf:1: max_key_size: 65536 is not a size between 1 and 65535 (bytes, or with K, M, G)");
	expect_file_error("max_value_size = 1T\n",
		"t.conf:1: max_value_size: 1T is not a size between 1 and 512M (bytes, or with K, M, G)");
	expect_file_error("max_frame = 1Mb\n",
		"t.conf:1: max_frame: 1Mb is not a size between 4K and 1G (bytes, or with K, M, G)");
	expect_file_error("request_timeout = 1.5s\n",
		"t.conf:1: request_timeout: 1.5s is not a duration between 1ms and 1h (ms, or with ms, s, m, h)");
	expect_file_error("request_timeout = 0\n",
		"t.conf:1: request_timeout: 0 is not a duration between 1ms and 1h (ms, or with ms, s, m, h)");
	expect_file_error("listen = localhost\n",
		"t.conf:1: listen: localhost is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("listen = h:0\n", "t.conf:1: listen: h:0 is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("listen = h:65536\n",
		"t.conf:1: listen: h:65536 is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("listen = :80\n", "t.conf:1: listen: :80 is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("listen = [::1:80\n",
		"t.conf:1: listen: [::1:80 is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("seeds = a:1,,b:2\n",
		"t.conf:1: seeds: '' is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("seeds = a:1, b\n",
		"t.conf:1: seeds: 'b' is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("seeds = a:1,\n",
		"t.conf:1: seeds: '' is not HOST:PORT with a port from 1 to 65535");
	expect_file_error("data_dir = \"\"\n", "t.conf:1: data_dir: must not be empty");
	/* Long values are shown cut, never whole. */
	char text[600], want[600];
	memset(text, 0, sizeof(text));
	strcpy(text, "node_id = ");
	memset(text + strlen(text), 'a', 300);
	strcat(text, "\n");
	snprintf(want, sizeof(want), "t.conf:1: node_id: %.48s... is longer than 255 bytes", text + 10);
	expect_file_error(text, want);
	/* The error is on the right line after comments and blanks. */
	expect_file_error("# one\n\nn_val = 3\n   \n# five\nring_size = 100\n",
		"t.conf:6: ring_size: 100 is not a power of two between 64 and 1024");
}

Test(config, error_leaves_config_unchanged)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(load(&cfg, "node_id = before\n"), 0);
	cr_expect_eq(load(&cfg, "n_val = 5\nnode_id = after\nring_size = 100\n"), DKV_EINVAL);
	cr_expect_eq(cfg.n_val, 3);
	cr_expect_str_eq(cfg.node_id, "before");
	/* Keys not in a later file keep their values. */
	cr_expect_eq(load(&cfg, "n_val = 5\n"), 0);
	cr_expect_str_eq(cfg.node_id, "before");
	cr_expect_eq(cfg.n_val, 5);
	dkv_config_free(&cfg);
}

Test(config, nul_byte)
{
	dkv_config cfg;
	const char text[] = "n_val = 3\nr = \0 1\n";
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_expect_eq(dkv_config_load_buffer(&cfg, "t.conf", text, sizeof(text) - 1, err, sizeof(err)),
		     DKV_EINVAL);
	cr_expect_str_eq(err, "t.conf:2: NUL byte in line");
	dkv_config_free(&cfg);
}

Test(config, line_length_limit)
{
	dkv_config cfg;
	char *text = malloc(DKV_CONFIG_LINE_MAX + 16);
	cr_assert_eq(dkv_config_init(&cfg), 0);
	/* Exactly the limit: fine. */
	memset(text, ' ', DKV_CONFIG_LINE_MAX);
	text[0] = '#';
	text[DKV_CONFIG_LINE_MAX] = '\n';
	cr_expect_eq(dkv_config_load_buffer(&cfg, "t.conf", text, DKV_CONFIG_LINE_MAX + 1,
					    err, sizeof(err)), 0, "%s", err);
	/* One more: an error, with or without a newline after it. */
	memset(text, ' ', DKV_CONFIG_LINE_MAX + 1);
	text[0] = '#';
	text[DKV_CONFIG_LINE_MAX + 1] = '\n';
	cr_expect_eq(dkv_config_load_buffer(&cfg, "t.conf", text, DKV_CONFIG_LINE_MAX + 2,
					    err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "t.conf:1: line longer than 4096 bytes");
	cr_expect_eq(dkv_config_load_buffer(&cfg, "t.conf", text, DKV_CONFIG_LINE_MAX + 1,
					    err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "t.conf:1: line longer than 4096 bytes");
	free(text);
	dkv_config_free(&cfg);
}

Test(config, oversized_file)
{
	size_t len = DKV_CONFIG_FILE_MAX + 1;
	char *text = malloc(len);
	cr_assert_not_null(text);
	/* Valid lines all the way: the size alone makes it an error. */
	for (size_t i = 0; i < len; i++)
		text[i] = (i % 64 == 63) ? '\n' : (i % 64 == 0 ? '#' : ' ');
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_expect_eq(dkv_config_load_buffer(&cfg, "t.conf", text, len, err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "t.conf: larger than 1048576 bytes");
	cr_expect_eq(dkv_config_load_buffer(&cfg, "t.conf", text, len - 1, err, sizeof(err)), 0, "%s", err);

	char *path = temp_file(text, len);
	cr_expect_eq(dkv_config_load_file(&cfg, path, err, sizeof(err)), DKV_EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s: larger than 1048576 bytes", path);
	cr_expect_str_eq(err, want);
	unlink(path);
	free(path);
	free(text);
	dkv_config_free(&cfg);
}

Test(config, load_file_errors)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_expect_eq(dkv_config_load_file(&cfg, "/nonexistent/dynkv.conf", err, sizeof(err)), -ENOENT);
	cr_expect_str_eq(err, "/nonexistent/dynkv.conf: No such file or directory");
	cr_expect_eq(dkv_config_load_file(&cfg, "/", err, sizeof(err)), -EISDIR);
	const char *text = "n_val = 2\nbad\n";
	char *path = temp_file(text, strlen(text));
	cr_expect_eq(dkv_config_load_file(&cfg, path, err, sizeof(err)), DKV_EINVAL);
	char want[256];
	snprintf(want, sizeof(want), "%s:2: expected 'key = value'", path);
	cr_expect_str_eq(err, want);
	unlink(path);
	free(path);
	dkv_config_free(&cfg);
}

/* ---- values ----------------------------------------------------------------- */

Test(config, quorum_words_and_numbers)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(load(&cfg, "n_val = 5\nr = quorum\nw = 4\n"), 0, "%s", err);
	cr_expect_eq(dkv_config_quorum(cfg.r, cfg.n_val), 3);
	cr_expect_eq(dkv_config_quorum(cfg.w, cfg.n_val), 4);
	cr_expect_eq(dkv_config_quorum(DKV_QUORUM_ONE, 5), 1);
	cr_expect_eq(dkv_config_quorum(DKV_QUORUM_ALL, 5), 5);
	cr_expect_eq(dkv_config_quorum(DKV_QUORUM_QUORUM, 1), 1);
	cr_expect_eq(dkv_config_quorum(DKV_QUORUM_QUORUM, 4), 3);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	dkv_config_free(&cfg);
}

Test(config, check_cross_field)
{
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(load(&cfg, "n_val = 3\nr = 4\n"), 0);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "r = 4 is more than n_val = 3");
	dkv_config_free(&cfg);

	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(load(&cfg, "n_val = 2\nw = 3\n"), 0);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "w = 3 is more than n_val = 2");
	dkv_config_free(&cfg);

	/* Words always fit; one replica is a valid cluster. */
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(load(&cfg, "n_val = 1\nr = all\nw = quorum\n"), 0);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	dkv_config_free(&cfg);

	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(load(&cfg, "max_value_size = 8M\n"), 0);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), DKV_EINVAL);
	cr_expect_str_eq(err, "max_frame = 8M is less than max_key_size 1K + max_value_size 8M"
			 " + 64K of overhead = 8455168 bytes");
	/* Exactly enough is enough. */
	char buf[64];
	snprintf(buf, sizeof(buf), "%u", (8u << 20) + 1024 + DKV_CONFIG_FRAME_OVERHEAD);
	cr_assert_eq(dkv_config_set(&cfg, "max_frame", buf, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
	dkv_config_free(&cfg);
}

/* The HTTP face's address: http_listen when set (checked as HOST:PORT),
 * else listen's host when it is loopback, or 127.0.0.1, and listen's port
 * plus 1000 (minus 1000 past 65535). */
Test(config, http_listen_default_and_check)
{
	static const struct {
		const char *listen, *http, *want;
	} cases[] = {
		{ "127.0.0.1:7070", "", "127.0.0.1:8070" },
		{ "127.0.0.9:7071", "", "127.0.0.9:8071" },
		{ "localhost:7070", "", "localhost:8070" },
		{ "[::1]:7070", "", "[::1]:8070" },
		{ "10.0.0.5:7070", "", "127.0.0.1:8070" },
		{ "0.0.0.0:7070", "", "127.0.0.1:8070" },
		{ "[::]:7070", "", "127.0.0.1:8070" },
		{ "db1.example:7070", "", "127.0.0.1:8070" },
		{ "127.0.0.1:64535", "", "127.0.0.1:65535" },
		{ "127.0.0.1:64536", "", "127.0.0.1:63536" },
		{ "127.0.0.1:65535", "", "127.0.0.1:64535" },
		{ "127.0.0.1:1", "", "127.0.0.1:1001" },
		{ "10.0.0.5:7070", "127.0.0.2:80", "127.0.0.2:80" },
		{ "10.0.0.5:7070", "localhost:80", "localhost:80" },
		{ "10.0.0.5:7070", "off", "" },
	};
	char out[320];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dkv_config cfg;

		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_set(&cfg, "listen", cases[i].listen, err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_eq(dkv_config_set(&cfg, "http_listen", cases[i].http, err, sizeof(err)),
			     0, "%s", err);
		cr_expect_eq(dkv_config_http_listen(&cfg, out, sizeof(out), err, sizeof(err)), 0,
			     "%s", err);
		cr_expect_str_eq(out, cases[i].want, "listen %s, http_listen \"%s\"",
				 cases[i].listen, cases[i].http);
		cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
		dkv_config_free(&cfg);
	}
	/* not HOST:PORT: refused by the check, naming the key */
	static const char *const bad[] = { "nonsense", "127.0.0.1", "127.0.0.1:0",
					   "127.0.0.1:65536", ":80", "127.0.0.1:http" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dkv_config cfg;
		char want[128];

		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_set(&cfg, "http_listen", bad[i], err, sizeof(err)), 0);
		cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), DKV_EINVAL, "%s", bad[i]);
		snprintf(want, sizeof(want), "http_listen: \"%s\" is not HOST:PORT with a port "
			 "from 1 to 65535, or off", bad[i]);
		cr_expect_str_eq(err, want);
		dkv_config_free(&cfg);
	}
	/* an address that is not loopback: refused here already (a name is
	 * resolved, and refused, when the face starts) */
	static const char *const wide[] = { "0.0.0.0:80", "10.1.2.3:8080", "[::]:80",
					    "[2001:db8::1]:80", "128.0.0.1:80" };
	for (size_t i = 0; i < sizeof(wide) / sizeof(wide[0]); i++) {
		dkv_config cfg;

		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_set(&cfg, "http_listen", wide[i], err, sizeof(err)), 0);
		cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), DKV_EINVAL, "%s", wide[i]);
		cr_expect(strstr(err, "is not a loopback address; the HTTP face has no "
				 "authentication yet") != NULL, "%s", err);
		dkv_config_free(&cfg);
	}
}

/* The Redis protocol face's address: the same rules as http_listen's,
 * at listen's port plus 2000; resp_siblings is error or newest. */
Test(config, resp_listen_and_siblings)
{
	static const struct {
		const char *listen, *resp, *want;
	} cases[] = {
		{ "127.0.0.1:7070", "", "127.0.0.1:9070" },
		{ "[::1]:7070", "", "[::1]:9070" },
		{ "10.0.0.5:7070", "", "127.0.0.1:9070" },
		{ "127.0.0.1:63535", "", "127.0.0.1:65535" },
		{ "127.0.0.1:65535", "", "127.0.0.1:63535" },
		{ "10.0.0.5:7070", "127.0.0.3:6379", "127.0.0.3:6379" },
		{ "10.0.0.5:7070", "off", "" },
	};
	char out[320];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dkv_config cfg;

		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_set(&cfg, "listen", cases[i].listen, err, sizeof(err)), 0);
		cr_assert_eq(dkv_config_set(&cfg, "resp_listen", cases[i].resp, err, sizeof(err)),
			     0, "%s", err);
		cr_expect_eq(dkv_config_resp_listen(&cfg, out, sizeof(out), err, sizeof(err)), 0,
			     "%s", err);
		cr_expect_str_eq(out, cases[i].want, "listen %s, resp_listen \"%s\"",
				 cases[i].listen, cases[i].resp);
		cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), 0, "%s", err);
		dkv_config_free(&cfg);
	}
	static const char *const bad[] = { "nonsense", "127.0.0.1:0", "10.1.2.3:6379" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dkv_config cfg;

		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_set(&cfg, "resp_listen", bad[i], err, sizeof(err)), 0);
		cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), DKV_EINVAL, "%s", bad[i]);
		cr_expect(strncmp(err, "resp_listen: ", 13) == 0, "%s", err);
		if (i == 2)
			cr_expect(strstr(err, "not a loopback address; the Redis protocol face has "
					 "no authentication yet") != NULL, "%s", err);
		dkv_config_free(&cfg);
	}
	static const struct {
		const char *v;
		int rc;
	} sib[] = { { "error", 0 }, { "newest", 0 }, { "Newest", DKV_EINVAL },
		    { "oldest", DKV_EINVAL } };
	for (size_t i = 0; i < sizeof(sib) / sizeof(sib[0]); i++) {
		dkv_config cfg;

		cr_assert_eq(dkv_config_init(&cfg), 0);
		cr_assert_eq(dkv_config_set(&cfg, "resp_siblings", sib[i].v, err, sizeof(err)), 0);
		cr_expect_eq(dkv_config_check(&cfg, err, sizeof(err)), sib[i].rc, "%s", sib[i].v);
		if (sib[i].rc != 0)
			cr_expect(strstr(err, "is neither error nor newest") != NULL, "%s", err);
		dkv_config_free(&cfg);
	}
}

Test(config, size_suffixes)
{
	struct { const char *text; uint64_t want; } ok[] = {
		{ "1", 1 }, { "1000", 1000 }, { "1K", 1024 }, { "1k", 1024 }, { "1KiB", 1024 },
		{ "3M", 3u << 20 }, { "3MiB", 3u << 20 }, { "2m", 2u << 20 }, { "512M", 512u << 20 },
		{ "0512", 512 },
	};
	const char *bad[] = { "", "K", "1KB", "1kib", "1 K", " 1", "1.5M", "-1", "1Ki", "1G",
			      "0", "18446744073709551616", "18014398509481984K" };
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_eq(dkv_config_set(&cfg, "max_value_size", ok[i].text, err, sizeof(err)), 0,
			     "%s: %s", ok[i].text, err);
		cr_expect_eq(cfg.max_value_size, ok[i].want, "%s", ok[i].text);
	}
	cr_expect_eq(dkv_config_set(&cfg, "max_frame", "1G", err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(cfg.max_frame, 1u << 30);
	cr_expect_eq(dkv_config_set(&cfg, "max_frame", "1GiB", err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(dkv_config_set(&cfg, "max_value_size", bad[i], err, sizeof(err)),
			     DKV_EINVAL, "[%s] accepted", bad[i]);
	dkv_config_free(&cfg);
}

Test(config, duration_suffixes)
{
	struct { const char *text; uint32_t want; } ok[] = {
		{ "5s", 5000 }, { "500ms", 500 }, { "250", 250 }, { "2m", 120000 },
		{ "3600s", 3600000 }, { "60m", 3600000 }, { "1ms", 1 },
	};
	const char *bad[] = { "", "s", "1.5s", "5 s", "5S", "1H", "61m", "3600001", "0s", "-5s",
			      "99999999999999999999m", "307445734561825861m" };
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_eq(dkv_config_set(&cfg, "request_timeout", ok[i].text, err, sizeof(err)), 0,
			     "%s: %s", ok[i].text, err);
		cr_expect_eq(cfg.request_timeout, ok[i].want, "%s", ok[i].text);
	}
	char buf[32];
	cr_assert_eq(dkv_config_set(&cfg, "request_timeout", "1500", err, sizeof(err)), 0);
	cr_assert_eq(dkv_config_get(&cfg, "request_timeout", buf, sizeof(buf)), 0);
	cr_expect_str_eq(buf, "1500ms");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(dkv_config_set(&cfg, "request_timeout", bad[i], err, sizeof(err)),
			     DKV_EINVAL, "[%s] accepted", bad[i]);
	dkv_config_free(&cfg);
}

Test(config, hostport_split)
{
	char host[32];
	uint16_t port = 0;
	cr_expect_eq(dkv_config_hostport("a.b:7", 5, host, sizeof(host), &port), 0);
	cr_expect_str_eq(host, "a.b");
	cr_expect_eq(port, 7);
	cr_expect_eq(dkv_config_hostport("[fe80::1%eth0]:65535", 20, host, sizeof(host), &port), 0);
	cr_expect_str_eq(host, "fe80::1%eth0");
	cr_expect_eq(port, 65535);
	/* Not NUL-terminated: only len bytes count. */
	cr_expect_eq(dkv_config_hostport("h:12345", 4, host, sizeof(host), &port), 0);
	cr_expect_eq(port, 12);
	cr_expect_eq(dkv_config_hostport("::1:80", 6, host, sizeof(host), &port), DKV_EINVAL);
	cr_expect_eq(dkv_config_hostport("h:123456", 8, NULL, 0, NULL), DKV_EINVAL);
	cr_expect_eq(dkv_config_hostport("h o:1", 5, NULL, 0, NULL), DKV_EINVAL);
	cr_expect_eq(dkv_config_hostport("[]:1", 4, NULL, 0, NULL), DKV_EINVAL);
	cr_expect_eq(dkv_config_hostport("[::1]x1", 7, NULL, 0, NULL), DKV_EINVAL);
	cr_expect_eq(dkv_config_hostport("h:", 2, NULL, 0, NULL), DKV_EINVAL);
	/* Host too long for the caller's buffer. */
	cr_expect_eq(dkv_config_hostport("abcdef:1", 8, host, 4, &port), DKV_EINVAL);
}

/* ---- hostile input -------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rng(void)
{
	/* xorshift64*: seeded, so a failure replays. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

/* Whatever the bytes, the parser answers 0 or DKV_EINVAL with a message
 * naming the file, and the config stays usable. */
static void feed(dkv_config *cfg, const char *buf, size_t len)
{
	err[0] = '\0';
	int rc = dkv_config_load_buffer(cfg, "g.conf", buf, len, err, sizeof(err));
	cr_assert(rc == 0 || rc == DKV_EINVAL, "rc %d", rc);
	if (rc != 0)
		cr_assert_eq(strncmp(err, "g.conf", 6), 0, "%s", err);
	char v[8192];
	dkv_config_key k;
	for (size_t i = 0; dkv_config_key_at(i, &k); i++) {
		cr_assert_eq(dkv_config_get(cfg, k.name, v, sizeof(v)), 0);
		char e2[1024];
		dkv_config c2;
		cr_assert_eq(dkv_config_init(&c2), 0);
		cr_assert_eq(dkv_config_set(&c2, k.name, v, e2, sizeof(e2)), 0,
			     "%s = [%s] does not round-trip: %s", k.name, v, e2);
		dkv_config_free(&c2);
	}
}

Test(config, garbage_random_bytes)
{
	rng_state = 0x9e3779b97f4a7c15ull;
	char *buf = malloc(9000);
	dkv_config cfg;
	cr_assert_eq(dkv_config_init(&cfg), 0);
	for (int iter = 0; iter < (int)test_reps(3000, 300); iter++) {
		size_t len = rng() % 9000;
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)rng();
		feed(&cfg, buf, len);
	}
	free(buf);
	dkv_config_free(&cfg);
}

Test(config, garbage_config_shaped)
{
	/* Bytes drawn from the text of a config, so that many lines get past
	 * the syntax and reach the value parsers. */
	static const char *const atoms[] = {
		"n_val", "r", "w", "ring_size", "listen", "seeds", "max_frame", "sync",
		"request_timeout", "node_id", "data_dir", "=", " ", "\t", "\n", "#", "\"",
		"\\", ",", ":", "[", "]", "1", "64", "1024", "K", "M", "G", "iB", "ms", "s",
		"m", "all", "one", "quorum", "always", "none", "h", "::1", "\r", "\x01",
		"99999999999999999999", "0", "-",
	};
	size_t natoms = sizeof(atoms) / sizeof(atoms[0]);
	rng_state = 12345;
	char buf[2048];
	dkv_config cfg;
	int accepted = 0;
	const int iters = (int)test_reps(20000, 1000);   /* 111 s under valgrind at 20000 */

	for (int iter = 0; iter < iters; iter++) {
		size_t len = 0, want = rng() % 200;
		while (len < want) {
			const char *a = atoms[rng() % natoms];
			size_t n = strlen(a);
			memcpy(buf + len, a, n);
			len += n;
		}
		cr_assert_eq(dkv_config_init(&cfg), 0);
		feed(&cfg, buf, len);
		accepted += err[0] == '\0';
		dkv_config_free(&cfg);
	}
	/* The generator must reach the accepting paths too. */
	cr_expect_gt(accepted, iters / 200);
}

Test(config, every_truncation_of_a_good_file)
{
	size_t len = strlen(all_keys_text);
	for (size_t cut = 0; cut <= len; cut++) {
		dkv_config cfg;
		cr_assert_eq(dkv_config_init(&cfg), 0);
		feed(&cfg, all_keys_text, cut);
		dkv_config_free(&cfg);
	}
	/* One case spelled out: a value cut short is caught. */
	expect_file_error("ring_size = 25", "t.conf:1: ring_size: 25 is not a power of two between 64 and 1024");
	expect_file_error("ring_si", "t.conf:1: expected 'key = value'");
}

/* SECONDS keys (aae_interval, aae_rebuild_interval): a plain number is
 * seconds, suffixes as for durations; kept in ms. */
Test(config, seconds_keys_take_a_plain_number_as_seconds)
{
	static const struct { const char *text; uint32_t want; } ok[] = {
		{ "2", 2000 }, { "500ms", 500 }, { "3s", 3000 }, { "2m", 120000 }, { "1h", 3600000 },
	};
	static const char *const bad[] = { "2x", "1.5", "-1", "0", "5ms", "2H", "4000000s" };
	char buf[32];
	dkv_config cfg;

	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(cfg.aae_interval, 2000, "the default is 2 s");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(dkv_config_set(&cfg, "aae_interval", ok[i].text, err, sizeof(err)), 0,
			     "%s: %s", ok[i].text, err);
		cr_assert_eq(cfg.aae_interval, ok[i].want, "%s", ok[i].text);
	}
	cr_assert_eq(dkv_config_get(&cfg, "aae_interval", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "1h");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dkv_config_set(&cfg, "aae_interval", bad[i], err, sizeof(err)), DKV_EINVAL,
			     "[%s] accepted", bad[i]);
		cr_assert_not_null(strstr(err, "seconds, or with ms, s, m, h"), "%s", err);
	}
	dkv_config_free(&cfg);
}

/* MICROS keys (handoff_yield): a plain number is microseconds, or with us,
 * ms or s; kept in microseconds; 0 allowed (the pace off). */
Test(config, micros_keys_take_a_plain_number_as_microseconds)
{
	static const struct { const char *text; uint32_t want; const char *get; } ok[] = {
		{ "300", 300, "300us" }, { "300us", 300, "300us" }, { "2ms", 2000, "2ms" },
		{ "1500", 1500, "1500us" }, { "1s", 1000000, "1s" }, { "0", 0, "0us" },
	};
	static const char *const bad[] = { "2x", "1.5ms", "-1", "2s", "1000001", "us", "3 ms",
					   "2m", "99999999999999999999" };
	char buf[32];
	dkv_config cfg;

	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(cfg.handoff_yield, 300, "the default is 300 us");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(dkv_config_set(&cfg, "handoff_yield", ok[i].text, err, sizeof(err)), 0,
			     "%s: %s", ok[i].text, err);
		cr_assert_eq(cfg.handoff_yield, ok[i].want, "%s", ok[i].text);
		cr_assert_eq(dkv_config_get(&cfg, "handoff_yield", buf, sizeof(buf)), 0);
		cr_assert_str_eq(buf, ok[i].get);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(dkv_config_set(&cfg, "handoff_yield", bad[i], err, sizeof(err)), DKV_EINVAL,
			     "[%s] accepted", bad[i]);
		cr_assert_not_null(strstr(err, "microseconds, or with us, ms, s"), "%s", err);
		cr_assert_eq(cfg.handoff_yield, 0, "[%s] changed the value", bad[i]);
	}
	dkv_config_free(&cfg);
}
