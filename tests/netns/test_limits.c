// SPDX-License-Identifier: MIT
/*
 * Limits and bad input (issue 6), against the real tpin-proxy in a pod
 * namespace behind the real tpin-init, with tpin-soak's echo app on 9081:
 *  - a file limit of 256 and 1,000 clients: it serves what fits, refuses
 *    the rest with a close or reset (no client left hanging), recovers when
 *    they close, and never exits;
 *  - the admin endpoint given oversized, malformed and slow requests answers
 *    4xx or closes and stays up; it listens on loopback only;
 *  - the tpin table deleted or flushed under the running proxy: readiness
 *    fails within a second and tpin-init --check exits 1.
 * TPIN_INIT, TPIN_PROXY and TPIN_SOAK (set by meson) name the binaries.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"

#define ECHO_PORT 9081
#define ADMIN	  15000
#define WAIT_MS	  3000
#define NCLIENTS  1000
#define FD_LIMIT  256

static const char *tpin_init, *tpin_proxy, *tpin_soak;
static struct nh_pair pair;
static char out_path[64];
static pid_t app_pid = -1, proxy_pid = -1;
static rlim_t proxy_nofile; /* 0: inherit */

/* Sends all of buf, as long as it takes; fails the test on an error. */
static void write_all(int fd, const void *buf, size_t len)
{
	int ret = nh_send_all(fd, buf, len, -1);

	ck_assert_msg(!ret, "send: %s", strerror(-ret));
}

/* One request to the admin port in the pod; the status code, 0 when closed unanswered. */
static int admin_status(const char *path)
{
	char req[256], buf[4096];
	int fd = nh_connect(pair.pod, "127.0.0.1", ADMIN, WAIT_MS), code = -1;
	ssize_t n;

	if (fd < 0)
		return fd;
	snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\n\r\n", path);
	write_all(fd, req, strlen(req));
	n = nh_read_eof(fd, buf, sizeof(buf), WAIT_MS);
	close(fd);
	if (n < 0)
		return (int)n;
	if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1)
		code = 0;
	return code;
}

static bool proxy_alive(int *ws)
{
	return waitpid(proxy_pid, ws, WNOHANG) == 0;
}

static void install(void)
{
	char *err = NULL;
	int ret = nh_sh(NULL, NULL, &err, "%s --netns %s", tpin_init, pair.pod);

	ck_assert_msg(ret == 0, "tpin-init exited %d: %s", ret, err);
	free(err);
}

static int exec_app(void *arg)
{
	execl(tpin_soak, tpin_soak, "app", "9081", (char *)NULL);
	return 127;
}

/* App, then proxy; returns once the admin endpoint answers /ready with 200. */
static void start(void)
{
	/*
	 * Every client comes from one address: no per-source cap, so the
	 * descriptors, not the fairness between sources, are what runs out.
	 */
	struct nh_exec e = { .out = out_path,
			     .nofile = proxy_nofile,
			     .argv = { tpin_proxy, "--log-file", "/dev/null", "--concurrency", "2",
				       "--max-connections-per-source", "0", NULL } };
	long long deadline = nh_now_ms() + 10000;
	int ws;

	install();
	app_pid = nh_spawn(pair.pod, exec_app, NULL);
	ck_assert_msg(app_pid > 0, "%s", nh_err());
	proxy_pid = nh_spawn(pair.pod, nh_exec_logged, &e);
	ck_assert_msg(proxy_pid > 0, "%s", nh_err());
	while (admin_status("/ready") != 200) {
		ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x) before ready", ws);
		ck_assert_msg(nh_now_ms() < deadline, "tpin-proxy not ready within 10 s");
		nh_sleep_ms(50);
	}
}

static void setup(void)
{
	snprintf(out_path, sizeof(out_path), "/tmp/tpt-limits-%d.out", (int)getpid());
	proxy_nofile = 0;
	ck_assert_msg(nh_pair_new(&pair, "lm") == 0, "%s", nh_err());
}

static void teardown(void)
{
	if (proxy_pid > 0)
		nh_reap(proxy_pid, SIGKILL);
	if (app_pid > 0)
		nh_reap(app_pid, SIGKILL);
	proxy_pid = app_pid = -1;
	nh_cleanup();
	unlink(out_path);
}

/* ---- the file limit ------------------------------------------------------ */

/* What came back for the byte sent: 1 echoed, 0 closed or reset, -1 nothing yet. */
static int echo_outcome(int fd)
{
	char b;
	ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT);

	if (n == 1)
		return b == 'x';
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return -1;
	return 0;
}

/*
 * 1,000 clients against a proxy limited to 256 descriptors: each gets its
 * byte echoed or a close/reset, none is left hanging; the proxy never exits;
 * once they are gone new clients are served again.
 */
START_TEST(test_fd_limit)
{
	static int fd[NCLIENTS], phase[NCLIENTS],
		res[NCLIENTS]; /* phase 0 connecting, 1 sent, 2 done */
	long long t0, deadline;
	int served = 0, refused = 0, pending, ws;

	proxy_nofile = FD_LIMIT;
	start();
	for (int i = 0; i < NCLIENTS; i++) {
		fd[i] = nh_connect_start(pair.client, NH_POD4, ECHO_PORT);
		ck_assert_msg(fd[i] >= 0, "client %d: %s", i, nh_err());
		phase[i] = 0;
	}
	/* SYNs beyond the backlog are retried by the kernel (1, 3, 7 s later). */
	t0 = nh_now_ms();
	deadline = t0 + 25000;
	do {
		pending = 0;
		for (int i = 0; i < NCLIENTS; i++) {
			int ret;

			if (phase[i] == 0) {
				ret = nh_connect_wait(fd[i], 0);
				if (ret == -ETIMEDOUT) {
					pending++;
					continue;
				}
				if (ret) {
					res[i] = 0; /* reset or refused at connect */
					phase[i] = 2;
					continue;
				}
				if (send(fd[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
					res[i] = 0;
					phase[i] = 2;
					continue;
				}
				phase[i] = 1;
			}
			if (phase[i] == 1) {
				ret = echo_outcome(fd[i]);
				if (ret < 0) {
					pending++;
					continue;
				}
				res[i] = ret;
				phase[i] = 2;
			}
		}
		ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x) under 1,000 clients", ws);
		if (pending)
			nh_sleep_ms(50);
	} while (pending && nh_now_ms() < deadline);
	for (int i = 0; i < NCLIENTS; i++) {
		served += phase[i] == 2 && res[i] == 1;
		refused += phase[i] == 2 && res[i] == 0;
	}
	ck_assert_msg(!pending,
		      "%d of %d clients neither served nor refused after %lld ms (%d served, %d "
		      "refused)",
		      pending, NCLIENTS, nh_now_ms() - t0, served, refused);
	/* Two descriptors a connection: about (256 - its own) / 2 fit. */
	ck_assert_msg(served >= 64, "only %d served under a limit of %d", served, FD_LIMIT);
	ck_assert_msg(served < NCLIENTS, "all %d served: the limit did not apply", served);
	fprintf(stderr, "test_fd_limit: %d served, %d refused in %lld ms\n", served, refused,
		nh_now_ms() - t0);

	/* They leave; new clients are served again, the proxy still runs. */
	for (int i = 0; i < NCLIENTS; i++)
		close(fd[i]);
	nh_sleep_ms(500);
	for (int i = 0; i < 20; i++) {
		struct pollfd pfd = { .events = POLLIN };
		char b = 0;
		int c = nh_connect(pair.client, NH_POD4, ECHO_PORT, WAIT_MS);

		ck_assert_msg(c >= 0, "new client %d after the storm: %s", i, nh_err());
		write_all(c, "x", 1);
		pfd.fd = c;
		ck_assert_msg(poll(&pfd, 1, WAIT_MS) == 1 && recv(c, &b, 1, 0) == 1 && b == 'x',
			      "new client %d after the storm not echoed", i);
		close(c);
	}
	ck_assert_int_eq(admin_status("/ready"), 200);
	ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x)", ws);
}
END_TEST

/* ---- the admin endpoint -------------------------------------------------- */

/* Sends what the server takes of req, then expects a 4xx or a close. */
static void expect_refused(const char *what, const char *req, size_t len)
{
	char buf[512];
	int fd = nh_connect(pair.pod, "127.0.0.1", ADMIN, WAIT_MS), code = 0;
	size_t done = 0;
	ssize_t n;

	ck_assert_msg(fd >= 0, "%s: connect: %s", what, nh_err());
	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };

		if (poll(&pfd, 1, WAIT_MS) != 1)
			break;
		n = send(fd, req + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n <= 0)
			break; /* the server stopped taking it: fine, see what it said */
		done += (size_t)n;
	}
	n = nh_read_eof(fd, buf, sizeof(buf), 8000);
	close(fd);
	ck_assert_msg(n != -ETIMEDOUT, "%s: neither answered nor closed within 8 s", what);
	if (n > 0) {
		ck_assert_msg(sscanf(buf, "HTTP/1.%*d %d", &code) == 1 && code >= 400 && code < 500,
			      "%s: answered \"%.60s\", want 4xx or a close", what, buf);
	}
}

START_TEST(test_admin_bad_input)
{
	static char big[100 * 1024];
	static const struct {
		const char *what, *req;
	} bad[] = {
		{ "no method", "\r\n\r\n" },
		{ "garbage", "BLAH BLAH BLAH BLAH\r\n\r\n" },
		{ "no version", "GET /ready\r\n\r\n" },
		{ "bad version", "GET /ready HTTP/9.9\r\n\r\n" },
		{ "header without colon", "GET /ready HTTP/1.1\r\nnocolon\r\n\r\n" },
		{ "bare LF and NUL", "GET /\0ready HTTP/1.1\n\n" },
		{ "binary", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n" },
	};
	int slow[20], ws, c;
	long long t0;
	char *out = NULL;

	start();
	/* Oversized: a 100 KiB header. */
	memcpy(big, "GET /ready HTTP/1.1\r\nX-Big: ", 28);
	memset(big + 28, 'a', sizeof(big) - 28 - 4);
	memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
	expect_refused("100 KiB header", big, sizeof(big));
	/* A 64 KiB request line. */
	memcpy(big, "GET /", 5);
	memset(big + 5, 'p', 65536);
	memcpy(big + 5 + 65536, " HTTP/1.1\r\n\r\n", 13);
	expect_refused("64 KiB path", big, 5 + 65536 + 13);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_refused(bad[i].what, bad[i].req,
			       i == 5 ? sizeof("GET /\0ready HTTP/1.1\n\n") - 1
				      : strlen(bad[i].req));
	ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x)", ws);

	/* Slowloris: 20 requests that never finish; others are still answered. */
	for (int i = 0; i < 20; i++) {
		slow[i] = nh_connect(pair.pod, "127.0.0.1", ADMIN, WAIT_MS);
		ck_assert_msg(slow[i] >= 0, "slow %d: %s", i, nh_err());
		write_all(slow[i], "GET /ready HTTP/1.1\r\nX-Slow: ", 29);
	}
	t0 = nh_now_ms();
	ck_assert_int_eq(admin_status("/ready"), 200);
	/* One more trickles a byte every 250 ms; it must be cut off, not kept forever. */
	c = nh_connect(pair.pod, "127.0.0.1", ADMIN, WAIT_MS);
	ck_assert_msg(c >= 0, "%s", nh_err());
	write_all(c, "GET /ready HTTP/1.1\r\n", 21);
	for (int i = 0; i < 40; i++) {
		struct pollfd pfd = { .fd = c, .events = POLLIN };

		if (poll(&pfd, 1, 250) == 1)
			break; /* answered or closed */
		if (send(c, "a", 1, MSG_NOSIGNAL) != 1)
			break;
	}
	expect_refused("slowloris (tail)", "", 0); /* the endpoint still accepts */
	{
		char buf[256];
		ssize_t n = nh_read_eof(c, buf, sizeof(buf), 3000);

		ck_assert_msg(n != -ETIMEDOUT, "a trickling client was kept %lld ms",
			      nh_now_ms() - t0);
		if (n > 0)
			ck_assert_msg(strstr(buf, " 408 ") || strstr(buf, " 400 "),
				      "trickling client got \"%.40s\"", buf);
		close(c);
	}
	for (int i = 0; i < 20; i++) {
		char buf[256];
		ssize_t n = nh_read_eof(slow[i], buf, sizeof(buf), 8000);

		ck_assert_msg(n != -ETIMEDOUT, "slow request %d still open after %lld ms", i,
			      nh_now_ms() - t0);
		if (n > 0)
			ck_assert_msg(strstr(buf, " 408 "), "slow request %d got \"%.40s\"", i,
				      buf);
		close(slow[i]);
	}
	ck_assert_int_eq(admin_status("/ready"), 200);
	ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x)", ws);

	/*
	 * :15021 faces the pod's network: 100 connections from the client that
	 * never send a request hold at most 64 places; the rest are closed at
	 * once rather than each holding a descriptor for the request timeout.
	 */
	{
		int hold[100], cut = 0;

		for (int i = 0; i < 100; i++) {
			hold[i] = nh_connect(pair.client, NH_POD4, 15021, WAIT_MS);
			ck_assert_msg(hold[i] >= 0, "15021 connection %d: %s", i, nh_err());
		}
		nh_sleep_ms(500);
		for (int i = 0; i < 100; i++) {
			char b;
			ssize_t n = recv(hold[i], &b, 1, MSG_DONTWAIT);

			cut += n == 0 || (n < 0 && errno != EAGAIN);
		}
		ck_assert_msg(cut >= 30, "only %d of 100 idle :15021 connections closed early",
			      cut);
		for (int i = 0; i < 100; i++)
			close(hold[i]);
		ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x)", ws);
	}

	/* Loopback only: not from the client, not even on the pod's own address. */
	c = nh_connect(pair.client, NH_POD4, ADMIN, 1000);
	ck_assert_msg(c < 0, "15000 answered the client on " NH_POD4);
	c = nh_connect(pair.client, NH_POD6, ADMIN, 1000);
	ck_assert_msg(c < 0, "15000 answered the client on " NH_POD6);
	c = nh_connect(pair.pod, NH_POD4, ADMIN, 1000);
	ck_assert_msg(c == -ECONNREFUSED, "pod-local " NH_POD4 ":15000: %d, want refused", c);
	ck_assert_int_eq(nh_sh(pair.pod, &out, NULL, "ss -Hltn 'sport = :15000'"), 0);
	{
		int lines = 0;

		for (const char *p = out; (p = strstr(p, ":15000")); p++)
			lines++;
		ck_assert_msg(lines == 1 && strstr(out, "127.0.0.1:15000"),
			      "listeners on 15000: %s", out);
	}
	free(out);
}
END_TEST

/* ---- the table goes away ------------------------------------------------- */

/* Polls /ready every 100 ms for at most 1 s; the ms it took to fail, or -1. */
static long long ready_fails_within_1s(void)
{
	long long t0 = nh_now_ms();

	for (int i = 0; i <= 10; i++) {
		if (admin_status("/ready") != 200)
			return nh_now_ms() - t0;
		nh_sleep_ms(100);
	}
	return -1;
}

static void table_gone(const char *nft_cmd)
{
	char *err = NULL;
	long long ms;
	int ret, ws;

	start();
	ck_assert_int_eq(admin_status("/ready"), 200);
	ck_assert_int_eq(nh_sh(NULL, NULL, NULL, "%s --netns %s --check", tpin_init, pair.pod), 0);
	ret = nh_sh(pair.pod, NULL, &err, "nft %s", nft_cmd);
	ck_assert_msg(ret == 0, "nft %s: %s", nft_cmd, err);
	free(err);
	ms = ready_fails_within_1s();
	ck_assert_msg(ms >= 0, "/ready still 200 a second after `nft %s`", nft_cmd);
	ret = nh_sh(NULL, NULL, NULL, "%s --netns %s --check", tpin_init, pair.pod);
	ck_assert_msg(ret == 1, "tpin-init --check after `nft %s` exited %d, want 1", nft_cmd, ret);
	ck_assert_msg(proxy_alive(&ws), "tpin-proxy exited (0x%x)", ws);
	/* Reinstalled, it is ready again. */
	install();
	ck_assert_int_eq(admin_status("/ready"), 200);
}

START_TEST(test_table_deleted)
{
	table_gone("delete table inet tpin");
}
END_TEST

START_TEST(test_table_flushed)
{
	table_gone("flush table inet tpin");
}
END_TEST

static Suite *limits_suite(void)
{
	Suite *s = suite_create("netns_limits");
	TCase *tc = tcase_create("limits");

	tpin_init = getenv("TPIN_INIT");
	tpin_proxy = getenv("TPIN_PROXY");
	tpin_soak = getenv("TPIN_SOAK");
	/* 1,000 client sockets here. */
	nh_raise_nofile();
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fd_limit);
	tcase_add_test(tc, test_admin_bad_input);
	tcase_add_test(tc, test_table_deleted);
	tcase_add_test(tc, test_table_flushed);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = {
	.make = limits_suite,
	.env = { "TPIN_INIT", "TPIN_PROXY", "TPIN_SOAK" },
};
