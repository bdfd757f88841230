// SPDX-License-Identifier: MIT
/*
 * Read-only netlink questions: is the tpin table there, are the rule and the
 * local route of the routing table there. One request each, no state kept.
 */

#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/table.h>
#include <linux/fib_rules.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "tpin/probe.h"

struct match {
	uint32_t mark;
	uint32_t table;
	bool found;
};

typedef int (*msg_cb)(const struct nlmsghdr *nlh, void *data);

/* Send @nlh on a fresh socket of @bus and run @cb on every answer. */
static int ask(int bus, struct nlmsghdr *nlh, msg_cb cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl;
	unsigned int portid;
	uint32_t seq = nlh->nlmsg_seq;
	ssize_t n;
	int ret;

	nl = mnl_socket_open(bus);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	do {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
	} while (ret > 0);
	ret = ret < 0 ? -errno : 0;
out:
	mnl_socket_close(nl);
	return ret;
}

int tpin_probe_table(const char *name)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;
	int ret;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	/* A GETTABLE for one name answers with the table or with ENOENT. */
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK,
				    (uint32_t)time(NULL));
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	ret = ask(NETLINK_NETFILTER, nlh, NULL, NULL);
	return ret;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);
	struct match *m = data;
	uint32_t mark = 0, table = frh->table;
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(*frh))
	{
		if (mnl_attr_get_type(attr) == FRA_FWMARK)
			mark = mnl_attr_get_u32(attr);
		else if (mnl_attr_get_type(attr) == FRA_TABLE)
			table = mnl_attr_get_u32(attr);
	}
	if (mark == m->mark && table == m->table)
		m->found = true;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	struct match *m = data;
	uint32_t table = rtm->rtm_table;
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(*rtm))
	{
		if (mnl_attr_get_type(attr) == RTA_TABLE)
			table = mnl_attr_get_u32(attr);
	}
	if (rtm->rtm_type == RTN_LOCAL && rtm->rtm_dst_len == 0 && table == m->table)
		m->found = true;
	return MNL_CB_OK;
}

static int dump(uint16_t type, int family, size_t hdrlen, msg_cb cb, struct match *m)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtgenmsg *g;
	int ret;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	/* fib_rule_hdr and rtmsg both start with the family byte. */
	g = mnl_nlmsg_put_extra_header(nlh, hdrlen);
	g->rtgen_family = (unsigned char)family;
	ret = ask(NETLINK_ROUTE, nlh, cb, m);
	if (ret)
		return ret;
	return m->found ? 0 : -ENOENT;
}

int tpin_probe_rule(int family, uint32_t mark, uint32_t table)
{
	struct match m = { .mark = mark, .table = table };

	return dump(RTM_GETRULE, family, sizeof(struct fib_rule_hdr), rule_cb, &m);
}

int tpin_probe_local_route(int family, uint32_t table)
{
	struct match m = { .table = table };

	return dump(RTM_GETROUTE, family, sizeof(struct rtmsg), route_cb, &m);
}
