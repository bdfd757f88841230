// SPDX-License-Identifier: MIT
/* A growing text buffer whose first allocation failure sticks. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/strbuf.h"

static int reserve(struct tpin_strbuf *sb, size_t more)
{
	size_t cap;
	char *p;

	if (sb->err)
		return sb->err;
	if (sb->len + more + 1 <= sb->cap)
		return 0;
	cap = sb->cap ? sb->cap : 256;
	while (cap < sb->len + more + 1)
		cap *= 2;
	p = realloc(sb->p, cap);
	if (!p) {
		sb->err = -ENOMEM;
		return sb->err;
	}
	sb->p = p;
	sb->cap = cap;
	return 0;
}

void tpin_strbuf_printf(struct tpin_strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void tpin_strbuf_append(struct tpin_strbuf *sb, const char *s, size_t len)
{
	if (reserve(sb, len))
		return;
	memcpy(sb->p + sb->len, s, len);
	sb->len += len;
	sb->p[sb->len] = '\0';
}

void tpin_strbuf_json(struct tpin_strbuf *sb, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *c;
	char esc[6];

	tpin_strbuf_append(sb, "\"", 1);
	for (c = (const unsigned char *)s; *c; c++) {
		switch (*c) {
		case '"':
			tpin_strbuf_append(sb, "\\\"", 2);
			break;
		case '\\':
			tpin_strbuf_append(sb, "\\\\", 2);
			break;
		case '\n':
			tpin_strbuf_append(sb, "\\n", 2);
			break;
		case '\r':
			tpin_strbuf_append(sb, "\\r", 2);
			break;
		case '\t':
			tpin_strbuf_append(sb, "\\t", 2);
			break;
		default:
			if (*c < 0x20 || *c == 0x7f) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*c >> 4];
				esc[5] = hex[*c & 15];
				tpin_strbuf_append(sb, esc, 6);
			} else {
				tpin_strbuf_append(sb, (const char *)c, 1);
			}
		}
	}
	tpin_strbuf_append(sb, "\"", 1);
}

void tpin_strbuf_free(struct tpin_strbuf *sb)
{
	free(sb->p);
	memset(sb, 0, sizeof(*sb));
}
