// SPDX-License-Identifier: MIT
/* The capture port listeners: one per family per event loop, SO_REUSEPORT. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy-internal.h"
#include "tpin/log.h"
#include "tpin/sock.h"

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;

	if (status < 0) {
		/*
		 * EMFILE and ENFILE land here after libuv has accepted and closed
		 * the connection with its reserve descriptor: one connection lost,
		 * the listener keeps going.
		 */
		tpin_log_event(l->w->p->opt.log, "accept on the IPv%c listener: %s",
			       l->family == AF_INET6 ? '6' : '4', uv_strerror(status));
		return;
	}
	relay_accept(l->w, server);
}

static void listen_addr(const struct tpin_proxy_options *opt, int family, uint16_t port,
			struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(opt->loopback_only ? INADDR_LOOPBACK : INADDR_ANY);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = opt->loopback_only ? in6addr_loopback : in6addr_any;
	}
}

static int privileged(int ret, const char *what, int family, char *err, size_t errlen)
{
	snprintf(err, errlen, "cannot set %s on the IPv%c listener: %s%s", what,
		 family == AF_INET6 ? '6' : '4', strerror(-ret),
		 ret == -EPERM ? " (tpin-proxy needs CAP_NET_ADMIN)" : "");
	return ret;
}

int listener_open(struct worker *w, int family, uint16_t *port, char *err, size_t errlen)
{
	const struct tpin_proxy_options *opt = &w->p->opt;
	struct listener *l = &w->listeners[w->n_listeners];
	char where[TPIN_SOCKADDR_STRLEN];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	uv_os_fd_t fd;
	int ret;

	ret = uv_tcp_init_ex(&w->loop, &l->tcp, family);
	if (ret) {
		snprintf(err, errlen, "cannot create the IPv%c listener: %s",
			 family == AF_INET6 ? '6' : '4', uv_strerror(ret));
		return ret;
	}
	w->n_listeners++;
	l->open = true;
	l->w = w;
	l->family = family;
	l->tcp.data = l;
	uv_fileno((uv_handle_t *)&l->tcp, &fd);

	ret = tpin_sock_set_reuseport(fd);
	if (ret) {
		snprintf(err, errlen, "cannot set SO_REUSEPORT: %s", strerror(-ret));
		return ret;
	}
	/* The kernel hands TPROXY'd packets only to transparent sockets, and
	 * the option counts only when set before bind(). */
	if (opt->transparent) {
		ret = tpin_sock_set_transparent(fd, family);
		if (ret)
			return privileged(ret, family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT",
					  family, err, errlen);
	}
	/* Replies to real clients carry the proxy mark so they are never
	 * diverted back into the proxy; accepted sockets inherit it. */
	if (opt->proxy_mark) {
		ret = tpin_sock_set_mark(fd, opt->proxy_mark);
		if (ret)
			return privileged(ret, "SO_MARK", family, err, errlen);
	}

	listen_addr(opt, family, *port, &ss);
	tpin_sockaddr_format((struct sockaddr *)&ss, where, sizeof(where));
	ret = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&l->tcp, 4096, on_connection);
	if (ret) {
		snprintf(err, errlen, "cannot listen on %s: %s", where, uv_strerror(ret));
		return ret;
	}
	if (!*port) {
		ret = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, (int *)&len);
		if (ret) {
			snprintf(err, errlen, "getsockname: %s", uv_strerror(ret));
			return ret;
		}
		*port = tpin_sockaddr_port((struct sockaddr *)&ss);
	}
	atomic_store(&l->up, true);
	return 0;
}

void listener_close_all(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->n_listeners; i++) {
		struct listener *l = &w->listeners[i];

		atomic_store(&l->up, false);
		if (l->open)
			uv_close((uv_handle_t *)&l->tcp, NULL);
		l->open = false;
	}
}
