// SPDX-License-Identifier: MIT
/*
 * tpin-app: the demo's application, a tiny HTTP responder on libuv.
 *
 * It answers every connection with one short HTTP/1.0 response that names
 * the pod, the client address it sees and the local address the connection
 * reached, then closes. One log line per connection says the same, so the
 * demo can show what the app saw behind the proxy (the passthrough source in
 * the default setup, the client itself with --preserve-source).
 *
 * With --backend it is a mesh app: before answering, it makes one request of
 * its own to the backend, which in a pod leaves through the sidecar's
 * outbound capture, and quotes the backend's answer. A backend that fails
 * makes the client's connection reset: a failed call is a failed request.
 */

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "util.h"

#define MAX_LISTEN	   8
#define REQ_MAX		   4096
#define BACKEND_TIMEOUT_MS 5000

/*
 * One client connection and, with --backend, the app's own call: the
 * handles live here and the struct is freed when the last one has closed.
 */
struct conn {
	uv_tcp_t tcp;
	uv_write_t write;
	uv_tcp_t up;
	uv_connect_t connect;
	uv_write_t up_write;
	uv_timer_t timer;
	int handles; /* open handles; the last close frees */
	size_t got;
	bool answered;
	bool failed;
	size_t up_got;
	char up_buf[512]; /* the backend's answer, cut to fit */
	char req[REQ_MAX];
	char resp[1024];
};

static const char *app_name = "tpin-app";
static bool quiet;
static uv_loop_t *loop;
static uv_tcp_t listeners[MAX_LISTEN];
static int nlisteners;
static uv_signal_t sigint, sigterm;
static unsigned long long served, backend_failed;
static struct sockaddr_storage backend;
static const char backend_req[] = "GET / HTTP/1.0\r\n\r\n";

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tpin-app [--name NAME] [--quiet] [--backend ADDR:PORT] ADDR:PORT...\n"
		"\n"
		"A tiny HTTP responder for the tpin demo. Each connection gets one\n"
		"HTTP/1.0 response naming NAME, the client address the app sees and the\n"
		"address the connection reached; then the app closes it. Unless --quiet,\n"
		"it prints one line per connection: \"peer=ADDR local=ADDR\".\n"
		"\n"
		"  ADDR:PORT         where to listen, e.g. 0.0.0.0:8080 or [::]:8080\n"
		"                    (IPv6 listeners are IPv6-only); up to %d\n"
		"  -n, --name NAME   name to put in responses and log lines\n"
		"  -q, --quiet       no per-connection log lines\n"
		"  -b, --backend ADDR:PORT\n"
		"                    before answering, make one HTTP request to ADDR:PORT\n"
		"                    and quote its answer (a mesh app calling another\n"
		"                    service); if that call fails or takes over 5 s, the\n"
		"                    client's connection is reset\n"
		"  -h, --help        this help\n"
		"\n"
		"SIGINT or SIGTERM stops it; it then prints how many it served.\n"
		"Exit status: 0 stopped by a signal, 1 could not listen, 2 bad usage.\n"
		"\n"
		"Example: tpin-app --name pod-a 0.0.0.0:8080 [::]:8080\n",
		MAX_LISTEN);
}

static void on_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->handles == 0)
		free(c);
}

static void close_handle(struct conn *c, uv_handle_t *h)
{
	if (h->data == c && !uv_is_closing(h))
		uv_close(h, on_closed);
}

static void close_conn(struct conn *c)
{
	close_handle(c, (uv_handle_t *)&c->tcp);
	close_handle(c, (uv_handle_t *)&c->up);
	close_handle(c, (uv_handle_t *)&c->timer);
}

/* The backend call failed: the client hears it as a reset. */
static void fail_conn(struct conn *c)
{
	if (c->failed)
		return;
	c->failed = true;
	backend_failed++;
	/* If the reset cannot be sent, close_conn() closes it plainly. */
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_tcp_close_reset(&c->tcp, on_closed);
	close_conn(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;

	/* Past REQ_MAX the request is only read to find its end, not kept. */
	if (c->got >= sizeof(c->req) - 1)
		c->got = sizeof(c->req) / 2;
	*b = uv_buf_init(c->req + c->got, (unsigned int)(sizeof(c->req) - 1 - c->got));
}

static void on_written(uv_write_t *w, int status)
{
	close_conn(w->data);
}

/* The first line of the backend's body, for the client to see. */
static const char *backend_said(struct conn *c)
{
	char *body = strstr(c->up_buf, "\r\n\r\n");

	if (!body)
		return "";
	body += 4;
	body[strcspn(body, "\r\n")] = '\0';
	return body;
}

static void respond(struct conn *c)
{
	struct sockaddr_storage peer = { 0 }, local = { 0 };
	int plen = sizeof(peer), llen = sizeof(local);
	char ps[INET6_ADDRSTRLEN + 8], ls[INET6_ADDRSTRLEN + 8], body[768];
	uv_buf_t b;
	int n;

	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) ||
	    uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&local, &llen)) {
		close_conn(c);
		return;
	}
	tu_addr_str((struct sockaddr *)&peer, ps, sizeof(ps));
	tu_addr_str((struct sockaddr *)&local, ls, sizeof(ls));
	served++;
	if (!quiet)
		printf("%s: peer=%s local=%s\n", app_name, ps, ls);
	n = snprintf(body, sizeof(body), "hello from %s: you are %s, you reached %s\n", app_name,
		     ps, ls);
	if (backend.ss_family)
		snprintf(body + n, sizeof(body) - (size_t)n, "  its backend said: %s\n",
			 backend_said(c));
	n = snprintf(c->resp, sizeof(c->resp),
		     "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n%s",
		     strlen(body), body);
	b = uv_buf_init(c->resp, (unsigned int)n);
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written))
		close_conn(c);
}

static void on_up_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct conn *c = h->data;
	static char discard[4096];

	/* What does not fit is read and dropped: only the start is quoted. */
	if (c->up_got >= sizeof(c->up_buf) - 1)
		*b = uv_buf_init(discard, sizeof(discard));
	else
		*b = uv_buf_init(c->up_buf + c->up_got,
				 (unsigned int)(sizeof(c->up_buf) - 1 - c->up_got));
}

static void on_up_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (n == UV_EOF && c->up_got) {
		close_handle(c, (uv_handle_t *)&c->up);
		close_handle(c, (uv_handle_t *)&c->timer);
		respond(c);
	} else if (n < 0) {
		fail_conn(c);
	} else if (b->base != NULL && b->base >= c->up_buf &&
		   b->base < c->up_buf + sizeof(c->up_buf)) {
		c->up_got += (size_t)n;
		c->up_buf[c->up_got] = '\0';
	}
}

static void on_up_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	if (status)
		fail_conn(c);
}

static void on_up_connected(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	uv_buf_t b = uv_buf_init((char *)backend_req, sizeof(backend_req) - 1);

	if (status == UV_ECANCELED)
		return;
	c->up_write.data = c;
	if (status || uv_write(&c->up_write, (uv_stream_t *)&c->up, &b, 1, on_up_written) ||
	    uv_read_start((uv_stream_t *)&c->up, on_up_alloc, on_up_read))
		fail_conn(c);
}

static void on_up_timeout(uv_timer_t *t)
{
	fail_conn(t->data);
}

/* The app's own call, before it answers its client. */
static void call_backend(struct conn *c)
{
	uv_tcp_init(loop, &c->up);
	c->up.data = c;
	c->handles++;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles++;
	c->connect.data = c;
	uv_timer_start(&c->timer, on_up_timeout, BACKEND_TIMEOUT_MS, 0);
	if (uv_tcp_connect(&c->connect, &c->up, (struct sockaddr *)&backend, on_up_connected))
		fail_conn(c);
}

static void answer(struct conn *c)
{
	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	if (backend.ss_family)
		call_backend(c);
	else
		respond(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;

	if (n == UV_EOF) {
		/* A client that half-closes without a blank line still gets its answer. */
		answer(c);
		return;
	}
	if (n < 0) {
		close_conn(c);
		return;
	}
	c->got += (size_t)n;
	c->req[c->got] = '\0';
	if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n"))
		answer(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct conn *c;

	if (status)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->handles = 1;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
		close_conn(c);
}

/* Connections' handles carry their struct in data; listeners and signals carry none. */
static void close_any(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, h->data ? on_closed : NULL);
}

/* Stops at once: a client that never sends must not keep the app alive. */
static void on_signal(uv_signal_t *s, int signum)
{
	uv_walk(loop, close_any, NULL);
}

static int listen_on(const char *spec)
{
	struct sockaddr_storage ss = { 0 };
	uv_tcp_t *l = &listeners[nlisteners];
	int ret;

	if (tu_parse_hostport(spec, &ss)) {
		fprintf(stderr, "tpin-app: bad address \"%s\": want IP:PORT or [IP6]:PORT\n", spec);
		return -EINVAL;
	}
	uv_tcp_init(loop, l);
	ret = uv_tcp_bind(l, (struct sockaddr *)&ss,
			  ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)l, 4096, on_connection);
	if (ret) {
		fprintf(stderr, "tpin-app: cannot listen on %s: %s\n", spec, uv_strerror(ret));
		uv_close((uv_handle_t *)l, NULL);
		return ret;
	}
	nlisteners++;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "backend", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "n:qb:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			app_name = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'b':
			if (tu_parse_hostport(optarg, &backend)) {
				fprintf(stderr,
					"tpin-app: bad --backend \"%s\": want IP:PORT or "
					"[IP6]:PORT\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc || argc - optind > MAX_LISTEN) {
		fprintf(stderr, "tpin-app: give 1 to %d listen addresses (see --help)\n",
			MAX_LISTEN);
		return 2;
	}
	for (int i = optind; i < argc; i++) {
		struct sockaddr_storage ss;

		if (tu_parse_hostport(argv[i], &ss)) {
			fprintf(stderr,
				"tpin-app: bad address \"%s\": want IP:PORT or [IP6]:PORT\n",
				argv[i]);
			return 2;
		}
	}
	/* Line-buffered, so a log file shows each connection as it happens. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	for (int i = optind; i < argc; i++) {
		if (listen_on(argv[i])) {
			rc = 1;
			goto out;
		}
	}
	uv_signal_init(loop, &sigint);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	fprintf(stderr, "tpin-app %s: listening\n", app_name);
	uv_run(loop, UV_RUN_DEFAULT);
	fprintf(stderr, "tpin-app %s: served %llu connections", app_name, served);
	if (backend.ss_family)
		fprintf(stderr, ", %llu backend calls failed", backend_failed);
	fputc('\n', stderr);
out:
	if (rc) {
		for (int i = 0; i < nlisteners; i++)
			uv_close((uv_handle_t *)&listeners[i], NULL);
		uv_run(loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(loop);
	return rc;
}
