// SPDX-License-Identifier: MIT
/* Opening the connection to where a relayed connection goes. */

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tpin/sock.h"
#include "upstream.h"

int upstream_connect(const struct upstream_req *req, const char **step)
{
	int fd, ret;

	*step = "socket";
	fd = socket(req->dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* HTTP/2 and friends write a message in pieces: none may wait for an ACK. */
	ret = tpin_sock_set_nodelay(fd);
	if (!ret && req->mark)
		ret = tpin_sock_set_mark(fd, req->mark);
	if (!ret && req->ka)
		ret = tpin_sock_set_keepalive(fd, req->ka);
	if (ret)
		goto fail;
	if (req->src) {
		*step = "bind";
		/* Binding the client's address needs a transparent socket. */
		if (req->transparent)
			ret = tpin_sock_set_transparent(fd, req->src->sa_family);
		/*
		 * Without a port of our own, leave the port to connect(), so one
		 * source address serves every destination: the port need only
		 * be unique per destination, and a TIME_WAIT of an earlier
		 * connection can be reused.
		 */
		if (!ret)
			ret = req->src_port ? tpin_sock_set_reuseaddr(fd)
					    : tpin_sock_set_bind_no_port(fd);
		if (!ret && bind(fd, req->src, tpin_sockaddr_len(req->src)) < 0)
			ret = -errno;
		if (ret)
			goto fail;
	}
	*step = "connect";
	if (connect(fd, req->dst, tpin_sockaddr_len(req->dst)) < 0 && errno != EINPROGRESS) {
		ret = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}
