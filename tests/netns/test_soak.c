// SPDX-License-Identifier: MIT
/*
 * The soak under faults in its short CI variant: tools/soak --short --json,
 * then its result read back. No byte may be corrupted; every failed
 * connection must fall in a fault's window (the proxy's or the app's kill);
 * the proxy's descriptors must be exactly back to their baseline and its
 * RSS within the soak's slack; new connections must be served within a
 * second of each restart.
 * Serial: it loads both cores and times restarts.
 *
 * TPIN_SOAK names tools/soak and TPIN_BUILD the build directory whose
 * binaries it runs (both set by meson).
 */

#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"
#include "result.h"

static const char *soak, *build;
/* ASan or UBSan build: RSS growth is the sanitizer's quarantine, not a leak. */
static bool sanitized;

START_TEST(test_soak_short)
{
	char json[64], *out = NULL, *err = NULL;
	json_t *v, *c, *p, *base, *after, *r;
	int ret;

	snprintf(json, sizeof(json), "/tmp/tpt-soak-%d.json", (int)getpid());
	ret = nh_sh(NULL, &out, &err, "%s --short --bin %s --json %s%s", soak, build, json,
		    sanitized ? " --rss-slack 1048576" : "");
	v = result_load(json);
	/* The soak's own verdict, with its reason, first. */
	ck_assert_msg(ret == 0, "tools/soak --short exited %d\n%s\n%s", ret, out, err);

	c = json_object_get(v, "connections");
	ck_assert_int_gt(result_num(c, "ok"), 100);
	ck_assert_int_eq(result_num(v, "corrupted"), 0);
	ck_assert_int_eq(result_num(json_object_get(v, "failures"), "unexplained"), 0);
	ck_assert_int_gt(result_num(json_object_get(v, "bytes"), "verified"), 0);
	ck_assert_int_gt(result_num(json_object_get(v, "faults"), "client_resets"), 0);
	ck_assert_int_gt(result_num(json_object_get(v, "faults"), "client_half_closes"), 0);

	p = json_object_get(v, "proxy");
	base = json_object_get(p, "baseline");
	after = json_object_get(p, "after");
	ck_assert_int_gt(result_num(base, "fds"), 0);
	ck_assert_int_eq(result_num(after, "fds"), result_num(base, "fds"));
	if (!sanitized)
		ck_assert_int_le(result_num(after, "rss_kib") - result_num(base, "rss_kib"), 4096);

	r = json_object_get(v, "restarts");
	ck_assert_msg(json_array_size(r) == 2, "two restarts, not %zu", json_array_size(r));
	for (size_t i = 0; i < json_array_size(r); i++) {
		long ms = result_num(json_array_get(r, i), "serve_ms");

		ck_assert_msg(ms >= 0 && ms <= 1000, "%s restart served after %ld ms",
			      result_str(json_array_get(r, i), "what"), ms);
	}

	json_decref(v);
	free(out);
	free(err);
	unlink(json);
}
END_TEST

static Suite *soak_suite(void)
{
	Suite *s = suite_create("soak");
	TCase *tc = tcase_create("soak");
	const char *san = getenv("TPIN_SANITIZED");

	soak = getenv("TPIN_SOAK");
	build = getenv("TPIN_BUILD");
	sanitized = san && !strcmp(san, "1");
	/* nh_sh gives a command 60 s; the short soak takes about 35. */
	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_soak_short);
	suite_add_tcase(s, tc);
	return s;
}

const struct nh_suite nh_suite = { .make = soak_suite, .env = { "TPIN_SOAK", "TPIN_BUILD" } };
