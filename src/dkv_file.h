/*
 * dkv_file.h -- small files written whole, and directories made whole.
 */
#ifndef DKV_FILE_H
#define DKV_FILE_H

#include <stddef.h>

/* Replace the file at path with len bytes, so that a crash leaves either
 * the old file or the new one, never a mix: write path.tmp, fsync it,
 * rename it over path, fsync the directory.  0 or -errno. */
int dkv_file_replace(const char *path, const void *data, size_t len);

/* Take an exclusive flock(2) on the file at path (created if missing) and
 * write our pid into it, for the next one to name.  0 and *fd (keep it
 * open to keep the lock; the lock dies with the process); DKV_ELOCKED when
 * another holds it, with its pid in holder ("unknown" if it wrote none);
 * -errno otherwise. */
int dkv_file_lock(const char *path, int *fd, char *holder, size_t holderlen);

/* mkdir -p: create path and any missing parents (mode 0755).  0 or -errno
 * (-ENAMETOOLONG past 4095 bytes). */
int dkv_mkdir_p(const char *path);

#endif /* DKV_FILE_H */
