/*
 * bctest.h -- helpers shared by the storage engine's test suites: temporary
 * directories, a quiet logger, and a model (a plain key -> value map) that a
 * test can compare a store with.
 */
#ifndef DKV_TESTS_BCTEST_H
#define DKV_TESTS_BCTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bitcask.h"

/* A fresh empty directory: under $DKV_TEST_TMPDIR if set, else /dev/shm
 * (fsync is free there), else $TMPDIR or /tmp.  Caller frees with
 * bct_rmdir() then free(). */
char *bct_mkdtemp(void);
/* The same on a real disk ($TMPDIR or /var/tmp), for tests that measure
 * what fsync costs. */
char *bct_mkdtemp_disk(void);
/* rm -rf dir (no shell). */
void bct_rmdir(const char *dir);

/* A config for tests: small files, sync none, no automatic merges, quiet log. */
void bct_config(bitcask_config *cfg);
/* Open or fail the test with the error message. */
bitcask *bct_open(const char *dir, const bitcask_config *cfg);
/* Assert bitcask_check() passes. */
void bct_check(bitcask *bc);

/* Deterministic key and value number i: "k<i>" and a value of len bytes
 * derived from i and gen. */
size_t bct_key(char *buf, uint64_t i);
/* The index of a key made by bct_key from its (not NUL-terminated) bytes. */
unsigned long bct_key_index(const uint8_t *key, size_t key_len);
void bct_value(uint8_t *buf, size_t len, uint64_t i, uint64_t gen);

/* The model: value per key index, or absent. */
typedef struct bct_model {
	size_t n;               /* key indexes 0..n-1 */
	bool *present;
	uint64_t *gen;          /* generation of the value (bct_value's gen) */
	size_t *len;            /* value length */
} bct_model;
void bct_model_init(bct_model *m, size_t n);
void bct_model_free(bct_model *m);
/* Assert the store holds exactly the model's keys and values (by gets, and
 * by a full iteration). */
void bct_assert_model(bitcask *bc, const bct_model *m);

/* Names of the files in dir ending with suffix, sorted; caller frees each
 * and the array. */
char **bct_list(const char *dir, const char *suffix, size_t *n);
/* How many files in dir end with suffix. */
size_t bct_count(const char *dir, const char *suffix);
/* Unlink every file in dir whose name ends with suffix; returns how many. */
size_t bct_unlink_all(const char *dir, const char *suffix);
/* Size of a file, or -1. */
long long bct_file_size(const char *path);

#endif /* DKV_TESTS_BCTEST_H */
