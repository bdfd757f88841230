// SPDX-License-Identifier: MIT
/* The capture port listeners: one per family per event loop, SO_REUSEPORT. */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proxy-internal.h"
#include "tpin/log.h"
#include "tpin/sock.h"

/* How long a listener that ran out of descriptors stays closed. */
#define EMFILE_PAUSE_MS 100

static int listener_setup(struct listener *l, uint16_t *port, char *err, size_t errlen);
static void on_paused(uv_handle_t *h);

static void on_pause_over(uv_timer_t *t)
{
	struct listener *l = t->data;
	uint16_t port = l->w->p->port;
	char err[256];

	if (l->w->ending)
		return;
	if (!listener_setup(l, &port, err, sizeof(err)))
		return;
	tpin_log_event(l->w->p->opt.log, "reopening the IPv%c listener: %s; again in %d ms",
		       l->family == AF_INET6 ? '6' : '4', err, EMFILE_PAUSE_MS);
	/* A half-made socket goes first; its close callback restarts the timer. */
	if (l->open) {
		l->open = false;
		uv_close((uv_handle_t *)&l->tcp, on_paused);
	} else {
		uv_timer_start(&l->pause, on_pause_over, EMFILE_PAUSE_MS, 0);
	}
}

static void on_paused(uv_handle_t *h)
{
	struct listener *l = h->data;

	if (!l->w->ending)
		uv_timer_start(&l->pause, on_pause_over, EMFILE_PAUSE_MS, 0);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;

	if (status == UV_EMFILE || status == UV_ENFILE) {
		/*
		 * Out of descriptors. libuv's reserve-descriptor trick cannot be
		 * relied on when several event loops share one descriptor table
		 * (another thread takes the freed slot), and libuv retries the
		 * accept at once after this callback: the loop would spin. So
		 * the listener closes, which resets the connections queued on
		 * it, and reopens shortly; meanwhile the other loops' listeners
		 * of the SO_REUSEPORT group take new connections.
		 */
		tpin_log_event(l->w->p->opt.log,
			       "accept on the IPv%c listener: %s: closed for %d ms, its queued "
			       "connections reset",
			       l->family == AF_INET6 ? '6' : '4', uv_strerror(status),
			       EMFILE_PAUSE_MS);
		atomic_store(&l->up, false);
		l->open = false;
		uv_close((uv_handle_t *)&l->tcp, on_paused);
		return;
	}
	if (status < 0) {
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
	struct listener *l = &w->listeners[w->n_listeners++];

	l->w = w;
	l->family = family;
	uv_timer_init(&w->loop, &l->pause);
	l->pause.data = l;
	l->pause_open = true;
	return listener_setup(l, port, err, errlen);
}

/* Create, bind and listen; on *port 0, learn the port the kernel chose. */
static int listener_setup(struct listener *l, uint16_t *port, char *err, size_t errlen)
{
	const struct tpin_proxy_options *opt = &l->w->p->opt;
	char where[TPIN_SOCKADDR_STRLEN];
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int family = l->family;
	uv_os_fd_t fd;
	int ret;

	ret = uv_tcp_init_ex(&l->w->loop, &l->tcp, family);
	if (ret) {
		snprintf(err, errlen, "cannot create the IPv%c listener: %s",
			 family == AF_INET6 ? '6' : '4', uv_strerror(ret));
		return ret;
	}
	l->open = true;
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
			return privileged(
				ret, family == AF_INET6 ? "IPV6_TRANSPARENT" : "IP_TRANSPARENT",
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
	ret = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss,
			  family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
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
		if (l->pause_open)
			uv_close((uv_handle_t *)&l->pause, NULL);
		l->pause_open = false;
	}
}
