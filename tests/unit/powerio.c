/* powerio.c -- the power-loss-aware bcio table; see powerio.h. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "powerio.h"

typedef struct pio_dir pio_dir;

/* One file, from its first call through the table until it has neither a
 * name nor a durable name nor an open descriptor.
 * Invariant: durable content relevant (dlen > 0 or dname) and image == NULL
 * imply name != NULL and the real file dir/name starts with the dlen
 * durable bytes. */
typedef struct pio_file {
	pio_dir *dir;           /* its directory (renames never leave it) */
	char *name;             /* current name in dir; NULL once unlinked or replaced */
	char *dname;            /* name as of dir's last fsync; NULL = none durable */
	uint64_t dlen;          /* durable content length (as of the last sync) */
	uint8_t *image;         /* copy of the durable content, or NULL: the real file holds it */
	unsigned nfds;          /* descriptors open on it through the table */
	struct pio_file *next;  /* in dir->files */
} pio_file;

/* A directory holding tracked files. */
struct pio_dir {
	char *path;             /* canonical (realpath) */
	dev_t dev;              /* with ino: recognises an fsync on a plain-opened dirfd */
	ino_t ino;
	pio_file *files;        /* every tracked file in it */
	pio_dir *next;          /* in powerio.dirs */
};

/* A directory path as the engine spells it, and the dir it resolved to. */
typedef struct pio_alias {
	char *raw;              /* as passed in (dirname of a path) */
	pio_dir *dir;           /* what realpath made of it */
	struct pio_alias *next;
} pio_alias;

/* A root given to powerio_crash() or powerio_fault(). */
typedef struct pio_root {
	char *path;                     /* canonical */
	size_t len;                     /* strlen(path) */
	bool crashed;                   /* true iff between crash and power_loss/resume */
	bool armed;                     /* true iff a fault is armed */
	powerio_op op;                  /* the armed fault's op */
	unsigned long nth;              /* the call of op it fails (1-based) */
	int err;                        /* errno it fails with */
	bool sticky;                    /* true iff every call after the nth fails too */
	unsigned long calls[POWERIO_NOPS]; /* calls of each op since powerio_fault() */
	unsigned long fired;            /* calls failed since powerio_fault() */
	struct pio_root *next;
} pio_root;

struct powerio {
	pthread_mutex_t mu;     /* guards everything below, and every forwarded call */
	bcio io;                /* the table handed out */
	pio_dir *dirs;
	pio_alias *aliases;
	pio_root *roots;
	pio_file **fds;         /* fd -> file, for descriptors opened through the table */
	size_t nfd;             /* slots in fds */
};

/* The bcio table has no context argument: see THREADS AND OWNERSHIP. */
static powerio *the;

static const bcio *real(void)
{
	return bcio_default();
}

/* --- helpers ------------------------------------------------------------ */

static int read_full(int fd, uint8_t *buf, uint64_t len)
{
	uint64_t off = 0;
	while (off < len) {
		ssize_t n = pread(fd, buf + off, (size_t)(len - off), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;    /* shorter than the durable length: someone else cut it */
		off += (uint64_t)n;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *buf, uint64_t len)
{
	uint64_t off = 0;
	while (off < len) {
		ssize_t n = pwrite(fd, buf + off, (size_t)(len - off), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		off += (uint64_t)n;
	}
	return 0;
}

static void file_path(const pio_file *f, const char *name, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s", f->dir->path, name);
}

static bool under(const pio_root *r, const char *path)
{
	return strncmp(path, r->path, r->len) == 0 && (path[r->len] == '/' || path[r->len] == 0);
}

static pio_root *root_find(powerio *p, const char *canon)
{
	for (pio_root *r = p->roots; r; r = r->next)
		if (strcmp(r->path, canon) == 0)
			return r;
	return NULL;
}

static int root_get(powerio *p, const char *root, pio_root **out)
{
	char canon[PATH_MAX];
	if (!realpath(root, canon))
		return -errno;
	pio_root *r = root_find(p, canon);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || !(r->path = strdup(canon))) {
			free(r);
			return -ENOMEM;
		}
		r->len = strlen(canon);
		r->next = p->roots;
		p->roots = r;
	}
	*out = r;
	return 0;
}

/* Under p->mu: may a call of op (or, op == POWERIO_NOPS, any change) on a
 * file in dir go through?  0, or the errno it fails with. */
static int gate_locked(powerio *p, const pio_dir *dir, powerio_op op)
{
	if (!dir)
		return 0;
	int err = 0;
	for (pio_root *r = p->roots; r; r = r->next) {
		if (!under(r, dir->path))
			continue;
		if (r->crashed)
			return EIO;
		if (op == POWERIO_NOPS)
			continue;
		unsigned long n = ++r->calls[op];
		if (r->armed && r->op == op && (n == r->nth || (r->sticky && n > r->nth))) {
			r->fired++;
			if (!err)
				err = r->err;
		}
	}
	return err;
}

/* Under p->mu: the directory `raw` names (as the engine spells it), created
 * on first use; NULL if it does not exist. */
static pio_dir *dir_get(powerio *p, const char *raw)
{
	for (pio_alias *a = p->aliases; a; a = a->next)
		if (strcmp(a->raw, raw) == 0)
			return a->dir;
	char canon[PATH_MAX];
	struct stat st;
	if (!realpath(raw, canon) || stat(canon, &st) != 0 || !S_ISDIR(st.st_mode))
		return NULL;
	pio_dir *d;
	for (d = p->dirs; d; d = d->next)
		if (strcmp(d->path, canon) == 0)
			break;
	if (!d) {
		d = calloc(1, sizeof(*d));
		if (!d || !(d->path = strdup(canon))) {
			free(d);
			return NULL;
		}
		d->dev = st.st_dev;
		d->ino = st.st_ino;
		d->next = p->dirs;
		p->dirs = d;
	}
	pio_alias *a = calloc(1, sizeof(*a));
	if (a && (a->raw = strdup(raw))) {
		a->dir = d;
		a->next = p->aliases;
		p->aliases = a;
	} else {
		free(a);
	}
	return d;
}

/* Split path into its directory (as spelt) and base name. */
static void split(const char *path, char *dirbuf, size_t dirlen, const char **base)
{
	const char *s = strrchr(path, '/');
	if (!s) {
		snprintf(dirbuf, dirlen, ".");
		*base = path;
	} else if (s == path) {
		snprintf(dirbuf, dirlen, "/");
		*base = s + 1;
	} else {
		snprintf(dirbuf, dirlen, "%.*s", (int)(s - path), path);
		*base = s + 1;
	}
}

static pio_file *file_find(pio_dir *d, const char *name)
{
	for (pio_file *f = d->files; f; f = f->next)
		if (f->name && strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

static pio_file *file_new(pio_dir *d, const char *name)
{
	pio_file *f = calloc(1, sizeof(*f));
	if (!f || !(f->name = strdup(name))) {
		free(f);
		return NULL;
	}
	f->dir = d;
	f->next = d->files;
	d->files = f;
	return f;
}

/* The tracked file at dir/name; a file present but not yet tracked is
 * adopted as durable as it is.  NULL if there is none (or no memory). */
static pio_file *file_get(pio_dir *d, const char *name)
{
	pio_file *f = file_find(d, name);
	if (f)
		return f;
	char path[PATH_MAX + 256];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", d->path, name);
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL;
	f = file_new(d, name);
	if (f && !(f->dname = strdup(name)))
		f->dname = NULL;        /* no memory: treated as never durable */
	if (f)
		f->dlen = (uint64_t)st.st_size;
	return f;
}

/* Copy the durable bytes into f->image before the real file loses them.
 * fd: a descriptor on f, or -1 to open its name.  0 or -errno. */
static int materialise(pio_file *f, int fd)
{
	if (f->image || (!f->dname && f->dlen == 0))
		return 0;
	uint8_t *img = malloc(f->dlen ? (size_t)f->dlen : 1);
	if (!img)
		return -ENOMEM;
	int own = -1, rc;
	if (fd < 0) {
		char path[PATH_MAX + 256];
		assert(f->name);
		file_path(f, f->name, path, sizeof(path));
		own = fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			free(img);
			return -errno;
		}
	}
	rc = read_full(fd, img, f->dlen);
	if (own >= 0)
		close(own);
	if (rc) {
		free(img);
		return rc;
	}
	f->image = img;
	return 0;
}

/* f's content stops mattering: no durable name, and none can come (it has
 * no name either, or it will get its durable content anew at a sync). */
static void drop_content(pio_file *f)
{
	free(f->image);
	f->image = NULL;
	f->dlen = 0;
}

/* Free f if nothing refers to it any more. */
static void file_maybe_free(pio_file *f)
{
	if (f->name || f->dname || f->nfds)
		return;
	for (pio_file **pp = &f->dir->files; *pp; pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	free(f->image);
	free(f);
}

/* f lost its name (unlinked, or replaced by a rename). */
static void file_unnamed(pio_file *f)
{
	free(f->name);
	f->name = NULL;
	if (!f->dname)
		drop_content(f);
	file_maybe_free(f);
}

static pio_file *fd_file(powerio *p, int fd)
{
	return fd >= 0 && (size_t)fd < p->nfd ? p->fds[fd] : NULL;
}

static int fd_bind(powerio *p, int fd, pio_file *f)
{
	if ((size_t)fd >= p->nfd) {
		size_t n = p->nfd ? p->nfd : 64;
		while (n <= (size_t)fd)
			n *= 2;
		pio_file **v = realloc(p->fds, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + p->nfd, 0, (n - p->nfd) * sizeof(*v));
		p->fds = v;
		p->nfd = n;
	}
	pio_file *old = p->fds[fd];
	if (old) {
		/* A descriptor closed behind the table's back: forget it. */
		old->nfds--;
		file_maybe_free(old);
	}
	p->fds[fd] = f;
	if (f)
		f->nfds++;
	return 0;
}

/* --- the table ------------------------------------------------------------ */

static int pio_open(const char *path, int flags, mode_t mode)
{
	powerio *p = the;
	char dbuf[PATH_MAX];
	const char *name;
	int fd, e;

	split(path, dbuf, sizeof(dbuf), &name);
	pthread_mutex_lock(&p->mu);
	pio_dir *d = dir_get(p, dbuf);
	bool writes = flags & (O_CREAT | O_TRUNC);
	if (writes && (e = gate_locked(p, d, POWERIO_NOPS)) != 0)
		goto out_fail;
	pio_file *f = d ? file_get(d, name) : NULL;
	struct stat st;

	if (f && (flags & O_CREAT) && f->name != NULL && stat(path, &st) != 0 && errno == ENOENT) {
		/* its directory was removed (and made again) behind the table's
		 * back -- a dropped partition, vnode_drop: what was durable there
		 * is gone for real; this is a new file */
		free(f->image);
		f->image = NULL;
		free(f->dname);
		f->dname = NULL;
		f->dlen = 0;
	}
	if (f && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY && !(flags & O_EXCL) &&
	    (e = -materialise(f, -1)) != 0)
		goto out_fail;
	fd = real()->open(path, flags, mode);
	if (fd < 0) {
		e = errno;
		goto out_fail;
	}
	if (d && !f)
		f = file_new(d, name);
	if (f && fd_bind(p, fd, f) != 0) {
		close(fd);
		file_maybe_free(f);
		e = ENOMEM;
		goto out_fail;
	}
	pthread_mutex_unlock(&p->mu);
	return fd;

out_fail:
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return -1;
}

static int pio_close(int fd)
{
	powerio *p = the;
	pthread_mutex_lock(&p->mu);
	pio_file *f = fd_file(p, fd);
	if (f) {
		p->fds[fd] = NULL;
		f->nfds--;
		file_maybe_free(f);
	}
	int rc = real()->close(fd);
	int e = errno;
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return rc;
}

/* Under p->mu, before a pwrite at or an ftruncate to `from` on fd: the
 * gate, and the durable bytes from `from` on saved if it would change
 * them.  0 or the errno the call fails with. */
static int before_write_locked(powerio *p, int fd, off_t from)
{
	pio_file *f = fd_file(p, fd);
	int e = gate_locked(p, f ? f->dir : NULL, POWERIO_WRITE);
	if (!e && f && !f->image && (uint64_t)from < f->dlen)
		e = -materialise(f, fd);
	return e;
}

static ssize_t pio_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	powerio *p = the;
	pthread_mutex_lock(&p->mu);
	int e = before_write_locked(p, fd, off);
	if (e) {
		pthread_mutex_unlock(&p->mu);
		errno = e;
		return -1;
	}
	ssize_t n = real()->pwrite(fd, buf, len, off);
	e = errno;
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return n;
}

static ssize_t pio_pread(int fd, void *buf, size_t len, off_t off)
{
	return real()->pread(fd, buf, len, off);
}

static int pio_ftruncate(int fd, off_t len)
{
	powerio *p = the;
	pthread_mutex_lock(&p->mu);
	int e = before_write_locked(p, fd, len);
	if (e) {
		pthread_mutex_unlock(&p->mu);
		errno = e;
		return -1;
	}
	int rc = real()->ftruncate(fd, len);
	e = errno;
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return rc;
}

/* Under p->mu, after a successful fsync of d: its current names are its
 * durable names. */
static void dir_synced(pio_dir *d)
{
	for (pio_file *f = d->files, *next; f; f = next) {
		next = f->next;
		if (f->name) {
			if (!f->dname || strcmp(f->dname, f->name) != 0) {
				char *n = strdup(f->name);
				if (n) {
					free(f->dname);
					f->dname = n;
				}
			}
		} else if (f->dname) {
			free(f->dname);
			f->dname = NULL;
			drop_content(f);
			file_maybe_free(f);
		}
	}
}

/* Under p->mu, after a successful sync of f through fd: its content now is
 * its durable content. */
static int file_synced(pio_file *f, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	free(f->image);
	f->image = NULL;
	f->dlen = (uint64_t)st.st_size;
	if (!f->name) {
		/* Unlinked but still open: the real file vanishes at close. */
		if (!f->dname)
			drop_content(f);
		else
			return materialise(f, fd);
	}
	return 0;
}

static int pio_sync(int fd, int (*fn)(int))
{
	powerio *p = the;
	pthread_mutex_lock(&p->mu);
	pio_file *f = fd_file(p, fd);
	pio_dir *d = NULL;
	if (!f) {
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
			for (d = p->dirs; d; d = d->next)
				if (d->dev == st.st_dev && d->ino == st.st_ino)
					break;
	}
	int e = gate_locked(p, f ? f->dir : d, POWERIO_SYNC);
	if (e) {
		pthread_mutex_unlock(&p->mu);
		errno = e;
		return -1;
	}
	int rc = fn(fd);
	e = errno;
	if (rc == 0 && f && (e = -file_synced(f, fd)) != 0)
		rc = -1;
	if (rc == 0 && d)
		dir_synced(d);
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return rc;
}

static int pio_fdatasync(int fd)
{
	return pio_sync(fd, real()->fdatasync);
}

static int pio_fsync(int fd)
{
	return pio_sync(fd, real()->fsync);
}

static int pio_rename(const char *from, const char *to)
{
	powerio *p = the;
	char fdir[PATH_MAX], tdir[PATH_MAX];
	const char *fname, *tname;
	int e = 0;

	split(from, fdir, sizeof(fdir), &fname);
	split(to, tdir, sizeof(tdir), &tname);
	pthread_mutex_lock(&p->mu);
	pio_dir *d = dir_get(p, fdir), *td = dir_get(p, tdir);
	if (d != td) {
		e = d && td ? EXDEV : ENOENT;
		goto out_fail;
	}
	if ((e = gate_locked(p, d, POWERIO_NOPS)) != 0)
		goto out_fail;
	pio_file *f = d ? file_get(d, fname) : NULL;
	if (!f) {
		e = ENOENT;
		goto out_fail;
	}
	pio_file *g = file_get(td, tname);
	if (g == f) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	if (g && (e = -materialise(g, -1)) != 0)
		goto out_fail;
	if (real()->rename(from, to) != 0) {
		e = errno;
		goto out_fail;
	}
	char *n = strdup(tname);
	if (!n) {
		/* Cannot track it: put the names back. */
		real()->rename(to, from);
		e = ENOMEM;
		goto out_fail;
	}
	free(f->name);
	f->name = n;
	if (g)
		file_unnamed(g);
	pthread_mutex_unlock(&p->mu);
	return 0;

out_fail:
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return -1;
}

static int pio_unlink(const char *path)
{
	powerio *p = the;
	char dbuf[PATH_MAX];
	const char *name;
	int e = 0;

	split(path, dbuf, sizeof(dbuf), &name);
	pthread_mutex_lock(&p->mu);
	pio_dir *d = dir_get(p, dbuf);
	if ((e = gate_locked(p, d, POWERIO_NOPS)) != 0)
		goto out_fail;
	pio_file *f = d ? file_get(d, name) : NULL;
	if (f && (e = -materialise(f, -1)) != 0)
		goto out_fail;
	if (real()->unlink(path) != 0) {
		e = errno;
		goto out_fail;
	}
	if (f)
		file_unnamed(f);
	pthread_mutex_unlock(&p->mu);
	return 0;

out_fail:
	pthread_mutex_unlock(&p->mu);
	errno = e;
	return -1;
}

/* --- lifecycle ------------------------------------------------------------ */

powerio *powerio_new(void)
{
	assert(!the && "one powerio per process: the bcio table has no context");
	powerio *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	p->io = (bcio){
		.open = pio_open,
		.close = pio_close,
		.pwrite = pio_pwrite,
		.pread = pio_pread,
		.fdatasync = pio_fdatasync,
		.fsync = pio_fsync,
		.ftruncate = pio_ftruncate,
		.rename = pio_rename,
		.unlink = pio_unlink,
	};
	the = p;
	return p;
}

static void dir_free(pio_dir *d)
{
	while (d->files) {
		pio_file *f = d->files;
		d->files = f->next;
		free(f->name);
		free(f->dname);
		free(f->image);
		free(f);
	}
	free(d->path);
	free(d);
}

void powerio_free(powerio *p)
{
	if (!p)
		return;
	assert(p == the);
	while (p->dirs) {
		pio_dir *d = p->dirs;
		p->dirs = d->next;
		dir_free(d);
	}
	while (p->aliases) {
		pio_alias *a = p->aliases;
		p->aliases = a->next;
		free(a->raw);
		free(a);
	}
	while (p->roots) {
		pio_root *r = p->roots;
		p->roots = r->next;
		free(r->path);
		free(r);
	}
	free(p->fds);
	pthread_mutex_destroy(&p->mu);
	free(p);
	the = NULL;
}

const bcio *powerio_bcio(powerio *p)
{
	return &p->io;
}

int powerio_crash(powerio *p, const char *root)
{
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	int rc = root_get(p, root, &r);
	if (!rc)
		r->crashed = true;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int powerio_resume(powerio *p, const char *root)
{
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	int rc = root_get(p, root, &r);
	if (!rc && !r->crashed)
		rc = -EINVAL;
	if (!rc)
		r->crashed = false;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

static bool busy_under(powerio *p, const pio_root *r)
{
	for (pio_dir *d = p->dirs; d; d = d->next)
		if (under(r, d->path))
			for (pio_file *f = d->files; f; f = f->next)
				if (f->nfds)
					return true;
	return false;
}

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Write f's image as dir/dname (created or replaced). */
static int write_image(pio_file *f)
{
	char path[PATH_MAX + 256];
	file_path(f, f->dname, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write_full(fd, f->image, f->dlen);
	close(fd);
	return rc;
}

/* Reset d's files to their durable state (see powerio_power_loss). */
static int dir_power_loss(pio_dir *d, uint64_t *rng)
{
	char path[PATH_MAX + 256];
	struct stat dst;
	int rc;

	/* 0. A directory removed whole, outside the table (vnode_drop's
	 *    nftw), is gone for good: directories are durable at once. */
	if (stat(d->path, &dst) != 0 && errno == ENOENT) {
		for (pio_file *f = d->files, *next; f; f = next) {
			next = f->next;
			free(f->name);
			f->name = NULL;
			free(f->dname);
			f->dname = NULL;
			drop_content(f);
			file_maybe_free(f);
		}
		return 0;
	}
	/* 1. Save the durable bytes whose real file is about to go. */
	for (pio_file *f = d->files; f; f = f->next)
		if (f->dname && (!f->name || strcmp(f->name, f->dname) != 0) &&
		    (rc = materialise(f, -1)) != 0)
			return rc;
	/* 2. Every name that is not durable goes. */
	for (pio_file *f = d->files; f; f = f->next) {
		if (f->name && (!f->dname || strcmp(f->name, f->dname) != 0)) {
			file_path(f, f->name, path, sizeof(path));
			if (unlink(path) != 0 && errno != ENOENT)
				return -errno;
			free(f->name);
			f->name = NULL;
		}
	}
	/* 3. Every durable name gets its durable content. */
	for (pio_file *f = d->files; f; f = f->next) {
		if (!f->dname)
			continue;
		if (f->image) {
			if ((rc = write_image(f)) != 0)
				return rc;
			free(f->image);
			f->image = NULL;
		} else {
			struct stat st;
			file_path(f, f->dname, path, sizeof(path));
			if (stat(path, &st) != 0 && errno == ENOENT) {
				/* removed outside the table with its directory
				 * (vnode_drop), which was then made again (a new
				 * hint store of the same name): gone for good */
				free(f->dname);
				f->dname = NULL;
				free(f->name);
				f->name = NULL;
				continue;
			}
			if (stat(path, &st) != 0)
				return -errno;
			uint64_t keep = f->dlen, size = (uint64_t)st.st_size;
			if (*rng && size > keep)
				keep += splitmix(rng) % (size - keep + 1);
			if (keep != size && truncate(path, (off_t)keep) != 0)
				return -errno;
			f->dlen = keep;
		}
		if (!f->name && !(f->name = strdup(f->dname)))
			return -ENOMEM;
	}
	/* 4. What has neither name is gone. */
	for (pio_file *f = d->files, *next; f; f = next) {
		next = f->next;
		if (!f->dname)
			drop_content(f);
		file_maybe_free(f);
	}
	return 0;
}

int powerio_power_loss(powerio *p, const char *root, uint64_t seed)
{
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	int rc = root_get(p, root, &r);
	if (!rc && !r->crashed)
		rc = -EINVAL;
	if (!rc && busy_under(p, r))
		rc = -EBUSY;
	uint64_t rng = seed;
	for (pio_dir *d = p->dirs; d && !rc; d = d->next)
		if (under(r, d->path))
			rc = dir_power_loss(d, &rng);
	if (!rc)
		r->crashed = false;
	pthread_mutex_unlock(&p->mu);
	return rc;
}

int powerio_fault(powerio *p, const char *root, powerio_op op, unsigned long nth,
		  int err, bool sticky)
{
	assert(op < POWERIO_NOPS);
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	int rc = root_get(p, root, &r);
	if (!rc) {
		r->armed = nth > 0;
		r->op = op;
		r->nth = nth;
		r->err = err;
		r->sticky = sticky;
		memset(r->calls, 0, sizeof(r->calls));
		r->fired = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

unsigned long powerio_calls(powerio *p, const char *root, powerio_op op)
{
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	unsigned long n = root_get(p, root, &r) == 0 ? r->calls[op] : 0;
	pthread_mutex_unlock(&p->mu);
	return n;
}

unsigned long powerio_fired(powerio *p, const char *root)
{
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	unsigned long n = root_get(p, root, &r) == 0 ? r->fired : 0;
	pthread_mutex_unlock(&p->mu);
	return n;
}

int powerio_forget(powerio *p, const char *root)
{
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	int rc = root_get(p, root, &r);
	if (!rc && busy_under(p, r))
		rc = -EBUSY;
	if (rc) {
		pthread_mutex_unlock(&p->mu);
		return rc;
	}
	for (pio_alias **ap = &p->aliases; *ap;) {
		pio_alias *a = *ap;
		if (under(r, a->dir->path)) {
			*ap = a->next;
			free(a->raw);
			free(a);
		} else {
			ap = &a->next;
		}
	}
	for (pio_dir **dp = &p->dirs; *dp;) {
		pio_dir *d = *dp;
		if (under(r, d->path)) {
			*dp = d->next;
			dir_free(d);
		} else {
			dp = &d->next;
		}
	}
	for (pio_root **rp = &p->roots; *rp;) {
		pio_root *x = *rp;
		if (under(r, x->path) && x != r) {
			*rp = x->next;
			free(x->path);
			free(x);
		} else {
			rp = &x->next;
		}
	}
	for (pio_root **rp = &p->roots; *rp; rp = &(*rp)->next) {
		if (*rp == r) {
			*rp = r->next;
			break;
		}
	}
	free(r->path);
	free(r);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

uint64_t powerio_unsynced_bytes(powerio *p, const char *root)
{
	uint64_t total = 0;
	pthread_mutex_lock(&p->mu);
	pio_root *r;
	if (root_get(p, root, &r) == 0) {
		for (pio_dir *d = p->dirs; d; d = d->next) {
			if (!under(r, d->path))
				continue;
			for (pio_file *f = d->files; f; f = f->next) {
				char path[PATH_MAX + 256];
				struct stat st;
				if (!f->name)
					continue;
				file_path(f, f->name, path, sizeof(path));
				if (stat(path, &st) != 0)
					continue;
				uint64_t size = (uint64_t)st.st_size;
				if (!f->dname || strcmp(f->dname, f->name) != 0)
					total += size;
				else if (size > f->dlen)
					total += size - f->dlen;
			}
		}
	}
	pthread_mutex_unlock(&p->mu);
	return total;
}

int powerio_check(powerio *p, char *err, size_t errlen)
{
	int rc = 0;
	pthread_mutex_lock(&p->mu);
	for (pio_dir *d = p->dirs; d && !rc; d = d->next) {
		for (pio_file *f = d->files; f && !rc; f = f->next) {
			char path[PATH_MAX + 256];
			struct stat st;
			const char *who = f->name ? f->name : f->dname ? f->dname : "(unnamed)";
			if (f->dir != d) {
				snprintf(err, errlen, "%s/%s: in the wrong directory", d->path, who);
				rc = -1;
			} else if (!f->name && !f->dname && !f->nfds) {
				snprintf(err, errlen, "%s/%s: unreferenced but not freed", d->path, who);
				rc = -1;
			} else if (f->name && (file_path(f, f->name, path, sizeof(path)), stat(path, &st) != 0)) {
				snprintf(err, errlen, "%s: tracked but absent", path);
				rc = -1;
			} else if (f->name && !f->image && (uint64_t)st.st_size < f->dlen) {
				snprintf(err, errlen, "%s: %lld bytes, shorter than its durable %llu and no image",
					 path, (long long)st.st_size, (unsigned long long)f->dlen);
				rc = -1;
			} else if (!f->name && !f->image && f->dlen) {
				snprintf(err, errlen, "%s/%s: durable content with neither name nor image",
					 d->path, who);
				rc = -1;
			}
			for (pio_file *g = f->next; g && !rc; g = g->next) {
				if ((f->name && g->name && strcmp(f->name, g->name) == 0) ||
				    (f->dname && g->dname && strcmp(f->dname, g->dname) == 0)) {
					snprintf(err, errlen, "%s/%s: two files share a name", d->path, who);
					rc = -1;
				}
			}
		}
	}
	size_t refs = 0, nfds = 0;
	for (size_t i = 0; i < p->nfd; i++)
		refs += p->fds[i] != NULL;
	for (pio_dir *d = p->dirs; d; d = d->next)
		for (pio_file *f = d->files; f; f = f->next)
			nfds += f->nfds;
	if (!rc && refs != nfds) {
		snprintf(err, errlen, "%zu descriptors in the table, %zu counted on files", refs, nfds);
		rc = -1;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}
