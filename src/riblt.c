/*
 * riblt.c -- rateless invertible Bloom lookup tables; see riblt.h.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "riblt.h"
#include "siphash.h"

_Static_assert(sizeof(riblt_item) == 16, "an item is 128 bits");
_Static_assert(sizeof(riblt_symbol) == 32, "a symbol is 32 bytes in memory");
_Static_assert(RIBLT_SYMBOL_FIXED_BYTES == 8 + 8 + 8, "keyhash, objhash, checksum");
_Static_assert(RIBLT_SYMBOL_MIN_BYTES == RIBLT_SYMBOL_FIXED_BYTES + 1, "count of 1 byte");
_Static_assert(RIBLT_SYMBOL_MAX_BYTES == RIBLT_SYMBOL_FIXED_BYTES + 10, "count of 10 bytes");
_Static_assert(sizeof(RIBLT_CHECKSUM_KEY) == 17, "a SipHash key is 16 bytes");

/* The longest varint: 64 bits at 7 a byte. */
#define VARINT_MAX 10
/* Indices stop below 2^63, so that index + gap never overflows. */
#define INDEX_LIMIT (UINT64_C(1) << 63)

static inline void store_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Grow *p (of *cap elements of size el) to hold at least need.  0 or
 * -ENOMEM (*p unchanged). */
static int grow(void **p, size_t *cap, size_t need, size_t el)
{
	size_t ncap = *cap ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2 / el)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / el)
		return -ENOMEM;
	np = realloc(*p, ncap * el);
	if (np == NULL)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

/* --- items and symbols ---------------------------------------------------- */

uint64_t riblt_item_checksum(const riblt_item *item)
{
	static const uint8_t k[16] = RIBLT_CHECKSUM_KEY;
	const siphash_key key = siphash_key_from_bytes(k);
	uint8_t b[16];

	store_le64(b, item->keyhash);
	store_le64(b + 8, item->objhash);
	return siphash24(&key, b, sizeof(b));
}

bool riblt_symbol_is_zero(const riblt_symbol *s)
{
	return (s->sum.keyhash | s->sum.objhash | s->check | (uint64_t)s->count) == 0;
}

/* Add (dir +1) or subtract (dir -1) an item from a symbol.  Counts wrap:
 * they come from peers, and signed overflow would be undefined. */
static inline void sym_apply(riblt_symbol *s, const riblt_item *it, uint64_t check, int64_t dir)
{
	s->sum.keyhash ^= it->keyhash;
	s->sum.objhash ^= it->objhash;
	s->check ^= check;
	s->count = (int64_t)((uint64_t)s->count + (uint64_t)dir);
}

void riblt_symbols_subtract(riblt_symbol *a, const riblt_symbol *b, size_t n)
{
	for (size_t j = 0; j < n; j++) {
		a[j].sum.keyhash ^= b[j].sum.keyhash;
		a[j].sum.objhash ^= b[j].sum.objhash;
		a[j].check ^= b[j].check;
		a[j].count = (int64_t)((uint64_t)a[j].count - (uint64_t)b[j].count);
	}
}

/* True iff s holds exactly one item (count +-1 and a checksum that is its
 * sum's), barring a 2^-64 coincidence. */
static bool sym_pure(const riblt_symbol *s)
{
	return (s->count == 1 || s->count == -1) && riblt_item_checksum(&s->sum) == s->check;
}

/* --- mapping -------------------------------------------------------------- */

void riblt_map_init(riblt_map *m, uint64_t check)
{
	m->prng = check;
	m->next = 0;
}

/* splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", 2014): any seed, including 0, gives a full-period stream. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void riblt_map_advance(riblt_map *m)
{
	double u, gap;

	if (m->next == RIBLT_INDEX_NONE)
		return;
	u = (double)((splitmix64(&m->prng) >> 11) + 1) * 0x1p-53;	/* (0, 1] */
	gap = ceil(((double)m->next + 1.5) * (1.0 / sqrt(u) - 1.0));
	if (gap < 1.0)
		gap = 1.0;
	if (gap >= 0x1p63 || (uint64_t)gap >= INDEX_LIMIT - m->next)
		m->next = RIBLT_INDEX_NONE;
	else
		m->next += (uint64_t)gap;
}

/* --- encoder -------------------------------------------------------------- */

/* An item and where its mapping stands. */
struct enc_item {
	riblt_item item;    /* the item */
	uint64_t check;     /* its checksum */
	riblt_map map;      /* map.next >= the encoder's produced */
};

struct riblt_encoder {
	struct enc_item *items;     /* owned; n in use */
	size_t n;                   /* items added */
	size_t cap;                 /* items allocated */
	uint64_t produced;          /* symbols produced: [0, produced) */
};

_Static_assert(sizeof(struct enc_item) == 40, "riblt.h: 40 bytes per encoder item");

int riblt_encoder_new(riblt_encoder **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void riblt_encoder_free(riblt_encoder *e)
{
	if (e == NULL)
		return;
	free(e->items);
	free(e);
}

int riblt_encoder_reserve(riblt_encoder *e, size_t n)
{
	void *p;

	if (n <= e->cap)
		return 0;
	if (n > SIZE_MAX / sizeof(struct enc_item))
		return -ENOMEM;
	p = realloc(e->items, n * sizeof(struct enc_item));
	if (p == NULL)
		return -ENOMEM;
	e->items = p;
	e->cap = n;
	return 0;
}

int riblt_encoder_add(riblt_encoder *e, const riblt_item *item)
{
	struct enc_item *ei;
	int rc;

	if (e->produced > 0)
		return DKV_EINVAL;
	rc = grow((void **)&e->items, &e->cap, e->n + 1, sizeof(*e->items));
	if (rc != 0)
		return rc;
	ei = &e->items[e->n++];
	ei->item = *item;
	ei->check = riblt_item_checksum(item);
	riblt_map_init(&ei->map, ei->check);
	return 0;
}

size_t riblt_encoder_items(const riblt_encoder *e)
{
	return e->n;
}

uint64_t riblt_encoder_produced(const riblt_encoder *e)
{
	return e->produced;
}

int riblt_encoder_produce(riblt_encoder *e, riblt_symbol *out, size_t n)
{
	uint64_t first = e->produced, end;

	if ((uint64_t)n > INDEX_LIMIT - first)
		return DKV_EINVAL;
	end = first + n;
	memset(out, 0, n * sizeof(*out));
	for (size_t i = 0; i < e->n; i++) {
		struct enc_item *ei = &e->items[i];

		while (ei->map.next < end) {
			sym_apply(&out[ei->map.next - first], &ei->item, ei->check, 1);
			riblt_map_advance(&ei->map);
		}
	}
	e->produced = end;
	return 0;
}

/* --- decoder -------------------------------------------------------------- */

/* A recovered item and where its mapping stands. */
struct dec_item {
	riblt_item item;    /* the item */
	uint64_t check;     /* its checksum */
	riblt_map map;      /* map.next >= the decoder's m */
	int64_t dir;        /* +1: only in A; -1: only in B */
};

struct riblt_decoder {
	riblt_symbol *sym;          /* owned; the difference symbols, peeled */
	size_t m;                   /* symbols added */
	size_t capsym;              /* symbols allocated */
	size_t nonzero;             /* symbols not all zero */

	struct dec_item *dec;       /* owned; every item recovered */
	size_t ndec;                /* items recovered */
	size_t capdec;              /* allocated */

	size_t *heap;               /* owned; indices into dec whose map.next is
				     * not RIBLT_INDEX_NONE, a min-heap by
				     * map.next */
	size_t nheap;               /* in the heap */
	size_t capheap;             /* allocated */

	size_t *queue;              /* owned; symbols that may be pure */
	size_t nq;                  /* in the queue */
	size_t capq;                /* allocated */

	riblt_item *a;              /* owned; items only in A, as recovered */
	size_t na;                  /* in a */
	size_t capa;                /* allocated */
	riblt_item *b;              /* owned; items only in B, as recovered */
	size_t nb;                  /* in b */
	size_t capb;                /* allocated */

	int failed;                 /* 0, or the error every call now returns */
};

int riblt_decoder_new(riblt_decoder **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

void riblt_decoder_free(riblt_decoder *d)
{
	if (d == NULL)
		return;
	free(d->sym);
	free(d->dec);
	free(d->heap);
	free(d->queue);
	free(d->a);
	free(d->b);
	free(d);
}

static inline uint64_t heap_key(const riblt_decoder *d, size_t h)
{
	return d->dec[d->heap[h]].map.next;
}

static void heap_swap(riblt_decoder *d, size_t x, size_t y)
{
	size_t t = d->heap[x];

	d->heap[x] = d->heap[y];
	d->heap[y] = t;
}

static void heap_down(riblt_decoder *d, size_t h)
{
	for (;;) {
		size_t l = 2 * h + 1, r = l + 1, min = h;

		if (l < d->nheap && heap_key(d, l) < heap_key(d, min))
			min = l;
		if (r < d->nheap && heap_key(d, r) < heap_key(d, min))
			min = r;
		if (min == h)
			return;
		heap_swap(d, h, min);
		h = min;
	}
}

/* Room is reserved by the caller. */
static void heap_push(riblt_decoder *d, size_t idx)
{
	size_t h = d->nheap++;

	d->heap[h] = idx;
	while (h > 0 && heap_key(d, (h - 1) / 2) > heap_key(d, h)) {
		heap_swap(d, h, (h - 1) / 2);
		h = (h - 1) / 2;
	}
}

static int queue_push(riblt_decoder *d, size_t j)
{
	int rc = grow((void **)&d->queue, &d->capq, d->nq + 1, sizeof(*d->queue));

	if (rc == 0)
		d->queue[d->nq++] = j;
	return rc;
}

/* Remove a recovered item from symbol j, keeping the count of nonzero
 * symbols. */
static void dec_apply(riblt_decoder *d, size_t j, const struct dec_item *di)
{
	riblt_symbol *s = &d->sym[j];
	bool was = !riblt_symbol_is_zero(s);

	sym_apply(s, &di->item, di->check, -di->dir);
	d->nonzero += !riblt_symbol_is_zero(s);
	d->nonzero -= was;
}

/* Recover the item of pure symbol j and peel it from every symbol it maps
 * to, queueing those that become pure.  0, -ENOMEM or DKV_ECORRUPT. */
static int peel_one(riblt_decoder *d, size_t j)
{
	const riblt_symbol *s = &d->sym[j];
	struct dec_item *di;
	riblt_item **list = s->count == 1 ? &d->a : &d->b;
	size_t *nlist = s->count == 1 ? &d->na : &d->nb;
	size_t *caplist = s->count == 1 ? &d->capa : &d->capb;
	bool hit = false;
	int rc;

	if (d->ndec >= d->m)
		return DKV_ECORRUPT;    /* more items than symbols: see riblt.h */
	if ((rc = grow((void **)&d->dec, &d->capdec, d->ndec + 1, sizeof(*d->dec))) != 0 ||
	    (rc = grow((void **)&d->heap, &d->capheap, d->ndec + 1, sizeof(*d->heap))) != 0 ||
	    (rc = grow((void **)list, caplist, *nlist + 1, sizeof(**list))) != 0)
		return rc;
	di = &d->dec[d->ndec];
	di->item = s->sum;
	di->check = s->check;
	di->dir = s->count;
	(*list)[(*nlist)++] = s->sum;
	for (riblt_map_init(&di->map, di->check); di->map.next < d->m; riblt_map_advance(&di->map)) {
		size_t k = (size_t)di->map.next;

		hit |= k == j;
		dec_apply(d, k, di);
		if (sym_pure(&d->sym[k]) && (rc = queue_push(d, k)) != 0)
			return rc;
	}
	if (!hit)
		return DKV_ECORRUPT;    /* pure with an item that does not map here */
	if (di->map.next != RIBLT_INDEX_NONE)
		heap_push(d, d->ndec);
	d->ndec++;
	return 0;
}

int riblt_decoder_add(riblt_decoder *d, const riblt_symbol *diff, size_t n)
{
	size_t old = d->m;
	int rc;

	if (d->failed)
		return d->failed;
	if (n > SIZE_MAX - old || (uint64_t)(old + n) > INDEX_LIMIT)
		return DKV_EINVAL;
	rc = grow((void **)&d->sym, &d->capsym, old + n, sizeof(*d->sym));
	if (rc != 0)
		goto out_fail;
	memcpy(d->sym + old, diff, n * sizeof(*diff));
	for (size_t j = old; j < old + n; j++)
		d->nonzero += !riblt_symbol_is_zero(&d->sym[j]);
	d->m = old + n;

	/* Take the items recovered so far out of the new symbols. */
	while (d->nheap > 0 && heap_key(d, 0) < d->m) {
		struct dec_item *di = &d->dec[d->heap[0]];

		dec_apply(d, (size_t)di->map.next, di);
		riblt_map_advance(&di->map);
		if (di->map.next == RIBLT_INDEX_NONE)
			d->heap[0] = d->heap[--d->nheap];
		heap_down(d, 0);
	}
	for (size_t j = old; j < d->m; j++)
		if (sym_pure(&d->sym[j]) && (rc = queue_push(d, j)) != 0)
			goto out_fail;

	while (d->nq > 0) {
		size_t j = d->queue[--d->nq];

		if (sym_pure(&d->sym[j]) && (rc = peel_one(d, j)) != 0)
			goto out_fail;
	}
	return 0;

out_fail:
	d->failed = rc;
	return rc;
}

bool riblt_decoder_done(const riblt_decoder *d)
{
	return d->failed == 0 && d->m > 0 && d->nonzero == 0;
}

uint64_t riblt_decoder_symbols(const riblt_decoder *d)
{
	return d->m;
}

const riblt_item *riblt_decoder_only_a(const riblt_decoder *d, size_t *n)
{
	*n = d->na;
	return d->a;
}

const riblt_item *riblt_decoder_only_b(const riblt_decoder *d, size_t *n)
{
	*n = d->nb;
	return d->b;
}

/* --- the wire ------------------------------------------------------------- */

static inline uint64_t zigzag(int64_t c)
{
	return ((uint64_t)c << 1) ^ (uint64_t)(c >> 63);
}

static inline int64_t unzigzag(uint64_t z)
{
	return (int64_t)((z >> 1) ^ (0 - (z & 1)));
}

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Read a varint from [*p, end) in its shortest form.  0 or DKV_EPROTO. */
static int varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t v = 0;

	for (int i = 0; i < VARINT_MAX; i++) {
		uint8_t b;

		if (q == end)
			return DKV_EPROTO;                      /* truncated */
		b = *q++;
		if (i == VARINT_MAX - 1 && b > 1)
			return DKV_EPROTO;                      /* past 64 bits */
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			if (b == 0 && i > 0)
				return DKV_EPROTO;              /* not the shortest form */
			*out = v;
			*p = q;
			return 0;
		}
	}
	return DKV_EPROTO;                                      /* too long */
}

size_t riblt_run_size(uint64_t first, const riblt_symbol *syms, size_t n)
{
	size_t len = 1 + varint_size(first) + varint_size(n);

	for (size_t j = 0; j < n; j++)
		len += RIBLT_SYMBOL_FIXED_BYTES + varint_size(zigzag(syms[j].count));
	return len;
}

size_t riblt_run_encode(uint8_t *buf, uint64_t first, const riblt_symbol *syms, size_t n)
{
	uint8_t *p = buf;

	*p++ = RIBLT_RUN_VERSION;
	p = varint_put(p, first);
	p = varint_put(p, n);
	for (size_t j = 0; j < n; j++) {
		store_le64(p, syms[j].sum.keyhash);
		store_le64(p + 8, syms[j].sum.objhash);
		store_le64(p + 16, syms[j].check);
		p = varint_put(p + RIBLT_SYMBOL_FIXED_BYTES, zigzag(syms[j].count));
	}
	return (size_t)(p - buf);
}

int riblt_run_decode(const void *buf, size_t len, size_t max, uint64_t *first,
		     riblt_symbol **out, size_t *n)
{
	const uint8_t *p = buf, *end = p + len;
	riblt_symbol *syms = NULL;
	uint64_t f, cnt, z;
	int rc;

	*out = NULL;
	*n = 0;
	if (len == 0)
		return DKV_EPROTO;
	if (*p++ != RIBLT_RUN_VERSION)
		return DKV_EVERSION;
	if ((rc = varint_get(&p, end, &f)) != 0 || (rc = varint_get(&p, end, &cnt)) != 0)
		return rc;
	if (cnt > max)
		return DKV_ETOOBIG;
	/* Every symbol takes at least 25 bytes: refuse a count the bytes left
	 * cannot hold before allocating for it. */
	if (cnt > (uint64_t)(end - p) / RIBLT_SYMBOL_MIN_BYTES)
		return DKV_EPROTO;
	if (f > INDEX_LIMIT || cnt > INDEX_LIMIT - f)
		return DKV_EPROTO;
	if (cnt > 0) {
		syms = malloc((size_t)cnt * sizeof(*syms));
		if (syms == NULL)
			return -ENOMEM;
	}
	for (size_t j = 0; j < cnt; j++) {
		if ((size_t)(end - p) < RIBLT_SYMBOL_FIXED_BYTES) {
			rc = DKV_EPROTO;
			goto out_free;
		}
		syms[j].sum.keyhash = load_le64(p);
		syms[j].sum.objhash = load_le64(p + 8);
		syms[j].check = load_le64(p + 16);
		p += RIBLT_SYMBOL_FIXED_BYTES;
		if ((rc = varint_get(&p, end, &z)) != 0)
			goto out_free;
		syms[j].count = unzigzag(z);
	}
	if (p != end) {
		rc = DKV_EPROTO;                                /* trailing bytes */
		goto out_free;
	}
	*first = f;
	*out = syms;
	*n = (size_t)cnt;
	return 0;

out_free:
	free(syms);
	return rc;
}
