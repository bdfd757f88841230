// SPDX-License-Identifier: MIT
/* The configuration value shared by tpin-init and tpin-proxy. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "tpin/config.h"
#include "tpin/err.h"

void tpin_config_init(struct tpin_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = TPIN_MODE_TPROXY;
	cfg->capture_port = TPIN_DEFAULT_CAPTURE_PORT;
	cfg->admin_port = TPIN_DEFAULT_ADMIN_PORT;
	cfg->mark = TPIN_DEFAULT_MARK;
	cfg->route_table = TPIN_DEFAULT_ROUTE_TABLE;
	strcpy(cfg->table_name, TPIN_DEFAULT_TABLE_NAME);
	cfg->inbound.all = true;
	cfg->ipv6 = true;
	cfg->outbound_port = TPIN_DEFAULT_OUTBOUND_PORT;
	cfg->exempt_uids.v[cfg->exempt_uids.n++] = TPIN_DEFAULT_PROXY_UID;
	cfg->exempt_gids.v[cfg->exempt_gids.n++] = TPIN_DEFAULT_PROXY_GID;
	cfg->out_ports.all = true;
	cfg->out_all = true;
}

bool tpin_config_intercepts(const struct tpin_config *cfg, uint16_t port)
{
	return tpin_ports_contains(&cfg->inbound, port) &&
	       !tpin_ports_contains(&cfg->excluded, port);
}

/*
 * Whether one range of @ports holds all of [first, last]: the ranges are
 * merged, so a covered interval lies within a single one.
 */
static bool covered(const struct tpin_ports *ports, uint16_t first, uint16_t last)
{
	size_t i;

	if (ports->all)
		return true;
	for (i = 0; i < ports->n; i++)
		if (ports->r[i].first <= first && ports->r[i].last >= last)
			return true;
	return false;
}

/* Whether @ports minus @excluded leaves any port. */
static bool ports_left(const struct tpin_ports *ports, const struct tpin_ports *excluded)
{
	size_t i;

	if (ports->all)
		return !covered(excluded, 1, 65535);
	for (i = 0; i < ports->n; i++)
		if (!covered(excluded, ports->r[i].first, ports->r[i].last))
			return true;
	return false;
}

bool tpin_config_captures_family(const struct tpin_config *cfg, int family)
{
	struct tpin_cidr all = { .family = family, .plen = 0 };
	size_t i;

	if (!cfg->outbound || (family == AF_INET6 && !cfg->ipv6))
		return false;
	if (cfg->out_all)
		return !tpin_cidrs_covers(&cfg->out_exclude, &all);
	for (i = 0; i < cfg->out_include.n; i++)
		if (cfg->out_include.c[i].family == family &&
		    !tpin_cidrs_covers(&cfg->out_exclude, &cfg->out_include.c[i]))
			return true;
	return false;
}

/* Insert @v into the sorted list @ids unless it is there. 0 or -E2BIG. */
static int ids_add(struct tpin_ids *ids, uint32_t v)
{
	size_t i;

	for (i = 0; i < ids->n && ids->v[i] < v; i++)
		;
	if (i < ids->n && ids->v[i] == v)
		return 0;
	if (ids->n == TPIN_IDS_MAX)
		return -E2BIG;
	memmove(&ids->v[i + 1], &ids->v[i], (ids->n - i) * sizeof(ids->v[0]));
	ids->v[i] = v;
	ids->n++;
	return 0;
}

int tpin_ids_parse(struct tpin_ids *ids, const char *text, struct tpin_err *err)
{
	const char *p = text;
	struct tpin_err e;
	uint32_t v;

	for (;;) {
		size_t len = strcspn(p, ",");
		char tok[16];

		if (!len)
			return tpin_err_set(err, -EINVAL, "an empty entry in \"%s\"", text);
		snprintf(tok, sizeof(tok), "%.*s", (int)len, p);
		/* (uid_t)-1 means "no change" to the kernel: never anyone's id. */
		if (len >= sizeof(tok) || tpin_u32_parse(&v, tok, 0, UINT32_MAX - 1, &e))
			return tpin_err_set(err, -EINVAL,
					    "\"%.*s\" is not a uid or gid (a number, 0-4294967294)",
					    (int)len, p);
		if (ids_add(ids, v))
			return tpin_err_set(err, -E2BIG, "more than %d uids or gids", TPIN_IDS_MAX);
		p += len;
		if (!*p)
			return 0;
		p++; /* the comma */
	}
}

/*
 * Outbound capture's own conflicts (see tpin_config_finish()); its port is
 * checked against the proxy's other ports before the exclusions are merged.
 */
static int finish_outbound(const struct tpin_config *cfg, struct tpin_err *err)
{
	/* NAT sees only a connection's first packet: the app's answers are never taken. */
	bool tproxy = tpin_config_outbound_tproxy(cfg);

	if (tproxy && cfg->preserve_source)
		return tpin_err_set(
			err, -EINVAL,
			"--preserve-source and outbound capture: the app's answers to the clients "
			"the proxy connects it from could not be told from its own connections "
			"without conntrack; use one of them");
	if (tproxy && !cfg->inbound.all)
		return tpin_err_set(
			err, -EINVAL,
			"outbound capture needs --inbound-ports \"*\": without conntrack the app's "
			"answers on the ports it serves directly (every port -b leaves out) could "
			"not be told from its own connections; intercept \"*\" and name those "
			"ports with --exclude-ports");
	if (cfg->out_excluded.all)
		return tpin_err_set(
			err, -EINVAL,
			"--outbound-exclude-ports \"*\" would capture nothing outbound");
	if (!ports_left(&cfg->out_ports, &cfg->out_excluded))
		return tpin_err_set(err, -EINVAL,
				    "--outbound-exclude-ports covers every port of "
				    "--outbound-ports: nothing would be captured outbound");
	if (tpin_config_captures_family(cfg, AF_INET) || tpin_config_captures_family(cfg, AF_INET6))
		return 0;
	if (!cfg->ipv6 && !cfg->out_all && !tpin_cidrs_count(&cfg->out_include, AF_INET))
		return tpin_err_set(err, -EINVAL,
				    "--outbound-include-cidrs names no IPv4 address and IPv6 is "
				    "left alone (--no-ipv6): nothing would be captured outbound");
	return tpin_err_set(err, -EINVAL,
			    "--outbound-exclude-cidrs covers %s%s: nothing would be captured "
			    "outbound",
			    cfg->out_all ? "every address"
					 : "every CIDR of --outbound-include-cidrs",
			    cfg->ipv6 ? "" : " of IPv4 (--no-ipv6)");
}

int tpin_config_finish(struct tpin_config *cfg, struct tpin_err *err)
{
	struct tpin_ports always;
	size_t i;
	int ret;

	if (cfg->mark == TPIN_DEFAULT_PROXY_MARK)
		return tpin_err_set(
			err, -EINVAL,
			"--mark 0x%x is the mark tpin-proxy puts on its own sockets: the "
			"intercepted connections would never reach it; pick another",
			cfg->mark);
	if (cfg->capture_port == cfg->admin_port)
		return tpin_err_set(err, -EINVAL,
				    "--capture-port %u is also the admin port (--admin-port): the "
				    "proxy cannot listen on both",
				    cfg->capture_port);
	if (cfg->capture_port == TPIN_HEALTH_PORT || cfg->admin_port == TPIN_HEALTH_PORT)
		return tpin_err_set(
			err, -EINVAL,
			"--%s %u is tpin-proxy's readiness port: the proxy cannot listen "
			"on both",
			cfg->capture_port == TPIN_HEALTH_PORT ? "capture-port" : "admin-port",
			TPIN_HEALTH_PORT);
	if (cfg->outbound &&
	    (cfg->outbound_port == cfg->capture_port || cfg->outbound_port == cfg->admin_port ||
	     cfg->outbound_port == TPIN_HEALTH_PORT))
		return tpin_err_set(
			err, -EINVAL,
			"--outbound-port %u is also %s: the proxy cannot listen on both",
			cfg->outbound_port,
			cfg->outbound_port == cfg->capture_port ? "the capture port (-z)"
			: cfg->outbound_port == cfg->admin_port ? "the admin port (--admin-port)"
								: "tpin-proxy's readiness port");
	if (cfg->notrack && cfg->mode != TPIN_MODE_TPROXY)
		return tpin_err_set(err, -EINVAL,
				    "--notrack works only in tproxy mode: redirect mode's NAT is "
				    "conntrack");
	/*
	 * Inbound NAT tracks every flow of the pod already: TPROXY outbound
	 * would save no entry, and would still cost what it needs without
	 * conntrack (-b "*", policy routing). Nobody runs it; refused rather
	 * than kept as a third ruleset to test.
	 */
	if (cfg->outbound_mode_set && cfg->mode == TPIN_MODE_REDIRECT &&
	    cfg->outbound_mode == TPIN_MODE_TPROXY)
		return tpin_err_set(
			err, -EINVAL,
			"--outbound-mode \"tproxy\" with -m redirect: inbound NAT tracks "
			"every flow of the pod anyway; use -m tproxy for TPROXY outbound");
	if (cfg->notrack && tpin_config_outbound_nat(cfg))
		return tpin_err_set(err, -EINVAL,
				    "--notrack with --outbound-mode \"redirect\": outbound NAT is "
				    "conntrack; --notrack takes TPROXY both ways");
	ret = tpin_ports_parse(&always, TPIN_ALWAYS_EXCLUDED, err);
	for (i = 0; !ret && i < always.n; i++)
		ret = tpin_ports_add(&cfg->excluded, always.r[i].first, always.r[i].last);
	if (!ret)
		ret = tpin_ports_add(&cfg->excluded, cfg->capture_port, cfg->capture_port);
	if (!ret)
		ret = tpin_ports_add(&cfg->excluded, cfg->admin_port, cfg->admin_port);
	/* The proxy's outbound listener is one of its own ports, like the others. */
	if (!ret && cfg->outbound)
		ret = tpin_ports_add(&cfg->excluded, cfg->outbound_port, cfg->outbound_port);
	if (ret)
		return tpin_err_set(err, ret, "more than %d excluded port ranges", TPIN_PORTS_MAX);
	if (cfg->excluded.all)
		return tpin_err_set(err, -EINVAL, "--exclude-ports \"*\" would intercept nothing");
	if (!ports_left(&cfg->inbound, &cfg->excluded))
		return tpin_err_set(
			err, -EINVAL,
			"--exclude-ports and the always excluded ports cover every port "
			"of --inbound-ports: nothing would be intercepted");
	if (cfg->outbound) {
		ret = finish_outbound(cfg, err);
		if (ret)
			return ret;
	}
	if (cfg->preserve_source && cfg->inbound.all)
		return tpin_err_set(
			err, -EINVAL,
			"--preserve-source needs the app's ports named with --inbound-ports, not "
			"\"*\"");
	if (cfg->preserve_source && cfg->mode != TPIN_MODE_TPROXY)
		return tpin_err_set(err, -EINVAL, "--preserve-source works only in tproxy mode");
	return 0;
}

int tpin_mode_parse(enum tpin_mode *mode, const char *text, struct tpin_err *err)
{
	if (!strcmp(text, "tproxy") || !strcmp(text, "TPROXY"))
		*mode = TPIN_MODE_TPROXY;
	else if (!strcmp(text, "redirect") || !strcmp(text, "REDIRECT"))
		*mode = TPIN_MODE_REDIRECT;
	else
		return tpin_err_set(err, -EINVAL,
				    "unknown mode \"%s\" (expected tproxy or redirect)", text);
	return 0;
}

const char *tpin_mode_name(enum tpin_mode mode)
{
	return mode == TPIN_MODE_REDIRECT ? "redirect" : "tproxy";
}

int tpin_u32_parse(uint32_t *out, const char *text, uint32_t min, uint32_t max,
		   struct tpin_err *err)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (!isdigit((unsigned char)text[0]))
		goto bad;
	/* Decimal, or hex with 0x: a leading 0 is not octal ("010" is ten). */
	v = strtoull(text, &end, strncasecmp(text, "0x", 2) ? 10 : 16);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = (uint32_t)v;
	return 0;
bad:
	return tpin_err_set(err, -EINVAL, "\"%s\" is not a number in %u-%u", text, min, max);
}

int tpin_table_name_parse(char *out, const char *text, struct tpin_err *err)
{
	size_t i, len = strlen(text);

	if (!len || len >= TPIN_TABLE_NAME_MAX || !isalpha((unsigned char)text[0]))
		goto bad;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)text[i]) && text[i] != '_' && text[i] != '-')
			goto bad;
	memcpy(out, text, len + 1);
	return 0;
bad:
	return tpin_err_set(
		err, -EINVAL,
		"table name \"%s\" must be 1-%d letters, digits, '_' or '-', starting with a "
		"letter",
		text, TPIN_TABLE_NAME_MAX - 1);
}
