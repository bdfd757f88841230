// SPDX-License-Identifier: MIT
/* A strict HTTP/1.x request head parser for the admin endpoint. */

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "tpin/http.h"

/* RFC 9110 token characters, for methods and header names. */
static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Visible ASCII: what a request target may hold. */
static bool is_vchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* The next CRLF-terminated line; -EAGAIN if it is not complete yet. */
static int line(const char *buf, size_t len, size_t pos, size_t *end)
{
	size_t i;

	for (i = pos; i < len; i++) {
		if (buf[i] == '\n')
			return -EINVAL; /* a bare LF: smuggling ground */
		if (buf[i] == '\r') {
			if (i + 1 == len)
				return -EAGAIN;
			if (buf[i + 1] != '\n')
				return -EINVAL;
			*end = i;
			return 0;
		}
	}
	return -EAGAIN;
}

static int request_line(struct tpin_http_request *req, const char *s, size_t n)
{
	size_t i = 0, m, p;

	for (m = 0; i < n && is_tchar((unsigned char)s[i]); i++, m++)
		if (m + 1 >= sizeof(req->method))
			return -EINVAL;
	if (!m || i >= n || s[i] != ' ')
		return -EINVAL;
	memcpy(req->method, s, m);
	req->method[m] = '\0';
	i++;
	if (i >= n || s[i] != '/')
		return -EINVAL;
	for (p = 0; i < n && s[i] != ' '; i++) {
		if (!is_vchar((unsigned char)s[i]))
			return -EINVAL;
		if (p + 1 >= sizeof(req->path))
			return -E2BIG;
		req->path[p++] = s[i];
	}
	req->path[p] = '\0';
	if (i >= n)
		return -EINVAL;
	i++;
	if (n - i != 8 || (memcmp(s + i, "HTTP/1.1", 8) && memcmp(s + i, "HTTP/1.0", 8)))
		return -EINVAL;
	/* Routing ignores the query string. */
	p = strcspn(req->path, "?");
	req->path[p] = '\0';
	return 0;
}

static int header_line(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && is_tchar((unsigned char)s[i]); i++)
		;
	if (!i || i >= n || s[i] != ':')
		return -EINVAL;
	for (i++; i < n; i++)
		if (!is_vchar((unsigned char)s[i]) && s[i] != ' ' && s[i] != '\t')
			return -EINVAL;
	return 0;
}

int tpin_http_parse(struct tpin_http_request *req, const char *buf, size_t len)
{
	size_t pos = 0, end;
	bool first = true;
	int ret;

	memset(req, 0, sizeof(*req));
	for (;;) {
		ret = line(buf, len, pos, &end);
		if (ret == -EAGAIN && len >= TPIN_HTTP_HEAD_MAX)
			return -E2BIG;
		if (ret)
			return ret;
		if (end + 2 > TPIN_HTTP_HEAD_MAX)
			return -E2BIG;
		if (first)
			ret = request_line(req, buf, end);
		else if (end == pos)
			break;
		else
			ret = header_line(buf + pos, end - pos);
		if (ret)
			return ret;
		first = false;
		pos = end + 2;
	}
	req->head_len = end + 2;
	return 0;
}
