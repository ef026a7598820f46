/* keydir.c -- the in-memory key directory; see keydir.h for the design. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keydir.h"

/* Entry layout, 2-byte aligned, read and written with memcpy:
 *   0 u32 fileno | 4 u32 offset | 8 u32 size | 12 u16 key_len | 14 key */
#define ENT_HDR        14u
#define SLAB_SIZE      (64u * 1024)
#define SMALL_MAX      1024u            /* larger entries come from malloc */
#define MAX_LOAD_NUM   85u              /* grow past 85% of the buckets */
#define MAX_LOAD_DEN   100u
#define MIN_BUCKETS    64u
#define PTR_BITS       48
#define PTR_MASK       ((UINT64_C(1) << PTR_BITS) - 1)

typedef struct slab {
	struct slab *next;              /* older slab */
	uint8_t mem[];                  /* SLAB_SIZE - header bytes */
} slab;

struct keydir {
	siphash_key hkey;               /* hash key, fixed for the life of the keydir */
	uint64_t *slots;                /* nslots slots: 0 = empty, else tag<<48 | entry address */
	size_t nbuckets;                /* home slots: homes are in [0, nbuckets) */
	size_t nslots;                  /* nbuckets + overflow tail (no wrap-around) */
	size_t count;                   /* entries */
	slab *slabs;                    /* every slab, newest first */
	uint8_t *bump;                  /* next free byte in the newest slab */
	size_t bump_left;               /* bytes left there */
	size_t nslabs;                  /* slabs allocated */
	size_t large_bytes;             /* bytes of malloc'd large entries */
	uint8_t *free_small[SMALL_MAX / 2 + 1]; /* free entries by size/2; link in first 8 bytes */
};

static size_t ent_size(size_t key_len)
{
	return (ENT_HDR + key_len + 1) & ~(size_t)1;
}

static uint16_t ent_klen(const uint8_t *e)
{
	uint16_t v;
	memcpy(&v, e + 12, 2);
	return v;
}

static void ent_loc(const uint8_t *e, kd_loc *loc)
{
	memcpy(&loc->fileno, e, 4);
	memcpy(&loc->offset, e + 4, 4);
	memcpy(&loc->size, e + 8, 4);
}

static void ent_set_loc(uint8_t *e, const kd_loc *loc)
{
	memcpy(e, &loc->fileno, 4);
	memcpy(e + 4, &loc->offset, 4);
	memcpy(e + 8, &loc->size, 4);
}

static uint8_t *slot_ent(uint64_t s)
{
	return (uint8_t *)(uintptr_t)(s & PTR_MASK);
}

static uint16_t slot_tag(uint64_t s)
{
	return (uint16_t)(s >> PTR_BITS);
}

static size_t home_of(const keydir *kd, uint64_t hash)
{
	return (size_t)(((hash >> 32) * (uint64_t)kd->nbuckets) >> 32);
}

static size_t tail_for(size_t nbuckets)
{
	return nbuckets / 32 + 64;
}

static uint64_t ent_hash(const keydir *kd, const uint8_t *e)
{
	return siphash24(&kd->hkey, e + ENT_HDR, ent_klen(e));
}

/* --- entry allocation ------------------------------------------------- */

static uint8_t *ent_alloc(keydir *kd, size_t size)
{
	uint8_t *e;
	if (size > SMALL_MAX) {
		e = malloc(size);
		if (e)
			kd->large_bytes += size;
		return e;
	}
	e = kd->free_small[size / 2];
	if (e) {
		memcpy(&kd->free_small[size / 2], e, sizeof(uint8_t *));
		return e;
	}
	if (kd->bump_left < size) {
		slab *s = malloc(SLAB_SIZE);
		if (!s)
			return NULL;
		s->next = kd->slabs;
		kd->slabs = s;
		kd->nslabs++;
		kd->bump = s->mem;
		kd->bump_left = SLAB_SIZE - offsetof(slab, mem);
	}
	e = kd->bump;
	kd->bump += size;
	kd->bump_left -= size;
	return e;
}

static void ent_free(keydir *kd, uint8_t *e)
{
	size_t size = ent_size(ent_klen(e));
	if (size > SMALL_MAX) {
		kd->large_bytes -= size;
		free(e);
		return;
	}
	memcpy(e, &kd->free_small[size / 2], sizeof(uint8_t *));
	kd->free_small[size / 2] = e;
}

/* --- the table -------------------------------------------------------- */

keydir *keydir_new(const siphash_key *hkey)
{
	keydir *kd = calloc(1, sizeof(*kd));
	if (!kd)
		return NULL;
	kd->hkey = *hkey;
	kd->nbuckets = MIN_BUCKETS;
	kd->nslots = MIN_BUCKETS + tail_for(MIN_BUCKETS);
	kd->slots = calloc(kd->nslots, sizeof(uint64_t));
	if (!kd->slots) {
		free(kd);
		return NULL;
	}
	return kd;
}

void keydir_free(keydir *kd)
{
	if (!kd)
		return;
	for (size_t i = 0; i < kd->nslots; i++) {
		uint8_t *e = slot_ent(kd->slots[i]);
		if (e && ent_size(ent_klen(e)) > SMALL_MAX)
			free(e);
	}
	for (slab *s = kd->slabs, *n; s; s = n) {
		n = s->next;
		free(s);
	}
	free(kd->slots);
	free(kd);
}

/* Index of the slot holding key, or SIZE_MAX. */
static size_t find(const keydir *kd, const void *key, size_t key_len, uint64_t hash)
{
	uint16_t tag = (uint16_t)hash;
	for (size_t i = home_of(kd, hash); i < kd->nslots; i++) {
		uint64_t s = kd->slots[i];
		if (!s)
			return SIZE_MAX;
		if (slot_tag(s) != tag)
			continue;
		const uint8_t *e = slot_ent(s);
		if (ent_klen(e) == key_len && memcmp(e + ENT_HDR, key, key_len) == 0)
			return i;
	}
	return SIZE_MAX;
}

/* Place a slot value for an entry with this hash; false if the probe ran
 * off the end of the table (the caller grows it). */
static bool place(uint64_t *slots, size_t nslots, size_t home, uint64_t sv)
{
	for (size_t i = home; i < nslots; i++) {
		if (!slots[i]) {
			slots[i] = sv;
			return true;
		}
	}
	return false;
}

static int resize(keydir *kd, size_t nbuckets)
{
	for (;;) {
		size_t nslots = nbuckets + tail_for(nbuckets);
		uint64_t *ns = calloc(nslots, sizeof(uint64_t));
		if (!ns)
			return -ENOMEM;
		keydir tmp = *kd;
		tmp.nbuckets = nbuckets;
		bool ok = true;
		for (size_t i = 0; i < kd->nslots && ok; i++) {
			uint64_t s = kd->slots[i];
			if (s)
				ok = place(ns, nslots, home_of(&tmp, ent_hash(kd, slot_ent(s))), s);
		}
		if (ok) {
			free(kd->slots);
			kd->slots = ns;
			kd->nbuckets = nbuckets;
			kd->nslots = nslots;
			return 0;
		}
		/* A pathological cluster ran off the tail: try a larger table. */
		free(ns);
		nbuckets = nbuckets + nbuckets / 2;
	}
}

bool keydir_get(const keydir *kd, const void *key, size_t key_len, kd_loc *loc)
{
	uint64_t hash = siphash24(&kd->hkey, key, key_len);
	size_t i = find(kd, key, key_len, hash);
	if (i == SIZE_MAX)
		return false;
	ent_loc(slot_ent(kd->slots[i]), loc);
	return true;
}

int keydir_put(keydir *kd, const void *key, size_t key_len, const kd_loc *loc,
	       kd_loc *old, bool *had_old)
{
	assert(key_len <= UINT16_MAX);
	uint64_t hash = siphash24(&kd->hkey, key, key_len);
	size_t i = find(kd, key, key_len, hash);
	if (i != SIZE_MAX) {
		uint8_t *e = slot_ent(kd->slots[i]);
		ent_loc(e, old);
		ent_set_loc(e, loc);
		*had_old = true;
		return 0;
	}
	*had_old = false;
	if ((kd->count + 1) * MAX_LOAD_DEN > kd->nbuckets * MAX_LOAD_NUM) {
		int rc = resize(kd, kd->nbuckets + kd->nbuckets / 2);
		if (rc)
			return rc;
	}
	uint8_t *e = ent_alloc(kd, ent_size(key_len));
	if (!e)
		return -ENOMEM;
	assert(((uintptr_t)e & ~PTR_MASK) == 0);
	ent_set_loc(e, loc);
	uint16_t kl = (uint16_t)key_len;
	memcpy(e + 12, &kl, 2);
	if (key_len)
		memcpy(e + ENT_HDR, key, key_len);
	uint64_t sv = ((uint64_t)(uint16_t)hash << PTR_BITS) | (uint64_t)(uintptr_t)e;
	while (!place(kd->slots, kd->nslots, home_of(kd, hash), sv)) {
		int rc = resize(kd, kd->nbuckets + kd->nbuckets / 2);
		if (rc) {
			ent_free(kd, e);
			return rc;
		}
	}
	kd->count++;
	return 0;
}

bool keydir_cas(keydir *kd, const void *key, size_t key_len,
		const kd_loc *expect, const kd_loc *loc)
{
	uint64_t hash = siphash24(&kd->hkey, key, key_len);
	size_t i = find(kd, key, key_len, hash);
	if (i == SIZE_MAX)
		return false;
	uint8_t *e = slot_ent(kd->slots[i]);
	kd_loc cur;
	ent_loc(e, &cur);
	if (cur.fileno != expect->fileno || cur.offset != expect->offset)
		return false;
	ent_set_loc(e, loc);
	return true;
}

bool keydir_del(keydir *kd, const void *key, size_t key_len, kd_loc *old)
{
	uint64_t hash = siphash24(&kd->hkey, key, key_len);
	size_t hole = find(kd, key, key_len, hash);
	if (hole == SIZE_MAX)
		return false;
	uint8_t *e = slot_ent(kd->slots[hole]);
	ent_loc(e, old);
	ent_free(kd, e);
	kd->slots[hole] = 0;
	kd->count--;
	/* Backward-shift deletion: pull later members of the run into the hole
	 * when their home is at or before it, so no probe ever meets a gap
	 * between an entry's home and its slot. */
	for (size_t j = hole + 1; j < kd->nslots && kd->slots[j]; j++) {
		size_t h = home_of(kd, ent_hash(kd, slot_ent(kd->slots[j])));
		if (h <= hole) {
			kd->slots[hole] = kd->slots[j];
			kd->slots[j] = 0;
			hole = j;
		}
	}
	return true;
}

int keydir_reserve(keydir *kd, size_t n)
{
	size_t need = n * MAX_LOAD_DEN / MAX_LOAD_NUM + 1;
	if (need <= kd->nbuckets)
		return 0;
	return resize(kd, need);
}

size_t keydir_count(const keydir *kd)
{
	return kd->count;
}

size_t keydir_memory(const keydir *kd)
{
	return sizeof(*kd) + kd->nslots * sizeof(uint64_t) + kd->nslabs * SLAB_SIZE + kd->large_bytes;
}

void keydir_foreach(const keydir *kd, keydir_visit_fn fn, void *ctx)
{
	for (size_t i = 0; i < kd->nslots; i++) {
		uint64_t s = kd->slots[i];
		if (!s)
			continue;
		const uint8_t *e = slot_ent(s);
		kd_loc loc;
		ent_loc(e, &loc);
		if (!fn(ctx, e + ENT_HDR, ent_klen(e), &loc))
			return;
	}
}

/* --- ordered scan ----------------------------------------------------- */

typedef struct scan_item {
	uint64_t hash;
	const uint8_t *ent;
} scan_item;

static int cmp_hk(uint64_t ha, const uint8_t *ka, size_t la,
		  uint64_t hb, const uint8_t *kb, size_t lb)
{
	if (ha != hb)
		return ha < hb ? -1 : 1;
	int c = memcmp(ka, kb, la < lb ? la : lb);
	if (c)
		return c;
	return la < lb ? -1 : la > lb ? 1 : 0;
}

static int cmp_item(const void *a, const void *b)
{
	const scan_item *x = a, *y = b;
	return cmp_hk(x->hash, x->ent + ENT_HDR, ent_klen(x->ent),
		      y->hash, y->ent + ENT_HDR, ent_klen(y->ent));
}

bool keydir_scan(const keydir *kd, const kd_pos *from, size_t limit,
		 keydir_visit_fn fn, void *ctx, kd_pos *next)
{
	size_t i = from->started ? home_of(kd, from->hash) : 0;
	size_t emitted = 0, cap = 0;
	scan_item *run = NULL;
	kd_pos pos = *from;   /* copied: next may alias from */
	bool more = true;

	while (emitted < limit) {
		/* Skip empty slots to the start of the next run. */
		while (i < kd->nslots && !kd->slots[i])
			i++;
		if (i >= kd->nslots) {
			more = false;
			break;
		}
		/* Every entry whose home lies in this run lies in it too
		 * (the slot before the run is empty or before our start). */
		size_t n = 0;
		for (; i < kd->nslots && kd->slots[i]; i++) {
			const uint8_t *e = slot_ent(kd->slots[i]);
			uint64_t h = ent_hash(kd, e);
			if (pos.started && cmp_hk(h, e + ENT_HDR, ent_klen(e),
						  pos.hash, pos.key, pos.key_len) <= 0)
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				scan_item *nr = realloc(run, cap * sizeof(*run));
				if (!nr) {
					free(run);
					*next = pos;
					return true; /* resume later; nothing lost */
				}
				run = nr;
			}
			run[n].hash = h;
			run[n].ent = e;
			n++;
		}
		if (n > 1)
			qsort(run, n, sizeof(*run), cmp_item);
		bool stop = false;
		for (size_t k = 0; k < n; k++) {
			const uint8_t *e = run[k].ent;
			kd_loc loc;
			ent_loc(e, &loc);
			pos.started = true;
			pos.hash = run[k].hash;
			pos.key_len = ent_klen(e);
			memcpy(pos.key, e + ENT_HDR, pos.key_len);
			emitted++;
			if (!fn(ctx, e + ENT_HDR, ent_klen(e), &loc)) {
				stop = true;
				break;
			}
			if (emitted >= limit)
				break;
		}
		if (stop)
			break;
	}
	free(run);
	*next = pos;
	return more;
}

int keydir_check(const keydir *kd, char *err, size_t errlen)
{
	size_t n = 0;
	for (size_t i = 0; i < kd->nslots; i++) {
		uint64_t s = kd->slots[i];
		if (!s)
			continue;
		n++;
		const uint8_t *e = slot_ent(s);
		uint64_t h = ent_hash(kd, e);
		if (slot_tag(s) != (uint16_t)h) {
			snprintf(err, errlen, "keydir: slot %zu tag does not match its key", i);
			return -1;
		}
		size_t home = home_of(kd, h);
		if (home > i) {
			snprintf(err, errlen, "keydir: slot %zu holds an entry whose home %zu is after it", i, home);
			return -1;
		}
		for (size_t j = home; j < i; j++) {
			if (!kd->slots[j]) {
				snprintf(err, errlen, "keydir: gap at %zu between home %zu and slot %zu", j, home, i);
				return -1;
			}
		}
	}
	if (n != kd->count) {
		snprintf(err, errlen, "keydir: %zu entries found, count says %zu", n, kd->count);
		return -1;
	}
	return 0;
}
