/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_H
#define TPIN_PROXY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "tpin/proxy-options.h"
#include "tpin/strbuf.h"

struct tpin_err;

/*
 * tpin-proxy as a library: N event loops, each on its own thread with its
 * own SO_REUSEPORT listeners, relaying every accepted connection to the
 * application. The binary is a thin main around this; the tests drive the
 * same code over loopback without privileges, through the hooks of
 * tpin/proxy-hooks.h that only test programs link.
 *
 * Life cycle: tpin_proxy_new() binds the listeners (so every privileged step
 * and every error happens before any thread runs), tpin_proxy_start() starts
 * the loops, tpin_proxy_drain() or tpin_proxy_stop() ends them,
 * tpin_proxy_wait() joins them and tpin_proxy_free() releases the rest.
 */
struct tpin_proxy;
struct tpin_log;
struct tpin_metrics;

struct tpin_proxy_stats {
	uint64_t accepted;
	uint64_t active;
	uint64_t refused;
	uint64_t connect_failures;
	uint64_t bytes_up;   /* client to application */
	uint64_t bytes_down; /* application to client */
	/* Most bytes ever pending toward one side of one connection. */
	uint64_t queue_peak;
	/* Connections holding a place under max_connections now. */
	uint64_t live;
};

/*
 * tpin_proxy_options_init - the defaults: tproxy mode, port 15006, both
 * families, passthrough source 127.0.0.6 and ::6, 10 s connect timeout,
 * 1 h idle timeout (Envoy's TCP proxy's), keepalive probes after 60 s quiet
 * every 10 s, 6 of them (a vanished client is found within 2 minutes),
 * 256 KiB queue limit, no connection cap (the caller derives one from the
 * descriptor limit: see tpin_proxy_default_caps()).
 */
void tpin_proxy_options_init(struct tpin_proxy_options *opt);

/*
 * tpin_proxy_default_caps - the caps a sidecar can live with, from the
 * descriptor limit: as many connections as two descriptors each allow after
 * the reserve, and a quarter of them per source.
 */
void tpin_proxy_default_caps(uint32_t *max_connections, uint32_t *max_per_source);

/*
 * tpin_proxy_new - create the loops and bind every listener. Returns 0,
 * -EINVAL for a bad option, -EPERM when a privileged option was refused (the
 * message in @err names CAP_NET_ADMIN), -ENOMEM, or the -errno of a socket
 * call; on error nothing is left allocated.
 */
int tpin_proxy_new(struct tpin_proxy **out, const struct tpin_proxy_options *opt,
		   struct tpin_err *err);

/* tpin_proxy_start - run every loop on its own thread. Returns 0 or -errno. */
int tpin_proxy_start(struct tpin_proxy *p);

/*
 * tpin_proxy_drain - stop accepting; connections may finish for @timeout_ms,
 * then the rest are closed. Safe from any thread; idempotent.
 */
void tpin_proxy_drain(struct tpin_proxy *p, uint32_t timeout_ms);

/* tpin_proxy_stop - close everything now. Safe from any thread. */
void tpin_proxy_stop(struct tpin_proxy *p);

/*
 * tpin_proxy_wait - join the loops after drain or stop. Returns 0, or -EBUSY
 * when a loop still held a handle as it ended (uv_loop_close() failed).
 */
int tpin_proxy_wait(struct tpin_proxy *p);

/* tpin_proxy_free - release @p after tpin_proxy_wait(); NULL is fine. */
void tpin_proxy_free(struct tpin_proxy *p);

/* tpin_proxy_port - the port the inbound listeners are bound to. */
uint16_t tpin_proxy_port(const struct tpin_proxy *p);

/* tpin_proxy_outbound_port - the port the outbound listeners are bound to; 0: none. */
uint16_t tpin_proxy_outbound_port(const struct tpin_proxy *p);

/* tpin_proxy_listening - whether every listener is still accepting. */
bool tpin_proxy_listening(const struct tpin_proxy *p);

/*
 * tpin_proxy_transparent - whether every listener really has the transparent
 * option, as read back from the kernel. Returns 0 or -errno.
 */
int tpin_proxy_transparent(const struct tpin_proxy *p, bool *all);

void tpin_proxy_stats(const struct tpin_proxy *p, struct tpin_proxy_stats *st);

/* tpin_proxy_metrics - the counters, for the admin endpoint. */
struct tpin_metrics *tpin_proxy_metrics(const struct tpin_proxy *p);

/*
 * tpin_proxy_connections - the live connections as text, one per line, into
 * @sb (check sb->err).
 */
void tpin_proxy_connections(struct tpin_proxy *p, struct tpin_strbuf *sb);

#endif
