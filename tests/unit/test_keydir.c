#include "config.h"
/*
 * test_keydir.c -- the in-memory key directory of src/bitcask/keydir.c, under
 * a fixed SipHash key: basic operations, compare-and-swap, a long seeded run
 * of random operations against a plain model with the table's invariants
 * checked as it goes, backward-shift deletion, key lengths at the slab and
 * 16-bit limits, memory per key, and the ordered resumable scan, alone and
 * interleaved with writes that resize the table.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "keydir.h"
#include "siphash.h"

/* --- helpers ----------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rng_next(s) % n);
}

static siphash_key test_key(void)
{
	uint8_t kb[16];

	for (int i = 0; i < 16; i++)
		kb[i] = (uint8_t)(0xA0 + i);
	return siphash_key_from_bytes(kb);
}

static keydir *new_kd(void)
{
	siphash_key k = test_key();
	keydir *kd = keydir_new(&k);

	cr_assert_not_null(kd);
	return kd;
}

static void check_kd(keydir *kd, const char *when)
{
	char err[256] = "";

	if (keydir_check(kd, err, sizeof(err)) != 0)
		cr_assert_fail("keydir_check failed %s: %s", when, err);
}

/* Key number i: key 0 is empty; others are "<i>:" then a tail whose length
 * and content depend on i, up to 48 bytes in all.  Returns the length. */
#define KEY_MAX 48
static size_t make_key(uint8_t *buf, uint32_t i)
{
	if (i == 0)
		return 0;
	int n = snprintf((char *)buf, KEY_MAX, "%u:", i);
	size_t len = (size_t)n + (i * 7u) % (KEY_MAX - 12);

	for (size_t j = (size_t)n; j < len; j++)
		buf[j] = (uint8_t)(i * 31u + j);
	return len;
}

/* Inverse of make_key: the number in a key ("" is 0). */
static uint32_t key_number(const uint8_t *key, size_t len)
{
	uint32_t v = 0;

	for (size_t i = 0; i < len && key[i] != ':'; i++)
		v = v * 10 + (uint32_t)(key[i] - '0');
	return v;
}

static kd_loc loc_of(uint32_t i, uint32_t gen)
{
	return (kd_loc){ .fileno = i % 97 + gen, .offset = i * 3u + gen * 7u, .size = 19 + i % 1000 + gen };
}

static bool loc_eq(const kd_loc *a, const kd_loc *b)
{
	return a->fileno == b->fileno && a->offset == b->offset && a->size == b->size;
}

static void put_new(keydir *kd, const void *key, size_t len, kd_loc loc)
{
	kd_loc old;
	bool had = true;

	cr_assert_eq(keydir_put(kd, key, len, &loc, &old, &had), 0);
	cr_assert(!had, "key of length %zu was already there", len);
}

static void put_num(keydir *kd, uint32_t i, uint32_t gen)
{
	uint8_t k[KEY_MAX];

	put_new(kd, k, make_key(k, i), loc_of(i, gen));
}

static void del_num(keydir *kd, uint32_t i)
{
	uint8_t k[KEY_MAX];
	kd_loc old;

	cr_assert(keydir_del(kd, k, make_key(k, i), &old), "key %u missing", i);
}

/* (hash, key) order as the scan promises it. */
static int cmp_hk(uint64_t ha, const uint8_t *ka, size_t la, uint64_t hb, const uint8_t *kb, size_t lb)
{
	if (ha != hb)
		return ha < hb ? -1 : 1;
	int c = memcmp(ka, kb, la < lb ? la : lb);
	if (c)
		return c;
	return la < lb ? -1 : la > lb ? 1 : 0;
}

TestSuite(keydir, .description = "in-memory key directory");

/* --- basics -------------------------------------------------------- */

Test(keydir, empty)
{
	keydir *kd = new_kd();
	kd_loc l;

	cr_assert_eq(keydir_count(kd), 0u);
	cr_assert(!keydir_get(kd, "a", 1, &l));
	cr_assert(!keydir_get(kd, "", 0, &l));
	cr_assert(!keydir_del(kd, "a", 1, &l));
	cr_assert_gt(keydir_memory(kd), 0u);
	check_kd(kd, "empty");
	keydir_free(kd);
	keydir_free(NULL);
}

Test(keydir, put_get_del)
{
	keydir *kd = new_kd();
	kd_loc a = { 1, 16, 30 }, b = { 2, 100, 40 }, got, old;
	bool had = true;

	cr_assert_eq(keydir_put(kd, "alpha", 5, &a, &old, &had), 0);
	cr_assert(!had);
	cr_assert_eq(keydir_count(kd), 1u);
	cr_assert(keydir_get(kd, "alpha", 5, &got));
	cr_assert(loc_eq(&got, &a));
	/* Prefixes and extensions are other keys. */
	cr_assert(!keydir_get(kd, "alph", 4, &got));
	cr_assert(!keydir_get(kd, "alphab", 6, &got));
	cr_assert(!keydir_get(kd, "alpha\0", 6, &got));

	cr_assert_eq(keydir_put(kd, "beta", 4, &b, &old, &had), 0);
	cr_assert(!had);
	cr_assert_eq(keydir_count(kd), 2u);

	memset(&old, 0, sizeof(old));
	cr_assert(keydir_del(kd, "alpha", 5, &old));
	cr_assert(loc_eq(&old, &a));
	cr_assert_eq(keydir_count(kd), 1u);
	cr_assert(!keydir_get(kd, "alpha", 5, &got));
	cr_assert(!keydir_del(kd, "alpha", 5, &old));
	cr_assert(keydir_get(kd, "beta", 4, &got));
	cr_assert(loc_eq(&got, &b));
	check_kd(kd, "after del");

	/* Put again after delete: new, not a replace. */
	cr_assert_eq(keydir_put(kd, "alpha", 5, &b, &old, &had), 0);
	cr_assert(!had);
	cr_assert_eq(keydir_count(kd), 2u);
	keydir_free(kd);
}

Test(keydir, replace_returns_old)
{
	keydir *kd = new_kd();
	kd_loc a = { 1, 16, 30 }, b = { 7, 0xFFFFFFF0u, 0xFFFFFFFFu }, c = { 0, 0, 0 }, got, old;
	bool had;

	cr_assert_eq(keydir_put(kd, "k", 1, &a, &old, &had), 0);
	cr_assert(!had);
	memset(&old, 0xEE, sizeof(old));
	cr_assert_eq(keydir_put(kd, "k", 1, &b, &old, &had), 0);
	cr_assert(had);
	cr_assert(loc_eq(&old, &a));
	cr_assert_eq(keydir_count(kd), 1u);
	cr_assert(keydir_get(kd, "k", 1, &got));
	cr_assert(loc_eq(&got, &b));
	cr_assert_eq(keydir_put(kd, "k", 1, &c, &old, &had), 0);
	cr_assert(had);
	cr_assert(loc_eq(&old, &b));
	cr_assert(keydir_get(kd, "k", 1, &got));
	cr_assert(loc_eq(&got, &c));
	cr_assert_eq(keydir_count(kd), 1u);
	check_kd(kd, "after replaces");
	keydir_free(kd);
}

Test(keydir, cas)
{
	keydir *kd = new_kd();
	kd_loc a = { 1, 16, 30 }, b = { 2, 16, 30 }, got, old;
	bool had;

	/* Missing key: no swap, nothing inserted. */
	cr_assert(!keydir_cas(kd, "k", 1, &a, &b));
	cr_assert_eq(keydir_count(kd), 0u);
	cr_assert(!keydir_get(kd, "k", 1, &got));

	cr_assert_eq(keydir_put(kd, "k", 1, &a, &old, &had), 0);
	/* Different file number, same offset: no swap. */
	cr_assert(!keydir_cas(kd, "k", 1, &(kd_loc){ 9, 16, 30 }, &b));
	/* Same file, different offset: no swap. */
	cr_assert(!keydir_cas(kd, "k", 1, &(kd_loc){ 1, 17, 30 }, &b));
	cr_assert(keydir_get(kd, "k", 1, &got));
	cr_assert(loc_eq(&got, &a));
	/* Matching fileno+offset: swapped (size is not compared). */
	cr_assert(keydir_cas(kd, "k", 1, &(kd_loc){ 1, 16, 999 }, &b));
	cr_assert(keydir_get(kd, "k", 1, &got));
	cr_assert(loc_eq(&got, &b));
	/* The old expectation is now stale. */
	cr_assert(!keydir_cas(kd, "k", 1, &a, &(kd_loc){ 3, 3, 3 }));
	cr_assert(keydir_get(kd, "k", 1, &got));
	cr_assert(loc_eq(&got, &b));
	/* Other keys are untouched by a CAS. */
	cr_assert(!keydir_cas(kd, "kk", 2, &b, &a));
	cr_assert_eq(keydir_count(kd), 1u);
	check_kd(kd, "after cas");
	keydir_free(kd);
}

/* Binary keys: NUL bytes, all byte values, keys that are prefixes of others. */
Test(keydir, binary_keys)
{
	keydir *kd = new_kd();
	uint8_t k[8];
	kd_loc got;

	for (uint32_t len = 0; len <= 4; len++) {
		memset(k, 0, sizeof(k));
		put_new(kd, k, len, (kd_loc){ len, len, len });
	}
	for (uint32_t b = 0; b < 256; b++) {
		k[0] = 0xFF;
		k[1] = (uint8_t)b;
		put_new(kd, k, 2, (kd_loc){ 100 + b, b, 2 });
	}
	cr_assert_eq(keydir_count(kd), 5u + 256u);
	for (uint32_t len = 0; len <= 4; len++) {
		memset(k, 0, sizeof(k));
		cr_assert(keydir_get(kd, k, len, &got), "zeros of length %u", len);
		cr_assert_eq(got.fileno, len);
	}
	for (uint32_t b = 0; b < 256; b++) {
		k[0] = 0xFF;
		k[1] = (uint8_t)b;
		cr_assert(keydir_get(kd, k, 2, &got));
		cr_assert_eq(got.fileno, 100 + b);
	}
	check_kd(kd, "binary keys");
	keydir_free(kd);
}

/* --- random operations against a model ------------------------------ */

#define MODEL_KEYS 30000u
#define MODEL_OPS  200000u

Test(keydir, random_ops_vs_model, .timeout = 60)
{
	keydir *kd = new_kd();
	bool *present = calloc(MODEL_KEYS, sizeof(bool));
	kd_loc *locs = calloc(MODEL_KEYS, sizeof(kd_loc));
	size_t count = 0, puts = 0, dels = 0, cas_ok = 0, cas_fail = 0, hits = 0;
	uint64_t s = 0x1234567;
	uint8_t k[KEY_MAX];
	char when[64];

	cr_assert(present && locs);
	for (uint32_t op = 1; op <= MODEL_OPS; op++) {
		/* Phases: grow, churn, shrink, churn, so the table both grows
		 * and empties out. */
		uint32_t phase = (op - 1) / (MODEL_OPS / 4);
		uint32_t put_pct = phase == 0 ? 70 : phase == 2 ? 15 : 40;
		uint32_t i = rng_below(&s, MODEL_KEYS);
		size_t kl = make_key(k, i);
		uint32_t r = rng_below(&s, 100);
		kd_loc got, old;
		bool had;

		if (r < put_pct) {
			kd_loc l = { (uint32_t)rng_next(&s), (uint32_t)rng_next(&s), op };
			cr_assert_eq(keydir_put(kd, k, kl, &l, &old, &had), 0);
			cr_assert_eq(had, present[i], "op %u put key %u", op, i);
			if (had)
				cr_assert(loc_eq(&old, &locs[i]), "op %u: put's old location", op);
			else
				count++;
			present[i] = true;
			locs[i] = l;
			puts++;
		} else if (r < put_pct + 30) {
			bool d = keydir_del(kd, k, kl, &old);
			cr_assert_eq(d, present[i], "op %u del key %u", op, i);
			if (d) {
				cr_assert(loc_eq(&old, &locs[i]), "op %u: del's old location", op);
				count--;
				dels++;
			}
			present[i] = false;
		} else if (r < put_pct + 40) {
			/* CAS, with the right expectation half of the time. */
			bool right = rng_below(&s, 2) && present[i];
			kd_loc expect = present[i] ? locs[i] : (kd_loc){ 1, 2, 3 };
			if (!right)
				expect.offset ^= 1u + rng_below(&s, 1000);
			else
				expect.size ^= 5; /* size is not compared */
			kd_loc l = { op, op, op };
			bool sw = keydir_cas(kd, k, kl, &expect, &l);
			cr_assert_eq(sw, right, "op %u cas key %u", op, i);
			if (sw) {
				locs[i] = l;
				cas_ok++;
			} else {
				cas_fail++;
			}
		} else {
			bool g = keydir_get(kd, k, kl, &got);
			cr_assert_eq(g, present[i], "op %u get key %u", op, i);
			if (g) {
				cr_assert(loc_eq(&got, &locs[i]), "op %u get key %u location", op, i);
				hits++;
			}
		}
		cr_assert_eq(keydir_count(kd), count, "op %u", op);
		if (op % 1000 == 0) {
			snprintf(when, sizeof(when), "after op %u", op);
			check_kd(kd, when);
		}
	}
	check_kd(kd, "at the end");
	/* Every key agrees with the model. */
	for (uint32_t i = 0; i < MODEL_KEYS; i++) {
		kd_loc got;
		size_t kl = make_key(k, i);
		bool g = keydir_get(kd, k, kl, &got);
		cr_assert_eq(g, present[i], "key %u", i);
		if (g)
			cr_assert(loc_eq(&got, &locs[i]), "key %u", i);
	}
	cr_log_info("random_ops_vs_model: %zu puts, %zu dels, %zu/%zu cas, %zu hits, %zu keys left",
		    puts, dels, cas_ok, cas_fail, hits, count);
	cr_assert_gt(dels, 10000u);
	cr_assert_gt(cas_ok, 1000u);
	free(present);
	free(locs);
	keydir_free(kd);
}

/* --- deletion ------------------------------------------------------ */

static void shuffle(uint32_t *a, uint32_t n, uint64_t *s)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = rng_below(s, i);
		uint32_t t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* Fill, then delete in random order until empty, checking the invariants
 * after every delete and every remaining key now and then. */
static void delete_all_random(uint32_t n, uint64_t seed)
{
	keydir *kd = new_kd();
	uint32_t *order = malloc(n * sizeof(*order));
	bool *gone = calloc(n, sizeof(bool));
	uint64_t s = seed;
	uint8_t k[KEY_MAX];
	char when[96];

	cr_assert(order && gone);
	for (uint32_t i = 0; i < n; i++) {
		put_num(kd, i, 0);
		order[i] = i;
	}
	check_kd(kd, "full");
	shuffle(order, n, &s);
	for (uint32_t d = 0; d < n; d++) {
		uint32_t i = order[d];
		kd_loc old;
		size_t kl = make_key(k, i);
		cr_assert(keydir_del(kd, k, kl, &old), "n %u: delete #%u of key %u", n, d, i);
		kd_loc want = loc_of(i, 0);
		cr_assert(loc_eq(&old, &want), "n %u: del of key %u returned a wrong location", n, i);
		cr_assert(!keydir_del(kd, k, kl, &old));
		gone[i] = true;
		cr_assert_eq(keydir_count(kd), (size_t)(n - d - 1));
		snprintf(when, sizeof(when), "n %u after delete #%u (key %u)", n, d, i);
		check_kd(kd, when);
		if (d % (n / 8 + 1) == 0 || n - d < 4) {
			for (uint32_t j = 0; j < n; j++) {
				kd_loc got;
				bool g = keydir_get(kd, k, make_key(k, j), &got);
				cr_assert_eq(g, !gone[j], "%s: key %u", when, j);
			}
		}
	}
	cr_assert_eq(keydir_count(kd), 0u);
	free(order);
	free(gone);
	keydir_free(kd);
}

Test(keydir, delete_random_order_until_empty)
{
	delete_all_random(1, 1);
	delete_all_random(2, 2);
	delete_all_random(54, 3);     /* just under the first growth */
	delete_all_random(55, 4);
	delete_all_random(500, 5);
	delete_all_random(4000, 6);
}

/* Delete and reinsert at full load, so runs keep shifting back and filling. */
Test(keydir, delete_reinsert_churn)
{
	keydir *kd = new_kd();
	uint64_t s = 77;
	uint32_t n = 2000;
	bool *in = calloc(n, sizeof(bool));
	char when[64];

	cr_assert_not_null(in);
	for (uint32_t i = 0; i < n; i++) {
		put_num(kd, i, 0);
		in[i] = true;
	}
	for (uint32_t op = 0; op < 20000; op++) {
		uint32_t i = rng_below(&s, n);
		if (in[i])
			del_num(kd, i);
		else
			put_num(kd, i, op);
		in[i] = !in[i];
		if (op % 100 == 0) {
			snprintf(when, sizeof(when), "churn op %u", op);
			check_kd(kd, when);
		}
	}
	check_kd(kd, "after churn");
	for (uint32_t i = 0; i < n; i++) {
		uint8_t k[KEY_MAX];
		kd_loc got;
		cr_assert_eq(keydir_get(kd, k, make_key(k, i), &got), in[i], "key %u", i);
	}
	free(in);
	keydir_free(kd);
}

/* --- key lengths ---------------------------------------------------- */

Test(keydir, key_lengths)
{
	static const size_t lens[] = { 0, 1, 2, 1009, 1010, 1011, 1024, 1025, 4096, 65534, 65535 };
	const size_t nl = sizeof(lens) / sizeof(lens[0]);
	keydir *kd = new_kd();
	uint8_t *buf = malloc(65536);
	size_t base = keydir_memory(kd);

	cr_assert_not_null(buf);
	/* All share the prefix of a common pattern: each is a prefix of the
	 * next, the worst case for a length check. */
	for (size_t i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i * 131u + 7u);
	for (size_t i = 0; i < nl; i++)
		put_new(kd, buf, lens[i], (kd_loc){ (uint32_t)i, (uint32_t)lens[i], 1 });
	cr_assert_eq(keydir_count(kd), nl);
	check_kd(kd, "after long keys");
	/* The large entries (malloc'd) are counted in keydir_memory. */
	cr_assert_geq(keydir_memory(kd), base + 65535 + 65534 + 4096 + 1025 + 1024,
		      "memory %zu, base %zu", keydir_memory(kd), base);
	for (size_t i = 0; i < nl; i++) {
		kd_loc got, old;
		bool had;
		cr_assert(keydir_get(kd, buf, lens[i], &got), "length %zu", lens[i]);
		cr_assert_eq(got.fileno, (uint32_t)i);
		cr_assert_eq(got.offset, (uint32_t)lens[i]);
		/* Replace keeps the entry. */
		kd_loc nl2 = { (uint32_t)i, (uint32_t)lens[i], 2 };
		cr_assert_eq(keydir_put(kd, buf, lens[i], &nl2, &old, &had), 0);
		cr_assert(had);
		cr_assert_eq(old.size, 1u);
		/* The same length with the last byte changed is another key. */
		if (lens[i]) {
			buf[lens[i] - 1] ^= 0x80;
			cr_assert(!keydir_get(kd, buf, lens[i], &got), "length %zu, last byte changed", lens[i]);
			buf[lens[i] - 1] ^= 0x80;
		}
	}
	cr_assert_eq(keydir_count(kd), nl);
	/* Delete the odd ones, then the rest. */
	for (size_t pass = 0; pass < 2; pass++) {
		for (size_t i = pass ? 0 : 1; i < nl; i += 2) {
			kd_loc old;
			cr_assert(keydir_del(kd, buf, lens[i], &old), "length %zu", lens[i]);
			cr_assert_eq(old.size, 2u);
			kd_loc got;
			cr_assert(!keydir_get(kd, buf, lens[i], &got));
			check_kd(kd, "deleting long keys");
		}
	}
	cr_assert_eq(keydir_count(kd), 0u);
	/* Large entries are returned: memory back to the empty table plus at
	 * most the one slab the small entries used. */
	cr_assert_leq(keydir_memory(kd), base + 64 * 1024, "memory %zu, base %zu",
		      keydir_memory(kd), base);
	free(buf);
	keydir_free(kd);
}

/* Many large-entry keys that differ only in their last byte. */
Test(keydir, many_max_length_keys)
{
	keydir *kd = new_kd();
	uint8_t *buf = malloc(65535);

	cr_assert_not_null(buf);
	memset(buf, 'x', 65535);
	for (uint32_t i = 0; i < 200; i++) {
		buf[65534] = (uint8_t)i;
		buf[0] = (uint8_t)(i >> 8);
		put_new(kd, buf, 65535, (kd_loc){ i, i, i });
	}
	check_kd(kd, "200 max keys");
	for (uint32_t i = 0; i < 200; i++) {
		kd_loc got;
		buf[65534] = (uint8_t)i;
		buf[0] = (uint8_t)(i >> 8);
		cr_assert(keydir_get(kd, buf, 65535, &got));
		cr_assert_eq(got.fileno, i);
	}
	for (uint32_t i = 0; i < 200; i += 2) {
		kd_loc old;
		buf[65534] = (uint8_t)i;
		buf[0] = (uint8_t)(i >> 8);
		cr_assert(keydir_del(kd, buf, 65535, &old));
	}
	check_kd(kd, "100 deleted");
	cr_assert_eq(keydir_count(kd), 100u);
	free(buf);
	keydir_free(kd); /* frees the 100 left: ASan reports a leak otherwise */
}

/* --- memory ---------------------------------------------------------- */

Test(keydir, memory_per_key_1m, .timeout = 60)
{
	const uint32_t n = 1000000;
	keydir *kd = new_kd();
	char k[16];

	for (uint32_t i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "%015u", i * 2654435761u);
		kd_loc old;
		bool had;
		cr_assert_eq(keydir_put(kd, k, 15, &(kd_loc){ i, i, 34 }, &old, &had), 0);
		if (had)
			cr_assert_fail("key %u collided with an earlier key", i);
	}
	cr_assert_eq(keydir_count(kd), n);
	size_t mem = keydir_memory(kd);
	double per = (double)mem / n;
	cr_log_info("keydir_memory: %zu bytes for %u 15-byte keys = %.2f bytes/key (%.2f beyond the key)",
		    mem, n, per, per - 15);
	cr_assert_leq(mem, (size_t)n * (32 + 15), "%.2f bytes per key", per);
	/* A sample still resolves. */
	for (uint32_t i = 0; i < n; i += 997) {
		kd_loc got;
		snprintf(k, sizeof(k), "%015u", i * 2654435761u);
		cr_assert(keydir_get(kd, k, 15, &got));
		cr_assert_eq(got.fileno, i);
	}
	keydir_free(kd);
}

/* --- foreach --------------------------------------------------------- */

typedef struct visit_log {
	uint32_t n;              /* key numbers 0..n-1 */
	uint32_t *seen;          /* visits per key */
	size_t calls;
	size_t stop_after;       /* return false on this call (0: never) */
	size_t calls_after_stop;
	bool stopped;
	bool bad;                /* a key or location not from make_key/loc_of */
	/* ordered scans */
	bool have_last;
	uint64_t last_hash;
	uint8_t last_key[KEY_MAX];
	size_t last_len;
	size_t order_errors;
	const siphash_key *hkey;
	const uint32_t *gen;     /* expected location generation per key, or NULL */
} visit_log;

static void log_init(visit_log *v, uint32_t n)
{
	memset(v, 0, sizeof(*v));
	v->n = n;
	v->seen = calloc(n, sizeof(uint32_t));
	cr_assert_not_null(v->seen);
}

static bool visit(void *ctx, const uint8_t *key, size_t key_len, const kd_loc *loc)
{
	visit_log *v = ctx;
	uint8_t want[KEY_MAX];

	if (v->stopped)
		v->calls_after_stop++;
	v->calls++;
	uint32_t i = key_number(key, key_len);
	if (i >= v->n || make_key(want, i) != key_len || memcmp(want, key, key_len) != 0) {
		v->bad = true;
		return true;
	}
	kd_loc exp = loc_of(i, v->gen ? v->gen[i] : 0);
	if (!loc_eq(&exp, loc))
		v->bad = true;
	v->seen[i]++;
	if (v->hkey) {
		uint64_t h = siphash24(v->hkey, key, key_len);
		if (v->have_last && cmp_hk(v->last_hash, v->last_key, v->last_len, h, key, key_len) >= 0)
			v->order_errors++;
		v->have_last = true;
		v->last_hash = h;
		v->last_len = key_len;
		memcpy(v->last_key, key, key_len);
	}
	if (v->stop_after && v->calls == v->stop_after) {
		v->stopped = true;
		return false;
	}
	return true;
}

Test(keydir, foreach_visits_all)
{
	const uint32_t n = 5000;
	keydir *kd = new_kd();
	visit_log v;

	for (uint32_t i = 0; i < n; i++)
		put_num(kd, i, 0);
	for (uint32_t i = 0; i < n; i += 3)
		del_num(kd, i);
	log_init(&v, n);
	keydir_foreach(kd, visit, &v);
	cr_assert(!v.bad);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(v.seen[i], i % 3 ? 1u : 0u, "key %u seen %u times", i, v.seen[i]);
	cr_assert_eq(v.calls, keydir_count(kd));
	free(v.seen);

	/* Stop early. */
	log_init(&v, n);
	v.stop_after = 10;
	keydir_foreach(kd, visit, &v);
	cr_assert_eq(v.calls, 10u);
	free(v.seen);

	/* Empty keydir: no calls. */
	keydir *e = new_kd();
	log_init(&v, n);
	keydir_foreach(e, visit, &v);
	cr_assert_eq(v.calls, 0u);
	free(v.seen);
	keydir_free(e);
	keydir_free(kd);
}

/* --- ordered scan ---------------------------------------------------- */

/* Run a whole scan in batches of `limit`, checking progress; returns the
 * number of calls. */
static size_t scan_all(keydir *kd, size_t limit, visit_log *v)
{
	kd_pos *a = calloc(1, sizeof(kd_pos)), *b = calloc(1, sizeof(kd_pos));
	size_t calls = 0;

	cr_assert(a && b);
	a->started = false;
	for (;;) {
		size_t before = v->calls;
		bool more = keydir_scan(kd, a, limit, visit, v, b);
		calls++;
		size_t got = v->calls - before;
		if (!more)
			break;
		cr_assert_gt(got, 0u, "limit %zu: a batch returned more=true with no keys", limit);
		cr_assert(b->started);
		kd_pos *t = a;
		a = b;
		b = t;
		cr_assert_lt(calls, (size_t)10000000, "scan does not end");
	}
	free(a);
	free(b);
	return calls;
}

Test(keydir, scan_full_in_batches, .timeout = 60)
{
	const uint32_t n = 3000;
	siphash_key hk = test_key();
	keydir *kd = new_kd();
	static const size_t limits[] = { 1, 2, 7, 64, 256, 2999, 3000, 3001, SIZE_MAX };

	for (uint32_t i = 0; i < n; i++)
		put_num(kd, i, 0);
	for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
		visit_log v;
		log_init(&v, n);
		v.hkey = &hk;
		size_t calls = scan_all(kd, limits[li], &v);
		cr_assert(!v.bad, "limit %zu: unexpected key or location", limits[li]);
		cr_assert_eq(v.order_errors, 0u, "limit %zu: %zu keys out of (hash, key) order",
			     limits[li], v.order_errors);
		for (uint32_t i = 0; i < n; i++)
			cr_assert_eq(v.seen[i], 1u, "limit %zu: key %u seen %u times", limits[li], i, v.seen[i]);
		cr_assert_eq(v.calls, n);
		if (limits[li] == 1)
			cr_assert_geq(calls, n / 2, "limit 1 took only %zu calls", calls);
		free(v.seen);
	}
	check_kd(kd, "after scans");
	keydir_free(kd);
}

Test(keydir, scan_empty_and_single)
{
	keydir *kd = new_kd();
	kd_pos *from = calloc(1, sizeof(kd_pos)), *next = calloc(1, sizeof(kd_pos));
	visit_log v;

	cr_assert(from && next);
	log_init(&v, 10);
	cr_assert(!keydir_scan(kd, from, 100, visit, &v, next));
	cr_assert_eq(v.calls, 0u);
	cr_assert(!next->started);

	put_num(kd, 0, 0); /* the empty key */
	cr_assert(!keydir_scan(kd, from, 100, visit, &v, next));
	cr_assert_eq(v.calls, 1u);
	cr_assert_eq(v.seen[0], 1u);
	cr_assert(next->started);
	cr_assert_eq(next->key_len, 0);
	siphash_key hk = test_key();
	cr_assert_eq(next->hash, siphash24(&hk, "", 0));
	/* Resuming after the last key: nothing. */
	memcpy(from, next, sizeof(*from));
	cr_assert(!keydir_scan(kd, from, 100, visit, &v, next));
	cr_assert_eq(v.calls, 1u);
	free(v.seen);
	free(from);
	free(next);
	keydir_free(kd);
}

/* The position is (hash, key), not a slot: resuming from a position whose
 * key was deleted still continues right after it. */
Test(keydir, scan_resume_after_deleted_key)
{
	const uint32_t n = 1000;
	siphash_key hk = test_key();
	keydir *kd = new_kd();
	kd_pos *a = calloc(1, sizeof(kd_pos)), *b = calloc(1, sizeof(kd_pos));
	visit_log v;

	cr_assert(a && b);
	for (uint32_t i = 0; i < n; i++)
		put_num(kd, i, 0);
	log_init(&v, n);
	v.hkey = &hk;
	bool more = true;
	while (more) {
		size_t before = v.calls;
		more = keydir_scan(kd, a, 5, visit, &v, b);
		if (v.calls > before) {
			/* Delete the key the position names. */
			kd_loc old;
			cr_assert(keydir_del(kd, b->key, b->key_len, &old));
		}
		kd_pos *t = a;
		a = b;
		b = t;
	}
	cr_assert_eq(v.order_errors, 0u);
	for (uint32_t i = 0; i < n; i++)
		cr_assert_eq(v.seen[i], 1u, "key %u seen %u times", i, v.seen[i]);
	free(v.seen);
	free(a);
	free(b);
	keydir_free(kd);
}

/* A callback that returns false stops the scan (the keydir_visit_fn
 * contract), and resuming from *next then visits each remaining key once:
 * none is skipped or repeated. */
Test(keydir, scan_callback_stop)
{
	const uint32_t n = 2000;
	siphash_key hk = test_key();
	keydir *kd = new_kd();
	kd_pos *a = calloc(1, sizeof(kd_pos)), *b = calloc(1, sizeof(kd_pos));

	cr_assert(a && b);
	for (uint32_t i = 0; i < n; i++)
		put_num(kd, i, 0);
	for (size_t stop = 1; stop <= 9; stop += 4) {
		visit_log v;
		log_init(&v, n);
		v.hkey = &hk;
		memset(a, 0, sizeof(*a));
		bool more = true;
		size_t rounds = 0;
		while (more) {
			size_t before = v.calls;
			v.stopped = false;
			v.calls_after_stop = 0;
			v.stop_after = before + stop;
			more = keydir_scan(kd, a, SIZE_MAX, visit, &v, b);
			cr_expect_eq(v.calls_after_stop, 0u,
				     "stop after %zu: fn called %zu more times after it returned false",
				     stop, v.calls_after_stop);
			kd_pos *t = a;
			a = b;
			b = t;
			if (++rounds > n + 10)
				cr_assert_fail("scan does not end");
		}
		size_t missing = 0, dup = 0;
		for (uint32_t i = 0; i < n; i++) {
			missing += v.seen[i] == 0;
			dup += v.seen[i] > 1;
		}
		cr_expect_eq(missing, 0u, "stop after %zu: %zu keys never visited", stop, missing);
		cr_expect_eq(dup, 0u, "stop after %zu: %zu keys visited twice", stop, dup);
		cr_expect_eq(v.order_errors, 0u);
		free(v.seen);
	}
	free(a);
	free(b);
	keydir_free(kd);
}

/* A scan interleaved with inserts and deletes that grow the table several
 * times: every key present for the whole scan is visited exactly once, no
 * key twice, and keys come in increasing (hash, key) order. */
static void scan_with_writes(size_t limit, uint32_t per_batch, uint64_t seed)
{
	const uint32_t stable = 1500, total = 120000;
	siphash_key hk = test_key();
	keydir *kd = new_kd();
	kd_pos *a = calloc(1, sizeof(kd_pos)), *b = calloc(1, sizeof(kd_pos));
	bool *in = calloc(total, sizeof(bool));
	uint32_t next_new = stable;
	uint64_t s = seed;
	visit_log v;

	cr_assert(a && b && in);
	/* Key numbers 0..stable-1 stay the whole scan; the rest come and go. */
	for (uint32_t i = 0; i < stable; i++)
		put_num(kd, i, 0);
	log_init(&v, total);
	v.hkey = &hk;
	size_t start_mem = keydir_memory(kd), batches = 0;
	bool more = true;
	while (more) {
		more = keydir_scan(kd, a, limit, visit, &v, b);
		kd_pos *t = a;
		a = b;
		b = t;
		batches++;
		/* Insert new keys (growing the table) and delete some earlier
		 * volatile ones, possibly ones already visited or not yet. */
		for (uint32_t j = 0; j < per_batch && next_new < total; j++) {
			put_num(kd, next_new, 0);
			in[next_new++] = true;
		}
		for (uint32_t j = 0; j < per_batch / 3 && next_new > stable; j++) {
			uint32_t i = stable + rng_below(&s, next_new - stable);
			if (in[i]) {
				del_num(kd, i);
				in[i] = false;
			}
		}
		cr_assert_lt(batches, (size_t)1000000, "scan does not end");
	}
	check_kd(kd, "after scan with writes");
	cr_assert(!v.bad);
	cr_assert_eq(v.order_errors, 0u, "limit %zu: %zu keys out of order", limit, v.order_errors);
	for (uint32_t i = 0; i < stable; i++)
		cr_assert_eq(v.seen[i], 1u, "limit %zu: stable key %u seen %u times", limit, i, v.seen[i]);
	for (uint32_t i = stable; i < total; i++)
		cr_assert_leq(v.seen[i], 1u, "limit %zu: key %u seen %u times", limit, i, v.seen[i]);
	cr_log_info("scan_with_writes limit %zu: %zu batches, %u keys inserted, memory %zu -> %zu",
		    limit, batches, next_new - stable, start_mem, keydir_memory(kd));
	/* The table really grew during the scan. */
	cr_assert_gt(keydir_memory(kd), 4 * start_mem);
	free(v.seen);
	free(in);
	free(a);
	free(b);
	keydir_free(kd);
}

Test(keydir, scan_interleaved_with_resizes, .timeout = 60)
{
	scan_with_writes(7, 300, 11);
	scan_with_writes(50, 1000, 12);
	scan_with_writes(1, 40, 13);
}
