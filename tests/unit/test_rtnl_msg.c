// SPDX-License-Identifier: MIT
/*
 * Each rtnetlink request tpin builds, parsed with libmnl beside the one
 * ip(8) sends for the same command, compared header field by header field
 * and attribute by attribute. The reference bytes were captured from ip
 * itself, unprivileged, by tests/unit/capture-ip-requests (strace shows
 * what ip sends before the kernel refuses it); they are checked in as
 * rtnl_ip_requests.h rather than captured here, because strace may not be
 * allowed to trace where the tests run.
 *
 * Where tpin's request differs from ip's, the difference is listed with the
 * reason the kernel treats both alike; any other difference fails.
 */

#include <arpa/inet.h>
#include <check.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

#include "tpin/net.h"
#include "tpin/rtnl_msg.h"

#include "rtnl_ip_requests.h"

#define LINES_MAX 32
#define LINE_LEN  96

struct lines {
	size_t n;
	char v[LINES_MAX][LINE_LEN];
};

static void add(struct lines *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct lines *l, const char *fmt, ...)
{
	va_list ap;

	ck_assert_uint_lt(l->n, LINES_MAX);
	va_start(ap, fmt);
	vsnprintf(l->v[l->n++], LINE_LEN, fmt, ap);
	va_end(ap);
}

/* One field of a family header: name, offset, size (1, 2 or 4 bytes). */
struct field {
	const char *name;
	size_t off, size;
};

#define F(type, member)                                                      \
	{                                                                    \
#member, offsetof(type, member), sizeof(((type *)0)->member) \
	}

static const struct field rule_fields[] = {
	F(struct fib_rule_hdr, family),	 F(struct fib_rule_hdr, dst_len),
	F(struct fib_rule_hdr, src_len), F(struct fib_rule_hdr, tos),
	F(struct fib_rule_hdr, table),	 F(struct fib_rule_hdr, action),
	F(struct fib_rule_hdr, flags),	 { NULL, 0, 0 },
};
static const struct field route_fields[] = {
	F(struct rtmsg, rtm_family),  F(struct rtmsg, rtm_dst_len),
	F(struct rtmsg, rtm_src_len), F(struct rtmsg, rtm_tos),
	F(struct rtmsg, rtm_table),   F(struct rtmsg, rtm_protocol),
	F(struct rtmsg, rtm_scope),   F(struct rtmsg, rtm_type),
	F(struct rtmsg, rtm_flags),   { NULL, 0, 0 },
};
static const struct field addr_fields[] = {
	F(struct ifaddrmsg, ifa_family), F(struct ifaddrmsg, ifa_prefixlen),
	F(struct ifaddrmsg, ifa_flags),	 F(struct ifaddrmsg, ifa_scope),
	F(struct ifaddrmsg, ifa_index),	 { NULL, 0, 0 },
};
static const struct field link_fields[] = {
	F(struct ifinfomsg, ifi_family), F(struct ifinfomsg, ifi_type),
	F(struct ifinfomsg, ifi_index),	 F(struct ifinfomsg, ifi_flags),
	F(struct ifinfomsg, ifi_change), { NULL, 0, 0 },
};

/* The attribute names of each kind of message, for readable differences. */
static const char *attr_name(uint16_t msg_type, uint16_t type)
{
	static const char *const rule[] = { [FRA_FWMARK] = "FRA_FWMARK",
					    [FRA_TABLE] = "FRA_TABLE",
					    [FRA_PROTOCOL] = "FRA_PROTOCOL" };
	static const char *const route[] = {
		[RTA_DST] = "RTA_DST", [RTA_OIF] = "RTA_OIF", [RTA_TABLE] = "RTA_TABLE"
	};
	static const char *const addr[] = {
		[IFA_ADDRESS] = "IFA_ADDRESS", [IFA_LOCAL] = "IFA_LOCAL", [IFA_PROTO] = "IFA_PROTO"
	};
	static const char *const link[] = {
		[IFLA_IFNAME] = "IFLA_IFNAME", [IFLA_EXT_MASK] = "IFLA_EXT_MASK"
	};
	const char *const *names = msg_type >= RTM_NEWRULE    ? rule
				   : msg_type >= RTM_NEWROUTE ? route
				   : msg_type >= RTM_NEWADDR  ? addr
							      : link;
	size_t n = msg_type >= RTM_NEWRULE    ? sizeof(rule) / sizeof(*rule)
		   : msg_type >= RTM_NEWROUTE ? sizeof(route) / sizeof(*route)
		   : msg_type >= RTM_NEWADDR  ? sizeof(addr) / sizeof(*addr)
					      : sizeof(link) / sizeof(*link);

	return type < n && names[type] ? names[type] : "?";
}

/*
 * The message as lines: type, flags, each header field, each attribute
 * with its payload in hex. Sequence number and port id are left out: they
 * differ from run to run.
 */
static void describe(const struct nlmsghdr *nlh, size_t len, struct lines *l)
{
	const struct field *f;
	const struct nlattr *attr;
	size_t hdrlen;

	memset(l, 0, sizeof(*l));
	ck_assert_msg(mnl_nlmsg_ok(nlh, (int)len) && nlh->nlmsg_len == len,
		      "not one whole netlink message");
	add(l, "type %u", nlh->nlmsg_type);
	add(l, "flags 0x%x", nlh->nlmsg_flags);
	switch (nlh->nlmsg_type) {
	case RTM_NEWRULE:
	case RTM_DELRULE:
	case RTM_GETRULE:
		f = rule_fields;
		hdrlen = sizeof(struct fib_rule_hdr);
		break;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
	case RTM_GETROUTE:
		f = route_fields;
		hdrlen = sizeof(struct rtmsg);
		break;
	case RTM_NEWADDR:
	case RTM_DELADDR:
	case RTM_GETADDR:
		f = addr_fields;
		hdrlen = sizeof(struct ifaddrmsg);
		break;
	default:
		f = link_fields;
		hdrlen = sizeof(struct ifinfomsg);
	}
	ck_assert_uint_ge(mnl_nlmsg_get_payload_len(nlh), hdrlen);
	for (; f->name; f++) {
		const unsigned char *p = (const unsigned char *)mnl_nlmsg_get_payload(nlh) + f->off;
		unsigned long v = 0;

		memcpy(&v, p, f->size); /* little-endian host, as the captures */
		add(l, "%s %lu", f->name, v);
	}
	mnl_attr_for_each(attr, nlh, hdrlen) {
		const unsigned char *p = mnl_attr_get_payload(attr);
		char hex[64] = "";

		ck_assert_int_ge(mnl_attr_type_valid(attr, 255), 0);
		for (size_t i = 0; i < mnl_attr_get_payload_len(attr) && i < 31; i++)
			sprintf(hex + 2 * i, "%02x", p[i]);
		add(l, "%s %s", attr_name(nlh->nlmsg_type, mnl_attr_get_type(attr)), hex);
	}
	/* The attributes fill the message exactly: nothing trails them. */
	ck_assert_ptr_eq((const char *)attr, (const char *)nlh + NLMSG_ALIGN(nlh->nlmsg_len));
}

static bool in(const struct lines *l, const char *line)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], line))
			return true;
	return false;
}

/* "+line" only in tpin's message, "-line" only in ip's, joined by "; ". */
static void differences(const struct lines *tpin, const struct lines *ip, char *out, size_t len)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < tpin->n; i++)
		if (!in(ip, tpin->v[i]))
			off += (size_t)snprintf(out + off, len - off, "%s+%s", off ? "; " : "",
						tpin->v[i]);
	for (size_t i = 0; i < ip->n; i++)
		if (!in(tpin, ip->v[i]))
			off += (size_t)snprintf(out + off, len - off, "%s-%s", off ? "; " : "",
						ip->v[i]);
}

/*
 * The differences tpin keeps on purpose, each with the kernel's reason for
 * treating both requests alike:
 * - FRA_TABLE / RTA_TABLE: ip names a table below 256 in the header only;
 *   tpin names it in both, and the kernel takes the attribute when present
 *   (fib_nl2rule(), rtm_to_fib_config()), with the same value.
 * - rule delete "action": ip leaves it 0, "any action"; tpin asks for
 *   FR_ACT_TO_TBL, which its own rules have (rule_find() compares it only
 *   when non-zero).
 * - RTA_DST of length 0: ip sends the zero address of a /0 prefix; a /0
 *   route has no destination bits, so the kernel reads both as "default".
 * - IPv6 route scope: ip sends RT_SCOPE_UNIVERSE, tpin RT_SCOPE_HOST; IPv6
 *   routes have no scope (rtm_to_fib6_config() ignores it).
 * - IFA_PROTO: ip 6.1 has no `proto` for addresses; tpin tags ::6 with 116
 *   so that cleanup knows it is its own.
 * - IFA_F_NODAD on delete: inet6_rtm_deladdr() ignores the flags.
 * - reading lo: ip asks for the link by name (IFLA_IFNAME "lo", AF_PACKET,
 *   and an IFLA_EXT_MASK for VF statistics); tpin asks for index 1, which
 *   lo is in every namespace, and for an ACK after the answer, so that its
 *   one exchange loop ends every request the same way. The kernel answers
 *   both with lo's RTM_NEWLINK.
 * The dumps and the link changes are byte for byte ip's.
 */
struct rt_case {
	const char *name; /* as in rtnl_ip_requests.h */
	int kind;
	bool add;
	int family;
	uint32_t table;	   /* or, for a dump, its message type */
	const char *known; /* the differences above that apply, exactly */
};

enum { RULE, ROUTE, ADDR, LO_SET, LO_GET, DUMP };

static const struct rt_case rt_cases[] = {
	{ "rule4_add", RULE, true, AF_INET, 133, "+FRA_TABLE 85000000" },
	{ "rule6_add", RULE, true, AF_INET6, 133, "+FRA_TABLE 85000000" },
	/* A table of 256 and above goes in the attribute alone, as ip does. */
	{ "rule4_add_table300", RULE, true, AF_INET, 300, "" },
	{ "rule4_del", RULE, false, AF_INET, 133, "+action 1; +FRA_TABLE 85000000; -action 0" },
	{ "route4_add", ROUTE, true, AF_INET, 133, "+RTA_TABLE 85000000; -RTA_DST 00000000" },
	{ "route6_add", ROUTE, true, AF_INET6, 133,
	  "+rtm_scope 254; +RTA_TABLE 85000000; -rtm_scope 0; -RTA_DST "
	  "00000000000000000000000000000000" },
	{ "route4_del", ROUTE, false, AF_INET, 133, "+RTA_TABLE 85000000; -RTA_DST 00000000" },
	{ "addr6_add", ADDR, true, AF_INET6, 0, "+IFA_PROTO 74" },
	{ "addr6_del", ADDR, false, AF_INET6, 0, "+ifa_flags 2; -ifa_flags 0" },
	{ "lo_up", LO_SET, true, 0, 0, "" },
	{ "lo_down", LO_SET, false, 0, 0, "" },
	{ "lo_get", LO_GET, false, 0, 0,
	  "+flags 0x5; +ifi_family 0; +ifi_index 1; -flags 0x1; -ifi_family 17; -ifi_index 0; "
	  "-IFLA_IFNAME 6c6f00; -IFLA_EXT_MASK 01000000" },
	{ "dump_rule4", DUMP, false, AF_INET, RTM_GETRULE, "" },
	{ "dump_route6", DUMP, false, AF_INET6, RTM_GETROUTE, "" },
	{ "dump_addr6", DUMP, false, AF_INET6, RTM_GETADDR, "" },
};

static const struct ip_request *ip_request(const char *name)
{
	for (size_t i = 0; i < sizeof(ip_requests) / sizeof(ip_requests[0]); i++)
		if (!strcmp(ip_requests[i].name, name))
			return &ip_requests[i];
	ck_abort_msg("no capture named %s", name);
	return NULL;
}

START_TEST(test_same_as_ip)
{
	static const struct in6_addr passthrough6 = TPIN_PASSTHROUGH6_INIT;
	const struct rt_case *c = &rt_cases[_i];
	const struct ip_request *ip = ip_request(c->name);
	char buf[TPIN_RTNL_MSG_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));
	char ipbuf[TPIN_RTNL_MSG_MAX] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct lines mine, theirs;
	struct nlmsghdr *nlh = NULL;
	char diff[1024];

	switch (c->kind) {
	case RULE:
		nlh = tpin_rtnl_msg_rule(buf, 7, c->add, c->family, 0x539, c->table);
		break;
	case ROUTE:
		nlh = tpin_rtnl_msg_route(buf, 7, c->add, c->family, c->table);
		break;
	case ADDR:
		nlh = tpin_rtnl_msg_addr(buf, 7, c->add, c->family, &passthrough6, 128);
		break;
	case LO_SET:
		nlh = tpin_rtnl_msg_lo_set(buf, 7, c->add);
		break;
	case LO_GET:
		nlh = tpin_rtnl_msg_lo_get(buf, 7);
		break;
	case DUMP:
		nlh = tpin_rtnl_msg_dump(buf, 7, (uint16_t)c->table, c->family);
		break;
	}
	ck_assert_ptr_eq(nlh, buf);
	ck_assert_uint_eq(nlh->nlmsg_seq, 7);
	ck_assert_uint_le(nlh->nlmsg_len, TPIN_RTNL_MSG_MAX);
	ck_assert_uint_le(ip->len, sizeof(ipbuf));
	memcpy(ipbuf, ip->bytes, ip->len);
	describe(nlh, nlh->nlmsg_len, &mine);
	describe((const struct nlmsghdr *)ipbuf, ip->len, &theirs);
	differences(&mine, &theirs, diff, sizeof(diff));
	ck_assert_msg(!strcmp(diff, c->known), "%s (`%s`):\n got  differences: %s\n want: %s",
		      c->name, ip->command, diff, c->known);
}
END_TEST

/* Every capture is used: a command added to the script needs a case here. */
START_TEST(test_every_capture_compared)
{
	for (size_t i = 0; i < sizeof(ip_requests) / sizeof(ip_requests[0]); i++) {
		bool found = false;

		for (size_t j = 0; j < sizeof(rt_cases) / sizeof(rt_cases[0]); j++)
			found |= !strcmp(rt_cases[j].name, ip_requests[i].name);
		ck_assert_msg(found, "capture %s is compared with nothing", ip_requests[i].name);
	}
}
END_TEST

static Suite *rtnl_suite(void)
{
	Suite *s = suite_create("rtnl_msg");
	TCase *tc = tcase_create("ip");

	tcase_add_loop_test(tc, test_same_as_ip, 0, sizeof(rt_cases) / sizeof(rt_cases[0]));
	tcase_add_test(tc, test_every_capture_compared);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rtnl_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
