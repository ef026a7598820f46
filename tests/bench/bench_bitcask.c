/*
 * bench_bitcask.c -- throughput and latency of the storage engine, beside
 * RocksDB's when built with it (HAVE_ROCKSDB).
 *
 * What it measures, for each value size (default 100 and 1024 bytes):
 *
 *   put-none      N puts from one thread, keys in a random order, no fsync;
 *                 then the time of one final fdatasync (or WAL sync).
 *   put-interval  the same with a background fdatasync every 100 ms
 *                 (RocksDB: a timer thread calling rocksdb_flush_wal(db, 1)
 *                 every 100 ms, the closest it has to a timed fsync).
 *   put-always    --ops puts, spread over 1, 16 and 64 writer threads, each
 *                 writing its own keys; every put durable before it returns.
 *   get           random gets of loaded keys with a warm cache, 1 and 2 threads.
 *   keydir        the key directory's bytes per key (engine's own figure, and
 *                 the process RSS growth during the load as a cross-check).
 *   open          reopen time of the loaded store with hint files and without
 *                 (the *.hint files deleted first); 1M keys x 100 B values.
 *   open-10m      the same for 10M keys with 16-byte values.
 *   merge         overwrite half the keys, rotate, time bitcask_merge().
 *   disk          the disk's sequential write bandwidth (O_DIRECT, and
 *                 buffered + fdatasync), as a yardstick for put-none.
 *
 * Keys are "key%012" PRIu64 (15 bytes).  Values are pseudo-random bytes whose
 * first bytes carry the key's index and a generation number, so every get
 * checks it got the right record.  Latencies go into a log-linear histogram
 * (powers of two, 16 linear sub-buckets each, nanosecond resolution).
 *
 * Every timed loop also stops at a time limit, so a slow engine cannot make a
 * run hang.  All data lives under --dir, which is emptied before and removed
 * after the run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bitcask.h"
#include "error.h"

#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

#define KEY_LEN 15
#define MAX_LIST 8

/* ------------------------------------------------------------------ options */

enum {
	PH_DISK = 1 << 0,
	PH_PUT_NONE = 1 << 1,
	PH_PUT_INTERVAL = 1 << 2,
	PH_PUT_ALWAYS = 1 << 3,
	PH_GET = 1 << 4,
	PH_KEYDIR = 1 << 5,
	PH_OPEN = 1 << 6,
	PH_OPEN_BIG = 1 << 7,
	PH_MERGE = 1 << 8,
	PH_ALL = (1 << 9) - 1,
};

static const struct {
	const char *name;
	int mask;
} phase_names[] = {
	{"disk", PH_DISK},
	{"put", PH_PUT_NONE | PH_PUT_INTERVAL | PH_PUT_ALWAYS},
	{"put-none", PH_PUT_NONE},
	{"put-interval", PH_PUT_INTERVAL},
	{"put-always", PH_PUT_ALWAYS},
	{"get", PH_GET},
	{"keydir", PH_KEYDIR},
	{"open", PH_OPEN},
	{"open-10m", PH_OPEN_BIG},
	{"merge", PH_MERGE},
	{"all", PH_ALL},
};

enum { ENG_DYNKV = 1, ENG_ROCKSDB = 2 };
enum { SYNC_NONE = 0, SYNC_INTERVAL = 1, SYNC_ALWAYS = 2 };
static const char *const sync_names[] = {"none", "interval", "always"};

static struct options {
	const char *dir;
	uint64_t keys;
	uint32_t vsizes[MAX_LIST];
	int nvsizes;
	int syncs;                 /* bit (1 << SYNC_*) per put mode to run */
	int writers[MAX_LIST];
	int nwriters;
	uint64_t ops;              /* total puts per sync=always run */
	int engines;
	bool json;
	bool quick;
	bool check;
	int phases;
	uint64_t file_size;
	uint32_t interval_ms;
	double get_seconds;
	double always_seconds;     /* time limit per sync=always figure */
	int rounds;                /* sync=always figures: rounds, engines alternating */
	double max_seconds;        /* time limit of every other timed loop */
	uint64_t big_keys;         /* open-10m */
	uint32_t big_vsize;
	uint64_t disk_mib;
	uint64_t cache_mib;        /* RocksDB block cache */
} O;

static volatile sig_atomic_t g_stop;
static bool g_tty;
static bool g_progress_shown;   /* a progress line is on the terminal */

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

/* ---------------------------------------------------------------- utilities */

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double secs_since(uint64_t t0)
{
	return (double)(now_ns() - t0) / 1e9;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void progress_clear(void)
{
	if (g_tty && g_progress_shown) {
		fputs("\r\033[K", stderr);
		g_progress_shown = false;
	}
}

/* A progress line on stderr, only when it is a terminal. */
static void progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void progress(const char *fmt, ...)
{
	va_list ap;
	if (!g_tty)
		return;
	fputs("\r\033[K", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	g_progress_shown = true;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	progress_clear();
	fputs("bench_bitcask: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warnx_(const char *fmt, ...)
{
	va_list ap;
	progress_clear();
	fputs("bench_bitcask: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Table output goes to stdout unless --json. */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;
	if (O.json)
		return;
	progress_clear();
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* uniform in [0, n) (Lemire's multiply-shift; the bias is negligible here) */
static uint64_t rand_below(uint64_t *s, uint64_t n)
{
	__extension__ typedef unsigned __int128 u128;
	return (uint64_t)(((u128)splitmix64(s) * n) >> 64);
}

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
	__extension__ typedef unsigned __int128 u128;
	return (uint64_t)(((u128)a * b) % m);
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* A bijection of [0, n) that scatters consecutive i: i -> (a*i + b) mod n. */
typedef struct perm {
	uint64_t n, a, b;
} perm;

static perm perm_make(uint64_t n, uint64_t seed)
{
	perm p = {n, 1, 0};
	if (n < 2)
		return p;
	p.a = (uint64_t)((double)n * 0.6180339887) | 1;
	while (gcd(p.a, n) != 1)
		p.a++;
	p.b = seed % n;
	return p;
}

static uint64_t perm_at(const perm *p, uint64_t i)
{
	return (mulmod(p->a, i, p->n) + p->b) % p->n;
}

static void fmt_key(char *k, uint64_t i)
{
	k[0] = 'k';
	k[1] = 'e';
	k[2] = 'y';
	for (int p = KEY_LEN - 1; p >= 3; p--) {
		k[p] = (char)('0' + i % 10);
		i /= 10;
	}
}

/* Values: bytes from a random pool, then the key index (8 bytes) and the
 * generation (4 bytes) over the start, as far as the value is long. */
#define POOL_SIZE (1u << 20)
static unsigned char *g_pool;

static void pool_init(uint32_t max_vsize)
{
	uint64_t s = 42;
	size_t n = POOL_SIZE + max_vsize + 8;
	g_pool = xmalloc(n);
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t r = splitmix64(&s);
		memcpy(g_pool + i, &r, 8);
	}
}

static void make_value(unsigned char *v, uint32_t vsize, uint64_t idx, uint32_t gen)
{
	unsigned char hdr[12];
	memcpy(v, g_pool + (idx * 64) % POOL_SIZE, vsize);
	memcpy(hdr, &idx, 8);
	memcpy(hdr + 8, &gen, 4);
	memcpy(v, hdr, vsize < 12 ? vsize : 12);
}

/* 0 if v is the value of (idx, gen) in its first min(12, vsize) bytes. */
static int check_value(const unsigned char *v, size_t len, uint32_t vsize,
		       uint64_t idx, uint32_t gen)
{
	unsigned char hdr[12];
	if (len != vsize)
		return -1;
	memcpy(hdr, &idx, 8);
	memcpy(hdr + 8, &gen, 4);
	return memcmp(v, hdr, vsize < 12 ? vsize : 12) ? -1 : 0;
}

static uint64_t rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size = 0, res = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%lu %lu", &size, &res) != 2)
		res = 0;
	fclose(f);
	return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------ directories */

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		warnx_("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

static void rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

#define MARKER ".bench_bitcask"

/* Empty O.dir (refusing a directory that is not ours) and mark it ours. */
static void bench_dir_init(void)
{
	char path[4096];
	struct stat st;
	if (stat(O.dir, &st) == 0) {
		DIR *d = opendir(O.dir);
		struct dirent *de;
		bool empty = true;
		if (!d)
			die("cannot open %s: %s", O.dir, strerror(errno));
		while ((de = readdir(d)) != NULL)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				empty = false;
		closedir(d);
		snprintf(path, sizeof path, "%s/%s", O.dir, MARKER);
		if (!empty && access(path, F_OK) != 0)
			die("%s exists, is not empty and was not made by bench_bitcask; "
			    "refusing to delete it", O.dir);
		rm_rf(O.dir);
	}
	if (mkdir(O.dir, 0755) != 0)
		die("cannot create %s: %s", O.dir, strerror(errno));
	snprintf(path, sizeof path, "%s/%s", O.dir, MARKER);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("cannot create %s: %s", path, strerror(errno));
	close(fd);
}

static void sub_dir(char *buf, size_t len, const char *engine, const char *what,
		    uint32_t vsize)
{
	snprintf(buf, len, "%s/%s-%s-%" PRIu32, O.dir, engine, what, vsize);
	rm_rf(buf);
}

static uint64_t dir_bytes_matching(const char *dir, const char *suffix, bool unlink_them)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	uint64_t n = 0;
	size_t sl = strlen(suffix);
	char path[4096];
	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		struct stat st;
		if (l < sl || strcmp(de->d_name + l - sl, suffix) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		if (unlink_them) {
			if (unlink(path) == 0)
				n++;
		} else if (stat(path, &st) == 0) {
			n += (uint64_t)st.st_size;
		}
	}
	closedir(d);
	return n;
}

/* -------------------------------------------------------------- histogram */

#define H_SUB_BITS 4
#define H_SUB (1u << H_SUB_BITS)
#define H_BUCKETS (64 * H_SUB)

typedef struct hist {
	uint64_t n, max, sum;
	uint64_t b[H_BUCKETS];
} hist;

static unsigned h_index(uint64_t v)
{
	if (v < H_SUB)
		return (unsigned)v;
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	return (msb - H_SUB_BITS + 1) * H_SUB + (unsigned)((v >> (msb - H_SUB_BITS)) & (H_SUB - 1));
}

/* The middle of bucket i. */
static uint64_t h_value(unsigned i)
{
	if (i < H_SUB)
		return i;
	unsigned msb = i / H_SUB + H_SUB_BITS - 1;
	uint64_t sub = i % H_SUB;
	uint64_t width = 1ull << (msb - H_SUB_BITS);
	return ((H_SUB + sub) << (msb - H_SUB_BITS)) + width / 2;
}

static void h_add(hist *h, uint64_t v)
{
	h->b[h_index(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static void h_merge(hist *into, const hist *h)
{
	for (unsigned i = 0; i < H_BUCKETS; i++)
		into->b[i] += h->b[i];
	into->n += h->n;
	into->sum += h->sum;
	if (h->max > into->max)
		into->max = h->max;
}

static uint64_t h_quantile(const hist *h, double q)
{
	if (!h->n)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
	uint64_t seen = 0;
	if (rank < 1)
		rank = 1;
	for (unsigned i = 0; i < H_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= rank) {
			uint64_t v = h_value(i);
			return v > h->max ? h->max : v;
		}
	}
	return h->max;
}

/* ------------------------------------------------------------ JSON output */

typedef struct jbuf {
	char s[2048];
	size_t n;
} jbuf;

static void j_raw(jbuf *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void j_raw(jbuf *j, const char *fmt, ...)
{
	va_list ap;
	if (j->n >= sizeof j->s)
		return;
	va_start(ap, fmt);
	int r = vsnprintf(j->s + j->n, sizeof j->s - j->n, fmt, ap);
	va_end(ap);
	if (r > 0)
		j->n += (size_t)r;
	if (j->n > sizeof j->s)
		j->n = sizeof j->s;
}

static void j_begin(jbuf *j, const char *type)
{
	j->n = 0;
	j_raw(j, "{\"type\":\"%s\"", type);
}

static void j_str(jbuf *j, const char *k, const char *v)
{
	j_raw(j, ",\"%s\":\"", k);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			j_raw(j, "\\%c", *v);
		else if ((unsigned char)*v < 0x20)
			j_raw(j, "\\u%04x", (unsigned)*v);
		else
			j_raw(j, "%c", *v);
	}
	j_raw(j, "\"");
}

static void j_u64(jbuf *j, const char *k, uint64_t v)
{
	j_raw(j, ",\"%s\":%" PRIu64, k, v);
}

static void j_dbl(jbuf *j, const char *k, double v)
{
	j_raw(j, ",\"%s\":%.6g", k, v);
}

static void j_end(jbuf *j)
{
	j_raw(j, "}");
	if (O.json) {
		progress_clear();
		printf("%.*s\n", (int)j->n, j->s);
		fflush(stdout);
	}
}

/* --------------------------------------------------- results and verdicts */

typedef struct result {
	char key[64];
	double v;
} result;

static result g_res[512];
static int g_nres;

static void res_set(double v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void res_set(double v, const char *fmt, ...)
{
	va_list ap;
	char key[64];
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	for (int i = 0; i < g_nres; i++)
		if (!strcmp(g_res[i].key, key)) {
			g_res[i].v = v;
			return;
		}
	if (g_nres < (int)(sizeof g_res / sizeof g_res[0])) {
		snprintf(g_res[g_nres].key, sizeof g_res[g_nres].key, "%s", key);
		g_res[g_nres++].v = v;
	}
}

static bool res_get(double *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool res_get(double *v, const char *fmt, ...)
{
	va_list ap;
	char key[64];
	va_start(ap, fmt);
	vsnprintf(key, sizeof key, fmt, ap);
	va_end(ap);
	for (int i = 0; i < g_nres; i++)
		if (!strcmp(g_res[i].key, key)) {
			*v = g_res[i].v;
			return true;
		}
	return false;
}

/* ------------------------------------------------------------------ engines */

typedef struct engine engine;
typedef struct engine_ops {
	const char *name;
	int (*put)(engine *e, const char *k, size_t kl, const void *v, size_t vl);
	/* 0 with a malloc'd *v, 1 if not found, <0 on error */
	int (*get)(engine *e, const char *k, size_t kl, void **v, size_t *vl);
	void (*free_value)(void *v);
	int (*sync)(engine *e);
	void (*close)(engine *e);
	const char *(*errstr)(engine *e, int rc);
} engine_ops;

struct engine {
	const engine_ops *ops;
	char dir[4096];
	int sync;
	char errbuf[256];
	bitcask *bc;
#ifdef HAVE_ROCKSDB
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_writeoptions_t *wopts;
	rocksdb_readoptions_t *ropts;
	rocksdb_cache_t *cache;
	rocksdb_block_based_table_options_t *topts;
	rocksdb_filterpolicy_t *filter;
	pthread_t timer;
	bool timer_running;
	atomic_bool timer_stop;
	atomic_uint_fast64_t wal_syncs;
#endif
};

/* dynkv */

static void dk_log(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level <= 1)
		warnx_("dynkv %s: %s", level == 0 ? "error" : "warning", msg);
}

static void dk_config(bitcask_config *cfg, int sync)
{
	bitcask_config_init(cfg);
	cfg->max_file_size = O.file_size;
	cfg->sync = sync == SYNC_ALWAYS ? BITCASK_SYNC_ALWAYS
		  : sync == SYNC_INTERVAL ? BITCASK_SYNC_INTERVAL : BITCASK_SYNC_NONE;
	cfg->sync_interval_ms = O.interval_ms;
	cfg->merge_frag_threshold = 0;   /* no automatic merges while measuring */
	cfg->merge_dead_bytes = 0;
	cfg->log = dk_log;
}

static int dk_put(engine *e, const char *k, size_t kl, const void *v, size_t vl)
{
	return bitcask_put(e->bc, k, kl, v, vl);
}

static int dk_get(engine *e, const char *k, size_t kl, void **v, size_t *vl)
{
	int rc = bitcask_get(e->bc, k, kl, v, vl);
	return rc == DKV_ENOTFOUND ? 1 : rc;
}

static int dk_sync(engine *e)
{
	return bitcask_sync_now(e->bc);
}

static void dk_close(engine *e)
{
	int rc = bitcask_close(e->bc);
	if (rc)
		warnx_("bitcask_close(%s): %s", e->dir, dkv_strerror(rc));
	e->bc = NULL;
}

static const char *dk_errstr(engine *e, int rc)
{
	(void)e;
	return dkv_strerror(rc);
}

static const engine_ops dynkv_ops = {
	"dynkv", dk_put, dk_get, free, dk_sync, dk_close, dk_errstr,
};

static engine *dk_open(const char *dir, int sync)
{
	engine *e = calloc(1, sizeof *e);
	bitcask_config cfg;
	char err[512] = "";
	if (!e)
		die("out of memory");
	e->ops = &dynkv_ops;
	e->sync = sync;
	snprintf(e->dir, sizeof e->dir, "%s", dir);
	dk_config(&cfg, sync);
	int rc = bitcask_open(&e->bc, dir, &cfg, err, sizeof err);
	if (rc)
		die("bitcask_open(%s): %s: %s", dir, dkv_strerror(rc), err);
	return e;
}

/* RocksDB */

#ifdef HAVE_ROCKSDB
static int rk_put(engine *e, const char *k, size_t kl, const void *v, size_t vl)
{
	char *err = NULL;
	rocksdb_put(e->db, e->wopts, k, kl, v, vl, &err);
	if (err) {
		snprintf(e->errbuf, sizeof e->errbuf, "%s", err);
		rocksdb_free(err);
		return -1;
	}
	return 0;
}

static int rk_get(engine *e, const char *k, size_t kl, void **v, size_t *vl)
{
	char *err = NULL;
	char *val = rocksdb_get(e->db, e->ropts, k, kl, vl, &err);
	if (err) {
		snprintf(e->errbuf, sizeof e->errbuf, "%s", err);
		rocksdb_free(err);
		return -1;
	}
	if (!val)
		return 1;
	*v = val;
	return 0;
}

static void rk_free(void *v)
{
	rocksdb_free(v);
}

static int rk_sync(engine *e)
{
	char *err = NULL;
	rocksdb_flush_wal(e->db, 1, &err);
	if (err) {
		snprintf(e->errbuf, sizeof e->errbuf, "%s", err);
		rocksdb_free(err);
		return -1;
	}
	return 0;
}

static void *rk_timer(void *arg)
{
	engine *e = arg;
	while (!atomic_load(&e->timer_stop)) {
		struct timespec ts = {0, (long)O.interval_ms * 1000000L};
		nanosleep(&ts, NULL);
		if (atomic_load(&e->timer_stop))
			break;
		if (rk_sync(e) == 0)
			atomic_fetch_add(&e->wal_syncs, 1);
	}
	return NULL;
}

static void rk_close(engine *e)
{
	if (e->timer_running) {
		atomic_store(&e->timer_stop, true);
		pthread_join(e->timer, NULL);
	}
	rocksdb_close(e->db);
	rocksdb_writeoptions_destroy(e->wopts);
	rocksdb_readoptions_destroy(e->ropts);
	rocksdb_options_destroy(e->opts);
	rocksdb_block_based_options_destroy(e->topts);
	rocksdb_cache_destroy(e->cache);
	e->db = NULL;
}

static const char *rk_errstr(engine *e, int rc)
{
	(void)rc;
	return e->errbuf;
}

static const engine_ops rocksdb_ops = {
	"rocksdb", rk_put, rk_get, rk_free, rk_sync, rk_close, rk_errstr,
};

static engine *rk_open(const char *dir, int sync)
{
	engine *e = calloc(1, sizeof *e);
	char *err = NULL;
	if (!e)
		die("out of memory");
	e->ops = &rocksdb_ops;
	e->sync = sync;
	snprintf(e->dir, sizeof e->dir, "%s", dir);
	e->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(e->opts, 1);
	rocksdb_options_increase_parallelism(e->opts, 2);
	rocksdb_options_set_max_background_jobs(e->opts, 2);
	rocksdb_options_set_compression(e->opts, rocksdb_no_compression);
	rocksdb_options_set_info_log_level(e->opts, 2 /* WARN */);
	rocksdb_options_set_keep_log_file_num(e->opts, 2);
	e->cache = rocksdb_cache_create_lru((size_t)O.cache_mib << 20);
	e->topts = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(e->topts, e->cache);
	e->filter = rocksdb_filterpolicy_create_bloom(10);
	rocksdb_block_based_options_set_filter_policy(e->topts, e->filter);
	rocksdb_options_set_block_based_table_factory(e->opts, e->topts);
	e->wopts = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(e->wopts, sync == SYNC_ALWAYS);
	rocksdb_writeoptions_disable_WAL(e->wopts, 0);
	e->ropts = rocksdb_readoptions_create();
	e->db = rocksdb_open(e->opts, dir, &err);
	if (err)
		die("rocksdb_open(%s): %s", dir, err);
	if (sync == SYNC_INTERVAL) {
		atomic_init(&e->timer_stop, false);
		if (pthread_create(&e->timer, NULL, rk_timer, e) != 0)
			die("pthread_create failed");
		e->timer_running = true;
	}
	return e;
}

/* Flush the memtable and wait (bounded) until no flush or compaction is
 * pending or running: the state a read-mostly store settles into. */
static double rk_settle(engine *e)
{
	uint64_t t0 = now_ns();
	char *err = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush(e->db, fo, &err);
	rocksdb_flushoptions_destroy(fo);
	if (err) {
		warnx_("rocksdb_flush: %s", err);
		rocksdb_free(err);
	}
	while (!g_stop && secs_since(t0) < O.max_seconds) {
		uint64_t pend = 0, comp = 0, fl = 0;
		rocksdb_property_int(e->db, "rocksdb.compaction-pending", &pend);
		rocksdb_property_int(e->db, "rocksdb.num-running-compactions", &comp);
		rocksdb_property_int(e->db, "rocksdb.num-running-flushes", &fl);
		if (!pend && !comp && !fl)
			break;
		usleep(50000);
	}
	return secs_since(t0);
}
#endif

static engine *engine_open(int which, const char *dir, int sync)
{
#ifdef HAVE_ROCKSDB
	if (which == ENG_ROCKSDB)
		return rk_open(dir, sync);
#endif
	(void)which;
	return dk_open(dir, sync);
}

static void engine_close(engine *e)
{
	e->ops->close(e);
	free(e);
}

static const char *engine_name(int which)
{
	return which == ENG_ROCKSDB ? "rocksdb" : "dynkv";
}

/* --------------------------------------------------------------- workers */

enum { J_PUT, J_GET, J_SCAN };

typedef struct job {
	engine *e;
	int kind;
	/* J_PUT: indices base + order(i) for i < count; order = perm if perm.n */
	uint64_t base, count;
	perm order;
	uint32_t vsize;
	uint32_t gen;
	/* J_GET: uniform over [0, nkeys); gen_even: generation of even keys */
	uint64_t nkeys;
	uint32_t gen_even;
	uint64_t seed;
	uint64_t deadline_ns;     /* stop at this time (J_GET: the planned end) */
	pthread_barrier_t *start;
	pthread_t thread;
	hist *h;
	atomic_uint_fast64_t done;
	atomic_bool finished;
	uint64_t t_end;
	uint64_t errors, misses, bad;
	int first_rc;
	bool timed_out;
} job;

static void job_error(job *j, int rc, const char *what)
{
	if (!j->errors++) {
		j->first_rc = rc;
		warnx_("%s %s: %s", j->e->ops->name, what, j->e->ops->errstr(j->e, rc));
	}
}

static void *job_main(void *arg)
{
	job *j = arg;
	char key[KEY_LEN + 1];
	unsigned char *val = xmalloc(j->vsize + 16);
	uint64_t seed = j->seed;
	uint64_t i;

	pthread_barrier_wait(j->start);
	if (j->kind == J_PUT) {
		for (i = 0; i < j->count && !g_stop; i++) {
			uint64_t idx = j->base + (j->order.n ? perm_at(&j->order, i) : i);
			fmt_key(key, idx);
			make_value(val, j->vsize, idx, j->gen);
			uint64_t t0 = now_ns();
			int rc = j->e->ops->put(j->e, key, KEY_LEN, val, j->vsize);
			uint64_t t1 = now_ns();
			h_add(j->h, t1 - t0);
			if (rc) {
				job_error(j, rc, "put");
				break;
			}
			atomic_store_explicit(&j->done, i + 1, memory_order_relaxed);
			if (t1 > j->deadline_ns) {
				j->timed_out = i + 1 < j->count;
				break;
			}
		}
	} else {
		for (i = 0; !g_stop; i++) {
			uint64_t idx = rand_below(&seed, j->nkeys);
			void *v = NULL;
			size_t vl = 0;
			fmt_key(key, idx);
			uint64_t t0 = now_ns();
			int rc = j->e->ops->get(j->e, key, KEY_LEN, &v, &vl);
			uint64_t t1 = now_ns();
			h_add(j->h, t1 - t0);
			if (rc == 1) {
				if (!j->misses++)
					warnx_("%s get: key %" PRIu64 " not found", j->e->ops->name, idx);
			} else if (rc) {
				job_error(j, rc, "get");
				if (j->errors > 100)
					break;
			} else {
				uint32_t gen = (idx % 2 == 0) ? j->gen_even : j->gen;
				if (check_value(v, vl, j->vsize, idx, gen) && !j->bad++)
					warnx_("%s get: key %" PRIu64 " returned a wrong value "
					       "(%zu bytes)", j->e->ops->name, idx, vl);
				j->e->ops->free_value(v);
			}
			atomic_store_explicit(&j->done, i + 1, memory_order_relaxed);
			if (t1 >= j->deadline_ns)
				break;
		}
	}
	j->t_end = now_ns();
	atomic_store(&j->finished, true);
	free(val);
	return NULL;
}

typedef struct run_result {
	uint64_t ops;
	double secs;
	hist h;
	uint64_t errors, misses, bad;
	bool timed_out;
} run_result;

/* Start the jobs together, show progress, wait, merge their figures. */
static void run_jobs(job *jobs, int n, const char *label, uint64_t expect,
		     run_result *rr)
{
	pthread_barrier_t bar;
	uint64_t t0, last_print = 0;

	memset(rr, 0, sizeof *rr);
	pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		jobs[i].start = &bar;
		jobs[i].h = calloc(1, sizeof(hist));
		if (!jobs[i].h)
			die("out of memory");
		atomic_init(&jobs[i].done, 0);
		atomic_init(&jobs[i].finished, false);
		if (pthread_create(&jobs[i].thread, NULL, job_main, &jobs[i]) != 0)
			die("pthread_create failed");
	}
	pthread_barrier_wait(&bar);
	t0 = now_ns();
	for (;;) {
		int fin = 0;
		uint64_t done = 0;
		for (int i = 0; i < n; i++) {
			fin += atomic_load(&jobs[i].finished);
			done += atomic_load_explicit(&jobs[i].done, memory_order_relaxed);
		}
		if (fin == n)
			break;
		uint64_t t = now_ns();
		if (g_tty && t - t0 > 100000000u && t - last_print > 200000000u) {
			double s = (double)(t - t0) / 1e9;
			if (expect)
				progress("  %s: %" PRIu64 "/%" PRIu64 " ops, %.1fs, %.0f ops/s",
					 label, done, expect, s, (double)done / s);
			else
				progress("  %s: %" PRIu64 " ops, %.1fs, %.0f ops/s",
					 label, done, s, (double)done / s);
			last_print = t;
		}
		usleep(20000);
	}
	uint64_t tend = t0;
	for (int i = 0; i < n; i++) {
		pthread_join(jobs[i].thread, NULL);
		rr->ops += atomic_load(&jobs[i].done);
		h_merge(&rr->h, jobs[i].h);
		rr->errors += jobs[i].errors;
		rr->misses += jobs[i].misses;
		rr->bad += jobs[i].bad;
		rr->timed_out |= jobs[i].timed_out;
		if (jobs[i].t_end > tend)
			tend = jobs[i].t_end;
		free(jobs[i].h);
	}
	pthread_barrier_destroy(&bar);
	rr->secs = (double)(tend - t0) / 1e9;
	progress_clear();
}

/* -------------------------------------------------------------- reporting */

static void print_tput_header(const char *title)
{
	out("\n%s\n", title);
	out("  %-8s %4s %9s %8s %10s %8s %8s %8s %8s %9s  %s\n", "engine", "thr",
	    "ops", "secs", "ops/s", "MB/s", "p50 us", "p99 us", "p99.9 us",
	    "max us", "notes");
}

static void report_tput(const char *phase, const char *ename, const char *sync,
			uint32_t vsize, int threads, const run_result *rr,
			const char *note)
{
	double ops_s = rr->secs > 0 ? (double)rr->ops / rr->secs : 0;
	double mb_s = ops_s * (KEY_LEN + vsize) / 1e6;
	double p50 = (double)h_quantile(&rr->h, 0.50) / 1e3;
	double p99 = (double)h_quantile(&rr->h, 0.99) / 1e3;
	double p999 = (double)h_quantile(&rr->h, 0.999) / 1e3;
	double mx = (double)rr->h.max / 1e3;
	char notes[512];

	snprintf(notes, sizeof notes, "%s%s%s", note ? note : "",
		 rr->timed_out ? " [stopped at time limit]" : "",
		 rr->errors || rr->misses || rr->bad ? " [ERRORS]" : "");
	out("  %-8s %4d %9" PRIu64 " %8.3f %10.0f %8.1f %8.2f %8.2f %8.2f %9.1f  %s\n",
	    ename, threads, rr->ops, rr->secs, ops_s, mb_s, p50, p99, p999, mx, notes);
	if (rr->errors || rr->misses || rr->bad)
		out("  %-8s      errors %" PRIu64 ", missing keys %" PRIu64
		    ", wrong values %" PRIu64 "\n", "", rr->errors, rr->misses, rr->bad);

	jbuf j;
	j_begin(&j, "measurement");
	j_str(&j, "phase", phase);
	j_str(&j, "engine", ename);
	if (sync)
		j_str(&j, "sync", sync);
	j_u64(&j, "value_size", vsize);
	j_u64(&j, "key_size", KEY_LEN);
	j_u64(&j, "threads", (uint64_t)threads);
	j_u64(&j, "ops", rr->ops);
	j_dbl(&j, "seconds", rr->secs);
	j_dbl(&j, "ops_per_sec", ops_s);
	j_dbl(&j, "mb_per_sec", mb_s);
	j_dbl(&j, "p50_us", p50);
	j_dbl(&j, "p99_us", p99);
	j_dbl(&j, "p999_us", p999);
	j_dbl(&j, "max_us", mx);
	j_dbl(&j, "mean_us", rr->h.n ? (double)rr->h.sum / (double)rr->h.n / 1e3 : 0);
	j_u64(&j, "errors", rr->errors);
	j_u64(&j, "missing", rr->misses);
	j_u64(&j, "wrong_values", rr->bad);
	j_u64(&j, "stopped_at_time_limit", rr->timed_out);
	if (note && *note)
		j_str(&j, "note", note);
	j_end(&j);
}

/* ----------------------------------------------------------------- phases */

static uint64_t deadline_after(double s)
{
	return now_ns() + (uint64_t)(s * 1e9);
}

/* Load n keys (random order) into e from one thread. */
static void load(engine *e, uint64_t n, uint32_t vsize, uint32_t gen,
		 const char *label, run_result *rr)
{
	job j;
	memset(&j, 0, sizeof j);
	j.e = e;
	j.kind = J_PUT;
	j.base = 0;
	j.count = n;
	j.order = perm_make(n, 12345);
	j.vsize = vsize;
	j.gen = gen;
	j.deadline_ns = deadline_after(O.max_seconds);
	run_jobs(&j, 1, label, n, rr);
}

/* Overwrite every even key with generation 1 (in a random order). */
static void overwrite_even(engine *e, uint64_t n, uint32_t vsize, const char *label,
			   run_result *rr)
{
	job j;
	memset(&j, 0, sizeof j);
	j.e = e;
	j.kind = J_PUT;
	j.count = (n + 1) / 2;
	j.order = perm_make(j.count, 777);
	j.vsize = vsize;
	j.gen = 1;
	j.deadline_ns = deadline_after(O.max_seconds);
	/* index = 2 * perm(i): done through a custom loop to keep job_main simple */
	char key[KEY_LEN];
	unsigned char *val = xmalloc(vsize + 16);
	uint64_t t0 = now_ns(), i;
	memset(rr, 0, sizeof *rr);
	for (i = 0; i < j.count && !g_stop; i++) {
		uint64_t idx = 2 * perm_at(&j.order, i);
		fmt_key(key, idx);
		make_value(val, vsize, idx, 1);
		uint64_t a = now_ns();
		int rc = e->ops->put(e, key, KEY_LEN, val, vsize);
		uint64_t b = now_ns();
		h_add(&rr->h, b - a);
		if (rc) {
			warnx_("%s put: %s", e->ops->name, e->ops->errstr(e, rc));
			rr->errors++;
			break;
		}
		if ((i & 0xffff) == 0)
			progress("  %s: %" PRIu64 "/%" PRIu64, label, i, j.count);
		if (b > j.deadline_ns) {
			rr->timed_out = true;
			i++;
			break;
		}
	}
	rr->ops = i;
	rr->secs = secs_since(t0);
	free(val);
	progress_clear();
}

/* Read every key once (warms RocksDB's block cache, and the page cache); also
 * checks that the iteration sees exactly the loaded keys.  Returns the count. */
static uint64_t warm_scan(engine *e, int which, double *secs)
{
	uint64_t t0 = now_ns(), n = 0;
#ifdef HAVE_ROCKSDB
	if (which == ENG_ROCKSDB) {
		rocksdb_iterator_t *it = rocksdb_create_iterator(e->db, e->ropts);
		for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && !g_stop;
		     rocksdb_iter_next(it)) {
			size_t vl;
			(void)rocksdb_iter_value(it, &vl);
			n++;
		}
		rocksdb_iter_destroy(it);
		*secs = secs_since(t0);
		return n;
	}
#endif
	(void)which;
	bitcask_iter *it;
	const uint8_t *k, *v;
	size_t kl, vl;
	int rc = bitcask_iter_open(e->bc, true, &it);
	if (rc) {
		warnx_("bitcask_iter_open: %s", dkv_strerror(rc));
		*secs = secs_since(t0);
		return 0;
	}
	while (!g_stop && (rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0)
		n++;
	if (rc && rc != DKV_ENOTFOUND)
		warnx_("bitcask_iter_next: %s", dkv_strerror(rc));
	bitcask_iter_close(it);
	*secs = secs_since(t0);
	return n;
}

static void run_gets(engine *e, int which, uint64_t nkeys, uint32_t vsize,
		     uint32_t gen_even, int threads)
{
	job jobs[MAX_LIST];
	run_result rr;
	char label[64];

	memset(jobs, 0, sizeof jobs);
	for (int i = 0; i < threads; i++) {
		jobs[i].e = e;
		jobs[i].kind = J_GET;
		jobs[i].nkeys = nkeys;
		jobs[i].vsize = vsize;
		jobs[i].gen = 0;
		jobs[i].gen_even = gen_even;
		jobs[i].seed = 1000 + (uint64_t)i * 7919;
		jobs[i].deadline_ns = deadline_after(O.get_seconds);
	}
	snprintf(label, sizeof label, "get %s %uB %d thr", engine_name(which), vsize, threads);
	run_jobs(jobs, threads, label, 0, &rr);
	report_tput("get", engine_name(which), NULL, vsize, threads, &rr, NULL);
	res_set(rr.secs > 0 ? (double)rr.ops / rr.secs : 0, "get/%s/%u/%d",
		engine_name(which), vsize, threads);
}

/* Wait (bounded) until every immutable file has its hint file. */
static void dk_wait_hints(bitcask *bc)
{
	uint64_t t0 = now_ns();
	size_t cap = 4096;
	bitcask_file_stats *fs = xmalloc(cap * sizeof *fs);
	while (!g_stop && secs_since(t0) < 60) {
		bitcask_stats st;
		size_t n = cap;
		bool all = true;
		bitcask_stats_get(bc, &st, fs, &n);
		for (size_t i = 0; i < n && i < cap; i++)
			if (!fs[i].active && !fs[i].has_hint && fs[i].total_bytes > 16)
				all = false;
		if (all)
			break;
		usleep(20000);
	}
	free(fs);
}

static void dk_check(engine *e, const char *when)
{
	char err[512];
	if (!O.check)
		return;
	if (bitcask_check(e->bc, err, sizeof err) != 0) {
		warnx_("bitcask_check after %s FAILED: %s", when, err);
		jbuf j;
		j_begin(&j, "check_failed");
		j_str(&j, "when", when);
		j_str(&j, "error", err);
		j_end(&j);
	}
}

/* Time one open of a closed store; returns the seconds and fills *st. */
static double dk_time_open(const char *dir, bitcask_stats *st)
{
	bitcask_config cfg;
	bitcask *bc;
	char err[512] = "";
	dk_config(&cfg, SYNC_NONE);
	uint64_t t0 = now_ns();
	int rc = bitcask_open(&bc, dir, &cfg, err, sizeof err);
	double s = secs_since(t0);
	if (rc)
		die("bitcask_open(%s): %s: %s", dir, dkv_strerror(rc), err);
	bitcask_stats_get(bc, st, NULL, NULL);
	rc = bitcask_close(bc);
	if (rc)
		warnx_("bitcask_close: %s", dkv_strerror(rc));
	return s;
}

/* The store in e is loaded with nkeys: rotate, wait for hints, close it, then
 * time opening it with and without hint files.  Closes e. */
static void open_phase(engine *e, uint64_t nkeys, uint32_t vsize, const char *label)
{
	char dir[4096];
	bitcask_stats st;
	int rc;

	snprintf(dir, sizeof dir, "%s", e->dir);
	rc = bitcask_rotate(e->bc);
	if (rc)
		warnx_("bitcask_rotate: %s", dkv_strerror(rc));
	dk_wait_hints(e->bc);
	engine_close(e);

	out("\nOPEN %s (recovery of the key directory; warm page cache)\n", label);
	out("  %-6s %9s %6s %10s %6s %9s %10s %10s %10s  %s\n", "engine", "keys", "value",
	    "data MB", "hints", "secs", "keys/s", "hint_loads", "data_scans", "notes");
	uint64_t data = dir_bytes_matching(dir, ".data", false);
	uint64_t hints = dir_bytes_matching(dir, ".hint", false);
	for (int pass = 0; pass < 2 && !g_stop; pass++) {
		if (pass == 1) {
			uint64_t removed = dir_bytes_matching(dir, ".hint", true);
			if (!removed)
				warnx_("no *.hint files found in %s", dir);
		}
		double s = dk_time_open(dir, &st);
		double kps = s > 0 ? (double)st.keys / s : 0;
		char note[160] = "";
		if (st.keys != nkeys)
			snprintf(note, sizeof note, "[ERROR: %" PRIu64 " keys recovered, %" PRIu64 " expected]",
				 st.keys, nkeys);
		else if (pass == 0)
			snprintf(note, sizeof note, "%s; hint files %.1f MB", label,
				 (double)hints / 1e6);
		else
			snprintf(note, sizeof note, "%s", label);
		out("  %-6s %9" PRIu64 " %6u %10.1f %6s %9.3f %10.0f %10" PRIu64 " %10" PRIu64 "  %s\n",
		    "dynkv", st.keys, vsize, (double)data / 1e6, pass ? "no" : "yes", s, kps,
		    st.hint_loads, st.data_scans, note);
		jbuf j;
		j_begin(&j, "measurement");
		j_str(&j, "phase", "open");
		j_str(&j, "engine", "dynkv");
		j_u64(&j, "keys", st.keys);
		j_u64(&j, "expected_keys", nkeys);
		j_u64(&j, "value_size", vsize);
		j_u64(&j, "key_size", KEY_LEN);
		j_u64(&j, "data_bytes", data);
		j_u64(&j, "hint_bytes", pass ? 0 : hints);
		j_str(&j, "hints", pass ? "no" : "yes");
		j_dbl(&j, "seconds", s);
		j_dbl(&j, "keys_per_sec", kps);
		j_u64(&j, "hint_loads", st.hint_loads);
		j_u64(&j, "data_scans", st.data_scans);
		j_str(&j, "note", label);
		j_end(&j);
		res_set(kps, "open/%s/%" PRIu64, pass ? "nohint" : "hint", nkeys);
	}
}

static void report_keydir(engine *e, uint64_t nkeys, uint32_t vsize, uint64_t rss_delta)
{
	bitcask_stats st;
	bitcask_stats_get(e->bc, &st, NULL, NULL);
	double bpk = st.keys ? (double)st.keydir_bytes / (double)st.keys : 0;
	double rpk = st.keys ? (double)rss_delta / (double)st.keys : 0;
	out("\nKEY DIRECTORY, value %u B, key %d B\n", vsize, KEY_LEN);
	out("  %-6s %10s %14s %10s %8s %14s %12s %8s\n", "engine", "keys", "keydir bytes",
	    "bytes/key", "key", "bytes/key-key", "RSS/key", "files");
	out("  %-6s %10" PRIu64 " %14" PRIu64 " %10.1f %8d %14.1f %12.1f %8" PRIu64 "\n", "dynkv",
	    st.keys, st.keydir_bytes, bpk, KEY_LEN, bpk - KEY_LEN, rpk, st.files);
	if (st.keys != nkeys)
		out("  [ERROR: the store has %" PRIu64 " keys, %" PRIu64 " were loaded]\n", st.keys, nkeys);
	jbuf j;
	j_begin(&j, "measurement");
	j_str(&j, "phase", "keydir");
	j_str(&j, "engine", "dynkv");
	j_u64(&j, "value_size", vsize);
	j_u64(&j, "key_size", KEY_LEN);
	j_u64(&j, "keys", st.keys);
	j_u64(&j, "keydir_bytes", st.keydir_bytes);
	j_dbl(&j, "bytes_per_key", bpk);
	j_dbl(&j, "bytes_per_key_beyond_key", bpk - KEY_LEN);
	j_dbl(&j, "rss_growth_per_key", rpk);
	j_u64(&j, "files", st.files);
	j_end(&j);
	res_set(bpk, "keydir/%u", vsize);
}

static void merge_phase(engine *e, uint64_t nkeys, uint32_t vsize)
{
	bitcask_stats before, after;
	run_result rr;
	char label[64];
	int rc;

	snprintf(label, sizeof label, "merge %uB: overwrite half", vsize);
	rc = bitcask_rotate(e->bc);
	if (rc)
		warnx_("bitcask_rotate: %s", dkv_strerror(rc));
	overwrite_even(e, nkeys, vsize, label, &rr);
	rc = bitcask_rotate(e->bc);
	if (rc)
		warnx_("bitcask_rotate: %s", dkv_strerror(rc));
	bitcask_stats_get(e->bc, &before, NULL, NULL);
	progress("  merge %uB: merging %.0f MB...", vsize,
		 (double)before.total_bytes / 1e6);
	uint64_t t0 = now_ns();
	rc = bitcask_merge(e->bc);
	double wall = secs_since(t0);
	progress_clear();
	if (rc)
		warnx_("bitcask_merge: %s", dkv_strerror(rc));
	bitcask_stats_get(e->bc, &after, NULL, NULL);
	double in_mbs = after.merge_seconds > 0 ? (double)after.merge_bytes_in / after.merge_seconds / 1e6 : 0;
	double out_mbs = after.merge_seconds > 0 ? (double)after.merge_bytes_out / after.merge_seconds / 1e6 : 0;
	out("\nMERGE, value %u B (half of %" PRIu64 " keys overwritten, then rotate + bitcask_merge)\n",
	    vsize, nkeys);
	out("  %-6s %8s %10s %10s %9s %9s %10s %10s %12s %12s\n", "engine", "frag", "in MB",
	    "out MB", "secs", "wall s", "in MB/s", "out MB/s", "files b/a", "disk MB b/a");
	out("  %-6s %7.1f%% %10.1f %10.1f %9.3f %9.3f %10.1f %10.1f %5" PRIu64 "/%-6" PRIu64
	    " %6.0f/%-6.0f\n", "dynkv", before.fragmentation * 100,
	    (double)after.merge_bytes_in / 1e6, (double)after.merge_bytes_out / 1e6,
	    after.merge_seconds, wall, in_mbs, out_mbs, before.files, after.files,
	    (double)before.total_bytes / 1e6, (double)after.total_bytes / 1e6);
	if (rc)
		out("  [ERROR: bitcask_merge returned %s]\n", dkv_strerror(rc));
	if (after.merges == before.merges)
		out("  [WARNING: the merge counter did not move: no merge ran?]\n");
	jbuf j;
	j_begin(&j, "measurement");
	j_str(&j, "phase", "merge");
	j_str(&j, "engine", "dynkv");
	j_u64(&j, "value_size", vsize);
	j_u64(&j, "keys", nkeys);
	j_dbl(&j, "fragmentation_before", before.fragmentation);
	j_u64(&j, "bytes_in", after.merge_bytes_in);
	j_u64(&j, "bytes_out", after.merge_bytes_out);
	j_dbl(&j, "merge_seconds", after.merge_seconds);
	j_dbl(&j, "wall_seconds", wall);
	j_dbl(&j, "in_mb_per_sec", in_mbs);
	j_dbl(&j, "out_mb_per_sec", out_mbs);
	j_u64(&j, "files_before", before.files);
	j_u64(&j, "files_after", after.files);
	j_u64(&j, "total_bytes_before", before.total_bytes);
	j_u64(&j, "total_bytes_after", after.total_bytes);
	j_str(&j, "result", rc ? dkv_strerror(rc) : "ok");
	j_end(&j);
	res_set(in_mbs, "merge_in/%u", vsize);
	res_set(out_mbs, "merge_out/%u", vsize);
	dk_check(e, "merge");

	/* Every key must now read its newest generation. */
	job jb[1];
	memset(jb, 0, sizeof jb);
	jb[0].e = e;
	jb[0].kind = J_GET;
	jb[0].nkeys = nkeys;
	jb[0].vsize = vsize;
	jb[0].gen = 0;
	jb[0].gen_even = rr.ops == (nkeys + 1) / 2 ? 1 : 0;
	jb[0].seed = 99;
	jb[0].deadline_ns = deadline_after(O.quick ? 0.3 : 1.0);
	run_result vr;
	run_jobs(jb, 1, "merge: verifying", 0, &vr);
	if (rr.ops == (nkeys + 1) / 2) {
		out("  verified %" PRIu64 " random gets after the merge: %" PRIu64 " missing, %" PRIu64
		    " wrong values, %" PRIu64 " errors\n", vr.ops, vr.misses, vr.bad, vr.errors);
	}
}


/* ------------------------------------------------------- per value size */

static uint64_t heap_bytes(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
	struct mallinfo2 mi = mallinfo2();
	return (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
#else
	return 0;
#endif
}

static int g_engines[2];
static int g_nengines;

static bool want_put(int sync)
{
	static const int ph[] = {PH_PUT_NONE, PH_PUT_INTERVAL, PH_PUT_ALWAYS};
	return (O.phases & ph[sync]) && (O.syncs & (1 << sync));
}

/* The key count and value size of the "open" phase (1M x 100 B by default). */
static uint32_t open_vsize(void)
{
	for (int i = 0; i < O.nvsizes; i++)
		if (O.vsizes[i] == 100)
			return 100;
	return O.vsizes[0];
}

static void fmt_count(char *buf, size_t len, uint64_t n)
{
	if (n >= 1000000 && n % 1000000 == 0)
		snprintf(buf, len, "%" PRIu64 "M", n / 1000000);
	else if (n >= 1000 && n % 1000 == 0)
		snprintf(buf, len, "%" PRIu64 "k", n / 1000);
	else
		snprintf(buf, len, "%" PRIu64, n);
}

/* Load one engine with O.keys keys, sync=none; report the put-none row. */
static engine *load_engine(int which, uint32_t vsize, uint64_t *loaded, uint64_t *heap_delta,
			   uint64_t *rss_delta)
{
	char dir[4096], label[96], note[256];
	run_result rr;
	uint64_t heap0 = heap_bytes(), rss0 = rss_bytes();

	sub_dir(dir, sizeof dir, engine_name(which), "load", vsize);
	engine *e = engine_open(which, dir, SYNC_NONE);
	snprintf(label, sizeof label, "put %s %uB sync=none", engine_name(which), vsize);
	load(e, O.keys, vsize, 0, label, &rr);
	*loaded = rr.ops;
	uint64_t t0 = now_ns();
	int rc = e->ops->sync(e);
	double sync_s = secs_since(t0);
	if (rc)
		warnx_("%s sync: %s", engine_name(which), e->ops->errstr(e, rc));
	*heap_delta = heap_bytes() - heap0;
	*rss_delta = rss_bytes() - rss0;
	double payload = (double)rr.ops * (KEY_LEN + vsize);
	double with_sync = payload / (rr.secs + sync_s) / 1e6;
	if (which == ENG_DYNKV) {
		bitcask_stats st;
		bitcask_stats_get(e->bc, &st, NULL, NULL);
		snprintf(note, sizeof note, "log %.0f MB/s; +final fdatasync %.2fs -> %.0f MB/s",
			 (double)st.total_bytes / rr.secs / 1e6, sync_s, with_sync);
	} else {
		snprintf(note, sizeof note, "+final WAL sync %.2fs -> %.0f MB/s", sync_s, with_sync);
	}
	if (want_put(SYNC_NONE)) {
		report_tput("put", engine_name(which), "none", vsize, 1, &rr, note);
		res_set(rr.secs > 0 ? (double)rr.ops / rr.secs : 0, "put/%s/none/%u/1",
			engine_name(which), vsize);
		res_set(rr.secs > 0 ? payload / rr.secs / 1e6 : 0, "putmb/%s/none/%u",
			engine_name(which), vsize);
		res_set(with_sync, "putmbsync/%s/none/%u", engine_name(which), vsize);
	}
	if (which == ENG_DYNKV)
		dk_check(e, "load");
	return e;
}

static void loaded_phases(uint32_t vsize)
{
	engine *le[3] = {NULL, NULL, NULL};
	uint64_t loaded[3] = {0, 0, 0}, heap_d = 0, rss_d = 0, h, r;
	int need = PH_PUT_NONE | PH_GET | PH_KEYDIR | PH_OPEN | PH_MERGE;
	char title[256];

	if (!(O.phases & need))
		return;
	if (!want_put(SYNC_NONE) && !(O.phases & (need & ~PH_PUT_NONE)))
		return;
	snprintf(title, sizeof title, "PUT sync=none, value %u B, key %d B, %" PRIu64
		 " keys in random order, 1 writer", vsize, KEY_LEN, O.keys);
	if (want_put(SYNC_NONE))
		print_tput_header(title);
	for (int i = 0; i < g_nengines && !g_stop; i++) {
		int w = g_engines[i];
		if (w == ENG_ROCKSDB && !(O.phases & (PH_PUT_NONE | PH_GET)))
			continue;
		le[w] = load_engine(w, vsize, &loaded[w], &h, &r);
		if (w == ENG_DYNKV) {
			heap_d = h;
			rss_d = r;
		}
	}
#ifdef HAVE_ROCKSDB
	if (le[ENG_ROCKSDB] && (O.phases & PH_GET) && !g_stop) {
		progress("  rocksdb: flushing, waiting for compactions...");
		double s = rk_settle(le[ENG_ROCKSDB]);
		progress_clear();
		out("  (rocksdb: memtable flush + wait for compactions after the load took %.1fs; "
		    "not in the put figures)\n", s);
	}
#endif
	if (le[ENG_DYNKV] && (O.phases & PH_KEYDIR) && !g_stop) {
		report_keydir(le[ENG_DYNKV], loaded[ENG_DYNKV], vsize, rss_d);
		double hpk = loaded[ENG_DYNKV] ? (double)heap_d / (double)loaded[ENG_DYNKV] : 0;
		out("  (heap growth during the load, from mallinfo2: %.1f bytes/key)\n", hpk);
		jbuf j;
		j_begin(&j, "measurement");
		j_str(&j, "phase", "keydir_heap");
		j_str(&j, "engine", "dynkv");
		j_u64(&j, "value_size", vsize);
		j_dbl(&j, "heap_growth_per_key", hpk);
		j_end(&j);
	}
	if ((O.phases & PH_GET) && !g_stop) {
		snprintf(title, sizeof title, "GET warm, uniform random over %" PRIu64
			 " loaded keys, value %u B, %.1fs per run", loaded[g_engines[0]], vsize,
			 O.get_seconds);
		print_tput_header(title);
		for (int i = 0; i < g_nengines; i++) {
			int w = g_engines[i];
			double s;
			if (!le[w])
				continue;
			progress("  %s: warm-up scan...", engine_name(w));
			uint64_t n = warm_scan(le[w], w, &s);
			progress_clear();
			if (n != loaded[w])
				out("  [ERROR: %s iteration visited %" PRIu64 " keys, %" PRIu64
				    " were loaded]\n", engine_name(w), n, loaded[w]);
			jbuf j;
			j_begin(&j, "warmup_scan");
			j_str(&j, "engine", engine_name(w));
			j_u64(&j, "value_size", vsize);
			j_u64(&j, "keys", n);
			j_u64(&j, "expected_keys", loaded[w]);
			j_dbl(&j, "seconds", s);
			j_end(&j);
		}
		/* a short unmeasured run of random gets first, for each engine */
		for (int i = 0; i < g_nengines && !g_stop; i++) {
			int w = g_engines[i];
			job jw;
			run_result wr;
			if (!le[w] || !loaded[w])
				continue;
			memset(&jw, 0, sizeof jw);
			jw.e = le[w];
			jw.kind = J_GET;
			jw.nkeys = loaded[w];
			jw.vsize = vsize;
			jw.seed = 5;
			jw.deadline_ns = deadline_after(O.get_seconds / 4);
			run_jobs(&jw, 1, "warm-up gets", 0, &wr);
		}
		static const int thr[] = {1, 2};
		for (int t = 0; t < 2 && !g_stop; t++)
			for (int i = 0; i < g_nengines && !g_stop; i++) {
				int w = g_engines[i];
				if (le[w] && loaded[w])
					run_gets(le[w], w, loaded[w], vsize, 0, thr[t]);
			}
	}
	if (le[ENG_ROCKSDB]) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", le[ENG_ROCKSDB]->dir);
		engine_close(le[ENG_ROCKSDB]);
		rm_rf(dir);
	}
	engine *e = le[ENG_DYNKV];
	if (!e)
		return;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", e->dir);
	if ((O.phases & PH_OPEN) && vsize == open_vsize() && !g_stop) {
		char label[96], n[32];
		fmt_count(n, sizeof n, loaded[ENG_DYNKV]);
		snprintf(label, sizeof label, "%s keys x %u B values", n, vsize);
		open_phase(e, loaded[ENG_DYNKV], vsize, label);
		e = (O.phases & PH_MERGE) ? engine_open(ENG_DYNKV, dir, SYNC_NONE) : NULL;
	}
	if (e && (O.phases & PH_MERGE) && !g_stop)
		merge_phase(e, loaded[ENG_DYNKV], vsize);
	if (e)
		engine_close(e);
	rm_rf(dir);
}

static void interval_phase(uint32_t vsize)
{
	char title[256], dir[4096], label[96], note[160];
	if (!want_put(SYNC_INTERVAL))
		return;
	snprintf(title, sizeof title, "PUT sync=interval (%u ms), value %u B, %" PRIu64
		 " keys in random order, 1 writer", O.interval_ms, vsize, O.keys);
	print_tput_header(title);
	for (int i = 0; i < g_nengines && !g_stop; i++) {
		int w = g_engines[i];
		run_result rr;
		sub_dir(dir, sizeof dir, engine_name(w), "interval", vsize);
		engine *e = engine_open(w, dir, SYNC_INTERVAL);
		snprintf(label, sizeof label, "put %s %uB sync=interval", engine_name(w), vsize);
		load(e, O.keys, vsize, 0, label, &rr);
		note[0] = 0;
		if (w == ENG_DYNKV) {
			bitcask_stats st;
			bitcask_stats_get(e->bc, &st, NULL, NULL);
			snprintf(note, sizeof note, "%" PRIu64 " fdatasyncs", st.syncs);
		}
#ifdef HAVE_ROCKSDB
		else
			snprintf(note, sizeof note, "%" PRIu64 " WAL syncs by the 100 ms timer thread",
				 (uint64_t)atomic_load(&e->wal_syncs));
#endif
		report_tput("put", engine_name(w), "interval", vsize, 1, &rr, note);
		res_set(rr.secs > 0 ? (double)rr.ops / rr.secs : 0, "put/%s/interval/%u/1",
			engine_name(w), vsize);
		engine_close(e);
		rm_rf(dir);
	}
}

/* The disk's fsync latency drifts by tens of percent from minute to minute on
 * a shared machine, so each sync=always figure is the sum of --rounds short
 * runs, the engines taking turns, each round on a fresh store. */
static void always_phase(uint32_t vsize)
{
	char title[256], dir[4096], label[96], note[160];
	int rounds = O.rounds;
	if (!want_put(SYNC_ALWAYS))
		return;
	snprintf(title, sizeof title, "PUT sync=always (group commit), value %u B, %" PRIu64
		 " puts per figure spread over the writers (each its own keys),\n"
		 "in %d rounds taking turns between the engines, %.0fs limit per figure",
		 vsize, O.ops, rounds, O.always_seconds);
	print_tput_header(title);
	for (int wi = 0; wi < O.nwriters && !g_stop; wi++) {
		int nw = O.writers[wi];
		uint64_t per = O.ops / (uint64_t)nw / (uint64_t)rounds;
		run_result *acc = calloc(3, sizeof *acc);
		uint64_t syncs = 0, writes = 0;
		job *jobs = calloc((size_t)nw, sizeof *jobs);
		if (!acc || !jobs)
			die("out of memory");
		if (per == 0)
			per = 1;
		for (int r = 0; r < rounds && !g_stop; r++) {
			for (int i = 0; i < g_nengines && !g_stop; i++) {
				int w = g_engines[i];
				run_result rr;
				memset(jobs, 0, (size_t)nw * sizeof *jobs);
				sub_dir(dir, sizeof dir, engine_name(w), "always", vsize);
				engine *e = engine_open(w, dir, SYNC_ALWAYS);
				uint64_t dl = deadline_after(O.always_seconds / rounds);
				for (int k = 0; k < nw; k++) {
					jobs[k].e = e;
					jobs[k].kind = J_PUT;
					jobs[k].base = (uint64_t)k * per;
					jobs[k].count = per;
					jobs[k].vsize = vsize;
					jobs[k].deadline_ns = dl;
				}
				snprintf(label, sizeof label, "put %s %uB sync=always %d writers, round %d/%d",
					 engine_name(w), vsize, nw, r + 1, rounds);
				run_jobs(jobs, nw, label, per * (uint64_t)nw, &rr);
				if (w == ENG_DYNKV) {
					bitcask_stats st;
					bitcask_stats_get(e->bc, &st, NULL, NULL);
					syncs += st.syncs;
					writes += st.writes;
				}
				acc[w].ops += rr.ops;
				acc[w].secs += rr.secs;
				h_merge(&acc[w].h, &rr.h);
				acc[w].errors += rr.errors;
				acc[w].misses += rr.misses;
				acc[w].bad += rr.bad;
				acc[w].timed_out |= rr.timed_out;
				engine_close(e);
				rm_rf(dir);
			}
		}
		for (int i = 0; i < g_nengines; i++) {
			int w = g_engines[i];
			run_result *rr = &acc[w];
			note[0] = 0;
			if (w == ENG_DYNKV)
				snprintf(note, sizeof note, "%" PRIu64 " fdatasyncs, %.1f puts/sync",
					 syncs, syncs ? (double)writes / (double)syncs : 0);
			report_tput("put", engine_name(w), "always", vsize, nw, rr, note);
			res_set(rr->secs > 0 ? (double)rr->ops / rr->secs : 0, "put/%s/always/%u/%d",
				engine_name(w), vsize, nw);
		}
		free(jobs);
		free(acc);
	}
}

static void open_big_phase(void)
{
	char dir[4096], label[96], n[32], title[256];
	run_result rr;
	uint64_t heap0, rss0;

	if (!(O.phases & PH_OPEN_BIG) || !(O.engines & ENG_DYNKV) || g_stop)
		return;
	fmt_count(n, sizeof n, O.big_keys);
	snprintf(title, sizeof title, "LOAD for the big open test: %s keys x %u B values "
		 "(small values keep the disk use down)", n, O.big_vsize);
	print_tput_header(title);
	heap0 = heap_bytes();
	rss0 = rss_bytes();
	sub_dir(dir, sizeof dir, "dynkv", "open-big", O.big_vsize);
	engine *e = engine_open(ENG_DYNKV, dir, SYNC_NONE);
	snprintf(label, sizeof label, "put dynkv %uB x %s", O.big_vsize, n);
	load(e, O.big_keys, O.big_vsize, 0, label, &rr);
	report_tput("put-open-big", "dynkv", "none", O.big_vsize, 1, &rr, NULL);
	uint64_t hd = heap_bytes() - heap0;
	report_keydir(e, rr.ops, O.big_vsize, rss_bytes() - rss0);
	out("  (heap growth during the load, from mallinfo2: %.1f bytes/key)\n",
	    rr.ops ? (double)hd / (double)rr.ops : 0);
	double bpk;
	if (res_get(&bpk, "keydir/%u", O.big_vsize))
		res_set(bpk, "keydir/big");
	snprintf(label, sizeof label, "%s keys x %u B values", n, O.big_vsize);
	open_phase(e, rr.ops, O.big_vsize, label);
	rm_rf(dir);
}

static void disk_phase(void)
{
	char path[4096];
	size_t bs = 1 << 20;
	uint64_t blocks = O.disk_mib;
	void *buf;
	double mbs[2] = {0, 0};

	if (!(O.phases & PH_DISK) || g_stop)
		return;
	if (posix_memalign(&buf, 4096, bs) != 0)
		die("out of memory");
	for (size_t i = 0; i < bs; i++)
		((unsigned char *)buf)[i] = g_pool[i];
	snprintf(path, sizeof path, "%s/disk-test", O.dir);
	out("\nDISK sequential write, %" PRIu64 " MiB in 1 MiB blocks to %s\n", blocks, O.dir);
	for (int pass = 0; pass < 2 && !g_stop; pass++) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (pass == 0 ? O_DIRECT : 0), 0644);
		if (fd < 0) {
			out("  %-32s n/a (%s)\n", pass == 0 ? "O_DIRECT" : "buffered", strerror(errno));
			continue;
		}
		progress("  disk: writing %" PRIu64 " MiB %s...", blocks,
			 pass == 0 ? "O_DIRECT" : "buffered");
		uint64_t t0 = now_ns();
		bool ok = true;
		for (uint64_t b = 0; b < blocks && ok; b++)
			ok = write(fd, buf, bs) == (ssize_t)bs;
		ok = ok && fdatasync(fd) == 0;
		double s = secs_since(t0);
		close(fd);
		unlink(path);
		progress_clear();
		if (!ok) {
			out("  %-32s failed (%s)\n", pass == 0 ? "O_DIRECT" : "buffered", strerror(errno));
			continue;
		}
		mbs[pass] = (double)(blocks * bs) / s / 1e6;
		out("  %-32s %8.2fs %8.0f MB/s\n", pass == 0 ? "O_DIRECT (like dd oflag=direct)"
		    : "buffered + final fdatasync", s, mbs[pass]);
		jbuf j;
		j_begin(&j, "measurement");
		j_str(&j, "phase", "disk");
		j_str(&j, "mode", pass == 0 ? "direct" : "buffered+fdatasync");
		j_u64(&j, "bytes", blocks * bs);
		j_dbl(&j, "seconds", s);
		j_dbl(&j, "mb_per_sec", mbs[pass]);
		j_end(&j);
	}
	res_set(mbs[0], "disk/direct");
	res_set(mbs[1], "disk/buffered");
	free(buf);
}

/* ------------------------------------------------------------- verdicts */

static void verdict(const char *target, const char *measured, int met)
{
	static const char *const v[] = {"MISSED", "met", "n/a"};
	out("  %-58s %-52s %s\n", target, measured, v[met]);
	jbuf j;
	j_begin(&j, "verdict");
	j_str(&j, "target", target);
	j_str(&j, "measured", measured);
	j_str(&j, "verdict", v[met]);
	j_end(&j);
}

static void print_verdicts(void)
{
	char t[160], m[160];
	double a, b, c;

	out("\nTARGETS (dynkv)\n");
	/* sync=none puts of 1 KiB values vs the disk */
	for (int i = 0; i < O.nvsizes; i++) {
		uint32_t vs = O.vsizes[i];
		if (vs < 1024 && O.nvsizes > 1)
			continue;
		if (res_get(&a, "putmb/dynkv/none/%u", vs) && res_get(&b, "disk/direct") && b > 0) {
			res_get(&c, "putmbsync/dynkv/none/%u", vs);
			snprintf(t, sizeof t, "put sync=none, %u B values, >= 75%% of disk seq. write", vs);
			snprintf(m, sizeof m, "%.0f MB/s (%.0f incl. final sync) vs %.0f MB/s", a, c, b);
			verdict(t, m, a >= 0.75 * b);
		}
	}
	for (int i = 0; i < O.nvsizes; i++) {
		uint32_t vs = O.vsizes[i];
		if (res_get(&a, "get/dynkv/%u/1", vs)) {
			snprintf(t, sizeof t, "warm random get, 1 thread, %u B values, > 500k/s", vs);
			snprintf(m, sizeof m, "%.0f gets/s", a);
			verdict(t, m, a > 500000);
		}
	}
	for (int i = 0; i < O.nvsizes; i++) {
		uint32_t vs = O.vsizes[i];
		if (res_get(&a, "keydir/%u", vs)) {
			snprintf(t, sizeof t, "keydir <= 32 B/key + key (%d B), %u B values", KEY_LEN, vs);
			snprintf(m, sizeof m, "%.1f B/key = key + %.1f", a, a - KEY_LEN);
			verdict(t, m, a <= 32 + KEY_LEN);
		}
	}
	if (res_get(&a, "keydir/big")) {
		snprintf(t, sizeof t, "keydir <= 32 B/key + key, %" PRIu64 " keys", O.big_keys);
		snprintf(m, sizeof m, "%.1f B/key = key + %.1f", a, a - KEY_LEN);
		verdict(t, m, a <= 32 + KEY_LEN);
	}
	uint64_t counts[2] = {O.keys, O.big_keys};
	for (int i = 0; i < 2; i++) {
		if (res_get(&a, "open/hint/%" PRIu64, counts[i])) {
			char n[32];
			fmt_count(n, sizeof n, counts[i]);
			snprintf(t, sizeof t, "open from hint files, %s keys, > 2M keys/s", n);
			if (res_get(&b, "open/nohint/%" PRIu64, counts[i]))
				snprintf(m, sizeof m, "%.2fM keys/s (%.2fM without hints)", a / 1e6, b / 1e6);
			else
				snprintf(m, sizeof m, "%.2fM keys/s", a / 1e6);
			verdict(t, m, a > 2e6);
		}
	}
	for (int i = 0; i < O.nvsizes; i++) {
		uint32_t vs = O.vsizes[i];
		int wmax = 0;
		for (int k = 0; k < O.nwriters; k++)
			if (O.writers[k] > wmax)
				wmax = O.writers[k];
		if (wmax > 1 && res_get(&a, "put/dynkv/always/%u/1", vs) &&
		    res_get(&b, "put/dynkv/always/%u/%d", vs, wmax) && a > 0) {
			snprintf(t, sizeof t, "sync=always, %d writers >= 20x 1 writer, %u B", wmax, vs);
			snprintf(m, sizeof m, "%.1fx (%.0f vs %.0f puts/s)", b / a, b, a);
			verdict(t, m, b >= 20 * a);
		}
	}
	for (int i = 0; i < O.nvsizes; i++) {
		uint32_t vs = O.vsizes[i];
		static const char *const modes[] = {"none", "interval"};
		for (int k = 0; k < 2; k++)
			if (res_get(&a, "put/dynkv/%s/%u/1", modes[k], vs) &&
			    res_get(&b, "put/rocksdb/%s/%u/1", modes[k], vs) && b > 0) {
				snprintf(t, sizeof t, "put sync=%s >= RocksDB, %u B", modes[k], vs);
				snprintf(m, sizeof m, "%.2fx (%.0f vs %.0f puts/s)", a / b, a, b);
				verdict(t, m, a >= b);
			}
		for (int k = 0; k < O.nwriters; k++)
			if (res_get(&a, "put/dynkv/always/%u/%d", vs, O.writers[k]) &&
			    res_get(&b, "put/rocksdb/always/%u/%d", vs, O.writers[k]) && b > 0) {
				snprintf(t, sizeof t, "put sync=always, %d writer%s >= RocksDB, %u B",
					 O.writers[k], O.writers[k] > 1 ? "s" : "", vs);
				snprintf(m, sizeof m, "%.2fx (%.0f vs %.0f puts/s)", a / b, a, b);
				verdict(t, m, a >= b);
			}
		for (int th = 1; th <= 2; th++)
			if (res_get(&a, "get/dynkv/%u/%d", vs, th) &&
			    res_get(&b, "get/rocksdb/%u/%d", vs, th) && b > 0) {
				snprintf(t, sizeof t, "get, %d thread%s >= RocksDB, %u B", th,
					 th > 1 ? "s" : "", vs);
				snprintf(m, sizeof m, "%.2fx (%.0f vs %.0f gets/s)", a / b, a, b);
				verdict(t, m, a >= b);
			}
	}
	for (int i = 0; i < O.nvsizes; i++)
		if (res_get(&a, "merge_in/%u", O.vsizes[i])) {
			res_get(&b, "merge_out/%u", O.vsizes[i]);
			snprintf(t, sizeof t, "merge throughput, %u B values (no target)", O.vsizes[i]);
			snprintf(m, sizeof m, "in %.0f MB/s, out %.0f MB/s", a, b);
			verdict(t, m, 2);
		}
}

/* ---------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
"usage: bench_bitcask [options]\n"
"  --dir DIR             data directory (default ./bench-data; emptied before, removed after)\n"
"  --keys N              keys loaded per value size (default 1000000)\n"
"  --value-size B[,B..]  value sizes (default 100,1024)\n"
"  --sync MODE[,MODE..]  put modes to run: none, interval, always (default all)\n"
"  --writers N[,N..]     writer threads of the sync=always runs (default 1,16,64)\n"
"  --ops N               puts per sync=always run, over all writers (default 20000)\n"
"  --engine E            dynkv, rocksdb or both (default both if built with RocksDB)\n"
"  --only PHASE[,..]     disk, put, put-none, put-interval, put-always, get, keydir,\n"
"                        open, open-10m, merge (default all)\n"
"  --json                one JSON object per line per measurement, no tables\n"
"  --quick               small sizes, for a smoke test (also turns on --check)\n"
"  --check               run bitcask_check() after the load and the merge\n"
"  --file-size-mib N     dynkv max_file_size (default 64)\n"
"  --interval-ms N       interval of sync=interval (default 100)\n"
"  --get-seconds S       duration of each get run (default 3)\n"
"  --always-seconds S    time limit of each sync=always figure (default 15)\n"
"  --rounds N            each sync=always figure is N runs, engines alternating (default 3)\n"
"  --max-seconds S       time limit of every other timed loop (default 180)\n"
"  --big-keys N          keys of the open-10m test (default 10000000)\n"
"  --big-value-size B    value size of the open-10m test (default 16)\n"
"  --disk-mib N          size of the disk bandwidth test (default 2048)\n"
"  --cache-mib N         RocksDB block cache (default 2048)\n");
}

static int parse_list(const char *s, uint64_t *vals, int max, const char *what)
{
	int n = 0;
	char *copy = strdup(s), *save = NULL;
	if (!copy)
		die("out of memory");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		errno = 0;
		unsigned long long v = strtoull(t, &end, 10);
		if (errno || *end || end == t || n >= max)
			die("bad %s: %s", what, s);
		vals[n++] = v;
	}
	free(copy);
	if (!n)
		die("bad %s: %s", what, s);
	return n;
}

static uint64_t parse_u64(const char *s, const char *what)
{
	uint64_t v;
	parse_list(s, &v, 1, what);
	return v;
}

static double parse_dbl(const char *s, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (*end || end == s || v < 0)
		die("bad %s: %s", what, s);
	return v;
}

static int parse_names(const char *s, bool phases)
{
	int mask = 0;
	char *copy = strdup(s), *save = NULL;
	if (!copy)
		die("out of memory");
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int m = 0;
		if (phases) {
			for (size_t i = 0; i < sizeof phase_names / sizeof phase_names[0]; i++)
				if (!strcmp(t, phase_names[i].name))
					m = phase_names[i].mask;
		} else {
			for (int i = 0; i < 3; i++)
				if (!strcmp(t, sync_names[i]))
					m = 1 << i;
		}
		if (!m)
			die("unknown %s: %s", phases ? "phase" : "sync mode", t);
		mask |= m;
	}
	free(copy);
	return mask;
}

static void parse_args(int argc, char **argv)
{
	enum {
		OPT_DIR = 256, OPT_KEYS, OPT_VSIZE, OPT_SYNC, OPT_WRITERS, OPT_OPS, OPT_ENGINE,
		OPT_ONLY, OPT_JSON, OPT_QUICK, OPT_CHECK, OPT_FILE, OPT_INTERVAL, OPT_GETS,
		OPT_ALWAYS_S, OPT_MAX_S, OPT_BIGK, OPT_BIGV, OPT_DISK, OPT_CACHE, OPT_ROUNDS,
		OPT_HELP,
	};
	static const struct option lo[] = {
		{"dir", required_argument, NULL, OPT_DIR},
		{"keys", required_argument, NULL, OPT_KEYS},
		{"value-size", required_argument, NULL, OPT_VSIZE},
		{"sync", required_argument, NULL, OPT_SYNC},
		{"writers", required_argument, NULL, OPT_WRITERS},
		{"ops", required_argument, NULL, OPT_OPS},
		{"engine", required_argument, NULL, OPT_ENGINE},
		{"only", required_argument, NULL, OPT_ONLY},
		{"json", no_argument, NULL, OPT_JSON},
		{"quick", no_argument, NULL, OPT_QUICK},
		{"check", no_argument, NULL, OPT_CHECK},
		{"file-size-mib", required_argument, NULL, OPT_FILE},
		{"interval-ms", required_argument, NULL, OPT_INTERVAL},
		{"get-seconds", required_argument, NULL, OPT_GETS},
		{"always-seconds", required_argument, NULL, OPT_ALWAYS_S},
		{"max-seconds", required_argument, NULL, OPT_MAX_S},
		{"big-keys", required_argument, NULL, OPT_BIGK},
		{"big-value-size", required_argument, NULL, OPT_BIGV},
		{"disk-mib", required_argument, NULL, OPT_DISK},
		{"cache-mib", required_argument, NULL, OPT_CACHE},
		{"rounds", required_argument, NULL, OPT_ROUNDS},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	uint64_t list[MAX_LIST];
	bool quick = false;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--quick"))
			quick = true;
	O.dir = "./bench-data";
	O.keys = quick ? 50000 : 1000000;
	O.vsizes[0] = 100;
	O.vsizes[1] = 1024;
	O.nvsizes = 2;
	O.syncs = 7;
	O.writers[0] = 1;
	O.writers[1] = 16;
	O.writers[2] = 64;
	O.nwriters = 3;
	O.ops = quick ? 2000 : 20000;
#ifdef HAVE_ROCKSDB
	O.engines = ENG_DYNKV | ENG_ROCKSDB;
#else
	O.engines = ENG_DYNKV;
#endif
	O.quick = quick;
	O.check = quick;
	O.phases = PH_ALL;
	O.file_size = (quick ? 4ull : 64ull) << 20;
	O.interval_ms = 100;
	O.get_seconds = quick ? 0.5 : 3;
	O.always_seconds = quick ? 3 : 15;
	O.rounds = 3;
	O.max_seconds = quick ? 60 : 180;
	O.big_keys = quick ? 200000 : 10000000;
	O.big_vsize = 16;
	O.disk_mib = quick ? 64 : 2048;
	O.cache_mib = 2048;

	int c;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case OPT_DIR: O.dir = optarg; break;
		case OPT_KEYS: O.keys = parse_u64(optarg, "--keys"); break;
		case OPT_VSIZE:
			O.nvsizes = parse_list(optarg, list, MAX_LIST, "--value-size");
			for (int i = 0; i < O.nvsizes; i++) {
				if (list[i] > (64u << 20))
					die("--value-size too large: %" PRIu64, list[i]);
				O.vsizes[i] = (uint32_t)list[i];
			}
			break;
		case OPT_SYNC: O.syncs = parse_names(optarg, false); break;
		case OPT_WRITERS:
			O.nwriters = parse_list(optarg, list, MAX_LIST, "--writers");
			for (int i = 0; i < O.nwriters; i++) {
				if (list[i] < 1 || list[i] > 1024)
					die("--writers must be 1..1024");
				O.writers[i] = (int)list[i];
			}
			break;
		case OPT_OPS: O.ops = parse_u64(optarg, "--ops"); break;
		case OPT_ENGINE:
			if (!strcmp(optarg, "dynkv"))
				O.engines = ENG_DYNKV;
			else if (!strcmp(optarg, "rocksdb") || !strcmp(optarg, "both")) {
#ifndef HAVE_ROCKSDB
				die("this bench_bitcask was built without RocksDB");
#endif
				O.engines = !strcmp(optarg, "both") ? ENG_DYNKV | ENG_ROCKSDB : ENG_ROCKSDB;
			} else
				die("--engine must be dynkv, rocksdb or both");
			break;
		case OPT_ONLY: O.phases = parse_names(optarg, true); break;
		case OPT_JSON: O.json = true; break;
		case OPT_QUICK: break;
		case OPT_CHECK: O.check = true; break;
		case OPT_FILE: O.file_size = parse_u64(optarg, "--file-size-mib") << 20; break;
		case OPT_INTERVAL: O.interval_ms = (uint32_t)parse_u64(optarg, "--interval-ms"); break;
		case OPT_GETS: O.get_seconds = parse_dbl(optarg, "--get-seconds"); break;
		case OPT_ALWAYS_S: O.always_seconds = parse_dbl(optarg, "--always-seconds"); break;
		case OPT_MAX_S: O.max_seconds = parse_dbl(optarg, "--max-seconds"); break;
		case OPT_BIGK: O.big_keys = parse_u64(optarg, "--big-keys"); break;
		case OPT_BIGV: O.big_vsize = (uint32_t)parse_u64(optarg, "--big-value-size"); break;
		case OPT_DISK: O.disk_mib = parse_u64(optarg, "--disk-mib"); break;
		case OPT_CACHE: O.cache_mib = parse_u64(optarg, "--cache-mib"); break;
		case OPT_ROUNDS:
			O.rounds = (int)parse_u64(optarg, "--rounds");
			if (O.rounds < 1 || O.rounds > 100)
				die("--rounds must be 1..100");
			break;
		case OPT_HELP:
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument: %s", argv[optind]);
	if (!O.keys || !O.ops)
		die("--keys and --ops must be positive");
	if (O.keys > 999999999999ull || O.big_keys > 999999999999ull)
		die("at most 999999999999 keys (12 digits)");
	if (O.file_size < (1u << 20) || O.file_size > 0xffffffffull)
		die("--file-size-mib must be 1..4095");
}

/* ------------------------------------------------------------------- main */

/* The 1-minute load average, or -1: other work on the machine skews every
 * figure, so the run records it at the start and at the end. */
static double loadavg1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1;
		fclose(f);
	}
	return l;
}

static void print_setup(void)
{
	struct utsname u;
	char eng[64] = "";
	uname(&u);
	for (int i = 0; i < g_nengines; i++) {
		strcat(eng, i ? ", " : "");
		strcat(eng, engine_name(g_engines[i]));
	}
	out("bench_bitcask: %s %s, %ld CPUs, load average %.2f; engines: %s\n", u.sysname,
	    u.release, sysconf(_SC_NPROCESSORS_ONLN), loadavg1(), eng);
	out("  keys \"key%%012\" PRIu64 = %d bytes; values pseudo-random (incompressible); "
	    "MB = 10^6 bytes of key + value\n", KEY_LEN);
	out("  dynkv: max_file_size %" PRIu64 " MiB, automatic merges off; "
	    "sync=interval every %u ms\n", O.file_size >> 20, O.interval_ms);
#ifdef HAVE_ROCKSDB
	if (O.engines & ENG_ROCKSDB)
		out("  rocksdb %s: WAL on, no compression, %" PRIu64 " MiB LRU block cache, bloom 10 bits/key,\n"
		    "    2 background jobs; sync=none: sync=false; sync=interval: sync=false + a thread\n"
		    "    calling rocksdb_flush_wal(db, 1) every %u ms (RocksDB has no timed fsync);\n"
		    "    sync=always: sync=true (RocksDB groups concurrent commits itself)\n",
		    "7.x", O.cache_mib, O.interval_ms);
#endif
	out("  latencies per operation from a log-linear histogram (2^k buckets x 16, ns resolution)\n");
	jbuf j;
	j_begin(&j, "setup");
	j_str(&j, "kernel", u.release);
	j_u64(&j, "cpus", (uint64_t)sysconf(_SC_NPROCESSORS_ONLN));
	j_dbl(&j, "loadavg1", loadavg1());
	j_str(&j, "engines", eng);
	j_u64(&j, "keys", O.keys);
	j_u64(&j, "key_size", KEY_LEN);
	j_u64(&j, "max_file_size", O.file_size);
	j_u64(&j, "interval_ms", O.interval_ms);
	j_u64(&j, "always_ops", O.ops);
	j_u64(&j, "big_keys", O.big_keys);
	j_u64(&j, "big_value_size", O.big_vsize);
	j_u64(&j, "rocksdb_cache_mib", O.cache_mib);
	j_u64(&j, "quick", O.quick);
	j_end(&j);
}

int main(int argc, char **argv)
{
	uint64_t t0 = now_ns();
	uint32_t maxv = 16;

	parse_args(argc, argv);
	g_tty = isatty(2);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (O.engines & ENG_DYNKV)
		g_engines[g_nengines++] = ENG_DYNKV;
	if (O.engines & ENG_ROCKSDB)
		g_engines[g_nengines++] = ENG_ROCKSDB;
	for (int i = 0; i < O.nvsizes; i++)
		if (O.vsizes[i] > maxv)
			maxv = O.vsizes[i];
	if (O.big_vsize > maxv)
		maxv = O.big_vsize;
	pool_init(maxv);
	bench_dir_init();
	print_setup();

	disk_phase();
	for (int i = 0; i < O.nvsizes && !g_stop; i++) {
		uint32_t vs = O.vsizes[i];
		loaded_phases(vs);
		if (!g_stop)
			interval_phase(vs);
		if (!g_stop)
			always_phase(vs);
	}
	open_big_phase();
	if (!g_stop)
		print_verdicts();
	rm_rf(O.dir);
	out("\ntotal time %.0fs%s, load average at the end %.2f\n", secs_since(t0),
	    g_stop ? " (interrupted)" : "", loadavg1());
	jbuf j;
	j_begin(&j, "end");
	j_dbl(&j, "seconds", secs_since(t0));
	j_dbl(&j, "loadavg1", loadavg1());
	j_u64(&j, "interrupted", g_stop != 0);
	j_end(&j);
	return g_stop ? 130 : 0;
}
