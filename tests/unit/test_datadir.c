/*
 * test_datadir.c -- the data directory: its lock, and an identity that is
 * loaded, then recorded, and never silently changed.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "dkv_config.h"
#include "error.h"

static char dir[64];
static char node_path[128];
static dkv_config cfg;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/dkv-datadir-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(node_path, sizeof(node_path), "%s/sub/NODE", dir);
	dkv_config_init(&cfg);
}

static void teardown(void)
{
	char cmd[128];

	dkv_config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(datadir, .init = setup, .fini = teardown);

static datadir *open_sub(void)
{
	char path[128], err[256];
	datadir *d;

	snprintf(path, sizeof(path), "%s/sub", dir);
	cr_assert_eq(datadir_open(&d, path, err, sizeof(err)), 0, "%s", err);
	return d;
}

static void set(const char *key, const char *val)
{
	char err[256];

	cr_assert_eq(dkv_config_set(&cfg, key, val, err, sizeof(err)), 0, "%s", err);
}

Test(datadir, second_open_is_refused_with_the_holders_pid)
{
	char path[128], err[256], pid[32];
	datadir *d = open_sub(), *d2 = NULL;

	snprintf(path, sizeof(path), "%s/sub", dir);
	cr_assert_eq(datadir_open(&d2, path, err, sizeof(err)), DKV_ELOCKED);
	cr_assert_null(d2);
	snprintf(pid, sizeof(pid), "(pid %ld)", (long)getpid());
	cr_assert_not_null(strstr(err, pid), "%s", err);
	datadir_close(d);
	cr_assert_eq(datadir_open(&d2, path, err, sizeof(err)), 0, "%s", err);
	datadir_close(d2);
}

Test(datadir, load_writes_nothing_until_record)
{
	char err[256];
	datadir_identity id, again;
	struct stat st;
	datadir *d = open_sub();

	set("listen", "127.0.0.1:7001");
	cr_assert_eq(datadir_identity_load(d, &cfg, &id, err, sizeof(err)), 0, "%s", err);
	cr_assert(id.created);
	cr_assert_str_eq(id.node_id, "127.0.0.1:7001");
	cr_assert_neq(id.actor, 0);
	cr_assert_neq(stat(node_path, &st), 0, "NODE written before record()");
	cr_assert_eq(datadir_identity_record(d, &id, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(id.created);
	cr_assert_eq(stat(node_path, &st), 0);
	/* a later start reads the same identity, whatever the default listen */
	set("listen", "127.0.0.1:7002");
	cr_assert_eq(datadir_identity_load(d, &cfg, &again, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(again.created);
	cr_assert_str_eq(again.node_id, "127.0.0.1:7001");
	cr_assert_eq(again.actor, id.actor);
	cr_assert_eq(again.ring_size, id.ring_size);
	datadir_close(d);
}

Test(datadir, explicit_conflicts_are_refused_defaults_yield)
{
	char err[256];
	datadir_identity id;
	datadir *d = open_sub();

	set("listen", "127.0.0.1:7001");
	set("ring_size", "128");
	cr_assert_eq(datadir_identity_load(d, &cfg, &id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(datadir_identity_record(d, &id, err, sizeof(err)), 0, "%s", err);
	dkv_config_free(&cfg);
	dkv_config_init(&cfg);
	cr_assert_eq(datadir_identity_load(d, &cfg, &id, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(id.ring_size, 128);
	set("ring_size", "256");
	cr_assert_eq(datadir_identity_load(d, &cfg, &id, err, sizeof(err)), DKV_EINVAL);
	cr_assert_not_null(strstr(err, "ring_size 256 conflicts with ring_size 128"), "%s", err);
	dkv_config_free(&cfg);
	dkv_config_init(&cfg);
	set("node_id", "other");
	cr_assert_eq(datadir_identity_load(d, &cfg, &id, err, sizeof(err)), DKV_EINVAL);
	cr_assert_not_null(strstr(err, "node_id \"other\" conflicts"), "%s", err);
	datadir_close(d);
}

static void write_node(const char *text)
{
	FILE *f = fopen(node_path, "w");

	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

Test(datadir, damaged_node_files_are_refused)
{
	static const struct { const char *text; int rc; const char *says; } cases[] = {
		{ "garbage\n", DKV_ECORRUPT, "not a valid line" },
		{ "format = 1\nnode_id = a\nactor = 5\nring_size = 100\nn_val = 3\n",
		  DKV_ECORRUPT, "not a valid line" },
		{ "format = 1\nnode_id = a\nactor = 5\nring_size = 64\n", DKV_ECORRUPT, "incomplete" },
		{ "format = 9\nnode_id = a\nactor = 5\nring_size = 64\nn_val = 3\n",
		  DKV_EVERSION, "format 9" },
		{ "", DKV_EVERSION, "format 0" },
	};
	char err[256];
	datadir_identity id;
	datadir *d = open_sub();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_node(cases[i].text);
		err[0] = '\0';
		cr_assert_eq(datadir_identity_load(d, &cfg, &id, err, sizeof(err)), cases[i].rc,
			     "case %zu", i);
		cr_assert_not_null(strstr(err, cases[i].says), "case %zu: %s", i, err);
	}
	datadir_close(d);
}
