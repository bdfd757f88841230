/* SPDX-License-Identifier: MIT */
#ifndef TPIN_MACROS_H
#define TPIN_MACROS_H

/*
 * Small macros the proxy, the tools and the tests share, one definition
 * each.
 */

#include <stddef.h>

/*
 * container_of - the struct of @type whose @member @ptr points to: how a
 * libuv callback gets from its handle or request back to what embeds it.
 * Unchecked, as libuv's own: a uv_stream_t * may stand for the uv_tcp_t
 * member it heads.
 */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ARRAY_SIZE - the number of elements of an array (not of a pointer). */
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
