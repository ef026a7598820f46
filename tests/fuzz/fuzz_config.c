/*
 * fuzz_config.c -- libFuzzer harness for the dynkv.conf parser and the
 * command-line parser (src/dkv_config.c).
 *
 * The input is given whole to dkv_config_load_buffer() as a config file, on
 * a config holding the defaults.  Then it is cut at newlines into at most 64
 * arguments and given to dkv_config_parse_args().  Besides "no crash, no
 * sanitizer report, no leak", each answer must obey:
 *   - the return is 0 or DKV_EINVAL (memory aside), and an error names the
 *     file ("fuzz.conf:" or "fuzz.conf: larger ...") or is non-empty;
 *   - a failed load leaves every key as it was (the load is all or nothing);
 *   - after a successful load every key's value, formatted by
 *     dkv_config_get(), is accepted back by dkv_config_set() and formats the
 *     same: what the parser stores, it can print and read again;
 *   - dkv_config_check() answers 0 or DKV_EINVAL.
 * A broken property abort()s, which libFuzzer reports as a crash.
 *
 * Build (from the source tree; config.h is autoconf's):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -I<builddir> -Isrc \
 *     tests/fuzz/fuzz_config.c src/dkv_config.c src/log.c src/error.c
 * Seeds are in tests/fuzz/corpus/config/.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkv_config.h"
#include "error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_config: property broken: %s\n", what);
		abort();
	}
}

/* Every key of a formats as in b. */
static bool same(const dkv_config *a, const dkv_config *b)
{
	static char va[8192], vb[8192];
	dkv_config_key k;
	for (size_t i = 0; dkv_config_key_at(i, &k); i++) {
		if (dkv_config_get(a, k.name, va, sizeof(va)) != 0 ||
		    dkv_config_get(b, k.name, vb, sizeof(vb)) != 0 ||
		    strcmp(va, vb) != 0)
			return false;
	}
	return true;
}

static void round_trip(const dkv_config *cfg)
{
	static char v[8192], v2[8192];
	char err[512];
	dkv_config_key k;
	dkv_config c2;
	check(dkv_config_init(&c2) == 0, "init");
	for (size_t i = 0; dkv_config_key_at(i, &k); i++) {
		check(dkv_config_get(cfg, k.name, v, sizeof(v)) == 0, "get");
		check(dkv_config_set(&c2, k.name, v, err, sizeof(err)) == 0, "set of a got value");
		check(dkv_config_get(&c2, k.name, v2, sizeof(v2)) == 0, "get again");
		check(strcmp(v, v2) == 0, "value formats the same after set");
	}
	dkv_config_free(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dkv_config cfg, before;
	char err[1024];
	int rc;

	check(dkv_config_init(&cfg) == 0, "init");
	check(dkv_config_copy(&before, &cfg) == 0, "copy");
	err[0] = '\0';
	rc = dkv_config_load_buffer(&cfg, "fuzz.conf", data, size, err, sizeof(err));
	check(rc == 0 || rc == DKV_EINVAL, "load returns 0 or DKV_EINVAL");
	if (rc != 0) {
		check(strncmp(err, "fuzz.conf:", 10) == 0, "error names the file and line");
		check(same(&cfg, &before), "failed load leaves the config as it was");
	} else {
		round_trip(&cfg);
		rc = dkv_config_check(&cfg, err, sizeof(err));
		check(rc == 0 || rc == DKV_EINVAL, "check returns 0 or DKV_EINVAL");
	}
	dkv_config_free(&before);
	dkv_config_free(&cfg);

	/* The same bytes as a command line, one argument per line. */
	enum { MAXARGS = 64 };
	char *copy = malloc(size + 1);
	char *argv[MAXARGS + 1];
	int argc = 0;
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	static char prog[] = "dynkvd";
	argv[argc++] = prog;
	for (char *p = copy; argc < MAXARGS && p <= copy + size;) {
		char *nl = memchr(p, '\n', (size_t)(copy + size - p));
		if (nl)
			*nl = '\0';
		argv[argc++] = p;
		if (!nl)
			break;
		p = nl + 1;
	}
	argv[argc] = NULL;
	dkv_config_cmdline cl;
	check(dkv_config_init(&cfg) == 0, "init");
	err[0] = '\0';
	rc = dkv_config_parse_args(&cfg, argc, argv, &cl, err, sizeof(err));
	check(rc == 0 || rc == DKV_EINVAL, "parse_args returns 0 or DKV_EINVAL");
	check(rc == 0 || err[0] != '\0', "an option error has a message");
	if (rc == 0)
		round_trip(&cfg);
	dkv_config_free(&cfg);
	free(copy);
	return 0;
}
