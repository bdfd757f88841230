// SPDX-License-Identifier: MIT
/* tpin-init's lines to the operator (see tpin/out.h). */

#include <stdarg.h>
#include <stdio.h>

#include "tpin/out.h"

/* Long enough for a diff line naming a rule and a set of 256 ranges. */
#define LINE_MAX_LEN 8448

static void say(void (*fn)(void *, const char *), void *ctx, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void say(void (*fn)(void *, const char *), void *ctx, const char *fmt, va_list ap)
{
	char line[LINE_MAX_LEN];

	vsnprintf(line, sizeof(line), fmt, ap);
	fn(ctx, line);
}

void tpin_out_info(const struct tpin_out *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(out->info, out->ctx, fmt, ap);
	va_end(ap);
}

void tpin_out_error(const struct tpin_out *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	say(out->error, out->ctx, fmt, ap);
	va_end(ap);
}
