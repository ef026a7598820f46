/*
 * fuzz_check.h -- the one assertion the libFuzzer harnesses share: a
 * property that fails prints where and what, then aborts, which libFuzzer
 * reports as a crash and saves the input that caused it.
 */
#ifndef DKV_FUZZ_CHECK_H
#define DKV_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: property failed: %s\n",      \
				__FILE__, __LINE__, #cond);                  \
			abort();                                             \
		}                                                            \
	} while (0)

#endif /* DKV_FUZZ_CHECK_H */
