/* error.c -- see error.h. */
#include "config.h"

#include <string.h>

#include "error.h"

static const char *const dkv_messages[] = {
	[0] = "no error",
	[1] = "not found",
	[2] = "data corrupt",
	[3] = "directory is locked by another process",
	[4] = "too large",
	[5] = "store failed after an I/O error and refuses writes until reopened",
	[6] = "quorum not met",
	[7] = "timed out",
	[8] = "protocol error",
	[9] = "invalid argument",
	[10] = "busy",
	[11] = "closed",
	[12] = "unsupported version",
};

const char *dkv_strerror(int rc)
{
	if (rc == 0)
		return dkv_messages[0];
	if (rc < DKV_EBASE && rc > DKV_ELAST)
		return dkv_messages[DKV_EBASE - rc];
	if (rc < 0 && rc > DKV_EBASE)
		return strerror(-rc);
	return "unknown error";
}
