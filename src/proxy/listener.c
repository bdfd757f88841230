// SPDX-License-Identifier: MIT
/* A listening socket of one worker: SO_REUSEPORT, accept4(2) in a batch. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tpin/err.h"
#include "listener.h"
#include "tpin/log.h"
#include "tpin/sock.h"

/* How long a listener that ran out of descriptors waits before it accepts again. */
#define EMFILE_PAUSE_MS 100
/* Connections taken per event, so the loop's other work is not starved. */
#define ACCEPT_BATCH 64

static char version(int family)
{
	return family == AF_INET6 ? '6' : '4';
}

static void on_pause_over(uv_timer_t *t)
{
	struct listener *l = t->data;

	if (l->open && !evset_add(l->set, &l->io, true))
		atomic_store(&l->up, true);
	else if (l->open)
		uv_timer_start(&l->pause, on_pause_over, EMFILE_PAUSE_MS, 0);
}

static void on_readable(struct io *io, uint32_t events)
{
	struct listener *l = (struct listener *)io;
	struct sockaddr_storage peer;
	socklen_t len;
	unsigned n;
	int fd;

	for (n = 0; n < ACCEPT_BATCH; n++) {
		len = sizeof(peer);
		fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			l->on_accept(l, fd, (struct sockaddr *)&peer, len);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EAGAIN)
			return;
		if (errno == EMFILE || errno == ENFILE) {
			/*
			 * Out of descriptors: the connection stays queued and the
			 * level-triggered listener would report it again at once.
			 * Stop watching for a moment while closing connections
			 * give descriptors back. The other loops' listeners of
			 * the SO_REUSEPORT group do not take this one's share
			 * meanwhile: the kernel hashes each new connection to one
			 * listener by its addresses and ports, so those hashed
			 * here wait in this backlog (or, once it is full, their
			 * SYNs are dropped and the clients retry) until the pause
			 * ends.
			 */
			tpin_log_event(l->log,
				       "accept on the IPv%c listener: %s: pausing for %d ms",
				       version(l->family), strerror(errno), EMFILE_PAUSE_MS);
			atomic_store(&l->up, false);
			evset_remove(l->set, &l->io);
			uv_timer_start(&l->pause, on_pause_over, EMFILE_PAUSE_MS, 0);
			return;
		}
		/* ENOBUFS, ENOMEM, EPERM (a firewall): this connection is lost, not the listener.
		 */
		tpin_log_event(l->log, "accept on the IPv%c listener: %s", version(l->family),
			       strerror(errno));
		return;
	}
}

static int privileged(int ret, const char *what, int family, struct tpin_err *err)
{
	tpin_err_set(err, ret, "cannot set %s on the IPv%c listener: %s%s", what, version(family),
		     strerror(-ret), ret == -EPERM ? " (tpin-proxy needs CAP_NET_ADMIN)" : "");
	return ret;
}

static void listen_addr(const struct listen_spec *spec, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (spec->family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(spec->port);
		sin->sin_addr.s_addr = htonl(spec->loopback ? INADDR_LOOPBACK : INADDR_ANY);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(spec->port);
		sin6->sin6_addr = spec->loopback ? in6addr_loopback : in6addr_any;
	}
}

/* The options every accepted socket inherits from its listener. */
static int inherited_options(int fd, const struct listen_spec *spec, struct tpin_err *err)
{
	int ret = tpin_sock_set_nodelay(fd);

	if (!ret && spec->ka)
		ret = tpin_sock_set_keepalive(fd, spec->ka);
	if (ret)
		tpin_err_set(err, ret,
			     "cannot set TCP_NODELAY or keepalive on the IPv%c listener: %s",
			     version(spec->family), strerror(-ret));
	return ret;
}

int listener_open(struct listener *l, uv_loop_t *loop, struct evset *set,
		  const struct listen_spec *spec, uint16_t *port, struct tpin_err *err)
{
	char where[TPIN_SOCKADDR_STRLEN];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd, ret;

	l->family = spec->family;
	l->outbound = spec->outbound;
	l->set = set;
	l->io.cb = on_readable;
	l->io.fd = fd = socket(spec->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		tpin_err_set(err, ret, "cannot create the IPv%c listener: %s",
			     version(spec->family), strerror(-ret));
		return ret;
	}
	uv_timer_init(loop, &l->pause);
	l->pause.data = l;
	l->open = true;
	/*
	 * SO_REUSEADDR too, and not for the listener's sake: an accepted
	 * transparent socket is bound to the original destination, the app's
	 * own address and port, and inherits the listener's flags. Without it,
	 * those sockets (alive, or in FIN_WAIT after the app died) would keep
	 * a restarted app from binding its port.
	 */
	ret = tpin_sock_set_reuseport(fd);
	if (!ret)
		ret = tpin_sock_set_reuseaddr(fd);
	if (ret) {
		tpin_err_set(err, ret, "cannot set SO_REUSEPORT or SO_REUSEADDR: %s",
			     strerror(-ret));
		return ret;
	}
	if (spec->family == AF_INET6) {
		int one = 1;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	/*
	 * The kernel hands TPROXY'd packets only to transparent sockets, and
	 * the option counts only when set before bind().
	 */
	if (spec->transparent) {
		ret = tpin_sock_set_transparent(fd, spec->family);
		if (ret)
			return privileged(ret,
					  spec->family == AF_INET6 ? "IPV6_TRANSPARENT"
								   : "IP_TRANSPARENT",
					  spec->family, err);
	}
	/*
	 * Replies to real clients carry the proxy mark so they are never
	 * diverted back into the proxy; accepted sockets inherit it.
	 */
	if (spec->mark) {
		ret = tpin_sock_set_mark(fd, spec->mark);
		if (ret)
			return privileged(ret, "SO_MARK", spec->family, err);
	}
	ret = inherited_options(fd, spec, err);
	if (ret)
		return ret;
	listen_addr(spec, &ss);
	tpin_sockaddr_format((struct sockaddr *)&ss, where, sizeof(where));
	if (bind(fd, (struct sockaddr *)&ss, tpin_sockaddr_len((struct sockaddr *)&ss)) < 0 ||
	    listen(fd, 4096) < 0) {
		ret = -errno;
		tpin_err_set(err, ret, "cannot listen on %s: %s", where, strerror(-ret));
		return ret;
	}
	if (!*port) {
		if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
			ret = -errno;
			tpin_err_set(err, ret, "getsockname: %s", strerror(-ret));
			return ret;
		}
		*port = tpin_sockaddr_port((struct sockaddr *)&ss);
	}
	ret = evset_add(set, &l->io, true);
	if (ret) {
		tpin_err_set(err, ret, "cannot watch the IPv%c listener: %s", version(spec->family),
			     strerror(-ret));
		return ret;
	}
	atomic_store(&l->up, true);
	return 0;
}

void listener_close(struct listener *l)
{
	atomic_store(&l->up, false);
	if (!l->open)
		return;
	l->open = false;
	close(l->io.fd);
	l->io.fd = -1;
	uv_close((uv_handle_t *)&l->pause, NULL);
}
