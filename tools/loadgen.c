// SPDX-License-Identifier: MIT
/*
 * A small load generator and target for rough proxy-versus-direct numbers.
 *   loadgen serve PORT              answer every request with 128 bytes and
 *                                   close; count and drop bulk uploads
 *   loadgen rr ADDR PORT CONC SECS  short connections, one request each
 *   loadgen bulk ADDR PORT MIB      one upload of MIB mebibytes
 * A benchmark tool, not a test: it prints one result line.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUF (64 * 1024)

static uv_loop_t *loop;
static char reply[128];
static char block[BUF];
static unsigned long long done_count, failed;
static int running = 1;
static struct sockaddr_storage target;

struct conn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	uv_shutdown_t shutdown;
	unsigned long long left; /* bulk bytes still to send */
	char buf[BUF];
};

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct conn *c = h->data;

	*b = uv_buf_init(c->buf, BUF);
}

static void on_free(uv_handle_t *h)
{
	free(h->data);
}

/* Server: the first bytes of a request get the reply; an upload is read to EOF. */
static void on_served(uv_write_t *w, int status)
{
	uv_close((uv_handle_t *)w->handle, on_free);
}

static void on_serve_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;
	uv_buf_t r = uv_buf_init(reply, sizeof(reply));

	if (n > 0 && c->left == 0 && b->base[0] != 'B') {
		uv_read_stop(s);
		c->left = 1;
		uv_write(&c->write, s, &r, 1, on_served);
	} else if (n > 0) {
		c->left = 1;
	} else if (n < 0) {
		uv_close((uv_handle_t *)s, on_free);
	}
}

static void on_serve_conn(uv_stream_t *server, int status)
{
	struct conn *c = calloc(1, sizeof(*c));

	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (status || uv_accept(server, (uv_stream_t *)&c->tcp)) {
		uv_close((uv_handle_t *)&c->tcp, on_free);
		return;
	}
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_serve_read);
}

/* Client: request/response over short connections. */
static void start_one(void);

static void on_client_close(uv_handle_t *h)
{
	free(h->data);
	if (running)
		start_one();
}

static void on_rr_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	if (n == UV_EOF) {
		done_count++;
		uv_close((uv_handle_t *)s, on_client_close);
	} else if (n < 0) {
		failed++;
		uv_close((uv_handle_t *)s, on_client_close);
	}
}

static void on_written(uv_write_t *w, int status)
{
}

static void on_rr_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	uv_buf_t b = uv_buf_init((char *)"GET / HTTP/1.0\r\n\r\n", 18);

	if (status) {
		failed++;
		uv_close((uv_handle_t *)&c->tcp, on_client_close);
		return;
	}
	uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written);
	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_rr_read);
}

static void start_one(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	c->connect.data = c;
	uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&target, on_rr_connect);
}

static void on_stop(uv_timer_t *t)
{
	running = 0;
	uv_close((uv_handle_t *)t, NULL);
}

/* Client: one upload. */
static void pump(struct conn *c);

static void on_bulk_written(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	if (status) {
		failed++;
		uv_close((uv_handle_t *)&c->tcp, on_free);
		return;
	}
	pump(c);
}

/* Wait for the server's EOF: then every byte has crossed. */
static void on_bulk_shut(uv_shutdown_t *r, int status)
{
	struct conn *c = r->data;

	uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_rr_read);
}

static void pump(struct conn *c)
{
	uv_buf_t b = uv_buf_init(block, BUF);

	if (!c->left) {
		c->shutdown.data = c;
		uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_bulk_shut);
		return;
	}
	c->left -= BUF;
	c->write.data = c;
	uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_bulk_written);
}

static void on_bulk_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;

	if (status) {
		failed++;
		uv_close((uv_handle_t *)&c->tcp, on_free);
		return;
	}
	block[0] = 'B';
	pump(c);
}

static int parse_addr(const char *a, int port)
{
	if (!uv_ip4_addr(a, port, (struct sockaddr_in *)&target))
		return 0;
	return uv_ip6_addr(a, port, (struct sockaddr_in6 *)&target);
}

int main(int argc, char **argv)
{
	uint64_t t0;
	double secs;
	int i;

	loop = uv_default_loop();
	if (argc == 3 && !strcmp(argv[1], "serve")) {
		uv_tcp_t server;
		struct sockaddr_in6 any;

		uv_ip6_addr("::", atoi(argv[2]), &any);
		uv_tcp_init(loop, &server);
		if (uv_tcp_bind(&server, (struct sockaddr *)&any, 0) ||
		    uv_listen((uv_stream_t *)&server, 4096, on_serve_conn)) {
			fprintf(stderr, "loadgen: cannot listen on port %s\n", argv[2]);
			return 1;
		}
		memset(reply, 'r', sizeof(reply));
		return uv_run(loop, UV_RUN_DEFAULT);
	}
	if (argc == 6 && !strcmp(argv[1], "rr") && !parse_addr(argv[2], atoi(argv[3]))) {
		uv_timer_t stop;

		uv_timer_init(loop, &stop);
		uv_timer_start(&stop, on_stop, (uint64_t)atoi(argv[5]) * 1000, 0);
		t0 = uv_hrtime();
		for (i = 0; i < atoi(argv[4]); i++)
			start_one();
		uv_run(loop, UV_RUN_DEFAULT);
		secs = (double)(uv_hrtime() - t0) / 1e9;
		printf("rr: %llu requests in %.2f s: %.0f requests/s, %llu failed\n", done_count,
		       secs, (double)done_count / secs, failed);
		return failed ? 1 : 0;
	}
	if (argc == 5 && !strcmp(argv[1], "bulk") && !parse_addr(argv[2], atoi(argv[3]))) {
		struct conn *c = calloc(1, sizeof(*c));

		running = 0;
		c->left = strtoull(argv[4], NULL, 10) * 1024 * 1024;
		uv_tcp_init(loop, &c->tcp);
		c->tcp.data = c;
		c->connect.data = c;
		t0 = uv_hrtime();
		uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&target, on_bulk_connect);
		uv_run(loop, UV_RUN_DEFAULT);
		secs = (double)(uv_hrtime() - t0) / 1e9;
		printf("bulk: %s MiB in %.2f s: %.0f MiB/s\n", argv[4], secs,
		       (double)atoi(argv[4]) / secs);
		return failed ? 1 : 0;
	}
	fprintf(stderr, "usage: loadgen serve PORT | rr ADDR PORT CONC SECS | bulk ADDR PORT MIB\n");
	return 2;
}
