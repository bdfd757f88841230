// SPDX-License-Identifier: MIT
/*
 * End to end: a client and a pod namespace over a veth, the rules installed
 * in the pod by tpin-init, and a minimal transparent listener written here
 * standing in for the proxy. TPIN_INIT (set by meson) or argv[1] names the
 * binary under test.
 *
 * About 700 lines: thirteen cases over one namespace pair and one listener;
 * a case reads on its own, top to bottom.
 */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h */
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80 /* linux/netfilter_ipv6/ip6_tables.h */
#endif

#define CAPTURE	 15006
#define APP	 9080
#define EXCLUDED 15021

static const char *tpin_init;
static struct nh_pair pair;

#define NH_OK(call) ck_assert_msg((call) == 0, "%s: %s", #call, nh_err())

static void setup(void)
{
	NH_OK(nh_pair_new(&pair, "e2e"));
}

static void teardown(void)
{
	nh_cleanup();
}

static void install(const char *flags)
{
	char *err = NULL;
	int ret = nh_sh(NULL, NULL, &err, "%s --netns %s %s", tpin_init, pair.pod, flags);

	ck_assert_msg(ret == 0, "tpin-init --netns %s %s exited %d: %s", pair.pod, flags, ret, err);
	free(err);
}

static int listen_ok(const char *ip, uint16_t port, bool transparent)
{
	int fd = nh_listen(pair.pod, ip, port, transparent);

	ck_assert_msg(fd >= 0, "%s", nh_err());
	return fd;
}

static void local_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &sl), 0);
	nh_addr_str((struct sockaddr *)&ss, buf, len);
}

static void peer_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&ss, &sl), 0);
	nh_addr_str((struct sockaddr *)&ss, buf, len);
}

/* A few bytes each way, so established-flow packets are diverted too. */
static void exchange(int cfd, int afd)
{
	char buf[8] = "";

	ck_assert_int_eq(write(cfd, "ping", 4), 4);
	ck_assert_int_eq(read(afd, buf, sizeof(buf)), 4);
	ck_assert(!memcmp(buf, "ping", 4));
	ck_assert_int_eq(write(afd, "pong", 4), 4);
	ck_assert_int_eq(read(cfd, buf, sizeof(buf)), 4);
	ck_assert(!memcmp(buf, "pong", 4));
}

/*
 * Connects from the client to dst:port and asserts that `want` accepts it
 * (seeing local address want_local and the client's own address as peer)
 * while `other` (another listener, or -1) gets nothing.
 */
static void assert_reaches(const char *dst, uint16_t port, int want, int other,
			   const char *want_local, const char *client)
{
	char local[64], peer[64];
	int cfd, afd;

	cfd = nh_connect(pair.client, dst, port, 2000);
	ck_assert_msg(cfd >= 0, "connect %s port %u: %s", dst, port, nh_err());
	afd = nh_accept(want, 2000);
	ck_assert_msg(afd >= 0, "%s port %u: not accepted where expected: %s (other got %d)", dst,
		      port, nh_err(), other >= 0 ? nh_drain(other) : -1);
	local_str(afd, local, sizeof(local));
	ck_assert_msg(!strcmp(local, want_local), "%s port %u: getsockname %s, want %s", dst, port,
		      local, want_local);
	peer_str(afd, peer, sizeof(peer));
	ck_assert_msg(!strncmp(peer, client, strlen(client)), "peer %s, want %s", peer, client);
	exchange(cfd, afd);
	close(afd);
	close(cfd);
	if (other >= 0)
		ck_assert_int_eq(nh_drain(other), 0);
}

START_TEST(test_tproxy_intercepts)
{
	int l4, l6, x4, x6, a4, a6;

	install("");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	l6 = listen_ok("::", CAPTURE, true);
	x4 = listen_ok("0.0.0.0", EXCLUDED, false);
	x6 = listen_ok("::", EXCLUDED, false);
	a4 = listen_ok("0.0.0.0", APP, false);
	a6 = listen_ok("::", APP, false);
	/* The listener sees the original destination as its local address. */
	assert_reaches(NH_POD4, APP, l4, a4, NH_POD4 ":9080", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, APP, l6, a6, "[" NH_POD6 "]:9080", "[" NH_CLIENT6 "]:");
	/* An excluded port goes where it was sent. */
	assert_reaches(NH_POD4, EXCLUDED, x4, l4, NH_POD4 ":15021", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, EXCLUDED, x6, l6, "[" NH_POD6 "]:15021", "[" NH_CLIENT6 "]:");
	close(l4);
	close(l6);
	close(x4);
	close(x6);
	close(a4);
	close(a6);
}
END_TEST

/* n short connections from the client to dst:port, each accepted on lfd. */
static void connections(const char *dst, uint16_t port, int lfd, int n)
{
	for (int i = 0; i < n; i++) {
		int cfd = nh_connect(pair.client, dst, port, 2000), afd;

		ck_assert_msg(cfd >= 0, "connection %d: %s", i, nh_err());
		afd = nh_accept(lfd, 2000);
		ck_assert_msg(afd >= 0, "connection %d: %s", i, nh_err());
		close(cfd);
		close(afd);
	}
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

/* A connect to a closed port: refused, and how long that took (ms), or -1. */
static double refused_ms(const char *dst, uint16_t port)
{
	struct timespec a, b;
	int fd;

	clock_gettime(CLOCK_MONOTONIC, &a);
	fd = nh_connect(pair.client, dst, port, 2000);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (fd >= 0) {
		close(fd);
		return -1;
	}
	if (fd != -ECONNREFUSED)
		return -1;
	return (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
}

START_TEST(test_tproxy_no_conntrack)
{
	int l4, l6, a4, a6;

	install("");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	l6 = listen_ok("::", CAPTURE, true);
	a4 = listen_ok("0.0.0.0", APP, false);
	a6 = listen_ok("::", APP, false);
	connections(NH_POD4, APP, l4, 1000);
	connections(NH_POD6, APP, l6, 100);
	/* The resets for closed ports come from nft's reject, which tracks nothing either. */
	for (int i = 0; i < 100; i++)
		ck_assert_msg(refused_ms(i % 2 ? NH_POD6 : NH_POD4, APP + 1) >= 0,
			      "connection %d to a closed port was not refused", i);
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
	close(l4);
	close(l6);
	close(a4);
	close(a6);
}
END_TEST

/*
 * A connection to a port where nothing listens is refused, as it would be
 * without tpin (a kubelet tcpSocket probe must see a dead port dead), while
 * an open port still goes to the transparent listener, and the closed port's
 * SYN never reaches it.
 */
START_TEST(test_closed_port_refused)
{
	int l4, l6, a4, a6;
	double worst = 0;

	install("");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	l6 = listen_ok("::", CAPTURE, true);
	a4 = listen_ok("0.0.0.0", APP, false);
	a6 = listen_ok("::", APP, false);
	for (int i = 0; i < 20; i++) {
		double ms = refused_ms(i % 2 ? NH_POD6 : NH_POD4, APP + 1);

		ck_assert_msg(ms >= 0, "connection %d to closed port %u: not refused (%s)", i,
			      APP + 1, nh_err());
		worst = ms > worst ? ms : worst;
	}
	/* A refusal is one round trip on a veth: well under 100 ms, even loaded. */
	ck_assert_msg(worst < 100, "the slowest refusal took %.1f ms", worst);
	ck_assert_int_eq(nh_drain(l4), 0);
	ck_assert_int_eq(nh_drain(l6), 0);
	assert_reaches(NH_POD4, APP, l4, a4, NH_POD4 ":9080", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, APP, l6, a6, "[" NH_POD6 "]:9080", "[" NH_CLIENT6 "]:");
	close(l4);
	close(l6);
	close(a4);
	close(a6);
}
END_TEST

/*
 * --upstream localhost: the app listens on loopback, so the lookup of the
 * pod's address finds nothing for any port and the reset is left out: a
 * closed port is accepted (here by the transparent listener) and the proxy
 * resets it when its own connect to 127.0.0.1 is refused.
 */
START_TEST(test_upstream_localhost_accepts_closed_ports)
{
	int l4, lo4, cfd, afd;

	install("--upstream localhost");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	lo4 = listen_ok("127.0.0.1", APP, false);
	cfd = nh_connect(pair.client, NH_POD4, APP, 2000);
	ck_assert_msg(cfd >= 0, "the app's port (on loopback): %s", nh_err());
	afd = nh_accept(l4, 2000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	close(afd);
	close(cfd);
	cfd = nh_connect(pair.client, NH_POD4, APP + 1, 2000);
	ck_assert_msg(cfd >= 0, "a closed port with --upstream localhost: %s", nh_err());
	afd = nh_accept(l4, 2000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	close(afd);
	close(cfd);
	ck_assert_int_eq(nh_drain(lo4), 0);
	close(l4);
	close(lo4);
}
END_TEST

START_TEST(test_redirect)
{
	struct sockaddr_in o4;
	struct sockaddr_in6 o6;
	socklen_t len;
	char s[64];
	int l4, l6, x4, cfd, afd;

	install("-m redirect");
	/* REDIRECT needs no transparent socket: a plain listener. */
	l4 = listen_ok("0.0.0.0", CAPTURE, false);
	l6 = listen_ok("::", CAPTURE, false);
	x4 = listen_ok("0.0.0.0", EXCLUDED, false);

	cfd = nh_connect(pair.client, NH_POD4, APP, 2000);
	ck_assert_msg(cfd >= 0, "%s", nh_err());
	afd = nh_accept(l4, 2000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	len = sizeof(o4);
	ck_assert_int_eq(getsockopt(afd, SOL_IP, SO_ORIGINAL_DST, &o4, &len), 0);
	nh_addr_str((struct sockaddr *)&o4, s, sizeof(s));
	ck_assert_str_eq(s, NH_POD4 ":9080");
	exchange(cfd, afd);
	close(afd);
	close(cfd);

	cfd = nh_connect(pair.client, NH_POD6, APP, 2000);
	ck_assert_msg(cfd >= 0, "%s", nh_err());
	afd = nh_accept(l6, 2000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	len = sizeof(o6);
	ck_assert_int_eq(getsockopt(afd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &o6, &len), 0);
	nh_addr_str((struct sockaddr *)&o6, s, sizeof(s));
	ck_assert_str_eq(s, "[" NH_POD6 "]:9080");
	close(afd);
	close(cfd);

	assert_reaches(NH_POD4, EXCLUDED, x4, l4, NH_POD4 ":15021", NH_CLIENT4 ":");

	/* NAT needs conntrack: the count grows, unlike TPROXY mode. */
	connections(NH_POD4, APP, l4, 1000);
	ck_assert_int_gt(conntrack_count(pair.pod), 0);
	close(l4);
	close(l6);
	close(x4);
}
END_TEST

/*
 * Fail closed: with the rules in and nothing on the capture port, a client
 * never reaches the app. The SYN is dropped, not rejected, so the client's
 * retransmit carries it to the proxy once it listens.
 */
START_TEST(test_fail_closed)
{
	int a4, a6, c4, c6, l4, l6, afd, ret;
	char local[64];

	a4 = listen_ok("0.0.0.0", APP, false);
	a6 = listen_ok("::", APP, false);
	/* Control: without the rules the app is reachable, so the test can fail. */
	c4 = nh_connect(pair.client, NH_POD4, APP, 2000);
	ck_assert_msg(c4 >= 0, "control: %s", nh_err());
	close(c4);
	ck_assert_int_eq(nh_drain(a4), 1);

	install("");
	c4 = nh_connect_start(pair.client, NH_POD4, APP);
	c6 = nh_connect_start(pair.client, NH_POD6, APP);
	ck_assert_msg(c4 >= 0 && c6 >= 0, "%s", nh_err());
	ret = nh_connect_wait(c4, 1500);
	ck_assert_msg(ret == -ETIMEDOUT, "v4 connect with no proxy: %d (%s)", ret, nh_err());
	ret = nh_connect_wait(c6, 100);
	ck_assert_msg(ret == -ETIMEDOUT, "v6 connect with no proxy: %d (%s)", ret, nh_err());
	ck_assert_int_eq(nh_drain(a4), 0);
	ck_assert_int_eq(nh_drain(a6), 0);

	/* The proxy comes up: the pending SYNs' retransmits reach it. */
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	l6 = listen_ok("::", CAPTURE, true);
	ret = nh_connect_wait(c4, 4000);
	ck_assert_msg(!ret, "v4 after the proxy came up: %s", nh_err());
	ret = nh_connect_wait(c6, 4000);
	ck_assert_msg(!ret, "v6 after the proxy came up: %s", nh_err());
	afd = nh_accept(l4, 1000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	local_str(afd, local, sizeof(local));
	ck_assert_str_eq(local, NH_POD4 ":9080");
	close(afd);
	afd = nh_accept(l6, 1000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	close(afd);
	ck_assert_int_eq(nh_drain(a4), 0);
	ck_assert_int_eq(nh_drain(a6), 0);
	close(c4);
	close(c6);
	close(a4);
	close(a6);
	close(l4);
	close(l6);
}
END_TEST

/* -b limits what is diverted; --exclude-sources and lo bypass the proxy. */
START_TEST(test_exclusions)
{
	int l4, l6, a4, a6, o4;

	install("-b 9080");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	l6 = listen_ok("::", CAPTURE, true);
	a4 = listen_ok("0.0.0.0", APP, false);
	a6 = listen_ok("::", APP, false);
	o4 = listen_ok("0.0.0.0", APP + 1, false);
	assert_reaches(NH_POD4, APP, l4, a4, NH_POD4 ":9080", NH_CLIENT4 ":");
	assert_reaches(NH_POD4, APP + 1, o4, l4, NH_POD4 ":9081", NH_CLIENT4 ":");

	/* Traffic born in the pod (iif lo) is left alone. */
	{
		int cfd = nh_connect(pair.pod, NH_POD4, APP, 2000), afd;

		ck_assert_msg(cfd >= 0, "%s", nh_err());
		afd = nh_accept(a4, 2000);
		ck_assert_msg(afd >= 0, "from inside the pod: %s", nh_err());
		close(afd);
		close(cfd);
		ck_assert_int_eq(nh_drain(l4), 0);
	}

	install("-b 9080 --exclude-sources " NH_CLIENT4 "/32," NH_CLIENT6 "/128");
	assert_reaches(NH_POD4, APP, a4, l4, NH_POD4 ":9080", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, APP, a6, l6, "[" NH_POD6 "]:9080", "[" NH_CLIENT6 "]:");
	close(l4);
	close(l6);
	close(a4);
	close(a6);
	close(o4);
}
END_TEST

struct reuse_result {
	int via_proxy, via_app, failed, ports;
	char first_error[160];
};

/*
 * 400 sequential connections from a client with 100 local ports, the
 * listener closing first so each 4-tuple is left in TIME_WAIT on the pod
 * when the client reuses its port. Counts where each one landed.
 */
static void port_reuse(int lfd, int app, bool stop_at_app, struct reuse_result *r)
{
	struct timeval tv = { .tv_sec = 1 };
	unsigned char *seen = calloc(65536, 1);

	memset(r, 0, sizeof(*r));
	ck_assert(seen);
	NH_OK(nh_sysctl_save(pair.client, "net.ipv4.ip_local_port_range"));
	NH_OK(nh_sysctl_write(pair.client, "net.ipv4.ip_local_port_range", "20000 20099"));
	for (int i = 0; i < 400; i++) {
		struct sockaddr_in sin;
		socklen_t sl = sizeof(sin);
		int cfd = nh_connect(pair.client, NH_POD4, APP, 1000), afd;
		char c;

		if (cfd < 0) {
			if (!r->failed++)
				snprintf(r->first_error, sizeof(r->first_error), "%d: %s", i,
					 nh_err());
			continue;
		}
		if (!getsockname(cfd, (struct sockaddr *)&sin, &sl))
			r->ports += !seen[ntohs(sin.sin_port)]++;
		afd = nh_accept(lfd, 500);
		if (afd < 0) {
			r->via_app += nh_drain(app);
			close(cfd);
			if (stop_at_app && r->via_app)
				break;
			continue;
		}
		r->via_proxy++;
		/* The listener's side closes first and keeps the TIME_WAIT. */
		close(afd);
		setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ck_assert_msg(read(cfd, &c, 1) == 0, "connection %d: no EOF from the listener", i);
		close(cfd);
	}
	r->via_app += nh_drain(app);
	free(seen);
}

START_TEST(test_port_reuse)
{
	struct reuse_result r;
	int lfd, app;

	install("");
	lfd = listen_ok("0.0.0.0", CAPTURE, true);
	app = listen_ok("0.0.0.0", APP, false);
	port_reuse(lfd, app, false, &r);
	/* Ports were reused, so SYNs met TIME_WAIT 4-tuples. */
	ck_assert_int_le(r.ports, 100);
	ck_assert_msg(r.via_app == 0, "%d of 400 connections reached the app directly", r.via_app);
	ck_assert_msg(r.failed == 0, "%d connections failed, first %s", r.failed, r.first_error);
	ck_assert_int_eq(r.via_proxy, 400);
	close(lfd);
	close(app);
}
END_TEST

/*
 * The same load against the kernel documentation's divert (`socket
 * transparent 1` alone, SYNs included), set up by hand: connections do reach
 * the app, which shows test_port_reuse can see the bypass it guards against.
 */
START_TEST(test_port_reuse_control)
{
	static const char ruleset[] =
		"table inet ctl {\n chain pre {\n"
		"  type filter hook prerouting priority mangle;\n"
		"  meta l4proto tcp socket transparent 1 meta mark set 0x539 accept\n"
		"  iif lo return\n"
		"  meta l4proto tcp tproxy ip to :15006 meta mark set 0x539 accept\n"
		" }\n}\n";
	struct reuse_result r;
	char *err = NULL;
	int lfd, app, ret;

	ret = nh_sh(pair.pod, NULL, &err,
		    "nft -f - <<'EOF'\n%sEOF\nip rule add fwmark 0x539 lookup 133 && "
		    "ip route add local 0.0.0.0/0 dev lo table 133",
		    ruleset);
	ck_assert_msg(ret == 0, "control ruleset: %s", err);
	free(err);
	lfd = listen_ok("0.0.0.0", CAPTURE, true);
	app = listen_ok("0.0.0.0", APP, false);
	port_reuse(lfd, app, true, &r);
	ck_assert_int_le(r.ports, 100);
	ck_assert_msg(r.via_app > 0,
		      "the SYN-taking divert sent no connection to the app "
		      "(proxy %d, failed %d): the port-reuse test lost its power",
		      r.via_proxy, r.failed);
	close(lfd);
	close(app);
}
END_TEST

/*
 * The pod's own outbound connections keep working: the answers to them are
 * not SYNs, belong to no transparent socket, and must not fall through the
 * tproxy rule to the fail-closed drop.
 */
START_TEST(test_pod_outbound)
{
	static const uint16_t remote = 5432;
	int l4, l6;

	install("");
	l4 = nh_listen(pair.client, NH_CLIENT4, remote, false);
	l6 = nh_listen(pair.client, NH_CLIENT6, remote, false);
	ck_assert_msg(l4 >= 0 && l6 >= 0, "%s", nh_err());
	for (int f = 0; f < 2; f++) {
		const char *dst = f ? NH_CLIENT6 : NH_CLIENT4;
		int cfd = nh_connect(pair.pod, dst, remote, 2000), afd;

		ck_assert_msg(cfd >= 0, "pod -> %s port %u: %s", dst, remote, nh_err());
		afd = nh_accept(f ? l6 : l4, 2000);
		ck_assert_msg(afd >= 0, "pod -> %s: %s", dst, nh_err());
		/* Data both ways: the established flow's packets pass too. */
		exchange(afd, cfd);
		close(afd);
		close(cfd);
	}
	close(l4);
	close(l6);
}
END_TEST

/* --no-ipv6 leaves IPv6 alone: it reaches the app, neither diverted nor dropped. */
START_TEST(test_no_ipv6_leaves_ipv6_alone)
{
	int l4, app4, app6;

	install("--no-ipv6");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	app4 = listen_ok("0.0.0.0", APP, false);
	app6 = listen_ok("::", APP, false);
	assert_reaches(NH_POD4, APP, l4, app4, NH_POD4 ":9080", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, APP, app6, -1, "[" NH_POD6 "]:9080", "[" NH_CLIENT6 "]:");
	/* A closed IPv6 port is the kernel's own refusal; IPv4's is tpin's. */
	ck_assert(refused_ms(NH_POD6, APP + 1) >= 0);
	ck_assert(refused_ms(NH_POD4, APP + 1) >= 0);
	close(l4);
	close(app4);
	close(app6);
}
END_TEST

/*
 * --preserve-source, made to work with what it used to break (issue 9,
 * item 5): a reply from an excluded port named in -b (readiness on 15021)
 * and a reply to an excluded client leave as they are instead of looping
 * into the proxy, and the reset for a closed intercepted port reaches the
 * client instead of being routed back into the pod.
 */
START_TEST(test_preserve_source_exclusions)
{
	int l4, h4, h6, a4, a6;

	install("-b 9080,9081,15021 --preserve-source");
	l4 = listen_ok("0.0.0.0", CAPTURE, true);
	h4 = listen_ok("0.0.0.0", EXCLUDED, false);
	h6 = listen_ok("::", EXCLUDED, false);
	a4 = listen_ok("0.0.0.0", APP, false);
	a6 = listen_ok("::", APP, false);
	assert_reaches(NH_POD4, EXCLUDED, h4, l4, NH_POD4 ":15021", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, EXCLUDED, h6, -1, "[" NH_POD6 "]:15021", "[" NH_CLIENT6 "]:");
	assert_reaches(NH_POD4, APP, l4, a4, NH_POD4 ":9080", NH_CLIENT4 ":");
	ck_assert_msg(refused_ms(NH_POD4, APP + 1) >= 0, "closed port, v4: %s", nh_err());
	ck_assert_msg(refused_ms(NH_POD6, APP + 1) >= 0, "closed port, v6: %s", nh_err());

	install("-b 9080 --preserve-source --exclude-sources " NH_CLIENT4 "/32," NH_CLIENT6 "/128");
	assert_reaches(NH_POD4, APP, a4, l4, NH_POD4 ":9080", NH_CLIENT4 ":");
	assert_reaches(NH_POD6, APP, a6, -1, "[" NH_POD6 "]:9080", "[" NH_CLIENT6 "]:");
	close(l4);
	close(h4);
	close(h6);
	close(a4);
	close(a6);
}
END_TEST

/*
 * The anti-spoofing rule drops packets from a local source that arrive on
 * another interface than lo, but only to unicast local destinations: a
 * multicast the pod sends is looped back through eth0 with the pod's own
 * source and must still reach the pod's own member sockets.
 */
static int multicast_loop(void *arg)
{
	struct ip_mreq mreq = { 0 };
	struct in_addr ifaddr;
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(5353) };
	struct timeval tv = { .tv_sec = 1 };
	char buf[8];
	int r = socket(AF_INET, SOCK_DGRAM, 0), w = socket(AF_INET, SOCK_DGRAM, 0), one = 1;

	inet_pton(AF_INET, "239.255.0.1", &to.sin_addr);
	inet_pton(AF_INET, NH_POD4, &ifaddr);
	mreq.imr_multiaddr = to.sin_addr;
	mreq.imr_interface = ifaddr;
	setsockopt(r, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(r, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind(r, (struct sockaddr *)&to, sizeof(to)) ||
	    setsockopt(r, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) ||
	    setsockopt(w, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof(ifaddr)) ||
	    sendto(w, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to)) != 5)
		return 2;
	return recv(r, buf, sizeof(buf), 0) == 5 ? 0 : 1;
}

START_TEST(test_multicast_loop_survives)
{
	install("");
	ck_assert_int_eq(nh_call(pair.pod, multicast_loop, NULL), 0);
}
END_TEST

static Suite *e2e_suite(void)
{
	Suite *s = suite_create("netns_e2e");
	TCase *tc = tcase_create("e2e");

	tpin_init = getenv("TPIN_INIT");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tproxy_intercepts);
	tcase_add_test(tc, test_tproxy_no_conntrack);
	tcase_add_test(tc, test_redirect);
	tcase_add_test(tc, test_fail_closed);
	tcase_add_test(tc, test_exclusions);
	tcase_add_test(tc, test_port_reuse);
	tcase_add_test(tc, test_port_reuse_control);
	tcase_add_test(tc, test_pod_outbound);
	tcase_add_test(tc, test_no_ipv6_leaves_ipv6_alone);
	tcase_add_test(tc, test_closed_port_refused);
	tcase_add_test(tc, test_upstream_localhost_accepts_closed_ports);
	tcase_add_test(tc, test_preserve_source_exclusions);
	tcase_add_test(tc, test_multicast_loop_survives);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = { .make = e2e_suite, .env = { "TPIN_INIT" } };
