/*
 * epochs.c -- ring epochs (epochs.h): a chain of member sets, the forks
 * between chains, and how far every member has moved along it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "epochs.h"
#include "error.h"
#include "mpr.h"
#include "siphash.h"

/* The key of the epochs' digests: 16 ASCII bytes, part of the wire and
 * disk format (a digest names an epoch on every node and every version). */
#define EPOCHS_HASH_KEY "dynkv epochs v1 "

typedef struct epoch {
	epoch_id id;
	uint64_t prev;       /* the digest of the epoch before (0 for the first) */
	char **ids;          /* sorted bytewise, distinct */
	size_t n;
	ring *rg;
} epoch;

typedef struct tracker {
	char *id;
	epoch_progress pr;
} tracker;

struct epochs {
	uint32_t ring_size, n_val;
	epoch e[EPOCHS_MAX];   /* oldest first */
	size_t count;
	tracker *tr;           /* sorted by id */
	size_t ntr, captr;
};

static void epoch_clear(epoch *ep)
{
	for (size_t i = 0; i < ep->n; i++)
		free(ep->ids[i]);
	free(ep->ids);
	ring_free(ep->rg);
	memset(ep, 0, sizeof(*ep));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* SipHash-2-4 of be64(number) be64(prev) and, per member in order,
 * be16(length) and its bytes. */
static int epoch_digest(uint64_t number, uint64_t prev, char *const *ids, size_t n,
			uint64_t *out)
{
	siphash_key k = siphash_key_from_bytes((const uint8_t *)EPOCHS_HASH_KEY);
	size_t len = 16, off = 16;
	uint8_t *buf;

	for (size_t i = 0; i < n; i++)
		len += 2 + strlen(ids[i]);
	if ((buf = malloc(len)) == NULL)
		return -ENOMEM;
	put_be64(buf, number);
	put_be64(buf + 8, prev);
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(ids[i]);

		buf[off] = (uint8_t)(l >> 8);
		buf[off + 1] = (uint8_t)l;
		memcpy(buf + off + 2, ids[i], l);
		off += 2 + l;
	}
	*out = siphash24(&k, buf, len);
	free(buf);
	return 0;
}

/* Fill ep with number, prev and a sorted copy of ids[0..n-1], its digest
 * and its ring.  ep is left cleared on error. */
static int epoch_make(epoch *ep, const epochs *h, uint64_t number, uint64_t prev,
		      const char *const *ids, size_t n)
{
	int rc;

	memset(ep, 0, sizeof(*ep));
	if (n == 0 || n > EPOCHS_MAX_MEMBERS)
		return DKV_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (ids[i] == NULL || ids[i][0] == '\0' || strlen(ids[i]) > EPOCHS_MAX_ID)
			return DKV_EINVAL;
	if ((ep->ids = calloc(n, sizeof(*ep->ids))) == NULL)
		return -ENOMEM;
	for (; ep->n < n; ep->n++)
		if ((ep->ids[ep->n] = strdup(ids[ep->n])) == NULL) {
			epoch_clear(ep);
			return -ENOMEM;
		}
	qsort(ep->ids, n, sizeof(*ep->ids), cmp_str);
	for (size_t i = 1; i < n; i++)
		if (strcmp(ep->ids[i - 1], ep->ids[i]) == 0) {
			epoch_clear(ep);
			return DKV_EINVAL;
		}
	ep->id.number = number;
	ep->prev = prev;
	if ((rc = epoch_digest(number, prev, ep->ids, n, &ep->id.digest)) != 0 ||
	    (rc = ring_build(&ep->rg, (const char *const *)ep->ids, n, h->ring_size,
			     h->n_val)) != 0) {
		epoch_clear(ep);
		return rc;
	}
	return 0;
}

static int epoch_copy(epoch *dst, const epochs *h, const epoch *src)
{
	return epoch_make(dst, h, src->id.number, src->prev, (const char *const *)src->ids, src->n);
}

int epochs_new(epochs **out, uint32_t ring_size, uint32_t n_val)
{
	epochs *h;

	*out = NULL;
	if (ring_size == 0 || (ring_size & (ring_size - 1)) != 0 || n_val == 0)
		return DKV_EINVAL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	h->ring_size = ring_size;
	h->n_val = n_val;
	*out = h;
	return 0;
}

static void chain_clear(epochs *h)
{
	for (size_t i = 0; i < h->count; i++)
		epoch_clear(&h->e[i]);
	h->count = 0;
}

void epochs_free(epochs *h)
{
	if (h == NULL)
		return;
	chain_clear(h);
	for (size_t i = 0; i < h->ntr; i++)
		free(h->tr[i].id);
	free(h->tr);
	free(h);
}

size_t epochs_count(const epochs *h)
{
	return h->count;
}

epoch_id epochs_id(const epochs *h, size_t i)
{
	return h->e[i].id;
}

const ring *epochs_ring(const epochs *h, size_t i)
{
	return h->e[i].rg;
}

const char *const *epochs_members(const epochs *h, size_t i, size_t *n)
{
	*n = h->e[i].n;
	return (const char *const *)h->e[i].ids;
}

epoch_id epochs_newest(const epochs *h)
{
	epoch_id none = { 0, 0 };

	return h->count == 0 ? none : h->e[h->count - 1].id;
}

long epochs_find(const epochs *h, epoch_id id)
{
	for (size_t i = 0; i < h->count; i++)
		if (h->e[i].id.number == id.number && h->e[i].id.digest == id.digest)
			return (long)i;
	return -1;
}

int epochs_propose(epochs *h, const char *const *ids, size_t n, bool *made)
{
	epoch ep;
	uint64_t number = 1, prev = 0;
	int rc;

	*made = false;
	if (h->count > 0) {
		const epoch *last = &h->e[h->count - 1];
		bool same = last->n == n;

		/* the usual call changes nothing: answer it before building a
		 * ring (the cluster asks on every gossip message it merges) */
		for (size_t i = 0; same && i < n; i++)
			same = ids[i] != NULL && bsearch(&ids[i], last->ids, last->n,
							 sizeof(*last->ids), cmp_str) != NULL;
		if (same)
			return 0;
		number = last->id.number + 1;
		prev = last->id.digest;
	}
	if (h->count == EPOCHS_MAX)
		return DKV_EBUSY;
	if ((rc = epoch_make(&ep, h, number, prev, ids, n)) != 0)
		return rc;
	h->e[h->count++] = ep;
	*made = true;
	return 0;
}

/* Our chain becomes ours[0..keep-1] followed by theirs[from..]: built
 * aside first, so that ours is unchanged when memory runs out.  When the
 * result is longer than EPOCHS_MAX, its oldest epochs go: a chain that
 * long can only come from members that read from none of them (epochs.h). */
static int splice(epochs *h, size_t keep, const epochs *theirs, size_t from)
{
	epoch tmp[EPOCHS_MAX];
	size_t total = keep + (theirs->count - from), skip, n = 0;
	int rc = 0;

	skip = total > EPOCHS_MAX ? total - EPOCHS_MAX : 0;
	for (size_t i = 0; i < total && rc == 0; i++) {
		if (i < skip)
			continue;
		rc = i < keep ? epoch_copy(&tmp[n], h, &h->e[i])
			      : epoch_copy(&tmp[n], h, &theirs->e[from + (i - keep)]);
		n += rc == 0;
	}
	if (rc != 0) {
		for (size_t i = 0; i < n; i++)
			epoch_clear(&tmp[i]);
		return rc;
	}
	chain_clear(h);
	memcpy(h->e, tmp, n * sizeof(tmp[0]));
	h->count = n;
	return 0;
}

static long find_number(const epochs *h, uint64_t number)
{
	if (h->count == 0 || number < h->e[0].id.number ||
	    number > h->e[h->count - 1].id.number)
		return -1;
	return (long)(number - h->e[0].id.number);   /* numbers are consecutive */
}

int epochs_merge(epochs *h, const epochs *theirs, bool *changed)
{
	uint64_t lo, hi;
	const epoch *ob, *tb;

	*changed = false;
	if (theirs->count == 0)
		return 0;
	if (h->count == 0) {
		int rc = splice(h, 0, theirs, 0);

		*changed = rc == 0;
		return rc;
	}
	ob = &h->e[0];
	tb = &theirs->e[0];
	lo = ob->id.number > tb->id.number ? ob->id.number : tb->id.number;
	hi = h->e[h->count - 1].id.number < theirs->e[theirs->count - 1].id.number
		     ? h->e[h->count - 1].id.number : theirs->e[theirs->count - 1].id.number;
	if (lo > hi) {
		/* no number in common: theirs is right after ours, or behind
		 * ours, or too far ahead to check */
		const epoch *onew = &h->e[h->count - 1];

		if (tb->id.number == onew->id.number + 1 && tb->prev == onew->id.digest) {
			int rc = splice(h, h->count, theirs, 0);

			*changed = rc == 0;
			return rc;
		}
		if (theirs->e[theirs->count - 1].id.number < ob->id.number)
			return 0;   /* behind ours: nothing to learn (they may refuse ours) */
		return DKV_EINVAL;   /* ahead by more than we can check */
	}
	for (uint64_t num = lo; num <= hi; num++) {
		const epoch *o = &h->e[find_number(h, num)];
		const epoch *t = &theirs->e[find_number(theirs, num)];

		if (o->id.digest == t->id.digest)
			continue;
		if (num == lo && (o->prev != t->prev || o->prev == 0))
			return DKV_EINVAL;   /* not even the epoch before is shared
			                      * (two first epochs: two clusters) */
		if (t->id.digest < o->id.digest)
			return 0;            /* a fork, and ours wins */
		{
			int rc = splice(h, (size_t)find_number(h, num), theirs,
					(size_t)find_number(theirs, num));

			*changed = rc == 0;
			return rc;
		}
	}
	/* the same epochs where both have one: theirs may go further */
	if (theirs->e[theirs->count - 1].id.number > h->e[h->count - 1].id.number) {
		int rc = splice(h, h->count, theirs,
				(size_t)find_number(theirs, h->e[h->count - 1].id.number) + 1);

		*changed = rc == 0;
		return rc;
	}
	return 0;
}

int epochs_adopt(epochs *h, const epochs *theirs)
{
	return splice(h, 0, theirs, 0);
}

static tracker *tracker_find(const epochs *h, const char *id, size_t *pos)
{
	size_t lo = 0, hi = h->ntr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(h->tr[mid].id, id);

		if (c == 0) {
			if (pos != NULL)
				*pos = mid;
			return &h->tr[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (pos != NULL)
		*pos = lo;
	return NULL;
}

int epochs_note(epochs *h, const char *id, const epoch_progress *pr)
{
	size_t pos;
	tracker *t;
	char *copy;

	if (id == NULL || id[0] == '\0' || strlen(id) > EPOCHS_MAX_ID)
		return DKV_EINVAL;
	if ((t = tracker_find(h, id, &pos)) != NULL) {
		t->pr = *pr;
		return 0;
	}
	if (h->ntr == EPOCHS_MAX_TRACKED)
		return DKV_EBUSY;
	if (h->ntr == h->captr) {
		size_t cap = h->captr ? h->captr * 2 : 8;
		tracker *nt = realloc(h->tr, cap * sizeof(*nt));

		if (nt == NULL)
			return -ENOMEM;
		h->tr = nt;
		h->captr = cap;
	}
	if ((copy = strdup(id)) == NULL)
		return -ENOMEM;
	memmove(&h->tr[pos + 1], &h->tr[pos], (h->ntr - pos) * sizeof(*h->tr));
	h->tr[pos].id = copy;
	h->tr[pos].pr = *pr;
	h->ntr++;
	return 0;
}

void epochs_forget(epochs *h, const char *id)
{
	size_t pos;

	if (tracker_find(h, id, &pos) == NULL)
		return;
	free(h->tr[pos].id);
	memmove(&h->tr[pos], &h->tr[pos + 1], (h->ntr - pos - 1) * sizeof(*h->tr));
	h->ntr--;
}

enum which { W_ACK, W_SYNC, W_READ };

/* The newest epoch that every one of ids has reached by `which`. */
static long all_reached(const epochs *h, const char *const *ids, size_t n, enum which w)
{
	long best;

	if (h->count == 0)
		return -1;
	best = (long)h->count - 1;
	for (size_t i = 0; i < n; i++) {
		const tracker *t = tracker_find(h, ids[i], NULL);
		long at;

		if (t == NULL)
			return -1;
		at = epochs_find(h, w == W_ACK ? t->pr.ack : w == W_SYNC ? t->pr.sync : t->pr.read);
		if (at < 0)
			return -1;
		if (at < best)
			best = at;
	}
	return best;
}

long epochs_acked(const epochs *h, const char *const *ids, size_t n)
{
	return all_reached(h, ids, n, W_ACK);
}

long epochs_synced(const epochs *h, const char *const *ids, size_t n)
{
	return all_reached(h, ids, n, W_SYNC);
}

long epochs_read_all(const epochs *h, const char *const *ids, size_t n)
{
	return all_reached(h, ids, n, W_READ);
}

size_t epochs_prune(epochs *h, long keep)
{
	size_t k;

	if (keep <= 0 || h->count == 0)
		return 0;
	k = (size_t)keep < h->count ? (size_t)keep : h->count - 1;   /* the newest stays */
	for (size_t i = 0; i < k; i++)
		epoch_clear(&h->e[i]);
	memmove(&h->e[0], &h->e[k], (h->count - k) * sizeof(h->e[0]));
	memset(&h->e[h->count - k], 0, k * sizeof(h->e[0]));
	h->count -= k;
	return k;
}

int epochs_pack(const epochs *h, msgpack_packer *pk)
{
	int rc = msgpack_pack_array(pk, h->count);

	for (size_t i = 0; rc == 0 && i < h->count; i++) {
		const epoch *ep = &h->e[i];

		rc = msgpack_pack_array(pk, 4);
		rc = rc ? rc : msgpack_pack_uint64(pk, ep->id.number);
		rc = rc ? rc : msgpack_pack_uint64(pk, ep->id.digest);
		rc = rc ? rc : msgpack_pack_uint64(pk, ep->prev);
		rc = rc ? rc : msgpack_pack_array(pk, ep->n);
		for (size_t j = 0; rc == 0 && j < ep->n; j++) {
			size_t l = strlen(ep->ids[j]);

			rc = msgpack_pack_str(pk, l);
			rc = rc ? rc : msgpack_pack_str_body(pk, ep->ids[j], l);
		}
	}
	return rc == 0 ? 0 : -ENOMEM;
}

/* One epoch [number, digest, prev, [id, ...]] from r into ep, its digest
 * checked. */
static int unpack_one(epochs *h, mpr *r, epoch *ep)
{
	uint64_t n, number, digest, prev, count;
	char **ids = NULL;
	size_t got = 0;
	int rc;

	if ((rc = mpr_array(r, &n)) != 0)
		return rc;
	if (n != 4)
		return DKV_EPROTO;
	if ((rc = mpr_uint(r, &number)) != 0 || (rc = mpr_uint(r, &digest)) != 0 ||
	    (rc = mpr_uint(r, &prev)) != 0 || (rc = mpr_array(r, &count)) != 0)
		return rc;
	if (number == 0 || count == 0 || count > EPOCHS_MAX_MEMBERS || count > mpr_left(r))
		return DKV_EPROTO;
	if ((ids = calloc((size_t)count, sizeof(*ids))) == NULL)
		return -ENOMEM;
	for (; got < count; got++) {
		const char *s;
		size_t l;

		if ((rc = mpr_str(r, EPOCHS_MAX_ID, &s, &l)) != 0) {
			rc = rc == DKV_ETOOBIG ? DKV_EPROTO : rc;
			break;
		}
		if (l == 0 || memchr(s, '\0', l) != NULL) {
			rc = DKV_EPROTO;
			break;
		}
		if ((ids[got] = strndup(s, l)) == NULL) {
			rc = -ENOMEM;
			break;
		}
	}
	if (rc == 0) {
		rc = epoch_make(ep, h, number, prev, (const char *const *)ids, (size_t)count);
		if (rc == DKV_EINVAL)
			rc = DKV_EPROTO;   /* a duplicate member */
		if (rc == 0 && ep->id.digest != digest) {
			epoch_clear(ep);
			rc = DKV_EPROTO;
		}
	}
	for (size_t i = 0; i < got; i++)
		free(ids[i]);
	free(ids);
	return rc;
}

int epochs_unpack(epochs *h, const void *buf, size_t len, size_t *used)
{
	mpr r;
	uint64_t n;
	int rc;

	*used = 0;
	if (h->count != 0)
		return DKV_EINVAL;
	mpr_init(&r, buf, len, DKV_EPROTO);
	if ((rc = mpr_array(&r, &n)) != 0)
		return rc;
	if (n > EPOCHS_MAX || n > mpr_left(&r))
		return DKV_EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		epoch ep;

		if ((rc = unpack_one(h, &r, &ep)) != 0)
			break;
		if (h->count > 0 && (ep.id.number != h->e[h->count - 1].id.number + 1 ||
				     ep.prev != h->e[h->count - 1].id.digest)) {
			epoch_clear(&ep);
			rc = DKV_EPROTO;
			break;
		}
		h->e[h->count++] = ep;
	}
	if (rc != 0) {
		chain_clear(h);
		return rc;
	}
	*used = (size_t)(r.p - (const uint8_t *)buf);
	return 0;
}
