// SPDX-License-Identifier: MIT
/*
 * The admin side, unprivileged: the HTTP request parser on good and hostile
 * input, the access log's JSON escaping, and the endpoint itself over
 * loopback, answered by a client on another thread.
 */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "tpin/admin.h"
#include "tpin/http.h"
#include "tpin/err.h"
#include "tpin/log.h"
#include "tpin/proxy-hooks.h"
#include "tpin/proxy.h"

struct http_case {
	const char *in;
	int ret;
	const char *path;
};

static const struct http_case http_cases[] = {
	{ "GET / HTTP/1.1\r\n\r\n", 0, "/" },
	{ "GET /metrics HTTP/1.0\r\nHost: x\r\nAccept: */*\r\n\r\n", 0, "/metrics" },
	{ "GET /ready?verbose=1 HTTP/1.1\r\n\r\n", 0, "/ready" },
	{ "GET /ready HTTP/1.1\r\nX-Tab:\ta\tb\r\n\r\n", 0, "/ready" },
	{ "", -EAGAIN, NULL },
	{ "GET / HTTP/1.1\r", -EAGAIN, NULL },
	{ "GET / HTTP/1.1\r\nHost: x\r\n", -EAGAIN, NULL },
	{ "GET / HTTP/1.1\n\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1\r\nHost: x\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1\rX\n\r\n", -EINVAL, NULL },
	{ "GET /\r\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/2.0\r\n\r\n", -EINVAL, NULL },
	{ "GET  / HTTP/1.1\r\n\r\n", -EINVAL, NULL },
	{ "GET x HTTP/1.1\r\n\r\n", -EINVAL, NULL },
	{ " GET / HTTP/1.1\r\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1 \r\n\r\n", -EINVAL, NULL },
	{ "TOOLONGMETHOD / HTTP/1.1\r\n\r\n", -EINVAL, NULL },
	{ "GET /\x01 HTTP/1.1\r\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1\r\nNoColon\r\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1\r\n: empty name\r\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", -EINVAL, NULL },
	{ "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", -EINVAL, NULL },
};

START_TEST(test_http_table)
{
	const struct http_case *c = &http_cases[_i];
	struct tpin_http_request req;
	int ret = tpin_http_parse(&req, c->in, strlen(c->in));

	ck_assert_msg(ret == c->ret, "case %d: got %d want %d", _i, ret, c->ret);
	if (!ret) {
		ck_assert_str_eq(req.path, c->path);
		ck_assert_uint_eq(req.head_len, strlen(c->in));
	}
}
END_TEST

START_TEST(test_http_oversized)
{
	struct tpin_http_request req;
	char *buf = malloc(TPIN_HTTP_HEAD_MAX + 16);
	size_t n;

	ck_assert_ptr_nonnull(buf);
	/* A path longer than the limit. */
	n = (size_t)snprintf(buf, TPIN_HTTP_HEAD_MAX, "GET /%0*d HTTP/1.1\r\n\r\n",
			     TPIN_HTTP_PATH_MAX, 0);
	ck_assert_int_eq(tpin_http_parse(&req, buf, n), -E2BIG);
	/* A head that never ends within the limit. */
	n = (size_t)snprintf(buf, 64, "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'a', TPIN_HTTP_HEAD_MAX - n);
	ck_assert_int_eq(tpin_http_parse(&req, buf, TPIN_HTTP_HEAD_MAX), -E2BIG);
	free(buf);
}
END_TEST

START_TEST(test_log_json_escaping)
{
	const struct tpin_log_entry e = {
		.client = "a\"b\\c\nd\x01",
		.original_dst = "198.51.100.2:9080",
		.upstream = "-",
		.bytes_up = 1,
		.bytes_down = 2,
		.duration_ms = 3,
		.result = "ok",
	};
	char buf[512];

	tpin_log_format_access(buf, sizeof(buf), TPIN_LOG_JSON, 0, &e);
	ck_assert_str_eq(buf,
			 "{\"time\":\"1970-01-01T00:00:00.000Z\",\"client\":\"a\\\"b\\\\c\\nd"
			 "\\u0001\",\"original_dst\":\"198.51.100.2:9080\",\"upstream\":\"-\","
			 "\"bytes_up\":1,\"bytes_down\":2,\"duration_ms\":3,\"result\":\"ok\"}\n");
	tpin_log_format_access(buf, sizeof(buf), TPIN_LOG_PLAIN, 1500, &e);
	ck_assert_ptr_nonnull(strstr(buf, "1970-01-01T00:00:01.500Z client="));
	ck_assert_ptr_nonnull(strstr(buf, " result=ok\n"));
}
END_TEST

/* The admin endpoint, asked by a blocking client on its own thread. */

/* An unprivileged proxy on loopback, for the admin endpoint to report on. */
static struct tpin_proxy_hooks hooks = { .loopback = true };

struct tpin_proxy_hooks *tpin_proxy_hooks(void)
{
	return &hooks;
}

static uv_loop_t loop;
static uv_async_t done;
static struct tpin_admin *admin;
static struct tpin_proxy *proxy;
static uint16_t admin_port, health_port;

#define NREQ 10
static struct {
	const char *request;
	bool health;
	size_t pad; /* bytes of header filler, to go over the limit */
	char response[8192];
} reqs[NREQ] = {
	{ "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", false, 0, "" },
	{ "GET /ready HTTP/1.1\r\n\r\n", false, 0, "" },
	{ "GET /connections HTTP/1.1\r\n\r\n", false, 0, "" },
	{ "GET /nope HTTP/1.1\r\n\r\n", false, 0, "" },
	{ "GARBAGE\r\n\r\n", false, 0, "" },
	{ "GET / HTTP/1.1\r\nX: ", false, 9000, "" },
	{ "GET /healthz/ready HTTP/1.1\r\n\r\n", true, 0, "" },
	{ "HEAD /metrics HTTP/1.1\r\n\r\n", false, 0, "" },
	{ "HEAD /healthz/ready HTTP/1.1\r\n\r\n", true, 0, "" },
	{ "GET /ready HTTP/1.1\r\n\r\n", false, 0, "" }, /* after draining */
};

static void ask(unsigned i)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(reqs[i].health ? health_port : admin_port);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		goto out;
	if (write(fd, reqs[i].request, strlen(reqs[i].request)) < 0)
		goto out;
	if (reqs[i].pad) {
		char *pad = malloc(reqs[i].pad);

		memset(pad, 'a', reqs[i].pad);
		/* The server may answer and close before all of it is sent. */
		n = send(fd, pad, reqs[i].pad, MSG_NOSIGNAL);
		(void)n;
		free(pad);
	}
	while (got + 1 < sizeof(reqs[i].response) &&
	       (n = read(fd, reqs[i].response + got, sizeof(reqs[i].response) - 1 - got)) > 0)
		got += (size_t)n;
	reqs[i].response[got] = '\0';
out:
	if (fd >= 0)
		close(fd);
}

static void on_draining(uv_async_t *a);
static uv_async_t drain_now;
static uv_sem_t drained;

static void client_thread(void *arg)
{
	unsigned i;

	for (i = 0; i < NREQ - 1; i++)
		ask(i);
	uv_async_send(&drain_now);
	uv_sem_wait(&drained);
	ask(NREQ - 1);
	uv_async_send(&done);
}

static void on_draining(uv_async_t *a)
{
	tpin_admin_set_draining(admin);
	uv_sem_post(&drained);
}

static void on_done(uv_async_t *a)
{
	tpin_admin_close(admin);
	uv_close((uv_handle_t *)&done, NULL);
	uv_close((uv_handle_t *)&drain_now, NULL);
}

/* A proxy and its admin endpoint on the test's loop, with @client on a thread. */
static void admin_run(void (*client)(void *))
{
	struct tpin_proxy_options popt;
	struct tpin_admin_options aopt;
	uv_thread_t t;
	struct tpin_err err = { 0 };

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	tpin_proxy_options_init(&popt);
	popt.ipv6 = false;
	popt.concurrency = 1;
	ck_assert_int_eq(tpin_proxy_new(&proxy, &popt, &err), 0);
	ck_assert_int_eq(tpin_proxy_start(proxy), 0);
	tpin_admin_options_init(&aopt);
	aopt.port = 0;
	aopt.health_port = 0;
	aopt.table_name = NULL; /* no nftables without privilege */
	ck_assert_int_eq(tpin_admin_new(&admin, &loop, proxy, &aopt, &err), 0);
	admin_port = tpin_admin_port(admin, false);
	health_port = tpin_admin_port(admin, true);
	ck_assert_uint_ne(admin_port, 0);
	ck_assert_uint_ne(health_port, 0);
	uv_async_init(&loop, &done, on_done);
	uv_async_init(&loop, &drain_now, on_draining);
	uv_sem_init(&drained, 0);
	ck_assert_int_eq(uv_thread_create(&t, client, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_thread_join(&t);
	uv_sem_destroy(&drained);
	tpin_proxy_stop(proxy);
	ck_assert_int_eq(tpin_proxy_wait(proxy), 0);
	tpin_proxy_free(proxy);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

START_TEST(test_admin_endpoints)
{
	unsigned i;

	admin_run(client_thread);
	ck_assert_ptr_nonnull(strstr(reqs[0].response, "HTTP/1.1 200 OK\r\n"));
	ck_assert_ptr_nonnull(strstr(reqs[0].response,
				     "\ntpin_connections_accepted_total{traffic=\"inbound\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(reqs[0].response, "# TYPE tpin_bytes_total counter\n"));
	ck_assert_ptr_nonnull(strstr(reqs[1].response, "HTTP/1.1 200 OK\r\n"));
	ck_assert_ptr_nonnull(strstr(reqs[1].response, "\r\n\r\nready\n"));
	ck_assert_ptr_nonnull(strstr(reqs[2].response, "HTTP/1.1 200 OK\r\n"));
	ck_assert_ptr_nonnull(strstr(reqs[3].response, "HTTP/1.1 404 "));
	ck_assert_ptr_nonnull(strstr(reqs[4].response, "HTTP/1.1 400 "));
	ck_assert_ptr_nonnull(strstr(reqs[5].response, "HTTP/1.1 431 "));
	ck_assert_ptr_nonnull(strstr(reqs[6].response, "HTTP/1.1 200 OK\r\n"));
	/* HEAD: the headers GET would send, Content-Length included, and nothing after them. */
	for (i = 7; i <= 8; i++) {
		const char *end = strstr(reqs[i].response, "\r\n\r\n");

		ck_assert_msg(!strncmp(reqs[i].response, "HTTP/1.1 200 OK\r\n", 17), "HEAD: %s",
			      reqs[i].response);
		ck_assert_ptr_nonnull(strstr(reqs[i].response, "Content-Length: "));
		ck_assert_ptr_null(strstr(reqs[i].response, "Content-Length: 0\r\n"));
		ck_assert_msg(end && !end[4], "HEAD answered with a body: %s", end ? end + 4 : "");
	}
	ck_assert_ptr_nonnull(strstr(reqs[9].response, "HTTP/1.1 503 "));
	ck_assert_ptr_nonnull(strstr(reqs[9].response, "draining"));
}
END_TEST

#define IDLE 200
static long long probe_ms[2];
static char probe_answer[2][16];

static long long now_ms(void)
{
	return (long long)(uv_hrtime() / 1000000);
}

/* Asks @port for @path and keeps the status line's first bytes and the time it took. */
static void timed_ask(unsigned i, uint16_t port, const char *path)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	char req[128], buf[512];
	long long t0 = now_ms();
	struct pollfd pfd;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n = -1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\n\r\n", path);
	if (fd >= 0 && !connect(fd, (struct sockaddr *)&sin, sizeof(sin)) &&
	    write(fd, req, strlen(req)) > 0) {
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 3000) == 1)
			n = read(fd, buf, sizeof(buf) - 1);
	}
	probe_ms[i] = now_ms() - t0;
	snprintf(probe_answer[i], sizeof(probe_answer[i]), "%.12s", n > 0 ? buf : "(nothing)");
	if (fd >= 0)
		close(fd);
}

/* 200 connections held open on :15021 that never ask; then readiness and metrics are asked. */
static void idle_thread(void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(health_port) };
	static int fds[IDLE];
	unsigned i;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < IDLE; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] >= 0 && connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)))
			break;
	}
	timed_ask(0, health_port, "/healthz/ready");
	timed_ask(1, admin_port, "/metrics");
	for (i = 0; i < IDLE; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	uv_async_send(&done);
}

/*
 * A neighbour holding 200 idle connections on :15021 starves neither the
 * next readiness probe (the oldest idle one makes room) nor the loopback
 * admin port (a budget of its own).
 */
START_TEST(test_health_budget)
{
	admin_run(idle_thread);
	ck_assert_msg(!strncmp(probe_answer[0], "HTTP/1.1 200", 12) && probe_ms[0] < 1000,
		      "readiness beside %d idle connections: \"%s\" after %lld ms", IDLE,
		      probe_answer[0], probe_ms[0]);
	ck_assert_msg(!strncmp(probe_answer[1], "HTTP/1.1 200", 12) && probe_ms[1] < 1000,
		      "metrics beside %d idle connections: \"%s\" after %lld ms", IDLE,
		      probe_answer[1], probe_ms[1]);
}
END_TEST

/* A connection to :15021 from @src (127.0.0.0/8 is all loopback's). */
static int health_conn_from(const char *src)
{
	struct sockaddr_in s = { .sin_family = AF_INET }, d = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, src, &s.sin_addr);
	d.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d.sin_port = htons(health_port);
	if (fd >= 0 && (bind(fd, (struct sockaddr *)&s, sizeof(s)) ||
			connect(fd, (struct sockaddr *)&d, sizeof(d)))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Ask readiness on an open connection; the first bytes of the answer, or "(closed)". */
static void ask_on(int fd, char *out, size_t len)
{
	static const char req[] = "GET /healthz/ready HTTP/1.1\r\n\r\n";
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char buf[256];
	ssize_t n = -1;

	if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req) &&
	    poll(&pfd, 1, 3000) == 1)
		n = recv(fd, buf, sizeof(buf) - 1, 0);
	snprintf(out, len, "%.12s", n > 0 ? buf : "(closed)");
}

static char victim_answer[16], own_answer[16];

/*
 * The kubelet's probe (from 127.0.0.2) has connected; another IPv4 host
 * (127.0.0.1) opens as many idle connections as one source may hold, then
 * one more. On the dual-stack socket both are ::ffff:a.b.c.d, and the
 * source is their IPv4 address, not the first 8 bytes (all zero for every
 * IPv4 peer): the idle host evicts only its own.
 */
static void neighbour_thread(void *arg)
{
	int victim = health_conn_from("127.0.0.2"), idle[5], i;

	for (i = 0; i < 5; i++) {
		idle[i] = health_conn_from("127.0.0.1");
		/* Accepted one by one, in order: the admin loop sees them apart. */
		usleep(20000);
	}
	usleep(100000);
	ask_on(victim, victim_answer, sizeof(victim_answer));
	/* The neighbour's first connection made room for its fifth. */
	ask_on(idle[0], own_answer, sizeof(own_answer));
	for (i = 0; i < 5; i++)
		if (idle[i] >= 0)
			close(idle[i]);
	if (victim >= 0)
		close(victim);
	uv_async_send(&done);
}

START_TEST(test_health_source_ipv4)
{
	admin_run(neighbour_thread);
	ck_assert_msg(!strncmp(victim_answer, "HTTP/1.1 200", 12),
		      "the probe from 127.0.0.2, beside 5 idle connections from 127.0.0.1: %s",
		      victim_answer);
	ck_assert_msg(!strcmp(own_answer, "(closed)"),
		      "127.0.0.1's oldest idle connection should have made room: %s", own_answer);
}
END_TEST

/* ---- an answer never taken ------------------------------------------------------ */

/* Sessions held open through the proxy, so that /connections is long. */
#define HELD 300
static size_t taken, answer_len;

/* A connection to @port on loopback, with a receive buffer of @rcvbuf if not 0; -1 on failure. */
static int connect_lo(uint16_t port, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if ((rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))) ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * The smallest send buffer on the admin side's socket for the client @fd
 * (the test's process holds both ends): a fixed one, which the kernel no
 * longer grows. Waits for the admin loop to accept it; whether it was found.
 */
static bool shrink_server_side(int fd)
{
	struct sockaddr_in me, sa, pa;
	socklen_t len = sizeof(me);
	long long t0 = now_ms();
	int one = 1, i;

	if (getsockname(fd, (struct sockaddr *)&me, &len))
		return false;
	do {
		for (i = 3; i < 4096; i++) {
			socklen_t sl = sizeof(sa), pl = sizeof(pa);

			if (i == fd || getsockname(i, (struct sockaddr *)&sa, &sl) ||
			    getpeername(i, (struct sockaddr *)&pa, &pl) ||
			    sa.sin_family != AF_INET || sa.sin_port != htons(admin_port) ||
			    pa.sin_port != me.sin_port)
				continue;
			return !setsockopt(i, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one));
		}
		usleep(5000);
	} while (now_ms() - t0 < 2000);
	return false;
}

/*
 * Asks /connections, with HELD sessions listed, on a connection that takes
 * nothing for longer than a request may take; then reads what comes.
 */
static void not_taken_thread(void *arg)
{
	static int held[HELD];
	static char buf[1 << 17];
	static const char req[] = "GET /connections HTTP/1.1\r\n\r\n";
	struct tpin_strbuf sb = { 0 };
	struct pollfd pfd;
	const char *cl, *end;
	long long t0;
	size_t lines = 0;
	ssize_t n;
	int fd, i;

	for (i = 0; i < HELD; i++)
		held[i] = connect_lo(tpin_proxy_port(proxy), 0);
	t0 = now_ms();
	do {
		const char *q;

		usleep(10000);
		tpin_strbuf_free(&sb);
		memset(&sb, 0, sizeof(sb));
		tpin_proxy_connections(proxy, &sb);
		for (lines = 0, q = sb.p; q && (q = strchr(q, '\n')); q++)
			lines++;
	} while (lines < HELD && now_ms() - t0 < 3000);
	tpin_strbuf_free(&sb);
	/*
	 * A small window on the client's side and a small fixed buffer on the
	 * admin side's keep the answer (about 38 kB) from fitting in the
	 * sockets: the admin side still has some of it to write when the
	 * time is up. The kernel would otherwise grow its send buffer to
	 * megabytes.
	 */
	fd = connect_lo(admin_port, 1);
	if (fd >= 0 && shrink_server_side(fd) &&
	    write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
		usleep(3000 * 1000); /* the admin port's 2 s, and a margin */
		pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
		while (taken < sizeof(buf) - 1 && poll(&pfd, 1, 3000) == 1 &&
		       (n = read(fd, buf + taken, sizeof(buf) - 1 - taken)) > 0)
			taken += (size_t)n;
		buf[taken] = '\0';
		cl = strstr(buf, "Content-Length: ");
		end = strstr(buf, "\r\n\r\n");
		if (cl && end)
			answer_len = (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10);
	}
	if (fd >= 0)
		close(fd);
	for (i = 0; i < HELD; i++)
		if (held[i] >= 0)
			close(held[i]);
	uv_async_send(&done);
}

/*
 * A client that asks and then never reads its answer is cut off when the
 * time for a request has passed again, rather than holding its connection
 * (and a descriptor of the relay's reserve) for good: the answer it reads
 * afterwards is short of its Content-Length. Lines of the listing are about
 * 130 bytes, so HELD sessions make an answer of about 38 kB.
 */
START_TEST(test_answer_not_taken)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&hooks.original_dst;
	uint16_t app_port;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	/* An app that never accepts: its queue holds the sessions, relaying. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(lfd, HELD + 16), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
	app_port = ntohs(a.sin_port);
	memset(&hooks.original_dst, 0, sizeof(hooks.original_dst));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(app_port);
	admin_run(not_taken_thread);
	close(lfd);
	ck_assert_msg(answer_len > 30000, "the answer was only %zu bytes", answer_len);
	ck_assert_msg(taken > 0 && taken < answer_len,
		      "a client that took nothing for 3 s still got %zu bytes of %zu", taken,
		      answer_len);
}
END_TEST

static Suite *admin_suite(void)
{
	Suite *s = suite_create("admin");
	TCase *tc = tcase_create("admin");

	tcase_add_loop_test(tc, test_http_table, 0, sizeof(http_cases) / sizeof(http_cases[0]));
	tcase_add_test(tc, test_http_oversized);
	tcase_add_test(tc, test_log_json_escaping);
	tcase_add_test(tc, test_admin_endpoints);
	tcase_add_test(tc, test_health_budget);
	tcase_add_test(tc, test_health_source_ipv4);
	tcase_add_test(tc, test_answer_not_taken);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(admin_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
