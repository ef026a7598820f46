/*
 * bitcask.c -- the storage engine's handle: open/close, the write path with
 * group commit, reads, iteration, statistics and the background threads.
 * Recovery is in recover.c, merging in merge.c.  See bitcask.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bitcask_int.h"
#include "crc32c.h"
#include "dkv_file.h"
#include "error.h"
#include "record.h"
#include "siphash.h"

/* Defaults, and why:
 *  - max_file_size 128 MiB: large enough that a store of a few GiB has tens
 *    of files (one hint each, one fd each), small enough that a merge's unit
 *    of work and the fsync on rotation stay short.  Offsets are u32, so the
 *    hard limit is 4 GiB.
 *  - sync interval, 1000 ms: the durability of Redis's appendfsync everysec,
 *    which users compare us with; 'always' is one option away.
 *  - merge when a file is 40% dead, or holds 128 MiB of dead bytes, and only
 *    once 16 MiB of immutable data exist: at 40% dead a merge rewrites at most
 *    1.5 bytes per byte reclaimed (0.6 / 0.4), so write amplification stays
 *    under 2.5x in steady state. */
void bitcask_config_init(bitcask_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_file_size = 128u << 20;
	cfg->max_key_size = REC_MAX_KEY;
	cfg->max_value_size = 64u << 20;
	cfg->sync = BITCASK_SYNC_INTERVAL;
	cfg->sync_interval_ms = 1000;
	cfg->merge_frag_threshold = 0.4;
	cfg->merge_dead_bytes = 128u << 20;
	cfg->merge_min_bytes = 16u << 20;
	cfg->merge_check_ms = 10000;
}

/* --- small helpers ----------------------------------------------------- */

void bc_log(bitcask *bc, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (bc->cfg.log) {
		bc->cfg.log(bc->cfg.log_ctx, level, msg);
		return;
	}
	static const char *const names[] = { "error", "warning", "info", "debug" };
	if (level <= 2)
		fprintf(stderr, "bitcask %s: %s: %s\n", bc->dir, names[level < 0 ? 0 : level > 3 ? 3 : level], msg);
}

uint64_t bc_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void bc_path(const bitcask *bc, char *out, size_t outlen, uint64_t id, const char *suffix)
{
	snprintf(out, outlen, "%s/%016" PRIx64 "%s", bc->dir, id, suffix);
}

int bc_fsync_dir(bitcask *bc)
{
	if (bc->io->fsync(bc->dirfd) != 0)
		return -errno;
	return 0;
}

int bc_pread_full(const bcio *io, int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = io->pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return DKV_ECORRUPT;  /* the file is shorter than the keydir says */
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int bc_pwrite_full(const bcio *io, int fd, const void *buf, size_t len, uint64_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = io->pwrite(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

void bc_fail_locked(bitcask *bc, int rc, const char *what)
{
	if (bc->failed_rc)
		return;
	bc->failed_rc = rc ? rc : -EIO;
	bc_log(bc, 0, "%s failed: %s; the store refuses writes until it is reopened",
	       what, dkv_strerror(bc->failed_rc));
}

/* --- files --------------------------------------------------------------- */

/* Map len bytes of f for reading.  The active file is mapped at its full
 * max_file_size at once: only bytes already written are ever read, so the
 * part past the end of the file is never touched.  Without a mapping (none
 * wanted, or mmap failed) reads fall back to pread. */
void bc_file_map(bitcask *bc, bc_file *f, size_t len)
{
	if (bc->cfg.no_mmap || len == 0 || f->map)
		return;
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, f->fd, 0);
	if (p == MAP_FAILED) {
		bc_log(bc, 1, "mmap of %016" PRIx64 ".data failed: %s; reading with pread",
		       f->id, strerror(errno));
		return;
	}
	f->map = p;
	f->map_len = len;
}

void bc_file_unref(bc_file *f)
{
	if (f && atomic_fetch_sub(&f->refs, 1) == 1) {
		if (f->map)
			munmap((void *)f->map, f->map_len);
		f->io->close(f->fd);
		free(f);
	}
}

int bc_file_register_locked(bitcask *bc, uint64_t id, int fd, uint64_t size, bc_file **out)
{
	uint32_t n = bc->nfiles;
	if (n >= BC_FILE_CHUNK * BC_FILE_CHUNKS)
		return -EMFILE;   /* 4M files over one store's life: reopen it */
	bc_file ***chunk = &bc->files[n >> BC_FILE_CHUNK_BITS];
	if (!*chunk) {
		*chunk = calloc(BC_FILE_CHUNK, sizeof(bc_file *));
		if (!*chunk)
			return -ENOMEM;
	}
	bc_file *f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->id = id;
	f->fileno = n;
	f->fd = fd;
	f->size = size;
	f->io = bc->io;
	atomic_init(&f->refs, 1);
	(*chunk)[n & (BC_FILE_CHUNK - 1)] = f;
	bc->nfiles = n + 1;
	*out = f;
	return 0;
}

/* Account one record of file f at off: the keydir now points at it (a put)
 * or the key is gone (a tombstone, dead on arrival), and the record it
 * replaces, if any, is dead. */
void bc_apply_locked(bitcask *bc, bc_file *f, const uint8_t *key, uint16_t key_len,
		     uint8_t flags, uint32_t off, uint32_t size)
{
	bc_apply_hashed_locked(bc, f, keydir_hash(bc->kd, key, key_len), key, key_len,
			       flags, off, size);
}

void bc_apply_hashed_locked(bitcask *bc, bc_file *f, uint64_t hash, const uint8_t *key,
			    uint16_t key_len, uint8_t flags, uint32_t off, uint32_t size)
{
	kd_loc old;
	bool had_old;
	if (flags & REC_FLAG_TOMBSTONE) {
		had_old = keydir_del_h(bc->kd, hash, key, key_len, &old);
		f->dead_bytes += size;
	} else {
		kd_loc loc = { f->fileno, off, size };
		int rc = keydir_put_h(bc->kd, hash, key, key_len, &loc, &old, &had_old);
		if (rc) {
			bc_fail_locked(bc, rc, "key directory insert");
			return;
		}
		f->live_bytes += size;
		f->live_keys++;
	}
	if (had_old) {
		bc_file *of = bc_file_at(bc, old.fileno);
		of->live_bytes -= old.size;
		of->dead_bytes += old.size;
		of->live_keys--;
	}
}

/* --- hint buffers -------------------------------------------------------- */

int bc_hint_add(bc_hintbuf *h, uint64_t ts, uint32_t off, uint32_t size, uint8_t flags,
		const void *key, uint16_t key_len)
{
	if (h->broken)
		return -ENOMEM;
	size_t need = hint_entry_size(key_len);
	if (h->len + need > h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 4096;
		while (ncap < h->len + need)
			ncap *= 2;
		uint8_t *nb = realloc(h->buf, ncap);
		if (!nb) {
			h->broken = true;
			return -ENOMEM;
		}
		h->buf = nb;
		h->cap = ncap;
	}
	h->len += hint_entry_encode(h->buf + h->len, ts, off, size, flags, key, key_len);
	h->count++;
	return 0;
}

void bc_hint_free(bc_hintbuf *h)
{
	free(h->buf);
	memset(h, 0, sizeof(*h));
}

/* Write id.hint from h, durably: to id.hint.tmp, fsync, rename, fsync dir. */
int bc_hint_write(bitcask *bc, uint64_t id, const bc_hintbuf *h, uint64_t data_size)
{
	char tmp[4096], final[4096];
	uint8_t hdr[HINT_HDR_SIZE];
	int rc, fd;

	if (h->broken)
		return -ENOMEM;
	bc_path(bc, tmp, sizeof(tmp), id, ".hint.tmp");
	bc_path(bc, final, sizeof(final), id, ".hint");
	hint_header_encode(hdr, h->count, data_size, crc32c(0, h->buf, h->len));
	fd = bc->io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	rc = bc_pwrite_full(bc->io, fd, hdr, sizeof(hdr), 0);
	if (!rc && h->len)
		rc = bc_pwrite_full(bc->io, fd, h->buf, h->len, sizeof(hdr));
	if (!rc && bc->io->fsync(fd) != 0)
		rc = -errno;
	bc->io->close(fd);
	if (!rc && bc->io->rename(tmp, final) != 0)
		rc = -errno;
	if (!rc)
		rc = bc_fsync_dir(bc);
	if (rc)
		bc->io->unlink(tmp);
	return rc;
}

/* --- the active file ----------------------------------------------------- */

/* Create data file `id` with its header.  Returns the fd or -errno.
 *
 * Nothing is synced here: the file's header and its name become durable
 * with the store's next sync (sync_once, append_group, a rotation), which
 * fdatasyncs the file and then, as dir_gen says, fsyncs the directory
 * once.  Nothing in the file is acknowledged before that, and recovery
 * removes a file the crash left without a whole header.  Syncing both here
 * cost every store open two forced disk writes: 1,024 at the start of a node
 * holding 512 partitions, and every other writer on the file system (the
 * other nodes of a machine) waited behind them -- a foreground p99 of
 * 100-350 ms across the whole cluster while one node started. */
static int create_datafile(bitcask *bc, uint64_t id)
{
	char path[4096];
	uint8_t hdr[DATAFILE_HDR_SIZE];
	bc_path(bc, path, sizeof(path), id, ".data");
	int fd = bc->io->open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return -errno;
	datafile_header_encode(hdr);
	int rc = bc_pwrite_full(bc->io, fd, hdr, sizeof(hdr), 0);
	if (rc) {
		bc->io->close(fd);
		bc->io->unlink(path);
		return rc;
	}
	return fd;
}

static uint64_t newest_id_locked(const bitcask *bc)
{
	uint64_t max = bc->max_id_seen;
	for (uint32_t i = 0; i < bc->nfiles; i++)
		if (bc_file_at(bc, i) && bc_file_at(bc, i)->id > max)
			max = bc_file_at(bc, i)->id;
	return max;
}

/* Start a new active file with the next base id. */
static int open_active_locked(bitcask *bc)
{
	uint64_t id = ((newest_id_locked(bc) >> BC_ID_SUB_BITS) + 1) << BC_ID_SUB_BITS;
	int fd = create_datafile(bc, id);
	if (fd < 0)
		return fd;
	bc->max_id_seen = id;
	bc_file *f;
	int rc = bc_file_register_locked(bc, id, fd, DATAFILE_HDR_SIZE, &f);
	if (rc) {
		char path[4096];
		bc->io->close(fd);
		bc_path(bc, path, sizeof(path), id, ".data");
		bc->io->unlink(path);
		return rc;
	}
	bc_file_map(bc, f, (size_t)bc->cfg.max_file_size);
	bc->active = f;
	if (bc->cfg.sync != BITCASK_SYNC_NONE)
		bc->dir_gen++;
	return 0;
}

/* After an fdatasync of the active file: make the names of the data files
 * created up to generation gen durable, with one fsync of the directory
 * unless one since did.  Called without mu, only when the caller saw
 * gen > dir_synced under it (so a sync with no new file takes no extra
 * lock).  0 or -errno. */
static int dir_durable(bitcask *bc, uint64_t gen)
{
	pthread_mutex_lock(&bc->mu);
	bool need = gen > bc->dir_synced;
	pthread_mutex_unlock(&bc->mu);
	if (!need)
		return 0;
	if (bc->io->fsync(bc->dirfd) != 0)
		return -errno;
	pthread_mutex_lock(&bc->mu);
	if (gen > bc->dir_synced)
		bc->dir_synced = gen;
	pthread_mutex_unlock(&bc->mu);
	return 0;
}

static void queue_job_locked(bitcask *bc, bc_job *job)
{
	job->next = NULL;
	*bc->jobs_tail = job;
	bc->jobs_tail = &job->next;
	pthread_cond_signal(&bc->work_cv);
}

/* Make the active file immutable and start a new one.  The old file is
 * fsynced here (unless sync = none), so every append so far is durable and
 * group-commit waiters can be told so; its hint is written by the worker. */
static int rotate_locked(bitcask *bc)
{
	bc_file *old = bc->active;
	int rc = 0;

	if (bc->cfg.sync != BITCASK_SYNC_NONE) {
		/* the old file's name too, if no sync has covered it yet */
		if (bc->io->fdatasync(old->fd) != 0 ||
		    (bc->dir_gen > bc->dir_synced && bc->io->fsync(bc->dirfd) != 0)) {
			rc = -errno;
			bc_fail_locked(bc, rc, "fdatasync on rotation");
			/* Writers waiting for this file must hear of it: a
			 * later fdatasync may report success for pages the
			 * kernel has already dropped. */
			pthread_mutex_lock(&bc->sync_mu);
			if (!bc->sync_err)
				bc->sync_err = rc;
			pthread_cond_broadcast(&bc->sync_cv);
			pthread_mutex_unlock(&bc->sync_mu);
			return rc;
		}
		bc->st.syncs++;
		bc->dir_synced = bc->dir_gen;
		pthread_mutex_lock(&bc->sync_mu);
		if (bc->synced_seq < bc->write_seq)
			bc->synced_seq = bc->write_seq;
		pthread_cond_broadcast(&bc->sync_cv);
		pthread_mutex_unlock(&bc->sync_mu);
	}
	rc = open_active_locked(bc);
	if (rc) {
		bc->active = old;
		bc_fail_locked(bc, rc, "creating a data file");
		return rc;
	}
	bc_job *job = calloc(1, sizeof(*job));
	if (job) {
		atomic_fetch_add(&old->refs, 1);
		job->file = old;
		job->hint = bc->active_hint;
		queue_job_locked(bc, job);
	} else {
		bc_hint_free(&bc->active_hint);
	}
	memset(&bc->active_hint, 0, sizeof(bc->active_hint));
	return 0;
}

int bitcask_rotate(bitcask *bc)
{
	pthread_mutex_lock(&bc->mu);
	int rc = bc->closing ? DKV_ECLOSED : bc->failed_rc ? DKV_EFAILED : 0;
	if (!rc && bc->active->size > DATAFILE_HDR_SIZE)
		rc = rotate_locked(bc);
	pthread_mutex_unlock(&bc->mu);
	return rc;
}

/* --- group commit -------------------------------------------------------- */

/* One fdatasync of the active file, covering every append made before it.
 * Called with no lock held, by at most one thread at a time (syncing). */
static int sync_once(bitcask *bc, uint64_t *covered)
{
	pthread_mutex_lock(&bc->mu);
	if (bc->failed_rc) {
		int frc = bc->failed_rc;
		pthread_mutex_unlock(&bc->mu);
		return frc;
	}
	bc_file *f = bc->active;
	atomic_fetch_add(&f->refs, 1);
	uint64_t target = bc->write_seq, gen = bc->dir_gen;
	bool dir = gen > bc->dir_synced;   /* a new file's name to make durable */
	pthread_mutex_unlock(&bc->mu);

	int rc = 0;
	if (bc->io->fdatasync(f->fd) != 0)
		rc = -errno;
	if (!rc && dir)
		rc = dir_durable(bc, gen);
	bc_file_unref(f);

	pthread_mutex_lock(&bc->mu);
	if (rc)
		bc_fail_locked(bc, rc, "fdatasync");
	else if (bc->failed_rc)
		rc = bc->failed_rc;   /* failed meanwhile (a rotation's sync): no success after that */
	else
		bc->st.syncs++;
	pthread_mutex_unlock(&bc->mu);
	*covered = target;
	return rc;
}

/* Wait until append number seq is durable, syncing if nobody else is.
 * Writers that arrive while a sync runs wait for it and then one of them
 * runs the next, covering all of them: many writes, one fdatasync. */
static int wait_durable(bitcask *bc, uint64_t seq)
{
	int rc;
	pthread_mutex_lock(&bc->sync_mu);
	while (bc->synced_seq < seq && !bc->sync_err) {
		if (bc->syncing) {
			pthread_cond_wait(&bc->sync_cv, &bc->sync_mu);
			continue;
		}
		bc->syncing = true;
		pthread_mutex_unlock(&bc->sync_mu);
		uint64_t covered = 0;
		rc = sync_once(bc, &covered);
		pthread_mutex_lock(&bc->sync_mu);
		bc->syncing = false;
		if (rc)
			bc->sync_err = rc;
		else if (covered > bc->synced_seq)
			bc->synced_seq = covered;
		pthread_cond_broadcast(&bc->sync_cv);
	}
	rc = bc->synced_seq >= seq ? 0 : DKV_EFAILED;
	pthread_mutex_unlock(&bc->sync_mu);
	return rc;
}

int bitcask_sync_now(bitcask *bc)
{
	pthread_mutex_lock(&bc->mu);
	uint64_t seq = bc->write_seq;
	int rc = bc->failed_rc ? DKV_EFAILED : 0;
	pthread_mutex_unlock(&bc->mu);
	if (rc)
		return rc;
	/* Even with nothing new appended, sync once: the caller asked. */
	pthread_mutex_lock(&bc->sync_mu);
	if (bc->synced_seq >= seq && !bc->syncing && !bc->sync_err) {
		pthread_mutex_unlock(&bc->sync_mu);
		return 0;
	}
	pthread_mutex_unlock(&bc->sync_mu);
	return wait_durable(bc, seq);
}

/* --- writes -------------------------------------------------------------- */

/* Write one group's records (the queue from its head to last), rotating
 * where a record would overflow the active file, then point the keydir at
 * them.  Records are gathered into one buffer per file, so a group of 64
 * costs one pwrite, not 64.  0 or DKV_EFAILED. */
static int write_group_locked(bitcask *bc, bc_writer *last)
{
	size_t total = 0;
	for (bc_writer *w = bc->wq_head;; w = w->next) {
		total += w->size;
		if (w == last)
			break;
	}
	if (total > bc->gbuf_cap) {
		uint8_t *nb = realloc(bc->gbuf, total);
		if (nb) {
			bc->gbuf = nb;
			bc->gbuf_cap = total;
		}
	}
	bc_writer *first = bc->wq_head;   /* first record not yet written */
	size_t glen = 0;
	for (bc_writer *w = bc->wq_head;; w = w->next) {
		bool fits = bc->active->size + glen + w->size <= bc->cfg.max_file_size;
		bool room = glen + w->size <= bc->gbuf_cap;
		if (glen && (!fits || !room)) {
			/* Flush what is gathered, then carry on (after a rotation). */
			if (bc_write_records_locked(bc, first, w, glen))
				return DKV_EFAILED;
			first = w;
			glen = 0;
		}
		if (!fits && rotate_locked(bc) != 0)
			return DKV_EFAILED;
		if (w->size <= bc->gbuf_cap) {
			memcpy(bc->gbuf + glen, w->rec, w->size);
			glen += w->size;
		} else {
			/* No buffer this large: this record alone, from its own. */
			if (bc_write_records_locked(bc, w, w->next, 0))
				return DKV_EFAILED;
			first = w->next;
		}
		if (w == last)
			break;
	}
	if (glen && bc_write_records_locked(bc, first, last->next, glen))
		return DKV_EFAILED;
	return 0;
}

/* Append records first..end (exclusive) to the active file: from bc->gbuf
 * (glen bytes) or, with glen 0, the single record first->rec.  Then account
 * them.  0 or DKV_EFAILED. */
int bc_write_records_locked(bitcask *bc, bc_writer *first, bc_writer *end, size_t glen)
{
	bc_file *f = bc->active;
	uint64_t off = f->size;
	const uint8_t *src = glen ? bc->gbuf : first->rec;
	size_t len = glen ? glen : first->size;
	int rc = bc_pwrite_full(bc->io, f->fd, src, len, off);
	if (rc) {
		bc_fail_locked(bc, rc, "write");
		return DKV_EFAILED;
	}
	for (bc_writer *w = first; w != end; w = w->next) {
		f->size += w->size;
		bc_hint_add(&bc->active_hint, w->ts, (uint32_t)off, w->size, w->flags, w->key, w->key_len);
		bc_apply_locked(bc, f, w->key, w->key_len, w->flags, (uint32_t)off, w->size);
		off += w->size;
		bc->write_seq++;
		bc->st.writes++;
	}
	return bc->failed_rc ? DKV_EFAILED : 0;
}

/* sync = always.  Writers queue; the writer at the head leads: it writes
 * every queued record, fdatasyncs once, tells each writer of the group its
 * result and hands the lead to the next head.  Writers arriving during the
 * fdatasync queue up and form the next group: many writes, one fdatasync,
 * one pwrite, and each writer woken once (LevelDB's writer queue). */
static int append_group(bitcask *bc, const uint8_t *rec, uint32_t size,
			const void *key, uint16_t key_len, uint8_t flags, uint64_t ts)
{
	bc_writer w = { .rec = rec, .size = size, .key = key, .key_len = key_len,
			.flags = flags, .ts = ts };
	pthread_cond_init(&w.cv, NULL);
	pthread_mutex_lock(&bc->mu);
	*bc->wq_tail = &w;
	bc->wq_tail = &w.next;
	while (!w.done && bc->wq_head != &w)
		pthread_cond_wait(&w.cv, &bc->mu);
	if (w.done)
		goto out;

	/* Leading: the group is everyone queued now. */
	bc_writer *last = &w;
	while (last->next)
		last = last->next;
	int rc = bc->closing ? DKV_ECLOSED : bc->failed_rc ? DKV_EFAILED : 0;
	if (!rc)
		rc = write_group_locked(bc, last);
	if (!rc) {
		bc_file *f = bc->active;
		atomic_fetch_add(&f->refs, 1);
		uint64_t target = bc->write_seq, gen = bc->dir_gen;
		bool dir = gen > bc->dir_synced;
		pthread_mutex_unlock(&bc->mu);
		int src = bc->io->fdatasync(f->fd) != 0 ? -errno : 0;
		if (!src && dir)
			src = dir_durable(bc, gen);
		bc_file_unref(f);
		pthread_mutex_lock(&bc->mu);
		if (src) {
			bc_fail_locked(bc, src, "fdatasync");
			rc = DKV_EFAILED;
		} else if (bc->failed_rc) {
			rc = DKV_EFAILED;   /* a rotation's fdatasync failed meanwhile */
		} else {
			bc->st.syncs++;
			pthread_mutex_lock(&bc->sync_mu);
			if (bc->synced_seq < target)
				bc->synced_seq = target;
			pthread_mutex_unlock(&bc->sync_mu);
		}
	}
	/* Tell the group, and hand the lead on. */
	for (bc_writer *g = bc->wq_head, *next;; g = next) {
		next = g->next;
		g->rc = rc;
		g->done = true;
		if (g != &w)
			pthread_cond_signal(&g->cv);
		if (g == last)
			break;
	}
	bc->wq_head = last->next;
	if (!bc->wq_head)
		bc->wq_tail = &bc->wq_head;
	else
		pthread_cond_signal(&bc->wq_head->cv);
out:
	pthread_mutex_unlock(&bc->mu);
	pthread_cond_destroy(&w.cv);
	return w.rc;
}

static int append(bitcask *bc, const void *key, size_t key_len,
		  const void *value, size_t value_len, uint8_t flags)
{
	if (key_len > bc->cfg.max_key_size || value_len > bc->cfg.max_value_size)
		return DKV_ETOOBIG;
	uint32_t size = rec_size(key_len, value_len);
	if (size == 0 || (uint64_t)size + DATAFILE_HDR_SIZE > bc->cfg.max_file_size)
		return DKV_ETOOBIG;

	uint8_t stackbuf[4096];
	uint8_t *buf = size <= sizeof(stackbuf) ? stackbuf : malloc(size);
	if (!buf)
		return -ENOMEM;
	uint64_t ts = bc_now_us();
	rec_encode(buf, ts, flags, key, (uint16_t)key_len, value, (uint32_t)value_len);

	int rc = 0;
	uint64_t seq = 0;
	if (bc->cfg.sync == BITCASK_SYNC_ALWAYS) {
		rc = append_group(bc, buf, size, key, (uint16_t)key_len, flags, ts);
		if (buf != stackbuf)
			free(buf);
		return rc;
	}
	pthread_mutex_lock(&bc->mu);
	if (bc->closing) {
		rc = DKV_ECLOSED;
		goto out_unlock;
	}
	if (bc->failed_rc) {
		rc = DKV_EFAILED;
		goto out_unlock;
	}
	if (bc->active->size + size > bc->cfg.max_file_size) {
		rc = rotate_locked(bc);
		if (rc) {
			rc = DKV_EFAILED;
			goto out_unlock;
		}
	}
	bc_file *f = bc->active;
	uint64_t off = f->size;
	rc = bc_pwrite_full(bc->io, f->fd, buf, size, off);
	if (rc) {
		bc_fail_locked(bc, rc, "write");
		rc = DKV_EFAILED;
		goto out_unlock;
	}
	f->size += size;
	bc_hint_add(&bc->active_hint, ts, (uint32_t)off, size, flags, key, (uint16_t)key_len);
	bc_apply_locked(bc, f, key, (uint16_t)key_len, flags, (uint32_t)off, size);
	if (bc->failed_rc) {
		rc = DKV_EFAILED;
		goto out_unlock;
	}
	seq = ++bc->write_seq;
	bc->st.writes++;
out_unlock:
	pthread_mutex_unlock(&bc->mu);
	if (buf != stackbuf)
		free(buf);
	(void)seq;
	return rc;
}

int bitcask_put(bitcask *bc, const void *key, size_t key_len,
		const void *value, size_t value_len)
{
	return append(bc, key, key_len, value, value_len, 0);
}

int bitcask_delete(bitcask *bc, const void *key, size_t key_len)
{
	return append(bc, key, key_len, NULL, 0, REC_FLAG_TOMBSTONE);
}

/* --- reads --------------------------------------------------------------- */

typedef struct get_pin {
	bitcask *bc;
	bc_file *f;             /* referenced by pin_file */
} get_pin;

/* Under the keydir shard's lock: the file the key points at cannot be
 * removed before this reference is taken (a merge moves every key out of a
 * file, under the same locks, before it forgets the file). */
static void pin_file(void *ctx, const kd_loc *loc)
{
	get_pin *p = ctx;
	p->f = bc_file_at(p->bc, loc->fileno);
	atomic_fetch_add(&p->f->refs, 1);
}

int bitcask_get(bitcask *bc, const void *key, size_t key_len,
		void **value, size_t *value_len)
{
	kd_loc loc;
	bc_file *f;

	if (key_len > REC_MAX_KEY)
		return DKV_ENOTFOUND;
	get_pin pin = { bc, NULL };
	if (!keydir_get_pin(bc->kd, key, key_len, &loc, pin_file, &pin))
		return DKV_ENOTFOUND;
	f = pin.f;
	uint64_t fid = f->id;
	int rc = 0;
	uint8_t *buf = NULL;
	const uint8_t *rec;
	if (f->map && (uint64_t)loc.offset + loc.size <= f->map_len) {
		rec = f->map + loc.offset;
	} else {
		buf = malloc(loc.size ? loc.size : 1);
		rc = buf ? bc_pread_full(bc->io, f->fd, buf, loc.size, loc.offset) : -ENOMEM;
		rec = buf;
	}
	rec_view rv;
	if (!rc && (rec_decode(rec, loc.size, 0, &rv) != 0 || rv.size != loc.size ||
		    rv.key_len != key_len || memcmp(rv.key, key, key_len) != 0 ||
		    (rv.flags & REC_FLAG_TOMBSTONE))) {
		bc_log(bc, 0, "record of a key at %016" PRIx64 ".data offset %" PRIu32
		       " fails its checksum", fid, loc.offset);
		rc = DKV_ECORRUPT;
		pthread_mutex_lock(&bc->mu);
		bc->st.read_errors++;
		pthread_mutex_unlock(&bc->mu);
	}
	if (!rc) {
		if (buf) {
			memmove(buf, rv.value, rv.value_len);
		} else {
			buf = malloc(rv.value_len ? rv.value_len : 1);
			if (buf)
				memcpy(buf, rv.value, rv.value_len);
			else
				rc = -ENOMEM;
		}
	}
	bc_file_unref(f);
	if (rc) {
		free(buf);
		return rc;
	}
	*value = buf;
	*value_len = rv.value_len;
	return 0;
}

/* --- iteration ----------------------------------------------------------- */

#define ITER_BATCH 256

struct bitcask_iter {
	bitcask *bc;
	bool want_values;
	bool more;              /* true iff keydir_scan may have more */
	kd_pos *pos;            /* resume point (large: heap) */
	uint8_t *keys;          /* the batch's keys, back to back */
	size_t keys_len, keys_cap;
	size_t offs[ITER_BATCH + 1]; /* start of each key in keys; offs[n] = end */
	size_t n, idx;          /* keys in batch, next to hand out */
	void *value;            /* the value handed out last (owned) */
};

static bool iter_collect(void *ctx, const uint8_t *key, size_t key_len, const kd_loc *loc)
{
	bitcask_iter *it = ctx;
	(void)loc;
	if (it->keys_len + key_len > it->keys_cap) {
		size_t ncap = it->keys_cap * 2;
		while (ncap < it->keys_len + key_len)
			ncap *= 2;
		uint8_t *nk = realloc(it->keys, ncap);
		if (!nk)
			return false;
		it->keys = nk;
		it->keys_cap = ncap;
	}
	memcpy(it->keys + it->keys_len, key, key_len);
	it->offs[it->n] = it->keys_len;
	it->keys_len += key_len;
	it->n++;
	it->offs[it->n] = it->keys_len;
	return it->n < ITER_BATCH;
}

int bitcask_iter_open(bitcask *bc, bool want_values, bitcask_iter **out)
{
	bitcask_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->pos = calloc(1, sizeof(*it->pos));
	it->keys_cap = 16384;
	it->keys = malloc(it->keys_cap);
	if (!it->pos || !it->keys) {
		free(it->pos);
		free(it->keys);
		free(it);
		return -ENOMEM;
	}
	it->bc = bc;
	it->want_values = want_values;
	it->more = true;
	*out = it;
	return 0;
}

int bitcask_iter_next(bitcask_iter *it, const uint8_t **key, size_t *key_len,
		      const uint8_t **value, size_t *value_len)
{
	free(it->value);
	it->value = NULL;
	for (;;) {
		if (it->idx == it->n) {
			if (!it->more)
				return DKV_ENOTFOUND;
			it->n = it->idx = it->keys_len = 0;
			it->offs[0] = 0;
			it->more = keydir_scan(it->bc->kd, it->pos, ITER_BATCH,
					       iter_collect, it, it->pos);
			if (it->n == 0 && !it->more)
				return DKV_ENOTFOUND;
			if (it->n == 0)
				continue;
		}
		size_t i = it->idx++;
		const uint8_t *k = it->keys + it->offs[i];
		size_t kl = it->offs[i + 1] - it->offs[i];
		if (it->want_values) {
			size_t vl;
			int rc = bitcask_get(it->bc, k, kl, &it->value, &vl);
			if (rc == DKV_ENOTFOUND || rc == DKV_ECORRUPT)
				continue;     /* deleted since the batch was taken, or unreadable (logged) */
			if (rc)
				return rc;
			*value = it->value;
			*value_len = vl;
		} else if (value) {
			*value = NULL;
			*value_len = 0;
		}
		*key = k;
		*key_len = kl;
		return 0;
	}
}

void bitcask_iter_close(bitcask_iter *it)
{
	if (!it)
		return;
	free(it->value);
	free(it->keys);
	free(it->pos);
	free(it);
}

/* --- statistics ---------------------------------------------------------- */

void bitcask_stats_get(bitcask *bc, bitcask_stats *st, bitcask_file_stats *files, size_t *nfiles)
{
	size_t cap = nfiles ? *nfiles : 0, n = 0;
	pthread_mutex_lock(&bc->mu);
	*st = bc->st;
	st->keys = keydir_count(bc->kd);
	st->keydir_bytes = keydir_memory(bc->kd);
	st->live_bytes = st->dead_bytes = st->total_bytes = 0;
	for (uint32_t i = 0; i < bc->nfiles; i++) {
		bc_file *f = bc_file_at(bc, i);
		if (!f)
			continue;
		st->live_bytes += f->live_bytes;
		st->dead_bytes += f->dead_bytes;
		st->total_bytes += f->size;
		if (files && n < cap) {
			files[n].id = f->id;
			files[n].total_bytes = f->size;
			files[n].live_bytes = f->live_bytes;
			files[n].dead_bytes = f->dead_bytes;
			files[n].live_keys = f->live_keys;
			files[n].active = f == bc->active;
			files[n].has_hint = f->has_hint;
		}
		n++;
	}
	st->files = n;
	st->fragmentation = st->total_bytes ? (double)st->dead_bytes / (double)st->total_bytes : 0;
	st->failed = bc->failed_rc != 0;
	st->failed_rc = bc->failed_rc;
	pthread_mutex_unlock(&bc->mu);
	if (nfiles)
		*nfiles = n;
}

typedef struct check_ctx {
	bitcask *bc;
	uint64_t *live_bytes;   /* per fileno */
	uint64_t *live_keys;
	char *err;
	size_t errlen;
	bool bad;
} check_ctx;

static bool check_visit(void *ctx, const uint8_t *key, size_t key_len, const kd_loc *loc)
{
	check_ctx *c = ctx;
	(void)key;
	(void)key_len;
	bc_file *f = loc->fileno < c->bc->nfiles ? bc_file_at(c->bc, loc->fileno) : NULL;
	if (!f) {
		snprintf(c->err, c->errlen, "keydir points at file number %u, which is gone", loc->fileno);
		c->bad = true;
		return false;
	}
	if ((uint64_t)loc->offset + loc->size > f->size || loc->offset < DATAFILE_HDR_SIZE) {
		snprintf(c->err, c->errlen, "keydir points outside file %016" PRIx64, f->id);
		c->bad = true;
		return false;
	}
	c->live_bytes[loc->fileno] += loc->size;
	c->live_keys[loc->fileno]++;
	return true;
}

int bitcask_check(bitcask *bc, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&bc->mu);
	if (keydir_check(bc->kd, err, errlen) != 0) {
		rc = -1;
		goto out;
	}
	check_ctx c = { bc, calloc(bc->nfiles + 1, 8), calloc(bc->nfiles + 1, 8), err, errlen, false };
	if (!c.live_bytes || !c.live_keys) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
		goto out_free;
	}
	keydir_foreach(bc->kd, check_visit, &c);
	if (c.bad) {
		rc = -1;
		goto out_free;
	}
	for (uint32_t i = 0; i < bc->nfiles; i++) {
		bc_file *f = bc_file_at(bc, i);
		if (!f)
			continue;
		if (f->live_bytes != c.live_bytes[i] || f->live_keys != c.live_keys[i]) {
			snprintf(err, errlen, "file %016" PRIx64 ": counters say %" PRIu64 " live bytes in %"
				 PRIu64 " keys, keydir says %" PRIu64 " in %" PRIu64, f->id, f->live_bytes,
				 f->live_keys, c.live_bytes[i], c.live_keys[i]);
			rc = -1;
			goto out_free;
		}
		if (f->live_bytes + f->dead_bytes + DATAFILE_HDR_SIZE > f->size) {
			snprintf(err, errlen, "file %016" PRIx64 ": live + dead bytes exceed its size", f->id);
			rc = -1;
			goto out_free;
		}
	}
out_free:
	free(c.live_bytes);
	free(c.live_keys);
out:
	pthread_mutex_unlock(&bc->mu);
	return rc;
}

/* --- background threads -------------------------------------------------- */

static void abs_deadline(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void run_job(bitcask *bc, bc_job *job)
{
	bc_file *f = job->file;
	int rc = 0;
	/* A merge that began just after the rotation may have removed the file
	 * already: then there is nothing to describe. */
	pthread_mutex_lock(&bc->mu);
	bool gone = bc_file_at(bc, f->fileno) != f;
	pthread_mutex_unlock(&bc->mu);
	if (gone)
		goto out;
	/* The hint promises records that must be on disk: sync the data first. */
	if (bc->cfg.sync != BITCASK_SYNC_NONE && bc->io->fdatasync(f->fd) != 0)
		rc = -errno;
	if (!rc)
		rc = bc_hint_write(bc, f->id, &job->hint, f->size);
	if (rc)
		bc_log(bc, 1, "hint file for %016" PRIx64 ".data not written: %s (the file will be scanned at open)",
		       f->id, dkv_strerror(rc));
	pthread_mutex_lock(&bc->mu);
	if (!rc)
		f->has_hint = true;
	pthread_mutex_unlock(&bc->mu);
out:
	bc_hint_free(&job->hint);
	bc_file_unref(f);
	free(job);
}

/* One round of background work in the calling thread: every queued hint
 * job, then one merge if one was requested or the thresholds want one.
 * Called with bc->mu held, which it releases while it works.  A round
 * running in another thread is waited for first, so rounds never overlap
 * (the worker's, bitcask_work's, an external bitcask_merge's).  Returns
 * true iff it did anything; *merge_rc is the merge's result, 0 if none ran. */
static bool work_round_locked(bitcask *bc, int *merge_rc)
{
	bool did = false;

	*merge_rc = 0;
	while (bc->working && !bc->stop)
		pthread_cond_wait(&bc->merge_done_cv, &bc->mu);
	if (bc->stop)
		return false;
	bc->working = true;
	while (bc->jobs && !bc->stop) {
		bc_job *job = bc->jobs;
		bc->jobs = job->next;
		if (!bc->jobs)
			bc->jobs_tail = &bc->jobs;
		pthread_mutex_unlock(&bc->mu);
		run_job(bc, job);
		pthread_mutex_lock(&bc->mu);
		did = true;
	}
	if (!bc->stop && (bc->merge_requested || bc_merge_wanted_locked(bc))) {
		bc->merge_requested = false;
		bc->st.merging = true;
		pthread_mutex_unlock(&bc->mu);
		int rc = bc_merge_run(bc);
		if (rc && rc != DKV_ECLOSED)
			bc_log(bc, 0, "merge failed: %s (the old files are kept)", dkv_strerror(rc));
		pthread_mutex_lock(&bc->mu);
		bc->st.merging = false;
		bc->merge_rc = rc;
		bc->merge_gen++;
		*merge_rc = rc;
		did = true;
	}
	bc->working = false;
	pthread_cond_broadcast(&bc->merge_done_cv);
	return did;
}

static void *worker_main(void *arg)
{
	bitcask *bc = arg;
	pthread_mutex_lock(&bc->mu);
	while (!bc->stop) {
		int rc;
		if (work_round_locked(bc, &rc))
			continue;   /* more may have come meanwhile */
		struct timespec dl;
		abs_deadline(&dl, bc->cfg.merge_check_ms ? bc->cfg.merge_check_ms : 10000);
		pthread_cond_timedwait(&bc->work_cv, &bc->mu, &dl);
	}
	pthread_mutex_unlock(&bc->mu);
	return NULL;
}

bool bitcask_work_pending(bitcask *bc)
{
	pthread_mutex_lock(&bc->mu);
	bool pending = !bc->closing &&
		       (bc->jobs || bc->merge_requested || bc_merge_wanted_locked(bc));
	pthread_mutex_unlock(&bc->mu);
	return pending;
}

/* A caller of bitcask_work or bitcask_merge leaves: close may be waiting. */
static void leave_locked(bitcask *bc)
{
	bc->users--;
	pthread_cond_broadcast(&bc->merge_done_cv);
	pthread_mutex_unlock(&bc->mu);
}

int bitcask_work(bitcask *bc)
{
	int rc;
	pthread_mutex_lock(&bc->mu);
	bc->users++;
	if (bc->closing)
		rc = DKV_ECLOSED;
	else
		work_round_locked(bc, &rc);
	leave_locked(bc);
	return rc;
}

static void *syncer_main(void *arg)
{
	bitcask *bc = arg;
	pthread_mutex_lock(&bc->mu);
	while (!bc->stop) {
		struct timespec dl;
		abs_deadline(&dl, bc->cfg.sync_interval_ms ? bc->cfg.sync_interval_ms : 1000);
		pthread_cond_timedwait(&bc->syncer_cv, &bc->mu, &dl);
		if (bc->stop || bc->failed_rc)
			continue;
		uint64_t seq = bc->write_seq;
		pthread_mutex_unlock(&bc->mu);
		pthread_mutex_lock(&bc->sync_mu);
		bool due = bc->synced_seq < seq;
		pthread_mutex_unlock(&bc->sync_mu);
		if (due)
			wait_durable(bc, seq);
		pthread_mutex_lock(&bc->mu);
	}
	pthread_mutex_unlock(&bc->mu);
	return NULL;
}

int bitcask_merge(bitcask *bc)
{
	pthread_mutex_lock(&bc->mu);
	bc->users++;
	if (bc->closing) {
		leave_locked(bc);
		return DKV_ECLOSED;
	}
	/* A merge already running may have chosen its inputs before the caller's
	 * last writes: wait for the one after it. */
	uint64_t target = bc->merge_gen + (bc->st.merging ? 2 : 1);
	bc->merge_requested = true;
	if (bc->cfg.external_worker) {
		/* Our round waits for a running one, which may take our request
		 * (then its merge, begun after this call, is the one we need). */
		int unused;
		work_round_locked(bc, &unused);
	} else {
		pthread_cond_signal(&bc->work_cv);
	}
	while (bc->merge_gen < target && !bc->stop)
		pthread_cond_wait(&bc->merge_done_cv, &bc->mu);
	int rc = bc->merge_gen < target ? DKV_ECLOSED : bc->merge_rc;
	leave_locked(bc);
	return rc;
}

/* --- open and close ------------------------------------------------------ */

static int take_lock(bitcask *bc, char *err, size_t errlen)
{
	char path[4096], holder[32];
	int rc;

	snprintf(path, sizeof(path), "%s/LOCK", bc->dir);
	rc = dkv_file_lock(path, &bc->lockfd, holder, sizeof(holder));
	if (rc == DKV_ELOCKED)
		snprintf(err, errlen, "%s is locked by another opener (pid %s): one process per data directory",
			 bc->dir, holder);
	else if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

static void free_store(bitcask *bc)
{
	for (uint32_t i = 0; i < bc->nfiles; i++)
		bc_file_unref(bc_file_at(bc, i));
	for (uint32_t i = 0; i < BC_FILE_CHUNKS && bc->files[i]; i++)
		free(bc->files[i]);
	while (bc->jobs) {
		bc_job *j = bc->jobs;
		bc->jobs = j->next;
		bc_hint_free(&j->hint);
		bc_file_unref(j->file);
		free(j);
	}
	bc_hint_free(&bc->active_hint);
	free(bc->gbuf);
	keydir_free(bc->kd);
	if (bc->dirfd >= 0)
		close(bc->dirfd);
	if (bc->lockfd >= 0)
		close(bc->lockfd);
	pthread_mutex_destroy(&bc->mu);
	pthread_mutex_destroy(&bc->sync_mu);
	pthread_cond_destroy(&bc->sync_cv);
	pthread_cond_destroy(&bc->work_cv);
	pthread_cond_destroy(&bc->merge_done_cv);
	pthread_cond_destroy(&bc->syncer_cv);
	free(bc->dir);
	free(bc);
}

static void init_cond_monotonic(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

static int check_config(const bitcask_config *c, char *err, size_t errlen)
{
	if (c->max_file_size < 4096 || c->max_file_size > UINT32_MAX) {
		snprintf(err, errlen, "max_file_size %" PRIu64 " is out of range (4096 .. 4294967295)", c->max_file_size);
		return DKV_EINVAL;
	}
	if (c->max_key_size > REC_MAX_KEY) {
		snprintf(err, errlen, "max_key_size %" PRIu32 " is over the format's limit of %u", c->max_key_size, REC_MAX_KEY);
		return DKV_EINVAL;
	}
	if (c->sync > BITCASK_SYNC_MANUAL) {
		snprintf(err, errlen, "unknown sync policy %d", (int)c->sync);
		return DKV_EINVAL;
	}
	if (c->merge_frag_threshold < 0 || c->merge_frag_threshold > 1) {
		snprintf(err, errlen, "merge_frag_threshold %g is not within 0..1", c->merge_frag_threshold);
		return DKV_EINVAL;
	}
	return 0;
}

int bitcask_open(bitcask **out, const char *dir, const bitcask_config *cfg,
		 char *err, size_t errlen)
{
	char dummy[1];
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	bitcask_config defaults;
	if (!cfg) {
		bitcask_config_init(&defaults);
		cfg = &defaults;
	}
	int rc = check_config(cfg, err, errlen);
	if (rc)
		return rc;

	bitcask *bc = calloc(1, sizeof(*bc));
	if (!bc)
		return -ENOMEM;
	bc->cfg = *cfg;
	bc->io = cfg->io ? cfg->io : bcio_default();
	bc->dirfd = bc->lockfd = -1;
	bc->jobs_tail = &bc->jobs;
	bc->wq_tail = &bc->wq_head;
	pthread_mutex_init(&bc->mu, NULL);
	pthread_mutex_init(&bc->sync_mu, NULL);
	pthread_cond_init(&bc->sync_cv, NULL);
	pthread_cond_init(&bc->merge_done_cv, NULL);
	init_cond_monotonic(&bc->work_cv);
	init_cond_monotonic(&bc->syncer_cv);
	bc->dir = strdup(dir);
	if (!bc->dir) {
		rc = -ENOMEM;
		goto out_free;
	}

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto out_free;
	}
	bc->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bc->dirfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
		goto out_free;
	}
	rc = take_lock(bc, err, errlen);
	if (rc)
		goto out_free;

	siphash_key hk;
	rc = siphash_key_random(&hk);
	if (rc) {
		snprintf(err, errlen, "no random source for the key directory's hash key: %s", strerror(-rc));
		goto out_free;
	}
	bc->kd = keydir_new(&hk);
	if (!bc->kd) {
		rc = -ENOMEM;
		goto out_free;
	}

	rc = bc_recover(bc, err, errlen);
	if (rc)
		goto out_free;
	pthread_mutex_lock(&bc->mu);
	rc = open_active_locked(bc);
	pthread_mutex_unlock(&bc->mu);
	if (rc) {
		snprintf(err, errlen, "cannot create a data file in %s: %s", dir, dkv_strerror(rc));
		goto out_free;
	}

	if (!bc->cfg.external_worker) {
		if (pthread_create(&bc->worker, NULL, worker_main, bc) != 0) {
			rc = -EAGAIN;
			snprintf(err, errlen, "cannot start the store's worker thread");
			goto out_free;
		}
		bc->have_worker = true;
	}
	if (bc->cfg.sync == BITCASK_SYNC_INTERVAL) {
		if (pthread_create(&bc->syncer, NULL, syncer_main, bc) != 0) {
			rc = -EAGAIN;
			snprintf(err, errlen, "cannot start the store's sync thread");
			goto out_stop;
		}
		bc->have_syncer = true;
	}
	*out = bc;
	return 0;

out_stop:
	pthread_mutex_lock(&bc->mu);
	bc->stop = true;
	pthread_cond_broadcast(&bc->work_cv);
	pthread_mutex_unlock(&bc->mu);
	if (bc->have_worker)
		pthread_join(bc->worker, NULL);
out_free:
	free_store(bc);
	return rc;
}

static int close_store(bitcask *bc, bool discard);

int bitcask_close(bitcask *bc)
{
	return close_store(bc, false);
}

int bitcask_close_discard(bitcask *bc)
{
	return close_store(bc, true);
}

static int close_store(bitcask *bc, bool discard)
{
	if (!bc)
		return 0;
	pthread_mutex_lock(&bc->mu);
	bc->closing = true;
	bc->stop = true;
	pthread_cond_broadcast(&bc->work_cv);
	pthread_cond_broadcast(&bc->syncer_cv);
	pthread_cond_broadcast(&bc->merge_done_cv);
	/* Callers of bitcask_work and bitcask_merge in other threads: a
	 * running merge stops at its next 1024 records (it sees stop). */
	while (bc->users)
		pthread_cond_wait(&bc->merge_done_cv, &bc->mu);
	pthread_mutex_unlock(&bc->mu);
	if (bc->have_worker)
		pthread_join(bc->worker, NULL);
	if (bc->have_syncer)
		pthread_join(bc->syncer, NULL);

	if (discard) {   /* the store is about to be deleted */
		free_store(bc);
		return 0;
	}
	/* Pending hint jobs: run them now, so the next open reads hints. */
	while (bc->jobs) {
		bc_job *j = bc->jobs;
		bc->jobs = j->next;
		run_job(bc, j);
	}
	bc->jobs_tail = &bc->jobs;

	int rc = bc->failed_rc;
	bc_file *a = bc->active;
	if (!rc && a && a->size > DATAFILE_HDR_SIZE) {
		if (bc->io->fdatasync(a->fd) != 0 ||
		    (bc->dir_gen > bc->dir_synced && bc_fsync_dir(bc) != 0))
			rc = -errno;
		if (!rc) {
			/* The active file is immutable from the next open on. */
			int hrc = bc_hint_write(bc, a->id, &bc->active_hint, a->size);
			if (hrc)
				bc_log(bc, 1, "hint for the active file not written: %s", dkv_strerror(hrc));
		}
	}
	if (a && a->size <= DATAFILE_HDR_SIZE) {
		/* Nothing was written: leave no empty file behind.  No sync:
		 * should the removal not survive a crash, recovery removes a
		 * file no longer than a header.  (A node closing 512 untouched
		 * stores made 1,024 forced disk writes here.) */
		char path[4096];
		bc_path(bc, path, sizeof(path), a->id, ".data");
		bc->io->unlink(path);
	}
	free_store(bc);
	return rc;
}
