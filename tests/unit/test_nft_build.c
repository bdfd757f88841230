// SPDX-License-Identifier: MIT
/*
 * The batch builder's output, parsed back with libnftnl and compared rule by
 * rule with what nft itself sends for the same ruleset (the expected lines
 * are nft --debug=netlink's output for the equivalent nft commands).
 *
 * About 900 lines, most of them the expected netlink lines: the cases are
 * short, the rulesets they compare against are long.
 */

#include <check.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpin/args.h"
#include "tpin/config.h"
#include "tpin/nft_batch.h"
#include "tpin/nft_read.h"
#include "tpin/nft_verify.h"

/* nft --debug=netlink, rule by rule, for tpin's default TPROXY ruleset. */
#define TCP "[meta load l4proto => reg 1 ] [cmp eq reg 1 0x00000006 ] "
#define FLAGS                                                                             \
	"[payload load 1b @ transport header + 13 => reg 1 ] [bitwise reg 1 = ( reg 1 & " \
	"0x00000012 ) ^ 0x00000000 ] "
#define SYN	FLAGS "[cmp eq reg 1 0x00000002 ] "
#define NOT_SYN FLAGS "[cmp neq reg 1 0x00000002 ] "
/* iif != lo fib saddr type local fib daddr type local drop */
#define SPOOF                                                                               \
	"[meta load iif => reg 1 ] [cmp neq reg 1 0x00000001 ] [fib saddr type => reg 1 ] " \
	"[cmp eq reg 1 0x00000002 ] [fib daddr type => reg 1 ] [cmp eq reg 1 0x00000002 ] " \
	"[immediate reg 0 drop ] "
#define R_SPOOF "rule prerouting: " SPOOF
#define R_DIVERT                                                                             \
	"rule prerouting: " TCP NOT_SYN "[socket load transparent => reg 1 ] [cmp eq reg 1 " \
	"0x00000001 ] "                                                                      \
	"[immediate reg 1 0x00000539 ] [meta set mark with reg 1 ] [immediate reg 0 accept ] "
#define R_LO                                                                     \
	"rule prerouting: [meta load iif => reg 1 ] [cmp eq reg 1 0x00000001 ] " \
	"[immediate reg 0 return ] "
#define R_EXCL                                                                        \
	"rule prerouting: " TCP "[payload load 2b @ transport header + 2 => reg 1 ] " \
	"[lookup reg 1 set exclude_ports 0x0 ] [immediate reg 0 return ] "
/* fib daddr type != local return */
#define R_NOT_LOCAL                                                                \
	"rule prerouting: [fib daddr type => reg 1 ] [cmp neq reg 1 0x00000002 ] " \
	"[immediate reg 0 return ] "
/* With IPv6 left out, IPv6 packets are left alone rather than dropped. */
#define IPV4 "[meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
#define INBOUND                                                                                   \
	TCP "[payload load 2b @ transport header + 2 => reg 1 ] [lookup reg 1 set inbound_ports " \
	    "0x0 ] "
#define MARK "[immediate reg 1 0x00000539 ] [meta set mark with reg 1 ] "
/* SYN socket transparent <= 1 meta mark set; SYN meta mark != reject with tcp reset */
#define R_SYN_FOUND(m)            \
	"rule prerouting: " m SYN \
	"[socket load transparent => reg 1 ] [cmp lte reg 1 0x00000001 ] " MARK
#define R_SYN_RESET(m)                                                                      \
	"rule prerouting: " m SYN "[meta load mark => reg 1 ] [cmp neq reg 1 0x00000539 ] " \
	"[reject type 1 code 0 ] "
#define TPROXY(fam)                                                   \
	"[immediate reg 1 0x00009e3a ] [tproxy " fam " port reg 1 ] " \
	"[immediate reg 1 0x00000539 ] [meta set mark with reg 1 ] [immediate reg 0 accept ] "
/* non-SYN socket wildcard 1 drop; non-SYN socket transparent 0 return */
#define R_WILDCARD(m)                                                  \
	"rule prerouting: " m NOT_SYN                                  \
	"[socket load wildcard => reg 1 ] [cmp eq reg 1 0x00000001 ] " \
	"[immediate reg 0 drop ] "
#define R_OWN(m)                                                                           \
	"rule prerouting: " m NOT_SYN "[socket load transparent => reg 1 ] [cmp eq reg 1 " \
	"0x00000000 ] [immediate reg 0 return ] "
#define S_EXCL                                                                                    \
	"set exclude_ports key type 13 len 2 flags 0x4",                                          \
		"set exclude_ports elements: 0000/end 3a98 3a99/end 3a9e 3a9f/end 3aac 3aae/end " \
		"3af2 3af3/end"
/* The new table's comment is the digest of the rest, worked out in the test. */
#define DIGEST_TABLE "@digest"
#define TABLE	     "add table inet tpin", "delete table inet tpin", DIGEST_TABLE

static const char *const want_default[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_SPOOF,
	R_DIVERT,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(TCP),
	R_SYN_RESET(TCP),
	"rule prerouting: " TCP TPROXY("ip"),
	"rule prerouting: " TCP TPROXY("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	NULL,
};

/* --upstream localhost: no listener lookup for SYNs (the app is on loopback). */
static const char *const want_localhost[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_SPOOF,
	R_DIVERT,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	"rule prerouting: " TCP TPROXY("ip"),
	"rule prerouting: " TCP TPROXY("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
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
	R_SPOOF,
	R_DIVERT,
	R_LO,
	R_EXCL,
	"rule prerouting: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 12 => reg 1 ] "
	"[lookup reg 1 set exclude_sources4 0x0 ] [immediate reg 0 return ] ",
	"rule prerouting: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x0000000a ] "
	"[payload load 16b @ network header + 8 => reg 1 ] "
	"[lookup reg 1 set exclude_sources6 0x0 ] [immediate reg 0 return ] ",
	R_NOT_LOCAL,
	R_SYN_FOUND(INBOUND),
	R_SYN_RESET(INBOUND),
	"rule prerouting: " INBOUND TPROXY("ip"),
	"rule prerouting: " INBOUND TPROXY("ip6"),
	R_WILDCARD(INBOUND),
	R_OWN(INBOUND),
	"rule prerouting: " INBOUND "[immediate reg 0 drop ] ",
	"chain output type route hook output priority -150 policy accept",
	/* Replies from excluded ports and to excluded clients leave as they are. */
	"rule output: " TCP "[payload load 2b @ transport header + 0 => reg 1 ] "
	"[lookup reg 1 set exclude_ports 0x0 ] [immediate reg 0 return ] ",
	"rule output: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 16 => reg 1 ] "
	"[lookup reg 1 set exclude_sources4 0x0 ] [immediate reg 0 return ] ",
	"rule output: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x0000000a ] "
	"[payload load 16b @ network header + 24 => reg 1 ] "
	"[lookup reg 1 set exclude_sources6 0x0 ] [immediate reg 0 return ] ",
	"rule output: [meta load mark => reg 1 ] [cmp eq reg 1 0x00000000 ] " TCP
	"[payload load 2b @ transport header + 0 => reg 1 ] [lookup reg 1 set inbound_ports 0x0 ] "
	"[fib daddr type => reg 1 ] [cmp neq reg 1 0x00000002 ] "
	"[socket load transparent => reg 1 ] [cmp eq reg 1 0x00000000 ] " MARK,
	NULL,
};

static const char *const want_ipv4_only[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	"rule prerouting: " IPV4 SPOOF,
	R_DIVERT,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(IPV4 TCP),
	R_SYN_RESET(IPV4 TCP),
	"rule prerouting: " IPV4 TCP TPROXY("ip"),
	R_WILDCARD(IPV4 TCP),
	R_OWN(IPV4 TCP),
	"rule prerouting: " IPV4 TCP "[immediate reg 0 drop ] ",
	NULL,
};

#define REDIR "[immediate reg 1 0x00009e3a ] [redir proto_min reg 1 proto_max reg 1 flags 0x2 ] "
/* A nat chain sees a flow's first packet only: the anti-spoofing has its own chain. */
#define ANTISPOOF                                                                  \
	"chain antispoof type filter hook prerouting priority -300 policy accept", \
		"rule antispoof: " SPOOF

static const char *const want_redirect[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type nat hook prerouting priority -100 policy accept",
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	"rule prerouting: " TCP REDIR,
	ANTISPOOF,
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
	R_NOT_LOCAL,
	"rule prerouting: " INBOUND REDIR,
	ANTISPOOF,
	NULL,
};

/* ---- outbound capture and --notrack (issue 10) ---- */

/* The proxy's port set with the outbound port among them. */
#define S_EXCL_OUT                                                                                \
	"set exclude_ports key type 13 len 2 flags 0x4",                                          \
		"set exclude_ports elements: 0000/end 3a98 3a9a/end 3a9e 3a9f/end 3aac 3aae/end " \
		"3af2 3af3/end"
#define NOTRACK "[notrack ] "
#define LO	"[meta load iif => reg 1 ] [cmp eq reg 1 0x00000001 ] "
#define MARKED	"[meta load mark => reg 1 ] [cmp eq reg 1 0x00000539 ] "
/* iif lo meta mark 0x539 meta l4proto tcp tproxy ip|ip6 to :15001 accept */
#define R_OUT_TPROXY(fam)                                                              \
	"rule prerouting: " LO MARKED TCP "[immediate reg 1 0x0000993a ] [tproxy " fam \
	" port reg 1 ] [immediate reg 0 accept ] "
/* iif lo meta mark 0x539 meta l4proto tcp reject with tcp reset */
#define R_OUT_RESET "rule prerouting: " LO MARKED TCP "[reject type 1 code 0 ] "
/* The same with --notrack. */
#define R_OUT_TPROXY_NT(fam)                                                           \
	"rule prerouting: " LO MARKED TCP "[immediate reg 1 0x0000993a ] [tproxy " fam \
	" port reg 1 ] [notrack ] [immediate reg 0 accept ] "
#define R_OUT_RESET_NT "rule prerouting: " LO MARKED TCP "[notrack ] [reject type 1 code 0 ] "
#define RETURN	       "[immediate reg 0 return ] "
#define PT4(off)                                                                       \
	"[meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] [payload load 4b @ " \
	"network header + " off " => reg 1 ] [cmp eq reg 1 0x0600007f ] "
#define PT6(off)                                                                        \
	"[meta load nfproto => reg 1 ] [cmp eq reg 1 0x0000000a ] [payload load 16b @ " \
	"network header + " off " => reg 1 ] [cmp eq reg 1 0x00000000 0x00000000 "      \
	"0x00000000 0x06000000 ] "
/* The proxy's connections to the app from 127.0.0.6 and ::6, both ways. */
#define R_LO_PASSTHROUGH                                             \
	"rule prerouting: " LO TCP PT4("12") NOTRACK RETURN,         \
		"rule prerouting: " LO TCP PT4("16") NOTRACK RETURN, \
		"rule prerouting: " LO TCP PT6("8") NOTRACK RETURN,  \
		"rule prerouting: " LO TCP PT6("24") NOTRACK RETURN
#define R_LO_FOREIGN_SOURCE        \
	"rule prerouting: " LO TCP \
	"[fib saddr type => reg 1 ] [cmp neq reg 1 0x00000002 ] " NOTRACK RETURN
#define R_PROXY_UPSTREAM                                                              \
	"rule prerouting: " TCP NOT_SYN "[socket load mark => reg 1 ] [cmp eq reg 1 " \
	"0x0000053a ] " NOTRACK RETURN
#define R_DIVERT_NT                                                                          \
	"rule prerouting: " TCP NOT_SYN "[socket load transparent => reg 1 ] [cmp eq reg 1 " \
	"0x00000001 ] " MARK NOTRACK "[immediate reg 0 accept ] "
#define R_SYN_RESET_NT(m)                                                 \
	"rule prerouting: " m SYN                                         \
	"[meta load mark => reg 1 ] [cmp neq reg 1 0x00000539 ] " NOTRACK \
	"[reject type 1 code 0 ] "
#define TPROXY_NT(fam)                                                             \
	"[immediate reg 1 0x00009e3a ] [tproxy " fam " port reg 1 ] " MARK NOTRACK \
	"[immediate reg 0 accept ] "
#define RST                                                                                   \
	TCP "[payload load 1b @ transport header + 13 => reg 1 ] [bitwise reg 1 = ( reg 1 & " \
	    "0x00000004 ) ^ 0x00000000 ] [cmp eq reg 1 0x00000004 ] "
#define OWNER(key, hex) "[meta load " key " => reg 1 ] [cmp eq reg 1 " hex " ] " RETURN
#define R_NOT_TCP	"rule output: [meta load l4proto => reg 1 ] [cmp neq reg 1 0x00000006 ] " RETURN
#define PROXY_MARK	"[meta load mark => reg 1 ] [cmp eq reg 1 0x0000053a ] "
#define R_LOCAL_DEST	"rule output: [fib daddr type => reg 1 ] [cmp eq reg 1 0x00000002 ] " RETURN
#define R_EXCL_SPORT                                                              \
	"rule output: " TCP "[payload load 2b @ transport header + 0 => reg 1 ] " \
	"[lookup reg 1 set exclude_ports 0x0 ] " RETURN
#define GOTO_OUTBOUND                                                                  \
	"rule output: [socket load transparent => reg 1 ] [cmp eq reg 1 0x00000000 ] " \
	"[immediate reg 0 goto -> outbound ] "

static const char *const want_outbound[] = {
	TABLE,
	S_EXCL_OUT,
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_SPOOF,
	R_DIVERT,
	R_OUT_TPROXY("ip"),
	R_OUT_TPROXY("ip6"),
	R_OUT_RESET,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(TCP),
	R_SYN_RESET(TCP),
	"rule prerouting: " TCP TPROXY("ip"),
	"rule prerouting: " TCP TPROXY("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	"chain outbound (regular)",
	"rule outbound: " OWNER("skuid", "0x00000539"),
	"rule outbound: " OWNER("skgid", "0x00000539"),
	"rule outbound: " TCP MARK,
	"chain output type route hook output priority -150 policy accept",
	R_NOT_TCP,
	"rule output: " PROXY_MARK RETURN,
	R_LOCAL_DEST,
	R_EXCL_SPORT,
	GOTO_OUTBOUND,
	NULL,
};

/* Every filter: owners, ports, destinations of one family. */
static const char *const want_outbound_filters[] = {
	TABLE,
	S_EXCL_OUT,
	"set outbound_ports key type 13 len 2 flags 0x4",
	"set outbound_ports elements: 0000/end 0050 0051/end 01bb 01bc/end",
	"set outbound_exclude_ports key type 13 len 2 flags 0x4",
	"set outbound_exclude_ports elements: 0000/end 1f90 1f91/end",
	"set outbound_include4 key type 7 len 4 flags 0x4",
	"set outbound_include4 elements: 00000000/end cb007100 cb007200/end",
	"set outbound_exclude4 key type 7 len 4 flags 0x4",
	"set outbound_exclude4 elements: 00000000/end cb007109 cb00710a/end",
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_SPOOF,
	R_DIVERT,
	/* -i names IPv4 only: IPv6 is not captured, so it has no tproxy rule. */
	R_OUT_TPROXY("ip"),
	R_OUT_RESET,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(TCP),
	R_SYN_RESET(TCP),
	"rule prerouting: " TCP TPROXY("ip"),
	"rule prerouting: " TCP TPROXY("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	"chain outbound (regular)",
	"rule outbound: " OWNER("skuid", "0x000003e8"),
	"rule outbound: " OWNER("skuid", "0x000003e9"),
	"rule outbound: " OWNER("skgid", "0x00000005"),
	"rule outbound: " TCP "[payload load 2b @ transport header + 2 => reg 1 ] "
	"[lookup reg 1 set outbound_exclude_ports 0x0 ] " RETURN,
	"rule outbound: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 16 => reg 1 ] "
	"[lookup reg 1 set outbound_exclude4 0x0 ] " RETURN,
	"rule outbound: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 16 => reg 1 ] "
	"[lookup reg 1 set outbound_include4 0x0 ] " TCP
	"[payload load 2b @ transport header + 2 => reg 1 ] "
	"[lookup reg 1 set outbound_ports 0x0 ] " MARK,
	"chain output type route hook output priority -150 policy accept",
	R_NOT_TCP,
	"rule output: " PROXY_MARK RETURN,
	R_LOCAL_DEST,
	R_EXCL_SPORT,
	GOTO_OUTBOUND,
	NULL,
};

/* Every filter, and --notrack on every leg: the chains move to raw priority. */
static const char *const want_outbound_filters_notrack[] = {
	TABLE,
	S_EXCL_OUT,
	"set outbound_ports key type 13 len 2 flags 0x4",
	"set outbound_ports elements: 0000/end 0050 0051/end 01bb 01bc/end",
	"set outbound_exclude_ports key type 13 len 2 flags 0x4",
	"set outbound_exclude_ports elements: 0000/end 1f90 1f91/end",
	"set outbound_include4 key type 7 len 4 flags 0x4",
	"set outbound_include4 elements: 00000000/end cb007100 cb007200/end",
	"set outbound_exclude4 key type 7 len 4 flags 0x4",
	"set outbound_exclude4 elements: 00000000/end cb007109 cb00710a/end",
	"chain prerouting type filter hook prerouting priority -300 policy accept",
	R_SPOOF,
	R_DIVERT_NT,
	/* -i names IPv4 only: IPv6 is not captured, so it has no tproxy rule. */
	R_OUT_TPROXY_NT("ip"),
	R_OUT_RESET_NT,
	R_LO_FOREIGN_SOURCE,
	R_LO_PASSTHROUGH,
	R_LO,
	R_PROXY_UPSTREAM,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(TCP),
	R_SYN_RESET_NT(TCP),
	"rule prerouting: " TCP TPROXY_NT("ip"),
	"rule prerouting: " TCP TPROXY_NT("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	"chain outbound (regular)",
	"rule outbound: " OWNER("skuid", "0x000003e8"),
	"rule outbound: " OWNER("skuid", "0x000003e9"),
	"rule outbound: " OWNER("skgid", "0x00000005"),
	"rule outbound: " TCP "[payload load 2b @ transport header + 2 => reg 1 ] "
	"[lookup reg 1 set outbound_exclude_ports 0x0 ] " RETURN,
	"rule outbound: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 16 => reg 1 ] "
	"[lookup reg 1 set outbound_exclude4 0x0 ] " RETURN,
	"rule outbound: [meta load nfproto => reg 1 ] [cmp eq reg 1 0x00000002 ] "
	"[payload load 4b @ network header + 16 => reg 1 ] "
	"[lookup reg 1 set outbound_include4 0x0 ] " TCP
	"[payload load 2b @ transport header + 2 => reg 1 ] "
	"[lookup reg 1 set outbound_ports 0x0 ] " MARK NOTRACK,
	"chain output type route hook output priority -300 policy accept",
	R_NOT_TCP,
	"rule output: " PROXY_MARK NOTRACK RETURN,
	"rule output: " PT4("12") NOTRACK RETURN,
	"rule output: " PT4("16") NOTRACK RETURN,
	"rule output: " PT6("8") NOTRACK RETURN,
	"rule output: " PT6("24") NOTRACK RETURN,
	/* The resets the outbound divert sends the app, from the remote's address. */
	"rule output: " RST
	"[fib saddr type => reg 1 ] [cmp neq reg 1 0x00000002 ] " NOTRACK RETURN,
	R_LOCAL_DEST,
	R_EXCL_SPORT,
	GOTO_OUTBOUND,
	/* Socketless: the resets rule 7 sends clients for a closed port. */
	"rule output: " RST NOTRACK,
	NULL,
};

/* --notrack alone: the inbound legs. */
static const char *const want_notrack[] = {
	TABLE,
	S_EXCL,
	"chain prerouting type filter hook prerouting priority -300 policy accept",
	R_SPOOF,
	R_DIVERT_NT,
	R_LO_PASSTHROUGH,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(TCP),
	R_SYN_RESET_NT(TCP),
	"rule prerouting: " TCP TPROXY_NT("ip"),
	"rule prerouting: " TCP TPROXY_NT("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	"chain output type route hook output priority -300 policy accept",
	R_NOT_TCP,
	"rule output: " PROXY_MARK NOTRACK RETURN,
	"rule output: " PT4("12") NOTRACK RETURN,
	"rule output: " PT4("16") NOTRACK RETURN,
	"rule output: " PT6("8") NOTRACK RETURN,
	"rule output: " PT6("24") NOTRACK RETURN,
	R_EXCL_SPORT,
	"rule output: [socket load transparent => reg 1 ] [cmp eq reg 1 0x00000000 ] " RETURN,
	"rule output: " RST NOTRACK,
	NULL,
};

/* Istio's nat OUTPUT REDIRECT, for the comparison. */
static const char *const want_redirect_outbound[] = {
	TABLE,
	S_EXCL_OUT,
	"set outbound_exclude_ports key type 13 len 2 flags 0x4",
	"set outbound_exclude_ports elements: 0000/end 1f90 1f91/end",
	"chain prerouting type nat hook prerouting priority -100 policy accept",
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	"rule prerouting: " TCP REDIR,
	ANTISPOOF,
	"chain outbound (regular)",
	"rule outbound: " OWNER("skuid", "0x000003e8"),
	"rule outbound: " OWNER("skgid", "0x00000539"),
	"rule outbound: " TCP "[payload load 2b @ transport header + 2 => reg 1 ] "
	"[lookup reg 1 set outbound_exclude_ports 0x0 ] " RETURN,
	"rule outbound: " TCP "[immediate reg 1 0x0000993a ] "
	"[redir proto_min reg 1 proto_max reg 1 flags 0x2 ] ",
	"chain output type nat hook output priority -100 policy accept",
	R_NOT_TCP,
	"rule output: " PROXY_MARK RETURN,
	R_LOCAL_DEST,
	"rule output: [immediate reg 0 goto -> outbound ] ",
	NULL,
};

/*
 * Istio's TPROXY mode (-m tproxy --outbound-mode redirect): the default
 * TPROXY prerouting without the outbound divert, and the nat output chain
 * of redirect mode, named apart from a route output chain.
 */
static const char *const want_istio_tproxy[] = {
	TABLE,
	S_EXCL_OUT,
	"set outbound_exclude_ports key type 13 len 2 flags 0x4",
	"set outbound_exclude_ports elements: 0000/end 1f90 1f91/end",
	"chain prerouting type filter hook prerouting priority -150 policy accept",
	R_SPOOF,
	R_DIVERT,
	R_LO,
	R_EXCL,
	R_NOT_LOCAL,
	R_SYN_FOUND(TCP),
	R_SYN_RESET(TCP),
	"rule prerouting: " TCP TPROXY("ip"),
	"rule prerouting: " TCP TPROXY("ip6"),
	R_WILDCARD(TCP),
	R_OWN(TCP),
	"rule prerouting: " TCP "[immediate reg 0 drop ] ",
	"chain outbound (regular)",
	"rule outbound: " OWNER("skuid", "0x000003e8"),
	"rule outbound: " OWNER("skgid", "0x00000539"),
	"rule outbound: " TCP "[payload load 2b @ transport header + 2 => reg 1 ] "
	"[lookup reg 1 set outbound_exclude_ports 0x0 ] " RETURN,
	"rule outbound: " TCP "[immediate reg 1 0x0000993a ] "
	"[redir proto_min reg 1 proto_max reg 1 flags 0x2 ] ",
	"chain nat_output type nat hook output priority -100 policy accept",
	"rule nat_output: [meta load l4proto => reg 1 ] [cmp neq reg 1 0x00000006 ] " RETURN,
	"rule nat_output: " PROXY_MARK RETURN,
	"rule nat_output: [fib daddr type => reg 1 ] [cmp eq reg 1 0x00000002 ] " RETURN,
	"rule nat_output: [immediate reg 0 goto -> outbound ] ",
	NULL,
};

struct build_case {
	const char *name;
	enum tpin_mode mode;
	const char *inbound, *sources;
	bool preserve, ipv6, localhost;
	const char *const *want;
	const char *flags; /* instead of the fields above: tpin-init's own flags */
};

/* The TPROXY cases first: test_tproxy_has_no_conntrack runs over them. */
static const struct build_case cases[] = {
	{ "default", TPIN_MODE_TPROXY, "*", "", false, true, false, want_default, NULL },
	{ "ports+sources+preserve", TPIN_MODE_TPROXY, "9080,100-200",
	  "203.0.113.0/24,2001:db8::/32", true, true, false, want_ports_sources_preserve, NULL },
	{ "ipv4 only", TPIN_MODE_TPROXY, "*", "2001:db8::/32", false, false, false, want_ipv4_only,
	  NULL },
	{ "upstream localhost", TPIN_MODE_TPROXY, "*", "", false, true, true, want_localhost,
	  NULL },
	{ "outbound", .want = want_outbound, .flags = "--outbound" },
	{ "outbound filters", .want = want_outbound_filters,
	  .flags = "-u 1001 -u 1000 -g 5 -q 80,443 -o 8080 -i 203.0.113.0/24 -x 203.0.113.9" },
	{ "outbound filters notrack", .want = want_outbound_filters_notrack,
	  .flags = "--notrack -u 1001 -u 1000 -g 5 -q 80,443 -o 8080 -i 203.0.113.0/24 "
		   "-x 203.0.113.9" },
	{ "notrack", .want = want_notrack, .flags = "--notrack" },
	{ "redirect", TPIN_MODE_REDIRECT, "*", "", false, true, false, want_redirect, NULL },
	{ "redirect ports", TPIN_MODE_REDIRECT, "9080", "", false, true, false, want_redirect_ports,
	  NULL },
	{ "redirect outbound", .want = want_redirect_outbound,
	  .flags = "-m redirect -u 1000 -o 8080" },
	{ "istio tproxy", .want = want_istio_tproxy,
	  .flags = "--outbound-mode redirect -u 1000 -o 8080" },
	/* --outbound-mode the same as -m changes nothing. */
	{ "redirect outbound, said twice", .want = want_redirect_outbound,
	  .flags = "-m redirect --outbound-mode redirect -u 1000 -o 8080" },
	{ "outbound, said twice", .want = want_outbound, .flags = "--outbound-mode tproxy" },
};

#define TPROXY_CASES 8

/* A config from tpin-init's flags, as tpin-init reads them. */
static void config_from_flags(struct tpin_config *cfg, const char *flags)
{
	char line[512], *argv[32];
	struct tpin_args a;
	struct tpin_err err;
	int argc = 0;

	snprintf(line, sizeof(line), "%s", flags);
	argv[argc++] = (char *)"tpin-init";
	for (char *save = NULL, *tok = strtok_r(line, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	ck_assert_msg(tpin_args_parse(&a, argc, argv, &err) == 0, "%s: %s", flags, err.msg);
	*cfg = a.cfg;
}

static struct tpin_nft_batch *build(const struct build_case *c)
{
	struct tpin_nft_batch *b;
	struct tpin_config cfg;
	struct tpin_err err;

	if (c->flags) {
		config_from_flags(&cfg, c->flags);
		goto built;
	}
	tpin_config_init(&cfg);
	cfg.mode = c->mode;
	cfg.preserve_source = c->preserve;
	cfg.ipv6 = c->ipv6;
	cfg.upstream_localhost = c->localhost;
	ck_assert_int_eq(tpin_ports_parse(&cfg.inbound, c->inbound, &err), 0);
	ck_assert_int_eq(tpin_cidrs_parse(&cfg.exclude_sources, c->sources, &err), 0);
	ck_assert_int_eq(tpin_config_finish(&cfg, &err), 0);
built:
	b = tpin_nft_batch_new(100);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(tpin_nft_build_install(b, &cfg), 0);
	ck_assert_int_eq(tpin_nft_batch_close(b), 0);
	return b;
}

/*
 * "add table inet tpin { comment "DIGEST"; }", DIGEST the digest of every
 * message after it, rendered as the reader renders the live table.
 */
static void digest_command(struct tpin_nft_batch *b, size_t table, char *cmd, size_t len)
{
	struct tpin_nft_lines lines = { 0 };
	char digest[TPIN_NFT_DIGEST_MAX];

	for (size_t i = table + 1; i < tpin_nft_batch_count(b); i++)
		ck_assert_int_eq(tpin_nft_lines_add(&lines, tpin_nft_batch_msg(b, i)), 0);
	ck_assert_int_eq(tpin_nft_digest(&lines, digest, sizeof(digest)), 0);
	ck_assert_int_eq(strncmp(digest, TPIN_NFT_DIGEST_PREFIX, strlen(TPIN_NFT_DIGEST_PREFIX)),
			 0);
	ck_assert_uint_eq(strlen(digest), TPIN_NFT_DIGEST_MAX - 1);
	snprintf(cmd, len, "add table inet tpin { comment \"%s\"; }", digest);
	tpin_nft_lines_free(&lines);
}

START_TEST(test_rule_by_rule)
{
	const struct build_case *c = &cases[_i];
	struct tpin_nft_batch *b = build(c);
	char text[8192], table[256];
	size_t i, n = tpin_nft_batch_count(b);

	for (i = 0; i < n && c->want[i]; i++) {
		int len = tpin_nft_render(tpin_nft_batch_msg(b, i), text, sizeof(text));
		const char *want = c->want[i];

		ck_assert_int_ge(len, 0);
		if (!strcmp(want, DIGEST_TABLE)) {
			digest_command(b, i, table, sizeof(table));
			want = table;
		}
		/* Tables render to nothing; their nft command stands in. */
		ck_assert_msg(!strcmp(len ? text : tpin_nft_batch_command(b, i), want),
			      "%s: message %zu:\n got  %s\n want %s", c->name, i,
			      len ? text : tpin_nft_batch_command(b, i), want);
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
	ck_assert_str_eq(tpin_nft_batch_command(b, n - 5),
			 "add chain inet tpin output { type route hook output priority mangle; "
			 "policy accept; }");
	ck_assert_str_eq(
		tpin_nft_batch_command(b, n - 1),
		"add rule inet tpin output meta mark 0x0 meta l4proto tcp tcp sport "
		"@inbound_ports fib daddr type != local socket transparent 0 meta mark set "
		"0x539");
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

/* The probe's commands, joined, for the configuration @cfg. */
static char *probe_text(const struct tpin_config *cfg)
{
	struct tpin_nft_batch *b = tpin_nft_batch_new(7);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(tpin_nft_build_probe(b, cfg), 0);
	for (size_t i = 0; i < tpin_nft_batch_count(b); i++)
		fprintf(f, "%s\n", tpin_nft_batch_command(b, i));
	fclose(f);
	tpin_nft_batch_free(b);
	return text;
}

/* Preflight probes every expression the chosen ruleset needs, and only those. */
START_TEST(test_probe_follows_the_ruleset)
{
	static const char *const tproxy[] = { "fib daddr",
					      "socket transparent",
					      "socket wildcard",
					      "reject with tcp reset",
					      "tproxy ip to",
					      "tproxy ip6 to",
					      NULL };
	struct tpin_config cfg;
	char *t;

	tpin_config_init(&cfg);
	t = probe_text(&cfg);
	for (const char *const *w = tproxy; *w; w++)
		ck_assert_msg(strstr(t, *w), "default probe lacks \"%s\":\n%s", *w, t);
	ck_assert_msg(!strstr(t, "redirect"), "default probe tries redirect:\n%s", t);
	free(t);

	/* No listener lookup for SYNs with the app on loopback: no reject either. */
	cfg.upstream_localhost = true;
	t = probe_text(&cfg);
	ck_assert_msg(!strstr(t, "reject") && strstr(t, "socket wildcard"), "localhost:\n%s", t);
	free(t);

	cfg.upstream_localhost = false;
	cfg.ipv6 = false;
	t = probe_text(&cfg);
	ck_assert_msg(!strstr(t, "tproxy ip6") && strstr(t, "tproxy ip to"), "no IPv6:\n%s", t);

	/* Outbound capture: the owners it exempts; --notrack: notrack, and the socket mark. */
	ck_assert_msg(!strstr(t, "skuid") && !strstr(t, "notrack") && !strstr(t, "socket mark"),
		      "no IPv6:\n%s", t);
	free(t);
	cfg.ipv6 = true;
	cfg.outbound = true;
	t = probe_text(&cfg);
	ck_assert_msg(strstr(t, "meta skuid 1337") && strstr(t, "meta skgid 1337") &&
			      !strstr(t, "notrack") && !strstr(t, "socket mark"),
		      "outbound:\n%s", t);
	free(t);
	cfg.notrack = true;
	t = probe_text(&cfg);
	ck_assert_msg(strstr(t, "notrack") && strstr(t, "socket mark"), "outbound notrack:\n%s", t);
	free(t);
	cfg.outbound = false;
	t = probe_text(&cfg);
	ck_assert_msg(strstr(t, "notrack") && !strstr(t, "socket mark") && !strstr(t, "skuid"),
		      "notrack:\n%s", t);
	free(t);
	cfg.notrack = false;

	/* REDIRECT: redir and the fib of its two rules, nothing of TPROXY's. */
	cfg.mode = TPIN_MODE_REDIRECT;
	t = probe_text(&cfg);
	ck_assert_msg(strstr(t, "redirect to") && strstr(t, "fib daddr") && !strstr(t, "socket") &&
			      !strstr(t, "tproxy") && !strstr(t, "reject") && !strstr(t, "skuid"),
		      "redirect:\n%s", t);
	free(t);
	cfg.outbound = true;
	t = probe_text(&cfg);
	ck_assert_msg(strstr(t, "redirect to") && strstr(t, "meta skuid") && !strstr(t, "tproxy"),
		      "redirect outbound:\n%s", t);
	free(t);

	/* Istio's TPROXY mode: TPROXY's expressions, and redir for the outbound port. */
	cfg.mode = TPIN_MODE_TPROXY;
	cfg.outbound_mode_set = true;
	cfg.outbound_mode = TPIN_MODE_REDIRECT;
	t = probe_text(&cfg);
	ck_assert_msg(strstr(t, "tproxy ip to") && strstr(t, "socket transparent") &&
			      strstr(t, "redirect to :15001") && !strstr(t, "redirect to :15006") &&
			      strstr(t, "meta skuid"),
		      "tproxy, outbound redirect:\n%s", t);
	free(t);
}
END_TEST

/*
 * The digest follows the rendering: the same config gives the same digest,
 * and a table with one rule less (a family's tproxy rule deleted) another.
 */
START_TEST(test_digest)
{
	struct tpin_nft_batch *b = build(&cases[0]);
	struct tpin_nft_lines all = { 0 }, less = { 0 };
	char d1[TPIN_NFT_DIGEST_MAX], d2[TPIN_NFT_DIGEST_MAX], d3[TPIN_NFT_DIGEST_MAX];
	size_t i;

	for (i = 0; i < tpin_nft_batch_count(b); i++) {
		const char *cmd = tpin_nft_batch_command(b, i);

		ck_assert_int_eq(tpin_nft_lines_add(&all, tpin_nft_batch_msg(b, i)), 0);
		if (!strstr(cmd, "tproxy ip6"))
			ck_assert_int_eq(tpin_nft_lines_add(&less, tpin_nft_batch_msg(b, i)), 0);
	}
	ck_assert_uint_eq(less.n + 1, all.n);
	ck_assert_int_eq(tpin_nft_digest(&all, d1, sizeof(d1)), 0);
	ck_assert_int_eq(tpin_nft_digest(&less, d2, sizeof(d2)), 0);
	ck_assert_str_ne(d1, d2);
	/* The order lines come in does not matter (the kernel dumps its own way). */
	for (i = 0; i < all.n / 2; i++) {
		char *tmp = all.v[i];

		all.v[i] = all.v[all.n - 1 - i];
		all.v[all.n - 1 - i] = tmp;
	}
	ck_assert_int_eq(tpin_nft_digest(&all, d3, sizeof(d3)), 0);
	ck_assert_str_eq(d1, d3);
	ck_assert_int_eq(tpin_nft_digest(&all, d3, TPIN_NFT_DIGEST_MAX - 1), -ENOSPC);
	tpin_nft_lines_free(&all);
	tpin_nft_lines_free(&less);
	tpin_nft_batch_free(b);
}
END_TEST

static Suite *build_suite(void)
{
	Suite *s = suite_create("nft_build");
	TCase *tc = tcase_create("batch");

	tcase_add_loop_test(tc, test_rule_by_rule, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_loop_test(tc, test_tproxy_has_no_conntrack, 0, TPROXY_CASES);
	tcase_add_test(tc, test_batch_framing_and_commands);
	tcase_add_test(tc, test_delete_and_probe);
	tcase_add_test(tc, test_probe_follows_the_ruleset);
	tcase_add_test(tc, test_digest);
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
