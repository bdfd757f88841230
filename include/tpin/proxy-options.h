/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_OPTIONS_H
#define TPIN_PROXY_OPTIONS_H

/*
 * What tpin-proxy is told: plain data, read by every layer of the proxy
 * (worker, relay, session, upstream) and filled in by its caller
 * (tpin_proxy_options_init() in tpin/proxy.h gives the defaults).
 */

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tpin/config.h"
#include "tpin/sock.h"

struct tpin_log;
enum tpin_upstream {
	TPIN_UPSTREAM_ORIGINAL,	 /* the original destination (Istio >= 1.10) */
	TPIN_UPSTREAM_LOCALHOST, /* 127.0.0.1 or ::1 at the original port (Istio 1.5) */
};

/*
 * The app's leg's bounds by default (--upstream-buffer, --upstream-mss;
 * docs/proxy.md): none, the kernel sizes it, as Envoy and HAProxy leave it.
 */
#define TPIN_UPSTREAM_BUFFER_DEFAULT 0u
#define TPIN_UPSTREAM_MSS_DEFAULT    0u
/* The most TCP_MAXSEG takes (the kernel's MAX_TCP_WINDOW); more is EINVAL. */
#define TPIN_UPSTREAM_MSS_MAX 32767u

struct tpin_proxy_options {
	enum tpin_mode mode; /* how the inbound listeners learn the original destination */
	enum tpin_mode
		outbound_mode; /* the same for the outbound ones (Istio's TPROXY mode: redirect) */
	enum tpin_upstream upstream;
	uint16_t capture_port;	/* the inbound listeners' port */
	uint16_t outbound_port; /* the outbound listeners' port (the app's own connections); 0: none
				 */
	uint16_t admin_port;	/* never relayed to, like the capture port */
	bool ipv4;		/* listen on IPv4 */
	bool ipv6;		/* listen on IPv6 */
	uint32_t proxy_mark;	/* SO_MARK on the listeners; 0 sets none */
	/* Source of upstream connections; sin_family 0 leaves it to the kernel. */
	struct sockaddr_in passthrough4;
	struct sockaddr_in6 passthrough6;
	bool preserve_source; /* connect from the client's own address */
	/* The ports the proxy binds such connections to (relay.c says why). */
	uint16_t preserve_port_first, preserve_port_last;
	bool proxy_protocol; /* inbound: send the app a PROXY protocol v2 header first */
	/*
	 * The app's leg (inbound upstream sockets, over loopback): its socket
	 * buffers' size (SO_RCVBUF and SO_SNDBUF; 0: the kernel's autotuning)
	 * and the segment size it offers (TCP_MAXSEG; 0: the route's). Both
	 * bound what a stalled connection holds in the kernel; upstream.c says
	 * why.
	 */
	uint32_t upstream_buffer;
	uint32_t upstream_mss;
	unsigned concurrency; /* event loops; 0 means one per CPU */
	uint32_t connect_timeout_ms;
	uint32_t idle_timeout_ms; /* 0: none */
	uint32_t max_connections; /* over all loops; 0: no cap */
	uint32_t max_per_source;  /* per IPv4 address or IPv6 /64; 0: no cap */
	/* TCP keepalive of the clients' sockets (the network side); idle_s 0: none. */
	struct tpin_keepalive keepalive;
	/* Bytes pending toward one side before the other side stops being read. */
	size_t queue_limit;
	struct tpin_log *log; /* access log; may be NULL; not owned */
	/* Called on a worker thread once every loop has ended; may be NULL. */
	void (*on_finished)(void *arg);
	void *on_finished_arg;
};

#endif
