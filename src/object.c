#include "config.h"
/*
 * object.c -- dotted version vector sets: operations and the encodings
 * (version 1, and version 2 for objects with an expiring sibling)
 * described in object.h.
 *
 * Every mutation builds its new arrays first and swaps them in only when
 * nothing can fail any more, so a failed call leaves the object as it was.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "mpr.h"
#include "object.h"

void object_limits_init(object_limits *lim)
{
	lim->max_entries = OBJECT_DEFAULT_MAX_ENTRIES;
	lim->max_siblings = OBJECT_DEFAULT_MAX_SIBLINGS;
	lim->max_value = OBJECT_DEFAULT_MAX_VALUE;
}

/* --- version vectors ------------------------------------------------------ */

void object_vv_release(object_vv *vv)
{
	free(vv->entries);
	vv->entries = NULL;
	vv->n = 0;
	vv->cap = 0;
}

int object_vv_copy(object_vv *dst, const object_vv *src)
{
	object_vv_entry *e = NULL;

	if (src->n > 0) {
		e = malloc(src->n * sizeof(*e));
		if (e == NULL)
			return -ENOMEM;
		memcpy(e, src->entries, src->n * sizeof(*e));
	}
	free(dst->entries);
	dst->entries = e;
	dst->n = src->n;
	dst->cap = src->n;
	return 0;
}

/* Index of actor in vv, or of where it would go (then *found is false). */
static size_t vv_find(const object_vv *vv, uint64_t actor, bool *found)
{
	size_t lo = 0, hi = vv->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (vv->entries[mid].actor < actor)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < vv->n && vv->entries[lo].actor == actor;
	return lo;
}

uint64_t object_vv_get(const object_vv *vv, uint64_t actor)
{
	bool found;
	size_t i;

	if (vv == NULL)
		return 0;
	i = vv_find(vv, actor, &found);
	return found ? vv->entries[i].counter : 0;
}

bool object_vv_covers(const object_vv *vv, uint64_t actor, uint64_t counter)
{
	return object_vv_get(vv, actor) >= counter;
}

int object_vv_set(object_vv *vv, uint64_t actor, uint64_t counter, uint64_t timestamp)
{
	bool found;
	size_t i = vv_find(vv, actor, &found);

	if (counter == 0) {
		if (found) {
			memmove(&vv->entries[i], &vv->entries[i + 1],
				(vv->n - i - 1) * sizeof(vv->entries[0]));
			vv->n--;
		}
		return 0;
	}
	if (!found) {
		if (vv->n == vv->cap) {
			size_t ncap = vv->cap ? vv->cap * 2 : 4;
			object_vv_entry *e = realloc(vv->entries, ncap * sizeof(*e));

			if (e == NULL)
				return -ENOMEM;
			vv->entries = e;
			vv->cap = ncap;
		}
		memmove(&vv->entries[i + 1], &vv->entries[i],
			(vv->n - i) * sizeof(vv->entries[0]));
		vv->n++;
		vv->entries[i].actor = actor;
	}
	vv->entries[i].counter = counter;
	vv->entries[i].timestamp = timestamp;
	return 0;
}

/* The greater of two entries of one actor: by counter, then timestamp. */
static const object_vv_entry *entry_max(const object_vv_entry *x, const object_vv_entry *y)
{
	if (x->counter != y->counter)
		return x->counter > y->counter ? x : y;
	return x->timestamp >= y->timestamp ? x : y;
}

/* *out = a new array holding max(a, b); *outn its length.  NULL b: empty. */
static int vv_merged(const object_vv *a, const object_vv *b,
		     object_vv_entry **out, size_t *outn)
{
	size_t nb = b ? b->n : 0;
	size_t i = 0, j = 0, k = 0;
	object_vv_entry *e;

	*out = NULL;
	*outn = 0;
	if (a->n + nb == 0)
		return 0;
	e = malloc((a->n + nb) * sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	while (i < a->n || j < nb) {
		if (j == nb || (i < a->n && a->entries[i].actor < b->entries[j].actor))
			e[k++] = a->entries[i++];
		else if (i == a->n || b->entries[j].actor < a->entries[i].actor)
			e[k++] = b->entries[j++];
		else
			e[k++] = *entry_max(&a->entries[i++], &b->entries[j++]);
	}
	*out = e;
	*outn = k;
	return 0;
}

int object_vv_merge(object_vv *dst, const object_vv *src)
{
	object_vv_entry *e;
	size_t n;
	int rc = vv_merged(dst, src, &e, &n);

	if (rc != 0)
		return rc;
	free(dst->entries);
	dst->entries = e;
	dst->n = n;
	dst->cap = n;
	return 0;
}

/* --- objects -------------------------------------------------------------- */

object *object_new(void)
{
	return calloc(1, sizeof(object));
}

static void sibs_free(object_sibling *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].value);
	free(s);
}

void object_release(object *obj)
{
	sibs_free(obj->sibs, obj->nsibs);
	object_vv_release(&obj->vv);
	obj->sibs = NULL;
	obj->nsibs = 0;
	obj->capsibs = 0;
}

void object_free(object *obj)
{
	if (obj == NULL)
		return;
	object_release(obj);
	free(obj);
}

/* *dst = a deep copy of *src (its own value bytes).  0 or -ENOMEM. */
static int sib_copy(object_sibling *dst, const object_sibling *src)
{
	*dst = *src;
	dst->value = NULL;
	if (src->value_len > 0) {
		dst->value = malloc(src->value_len);
		if (dst->value == NULL)
			return -ENOMEM;
		memcpy(dst->value, src->value, src->value_len);
	}
	return 0;
}

int object_clone(const object *src, object **out)
{
	object *o = object_new();
	int rc = -ENOMEM;

	*out = NULL;
	if (o == NULL)
		return -ENOMEM;
	if (object_vv_copy(&o->vv, &src->vv) != 0)
		goto out_free;
	if (src->nsibs > 0) {
		o->sibs = calloc(src->nsibs, sizeof(*o->sibs));
		if (o->sibs == NULL)
			goto out_free;
		o->capsibs = src->nsibs;
		for (size_t i = 0; i < src->nsibs; i++) {
			if (sib_copy(&o->sibs[i], &src->sibs[i]) != 0)
				goto out_free;
			o->nsibs++;
		}
	}
	*out = o;
	return 0;

out_free:
	object_free(o);
	return rc;
}

size_t object_sibling_count(const object *obj)
{
	return obj->nsibs;
}

const object_sibling *object_sibling_at(const object *obj, size_t i)
{
	return i < obj->nsibs ? &obj->sibs[i] : NULL;
}

const object_vv *object_vector(const object *obj)
{
	return &obj->vv;
}

bool object_is_empty(const object *obj)
{
	return obj->nsibs == 0 && obj->vv.n == 0;
}

uint64_t object_newest(const object *obj)
{
	uint64_t t = 0;

	for (size_t i = 0; i < obj->nsibs; i++)
		if (obj->sibs[i].timestamp > t)
			t = obj->sibs[i].timestamp;
	return t;
}

bool object_is_deleted(const object *obj)
{
	for (size_t i = 0; i < obj->nsibs; i++)
		if (!obj->sibs[i].tombstone)
			return false;
	return true;
}

bool object_sibling_expired(const object_sibling *s, uint64_t now)
{
	return s->expires != 0 && s->expires <= now;
}

uint64_t object_deleted_time(const object *obj)
{
	uint64_t t = 0;

	for (size_t i = 0; i < obj->nsibs; i++) {
		const object_sibling *s = &obj->sibs[i];
		uint64_t d = s->tombstone ? s->timestamp : s->expires;

		if (!s->tombstone && s->expires == 0)
			return 0;   /* a value that time never deletes */
		if (d > t)
			t = d;
	}
	return t;
}

/* True iff some sibling has an expiry: the object encodes as version 2. */
static bool has_expiry(const object *obj)
{
	for (size_t i = 0; i < obj->nsibs; i++)
		if (obj->sibs[i].expires != 0)
			return true;
	return false;
}

/* Order of dots: by actor, then counter. */
static int dot_cmp(const object_sibling *x, const object_sibling *y)
{
	if (x->actor != y->actor)
		return x->actor < y->actor ? -1 : 1;
	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return 0;
}

/* Every write (put, delete, with or without an expiry) comes here. */
int object_write_expiring(object *obj, uint64_t actor, uint64_t floor, const object_vv *ctx,
			  bool tombstone, const void *value, size_t len, uint64_t timestamp,
			  uint64_t expires, uint64_t *dot)
{
	uint64_t c = object_vv_get(&obj->vv, actor);
	uint64_t cc = object_vv_get(ctx, actor);
	object_vv nvv = { 0 };
	size_t keep = 0, k = 0;
	object_sibling *ns, nsib;
	bool found, placed = false;
	int rc;

	if (tombstone && expires != 0)
		return DKV_EINVAL;   /* a tombstone is deleted already */
	if (cc > c)
		c = cc;
	if (c == UINT64_MAX)
		return DKV_EINVAL;
	c++;
	if (floor > c)
		c = floor;
	if (dot != NULL)
		*dot = c;

	nsib.actor = actor;
	nsib.counter = c;
	nsib.timestamp = timestamp;
	nsib.expires = expires;
	nsib.tombstone = tombstone;
	nsib.value = NULL;
	nsib.value_len = tombstone ? 0 : len;
	if (nsib.value_len > 0) {
		nsib.value = malloc(len);
		if (nsib.value == NULL)
			return -ENOMEM;
		memcpy(nsib.value, value, len);
	}

	/* The new vector: max(vv, ctx) with actor's entry set to (c, now),
	 * grown by one slot first if actor is in neither. */
	for (size_t i = 0; i < obj->nsibs; i++)
		if (!object_vv_covers(ctx, obj->sibs[i].actor, obj->sibs[i].counter))
			keep++;
	rc = vv_merged(&obj->vv, ctx, &nvv.entries, &nvv.n);
	if (rc != 0)
		goto out_free_value;
	nvv.cap = nvv.n;
	vv_find(&nvv, actor, &found);
	if (!found) {
		object_vv_entry *g = realloc(nvv.entries, (nvv.n + 1) * sizeof(*g));

		if (g == NULL) {
			rc = -ENOMEM;
			goto out_free_vv;
		}
		nvv.entries = g;
		nvv.cap = nvv.n + 1;
	}
	(void)object_vv_set(&nvv, actor, c, timestamp);  /* room made above */

	ns = malloc((keep + 1) * sizeof(*ns));
	if (ns == NULL) {
		rc = -ENOMEM;
		goto out_free_vv;
	}
	/* Nothing can fail from here on. */
	for (size_t i = 0; i < obj->nsibs; i++) {
		object_sibling *s = &obj->sibs[i];

		if (object_vv_covers(ctx, s->actor, s->counter)) {
			free(s->value);
			continue;
		}
		if (!placed && dot_cmp(&nsib, s) < 0) {
			ns[k++] = nsib;
			placed = true;
		}
		ns[k++] = *s;
	}
	if (!placed)
		ns[k++] = nsib;
	free(obj->sibs);
	obj->sibs = ns;
	obj->nsibs = k;
	obj->capsibs = keep + 1;
	free(obj->vv.entries);
	obj->vv = nvv;
	return 0;

out_free_vv:
	free(nvv.entries);
out_free_value:
	free(nsib.value);
	return rc;
}

int object_put(object *obj, uint64_t actor, const object_vv *ctx,
	       const void *value, size_t len, uint64_t timestamp)
{
	return object_write_expiring(obj, actor, 0, ctx, false, value, len, timestamp, 0, NULL);
}

int object_delete(object *obj, uint64_t actor, const object_vv *ctx, uint64_t timestamp)
{
	return object_write_expiring(obj, actor, 0, ctx, true, NULL, 0, timestamp, 0, NULL);
}

int object_write_at(object *obj, uint64_t actor, uint64_t floor, const object_vv *ctx,
		    bool tombstone, const void *value, size_t len, uint64_t timestamp,
		    uint64_t *dot)
{
	return object_write_expiring(obj, actor, floor, ctx, tombstone, value, len, timestamp,
				     0, dot);
}

/* Order of two siblings with the same dot (only forged input has such
 * pairs): by tombstone, timestamp, expires, then value bytes; > 0 iff x
 * wins.  0 only for equal contents: a total order, so merge keeps its
 * laws whichever side holds which. */
static int sib_content_cmp(const object_sibling *x, const object_sibling *y)
{
	size_t m;
	int c;

	if (x->tombstone != y->tombstone)
		return x->tombstone ? 1 : -1;
	if (x->timestamp != y->timestamp)
		return x->timestamp > y->timestamp ? 1 : -1;
	if (x->expires != y->expires)
		return x->expires > y->expires ? 1 : -1;
	m = x->value_len < y->value_len ? x->value_len : y->value_len;
	c = m ? memcmp(x->value, y->value, m) : 0;
	if (c != 0)
		return c;
	if (x->value_len != y->value_len)
		return x->value_len > y->value_len ? 1 : -1;
	return 0;
}

int object_merge(object *dst, const object *src)
{
	object_sibling *ns = NULL;
	object_vv_entry *ve;
	size_t vn, i = 0, j = 0, k = 0;
	/* kept[i]: true iff dst's sibling i moved into ns as it is. */
	bool *kept = NULL;
	/* copied[k]: true iff ns[k] is a copy made here (of a src sibling). */
	bool *copied = NULL;
	int rc;

	if (dst == src)
		return 0;  /* merge(x, x) = x */
	rc = vv_merged(&dst->vv, &src->vv, &ve, &vn);
	if (rc != 0)
		return rc;
	if (dst->nsibs + src->nsibs > 0) {
		ns = calloc(dst->nsibs + src->nsibs, sizeof(*ns));
		kept = calloc(dst->nsibs + 1, sizeof(*kept));
		copied = calloc(dst->nsibs + src->nsibs, sizeof(*copied));
		if (ns == NULL || kept == NULL || copied == NULL) {
			rc = -ENOMEM;
			goto out_free;
		}
	}
	/* Walk both sorted lists.  A sibling on one side only survives iff the
	 * other side's vector does not cover it; on both sides it survives. */
	while (i < dst->nsibs || j < src->nsibs) {
		const object_sibling *a = i < dst->nsibs ? &dst->sibs[i] : NULL;
		const object_sibling *b = j < src->nsibs ? &src->sibs[j] : NULL;
		int c = a == NULL ? 1 : b == NULL ? -1 : dot_cmp(a, b);

		if (c <= 0 && (c < 0 || sib_content_cmp(b, a) <= 0)) {
			/* a alone, or both with a's content winning */
			if (c == 0 || !object_vv_covers(&src->vv, a->actor, a->counter)) {
				ns[k++] = *a;
				kept[i] = true;
			}
		} else if (c > 0 ? !object_vv_covers(&dst->vv, b->actor, b->counter) : true) {
			/* b alone and not covered by dst, or both with b's
			 * content winning */
			rc = sib_copy(&ns[k], b);
			if (rc != 0)
				goto out_free;
			copied[k++] = true;
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	/* Nothing can fail from here on. */
	for (size_t x = 0; x < dst->nsibs; x++)
		if (!kept[x])
			free(dst->sibs[x].value);
	free(kept);
	free(copied);
	free(dst->sibs);
	dst->sibs = ns;
	dst->nsibs = k;
	dst->capsibs = k;
	free(dst->vv.entries);
	dst->vv.entries = ve;
	dst->vv.n = vn;
	dst->vv.cap = vn;
	return 0;

out_free:
	for (size_t x = 0; x < k; x++)
		if (copied[x])
			free(ns[x].value);
	free(copied);
	free(kept);
	free(ns);
	free(ve);
	return rc;
}

/* True iff some sibling's dot is of actor. */
static bool has_sibling_of(const object *obj, uint64_t actor)
{
	for (size_t i = 0; i < obj->nsibs; i++)
		if (obj->sibs[i].actor == actor)
			return true;
	return false;
}

size_t object_prune(object *obj, size_t vclock_max, uint64_t self)
{
	size_t dropped = 0;

	/* Vectors are small (N + a few), so picking the oldest candidate
	 * again for each entry dropped costs nothing worth a sort. */
	while (obj->vv.n > vclock_max) {
		size_t victim = obj->vv.n;

		for (size_t i = 0; i < obj->vv.n; i++) {
			const object_vv_entry *e = &obj->vv.entries[i];

			if (e->actor == self || has_sibling_of(obj, e->actor))
				continue;
			/* Oldest first; entries are sorted by actor, so ties
			 * go to the smaller actor. */
			if (victim == obj->vv.n ||
			    e->timestamp < obj->vv.entries[victim].timestamp)
				victim = i;
		}
		if (victim == obj->vv.n)
			break;  /* every remaining entry is spared */
		memmove(&obj->vv.entries[victim], &obj->vv.entries[victim + 1],
			(obj->vv.n - victim - 1) * sizeof(obj->vv.entries[0]));
		obj->vv.n--;
		dropped++;
	}
	return dropped;
}

int object_check(const object *obj, char *err, size_t errlen)
{
	for (size_t i = 0; i < obj->vv.n; i++) {
		const object_vv_entry *e = &obj->vv.entries[i];

		if (e->counter == 0) {
			snprintf(err, errlen, "vector entry %zu has counter 0", i);
			return -1;
		}
		if (i > 0 && obj->vv.entries[i - 1].actor >= e->actor) {
			snprintf(err, errlen, "vector entry %zu out of order", i);
			return -1;
		}
	}
	if (obj->vv.n > obj->vv.cap || obj->nsibs > obj->capsibs) {
		snprintf(err, errlen, "count above capacity");
		return -1;
	}
	for (size_t i = 0; i < obj->nsibs; i++) {
		const object_sibling *s = &obj->sibs[i];

		if (s->counter == 0) {
			snprintf(err, errlen, "sibling %zu has counter 0", i);
			return -1;
		}
		if (i > 0 && dot_cmp(&obj->sibs[i - 1], s) >= 0) {
			snprintf(err, errlen, "sibling %zu out of order", i);
			return -1;
		}
		if (!object_vv_covers(&obj->vv, s->actor, s->counter)) {
			snprintf(err, errlen, "sibling %zu dot (%llu,%llu) beyond the vector",
				 i, (unsigned long long)s->actor, (unsigned long long)s->counter);
			return -1;
		}
		if (s->tombstone && (s->value != NULL || s->value_len != 0)) {
			snprintf(err, errlen, "tombstone %zu has a value", i);
			return -1;
		}
		if (s->tombstone && s->expires != 0) {
			snprintf(err, errlen, "tombstone %zu has an expiry", i);
			return -1;
		}
		if (s->value_len > 0 && s->value == NULL) {
			snprintf(err, errlen, "sibling %zu has a length but no bytes", i);
			return -1;
		}
	}
	return 0;
}

/* --- encoding ------------------------------------------------------------- */

/* msgpack_pack_* return 0 or -1; the only failure of an sbuffer is ENOMEM. */
#define PK(call) do { if ((call) != 0) return -ENOMEM; } while (0)

static int pack_vv(msgpack_packer *pk, const object_vv *vv)
{
	PK(msgpack_pack_array(pk, vv->n));
	for (size_t i = 0; i < vv->n; i++) {
		PK(msgpack_pack_array(pk, 3));
		PK(msgpack_pack_uint64(pk, vv->entries[i].actor));
		PK(msgpack_pack_uint64(pk, vv->entries[i].counter));
		PK(msgpack_pack_uint64(pk, vv->entries[i].timestamp));
	}
	return 0;
}

/* Elements of a sibling's array in an object of format `version`. */
static uint64_t sib_elems(uint64_t version)
{
	return version == OBJECT_FORMAT_VERSION_EXPIRY ? 5 : 4;
}

/* [actor, counter, timestamp, value] and, in version 2, expires. */
static int pack_sibling(msgpack_packer *pk, const object_sibling *s, uint64_t version)
{
	PK(msgpack_pack_array(pk, sib_elems(version)));
	PK(msgpack_pack_uint64(pk, s->actor));
	PK(msgpack_pack_uint64(pk, s->counter));
	PK(msgpack_pack_uint64(pk, s->timestamp));
	if (s->tombstone) {
		PK(msgpack_pack_nil(pk));
	} else {
		PK(msgpack_pack_bin(pk, s->value_len));
		PK(msgpack_pack_bin_body(pk, s->value, s->value_len));
	}
	if (version == OBJECT_FORMAT_VERSION_EXPIRY)
		PK(msgpack_pack_uint64(pk, s->expires));
	return 0;
}

/* Appends to sbuf; on failure cut sbuf back to where it was.  The version
 * follows from the content (2 iff a sibling expires), so the encoding
 * stays canonical. */
int object_encode(const object *obj, msgpack_sbuffer *sbuf)
{
	uint64_t version = has_expiry(obj) ? OBJECT_FORMAT_VERSION_EXPIRY : OBJECT_FORMAT_VERSION;
	size_t start = sbuf->size;
	msgpack_packer pk;
	int rc;

	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	rc = msgpack_pack_array(&pk, 3) != 0 ? -ENOMEM : 0;
	if (rc == 0)
		rc = msgpack_pack_uint64(&pk, version) != 0 ? -ENOMEM : 0;
	if (rc == 0)
		rc = pack_vv(&pk, &obj->vv);
	if (rc == 0)
		rc = msgpack_pack_array(&pk, obj->nsibs) != 0 ? -ENOMEM : 0;
	for (size_t i = 0; rc == 0 && i < obj->nsibs; i++)
		rc = pack_sibling(&pk, &obj->sibs[i], version);
	if (rc != 0)
		sbuf->size = start;
	return rc;
}

int object_context_encode(const object *obj, msgpack_sbuffer *sbuf)
{
	size_t start = sbuf->size;
	msgpack_packer pk;
	int rc;

	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	rc = msgpack_pack_array(&pk, 2) != 0 ? -ENOMEM : 0;
	if (rc == 0)
		rc = msgpack_pack_uint8(&pk, OBJECT_FORMAT_VERSION) != 0 ? -ENOMEM : 0;
	if (rc == 0)
		rc = pack_vv(&pk, &obj->vv);
	if (rc != 0)
		sbuf->size = start;
	return rc;
}

/* --- decoding ------------------------------------------------------------- */

/* The smallest encodings: [a, c, t] is 4 bytes; a sibling is one byte
 * per element (nil for the value) and one for its array header: [a, c, t,
 * nil] 5 bytes, [a, c, t, nil, e] 6. */
#define MIN_ENTRY_BYTES 4u

/* Read `[ version, ...` with 1 <= version <= max_version (else
 * DKV_EVERSION); *n gets the outer length. */
static int rd_header(mpr *r, uint64_t max_version, uint64_t *n, uint64_t *version)
{
	int rc;

	rc = mpr_array(r, n);
	if (rc != 0)
		return rc;
	if (*n < 1)
		return r->bad;
	rc = mpr_uint(r, version);
	if (rc != 0)
		return rc;
	if (*version < OBJECT_FORMAT_VERSION || *version > max_version)
		return DKV_EVERSION;
	return 0;
}

/* Read a vector into *vv (empty on entry). */
static int rd_vv(mpr *r, size_t max_entries, object_vv *vv)
{
	uint64_t n, m;
	int rc;

	rc = mpr_array(r, &n);
	if (rc != 0)
		return rc;
	if (n > mpr_left(r) / MIN_ENTRY_BYTES)
		return r->bad;
	if (n > max_entries)
		return DKV_ETOOBIG;
	if (n == 0)
		return 0;
	vv->entries = malloc((size_t)n * sizeof(*vv->entries));
	if (vv->entries == NULL)
		return -ENOMEM;
	vv->cap = (size_t)n;
	for (uint64_t i = 0; i < n; i++) {
		object_vv_entry *e = &vv->entries[i];

		if ((rc = mpr_array(r, &m)) != 0)
			return rc;
		if (m != 3)
			return r->bad;
		if ((rc = mpr_uint(r, &e->actor)) != 0 ||
		    (rc = mpr_uint(r, &e->counter)) != 0 ||
		    (rc = mpr_uint(r, &e->timestamp)) != 0)
			return rc;
		if (e->counter == 0)
			return r->bad;
		if (i > 0 && vv->entries[i - 1].actor >= e->actor)
			return r->bad;   /* unsorted or duplicate actor */
		vv->n++;
	}
	return 0;
}

/* Read one sibling of an object of format `version` into *s (dot,
 * timestamp, tombstone, expires); its value bytes are left in the input,
 * *val borrowing them.  Only the shape is checked here. */
static int rd_sibling(mpr *r, uint64_t version, size_t max_value, object_sibling *s,
		      const uint8_t **val, size_t *len)
{
	uint64_t m;
	int rc;

	s->expires = 0;
	if ((rc = mpr_array(r, &m)) != 0)
		return rc;
	if (m != sib_elems(version))
		return r->bad;
	if ((rc = mpr_uint(r, &s->actor)) != 0 ||
	    (rc = mpr_uint(r, &s->counter)) != 0 ||
	    (rc = mpr_uint(r, &s->timestamp)) != 0 ||
	    (rc = mpr_bin_or_nil(r, max_value, &s->tombstone, val, len)) != 0)
		return rc;
	if (version == OBJECT_FORMAT_VERSION_EXPIRY && (rc = mpr_uint(r, &s->expires)) != 0)
		return rc;
	return 0;
}

static int decode_body(mpr *r, const object_limits *lim, object *o)
{
	uint64_t n, version;
	bool expiring = false;
	int rc;

	if ((rc = rd_header(r, OBJECT_FORMAT_VERSION_EXPIRY, &n, &version)) != 0)
		return rc;
	if (n != 3)
		return r->bad;
	if ((rc = rd_vv(r, lim->max_entries, &o->vv)) != 0)
		return rc;
	if ((rc = mpr_array(r, &n)) != 0)
		return rc;
	if (n > mpr_left(r) / (sib_elems(version) + 1))
		return r->bad;
	if (n > lim->max_siblings)
		return DKV_ETOOBIG;
	if (n > 0) {
		o->sibs = calloc((size_t)n, sizeof(*o->sibs));
		if (o->sibs == NULL)
			return -ENOMEM;
		o->capsibs = (size_t)n;
	}
	for (uint64_t i = 0; i < n; i++) {
		object_sibling *s = &o->sibs[i];
		const uint8_t *val;
		size_t len;

		if ((rc = rd_sibling(r, version, lim->max_value, s, &val, &len)) != 0)
			return rc;
		if (s->counter == 0)
			return r->bad;
		if (i > 0 && dot_cmp(&o->sibs[i - 1], s) >= 0)
			return r->bad;   /* unsorted or duplicate dot */
		if (!object_vv_covers(&o->vv, s->actor, s->counter))
			return r->bad;
		if (s->tombstone && s->expires != 0)
			return r->bad;
		expiring |= s->expires != 0;
		if (len > 0) {
			s->value = malloc(len);
			if (s->value == NULL)
				return -ENOMEM;
			memcpy(s->value, val, len);
			s->value_len = len;
		}
		o->nsibs++;
	}
	if (mpr_left(r) != 0)
		return r->bad;   /* trailing bytes */
	if (version == OBJECT_FORMAT_VERSION_EXPIRY && !expiring)
		return r->bad;   /* not canonical: version 1 encodes it */
	return 0;
}

int object_decode(const void *buf, size_t len, const object_limits *lim, object **out)
{
	object_limits dflt;
	mpr r;
	object *o;
	int rc;

	*out = NULL;
	mpr_init(&r, buf, len, DKV_ECORRUPT);
	if (lim == NULL) {
		object_limits_init(&dflt);
		lim = &dflt;
	}
	o = object_new();
	if (o == NULL)
		return -ENOMEM;
	rc = decode_body(&r, lim, o);
	if (rc != 0) {
		object_free(o);
		return rc;
	}
	*out = o;
	return 0;
}

bool object_has_value(const void *buf, size_t len)
{
	uint64_t n, m, u, version;
	mpr r;

	mpr_init(&r, buf, len, DKV_ECORRUPT);
	if (rd_header(&r, OBJECT_FORMAT_VERSION_EXPIRY, &n, &version) != 0 || n != 3 ||
	    mpr_array(&r, &n) != 0)
		return false;
	for (uint64_t i = 0; i < n; i++)   /* the vector: [actor, counter, time] */
		if (mpr_array(&r, &m) != 0 || m != 3 || mpr_uint(&r, &u) != 0 ||
		    mpr_uint(&r, &u) != 0 || mpr_uint(&r, &u) != 0)
			return false;
	if (mpr_array(&r, &n) != 0)
		return false;
	for (uint64_t i = 0; i < n; i++) {
		object_sibling s;
		const uint8_t *val;
		size_t vl;

		if (rd_sibling(&r, version, SIZE_MAX, &s, &val, &vl) != 0)
			return false;
		if (!s.tombstone && s.expires == 0)
			return true;   /* a value time never deletes */
	}
	return false;
}

int object_context_decode(const void *buf, size_t len, const object_limits *lim,
			  object_vv *vv)
{
	object_limits dflt;
	mpr r;
	uint64_t n, version;
	int rc;

	object_vv_release(vv);
	if (len == 0)
		return 0;   /* the empty context */
	mpr_init(&r, buf, len, DKV_EPROTO);
	if (lim == NULL) {
		object_limits_init(&dflt);
		lim = &dflt;
	}
	rc = rd_header(&r, OBJECT_FORMAT_VERSION, &n, &version);
	if (rc == 0 && n != 2)
		rc = r.bad;
	if (rc == 0)
		rc = rd_vv(&r, lim->max_entries, vv);
	if (rc == 0 && mpr_left(&r) != 0)
		rc = r.bad;
	if (rc != 0)
		object_vv_release(vv);
	return rc;
}
