// SPDX-License-Identifier: MIT
/*
 * Builds tpin's rtnetlink requests with libmnl. No socket here: rtnl.c sends
 * what these write, and the unit tests compare it with what ip(8) sends.
 */

#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "tpin/net.h"
#include "tpin/rtnl_msg.h"

/*
 * Start a request in @buf. Everything but a dump asks for an ACK, so that
 * the exchange always ends with an answer. (NLM_F_EXCL shares its bit with
 * NLM_F_MATCH, so a dump is told by the caller, not by the flags.)
 */
static struct nlmsghdr *request(void *buf, uint32_t seq, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh;

	memset(buf, 0, TPIN_RTNL_MSG_MAX);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | (flags == NLM_F_DUMP ? flags : flags | NLM_F_ACK);
	nlh->nlmsg_seq = seq;
	return nlh;
}

static uint16_t add_flags(bool add)
{
	return add ? NLM_F_CREATE | NLM_F_EXCL : 0;
}

/* A fwmark rule: struct fib_rule_hdr plus FRA_FWMARK, FRA_TABLE, FRA_PROTOCOL. */
struct nlmsghdr *tpin_rtnl_msg_rule(void *buf, uint32_t seq, bool add, int family, uint32_t mark,
				    uint32_t table)
{
	struct nlmsghdr *nlh = request(buf, seq, add ? RTM_NEWRULE : RTM_DELRULE, add_flags(add));
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

	frh->family = (uint8_t)family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_FWMARK, mark);
	mnl_attr_put_u32(nlh, FRA_TABLE, table);
	mnl_attr_put_u8(nlh, FRA_PROTOCOL, TPIN_RTPROT);
	return nlh;
}

/* "local default dev lo table T": a host-scoped local route out of lo. */
struct nlmsghdr *tpin_rtnl_msg_route(void *buf, uint32_t seq, bool add, int family, uint32_t table)
{
	struct nlmsghdr *nlh = request(buf, seq, add ? RTM_NEWROUTE : RTM_DELROUTE, add_flags(add));
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = TPIN_RTPROT;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	mnl_attr_put_u32(nlh, RTA_OIF, TPIN_LOOPBACK_IFINDEX);
	return nlh;
}

struct nlmsghdr *tpin_rtnl_msg_addr(void *buf, uint32_t seq, bool add, int family, const void *addr,
				    uint8_t plen)
{
	struct nlmsghdr *nlh = request(buf, seq, add ? RTM_NEWADDR : RTM_DELADDR, add_flags(add));
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	size_t len = family == AF_INET ? 4 : 16;

	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = plen;
	/* No duplicate address detection on lo: usable at once. */
	ifa->ifa_flags = IFA_F_NODAD;
	ifa->ifa_index = TPIN_LOOPBACK_IFINDEX;
	mnl_attr_put(nlh, IFA_LOCAL, len, addr);
	mnl_attr_put(nlh, IFA_ADDRESS, len, addr);
	if (add)
		mnl_attr_put_u8(nlh, IFA_PROTO, TPIN_RTPROT);
	return nlh;
}

struct nlmsghdr *tpin_rtnl_msg_lo_set(void *buf, uint32_t seq, bool up)
{
	struct nlmsghdr *nlh = request(buf, seq, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_index = TPIN_LOOPBACK_IFINDEX;
	ifi->ifi_flags = up ? IFF_UP : 0;
	ifi->ifi_change = IFF_UP;
	return nlh;
}

struct nlmsghdr *tpin_rtnl_msg_lo_get(void *buf, uint32_t seq)
{
	struct nlmsghdr *nlh = request(buf, seq, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_index = TPIN_LOOPBACK_IFINDEX;
	return nlh;
}

struct nlmsghdr *tpin_rtnl_msg_dump(void *buf, uint32_t seq, uint16_t type, int family)
{
	struct nlmsghdr *nlh = request(buf, seq, type, NLM_F_DUMP);

	/* fib_rule_hdr, rtmsg and ifaddrmsg all begin with the family byte. */
	switch (type) {
	case RTM_GETRULE:
		((struct fib_rule_hdr *)mnl_nlmsg_put_extra_header(nlh,
								   sizeof(struct fib_rule_hdr)))
			->family = (uint8_t)family;
		break;
	case RTM_GETROUTE:
		((struct rtmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg)))
			->rtm_family = (uint8_t)family;
		break;
	default:
		((struct ifaddrmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct ifaddrmsg)))
			->ifa_family = (uint8_t)family;
	}
	return nlh;
}
