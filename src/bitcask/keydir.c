/* keydir.c -- the in-memory key directory; see keydir.h for the design. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keydir.h"

/* Entry layout, 2-byte aligned, read and written with memcpy:
 *   0 u32 fileno | 4 u32 offset | 8 u32 size | 12 u16 key_len | 14 key */
#define ENT_HDR        14u
#define SLAB_MIN       1024u            /* first slab; each next one doubles ... */
#define SLAB_MAX       (64u * 1024)     /* ... up to this */
#define SMALL_MAX      1024u            /* larger entries come from malloc */
#define MAX_LOAD_NUM   85u              /* grow past 85% of the buckets */
#define MAX_LOAD_DEN   100u
#define MIN_BUCKETS    16u
#define SHARD_BITS     8
#define NSHARDS        (1u << SHARD_BITS)
#define PTR_BITS       48
#define PTR_MASK       ((UINT64_C(1) << PTR_BITS) - 1)

typedef struct slab {
	struct slab *next;              /* older slab */
	size_t size;                    /* bytes allocated for this slab */
	uint8_t mem[];
} slab;

/* One shard: an open-addressing table of its own.  Fields guarded by lock. */
typedef struct kd_shard {
	pthread_mutex_t lock;
	uint64_t *slots;                /* nslots slots: 0 = empty, else tag<<48 | entry address */
	size_t nbuckets;                /* home slots: homes are in [0, nbuckets) */
	size_t nslots;                  /* nbuckets + overflow tail (no wrap-around) */
	size_t count;                   /* entries */
} kd_shard;

struct keydir {
	siphash_key hkey;               /* hash key, fixed for the life of the keydir */
	kd_shard shard[NSHARDS];
	atomic_size_t count;            /* entries in all shards */
	atomic_size_t slots;            /* slots of all shards' tables: keydir_memory()
					 * is asked often (every store's, for each
					 * status and gossip probe) and must not
					 * take every shard's lock */

	/* The entry allocator, shared by the shards (entries are made and freed
	 * only by writers, which the store serialises anyway). */
	pthread_mutex_t alloc_lock;
	slab *slabs;                    /* every slab, newest first */
	uint8_t *bump;                  /* next free byte in the newest slab */
	size_t bump_left;               /* bytes left there */
	size_t next_slab;               /* size of the next slab */
	size_t slab_bytes;              /* bytes of all slabs */
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

static unsigned shard_of(uint64_t hash)
{
	return (unsigned)(hash >> (64 - SHARD_BITS));
}

/* Home slot within the shard, from the 32 hash bits below the shard's. */
static size_t home_in(size_t nbuckets, uint64_t hash)
{
	uint64_t mid = (hash >> (32 - SHARD_BITS)) & 0xffffffffu;
	return (size_t)((mid * (uint64_t)nbuckets) >> 32);
}

static size_t tail_for(size_t nbuckets)
{
	return nbuckets / 32 + 16;
}

static uint64_t ent_hash(const keydir *kd, const uint8_t *e)
{
	return siphash24(&kd->hkey, e + ENT_HDR, ent_klen(e));
}

/* --- entry allocation (alloc_lock held) --------------------------------- */

static uint8_t *ent_alloc_locked(keydir *kd, size_t size)
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
		/* Small stores stay small: slabs start at 1 KiB and double. */
		size_t ssize = kd->next_slab;
		slab *s = malloc(ssize);
		if (!s)
			return NULL;
		s->next = kd->slabs;
		s->size = ssize;
		kd->slabs = s;
		kd->slab_bytes += ssize;
		kd->bump = s->mem;
		kd->bump_left = ssize - offsetof(slab, mem);
		if (kd->next_slab < SLAB_MAX)
			kd->next_slab *= 2;
	}
	e = kd->bump;
	kd->bump += size;
	kd->bump_left -= size;
	return e;
}

static void ent_free_locked(keydir *kd, uint8_t *e)
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

/* --- one shard's table (its lock held) --------------------------------- */

static int shard_init(kd_shard *sh)
{
	sh->nbuckets = MIN_BUCKETS;
	sh->nslots = MIN_BUCKETS + tail_for(MIN_BUCKETS);
	sh->slots = calloc(sh->nslots, sizeof(uint64_t));
	if (!sh->slots)
		return -ENOMEM;
	pthread_mutex_init(&sh->lock, NULL);
	return 0;
}

/* Index of the slot holding key, or SIZE_MAX. */
static size_t find(const kd_shard *sh, const void *key, size_t key_len, uint64_t hash)
{
	uint16_t tag = (uint16_t)hash;
	for (size_t i = home_in(sh->nbuckets, hash); i < sh->nslots; i++) {
		uint64_t s = sh->slots[i];
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

/* Place a slot value; false if the probe ran off the end of the table (the
 * caller grows it). */
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

static int resize(keydir *kd, kd_shard *sh, size_t nbuckets)
{
	for (;;) {
		size_t nslots = nbuckets + tail_for(nbuckets);
		uint64_t *ns = calloc(nslots, sizeof(uint64_t));
		if (!ns)
			return -ENOMEM;
		bool ok = true;
		for (size_t i = 0; i < sh->nslots && ok; i++) {
			uint64_t s = sh->slots[i];
			if (s)
				ok = place(ns, nslots, home_in(nbuckets, ent_hash(kd, slot_ent(s))), s);
		}
		if (ok) {
			atomic_fetch_add(&kd->slots, nslots - sh->nslots);   /* tables only grow */
			free(sh->slots);
			sh->slots = ns;
			sh->nbuckets = nbuckets;
			sh->nslots = nslots;
			return 0;
		}
		/* A pathological cluster ran off the tail: try a larger table. */
		free(ns);
		nbuckets = nbuckets + nbuckets / 2;
	}
}

/* --- the directory ----------------------------------------------------- */

keydir *keydir_new(const siphash_key *hkey)
{
	keydir *kd = calloc(1, sizeof(*kd));
	if (!kd)
		return NULL;
	kd->hkey = *hkey;
	kd->next_slab = SLAB_MIN;
	pthread_mutex_init(&kd->alloc_lock, NULL);
	for (unsigned i = 0; i < NSHARDS; i++) {
		if (shard_init(&kd->shard[i]) != 0) {
			for (unsigned j = 0; j < i; j++) {
				free(kd->shard[j].slots);
				pthread_mutex_destroy(&kd->shard[j].lock);
			}
			pthread_mutex_destroy(&kd->alloc_lock);
			free(kd);
			return NULL;
		}
		atomic_fetch_add(&kd->slots, kd->shard[i].nslots);
	}
	return kd;
}

void keydir_free(keydir *kd)
{
	if (!kd)
		return;
	for (unsigned k = 0; k < NSHARDS; k++) {
		kd_shard *sh = &kd->shard[k];
		for (size_t i = 0; i < sh->nslots; i++) {
			uint8_t *e = slot_ent(sh->slots[i]);
			if (e && ent_size(ent_klen(e)) > SMALL_MAX)
				free(e);
		}
		free(sh->slots);
		pthread_mutex_destroy(&sh->lock);
	}
	for (slab *s = kd->slabs, *n; s; s = n) {
		n = s->next;
		free(s);
	}
	pthread_mutex_destroy(&kd->alloc_lock);
	free(kd);
}

bool keydir_get_pin(keydir *kd, const void *key, size_t key_len, kd_loc *loc,
		    keydir_pin_fn pin, void *ctx)
{
	uint64_t hash = siphash24(&kd->hkey, key, key_len);
	kd_shard *sh = &kd->shard[shard_of(hash)];
	pthread_mutex_lock(&sh->lock);
	size_t i = find(sh, key, key_len, hash);
	bool found = i != SIZE_MAX;
	if (found) {
		ent_loc(slot_ent(sh->slots[i]), loc);
		if (pin)
			pin(ctx, loc);
	}
	pthread_mutex_unlock(&sh->lock);
	return found;
}

bool keydir_get(keydir *kd, const void *key, size_t key_len, kd_loc *loc)
{
	return keydir_get_pin(kd, key, key_len, loc, NULL, NULL);
}

uint64_t keydir_hash(const keydir *kd, const void *key, size_t key_len)
{
	return siphash24(&kd->hkey, key, key_len);
}

void keydir_prefetch(keydir *kd, uint64_t hash)
{
	/* Unlocked reads: only a hint to the cache, and a stale table merely
	 * makes the prefetch useless.  The slot array outlives no reader of
	 * it here: callers prefetch only what they apply next, single-handed. */
	const kd_shard *sh = &kd->shard[shard_of(hash)];
	__builtin_prefetch(&sh->slots[home_in(sh->nbuckets, hash)]);
}

int keydir_put(keydir *kd, const void *key, size_t key_len, const kd_loc *loc,
	       kd_loc *old, bool *had_old)
{
	return keydir_put_h(kd, siphash24(&kd->hkey, key, key_len), key, key_len, loc, old, had_old);
}

int keydir_put_h(keydir *kd, uint64_t hash, const void *key, size_t key_len,
		 const kd_loc *loc, kd_loc *old, bool *had_old)
{
	assert(key_len <= UINT16_MAX);
	kd_shard *sh = &kd->shard[shard_of(hash)];
	int rc = 0;
	pthread_mutex_lock(&sh->lock);
	size_t i = find(sh, key, key_len, hash);
	if (i != SIZE_MAX) {
		uint8_t *e = slot_ent(sh->slots[i]);
		ent_loc(e, old);
		ent_set_loc(e, loc);
		*had_old = true;
		goto out;
	}
	*had_old = false;
	if ((sh->count + 1) * MAX_LOAD_DEN > sh->nbuckets * MAX_LOAD_NUM) {
		rc = resize(kd, sh, sh->nbuckets + sh->nbuckets / 2);
		if (rc)
			goto out;
	}
	pthread_mutex_lock(&kd->alloc_lock);
	uint8_t *e = ent_alloc_locked(kd, ent_size(key_len));
	pthread_mutex_unlock(&kd->alloc_lock);
	if (!e) {
		rc = -ENOMEM;
		goto out;
	}
	assert(((uintptr_t)e & ~PTR_MASK) == 0);
	ent_set_loc(e, loc);
	uint16_t kl = (uint16_t)key_len;
	memcpy(e + 12, &kl, 2);
	if (key_len)
		memcpy(e + ENT_HDR, key, key_len);
	uint64_t sv = ((uint64_t)(uint16_t)hash << PTR_BITS) | (uint64_t)(uintptr_t)e;
	while (!place(sh->slots, sh->nslots, home_in(sh->nbuckets, hash), sv)) {
		rc = resize(kd, sh, sh->nbuckets + sh->nbuckets / 2);
		if (rc) {
			pthread_mutex_lock(&kd->alloc_lock);
			ent_free_locked(kd, e);
			pthread_mutex_unlock(&kd->alloc_lock);
			goto out;
		}
	}
	sh->count++;
	atomic_fetch_add(&kd->count, 1);
out:
	pthread_mutex_unlock(&sh->lock);
	return rc;
}

bool keydir_cas(keydir *kd, const void *key, size_t key_len,
		const kd_loc *expect, const kd_loc *loc)
{
	uint64_t hash = siphash24(&kd->hkey, key, key_len);
	kd_shard *sh = &kd->shard[shard_of(hash)];
	bool swapped = false;
	pthread_mutex_lock(&sh->lock);
	size_t i = find(sh, key, key_len, hash);
	if (i != SIZE_MAX) {
		uint8_t *e = slot_ent(sh->slots[i]);
		kd_loc cur;
		ent_loc(e, &cur);
		if (cur.fileno == expect->fileno && cur.offset == expect->offset) {
			ent_set_loc(e, loc);
			swapped = true;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return swapped;
}

bool keydir_del(keydir *kd, const void *key, size_t key_len, kd_loc *old)
{
	return keydir_del_h(kd, siphash24(&kd->hkey, key, key_len), key, key_len, old);
}

bool keydir_del_h(keydir *kd, uint64_t hash, const void *key, size_t key_len, kd_loc *old)
{
	kd_shard *sh = &kd->shard[shard_of(hash)];
	pthread_mutex_lock(&sh->lock);
	size_t hole = find(sh, key, key_len, hash);
	if (hole == SIZE_MAX) {
		pthread_mutex_unlock(&sh->lock);
		return false;
	}
	uint8_t *e = slot_ent(sh->slots[hole]);
	ent_loc(e, old);
	pthread_mutex_lock(&kd->alloc_lock);
	ent_free_locked(kd, e);
	pthread_mutex_unlock(&kd->alloc_lock);
	sh->slots[hole] = 0;
	sh->count--;
	atomic_fetch_sub(&kd->count, 1);
	/* Backward-shift deletion: pull later members of the run into the hole
	 * when their home is at or before it, so no probe ever meets a gap
	 * between an entry's home and its slot. */
	for (size_t j = hole + 1; j < sh->nslots && sh->slots[j]; j++) {
		size_t h = home_in(sh->nbuckets, ent_hash(kd, slot_ent(sh->slots[j])));
		if (h <= hole) {
			sh->slots[hole] = sh->slots[j];
			sh->slots[j] = 0;
			hole = j;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	return true;
}

int keydir_reserve(keydir *kd, size_t n)
{
	/* Keys spread evenly over the shards; leave 10% for the unevenness, and
	 * size for 65% full rather than 85%: an insert into a fresh key probes
	 * (1 + 1/(1-a)^2)/2 slots, 5 at 65% against 23 at 85%, and open inserts
	 * millions.  Later growth returns to the usual range. */
	size_t per = n / NSHARDS + n / NSHARDS / 10 + 1;
	size_t need = per * 100 / 65 + 1;
	for (unsigned k = 0; k < NSHARDS; k++) {
		kd_shard *sh = &kd->shard[k];
		pthread_mutex_lock(&sh->lock);
		int rc = need > sh->nbuckets ? resize(kd, sh, need) : 0;
		pthread_mutex_unlock(&sh->lock);
		if (rc)
			return rc;
	}
	return 0;
}

size_t keydir_count(keydir *kd)
{
	return atomic_load(&kd->count);
}

size_t keydir_memory(keydir *kd)
{
	size_t slots = atomic_load(&kd->slots);

	pthread_mutex_lock(&kd->alloc_lock);
	size_t heap = kd->slab_bytes + kd->large_bytes;
	pthread_mutex_unlock(&kd->alloc_lock);
	return sizeof(*kd) + slots * sizeof(uint64_t) + heap;
}

void keydir_foreach(keydir *kd, keydir_visit_fn fn, void *ctx)
{
	for (unsigned k = 0; k < NSHARDS; k++) {
		kd_shard *sh = &kd->shard[k];
		bool go = true;
		pthread_mutex_lock(&sh->lock);
		for (size_t i = 0; i < sh->nslots && go; i++) {
			uint64_t s = sh->slots[i];
			if (!s)
				continue;
			const uint8_t *e = slot_ent(s);
			kd_loc loc;
			ent_loc(e, &loc);
			go = fn(ctx, e + ENT_HDR, ent_klen(e), &loc);
		}
		pthread_mutex_unlock(&sh->lock);
		if (!go)
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

typedef struct scan_state {
	kd_pos *pos;            /* last key emitted */
	size_t emitted, limit;
	scan_item *run;         /* one run of slots, sorted */
	size_t cap;
	bool stop;              /* the callback asked to stop */
	bool oom;
} scan_state;

/* Scan one shard from slot i on; returns true iff the limit was reached or
 * the callback stopped (the caller then stops too). */
static bool scan_shard(const keydir *kd, const kd_shard *sh, size_t i, scan_state *st,
		       keydir_visit_fn fn, void *ctx)
{
	kd_pos *pos = st->pos;
	while (st->emitted < st->limit) {
		while (i < sh->nslots && !sh->slots[i])
			i++;
		if (i >= sh->nslots)
			return false;
		/* Every entry whose home lies in this run lies in it too (the
		 * slot before the run is empty, or before our start). */
		size_t n = 0;
		for (; i < sh->nslots && sh->slots[i]; i++) {
			const uint8_t *e = slot_ent(sh->slots[i]);
			uint64_t h = ent_hash(kd, e);
			if (pos->started && cmp_hk(h, e + ENT_HDR, ent_klen(e),
						   pos->hash, pos->key, pos->key_len) <= 0)
				continue;
			if (n == st->cap) {
				size_t ncap = st->cap ? st->cap * 2 : 64;
				scan_item *nr = realloc(st->run, ncap * sizeof(*nr));
				if (!nr) {
					st->oom = true;
					return true;   /* resume later from pos; nothing lost */
				}
				st->run = nr;
				st->cap = ncap;
			}
			st->run[n].hash = h;
			st->run[n].ent = e;
			n++;
		}
		if (n > 1)
			qsort(st->run, n, sizeof(*st->run), cmp_item);
		for (size_t k = 0; k < n; k++) {
			const uint8_t *e = st->run[k].ent;
			kd_loc loc;
			ent_loc(e, &loc);
			pos->started = true;
			pos->hash = st->run[k].hash;
			pos->key_len = ent_klen(e);
			memcpy(pos->key, e + ENT_HDR, pos->key_len);
			st->emitted++;
			if (!fn(ctx, e + ENT_HDR, ent_klen(e), &loc)) {
				st->stop = true;
				return true;
			}
			if (st->emitted >= st->limit)
				return true;
		}
	}
	return true;
}

bool keydir_scan(keydir *kd, const kd_pos *from, size_t limit,
		 keydir_visit_fn fn, void *ctx, kd_pos *next)
{
	if (next != from)
		*next = *from;
	scan_state st = { .pos = next, .limit = limit };
	unsigned k0 = from->started ? shard_of(from->hash) : 0;
	bool more = false;
	for (unsigned k = k0; k < NSHARDS; k++) {
		kd_shard *sh = &kd->shard[k];
		pthread_mutex_lock(&sh->lock);
		size_t i = next->started && k == shard_of(next->hash) ? home_in(sh->nbuckets, next->hash) : 0;
		bool done = scan_shard(kd, sh, i, &st, fn, ctx);
		pthread_mutex_unlock(&sh->lock);
		if (done) {
			more = true;
			break;
		}
	}
	free(st.run);
	return more;
}

int keydir_check(keydir *kd, char *err, size_t errlen)
{
	size_t total = 0, slots = 0;
	int rc = 0;
	for (unsigned k = 0; k < NSHARDS && !rc; k++) {
		kd_shard *sh = &kd->shard[k];
		size_t n = 0;
		pthread_mutex_lock(&sh->lock);
		for (size_t i = 0; i < sh->nslots && !rc; i++) {
			uint64_t s = sh->slots[i];
			if (!s)
				continue;
			n++;
			const uint8_t *e = slot_ent(s);
			uint64_t h = ent_hash(kd, e);
			size_t home = home_in(sh->nbuckets, h);
			if (shard_of(h) != k) {
				snprintf(err, errlen, "keydir: shard %u slot %zu holds a key of shard %u", k, i, shard_of(h));
				rc = -1;
			} else if (slot_tag(s) != (uint16_t)h) {
				snprintf(err, errlen, "keydir: shard %u slot %zu tag does not match its key", k, i);
				rc = -1;
			} else if (home > i) {
				snprintf(err, errlen, "keydir: shard %u slot %zu holds an entry whose home %zu is after it", k, i, home);
				rc = -1;
			}
			for (size_t j = home; j < i && !rc; j++) {
				if (!sh->slots[j]) {
					snprintf(err, errlen, "keydir: shard %u: gap at %zu between home %zu and slot %zu", k, j, home, i);
					rc = -1;
				}
			}
		}
		if (!rc && n != sh->count) {
			snprintf(err, errlen, "keydir: shard %u: %zu entries found, count says %zu", k, n, sh->count);
			rc = -1;
		}
		total += n;
		slots += sh->nslots;
		pthread_mutex_unlock(&sh->lock);
	}
	if (!rc && total != atomic_load(&kd->count)) {
		snprintf(err, errlen, "keydir: %zu entries found, count says %zu", total, atomic_load(&kd->count));
		rc = -1;
	}
	if (!rc && slots != atomic_load(&kd->slots)) {
		snprintf(err, errlen, "keydir: the tables have %zu slots, the total says %zu", slots,
			 atomic_load(&kd->slots));
		rc = -1;
	}
	return rc;
}
