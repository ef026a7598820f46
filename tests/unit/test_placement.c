/*
 * test_placement.c -- the node's ring view (src/placement.c) over a real
 * membership (cluster.c) of one node on the simulated world: partitions,
 * primaries, which member is this node, interned addresses, and a ring
 * that goes away when no member is valid.  Placement among several
 * members is checked through whole clusters (test_cluster, test_admin's
 * preflist via crig) and the ring itself in test_ring.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "dkv_config.h"
#include "placement.h"
#include "ring.h"
#include "simworld.h"

static char dir[64];
static simworld *sim;
static dkv_config cfg;
static cluster *cl;
static placement *pl;
static int rebuilds;

static void changed(void *ctx)
{
	(void)ctx;
	rebuilds++;
	if (pl != NULL)
		placement_rebuild(pl);
}

static uint64_t no_keys(void *ctx)
{
	(void)ctx;
	return 0;
}

static void setup(void)
{
	cluster_hooks h = { .ring_changed = changed, .local_keys = no_keys };
	char err[256];

	snprintf(dir, sizeof(dir), "/dev/shm/dkv-placement-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	sim = sim_new(9);
	cr_assert_eq(dkv_config_init(&cfg), 0);
	cr_assert_eq(cluster_open(&cl, sim_world(sim), NULL, &cfg, dir, "a:1", 77, "a:1", false, &h,
				  err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(cluster_start(cl, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(placement_new(&pl, cl, "a:1", 64, 3, NULL), 0);
	placement_rebuild(pl);
}

static void teardown(void)
{
	char cmd[128];

	cluster_close(cl);
	placement_free(pl);
	pl = NULL;
	sim_free(sim);
	dkv_config_free(&cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(placement, .init = setup, .fini = teardown);

Test(placement, one_member_holds_every_partition_as_its_only_primary)
{
	uint32_t np;

	cr_assert(placement_has_ring(pl));
	cr_assert_eq(placement_ring_size(pl), 64);
	cr_assert_eq(placement_n_val(pl), 3);
	cr_assert_eq(placement_self(pl), 0);
	for (uint32_t p = 0; p < 64; p++) {
		const uint32_t *l = placement_primaries(pl, p, &np);

		cr_assert_eq(np, 1, "n is min(n_val, members)");
		cr_assert(placement_is_self(pl, l[0]));
		cr_assert_null(placement_addr(pl, l[0]), "this node has no peer address");
		cr_assert_not(placement_is_down(pl, l[0]));
		cr_assert(placement_holds(pl, p));
	}
}

Test(placement, a_key_maps_to_the_partition_ring_h_gives_it)
{
	static const char *keys[] = { "a", "counter", "user:42", "\xff\x00\x01" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		size_t len = i == 3 ? 3 : strlen(keys[i]);

		cr_assert_eq(placement_partition(pl, keys[i], len),
			     ring_partition(ring_key_hash(keys[i], len), 64), "key %zu", i);
	}
}

Test(placement, interned_addresses_are_one_copy_each_and_outlive_rebuilds)
{
	size_t before = placement_interned(pl);
	const char *a = placement_intern(pl, "10.0.0.9:7070");
	char copy[32];

	snprintf(copy, sizeof(copy), "%s", "10.0.0.9:7070");
	cr_assert_not_null(a);
	cr_assert_eq(placement_intern(pl, copy), a, "equal addresses intern to one pointer");
	cr_assert_neq(placement_intern(pl, "10.0.0.9:7071"), a);
	cr_assert_eq(placement_interned(pl), before + 2);
	placement_rebuild(pl);
	cr_assert_str_eq(a, "10.0.0.9:7070");
	cr_assert_eq(placement_intern(pl, "10.0.0.9:7070"), a);
}

Test(placement, with_no_valid_member_there_is_no_ring_and_nothing_is_held)
{
	uint32_t np = 99;
	int before = rebuilds;

	cr_assert_eq(cluster_set_status(cl, "a:1", MEMBER_REMOVED), 0);
	cr_assert_gt(rebuilds, before, "the cluster did not say the ring changed");
	cr_assert_not(placement_has_ring(pl));
	cr_assert_eq(placement_self(pl), -1);
	cr_assert_null(placement_primaries(pl, 5, &np));
	cr_assert_eq(np, 0);
	cr_assert_not(placement_holds(pl, 5));
}
