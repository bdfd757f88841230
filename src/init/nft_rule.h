/* SPDX-License-Identifier: MIT */
/*
 * The vocabulary tpin-init's ruleset is written in, private to src/init:
 * the objects of a table (nft_objects.c) and rules built step by step
 * (nft_rule.c), both appended to a batch (tpin/nft_batch.h). Each adds its
 * netlink and its nft words together, so --dry-run prints exactly what is
 * sent.
 */
#ifndef TPIN_INIT_NFT_RULE_H
#define TPIN_INIT_NFT_RULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nftnl_rule;
struct tpin_cidrs;
struct tpin_nft_batch;
struct tpin_ports;

/* Netfilter hook priorities by name, as nft spells them. */
#define PRIO_RAW    (-300)
#define PRIO_MANGLE (-150)
#define PRIO_DSTNAT (-100)

/* The longest nft text of one rule; longer is cut (the netlink is whole). */
#define NFT_RULE_TEXT_MAX 256

/*
 * The objects. Each returns 0 or -ENOMEM.
 *
 * nft_put_table() - add (@type NFT_MSG_NEWTABLE, with @comment or NULL) or
 * delete (NFT_MSG_DELTABLE) table inet @name.
 * nft_put_port_set(), nft_put_cidr_set() - an interval set @name with set id
 * @id, then its elements: @ports, or the @family entries of @cidrs.
 * nft_put_chain() - chain @name; a base chain when @type is not NULL (hook
 * @hook, priority @prio, policy accept, @words its nft description), else a
 * regular chain.
 */
int nft_put_table(struct tpin_nft_batch *b, uint16_t type, const char *name, const char *comment);
int nft_put_port_set(struct tpin_nft_batch *b, const char *table, const char *name,
		     const struct tpin_ports *ports, uint32_t id);
int nft_put_cidr_set(struct tpin_nft_batch *b, const char *table, const char *name,
		     const struct tpin_cidrs *cidrs, int family, uint32_t id);
int nft_put_chain(struct tpin_nft_batch *b, const char *table, const char *name, const char *type,
		  uint32_t hook, int32_t prio, const char *words);

/*
 * A rule under construction: its libnftnl object and its nft words. Each
 * match_ and stmt_ step adds one match or statement to both. A failed
 * allocation is remembered and reported once, by nft_rule_put().
 */
struct nft_rule {
	struct nftnl_rule *r;
	int err;
	char text[NFT_RULE_TEXT_MAX];
	size_t len;
};

/* nft_rule_begin() - an empty rule of @table's @chain. 0 or -ENOMEM. */
int nft_rule_begin(struct nft_rule *r, const char *table, const char *chain);

/*
 * nft_rule_put() - append @r to @b as the next message and free it, also on
 * error. 0, or -ENOMEM (now or at any step of the rule).
 */
int nft_rule_put(struct tpin_nft_batch *b, struct nft_rule *r);

/* Matches, in nft's words. @op is an NFT_CMP_ operator. */
void match_tcp(struct nft_rule *r);	      /* meta l4proto tcp */
void match_not_tcp(struct nft_rule *r);	      /* meta l4proto != tcp */
void match_ipv4_only(struct nft_rule *r);     /* meta nfproto ipv4 */
void match_syn(struct nft_rule *r, bool syn); /* tcp flags & (syn | ack) ==|!= syn */
void match_rst(struct nft_rule *r);	      /* tcp flags & rst == rst */
void match_socket(struct nft_rule *r, uint32_t key, uint32_t op,
		  uint8_t value);				  /* socket KEY op V */
void match_socket_transparent(struct nft_rule *r, uint8_t value); /* socket transparent V */
void match_socket_mark(struct nft_rule *r, uint32_t mark);	  /* socket mark M */
void match_owner(struct nft_rule *r, bool gid, uint32_t id);	  /* meta skuid|skgid ID */
void match_passthrough(struct nft_rule *r, int family,
		       bool daddr);		/* ip saddr|daddr 127.0.0.6, ::6 */
void match_iif_lo(struct nft_rule *r, bool lo); /* iif lo, iif != lo */
void match_port_in_set(struct nft_rule *r, bool dport, const char *set, uint32_t id,
		       bool need_tcp); /* tcp dport|sport @set */
void match_addr_in_set(struct nft_rule *r, int family, bool daddr, const char *set,
		       uint32_t id);				 /* ip|ip6 saddr|daddr @set */
void match_mark(struct nft_rule *r, uint32_t op, uint32_t mark); /* meta mark [!=] M */
void match_fib_local(struct nft_rule *r, bool daddr,
		     uint32_t op); /* fib saddr|daddr type [!=] local */

/* Statements, in nft's words. */
void stmt_mark(struct nft_rule *r, uint32_t mark);		 /* meta mark set M */
void stmt_tproxy(struct nft_rule *r, int family, uint16_t port); /* tproxy ip|ip6 to :P */
void stmt_redirect(struct nft_rule *r, uint16_t port);		 /* redirect to :P */
void stmt_reject_reset(struct nft_rule *r);			 /* reject with tcp reset */
void stmt_notrack(struct nft_rule *r);				 /* notrack */
void stmt_goto(struct nft_rule *r, const char *chain);		 /* goto CHAIN */
void stmt_verdict(struct nft_rule *r, int verdict);		 /* accept, drop, return */

#endif
