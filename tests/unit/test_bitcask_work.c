/* test_bitcask_work.c -- the storage engine with external_worker: no
 * thread per store; the owner asks bitcask_work_pending() and runs
 * bitcask_work() (bitcask.h, THREADS).  Hint files after rotation, merges
 * by threshold and on demand, work racing writers, and close while a round
 * runs in another thread. */
#include "config.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bctest.h"
#include "error.h"
#include "testutil.h"

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

TestSuite(work, .init = setup, .fini = teardown, .timeout = 60);

static void ext_config(bitcask_config *c)
{
	bct_config(c);
	c->external_worker = true;
}

/* Check bc, close it, reopen it and check the reopened store: both match m. */
static void check_close_reopen(bitcask *bc, const bitcask_config *c, const bct_model *m)
{
	bct_check(bc);
	bct_assert_model(bc, m);
	cr_assert_eq(bitcask_close(bc), 0);
	bc = bct_open(dir, c);
	bct_assert_model(bc, m);
	bct_check(bc);
	cr_assert_eq(bitcask_close(bc), 0);
}

/* Put key i with generation gen (and record it in m). */
static void put(bitcask *bc, bct_model *m, uint64_t i, uint64_t gen, size_t len)
{
	char key[32];
	uint8_t val[256];
	size_t kl = bct_key(key, i);

	cr_assert_leq(len, sizeof(val));
	bct_value(val, len, i, gen);
	cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
	m->present[i] = true;
	m->gen[i] = gen;
	m->len[i] = len;
}

Test(work, external_mode_starts_no_thread)
{
	enum { STORES = 50 };
	bitcask *bcs[STORES];
	bitcask_config c;
	char sub[4096];
	int before = test_thread_count();

	ext_config(&c);
	c.sync = BITCASK_SYNC_MANUAL;   /* as the node opens its stores */
	for (int i = 0; i < STORES; i++) {
		snprintf(sub, sizeof(sub), "%s/s%d", dir, i);
		bcs[i] = bct_open(sub, &c);
	}
	cr_assert_eq(test_thread_count(), before, "%d stores in external mode started %d threads",
		     STORES, test_thread_count() - before);
	for (int i = 0; i < STORES; i++)
		cr_assert_eq(bitcask_close(bcs[i]), 0);

	/* The count sees threads: the default mode starts one per store. */
	c.external_worker = false;
	for (int i = 0; i < 5; i++) {
		snprintf(sub, sizeof(sub), "%s/s%d", dir, i);
		bcs[i] = bct_open(sub, &c);
	}
	cr_assert_eq(test_thread_count(), before + 5);
	for (int i = 0; i < 5; i++)
		cr_assert_eq(bitcask_close(bcs[i]), 0);
}

Test(work, rotation_leaves_work_pending_and_work_writes_the_hint)
{
	bitcask_config c;
	bct_model m;

	ext_config(&c);
	bct_model_init(&m, 100);
	bitcask *bc = bct_open(dir, &c);
	cr_assert(!bitcask_work_pending(bc), "a fresh store has no work");
	for (uint64_t i = 0; i < 100; i++)
		put(bc, &m, i, 1, 100);
	cr_assert_eq(bitcask_rotate(bc), 0);
	cr_assert(bitcask_work_pending(bc), "a rotated file waits for its hint");
	usleep(50 * 1000);
	cr_assert_eq(bct_count(dir, ".hint"), 0, "no thread wrote the hint behind our back");

	cr_assert_eq(bitcask_work(bc), 0);
	cr_assert(!bitcask_work_pending(bc));
	cr_assert_eq(bct_count(dir, ".hint"), 1);
	bitcask_file_stats fs[4];
	size_t nf = 4;
	bitcask_stats st;
	bitcask_stats_get(bc, &st, fs, &nf);
	cr_assert_eq(nf, 2);
	cr_assert(fs[0].has_hint && !fs[0].active);
	cr_assert_eq(st.merges, 0, "no threshold is set: no merge");
	cr_assert_eq(bitcask_close(bc), 0);

	bc = bct_open(dir, &c);
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.hint_loads, 1, "the rotated file is recovered from its hint");
	cr_assert_eq(st.data_scans, 0);
	bct_assert_model(bc, &m);
	bct_check(bc);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

Test(work, close_writes_the_hints_no_round_wrote)
{
	bitcask_config c;
	bct_model m;

	ext_config(&c);
	bct_model_init(&m, 100);
	bitcask *bc = bct_open(dir, &c);
	for (uint64_t i = 0; i < 100; i++)
		put(bc, &m, i, 1, 100);
	cr_assert_eq(bitcask_rotate(bc), 0);
	cr_assert(bitcask_work_pending(bc));
	cr_assert_eq(bitcask_close(bc), 0);
	cr_assert_eq(bct_count(dir, ".hint"), 1, "close wrote the queued hint (none for the empty active file)");
	bc = bct_open(dir, &c);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.hint_loads, 1);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

/* Overwrite keys 0..n-1 `rounds` times with rotations: lots of dead bytes. */
static void churn(bitcask *bc, bct_model *m, uint64_t n, int rounds)
{
	for (int r = 1; r <= rounds; r++)
		for (uint64_t i = 0; i < n; i++)
			put(bc, m, i, (uint64_t)r, 64 + (i % 64));
}

Test(work, thresholds_make_work_pending_and_work_merges)
{
	bitcask_config c;
	bct_model m;
	bitcask_stats before, after;

	ext_config(&c);
	c.max_file_size = 16 * 1024;
	c.merge_frag_threshold = 0.4;
	c.merge_min_bytes = 0;
	bct_model_init(&m, 200);
	bitcask *bc = bct_open(dir, &c);
	churn(bc, &m, 200, 5);
	cr_assert_eq(bitcask_rotate(bc), 0);
	/* Hints first: a round writes them and then merges. */
	cr_assert(bitcask_work_pending(bc));
	bitcask_stats_get(bc, &before, NULL, NULL);
	cr_assert_gt(before.dead_bytes, before.total_bytes / 2);
	cr_assert_eq(before.merges, 0, "nothing merges without a round");

	cr_assert_eq(bitcask_work(bc), 0);
	bitcask_stats_get(bc, &after, NULL, NULL);
	cr_assert_eq(after.merges, 1);
	cr_assert_eq(after.dead_bytes, 0, "every file was immutable: all merged");
	cr_assert_lt(after.total_bytes, before.total_bytes / 2);
	cr_assert(!bitcask_work_pending(bc), "merged: the thresholds are met no more");
	check_close_reopen(bc, &c, &m);
	bct_model_free(&m);
}

Test(work, merge_in_external_mode_runs_in_the_caller)
{
	bitcask_config c;
	bct_model m;
	bitcask_stats st;

	ext_config(&c);
	c.max_file_size = 16 * 1024;
	bct_model_init(&m, 200);
	bitcask *bc = bct_open(dir, &c);
	churn(bc, &m, 200, 4);
	cr_assert(bitcask_work_pending(bc), "rotations queued hints");
	cr_assert_eq(bitcask_rotate(bc), 0);
	cr_assert_eq(bitcask_merge(bc), 0);
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.merges, 1);
	cr_assert_eq(st.dead_bytes, 0);
	cr_assert(!bitcask_work_pending(bc), "the merge's round wrote the hints too");
	bct_check(bc);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

/* --- rounds in another thread ---------------------------------------------- */

typedef struct worker {
	bitcask *bc;
	atomic_bool stop;
	int rounds;             /* bitcask_work calls made */
	int rc;                 /* first non-zero result */
} worker;

static void *work_loop(void *arg)
{
	worker *w = arg;

	while (!atomic_load(&w->stop)) {
		if (!bitcask_work_pending(w->bc)) {
			sched_yield();
			continue;
		}
		int rc = bitcask_work(w->bc);
		if (rc && !w->rc)
			w->rc = rc;
		w->rounds++;
	}
	return NULL;
}

Test(work, work_racing_puts_keeps_every_key_readable)
{
	bitcask_config c;
	bct_model m;
	worker w = { 0 };
	pthread_t t;
	char key[32];

	ext_config(&c);
	c.max_file_size = 8192;
	c.merge_frag_threshold = 0.3;
	c.merge_min_bytes = 0;
	bct_model_init(&m, 300);
	bitcask *bc = bct_open(dir, &c);
	w.bc = bc;
	cr_assert_eq(pthread_create(&t, NULL, work_loop, &w), 0);
	for (int r = 1; r <= 40; r++) {
		for (uint64_t i = 0; i < 300; i++) {
			put(bc, &m, i, (uint64_t)r, 32 + (i % 100));
			/* a key written earlier reads back while rounds run */
			uint64_t j = (i * 7919) % 300;
			void *v;
			size_t vl;
			if (m.present[j]) {
				cr_assert_eq(bitcask_get(bc, key, bct_key(key, j), &v, &vl), 0,
					     "key %lu lost in round %d", (unsigned long)j, r);
				free(v);
			}
		}
	}
	atomic_store(&w.stop, true);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, 0, "%s", dkv_strerror(w.rc));
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_gt(st.merges, 0, "the thresholds were met: the rounds merged (%d rounds)", w.rounds);
	check_close_reopen(bc, &c, &m);
	bct_model_free(&m);
}

Test(work, two_callers_take_turns)
{
	bitcask_config c;
	bct_model m;
	worker w1 = { 0 }, w2 = { 0 };
	pthread_t t1, t2;

	ext_config(&c);
	c.max_file_size = 8192;
	c.merge_frag_threshold = 0.3;
	c.merge_min_bytes = 0;
	bct_model_init(&m, 200);
	bitcask *bc = bct_open(dir, &c);
	w1.bc = w2.bc = bc;
	cr_assert_eq(pthread_create(&t1, NULL, work_loop, &w1), 0);
	cr_assert_eq(pthread_create(&t2, NULL, work_loop, &w2), 0);
	churn(bc, &m, 200, 30);
	for (int i = 0; i < 20; i++) {
		cr_assert_eq(bitcask_merge(bc), 0, "a third caller, on demand");
		put(bc, &m, (uint64_t)i, 100, 10);
	}
	atomic_store(&w1.stop, true);
	atomic_store(&w2.stop, true);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	cr_assert_eq(w1.rc, 0);
	cr_assert_eq(w2.rc, 0);
	bct_check(bc);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

/* A bcio whose writes crawl once `slow` is set, and say so: a round is
 * then certainly under way when the test closes the store. */
static atomic_bool slow;
static atomic_int in_write;     /* threads inside slow_pwrite */
static sem_t slow_entered;

static ssize_t slow_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	atomic_fetch_add(&in_write, 1);
	if (atomic_load(&slow)) {
		sem_post(&slow_entered);
		usleep(20 * 1000);
	}
	ssize_t n = bcio_default()->pwrite(fd, buf, len, off);
	atomic_fetch_sub(&in_write, 1);
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *work_once(void *arg)
{
	worker *w = arg;

	w->rc = bitcask_work(w->bc);
	return NULL;
}

static void *merge_once(void *arg)
{
	worker *w = arg;

	w->rc = bitcask_merge(w->bc);
	return NULL;
}

/* Fill a store with dead bytes, start fn (a round) in another thread with
 * its first write slow, close the store during that write, and check that
 * close waited for the round, stopped it (no merge was done) and returned
 * 0 soon, and that the store reopens intact. */
static void close_during(void *(*fn)(void *), bool hints_first)
{
	bitcask_config c;
	bcio io = *bcio_default();
	bct_model m;
	worker w = { 0 };
	pthread_t t;
	bitcask_stats st;

	io.pwrite = slow_pwrite;
	cr_assert_eq(sem_init(&slow_entered, 0, 0), 0);
	ext_config(&c);
	c.io = &io;
	c.max_file_size = 64 * 1024;
	bct_model_init(&m, 2000);
	bitcask *bc = bct_open(dir, &c);
	for (int r = 1; r <= 6; r++)
		for (uint64_t i = 0; i < 2000; i++)
			put(bc, &m, i, (uint64_t)r, 8);
	cr_assert_eq(bitcask_rotate(bc), 0);
	cr_assert(bitcask_work_pending(bc));
	if (hints_first) {
		cr_assert_eq(bitcask_work(bc), 0);
		cr_assert(!bitcask_work_pending(bc), "no threshold: only hints were pending");
	}

	atomic_store(&slow, true);
	w.bc = bc;
	cr_assert_eq(pthread_create(&t, NULL, fn, &w), 0);
	sem_wait(&slow_entered);   /* the round is writing a hint or a merge output */
	atomic_store(&slow, false);   /* the rest, close's own hints included, at speed */
	uint64_t t0 = now_ms();
	cr_assert_eq(bitcask_close(bc), 0);
	uint64_t took = now_ms() - t0;
	cr_assert_eq(atomic_load(&in_write), 0, "close returned while a round still wrote");
	pthread_join(t, NULL);
	cr_assert(w.rc == 0 || w.rc == DKV_ECLOSED, "%s", dkv_strerror(w.rc));
	/* Close stops the round at its next hint or 1024 records. */
	cr_assert_lt(took, getenv("DKV_VALGRIND") ? 20000u : 2000u, "close waited %lu ms",
		     (unsigned long)took);

	c.io = NULL;
	bc = bct_open(dir, &c);
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_gt(st.dead_bytes, 0, "close stopped the round before it merged");
	bct_assert_model(bc, &m);
	bct_check(bc);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
	sem_destroy(&slow_entered);
}

Test(work, close_while_work_writes_hints_in_another_thread_returns_cleanly)
{
	close_during(work_once, false);
}

Test(work, close_while_a_merge_runs_in_another_thread_returns_cleanly)
{
	close_during(merge_once, true);
}
