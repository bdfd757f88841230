/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_LISTENER_H
#define TPIN_PROXY_LISTENER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "evset.h"

struct tpin_err;

struct listener;
struct tpin_keepalive;
struct tpin_log;

/*
 * A connection accepted on @l: @fd is non-blocking and close-on-exec, and
 * now the callee's; @peer is the client's address, as accept4(2) gave it.
 */
typedef void (*listener_accept_cb)(struct listener *l, int fd, const struct sockaddr *peer,
				   socklen_t peer_len);

/* What to listen on, and the options every accepted socket inherits. */
struct listen_spec {
	int family;
	bool outbound;	  /* the outbound listener: the app's own connections */
	uint16_t port;	  /* 0: the kernel picks (tests) */
	bool loopback;	  /* 127.0.0.1 or ::1 instead of every address (tests) */
	bool transparent; /* IP_TRANSPARENT: takes what TPROXY diverts */
	uint32_t mark;	  /* SO_MARK; 0 sets none */
	/* TCP keepalive of the accepted sockets; NULL: none. */
	const struct tpin_keepalive *ka;
};

struct listener {
	struct io io; /* the listening socket, level-triggered in the set */
	struct evset *set;
	uv_timer_t pause; /* puts the socket back after an EMFILE pause */
	listener_accept_cb on_accept;
	void *data; /* the callee's */
	struct tpin_log *log;
	int family;
	bool outbound;	/* the app's own connections arrive here */
	atomic_bool up; /* accepting; read by the admin thread */
	bool open;
};

/*
 * listener_open - a listening socket as @spec says, in @set, calling
 * @on_accept for each connection. TCP_NODELAY and the keepalive are set on
 * the listener, and every accepted socket inherits them: no system call per
 * connection. On *@port 0 the port the kernel chose is stored there.
 * Returns 0, or -errno with a message in @err (naming CAP_NET_ADMIN for
 * -EPERM); the listener must be closed either way.
 */
int listener_open(struct listener *l, uv_loop_t *loop, struct evset *set,
		  const struct listen_spec *spec, uint16_t *port, struct tpin_err *err);

/* listener_close - stop listening; queued connections are reset. */
void listener_close(struct listener *l);

#endif
