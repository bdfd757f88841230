// SPDX-License-Identifier: MIT
/*
 * One session per accepted connection. relay_accept() is the entry point:
 * it learns where the client was going, refuses what must not be relayed,
 * and connects upstream. From then on every event of either socket runs the
 * two flows (flow.h), and what they report decides the session's fate: a
 * FIN passed on (shutdown) when one direction is done, both sockets closed
 * when both are, a reset carried across as a reset.
 *
 *   connecting --connected--> relaying --one FIN--> half-closed --both--> closed
 *        \--refused, timeout: the client is reset             (closing)
 *
 * A session is what an idle connection costs, so it holds only what is
 * needed to relay: two sockets, two flows, a timer, two addresses. Text is
 * made only for the access log line and the admin listing. Its memory goes
 * back in the timer's close callback, the last thing libuv hands back.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "proxyproto.h"
#include "relay.h"
#include "sources.h"
#include "tpin/log.h"
#include "tpin/metrics.h"
#include "tpin/proxy-hooks.h"
#include "tpin/sock.h"
#include "tpin/strbuf.h"
#include "upstream.h"
#include "tpin/macros.h"

/* Ports tried for an upstream from the client's address before giving up. */
#define PRESERVE_TRIES 16
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
	STATE_CLOSING,
};

static const char *const state_names[] = {
	[STATE_CONNECTING] = "connecting",
	[STATE_RELAYING] = "relaying",
	[STATE_HALF_CLOSED] = "half-closed",
	[STATE_CLOSING] = "closing",
};

union inaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
};

enum {
	RESET_CLIENT = 1,
	RESET_UPSTREAM = 2,
};

struct session {
	struct side client;
	struct side upstream;
	struct flow up;	  /* client to upstream */
	struct flow down; /* upstream to client */
	struct relay *r;
	struct session *prev, *next; /* the relay's list; next links the freelist too */
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
	uint16_t port; /* the original destination port, for metrics */
	bool up_fin;   /* the client's FIN was passed on to the upstream */
	bool down_fin; /* the upstream's FIN was passed on to the client */
	bool connected : 1;
	bool closing : 1;
	bool counted : 1; /* holds a place under --max-connections */
	bool listed : 1;  /* on the relay's list */
	bool sourced : 1; /* counted for its source */
	/* An upstream address was chosen (else "-"); not a bit field: the admin thread reads it. */
	bool chosen;
};

static void upstream_start(struct session *s);
static void on_client_io(struct io *io, uint32_t events);
static void on_upstream_io(struct io *io, uint32_t events);
static void on_timer(uv_timer_t *t);
static void on_more(struct task *t);

static const struct tpin_proxy_options *options(const struct session *s)
{
	return s->r->cfg->opt;
}

/* ---- accepting ---------------------------------------------------------- */

static struct session *session_alloc(struct relay *r)
{
	struct tpin_proxy_hooks *h = r->cfg->hooks;
	struct session *s = r->free;

	if (h && atomic_load_explicit(&h->fail_alloc, memory_order_relaxed))
		return NULL;
	if (!s)
		return calloc(1, sizeof(*s));
	r->free = s->next;
	r->n_free--;
	memset(s, 0, sizeof(*s));
	return s;
}

static void session_end(struct session *s, const char *result, int reset);
static void session_fail(struct session *s, struct side *side, const char *what, int err);

static void refuse(struct session *s, enum tpin_refusal why, const char *result)
{
	tpin_metrics_refused(s->r->m, why);
	session_end(s, result, RESET_CLIENT);
}

void relay_accept(struct relay *r, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	const struct tpin_proxy_options *opt = r->cfg->opt;
	const struct tpin_proxy_hooks *h = r->cfg->hooks;
	struct session *s = session_alloc(r);
	struct sockaddr_storage ss;
	uint32_t max = opt->max_connections;
	int ret;

	if (!s) {
		/* The client hears at once, and the listener goes on. */
		tpin_sock_close_reset(fd);
		tpin_log_event(opt->log, "out of memory: connection reset");
		return;
	}
	s->r = r;
	r->n_sessions++;
	tpin_metrics_accepted(r->m);
	s->started_ms = uv_now(r->loop);
	s->client.io = (struct io){ .fd = fd, .cb = on_client_io };
	s->upstream.io = (struct io){ .fd = -1, .cb = on_upstream_io };
	flow_init(&s->up, &s->client, &s->upstream);
	flow_init(&s->down, &s->upstream, &s->client);
	s->more.run = on_more;
	uv_timer_init(r->loop, &s->timer);
	s->timer.data = s;
	if ((size_t)peer_len <= sizeof(s->peer))
		memcpy(&s->peer, peer, peer_len);

	if (h && h->original_dst.ss_family) {
		memcpy(&s->orig, &h->original_dst, sizeof(s->orig));
	} else {
		/* The local address is the original destination in TPROXY mode. */
		ret = tpin_sock_original_dst(fd, opt->mode, &ss);
		if (ret) {
			session_fail(s, &s->client, "original_dst", ret);
			return;
		}
		memcpy(&s->orig, &ss, sizeof(s->orig));
	}
	s->port = tpin_sockaddr_port(&s->orig.sa);

	if (fd >= atomic_load_explicit(r->cfg->fd_limit, memory_order_relaxed)) {
		refuse(s, TPIN_REFUSED_DESCRIPTORS, "refused_no_descriptors");
		return;
	}
	/* Counted only when added: session_free takes back what was added. */
	if (max) {
		s->counted = true;
		if (atomic_fetch_add(r->cfg->live, 1) >= max) {
			refuse(s, TPIN_REFUSED_LIMIT, "refused_limit");
			return;
		}
	}
	/* One source must not take every place: room stays for the others. */
	ret = sources_take(r->cfg->sources, &s->peer.sa, &s->orig.sa);
	if (ret == -EDQUOT) {
		refuse(s, TPIN_REFUSED_SOURCE, "refused_source_limit");
		return;
	}
	if (ret) {
		session_fail(s, &s->client, "accept", ret);
		return;
	}
	s->sourced = true;
	/* A connection to the proxy's own ports would come straight back here. */
	if (s->port == r->cfg->capture_port || s->port == opt->admin_port) {
		refuse(s, TPIN_REFUSED_LOOP, "refused_loop");
		return;
	}
	/* Set before the admin thread can see the session: it reads it. */
	s->chosen = true;
	uv_mutex_lock(&r->lock);
	s->next = r->sessions;
	if (s->next)
		s->next->prev = s;
	r->sessions = s;
	s->listed = true;
	uv_mutex_unlock(&r->lock);

	/*
	 * Watched at once: a reset from the client while the upstream
	 * connects ends the session, and the bytes it sends meanwhile are
	 * remembered (edge-triggered) for when the upstream is there.
	 */
	ret = evset_add(r->set, &s->client.io, false);
	if (ret) {
		session_fail(s, &s->client, "epoll", ret);
		return;
	}
	uv_timer_start(&s->timer, on_timer, opt->connect_timeout_ms, 0);
	upstream_start(s);
}

/* ---- connecting upstream ------------------------------------------------ */

/* Where the session connects: the original destination or loopback at its port. */
static void upstream_addr(const struct session *s, union inaddr *a)
{
	*a = s->orig;
	if (options(s)->upstream != TPIN_UPSTREAM_LOCALHOST)
		return;
	if (a->sa.sa_family == AF_INET)
		a->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		a->sin6.sin6_addr = in6addr_loopback;
}

/* The source address of the upstream connection, or NULL to let the kernel choose. */
static const struct sockaddr *upstream_source(struct session *s, union inaddr *ss)
{
	const struct tpin_proxy_options *opt = options(s);

	if (opt->preserve_source) {
		*ss = s->peer;
		if (ss->sa.sa_family == AF_INET)
			ss->sin.sin_port = 0;
		else
			ss->sin6.sin6_port = 0;
		return &ss->sa;
	}
	if (s->orig.sa.sa_family == AF_INET && opt->passthrough4.sin_family)
		return (const struct sockaddr *)&opt->passthrough4;
	if (s->orig.sa.sa_family == AF_INET6 && opt->passthrough6.sin6_family)
		return (const struct sockaddr *)&opt->passthrough6;
	return NULL;
}

/*
 * With --preserve-source the upstream connection leaves from the client's
 * own address, and the port must not be one the client itself uses toward
 * the same destination: that connection's 4-tuple, seen from the app's
 * side, is the very one of the proxy's accepted socket, and the upstream
 * SYN would land on it and stall. The kernel checks its choice against
 * sockets of the same direction only, so the proxy, which knows every
 * client connection (sources_live()), picks the port itself: from a range
 * of its own (by default 1024-32767, below the ephemeral ports Linux
 * clients use, so a client is unlikely to pick it later), stepping through
 * it so a port comes back only after the whole range.
 */
static uint16_t preserve_port(struct session *s)
{
	const struct tpin_proxy_options *opt = options(s);
	uint32_t size = (uint32_t)opt->preserve_port_last - opt->preserve_port_first + 1;
	uint16_t port;
	unsigned i;

	for (i = 0; i < 64; i++) {
		port = (uint16_t)(opt->preserve_port_first + s->r->port_cursor++ % size);
		if (!sources_live(s->r->cfg->sources, &s->peer.sa, port, &s->orig.sa))
			return port;
	}
	return 0;
}

static void upstream_start(struct session *s)
{
	bool preserve = options(s)->preserve_source;
	union inaddr src, dst;
	struct upstream_req req = { .dst = &dst.sa, .transparent = preserve, .src_port = preserve };
	const char *step = "bind";
	uint16_t port;
	unsigned tries;
	int fd = -EADDRNOTAVAIL, ret;

	upstream_addr(s, &dst);
	req.src = upstream_source(s, &src);
	for (tries = 0; tries < (preserve ? PRESERVE_TRIES : 1); tries++) {
		if (preserve) {
			port = preserve_port(s);
			if (!port)
				break;
			if (src.sa.sa_family == AF_INET)
				src.sin.sin_port = htons(port);
			else
				src.sin6.sin6_port = htons(port);
		}
		/* EMFILE or ENOMEM here costs this connection only. */
		fd = upstream_connect(&req, &step);
		/* Taken by another upstream socket to the same destination, or a listener. */
		if (fd != -EADDRNOTAVAIL && fd != -EADDRINUSE)
			break;
	}
	if (fd < 0) {
		tpin_metrics_connect_failed(s->r->m, s->port);
		session_fail(s, &s->upstream, step, fd);
		return;
	}
	s->upstream.io.fd = fd;
	ret = evset_add(s->r->set, &s->upstream.io, false);
	if (ret) {
		tpin_metrics_connect_failed(s->r->m, s->port);
		session_fail(s, &s->upstream, "epoll", ret);
	}
}

static void session_run(struct session *s);

static void connected(struct session *s)
{
	const struct tpin_proxy_options *opt = options(s);
	uint8_t h[PROXYPROTO_MAX];
	int ret;

	s->connected = true;
	atomic_store(&s->state, STATE_RELAYING);
	s->last_active_ms = uv_now(s->r->loop);
	if (opt->proxy_protocol) {
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
	tpin_metrics_bytes(s->r->m, s->port, f == &s->up ? TPIN_DIR_UPSTREAM : TPIN_DIR_DOWNSTREAM,
			   n);
	s->last_active_ms = uv_now(s->r->loop);
}

static const char *side_name(const struct session *s, const struct side *side)
{
	return side == &s->client ? "client" : "upstream";
}

/* A flow failed at @side: a reset goes across as a reset, anything else is logged. */
static void flow_failed(struct session *s, struct side *side, int err)
{
	if (err == -ECONNRESET || err == -EPIPE)
		session_end(s, side == &s->client ? "client_reset" : "upstream_reset",
			    side == &s->client ? RESET_UPSTREAM : RESET_CLIENT);
	else if (err == -ENOMEM)
		session_end(s, "out_of_memory", RESET_CLIENT | RESET_UPSTREAM);
	else
		session_fail(s, side, "io", err);
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
	ret = flow_run(f, &s->r->fx, &moved, &at_to);
	if (moved)
		delivered(s, f, moved);
	if (ret < 0) {
		flow_failed(s, at_to ? f->to : f->from, ret);
		return;
	}
	if (ret & FLOW_MORE)
		evset_defer(s->r->set, &s->more);
	if (ret & FLOW_DONE)
		pass_fin(s, f);
}

static void session_run(struct session *s)
{
	run_flow(s, &s->up);
	run_flow(s, &s->down);
	if (s->r->fx.peak > atomic_load_explicit(&s->r->queue_peak, memory_order_relaxed))
		atomic_store_explicit(&s->r->queue_peak, s->r->fx.peak, memory_order_relaxed);
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
	if (events & EPOLLERR) {
		/* Rare, so its cause is read only now: a reset, a refused connect. */
		err = tpin_sock_error(side->io.fd);
		if (side == &s->upstream && !s->connected) {
			tpin_metrics_connect_failed(s->r->m, s->port);
			/* Reset, not FIN: the client learns at once, as if the port were closed. */
			session_fail(s, side, "connect", err ? err : -ECONNREFUSED);
		} else {
			flow_failed(s, side, err ? err : -ECONNRESET);
		}
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
	uint64_t idle = options(s)->idle_timeout_ms, quiet;

	if (!s->connected) {
		tpin_metrics_connect_failed(s->r->m, s->port);
		session_end(s, "connect_timeout", RESET_CLIENT);
		return;
	}
	/* The timer is not pushed back on every read; it checks when it fires. */
	quiet = uv_now(s->r->loop) - s->last_active_ms;
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
		upstream_addr(s, &a);
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
		.duration_ms = uv_now(s->r->loop) - s->started_ms,
		.result = s->result,
	};

	if (!s->r->log->log)
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
	tpin_log_batch_add(s->r->log, &e);
}

/*
 * The sides a forced end (drain deadline, stop, idle timeout) must reset:
 * those with bytes still on their way to them, waiting here or not yet read
 * from the other side's socket. A FIN would make a cut close-delimited
 * response look complete; a reset says it is not.
 */
static int pending_resets(struct session *s)
{
	struct flow *flows[2] = { &s->up, &s->down };
	int i, unread, reset = 0;

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
	struct relay *r = s->r;

	if (s->closing)
		return;
	if (reset < 0)
		reset = pending_resets(s);
	s->closing = true;
	atomic_store(&s->state, STATE_CLOSING);
	s->result = result;
	log_session(s);
	evset_cancel(r->set, &s->more);
	close_side(&s->client, reset & RESET_CLIENT);
	close_side(&s->upstream, reset & RESET_UPSTREAM);
	flow_free(&s->up, &r->fx);
	flow_free(&s->down, &r->fx);
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
	struct relay *r = s->r;

	if (s->listed) {
		uv_mutex_lock(&r->lock);
		if (s->prev)
			s->prev->next = s->next;
		else
			r->sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		uv_mutex_unlock(&r->lock);
	}
	if (s->counted)
		atomic_fetch_sub(r->cfg->live, 1);
	if (s->sourced)
		sources_give(r->cfg->sources, &s->peer.sa, &s->orig.sa);
	tpin_metrics_closed(r->m);
	if (r->n_free < FREELIST_MAX && !r->ending) {
		s->next = r->free;
		r->free = s;
		r->n_free++;
	} else {
		free(s);
	}
	if (--r->n_sessions == 0 && r->ending && r->on_empty)
		r->on_empty(r->arg);
}

/* ---- the relay ------------------------------------------------------------ */

void relay_limits_refresh(const struct relay_config *cfg)
{
	struct rlimit rl;
	int limit = INT32_MAX;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)INT32_MAX)
		limit = (int)rl.rlim_cur;
	limit = limit > RELAY_FD_RESERVE ? limit - RELAY_FD_RESERVE : 0;
	atomic_store_explicit(cfg->fd_limit, limit, memory_order_relaxed);
}

int relay_init(struct relay *r, const struct relay_config *cfg, uv_loop_t *loop, struct evset *set,
	       struct tpin_metrics_shard *m, struct tpin_log_batch *log,
	       void (*on_empty)(void *arg), void *arg)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->loop = loop;
	r->set = set;
	r->m = m;
	r->log = log;
	r->on_empty = on_empty;
	r->arg = arg;
	r->fx.buf_size = READ_SIZE;
	r->fx.limit = cfg->opt->queue_limit;
	r->fx.max_pipes = PIPE_POOL;
	r->fx.keep_pipes = true;
	r->fx.fd_limit = cfg->fd_limit;
	/* Workers step through the --preserve-source ports from different places. */
	r->port_cursor = (uint32_t)(uv_hrtime() / 1000) ^ (uint32_t)(uintptr_t)r;
	r->fx.buf = malloc(READ_SIZE);
	r->fx.pipes = calloc(PIPE_POOL, sizeof(*r->fx.pipes));
	if (!r->fx.buf || !r->fx.pipes || uv_mutex_init(&r->lock)) {
		free(r->fx.buf);
		free(r->fx.pipes);
		return -ENOMEM;
	}
	return 0;
}

void relay_close_all(struct relay *r, const char *why)
{
	struct session *s, *next;

	for (s = r->sessions; s; s = next) {
		next = s->next;
		session_end(s, why, -1);
	}
}

void relay_end(struct relay *r)
{
	if (r->ending)
		return;
	r->ending = true;
	r->fx.keep_pipes = false;
	if (!r->n_sessions && r->on_empty)
		r->on_empty(r->arg);
}

void relay_describe(struct relay *r, struct tpin_strbuf *sb)
{
	/* uv_now() belongs to the worker's thread; its clock is the same one. */
	uint64_t now = uv_hrtime() / 1000000;
	struct session *s;

	uv_mutex_lock(&r->lock);
	for (s = r->sessions; s; s = s->next) {
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
	uv_mutex_unlock(&r->lock);
}

void relay_fini(struct relay *r)
{
	struct session *s;

	while ((s = r->free)) {
		r->free = s->next;
		free(s);
	}
	r->n_free = 0;
	flow_ctx_fini(&r->fx);
	free(r->fx.pipes);
	free(r->fx.buf);
	uv_mutex_destroy(&r->lock);
}
