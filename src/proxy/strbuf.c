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

void tpin_strbuf_free(struct tpin_strbuf *sb)
{
	free(sb->p);
	memset(sb, 0, sizeof(*sb));
}
