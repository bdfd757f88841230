// SPDX-License-Identifier: MIT
/*
 * Read-only questions about what tpin-init installed, for the proxy's
 * self-check and readiness: the same readers tpin-init --check uses.
 */

#include <errno.h>

#include "tpin/nft_verify.h"
#include "tpin/probe.h"
#include "tpin/rtnl.h"

int tpin_probe_ruleset(const char *name, struct tpin_probe_cache *cache)
{
	uint32_t gen;
	int ret;

	/* The generation first: a change during the check costs one more check, never a miss. */
	ret = tpin_nft_generation(&gen);
	if (ret)
		return ret;
	if (cache->valid && cache->gen == gen)
		return cache->result;
	ret = tpin_nft_verify(name);
	if (ret != -ENOENT && ret != -ENODATA && ret < 0)
		return ret; /* not an answer: ask again next time */
	*cache = (struct tpin_probe_cache){ .valid = true, .gen = gen, .result = ret };
	return ret;
}

/* Run one routing lookup on a fresh socket; present (ours or not) is 0. */
static int routing(int family, uint32_t mark, uint32_t table, bool rule)
{
	struct tpin_rtnl *rt;
	int ret = tpin_rtnl_open(&rt);

	if (ret)
		return ret;
	ret = rule ? tpin_rtnl_rule_state(rt, family, mark, table)
		   : tpin_rtnl_route_state(rt, family, table);
	tpin_rtnl_close(rt);
	if (ret < 0)
		return ret;
	return ret == TPIN_RTNL_PRESENT || ret == TPIN_RTNL_FOREIGN ? 0 : -ENOENT;
}

int tpin_probe_rule(int family, uint32_t mark, uint32_t table)
{
	return routing(family, mark, table, true);
}

int tpin_probe_local_route(int family, uint32_t table)
{
	return routing(family, 0, table, false);
}
