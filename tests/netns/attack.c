// SPDX-License-Identifier: MIT
/*
 * The fixture shared by the attack suites; see attack.h.
 *
 * About 800 lines, one file: the fixture is one object (the pod, its
 * client, the proxy and the app it starts and stops), and its raw-socket
 * helpers serve only the attack suites; split, each half would need the other.
 */

#include "attack.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *at_init_bin, *at_proxy_bin;
struct nh_pair at_pair;
char at_dir[128], at_access_log[192], at_proxy_out[192], at_peers[192];
pid_t at_app_pid = -1, at_proxy_pid = -1;
rlim_t at_proxy_nofile;

/*
 * The run's directory, removed by the main process: a failing Check test
 * _exit()s without its teardown. It holds the registry of proxies started,
 * which the main process sweeps: a proxy that changed user has lost
 * PR_SET_PDEATHSIG and would outlive a killed test.
 */
static char run_dir[64], registry[128];

/* ---- small helpers ------------------------------------------------------ */

void at_write_all(int fd, const void *buf, size_t len)
{
	int ret = nh_send_all(fd, buf, len, -1);

	ck_assert_msg(!ret, "send: %s", strerror(-ret));
}

char *at_slurp(const char *path)
{
	char *s = nh_slurp(path);

	if (!s)
		s = strdup("");
	ck_assert(s);
	return s;
}

/* ---- tpin-init ------------------------------------------------------------ */

int at_init_run(char **err, const char *flags)
{
	return nh_sh(NULL, NULL, err, "%s --netns %s %s", at_init_bin, at_pair.pod, flags);
}

void at_install(const char *flags)
{
	char *err = NULL;
	int ret = at_init_run(&err, flags);

	ck_assert_msg(ret == 0, "tpin-init --netns %s %s exited %d: %s", at_pair.pod, flags, ret,
		      err);
	free(err);
}

/* ---- the application ------------------------------------------------------ */

enum app_kind { APP_HTTP, APP_ECHO };

struct app_conn {
	int fd;
	enum app_kind kind;
	size_t len;
	char peer[80];
	char buf[4096];
};

struct app_cfg {
	int lfd[4]; /* HTTP v4, v6, echo v4, v6 */
	int log;
};

static void app_log(int log, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One write per line with O_APPEND: lines never interleave. */
	if (write(log, line, strlen(line)) < 0)
		_exit(3);
}

static void app_close(int ep, struct app_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* Writes everything, waiting for room: the app serves test-sized data only. */
static int app_write(int fd, const char *p, size_t len)
{
	return nh_send_all(fd, p, len, 5000);
}

static void app_accept(int ep, int lfd, enum app_kind kind, int log)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = { .events = EPOLLIN };
		struct app_conn *c;
		int one = 1, fd;

		fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		c = calloc(1, sizeof(*c));
		if (!c)
			_exit(4);
		/* The app's own writes leave at once: only the proxy may hold them. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (nh_log_accept(log, fd, (struct sockaddr *)&ss, c->peer, sizeof(c->peer)))
			_exit(3);
		c->fd = fd;
		c->kind = kind;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

/* Answers one complete request in c->buf; returns false when it closed c. */
static bool app_answer(int ep, struct app_conn *c)
{
	static const char split1[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	char body[128], resp[512];
	int one = 1;

	if (!strncmp(c->buf, "GET /split ", 11)) {
		/* Two small writes a few ms apart, as a multi-part message goes. */
		if (app_write(c->fd, split1, strlen(split1)))
			return app_close(ep, c), false;
		nh_sleep_ms(5);
		if (app_write(c->fd, "0123456789", 10))
			return app_close(ep, c), false;
		c->len = 0;
		return true;
	}
	snprintf(body, sizeof(body), "peer=%s\n", c->peer);
	snprintf(resp, sizeof(resp),
		 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		 strlen(body), body);
	/* Corked, the close appends the FIN to the queued data: one segment. */
	if (!strncmp(c->buf, "GET /close ", 11))
		setsockopt(c->fd, IPPROTO_TCP, TCP_CORK, &one, sizeof(one));
	app_write(c->fd, resp, strlen(resp));
	app_close(ep, c);
	return false;
}

static void app_read(int ep, struct app_conn *c, int log)
{
	ssize_t n;

	if (c->kind == APP_ECHO) {
		char buf[65536];

		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			app_log(log, "eof from=%s\n", c->peer);
			app_close(ep, c);
			return;
		}
		if (app_write(c->fd, buf, (size_t)n))
			app_close(ep, c);
		return;
	}
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		app_log(log, "eof from=%s\n", c->peer);
		app_close(ep, c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (strstr(c->buf, "\r\n\r\n") || c->len == sizeof(c->buf) - 1)
		app_answer(ep, c);
}

static int app_main(void *arg)
{
	const struct app_cfg *cfg = arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		return 2;
	for (int i = 0; i < 4; i++) {
		/* Listener events carry a small integer, connections a pointer. */
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)i + 1 };

		epoll_ctl(ep, EPOLL_CTL_ADD, cfg->lfd[i], &ev);
	}
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			uint64_t u = evs[i].data.u64;

			if (u >= 1 && u <= 4)
				app_accept(ep, cfg->lfd[u - 1], u <= 2 ? APP_HTTP : APP_ECHO,
					   cfg->log);
			else
				app_read(ep, evs[i].data.ptr, cfg->log);
		}
	}
	return 0;
}

void at_app_start(unsigned flags)
{
	struct app_cfg cfg;
	const char *ips[2] = { "0.0.0.0", "::" };

	if (flags & AT_APP_LOOPBACK) {
		ips[0] = "127.0.0.1";
		ips[1] = "::1";
	}
	cfg.log = open(at_peers, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	ck_assert_msg(cfg.log >= 0, "%s: %s", at_peers, strerror(errno));
	for (int i = 0; i < 4; i++) {
		cfg.lfd[i] = nh_listen(at_pair.pod, ips[i % 2], i < 2 ? AT_HTTP : AT_ECHO, false);
		ck_assert_msg(cfg.lfd[i] >= 0, "app listener: %s", nh_err());
	}
	at_app_pid = nh_spawn(at_pair.pod, app_main, &cfg);
	ck_assert_msg(at_app_pid > 0, "%s", nh_err());
	for (int i = 0; i < 4; i++)
		close(cfg.lfd[i]);
	close(cfg.log);
}

int at_app_count(const char *needle)
{
	char *s = at_slurp(at_peers);
	int n = nh_count(s, needle);

	free(s);
	return n;
}

/* ---- tpin-proxy ------------------------------------------------------------ */

static bool proxy_exited(int *ws)
{
	return waitpid(at_proxy_pid, ws, WNOHANG) == at_proxy_pid;
}

void at_proxy_start_argv(const char *const *extra)
{
	struct nh_exec e = { .out = at_proxy_out,
			     .nofile = at_proxy_nofile,
			     .argv = { at_proxy_bin, "--log-file", at_access_log, "--log-format",
				       "json", "--concurrency", "2" } };
	long long deadline = nh_now_ms() + AT_START_MS;
	size_t n = 7, from;
	struct stat sb;
	int ws;

	for (; *extra && n < sizeof(e.argv) / sizeof(e.argv[0]) - 1; extra++)
		e.argv[n++] = *extra;
	e.argv[n] = NULL;
	/* Readiness is looked for only in what this start adds to the output. */
	from = stat(at_proxy_out, &sb) ? 0 : (size_t)sb.st_size;
	at_proxy_pid = nh_spawn(at_pair.pod, nh_exec_logged, &e);
	ck_assert_msg(at_proxy_pid > 0, "%s", nh_err());
	nh_registry_add(registry, at_proxy_pid);
	for (;;) {
		char *out = at_slurp(at_proxy_out);
		bool up =
			strlen(out) >= from && strstr(out + from, "tpin-proxy: relaying from port");

		if (!up && proxy_exited(&ws)) {
			at_proxy_pid = -1;
			ck_abort_msg("tpin-proxy exited (status 0x%x) before relaying:\n%s", ws,
				     out + from);
		}
		if (!up && nh_now_ms() > deadline)
			ck_abort_msg("tpin-proxy did not start within %d ms:\n%s", AT_START_MS,
				     out);
		free(out);
		if (up)
			return;
		nh_sleep_ms(20);
	}
}

int at_proxy_stop(int sig, int timeout_ms)
{
	long long deadline = nh_now_ms() + timeout_ms;
	int ws = -1;

	ck_assert(at_proxy_pid > 0);
	if (sig)
		kill(at_proxy_pid, sig);
	while (!proxy_exited(&ws)) {
		if (nh_now_ms() > deadline) {
			kill(at_proxy_pid, SIGKILL);
			nh_reap(at_proxy_pid, 0);
			at_proxy_pid = -1;
			ck_abort_msg("tpin-proxy still running %d ms after signal %d", timeout_ms,
				     sig);
		}
		nh_sleep_ms(20);
	}
	at_proxy_pid = -1;
	return ws;
}

/* ---- clients ---------------------------------------------------------------- */

int at_connect_from_start(const char *ns, const char *src, uint16_t sport, const char *ip,
			  uint16_t port)
{
	struct sockaddr_storage ss, ls;
	socklen_t len, llen;
	int fd, one = 1, ret = nh_sockaddr(&ss, &len, ip, port);

	if (ret)
		return ret;
	fd = nh_socket(ns, ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	if (src || sport) {
		ret = nh_sockaddr(&ls, &llen,
				  src ? src : (ss.ss_family == AF_INET ? "0.0.0.0" : "::"), sport);
		if (ret)
			goto fail;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&ls, llen)) {
			ret = -errno;
			goto fail;
		}
	}
	if (connect(fd, (struct sockaddr *)&ss, len) && errno != EINPROGRESS) {
		ret = -errno;
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return ret;
}

int at_connect_from(const char *ns, const char *src, uint16_t sport, const char *ip, uint16_t port,
		    int timeout_ms)
{
	int fd = at_connect_from_start(ns, src, sport, ip, port), ret;

	if (fd < 0)
		return fd;
	ret = nh_connect_wait(fd, timeout_ms);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

int at_http(const char *ns, const char *src, const char *ip, uint16_t port, const char *req,
	    int timeout_ms, char *buf, size_t cap)
{
	long long deadline = nh_now_ms() + timeout_ms;
	int fd = at_connect_from(ns, src, 0, ip, port, timeout_ms), code = 0;
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return fd;
	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req)) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	n = nh_read_eof(fd, buf, cap, (int)(deadline > nh_now_ms() ? deadline - nh_now_ms() : 0));
	close(fd);
	if (n < 0)
		return (int)n;
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		code = 0;
	return code;
}

char *at_admin_get(const char *path)
{
	char req[256], *buf = malloc(1 << 20);
	int code;

	ck_assert(buf);
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	code = at_http(at_pair.pod, NULL, "127.0.0.1", AT_ADMIN, req, AT_WAIT_MS, buf, 1 << 20);
	ck_assert_msg(code == 200, "admin GET %s: %d (%s)", path, code,
		      code < 0 ? strerror(-code) : buf);
	return buf;
}

long long at_metric(const char *series)
{
	char *body = at_admin_get("/metrics"), *p;
	size_t len = strlen(series);
	long long v = -1;

	for (p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, series, len) && p[len] == ' ') {
			v = strtoll(p + len + 1, NULL, 10);
			break;
		}
	}
	free(body);
	return v;
}

long long at_metric_wait(const char *series, long long want)
{
	long long deadline = nh_now_ms() + AT_WAIT_MS, v;

	while ((v = at_metric(series)) != want && nh_now_ms() < deadline)
		nh_sleep_ms(50);
	return v;
}

long at_conntrack(const char *ns)
{
	long n = -1;
	int ret = nh_sysctl_long(ns, "net.netfilter.nf_conntrack_count", &n);

	/* No nf_conntrack loaded at all: nothing can be tracked. */
	if (ret == -ENOENT)
		return 0;
	ck_assert_msg(!ret, "%s", nh_err());
	return n;
}

json_t *at_log_find(const char *orig, const char *result)
{
	long long deadline = nh_now_ms() + AT_WAIT_MS;

	for (;;) {
		char *s = at_slurp(at_access_log), *save = NULL;

		for (char *line = strtok_r(s, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			json_error_t err;
			json_t *o = json_loads(line, 0, &err);
			const char *od = json_string_value(json_object_get(o, "original_dst"));
			const char *res = json_string_value(json_object_get(o, "result"));

			ck_assert_msg(o, "access log line is no JSON (%s): %s", err.text, line);
			if (od && !strcmp(od, orig) && (!result || (res && !strcmp(res, result)))) {
				free(s);
				return o;
			}
			json_decref(o);
		}
		free(s);
		if (nh_now_ms() > deadline)
			return NULL;
		nh_sleep_ms(20);
	}
}

/* ---- capture ------------------------------------------------------------- */

int at_cap_open(const char *ns, const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int fd, idx, big = 4 << 20;

	AT_OK(nh_enter(ns));
	idx = (int)if_nametoindex(ifname);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	AT_OK(nh_enter(NULL));
	ck_assert_msg(idx > 0 && fd >= 0, "capture on %s in %s: %s", ifname, ns, strerror(errno));
	sll.sll_ifindex = idx;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	ck_assert_msg(!bind(fd, (struct sockaddr *)&sll, sizeof(sll)), "bind capture: %s",
		      strerror(errno));
	return fd;
}

static bool cap_parse(const unsigned char *f, size_t n, struct at_seg *s)
{
	const unsigned char *t;
	size_t tl, hl;
	uint16_t type;

	if (n < 14)
		return false;
	type = (uint16_t)(f[12] << 8 | f[13]);
	f += 14;
	n -= 14;
	/* Copied out: after the 14-byte Ethernet header the IP header is not aligned. */
	if (type == ETHERTYPE_IP) {
		struct ip ip;

		if (n < 20)
			return false;
		memcpy(&ip, f, sizeof(ip));
		if (ip.ip_p != IPPROTO_TCP)
			return false;
		hl = (size_t)ip.ip_hl * 4;
		tl = ntohs(ip.ip_len);
		if (tl > n || hl > tl)
			return false;
		inet_ntop(AF_INET, &ip.ip_src, s->src, sizeof(s->src));
		inet_ntop(AF_INET, &ip.ip_dst, s->dst, sizeof(s->dst));
		t = f + hl;
		tl -= hl;
	} else if (type == ETHERTYPE_IPV6) {
		struct ip6_hdr ip6;

		if (n < 40)
			return false;
		memcpy(&ip6, f, sizeof(ip6));
		/* The tests send no extension headers. */
		if (ip6.ip6_nxt != IPPROTO_TCP)
			return false;
		tl = ntohs(ip6.ip6_plen);
		if (tl + 40 > n)
			return false;
		inet_ntop(AF_INET6, &ip6.ip6_src, s->src, sizeof(s->src));
		inet_ntop(AF_INET6, &ip6.ip6_dst, s->dst, sizeof(s->dst));
		t = f + 40;
	} else {
		return false;
	}
	if (tl < 20 || (size_t)(t[12] >> 4) * 4 > tl)
		return false;
	s->sport = (uint16_t)(t[0] << 8 | t[1]);
	s->dport = (uint16_t)(t[2] << 8 | t[3]);
	s->seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
	s->ack = (uint32_t)t[8] << 24 | (uint32_t)t[9] << 16 | (uint32_t)t[10] << 8 | t[11];
	s->flags = t[13];
	s->len = (unsigned)(tl - (size_t)(t[12] >> 4) * 4);
	return true;
}

int at_cap_next(int fd, struct at_seg *s, int timeout_ms)
{
	long long deadline = nh_now_ms() + timeout_ms;
	unsigned char frame[65536 + 64];

	for (;;) {
		struct sockaddr_ll from;
		socklen_t fl = sizeof(from);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = deadline - nh_now_ms();
		ssize_t n = recvfrom(fd, frame, sizeof(frame), 0, (struct sockaddr *)&from, &fl);

		if (n > 0) {
			memset(s, 0, sizeof(*s));
			if (!cap_parse(frame, (size_t)n, s))
				continue;
			s->out = from.sll_pkttype == PACKET_OUTGOING;
			return 1;
		}
		ck_assert_msg(n < 0 && (errno == EAGAIN || errno == EINTR), "capture: %s",
			      strerror(errno));
		if (left <= 0)
			return 0;
		poll(&pfd, 1, (int)left);
	}
}

/* ---- fixture and main ------------------------------------------------------ */

/*
 * A sanitized proxy reports to its stderr (our output file); UBSan goes on
 * running after a report, so read the reports instead of exit statuses.
 */
static void sanitizer_check(void)
{
	char *out = at_slurp(at_proxy_out);
	const char *hit = strstr(out, "runtime error:");

	if (!hit)
		hit = strstr(out, "Sanitizer");
	ck_assert_msg(!hit, "tpin-proxy sanitizer report:\n%.2000s", hit ? hit : "");
	free(out);
}

void at_setup(void)
{
	snprintf(at_dir, sizeof(at_dir), "%s/XXXXXX", run_dir);
	ck_assert_msg(mkdtemp(at_dir), "mkdtemp: %s", strerror(errno));
	snprintf(at_access_log, sizeof(at_access_log), "%s/access.log", at_dir);
	snprintf(at_proxy_out, sizeof(at_proxy_out), "%s/proxy.out", at_dir);
	snprintf(at_peers, sizeof(at_peers), "%s/peers", at_dir);
	at_proxy_nofile = 0;
	AT_OK(nh_pair_new(&at_pair, "at"));
}

void at_teardown(void)
{
	if (at_proxy_pid > 0)
		nh_reap(at_proxy_pid, SIGKILL);
	if (at_app_pid > 0)
		nh_reap(at_app_pid, SIGKILL);
	at_proxy_pid = at_app_pid = -1;
	nh_cleanup();
	sanitizer_check();
	nh_sh(NULL, NULL, NULL, "rm -rf -- '%s'", at_dir);
}

int at_prepare(void)
{
	/* The suite's main checked both: see tests/netns/suite.h. */
	at_init_bin = getenv("TPIN_INIT");
	at_proxy_bin = getenv("TPIN_PROXY");
	/* Hundreds of client sockets here: lift the soft limit. */
	nh_raise_nofile();
	snprintf(run_dir, sizeof(run_dir), "/tmp/tpt-attack-XXXXXX");
	if (!mkdtemp(run_dir)) {
		perror("mkdtemp");
		return -1;
	}
	snprintf(registry, sizeof(registry), "%s/pids", run_dir);
	return 0;
}

void at_after(void)
{
	/* The main process kills any registered proxy still alive. */
	nh_registry_sweep(registry);
	if (nh_sh(NULL, NULL, NULL, "rm -rf -- '%s'", run_dir))
		fprintf(stderr, "cannot remove %s\n", run_dir);
}
