/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROXY_SESSION_H
#define TPIN_PROXY_SESSION_H

/*
 * A session: one relayed connection, the client's socket and the upstream
 * socket with a flow each way between them. relay.c decides whether a new
 * connection may be relayed; from session_start() on, everything that
 * happens to it is here (session.c).
 */

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "evset.h"
#include "flow.h"
#include "tpin/metrics.h"
#include "upstream.h"

struct sources;
struct tpin_log_batch;
struct tpin_proxy_options;
struct tpin_strbuf;

/* What the sessions of one worker share; only the worker's thread uses it, but for @lock. */
struct session_env {
	const struct tpin_proxy_options *opt;
	uv_loop_t *loop;
	struct evset *set;
	struct flow_ctx fx;
	struct tpin_metrics_shard *m;
	struct tpin_log_batch *log;
	struct sources *sources; /* all workers' */
	atomic_uint *live;	 /* connections under --max-connections, all workers */
	/* Guards the list, which the admin thread reads. */
	uv_mutex_t lock;
	struct session *list;
	unsigned n; /* sessions not yet freed, listed or not */
	/* Freed sessions kept for the next connections. */
	struct session *free;
	unsigned n_free;
	atomic_uint *port_cursor;	 /* the next --preserve-source port, all workers' */
	atomic_uint_fast64_t queue_peak; /* the most ever waiting in one flow */
	bool ending;			 /* no new sessions: on_empty after the last */
	void (*on_empty)(void *arg);
	void *arg;
};

struct session {
	struct side client;
	struct side upstream;
	struct flow up;	  /* client to upstream */
	struct flow down; /* upstream to client */
	struct session_env *env;
	struct session *prev, *next; /* the list; next links the freelist too */
	struct task more;	     /* a flow yielded with input left */
	uv_timer_t timer;	     /* the connect timeout, then the idle timeout */
	uint64_t started_ms;
	uint64_t last_active_ms;
	union inaddr peer; /* the client */
	union inaddr orig; /* the original destination; sa_family 0 until known */
	/*
	 * How the session ended: a fixed word, or with what set
	 * "<result>_<what>:<errno name>", made only when logged.
	 */
	const char *result;
	const char *what;
	int status;
	atomic_int state;
	/* The side that failed: what it sent goes on, then the other is reset (session.c). */
	struct side *failed;
	uint32_t reset_outq;	/* the least the other side's send queue held since */
	uint16_t reset_poll_ms; /* when the timer looks at it again */
	uint16_t port;		/* the original destination port, for metrics */
	uint16_t pinned_port;	/* the --preserve-source port pinned in env->sources; 0: none */
	bool up_fin;		/* the client's FIN was passed on to the upstream */
	bool down_fin;		/* the upstream's FIN was passed on to the client */
	/*
	 * Bit fields share one memory location: only the worker's thread may
	 * touch these, written and read without the lock.
	 */
	bool connected : 1;
	bool closing : 1;
	bool counted : 1; /* holds a place under --max-connections */
	bool sourced : 1; /* counted in env->sources */
	bool listed : 1;  /* on the list */
	/*
	 * Read by the admin thread (session_describe()) while the worker
	 * writes the bits above, so none of them is a bit field. Both are set
	 * before the session is listed and never change after.
	 */
	bool outbound; /* the app's own connection, from the outbound listener */
	bool chosen;   /* an upstream address was chosen (else "-") */
};

/*
 * session_env_init - @env's own parts: the read buffer, the pipe pool, the
 * lock; the caller fills the rest. Returns 0 or -ENOMEM.
 */
int session_env_init(struct session_env *env, size_t queue_limit, atomic_int *fd_limit);

/* session_env_fini - free what is left, once the loop has ended. */
void session_env_fini(struct session_env *env);

/*
 * session_new - a session for the socket @fd accepted from @peer (the app,
 * on the outbound listener, when @outbound), not yet relaying. From here on
 * the session owns @fd and closes it however it ends; NULL when out of
 * memory, and @fd is then still the caller's. The caller fills in orig,
 * port, counted and sourced, then calls exactly one of session_start(),
 * session_refuse() or session_fail_client().
 */
struct session *session_new(struct session_env *env, int fd, const struct sockaddr *peer,
			    socklen_t peer_len, bool outbound);

/*
 * session_start - watch the client, start the connect timeout, connect
 * upstream. The client's bytes are relayed once the upstream connected;
 * the client hears a reset if it cannot be (refused, timed out, no socket,
 * no descriptor, the client's socket not watched). The session closes the
 * client's socket when it ends, with or without a reset (session.c).
 */
void session_start(struct session *s);

/*
 * session_refuse - count it as refused for @why, log @result and end the
 * session now: the client hears a reset, and its socket is closed.
 */
void session_refuse(struct session *s, enum tpin_refusal why, const char *result);

/*
 * session_fail_client - end the session now, before it started, logged as
 * "client_<what>:<ERRNAME>" for the error @err (-errno): the client hears a
 * reset, and its socket is closed. Not counted as a refusal.
 */
void session_fail_client(struct session *s, const char *what, int err);

/*
 * session_close_all - end every session now, logged with @why; sides with
 * bytes still on their way to them are reset rather than sent a FIN.
 */
void session_close_all(struct session_env *env, const char *why);

/* session_describe - one line per listed session into @sb. Any thread. */
void session_describe(struct session_env *env, struct tpin_strbuf *sb);

#endif
