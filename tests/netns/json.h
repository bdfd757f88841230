/* SPDX-License-Identifier: MIT */
/*
 * A small JSON reader for the netns tests: enough to walk `nft -j list
 * ruleset` without adding a library the product does not need.
 */
#ifndef TPIN_TESTS_JSON_H
#define TPIN_TESTS_JSON_H

#include <stdbool.h>
#include <stddef.h>

enum js_type { JS_NULL, JS_BOOL, JS_NUM, JS_STR, JS_ARR, JS_OBJ };

struct js {
	enum js_type type;
	bool b;
	double num;
	char *str;	   /* JS_STR */
	size_t n;	   /* JS_ARR, JS_OBJ: number of items */
	struct js **items; /* JS_ARR, JS_OBJ */
	char **keys;	   /* JS_OBJ: keys[i] names items[i] */
};

/* Parses text whole; NULL on a syntax error, with the offset in err. */
struct js *js_parse(const char *text, char *err, size_t errlen);
void js_free(struct js *v);

/* Member of an object, NULL when v is no object or lacks key. */
struct js *js_get(const struct js *v, const char *key);
/* Item i of an array, NULL when out of range. */
struct js *js_at(const struct js *v, size_t i);
/* String value or NULL. */
const char *js_str(const struct js *v);
/* Number value as long; false when v is no number. */
bool js_long(const struct js *v, long *out);
/* Compact text of v (malloc'd), for substring checks in assertions. */
char *js_dump(const struct js *v);

#endif
