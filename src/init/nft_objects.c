// SPDX-License-Identifier: MIT
/*
 * The objects of an nftables table as batch messages: the table itself (with
 * its comment), interval sets of ports or addresses with their elements, and
 * chains. Each is one message (a set and its elements two), in netlink and
 * in nft's words.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libnftnl/chain.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "tpin/addr.h"
#include "tpin/nft_batch.h"
#include "nft_rule.h"

/* nft's datatype numbers, so `nft list` prints the sets' elements readably. */
#define NFT_TYPE_IPADDR	      7
#define NFT_TYPE_IP6ADDR      8
#define NFT_TYPE_INET_SERVICE 13

/*
 * add/delete table inet @name; a new table may carry @comment (NULL: none),
 * which nft shows as its comment: libnftnl's userdata TLV, as nft writes it.
 */
int nft_put_table(struct tpin_nft_batch *b, uint16_t type, const char *name, const char *comment)
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
	nlh = nft_msg_begin(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0);
	if (!nlh)
		goto out;
	nftnl_table_nlmsg_build_payload(nlh, t);
	if (comment)
		ret = nft_msg_end(b, nlh, "add table inet %s { comment \"%s\"; }", name, comment);
	else
		ret = nft_msg_end(b, nlh, "%s table inet %s",
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
	nlh = nft_msg_begin(b, NFT_MSG_NEWSET, NLM_F_CREATE);
	if (nlh) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		ret = nft_msg_end(b, nlh, "add set inet %s %s { type %s; flags interval; }", table,
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
	nlh = nft_msg_begin(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE);
	if (!nlh)
		return -ENOMEM;
	nftnl_set_elems_nlmsg_build_payload(nlh, l->set);
	return nft_msg_end(b, nlh, "add element inet %s %s { %s }", table, set_name, l->text);
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

int nft_put_port_set(struct tpin_nft_batch *b, const char *table, const char *name,
		     const struct tpin_ports *ports, uint32_t id)
{
	const struct set_spec spec = { name, "inet_service", NFT_TYPE_INET_SERVICE, 2, id };

	return put_interval_set(b, table, &spec, fill_ports, ports, 0);
}

int nft_put_cidr_set(struct tpin_nft_batch *b, const char *table, const char *name,
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

int nft_put_chain(struct tpin_nft_batch *b, const char *table, const char *name, const char *type,
		  uint32_t hook, int32_t prio, const char *words)
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
	nlh = nft_msg_begin(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE);
	if (nlh) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		if (type)
			ret = nft_msg_end(b, nlh, "add chain inet %s %s { %s; policy accept; }",
					  table, name, words);
		else
			ret = nft_msg_end(b, nlh, "add chain inet %s %s", table, name);
	}
	nftnl_chain_free(c);
	return ret;
}
