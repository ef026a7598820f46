/*
 * test_powerio.c -- the power-loss I/O table (tests/unit/powerio.[ch]) on its
 * own, and a real bitcask store through it: after a power loss exactly what
 * was synced is there, after a kill -9 everything written is.
 *
 * The random rounds check, per key, that what a store holds after a power
 * loss is the value of the key's last operation known durable (covered by a
 * sync_now, a rotation's sync, a clean close, or a write under sync =
 * always, or the reopen after a kill -9) or the value of a later
 * operation: an operation not yet synced may or may not survive, a synced
 * one must.  Without merges every round leaves a file more, and each open
 * reads them all: rounds cost grows with their number (150: ~3 s, 300: ~25 s).  DKV_POWERIO_SEED sets the
 * seed, DKV_POWERIO_ROUNDS the rounds (default 150).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bctest.h"
#include "bitcask.h"
#include "error.h"
#include "powerio.h"
#include "testutil.h"

static powerio *pio;
static char *dir;       /* the root: one "node" */
static char sdir[4096]; /* its store: dir/p0 */

static void setup(void)
{
	pio = powerio_new();
	cr_assert_not_null(pio);
	dir = bct_mkdtemp();
	snprintf(sdir, sizeof(sdir), "%s/p0", dir);
}

static void teardown(void)
{
	char err[512];
	cr_expect_eq(powerio_check(pio, err, sizeof(err)), 0, "powerio_check: %s", err);
	powerio_free(pio);
	bct_rmdir(dir);
	free(dir);
}

TestSuite(powerio, .init = setup, .fini = teardown, .timeout = 120);

static void pio_check(void)
{
	char err[512];
	cr_assert_eq(powerio_check(pio, err, sizeof(err)), 0, "powerio_check: %s", err);
}

static void config(bitcask_config *cfg, bitcask_sync sync)
{
	bct_config(cfg);
	cfg->sync = sync;
	cfg->external_worker = true;
	cfg->io = powerio_bcio(pio);
}

/* The store dir/p0 with sync = manual, through powerio. */
static bitcask *open_manual(bitcask_config *cfg)
{
	config(cfg, BITCASK_SYNC_MANUAL);
	return bct_open(sdir, cfg);
}

static void put(bitcask *bc, uint64_t i, size_t len, uint64_t gen)
{
	char key[32];
	uint8_t val[4096];
	cr_assert(len <= sizeof(val));
	size_t kl = bct_key(key, i);
	bct_value(val, len, i, gen);
	cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
}

/* put, and record it in the model. */
static void put_model(bitcask *bc, bct_model *m, uint64_t i, size_t len, uint64_t gen)
{
	put(bc, i, len, gen);
	m->present[i] = true;
	m->gen[i] = gen;
	m->len[i] = len;
}

/* bitcask_get of key i: its result, the value in *v (caller frees) and
 * *vl. */
static int get(bitcask *bc, uint64_t i, void **v, size_t *vl)
{
	char key[32];
	size_t kl = bct_key(key, i);
	*v = NULL;
	*vl = 0;
	return bitcask_get(bc, key, kl, v, vl);
}

static void del(bitcask *bc, uint64_t i)
{
	char key[32];
	size_t kl = bct_key(key, i);
	cr_assert_eq(bitcask_delete(bc, key, kl), 0);
}

/* Power loss of the whole root: crash, close the store, reset. */
static void power_loss(bitcask *bc, uint64_t seed)
{
	cr_assert_eq(powerio_crash(pio, dir), 0);
	bitcask_close(bc);      /* fails: the disk is gone; frees the store */
	cr_assert_eq(powerio_power_loss(pio, dir, seed), 0);
	pio_check();
}

/* --- the table alone ------------------------------------------------------ */

static int dirfd_open(void)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert(fd >= 0);
	return fd;
}

static void dir_sync(int dfd)
{
	cr_assert_eq(powerio_bcio(pio)->fsync(dfd), 0);
}

static void write_file(const char *name, const char *text, bool sync)
{
	const bcio *io = powerio_bcio(pio);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = io->open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(io->pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
	if (sync)
		cr_assert_eq(io->fdatasync(fd), 0);
	cr_assert_eq(io->close(fd), 0);
}

/* The content of dir/name, or NULL if absent.  Caller frees. */
static char *content(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 4096);
	size_t n = fread(buf, 1, 4095, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static void expect_content(const char *name, const char *want)
{
	char *got = content(name);
	if (!want)
		cr_assert_null(got, "%s should be gone, holds \"%s\"", name, got);
	else {
		cr_assert_not_null(got, "%s is gone, should hold \"%s\"", name, want);
		cr_assert_str_eq(got, want, "%s", name);
	}
	free(got);
}

static void crash_and_lose(void)
{
	cr_assert_eq(powerio_crash(pio, dir), 0);
	cr_assert_eq(powerio_power_loss(pio, dir, 0), 0);
	pio_check();
}

Test(powerio, file_created_but_never_synced_disappears)
{
	int dfd = dirfd_open();
	write_file("a", "written only", false);            /* no sync at all */
	write_file("b", "synced, dir not", true);           /* file synced, name not */
	write_file("c", "name durable", false);
	dir_sync(dfd);                                       /* c's name, a's, b's */
	write_file("d", "never", true);
	crash_and_lose();
	expect_content("a", "");                /* name durable, content never synced */
	expect_content("b", "synced, dir not"); /* both durable after the dir fsync */
	expect_content("c", "");
	expect_content("d", NULL);              /* its create was never made durable */
	close(dfd);
}

Test(powerio, unsynced_appends_and_overwrites_are_undone)
{
	const bcio *io = powerio_bcio(pio);
	int dfd = dirfd_open();
	write_file("f", "hello", true);
	dir_sync(dfd);
	char path[4096];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = io->open(path, O_RDWR, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(io->pwrite(fd, " world", 6, 5), 6);    /* append, unsynced */
	cr_assert_eq(io->pwrite(fd, "J", 1, 0), 1);         /* overwrite below synced */
	expect_content("f", "Jello world");
	cr_assert_eq(io->close(fd), 0);
	cr_assert_gt(powerio_unsynced_bytes(pio, dir), 0);
	crash_and_lose();
	expect_content("f", "hello");

	fd = io->open(path, O_RDWR, 0);
	cr_assert_eq(io->ftruncate(fd, 2), 0);              /* cut, unsynced */
	cr_assert_eq(io->close(fd), 0);
	expect_content("f", "he");
	crash_and_lose();
	expect_content("f", "hello");

	fd = io->open(path, O_RDWR, 0);
	cr_assert_eq(io->pwrite(fd, "!", 1, 5), 1);
	cr_assert_eq(io->fsync(fd), 0);                     /* now durable */
	cr_assert_eq(io->close(fd), 0);
	cr_assert_eq(powerio_unsynced_bytes(pio, dir), 0);
	crash_and_lose();
	expect_content("f", "hello!");
	close(dfd);
}

Test(powerio, renames_and_unlinks_need_the_directory_fsync)
{
	const bcio *io = powerio_bcio(pio);
	int dfd = dirfd_open();
	char a[4096], b[4096], c[4096];
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	snprintf(c, sizeof(c), "%s/c", dir);
	write_file("a", "AAA", true);
	write_file("b", "BBB", true);
	write_file("c", "CCC", true);
	dir_sync(dfd);

	cr_assert_eq(io->rename(a, b), 0);      /* replaces b */
	cr_assert_eq(io->unlink(c), 0);
	write_file("a", "new a", true);          /* a new file under the old name */
	expect_content("b", "AAA");
	crash_and_lose();
	expect_content("a", "AAA");
	expect_content("b", "BBB");
	expect_content("c", "CCC");

	cr_assert_eq(io->rename(a, b), 0);
	cr_assert_eq(io->unlink(c), 0);
	dir_sync(dfd);
	crash_and_lose();
	expect_content("a", NULL);
	expect_content("b", "AAA");
	expect_content("c", NULL);

	/* The hint-file dance: write tmp, fsync, rename over, fsync dir. */
	write_file("b.tmp", "B2", true);
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s/b.tmp", dir);
	cr_assert_eq(io->rename(tmp, b), 0);
	crash_and_lose();
	expect_content("b", "AAA");
	expect_content("b.tmp", NULL);
	write_file("b.tmp", "B2", true);
	cr_assert_eq(io->rename(tmp, b), 0);
	dir_sync(dfd);
	crash_and_lose();
	expect_content("b", "B2");
	close(dfd);
}

Test(powerio, crash_refuses_changes_until_resume)
{
	const bcio *io = powerio_bcio(pio);
	write_file("f", "abc", false);
	char path[4096];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = io->open(path, O_RDWR, 0);
	cr_assert_eq(powerio_crash(pio, dir), 0);
	errno = 0;
	cr_assert_eq(io->pwrite(fd, "x", 1, 3), -1);
	cr_assert_eq(errno, EIO);
	cr_assert_eq(io->fdatasync(fd), -1);
	cr_assert_eq(io->unlink(path), -1);
	cr_assert_eq(io->open(path, O_RDWR | O_TRUNC, 0), -1);
	char buf[4];
	cr_assert_eq(io->pread(fd, buf, 3, 0), 3);          /* reads go on */
	cr_assert_eq(powerio_power_loss(pio, dir, 0), -EBUSY);
	cr_assert_eq(io->close(fd), 0);
	cr_assert_eq(powerio_resume(pio, dir), 0);          /* kill -9: all kept */
	expect_content("f", "abc");
	cr_assert_eq(powerio_resume(pio, dir), -EINVAL);
	crash_and_lose();                                   /* but never synced */
	expect_content("f", NULL);
}

Test(powerio, faults_fail_the_nth_call_once_or_for_good)
{
	const bcio *io = powerio_bcio(pio);
	char path[4096];
	snprintf(path, sizeof(path), "%s/f", dir);
	int fd = io->open(path, O_RDWR | O_CREAT, 0644);
	cr_assert_eq(powerio_fault(pio, dir, POWERIO_WRITE, 2, ENOSPC, false), 0);
	cr_assert_eq(io->pwrite(fd, "a", 1, 0), 1);
	cr_assert_eq(io->pwrite(fd, "b", 1, 1), -1);
	cr_assert_eq(errno, ENOSPC);
	cr_assert_eq(io->pwrite(fd, "b", 1, 1), 1);
	cr_assert_eq(powerio_fired(pio, dir), 1);
	cr_assert_eq(powerio_fault(pio, dir, POWERIO_SYNC, 1, EIO, true), 0);
	cr_assert_eq(io->fdatasync(fd), -1);
	cr_assert_eq(errno, EIO);
	cr_assert_eq(io->fsync(fd), -1);
	cr_assert_eq(powerio_calls(pio, dir, POWERIO_SYNC), 2);
	cr_assert_eq(io->close(fd), 0);
	cr_assert_eq(powerio_fault(pio, dir, POWERIO_SYNC, 0, 0, false), 0);
}

/* --- a real store through it -------------------------------------------- */

Test(powerio, store_keeps_exactly_the_synced_keys)
{
	bitcask_config cfg;
	bitcask *bc = open_manual(&cfg);
	bct_model m;
	bct_model_init(&m, 200);
	for (uint64_t i = 0; i < 50; i++)
		put_model(bc, &m, i, 100, 1);
	cr_assert_eq(bitcask_sync_now(bc), 0);
	for (uint64_t i = 50; i < 100; i++)
		put(bc, i, 100, 1);
	for (uint64_t i = 0; i < 10; i++)
		del(bc, i);
	for (uint64_t i = 10; i < 20; i++)
		put(bc, i, 50, 2);
	bct_check(bc);
	cr_assert_gt(powerio_unsynced_bytes(pio, dir), 0);
	power_loss(bc, 0);

	bc = bct_open(sdir, &cfg);
	bct_assert_model(bc, &m);
	bct_check(bc);
	/* And it takes writes again, durably. */
	put_model(bc, &m, 150, 10, 3);
	cr_assert_eq(bitcask_sync_now(bc), 0);
	power_loss(bc, 0);
	bc = bct_open(sdir, &cfg);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

Test(powerio, kill_keeps_everything_written)
{
	bitcask_config cfg;
	bitcask *bc = open_manual(&cfg);
	bct_model m;
	bct_model_init(&m, 100);
	for (uint64_t i = 0; i < 100; i++)
		put_model(bc, &m, i, 300, 1);
	cr_assert_eq(powerio_crash(pio, dir), 0);
	bitcask_close(bc);
	cr_assert_eq(powerio_resume(pio, dir), 0);
	bc = bct_open(sdir, &cfg);
	bct_assert_model(bc, &m);
	bct_check(bc);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

Test(powerio, rotation_merge_and_hints_then_power_loss)
{
	bitcask_config cfg;
	bitcask *bc = open_manual(&cfg);
	bct_model m;
	bct_model_init(&m, 400);
	/* ~400 KiB over 64 KiB files: six rotations, each syncing its file. */
	for (uint64_t gen = 1; gen <= 2; gen++) {
		for (uint64_t i = 0; i < 400; i++) {
			if (gen == 2 && i % 2)
				continue;
			put_model(bc, &m, i, 500, gen);
		}
	}
	for (uint64_t i = 0; i < 400; i += 7) {
		del(bc, i);
		m.present[i] = false;
	}
	cr_assert_eq(bitcask_sync_now(bc), 0);
	cr_assert_eq(bitcask_work(bc), 0);     /* the hint files */
	cr_assert_eq(bitcask_merge(bc), 0);
	bct_check(bc);
	cr_assert_gt(bct_count(sdir, ".hint"), 0);
	bct_assert_model(bc, &m);
	power_loss(bc, 0);

	bc = bct_open(sdir, &cfg);
	bct_check(bc);
	bct_assert_model(bc, &m);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.corrupt_records, 0);
	cr_assert_gt(st.hint_loads, 0, "the merge's hints survived and were used");
	cr_assert_eq(bitcask_close(bc), 0);
	bct_model_free(&m);
}

/* A merge drops every record the keydir does not point at.  When the
 * record it points at is in the active file and not yet synced, the older,
 * synced value is gone from disk, and a power loss takes the newer one. */
Test(powerio, merge_keeps_synced_value_superseded_by_unsynced_write)
{
	bitcask_config cfg;
	bitcask *bc = open_manual(&cfg);
	put(bc, 1, 100, 1);
	cr_assert_eq(bitcask_rotate(bc), 0);   /* v1 synced, immutable */
	put(bc, 1, 100, 2);                     /* v2 in the active file, unsynced */
	cr_assert_eq(bitcask_merge(bc), 0);
	power_loss(bc, 0);
	bc = bct_open(sdir, &cfg);
	void *v;
	size_t vl;
	int rc = get(bc, 1, &v, &vl);
	cr_expect_eq(rc, 0, "a key synced and never deleted is gone after a power loss: %s",
		     dkv_strerror(rc));
	free(v);
	bitcask_close(bc);
}

/* --- random rounds -------------------------------------------------------- */

#define NKEYS 64
#define MAXSINCE 4096

/* One value a key has had: present with (gen, len), or absent. */
typedef struct kval {
	bool present;
	uint64_t gen;
	size_t len;
} kval;

/* What a key may hold after a power loss. */
typedef struct kstate {
	kval durable;           /* as of its last operation known durable */
	kval since[MAXSINCE];   /* values of later operations, oldest first */
	uint64_t seq[MAXSINCE]; /* their operation numbers */
	unsigned inc[MAXSINCE]; /* the store incarnation that wrote each */
	size_t n;
	kval cur;               /* the newest value (what a kill keeps) */
} kstate;

static kstate *ks;

static void note(uint64_t i, kval v, uint64_t seq, unsigned inc)
{
	kstate *k = &ks[i];
	if (k->n == MAXSINCE) {
		/* Too long without a durable point: keep the newest half. */
		memmove(k->since, k->since + MAXSINCE / 2, MAXSINCE / 2 * sizeof(kval));
		memmove(k->seq, k->seq + MAXSINCE / 2, MAXSINCE / 2 * sizeof(uint64_t));
		memmove(k->inc, k->inc + MAXSINCE / 2, MAXSINCE / 2 * sizeof(unsigned));
		k->n = MAXSINCE / 2;
	}
	k->since[k->n] = v;
	k->seq[k->n] = seq;
	k->inc[k->n] = inc;
	k->n++;
	k->cur = v;
}

/* Every operation of incarnation inc numbered <= upto is durable. */
static void covered(unsigned inc, uint64_t upto)
{
	for (size_t i = 0; i < NKEYS; i++) {
		kstate *k = &ks[i];
		size_t last = SIZE_MAX;
		for (size_t j = 0; j < k->n; j++)
			if (k->inc[j] == inc && k->seq[j] <= upto)
				last = j;
		if (last == SIZE_MAX)
			continue;
		k->durable = k->since[last];
		memmove(k->since, k->since + last + 1, (k->n - last - 1) * sizeof(kval));
		memmove(k->seq, k->seq + last + 1, (k->n - last - 1) * sizeof(uint64_t));
		memmove(k->inc, k->inc + last + 1, (k->n - last - 1) * sizeof(unsigned));
		k->n -= last + 1;
	}
}

static bool kval_is(const kval *v, uint64_t i, int rc, const uint8_t *val, size_t vl)
{
	if (!v->present)
		return rc == DKV_ENOTFOUND;
	if (rc != 0 || vl != v->len)
		return false;
	uint8_t want[4096];
	bct_value(want, vl, i, v->gen);
	return memcmp(want, val, vl) == 0;
}

/* After a power loss: each key holds its durable value or a later one;
 * what it holds becomes durable and current. */
static void check_after_power_loss(bitcask *bc, uint64_t seed, int round)
{
	for (uint64_t i = 0; i < NKEYS; i++) {
		kstate *k = &ks[i];
		void *v;
		size_t vl;
		int rc = get(bc, i, &v, &vl);
		cr_assert(rc == 0 || rc == DKV_ENOTFOUND, "seed %" PRIu64 " round %d key %" PRIu64 ": %s",
			  seed, round, i, dkv_strerror(rc));
		const kval *hit = NULL;
		if (kval_is(&k->durable, i, rc, v, vl))
			hit = &k->durable;
		for (size_t j = k->n; !hit && j-- > 0;)
			if (kval_is(&k->since[j], i, rc, v, vl))
				hit = &k->since[j];
		cr_assert_not_null(hit, "seed %" PRIu64 " round %d key %" PRIu64 ": holds %s (%zu bytes), "
				   "durable was %s gen %" PRIu64 ", %zu later operations",
				   seed, round, i, rc ? "nothing" : "a value", vl,
				   k->durable.present ? "present" : "absent", k->durable.gen, k->n);
		k->durable = k->cur = *hit;
		k->n = 0;
		free(v);
	}
}

static void check_exact(bitcask *bc, uint64_t seed, int round)
{
	for (uint64_t i = 0; i < NKEYS; i++) {
		void *v;
		size_t vl;
		int rc = get(bc, i, &v, &vl);
		cr_assert(kval_is(&ks[i].cur, i, rc, v, vl), "seed %" PRIu64 " round %d key %" PRIu64
			  ": not what was written last (%s)", seed, round, i, dkv_strerror(rc));
		free(v);
	}
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void random_rounds(bool with_merges)
{
	const char *e = getenv("DKV_POWERIO_SEED");
	uint64_t seed = e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	e = getenv("DKV_POWERIO_ROUNDS");
	int rounds = e ? atoi(e) : (int)test_reps(150, 15);
	fprintf(stderr, "test_powerio: seed %" PRIu64 " (DKV_POWERIO_SEED=%" PRIu64 " repeats), %d rounds%s\n",
		seed, seed, rounds, with_merges ? ", with merges" : "");
	uint64_t s = seed;
	ks = calloc(NKEYS, sizeof(*ks));
	cr_assert_not_null(ks);
	uint64_t seq = 0, gen = 0;
	unsigned inc = 0;
	bitcask_config cfg;
	for (int round = 0; round < rounds; round++) {
		bool always = rnd(&s) % 4 == 0;
		config(&cfg, always ? BITCASK_SYNC_ALWAYS : BITCASK_SYNC_MANUAL);
		bitcask *bc = bct_open(sdir, &cfg);
		inc++;
		int ops = (int)(rnd(&s) % 200);
		for (int op = 0; op < ops; op++) {
			bitcask_stats st;
			bitcask_stats_get(bc, &st, NULL, NULL);
			uint64_t syncs = st.syncs;
			uint64_t r = rnd(&s) % 100, i = rnd(&s) % NKEYS;
			if (r < 65) {
				size_t len = (size_t)(rnd(&s) % 2000);
				put(bc, i, len, ++gen);
				note(i, (kval){ true, gen, len }, ++seq, inc);
			} else if (r < 85) {
				del(bc, i);
				note(i, (kval){ false, 0, 0 }, ++seq, inc);
			} else if (r < 92) {
				cr_assert_eq(bitcask_sync_now(bc), 0);
				covered(inc, seq);
				continue;
			} else if (r < 95) {
				cr_assert_eq(bitcask_rotate(bc), 0);
				bitcask_stats_get(bc, &st, NULL, NULL);
				if (st.syncs != syncs)
					covered(inc, seq);
				continue;
			} else if (r < 98) {
				cr_assert_eq(bitcask_work(bc), 0);
				continue;
			} else {
				if (with_merges)
					cr_assert_eq(bitcask_merge(bc), 0);
				continue;
			}
			bitcask_stats_get(bc, &st, NULL, NULL);
			if (always)
				covered(inc, seq);
			else if (st.syncs != syncs)
				covered(inc, seq - 1);   /* a rotation synced before this write */
		}
		bct_check(bc);
		uint64_t end = rnd(&s) % 10;
		if (end < 7) {
			power_loss(bc, rnd(&s) % 2 ? rnd(&s) | 1 : 0);
			bc = bct_open(sdir, &cfg);
			check_after_power_loss(bc, seed, round);
		} else if (end < 9) {
			cr_assert_eq(powerio_crash(pio, dir), 0);
			bitcask_close(bc);
			cr_assert_eq(powerio_resume(pio, dir), 0);
			bc = bct_open(sdir, &cfg);
			check_exact(bc, seed, round);
			covered(inc, seq);      /* the reopen synced the dead one's file */
		} else {
			cr_assert_eq(bitcask_close(bc), 0);
			covered(inc, seq);
			bc = bct_open(sdir, &cfg);
			check_exact(bc, seed, round);
		}
		bct_check(bc);
		pio_check();
		cr_assert_eq(bitcask_close(bc), 0);
	}
	free(ks);
}

Test(powerio, random_rounds_without_merges)
{
	random_rounds(false);
}

Test(powerio, random_rounds_with_merges)
{
	random_rounds(true);
}

/* sync = interval promises that a process crash loses nothing and a power
 * loss at most the interval.  After a kill -9, the page cache holds the
 * dead process's unsynced tail; the restarted store appends to a new file
 * and syncs only that one. */
Test(powerio, writes_before_a_kill_are_synced_after_the_restart)
{
	bitcask_config cfg;
	bitcask *bc = open_manual(&cfg);
	put(bc, 1, 100, 1);                     /* acknowledged, in the page cache */
	cr_assert_eq(powerio_crash(pio, dir), 0);
	bitcask_close(bc);
	cr_assert_eq(powerio_resume(pio, dir), 0);
	bc = bct_open(sdir, &cfg);              /* restart */
	put(bc, 2, 100, 1);
	cr_assert_eq(bitcask_sync_now(bc), 0);  /* everything durable now? */
	power_loss(bc, 0);
	bc = bct_open(sdir, &cfg);
	void *v;
	size_t vl;
	int rc = get(bc, 1, &v, &vl);
	cr_expect_eq(rc, 0, "a write acknowledged before a kill -9 is lost at a power loss "
		     "after the restart and a sync: %s", dkv_strerror(rc));
	free(v);
	bitcask_close(bc);
}
