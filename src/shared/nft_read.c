// SPDX-License-Identifier: MIT
/*
 * Reads tpin's table back from the kernel as canonical text. A message tpin
 * built and the kernel's dump of the same object go through the same
 * libnftnl parsers and render to the same line, so tpin-init --check
 * (nft_diff.c) and the proxy's readiness compare the kernel's state, never
 * how it was written down.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "tpin/nft_read.h"
#include "tpin/nl.h"

#define ITEM_MAX 8192
#define DUMP_BUF 32768

/* Append a copy of @line. Returns 0 or -ENOMEM. */
static int lines_push(struct tpin_nft_lines *l, const char *line)
{
	if (l->n == l->cap) {
		size_t cap = l->cap * 2 + 32;
		char **v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = strdup(line);
	if (!l->v[l->n])
		return -ENOMEM;
	l->n++;
	return 0;
}

void tpin_nft_lines_free(struct tpin_nft_lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int cat(char *buf, size_t len, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int cat(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= len)
		return -ENOSPC;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *off)
		return -ENOSPC;
	*off += (size_t)n;
	return 0;
}

static int expr_cb(struct nftnl_expr *e, void *data)
{
	char **cursor = data, tmp[512];
	size_t off = 0;

	nftnl_expr_snprintf(tmp, sizeof(tmp), e, NFTNL_OUTPUT_DEFAULT, 0);
	/* cursor[0] is the buffer, cursor[1] its end: append "[name text]". */
	off = (size_t)(cursor[1] - cursor[0]);
	/* Out of room: a negative return stops nftnl_expr_foreach(), its own contract. */
	if (snprintf(cursor[0], off, "[%s %s] ", nftnl_expr_get_str(e, NFTNL_EXPR_NAME), tmp) >=
	    (int)off)
		return -1;
	cursor[0] += strlen(cursor[0]);
	return 0;
}

static int render_rule(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	char *cursor[2] = { buf, buf + len };
	size_t off = 0;
	int ret = -ENOMEM;

	if (!r)
		return ret;
	ret = -EBADMSG;
	if (nftnl_rule_nlmsg_parse(nlh, r) < 0)
		goto out;
	ret = -ENOSPC;
	if (cat(buf, len, &off, "rule %s: ", nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)))
		goto out;
	cursor[0] = buf + off;
	if (nftnl_expr_foreach(r, expr_cb, cursor) < 0)
		goto out;
	ret = (int)(cursor[0] - buf);
out:
	nftnl_rule_free(r);
	return ret;
}

/*
 * A table renders to nothing unless it is dormant: then every rule in it is
 * switched off, which --check must report, though each rule matches.
 */
static int render_table(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	const struct nlattr *attr;
	size_t off = 0;

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(attr) == NFTA_TABLE_FLAGS &&
		    !mnl_attr_validate(attr, MNL_TYPE_U32) &&
		    (ntohl(mnl_attr_get_u32(attr)) & NFT_TABLE_F_DORMANT))
			return cat(buf, len, &off,
				   "table is dormant (flags dormant): no rule applies")
				       ?: (int)off;
	}
	return 0;
}

static int render_chain(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	size_t off = 0;
	int ret = -ENOMEM;

	if (!c)
		return ret;
	ret = -EBADMSG;
	if (nftnl_chain_nlmsg_parse(nlh, c) < 0)
		goto out;
	if (!nftnl_chain_is_set(c, NFTNL_CHAIN_TYPE)) {
		ret = cat(buf, len, &off, "chain %s (regular)",
			  nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	} else {
		static const char *const hooks[] = { "prerouting", "input", "forward", "output",
						     "postrouting" };
		uint32_t hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
		uint32_t policy = nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY);

		ret = cat(buf, len, &off, "chain %s type %s hook %s priority %d policy %s",
			  nftnl_chain_get_str(c, NFTNL_CHAIN_NAME),
			  nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), hook < 5 ? hooks[hook] : "?",
			  nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO),
			  policy == NF_ACCEPT ? "accept"
			  : policy == NF_DROP ? "drop"
					      : "?");
	}
	if (!ret)
		ret = (int)off;
out:
	nftnl_chain_free(c);
	return ret;
}

static int render_set(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	struct nftnl_set *s = nftnl_set_alloc();
	size_t off = 0;
	int ret = -ENOMEM;

	if (!s)
		return ret;
	ret = -EBADMSG;
	if (nftnl_set_nlmsg_parse(nlh, s) < 0)
		goto out;
	ret = cat(buf, len, &off, "set %s key type %u len %u flags 0x%x",
		  nftnl_set_get_str(s, NFTNL_SET_NAME), nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE),
		  nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN),
		  /* The kernel may add flags of its own (none it reports today). */
		  nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_INTERVAL);
	if (!ret)
		ret = (int)off;
out:
	nftnl_set_free(s);
	return ret;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

#define ELEM_TEXT 48

/* Set elements as text keys ("hex" or "hex/end"), gathered across messages. */
struct elems {
	char name[64];
	char (*keys)[ELEM_TEXT];
	size_t n, cap;
};

/*
 * Parse the element list of a NEWSETELEM message by hand: libnftnl's parser
 * takes only the kernel's dump layout, not the one its own builder writes
 * (each element nest numbered instead of NFTA_LIST_ELEM), and both sides of
 * the comparison must go through the same code.
 */
static int elems_parse(const struct nlmsghdr *nlh, struct elems *el)
{
	const struct nlattr *attr, *elem, *a, *v;

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(attr) == NFTA_SET_ELEM_LIST_SET &&
		    !mnl_attr_validate(attr, MNL_TYPE_NUL_STRING))
			snprintf(el->name, sizeof(el->name), "%s", mnl_attr_get_str(attr));
		if (mnl_attr_get_type(attr) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(elem, attr) {
			char key[ELEM_TEXT] = "";
			size_t off = 0;
			uint32_t flags = 0;

			mnl_attr_for_each_nested(a, elem) {
				if (mnl_attr_get_type(a) == NFTA_SET_ELEM_FLAGS &&
				    !mnl_attr_validate(a, MNL_TYPE_U32))
					flags = ntohl(mnl_attr_get_u32(a));
				if (mnl_attr_get_type(a) != NFTA_SET_ELEM_KEY)
					continue;
				mnl_attr_for_each_nested(v, a) {
					const uint8_t *k = mnl_attr_get_payload(v);
					uint16_t j;

					for (j = 0;
					     j < mnl_attr_get_payload_len(v) && off + 3 < ELEM_TEXT;
					     j++)
						off += (size_t)snprintf(key + off, ELEM_TEXT - off,
									"%02x", k[j]);
				}
			}
			if (el->n == el->cap) {
				size_t cap = el->cap * 2 + 16;
				char(*keys)[ELEM_TEXT] = realloc(el->keys, cap * sizeof(*keys));

				if (!keys)
					return -ENOMEM;
				el->keys = keys;
				el->cap = cap;
			}
			snprintf(el->keys[el->n++], ELEM_TEXT, "%s%s", key,
				 flags & NFT_SET_ELEM_INTERVAL_END ? "/end" : "");
		}
	}
	return 0;
}

/* "set NAME elements: k1 k2 ...", sorted: the kernel dumps in its own order. */
static int elems_render(struct elems *el, char *buf, size_t len)
{
	size_t i, off = 0;
	int ret;

	if (el->n) /* keys is NULL when there are none */
		qsort(el->keys, el->n, sizeof(*el->keys), key_cmp);
	ret = cat(buf, len, &off, "set %s elements:", el->name);
	for (i = 0; !ret && i < el->n; i++)
		ret = cat(buf, len, &off, " %s", el->keys[i]);
	return ret ? ret : (int)off;
}

int tpin_nft_render(const struct nlmsghdr *nlh, char *buf, size_t len)
{
	struct elems el = { 0 };
	int ret;

	switch (NFNL_MSG_TYPE(nlh->nlmsg_type)) {
	case NFT_MSG_NEWTABLE:
		return render_table(nlh, buf, len);
	case NFT_MSG_NEWRULE:
		return render_rule(nlh, buf, len);
	case NFT_MSG_NEWCHAIN:
		return render_chain(nlh, buf, len);
	case NFT_MSG_NEWSET:
		return render_set(nlh, buf, len);
	case NFT_MSG_NEWSETELEM:
		ret = elems_parse(nlh, &el);
		if (!ret)
			ret = elems_render(&el, buf, len);
		free(el.keys);
		return ret;
	default:
		return 0;
	}
}

/* A rule's line carries its position in its chain: order matters. */
int tpin_nft_lines_add(struct tpin_nft_lines *l, const struct nlmsghdr *nlh)
{
	char *buf = malloc(ITEM_MAX), *key = NULL;
	int ret = -ENOMEM, n;

	if (!buf)
		return ret;
	n = tpin_nft_render(nlh, buf, ITEM_MAX);
	if (n <= 0) {
		ret = n;
		goto out;
	}
	if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWRULE) {
		const char *chain = buf + strlen("rule ");
		size_t clen = strcspn(chain, ":");

		if (clen >= sizeof(l->chain) || strncmp(l->chain, chain, clen) || l->chain[clen]) {
			snprintf(l->chain, sizeof(l->chain), "%.*s", (int)clen, chain);
			l->rule_no = 0;
		}
		if (asprintf(&key, "#%zu %s", ++l->rule_no, buf) < 0) {
			key = NULL;
			goto out;
		}
	}
	ret = lines_push(l, key ? key : buf);
out:
	free(key);
	free(buf);
	return ret;
}

struct dump {
	struct mnl_socket *nl;
	uint32_t seq;
	char buf[DUMP_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
};

struct dump_ctx {
	const char *table; /* dumps cover the whole family: keep only this table */
	struct tpin_nft_lines *lines;
	struct elems *elems; /* set elements accumulate here across messages */
	char *comment;	     /* the table's comment goes here, when not NULL */
	size_t comment_len;
	int err;
};

static int comment_cb(const struct nftnl_udata *attr, void *data)
{
	const char **comment = data;
	const char *value = nftnl_udata_get(attr);
	uint8_t len = nftnl_udata_len(attr);

	/* nft writes it NUL-terminated; take nothing else. */
	if (nftnl_udata_type(attr) == NFTNL_UDATA_TABLE_COMMENT && len && !value[len - 1])
		*comment = value;
	return 0;
}

/* The comment of the table message @nlh, into ctx->comment ("" for none). */
static int read_comment(const struct nlmsghdr *nlh, struct dump_ctx *ctx)
{
	struct nftnl_table *t = nftnl_table_alloc();
	const char *comment = NULL;
	const void *ud;
	uint32_t len = 0;

	if (!t)
		return -ENOMEM;
	ctx->comment[0] = '\0';
	if (nftnl_table_nlmsg_parse(nlh, t) < 0) {
		nftnl_table_free(t);
		return -EBADMSG;
	}
	ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
	if (ud && nftnl_udata_parse(ud, len, comment_cb, &comment) >= 0 && comment)
		snprintf(ctx->comment, ctx->comment_len, "%s", comment);
	nftnl_table_free(t);
	return 0;
}

/*
 * Whether @nlh (a chain, rule, set or set elements message) belongs to
 * @table: attribute 1 is the table's name in all four.
 */
static bool in_table(const struct nlmsghdr *nlh, const char *table)
{
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(attr) == NFTA_CHAIN_TABLE)
			return !mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) &&
			       !strcmp(mnl_attr_get_str(attr), table);
	return false;
}

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *ctx = data;

	if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWTABLE && !in_table(nlh, ctx->table))
		return MNL_CB_OK;
	if (NFNL_MSG_TYPE(nlh->nlmsg_type) == NFT_MSG_NEWTABLE && ctx->comment && !ctx->err)
		ctx->err = read_comment(nlh, ctx);

	if (ctx->elems) {
		if (!ctx->err)
			ctx->err = elems_parse(nlh, ctx->elems);
		return MNL_CB_OK;
	}
	if (!ctx->err)
		ctx->err = tpin_nft_lines_add(ctx->lines, nlh);
	return MNL_CB_OK;
}

/* Send one GET request and feed every answer to dump_cb. */
static int dump_run(struct dump *d, uint16_t type, uint16_t flags, void *obj, struct dump_ctx *ctx)
{
	struct nlmsghdr *nlh =
		nftnl_nlmsg_build_hdr(d->buf, type, NFPROTO_INET, NLM_F_ACK | flags, ++d->seq);
	int ret;

	switch (type) {
	case NFT_MSG_GETTABLE:
		nftnl_table_nlmsg_build_payload(nlh, obj);
		break;
	case NFT_MSG_GETCHAIN:
		nftnl_chain_nlmsg_build_payload(nlh, obj);
		break;
	case NFT_MSG_GETSET:
		nftnl_set_nlmsg_build_payload(nlh, obj);
		break;
	case NFT_MSG_GETSETELEM:
		nftnl_set_elems_nlmsg_build_payload(nlh, obj);
		break;
	case NFT_MSG_GETRULE:
		nftnl_rule_nlmsg_build_payload(nlh, obj);
		break;
	}
	ret = tpin_nl_talk(d->nl, nlh, d->buf, sizeof(d->buf), dump_cb, ctx);
	return ret ? ret : ctx->err;
}

static int dump_open(struct dump *d)
{
	d->seq = (uint32_t)time(NULL);
	return tpin_nl_open(NETLINK_NETFILTER, &d->nl);
}

/* A throwaway table/set/chain/rule object naming @table, for GET requests. */
static int table_query(struct dump *d, const char *table, struct dump_ctx *ctx)
{
	struct nftnl_table *t = nftnl_table_alloc();
	int ret;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
	ret = dump_run(d, NFT_MSG_GETTABLE, 0, t, ctx);
	nftnl_table_free(t);
	return ret;
}

int tpin_nft_table_state(const char *table)
{
	struct tpin_nft_lines lines = { 0 };
	struct dump_ctx ctx = { table, &lines, NULL, NULL, 0, 0 };
	struct dump *d = calloc(1, sizeof(*d));
	struct nftnl_rule *r = nftnl_rule_alloc();
	bool dormant = false, intercepts = false;
	size_t i;
	int ret = -ENOMEM;

	if (!d || !r)
		goto out;
	ret = dump_open(d);
	if (!ret)
		ret = table_query(d, table, &ctx);
	if (!ret) {
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
		ret = dump_run(d, NFT_MSG_GETRULE, NLM_F_DUMP, r, &ctx);
	}
	/*
	 * A table that is there but flushed, dormant or without a tproxy or
	 * redirect statement intercepts nothing: the pod is not protected.
	 */
	for (i = 0; !ret && i < lines.n; i++) {
		dormant |= !strncmp(lines.v[i], "table is dormant", 16);
		intercepts |= strstr(lines.v[i], "[tproxy ") || strstr(lines.v[i], "[redir ");
	}
out:
	if (d && d->nl)
		mnl_socket_close(d->nl);
	free(d);
	if (r)
		nftnl_rule_free(r);
	tpin_nft_lines_free(&lines);
	if (ret == -ENOENT)
		return TPIN_NFT_TABLE_ABSENT;
	if (ret)
		return ret;
	return intercepts && !dormant ? TPIN_NFT_TABLE_ACTIVE : TPIN_NFT_TABLE_INERT;
}

/* Read the live sets (with elements), chains and rules of @table. */
static int read_live(struct dump *d, const char *table, struct tpin_nft_lines *live)
{
	struct dump_ctx ctx = { table, live, NULL, NULL, 0, 0 };
	struct tpin_nft_lines sets = { 0 };
	struct elems el = { 0 };
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_rule *r = nftnl_rule_alloc();
	size_t i;
	int ret = -ENOMEM;

	if (!c || !s || !r)
		goto out;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, table);
	ctx.lines = &sets;
	ret = dump_run(d, NFT_MSG_GETSET, NLM_F_DUMP, s, &ctx);
	ctx.lines = live;
	for (i = 0; !ret && i < sets.n; i++) {
		char name[64], buf[ITEM_MAX / 2];
		int n;

		ret = lines_push(live, sets.v[i]);
		if (ret || sscanf(sets.v[i], "set %63s", name) != 1)
			break;
		nftnl_set_set_str(s, NFTNL_SET_NAME, name);
		snprintf(el.name, sizeof(el.name), "%s", name);
		el.n = 0;
		ctx.elems = &el;
		ret = dump_run(d, NFT_MSG_GETSETELEM, NLM_F_DUMP, s, &ctx);
		ctx.elems = NULL;
		n = ret ? ret : elems_render(&el, buf, sizeof(buf));
		ret = n < 0 ? n : lines_push(live, buf);
	}
	if (!ret) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
		ret = dump_run(d, NFT_MSG_GETCHAIN, NLM_F_DUMP, c, &ctx);
	}
	if (!ret) {
		nftnl_rule_set_str(r, NFTNL_RULE_TABLE, table);
		ret = dump_run(d, NFT_MSG_GETRULE, NLM_F_DUMP, r, &ctx);
	}
out:
	free(el.keys);
	tpin_nft_lines_free(&sets);
	/* libnftnl's free functions do not take NULL. */
	if (c)
		nftnl_chain_free(c);
	if (s)
		nftnl_set_free(s);
	if (r)
		nftnl_rule_free(r);
	return ret;
}

int tpin_nft_read_table(const char *table, struct tpin_nft_lines *lines, char *comment,
			size_t comment_len)
{
	struct dump_ctx ctx = { table, lines, NULL, comment, comment_len, 0 };
	struct dump *d = calloc(1, sizeof(*d));
	int ret;

	if (!d)
		return -ENOMEM;
	ret = dump_open(d);
	/* The table itself first: it says whether it is there, and dormant. */
	if (!ret)
		ret = table_query(d, table, &ctx);
	if (!ret)
		ret = read_live(d, table, lines);
	if (d->nl)
		mnl_socket_close(d->nl);
	free(d);
	return ret;
}
