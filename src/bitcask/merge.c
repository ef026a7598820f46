/*
 * merge.c -- rewriting the live records of every immutable file into new
 * files, to reclaim the space of superseded records and tombstones.
 *
 * STATES OF ONE MERGE (a crash in any state loses nothing):
 *
 *   COPY     inputs = every immutable file at the start, oldest first; each
 *            record the keydir still points at is copied to an output
 *            NNNN.data.tmp (ids newest-input + 1, + 2, ...), with its hint
 *            entry.  Crash: the .tmp files are removed at open; the inputs
 *            are untouched.
 *   PUBLISH  each output is fdatasynced, its hint written (.hint.tmp, fsync),
 *            then both renamed into place and the directory fsynced.  Crash:
 *            inputs and outputs both exist; outputs sort after every input,
 *            and hold only copies of records that were the newest of their
 *            keys among the inputs, so replay gives the same keydir.
 *   SWAP     under the store's mutex, each moved key's keydir entry is
 *            switched to the copy if it still points at the original
 *            (a put meanwhile wins: its record is newer).  In memory only.
 *   DELETE   inputs are removed from the file table, the active file is
 *            fdatasynced (it may hold the only record superseding a value
 *            the copy dropped), then the inputs are unlinked oldest
 *            first (hint before data), then the directory is fsynced.
 *            Crash: some inputs remain.  Tombstones are never copied, so a
 *            deleted key stays deleted only if no remaining input holds an
 *            older value for it than a remaining tombstone -- which oldest-
 *            first unlinking guarantees: when the file with a tombstone is
 *            unlinked, every older input is already gone.
 *
 * Readers that took a file reference before DELETE keep reading the unlinked
 * file through its open descriptor.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitcask_int.h"
#include "crc32c.h"
#include "error.h"
#include "record.h"

#define OUT_BUF_SIZE (1u << 20)
#define SWAP_BATCH 4096

/* Where a copied record came from. */
typedef struct merge_move {
	uint32_t fileno;        /* input file */
	uint32_t offset;        /* in it */
} merge_move;

typedef struct merge_out {
	uint64_t id;            /* output file id */
	int fd;                 /* open on id.data.tmp */
	uint64_t size;          /* bytes written (and buffered) */
	bc_hintbuf hint;        /* hint entries, in file order */
	merge_move *moves;      /* one per hint entry */
	size_t nmoves, cap;
	bool renamed;           /* true iff published */
} merge_out;

typedef struct merge_state {
	bitcask *bc;
	bc_file **in;           /* inputs, oldest first, referenced */
	size_t nin;
	merge_out *out;         /* outputs */
	size_t nout, outcap;
	uint8_t *buf;           /* write buffer of the current output */
	size_t buf_len;
	uint64_t buf_off;       /* file offset of buf[0] */
	uint64_t next_id;
	uint64_t bytes_in;
} merge_state;

bool bc_merge_wanted_locked(bitcask *bc)
{
	if (bc->closing || bc->failed_rc)
		return false;
	const bitcask_config *c = &bc->cfg;
	uint64_t immutable = 0;
	bool over = false;
	for (uint32_t i = 0; i < bc->nfiles; i++) {
		bc_file *f = bc_file_at(bc, i);
		if (!f || f == bc->active)
			continue;
		immutable += f->size;
		if (c->merge_frag_threshold > 0 && f->size &&
		    (double)f->dead_bytes / (double)f->size >= c->merge_frag_threshold)
			over = true;
		if (c->merge_dead_bytes && f->dead_bytes >= c->merge_dead_bytes)
			over = true;
	}
	return over && immutable >= c->merge_min_bytes;
}

static int flush_out(merge_state *m)
{
	merge_out *o = &m->out[m->nout - 1];
	int rc = bc_pwrite_full(m->bc->io, o->fd, m->buf, m->buf_len, m->buf_off);
	m->buf_off += m->buf_len;
	m->buf_len = 0;
	return rc;
}

static int start_out(merge_state *m)
{
	bitcask *bc = m->bc;
	if (((m->next_id + 1) & ((1u << BC_ID_SUB_BITS) - 1)) == 0)
		return DKV_EBUSY;   /* no id left below the active file's */
	if (m->nout == m->outcap) {
		size_t ncap = m->outcap ? m->outcap * 2 : 4;
		merge_out *no = realloc(m->out, ncap * sizeof(*no));
		if (!no)
			return -ENOMEM;
		m->out = no;
		m->outcap = ncap;
	}
	merge_out *o = &m->out[m->nout];
	memset(o, 0, sizeof(*o));
	o->id = m->next_id++;
	char path[4096];
	bc_path(bc, path, sizeof(path), o->id, ".data.tmp");
	o->fd = bc->io->open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (o->fd < 0)
		return -errno;
	m->nout++;
	datafile_header_encode(m->buf);
	m->buf_len = DATAFILE_HDR_SIZE;
	m->buf_off = 0;
	o->size = DATAFILE_HDR_SIZE;
	return 0;
}

/* Flush and fdatasync the current output, then write its hint (.tmp). */
static int finish_out(merge_state *m)
{
	bitcask *bc = m->bc;
	merge_out *o = &m->out[m->nout - 1];
	int rc = flush_out(m);
	if (!rc && bc->io->fdatasync(o->fd) != 0)
		rc = -errno;
	if (rc)
		return rc;
	/* The hint goes to id.hint.tmp now; publish renames it. */
	char tmp[4096];
	uint8_t hdr[HINT_HDR_SIZE];
	if (o->hint.broken)
		return -ENOMEM;
	bc_path(bc, tmp, sizeof(tmp), o->id, ".hint.tmp");
	hint_header_encode(hdr, o->hint.count, o->size, crc32c(0, o->hint.buf, o->hint.len));
	int fd = bc->io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -errno;
	rc = bc_pwrite_full(bc->io, fd, hdr, sizeof(hdr), 0);
	if (!rc && o->hint.len)
		rc = bc_pwrite_full(bc->io, fd, o->hint.buf, o->hint.len, sizeof(hdr));
	if (!rc && bc->io->fsync(fd) != 0)
		rc = -errno;
	bc->io->close(fd);
	return rc;
}

static int copy_record(merge_state *m, const bc_file *in, uint64_t off, const rec_view *rv)
{
	bitcask *bc = m->bc;
	merge_out *o = m->nout ? &m->out[m->nout - 1] : NULL;
	int rc;
	if (!o || o->size + rv->size > bc->cfg.max_file_size) {
		if (o && (rc = finish_out(m)) != 0)
			return rc;
		if ((rc = start_out(m)) != 0)
			return rc;
		o = &m->out[m->nout - 1];
	}
	if (m->buf_len + rv->size > OUT_BUF_SIZE && (rc = flush_out(m)) != 0)
		return rc;
	const uint8_t *raw = rv->key - REC_HDR_SIZE;
	if (rv->size > OUT_BUF_SIZE) {
		/* Larger than the buffer: straight to the file. */
		rc = bc_pwrite_full(bc->io, o->fd, raw, rv->size, m->buf_off);
		if (rc)
			return rc;
		m->buf_off += rv->size;
	} else {
		memcpy(m->buf + m->buf_len, raw, rv->size);
		m->buf_len += rv->size;
	}
	rc = bc_hint_add(&o->hint, rv->timestamp, (uint32_t)o->size, rv->size, rv->flags,
			 rv->key, rv->key_len);
	if (rc)
		return rc;
	if (o->nmoves == o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 1024;
		merge_move *nm = realloc(o->moves, ncap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		o->moves = nm;
		o->cap = ncap;
	}
	o->moves[o->nmoves++] = (merge_move){ in->fileno, (uint32_t)off };
	o->size += rv->size;
	return 0;
}

/* COPY one input. */
static int copy_input(merge_state *m, bc_file *in)
{
	bitcask *bc = m->bc;
	bc_reader r;
	int rc = bc_reader_init(&r, bc->io, in->fd, in->size, 0);
	if (rc)
		return rc;
	uint64_t off = DATAFILE_HDR_SIZE;
	unsigned n = 0;
	for (;;) {
		rec_view rv;
		uint64_t next = 0;
		rc = bc_reader_next(&r, off, &rv, &next);
		if (rc < 0)
			break;
		if (rc == BC_SCAN_EOF) {
			rc = 0;
			break;
		}
		if (rc == BC_SCAN_BAD) {
			/* Counted and logged at open; nothing the keydir points at. */
			rc = 0;
			if (next >= in->size)
				break;
			off = next;
			continue;
		}
		if (!(rv.flags & REC_FLAG_TOMBSTONE)) {
			/* Only the key's shard lock: a put racing with this check
			 * makes the copy dead, which the swap's CAS finds. */
			kd_loc loc;
			bool live = keydir_get(bc->kd, rv.key, rv.key_len, &loc) &&
				    loc.fileno == in->fileno && loc.offset == off;
			if (live && (rc = copy_record(m, in, off, &rv)) != 0)
				break;
		}
		off += rv.size;
		if ((++n & 1023) == 0) {
			pthread_mutex_lock(&bc->mu);
			bool stop = bc->stop;
			pthread_mutex_unlock(&bc->mu);
			if (stop) {
				rc = DKV_ECLOSED;
				break;
			}
		}
	}
	m->bytes_in += in->size;
	bc_reader_free(&r);
	return rc;
}

static int publish(merge_state *m)
{
	bitcask *bc = m->bc;
	char from[4096], to[4096];
	for (size_t i = 0; i < m->nout; i++) {
		merge_out *o = &m->out[i];
		bc_path(bc, from, sizeof(from), o->id, ".data.tmp");
		bc_path(bc, to, sizeof(to), o->id, ".data");
		if (bc->io->rename(from, to) != 0)
			return -errno;
		o->renamed = true;
		bc_path(bc, from, sizeof(from), o->id, ".hint.tmp");
		bc_path(bc, to, sizeof(to), o->id, ".hint");
		if (bc->io->rename(from, to) != 0)
			return -errno;
	}
	return bc_fsync_dir(bc);
}

typedef struct stranded_ctx {
	const merge_state *m;
	uint8_t *keys;          /* key_len (2 bytes) + key, back to back */
	size_t len, cap;
	bool oom;
} stranded_ctx;

static bool collect_stranded(void *ctx, const uint8_t *key, size_t key_len, const kd_loc *loc)
{
	stranded_ctx *c = ctx;
	bool in = false;
	for (size_t i = 0; i < c->m->nin && !in; i++)
		in = c->m->in[i]->fileno == loc->fileno;
	if (!in)
		return true;
	if (c->len + 2 + key_len > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 4096;
		while (ncap < c->len + 2 + key_len)
			ncap *= 2;
		uint8_t *nk = realloc(c->keys, ncap);
		if (!nk) {
			c->oom = true;
			return false;
		}
		c->keys = nk;
		c->cap = ncap;
	}
	put_u16(c->keys + c->len, (uint16_t)key_len);
	memcpy(c->keys + c->len + 2, key, key_len);
	c->len += 2 + key_len;
	return true;
}

static void drop_stranded_locked(merge_state *m)
{
	bitcask *bc = m->bc;
	stranded_ctx c = { .m = m };
	keydir_foreach(bc->kd, collect_stranded, &c);
	uint64_t n = 0;
	for (size_t pos = 0; pos < c.len;) {
		uint16_t kl = get_u16(c.keys + pos);
		kd_loc old;
		if (keydir_del(bc->kd, c.keys + pos + 2, kl, &old)) {
			bc_file *f = bc_file_at(bc, old.fileno);
			f->live_bytes -= old.size;
			f->dead_bytes += old.size;
			f->live_keys--;
			n++;
		}
		pos += 2 + (size_t)kl;
	}
	free(c.keys);
	bc->st.corrupt_records += n;
	bc_log(bc, 0, "merge: %" PRIu64 " keys whose records fail their checksum were dropped%s",
	       n, c.oom ? " (out of memory: some remain)" : "");
}

/* SWAP: point the keydir at the copies.  Returns 0 or -ENOMEM (registering
 * the outputs), in which case nothing was swapped. */
static int swap(merge_state *m, bc_file **outs)
{
	bitcask *bc = m->bc;
	pthread_mutex_lock(&bc->mu);
	for (size_t i = 0; i < m->nout; i++) {
		int rc = bc_file_register_locked(bc, m->out[i].id, m->out[i].fd, m->out[i].size, &outs[i]);
		if (rc) {
			pthread_mutex_unlock(&bc->mu);
			return rc;
		}
		m->out[i].fd = -1;        /* owned by the file table now */
		outs[i]->has_hint = true;
		bc_file_map(bc, outs[i], (size_t)m->out[i].size);
	}
	unsigned batch = 0;
	for (size_t i = 0; i < m->nout; i++) {
		merge_out *o = &m->out[i];
		bc_file *of = outs[i];
		size_t pos = 0;
		for (size_t k = 0; k < o->nmoves; k++) {
			hint_entry e;
			int n = hint_entry_decode(o->hint.buf + pos, o->hint.len - pos, &e);
			pos += (size_t)n;
			kd_loc expect = { o->moves[k].fileno, o->moves[k].offset, e.size };
			kd_loc loc = { of->fileno, e.offset, e.size };
			if (keydir_cas(bc->kd, e.key, e.key_len, &expect, &loc)) {
				bc_file *in = bc_file_at(bc, expect.fileno);
				in->live_bytes -= e.size;
				in->dead_bytes += e.size;
				in->live_keys--;
				of->live_bytes += e.size;
				of->live_keys++;
			} else {
				of->dead_bytes += e.size;   /* superseded while we copied */
			}
			if (++batch == SWAP_BATCH) {
				/* Let requests in; both copies are valid meanwhile. */
				batch = 0;
				pthread_mutex_unlock(&bc->mu);
				pthread_mutex_lock(&bc->mu);
			}
		}
	}
	/* Keys the copy could not read (a hint pointed at a record that fails
	 * its checksum) still point into the inputs: drop them, or they would
	 * point into unlinked files.  Their records were unreadable anyway. */
	uint64_t stranded = 0;
	for (size_t i = 0; i < m->nin; i++)
		stranded += m->in[i]->live_keys;
	if (stranded)
		drop_stranded_locked(m);
	/* DELETE, part one: no keydir entry points into an input any more. */
	for (size_t i = 0; i < m->nin; i++) {
		bc_file *in = m->in[i];
		if (bc_file_at(bc, in->fileno) == in) {
			bc_file_forget_locked(bc, in->fileno);
			bc_file_unref(in);        /* the table's reference */
		}
	}
	pthread_mutex_unlock(&bc->mu);
	return 0;
}

/* A merge failed after some outputs were renamed into place.  They hold
 * valid copies, but no later merge would take them as inputs (they are not
 * in the file table), so a tombstone dropped by a later merge could let one
 * of their values come back at the next open.  Remove them; if that fails,
 * fail the store so that it is reopened, which reads them back in.  The
 * inputs are untouched and still hold everything. */
static void unpublish(merge_state *m, bc_file **outs)
{
	bitcask *bc = m->bc;
	char path[4096];
	int rc = 0;
	bool any = outs != NULL;
	for (size_t i = 0; i < m->nout; i++)
		any |= m->out[i].renamed;
	if (!any)
		return;
	pthread_mutex_lock(&bc->mu);
	for (size_t i = 0; outs && i < m->nout; i++) {
		if (outs[i] && bc_file_at(bc, outs[i]->fileno) == outs[i]) {
			bc_file_forget_locked(bc, outs[i]->fileno);
			bc_file_unref(outs[i]);
		}
	}
	pthread_mutex_unlock(&bc->mu);
	for (size_t i = 0; i < m->nout; i++) {
		if (!m->out[i].renamed)
			continue;
		bc_path(bc, path, sizeof(path), m->out[i].id, ".hint");
		if (bc->io->unlink(path) != 0 && errno != ENOENT)
			rc = -errno;
		bc_path(bc, path, sizeof(path), m->out[i].id, ".data");
		if (bc->io->unlink(path) != 0 && errno != ENOENT)
			rc = -errno;
		m->out[i].renamed = false;
	}
	if (!rc)
		rc = bc_fsync_dir(bc);
	if (rc) {
		pthread_mutex_lock(&bc->mu);
		bc_fail_locked(bc, rc, "removing the outputs of a failed merge");
		pthread_mutex_unlock(&bc->mu);
	}
}

static void cleanup_outputs(merge_state *m)
{
	char path[4096];
	for (size_t i = 0; i < m->nout; i++) {
		merge_out *o = &m->out[i];
		if (o->fd >= 0)
			m->bc->io->close(o->fd);
		if (!o->renamed) {
			bc_path(m->bc, path, sizeof(path), o->id, ".data.tmp");
			m->bc->io->unlink(path);
			bc_path(m->bc, path, sizeof(path), o->id, ".hint.tmp");
			m->bc->io->unlink(path);
		}
	}
}

static int cmp_file_id(const void *a, const void *b)
{
	const bc_file *x = *(bc_file *const *)a, *y = *(bc_file *const *)b;
	return x->id < y->id ? -1 : x->id > y->id;
}

int bc_merge_run(bitcask *bc)
{
	merge_state m = { .bc = bc };
	struct timespec t0, t1;
	int rc = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	pthread_mutex_lock(&bc->mu);
	if (bc->failed_rc) {
		pthread_mutex_unlock(&bc->mu);
		return DKV_EFAILED;
	}
	m.in = calloc(bc->nfiles ? bc->nfiles : 1, sizeof(*m.in));
	if (!m.in) {
		pthread_mutex_unlock(&bc->mu);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < bc->nfiles; i++) {
		bc_file *f = bc_file_at(bc, i);
		if (f && f != bc->active) {
			atomic_fetch_add(&f->refs, 1);
			m.in[m.nin++] = f;
		}
	}
	pthread_mutex_unlock(&bc->mu);
	if (m.nin == 0) {
		free(m.in);
		return 0;
	}
	qsort(m.in, m.nin, sizeof(*m.in), cmp_file_id);
	m.next_id = m.in[m.nin - 1]->id + 1;
	m.buf = malloc(OUT_BUF_SIZE);
	if (!m.buf) {
		rc = -ENOMEM;
		goto out;
	}

	for (size_t i = 0; i < m.nin && !rc; i++)
		rc = copy_input(&m, m.in[i]);
	if (!rc && m.nout)
		rc = finish_out(&m);
	if (!rc)
		rc = publish(&m);
	bc_file **outs = NULL;
	if (!rc) {
		outs = calloc(m.nout ? m.nout : 1, sizeof(*outs));
		rc = outs ? swap(&m, outs) : -ENOMEM;
	}
	if (rc) {
		unpublish(&m, outs);
		free(outs);
		goto out;
	}
	free(outs);

	/* DELETE, part one and a half: a record the copy left behind because
	 * a newer one superseded it may be superseded by a record in the
	 * active file that is not yet synced.  Once the inputs are gone, a
	 * power loss would take both, and the key with them: sync the active
	 * file first (unless sync = none, which promises nothing). */
	if (bc->cfg.sync != BITCASK_SYNC_NONE)
		rc = bitcask_sync_now(bc);

	/* DELETE, part two: unlink the inputs oldest first, and stop at the
	 * first failure: a newer input may hold the tombstone that shadows a
	 * value in the one that could not be removed.  The inputs left on disk
	 * are read back in, and merged again, at the next open; until then the
	 * store is failed so that someone reopens it. */
	for (size_t i = 0; i < m.nin && !rc; i++) {
		char path[4096];
		bc_path(bc, path, sizeof(path), m.in[i]->id, ".hint");
		if (bc->io->unlink(path) != 0 && errno != ENOENT)
			rc = -errno;
		bc_path(bc, path, sizeof(path), m.in[i]->id, ".data");
		if (!rc && bc->io->unlink(path) != 0)
			rc = -errno;
	}
	if (!rc)
		rc = bc_fsync_dir(bc);
	if (rc) {
		pthread_mutex_lock(&bc->mu);
		bc_fail_locked(bc, rc, "removing merged files");
		pthread_mutex_unlock(&bc->mu);
		goto out;
	}

	clock_gettime(CLOCK_MONOTONIC, &t1);
	pthread_mutex_lock(&bc->mu);
	bc->st.merges++;
	bc->st.merge_bytes_in = m.bytes_in;
	bc->st.merge_bytes_out = 0;
	for (size_t i = 0; i < m.nout; i++)
		bc->st.merge_bytes_out += m.out[i].size;
	bc->st.merge_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	pthread_mutex_unlock(&bc->mu);
	bc_log(bc, 2, "merged %zu files (%" PRIu64 " bytes) into %zu (%" PRIu64 " bytes)",
	       m.nin, m.bytes_in, m.nout, bc->st.merge_bytes_out);
out:
	cleanup_outputs(&m);
	for (size_t i = 0; i < m.nout; i++) {
		bc_hint_free(&m.out[i].hint);
		free(m.out[i].moves);
	}
	free(m.out);
	for (size_t i = 0; i < m.nin; i++)
		bc_file_unref(m.in[i]);
	free(m.in);
	free(m.buf);
	return rc;
}
