/* SPDX-License-Identifier: MIT */
#ifndef TPIN_NFT_READ_H
#define TPIN_NFT_READ_H

#include <stddef.h>

struct nlmsghdr;

/*
 * Reading an nftables table back (nft_read.c, shared by tpin-init --check
 * and the proxy's readiness), as canonical text: a built message and the
 * kernel's dump of the same object render to the same line, so comparing
 * lines compares the kernel's state, never how it was written down.
 */

/*
 * tpin_nft_render - the canonical text of one nftables message (a set, its
 * elements, a chain, a rule, or a dormant table) written to @buf. Rules list
 * their expressions as libnftnl prints them. Returns the length written, 0
 * for a message that renders to nothing (another kind, a live table), or
 * -errno (-ENOSPC when @len is too small, -EBADMSG).
 */
int tpin_nft_render(const struct nlmsghdr *nlh, char *buf, size_t len);

/* Rendered lines; a rule's line starts with its place in its chain, "#3 ". */
struct tpin_nft_lines {
	char **v;
	size_t n, cap;
	char chain[64]; /* the chain of the last rule added, for the numbering */
	size_t rule_no;
};

/*
 * tpin_nft_lines_add - render @nlh and append it to @lines, unless it
 * renders to nothing (rules of one chain must come in order). Returns 0 or
 * -errno.
 */
int tpin_nft_lines_add(struct tpin_nft_lines *lines, const struct nlmsghdr *nlh);

void tpin_nft_lines_free(struct tpin_nft_lines *lines);

/*
 * tpin_nft_read_table - append the live table inet @table of the current
 * network namespace to @lines: each set followed by its elements, then the
 * chains, then every chain's rules in order (a dormant table adds a line
 * saying so), and the table's comment to @comment ("" for none; @comment
 * may be NULL). Returns 0, -ENOENT when there is no such table, or -errno.
 */
int tpin_nft_read_table(const char *table, struct tpin_nft_lines *lines, char *comment,
			size_t comment_len);

enum tpin_nft_table_state {
	TPIN_NFT_TABLE_ABSENT,
	TPIN_NFT_TABLE_INERT,  /* there, but flushed, dormant, or intercepting nothing */
	TPIN_NFT_TABLE_ACTIVE, /* there, with a tproxy or redirect rule in force */
};

/*
 * tpin_nft_table_state - whether table inet @table in the current network
 * namespace is absent, inert or active (an enum tpin_nft_table_state), or
 * -errno when the kernel could not be asked.
 */
int tpin_nft_table_state(const char *table);

#endif
