/*
 * log.h -- leveled logging, one line per message, to stderr, a descriptor or
 * a file.
 *
 * A dkv_log is a handle, not a global: the node struct owns one, and tests
 * can run several nodes in one process each logging to its own file (with
 * its own tag).  Passing NULL for the handle is allowed everywhere and means
 * "stderr, level info, no tag"; it is for code that runs before a node
 * exists (parsing the command line) and for tools.
 *
 * THE LINE
 *     2024-05-01T12:34:56.789Z warning [node1] disk is 91% full
 *   The time is UTC, ISO 8601 with milliseconds; then the level name; then
 *   the tag in brackets if one is set; then the message.  Control bytes in
 *   the message (a newline from a peer's error text, say) are written as
 *   \xNN, so a message is always exactly one line and a reader can split
 *   the log on '\n'.  A line longer than DKV_LOG_LINE_MAX bytes is cut and
 *   ends in "...".
 *
 * THREADS
 *   Every function may be called from any thread, concurrently, except
 *   dkv_log_close (which no other call may overlap).  Each line is formatted
 *   on the stack and written with one write(2): lines from different threads
 *   never interleave (a write to a pipe of at most PIPE_BUF = 4096 bytes is
 *   atomic; so in practice is one to a regular file opened O_APPEND).  The
 *   level is an atomic, so dkv_log_set_level may run while others log.  No
 *   lock is taken: dkv_log_reopen opens the new file and dup2()s it over the
 *   descriptor in use, which the kernel does atomically, so a concurrent
 *   write goes whole to the old file or whole to the new one.
 *
 * REOPEN (SIGHUP)
 *   With a path set, dkv_log_reopen() reopens it (O_APPEND|O_CREAT, mode
 *   0644) so that logrotate can move the old file away.  Without a path it
 *   does nothing.  It is not async-signal-safe in spirit (it formats an error
 *   message): call it from the event loop's signal callback, not from a raw
 *   signal handler.
 *
 * OWNERSHIP
 *   dkv_log_open copies the path and tag.  A descriptor given in the config
 *   is borrowed: dkv_log_close does not close it (a path it opened itself, it
 *   does close).  Writing through a descriptor bypasses stdio: if the caller
 *   also writes to it through a FILE *, it should fflush first.
 */
#ifndef DKV_LOG_H
#define DKV_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The levels, most severe first; the numbers match bitcask_log_fn's. */
#define DKV_LOG_LEVELS(X) \
	X(ERROR,   "error")   \
	X(WARNING, "warning") \
	X(INFO,    "info")    \
	X(DEBUG,   "debug")

typedef enum dkv_log_level {
#define DKV_LOG_ENUM_(sym, name) DKV_LOG_##sym,
	DKV_LOG_LEVELS(DKV_LOG_ENUM_)
#undef DKV_LOG_ENUM_
	DKV_LOG_NLEVELS
} dkv_log_level;

/* Longest line written, newline included.  PIPE_BUF, so that a line to a
 * pipe is one atomic write; a long message is cut. */
#define DKV_LOG_LINE_MAX 4096

typedef struct dkv_log dkv_log;

/* Wall clock in milliseconds since the epoch; tests pin it. */
typedef int64_t (*dkv_log_clock_fn)(void *ctx);

typedef struct dkv_log_config {
	dkv_log_level level;       /* write messages at this level and more severe */
	const char *path;          /* log file (appended to, reopened by dkv_log_reopen); NULL = use fd */
	int fd;                    /* descriptor written when path is NULL (borrowed); default 2 */
	const char *tag;           /* written in brackets after the level (e.g. the node id); NULL = none */
	dkv_log_clock_fn clock;    /* NULL = clock_gettime(CLOCK_REALTIME) */
	void *clock_ctx;           /* passed to clock */
} dkv_log_config;

/* Defaults: level info, stderr, no tag, the real clock. */
void dkv_log_config_init(dkv_log_config *cfg);

/* Open a log per cfg.  0 and *out, or -errno (with the path and reason in
 * err) if the file cannot be opened, or DKV_EINVAL for a bad level. */
int dkv_log_open(dkv_log **out, const dkv_log_config *cfg, char *err, size_t errlen);

/* Close the file if dkv_log_open opened it, and free the handle.  NULL is a no-op. */
void dkv_log_close(dkv_log *lg);

/* Reopen the path (see REOPEN above).  0, or -errno with a reason in err;
 * on failure the old file stays in use. */
int dkv_log_reopen(dkv_log *lg, char *err, size_t errlen);

void dkv_log_set_level(dkv_log *lg, dkv_log_level level);
dkv_log_level dkv_log_get_level(const dkv_log *lg);

/* True iff a message at level would be written (to skip costly formatting). */
bool dkv_log_enabled(const dkv_log *lg, dkv_log_level level);

/* Log one message.  Errors writing it are ignored: a full disk must not stop
 * the node, and there is nowhere left to report them. */
void dkv_log_msg(dkv_log *lg, dkv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void dkv_log_vmsg(dkv_log *lg, dkv_log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* As dkv_log_msg, but a NULL lg means "no log" (modules whose owner may
 * give them none, as tests do), where dkv_log_msg writes to stderr. */
void dkv_log_opt(dkv_log *lg, dkv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define dkv_log_error(lg, ...)   dkv_log_msg((lg), DKV_LOG_ERROR, __VA_ARGS__)
#define dkv_log_warning(lg, ...) dkv_log_msg((lg), DKV_LOG_WARNING, __VA_ARGS__)
#define dkv_log_info(lg, ...)    dkv_log_msg((lg), DKV_LOG_INFO, __VA_ARGS__)
#define dkv_log_debug(lg, ...)   dkv_log_msg((lg), DKV_LOG_DEBUG, __VA_ARGS__)

/* Adapter with bitcask_log_fn's signature: ctx is a dkv_log * (or NULL),
 * level 0..3 as DKV_LOG_*; out-of-range levels are logged as debug. */
void dkv_log_hook(void *ctx, int level, const char *msg);

/* "error", "warning", "info", "debug"; "?" for anything else. */
const char *dkv_log_level_name(int level);

/* Parse a level name (exact, lower case).  0 and *level, or DKV_EINVAL. */
int dkv_log_level_parse(const char *name, dkv_log_level *level);

/* Format the line for a message into buf (at most DKV_LOG_LINE_MAX bytes,
 * ending in '\n', not NUL-terminated) and return its length.  What
 * dkv_log_msg writes; exposed for tests. */
size_t dkv_log_format(char *buf, int64_t now_ms, dkv_log_level level,
		      const char *tag, const char *msg);

#endif /* DKV_LOG_H */
