/*
 * bitcask.h -- dynkv's storage engine: a Bitcask-style log-structured hash.
 *
 * One handle owns one directory.  A node opens one per partition replica; the
 * engine itself knows nothing of partitions, networks or objects: keys and
 * values are opaque bytes.
 *
 * THE LOG AND THE KEY DIRECTORY
 *   Every put and delete appends one checksummed record to the *active* data
 *   file.  When it reaches max_file_size it becomes immutable, gets a hint file
 *   and a new active file begins.  An in-memory key directory (keydir) maps
 *   every live key to the (file, offset, size) of its newest record; a get is
 *   one keydir probe and one pread.  Invariant: for every key, the keydir
 *   entry is the location of the newest record for that key across all data
 *   files, in file-id order then offset order, and a key is absent from the
 *   keydir iff that newest record is a tombstone or there is none.  Recovery
 *   rebuilds exactly this from the files; keydir_check() verifies it in tests.
 *
 * WHAT SURVIVES A CRASH
 *   sync = always:   every put/delete that returned 0 is on disk (fdatasync
 *                    of the active file; group commit: writers queue, and the
 *                    one at the head writes every queued record in one pwrite
 *                    and covers them all with one fdatasync).
 *   sync = interval: a background thread fdatasyncs every sync_interval_ms;
 *                    a process crash loses nothing (the page cache survives),
 *                    a power loss at most that interval.
 *   sync = none:     the kernel writes back when it likes.
 *   A record torn by a crash at the tail of the newest file is cut off at
 *   open; a bad record elsewhere is skipped, counted and logged.
 *
 * WHERE THE FSYNCS ARE
 *   - the active file: per the sync policy, and always when it is rotated;
 *   - every hint file and merge output before it is renamed into place;
 *   - the directory after every create, rename and batch of unlinks.
 *   A failed write or fsync makes the store *failed*: every later write returns
 *   DKV_EFAILED until it is closed and reopened.  Nothing is ever retried and
 *   reported as success.
 *
 * MERGE
 *   A work round (THREADS below) rewrites the live records of all immutable
 *   files into new files (ids just above the newest input, below the active
 *   file), with
 *   hint files; fsyncs them, renames them in, fsyncs the directory, moves the
 *   keydir entries that still point at the old records, then unlinks the old
 *   files oldest first.  Tombstones are dropped only there: every older record
 *   of the key is in the same merge and is dropped with it.  Oldest-first
 *   unlinking means that at any crash point a remaining tombstone still
 *   shadows every remaining older value.  Reads and writes go on meanwhile.
 *
 * THREADS
 *   Every function here may be called from any thread, concurrently.  Writes
 *   are serialised by one mutex (held for the append itself); gets take only
 *   the lock of their key directory shard and copy the value out of a
 *   read-only mapping of the data file.  Under sync=always, writers wait in
 *   a queue while the one at its head writes and syncs for all of them.
 *   Background work -- the hint file of each rotated file, the merge checks
 *   every merge_check_ms, merges -- runs in *work rounds*: every queued hint
 *   job, then one merge if one was requested or the thresholds want one.
 *   Who runs the rounds is the owner's choice:
 *     - by default each open store starts its own worker thread for them
 *       (and, with sync = interval, a syncer thread): the engine works on
 *       its own, as in the tools and the benchmarks;
 *     - with external_worker the store starts no worker thread.  The owner
 *       asks bitcask_work_pending() (after writes, and at least every
 *       merge_check_ms) and runs bitcask_work() on a thread of its own: a
 *       node with 512 stores runs them all on one small pool (DESIGN
 *       section 8) instead of 512 threads.  Until then rotated files have
 *       no hint (an open scans them instead) and no merge happens.
 *   Rounds never overlap: a round waits for one running in another thread.
 *   bitcask_close() waits for rounds running in other threads (a merge
 *   stops at its next 1024 records once close begins) and writes the hint
 *   files still queued itself.  No bitcask_work() or bitcask_merge() may
 *   *begin* after bitcask_close() has been called (the handle is freed).
 *
 * OWNERSHIP
 *   Keys and values passed in are borrowed for the call.  bitcask_get() returns
 *   a malloc'd value the caller frees with free().  An iterator borrows the
 *   store: close it before bitcask_close().
 */
#ifndef DKV_BITCASK_H
#define DKV_BITCASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcio.h"

typedef struct bitcask bitcask;
typedef struct bitcask_iter bitcask_iter;

typedef enum bitcask_sync {
	BITCASK_SYNC_NONE = 0,      /* never fsync the active file */
	BITCASK_SYNC_INTERVAL,      /* background fdatasync every sync_interval_ms */
	BITCASK_SYNC_ALWAYS,        /* every write durable before it returns (group commit) */
	BITCASK_SYNC_MANUAL,        /* the caller runs bitcask_sync_now(); rotations and
	                             * close sync like INTERVAL, but no syncer thread */
} bitcask_sync;

/* Logging hook: level 0 = error, 1 = warning, 2 = info, 3 = debug. */
typedef void (*bitcask_log_fn)(void *ctx, int level, const char *msg);

typedef struct bitcask_config {
	uint64_t max_file_size;      /* rotate the active file past this (bytes; <= 4 GiB - 1) */
	uint32_t max_key_size;       /* refuse longer keys with DKV_ETOOBIG (<= 65535) */
	uint32_t max_value_size;     /* refuse larger values with DKV_ETOOBIG */
	bitcask_sync sync;           /* durability policy, see above */
	uint32_t sync_interval_ms;   /* for BITCASK_SYNC_INTERVAL */
	double merge_frag_threshold; /* merge when a file's dead/total bytes reaches this (0..1; 0 = off) */
	uint64_t merge_dead_bytes;   /* ... or when a file holds this many dead bytes (0 = off) */
	uint64_t merge_min_bytes;    /* never merge automatically below this much immutable data */
	uint32_t merge_check_ms;     /* how often the worker checks the thresholds (external_worker:
	                              * how often the owner should ask bitcask_work_pending) */
	bool external_worker;        /* true: no worker thread; the owner runs bitcask_work()
	                              * (THREADS above).  sync = interval still starts a syncer */
	bool no_mmap;                /* true: read records with pread, not through a mapping */
	const bcio *io;              /* system-call table (NULL = the real one); tests inject faults */
	bitcask_log_fn log;          /* NULL = log to stderr */
	void *log_ctx;
} bitcask_config;

/* Fill *cfg with the defaults (see bitcask_config_init() in bitcask.c for
 * each value and why). */
void bitcask_config_init(bitcask_config *cfg);

/* Open (creating it if needed) the store in `dir`.  Takes an exclusive lock on
 * dir/LOCK: a second opener, in this process or another, gets DKV_ELOCKED and
 * a message in err naming the holder's pid.  Recovers the keydir from hint and
 * data files.  Returns 0 and *out, or an error with a reason in err. */
int bitcask_open(bitcask **out, const char *dir, const bitcask_config *cfg,
		 char *err, size_t errlen);

/* Sync (per policy, always for SYNC_ALWAYS/INTERVAL), stop the background
 * threads and wait for work rounds running in other threads (a running
 * merge stops at its next 1024 records), write queued hint files, release
 * the lock and free everything.  Returns the first error seen, if any. */
int bitcask_close(bitcask *bc);
/* The same for a store about to be deleted: no sync, no hint files (its
 * queued ones are dropped), nothing written.  Returns 0. */
int bitcask_close_discard(bitcask *bc);

/* Store value under key.  0, DKV_ETOOBIG, DKV_EFAILED, DKV_ECLOSED or -errno.
 * With SYNC_ALWAYS, 0 means the record is on disk. */
int bitcask_put(bitcask *bc, const void *key, size_t key_len,
		const void *value, size_t value_len);

/* Fetch key's value: 0 and *value (malloc'd, caller frees) and *value_len;
 * DKV_ENOTFOUND; DKV_ECORRUPT if the record on disk fails its checksum;
 * -errno. */
int bitcask_get(bitcask *bc, const void *key, size_t key_len,
		void **value, size_t *value_len);

/* Delete key by appending a tombstone.  0 (also when the key was absent: the
 * tombstone is still written, since an older file may hold the key after a
 * partial recovery), or an error as bitcask_put. */
int bitcask_delete(bitcask *bc, const void *key, size_t key_len);

/* fdatasync the active file now, whatever the policy.  0, DKV_EFAILED or -errno. */
int bitcask_sync_now(bitcask *bc);

/* Merge now and wait for it to finish (if one is running, wait for it and
 * then for a new one, so that every file immutable at the call is merged).
 * By default the merge runs on the store's worker thread; with
 * external_worker it runs in the calling thread, as one work round (after a
 * round running in another thread ends).  0 (also when there was nothing
 * to merge), DKV_ECLOSED if the store closed meanwhile, or the error that
 * failed the merge (the store then keeps its old files). */
int bitcask_merge(bitcask *bc);

/* True iff background work waits: a hint file to write, a merge requested,
 * or the merge thresholds met.  Takes the store's mutex briefly and walks
 * the file table (a few dozen entries): cheap, any thread.  False once the
 * store is closing. */
bool bitcask_work_pending(bitcask *bc);

/* Run one work round (THREADS above) in the calling thread: every queued
 * hint file, then one merge if requested or wanted.  Meant for stores
 * opened with external_worker (with a worker thread it is serialised with
 * it all the same).  Any thread; if a round runs in another thread, the
 * caller WAITS for it to end and then runs its own, so that when it
 * returns the work pending at the call is done.  0, the merge's error (the
 * store keeps its old files; the thresholds will want the merge again), or
 * DKV_ECLOSED once close has begun.  Takes as long as a merge: never on an
 * event loop. */
int bitcask_work(bitcask *bc);

/* Close the active file (making it immutable, with a hint file) and start a
 * new one.  Used by tests and before a merge on demand. */
int bitcask_rotate(bitcask *bc);

/* ITERATION
 * Visits live keys in an order fixed for the life of the store handle.  While
 * writes, deletes and merges go on, every key that is live for the whole
 * iteration is visited exactly once; a key put or deleted meanwhile may or may
 * not be; the value given is the one current when the key is visited.
 *
 *   bitcask_iter *it;
 *   bitcask_iter_open(bc, &it);
 *   while ((rc = bitcask_iter_next(it, &k, &klen, &v, &vlen)) == 0) { ... }
 *   bitcask_iter_close(it);
 *
 * bitcask_iter_next returns 0 with the next key and value (both borrowed until
 * the next call or close), DKV_ENOTFOUND at the end, or an error.  A key whose
 * record fails its checksum when read is skipped (and counted in read_errors
 * and logged): one bad record must not stop a whole handoff.  With
 * want_values false the value pointers are set to NULL and no value is read. */
int bitcask_iter_open(bitcask *bc, bool want_values, bitcask_iter **out);
int bitcask_iter_next(bitcask_iter *it, const uint8_t **key, size_t *key_len,
		      const uint8_t **value, size_t *value_len);
void bitcask_iter_close(bitcask_iter *it);

/* STATISTICS */
typedef struct bitcask_file_stats {
	uint64_t id;            /* file id (the file name in hex) */
	uint64_t total_bytes;   /* size of the data file */
	uint64_t live_bytes;    /* bytes of records the keydir points to */
	uint64_t dead_bytes;    /* bytes of superseded records and tombstones */
	uint64_t live_keys;     /* keydir entries pointing into this file */
	bool active;            /* true iff this is the file being appended to */
	bool has_hint;          /* true iff a valid hint file exists for it */
} bitcask_file_stats;

typedef struct bitcask_stats {
	uint64_t keys;              /* live keys */
	uint64_t live_bytes;        /* sum over files */
	uint64_t dead_bytes;        /* sum over files */
	uint64_t total_bytes;       /* sum of data file sizes */
	double fragmentation;       /* dead / total, 0..1 */
	uint64_t keydir_bytes;      /* memory held by the key directory */
	uint64_t files;             /* data files */
	uint64_t merges;            /* completed merges since open */
	bool merging;               /* true iff a merge is running now */
	uint64_t merge_bytes_in;    /* bytes read by the last completed merge */
	uint64_t merge_bytes_out;   /* bytes written by it */
	double merge_seconds;       /* its duration */
	uint64_t corrupt_records;   /* bad records skipped at open */
	uint64_t truncated_bytes;   /* torn tail cut off at open */
	uint64_t hint_loads;        /* files recovered from their hint file at open */
	uint64_t data_scans;        /* files recovered by scanning at open */
	uint64_t read_errors;       /* gets that found a record failing its checksum */
	uint64_t syncs;             /* fdatasync calls on active files */
	uint64_t writes;            /* puts and deletes appended */
	bool failed;                /* true iff the store refuses writes after an I/O error */
	int failed_rc;              /* the error that failed it */
} bitcask_stats;

/* Fill *st; if files is non-NULL, also up to *nfiles per-file entries, and set
 * *nfiles to the number of data files. */
void bitcask_stats_get(bitcask *bc, bitcask_stats *st,
		       bitcask_file_stats *files, size_t *nfiles);

/* Verify every internal invariant (keydir vs. file table, counters); returns
 * 0 or a description of the first violation in err and -1.  For tests. */
int bitcask_check(bitcask *bc, char *err, size_t errlen);

#endif /* DKV_BITCASK_H */
