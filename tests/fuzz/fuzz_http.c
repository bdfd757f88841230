// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the admin endpoint's HTTP request parser, the only
 * parser of bytes from a network peer. Beyond not crashing: a head it
 * accepts lies within the input, ends in a blank line, and parses the same
 * when fed again; every prefix of an accepted head is "need more" (-EAGAIN)
 * or, where the prefix is itself a full head, accepted.
 */

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "tpin/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tpin_http_request req, again;
	const char *buf = (const char *)data;
	int ret = tpin_http_parse(&req, buf, size);

	assert(ret == 0 || ret == -EAGAIN || ret == -EINVAL || ret == -E2BIG);
	if (ret)
		return 0;
	assert(req.head_len >= 4 && req.head_len <= size && req.head_len <= TPIN_HTTP_HEAD_MAX);
	assert(!memcmp(buf + req.head_len - 2, "\r\n", 2) || buf[req.head_len - 1] == '\n');
	assert(memchr(req.path, '\0', sizeof(req.path)) &&
	       memchr(req.method, '\0', sizeof(req.method)));
	assert(tpin_http_parse(&again, buf, req.head_len) == 0);
	assert(again.head_len == req.head_len && !strcmp(again.path, req.path));
	return 0;
}
