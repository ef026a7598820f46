/*
 * test_dotseq.c -- the persisted counter sequence (dotseq.h).
 */
#include "config.h"
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dotseq.h"
#include "error.h"

static char dir[64];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/dev/shm/dkv-dotseq-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(dotseq, .init = setup, .fini = teardown);

static void write_dots(const char *text, size_t len)
{
	char path[96];
	FILE *f;

	snprintf(path, sizeof(path), "%s/DOTS", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	fclose(f);
}

static bool dots_exists(void)
{
	char path[96];

	snprintf(path, sizeof(path), "%s/DOTS", dir);
	return access(path, F_OK) == 0;
}

Test(dotseq, a_new_sequence_writes_nothing_until_a_counter_is_taken)
{
	dotseq *ds;
	char err[256];

	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(dotseq_next(ds), 1);
	cr_assert_not(dots_exists());
	cr_assert_eq(dotseq_take(ds, 1), 0);
	cr_assert(dots_exists());
	cr_assert_eq(dotseq_next(ds), 2);
	cr_assert_eq(dotseq_reserved(ds), 2 + DOTSEQ_BLOCK);
	dotseq_free(ds);
}

Test(dotseq, counters_only_grow_across_restarts_and_blocks)
{
	dotseq *ds;
	char err[256];
	uint64_t last = 0;

	for (int start = 0; start < 5; start++) {
		cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
		cr_assert_gt(dotseq_next(ds), last, "restart %d gave %" PRIu64 " after %" PRIu64,
			     start, dotseq_next(ds), last);
		for (int i = 0; i < 100; i++) {
			uint64_t c = dotseq_next(ds);

			cr_assert_gt(c, last);
			cr_assert_eq(dotseq_take(ds, c), 0);
			last = c;
		}
		/* a key whose own counter is far above the sequence */
		cr_assert_eq(dotseq_take(ds, last + 3 * DOTSEQ_BLOCK), 0);
		last += 3 * DOTSEQ_BLOCK;
		cr_assert_gt(dotseq_reserved(ds), last);
		/* taking something below the sequence never moves it back */
		cr_assert_eq(dotseq_take(ds, 1), 0);
		cr_assert_gt(dotseq_next(ds), last);
		last = dotseq_next(ds) - 1;
		dotseq_free(ds);   /* a crash: nothing more is written */
	}
}

Test(dotseq, damaged_files_are_refused_with_a_reason)
{
	static const struct { const char *text; int rc; const char *why; } bad[] = {
		{ "garbage\n", DKV_ECORRUPT, "unreadable line" },
		{ "format = 1\n", DKV_ECORRUPT, "incomplete" },
		{ "format = 1\nreserved = 0\n", DKV_ECORRUPT, "incomplete" },
		{ "format = 1\nreserved = 12x\n", DKV_ECORRUPT, "unreadable line" },
		{ "format = 9\nreserved = 5\n", DKV_EVERSION, "format 9" },
		{ "", DKV_ECORRUPT, "incomplete" },
	};
	char big[1024];
	dotseq *ds;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_dots(bad[i].text, strlen(bad[i].text));
		cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), bad[i].rc, "case %zu", i);
		cr_assert_not_null(strstr(err, bad[i].why), "case %zu: %s", i, err);
		cr_assert_null(ds);
	}
	memset(big, 'x', sizeof(big));
	write_dots(big, sizeof(big));
	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), DKV_ECORRUPT);
	cr_assert_not_null(strstr(err, "longer than"), "%s", err);
	write_dots("format = 1\0reserved = 5\n", 24);
	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), DKV_ECORRUPT);
	write_dots("format = 1\nreserved = 77\n", 25);
	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(dotseq_next(ds), 77);
	dotseq_free(ds);
}

Test(dotseq, a_failed_reservation_gives_nothing_out)
{
	dotseq *ds;
	char err[256], sub[96];

	snprintf(sub, sizeof(sub), "%s/gone", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(dotseq_open(&ds, sub, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rmdir(sub), 0);
	cr_assert_lt(dotseq_take(ds, 1), 0);
	cr_assert_eq(dotseq_next(ds), 1, "a counter was given out without being reserved");
	dotseq_free(ds);
}

/* Every process writes as a new actor: the epoch grows with each start
 * that gave out a counter, is on disk before the first one, and the actor
 * in dots differs from one epoch to the next (a power loss can make a
 * process forget writes it pushed; its successor must not claim them). */
Test(dotseq, each_process_has_its_own_epoch_and_actor)
{
	dotseq *ds;
	char err[256];
	uint64_t seen[4];

	for (int start = 0; start < 4; start++) {
		cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
		cr_assert_eq(dotseq_epoch(ds), (uint64_t)start + 1);
		seen[start] = dotseq_actor(ds, 42);
		cr_assert_neq(seen[start], 0);
		for (int k = 0; k < start; k++)
			cr_assert_neq(seen[start], seen[k], "epochs %d and %d share an actor", k, start);
		cr_assert_eq(dotseq_take(ds, dotseq_next(ds)), 0);   /* records the epoch */
		dotseq_free(ds);
	}
	/* a start that gives out nothing does not use up an epoch */
	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
	dotseq_free(ds);
	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(dotseq_epoch(ds), 5);
	dotseq_free(ds);
	/* a file from before epochs reads as epoch 0 */
	write_dots("format = 1\nreserved = 9\n", 24);
	cr_assert_eq(dotseq_open(&ds, dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(dotseq_epoch(ds), 1);
	dotseq_free(ds);
}
