// SPDX-License-Identifier: MIT
/*
 * A session's life, from session_start() to its last close callback: every
 * event of either socket runs the two flows (flow.h), and what they report
 * decides the session's fate: a FIN passed on (shutdown) when one direction
 * is done, both sockets closed when both are, a reset carried across as a
 * reset.
 *
 *   connecting --connected--> relaying --one FIN--> half-closed --both--> closed
 *        |                        \--a reset or error on one side--> resetting
 *        |                              --its bytes delivered--> closed, the other reset
 *        \--refused, timeout, failure: the client is reset       (closing)
 *
 * A session is what an idle connection costs, so it holds only what is
 * needed to relay: two sockets, two flows, a timer, two addresses. Text is
 * made only for the access log line and the admin listing. Its memory goes
 * back in the timer's close callback, the last thing libuv hands back.
 *
 * About 740 lines: one state machine whose every state ends through
 * session_end(); the resetting state (a failed side's bytes delivered
 * first) and the forced ends read the same private fields, and splitting
 * them off would put those fields and helpers in a header for one reader.
 */

#include <errno.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "proxyproto.h"
#include "session.h"
#include "sources.h"
#include "tpin/log.h"
#include "tpin/macros.h"
#include "tpin/metrics.h"
#include "tpin/proxy-options.h"
#include "tpin/sock.h"
#include "tpin/strbuf.h"

/* Sessions kept for reuse per worker: enough for bursts of new connections. */
#define FREELIST_MAX 256
/* One read's worth: big enough for bulk; one per worker, not per session. */
#define READ_SIZE (64 * 1024)
/* Empty pipes a worker keeps for the next bulk flows (two descriptors each). */
#define PIPE_POOL 16

enum session_state {
	STATE_CONNECTING,
	STATE_RELAYING,
	STATE_HALF_CLOSED,
	STATE_RESETTING,
	STATE_CLOSING,
};

static const char *const state_names[] = {
	[STATE_CONNECTING] = "connecting",   [STATE_RELAYING] = "relaying",
	[STATE_HALF_CLOSED] = "half-closed", [STATE_RESETTING] = "resetting",
	[STATE_CLOSING] = "closing",
};

enum {
	RESET_CLIENT = 1,
	RESET_UPSTREAM = 2,
};

/*
 * After a side failed, how often the other side's send queue is looked at
 * (SIOCOUTQ has no event): from the first value, doubling up to the second.
 */
#define RESET_POLL_FIRST_MS 2
#define RESET_POLL_MAX_MS   500

static void on_client_io(struct io *io, uint32_t events);

static enum tpin_traffic traffic(const struct session *s)
{
	return s->outbound ? TPIN_OUTBOUND : TPIN_INBOUND;
}

static void on_upstream_io(struct io *io, uint32_t events);
static void on_timer(uv_timer_t *t);
static void on_more(struct task *t);
static void session_end(struct session *s, const char *result, int reset);
static void session_fail(struct session *s, struct side *side, const char *what, int err);

/* ---- starting --------------------------------------------------------------- */

struct session *session_new(struct session_env *env, int fd, const struct sockaddr *peer,
			    socklen_t peer_len, bool outbound)
{
	struct session *s = env->free;

	if (s) {
		env->free = s->next;
		env->n_free--;
		memset(s, 0, sizeof(*s));
	} else {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
	}
	s->env = env;
	s->outbound = outbound;
	env->n++;
	tpin_metrics_accepted(env->m, traffic(s));
	s->started_ms = uv_now(env->loop);
	s->client.io = (struct io){ .fd = fd, .cb = on_client_io };
	s->upstream.io = (struct io){ .fd = -1, .cb = on_upstream_io };
	flow_init(&s->up, &s->client, &s->upstream);
	flow_init(&s->down, &s->upstream, &s->client);
	s->more.run = on_more;
	uv_timer_init(env->loop, &s->timer);
	s->timer.data = s;
	if ((size_t)peer_len <= sizeof(s->peer))
		memcpy(&s->peer, peer, peer_len);
	return s;
}

void session_refuse(struct session *s, enum tpin_refusal why, const char *result)
{
	tpin_metrics_refused(s->env->m, traffic(s), why);
	session_end(s, result, RESET_CLIENT);
}

void session_fail_client(struct session *s, const char *what, int err)
{
	/*
	 * Not session_fail(), which resets the other side of a failed one and
	 * closes the failed one plainly: here nothing was relayed, there is
	 * no upstream yet, and a FIN would tell the client its request was
	 * served and the connection closed in order.
	 */
	s->what = what;
	s->status = err;
	session_end(s, "client", RESET_CLIENT);
}

void session_start(struct session *s)
{
	struct session_env *env = s->env;
	struct upstream_target t = {
		.opt = env->opt,
		.peer = &s->peer.sa,
		.orig = &s->orig.sa,
		.sources = env->sources,
		.port_cursor = env->port_cursor,
		.outbound = s->outbound,
	};
	const char *step;
	int fd, ret;

	/* Set before the admin thread can see the session: it reads it. */
	s->chosen = true;
	uv_mutex_lock(&env->lock);
	s->next = env->list;
	if (s->next)
		s->next->prev = s;
	env->list = s;
	s->listed = true;
	uv_mutex_unlock(&env->lock);

	/*
	 * Watched at once: a reset from the client while the upstream
	 * connects ends the session, and the bytes it sends meanwhile are
	 * remembered (edge-triggered) for when the upstream is there.
	 */
	ret = evset_add(env->set, &s->client.io, false);
	if (ret) {
		session_fail_client(s, "epoll", ret);
		return;
	}
	uv_timer_start(&s->timer, on_timer, env->opt->connect_timeout_ms, 0);
	/* EMFILE or ENOMEM here costs this connection only. */
	fd = upstream_open(&t, &s->pinned_port, &step);
	if (fd < 0) {
		tpin_metrics_connect_failed(env->m, traffic(s), s->port);
		session_fail(s, &s->upstream, step, fd);
		return;
	}
	s->upstream.io.fd = fd;
	ret = evset_add(env->set, &s->upstream.io, false);
	if (ret) {
		tpin_metrics_connect_failed(env->m, traffic(s), s->port);
		session_fail(s, &s->upstream, "epoll", ret);
	}
}

static void connected(struct session *s)
{
	const struct tpin_proxy_options *opt = s->env->opt;
	uint8_t h[PROXYPROTO_MAX];
	int ret;

	s->connected = true;
	atomic_store(&s->state, STATE_RELAYING);
	s->last_active_ms = uv_now(s->env->loop);
	/*
	 * The header tells the app who its client is: inbound only. An
	 * outbound connection goes to a service that never asked for one, and
	 * the header would hand it the pod's addresses.
	 */
	if (opt->proxy_protocol && !s->outbound) {
		ret = flow_push(&s->up, h, proxyproto_v2(h, &s->peer.sa, &s->orig.sa));
		if (ret) {
			session_fail(s, &s->upstream, "write", ret);
			return;
		}
	}
	uv_timer_stop(&s->timer);
	if (opt->idle_timeout_ms)
		uv_timer_start(&s->timer, on_timer, opt->idle_timeout_ms, 0);
}

/* ---- relaying ------------------------------------------------------------- */

/* Bytes that reached @f->to's socket. */
static void delivered(struct session *s, struct flow *f, size_t n)
{
	/* Only this thread writes it: no locked add, just no torn reads. */
	atomic_store_explicit(&f->delivered,
			      atomic_load_explicit(&f->delivered, memory_order_relaxed) + n,
			      memory_order_relaxed);
	tpin_metrics_bytes(s->env->m, traffic(s), s->port,
			   f == &s->up ? TPIN_DIR_UPSTREAM : TPIN_DIR_DOWNSTREAM, n);
	s->last_active_ms = uv_now(s->env->loop);
}

static const char *side_name(const struct session *s, const struct side *side)
{
	return side == &s->client ? "client" : "upstream";
}

static int reset_mask(const struct session *s, const struct side *side)
{
	return side == &s->client ? RESET_CLIENT : RESET_UPSTREAM;
}

static struct side *other_side(struct session *s, const struct side *side)
{
	return side == &s->client ? &s->upstream : &s->client;
}

/* The flow whose bytes @side sends. */
static struct flow *flow_from(struct session *s, const struct side *side)
{
	return side == &s->client ? &s->up : &s->down;
}

/* How a failure at @side is logged: "<side>_reset", or "<side>_io:<ERRNAME>". */
static void name_failure(struct session *s, struct side *side, int err)
{
	if (err == -ECONNRESET || err == -EPIPE) {
		s->result = side == &s->client ? "client_reset" : "upstream_reset";
		s->what = NULL;
	} else {
		s->result = side_name(s, side);
		s->what = "io";
		s->status = err;
	}
}

/*
 * @side failed: its peer reset it, or an error (@err; 0 when EPOLLERR said
 * so and the error is yet to be read). A reset goes across as a reset, but
 * not ahead of the bytes that came before it: an app that answers a
 * request it will not read (a 413) and closes sends the answer, then a
 * reset, and a client connected directly reads the answer. So the session
 * reads @side on to its error, delivers what it read to the other side,
 * and resets the other side once its send queue is empty (a reset throws
 * away what a socket has not sent): see reset_when_sent(). Nothing more
 * goes to @side: what the other side sends toward it is read and dropped
 * (flow_discard()), or an app that echoes would block on its write, stop
 * reading, and never take the bytes it is owed. Before the upstream connected there is nowhere to
 * deliver to, and with both sides failed nothing to deliver: the session ends now.
 */
static void side_failed(struct session *s, struct side *side, int err)
{
	struct session_env *env = s->env;

	if (err == -ENOMEM) {
		session_end(s, "out_of_memory", RESET_CLIENT | RESET_UPSTREAM);
		return;
	}
	if (!s->connected) {
		if (!err)
			err = tpin_sock_error(side->io.fd);
		name_failure(s, side, err ? err : -ECONNRESET);
		session_end(s, s->result, reset_mask(s, other_side(s, side)));
		return;
	}
	if (s->failed && s->failed != side) {
		session_end(s, s->result, RESET_CLIENT | RESET_UPSTREAM);
		return;
	}
	if (err || !s->failed)
		name_failure(s, side, err ? err : -ECONNRESET);
	if (s->failed)
		return;
	s->failed = side;
	atomic_store(&s->state, STATE_RESETTING);
	/* Read on to the error: the bytes before it are in the socket still. */
	side->error = true;
	side->readable = true;
	flow_free(flow_from(s, other_side(s, side)), &env->fx);
	s->reset_outq = UINT32_MAX;
	s->reset_poll_ms = RESET_POLL_FIRST_MS;
	s->last_active_ms = uv_now(env->loop);
	uv_timer_start(&s->timer, on_timer, s->reset_poll_ms, 0);
	evset_defer(env->set, &s->more);
}

/*
 * After s->failed: once every byte it sent reached the other side's socket,
 * reset that side as soon as its peer has acknowledged them all. Returns
 * whether the session ended.
 */
static bool reset_when_sent(struct session *s)
{
	struct flow *f = flow_from(s, s->failed);
	struct side *to = f->to;
	bool fin = f == &s->up ? s->up_fin : s->down_fin;
	int outq = 0;

	if (!fin && (!f->eof || f->queued))
		return false;
	if (ioctl(to->io.fd, SIOCOUTQ, &outq) < 0 || outq <= 0) {
		session_end(s, s->result, reset_mask(s, to));
		return true;
	}
	/* The timer looks again; progress keeps the session from its bound. */
	if ((uint32_t)outq < s->reset_outq) {
		s->reset_outq = (uint32_t)outq;
		s->last_active_ms = uv_now(s->env->loop);
	}
	return false;
}

/* The timer while s->failed: look at the send queue, and give up on a peer that takes nothing. */
static void reset_timer(struct session *s)
{
	struct flow *f = flow_from(s, s->failed);
	/* As long as a connect may take: a peer that takes nothing meanwhile is not reading. */
	uint64_t bound = s->env->opt->connect_timeout_ms;

	if (reset_when_sent(s))
		return;
	if (uv_now(s->env->loop) - s->last_active_ms >= bound) {
		session_end(s, s->result, reset_mask(s, f->to));
		return;
	}
	if (s->reset_poll_ms < RESET_POLL_MAX_MS)
		s->reset_poll_ms *= 2;
	uv_timer_start(&s->timer, on_timer, s->reset_poll_ms, 0);
}

/*
 * @f is done: its sender's FIN was read and every byte delivered. With the
 * other direction still open, the FIN goes on with shutdown(2) (after the
 * last bytes, which wait for it); with the other direction done too, both
 * sockets close, and the close sends the FIN.
 */
static void pass_fin(struct session *s, struct flow *f)
{
	bool *fin = f == &s->up ? &s->up_fin : &s->down_fin;
	bool other = f == &s->up ? s->down_fin : s->up_fin;

	if (*fin)
		return;
	*fin = true;
	if (other) {
		session_end(s, "ok", 0);
		return;
	}
	atomic_store(&s->state, STATE_HALF_CLOSED);
	if (shutdown(f->to->io.fd, SHUT_WR) < 0)
		session_fail(s, f->to, "shutdown", -errno);
}

static void run_flow(struct session *s, struct flow *f)
{
	size_t moved = 0;
	bool at_to = false;
	int ret;

	if (s->closing || (f == &s->up ? s->up_fin : s->down_fin))
		return;
	/*
	 * Nothing more goes to a side that failed; what is sent toward it is
	 * read and dropped, so its sender keeps reading what is delivered to it.
	 */
	if (f->to == s->failed) {
		ret = flow_discard(f, &s->env->fx);
		if (ret < 0)
			side_failed(s, f->from, ret);
		else if (ret & FLOW_MORE)
			evset_defer(s->env->set, &s->more);
		return;
	}
	ret = flow_run(f, &s->env->fx, &moved, &at_to);
	if (moved)
		delivered(s, f, moved);
	if (ret < 0) {
		side_failed(s, at_to ? f->to : f->from, ret);
		/* The failed side's error, read after its last bytes, ends what it sends. */
		if (!s->closing && !at_to && f->from == s->failed) {
			f->eof = true;
			f->from->readable = false;
		}
		return;
	}
	if (ret & FLOW_MORE)
		evset_defer(s->env->set, &s->more);
	/* After a failure the other side is reset once its bytes are sent, never sent a FIN. */
	if ((ret & FLOW_DONE) && !s->failed)
		pass_fin(s, f);
}

static void session_run(struct session *s)
{
	run_flow(s, &s->up);
	run_flow(s, &s->down);
	if (s->failed && !s->closing)
		reset_when_sent(s);
	if (s->env->fx.peak > atomic_load_explicit(&s->env->queue_peak, memory_order_relaxed))
		atomic_store_explicit(&s->env->queue_peak, s->env->fx.peak, memory_order_relaxed);
}

static void on_more(struct task *t)
{
	session_run(container_of(t, struct session, more));
}

static void on_io(struct session *s, struct side *side, uint32_t events)
{
	int err;

	if (s->closing)
		return;
	if ((events & EPOLLERR) && side == &s->upstream && !s->connected) {
		/* Rare, so its cause is read only now: a refused connect, mostly. */
		err = tpin_sock_error(side->io.fd);
		tpin_metrics_connect_failed(s->env->m, traffic(s), s->port);
		/* Reset, not FIN: the client learns at once, as if the port were closed. */
		session_fail(s, side, "connect", err ? err : -ECONNREFUSED);
		return;
	}
	if (events & EPOLLERR) {
		/* A reset, or an error: the bytes ahead of it are read first (side_failed()). */
		side_failed(s, side, 0);
		if (s->closing)
			return;
	}
	if (events & EPOLLPRI)
		side->urgent = true;
	if (events & EPOLLRDHUP)
		side->rdhup = true;
	if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
		side->readable = true;
		/* New input: a pipe that said EAGAIN may take it now (splice.c). */
		(side == &s->client ? &s->up : &s->down)->stalled = false;
	}
	if (events & EPOLLOUT)
		side->writable = true;
	if (!s->connected) {
		if (side != &s->upstream || !(events & EPOLLOUT))
			return;
		connected(s);
		if (!s->connected || s->closing)
			return;
	}
	session_run(s);
}

static void on_client_io(struct io *io, uint32_t events)
{
	struct session *s = container_of(io, struct session, client.io);

	on_io(s, &s->client, events);
}

static void on_upstream_io(struct io *io, uint32_t events)
{
	struct session *s = container_of(io, struct session, upstream.io);

	on_io(s, &s->upstream, events);
}

static void on_timer(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t idle = s->env->opt->idle_timeout_ms, quiet;

	if (!s->connected) {
		tpin_metrics_connect_failed(s->env->m, traffic(s), s->port);
		session_end(s, "connect_timeout", RESET_CLIENT);
		return;
	}
	if (s->failed) {
		reset_timer(s);
		return;
	}
	/* The timer is not pushed back on every read; it checks when it fires. */
	quiet = uv_now(s->env->loop) - s->last_active_ms;
	if (quiet >= idle) {
		session_end(s, "idle_timeout", -1);
		return;
	}
	uv_timer_start(t, on_timer, idle - quiet, 0);
}

/* ---- ending ----------------------------------------------------------------- */

/* The session's three addresses as text; "-" for what is not known. */
static void session_addrs(const struct session *s, char *peer, char *orig, char *up)
{
	union inaddr a;

	tpin_sockaddr_format(&s->peer.sa, peer, TPIN_SOCKADDR_STRLEN);
	tpin_sockaddr_format(&s->orig.sa, orig, TPIN_SOCKADDR_STRLEN);
	if (s->chosen) {
		upstream_addr(s->env->opt, &s->orig.sa, s->outbound, &a);
		tpin_sockaddr_format(&a.sa, up, TPIN_SOCKADDR_STRLEN);
	} else {
		strcpy(up, "-");
	}
}

static void log_session(struct session *s)
{
	char peer[TPIN_SOCKADDR_STRLEN], orig[TPIN_SOCKADDR_STRLEN], up[TPIN_SOCKADDR_STRLEN];
	char result[64];
	struct tpin_log_entry e = {
		.client = peer,
		.original_dst = orig,
		.upstream = up,
		.bytes_up = atomic_load_explicit(&s->up.delivered, memory_order_relaxed),
		.bytes_down = atomic_load_explicit(&s->down.delivered, memory_order_relaxed),
		.duration_ms = uv_now(s->env->loop) - s->started_ms,
		.direction = s->outbound ? "outbound" : "inbound",
		.result = s->result,
	};

	if (!s->env->log->log)
		return;
	session_addrs(s, peer, orig, up);
	if (s->what) {
		/* The three parts are short fixed words: no truncation. */
		size_t a = strlen(s->result), b = strlen(s->what);
		const char *c = uv_err_name(s->status);
		size_t d = strlen(c);

		if (a + b + d + 3 <= sizeof(result)) {
			memcpy(result, s->result, a);
			result[a] = '_';
			memcpy(result + a + 1, s->what, b);
			result[a + 1 + b] = ':';
			memcpy(result + a + 2 + b, c, d + 1);
			e.result = result;
		}
	}
	tpin_log_batch_add(s->env->log, &e);
}

/*
 * The sides a forced end (drain deadline, stop, idle timeout) must reset:
 * those with bytes still on their way to them, waiting here or not yet read
 * from the other side's socket. A FIN would make a cut close-delimited
 * response look complete; a reset says it is not. A session still
 * connecting resets its client, as a connect timeout does: nothing was
 * relayed, and a FIN would say the request was served.
 */
static int pending_resets(struct session *s)
{
	struct flow *flows[2] = { &s->up, &s->down };
	int i, unread, reset = 0;

	/* Still connecting: the client is reset, as at the connect timeout. */
	if (!s->connected)
		return RESET_CLIENT;

	for (i = 0; i < 2; i++) {
		struct flow *f = flows[i];
		bool pending = flow_pending(f);

		unread = 0;
		if (!pending && f->from->io.fd >= 0 && !f->eof &&
		    !ioctl(f->from->io.fd, FIONREAD, &unread) && unread > 0)
			pending = true;
		if (pending)
			reset |= f->to == &s->client ? RESET_CLIENT : RESET_UPSTREAM;
	}
	/* The other side of a failed one was to be reset anyway. */
	if (s->failed)
		reset |= reset_mask(s, other_side(s, s->failed));
	return reset;
}

static void close_side(struct side *side, bool reset)
{
	if (side->io.fd < 0)
		return;
	if (reset)
		tpin_sock_close_reset(side->io.fd);
	else
		close(side->io.fd);
	side->io.fd = -1;
}

static void session_free(struct session *s);

static void on_timer_closed(uv_handle_t *h)
{
	session_free(h->data);
}

/*
 * session_end - log once, close both sockets (resetting those in @reset, a
 * mask of RESET_*, or those pending_resets() names for -1), and free the
 * session once libuv has closed the timer.
 */
static void session_end(struct session *s, const char *result, int reset)
{
	struct session_env *env = s->env;

	if (s->closing)
		return;
	if (reset < 0)
		reset = pending_resets(s);
	s->closing = true;
	atomic_store(&s->state, STATE_CLOSING);
	s->result = result;
	log_session(s);
	evset_cancel(env->set, &s->more);
	close_side(&s->client, reset & RESET_CLIENT);
	close_side(&s->upstream, reset & RESET_UPSTREAM);
	flow_free(&s->up, &env->fx);
	flow_free(&s->down, &env->fx);
	uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

/* session_fail - end with "<side>_<what>:<ERRNAME>", resetting the other side. */
static void session_fail(struct session *s, struct side *side, const char *what, int err)
{
	if (s->closing)
		return;
	s->what = what;
	s->status = err;
	session_end(s, side_name(s, side), side == &s->client ? RESET_UPSTREAM : RESET_CLIENT);
}

static void session_free(struct session *s)
{
	struct session_env *env = s->env;

	if (s->listed) {
		uv_mutex_lock(&env->lock);
		if (s->prev)
			s->prev->next = s->next;
		else
			env->list = s->next;
		if (s->next)
			s->next->prev = s->prev;
		uv_mutex_unlock(&env->lock);
	}
	if (s->counted)
		atomic_fetch_sub(env->live, 1);
	if (s->sourced)
		sources_give(env->sources, &s->peer.sa, &s->orig.sa);
	if (s->pinned_port)
		sources_unpin(env->sources, &s->peer.sa, s->pinned_port, &s->orig.sa);
	tpin_metrics_closed(env->m, traffic(s));
	if (env->n_free < FREELIST_MAX && !env->ending) {
		s->next = env->free;
		env->free = s;
		env->n_free++;
	} else {
		free(s);
	}
	if (--env->n == 0 && env->ending && env->on_empty)
		env->on_empty(env->arg);
}

/* ---- all of them ------------------------------------------------------------- */

int session_env_init(struct session_env *env, size_t queue_limit, atomic_int *fd_limit)
{
	env->fx.buf_size = READ_SIZE;
	env->fx.limit = queue_limit;
	env->fx.max_pipes = PIPE_POOL;
	env->fx.keep_pipes = true;
	env->fx.fd_limit = fd_limit;
	env->fx.buf = malloc(READ_SIZE);
	env->fx.pipes = calloc(PIPE_POOL, sizeof(*env->fx.pipes));
	if (!env->fx.buf || !env->fx.pipes || uv_mutex_init(&env->lock)) {
		free(env->fx.buf);
		free(env->fx.pipes);
		return -ENOMEM;
	}
	return 0;
}

void session_env_fini(struct session_env *env)
{
	struct session *s;

	while ((s = env->free)) {
		env->free = s->next;
		free(s);
	}
	env->n_free = 0;
	flow_ctx_fini(&env->fx);
	free(env->fx.pipes);
	free(env->fx.buf);
	uv_mutex_destroy(&env->lock);
}

void session_close_all(struct session_env *env, const char *why)
{
	struct session *s, *next;

	for (s = env->list; s; s = next) {
		next = s->next;
		session_end(s, why, -1);
	}
}

void session_describe(struct session_env *env, struct tpin_strbuf *sb)
{
	/* uv_now() belongs to the worker's thread; its clock is the same one. */
	uint64_t now = uv_hrtime() / 1000000;
	struct session *s;

	uv_mutex_lock(&env->lock);
	for (s = env->list; s; s = s->next) {
		uint64_t age = now > s->started_ms ? now - s->started_ms : 0;
		char peer[TPIN_SOCKADDR_STRLEN], orig[TPIN_SOCKADDR_STRLEN];
		char up[TPIN_SOCKADDR_STRLEN];

		/* Both addresses are set before the session is listed. */
		session_addrs(s, peer, orig, up);
		tpin_strbuf_printf(sb,
				   "client=%s original_dst=%s upstream=%s state=%s bytes_up=%llu "
				   "bytes_down=%llu age_ms=%llu\n",
				   peer, orig, up, state_names[atomic_load(&s->state)],
				   (unsigned long long)atomic_load_explicit(&s->up.delivered,
									    memory_order_relaxed),
				   (unsigned long long)atomic_load_explicit(&s->down.delivered,
									    memory_order_relaxed),
				   (unsigned long long)age);
	}
	uv_mutex_unlock(&env->lock);
}
