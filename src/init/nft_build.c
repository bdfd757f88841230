// SPDX-License-Identifier: MIT
/*
 * Builds tpin's nftables transaction: the table, its comment (a digest of
 * everything in it, so readiness can tell with one dump whether the live
 * table is still exactly this), its sets and chains, in one batch. Also the
 * transaction that deletes it and the preflight's probe. The rules are in
 * nft_prerouting.c and nft_output.c, the vocabulary in nft_rule.h.
 */

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tpin/config.h"
#include "tpin/nft_batch.h"
#include "tpin/nft_read.h"
#include "tpin/nft_verify.h"
#include "ruleset.h"

int tpin_nft_build_delete(struct tpin_nft_batch *batch, const char *name)
{
	/*
	 * Deleting a missing table fails the whole batch, and nft's "destroy"
	 * needs a 6.3 kernel: adding it first (a no-op when it exists) makes
	 * the delete always valid.
	 */
	int ret = nft_put_table(batch, NFT_MSG_NEWTABLE, name, NULL);

	return ret ? ret : nft_put_table(batch, NFT_MSG_DELTABLE, name, NULL);
}

/* Everything in the table: sets and their elements, chains, rules. */
static int put_contents(struct tpin_nft_batch *batch, const struct tpin_config *cfg)
{
	const char *t = cfg->table_name;
	struct sets ids = { 0 };
	bool tproxy = cfg->mode == TPIN_MODE_TPROXY;
	char chain_words[64];
	int ret;

	ids.excluded = nft_batch_set_id(batch);
	ret = nft_put_port_set(batch, t, "exclude_ports", &cfg->excluded, ids.excluded);
	if (!ret && !cfg->inbound.all) {
		ids.inbound = nft_batch_set_id(batch);
		ret = nft_put_port_set(batch, t, "inbound_ports", &cfg->inbound, ids.inbound);
	}
	if (!ret && tpin_cidrs_count(&cfg->exclude_sources, AF_INET)) {
		ids.sources4 = nft_batch_set_id(batch);
		ret = nft_put_cidr_set(batch, t, "exclude_sources4", &cfg->exclude_sources, AF_INET,
				       ids.sources4);
	}
	if (!ret && cfg->ipv6 && tpin_cidrs_count(&cfg->exclude_sources, AF_INET6)) {
		ids.sources6 = nft_batch_set_id(batch);
		ret = nft_put_cidr_set(batch, t, "exclude_sources6", &cfg->exclude_sources,
				       AF_INET6, ids.sources6);
	}
	if (!ret && cfg->outbound)
		ret = ruleset_outbound_sets(batch, cfg, &ids);
	if (ret)
		return ret;
	snprintf(chain_words, sizeof(chain_words), "type filter hook prerouting priority %s",
		 tpin_prio_name(cfg));
	if (tproxy)
		ret = nft_put_chain(batch, t, "prerouting", "filter", NF_INET_PRE_ROUTING,
				    tpin_prio(cfg), chain_words);
	else
		ret = nft_put_chain(batch, t, "prerouting", "nat", NF_INET_PRE_ROUTING, PRIO_DSTNAT,
				    "type nat hook prerouting priority dstnat");
	if (!ret)
		ret = tproxy ? ruleset_tproxy_prerouting(batch, cfg, &ids)
			     : ruleset_redirect_prerouting(batch, cfg, &ids);
	/* The outbound chain before the rule that jumps to it: nft looks it up then. */
	if (!ret && cfg->outbound)
		ret = ruleset_outbound_chain(batch, cfg, &ids);
	if (!ret && tproxy &&
	    (cfg->preserve_source || tpin_config_outbound_tproxy(cfg) || cfg->notrack))
		ret = ruleset_output_chain(batch, cfg, &ids);
	/* Outbound NAT: -m redirect, or Istio's TPROXY mode (--outbound-mode redirect). */
	if (!ret && tpin_config_outbound_nat(cfg))
		ret = ruleset_redirect_output(batch, cfg);
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
	for (i = 0; !ret && i < tpin_nft_batch_count(scratch); i++)
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
		ret = nft_put_table(batch, NFT_MSG_NEWTABLE, cfg->table_name, digest);
	return ret ? ret : put_contents(batch, cfg);
}

int tpin_nft_build_probe(struct tpin_nft_batch *batch, const struct tpin_config *cfg)
{
	static const char t[] = "tpin_probe";
	bool tproxy = cfg->mode == TPIN_MODE_TPROXY;
	struct nft_rule r;
	int ret, fam;

	/*
	 * A regular chain: the kernel looks every expression up when the rule
	 * is added, and aborting a batch that registered a hook would cost an
	 * RCU grace period (about 10 ms here) for nothing.
	 */
	ret = nft_put_table(batch, NFT_MSG_NEWTABLE, t, NULL);
	if (!ret)
		ret = nft_put_chain(batch, t, "p", NULL, 0, 0, NULL);
	/* Both modes: the anti-spoofing and local-destination rules. */
	if (!ret && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_fib_local(&r, true, NFT_CMP_EQ);
		ret = nft_rule_put(batch, &r);
	}
	/* Outbound capture in both modes: the owners it exempts. */
	if (!ret && cfg->outbound && (cfg->exempt_uids.n || cfg->exempt_gids.n) &&
	    !(ret = nft_rule_begin(&r, t, "p"))) {
		if (cfg->exempt_uids.n)
			match_owner(&r, false, cfg->exempt_uids.v[0]);
		if (cfg->exempt_gids.n)
			match_owner(&r, true, cfg->exempt_gids.v[0]);
		ret = nft_rule_put(batch, &r);
	}
	/*
	 * Only what this configuration uses: even an aborted redir rule
	 * registers conntrack in the namespace for a moment, which TPROXY
	 * both ways must never do.
	 */
	if (!tproxy) {
		if (!ret && !(ret = nft_rule_begin(&r, t, "p"))) {
			match_tcp(&r);
			stmt_redirect(&r, cfg->capture_port);
			ret = nft_rule_put(batch, &r);
		}
		goto out;
	}
	/* Outbound NAT beside TPROXY inbound: conntrack is wanted here anyway. */
	if (!ret && tpin_config_outbound_nat(cfg) && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_tcp(&r);
		stmt_redirect(&r, cfg->outbound_port);
		ret = nft_rule_put(batch, &r);
	}
	if (!ret && cfg->notrack && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_tcp(&r);
		stmt_notrack(&r);
		ret = nft_rule_put(batch, &r);
	}
	if (!ret && cfg->notrack && cfg->outbound && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_tcp(&r);
		match_socket_mark(&r, TPIN_DEFAULT_PROXY_MARK);
		ret = nft_rule_put(batch, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_tcp(&r);
		match_socket_transparent(&r, 1);
		ret = nft_rule_put(batch, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_tcp(&r);
		match_socket(&r, NFT_SOCKET_WILDCARD, NFT_CMP_EQ, 1);
		ret = nft_rule_put(batch, &r);
	}
	if (!ret && !cfg->upstream_localhost && !(ret = nft_rule_begin(&r, t, "p"))) {
		match_tcp(&r);
		stmt_reject_reset(&r);
		ret = nft_rule_put(batch, &r);
	}
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		ret = nft_rule_begin(&r, t, "p");
		if (ret)
			break;
		match_tcp(&r);
		stmt_tproxy(&r, fam, cfg->capture_port);
		ret = nft_rule_put(batch, &r);
	}
out:
	/* Deleting a table nobody made fails, so the kernel commits nothing. */
	return ret ? ret : nft_put_table(batch, NFT_MSG_DELTABLE, "tpin_probe_absent", NULL);
}
