// SPDX-License-Identifier: MIT
/*
 * bench-app: the application and the special-purpose clients of tools/bench.
 *
 *   bench-app serve ADDR:PORT THREADS
 *	answer every HTTP request with a small fixed body: keep-alive for
 *	HTTP/1.1, close after the answer for HTTP/1.0 or "Connection: close"
 *	(the FIN in the answer's segment, as nginx sends it).
 *	THREADS loops, each with its own SO_REUSEPORT listener, so the app is
 *	not what a proxy is measured against.
 *   bench-app hold ADDR:PORT N
 *	open N connections, make one request on each (so a proxy has its
 *	upstream side connected too), print "held H failed F" and keep them
 *	idle until SIGTERM (at most 10 minutes).
 *   bench-app rate ADDR:PORT CONNS RATE SECS [PID]
 *	keep-alive requests at a fixed offered rate over CONNS connections, one
 *	outstanding per connection. With PID, the CPU ticks (utime + stime of
 *	/proc/PID/stat) that process spent during the fixed-rate phase.
 *   bench-app crate ADDR:PORT RATE SECS [PID]
 *	new connections at a fixed offered rate, one HTTP/1.0 request each.
 * rate and crate print "done D missed M errors E ticks T hz H".
 *
 * A benchmark tool, not a test: bounded in count and time, errors counted.
 *
 * About 670 lines: one program of several small commands, so the benchmark
 * builds and ships one helper; each command is a function of its own.
 */

#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "tpin/macros.h"
#include "util.h"

#define BUF_SIZE    16384
#define MAX_THREADS 16
#define MAX_HOLD    200000
#define MAX_CONNS   10000
#define MAX_RATE    1000000
#define MAX_SECS    600
/* At most this many requests answered from one read (pipelining). */
#define MAX_BATCH 64
/* Connects in flight while holding: a burst of 10,000 SYNs overflows backlogs. */
#define HOLD_BATCH 256
/* crate: connections in flight beyond which a due start is counted missed. */
#define CRATE_CAP 4096

static const char reply_ka[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\n";
static const char reply_close[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close"
				  "\r\n\r\nhello, world\n";
static const char req_ka[] = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char req_close[] = "GET / HTTP/1.0\r\n\r\n";
#define REPLY_KA_LEN (sizeof(reply_ka) - 1)

static struct sockaddr_storage target;
static uv_loop_t *loop;
static char scratch[BUF_SIZE]; /* client reads: the contents do not matter */

static long parse_num(const char *s, long max)
{
	uint64_t v;

	if (tu_parse_num(s, 1, (uint64_t)max, &v)) {
		fprintf(stderr, "bench-app: bad number \"%s\" (1..%ld)\n", s, max);
		exit(2);
	}
	return (long)v;
}

static void on_free(uv_handle_t *h)
{
	free(h->data);
}

/* utime + stime of a process, in clock ticks; 0 when it cannot be read. */
static unsigned long long cpu_ticks(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: skip past the last ')'. */
	p = strrchr(buf, ')');
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return ut + st;
}

/* ---- serve ---- */

struct sconn {
	uv_tcp_t tcp;
	unsigned match; /* bytes of "\r\n\r\n" matched so far */
	bool closing;
	char buf[BUF_SIZE];
};

struct swrite {
	uv_write_t req;
	struct sconn *c;
	bool close;
	size_t len;
	char data[];
};

static void s_close(struct sconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_free);
}

static void s_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	struct sconn *c = h->data;

	*b = uv_buf_init(c->buf, BUF_SIZE);
}

static void s_written(uv_write_t *req, int status)
{
	struct swrite *w = (struct swrite *)req;

	if (status < 0 || w->close)
		s_close(w->c);
	free(w);
}

/* Write what try_write could not; close afterwards if asked. */
static void s_send(struct sconn *c, const char *data, size_t len, bool close)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	struct swrite *w;
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

	if (n == UV_EAGAIN)
		n = 0;
	if (n < 0) {
		s_close(c);
		return;
	}
	if ((size_t)n == len) {
		if (close)
			s_close(c);
		return;
	}
	w = malloc(sizeof(*w) + len - (size_t)n);
	if (!w) {
		s_close(c);
		return;
	}
	w->c = c;
	w->close = close;
	w->len = len - (size_t)n;
	memcpy(w->data, data + n, w->len);
	b = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, s_written)) {
		free(w);
		s_close(c);
	}
}

/*
 * The closing answer and the FIN in one segment, as nginx sends them:
 * MSG_MORE holds the answer back until shutdown(2) queues the FIN behind it
 * and pushes both. A client that has the answer then has the FIN too and
 * never closes first, so it keeps no TIME_WAIT; a proxy in between that
 * sends the FIN apart from the data shows in the client's TIME_WAIT count.
 */
static void s_answer_close(struct sconn *c)
{
	static const size_t len = sizeof(reply_close) - 1;
	uv_os_fd_t fd;
	ssize_t n;

	if (uv_fileno((uv_handle_t *)&c->tcp, &fd)) {
		s_close(c);
		return;
	}
	n = send(fd, reply_close, len, MSG_MORE | MSG_NOSIGNAL);
	if (n == (ssize_t)len) {
		shutdown(fd, SHUT_WR);
		s_close(c);
		return;
	}
	if (n < 0 && errno != EAGAIN) {
		s_close(c);
		return;
	}
	/* A full send buffer (never for an answer this small): the rest, then close. */
	s_send(c, reply_close + (n > 0 ? n : 0), len - (size_t)(n > 0 ? n : 0), true);
}

static void s_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	static const char end[] = "\r\n\r\n";
	struct sconn *c = st->data;
	char out[MAX_BATCH * sizeof(reply_close)];
	size_t len = 0;
	unsigned reqs = 0;
	bool close;
	ssize_t i;

	if (n < 0) {
		s_close(c);
		return;
	}
	if (n == 0 || c->closing)
		return;
	for (i = 0; i < n; i++) {
		if (b->base[i] == end[c->match])
			c->match++;
		else
			c->match = b->base[i] == '\r' ? 1 : 0;
		if (c->match == 4) {
			c->match = 0;
			reqs++;
		}
	}
	if (!reqs)
		return;
	/* Requests are small and arrive whole: look at this read only. */
	close = memmem(b->base, (size_t)n, "HTTP/1.0", 8) ||
		memmem(b->base, (size_t)n, "Connection: close", 17);
	if (close) {
		uv_read_stop(st);
		s_answer_close(c);
		return;
	}
	if (reqs > MAX_BATCH)
		reqs = MAX_BATCH;
	while (reqs--) {
		memcpy(out + len, reply_ka, REPLY_KA_LEN);
		len += REPLY_KA_LEN;
	}
	s_send(c, out, len, false);
}

static void s_conn(uv_stream_t *server, int status)
{
	struct sconn *c;

	if (status < 0)
		return;
	c = malloc(sizeof(*c));
	if (!c)
		return;
	c->match = 0;
	c->closing = false;
	uv_tcp_init(server->loop, &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
		s_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, s_alloc, s_read);
}

static void serve_thread(void *arg)
{
	uv_loop_t l;
	uv_tcp_t server;
	int fd, one = 1;

	(void)arg;
	uv_loop_init(&l);
	fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&target,
		 target.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					      : sizeof(struct sockaddr_in))) {
		perror("bench-app: listen socket");
		exit(1);
	}
	uv_tcp_init(&l, &server);
	if (uv_tcp_open(&server, fd) || uv_listen((uv_stream_t *)&server, 4096, s_conn)) {
		fprintf(stderr, "bench-app: cannot listen\n");
		exit(1);
	}
	uv_run(&l, UV_RUN_DEFAULT);
}

static int serve(int threads)
{
	uv_thread_t t[MAX_THREADS];
	int i;

	for (i = 0; i < threads; i++)
		if (uv_thread_create(&t[i], serve_thread, NULL)) {
			fprintf(stderr, "bench-app: cannot start a thread\n");
			return 1;
		}
	/* Runs until the bench script sends SIGTERM, whose default ends us. */
	for (i = 0; i < threads; i++)
		uv_thread_join(&t[i]);
	return 0;
}

/* ---- clients ---- */

struct cconn {
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_write_t write;
	size_t got;
	struct cconn *next_idle;
	bool busy;
};

static unsigned long long done, missed, errors, started, attempted;
static long n_target;
static struct cconn *idle;
static uv_timer_t tick, deadline;
static uint64_t t0;
static long rate, secs;
static int pid;
static unsigned long long ticks0, ticks;
static unsigned long inflight;
static bool stopping;

static void c_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	*b = uv_buf_init(scratch, sizeof(scratch));
}

static void c_fail(struct cconn *c)
{
	errors++;
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_free);
}

static void c_written(uv_write_t *req, int status)
{
	if (status < 0 && status != UV_ECANCELED)
		c_fail(req->data);
}

static int c_request(struct cconn *c, const char *req, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)req, (unsigned)len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

	if (n == (int)len)
		return 0;
	if (n > 0) {
		b.base += n;
		b.len -= (size_t)n;
	} else if (n != UV_EAGAIN) {
		return n;
	}
	c->write.data = c;
	return uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, c_written);
}

static struct cconn *c_new(uv_connect_cb cb)
{
	struct cconn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	uv_tcp_init(loop, &c->tcp);
	c->tcp.data = c;
	if (uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&target, cb)) {
		errors++;
		uv_close((uv_handle_t *)&c->tcp, on_free);
		return NULL;
	}
	return c;
}

static void stop_all(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, h->type == UV_TCP ? on_free : NULL);
}

static void finish(void)
{
	if (stopping)
		return;
	stopping = true;
	uv_walk(loop, stop_all, NULL);
}

static void report(void)
{
	printf("done %llu missed %llu errors %llu ticks %llu hz %ld\n", done, missed, errors, ticks,
	       sysconf(_SC_CLK_TCK));
	fflush(stdout);
}

static void on_deadline(uv_timer_t *t)
{
	report();
	finish();
}

/* hold */

static void hold_next(void);

static void hold_counted(void)
{
	if (done + errors == (unsigned long long)n_target) {
		printf("held %llu failed %llu\n", done, errors);
		fflush(stdout);
	}
	hold_next();
}

static void h_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct cconn *c = st->data;

	if (n < 0) {
		/* A close after the answer was counted: one held connection fewer. */
		if (c->got >= REPLY_KA_LEN)
			done--;
		inflight--;
		c_fail(c);
		if (c->got < REPLY_KA_LEN)
			hold_counted();
		return;
	}
	c->got += (size_t)n;
	if (c->got >= REPLY_KA_LEN && !c->busy) {
		c->busy = true;
		done++;
		inflight--;
		hold_counted();
	}
}

static void h_connected(uv_connect_t *req, int status)
{
	struct cconn *c = container_of(req, struct cconn, connect);

	if (status < 0 || c_request(c, req_ka, sizeof(req_ka) - 1) ||
	    uv_read_start((uv_stream_t *)&c->tcp, c_alloc, h_read)) {
		inflight--;
		c_fail(c);
		hold_counted();
	}
}

static void hold_next(void)
{
	while (started < (unsigned long long)n_target && inflight < HOLD_BATCH) {
		started++;
		inflight++;
		if (!c_new(h_connected)) {
			inflight--;
			hold_counted();
		}
	}
}

static void on_hold_deadline(uv_timer_t *t)
{
	finish();
}

static void on_sigterm(uv_signal_t *s, int sig)
{
	finish();
}

/* rate: keep-alive requests at a fixed rate */

static void r_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct cconn *c = st->data;

	if (n < 0) {
		c_fail(c);
		return;
	}
	c->got += (size_t)n;
	while (c->got >= REPLY_KA_LEN && c->busy) {
		c->got -= REPLY_KA_LEN;
		c->busy = false;
		if (!stopping)
			done++;
		c->next_idle = idle;
		idle = c;
	}
}

static void r_tick(uv_timer_t *t)
{
	uint64_t now = uv_hrtime() - t0;
	unsigned long long due = (unsigned long long)((double)now * rate / 1e9);
	struct cconn *c;

	if (now >= (uint64_t)secs * 1000000000ULL) {
		ticks = cpu_ticks(pid) - ticks0;
		uv_timer_stop(t);
		/* Answers already on their way: a short grace, then report. */
		uv_timer_start(&deadline, on_deadline, 200, 0);
		return;
	}
	while (attempted < due) {
		attempted++;
		c = idle;
		if (!c) {
			missed++;
			continue;
		}
		idle = c->next_idle;
		c->busy = true;
		if (c_request(c, req_ka, sizeof(req_ka) - 1))
			c_fail(c);
	}
}

static void r_connected(uv_connect_t *req, int status)
{
	struct cconn *c = container_of(req, struct cconn, connect);

	if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, c_alloc, r_read)) {
		c_fail(c);
	} else {
		c->next_idle = idle;
		idle = c;
	}
	if (++started == (unsigned long long)n_target) {
		t0 = uv_hrtime();
		ticks0 = cpu_ticks(pid);
		uv_timer_start(&tick, r_tick, 1, 1);
	}
}

/* crate: new connections at a fixed rate */

static void cr_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct cconn *c = st->data;

	if (n > 0) {
		c->got += (size_t)n;
		return;
	}
	if (n == 0)
		return;
	inflight--;
	if (n == UV_EOF && c->got) {
		done++;
		uv_close((uv_handle_t *)&c->tcp, on_free);
	} else {
		c_fail(c);
	}
}

static void cr_connected(uv_connect_t *req, int status)
{
	struct cconn *c = container_of(req, struct cconn, connect);

	if (status < 0 || c_request(c, req_close, sizeof(req_close) - 1) ||
	    uv_read_start((uv_stream_t *)&c->tcp, c_alloc, cr_read)) {
		inflight--;
		c_fail(c);
	}
}

static void on_crate_deadline(uv_timer_t *t)
{
	ticks = cpu_ticks(pid) - ticks0;
	on_deadline(t);
}

static void cr_tick(uv_timer_t *t)
{
	uint64_t now = uv_hrtime() - t0;
	unsigned long long due = (unsigned long long)((double)now * rate / 1e9);

	if (now >= (uint64_t)secs * 1000000000ULL) {
		uv_timer_stop(t);
		/* Let the last ones finish, then read the clock. */
		uv_timer_start(&deadline, on_crate_deadline, 300, 0);
		return;
	}
	while (attempted < due) {
		attempted++;
		if (inflight >= CRATE_CAP) {
			missed++;
			continue;
		}
		inflight++;
		if (!c_new(cr_connected))
			inflight--;
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-app serve ADDR:PORT THREADS\n"
			"       bench-app hold ADDR:PORT N\n"
			"       bench-app rate ADDR:PORT CONNS RATE SECS [PID]\n"
			"       bench-app crate ADDR:PORT RATE SECS [PID]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uv_signal_t sig;
	long i;

	if (argc < 4)
		usage();
	if (tu_parse_hostport(argv[2], &target)) {
		fprintf(stderr, "bench-app: bad address \"%s\": want IP:PORT or [IP6]:PORT\n",
			argv[2]);
		exit(2);
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(argv[1], "serve"))
		return serve((int)parse_num(argv[3], MAX_THREADS));
	loop = uv_default_loop();
	uv_timer_init(loop, &tick);
	uv_timer_init(loop, &deadline);
	if (!strcmp(argv[1], "hold") && argc == 4) {
		n_target = parse_num(argv[3], MAX_HOLD);
		uv_signal_init(loop, &sig);
		uv_signal_start(&sig, on_sigterm, SIGTERM);
		uv_timer_start(&deadline, on_hold_deadline, MAX_SECS * 1000, 0);
		hold_next();
	} else if (!strcmp(argv[1], "rate") && (argc == 6 || argc == 7)) {
		n_target = parse_num(argv[3], MAX_CONNS);
		rate = parse_num(argv[4], MAX_RATE);
		secs = parse_num(argv[5], MAX_SECS);
		pid = argc == 7 ? (int)parse_num(argv[6], 1 << 22) : 0;
		for (i = 0; i < n_target; i++)
			if (!c_new(r_connected))
				started++;
	} else if (!strcmp(argv[1], "crate") && (argc == 5 || argc == 6)) {
		rate = parse_num(argv[3], MAX_RATE);
		secs = parse_num(argv[4], MAX_SECS);
		pid = argc == 6 ? (int)parse_num(argv[5], 1 << 22) : 0;
		t0 = uv_hrtime();
		ticks0 = cpu_ticks(pid);
		uv_timer_start(&tick, cr_tick, 1, 1);
	} else {
		usage();
	}
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}
