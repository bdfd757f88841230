/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_INTERNAL_H
#define TPIN_PROXY_INTERNAL_H

/*
 * What listener.c, relay.c and proxy.c share and nobody else sees. One
 * worker is one event loop on one thread; everything a worker owns is
 * touched only by its thread, except the fields marked otherwise.
 */

#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

#include "tpin/proxy.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct session;
struct worker;

/* Empty pipes a worker keeps for reuse (two descriptors each). */
#define RELAY_PIPE_POOL 16

struct listener {
	uv_tcp_t tcp;
	uv_timer_t pause; /* reopens the listener after an EMFILE pause */
	struct worker *w;
	int family;
	bool open;	 /* the handle needs closing */
	bool pause_open; /* the timer needs closing */
	atomic_bool up;	 /* accepting; read by the admin thread */
};

enum worker_cmd {
	CMD_NONE,
	CMD_DRAIN,
	CMD_STOP,
};

struct worker {
	struct tpin_proxy *p;
	uv_loop_t loop;
	bool loop_ready;
	uv_thread_t thread;
	bool thread_started;
	uv_async_t async;
	uv_timer_t drain_timer;
	bool core_open; /* async and drain_timer need closing */
	struct listener listeners[2];
	unsigned n_listeners;
	bool ending;  /* listeners closed: the loop ends with its last session */
	bool drained; /* the drain deadline is running */
	/*
	 * Other threads post commands through cmd and async; lock keeps them
	 * from sending to an async handle that is being closed, and guards the
	 * session list that the admin thread reads.
	 */
	atomic_int cmd;
	atomic_uint drain_ms;
	uv_mutex_t lock;
	bool lock_ready;
	bool async_open;
	struct session *sessions;
	unsigned n_sessions;
	/* A handle to accept and reset with when a session cannot be allocated. */
	uv_tcp_t reject;
	bool reject_busy;
	/* Listeners (one per family) that libuv stopped with a connection waiting for it. */
	uv_stream_t *reject_waiting[2];
	atomic_uint_fast64_t queue_peak;
	/* The read buffer every session of this loop shares (relay.c). */
	char *rbuf;
	/* This loop's metrics: written by this thread only. */
	struct tpin_metrics_shard *m;
	/* Freed sessions kept for the next connections (relay.c). */
	struct session *free_sessions;
	unsigned n_free;
	/*
	 * Access lines wait here and are written once per loop turn (the
	 * prepare handle runs before the loop waits), when the buffer is full
	 * and when the loop ends: one write(2) for many connections.
	 */
	char *logbuf;
	size_t loglen;
	/* Empty pipes of the splice path, kept for the next bulk connection. */
	int pipes[RELAY_PIPE_POOL][2];
	unsigned n_pipes;
	uv_prepare_t log_flush;
	bool log_open; /* log_flush needs closing */
	int close_result;
};

struct tpin_proxy {
	struct tpin_proxy_options opt;
	struct tpin_metrics *metrics;
	struct worker *workers;
	unsigned n_workers;
	uint16_t port;
	atomic_uint live;    /* sessions past the cap check, for --max-connections */
	atomic_uint running; /* loops still running */
	bool started;
};

/* listener.c */
int listener_open(struct worker *w, int family, uint16_t *port, char *err, size_t errlen);
void listener_close_all(struct worker *w);

/* relay.c */
#define RELAY_BUF_SIZE (64 * 1024)
#define RELAY_LOG_SIZE (16 * 1024)
void relay_accept(struct worker *w, uv_stream_t *server);
void relay_log_flush(struct worker *w);
void relay_free_sessions(struct worker *w);
void relay_free_pipes(struct worker *w);
void relay_close_all(struct worker *w, const char *why);
void relay_describe(struct worker *w, struct tpin_strbuf *sb);
/* Tests only: while set, no session can be allocated, as when out of memory. */
extern atomic_bool tpin_relay_fail_alloc;

/* proxy.c: the worker may end once it is ending and has no session left. */
void worker_maybe_end(struct worker *w);

#endif
