/* test_dkv_thread.c -- a thread's own nice value. */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dkv_thread.h"

static int own_nice(void)
{
	return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
}

typedef struct got {
	int incr;               /* asked */
	int before, returned, after;
} got;

static void *lower(void *arg)
{
	got *g = arg;

	g->before = own_nice();
	g->returned = dkv_thread_nice(g->incr);
	g->after = own_nice();
	return NULL;
}

/* The thread's value changes, from the process's, and nobody else's. */
Test(dkv_thread, nice_is_the_calling_threads_own)
{
	int base = own_nice();
	pthread_t th;
	got g = { .incr = 10 };

	cr_assert_eq(pthread_create(&th, NULL, lower, &g), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(g.before, base, "a new thread starts at the process's nice value");
	cr_assert_eq(g.after, base + 10 > 19 ? 19 : base + 10);
	cr_assert_eq(g.returned, g.after);
	cr_assert_eq(own_nice(), base, "the calling thread's nice value changed");
}

/* Past 19 it stops at 19, the lowest priority there is. */
Test(dkv_thread, nice_stops_at_19)
{
	pthread_t th;
	got g = { .incr = 100 };

	cr_assert_eq(pthread_create(&th, NULL, lower, &g), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_eq(g.after, 19);
	cr_assert_eq(g.returned, 19);
}
