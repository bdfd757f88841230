// SPDX-License-Identifier: MIT
/*
 * tpin-soak: the soak under faults that tools/soak runs (issue 6).
 *
 *   tpin-soak app PORT
 *	An echo application (IPv4 and IPv6 on PORT). It echoes every byte and
 *	half-closes after the client's EOF. SIGUSR1 makes it read slowly
 *	(a little per connection every 10 ms), SIGUSR2 fast again.
 *
 *   tpin-soak run --client NS --pod NS --proxy BIN [options]
 *	The driver. It starts the app and tpin-proxy in the pod namespace,
 *	then from the client namespace keeps many connections of random sizes
 *	(0 to several MiB) in flight to the pod's echo port, each carrying a
 *	seeded pseudo-random stream that is checked byte by byte on the way
 *	back. Faults run on a schedule: clients that reset mid-transfer
 *	(SO_LINGER 0), clients that half-close, the proxy killed with SIGKILL
 *	and restarted once, the app killed and restarted, the app reading
 *	slowly. Every failed connection is classified by cause and by the
 *	fault window it fell in; the proxy's RSS and descriptor count are
 *	read from /proc before and after. Human report on stdout, JSON with
 *	--json. Exit 0 when the run passed, 1 when not, 2 on bad usage.
 *
 * One thread and epoll: the client needs nothing more, and a single loop
 * gives the fault schedule exact times to classify failures against.
 *
 * About 1,250 lines, one file: one program, the app and the driver that
 * checks it, which share the wire format of their connections.
 */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define APP_PORT     9081
#define ADMIN_PORT   15000
#define POD4	     "198.51.100.2"
#define POD6	     "2001:db8:1::2"
#define CHUNK	     65536
#define MAX_CONC     256
#define PROBES	     4
#define SLOTS	     (MAX_CONC + PROBES)
#define STALL_MS     20000 /* no progress this long: the connection failed */
#define PROBE_MS     500   /* a probe connection's whole budget */
#define PROBE_EVERY  50
#define DOWNTIME_MS  300 /* between a kill and the restart */
#define SERVE_BOUND  1000
#define MAX_CAUSES   16
#define SLOW_READ    4096 /* the slow app's read per connection per tick */
#define SLOW_TICK_MS 10

/* ---- shared helpers ------------------------------------------------------ */

static uint64_t splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * Bytes off..off+len of a connection's stream into out. The stream is a
 * function of (seed, offset) alone, so sender and checker never share state.
 */
static void stream_fill(uint64_t seed, uint64_t off, unsigned char *out, size_t len)
{
	static uint64_t words[CHUNK / 8 + 2];
	uint64_t first = off / 8, n = (off + len + 7) / 8 - first;

	for (uint64_t k = 0; k < n; k++)
		words[k] = splitmix(seed ^ ((first + k) * 0xd1342543de82ef95ULL));
	memcpy(out, (unsigned char *)words + off % 8, len);
}

/* ---- the app ------------------------------------------------------------- */

struct echo {
	int fd;
	size_t len, off;
	bool eof;
	unsigned char buf[CHUNK];
};

static volatile sig_atomic_t app_slow;

static void on_usr(int sig)
{
	app_slow = sig == SIGUSR1;
}

static int app_listen(int family, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
	} else {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
	}
	if (bind(fd, (struct sockaddr *)&ss, sizeof(ss)) || listen(fd, 1024)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void echo_close(int ep, struct echo *e)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, e->fd, NULL);
	close(e->fd);
	free(e);
}

/* Moves data one step; returns false when the connection is done. */
static bool echo_step(int ep, struct echo *e)
{
	struct epoll_event ev = { .data.ptr = e };
	ssize_t n;

	if (e->off < e->len) {
		n = send(e->fd, e->buf + e->off, e->len - e->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0)
			e->off += (size_t)n;
	}
	if (e->off == e->len) {
		e->off = e->len = 0;
		if (e->eof) {
			/* Everything echoed: pass the client's half-close on. */
			shutdown(e->fd, SHUT_WR);
			return false;
		}
		n = recv(e->fd, e->buf, app_slow ? SLOW_READ : sizeof(e->buf), MSG_DONTWAIT);
		if (n == 0) {
			shutdown(e->fd, SHUT_WR);
			return false;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return false;
		if (n > 0)
			e->len = (size_t)n;
	}
	ev.events = e->off < e->len ? EPOLLOUT : EPOLLIN;
	epoll_ctl(ep, EPOLL_CTL_MOD, e->fd, &ev);
	return true;
}

static int app_main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_usr };
	int port = argc > 2 ? atoi(argv[2]) : APP_PORT;
	int ep = epoll_create1(EPOLL_CLOEXEC), lfd[2];

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	lfd[0] = app_listen(AF_INET, (uint16_t)port);
	lfd[1] = app_listen(AF_INET6, (uint16_t)port);
	if (ep < 0 || lfd[0] < 0 || lfd[1] < 0) {
		fprintf(stderr, "tpin-soak app: cannot listen on port %d: %s\n", port,
			strerror(errno));
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		ev.data.u64 = (uint64_t)i;
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd[i], &ev);
	}
	fprintf(stderr, "tpin-soak app: echoing on port %d\n", port);
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			uint64_t u = evs[i].data.u64;

			if (u < 2) {
				int fd;

				while ((fd = accept4(lfd[u], NULL, NULL,
						     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					struct echo *e = calloc(1, sizeof(*e));
					struct epoll_event ev = { .events = EPOLLIN };

					if (!e) {
						close(fd);
						continue;
					}
					e->fd = fd;
					ev.data.ptr = e;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (!echo_step(ep, evs[i].data.ptr))
				echo_close(ep, evs[i].data.ptr);
		}
		/* Slow: every connection waits a tick between small reads. */
		if (app_slow)
			tu_sleep_ms(SLOW_TICK_MS);
	}
}

/* ---- the driver: options and processes ----------------------------------- */

enum kind { K_NORMAL, K_HALF, K_RESET, K_PROBE };
static const char *const kind_names[] = { "normal", "half-close", "reset", "probe" };

struct conn {
	int fd;
	enum kind kind;
	bool connected, shut;
	uint64_t seed, size, reset_at, sent, recvd;
	long long t_start, t_last;
};

struct cause {
	char name[48];
	long n;
};

struct window {
	const char *what;
	long long t_kill, t_start, t_served;
	long explained;
};

/*
 * The proxy keeps a bounded pool of empty pipes for splice, so pipes come
 * and go with the load: they are counted apart, and "fds" is everything
 * else (sockets, files), which must come back exactly.
 */
#define PIPE_FDS_MAX (2 * 16 * 64) /* 2 fds, RELAY_PIPE_POOL, up to 64 workers */

struct usage {
	long rss_kib, fds, pipe_fds;
};

static struct {
	const char *client_ns, *pod_ns, *proxy_bin, *json, *work;
	long duration_ms;
	int conc;
	uint64_t seed;
	long rss_slack_kib;
	int max_mib;
} opt = { .duration_ms = 300000, .conc = 24, .rss_slack_kib = 4096, .max_mib = 6 };

static int pod_fd, client_fd, ep;
static pid_t proxy_pid = -1, app_pid = -1;
static uint64_t rng;
static struct conn conns[SLOTS];
static int nload, nprobe;
static bool paused;
static long long t0;

static struct {
	long started, ok, failed, resets, halfs, corrupted, probes, probe_failed;
	uint64_t bytes_sent, bytes_verified;
	struct cause causes[MAX_CAUSES];
	int ncauses;
	long unexplained;
	char first_unexplained[200], first_corrupt[200];
	struct window win[2]; /* proxy, app */
	int nwin;
	long long slow_on, slow_off;
	struct usage start, baseline, after;
	int proxy_exits; /* unexpected */
	char proxy_death[160];
} st;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t rnd_between(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

/* Enters ns (by descriptor) for the caller's next socket(), then leaves. */
static int socket_in(int nsfd, int domain)
{
	int fd, err;

	if (nsfd != client_fd && setns(nsfd, CLONE_NEWNET))
		return -1;
	fd = socket(domain, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	err = errno;
	if (nsfd != client_fd && setns(client_fd, CLONE_NEWNET)) {
		perror("tpin-soak: back to the client namespace");
		exit(1);
	}
	errno = err;
	return fd;
}

static int open_ns(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s%s", strchr(name, '/') ? "" : "/run/netns/", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tpin-soak: namespace %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return fd;
}

/* Forks, enters the pod namespace, redirects output to log and execs argv. */
static pid_t spawn_in_pod(const char *log, const char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* Children die with the driver: nothing outlives a killed soak. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || setns(pod_fd, CLONE_NEWNET))
			_exit(126);
		dup2(fd, 1);
		dup2(fd, 2);
		signal(SIGPIPE, SIG_DFL);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void path_in_work(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", opt.work, name);
}

static void proxy_start(void)
{
	char log[512], out[512];
	const char *argv[] = { opt.proxy_bin, "--log-file", log, "--concurrency", "2", NULL };

	path_in_work(log, sizeof(log), "access.log");
	path_in_work(out, sizeof(out), "proxy.out");
	proxy_pid = spawn_in_pod(out, argv);
}

static void app_start(void)
{
	char out[512], port[16];
	const char *argv[] = { "/proc/self/exe", "app", port, NULL };

	snprintf(port, sizeof(port), "%d", APP_PORT);
	path_in_work(out, sizeof(out), "app.out");
	app_pid = spawn_in_pod(out, argv);
}

static void kill_reap(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
	}
	*pid = -1;
}

/* ---- the proxy's usage and metrics --------------------------------------- */

static struct usage usage_of(pid_t pid)
{
	struct usage u = { -1, -1, -1 };
	char path[64], line[256];
	struct dirent *de;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "VmRSS: %ld", &u.rss_kib) == 1)
				break;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (d) {
		u.fds = u.pipe_fds = 0;
		while ((de = readdir(d))) {
			char link[512], target[64];
			ssize_t n;

			if (de->d_name[0] == '.')
				continue;
			snprintf(link, sizeof(link), "%s/%s", path, de->d_name);
			n = readlink(link, target, sizeof(target) - 1);
			target[n > 0 ? n : 0] = '\0';
			if (!strncmp(target, "pipe:", 5))
				u.pipe_fds++;
			else
				u.fds++;
		}
		closedir(d);
	}
	return u;
}

/* tpin_connections_active from the admin endpoint in the pod; -1 on error. */
static long active_connections(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(ADMIN_PORT) };
	static const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
	static char buf[1 << 18];
	size_t got = 0;
	long v = -1;
	int fd = socket_in(pod_fd, AF_INET);
	char *p;

	if (fd < 0)
		return -1;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!connect(fd, (struct sockaddr *)&sin, sizeof(sin)) || errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		long long dl = tu_now_ms() + 2000;

		if (poll(&pfd, 1, 2000) == 1 && !(pfd.revents & (POLLERR | POLLHUP)) &&
		    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == sizeof(req) - 1) {
			pfd.events = POLLIN;
			while (tu_now_ms() < dl && got < sizeof(buf) - 1) {
				ssize_t n;

				if (poll(&pfd, 1, 100) <= 0)
					continue;
				n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
				if (n <= 0)
					break;
				got += (size_t)n;
			}
		}
	}
	close(fd);
	buf[got] = '\0';
	p = strstr(buf, "\ntpin_connections_active{traffic=\"inbound\"} ");
	if (p)
		v = strtol(p + strlen("\ntpin_connections_active{traffic=\"inbound\"} "), NULL, 10);
	return v;
}

/*
 * Idle usage: waits for the proxy to report no live connection, then reads
 * the descriptor count until it holds still (closing is asynchronous in
 * libuv: a handle closes on the loop's next turn), at most 2 s.
 */
static struct usage quiet_usage(void)
{
	struct usage u, prev = { -1, -1, -1 };
	long long dl = tu_now_ms() + 5000;

	while (active_connections() != 0 && tu_now_ms() < dl)
		tu_sleep_ms(100);
	for (int i = 0; i < 20; i++) {
		tu_sleep_ms(100);
		u = usage_of(proxy_pid);
		if (u.fds == prev.fds && u.rss_kib == prev.rss_kib)
			break;
		prev = u;
	}
	return u;
}

/* ---- the driver: connections --------------------------------------------- */

static void add_cause(const char *name)
{
	int i;

	for (i = 0; i < st.ncauses; i++)
		if (!strcmp(st.causes[i].name, name))
			break;
	if (i == st.ncauses) {
		if (i == MAX_CAUSES)
			i--; /* the last slot takes the rest */
		else
			snprintf(st.causes[st.ncauses++].name, sizeof(st.causes[0].name), "%s",
				 name);
	}
	st.causes[i].n++;
}

static void conn_close(struct conn *c, bool linger0)
{
	if (linger0) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	if (c->kind == K_PROBE)
		nprobe--;
	else
		nload--;
}

static void conn_ok(struct conn *c)
{
	if (c->kind == K_PROBE) {
		struct window *w = st.nwin ? &st.win[st.nwin - 1] : NULL;

		if (w && !w->t_served && w->t_start)
			w->t_served = tu_now_ms();
	} else {
		st.ok++;
	}
	conn_close(c, false);
}

/*
 * A failed connection: explained when it was alive while a kill's window
 * was open (from the kill to the first connection served afterwards).
 */
static void conn_fail(struct conn *c, const char *cause, int err)
{
	long long t = tu_now_ms();
	char name[48];

	if (c->kind == K_PROBE) {
		st.probe_failed++;
		conn_close(c, false);
		return;
	}
	st.failed++;
	snprintf(name, sizeof(name), "%s%s%s", cause, err ? ": " : "", err ? strerror(err) : "");
	add_cause(name);
	for (int i = 0; i < st.nwin; i++) {
		struct window *w = &st.win[i];

		if (t >= w->t_kill && (!w->t_served || c->t_start <= w->t_served)) {
			w->explained++;
			conn_close(c, false);
			return;
		}
	}
	if (!st.unexplained++)
		snprintf(st.first_unexplained, sizeof(st.first_unexplained),
			 "%s connection of %" PRIu64 " bytes at %.3f s after %" PRIu64
			 " sent, %" PRIu64 " received: %s",
			 kind_names[c->kind], c->size, (double)(t - t0) / 1000, c->sent, c->recvd,
			 name);
	conn_close(c, false);
}

static uint64_t pick_size(void)
{
	uint64_t r = rnd() % 100;

	if (r < 8)
		return 0;
	if (r < 40)
		return rnd_between(1, 4096);
	if (r < 70)
		return rnd_between(4097, 128 << 10);
	if (r < 92)
		return rnd_between((128 << 10) + 1, 1 << 20);
	return rnd_between((1 << 20) + 1, (uint64_t)opt.max_mib << 20);
}

static void conn_start(enum kind kind)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	struct epoll_event ev = { .events = EPOLLOUT };
	bool v6 = rnd() & 1;
	struct conn *c = NULL;
	int i;

	for (i = 0; i < SLOTS; i++)
		if (conns[i].fd < 0) {
			c = &conns[i];
			break;
		}
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->seed = rnd();
	if (kind == K_PROBE) {
		c->size = 1000;
	} else {
		uint64_t r = rnd() % 100;

		c->size = pick_size();
		if (r < 12 && c->size > 1) {
			c->kind = K_RESET;
			c->reset_at = rnd_between(0, c->size - 1);
		} else if (r < 24 || !c->size) {
			c->kind = K_HALF;
		}
	}
	c->t_start = c->t_last = tu_now_ms();
	c->fd = socket_in(client_fd, v6 ? AF_INET6 : AF_INET);
	if (c->fd < 0) {
		perror("tpin-soak: socket");
		exit(1);
	}
	if (kind == K_PROBE)
		nprobe++, st.probes++;
	else
		nload++, st.started++;
	if (v6) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(APP_PORT);
		inet_pton(AF_INET6, POD6, &s6->sin6_addr);
	} else {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(APP_PORT);
		inet_pton(AF_INET, POD4, &s4->sin_addr);
	}
	ev.data.u32 = (uint32_t)i;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	if (connect(c->fd, (struct sockaddr *)&ss, v6 ? sizeof(*s6) : sizeof(*s4)) &&
	    errno != EINPROGRESS)
		conn_fail(c, "connect", errno);
}

static void conn_events(struct conn *c)
{
	struct epoll_event ev = { .data.u32 = (uint32_t)(c - conns) };

	ev.events = EPOLLIN | (c->connected && c->sent < c->size ? EPOLLOUT : 0) |
		    (c->connected ? 0 : EPOLLOUT);
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends what it can; false when the connection ended here. */
static bool conn_send(struct conn *c)
{
	static unsigned char buf[CHUNK];

	while (c->sent < c->size) {
		uint64_t want = c->size - c->sent;
		size_t len = want < CHUNK ? (size_t)want : CHUNK;
		ssize_t n;

		if (c->kind == K_RESET && c->reset_at - c->sent < len)
			len = (size_t)(c->reset_at - c->sent);
		if (c->kind == K_RESET && c->sent == c->reset_at) {
			/* The injected fault: an abortive close mid-transfer. */
			st.resets++;
			conn_close(c, true);
			return false;
		}
		stream_fill(c->seed, c->sent, buf, len);
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return true;
			conn_fail(c, "send", errno);
			return false;
		}
		c->sent += (uint64_t)n;
		st.bytes_sent += (uint64_t)n;
		c->t_last = tu_now_ms();
	}
	if (c->kind == K_HALF && !c->shut) {
		shutdown(c->fd, SHUT_WR);
		c->shut = true;
		st.halfs++;
	}
	return true;
}

static void conn_recv(struct conn *c)
{
	static unsigned char buf[CHUNK], want[CHUNK];

	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_fail(c, "recv", errno);
			return;
		}
		if (n == 0) {
			if (c->kind == K_HALF && c->recvd == c->size)
				conn_ok(c);
			else
				conn_fail(c,
					  c->kind == K_RESET ? "EOF before the reset"
							     : "EOF before the whole echo",
					  0);
			return;
		}
		if (c->recvd + (uint64_t)n > c->sent) {
			st.corrupted++;
			snprintf(st.first_corrupt, sizeof(st.first_corrupt),
				 "%" PRIu64 " bytes back of %" PRIu64 " sent", c->recvd + n,
				 c->sent);
			conn_fail(c, "more bytes back than sent", 0);
			return;
		}
		stream_fill(c->seed, c->recvd, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n)) {
			size_t at = 0;

			while (buf[at] == want[at])
				at++;
			st.corrupted++;
			snprintf(st.first_corrupt, sizeof(st.first_corrupt),
				 "%s connection, byte %" PRIu64 " of %" PRIu64
				 ": 0x%02x, want 0x%02x",
				 kind_names[c->kind], c->recvd + at, c->size, buf[at], want[at]);
			conn_fail(c, "corrupted byte", 0);
			return;
		}
		c->recvd += (uint64_t)n;
		st.bytes_verified += (uint64_t)n;
		c->t_last = tu_now_ms();
		if (c->kind != K_HALF && c->recvd == c->size) {
			conn_ok(c);
			return;
		}
	}
}

static void conn_ready(struct conn *c, uint32_t events)
{
	if (!c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);

		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_fail(c, "connect", err);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		c->connected = true;
		c->t_last = tu_now_ms();
	}
	if (events & EPOLLIN || events & (EPOLLERR | EPOLLHUP)) {
		conn_recv(c);
		if (c->fd < 0)
			return;
	}
	if (conn_send(c))
		conn_events(c);
}

/* ---- the driver: the schedule -------------------------------------------- */

enum action {
	A_PROXY_KILL,
	A_PROXY_START,
	A_BASELINE,
	A_SLOW_ON,
	A_SLOW_OFF,
	A_APP_KILL,
	A_APP_START,
	A_N
};

static long long at[A_N];
static bool done[A_N];
static bool probing;

/* A kill opens a window; failures from then until a probe is served are its. */
static void window_open(const char *what)
{
	struct window *w = &st.win[st.nwin++];

	w->what = what;
	w->t_kill = tu_now_ms();
}

/* After the restart, probes measure how soon new connections are served. */
static void serve_probe_start(void)
{
	st.win[st.nwin - 1].t_start = tu_now_ms();
	probing = true;
}

static void act(enum action a)
{
	long long t = tu_now_ms();

	switch (a) {
	case A_PROXY_KILL:
		kill_reap(&proxy_pid);
		window_open("proxy");
		break;
	case A_PROXY_START:
		proxy_start();
		serve_probe_start();
		break;
	case A_BASELINE:
		paused = true; /* resumes once measured, in the loop */
		break;
	case A_SLOW_ON:
		kill(app_pid, SIGUSR1);
		st.slow_on = t;
		break;
	case A_SLOW_OFF:
		kill(app_pid, SIGUSR2);
		st.slow_off = t;
		break;
	case A_APP_KILL:
		kill_reap(&app_pid);
		window_open("app");
		break;
	case A_APP_START:
		app_start();
		serve_probe_start();
		break;
	default:
		break;
	}
}

static void check_stalls(void)
{
	long long t = tu_now_ms();

	for (int i = 0; i < SLOTS; i++) {
		struct conn *c = &conns[i];

		if (c->fd < 0)
			continue;
		if (c->kind == K_PROBE && t - c->t_start > PROBE_MS)
			conn_fail(c, "probe timeout", 0);
		else if (c->kind != K_PROBE && t - c->t_last > STALL_MS)
			conn_fail(c, c->connected ? "stalled" : "connect timeout", 0);
	}
}

/* A proxy that exits on its own ends the run: nothing after it would count. */
static bool proxy_died(void)
{
	int ws;

	if (proxy_pid <= 0 || waitpid(proxy_pid, &ws, WNOHANG) != proxy_pid)
		return false;
	st.proxy_exits++;
	proxy_pid = -1;
	if (WIFSIGNALED(ws))
		snprintf(st.proxy_death, sizeof(st.proxy_death),
			 "tpin-proxy killed by signal %d (%s) at %.3f s", WTERMSIG(ws),
			 strsignal(WTERMSIG(ws)), (double)(tu_now_ms() - t0) / 1000);
	else
		snprintf(st.proxy_death, sizeof(st.proxy_death),
			 "tpin-proxy exited with status %d at %.3f s", WEXITSTATUS(ws),
			 (double)(tu_now_ms() - t0) / 1000);
	return true;
}

static void run_loop(void)
{
	long long end = t0 + opt.duration_ms, last_probe = 0;
	long long drain_dl = 0;

	for (;;) {
		struct epoll_event evs[64];
		long long t = tu_now_ms();
		int n;

		for (int a = 0; a < A_N; a++)
			if (!done[a] && t >= at[a]) {
				done[a] = true;
				act((enum action)a);
			}
		if (probing) {
			struct window *w = &st.win[st.nwin - 1];

			if (w->t_served) {
				probing = false;
			} else if (t - w->t_start > 10000) {
				probing = false; /* never served: reported as such */
			} else if (nprobe < PROBES && t - last_probe >= PROBE_EVERY) {
				conn_start(K_PROBE);
				last_probe = t;
			}
		}
		if (paused && !nload && !probing) {
			st.baseline = quiet_usage();
			paused = false;
		}
		if (t >= end) {
			if (!drain_dl)
				drain_dl = t + STALL_MS + 5000;
			if ((!nload && !nprobe) || t > drain_dl)
				break;
		} else if (!paused) {
			while (nload < opt.conc)
				conn_start(K_NORMAL);
		}
		if (proxy_died())
			break;
		n = epoll_wait(ep, evs, 64, 10);
		for (int i = 0; i < n; i++) {
			struct conn *c = &conns[evs[i].data.u32];

			if (c->fd >= 0)
				conn_ready(c, evs[i].events);
		}
		check_stalls();
	}
}

/* ---- the report ---------------------------------------------------------- */

static bool passed(char *why, size_t len)
{
	why[0] = '\0';
	if (st.proxy_exits)
		snprintf(why, len, "%s", st.proxy_death);
	else if (st.corrupted)
		snprintf(why, len, "%ld corrupted connections: %s", st.corrupted, st.first_corrupt);
	else if (st.unexplained)
		snprintf(why, len, "%ld failures no fault explains; first: %s", st.unexplained,
			 st.first_unexplained);
	else if (!st.ok)
		snprintf(why, len, "no connection succeeded");
	else if (st.after.fds < 0 || st.after.fds != st.baseline.fds)
		snprintf(why, len, "proxy descriptors %ld after the load, %ld at baseline",
			 st.after.fds, st.baseline.fds);
	else if (st.after.pipe_fds > PIPE_FDS_MAX)
		snprintf(why, len,
			 "proxy holds %ld pipe descriptors after the load, more than "
			 "its pools allow",
			 st.after.pipe_fds);
	else if (st.after.rss_kib - st.baseline.rss_kib > opt.rss_slack_kib)
		snprintf(why, len, "proxy RSS %ld KiB after the load, %ld KiB at baseline",
			 st.after.rss_kib, st.baseline.rss_kib);
	for (int i = 0; i < st.nwin && !why[0]; i++) {
		long long ms = st.win[i].t_served ? st.win[i].t_served - st.win[i].t_start : -1;

		if (ms < 0 || ms > SERVE_BOUND)
			snprintf(why, len,
				 "after the %s restart, first connection served %s%lld ms",
				 st.win[i].what, ms < 0 ? "never within " : "after ",
				 ms < 0 ? 10000LL : ms);
	}
	return !why[0];
}

/* Sets the number @key of the JSON object @o. */
static void put(json_t *o, const char *key, long long v)
{
	json_object_set_new(o, key, json_integer(v));
}

/* A new JSON object under @key of @parent, to fill. */
static json_t *put_object(json_t *parent, const char *key)
{
	json_t *o = json_object();

	json_object_set_new(parent, key, o);
	return o;
}

static void put_usage(json_t *parent, const char *key, const struct usage *u)
{
	json_t *o = put_object(parent, key);

	put(o, "rss_kib", u->rss_kib);
	put(o, "fds", u->fds);
}

/* The result for --json (the netns_soak test reads it; free it). */
static json_t *result_json(long long elapsed, bool ok, const char *why)
{
	json_t *r = json_object(), *o, *restarts = json_array();

	json_object_set_new(r, "duration_s", json_real((double)(elapsed / 100) / 10));
	put(r, "seed", (long long)opt.seed);
	put(r, "concurrency", opt.conc);
	o = put_object(r, "connections");
	put(o, "started", st.started);
	put(o, "ok", st.ok);
	put(o, "failed", st.failed);
	put(o, "probes", st.probes);
	put(o, "probes_unanswered", st.probe_failed);
	o = put_object(r, "bytes");
	put(o, "sent", (long long)st.bytes_sent);
	put(o, "verified", (long long)st.bytes_verified);
	put(r, "corrupted", st.corrupted);
	o = put_object(r, "faults");
	put(o, "client_resets", st.resets);
	put(o, "client_half_closes", st.halfs);
	put(o, "app_slow_ms", st.slow_off - st.slow_on);
	put(o, "proxy_kills", 1);
	put(o, "app_kills", 1);
	json_object_set_new(r, "restarts", restarts);
	for (int i = 0; i < st.nwin; i++) {
		const struct window *w = &st.win[i];

		o = json_object();
		json_object_set_new(o, "what", json_string(w->what));
		put(o, "serve_ms", w->t_served ? w->t_served - w->t_start : -1);
		put(o, "failures", w->explained);
		json_array_append_new(restarts, o);
	}
	o = put_object(r, "failures");
	put(o, "unexplained", st.unexplained);
	o = put_object(o, "causes");
	for (int i = 0; i < st.ncauses; i++)
		put(o, st.causes[i].name, st.causes[i].n);
	o = put_object(r, "proxy");
	put_usage(o, "start", &st.start);
	put_usage(o, "baseline", &st.baseline);
	put_usage(o, "after", &st.after);
	json_object_set_new(r, "pass", json_boolean(ok));
	json_object_set_new(r, "why", json_string(why));
	return r;
}

static void report(long long elapsed)
{
	char why[400];
	bool ok = passed(why, sizeof(why));
	json_t *j;

	printf("tpin-soak: %.1f s, seed %" PRIu64 ", %d connections in flight\n",
	       (double)elapsed / 1000, opt.seed, opt.conc);
	printf("  connections: %ld started, %ld ok, %ld failed; %ld probes (%ld unanswered)\n",
	       st.started, st.ok, st.failed, st.probes, st.probe_failed);
	printf("  bytes: %.1f MiB sent, %.1f MiB echoed and verified, %ld corrupted connections\n",
	       (double)st.bytes_sent / 1048576, (double)st.bytes_verified / 1048576, st.corrupted);
	printf("  faults: %ld client resets, %ld client half-closes, app slow for %.1f s, "
	       "%d kills (proxy SIGKILL, app SIGKILL)\n",
	       st.resets, st.halfs, (double)(st.slow_off - st.slow_on) / 1000, st.nwin);
	for (int i = 0; i < st.nwin; i++)
		printf("  %s restart: first connection served %lld ms after the start; "
		       "%ld failures in its window\n",
		       st.win[i].what,
		       st.win[i].t_served ? st.win[i].t_served - st.win[i].t_start : -1LL,
		       st.win[i].explained);
	for (int i = 0; i < st.ncauses; i++)
		printf("  failure cause: %s: %ld\n", st.causes[i].name, st.causes[i].n);
	printf("  unexplained failures: %ld%s%s\n", st.unexplained,
	       st.unexplained ? "; first: " : "", st.first_unexplained);
	printf("  proxy: RSS %ld KiB / %ld fds at start; %ld KiB / %ld fds at baseline "
	       "(after warm-up and restart); %ld KiB / %ld fds after the load\n",
	       st.start.rss_kib, st.start.fds, st.baseline.rss_kib, st.baseline.fds,
	       st.after.rss_kib, st.after.fds);
	printf("tpin-soak: %s%s\n", ok ? "PASS" : "FAIL: ", why);
	if (!opt.json)
		return;
	j = result_json(elapsed, ok, why);
	if (!j || json_dump_file(j, opt.json, JSON_INDENT(1) | JSON_REAL_PRECISION(6)))
		fprintf(stderr, "tpin-soak: cannot write %s\n", opt.json);
	json_decref(j);
}

/* ---- main ---------------------------------------------------------------- */

static void usage_text(FILE *f)
{
	fprintf(f,
		"Usage: tpin-soak run --client NS --pod NS --proxy BIN --work DIR [options]\n"
		"       tpin-soak app [PORT]\n"
		"\n"
		"  --duration S      seconds of load (300)\n"
		"  --concurrency N   connections in flight (24, at most %d)\n"
		"  --max-mib N       largest connection in MiB (6)\n"
		"  --seed N          the run's seed (from the clock)\n"
		"  --rss-slack KIB   allowed RSS growth over the baseline (4096)\n"
		"  --json FILE       write the result as JSON\n"
		"Runs as root from tools/soak, which makes the namespaces.\n",
		MAX_CONC);
}

/* A bounded number, or exit 2 naming the option. */
static long num_arg(const char *name, const char *s, long lo, long hi)
{
	uint64_t v;

	if (tu_parse_num(s, (uint64_t)lo, (uint64_t)hi, &v)) {
		fprintf(stderr, "tpin-soak: --%s wants a number from %ld to %ld, not \"%s\"\n",
			name, lo, hi, s);
		exit(2);
	}
	return (long)v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "client", required_argument, NULL, 'c' },
		{ "pod", required_argument, NULL, 'p' },
		{ "proxy", required_argument, NULL, 'x' },
		{ "work", required_argument, NULL, 'w' },
		{ "duration", required_argument, NULL, 'd' },
		{ "concurrency", required_argument, NULL, 'n' },
		{ "max-mib", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "rss-slack", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long long d, start_dl;
	int o, ws;

	if (argc > 1 && !strcmp(argv[1], "app"))
		return app_main(argc, argv);
	if (argc < 2 || strcmp(argv[1], "run")) {
		usage_text(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	opt.seed = (uint64_t)time(NULL);
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'c':
			opt.client_ns = optarg;
			break;
		case 'p':
			opt.pod_ns = optarg;
			break;
		case 'x':
			opt.proxy_bin = optarg;
			break;
		case 'w':
			opt.work = optarg;
			break;
		case 'j':
			opt.json = optarg;
			break;
		case 'd':
			opt.duration_ms = num_arg("duration", optarg, 5, 86400) * 1000;
			break;
		case 'n':
			opt.conc = (int)num_arg("concurrency", optarg, 1, MAX_CONC);
			break;
		case 'm':
			opt.max_mib = (int)num_arg("max-mib", optarg, 1, 1024);
			break;
		case 's':
			opt.seed = (uint64_t)num_arg("seed", optarg, 0, LONG_MAX);
			break;
		case 'r':
			opt.rss_slack_kib = num_arg("rss-slack", optarg, 0, 1L << 30);
			break;
		case 'h':
			usage_text(stdout);
			return 0;
		default:
			usage_text(stderr);
			return 2;
		}
	}
	if (!opt.client_ns || !opt.pod_ns || !opt.proxy_bin || !opt.work) {
		fprintf(stderr,
			"tpin-soak run: --client, --pod, --proxy and --work are required\n");
		return 2;
	}
	rng = splitmix(opt.seed) | 1;
	signal(SIGPIPE, SIG_IGN);
	pod_fd = open_ns(opt.pod_ns);
	client_fd = open_ns(opt.client_ns);
	if (setns(client_fd, CLONE_NEWNET)) {
		perror("tpin-soak: setns to the client namespace");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 0; i < SLOTS; i++)
		conns[i].fd = -1;

	app_start();
	proxy_start();
	/* Up when the admin endpoint answers. */
	start_dl = tu_now_ms() + 10000;
	while (active_connections() != 0) {
		if (tu_now_ms() > start_dl || waitpid(proxy_pid, &ws, WNOHANG) == proxy_pid) {
			fprintf(stderr, "tpin-soak: tpin-proxy did not come up; see %s/proxy.out\n",
				opt.work);
			kill_reap(&app_pid);
			kill_reap(&proxy_pid);
			return 1;
		}
		tu_sleep_ms(50);
	}
	st.start = quiet_usage();

	d = opt.duration_ms;
	t0 = tu_now_ms();
	at[A_PROXY_KILL] = t0 + d * 15 / 100;
	at[A_PROXY_START] = at[A_PROXY_KILL] + DOWNTIME_MS;
	at[A_BASELINE] = t0 + d * 25 / 100;
	at[A_SLOW_ON] = t0 + d * 40 / 100;
	at[A_SLOW_OFF] = t0 + d * 50 / 100;
	at[A_APP_KILL] = t0 + d * 65 / 100;
	at[A_APP_START] = at[A_APP_KILL] + DOWNTIME_MS;
	run_loop();
	/* Whatever did not finish by the drain deadline is a failure too. */
	for (int i = 0; i < SLOTS; i++)
		if (conns[i].fd >= 0)
			conn_fail(&conns[i], "unfinished at the end", 0);
	if (!proxy_died())
		st.after = quiet_usage();
	report(tu_now_ms() - t0);
	kill_reap(&proxy_pid);
	kill_reap(&app_pid);
	{
		char why[400];

		return passed(why, sizeof(why)) ? 0 : 1;
	}
}
