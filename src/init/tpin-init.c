// SPDX-License-Identifier: MIT
/*
 * tpin-init: installs the rules that hand a pod's inbound TCP to tpin-proxy,
 * with TPROXY (no conntrack) or REDIRECT (for comparison). A thin main: args.c
 * parses the flags into a config, install.c does the work.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/args.h"
#include "tpin/config.h"
#include "tpin/err.h"
#include "tpin/install.h"

#define EXIT_USAGE 2

/* clang-format off: one line of --help per line of source. */
static const char usage_text[] =
	"Usage: tpin-init [OPTION]...\n"
	"Install the nftables rules and policy routing that hand a pod's inbound TCP\n"
	"connections (and, asked for, its outbound ones) to tpin-proxy, in one atomic\n"
	"nftables transaction over netlink.\n"
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
	"                           (-b, -d and --exclude-sources given twice add up)\n"
	"  -t, --mark MARK          packet mark of intercepted packets (default 0x539)\n"
	"  -r, --table N            policy routing table for marked packets (default 133)\n"
	"      --admin-port PORT    the proxy's admin port, excluded (default 15000)\n"
	"      --table-name NAME    the nftables table, inet family (default tpin)\n"
	"      --preserve-source    also route the app's replies back to the proxy, so it\n"
	"                           can connect from the client's own address (tproxy mode,\n"
	"                           needs --inbound-ports naming the app's ports)\n"
	"      --upstream MODE      where the proxy connects: original (default), the\n"
	"                           original destination; or localhost, 127.0.0.1 / ::1, for\n"
	"                           an app that listens on loopback only (Istio 1.5). With\n"
	"                           localhost a connection to a port where nothing listens\n"
	"                           is accepted and then reset, not refused, and services\n"
	"                           bound to 127.0.0.1 become reachable from the network\n"
	"                           (why Istio dropped the mode in 1.10)\n"
	"      --no-ipv6            install the IPv4 half only\n"
	"\n"
	"Outbound capture (the app's own connections to other hosts), off by default;\n"
	"any of these flags turns it on:\n"
	"      --outbound           capture outbound with the defaults below\n"
	"      --outbound-mode MODE how: as --mode (default), or redirect with -m tproxy:\n"
	"                           Istio's TPROXY mode, inbound TPROXY and outbound a\n"
	"                           nat REDIRECT, which turns conntrack on for every flow\n"
	"                           of the pod (for comparison; run tpin-proxy with the\n"
	"                           same --outbound-mode). Not with --notrack, nor\n"
	"                           tproxy with -m redirect, whose NAT tracks all anyway\n"
	"  -p, --outbound-port PORT the proxy's outbound listener (default 15001)\n"
	"  -u, --outbound-exclude-uids UIDS  owners never captured (default 1337, the\n"
	"                           proxy's uid in Istio's pods; numbers only)\n"
	"  -g, --outbound-exclude-gids GIDS  groups never captured (default 1337, as -u)\n"
	"  -q, --outbound-ports LIST destination ports captured (default \"*\")\n"
	"  -o, --outbound-exclude-ports LIST destination ports never captured\n"
	"  -i, --outbound-include-cidrs CIDRS destinations captured (default \"*\"); a\n"
	"                           family with no CIDR here is not captured\n"
	"  -x, --outbound-exclude-cidrs CIDRS destinations never captured\n"
	"                           (-u, -g, -q, -o, -i, -x given twice add up)\n"
	"  The proxy's own sockets (mark 0x53a), loopback and the pod's own addresses are\n"
	"  never captured, and neither are connections to --exclude-sources. By TPROXY\n"
	"  it needs --inbound-ports \"*\" and no --preserve-source: without conntrack\n"
	"  the app's answers on the ports it serves directly are told from its own\n"
	"  connections by the source port, so name those ports with -d. With no proxy on\n"
	"  the outbound port the app's connections are reset at once, never sent out\n"
	"  unproxied. Not the default: with a proxy that does not listen there, every\n"
	"  outbound connection of the app fails, and installs that name -b ports would\n"
	"  be refused.\n"
	"\n"
	"      --notrack            keep tpin's own flows out of conntrack even when\n"
	"                           another rule in the namespace turns it on (tproxy\n"
	"                           mode): every leg, both ways, at raw priority. Not\n"
	"                           the default: other rules then see those packets as\n"
	"                           \"untracked\", so a \"ct state established\" firewall\n"
	"                           in the pod would drop them; and it needs nft_ct\n"
	"      --netns NAME|PATH    work inside that network namespace (a name under\n"
	"                           /run/netns, or a path such as /proc/PID/ns/net)\n"
	"  -h, --help               show this help\n"
	"      --version            show the version\n"
	"\n"
	"Before changing anything it checks CAP_NET_ADMIN and the kernel features the\n"
	"mode needs, and says what is missing. If a step fails, what this run added is\n"
	"removed again: nothing is left half-applied.\n"
	"\n"
	"Only connections to the pod's own addresses are intercepted; a connection to\n"
	"a port where nothing listens is refused, as without tpin; packets from a local\n"
	"or loopback source (127.0.0.6, ::6) that arrive on another interface than lo\n"
	"are dropped.\n"
	"\n"
	"Exit status: 0 done (or --check matched), 1 failed (or --check found drift),\n"
	"2 bad usage.\n"
	"\n"
	"Examples:\n"
	"  tpin-init                          intercept all inbound TCP (tproxy)\n"
	"  tpin-init -b 9080 --dry-run        show what intercepting port 9080 takes\n"
	"  tpin-init --netns pod1 --check     has anyone changed pod1's rules?\n"
	"  tpin-init --outbound --notrack -d 22  both directions, nothing tracked\n";
/* clang-format on */

static void print_line(void *ctx, const char *line)
{
	fprintf(ctx, "%s\n", line);
}

static void print_error(void *ctx, const char *line)
{
	fprintf(stderr, "tpin-init: %s\n", line);
}

int main(int argc, char **argv)
{
	const struct tpin_out out = { print_line, print_error, stdout };
	struct tpin_args args;
	struct tpin_config *cfg = &args.cfg;
	struct tpin_err err;
	int ret;

	if (tpin_args_parse(&args, argc, argv, &err)) {
		fprintf(stderr, "tpin-init: %s\n", err.msg);
		return EXIT_USAGE;
	}
	switch (args.action) {
	case TPIN_ACT_HELP:
		fputs(usage_text, stdout);
		return 0;
	case TPIN_ACT_VERSION:
		puts("tpin-init " TPIN_VERSION);
		return 0;
	case TPIN_ACT_DRY_RUN:
		return tpin_dry_run(cfg, &out) ? EXIT_FAILURE : EXIT_SUCCESS;
	default:
		break;
	}
	if (args.netns) {
		ret = tpin_netns_enter(args.netns);
		if (ret) {
			fprintf(stderr, "tpin-init: --netns %s: %s%s\n", args.netns, strerror(-ret),
				ret == -EPERM ? " (entering a namespace needs CAP_SYS_ADMIN)" : "");
			return ret == -ENOENT ? EXIT_USAGE : EXIT_FAILURE;
		}
	}
	if (args.action != TPIN_ACT_INSTALL)
		tpin_ipv6_detect(cfg);
	switch (args.action) {
	case TPIN_ACT_CHECK:
		ret = tpin_check(cfg, &out);
		if (ret == 0)
			printf("tpin-init: the live state matches (table inet %s, %s mode)\n",
			       cfg->table_name, tpin_mode_name(cfg->mode));
		return ret == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	case TPIN_ACT_CLEANUP:
		ret = tpin_cleanup(cfg, &out);
		return ret ? EXIT_FAILURE : EXIT_SUCCESS;
	default:
		ret = tpin_preflight(cfg, &out);
		if (!ret)
			ret = tpin_install(cfg, &out);
		if (!ret)
			printf("tpin-init: installed table inet %s (%s mode, capture port "
			       "%u%s%s%s)\n",
			       cfg->table_name, tpin_mode_name(cfg->mode), cfg->capture_port,
			       cfg->outbound ? ", outbound" : "",
			       tpin_config_outbound_mode(cfg) != cfg->mode ? " in redirect mode"
									   : "",
			       cfg->notrack ? ", notrack" : "");
		else
			fprintf(stderr, "tpin-init: nothing was changed\n");
		return ret ? EXIT_FAILURE : EXIT_SUCCESS;
	}
}
