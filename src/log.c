// SPDX-License-Identifier: MIT
/* The access log: whole lines under a lock, reopened on SIGHUP. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "tpin/log.h"
#include "tpin/strbuf.h"

struct tpin_log {
	uv_mutex_t lock;
	FILE *f;
	char *path; /* NULL: standard output */
	enum tpin_log_format fmt;
};

int tpin_log_format_parse(enum tpin_log_format *fmt, const char *text, char *err, size_t errlen)
{
	if (!strcmp(text, "plain"))
		*fmt = TPIN_LOG_PLAIN;
	else if (!strcmp(text, "json"))
		*fmt = TPIN_LOG_JSON;
	else {
		snprintf(err, errlen, "unknown log format \"%s\" (expected plain or json)", text);
		return -EINVAL;
	}
	return 0;
}

static int open_file(const char *path, FILE **out)
{
	FILE *f = fopen(path, "ae");

	if (!f)
		return -errno;
	/* Line buffering: a line reaches the file when it is complete. */
	setvbuf(f, NULL, _IOLBF, 0);
	*out = f;
	return 0;
}

int tpin_log_open(struct tpin_log **out, const char *path, enum tpin_log_format fmt)
{
	struct tpin_log *log = calloc(1, sizeof(*log));
	int ret = -ENOMEM;

	if (!log)
		return -ENOMEM;
	log->fmt = fmt;
	if (path) {
		log->path = strdup(path);
		if (!log->path)
			goto fail;
		ret = open_file(path, &log->f);
		if (ret)
			goto fail;
	} else {
		log->f = stdout;
	}
	ret = uv_mutex_init(&log->lock);
	if (ret)
		goto fail;
	*out = log;
	return 0;
fail:
	if (log->f && log->f != stdout)
		fclose(log->f);
	free(log->path);
	free(log);
	return ret;
}

int tpin_log_reopen(struct tpin_log *log)
{
	FILE *f = NULL;
	int ret;

	if (!log->path)
		return 0;
	ret = open_file(log->path, &f);
	if (ret)
		return ret;
	uv_mutex_lock(&log->lock);
	fclose(log->f);
	log->f = f;
	uv_mutex_unlock(&log->lock);
	return 0;
}

void tpin_log_close(struct tpin_log *log)
{
	if (!log)
		return;
	if (log->f == stdout)
		fflush(stdout);
	else
		fclose(log->f);
	uv_mutex_destroy(&log->lock);
	free(log->path);
	free(log);
}

static void timestamp(char *buf, size_t len, uint64_t unix_ms)
{
	time_t secs = (time_t)(unix_ms / 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(unix_ms % 1000));
}

static void format_entry(struct tpin_strbuf *sb, enum tpin_log_format fmt, uint64_t unix_ms,
			 const struct tpin_log_entry *e)
{
	char ts[64];

	timestamp(ts, sizeof(ts), unix_ms);
	if (fmt == TPIN_LOG_JSON) {
		tpin_strbuf_printf(sb, "{\"time\":\"%s\",\"client\":", ts);
		tpin_strbuf_json(sb, e->client);
		tpin_strbuf_printf(sb, ",\"original_dst\":");
		tpin_strbuf_json(sb, e->original_dst);
		tpin_strbuf_printf(sb, ",\"upstream\":");
		tpin_strbuf_json(sb, e->upstream);
		tpin_strbuf_printf(sb,
				   ",\"bytes_up\":%llu,\"bytes_down\":%llu,\"duration_ms\":%llu,"
				   "\"result\":",
				   (unsigned long long)e->bytes_up, (unsigned long long)e->bytes_down,
				   (unsigned long long)e->duration_ms);
		tpin_strbuf_json(sb, e->result);
		tpin_strbuf_printf(sb, "}\n");
	} else {
		/* Every field is an address, a number or a fixed word: no quoting. */
		tpin_strbuf_printf(sb,
				   "%s client=%s original_dst=%s upstream=%s bytes_up=%llu "
				   "bytes_down=%llu duration_ms=%llu result=%s\n",
				   ts, e->client, e->original_dst, e->upstream,
				   (unsigned long long)e->bytes_up, (unsigned long long)e->bytes_down,
				   (unsigned long long)e->duration_ms, e->result);
	}
}

int tpin_log_format_access(char *buf, size_t len, enum tpin_log_format fmt, uint64_t unix_ms,
			   const struct tpin_log_entry *e)
{
	struct tpin_strbuf sb = { 0 };
	int n;

	format_entry(&sb, fmt, unix_ms, e);
	if (sb.err)
		return sb.err;
	n = snprintf(buf, len, "%s", sb.p);
	tpin_strbuf_free(&sb);
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void write_line(struct tpin_log *log, const struct tpin_strbuf *sb)
{
	if (sb->err)
		return;
	uv_mutex_lock(&log->lock);
	fwrite(sb->p, 1, sb->len, log->f);
	uv_mutex_unlock(&log->lock);
}

void tpin_log_access(struct tpin_log *log, const struct tpin_log_entry *e)
{
	struct tpin_strbuf sb = { 0 };

	if (!log)
		return;
	format_entry(&sb, log->fmt, now_ms(), e);
	write_line(log, &sb);
	tpin_strbuf_free(&sb);
}

void tpin_log_event(struct tpin_log *log, const char *fmt, ...)
{
	struct tpin_strbuf sb = { 0 };
	char ts[64], *msg = NULL;
	va_list ap;
	int n;

	if (!log)
		return;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	timestamp(ts, sizeof(ts), now_ms());
	if (log->fmt == TPIN_LOG_JSON) {
		tpin_strbuf_printf(&sb, "{\"time\":\"%s\",\"event\":", ts);
		tpin_strbuf_json(&sb, msg);
		tpin_strbuf_printf(&sb, "}\n");
	} else {
		tpin_strbuf_printf(&sb, "%s event: %s\n", ts, msg);
	}
	write_line(log, &sb);
	tpin_strbuf_free(&sb);
	free(msg);
}
