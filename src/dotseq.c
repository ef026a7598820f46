#include "config.h"
/*
 * dotseq.c -- the persisted counter sequence.  See dotseq.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dkv_file.h"
#include "dotseq.h"
#include "error.h"
#include "siphash.h"

#define DOTS_FORMAT 1u
#define DOTS_MAX    256   /* longest DOTS we read */

struct dotseq {
	char *path;          /* DIR/DOTS */
	uint64_t next;       /* smallest counter not given out */
	uint64_t reserved;   /* on disk: nothing >= reserved given out */
	uint64_t epoch;      /* this process's (the last one recorded + 1) */
};

static int parse(dotseq *ds, const char *buf, char *err, size_t errlen)
{
	unsigned fmt = 0;
	uint64_t res = 0, epoch = 0;
	bool have_fmt = false, have_res = false;
	const char *p = buf;

	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[DOTS_MAX + 1];
		char tail;

		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (eol != NULL);
		if (len == 0)
			continue;
		if (sscanf(line, "format = %u%c", &fmt, &tail) == 1)
			have_fmt = true;
		else if (sscanf(line, "reserved = %" SCNu64 "%c", &res, &tail) == 1)
			have_res = true;
		else if (sscanf(line, "epoch = %" SCNu64 "%c", &epoch, &tail) == 1)
			;   /* absent in files written before epochs: 0 */
		else {
			snprintf(err, errlen, "%s: unreadable line \"%.60s\"", ds->path, line);
			return DKV_ECORRUPT;
		}
	}
	if (!have_fmt || !have_res || res == 0) {
		snprintf(err, errlen, "%s: incomplete (format and a reserved mark above 0 "
			 "expected)", ds->path);
		return DKV_ECORRUPT;
	}
	if (fmt != DOTS_FORMAT) {
		snprintf(err, errlen, "%s: format %u, this program reads format %u", ds->path,
			 fmt, DOTS_FORMAT);
		return DKV_EVERSION;
	}
	if (epoch == UINT64_MAX) {
		snprintf(err, errlen, "%s: epoch %" PRIu64 " cannot grow", ds->path, epoch);
		return DKV_ECORRUPT;
	}
	ds->next = ds->reserved = res;
	ds->epoch = epoch + 1;
	return 0;
}

int dotseq_open(dotseq **out, const char *dir, char *err, size_t errlen)
{
	dotseq *ds = calloc(1, sizeof(*ds));
	char buf[DOTS_MAX + 1];
	size_t len;
	FILE *f;
	int rc = 0;

	*out = NULL;
	if (ds == NULL || (ds->path = malloc(strlen(dir) + sizeof("/DOTS"))) == NULL) {
		free(ds);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	sprintf(ds->path, "%s/DOTS", dir);
	ds->next = 1;
	ds->epoch = 1;
	f = fopen(ds->path, "re");
	if (f == NULL && errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", ds->path, strerror(errno));
	} else if (f != NULL) {
		len = fread(buf, 1, sizeof(buf), f);
		if (ferror(f)) {
			rc = -EIO;
			snprintf(err, errlen, "%s: read error", ds->path);
		} else if (len > DOTS_MAX) {
			rc = DKV_ECORRUPT;
			snprintf(err, errlen, "%s: longer than %d bytes", ds->path, DOTS_MAX);
		} else {
			buf[len] = '\0';
			if (memchr(buf, '\0', len) != NULL) {
				rc = DKV_ECORRUPT;
				snprintf(err, errlen, "%s: not text", ds->path);
			} else
				rc = parse(ds, buf, err, errlen);
		}
		fclose(f);
	}
	if (rc != 0) {
		dotseq_free(ds);
		return rc;
	}
	*out = ds;
	return 0;
}

void dotseq_free(dotseq *ds)
{
	if (ds == NULL)
		return;
	free(ds->path);
	free(ds);
}

uint64_t dotseq_next(const dotseq *ds)
{
	return ds->next;
}

uint64_t dotseq_reserved(const dotseq *ds)
{
	return ds->reserved;
}

uint64_t dotseq_epoch(const dotseq *ds)
{
	return ds->epoch;
}

uint64_t dotseq_actor(const dotseq *ds, uint64_t node_actor)
{
	static const siphash_key key = { 0x6470656b6e79643aull, 0x3168636f70652073ull };
	uint8_t in[16];
	uint64_t a;

	for (int i = 0; i < 8; i++) {
		in[i] = (uint8_t)(node_actor >> (8 * i));
		in[8 + i] = (uint8_t)(ds->epoch >> (8 * i));
	}
	a = siphash24(&key, in, sizeof(in));
	return a != 0 ? a : 1;
}

int dotseq_take(dotseq *ds, uint64_t c)
{
	if (c < ds->next)
		c = ds->next;   /* never moves back */
	if (c == UINT64_MAX)
		return -EOVERFLOW;
	if (c >= ds->reserved) {
		uint64_t res = c + 1 > UINT64_MAX - DOTSEQ_BLOCK ? UINT64_MAX : c + 1 + DOTSEQ_BLOCK;
		char buf[128];
		int len = snprintf(buf, sizeof(buf), "format = %u\nreserved = %" PRIu64 "\nepoch = %"
				   PRIu64 "\n", DOTS_FORMAT, res, ds->epoch);
		int rc = dkv_file_replace(ds->path, buf, (size_t)len);

		if (rc != 0)
			return rc;
		ds->reserved = res;
	}
	ds->next = c + 1;
	return 0;
}
