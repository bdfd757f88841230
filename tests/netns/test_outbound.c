// SPDX-License-Identifier: MIT
/*
 * Outbound capture end to end (issue 10): the pod's own connections to
 * other hosts, through the real tpin-proxy behind the real tpin-init.
 *
 *	pod (198.51.100.2, 2001:db8:1::2) -- client -- remote (203.0.113.2
 *	and .3, 2001:db8:2::2 and ::3)
 *
 * The client namespace routes between the pod and a third namespace, the
 * remote, whose server answers every connection with the address and port
 * it saw and logs it. The test itself plays the app: its sockets are made
 * in the pod. A connection was captured when the remote saw another port
 * than the app's own (the proxy connected from a port of its own, from the
 * same address) and the proxy logged it as outbound; it was not when the
 * remote saw the app's own port and the proxy logged nothing. TPIN_INIT and
 * TPIN_PROXY (set by meson) name the binaries.
 *
 * About 1,100 lines: fifteen cases over one three-namespace fixture; a case
 * reads on its own, and a split would only copy the fixture.
 */

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"

#define REMOTE4	    "203.0.113.2"
#define REMOTE4B    "203.0.113.3"
#define REMOTE6	    "2001:db8:2::2"
#define REMOTE6B    "2001:db8:2::3"
#define OUT_PORT    15001
#define ADMIN	    15000
#define WEB	    80 /* the remote's ports */
#define WEB2	    81
#define APP_PORT    9080 /* the pod's own server: intercepted inbound */
#define DIRECT	    7001 /* the pod's own server on a port excluded inbound (-d) */
#define WAIT_MS	    3000
#define START_MS    10000
#define FAST_MS	    1000 /* "fails fast": the app's connect with no proxy */
#define MANY	    1000
#define MANY_MS	    60000
#define NH_OK(call) ck_assert_msg((call) == 0, "%s: %s", #call, nh_err())

static const char *tpin_init, *tpin_proxy;
static char run_dir[64], registry[128];
static struct nh_pair pair;
static char remote[NH_NAME_MAX];
static char dir[128], access_log[192], proxy_out[192], remote_log[192], pod_log[192];
static pid_t proxy_pid = -1, remote_pid = -1, server_pid = -1;

/* ---- small helpers ------------------------------------------------------ */

static char *slurp_or_empty(const char *path)
{
	char *s = nh_slurp(path);

	if (!s)
		s = strdup("");
	ck_assert(s);
	return s;
}

static void install(const char *flags)
{
	char *err = NULL;
	int ret = nh_sh(NULL, NULL, &err, "%s --netns %s %s", tpin_init, pair.pod, flags);

	ck_assert_msg(ret == 0, "tpin-init --netns %s %s exited %d: %s", pair.pod, flags, ret, err);
	free(err);
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

/* ---- the servers: the remote's, and the pod's own ----------------------- */

struct server_cfg {
	int lfd[8];
	int n;
	const char *log;
};

/*
 * Answers every connection with "peer=A local=B\n", closes it, and appends
 * the same line to the log (one write per line with O_APPEND: lines never
 * interleave).
 */
static int server_main(void *arg)
{
	const struct server_cfg *cfg = arg;
	struct pollfd pfd[8];
	int log = open(cfg->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (log < 0)
		return 2;
	for (int i = 0; i < cfg->n; i++)
		pfd[i] = (struct pollfd){ .fd = cfg->lfd[i], .events = POLLIN };
	for (;;) {
		if (poll(pfd, (nfds_t)cfg->n, -1) < 0)
			continue;
		for (int i = 0; i < cfg->n; i++) {
			struct sockaddr_storage ps, ls;
			socklen_t pl = sizeof(ps), ll = sizeof(ls);
			char peer[80], local[80], line[200];
			int fd;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(cfg->lfd[i], (struct sockaddr *)&ps, &pl, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			getsockname(fd, (struct sockaddr *)&ls, &ll);
			nh_addr_str((struct sockaddr *)&ps, peer, sizeof(peer));
			nh_addr_str((struct sockaddr *)&ls, local, sizeof(local));
			snprintf(line, sizeof(line), "peer=%s local=%s\n", peer, local);
			if (write(log, line, strlen(line)) < 0)
				return 3;
			/* The answer is small: one send fits the socket's buffer. */
			send(fd, line, strlen(line), MSG_NOSIGNAL);
			close(fd);
		}
	}
	return 0;
}

/* A server in @ns on every address of both families, at each of @ports. */
static pid_t server_start(const char *ns, const uint16_t *ports, int nports, const char *log)
{
	struct server_cfg cfg = { .n = 0, .log = log };
	pid_t pid;

	for (int i = 0; i < nports; i++) {
		for (int fam = 0; fam < 2; fam++) {
			int fd = nh_listen(ns, fam ? "::" : "0.0.0.0", ports[i], false);

			ck_assert_msg(fd >= 0, "server in %s: %s", ns, nh_err());
			cfg.lfd[cfg.n++] = fd;
		}
	}
	pid = nh_spawn(ns, server_main, &cfg);
	ck_assert_msg(pid > 0, "%s", nh_err());
	for (int i = 0; i < cfg.n; i++)
		close(cfg.lfd[i]);
	return pid;
}

/* Starts the pod's own server, on the intercepted port and a direct one. */
static void pod_server_start(void)
{
	static const uint16_t ports[] = { APP_PORT, DIRECT };

	server_pid = server_start(pair.pod, ports, 2, pod_log);
}

/* ---- the app: one connection from the pod ------------------------------- */

struct result {
	int err;	/* 0, or the connect's or read's -errno */
	long long ms;	/* connect time */
	char local[64]; /* the app's own address and port */
	char seen[64];	/* the peer the server saw */
	char answer[160];
};

/* What the server answered: "peer=A local=B". */
static void parse_answer(struct result *r)
{
	const char *p = strstr(r->answer, "peer=");
	size_t n;

	r->seen[0] = '\0';
	if (!p)
		return;
	p += 5;
	n = strcspn(p, " \n");
	snprintf(r->seen, sizeof(r->seen), "%.*s", (int)n, p);
}

/*
 * A connection from the namespace the caller is in: a child that dropped
 * to another user cannot enter one any more, and the socket must be made
 * after the drop (its owner is its creator's).
 */
static int connect_here(const char *ip, uint16_t port)
{
	struct sockaddr_storage to;
	socklen_t tl;
	int fd, ret = nh_sockaddr(&to, &tl, ip, port);

	if (ret)
		return ret;
	fd = socket(to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&to, tl) && errno != EINPROGRESS) {
		ret = -errno;
		close(fd);
		return ret;
	}
	ret = nh_connect_wait(fd, WAIT_MS);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/*
 * Connects from @ns (NULL: where the caller is) to ip:port, reads the
 * answer to EOF; never asserts.
 */
static void talk(const char *ns, const char *ip, uint16_t port, struct result *r)
{
	long long t0 = nh_now_ms();
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = ns ? nh_connect(ns, ip, port, WAIT_MS) : connect_here(ip, port);
	ssize_t n;

	memset(r, 0, sizeof(*r));
	r->ms = nh_now_ms() - t0;
	if (fd < 0) {
		r->err = fd;
		return;
	}
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	nh_addr_str((struct sockaddr *)&ss, r->local, sizeof(r->local));
	n = nh_read_eof(fd, r->answer, sizeof(r->answer), WAIT_MS);
	close(fd);
	if (n < 0)
		r->err = (int)n;
	parse_answer(r);
}

/* The app's connection, asserted to reach the server. */
static void talk_ok(const char *ns, const char *ip, uint16_t port, struct result *r)
{
	talk(ns, ip, port, r);
	ck_assert_msg(!r->err && r->seen[0], "%s port %u: %s (answer \"%s\")", ip, port,
		      strerror(-r->err), r->answer);
}

/* The address part of "ip:port" or "[ip6]:port". */
static void addr_of(const char *hostport, char *out, size_t len)
{
	const char *colon = strrchr(hostport, ':');

	snprintf(out, len, "%.*s", colon ? (int)(colon - hostport) : 0, hostport);
}

/* ---- tpin-proxy --------------------------------------------------------- */

/*
 * Starts tpin-proxy in the pod, outbound listener on 15001, JSON access
 * log, with @mode ("tproxy" or "redirect") and up to two @extra arguments
 * (NULL for none); returns once it relays.
 */
static void proxy_start_args(const char *mode, const char *extra, const char *extra2)
{
	struct nh_exec e = { .out = proxy_out,
			     .argv = { tpin_proxy, "-m", mode, "-p", "15001", "--log-file",
				       access_log, "--log-format", "json", "--concurrency", "2",
				       extra, extra ? extra2 : NULL, NULL } };
	long long deadline = nh_now_ms() + START_MS;

	proxy_pid = nh_spawn(pair.pod, nh_exec_logged, &e);
	ck_assert_msg(proxy_pid > 0, "%s", nh_err());
	nh_registry_add(registry, proxy_pid);
	for (;;) {
		char *out = slurp_or_empty(proxy_out);
		bool up = strstr(out, "outbound from port 15001") != NULL;
		int ws;

		if (!up && waitpid(proxy_pid, &ws, WNOHANG) == proxy_pid) {
			proxy_pid = -1;
			ck_abort_msg("tpin-proxy exited (status 0x%x) before relaying:\n%s", ws,
				     out);
		}
		if (!up && nh_now_ms() > deadline)
			ck_abort_msg("tpin-proxy did not relay outbound within %d ms:\n%s",
				     START_MS, out);
		free(out);
		if (up)
			return;
		nh_sleep_ms(20);
	}
}

static void proxy_start(const char *mode)
{
	proxy_start_args(mode, NULL, NULL);
}

static void proxy_stop(void)
{
	if (proxy_pid > 0)
		nh_reap(proxy_pid, SIGKILL);
	proxy_pid = -1;
}

/* After the suite: no proxy left, and the run's directory gone (a failed test leaves its own). */
static void after(void)
{
	nh_registry_sweep(registry);
	if (nh_sh(NULL, NULL, NULL, "rm -rf -- '%s'", run_dir))
		fprintf(stderr, "test_outbound: cannot remove %s\n", run_dir);
}

/*
 * The access-log entry of the app's connection from @client, waiting up to
 * @wait_ms (an entry is written when its connection ends); NULL if none.
 */
static json_t *log_entry(const char *client, int wait_ms)
{
	long long deadline = nh_now_ms() + wait_ms;

	for (;;) {
		char *s = slurp_or_empty(access_log), *save = NULL;

		for (char *line = strtok_r(s, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			json_error_t err;
			json_t *o = json_loads(line, 0, &err);
			const char *c = json_string_value(json_object_get(o, "client"));

			ck_assert_msg(o, "access log line is no JSON (%s): %s", err.text, line);
			if (c && !strcmp(c, client)) {
				free(s);
				return o;
			}
			json_decref(o);
		}
		free(s);
		if (nh_now_ms() >= deadline)
			return NULL;
		nh_sleep_ms(20);
	}
}

static int log_lines(void)
{
	char *s = slurp_or_empty(access_log);
	int n = nh_count(s, "\n");

	free(s);
	return n;
}

/*
 * The app's connection @r to @dst went through the proxy: the remote saw
 * the pod's own address (@pod) from a port of the proxy's, and the proxy
 * logged it as outbound, from the app's address and port, to @dst.
 */
static void assert_captured(const struct result *r, const char *dst, const char *pod)
{
	char seen_addr[64];
	json_t *o;
	const char *dir_, *orig, *res;

	addr_of(r->seen, seen_addr, sizeof(seen_addr));
	ck_assert_msg(!strcmp(seen_addr, pod), "%s: the remote saw %s, want the pod's %s", dst,
		      r->seen, pod);
	ck_assert_msg(strcmp(r->seen, r->local),
		      "%s: the remote saw the app's own port (%s): not captured", dst, r->local);
	o = log_entry(r->local, WAIT_MS);
	ck_assert_msg(o, "%s: no access-log entry for the app's %s", dst, r->local);
	dir_ = json_string_value(json_object_get(o, "direction"));
	orig = json_string_value(json_object_get(o, "original_dst"));
	res = json_string_value(json_object_get(o, "result"));
	ck_assert_msg(dir_ && !strcmp(dir_, "outbound"), "%s: direction %s", dst, dir_);
	ck_assert_msg(orig && !strcmp(orig, dst), "%s: original_dst %s", dst, orig);
	ck_assert_msg(res && !strcmp(res, "ok"), "%s: result %s", dst, res);
	json_decref(o);
}

/* The app's connection @r reached its server directly: its own port, no log entry. */
static void assert_direct(const struct result *r, const char *dst)
{
	json_t *o;

	ck_assert_msg(!strcmp(r->seen, r->local),
		      "%s: the server saw %s, the app is %s: captured, want direct", dst, r->seen,
		      r->local);
	/* The entry would be written when the connection ended, which it has. */
	o = log_entry(r->local, 200);
	ck_assert_msg(!o, "%s: the proxy logged the app's %s", dst, r->local);
}

/* ---- the remote's view: packets from the pod ---------------------------- */

static void remote_counter(void)
{
	char *err = NULL;
	int ret = nh_sh(remote, NULL, &err,
			"nft add table inet w && nft add chain inet w c '{ type filter hook "
			"prerouting priority 0; }' && "
			"nft add rule inet w c meta l4proto tcp ip saddr " NH_POD4 " counter && "
			"nft add rule inet w c meta l4proto tcp ip6 saddr " NH_POD6 " counter");

	ck_assert_msg(ret == 0, "remote counter: %s", err);
	free(err);
}

/* TCP packets from the pod's addresses the remote has received. */
static long remote_packets(void)
{
	char *out = NULL, *p;
	long n = 0;
	int ret = nh_sh(remote, &out, NULL, "nft list chain inet w c");

	ck_assert_int_eq(ret, 0);
	for (p = out; (p = strstr(p, "packets ")); p += 8)
		n += strtol(p + 8, NULL, 10);
	free(out);
	return n;
}

static int remote_accepts(void)
{
	char *s = slurp_or_empty(remote_log);
	int n = nh_count(s, "peer=");

	free(s);
	return n;
}

/* ---- fixture ------------------------------------------------------------ */

static void setup(void)
{
	static const uint16_t web[] = { WEB, WEB2 };
	char *err = NULL;
	int ret;

	snprintf(dir, sizeof(dir), "%s/XXXXXX", run_dir);
	ck_assert_msg(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	snprintf(access_log, sizeof(access_log), "%s/access.log", dir);
	snprintf(proxy_out, sizeof(proxy_out), "%s/proxy.out", dir);
	snprintf(remote_log, sizeof(remote_log), "%s/remote", dir);
	snprintf(pod_log, sizeof(pod_log), "%s/pod", dir);
	NH_OK(nh_pair_new(&pair, "ob"));
	NH_OK(nh_ns_new(remote, "obr"));
	/* The client routes between the pod and the remote, as a node would. */
	ret = nh_sh(pair.client, NULL, &err,
		    "echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad && "
		    "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad && "
		    "ip -n %s link set lo up && "
		    "ip netns exec %s sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; "
		    "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad' && "
		    "ip link add eth1 type veth peer name eth0 netns %s && ip link set eth1 up && "
		    "ip -n %s link set eth0 up && "
		    "ip addr add 203.0.113.1/24 dev eth1 && "
		    "ip addr add 2001:db8:2::1/64 dev eth1 nodad && "
		    "ip -n %s addr add " REMOTE4 "/24 dev eth0 && "
		    "ip -n %s addr add " REMOTE4B "/24 dev eth0 && "
		    "ip -n %s addr add " REMOTE6 "/64 dev eth0 nodad && "
		    "ip -n %s addr add " REMOTE6B "/64 dev eth0 nodad && "
		    "ip -n %s route add default via 203.0.113.1 && "
		    "ip -n %s -6 route add default via 2001:db8:2::1 && "
		    "ip -n %s route add default via " NH_CLIENT4 " && "
		    "ip -n %s -6 route add default via " NH_CLIENT6 " && "
		    "echo 1 > /proc/sys/net/ipv4/ip_forward && "
		    "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding",
		    remote, remote, remote, remote, remote, remote, remote, remote, remote, remote,
		    pair.pod, pair.pod);
	ck_assert_msg(ret == 0, "remote setup: %s", err);
	free(err);
	remote_pid = server_start(remote, web, 2, remote_log);
}

static void teardown(void)
{
	proxy_stop();
	if (remote_pid > 0)
		nh_reap(remote_pid, SIGKILL);
	if (server_pid > 0)
		nh_reap(server_pid, SIGKILL);
	remote_pid = server_pid = -1;
	nh_cleanup();
	unlink(access_log);
	unlink(proxy_out);
	unlink(remote_log);
	unlink(pod_log);
	rmdir(dir);
}

/* ---- 1. through the proxy, and nothing else ----------------------------- */

/*
 * The app's connections to another host go through the proxy, v4 and v6:
 * the remote sees the pod's address, the app's socket the remote's, the
 * proxy logs them as outbound. With capture on, inbound still works, and so
 * do the app's answers on a port it serves directly (excluded inbound):
 * they leave the pod as they are.
 */
START_TEST(test_through_proxy)
{
	static const char *const dst[2] = { REMOTE4, REMOTE6 };
	static const char *const want[2] = { REMOTE4 ":80", "[" REMOTE6 "]:80" };
	static const char *const pod[2] = { NH_POD4, "[" NH_POD6 "]" };
	struct result r;
	char peer[64];

	install("--outbound -d 7001");
	pod_server_start();
	proxy_start("tproxy");
	for (int f = 0; f < 2; f++) {
		int fd;
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		talk_ok(pair.pod, dst[f], WEB, &r);
		assert_captured(&r, want[f], pod[f]);
		/* The app's socket is connected to the remote itself, not to the proxy. */
		fd = nh_connect(pair.pod, dst[f], WEB, WAIT_MS);
		ck_assert_msg(fd >= 0, "%s", nh_err());
		ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&ss, &sl), 0);
		nh_addr_str((struct sockaddr *)&ss, peer, sizeof(peer));
		ck_assert_str_eq(peer, want[f]);
		close(fd);

		/* Inbound, with outbound capture on: through the proxy, from ::6 / 127.0.0.6. */
		talk_ok(pair.client, f ? NH_POD6 : NH_POD4, APP_PORT, &r);
		ck_assert_msg(!strncmp(r.seen, f ? "[::6]:" : "127.0.0.6:", f ? 6 : 10),
			      "inbound: the app saw %s", r.seen);
		/* A port the app serves directly: its answers are not captured. */
		talk_ok(pair.client, f ? NH_POD6 : NH_POD4, DIRECT, &r);
		ck_assert_msg(!strcmp(r.seen, r.local), "direct inbound: the app saw %s, not %s",
			      r.seen, r.local);
	}
	/* TPROXY both ways: the pod tracked nothing. */
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
}
END_TEST

/*
 * The proxy's own connection to the remote is never captured again: one
 * connection of the app is one connection at the remote and one log entry,
 * never a loop back into the proxy.
 */
START_TEST(test_no_loop)
{
	struct result r;

	install("--outbound");
	proxy_start("tproxy");
	for (int i = 0; i < 5; i++) {
		json_t *o;

		talk_ok(pair.pod, i % 2 ? REMOTE6 : REMOTE4, WEB, &r);
		o = log_entry(r.local, WAIT_MS);
		ck_assert_msg(o, "no entry for %s", r.local);
		json_decref(o);
	}
	ck_assert_int_eq(remote_accepts(), 5);
	ck_assert_int_eq(log_lines(), 5);
}
END_TEST

/* Loopback and the pod's own addresses are never captured. */
START_TEST(test_local_not_captured)
{
	static const char *const local[] = { "127.0.0.1", "::1", NH_POD4, NH_POD6 };
	struct result r;

	install("--outbound");
	pod_server_start();
	proxy_start("tproxy");
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		/* DIRECT is not intercepted inbound either: the app meets itself. */
		talk_ok(pair.pod, local[i], DIRECT, &r);
		assert_direct(&r, local[i]);
	}
	ck_assert_int_eq(log_lines(), 0);
}
END_TEST

/* ---- 2. the filters: each with a connection it captures and one it does not */

struct owner_call {
	uid_t uid;
	gid_t gid;
	const char *ip;
	struct result *r; /* shared with the parent */
};

/* The app as another user: drop to uid/gid, then connect. */
static int as_owner(void *arg)
{
	struct owner_call *c = arg;

	if (setgroups(0, NULL) || setgid(c->gid) || setuid(c->uid))
		return 2;
	talk(NULL, c->ip, WEB, c->r);
	return 0;
}

static void talk_as(uid_t uid, gid_t gid, const char *ip, struct result *r)
{
	struct owner_call c = { uid, gid, ip, r };

	ck_assert_int_eq(nh_call(pair.pod, as_owner, &c), 0);
	ck_assert_msg(!r->err && r->seen[0], "as %u:%u to %s: %s", uid, gid, ip, strerror(-r->err));
}

START_TEST(test_filter_owner)
{
	static const char *const dst[2] = { REMOTE4, REMOTE6 };
	static const char *const want[2] = { REMOTE4 ":80", "[" REMOTE6 "]:80" };
	static const char *const pod[2] = { NH_POD4, "[" NH_POD6 "]" };
	struct result *r =
		mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert(r != MAP_FAILED);
	install("-u 4242 -g 4343");
	proxy_start("tproxy");
	for (int f = 0; f < 2; f++) {
		talk_as(4242, 100, dst[f], r);
		assert_direct(r, want[f]);
		talk_as(100, 4343, dst[f], r);
		assert_direct(r, want[f]);
		talk_as(100, 100, dst[f], r);
		assert_captured(r, want[f], pod[f]);
	}
	munmap(r, sizeof(*r));
}
END_TEST

struct filter_case {
	const char *flags;
	const char *in_ip, *out_ip; /* the one it captures, the one it does not */
	uint16_t in_port, out_port;
};

static const struct filter_case filter_cases[] = {
	{ "-o 81", REMOTE4, REMOTE4, WEB, WEB2 },
	{ "-o 81", REMOTE6, REMOTE6, WEB, WEB2 },
	{ "-q 80", REMOTE4, REMOTE4, WEB, WEB2 },
	{ "-q 80", REMOTE6, REMOTE6, WEB, WEB2 },
	{ "-x " REMOTE4B " -x " REMOTE6B, REMOTE4, REMOTE4B, WEB, WEB },
	{ "-x " REMOTE4B " -x " REMOTE6B, REMOTE6, REMOTE6B, WEB, WEB },
	{ "-i " REMOTE4 "/32," REMOTE6 "/128", REMOTE4, REMOTE4B, WEB, WEB },
	{ "-i " REMOTE4 "/32," REMOTE6 "/128", REMOTE6, REMOTE6B, WEB, WEB },
	/* -i of one family leaves the other alone. */
	{ "-i 203.0.113.0/24", REMOTE4, REMOTE6, WEB, WEB },
};

START_TEST(test_filter)
{
	const struct filter_case *c = &filter_cases[_i];
	bool in6 = strchr(c->in_ip, ':') != NULL;
	char want[64], out_dst[64];
	struct result r;

	install(c->flags);
	proxy_start("tproxy");
	snprintf(want, sizeof(want), in6 ? "[%s]:%u" : "%s:%u", c->in_ip, c->in_port);
	talk_ok(pair.pod, c->in_ip, c->in_port, &r);
	assert_captured(&r, want, in6 ? "[" NH_POD6 "]" : NH_POD4);
	snprintf(out_dst, sizeof(out_dst), "%s port %u", c->out_ip, c->out_port);
	talk_ok(pair.pod, c->out_ip, c->out_port, &r);
	assert_direct(&r, out_dst);
}
END_TEST

/* ---- 3. failing closed, and fast ---------------------------------------- */

/*
 * No proxy on the outbound port: the app's connect is refused at once (a
 * reset from the rules, not SYN retries), and the remote receives nothing
 * from the pod: no connection leaves unproxied.
 */
START_TEST(test_proxy_down_fails_fast)
{
	static const char *const dst[2] = { REMOTE4, REMOTE6 };
	struct result r;

	install("--outbound");
	remote_counter();
	for (int f = 0; f < 2; f++) {
		talk(pair.pod, dst[f], WEB, &r);
		ck_assert_msg(r.err == -ECONNREFUSED, "%s: %s, want connection refused", dst[f],
			      strerror(-r.err));
		ck_assert_msg(r.ms < FAST_MS, "%s: refused after %lld ms", dst[f], r.ms);
	}
	ck_assert_int_eq(remote_packets(), 0);
	/* Up again, the same connection goes through; down again, refused again. */
	proxy_start("tproxy");
	talk_ok(pair.pod, REMOTE4, WEB, &r);
	proxy_stop();
	talk(pair.pod, REMOTE6, WEB, &r);
	ck_assert_msg(r.err == -ECONNREFUSED && r.ms < FAST_MS, "after a stop: %s in %lld ms",
		      strerror(-r.err), r.ms);
	ck_assert_int_eq(remote_accepts(), 1);
	/* The one that went through came from the proxy: 3 packets in, 2 out at least. */
	ck_assert_msg(remote_packets() > 0, "the counter counts nothing");
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
}
END_TEST

/* With the proxy down from the start, not one packet of the pod reaches the remote. */
START_TEST(test_proxy_down_nothing_leaves)
{
	struct result r;

	install("--outbound");
	remote_counter();
	for (int i = 0; i < 10; i++) {
		talk(pair.pod, i % 2 ? REMOTE6 : REMOTE4, i % 4 < 2 ? WEB : WEB2, &r);
		ck_assert_int_eq(r.err, -ECONNREFUSED);
	}
	ck_assert_int_eq(remote_packets(), 0);
	ck_assert_int_eq(remote_accepts(), 0);
}
END_TEST

/* ---- 4. many, and the same source port twice ---------------------------- */

/* 1,000 outbound connections through the proxy, bounded in time: no conntrack entry. */
START_TEST(test_many_no_conntrack)
{
	long long deadline;
	int ok = 0, i;
	struct result r;

	install("--outbound");
	proxy_start("tproxy");
	deadline = nh_now_ms() + MANY_MS;
	for (i = 0; i < MANY && nh_now_ms() < deadline; i++) {
		talk(pair.pod, i % 2 ? REMOTE6 : REMOTE4, WEB, &r);
		ok += !r.err && r.seen[0] && strcmp(r.seen, r.local);
	}
	ck_assert_msg(ok == MANY, "%d of %d captured connections answered (%d tried in %d s)", ok,
		      MANY, i, MANY_MS / 1000);
	ck_assert_int_eq(remote_accepts(), MANY);
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
}
END_TEST

/* Binds a socket in the pod to ip:port with SO_REUSEADDR and starts connecting. */
static int connect_from(const char *ip, uint16_t port, const char *dst)
{
	struct sockaddr_storage src, to;
	socklen_t sl, tl;
	int one = 1, fd;

	NH_OK(nh_sockaddr(&src, &sl, ip, port));
	NH_OK(nh_sockaddr(&to, &tl, dst, WEB));
	fd = nh_socket(pair.pod, src.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ck_assert_msg(fd >= 0, "%s", nh_err());
	ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	ck_assert_msg(!bind(fd, (struct sockaddr *)&src, sl), "bind %s:%u: %s", ip, port,
		      strerror(errno));
	ck_assert(connect(fd, (struct sockaddr *)&to, tl) == 0 || errno == EINPROGRESS);
	return fd;
}

/*
 * Two connections from the same source port to two destinations at once:
 * distinct 4-tuples, and TPROXY keeps them so. REDIRECT folds both into one
 * 4-tuple to its port (istio/istio#51210); on this kernel (6.18) NAT then
 * rewrites the second one's source port, so the proxy sees a port the app
 * never had.
 */
START_TEST(test_same_source_port)
{
	static const char *const src[2] = { NH_POD4, NH_POD6 };
	static const char *const d1[2] = { REMOTE4, REMOTE6 };
	static const char *const d2[2] = { REMOTE4B, REMOTE6B };
	char client[96];
	int seen = 0;

	install("--outbound");
	proxy_start("tproxy");
	for (int f = 0; f < 2; f++) {
		uint16_t port = (uint16_t)(41000 + f);
		int a = connect_from(src[f], port, d1[f]), b = connect_from(src[f], port, d2[f]);
		char buf[2][160];

		ck_assert_msg(nh_connect_wait(a, WAIT_MS) == 0, "first: %s", nh_err());
		ck_assert_msg(nh_connect_wait(b, WAIT_MS) == 0, "second: %s", nh_err());
		for (int i = 0; i < 2; i++) {
			ck_assert_int_gt(nh_read_eof(i ? b : a, buf[i], sizeof(buf[i]), WAIT_MS),
					 0);
			close(i ? b : a);
		}
		ck_assert_msg(strstr(buf[0], f ? "local=[" REMOTE6 "]" : "local=" REMOTE4 ":"),
			      "first: %s", buf[0]);
		ck_assert_msg(strstr(buf[1], f ? "local=[" REMOTE6B "]" : "local=" REMOTE4B ":"),
			      "second: %s", buf[1]);
		/* The proxy met both with the app's own port: nothing rewrote it. */
		snprintf(client, sizeof(client),
			 f ? "\"client\":\"[%s]:%u\"" : "\"client\":\"%s:%u\"", src[f], port);
		for (long long end = nh_now_ms() + WAIT_MS; nh_now_ms() < end; nh_sleep_ms(20)) {
			char *log = slurp_or_empty(access_log);

			seen = nh_count(log, client);
			free(log);
			if (seen == 2)
				break;
		}
		ck_assert_msg(seen == 2, "%d access-log entries from %s, want 2", seen, client);
	}
	ck_assert_int_eq(remote_accepts(), 4);
}
END_TEST

/* ---- 5. REDIRECT, for the comparison ------------------------------------ */

START_TEST(test_redirect)
{
	struct result r;

	install("-m redirect --outbound");
	proxy_start("redirect");
	talk_ok(pair.pod, REMOTE4, WEB, &r);
	assert_captured(&r, REMOTE4 ":80", NH_POD4);
	talk_ok(pair.pod, REMOTE6, WEB, &r);
	assert_captured(&r, "[" REMOTE6 "]:80", "[" NH_POD6 "]");
	/* NAT is conntrack: each connection left entries behind. */
	ck_assert_int_gt(conntrack_count(pair.pod), 0);
}
END_TEST

/*
 * Istio's TPROXY mode, the demo's middle pod: inbound TPROXY, outbound a
 * nat REDIRECT (-m tproxy --outbound-mode redirect), the proxy told the
 * same. The app's connections go through the real proxy, which reads their
 * original destination from conntrack, and the remote sees the pod's
 * address. The clients' connections still arrive by TPROXY: the proxy in
 * tproxy mode takes the destination from the accepted socket, and a
 * REDIRECTed one would name its own port 15006, which it refuses. The one
 * nat rule turns conntrack on for the whole pod: the outbound flows are
 * tracked, and so are the inbound ones, which tpin's TPROXY keeps out.
 */
START_TEST(test_istio_tproxy)
{
	static const char *const dst[2] = { REMOTE4, REMOTE6 };
	static const char *const want[2] = { REMOTE4 ":80", "[" REMOTE6 "]:80" };
	static const char *const pod[2] = { NH_POD4, "[" NH_POD6 "]" };
	struct result r;
	long before;

	install("--outbound-mode redirect -d 7001");
	pod_server_start();
	proxy_start_args("tproxy", "--outbound-mode", "redirect");
	for (int f = 0; f < 2; f++) {
		talk_ok(pair.pod, dst[f], WEB, &r);
		assert_captured(&r, want[f], pod[f]);
	}
	ck_assert_int_eq(remote_accepts(), 2);
	/* Each outbound connection: the app's, NATed, and the proxy's own. */
	before = conntrack_count(pair.pod);
	ck_assert_msg(before >= 4, "%ld conntrack entries after 2 outbound connections", before);
	for (int f = 0; f < 2; f++) {
		talk_ok(pair.client, f ? NH_POD6 : NH_POD4, APP_PORT, &r);
		ck_assert_msg(!strncmp(r.seen, f ? "[::6]:" : "127.0.0.6:", f ? 6 : 10),
			      "inbound: the app saw %s", r.seen);
		/* A port the app serves directly: its answers are not captured. */
		talk_ok(pair.client, f ? NH_POD6 : NH_POD4, DIRECT, &r);
		ck_assert_msg(!strcmp(r.seen, r.local), "direct inbound: the app saw %s, not %s",
			      r.seen, r.local);
	}
	/* Inbound tracked too: the client's connection and the proxy's to the app. */
	ck_assert_msg(conntrack_count(pair.pod) >= before + 4,
		      "inbound left %ld entries beside %ld", conntrack_count(pair.pod) - before,
		      before);
}
END_TEST

/*
 * The same with the client's address kept (as Istio's TPROXY mode does):
 * named ports, the app's answers routed back to the proxy by the output
 * chain, the app's own connections NATed by the nat_output chain beside it.
 */
START_TEST(test_istio_tproxy_preserve_source)
{
	struct result r;

	install("-b 9080 --preserve-source --outbound-mode redirect");
	pod_server_start();
	proxy_start_args("tproxy", "--preserve-source", "--outbound-mode=redirect");
	for (int i = 0; i < 2; i++) {
		const char *want = i ? "[" NH_CLIENT6 "]:" : NH_CLIENT4 ":";

		talk_ok(pair.client, i ? NH_POD6 : NH_POD4, APP_PORT, &r);
		ck_assert_msg(!strncmp(r.seen, want, strlen(want)),
			      "the app saw %s, not the client", r.seen);
		talk_ok(pair.pod, i ? REMOTE6 : REMOTE4, WEB, &r);
		assert_captured(&r, i ? "[" REMOTE6 "]:80" : REMOTE4 ":80",
				i ? "[" NH_POD6 "]" : NH_POD4);
	}
}
END_TEST

/* ---- 6. --notrack beside a rule that turns conntrack on ----------------- */

/* An unrelated table of the pod: one ct rule turns conntrack on for everything. */
static void foreign_ct_rule(void)
{
	char *err = NULL;
	int ret = nh_sh(pair.pod, NULL, &err,
			"nft add table inet other && "
			"nft add chain inet other in '{ type filter hook input priority 0; }' && "
			"nft add chain inet other out '{ type filter hook output priority 0; }' && "
			"nft add rule inet other in ct state invalid drop && "
			"nft add rule inet other out ct state invalid drop");

	ck_assert_msg(ret == 0, "%s", err);
	free(err);
}

/* @n connections each way, both families: inbound through the proxy, outbound captured. */
static void both_ways(int n)
{
	struct result r;

	for (int i = 0; i < n; i++) {
		talk_ok(pair.client, i % 2 ? NH_POD6 : NH_POD4, APP_PORT, &r);
		talk_ok(pair.pod, i % 2 ? REMOTE6 : REMOTE4, WEB, &r);
		ck_assert_msg(strcmp(r.seen, r.local), "outbound %d not captured", i);
	}
}

/*
 * With --notrack every leg of tpin's flows stays untracked, in both
 * directions: client <-> proxy, proxy <-> app (127.0.0.6, ::6), app <->
 * proxy on lo, proxy <-> remote. Everything else is still tracked: a
 * direct connection to an excluded port is.
 */
START_TEST(test_notrack)
{
	struct result r;
	char *out = NULL;

	install("--outbound --notrack -d 7001");
	foreign_ct_rule();
	pod_server_start();
	proxy_start("tproxy");
	both_ways(200);
	/* Closed ports are still refused: the reset is not "invalid" to the other rule. */
	talk(pair.client, NH_POD4, 9999, &r);
	ck_assert_msg(r.err == -ECONNREFUSED && r.ms < FAST_MS, "closed v4 port: %s in %lld ms",
		      strerror(-r.err), r.ms);
	talk(pair.client, NH_POD6, 9999, &r);
	ck_assert_msg(r.err == -ECONNREFUSED && r.ms < FAST_MS, "closed v6 port: %s in %lld ms",
		      strerror(-r.err), r.ms);
	ck_assert_int_eq(nh_sh(pair.pod, &out, NULL, "conntrack -L 2>/dev/null"), 0);
	ck_assert_msg(conntrack_count(pair.pod) == 0, "tracked:\n%s", out);
	free(out);
	/* A flow that is not tpin's: tracked as ever. */
	talk_ok(pair.client, NH_POD4, DIRECT, &r);
	ck_assert_int_eq(nh_sh(pair.pod, &out, NULL, "conntrack -L 2>/dev/null"), 0);
	ck_assert_msg(conntrack_count(pair.pod) == 1 && strstr(out, "dport=7001"),
		      "want the direct flow alone:\n%s", out);
	free(out);
}
END_TEST

/*
 * --notrack with --preserve-source: the proxy connects to the app from the
 * client's own address, and the app's answers loop back into it; neither
 * leg is tracked, and the app sees the client.
 */
START_TEST(test_notrack_preserve_source)
{
	struct result r;

	install("-b 9080 --preserve-source --notrack");
	foreign_ct_rule();
	pod_server_start();
	proxy_start_args("tproxy", "--preserve-source", NULL);
	for (int i = 0; i < 20; i++) {
		const char *want = i % 2 ? "[" NH_CLIENT6 "]:" : NH_CLIENT4 ":";

		talk_ok(pair.client, i % 2 ? NH_POD6 : NH_POD4, APP_PORT, &r);
		ck_assert_msg(!strncmp(r.seen, want, strlen(want)),
			      "the app saw %s, not the client", r.seen);
	}
	ck_assert_int_eq(conntrack_count(pair.pod), 0);
}
END_TEST

/* The same without --notrack: the other table's rule tracks tpin's flows too. */
START_TEST(test_ct_rule_without_notrack)
{
	install("--outbound -d 7001");
	foreign_ct_rule();
	pod_server_start();
	proxy_start("tproxy");
	both_ways(20);
	ck_assert_int_ge(conntrack_count(pair.pod), 40);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *outbound_suite(void)
{
	Suite *s = suite_create("netns_outbound");
	TCase *tc = tcase_create("outbound");
	char *help = NULL;

	tpin_init = getenv("TPIN_INIT");
	tpin_proxy = getenv("TPIN_PROXY");
	/* The proxy's outbound listener is what this suite is about. */
	if (nh_sh(NULL, &help, NULL, "%s --help", tpin_proxy) || !strstr(help, "--outbound-port")) {
		fprintf(stderr, "%s has no --outbound-port\n", tpin_proxy);
		free(help);
		return NULL;
	}
	free(help);
	snprintf(run_dir, sizeof(run_dir), "/tmp/tpt-outbound-XXXXXX");
	if (!mkdtemp(run_dir)) {
		fprintf(stderr, "mkdir %s: %s\n", run_dir, strerror(errno));
		return NULL;
	}
	snprintf(registry, sizeof(registry), "%s/proxies", run_dir);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_through_proxy);
	tcase_add_test(tc, test_no_loop);
	tcase_add_test(tc, test_local_not_captured);
	tcase_add_test(tc, test_filter_owner);
	tcase_add_loop_test(tc, test_filter, 0, sizeof(filter_cases) / sizeof(filter_cases[0]));
	tcase_add_test(tc, test_proxy_down_fails_fast);
	tcase_add_test(tc, test_proxy_down_nothing_leaves);
	tcase_add_test(tc, test_many_no_conntrack);
	tcase_add_test(tc, test_same_source_port);
	tcase_add_test(tc, test_redirect);
	tcase_add_test(tc, test_istio_tproxy);
	tcase_add_test(tc, test_istio_tproxy_preserve_source);
	tcase_add_test(tc, test_notrack);
	tcase_add_test(tc, test_notrack_preserve_source);
	tcase_add_test(tc, test_ct_rule_without_notrack);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = {
	.make = outbound_suite,
	.env = { "TPIN_INIT", "TPIN_PROXY" },
	.after = after,
};
