/*
 * testutil.h -- small helpers several Criterion suites share.  Include it
 * after <criterion/criterion.h>.
 */
#ifndef DKV_TESTUTIL_H
#define DKV_TESTUTIL_H

#include <stdbool.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* Under valgrind (tests/valgrind-unit.sh sets DKV_VALGRIND) a suite that
 * repeats one check thousands of times for statistics or coverage does it
 * `light` times instead: valgrind looks for memory errors, which the same
 * code paths show at once, and runs 20-50x slower.  The plain and ASan
 * builds always run the full count. */
static inline unsigned test_reps(unsigned full, unsigned light)
{
	return getenv("DKV_VALGRIND") != NULL ? light : full;
}

/* Threads of this process: the entries of /proc/self/task. */
static inline int test_thread_count(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* An exact-size heap copy of n bytes (so ASan sees a read past the end);
 * NULL for n == 0. */
static inline uint8_t *copy_exact(const void *src, size_t n)
{
	uint8_t *p;

	if (n == 0)
		return NULL;
	p = malloc(n);
	cr_assert_not_null(p);
	memcpy(p, src, n);
	return p;
}

/* Cap the address space at what the process maps now plus 64 MiB, so that
 * a decoder that believed a declared count fails with -ENOMEM instead of
 * passing.  Not under ASan, which reserves terabytes of shadow memory. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* True in a build under AddressSanitizer (its timings are not the
 * plain build's). */
static inline bool under_asan(void)
{
#ifdef UNDER_ASAN
	return true;
#else
	return false;
#endif
}

static inline void cap_address_space(void)
{
#ifndef UNDER_ASAN
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long pages = 0;
	struct rlimit rl;

	if (f == NULL)
		return;
	if (fscanf(f, "%lu", &pages) != 1)
		pages = 0;
	fclose(f);
	if (pages == 0)
		return;
	rl.rlim_cur = rl.rlim_max = pages * 4096ul + (64ul << 20);
	cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
}

#endif /* DKV_TESTUTIL_H */
