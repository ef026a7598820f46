/* test_bitcask.c -- the storage engine's operations: put, get, delete,
 * limits, locking, rotation, iteration, statistics and sync policies. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bctest.h"
#include "error.h"

static char *dir;

static void setup(void)
{
	dir = bct_mkdtemp();
}

static void teardown(void)
{
	bct_rmdir(dir);
	free(dir);
}

TestSuite(bitcask, .init = setup, .fini = teardown);

static void put_ok(bitcask *bc, const char *k, const char *v)
{
	cr_assert_eq(bitcask_put(bc, k, strlen(k), v, strlen(v)), 0);
}

static void get_is(bitcask *bc, const char *k, const char *want)
{
	void *v;
	size_t vl;
	int rc = bitcask_get(bc, k, strlen(k), &v, &vl);
	if (!want) {
		cr_assert_eq(rc, DKV_ENOTFOUND, "%s: expected not found, got %s", k, dkv_strerror(rc));
		return;
	}
	cr_assert_eq(rc, 0, "%s: %s", k, dkv_strerror(rc));
	cr_assert_eq(vl, strlen(want));
	cr_assert(memcmp(v, want, vl) == 0, "%s: wrong value", k);
	free(v);
}

Test(bitcask, put_get_delete)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c);
	get_is(bc, "a", NULL);
	put_ok(bc, "a", "1");
	put_ok(bc, "b", "2");
	get_is(bc, "a", "1");
	put_ok(bc, "a", "one");
	get_is(bc, "a", "one");
	cr_assert_eq(bitcask_delete(bc, "a", 1), 0);
	get_is(bc, "a", NULL);
	get_is(bc, "b", "2");
	cr_assert_eq(bitcask_delete(bc, "zz", 2), 0, "deleting an absent key is not an error");
	bct_check(bc);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.keys, 1);
	cr_assert_eq(st.writes, 5);
	cr_assert_eq(bitcask_close(bc), 0);
}

Test(bitcask, binary_keys_and_values)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c);
	uint8_t key[4] = { 0, 0xff, 0, 1 }, val[256];
	for (int i = 0; i < 256; i++)
		val[i] = (uint8_t)i;
	cr_assert_eq(bitcask_put(bc, key, sizeof(key), val, sizeof(val)), 0);
	cr_assert_eq(bitcask_put(bc, "", 0, "empty key", 9), 0);
	cr_assert_eq(bitcask_put(bc, "empty value", 11, "", 0), 0);
	void *v;
	size_t vl;
	cr_assert_eq(bitcask_get(bc, key, sizeof(key), &v, &vl), 0);
	cr_assert_eq(vl, 256);
	cr_assert(memcmp(v, val, 256) == 0);
	free(v);
	cr_assert_eq(bitcask_get(bc, "", 0, &v, &vl), 0);
	cr_assert_eq(vl, 9);
	free(v);
	cr_assert_eq(bitcask_get(bc, "empty value", 11, &v, &vl), 0);
	cr_assert_eq(vl, 0);
	free(v);
	/* Keys differing only after a NUL byte are different keys. */
	cr_assert_eq(bitcask_get(bc, key, 2, &v, &vl), DKV_ENOTFOUND);
	bitcask_close(bc);
}

Test(bitcask, size_limits)
{
	bitcask_config c;
	bct_config(&c);
	c.max_key_size = 100;
	c.max_value_size = 1000;
	bitcask *bc = bct_open(dir, &c);
	char k[101], v[1001];
	memset(k, 'k', sizeof(k));
	memset(v, 'v', sizeof(v));
	cr_assert_eq(bitcask_put(bc, k, 100, v, 1000), 0, "exactly the limits is allowed");
	cr_assert_eq(bitcask_put(bc, k, 101, v, 10), DKV_ETOOBIG);
	cr_assert_eq(bitcask_put(bc, k, 10, v, 1001), DKV_ETOOBIG);
	cr_assert_eq(bitcask_delete(bc, k, 101), DKV_ETOOBIG);
	void *got;
	size_t gl;
	cr_assert_eq(bitcask_get(bc, k, 100, &got, &gl), 0);
	cr_assert_eq(gl, 1000);
	free(got);
	bitcask_close(bc);

	/* A value that could never fit a file is refused, whatever the limit. */
	bct_config(&c);
	c.max_file_size = 4096;
	bc = bct_open(dir, &c);
	char *big = calloc(1, 5000);
	cr_assert_eq(bitcask_put(bc, "x", 1, big, 5000), DKV_ETOOBIG);
	free(big);
	bitcask_close(bc);
}

Test(bitcask, bad_config)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 10;
	bitcask *bc;
	char err[256];
	cr_assert_eq(bitcask_open(&bc, dir, &c, err, sizeof(err)), DKV_EINVAL);
	cr_assert(strstr(err, "max_file_size") != NULL, "err: %s", err);
	bct_config(&c);
	c.max_key_size = 70000;
	cr_assert_eq(bitcask_open(&bc, dir, &c, err, sizeof(err)), DKV_EINVAL);
	cr_assert(strstr(err, "max_key_size") != NULL, "err: %s", err);
}

Test(bitcask, exclusive_lock)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c), *bc2 = NULL;
	char err[256];
	int rc = bitcask_open(&bc2, dir, &c, err, sizeof(err));
	cr_assert_eq(rc, DKV_ELOCKED, "second opener got %s", dkv_strerror(rc));
	cr_assert(strstr(err, "locked") != NULL, "err: %s", err);
	char pid[32];
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	cr_assert(strstr(err, pid) != NULL, "err names the holder: %s", err);

	/* Another process too. */
	pid_t p = fork();
	if (p == 0) {
		bitcask *b3;
		_exit(bitcask_open(&b3, dir, &c, NULL, 0) == DKV_ELOCKED ? 0 : 1);
	}
	int status;
	waitpid(p, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child process could open a locked store");
	bitcask_close(bc);
	bc = bct_open(dir, &c);   /* free again after close */
	bitcask_close(bc);
}

Test(bitcask, open_errors)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc;
	char err[256], path[4096];
	snprintf(path, sizeof(path), "%s/file", dir);
	FILE *f = fopen(path, "w");
	fclose(f);
	int rc = bitcask_open(&bc, path, &c, err, sizeof(err));
	cr_assert_neq(rc, 0);
	cr_assert(strstr(err, path) != NULL, "error names the path: %s", err);
}

Test(bitcask, rotation_and_persistence)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 8192;
	bitcask *bc = bct_open(dir, &c);
	bct_model m;
	bct_model_init(&m, 500);
	char key[32];
	uint8_t val[300];
	for (uint64_t round = 0; round < 3; round++) {
		for (size_t i = 0; i < m.n; i++) {
			size_t len = (i * 7 + round) % 300;
			bct_value(val, len, i, round);
			size_t kl = bct_key(key, i);
			if ((i + round) % 5 == 0) {
				cr_assert_eq(bitcask_delete(bc, key, kl), 0);
				m.present[i] = false;
			} else {
				cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
				m.present[i] = true;
				m.gen[i] = round;
				m.len[i] = len;
			}
		}
	}
	bct_check(bc);
	bct_assert_model(bc, &m);
	bitcask_stats st;
	bitcask_file_stats fs[512];
	size_t nf = 512;
	bitcask_stats_get(bc, &st, fs, &nf);
	cr_assert_gt(nf, 10, "files rotated: %zu", nf);
	cr_assert_eq(st.files, nf);
	size_t active = 0;
	for (size_t i = 0; i < nf; i++) {
		active += fs[i].active;
		cr_assert_leq(fs[i].total_bytes, 8192);
		cr_assert_leq(fs[i].live_bytes + fs[i].dead_bytes + 16, fs[i].total_bytes);
	}
	cr_assert_eq(active, 1);
	cr_assert_gt(st.dead_bytes, 0);
	cr_assert(st.fragmentation > 0 && st.fragmentation < 1);
	cr_assert_eq(bitcask_close(bc), 0);

	bc = bct_open(dir, &c);
	bct_check(bc);
	bct_assert_model(bc, &m);
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_gt(st.hint_loads, 10, "reopen used hint files (%lu)", (unsigned long)st.hint_loads);
	cr_assert_eq(st.data_scans, 0);
	bitcask_close(bc);
	bct_model_free(&m);
}

Test(bitcask, every_immutable_file_gets_a_hint)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = bct_open(dir, &c);
	char key[32];
	uint8_t val[100] = { 0 };
	for (uint64_t i = 0; i < 400; i++)
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), val, sizeof(val)), 0);
	cr_assert_eq(bitcask_close(bc), 0);
	size_t nd, nh;
	char **d = bct_list(dir, ".data", &nd), **h = bct_list(dir, ".hint", &nh);
	cr_assert_gt(nd, 5);
	cr_assert_eq(nd, nh, "%zu data files, %zu hint files", nd, nh);
	for (size_t i = 0; i < nd; i++) {
		cr_assert_eq(strncmp(d[i], h[i], 16), 0);
		free(d[i]);
		free(h[i]);
	}
	free(d);
	free(h);
}

Test(bitcask, sync_policies)
{
	bitcask_sync pol[] = { BITCASK_SYNC_NONE, BITCASK_SYNC_INTERVAL, BITCASK_SYNC_ALWAYS };
	for (int p = 0; p < 3; p++) {
		bitcask_config c;
		bct_config(&c);
		c.sync = pol[p];
		c.sync_interval_ms = 20;
		bitcask *bc = bct_open(dir, &c);
		for (int i = 0; i < 50; i++)
			cr_assert_eq(bitcask_put(bc, "k", 1, &i, sizeof(i)), 0);
		bitcask_stats st;
		if (pol[p] == BITCASK_SYNC_INTERVAL)
			usleep(100 * 1000);
		bitcask_stats_get(bc, &st, NULL, NULL);
		if (pol[p] == BITCASK_SYNC_NONE)
			cr_assert_eq(st.syncs, 0);
		else if (pol[p] == BITCASK_SYNC_ALWAYS)
			cr_assert_geq(st.syncs, 1);
		else
			cr_assert_geq(st.syncs, 1, "the interval thread synced");
		cr_assert_eq(bitcask_sync_now(bc), 0);
		cr_assert_eq(bitcask_close(bc), 0);
		bc = bct_open(dir, &c);
		void *v;
		size_t vl;
		cr_assert_eq(bitcask_get(bc, "k", 1, &v, &vl), 0);
		cr_assert_eq(*(int *)v, 49);
		free(v);
		bitcask_close(bc);
	}
}

typedef struct writer_arg {
	bitcask *bc;
	int id;
	int n;
} writer_arg;

static void *group_writer(void *p)
{
	writer_arg *a = p;
	char key[32];
	for (int i = 0; i < a->n; i++) {
		int kl = snprintf(key, sizeof(key), "w%d-%d", a->id, i);
		if (bitcask_put(a->bc, key, (size_t)kl, key, (size_t)kl) != 0)
			return (void *)1;
	}
	return NULL;
}

/* With sync = always, concurrent writers share fdatasyncs: far fewer syncs
 * than writes, and every write still readable after reopen. */
Test(bitcask, group_commit)
{
	bct_rmdir(dir);
	free(dir);
	dir = bct_mkdtemp_disk();
	bitcask_config c;
	bct_config(&c);
	c.sync = BITCASK_SYNC_ALWAYS;
	c.max_file_size = 1 << 20;
	bitcask *bc = bct_open(dir, &c);
	enum { W = 16, N = 100 };
	pthread_t t[W];
	writer_arg a[W];
	for (int i = 0; i < W; i++) {
		a[i] = (writer_arg){ bc, i, N };
		pthread_create(&t[i], NULL, group_writer, &a[i]);
	}
	for (int i = 0; i < W; i++) {
		void *r;
		pthread_join(t[i], &r);
		cr_assert_null(r, "writer %d failed", i);
	}
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.writes, W * N);
	cr_log_info("group commit: %lu writes, %lu fdatasyncs", (unsigned long)st.writes, (unsigned long)st.syncs);
	cr_assert_lt(st.syncs, st.writes, "every write paid its own fdatasync");
	bitcask_close(bc);
	bc = bct_open(dir, &c);
	char key[32];
	for (int w = 0; w < W; w++)
		for (int i = 0; i < N; i++) {
			int kl = snprintf(key, sizeof(key), "w%d-%d", w, i);
			void *v;
			size_t vl;
			cr_assert_eq(bitcask_get(bc, key, (size_t)kl, &v, &vl), 0, "%s lost", key);
			cr_assert(vl == (size_t)kl && memcmp(v, key, vl) == 0);
			free(v);
		}
	bitcask_close(bc);
}

Test(bitcask, iterator_basic)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c);
	enum { N = 3000 };
	char key[32];
	for (uint64_t i = 0; i < N; i++) {
		size_t kl = bct_key(key, i);
		cr_assert_eq(bitcask_put(bc, key, kl, key, kl), 0);
	}
	for (uint64_t i = 0; i < N; i += 3)
		cr_assert_eq(bitcask_delete(bc, key, bct_key(key, i)), 0);
	bitcask_iter *it;
	cr_assert_eq(bitcask_iter_open(bc, true, &it), 0);
	uint8_t *seen = calloc(N, 1);
	const uint8_t *k, *v;
	size_t kl, vl;
	int rc, n = 0;
	while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0) {
		cr_assert(kl == vl && memcmp(k, v, kl) == 0, "value of the key");
		unsigned long i = bct_key_index(k, kl);
		cr_assert_lt(i, N);
		cr_assert_eq(seen[i], 0, "key %lu visited twice", i);
		cr_assert_neq(i % 3, 0, "deleted key %lu visited", i);
		seen[i] = 1;
		n++;
	}
	cr_assert_eq(rc, DKV_ENOTFOUND);
	cr_assert_eq(n, N - (N + 2) / 3);
	bitcask_iter_close(it);
	/* Keys only. */
	cr_assert_eq(bitcask_iter_open(bc, false, &it), 0);
	n = 0;
	while (bitcask_iter_next(it, &k, &kl, &v, &vl) == 0) {
		cr_assert_null(v);
		n++;
	}
	cr_assert_eq(n, N - (N + 2) / 3);
	bitcask_iter_close(it);
	free(seen);
	bitcask_close(bc);
}

/* Keys live for the whole iteration are seen exactly once while other keys
 * are put and deleted, values overwritten and the keydir grows. */
Test(bitcask, iterator_under_writes)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c);
	enum { STABLE = 2000 };
	char key[40];
	for (int i = 0; i < STABLE; i++) {
		int kl = snprintf(key, sizeof(key), "stable%d", i);
		cr_assert_eq(bitcask_put(bc, key, (size_t)kl, "v0", 2), 0);
	}
	bitcask_iter *it;
	cr_assert_eq(bitcask_iter_open(bc, true, &it), 0);
	uint8_t *seen = calloc(STABLE, 1);
	const uint8_t *k, *v;
	size_t kl, vl;
	int n = 0, extra = 0;
	while (bitcask_iter_next(it, &k, &kl, &v, &vl) == 0) {
		if (kl > 6 && memcmp(k, "stable", 6) == 0) {
			char tmp[40];
			memcpy(tmp, k + 6, kl - 6);
			tmp[kl - 6] = 0;
			int i = atoi(tmp);
			cr_assert_eq(seen[i], 0, "stable key %d seen twice", i);
			seen[i] = 1;
		}
		/* Churn: new keys (forcing keydir growth), overwrites, deletes. */
		for (int j = 0; j < 5; j++) {
			int kl2 = snprintf(key, sizeof(key), "churn%d", extra++);
			cr_assert_eq(bitcask_put(bc, key, (size_t)kl2, "x", 1), 0);
		}
		int kl3 = snprintf(key, sizeof(key), "stable%d", n % STABLE);
		cr_assert_eq(bitcask_put(bc, key, (size_t)kl3, "v1", 2), 0);
		kl3 = snprintf(key, sizeof(key), "churn%d", extra / 2);
		cr_assert_eq(bitcask_delete(bc, key, (size_t)kl3), 0);
		n++;
	}
	bitcask_iter_close(it);
	for (int i = 0; i < STABLE; i++)
		cr_assert_eq(seen[i], 1, "stable key %d never seen", i);
	free(seen);
	bct_check(bc);
	bitcask_close(bc);
}

Test(bitcask, close_null_is_a_no_op)
{
	cr_assert_eq(bitcask_close(NULL), 0);
}
