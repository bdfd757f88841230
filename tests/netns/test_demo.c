// SPDX-License-Identifier: MIT
/*
 * The demo itself, in its short mode: tools/demo --short --json, then its
 * result read back. The REDIRECT pod (NAT both ways) and the Istio-TPROXY
 * pod (TPROXY inbound, NAT outbound) must have filled their conntrack tables
 * and lost requests; the tpin pod (TPROXY both ways) must have kept 0
 * entries and lost none, though every request made it call the backend
 * too. Afterwards no namespace of the demo may be left and the global
 * nf_conntrack_max must have its old value. Serial (meson is_parallel:
 * false) because the demo lowers that global sysctl.
 *
 * TPIN_DEMO names tools/demo and TPIN_BUILD the build directory whose
 * binaries it runs (both set by meson).
 */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"
#include "result.h"

#define CT_MAX "net.netfilter.nf_conntrack_max"

static const char *demo, *build;

/* A pod whose table filled: conntrack entries up to the limit, requests lost. */
static void assert_filled(json_t *p, const char *name, long ct_max)
{
	ck_assert_msg(p, "no %s pod in the result", name);
	ck_assert_msg(result_num(p, "peak_entries") >= ct_max * 95 / 100,
		      "%s peaked at %ld entries of %ld", name, result_num(p, "peak_entries"),
		      ct_max);
	ck_assert_msg(result_num(p, "drops") > 0, "%s dropped nothing", name);
	ck_assert_msg(result_num(p, "failed") > 0, "%s lost no request", name);
	ck_assert_int_lt(result_num(p, "ok"), result_num(p, "started"));
}

START_TEST(test_demo_short)
{
	char dir[] = "/tmp/tpin-demo-test.XXXXXX", json[128], chart[128], before[32], after[32];
	char *out = NULL, *err = NULL, *svg;
	json_t *v, *pods, *t, *names;
	struct stat st;
	long ct_max;
	int ret;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(json, sizeof(json), "%s/result.json", dir);
	snprintf(chart, sizeof(chart), "%s/race.svg", dir);
	ck_assert_int_eq(nh_sysctl_read(NULL, CT_MAX, before, sizeof(before)), 0);

	ret = nh_sh(NULL, &out, &err, "%s --short --bin %s --json %s --chart %s", demo, build, json,
		    chart);
	ck_assert_msg(ret == 0, "tools/demo --short exited %d\n%s\n%s", ret, out, err);

	/* Whatever happened, the global sysctl is back. */
	ck_assert_int_eq(nh_sysctl_read(NULL, CT_MAX, after, sizeof(after)), 0);
	ck_assert_str_eq(after, before);

	v = result_load(json);
	ct_max = result_num(v, "ct_max");
	ck_assert_int_eq(result_num(v, "ct_max_saved"), atol(before));
	pods = json_object_get(v, "pods");
	ck_assert_int_eq(json_object_size(pods), 3);

	/*
	 * REDIRECT and Istio-TPROXY: four conntrack entries per request (the
	 * client's connection, the proxy's to the app, the app's to the
	 * backend, the proxy's to the backend), until the table is full. One
	 * nat rule tracks the TPROXY inbound flows too.
	 */
	assert_filled(json_object_get(pods, "redirect"), "REDIRECT", ct_max);
	assert_filled(json_object_get(pods, "istio"), "Istio-TPROXY", ct_max);

	/* tpin: no conntrack at all, every request answered, backend call included. */
	t = json_object_get(pods, "tpin");
	ck_assert_msg(t, "no tpin pod in %s", json);
	ck_assert_int_eq(result_num(t, "peak_entries"), 0);
	ck_assert_int_eq(result_num(t, "drops"), 0);
	ck_assert_int_eq(result_num(t, "failed"), 0);
	ck_assert_int_gt(result_num(t, "started"), 0);
	ck_assert_int_eq(result_num(t, "ok"), result_num(t, "started"));

	/* Nothing of the demo is left. */
	names = json_object_get(v, "namespaces");
	ck_assert_int_ge(json_array_size(names), 5);
	for (size_t i = 0; i < json_array_size(names); i++) {
		char path[128];

		snprintf(path, sizeof(path), "/run/netns/%s",
			 json_string_value(json_array_get(names, i)));
		ck_assert_msg(stat(path, &st) != 0, "namespace %s is left", path);
	}

	/* The chart names the three pods and labels its axes. */
	svg = nh_slurp(chart);
	ck_assert_msg(svg != NULL, "%s: %s", chart, strerror(errno));
	ck_assert_ptr_nonnull(strstr(svg, "<svg"));
	ck_assert_ptr_nonnull(strstr(svg, "REDIRECT"));
	ck_assert_ptr_nonnull(strstr(svg, "Istio-TPROXY"));
	ck_assert_ptr_nonnull(strstr(svg, "tpin"));
	ck_assert_ptr_nonnull(strstr(svg, "conntrack entries"));
	ck_assert_ptr_nonnull(strstr(svg, "seconds since"));

	free(svg);
	json_decref(v);
	free(out);
	free(err);
	unlink(json);
	unlink(chart);
	rmdir(dir);
}
END_TEST

static Suite *demo_suite(void)
{
	Suite *s = suite_create("demo");
	TCase *tc = tcase_create("demo");

	demo = getenv("TPIN_DEMO");
	build = getenv("TPIN_BUILD");
	/* nh_sh gives a command 60 s; the short demo takes about 15. */
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_demo_short);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = { .make = demo_suite, .env = { "TPIN_DEMO", "TPIN_BUILD" } };
