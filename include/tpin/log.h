/* SPDX-License-Identifier: MIT */
#ifndef TPIN_LOG_H
#define TPIN_LOG_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct tpin_err;

/*
 * The access log: one line per connection, plain "key=value" or JSON, and
 * the occasional event line. Workers on several threads write to one log; a
 * line is written whole under a lock, so lines never interleave.
 */
struct tpin_log;

enum tpin_log_format {
	TPIN_LOG_PLAIN,
	TPIN_LOG_JSON,
};

/* What one connection did, as strings already formatted by the relay. */
struct tpin_log_entry {
	const char *client;	  /* "addr:port" of the peer that connected */
	const char *original_dst; /* where it meant to go */
	const char *upstream;	  /* where the proxy connected, "-" if nowhere */
	uint64_t bytes_up;	  /* client to upstream */
	uint64_t bytes_down;	  /* upstream to client */
	uint64_t duration_ms;
	const char *result; /* how it ended: "ok", "upstream_refused", ... */
	/* "inbound" (into the pod) or "outbound" (the app's own); NULL: not said. */
	const char *direction;
};

/*
 * tpin_log_format_parse - "plain" or "json". Returns 0 or -EINVAL with a
 * message naming the value in @err.
 */
int tpin_log_format_parse(enum tpin_log_format *fmt, const char *text, struct tpin_err *err);

/*
 * tpin_log_open - log to @path (appending), or to standard output when @path
 * is NULL. Returns 0, -ENOMEM, or the -errno of opening the file.
 */
int tpin_log_open(struct tpin_log **out, const char *path, enum tpin_log_format fmt);

/*
 * tpin_log_reopen - reopen the file after logrotate moved it. The old file
 * stays in use if the new one cannot be opened. Returns 0 or -errno.
 */
int tpin_log_reopen(struct tpin_log *log);

/* tpin_log_close - flush and close; NULL is fine. */
void tpin_log_close(struct tpin_log *log);

/* tpin_log_access - write one access line. @log may be NULL. */
void tpin_log_access(struct tpin_log *log, const struct tpin_log_entry *e);

/*
 * tpin_log_write - write @len bytes of whole lines at once, as one write(2)
 * that no other thread's lines interleave with. @log may be NULL. Callers
 * that log often buffer lines and write them in a batch.
 */
void tpin_log_write(struct tpin_log *log, const char *buf, size_t len);

/* The format @log was opened with. */
enum tpin_log_format tpin_log_fmt(const struct tpin_log *log);

/* The wall clock in milliseconds, as access lines show it. */
uint64_t tpin_log_now_ms(void);

/* Room enough for any access line of the relay (addresses, numbers, a result). */
#define TPIN_LOG_LINE_MAX 640

/* tpin_log_event - write one free-form event line. @log may be NULL. */
void tpin_log_event(struct tpin_log *log, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * tpin_log_format_access - the access line for @e with timestamp @unix_ms,
 * newline included, into @buf. Returns the length snprintf would have
 * written; exposed for tests.
 */
int tpin_log_format_access(char *buf, size_t len, enum tpin_log_format fmt, uint64_t unix_ms,
			   const struct tpin_log_entry *e);

/*
 * A worker's access lines, written with one write(2) per loop turn (just
 * before the loop waits), when the buffer is full, and at the end: for many
 * short connections, one system call. Only the loop's thread may use it.
 */
struct tpin_log_batch {
	struct tpin_log *log; /* NULL: lines are dropped */
	uv_prepare_t flush;
	char *buf;
	size_t len;
	bool open; /* the prepare handle needs closing */
};

/*
 * tpin_log_batch_init - a batch for @log (may be NULL) on @loop. Returns 0
 * or -ENOMEM.
 */
int tpin_log_batch_init(struct tpin_log_batch *b, struct tpin_log *log, uv_loop_t *loop);

/* tpin_log_batch_add - the access line for @e, timestamped now. */
void tpin_log_batch_add(struct tpin_log_batch *b, const struct tpin_log_entry *e);

/* tpin_log_batch_flush - write what waits. */
void tpin_log_batch_flush(struct tpin_log_batch *b);

/* tpin_log_batch_close - flush, and close the handle; later lines go out at once. */
void tpin_log_batch_close(struct tpin_log_batch *b);

/* tpin_log_batch_fini - free the buffer, once the loop has ended. */
void tpin_log_batch_fini(struct tpin_log_batch *b);

#endif
