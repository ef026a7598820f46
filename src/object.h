/*
 * object.h -- the stored value of one key: a dotted version vector set
 * (DVVS; Preguiça, Baquero et al., "Dotted Version Vectors", 2012).
 *
 * WHAT AN OBJECT IS
 *   A version vector (actor -> counter, plus a timestamp per entry used only
 *   for pruning) and a set of siblings, each {dot = (actor, counter), value
 *   bytes or a tombstone, timestamp, expires (see TIME TO LIVE)}.  Actors
 *   are node ids (the node layer maps node names to 64-bit ids); puts are
 *   forwarded to a node of the preference list, so a key's vector holds a
 *   handful of entries.
 *
 *   The vector says which writes the object has seen: it "covers" dot (a, c)
 *   iff vector[a] >= c.  Every sibling is a write the object has seen and no
 *   seen write has superseded.  A sibling is superseded when a later write's
 *   context (the vector a client's read returned) covers its dot.
 *
 * INVARIANTS (object_check() tests them; every function keeps them)
 *   - vector entries are sorted by actor, strictly (no duplicate actor), and
 *     every counter is >= 1 (a missing actor means counter 0);
 *   - siblings are sorted by dot (actor, then counter), strictly;
 *   - the vector covers every sibling's dot;
 *   - a tombstone has no value bytes (value NULL, value_len 0) and expires 0.
 *   So the encoding below is canonical: equal objects encode to equal bytes
 *   (the version too follows from the content: 2 iff some sibling has an
 *   expiry), which is what the merge laws are tested on.
 *
 *   An all-zero `object` (or one from object_new()) is the empty object, "no
 *   value": no siblings, empty vector.  An object whose siblings are all
 *   tombstones (or that has none) is deleted: a get reports not-found but
 *   still returns the object's context, so that a later put supersedes the
 *   tombstones.  So is, from its object_deleted_time() on, one whose
 *   values all have an expiry.
 *
 * TIME TO LIVE
 *   A value may be written with an expiry (object_write_expiring): a time,
 *   in ms since 1970 like the timestamps, from which it reads as deleted.
 *   The expiry belongs to the version it was written with, and travels with
 *   that sibling through merges and copies; a later write replaces it like
 *   any sibling, with or without an expiry of its own.  An expired value
 *   (object_sibling_expired) is kept as it is, like a tombstone: its dot
 *   still keeps the versions it superseded dominated, and only the reaper
 *   removes the key, once object_deleted_time() has passed (and whatever
 *   grace it keeps).  Readers, not this module, compare an expiry with
 *   their clock: nothing here reads a clock, and nothing in a merge depends
 *   on one.
 *
 * OPERATIONS
 *   put(obj, a, ctx, value): c = max(obj.vv[a], ctx[a]) + 1; drop every
 *     sibling whose dot ctx covers; add sibling ((a, c), value); vv =
 *     max(obj.vv, ctx) with vv[a] = c.  An empty ctx (a blind write) drops
 *     nothing, so the new value becomes a sibling of what was there.
 *   put with an expiry: the same, the new sibling carrying it.
 *   delete: the same with a tombstone sibling (never an expiry).
 *   merge(x, y): a sibling of x survives iff y has it too or y's vector does
 *     not cover its dot, and likewise for y; vectors merge entry-wise by max
 *     of (counter, timestamp).  This is commutative, associative and
 *     idempotent on objects that keep the invariants (same dot, same
 *     sibling: dots are unique because only actor a makes a's dots, on its
 *     own replica, with a counter above every one it made before); for two
 *     siblings with one dot and different contents, which only corrupt or
 *     forged input gives, the greater (tombstone, timestamp, expires,
 *     bytes) wins, so the laws hold even then.
 *
 * PRUNING
 *   object_prune() drops the oldest vector entries (by entry timestamp)
 *   beyond vclock_max, never the entry of `self` (the local node's actor) and
 *   never the entry of an actor that has a sibling (its dot must stay
 *   covered).  Why pruning never loses a sibling: siblings are never touched,
 *   and a sibling is only ever dropped by a put or a merge when some vector
 *   covers its dot; pruning only makes a vector cover less, so afterwards
 *   fewer siblings can be dropped, never more.  The price is a false
 *   sibling: a replica that still holds a value the pruned entry had seen
 *   superseded can bring it back at the next merge, next to its successor;
 *   the next write with a read's context removes it again.
 *   Why `self` is kept: a's next counter is max(obj.vv[a], ctx[a]) + 1, read
 *   on a's own replica.  If a's own entry were pruned there, a would reuse a
 *   dot it had already given to another write, and the two writes would be
 *   taken for one (or a replica still covering the old dot would discard the
 *   new write): that would lose a write.  Keeping self's entry on self's
 *   replica keeps a's counters increasing; entries of other actors may go.
 *   A node must therefore prune only objects it coordinates for, with its
 *   own actor as self (the vnode's local copy).  With actors = replica nodes
 *   a key's vector rarely grows past N + a few fallbacks, so a vclock_max of
 *   a few dozen (the node's default is the lead's to set) almost never prunes.
 *
 * ENCODING (versions 1 and 2; the same bytes on disk and on the wire)
 *   One msgpack array of three elements:
 *
 *     [ version, vector, siblings ]
 *     version  = 1 (positive fixint 0x01) iff no sibling has an expiry,
 *                else 2 (0x02)
 *     vector   = array of n entries, each array(3) [actor, counter, timestamp]
 *                sorted by actor, strictly; counter >= 1
 *     siblings = array of m entries, each, in version 1, array(4)
 *                  [actor, counter, timestamp, value]
 *                and in version 2, every one of them array(5)
 *                  [actor, counter, timestamp, value, expires]
 *                sorted by (actor, counter), strictly; value is bin 8/16/32
 *                (the bytes; may be empty) or nil (a tombstone); the vector
 *                covers (actor, counter); expires is 0 (never) for a
 *                tombstone and for a value without expiry, and at least one
 *                sibling of a version 2 object has expires != 0
 *
 *   Version 1 is what every object without an expiry was and still is,
 *   byte for byte; version 2 only adds the fifth element.  A version 1
 *   object with an expiring sibling cannot be written, and a version 2
 *   object without one is refused as not canonical.
 *   Integers are msgpack unsigned (positive fixint, uint 8/16/32/64); the
 *   encoder writes the shortest form, the decoder accepts any width.  Arrays
 *   are fixarray, array 16 or array 32; nothing else (maps, str, negative or
 *   float numbers, ext) is accepted anywhere.  The input must end exactly
 *   after the outer array.
 *   Example, version 1: actor 1 at counter 2 (timestamp 100) with the live
 *   sibling (1,2) "hi", and actor 2 at 1 (timestamp 200) with the tombstone
 *   (2,1):
 *     93 01 92 93 01 02 64 93 02 01 cc c8
 *           92 94 01 02 64 c4 02 68 69 94 02 01 cc c8 c0
 *   Version 2: the same with "hi" expiring at 1000 (its deletion time, and
 *   the object's, is 1000; the tombstone's expires is 0):
 *     93 02 92 93 01 02 64 93 02 01 cc c8
 *           92 95 01 02 64 c4 02 68 69 cd 03 e8 95 02 01 cc c8 c0 00
 *
 *   The decoder reads the bytes itself (it does not build a msgpack_object
 *   tree): it checks every declared container length against the bytes left
 *   before it allocates (an entry takes at least 4 bytes, a sibling 5 in
 *   version 1 and 6 in version 2), and refuses with
 *     DKV_EVERSION  the first element is an unsigned integer other than 1
 *                   or 2 (a node of a release that knows only version 1
 *                   refuses a version 2 object so: every node of a cluster
 *                   must read version 2 before any writes an expiry);
 *     DKV_ETOOBIG   more vector entries, siblings or value bytes than the
 *                   limits allow (an object past a configured limit is not
 *                   necessarily damaged, so it gets its own code);
 *     DKV_ECORRUPT  anything else: wrong type or shape (a sibling of 5
 *                   elements in version 1, of 4 in version 2), truncation,
 *                   trailing bytes, unsorted or duplicate actors or dots, a
 *                   counter of 0, a sibling dot the vector does not cover, a
 *                   tombstone with an expiry, a version 2 object in which no
 *                   sibling has one.
 *
 * CONTEXT (what a get returns, what a put or delete hands back)
 *   The object's vector, opaque to clients.  Version 1 is one msgpack array
 *     [ 1, vector ]
 *   with the vector as above.  Expiries do not change it: a context is
 *   version 1 whatever its object's version (any other, 2 included, is
 *   DKV_EVERSION).  A zero-length context is the empty context (a blind
 *   write).  object_context_decode() refuses malformed contexts with
 *   DKV_EPROTO (they come from clients), DKV_EVERSION and DKV_ETOOBIG as
 *   above.
 *
 * THREADS AND OWNERSHIP
 *   Pure functions on memory: no I/O, no globals, thread-compatible (one
 *   thread per object at a time; distinct objects from any threads).  An
 *   object owns its arrays and its siblings' value bytes.  Mutating functions
 *   either succeed or leave the object unchanged (on -ENOMEM).  Fields may be
 *   read directly; change them only through these functions.
 */
#ifndef DKV_OBJECT_H
#define DKV_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

/* The format version written first in an encoded context, and in an
 * encoded object none of whose siblings has an expiry. */
#define OBJECT_FORMAT_VERSION 1
/* The format version of an encoded object with at least one expiring
 * sibling: siblings of five elements, expires last (see ENCODING). */
#define OBJECT_FORMAT_VERSION_EXPIRY 2

/* Decoder limits' defaults, the arithmetic behind them:
 *   entries:  vectors hold replica nodes: N=3 plus fallbacks, a few more per
 *             membership change; 256 is far above any real key and bounds a
 *             vector at 256 * 28 bytes = 7 KiB;
 *   siblings: each concurrent blind write adds one; 512 is a broken client,
 *             not a workload, and bounds the per-sibling overhead (~30 bytes
 *             encoded, ~48 in memory) at about 24 KiB;
 *   value:    8 MiB, the default max_frame: a value must fit in one frame. */
#define OBJECT_DEFAULT_MAX_ENTRIES  256u
#define OBJECT_DEFAULT_MAX_SIBLINGS 512u
#define OBJECT_DEFAULT_MAX_VALUE    (8u * 1024u * 1024u)

/* One version-vector entry. */
typedef struct object_vv_entry {
	uint64_t actor;      /* node id */
	uint64_t counter;    /* >= 1: the actor's writes 1..counter are covered */
	uint64_t timestamp;  /* when the counter last advanced (for pruning only) */
} object_vv_entry;

/* A version vector (also a context).  All-zero is the empty vector. */
typedef struct object_vv {
	object_vv_entry *entries;  /* sorted by actor, strictly; owned */
	size_t n;                  /* entries in use */
	size_t cap;                /* entries allocated */
} object_vv;

/* One sibling: a write no seen write has superseded. */
typedef struct object_sibling {
	uint64_t actor;      /* dot: the coordinating node's actor id ... */
	uint64_t counter;    /* ... and its counter for this write (>= 1) */
	uint64_t timestamp;  /* the coordinator's clock at the write */
	uint64_t expires;    /* ms since 1970 from which it reads as deleted; 0: never
			      * (always 0 for a tombstone) */
	bool tombstone;      /* true iff the write was a delete */
	uint8_t *value;      /* the value bytes, owned; NULL when empty or a tombstone */
	size_t value_len;    /* bytes at value; 0 for a tombstone */
} object_sibling;

/* A stored object.  All-zero is the empty object ("no value"). */
typedef struct object {
	object_vv vv;            /* what this object has seen */
	object_sibling *sibs;    /* sorted by dot, strictly; owned */
	size_t nsibs;            /* siblings in use */
	size_t capsibs;          /* siblings allocated */
} object;

/* Decoder limits.  object_limits_init() sets the defaults above. */
typedef struct object_limits {
	size_t max_entries;   /* most vector entries accepted */
	size_t max_siblings;  /* most siblings accepted */
	size_t max_value;     /* most bytes in one sibling's value */
} object_limits;

void object_limits_init(object_limits *lim);

/* --- version vectors ------------------------------------------------------ */

/* Free vv's entries and make it empty (all-zero). */
void object_vv_release(object_vv *vv);
/* dst (released first, on success) becomes a copy of src.  0 or -ENOMEM. */
int object_vv_copy(object_vv *dst, const object_vv *src);
/* The counter of actor (0 if absent).  vv may be NULL (empty). */
uint64_t object_vv_get(const object_vv *vv, uint64_t actor);
/* True iff vv covers dot (actor, counter).  vv may be NULL (empty). */
bool object_vv_covers(const object_vv *vv, uint64_t actor, uint64_t counter);
/* Set actor's entry to exactly (counter, timestamp); counter 0 removes it.
 * 0 or -ENOMEM. */
int object_vv_set(object_vv *vv, uint64_t actor, uint64_t counter, uint64_t timestamp);
/* dst = max(dst, src) entry-wise (by counter, then timestamp).  0 or
 * -ENOMEM (dst unchanged). */
int object_vv_merge(object_vv *dst, const object_vv *src);

/* --- objects -------------------------------------------------------------- */

/* A new empty object; caller frees with object_free().  NULL on ENOMEM. */
object *object_new(void);
/* Free obj and everything it owns.  NULL is fine. */
void object_free(object *obj);
/* Free what obj owns and make it the empty object (for embedded objects). */
void object_release(object *obj);
/* *out = a deep copy of src; caller frees with object_free().  0 or -ENOMEM. */
int object_clone(const object *src, object **out);

/* Accessors.  Sibling pointers are borrowed until obj is next changed. */
size_t object_sibling_count(const object *obj);
const object_sibling *object_sibling_at(const object *obj, size_t i);
const object_vv *object_vector(const object *obj);
/* True iff obj has no siblings and an empty vector ("no value"). */
bool object_is_empty(const object *obj);
/* True iff every sibling is a tombstone, or there is none.  Expiries
 * are not looked at: see object_deleted_time(). */
bool object_is_deleted(const object *obj);
/* True iff the encoding buf parses, without copying anything, as far as
 * a sibling with a value and no expiry: the object is surely not deleted,
 * now or later.  False says only "maybe" (a tombstone, a value with an
 * expiry, no sibling, or bytes it cannot read): decode to know.  For a
 * write observer that looks for deleted objects among every object stored
 * (reaper.h), at a fraction of a decode's cost; it allocates nothing. */
bool object_has_value(const void *buf, size_t len);
/* The newest sibling's timestamp (0 without siblings): for an object of
 * tombstones only, when it was deleted. */
uint64_t object_newest(const object *obj);
/* True iff s has an expiry and it is at or before now (ms since 1970):
 * s reads as deleted.  Never true for a tombstone (expires 0). */
bool object_sibling_expired(const object_sibling *s, uint64_t now);
/* When obj is, or will be, deleted entirely: the latest of every sibling's
 * deletion time (a tombstone's timestamp, a value's expires).  0 if obj
 * has no sibling or a value without expiry (time never deletes it).  For
 * tombstones only it equals object_newest().  Deleted at now iff
 * t = object_deleted_time(obj) is not 0 and t <= now.  For the reaper and
 * anti-entropy. */
uint64_t object_deleted_time(const object *obj);

/* A write by `actor` with the context ctx (NULL or empty: a blind write);
 * see OPERATIONS.  The value is copied (value may be NULL when len is 0).
 * 0, -ENOMEM (obj unchanged), DKV_EINVAL if a counter would overflow. */
int object_put(object *obj, uint64_t actor, const object_vv *ctx,
	       const void *value, size_t len, uint64_t timestamp);
/* The same with a tombstone. */
int object_delete(object *obj, uint64_t actor, const object_vv *ctx, uint64_t timestamp);
/* A put (or, with tombstone, a delete) whose new dot's counter is at
 * least floor: max(floor, the key's and ctx's counters of actor + 1).  A
 * node takes floor from its persisted sequence (dotseq.h), so that a
 * counter is never given out twice, even for a key whose history was
 * reaped.  *dot (if not NULL) receives the counter used. */
int object_write_at(object *obj, uint64_t actor, uint64_t floor, const object_vv *ctx,
		    bool tombstone, const void *value, size_t len, uint64_t timestamp,
		    uint64_t *dot);
/* object_write_at() whose new sibling carries expires (ms since 1970 from
 * which it reads as deleted; 0: never), see TIME TO LIVE.  The put,
 * delete and write_at above are this with expires 0.  DKV_EINVAL also
 * for a tombstone with an expiry. */
int object_write_expiring(object *obj, uint64_t actor, uint64_t floor, const object_vv *ctx,
			  bool tombstone, const void *value, size_t len, uint64_t timestamp,
			  uint64_t expires, uint64_t *dot);

/* dst = merge(dst, src); see OPERATIONS.  0 or -ENOMEM (dst unchanged). */
int object_merge(object *dst, const object *src);

/* Drop the oldest vector entries beyond vclock_max, sparing self's and
 * those of actors with a sibling; see PRUNING.  Returns how many entries
 * were dropped (never fails: it only shrinks). */
size_t object_prune(object *obj, size_t vclock_max, uint64_t self);

/* Check the invariants.  0, or -1 with the reason in err. */
int object_check(const object *obj, char *err, size_t errlen);

/* --- encodings ------------------------------------------------------------ */

/* Append obj's canonical encoding to sbuf.  0 or -ENOMEM. */
int object_encode(const object *obj, msgpack_sbuffer *sbuf);
/* Decode len bytes at buf (lim NULL: defaults).  On success *out is a new
 * object the caller frees with object_free(); on error *out is NULL.
 * 0, -ENOMEM, DKV_ECORRUPT, DKV_ETOOBIG or DKV_EVERSION (see ENCODING). */
int object_decode(const void *buf, size_t len, const object_limits *lim, object **out);

/* Append obj's context (its vector) to sbuf.  0 or -ENOMEM. */
int object_context_encode(const object *obj, msgpack_sbuffer *sbuf);
/* Decode a context into *vv (released first; left empty on error).
 * 0, -ENOMEM, DKV_EPROTO, DKV_ETOOBIG or DKV_EVERSION. */
int object_context_decode(const void *buf, size_t len, const object_limits *lim,
			  object_vv *vv);

#endif /* DKV_OBJECT_H */
