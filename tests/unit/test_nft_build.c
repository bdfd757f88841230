// SPDX-License-Identifier: MIT
/*
 * The batch builder's output, parsed back with libnftnl and compared rule by
 * rule with what nft itself sends for the same ruleset (the expected lines
 * are nft --debug=netlink's output for the equivalent nft commands).
 */

#include <check.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <string.h>

#include "tpin/config.h"
#include "tpin/nft_batch.h"
#include "tpin/nft_read.h"

/* nft --debug=netlink, rule by rule, for tpin's default TPROXY ruleset. */
#define R_DIVERT                                                                              \
	"rule prerouting: [meta load l4proto => reg 1 ] [cmp eq reg 1 0x00000006 ] "          \
	"[payload load 1b @ transport header + 13 => reg 1 ] "                                \
	"[bitwise reg 1 = ( reg 1 & 0x00000012 ) ^ 0x00000000 ] [cmp neq reg 1 0x00000002 ] " \
	"[socket load transparent => reg 1 ] [cmp eq reg 1 0x00000001 ] "                     \
	"[immediate reg 1 0x00000539 ] [meta set mark with reg 1 ] [immediate reg 0 accept ] "
#define R_OWN                                                                                     \
	"rule prerouting: [meta load l4proto => reg 1 ] [cmp eq reg 1 0x00000006 ] "              \
	"[payload load 1b @ transport header + 13 => reg 1 ] "                                    \
	"[bitwise reg 1 = ( reg 1 & 0x00000012 ) ^ 0x00000000 ] [cmp neq reg 1 0x00000002 ] "     \
	"[socket load transparent => reg 1 ] [cmp eq reg 1 0x00000000 ] [immediate reg 0 return " \
	"] "
#define R_LO                                                                     \
	"rule prerouting: [meta load iif => reg 1 ] [cmp eq reg 1 0x00000001 ] " \
	"[immediate reg 0 return ] "
#define R_EXCL                                                                       \
	"rule prerouting: [meta load l4proto => reg 1 ] [cmp eq reg 1 0x00000006 ] " \
	"[payload load 2b @ transport header + 2 => reg 1 ] "                        \
	"[lookup reg 1 set exclude_ports 0x0 ] [immediate reg 0 return ] "
#define TCP "[meta load l4proto => reg 1 ] [cmp eq reg 1 0x00000006 ] "
/* With IPv6 left out, IPv6 packets are left alone rather than dropped. */
#define IPV4 "[meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
#define INBOUND                                                                                   \
	TCP "[payload load 2b @ transport header + 2 => reg 1 ] [lookup reg 1 set inbound_ports " \
	    "0x0 ] "
#define TPROXY(fam)                                                   \
	"[immediate reg 1 0x00009e3a ] [tproxy " fam " port reg 1 ] " \
	"[immediate reg 1 0x00000539 ] [meta set mark with reg 1 ] [immediate reg 0 accept ] "
#define S_EXCL                                                                                    \
	"set exclude_ports key type 13 len 2 flags 0x4",                                          \
		"set exclude_ports elements: 0000/end 3a98 3a99/end 3a9e 3a9f/end 3aac 3aae/end " \
		"3af2 3af3/end"
#define TABLE "add table inet tpin", "delete table inet tpin", "add table inet tpin"

static const char *const want_default[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_DIVERT,
	R_OWN,
	R_LO,
	R_EXCL,
	"rule prerouting: " TCP TPROXY("ip"),
	"rule prerouting: " TCP TPROXY("ip6"),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	NULL,
};

static const char *const want_ports_sources_preserve[] = {
	TABLE,
	S_EXCL,
	"set inbound_ports key type 13 len 2 flags 0x4",
	"set inbound_ports elements: 0000/end 0064 00c9/end 2378 2379/end",
	"set exclude_sources4 key type 7 len 4 flags 0x4",
	"set exclude_sources4 elements: 00000000/end cb007100 cb007200/end",
	"set exclude_sources6 key type 8 len 16 flags 0x4",
	"set exclude_sources6 elements: 00000000000000000000000000000000/end "
	"20010db8000000000000000000000000 20010db9000000000000000000000000/end",
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_DIVERT,
	R_OWN,
	R_LO,
	R_EXCL,
	"rule prerouting: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 12 => reg 1 ] "
	"[lookup reg 1 set exclude_sources4 0x0 ] [immediate reg 0 return ] ",
	"rule prerouting: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x0000000a ] "
	"[payload load 16b @ network header + 8 => reg 1 ] "
	"[lookup reg 1 set exclude_sources6 0x0 ] [immediate reg 0 return ] ",
	"rule prerouting: " INBOUND TPROXY("ip"),
	"rule prerouting: " INBOUND TPROXY("ip6"),
	"rule prerouting: " INBOUND "[immediate reg 0 drop ] ",
	"chain output type route hook output priority -150 policy accept",
	"rule output: [meta load mark => reg 1 ] [cmp eq reg 1 0x00000000 ] " TCP
	"[payload load 2b @ transport header + 0 => reg 1 ] [lookup reg 1 set inbound_ports 0x0 ] "
	"[fib daddr type => reg 1 ] [cmp neq reg 1 0x00000002 ] "
	"[immediate reg 1 0x00000539 ] [meta set mark with reg 1 ] ",
	NULL,
};

static const char *const want_ipv4_only[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_DIVERT,
	R_OWN,
	R_LO,
	R_EXCL,
	"rule prerouting: " IPV4 TCP TPROXY("ip"),
	"rule prerouting: " IPV4 TCP "[immediate reg 0 drop ] ",
	NULL,
};

#define REDIR "[immediate reg 1 0x00009e3a ] [redir proto_min reg 1 proto_max reg 1 flags 0x2 ] "

static const char *const want_redirect[] = {
	TABLE, S_EXCL, "chain prerouting type nat hook prerouting priority -100 policy accept",
	R_LO,  R_EXCL, "rule prerouting: " TCP REDIR,
	NULL,
};

static const char *const want_redirect_ports[] = {
	TABLE,
	S_EXCL,
	"set inbound_ports key type 13 len 2 flags 0x4",
	"set inbound_ports elements: 0000/end 2378 2379/end",
	"chain prerouting type nat hook prerouting priority -100 policy accept",
	R_LO,
	R_EXCL,
	"rule prerouting: " INBOUND REDIR,
	NULL,
};

struct build_case {
	const char *name;
	enum tpin_mode mode;
	const char *inbound, *sources;
	bool preserve, ipv6;
	const char *const *want;
};

static const struct build_case cases[] = {
	{ "default", TPIN_MODE_TPROXY, "*", "", false, true, want_default },
	{ "ports+sources+preserve", TPIN_MODE_TPROXY, "9080,100-200",
	  "203.0.113.0/24,2001:db8::/32", true, true, want_ports_sources_preserve },
	{ "ipv4 only", TPIN_MODE_TPROXY, "*", "2001:db8::/32", false, false, want_ipv4_only },
	{ "redirect", TPIN_MODE_REDIRECT, "*", "", false, true, want_redirect },
	{ "redirect ports", TPIN_MODE_REDIRECT, "9080", "", false, true, want_redirect_ports },
};

static struct tpin_nft_batch *build(const struct build_case *c)
{
	struct tpin_nft_batch *b;
	struct tpin_config cfg;
	struct tpin_err err;

	tpin_config_init(&cfg);
	cfg.mode = c->mode;
	cfg.preserve_source = c->preserve;
	cfg.ipv6 = c->ipv6;
	ck_assert_int_eq(tpin_ports_parse(&cfg.inbound, c->inbound, &err), 0);
	ck_assert_int_eq(tpin_cidrs_parse(&cfg.exclude_sources, c->sources, &err), 0);
	ck_assert_int_eq(tpin_config_finish(&cfg, &err), 0);
	b = tpin_nft_batch_new(100);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(tpin_nft_build_install(b, &cfg), 0);
	ck_assert_int_eq(tpin_nft_batch_close(b), 0);
	return b;
}

START_TEST(test_rule_by_rule)
{
	const struct build_case *c = &cases[_i];
	struct tpin_nft_batch *b = build(c);
	char text[8192];
	size_t i, n = tpin_nft_batch_count(b);

	for (i = 0; i < n && c->want[i]; i++) {
		int len = tpin_nft_render(tpin_nft_batch_msg(b, i), text, sizeof(text));

		ck_assert_int_ge(len, 0);
		/* Tables render to nothing; their nft command stands in. */
		ck_assert_msg(!strcmp(len ? text : tpin_nft_batch_command(b, i), c->want[i]),
			      "%s: message %zu:\n got  %s\n want %s", c->name, i,
			      len ? text : tpin_nft_batch_command(b, i), c->want[i]);
	}
	ck_assert_msg(i == n && !c->want[i], "%s: %zu messages, want a different count", c->name,
		      n);
	tpin_nft_batch_free(b);
}
END_TEST

/* TPROXY mode's whole point: the kernel keeps no conntrack state for it. */
START_TEST(test_tproxy_has_no_conntrack)
{
	struct tpin_nft_batch *b = build(&cases[_i]);
	char text[8192];
	size_t i;

	for (i = 0; i < tpin_nft_batch_count(b); i++) {
		/* Tables render to nothing and leave the buffer as it was. */
		text[0] = '\0';
		ck_assert_int_ge(tpin_nft_render(tpin_nft_batch_msg(b, i), text, sizeof(text)), 0);
		ck_assert_msg(!strstr(text, "[ct "), "conntrack in %s", text);
		ck_assert_msg(!strstr(tpin_nft_batch_command(b, i), " ct "), "conntrack in %s",
			      tpin_nft_batch_command(b, i));
	}
	tpin_nft_batch_free(b);
}
END_TEST

START_TEST(test_batch_framing_and_commands)
{
	struct tpin_nft_batch *b = build(&cases[1]);
	const struct nlmsghdr *first, *last;
	const char *data;
	size_t len, i, n = tpin_nft_batch_count(b);

	data = tpin_nft_batch_data(b, &len);
	first = (const struct nlmsghdr *)data;
	ck_assert_int_eq(first->nlmsg_type, NFNL_MSG_BATCH_BEGIN);
	/* Walk to the last message: the batch end, right after the last command. */
	last = tpin_nft_batch_msg(b, n - 1);
	last = (const struct nlmsghdr *)((const char *)last + NLMSG_ALIGN(last->nlmsg_len));
	ck_assert_int_eq(last->nlmsg_type, NFNL_MSG_BATCH_END);
	ck_assert_ptr_eq((const char *)last + NLMSG_ALIGN(last->nlmsg_len), data + len);
	/* Every command asks for an ACK and has its own sequence number and text. */
	for (i = 0; i < n; i++) {
		const struct nlmsghdr *nlh = tpin_nft_batch_msg(b, i);

		ck_assert(nlh->nlmsg_flags & NLM_F_ACK);
		ck_assert_uint_eq(nlh->nlmsg_seq, tpin_nft_batch_seq(b, i));
		ck_assert_str_eq(tpin_nft_batch_describe(b, nlh->nlmsg_seq),
				 tpin_nft_batch_command(b, i));
	}
	ck_assert_ptr_null(tpin_nft_batch_describe(b, first->nlmsg_seq));
	ck_assert_str_eq(
		tpin_nft_batch_command(b, 4),
		"add element inet tpin exclude_ports { 15000, 15006, 15020-15021, 15090 }");
	ck_assert_str_eq(tpin_nft_batch_command(b, n - 2),
			 "add chain inet tpin output { type route hook output priority mangle; "
			 "policy accept; }");
	ck_assert_str_eq(tpin_nft_batch_command(b, n - 1),
			 "add rule inet tpin output meta mark 0 meta l4proto tcp tcp sport "
			 "@inbound_ports fib daddr type != local meta mark set 0x539");
	tpin_nft_batch_free(b);
}
END_TEST

START_TEST(test_delete_and_probe)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new(7);
	struct tpin_config cfg;
	size_t n;

	ck_assert_int_eq(tpin_nft_build_delete(b, "tpin"), 0);
	ck_assert_int_eq(tpin_nft_batch_close(b), 0);
	ck_assert_uint_eq(tpin_nft_batch_count(b), 2);
	ck_assert_str_eq(tpin_nft_batch_command(b, 1), "delete table inet tpin");
	tpin_nft_batch_free(b);

	/* The probe's last command must fail in the kernel, so nothing commits. */
	tpin_config_init(&cfg);
	b = tpin_nft_batch_new(7);
	ck_assert_int_eq(tpin_nft_build_probe(b, &cfg), 0);
	n = tpin_nft_batch_count(b);
	ck_assert_str_eq(tpin_nft_batch_command(b, n - 1), "delete table inet tpin_probe_absent");
	tpin_nft_batch_free(b);
}
END_TEST

static Suite *build_suite(void)
{
	Suite *s = suite_create("nft_build");
	TCase *tc = tcase_create("batch");

	tcase_add_loop_test(tc, test_rule_by_rule, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_loop_test(tc, test_tproxy_has_no_conntrack, 0, 3);
	tcase_add_test(tc, test_batch_framing_and_commands);
	tcase_add_test(tc, test_delete_and_probe);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(build_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
