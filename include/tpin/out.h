/* SPDX-License-Identifier: MIT */
#ifndef TPIN_OUT_H
#define TPIN_OUT_H

/*
 * The line stream of tpin-init's operations to the operator: progress and
 * self-check lines, and error lines (what failed, what differs, what to
 * do). The operations never print; tpin-init.c points these at stdout and
 * stderr, the tests at buffers. A function's own failure still travels as
 * its -errno and, where it says more, a struct tpin_err (tpin/err.h).
 */

struct tpin_out {
	void (*info)(void *ctx, const char *line);  /* progress and self-check */
	void (*error)(void *ctx, const char *line); /* what failed or differs, what to do */
	void *ctx;
};

/* tpin_out_info, tpin_out_error - format one line and pass it on. */
void tpin_out_info(const struct tpin_out *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void tpin_out_error(const struct tpin_out *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
