/* SPDX-License-Identifier: MIT */
/*
 * One main() for every netns suite (tests/netns/main.c). A test file
 * describes its suite in one object,
 *
 *	const struct nh_suite nh_suite = {
 *		.make = proxy_suite,
 *		.env = { "TPIN_INIT", "TPIN_PROXY" },
 *	};
 *
 * and tests/meson.build links it with main.c into an executable of its own,
 * one meson test each (serial where the suite says why). The main does what
 * every suite needs in the same order: exit 77 (skipped) without root or
 * network namespaces (nh_init()), check the programs the suite drives, build
 * and run the suite, run its after hook, clean up.
 */
#ifndef TPIN_TESTS_SUITE_H
#define TPIN_TESTS_SUITE_H

#include <check.h>

#define NH_SUITE_ENV_MAX 4

struct nh_suite {
	/*
	 * Builds the Check suite, after the checks below; this is also the
	 * place for one-time setup in the main process (a run directory, the
	 * descriptor limit). NULL when that setup failed, said on stderr:
	 * the executable then exits 1.
	 */
	Suite *(*make)(void);
	/*
	 * Environment variables naming what the suite drives (meson sets
	 * them), at most NH_SUITE_ENV_MAX; unused slots are NULL. Positional
	 * arguments replace them in order, so a suite runs by hand as
	 * `test_netns_proxy build/tpin-init build/tpin-proxy`. Each must name
	 * an executable, or a directory (a build tree): a missing one is a
	 * broken build, not a reason to skip, and fails the run.
	 */
	const char *env[NH_SUITE_ENV_MAX];
	/* Optional: runs once in the main process after the suite. */
	void (*after)(void);
};

/* Defined by each suite's test file. */
extern const struct nh_suite nh_suite;

#endif
