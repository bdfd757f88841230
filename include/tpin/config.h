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
/*
 * The owner whose connections are never captured outbound, uid and gid
 * (istio-iptables -u and -g): the proxy's user in Istio's pods.
 */
#define TPIN_DEFAULT_PROXY_UID 1337u
#define TPIN_DEFAULT_PROXY_GID 1337u
/* tpin-proxy's readiness port, on every address, as Envoy's in Istio. */
#define TPIN_HEALTH_PORT 15021
/* Ports Istio never intercepts: Envoy's Prometheus, readiness and agent. */
#define TPIN_ALWAYS_EXCLUDED "15020,15021,15090"
#define TPIN_TABLE_NAME_MAX  32

/* A list of uids or gids, sorted, without duplicates. */
#define TPIN_IDS_MAX 16
struct tpin_ids {
	size_t n;
	uint32_t v[TPIN_IDS_MAX];
};

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
	bool notrack;		 /* keep tpin's own flows out of conntrack (tproxy mode) */
	/*
	 * Outbound capture: the app's own connections to other hosts go to
	 * the proxy's outbound listener. Off unless asked for.
	 */
	bool outbound;
	/*
	 * --outbound-mode: how outbound is captured, when not as --mode.
	 * redirect with -m tproxy is Istio's TPROXY mode: inbound TPROXY,
	 * outbound NAT (and conntrack for every flow of the pod).
	 */
	bool outbound_mode_set;
	enum tpin_mode outbound_mode;
	uint16_t outbound_port;		/* -p: the proxy's outbound listener */
	struct tpin_ids exempt_uids;	/* -u: owners never captured */
	struct tpin_ids exempt_gids;	/* -g */
	struct tpin_ports out_ports;	/* -q: destination ports captured ("*" by default) */
	struct tpin_ports out_excluded; /* -o: destination ports never captured */
	bool out_all;			/* -i "*" (the default): every destination */
	struct tpin_cidrs out_include;	/* -i: destinations captured, unless out_all */
	struct tpin_cidrs out_exclude;	/* -x: destinations never captured */
};

/*
 * tpin_config_outbound_mode - how outbound connections are captured:
 * --outbound-mode, else the same as --mode.
 */
static inline enum tpin_mode tpin_config_outbound_mode(const struct tpin_config *cfg)
{
	return cfg->outbound_mode_set ? cfg->outbound_mode : cfg->mode;
}

/*
 * tpin_config_outbound_tproxy - outbound capture by TPROXY: the output
 * route chain marks, the prerouting divert hands to the outbound listener.
 */
static inline bool tpin_config_outbound_tproxy(const struct tpin_config *cfg)
{
	return cfg->outbound && tpin_config_outbound_mode(cfg) == TPIN_MODE_TPROXY;
}

/*
 * tpin_config_outbound_nat - outbound capture by the nat output chain's
 * REDIRECT (-m redirect, or -m tproxy --outbound-mode redirect).
 */
static inline bool tpin_config_outbound_nat(const struct tpin_config *cfg)
{
	return cfg->outbound && tpin_config_outbound_mode(cfg) == TPIN_MODE_REDIRECT;
}

/* tpin_config_init - fill @cfg with the defaults. */
void tpin_config_init(struct tpin_config *cfg);

/*
 * tpin_config_finish - merge the always-excluded ports (15020, 15021, 15090,
 * the capture port and the admin port) into the exclusions and refuse a
 * combination that would lose traffic: the proxy's own mark as --mark, the
 * capture port on the admin or readiness port, nothing left to intercept,
 * --preserve-source without named ports or outside tproxy mode. With
 * outbound capture it adds the outbound port to the exclusions too and
 * refuses: that port on another of the proxy's ports, -q/-o or -i/-x
 * leaving nothing to capture, and with TPROXY outbound named inbound ports
 * or --preserve-source (the app's answers on the ports it serves directly
 * could not be told from its own connections); --outbound-mode tproxy with
 * -m redirect. --notrack takes tproxy mode both ways. Returns 0, or -EINVAL
 * or -E2BIG with @err naming the conflict.
 */
int tpin_config_finish(struct tpin_config *cfg, struct tpin_err *err);

/*
 * tpin_config_captures_family - whether outbound capture takes any
 * destination of @family (AF_INET or AF_INET6): on, the family installed,
 * and -i "*" or an -i CIDR of that family.
 */
bool tpin_config_captures_family(const struct tpin_config *cfg, int family);

/*
 * tpin_ids_parse - a comma-separated list of uids or gids, decimal, each
 * 0-4294967294, added to @ids (sorted, duplicates dropped). Names are not
 * looked up: the init container has no user database of the app's image.
 * Returns 0, -EINVAL naming the bad entry in @err, or -E2BIG beyond
 * TPIN_IDS_MAX.
 */
int tpin_ids_parse(struct tpin_ids *ids, const char *text, struct tpin_err *err);

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
