/*
 * test_bitcask_crash.c -- kill a real writer with SIGKILL at random moments
 * and check what the store holds after each kill.
 *
 * bitcask_crash_writer (built next to this test) writes with sync = always,
 * rotating 32 KiB files and merging while it writes, and reports on stdout
 * each operation it begins and each one that returned 0 (see its opening
 * comment).  Each round starts it on the same directory -- so every round
 * recovers what the previous kill left -- kills it after 5..150 ms, reads
 * everything it wrote, opens the store and checks, for every key:
 *   - the store holds what the last acknowledged operation on the key left
 *     (or what the state verified after the previous round was), or what an
 *     operation begun but not acknowledged would have left: an operation in
 *     flight at the kill may or may not have landed;
 *   - nothing else: no unknown key, no value that was never written, no
 *     deleted key come back;
 *   - bitcask_check() passes and no record was found corrupt.
 * What the store holds becomes the model for the next round.
 *
 * DKV_CRASH_ROUNDS sets the number of rounds (default 40, a few seconds);
 * DKV_CRASH_SEED the seed of the delays and of the writer;
 * DKV_CRASH_WRITER the writer's path; DKV_CRASH_VERBOSE prints each round.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bctest.h"
#include "bitcask.h"
#include "error.h"

extern char **environ;

#define NKEYS 2000              /* as CW_NKEYS in bitcask_crash_writer.c */
#define MAX_VALUE 300
#define DEFAULT_ROUNDS 40

/* What the parent knows of one key. */
typedef struct key_state {
	bool present;           /* the store holds a value ... */
	uint64_t seq;           /* ... written by the op with this seq ... */
	uint32_t len;           /* ... of this length */
	bool pending;           /* true iff an op on the key began and was not acknowledged */
	bool pending_put;       /* that op is a put (else a delete) */
	uint64_t pending_seq;
	uint32_t pending_len;
} key_state;

/* One op of the current round, by the low half of its seq. */
typedef struct round_op {
	uint32_t key;
	bool put;
	uint32_t len;
	bool begun;             /* true iff its P/D line was seen */
} round_op;

typedef struct crash_stats {
	unsigned rounds, ready, acks, begun, merges_begun, merges, inflight_landed, inflight_lost;
	uint64_t truncated_bytes;
} crash_stats;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* The writer: $DKV_CRASH_WRITER, or bitcask_crash_writer in the directory of
 * this executable (or its parent, if this one runs from libtool's .libs). */
static void writer_path(char *out, size_t outlen)
{
	const char *env = getenv("DKV_CRASH_WRITER");
	if (env && *env) {
		snprintf(out, outlen, "%s", env);
		return;
	}
	char self[PATH_MAX - 64];   /* room for the writer's name in out */
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	cr_assert_gt(n, 0, "readlink /proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	char *slash = strrchr(self, '/');
	cr_assert_not_null(slash);
	*slash = 0;
	snprintf(out, outlen, "%s/bitcask_crash_writer", self);
	if (access(out, X_OK) != 0 && strlen(self) > 6 && strcmp(self + strlen(self) - 6, "/.libs") == 0) {
		self[strlen(self) - 6] = 0;
		snprintf(out, outlen, "%s/bitcask_crash_writer", self);
	}
	cr_assert_eq(access(out, X_OK), 0, "no writer at %s (build it next to this test, or set DKV_CRASH_WRITER)", out);
}

/* Run the writer on dir with seed; kill it after delay_ms; return all it
 * wrote (NUL-terminated, caller frees) and its wait status. */
static char *run_writer(const char *writer, const char *dir, uint64_t seed, unsigned delay_ms,
			size_t *out_len, int *status)
{
	int p[2];
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	char seedstr[32];
	snprintf(seedstr, sizeof(seedstr), "%" PRIu64, seed);
	char *argv[] = { (char *)writer, (char *)dir, seedstr, NULL };
	pid_t pid;
	int rc = posix_spawn(&pid, writer, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	cr_assert_eq(rc, 0, "posix_spawn %s: %s", writer, strerror(rc));

	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	uint64_t deadline = now_ms() + delay_ms;
	bool killed = false, eof = false;
	while (!eof) {
		int timeout = -1;
		if (!killed) {
			uint64_t t = now_ms();
			if (t >= deadline) {
				kill(pid, SIGKILL);
				killed = true;
				continue;
			}
			timeout = (int)(deadline - t);
		}
		struct pollfd pfd = { p[0], POLLIN, 0 };
		int pr = poll(&pfd, 1, timeout);
		if (pr < 0 && errno == EINTR)
			continue;
		cr_assert_geq(pr, 0, "poll: %s", strerror(errno));
		if (pr == 0)
			continue;
		if (cap - len < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			cr_assert_not_null(buf);
		}
		ssize_t n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		cr_assert_geq(n, 0, "read: %s", strerror(errno));
		if (n == 0)
			eof = true;   /* the writer is gone: killed, or it exited */
		len += (size_t)n;
	}
	close(p[0]);
	if (!killed)
		kill(pid, SIGKILL);   /* it closed stdout; make sure */
	while (waitpid(pid, status, 0) < 0)
		cr_assert_eq(errno, EINTR, "waitpid: %s", strerror(errno));
	buf[len] = 0;
	*out_len = len;
	return buf;
}

/* Apply the writer's report of one round to the model. */
static void apply_output(key_state *ks, char *out, size_t len, uint64_t seed, crash_stats *cs)
{
	size_t ops_cap = 1024;
	round_op *ops = calloc(ops_cap, sizeof(*ops));
	cr_assert_not_null(ops);
	cr_assert(len == 0 || out[len - 1] == '\n', "the writer's last line is cut: '%s'",
		  strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out);
	char *save = NULL;
	for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned key;
		uint64_t seq;
		size_t vlen;
		int rc;
		if (strcmp(line, "R") == 0) {
			cs->ready++;
		} else if (strcmp(line, "S") == 0) {
			cs->merges_begun++;
		} else if (sscanf(line, "P %u %" SCNu64 " %zu", &key, &seq, &vlen) == 3 ||
			   sscanf(line, "D %u %" SCNu64, &key, &seq) == 2) {
			bool put = line[0] == 'P';
			cr_assert_lt(key, NKEYS, "writer used key %u: '%s'", key, line);
			cr_assert_eq(seq >> 32, seed, "seq from another run: '%s'", line);
			cr_assert(!put || vlen <= MAX_VALUE, "value too long: '%s'", line);
			uint32_t n = (uint32_t)seq;
			while (n >= ops_cap) {
				ops = realloc(ops, 2 * ops_cap * sizeof(*ops));
				cr_assert_not_null(ops);
				memset(ops + ops_cap, 0, ops_cap * sizeof(*ops));
				ops_cap *= 2;
			}
			cr_assert(!ops[n].begun, "seq %" PRIu64 " used twice", seq);
			ops[n] = (round_op){ key, put, put ? (uint32_t)vlen : 0, true };
			cr_assert(!ks[key].pending, "key %u: op %" PRIu64 " began while op %" PRIu64
				  " was unacknowledged (one thread per key)", key, seq, ks[key].pending_seq);
			ks[key].pending = true;
			ks[key].pending_put = put;
			ks[key].pending_seq = seq;
			ks[key].pending_len = ops[n].len;
			cs->begun++;
		} else if (sscanf(line, "A %" SCNu64, &seq) == 1) {
			uint32_t n = (uint32_t)seq;
			cr_assert(seq >> 32 == seed && n < ops_cap && ops[n].begun, "ack of an unknown op: '%s'", line);
			key_state *k = &ks[ops[n].key];
			cr_assert(k->pending && k->pending_seq == seq, "ack out of order: '%s'", line);
			k->pending = false;
			k->present = ops[n].put;
			k->seq = seq;
			k->len = ops[n].len;
			cs->acks++;
		} else if (sscanf(line, "M %d", &rc) == 1) {
			cr_assert_eq(rc, 0, "a merge failed in the writer: %s", dkv_strerror(rc));
			cs->merges++;
		} else {
			cr_assert_fail("the writer said: '%s'", line);
		}
	}
	free(ops);
}

/* Does the store's answer for key (rc, v, vl) equal a state? */
static bool holds(int rc, const void *v, size_t vl, unsigned key, bool present, uint64_t seq, uint32_t len)
{
	if (!present)
		return rc == DKV_ENOTFOUND;
	if (rc != 0 || vl != len)
		return false;
	uint8_t want[MAX_VALUE + 1];
	bct_value(want, len, key, seq);
	return memcmp(v, want, len) == 0;
}

static bitcask_config store_config(void)
{
	bitcask_config cfg;
	bct_config(&cfg);
	cfg.sync = BITCASK_SYNC_ALWAYS;
	cfg.max_file_size = 32u << 10;
	return cfg;
}

/* Open dir and check it against ks; then ks becomes what it holds. */
static void verify(const char *dir, key_state *ks, unsigned round, crash_stats *cs)
{
	bitcask_config cfg = store_config();
	bitcask *bc = bct_open(dir, &cfg);
	bct_check(bc);
	size_t live = 0;
	for (unsigned key = 0; key < NKEYS; key++) {
		char k[32];
		size_t kl = bct_key(k, key);
		void *v = NULL;
		size_t vl = 0;
		int rc = bitcask_get(bc, k, kl, &v, &vl);
		cr_assert(rc == 0 || rc == DKV_ENOTFOUND, "round %u key %u: get: %s", round, key, dkv_strerror(rc));
		key_state *s = &ks[key];
		bool as_acked = holds(rc, v, vl, key, s->present, s->seq, s->len);
		bool as_pending = s->pending && holds(rc, v, vl, key, s->pending_put, s->pending_seq, s->pending_len);
		cr_assert(as_acked || as_pending,
			  "round %u key %u: the store has %s (%zu bytes), expected %s seq %" PRIu64 " (%u bytes)%s%s",
			  round, key, rc == 0 ? "a value" : "no value", vl,
			  s->present ? "value of" : "absent after", s->seq, s->len,
			  s->pending ? (s->pending_put ? ", or the unacknowledged put" : ", or the unacknowledged delete") : "",
			  rc == 0 && !as_acked && !as_pending ? " -- the value is neither" : "");
		if (!as_acked) {
			s->present = s->pending_put;
			s->seq = s->pending_seq;
			s->len = s->pending_len;
			cs->inflight_landed++;
		} else if (s->pending) {
			cs->inflight_lost++;
		}
		s->pending = false;
		live += s->present;
		free(v);
	}

	bitcask_iter *it;
	cr_assert_eq(bitcask_iter_open(bc, false, &it), 0);
	const uint8_t *k, *v;
	size_t kl, vl, seen = 0;
	int rc;
	while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0) {
		char name[32];
		unsigned key = 0;
		cr_assert(kl == 9 && k[0] == 'k', "round %u: unknown key of %zu bytes", round, kl);
		memcpy(name, k, kl);
		name[kl] = 0;
		cr_assert(sscanf(name + 1, "%u", &key) == 1 && key < NKEYS, "round %u: unknown key %s", round, name);
		cr_assert(ks[key].present, "round %u: iteration gives %s, which is absent", round, name);
		seen++;
	}
	cr_assert_eq(rc, DKV_ENOTFOUND);
	bitcask_iter_close(it);
	cr_assert_eq(seen, live, "round %u: iteration saw %zu keys, expected %zu", round, seen, live);

	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.keys, live);
	cr_assert_eq(st.corrupt_records, 0, "round %u: %" PRIu64 " corrupt records at open", round, st.corrupt_records);
	cs->truncated_bytes += st.truncated_bytes;
	cr_assert_eq(bitcask_close(bc), 0);
}

TestSuite(bitcask_crash, .description = "a writer killed with SIGKILL loses no acknowledged write");

Test(bitcask_crash, sigkill_rounds, .timeout = 600)
{
	char writer[PATH_MAX];
	writer_path(writer, sizeof(writer));
	const char *e = getenv("DKV_CRASH_ROUNDS");
	unsigned rounds = e && *e ? (unsigned)strtoul(e, NULL, 10) : DEFAULT_ROUNDS;
	e = getenv("DKV_CRASH_SEED");
	uint64_t seed = e && *e ? strtoull(e, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
	seed &= 0x3fffffff;
	fprintf(stderr, "bitcask_crash: %u rounds, DKV_CRASH_SEED=%" PRIu64 "\n", rounds, seed);
	uint64_t rs = seed * 0x9E3779B97F4A7C15ull + 1;
	bool verbose = getenv("DKV_CRASH_VERBOSE") != NULL;

	char *dir = bct_mkdtemp();
	key_state *ks = calloc(NKEYS, sizeof(*ks));
	cr_assert_not_null(ks);
	crash_stats cs = { 0 };
	uint64_t t0 = now_ms();
	for (unsigned r = 0; r < rounds; r++) {
		unsigned delay = 5 + (unsigned)(rng_next(&rs) % 146);
		uint64_t wseed = (seed + r) & 0x7fffffff;
		size_t len;
		int status;
		char *out = run_writer(writer, dir, wseed, delay, &len, &status);
		cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			  "round %u: the writer was not killed but %s %d; it said:\n%s", r,
			  WIFEXITED(status) ? "exited with" : "died of signal",
			  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), out);
		crash_stats before = cs;
		apply_output(ks, out, len, wseed, &cs);
		free(out);
		verify(dir, ks, r, &cs);
		cs.rounds++;
		if (verbose)
			fprintf(stderr, "round %u: killed after %u ms, %s, %u ops begun, %u acknowledged, "
				"%u merges begun, %u done\n", r, delay, cs.ready > before.ready ? "open" : "still opening",
				cs.begun - before.begun, cs.acks - before.acks, cs.merges_begun - before.merges_begun,
				cs.merges - before.merges);
	}
	fprintf(stderr, "bitcask_crash: %u rounds in %.1f s: writer ready in %u, %u ops begun, %u acknowledged, "
		"%u merges begun, %u done; unacknowledged ops found landed %u, not landed %u; %" PRIu64
		" torn bytes cut\n", cs.rounds, (double)(now_ms() - t0) / 1000.0, cs.ready, cs.begun, cs.acks,
		cs.merges_begun, cs.merges,
		cs.inflight_landed, cs.inflight_lost, cs.truncated_bytes);
	if (rounds >= 10)
		cr_assert_gt(cs.acks, 0, "the writer never got a write done: the test tested nothing");
	free(ks);
	bct_rmdir(dir);
	free(dir);
}
