// SPDX-License-Identifier: MIT
/*
 * The admin endpoint: one short request per connection, answered and
 * closed. Requests are parsed by src/proxy/http.c; anything it refuses gets
 * 400.
 *
 * Readiness on :15021 faces the pod's network, as the kubelet probes the
 * pod's address, so a neighbour can open connections to it and send
 * nothing. Each listener has a budget of its own (the loopback admin port is
 * never starved by the network's), a request must arrive within a short
 * time, and one source holds only a few places: when a place is needed, the
 * oldest connection still waiting for its request goes, that of the same
 * source first. The newest connection is the one most likely to be a probe
 * about to ask, so it is never the one refused.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/err.h"
#include "tpin/admin.h"
#include "tpin/http.h"
#include "tpin/metrics.h"
#include "tpin/probe.h"
#include "tpin/proxy-options.h"
#include "tpin/proxy.h"
#include "tpin/strbuf.h"

/*
 * Connections each listener keeps at once. Their sum is part of the
 * descriptors the relay keeps in reserve (RELAY_FD_RESERVE).
 */
#define ADMIN_CONN_MAX	8
#define HEALTH_CONN_MAX 32
/* Connections one source (an IPv4 address, an IPv6 /64) keeps on :15021. */
#define HEALTH_PER_SOURCE 4
/* A request not complete by then is cut off: a probe sends its request at once. */
#define ADMIN_TIMEOUT_MS  2000
#define HEALTH_TIMEOUT_MS 1000

struct admin_conn;

struct admin_listener {
	uv_tcp_t tcp;
	struct tpin_admin *a;
	struct admin_conn *conns; /* newest first */
	unsigned n_conns;
	bool health; /* the kubelet port: readiness only */
	bool open;
};

struct tpin_admin {
	struct admin_listener listeners[2];
	struct tpin_proxy *proxy;
	char *table_name;
	bool draining;
	bool closing;
	struct tpin_probe_cache ruleset; /* the last verification, by generation */
	unsigned handles;		 /* open handles, conns included; the last close frees */
};

struct admin_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t write;
	struct admin_listener *l;
	struct admin_conn *prev, *next;
	struct sockaddr_storage peer;
	bool answered;
	bool head; /* HEAD: the headers without the body */
	unsigned handles;
	struct tpin_strbuf out;
	size_t len;
	char buf[TPIN_HTTP_HEAD_MAX];
};

void tpin_admin_options_init(struct tpin_admin_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->port = 15000;
	opt->health_port = TPIN_HEALTH_PORT;
	opt->table_name = "tpin";
}

static void admin_release(struct tpin_admin *a)
{
	if (--a->handles || !a->closing)
		return;
	free(a->table_name);
	free(a);
}

static void on_listener_close(uv_handle_t *h)
{
	struct admin_listener *l = h->data;

	admin_release(l->a);
}

static void on_conn_close(uv_handle_t *h)
{
	struct admin_conn *c = h->data;
	struct admin_listener *l = c->l;

	if (--c->handles)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	l->n_conns--;
	tpin_strbuf_free(&c->out);
	free(c);
	admin_release(l->a);
}

static void conn_close(struct admin_conn *c)
{
	if (uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	uv_close((uv_handle_t *)&c->tcp, on_conn_close);
	uv_close((uv_handle_t *)&c->timer, on_conn_close);
}

static void on_written(uv_write_t *req, int status)
{
	conn_close(req->data);
}

static void on_timeout(uv_timer_t *t);

static void respond(struct admin_conn *c, int code, const char *reason, const char *type,
		    const struct tpin_strbuf *body)
{
	uv_buf_t b;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	/*
	 * The answer must be taken within the same time as the request: a
	 * client that never reads would otherwise keep its connection, and a
	 * descriptor of the relay's reserve, for good (make_room() closes only
	 * connections still waiting for their request).
	 */
	uv_timer_start(&c->timer, on_timeout, c->l->health ? HEALTH_TIMEOUT_MS : ADMIN_TIMEOUT_MS,
		       0);
	tpin_strbuf_printf(&c->out,
			   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			   "Connection: close\r\n\r\n",
			   code, reason, type, body->len);
	/* HEAD: the same headers, Content-Length included, and no body. */
	if (!c->head)
		tpin_strbuf_append(&c->out, body->p ? body->p : "", body->len);
	if (c->out.err) {
		conn_close(c);
		return;
	}
	b = uv_buf_init(c->out.p, (unsigned)c->out.len);
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written))
		conn_close(c);
}

static void respond_text(struct admin_conn *c, int code, const char *reason, const char *text)
{
	struct tpin_strbuf body = { 0 };

	tpin_strbuf_printf(&body, "%s\n", text);
	respond(c, code, reason, "text/plain; charset=utf-8", &body);
	tpin_strbuf_free(&body);
}

/* Ready: every listener accepting, not draining, and the table in place. */
static void ready(struct admin_conn *c)
{
	struct tpin_admin *a = c->l->a;
	char why[256];
	int ret;

	if (a->draining) {
		respond_text(c, 503, "Service Unavailable", "not ready: draining");
		return;
	}
	if (!tpin_proxy_listening(a->proxy)) {
		respond_text(c, 503, "Service Unavailable", "not ready: a listener is down");
		return;
	}
	/*
	 * The whole table as tpin-init installed it, not only its presence: a
	 * deleted IPv6 tproxy rule, a flushed chain or a changed set stops
	 * interception as surely as a missing table. Read again only when
	 * the ruleset's generation moved.
	 */
	if (a->table_name) {
		ret = tpin_probe_ruleset(a->table_name, &a->ruleset);
		if (ret) {
			snprintf(why, sizeof(why), "not ready: nftables table inet %s: %s",
				 a->table_name,
				 ret == -ENOENT ? "missing"
				 : ret == -ENODATA
					 ? "not what tpin-init installed (a rule deleted or "
					   "changed, flushed?)"
					 : strerror(-ret));
			respond_text(c, 503, "Service Unavailable", why);
			return;
		}
	}
	respond_text(c, 200, "OK", "ready");
}

static void route(struct admin_conn *c, const struct tpin_http_request *req)
{
	struct tpin_strbuf body = { 0 };

	c->head = !strcmp(req->method, "HEAD");
	if (strcmp(req->method, "GET") && !c->head) {
		respond_text(c, 405, "Method Not Allowed", "only GET and HEAD");
		return;
	}
	if (c->l->health) {
		if (!strcmp(req->path, "/healthz/ready"))
			ready(c);
		else
			respond_text(c, 404, "Not Found", "not found: try /healthz/ready");
		return;
	}
	if (!strcmp(req->path, "/ready") || !strcmp(req->path, "/healthz/ready")) {
		ready(c);
	} else if (!strcmp(req->path, "/metrics")) {
		tpin_metrics_render(tpin_proxy_metrics(c->l->a->proxy), &body);
		respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", &body);
	} else if (!strcmp(req->path, "/connections")) {
		tpin_proxy_connections(c->l->a->proxy, &body);
		respond(c, 200, "OK", "text/plain; charset=utf-8", &body);
	} else if (!strcmp(req->path, "/")) {
		respond_text(c, 200, "OK", "/metrics /ready /connections");
	} else {
		respond_text(c, 404, "Not Found", "not found: try /metrics, /ready, /connections");
	}
	tpin_strbuf_free(&body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct admin_conn *c = h->data;

	*buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct admin_conn *c = s->data;
	struct tpin_http_request req;
	int ret;

	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)nread;
	ret = tpin_http_parse(&req, c->buf, c->len);
	if (ret == -EAGAIN)
		return;
	if (ret == -E2BIG)
		respond_text(c, 431, "Request Header Fields Too Large", "request too large");
	else if (ret)
		respond_text(c, 400, "Bad Request", "malformed request");
	else
		route(c, &req);
}

static void on_timeout(uv_timer_t *t)
{
	struct admin_conn *c = t->data;

	if (!c->answered)
		respond_text(c, 408, "Request Timeout", "request timeout");
	else
		conn_close(c); /* answered, and the answer still not taken */
}

/*
 * @ss's source into @src: an IPv4 address whole, an IPv6 address down to
 * its /64, as the proxy's per-source cap counts them. The readiness
 * listener is dual-stack, so an IPv4 peer shows as ::ffff:a.b.c.d: its
 * first 8 bytes are zero for every IPv4 host, and its source is the IPv4
 * address. Returns the bytes written (4 or 8), 0 for another family.
 */
static size_t source_of(const struct sockaddr_storage *ss, uint8_t src[8])
{
	const struct in6_addr *a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (ss->ss_family == AF_INET) {
		memcpy(src, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		return 4;
	}
	if (ss->ss_family != AF_INET6)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(a6)) {
		memcpy(src, a6->s6_addr + 12, 4);
		return 4;
	}
	memcpy(src, a6->s6_addr, 8);
	return 8;
}

/* Whether @a and @b are one source: the same IPv4 address, or the same IPv6 /64. */
static bool same_source(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	uint8_t sa[8], sb[8];
	size_t la = source_of(a, sa), lb = source_of(b, sb);

	return la && la == lb && !memcmp(sa, sb, la);
}

/*
 * Make room for @c: when its source holds its share, or the listener its
 * budget, the oldest connection still waiting for its request goes (of the
 * same source first).
 */
static void make_room(struct admin_listener *l, struct admin_conn *c)
{
	struct admin_conn *it, *oldest = NULL, *oldest_same = NULL;
	unsigned same = 0;

	for (it = l->conns; it; it = it->next) {
		if (it == c || it->answered || uv_is_closing((uv_handle_t *)&it->tcp))
			continue;
		oldest = it;
		if (l->health && same_source(&it->peer, &c->peer)) {
			same++;
			oldest_same = it;
		}
	}
	if (l->health && same >= HEALTH_PER_SOURCE)
		conn_close(oldest_same);
	else if (l->n_conns > (l->health ? HEALTH_CONN_MAX : ADMIN_CONN_MAX) && oldest)
		conn_close(oldest);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct admin_listener *l = server->data;
	struct admin_conn *c;
	int len = sizeof(c->peer);

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->l = l;
	uv_tcp_init(server->loop, &c->tcp);
	uv_timer_init(server->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	c->handles = 2;
	l->a->handles++;
	c->next = l->conns;
	if (c->next)
		c->next->prev = c;
	l->conns = c;
	l->n_conns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
		conn_close(c);
		return;
	}
	if (l->health)
		uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
	make_room(l, c);
	uv_timer_start(&c->timer, on_timeout, l->health ? HEALTH_TIMEOUT_MS : ADMIN_TIMEOUT_MS, 0);
}

/*
 * The admin port listens on loopback only. The readiness port is for the
 * kubelet, which probes the pod's own address: it listens on every address,
 * IPv6 and IPv4 on one dual-stack socket, or IPv4 alone without IPv6.
 */
static int listen_on(struct tpin_admin *a, uv_loop_t *loop, struct admin_listener *l, uint16_t port,
		     struct tpin_err *err)
{
	struct sockaddr_storage ss;
	const char *where = l->health ? "::" : "127.0.0.1";
	int ret;

	uv_tcp_init(loop, &l->tcp);
	l->tcp.data = l;
	l->a = a;
	l->conns = NULL;
	l->open = true;
	a->handles++;
	if (l->health)
		uv_ip6_addr(where, port, (struct sockaddr_in6 *)&ss);
	else
		uv_ip4_addr(where, port, (struct sockaddr_in *)&ss);
	ret = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
	if (ret == UV_EAFNOSUPPORT && l->health) {
		where = "0.0.0.0";
		uv_ip4_addr(where, port, (struct sockaddr_in *)&ss);
		ret = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
	}
	if (!ret)
		ret = uv_listen((uv_stream_t *)&l->tcp, 64, on_connection);
	if (ret)
		tpin_err_set(err, ret, "cannot listen on %s port %u for %s: %s", where, port,
			     l->health ? "readiness" : "admin", uv_strerror(ret));
	return ret;
}

int tpin_admin_new(struct tpin_admin **out, uv_loop_t *loop, struct tpin_proxy *proxy,
		   const struct tpin_admin_options *opt, struct tpin_err *err)
{
	struct tpin_admin *a = calloc(1, sizeof(*a));
	int ret = -ENOMEM;

	if (!a)
		goto nomem;
	a->proxy = proxy;
	if (opt->table_name) {
		a->table_name = strdup(opt->table_name);
		if (!a->table_name)
			goto nomem;
	}
	a->listeners[1].health = true;
	ret = listen_on(a, loop, &a->listeners[0], opt->port, err);
	if (!ret && !opt->no_health)
		ret = listen_on(a, loop, &a->listeners[1], opt->health_port, err);
	if (ret) {
		tpin_admin_close(a);
		return ret;
	}
	*out = a;
	return 0;
nomem:
	tpin_err_set(err, -ENOMEM, "out of memory");
	if (a)
		free(a->table_name);
	free(a);
	return ret;
}

uint16_t tpin_admin_port(const struct tpin_admin *a, bool health)
{
	const struct admin_listener *l = &a->listeners[health ? 1 : 0];
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (!l->open || uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len))
		return 0;
	/* The port sits at the same offset in sockaddr_in and sockaddr_in6. */
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void tpin_admin_set_draining(struct tpin_admin *a)
{
	if (a)
		a->draining = true;
}

static void close_listener(struct admin_listener *l)
{
	if (!l->open)
		return;
	l->open = false;
	uv_close((uv_handle_t *)&l->tcp, on_listener_close);
}

void tpin_admin_close(struct tpin_admin *a)
{
	struct admin_conn *c;

	if (!a || a->closing)
		return;
	/* Held while closing, so nothing frees @a before this returns. */
	a->handles++;
	a->closing = true;
	close_listener(&a->listeners[0]);
	close_listener(&a->listeners[1]);
	for (c = a->listeners[0].conns; c; c = c->next)
		conn_close(c);
	for (c = a->listeners[1].conns; c; c = c->next)
		conn_close(c);
	admin_release(a);
}
