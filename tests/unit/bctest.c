/* bctest.c -- see bctest.h. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bctest.h"
#include "error.h"

static char *mkdtemp_in(const char *base)
{
	char tmpl[4096];
	snprintf(tmpl, sizeof(tmpl), "%s/dynkv-test-XXXXXX", base);
	char *d = mkdtemp(tmpl);
	cr_assert_not_null(d, "mkdtemp: %s", strerror(errno));
	return strdup(d);
}

/* Memory-backed where possible: the suites open and close stores thousands
 * of times, and each open and close fsyncs the directory. */
char *bct_mkdtemp(void)
{
	const char *base = getenv("DKV_TEST_TMPDIR");
	if (!base || !*base)
		base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	return mkdtemp_in(base && *base ? base : "/tmp");
}

char *bct_mkdtemp_disk(void)
{
	const char *base = getenv("TMPDIR");
	return mkdtemp_in(base && *base ? base : "/var/tmp");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void bct_rmdir(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void quiet_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (getenv("BCT_VERBOSE"))
		fprintf(stderr, "[bitcask %d] %s\n", level, msg);
}

void bct_config(bitcask_config *cfg)
{
	bitcask_config_init(cfg);
	cfg->max_file_size = 64 * 1024;
	cfg->sync = BITCASK_SYNC_NONE;
	cfg->merge_frag_threshold = 0;
	cfg->merge_dead_bytes = 0;
	cfg->log = quiet_log;
}

bitcask *bct_open(const char *dir, const bitcask_config *cfg)
{
	bitcask *bc = NULL;
	char err[512];
	int rc = bitcask_open(&bc, dir, cfg, err, sizeof(err));
	cr_assert_eq(rc, 0, "bitcask_open(%s): %s (%s)", dir, err, dkv_strerror(rc));
	return bc;
}

void bct_check(bitcask *bc)
{
	char err[512];
	cr_assert_eq(bitcask_check(bc, err, sizeof(err)), 0, "bitcask_check: %s", err);
}

size_t bct_key(char *buf, uint64_t i)
{
	return (size_t)sprintf(buf, "k%08" PRIu64, i);
}

unsigned long bct_key_index(const uint8_t *key, size_t key_len)
{
	char tmp[32];
	cr_assert(key_len > 1 && key_len < sizeof(tmp) && key[0] == 'k', "not a test key");
	memcpy(tmp, key + 1, key_len - 1);
	tmp[key_len - 1] = 0;
	return strtoul(tmp, NULL, 10);
}

void bct_value(uint8_t *buf, size_t len, uint64_t i, uint64_t gen)
{
	uint64_t x = i * 0x9E3779B97F4A7C15ull ^ (gen + 1) * 0xC2B2AE3D27D4EB4Full;
	for (size_t k = 0; k < len; k++) {
		x ^= x >> 29;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 32;
		buf[k] = (uint8_t)x;
	}
}

void bct_model_init(bct_model *m, size_t n)
{
	m->n = n;
	m->present = calloc(n, sizeof(bool));
	m->gen = calloc(n, sizeof(uint64_t));
	m->len = calloc(n, sizeof(size_t));
	cr_assert(m->present && m->gen && m->len);
}

void bct_model_free(bct_model *m)
{
	free(m->present);
	free(m->gen);
	free(m->len);
}

void bct_assert_model(bitcask *bc, const bct_model *m)
{
	char key[32];
	size_t expected = 0;
	for (size_t i = 0; i < m->n; i++) {
		size_t kl = bct_key(key, i);
		void *v = NULL;
		size_t vl = 0;
		int rc = bitcask_get(bc, key, kl, &v, &vl);
		if (!m->present[i]) {
			cr_assert_eq(rc, DKV_ENOTFOUND, "key %zu should be absent, get gave %s", i, dkv_strerror(rc));
			continue;
		}
		expected++;
		cr_assert_eq(rc, 0, "key %zu: get gave %s", i, dkv_strerror(rc));
		cr_assert_eq(vl, m->len[i], "key %zu: length %zu, expected %zu", i, vl, m->len[i]);
		uint8_t *want = malloc(vl + 1);
		bct_value(want, vl, i, m->gen[i]);
		cr_assert(memcmp(v, want, vl) == 0, "key %zu: wrong value bytes (gen %" PRIu64 ")", i, m->gen[i]);
		free(want);
		free(v);
	}
	bitcask_iter *it;
	cr_assert_eq(bitcask_iter_open(bc, true, &it), 0);
	const uint8_t *k, *v;
	size_t kl, vl, seen = 0;
	int rc;
	while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0) {
		seen++;
		cr_assert(kl > 1 && k[0] == 'k', "iterator gave a foreign key");
	}
	cr_assert_eq(rc, DKV_ENOTFOUND);
	bitcask_iter_close(it);
	cr_assert_eq(seen, expected, "iterator saw %zu keys, expected %zu", seen, expected);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.keys, expected);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **bct_list(const char *dir, const char *suffix, size_t *n)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	char **v = NULL;
	size_t cnt = 0;
	struct dirent *de;
	size_t sl = strlen(suffix);
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		v = realloc(v, (cnt + 1) * sizeof(*v));
		v[cnt++] = strdup(de->d_name);
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*n = cnt;
	return v;
}

size_t bct_count(const char *dir, const char *suffix)
{
	size_t n;
	char **v = bct_list(dir, suffix, &n);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return n;
}

size_t bct_unlink_all(const char *dir, const char *suffix)
{
	size_t n;
	char **v = bct_list(dir, suffix, &n);
	for (size_t i = 0; i < n; i++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", dir, v[i]);
		unlink(p);
		free(v[i]);
	}
	free(v);
	return n;
}

long long bct_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}
