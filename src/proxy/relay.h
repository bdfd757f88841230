/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_RELAY_H
#define TPIN_PROXY_RELAY_H

/*
 * The relay of one worker: decides whether an accepted connection may be
 * relayed, and hands it to a session (session.h) if so. It runs on the
 * worker's loop and thread; other threads only read the session list, under
 * its lock.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "evset.h"
#include "localaddr.h"
#include "session.h"

struct sources;
struct tpin_log_batch;
struct tpin_metrics_shard;
struct tpin_proxy_hooks;
struct tpin_proxy_options;
struct tpin_strbuf;

/* What a relay needs to know: shared by the workers, read-only. */
struct relay_config {
	const struct tpin_proxy_options *opt;
	uint16_t capture_port;	/* the port the inbound listeners are bound to */
	uint16_t outbound_port; /* the outbound listeners' port; 0: none */
	atomic_uint *live;	/* connections under --max-connections, all workers */
	/*
	 * Descriptors at or above this number are the reserve: established
	 * connections, the admin endpoint and readiness keep working on it,
	 * while a new connection that got such a descriptor is refused. The
	 * kernel hands out the lowest free number, so the number of an accepted
	 * socket says how many are in use: no counting, no system call.
	 */
	atomic_int *fd_limit;
	struct sources *sources;	/* connections per client source, all workers */
	atomic_uint *port_cursor;	/* the next --preserve-source port, all workers */
	struct tpin_proxy_hooks *hooks; /* NULL but in tests */
};

struct relay {
	const struct relay_config *cfg;
	struct session_env env;
	struct localaddr local; /* the namespace's addresses: what may be relayed to */
};

/*
 * relay_init - an empty relay on @loop and @set. @on_empty(@arg) is called
 * once relay_end() was called and the last session is gone. Returns 0,
 * -ENOMEM, or the -errno of reading the namespace's addresses.
 */
int relay_init(struct relay *r, const struct relay_config *cfg, uv_loop_t *loop, struct evset *set,
	       struct tpin_metrics_shard *m, struct tpin_log_batch *log,
	       void (*on_empty)(void *arg), void *arg);

/*
 * relay_accept - relay the accepted connection @fd, whose peer is @peer, if
 * it may be relayed: the relay owns @fd from now on, and any failure costs
 * this connection only. @outbound: the app's own connection, from the
 * outbound listener.
 */
void relay_accept(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len,
		  bool outbound);

/*
 * relay_close_all - end every session now, logged with @why; sides with
 * bytes still on their way to them are reset rather than sent a FIN.
 */
void relay_close_all(struct relay *r, const char *why);

/* relay_end - no more connections will come: call on_empty once none is left. */
void relay_end(struct relay *r);

/*
 * Descriptors kept back from new connections, for what may be opened after
 * the baseline: the admin endpoint's and readiness's connections (8 and 32,
 * admin.c), the upstream socket of the connection that took the last free
 * descriptor, the netlink sockets of a readiness check, a log reopened on
 * SIGHUP, and a margin.
 */
#define RELAY_FD_RESERVE 56

/*
 * relay_limits_refresh - read the descriptor limit again (prlimit(1) may
 * have changed it) and set cfg->fd_limit. Any thread.
 */
void relay_limits_refresh(const struct relay_config *cfg);

/* relay_describe - one line per session into @sb. Any thread. */
void relay_describe(struct relay *r, struct tpin_strbuf *sb);

/* relay_queue_peak - the most bytes that ever waited in one flow. Any thread. */
uint64_t relay_queue_peak(const struct relay *r);

/* relay_fini - free what is left, once the loop has ended. */
void relay_fini(struct relay *r);

#endif
