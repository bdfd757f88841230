// SPDX-License-Identifier: MIT
/*
 * The output side: the output chain of tproxy mode, which captures the
 * app's own connections (and with --preserve-source its answers), the
 * outbound chain of filters it jumps to, and redirect mode's nat output
 * chain. docs/ruleset.md's "Outbound capture" explains it.
 */

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "tpin/config.h"
#include "tpin/nft_batch.h"
#include "ruleset.h"

/* The sets of outbound capture: only those its flags name. */
int ruleset_outbound_sets(struct tpin_nft_batch *batch, const struct tpin_config *cfg,
			  struct sets *ids)
{
	const char *t = cfg->table_name;
	int ret = 0;

	if (!cfg->out_ports.all) {
		ids->out_ports = nft_batch_set_id(batch);
		ret = nft_put_port_set(batch, t, "outbound_ports", &cfg->out_ports, ids->out_ports);
	}
	if (!ret && cfg->out_excluded.n) {
		ids->out_excluded = nft_batch_set_id(batch);
		ret = nft_put_port_set(batch, t, "outbound_exclude_ports", &cfg->out_excluded,
				       ids->out_excluded);
	}
	if (!ret && !cfg->out_all && tpin_config_captures_family(cfg, AF_INET)) {
		ids->out_include4 = nft_batch_set_id(batch);
		ret = nft_put_cidr_set(batch, t, "outbound_include4", &cfg->out_include, AF_INET,
				       ids->out_include4);
	}
	if (!ret && !cfg->out_all && tpin_config_captures_family(cfg, AF_INET6)) {
		ids->out_include6 = nft_batch_set_id(batch);
		ret = nft_put_cidr_set(batch, t, "outbound_include6", &cfg->out_include, AF_INET6,
				       ids->out_include6);
	}
	if (!ret && tpin_cidrs_count(&cfg->out_exclude, AF_INET)) {
		ids->out_exclude4 = nft_batch_set_id(batch);
		ret = nft_put_cidr_set(batch, t, "outbound_exclude4", &cfg->out_exclude, AF_INET,
				       ids->out_exclude4);
	}
	if (!ret && cfg->ipv6 && tpin_cidrs_count(&cfg->out_exclude, AF_INET6)) {
		ids->out_exclude6 = nft_batch_set_id(batch);
		ret = nft_put_cidr_set(batch, t, "outbound_exclude6", &cfg->out_exclude, AF_INET6,
				       ids->out_exclude6);
	}
	return ret;
}

/*
 * The outbound filters, -u -g -o -x -i -q, in a regular chain of their own:
 * the base chain sends only TCP packets of the pod's own sockets here. What
 * passes them is captured: marked for table 133 (tproxy) or redirected
 * (redirect mode).
 */
int ruleset_outbound_chain(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			   const struct sets *ids)
{
	const char *t = cfg->table_name;
	bool tproxy = tpin_config_outbound_tproxy(cfg);
	struct nft_rule r;
	size_t i;
	int ret, fam, gid;

	ret = nft_put_chain(b, t, "outbound", NULL, 0, 0, NULL);
	for (gid = 0; !ret && gid <= 1; gid++) {
		const struct tpin_ids *owners = gid ? &cfg->exempt_gids : &cfg->exempt_uids;

		for (i = 0; !ret && i < owners->n; i++) {
			ret = nft_rule_begin(&r, t, "outbound");
			if (ret)
				break;
			match_owner(&r, gid, owners->v[i]);
			stmt_verdict(&r, NFT_RETURN);
			ret = nft_rule_put(b, &r);
		}
	}
	if (!ret && ids->out_excluded && !(ret = nft_rule_begin(&r, t, "outbound"))) {
		match_port_in_set(&r, true, "outbound_exclude_ports", ids->out_excluded, true);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && ids->out_exclude4 && !(ret = nft_rule_begin(&r, t, "outbound"))) {
		match_addr_in_set(&r, AF_INET, true, "outbound_exclude4", ids->out_exclude4);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && ids->out_exclude6 && !(ret = nft_rule_begin(&r, t, "outbound"))) {
		match_addr_in_set(&r, AF_INET6, true, "outbound_exclude6", ids->out_exclude6);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	/* One rule for every destination, or one per family of -i's CIDRs. */
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		uint32_t include = fam == AF_INET ? ids->out_include4 : ids->out_include6;

		if (cfg->out_all && fam == AF_INET6)
			break;
		if (!cfg->out_all && !include)
			continue;
		ret = nft_rule_begin(&r, t, "outbound");
		if (ret)
			break;
		if (cfg->out_all)
			match_family_if(&r, cfg);
		else
			match_addr_in_set(&r, fam, true,
					  fam == AF_INET ? "outbound_include4"
							 : "outbound_include6",
					  include);
		if (ids->out_ports)
			match_port_in_set(&r, true, "outbound_ports", ids->out_ports, true);
		else
			match_tcp(&r);
		if (tproxy) {
			stmt_mark(&r, cfg->mark);
			stmt_notrack_if(&r, cfg);
		} else {
			stmt_redirect(&r, cfg->outbound_port);
		}
		ret = nft_rule_put(b, &r);
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
int ruleset_output_chain(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			 const struct sets *ids)
{
	const char *t = cfg->table_name;
	bool outbound = tpin_config_outbound_tproxy(cfg), broad = outbound || cfg->notrack;
	char chain_words[64];
	struct nft_rule r;
	int ret = 0, fam, daddr;

	snprintf(chain_words, sizeof(chain_words), "type route hook output priority %s",
		 tpin_prio_name(cfg));
	ret = nft_put_chain(b, t, "output", "route", NF_INET_LOCAL_OUT, tpin_prio(cfg),
			    chain_words);
	if (!ret && broad && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_not_tcp(&r);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && broad && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_mark(&r, NFT_CMP_EQ, TPIN_DEFAULT_PROXY_MARK);
		stmt_notrack_if(&r, cfg);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && cfg->notrack && cfg->preserve_source &&
	    !(ret = nft_rule_begin(&r, t, "output"))) {
		/* The proxy's connections to the app from the client's address. */
		match_socket_transparent(&r, 1);
		stmt_notrack(&r);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	for (fam = AF_INET; !ret && cfg->notrack && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		for (daddr = 0; !ret && daddr <= 1; daddr++) {
			ret = nft_rule_begin(&r, t, "output");
			if (ret)
				break;
			match_passthrough(&r, fam, daddr);
			stmt_notrack(&r);
			stmt_verdict(&r, NFT_RETURN);
			ret = nft_rule_put(b, &r);
		}
	}
	if (!ret && cfg->notrack && outbound && !(ret = nft_rule_begin(&r, t, "output"))) {
		/* The resets the outbound divert sends the app, from the remote's address. */
		match_family_if(&r, cfg);
		match_rst(&r);
		match_fib_local(&r, false, NFT_CMP_NEQ);
		stmt_notrack(&r);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && outbound && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_fib_local(&r, true, NFT_CMP_EQ);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_port_in_set(&r, false, "exclude_ports", ids->excluded, true);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && ids->sources4 && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_addr_in_set(&r, AF_INET, true, "exclude_sources4", ids->sources4);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && ids->sources6 && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_addr_in_set(&r, AF_INET6, true, "exclude_sources6", ids->sources6);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && cfg->preserve_source && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_mark(&r, NFT_CMP_EQ, 0);
		match_tcp(&r);
		match_port_in_set(&r, false, "inbound_ports", ids->inbound, false);
		match_fib_local(&r, true, NFT_CMP_NEQ);
		match_socket_transparent(&r, 0);
		stmt_mark(&r, cfg->mark);
		stmt_notrack_if(&r, cfg);
		ret = nft_rule_put(b, &r);
	}
	/* A socket's packet: the outbound chain's, or (without it) not tpin's. */
	if (!ret && broad && !(ret = nft_rule_begin(&r, t, "output"))) {
		match_socket_transparent(&r, 0);
		if (outbound)
			stmt_goto(&r, "outbound");
		else
			stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && cfg->notrack && !cfg->upstream_localhost &&
	    !(ret = nft_rule_begin(&r, t, "output"))) {
		match_family_if(&r, cfg);
		match_rst(&r);
		if (ids->inbound)
			match_port_in_set(&r, false, "inbound_ports", ids->inbound, false);
		stmt_notrack(&r);
		ret = nft_rule_put(b, &r);
	}
	return ret;
}

/*
 * REDIRECT outbound, as Istio's nat OUTPUT: a connection's first packet
 * only, so the app's answers to clients need no exemption; the proxy's own
 * connections (its mark) and local destinations leave, the outbound chain
 * decides the rest and redirects to the outbound port. Istio's TPROXY mode
 * (-m tproxy --outbound-mode redirect) has it beside TPROXY inbound, where
 * --preserve-source may want a route output chain too: there it is named
 * nat_output, so the two never share a name.
 */
int ruleset_redirect_output(struct tpin_nft_batch *b, const struct tpin_config *cfg)
{
	const char *t = cfg->table_name;
	const char *c = cfg->mode == TPIN_MODE_TPROXY ? "nat_output" : "output";
	struct nft_rule r;
	int ret;

	ret = nft_put_chain(b, t, c, "nat", NF_INET_LOCAL_OUT, PRIO_DSTNAT,
			    "type nat hook output priority -100");
	if (!ret && !(ret = nft_rule_begin(&r, t, c))) {
		match_not_tcp(&r);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, c))) {
		match_mark(&r, NFT_CMP_EQ, TPIN_DEFAULT_PROXY_MARK);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, c))) {
		match_fib_local(&r, true, NFT_CMP_EQ);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, c))) {
		stmt_goto(&r, "outbound");
		ret = nft_rule_put(b, &r);
	}
	return ret;
}
