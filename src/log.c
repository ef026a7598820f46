/* log.c -- leveled one-line logging; see log.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

struct dkv_log {
	atomic_int level;          /* dkv_log_level; changed by dkv_log_set_level from any thread */
	int fd;                    /* where lines go; fixed for the handle's life (reopen dup2()s over it) */
	bool own_fd;               /* true iff dkv_log_open opened fd and dkv_log_close closes it */
	char *path;                /* the log file (malloc'd), or NULL when writing to a given fd */
	char *tag;                 /* bracketed tag (malloc'd), or NULL */
	dkv_log_clock_fn clock;    /* wall clock in ms */
	void *clock_ctx;           /* its argument */
};

static const char *const level_names[] = {
#define DKV_LOG_NAME_(sym, name) [DKV_LOG_##sym] = name,
	DKV_LOG_LEVELS(DKV_LOG_NAME_)
#undef DKV_LOG_NAME_
};

const char *dkv_log_level_name(int level)
{
	if (level < 0 || level >= DKV_LOG_NLEVELS)
		return "?";
	return level_names[level];
}

int dkv_log_level_parse(const char *name, dkv_log_level *level)
{
	for (int i = 0; i < DKV_LOG_NLEVELS; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (dkv_log_level)i;
			return 0;
		}
	}
	return DKV_EINVAL;
}

static int64_t real_clock(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dkv_log_config_init(dkv_log_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->level = DKV_LOG_INFO;
	cfg->path = NULL;
	cfg->fd = STDERR_FILENO;
	cfg->tag = NULL;
	cfg->clock = NULL;
}

static int open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

int dkv_log_open(dkv_log **out, const dkv_log_config *cfg, char *err, size_t errlen)
{
	int rc;

	*out = NULL;
	if ((int)cfg->level < 0 || cfg->level >= DKV_LOG_NLEVELS) {
		snprintf(err, errlen, "log: bad level %d", (int)cfg->level);
		return DKV_EINVAL;
	}
	dkv_log *lg = calloc(1, sizeof(*lg));
	if (!lg) {
		snprintf(err, errlen, "log: out of memory");
		return -ENOMEM;
	}
	atomic_init(&lg->level, (int)cfg->level);
	lg->clock = cfg->clock ? cfg->clock : real_clock;
	lg->clock_ctx = cfg->clock_ctx;
	if (cfg->tag && cfg->tag[0]) {
		lg->tag = strdup(cfg->tag);
		if (!lg->tag) {
			rc = -ENOMEM;
			snprintf(err, errlen, "log: out of memory");
			goto out_free;
		}
	}
	if (cfg->path) {
		lg->path = strdup(cfg->path);
		if (!lg->path) {
			rc = -ENOMEM;
			snprintf(err, errlen, "log: out of memory");
			goto out_free;
		}
		rc = open_path(lg->path);
		if (rc < 0) {
			snprintf(err, errlen, "%s: %s", cfg->path, strerror(-rc));
			goto out_free;
		}
		lg->fd = rc;
		lg->own_fd = true;
	} else {
		lg->fd = cfg->fd;
		lg->own_fd = false;
	}
	*out = lg;
	return 0;

out_free:
	free(lg->path);
	free(lg->tag);
	free(lg);
	return rc;
}

void dkv_log_close(dkv_log *lg)
{
	if (!lg)
		return;
	if (lg->own_fd)
		close(lg->fd);
	free(lg->path);
	free(lg->tag);
	free(lg);
}

int dkv_log_reopen(dkv_log *lg, char *err, size_t errlen)
{
	if (!lg || !lg->path)
		return 0;
	int fd = open_path(lg->path);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", lg->path, strerror(-fd));
		return fd;
	}
	int rc = 0;
	/* dup2 swaps the file under lg->fd atomically: no write sees a closed
	 * or half-switched descriptor.  dup2 clears FD_CLOEXEC on its target,
	 * so set it again. */
	while (dup2(fd, lg->fd) < 0) {
		if (errno != EINTR && errno != EBUSY) {
			rc = -errno;
			snprintf(err, errlen, "%s: dup2: %s", lg->path, strerror(errno));
			break;
		}
	}
	if (rc == 0)
		fcntl(lg->fd, F_SETFD, FD_CLOEXEC);
	close(fd);
	return rc;
}

void dkv_log_set_level(dkv_log *lg, dkv_log_level level)
{
	if (lg && (int)level >= 0 && level < DKV_LOG_NLEVELS)
		atomic_store_explicit(&lg->level, (int)level, memory_order_relaxed);
}

dkv_log_level dkv_log_get_level(const dkv_log *lg)
{
	if (!lg)
		return DKV_LOG_INFO;
	return (dkv_log_level)atomic_load_explicit(&((dkv_log *)lg)->level,
						   memory_order_relaxed);
}

bool dkv_log_enabled(const dkv_log *lg, dkv_log_level level)
{
	return (int)level <= (int)dkv_log_get_level(lg);
}

/* Append s to buf[*n..cap), escaping control bytes; stop at cap.  Returns
 * false iff something did not fit. */
static bool append_escaped(char *buf, size_t *n, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c < 0x20 || c == 0x7f) {
			if (c == '\t') {
				if (*n + 1 > cap)
					return false;
				buf[(*n)++] = (char)c;
				continue;
			}
			if (*n + 4 > cap)
				return false;
			buf[(*n)++] = '\\';
			buf[(*n)++] = 'x';
			buf[(*n)++] = hex[c >> 4];
			buf[(*n)++] = hex[c & 15];
		} else {
			if (*n + 1 > cap)
				return false;
			buf[(*n)++] = (char)c;
		}
	}
	return true;
}

size_t dkv_log_format(char *buf, int64_t now_ms, dkv_log_level level,
		      const char *tag, const char *msg)
{
	/* Room kept for "...\n" at the end. */
	const size_t cap = DKV_LOG_LINE_MAX - 4;
	size_t n = 0;
	time_t secs = (time_t)(now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000);
	int ms = (int)(now_ms - (int64_t)secs * 1000);
	struct tm tm;

	if (!gmtime_r(&secs, &tm))
		memset(&tm, 0, sizeof(tm));
	char head[96];
	int hn = snprintf(head, sizeof(head), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s ",
			  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			  tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
			  dkv_log_level_name((int)level));
	if (hn < 0)
		hn = 0;
	if ((size_t)hn >= sizeof(head))
		hn = sizeof(head) - 1;
	memcpy(buf, head, (size_t)hn);
	n = (size_t)hn;

	bool fit = true;
	if (tag && tag[0]) {
		buf[n++] = '[';
		fit = append_escaped(buf, &n, cap - 2, tag);
		buf[n++] = ']';
		buf[n++] = ' ';
	}
	if (fit)
		fit = append_escaped(buf, &n, cap, msg);
	if (!fit) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n++] = '\n';
	return n;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += w;
		len -= (size_t)w;
	}
}

void dkv_log_vmsg(dkv_log *lg, dkv_log_level level, const char *fmt, va_list ap)
{
	if (!dkv_log_enabled(lg, level))
		return;
	char msg[DKV_LOG_LINE_MAX];
	char line[DKV_LOG_LINE_MAX];
	int mn = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (mn < 0)
		snprintf(msg, sizeof(msg), "(unformattable message: %s)", fmt);
	/* A message cut by vsnprintf (mn >= sizeof msg) is longer than the
	 * room left after the time and level, so dkv_log_format cuts it too and
	 * marks it with "...". */
	int64_t now = lg ? lg->clock(lg->clock_ctx) : real_clock(NULL);
	size_t len = dkv_log_format(line, now, level, lg ? lg->tag : NULL, msg);
	write_all(lg ? lg->fd : STDERR_FILENO, line, len);
}

void dkv_log_msg(dkv_log *lg, dkv_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dkv_log_vmsg(lg, level, fmt, ap);
	va_end(ap);
}

void dkv_log_opt(dkv_log *lg, dkv_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (lg == NULL)
		return;
	va_start(ap, fmt);
	dkv_log_vmsg(lg, level, fmt, ap);
	va_end(ap);
}

void dkv_log_hook(void *ctx, int level, const char *msg)
{
	if (level < 0 || level >= DKV_LOG_NLEVELS)
		level = DKV_LOG_DEBUG;
	dkv_log_msg(ctx, (dkv_log_level)level, "%s", msg);
}
