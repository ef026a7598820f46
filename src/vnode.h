/*
 * vnode.h -- the partition replicas this node stores: one Bitcask store
 * per partition, and the only holder of store handles.
 *
 *   DATA_DIR/partitions/NNNN/   the store of partition NNNN (decimal, four
 *                               digits); what it holds is documented in
 *                               dynkv-format(5).
 *
 * A store's values are encoded objects (object.h): a version vector and
 * siblings.  Everything that reads or writes a replica comes through here:
 * the coordinator's local writes (vnode_store), replica writes, read repair
 * and, later, hinted handoff and anti-entropy (vnode_merge: merge an object
 * in, never overwriting a newer or concurrent version), reads (vnode_read,
 * vnode_get_raw), a scan (the iterator) and dropping a partition replica
 * that is no longer ours (vnode_drop).
 *
 * Stores are opened with BITCASK_SYNC_MANUAL: the owner drives syncing
 * (durable.h).  Every successful write marks its store dirty;
 * vnode_take_dirty() hands the dirty stores to a sync batch and clears the
 * marks, so that a write made while that batch runs marks the store again
 * for the next one.  A write observer, if set, sees every object stored
 * (after the append, before the call returns): anti-entropy keeps its
 * trees up to date through it.
 *
 * BACKGROUND WORK
 *   With a world (cfg.w), stores run no thread of their own
 *   (bitcask external_worker): every VNODE_WORK_TICK_MS the set asks each
 *   open store whether it has work (a hint file after a rotation, a merge
 *   the thresholds want) and runs bitcask_work() for it through
 *   world->work() -- the node's one pool, whatever ring_size -- at most
 *   one job per store and VNODE_WORK_JOBS at once.  While a store's job
 *   runs it is not dropped (vnode_drop: -EBUSY), and the set is not closed
 *   (vnode_busy: the node's close waits).  Without a world (tools, tests of
 *   this module alone), each store keeps its own worker thread.
 *
 * All stores a node holds are opened at start (vnode_open_many, on several
 * threads at once); a partition first used later is opened on the loop.
 * Loop thread only, except vnode_open_many's own helper threads.
 */
#ifndef DKV_VNODE_H
#define DKV_VNODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitcask.h"
#include "log.h"
#include "object.h"
#include "world.h"

/* How often stores are asked for background work (bitcask_work_pending
 * is a mutex and a walk of a few dozen files: 512 stores a second is
 * nothing), and how many of their jobs may be queued in the world's pool
 * at once (the pool runs fewer at a time; more queued would only delay
 * the stores behind them). */
#define VNODE_WORK_TICK_MS 1000u
#define VNODE_WORK_JOBS    4u
/* Extra stores a set can hold at once besides its partitions (one hint
 * store per member a node holds writes for: handoff.h). */
#define VNODE_MAX_EXTRA    256u

typedef struct vnode_set vnode_set;
typedef struct vnode_iter vnode_iter;

typedef struct vnode_config {
	const char *dir;             /* the data directory (copied) */
	uint32_t ring_size;          /* partitions 0..ring_size-1 */
	uint64_t actor;              /* this node's actor (pruning keeps its entry) */
	uint32_t max_key_size;       /* longest key a store accepts */
	size_t max_object;           /* largest encoded object a store accepts */
	uint32_t vclock_max;         /* prune version vectors beyond this */
	object_limits olim;          /* for decoding stored objects */
	world *w;                    /* runs background work; NULL: a thread per store */
	uint64_t max_file_size;      /* stores' data file size (0: bitcask's default) */
	const bcio *io;              /* stores' system calls (NULL: the real ones; tests) */
	dkv_log *log;                /* NULL: no logging */
} vnode_config;

/* Called for every object stored in a partition: partition, key, encoded
 * object (all borrowed for the call); obj NULL and len 0 when the key was
 * removed (vnode_delete: a reaped tombstone). */
typedef void (*vnode_observer_fn)(void *ctx, uint32_t p, const void *key, size_t klen,
				  const void *obj, size_t len);

/* A set with no store open yet.  0 or -ENOMEM. */
int vnode_set_open(vnode_set **out, const vnode_config *cfg);
/* Sync and close every store, free the set.  0 or the first error. */
int vnode_set_close(vnode_set *vs);

/* Open (creating if need be) the listed partitions' stores, OPENERS at a
 * time on helper threads; those already open are skipped.  0, or the first
 * error with "partition N: reason" in err (the others stay open). */
int vnode_open_many(vnode_set *vs, const uint32_t *list, size_t count, char *err, size_t errlen);
/* True iff partition p's store is open. */
bool vnode_is_open(const vnode_set *vs, uint32_t p);
/* True iff partition p has a directory on disk. */
bool vnode_exists(const vnode_set *vs, uint32_t p);

/* The object stored under key in partition p: 0 and *obj (NULL when
 * absent; caller frees with object_free), or an error (DKV_ECORRUPT for an
 * object that fails to decode, DKV_EVERSION for a newer format). */
int vnode_read(vnode_set *vs, uint32_t p, const void *key, size_t klen, object **obj);
/* Its encoding as stored: 0 and *val (caller frees with free()),
 * DKV_ENOTFOUND (also when the partition has no store here: a read never
 * makes one), or an error. */
int vnode_get_raw(vnode_set *vs, uint32_t p, const void *key, size_t klen,
		  void **val, size_t *vlen);
/* Store an encoded object (len <= max_object, else DKV_ETOOBIG) under key. */
int vnode_store(vnode_set *vs, uint32_t p, const void *key, size_t klen,
		const void *obj, size_t len);
/* Remove key from store p: a delivered hint, or a partition's tombstone
 * the reaper (reaper.h) found safe to forget (observers are told).  0,
 * DKV_ENOTFOUND, or an error. */
int vnode_delete(vnode_set *vs, uint32_t p, const void *key, size_t klen);
/* Merge `in` into the stored object (or store a copy when there is none),
 * pruned to vclock_max, and store the result if it differs from what was
 * there: *wrote says whether anything was appended. */
int vnode_merge(vnode_set *vs, uint32_t p, const void *key, size_t klen, const object *in,
		bool *wrote);

/* Move the dirty stores into out (room for vnode_slots) and clear their
 * marks; returns how many.  The stores stay open until vnode_synced():
 * vnode_drop refuses them with -EBUSY meanwhile (the world's batch holds
 * them, world.h).  One batch at a time. */
size_t vnode_take_dirty(vnode_set *vs, bitcask **out);
/* The batch of vnode_take_dirty has ended: its stores may be dropped. */
void vnode_synced(vnode_set *vs);
/* Mark these stores (from vnode_take_dirty) dirty again: their sync
 * failed, so what they hold is not known durable, and whoever waits on the
 * next batch must hear of it (a failed store fails every later sync). */
void vnode_redirty(vnode_set *vs, bitcask *const *stores, size_t n);
/* True iff some store is dirty. */
bool vnode_any_dirty(const vnode_set *vs);

/* Observers (anti-entropy, the tombstone reaper): at most VNODE_OBSERVERS.
 * 0 or -ENOSPC. */
#define VNODE_OBSERVERS 4
int vnode_add_observer(vnode_set *vs, vnode_observer_fn fn, void *ctx);
void vnode_remove_observer(vnode_set *vs, vnode_observer_fn fn, void *ctx);

/* Scan partition p: every live key with its encoded object, as
 * bitcask_iter describes (borrowed until the next call).  vnode_iter_next
 * returns 0, DKV_ENOTFOUND at the end, or an error.  Close the iterator
 * before dropping the partition or closing the set. */
int vnode_iter_open(vnode_set *vs, uint32_t p, vnode_iter **out);
int vnode_iter_next(vnode_iter *it, const uint8_t **key, size_t *klen,
		    const uint8_t **obj, size_t *len);
void vnode_iter_close(vnode_iter *it);

/* Close partition p's store, without syncing it, and delete its directory
 * (a replica that is no longer ours, once its data is safe elsewhere): the
 * directory is renamed to PATH.dropped.N at once and removed on the
 * world's pool (vnode_busy until then; vnode_set_open removes what a crash
 * left).  0, -EBUSY while a background job or a durability batch holds the
 * store, or -errno. */
#define VNODE_DROPPED ".dropped."
int vnode_drop(vnode_set *vs, uint32_t p);

/* Live keys and bytes over every open store. */
void vnode_stored(vnode_set *vs, uint64_t *keys, uint64_t *bytes);
/* Bytes of data files, and memory of key directories, over every open
 * store (hint stores included). */
void vnode_usage(vnode_set *vs, uint64_t *disk, uint64_t *keydir);
/* Stores open now. */
size_t vnode_open_count(const vnode_set *vs);
/* Start no more background jobs (the node is stopping); running ones end
 * as they will. */
void vnode_quiesce(vnode_set *vs);
/* True iff a background job runs for some store: vnode_set_close must
 * wait until it is false. */
bool vnode_busy(const vnode_set *vs);
/* Background jobs completed (bitcask_work rounds). */
uint64_t vnode_work_done(const vnode_set *vs);

/* EXTRA STORES
 * Stores beyond the partitions, named by a path under the data directory
 * ("hints/ID": handoff.h), live in the same set so that durability
 * batches, background work and closing cover them as they do partitions.
 * Each has an index >= ring_size that every function above taking a
 * partition p accepts (the write observer is not called for them);
 * vnode_drop() deletes one and frees its index.  Opening costs a few
 * fsyncs on the loop (a new store), once per name.
 * vnode_extra_open: 0 and *idx (the same index for a name already open),
 * -ENOSPC past VNODE_MAX_EXTRA, or the store's error. */
int vnode_extra_open(vnode_set *vs, const char *name, uint32_t *idx);
/* The name of extra store idx, or NULL when idx holds none. */
const char *vnode_extra_name(const vnode_set *vs, uint32_t idx);
/* Indices a set can hold: ring_size + VNODE_MAX_EXTRA (the room
 * vnode_take_dirty needs). */
uint32_t vnode_slots(const vnode_set *vs);

/* Partition p's store, or NULL when it is not open: for background work
 * (bitcask_work) and statistics.  Borrowed until vnode_drop or close. */
bitcask *vnode_store_of(const vnode_set *vs, uint32_t p);

#endif /* DKV_VNODE_H */
