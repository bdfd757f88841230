// SPDX-License-Identifier: MIT
/*
 * The relay over loopback with plain blocking sockets on the test's own
 * threads, unprivileged: the cases that need exact control of what each
 * peer sends and when (many small chunks, an answer ahead of a reset,
 * urgent data ahead of a FIN). The proxy runs on its own threads with a
 * fixed original destination (the test hooks below). Every wait is bounded:
 * a stalled relay fails the test after some seconds without progress; no
 * assertion is about how long anything took.
 *
 * About 880 lines: eleven cases over one fixture (the proxy, the app's
 * listener, the bounded reads); each case reads on its own, top to bottom.
 */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tpin/err.h"
#include "tpin/proxy-hooks.h"
#include "tpin/proxy.h"
#include "tpin/strbuf.h"

/* A relay that moves nothing for this long has stalled. */
#define STALL_MS 10000

static struct tpin_proxy_hooks hooks;

/* The proxy library asks the program for its hooks: this one has some. */
struct tpin_proxy_hooks *tpin_proxy_hooks(void)
{
	return &hooks;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A listener on 127.0.0.1 (the app); @rcvbuf, if not 0, for its connections. */
static int app_listen(uint16_t *port, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	/* Set on the listener, it holds for the accepted sockets from the handshake on. */
	if (rcvbuf)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 128), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

/* A client of 127.0.0.1:@port; @rcvbuf, if not 0, set before connect (the window scale). */
static int tcp_connect_rcvbuf(uint16_t port, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	if (rcvbuf)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	ck_assert_msg(!connect(fd, (struct sockaddr *)&sin, sizeof(sin)), "connect: %s",
		      strerror(errno));
	return fd;
}

static int tcp_connect(uint16_t port)
{
	return tcp_connect_rcvbuf(port, 0);
}

/* accept(2), bounded: the proxy connects at once or not at all. */
static int app_accept(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	ck_assert_msg(poll(&p, 1, STALL_MS) == 1, "the proxy did not connect to the app");
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* A proxy on loopback, one worker, whose every connection goes to 127.0.0.1:@app_port. */
/* Options a test changes from the defaults; zero for none. */
static struct {
	uint32_t connect_timeout_ms;
} tweak;

static struct tpin_proxy *proxy_up(uint16_t app_port, bool proxy_protocol)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&hooks.original_dst;
	struct tpin_proxy_options opt;
	struct tpin_err err = { 0 };
	struct tpin_proxy *p;

	tpin_proxy_options_init(&opt);
	hooks.loopback = true;
	opt.ipv6 = false;
	opt.concurrency = 1;
	opt.proxy_protocol = proxy_protocol;
	if (tweak.connect_timeout_ms)
		opt.connect_timeout_ms = tweak.connect_timeout_ms;
	memset(&hooks.original_dst, 0, sizeof(hooks.original_dst));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin->sin_port = htons(app_port);
	ck_assert_msg(!tpin_proxy_new(&p, &opt, &err), "tpin_proxy_new: %s", err.msg);
	ck_assert_int_eq(tpin_proxy_start(p), 0);
	return p;
}

static void proxy_down(struct tpin_proxy *p)
{
	tpin_proxy_stop(p);
	ck_assert_int_eq(tpin_proxy_wait(p), 0);
	tpin_proxy_free(p);
}

/*
 * Read @fd until EOF, an error, @max bytes or STALL_MS without a byte; the
 * bytes into @buf (NULL: only counted). Returns what ended it: 0 for EOF,
 * an errno, ETIMEDOUT for a stall, ENOSPC at @max.
 */
static int read_to_end(int fd, char *buf, size_t max, size_t *got)
{
	static char sink[64 * 1024];
	uint64_t last = now_ms();

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		size_t room = buf ? max - *got : sizeof(sink);
		ssize_t n;

		if (buf && !room)
			return ENOSPC;
		poll(&p, 1, 100);
		n = recv(fd, buf ? buf + *got : sink, room, MSG_DONTWAIT);
		if (n > 0) {
			*got += (size_t)n;
			last = now_ms();
			continue;
		}
		if (n == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return errno;
		if (now_ms() - last > STALL_MS)
			return ETIMEDOUT;
	}
}

/* Wait until @fd's peer has acknowledged every byte written to it. */
static void wait_acked(int fd)
{
	uint64_t start = now_ms();
	int outq = 1;

	while (now_ms() - start < STALL_MS) {
		ck_assert_int_eq(ioctl(fd, SIOCOUTQ, &outq), 0);
		if (!outq)
			return;
		usleep(1000);
	}
	ck_abort_msg("%d bytes never acknowledged", outq);
}

/* ---- a batch of small chunks ------------------------------------------------ */

#define SMALL	    100
#define SMALL_TOTAL (8 * 1000 * 1000)

struct writer {
	int fd;
	atomic_size_t sent;
	atomic_bool done;
};

static char pattern_byte(size_t i)
{
	return (char)('a' + i % 23);
}

/* Small writes, each its own segment (TCP_NODELAY), each read apart by the proxy. */
static void *small_writer(void *arg)
{
	struct writer *w = arg;
	char buf[SMALL];
	size_t off = 0, i;
	int one = 1;

	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while (off < SMALL_TOTAL) {
		ssize_t n;

		for (i = 0; i < SMALL; i++)
			buf[i] = pattern_byte(off + i);
		n = write(w->fd, buf, SMALL);
		if (n != SMALL)
			break;
		off += SMALL;
		atomic_store(&w->sent, off);
		usleep(5);
	}
	atomic_store(&w->done, true);
	return NULL;
}

/*
 * The app reads nothing until the proxy has queued thousands of small
 * chunks, then reads everything: one sendmsg(2) takes a whole batch of
 * them with room to spare, which is no sign that the socket is full. A
 * flush that waits for EPOLLOUT there waits for ever, as no EAGAIN came.
 */
START_TEST(test_batch_flush_goes_on)
{
	uint16_t aport;
	int lfd = app_listen(&aport, 4096), afd;
	struct tpin_proxy *p = proxy_up(aport, false);
	struct writer w = { .fd = tcp_connect(tpin_proxy_port(p)) };
	char *got = malloc(SMALL_TOTAL);
	size_t len = 0, sent, i;
	struct tpin_proxy_stats st;
	pthread_t th;
	uint64_t last;
	int ret;

	ck_assert_ptr_nonnull(got);
	afd = app_accept(lfd);
	ck_assert_int_eq(pthread_create(&th, NULL, small_writer, &w), 0);
	/* Until the writer is done or blocked: the proxy then holds its queue limit in chunks. */
	sent = 0;
	last = now_ms();
	while (!atomic_load(&w.done) && now_ms() - last < 500) {
		usleep(10000);
		if (atomic_load(&w.sent) != sent) {
			sent = atomic_load(&w.sent);
			last = now_ms();
		}
	}
	tpin_proxy_stats(p, &st);
	ck_assert_msg(st.queue_peak > 64 * SMALL, "only %llu bytes were ever queued",
		      (unsigned long long)st.queue_peak);
	ret = read_to_end(afd, got, SMALL_TOTAL, &len);
	ck_assert_msg(len == SMALL_TOTAL, "the app got %zu of %d bytes (%s), the writer sent %zu",
		      len, SMALL_TOTAL, ret == ETIMEDOUT ? "stalled" : strerror(ret),
		      atomic_load(&w.sent));
	/* Checked apart from ck_assert: a Check assertion per byte costs seconds. */
	for (i = 0; i < len && got[i] == pattern_byte(i); i++)
		;
	ck_assert_msg(i == len, "byte %zu differs", i);
	pthread_join(th, NULL);
	close(w.fd);
	close(afd);
	close(lfd);
	free(got);
	proxy_down(p);
}
END_TEST

/* ---- the PROXY protocol header ---------------------------------------------- */

/* The 12 bytes every PROXY protocol v2 header starts with. */
static const char pp2_sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* What the app receives when a client sends @req to @port and half-closes. */
static size_t relayed(int lfd, uint16_t port, const char *req, char *buf, size_t max)
{
	int cfd = tcp_connect(port), afd = app_accept(lfd);
	size_t len = 0;

	ck_assert_int_eq(write(cfd, req, strlen(req)), (ssize_t)strlen(req));
	ck_assert_int_eq(shutdown(cfd, SHUT_WR), 0);
	ck_assert_int_eq(read_to_end(afd, buf, max, &len), 0);
	close(afd);
	close(cfd);
	return len;
}

/*
 * --proxy-protocol tells the app who its client is: inbound only. The
 * app's own connections (the outbound listener) go to services that never
 * asked for a header, and the header would give them the pod's addresses.
 */
START_TEST(test_proxy_protocol_inbound_only)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint16_t aport;
	int lfd = app_listen(&aport, 0);
	struct tpin_proxy *p = proxy_up(aport, true);
	char buf[512];
	size_t len;

	len = relayed(lfd, tpin_proxy_port(p), req, buf, sizeof(buf));
	ck_assert_uint_gt(len, sizeof(pp2_sig) + strlen(req));
	ck_assert_msg(!memcmp(buf, pp2_sig, sizeof(pp2_sig)), "inbound: no PROXY v2 header");
	ck_assert(!memcmp(buf + len - strlen(req), req, strlen(req)));

	len = relayed(lfd, tpin_proxy_outbound_port(p), req, buf, sizeof(buf));
	ck_assert_msg(len == strlen(req) && !memcmp(buf, req, len),
		      "outbound: the service got %zu bytes for a request of %zu%s", len,
		      strlen(req),
		      len >= sizeof(pp2_sig) && !memcmp(buf, pp2_sig, sizeof(pp2_sig))
			      ? ", a PROXY v2 header first"
			      : "");
	close(lfd);
	proxy_down(p);
}
END_TEST

/* ---- the admin thread's listing ---------------------------------------------- */

struct churn {
	int lfd;
	uint16_t port;
	unsigned n;
	atomic_bool done;
};

/* The app: reads each connection to its end, closes it. */
static void *churn_app(void *arg)
{
	struct churn *c = arg;
	char b[64];
	unsigned i;

	for (i = 0; i < c->n; i++) {
		int fd = accept4(c->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0)
			break;
		while (read(fd, b, sizeof(b)) > 0)
			;
		close(fd);
	}
	return NULL;
}

/* The clients: one byte, a FIN, read to the end; one after the other. */
static void *churn_clients(void *arg)
{
	struct churn *c = arg;
	char b[64];
	unsigned i;

	for (i = 0; i < c->n; i++) {
		int fd = tcp_connect(c->port);

		if (write(fd, "x", 1) != 1 || shutdown(fd, SHUT_WR))
			break;
		while (read(fd, b, sizeof(b)) > 0)
			;
		close(fd);
	}
	atomic_store(&c->done, true);
	return NULL;
}

/*
 * /connections runs on the admin thread and reads each listed session
 * under the worker's lock, while the worker changes the session's state
 * flags without it: what is read across threads must sit in memory of its
 * own. The outcome is for ThreadSanitizer to judge (a TSan build fails the
 * test on a race); any build checks that listing and relaying go on
 * together.
 */
START_TEST(test_listing_while_relaying)
{
	struct churn c = { .n = 1000 };
	struct tpin_proxy *p;
	pthread_t app, clients;
	unsigned long readings = 0;

	c.lfd = app_listen(&c.port, 0);
	p = proxy_up(c.port, false);
	c.port = tpin_proxy_port(p);
	ck_assert_int_eq(pthread_create(&app, NULL, churn_app, &c), 0);
	ck_assert_int_eq(pthread_create(&clients, NULL, churn_clients, &c), 0);
	while (!atomic_load(&c.done)) {
		struct tpin_strbuf sb = { 0 };

		tpin_proxy_connections(p, &sb);
		ck_assert(!sb.err);
		tpin_strbuf_free(&sb);
		readings++;
	}
	pthread_join(clients, NULL);
	pthread_join(app, NULL);
	ck_assert_uint_gt(readings, 0);
	close(c.lfd);
	proxy_down(p);
}
END_TEST

/* ---- urgent data ahead of a FIN ------------------------------------------------ */

#define BULK (2 * 1024 * 1024)
static const char urgent_tail[] = "TAIL-AFTER-THE-URGENT-BYTE";

struct bulk_writer {
	int fd;
	atomic_bool done;
};

/* Bulk (the flow moves to splice), an urgent byte, a tail, a FIN. */
static void *urgent_writer(void *arg)
{
	struct bulk_writer *w = arg;
	static char buf[BULK];
	size_t off = 0;

	memset(buf, 'b', sizeof(buf));
	while (off < sizeof(buf)) {
		ssize_t n = write(w->fd, buf + off, sizeof(buf) - off);

		if (n <= 0)
			return NULL;
		off += (size_t)n;
	}
	if (send(w->fd, "U", 1, MSG_OOB) == 1 &&
	    write(w->fd, urgent_tail, strlen(urgent_tail)) == (ssize_t)strlen(urgent_tail))
		shutdown(w->fd, SHUT_WR);
	atomic_store(&w->done, true);
	return NULL;
}

/*
 * The app reads nothing until the client has sent bulk data, an urgent
 * byte, a tail and its FIN, so the proxy's splice reaches the urgent mark
 * with the FIN already in: there splice(2) says 0, not EAGAIN. The bytes
 * past the mark must still reach the app (the urgent byte itself is
 * dropped, as without SO_OOBINLINE), then the FIN.
 */
START_TEST(test_urgent_before_fin)
{
	uint16_t aport;
	int lfd = app_listen(&aport, 8192), afd;
	struct tpin_proxy *p = proxy_up(aport, false);
	struct bulk_writer w = { .fd = tcp_connect(tpin_proxy_port(p)) };
	size_t want = BULK + strlen(urgent_tail), len = 0, tail = strlen(urgent_tail);
	char *got = malloc(want + 256);
	pthread_t th;
	uint64_t start;
	int ret;

	ck_assert_ptr_nonnull(got);
	afd = app_accept(lfd);
	ck_assert_int_eq(pthread_create(&th, NULL, urgent_writer, &w), 0);
	/* All of it fits in the sockets and the proxy's pipe on loopback; a bound only. */
	start = now_ms();
	while (!atomic_load(&w.done) && now_ms() - start < 5000)
		usleep(10000);
	usleep(100000); /* the tail and the FIN reach the proxy's socket */
	ret = read_to_end(afd, got, want + 256, &len);
	ck_assert_msg(ret == 0, "the app's read ended in %s after %zu bytes", strerror(ret), len);
	ck_assert_msg(len == want, "the app got %zu bytes of %zu", len, want);
	ck_assert_msg(!memcmp(got + len - tail, urgent_tail, tail), "the tail is missing");
	pthread_join(th, NULL);
	close(w.fd);
	close(afd);
	close(lfd);
	free(got);
	proxy_down(p);
}
END_TEST

/* ---- bytes ahead of a reset ---------------------------------------------------- */

static const char answer[] = "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n\r\n";

/*
 * An app that answers before it has read the whole request (a 413, a 401
 * on an upload) and closes: its kernel sends the answer, then a reset for
 * the unread bytes. A client connected directly reads the answer, then the
 * reset; through the proxy it must read the same. Twenty times: whether
 * the proxy reads the answer before the reset arrives is a matter of
 * timing, so one trial could pass by luck.
 */
START_TEST(test_answer_before_reset)
{
	static const char req[] = "POST /upload HTTP/1.1\r\nContent-Length: 100000\r\n\r\nxxxx";
	uint16_t aport;
	int lfd = app_listen(&aport, 0), trial;
	struct tpin_proxy *p = proxy_up(aport, false);

	for (trial = 0; trial < 20; trial++) {
		int cfd = tcp_connect(tpin_proxy_port(p)), afd = app_accept(lfd), ret;
		struct pollfd pfd = { .fd = afd, .events = POLLIN };
		char buf[256];
		size_t len = 0;

		ck_assert_int_eq(write(cfd, req, strlen(req)), (ssize_t)strlen(req));
		/* The request is in the app's socket, unread. */
		ck_assert_int_eq(poll(&pfd, 1, STALL_MS), 1);
		ck_assert_int_eq(write(afd, answer, strlen(answer)), (ssize_t)strlen(answer));
		close(afd);
		ret = read_to_end(cfd, buf, sizeof(buf), &len);
		ck_assert_msg(len == strlen(answer) && !memcmp(buf, answer, len),
			      "trial %d: the client read %zu bytes of the %zu-byte answer", trial,
			      len, strlen(answer));
		ck_assert_msg(ret == ECONNRESET, "trial %d: after the answer the client saw %s",
			      trial, ret ? strerror(ret) : "a FIN");
		close(cfd);
	}
	close(lfd);
	proxy_down(p);
}
END_TEST

/*
 * What the client can hand over while the app reads nothing: it must fit in
 * what the kernel and the proxy take on the way (the app's receive buffer,
 * the proxy's app-facing send buffer, which --upstream-buffer bounds, its
 * queue and its client-facing receive buffer), or part of it is never
 * acknowledged.
 */
#define REQUEST (512 * 1024)

/*
 * The client's side of a reset request: send up to @size bytes of @data while
 * the app reads nothing (nonblocking: all of it may not fit), wait until the
 * proxy's socket acknowledged what was sent (which makes it the proxy's to
 * deliver), and close with a reset. Returns the bytes sent.
 */
static size_t send_then_reset(int cfd, const char *data, size_t size)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	size_t len = 0;

	fcntl(cfd, F_SETFL, O_NONBLOCK);
	while (len < size) {
		struct pollfd pfd = { .fd = cfd, .events = POLLOUT };
		ssize_t n = send(cfd, data + len, size - len, MSG_NOSIGNAL);

		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		ck_assert_msg(n < 0 && errno == EAGAIN, "send: %s", strerror(errno));
		if (poll(&pfd, 1, 500) == 0)
			break;
	}
	wait_acked(cfd);
	ck_assert_int_eq(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(cfd);
	return len;
}

/*
 * The other way: a client sends a request and resets (SO_LINGER 0) while
 * the app has not read it yet. The app must still read every byte the
 * client sent, then the reset, as it would without the proxy.
 */
START_TEST(test_request_before_reset)
{
	uint16_t aport;
	int lfd = app_listen(&aport, 4096), cfd, afd, ret;
	struct tpin_proxy *p = proxy_up(aport, false);
	char *data = malloc(REQUEST + 1); /* one more: room to see that nothing more comes */
	size_t len = 0, i;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < REQUEST; i++)
		data[i] = pattern_byte(i);
	cfd = tcp_connect(tpin_proxy_port(p));
	afd = app_accept(lfd);
	len = send_then_reset(cfd, data, REQUEST);
	usleep(100000); /* the reset reaches the proxy before the app reads */
	memset(data, 0, REQUEST);
	i = 0;
	ret = read_to_end(afd, data, REQUEST + 1, &i);
	ck_assert_msg(i == len, "the app read %zu bytes of the %zu the client sent", i, len);
	ck_assert_msg(ret == ECONNRESET, "after the request the app saw %s",
		      ret ? strerror(ret) : "a FIN");
	for (i = 0; i < len && data[i] == pattern_byte(i); i++)
		;
	ck_assert_msg(i == len, "byte %zu differs", i);
	close(afd);
	close(lfd);
	free(data);
	proxy_down(p);
}
END_TEST

#define ANSWER (8 * 1024 * 1024)

/*
 * The answer ahead of the reset goes on only to a client that takes it: one
 * that reads nothing is reset once nothing moved for as long as a connect
 * may take (500 ms here), not kept for the hour of the idle timeout.
 */
START_TEST(test_reset_waits_not_forever)
{
	static const char req[] = "POST /upload HTTP/1.1\r\nContent-Length: 100000\r\n\r\nxxxx";
	uint16_t aport;
	int lfd, cfd, afd, ret;
	struct tpin_proxy *p;
	struct tpin_proxy_stats st;
	struct pollfd pfd;
	char *big = calloc(1, ANSWER);
	size_t len = 0, sent = 0;
	uint64_t start;

	ck_assert_ptr_nonnull(big);
	tweak.connect_timeout_ms = 500;
	lfd = app_listen(&aport, 0);
	p = proxy_up(aport, false);
	cfd = tcp_connect_rcvbuf(tpin_proxy_port(p), 4096);
	afd = app_accept(lfd);
	ck_assert_int_eq(write(cfd, req, strlen(req)), (ssize_t)strlen(req));
	pfd = (struct pollfd){ .fd = afd, .events = POLLIN };
	ck_assert_int_eq(poll(&pfd, 1, STALL_MS), 1);
	/* More than the proxy and the client's socket hold: the app's send blocks, then ends. */
	fcntl(afd, F_SETFL, O_NONBLOCK);
	start = now_ms();
	while (sent < ANSWER && now_ms() - start < 3000) {
		ssize_t n = send(afd, big + sent, ANSWER - sent, MSG_NOSIGNAL);

		if (n > 0)
			sent += (size_t)n;
		else
			usleep(10000);
	}
	ck_assert_uint_gt(sent, 0);
	close(afd); /* a reset: the request is unread */
	/* The session ends though the client never read. */
	start = now_ms();
	do {
		usleep(50000);
		tpin_proxy_stats(p, &st);
	} while (st.active && now_ms() - start < STALL_MS);
	ck_assert_msg(st.active == 0,
		      "the session still holds the answer for a client that reads nothing");
	ret = read_to_end(cfd, NULL, 0, &len);
	ck_assert_msg(ret == ECONNRESET, "the client saw %s after %zu bytes",
		      ret ? strerror(ret) : "a FIN", len);
	ck_assert_uint_lt(len, sent);
	close(cfd);
	close(lfd);
	free(big);
	proxy_down(p);
}
END_TEST

/*
 * The client sends a request the app has not read yet and resets; the app,
 * like an echo server, writes before it reads. What it writes toward the
 * reset client must not hold it up: the proxy drops it, the app's writes
 * complete, it reads the whole request, then the reset. Before, the proxy
 * stopped reading the app, the app's write blocked, it never read the
 * request, and the session waited for the connect timeout to reset it.
 */
START_TEST(test_reset_while_app_writes)
{
	uint16_t aport;
	int lfd, cfd, afd, ret;
	struct tpin_proxy *p;
	char *data = malloc(REQUEST + 1), *big = calloc(1, ANSWER);
	size_t len = 0, sent = 0, i;

	ck_assert_ptr_nonnull(data);
	ck_assert_ptr_nonnull(big);
	tweak.connect_timeout_ms = 2000;
	lfd = app_listen(&aport, 4096);
	p = proxy_up(aport, false);
	for (i = 0; i < REQUEST; i++)
		data[i] = pattern_byte(i);
	cfd = tcp_connect(tpin_proxy_port(p));
	afd = app_accept(lfd);
	len = send_then_reset(cfd, data, REQUEST);
	usleep(100000); /* the reset reaches the proxy before the app writes */
	/* Blocking, as an echo server writes: more than every buffer on the way holds. */
	while (sent < ANSWER) {
		ssize_t n = send(afd, big + sent, ANSWER - sent, MSG_NOSIGNAL);

		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	ck_assert_msg(sent == ANSWER, "the app's write failed after %zu of %d bytes: %s", sent,
		      ANSWER, strerror(errno));
	memset(data, 0, REQUEST);
	i = 0;
	ret = read_to_end(afd, data, REQUEST + 1, &i);
	ck_assert_msg(i == len, "the app read %zu bytes of the %zu the client sent", i, len);
	ck_assert_msg(ret == ECONNRESET, "after the request the app saw %s",
		      ret ? strerror(ret) : "a FIN");
	close(afd);
	close(lfd);
	free(big);
	free(data);
	proxy_down(p);
}
END_TEST

/*
 * The app answers more than the client's socket takes at once, then resets.
 * The proxy reads the answer to the reset and holds the rest; as the client
 * reads, the last bytes go out with the flag that holds a short segment back
 * for a FIN to come, but after a reset no FIN comes. They must still leave
 * at once: the session resets the client once they are acknowledged, and
 * gives up on a client whose queue does not move for the connect timeout
 * (300 ms here), which would throw them away.
 */
START_TEST(test_answer_tail_before_reset)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	enum { SIZE = 300 * 1024 + 77 };
	uint16_t aport;
	int lfd, cfd, afd, ret;
	struct tpin_proxy *p;
	char *data = malloc(SIZE + 1);
	size_t got = 0, i;

	ck_assert_ptr_nonnull(data);
	for (i = 0; i < SIZE; i++)
		data[i] = pattern_byte(i);
	tweak.connect_timeout_ms = 300;
	lfd = app_listen(&aport, 0);
	p = proxy_up(aport, false);
	cfd = tcp_connect_rcvbuf(tpin_proxy_port(p), 4096);
	afd = app_accept(lfd);
	ck_assert_int_eq(write(afd, data, SIZE), SIZE);
	/* What the proxy's socket acknowledged is the proxy's to deliver. */
	wait_acked(afd);
	ck_assert_int_eq(setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(afd);
	usleep(100000); /* the proxy has read the answer to the reset */
	memset(data, 0, SIZE);
	ret = read_to_end(cfd, data, SIZE + 1, &got);
	ck_assert_msg(got == SIZE, "the client read %zu bytes of the %d the app sent", got,
		      (int)SIZE);
	ck_assert_msg(ret == ECONNRESET, "after the answer the client saw %s",
		      ret ? strerror(ret) : "a FIN");
	for (i = 0; i < SIZE && data[i] == pattern_byte(i); i++)
		;
	ck_assert_msg(i == SIZE, "byte %zu differs", i);
	close(cfd);
	close(lfd);
	free(data);
	proxy_down(p);
}
END_TEST

/* ---- a drain while connecting --------------------------------------------------- */

/*
 * The drain deadline finds a session still connecting (the app's accept
 * queue is full, so its SYN goes unanswered): nothing was relayed, and the
 * client hears a reset, as at a connect timeout, not a FIN that would say
 * its request was served.
 */
START_TEST(test_drain_resets_connecting)
{
	uint16_t aport;
	int lfd = app_listen(&aport, 0), filler, cfd, ret;
	struct tpin_proxy *p = proxy_up(aport, false);
	struct tpin_strbuf sb = { 0 };
	size_t len = 0;
	uint64_t start;

	/* A backlog of 0 holds one connection: the filler's. */
	ck_assert_int_eq(listen(lfd, 0), 0);
	filler = tcp_connect(aport);
	cfd = tcp_connect(tpin_proxy_port(p));
	start = now_ms();
	do {
		tpin_strbuf_free(&sb);
		memset(&sb, 0, sizeof(sb));
		usleep(10000);
		tpin_proxy_connections(p, &sb);
	} while ((!sb.p || !strstr(sb.p, "state=connecting")) && now_ms() - start < STALL_MS);
	ck_assert_msg(sb.p && strstr(sb.p, "state=connecting"), "no session connecting: %s",
		      sb.p ? sb.p : "");
	tpin_strbuf_free(&sb);
	tpin_proxy_drain(p, 100);
	ck_assert_int_eq(tpin_proxy_wait(p), 0);
	tpin_proxy_free(p);
	ret = read_to_end(cfd, NULL, 0, &len);
	ck_assert_msg(ret == ECONNRESET, "the client saw %s", ret ? strerror(ret) : "a FIN");
	close(cfd);
	close(filler);
	close(lfd);
}
END_TEST

/* ---- a session that cannot start --------------------------------------------- */

/*
 * The original destination cannot be learnt (REDIRECT mode, and a
 * connection no NAT rule redirected: SO_ORIGINAL_DST finds no conntrack
 * entry): nothing can be relayed, and the client hears a reset, not a FIN
 * that would say its request was served.
 */
START_TEST(test_fail_client_resets)
{
	struct tpin_proxy_options opt;
	struct tpin_err err = { 0 };
	struct tpin_proxy *p;
	size_t len = 0;
	int cfd, ret;

	tpin_proxy_options_init(&opt);
	hooks.loopback = true;
	memset(&hooks.original_dst, 0, sizeof(hooks.original_dst));
	opt.ipv6 = false;
	opt.concurrency = 1;
	opt.mode = TPIN_MODE_REDIRECT;
	ck_assert_msg(!tpin_proxy_new(&p, &opt, &err), "tpin_proxy_new: %s", err.msg);
	ck_assert_int_eq(tpin_proxy_start(p), 0);
	cfd = tcp_connect(tpin_proxy_port(p));
	ret = read_to_end(cfd, NULL, 0, &len);
	ck_assert_msg(ret == ECONNRESET, "the client saw %s", ret ? strerror(ret) : "a FIN");
	close(cfd);
	proxy_down(p);
}
END_TEST

/* One case per test: CK_RUN_CASE=NAME runs one alone. */
static void add(Suite *s, const char *name, const TTest *t)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t);
	suite_add_tcase(s, tc);
}

static Suite *sockets_suite(void)
{
	Suite *s = suite_create("relay_sockets");

	add(s, "batch_flush", test_batch_flush_goes_on);
	add(s, "proxy_protocol", test_proxy_protocol_inbound_only);
	add(s, "listing", test_listing_while_relaying);
	add(s, "urgent_fin", test_urgent_before_fin);
	add(s, "answer_reset", test_answer_before_reset);
	add(s, "request_reset", test_request_before_reset);
	add(s, "reset_bound", test_reset_waits_not_forever);
	add(s, "reset_app_writes", test_reset_while_app_writes);
	add(s, "answer_tail_reset", test_answer_tail_before_reset);
	add(s, "drain_connecting", test_drain_resets_connecting);
	add(s, "fail_client", test_fail_client_resets);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(sockets_suite());
	int failed;

	/* A write after a reset must fail a test with a message, not kill it. */
	signal(SIGPIPE, SIG_IGN);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
