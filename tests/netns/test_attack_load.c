// SPDX-License-Identifier: MIT
/*
 * Exhaustion and readiness attacks on a pod behind tpin (issue 9, items 3,
 * 4, 8 and 10): connections held open on the readiness port, clients that
 * vanish, one source holding every slot, a proxy near its descriptor limit,
 * --preserve-source under load and with its port choice forced onto a live
 * client's port, and readiness that must notice half a ruleset. The fixture
 * (attack.h) runs the real tpin-init and tpin-proxy in the pod; verdicts are
 * read from outside the proxy.
 *
 * Each test failed on main at 826d08b; the figure is in its comment.
 */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack.h"

#define CLIENT4B  "198.51.100.3" /* a second address of the client namespace */
#define READY_REQ "GET /healthz/ready HTTP/1.0\r\n\r\n"

static void add_second_address(void)
{
	char *err = NULL;
	int ret = nh_sh(at_pair.client, NULL, &err, "ip addr add " CLIENT4B "/24 dev eth0");

	ck_assert_msg(!ret, "ip addr add: %s", err);
	free(err);
}

/* One echo round trip of @c within @ms: true when the byte came back. */
static bool echoes(int c, int ms)
{
	char b = 0;

	if (send(c, "e", 1, MSG_NOSIGNAL) != 1)
		return false;
	return nh_read_full(c, &b, 1, ms) == 1 && b == 'e';
}

/* Readiness from @src to the pod within @ms: the status code, or -errno. */
static int ready_from(const char *src, int ms, long long *took)
{
	char buf[1024];
	long long t0 = nh_now_ms();
	int code = at_http(at_pair.client, src, NH_POD4, AT_READY, READY_REQ, ms, buf, sizeof(buf));

	*took = nh_now_ms() - t0;
	return code;
}

/* /metrics on the loopback admin port within @ms: the status code, or -errno. */
static int metrics_within(int ms, long long *took)
{
	static char buf[1 << 16];
	long long t0 = nh_now_ms();
	int code = at_http(at_pair.pod, NULL, "127.0.0.1", AT_ADMIN,
			   "GET /metrics HTTP/1.0\r\n\r\n", ms, buf, sizeof(buf));

	*took = nh_now_ms() - t0;
	return code;
}

/* ---- 3. readiness under held connections ----------------------------------- */

#define HELD 200

/*
 * 200 connections held open on :15021 from the client's address (half idle,
 * half slow: a request line and no end of headers). Readiness asked from the
 * network, from another address and from the same one, answers 200 within a
 * second, and so does /metrics on the loopback admin port. On main (one
 * budget of 64 requests in flight for both ports, 5 s each) 9 of 9 checks
 * failed: readiness from either address was reset at once, /metrics too.
 */
START_TEST(test_readiness_held_open)
{
	static int fd[HELD];
	int connected = 0, bad = 0, code;
	char why[256] = "";
	long long took;

	add_second_address();
	at_install("");
	at_proxy_start(NULL);
	for (int i = 0; i < HELD; i++) {
		fd[i] = at_connect_from_start(at_pair.client, NH_CLIENT4, 0, NH_POD4, AT_READY);
		ck_assert_msg(fd[i] >= 0, "held %d: %s", i, strerror(-fd[i]));
	}
	for (int i = 0; i < HELD; i++) {
		if (nh_connect_wait(fd[i], i ? 50 : 2000))
			continue;
		connected++;
		if (i % 2)
			send(fd[i], "GET /healthz/ready HTTP/1.1\r\n", 29, MSG_NOSIGNAL);
	}
	nh_sleep_ms(300);
	for (int round = 0; round < 3; round++) {
		const char *src[2] = { CLIENT4B, NH_CLIENT4 };

		for (int j = 0; j < 2; j++) {
			code = ready_from(src[j], 1000, &took);
			if (code != 200 && !*why)
				snprintf(why, sizeof(why), "readiness from %s: %d in %lld ms",
					 src[j], code, took);
			bad += code != 200;
		}
		code = metrics_within(1000, &took);
		if (code != 200 && !*why)
			snprintf(why, sizeof(why), "/metrics: %d in %lld ms", code, took);
		bad += code != 200;
		nh_sleep_ms(500);
	}
	for (int i = 0; i < HELD; i++)
		close(fd[i]);
	ck_assert_msg(!bad, "%d of 9 checks failed with %d connections held on :15021 (first: %s)",
		      bad, connected, why);
}
END_TEST

/* ---- 4. exhaustion ------------------------------------------------------------ */

/* The proxy's session list has a session to @orig. */
static bool listed(const char *orig)
{
	char *body = at_admin_get("/connections"), needle[96];
	bool found;

	snprintf(needle, sizeof(needle), "original_dst=%s ", orig);
	found = strstr(body, needle);
	free(body);
	return found;
}

/*
 * A client that vanishes (its packets dropped in its own namespace, then
 * closed: no FIN or RST ever arrives) is found by the proxy's keepalive
 * (--keepalive 1s,1s,2): both legs closed within a few seconds, the app
 * sees its end, /connections no longer lists it. On main tpin-proxy has no
 * --keepalive (exit 2); without it the session was still listed as
 * relaying 20 s later, and the app never saw an end.
 */
START_TEST(test_vanished_client)
{
	char *err = NULL;
	long long t0;
	int c, ret;

	at_install("");
	at_app_start(0);
	at_proxy_start("--keepalive", "1s,1s,2", NULL);
	c = nh_connect(at_pair.client, NH_POD4, AT_ECHO, AT_WAIT_MS);
	ck_assert_msg(c >= 0, "%s", nh_err());
	ck_assert(echoes(c, AT_WAIT_MS));
	ck_assert(listed(NH_POD4 ":9081"));
	ret = nh_sh(at_pair.client, NULL, &err,
		    "nft add table inet gone && "
		    "nft add chain inet gone in '{ type filter hook input priority 0; }' && "
		    "nft add chain inet gone out '{ type filter hook output priority 0; }' && "
		    "nft add rule inet gone in tcp sport 9081 drop && "
		    "nft add rule inet gone out tcp dport 9081 drop");
	ck_assert_msg(!ret, "nft: %s", err);
	free(err);
	close(c);
	t0 = nh_now_ms();
	while (!at_app_count("eof from=127.0.0.6:") || listed(NH_POD4 ":9081")) {
		ck_assert_msg(nh_now_ms() - t0 < 10000,
			      "10 s after the client vanished: app saw its end: %s; listed: %s",
			      at_app_count("eof from=") ? "yes" : "no",
			      listed(NH_POD4 ":9081") ? "yes" : "no");
		nh_sleep_ms(200);
	}
}
END_TEST

#define PER_SOURCE_MAX 40

/*
 * With --max-connections 40, one source holding 40 idle connections does
 * not shut out another source, which is served at once. On main the 40
 * took every slot: the second source was reset (refused_limit).
 */
START_TEST(test_per_source_limit)
{
	static int fd[PER_SOURCE_MAX];
	char b = 0;
	int c;

	add_second_address();
	at_install("");
	at_app_start(0);
	at_proxy_start("--max-connections", "40", NULL);
	/* The hog's connections beyond its share may be refused: so be it. */
	for (int i = 0; i < PER_SOURCE_MAX; i++)
		fd[i] = at_connect_from(at_pair.client, NH_CLIENT4, 0, NH_POD4, AT_ECHO,
					AT_WAIT_MS);
	nh_sleep_ms(500);
	c = at_connect_from(at_pair.client, CLIENT4B, 0, NH_POD4, AT_ECHO, 1000);
	ck_assert_msg(
		c >= 0, "the other source could not connect: %s (refused_limit: %lld)",
		strerror(-c),
		at_metric("tpin_connections_refused_total{traffic=\"inbound\",reason=\"limit\"}"));
	send(c, "y", 1, MSG_NOSIGNAL);
	ck_assert_msg(
		nh_read_full(c, &b, 1, 1000) == 1 && b == 'y',
		"the other source was not served while one source held 40 connections "
		"(refused_limit: %lld)",
		at_metric("tpin_connections_refused_total{traffic=\"inbound\",reason=\"limit\"}"));
	close(c);
	for (int i = 0; i < PER_SOURCE_MAX; i++)
		if (fd[i] >= 0)
			close(fd[i]);
}
END_TEST

#define FD_LIMIT 128
#define BURST	 300

/*
 * The proxy under a descriptor limit of 128, one client opening far more
 * connections than fit: the established ones keep echoing, the new ones are
 * refused promptly (reset or close within 2 s, no hang), readiness from the
 * network and /metrics answer within a second. On main the new connections
 * were served or refused in time (0 hung, 30 served), but readiness from
 * the network failed: 503 ("a listener is down": the capture listener
 * closes for 100 ms at each EMFILE) in one run, reset in another.
 */
START_TEST(test_fd_headroom)
{
	/* state: 0 connecting, 1 asked, 2 refused (reset, close), 3 served */
	static int est[64], fd[BURST], state[BURST];
	int n_est = 0, hung = 0, served = 0, code;
	long long t0, took;
	char why[200] = "";

	add_second_address();
	at_install("");
	at_app_start(0);
	at_proxy_nofile = FD_LIMIT;
	at_proxy_start(NULL);
	while (n_est < 20) {
		int c = at_connect_from(at_pair.client, NH_CLIENT4, 0, NH_POD4, AT_ECHO, 1000);

		if (c < 0)
			break;
		if (!echoes(c, 1000)) {
			close(c);
			break;
		}
		est[n_est++] = c;
	}
	ck_assert_msg(n_est >= 5, "only %d connections established under %d descriptors", n_est,
		      FD_LIMIT);
	for (int i = 0; i < BURST; i++) {
		fd[i] = at_connect_from_start(at_pair.client, NH_CLIENT4, 0, NH_POD4, AT_ECHO);
		ck_assert_msg(fd[i] >= 0, "burst %d: %s", i, strerror(-fd[i]));
		state[i] = 0;
	}
	t0 = nh_now_ms();
	do {
		int pending = 0;

		for (int i = 0; i < BURST; i++) {
			char b;
			ssize_t n;
			int ret;

			if (state[i] == 0) {
				ret = nh_connect_wait(fd[i], 0);
				if (ret && ret != -ETIMEDOUT) {
					state[i] = 2;
				} else if (!ret) {
					send(fd[i], "b", 1, MSG_NOSIGNAL);
					state[i] = 1;
				}
			}
			if (state[i] == 1) {
				n = recv(fd[i], &b, 1, MSG_DONTWAIT);
				if (n == 1)
					state[i] = 3;
				else if (n == 0 || errno != EAGAIN)
					state[i] = 2;
			}
			pending += state[i] < 2;
		}
		if (!pending)
			break;
		nh_sleep_ms(20);
	} while (nh_now_ms() - t0 < 2000);
	for (int i = 0; i < BURST; i++) {
		hung += state[i] < 2;
		served += state[i] == 3;
	}
	code = ready_from(CLIENT4B, 1000, &took);
	if (code != 200)
		snprintf(why, sizeof(why), "readiness %d in %lld ms", code, took);
	ck_assert_msg(!hung && code == 200,
		      "under %d descriptors, of %d new connections %d hung 2 s (%d served); %s",
		      FD_LIMIT, BURST, hung, served, why);
	code = metrics_within(1000, &took);
	ck_assert_msg(code == 200, "/metrics: %d in %lld ms", code, took);
	for (int i = 0; i < n_est; i++)
		ck_assert_msg(echoes(est[i], 1000), "established connection %d stopped", i);
	for (int i = 0; i < BURST; i++)
		close(fd[i]);
	for (int i = 0; i < n_est; i++)
		close(est[i]);
}
END_TEST

/* ---- 8. --preserve-source port collisions -------------------------------------- */

static const char *GET_CLOSE = "GET / HTTP/1.0\r\n\r\n";

/*
 * With the pod's port range narrowed to one port P, a client connecting
 * from P is served: the proxy must not pick P for its upstream socket,
 * which already names the client's own connection. On main the v4 client
 * got no answer within 3 s: the upstream SYN met the client's own
 * connection in the pod and stalled (the issue saw EADDRNOTAVAIL).
 */
START_TEST(test_preserve_port_forced)
{
	char buf[512];

	at_install("-b 9080 --preserve-source");
	at_app_start(0);
	at_proxy_start("--preserve-source", NULL);
	AT_OK(nh_sysctl_save(at_pair.pod, "net.ipv4.ip_local_port_range"));
	AT_OK(nh_sysctl_write(at_pair.pod, "net.ipv4.ip_local_port_range", "20000 20000"));
	for (int i = 0; i < 2; i++) {
		const char *ip = i ? NH_POD6 : NH_POD4;
		int c = at_connect_from(at_pair.client, NULL, 20000, ip, AT_HTTP, AT_WAIT_MS);
		ssize_t n;

		ck_assert_msg(c >= 0, "connect from port 20000 to %s: %s", ip, strerror(-c));
		at_write_all(c, GET_CLOSE, strlen(GET_CLOSE));
		n = nh_read_eof(c, buf, sizeof(buf), AT_WAIT_MS);
		close(c);
		ck_assert_msg(n > 0 && strstr(buf, "peer="),
			      "a client on the pod's only ephemeral port (20000) to %s: %zd %s", ip,
			      n, n < 0 ? strerror((int)-n) : buf);
	}
	ck_assert_int_eq(at_app_count("peer=127.0.0.6"), 0);
}
END_TEST

#define LOAD_TOTAL 3000
#define LOAD_CONC  50
#define LOAD_MS	   3000
#define LOAD_HELD  200

struct slot {
	int fd;
	long long t0;
	bool sent;
	size_t got;
	char buf[512];
};

/*
 * A client port chosen at random in the pod's ephemeral range, as a client
 * on another host chooses it: independently of the pod. (Left to the
 * kernel, a client namespace on this host shares the pod's port-offset
 * table and hands out ports in step with the proxy's, which hides the
 * collision: 0 of 3,000 on main.)
 */
static int random_port_connect(const char *ip)
{
	for (;;) {
		uint16_t port = (uint16_t)(32768 + random() % 28232);
		int fd = at_connect_from_start(at_pair.client, NULL, port, ip, AT_HTTP);

		/* Taken here (live, or in TIME_WAIT toward the pod): another. */
		if (fd != -EADDRINUSE && fd != -EADDRNOTAVAIL) {
			ck_assert_msg(fd >= 0, "connect from port %u: %s", port, strerror(-fd));
			return fd;
		}
	}
}

/*
 * About 3,000 connections, 50 at a time, half v4 and half v6, through
 * --preserve-source, beside a pool of 200 connections held open (as
 * redis-benchmark's clients hold theirs): every one completes a request and
 * its answer within 3 s, none is reset, and the pool still answers. The
 * held connections are what the proxy's port choice collides with. On
 * main 25 and 23 of 3,000 stalled in two runs (no reset within 3 s: the
 * proxy's connect timeout is 10 s).
 */
START_TEST(test_preserve_load)
{
	static struct slot sl[LOAD_CONC];
	static int held[LOAD_HELD];
	int started = 0, done = 0, resets = 0, stalls = 0, wrong = 0, pool_bad = 0;
	long long deadline = nh_now_ms() + 90000;
	char buf[512];

	at_install("-b 9080 --preserve-source");
	at_app_start(0);
	at_proxy_start("--preserve-source", NULL);
	srandom((unsigned)nh_now_ms());
	for (int i = 0; i < LOAD_HELD; i++) {
		held[i] = random_port_connect(i % 2 ? NH_POD6 : NH_POD4);
		ck_assert_msg(!nh_connect_wait(held[i], AT_WAIT_MS), "held %d: %s", i, nh_err());
	}
	for (int i = 0; i < LOAD_CONC; i++)
		sl[i].fd = -1;
	while (done < LOAD_TOTAL && nh_now_ms() < deadline) {
		struct pollfd pfd[LOAD_CONC];

		for (int i = 0; i < LOAD_CONC; i++) {
			struct slot *s = &sl[i];

			if (s->fd < 0 && started < LOAD_TOTAL) {
				s->fd = random_port_connect(started % 2 ? NH_POD6 : NH_POD4);
				s->t0 = nh_now_ms();
				s->sent = false;
				s->got = 0;
				started++;
			}
			pfd[i].fd = s->fd;
			pfd[i].events = s->fd < 0 ? 0 : s->sent ? POLLIN : POLLOUT;
		}
		poll(pfd, LOAD_CONC, 50);
		for (int i = 0; i < LOAD_CONC; i++) {
			struct slot *s = &sl[i];
			bool end = false;

			if (s->fd < 0)
				continue;
			if (!s->sent && (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
				if (send(s->fd, GET_CLOSE, strlen(GET_CLOSE), MSG_NOSIGNAL) < 0) {
					resets++;
					end = true;
				}
				s->sent = true;
			} else if (s->sent && pfd[i].revents) {
				ssize_t n = recv(s->fd, s->buf + s->got,
						 sizeof(s->buf) - 1 - s->got, MSG_DONTWAIT);

				if (n > 0) {
					s->got += (size_t)n;
				} else if (n == 0) {
					s->buf[s->got] = '\0';
					wrong += !strstr(s->buf, "peer=" NH_CLIENT4) &&
						 !strstr(s->buf, "peer=[" NH_CLIENT6);
					end = true;
				} else if (errno != EAGAIN) {
					resets++;
					end = true;
				}
			}
			if (!end && nh_now_ms() - s->t0 > LOAD_MS) {
				stalls++;
				end = true;
			}
			if (end) {
				close(s->fd);
				s->fd = -1;
				done++;
			}
		}
	}
	for (int i = 0; i < LOAD_HELD; i++) {
		ssize_t n;

		at_write_all(held[i], GET_CLOSE, strlen(GET_CLOSE));
		n = nh_read_eof(held[i], buf, sizeof(buf), AT_WAIT_MS);
		pool_bad += n <= 0 || !strstr(buf, "peer=");
		close(held[i]);
	}
	ck_assert_msg(done == LOAD_TOTAL, "only %d of %d done in 90 s", done, LOAD_TOTAL);
	ck_assert_msg(!resets && !stalls && !wrong && !pool_bad,
		      "with --preserve-source, of %d connections (50 at a time, v4 and v6, %d "
		      "held open beside): %d reset, %d stalled over %d ms, %d answered with "
		      "another source; %d held connections failed",
		      LOAD_TOTAL, LOAD_HELD, resets, stalls, LOAD_MS, wrong, pool_bad);
}
END_TEST

/* ---- 10. readiness checks the whole ruleset; HEAD has no body ------------------ */

/* Bytes after the header block of a HEAD answer read to EOF: -1 if none came. */
static long head_body(const char *ns, const char *ip, uint16_t port, const char *path)
{
	char req[128], buf[4096], *end;
	int code;

	snprintf(req, sizeof(req), "HEAD %s HTTP/1.0\r\n\r\n", path);
	code = at_http(ns, NULL, ip, port, req, AT_WAIT_MS, buf, sizeof(buf));
	ck_assert_msg(code == 200, "HEAD %s: %d %s", path, code, buf);
	end = strstr(buf, "\r\n\r\n");
	ck_assert_msg(end, "HEAD %s: no end of headers: %s", path, buf);
	return (long)strlen(end + 4);
}

/*
 * Deleting only the IPv6 tproxy rule (by handle, the rest of the table
 * intact) makes readiness on :15021 fail within about a second; HEAD on
 * /ready and /healthz/ready answers headers only. On main readiness stayed
 * 200 for 1.5 s (and on), and HEAD returned the 6-byte body "ready\n".
 */
START_TEST(test_readiness_whole_ruleset)
{
	char *out = NULL, *err = NULL;
	long long t0, took;
	long body[2];
	int code, ret;

	at_install("");
	at_app_start(0);
	at_proxy_start(NULL);
	body[0] = head_body(at_pair.pod, "127.0.0.1", AT_ADMIN, "/ready");
	body[1] = head_body(at_pair.client, NH_POD4, AT_READY, "/healthz/ready");
	code = ready_from(NULL, 1000, &took);
	ck_assert_msg(code == 200, "readiness before: %d", code);
	ret = nh_sh(
		at_pair.pod, &out, &err,
		"nft -a list table inet tpin | awk '/^\\tchain /{c=$2} /tproxy ip6 to/{print c, "
		"$NF; exit}' | { read c h && [ -n \"$h\" ] && "
		"nft delete rule inet tpin $c handle $h && echo $c $h; }");
	ck_assert_msg(!ret, "deleting the IPv6 tproxy rule: %d %s %s", ret, out, err);
	free(out);
	free(err);
	t0 = nh_now_ms();
	while ((code = ready_from(NULL, 1000, &took)) == 200 && nh_now_ms() - t0 < 1500)
		nh_sleep_ms(100);
	ck_assert_msg(code == 503 && !body[0] && !body[1],
		      "IPv6 tproxy rule deleted: readiness %d after %lld ms (want 503); HEAD "
		      "bodies: /ready %ld bytes, /healthz/ready %ld bytes (want 0)",
		      code, nh_now_ms() - t0, body[0], body[1]);
}
END_TEST

static Suite *make(void)
{
	Suite *s = suite_create("netns_attack_load");

	AT_CASE(s, test_readiness_held_open, 60);
	AT_CASE(s, test_vanished_client, 60);
	AT_CASE(s, test_per_source_limit, 60);
	AT_CASE(s, test_fd_headroom, 60);
	AT_CASE(s, test_preserve_port_forced, 60);
	AT_CASE(s, test_preserve_load, 150);
	AT_CASE(s, test_readiness_whole_ruleset, 60);
	return s;
}

AT_SUITE(make);
