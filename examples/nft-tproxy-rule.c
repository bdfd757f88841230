// SPDX-License-Identifier: MIT
/*
 * One TPROXY rule over netlink with libnftnl, in one atomic batch:
 *
 *   table inet tpin_example {
 *     chain prerouting {
 *       type filter hook prerouting priority mangle; policy accept;
 *       meta l4proto tcp tproxy ip to :15006 meta mark set 0x539 accept
 *     }
 *   }
 *
 * The batch is BEGIN, NEWTABLE, NEWCHAIN, NEWRULE, END; every message asks
 * for an ACK (NLM_F_ACK) and the program reads answers until each one is
 * acknowledged or an error names the message that failed. The kernel applies
 * the batch whole or not at all.
 *
 * On its own the rule only marks and diverts: delivering the marked packets
 * locally also needs policy routing, e.g.
 *   ip rule add fwmark 0x539 lookup 133
 *   ip route add local 0.0.0.0/0 dev lo table 133
 * and a listener with IP_TRANSPARENT on port 15006 (transparent-listener.c).
 *
 * Running it again appends a second copy of the rule; --delete removes the
 * whole table. Usage: nft-tproxy-rule [--delete]   (needs CAP_NET_ADMIN; try it in a
 * throwaway namespace: ip netns add t; ip netns exec t ./nft-tproxy-rule)
 * Build: cc -o nft-tproxy-rule nft-tproxy-rule.c -lnftnl -lmnl
 */

#include <errno.h>
/* glibc's netinet/in.h before linux/netfilter.h, which pulls in linux/in.h. */
#include <netinet/in.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>

#define TABLE	"tpin_example"
#define CHAIN	"prerouting"
#define CAPTURE 15006
#define MARK	0x539

static int add_expr(struct nftnl_rule *r, struct nftnl_expr *e)
{
	if (!e)
		return -ENOMEM;
	nftnl_rule_add_expr(r, e);
	return 0;
}

/* meta l4proto tcp tproxy ip to :15006 meta mark set 0x539 accept */
static struct nftnl_rule *build_rule(void)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e;
	uint8_t tcp = IPPROTO_TCP;
	uint16_t port = htons(CAPTURE);
	uint32_t mark = MARK;
	int ret = 0;

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, CHAIN);

	/* meta l4proto tcp: load the protocol into reg 1, compare. */
	e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_L4PROTO);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	ret |= add_expr(r, e);
	e = nftnl_expr_alloc("cmp");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, &tcp, sizeof(tcp));
	}
	ret |= add_expr(r, e);

	/* tproxy ip to :15006: the port (network order) in reg 1. */
	e = nftnl_expr_alloc("immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &port, sizeof(port));
	}
	ret |= add_expr(r, e);
	e = nftnl_expr_alloc("tproxy");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_TPROXY_REG_PORT, NFT_REG_1);
	}
	ret |= add_expr(r, e);

	/* meta mark set 0x539, so policy routing delivers the packet locally. */
	e = nftnl_expr_alloc("immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
		nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, &mark, sizeof(mark));
	}
	ret |= add_expr(r, e);
	e = nftnl_expr_alloc("meta");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	}
	ret |= add_expr(r, e);

	/* accept */
	e = nftnl_expr_alloc("immediate");
	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, NF_ACCEPT);
	}
	ret |= add_expr(r, e);
	if (ret) {
		nftnl_rule_free(r);
		return NULL;
	}
	return r;
}

/*
 * Reads answers until every message from first_seq to last_seq is
 * acknowledged. An error answer carries the failing message's sequence
 * number, which says which command the kernel refused.
 */
static int read_acks(struct mnl_socket *nl, uint32_t first_seq, uint32_t last_seq)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t acked = 0, want = last_seq - first_seq + 1;

	while (acked < want) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		const struct nlmsghdr *nlh;
		int len;

		if (n < 0)
			return -errno;
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct nlmsgerr *err;

			if (nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			err = mnl_nlmsg_get_payload(nlh);
			if (err->error) {
				fprintf(stderr, "message %u of the batch failed: %s\n",
					nlh->nlmsg_seq - first_seq + 1, strerror(-err->error));
				return err->error;
			}
			acked++;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 2];
	struct mnl_nlmsg_batch *batch = NULL;
	struct nftnl_table *t = NULL;
	struct nftnl_chain *c = NULL;
	struct nftnl_rule *r = NULL;
	struct mnl_socket *nl = NULL;
	struct nlmsghdr *nlh;
	uint32_t seq = (uint32_t)time(NULL), first;
	int del = argc == 2 && !strcmp(argv[1], "--delete");
	int ret = -ENOMEM;

	if (argc > 2 || (argc == 2 && !del)) {
		fprintf(stderr, "usage: %s [--delete]\n", argv[0]);
		return 2;
	}
	t = nftnl_table_alloc();
	c = nftnl_chain_alloc();
	r = del ? NULL : build_rule();
	batch = mnl_nlmsg_batch_start(buf, sizeof(buf));
	if (!t || !c || (!del && !r) || !batch)
		goto out;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, CHAIN);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, -150); /* mangle */
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);

	/* The batch: every command between BEGIN and END commits at once. */
	nftnl_batch_begin(mnl_nlmsg_batch_current(batch), seq++);
	mnl_nlmsg_batch_next(batch);
	first = seq;
	if (del) {
		nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), NFT_MSG_DELTABLE,
					    NFPROTO_INET, NLM_F_ACK, seq++);
		nftnl_table_nlmsg_build_payload(nlh, t);
		mnl_nlmsg_batch_next(batch);
	} else {
		nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), NFT_MSG_NEWTABLE,
					    NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, seq++);
		nftnl_table_nlmsg_build_payload(nlh, t);
		mnl_nlmsg_batch_next(batch);
		nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), NFT_MSG_NEWCHAIN,
					    NFPROTO_INET, NLM_F_CREATE | NLM_F_ACK, seq++);
		nftnl_chain_nlmsg_build_payload(nlh, c);
		mnl_nlmsg_batch_next(batch);
		nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), NFT_MSG_NEWRULE,
					    NFPROTO_INET, NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK,
					    seq++);
		nftnl_rule_nlmsg_build_payload(nlh, r);
		mnl_nlmsg_batch_next(batch);
	}
	nftnl_batch_end(mnl_nlmsg_batch_current(batch), seq);
	mnl_nlmsg_batch_next(batch);

	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		perror("netlink socket");
		goto out;
	}
	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch)) < 0) {
		ret = -errno;
		perror("sendto");
		goto out;
	}
	/* BEGIN and END get no ACK of their own; the commands between them do. */
	ret = read_acks(nl, first, seq - 1);
	if (!ret)
		printf("%s inet %s\n", del ? "deleted table" : "installed one TPROXY rule in table",
		       TABLE);
	else if (ret == -EPERM)
		fprintf(stderr, "needs CAP_NET_ADMIN\n");
out:
	if (nl)
		mnl_socket_close(nl);
	if (batch)
		mnl_nlmsg_batch_stop(batch);
	if (r)
		nftnl_rule_free(r);
	if (c)
		nftnl_chain_free(c);
	if (t)
		nftnl_table_free(t);
	return ret ? 1 : 0;
}
