// SPDX-License-Identifier: MIT
/* Recursive-descent JSON reader; see json.h. Depth is bounded. */

#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JS_DEPTH_MAX 64

struct js_parser {
	const char *s;
	size_t pos;
	const char *fail;
};

static struct js *js_value(struct js_parser *p, int depth);

static void js_ws(struct js_parser *p)
{
	while (p->s[p->pos] && isspace((unsigned char)p->s[p->pos]))
		p->pos++;
}

static struct js *js_new(enum js_type t)
{
	struct js *v = calloc(1, sizeof(*v));

	if (v)
		v->type = t;
	return v;
}

static int js_push(struct js *v, char *key, struct js *item)
{
	struct js **items = realloc(v->items, (v->n + 1) * sizeof(*items));

	if (!items)
		return -1;
	v->items = items;
	if (v->type == JS_OBJ) {
		char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));

		if (!keys)
			return -1;
		v->keys = keys;
		v->keys[v->n] = key;
	}
	v->items[v->n++] = item;
	return 0;
}

/* Appends one UTF-8 encoded code point; surrogate pairs are not joined. */
static size_t js_utf8(char *o, unsigned int cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	o[0] = (char)(0xe0 | (cp >> 12));
	o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[2] = (char)(0x80 | (cp & 0x3f));
	return 3;
}

static char *js_string(struct js_parser *p)
{
	size_t start, len = 0;
	char *out;

	if (p->s[p->pos] != '"') {
		p->fail = "expected string";
		return NULL;
	}
	start = ++p->pos;
	/* Escapes only shrink, so the raw length bounds the result. */
	while (p->s[p->pos] && p->s[p->pos] != '"') {
		if (p->s[p->pos] == '\\' && p->s[p->pos + 1])
			p->pos++;
		p->pos++;
	}
	if (p->s[p->pos] != '"') {
		p->fail = "unterminated string";
		return NULL;
	}
	out = malloc(p->pos - start + 1);
	if (!out)
		return NULL;
	for (size_t i = start; i < p->pos; i++) {
		char c = p->s[i];

		if (c != '\\') {
			out[len++] = c;
			continue;
		}
		c = p->s[++i];
		switch (c) {
		case 'n':
			out[len++] = '\n';
			break;
		case 't':
			out[len++] = '\t';
			break;
		case 'r':
			out[len++] = '\r';
			break;
		case 'b':
			out[len++] = '\b';
			break;
		case 'f':
			out[len++] = '\f';
			break;
		case 'u': {
			unsigned int cp = 0;
			int k;

			for (k = 1; k <= 4 && isxdigit((unsigned char)p->s[i + k]); k++)
				cp = cp * 16 +
				     (unsigned int)(isdigit((unsigned char)p->s[i + k])
							    ? p->s[i + k] - '0'
							    : (tolower((unsigned char)p->s[i + k]) -
							       'a' + 10));
			if (k != 5) {
				free(out);
				p->fail = "bad \\u escape";
				return NULL;
			}
			i += 4;
			len += js_utf8(out + len, cp);
			break;
		}
		default:
			out[len++] = c;
			break;
		}
	}
	out[len] = '\0';
	p->pos++;
	return out;
}

static struct js *js_container(struct js_parser *p, int depth, bool obj)
{
	struct js *v = js_new(obj ? JS_OBJ : JS_ARR);
	char close = obj ? '}' : ']';

	if (!v)
		return NULL;
	p->pos++;
	js_ws(p);
	if (p->s[p->pos] == close) {
		p->pos++;
		return v;
	}
	for (;;) {
		char *key = NULL;
		struct js *item;

		js_ws(p);
		if (obj) {
			key = js_string(p);
			if (!key)
				goto fail;
			js_ws(p);
			if (p->s[p->pos] != ':') {
				free(key);
				p->fail = "expected ':'";
				goto fail;
			}
			p->pos++;
		}
		item = js_value(p, depth + 1);
		if (!item || js_push(v, key, item)) {
			free(key);
			js_free(item);
			goto fail;
		}
		js_ws(p);
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] == close) {
			p->pos++;
			return v;
		}
		p->fail = obj ? "expected ',' or '}'" : "expected ',' or ']'";
		goto fail;
	}
fail:
	js_free(v);
	return NULL;
}

static struct js *js_value(struct js_parser *p, int depth)
{
	const char *c;
	struct js *v;

	if (depth > JS_DEPTH_MAX) {
		p->fail = "too deep";
		return NULL;
	}
	js_ws(p);
	c = p->s + p->pos;
	if (*c == '{' || *c == '[')
		return js_container(p, depth, *c == '{');
	if (*c == '"') {
		char *s = js_string(p);

		if (!s)
			return NULL;
		v = js_new(JS_STR);
		if (!v) {
			free(s);
			return NULL;
		}
		v->str = s;
		return v;
	}
	if (!strncmp(c, "null", 4) || !strncmp(c, "true", 4) || !strncmp(c, "false", 5)) {
		v = js_new(*c == 'n' ? JS_NULL : JS_BOOL);
		if (v)
			v->b = *c == 't';
		p->pos += *c == 'f' ? 5 : 4;
		return v;
	}
	if (*c == '-' || isdigit((unsigned char)*c)) {
		char *end;
		double d = strtod(c, &end);

		v = js_new(JS_NUM);
		if (v)
			v->num = d;
		p->pos += (size_t)(end - c);
		return v;
	}
	p->fail = "unexpected character";
	return NULL;
}

struct js *js_parse(const char *text, char *err, size_t errlen)
{
	struct js_parser p = { .s = text };
	struct js *v = js_value(&p, 0);

	if (v) {
		js_ws(&p);
		if (!p.s[p.pos])
			return v;
		js_free(v);
		p.fail = "trailing text";
	}
	if (err && errlen)
		snprintf(err, errlen, "json: %s at offset %zu", p.fail ? p.fail : "out of memory",
			 p.pos);
	return NULL;
}

void js_free(struct js *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		js_free(v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	free(v);
}

struct js *js_get(const struct js *v, const char *key)
{
	if (!v || v->type != JS_OBJ)
		return NULL;
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->keys[i], key))
			return v->items[i];
	return NULL;
}

struct js *js_at(const struct js *v, size_t i)
{
	if (!v || (v->type != JS_ARR && v->type != JS_OBJ) || i >= v->n)
		return NULL;
	return v->items[i];
}

const char *js_str(const struct js *v)
{
	return v && v->type == JS_STR ? v->str : NULL;
}

bool js_long(const struct js *v, long *out)
{
	if (!v || v->type != JS_NUM)
		return false;
	*out = (long)v->num;
	return true;
}

struct js_buf {
	char *s;
	size_t len, cap;
	bool oom;
};

static void js_put(struct js_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap : 64);
		char *ns;

		while (cap < b->len + n + 1)
			cap *= 2;
		ns = realloc(b->s, cap);
		if (!ns) {
			b->oom = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n + 1);
	b->len += n;
}

static void js_dump_to(struct js_buf *b, const struct js *v)
{
	char num[32];

	switch (v->type) {
	case JS_NULL:
		js_put(b, "null");
		break;
	case JS_BOOL:
		js_put(b, v->b ? "true" : "false");
		break;
	case JS_NUM:
		snprintf(num, sizeof(num), "%.17g", v->num);
		js_put(b, num);
		break;
	/* Strings are written unescaped: the dump is for matching, not reparsing. */
	case JS_STR:
		js_put(b, "\"");
		js_put(b, v->str);
		js_put(b, "\"");
		break;
	case JS_ARR:
	case JS_OBJ:
		js_put(b, v->type == JS_ARR ? "[" : "{");
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				js_put(b, ",");
			if (v->type == JS_OBJ) {
				js_put(b, "\"");
				js_put(b, v->keys[i]);
				js_put(b, "\":");
			}
			js_dump_to(b, v->items[i]);
		}
		js_put(b, v->type == JS_ARR ? "]" : "}");
		break;
	}
}

char *js_dump(const struct js *v)
{
	struct js_buf b = { 0 };

	if (!v)
		return strdup("(none)");
	js_dump_to(&b, v);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}
