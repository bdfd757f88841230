/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_UPSTREAM_H
#define TPIN_PROXY_UPSTREAM_H

/* Opening the connection to where a relayed connection goes. */

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct sources;
struct tpin_keepalive;
struct tpin_proxy_options;

union inaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

/* What decides where and from where a connection goes. */
struct upstream_target {
	const struct tpin_proxy_options *opt;
	const struct sockaddr *peer; /* the client */
	const struct sockaddr *orig; /* where the client meant to go */
	struct sources *sources;     /* the clients' live 4-tuples (--preserve-source) */
	atomic_uint *port_cursor;    /* the next --preserve-source port, all workers' */
	/*
	 * The app's own connection, out of the pod: to @orig itself, from the
	 * pod's own address, with the proxy's mark (so the rules never take it
	 * again) and keepalive (the far end is across the network).
	 */
	bool outbound;
};

/*
 * upstream_addr - where a connection to @orig goes: @orig itself, or
 * loopback at its port when an inbound one goes with --upstream localhost.
 */
void upstream_addr(const struct tpin_proxy_options *opt, const struct sockaddr *orig, bool outbound,
		   union inaddr *out);

/*
 * upstream_open - a non-blocking, close-on-exec TCP socket with
 * TCP_NODELAY, bound to the source @t calls for (the passthrough source,
 * or the client's own address with a port picked here), connecting to
 * upstream_addr(). The connect completes later (EPOLLOUT) or fails
 * (EPOLLERR). Returns the descriptor, or -errno with *@step naming the call
 * that failed ("socket", "bind", "connect"). With --preserve-source the
 * port it bound is in *@port and pinned in t->sources (sources_unpin() it
 * when the connection ends); otherwise *@port is 0.
 */
int upstream_open(const struct upstream_target *t, uint16_t *port, const char **step);

#endif
