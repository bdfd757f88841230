// SPDX-License-Identifier: MIT
/* Routing rules, routes and addresses over rtnetlink with libmnl. */

#include <errno.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "tpin/nl.h"
#include "tpin/rtnl.h"

#define LOOPBACK_IFINDEX 1
/* Large enough for any dump message: MNL_SOCKET_DUMP_SIZE of newer libmnl. */
#define RTNL_BUF_SIZE 32768

struct tpin_rtnl {
	struct mnl_socket *nl;
	uint32_t seq;
	char buf[RTNL_BUF_SIZE] __attribute__((aligned(NLMSG_ALIGNTO)));
};

int tpin_rtnl_open(struct tpin_rtnl **out)
{
	struct tpin_rtnl *rt = calloc(1, sizeof(*rt));
	int ret;

	if (!rt)
		return -ENOMEM;
	ret = tpin_nl_open(NETLINK_ROUTE, &rt->nl);
	if (ret) {
		free(rt);
		return ret;
	}
	rt->seq = (uint32_t)time(NULL);
	*out = rt;
	return 0;
}

void tpin_rtnl_close(struct tpin_rtnl *rt)
{
	if (!rt)
		return;
	if (rt->nl)
		mnl_socket_close(rt->nl);
	free(rt);
}

/*
 * Start a request in rt->buf. Everything but a dump asks for an ACK, so that
 * talk() always has an answer that ends the exchange. (NLM_F_EXCL shares its
 * bit with NLM_F_MATCH, so a dump is told by the caller, not by the flags.)
 */
static struct nlmsghdr *request(struct tpin_rtnl *rt, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(rt->buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | (flags == NLM_F_DUMP ? flags : flags | NLM_F_ACK);
	nlh->nlmsg_seq = ++rt->seq;
	return nlh;
}

/*
 * Send @nlh and run @cb on every answer until the ACK or the end of the dump.
 * Returns 0 or -errno (the kernel's error for the request).
 */
static int talk(struct tpin_rtnl *rt, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	return tpin_nl_talk(rt->nl, nlh, rt->buf, sizeof(rt->buf), cb, data);
}

/* A fwmark rule: struct fib_rule_hdr plus FRA_FWMARK and FRA_TABLE. */
static struct nlmsghdr *rule_msg(struct tpin_rtnl *rt, uint16_t type, uint16_t flags, int family,
				 uint32_t mark, uint32_t table)
{
	struct nlmsghdr *nlh = request(rt, type, flags);
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

	frh->family = (uint8_t)family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_FWMARK, mark);
	mnl_attr_put_u32(nlh, FRA_TABLE, table);
	mnl_attr_put_u8(nlh, FRA_PROTOCOL, TPIN_RTPROT);
	return nlh;
}

struct rule_query {
	int family;
	uint32_t mark, table;
	int state;
};

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct rule_query *q = data;
	const struct nlattr *attr;
	uint32_t mark = 0, mask = 0xffffffff, table = frh->table;
	uint8_t proto = 0;
	bool has_mark = false;

	mnl_attr_for_each(attr, nlh, sizeof(*frh)) {
		switch (mnl_attr_get_type(attr)) {
		case FRA_FWMARK:
			mark = mnl_attr_get_u32(attr);
			has_mark = true;
			break;
		case FRA_FWMASK:
			mask = mnl_attr_get_u32(attr);
			break;
		case FRA_TABLE:
			table = mnl_attr_get_u32(attr);
			break;
		case FRA_PROTOCOL:
			proto = mnl_attr_get_u8(attr);
			break;
		}
	}
	/*
	 * The dump is in priority order and the first rule that takes the
	 * mark decides where marked packets go: ours, or something else
	 * (another table, an inverted match, a narrower selector).
	 */
	if (frh->family != q->family || !has_mark || mark != q->mark ||
	    q->state != TPIN_RTNL_ABSENT)
		return MNL_CB_OK;
	if (table == q->table && mask == 0xffffffff && !frh->src_len && !frh->dst_len &&
	    frh->action == FR_ACT_TO_TBL && !(frh->flags & FIB_RULE_INVERT))
		q->state = proto == TPIN_RTPROT ? TPIN_RTNL_PRESENT : TPIN_RTNL_FOREIGN;
	else
		q->state = TPIN_RTNL_DIFFERENT;
	return MNL_CB_OK;
}

int tpin_rtnl_rule_state(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table)
{
	struct nlmsghdr *nlh = request(rt, RTM_GETRULE, NLM_F_DUMP);
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	struct rule_query q = { family, mark, table, TPIN_RTNL_ABSENT };
	int ret;

	frh->family = (uint8_t)family;
	ret = talk(rt, nlh, rule_cb, &q);
	return ret ? ret : q.state;
}

int tpin_rtnl_rule_add(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table)
{
	return talk(rt, rule_msg(rt, RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, mark, table),
		    NULL, NULL);
}

int tpin_rtnl_rule_del(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table)
{
	return talk(rt, rule_msg(rt, RTM_DELRULE, 0, family, mark, table), NULL, NULL);
}

/* "local default dev lo table T": what iproute2 sends for that command. */
static struct nlmsghdr *route_msg(struct tpin_rtnl *rt, uint16_t type, uint16_t flags, int family,
				  uint32_t table)
{
	struct nlmsghdr *nlh = request(rt, type, flags);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)family;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = TPIN_RTPROT;
	rtm->rtm_scope = RT_SCOPE_HOST;
	rtm->rtm_type = RTN_LOCAL;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	mnl_attr_put_u32(nlh, RTA_OIF, LOOPBACK_IFINDEX);
	return nlh;
}

struct route_query {
	int family;
	uint32_t table;
	int state;
};

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct route_query *q = data;
	const struct nlattr *attr;
	uint32_t table = rtm->rtm_table, oif = 0;

	mnl_attr_for_each(attr, nlh, sizeof(*rtm)) {
		if (mnl_attr_get_type(attr) == RTA_TABLE)
			table = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == RTA_OIF)
			oif = mnl_attr_get_u32(attr);
	}
	/* Without a GETROUTE handler for the family the kernel dumps them all. */
	if (rtm->rtm_family != q->family || table != q->table || rtm->rtm_dst_len)
		return MNL_CB_OK;
	if (rtm->rtm_type == RTN_LOCAL && oif == LOOPBACK_IFINDEX)
		q->state = rtm->rtm_protocol == TPIN_RTPROT ? TPIN_RTNL_PRESENT : TPIN_RTNL_FOREIGN;
	else if (q->state == TPIN_RTNL_ABSENT)
		q->state = TPIN_RTNL_DIFFERENT;
	return MNL_CB_OK;
}

int tpin_rtnl_route_state(struct tpin_rtnl *rt, int family, uint32_t table)
{
	struct nlmsghdr *nlh = request(rt, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	struct route_query q = { family, table, TPIN_RTNL_ABSENT };
	int ret;

	rtm->rtm_family = (uint8_t)family;
	ret = talk(rt, nlh, route_cb, &q);
	return ret ? ret : q.state;
}

int tpin_rtnl_route_add(struct tpin_rtnl *rt, int family, uint32_t table)
{
	return talk(rt, route_msg(rt, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, family, table), NULL,
		    NULL);
}

int tpin_rtnl_route_del(struct tpin_rtnl *rt, int family, uint32_t table)
{
	return talk(rt, route_msg(rt, RTM_DELROUTE, 0, family, table), NULL, NULL);
}

/* Collects tpin's own rules or routes of one family from a dump. */
struct tagged_query {
	int family;
	struct tpin_rtnl_piece *out;
	size_t n, max;
};

static int tagged_rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct tagged_query *q = data;
	struct tpin_rtnl_piece p = { 0, frh->table };
	const struct nlattr *attr;
	uint8_t proto = 0;

	mnl_attr_for_each(attr, nlh, sizeof(*frh)) {
		if (mnl_attr_get_type(attr) == FRA_FWMARK)
			p.mark = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == FRA_TABLE)
			p.table = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == FRA_PROTOCOL)
			proto = mnl_attr_get_u8(attr);
	}
	if (frh->family == q->family && proto == TPIN_RTPROT && q->n < q->max)
		q->out[q->n++] = p;
	return MNL_CB_OK;
}

static int tagged_route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct tagged_query *q = data;
	struct tpin_rtnl_piece p = { 0, rtm->rtm_table };
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(*rtm))
		if (mnl_attr_get_type(attr) == RTA_TABLE)
			p.table = mnl_attr_get_u32(attr);
	if (rtm->rtm_family == q->family && rtm->rtm_protocol == TPIN_RTPROT &&
	    rtm->rtm_type == RTN_LOCAL && !rtm->rtm_dst_len && q->n < q->max)
		q->out[q->n++] = p;
	return MNL_CB_OK;
}

int tpin_rtnl_tagged(struct tpin_rtnl *rt, int family, bool rules, struct tpin_rtnl_piece *out,
		     size_t max)
{
	struct nlmsghdr *nlh = request(rt, rules ? RTM_GETRULE : RTM_GETROUTE, NLM_F_DUMP);
	struct tagged_query q = { family, out, 0, max };
	int ret;

	/* fib_rule_hdr and rtmsg both begin with the family. */
	if (rules)
		((struct fib_rule_hdr *)mnl_nlmsg_put_extra_header(nlh,
								   sizeof(struct fib_rule_hdr)))
			->family = (uint8_t)family;
	else
		((struct rtmsg *)mnl_nlmsg_put_extra_header(nlh, sizeof(struct rtmsg)))
			->rtm_family = (uint8_t)family;
	ret = talk(rt, nlh, rules ? tagged_rule_cb : tagged_route_cb, &q);
	return ret ? ret : (int)q.n;
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static struct nlmsghdr *addr_msg(struct tpin_rtnl *rt, uint16_t type, uint16_t flags, int family,
				 const void *addr, uint8_t plen)
{
	struct nlmsghdr *nlh = request(rt, type, flags);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));

	ifa->ifa_family = (uint8_t)family;
	ifa->ifa_prefixlen = plen;
	/* No duplicate address detection on lo: usable at once. */
	ifa->ifa_flags = IFA_F_NODAD;
	ifa->ifa_index = LOOPBACK_IFINDEX;
	mnl_attr_put(nlh, IFA_LOCAL, addr_len(family), addr);
	mnl_attr_put(nlh, IFA_ADDRESS, addr_len(family), addr);
	if (type == RTM_NEWADDR)
		mnl_attr_put_u8(nlh, IFA_PROTO, TPIN_RTPROT);
	return nlh;
}

struct addr_query {
	int family;
	const void *addr;
	uint8_t plen;
	int state;
};

static int addr_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	struct addr_query *q = data;
	const struct nlattr *attr;

	uint8_t proto = 0;
	bool match = false;

	if (ifa->ifa_index != LOOPBACK_IFINDEX || ifa->ifa_family != q->family)
		return MNL_CB_OK;
	mnl_attr_for_each(attr, nlh, sizeof(*ifa)) {
		uint16_t type = mnl_attr_get_type(attr);

		if ((type == IFA_ADDRESS || type == IFA_LOCAL) &&
		    mnl_attr_get_payload_len(attr) == addr_len(q->family) &&
		    !memcmp(mnl_attr_get_payload(attr), q->addr, addr_len(q->family)))
			match = true;
		else if (type == IFA_PROTO)
			proto = mnl_attr_get_u8(attr);
	}
	if (match && ifa->ifa_prefixlen != q->plen)
		q->state = TPIN_RTNL_DIFFERENT;
	else if (match)
		q->state = proto == TPIN_RTPROT ? TPIN_RTNL_PRESENT : TPIN_RTNL_FOREIGN;
	return MNL_CB_OK;
}

int tpin_rtnl_addr_state(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen)
{
	struct nlmsghdr *nlh = request(rt, RTM_GETADDR, NLM_F_DUMP);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	struct addr_query q = { family, addr, plen, TPIN_RTNL_ABSENT };
	int ret;

	ifa->ifa_family = (uint8_t)family;
	ret = talk(rt, nlh, addr_cb, &q);
	return ret ? ret : q.state;
}

int tpin_rtnl_addr_add(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen)
{
	return talk(rt, addr_msg(rt, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, family, addr, plen),
		    NULL, NULL);
}

int tpin_rtnl_addr_del(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen)
{
	return talk(rt, addr_msg(rt, RTM_DELADDR, 0, family, addr, plen), NULL, NULL);
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	*(int *)data = !!(ifi->ifi_flags & IFF_UP);
	return MNL_CB_OK;
}

int tpin_rtnl_lo_is_up(struct tpin_rtnl *rt)
{
	struct nlmsghdr *nlh = request(rt, RTM_GETLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	int up = 0, ret;

	ifi->ifi_index = LOOPBACK_IFINDEX;
	ret = talk(rt, nlh, link_cb, &up);
	return ret ? ret : up;
}

int tpin_rtnl_lo_set(struct tpin_rtnl *rt, bool up)
{
	struct nlmsghdr *nlh = request(rt, RTM_NEWLINK, 0);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	ifi->ifi_index = LOOPBACK_IFINDEX;
	ifi->ifi_flags = up ? IFF_UP : 0;
	ifi->ifi_change = IFF_UP;
	return talk(rt, nlh, NULL, NULL);
}
