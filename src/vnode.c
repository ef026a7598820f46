#include "config.h"
/*
 * vnode.c -- the partition stores.  See vnode.h.
 */

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "dkv_file.h"
#include "dkv_thread.h"
#include "error.h"
#include "siphash.h"
#include "vnode.h"

/* Opening a store reads its hint files and builds its key directory: 512
 * of them on the loop, on first use, stalled a fresh node for seconds.  At start the node opens every
 * partition it holds on OPENERS threads at once (they end when the opening
 * does), the calling thread with them.  Those threads run OPENER_NICE
 * above the process's nice value: eight busy threads at the default priority took most of a
 * 2-core machine from the other nodes on it while one started (perf sched:
 * 0.45-0.68 of the CPU for 0.7 s; the other nodes' p50 went from 1 ms to
 * 60-160 ms).  Alone on its machine a node opens as fast as before. */
#define OPENERS 8
#define OPENER_NICE 19

typedef struct part {
	bitcask *bc;          /* NULL until opened */
	char *name;           /* extra stores: the path under the data directory */
	bool dirty;           /* appended to since its last sync batch began */
	bool working;         /* true iff a bitcask_work job runs for it */
	bool syncing;         /* true iff a durability batch holds it (vnode_take_dirty
	                       * until vnode_synced) */
} part;

struct vnode_set {
	vnode_config cfg;          /* dir points at dir below */
	char *dir;
	part *parts;               /* ring_size + VNODE_MAX_EXTRA entries */
	size_t nopen;              /* stores open */
	size_t ndirty;             /* parts with dirty set */
	msgpack_sbuffer ob;        /* an object being encoded */
	siphash_key hkey;          /* for comparing encodings */
	struct {
		vnode_observer_fn fn;
		void *ctx;
	} obs[VNODE_OBSERVERS];
	world_timer *work_timer;   /* the next look for background work */
	uint32_t work_next;        /* the partition to look at first */
	uint32_t nworking;         /* jobs queued or running */
	uint32_t nremoving;        /* dropped stores' removals on the pool */
	uint64_t ndropped;         /* drops so far (unique renamed names) */
	uint64_t work_done;        /* jobs completed */
};

static void remove_dropped(vnode_set *vs, const char *sub);

/* One store's background job, for world->work(). */
typedef struct work_job {
	vnode_set *vs;
	uint32_t p;
	bitcask *bc;
} work_job;

struct vnode_iter {
	bitcask_iter *it;
};

/* On a pool thread. */
static int work_run(void *arg)
{
	work_job *j = arg;

	return bitcask_work(j->bc);
}

/* On the loop. */
static void work_end(void *arg, int rc)
{
	work_job *j = arg;
	vnode_set *vs = j->vs;

	if (rc != 0 && rc != DKV_ECLOSED)
		dkv_log_opt(vs->cfg.log, DKV_LOG_ERROR,
			    "partition %" PRIu32 ": background work (hint file or merge) failed: %s",
			    j->p, dkv_strerror(rc));
	vs->parts[j->p].working = false;
	vs->nworking--;
	vs->work_done++;
	free(j);
}

/* Queue jobs for the stores that have work, from where the last look
 * stopped, up to VNODE_WORK_JOBS at once. */
static void work_tick(void *arg)
{
	vnode_set *vs = arg;
	world *w = vs->cfg.w;
	uint32_t n = vnode_slots(vs);

	vs->work_timer = w->ops->timer_add(w, VNODE_WORK_TICK_MS, work_tick, vs);
	if (vs->work_timer == NULL)
		dkv_log_opt(vs->cfg.log, DKV_LOG_ERROR,
			    "out of memory re-arming the background work timer: hint files and "
			    "merges stop until a restart");
	for (uint32_t k = 0; k < n && vs->nworking < VNODE_WORK_JOBS; k++) {
		uint32_t p = (vs->work_next + k) % n;
		part *pt = &vs->parts[p];
		work_job *j;

		if (pt->bc == NULL || pt->working || !bitcask_work_pending(pt->bc))
			continue;
		if ((j = malloc(sizeof(*j))) == NULL)
			break;
		j->vs = vs;
		j->p = p;
		j->bc = pt->bc;
		pt->working = true;
		vs->nworking++;
		vs->work_next = (p + 1) % n;
		w->ops->work(w, work_run, j, work_end, j);
	}
}

void vnode_quiesce(vnode_set *vs)
{
	if (vs->work_timer != NULL)
		vs->cfg.w->ops->timer_cancel(vs->cfg.w, vs->work_timer);
	vs->work_timer = NULL;
}

bool vnode_busy(const vnode_set *vs)
{
	return vs->nworking > 0 || vs->nremoving > 0;
}

uint64_t vnode_work_done(const vnode_set *vs)
{
	return vs->work_done;
}

int vnode_set_open(vnode_set **out, const vnode_config *cfg)
{
	vnode_set *vs = calloc(1, sizeof(*vs));

	*out = NULL;
	if (vs == NULL)
		return -ENOMEM;
	vs->cfg = *cfg;
	vs->dir = strdup(cfg->dir);
	vs->parts = calloc((size_t)cfg->ring_size + VNODE_MAX_EXTRA, sizeof(*vs->parts));
	if (vs->dir == NULL || vs->parts == NULL || siphash_key_random(&vs->hkey) != 0) {
		free(vs->dir);
		free(vs->parts);
		free(vs);
		return -ENOMEM;
	}
	vs->cfg.dir = vs->dir;
	remove_dropped(vs, "partitions");
	remove_dropped(vs, "hints");
	msgpack_sbuffer_init(&vs->ob);
	if (cfg->w != NULL) {
		vs->work_timer = cfg->w->ops->timer_add(cfg->w, VNODE_WORK_TICK_MS, work_tick, vs);
		if (vs->work_timer == NULL) {
			msgpack_sbuffer_destroy(&vs->ob);
			free(vs->dir);
			free(vs->parts);
			free(vs);
			return -ENOMEM;
		}
	}
	*out = vs;
	return 0;
}

static int part_open(vnode_set *vs, uint32_t p, bitcask **out);

static void part_path(const vnode_set *vs, uint32_t p, char *buf, size_t len)
{
	if (p >= vs->cfg.ring_size)
		snprintf(buf, len, "%s/%s", vs->dir, vs->parts[p].name ? vs->parts[p].name : "?");
	else
		snprintf(buf, len, "%s/partitions/%04" PRIu32, vs->dir, p);
}

uint32_t vnode_slots(const vnode_set *vs)
{
	return vs->cfg.ring_size + VNODE_MAX_EXTRA;
}

int vnode_extra_open(vnode_set *vs, const char *name, uint32_t *idx)
{
	uint32_t n = vnode_slots(vs), free_at = n;
	bitcask *bc;
	int rc;

	for (uint32_t p = vs->cfg.ring_size; p < n; p++) {
		if (vs->parts[p].name == NULL) {
			if (free_at == n)
				free_at = p;
		} else if (strcmp(vs->parts[p].name, name) == 0) {
			*idx = p;
			return part_open(vs, p, &bc);
		}
	}
	if (free_at == n)
		return -ENOSPC;
	if ((vs->parts[free_at].name = strdup(name)) == NULL)
		return -ENOMEM;
	rc = part_open(vs, free_at, &bc);
	if (rc != 0) {
		free(vs->parts[free_at].name);
		vs->parts[free_at].name = NULL;
		return rc;
	}
	*idx = free_at;
	return 0;
}

const char *vnode_extra_name(const vnode_set *vs, uint32_t idx)
{
	return idx < vnode_slots(vs) ? vs->parts[idx].name : NULL;
}

/* Open (creating if need be) partition p's store into *out; any thread.
 * err gets the reason. */
static int open_store(const vnode_set *vs, uint32_t p, bitcask **out, char *err, size_t errlen)
{
	char dir[4200];
	bitcask_config bc;
	int rc;

	part_path(vs, p, dir, sizeof(dir));
	bitcask_config_init(&bc);
	bc.max_key_size = vs->cfg.max_key_size;
	bc.max_value_size = (uint32_t)vs->cfg.max_object;
	bc.sync = BITCASK_SYNC_MANUAL;
	bc.log = dkv_log_hook;
	bc.log_ctx = vs->cfg.log;
	bc.external_worker = vs->cfg.w != NULL;
	if (vs->cfg.max_file_size != 0)
		bc.max_file_size = vs->cfg.max_file_size;
	bc.io = vs->cfg.io;
	rc = dkv_mkdir_p(dir);
	if (rc == 0)
		rc = bitcask_open(out, dir, &bc, err, errlen);
	else
		snprintf(err, errlen, "%s: %s", dir, strerror(-rc));
	return rc;
}

/* Partition p's store, opened on the loop if need be. */
static int part_open(vnode_set *vs, uint32_t p, bitcask **out)
{
	char err[4400];
	int rc;

	if (vs->parts[p].bc != NULL) {
		*out = vs->parts[p].bc;
		return 0;
	}
	rc = open_store(vs, p, &vs->parts[p].bc, err, sizeof(err));
	if (rc != 0) {
		dkv_log_opt(vs->cfg.log, DKV_LOG_ERROR, "partition %" PRIu32 ": %s", p, err);
		return rc;
	}
	vs->nopen++;
	*out = vs->parts[p].bc;
	return 0;
}

typedef struct openers {
	const vnode_set *vs;
	const uint32_t *list;
	size_t count;
	atomic_size_t next;
	bitcask **got;               /* by position in list */
	int *rcs;
	char (*errs)[256];
} openers;

static void *opener_main(void *arg)
{
	openers *o = arg;
	size_t i;

	while ((i = atomic_fetch_add(&o->next, 1)) < o->count)
		o->rcs[i] = o->vs->parts[o->list[i]].bc != NULL ? 0 :
			open_store(o->vs, o->list[i], &o->got[i], o->errs[i], sizeof(o->errs[i]));
	return NULL;
}

/* An opener thread of its own, at OPENER_NICE (not the caller, which
 * joins in at its own priority: it is the event loop). */
static void *opener_thread(void *arg)
{
	(void)dkv_thread_nice(OPENER_NICE);
	return opener_main(arg);
}

int vnode_open_many(vnode_set *vs, const uint32_t *list, size_t count, char *err, size_t errlen)
{
	pthread_t th[OPENERS];
	int nth = 0, rc = 0;
	openers o = { .vs = vs, .list = list, .count = count };

	if (count == 0)
		return 0;
	o.got = calloc(count, sizeof(*o.got));
	o.rcs = calloc(count, sizeof(*o.rcs));
	o.errs = calloc(count, sizeof(*o.errs));
	if (o.got == NULL || o.rcs == NULL || o.errs == NULL) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	atomic_init(&o.next, 0);
	while (nth < OPENERS && (size_t)nth < count && pthread_create(&th[nth], NULL, opener_thread, &o) == 0)
		nth++;
	opener_main(&o);   /* this thread too (all of it if none started) */
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < count; i++) {
		if (o.got[i] != NULL) {
			vs->parts[list[i]].bc = o.got[i];
			vs->nopen++;
		} else if (o.rcs[i] != 0 && rc == 0) {
			rc = o.rcs[i];
			snprintf(err, errlen, "partition %" PRIu32 ": %s", list[i], o.errs[i]);
		}
	}
out:
	free(o.got);
	free(o.rcs);
	free(o.errs);
	return rc;
}

bool vnode_is_open(const vnode_set *vs, uint32_t p)
{
	return vs->parts[p].bc != NULL;
}

bool vnode_exists(const vnode_set *vs, uint32_t p)
{
	char path[4200];
	struct stat st;

	part_path(vs, p, path, sizeof(path));
	return stat(path, &st) == 0;
}

bitcask *vnode_store_of(const vnode_set *vs, uint32_t p)
{
	return vs->parts[p].bc;
}

int vnode_get_raw(vnode_set *vs, uint32_t p, const void *key, size_t klen,
		  void **val, size_t *vlen)
{
	bitcask *bc;
	int rc;

	*val = NULL;
	*vlen = 0;
	/* a read never makes a store: a partition this node has none of (it
	 * never held it, or dropped it) has no key */
	if (vs->parts[p].bc == NULL && !vnode_exists(vs, p))
		return DKV_ENOTFOUND;
	if ((rc = part_open(vs, p, &bc)) != 0)
		return rc;
	return bitcask_get(bc, key, klen, val, vlen);
}

int vnode_read(vnode_set *vs, uint32_t p, const void *key, size_t klen, object **obj)
{
	void *val;
	size_t vlen;
	int rc;

	*obj = NULL;
	rc = vnode_get_raw(vs, p, key, klen, &val, &vlen);
	if (rc == DKV_ENOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	rc = object_decode(val, vlen, &vs->cfg.olim, obj);
	free(val);
	if (rc != 0) {
		dkv_log_opt(vs->cfg.log, DKV_LOG_ERROR, "partition %" PRIu32 ": a stored object fails to decode: %s",
		     p, dkv_strerror(rc));
		/* a newer format is not corruption: say which it is */
		return rc == DKV_EVERSION ? DKV_EVERSION : DKV_ECORRUPT;
	}
	return 0;
}

static void notify(vnode_set *vs, uint32_t p, const void *key, size_t klen, const void *obj,
		   size_t len)
{
	for (int i = 0; i < VNODE_OBSERVERS; i++)
		if (vs->obs[i].fn != NULL)
			vs->obs[i].fn(vs->obs[i].ctx, p, key, klen, obj, len);
}

int vnode_store(vnode_set *vs, uint32_t p, const void *key, size_t klen,
		const void *obj, size_t len)
{
	bitcask *bc;
	int rc;

	if (len > vs->cfg.max_object)
		return DKV_ETOOBIG;
	rc = part_open(vs, p, &bc);
	if (rc == 0)
		rc = bitcask_put(bc, key, klen, obj, len);
	if (rc != 0) {
		dkv_log_opt(vs->cfg.log, DKV_LOG_ERROR, "partition %" PRIu32 ": write failed: %s", p, dkv_strerror(rc));
		return rc;
	}
	if (!vs->parts[p].dirty) {
		vs->parts[p].dirty = true;
		vs->ndirty++;
	}
	if (p < vs->cfg.ring_size)
		notify(vs, p, key, klen, obj, len);
	return 0;
}

int vnode_delete(vnode_set *vs, uint32_t p, const void *key, size_t klen)
{
	bitcask *bc;
	int rc = part_open(vs, p, &bc);

	if (rc == 0)
		rc = bitcask_delete(bc, key, klen);
	if (rc != 0 && rc != DKV_ENOTFOUND)
		return rc;
	if (rc == 0 && !vs->parts[p].dirty) {
		vs->parts[p].dirty = true;
		vs->ndirty++;
	}
	if (rc == 0 && p < vs->cfg.ring_size)
		notify(vs, p, key, klen, NULL, 0);
	return rc;
}

int vnode_merge(vnode_set *vs, uint32_t p, const void *key, size_t klen, const object *in,
		bool *wrote)
{
	object *obj = NULL;
	size_t before = 0;
	uint64_t h0 = 0;
	int rc;

	*wrote = false;
	rc = vnode_read(vs, p, key, klen, &obj);
	if (rc != 0)
		return rc;
	if (obj != NULL) {
		vs->ob.size = 0;
		rc = object_encode(obj, &vs->ob);
		h0 = siphash24(&vs->hkey, vs->ob.data, vs->ob.size);
		before = vs->ob.size;
		if (rc == 0)
			rc = object_merge(obj, in);
	} else {
		rc = object_clone(in, &obj);
	}
	if (rc == 0) {
		object_prune(obj, vs->cfg.vclock_max, vs->cfg.actor);
		vs->ob.size = 0;
		rc = object_encode(obj, &vs->ob);
	}
	if (rc == 0 && (before != vs->ob.size || siphash24(&vs->hkey, vs->ob.data, vs->ob.size) != h0)) {
		rc = vnode_store(vs, p, key, klen, vs->ob.data, vs->ob.size);
		*wrote = rc == 0;
	}
	object_free(obj);
	return rc;
}

size_t vnode_take_dirty(vnode_set *vs, bitcask **out)
{
	size_t k = 0;

	for (uint32_t p = 0; vs->ndirty > 0 && p < vnode_slots(vs); p++)
		if (vs->parts[p].dirty) {
			vs->parts[p].dirty = false;
			vs->ndirty--;
			if (vs->parts[p].bc != NULL) {
				out[k++] = vs->parts[p].bc;
				vs->parts[p].syncing = true;
			}
		}
	return k;
}

void vnode_synced(vnode_set *vs)
{
	for (uint32_t p = 0; p < vnode_slots(vs); p++)
		vs->parts[p].syncing = false;
}

void vnode_redirty(vnode_set *vs, bitcask *const *stores, size_t n)
{
	for (uint32_t p = 0; n > 0 && p < vnode_slots(vs); p++) {
		part *pt = &vs->parts[p];

		if (pt->bc == NULL || pt->dirty)
			continue;
		for (size_t i = 0; i < n; i++)
			if (stores[i] == pt->bc) {
				pt->dirty = true;
				vs->ndirty++;
				break;
			}
	}
}

bool vnode_any_dirty(const vnode_set *vs)
{
	return vs->ndirty > 0;
}

int vnode_add_observer(vnode_set *vs, vnode_observer_fn fn, void *ctx)
{
	for (int i = 0; i < VNODE_OBSERVERS; i++)
		if (vs->obs[i].fn == NULL) {
			vs->obs[i].fn = fn;
			vs->obs[i].ctx = ctx;
			return 0;
		}
	return -ENOSPC;
}

void vnode_remove_observer(vnode_set *vs, vnode_observer_fn fn, void *ctx)
{
	for (int i = 0; i < VNODE_OBSERVERS; i++)
		if (vs->obs[i].fn == fn && vs->obs[i].ctx == ctx)
			vs->obs[i].fn = NULL;
}

int vnode_iter_open(vnode_set *vs, uint32_t p, vnode_iter **out)
{
	vnode_iter *it;
	bitcask *bc;
	int rc;

	*out = NULL;
	rc = part_open(vs, p, &bc);
	if (rc != 0)
		return rc;
	if ((it = calloc(1, sizeof(*it))) == NULL)
		return -ENOMEM;
	rc = bitcask_iter_open(bc, true, &it->it);
	if (rc != 0) {
		free(it);
		return rc;
	}
	*out = it;
	return 0;
}

int vnode_iter_next(vnode_iter *it, const uint8_t **key, size_t *klen,
		    const uint8_t **obj, size_t *len)
{
	return bitcask_iter_next(it->it, key, klen, obj, len);
}

void vnode_iter_close(vnode_iter *it)
{
	if (it == NULL)
		return;
	bitcask_iter_close(it->it);
	free(it);
}

static int unlink_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 ? 0 : errno;
}

/* Remove a directory tree; 0 when it is gone (or never was). */
static int remove_tree(const char *path)
{
	int rc = nftw(path, unlink_one, 16, FTW_DEPTH | FTW_PHYS);

	if (rc > 0 || (rc < 0 && errno != ENOENT))
		return rc > 0 ? -rc : -errno;
	return 0;
}

/* A dropped store's directory, renamed, removed on the pool. */
typedef struct removal {
	vnode_set *vs;
	char path[4240];
} removal;

static int removal_run(void *arg)
{
	return remove_tree(((removal *)arg)->path);
}

static void removal_end(void *arg, int rc)
{
	removal *r = arg;

	if (rc != 0)
		dkv_log_opt(r->vs->cfg.log, DKV_LOG_WARNING, "removing %s: %s (it is removed at "
			    "the next start)", r->path, dkv_strerror(rc));
	r->vs->nremoving--;
	free(r);
}

int vnode_drop(vnode_set *vs, uint32_t p)
{
	char path[4200];
	removal *r;

	if (vs->parts[p].working || vs->parts[p].syncing)
		return -EBUSY;   /* the world still uses the store (world.h) */
	if (vs->parts[p].bc != NULL) {
		/* no sync, no hint files: it is about to go */
		(void)bitcask_close_discard(vs->parts[p].bc);
		vs->parts[p].bc = NULL;
		vs->nopen--;
		if (vs->parts[p].dirty) {
			vs->parts[p].dirty = false;
			vs->ndirty--;
		}
	}
	part_path(vs, p, path, sizeof(path));
	if (p >= vs->cfg.ring_size) {
		free(vs->parts[p].name);   /* the slot is free again */
		vs->parts[p].name = NULL;
	}
	/* Freeing tens of megabytes of extents takes the file system tens of
	 * milliseconds (51 ms seen for an emptied hint store): on the loop
	 * that is every request's wait.  The directory is renamed out of the
	 * way at once (the name is free for a new store) and removed on the
	 * pool; what a crash leaves behind, vnode_set_open removes. */
	r = vs->cfg.w != NULL ? malloc(sizeof(*r)) : NULL;
	if (r != NULL) {
		snprintf(r->path, sizeof(r->path), "%s" VNODE_DROPPED "%" PRIu64, path, ++vs->ndropped);
		if (rename(path, r->path) == 0) {
			r->vs = vs;
			vs->nremoving++;
			vs->cfg.w->ops->work(vs->cfg.w, removal_run, r, removal_end, r);
			return 0;
		}
		free(r);
		if (errno == ENOENT)
			return 0;   /* never was */
	}
	return remove_tree(path);
}

/* Remove what drops left behind (a crash between the rename and the
 * removal) under DIR/sub. */
static void remove_dropped(vnode_set *vs, const char *sub)
{
	char path[4200], child[4500];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s", vs->dir, sub);
	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		int rc;

		if (strstr(de->d_name, VNODE_DROPPED) == NULL)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, de->d_name);
		if ((rc = remove_tree(child)) != 0)
			dkv_log_opt(vs->cfg.log, DKV_LOG_WARNING, "removing %s, left by a drop: %s",
				    child, dkv_strerror(rc));
	}
	closedir(d);
}

void vnode_stored(vnode_set *vs, uint64_t *keys, uint64_t *bytes)
{
	*keys = *bytes = 0;
	for (uint32_t p = 0; p < vs->cfg.ring_size; p++) {
		bitcask_stats st;

		if (vs->parts[p].bc == NULL)
			continue;
		bitcask_stats_get(vs->parts[p].bc, &st, NULL, NULL);
		*keys += st.keys;
		*bytes += st.live_bytes;
	}
}

void vnode_usage(vnode_set *vs, uint64_t *disk, uint64_t *keydir)
{
	*disk = *keydir = 0;
	for (uint32_t p = 0; p < vnode_slots(vs); p++) {
		bitcask_stats st;

		if (vs->parts[p].bc == NULL)
			continue;
		bitcask_stats_get(vs->parts[p].bc, &st, NULL, NULL);
		*disk += st.total_bytes;
		*keydir += st.keydir_bytes;
	}
}

size_t vnode_open_count(const vnode_set *vs)
{
	return vs->nopen;
}

int vnode_set_close(vnode_set *vs)
{
	int rc = 0;

	if (vs == NULL)
		return 0;
	assert(vs->nworking == 0);   /* the owner waits for vnode_busy() */
	vnode_quiesce(vs);
	for (uint32_t p = 0; p < vnode_slots(vs); p++) {
		bitcask *bc = vs->parts[p].bc;
		int r;

		free(vs->parts[p].name);
		if (bc == NULL)
			continue;
		r = bitcask_sync_now(bc);
		if (r == 0)
			r = bitcask_close(bc);
		else
			(void)bitcask_close(bc);
		if (r != 0) {
			dkv_log_opt(vs->cfg.log, DKV_LOG_ERROR, "closing partition %" PRIu32 ": %s", p, dkv_strerror(r));
			if (rc == 0)
				rc = r;
		}
	}
	msgpack_sbuffer_destroy(&vs->ob);
	free(vs->parts);
	free(vs->dir);
	free(vs);
	return rc;
}
