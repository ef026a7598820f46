/*
 * bitcask_crash_writer.c -- the process test_bitcask_crash kills with SIGKILL.
 *
 *   bitcask_crash_writer DIR SEED
 *
 * Opens the store in DIR with sync = always and 32 KiB data files (so files
 * rotate every ~150 writes), then writes until it is killed, from three
 * threads: puts (values of 0..300 bytes) and deletes of the keys "k%08u",
 * 0 <= key < CW_NKEYS.  Thread t owns the keys congruent to t mod 3, so the
 * operations on one key are sequential and the parent can order them; two
 * or three writers at once exercise group commit.  Thread 2 also runs
 * bitcask_merge() every CW_MERGE_EVERY operations of all threads, so merges
 * race with the writes of threads 0 and 1.
 *
 * Protocol on stdout, one write(2) per line (a pipe write under PIPE_BUF is
 * atomic, and nothing is buffered in this process when it dies):
 *   R                     the store is open
 *   P <key> <seq> <len>   a put of len bytes begins
 *   D <key> <seq>         a delete begins
 *   A <seq>               that operation returned 0: it is durable
 *   S                     a merge begins
 *   M <rc>                it finished (0, or an error, which ends the run)
 *   E <what> <rc>         unexpected error; the writer exits with status 3
 * seq = SEED << 32 | n, n counting from 0, so runs with distinct seeds never
 * reuse one.  The value of a put is bct_value(len, key, seq) of
 * tests/unit/bctest.c, repeated below because this program links no test
 * code: a changed one fails every round of the crash test.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitcask.h"
#include "error.h"

#define CW_NKEYS 2000           /* keys 0 .. CW_NKEYS-1; test_bitcask_crash.c agrees */
#define CW_MAX_VALUE 300        /* value lengths 0 .. CW_MAX_VALUE */
#define CW_THREADS 3            /* thread t owns keys = t mod CW_THREADS */
#define CW_MERGE_EVERY 200      /* operations (all threads) between merges */
#define CW_FILE_SIZE (32u << 10)

static bitcask *store;
static uint64_t seed;
static atomic_uint_fast64_t next_n;     /* low half of the next seq */
static atomic_uint_fast64_t ops;        /* operations begun, all threads */

/* Write one line with one write(2). */
static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	char line[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		_exit(4);
	const char *p = line;
	while (n > 0) {
		ssize_t w = write(STDOUT_FILENO, p, (size_t)n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(4);   /* the parent is gone */
		p += w;
		n -= (int)w;
	}
}

static void die(const char *what, int rc)
{
	emit("E %s %d\n", what, rc);
	fprintf(stderr, "bitcask_crash_writer: %s: %s\n", what, dkv_strerror(rc));
	_exit(3);
}

/* Identical to bct_value() in bctest.c. */
static void value_bytes(uint8_t *buf, size_t len, uint64_t i, uint64_t gen)
{
	uint64_t x = i * 0x9E3779B97F4A7C15ull ^ (gen + 1) * 0xC2B2AE3D27D4EB4Full;
	for (size_t k = 0; k < len; k++) {
		x ^= x >> 29;
		x *= 0xBF58476D1CE4E5B9ull;
		x ^= x >> 32;
		buf[k] = (uint8_t)x;
	}
}

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64* */
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void log_fn(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == 0)
		fprintf(stderr, "bitcask_crash_writer: %s\n", msg);
}

static void *writer_main(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t rs = (seed + 1) * 0x9E3779B97F4A7C15ull + t * 0xD1B54A32D192ED03ull;
	if (!rs)
		rs = 1;
	const unsigned per_thread = (CW_NKEYS - t + CW_THREADS - 1) / CW_THREADS;
	uint8_t val[CW_MAX_VALUE];
	/* Start at a random phase, so that short runs merge too. */
	uint64_t merge_at = CW_MERGE_EVERY / 2 + rng_next(&rs) % CW_MERGE_EVERY;

	for (;;) {
		unsigned key = t + CW_THREADS * (unsigned)(rng_next(&rs) % per_thread);
		char k[32];
		int kl = snprintf(k, sizeof(k), "k%08u", key);
		uint64_t seq = seed << 32 | atomic_fetch_add(&next_n, 1);
		uint64_t r = rng_next(&rs) % 100;
		int rc;
		if (r < 75) {
			size_t len = (size_t)(rng_next(&rs) % (CW_MAX_VALUE + 1));
			value_bytes(val, len, key, seq);
			emit("P %u %" PRIu64 " %zu\n", key, seq, len);
			rc = bitcask_put(store, k, (size_t)kl, val, len);
			if (rc)
				die("put", rc);
		} else {
			emit("D %u %" PRIu64 "\n", key, seq);
			rc = bitcask_delete(store, k, (size_t)kl);
			if (rc)
				die("delete", rc);
		}
		emit("A %" PRIu64 "\n", seq);
		uint64_t done = atomic_fetch_add(&ops, 1) + 1;
		if (t == CW_THREADS - 1 && done >= merge_at) {
			emit("S\n");
			rc = bitcask_merge(store);
			emit("M %d\n", rc);
			if (rc)
				die("merge", rc);
			merge_at = done + CW_MERGE_EVERY;
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bitcask_crash_writer DIR SEED\n");
		return 2;
	}
	char *end;
	seed = strtoull(argv[2], &end, 10);
	if (*end || seed >= (1ull << 31)) {
		fprintf(stderr, "bitcask_crash_writer: SEED must be below 2^31\n");
		return 2;
	}

	bitcask_config cfg;
	bitcask_config_init(&cfg);
	cfg.sync = BITCASK_SYNC_ALWAYS;
	cfg.max_file_size = CW_FILE_SIZE;
	cfg.merge_frag_threshold = 0;       /* merges only when thread 2 asks */
	cfg.merge_dead_bytes = 0;
	cfg.log = log_fn;
	char err[512];
	int rc = bitcask_open(&store, argv[1], &cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "bitcask_crash_writer: %s\n", err);
		die("open", rc);
	}
	emit("R\n");

	pthread_t tid[CW_THREADS];
	for (unsigned t = 1; t < CW_THREADS; t++)
		if (pthread_create(&tid[t], NULL, writer_main, (void *)(uintptr_t)t) != 0)
			die("pthread_create", -EAGAIN);
	writer_main((void *)(uintptr_t)0);
	return 0;
}
