/* SPDX-License-Identifier: MIT */
#ifndef TPIN_HTTP_H
#define TPIN_HTTP_H

#include <stddef.h>

/*
 * The admin endpoint's request parser: just enough HTTP/1.x to route a GET,
 * strict about everything else. It never allocates and never reads past @len.
 */

#define TPIN_HTTP_HEAD_MAX 8192
#define TPIN_HTTP_PATH_MAX 256

struct tpin_http_request {
	char method[8];
	char path[TPIN_HTTP_PATH_MAX]; /* without the query string */
	size_t head_len;	       /* bytes up to and including the blank line */
};

/*
 * tpin_http_parse - parse the request head at the start of @buf. Returns 0
 * when a whole, well-formed head is there, -EAGAIN when it is a valid prefix
 * and more bytes are needed, -EINVAL when it is malformed, or -E2BIG when it
 * is longer than TPIN_HTTP_HEAD_MAX or its path longer than
 * TPIN_HTTP_PATH_MAX - 1.
 */
int tpin_http_parse(struct tpin_http_request *req, const char *buf, size_t len);

#endif
