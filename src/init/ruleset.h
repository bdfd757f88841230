/* SPDX-License-Identifier: MIT */
/*
 * tpin's ruleset, private to src/init: the prerouting chain
 * (nft_prerouting.c), the output and outbound chains (nft_output.c), and
 * the table that holds them (nft_build.c). Each ruleset_ function appends
 * its part to the batch and returns 0 or -ENOMEM.
 */
#ifndef TPIN_INIT_RULESET_H
#define TPIN_INIT_RULESET_H

#include <stdint.h>

#include "tpin/config.h"
#include "nft_rule.h"

struct tpin_nft_batch;

/* Set ids tie a rule's lookup to a set created earlier in the same batch. */
struct sets {
	uint32_t excluded, inbound, sources4, sources6;
	uint32_t out_ports, out_excluded, out_include4, out_include6, out_exclude4, out_exclude6;
};

/* The chains' priority: raw with --notrack, so notrack comes before conntrack. */
static inline int32_t tpin_prio(const struct tpin_config *cfg)
{
	return cfg->notrack ? PRIO_RAW : PRIO_MANGLE;
}

static inline const char *tpin_prio_name(const struct tpin_config *cfg)
{
	return cfg->notrack ? "raw" : "mangle";
}

/* notrack, with --notrack: the statement every rule that takes one of tpin's flows carries. */
static inline void stmt_notrack_if(struct nft_rule *r, const struct tpin_config *cfg)
{
	if (cfg->notrack)
		stmt_notrack(r);
}

/* meta nfproto ipv4 first, with IPv6 left out (--no-ipv6): IPv6 is left alone. */
static inline void match_family_if(struct nft_rule *r, const struct tpin_config *cfg)
{
	if (!cfg->ipv6)
		match_ipv4_only(r);
}

/* The prerouting rules of each mode, in a prerouting chain made already. */
int ruleset_tproxy_prerouting(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			      const struct sets *ids);
int ruleset_redirect_prerouting(struct tpin_nft_batch *b, const struct tpin_config *cfg,
				const struct sets *ids);

/* The sets outbound capture's flags name; their ids go into @ids. */
int ruleset_outbound_sets(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			  struct sets *ids);

/* The outbound chain (-u -g -o -x -i -q), before any rule that jumps to it. */
int ruleset_outbound_chain(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			   const struct sets *ids);

/* The output chain of tproxy mode (TPROXY outbound, --preserve-source, --notrack). */
int ruleset_output_chain(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			 const struct sets *ids);

/* The nat output chain of outbound NAT (-m redirect, or --outbound-mode redirect). */
int ruleset_redirect_output(struct tpin_nft_batch *b, const struct tpin_config *cfg);

#endif
