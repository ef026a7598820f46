/* test_bitcask_merge.c -- merging: space reclaimed, contents kept, deleted
 * keys kept deleted at every crash point of a merge, merges racing with
 * writes and deletes, and automatic merges by threshold. */
#include "config.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
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

TestSuite(merge, .init = setup, .fini = teardown);

static void random_ops(bitcask *bc, bct_model *m, int ops, unsigned seed)
{
	char key[32];
	uint8_t val[300];
	srand(seed);
	for (int op = 0; op < ops; op++) {
		uint64_t i = (uint64_t)rand() % m->n;
		size_t kl = bct_key(key, i);
		if (rand() % 3 == 0) {
			cr_assert_eq(bitcask_delete(bc, key, kl), 0);
			m->present[i] = false;
		} else {
			size_t len = (size_t)rand() % 300;
			uint64_t gen = seed * 1000003ull + (uint64_t)op;
			bct_value(val, len, i, gen);
			cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
			m->present[i] = true;
			m->gen[i] = gen;
			m->len[i] = len;
		}
	}
}

Test(merge, reclaims_space_and_keeps_contents)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 8192;
	bitcask *bc = bct_open(dir, &c);
	bct_model m;
	bct_model_init(&m, 200);
	random_ops(bc, &m, 4000, 1);
	bitcask_stats before, after;
	bitcask_stats_get(bc, &before, NULL, NULL);
	cr_assert_eq(bitcask_rotate(bc), 0);
	cr_assert_eq(bitcask_merge(bc), 0);
	bitcask_stats_get(bc, &after, NULL, NULL);
	cr_assert_eq(after.merges, 1);
	cr_assert_lt(after.total_bytes, before.total_bytes / 2, "merge reclaimed %lu of %lu bytes",
		     (unsigned long)(before.total_bytes - after.total_bytes), (unsigned long)before.total_bytes);
	cr_assert_eq(after.dead_bytes, 0, "everything left after a merge of all files is live");
	cr_assert_gt(after.merge_bytes_in, after.merge_bytes_out);
	bct_check(bc);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bc = bct_open(dir, &c);
	bct_assert_model(bc, &m);
	bct_check(bc);
	/* A second merge with nothing dead changes nothing. */
	cr_assert_eq(bitcask_merge(bc), 0);
	bct_assert_model(bc, &m);
	bitcask_close(bc);
	bct_model_free(&m);
}

Test(merge, nothing_to_merge)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c);
	cr_assert_eq(bitcask_merge(bc), 0);
	cr_assert_eq(bitcask_put(bc, "a", 1, "b", 1), 0);
	cr_assert_eq(bitcask_merge(bc), 0, "only the active file: nothing to do");
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.keys, 1);
	bitcask_close(bc);
}

Test(merge, all_deleted)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = bct_open(dir, &c);
	char key[32];
	for (uint64_t i = 0; i < 300; i++)
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), "v", 1), 0);
	for (uint64_t i = 0; i < 300; i++)
		cr_assert_eq(bitcask_delete(bc, key, bct_key(key, i)), 0);
	cr_assert_eq(bitcask_rotate(bc), 0);
	cr_assert_eq(bitcask_merge(bc), 0);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.keys, 0);
	cr_assert_eq(st.files, 1, "only the new active file is left (%lu)", (unsigned long)st.files);
	bitcask_close(bc);
	bc = bct_open(dir, &c);
	for (uint64_t i = 0; i < 300; i++) {
		void *v;
		size_t vl;
		cr_assert_eq(bitcask_get(bc, key, bct_key(key, i), &v, &vl), DKV_ENOTFOUND, "key %lu came back", (unsigned long)i);
	}
	bitcask_close(bc);
}

/* --- every crash point ------------------------------------------------------
 * Build the directory states a crash can leave at each step of a merge
 * (outputs half-written as .tmp, outputs renamed beside all inputs, inputs
 * unlinked oldest first one by one) and open each: the contents never
 * change, and no deleted key comes back. */

static void copy_dir(const char *from, const char *to)
{
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
	cr_assert_eq(system(cmd), 0);
}

static void assert_dir_holds(const char *d, const bct_model *m, const char *state)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = NULL;
	char err[256];
	cr_assert_eq(bitcask_open(&bc, d, &c, err, sizeof(err)), 0, "%s: %s", state, err);
	bct_assert_model(bc, m);
	bct_check(bc);
	bitcask_close(bc);
}

Test(merge, every_crash_point)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = bct_open(dir, &c);
	bct_model m;
	bct_model_init(&m, 120);
	/* Old values first, then deletes of many of them in later files, then
	 * more churn: tombstones that shadow values in older files. */
	char key[32];
	uint8_t val[64];
	for (uint64_t i = 0; i < m.n; i++) {
		bct_value(val, 50, i, 0);
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), val, 50), 0);
		m.present[i] = true;
		m.len[i] = 50;
	}
	for (uint64_t i = 0; i < m.n; i += 2) {
		cr_assert_eq(bitcask_delete(bc, key, bct_key(key, i)), 0);
		m.present[i] = false;
	}
	random_ops(bc, &m, 400, 3);
	cr_assert_eq(bitcask_close(bc), 0);

	char pre[1024], post[1024], work[1024];
	snprintf(pre, sizeof(pre), "%s/pre", dir);
	snprintf(post, sizeof(post), "%s/post", dir);
	snprintf(work, sizeof(work), "%s/work", dir);
	cr_assert_eq(mkdir(pre, 0755), 0);
	char cmd[8192];
	snprintf(cmd, sizeof(cmd), "cp -a '%s'/*.data '%s'/*.hint '%s'/", dir, dir, pre);
	cr_assert_eq(system(cmd), 0);
	assert_dir_holds(pre, &m, "before the merge");
	copy_dir(pre, post);

	bc = bct_open(post, &c);
	cr_assert_eq(bitcask_merge(bc), 0);
	bitcask_close(bc);
	assert_dir_holds(post, &m, "after the merge");

	size_t npre, npost, nprehint;
	char **in = bct_list(pre, ".data", &npre), **out = bct_list(post, ".data", &npost);
	char **inh = bct_list(pre, ".hint", &nprehint);
	cr_assert_gt(npre, 5);
	/* Outputs: post files not in pre. */
	char p[4096], q[4096];

	/* COPY: outputs exist only as .tmp files beside all inputs. */
	copy_dir(pre, work);
	for (size_t i = 0; i < npost; i++) {
		snprintf(p, sizeof(p), "%s/%s", pre, out[i]);
		if (bct_file_size(p) >= 0)
			continue;
		snprintf(cmd, sizeof(cmd), "cp '%s/%s' '%s/%s.tmp'", post, out[i], work, out[i]);
		cr_assert_eq(system(cmd), 0);
	}
	assert_dir_holds(work, &m, "crash during copy");

	/* PUBLISH done: all inputs and all outputs. */
	copy_dir(pre, work);
	snprintf(cmd, sizeof(cmd), "cp -n '%s'/*.data '%s'/*.hint '%s'/ 2>/dev/null; true", post, post, work);
	cr_assert_eq(system(cmd), 0);
	/* Half the hints of the outputs, as if the crash came between renames. */
	assert_dir_holds(work, &m, "crash after publish");

	/* DELETE: inputs unlinked oldest first, one at a time. */
	copy_dir(pre, work);
	snprintf(cmd, sizeof(cmd), "cp -n '%s'/*.data '%s'/*.hint '%s'/ 2>/dev/null; true", post, post, work);
	cr_assert_eq(system(cmd), 0);
	char tmpd[1024];
	snprintf(tmpd, sizeof(tmpd), "%s/tmp", dir);
	for (size_t k = 0; k < npre; k++) {
		/* The newest file before the merge was the active one at close and
		 * is an input too; unlink hint first, then data. */
		snprintf(p, sizeof(p), "%s/%.16s.hint", work, in[k]);
		unlink(p);
		copy_dir(work, tmpd);
		assert_dir_holds(tmpd, &m, "crash between an input's hint and data unlink");
		snprintf(q, sizeof(q), "%s/%s", work, in[k]);
		cr_assert_eq(unlink(q), 0);
		copy_dir(work, tmpd);
		assert_dir_holds(tmpd, &m, "crash during input deletion");
	}
	for (size_t i = 0; i < npre; i++)
		free(in[i]);
	for (size_t i = 0; i < npost; i++)
		free(out[i]);
	for (size_t i = 0; i < nprehint; i++)
		free(inh[i]);
	free(in);
	free(out);
	free(inh);
	bct_model_free(&m);
}

/* --- racing ---------------------------------------------------------------- */

typedef struct racer {
	bitcask *bc;
	volatile int stop;
	int merges;
	int errors;
} racer;

static void *merger(void *p)
{
	racer *r = p;
	while (!r->stop) {
		int rc = bitcask_merge(r->bc);
		if (rc == 0)
			__atomic_fetch_add(&r->merges, 1, __ATOMIC_RELAXED);
		else if (rc != DKV_EBUSY)
			r->errors++;
		bitcask_rotate(r->bc);
	}
	return NULL;
}

Test(merge, races_with_writes_and_deletes, .timeout = 60)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 32768;
	bitcask *bc = bct_open(dir, &c);
	bct_model m;
	bct_model_init(&m, 500);
	racer r = { .bc = bc };
	pthread_t t;
	pthread_create(&t, NULL, merger, &r);
	char key[32];
	uint8_t val[300], got_want[300];
	srand(11);
	for (int op = 0; op < 30000; op++) {
		uint64_t i = (uint64_t)rand() % m.n;
		size_t kl = bct_key(key, i);
		int what = rand() % 10;
		if (what < 2) {
			cr_assert_eq(bitcask_delete(bc, key, kl), 0);
			m.present[i] = false;
		} else if (what < 6) {
			size_t len = (size_t)rand() % 300;
			bct_value(val, len, i, (uint64_t)op);
			cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
			m.present[i] = true;
			m.gen[i] = (uint64_t)op;
			m.len[i] = len;
		} else {
			void *v;
			size_t vl;
			int rc = bitcask_get(bc, key, kl, &v, &vl);
			if (!m.present[i]) {
				cr_assert_eq(rc, DKV_ENOTFOUND, "op %d: deleted key %lu read back during a merge", op, (unsigned long)i);
				continue;
			}
			cr_assert_eq(rc, 0, "op %d: key %lu lost during a merge: %s", op, (unsigned long)i, dkv_strerror(rc));
			bct_value(got_want, m.len[i], i, m.gen[i]);
			cr_assert(vl == m.len[i] && memcmp(v, got_want, vl) == 0, "op %d: key %lu has a stale value", op, (unsigned long)i);
			free(v);
		}
	}
	/* Under valgrind the merger may hardly have run yet: keep writing
	 * (and pausing now and then) until it has raced twice, boundedly. */
	for (int op = 0; __atomic_load_n(&r.merges, __ATOMIC_RELAXED) < 2 && op < 100000; op++) {
		uint64_t i = (uint64_t)rand() % m.n;
		size_t kl = bct_key(key, i);
		size_t len = (size_t)rand() % 300;

		bct_value(val, len, i, (uint64_t)(30000 + op));
		cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
		m.present[i] = true;
		m.gen[i] = (uint64_t)(30000 + op);
		m.len[i] = len;
		if (op % 1000 == 999)
			usleep(10000);
	}
	r.stop = 1;
	pthread_join(t, NULL);
	cr_log_info("%d merges raced with the operations", r.merges);
	cr_assert_geq(r.merges, 2, "merges actually ran (%d)", r.merges);
	cr_assert_eq(r.errors, 0);
	bct_check(bc);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bc = bct_open(dir, &c);
	bct_assert_model(bc, &m);
	bitcask_close(bc);
	bct_model_free(&m);
}

Test(merge, iterator_across_a_merge)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = bct_open(dir, &c);
	char key[32];
	enum { N = 1000 };
	for (uint64_t i = 0; i < N; i++)
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), key, 9), 0);
	for (uint64_t i = 0; i < N; i++)    /* make every old record dead */
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), key, 9), 0);
	bitcask_iter *it;
	cr_assert_eq(bitcask_iter_open(bc, true, &it), 0);
	uint8_t seen[N] = { 0 };
	const uint8_t *k, *v;
	size_t kl, vl;
	int n = 0;
	while (bitcask_iter_next(it, &k, &kl, &v, &vl) == 0) {
		if (n == 100) {
			cr_assert_eq(bitcask_rotate(bc), 0);
			cr_assert_eq(bitcask_merge(bc), 0);
		}
		unsigned long i = bct_key_index(k, kl);
		cr_assert_eq(seen[i], 0);
		seen[i] = 1;
		cr_assert(vl == 9 && memcmp(v, k, 9) == 0);
		n++;
	}
	bitcask_iter_close(it);
	cr_assert_eq(n, N);
	bitcask_close(bc);
}

Test(merge, automatic_by_fragmentation, .timeout = 30)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	c.merge_frag_threshold = 0.5;
	c.merge_min_bytes = 0;
	c.merge_check_ms = 20;
	bitcask *bc = bct_open(dir, &c);
	char key[32];
	for (int round = 0; round < 4; round++)
		for (uint64_t i = 0; i < 100; i++)
			cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), "0123456789", 10), 0);
	bitcask_stats st;
	for (int w = 0; w < 500; w++) {
		bitcask_stats_get(bc, &st, NULL, NULL);
		if (st.merges > 0)
			break;
		usleep(10000);
	}
	cr_assert_gt(st.merges, 0, "no automatic merge at %.2f fragmentation", st.fragmentation);
	/* Soon no immutable file is over the threshold any more. */
	bool over = true;
	for (int w = 0; w < 500 && over; w++) {
		bitcask_file_stats fs[64];
		size_t nf = 64;
		bitcask_stats_get(bc, &st, fs, &nf);
		over = false;
		for (size_t i = 0; i < nf && i < 64; i++)
			if (!fs[i].active && fs[i].dead_bytes * 2 >= fs[i].total_bytes)
				over = true;
		if (over)
			usleep(10000);
	}
	cr_assert(!over, "an immutable file stayed over the threshold");
	cr_assert_eq(st.keys, 100);
	bitcask_close(bc);
}

Test(merge, automatic_by_dead_bytes, .timeout = 30)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	c.merge_dead_bytes = 2000;
	c.merge_min_bytes = 0;
	c.merge_check_ms = 20;
	bitcask *bc = bct_open(dir, &c);
	char key[32];
	for (int round = 0; round < 3; round++)
		for (uint64_t i = 0; i < 100; i++)
			cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), "0123456789", 10), 0);
	bitcask_stats st;
	for (int w = 0; w < 500; w++) {
		bitcask_stats_get(bc, &st, NULL, NULL);
		if (st.merges > 0)
			break;
		usleep(10000);
	}
	cr_assert_gt(st.merges, 0);
	bitcask_close(bc);
}

Test(merge, no_automatic_merge_below_thresholds)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	c.merge_frag_threshold = 0.9;
	c.merge_min_bytes = 0;
	c.merge_check_ms = 10;
	bitcask *bc = bct_open(dir, &c);
	char key[32];
	for (uint64_t i = 0; i < 300; i++)
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), "0123456789", 10), 0);
	usleep(200000);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.merges, 0);
	bitcask_close(bc);
}

/* Readers on other threads while a writer overwrites and deletes and merges
 * run: every value read belongs to its key (no torn or misdirected read), and
 * no read fails but with not-found. */
typedef struct reader_arg {
	bitcask *bc;
	volatile int *stop;
	long reads, bad;
} reader_arg;

static void *reader(void *p)
{
	reader_arg *a = p;
	char key[32];
	unsigned seed = (unsigned)(uintptr_t)p;
	while (!*a->stop) {
		uint64_t i = (uint64_t)rand_r(&seed) % 500;
		size_t kl = bct_key(key, i);
		void *v;
		size_t vl;
		int rc = bitcask_get(a->bc, key, kl, &v, &vl);
		if (rc == DKV_ENOTFOUND)
			continue;
		if (rc != 0 || vl < kl || memcmp(v, key, kl) != 0)
			a->bad++;
		if (rc == 0)
			free(v);
		/* Let the writer run where threads take turns (valgrind). */
		if ((++a->reads & 255) == 0)
			usleep(100);
	}
	return NULL;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bounded by count and by time: under valgrind, which runs one thread at a
 * time, the readers can starve the writer for long stretches. */
Test(merge, concurrent_readers, .timeout = 120)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 16384;
	bitcask *bc = bct_open(dir, &c);
	volatile int stop = 0;
	reader_arg ra[2] = { { bc, &stop, 0, 0 }, { bc, &stop, 0, 0 } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, reader, &ra[i]);
	char key[32], val[200];
	srand(5);
	double t0 = mono_now();
	int ops = 0;
	for (int op = 0; op < 8000 && (op < 300 || mono_now() - t0 < 20); op++, ops++) {
		uint64_t i = (uint64_t)rand() % 500;
		size_t kl = bct_key(key, i);
		if (rand() % 5 == 0) {
			cr_assert_eq(bitcask_delete(bc, key, kl), 0);
		} else {
			size_t vl = kl + (size_t)rand() % 150;
			memcpy(val, key, kl);
			memset(val + kl, 'a' + op % 26, vl - kl);
			cr_assert_eq(bitcask_put(bc, key, kl, val, vl), 0);
		}
		if (op % 2000 == 1999 || op == 99 || op == 299) {
			cr_assert_eq(bitcask_rotate(bc), 0);
			cr_assert_eq(bitcask_merge(bc), 0);
		}
	}
	stop = 1;
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_log_info("readers: %ld and %ld reads during %d writes", ra[0].reads, ra[1].reads, ops);
	cr_assert_gt(ra[0].reads + ra[1].reads, 100);
	cr_assert_eq(ra[0].bad + ra[1].bad, 0, "%ld bad reads", ra[0].bad + ra[1].bad);
	bct_check(bc);
	bitcask_close(bc);
}
