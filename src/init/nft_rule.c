// SPDX-License-Identifier: MIT
/*
 * Rules built step by step: each match_ or stmt_ step adds its netlink
 * expressions to the rule and its words to the rule's nft text together, so
 * the --dry-run text and what the kernel gets cannot drift apart.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libnftnl/expr.h>
#include <libnftnl/rule.h>

#include "tpin/net.h"
#include "tpin/nft_batch.h"
#include "nft_rule.h"

#define IPPROTO_TCP_BYTE ((uint8_t)6)
#define TCP_FLAGS_OFFSET 13
#define TCP_FLAG_SYN	 0x02
#define TCP_FLAG_RST	 0x04
#define TCP_FLAG_ACK	 0x10

static void words(struct nft_rule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void words(struct nft_rule *r, const char *fmt, ...)
{
	va_list ap;

	if (r->len >= sizeof(r->text))
		return;
	if (r->len)
		r->text[r->len++] = ' ';
	va_start(ap, fmt);
	r->len += (size_t)vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
	va_end(ap);
}

static struct nftnl_expr *expr(struct nft_rule *r, const char *name)
{
	struct nftnl_expr *e = r->err ? NULL : nftnl_expr_alloc(name);

	if (!e) {
		r->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(r->r, e);
	return e;
}

static void e_meta_load(struct nft_rule *r, uint32_t key)
{
	struct nftnl_expr *e = expr(r, "meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
}

static void e_cmp(struct nft_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "cmp");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void e_payload(struct nft_rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "payload");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
}

static void e_lookup(struct nft_rule *r, const char *set, uint32_t set_id)
{
	struct nftnl_expr *e = expr(r, "lookup");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	/* Explicit, as the kernel reports it, so --check compares like with like. */
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
}

static void e_immediate(struct nft_rule *r, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
}

/* meta l4proto tcp */
void match_tcp(struct nft_rule *r)
{
	const uint8_t tcp = IPPROTO_TCP_BYTE;

	e_meta_load(r, NFT_META_L4PROTO);
	e_cmp(r, NFT_CMP_EQ, &tcp, sizeof(tcp));
	words(r, "meta l4proto tcp");
}

/* meta nfproto ipv4|ipv6: what nft adds before an ip/ip6 header match. */
static void match_nfproto(struct nft_rule *r, int family)
{
	const uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;

	e_meta_load(r, NFT_META_NFPROTO);
	e_cmp(r, NFT_CMP_EQ, &proto, sizeof(proto));
}

/* meta nfproto ipv4, spelled out */
void match_ipv4_only(struct nft_rule *r)
{
	match_nfproto(r, AF_INET);
	words(r, "meta nfproto ipv4");
}

/*
 * tcp flags & (syn | ack) == syn: a connection's first SYN (@syn), or != syn:
 * anything else.
 */
void match_syn(struct nft_rule *r, bool syn)
{
	const uint8_t mask = TCP_FLAG_SYN | TCP_FLAG_ACK, xor = 0, flag = TCP_FLAG_SYN;
	struct nftnl_expr *e;

	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFFSET, 1);
	e = expr(r, "bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 1);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 1);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, 1);
	}
	e_cmp(r, syn ? NFT_CMP_EQ : NFT_CMP_NEQ, &flag, sizeof(flag));
	words(r, "tcp flags & (syn | ack) %s syn", syn ? "==" : "!=");
}

static const char *op_words(uint32_t op)
{
	switch (op) {
	case NFT_CMP_NEQ:
		return "!= ";
	case NFT_CMP_LTE:
		return "<= ";
	default:
		return "";
	}
}

/*
 * socket KEY [op] VALUE: the local socket the packet belongs to (an
 * established one, else a listener, as the stack would pick), and one of its
 * properties. No socket, and for wildcard a socket that is not a full one
 * (TIME_WAIT, a request), and the rule does not match.
 */
void match_socket(struct nft_rule *r, uint32_t key, uint32_t op, uint8_t value)
{
	struct nftnl_expr *e = expr(r, "socket");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	}
	e_cmp(r, op, &value, sizeof(value));
	words(r, "socket %s %s%u", key == NFT_SOCKET_WILDCARD ? "wildcard" : "transparent",
	      op_words(op), value);
}

/* socket transparent 0|1: a local socket owns the packet, and is it transparent? */
void match_socket_transparent(struct nft_rule *r, uint8_t value)
{
	match_socket(r, NFT_SOCKET_TRANSPARENT, NFT_CMP_EQ, value);
}

/* socket mark MARK: the mark of the local socket the packet belongs to (a full one). */
void match_socket_mark(struct nft_rule *r, uint32_t mark)
{
	struct nftnl_expr *e = expr(r, "socket");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_KEY, NFT_SOCKET_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_SOCKET_DREG, NFT_REG_1);
	}
	e_cmp(r, NFT_CMP_EQ, &mark, sizeof(mark));
	words(r, "socket mark 0x%x", mark);
}

/* meta l4proto != tcp */
void match_not_tcp(struct nft_rule *r)
{
	const uint8_t tcp = IPPROTO_TCP_BYTE;

	e_meta_load(r, NFT_META_L4PROTO);
	e_cmp(r, NFT_CMP_NEQ, &tcp, sizeof(tcp));
	words(r, "meta l4proto != tcp");
}

/* tcp flags & rst == rst: a reset, whatever else it carries (reject's carry ack). */
void match_rst(struct nft_rule *r)
{
	const uint8_t rst = TCP_FLAG_RST, xor = 0, tcp = IPPROTO_TCP_BYTE;
	struct nftnl_expr *e;

	/* nft's implicit dependency of a tcp header match. */
	e_meta_load(r, NFT_META_L4PROTO);
	e_cmp(r, NFT_CMP_EQ, &tcp, sizeof(tcp));
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, TCP_FLAGS_OFFSET, 1);
	e = expr(r, "bitwise");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 1);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &rst, 1);
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, 1);
	}
	e_cmp(r, NFT_CMP_EQ, &rst, sizeof(rst));
	words(r, "tcp flags & rst == rst");
}

/* meta skuid UID, meta skgid GID: the owner of the local socket sending it. */
void match_owner(struct nft_rule *r, bool gid, uint32_t id)
{
	e_meta_load(r, gid ? NFT_META_SKGID : NFT_META_SKUID);
	e_cmp(r, NFT_CMP_EQ, &id, sizeof(id));
	words(r, "meta sk%cid %u", gid ? 'g' : 'u', id);
}

/* ip saddr|daddr 127.0.0.6, ip6 saddr|daddr ::6: the proxy's passthrough source. */
void match_passthrough(struct nft_rule *r, int family, bool daddr)
{
	const uint32_t addr4 = htonl(TPIN_PASSTHROUGH4);
	const struct in6_addr addr6 = TPIN_PASSTHROUGH6_INIT;

	match_nfproto(r, family);
	if (family == AF_INET) {
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 16 : 12, 4);
		e_cmp(r, NFT_CMP_EQ, &addr4, sizeof(addr4));
	} else {
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 24 : 8, 16);
		e_cmp(r, NFT_CMP_EQ, &addr6, sizeof(addr6));
	}
	words(r, "%s %s %s", family == AF_INET ? "ip" : "ip6", daddr ? "daddr" : "saddr",
	      family == AF_INET ? TPIN_PASSTHROUGH4_TEXT : TPIN_PASSTHROUGH6_TEXT);
}

/* iif lo, iif != lo */
void match_iif_lo(struct nft_rule *r, bool lo)
{
	const uint32_t ifindex = TPIN_LOOPBACK_IFINDEX;

	e_meta_load(r, NFT_META_IIF);
	e_cmp(r, lo ? NFT_CMP_EQ : NFT_CMP_NEQ, &ifindex, sizeof(ifindex));
	words(r, "iif %slo", lo ? "" : "!= ");
}

/* tcp dport|sport @set (nft's implicit meta l4proto tcp comes first) */
void match_port_in_set(struct nft_rule *r, bool dport, const char *set, uint32_t id, bool need_tcp)
{
	const uint8_t tcp = IPPROTO_TCP_BYTE;

	if (need_tcp) {
		e_meta_load(r, NFT_META_L4PROTO);
		e_cmp(r, NFT_CMP_EQ, &tcp, sizeof(tcp));
	}
	e_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, dport ? 2 : 0, 2);
	e_lookup(r, set, id);
	words(r, "tcp %s @%s", dport ? "dport" : "sport", set);
}

/* ip saddr|daddr @set / ip6 saddr|daddr @set */
void match_addr_in_set(struct nft_rule *r, int family, bool daddr, const char *set, uint32_t id)
{
	match_nfproto(r, family);
	if (family == AF_INET)
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 16 : 12, 4);
	else
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 24 : 8, 16);
	e_lookup(r, set, id);
	words(r, "%s %s @%s", family == AF_INET ? "ip" : "ip6", daddr ? "daddr" : "saddr", set);
}

/* meta mark MARK, meta mark != MARK */
void match_mark(struct nft_rule *r, uint32_t op, uint32_t mark)
{
	e_meta_load(r, NFT_META_MARK);
	e_cmp(r, op, &mark, sizeof(mark));
	words(r, "meta mark %s0x%x", op_words(op), mark);
}

/*
 * fib saddr|daddr type [!=] local: whether the packet's source or
 * destination is an address of this namespace (a route lookup, no state).
 */
void match_fib_local(struct nft_rule *r, bool daddr, uint32_t op)
{
	const uint32_t local = RTN_LOCAL;
	struct nftnl_expr *e = expr(r, "fib");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS,
				   daddr ? NFTA_FIB_F_DADDR : NFTA_FIB_F_SADDR);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
	}
	e_cmp(r, op, &local, sizeof(local));
	words(r, "fib %s type %slocal", daddr ? "daddr" : "saddr", op_words(op));
}

/* meta mark set MARK */
void stmt_mark(struct nft_rule *r, uint32_t mark)
{
	struct nftnl_expr *e;

	e_immediate(r, &mark, sizeof(mark));
	e = expr(r, "meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	}
	words(r, "meta mark set 0x%x", mark);
}

/* tproxy ip|ip6 to :PORT */
void stmt_tproxy(struct nft_rule *r, int family, uint16_t port)
{
	const uint16_t be = htons(port);
	struct nftnl_expr *e;

	e_immediate(r, &be, sizeof(be));
	e = expr(r, "tproxy");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_FAMILY,
				   family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6);
		nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_1);
	}
	words(r, "tproxy %s to :%u", family == AF_INET ? "ip" : "ip6", port);
}

/* redirect to :PORT */
void stmt_redirect(struct nft_rule *r, uint16_t port)
{
	const uint16_t be = htons(port);
	struct nftnl_expr *e;

	e_immediate(r, &be, sizeof(be));
	e = expr(r, "redir");
	if (e) {
		/* A single port: min and max in one register, as the kernel reports it. */
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MAX, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	}
	words(r, "redirect to :%u", port);
}

/* reject with tcp reset: what the stack answers a SYN to a closed port */
void stmt_reject_reset(struct nft_rule *r)
{
	struct nftnl_expr *e = expr(r, "reject");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
		nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 0);
	}
	words(r, "reject with tcp reset");
}

/* notrack: the packet gets no conntrack entry, whatever else asks for one. */
void stmt_notrack(struct nft_rule *r)
{
	expr(r, "notrack");
	words(r, "notrack");
}

/* goto CHAIN: the rest of the decision is @chain's, and its return ends it. */
void stmt_goto(struct nft_rule *r, const char *chain)
{
	struct nftnl_expr *e = expr(r, "immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	}
	words(r, "goto %s", chain);
}

/* accept, drop, return */
void stmt_verdict(struct nft_rule *r, int verdict)
{
	struct nftnl_expr *e = expr(r, "immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	}
	words(r, "%s", verdict == NF_ACCEPT ? "accept" : verdict == NF_DROP ? "drop" : "return");
}

int nft_rule_begin(struct nft_rule *r, const char *table, const char *chain)
{
	memset(r, 0, sizeof(*r));
	r->r = nftnl_rule_alloc();
	if (!r->r)
		return -ENOMEM;
	nftnl_rule_set_u32(r->r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r->r, NFTNL_RULE_TABLE, table);
	nftnl_rule_set_str(r->r, NFTNL_RULE_CHAIN, chain);
	return 0;
}

/* Send the rule as the next message and free it. */
int nft_rule_put(struct tpin_nft_batch *b, struct nft_rule *r)
{
	struct nlmsghdr *nlh = NULL;
	int ret = r->err;

	if (!ret) {
		nlh = nft_msg_begin(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
		if (nlh) {
			nftnl_rule_nlmsg_build_payload(nlh, r->r);
			ret = nft_msg_end(b, nlh, "add rule inet %s %s %s",
					  nftnl_rule_get_str(r->r, NFTNL_RULE_TABLE),
					  nftnl_rule_get_str(r->r, NFTNL_RULE_CHAIN), r->text);
		} else {
			ret = -ENOMEM;
		}
	}
	nftnl_rule_free(r->r);
	r->r = NULL;
	return ret;
}
