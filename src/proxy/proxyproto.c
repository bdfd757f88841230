// SPDX-License-Identifier: MIT
/* The PROXY protocol v2 header (haproxy's proxy-protocol.txt, section 2.2). */

#include <netinet/in.h>
#include <string.h>

#include "proxyproto.h"

size_t proxyproto_v2(uint8_t *out, const struct sockaddr *src, const struct sockaddr *dst)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	uint8_t *a = out + 16;
	uint16_t alen;

	if (src->sa_family != dst->sa_family)
		return 0;
	if (src->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

		out[13] = 0x11; /* TCP over IPv4 */
		alen = 12;
		memcpy(a, &s->sin_addr, 4);
		memcpy(a + 4, &d->sin_addr, 4);
		memcpy(a + 8, &s->sin_port, 2);
		memcpy(a + 10, &d->sin_port, 2);
	} else if (src->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)src, *d = (const void *)dst;

		out[13] = 0x21; /* TCP over IPv6 */
		alen = 36;
		memcpy(a, &s->sin6_addr, 16);
		memcpy(a + 16, &d->sin6_addr, 16);
		memcpy(a + 32, &s->sin6_port, 2);
		memcpy(a + 34, &d->sin6_port, 2);
	} else {
		return 0;
	}
	memcpy(out, sig, sizeof(sig));
	out[12] = 0x21; /* version 2, command PROXY */
	out[14] = (uint8_t)(alen >> 8);
	out[15] = (uint8_t)alen;
	return 16 + alen;
}
