// SPDX-License-Identifier: MIT
/*
 * The prerouting chain: what tpin does with a packet arriving at the pod,
 * from the network (inbound capture, anti-spoofing, closed ports) or on lo
 * (the app's captured outbound connections, and with --notrack the legs of
 * tpin's flows inside the pod). docs/ruleset.md explains every rule,
 * with the rule numbers used here; docs/paths.md follows packets through it.
 */

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "tpin/config.h"
#include "ruleset.h"

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
	struct nft_rule r;
	int ret = nft_rule_begin(&r, cfg->table_name, chain);

	if (ret)
		return ret;
	match_family_if(&r, cfg);
	match_iif_lo(&r, false);
	match_fib_local(&r, false, NFT_CMP_EQ);
	match_fib_local(&r, true, NFT_CMP_EQ);
	stmt_verdict(&r, NF_DROP);
	return nft_rule_put(b, &r);
}

/* iif lo return: traffic born in the pod is not inbound. */
static int put_lo_return(struct tpin_nft_batch *b, const struct tpin_config *cfg, const char *chain)
{
	struct nft_rule r;
	int ret = nft_rule_begin(&r, cfg->table_name, chain);

	if (ret)
		return ret;
	match_iif_lo(&r, true);
	stmt_verdict(&r, NFT_RETURN);
	return nft_rule_put(b, &r);
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
	struct nft_rule r;
	int ret;

	ret = nft_rule_begin(&r, t, chain);
	if (ret)
		return ret;
	match_port_in_set(&r, true, "exclude_ports", ids->excluded, true);
	stmt_verdict(&r, NFT_RETURN);
	ret = nft_rule_put(b, &r);
	if (!ret && ids->sources4 && !(ret = nft_rule_begin(&r, t, chain))) {
		match_addr_in_set(&r, AF_INET, false, "exclude_sources4", ids->sources4);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && ids->sources6 && !(ret = nft_rule_begin(&r, t, chain))) {
		match_addr_in_set(&r, AF_INET6, false, "exclude_sources6", ids->sources6);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, chain))) {
		match_fib_local(&r, true, NFT_CMP_NEQ);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	return ret;
}

/*
 * The match for "a TCP packet to an intercepted port". With IPv6 left out,
 * IPv6 traffic is left alone, not dropped.
 */
static void match_intercepted(struct nft_rule *r, const struct tpin_config *cfg,
			      const struct sets *ids)
{
	match_family_if(r, cfg);
	if (ids->inbound)
		match_port_in_set(r, true, "inbound_ports", ids->inbound, true);
	else
		match_tcp(r);
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
	struct nft_rule r;
	int ret;

	ret = nft_rule_begin(&r, t, "prerouting");
	if (ret)
		return ret;
	match_intercepted(&r, cfg, ids);
	match_syn(&r, true);
	match_socket(&r, NFT_SOCKET_TRANSPARENT, NFT_CMP_LTE, 1);
	stmt_mark(&r, cfg->mark);
	ret = nft_rule_put(b, &r);
	if (!ret && !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_intercepted(&r, cfg, ids);
		match_syn(&r, true);
		match_mark(&r, NFT_CMP_NEQ, cfg->mark);
		stmt_notrack_if(&r, cfg);
		stmt_reject_reset(&r);
		ret = nft_rule_put(b, &r);
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
	struct nft_rule r;
	int ret = 0, fam;

	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (!tpin_config_captures_family(cfg, fam))
			continue;
		ret = nft_rule_begin(&r, t, "prerouting");
		if (ret)
			break;
		match_iif_lo(&r, true);
		match_mark(&r, NFT_CMP_EQ, cfg->mark);
		match_tcp(&r);
		stmt_tproxy(&r, fam, cfg->outbound_port);
		stmt_notrack_if(&r, cfg);
		stmt_verdict(&r, NF_ACCEPT);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_iif_lo(&r, true);
		match_mark(&r, NFT_CMP_EQ, cfg->mark);
		match_tcp(&r);
		stmt_notrack_if(&r, cfg);
		stmt_reject_reset(&r);
		ret = nft_rule_put(b, &r);
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
	struct nft_rule r;
	int ret = 0, fam, daddr;

	if (tpin_config_outbound_tproxy(cfg) || cfg->preserve_source) {
		ret = nft_rule_begin(&r, t, "prerouting");
		if (ret)
			return ret;
		match_iif_lo(&r, true);
		match_family_if(&r, cfg);
		match_tcp(&r);
		match_fib_local(&r, false, NFT_CMP_NEQ);
		stmt_notrack(&r);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	for (fam = AF_INET; !ret && fam <= AF_INET6; fam += AF_INET6 - AF_INET) {
		if (fam == AF_INET6 && !cfg->ipv6)
			break;
		for (daddr = 0; !ret && daddr <= 1; daddr++) {
			ret = nft_rule_begin(&r, t, "prerouting");
			if (ret)
				break;
			match_iif_lo(&r, true);
			match_tcp(&r);
			match_passthrough(&r, fam, daddr);
			stmt_notrack(&r);
			stmt_verdict(&r, NFT_RETURN);
			ret = nft_rule_put(b, &r);
		}
	}
	return ret;
}

int ruleset_tproxy_prerouting(struct tpin_nft_batch *b, const struct tpin_config *cfg,
			      const struct sets *ids)
{
	const char *t = cfg->table_name;
	struct nft_rule r;
	int ret, fam;

	ret = put_antispoof(b, cfg, "prerouting");
	/*
	 * Packets of established transparent sockets skip the tproxy lookup,
	 * but never a SYN: a SYN matching a TIME_WAIT socket the proxy left
	 * would otherwise reopen a connection straight to the app.
	 */
	if (!ret && !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_tcp(&r);
		match_syn(&r, false);
		match_socket_transparent(&r, 1);
		stmt_mark(&r, cfg->mark);
		stmt_notrack_if(&r, cfg);
		stmt_verdict(&r, NF_ACCEPT);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && tpin_config_outbound_tproxy(cfg))
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
	if (!ret && cfg->notrack && tpin_config_outbound_tproxy(cfg) &&
	    !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_family_if(&r, cfg);
		match_tcp(&r);
		match_syn(&r, false);
		match_socket_mark(&r, TPIN_DEFAULT_PROXY_MARK);
		stmt_notrack(&r);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
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
		ret = nft_rule_begin(&r, t, "prerouting");
		if (ret)
			break;
		match_intercepted(&r, cfg, ids);
		stmt_tproxy(&r, fam, cfg->capture_port);
		stmt_mark(&r, cfg->mark);
		stmt_notrack_if(&r, cfg);
		stmt_verdict(&r, NF_ACCEPT);
		ret = nft_rule_put(b, &r);
	}
	/*
	 * What tproxy declined: a packet of an established socket that is not
	 * transparent (the answers to the pod's own connections, and its
	 * TIME_WAIT), which returns; or, with no proxy listening, one whose
	 * lookup falls back to the app's listener, which must not get it. A
	 * listener on every address is told by the wildcard key and dropped
	 * first (the key does not match TIME_WAIT, so those still return).
	 */
	if (!ret && !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_intercepted(&r, cfg, ids);
		match_syn(&r, false);
		match_socket(&r, NFT_SOCKET_WILDCARD, NFT_CMP_EQ, 1);
		stmt_verdict(&r, NF_DROP);
		ret = nft_rule_put(b, &r);
	}
	if (!ret && !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_intercepted(&r, cfg, ids);
		match_syn(&r, false);
		match_socket_transparent(&r, 0);
		stmt_verdict(&r, NFT_RETURN);
		ret = nft_rule_put(b, &r);
	}
	/*
	 * nft's tproxy lets the packet go on when no transparent socket
	 * listens: without this drop a client would reach the app directly
	 * while the proxy is down. Drop, not reject, so SYN retries carry the
	 * client over a proxy restart.
	 */
	if (!ret && !(ret = nft_rule_begin(&r, t, "prerouting"))) {
		match_intercepted(&r, cfg, ids);
		stmt_verdict(&r, NF_DROP);
		ret = nft_rule_put(b, &r);
	}
	return ret;
}

/*
 * REDIRECT: a nat chain, which sees only a connection's first packet, so
 * the anti-spoofing rule has a filter chain of its own, before conntrack
 * (raw priority) so a forged packet costs no conntrack entry either.
 */
int ruleset_redirect_prerouting(struct tpin_nft_batch *b, const struct tpin_config *cfg,
				const struct sets *ids)
{
	struct nft_rule r;
	int ret;

	ret = put_lo_return(b, cfg, "prerouting");
	if (!ret)
		ret = put_exclusions(b, cfg, "prerouting", ids);
	if (!ret)
		ret = nft_rule_begin(&r, cfg->table_name, "prerouting");
	if (ret)
		return ret;
	match_intercepted(&r, cfg, ids);
	stmt_redirect(&r, cfg->capture_port);
	ret = nft_rule_put(b, &r);
	if (!ret)
		ret = nft_put_chain(b, cfg->table_name, "antispoof", "filter", NF_INET_PRE_ROUTING,
				    PRIO_RAW, "type filter hook prerouting priority raw");
	return ret ? ret : put_antispoof(b, cfg, "antispoof");
}
