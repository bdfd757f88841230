/* SPDX-License-Identifier: MIT */
#ifndef TPIN_STRBUF_H
#define TPIN_STRBUF_H

#include <stddef.h>

/*
 * A growing text buffer for responses and log lines. An allocation failure
 * is remembered in @err rather than returned by every append, so a writer
 * appends freely and checks once at the end.
 */
struct tpin_strbuf {
	char *p;
	size_t len;
	size_t cap;
	int err; /* 0 or -ENOMEM */
};

/* tpin_strbuf_printf - append formatted text. Sets sb->err on failure. */
void tpin_strbuf_printf(struct tpin_strbuf *sb, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* tpin_strbuf_append - append @len bytes. Sets sb->err on failure. */
void tpin_strbuf_append(struct tpin_strbuf *sb, const char *s, size_t len);

/* tpin_strbuf_free - release the memory and reset @sb to empty. */
void tpin_strbuf_free(struct tpin_strbuf *sb);

#endif
