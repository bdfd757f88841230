// SPDX-License-Identifier: MIT
/*
 * tpin-app: the demo's application, a tiny HTTP responder on libuv.
 *
 * It answers every connection with one short HTTP/1.0 response that names
 * the pod, the client address it sees and the local address the connection
 * reached, then closes. One log line per connection says the same, so the
 * demo can show what the app saw behind the proxy (the passthrough source in
 * the default setup, the client itself with --preserve-source).
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

#define MAX_LISTEN 8
#define REQ_MAX	   4096

struct conn {
	uv_tcp_t tcp;
	uv_write_t write;
	size_t got;
	bool answered;
	char req[REQ_MAX];
	char resp[512];
};

static const char *app_name = "tpin-app";
static bool quiet;
static uv_loop_t *loop;
static uv_tcp_t listeners[MAX_LISTEN];
static int nlisteners;
static uv_signal_t sigint, sigterm;
static unsigned long long served;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tpin-app [--name NAME] [--quiet] ADDR:PORT...\n"
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
	free(h->data);
}

static void close_conn(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
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

static void answer(struct conn *c)
{
	struct sockaddr_storage peer = { 0 }, local = { 0 };
	int plen = sizeof(peer), llen = sizeof(local);
	char ps[INET6_ADDRSTRLEN + 8], ls[INET6_ADDRSTRLEN + 8], body[256];
	uv_buf_t b;
	int n;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
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
	snprintf(body, sizeof(body), "hello from %s: you are %s, you reached %s\n", app_name, ps,
		 ls);
	n = snprintf(c->resp, sizeof(c->resp),
		     "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
		     "Connection: close\r\n\r\n%s",
		     strlen(body), body);
	b = uv_buf_init(c->resp, (unsigned int)n);
	c->write.data = c;
	if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written))
		close_conn(c);
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
	if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
		close_conn(c);
}

/* Connections carry their struct in data; listeners and signals carry none. */
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
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "n:qh", opts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			app_name = optarg;
			break;
		case 'q':
			quiet = true;
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
	fprintf(stderr, "tpin-app %s: served %llu connections\n", app_name, served);
out:
	if (rc) {
		for (int i = 0; i < nlisteners; i++)
			uv_close((uv_handle_t *)&listeners[i], NULL);
		uv_run(loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(loop);
	return rc;
}
