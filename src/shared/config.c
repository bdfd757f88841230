// SPDX-License-Identifier: MIT
/* The configuration value shared by tpin-init and tpin-proxy. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Whether @cfg leaves any port to intercept. */
static bool intercepts_any(const struct tpin_config *cfg)
{
	size_t i;

	if (cfg->inbound.all)
		return !covered(&cfg->excluded, 1, 65535);
	for (i = 0; i < cfg->inbound.n; i++)
		if (!covered(&cfg->excluded, cfg->inbound.r[i].first, cfg->inbound.r[i].last))
			return true;
	return false;
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
	ret = tpin_ports_parse(&always, TPIN_ALWAYS_EXCLUDED, err);
	for (i = 0; !ret && i < always.n; i++)
		ret = tpin_ports_add(&cfg->excluded, always.r[i].first, always.r[i].last);
	if (!ret)
		ret = tpin_ports_add(&cfg->excluded, cfg->capture_port, cfg->capture_port);
	if (!ret)
		ret = tpin_ports_add(&cfg->excluded, cfg->admin_port, cfg->admin_port);
	if (ret)
		return tpin_err_set(err, ret, "more than %d excluded port ranges", TPIN_PORTS_MAX);
	if (cfg->excluded.all)
		return tpin_err_set(err, -EINVAL, "--exclude-ports \"*\" would intercept nothing");
	if (!intercepts_any(cfg))
		return tpin_err_set(
			err, -EINVAL,
			"--exclude-ports and the always excluded ports cover every port "
			"of --inbound-ports: nothing would be intercepted");
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
