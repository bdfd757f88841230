// SPDX-License-Identifier: MIT
/*
 * The harness tested on its own, so a failure in the init or proxy suites
 * points at the product and not at the scaffolding.
 */

#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"

static void teardown(void)
{
	nh_cleanup();
}

static int path_exists(const char *ns)
{
	char path[128];
	struct stat st;

	return !stat(nh_ns_path(ns, path, sizeof(path)), &st);
}

START_TEST(test_sh_captures)
{
	char name[NH_NAME_MAX], *out, *err;

	ck_assert_msg(!nh_ns_new(name, "sh"), "%s", nh_err());
	ck_assert_int_eq(nh_sh(NULL, &out, &err, "echo out; echo err >&2; exit 3"), 3);
	ck_assert_str_eq(out, "out\n");
	ck_assert_str_eq(err, "err\n");
	free(out);
	free(err);
	/* A fresh namespace holds lo only, and lo is down. */
	ck_assert_int_eq(nh_sh(name, &out, NULL, "ip -o link show | wc -l; ip -o link show lo"), 0);
	ck_assert_msg(!strncmp(out, "1\n", 2), "links: %s", out);
	ck_assert_msg(strstr(out, "state DOWN"), "lo: %s", out);
	free(out);
	ck_assert_int_eq(nh_lo_up(name), 0);
	ck_assert_int_eq(nh_sh(name, &out, NULL, "ip -o link show lo"), 0);
	ck_assert_msg(strstr(out, ",UP"), "lo: %s", out);
	free(out);
}
END_TEST

static int in_other_ns(void *arg)
{
	const char *home = arg;
	char buf[64];
	ssize_t n = readlink("/proc/self/ns/net", buf, sizeof(buf) - 1);

	if (n < 0)
		return 1;
	buf[n] = '\0';
	return strcmp(buf, home) ? 42 : 2;
}

START_TEST(test_call_and_sockets)
{
	struct nh_pair p;
	char home[64], a[64];
	ssize_t n = readlink("/proc/self/ns/net", home, sizeof(home) - 1);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int lfd, cfd, afd;

	ck_assert_int_gt(n, 0);
	home[n] = '\0';
	ck_assert_msg(!nh_pair_new(&p, "hs"), "%s", nh_err());
	ck_assert_int_eq(nh_call(p.pod, in_other_ns, home), 42);
	/* The veth carries both families at once (v6 with nodad). */
	lfd = nh_listen(p.pod, NH_POD4, 7000, false);
	ck_assert_msg(lfd >= 0, "%s", nh_err());
	cfd = nh_connect(p.client, NH_POD4, 7000, 2000);
	ck_assert_msg(cfd >= 0, "%s", nh_err());
	afd = nh_accept(lfd, 2000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	ck_assert_int_eq(getpeername(afd, (struct sockaddr *)&ss, &len), 0);
	nh_addr_str((struct sockaddr *)&ss, a, sizeof(a));
	ck_assert_msg(!strncmp(a, NH_CLIENT4 ":", strlen(NH_CLIENT4) + 1), "peer %s", a);
	close(afd);
	close(cfd);
	close(lfd);
	lfd = nh_listen(p.pod, NH_POD6, 7000, true);
	ck_assert_msg(lfd >= 0, "%s", nh_err());
	cfd = nh_connect(p.client, NH_POD6, 7000, 2000);
	ck_assert_msg(cfd >= 0, "%s", nh_err());
	afd = nh_accept(lfd, 2000);
	ck_assert_msg(afd >= 0, "%s", nh_err());
	close(afd);
	close(cfd);
	/* Nothing listens on 7001: refused, not timed out. */
	ck_assert_int_eq(nh_connect(p.client, NH_POD4, 7001, 2000), -ECONNREFUSED);
	ck_assert_int_eq(nh_drain(lfd), 0);
	close(lfd);
}
END_TEST

START_TEST(test_sysctl_per_netns)
{
	struct nh_pair p;
	char home[64], v[64];

	ck_assert_msg(!nh_pair_new(&p, "sy"), "%s", nh_err());
	ck_assert_int_eq(nh_sysctl_read(NULL, "net.ipv4.ip_local_port_range", home, sizeof(home)),
			 0);
	ck_assert_int_eq(nh_sysctl_save(p.client, "net.ipv4.ip_local_port_range"), 0);
	ck_assert_msg(!nh_sysctl_write(p.client, "net/ipv4/ip_local_port_range", "20000 20099"),
		      "%s", nh_err());
	ck_assert_int_eq(nh_sysctl_read(p.client, "net.ipv4.ip_local_port_range", v, sizeof(v)), 0);
	ck_assert_str_eq(v, "20000\t20099");
	/* Per namespace: the pod and the host keep theirs. */
	ck_assert_int_eq(nh_sysctl_read(p.pod, "net.ipv4.ip_local_port_range", v, sizeof(v)), 0);
	ck_assert_str_ne(v, "20000\t20099");
	ck_assert_int_eq(nh_sysctl_read(NULL, "net.ipv4.ip_local_port_range", v, sizeof(v)), 0);
	ck_assert_str_eq(v, home);
}
END_TEST

START_TEST(test_cleanup_deletes)
{
	struct nh_pair p;
	char name[NH_NAME_MAX];

	ck_assert_msg(!nh_pair_new(&p, "cl"), "%s", nh_err());
	ck_assert_msg(!nh_ns_new(name, "cl"), "%s", nh_err());
	ck_assert(path_exists(p.client) && path_exists(p.pod) && path_exists(name));
	nh_cleanup();
	ck_assert(!path_exists(p.client));
	ck_assert(!path_exists(p.pod));
	ck_assert(!path_exists(name));
}
END_TEST

static Suite *harness_suite(void)
{
	Suite *s = suite_create("netns_harness");
	TCase *tc = tcase_create("harness");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_sh_captures);
	tcase_add_test(tc, test_call_and_sockets);
	tcase_add_test(tc, test_sysctl_per_netns);
	tcase_add_test(tc, test_cleanup_deletes);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = { .make = harness_suite };
