// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the PROXY protocol v2 header the proxy writes for
 * the application: any two addresses the bytes make. Beyond not crashing:
 * two addresses of one family give a header of exactly 28 (IPv4) or 52
 * (IPv6) bytes that a reader of the protocol takes back to the same
 * addresses and ports; anything else gives no header at all.
 */

#include <assert.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A sockaddr of the family the first byte picks, filled from the rest. */
static void make(struct sockaddr_storage *ss, const uint8_t **data, size_t *size)
{
	static const int families[4] = { AF_INET, AF_INET6, AF_UNIX, 0 };
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (!*size)
		return;
	ss->ss_family = (sa_family_t)families[**data % 4];
	(*data)++;
	(*size)--;
	n = *size < sizeof(*ss) - 2 ? *size : sizeof(*ss) - 2;
	memcpy((uint8_t *)ss + 2, *data, n);
	*data += n;
	*size -= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	struct sockaddr_storage src, dst;
	const struct sockaddr_in *s4 = (const void *)&src, *d4 = (const void *)&dst;
	const struct sockaddr_in6 *s6 = (const void *)&src, *d6 = (const void *)&dst;
	uint8_t h[PROXYPROTO_MAX + 8];
	size_t half = size / 2, rest = size - half, len;

	make(&src, &data, &half);
	data += half;
	make(&dst, &data, &rest);
	memset(h, 0xa5, sizeof(h));
	len = proxyproto_v2(h, (struct sockaddr *)&src, (struct sockaddr *)&dst);
	if (src.ss_family != dst.ss_family ||
	    (src.ss_family != AF_INET && src.ss_family != AF_INET6)) {
		assert(len == 0);
		return 0;
	}
	/* Nothing written past the header. */
	assert(h[len] == 0xa5);
	assert(!memcmp(h, sig, sizeof(sig)) && h[12] == 0x21);
	assert(len == 16u + (size_t)((h[14] << 8) | h[15]));
	if (src.ss_family == AF_INET) {
		assert(len == 28 && h[13] == 0x11);
		assert(!memcmp(h + 16, &s4->sin_addr, 4) && !memcmp(h + 20, &d4->sin_addr, 4));
		assert(!memcmp(h + 24, &s4->sin_port, 2) && !memcmp(h + 26, &d4->sin_port, 2));
	} else {
		assert(len == 52 && h[13] == 0x21);
		assert(!memcmp(h + 16, &s6->sin6_addr, 16) && !memcmp(h + 32, &d6->sin6_addr, 16));
		assert(!memcmp(h + 48, &s6->sin6_port, 2) && !memcmp(h + 50, &d6->sin6_port, 2));
	}
	return 0;
}
