// SPDX-License-Identifier: MIT
/*
 * tpin-proxy end to end: a client and a pod namespace over a veth, the rules
 * installed in the pod by the real tpin-init, the real tpin-proxy binary
 * running in the pod, and a small application written here (HTTP on 9080
 * that answers with the peer address it saw, echo on 9081) in a forked child
 * in the pod. TPIN_INIT and TPIN_PROXY (set by meson) name the binaries.
 *
 * Everything is judged from outside the proxy: what the client receives,
 * what the application saw (each accepted peer is appended to a file), the
 * access log, /metrics, /proc and the kernel's conntrack counter.
 *
 * About 1,300 lines: fourteen cases over one fixture (pod, app, proxy); a
 * case reads on its own, and splitting them would only copy the fixture.
 */

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <jansson.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"

#define CAPTURE	    15006
#define ADMIN	    15000
#define HTTP_PORT   9080
#define ECHO_PORT   9081
#define WAIT_MS	    3000  /* for anything that should happen at once */
#define START_MS    10000 /* the proxy's start, generous for ASan */
#define NH_OK(call) ck_assert_msg((call) == 0, "%s: %s", #call, nh_err())

static const char *tpin_init, *tpin_proxy;
/*
 * The run's directory, removed by the main process: a failing Check test
 * _exit()s without its teardown. It holds the registry of proxies started
 * (swept by the main process, see after()) and one directory per test.
 */
static char run_dir[64], registry[128];
static struct nh_pair pair;
static char dir[128]; /* per test: logs, the app's peer list */
static char access_log[192], proxy_out[192], peers_path[192];
static pid_t app_pid = -1, proxy_pid = -1;

/* ---- small helpers ------------------------------------------------------ */

/* The whole file, NUL-terminated (empty when missing); free it. */
static char *slurp(const char *path)
{
	char *s = nh_slurp(path);

	if (!s)
		s = strdup("");
	ck_assert(s);
	return s;
}

/* Sends all of buf, as long as it takes; fails the test on an error. */
static void write_all(int fd, const void *buf, size_t len)
{
	int ret = nh_send_all(fd, buf, len, -1);

	ck_assert_msg(!ret, "write: %s", strerror(-ret));
}

/* ---- the application in the pod ----------------------------------------- */

enum app_kind { APP_HTTP, APP_ECHO };

struct app_conn {
	int fd;
	enum app_kind kind;
	size_t len;
	char buf[4096];
};

struct app_cfg {
	int lfd[4]; /* HTTP v4, v6, echo v4, v6 */
	const char *peers;
};

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

static void app_accept(int ep, int lfd, enum app_kind kind, int peers)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct epoll_event ev = { .events = EPOLLIN };
		struct app_conn *c;
		int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (nh_log_accept(peers, fd, (struct sockaddr *)&ss, NULL, 0))
			_exit(3);
		c = calloc(1, sizeof(*c));
		if (!c)
			_exit(4);
		c->fd = fd;
		c->kind = kind;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

static void app_read(int ep, struct app_conn *c)
{
	ssize_t n;

	if (c->kind == APP_ECHO) {
		char buf[65536];

		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0 || app_write(c->fd, buf, (size_t)n))
			app_close(ep, c);
		return;
	}
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		app_close(ep, c);
		return;
	}
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	if (strstr(c->buf, "\r\n\r\n") || c->len == sizeof(c->buf) - 1) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char peer[80] = "?", body[128], resp[512];

		if (!getpeername(c->fd, (struct sockaddr *)&ss, &sl))
			nh_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
		snprintf(body, sizeof(body), "peer=%s\n", peer);
		snprintf(resp, sizeof(resp),
			 "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 strlen(body), body);
		app_write(c->fd, resp, strlen(resp));
		/* The app closes first, as test_time_wait needs. */
		app_close(ep, c);
	}
}

static int app_main(void *arg)
{
	const struct app_cfg *cfg = arg;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int peers = open(cfg->peers, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (ep < 0 || peers < 0)
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
					   peers);
			else
				app_read(ep, evs[i].data.ptr);
		}
	}
	return 0;
}

/* Starts the app in the pod; its listeners exist before this returns. */
static void app_start(void)
{
	struct app_cfg cfg = { .peers = peers_path };
	static const char *const ips[2] = { "0.0.0.0", "::" };

	for (int i = 0; i < 4; i++) {
		cfg.lfd[i] = nh_listen(pair.pod, ips[i % 2], i < 2 ? HTTP_PORT : ECHO_PORT, false);
		ck_assert_msg(cfg.lfd[i] >= 0, "app listener: %s", nh_err());
	}
	app_pid = nh_spawn(pair.pod, app_main, &cfg);
	ck_assert_msg(app_pid > 0, "%s", nh_err());
	for (int i = 0; i < 4; i++)
		close(cfg.lfd[i]);
}

/* What the app saw so far: its peer lines. free() it. */
static char *app_peers(void)
{
	return slurp(peers_path);
}

static int app_count(const char *needle)
{
	char *s = app_peers();
	int n = nh_count(s, needle);

	free(s);
	return n;
}

/* ---- tpin-init and tpin-proxy ------------------------------------------- */

static void install(const char *flags)
{
	char *err = NULL;
	int ret = nh_sh(NULL, NULL, &err, "%s --netns %s %s", tpin_init, pair.pod, flags);

	ck_assert_msg(ret == 0, "tpin-init --netns %s %s exited %d: %s", pair.pod, flags, ret, err);
	free(err);
}

static int proxy_exited(int *ws)
{
	pid_t r = waitpid(proxy_pid, ws, WNOHANG);

	return r == proxy_pid;
}

/*
 * Starts tpin-proxy in the pod with the test's log file, JSON access log,
 * two loops and the extra arguments (a NULL-terminated list); returns once
 * it says it relays. The pid goes to the registry: a proxy that dropped to
 * another user has lost PR_SET_PDEATHSIG and would outlive a killed test.
 */
#define proxy_start(...) proxy_start_argv((const char *const[]){ __VA_ARGS__ })

static void proxy_start_argv(const char *const *extra)
{
	struct nh_exec e = { .out = proxy_out,
			     .argv = { tpin_proxy, "--log-file", access_log, "--log-format", "json",
				       "--concurrency", "2" } };
	long long deadline = nh_now_ms() + START_MS;
	size_t n = 7, from;
	struct stat sb;
	int ws;

	for (; *extra && n < sizeof(e.argv) / sizeof(e.argv[0]) - 1; extra++)
		e.argv[n++] = *extra;
	e.argv[n] = NULL;
	/*
	 * One output file for every start (teardown scans it for sanitizer
	 * reports); readiness is looked for only in what this start adds.
	 */
	from = stat(proxy_out, &sb) ? 0 : (size_t)sb.st_size;
	proxy_pid = nh_spawn(pair.pod, nh_exec_logged, &e);
	ck_assert_msg(proxy_pid > 0, "%s", nh_err());
	nh_registry_add(registry, proxy_pid);
	for (;;) {
		char *out = slurp(proxy_out);
		bool up =
			strlen(out) >= from && strstr(out + from, "tpin-proxy: relaying from port");

		if (!up && proxy_exited(&ws)) {
			proxy_pid = -1;
			ck_abort_msg("tpin-proxy exited (status 0x%x) before relaying:\n%s", ws,
				     out);
		}
		if (!up && nh_now_ms() > deadline)
			ck_abort_msg("tpin-proxy did not start within %d ms:\n%s", START_MS, out);
		free(out);
		if (up)
			return;
		nh_sleep_ms(20);
	}
}

/* Sends sig and waits at most timeout_ms for the exit; returns the status. */
static int proxy_stop(int sig, int timeout_ms)
{
	long long deadline = nh_now_ms() + timeout_ms;
	int ws = -1;

	ck_assert(proxy_pid > 0);
	kill(proxy_pid, sig);
	while (!proxy_exited(&ws)) {
		if (nh_now_ms() > deadline) {
			char *out = slurp(proxy_out);

			kill(proxy_pid, SIGKILL);
			nh_reap(proxy_pid, 0);
			proxy_pid = -1;
			ck_abort_msg("tpin-proxy still running %d ms after signal %d:\n%s",
				     timeout_ms, sig, out);
		}
		nh_sleep_ms(20);
	}
	proxy_pid = -1;
	return ws;
}

/* ---- the access log ----------------------------------------------------- */

/*
 * Finds an access-log entry whose original_dst is orig (and, when not NULL,
 * whose result is result), waiting up to WAIT_MS: entries are written when a
 * connection ends. Returns the parsed entry (json_decref it) or NULL.
 */
static json_t *log_find(const char *orig, const char *result)
{
	long long deadline = nh_now_ms() + WAIT_MS;

	for (;;) {
		char *s = slurp(access_log), *save = NULL;

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

static void log_expect(const char *orig, const char *result, const char *client,
		       const char *upstream)
{
	json_t *o = log_find(orig, result);
	char *all = slurp(access_log);
	const char *c, *u;

	ck_assert_msg(o, "no access-log entry with original_dst %s%s%s; log:\n%s", orig,
		      result ? " and result " : "", result ? result : "", all);
	free(all);
	c = json_string_value(json_object_get(o, "client"));
	u = json_string_value(json_object_get(o, "upstream"));
	ck_assert_msg(c && !strncmp(c, client, strlen(client)), "client %s, want %s...", c, client);
	if (upstream)
		ck_assert_msg(u && !strcmp(u, upstream), "upstream %s, want %s", u, upstream);
	json_decref(o);
}

/* ---- HTTP --------------------------------------------------------------- */

/* curl from the client namespace; returns its stdout (free it). */
static char *curl(const char *url)
{
	char *out = NULL, *err = NULL;
	int ret = nh_sh(pair.client, &out, &err, "curl -sS -g --max-time 5 '%s'", url);

	ck_assert_msg(ret == 0, "curl %s exited %d: %s", url, ret, err);
	free(err);
	return out;
}

static void curl_sees(const char *url, const char *want)
{
	char *out = curl(url);

	ck_assert_msg(!strncmp(out, want, strlen(want)), "curl %s: answer \"%s\", want \"%s...\"",
		      url, out, want);
	free(out);
}

/* A plain GET over a raw socket from ns; returns the response (free it). */
static char *http_get(const char *ns, const char *ip, uint16_t port, const char *path)
{
	char req[256], *buf = malloc(1 << 20);
	int fd = nh_connect(ns, ip, port, WAIT_MS);
	ssize_t n;

	ck_assert(buf);
	ck_assert_msg(fd >= 0, "connect %s port %u: %s", ip, port, nh_err());
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	write_all(fd, req, strlen(req));
	n = nh_read_eof(fd, buf, 1 << 20, WAIT_MS);
	ck_assert_msg(n >= 0, "GET %s from %s port %u: %s", path, ip, port, strerror((int)-n));
	close(fd);
	return buf;
}

/*
 * One sample from the proxy's /metrics (exact series, e.g.
 * `tpin_bytes_total{traffic="inbound",direction="upstream",port="9081"}`); -1 when absent.
 */
static long long metric(const char *series)
{
	char *body = http_get(pair.pod, "127.0.0.1", ADMIN, "/metrics"), *p;
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

/* Waits up to WAIT_MS for a series to reach want; returns the last value. */
static long long metric_wait(const char *series, long long want)
{
	long long deadline = nh_now_ms() + WAIT_MS, v;

	while ((v = metric(series)) != want && nh_now_ms() < deadline)
		nh_sleep_ms(50);
	return v;
}

static long conntrack_count(const char *ns)
{
	long n = -1;
	int ret = nh_sysctl_long(ns, "net.netfilter.nf_conntrack_count", &n);

	/* No nf_conntrack loaded at all: nothing can be tracked. */
	if (ret == -ENOENT)
		return 0;
	ck_assert_msg(!ret, "%s", nh_err());
	return n;
}

/* ---- fixture ------------------------------------------------------------ */

/*
 * A sanitized proxy reports to its stderr (our output file); UBSan goes on
 * running after a report, and a SIGKILL'd proxy never exits non-zero, so
 * read the reports instead of trusting exit statuses.
 */
static void sanitizer_check(void)
{
	char *out = slurp(proxy_out);
	const char *hit = strstr(out, "runtime error:");

	if (!hit)
		hit = strstr(out, "Sanitizer");
	ck_assert_msg(!hit, "tpin-proxy sanitizer report:\n%.2000s", hit ? hit : "");
	free(out);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/XXXXXX", run_dir);
	ck_assert_msg(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	snprintf(access_log, sizeof(access_log), "%s/access.log", dir);
	snprintf(proxy_out, sizeof(proxy_out), "%s/proxy.out", dir);
	snprintf(peers_path, sizeof(peers_path), "%s/peers", dir);
	NH_OK(nh_pair_new(&pair, "px"));
}

static void teardown(void)
{
	if (proxy_pid > 0)
		nh_reap(proxy_pid, SIGKILL);
	if (app_pid > 0)
		nh_reap(app_pid, SIGKILL);
	proxy_pid = app_pid = -1;
	nh_cleanup();
	sanitizer_check();
	unlink(access_log);
	unlink(proxy_out);
	unlink(peers_path);
	rmdir(dir);
}

/* ---- 1. HTTP through the proxy, both families --------------------------- */

START_TEST(test_http)
{
	install("");
	app_start();
	proxy_start(NULL);
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");
	log_expect(NH_POD4 ":9080", NULL, NH_CLIENT4 ":", NH_POD4 ":9080");
	curl_sees("http://[" NH_POD6 "]:9080/", "peer=[::6]:");
	log_expect("[" NH_POD6 "]:9080", NULL, "[" NH_CLIENT6 "]:", "[" NH_POD6 "]:9080");
	/* Both went through the proxy: the app never met the client itself. */
	ck_assert_int_eq(app_count("peer=127.0.0.6:"), 1);
	ck_assert_int_eq(app_count("peer=[::6]:"), 1);
	ck_assert_int_eq(app_count("peer=" NH_CLIENT4), 0);
	ck_assert_int_eq(app_count("peer=[" NH_CLIENT6), 0);
}
END_TEST

/*
 * The kubelet probes readiness on the pod's own address, so 15021 answers
 * there (v4 and v6), while the admin port stays on loopback.
 */
START_TEST(test_readiness_from_outside)
{
	char *r;
	int fd;

	install("");
	proxy_start(NULL);
	r = http_get(pair.client, NH_POD4, 15021, "/healthz/ready");
	ck_assert_msg(!strncmp(r, "HTTP/1.1 200", 12) || !strncmp(r, "HTTP/1.0 200", 12),
		      "v4 readiness: %.80s", r);
	free(r);
	r = http_get(pair.client, NH_POD6, 15021, "/healthz/ready");
	ck_assert_msg(!strncmp(r, "HTTP/1.1 200", 12) || !strncmp(r, "HTTP/1.0 200", 12),
		      "v6 readiness: %.80s", r);
	free(r);
	/* 15000 is excluded from interception and listens on 127.0.0.1 only. */
	fd = nh_connect(pair.client, NH_POD4, 15000, 1000);
	ck_assert_msg(fd < 0, "the admin port answered from outside the pod");
}
END_TEST

/* ---- 2. which source the app sees; no conntrack either way ------------- */

START_TEST(test_source_default)
{
	install("-b 9080");
	app_start();
	proxy_start(NULL);
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");
	curl_sees("http://[" NH_POD6 "]:9080/", "peer=[::6]:");
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
}
END_TEST

START_TEST(test_source_preserved)
{
	install("-b 9080 --preserve-source");
	app_start();
	proxy_start("--preserve-source", NULL);
	curl_sees("http://" NH_POD4 ":9080/", "peer=" NH_CLIENT4 ":");
	log_expect(NH_POD4 ":9080", NULL, NH_CLIENT4 ":", NULL);
	curl_sees("http://[" NH_POD6 "]:9080/", "peer=[" NH_CLIENT6 "]:");
	/* A second round: replies of the first must not have been left astray. */
	curl_sees("http://" NH_POD4 ":9080/", "peer=" NH_CLIENT4 ":");
	ck_assert_int_eq(app_count("peer=127.0.0.6"), 0);
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
}
END_TEST

/* ---- 3. 1,000 concurrent connections ------------------------------------ */

#define NCONC	 1000
#define CONC_LEN 1000

static void conc_payload(int i, unsigned char *buf)
{
	int h = snprintf((char *)buf, CONC_LEN, "conn=%04d;", i);

	for (int j = h; j < CONC_LEN; j++)
		buf[j] = (unsigned char)(i * 7 + j * 13 + (i >> 8));
}

START_TEST(test_concurrent)
{
	static int fd[NCONC];
	static size_t got[NCONC];
	static unsigned char rx[NCONC][CONC_LEN];
	unsigned char want[CONC_LEN];
	long long t0 = nh_now_ms(), deadline = t0 + 30000;
	int done = 0, bad = -1;

	install("");
	app_start();
	proxy_start(NULL);
	for (int i = 0; i < NCONC; i++) {
		fd[i] = nh_connect_start(pair.client, NH_POD4, ECHO_PORT);
		ck_assert_msg(fd[i] >= 0, "connection %d: %s", i, nh_err());
	}
	for (int i = 0; i < NCONC; i++) {
		long long left = deadline - nh_now_ms();
		int ret = nh_connect_wait(fd[i], left > 0 ? (int)left : 0);

		ck_assert_msg(!ret, "connection %d: %s", i, nh_err());
		conc_payload(i, want);
		write_all(fd[i], want, CONC_LEN);
	}
	/* Every echo comes back while all 1,000 are open at once. */
	while (done < NCONC && nh_now_ms() < deadline) {
		for (int i = 0; i < NCONC; i++) {
			ssize_t n;

			if (got[i] == CONC_LEN)
				continue;
			n = recv(fd[i], rx[i] + got[i], CONC_LEN - got[i], MSG_DONTWAIT);
			if (n > 0) {
				got[i] += (size_t)n;
				done += got[i] == CONC_LEN;
			} else {
				ck_assert_msg(n < 0 && errno == EAGAIN,
					      "connection %d: %s after %zu", i,
					      n ? strerror(errno) : "EOF", got[i]);
			}
		}
		if (done < NCONC)
			nh_sleep_ms(5);
	}
	ck_assert_msg(done == NCONC, "%d of %d echoes complete after %lld ms", done, NCONC,
		      nh_now_ms() - t0);
	for (int i = 0; i < NCONC && bad < 0; i++) {
		conc_payload(i, want);
		if (memcmp(rx[i], want, CONC_LEN))
			bad = i;
	}
	ck_assert_msg(bad < 0, "connection %d: wrong data (starts \"%.10s\")", bad,
		      bad >= 0 ? (const char *)rx[bad] : "");
	ck_assert_int_eq(metric("tpin_connections_active{traffic=\"inbound\"}"), NCONC);
	for (int i = 0; i < NCONC; i++)
		close(fd[i]);
	ck_assert_int_eq(metric_wait("tpin_connections_active{traffic=\"inbound\"}", 0), 0);
	ck_assert_int_eq(app_count("peer=127.0.0.6:"), NCONC);
	ck_assert_msg(nh_now_ms() - t0 < 30000, "took %lld ms", nh_now_ms() - t0);
}
END_TEST

/* ---- 4. REDIRECT mode --------------------------------------------------- */

START_TEST(test_redirect)
{
	install("-m redirect");
	app_start();
	proxy_start("--mode", "redirect", NULL);
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");
	log_expect(NH_POD4 ":9080", NULL, NH_CLIENT4 ":", NH_POD4 ":9080");
	curl_sees("http://[" NH_POD6 "]:9080/", "peer=[::6]:");
	log_expect("[" NH_POD6 "]:9080", NULL, "[" NH_CLIENT6 "]:", "[" NH_POD6 "]:9080");
	/* NAT needs conntrack: the counter that stays 0 in TPROXY mode is live. */
	ck_assert_int_gt(conntrack_count(pair.pod), 0);
}
END_TEST

/* ---- 5. stop, fail closed, start again ---------------------------------- */

START_TEST(test_restart)
{
	char buf[512];
	int c, ret;
	ssize_t n;

	install("");
	app_start();
	proxy_start(NULL);
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");
	ck_assert_int_eq(WTERMSIG(proxy_stop(SIGKILL, WAIT_MS)), SIGKILL);

	/* Down: the SYN is dropped, the app sees nothing. */
	c = nh_connect_start(pair.client, NH_POD4, HTTP_PORT);
	ck_assert_msg(c >= 0, "%s", nh_err());
	ret = nh_connect_wait(c, 1500);
	ck_assert_msg(ret == -ETIMEDOUT, "connect with the proxy down: %d (%s)", ret, nh_err());
	ck_assert_int_eq(app_count("peer="), 1);

	/* Up again: the pending SYN's retransmit reaches the new proxy. */
	proxy_start(NULL);
	ret = nh_connect_wait(c, 8000);
	ck_assert_msg(!ret, "pending connect after the restart: %s", nh_err());
	write_all(c, "GET / HTTP/1.0\r\n\r\n", 18);
	n = nh_read_eof(c, buf, sizeof(buf), WAIT_MS);
	ck_assert_msg(n > 0 && strstr(buf, "peer=127.0.0.6:"), "answer %zd: %s", n, buf);
	close(c);
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");

	/* SIGTERM with nothing to drain ends at once; a third start serves too. */
	ret = proxy_stop(SIGTERM, 5000);
	ck_assert_msg(WIFEXITED(ret) && !WEXITSTATUS(ret), "exit after SIGTERM: 0x%x", ret);
	ret = nh_connect(pair.client, NH_POD4, HTTP_PORT, 1000);
	ck_assert_msg(ret == -ETIMEDOUT, "connect after SIGTERM exit: %d", ret);
	if (ret >= 0)
		close(ret);
	proxy_start(NULL);
	curl_sees("http://[" NH_POD6 "]:9080/", "peer=[::6]:");
	ck_assert_int_eq(app_count("peer=" NH_CLIENT4), 0);
}
END_TEST

/* ---- 6. SIGTERM drains a live transfer ---------------------------------- */

#define DRAIN_CHUNKS 20
#define DRAIN_CHUNK  1024

START_TEST(test_drain)
{
	char out[DRAIN_CHUNK], in[DRAIN_CHUNK], eof[16];
	json_t *e;
	int c, ws, other;

	install("");
	app_start();
	proxy_start("--drain-timeout", "20s", NULL);
	c = nh_connect(pair.client, NH_POD4, ECHO_PORT, WAIT_MS);
	ck_assert_msg(c >= 0, "%s", nh_err());
	for (int i = 0; i < DRAIN_CHUNKS; i++) {
		memset(out, 'a' + i, sizeof(out));
		write_all(c, out, sizeof(out));
		ck_assert_msg(nh_read_full(c, in, sizeof(in), WAIT_MS) == (ssize_t)sizeof(in),
			      "chunk %d not echoed", i);
		ck_assert_msg(!memcmp(in, out, sizeof(in)), "chunk %d corrupted", i);
		if (i == 4)
			kill(proxy_pid, SIGTERM);
		if (i == 6) {
			/* Draining: a new connection is not served. */
			other = nh_connect(pair.client, NH_POD4, ECHO_PORT, 1000);
			if (other >= 0) {
				write_all(other, "x", 1);
				ck_assert_msg(nh_read_full(other, in, 1, 1000) <= 0,
					      "a connection made while draining was served");
				close(other);
			}
			ck_assert_int_eq(app_count("local=" NH_POD4 ":9081"), 1);
		}
		if (i == 10)
			ck_assert_msg(!proxy_exited(&ws), "exited mid-transfer: 0x%x", ws);
		nh_sleep_ms(100);
	}
	shutdown(c, SHUT_WR);
	ck_assert_int_eq(nh_read_eof(c, eof, sizeof(eof), WAIT_MS), 0);
	close(c);
	/* Nothing left to drain: exit well before the 20 s deadline. */
	ws = proxy_stop(0, 5000);
	ck_assert_msg(WIFEXITED(ws) && !WEXITSTATUS(ws), "exit after drain: 0x%x", ws);
	e = log_find(NH_POD4 ":9081", NULL);
	ck_assert_msg(e, "no access-log entry for the drained connection");
	ck_assert(json_is_integer(json_object_get(e, "bytes_up")));
	ck_assert_int_eq(json_integer_value(json_object_get(e, "bytes_up")),
			 DRAIN_CHUNKS * DRAIN_CHUNK);
	ck_assert(json_is_integer(json_object_get(e, "bytes_down")));
	ck_assert_int_eq(json_integer_value(json_object_get(e, "bytes_down")),
			 DRAIN_CHUNKS * DRAIN_CHUNK);
	json_decref(e);
}
END_TEST

/* ---- 7. the loop refusal ------------------------------------------------ */

/* Connects to ip:port from the client and expects to be closed, unserved. */
static void expect_closed(const char *ip, uint16_t port)
{
	char buf[64];
	int c = nh_connect(pair.client, ip, port, WAIT_MS);
	ssize_t n;

	/* The handshake is the kernel's; the reset may beat connect()'s return. */
	if (c == -ECONNRESET)
		return;
	ck_assert_msg(c >= 0, "connect %s port %u: %s", ip, port, nh_err());
	write_all(c, "GET / HTTP/1.0\r\n\r\n", 18);
	n = nh_read_eof(c, buf, sizeof(buf), WAIT_MS);
	ck_assert_msg(n == 0 || n == -ECONNRESET, "%s port %u: got %zd (%s), want a close", ip,
		      port, n, n > 0 ? buf : strerror((int)-n));
	close(c);
}

/*
 * The capture port is excluded from interception, so a client reaching it
 * lands on the proxy's wildcard listener directly, with the capture port as
 * its original destination: the proxy must not relay that to itself.
 */
START_TEST(test_loop_capture)
{
	install("");
	app_start();
	proxy_start(NULL);
	expect_closed(NH_POD4, CAPTURE);
	log_expect(NH_POD4 ":15006", "refused_loop", NH_CLIENT4 ":", NULL);
	expect_closed(NH_POD6, CAPTURE);
	log_expect("[" NH_POD6 "]:15006", "refused_loop", "[" NH_CLIENT6 "]:", NULL);
	ck_assert_int_eq(
		metric_wait("tpin_connections_refused_total{traffic=\"inbound\",reason=\"loop\"}",
			    2),
		2);
	/* Relaying still works, and nothing reached the app. */
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");
	ck_assert_int_eq(app_count("peer="), 1);
}
END_TEST

/*
 * The admin port becomes an original destination when tpin-init is told of
 * another admin port: then pod:15000 is diverted to the proxy, whose admin
 * endpoint is 15000.
 */
START_TEST(test_loop_admin)
{
	int c;

	install("");
	app_start();
	proxy_start(NULL);
	/* Control: excluded as it should be, pod:15000 is closed (admin is on lo). */
	c = nh_connect(pair.client, NH_POD4, ADMIN, WAIT_MS);
	ck_assert_msg(c == -ECONNREFUSED, "pod:15000 with 15000 excluded: %d (%s)", c, nh_err());

	/*
	 * Nothing listens on pod:15000, so tpin-init's closed-port reset would
	 * refuse it before the proxy sees it; --upstream localhost leaves that
	 * rule out, and the SYN reaches the proxy as the original destination.
	 */
	install("--admin-port 15099 --upstream localhost");
	expect_closed(NH_POD4, ADMIN);
	log_expect(NH_POD4 ":15000", "refused_loop", NH_CLIENT4 ":", NULL);
	ck_assert_int_eq(
		metric_wait("tpin_connections_refused_total{traffic=\"inbound\",reason=\"loop\"}",
			    1),
		1);
	ck_assert_int_eq(app_count("peer="), 0);
}
END_TEST

/* ---- 8. metrics count what was sent ------------------------------------- */

START_TEST(test_metrics)
{
	char out[1000], in[1000], *resp;
	size_t resp_len;

	install("");
	app_start();
	proxy_start(NULL);
	/* Control: nothing yet. */
	ck_assert_int_eq(metric("tpin_connections_accepted_total{traffic=\"inbound\"}"), 0);
	ck_assert_int_eq(metric("tpin_bytes_total{traffic=\"inbound\",direction=\"upstream\",port="
				"\"9081\"}"),
			 -1);

	for (int i = 0; i < 3; i++) {
		int c = nh_connect(pair.client, NH_POD4, ECHO_PORT, WAIT_MS);

		ck_assert_msg(c >= 0, "%s", nh_err());
		memset(out, '0' + i, sizeof(out));
		write_all(c, out, sizeof(out));
		ck_assert_int_eq(nh_read_full(c, in, sizeof(in), WAIT_MS), (ssize_t)sizeof(in));
		close(c);
	}
	/* 18 bytes up; the answer's length down. */
	resp = http_get(pair.client, NH_POD4, HTTP_PORT, "/");
	resp_len = strlen(resp);
	ck_assert_msg(strstr(resp, "peer=127.0.0.6:"), "answer: %s", resp);
	free(resp);

	ck_assert_int_eq(metric_wait("tpin_connections_active{traffic=\"inbound\"}", 0), 0);
	ck_assert_int_eq(metric("tpin_connections_accepted_total{traffic=\"inbound\"}"), 4);
	ck_assert_int_eq(metric("tpin_bytes_total{traffic=\"inbound\",direction=\"upstream\",port="
				"\"9081\"}"),
			 3000);
	ck_assert_int_eq(metric("tpin_bytes_total{traffic=\"inbound\",direction=\"downstream\","
				"port=\"9081\"}"),
			 3000);
	ck_assert_int_eq(metric("tpin_bytes_total{traffic=\"inbound\",direction=\"upstream\",port="
				"\"9080\"}"),
			 18);
	ck_assert_int_eq(metric("tpin_bytes_total{traffic=\"inbound\",direction=\"downstream\","
				"port=\"9080\"}"),
			 (long long)resp_len);
	ck_assert_int_eq(
		metric("tpin_connections_refused_total{traffic=\"inbound\",reason=\"loop\"}"), 0);
}
END_TEST

/* ---- 9. no TIME_WAIT bypass --------------------------------------------- */

#define TW_CONNS 400

START_TEST(test_time_wait)
{
	unsigned char *seen = calloc(65536, 1);
	int failed = 0, ports = 0, via_proxy, direct;
	char first_err[160] = "", buf[512];

	ck_assert(seen);
	install("");
	app_start();
	proxy_start(NULL);
	NH_OK(nh_sysctl_save(pair.client, "net.ipv4.ip_local_port_range"));
	NH_OK(nh_sysctl_write(pair.client, "net.ipv4.ip_local_port_range", "20000 20099"));
	for (int i = 0; i < TW_CONNS; i++) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		int c = nh_connect(pair.client, NH_POD4, HTTP_PORT, 2000);
		ssize_t n;

		if (c < 0) {
			if (!failed++)
				snprintf(first_err, sizeof(first_err), "%d: %s", i, nh_err());
			continue;
		}
		if (!getsockname(c, (struct sockaddr *)&sin, &sl))
			ports += !seen[ntohs(sin.sin_port)]++;
		write_all(c, "GET / HTTP/1.0\r\n\r\n", 18);
		/* The app closes first; the client closes after the EOF. */
		n = nh_read_eof(c, buf, sizeof(buf), 2000);
		if (n <= 0 && !failed++)
			snprintf(first_err, sizeof(first_err), "%d: read %zd", i, n);
		close(c);
	}
	free(seen);
	via_proxy = app_count("peer=127.0.0.6:");
	direct = app_count("peer=" NH_CLIENT4 ":");
	/* Ports were reused, so SYNs met the proxy's TIME_WAIT 4-tuples. */
	ck_assert_int_le(ports, 100);
	ck_assert_msg(direct == 0, "%d of %d connections reached the app from the client", direct,
		      TW_CONNS);
	ck_assert_msg(!failed, "%d connections failed, first %s", failed, first_err);
	ck_assert_int_eq(via_proxy, TW_CONNS);
}
END_TEST

/* ---- 10. --user: only CAP_NET_ADMIN ------------------------------------- */

static void status_field(const char *status, const char *key, char *val, size_t len)
{
	const char *p = strstr(status, key);
	size_t n;

	ck_assert_msg(p, "no %s in /proc status", key);
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	n = strcspn(p, "\n");
	ck_assert(n < len);
	memcpy(val, p, n);
	val[n] = '\0';
}

START_TEST(test_user)
{
	char path[300], val[64];
	struct dirent *de;
	int tasks = 0;
	DIR *d;

	install("");
	app_start();
	proxy_start("--user", "1337", NULL);
	/* Every thread, not just the main one: the loops run on their own. */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)proxy_pid);
	d = opendir(path);
	ck_assert_msg(d, "%s: %s", path, strerror(errno));
	while ((de = readdir(d))) {
		const char *t = de->d_name;
		char *st;

		if (t[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)proxy_pid, t);
		st = slurp(path);
		if (!*st) {
			free(st); /* the thread ended meanwhile */
			continue;
		}
		tasks++;
		status_field(st, "\nCapEff:", val, sizeof(val));
		ck_assert_msg(!strcmp(val, "0000000000001000"), "task %s CapEff %s", t, val);
		status_field(st, "\nCapPrm:", val, sizeof(val));
		ck_assert_msg(!strcmp(val, "0000000000001000"), "task %s CapPrm %s", t, val);
		status_field(st, "\nCapInh:", val, sizeof(val));
		ck_assert_msg(!strcmp(val, "0000000000000000"), "task %s CapInh %s", t, val);
		status_field(st, "\nCapAmb:", val, sizeof(val));
		ck_assert_msg(!strcmp(val, "0000000000000000"), "task %s CapAmb %s", t, val);
		status_field(st, "\nUid:", val, sizeof(val));
		ck_assert_msg(!strcmp(val, "1337\t1337\t1337\t1337"), "task %s Uid %s", t, val);
		status_field(st, "\nGid:", val, sizeof(val));
		ck_assert_msg(!strcmp(val, "1337\t1337\t1337\t1337"), "task %s Gid %s", t, val);
		free(st);
	}
	closedir(d);
	/* The main thread and the two loops at least. */
	ck_assert_int_ge(tasks, 3);
	curl_sees("http://" NH_POD4 ":9080/", "peer=127.0.0.6:");
	log_expect(NH_POD4 ":9080", NULL, NH_CLIENT4 ":", NH_POD4 ":9080");
	curl_sees("http://[" NH_POD6 "]:9080/", "peer=[::6]:");
}
END_TEST

/* ---- 11. PROXY protocol v2 ---------------------------------------------- */

static const unsigned char pp2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

/*
 * The echo app sends back what it received, so the client reads the bytes
 * the app got, in order: the header, then "hello".
 */
static void pp2_check(const char *dst, int family)
{
	struct sockaddr_storage cs, want_src, want_dst;
	socklen_t cl = sizeof(cs), wl;
	unsigned char hdr[16], addrs[256], tail[5];
	size_t alen = family == AF_INET ? 12 : 36, ilen = family == AF_INET ? 4 : 16;
	const unsigned char *sip, *dip;
	unsigned len, sport, dport;
	int c;

	c = nh_connect(pair.client, dst, ECHO_PORT, WAIT_MS);
	ck_assert_msg(c >= 0, "%s", nh_err());
	ck_assert_int_eq(getsockname(c, (struct sockaddr *)&cs, &cl), 0);
	write_all(c, "hello", 5);
	ck_assert_int_eq(nh_read_full(c, hdr, sizeof(hdr), WAIT_MS), (ssize_t)sizeof(hdr));
	ck_assert_msg(!memcmp(hdr, pp2_sig, 12), "no PROXY v2 signature first");
	ck_assert_msg(hdr[12] == 0x21, "version/command 0x%02x, want 0x21", hdr[12]);
	ck_assert_msg(hdr[13] == (family == AF_INET ? 0x11 : 0x21),
		      "family/protocol 0x%02x, want TCP over %s", hdr[13],
		      family == AF_INET ? "IPv4 (0x11)" : "IPv6 (0x21)");
	len = (unsigned)hdr[14] << 8 | hdr[15];
	ck_assert_msg(len >= alen && len <= sizeof(addrs), "length %u", len);
	ck_assert_int_eq(nh_read_full(c, addrs, len, WAIT_MS), (ssize_t)len);
	ck_assert_int_eq(nh_read_full(c, tail, 5, WAIT_MS), 5);
	ck_assert_msg(!memcmp(tail, "hello", 5), "the payload does not follow the header");
	close(c);

	/* Source: the client's own address and port; destination: pod:9081. */
	want_src = cs;
	ck_assert_int_eq(nh_sockaddr(&want_dst, &wl, dst, ECHO_PORT), 0);
	sip = addrs;
	dip = addrs + ilen;
	sport = (unsigned)addrs[2 * ilen] << 8 | addrs[2 * ilen + 1];
	dport = (unsigned)addrs[2 * ilen + 2] << 8 | addrs[2 * ilen + 3];
	if (family == AF_INET) {
		ck_assert(!memcmp(sip, &((struct sockaddr_in *)&want_src)->sin_addr, 4));
		ck_assert(!memcmp(dip, &((struct sockaddr_in *)&want_dst)->sin_addr, 4));
		ck_assert_uint_eq(sport, ntohs(((struct sockaddr_in *)&want_src)->sin_port));
	} else {
		ck_assert(!memcmp(sip, &((struct sockaddr_in6 *)&want_src)->sin6_addr, 16));
		ck_assert(!memcmp(dip, &((struct sockaddr_in6 *)&want_dst)->sin6_addr, 16));
		ck_assert_uint_eq(sport, ntohs(((struct sockaddr_in6 *)&want_src)->sin6_port));
	}
	ck_assert_uint_eq(dport, ECHO_PORT);
}

START_TEST(test_proxy_protocol)
{
	char buf[64];
	int c;

	install("");
	app_start();
	proxy_start("--proxy-protocol", NULL);
	pp2_check(NH_POD4, AF_INET);
	pp2_check(NH_POD6, AF_INET6);
	ck_assert_int_eq(app_count("peer=127.0.0.6:"), 1);
	ck_assert_int_eq(app_count("peer=[::6]:"), 1);

	/* Control: without the flag the first bytes are the client's own. */
	proxy_stop(SIGKILL, WAIT_MS);
	proxy_start(NULL);
	c = nh_connect(pair.client, NH_POD4, ECHO_PORT, WAIT_MS);
	ck_assert_msg(c >= 0, "%s", nh_err());
	write_all(c, "hello", 5);
	ck_assert_int_eq(nh_read_full(c, buf, 5, WAIT_MS), 5);
	ck_assert(!memcmp(buf, "hello", 5));
	close(c);
}
END_TEST

static Suite *proxy_suite(void)
{
	Suite *s = suite_create("netns_proxy");
	TCase *tc = tcase_create("proxy");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_http);
	tcase_add_test(tc, test_readiness_from_outside);
	tcase_add_test(tc, test_source_default);
	tcase_add_test(tc, test_source_preserved);
	tcase_add_test(tc, test_concurrent);
	tcase_add_test(tc, test_redirect);
	tcase_add_test(tc, test_restart);
	tcase_add_test(tc, test_drain);
	tcase_add_test(tc, test_loop_capture);
	tcase_add_test(tc, test_loop_admin);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_time_wait);
	tcase_add_test(tc, test_user);
	tcase_add_test(tc, test_proxy_protocol);
	suite_add_tcase(s, tc);
	return s;
}

/* Once, in the main process: the run's directory and the proxy registry. */
static Suite *make(void)
{
	tpin_init = getenv("TPIN_INIT");
	tpin_proxy = getenv("TPIN_PROXY");
	/* 1,000 client sockets here, twice that in the proxy. */
	nh_raise_nofile();
	snprintf(run_dir, sizeof(run_dir), "/tmp/tpt-proxy-XXXXXX");
	if (!mkdtemp(run_dir)) {
		perror("test_proxy: mkdtemp");
		return NULL;
	}
	snprintf(registry, sizeof(registry), "%s/pids", run_dir);
	return proxy_suite();
}

/* Proxies a failed test left behind, then the run's directory. */
static void after(void)
{
	nh_registry_sweep(registry);
	if (nh_sh(NULL, NULL, NULL, "rm -rf -- '%s'", run_dir))
		fprintf(stderr, "test_proxy: cannot remove %s\n", run_dir);
}

const struct nh_suite nh_suite = {
	.make = make,
	.env = { "TPIN_INIT", "TPIN_PROXY" },
	.after = after,
};
