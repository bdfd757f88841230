/* SPDX-License-Identifier: MIT */
#ifndef TPIN_TEST_RESULT_H
#define TPIN_TEST_RESULT_H

/*
 * Reading a tool's JSON result in a Check test (tools/demo, tools/soak,
 * tpin-load): what the run must have written, asserted where it is read.
 * The tests and tools read and write JSON with jansson; only the proxy's
 * access log has a writer of its own (see src/proxy/log.c).
 */

#include <check.h>
#include <jansson.h>

/* The JSON document at @path, which the run must have written (json_decref it). */
static inline json_t *result_load(const char *path)
{
	json_error_t err;
	json_t *v = json_load_file(path, 0, &err);

	ck_assert_msg(v != NULL, "%s: line %d: %s", path, err.line, err.text);
	return v;
}

/* @text, which must be one JSON document (json_decref it). */
static inline json_t *result_parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, 0, &err);

	ck_assert_msg(v != NULL, "not JSON (%s, column %d): %s", err.text, err.column, text);
	return v;
}

/* The number at @key of @v, which must be there; a real is cut to a long. */
static inline long result_num(const json_t *v, const char *key)
{
	json_t *n = json_object_get(v, key);

	ck_assert_msg(json_is_number(n), "no number \"%s\"", key);
	return (long)json_number_value(n);
}

/* The string at @key of @v, or NULL. */
static inline const char *result_str(const json_t *v, const char *key)
{
	return json_string_value(json_object_get(v, key));
}

#endif
