/* SPDX-License-Identifier: MIT */
#ifndef TPIN_PROBE_H
#define TPIN_PROBE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Read-only questions to the kernel about what tpin-init installed, for the
 * proxy's self-check and readiness. Each returns 0 when the thing is there,
 * -ENOENT when it is not, or another -errno when the kernel could not be
 * asked (-EPERM without CAP_NET_ADMIN for nftables).
 */

/* What tpin_probe_ruleset() found last, and for which ruleset generation. */
struct tpin_probe_cache {
	bool valid;
	uint32_t gen;
	int result;
};

/*
 * tpin_probe_ruleset - whether table "inet @name" is still exactly what
 * tpin-init installed (the digest in its comment, tpin/nft_verify.h): 0,
 * -ENOENT when it is missing, -ENODATA when it differs (a rule deleted or
 * changed, flushed, dormant). The table is read again only when the
 * ruleset's generation moved since the answer in @cache; otherwise the
 * question costs one netlink round trip. @cache starts zeroed.
 */
int tpin_probe_ruleset(const char *name, struct tpin_probe_cache *cache);

/* tpin_probe_rule - whether a rule "fwmark @mark lookup @table" exists for @family. */
int tpin_probe_rule(int family, uint32_t mark, uint32_t table);

/* tpin_probe_local_route - whether "local default dev lo" is in @table for @family. */
int tpin_probe_local_route(int family, uint32_t table);

#endif
