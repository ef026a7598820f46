/* dkv_thread.c -- see dkv_thread.h. */
#include "config.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dkv_thread.h"

int dkv_thread_nice(int incr)
{
#ifdef SYS_gettid
	id_t tid = (id_t)syscall(SYS_gettid);
	int base, want;

	errno = 0;
	base = getpriority(PRIO_PROCESS, tid);
	if (errno != 0)
		return 0;
	want = base + incr > 19 ? 19 : base + incr;
	return setpriority(PRIO_PROCESS, tid, want) == 0 ? want : base;
#else
	(void)incr;
	return 0;
#endif
}
