/*
 * powerio.h -- a storage engine I/O table (bcio.h) that knows what a power
 * loss would keep.
 *
 * The simulated cluster tests run many nodes in one process and crash them.
 * A crash of a process (kill -9) keeps every byte written: the page cache
 * survives.  A power loss keeps only what was made durable.  powerio wraps
 * the real system calls on real files (data directories under /dev/shm or a
 * temporary directory) and keeps, beside them, the durable state of every
 * file the engine touches through the table, so that a power loss can be
 * applied to the real files in one call, exactly and fast.
 *
 * THE MODEL (a strict POSIX reading, the worst a file system may do)
 *   - A file's durable *content* is its content as of its last successful
 *     fsync or fdatasync (the two are the same here: fdatasync also syncs a
 *     changed size, which is all the engine asks of it).  Never synced:
 *     empty.  A failed fsync changes nothing.
 *   - A directory's durable *names* are its names as of its last successful
 *     fsync.  A create, rename or unlink is durable only once the directory
 *     is fsynced afterwards; until then a power loss undoes it: a created
 *     file vanishes, a renamed file is back under its old name with its
 *     durable content, an unlinked one comes back, a file replaced by a
 *     rename comes back with its own durable content.
 *   - Power loss: every durable name of every directory under the root gets
 *     the durable content of the file it named; every other name goes.
 *
 * HOW IT TRACKS THAT, AND WHAT IT COSTS
 *   Per file: its current name, its durable name, its durable length and,
 *   only when the real file no longer holds the durable bytes, a copy of
 *   them in memory (the *image*).  The engine appends (pwrite at the end)
 *   and syncs: then the real file's first `durable length` bytes ARE the
 *   durable content, a sync only records the new length (one fstat), and a
 *   power loss is one ftruncate.  The image is taken, by reading the durable
 *   bytes from the real file, just before something would destroy them: a
 *   pwrite or ftruncate below the durable length, an open with O_TRUNC, an
 *   unlink or a rename onto the file while the file has a durable name.  It
 *   is dropped at the next sync (or dir fsync that forgets the name).  The
 *   engine does these only for hint and merge temporaries and recovery's
 *   torn-tail cut, so memory stays near zero; a full shadow copy of every
 *   file would double the memory of the sims and cost a copy per sync.
 *   Every call takes one mutex and makes its system call under it: calls
 *   are serialised (cheap on a memory file system), and a crash falls
 *   between two calls, never inside one.
 *
 * APPROXIMATIONS (say so when a sim depends on them)
 *   - bitcask opens its directory with plain open() (not through the table)
 *     and fsyncs it through the table's fsync.  An fsync on a descriptor
 *     the table did not open is recognised as a directory fsync by fstat
 *     (S_ISDIR) and matched to a directory powerio tracks by device and
 *     inode.  No engine change was needed.
 *   - Directories themselves (the mkdir of a store's directory, never
 *     fsynced in its parent) are durable at once; only the files in them
 *     are modelled.  So is the removal of a whole directory outside the
 *     table (vnode_drop's nftw of a delivered hint store): a power loss
 *     forgets the files of a directory that no longer exists, instead of
 *     failing with ENOENT.
 *   - Files never touched through the table (LOCK, written with plain
 *     open(); the node's own files; anything present before powerio saw
 *     it) are left as they are by a power loss.  A file already present is
 *     *adopted* at the first call that touches it: taken as durable, under
 *     its name, with its present content.
 *   - A rename across directories fails with EXDEV (the engine never does
 *     one; modelling a name in two directories' durable sets is not worth it).
 *   - A real file system often keeps more than this (ext4's journal commits
 *     unsynced creates, writeback keeps parts of unsynced appends).  With a
 *     nonzero seed powerio_power_loss() also keeps a seeded random prefix
 *     of each file's unsynced appended tail (a torn tail; real writeback is
 *     page-granular and unordered, a prefix is the kind the engine claims to
 *     handle).  Overwrites below the durable length are always undone.
 *   - Nothing may change tracked files behind powerio's back (rm -rf of a
 *     node's directory): powerio_forget() the root first.
 *
 * USAGE (one node's stores under `root`)
 *
 *   powerio *pio = powerio_new();            // one per process (see below)
 *   cfg.io = powerio_bcio(pio);              // every store of the node
 *   bitcask_open(..., root/p0, &cfg, ...);   // put, delete, sync, merge ...
 *
 *   power loss:                              kill -9:
 *     powerio_crash(pio, root);                powerio_crash(pio, root);
 *     bitcask_close(each store);               bitcask_close(each store);
 *     powerio_power_loss(pio, root, seed);     powerio_resume(pio, root);
 *     bitcask_open(...) again                  bitcask_open(...) again
 *
 *   powerio_crash() is the instant of the crash: from its return every call
 *   under root that would change a file (pwrite, ftruncate, fsync,
 *   fdatasync, rename, unlink, open with O_CREAT or O_TRUNC) fails with EIO
 *   and changes nothing, so bitcask_close() -- which would otherwise sync the
 *   active file and write hints -- only releases memory, descriptors and
 *   threads, as a dead process would.  Reads and close still work.  Then
 *   powerio_power_loss() resets the files under root to their durable state
 *   (it refuses with -EBUSY while a descriptor under root is open: close
 *   the stores first), or powerio_resume() keeps everything written (the
 *   page cache survived; what was not synced is still not durable, and a
 *   later power loss still loses it).  Either way root takes writes again.
 *
 * FAULTS
 *   powerio_fault() makes the nth pwrite/ftruncate (POWERIO_WRITE) or
 *   fsync/fdatasync (POWERIO_SYNC, directories included) under a root fail
 *   with an errno (EIO, ENOSPC), once or, sticky, from then on (a dead
 *   disk).  A failed call changes nothing, on disk or in the durable state.
 *
 * THREADS AND OWNERSHIP
 *   The bcio table carries no context pointer, so the table's functions find
 *   the state through one process-wide pointer: at most one powerio exists
 *   at a time (powerio_new() asserts it).  The sims run one per process, and
 *   Criterion runs each test in a process of its own.  Every function may be
 *   called from any thread.  Paths passed in are borrowed for the call.
 */
#ifndef DKV_TESTS_POWERIO_H
#define DKV_TESTS_POWERIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bcio.h"

typedef struct powerio powerio;

typedef enum powerio_op {
	POWERIO_WRITE = 0,      /* pwrite and ftruncate */
	POWERIO_SYNC,           /* fsync and fdatasync, of files and directories */
	POWERIO_NOPS
} powerio_op;

/* The one powerio of the process (asserts there is no other).  Caller frees
 * with powerio_free(). */
powerio *powerio_new(void);
/* Forget everything (files stay as they are).  No store may be open. */
void powerio_free(powerio *p);

/* The table to put in bitcask_config.io.  Static storage, valid until
 * powerio_free(). */
const bcio *powerio_bcio(powerio *p);

/* The crash instant for every file under root (a directory that exists):
 * from now on calls that would change them fail with EIO.  0 or -errno. */
int powerio_crash(powerio *p, const char *root);
/* After powerio_crash() and with no descriptor open under root: reset every
 * file under root to its durable state (THE MODEL), seed 0 exactly, else
 * keeping a seeded random prefix of each unsynced appended tail; then take
 * writes again.  What survives is durable from then on.  0, -EBUSY (a
 * descriptor is open under root), -EINVAL (root not crashed) or -errno. */
int powerio_power_loss(powerio *p, const char *root, uint64_t seed);
/* After powerio_crash(): keep everything written (kill -9) and take writes
 * again.  0 or -EINVAL (root not crashed). */
int powerio_resume(powerio *p, const char *root);

/* Fail the nth (1-based, counted from this call) call of op under root with
 * err; then every later one too if sticky.  nth 0 disarms, and only counts.
 * 0 or -errno. */
int powerio_fault(powerio *p, const char *root, powerio_op op, unsigned long nth,
		  int err, bool sticky);
/* Calls of op under root since the last powerio_fault() for root, and how
 * many of them were failed. */
unsigned long powerio_calls(powerio *p, const char *root, powerio_op op);
unsigned long powerio_fired(powerio *p, const char *root);

/* Drop every record under root (before the caller removes it).  0 or
 * -EBUSY while a descriptor is open under root. */
int powerio_forget(powerio *p, const char *root);

/* Bytes written under root that a power loss now would lose (appended past
 * the durable length, plus whole files with no durable name).  For tests
 * and sim statistics. */
uint64_t powerio_unsynced_bytes(powerio *p, const char *root);

/* Verify powerio's invariants against the real files; 0, or -1 and the
 * first violation in err.  For tests. */
int powerio_check(powerio *p, char *err, size_t errlen);

#endif /* DKV_TESTS_POWERIO_H */
