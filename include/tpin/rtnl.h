/* SPDX-License-Identifier: MIT */
#ifndef TPIN_RTNL_H
#define TPIN_RTNL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpin/rtnl_msg.h"

/*
 * Policy routing over rtnetlink: the fwmark rule, the local default route in
 * its table, the passthrough address on lo. Every function sends the request
 * rtnl_msg.h builds, reads the answers, works in the network namespace the
 * handle was opened in and returns 0 or -errno.
 */

struct tpin_rtnl;

/* tpin_rtnl_open - a NETLINK_ROUTE socket. Returns 0 or -errno. */
int tpin_rtnl_open(struct tpin_rtnl **out);

void tpin_rtnl_close(struct tpin_rtnl *rt);

/* What a lookup found. */
enum tpin_rtnl_state {
	TPIN_RTNL_ABSENT,
	TPIN_RTNL_PRESENT,   /* exactly what was asked, added by tpin */
	TPIN_RTNL_FOREIGN,   /* exactly what was asked, added by someone else */
	TPIN_RTNL_DIFFERENT, /* something else holds the place: a default route in the
				table that is not local via lo, a rule that sends the mark
				elsewhere first */
};

/*
 * tpin_rtnl_rule_state - whether "fwmark @mark lookup @table" exists for
 * @family (AF_INET or AF_INET6). Returns a tpin_rtnl_state (>= 0) or -errno
 * (-EAFNOSUPPORT when the kernel has no policy routing for the family).
 */
int tpin_rtnl_rule_state(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table);

/* tpin_rtnl_rule_add/del - add or delete that rule. Return 0 or -errno. */
int tpin_rtnl_rule_add(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table);
int tpin_rtnl_rule_del(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table);

/*
 * tpin_rtnl_route_state - whether table @table holds "local default dev lo"
 * for @family: TPIN_RTNL_DIFFERENT when it holds another default route.
 * Returns a tpin_rtnl_state or -errno.
 */
int tpin_rtnl_route_state(struct tpin_rtnl *rt, int family, uint32_t table);

/* tpin_rtnl_route_add/del - add or delete that route. Return 0 or -errno. */
int tpin_rtnl_route_add(struct tpin_rtnl *rt, int family, uint32_t table);
int tpin_rtnl_route_del(struct tpin_rtnl *rt, int family, uint32_t table);

/* A rule (fwmark @mark lookup @table) or a local default route (@table). */
struct tpin_rtnl_piece {
	uint32_t mark;
	uint32_t table;
};

/*
 * tpin_rtnl_tagged - list tpin's own fwmark rules (@rules true) or local
 * default routes of @family, whatever their mark and table: what an earlier
 * install with other flags may have left. Fills up to @max entries of @out.
 * Returns how many it found or -errno.
 */
int tpin_rtnl_tagged(struct tpin_rtnl *rt, int family, bool rules, struct tpin_rtnl_piece *out,
		     size_t max);

/*
 * tpin_rtnl_addr_state - whether lo holds @addr/@plen (@family's length, in
 * network byte order). Returns a tpin_rtnl_state or -errno.
 */
int tpin_rtnl_addr_state(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen);

/* tpin_rtnl_addr_add/del - add or delete that address on lo. */
int tpin_rtnl_addr_add(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen);
int tpin_rtnl_addr_del(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen);

/* tpin_rtnl_lo_is_up - store in *@up whether lo is up. Returns 0 or -errno. */
int tpin_rtnl_lo_is_up(struct tpin_rtnl *rt, bool *up);

/* tpin_rtnl_lo_set - bring lo up or down. Returns 0 or -errno. */
int tpin_rtnl_lo_set(struct tpin_rtnl *rt, bool up);

#endif
