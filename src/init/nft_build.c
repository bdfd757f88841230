// SPDX-License-Identifier: MIT
/*
 * Builds tpin's nftables transaction with libnftnl. No socket here: the batch
 * is bytes plus, for every message, the nft command it is equivalent to.
 * Each rule is assembled from small steps that add the expressions and the
 * matching nft words together, so the netlink and the --dry-run text cannot
 * drift apart.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "tpin/config.h"
#include "tpin/net.h"
#include "tpin/nft_batch.h"
#include "tpin/nft_read.h"
#include "tpin/nft_verify.h"

#define COMMAND_MAX 256
/* nft's datatype numbers, so `nft list` prints the sets' elements readably. */
#define NFT_TYPE_IPADDR	      7
#define NFT_TYPE_IP6ADDR      8
#define NFT_TYPE_INET_SERVICE 13
#define IPPROTO_TCP_BYTE      ((uint8_t)6)
#define TCP_FLAGS_OFFSET      13
#define TCP_FLAG_SYN	      0x02
#define TCP_FLAG_RST	      0x04
#define TCP_FLAG_ACK	      0x10
/* Netfilter hook priorities by name, as nft spells them. */
#define PRIO_RAW    (-300)
#define PRIO_MANGLE (-150)
#define PRIO_DSTNAT (-100)

struct command {
	uint32_t seq;
	size_t offset; /* of its nlmsghdr in buf */
	char *text;    /* as long as the command is: a set may hold hundreds of elements */
};

struct tpin_nft_batch {
	char *buf;
	size_t len, cap;
	struct command *cmds;
	size_t ncmds, cmds_cap;
	uint32_t seq;
	uint32_t set_id;
	bool closed;
};

/* Room for the largest single message: a set's elements at full capacity. */
#define MSG_ROOM (64 * 1024)

static int reserve(struct tpin_nft_batch *b)
{
	if (b->cap - b->len < MSG_ROOM) {
		size_t cap = b->cap * 2 + MSG_ROOM;
		char *buf = realloc(b->buf, cap);

		if (!buf)
			return -ENOMEM;
		memset(buf + b->cap, 0, cap - b->cap);
		b->buf = buf;
		b->cap = cap;
	}
	if (b->ncmds == b->cmds_cap) {
		size_t cap = b->cmds_cap * 2 + 16;
		struct command *cmds = realloc(b->cmds, cap * sizeof(*cmds));

		if (!cmds)
			return -ENOMEM;
		b->cmds = cmds;
		b->cmds_cap = cap;
	}
	return 0;
}

struct tpin_nft_batch *tpin_nft_batch_new(uint32_t first_seq)
{
	struct tpin_nft_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->seq = first_seq;
	if (reserve(b)) {
		tpin_nft_batch_free(b);
		return NULL;
	}
	nftnl_batch_begin(b->buf, b->seq++);
	b->len = NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
	return b;
}

void tpin_nft_batch_free(struct tpin_nft_batch *batch)
{
	if (!batch)
		return;
	while (batch->ncmds--)
		free(batch->cmds[batch->ncmds].text);
	free(batch->buf);
	free(batch->cmds);
	free(batch);
}

/*
 * Start the next message. The caller fills its payload, then calls
 * msg_end(), which records the command text.
 */
static struct nlmsghdr *msg_begin(struct tpin_nft_batch *b, uint16_t type, uint16_t flags)
{
	if (b->closed || reserve(b))
		return NULL;
	return nftnl_nlmsg_build_hdr(b->buf + b->len, type, NFPROTO_INET, flags | NLM_F_ACK,
				     b->seq);
}

static int msg_end(struct tpin_nft_batch *b, struct nlmsghdr *nlh, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Commit the message begun at msg_begin() with its nft text. 0 or -ENOMEM. */
static int msg_end(struct tpin_nft_batch *b, struct nlmsghdr *nlh, const char *fmt, ...)
{
	struct command *c = &b->cmds[b->ncmds];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&c->text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	c->seq = b->seq++;
	c->offset = b->len;
	b->ncmds++;
	b->len += NLMSG_ALIGN(nlh->nlmsg_len);
	return 0;
}

/*
 * add/delete table inet @name; a new table may carry @comment (NULL: none),
 * which nft shows as its comment: libnftnl's userdata TLV, as nft writes it.
 */
static int put_table(struct tpin_nft_batch *b, uint16_t type, const char *name, const char *comment)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nftnl_udata_buf *ud = NULL;
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFPROTO_INET);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, name);
	if (comment) {
		ud = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
		if (!ud || !nftnl_udata_put_strz(ud, NFTNL_UDATA_TABLE_COMMENT, comment))
			goto out;
		nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(ud),
				     nftnl_udata_buf_len(ud));
	}
	nlh = msg_begin(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	if (!nlh)
		goto out;
	nftnl_table_nlmsg_build_payload(nlh, t);
	if (comment)
		ret = msg_end(b, nlh, "add table inet %s { comment \"%s\"; }", name, comment);
	else
		ret = msg_end(b, nlh, "%s table inet %s",
			      type == NFT_MSG_NEWTABLE ? "add" : "delete", name);
out:
	if (ud)
		nftnl_udata_buf_free(ud);
	nftnl_table_free(t);
	return ret;
}

/* The netlink form of an nftables set and its elements, plus its nft words. */
struct set_spec {
	const char *name;
	const char *type; /* nft datatype name */
	uint32_t key_type;
	uint32_t key_len;
	uint32_t id;
};

static int put_set(struct tpin_nft_batch *b, const char *table, const struct set_spec *spec)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!s)
		return -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, spec->name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_INTERVAL);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, spec->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, spec->key_len);
	nftnl_set_set_u32(s, NFTNL_SET_ID, spec->id);
	nlh = msg_begin(b, NFT_MSG_NEWSET, NLM_F_CREATE);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		ret = msg_end(b, nlh, "add set inet %s %s { type %s; flags interval; }", table,
			      spec->name, spec->type);
	}
	nftnl_set_free(s);
	return ret;
}

/* Elements of an interval set are collected here before they are sent. */
struct interval_list {
	struct nftnl_set *set;
	size_t key_len;
	bool any;
	char *text; /* the elements in nft's words, "80, 8000-8080" */
	size_t text_len;
};

static int interval_elem(struct interval_list *l, const uint8_t *key, bool end)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	if (!e)
		return -ENOMEM;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, (uint32_t)l->key_len);
	if (end)
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
	nftnl_set_elem_add(l->set, e);
	return 0;
}

/* Big-endian increment; returns true when it wrapped past the top. */
static bool key_next(uint8_t *key, size_t len)
{
	while (len--)
		if (++key[len])
			return false;
	return true;
}

/*
 * Add the interval [first, last] (big-endian keys). The kernel's interval
 * sets hold boundaries: a start element at @first and an end element just
 * past @last, none when @last is the top of the key space. Like nft, an end
 * element at zero closes the space below the first interval.
 */
static int interval_add(struct interval_list *l, const uint8_t *first, const uint8_t *last,
			const char *words)
{
	static const uint8_t zero[16];
	uint8_t past[16];
	int ret = 0;

	if (!l->any && memcmp(first, zero, l->key_len))
		ret = interval_elem(l, zero, true);
	l->any = true;
	if (!ret)
		ret = interval_elem(l, first, false);
	memcpy(past, last, l->key_len);
	if (!ret && !key_next(past, l->key_len))
		ret = interval_elem(l, past, true);
	if (!ret) {
		size_t add = strlen(words) + 2;
		char *text = realloc(l->text, l->text_len + add + 1);

		if (!text)
			return -ENOMEM;
		l->text = text;
		l->text_len +=
			(size_t)sprintf(text + l->text_len, "%s%s", l->text_len ? ", " : "", words);
	}
	return ret;
}

static int put_elements(struct tpin_nft_batch *b, const char *table, const char *set_name,
			struct interval_list *l)
{
	struct nlmsghdr *nlh;

	nftnl_set_set_str(l->set, NFTNL_SET_TABLE, table);
	nftnl_set_set_str(l->set, NFTNL_SET_NAME, set_name);
	nftnl_set_set_u32(l->set, NFTNL_SET_FAMILY, NFPROTO_INET);
	nlh = msg_begin(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
	if (!nlh)
		return -ENOMEM;
	nftnl_set_elems_nlmsg_build_payload(nlh, l->set);
	return msg_end(b, nlh, "add element inet %s %s { %s }", table, set_name, l->text);
}

/*
 * An interval set: the set itself, then one message with all its elements,
 * which @fill adds to the list from @src.
 */
static int put_interval_set(struct tpin_nft_batch *b, const char *table,
			    const struct set_spec *spec,
			    int (*fill)(struct interval_list *l, const void *src, int family),
			    const void *src, int family)
{
	struct interval_list l = { .key_len = spec->key_len };
	int ret;

	ret = put_set(b, table, spec);
	if (ret)
		return ret;
	l.set = nftnl_set_alloc();
	if (!l.set)
		return -ENOMEM;
	ret = fill(&l, src, family);
	if (!ret)
		ret = put_elements(b, table, spec->name, &l);
	nftnl_set_free(l.set);
	free(l.text);
	return ret;
}

static int fill_ports(struct interval_list *l, const void *src, int family)
{
	const struct tpin_ports *ports = src;
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < ports->n; i++) {
		uint16_t first = htons(ports->r[i].first), last = htons(ports->r[i].last);
		char words[16];

		if (ports->r[i].first == ports->r[i].last)
			snprintf(words, sizeof(words), "%u", ports->r[i].first);
		else
			snprintf(words, sizeof(words), "%u-%u", ports->r[i].first,
				 ports->r[i].last);
		ret = interval_add(l, (uint8_t *)&first, (uint8_t *)&last, words);
	}
	return ret;
}

static int fill_cidrs(struct interval_list *l, const void *src, int family)
{
	const struct tpin_cidrs *cidrs = src;
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < cidrs->n; i++) {
		const struct tpin_cidr *c = &cidrs->c[i];
		char words[64];
		uint8_t last[16];

		if (c->family != family)
			continue;
		tpin_cidr_last(c, last);
		tpin_cidr_format(c, words, sizeof(words));
		ret = interval_add(l, c->addr, last, words);
	}
	return ret;
}

static int put_port_set(struct tpin_nft_batch *b, const char *table, const char *name,
			const struct tpin_ports *ports, uint32_t id)
{
	const struct set_spec spec = { name, "inet_service", NFT_TYPE_INET_SERVICE, 2, id };

	return put_interval_set(b, table, &spec, fill_ports, ports, 0);
}

static int put_cidr_set(struct tpin_nft_batch *b, const char *table, const char *name,
			const struct tpin_cidrs *cidrs, int family, uint32_t id)
{
	const struct set_spec spec = {
		name,
		family == AF_INET ? "ipv4_addr" : "ipv6_addr",
		family == AF_INET ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR,
		family == AF_INET ? 4 : 16,
		id,
	};

	return put_interval_set(b, table, &spec, fill_cidrs, cidrs, family);
}

static int put_chain(struct tpin_nft_batch *b, const char *table, const char *name,
		     const char *type, uint32_t hook, int32_t prio, const char *words)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;
	int ret = -ENOMEM;

	if (!c)
		return -ENOMEM;
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFPROTO_INET);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (type) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nlh = msg_begin(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		if (type)
			ret = msg_end(b, nlh, "add chain inet %s %s { %s; policy accept; }", table,
				      name, words);
		else
			ret = msg_end(b, nlh, "add chain inet %s %s", table, name);
	}
	nftnl_chain_free(c);
	return ret;
}

/*
 * A rule under construction: its libnftnl object and its nft words. The
 * steps below each add one match or statement to both. A failed allocation
 * is remembered and reported once, at put_rule().
 */
struct rule {
	struct nftnl_rule *r;
	int err;
	char text[COMMAND_MAX];
	size_t len;
};

static void words(struct rule *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void words(struct rule *r, const char *fmt, ...)
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

static struct nftnl_expr *expr(struct rule *r, const char *name)
{
	struct nftnl_expr *e = r->err ? NULL : nftnl_expr_alloc(name);

	if (!e) {
		r->err = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(r->r, e);
	return e;
}

static void e_meta_load(struct rule *r, uint32_t key)
{
	struct nftnl_expr *e = expr(r, "meta");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
}

static void e_cmp(struct rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "cmp");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}

static void e_payload(struct rule *r, uint32_t base, uint32_t offset, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "payload");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
}

static void e_lookup(struct rule *r, const char *set, uint32_t set_id)
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

static void e_immediate(struct rule *r, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(r, "immediate");

	if (!e)
		return;
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
	nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
}

/* meta l4proto tcp */
static void m_tcp(struct rule *r)
{
	const uint8_t tcp = IPPROTO_TCP_BYTE;

	e_meta_load(r, NFT_META_L4PROTO);
	e_cmp(r, NFT_CMP_EQ, &tcp, sizeof(tcp));
	words(r, "meta l4proto tcp");
}

/* meta nfproto ipv4|ipv6: what nft adds before an ip/ip6 header match. */
static void m_nfproto(struct rule *r, int family)
{
	const uint8_t proto = family == AF_INET ? NFPROTO_IPV4 : NFPROTO_IPV6;

	e_meta_load(r, NFT_META_NFPROTO);
	e_cmp(r, NFT_CMP_EQ, &proto, sizeof(proto));
}

/* meta nfproto ipv4, spelled out */
static void m_ipv4_only(struct rule *r)
{
	m_nfproto(r, AF_INET);
	words(r, "meta nfproto ipv4");
}

/*
 * tcp flags & (syn | ack) == syn: a connection's first SYN (@syn), or != syn:
 * anything else.
 */
static void m_syn(struct rule *r, bool syn)
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
static void m_socket(struct rule *r, uint32_t key, uint32_t op, uint8_t value)
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
static void m_socket_transparent(struct rule *r, uint8_t value)
{
	m_socket(r, NFT_SOCKET_TRANSPARENT, NFT_CMP_EQ, value);
}

/* socket mark MARK: the mark of the local socket the packet belongs to (a full one). */
static void m_socket_mark(struct rule *r, uint32_t mark)
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
static void m_not_tcp(struct rule *r)
{
	const uint8_t tcp = IPPROTO_TCP_BYTE;

	e_meta_load(r, NFT_META_L4PROTO);
	e_cmp(r, NFT_CMP_NEQ, &tcp, sizeof(tcp));
	words(r, "meta l4proto != tcp");
}

/* tcp flags & rst == rst: a reset, whatever else it carries (reject's carry ack). */
static void m_rst(struct rule *r)
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
static void m_owner(struct rule *r, bool gid, uint32_t id)
{
	e_meta_load(r, gid ? NFT_META_SKGID : NFT_META_SKUID);
	e_cmp(r, NFT_CMP_EQ, &id, sizeof(id));
	words(r, "meta sk%cid %u", gid ? 'g' : 'u', id);
}

/* ip saddr|daddr 127.0.0.6, ip6 saddr|daddr ::6: the proxy's passthrough source. */
static void m_passthrough(struct rule *r, int family, bool daddr)
{
	const uint32_t addr4 = htonl(TPIN_PASSTHROUGH4);
	const struct in6_addr addr6 = TPIN_PASSTHROUGH6_INIT;

	m_nfproto(r, family);
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
static void m_iif_lo(struct rule *r, bool lo)
{
	const uint32_t ifindex = TPIN_LOOPBACK_IFINDEX;

	e_meta_load(r, NFT_META_IIF);
	e_cmp(r, lo ? NFT_CMP_EQ : NFT_CMP_NEQ, &ifindex, sizeof(ifindex));
	words(r, "iif %slo", lo ? "" : "!= ");
}

/* tcp dport|sport @set (nft's implicit meta l4proto tcp comes first) */
static void m_port_in_set(struct rule *r, bool dport, const char *set, uint32_t id, bool need_tcp)
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
static void m_addr_in_set(struct rule *r, int family, bool daddr, const char *set, uint32_t id)
{
	m_nfproto(r, family);
	if (family == AF_INET)
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 16 : 12, 4);
	else
		e_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr ? 24 : 8, 16);
	e_lookup(r, set, id);
	words(r, "%s %s @%s", family == AF_INET ? "ip" : "ip6", daddr ? "daddr" : "saddr", set);
}

/* meta mark MARK, meta mark != MARK */
static void m_mark(struct rule *r, uint32_t op, uint32_t mark)
{
	e_meta_load(r, NFT_META_MARK);
	e_cmp(r, op, &mark, sizeof(mark));
	words(r, "meta mark %s0x%x", op_words(op), mark);
}

/*
 * fib saddr|daddr type [!=] local: whether the packet's source or
 * destination is an address of this namespace (a route lookup, no state).
 */
static void m_fib_local(struct rule *r, bool daddr, uint32_t op)
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
static void s_mark(struct rule *r, uint32_t mark)
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
static void s_tproxy(struct rule *r, int family, uint16_t port)
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
static void s_redirect(struct rule *r, uint16_t port)
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
static void s_reject_reset(struct rule *r)
{
	struct nftnl_expr *e = expr(r, "reject");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
		nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 0);
	}
	words(r, "reject with tcp reset");
}

/* notrack: the packet gets no conntrack entry, whatever else asks for one. */
static void s_notrack(struct rule *r)
{
	expr(r, "notrack");
	words(r, "notrack");
}

/* goto CHAIN: the rest of the decision is @chain's, and its return ends it. */
static void s_goto(struct rule *r, const char *chain)
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
static void s_verdict(struct rule *r, int verdict)
{
	struct nftnl_expr *e = expr(r, "immediate");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	}
	words(r, "%s", verdict == NF_ACCEPT ? "accept" : verdict == NF_DROP ? "drop" : "return");
}

static int rule_begin(struct rule *r, const char *table, const char *chain)
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
static int put_rule(struct tpin_nft_batch *b, struct rule *r)
{
	struct nlmsghdr *nlh = NULL;
	int ret = r->err;

	if (!ret) {
		nlh = msg_begin(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
		if (nlh) {
			nftnl_rule_nlmsg_build_payload(nlh, r->r);
			ret = msg_end(b, nlh, "add rule inet %s %s %s",
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

/* Set ids tie a rule's lookup to a set created earlier in the same batch. */
struct sets {
	uint32_t excluded, inbound, sources4, sources6;
	uint32_t out_ports, out_excluded, out_include4, out_include6, out_exclude4, out_exclude6;
};

/* The chains' priority: raw with --notrack, so notrack comes before conntrack. */
static int32_t tpin_prio(const struct tpin_config *cfg)
{
	return cfg->notrack ? PRIO_RAW : PRIO_MANGLE;
}

static const char *tpin_prio_name(const struct tpin_config *cfg)
{
	return cfg->notrack ? "raw" : "mangle";
}

/* notrack, with --notrack: the statement every rule that takes one of tpin's flows carries. */
static void s_notrack_if(struct rule *r, const struct tpin_config *cfg)
{
	if (cfg->notrack)
		s_notrack(r);
}

/* meta nfproto ipv4 first, with IPv6 left out (--no-ipv6): IPv6 is left alone. */
static void m_family_if(struct rule *r, const struct tpin_config *cfg)
{
	if (!cfg->ipv6)
		m_ipv4_only(r);
}

/*
 * Packets from a source address of this namespace (the pod's own, loopback,
 * the passthrough sources 127.0.0.6 and ::6) to one of its addresses that
 * arrive on another interface than lo are forged: the kernel routes what
 * the pod sends itself through lo. IPv4's martian filter drops 127.0.0.6
 * late; nothing drops ::6 or the pod's own address. Unicast destinations
 * only: a multicast the pod sends is looped back through its interface with
 * the pod's source, and must still reach the pod's own listeners.
 */
static int put_antispoof(struct tpin_nft_batch *b, const struct tpin_config *cfg, const char *chain)
{
	struct rule r;
	int ret = rule_begin(&r, cfg->table_name, chain);

	if (ret)
		return ret;
	m_family_if(&r, cfg);
	m_iif_lo(&r, false);
	m_fib_local(&r, false, NFT_CMP_EQ);
	m_fib_local(&r, true, NFT_CMP_EQ);
	s_verdict(&r, NF_DROP);
	return put_rule(b, &r);
}

/* iif lo return: traffic born in the pod is not inbound. */
static int put_lo_return(struct tpin_nft_batch *b, const struct tpin_config *cfg, const char *chain)
{
	struct rule r;
	int ret = rule_begin(&r, cfg->table_name, chain);

	if (ret)
		return ret;
	m_iif_lo(&r, true);
	s_verdict(&r, NFT_RETURN);
	return put_rule(b, &r);
}

/*
 * Matches shared by both modes: excluded ports and excluded sources, and
 * traffic to addresses that are not the pod's own (routed through it:
 * intercepting that would make the proxy an open relay) leave the chain
 * before anything is intercepted.
 */
static int put_exclusions(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			  const char *chain, const struct sets *ids)
{
	const char *t = cfg->table_name;
	struct rule r;
	int ret;

	ret = rule_begin(&r, t, chain);
	if (ret)
		return ret;
	m_port_in_set(&r, true, "exclude_ports", ids->excluded, true);
	s_verdict(&r, NFT_RETURN);
	ret = put_rule(b, &r);
	if (!ret && ids->sources4 && !(ret = rule_begin(&r, t, chain))) {
		m_addr_in_set(&r, AF_INET, false, "exclude_sources4", ids->sources4);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && ids->sources6 && !(ret = rule_begin(&r, t, chain))) {
		m_addr_in_set(&r, AF_INET6, false, "exclude_sources6", ids->sources6);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, chain))) {
		m_fib_local(&r, true, NFT_CMP_NEQ);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	return ret;
}

/*
 * The match for "a TCP packet to an intercepted port". With IPv6 left out,
 * IPv6 traffic is left alone, not dropped.
 */
static void m_intercepted(struct rule *r, const struct tpin_config *cfg, const struct sets *ids)
{
	m_family_if(r, cfg);
	if (ids->inbound)
		m_port_in_set(r, true, "inbound_ports", ids->inbound, true);
	else
		m_tcp(r);
}

/*
 * A connection to a port where nothing listens is refused, as it would be
 * without tpin: a new SYN whose socket lookup (the stack's own, of the
 * packet's addresses) finds a socket, a listener or a TIME_WAIT, transparent
 * or not, is marked; an unmarked one gets the reset the stack would send.
 * The mark only carries the answer to the next rule: tproxy sets it anyway.
 * Left out with --upstream localhost, where the app listens on loopback and
 * the lookup of the pod's address would find nothing for any port.
 */
static int put_closed_port_reset(struct tpin_nft_batch *b, const struct tpin_config *cfg,
				 const struct sets *ids)
{
	const char *t = cfg->table_name;
	struct rule r;
	int ret;

	ret = rule_begin(&r, t, "prerouting");
	if (ret)
		return ret;
	m_intercepted(&r, cfg, ids);
	m_syn(&r, true);
	m_socket(&r, NFT_SOCKET_TRANSPARENT, NFT_CMP_LTE, 1);
	s_mark(&r, cfg->mark);
	ret = put_rule(b, &r);
	if (!ret && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_intercepted(&r, cfg, ids);
		m_syn(&r, true);
		m_mark(&r, NFT_CMP_NEQ, cfg->mark);
		s_notrack_if(&r, cfg);
		s_reject_reset(&r);
		ret = put_rule(b, &r);
	}
	return ret;
}

/*
 * The app's own connections come back on lo marked by the outbound chain
 * (policy routing sends marked packets to lo). A new one, or any packet
 * with no established socket (the ACK of a SYN cookie the listener issued),
 * goes to the proxy's outbound listener; the packets of an established one
 * were taken by rule 2 already. What tproxy declines, because no outbound
 * listener is there, gets a reset: the app's connect fails at once instead
 * of retrying its SYN, and nothing leaves the pod unproxied.
 */
static int put_outbound_divert(struct tpin_nft_batch *b, const struct tpin_config *cfg)
{
	const char *t = cfg->table_name;
	struct rule r;
	int ret = 0, fam;

	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (!tpin_config_captures_family(cfg, fam))
			continue;
		ret = rule_begin(&r, t, "prerouting");
		if (ret)
			break;
		m_iif_lo(&r, true);
		m_mark(&r, NFT_CMP_EQ, cfg->mark);
		m_tcp(&r);
		s_tproxy(&r, fam, cfg->outbound_port);
		s_notrack_if(&r, cfg);
		s_verdict(&r, NF_ACCEPT);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_iif_lo(&r, true);
		m_mark(&r, NFT_CMP_EQ, cfg->mark);
		m_tcp(&r);
		s_notrack_if(&r, cfg);
		s_reject_reset(&r);
		ret = put_rule(b, &r);
	}
	return ret;
}

/*
 * --notrack, on lo: the legs of tpin's flows inside the pod. A packet on lo
 * from an address that is not the pod's comes from a transparent socket,
 * which only the proxy has: its outbound sockets answering the app (from
 * the remote address), its --preserve-source connections to the app (from
 * the client's), and the resets the outbound rules send the app. The
 * passthrough sources 127.0.0.6 and ::6 are the proxy's connections to the
 * app, both ways.
 */
static int put_lo_notrack(struct tpin_nft_batch *b, const struct tpin_config *cfg)
{
	const char *t = cfg->table_name;
	struct rule r;
	int ret = 0, fam, daddr;

	if (cfg->outbound || cfg->preserve_source) {
		ret = rule_begin(&r, t, "prerouting");
		if (ret)
			return ret;
		m_iif_lo(&r, true);
		m_family_if(&r, cfg);
		m_tcp(&r);
		m_fib_local(&r, false, NFT_CMP_NEQ);
		s_notrack(&r);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		for (daddr = 0; !ret && daddr <= 1; daddr++) {
			ret = rule_begin(&r, t, "prerouting");
			if (ret)
				break;
			m_iif_lo(&r, true);
			m_tcp(&r);
			m_passthrough(&r, fam, daddr);
			s_notrack(&r);
			s_verdict(&r, NFT_RETURN);
			ret = put_rule(b, &r);
		}
	}
	return ret;
}

static int put_tproxy_rules(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			    const struct sets *ids)
{
	const char *t = cfg->table_name;
	struct rule r;
	int ret, fam;

	ret = put_antispoof(b, cfg, "prerouting");
	/*
	 * Packets of established transparent sockets skip the tproxy lookup,
	 * but never a SYN: a SYN matching a TIME_WAIT socket the proxy left
	 * would otherwise reopen a connection straight to the app.
	 */
	if (!ret && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_tcp(&r);
		m_syn(&r, false);
		m_socket_transparent(&r, 1);
		s_mark(&r, cfg->mark);
		s_notrack_if(&r, cfg);
		s_verdict(&r, NF_ACCEPT);
		ret = put_rule(b, &r);
	}
	if (!ret && cfg->outbound)
		ret = put_outbound_divert(b, cfg);
	if (!ret && cfg->notrack)
		ret = put_lo_notrack(b, cfg);
	if (!ret)
		ret = put_lo_return(b, cfg, "prerouting");
	/*
	 * --notrack: the remote's answers to the proxy's own outbound
	 * connections, which carry its mark. (A TIME_WAIT is no full socket
	 * and has no mark to read: a packet for one is tracked.)
	 */
	if (!ret && cfg->notrack && cfg->outbound && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_family_if(&r, cfg);
		m_tcp(&r);
		m_syn(&r, false);
		m_socket_mark(&r, TPIN_DEFAULT_PROXY_MARK);
		s_notrack(&r);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret)
		ret = put_exclusions(b, cfg, "prerouting", ids);
	if (!ret && !cfg->upstream_localhost)
		ret = put_closed_port_reset(b, cfg, ids);
	/*
	 * SYNs, and any other packet with no established socket: a SYN
	 * cookie's ACK lands on the proxy's listener, which checks the cookie
	 * it issued.
	 */
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		ret = rule_begin(&r, t, "prerouting");
		if (ret)
			break;
		m_intercepted(&r, cfg, ids);
		s_tproxy(&r, fam, cfg->capture_port);
		s_mark(&r, cfg->mark);
		s_notrack_if(&r, cfg);
		s_verdict(&r, NF_ACCEPT);
		ret = put_rule(b, &r);
	}
	/*
	 * What tproxy declined: a packet of an established socket that is not
	 * transparent (the answers to the pod's own connections, and its
	 * TIME_WAIT), which returns; or, with no proxy listening, one whose
	 * lookup falls back to the app's listener, which must not get it. A
	 * listener on every address is told by the wildcard key and dropped
	 * first (the key does not match TIME_WAIT, so those still return).
	 */
	if (!ret && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_intercepted(&r, cfg, ids);
		m_syn(&r, false);
		m_socket(&r, NFT_SOCKET_WILDCARD, NFT_CMP_EQ, 1);
		s_verdict(&r, NF_DROP);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_intercepted(&r, cfg, ids);
		m_syn(&r, false);
		m_socket_transparent(&r, 0);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	/*
	 * nft's tproxy lets the packet go on when no transparent socket
	 * listens: without this drop a client would reach the app directly
	 * while the proxy is down. Drop, not reject, so SYN retries carry the
	 * client over a proxy restart.
	 */
	if (!ret && !(ret = rule_begin(&r, t, "prerouting"))) {
		m_intercepted(&r, cfg, ids);
		s_verdict(&r, NF_DROP);
		ret = put_rule(b, &r);
	}
	return ret;
}

/*
 * The outbound filters, -u -g -o -x -i -q, in a regular chain of their own:
 * the base chain sends only TCP packets of the pod's own sockets here. What
 * passes them is captured: marked for table 133 (tproxy) or redirected
 * (redirect mode).
 */
static int put_outbound_chain(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			      const struct sets *ids)
{
	const char *t = cfg->table_name;
	bool tproxy = cfg->mode == TPIN_MODE_TPROXY;
	struct rule r;
	size_t i;
	int ret, fam, gid;

	ret = put_chain(b, t, "outbound", NULL, 0, 0, NULL);
	for (gid = 0; !ret && gid <= 1; gid++) {
		const struct tpin_ids *owners = gid ? &cfg->exempt_gids : &cfg->exempt_uids;

		for (i = 0; !ret && i < owners->n; i++) {
			ret = rule_begin(&r, t, "outbound");
			if (ret)
				break;
			m_owner(&r, gid, owners->v[i]);
			s_verdict(&r, NFT_RETURN);
			ret = put_rule(b, &r);
		}
	}
	if (!ret && ids->out_excluded && !(ret = rule_begin(&r, t, "outbound"))) {
		m_port_in_set(&r, true, "outbound_exclude_ports", ids->out_excluded, true);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && ids->out_exclude4 && !(ret = rule_begin(&r, t, "outbound"))) {
		m_addr_in_set(&r, AF_INET, true, "outbound_exclude4", ids->out_exclude4);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && ids->out_exclude6 && !(ret = rule_begin(&r, t, "outbound"))) {
		m_addr_in_set(&r, AF_INET6, true, "outbound_exclude6", ids->out_exclude6);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	/* One rule for every destination, or one per family of -i's CIDRs. */
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		uint32_t include = fam == AF_INET ? ids->out_include4 : ids->out_include6;

		if (cfg->out_all && fam == AF_INET6)
			break;
		if (!cfg->out_all && !include)
			continue;
		ret = rule_begin(&r, t, "outbound");
		if (ret)
			break;
		if (cfg->out_all)
			m_family_if(&r, cfg);
		else
			m_addr_in_set(&r, fam, true,
				      fam == AF_INET ? "outbound_include4" : "outbound_include6",
				      include);
		if (ids->out_ports)
			m_port_in_set(&r, true, "outbound_ports", ids->out_ports, true);
		else
			m_tcp(&r);
		if (tproxy) {
			s_mark(&r, cfg->mark);
			s_notrack_if(&r, cfg);
		} else {
			s_redirect(&r, cfg->outbound_port);
		}
		ret = put_rule(b, &r);
	}
	return ret;
}

/*
 * The output chain (type route, so a new mark routes the packet again).
 * Without conntrack a packet does not say who opened its connection, so the
 * order here is what tells them apart:
 *  - the proxy's own sockets (its mark) are never captured, and with
 *    --notrack never tracked, and neither are its connections to the app
 *    from the passthrough sources;
 *  - loopback and the pod's own addresses are never captured;
 *  - the app's answers to clients that reach it directly come from the
 *    excluded ports or go to the excluded sources, and leave as they are
 *    (the only ports it serves directly with -b "*", which outbound capture
 *    needs);
 *  - with --preserve-source, its answers from the intercepted ports go back
 *    to the proxy;
 *  - whatever else a socket of the pod sends, the outbound chain decides;
 *  - what is left has no socket: the resets nft's reject sends for a closed
 *    port, which must reach the client, and with --notrack must not be
 *    tracked either (another table's "ct state invalid drop" would drop
 *    them).
 */
static int put_output_chain(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			    const struct sets *ids)
{
	const char *t = cfg->table_name;
	bool broad = cfg->outbound || cfg->notrack;
	char chain_words[64];
	struct rule r;
	int ret = 0, fam, daddr;

	snprintf(chain_words, sizeof(chain_words), "type route hook output priority %s",
		 tpin_prio_name(cfg));
	ret = put_chain(b, t, "output", "route", NF_INET_LOCAL_OUT, tpin_prio(cfg), chain_words);
	if (!ret && broad && !(ret = rule_begin(&r, t, "output"))) {
		m_not_tcp(&r);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && broad && !(ret = rule_begin(&r, t, "output"))) {
		m_mark(&r, NFT_CMP_EQ, TPIN_DEFAULT_PROXY_MARK);
		s_notrack_if(&r, cfg);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && cfg->notrack && cfg->preserve_source && !(ret = rule_begin(&r, t, "output"))) {
		/* The proxy's connections to the app from the client's address. */
		m_socket_transparent(&r, 1);
		s_notrack(&r);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	for (fam = AF_INET; !ret && cfg->notrack && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		for (daddr = 0; !ret && daddr <= 1; daddr++) {
			ret = rule_begin(&r, t, "output");
			if (ret)
				break;
			m_passthrough(&r, fam, daddr);
			s_notrack(&r);
			s_verdict(&r, NFT_RETURN);
			ret = put_rule(b, &r);
		}
	}
	if (!ret && cfg->notrack && cfg->outbound && !(ret = rule_begin(&r, t, "output"))) {
		/* The resets the outbound divert sends the app, from the remote's address. */
		m_family_if(&r, cfg);
		m_rst(&r);
		m_fib_local(&r, false, NFT_CMP_NEQ);
		s_notrack(&r);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && cfg->outbound && !(ret = rule_begin(&r, t, "output"))) {
		m_fib_local(&r, true, NFT_CMP_EQ);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "output"))) {
		m_port_in_set(&r, false, "exclude_ports", ids->excluded, true);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && ids->sources4 && !(ret = rule_begin(&r, t, "output"))) {
		m_addr_in_set(&r, AF_INET, true, "exclude_sources4", ids->sources4);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && ids->sources6 && !(ret = rule_begin(&r, t, "output"))) {
		m_addr_in_set(&r, AF_INET6, true, "exclude_sources6", ids->sources6);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && cfg->preserve_source && !(ret = rule_begin(&r, t, "output"))) {
		m_mark(&r, NFT_CMP_EQ, 0);
		m_tcp(&r);
		m_port_in_set(&r, false, "inbound_ports", ids->inbound, false);
		m_fib_local(&r, true, NFT_CMP_NEQ);
		m_socket_transparent(&r, 0);
		s_mark(&r, cfg->mark);
		s_notrack_if(&r, cfg);
		ret = put_rule(b, &r);
	}
	/* A socket's packet: the outbound chain's, or (without it) not tpin's. */
	if (!ret && broad && !(ret = rule_begin(&r, t, "output"))) {
		m_socket_transparent(&r, 0);
		if (cfg->outbound)
			s_goto(&r, "outbound");
		else
			s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && cfg->notrack && !cfg->upstream_localhost &&
	    !(ret = rule_begin(&r, t, "output"))) {
		m_family_if(&r, cfg);
		m_rst(&r);
		if (ids->inbound)
			m_port_in_set(&r, false, "inbound_ports", ids->inbound, false);
		s_notrack(&r);
		ret = put_rule(b, &r);
	}
	return ret;
}

/*
 * REDIRECT: a nat chain, which sees only a connection's first packet, so
 * the anti-spoofing rule has a filter chain of its own, before conntrack
 * (raw priority) so a forged packet costs no conntrack entry either.
 */
static int put_redirect_rules(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			      const struct sets *ids)
{
	struct rule r;
	int ret;

	ret = put_lo_return(b, cfg, "prerouting");
	if (!ret)
		ret = put_exclusions(b, cfg, "prerouting", ids);
	if (!ret)
		ret = rule_begin(&r, cfg->table_name, "prerouting");
	if (ret)
		return ret;
	m_intercepted(&r, cfg, ids);
	s_redirect(&r, cfg->capture_port);
	ret = put_rule(b, &r);
	if (!ret)
		ret = put_chain(b, cfg->table_name, "antispoof", "filter", NF_INET_PRE_ROUTING,
				PRIO_RAW, "type filter hook prerouting priority raw");
	return ret ? ret : put_antispoof(b, cfg, "antispoof");
}

/*
 * REDIRECT outbound, as Istio's nat OUTPUT: a connection's first packet
 * only, so the app's answers to clients need no exemption; the proxy's own
 * connections (its mark) and local destinations leave, the outbound chain
 * decides the rest and redirects to the outbound port.
 */
static int put_redirect_output(struct tpin_nft_batch *b, const struct tpin_config *cfg)
{
	const char *t = cfg->table_name;
	struct rule r;
	int ret;

	ret = put_chain(b, t, "output", "nat", NF_INET_LOCAL_OUT, PRIO_DSTNAT,
			"type nat hook output priority -100");
	if (!ret && !(ret = rule_begin(&r, t, "output"))) {
		m_not_tcp(&r);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "output"))) {
		m_mark(&r, NFT_CMP_EQ, TPIN_DEFAULT_PROXY_MARK);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "output"))) {
		m_fib_local(&r, true, NFT_CMP_EQ);
		s_verdict(&r, NFT_RETURN);
		ret = put_rule(b, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "output"))) {
		s_goto(&r, "outbound");
		ret = put_rule(b, &r);
	}
	return ret;
}

int tpin_nft_build_delete(struct tpin_nft_batch *batch, const char *name)
{
	/*
	 * Deleting a missing table fails the whole batch, and nft's "destroy"
	 * needs a 6.3 kernel: adding it first (a no-op when it exists) makes
	 * the delete always valid.
	 */
	int ret = put_table(batch, NFT_MSG_NEWTABLE, name, NULL);

	return ret ? ret : put_table(batch, NFT_MSG_DELTABLE, name, NULL);
}

/* The sets of outbound capture: only those its flags name. */
static int put_outbound_sets(struct tpin_nft_batch *batch, const struct tpin_config *cfg,
			     struct sets *ids)
{
	const char *t = cfg->table_name;
	int ret = 0;

	if (!cfg->out_ports.all) {
		ids->out_ports = ++batch->set_id;
		ret = put_port_set(batch, t, "outbound_ports", &cfg->out_ports, ids->out_ports);
	}
	if (!ret && cfg->out_excluded.n) {
		ids->out_excluded = ++batch->set_id;
		ret = put_port_set(batch, t, "outbound_exclude_ports", &cfg->out_excluded,
				   ids->out_excluded);
	}
	if (!ret && !cfg->out_all && tpin_config_captures_family(cfg, AF_INET)) {
		ids->out_include4 = ++batch->set_id;
		ret = put_cidr_set(batch, t, "outbound_include4", &cfg->out_include, AF_INET,
				   ids->out_include4);
	}
	if (!ret && !cfg->out_all && tpin_config_captures_family(cfg, AF_INET6)) {
		ids->out_include6 = ++batch->set_id;
		ret = put_cidr_set(batch, t, "outbound_include6", &cfg->out_include, AF_INET6,
				   ids->out_include6);
	}
	if (!ret && tpin_cidrs_count(&cfg->out_exclude, AF_INET)) {
		ids->out_exclude4 = ++batch->set_id;
		ret = put_cidr_set(batch, t, "outbound_exclude4", &cfg->out_exclude, AF_INET,
				   ids->out_exclude4);
	}
	if (!ret && cfg->ipv6 && tpin_cidrs_count(&cfg->out_exclude, AF_INET6)) {
		ids->out_exclude6 = ++batch->set_id;
		ret = put_cidr_set(batch, t, "outbound_exclude6", &cfg->out_exclude, AF_INET6,
				   ids->out_exclude6);
	}
	return ret;
}

/* Everything in the table: sets and their elements, chains, rules. */
static int put_contents(struct tpin_nft_batch *batch, const struct tpin_config *cfg)
{
	const char *t = cfg->table_name;
	struct sets ids = { 0 };
	bool tproxy = cfg->mode == TPIN_MODE_TPROXY;
	char chain_words[64];
	int ret;

	ids.excluded = ++batch->set_id;
	ret = put_port_set(batch, t, "exclude_ports", &cfg->excluded, ids.excluded);
	if (!ret && !cfg->inbound.all) {
		ids.inbound = ++batch->set_id;
		ret = put_port_set(batch, t, "inbound_ports", &cfg->inbound, ids.inbound);
	}
	if (!ret && tpin_cidrs_count(&cfg->exclude_sources, AF_INET)) {
		ids.sources4 = ++batch->set_id;
		ret = put_cidr_set(batch, t, "exclude_sources4", &cfg->exclude_sources, AF_INET,
				   ids.sources4);
	}
	if (!ret && cfg->ipv6 && tpin_cidrs_count(&cfg->exclude_sources, AF_INET6)) {
		ids.sources6 = ++batch->set_id;
		ret = put_cidr_set(batch, t, "exclude_sources6", &cfg->exclude_sources, AF_INET6,
				   ids.sources6);
	}
	if (!ret && cfg->outbound)
		ret = put_outbound_sets(batch, cfg, &ids);
	if (ret)
		return ret;
	snprintf(chain_words, sizeof(chain_words), "type filter hook prerouting priority %s",
		 tpin_prio_name(cfg));
	if (tproxy)
		ret = put_chain(batch, t, "prerouting", "filter", NF_INET_PRE_ROUTING,
				tpin_prio(cfg), chain_words);
	else
		ret = put_chain(batch, t, "prerouting", "nat", NF_INET_PRE_ROUTING, PRIO_DSTNAT,
				"type nat hook prerouting priority dstnat");
	if (!ret)
		ret = tproxy ? put_tproxy_rules(batch, cfg, &ids)
			     : put_redirect_rules(batch, cfg, &ids);
	/* The outbound chain before the rule that jumps to it: nft looks it up then. */
	if (!ret && cfg->outbound)
		ret = put_outbound_chain(batch, cfg, &ids);
	if (!ret && tproxy && (cfg->preserve_source || cfg->outbound || cfg->notrack))
		ret = put_output_chain(batch, cfg, &ids);
	if (!ret && !tproxy && cfg->outbound)
		ret = put_redirect_output(batch, cfg);
	return ret;
}

/*
 * The digest of what put_contents() adds, as nft_read.c renders it: the
 * table's comment carries it, so a reader can tell, with one dump, whether
 * the live table is still exactly this.
 */
static int contents_digest(const struct tpin_config *cfg, char *digest, size_t len)
{
	struct tpin_nft_batch *scratch = tpin_nft_batch_new(0);
	struct tpin_nft_lines lines = { 0 };
	size_t i;
	int ret = -ENOMEM;

	if (!scratch)
		return ret;
	ret = put_contents(scratch, cfg);
	for (i = 0; !ret && i < scratch->ncmds; i++)
		ret = tpin_nft_lines_add(&lines, tpin_nft_batch_msg(scratch, i));
	if (!ret)
		ret = tpin_nft_digest(&lines, digest, len);
	tpin_nft_lines_free(&lines);
	tpin_nft_batch_free(scratch);
	return ret;
}

int tpin_nft_build_install(struct tpin_nft_batch *batch, const struct tpin_config *cfg)
{
	char digest[TPIN_NFT_DIGEST_MAX];
	int ret;

	ret = contents_digest(cfg, digest, sizeof(digest));
	if (!ret)
		ret = tpin_nft_build_delete(batch, cfg->table_name);
	if (!ret)
		ret = put_table(batch, NFT_MSG_NEWTABLE, cfg->table_name, digest);
	return ret ? ret : put_contents(batch, cfg);
}

int tpin_nft_build_probe(struct tpin_nft_batch *batch, const struct tpin_config *cfg)
{
	static const char t[] = "tpin_probe";
	bool tproxy = cfg->mode == TPIN_MODE_TPROXY;
	struct rule r;
	int ret, fam;

	/*
	 * A regular chain: the kernel looks every expression up when the rule
	 * is added, and aborting a batch that registered a hook would cost an
	 * RCU grace period (about 10 ms here) for nothing.
	 */
	ret = put_table(batch, NFT_MSG_NEWTABLE, t, NULL);
	if (!ret)
		ret = put_chain(batch, t, "p", NULL, 0, 0, NULL);
	/* Both modes: the anti-spoofing and local-destination rules. */
	if (!ret && !(ret = rule_begin(&r, t, "p"))) {
		m_fib_local(&r, true, NFT_CMP_EQ);
		ret = put_rule(batch, &r);
	}
	/* Outbound capture in both modes: the owners it exempts. */
	if (!ret && cfg->outbound && (cfg->exempt_uids.n || cfg->exempt_gids.n) &&
	    !(ret = rule_begin(&r, t, "p"))) {
		if (cfg->exempt_uids.n)
			m_owner(&r, false, cfg->exempt_uids.v[0]);
		if (cfg->exempt_gids.n)
			m_owner(&r, true, cfg->exempt_gids.v[0]);
		ret = put_rule(batch, &r);
	}
	/*
	 * Only what this configuration uses: even an aborted redir rule
	 * registers conntrack in the namespace for a moment, which TPROXY
	 * mode must never do.
	 */
	if (!tproxy) {
		if (!ret && !(ret = rule_begin(&r, t, "p"))) {
			m_tcp(&r);
			s_redirect(&r, cfg->capture_port);
			ret = put_rule(batch, &r);
		}
		goto out;
	}
	if (!ret && cfg->notrack && !(ret = rule_begin(&r, t, "p"))) {
		m_tcp(&r);
		s_notrack(&r);
		ret = put_rule(batch, &r);
	}
	if (!ret && cfg->notrack && cfg->outbound && !(ret = rule_begin(&r, t, "p"))) {
		m_tcp(&r);
		m_socket_mark(&r, TPIN_DEFAULT_PROXY_MARK);
		ret = put_rule(batch, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "p"))) {
		m_tcp(&r);
		m_socket_transparent(&r, 1);
		ret = put_rule(batch, &r);
	}
	if (!ret && !(ret = rule_begin(&r, t, "p"))) {
		m_tcp(&r);
		m_socket(&r, NFT_SOCKET_WILDCARD, NFT_CMP_EQ, 1);
		ret = put_rule(batch, &r);
	}
	if (!ret && !cfg->upstream_localhost && !(ret = rule_begin(&r, t, "p"))) {
		m_tcp(&r);
		s_reject_reset(&r);
		ret = put_rule(batch, &r);
	}
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		ret = rule_begin(&r, t, "p");
		if (ret)
			break;
		m_tcp(&r);
		s_tproxy(&r, fam, cfg->capture_port);
		ret = put_rule(batch, &r);
	}
out:
	/* Deleting a table nobody made fails, so the kernel commits nothing. */
	return ret ? ret : put_table(batch, NFT_MSG_DELTABLE, "tpin_probe_absent", NULL);
}

int tpin_nft_batch_close(struct tpin_nft_batch *batch)
{
	if (batch->closed)
		return 0;
	if (reserve(batch))
		return -ENOMEM;
	nftnl_batch_end(batch->buf + batch->len, batch->seq++);
	batch->len += NLMSG_ALIGN(((struct nlmsghdr *)(batch->buf + batch->len))->nlmsg_len);
	batch->closed = true;
	return 0;
}

const void *tpin_nft_batch_data(const struct tpin_nft_batch *batch, size_t *len)
{
	*len = batch->len;
	return batch->buf;
}

size_t tpin_nft_batch_count(const struct tpin_nft_batch *batch)
{
	return batch->ncmds;
}

uint32_t tpin_nft_batch_seq(const struct tpin_nft_batch *batch, size_t i)
{
	return batch->cmds[i].seq;
}

const char *tpin_nft_batch_command(const struct tpin_nft_batch *batch, size_t i)
{
	return batch->cmds[i].text;
}

const char *tpin_nft_batch_describe(const struct tpin_nft_batch *batch, uint32_t seq)
{
	size_t i;

	for (i = 0; i < batch->ncmds; i++)
		if (batch->cmds[i].seq == seq)
			return batch->cmds[i].text;
	return NULL;
}

const struct nlmsghdr *tpin_nft_batch_msg(const struct tpin_nft_batch *batch, size_t i)
{
	return (const struct nlmsghdr *)(batch->buf + batch->cmds[i].offset);
}
