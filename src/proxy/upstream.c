// SPDX-License-Identifier: MIT
/* Opening the connection to where a relayed connection goes; see upstream.h. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sources.h"
#include "tpin/proxy-options.h"
#include "tpin/sock.h"
#include "upstream.h"

/* Ports tried for an upstream from the client's address before giving up. */
#define PRESERVE_TRIES 16

void upstream_addr(const struct tpin_proxy_options *opt, const struct sockaddr *orig, bool outbound,
		   union inaddr *out)
{
	*out = *(const union inaddr *)orig;
	if (outbound || opt->upstream != TPIN_UPSTREAM_LOCALHOST)
		return;
	if (out->sa.sa_family == AF_INET)
		out->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		out->sin6.sin6_addr = in6addr_loopback;
}

/* The source address, or NULL to let the kernel choose. */
static const struct sockaddr *source(const struct upstream_target *t, union inaddr *src)
{
	const struct tpin_proxy_options *opt = t->opt;

	if (t->outbound)
		return NULL;
	if (opt->preserve_source) {
		*src = *(const union inaddr *)t->peer;
		return &src->sa;
	}
	if (t->orig->sa_family == AF_INET && opt->passthrough4.sin_family)
		return (const struct sockaddr *)&opt->passthrough4;
	if (t->orig->sa_family == AF_INET6 && opt->passthrough6.sin6_family)
		return (const struct sockaddr *)&opt->passthrough6;
	return NULL;
}

/*
 * With --preserve-source the upstream connection leaves from the client's
 * own address, and the port must not be one the client itself uses toward
 * the same destination: that connection's 4-tuple, seen from the app's
 * side, is the very one of the proxy's accepted socket, and the upstream
 * SYN would land on it and stall. The kernel checks its choice against
 * sockets of the same direction only, so the proxy, which knows every
 * client connection and every upstream one (sources_live()), picks the
 * port itself: from a range of its own (by default 1024-32767, below the
 * ephemeral ports Linux clients use, so a client is unlikely to pick it
 * later), with one cursor for all workers stepping through it, so a port
 * comes back only after the whole range.
 */
static uint16_t preserve_port(const struct upstream_target *t)
{
	const struct tpin_proxy_options *opt = t->opt;
	uint32_t size = (uint32_t)opt->preserve_port_last - opt->preserve_port_first + 1;
	uint16_t port;
	unsigned i;

	for (i = 0; i < 64; i++) {
		port = (uint16_t)(opt->preserve_port_first +
				  atomic_fetch_add_explicit(t->port_cursor, 1,
							    memory_order_relaxed) %
					  size);
		if (!sources_live(t->sources, t->peer, port, t->orig))
			return port;
	}
	return 0;
}

/*
 * The app's leg runs over loopback, where the kernel sizes both ends for a
 * fast link: the proxy's receive buffer autotunes up to tcp_rmem's maximum,
 * and the app's send buffer grows to twice the congestion window in
 * segments of loopback's 64 KiB MSS, which is 2.6 MiB from the first ACK on
 * and tcp_wmem's maximum soon after. When a client stops reading, the proxy
 * stops reading the app (the queue limit) and the kernel fills both to the
 * brim: 4.8 MiB per stalled connection in tools/stalled-memory, against
 * 0.5 MiB for the same client talking to the app directly. A fixed buffer
 * (which ends autotuning and sets the window scale at the SYN, hence before
 * connect) bounds the proxy's side and, by the window it offers, how far the
 * app's congestion window grows; a smaller MSS offered in the SYN bounds the
 * app's send buffer's floor, which is counted in segments. The same buffer
 * bounds what waits toward an app that stops reading. Returns 0 or -errno.
 */
static int bound_app_leg(int fd, const struct tpin_proxy_options *opt)
{
	int v;

	v = (int)opt->upstream_buffer;
	if (v && (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0 ||
		  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) < 0))
		return -errno;
	v = (int)opt->upstream_mss;
	if (v && setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &v, sizeof(v)) < 0)
		return -errno;
	return 0;
}

/* One socket, bound to @src (maybe NULL), connecting to @dst. */
static int open_one(const struct upstream_target *t, const struct sockaddr *dst,
		    const struct sockaddr *src, bool preserve, const char **step)
{
	int fd, ret;

	*step = "socket";
	fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* HTTP/2 and friends write a message in pieces: none may wait for an ACK. */
	ret = tpin_sock_set_nodelay(fd);
	if (!ret && t->outbound && t->opt->proxy_mark)
		ret = tpin_sock_set_mark(fd, t->opt->proxy_mark);
	if (!ret && t->outbound && t->opt->keepalive.idle_s)
		ret = tpin_sock_set_keepalive(fd, &t->opt->keepalive);
	/* Outbound connections cross the network: the kernel's sizing is right there. */
	if (!ret && !t->outbound)
		ret = bound_app_leg(fd, t->opt);
	if (ret)
		goto fail;
	if (src) {
		*step = "bind";
		/*
		 * The client's own address needs a transparent socket, and a
		 * port of our choosing that other upstream sockets to other
		 * destinations may share (SO_REUSEADDR). A passthrough source
		 * leaves the port to connect() (IP_BIND_ADDRESS_NO_PORT): it
		 * need only be unique per destination, one source address
		 * serves them all, and a TIME_WAIT of an earlier connection
		 * can be reused.
		 */
		if (preserve) {
			ret = tpin_sock_set_transparent(fd, src->sa_family);
			if (!ret)
				ret = tpin_sock_set_reuseaddr(fd);
		} else {
			ret = tpin_sock_set_bind_no_port(fd);
		}
		if (!ret && bind(fd, src, tpin_sockaddr_len(src)) < 0)
			ret = -errno;
		if (ret)
			goto fail;
	}
	*step = "connect";
	if (connect(fd, dst, tpin_sockaddr_len(dst)) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int upstream_open(const struct upstream_target *t, uint16_t *port_out, const char **step)
{
	bool preserve = t->opt->preserve_source && !t->outbound;
	union inaddr src, dst;
	const struct sockaddr *from;
	uint16_t port;
	unsigned tries;
	int fd = -EADDRNOTAVAIL;

	*step = "bind";
	*port_out = 0;
	upstream_addr(t->opt, t->orig, t->outbound, &dst);
	from = source(t, &src);
	if (!preserve)
		return open_one(t, &dst.sa, from, false, step);
	for (tries = 0; tries < PRESERVE_TRIES; tries++) {
		port = preserve_port(t);
		if (!port)
			break;
		if (src.sa.sa_family == AF_INET)
			src.sin.sin_port = htons(port);
		else
			src.sin6.sin6_port = htons(port);
		fd = open_one(t, &dst.sa, from, true, step);
		/* Taken by another process's socket to the same destination, or a listener. */
		if (fd != -EADDRNOTAVAIL && fd != -EADDRINUSE)
			break;
	}
	if (fd >= 0 && sources_pin(t->sources, t->peer, port, t->orig)) {
		close(fd);
		*step = "bind";
		return -ENOMEM;
	}
	if (fd >= 0)
		*port_out = port;
	return fd;
}
