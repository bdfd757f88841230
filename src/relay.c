// SPDX-License-Identifier: MIT
/*
 * One session per accepted connection: the client handle and the upstream
 * handle live inside it, bytes move both ways with backpressure, a FIN is
 * carried across with uv_shutdown, and the memory goes back only in the last
 * close callback.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy-internal.h"
#include "tpin/log.h"
#include "tpin/metrics.h"
#include "tpin/sock.h"

/* One read's worth: big enough for bulk; one per worker, not per session. */
#define CHUNK_SIZE RELAY_BUF_SIZE
/* How often the connect is retried when the kernel reuses the client's port. */
#define PRESERVE_RETRIES 4

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

struct side {
	uv_tcp_t tcp;
	struct session *s;
	struct side *peer;
	const char *name;        /* "client" or "upstream", for results */
	enum tpin_direction dir; /* the direction of what is read from this side */
	bool open;               /* initialized and not yet given to uv_close */
	bool eof;                /* this side sent its FIN */
	bool shut;               /* our FIN to this side has been sent */
	bool throttled;          /* not read while the peer's queue is full */
	uv_shutdown_t shutdown;
	atomic_uint_fast64_t bytes; /* delivered to the peer; read by the admin thread */
};

struct session {
	struct side client;
	struct side upstream;
	struct worker *w;
	struct session *prev, *next;
	uv_connect_t connect;
	uv_timer_t timer; /* the connect timeout, then the idle timeout */
	bool timer_open;
	unsigned handles; /* handles not yet closed; the last close frees */
	bool closing;
	bool connected;
	bool counted; /* holds a place under --max-connections */
	bool listed;  /* on the worker's session list */
	unsigned attempts;
	atomic_int state;
	uint16_t port; /* the original destination port, for metrics */
	uint64_t started_ms;
	uint64_t last_active_ms;
	struct sockaddr_storage peer;     /* the client */
	struct sockaddr_storage local;    /* the accepted socket's own address */
	struct sockaddr_storage orig;     /* the original destination */
	struct sockaddr_storage upstream_addr;
	char peer_str[TPIN_SOCKADDR_STRLEN];
	char orig_str[TPIN_SOCKADDR_STRLEN];
	char upstream_str[TPIN_SOCKADDR_STRLEN];
	char result[48];
	uint8_t proxy_header[52];
};

/*
 * What the other side would not take at once: a copy of just those bytes,
 * and the write request that carries them. Reads go into the worker's one
 * shared buffer, so an idle or fast connection holds no buffer at all.
 */
struct chunk {
	uv_write_t req;
	size_t len;
	char data[];
};

enum {
	RESET_CLIENT = 1,
	RESET_UPSTREAM = 2,
};

static void upstream_connect(struct session *s);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static const struct tpin_proxy_options *options(const struct session *s)
{
	return &s->w->p->opt;
}

static void session_free(struct session *s)
{
	struct worker *w = s->w;

	if (s->listed) {
		uv_mutex_lock(&w->lock);
		if (s->prev)
			s->prev->next = s->next;
		else
			w->sessions = s->next;
		if (s->next)
			s->next->prev = s->prev;
		uv_mutex_unlock(&w->lock);
	}
	if (s->counted)
		atomic_fetch_sub(&w->p->live, 1);
	tpin_metrics_closed(w->p->metrics);
	free(s);
	w->n_sessions--;
	worker_maybe_end(w);
}

static void on_close(uv_handle_t *h)
{
	struct session *s = h->data;

	if (--s->handles == 0 && s->closing)
		session_free(s);
}

static void close_side(struct side *side, bool reset)
{
	if (!side->open)
		return;
	side->open = false;
	/*
	 * A reset tells the peer at once that nothing more will come. It is
	 * refused while a shutdown is pending; a plain close then still ends
	 * the connection, with a FIN.
	 */
	if (!reset || uv_tcp_close_reset(&side->tcp, on_close))
		uv_close((uv_handle_t *)&side->tcp, on_close);
}

static void log_session(struct session *s)
{
	struct tpin_log_entry e = {
		.client = s->peer_str,
		.original_dst = s->orig_str,
		.upstream = s->upstream_str,
		.bytes_up = atomic_load_explicit(&s->client.bytes, memory_order_relaxed),
		.bytes_down = atomic_load_explicit(&s->upstream.bytes, memory_order_relaxed),
		.duration_ms = uv_now(&s->w->loop) - s->started_ms,
		.result = s->result,
	};

	tpin_log_access(options(s)->log, &e);
}

/* session_end - log once, then close every handle; @reset is RESET_* bits. */
static void session_end(struct session *s, const char *result, int reset)
{
	if (s->closing)
		return;
	s->closing = true;
	atomic_store(&s->state, STATE_CLOSING);
	snprintf(s->result, sizeof(s->result), "%s", result);
	log_session(s);
	close_side(&s->client, reset & RESET_CLIENT);
	close_side(&s->upstream, reset & RESET_UPSTREAM);
	if (s->timer_open) {
		s->timer_open = false;
		uv_close((uv_handle_t *)&s->timer, on_close);
	}
	/* Nothing was open: the session never got past allocation. */
	if (!s->handles)
		session_free(s);
}

/* session_fail - end with "<side>_<what>:<ERRNAME>", resetting the other side. */
static void session_fail(struct session *s, struct side *side, const char *what, int status)
{
	char result[48];

	snprintf(result, sizeof(result), "%s_%s:%s", side->name, what, uv_err_name(status));
	session_end(s, result, side == &s->client ? RESET_UPSTREAM : RESET_CLIENT);
}

static void maybe_finish(struct session *s)
{
	if (s->client.eof && s->upstream.eof && s->client.shut && s->upstream.shut)
		session_end(s, "ok", 0);
}

/*
 * libuv asks for a buffer only when the socket is readable, and on_read is
 * done with it before the next read on this loop: one buffer per worker
 * serves every connection, with no allocation and no page faults per read.
 */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = h->data;

	*buf = uv_buf_init(s->w->rbuf, CHUNK_SIZE);
}

static void read_resume(struct side *side)
{
	int ret;

	if (!side->throttled || side->eof || !side->open)
		return;
	side->throttled = false;
	ret = uv_read_start((uv_stream_t *)&side->tcp, on_alloc, on_read);
	if (ret)
		session_fail(side->s, side, "read", ret);
}

/* Bytes that reached the other side's socket. */
static void delivered(struct side *to, size_t len)
{
	struct session *s = to->s;

	atomic_fetch_add_explicit(&to->peer->bytes, len, memory_order_relaxed);
	tpin_metrics_bytes(s->w->p->metrics, s->port, to->peer->dir, len);
}

static void on_write(uv_write_t *req, int status)
{
	struct chunk *c = container_of(req, struct chunk, req);
	struct side *to = container_of(req->handle, struct side, tcp);
	struct session *s = to->s;
	size_t len = c->len;

	free(c);
	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		session_fail(s, to, "write", status);
		return;
	}
	delivered(to, len);
	/* Half the limit: hysteresis, so a busy pair does not flap. */
	if (to->tcp.write_queue_size <= options(s)->queue_limit / 2)
		read_resume(to->peer);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *side = container_of(req, struct side, shutdown);
	struct session *s = side->s;

	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		session_fail(s, side, "shutdown", status);
		return;
	}
	side->shut = true;
	maybe_finish(s);
}

static void relay_bytes(struct side *from, const char *data, size_t len)
{
	struct session *s = from->s;
	struct side *to = from->peer;
	struct worker *w = s->w;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	struct chunk *c;
	size_t queued;
	int ret = 0;

	s->last_active_ms = uv_now(&w->loop);
	/*
	 * Try the write before waiting for writability: mostly the socket takes
	 * it all, and nothing is copied or allocated. With bytes queued already
	 * the new ones must wait behind them.
	 */
	if (!to->tcp.write_queue_size) {
		ret = uv_try_write((uv_stream_t *)&to->tcp, &b, 1);
		if (ret > 0) {
			delivered(to, (size_t)ret);
			data += ret;
			len -= (size_t)ret;
			ret = 0;
		} else if (ret == UV_EAGAIN) {
			ret = 0;
		}
	}
	if (ret) {
		session_fail(s, to, "write", ret);
		return;
	}
	if (!len)
		return;
	c = malloc(sizeof(*c) + len);
	if (!c) {
		session_end(s, "out_of_memory", RESET_CLIENT | RESET_UPSTREAM);
		return;
	}
	c->len = len;
	memcpy(c->data, data, len);
	b = uv_buf_init(c->data, (unsigned)len);
	ret = uv_write(&c->req, (uv_stream_t *)&to->tcp, &b, 1, on_write);
	if (ret) {
		free(c);
		session_fail(s, to, "write", ret);
		return;
	}
	queued = to->tcp.write_queue_size;
	if (queued > atomic_load_explicit(&w->queue_peak, memory_order_relaxed))
		atomic_store_explicit(&w->queue_peak, queued, memory_order_relaxed);
	/*
	 * The other side is slower than this one: stop reading here until its
	 * queue drains, so memory per connection stays bounded and TCP flow
	 * control pushes back on the sender.
	 */
	if (queued > options(s)->queue_limit) {
		uv_read_stop((uv_stream_t *)&from->tcp);
		from->throttled = true;
	}
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct side *from = container_of(stream, struct side, tcp);
	struct session *s = from->s;
	int ret;

	if (nread > 0) {
		relay_bytes(from, buf->base, (size_t)nread);
		return;
	}
	if (nread == 0)
		return;
	if (nread == UV_EOF) {
		/* Carry the FIN across; uv_shutdown waits for queued writes. */
		from->eof = true;
		uv_read_stop(stream);
		atomic_store(&s->state, STATE_HALF_CLOSED);
		ret = uv_shutdown(&from->peer->shutdown, (uv_stream_t *)&from->peer->tcp,
				  on_shutdown);
		if (ret)
			session_fail(s, from->peer, "shutdown", ret);
		return;
	}
	if (nread == UV_ENOBUFS) {
		session_end(s, "out_of_memory", RESET_CLIENT | RESET_UPSTREAM);
		return;
	}
	if (nread == UV_ECONNRESET) {
		session_end(s, from == &s->client ? "client_reset" : "upstream_reset",
			    from == &s->client ? RESET_UPSTREAM : RESET_CLIENT);
		return;
	}
	session_fail(s, from, "read", (int)nread);
}

static void start_reading(struct side *side)
{
	int ret = uv_read_start((uv_stream_t *)&side->tcp, on_alloc, on_read);

	if (ret)
		session_fail(side->s, side, "read", ret);
}

static void on_timer(uv_timer_t *t)
{
	struct session *s = container_of(t, struct session, timer);
	uint64_t idle = options(s)->idle_timeout_ms, quiet;

	if (!s->connected) {
		tpin_metrics_connect_failed(s->w->p->metrics, s->port);
		session_end(s, "connect_timeout", RESET_CLIENT);
		return;
	}
	/* The timer is not pushed back on every read; it checks when it fires. */
	quiet = uv_now(&s->w->loop) - s->last_active_ms;
	if (quiet >= idle) {
		session_end(s, "idle_timeout", 0);
		return;
	}
	uv_timer_start(t, on_timer, idle - quiet, 0);
}

/* The PROXY protocol v2 header: the client's address and the original destination. */
static size_t proxy_header(struct session *s)
{
	static const uint8_t sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
	uint8_t *h = s->proxy_header, *a = h + 16;
	uint16_t alen;

	memcpy(h, sig, sizeof(sig));
	h[12] = 0x21; /* version 2, command PROXY */
	if (s->peer.ss_family == AF_INET) {
		const struct sockaddr_in *src = (const void *)&s->peer, *dst = (const void *)&s->orig;

		h[13] = 0x11; /* TCP over IPv4 */
		alen = 12;
		memcpy(a, &src->sin_addr, 4);
		memcpy(a + 4, &dst->sin_addr, 4);
		memcpy(a + 8, &src->sin_port, 2);
		memcpy(a + 10, &dst->sin_port, 2);
	} else {
		const struct sockaddr_in6 *src = (const void *)&s->peer, *dst = (const void *)&s->orig;

		h[13] = 0x21; /* TCP over IPv6 */
		alen = 36;
		memcpy(a, &src->sin6_addr, 16);
		memcpy(a + 16, &dst->sin6_addr, 16);
		memcpy(a + 32, &src->sin6_port, 2);
		memcpy(a + 34, &dst->sin6_port, 2);
	}
	h[14] = (uint8_t)(alen >> 8);
	h[15] = (uint8_t)alen;
	return 16 + alen;
}

static void on_header_written(uv_write_t *req, int status)
{
	struct session *s = req->data;

	free(req);
	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0)
		session_fail(s, &s->upstream, "write", status);
}

static int send_proxy_header(struct session *s)
{
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t b;
	int ret;

	if (!req)
		return UV_ENOMEM;
	b = uv_buf_init((char *)s->proxy_header, (unsigned)proxy_header(s));
	req->data = s;
	ret = uv_write(req, (uv_stream_t *)&s->upstream.tcp, &b, 1, on_header_written);
	if (ret)
		free(req);
	return ret;
}

static void on_retry_closed(uv_handle_t *h)
{
	struct session *s = h->data;

	s->handles--;
	if (s->closing) {
		if (!s->handles)
			session_free(s);
		return;
	}
	upstream_connect(s);
}

/*
 * With --preserve-source the kernel picks the upstream port, and it may pick
 * the client's own: the upstream connection then has the very 4-tuple of the
 * accepted one and the two cannot both exist in the pod. Seen from here it
 * shows as a local address equal to the client's.
 */
static bool same_four_tuple(struct session *s)
{
	struct sockaddr_storage local;
	int len = sizeof(local);

	if (!options(s)->preserve_source)
		return false;
	if (uv_tcp_getsockname(&s->upstream.tcp, (struct sockaddr *)&local, &len))
		return false;
	return tpin_sockaddr_equal((struct sockaddr *)&local, (struct sockaddr *)&s->peer) &&
	       tpin_sockaddr_equal((struct sockaddr *)&s->upstream_addr,
				   (struct sockaddr *)&s->local);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct session *s = container_of(req, struct session, connect);
	const struct tpin_proxy_options *opt = options(s);
	int ret;

	if (status == UV_ECANCELED || s->closing)
		return;
	if (status < 0) {
		/* Reset, not FIN: the client learns at once, as if the port were closed. */
		tpin_metrics_connect_failed(s->w->p->metrics, s->port);
		session_fail(s, &s->upstream, "connect", status);
		return;
	}
	if (same_four_tuple(s) && s->attempts < PRESERVE_RETRIES) {
		s->upstream.open = false;
		uv_close((uv_handle_t *)&s->upstream.tcp, on_retry_closed);
		return;
	}
	s->connected = true;
	atomic_store(&s->state, STATE_RELAYING);
	s->last_active_ms = uv_now(&s->w->loop);
	if (opt->proxy_protocol) {
		ret = send_proxy_header(s);
		if (ret) {
			session_fail(s, &s->upstream, "write", ret);
			return;
		}
	}
	uv_timer_stop(&s->timer);
	if (opt->idle_timeout_ms)
		uv_timer_start(&s->timer, on_timer, opt->idle_timeout_ms, 0);
	start_reading(&s->client);
	if (!s->closing)
		start_reading(&s->upstream);
}

/* The source address of the upstream connection, or NULL to let the kernel choose. */
static const struct sockaddr *upstream_source(struct session *s, struct sockaddr_storage *ss)
{
	const struct tpin_proxy_options *opt = options(s);

	if (opt->preserve_source) {
		*ss = s->peer;
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = 0;
		else
			((struct sockaddr_in6 *)ss)->sin6_port = 0;
		return (struct sockaddr *)ss;
	}
	if (s->upstream_addr.ss_family == AF_INET && opt->passthrough4.sin_family)
		return (const struct sockaddr *)&opt->passthrough4;
	if (s->upstream_addr.ss_family == AF_INET6 && opt->passthrough6.sin6_family)
		return (const struct sockaddr *)&opt->passthrough6;
	return NULL;
}

static void upstream_connect(struct session *s)
{
	const struct sockaddr *src;
	struct sockaddr_storage ss;
	uv_os_fd_t fd;
	int ret;

	s->attempts++;
	/* EMFILE or ENOMEM here costs this connection only. */
	ret = uv_tcp_init_ex(&s->w->loop, &s->upstream.tcp, s->upstream_addr.ss_family);
	if (ret) {
		tpin_metrics_connect_failed(s->w->p->metrics, s->port);
		session_fail(s, &s->upstream, "socket", ret);
		return;
	}
	s->upstream.tcp.data = s;
	s->upstream.open = true;
	s->handles++;
	src = upstream_source(s, &ss);
	if (src) {
		uv_fileno((uv_handle_t *)&s->upstream.tcp, &fd);
		/* Binding the client's address needs a transparent socket. */
		ret = options(s)->preserve_source ? tpin_sock_set_transparent(fd, src->sa_family) : 0;
		/* Leave the port to connect(), so one source serves every destination. */
		if (!ret)
			ret = tpin_sock_set_bind_no_port(fd);
		if (!ret)
			ret = uv_tcp_bind(&s->upstream.tcp, src, 0);
		if (ret) {
			tpin_metrics_connect_failed(s->w->p->metrics, s->port);
			session_fail(s, &s->upstream, "bind", ret);
			return;
		}
	}
	ret = uv_tcp_connect(&s->connect, &s->upstream.tcp, (struct sockaddr *)&s->upstream_addr,
			     on_connect);
	if (ret) {
		tpin_metrics_connect_failed(s->w->p->metrics, s->port);
		session_fail(s, &s->upstream, "connect", ret);
	}
}

/* Where the session connects: the original destination or loopback at its port. */
static void choose_upstream(struct session *s)
{
	const struct tpin_proxy_options *opt = options(s);
	struct sockaddr_in *sin = (struct sockaddr_in *)&s->upstream_addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&s->upstream_addr;

	s->upstream_addr = s->orig;
	if (opt->upstream != TPIN_UPSTREAM_LOCALHOST)
		return;
	if (s->orig.ss_family == AF_INET)
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		sin6->sin6_addr = in6addr_loopback;
}

static void reject_closed(uv_handle_t *h)
{
	struct worker *w = h->data;
	uv_stream_t *server = w->reject_waiting;

	w->reject_busy = false;
	w->reject_waiting = NULL;
	if (server && !w->ending)
		relay_accept(w, server);
}

/*
 * No memory for a session: accept into the worker's spare handle and reset,
 * so the client hears at once and the listener is not left holding the
 * connection. While the spare is busy the connection waits in libuv, which
 * stops the listener until it is accepted.
 */
static void reject(struct worker *w, uv_stream_t *server)
{
	if (w->reject_busy) {
		w->reject_waiting = server;
		return;
	}
	uv_tcp_init(&w->loop, &w->reject);
	w->reject.data = w;
	w->reject_busy = true;
	if (uv_accept(server, (uv_stream_t *)&w->reject) ||
	    uv_tcp_close_reset(&w->reject, reject_closed))
		uv_close((uv_handle_t *)&w->reject, reject_closed);
	tpin_log_event(w->p->opt.log, "out of memory: connection reset");
}

static void refuse(struct session *s, enum tpin_refusal why, const char *result)
{
	tpin_metrics_refused(s->w->p->metrics, why);
	session_end(s, result, RESET_CLIENT);
}

static void init_side(struct session *s, struct side *side, struct side *peer, const char *name,
		      enum tpin_direction dir)
{
	side->s = s;
	side->peer = peer;
	side->name = name;
	side->dir = dir;
}

void relay_accept(struct worker *w, uv_stream_t *server)
{
	const struct tpin_proxy_options *opt = &w->p->opt;
	struct session *s = calloc(1, sizeof(*s));
	uv_os_fd_t fd;
	int len, ret;
	uint32_t max = opt->max_connections;

	if (!s) {
		reject(w, server);
		return;
	}
	s->w = w;
	w->n_sessions++;
	tpin_metrics_accepted(w->p->metrics);
	s->started_ms = uv_now(&w->loop);
	init_side(s, &s->client, &s->upstream, "client", TPIN_DIR_UPSTREAM);
	init_side(s, &s->upstream, &s->client, "upstream", TPIN_DIR_DOWNSTREAM);
	strcpy(s->upstream_str, "-");
	strcpy(s->peer_str, "-");
	strcpy(s->orig_str, "-");

	uv_tcp_init(&w->loop, &s->client.tcp);
	s->client.tcp.data = s;
	s->client.open = true;
	s->handles++;
	uv_timer_init(&w->loop, &s->timer);
	s->timer.data = s;
	s->timer_open = true;
	s->handles++;

	ret = uv_accept(server, (uv_stream_t *)&s->client.tcp);
	if (ret) {
		session_fail(s, &s->client, "accept", ret);
		return;
	}
	len = sizeof(s->peer);
	uv_tcp_getpeername(&s->client.tcp, (struct sockaddr *)&s->peer, &len);
	len = sizeof(s->local);
	uv_tcp_getsockname(&s->client.tcp, (struct sockaddr *)&s->local, &len);
	tpin_sockaddr_format((struct sockaddr *)&s->peer, s->peer_str, sizeof(s->peer_str));

	if (opt->original_dst.ss_family) {
		s->orig = opt->original_dst;
	} else {
		uv_fileno((uv_handle_t *)&s->client.tcp, &fd);
		ret = tpin_sock_original_dst(fd, opt->mode, &s->orig);
		if (ret) {
			session_fail(s, &s->client, "original_dst", uv_translate_sys_error(-ret));
			return;
		}
	}
	s->port = tpin_sockaddr_port((struct sockaddr *)&s->orig);
	tpin_sockaddr_format((struct sockaddr *)&s->orig, s->orig_str, sizeof(s->orig_str));

	uv_mutex_lock(&w->lock);
	s->next = w->sessions;
	if (s->next)
		s->next->prev = s;
	w->sessions = s;
	s->listed = true;
	uv_mutex_unlock(&w->lock);

	s->counted = true;
	if (max && atomic_fetch_add(&w->p->live, 1) >= max) {
		refuse(s, TPIN_REFUSED_LIMIT, "refused_limit");
		return;
	}
	/* A connection to the proxy's own ports would come straight back here. */
	if (s->port == w->p->port || s->port == opt->admin_port) {
		refuse(s, TPIN_REFUSED_LOOP, "refused_loop");
		return;
	}
	choose_upstream(s);
	tpin_sockaddr_format((struct sockaddr *)&s->upstream_addr, s->upstream_str,
			     sizeof(s->upstream_str));
	uv_timer_start(&s->timer, on_timer, opt->connect_timeout_ms, 0);
	upstream_connect(s);
}

void relay_close_all(struct worker *w, const char *why)
{
	struct session *s, *next;

	for (s = w->sessions; s; s = next) {
		next = s->next;
		session_end(s, why, 0);
	}
}

void relay_describe(struct worker *w, struct tpin_strbuf *sb)
{
	/* uv_now() belongs to the worker's thread; its clock is the same one. */
	uint64_t now = uv_hrtime() / 1000000;
	struct session *s;

	uv_mutex_lock(&w->lock);
	for (s = w->sessions; s; s = s->next) {
		uint64_t age = now > s->started_ms ? now - s->started_ms : 0;

		tpin_strbuf_printf(
			sb,
			"client=%s original_dst=%s upstream=%s state=%s bytes_up=%llu "
			"bytes_down=%llu age_ms=%llu\n",
			s->peer_str, s->orig_str, s->upstream_str, state_names[atomic_load(&s->state)],
			(unsigned long long)atomic_load_explicit(&s->client.bytes,
								 memory_order_relaxed),
			(unsigned long long)atomic_load_explicit(&s->upstream.bytes,
								 memory_order_relaxed),
			(unsigned long long)age);
	}
	uv_mutex_unlock(&w->lock);
}
