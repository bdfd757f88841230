// SPDX-License-Identifier: MIT
/*
 * Configurations and flags (issue 9, items 5 and 6) and the shape of what
 * tpin sends (issue 12, its two defects): --preserve-source with readiness
 * among the intercepted ports or with excluded sources must work end to
 * end; bad --user values exit 2 before binding anything; a response
 * written in two parts must not wait on the client's delayed ACK (Nagle);
 * the app's FIN must travel with its last data. Segments are read with an
 * AF_PACKET capture on the client's link, so nothing depends on how fast
 * this machine is. The fixture (attack.h) runs the real tpin-init and
 * tpin-proxy in the pod.
 *
 * Each test failed on main at 826d08b; the figure is in its comment.
 */

#include <errno.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack.h"

/* ---- 5. configurations made to work ----------------------------------------- */

/*
 * --preserve-source with -b naming 15021 (readiness) among the app's
 * ports: readiness still answers from the network, v4 and v6, and the app
 * still sees the client. On main tpin-init accepted it and readiness timed
 * out (its replies were routed back into the proxy).
 */
START_TEST(test_preserve_readiness)
{
	char buf[1024];

	at_install("--preserve-source -b 9080,15021");
	at_app_start(0);
	at_proxy_start("--preserve-source", NULL);
	for (int i = 0; i < 2; i++) {
		const char *ip = i ? NH_POD6 : NH_POD4;
		int code = at_http(at_pair.client, NULL, ip, AT_READY,
				   "GET /healthz/ready HTTP/1.0\r\n\r\n", 2000, buf, sizeof(buf));

		ck_assert_msg(code == 200, "readiness on %s with -b 9080,15021: %d %s", ip, code,
			      code < 0 ? strerror(-code) : buf);
	}
	ck_assert_int_eq(at_http(at_pair.client, NULL, NH_POD4, AT_HTTP, "GET / HTTP/1.0\r\n\r\n",
				 2000, buf, sizeof(buf)),
			 200);
	ck_assert_msg(strstr(buf, "peer=" NH_CLIENT4 ":"), "app saw: %s", buf);
}
END_TEST

/*
 * --preserve-source with --exclude-sources naming the client: the excluded
 * client reaches the app directly (the app sees it, the proxy logs nothing
 * for it), v4 and v6. On main both timed out: the app's replies to an
 * excluded client were routed into the proxy.
 */
START_TEST(test_preserve_exclude_sources)
{
	char buf[1024];

	at_install("--preserve-source -b 9080 --exclude-sources " NH_CLIENT4 "/32," NH_CLIENT6
		   "/128");
	at_app_start(0);
	at_proxy_start("--preserve-source", NULL);
	for (int i = 0; i < 2; i++) {
		const char *ip = i ? NH_POD6 : NH_POD4;
		int code = at_http(at_pair.client, NULL, ip, AT_HTTP, "GET / HTTP/1.0\r\n\r\n",
				   2000, buf, sizeof(buf));

		ck_assert_msg(code == 200, "excluded client to %s: %d %s", ip, code,
			      code < 0 ? strerror(-code) : buf);
	}
	ck_assert_int_eq(at_app_count("peer=" NH_CLIENT4 ":"), 1);
	ck_assert_int_eq(at_app_count("peer=[" NH_CLIENT6 "]:"), 1);
	ck_assert_int_eq(at_metric("tpin_connections_accepted_total{traffic=\"inbound\"}"), 0);
}
END_TEST

/* ---- 6. --user ---------------------------------------------------------------- */

/*
 * Out-of-range and unknown users exit 2 with a message naming the value,
 * before binding anything: the capture port is held here by a plain
 * listener, so a proxy that binds first fails differently (exit 1). On
 * main all four exited 1 on the held port, having bound first; with the
 * port free, -1 and 4294967295 ran as uid 0.
 */
START_TEST(test_user_bad)
{
	static const char *const bad[] = { "-1", "4294967295", "99999999999", "no-such-user" };
	char wrong[512] = "";
	int hold[2];

	hold[0] = nh_listen(at_pair.pod, "0.0.0.0", AT_CAPTURE, false);
	hold[1] = nh_listen(at_pair.pod, "::", AT_CAPTURE, false);
	ck_assert_msg(hold[0] >= 0 && hold[1] >= 0, "%s", nh_err());
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char *out = NULL, *err = NULL;
		int ret = nh_sh(at_pair.pod, &out, &err,
				"timeout 5 %s --log-file /dev/null --user '%s'", at_proxy_bin,
				bad[i]);

		if (ret != 2 || !strstr(err, bad[i]))
			snprintf(wrong + strlen(wrong), sizeof(wrong) - strlen(wrong),
				 " --user %s: exit %d, \"%.80s\";", bad[i], ret, err);
		free(out);
		free(err);
	}
	close(hold[0]);
	close(hold[1]);
	ck_assert_msg(!*wrong, "want exit 2 naming the value:%s", wrong);
}
END_TEST

/* ---- issue 12: what the segments look like ------------------------------------ */

/* Client port of a connected socket. */
static uint16_t local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	ck_assert(!getsockname(fd, (struct sockaddr *)&ss, &len));
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

#define SPLIT_ROUNDS 10
#define SPLIT_LEN    49 /* the /split answer: 39 bytes of header, 10 of body */

/*
 * Keep-alive requests for /split on one connection from @ns to ip:port, the
 * client delaying its ACKs (TCP_QUICKACK off before each request, as an
 * interactive peer's ACKs are delayed). For each answer, from a capture on
 * the client's link: did its second part leave while the first was still
 * unacknowledged? Returns how many answers did (an answer in one segment
 * counts too: nothing waited).
 */
static int split_unheld(const char *ip, uint16_t port)
{
	static const char req[] = "GET /split HTTP/1.1\r\nHost: x\r\n\r\n";
	int cap = at_cap_open(at_pair.client, "eth0"), c, unheld = 0;
	uint16_t me;
	char buf[SPLIT_LEN];

	c = nh_connect(at_pair.client, ip, port, AT_WAIT_MS);
	ck_assert_msg(c >= 0, "%s", nh_err());
	me = local_port(c);
	for (int r = 0; r < SPLIT_ROUNDS; r++) {
		struct at_seg s;
		int zero = 0, parts = 0;
		uint32_t first_end = 0;
		bool acked = false, ok = false;

		setsockopt(c, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
		at_write_all(c, req, strlen(req));
		ck_assert_int_eq(nh_read_full(c, buf, SPLIT_LEN, AT_WAIT_MS), SPLIT_LEN);
		/* The answer's segments in order; ACKs of it are the client's. */
		while (parts < 2 && at_cap_next(cap, &s, 300) > 0) {
			if (s.dport != me && s.sport != me)
				continue;
			if (!s.out && s.len) {
				if (!parts++) {
					first_end = s.seq + s.len;
					if (s.len >= SPLIT_LEN) {
						ok = true;
						break;
					}
				} else {
					ok = !acked;
				}
			} else if (s.out && parts == 1 && (int32_t)(s.ack - first_end) >= 0) {
				acked = true;
			}
		}
		unheld += ok;
		/* Drain what is left of this round's segments. */
		while (at_cap_next(cap, &s, 50) > 0)
			;
	}
	close(c);
	close(cap);
	return unheld;
}

/*
 * The app answers in two small writes 5 ms apart (TCP_NODELAY on its own
 * socket). Through tpin the second part must reach the client without
 * waiting for the client's (delayed) ACK of the first. Control: directly
 * (the app's port excluded) 10 of 10 answers are unheld. On main, through
 * tpin, 0 of 10: every second part waited for the client's ACK (Nagle on
 * the proxy's socket).
 */
START_TEST(test_nodelay)
{
	int direct, via;

	at_install("-d 9080");
	at_app_start(0);
	at_proxy_start(NULL);
	direct = split_unheld(NH_POD4, AT_HTTP);
	ck_assert_msg(direct >= SPLIT_ROUNDS - 1, "control (no proxy): only %d of %d unheld",
		      direct, SPLIT_ROUNDS);
	at_install("");
	via = split_unheld(NH_POD4, AT_HTTP);
	via += split_unheld(NH_POD6, AT_HTTP);
	ck_assert_int_eq(at_app_count("peer=127.0.0.6:"), 1);
	ck_assert_int_eq(at_app_count("peer=[::6]:"), 1);
	ck_assert_msg(via >= 2 * SPLIT_ROUNDS - 2,
		      "through tpin %d of %d two-part answers reached the client without waiting "
		      "for its ACK (directly: %d of %d)",
		      via, 2 * SPLIT_ROUNDS, direct, SPLIT_ROUNDS);
}
END_TEST

/*
 * @n connections from the client, each asking /close (the app answers and
 * closes at once, corked: its FIN leaves in the segment with the data).
 * Returns how many answers arrived with the FIN on the last data segment.
 */
static int fin_with_data(const char *ip, int n)
{
	int cap = at_cap_open(at_pair.client, "eth0"), with = 0;
	char buf[512];

	for (int i = 0; i < n; i++) {
		int c = nh_connect(at_pair.client, ip, AT_HTTP, AT_WAIT_MS);
		struct at_seg s;
		bool last_fin = false;
		uint16_t me;
		ssize_t got;

		ck_assert_msg(c >= 0, "%s", nh_err());
		me = local_port(c);
		at_write_all(c, "GET /close HTTP/1.0\r\n\r\n", 23);
		got = nh_read_eof(c, buf, sizeof(buf), AT_WAIT_MS);
		ck_assert_msg(got > 0 && strstr(buf, "peer="), "answer %d: %zd", i, got);
		close(c);
		while (at_cap_next(cap, &s, 20) > 0) {
			if (s.out || s.dport != me)
				continue;
			if (s.len)
				last_fin = s.flags & AT_FIN;
		}
		with += last_fin;
	}
	close(cap);
	return with;
}

#define FIN_N 200

/*
 * The app answers and closes at once (one write, its FIN in the same
 * segment). Through tpin the client must get the FIN in the segment with
 * the last data for at least 90% of 200 answers. Control: directly (the
 * port excluded) 20 of 20. On main, through tpin: 0 of 200 (the FIN
 * followed in a segment of its own).
 */
START_TEST(test_fin_with_data)
{
	int direct, via;

	at_install("-d 9080");
	at_app_start(0);
	at_proxy_start(NULL);
	direct = fin_with_data(NH_POD4, 20);
	ck_assert_msg(direct >= 18, "control (no proxy): FIN with the data in %d of 20", direct);
	at_install("");
	via = fin_with_data(NH_POD4, FIN_N / 2) + fin_with_data(NH_POD6, FIN_N / 2);
	ck_assert_int_eq(at_app_count("peer=127.0.0.6:"), FIN_N / 2);
	ck_assert_int_eq(at_app_count("peer=[::6]:"), FIN_N / 2);
	ck_assert_msg(via * 10 >= FIN_N * 9,
		      "through tpin the FIN came with the last data in %d of %d answers "
		      "(directly: %d of 20)",
		      via, FIN_N, direct);
}
END_TEST

static Suite *make(void)
{
	Suite *s = suite_create("netns_attack_cli");

	AT_CASE(s, test_preserve_readiness, 60);
	AT_CASE(s, test_preserve_exclude_sources, 60);
	AT_CASE(s, test_user_bad, 60);
	AT_CASE(s, test_nodelay, 60);
	AT_CASE(s, test_fin_with_data, 90);
	return s;
}

AT_SUITE(make);
