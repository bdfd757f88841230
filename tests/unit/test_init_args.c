// SPDX-License-Identifier: MIT
/*
 * tpin-init's command line: every configuration that would lose traffic is
 * bad usage (exit 2, one line naming the conflict, nothing touched), and
 * list flags given more than once add up. Parsed through tpin_args_parse()
 * directly, and through the built tpin-init (TPIN_INIT, set by meson) for
 * the exit status and the one line on stderr. Needs no privilege: bad usage
 * is refused before anything is asked of the kernel.
 */

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tpin/args.h"

static const char *tpin_init;

#define ARGV_MAX 24

/* Split @line on spaces into argv (argv[0] "tpin-init"); '' stands for "". */
static int split(char *line, char **argv)
{
	int argc = 0;

	argv[argc++] = (char *)"tpin-init";
	for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		ck_assert_int_lt(argc, ARGV_MAX - 1);
		argv[argc++] = strcmp(tok, "''") ? tok : (char *)"";
	}
	argv[argc] = NULL;
	return argc;
}

/* @out may point into the words (--netns): they live until the next call. */
static int parse(const char *args, struct tpin_args *out, struct tpin_err *err)
{
	static char line[512];
	char *argv[ARGV_MAX];
	int argc;

	snprintf(line, sizeof(line), "%s", args);
	argc = split(line, argv);
	memset(err, 0, sizeof(*err));
	return tpin_args_parse(out, argc, argv, err);
}

struct bad_case {
	const char *args;
	const char *names; /* the message must contain it */
};

static const struct bad_case bad_cases[] = {
	/* The proxy's own socket mark: intercepted connections never reach it. */
	{ "-t 0x53a", "0x53a" },
	{ "--mark 1338", "0x53a" },
	/* Nothing left to intercept, however it is spelled. */
	{ "-d *", "\"*\"" },
	{ "-d 1-65535", "nothing would be intercepted" },
	{ "-d 1-40000 -d 40001-65535", "nothing would be intercepted" },
	{ "-b 15006", "nothing would be intercepted" },
	{ "-b 15020-15021 -d 15022", "nothing would be intercepted" },
	{ "-b 8080 -d 8000-9000", "nothing would be intercepted" },
	/* The capture port on another listener of the proxy. */
	{ "-z 15000", "admin port" },
	{ "-z 15007 --admin-port 15007", "15007" },
	{ "-z 15021", "15021" },
	{ "--admin-port 15021", "15021" },
	/* Empty values are mistakes (an unset variable), not "none". */
	{ "-b ''", "inbound-ports" },
	{ "-d ''", "exclude-ports" },
	{ "--exclude-sources ''", "exclude-sources" },
	{ "--netns ''", "netns" },
	{ "--upstream remote", "remote" },
	{ "--preserve-source", "inbound-ports" },
	{ "-m redirect -b 9080 --preserve-source", "tproxy" },
	{ "-b 70000", "70000" },
	{ "-r 254", "254" },
	{ "--dry-run --cleanup", "only one of" },
	{ "--mode", "--mode needs a value" },
	{ "--bogus", "--bogus" },
	{ "extra", "extra" },
	/* Outbound capture (issue 10). Its port on another of the proxy's ports. */
	{ "-p 15006", "capture port" },
	{ "-p 15000", "admin port" },
	{ "-p 15021", "15021" },
	{ "-m redirect -z 15001 --outbound", "15001" },
	{ "-p 0", "0" },
	/* Answers on directly served ports would be captured: refused in tproxy mode. */
	{ "--outbound -b 9080", "--inbound-ports \"*\"" },
	{ "-b 9080 --preserve-source -u 1337", "--preserve-source" },
	/* Owners: numbers, never -1, never empty. */
	{ "-u ''", "uids" },
	{ "-u app", "app" },
	{ "-u -1", "-1" },
	{ "-u 4294967295", "4294967295" },
	{ "-g 1,,2", "empty" },
	{ "-g 1,", "empty" },
	/* Nothing left to capture outbound, however it is spelled. */
	{ "-o *", "\"*\"" },
	{ "-q 80 -o 70-90", "nothing would be captured outbound" },
	{ "-q 80 -q 443 -o 443 -o 80", "nothing would be captured outbound" },
	{ "-x 0.0.0.0/0,::/0", "nothing would be captured outbound" },
	{ "-i 203.0.113.0/24 -x 203.0.0.0/16", "nothing would be captured outbound" },
	{ "-i 2001:db8::/32 --no-ipv6", "nothing would be captured outbound" },
	{ "-i ''", "CIDRs" },
	{ "-x ''", "CIDRs" },
	{ "-q ''", "ports" },
	{ "-i 203.0.113.0/33", "203.0.113.0/33" },
	{ "-q 80-70", "80-70" },
	/* NAT is conntrack: --notrack has nothing to do in redirect mode. */
	{ "-m redirect --notrack", "tproxy" },
	/* --outbound-mode: a mode, never TPROXY beside inbound NAT, never with --notrack. */
	{ "--outbound-mode nat", "\"nat\"" },
	{ "--outbound-mode ''", "\"\"" },
	{ "-m redirect --outbound-mode tproxy", "\"tproxy\" with -m redirect" },
	{ "--outbound-mode redirect --notrack", "--notrack with --outbound-mode \"redirect\"" },
	{ "--outbound-mode redirect -p 15006", "capture port" },
};

START_TEST(test_bad_usage)
{
	const struct bad_case *c = &bad_cases[_i];
	struct tpin_args args;
	struct tpin_err err;
	int ret = parse(c->args, &args, &err);

	ck_assert_msg(ret == -EINVAL || ret == -E2BIG, "`%s` parsed (%d)", c->args, ret);
	ck_assert_int_eq(err.code, ret);
	ck_assert_msg(strstr(err.msg, c->names), "`%s`: \"%s\" does not name \"%s\"", c->args,
		      err.msg, c->names);
	ck_assert_msg(!strchr(err.msg, '\n'), "`%s`: more than one line: %s", c->args, err.msg);
}
END_TEST

/* The binary: exit 2, one line on stderr naming the value. */
START_TEST(test_bad_usage_exits_2)
{
	const struct bad_case *c = &bad_cases[_i];
	char cmd[1024], out[4096], *p;
	size_t n;
	FILE *f;
	int status, lines = 0;

	char line[512], *argv[ARGV_MAX];
	size_t off;
	int argc;

	/* Each argument single-quoted for the shell ("*" must stay a star). */
	snprintf(line, sizeof(line), "%s", c->args);
	argc = split(line, argv);
	off = (size_t)snprintf(cmd, sizeof(cmd), "%s", tpin_init);
	/* --dry-run would print a script: bad usage must be refused before it. */
	if (!strstr(c->args, "--dry-run"))
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " --dry-run");
	for (int i = 1; i < argc; i++)
		off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " '%s'", argv[i]);
	snprintf(cmd + off, sizeof(cmd) - off, " 2>&1 >/dev/null");
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = '\0';
	status = pclose(f);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2, "`%s` exited %d: %s", cmd,
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
	for (p = out; *p; p++)
		lines += *p == '\n';
	ck_assert_msg(lines == 1 && !strncmp(out, "tpin-init: ", 11) && strstr(out, c->names),
		      "`%s`: want one line naming \"%s\", got: %s", cmd, c->names, out);
}
END_TEST

START_TEST(test_lists_add_up)
{
	struct tpin_args a;
	struct tpin_err err;

	/* The first -b replaces the default "*"; the next ones add to it. */
	ck_assert_int_eq(parse("-b 80 -b 81,9000-9010", &a, &err), 0);
	ck_assert(!a.cfg.inbound.all);
	ck_assert(tpin_ports_contains(&a.cfg.inbound, 80));
	ck_assert(tpin_ports_contains(&a.cfg.inbound, 81));
	ck_assert(tpin_ports_contains(&a.cfg.inbound, 9005));
	ck_assert(!tpin_ports_contains(&a.cfg.inbound, 82));
	ck_assert_uint_eq(a.cfg.inbound.n, 2); /* 80-81 merged, 9000-9010 */

	/* "*" anywhere means every port. */
	ck_assert_int_eq(parse("-b 80 -b *", &a, &err), 0);
	ck_assert(a.cfg.inbound.all);
	ck_assert_int_eq(parse("-b * -b 80", &a, &err), 0);
	ck_assert(a.cfg.inbound.all);

	/* -d 80 -d 81 excludes both, on top of the always excluded ports. */
	ck_assert_int_eq(parse("-d 80 -d 81", &a, &err), 0);
	ck_assert(tpin_ports_contains(&a.cfg.excluded, 80));
	ck_assert(tpin_ports_contains(&a.cfg.excluded, 81));
	ck_assert(tpin_ports_contains(&a.cfg.excluded, 15021));
	ck_assert(tpin_config_intercepts(&a.cfg, 82));
	ck_assert(!tpin_config_intercepts(&a.cfg, 81));

	ck_assert_int_eq(parse("--exclude-sources 203.0.113.0/24 --exclude-sources "
			       "2001:db8::/32,203.0.113.7",
			       &a, &err),
			 0);
	ck_assert_uint_eq(a.cfg.exclude_sources.n, 2); /* 203.0.113.7 is inside the /24 */
	ck_assert_uint_eq(tpin_cidrs_count(&a.cfg.exclude_sources, AF_INET), 1);
	ck_assert_uint_eq(tpin_cidrs_count(&a.cfg.exclude_sources, AF_INET6), 1);

	/* The outbound lists: the first -u, -g, -q, -i replaces its default. */
	ck_assert_int_eq(parse("-u 7 -u 1,7,3 -g 5 -g 6", &a, &err), 0);
	ck_assert(a.cfg.outbound);
	ck_assert_uint_eq(a.cfg.exempt_uids.n, 3);
	ck_assert_uint_eq(a.cfg.exempt_uids.v[0], 1);
	ck_assert_uint_eq(a.cfg.exempt_uids.v[1], 3);
	ck_assert_uint_eq(a.cfg.exempt_uids.v[2], 7);
	ck_assert_uint_eq(a.cfg.exempt_gids.n, 2);
	ck_assert_int_eq(parse("-q 80 -q 443 -o 8080 -o 8443", &a, &err), 0);
	ck_assert(!a.cfg.out_ports.all && a.cfg.out_ports.n == 2);
	ck_assert(tpin_ports_contains(&a.cfg.out_excluded, 8080));
	ck_assert(tpin_ports_contains(&a.cfg.out_excluded, 8443));
	ck_assert_int_eq(
		parse("-i 203.0.113.0/24 -i 2001:db8::/32 -x 203.0.113.9 -x ::1", &a, &err), 0);
	ck_assert(!a.cfg.out_all);
	ck_assert_uint_eq(a.cfg.out_include.n, 2);
	ck_assert_uint_eq(a.cfg.out_exclude.n, 2);
	ck_assert(tpin_config_captures_family(&a.cfg, AF_INET));
	ck_assert(tpin_config_captures_family(&a.cfg, AF_INET6));
	/* "*" anywhere means every destination. */
	ck_assert_int_eq(parse("-i 203.0.113.0/24 -i *", &a, &err), 0);
	ck_assert(a.cfg.out_all);
	/* -i of one family only leaves the other alone. */
	ck_assert_int_eq(parse("-i 203.0.113.0/24", &a, &err), 0);
	ck_assert(tpin_config_captures_family(&a.cfg, AF_INET));
	ck_assert(!tpin_config_captures_family(&a.cfg, AF_INET6));
	ck_assert_int_eq(parse("-x ::/0", &a, &err), 0);
	ck_assert(tpin_config_captures_family(&a.cfg, AF_INET));
	ck_assert(!tpin_config_captures_family(&a.cfg, AF_INET6));
}
END_TEST

/* Outbound capture is off unless asked for; any outbound flag asks for it. */
START_TEST(test_outbound_switch)
{
	static const char *const flags[] = {
		"--outbound", "-p 15101", "-u 1", "-g 1",
		"-q 80",      "-o 80",	  "-i *", "-x 203.0.113.0/24"
	};
	struct tpin_args a;
	struct tpin_err err;

	ck_assert_int_eq(parse("", &a, &err), 0);
	ck_assert(!a.cfg.outbound && !a.cfg.notrack);
	/* Its port is excluded from inbound only when it is in use. */
	ck_assert(tpin_config_intercepts(&a.cfg, 15001));
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		ck_assert_msg(parse(flags[i], &a, &err) == 0, "%s: %s", flags[i], err.msg);
		ck_assert_msg(a.cfg.outbound, "%s leaves outbound capture off", flags[i]);
		ck_assert(!tpin_config_intercepts(&a.cfg, a.cfg.outbound_port));
	}
	/* The defaults: Istio's port, owner 1337 (uid and gid), everything else captured. */
	ck_assert_int_eq(parse("--outbound", &a, &err), 0);
	ck_assert_uint_eq(a.cfg.outbound_port, 15001);
	ck_assert(a.cfg.exempt_uids.n == 1 && a.cfg.exempt_uids.v[0] == 1337);
	ck_assert(a.cfg.exempt_gids.n == 1 && a.cfg.exempt_gids.v[0] == 1337);
	ck_assert(a.cfg.out_ports.all && !a.cfg.out_excluded.n && a.cfg.out_all);
	/* --notrack alone turns nothing else on. */
	ck_assert_int_eq(parse("--notrack", &a, &err), 0);
	ck_assert(a.cfg.notrack && !a.cfg.outbound);
	/* REDIRECT sees first packets only: named inbound ports are fine there. */
	ck_assert_int_eq(parse("-m redirect -b 9080 --outbound", &a, &err), 0);
	ck_assert_int_eq(parse("--outbound --notrack -d 22", &a, &err), 0);
	/*
	 * --outbound-mode turns capture on too, and follows -m when left out.
	 * Outbound NAT beside TPROXY inbound (Istio's TPROXY mode) takes named
	 * ports and --preserve-source, as redirect mode does.
	 */
	ck_assert_int_eq(parse("--outbound-mode redirect", &a, &err), 0);
	ck_assert(a.cfg.outbound && a.cfg.mode == TPIN_MODE_TPROXY);
	ck_assert(tpin_config_outbound_nat(&a.cfg) && !tpin_config_outbound_tproxy(&a.cfg));
	ck_assert(!tpin_config_intercepts(&a.cfg, 15001));
	ck_assert_int_eq(parse("-m redirect --outbound", &a, &err), 0);
	ck_assert(tpin_config_outbound_nat(&a.cfg));
	ck_assert_int_eq(parse("--outbound", &a, &err), 0);
	ck_assert(tpin_config_outbound_tproxy(&a.cfg));
	ck_assert_int_eq(parse("--outbound-mode tproxy -m tproxy", &a, &err), 0);
	ck_assert(tpin_config_outbound_tproxy(&a.cfg));
	ck_assert_int_eq(parse("-b 9080 --preserve-source --outbound-mode redirect", &a, &err), 0);
	ck_assert_msg(parse("-m redirect --outbound-mode redirect", &a, &err) == 0, "%s", err.msg);
}
END_TEST

START_TEST(test_good_usage)
{
	struct tpin_args a;
	struct tpin_err err;

	ck_assert_int_eq(parse("", &a, &err), 0);
	ck_assert_int_eq(a.action, TPIN_ACT_INSTALL);
	ck_assert(a.cfg.inbound.all && !a.cfg.upstream_localhost && !a.netns);
	ck_assert_int_eq(parse("--upstream localhost --netns pod1 --check", &a, &err), 0);
	ck_assert(a.cfg.upstream_localhost);
	ck_assert_str_eq(a.netns, "pod1");
	ck_assert_int_eq(a.action, TPIN_ACT_CHECK);
	/* Excluding 15021 again, or a port -b does not name, is harmless. */
	ck_assert_int_eq(parse("-b 9080,15021 -d 15021 --preserve-source", &a, &err), 0);
	ck_assert(tpin_config_intercepts(&a.cfg, 9080));
	ck_assert(!tpin_config_intercepts(&a.cfg, 15021));
	ck_assert_int_eq(parse("-m redirect -z 15001 --admin-port 15002", &a, &err), 0);
	ck_assert_int_eq(parse("-h", &a, &err), 0);
	ck_assert_int_eq(a.action, TPIN_ACT_HELP);
}
END_TEST

static Suite *args_suite(void)
{
	Suite *s = suite_create("init_args");
	TCase *tc = tcase_create("args");

	tcase_add_loop_test(tc, test_bad_usage, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_loop_test(tc, test_bad_usage_exits_2, 0,
			    sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(tc, test_lists_add_up);
	tcase_add_test(tc, test_good_usage);
	tcase_add_test(tc, test_outbound_switch);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	tpin_init = getenv("TPIN_INIT");
	if (!tpin_init || access(tpin_init, X_OK)) {
		fprintf(stderr, "test_init_args: set TPIN_INIT to the built tpin-init\n");
		return 1;
	}
	sr = srunner_create(args_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
