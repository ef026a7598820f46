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

/* mkdir -p: create path and any missing parents (mode 0755).  0 or -errno
 * (-ENAMETOOLONG past 4095 bytes). */
int dkv_mkdir_p(const char *path);

#endif /* DKV_FILE_H */
