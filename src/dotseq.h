/*
 * dotseq.h -- where this node's version-vector counters come from.
 *
 * A write this node coordinates gets a dot (actor, counter).  Were the
 * counter the key's last counter plus one, it would start again for a key
 * whose history has been reaped (tombstone_grace passed, every copy gone),
 * and a version from before the reap -- handed off late by a fallback,
 * or sitting on a disk that was away -- would carry the same dot as, or a
 * larger one than, the new write, and shadow it.  Riak lost writes exactly
 * this way (riak_kv#679, "KV679").  So counters come from one sequence per
 * node, persisted, that only grows: a new dot's counter is the larger of
 * the sequence and the key's counter plus one, and the sequence moves past
 * it.  A dot is then never given out twice by this actor, whatever was
 * reaped; and a node that loses its disk comes back with a new actor
 * (datadir.h), so it cannot reuse one either.
 *
 *   DATA_DIR/DOTS   "format = 1", "reserved = N" and "epoch = E" lines,
 *                   written whole (dkv_file_replace): no counter >= N has
 *                   been given out, and E is the last epoch that may have
 *                   given one (a file without an epoch line: 0).
 *
 * The file reserves blocks of DOTSEQ_BLOCK counters: it is rewritten
 * (write, fsync, rename, directory fsync, on the loop: about a millisecond)
 * before the first counter of a new block is given out, so once per start
 * and once per DOTSEQ_BLOCK writes.  After a crash, even a power loss,
 * the sequence resumes at the reserved mark, above every counter given
 * out; what a crash skips is never used (2^64 counters leave room for
 * 2^44 restarts).  Keys written before DOTS existed keep working: their
 * counters are small, and the key's own counter plus one still bounds the
 * new dot from below.
 *
 * Vectors stay what they were: an entry (actor, c) means "has seen every
 * dot of this actor for this key up to c"; the counters this actor gives
 * one key only grow, so skipping numbers changes nothing in the merge.
 *
 * EPOCHS: ONE ACTOR PER PROCESS
 *   That meaning needs the coordinator's own copy of a key to hold every
 *   dot its actor gave the key: a new write's vector entry (actor, c)
 *   claims them all.  A process that loses what it wrote (a power loss
 *   under sync = interval: the replicas it pushed to have the write, its
 *   own disk does not) would break it: its next blind write to the key
 *   would claim, and so silently drop everywhere, an acknowledged write
 *   it no longer holds.  So the actor in dots is not the data directory's
 *   but one per epoch: DOTS records the epoch, every start takes the next
 *   one (written with the first reservation, before the first dot), and
 *   the dot actor is SipHash(node actor, epoch) under a fixed key.  A
 *   vector then gains an entry per process that wrote the key (pruned past
 *   vclock_max, oldest first, as ever); a lost write of an earlier process
 *   is covered by no later vector, and stays a sibling until a context
 *   that saw it supersedes it (Riak's per-incarnation vnode actors answer
 *   the same problem).
 *
 * Loop thread only.
 */
#ifndef DKV_DOTSEQ_H
#define DKV_DOTSEQ_H

#include <stdint.h>
#include <stddef.h>

#define DOTSEQ_BLOCK (UINT64_C(1) << 20)

typedef struct dotseq dotseq;

/* Load DIR/DOTS (none: the sequence starts at 1).  Writes nothing.
 * 0, DKV_ECORRUPT or DKV_EVERSION (err says why), -errno, -ENOMEM. */
int dotseq_open(dotseq **out, const char *dir, char *err, size_t errlen);
void dotseq_free(dotseq *ds);

/* The smallest counter that may be given out next. */
uint64_t dotseq_next(const dotseq *ds);
/* Counter c (>= dotseq_next) is about to be given out: the sequence moves
 * past it, reserving (and persisting) a new block first when c is beyond
 * the reserved one.  0, or -errno when DOTS cannot be written (nothing is
 * given out then: refuse the write). */
int dotseq_take(dotseq *ds, uint64_t c);
/* The reserved mark as recorded on disk (for tests and status). */
uint64_t dotseq_reserved(const dotseq *ds);
/* This process's epoch, and its actor in dots, derived from the data
 * directory's actor (never 0). */
uint64_t dotseq_epoch(const dotseq *ds);
uint64_t dotseq_actor(const dotseq *ds, uint64_t node_actor);

#endif /* DKV_DOTSEQ_H */
