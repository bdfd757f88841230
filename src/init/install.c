// SPDX-License-Identifier: MIT
/*
 * tpin-init's operations. The policy routing goes first, each step recorded
 * so it can be undone; the nftables batch goes last, so that the only step
 * that can fail after a change is the atomic batch itself, and its failure
 * leaves the earlier table untouched.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tpin/config.h"
#include "tpin/fault.h"
#include "tpin/install.h"
#include "tpin/net.h"
#include "tpin/nft_batch.h"
#include "tpin/nft_diff.h"
#include "tpin/nft_send.h"
#include "tpin/out.h"
#include "tpin/rtnl.h"

int tpin_netns_enter(const char *spec)
{
	char path[4096];
	int fd, ret = 0;

	if (strchr(spec, '/'))
		snprintf(path, sizeof(path), "%s", spec);
	else
		snprintf(path, sizeof(path), "/run/netns/%s", spec);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* The routing steps, in install order; their names are the fault points. */
enum step_kind { STEP_RULE, STEP_ROUTE, STEP_ADDR };

struct step {
	const char *name;
	enum step_kind kind;
	int family;
};

static const struct step steps[] = {
	{ "rule4", STEP_RULE, AF_INET },  { "route4", STEP_ROUTE, AF_INET },
	{ "rule6", STEP_RULE, AF_INET6 }, { "route6", STEP_ROUTE, AF_INET6 },
	{ "addr6", STEP_ADDR, AF_INET6 },
};

#define NSTEPS (sizeof(steps) / sizeof(steps[0]))

/* The proxy's IPv6 passthrough source: IPv6 loopback holds only ::1. */
static const struct in6_addr passthrough6 = TPIN_PASSTHROUGH6_INIT;

static bool step_applies(const struct tpin_config *cfg, const struct step *s)
{
	if (s->family == AF_INET6 && !cfg->ipv6)
		return false;
	/* REDIRECT needs no policy routing; the proxy's ::6 source it does. */
	return s->kind == STEP_ADDR || cfg->mode == TPIN_MODE_TPROXY;
}

static int step_state(struct tpin_rtnl *rt, const struct tpin_config *cfg, const struct step *s)
{
	switch (s->kind) {
	case STEP_RULE:
		return tpin_rtnl_rule_state(rt, s->family, cfg->mark, cfg->route_table);
	case STEP_ROUTE:
		return tpin_rtnl_route_state(rt, s->family, cfg->route_table);
	default:
		return tpin_rtnl_addr_state(rt, AF_INET6, &passthrough6, 128);
	}
}

static int step_run(struct tpin_rtnl *rt, const struct tpin_config *cfg, const struct step *s,
		    bool add)
{
	switch (s->kind) {
	case STEP_RULE:
		return (add ? tpin_rtnl_rule_add : tpin_rtnl_rule_del)(rt, s->family, cfg->mark,
								       cfg->route_table);
	case STEP_ROUTE:
		return (add ? tpin_rtnl_route_add : tpin_rtnl_route_del)(rt, s->family,
									 cfg->route_table);
	default:
		return (add ? tpin_rtnl_addr_add : tpin_rtnl_addr_del)(rt, AF_INET6, &passthrough6,
								       128);
	}
}

/* The ip(8) command that does what step @s does. */
static void step_command(const struct tpin_config *cfg, const struct step *s, bool add, char *buf,
			 size_t len)
{
	const char *verb = add ? "add" : "del";
	int v = s->family == AF_INET ? 4 : 6;

	switch (s->kind) {
	case STEP_RULE:
		snprintf(buf, len, "ip -%d rule %s fwmark 0x%x lookup %u proto %d", v, verb,
			 cfg->mark, cfg->route_table, TPIN_RTPROT);
		break;
	case STEP_ROUTE:
		snprintf(buf, len, "ip -%d route %s local %s dev lo table %u proto %d", v, verb,
			 v == 4 ? "0.0.0.0/0" : "::/0", cfg->route_table, TPIN_RTPROT);
		break;
	default:
		snprintf(buf, len, "ip -6 addr %s %s/128 dev lo%s", verb, TPIN_PASSTHROUGH6_TEXT,
			 add ? " nodad" : "");
	}
}

/* -------- preflight -------- */

static bool has_net_admin(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_NET_ADMIN / 32].effective & (1u << (CAP_NET_ADMIN % 32));
}

/*
 * What each probe command tests, found by a word of its nft text. The probe
 * holds only what the configuration's ruleset uses (nft_build.c).
 */
struct feature {
	const char *word;
	const char *what;
	const char *module;
};

static const struct feature features[] = {
	{ "chain inet tpin_probe p", "nftables", "nf_tables" },
	{ "fib daddr", "nft fib expression", "nft_fib_inet" },
	{ "socket transparent", "nft socket expression", "nft_socket" },
	{ "socket wildcard", "nft socket expression's wildcard key (Linux 5.10)", "nft_socket" },
	{ "reject with tcp reset", "nft reject expression", "nft_reject_inet" },
	{ "tproxy ip to", "nft tproxy expression (IPv4)", "nft_tproxy" },
	{ "tproxy ip6 to", "nft tproxy expression (IPv6)", "nft_tproxy" },
	{ "redirect to", "nft redir expression", "nft_redir" },
	{ "meta skuid", "nft meta expression's socket owner keys", "nf_tables" },
	{ "notrack", "nft notrack expression", "nft_ct" },
	{ "socket mark", "nft socket expression's mark key", "nft_socket" },
};

static const struct feature *feature_of(const char *command)
{
	size_t i;

	for (i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (strstr(command, features[i].word))
			return &features[i];
	return NULL;
}

static int probe_nftables(const struct tpin_config *cfg, const struct tpin_out *out)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new((uint32_t)time(NULL));
	const char *failed = NULL;
	struct tpin_err err;
	int *results = NULL, ret = -ENOMEM;
	size_t i;

	if (!b || tpin_nft_build_probe(b, cfg) || tpin_nft_batch_close(b))
		goto out;
	results = calloc(tpin_nft_batch_count(b), sizeof(*results));
	if (!results)
		goto out;
	ret = tpin_nft_send_probe(b, &err, &failed, results);
	if (!failed || ret == -EPERM) {
		/* Refused as a whole: nftables itself is missing or locked. */
		tpin_out_error(out, "preflight: nftables over netlink: FAILED (%s)", err.msg);
		goto out;
	}
	ret = 0;
	for (i = 0; i < tpin_nft_batch_count(b); i++) {
		const struct feature *f = feature_of(tpin_nft_batch_command(b, i));

		if (!f)
			continue;
		if (!results[i]) {
			tpin_out_info(out, "preflight: %s: ok", f->what);
			continue;
		}
		tpin_out_error(
			out,
			"preflight: %s: MISSING (%s); load the %s module or use a kernel built "
			"with it",
			f->what, strerror(-results[i]), f->module);
		if (!ret)
			ret = -EOPNOTSUPP;
	}
out:
	free(results);
	tpin_nft_batch_free(b);
	return ret;
}

int tpin_ipv6_detect(struct tpin_config *cfg)
{
	int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	cfg->ipv6 = false;
	return -errno;
}

int tpin_preflight(struct tpin_config *cfg, const struct tpin_out *out)
{
	struct tpin_rtnl *rt = NULL;
	bool wanted = cfg->ipv6;
	int ret;

	if (!has_net_admin()) {
		tpin_out_error(
			out,
			"preflight: CAP_NET_ADMIN: MISSING; tpin-init needs CAP_NET_ADMIN: run it "
			"as root, or grant NET_ADMIN to the init container");
		return -EPERM;
	}
	tpin_out_info(out, "preflight: CAP_NET_ADMIN: ok");
	ret = tpin_ipv6_detect(cfg);
	if (ret && wanted)
		tpin_out_info(out, "preflight: IPv6: not in this kernel (%s); installing IPv4 only",
			      strerror(-ret));
	else if (!ret)
		tpin_out_info(out, "preflight: IPv6: %s",
			      wanted ? "ok" : "present, left alone (--no-ipv6)");
	ret = probe_nftables(cfg, out);
	if (ret || cfg->mode != TPIN_MODE_TPROXY)
		return ret;
	ret = tpin_rtnl_open(&rt);
	if (!ret) {
		ret = tpin_rtnl_rule_state(rt, AF_INET, cfg->mark, cfg->route_table);
		ret = ret < 0 ? ret : 0;
	}
	if (ret)
		tpin_out_error(out,
			       "preflight: policy routing: MISSING (%s); needs a kernel with "
			       "CONFIG_IP_MULTIPLE_TABLES",
			       strerror(-ret));
	else
		tpin_out_info(out, "preflight: policy routing: ok");
	tpin_rtnl_close(rt);
	return ret ? -EOPNOTSUPP : 0;
}

/* -------- install, cleanup, check -------- */

static int send_install_batch(const struct tpin_config *cfg, const struct tpin_out *out)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new((uint32_t)time(NULL));
	struct tpin_err err;
	int ret = -ENOMEM;

	if (!b || tpin_nft_build_install(b, cfg) || tpin_nft_batch_close(b)) {
		tpin_out_error(out, "nftables: building the batch: %s", strerror(ENOMEM));
		goto out;
	}
	ret = tpin_nft_send(b, &err, NULL);
	if (ret == -ETIMEDOUT || ret == -ENOBUFS)
		tpin_out_error(out,
			       "nftables: the kernel's answers were lost (%s): the table may or "
			       "may not have been replaced; run tpin-init --check",
			       err.msg);
	else if (ret)
		tpin_out_error(out, "nftables: %s: the kernel refused the batch, nothing changed",
			       err.msg);
out:
	tpin_nft_batch_free(b);
	return ret;
}

/*
 * Local routes on a down lo are refused ("Nexthop device is not up"): bring
 * it up, and say in *@raised whether this run did, so a rollback can undo it.
 */
static int ensure_lo_up(struct tpin_rtnl *rt, const struct tpin_out *out, bool *raised)
{
	bool up;
	int ret = tpin_rtnl_lo_is_up(rt, &up);

	*raised = false;
	if (ret) {
		tpin_out_error(out, "reading the state of lo: %s", strerror(-ret));
		return ret;
	}
	if (up)
		return 0;
	ret = tpin_rtnl_lo_set(rt, true);
	if (ret)
		tpin_out_error(out, "lo is down and could not be brought up: %s", strerror(-ret));
	else
		tpin_out_info(out, "lo was down: brought it up (local routes need it)");
	*raised = !ret;
	return ret;
}

/*
 * Remove tpin's own rules and routes that @cfg does not use, or all of them
 * with @all: an install with another mark, table, mode or IPv6 choice left
 * them, and they are tagged, so nobody else's go. It goes on past a
 * failure, each said in an error line. Returns 0, or the -errno of the first
 * piece it could not read or remove.
 */
static int sweep(struct tpin_rtnl *rt, const struct tpin_config *cfg, bool all,
		 const struct tpin_out *out)
{
	static const int families[] = { AF_INET, AF_INET6 };
	struct tpin_rtnl_piece p[32];
	int f, n, i, first = 0;

	for (f = 0; f < 2; f++) {
		int fam = families[f], v = fam == AF_INET ? 4 : 6;
		bool used = !all && cfg->mode == TPIN_MODE_TPROXY && (fam == AF_INET || cfg->ipv6);

		for (int rules = 1; rules >= 0; rules--) {
			n = tpin_rtnl_tagged(rt, fam, rules, p, sizeof(p) / sizeof(p[0]));
			if (n == -EAFNOSUPPORT)
				break;
			if (n < 0) {
				tpin_out_error(out, "reading IPv%d %s: %s", v,
					       rules ? "rules" : "routes", strerror(-n));
				first = first ?: n;
				continue;
			}
			for (i = 0; i < n; i++) {
				char cmd[128];
				int ret;

				if (used && p[i].table == cfg->route_table &&
				    (!rules || p[i].mark == cfg->mark))
					continue;
				if (rules) {
					ret = tpin_rtnl_rule_del(rt, fam, p[i].mark, p[i].table);
					snprintf(cmd, sizeof(cmd),
						 "ip -%d rule del fwmark 0x%x lookup %u proto %d",
						 v, p[i].mark, p[i].table, TPIN_RTPROT);
				} else {
					ret = tpin_rtnl_route_del(rt, fam, p[i].table);
					snprintf(cmd, sizeof(cmd),
						 "ip -%d route del local %s dev lo table %u proto "
						 "%d",
						 v, v == 4 ? "0.0.0.0/0" : "::/0", p[i].table,
						 TPIN_RTPROT);
				}
				if (ret) {
					tpin_out_error(out, "%s: %s", cmd, strerror(-ret));
					first = first ?: ret;
				} else {
					tpin_out_info(
						out, "%s%s",
						all ? "" : "removed what an earlier install left: ",
						cmd);
				}
			}
		}
	}
	if ((all || !cfg->ipv6) &&
	    tpin_rtnl_addr_state(rt, AF_INET6, &passthrough6, 128) == TPIN_RTNL_PRESENT) {
		int ret = tpin_rtnl_addr_del(rt, AF_INET6, &passthrough6, 128);

		if (ret) {
			tpin_out_error(out, "ip -6 addr del %s/128 dev lo: %s",
				       TPIN_PASSTHROUGH6_TEXT, strerror(-ret));
			first = first ?: ret;
		} else {
			tpin_out_info(out, "ip -6 addr del %s/128 dev lo", TPIN_PASSTHROUGH6_TEXT);
		}
	}
	return first;
}

int tpin_install(const struct tpin_config *cfg, const struct tpin_out *out)
{
	const struct step *done[NSTEPS];
	struct tpin_rtnl *rt = NULL;
	bool raised_lo = false;
	char cmd[128];
	size_t i, ndone = 0;
	int ret;

	ret = tpin_rtnl_open(&rt);
	if (ret) {
		tpin_out_error(out, "rtnetlink: %s", strerror(-ret));
		return ret;
	}
	ret = ensure_lo_up(rt, out, &raised_lo);
	for (i = 0; !ret && i < NSTEPS; i++) {
		const struct step *s = &steps[i];
		int state;

		if (!step_applies(cfg, s))
			continue;
		step_command(cfg, s, true, cmd, sizeof(cmd));
		/* Before the state is read, so a test can stop at any step. */
		state = tpin_fault(s->name);
		if (!state)
			state = step_state(rt, cfg, s);
		/* Someone else's identical piece serves as well; it stays theirs. */
		if (state == TPIN_RTNL_PRESENT || state == TPIN_RTNL_FOREIGN)
			continue;
		if (state == TPIN_RTNL_DIFFERENT && s->kind == STEP_RULE) {
			tpin_out_error(
				out,
				"an ip rule already sends fwmark 0x%x elsewhere before ours: "
				"run tpin-init --cleanup with the earlier flags, or pick another "
				"--mark",
				cfg->mark);
			ret = -EEXIST;
		} else if (state == TPIN_RTNL_DIFFERENT && s->kind == STEP_ROUTE) {
			tpin_out_error(out,
				       "table %u already holds a default route that is not 'local "
				       "default dev lo': pick another --table",
				       cfg->route_table);
			ret = -EEXIST;
		} else if (state < 0) {
			ret = state;
		} else {
			ret = step_run(rt, cfg, s, true);
			if (!ret)
				done[ndone++] = s;
		}
		if (ret && ret != -EEXIST)
			tpin_out_error(out, "%s: %s", cmd, strerror(-ret));
	}
	if (!ret) {
		ret = tpin_fault("nft");
		if (ret)
			tpin_out_error(out, "nftables: %s", strerror(-ret));
	}
	if (!ret)
		ret = send_install_batch(cfg, out);
	/* The new state is whole; leftovers of other flags are only untidy. */
	if (!ret && sweep(rt, cfg, false, out))
		tpin_out_error(out, "some leftovers of an earlier install remain (see above); the "
				    "new rules are in place");
	if (ret) {
		/* Undo, newest first, exactly what this run added. */
		while (ndone--) {
			const struct step *s = done[ndone];
			int undo = step_run(rt, cfg, s, false);

			step_command(cfg, s, false, cmd, sizeof(cmd));
			if (undo)
				tpin_out_error(out, "rolling back: %s: %s", cmd, strerror(-undo));
			else
				tpin_out_info(out, "rolled back: %s", cmd);
		}
		if (raised_lo && !tpin_rtnl_lo_set(rt, false))
			tpin_out_info(out, "rolled back: ip link set lo down");
	}
	tpin_rtnl_close(rt);
	return ret;
}

int tpin_cleanup(const struct tpin_config *cfg, const struct tpin_out *out)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new((uint32_t)time(NULL));
	struct tpin_rtnl *rt = NULL;
	int ret;

	ret = !b || tpin_nft_build_delete(b, cfg->table_name) || tpin_nft_batch_close(b) ? -ENOMEM
											 : 0;
	if (!ret)
		ret = tpin_nft_send(b, NULL, NULL);
	tpin_nft_batch_free(b);
	if (ret) {
		tpin_out_error(out, "nftables: removing table inet %s: %s%s", cfg->table_name,
			       strerror(-ret),
			       ret == -EPERM ? "; tpin-init needs CAP_NET_ADMIN" : "");
		return ret;
	}
	tpin_out_info(out, "removed table inet %s (if it was there)", cfg->table_name);
	ret = tpin_rtnl_open(&rt);
	if (ret) {
		tpin_out_error(out, "rtnetlink: %s", strerror(-ret));
		return ret;
	}
	/* Whatever flags installed them, tpin's routing pieces go; others' stay. */
	ret = sweep(rt, cfg, true, out);
	tpin_rtnl_close(rt);
	return ret;
}

int tpin_check(const struct tpin_config *cfg, const struct tpin_out *out)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new(1);
	struct tpin_rtnl *rt = NULL;
	char cmd[128];
	size_t i;
	bool up;
	int ret, diffs;

	if (!b || tpin_nft_build_install(b, cfg) || tpin_nft_batch_close(b)) {
		tpin_nft_batch_free(b);
		return -ENOMEM;
	}
	diffs = tpin_nft_diff(b, cfg->table_name, out);
	tpin_nft_batch_free(b);
	if (diffs < 0) {
		tpin_out_error(out, "nftables: reading table inet %s: %s", cfg->table_name,
			       strerror(-diffs));
		return diffs;
	}
	ret = tpin_rtnl_open(&rt);
	if (ret)
		return ret;
	if (!tpin_rtnl_lo_is_up(rt, &up) && !up) {
		tpin_out_error(out, "lo is down");
		diffs++;
	}
	for (i = 0; i < NSTEPS; i++) {
		const struct step *s = &steps[i];
		int state;

		if (!step_applies(cfg, s))
			continue;
		state = step_state(rt, cfg, s);
		if (state == TPIN_RTNL_PRESENT || state == TPIN_RTNL_FOREIGN)
			continue;
		step_command(cfg, s, true, cmd, sizeof(cmd));
		if (state < 0)
			tpin_out_error(out, "cannot read the state of \"%s\": %s", cmd,
				       strerror(-state));
		else if (state == TPIN_RTNL_DIFFERENT)
			tpin_out_error(out, "different: \"%s\" is not what the kernel holds%s", cmd,
				       s->kind == STEP_ROUTE
					       ? " (the table's default route points elsewhere)"
				       : s->kind == STEP_RULE
					       ? " (the mark is routed to another table)"
					       : "");
		else
			tpin_out_error(out, "missing: %s", cmd);
		diffs++;
	}
	tpin_rtnl_close(rt);
	return diffs;
}

int tpin_dry_run(const struct tpin_config *cfg, const struct tpin_out *out)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new(1);
	char ports[64], cmd[128], outbound[48] = "";
	size_t i;

	if (!b || tpin_nft_build_install(b, cfg) || tpin_nft_batch_close(b)) {
		tpin_nft_batch_free(b);
		return -ENOMEM;
	}
	tpin_ports_format(&cfg->inbound, ports, sizeof(ports));
	if (cfg->outbound)
		snprintf(outbound, sizeof(outbound), ", outbound port %u%s", cfg->outbound_port,
			 tpin_config_outbound_mode(cfg) != cfg->mode ? " (redirect mode)" : "");
	tpin_out_info(out, "#!/usr/sbin/nft -f");
	tpin_out_info(out, "# tpin-init --dry-run: mode %s, capture port %u, inbound ports %s%s%s.",
		      tpin_mode_name(cfg->mode), cfg->capture_port, ports, outbound,
		      cfg->notrack ? ", notrack" : "");
	tpin_out_info(
		out,
		"# The nftables transaction, one command per netlink message, applied atomically:");
	for (i = 0; i < tpin_nft_batch_count(b); i++)
		tpin_out_info(out, "%s", tpin_nft_batch_command(b, i));
	tpin_nft_batch_free(b);
	tpin_out_info(out,
		      "# Then, over rtnetlink, each only if missing (and lo brought up if down):");
	for (i = 0; i < NSTEPS; i++) {
		if (!step_applies(cfg, &steps[i]))
			continue;
		step_command(cfg, &steps[i], true, cmd, sizeof(cmd));
		tpin_out_info(out, "# %s", cmd);
	}
	return 0;
}
