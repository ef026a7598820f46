/*
 * recover.c -- rebuilding the key directory from the files at open, and the
 * record-by-record reader that recovery and merge share.
 *
 * Files are replayed in id order and records in offset order, so the newest
 * record of every key wins, exactly as when it was written.  A data file is
 * read from its hint file when the hint is whole (both checksums) and
 * describes the data file at its present size; otherwise it is scanned.
 *
 * A scan that meets a bad record searches forward, byte by byte, for the next
 * offset where a record verifies.  If one exists, the bad bytes are skipped,
 * counted and logged.  If none does, the rest of the file is a torn tail: in
 * the newest file (the one being appended to at the crash) it is cut off; in
 * an older file it is left alone and counted.  Nothing in the files can make
 * open crash: every length is checked against the bytes that exist.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bitcask_int.h"
#include "error.h"
#include "record.h"

#define READER_WINDOW (1u << 20)

/* --- reader ------------------------------------------------------------ */

int bc_reader_init(bc_reader *r, const bcio *io, int fd, uint64_t file_size, uint32_t max_rec)
{
	memset(r, 0, sizeof(*r));
	r->io = io;
	r->fd = fd;
	r->file_size = file_size;
	r->max_rec = max_rec;
	r->cap = READER_WINDOW;
	r->buf = malloc(r->cap);
	return r->buf ? 0 : -ENOMEM;
}

void bc_reader_free(bc_reader *r)
{
	free(r->buf);
	r->buf = NULL;
}

int bc_reader_at(bc_reader *r, uint64_t off, size_t len, const uint8_t **p, size_t *avail)
{
	if (off >= r->file_size) {
		*p = r->buf;
		*avail = 0;
		return 0;
	}
	if (len > r->file_size - off)
		len = (size_t)(r->file_size - off);
	if (off < r->buf_off || off + len > r->buf_off + r->buf_len) {
		if (len > r->cap) {
			uint8_t *nb = realloc(r->buf, len);
			if (!nb)
				return -ENOMEM;
			r->buf = nb;
			r->cap = len;
		}
		size_t want = r->cap;
		if (want > r->file_size - off)
			want = (size_t)(r->file_size - off);
		int rc = bc_pread_full(r->io, r->fd, r->buf, want, off);
		if (rc == DKV_ECORRUPT)
			return -EIO;  /* the file shrank under us */
		if (rc)
			return rc;
		r->buf_off = off;
		r->buf_len = want;
	}
	*p = r->buf + (off - r->buf_off);
	*avail = (size_t)(r->buf_off + r->buf_len - off);
	return 0;
}

/* Try to decode a record at off: 0, DKV_ECORRUPT (no record here) or <0 I/O. */
static int try_record(bc_reader *r, uint64_t off, rec_view *rv)
{
	const uint8_t *p;
	size_t avail;
	int rc = bc_reader_at(r, off, REC_HDR_SIZE, &p, &avail);
	if (rc)
		return rc;
	rc = rec_decode(p, avail, r->max_rec, rv);
	if (rc != -EAGAIN)
		return rc ? DKV_ECORRUPT : 0;
	if (avail < REC_HDR_SIZE)
		return DKV_ECORRUPT;   /* not even a header before EOF */
	uint64_t size = (uint64_t)REC_HDR_SIZE + get_u16(p + 13) + get_u32(p + 15);
	if (off + size > r->file_size)
		return DKV_ECORRUPT;   /* runs past the end: truncated */
	rc = bc_reader_at(r, off, (size_t)size, &p, &avail);
	if (rc)
		return rc;
	rc = rec_decode(p, avail, r->max_rec, rv);
	return rc ? DKV_ECORRUPT : 0;
}

/* Find where the file's all-zero tail begins (file_size if its last byte is
 * not 0), reading backwards a window at a time.  A file system may leave a
 * zero-filled tail after a crash (the size reached the disk, the data did
 * not): no record can start there (a zero header fails its checksum), so a
 * resync need not try each of those offsets one by one. */
static int find_zero_tail(bc_reader *r)
{
	uint64_t end = r->file_size;
	uint8_t buf[65536];
	while (end > 0) {
		size_t n = end < sizeof(buf) ? (size_t)end : sizeof(buf);
		int rc = bc_pread_full(r->io, r->fd, buf, n, end - n);
		if (rc)
			return rc == DKV_ECORRUPT ? -EIO : rc;
		size_t i = n;
		while (i > 0 && buf[i - 1] == 0)
			i--;
		if (i > 0) {
			end -= n - i;
			break;
		}
		end -= n;
	}
	r->zero_from = end;
	r->zero_known = true;
	return 0;
}

int bc_reader_next(bc_reader *r, uint64_t off, rec_view *rv, uint64_t *next)
{
	if (off >= r->file_size)
		return BC_SCAN_EOF;
	int rc = try_record(r, off, rv);
	if (rc == 0)
		return BC_SCAN_RECORD;
	if (rc != DKV_ECORRUPT)
		return rc;
	if (!r->zero_known && (rc = find_zero_tail(r)) != 0)
		return rc;
	for (uint64_t p = off + 1; p + REC_HDR_SIZE <= r->file_size && p < r->zero_from; p++) {
		rec_view tmp;
		rc = try_record(r, p, &tmp);
		if (rc == 0) {
			*next = p;
			return BC_SCAN_BAD;
		}
		if (rc != DKV_ECORRUPT)
			return rc;
	}
	*next = r->file_size;
	return BC_SCAN_BAD;
}

/* --- recovery ----------------------------------------------------------- */

typedef struct id_list {
	uint64_t *v;
	size_t n, cap;
} id_list;

static int id_push(id_list *l, uint64_t id)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		uint64_t *nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = id;
	return 0;
}

static bool id_has(const id_list *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i] == id)
			return true;
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Parse "<16 hex digits><suffix>"; true and *id if name matches. */
static bool parse_name(const char *name, const char *suffix, uint64_t *id)
{
	size_t n = strlen(name), sl = strlen(suffix);
	if (n != 16 + sl || strcmp(name + 16, suffix) != 0)
		return false;
	uint64_t v = 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return false;
		v = (v << 4) | (uint64_t)d;
	}
	*id = v;
	return true;
}

/* Read a whole (small) file into memory.  Caller frees *buf. */
static int slurp(const bcio *io, const char *path, uint8_t **buf, size_t *len)
{
	int fd = io->open(path, O_RDONLY, 0);
	if (fd < 0)
		return -errno;
	struct stat stt;
	if (fstat(fd, &stt) != 0) {
		int e = errno;
		io->close(fd);
		return -e;
	}
	size_t n = (size_t)stt.st_size;
	uint8_t *b = malloc(n ? n : 1);
	int rc = b ? bc_pread_full(io, fd, b, n, 0) : -ENOMEM;
	io->close(fd);
	if (rc) {
		free(b);
		return rc;
	}
	*buf = b;
	*len = n;
	return 0;
}

/* Replay f from its hint file; 0 or an error meaning "scan instead". */
static int load_hint(bitcask *bc, bc_file *f)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t len = 0;
	hint_header hdr;

	bc_path(bc, path, sizeof(path), f->id, ".hint");
	/* Mapped, populated in one call: no copy, no fault per page. */
	bool mapped = false;
	int rc = 0;
	if (!bc->cfg.no_mmap) {
		int fd = bc->io->open(path, O_RDONLY, 0);
		if (fd < 0)
			return -errno;
		struct stat stt;
		if (fstat(fd, &stt) == 0 && stt.st_size > 0) {
			void *p = mmap(NULL, (size_t)stt.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
			if (p != MAP_FAILED) {
				buf = p;
				len = (size_t)stt.st_size;
				mapped = true;
			}
		}
		bc->io->close(fd);
	}
	if (!mapped && (rc = slurp(bc->io, path, &buf, &len)) != 0)
		return rc;
	rc = hint_validate(buf, len, &hdr);
	if (!rc && hdr.data_size != f->size)
		rc = DKV_ECORRUPT;
	if (!rc) {
		/* Entries are applied PREFETCH behind their decoding: each key's
		 * home slot is prefetched when it is decoded and is in the cache
		 * when it is applied.  Recovery is a stream of cache misses into a
		 * table of many megabytes otherwise. */
		enum { PREFETCH = 8 };
		hint_entry ring[PREFETCH];
		uint64_t hashes[PREFETCH];
		size_t pos = HINT_HDR_SIZE;
		for (uint32_t i = 0; i < hdr.count + PREFETCH; i++) {
			unsigned slot = i % PREFETCH;
			if (i >= PREFETCH) {
				hint_entry *e = &ring[slot];
				bc_apply_hashed_locked(bc, f, hashes[slot], e->key, e->key_len,
						       e->flags, e->offset, e->size);
			}
			if (i < hdr.count) {
				int n = hint_entry_decode(buf + pos, len - pos, &ring[slot]);
				pos += (size_t)n;
				hashes[slot] = keydir_hash(bc->kd, ring[slot].key, ring[slot].key_len);
				keydir_prefetch(bc->kd, hashes[slot]);
			}
		}
		f->has_hint = true;
	}
	if (mapped)
		munmap(buf, len);
	else
		free(buf);
	return rc;
}

/* Replay f by reading every record; truncate a torn tail if f is the newest.
 * Collects the hint entries in *hint.  *records gets the count of valid
 * records, *bad the count of bad regions. */
static int scan_file(bitcask *bc, bc_file *f, bool newest, bc_hintbuf *hint,
		     uint64_t *records, uint64_t *bad)
{
	bc_reader r;
	int rc = bc_reader_init(&r, bc->io, f->fd, f->size, 0);
	if (rc)
		return rc;
	uint64_t off = DATAFILE_HDR_SIZE;
	*records = *bad = 0;
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
		if (rc == BC_SCAN_RECORD) {
			bc_hint_add(hint, rv.timestamp, (uint32_t)off, rv.size, rv.flags, rv.key, rv.key_len);
			bc_apply_locked(bc, f, rv.key, rv.key_len, rv.flags, (uint32_t)off, rv.size);
			(*records)++;
			off += rv.size;
			continue;
		}
		/* BC_SCAN_BAD */
		if (next >= f->size && newest) {
			bool zeros = r.zero_known && off >= r.zero_from;
			bc_log(bc, 1, "%016" PRIx64 ".data: %s of %" PRIu64 " bytes at offset %"
			       PRIu64 " cut off", f->id, zeros ? "zero-filled tail" : "torn tail",
			       f->size - off, off);
			if (bc->io->ftruncate(f->fd, (off_t)off) != 0 || bc->io->fdatasync(f->fd) != 0) {
				rc = -errno;
				break;
			}
			bc->st.truncated_bytes += f->size - off;
			f->size = off;
			rc = 0;
			break;
		}
		(*bad)++;
		bc->st.corrupt_records++;
		bc_log(bc, 0, "%016" PRIx64 ".data: %" PRIu64 " bad bytes at offset %" PRIu64 " skipped",
		       f->id, next - off, off);
		if (next >= f->size) {
			rc = 0;
			break;
		}
		off = next;
	}
	bc_reader_free(&r);
	return rc;
}

static void remove_file(bitcask *bc, uint64_t id, const char *suffix)
{
	char path[4096];
	bc_path(bc, path, sizeof(path), id, suffix);
	bc->io->unlink(path);
}

/* Open, check and replay one data file.  *gone is set when the file held
 * nothing and was removed. */
static int recover_one(bitcask *bc, uint64_t id, bool newest, bool hint_exists, char *err, size_t errlen)
{
	char path[4096];
	bc_path(bc, path, sizeof(path), id, ".data");
	int fd = bc->io->open(path, newest ? O_RDWR : O_RDONLY, 0);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat stt;
	if (fstat(fd, &stt) != 0) {
		int e = errno;
		bc->io->close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		return -e;
	}
	uint8_t hdr[DATAFILE_HDR_SIZE];
	size_t have = (size_t)stt.st_size < sizeof(hdr) ? (size_t)stt.st_size : sizeof(hdr);
	int rc = bc_pread_full(bc->io, fd, hdr, have, 0);
	if (rc) {
		bc->io->close(fd);
		snprintf(err, errlen, "%s: %s", path, dkv_strerror(rc));
		return rc;
	}
	rc = datafile_header_check(hdr, have);
	if (rc) {
		bc->io->close(fd);
		if (stt.st_size <= (off_t)DATAFILE_HDR_SIZE) {
			/* Created, then the crash came before its header was
			 * whole (a new file is synced with the store's first
			 * sync): no record is in it.  Not only the newest: the
			 * removal of an earlier one may not have been durable
			 * either when a second crash came. */
			bc_log(bc, 1, "%s: incomplete new file removed", path);
			remove_file(bc, id, ".data");
			remove_file(bc, id, ".hint");
			return 0;
		}
		if (rc == DKV_EVERSION) {
			snprintf(err, errlen, "%s: written by an unknown format version", path);
			return rc;
		}
		/* Keep the bytes for an operator; they cannot be read. */
		bc->st.corrupt_records++;
		bc_log(bc, 0, "%s: bad file header; the file is ignored", path);
		return 0;
	}

	bc_file *f;
	rc = bc_file_register_locked(bc, id, fd, (uint64_t)stt.st_size, &f);
	if (rc) {
		bc->io->close(fd);
		return rc;
	}
	if (hint_exists) {
		rc = load_hint(bc, f);
		if (rc == 0) {
			bc->st.hint_loads++;
			bc_file_map(bc, f, (size_t)f->size);
			return 0;
		}
		bc_log(bc, 1, "%016" PRIx64 ".hint: %s; scanning the data file", id, dkv_strerror(rc));
		remove_file(bc, id, ".hint");
		/* load_hint applies nothing unless the whole hint is valid. */
	}
	/* The newest file may end in records a killed process wrote and never
	 * synced: they are in the page cache, and no later sync of this
	 * store (which appends to a new file) would cover them.  A valid
	 * hint says the file was synced before it was written (at a close or
	 * a rotation): then there is nothing to sync, and a clean restart
	 * makes no fdatasync at all. */
	if (newest && bc->cfg.sync != BITCASK_SYNC_NONE && bc->io->fdatasync(fd) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: fdatasync: %s", path, strerror(-rc));
		return rc;
	}
	bc_hintbuf hint = { 0 };
	uint64_t records, bad;
	rc = scan_file(bc, f, newest, &hint, &records, &bad);
	if (rc) {
		bc_hint_free(&hint);
		snprintf(err, errlen, "%s: %s", path, dkv_strerror(rc));
		return rc;
	}
	bc->st.data_scans++;
	bc_file_map(bc, f, (size_t)f->size);
	if (records == 0 && bad == 0) {
		/* Nothing in it: nothing it could shadow.  Drop it. */
		bc_hint_free(&hint);
		bc_file_forget_locked(bc, f->fileno);
		bc_file_unref(f);
		remove_file(bc, id, ".data");
		return 0;
	}
	bc_job *job = calloc(1, sizeof(*job));
	if (!job) {
		bc_hint_free(&hint);
		return 0;
	}
	atomic_fetch_add(&f->refs, 1);
	job->file = f;
	job->hint = hint;
	*bc->jobs_tail = job;
	bc->jobs_tail = &job->next;
	return 0;
}

/* Size the keydir once for the entries the hint files announce, instead of
 * growing it step by step while replaying them. */
static void reserve_keydir(bitcask *bc, const id_list *data, const id_list *hints)
{
	uint64_t total = 0;
	for (size_t i = 0; i < hints->n; i++) {
		if (!id_has(data, hints->v[i]))
			continue;
		char path[4096];
		uint8_t buf[HINT_HDR_SIZE];
		hint_header h;
		bc_path(bc, path, sizeof(path), hints->v[i], ".hint");
		int fd = bc->io->open(path, O_RDONLY, 0);
		if (fd < 0)
			continue;
		if (bc_pread_full(bc->io, fd, buf, sizeof(buf), 0) == 0 &&
		    hint_header_decode(buf, sizeof(buf), &h) == 0)
			total += h.count;
		bc->io->close(fd);
	}
	/* Entries include overwritten keys and tombstones: an upper bound.
	 * Never reserve more than the hints' bytes could describe. */
	if (total && total < (uint64_t)SIZE_MAX / 2)
		keydir_reserve(bc->kd, (size_t)total);
}

int bc_recover(bitcask *bc, char *err, size_t errlen)
{
	id_list data = { 0 }, hints = { 0 };
	int rc = 0;
	DIR *d = opendir(bc->dir);
	if (!d) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", bc->dir, strerror(errno));
		return rc;
	}
	struct dirent *de;
	bool removed = false;
	while ((de = readdir(d)) != NULL) {
		uint64_t id;
		const char *name = de->d_name;
		size_t n = strlen(name);
		if (n > 4 && strcmp(name + n - 4, ".tmp") == 0) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", bc->dir, name);
			bc->io->unlink(path);   /* an interrupted hint or merge output */
			removed = true;
			continue;
		}
		if (parse_name(name, ".data", &id))
			rc = id_push(&data, id);
		else if (parse_name(name, ".hint", &id))
			rc = id_push(&hints, id);
		if (rc)
			break;
	}
	closedir(d);
	if (rc)
		goto out;
	if (data.n > 1)
		qsort(data.v, data.n, sizeof(uint64_t), cmp_u64);
	/* Ids are never reused, even those of files recovery ignores. */
	if (data.n)
		bc->max_id_seen = data.v[data.n - 1];

	reserve_keydir(bc, &data, &hints);
	pthread_mutex_lock(&bc->mu);
	for (size_t i = 0; i < data.n && !rc; i++)
		rc = recover_one(bc, data.v[i], i + 1 == data.n, id_has(&hints, data.v[i]), err, errlen);
	if (!rc && bc->failed_rc) {
		rc = bc->failed_rc;
		snprintf(err, errlen, "recovery: %s", dkv_strerror(rc));
	}
	pthread_mutex_unlock(&bc->mu);
	if (rc)
		goto out;
	for (size_t i = 0; i < hints.n; i++) {
		if (!id_has(&data, hints.v[i])) {
			remove_file(bc, hints.v[i], ".hint");   /* its data file is gone */
			removed = true;
		}
	}
	if (removed)
		bc_fsync_dir(bc);
out:
	free(data.v);
	free(hints.v);
	return rc;
}
