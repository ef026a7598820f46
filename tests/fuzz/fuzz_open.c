/*
 * fuzz_open.c -- libFuzzer harness for opening a store whatever its files
 * hold: recovery, hint validation, torn-tail truncation and resync, end to
 * end through bitcask_open().
 *
 * The input is split into two files of one store: the first two bytes give
 * the length of a hint file (little-endian, modulo what is left); the hint
 * file comes next and the rest is the body of the newest data file, after a
 * valid data-file header (so the fuzzer need not rediscover the magic).  Every
 * input must open (or be refused with an error, never a crash), pass
 * bitcask_check(), iterate, take a write, and reopen to the same key count.
 *
 * The store lives in a directory under /dev/shm (or $TMPDIR) made once.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitcask.h"
#include "error.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[256];

static void quiet(void *ctx, int level, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)msg;
}

static void write_file(const char *name, const uint8_t *a, size_t alen,
		       const uint8_t *b, size_t blen)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		abort();
	if ((alen && write(fd, a, alen) != (ssize_t)alen) ||
	    (blen && write(fd, b, blen) != (ssize_t)blen))
		abort();
	close(fd);
}

static void clear_dir(void)
{
	DIR *d = opendir(dir);
	if (!d)
		abort();
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static uint64_t count_keys(bitcask *bc)
{
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	return st.keys;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0]) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
		snprintf(dir, sizeof(dir), "%s/dynkv-fuzz-open-XXXXXX", base ? base : "/tmp");
		if (!mkdtemp(dir))
			abort();
	}
	clear_dir();
	size_t hint_len = 0;
	if (size >= 2) {
		hint_len = (size_t)(data[0] | data[1] << 8) % (size - 1);
		data += 2;
		size -= 2;
	}
	uint8_t hdr[DATAFILE_HDR_SIZE];
	datafile_header_encode(hdr);
	if (hint_len)
		write_file("0000000000010000.hint", data, hint_len, NULL, 0);
	write_file("0000000000010000.data", hdr, sizeof(hdr), data + hint_len, size - hint_len);

	bitcask_config c;
	bitcask_config_init(&c);
	c.sync = BITCASK_SYNC_NONE;
	c.max_file_size = 1 << 20;
	c.merge_frag_threshold = 0;
	c.merge_dead_bytes = 0;
	c.log = quiet;
	bitcask *bc;
	char err[256];
	if (bitcask_open(&bc, dir, &c, err, sizeof(err)) != 0)
		return 0;
	if (bitcask_check(bc, err, sizeof(err)) != 0) {
		fprintf(stderr, "check after open: %s\n", err);
		abort();
	}
	uint64_t keys = count_keys(bc);
	bitcask_iter *it;
	uint64_t seen = 0;
	if (bitcask_iter_open(bc, true, &it) == 0) {
		const uint8_t *k, *v;
		size_t kl, vl;
		int rc;
		while ((rc = bitcask_iter_next(it, &k, &kl, &v, &vl)) == 0)
			seen++;
		if (rc != DKV_ENOTFOUND)
			abort();
		bitcask_iter_close(it);
	}
	/* A hint is trusted at open; a record it points at may still fail its
	 * checksum when read, and is then skipped and counted. */
	bitcask_stats st;
	bitcask_stats_get(bc, &st, NULL, NULL);
	if (seen + st.read_errors != keys)
		abort();
	if (bitcask_put(bc, "fuzz", 4, "ok", 2) != 0)
		abort();
	if (bitcask_merge(bc) != 0)
		abort();
	uint64_t after = count_keys(bc);
	if (bitcask_close(bc) != 0)
		abort();
	if (bitcask_open(&bc, dir, &c, err, sizeof(err)) != 0)
		abort();
	if (count_keys(bc) != after || bitcask_check(bc, err, sizeof(err)) != 0)
		abort();
	bitcask_close(bc);
	return 0;
}
