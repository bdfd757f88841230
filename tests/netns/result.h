/* SPDX-License-Identifier: MIT */
#ifndef TPIN_TEST_RESULT_H
#define TPIN_TEST_RESULT_H

/*
 * Reading a tool's JSON result in a Check test (tools/demo, tools/soak):
 * what the run must have written, asserted where it is read.
 */

#include <check.h>
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "json.h"

/* The file at @path, which the run must have written (free it). */
static inline char *result_slurp(const char *path)
{
	char *text = nh_slurp(path);

	ck_assert_msg(text != NULL, "%s: %s", path, strerror(errno));
	return text;
}

/* The number at @key of @v, which must be there. */
static inline long result_num(const struct js *v, const char *key)
{
	long n = -1;

	ck_assert_msg(js_long(js_get(v, key), &n), "no number \"%s\"", key);
	return n;
}

#endif
