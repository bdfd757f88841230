/* SPDX-License-Identifier: MIT */
#ifndef TPIN_CONFIG_H
#define TPIN_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "tpin/addr.h"
#include "tpin/err.h"

/* Istio-compatible defaults: tpin can stand in for istio-init. */
#define TPIN_DEFAULT_CAPTURE_PORT 15006
/* The outbound listener: Envoy's virtualOutbound port. */
#define TPIN_DEFAULT_OUTBOUND_PORT 15001
#define TPIN_DEFAULT_ADMIN_PORT	   15000
#define TPIN_DEFAULT_MARK	   0x539u
#define TPIN_DEFAULT_PROXY_MARK	   0x53au
#define TPIN_DEFAULT_ROUTE_TABLE   133u
#define TPIN_DEFAULT_TABLE_NAME	   "tpin"
/* tpin-proxy's readiness port, on every address, as Envoy's in Istio. */
#define TPIN_HEALTH_PORT 15021
/* Ports Istio never intercepts: Envoy's Prometheus, readiness and agent. */
#define TPIN_ALWAYS_EXCLUDED "15020,15021,15090"
#define TPIN_TABLE_NAME_MAX  32

enum tpin_mode {
	TPIN_MODE_TPROXY,
	TPIN_MODE_REDIRECT,
};

/* Everything tpin-init installs is a function of this value. */
struct tpin_config {
	enum tpin_mode mode;
	uint16_t capture_port;
	uint16_t admin_port;
	uint32_t mark;
	uint32_t route_table;
	char table_name[TPIN_TABLE_NAME_MAX];
	struct tpin_ports inbound;  /* ports intercepted ("*" by default) */
	struct tpin_ports excluded; /* never intercepted, defaults merged in */
	struct tpin_cidrs exclude_sources;
	bool preserve_source;	 /* add the output chain that routes replies back */
	bool upstream_localhost; /* the app listens on loopback only (Istio 1.5) */
	bool ipv6;		 /* install the IPv6 half */
};

/* tpin_config_init - fill @cfg with the defaults. */
void tpin_config_init(struct tpin_config *cfg);

/*
 * tpin_config_finish - merge the always-excluded ports (15020, 15021, 15090,
 * the capture port and the admin port) into the exclusions and refuse a
 * combination that would lose traffic: the proxy's own mark as --mark, the
 * capture port on the admin or readiness port, nothing left to intercept,
 * --preserve-source without named ports or outside tproxy mode. Returns 0,
 * or -EINVAL or -E2BIG with @err naming the conflict.
 */
int tpin_config_finish(struct tpin_config *cfg, struct tpin_err *err);

/*
 * tpin_config_intercepts - whether @cfg intercepts @port: inbound and not
 * excluded (after tpin_config_finish).
 */
bool tpin_config_intercepts(const struct tpin_config *cfg, uint16_t port);

/*
 * tpin_mode_parse - "tproxy" or "redirect". Returns 0 or -EINVAL with a
 * message naming the value in @err.
 */
int tpin_mode_parse(enum tpin_mode *mode, const char *text, struct tpin_err *err);

const char *tpin_mode_name(enum tpin_mode mode);

/*
 * tpin_u32_parse - parse a decimal or 0x-prefixed number in [min, max].
 * Returns 0 or -EINVAL with a message naming the value in @err.
 */
int tpin_u32_parse(uint32_t *out, const char *text, uint32_t min, uint32_t max,
		   struct tpin_err *err);

/*
 * tpin_table_name_parse - an nftables table name: 1-31 characters of
 * [A-Za-z0-9_-], starting with a letter. Returns 0 or -EINVAL.
 */
int tpin_table_name_parse(char *out, const char *text, struct tpin_err *err);

#endif
