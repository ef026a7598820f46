/*
 * bitcask_int.h -- the storage engine's private layout, shared by bitcask.c,
 * recover.c and merge.c (and their tests).  Not installed, not for other
 * modules.
 *
 * LOCKS
 *   bc->mu serialises every change: the file table, every bc_file counter,
 *   the active file's append offset and hint buffer, write_seq, failed_rc,
 *   the statistics, the writer queue, the job list and the work-round state
 *   (working, users, merge_requested, merge_gen); and every
 *   keydir change is made with it held.  It is held for memory work and for
 *   the append itself (a pwrite into the page cache), never across a read of
 *   a record or an fsync -- except the fsync of the old active file on
 *   rotation, once per max_file_size bytes.
 *   The keydir has its own shard locks, taken inside bc->mu by writers and
 *   alone by gets: a get finds the location and takes a reference on the
 *   data file under its shard's lock (bc_file_at() needs no bc->mu: the file
 *   table never moves), then copies the record out of the file's mapping
 *   with no lock at all.  A merge moves every key out of a file, under the
 *   same shard locks, before it forgets the file, so the reference is always
 *   taken on a live file; the last reference unmaps and closes it.
 *   bc->sync_mu guards the interval syncer's state (synced_seq, syncing,
 *   sync_err).
 *   Order: mu, then a keydir shard, then the keydir allocator; mu before
 *   sync_mu; nobody takes mu while holding sync_mu or a shard lock.
 *
 * FILE IDS
 *   64-bit, written as 16 hex digits in file names.  A new active file takes
 *   ((newest id >> 16) + 1) << 16; merge outputs take newest-input + 1, + 2,
 *   ..., which sort after every input and before every later active file.
 *   Recovery replays files in id order, so "newest record wins" survives
 *   merges.
 */
#ifndef DKV_BITCASK_INT_H
#define DKV_BITCASK_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bitcask.h"
#include "keydir.h"
#include "record.h"

#define BC_ID_SUB_BITS 16

/* The file table is read without bc->mu by gets (under the keydir shard lock
 * that published the file number), so it never moves: chunks of 1024
 * pointers, allocated as needed, 4M file numbers over a store's life. */
#define BC_FILE_CHUNK_BITS 10
#define BC_FILE_CHUNK      (1u << BC_FILE_CHUNK_BITS)
#define BC_FILE_CHUNKS     4096u

typedef struct bc_file {
	uint64_t id;            /* file id; the name is id in 16 hex digits */
	uint32_t fileno;        /* index in bc->files, what the keydir stores */
	int fd;                 /* open for reading (and appending if active) */
	uint64_t size;          /* bytes in the file (active: the append offset) */
	uint64_t live_bytes;    /* bytes of records the keydir points to */
	uint64_t dead_bytes;    /* bytes of superseded records and tombstones */
	uint64_t live_keys;     /* keydir entries pointing here */
	bool has_hint;          /* true iff a valid hint file is on disk */
	atomic_int refs;        /* the file table's one, plus readers and merges */
	const uint8_t *map;     /* read-only mapping of the file, or NULL: read with pread */
	size_t map_len;         /* bytes mapped (active file: max_file_size) */
	const bcio *io;         /* to close fd on the last unref */
} bc_file;

/* A growable buffer of hint entries for one data file. */
typedef struct bc_hintbuf {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
	bool broken;            /* true iff an allocation failed: write no hint */
} bc_hintbuf;

/* A writer waiting in the group-commit queue (sync = always).  Lives on the
 * writer's stack; every field is guarded by bc->mu. */
typedef struct bc_writer {
	struct bc_writer *next; /* the next writer in the queue */
	const uint8_t *rec;     /* the encoded record (borrowed) */
	uint32_t size;          /* its size */
	const void *key;        /* its key (borrowed), for the keydir and hint */
	uint16_t key_len;
	uint8_t flags;
	uint64_t ts;
	int rc;                 /* the result, once done */
	bool done;              /* true iff a leader wrote and synced this record */
	pthread_cond_t cv;      /* signalled when done, or when it leads */
} bc_writer;

/* A job for the worker thread: write the hint file of an immutable file. */
typedef struct bc_job {
	struct bc_job *next;
	bc_file *file;          /* referenced */
	bc_hintbuf hint;        /* owned */
} bc_job;

struct bitcask {
	char *dir;                      /* the store's directory (owned) */
	int dirfd;                      /* open on dir, for fsyncs */
	int lockfd;                     /* holds the flock on dir/LOCK */
	bitcask_config cfg;             /* copy of the caller's */
	const bcio *io;                 /* system calls */

	pthread_mutex_t mu;             /* see LOCKS above */
	keydir *kd;                     /* key -> newest record */
	bc_file **files[BC_FILE_CHUNKS]; /* by fileno, in chunks that never move; NULL = gone */
	uint32_t nfiles;                /* filenos handed out so far */
	bc_file *active;                /* being appended to */
	bc_hintbuf active_hint;         /* hint entries of the active file */
	uint64_t write_seq;             /* appends so far */
	uint64_t max_id_seen;           /* largest data file id ever on disk, kept or not */
	uint64_t dir_gen;               /* data files created unsynced so far (sync != none) */
	uint64_t dir_synced;            /* dir_gen as of the last directory fsync after them */
	int failed_rc;                  /* 0, or the I/O error that failed the store */
	bool closing;                   /* true iff close has begun */
	bitcask_stats st;               /* counters kept under mu (derived ones filled on read) */

	bc_writer *wq_head;             /* group-commit queue: the head leads */
	bc_writer **wq_tail;
	uint8_t *gbuf;                  /* the leader's buffer for one group's records */
	size_t gbuf_cap;

	pthread_mutex_t sync_mu;        /* group commit */
	pthread_cond_t sync_cv;         /* broadcast when a sync ends */
	uint64_t synced_seq;            /* every append <= this is durable */
	bool syncing;                   /* true iff a thread is in fdatasync */
	int sync_err;                   /* sticky fdatasync error */

	pthread_cond_t work_cv;         /* wakes the worker */
	pthread_cond_t merge_done_cv;   /* broadcast when a work round ends or a caller leaves */
	bc_job *jobs;                   /* pending hint jobs, FIFO via jobs_tail */
	bc_job **jobs_tail;
	bool merge_requested;           /* true iff bitcask_merge() waits for a merge */
	uint64_t merge_gen;             /* merges finished (success or not) */
	int merge_rc;                   /* result of the last merge */
	bool working;                   /* true iff a thread runs a work round (bitcask.c) */
	uint32_t users;                 /* threads inside bitcask_work/bitcask_merge; close waits for 0 */
	bool stop;                      /* true iff the threads must exit */
	pthread_t worker;               /* hints and merges (none with external_worker) */
	pthread_t syncer;               /* interval fdatasync */
	bool have_worker, have_syncer;
	pthread_cond_t syncer_cv;       /* wakes the syncer early to stop */
};

/* The file with this number, or NULL. */
static inline bc_file *bc_file_at(const bitcask *bc, uint32_t fileno)
{
	bc_file **chunk = bc->files[fileno >> BC_FILE_CHUNK_BITS];
	return chunk ? chunk[fileno & (BC_FILE_CHUNK - 1)] : NULL;
}

/* Forget file number fileno (its chunk exists); caller holds bc->mu. */
static inline void bc_file_forget_locked(bitcask *bc, uint32_t fileno)
{
	bc->files[fileno >> BC_FILE_CHUNK_BITS][fileno & (BC_FILE_CHUNK - 1)] = NULL;
}

/* bitcask.c */
void bc_log(bitcask *bc, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void bc_file_unref(bc_file *f);
void bc_file_map(bitcask *bc, bc_file *f, size_t len);
int bc_file_register_locked(bitcask *bc, uint64_t id, int fd, uint64_t size, bc_file **out);
void bc_path(const bitcask *bc, char *out, size_t outlen, uint64_t id, const char *suffix);
int bc_fsync_dir(bitcask *bc);
uint64_t bc_now_us(void);
int bc_hint_add(bc_hintbuf *h, uint64_t ts, uint32_t off, uint32_t size, uint8_t flags,
		const void *key, uint16_t key_len);
void bc_hint_free(bc_hintbuf *h);
int bc_hint_write(bitcask *bc, uint64_t id, const bc_hintbuf *h, uint64_t data_size);
int bc_pread_full(const bcio *io, int fd, void *buf, size_t len, uint64_t off);
int bc_pwrite_full(const bcio *io, int fd, const void *buf, size_t len, uint64_t off);
void bc_apply_locked(bitcask *bc, bc_file *f, const uint8_t *key, uint16_t key_len,
		     uint8_t flags, uint32_t off, uint32_t size);
void bc_apply_hashed_locked(bitcask *bc, bc_file *f, uint64_t hash, const uint8_t *key,
			    uint16_t key_len, uint8_t flags, uint32_t off, uint32_t size);
void bc_fail_locked(bitcask *bc, int rc, const char *what);
int bc_write_records_locked(bitcask *bc, bc_writer *first, bc_writer *end, size_t glen);

/* recover.c: rebuild the keydir and the file table from dir. */
int bc_recover(bitcask *bc, char *err, size_t errlen);

/* merge.c: one merge of every immutable file; called by the worker. */
int bc_merge_run(bitcask *bc);
bool bc_merge_wanted_locked(bitcask *bc);

/* Reading a data file record by record, for recovery and merge. */
typedef struct bc_reader {
	const bcio *io;
	int fd;
	uint64_t file_size;
	uint8_t *buf;           /* window of the file */
	size_t cap;             /* allocated */
	uint64_t buf_off;       /* file offset of buf[0] */
	size_t buf_len;         /* valid bytes in buf */
	uint32_t max_rec;       /* bound for rec_decode */
	uint64_t zero_from;     /* every byte from here to the end is 0 (computed on demand) */
	bool zero_known;        /* true iff zero_from is computed */
} bc_reader;

int bc_reader_init(bc_reader *r, const bcio *io, int fd, uint64_t file_size, uint32_t max_rec);
void bc_reader_free(bc_reader *r);
/* Ensure bytes [off, off+len) are in the window (len may be cut at EOF);
 * returns a pointer to off and the bytes available from there. */
int bc_reader_at(bc_reader *r, uint64_t off, size_t len, const uint8_t **p, size_t *avail);

/* Outcome of scanning one record position. */
typedef enum bc_scan_result {
	BC_SCAN_RECORD,         /* a valid record at the position */
	BC_SCAN_EOF,            /* the position is the end of the file */
	BC_SCAN_BAD,            /* no valid record here; *next = next valid, or EOF if none */
} bc_scan_result;

/* Look at offset off: a valid record (in *rv, borrowed until the next call),
 * end of file, or garbage, in which case *next is the offset of the next
 * position where a valid record starts (file_size if none: a torn tail).
 * Returns <0 on an I/O error. */
int bc_reader_next(bc_reader *r, uint64_t off, rec_view *rv, uint64_t *next);

#endif /* DKV_BITCASK_INT_H */
