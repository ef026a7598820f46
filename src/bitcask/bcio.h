/*
 * bcio.h -- the system calls of the storage engine, as a table tests replace.
 *
 * SQLite routes its VFS through a table so that its fault tests can make the
 * Nth write fail with EIO or ENOSPC; the storage engine does the same.  Every
 * call returns what the system call returns, errno set on failure.
 * bcio_default() is the real thing; tests wrap it.
 */
#ifndef DKV_BITCASK_BCIO_H
#define DKV_BITCASK_BCIO_H

#include <sys/types.h>

typedef struct bcio {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pwrite)(int fd, const void *buf, size_t len, off_t off);
	ssize_t (*pread)(int fd, void *buf, size_t len, off_t off);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*rename)(const char *from, const char *to);
	int (*unlink)(const char *path);
} bcio;

/* The real system calls.  Static storage; never NULL. */
const bcio *bcio_default(void);

#endif /* DKV_BITCASK_BCIO_H */
