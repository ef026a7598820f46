/*
 * test_vnode.c -- the partition stores (src/vnode.c): objects in and out,
 * merge never overwriting, dirty marks for sync batches, the write
 * observer, the iterator, the drop, and background work on the world's
 * pool instead of a thread per store.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "object.h"
#include "simworld.h"
#include "testutil.h"
#include "vnode.h"

static char dir[64];
static simworld *sim;
static vnode_set *vs;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/dkv-vnode-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	sim = sim_new(1);
	cr_assert_not_null(sim);
}

static void teardown(void)
{
	char cmd[128];

	if (vs != NULL) {
		while (vnode_busy(vs))
			cr_assert(sim_step(sim));
		cr_assert_eq(vnode_set_close(vs), 0);
		vs = NULL;
	}
	sim_free(sim);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(vnode, .init = setup, .fini = teardown);

static void open_set(uint32_t ring_size, bool with_world, uint64_t max_file_size)
{
	vnode_config c = { 0 };

	c.dir = dir;
	c.ring_size = ring_size;
	c.actor = 7;
	c.max_key_size = 1024;
	c.max_object = 1 << 20;
	c.vclock_max = 50;
	object_limits_init(&c.olim);
	c.w = with_world ? sim_world(sim) : NULL;
	c.max_file_size = max_file_size;
	cr_assert_eq(vnode_set_open(&vs, &c), 0);
}

/* An object with one value, written blind by actor a. */
static object *obj_put(uint64_t a, const char *val)
{
	object_vv vv = { 0 };
	object *o = object_new();

	cr_assert_not_null(o);
	cr_assert_eq(object_put(o, a, &vv, val, strlen(val), 1000), 0);
	return o;
}

static void store(uint32_t p, const char *key, const object *o)
{
	msgpack_sbuffer sb;

	msgpack_sbuffer_init(&sb);
	cr_assert_eq(object_encode(o, &sb), 0);
	cr_assert_eq(vnode_store(vs, p, key, strlen(key), sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
}

Test(vnode, a_stored_object_reads_back_and_marks_its_store_dirty_once)
{
	bitcask *out[64];
	object *o = obj_put(1, "v"), *got = NULL;

	open_set(64, true, 0);
	cr_assert_not(vnode_any_dirty(vs));
	store(5, "k", o);
	store(5, "k2", o);
	cr_assert(vnode_any_dirty(vs));
	cr_assert_eq(vnode_read(vs, 5, "k", 1, &got), 0);
	cr_assert_not_null(got);
	cr_assert_eq(object_sibling_count(got), 1);
	object_free(got);
	cr_assert_eq(vnode_read(vs, 6, "k", 1, &got), 0);
	cr_assert_null(got, "partition 6 holds nothing");
	cr_assert_eq(vnode_take_dirty(vs, out), 1);
	cr_assert_eq(out[0], vnode_store_of(vs, 5));
	cr_assert_not(vnode_any_dirty(vs));
	cr_assert_eq(vnode_take_dirty(vs, out), 0);
	object_free(o);
}

Test(vnode, merge_keeps_concurrent_versions_and_appends_only_a_change)
{
	object *a = obj_put(1, "a"), *b = obj_put(2, "b"), *got = NULL;
	bool wrote;

	open_set(64, true, 0);
	cr_assert_eq(vnode_merge(vs, 1, "k", 1, a, &wrote), 0);
	cr_assert(wrote);
	cr_assert_eq(vnode_merge(vs, 1, "k", 1, a, &wrote), 0);
	cr_assert_not(wrote, "the same version again appended something");
	cr_assert_eq(vnode_merge(vs, 1, "k", 1, b, &wrote), 0);
	cr_assert(wrote);
	cr_assert_eq(vnode_read(vs, 1, "k", 1, &got), 0);
	cr_assert_eq(object_sibling_count(got), 2, "a concurrent version was dropped");
	object_free(got);
	object_free(a);
	object_free(b);
}

static size_t observed;
static void observe(void *ctx, uint32_t p, const void *key, size_t klen, const void *obj,
		    size_t len)
{
	(void)ctx;
	(void)obj;
	cr_assert_eq(p, 9);
	cr_assert_eq(klen, 1);
	cr_assert_eq(memcmp(key, "k", 1), 0);
	cr_assert_gt(len, 0);
	observed++;
}

Test(vnode, the_observer_sees_every_object_stored_and_not_a_merge_that_changes_nothing)
{
	object *a = obj_put(1, "a");
	bool wrote;

	open_set(64, true, 0);
	cr_assert_eq(vnode_add_observer(vs, observe, NULL), 0);
	store(9, "k", a);
	cr_assert_eq(vnode_merge(vs, 9, "k", 1, a, &wrote), 0);
	cr_assert_eq(observed, 1);
	object_free(a);
}

Test(vnode, the_iterator_visits_every_key_of_its_partition)
{
	char key[16];
	object *a = obj_put(1, "a");
	vnode_iter *it;
	const uint8_t *k, *v;
	size_t kl, vl, n = 0;
	int rc;

	open_set(64, true, 0);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		store(i % 2 == 0 ? 3 : 4, key, a);
	}
	cr_assert_eq(vnode_iter_open(vs, 3, &it), 0);
	object_limits lim;

	object_limits_init(&lim);
	while ((rc = vnode_iter_next(it, &k, &kl, &v, &vl)) == 0) {
		object *o = NULL;

		cr_assert_eq(kl > 3 && memcmp(k, "key", 3) == 0, true);
		cr_assert_eq(object_decode(v, vl, &lim, &o), 0, "the iterator gives encoded objects");
		object_free(o);
		n++;
	}
	cr_assert_eq(rc, DKV_ENOTFOUND);
	vnode_iter_close(it);
	cr_assert_eq(n, 50);
	object_free(a);
}

Test(vnode, a_drop_closes_the_store_and_removes_its_directory)
{
	char path[128];
	struct stat st;
	object *a = obj_put(1, "a"), *got = NULL;

	open_set(64, true, 0);
	store(12, "k", a);
	cr_assert(vnode_exists(vs, 12));
	cr_assert_eq(vnode_drop(vs, 12), 0);
	snprintf(path, sizeof(path), "%s/partitions/0012", dir);
	cr_assert_neq(stat(path, &st), 0, "the directory is still there");
	cr_assert_not(vnode_is_open(vs, 12));
	cr_assert_not(vnode_any_dirty(vs));
	cr_assert_eq(vnode_read(vs, 12, "k", 1, &got), 0);
	cr_assert_null(got, "a dropped replica still reads");
	cr_assert_eq(vnode_drop(vs, 40), 0, "dropping what was never there");
	object_free(a);
}

/* True iff some entry of DIR/partitions holds VNODE_DROPPED. */
static bool dropped_left(void)
{
	char path[128];
	struct dirent *de;
	bool found = false;
	DIR *d;

	snprintf(path, sizeof(path), "%s/partitions", dir);
	cr_assert_not_null(d = opendir(path));
	while ((de = readdir(d)) != NULL)
		found |= strstr(de->d_name, VNODE_DROPPED) != NULL;
	closedir(d);
	return found;
}

/* With a world, a drop renames the directory at once (the name is free
 * for a new store) and removes it on the pool, off the loop; vnode_busy
 * says so until it is gone.  What a crash leaves renamed is removed by
 * the next open. */
Test(vnode, a_drop_removes_the_directory_off_the_loop_and_the_next_open_removes_leftovers)
{
	char path[128];
	struct stat st;
	object *a = obj_put(1, "a");

	open_set(64, true, 0);
	store(12, "k", a);
	cr_assert_eq(vnode_drop(vs, 12), 0);
	snprintf(path, sizeof(path), "%s/partitions/0012", dir);
	cr_assert_neq(stat(path, &st), 0, "the directory is still under its name");
	cr_assert(dropped_left(), "no renamed directory: removed on the loop?");
	cr_assert(vnode_busy(vs), "the removal is not waited for");
	store(12, "k2", a);   /* the name is free at once */
	for (int k = 0; k < 1000 && vnode_busy(vs); k++)
		cr_assert(sim_step(sim));
	cr_assert_not(vnode_busy(vs));
	cr_assert_not(dropped_left(), "the renamed directory is still there");
	cr_assert_eq(vnode_set_close(vs), 0);
	vs = NULL;
	/* a leftover, as a crash between the rename and the removal leaves */
	snprintf(path, sizeof(path), "%s/partitions/0007" VNODE_DROPPED "3", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/partitions/0007" VNODE_DROPPED "3/0000000000000001.data", dir);
	cr_assert_eq(close(open(path, O_WRONLY | O_CREAT, 0644)), 0);
	cr_assert(dropped_left());
	open_set(64, true, 0);
	cr_assert_not(dropped_left(), "the next open left the leftover");
	object_free(a);
}

/* The fault suite's seed 112: handoff dropped an emptied hint store while a
 * durability batch held it, and the batch then synced a freed store. */
Test(vnode, a_store_in_a_sync_batch_is_not_dropped_until_the_batch_ends)
{
	bitcask *out[64 + VNODE_MAX_EXTRA];
	object *a = obj_put(1, "a");

	open_set(64, true, 0);
	store(12, "k", a);
	cr_assert_eq(vnode_take_dirty(vs, out), 1);
	cr_assert_eq(vnode_drop(vs, 12), -EBUSY, "dropped under a running batch");
	cr_assert(vnode_is_open(vs, 12));
	vnode_synced(vs);
	cr_assert_eq(vnode_drop(vs, 12), 0);
	cr_assert_not(vnode_is_open(vs, 12));
	object_free(a);
}

/* The issue: an idle node with 512 partitions ran 517 threads. */
Test(vnode, stores_run_no_thread_of_their_own_and_their_work_runs_on_the_world)
{
	char key[32], path[128];
	uint32_t list[256];
	object *a = obj_put(1, "a value long enough to fill small files quickly........");
	int before = test_thread_count();
	DIR *d;
	struct dirent *e;
	int hints = 0;

	open_set(256, true, 4096);
	for (uint32_t p = 0; p < 256; p++)
		list[p] = p;
	cr_assert_eq(vnode_open_many(vs, list, 256, path, sizeof(path)), 0, "%s", path);
	cr_assert_eq(vnode_open_count(vs), 256);
	cr_assert_eq(test_thread_count(), before, "%d threads for 256 stores (were %d)",
		     test_thread_count(), before);
	for (int i = 0; i < 400; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		store(17, key, a);   /* rotations: each leaves a hint to write */
	}
	cr_assert_eq(vnode_work_done(vs), 0);
	sim_run_for(sim, 3 * VNODE_WORK_TICK_MS);
	cr_assert_gt(vnode_work_done(vs), 0, "no background job ran");
	snprintf(path, sizeof(path), "%s/partitions/0017", dir);
	d = opendir(path);
	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		hints += strstr(e->d_name, ".hint") != NULL;
	closedir(d);
	cr_assert_gt(hints, 0, "no hint file was written");
	object_free(a);
}
