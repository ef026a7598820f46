/*
 * test_dkv_file.c -- dkv_file_replace(): whole files or nothing.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dkv_file.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/dkv-file-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	cr_assert_not_null(f, "%s", path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

TestSuite(dkv_file, .init = setup, .fini = teardown);

Test(dkv_file, creates_then_replaces_whole_and_leaves_no_temporary)
{
	char path[128], tmp[140], buf[64];
	struct stat st;

	snprintf(path, sizeof(path), "%s/f", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	cr_assert_eq(dkv_file_replace(path, "first version", 13), 0);
	cr_assert_eq(slurp(path, buf, sizeof(buf)), 13);
	cr_assert_eq(memcmp(buf, "first version", 13), 0);
	cr_assert_eq(dkv_file_replace(path, "2nd", 3), 0);
	cr_assert_eq(slurp(path, buf, sizeof(buf)), 3, "the old tail must not survive");
	cr_assert_eq(memcmp(buf, "2nd", 3), 0);
	cr_assert_eq(stat(tmp, &st), -1);
	cr_assert_eq(errno, ENOENT);
	cr_assert_eq(dkv_file_replace(path, "", 0), 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 0);
}

Test(dkv_file, a_missing_directory_is_an_error_and_the_old_file_stands)
{
	char path[128], buf[64];

	snprintf(path, sizeof(path), "%s/no/such/dir/f", dir);
	cr_assert_eq(dkv_file_replace(path, "x", 1), -ENOENT);
	snprintf(path, sizeof(path), "%s/g", dir);
	cr_assert_eq(dkv_file_replace(path, "kept", 4), 0);
	cr_assert_eq(chmod(dir, 0500), 0);
	if (geteuid() != 0) {
		/* an unwritable directory: the rename cannot happen */
		cr_assert_lt(dkv_file_replace(path, "lost", 4), 0);
		cr_assert_eq(slurp(path, buf, sizeof(buf)), 4);
		cr_assert_eq(memcmp(buf, "kept", 4), 0);
	}
	cr_assert_eq(chmod(dir, 0700), 0);
}

Test(dkv_file, a_path_too_long_is_refused)
{
	char path[5000];

	memset(path, 'a', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(dkv_file_replace(path, "x", 1), -ENAMETOOLONG);
}
