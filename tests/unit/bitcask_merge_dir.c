/*
 * bitcask_merge_dir.c -- merge every partition store of a stopped node.
 *
 *   bitcask_merge_dir DATA_DIR
 *
 * Opens each store under DATA_DIR/partitions (which makes the store's last
 * active file immutable), runs bitcask_merge() -- every immutable file
 * rewritten, dead records and tombstones left behind -- and closes it.
 * test_deletes.sh runs it on each node's directory after the tombstones
 * are reaped, then looks for the deleted keys in the files.  Prints
 * "merged N stores"; exits 1 with the error on any failure.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "bitcask/bitcask.h"
#include "error.h"

static void quiet(void *ctx, int level, const char *msg)
{
	(void)ctx;
	if (level == 0)
		fprintf(stderr, "bitcask_merge_dir: %s\n", msg);
}

int main(int argc, char **argv)
{
	char path[4096], err[256];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if (argc != 2) {
		fprintf(stderr, "usage: bitcask_merge_dir DATA_DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/partitions", argv[1]);
	if ((d = opendir(path)) == NULL) {
		perror(path);
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		bitcask_config cfg;
		bitcask *bc;
		int rc;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/partitions/%s", argv[1], de->d_name);
		bitcask_config_init(&cfg);
		cfg.log = quiet;
		if ((rc = bitcask_open(&bc, path, &cfg, err, sizeof(err))) != 0) {
			fprintf(stderr, "bitcask_merge_dir: %s: %s\n", path, err);
			closedir(d);
			return 1;
		}
		rc = bitcask_merge(bc);
		if (bitcask_close(bc) != 0 && rc == 0)
			rc = DKV_EFAILED;
		if (rc != 0) {
			fprintf(stderr, "bitcask_merge_dir: %s: %s\n", path, dkv_strerror(rc));
			closedir(d);
			return 1;
		}
		n++;
	}
	closedir(d);
	printf("merged %u stores\n", n);
	return 0;
}
