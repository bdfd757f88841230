/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_WORKER_H
#define TPIN_PROXY_WORKER_H

/*
 * One event loop on one thread: its epoll set, its listeners (one per
 * family, in the SO_REUSEPORT group of every worker) and its relay. Other
 * threads talk to it only through worker_post(), worker_describe() and the
 * atomic readings.
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "evset.h"
#include "listener.h"
#include "relay.h"
#include "tpin/log.h"

struct tpin_err;

struct tpin_metrics_shard;
struct tpin_strbuf;

enum worker_cmd {
	WORKER_NONE,
	WORKER_DRAIN, /* stop accepting; end what is left at the deadline */
	WORKER_STOP,  /* end everything now */
};

struct worker {
	uv_loop_t loop;
	uv_thread_t thread;
	uv_async_t async;
	uv_timer_t drain_timer;
	uv_timer_t limits; /* reads the descriptor limit again, every second */
	struct evset set;
	struct listener listeners[4]; /* inbound and outbound, IPv4 and IPv6 */
	unsigned n_listeners;
	struct relay relay;
	struct tpin_log_batch log;
	/*
	 * Other threads post commands through cmd and async; lock keeps them
	 * from sending to an async handle that is being closed.
	 */
	atomic_int cmd;
	atomic_uint drain_ms;
	uv_mutex_t lock;
	bool async_open;
	bool loop_ready, lock_ready, relay_ready, core_open, thread_started;
	bool ending;  /* listeners closed: the loop ends with its last session */
	bool drained; /* the drain deadline is running */
	int close_result;
	/* Called on the worker's thread once its loop has ended. */
	void (*on_exit)(void *arg);
	void *arg;
};

/*
 * worker_init - the loop, the epoll set, the relay and the listeners of
 * @specs (@n of them, at most 4; the inbound ones at *@port, the outbound
 * ones at *@out_port: 0 learns the port the first one of its kind got). Returns 0, or -errno with a
 * message in @err; the worker must be freed with worker_free() either way.
 */
int worker_init(struct worker *w, const struct relay_config *cfg, const struct listen_spec *specs,
		unsigned n, uint16_t *port, uint16_t *out_port, struct tpin_metrics_shard *m,
		struct tpin_err *err);

/* worker_start - run the loop on a new thread. Returns 0 or -errno. */
int worker_start(struct worker *w);

/* worker_post - ask for a drain (with its deadline) or a stop. Any thread. */
void worker_post(struct worker *w, enum worker_cmd cmd, uint32_t drain_ms);

/* worker_join - wait for the thread; -EBUSY when the loop ended holding a handle. */
int worker_join(struct worker *w);

/* worker_free - close what is left (of a worker that never ran, too) and free it. */
void worker_free(struct worker *w);

/* worker_listening - whether every listener accepts. Any thread. */
bool worker_listening(const struct worker *w);

/* worker_listener_fd - the listening socket @i, or -1. */
int worker_listener_fd(const struct worker *w, unsigned i);

/* worker_describe - the worker's connections, one line each. Any thread. */
void worker_describe(struct worker *w, struct tpin_strbuf *sb);

/* worker_queue_peak - the most bytes that ever waited in one flow. Any thread. */
uint64_t worker_queue_peak(const struct worker *w);

#endif
