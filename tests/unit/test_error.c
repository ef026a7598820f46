/*
 * test_error.c -- dkv_strerror(): success, each DKV_E* code, -errno values,
 * and values that are neither.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"

#define UNKNOWN "unknown error"

static const int dkv_codes[] = {
	DKV_ENOTFOUND, DKV_ECORRUPT, DKV_ELOCKED, DKV_ETOOBIG,
	DKV_EFAILED, DKV_EQUORUM, DKV_ETIMEDOUT, DKV_EPROTO,
	DKV_EINVAL, DKV_EBUSY, DKV_ECLOSED, DKV_EVERSION,
};
#define N_CODES ((int)(sizeof(dkv_codes) / sizeof(dkv_codes[0])))

TestSuite(error, .description = "dkv_strerror");

/* The list above is every code between DKV_EBASE and DKV_ELAST: a code
 * added to error.h without a test (or a message) shows up here. */
Test(error, code_list_complete)
{
	cr_assert_eq(N_CODES, DKV_EBASE - DKV_ELAST - 1);
	for (int i = 0; i < N_CODES; i++)
		cr_expect_eq(dkv_codes[i], DKV_EBASE - 1 - i);
}

Test(error, success)
{
	const char *s = dkv_strerror(0);

	cr_assert_not_null(s);
	cr_assert_str_eq(s, "no error");
}

Test(error, codes_named_and_distinct)
{
	const char *msg[N_CODES];

	for (int i = 0; i < N_CODES; i++) {
		msg[i] = dkv_strerror(dkv_codes[i]);
		cr_assert_not_null(msg[i], "code %d: NULL", dkv_codes[i]);
		cr_expect_str_not_empty(msg[i], "code %d: empty", dkv_codes[i]);
		cr_expect_str_neq(msg[i], UNKNOWN, "code %d", dkv_codes[i]);
		cr_expect_str_neq(msg[i], dkv_strerror(0), "code %d", dkv_codes[i]);
	}
	for (int i = 0; i < N_CODES; i++)
		for (int j = i + 1; j < N_CODES; j++)
			cr_expect_str_neq(msg[i], msg[j],
					  "codes %d and %d share \"%s\"",
					  dkv_codes[i], dkv_codes[j], msg[i]);
}

/* A few codes by wording, so that the table cannot drift out of order. */
Test(error, codes_in_order)
{
	cr_expect_str_eq(dkv_strerror(DKV_ENOTFOUND), "not found");
	cr_expect_str_eq(dkv_strerror(DKV_ECORRUPT), "data corrupt");
	cr_expect_str_eq(dkv_strerror(DKV_EVERSION), "unsupported version");
}

Test(error, errno_values)
{
	static const int errnos[] = { ENOENT, EIO, ENOSPC, EINVAL, EAGAIN };

	for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++) {
		const char *want = strerror(errnos[i]);
		const char *got = dkv_strerror(-errnos[i]);

		cr_assert_not_null(got);
		cr_expect_str_eq(got, want, "errno %d", errnos[i]);
	}
	/* -EINVAL and DKV_EINVAL are different values with different text. */
	cr_expect_str_neq(dkv_strerror(-EINVAL), dkv_strerror(DKV_EINVAL));
}

Test(error, out_of_range)
{
	static const int bad[] = {
		1, ENOENT, 4096, INT_MAX,
		DKV_ELAST, DKV_ELAST - 1, -40000, INT_MIN,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *s = dkv_strerror(bad[i]);

		cr_assert_not_null(s, "value %d: NULL", bad[i]);
		cr_expect_str_eq(s, UNKNOWN, "value %d", bad[i]);
	}
}
