// SPDX-License-Identifier: MIT
/* The main() of every netns suite; see suite.h. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "suite.h"

int main(int argc, char **argv)
{
	const struct nh_suite *ns = &nh_suite;
	SRunner *sr;
	Suite *s;
	int failed;

	nh_init();
	for (int i = 0; i < NH_SUITE_ENV_MAX && ns->env[i]; i++) {
		const char *v;

		if (i + 1 < argc && setenv(ns->env[i], argv[i + 1], 1))
			return 1;
		v = getenv(ns->env[i]);
		if (!v || access(v, X_OK)) {
			fprintf(stderr, "%s: %s=%s: %s; set it, or pass the path as argument %d\n",
				program_invocation_short_name, ns->env[i], v ? v : "",
				v ? strerror(errno) : "not set", i + 1);
			return 1;
		}
	}
	s = ns->make();
	if (!s)
		return 1;
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	if (ns->after)
		ns->after();
	nh_cleanup();
	return failed ? 1 : 0;
}
