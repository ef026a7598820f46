/* test_log.c -- leveled one-line logging (src/log.c). */
#include "config.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

static char dir[64];
static char err[512];

static void make_dir(void)
{
	strcpy(dir, "/tmp/test_log.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(log, .init = make_dir, .fini = remove_dir);

/* The whole file at path, NUL-terminated; caller frees. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (n + 4096 + 1 > cap)
			buf = realloc(buf, cap *= 2);
		size_t r = fread(buf + n, 1, 4096, f);
		if (r == 0)
			break;
		n += r;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static int64_t fixed_clock(void *ctx)
{
	return *(int64_t *)ctx;
}

static dkv_log *open_at(const char *path, dkv_log_level level, const char *tag, int64_t *now)
{
	dkv_log_config c;
	dkv_log *lg;
	dkv_log_config_init(&c);
	c.path = path;
	c.level = level;
	c.tag = tag;
	if (now) {
		c.clock = fixed_clock;
		c.clock_ctx = now;
	}
	cr_assert_eq(dkv_log_open(&lg, &c, err, sizeof(err)), 0, "%s", err);
	return lg;
}

static char *path_in_dir(const char *name)
{
	char *p = malloc(128);
	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

Test(log, levels_filter)
{
	char *path = path_in_dir("a.log");
	int64_t now = 0;
	dkv_log *lg = open_at(path, DKV_LOG_WARNING, NULL, &now);
	dkv_log_error(lg, "e%d", 1);
	dkv_log_warning(lg, "w%d", 2);
	dkv_log_info(lg, "i%d", 3);
	dkv_log_debug(lg, "d%d", 4);
	cr_expect(dkv_log_enabled(lg, DKV_LOG_ERROR));
	cr_expect(dkv_log_enabled(lg, DKV_LOG_WARNING));
	cr_expect_not(dkv_log_enabled(lg, DKV_LOG_INFO));
	dkv_log_set_level(lg, DKV_LOG_DEBUG);
	cr_expect_eq(dkv_log_get_level(lg), DKV_LOG_DEBUG);
	dkv_log_debug(lg, "d%d", 5);
	dkv_log_set_level(lg, DKV_LOG_ERROR);
	dkv_log_warning(lg, "w%d", 6);
	dkv_log_error(lg, "e%d", 7);
	/* A bad level is ignored. */
	dkv_log_set_level(lg, (dkv_log_level)42);
	cr_expect_eq(dkv_log_get_level(lg), DKV_LOG_ERROR);
	dkv_log_close(lg);
	char *text = slurp(path);
	cr_expect_str_eq(text,
		"1970-01-01T00:00:00.000Z error e1\n"
		"1970-01-01T00:00:00.000Z warning w2\n"
		"1970-01-01T00:00:00.000Z debug d5\n"
		"1970-01-01T00:00:00.000Z error e7\n");
	free(text);
	free(path);
}

Test(log, line_format)
{
	char *path = path_in_dir("f.log");
	int64_t now = 1714567296789;   /* 2024-05-01T12:41:36.789Z */
	dkv_log *lg = open_at(path, DKV_LOG_INFO, "node1", &now);
	dkv_log_info(lg, "hello %s %d", "world", 42);
	now += 211;                     /* milliseconds carry into seconds */
	dkv_log_warning(lg, "two\nlines\tand \x1b esc");
	now = 1714567296005;
	dkv_log_error(lg, "%s", "");
	dkv_log_close(lg);
	char *text = slurp(path);
	cr_expect_str_eq(text,
		"2024-05-01T12:41:36.789Z info [node1] hello world 42\n"
		"2024-05-01T12:41:37.000Z warning [node1] two\\x0alines\tand \\x1b esc\n"
		"2024-05-01T12:41:36.005Z error [node1] \n");
	free(text);
	free(path);
}

Test(log, real_clock_is_iso8601_utc_ms)
{
	char buf[DKV_LOG_LINE_MAX];
	char *path = path_in_dir("c.log");
	dkv_log *lg = open_at(path, DKV_LOG_INFO, NULL, NULL);
	time_t before = time(NULL);
	dkv_log_info(lg, "x");
	dkv_log_close(lg);
	char *text = slurp(path);
	/* YYYY-MM-DDTHH:MM:SS.mmmZ info x\n */
	cr_assert_eq(strlen(text), 24 + 8, "[%s]", text);
	for (int i = 0; i < 24; i++) {
		const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
		if (shape[i] == 'd')
			cr_expect(text[i] >= '0' && text[i] <= '9', "[%s] at %d", text, i);
		else
			cr_expect_eq(text[i], shape[i], "[%s] at %d", text, i);
	}
	cr_expect_str_eq(text + 24, " info x\n");
	struct tm tm;
	gmtime_r(&before, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H", &tm);
	/* The hour may roll over between the two readings; the date rarely. */
	cr_expect_eq(strncmp(text, buf, 10), 0, "[%s] vs [%s]", text, buf);
	free(text);
	free(path);
}

Test(log, format_cuts_long_lines)
{
	char line[DKV_LOG_LINE_MAX];
	char *msg = malloc(10000);
	memset(msg, 'm', 9999);
	msg[9999] = '\0';
	size_t n = dkv_log_format(line, 0, DKV_LOG_INFO, "t", msg);
	cr_expect_leq(n, DKV_LOG_LINE_MAX);
	cr_expect_geq(n, DKV_LOG_LINE_MAX - 8);
	cr_expect_eq(memcmp(line + n - 4, "...\n", 4), 0);
	cr_expect_eq(memcmp(line, "1970-01-01T00:00:00.000Z info [t] mmm", 37), 0);
	/* Escapes that would straddle the end are dropped whole. */
	memset(msg, '\n', 9999);
	n = dkv_log_format(line, 0, DKV_LOG_INFO, NULL, msg);
	cr_expect_leq(n, DKV_LOG_LINE_MAX);
	cr_expect_eq(memcmp(line + n - 8, "\\x0a...\n", 8), 0);
	/* And through the handle, vsnprintf's cut included. */
	char *path = path_in_dir("long.log");
	int64_t now = 0;
	dkv_log *lg = open_at(path, DKV_LOG_INFO, NULL, &now);
	memset(msg, 'z', 9999);
	dkv_log_info(lg, "%s", msg);
	dkv_log_info(lg, "short");
	dkv_log_close(lg);
	char *text = slurp(path);
	char *nl = strchr(text, '\n');
	cr_assert_not_null(nl);
	cr_expect_leq((size_t)(nl - text + 1), DKV_LOG_LINE_MAX);
	cr_expect_eq(memcmp(nl - 3, "...", 3), 0);
	cr_expect_str_eq(nl + 1, "1970-01-01T00:00:00.000Z info short\n");
	free(text);
	free(path);
	free(msg);
}

Test(log, appends_to_existing_file)
{
	char *path = path_in_dir("app.log");
	FILE *f = fopen(path, "w");
	fputs("old line\n", f);
	fclose(f);
	int64_t now = 0;
	dkv_log *lg = open_at(path, DKV_LOG_INFO, NULL, &now);
	dkv_log_info(lg, "new");
	dkv_log_close(lg);
	char *text = slurp(path);
	cr_expect_str_eq(text, "old line\n1970-01-01T00:00:00.000Z info new\n");
	free(text);
	free(path);
}

Test(log, reopen_after_rotation)
{
	char *path = path_in_dir("r.log");
	char *rotated = path_in_dir("r.log.1");
	int64_t now = 0;
	dkv_log *lg = open_at(path, DKV_LOG_INFO, NULL, &now);
	dkv_log_info(lg, "before");
	cr_assert_eq(rename(path, rotated), 0);
	dkv_log_info(lg, "still old");
	cr_assert_eq(dkv_log_reopen(lg, err, sizeof(err)), 0, "%s", err);
	dkv_log_info(lg, "after");
	/* The descriptor is still close-on-exec after dup2. */
	cr_expect_eq(access(path, F_OK), 0);

	/* A failing reopen keeps the file in use. */
	char *sub = path_in_dir("sub");
	cr_assert_eq(mkdir(sub, 0755), 0);
	dkv_log_close(lg);
	char *inner = malloc(160);
	snprintf(inner, 160, "%s/x.log", sub);
	lg = open_at(inner, DKV_LOG_INFO, NULL, &now);
	dkv_log_info(lg, "one");
	cr_assert_eq(unlink(inner), 0);
	cr_assert_eq(rmdir(sub), 0);
	int rc = dkv_log_reopen(lg, err, sizeof(err));
	cr_expect_eq(rc, -ENOENT);
	char want[256];
	snprintf(want, sizeof(want), "%s: %s", inner, strerror(ENOENT));
	cr_expect_str_eq(err, want);
	dkv_log_info(lg, "two");   /* to the unlinked file; must not crash */
	dkv_log_close(lg);

	char *old = slurp(rotated), *cur = slurp(path);
	cr_expect_str_eq(old, "1970-01-01T00:00:00.000Z info before\n"
			      "1970-01-01T00:00:00.000Z info still old\n");
	cr_expect_str_eq(cur, "1970-01-01T00:00:00.000Z info after\n");
	free(old);
	free(cur);
	free(inner);
	free(sub);
	free(rotated);
	free(path);
}

Test(log, reopen_sets_cloexec)
{
	char *path = path_in_dir("ce.log");
	dkv_log *lg = open_at(path, DKV_LOG_INFO, NULL, NULL);
	cr_assert_eq(dkv_log_reopen(lg, err, sizeof(err)), 0);
	/* Find the descriptor: the lowest one open on our file. */
	struct stat want, st;
	cr_assert_eq(stat(path, &want), 0);
	int found = -1;
	for (int fd = 3; fd < 1024 && found < 0; fd++)
		if (fstat(fd, &st) == 0 && st.st_ino == want.st_ino && st.st_dev == want.st_dev)
			found = fd;
	cr_assert_geq(found, 0);
	cr_expect(fcntl(found, F_GETFD) & FD_CLOEXEC);
	dkv_log_close(lg);
	free(path);
}

Test(log, reopen_without_path_is_a_no_op)
{
	int fds[2];
	cr_assert_eq(pipe(fds), 0);
	dkv_log_config c;
	dkv_log *lg;
	int64_t now = 0;
	dkv_log_config_init(&c);
	c.fd = fds[1];
	c.clock = fixed_clock;
	c.clock_ctx = &now;
	cr_assert_eq(dkv_log_open(&lg, &c, err, sizeof(err)), 0);
	cr_expect_eq(dkv_log_reopen(lg, err, sizeof(err)), 0);
	cr_expect_eq(dkv_log_reopen(NULL, err, sizeof(err)), 0);
	dkv_log_info(lg, "p");
	dkv_log_close(lg);
	/* A borrowed descriptor stays open. */
	cr_expect_neq(fcntl(fds[1], F_GETFD), -1);
	close(fds[1]);
	char buf[128] = { 0 };
	cr_expect_eq(read(fds[0], buf, sizeof(buf) - 1), 32);
	cr_expect_str_eq(buf, "1970-01-01T00:00:00.000Z info p\n");
	close(fds[0]);
}

Test(log, open_errors)
{
	dkv_log_config c;
	dkv_log *lg = (dkv_log *)&c;
	dkv_log_config_init(&c);
	c.path = "/nonexistent/dir/x.log";
	cr_expect_eq(dkv_log_open(&lg, &c, err, sizeof(err)), -ENOENT);
	cr_expect_null(lg);
	cr_expect_str_eq(err, "/nonexistent/dir/x.log: No such file or directory");
	c.path = NULL;
	c.level = (dkv_log_level)7;
	cr_expect_eq(dkv_log_open(&lg, &c, err, sizeof(err)), DKV_EINVAL);
	dkv_log_close(NULL);
}

Test(log, null_handle_and_hook_write_to_stderr)
{
	char *path = path_in_dir("stderr.log");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	dkv_log_info(NULL, "via null");
	dkv_log_debug(NULL, "not shown: the default level is info");
	cr_expect_eq(dkv_log_get_level(NULL), DKV_LOG_INFO);
	dkv_log_hook(NULL, 1, "from bitcask");
	dkv_log_hook(NULL, 9, "odd level is debug: filtered");
	char *text = slurp(path);
	cr_expect_not_null(strstr(text, "Z info via null\n"), "%s", text);
	cr_expect_not_null(strstr(text, "Z warning from bitcask\n"), "%s", text);
	cr_expect_null(strstr(text, "not shown"));
	cr_expect_null(strstr(text, "odd level"));
	free(text);
	free(path);
}

Test(log, hook_with_handle)
{
	char *path = path_in_dir("hook.log");
	int64_t now = 0;
	dkv_log *lg = open_at(path, DKV_LOG_DEBUG, "bc", &now);
	dkv_log_hook(lg, 0, "e");
	dkv_log_hook(lg, -3, "low");
	dkv_log_close(lg);
	char *text = slurp(path);
	cr_expect_str_eq(text, "1970-01-01T00:00:00.000Z error [bc] e\n"
			       "1970-01-01T00:00:00.000Z debug [bc] low\n");
	free(text);
	free(path);
}

Test(log, level_names)
{
	dkv_log_level l;
	const char *names[] = { "error", "warning", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		cr_expect_str_eq(dkv_log_level_name(i), names[i]);
		cr_expect_eq(dkv_log_level_parse(names[i], &l), 0);
		cr_expect_eq((int)l, i);
	}
	cr_expect_str_eq(dkv_log_level_name(-1), "?");
	cr_expect_str_eq(dkv_log_level_name(4), "?");
	cr_expect_eq(dkv_log_level_parse("INFO", &l), DKV_EINVAL);
	cr_expect_eq(dkv_log_level_parse("", &l), DKV_EINVAL);
}

/* ---- threads -------------------------------------------------------------- */

#define NTHREADS 8
#define NLINES 2000

struct writer {
	dkv_log *lg;    /* shared handle */
	int id;         /* thread number */
};

static void *write_lines(void *arg)
{
	struct writer *w = arg;
	char pad[301];
	memset(pad, 'a' + w->id, 300);
	pad[300] = '\0';
	for (int i = 0; i < NLINES; i++)
		dkv_log_info(w->lg, "t%d n%05d %s end", w->id, i, pad);
	return NULL;
}

/* Lines from many threads, with a reopen in the middle, never interleave. */
Test(log, concurrent_lines_are_whole)
{
	char *path = path_in_dir("mt.log");
	char *rotated = path_in_dir("mt.log.1");
	int64_t now = 0;
	dkv_log *lg = open_at(path, DKV_LOG_INFO, NULL, &now);
	pthread_t th[NTHREADS];
	struct writer w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct writer){ lg, i };
		cr_assert_eq(pthread_create(&th[i], NULL, write_lines, &w[i]), 0);
	}
	usleep(2000);
	cr_assert_eq(rename(path, rotated), 0);
	cr_assert_eq(dkv_log_reopen(lg, err, sizeof(err)), 0, "%s", err);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	dkv_log_close(lg);

	int count[NTHREADS] = { 0 };
	int next[NTHREADS] = { 0 };
	const char *files[2] = { rotated, path };
	for (int f = 0; f < 2; f++) {
		char *text = slurp(files[f]);
		char *save = NULL;
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			int id, n;
			char pad[400], end[8];
			cr_assert_eq(sscanf(line, "1970-01-01T00:00:00.000Z info t%d n%d %399s %7s",
					    &id, &n, pad, end), 4, "bad line [%s]", line);
			cr_assert(id >= 0 && id < NTHREADS);
			cr_assert_eq(strlen(pad), 300, "[%s]", line);
			for (int k = 0; k < 300; k++)
				cr_assert_eq(pad[k], 'a' + id, "[%s]", line);
			cr_assert_str_eq(end, "end");
			/* Each thread's lines in order, none lost, across both files. */
			cr_assert_eq(n, next[id], "thread %d line %d after %d", id, n, next[id]);
			next[id]++;
			count[id]++;
		}
		free(text);
	}
	for (int i = 0; i < NTHREADS; i++)
		cr_expect_eq(count[i], NLINES, "thread %d", i);
	free(rotated);
	free(path);
}
