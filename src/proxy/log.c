// SPDX-License-Identifier: MIT
/*
 * The access log: whole lines under a lock, reopened on SIGHUP, and each
 * worker's batch of lines written once per loop turn.
 *
 * The lines are put together by hand rather than with a JSON library: the
 * line is written for every connection, and a library's allocations and
 * generic escaping cost more than the relay's own work per short
 * connection. Every field is an address, a number or a fixed word, except
 * the event text, which goes through the one escaper below.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "tpin/err.h"
#include "tpin/log.h"

struct tpin_log {
	uv_mutex_t lock;
	FILE *f;
	char *path; /* NULL: standard output */
	enum tpin_log_format fmt;
};

int tpin_log_format_parse(enum tpin_log_format *fmt, const char *text, struct tpin_err *err)
{
	if (!strcmp(text, "plain"))
		*fmt = TPIN_LOG_PLAIN;
	else if (!strcmp(text, "json"))
		*fmt = TPIN_LOG_JSON;
	else {
		tpin_err_set(err, -EINVAL, "unknown log format \"%s\" (expected plain or json)",
			     text);
		return -EINVAL;
	}
	return 0;
}

static int open_file(const char *path, FILE **out)
{
	FILE *f = fopen(path, "ae");

	if (!f)
		return -errno;
	/*
	 * Unbuffered: every fwrite() is one write(2) of whole lines, which the
	 * callers batch (the relay writes one buffer of lines per loop turn).
	 */
	setvbuf(f, NULL, _IONBF, 0);
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
		setvbuf(stdout, NULL, _IONBF, 0);
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

/*
 * The access line is written for every connection, so it is put together by
 * hand: no stdio, no locale, no gmtime() (which takes glibc's time zone
 * lock). struct out counts what would have been written, like snprintf.
 */
struct out {
	char *p;
	size_t cap, len;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->len < o->cap) {
		size_t room = o->cap - o->len;

		memcpy(o->p + o->len, s, n < room ? n : room);
	}
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, d + i, sizeof(d) - i);
}

/* @v in exactly @width digits. */
static void put_fixed(struct out *o, unsigned v, unsigned width)
{
	char d[10];
	unsigned i = width;

	while (i--) {
		d[i] = (char)('0' + v % 10);
		v /= 10;
	}
	put(o, d, width);
}

static void put_json(struct out *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *c;
	char esc[6] = "\\u00";

	put(o, "\"", 1);
	for (c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"':
			put(o, "\\\"", 2);
			break;
		case '\\':
			put(o, "\\\\", 2);
			break;
		case '\n':
			put(o, "\\n", 2);
			break;
		case '\r':
			put(o, "\\r", 2);
			break;
		case '\t':
			put(o, "\\t", 2);
			break;
		default:
			if (*c < 0x20 || *c == 0x7f) {
				esc[4] = hex[*c >> 4];
				esc[5] = hex[*c & 15];
				put(o, esc, 6);
			} else {
				put(o, (const char *)c, 1);
			}
		}
	}
	put(o, "\"", 1);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ": civil date from days since the epoch (UTC). */
static void put_time(struct out *o, uint64_t unix_ms)
{
	uint64_t secs = unix_ms / 1000;
	int64_t z = (int64_t)(secs / 86400) + 719468, era, yoe, doy, mp, y;
	unsigned sod = (unsigned)(secs % 86400), d, m;

	era = z / 146097;
	yoe = z - era * 146097;
	yoe = (yoe - yoe / 1460 + yoe / 36524 - yoe / 146096) / 365;
	doy = z - era * 146097 - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	y = yoe + era * 400 + (m <= 2);
	put_fixed(o, (unsigned)y, 4);
	put(o, "-", 1);
	put_fixed(o, m, 2);
	put(o, "-", 1);
	put_fixed(o, d, 2);
	put(o, "T", 1);
	put_fixed(o, sod / 3600, 2);
	put(o, ":", 1);
	put_fixed(o, sod / 60 % 60, 2);
	put(o, ":", 1);
	put_fixed(o, sod % 60, 2);
	put(o, ".", 1);
	put_fixed(o, (unsigned)(unix_ms % 1000), 3);
	put(o, "Z", 1);
}

static void format_entry(struct out *o, enum tpin_log_format fmt, uint64_t unix_ms,
			 const struct tpin_log_entry *e)
{
	if (fmt == TPIN_LOG_JSON) {
		puts_(o, "{\"time\":\"");
		put_time(o, unix_ms);
		puts_(o, "\",\"client\":");
		put_json(o, e->client);
		puts_(o, ",\"original_dst\":");
		put_json(o, e->original_dst);
		puts_(o, ",\"upstream\":");
		put_json(o, e->upstream);
		puts_(o, ",\"bytes_up\":");
		put_u64(o, e->bytes_up);
		puts_(o, ",\"bytes_down\":");
		put_u64(o, e->bytes_down);
		puts_(o, ",\"duration_ms\":");
		put_u64(o, e->duration_ms);
		puts_(o, ",\"result\":");
		put_json(o, e->result);
		if (e->direction) {
			puts_(o, ",\"direction\":");
			put_json(o, e->direction);
		}
		puts_(o, "}\n");
	} else {
		/* Every field is an address, a number or a fixed word: no quoting. */
		put_time(o, unix_ms);
		puts_(o, " client=");
		puts_(o, e->client);
		puts_(o, " original_dst=");
		puts_(o, e->original_dst);
		puts_(o, " upstream=");
		puts_(o, e->upstream);
		puts_(o, " bytes_up=");
		put_u64(o, e->bytes_up);
		puts_(o, " bytes_down=");
		put_u64(o, e->bytes_down);
		puts_(o, " duration_ms=");
		put_u64(o, e->duration_ms);
		puts_(o, " result=");
		puts_(o, e->result);
		if (e->direction) {
			puts_(o, " direction=");
			puts_(o, e->direction);
		}
		put(o, "\n", 1);
	}
}

int tpin_log_format_access(char *buf, size_t len, enum tpin_log_format fmt, uint64_t unix_ms,
			   const struct tpin_log_entry *e)
{
	struct out o = { .p = buf, .cap = len ? len - 1 : 0 };

	format_entry(&o, fmt, unix_ms, e);
	if (len)
		buf[o.len < o.cap ? o.len : o.cap] = '\0';
	return o.len > INT32_MAX ? INT32_MAX : (int)o.len;
}

/* The access line into @buf (TPIN_LOG_LINE_MAX bytes), cut short but still one line. */
static size_t format_line(char *buf, enum tpin_log_format fmt, uint64_t unix_ms,
			  const struct tpin_log_entry *e)
{
	int n = tpin_log_format_access(buf, TPIN_LOG_LINE_MAX, fmt, unix_ms, e);

	if (n >= TPIN_LOG_LINE_MAX) {
		n = TPIN_LOG_LINE_MAX - 1;
		buf[n - 1] = '\n';
	}
	return (size_t)n;
}

enum tpin_log_format tpin_log_fmt(const struct tpin_log *log)
{
	return log->fmt;
}

uint64_t tpin_log_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void tpin_log_write(struct tpin_log *log, const char *buf, size_t len)
{
	if (!log || !len)
		return;
	/* Unbuffered: one write(2) of whole lines, never mixed with another thread's. */
	uv_mutex_lock(&log->lock);
	fwrite(buf, 1, len, log->f);
	uv_mutex_unlock(&log->lock);
}

void tpin_log_access(struct tpin_log *log, const struct tpin_log_entry *e)
{
	char line[TPIN_LOG_LINE_MAX];

	if (log)
		tpin_log_write(log, line, format_line(line, log->fmt, tpin_log_now_ms(), e));
}

void tpin_log_event(struct tpin_log *log, const char *fmt, ...)
{
	char line[1024], *msg = NULL;
	struct out o = { .p = line, .cap = sizeof(line) - 1 };
	va_list ap;
	int n;

	if (!log)
		return;
	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (log->fmt == TPIN_LOG_JSON) {
		puts_(&o, "{\"time\":\"");
		put_time(&o, tpin_log_now_ms());
		puts_(&o, "\",\"event\":");
		put_json(&o, msg);
		puts_(&o, "}");
	} else {
		put_time(&o, tpin_log_now_ms());
		puts_(&o, " event: ");
		puts_(&o, msg);
	}
	free(msg);
	/* Cut short, still one line. */
	if (o.len > o.cap)
		o.len = o.cap;
	line[o.len++] = '\n';
	tpin_log_write(log, line, o.len);
}

/* ---- a worker's batch of access lines ------------------------------------ */

/* Lines wait here; a full buffer is written at once. */
#define BATCH_SIZE (16 * 1024)

static void on_flush(uv_prepare_t *h)
{
	tpin_log_batch_flush(h->data);
}

int tpin_log_batch_init(struct tpin_log_batch *b, struct tpin_log *log, uv_loop_t *loop)
{
	memset(b, 0, sizeof(*b));
	b->log = log;
	if (!log)
		return 0;
	b->buf = malloc(BATCH_SIZE);
	if (!b->buf)
		return -ENOMEM;
	uv_prepare_init(loop, &b->flush);
	b->flush.data = b;
	b->open = true;
	return 0;
}

void tpin_log_batch_add(struct tpin_log_batch *b, const struct tpin_log_entry *e)
{
	if (!b->log)
		return;
	if (b->len + TPIN_LOG_LINE_MAX > BATCH_SIZE)
		tpin_log_batch_flush(b);
	b->len += format_line(b->buf + b->len, b->log->fmt, tpin_log_now_ms(), e);
	/* Written just before the loop waits: one write(2) for many connections. */
	if (!b->open)
		tpin_log_batch_flush(b);
	else if (!uv_is_active((uv_handle_t *)&b->flush))
		uv_prepare_start(&b->flush, on_flush);
}

void tpin_log_batch_flush(struct tpin_log_batch *b)
{
	tpin_log_write(b->log, b->buf, b->len);
	b->len = 0;
	if (b->open)
		uv_prepare_stop(&b->flush);
}

void tpin_log_batch_close(struct tpin_log_batch *b)
{
	tpin_log_batch_flush(b);
	if (b->open) {
		b->open = false;
		uv_close((uv_handle_t *)&b->flush, NULL);
	}
}

void tpin_log_batch_fini(struct tpin_log_batch *b)
{
	free(b->buf);
	b->buf = NULL;
}
