// SPDX-License-Identifier: MIT
/*
 * Routing rules, routes and addresses over rtnetlink with libmnl: sends the
 * requests rtnl_msg.c builds, one at a time, and reads the answers.
 */

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

#include "tpin/net.h"
#include "tpin/nl.h"
#include "tpin/rtnl.h"
#include "tpin/rtnl_msg.h"

/* Large enough for any dump message: MNL_SOCKET_DUMP_SIZE of newer libmnl. */
#define RTNL_BUF_SIZE 32768

struct tpin_rtnl {
	struct mnl_socket *nl;
	uint32_t seq;
	char req[TPIN_RTNL_MSG_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));
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
 * Send @nlh (built in rt->req) and run @cb on every answer until the ACK or
 * the end of the dump. Returns 0 or -errno (the kernel's error for it).
 */
static int talk(struct tpin_rtnl *rt, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	return tpin_nl_talk(rt->nl, nlh, rt->buf, sizeof(rt->buf), cb, data);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
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
	struct nlmsghdr *nlh = tpin_rtnl_msg_dump(rt->req, ++rt->seq, RTM_GETRULE, family);
	struct rule_query q = { family, mark, table, TPIN_RTNL_ABSENT };
	int ret;

	ret = talk(rt, nlh, rule_cb, &q);
	return ret ? ret : q.state;
}

int tpin_rtnl_rule_add(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table)
{
	return talk(rt, tpin_rtnl_msg_rule(rt->req, ++rt->seq, true, family, mark, table), NULL,
		    NULL);
}

int tpin_rtnl_rule_del(struct tpin_rtnl *rt, int family, uint32_t mark, uint32_t table)
{
	return talk(rt, tpin_rtnl_msg_rule(rt->req, ++rt->seq, false, family, mark, table), NULL,
		    NULL);
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
	if (rtm->rtm_type == RTN_LOCAL && oif == TPIN_LOOPBACK_IFINDEX)
		q->state = rtm->rtm_protocol == TPIN_RTPROT ? TPIN_RTNL_PRESENT : TPIN_RTNL_FOREIGN;
	else if (q->state == TPIN_RTNL_ABSENT)
		q->state = TPIN_RTNL_DIFFERENT;
	return MNL_CB_OK;
}

int tpin_rtnl_route_state(struct tpin_rtnl *rt, int family, uint32_t table)
{
	struct nlmsghdr *nlh = tpin_rtnl_msg_dump(rt->req, ++rt->seq, RTM_GETROUTE, family);
	struct route_query q = { family, table, TPIN_RTNL_ABSENT };
	int ret;

	ret = talk(rt, nlh, route_cb, &q);
	return ret ? ret : q.state;
}

int tpin_rtnl_route_add(struct tpin_rtnl *rt, int family, uint32_t table)
{
	return talk(rt, tpin_rtnl_msg_route(rt->req, ++rt->seq, true, family, table), NULL, NULL);
}

int tpin_rtnl_route_del(struct tpin_rtnl *rt, int family, uint32_t table)
{
	return talk(rt, tpin_rtnl_msg_route(rt->req, ++rt->seq, false, family, table), NULL, NULL);
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
	struct nlmsghdr *nlh =
		tpin_rtnl_msg_dump(rt->req, ++rt->seq, rules ? RTM_GETRULE : RTM_GETROUTE, family);
	struct tagged_query q = { family, out, 0, max };
	int ret;

	ret = talk(rt, nlh, rules ? tagged_rule_cb : tagged_route_cb, &q);
	return ret ? ret : (int)q.n;
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

	if (ifa->ifa_index != TPIN_LOOPBACK_IFINDEX || ifa->ifa_family != q->family)
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
	struct nlmsghdr *nlh = tpin_rtnl_msg_dump(rt->req, ++rt->seq, RTM_GETADDR, family);
	struct addr_query q = { family, addr, plen, TPIN_RTNL_ABSENT };
	int ret;

	ret = talk(rt, nlh, addr_cb, &q);
	return ret ? ret : q.state;
}

int tpin_rtnl_addr_add(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen)
{
	return talk(rt, tpin_rtnl_msg_addr(rt->req, ++rt->seq, true, family, addr, plen), NULL,
		    NULL);
}

int tpin_rtnl_addr_del(struct tpin_rtnl *rt, int family, const void *addr, uint8_t plen)
{
	return talk(rt, tpin_rtnl_msg_addr(rt->req, ++rt->seq, false, family, addr, plen), NULL,
		    NULL);
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);

	*(bool *)data = ifi->ifi_flags & IFF_UP;
	return MNL_CB_OK;
}

int tpin_rtnl_lo_is_up(struct tpin_rtnl *rt, bool *up)
{
	*up = false;
	return talk(rt, tpin_rtnl_msg_lo_get(rt->req, ++rt->seq), link_cb, up);
}

int tpin_rtnl_lo_set(struct tpin_rtnl *rt, bool up)
{
	return talk(rt, tpin_rtnl_msg_lo_set(rt->req, ++rt->seq, up), NULL, NULL);
}
