/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_PROXYPROTO_H
#define TPIN_PROXY_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest PROXY protocol v2 header tpin writes: TCP over IPv6. */
#define PROXYPROTO_MAX 52

/*
 * proxyproto_v2 - the PROXY protocol v2 header (command PROXY, TCP) that
 * tells the application the client's address @src and the address it
 * connected to, @dst, into @out (PROXYPROTO_MAX bytes). Both must be of one
 * family, AF_INET or AF_INET6. Returns the header's length, or 0 for
 * addresses it cannot describe.
 */
size_t proxyproto_v2(uint8_t *out, const struct sockaddr *src, const struct sockaddr *dst);

#endif
