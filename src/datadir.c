#include "config.h"
/*
 * datadir.c -- the data directory's lock and NODE file.  See datadir.h.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "datadir.h"
#include "dkv_file.h"
#include "error.h"

#define NODE_FORMAT      1
#define NODE_FILE        "NODE"
#define LOCK_FILE        "LOCK"

struct datadir {
	char *path;        /* the directory (owned) */
	int lock_fd;       /* holds the flock on LOCK */
};

static int take_lock(datadir *d, char *err, size_t errlen)
{
	char path[4200], holder[32];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", d->path, LOCK_FILE);
	rc = dkv_file_lock(path, &d->lock_fd, holder, sizeof(holder));
	if (rc == DKV_ELOCKED)
		snprintf(err, errlen, "data directory %s is in use by another dynkvd (pid %s)",
			 d->path, holder);
	else if (rc != 0)
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	return rc;
}

int datadir_open(datadir **out, const char *path, char *err, size_t errlen)
{
	datadir *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (d == NULL || (d->path = strdup(path)) == NULL) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->lock_fd = -1;
	rc = dkv_mkdir_p(path);
	if (rc != 0)
		snprintf(err, errlen, "data directory %s: %s", path, strerror(-rc));
	else
		rc = take_lock(d, err, errlen);
	if (rc != 0) {
		datadir_close(d);
		return rc;
	}
	*out = d;
	return 0;
}

const char *datadir_path(const datadir *d)
{
	return d->path;
}

void datadir_close(datadir *d)
{
	if (d == NULL)
		return;
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	free(d->path);
	free(d);
}

/* Parse NODE.  0, -errno (-ENOENT: there is none), or DKV_ECORRUPT /
 * DKV_EVERSION with the reason in err. */
static int read_meta(const char *path, datadir_identity *m, char *err, size_t errlen)
{
	char line[512];
	unsigned lineno = 0, format = 0;
	bool have_actor = false, have_ring = false, have_n = false, have_id = false;
	FILE *f = fopen(path, "re");

	memset(m, 0, sizeof(*m));
	if (f == NULL)
		return -errno;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq, *k, *v, *end;
		unsigned long long x;

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#' || line[0] == '\0')
			continue;
		eq = strstr(line, " = ");
		if (eq == NULL)
			goto bad;
		*eq = '\0';
		k = line;
		v = eq + 3;
		if (strcmp(k, "node_id") == 0) {
			if (strlen(v) >= sizeof(m->node_id) || v[0] == '\0')
				goto bad;
			strcpy(m->node_id, v);
			have_id = true;
			continue;
		}
		errno = 0;
		x = strtoull(v, &end, 10);
		if (errno != 0 || end == v || *end != '\0')
			goto bad;
		if (strcmp(k, "format") == 0)
			format = (unsigned)x;
		else if (strcmp(k, "actor") == 0) {
			m->actor = x;
			have_actor = true;
		} else if (strcmp(k, "ring_size") == 0 && x >= 64 && x <= 1024 && (x & (x - 1)) == 0) {
			m->ring_size = (uint32_t)x;
			have_ring = true;
		} else if (strcmp(k, "n_val") == 0 && x >= 1 && x <= DKV_CONFIG_N_MAX) {
			m->n_val = (uint32_t)x;
			have_n = true;
		} else
			goto bad;
	}
	fclose(f);
	if (format != NODE_FORMAT) {
		snprintf(err, errlen, "%s: format %u is not one this dynkvd reads (%d)",
			 path, format, NODE_FORMAT);
		return DKV_EVERSION;
	}
	if (!have_actor || !have_ring || !have_n || !have_id) {
		snprintf(err, errlen, "%s: incomplete (needs node_id, actor, ring_size, n_val)", path);
		return DKV_ECORRUPT;
	}
	return 0;
bad:
	fclose(f);
	snprintf(err, errlen, "%s:%u: not a valid line", path, lineno);
	return DKV_ECORRUPT;
}

int datadir_identity_load(datadir *d, const dkv_config *cfg, datadir_identity *id,
			  char *err, size_t errlen)
{
	char path[4200];
	const char *want_id = cfg->node_id[0] ? cfg->node_id : cfg->listen;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", d->path, NODE_FILE);
	rc = read_meta(path, id, err, errlen);
	if (rc == -ENOENT) {
		memset(id, 0, sizeof(*id));
		snprintf(id->node_id, sizeof(id->node_id), "%s", want_id);
		id->ring_size = cfg->ring_size;
		id->n_val = cfg->n_val;
		do {
			if (getrandom(&id->actor, sizeof(id->actor), 0) != sizeof(id->actor)) {
				snprintf(err, errlen, "getrandom: %s", strerror(errno));
				return -errno;
			}
		} while (id->actor == 0);
		id->created = true;
		return 0;
	}
	if (rc < 0 && rc > -4096) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (rc != 0)
		return rc;
	if (cfg->ring_size != id->ring_size && dkv_config_is_set(cfg, "ring_size")) {
		snprintf(err, errlen,
			 "ring_size %u conflicts with ring_size %u recorded in %s when the "
			 "node was created; ring_size cannot change",
			 cfg->ring_size, id->ring_size, path);
		return DKV_EINVAL;
	}
	if (cfg->n_val != id->n_val && dkv_config_is_set(cfg, "n_val")) {
		snprintf(err, errlen,
			 "n_val %u conflicts with n_val %u recorded in %s when the "
			 "node was created; n_val cannot change",
			 cfg->n_val, id->n_val, path);
		return DKV_EINVAL;
	}
	if (strcmp(want_id, id->node_id) != 0 && dkv_config_is_set(cfg, "node_id")) {
		snprintf(err, errlen, "node_id \"%s\" conflicts with node_id \"%s\" recorded in %s",
			 want_id, id->node_id, path);
		return DKV_EINVAL;
	}
	return 0;
}

int datadir_identity_record(datadir *d, datadir_identity *id, char *err, size_t errlen)
{
	char path[4200], buf[1024];
	int len, rc;

	if (!id->created)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", d->path, NODE_FILE);
	len = snprintf(buf, sizeof(buf),
		       "# dynkv node identity: written once, when the node was created.\n"
		       "# ring_size and n_val are the cluster's and never change.\n"
		       "format = %d\nnode_id = %s\nactor = %" PRIu64 "\n"
		       "ring_size = %" PRIu32 "\nn_val = %" PRIu32 "\n",
		       NODE_FORMAT, id->node_id, id->actor, id->ring_size, id->n_val);
	rc = dkv_file_replace(path, buf, (size_t)len);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	id->created = false;
	return 0;
}
