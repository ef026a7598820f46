/*
 * datadir.h -- a node's data directory: its lock and its identity.
 *
 *   DATA_DIR/LOCK   flock(2)ed while the node runs; holds the pid, so that
 *                   a second dynkvd on the directory can name the first.
 *   DATA_DIR/NODE   identity and ring settings: "key = value" lines for
 *                   format, node_id, actor, ring_size and n_val, written
 *                   whole (dkv_file_replace) when the node is created and
 *                   never changed after.
 *
 * `actor` is a random 64-bit id drawn when NODE is created: the node's name
 * in version vectors.  A node that loses its disk comes back with a new
 * actor, so it can never reuse a counter it gave out before.  ring_size and
 * n_val are the cluster's; a configuration that names other values than
 * NODE records is refused, but only for settings given explicitly (a
 * default yields to what the directory records).
 *
 * Identity is loaded and recorded in two steps, so that a node records
 * nothing until it knows it can serve (datadir_identity_load() reads NODE
 * or draws a new identity in memory, at node_open; datadir_identity_record()
 * writes it, at node_start, once the node's address is bound): a start
 * that fails to bind leaves no NODE naming the address it could not have.
 *
 * The actor is the node's identity in its cluster too (cluster.h,
 * IDENTITY): the data directory is the node, whatever its address or id.
 *
 * Everything here runs on the caller's thread and blocks on the disk; it is
 * for start-up, not for the loop.
 */
#ifndef DKV_DATADIR_H
#define DKV_DATADIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dkv_config.h"

typedef struct datadir datadir;

typedef struct datadir_identity {
	char node_id[256];     /* the node's id in the ring */
	uint64_t actor;        /* its name in version vectors (never 0) */
	uint32_t ring_size;    /* partitions in the ring */
	uint32_t n_val;        /* replicas per partition */
	bool created;          /* true iff NODE does not exist yet: record() writes it */
} datadir_identity;

/* Create path if missing and take its LOCK.  0; DKV_ELOCKED when another
 * process holds it (err names its pid); -errno.  err says why. */
int datadir_open(datadir **out, const char *path, char *err, size_t errlen);

/* Read NODE into *id, or when there is none, draw a new identity from cfg
 * (id->created true; nothing is written).  DKV_EINVAL when cfg conflicts
 * with NODE (err names both values), DKV_ECORRUPT or DKV_EVERSION for a
 * NODE this program cannot use, -errno. */
int datadir_identity_load(datadir *d, const dkv_config *cfg, datadir_identity *id,
			  char *err, size_t errlen);

/* Write NODE for an identity load() created (a no-op otherwise) and clear
 * id->created.  0 or -errno with err filled. */
int datadir_identity_record(datadir *d, datadir_identity *id, char *err, size_t errlen);

/* The directory's path (borrowed until datadir_close). */
const char *datadir_path(const datadir *d);

/* Release the lock and free d (NULL is fine). */
void datadir_close(datadir *d);

#endif /* DKV_DATADIR_H */
