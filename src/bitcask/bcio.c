/* bcio.c -- the real system calls behind the storage engine; see bcio.h. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "bcio.h"

static int real_open(const char *path, int flags, mode_t mode)
{
	return open(path, flags | O_CLOEXEC, mode);
}

static const bcio real_io = {
	.open = real_open,
	.close = close,
	.pwrite = pwrite,
	.pread = pread,
	.fdatasync = fdatasync,
	.fsync = fsync,
	.ftruncate = ftruncate,
	.rename = rename,
	.unlink = unlink,
};

const bcio *bcio_default(void)
{
	return &real_io;
}
