/* SPDX-License-Identifier: MIT */
/*
 * The fixture shared by the attack suites (issues 9 and 12): a client and a
 * pod namespace over a veth, the real tpin-init and tpin-proxy run through
 * their CLIs in the pod, and a small application written here in a forked
 * child in the pod. Everything is judged from outside the proxy: what a
 * client gets, the app's peer list, the access log, /metrics, the pod's
 * conntrack count, and segments captured with AF_PACKET.
 *
 * The application listens on AT_HTTP (HTTP) and AT_ECHO (echo), IPv4 and
 * IPv6, and appends one line per event to its peer list:
 *   "peer=ADDR local=ADDR" when it accepts, "eof from=ADDR" when a peer
 *   ends a connection (EOF or reset).
 * HTTP paths: "/" answers "peer=ADDR" and closes; "/split" answers a
 * keep-alive response in two writes 5 ms apart (TCP_NODELAY on the app's
 * socket, so both leave at once); "/close" answers with TCP_CORK and closes
 * at once, so the FIN leaves in the segment with the data.
 *
 * Every function ck_asserts on failure unless it says it returns an error.
 */
#ifndef TPIN_TESTS_ATTACK_H
#define TPIN_TESTS_ATTACK_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "harness.h"
#include "suite.h"
#include <jansson.h>

#define AT_CAPTURE  15006
#define AT_ADMIN    15000
#define AT_READY    15021
#define AT_HTTP	    9080
#define AT_ECHO	    9081
#define AT_WAIT_MS  3000  /* for anything that should happen at once */
#define AT_START_MS 10000 /* the proxy's start, generous for sanitizers */
#define AT_OK(call) ck_assert_msg((call) == 0, "%s: %s", #call, nh_err())

/* The app binds 127.0.0.1 and ::1 instead of the wildcard addresses. */
#define AT_APP_LOOPBACK 1u

extern const char *at_init_bin, *at_proxy_bin;
extern struct nh_pair at_pair;
extern char at_dir[128], at_access_log[192], at_proxy_out[192], at_peers[192];
extern pid_t at_app_pid, at_proxy_pid;
/* RLIMIT_NOFILE of the next proxy started; 0 inherits the test's. */
extern rlim_t at_proxy_nofile;

/*
 * at_prepare - the suites' one-time setup in the main process (the run
 * directory, the descriptor limit), from their nh_suite.make (see
 * tests/netns/suite.h, whose main checked TPIN_INIT and TPIN_PROXY).
 * Returns 0 or -1, said on stderr.
 */
int at_prepare(void);

/* at_after - the nh_suite.after of the attack suites: kills stray proxies, removes the run
 * directory. */
void at_after(void);

/* The nh_suite of an attack suite whose Suite is built by @make. */
#define AT_SUITE(make)                                                           \
	static Suite *at_make_(void)                                             \
	{                                                                        \
		return at_prepare() ? NULL : make();                             \
	}                                                                        \
	const struct nh_suite nh_suite = { .make = at_make_,                     \
					   .env = { "TPIN_INIT", "TPIN_PROXY" }, \
					   .after = at_after }
/*
 * One TCase per test, named after it, so CK_RUN_CASE=test_x runs just one:
 * the fixture and a timeout of @secs.
 */
#define AT_CASE(suite, fn, secs)                                       \
	do {                                                           \
		TCase *tc_ = tcase_create(#fn);                        \
		tcase_add_checked_fixture(tc_, at_setup, at_teardown); \
		tcase_set_timeout(tc_, secs);                          \
		tcase_add_test(tc_, fn);                               \
		suite_add_tcase(suite, tc_);                           \
	} while (0)

/* Per-test fixture: a fresh namespace pair and directory; teardown undoes. */
void at_setup(void);
void at_teardown(void);

/* Sends all of @buf (nh_send_all() without a time limit); fails the test on an error. */
void at_write_all(int fd, const void *buf, size_t len);
/* The whole file, "" when missing; free it. */
char *at_slurp(const char *path);

/* tpin-init --netns POD FLAGS: its exit status; *err its stderr (free). */
int at_init_run(char **err, const char *flags);
/* The same, asserting exit 0. */
void at_install(const char *flags);

void at_app_start(unsigned flags);
int at_app_count(const char *needle);

/*
 * Starts tpin-proxy in the pod (JSON access log, two loops, the extra
 * arguments, NULL-terminated) and returns once it says it relays; fails
 * the test with its output when it exits first (an unknown flag, say).
 */
#define at_proxy_start(...) at_proxy_start_argv((const char *const[]){ __VA_ARGS__ })
void at_proxy_start_argv(const char *const *extra);
/* Sends @sig (0: none) and waits for the exit: the wait status. */
int at_proxy_stop(int sig, int timeout_ms);

/*
 * One request from @ns (bound to @src when not NULL) to ip:port, read to
 * EOF, all within @timeout_ms. Returns the status code (0 when the answer
 * is no HTTP), or -errno (-ETIMEDOUT). The answer goes to @buf.
 */
int at_http(const char *ns, const char *src, const char *ip, uint16_t port, const char *req,
	    int timeout_ms, char *buf, size_t cap);
/* GET @path on the admin port (127.0.0.1 in the pod): the body (free it). */
char *at_admin_get(const char *path);
/* One series of /metrics, -1 when absent. */
long long at_metric(const char *series);
long long at_metric_wait(const char *series, long long want);
long at_conntrack(const char *ns);

/*
 * The access-log entry whose original_dst is @orig (and result @result when
 * not NULL), waiting up to AT_WAIT_MS; json_decref it. NULL when none.
 */
json_t *at_log_find(const char *orig, const char *result);

/*
 * Connects from @ns, bound to src:sport (NULL / 0: the kernel's choice;
 * IP_FREEBIND, so any address of the family may be named), to ip:port.
 * _start returns the non-blocking socket at once; the other waits at most
 * @timeout_ms and returns the socket or -errno.
 */
int at_connect_from_start(const char *ns, const char *src, uint16_t sport, const char *ip,
			  uint16_t port);
int at_connect_from(const char *ns, const char *src, uint16_t sport, const char *ip, uint16_t port,
		    int timeout_ms);

/* ---- capture ------------------------------------------------------------- */

struct at_seg {
	bool out; /* sent by this namespace */
	uint8_t flags;
	uint32_t seq, ack;
	uint16_t sport, dport;
	unsigned len; /* payload */
	char src[48], dst[48];
};

#define AT_FIN 0x01
#define AT_SYN 0x02
#define AT_RST 0x04
#define AT_ACK 0x10

/* An AF_PACKET socket on @ifname of @ns: every TCP segment both ways. */
int at_cap_open(const char *ns, const char *ifname);
/* The next TCP segment within @timeout_ms: 1, or 0 when none came. */
int at_cap_next(int fd, struct at_seg *s, int timeout_ms);

#endif
