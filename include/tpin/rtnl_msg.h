/* SPDX-License-Identifier: MIT */
#ifndef TPIN_RTNL_MSG_H
#define TPIN_RTNL_MSG_H

#include <stdbool.h>
#include <stdint.h>

struct nlmsghdr;

/*
 * The rtnetlink requests tpin sends, built apart from sending them, as
 * nft_build.c builds the nftables batch: each builder writes one request
 * into a caller-owned buffer and needs no socket, so the bytes can be
 * compared with what ip(8) sends for the same command (tests/unit/
 * test_rtnl_msg.c). rtnl.c sends them and reads the answers.
 *
 * @buf holds TPIN_RTNL_MSG_MAX bytes aligned for struct nlmsghdr; every
 * request fits, so the builders cannot fail. The request carries @seq.
 * Requests that change something ask for an ACK, so that every exchange
 * ends with an answer; dumps end with NLMSG_DONE.
 */
#define TPIN_RTNL_MSG_MAX 256

/*
 * tpin tags what it adds (route protocol, FRA_PROTOCOL, IFA_PROTO) so that
 * cleanup removes only its own pieces, never istio-init's or an operator's.
 */
#define TPIN_RTPROT 116

/*
 * "ip -F rule add|del fwmark @mark lookup @table proto 116": RTM_NEWRULE
 * (create, exclusive) with @add, RTM_DELRULE without. The delete names the
 * protocol too, so it removes only a rule tpin added.
 */
struct nlmsghdr *tpin_rtnl_msg_rule(void *buf, uint32_t seq, bool add, int family, uint32_t mark,
				    uint32_t table);

/* "ip -F route add|del local default dev lo table @table proto 116". */
struct nlmsghdr *tpin_rtnl_msg_route(void *buf, uint32_t seq, bool add, int family, uint32_t table);

/*
 * "ip -F addr add|del @addr/@plen dev lo nodad", tagged with IFA_PROTO 116
 * when added. @addr is 4 or 16 bytes by @family, network byte order.
 */
struct nlmsghdr *tpin_rtnl_msg_addr(void *buf, uint32_t seq, bool add, int family, const void *addr,
				    uint8_t plen);

/* "ip link set lo up|down". */
struct nlmsghdr *tpin_rtnl_msg_lo_set(void *buf, uint32_t seq, bool up);

/* RTM_GETLINK for lo alone (by its index), to read whether it is up. */
struct nlmsghdr *tpin_rtnl_msg_lo_get(void *buf, uint32_t seq);

/*
 * A dump of @family's rules (RTM_GETRULE), routes (RTM_GETROUTE) or
 * addresses (RTM_GETADDR): "ip -F rule|route|addr show", unfiltered.
 */
struct nlmsghdr *tpin_rtnl_msg_dump(void *buf, uint32_t seq, uint16_t type, int family);

#endif
