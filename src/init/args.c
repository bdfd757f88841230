// SPDX-License-Identifier: MIT
/*
 * tpin-init's flags into a struct tpin_args: every value checked where it is
 * read, every combination checked by tpin_config_finish(), so that bad usage
 * is one line naming the value and nothing is touched.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "tpin/args.h"

enum long_only {
	OPT_DRY_RUN = 256,
	OPT_CHECK,
	OPT_CLEANUP,
	OPT_EXCLUDE_SOURCES,
	OPT_ADMIN_PORT,
	OPT_TABLE_NAME,
	OPT_PRESERVE_SOURCE,
	OPT_UPSTREAM,
	OPT_NO_IPV6,
	OPT_NETNS,
	OPT_VERSION,
	OPT_OUTBOUND,
	OPT_NOTRACK,
	OPT_OUTBOUND_MODE,
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
	{ "upstream", required_argument, NULL, OPT_UPSTREAM },
	{ "no-ipv6", no_argument, NULL, OPT_NO_IPV6 },
	{ "outbound", no_argument, NULL, OPT_OUTBOUND },
	{ "outbound-mode", required_argument, NULL, OPT_OUTBOUND_MODE },
	{ "outbound-port", required_argument, NULL, 'p' },
	{ "outbound-exclude-uids", required_argument, NULL, 'u' },
	{ "outbound-exclude-gids", required_argument, NULL, 'g' },
	{ "outbound-ports", required_argument, NULL, 'q' },
	{ "outbound-exclude-ports", required_argument, NULL, 'o' },
	{ "outbound-include-cidrs", required_argument, NULL, 'i' },
	{ "outbound-exclude-cidrs", required_argument, NULL, 'x' },
	{ "notrack", no_argument, NULL, OPT_NOTRACK },
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

/*
 * State across options: whether the first -b, -q, -i, -u or -g replaced its
 * default yet (later ones add to it).
 */
struct parse_state {
	bool inbound_given, out_ports_given, include_given, uids_given, gids_given;
};

/* An empty list is a mistake (an unset variable), not "none". */
static int empty_list(const char *what, struct tpin_err *err)
{
	return tpin_err_set(err, -EINVAL, "an empty list: name %s, or leave the flag out", what);
}

/* -q, -o: destination ports of outbound connections; -q replaces "*" first. */
static int parse_out_ports(struct tpin_config *cfg, struct parse_state *st, int opt,
			   const char *arg, struct tpin_err *err)
{
	struct tpin_ports ports;
	int ret;

	if (!*arg)
		return empty_list("ports", err);
	ret = tpin_ports_parse(&ports, arg, err);
	if (ret)
		return ret;
	if (opt == 'q' && !st->out_ports_given) {
		memset(&cfg->out_ports, 0, sizeof(cfg->out_ports));
		st->out_ports_given = true;
	}
	ret = tpin_ports_merge(opt == 'q' ? &cfg->out_ports : &cfg->out_excluded, &ports);
	return ret ? tpin_err_set(err, ret, "more than %d port ranges in all", TPIN_PORTS_MAX) : 0;
}

/* -i, -x: destination CIDRs; -i takes "*" for all, and replaces it first. */
static int parse_out_cidrs(struct tpin_config *cfg, struct parse_state *st, int opt,
			   const char *arg, struct tpin_err *err)
{
	struct tpin_cidrs cidrs;
	int ret;

	if (!*arg)
		return empty_list("CIDRs", err);
	if (opt == 'i' && !st->include_given) {
		cfg->out_all = false;
		st->include_given = true;
	}
	if (opt == 'i' && !strcmp(arg, "*")) {
		cfg->out_all = true;
		return 0;
	}
	ret = tpin_cidrs_parse(&cidrs, arg, err);
	if (!ret && tpin_cidrs_merge(opt == 'i' ? &cfg->out_include : &cfg->out_exclude, &cidrs))
		ret = tpin_err_set(err, -E2BIG, "more than %d CIDRs in all", TPIN_CIDRS_MAX);
	return ret;
}

/* -u, -g: owners never captured; the first replaces the default 1337. */
static int parse_ids(struct tpin_ids *ids, bool *given, const char *arg, struct tpin_err *err)
{
	if (!*arg)
		return empty_list("uids or gids", err);
	if (!*given) {
		memset(ids, 0, sizeof(*ids));
		*given = true;
	}
	return tpin_ids_parse(ids, arg, err);
}

/* Parse one option's value into @args. Returns 0 or -errno with @err set. */
static int parse_option(struct tpin_args *args, struct parse_state *st, int opt, const char *arg,
			struct tpin_err *err)
{
	struct tpin_config *cfg = &args->cfg;
	struct tpin_ports ports;
	struct tpin_cidrs cidrs;
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
	case 'd':
		/* An empty list is a mistake (an unset variable), not "none". */
		if (!*arg)
			return tpin_err_set(err, -EINVAL,
					    opt == 'b' ? "an empty list intercepts nothing: name "
							 "ports, or \"*\" for all"
						       : "an empty list: name ports to exclude, or "
							 "leave the flag out");
		ret = tpin_ports_parse(&ports, arg, err);
		if (ret)
			return ret;
		if (opt == 'b' && !st->inbound_given) {
			/* The first -b replaces the default "*"; more add up. */
			memset(&cfg->inbound, 0, sizeof(cfg->inbound));
			st->inbound_given = true;
		}
		ret = tpin_ports_merge(opt == 'b' ? &cfg->inbound : &cfg->excluded, &ports);
		return ret ? tpin_err_set(err, ret, "more than %d port ranges in all",
					  TPIN_PORTS_MAX)
			   : 0;
	case OPT_EXCLUDE_SOURCES:
		if (!*arg)
			return tpin_err_set(err, -EINVAL,
					    "an empty list: name CIDRs, or leave the flag out");
		ret = tpin_cidrs_parse(&cidrs, arg, err);
		if (!ret && tpin_cidrs_merge(&cfg->exclude_sources, &cidrs))
			ret = tpin_err_set(err, -E2BIG, "more than %d CIDRs in all",
					   TPIN_CIDRS_MAX);
		return ret;
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
	case OPT_UPSTREAM:
		if (strcmp(arg, "original") && strcmp(arg, "localhost"))
			return tpin_err_set(err, -EINVAL,
					    "\"%s\" is neither original nor localhost", arg);
		cfg->upstream_localhost = !strcmp(arg, "localhost");
		return 0;
	case OPT_NO_IPV6:
		cfg->ipv6 = false;
		return 0;
	case OPT_NOTRACK:
		cfg->notrack = true;
		return 0;
	case OPT_NETNS:
		if (!*arg)
			return tpin_err_set(err, -EINVAL,
					    "an empty name: name a namespace under /run/netns or "
					    "give a path, or leave the flag out");
		args->netns = arg;
		return 0;
	}
	/* Every outbound flag turns outbound capture on, as --outbound does. */
	cfg->outbound = true;
	switch (opt) {
	case OPT_OUTBOUND:
		return 0;
	case OPT_OUTBOUND_MODE:
		cfg->outbound_mode_set = true;
		return tpin_mode_parse(&cfg->outbound_mode, arg, err);
	case 'p':
		return tpin_port_parse(&cfg->outbound_port, arg, err);
	case 'u':
		return parse_ids(&cfg->exempt_uids, &st->uids_given, arg, err);
	case 'g':
		return parse_ids(&cfg->exempt_gids, &st->gids_given, arg, err);
	case 'q':
	case 'o':
		return parse_out_ports(cfg, st, opt, arg, err);
	case 'i':
	case 'x':
		return parse_out_cidrs(cfg, st, opt, arg, err);
	}
	return tpin_err_set(err, -EINVAL, "unknown option");
}

int tpin_args_parse(struct tpin_args *args, int argc, char **argv, struct tpin_err *err)
{
	struct parse_state st = { 0 };
	struct tpin_err e = { 0 };
	int opt, ret;

	memset(args, 0, sizeof(*args));
	tpin_config_init(&args->cfg);
	/* Reset getopt (GNU: optind 0 reinitializes), and say errors ourselves. */
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "m:z:b:d:t:r:p:u:g:q:o:i:x:h", options, NULL)) !=
	       -1) {
		switch (opt) {
		case 'h':
			args->action = TPIN_ACT_HELP;
			return 0;
		case OPT_VERSION:
			args->action = TPIN_ACT_VERSION;
			return 0;
		case OPT_DRY_RUN:
		case OPT_CHECK:
		case OPT_CLEANUP:
			/* "--dry-run --cleanup" must not quietly clean up. */
			if (args->action != TPIN_ACT_INSTALL)
				return tpin_err_set(err, -EINVAL,
						    "--%s: only one of --dry-run, --check and "
						    "--cleanup at a time",
						    option_name(opt));
			args->action = opt == OPT_DRY_RUN ? TPIN_ACT_DRY_RUN
				       : opt == OPT_CHECK ? TPIN_ACT_CHECK
							  : TPIN_ACT_CLEANUP;
			break;
		case '?':
			/* getopt sets optopt to the option that lacks its value. */
			if (optopt && strcmp(option_name(optopt), "?"))
				return tpin_err_set(err, -EINVAL, "--%s needs a value; see --help",
						    option_name(optopt));
			return tpin_err_set(err, -EINVAL, "unknown option \"%s\"; see --help",
					    argv[optind - 1]);
		default:
			ret = parse_option(args, &st, opt, optarg, &e);
			if (ret)
				return tpin_err_set(err, ret, "--%s: %s", option_name(opt), e.msg);
		}
	}
	if (optind < argc)
		return tpin_err_set(err, -EINVAL, "unexpected argument \"%s\"", argv[optind]);
	return tpin_config_finish(&args->cfg, err);
}
