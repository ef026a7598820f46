/*
 * simfault.h -- the simulated fault suite (issue 11): one seed is one
 * whole cluster, a workload, a schedule of faults, healing, and a checker.
 *
 * ONE RUN (sf_run)
 *   From the seed: 3..max_nodes nodes (ring_size 64, N = 3) on one
 *   simworld (tests/unit/simworld.h), every store's system calls through
 *   powerio (tests/unit/powerio.h), sync = always or interval.  Hash keys
 *   (siphash_key_random_fix) and each node's actor (a NODE file written
 *   before the first open) come from the seed too: the run, and the trace
 *   hash of every reply and fault event it makes, is a function of the
 *   seed alone.
 *     1. the cluster forms (every node sees every member);
 *     2. RUN: for run_ms virtual, ops start at seeded times, concurrently,
 *        each at a random live coordinator with random R/W/PR/PW: gets,
 *        blind puts, puts with the context of an earlier get of the key,
 *        replace-mode puts, deletes with a context or in replace mode.
 *        Values are unique per write, "k<key>#w<op>", so a sibling names
 *        the write it came from.  Meanwhile the faults of the schedule
 *        start and end, each bounded: network loss/duplication/delay/
 *        reordering; partitions cutting one node off, a minority, a
 *        majority, one direction only, or one that moves from node to
 *        node; kill -9 (powerio_resume: everything written survives);
 *        power loss (powerio_power_loss: only what was synced survives);
 *        pauses longer than suspect_timeout; disk faults (EIO or ENOSPC
 *        on the nth write or sync of a node's stores, sticky: the store
 *        fails stop), repaired by a restart.  At most one fault per node
 *        at a time, one partition and one network fault at a time.
 *     3. HEAL: partitions healed, the network clean, nodes restarted or
 *        resumed, disks repaired; the ops still open are given their
 *        timeout; then, bounded in virtual time, until every node holds
 *        no hint (`hints` pending 0) and every partition's replicas are
 *        ready with the same anti-entropy root (`aae`).
 *     4. CHECK (below).
 *
 * THE CHECKER
 *   It reads each node's own copy of every key (node_local_object) and
 *   knows what the workload did: which op wrote which value, when each op
 *   was issued and answered (end: the answer's time; never answered: +inf)
 *   and, for a get, which values it showed.  It asserts:
 *   - SAME: the key's primaries hold equal objects (encodings), and every
 *     partition's replicas the same root (the healing wait);
 *   - KNOWN: every value held is one the workload wrote, for that key;
 *   - KEPT: every acknowledged put is a sibling at every primary, unless
 *       COVERED: another write x of the key, whatever its outcome (a write
 *       that failed or timed out may still have been applied), could have
 *       superseded it: x is replace-mode and end(x) > issue(w) (its read
 *       could have seen w) or x failed or timed out (then it may run at any
 *       time: a paused coordinator applies a forwarded write when it
 *       resumes, long after the client heard the error), or x carries the
 *       context of a get that showed
 *       w.  (A context covers a dot it did not show only through a write
 *       that covered it first: that write covers w itself, so these two
 *       rules are the whole closure.)  Puts' OK contexts are not used.
 *     or EXEMPT (sync = interval only; with sync = always nothing
 *       acknowledged is ever exempt): at least max(W, PW) distinct nodes
 *       -- as many as acknowledged it -- lost power in
 *       [issue(w), end(w) + sync_interval + sync delay + longest pause +
 *       100 ms], the span in which an acknowledging node may not have
 *       synced it yet.  A node whose disk failed never loses power after
 *       (its failed syncs would stretch that span without bound).
 *   - GONE: no deleted (superseded) value reappears: a value shown by the
 *     get whose context an acknowledged, non-exempt write (put or delete)
 *     carried is held by no primary.
 *
 * OWNERSHIP
 *   sf_run owns everything it makes and frees it before returning; the
 *   data directories live under /dev/shm and are removed (kept with
 *   keep_dirs, for a post-mortem).  One run at a time per process (powerio
 *   is process-wide).
 */
#ifndef DKV_SIMFAULT_H
#define DKV_SIMFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The fault kinds, counted per run. */
#define SF_FAULTS(X)                  \
	X(NET,        "net")          \
	X(PART_ONE,   "part-one")     \
	X(PART_MINOR, "part-minority")\
	X(PART_MAJOR, "part-majority")\
	X(PART_ONEWAY,"part-oneway")  \
	X(PART_MOVE,  "part-moving")  \
	X(KILL,       "kill-9")       \
	X(POWER,      "power-loss")   \
	X(PAUSE,      "pause")        \
	X(DISK,       "disk")

typedef enum sf_fault_kind {
#define SF_ENUM_(name, str) SF_##name,
	SF_FAULTS(SF_ENUM_)
#undef SF_ENUM_
	SF_NFAULTS
} sf_fault_kind;

const char *sf_fault_name(sf_fault_kind k);

typedef struct sf_opts {
	uint32_t max_nodes;      /* 3..7: nodes drawn in [3, max_nodes] */
	bool verbose;            /* true iff every op and fault is printed */
	bool keep_dirs;          /* true iff the data directories are kept */
} sf_opts;

typedef struct sf_result {
	bool ok;                 /* true iff the checker found nothing */
	char why[4096];          /* the first failures, when !ok */
	uint64_t trace;          /* hash of every reply and fault event */
	uint32_t nodes;          /* cluster size drawn */
	bool sync_always;        /* true iff sync = always (else interval) */
	uint64_t ops, acked;     /* ops issued; acknowledged (OK or VALUE) */
	uint64_t faults[SF_NFAULTS]; /* faults injected, by kind */
	uint64_t joins, leaves;  /* membership changes made during the run */
	uint64_t exempt;         /* acknowledged writes exempt by power loss */
	uint64_t heal_ms;        /* virtual ms from heal to converged */
} sf_result;

void sf_opts_init(sf_opts *o);
/* Run one seed (see ONE RUN); the verdict and figures in *res. */
void sf_run(uint64_t seed, const sf_opts *o, sf_result *res);

#endif /* DKV_SIMFAULT_H */
