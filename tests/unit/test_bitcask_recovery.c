/* test_bitcask_recovery.c -- opening a store whatever its files contain:
 * torn tails at every byte, zero-filled tails, bit flips, garbage files,
 * stale temporary files, and restart with and without hint files. */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bctest.h"
#include "crc32c.h"
#include "error.h"
#include "record.h"

static char *dir;

static void setup(void)
{
	dir = bct_mkdtemp();
}

static void teardown(void)
{
	bct_rmdir(dir);
	free(dir);
}

TestSuite(recovery, .init = setup, .fini = teardown);

enum { VLEN = 20, KLEN = 9, RSIZE = REC_HDR_SIZE + KLEN + VLEN };

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc((size_t)n + 1);
	cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return b;
}

static void write_file(const char *path, const uint8_t *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, len, f), len);
	fclose(f);
}

/* Write n records k00000000.. into a fresh store, close, and return the path
 * of its single data file (hint removed, so open must scan). */
static char *make_one_file(int n, bitcask_config *c)
{
	bct_config(c);
	c->max_file_size = 1 << 20;
	bitcask *bc = bct_open(dir, c);
	char key[32];
	uint8_t val[VLEN];
	for (int i = 0; i < n; i++) {
		bct_value(val, VLEN, (uint64_t)i, 0);
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, (uint64_t)i), val, VLEN), 0);
	}
	cr_assert_eq(bitcask_close(bc), 0);
	size_t nd, nh;
	char **d = bct_list(dir, ".data", &nd), **h = bct_list(dir, ".hint", &nh);
	cr_assert_eq(nd, 1);
	char *path = malloc(4096);
	for (size_t i = 0; i < nh; i++) {
		snprintf(path, 4096, "%s/%s", dir, h[i]);
		unlink(path);
		free(h[i]);
	}
	free(h);
	snprintf(path, 4096, "%s/%s", dir, d[0]);
	free(d[0]);
	free(d);
	return path;
}

static void expect_prefix(bitcask *bc, int present, int total)
{
	char key[32];
	uint8_t want[VLEN];
	for (int i = 0; i < total; i++) {
		void *v;
		size_t vl;
		int rc = bitcask_get(bc, key, bct_key(key, (uint64_t)i), &v, &vl);
		if (i < present) {
			cr_assert_eq(rc, 0, "record %d lost (%s)", i, dkv_strerror(rc));
			bct_value(want, VLEN, (uint64_t)i, 0);
			cr_assert(vl == VLEN && memcmp(v, want, VLEN) == 0);
			free(v);
		} else {
			cr_assert_eq(rc, DKV_ENOTFOUND, "record %d of a torn tail came back", i);
		}
	}
}

/* Cut the newest file at every byte of its last records: each open keeps
 * exactly the whole records and cuts the rest off the file. */
Test(recovery, torn_tail_at_every_byte)
{
	bitcask_config c;
	enum { N = 12, LAST = 4 };
	char *path = make_one_file(N, &c);
	size_t len;
	uint8_t *orig = read_file(path, &len);
	cr_assert_eq(len, DATAFILE_HDR_SIZE + N * RSIZE);
	for (size_t cut = DATAFILE_HDR_SIZE + (N - LAST) * RSIZE; cut <= len; cut++) {
		write_file(path, orig, cut);
		bitcask *bc = bct_open(dir, &c);
		int whole = (int)((cut - DATAFILE_HDR_SIZE) / RSIZE);
		expect_prefix(bc, whole, N);
		bitcask_stats st;
		bitcask_stats_get(bc, &st, NULL, NULL);
		cr_assert_eq(st.truncated_bytes, cut - DATAFILE_HDR_SIZE - (size_t)whole * RSIZE);
		cr_assert_eq(st.corrupt_records, 0);
		bct_check(bc);
		cr_assert_eq(bitcask_close(bc), 0);
		/* The tail is gone from the file itself. */
		cr_assert_eq(bct_file_size(path), (long long)(DATAFILE_HDR_SIZE + (size_t)whole * RSIZE));
		/* Back to one file for the next round. */
		size_t nd;
		char **d = bct_list(dir, ".data", &nd);
		for (size_t i = 0; i < nd; i++) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", dir, d[i]);
			if (strcmp(p, path) != 0)
				unlink(p);
			free(d[i]);
		}
		free(d);
		bct_unlink_all(dir, ".hint");
	}
	free(orig);
	free(path);
}

/* A crash after the file grew but before the data reached it leaves zeros. */
Test(recovery, zero_filled_tail)
{
	bitcask_config c;
	enum { N = 10 };
	char *path = make_one_file(N, &c);
	size_t len;
	uint8_t *orig = read_file(path, &len);
	size_t zeros[] = { 1, 18, 19, RSIZE, 4096, 100000 };
	for (size_t z = 0; z < sizeof(zeros) / sizeof(zeros[0]); z++) {
		uint8_t *b = calloc(1, len + zeros[z]);
		memcpy(b, orig, len);
		write_file(path, b, len + zeros[z]);
		free(b);
		bitcask *bc = bct_open(dir, &c);
		expect_prefix(bc, N, N);
		bitcask_stats st;
		bitcask_stats_get(bc, &st, NULL, NULL);
		cr_assert_eq(st.truncated_bytes, zeros[z]);
		bitcask_close(bc);
		cr_assert_eq(bct_file_size(path), (long long)len);
		bct_unlink_all(dir, ".hint");
	}
	free(orig);
	free(path);
}

/* Flip every bit of a record in the middle of the newest file: that record
 * is skipped and counted, every other one survives. */
Test(recovery, bit_flip_in_the_middle)
{
	bitcask_config c;
	enum { N = 8, VICTIM = 3 };
	char *path = make_one_file(N, &c);
	size_t len;
	uint8_t *orig = read_file(path, &len);
	uint8_t *b = malloc(len);
	char key[32];
	for (size_t bit = 0; bit < RSIZE * 8; bit++) {
		memcpy(b, orig, len);
		b[DATAFILE_HDR_SIZE + VICTIM * RSIZE + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		write_file(path, b, len);
		bitcask *bc = bct_open(dir, &c);
		for (int i = 0; i < N; i++) {
			void *v;
			size_t vl;
			int rc = bitcask_get(bc, key, bct_key(key, (uint64_t)i), &v, &vl);
			if (i == VICTIM) {
				cr_assert_eq(rc, DKV_ENOTFOUND, "bit %zu: the damaged record was accepted", bit);
				continue;
			}
			cr_assert_eq(rc, 0, "bit %zu: record %d lost", bit, i);
			free(v);
		}
		bitcask_stats st;
		bitcask_stats_get(bc, &st, NULL, NULL);
		cr_assert_eq(st.corrupt_records, 1, "bit %zu", bit);
		cr_assert_eq(st.truncated_bytes, 0);
		bct_check(bc);
		bitcask_close(bc);
		/* The hint written at close would hide the damage next round. */
		bct_unlink_all(dir, ".hint");
		/* Close created nothing new (no writes), so the file is the same. */
	}
	free(b);
	free(orig);
	free(path);
}

/* A store holding a = "hello" and b = "world", closed with a hint file, then
 * one byte of a's value flipped in the data file behind the hint's back. */
static void make_damaged_under_hint(bitcask_config *c)
{
	bct_config(c);
	bitcask *bc = bct_open(dir, c);
	cr_assert_eq(bitcask_put(bc, "a", 1, "hello", 5), 0);
	cr_assert_eq(bitcask_put(bc, "b", 1, "world", 5), 0);
	cr_assert_eq(bitcask_close(bc), 0);
	size_t nd;
	char **d = bct_list(dir, ".data", &nd);
	cr_assert_eq(nd, 1);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, d[0]);
	free(d[0]);
	free(d);
	size_t len;
	uint8_t *b = read_file(path, &len);
	b[DATAFILE_HDR_SIZE + REC_HDR_SIZE + 1 + 2] ^= 0x10;   /* a byte of "hello" */
	write_file(path, b, len);
	free(b);
}

/* A flipped value byte in a file read through its hint is caught on get. */
Test(recovery, bit_flip_under_a_hint_is_caught_on_read)
{
	bitcask_config c;
	make_damaged_under_hint(&c);
	bitcask *bc = bct_open(dir, &c);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.hint_loads, 1);
	void *v;
	size_t vl;
	cr_assert_eq(bitcask_get(bc, "a", 1, &v, &vl), DKV_ECORRUPT);
	cr_assert_eq(bitcask_get(bc, "b", 1, &v, &vl), 0);
	free(v);
	bitcask_close(bc);
}

/* Regression: a key whose hint-trusted record fails its checksum used to
 * stay in the keydir through a merge, pointing into an unlinked file, and
 * the next get dereferenced a file that was gone. */
Test(recovery, unreadable_record_under_a_hint_survives_a_merge)
{
	bitcask_config c;
	make_damaged_under_hint(&c);
	bitcask *bc = bct_open(dir, &c);
	cr_assert_eq(bitcask_merge(bc), 0);
	void *v;
	size_t vl;
	cr_assert_eq(bitcask_get(bc, "a", 1, &v, &vl), DKV_ENOTFOUND, "the unreadable key is dropped");
	cr_assert_eq(bitcask_get(bc, "b", 1, &v, &vl), 0);
	free(v);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.corrupt_records, 1);
	bct_check(bc);
	bitcask_close(bc);
}

static void corrupt_hint_and_reopen(size_t flip_at, bool truncate)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = bct_open(dir, &c);
	bct_model m;
	bct_model_init(&m, 200);
	char key[32];
	uint8_t val[64];
	for (uint64_t i = 0; i < m.n; i++) {
		bct_value(val, 40, i, 1);
		cr_assert_eq(bitcask_put(bc, key, bct_key(key, i), val, 40), 0);
		m.present[i] = true;
		m.gen[i] = 1;
		m.len[i] = 40;
	}
	cr_assert_eq(bitcask_close(bc), 0);
	size_t nh;
	char **h = bct_list(dir, ".hint", &nh);
	cr_assert_gt(nh, 2);
	for (size_t i = 0; i < nh; i++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", dir, h[i]);
		size_t len;
		uint8_t *b = read_file(p, &len);
		if (truncate)
			len = flip_at % len;
		else
			b[flip_at % len] ^= 0x01;
		write_file(p, b, len);
		free(b);
		free(h[i]);
	}
	free(h);
	bc = bct_open(dir, &c);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.hint_loads, 0, "a damaged hint was trusted");
	cr_assert_gt(st.data_scans, 2);
	bct_assert_model(bc, &m);
	bct_check(bc);
	bitcask_close(bc);
	bct_model_free(&m);
}

Test(recovery, damaged_hints_fall_back_to_scans)
{
	size_t at[] = { 0, 5, 13, 20, 27, 29, 33, 40, 51 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		bct_rmdir(dir);
		cr_assert_eq(mkdir(dir, 0755), 0);
		corrupt_hint_and_reopen(at[i], false);
		bct_rmdir(dir);
		cr_assert_eq(mkdir(dir, 0755), 0);
		corrupt_hint_and_reopen(at[i] + 1, true);
	}
}

/* A hint that describes a data file of another size is not trusted. */
Test(recovery, hint_for_another_size_is_ignored)
{
	bitcask_config c;
	bct_config(&c);
	bitcask *bc = bct_open(dir, &c);
	cr_assert_eq(bitcask_put(bc, "a", 1, "1", 1), 0);
	cr_assert_eq(bitcask_close(bc), 0);
	size_t nd;
	char **d = bct_list(dir, ".data", &nd);
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, d[0]);
	free(d[0]);
	free(d);
	/* Append a valid record behind the hint's back. */
	uint8_t rec[64];
	uint32_t n = rec_encode(rec, 1, 0, "b", 1, "2", 1);
	int fd = open(path, O_WRONLY | O_APPEND);
	cr_assert_eq(write(fd, rec, n), (ssize_t)n);
	close(fd);
	bc = bct_open(dir, &c);
	void *v;
	size_t vl;
	cr_assert_eq(bitcask_get(bc, "b", 1, &v, &vl), 0, "the appended record was missed");
	free(v);
	bitcask_close(bc);
}

Test(recovery, garbage_files_never_crash_open)
{
	bitcask_config c;
	bct_config(&c);
	srand(42);
	for (int round = 0; round < 60; round++) {
		bct_rmdir(dir);
		cr_assert_eq(mkdir(dir, 0755), 0);
		int nfiles = 1 + rand() % 3;
		for (int f = 0; f < nfiles; f++) {
			char p[4096];
			size_t len = (size_t)(rand() % 3000);
			uint8_t *b = malloc(len + DATAFILE_HDR_SIZE);
			for (size_t i = 0; i < len + DATAFILE_HDR_SIZE; i++)
				b[i] = (uint8_t)rand();
			size_t off = 0;
			if (rand() % 2) {   /* a valid header and garbage records */
				datafile_header_encode(b);
				off = 0;
			}
			snprintf(p, sizeof(p), "%s/%016x.data", dir, (unsigned)(f + 1) << 16);
			write_file(p, b + off, len + DATAFILE_HDR_SIZE - off);
			if (rand() % 2) {
				snprintf(p, sizeof(p), "%s/%016x.hint", dir, (unsigned)(f + 1) << 16);
				write_file(p, b, len / 2);
			}
			free(b);
		}
		bitcask *bc = NULL;
		char err[256];
		int rc = bitcask_open(&bc, dir, &c, err, sizeof(err));
		cr_assert(rc == 0 || rc == DKV_EVERSION, "round %d: %s", round, err);
		if (rc)
			continue;
		bct_check(bc);
		cr_assert_eq(bitcask_put(bc, "after", 5, "ok", 2), 0);
		bitcask_close(bc);
	}
}

Test(recovery, stale_temporary_and_orphan_files_removed)
{
	bitcask_config c;
	bct_config(&c);
	char p[4096];
	snprintf(p, sizeof(p), "%s/0000000000010001.data.tmp", dir);
	write_file(p, (const uint8_t *)"junk", 4);
	snprintf(p, sizeof(p), "%s/0000000000010001.hint.tmp", dir);
	write_file(p, (const uint8_t *)"junk", 4);
	snprintf(p, sizeof(p), "%s/0000000000090000.hint", dir);
	write_file(p, (const uint8_t *)"orphan", 6);
	bitcask *bc = bct_open(dir, &c);
	bitcask_close(bc);
	size_t n;
	char **t = bct_list(dir, ".tmp", &n);
	cr_assert_eq(n, 0, "temporary files left behind");
	free(t);
	t = bct_list(dir, ".hint", &n);
	cr_assert_eq(n, 0, "orphan hint left behind");
	free(t);
}

Test(recovery, unknown_version_refused)
{
	bitcask_config c;
	bct_config(&c);
	uint8_t hdr[DATAFILE_HDR_SIZE];
	datafile_header_encode(hdr);
	put_u32(hdr + 8, 99);
	put_u32(hdr + 12, crc32c(0, hdr, 12));
	char p[4096];
	snprintf(p, sizeof(p), "%s/0000000000010000.data", dir);
	write_file(p, hdr, sizeof(hdr));
	uint8_t rec[64];
	uint32_t n = rec_encode(rec, 1, 0, "b", 1, "2", 1);
	FILE *f = fopen(p, "ab");
	fwrite(rec, 1, n, f);
	fclose(f);
	/* Not the newest: a second, normal file follows. */
	bitcask *bc;
	char err[256];
	snprintf(p, sizeof(p), "%s/0000000000020000.data", dir);
	datafile_header_encode(hdr);
	write_file(p, hdr, sizeof(hdr));
	FILE *g = fopen(p, "ab");
	fwrite(rec, 1, n, g);
	fclose(g);
	cr_assert_eq(bitcask_open(&bc, dir, &c, err, sizeof(err)), DKV_EVERSION);
	cr_assert(strstr(err, "version") != NULL, "%s", err);
}

/* A data file is made without a sync (its first sync covers it), so two
 * crashes in a row can leave two headerless files: the first one's
 * removal was not durable when the second came.  Neither holds a record;
 * both go, and neither counts as corruption. */
Test(recovery, headerless_files_are_removed_wherever_they_are)
{
	bitcask_config c;
	bct_config(&c);
	char p[4096];
	uint8_t hdr[DATAFILE_HDR_SIZE], rec[64];
	uint32_t n = rec_encode(rec, 1, 0, "k", 1, "v", 1);

	snprintf(p, sizeof(p), "%s/0000000000010000.data", dir);   /* a real file */
	datafile_header_encode(hdr);
	write_file(p, hdr, sizeof(hdr));
	FILE *f = fopen(p, "ab");
	fwrite(rec, 1, n, f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/0000000000020000.data", dir);   /* empty */
	write_file(p, hdr, 0);
	snprintf(p, sizeof(p), "%s/0000000000030000.data", dir);   /* half a header */
	write_file(p, hdr, 7);

	bitcask *bc = bct_open(dir, &c);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.corrupt_records, 0);
	cr_assert_eq(st.keys, 1);
	void *v = NULL;
	size_t vl = 0;
	cr_assert_eq(bitcask_get(bc, "k", 1, &v, &vl), 0);
	cr_assert(vl == 1 && memcmp(v, "v", 1) == 0);
	free(v);
	cr_assert_eq(bitcask_close(bc), 0);
	size_t nf;
	char **names = bct_list(dir, ".data", &nf);
	for (size_t i = 0; i < nf; i++)
	{
		cr_assert(strcmp(names[i], "0000000000020000.data") != 0 &&
			  strcmp(names[i], "0000000000030000.data") != 0, "%s is still there", names[i]);
		free(names[i]);
	}
	free(names);
}

/* The same contents whether a restart reads hint files or scans. */
Test(recovery, hints_and_scans_agree)
{
	bitcask_config c;
	bct_config(&c);
	c.max_file_size = 4096;
	bitcask *bc = bct_open(dir, &c);
	bct_model m;
	bct_model_init(&m, 300);
	char key[32];
	uint8_t val[200];
	srand(7);
	for (int op = 0; op < 3000; op++) {
		uint64_t i = (uint64_t)rand() % m.n;
		size_t kl = bct_key(key, i);
		if (rand() % 4 == 0) {
			cr_assert_eq(bitcask_delete(bc, key, kl), 0);
			m.present[i] = false;
		} else {
			size_t len = (size_t)rand() % 200;
			bct_value(val, len, i, (uint64_t)op);
			cr_assert_eq(bitcask_put(bc, key, kl, val, len), 0);
			m.present[i] = true;
			m.gen[i] = (uint64_t)op;
			m.len[i] = len;
		}
		if (op == 1500)
			cr_assert_eq(bitcask_merge(bc), 0);
	}
	cr_assert_eq(bitcask_close(bc), 0);
	bc = bct_open(dir, &c);
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_gt(st.hint_loads, 0);
	cr_assert_eq(st.data_scans, 0);
	bct_assert_model(bc, &m);
	cr_assert_eq(bitcask_close(bc), 0);
	bct_unlink_all(dir, ".hint");
	bc = bct_open(dir, &c);
	bitcask_stats_get(bc, &st, NULL, NULL);
	cr_assert_eq(st.hint_loads, 0);
	cr_assert_gt(st.data_scans, 0);
	bct_assert_model(bc, &m);
	bct_check(bc);
	bitcask_close(bc);
	bct_model_free(&m);
}
