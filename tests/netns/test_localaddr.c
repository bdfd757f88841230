// SPDX-License-Identifier: MIT
/*
 * The proxy's list of the namespace's own addresses (src/proxy/localaddr.c)
 * against real rtnetlink in a namespace of the test's own: what the kernel
 * says when an address leaves one of two interfaces, and when notifications
 * are lost and the dump that should replace them fails.
 */

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "evset.h"
#include "harness.h"
#include "localaddr.h"
#include "suite.h"

static char ns[NH_NAME_MAX];
static uv_loop_t loop;
static struct evset set;
static struct localaddr la;

static void teardown(void)
{
	nh_cleanup();
}

/* A namespace with interfaces tpla0 and tpla1 (a veth pair) up, this thread in it, the list read.
 */
static void start(void)
{
	int ret;

	ck_assert_msg(!nh_ns_new(ns, "la"), "%s", nh_err());
	ck_assert_int_eq(nh_sh(ns, NULL, NULL,
			       "ip link add tpla0 type veth peer name tpla1 && "
			       "ip link set tpla0 up && ip link set tpla1 up && "
			       "ip addr add 192.0.2.1/32 dev tpla0"),
			 0);
	ck_assert_int_eq(nh_enter(ns), 0);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	ck_assert_int_eq(evset_init(&set, &loop), 0);
	ret = localaddr_init(&la, &set);
	ck_assert_msg(!ret, "localaddr_init: %s", strerror(-ret));
}

static void stop(void)
{
	localaddr_stop(&la);
	evset_close(&set);
	uv_run(&loop, UV_RUN_DEFAULT);
	localaddr_fini(&la);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	nh_enter(NULL);
}

/* The notifications the kernel queued so far, handled. */
static void pump(void)
{
	int i;

	for (i = 0; i < 10; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
}

static bool has(const char *text)
{
	struct sockaddr_storage ss = { 0 };

	if (strchr(text, ':')) {
		ss.ss_family = AF_INET6;
		ck_assert_int_eq(
			inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
	} else {
		ss.ss_family = AF_INET;
		ck_assert_int_eq(inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr),
				 1);
	}
	return localaddr_has(&la, (struct sockaddr *)&ss);
}

/*
 * One address on two interfaces: its removal from one leaves it the
 * namespace's (the kernel still accepts connections to it), until the
 * other lets it go too.
 */
START_TEST(test_address_on_two_interfaces)
{
	start();
	ck_assert_int_eq(nh_sh(ns, NULL, NULL,
			       "ip addr add 192.0.2.1/32 dev tpla1 && "
			       "ip addr add 2001:db8::1/128 dev tpla0 nodad && "
			       "ip addr add 2001:db8::1/128 dev tpla1 nodad"),
			 0);
	pump();
	ck_assert(has("192.0.2.1"));
	ck_assert(has("2001:db8::1"));
	ck_assert_int_eq(nh_sh(ns, NULL, NULL,
			       "ip addr del 192.0.2.1/32 dev tpla0 && "
			       "ip addr del 2001:db8::1/128 dev tpla1"),
			 0);
	pump();
	ck_assert_msg(has("192.0.2.1"), "192.0.2.1 is still on tpla1");
	ck_assert_msg(has("2001:db8::1"), "2001:db8::1 is still on tpla0");
	ck_assert_int_eq(nh_sh(ns, NULL, NULL,
			       "ip addr del 192.0.2.1/32 dev tpla1 && "
			       "ip addr del 2001:db8::1/128 dev tpla0"),
			 0);
	pump();
	ck_assert(!has("192.0.2.1"));
	ck_assert(!has("2001:db8::1"));
	stop();
}
END_TEST

/*
 * The notification socket overflows (ENOBUFS: notifications lost) while
 * no descriptor is left for the dump that should replace them. The
 * addresses known before stay known, and the dump is tried again until
 * the addresses added meanwhile are known too.
 */
START_TEST(test_lost_notifications_failed_dump)
{
	struct rlimit old, low;
	int small = 1024, fd, i;

	start();
	ck_assert(has("192.0.2.1"));
	ck_assert_int_eq(setsockopt(la.io.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	/* 200 notifications: far more than the socket holds. */
	ck_assert_int_eq(
		nh_sh(ns, NULL, NULL,
		      "for i in $(seq 1 200); do echo addr add 198.51.100.$i/32 dev tpla1; "
		      "done | ip -batch -"),
		0);
	/* The lowest free descriptor becomes the limit: the dump's socket() fails. */
	fd = dup(0);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)fd;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	pump();
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_msg(has("192.0.2.1"), "the failed dump lost the addresses known before");
	/* The retry comes LOCALADDR_RETRY_MS later; 5 s is only a bound. */
	for (i = 0; i < 500 && !has("198.51.100.200"); i++) {
		usleep(10000);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	ck_assert_msg(has("198.51.100.200"), "the addresses of the lost notifications never came");
	ck_assert(has("198.51.100.1"));
	ck_assert(has("192.0.2.1"));
	stop();
}
END_TEST

static Suite *localaddr_suite(void)
{
	Suite *s = suite_create("localaddr");
	TCase *tc = tcase_create("rtnetlink");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_address_on_two_interfaces);
	tcase_add_test(tc, test_lost_notifications_failed_dump);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = {
	.make = localaddr_suite,
};
