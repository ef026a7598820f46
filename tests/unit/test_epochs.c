#include "config.h"
/*
 * test_epochs.c -- src/epochs.c: the chain of ring epochs.  Digests
 * checked against a reference written here from epochs.c's description
 * (so a change of the format fails here); epochs made and not made;
 * chains merged (extended, behind, forked both ways, another cluster);
 * every member's progress and what all of them reached; pruning; and the
 * wire form with garbage, every truncation, and oversized input.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <msgpack.h>

#include "epochs.h"
#include "error.h"
#include "ring.h"
#include "siphash.h"

#define Q 64u
#define NV 3u

static const char *const ABC[] = { "a:1", "b:1", "c:1" };
static const char *const ABCD[] = { "a:1", "b:1", "c:1", "d:1" };
static const char *const ABCE[] = { "a:1", "b:1", "c:1", "e:1" };
static const char *const ABCDE[] = { "a:1", "b:1", "c:1", "d:1", "e:1" };

static epochs *fresh(void)
{
	epochs *h;

	cr_assert_eq(epochs_new(&h, Q, NV), 0);
	return h;
}

static void propose(epochs *h, const char *const *ids, size_t n, bool want_made)
{
	bool made;

	cr_assert_eq(epochs_propose(h, ids, n, &made), 0);
	cr_assert_eq(made, want_made);
}

/* The digest as epochs.c's comment defines it, computed independently. */
static uint64_t ref_digest(uint64_t number, uint64_t prev, const char *const *sorted, size_t n)
{
	uint8_t buf[4096];
	size_t off = 0;
	siphash_key k = siphash_key_from_bytes((const uint8_t *)"dynkv epochs v1 ");

	for (int i = 7; i >= 0; i--)
		buf[off++] = (uint8_t)(number >> (8 * i));
	for (int i = 7; i >= 0; i--)
		buf[off++] = (uint8_t)(prev >> (8 * i));
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(sorted[i]);

		buf[off++] = (uint8_t)(l >> 8);
		buf[off++] = (uint8_t)l;
		memcpy(buf + off, sorted[i], l);
		off += l;
	}
	return siphash24(&k, buf, off);
}

Test(epochs, first_epoch_and_its_digest)
{
	epochs *h = fresh();
	const char *const shuffled[] = { "c:1", "a:1", "b:1" };
	size_t n;
	const char *const *m;
	epoch_id id;

	cr_assert_eq(epochs_count(h), 0);
	cr_assert_eq(epochs_newest(h).number, 0);
	propose(h, shuffled, 3, true);
	cr_assert_eq(epochs_count(h), 1);
	id = epochs_newest(h);
	cr_assert_eq(id.number, 1);
	cr_assert_eq(id.digest, ref_digest(1, 0, ABC, 3));
	m = epochs_members(h, 0, &n);
	cr_assert_eq(n, 3);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(m[i], ABC[i]);   /* sorted */
	cr_assert_eq(ring_members(epochs_ring(h, 0)), 3);
	cr_assert_eq(ring_size(epochs_ring(h, 0)), Q);
	cr_assert_eq(epochs_find(h, id), 0);
	id.digest ^= 1;
	cr_assert_eq(epochs_find(h, id), -1);
	epochs_free(h);
}

Test(epochs, a_change_makes_the_next_epoch_and_no_change_none)
{
	epochs *h = fresh();
	const char *const again[] = { "b:1", "c:1", "a:1" };

	propose(h, ABC, 3, true);
	propose(h, again, 3, false);
	cr_assert_eq(epochs_count(h), 1);
	propose(h, ABCD, 4, true);
	cr_assert_eq(epochs_count(h), 2);
	cr_assert_eq(epochs_id(h, 1).number, 2);
	cr_assert_eq(epochs_id(h, 1).digest, ref_digest(2, epochs_id(h, 0).digest, ABCD, 4));
	/* a set that was current before is still a new epoch: history counts */
	propose(h, ABC, 3, true);
	cr_assert_eq(epochs_id(h, 2).number, 3);
	cr_assert_neq(epochs_id(h, 2).digest, epochs_id(h, 0).digest);
	epochs_free(h);
}

Test(epochs, bad_member_sets_are_refused)
{
	epochs *h = fresh();
	const char *const dup[] = { "a:1", "b:1", "a:1" };
	const char *const empty[] = { "a:1", "" };
	char longid[EPOCHS_MAX_ID + 2];
	const char *const toolong[] = { longid };
	bool made = true;
	epochs *bad;

	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	cr_assert_eq(epochs_propose(h, dup, 3, &made), DKV_EINVAL);
	cr_assert_not(made);
	cr_assert_eq(epochs_propose(h, empty, 2, &made), DKV_EINVAL);
	cr_assert_eq(epochs_propose(h, toolong, 1, &made), DKV_EINVAL);
	cr_assert_eq(epochs_propose(h, ABC, 0, &made), DKV_EINVAL);
	cr_assert_eq(epochs_count(h), 0);
	cr_assert_eq(epochs_new(&bad, 63, 3), DKV_EINVAL);
	cr_assert_eq(epochs_new(&bad, 64, 0), DKV_EINVAL);
	epochs_free(h);
}

Test(epochs, at_most_EPOCHS_MAX_then_a_change_waits)
{
	epochs *h = fresh();
	bool made;

	for (size_t i = 0; i < EPOCHS_MAX; i++)
		propose(h, i % 2 ? ABCD : ABC, i % 2 ? 4 : 3, true);
	cr_assert_eq(epochs_propose(h, ABCDE, 5, &made), DKV_EBUSY);
	cr_assert_not(made);
	cr_assert_eq(epochs_count(h), EPOCHS_MAX);
	cr_assert_eq(epochs_prune(h, 1), 1);
	propose(h, ABCDE, 5, true);
	cr_assert_eq(epochs_newest(h).number, EPOCHS_MAX + 1);
	epochs_free(h);
}

/* A copy of h's chain, through the wire form. */
static epochs *wire_copy(const epochs *h)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	epochs *c = fresh();
	size_t used;

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	cr_assert_eq(epochs_pack(h, &pk), 0);
	cr_assert_eq(epochs_unpack(c, sb.data, sb.size, &used), 0);
	cr_assert_eq(used, sb.size);
	msgpack_sbuffer_destroy(&sb);
	return c;
}

static void assert_same_chain(const epochs *a, const epochs *b)
{
	cr_assert_eq(epochs_count(a), epochs_count(b));
	for (size_t i = 0; i < epochs_count(a); i++) {
		cr_assert_eq(epochs_id(a, i).number, epochs_id(b, i).number);
		cr_assert_eq(epochs_id(a, i).digest, epochs_id(b, i).digest);
	}
}

Test(epochs, merge_extends_ignores_older_and_fills_an_empty_chain)
{
	epochs *a = fresh(), *b, *empty = fresh();
	bool changed;

	propose(a, ABC, 3, true);
	b = wire_copy(a);
	propose(b, ABCD, 4, true);
	propose(b, ABCDE, 5, true);
	cr_assert_eq(epochs_merge(a, b, &changed), 0);
	cr_assert(changed);
	assert_same_chain(a, b);
	cr_assert_eq(epochs_merge(a, b, &changed), 0);
	cr_assert_not(changed);

	/* b pruned past what a... has: a chain wholly older teaches nothing */
	{
		epochs *old = fresh();

		propose(old, ABC, 3, true);
		epochs_prune(b, 2);
		cr_assert_eq(epochs_count(b), 1);
		cr_assert_eq(epochs_merge(b, old, &changed), 0);
		cr_assert_not(changed);
		epochs_free(old);
	}
	/* a chain right after ours, linked: appended */
	{
		epochs *c = fresh(), *tail;

		propose(c, ABC, 3, true);
		tail = wire_copy(c);
		propose(tail, ABCD, 4, true);
		epochs_prune(tail, 1);   /* tail holds epoch 2 only */
		cr_assert_eq(epochs_merge(c, tail, &changed), 0);
		cr_assert(changed);
		cr_assert_eq(epochs_count(c), 2);
		cr_assert_eq(epochs_newest(c).digest, epochs_newest(tail).digest);
		epochs_free(c);
		epochs_free(tail);
	}
	cr_assert_eq(epochs_merge(empty, a, &changed), 0);
	cr_assert(changed);
	assert_same_chain(empty, a);
	epochs_free(a);
	epochs_free(b);
	epochs_free(empty);
}

Test(epochs, a_fork_goes_to_the_larger_digest_on_both_sides)
{
	epochs *x = fresh(), *y, *x2, *y2;
	const char *const *mx, *const *my;
	size_t nx, ny;
	bool changed_x, changed_y;
	uint64_t dx, dy, win;

	propose(x, ABC, 3, true);
	y = wire_copy(x);
	propose(x, ABCD, 4, true);    /* d joins through x */
	propose(y, ABCE, 4, true);    /* e joins through y, at the same time */
	dx = epochs_newest(x).digest;
	dy = epochs_newest(y).digest;
	cr_assert_neq(dx, dy);
	win = dx > dy ? dx : dy;
	x2 = wire_copy(x);
	y2 = wire_copy(y);
	cr_assert_eq(epochs_merge(x, y2, &changed_x), 0);
	cr_assert_eq(epochs_merge(y, x2, &changed_y), 0);
	cr_assert_eq(changed_x, dy > dx);   /* exactly the loser changes */
	cr_assert_eq(changed_y, dx > dy);
	assert_same_chain(x, y);
	cr_assert_eq(epochs_newest(x).digest, win);
	mx = epochs_members(x, 1, &nx);
	my = epochs_members(y, 1, &ny);
	cr_assert_eq(nx, ny);
	for (size_t i = 0; i < nx; i++)
		cr_assert_str_eq(mx[i], my[i]);
	/* both changes are in the records now: the next epoch, made on
	 * either side, is the same epoch */
	propose(x, ABCDE, 5, true);
	propose(y, ABCDE, 5, true);
	assert_same_chain(x, y);
	epochs_free(x);
	epochs_free(y);
	epochs_free(x2);
	epochs_free(y2);
}

Test(epochs, a_fork_lost_deeper_drops_the_losers_later_epochs)
{
	epochs *x = fresh(), *y, *ycopy;
	bool changed;

	propose(x, ABC, 3, true);
	y = wire_copy(x);
	propose(x, ABCD, 4, true);
	propose(y, ABCE, 4, true);
	/* make y's side the winner whatever the digests: whoever lost goes */
	if (epochs_newest(y).digest < epochs_newest(x).digest) {
		epochs *t = x;

		x = y;
		y = t;
	}
	propose(x, ABCDE, 5, true);   /* the loser went on: epoch 3 on its fork */
	ycopy = wire_copy(y);
	cr_assert_eq(epochs_merge(x, ycopy, &changed), 0);
	cr_assert(changed);
	assert_same_chain(x, y);
	cr_assert_eq(epochs_count(x), 2);
	epochs_free(x);
	epochs_free(y);
	epochs_free(ycopy);
}

Test(epochs, two_clusters_are_never_merged)
{
	epochs *a = fresh(), *b = fresh(), *far;
	const char *const XYZ[] = { "x:1", "y:1", "z:1" };
	bool changed = true;
	epoch_id before;

	propose(a, ABC, 3, true);
	propose(b, XYZ, 3, true);
	before = epochs_newest(a);
	cr_assert_eq(epochs_merge(a, b, &changed), DKV_EINVAL);
	cr_assert_not(changed);
	cr_assert_eq(epochs_newest(a).digest, before.digest);
	/* ahead of ours by more than one epoch, unlinked: cannot be checked */
	far = wire_copy(a);
	propose(far, ABCD, 4, true);
	propose(far, ABCDE, 5, true);
	epochs_prune(far, 2);
	cr_assert_eq(epochs_merge(a, far, &changed), DKV_EINVAL);
	cr_assert_eq(epochs_count(a), 1);
	/* a node that holds nothing may take another chain whole */
	cr_assert_eq(epochs_adopt(a, b), 0);
	assert_same_chain(a, b);
	epochs_free(a);
	epochs_free(b);
	epochs_free(far);
}

static epoch_progress at(const epochs *h, long ack, long sync, long read)
{
	epoch_progress p;
	epoch_id none = { 0, 0 };

	p.ack = ack < 0 ? none : epochs_id(h, (size_t)ack);
	p.sync = sync < 0 ? none : epochs_id(h, (size_t)sync);
	p.read = read < 0 ? none : epochs_id(h, (size_t)read);
	return p;
}

Test(epochs, what_every_member_reached)
{
	epochs *h = fresh(), *other = fresh();
	epoch_progress p;

	propose(h, ABC, 3, true);
	propose(h, ABCD, 4, true);
	propose(h, ABCDE, 5, true);
	cr_assert_eq(epochs_acked(h, ABCDE, 5), -1);   /* nobody reported */
	cr_assert_eq(epochs_acked(h, NULL, 0), 2);
	p = at(h, 2, 1, 0);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(epochs_note(h, ABCDE[i], &p), 0);
	cr_assert_eq(epochs_acked(h, ABCDE, 5), 2);
	cr_assert_eq(epochs_synced(h, ABCDE, 5), 1);
	cr_assert_eq(epochs_read_all(h, ABCDE, 5), 0);
	/* one member behind on each: the least counts */
	p = at(h, 1, 0, 0);
	cr_assert_eq(epochs_note(h, "c:1", &p), 0);   /* replaces its report */
	cr_assert_eq(epochs_acked(h, ABCDE, 5), 1);
	cr_assert_eq(epochs_synced(h, ABCDE, 5), 0);
	/* only the members asked about count */
	cr_assert_eq(epochs_acked(h, ABCD, 2), 2);   /* a:1 and b:1 */
	/* a report naming an epoch of another chain counts for nothing */
	propose(other, ABCE, 4, true);
	p.ack = p.sync = p.read = epochs_newest(other);
	cr_assert_eq(epochs_note(h, "e:1", &p), 0);
	cr_assert_eq(epochs_acked(h, ABCDE, 5), -1);
	cr_assert_eq(epochs_read_all(h, ABCDE, 5), -1);
	/* forgotten (removed): asked about, it counts as unreported */
	epochs_forget(h, "e:1");
	cr_assert_eq(epochs_acked(h, ABCDE, 5), -1);
	cr_assert_eq(epochs_acked(h, ABCDE, 4), 1);
	epochs_forget(h, "nobody");
	cr_assert_eq(epochs_note(h, "", &p), DKV_EINVAL);
	epochs_free(h);
	epochs_free(other);
}

Test(epochs, prune_keeps_the_newest_and_the_rings)
{
	epochs *h = fresh();
	epoch_progress p;
	long all;

	propose(h, ABC, 3, true);
	propose(h, ABCD, 4, true);
	propose(h, ABCDE, 5, true);
	p = at(h, 2, 2, 1);
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(epochs_note(h, ABCDE[i], &p), 0);
	all = epochs_read_all(h, ABCDE, 5);
	cr_assert_eq(all, 1);
	cr_assert_eq(epochs_prune(h, all), 1);
	cr_assert_eq(epochs_count(h), 2);
	cr_assert_eq(epochs_id(h, 0).number, 2);
	cr_assert_eq(ring_members(epochs_ring(h, 0)), 4);
	cr_assert_eq(ring_members(epochs_ring(h, 1)), 5);
	/* the reports still name the same epochs, at their new places */
	cr_assert_eq(epochs_read_all(h, ABCDE, 5), 0);
	cr_assert_eq(epochs_synced(h, ABCDE, 5), 1);
	cr_assert_eq(epochs_prune(h, 0), 0);
	cr_assert_eq(epochs_prune(h, -1), 0);
	cr_assert_eq(epochs_prune(h, 99), 1);   /* never the newest */
	cr_assert_eq(epochs_count(h), 1);
	cr_assert_eq(epochs_newest(h).number, 3);
	epochs_free(h);
}

/* --- the wire form ------------------------------------------------------- */

static void packed(const epochs *h, msgpack_sbuffer *sb)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	cr_assert_eq(epochs_pack(h, &pk), 0);
}

static int unpack(const void *buf, size_t len)
{
	epochs *h = fresh();
	size_t used;
	int rc = epochs_unpack(h, buf, len, &used);

	if (rc != 0)
		cr_assert_eq(epochs_count(h), 0, "a failed unpack leaves the set empty");
	epochs_free(h);
	return rc;
}

Test(epochs_wire, round_trip_and_every_truncation)
{
	epochs *h = fresh(), *c;
	msgpack_sbuffer sb;

	propose(h, ABC, 3, true);
	propose(h, ABCDE, 5, true);
	c = wire_copy(h);
	assert_same_chain(h, c);
	packed(h, &sb);
	for (size_t len = 0; len < sb.size; len++)
		cr_assert_eq(unpack(sb.data, len), DKV_EPROTO, "truncated to %zu bytes", len);
	cr_assert_eq(unpack(sb.data, sb.size), 0);
	/* into a set that is not empty: refused */
	{
		size_t used;

		cr_assert_eq(epochs_unpack(c, sb.data, sb.size, &used), DKV_EINVAL);
	}
	msgpack_sbuffer_destroy(&sb);
	epochs_free(h);
	epochs_free(c);
}

/* Pack epochs by hand: n epochs with the given fields. */
typedef struct raw_epoch {
	uint64_t number, digest, prev;
	const char *const *ids;
	size_t n;
} raw_epoch;

static void raw_pack(msgpack_sbuffer *sb, const raw_epoch *e, size_t n)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_array(&pk, 4);
		msgpack_pack_uint64(&pk, e[i].number);
		msgpack_pack_uint64(&pk, e[i].digest);
		msgpack_pack_uint64(&pk, e[i].prev);
		msgpack_pack_array(&pk, e[i].n);
		for (size_t j = 0; j < e[i].n; j++) {
			msgpack_pack_str(&pk, strlen(e[i].ids[j]));
			msgpack_pack_str_body(&pk, e[i].ids[j], strlen(e[i].ids[j]));
		}
	}
}

Test(epochs_wire, lies_are_refused)
{
	msgpack_sbuffer sb;
	uint64_t d1 = ref_digest(1, 0, ABC, 3), d2 = ref_digest(2, d1, ABCD, 4);
	raw_epoch good[2] = { { 1, d1, 0, ABC, 3 }, { 2, d2, d1, ABCD, 4 } };
	raw_epoch e[2];
	const char *const dup[] = { "a:1", "a:1" };
	const char *const nul[] = { "a:1", "" };

	raw_pack(&sb, good, 2);
	cr_assert_eq(unpack(sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);

	memcpy(e, good, sizeof(e));
	e[1].digest ^= 1;                       /* a digest that does not match */
	raw_pack(&sb, e, 2);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);

	memcpy(e, good, sizeof(e));
	e[1].number = 3;                        /* a gap */
	e[1].digest = ref_digest(3, d1, ABCD, 4);
	raw_pack(&sb, e, 2);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);

	memcpy(e, good, sizeof(e));
	e[1].prev = 7;                          /* a broken link */
	e[1].digest = ref_digest(2, 7, ABCD, 4);
	raw_pack(&sb, e, 2);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);

	e[0] = good[0];
	e[0].ids = dup;                         /* a member twice */
	e[0].n = 2;
	e[0].digest = ref_digest(1, 0, dup, 2);
	raw_pack(&sb, e, 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);

	e[0].ids = nul;                         /* an empty id */
	e[0].digest = ref_digest(1, 0, nul, 2);
	raw_pack(&sb, e, 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);

	e[0] = good[0];
	e[0].n = 0;                             /* no member */
	e[0].digest = ref_digest(1, 0, ABC, 0);
	raw_pack(&sb, e, 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);

	e[0] = good[0];
	e[0].number = 0;                        /* number 0 names no epoch */
	e[0].digest = ref_digest(0, 0, ABC, 3);
	raw_pack(&sb, e, 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);
}

Test(epochs_wire, garbage_and_oversized_input)
{
	static const uint8_t garbage[][6] = {
		{ 0xc1 },                               /* never used */
		{ 0x91, 0xc0 },                         /* [nil] */
		{ 0x91, 0x94, 0x01, 0x02, 0x03, 0xc0 }, /* members: nil */
		{ 0xdd, 0xff, 0xff, 0xff, 0xff },       /* 4G epochs */
		{ 0x91, 0x95, 0, 0, 0, 0 },             /* five fields */
		{ 0x81, 0x01, 0x02 },                   /* a map */
	};
	msgpack_sbuffer sb;
	raw_epoch many[EPOCHS_MAX + 1];
	uint64_t prev = 0;
	char **big;
	size_t nbig = EPOCHS_MAX_MEMBERS + 1;
	char longid[EPOCHS_MAX_ID + 2];
	const char *const toolong[] = { longid };

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
		cr_assert_eq(unpack(garbage[i], sizeof(garbage[i])), DKV_EPROTO, "garbage %zu", i);
	/* one epoch more than a chain may hold, every link right */
	for (size_t i = 0; i <= EPOCHS_MAX; i++) {
		many[i] = (raw_epoch){ i + 1, ref_digest(i + 1, prev, ABC, 3), prev, ABC, 3 };
		prev = many[i].digest;
	}
	raw_pack(&sb, many, EPOCHS_MAX);
	cr_assert_eq(unpack(sb.data, sb.size), 0);
	msgpack_sbuffer_destroy(&sb);
	raw_pack(&sb, many, EPOCHS_MAX + 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);
	/* an epoch of too many members */
	big = calloc(nbig, sizeof(*big));
	cr_assert_not_null(big);
	for (size_t i = 0; i < nbig; i++) {
		big[i] = malloc(16);
		snprintf(big[i], 16, "m%05zu", i);
	}
	many[0] = (raw_epoch){ 1, 0, 0, (const char *const *)big, nbig };
	raw_pack(&sb, many, 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);
	for (size_t i = 0; i < nbig; i++)
		free(big[i]);
	free(big);
	/* an id past EPOCHS_MAX_ID */
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	many[0] = (raw_epoch){ 1, 0, 0, toolong, 1 };
	raw_pack(&sb, many, 1);
	cr_assert_eq(unpack(sb.data, sb.size), DKV_EPROTO);
	msgpack_sbuffer_destroy(&sb);
}
