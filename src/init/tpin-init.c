// SPDX-License-Identifier: MIT
/*
 * tpin-init: installs the rules that hand a pod's inbound TCP to tpin-proxy,
 * with TPROXY (no conntrack) or REDIRECT (for comparison). A thin main: it
 * parses flags into a config and calls the operations of install.c.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/config.h"
#include "tpin/err.h"
#include "tpin/install.h"

#define EXIT_USAGE 2

/* clang-format off: one line of --help per line of source. */
static const char usage_text[] =
	"Usage: tpin-init [OPTION]...\n"
	"Install the nftables rules and policy routing that hand a pod's inbound TCP\n"
	"connections to tpin-proxy, in one atomic nftables transaction over netlink.\n"
	"\n"
	"In tproxy mode (the default) packets reach the proxy's IP_TRANSPARENT\n"
	"listener unchanged: no NAT and no conntrack entry, so a busy pod never fills\n"
	"the conntrack table. redirect mode NATs like Istio's default, for comparison.\n"
	"\n"
	"Actions (default: install):\n"
	"      --dry-run            print the equivalent nft script (ip commands as\n"
	"                           comments) and change nothing; needs no privilege\n"
	"      --check              compare the live state with the flags: exit 0 when\n"
	"                           they match, 1 listing each difference\n"
	"      --cleanup            remove the table, ip rules, routes and ::6; exit 0\n"
	"                           when nothing is there\n"
	"\n"
	"Options (Istio's istio-iptables letters where it has one):\n"
	"  -m, --mode MODE          tproxy (default) or redirect\n"
	"  -z, --capture-port PORT  the proxy's listener (default 15006)\n"
	"  -b, --inbound-ports LIST ports to intercept: \"*\" (default, all TCP) or a\n"
	"                           list of ports and ranges, e.g. 80,8000-8080\n"
	"  -d, --exclude-ports LIST ports never intercepted, added to the always\n"
	"                           excluded 15020,15021,15090, the capture and admin ports\n"
	"      --exclude-sources CIDRS  client addresses never intercepted, IPv4 and IPv6,\n"
	"                           e.g. 203.0.113.0/24,2001:db8::/32\n"
	"  -t, --mark MARK          packet mark of intercepted packets (default 0x539)\n"
	"  -r, --table N            policy routing table for marked packets (default 133)\n"
	"      --admin-port PORT    the proxy's admin port, excluded (default 15000)\n"
	"      --table-name NAME    the nftables table, inet family (default tpin)\n"
	"      --preserve-source    also route the app's replies back to the proxy, so it\n"
	"                           can connect from the client's own address (tproxy mode,\n"
	"                           needs --inbound-ports naming the app's ports)\n"
	"      --no-ipv6            install the IPv4 half only\n"
	"      --netns NAME|PATH    work inside that network namespace (a name under\n"
	"                           /run/netns, or a path such as /proc/PID/ns/net)\n"
	"  -h, --help               show this help\n"
	"      --version            show the version\n"
	"\n"
	"Before changing anything it checks CAP_NET_ADMIN and the kernel features the\n"
	"mode needs, and says what is missing. If a step fails, what this run added is\n"
	"removed again: nothing is left half-applied.\n"
	"\n"
	"Exit status: 0 done (or --check matched), 1 failed (or --check found drift),\n"
	"2 bad usage.\n"
	"\n"
	"Examples:\n"
	"  tpin-init                          intercept all inbound TCP (tproxy)\n"
	"  tpin-init -b 9080 --dry-run        show what intercepting port 9080 takes\n"
	"  tpin-init --netns pod1 --check     has anyone changed pod1's rules?\n";
/* clang-format on */

enum action { ACT_INSTALL, ACT_DRY_RUN, ACT_CHECK, ACT_CLEANUP };

enum long_only {
	OPT_DRY_RUN = 256,
	OPT_CHECK,
	OPT_CLEANUP,
	OPT_EXCLUDE_SOURCES,
	OPT_ADMIN_PORT,
	OPT_TABLE_NAME,
	OPT_PRESERVE_SOURCE,
	OPT_NO_IPV6,
	OPT_NETNS,
	OPT_VERSION,
};

static const struct option options[] = {
	{ "mode", required_argument, NULL, 'm' },
	{ "capture-port", required_argument, NULL, 'z' },
	{ "inbound-ports", required_argument, NULL, 'b' },
	{ "exclude-ports", required_argument, NULL, 'd' },
	{ "mark", required_argument, NULL, 't' },
	{ "table", required_argument, NULL, 'r' },
	{ "exclude-sources", required_argument, NULL, OPT_EXCLUDE_SOURCES },
	{ "admin-port", required_argument, NULL, OPT_ADMIN_PORT },
	{ "table-name", required_argument, NULL, OPT_TABLE_NAME },
	{ "preserve-source", no_argument, NULL, OPT_PRESERVE_SOURCE },
	{ "no-ipv6", no_argument, NULL, OPT_NO_IPV6 },
	{ "netns", required_argument, NULL, OPT_NETNS },
	{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "cleanup", no_argument, NULL, OPT_CLEANUP },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static const char *option_name(int val)
{
	const struct option *o;

	for (o = options; o->name; o++)
		if (o->val == val)
			return o->name;
	return "?";
}

static void print_line(void *ctx, const char *line)
{
	fprintf(ctx, "%s\n", line);
}

static void print_error(void *ctx, const char *line)
{
	fprintf(stderr, "tpin-init: %s\n", line);
}

/* Parse one option's value into @cfg. Returns 0 or -EINVAL with @err set. */
static int parse_option(struct tpin_config *cfg, int opt, const char *arg, struct tpin_err *err)
{
	uint32_t v;
	int ret;

	switch (opt) {
	case 'm':
		return tpin_mode_parse(&cfg->mode, arg, err);
	case 'z':
		return tpin_port_parse(&cfg->capture_port, arg, err);
	case OPT_ADMIN_PORT:
		return tpin_port_parse(&cfg->admin_port, arg, err);
	case 'b':
		if (!*arg)
			return tpin_err_set(
				err, -EINVAL,
				"an empty list intercepts nothing: name ports, or \"*\" for all");
		return tpin_ports_parse(&cfg->inbound, arg, err);
	case 'd':
		return tpin_ports_parse(&cfg->excluded, arg, err);
	case OPT_EXCLUDE_SOURCES:
		return tpin_cidrs_parse(&cfg->exclude_sources, arg, err);
	case 't':
		ret = tpin_u32_parse(&v, arg, 1, UINT32_MAX, err);
		if (!ret)
			cfg->mark = v;
		return ret;
	case 'r':
		/* 0 and 253-255 are the kernel's unspec, default, main and local. */
		ret = tpin_u32_parse(&v, arg, 1, 252, err);
		if (ret)
			ret = tpin_u32_parse(&v, arg, 256, UINT32_MAX - 1, err);
		if (ret)
			return tpin_err_set(
				err, ret,
				"\"%s\" is not a routing table: use 1-252 or 256-4294967294", arg);
		cfg->route_table = v;
		return 0;
	case OPT_TABLE_NAME:
		return tpin_table_name_parse(cfg->table_name, arg, err);
	case OPT_PRESERVE_SOURCE:
		cfg->preserve_source = true;
		return 0;
	case OPT_NO_IPV6:
		cfg->ipv6 = false;
		return 0;
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	const struct tpin_out out = { print_line, print_error, stdout };
	const char *netns = NULL;
	enum action action = ACT_INSTALL;
	struct tpin_config cfg;
	struct tpin_err err;
	int opt, ret;

	tpin_config_init(&cfg);
	while ((opt = getopt_long(argc, argv, "m:z:b:d:t:r:h", options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			puts("tpin-init " TPIN_VERSION);
			return 0;
		case OPT_DRY_RUN:
		case OPT_CHECK:
		case OPT_CLEANUP:
			/* "--dry-run --cleanup" must not quietly clean up. */
			if (action != ACT_INSTALL) {
				fprintf(stderr,
					"tpin-init: --%s: only one of --dry-run, --check and "
					"--cleanup at a time\n",
					option_name(opt));
				return EXIT_USAGE;
			}
			action = opt == OPT_DRY_RUN ? ACT_DRY_RUN
				 : opt == OPT_CHECK ? ACT_CHECK
						    : ACT_CLEANUP;
			break;
		case OPT_NETNS:
			netns = optarg;
			break;
		case '?':
			fprintf(stderr, "Try 'tpin-init --help' for more information.\n");
			return EXIT_USAGE;
		default:
			if (parse_option(&cfg, opt, optarg, &err)) {
				fprintf(stderr, "tpin-init: --%s: %s\n", option_name(opt), err.msg);
				return EXIT_USAGE;
			}
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tpin-init: unexpected argument \"%s\"\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (tpin_config_finish(&cfg, &err)) {
		fprintf(stderr, "tpin-init: %s\n", err.msg);
		return EXIT_USAGE;
	}
	if (action == ACT_DRY_RUN)
		return tpin_dry_run(&cfg, &out) ? EXIT_FAILURE : EXIT_SUCCESS;
	if (netns) {
		ret = tpin_netns_enter(netns);
		if (ret) {
			fprintf(stderr, "tpin-init: --netns %s: %s%s\n", netns, strerror(-ret),
				ret == -EPERM ? " (entering a namespace needs CAP_SYS_ADMIN)" : "");
			return ret == -ENOENT ? EXIT_USAGE : EXIT_FAILURE;
		}
	}
	if (action != ACT_INSTALL)
		tpin_ipv6_detect(&cfg);
	switch (action) {
	case ACT_CHECK:
		ret = tpin_check(&cfg, &out);
		if (ret == 0)
			printf("tpin-init: the live state matches (table inet %s, %s mode)\n",
			       cfg.table_name, tpin_mode_name(cfg.mode));
		return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	case ACT_CLEANUP:
		ret = tpin_cleanup(&cfg, &out);
		return ret ? EXIT_FAILURE : EXIT_SUCCESS;
	default:
		ret = tpin_preflight(&cfg, &out);
		if (!ret)
			ret = tpin_install(&cfg, &out);
		if (!ret)
			printf("tpin-init: installed table inet %s (%s mode, capture port %u)\n",
			       cfg.table_name, tpin_mode_name(cfg.mode), cfg.capture_port);
		else
			fprintf(stderr, "tpin-init: nothing was changed\n");
		return ret ? EXIT_FAILURE : EXIT_SUCCESS;
	}
}
