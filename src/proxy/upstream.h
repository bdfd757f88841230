/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_UPSTREAM_H
#define TPIN_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct tpin_keepalive;

/* How to open one connection to where a relayed connection goes. */
struct upstream_req {
	const struct sockaddr *dst;
	/* The source address, or NULL to let the kernel choose. */
	const struct sockaddr *src;
	/* @src's port is the caller's choice: bind it exactly (SO_REUSEADDR). */
	bool src_port;
	/* @src is not a local address (the client's own): IP_TRANSPARENT. */
	bool transparent;
	uint32_t mark;			 /* SO_MARK; 0 sets none */
	const struct tpin_keepalive *ka; /* NULL: no keepalive */
};

/*
 * upstream_connect - a non-blocking, close-on-exec TCP socket with
 * TCP_NODELAY, bound as @req says, connecting to req->dst. The connect
 * completes later (EPOLLOUT) or fails (EPOLLERR). Returns the descriptor,
 * or -errno with *@step naming the call that failed ("socket", "bind",
 * "connect").
 */
int upstream_connect(const struct upstream_req *req, const char **step);

#endif
